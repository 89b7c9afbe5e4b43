/*
 * regionfwd-gen - a DPDK traffic generator for load tests of regionfwd on lab
 * hardware (docs/load-testing.md).
 *
 * It builds its traffic from a table document: for each region, sources at
 * the edges and inside of its prefixes (network address, last address, a
 * random one; IPv4 and IPv6), each paired with a service port (range edges
 * too); fixed frame sizes of 64..1518 bytes or an IMIX (7:4:1 of 64, 570,
 * 1518). Every frame carries a magic, a sequence number and the TSC at send
 * time in its payload. It sends at a target rate (or as fast as it can) on
 * one port -- a NIC, or any vdev -- and measures what comes back on the
 * receive ports: per link of the table (known by the next-hop MAC regionfwd
 * writes), packets, rate, loss against what the table says that link should
 * carry (computed with the same classifier and an rte_fib of the table), and
 * latency. With --pcap it writes the traffic to a file for tcpreplay or TRex
 * and sends nothing.
 *
 *   regionfwd-gen [EAL] -- --table T (--tx DEV [--rx DEV ...] | --pcap FILE)
 *                 [--rate PPS] [--duration S] [--size N|imix] [--flows N]
 *                 [--dst-mac MAC] [--json]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_mbuf.h>

#include "dp_log.h"
#include "dp_port.h"
#include "fwd_class.h"
#include "fwd_parse.h"
#include "fwd_pktops.h"

RTE_LOG_REGISTER_DEFAULT(dp_logtype, INFO);

#define MAGIC 0x52464e47454e3031ull /* "RFNGEN01" */
#define MAX_FLOWS (1u << 20)
#define MAX_RX 8
#define LAT_BUCKETS 40 /* log2 of nanoseconds */

struct flow {
	uint8_t *frame;
	uint16_t len;
	uint16_t link; /* expected link, FWD_LINK_NONE when the table drops it */
};

struct link_stat {
	uint64_t expected, received, bytes;
	uint64_t lat_sum_ns, lat_min_ns, lat_max_ns;
	uint64_t hist[LAT_BUCKETS];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int frame_size(const char *size, uint32_t i)
{
	static const uint16_t imix[12] = {64, 64, 64, 64, 64, 64, 64, 570, 570, 570, 570, 1518};

	return strcmp(size, "imix") == 0 ? imix[(i * 7) % 12] : atoi(size);
}

static uint32_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*s >> 33);
}

/* An address of @prefix: 0 the network address, 1 the last, 2 inside. */
static void pick_addr(const uint8_t *addr, uint8_t len, int family, int which, uint64_t *seed,
		      uint8_t out[16])
{
	int bits = family == 4 ? 32 : 128;

	memcpy(out, addr, family == 4 ? 4 : 16);
	for (int b = len; b < bits; b++) {
		int set = which == 1 || (which == 2 && (rnd(seed) & 1));

		if (set)
			out[b / 8] |= (uint8_t)(0x80 >> (b % 8));
	}
}

