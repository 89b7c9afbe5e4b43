/*
 * regionfwd-gen - a DPDK traffic generator for load tests of regionfwd on lab
 * hardware (docs/load-testing.md).
 *
 * It builds its traffic from a table document: for each region, sources at
 * the edges and inside of its prefixes (network address, last address, a
 * random one; IPv4 and IPv6), each paired with a service port (each range
 * at its edges and inside); fixed frame sizes of 64..1518 bytes or an IMIX (7:4:1 of 64, 570,
 * 1518). Every frame carries a magic, the run's id with a sequence number,
 * and the TSC at send time in its payload: what comes back is matched to
 * the flow it was sent as, so a frame on another link than the table's, a
 * frame the table drops, one of an earlier run and one that is not the
 * generator's at all are each told apart from what arrived as it should.
 * It sends at a target rate (or as fast as it can) on one port -- a NIC,
 * or any vdev -- and measures what comes back on the receive ports: per link of the table (known by the next-hop MAC and VLAN
 * tag regionfwd writes), packets, rate, loss against what the table says
 * that link should carry (computed with the same classifier and an rte_fib
 * of the table), and latency. With --pcap it writes the traffic to a file
 * for tcpreplay or TRex and sends nothing.
 *
 *   regionfwd-gen [EAL] -- --table T (--tx DEV [--rx DEV ...] | --pcap FILE)
 *                 [--rate PPS] [--duration S] [--size N|imix] [--flows N]
 *                 [--dst-mac MAC] [--json]     (every option: regionfwd-gen -- --help)
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_kvargs.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "dp_log.h"
#include "dp_port.h"
#include "fwd_class.h"
#include "fwd_opts.h"
#include "fwd_parse.h"
#include "fwd_pktops.h"

RTE_LOG_REGISTER_DEFAULT(dp_logtype, INFO);

#define MAGIC 0x52464e47454e3031ull /* "RFNGEN01" */
#define MAX_FLOWS (1u << 20)
#define MAX_DURATION_S 31536000 /* a year: duration x TSC hz stays in 64 bits */
#define RATE_RULE "--rate takes packets a second: 0 (as fast as the port takes) or 1..1e9"
#define DURATION_RULE "--duration takes seconds, 0.001 to 31536000"
/* The stamp's second word: the run's id above SEQ_BITS of sequence number
 * (2^40 frames: 20 hours at 14.88 Mpps). */
#define SEQ_BITS 40
#define SEQ_MASK ((1ull << SEQ_BITS) - 1)
#define RUN_ID_MAX 0xffffffu
/* Which sequence numbers came back, over the last DUP_WINDOW sent (2^26:
 * 4.5 s at 14.88 Mpps, 8 MiB): a second copy is a duplicate. */
#define DUP_WINDOW (1ull << 26)
#define EXIT_USAGE 2 /* as regionfwd, regiond and regionctl */
#define MAX_RX 8
#define LAT_BUCKETS 40 /* log2 of nanoseconds */

struct flow {
	uint8_t *frame;
	uint16_t len;
	uint16_t link; /* expected link, FWD_LINK_NONE when the table drops it */
	uint16_t mirror; /* the link its policy mirrors a copy to, or FWD_LINK_NONE */
};

/* A link as it is told apart on the wire: regionfwd writes its next-hop MAC
 * and, when it has a vlan, one 802.1Q tag (a frame's own tags are removed). */
struct wire_link {
	uint64_t key; /* next-hop MAC << 12 | VLAN id, 0 untagged: wire_key() */
	uint16_t link;
};

struct link_stat {
	uint64_t expected, received, bytes;
	/* arrived on this link, sent as a flow the table sends elsewhere or drops */
	uint64_t misrouted;
	/* copies of frames whose policy mirrors them here: sent, came back */
	uint64_t mirror_expected, mirrored;
	/* 128 bits: 64 wrap after ~100 days at 14.88 Mpps and 136 us */
	unsigned __int128 lat_sum_ns;
	uint64_t lat_min_ns, lat_max_ns;
	uint64_t hist[LAT_BUCKETS];
};

static volatile sig_atomic_t stop; /* the signal that stopped the run, 0: none */

static void on_signal(int sig)
{
	stop = sig;
}

/* @d TSC cycles at @hz in nanoseconds, without the 64-bit overflow of
 * d * 1e9 (past 2^64 / 1e9 cycles: 8.8 s at 2.1 GHz). */
static uint64_t tsc_ns(uint64_t d, uint64_t hz)
{
	return d / hz * 1000000000ull + d % hz * 1000000000ull / hz;
}

/* Frame @i's bytes on the wire under --size @size, or -1 when @size is
 * neither imix nor 64..1518 in decimal digits alone (the doc's range:
 * 60 was taken once, and gave what 64 gives). */
static int frame_size(const char *size, uint32_t i)
{
	static const uint16_t imix[12] = {64, 64, 64, 64, 64, 64, 64, 570, 570, 570, 570, 1518};
	int v = 0;

	if (strcmp(size, "imix") == 0)
		return imix[(i * 7) % 12];
	if (*size == '\0' || strlen(size) > 4)
		return -1;
	for (const char *c = size; *c; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		v = v * 10 + (*c - '0');
	}
	return v >= 64 && v <= 1518 ? v : -1;
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
		/* The top bit of rnd()'s 31 (the state's bit 63): the low bits
		 * of an LCG repeat soon (martian picks came in runs, a review). */
		int set = which == 1 || (which == 2 && ((rnd(seed) >> 30) & 1));

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

/* The L4 header the generator writes before its stamp: TCP without options,
 * SCTP's common header (no chunk: the stamp follows it), UDP. */
static int l4_header_len(uint8_t proto)
{
	return proto == FWD_PROTO_TCP ? 20 : proto == FWD_PROTO_SCTP ? 12 : 8;
}

/* Ethernet + IPv4/IPv6 + TCP/UDP/SCTP (+ the generator's 24-byte stamp). */
static uint16_t build_frame(uint8_t *f, int len, const uint8_t *dmac, int family,
			    const uint8_t *src, uint8_t proto, uint16_t dport, uint16_t sport)
{
	int l3 = 14, ihl = family == 4 ? 20 : 40, l4len = l4_header_len(proto);
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
	} else if (proto == FWD_PROTO_SCTP) {
		l4[7] = 1; /* verification tag 1: 0 is only an INIT's */
	} else {
		l4[4] = (uint8_t)((len - l3 - ihl) >> 8);
		l4[5] = (uint8_t)(len - l3 - ihl);
	}
	return (uint16_t)len; /* L4 checksums left 0: regionfwd does not check them */
}

static uint64_t stamp_off(const uint8_t *f)
{
	return 14u + (f[12] == 0x08 ? 20u : 40u) +
	       (uint64_t)l4_header_len(f[f[12] == 0x08 ? 23 : 20]);
}

static int write_pcap(const char *path, struct flow *fl, uint32_t n, uint32_t run_id)
{
	FILE *f = fopen(path, "wb");
	uint32_t hdr[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};

	if (f == NULL)
		return -errno;
	fwrite(hdr, 4, 6, f);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t rec[4] = {i / 1000000, i % 1000000, fl[i].len, fl[i].len};
		uint64_t seq = (uint64_t)run_id << SEQ_BITS | i, magic = MAGIC;
		uint8_t *st = fl[i].frame + stamp_off(fl[i].frame);

		memcpy(st, &magic, 8);
		memcpy(st + 8, &seq, 8);
		fwrite(rec, 4, 4, f);
		fwrite(fl[i].frame, 1, fl[i].len, f);
	}
	return fclose(f) ? -errno : 0;
}

/* What the command line sets. The values start as the option table's
 * defaults, parsed like the command line. */
struct gen_opts {
	const char *table, *tx, *pcap, *size;
	struct fwd_opt_list rx;
	double rate, duration, link_wait;
	uint32_t flows, run_id;
	uint8_t dst_mac[6];
	int json;
};

