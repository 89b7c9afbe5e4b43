/*
 * burst_bench - what classification costs per packet, without a PMD on the
 * receive side: frames from a pcap are copied into fresh mbufs, a burst of
 * 32 goes through dp_worker_burst() -- the workers' own function: parse,
 * bulk LPM, service/policy/group, content rules, TTL, rewrite, TX to
 * net_null (which frees) -- and the same allocation and copy without the
 * burst is timed separately and subtracted.
 *
 *   burst_bench [EAL args] -- --table T --pcap P [--bursts N] [--json] [--capture]
 *               [--verdicts]
 *
 * Prints ns and TSC cycles per packet (and the subtracted baseline). Run
 * under `valgrind --tool=callgrind --toggle-collect=dp_worker_burst` with a
 * small --bursts for instructions per packet.
 *
 * Built as burst_stages (dp_worker.c with DP_WORKER_STAGE_TSC), it also
 * prints where the cycles go: TSC cycles per packet in each stage of
 * dp_worker.h's enum dp_stage, each reading's own cost (an lfence and an
 * rdtsc, measured here) subtracted. The readings serialize the stages, so
 * the stages add up to more than the untimed figure of burst_bench; the
 * shares are what they are for.
 *
 * With --verdicts the mbufs carry what a NIC that reports packet types and
 * IPv4 checksum verdicts would set, and the worker takes them as from such
 * a port (dp_lcore.rx_verdicts); without, they carry none, as from the
 * vdevs of bench/run.
 *
 * Without --capture no capture runs (the workers' usual state: its cost is
 * one test per burst). With --capture a capture that matches every packet
 * runs: each packet is also copied into a capture pool and put on the
 * worker's ring, which the harness empties after each burst (the control
 * thread's drain and formatting are not timed: they are not the worker's).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "dp_cap.h"
#include "dp_gen.h"
#include "dp_log.h"
#include "dp_port.h"
#include "dp_worker.h"

#define MAXPKTS 65536

RTE_LOG_REGISTER_DEFAULT(dp_logtype, WARNING); /* dp_log.h's logtype, as regionfwd.c defines it */

static uint8_t *frames[MAXPKTS];
static uint16_t lens[MAXPKTS];
static uint32_t nframes;
/* --verdicts: what a NIC that parses packet types and verifies IPv4 header
 * checksums would set on each frame (computed here, as such a NIC would). */
static uint32_t ptypes[MAXPKTS];
static uint64_t olflags[MAXPKTS];
static int verdicts;