static uint16_t csum16(const uint8_t *p, int n)
{
	uint32_t s = 0;

	for (int i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	return (uint16_t)~fwd_csum_fold(s);
}

/* Ethernet + IPv4/IPv6 + TCP/UDP (+ the generator's 24-byte stamp). */
static uint16_t build_frame(uint8_t *f, int len, const uint8_t *dmac, int family, const uint8_t *src,
			    uint8_t proto, uint16_t dport, uint16_t sport)
{
	int l3 = 14, ihl = family == 4 ? 20 : 40, l4len = proto == FWD_PROTO_TCP ? 20 : 8;
	int min = l3 + ihl + l4len + 24;
	uint8_t *ip = f + l3, *l4 = ip + ihl;

	if (len < min)
		len = min;
	if (len < 60)
		len = 60;
	memset(f, 0, (size_t)len);
	memcpy(f, dmac, 6);
	f[6] = 0x02, f[7] = 0x67, f[8] = 0x65, f[9] = 0x6e; /* 02:67:65:6e:00:01 "gen" */
	f[11] = 1;
	if (family == 4) {
		f[12] = 0x08;
		ip[0] = 0x45;
		ip[2] = (uint8_t)((len - l3) >> 8);
		ip[3] = (uint8_t)(len - l3);
		ip[8] = 64;
		ip[9] = proto;
		memcpy(ip + 12, src, 4);
		ip[16] = 198, ip[17] = 51, ip[18] = 100, ip[19] = 1;
		uint16_t c = csum16(ip, 20);

		ip[10] = (uint8_t)(c >> 8);
		ip[11] = (uint8_t)c;
	} else {
		f[12] = 0x86, f[13] = 0xdd;
		ip[0] = 0x60;
		ip[4] = (uint8_t)((len - l3 - 40) >> 8);
		ip[5] = (uint8_t)(len - l3 - 40);
		ip[6] = proto;
		ip[7] = 64;
		memcpy(ip + 8, src, 16);
		ip[24] = 0x20, ip[25] = 0x01, ip[26] = 0x0d, ip[27] = 0xb8, ip[39] = 1;
	}
	l4[0] = (uint8_t)(sport >> 8), l4[1] = (uint8_t)sport;
	l4[2] = (uint8_t)(dport >> 8), l4[3] = (uint8_t)dport;
	if (proto == FWD_PROTO_TCP) {
		l4[12] = 0x50;
		l4[13] = 0x10; /* ACK */
	} else {
		l4[4] = (uint8_t)((len - l3 - ihl) >> 8);
		l4[5] = (uint8_t)(len - l3 - ihl);
	}
	return (uint16_t)len; /* L4 checksums left 0: regionfwd does not check them */
}

static uint64_t stamp_off(const uint8_t *f)
{
	return 14u + (f[12] == 0x08 ? 20u : 40u) + (f[f[12] == 0x08 ? 23 : 20] == FWD_PROTO_TCP ? 20u : 8u);
}

static int write_pcap(const char *path, struct flow *fl, uint32_t n)
{
	FILE *f = fopen(path, "wb");
	uint32_t hdr[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};

	if (f == NULL)
		return -errno;
	fwrite(hdr, 4, 6, f);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t rec[4] = {i / 1000000, i % 1000000, fl[i].len, fl[i].len};
		uint64_t seq = i, magic = MAGIC;
		uint8_t *st = fl[i].frame + stamp_off(fl[i].frame);

		memcpy(st, &magic, 8);
		memcpy(st + 8, &seq, 8);
		fwrite(rec, 4, 4, f);
		fwrite(fl[i].frame, 1, fl[i].len, f);
	}
	return fclose(f) ? -errno : 0;
}

static void release(struct flow *fl, uint32_t n, struct link_stat *ls, struct rte_fib *fib4,
		    struct rte_fib6 *fib6, struct fwd_class *cls, struct fwd_table *t)
{
	for (uint32_t i = 0; i < n; i++)
		free(fl[i].frame);
	free(fl);
	free(ls);
	rte_fib_free(fib4);
	rte_fib6_free(fib6);
	fwd_class_free(cls);
	fwd_table_free(t);
}