/* The options that choose what the generator does; how they combine. */
#define GEN_MODES "--table T (--tx DEV [--rx DEV]... | --pcap FILE)"

#define AT(m) offsetof(struct gen_opts, m)

/* Every option, once: getopt_long's table, the usage line, --help and the
 * defaults come from here, in this order. */
static const struct fwd_opt options[] = {
	{.name = "table",
	 .arg = "T",
	 .kind = FWD_OPT_STR,
	 .off = AT(table),
	 .mark = 1, /* a mode option: in GEN_MODES */
	 .help = "the table document the traffic is built from"},
	{.name = "tx",
	 .arg = "DEV",
	 .kind = FWD_OPT_STR,
	 .off = AT(tx),
	 .mark = 1, /* a mode option: in GEN_MODES */
	 .help = "the port to send on: PCI address, ethdev name or vdev devargs"},
	{.name = "rx",
	 .arg = "DEV",
	 .kind = FWD_OPT_LIST,
	 .off = AT(rx),
	 .max = MAX_RX,
	 .mark = 1, /* a mode option: in GEN_MODES */
	 .help = "a port to receive on (repeat for several, at most 8)"},
	{.name = "pcap",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(pcap),
	 .mark = 1, /* a mode option: in GEN_MODES */
	 .help = "write the frames to a pcap and exit (nothing sent)"},
	{.name = "rate",
	 .arg = "PPS",
	 .def = "0",
	 .kind = FWD_OPT_REAL,
	 .off = AT(rate),
	 .max = 1000000000,
	 .refused = RATE_RULE,
	 .help = "target rate; 0: as fast as the port takes it"},
	{.name = "duration",
	 .arg = "S",
	 .def = "10",
	 .kind = FWD_OPT_REAL,
	 .off = AT(duration),
	 .max = MAX_DURATION_S,
	 .refused = DURATION_RULE,
	 .help = "seconds of sending, then (with --rx) up to 10 s of collecting"},
	{.name = "link-wait",
	 .arg = "S",
	 .def = "9",
	 .kind = FWD_OPT_REAL,
	 .off = AT(link_wait),
	 .max = 600,
	 .refused = "--link-wait takes seconds, 0 to 600",
	 .help = "seconds to wait for every port's link before sending (a NIC's may take "
		 "seconds); a port still down is warned about"},
	{.name = "size",
	 .arg = "N|imix",
	 .def = "64",
	 .kind = FWD_OPT_STR,
	 .off = AT(size),
	 .help = "bytes on the wire, 64..1518, or imix (7:4:1 of 64, 570, 1518)"},
	{.name = "flows",
	 .arg = "N",
	 .def = "4096",
	 .kind = FWD_OPT_U32,
	 .off = AT(flows),
	 .min = 1,
	 .max = MAX_FLOWS,
	 .refused = "--flows takes 1..1048576",
	 .help = "distinct frames, sent round robin, 1..1048576"},
	{.name = "dst-mac",
	 .arg = "MAC",
	 .def = "02:00:00:00:00:ff",
	 .kind = FWD_OPT_MAC,
	 .off = AT(dst_mac),
	 .help = "destination MAC: regionfwd's ingress port"},
	{.name = "run-id",
	 .arg = "N",
	 .kind = FWD_OPT_U32,
	 .off = AT(run_id),
	 .max = RUN_ID_MAX,
	 .refused = "--run-id takes 0..16777215",
	 .help = "the id in every frame's stamp (default: random); frames of another id are "
		 "counted as stale"},
	{.name = "json",
	 .kind = FWD_OPT_FLAG,
	 .off = AT(json),
	 .once = 1, /* every option but --rx is given once (docs/load-testing.md) */
	 .help = "the result as JSON"},
	{.name = "help", .kind = FWD_OPT_HELP, .help = "this help"},
};

#undef AT

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

_Static_assert(MAX_RX == 8, "the --rx help says 'at most 8'");
_Static_assert(MAX_FLOWS == 1048576, "the --flows help says '1..1048576'");

/* "usage: ..." with every option, on one line (no newline). */
static void usage_line(char *buf, size_t len)
{
	size_t used = (size_t)snprintf(buf, len, "usage: regionfwd-gen [EAL] -- " GEN_MODES);

	for (size_t i = 0; i < NOPTIONS && used < len; i++) {
		const struct fwd_opt *d = &options[i];

		if (d->mark || d->kind == FWD_OPT_HELP)
			continue;
		used += (size_t)snprintf(buf + used, len - used, " [--%s%s%s]", d->name,
					 d->arg ? " " : "", d->arg ? d->arg : "");
	}
}

static void usage(FILE *out)
{
	char line[512];

	usage_line(line, sizeof(line));
	fprintf(out, "%s\n\n", line);
	fwd_opts_print(out, options, NOPTIONS);
	fprintf(out, "\nEAL options (-l, --vdev, --no-huge, ...) go before '--'; they are\n"
		     "DPDK's EAL parameters (DPDK's Linux guide lists them).\n");
}

/* Whether the command line gave option @name (@given: fwd_opts_parse's). */
static int gave(uint64_t given, const char *name)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (strcmp(options[i].name, name) == 0)
			return (given >> i & 1) != 0;
	return 0;
}

/* The arguments after EAL's into @o, checked. @return -1 to go on, or 0
 * after --help; a usage error exits 2, naming the option. */
static int parse_options(int argc, char **argv, struct gen_opts *o)
{
	static const char *const sending[] = {"rx", "rate", "duration", "json", "link-wait"};
	struct fwd_err e = {0};
	uint64_t given = 0;
	char line[512];

	_Static_assert(NOPTIONS <= 64, "gave() reads one bit an option");
	switch (fwd_opts_parse(options, NOPTIONS, argc, argv, o, &given, NULL, &e)) {
	case FWD_OPTS_HELP:
		usage(stdout);
		return 0;
	case FWD_OPTS_ERROR:
		usage_line(line, sizeof(line));
		rte_exit(EXIT_USAGE, "%s\n%s\n", e.reason, line);
	case FWD_OPTS_OK:
		break;
	}
	/* Below 1 pps a burst's spacing overflows the TSC's 64 bits. */
	if (o->rate > 0 && o->rate < 1)
		rte_exit(EXIT_USAGE, "%s (given \"%g\")\n", RATE_RULE, o->rate);
	if (!(o->duration >= 0.001))
		rte_exit(EXIT_USAGE, "%s (given \"%g\")\n", DURATION_RULE, o->duration);
	if (frame_size(o->size, 0) < 0)
		rte_exit(EXIT_USAGE, "--size takes 64..1518 or imix (given \"%.40s\")\n", o->size);
	if (o->table == NULL)
		rte_exit(EXIT_USAGE,
			 "need --table T: the table document the traffic is built from\n");
	if (o->tx == NULL && o->pcap == NULL)
		rte_exit(EXIT_USAGE,
			 "need --tx DEV (send, and receive on --rx) or --pcap FILE (write "
			 "the frames to a file)\n");
	if (o->tx && o->pcap)
		rte_exit(EXIT_USAGE, "--tx and --pcap: give one (--pcap writes a file and sends "
				     "nothing)\n");
	for (size_t i = 0; o->pcap && i < sizeof(sending) / sizeof(sending[0]); i++)
		if (gave(given, sending[i]))
			rte_exit(EXIT_USAGE,
				 "--%s does not apply with --pcap, which writes a file and "
				 "sends nothing\n",
				 sending[i]);
	/* A port's devargs are copied into the node's device field: a longer
	 * one was cut there and probed so, where the link check read it whole.
	 * The send port given as a receive port too was found by the port setup
	 * only after the table and the flows were built (minutes, for some). */
	for (unsigned i = 0; i <= o->rx.n; i++) {
		const size_t room = sizeof(((struct dp_node_port *)0)->device);
		const char *dev = i == 0 ? o->tx : o->rx.v[i - 1];

		if (dev && strlen(dev) >= room)
			rte_exit(EXIT_USAGE, "--%s takes at most %zu characters (given %zu)\n",
				 i == 0 ? "tx" : "rx", room - 1, strlen(dev));
		if (dev && i > 0 && o->tx && strcmp(dev, o->tx) == 0)
			rte_exit(EXIT_USAGE,
				 "--rx %s is the --tx port: receive on another port "
				 "(regionfwd's egress)\n",
				 dev);
	}
	if (o->rate > 0 && o->rate * o->duration < 1)
		rte_exit(EXIT_USAGE, "--rate %g for --duration %g sends no frame\n", o->rate,
			 o->duration);
	/* Random unless given, for a run: frames still in flight from an
	 * earlier run (a stalled forwarder's, the last trial of a search) are
	 * not this one's. 0 for --pcap: the same table gives the same file. */
	if (!gave(given, "run-id") && o->pcap == NULL)
		o->run_id = (uint32_t)((rte_rdtsc() ^ (uint64_t)getpid() << 24) *
					       0x9e3779b97f4a7c15ull >>
				       40) &
			    RUN_ID_MAX;
	return -1;
}

