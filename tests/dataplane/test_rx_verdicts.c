/*
 * test_rx_verdicts - the worker's use of a NIC's packet types and IPv4
 * checksum verdicts (dp_lcore.rx_verdicts, dp_worker.c), on mbufs whose
 * packet_type and ol_flags are set as such a NIC sets them. The vdevs of the
 * other tests offer neither, so only this test runs that path.
 *
 * Frames of every shape that matters (plain IPv4 UDP/TCP, a bad checksum,
 * options, a VLAN tag, IPv6, a fragment, a truncated header, TTL 1) go
 * through dp_worker_burst() to a net_ring port (its TX ring is its RX
 * ring, so the frames as sent are read back):
 *   - without verdicts: the reference;
 *   - with verdicts, flags as a correct NIC sets them: the same counters and
 *     the same frames out;
 *   - with verdicts, no flags (a NIC that says nothing): the same;
 *   - without verdicts, a bad checksum flagged good: the flags are ignored;
 *   - with verdicts, a bad checksum flagged good: forwarded, which shows
 *     that the verdict path is the one taken.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "dp_gen.h"
#include "dp_log.h"
#include "dp_port.h"
#include "dp_worker.h"
#include "pktbuild.h"

RTE_LOG_REGISTER_DEFAULT(dp_logtype, WARNING); /* dp_log.h's logtype */

static const char TABLE[] = "version: 1\n"
			    "regions:\n"
			    "  r1: {prefixes: [10.0.0.0/8, \"2001:db8::/32\"]}\n"
			    "services:\n"
			    "  web: [tcp/80]\n"
			    "links:\n"
			    "  l1: {port: out0, next_hop_mac: \"02:00:00:00:00:01\"}\n"
			    "  l2: {port: out0, next_hop_mac: \"02:00:00:00:00:02\"}\n"
			    "policies:\n"
			    "  - {region: r1, service: any, action: steer, to: l1}\n"
			    "  - {region: r1, service: web, action: steer, to: l2}\n"
			    "default: {action: drop}\n";

static const char S4[4] = {10, 1, 2, 3}, D4[4] = {10, 9, 8, 7};
static const uint8_t S6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
static const uint8_t D6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6};

#define NFRAMES 12

static struct pb frames[NFRAMES];
static int nframes;
static int bad_csum_frame; /* index of the frame whose checksum is wrong */

static struct rte_mempool *pool;
static struct dp_ports ports;
static struct dp_node node;
static struct dp_gen *gen;

/* What a NIC that parses packet types and verifies IPv4 header checksums
 * sets on a frame. */
static void nic_flags(const struct pb *p, uint32_t *ptype, uint64_t *ol)
{
	const uint8_t *f = p->b;
	uint16_t et = (uint16_t)(f[12] << 8 | f[13]);
	size_t l3 = 14;

	*ptype = RTE_PTYPE_L2_ETHER;
	*ol = RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN;
	if (et == 0x8100) {
		*ptype = RTE_PTYPE_L2_ETHER_VLAN;
		et = (uint16_t)(f[16] << 8 | f[17]);
		l3 = 18;
	}
	if (et == 0x86dd) {
		*ptype |= RTE_PTYPE_L3_IPV6;
		return;
	}
	if (et != 0x0800 || p->len < l3 + 20)
		return;
	*ptype |= (f[l3] & 0x0f) == 5 ? RTE_PTYPE_L3_IPV4 : RTE_PTYPE_L3_IPV4_EXT;
	*ol = pb_csum(f + l3, (size_t)(f[l3] & 0x0f) * 4) == 0 ? RTE_MBUF_F_RX_IP_CKSUM_GOOD
							       : RTE_MBUF_F_RX_IP_CKSUM_BAD;
}