static void nic_verdicts(uint32_t k)
{
	const uint8_t *f = frames[k];
	uint32_t sum = 0;

	ptypes[k] = RTE_PTYPE_L2_ETHER;
	olflags[k] = RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN;
	if (lens[k] < 34 || f[12] != 0x08 || f[13] != 0x00 || f[14] != 0x45)
		return;
	ptypes[k] |= RTE_PTYPE_L3_IPV4;
	for (int i = 14; i < 34; i += 2)
		sum += (uint32_t)f[i] << 8 | f[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	olflags[k] = sum == 0xffff ? RTE_MBUF_F_RX_IP_CKSUM_GOOD : RTE_MBUF_F_RX_IP_CKSUM_BAD;
}

static int read_pcap(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t hdr[24], rec[16];

	if (f == NULL || fread(hdr, 1, 24, f) != 24)
		return -1;
	while (nframes < MAXPKTS && fread(rec, 1, 16, f) == 16) {
		uint32_t caplen = (uint32_t)rec[8] | (uint32_t)rec[9] << 8 |
				  (uint32_t)rec[10] << 16 | (uint32_t)rec[11] << 24;

		if (caplen > 9216 || (frames[nframes] = malloc(caplen)) == NULL ||
		    fread(frames[nframes], 1, caplen, f) != caplen)
			return -1;
		lens[nframes++] = (uint16_t)caplen;
	}
	fclose(f);
	return nframes ? 0 : -1;
}

static int fill(struct rte_mempool *pool, struct rte_mbuf **m, uint32_t *next)
{
	if (rte_pktmbuf_alloc_bulk(pool, m, FWD_BURST))
		return -1;
	for (int i = 0; i < FWD_BURST; i++) {
		uint32_t k = (*next)++ % nframes;

		rte_memcpy(rte_pktmbuf_mtod(m[i], void *), frames[k], lens[k]);
		m[i]->data_len = m[i]->pkt_len = lens[k];
		if (verdicts) {
			m[i]->packet_type = ptypes[k];
			m[i]->ol_flags = olflags[k];
		}
	}
	return 0;
}

#ifdef DP_WORKER_STAGE_TSC
static const char *const stage_names[DP_STAGE_MAX] = {
	[DP_STAGE_PARSE] = "parse",	[DP_STAGE_LPM] = "lpm", [DP_STAGE_CLASSIFY] = "classify",
	[DP_STAGE_FORWARD] = "forward", [DP_STAGE_TX] = "tx",	[DP_STAGE_TX_COUNT] = "tx_count",
};

/* What one stage reading costs: an lfence and an rdtsc, back to back. */
static double reading_cost(void)
{
	const int n = 1000000;
	uint64_t t0 = rte_rdtsc_precise(), x = 0;

	for (int i = 0; i < n; i++) {
#if defined(RTE_ARCH_X86)
		__builtin_ia32_lfence();
		x += rte_rdtsc();
#else
		x += rte_rdtsc_precise();
#endif
	}
	__asm__ volatile("" : : "r"(x));
	return (double)(rte_rdtsc_precise() - t0) / n;
}
#endif

/* The capture's consumer, untimed in spirit: what a burst copied goes back
 * to its pool (a NULL ring: no capture). */
static void empty_ring(struct rte_ring *r)
{
	struct rte_mbuf *c[FWD_BURST];
	unsigned n;

	while (r != NULL && (n = rte_ring_sc_dequeue_burst(r, (void **)c, FWD_BURST, NULL)) > 0)
		rte_pktmbuf_free_bulk(c, n);
}

int main(int argc, char **argv)
{
	int eal = rte_eal_init(argc, argv);
	const char *table = NULL, *pcap = NULL;
	long bursts = 200000;
	int json = 0, capture = 0, opt;
	static const struct option opts[] = {
		{"table", 1, 0, 't'}, {"pcap", 1, 0, 'p'},    {"bursts", 1, 0, 'b'},
		{"json", 0, 0, 'j'},  {"capture", 0, 0, 'c'}, {"verdicts", 0, 0, 'v'},
		{0, 0, 0, 0}};
	struct dp_capture cap = {0};
	const struct dp_capture *capp = NULL;
	struct dp_node node;
	struct dp_ports ports;
	struct rte_mempool *pool;
	struct fwd_err err = {0};
	struct fwd_table *t;
	struct dp_gen *g;
	struct dp_lcore *lc;
	struct rte_mbuf *m[FWD_BURST];
	uint32_t next = 0;
	uint64_t t0, base, work;
	double hz;
	char b[512];

	if (eal < 0)
		rte_exit(EXIT_FAILURE, "EAL init failed\n");
	argc -= eal;
	argv += eal;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 't')
			table = optarg;
		else if (opt == 'p')
			pcap = optarg;
		else if (opt == 'b')
			bursts = atol(optarg);
		else if (opt == 'j')
			json = 1;
		else if (opt == 'c')
			capture = 1;
		else if (opt == 'v')
			verdicts = 1;
		else
			rte_exit(EXIT_FAILURE, "usage: burst_bench [EAL] -- --table T --pcap P "
					       "[--bursts N] [--json] [--capture] [--verdicts]\n");
	}
	if (table == NULL || pcap == NULL || bursts < 1 || read_pcap(pcap))
		rte_exit(EXIT_FAILURE, "need --table and a readable --pcap\n");
	dp_node_defaults(&node);
	node.nports = 1;
	snprintf(node.ports[0].name, sizeof(node.ports[0].name), "out0");
	snprintf(node.ports[0].device, sizeof(node.ports[0].device), "net_null_bench0");
	pool = rte_pktmbuf_pool_create("bench", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       (int)rte_socket_id());
	if (pool == NULL || dp_ports_init(&node, 1, pool, &ports))
		rte_exit(EXIT_FAILURE, "pool or port setup failed\n");
	t = fwd_table_load(table, &err);
	if (t == NULL)
		rte_exit(EXIT_FAILURE, "%s\n", fwd_err_str(&err, b, sizeof(b)));
	g = dp_gen_build(t, 1, 1, &node, &ports, 1, NULL, &err);
	if (g == NULL)
		rte_exit(EXIT_FAILURE, "%s\n", fwd_err_str(&err, b, sizeof(b)));
	g->seq = 1; /* as dp_ctx_apply numbers the first generation */
	lc = rte_zmalloc("lc", sizeof(*lc), RTE_CACHE_LINE_SIZE);
	lc->pool = pool;
	dp_worker_set_mtu(lc, node.mtu);
	lc->rx_verdicts = (uint8_t)verdicts;
	for (uint32_t k = 0; k < nframes; k++)
		nic_verdicts(k);
	lc->frag_mem = rte_zmalloc("f", dp_frag_mem_size(node.frag_entries), RTE_CACHE_LINE_SIZE);
	dp_frag_init(&lc->frag, lc->frag_mem, node.frag_entries, rte_get_tsc_hz());
	lc->flow_mem =
		rte_zmalloc("c", dp_flow_mem_size(node.content_flow_entries), RTE_CACHE_LINE_SIZE);
	dp_flow_init(&lc->flow, lc->flow_mem, node.content_flow_entries, rte_get_tsc_hz() * 30);
	if (capture) {
		cap.pool = rte_pktmbuf_pool_create(
			"bench_cap", 8191, 256,
			(uint16_t)RTE_ALIGN(sizeof(struct dp_cap_rec), RTE_MBUF_PRIV_ALIGN),
			RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
		lc->cap_ring = rte_ring_create("bench_cap", 1024, (int)rte_socket_id(),
					       RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (cap.pool == NULL || lc->cap_ring == NULL)
			rte_exit(EXIT_FAILURE, "capture pool or ring setup failed\n");
		capp = &cap;
	}

	/* Warm caches and the TLB with one pass over the frames. */
	for (long i = 0; i < 2000; i++) {
		if (fill(pool, m, &next))
			rte_exit(EXIT_FAILURE, "pool empty\n");
		dp_worker_burst(lc, g, capp, m, FWD_BURST);
		empty_ring(lc->cap_ring);
	}
	/* Baseline: allocation and copy, freed right away. */
	t0 = rte_rdtsc_precise();
	for (long i = 0; i < bursts; i++) {
		fill(pool, m, &next);
		rte_pktmbuf_free_bulk(m, FWD_BURST);
	}
	base = rte_rdtsc_precise() - t0;
	t0 = rte_rdtsc_precise();
	for (long i = 0; i < bursts; i++) {
		fill(pool, m, &next);
		dp_worker_burst(lc, g, capp, m, FWD_BURST);
		empty_ring(lc->cap_ring);
	}
	work = rte_rdtsc_precise() - t0;
#ifdef DP_WORKER_STAGE_TSC
	/* The same bursts again, each stage timed. */
	memset(dp_stage_cycles, 0, sizeof(dp_stage_cycles));
	memset(dp_stage_marks, 0, sizeof(dp_stage_marks));
	for (long i = 0; i < bursts; i++) {
		fill(pool, m, &next);
		dp_stage_begin();
		dp_worker_burst(lc, g, capp, m, FWD_BURST);
		empty_ring(lc->cap_ring);
	}
#endif
	hz = (double)rte_get_tsc_hz();
	{
		double pk = (double)bursts * FWD_BURST;
		double c_pp = (double)(work - (work > base ? base : 0)) / pk;
		struct dp_counters c;
		const char *lead = "{";

		dp_counters_read(&lc->cnt, &c);
#ifdef DP_WORKER_STAGE_TSC
		{
			double rc = reading_cost(), sum = 0;

			printf("{\"reading_tsc\": %.2f, \"stages\": {", rc);
			for (int k = 0; k < DP_STAGE_MAX; k++) {
				double v = ((double)dp_stage_cycles[k] -
					    (double)dp_stage_marks[k] * rc) /
					   pk;

				sum += v;
				printf("%s\"%s\": %.2f", k ? ", " : "", stage_names[k], v);
			}
			printf("}, \"sum_tsc_per_packet\": %.2f, ", sum);
			json = 1; /* the rest of the object below */
			lead = "";
		}
#endif
		if (json)
			printf("%s\"packets\": %.0f, \"tsc_per_packet\": %.2f, \"ns_per_packet\": "
			       "%.2f, "
			       "\"baseline_tsc_per_packet\": %.2f, \"tx\": %lu, \"rx\": %lu, "
			       "\"frames\": %u, "
			       "\"tsc_hz\": %.0f, \"capture\": %s, \"captured\": %lu, "
			       "\"verdicts\": %s}\n",
			       lead, pk, c_pp, c_pp * 1e9 / hz, (double)base / pk,
			       (unsigned long)c.tx, (unsigned long)c.rx, nframes, hz,
			       capture ? "true" : "false", (unsigned long)c.evt[FWD_EVT_CAPTURED],
			       verdicts ? "true" : "false");
		else
			printf("burst_bench: %.0f packets, %.1f TSC cycles = %.1f ns per packet in "
			       "dp_worker_burst "
			       "(alloc+copy baseline %.1f cycles subtracted); tx %lu of rx %lu; "
			       "capture %s (%lu copied)\n",
			       pk, c_pp, c_pp * 1e9 / hz, (double)base / pk, (unsigned long)c.tx,
			       (unsigned long)c.rx, capture ? "on, every packet" : "off",
			       (unsigned long)c.evt[FWD_EVT_CAPTURED]);
	}
	dp_gen_free(g);
	dp_ports_close(&ports);
	rte_eal_cleanup();
	return 0;
}