/* A run: the options, the table and what is built from it, the ports and
 * the results. */
struct gen {
	struct gen_opts o;
	struct fwd_table *t;
	struct fwd_class *cls;
	struct rte_fib *fib4;
	struct rte_fib6 *fib6;
	struct flow *fl; /* o.flows of them */
	struct link_stat *ls; /* per link of the table */
	struct wire_link *wire; /* sorted, each key once: what count_received() looks up */
	uint16_t nwire;
	struct rte_mempool *pool;
	struct dp_ports ports;
	uint64_t hz, t0;
	uint64_t sent, expected_drop;
	/* Of what came back: frames of this run on no link the table sends
	 * their flow to (another link, no link, a flow the table drops); frames
	 * of another run; frames without the generator's stamp. Of the
	 * unexpected: second copies, and first copies of frames of flows the
	 * table drops (a forwarder passing what it should drop). */
	uint64_t unexpected, stale, foreign, duplicates, forwarded_drops;
	uint64_t *seen; /* DUP_WINDOW bits, one a sequence number in flight */
	/* the same for mirror copies; NULL when no flow's policy mirrors */
	uint64_t *seen_mirror;
	int interrupted; /* the signal that ended the run, 0: none */
	int mirrors; /* some flow's policy mirrors it */
	/* TSC: the most a burst inside the window went behind its schedule
	 * (--rate) */
	uint64_t max_lag;
};

/* The table and its classifier. */
static void load_table(struct gen *g)
{
	struct fwd_err err = {0};
	char b[512];

	uint32_t acting = 0;

	g->t = fwd_table_load(g->o.table, &err);
	if (g->t == NULL)
		rte_exit(EXIT_FAILURE, "%s\n", fwd_err_str(&err, b, sizeof(b)));
	if ((g->cls = fwd_class_build(g->t)) == NULL)
		rte_exit(EXIT_FAILURE, "out of memory for the table's classifier\n");
	if (g->t->nprefix4 + g->t->nprefix6 == 0)
		rte_exit(EXIT_FAILURE, "the table has no prefixes to draw sources from\n");
	for (uint32_t i = 0; i < g->t->ncontent; i++)
		acting += g->t->content[i].action == FWD_CA_DROP ||
			  g->t->content[i].action == FWD_CA_STEER ||
			  g->t->content[i].action == FWD_CA_MIRROR;
	/* The counts follow the policies alone (expected_link()). */
	if (acting)
		fprintf(stderr,
			"regionfwd-gen: note: %u content rule%s of the table drop, steer or "
			"mirror; frames are expected as the policies decide (their payload is "
			"a stamp and zeros: no TLS, HTTP or DNS), so a rule that matches them "
			"(a payload signature, a rule on unreadable names) shows as lost or "
			"misrouted frames\n",
			acting, acting == 1 ? "" : "s");
}

/* A link's look on the wire as one number: the links sort by it, and a
 * frame's link is one binary search away (a table has up to 1024 links). */
static uint64_t wire_key(const uint8_t mac[6], uint16_t vlan)
{
	uint64_t k = 0;

	for (int i = 0; i < 6; i++)
		k = k << 8 | mac[i];
	return k << 12 | (vlan & 0xfffu);
}

static int cmp_wire_key(const void *a, const void *b)
{
	const struct wire_link *x = a, *y = b;

	return (x->key > y->key) - (x->key < y->key);
}

static int cmp_wire(const void *a, const void *b)
{
	const struct wire_link *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return (x->link > y->link) - (x->link < y->link);
}

/* The links by how their frames look on the wire, for count_received().
 * Two links to one router that differ only by VLAN are two links; two that
 * do not differ at all cannot be told apart by what comes back: said here,
 * before anything is sent, and their frames counted for the first in the
 * table. @return 0 or -ENOMEM */
static int index_links(struct gen *g)
{
	const struct fwd_table *t = g->t;
	uint16_t n = 0;

	g->wire = calloc(t->nlinks + 1u, sizeof(*g->wire));
	if (g->wire == NULL)
		return -ENOMEM;
	for (uint16_t k = 0; k < t->nlinks; k++)
		g->wire[k] =
			(struct wire_link){wire_key(t->links[k].next_hop_mac, t->links[k].vlan), k};
	qsort(g->wire, t->nlinks, sizeof(*g->wire), cmp_wire);
	for (uint16_t k = 0; k < t->nlinks; k++) {
		const struct wire_link *w = &g->wire[k];

		if (n > 0 && g->wire[n - 1].key == w->key) {
			const struct fwd_link *first = &t->links[g->wire[n - 1].link],
					      *l = &t->links[w->link];
			const uint8_t *m = l->next_hop_mac;
			char tag[16] = "untagged";

			if (l->vlan)
				snprintf(tag, sizeof(tag), "VLAN %u", l->vlan);
			fprintf(stderr,
				"regionfwd-gen: links '%s' and '%s' look the same on the wire "
				"(next hop %02x:%02x:%02x:%02x:%02x:%02x, %s): what comes back for "
				"either is counted for '%s'\n",
				first->name, l->name, m[0], m[1], m[2], m[3], m[4], m[5], tag,
				first->name);
			continue;
		}
		g->wire[n++] = *w;
	}
	g->nwire = n;
	return 0;
}

/* Groups of 256 entries ("tbl8") an rte_fib of @t's IPv4 prefixes may take:
 * DIR-24-8 gives a /24 that holds a longer prefix one, so one per prefix
 * longer than /24 at most; plus one, as rte_fib refuses a count of 0. A
 * fixed 65,535 once made larger tables lose prefixes without a word. */
static uint32_t tbl8_needed4(const struct fwd_table *t)
{
	uint64_t n = 1;

	for (uint32_t i = 0; i < t->nprefix4; i++)
		n += t->prefix4[i].len > 24;
	return (uint32_t)RTE_MIN(n, (uint64_t)INT32_MAX);
}

/* Whether prefix @q holds prefix @p (itself included). */
static int covers6(const struct fwd_prefix6 *q, const struct fwd_prefix6 *p)
{
	unsigned full = q->len / 8u, rest = q->len % 8u;

	if (q->len > p->len || memcmp(q->addr, p->addr, full) != 0)
		return 0;
	return rest == 0 || ((q->addr[full] ^ p->addr[full]) & (0xffu << (8 - rest)) & 0xff) == 0;
}