static void build_frames(void)
{
	struct pb *p;

	p = &frames[nframes++]; /* IPv4 UDP */
	pb_eth(p, 0x0800);
	pb_ipv4(p, S4, D4, FWD_PROTO_UDP, 0);
	pb_ports(p, 1000, 53, 8);
	pb_payload(p, 18);
	pb_finish_v4(p);
	p = &frames[nframes++]; /* IPv4 TCP to the web service */
	pb_eth(p, 0x0800);
	pb_ipv4(p, S4, D4, FWD_PROTO_TCP, 0);
	pb_ports(p, 1001, 80, 20);
	pb_payload(p, 6);
	pb_finish_v4(p);
	bad_csum_frame = nframes;
	frames[nframes] = frames[0]; /* a checksum that does not verify */
	frames[nframes++].b[14 + 10] ^= 0x01;
	p = &frames[nframes++]; /* IPv4 with options */
	pb_eth(p, 0x0800);
	pb_ipv4(p, S4, D4, FWD_PROTO_UDP, 8);
	pb_ports(p, 1002, 53, 8);
	pb_payload(p, 10);
	pb_finish_v4(p);
	p = &frames[nframes++]; /* VLAN-tagged IPv4 */
	pb_eth(p, 0x8100);
	pb_vlan(p, 7, 0x0800);
	pb_ipv4(p, S4, D4, FWD_PROTO_UDP, 0);
	pb_ports(p, 1003, 53, 8);
	pb_payload(p, 14);
	pb_finish_v4(p);
	p = &frames[nframes++]; /* IPv6 TCP */
	pb_eth(p, 0x86dd);
	pb_ipv6(p, S6, D6, FWD_PROTO_TCP);
	pb_ports(p, 1004, 80, 20);
	pb_finish_v6(p);
	p = &frames[nframes++]; /* an IPv4 first fragment */
	pb_eth(p, 0x0800);
	pb_ipv4(p, S4, D4, FWD_PROTO_UDP, 0);
	pb_ports(p, 1005, 53, 8);
	pb_payload(p, 32);
	pb_ipv4_frag(p, 77, 1, 0);
	pb_finish_v4(p);
	frames[nframes] = frames[0]; /* total length past the frame's end */
	frames[nframes++].len -= 4;
	p = &frames[nframes++]; /* TTL 1 */
	*p = frames[0];
	p->b[14 + 8] = 1;
	p->b[14 + 10] = p->b[14 + 11] = 0;
	{
		uint16_t c = pb_csum(p->b + 14, 20);

		pb_u16(p->b + 14 + 10, c);
	}
	p = &frames[nframes++]; /* IPv4 UDP, another source port */
	*p = frames[0];
	p->b[14 + 20 + 1] ^= 0x10;
	frames[nframes] = frames[1]; /* IPv4 TCP, total length under the TCP header */
	pb_u16(frames[nframes].b + 14 + 2, 30);
	frames[nframes].b[14 + 10] = frames[nframes].b[14 + 11] = 0;
	{
		uint16_t c = pb_csum(frames[nframes].b + 14, 20);

		pb_u16(frames[nframes].b + 14 + 10, c);
	}
	nframes++;
	p = &frames[nframes++]; /* IPv4 UDP from 127.0.0.1: no router forwards from it */
	pb_eth(p, 0x0800);
	pb_ipv4(p, (const char[4]){127, 0, 0, 1}, D4, FWD_PROTO_UDP, 0);
	pb_ports(p, 1006, 53, 8);
	pb_payload(p, 18);
	pb_finish_v4(p);
	assert_int_equal(nframes, NFRAMES);
}

enum flags_mode { FLAGS_NONE, FLAGS_NIC, FLAGS_LYING };

struct outcome {
	struct dp_counters cnt;
	uint8_t out[4 * NFRAMES][128];
	uint16_t out_len[4 * NFRAMES];
	unsigned nout;
};

/* Every frame, twice, in one burst, through a fresh worker; the counters
 * and the frames sent. */
static void run(int verdicts, enum flags_mode mode, struct outcome *o)
{
	struct dp_lcore *lc = rte_zmalloc("lc", sizeof(*lc), RTE_CACHE_LINE_SIZE);
	struct rte_mbuf *m[2 * NFRAMES], *rx[4 * NFRAMES];
	uint16_t got;

	assert_non_null(lc);
	lc->pool = pool;
	dp_worker_set_mtu(lc, node.mtu);
	lc->rx_verdicts = (uint8_t)verdicts;
	lc->frag_mem = rte_zmalloc("f", dp_frag_mem_size(node.frag_entries), RTE_CACHE_LINE_SIZE);
	lc->flow_mem =
		rte_zmalloc("c", dp_flow_mem_size(node.content_flow_entries), RTE_CACHE_LINE_SIZE);
	assert_non_null(lc->frag_mem);
	assert_non_null(lc->flow_mem);
	dp_frag_init(&lc->frag, lc->frag_mem, node.frag_entries, rte_get_tsc_hz());
	dp_flow_init(&lc->flow, lc->flow_mem, node.content_flow_entries, rte_get_tsc_hz() * 30);
	assert_int_equal(rte_pktmbuf_alloc_bulk(pool, m, 2 * NFRAMES), 0);
	for (int i = 0; i < 2 * NFRAMES; i++) {
		const struct pb *p = &frames[i % NFRAMES];

		memcpy(rte_pktmbuf_mtod(m[i], void *), p->b, p->len);
		m[i]->data_len = m[i]->pkt_len = (uint32_t)p->len;
		if (mode == FLAGS_NIC || mode == FLAGS_LYING)
			nic_flags(p, &m[i]->packet_type, &m[i]->ol_flags);
		if (mode == FLAGS_LYING && i % NFRAMES == bad_csum_frame)
			m[i]->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
	}
	dp_worker_burst(lc, gen, NULL, m, 2 * NFRAMES);
	dp_counters_read(&lc->cnt, &o->cnt);
	memset(o->out, 0, sizeof(o->out));
	memset(o->out_len, 0, sizeof(o->out_len));
	o->nout = 0;
	while ((got = rte_eth_rx_burst(ports.port_id[0], 0, rx, RTE_DIM(rx))) > 0) {
		for (uint16_t k = 0; k < got; k++) {
			uint16_t len = (uint16_t)RTE_MIN(rte_pktmbuf_data_len(rx[k]), 128);

			assert_true(o->nout < RTE_DIM(o->out));
			memcpy(o->out[o->nout], rte_pktmbuf_mtod(rx[k], void *), len);
			o->out_len[o->nout++] = len;
		}
		rte_pktmbuf_free_bulk(rx, got);
	}
	rte_free(lc->frag_mem);
	rte_free(lc->flow_mem);
	rte_free(lc);
}