static int parse_mac(const char *s, uint8_t m[6])
{
	unsigned v[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 255)
			return -1;
		m[i] = (uint8_t)v[i];
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"table", 1, 0, 't'}, {"tx", 1, 0, 'x'},      {"rx", 1, 0, 'r'},	 {"pcap", 1, 0, 'p'},
		{"rate", 1, 0, 'R'},  {"duration", 1, 0, 'd'}, {"size", 1, 0, 's'}, {"flows", 1, 0, 'f'},
		{"dst-mac", 1, 0, 'm'}, {"json", 0, 0, 'j'},   {0, 0, 0, 0}};
	int eal = rte_eal_init(argc, argv), opt, json = 0, nrx = 0;
	const char *table = NULL, *txdev = NULL, *rxdev[MAX_RX], *pcap = NULL, *size = "64";
	double rate = 0, duration = 10;
	uint32_t nflows = 4096;
	uint8_t dmac[6] = {0x02, 0, 0, 0, 0, 0xff};
	struct fwd_err err = {0};
	struct fwd_table *t;
	struct fwd_class *cls;
	struct rte_fib *fib4;
	struct rte_fib6 *fib6;
	struct flow *fl;
	struct link_stat *ls;
	uint64_t seed = 0x9e3779b97f4a7c15ull, sent = 0, unexpected = 0, expected_drop = 0;
	char b[512];

	if (eal < 0)
		rte_exit(EXIT_FAILURE, "EAL init failed\n");
	argc -= eal;
	argv += eal;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 't': table = optarg; break;
		case 'x': txdev = optarg; break;
		case 'r':
			if (nrx == MAX_RX)
				rte_exit(EXIT_FAILURE, "at most %d --rx ports\n", MAX_RX);
			rxdev[nrx++] = optarg;
			break;
		case 'p': pcap = optarg; break;
		case 'R': rate = atof(optarg); break;
		case 'd': duration = atof(optarg); break;
		case 's': size = optarg; break;
		case 'f': nflows = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'm':
			if (parse_mac(optarg, dmac))
				rte_exit(EXIT_FAILURE, "--dst-mac: not a MAC address: %s\n", optarg);
			break;
		case 'j': json = 1; break;
		default:
			rte_exit(EXIT_FAILURE, "usage: regionfwd-gen [EAL] -- --table T (--tx DEV [--rx DEV]... | --pcap FILE) "
					       "[--rate PPS] [--duration S] [--size N|imix] [--flows N] [--dst-mac MAC] [--json]\n");
		}
	}
	if (table == NULL || (txdev == NULL && pcap == NULL))
		rte_exit(EXIT_FAILURE, "need --table and --tx or --pcap\n");
	if (nflows < 1 || nflows > MAX_FLOWS || rate < 0 || duration <= 0 ||
	    (strcmp(size, "imix") && (atoi(size) < 60 || atoi(size) > 1518)))
		rte_exit(EXIT_FAILURE, "bad --flows (1..%u), --rate, --duration or --size (60..1518 or imix)\n", MAX_FLOWS);
	t = fwd_table_load(table, &err);
	if (t == NULL || (cls = fwd_class_build(t)) == NULL)
		rte_exit(EXIT_FAILURE, "%s\n", fwd_err_str(&err, b, sizeof(b)));
	if (t->nprefix4 + t->nprefix6 == 0)
		rte_exit(EXIT_FAILURE, "the table has no prefixes to draw sources from\n");

	/* The expected link of each flow: the table's own longest match and classifier. */
	struct rte_fib_conf c4 = {.type = RTE_FIB_DIR24_8, .default_nh = FWD_REGION_UNKNOWN,
				  .max_routes = t->nprefix4 + 1,
				  .dir24_8 = {.nh_sz = RTE_FIB_DIR24_8_4B, .num_tbl8 = (1u << 16) - 1}};
	struct rte_fib6_conf c6 = {.type = RTE_FIB6_TRIE, .default_nh = FWD_REGION_UNKNOWN,
				   .max_routes = t->nprefix6 + 1,
				   .trie = {.nh_sz = RTE_FIB6_TRIE_4B, .num_tbl8 = (1u << 16) - 1}};
	fib4 = rte_fib_create("gen4", SOCKET_ID_ANY, &c4);
	fib6 = rte_fib6_create("gen6", SOCKET_ID_ANY, &c6);
	if (fib4 == NULL || fib6 == NULL)
		rte_exit(EXIT_FAILURE, "cannot create the FIBs\n");
	for (uint32_t i = 0; i < t->nprefix4; i++)
		rte_fib_add(fib4, t->prefix4[i].addr, t->prefix4[i].len, t->prefix4[i].region);
	for (uint32_t i = 0; i < t->nprefix6; i++)
		rte_fib6_add(fib6, t->prefix6[i].addr, t->prefix6[i].len, t->prefix6[i].region);

	fl = calloc(nflows, sizeof(*fl));
	ls = calloc(t->nlinks + 1u, sizeof(*ls));
	for (uint32_t i = 0; i < nflows; i++) {
		/* Walk the prefixes evenly, each in turn at its edges and inside. */
		uint32_t np = t->nprefix4 + t->nprefix6, k = (uint32_t)((uint64_t)(i / 3) * 2654435761u % np);
		int fam = k < t->nprefix4 ? 4 : 6, which = (int)(i % 3);
		const uint8_t *addr;
		uint8_t plen, src[16] = {0}, sa[4];
		const struct fwd_svc_range *r = t->nranges ? &t->ranges[i % t->nranges] : NULL;
		uint8_t proto = r ? r->proto : FWD_PROTO_UDP;
		uint16_t dport = r ? (uint16_t)(i & 4 ? r->hi : r->lo) : (uint16_t)(1 + rnd(&seed) % 65535);
		struct fwd_pkt p;
		struct fwd_decision d;
		uint64_t nh;

		if (fam == 4) {
			uint32_t a = t->prefix4[k].addr;

			sa[0] = (uint8_t)(a >> 24), sa[1] = (uint8_t)(a >> 16), sa[2] = (uint8_t)(a >> 8), sa[3] = (uint8_t)a;
			addr = sa;
			plen = t->prefix4[k].len;
		} else {
			addr = t->prefix6[k - t->nprefix4].addr;
			plen = t->prefix6[k - t->nprefix4].len;
		}
		pick_addr(addr, plen, fam, which, &seed, src);
		if (proto != FWD_PROTO_TCP && proto != FWD_PROTO_UDP)
			proto = FWD_PROTO_UDP, dport = (uint16_t)(1 + rnd(&seed) % 65535); /* port-less services: UDP */
		fl[i].frame = malloc(1518);
		fl[i].len = build_frame(fl[i].frame, frame_size(size, i) - 4 /* FCS */, dmac, fam, src, proto, dport,
					(uint16_t)(1024 + i % 60000));
		if (fwd_parse(fl[i].frame, fl[i].frame + fl[i].len, &p) != FWD_OK)
			rte_exit(EXIT_FAILURE, "internal: flow %u does not parse\n", i);
		if (fam == 4) {
			uint32_t ip = fwd_rd32(p.src);

			rte_fib_lookup_bulk(fib4, &ip, &nh, 1);
		} else {
			uint8_t a6[1][RTE_FIB6_IPV6_ADDR_SIZE];

			memcpy(a6[0], p.src, 16);
			rte_fib6_lookup_bulk(fib6, a6, &nh, 1);
		}
		fwd_class_decide_pkt(cls, (uint16_t)nh, &p, &d);
		fl[i].link = d.drop ? FWD_LINK_NONE : d.link;
	}
	if (pcap) {
		int rc = write_pcap(pcap, fl, nflows);

		if (rc)
			rte_exit(EXIT_FAILURE, "%s: %s\n", pcap, strerror(-rc));
		printf("regionfwd-gen: %u frames from %u IPv4 + %u IPv6 prefixes and %u service ranges to %s\n", nflows,
		       t->nprefix4, t->nprefix6, t->nranges, pcap);
		release(fl, nflows, ls, fib4, fib6, cls, t);
		rte_eal_cleanup();
		return 0;
	}

	/* Ports: one to send on, the rest to receive on (dp_port does the setup). */
	struct dp_node node;
	struct dp_ports ports;
	struct rte_mempool *pool;

	dp_node_defaults(&node);
	node.nports = (uint16_t)(1 + nrx);
	snprintf(node.ports[0].name, sizeof(node.ports[0].name), "tx");
	snprintf(node.ports[0].device, sizeof(node.ports[0].device), "%s", txdev);
	for (int i = 0; i < nrx; i++) {
		snprintf(node.ports[1 + i].name, sizeof(node.ports[0].name), "rx%d", i);
		snprintf(node.ports[1 + i].device, sizeof(node.ports[0].device), "%s", rxdev[i]);
		node.ports[1 + i].ingress = 1;
	}
	pool = rte_pktmbuf_pool_create("gen", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (pool == NULL)
		rte_exit(EXIT_FAILURE, "cannot create the mbuf pool: %s\n", rte_strerror(rte_errno));
	if (dp_ports_init(&node, 1, pool, &ports))
		rte_exit(EXIT_FAILURE, "port setup failed (see above)\n");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	uint64_t hz = rte_get_tsc_hz(), t0 = rte_rdtsc(), end = t0 + (uint64_t)(duration * (double)hz);
	uint64_t drain_end = 0, next = t0, per_burst = rate > 0 ? (uint64_t)((double)hz * 32 / rate) : 0;
	uint32_t fi = 0;

	while (!stop) {
		uint64_t now = rte_rdtsc();

		if (now < end && (per_burst == 0 || now >= next)) {
			struct rte_mbuf *m[32];

			if (rte_pktmbuf_alloc_bulk(pool, m, 32) == 0) {
				for (int i = 0; i < 32; i++) {
					struct flow *f = &fl[fi];
					uint8_t *d = rte_pktmbuf_mtod(m[i], uint8_t *);
					uint64_t magic = MAGIC, seq = sent + (uint64_t)i, ts = rte_rdtsc();

					rte_memcpy(d, f->frame, f->len);
					memcpy(d + stamp_off(d), &magic, 8);
					memcpy(d + stamp_off(d) + 8, &seq, 8);
					memcpy(d + stamp_off(d) + 16, &ts, 8);
					m[i]->data_len = m[i]->pkt_len = f->len;
					fi = fi + 1 == nflows ? 0 : fi + 1;
				}
				uint16_t n = rte_eth_tx_burst(ports.port_id[0], 0, m, 32);

				for (uint16_t i = 0; i < n; i++) {
					uint16_t l = fl[(uint32_t)((sent + i) % nflows)].link;

					if (l == FWD_LINK_NONE)
						expected_drop++;
					else
						ls[l].expected++;
				}
				sent += n;
				if (n < 32)
					rte_pktmbuf_free_bulk(m + n, 32u - n);
				next += per_burst;
			}
		} else if (now >= end && drain_end == 0) {
			drain_end = now + hz / 2; /* half a second for what is in flight */
		}
		if (drain_end && now >= drain_end)
			break;
		for (int q = 0; q < nrx; q++) {
			struct rte_mbuf *m[32];
			uint16_t n = rte_eth_rx_burst(ports.port_id[1 + q], 0, m, 32);
			uint64_t rnow = rte_rdtsc();

			for (uint16_t i = 0; i < n; i++) {
				const uint8_t *d = rte_pktmbuf_mtod(m[i], const uint8_t *);
				struct fwd_pkt p;
				const uint8_t *pl;
				uint32_t plen;
				uint8_t tf;
				uint64_t magic, seq, ts;
				uint16_t l = FWD_LINK_NONE;

				if (fwd_parse(d, d + m[i]->data_len, &p) == FWD_OK &&
				    fwd_l4_payload(d, d + m[i]->data_len, &p, &pl, &plen, &tf) == 0 && plen >= 24) {
					memcpy(&magic, pl, 8);
					memcpy(&seq, pl + 8, 8);
					memcpy(&ts, pl + 16, 8);
					for (uint16_t k = 0; magic == MAGIC && k < t->nlinks; k++)
						if (memcmp(t->links[k].next_hop_mac, d, 6) == 0)
							l = k;
				}
				if (l == FWD_LINK_NONE) {
					unexpected++;
				} else {
					uint64_t ns = (rnow - ts) * 1000000000ull / hz;
					int bkt = 0;

					ls[l].received++;
					ls[l].bytes += m[i]->pkt_len;
					ls[l].lat_sum_ns += ns;
					ls[l].lat_min_ns = ls[l].received == 1 || ns < ls[l].lat_min_ns ? ns : ls[l].lat_min_ns;
					ls[l].lat_max_ns = ns > ls[l].lat_max_ns ? ns : ls[l].lat_max_ns;
					while (bkt + 1 < LAT_BUCKETS && (1ull << (bkt + 1)) <= ns)
						bkt++;
					ls[l].hist[bkt]++;
				}
			}
			rte_pktmbuf_free_bulk(m, n);
		}
	}
	/* Rates over the sending window; the half-second drain only collects. */
	double secs = RTE_MIN((double)(rte_rdtsc() - t0) / (double)hz, duration);

	if (json)
		printf("{\"sent\": %" PRIu64 ", \"seconds\": %.3f, \"tx_mpps\": %.4f, \"expected_drops\": %" PRIu64
		       ", \"unexpected\": %" PRIu64 ", \"links\": {", sent, secs, (double)sent / secs / 1e6, expected_drop, unexpected);
	else
		printf("regionfwd-gen: sent %" PRIu64 " frames in %.2f s (%.3f Mpps), %" PRIu64
		       " the table drops, %" PRIu64 " received that were not ours\n\n%-20s %12s %12s %10s %9s %10s %10s %10s\n",
		       sent, secs, (double)sent / secs / 1e6, expected_drop, unexpected, "link", "expected", "received",
		       "loss %", "Mpps", "lat avg us", "lat p99 us", "lat max us");
	for (uint16_t k = 0, first = 1; k < t->nlinks; k++) {
		struct link_stat *s = &ls[k];
		uint64_t acc = 0, p99 = 0;
		double loss = s->expected ? 100.0 * ((double)s->expected - (double)s->received) / (double)s->expected : 0;

		if (s->expected == 0 && s->received == 0)
			continue;
		for (int bkt = 0; bkt < LAT_BUCKETS; bkt++) {
			acc += s->hist[bkt];
			if (p99 == 0 && acc * 100 >= s->received * 99)
				p99 = 1ull << (bkt + 1); /* upper bound of the bucket */
		}
		if (json)
			printf("%s\"%s\": {\"expected\": %" PRIu64 ", \"received\": %" PRIu64 ", \"loss_pct\": %.4f, "
			       "\"lat_avg_ns\": %.0f, \"lat_p99_ns_max\": %" PRIu64 ", \"lat_min_ns\": %" PRIu64
			       ", \"lat_max_ns\": %" PRIu64 "}", first ? "" : ", ", t->links[k].name, s->expected, s->received,
			       loss, s->received ? (double)s->lat_sum_ns / (double)s->received : 0, p99, s->lat_min_ns,
			       s->lat_max_ns);
		else
			printf("%-20s %12" PRIu64 " %12" PRIu64 " %10.4f %9.3f %10.1f %10.1f %10.1f\n", t->links[k].name,
			       s->expected, s->received, loss, (double)s->received / secs / 1e6,
			       s->received ? (double)s->lat_sum_ns / (double)s->received / 1e3 : 0, (double)p99 / 1e3,
			       (double)s->lat_max_ns / 1e3);
		first = 0;
	}
	if (json)
		printf("}}\n");
	dp_ports_close(&ports);
	rte_mempool_free(pool);
	release(fl, nflows, ls, fib4, fib6, cls, t);
	rte_eal_cleanup();
	return 0;
}