/* The same for rte_fib6's trie, whose levels are 24, 32, ... 120 bits: an
 * add of a prefix of length L past /24 whose longest enclosing prefix has
 * length P reserves at most ceil(L / 8) - ceil(max(P, 24) / 8) groups (the
 * levels between them), and the groups a table holds are at most that sum
 * too (each block that holds a longer prefix is a level of the outermost
 * such prefix in it). The table's prefixes are sorted by address then
 * length, so the enclosing ones are a stack. The sum is above what the
 * table holds (505,248 against 308,892 groups for scripts/gen-table's
 * 200k IPv6 prefixes): rte_fib6 reserves per prefix, where prefixes side
 * by side share their blocks; each group is 1 KiB. Plus two: the check
 * refuses the add that would reserve the last group, and an add whose
 * length is a multiple of 8 takes a group more for a moment. */
static uint32_t tbl8_needed6(const struct fwd_table *t)
{
	const struct fwd_prefix6 *stack[129]; /* lengths strictly grow up the stack */
	unsigned depth = 0;
	uint64_t n = 2;

	for (uint32_t i = 0; i < t->nprefix6; i++) {
		const struct fwd_prefix6 *p = &t->prefix6[i];
		unsigned outer;

		while (depth > 0 && !covers6(stack[depth - 1], p))
			depth--;
		outer = depth > 0 ? stack[depth - 1]->len : 0;
		if (p->len > 24)
			n += (p->len + 7u) / 8u - (RTE_MAX(outer, 24u) + 7u) / 8u;
		if (depth < RTE_DIM(stack))
			stack[depth++] = p;
	}
	return (uint32_t)RTE_MIN(n, (uint64_t)INT32_MAX);
}

/* The largest free block of DPDK memory on any socket, in bytes. */
static size_t largest_free_block(void)
{
	size_t best = 0;

	for (unsigned i = 0; i < rte_socket_count(); i++) {
		struct rte_malloc_socket_stats st;

		if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &st) == 0)
			best = RTE_MAX(best, st.greatest_free_size);
	}
	return best;
}

/* @err for an rte_fib or rte_fib6 of @nprefix prefixes and @groups groups
 * that rte_fib*_create() refused. Its tables are DPDK memory, so what the
 * EAL was given (-m, hugepages) is what a big table outgrows, and the
 * message says so and how much the tables take. rte_errno alone does not
 * tell: rte_fib6_create() reports a table it could not allocate as EINVAL
 * (DPDK 22.11), so a request larger than any free block is taken for
 * what it is. */
static int fib_create_failed(const struct fwd_table *t, int family, uint32_t nprefix,
			     uint32_t groups, struct fwd_err *err)
{
	int e = rte_errno ? rte_errno : ENOMEM;
	/* The first table (2^24 entries) and the groups (one more: rte_fib6
	 * allocates a spare), 4 bytes an entry; the RIB comes on top. */
	uint64_t need = ((1ull << 24) + ((uint64_t)groups + 1) * 256) * 4;
	size_t free_block = largest_free_block();

	if (e == ENOMEM || need > free_block) {
		fwd_err_fail(
			err, FWD_R_INTERNAL, t->source, 0, "regions",
			"cannot create the generator's IPv%d FIB of %u prefixes: not enough "
			"DPDK memory (rte_errno: %s): its tables (2^24 entries and %u groups of "
			"256) alone take %" PRIu64 " MiB, the largest free block is %zu MiB; "
			"give the EAL more memory (-m or --socket-mem, more hugepages)",
			family, nprefix, rte_strerror(e), groups, need >> 20, free_block >> 20);
		return -ENOMEM;
	}
	fwd_err_fail(err, FWD_R_INTERNAL, t->source, 0, "regions",
		     "cannot create the generator's IPv%d FIB of %u prefixes (%u groups): %s",
		     family, nprefix, groups, rte_strerror(e));
	return -e;
}

/* @err for prefix @i of family @family that rte_fib*_add() refused with
 * @rc: no flow may be counted for a link the table does not give it. */
static int fib_add_failed(const struct fwd_table *t, int family, uint32_t i, int rc,
			  struct fwd_err *err)
{
	char a[INET6_ADDRSTRLEN];
	uint32_t line;
	uint8_t len;

	if (family == 4) {
		uint32_t be = htonl(t->prefix4[i].addr);

		inet_ntop(AF_INET, &be, a, sizeof(a));
		line = t->prefix4[i].line, len = t->prefix4[i].len;
	} else {
		inet_ntop(AF_INET6, t->prefix6[i].addr, a, sizeof(a));
		line = t->prefix6[i].line, len = t->prefix6[i].len;
	}
	fwd_err_set(err, t->source, line, "regions",
		    "cannot add %s/%u to the generator's IPv%d FIB: %s", a, len, family,
		    strerror(-rc));
	return rc;
}

/* An rte_fib of the table's prefixes: the expected link of each flow
 * comes from the table's own longest match and classifier. DPDK's rte_fib,
 * not regionfwd's own FIBs (fwd_fib4, fwd_fib6): the live loop then checks
 * regionfwd's lookups against another implementation. Sized for the table,
 * and every add checked: a prefix left out would count its flows for
 * another link, or as dropped, without a word.
 * @return 0, or -errno with @err naming the table and what failed */
static int build_fibs(struct gen *g, struct fwd_err *err)
{
	const struct fwd_table *t = g->t;
	struct rte_fib_conf c4 = {
		.type = RTE_FIB_DIR24_8,
		.default_nh = FWD_REGION_UNKNOWN,
		.max_routes = t->nprefix4 + 1,
		.dir24_8 = {.nh_sz = RTE_FIB_DIR24_8_4B, .num_tbl8 = tbl8_needed4(t)}};
	struct rte_fib6_conf c6 = {
		.type = RTE_FIB6_TRIE,
		.default_nh = FWD_REGION_UNKNOWN,
		.max_routes = t->nprefix6 + 1,
		.trie = {.nh_sz = RTE_FIB6_TRIE_4B, .num_tbl8 = tbl8_needed6(t)}};
	int rc;

	g->fib4 = rte_fib_create("gen4", SOCKET_ID_ANY, &c4);
	if (g->fib4 == NULL)
		return fib_create_failed(t, 4, t->nprefix4, c4.dir24_8.num_tbl8, err);
	g->fib6 = rte_fib6_create("gen6", SOCKET_ID_ANY, &c6);
	if (g->fib6 == NULL)
		return fib_create_failed(t, 6, t->nprefix6, c6.trie.num_tbl8, err);
	for (uint32_t i = 0; i < t->nprefix4; i++) {
		rc = rte_fib_add(g->fib4, t->prefix4[i].addr, t->prefix4[i].len,
				 t->prefix4[i].region);
		if (rc < 0)
			return fib_add_failed(t, 4, i, rc, err);
	}
	for (uint32_t i = 0; i < t->nprefix6; i++) {
		rc = rte_fib6_add(g->fib6, t->prefix6[i].addr, t->prefix6[i].len,
				  t->prefix6[i].region);
		if (rc < 0)
			return fib_add_failed(t, 6, i, rc, err);
	}
	return 0;
}

/* The link the table sends frame @p (of family @fam) to, or FWD_LINK_NONE;
 * the link its policy mirrors a copy to into *@mirror (FWD_LINK_NONE: none;
 * a drop's copy too). Content rules are not applied: the generator's
 * payload is its stamp and zeros (docs/load-testing.md). */
static uint16_t expected_link(const struct gen *g, int fam, const struct fwd_pkt *p,
			      uint16_t *mirror)
{
	struct fwd_decision d;
	uint64_t nh;

	if (fam == 4) {
		uint32_t ip = fwd_rd32(p->src);

		rte_fib_lookup_bulk(g->fib4, &ip, &nh, 1);
	} else {
		uint8_t a6[1][RTE_FIB6_IPV6_ADDR_SIZE];

		memcpy(a6[0], p->src, 16);
		rte_fib6_lookup_bulk(g->fib6, a6, &nh, 1);
	}
	fwd_class_decide_pkt(g->cls, (uint16_t)nh, p, &d);
	*mirror = d.mirror;
	return d.drop ? FWD_LINK_NONE : d.link;
}