static void assert_same(const struct outcome *a, const struct outcome *b)
{
	assert_int_equal(a->cnt.rx, b->cnt.rx);
	assert_int_equal(a->cnt.tx, b->cnt.tx);
	assert_int_equal(a->cnt.tx_bytes, b->cnt.tx_bytes);
	assert_memory_equal(a->cnt.drop, b->cnt.drop, sizeof(a->cnt.drop));
	assert_memory_equal(a->cnt.evt, b->cnt.evt, sizeof(a->cnt.evt));
	assert_int_equal(a->nout, b->nout);
	assert_memory_equal(a->out_len, b->out_len, sizeof(a->out_len));
	assert_memory_equal(a->out, b->out, sizeof(a->out));
}

static struct outcome ref, got;

static void test_reference_is_sane(void **state)
{
	(void)state;
	run(0, FLAGS_NONE, &ref);
	assert_int_equal(ref.cnt.rx, 2 * NFRAMES);
	/* The bad checksum, the truncated frames, TTL 1 and the martian
	 * source are dropped, twice each; everything else leaves. */
	assert_int_equal(ref.cnt.drop[FWD_DROP_IPV4_BAD_CSUM], 2);
	assert_int_equal(ref.cnt.drop[FWD_DROP_TTL_EXPIRED], 2);
	assert_int_equal(ref.cnt.drop[FWD_DROP_SRC_MARTIAN], 2);
	assert_int_equal(ref.cnt.tx + 2 * 5, ref.cnt.rx);
	assert_int_equal(ref.nout, ref.cnt.tx);
}

static void test_nic_verdicts_change_nothing(void **state)
{
	(void)state;
	run(1, FLAGS_NIC, &got);
	assert_same(&ref, &got);
}

static void test_silent_nic_changes_nothing(void **state)
{
	(void)state;
	run(1, FLAGS_NONE, &got);
	assert_same(&ref, &got);
}

static void test_flags_ignored_without_verdicts(void **state)
{
	(void)state;
	run(0, FLAGS_LYING, &got);
	assert_same(&ref, &got);
}

/* The one observable difference: a frame the NIC wrongly vouches for is
 * not summed again. It proves that the flags reach the parser. */
static void test_verdicts_are_used(void **state)
{
	(void)state;
	run(1, FLAGS_LYING, &got);
	assert_int_equal(got.cnt.drop[FWD_DROP_IPV4_BAD_CSUM], 0);
	assert_int_equal(got.cnt.tx, ref.cnt.tx + 2);
}

int main(void)
{
	char prefix[64];
	char *argv[] = {"test_rx_verdicts",
			"-l",
			"0",
			"--no-huge",
			"-m",
			"256",
			"--no-pci",
			"--no-telemetry",
			"--log-level",
			"lib.eal:error",
			"--file-prefix",
			prefix,
			NULL};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_is_sane),
		cmocka_unit_test(test_nic_verdicts_change_nothing),
		cmocka_unit_test(test_silent_nic_changes_nothing),
		cmocka_unit_test(test_flags_ignored_without_verdicts),
		cmocka_unit_test(test_verdicts_are_used),
	};
	struct fwd_err err = {0};
	struct fwd_table *t;
	char b[512];

	snprintf(prefix, sizeof(prefix), "rxverdicts%ld", (long)getpid());
	if (rte_eal_init((int)RTE_DIM(argv) - 1, argv) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	build_frames();
	dp_node_defaults(&node);
	node.nports = 1;
	snprintf(node.ports[0].name, sizeof(node.ports[0].name), "out0");
	snprintf(node.ports[0].device, sizeof(node.ports[0].device), "net_ring_rxv0");
	pool = rte_pktmbuf_pool_create("rxv", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       (int)rte_socket_id());
	if (pool == NULL || dp_ports_init(&node, 1, pool, &ports)) {
		fprintf(stderr, "pool or port setup failed\n");
		return 1;
	}
	t = fwd_table_parse(TABLE, sizeof(TABLE) - 1, "rx-verdicts", 0, &err);
	if (t != NULL)
		gen = dp_gen_build(t, 1, 1, &node, &ports, 1, NULL, &err);
	if (gen == NULL) {
		fprintf(stderr, "%s\n", fwd_err_str(&err, b, sizeof(b)));
		return 1;
	}
	gen->seq = 1;
	/* net_ring offers no verdicts: dp_ports_init() must not claim it does. */
	if (ports.verdicts[0]) {
		fprintf(stderr, "net_ring reported as offering verdicts\n");
		return 1;
	}
	{
		int rc = cmocka_run_group_tests(tests, NULL, NULL);

		dp_gen_free(gen);
		dp_ports_close(&ports);
		rte_eal_cleanup();
		return rc;
	}
}