/* A port of range @r: 0 its lo, 1 its hi, 2 one inside (between them when
 * there is room). Which one comes from how many times the range was taken
 * before, not from the flow's number: `flow & 4` once gave a range only lo
 * or only hi whenever the count of ranges was a multiple of 8. */
static uint16_t range_port(const struct fwd_svc_range *r, int which, uint64_t *seed)
{
	uint32_t span = (uint32_t)r->hi - r->lo;

	if (which == 0 || span == 0)
		return r->lo;
	if (which == 1)
		return r->hi;
	return span < 2 ? r->lo : (uint16_t)(r->lo + 1u + rnd(seed) % (span - 1u));
}

/* The link @l is counted as: the first of the table's links with its
 * next-hop MAC and tag (what count_received() can tell on the wire). */
static uint16_t wire_link_of(const struct gen *g, uint16_t l)
{
	struct wire_link want = {0}, *w;

	if (l == FWD_LINK_NONE)
		return l;
	want.key = wire_key(g->t->links[l].next_hop_mac, g->t->links[l].vlan);
	w = bsearch(&want, g->wire, g->nwire, sizeof(*g->wire), cmp_wire_key);
	return w ? w->link : l;
}

/* Every flow's frame and the link it is expected on. */
static void build_flows(struct gen *g)
{
	const struct fwd_table *t = g->t;
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	g->fl = calloc(g->o.flows, sizeof(*g->fl));
	g->ls = calloc(t->nlinks + 1u, sizeof(*g->ls));
	if (g->fl == NULL || g->ls == NULL)
		rte_exit(EXIT_FAILURE, "out of memory for %u flows\n", g->o.flows);
	for (uint32_t i = 0; i < g->o.flows; i++) {
		/* Walk the prefixes evenly, each in turn at its edges and inside. */
		uint32_t np = t->nprefix4 + t->nprefix6,
			 k = (uint32_t)((uint64_t)(i / 3) * 2654435761u % np);
		int fam = k < t->nprefix4 ? 4 : 6, which = (int)(i % 3);
		const uint8_t *addr;
		uint8_t plen, src[16] = {0}, sa[4];
		uint16_t mirror;
		/* The service ranges in turn, each at lo, then hi, then inside. */
		const struct fwd_svc_range *r = t->nranges ? &t->ranges[i % t->nranges] : NULL;
		uint8_t proto = r ? r->proto : FWD_PROTO_UDP;
		uint16_t dport = r ? range_port(r, (int)(i / t->nranges % 3), &seed)
				   : (uint16_t)(1 + rnd(&seed) % 65535);
		struct flow *f = &g->fl[i];
		struct fwd_pkt p;

		/* A source no router forwards from (an edge of 0.0.0.0/0, all of
		 * 224.0.0.0/4) would be dropped as martian_source: a prefix of
		 * only those is passed over for the next, and in one that
		 * holds some, an edge that is one takes an address inside (at
		 * most 5/8 of such a prefix is martian, in fe00::/7; half or
		 * less in any other: 63 random tries all miss with a chance
		 * near 1e-13, then the next prefix). */
		for (uint32_t skipped = 0;; k = (k + 1) % np) {
			fam = k < t->nprefix4 ? 4 : 6;
			if (fam == 4) {
				uint32_t a = t->prefix4[k].addr;

				sa[0] = (uint8_t)(a >> 24), sa[1] = (uint8_t)(a >> 16),
				sa[2] = (uint8_t)(a >> 8), sa[3] = (uint8_t)a;
				addr = sa;
				plen = t->prefix4[k].len;
			} else {
				addr = t->prefix6[k - t->nprefix4].addr;
				plen = t->prefix6[k - t->nprefix4].len;
			}
			if (!fwd_martian_prefix(addr, plen, fam)) {
				int tries = 0;

				do {
					memset(src, 0, sizeof(src));
					pick_addr(addr, plen, fam, tries ? 2 : which, &seed, src);
				} while ((fam == 4 ? fwd_martian4(src) : fwd_martian6(src)) &&
					 ++tries < 64);
				if (tries < 64)
					break;
			}
			if (++skipped == np)
				rte_exit(EXIT_FAILURE,
					 "every prefix of the table lies where no router forwards "
					 "from (0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, "
					 "224.0.0.0/3, ::, ::1, fe80::/10, ff00::/8), or gave no "
					 "other source in 64 tries: no source to send from\n");
		}
		if (proto != FWD_PROTO_TCP && proto != FWD_PROTO_UDP && proto != FWD_PROTO_SCTP)
			proto = FWD_PROTO_UDP,
			dport = (uint16_t)(1 + rnd(&seed) % 65535); /* port-less services: UDP */
		f->frame = malloc(1518);
		if (f->frame == NULL)
			rte_exit(EXIT_FAILURE, "out of memory for %u flows\n", g->o.flows);
		f->len = build_frame(f->frame, frame_size(g->o.size, i) - 4 /* FCS */, g->o.dst_mac,
				     fam, src, proto, dport, (uint16_t)(1024 + i % 60000));
		if (fwd_parse(f->frame, f->frame + f->len, &p) != FWD_OK)
			rte_exit(EXIT_FAILURE, "internal: flow %u does not parse\n", i);
		f->link = wire_link_of(g, expected_link(g, fam, &p, &mirror));
		f->mirror = wire_link_of(g, mirror);
		g->mirrors |= f->mirror != FWD_LINK_NONE;
	}
}

/* --pcap: the frames to a file, and what they are. */
static void emit_pcap(const struct gen *g)
{
	const struct fwd_table *t = g->t;
	int rc = write_pcap(g->o.pcap, g->fl, g->o.flows, g->o.run_id);

	if (rc)
		rte_exit(EXIT_FAILURE, "%s: %s\n", g->o.pcap, strerror(-rc));
	printf("regionfwd-gen: %u frames from %u IPv4 + %u IPv6 prefixes and %u service ranges to "
	       "%s (run id %u)\n",
	       g->o.flows, t->nprefix4, t->nprefix6, t->nranges, g->o.pcap, g->o.run_id);
}

/* Ports: one to send on, the rest to receive on (dp_port does the setup). */
static void open_ports(struct gen *g)
{
	struct dp_node node;

	dp_node_defaults(&node);
	node.nports = (uint16_t)(1 + g->o.rx.n);
	snprintf(node.ports[0].name, sizeof(node.ports[0].name), "tx");
	snprintf(node.ports[0].device, sizeof(node.ports[0].device), "%s", g->o.tx);
	for (unsigned i = 0; i < g->o.rx.n; i++) {
		snprintf(node.ports[1 + i].name, sizeof(node.ports[0].name), "rx%u", i);
		snprintf(node.ports[1 + i].device, sizeof(node.ports[0].device), "%s",
			 g->o.rx.v[i]);
		node.ports[1 + i].ingress = 1;
	}
	g->pool = rte_pktmbuf_pool_create("gen", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					  (int)rte_socket_id());
	if (g->pool == NULL)
		rte_exit(EXIT_FAILURE,
			 "cannot create the mbuf pool (16383 mbufs, about %u MiB of DPDK memory "
			 "after the FIBs): %s%s\n",
			 (unsigned)((16383u * (RTE_MBUF_DEFAULT_BUF_SIZE + 128u + 64u)) >> 20),
			 rte_strerror(rte_errno),
			 rte_errno == ENOMEM
				 ? "; give the EAL more memory (-m or --socket-mem, more hugepages)"
				 : "");
	if (dp_ports_init(&node, 1, g->pool, &g->ports))
		rte_exit(EXIT_FAILURE, "port setup failed (see above)\n");
}

/* Whether port @i (0: the send port) is down: by its PMD's link status, or
 * by the kernel interface its devargs name (--tx/--rx's own, or an EAL
 * --vdev's when --tx/--rx is the port's name). */
static int port_down(const struct gen *g, unsigned i)
{
	uint16_t pid = g->ports.port_id[i];
	const char *dir = i == 0 ? "tx" : "rx", *own = i == 0 ? g->o.tx : g->o.rx.v[i - 1];
	struct rte_eth_dev_info info;
	const struct rte_devargs *da = NULL;
	struct rte_eth_link link;

	if (rte_eth_dev_info_get(pid, &info) == 0 && info.device)
		da = rte_dev_devargs(info.device);
	return (rte_eth_link_get_nowait(pid, &link) == 0 &&
		link.link_status == RTE_ETH_LINK_DOWN) ||
	       dp_iface_down(own, dir) || (da && dp_iface_down(da->args, dir));
}

/* Wait up to --link-wait (9 s, as testpmd) for every port's link: a NIC reports its
 * link down for a second or more after it starts, and frames sent then are
 * refused or held. A port still down then is said (a send port that is
 * down may take frames into its ring and never send them: "sent" would
 * count them), and the run goes on. */
static void wait_links(const struct gen *g)
{
	uint64_t give_up =
		rte_get_timer_cycles() + (uint64_t)(g->o.link_wait * (double)rte_get_timer_hz());
	unsigned nports = 1 + g->o.rx.n, down;

	do {
		down = 0;
		for (unsigned i = 0; i < nports; i++)
			down += (unsigned)port_down(g, i);
		if (down == 0 || stop)
			return;
		rte_delay_ms(100);
	} while (rte_get_timer_cycles() < give_up);
	for (unsigned i = 0; i < nports; i++)
		if (port_down(g, i))
			fprintf(stderr, "regionfwd-gen: warning: the %s port (--%s %s) is down%s\n",
				i ? "receive" : "send", i ? "rx" : "tx",
				i ? g->o.rx.v[i - 1] : g->o.tx,
				i ? ": nothing can come back on it"
				  : ": what it takes may be queued, not sent");
}

/* One burst of @k (1..32) frames, stamped with the run's id, sequence and
 * TSC, from flow *@fi on; counts what the port took against the links they
 * are meant for. Frame seq is flow seq % flows: *@fi and sent move alike.
 * *@fi moves on by what the port took, not by 32: the frames it refused
 * are the next burst's first, so the count of a link's expected frames
 * stays the count of frames of its flows that went out.
 * @return 0, or -1 when the pool had no @k mbufs (nothing sent) */
static int send_burst(struct gen *g, uint32_t *fi, uint16_t k)
{
	struct rte_mbuf *m[32];
	uint32_t nflows = g->o.flows, first = *fi, at = first;

	if (rte_pktmbuf_alloc_bulk(g->pool, m, k) != 0)
		return -1;
	for (uint16_t i = 0; i < k; i++) {
		struct flow *f = &g->fl[at];
		uint8_t *d = rte_pktmbuf_mtod(m[i], uint8_t *);
		uint64_t magic = MAGIC, ts = rte_rdtsc(),
			 seq = (uint64_t)g->o.run_id << SEQ_BITS | ((g->sent + i) & SEQ_MASK);

		rte_memcpy(d, f->frame, f->len);
		memcpy(d + stamp_off(d), &magic, 8);
		memcpy(d + stamp_off(d) + 8, &seq, 8);
		memcpy(d + stamp_off(d) + 16, &ts, 8);
		m[i]->data_len = m[i]->pkt_len = f->len;
		at = at + 1 == nflows ? 0 : at + 1;
	}
	uint16_t n = rte_eth_tx_burst(g->ports.port_id[0], 0, m, k);

	for (uint16_t i = 0; i < n; i++) {
		uint16_t l = g->fl[first].link, mir = g->fl[first].mirror;
		uint64_t q = (g->sent + i) & (DUP_WINDOW - 1);

		g->seen[q / 64] &= ~(1ull << (q % 64)); /* this number's first copy is to come */
		if (l == FWD_LINK_NONE)
			g->expected_drop++;
		else
			g->ls[l].expected++;
		if (mir != FWD_LINK_NONE) {
			g->seen_mirror[q / 64] &= ~(1ull << (q % 64));
			g->ls[mir].mirror_expected++;
		}
		first = first + 1 == nflows ? 0 : first + 1;
	}
	*fi = first;
	g->sent += n;
	if (n < k)
		rte_pktmbuf_free_bulk(m + n, (unsigned)(k - n));
	return 0;
}

/* The link whose frames look like frame @d of @mb (parsed into @p): its
 * next-hop MAC and its tag, the VLAN id of the one tag the frame has (or
 * had: a NIC may strip it into the mbuf), or untagged. FWD_LINK_NONE for
 * any other, a frame of two tags included: regionfwd writes one at most. */
static uint16_t link_of_frame(const struct gen *g, const struct rte_mbuf *mb, const uint8_t *d,
			      const struct fwd_pkt *p)
{
	int stripped = (mb->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED) != 0;
	struct wire_link want = {0}, *w;
	uint16_t vid = 0;

	if (p->vlans + stripped > 1)
		return FWD_LINK_NONE;
	if (stripped)
		vid = mb->vlan_tci & 0xfff;
	else if (p->vlans == 1)
		vid = fwd_rd16(d + 14) & 0xfff;
	want.key = wire_key(d, vid);
	w = bsearch(&want, g->wire, g->nwire, sizeof(*g->wire), cmp_wire_key);
	return w ? w->link : FWD_LINK_NONE;
}

/* A frame received on the link its flow is sent to, @ns after it was sent. */
static void count_latency(struct link_stat *s, const struct rte_mbuf *mb, uint64_t ns)
{
	int bkt = 0;

	s->received++;
	s->bytes += mb->pkt_len;
	s->lat_sum_ns += ns;
	s->lat_min_ns = s->received == 1 || ns < s->lat_min_ns ? ns : s->lat_min_ns;
	s->lat_max_ns = ns > s->lat_max_ns ? ns : s->lat_max_ns;
	while (bkt + 1 < LAT_BUCKETS && (1ull << (bkt + 1)) <= ns)
		bkt++;
	s->hist[bkt]++;
}

/* A frame that came back at TSC @rnow: of this run (magic and run id) and
 * on the link the table sends its flow to, with its latency, or on the one
 * its policy mirrors it to (mirrored); of this run elsewhere (unexpected,
 * and misrouted on the link it came on); of another run (stale); or not
 * the generator's (foreign: LLDP, STP, a frame cut short).
 * @return 1 for a frame of this run, else 0 */
static int count_received(struct gen *g, const struct rte_mbuf *mb, uint64_t rnow)
{
	const uint8_t *d = rte_pktmbuf_mtod(mb, const uint8_t *);
	struct fwd_pkt p;
	const uint8_t *pl;
	uint32_t plen;
	uint8_t tf;
	uint64_t magic = 0, seq = 0, ts = 0, full;
	uint16_t l, want, mir;
	int forged = 0;

	if (fwd_parse(d, d + mb->data_len, &p) != FWD_OK ||
	    fwd_l4_payload(d, d + mb->data_len, &p, &pl, &plen, &tf) != 0)
		plen = 0;
	if (plen >= 24) {
		memcpy(&magic, pl, 8);
		memcpy(&seq, pl + 8, 8);
		memcpy(&ts, pl + 16, 8);
	}
	if (magic != MAGIC) {
		g->foreign++;
		return 0;
	}
	if (seq >> SEQ_BITS != g->o.run_id) {
		g->stale++;
		return 0;
	}
	/* The whole sequence number, from the SEQ_BITS the stamp keeps: the
	 * latest that is not after what was sent (only what was sent can come
	 * back; a later number is forged). */
	full = (g->sent & ~SEQ_MASK) | (seq & SEQ_MASK);
	if (full >= g->sent && g->sent < (1ull << SEQ_BITS))
		forged = 1;
	else if (full >= g->sent)
		full -= 1ull << SEQ_BITS;
	l = link_of_frame(g, mb, d, &p);
	want = forged ? FWD_LINK_NONE : g->fl[full % g->o.flows].link;
	mir = forged ? FWD_LINK_NONE : g->fl[full % g->o.flows].mirror;
	/* Older numbers than the window are not tracked: counted as they
	 * come. */
	const int tracked = !forged && full + DUP_WINDOW > g->sent;
	const uint64_t q = full & (DUP_WINDOW - 1), bit = 1ull << (q % 64);

	/* On the link its flow is sent or mirrored to. A copy is matched to its
	 * link before its number is marked as come: a copy elsewhere first (a
	 * flooding switch's) once took the number, and the right one after it
	 * counted as a duplicate, its link as lost. */
	if (l != FWD_LINK_NONE && (l == want || l == mir)) {
		if (l == want && !(tracked && (g->seen[q / 64] & bit))) {
			if (tracked)
				g->seen[q / 64] |= bit;
			count_latency(&g->ls[l], mb, tsc_ns(rnow - ts, g->hz));
		} else if (l == mir && !(tracked && (g->seen_mirror[q / 64] & bit))) {
			if (tracked)
				g->seen_mirror[q / 64] |= bit;
			g->ls[l].mirrored++;
		} else {
			/* A second copy: a duplicate, which a forwarder (or a
			 * flooding switch) must not make good a lost frame with. */
			g->duplicates++;
			g->unexpected++;
		}
		return 1;
	}
	g->unexpected++;
	if (l != FWD_LINK_NONE) {
		g->ls[l].misrouted++;
		/* Rewritten for a link: forwarded, where the table drops it; a
		 * first copy (the number's bit is free: a flow the table drops
		 * has no link to set it on), so that it counts against
		 * expected_drops. */
		if (want == FWD_LINK_NONE && !forged) {
			if (tracked && (g->seen[q / 64] & bit)) {
				g->duplicates++;
			} else {
				if (tracked)
					g->seen[q / 64] |= bit;
				g->forwarded_drops++;
			}
		}
	}
	return 1;
}

/* One burst from each receive port.
 * @return the frames of this run received (a lab switch's own frames every
 * second or two, or a stalled forwarder's of an earlier run, do not keep
 * the collecting going) */
static unsigned receive(struct gen *g)
{
	unsigned got = 0;

	for (unsigned q = 0; q < g->o.rx.n; q++) {
		struct rte_mbuf *m[32];
		uint16_t n = rte_eth_rx_burst(g->ports.port_id[1 + q], 0, m, 32);
		uint64_t rnow = rte_rdtsc();

		for (uint16_t i = 0; i < n; i++)
			got += (unsigned)count_received(g, m[i], rnow);
		rte_pktmbuf_free_bulk(m, n);
	}
	return got;
}

/* Whether every link has received all it was sent, mirror copies too. */
static int all_received(const struct gen *g)
{
	for (uint16_t k = 0; k < g->t->nlinks; k++)
		if (g->ls[k].received < g->ls[k].expected ||
		    g->ls[k].mirrored < g->ls[k].mirror_expected)
			return 0;
	return 1;
}

/* Send for --duration at --rate (or as fast as the port takes), receiving
 * all along, then collect what is in flight: until nothing came for two
 * seconds -- 50 ms once every link has all it was sent, for a frame that
 * should not have come (counted as not ours) to show -- or 10 s passed.
 *
 * The two seconds run from the last frame received, not from the end of
 * sending, and a receive comes after every reading of the clock: on a
 * loaded machine this process or the forwarder can go unscheduled for
 * hundreds of milliseconds (601 ms seen in CI, where half a second of quiet
 * once ended the count while regionfwd still held frames), and frames still
 * queued then are late, not lost. The wait costs nothing when nothing is
 * missing, and there is none without a receive port (--rx). Stops early on
 * SIGINT or SIGTERM.
 *
 * At a --rate, bursts are of rate / 1000 frames, rounded up (1..32: at most
 * a thousand bursts a second below 32,000 pps, where bursts of 32 sent
 * --rate 1 as 32 frames at once), and the run sends rate x duration
 * frames, no more. */
static void run_load(struct gen *g)
{
	uint64_t hz = g->hz, t0 = g->t0, end = t0 + (uint64_t)(g->o.duration * (double)hz);
	uint64_t quiet_end = 0, next = t0;
	/* rate / 1000 rounded up, without libm (not linked here) */
	double q = g->o.rate / 1000, per_ms = (double)(uint64_t)q + ((double)(uint64_t)q < q);
	uint16_t k = g->o.rate <= 0 || per_ms >= 32 ? 32 : per_ms < 1 ? 1 : (uint16_t)per_ms;
	uint64_t per_burst = g->o.rate > 0 ? (uint64_t)((double)hz * k / g->o.rate) : 0;
	uint64_t total = g->o.rate > 0 ? (uint64_t)(g->o.rate * g->o.duration + 0.5) : UINT64_MAX;
	/* the bursts due inside the window, at t0 + j x per_burst < end */
	uint64_t due = per_burst ? (end - t0 + per_burst - 1) / per_burst : 0, bursts = 0;
	uint32_t fi = 0;

	while (!stop) {
		uint64_t now = rte_rdtsc();
		/* The first burst goes even when the window closed before it
		 * could: a run of a millisecond whose process was scheduled late
		 * sent nothing, where rate x duration >= 1 was asked for. At a
		 * rate, every burst due inside the window goes, late ones for up
		 * to a second after it (this process unscheduled near its end
		 * sent 49 of --rate 100 --duration 0.5's 50 under a loaded CI),
		 * and those at the rate: all at once, they would flood a
		 * forwarder that had fallen behind too (a live loop lost half
		 * its frames once they went so). As fast as the port takes,
		 * the window is the run. */
		const int more =
			g->sent < total && (g->sent == 0 ? now < end + 10 * hz /* the drain's cap */
					    : per_burst	 ? bursts < due && now < end + hz
							 : now < end);

		if (more && (per_burst == 0 || now >= next)) {
			uint16_t want = (uint16_t)RTE_MIN((uint64_t)k, total - g->sent);

			/* behind the schedule inside the window, where the
			 * catching up goes back to back (after it, at the rate) */
			if (per_burst && now < end && now - next > g->max_lag)
				g->max_lag = now - next;
			if (send_burst(g, &fi, want) == 0) {
				bursts++;
				/* Inside the window a late burst's successors catch
				 * up back to back, after it they keep the rate. A cap
				 * on the catching up (twice the rate) sent a third of
				 * --rate 10000 in a loaded sanitizer stage, where the
				 * generator ran a third of the time: rate x duration
				 * is what a trial is, and the lag is reported
				 * (max_lag) for a script to refuse the trial. */
				next = now >= end ? now + per_burst : next + per_burst;
			}
		}
		unsigned got = receive(g);

		if (now < end || more)
			continue;
		/* Without a receive port nothing can come back: no drain. */
		if (g->o.rx.n == 0 && g->sent > 0)
			break;
		if (quiet_end == 0 || got > 0)
			quiet_end = now + (all_received(g) ? hz / 20 : 2 * hz);
		if (now >= quiet_end || now >= end + 10 * hz)
			break;
	}
}

static void report(const struct gen *g)
{
	const struct fwd_table *t = g->t;
	/* Rates over the sending window; the drain after it only collects. */
	double secs = RTE_MIN((double)(rte_rdtsc() - g->t0) / (double)g->hz, g->o.duration);
	const double lag_ms = (double)g->max_lag * 1e3 / (double)g->hz;

	if (g->o.json)
		printf("{\"run_id\": %u, \"interrupted\": %s, \"sent\": %" PRIu64
		       ", \"seconds\": %.6f, \"tx_mpps\": %.4f, \"expected_drops\": %" PRIu64
		       ", \"unexpected\": %" PRIu64 ", \"duplicates\": %" PRIu64
		       ", \"forwarded_drops\": %" PRIu64 ", \"stale\": %" PRIu64
		       ", \"foreign\": %" PRIu64 ", \"max_lag_ms\": %.3f, \"links\": {",
		       g->o.run_id, g->interrupted ? "true" : "false", g->sent, secs,
		       (double)g->sent / secs / 1e6, g->expected_drop, g->unexpected, g->duplicates,
		       g->forwarded_drops, g->stale, g->foreign, lag_ms);
	else {
		printf("regionfwd-gen: run %u: sent %" PRIu64
		       " frames in %.2f s (%.3f Mpps)%s, %" PRIu64
		       " the table drops; came back: %" PRIu64
		       " not where the table sends them (%" PRIu64
		       " of them second copies, %" PRIu64 " of flows the table drops), %" PRIu64
		       " of another run, %" PRIu64 " not the generator's\n",
		       g->o.run_id, g->sent, secs, (double)g->sent / secs / 1e6,
		       g->interrupted ? " (INTERRUPTED: a partial run)" : "", g->expected_drop,
		       g->unexpected, g->duplicates, g->forwarded_drops, g->stale, g->foreign);
		if (lag_ms >= 1)
			printf("sending fell up to %.1f ms behind its schedule in the window (this "
			       "process not scheduled, or a rate it cannot keep): the bursts due "
			       "meanwhile went back to back\n",
			       lag_ms);
		printf("\n%-20s %12s %12s %10s", "link", "expected", "received", "misrouted");
		if (g->mirrors)
			printf(" %12s %10s", "mirror exp", "mirrored");
		printf(" %10s %9s %10s %10s %10s\n", "loss %", "Mpps", "lat avg us", "lat p99 us",
		       "lat max us");
	}
	for (uint16_t k = 0, first = 1; k < t->nlinks; k++) {
		const struct link_stat *s = &g->ls[k];
		uint64_t acc = 0, p99 = 0;
		double loss = s->expected ? 100.0 * ((double)s->expected - (double)s->received) /
						    (double)s->expected
					  : 0;

		if (s->expected == 0 && s->received == 0 && s->misrouted == 0 &&
		    s->mirror_expected == 0 && s->mirrored == 0)
			continue;
		for (int bkt = 0; bkt < LAT_BUCKETS && s->received; bkt++) {
			acc += s->hist[bkt];
			if (p99 == 0 && acc * 100 >= s->received * 99)
				/* the bucket's upper bound, never past the largest
				 * seen; the last bucket has none */
				p99 = bkt + 1 == LAT_BUCKETS
					      ? s->lat_max_ns
					      : RTE_MIN(1ull << (bkt + 1), s->lat_max_ns);
		}
		/* A link that received nothing has no latency: null in JSON and
		 * "-" in text, never a figure a script could average in. */
		if (g->o.json && s->received == 0)
			printf("%s\"%s\": {\"expected\": %" PRIu64 ", \"received\": 0"
			       ", \"misrouted\": %" PRIu64 ", \"mirror_expected\": %" PRIu64
			       ", \"mirrored\": %" PRIu64
			       ", \"loss_pct\": %.4f, \"lat_avg_ns\": null, \"lat_p99_ns_max\": "
			       "null"
			       ", \"lat_min_ns\": null, \"lat_max_ns\": null}",
			       first ? "" : ", ", t->links[k].name, s->expected, s->misrouted,
			       s->mirror_expected, s->mirrored, loss);
		else if (g->o.json)
			printf("%s\"%s\": {\"expected\": %" PRIu64 ", \"received\": %" PRIu64
			       ", \"misrouted\": %" PRIu64 ", \"mirror_expected\": %" PRIu64
			       ", \"mirrored\": %" PRIu64 ", \"loss_pct\": %.4f, "
			       "\"lat_avg_ns\": %.0f, \"lat_p99_ns_max\": %" PRIu64
			       ", \"lat_min_ns\": %" PRIu64 ", \"lat_max_ns\": %" PRIu64 "}",
			       first ? "" : ", ", t->links[k].name, s->expected, s->received,
			       s->misrouted, s->mirror_expected, s->mirrored, loss,
			       (double)s->lat_sum_ns / (double)s->received, p99, s->lat_min_ns,
			       s->lat_max_ns);
		else {
			printf("%-20s %12" PRIu64 " %12" PRIu64 " %10" PRIu64, t->links[k].name,
			       s->expected, s->received, s->misrouted);
			/* the mirror columns only for a table that mirrors */
			if (g->mirrors)
				printf(" %12" PRIu64 " %10" PRIu64, s->mirror_expected,
				       s->mirrored);
			if (s->received == 0)
				printf(" %10.4f %9.3f %10s %10s %10s\n", loss, 0.0, "-", "-", "-");
			else
				printf(" %10.4f %9.3f %10.1f %10.1f %10.1f\n", loss,
				       (double)s->received / secs / 1e6,
				       (double)s->lat_sum_ns / (double)s->received / 1e3,
				       (double)p99 / 1e3, (double)s->lat_max_ns / 1e3);
		}
		first = 0;
	}
	if (g->o.json)
		printf("}}\n");
}

/* Everything built from the table. NULL-safe. */
static void release(struct gen *g)
{
	for (uint32_t i = 0; g->fl && i < g->o.flows; i++)
		free(g->fl[i].frame);
	free(g->fl);
	free(g->ls);
	free(g->wire);
	free(g->seen);
	free(g->seen_mirror);
	rte_fib_free(g->fib4);
	rte_fib6_free(g->fib6);
	fwd_class_free(g->cls);
	fwd_table_free(g->t);
}

int main(int argc, char **argv)
{
	static struct gen g;
	struct fwd_err err = {0};
	char b[768];
	int n;

	/* Before EAL: its --help would print its own options first and
	 * ours last, and needs hugepages to get that far. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
	n = rte_eal_init(argc, argv);
	if (n < 0)
		rte_exit(EXIT_FAILURE, "EAL init failed\n");
	if (parse_options(argc - n, argv + n, &g.o) == 0) {
		rte_eal_cleanup();
		return 0;
	}
	load_table(&g);
	if (index_links(&g) < 0)
		rte_exit(EXIT_FAILURE, "out of memory\n");
	if (build_fibs(&g, &err) < 0)
		rte_exit(EXIT_FAILURE, "%s\n", fwd_err_str(&err, b, sizeof(b)));
	build_flows(&g);
	if (g.o.pcap) {
		emit_pcap(&g);
	} else {
		open_ports(&g);
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		wait_links(&g);
		g.hz = rte_get_tsc_hz();
		g.seen = calloc(DUP_WINDOW / 64, sizeof(*g.seen));
		if (g.mirrors)
			g.seen_mirror = calloc(DUP_WINDOW / 64, sizeof(*g.seen_mirror));
		if (g.seen == NULL || (g.mirrors && g.seen_mirror == NULL))
			rte_exit(EXIT_FAILURE, "out of memory\n");
		/* Said when the run begins (its ports up or waited for): what a
		 * wrapper waits for before it may stop the run. */
		g.t0 = rte_rdtsc(); /* after the setup above: the window is the run's */
		fprintf(stderr, "regionfwd-gen: run %u: sending for %g s\n", g.o.run_id,
			g.o.duration);
		run_load(&g);
		g.interrupted = stop; /* a signal during the report is not the run's */
		report(&g);
		dp_ports_close(&g.ports);
		rte_mempool_free(g.pool);
	}
	release(&g);
	rte_eal_cleanup();
	/* A run cut short is no result a script should take for one: the
	 * shell's status for the signal (130 SIGINT, 143 SIGTERM). */
	return g.interrupted ? 128 + g.interrupted : 0;
}
