/*
 * content_bench - what content rules cost per packet: the table's Hyperscan
 * databases are built as a generation builds them (dp_content_build), then
 * every frame of a pcap is located (fwd_l4_payload), its scoped fields
 * extracted and scanned (dp_content_scan), over and over. Prints ns per
 * packet, Gbit/s of payload scanned, and how many frames matched.
 *
 * Name sets: entries, bytes per entry and build time are printed too; with
 * --hs-literal the same sets are also compiled with Hyperscan's literal API
 * (hs_compile_lit_multi: "*.x" as the literal ".x", a match kept when it
 * ends the name, and for an exact entry also starts it) and the same
 * frames extracted and scanned with it, for the comparison in
 * docs/content-rules.md.
 *
 *   content_bench [EAL args] -- --table T --pcap P [--rounds N] [--hs-literal]
 */
#include <getopt.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>

#include "dp_content.h"
#include "fwd_class.h"
#include "fwd_defs.h"
#include "fwd_parse.h"

#define MAXPKTS 65536

static uint8_t *frames[MAXPKTS];
static uint32_t lens[MAXPKTS], nframes;

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
		lens[nframes++] = caplen;
	}
	fclose(f);
	return nframes ? 0 : -1;
}

/* ---- the comparison: Hyperscan's literal API on the same sets ---- */

struct lit {
	hs_database_t *db[4];
	uint8_t *exact[4]; /* per literal id: 1 exact entry, 0 suffix */
	uint32_t *len[4];
	double build_s;
	size_t bytes;
};

struct lit_ctx {
	const struct lit *l;
	int f;
	size_t n; /* the name's length */
	unsigned hits;
};

static int on_lit(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
		  void *arg)
{
	struct lit_ctx *c = arg;

	(void)from;
	(void)flags;
	if (to == c->n && (!c->l->exact[c->f][id] || to == c->l->len[c->f][id]))
		c->hits++;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int lit_build(const struct fwd_table *t, struct lit *l, hs_scratch_t **s)
{
	double t0 = now_s();

	for (int f = 0; f < 4; f++) {
		uint32_t n = 0, k = 0;
		const char **ex;
		size_t *llen;
		unsigned *ids, *flags;
		hs_compile_error_t *ce = NULL;

		for (uint32_t i = 0; i < t->ncontent; i++)
			if (t->content[i].field == f && t->content[i].names)
				n += t->content[i].nnames;
		if (n == 0)
			continue;
		ex = calloc(n, sizeof(*ex));
		llen = calloc(n, sizeof(*llen));
		ids = calloc(n, sizeof(*ids));
		flags = calloc(n, sizeof(*flags));
		l->exact[f] = calloc(n, 1);
		l->len[f] = calloc(n, sizeof(uint32_t));
		for (uint32_t i = 0; i < t->ncontent; i++) {
			const struct fwd_content_rule *r = &t->content[i];

			if (r->field != f || r->names == NULL)
				continue;
			for (const char *p = r->names; p < r->names + r->names_len;
			     p += strlen(p) + 1, k++) {
				int sfx = p[0] == '*';

				ex[k] = p + sfx; /* "*.x" as ".x" */
				llen[k] = strlen(ex[k]);
				ids[k] = k;
				l->exact[f][k] = !sfx;
				l->len[f][k] = (uint32_t)llen[k];
			}
		}
		if (hs_compile_lit_multi(ex, flags, ids, llen, n, HS_MODE_BLOCK, NULL, &l->db[f],
					 &ce) != HS_SUCCESS) {
			fprintf(stderr, "hs_compile_lit_multi: %s\n", ce ? ce->message : "?");
			return -1;
		}
		if (hs_alloc_scratch(l->db[f], s) != HS_SUCCESS)
			return -1;
		size_t sz = 0;

		hs_database_size(l->db[f], &sz);
		l->bytes += sz;
		free(ex);
		free(llen);
		free(ids);
		free(flags);
	}
	l->build_s = now_s() - t0;
	return 0;
}

/* Extraction and the literal scan: what dp_content_scan does for a name set. */
static unsigned lit_scan(const struct lit *l, hs_scratch_t *s, const struct dp_content_input *in)
{
	char name[FWD_X_NAME_MAX];
	struct lit_ctx c = {.l = l};

	for (int f = 1; f < 4; f++) {
		const uint8_t *p = in->payload;
		int n;

		if (l->db[f] == NULL || !(in->fields & (1u << f)))
			continue;
		if (f == FWD_CF_DNS_QNAME) {
			if (in->proto == FWD_PROTO_TCP) {
				if (in->len < 2)
					continue;
				p += 2;
			}
			n = fwd_extract_dns_qname(p, in->len - (size_t)(p - in->payload), name,
						  sizeof(name));
		} else if (in->proto != FWD_PROTO_TCP) {
			continue;
		} else {
			n = f == FWD_CF_TLS_SNI
				    ? fwd_extract_sni(p, in->len, name, sizeof(name))
				    : fwd_extract_http_host(p, in->len, name, sizeof(name));
		}
		if (n <= 0)
			continue;
		if (name[n - 1] == '.')
			n--;
		c.f = f;
		c.n = (size_t)n;
		hs_scan(l->db[f], name, (unsigned)n, 0, s, on_lit, &c);
	}
	return c.hits;
}

/* One pass over every frame as a worker scans: a burst's names prepared
 * together, then each packet's scan finished (dp_worker.c stage 3). */
static __attribute__((noinline)) void scan_round(const struct dp_content *c,
						 const struct dp_content_input *in)
{
	static struct dp_content_prep prep[FWD_BURST];

	for (uint32_t at = 0; at < nframes; at += FWD_BURST) {
		uint32_t n = nframes - at < FWD_BURST ? nframes - at : FWD_BURST;

		dp_content_prepare(c, &in[at], prep, n);
		for (uint32_t i = 0; i < n; i++) {
			struct dp_content_verdict v;

			dp_content_scan_prepared(c, c->scratch[0], &in[at + i], &prep[i], &v);
		}
	}
}

int main(int argc, char **argv)
{
	int eal = rte_eal_init(argc, argv), opt;
	const char *table = NULL, *pcap = NULL;
	long rounds = 200;
	static const struct option opts[] = {{"table", 1, 0, 't'},
					     {"pcap", 1, 0, 'p'},
					     {"rounds", 1, 0, 'r'},
					     {"hs-literal", 0, 0, 'L'},
					     {0, 0, 0, 0}};
	int hs_literal = 0;
	double load_s;
	struct fwd_err err = {0};
	struct fwd_table *t;
	struct fwd_class *cls;
	struct dp_content *c;
	struct dp_content_input *in;
	uint64_t bytes = 0, matched = 0, t0, cyc;
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
		else if (opt == 'r')
			rounds = atol(optarg);
		else if (opt == 'L')
			hs_literal = 1;
		else
			rte_exit(EXIT_FAILURE,
				 "usage: content_bench [EAL] -- --table T --pcap P [--rounds N]\n");
	}
	if (table == NULL || pcap == NULL || read_pcap(pcap))
		rte_exit(EXIT_FAILURE, "need --table and a readable --pcap\n");
	load_s = now_s();
	t = fwd_table_load(table, &err);
	load_s = now_s() - load_s;
	if (t == NULL || (cls = fwd_class_build(t)) == NULL)
		rte_exit(EXIT_FAILURE, "%s\n", fwd_err_str(&err, b, sizeof(b)));
	t0 = rte_rdtsc();
	if (dp_content_build(t, NULL, 1, &c, &err))
		rte_exit(EXIT_FAILURE, "%s\n", fwd_err_str(&err, b, sizeof(b)));
	if (c == NULL)
		rte_exit(EXIT_FAILURE, "%s has no content rules\n", table);
	fprintf(stderr, "content_bench: %u rules compiled in %.2f s, databases %.1f KiB\n",
		t->ncontent, (double)(rte_rdtsc() - t0) / (double)rte_get_tsc_hz(),
		(double)c->db_bytes / 1024);
	/* Everything a worker would know before scanning: the payload and the scope. */
	in = calloc(nframes, sizeof(*in));
	for (uint32_t i = 0; i < nframes; i++) {
		struct fwd_pkt p;
		uint8_t flags;

		if (fwd_parse(frames[i], frames[i] + lens[i], &p) != FWD_OK ||
		    fwd_l4_payload(frames[i], frames[i] + lens[i], &p, &in[i].payload, &in[i].len,
				   &flags))
			rte_exit(EXIT_FAILURE, "frame %u does not parse\n", i);
		in[i].proto = p.proto;
		in[i].region = 0;
		in[i].service = fwd_class_service(cls, p.proto, p.dport);
		in[i].fields = dp_content_scope(c, 0, in[i].service);
		bytes += in[i].len;
	}
	for (uint32_t i = 0; i < nframes; i++) { /* warm-up, and the match count */
		struct dp_content_verdict v;

		dp_content_scan(c, c->scratch[0], &in[i], &v);
		matched += v.rule != DP_CONTENT_NONE;
	}
	/* Every round timed on its own too: on a shared VM the median round
	 * and the best one (least preempted) bound what the code costs. */
	uint64_t *round_cyc = calloc((size_t)rounds, sizeof(*round_cyc));
	/* Rounds until 0.3 s have passed before any is timed: this VM's core
	 * comes up to speed over tens of milliseconds after idling, and a
	 * run of 100 rounds (~30 ms) timed from a cold start measured 1.5 x
	 * its warm cost in some runs and not in others. */
	const uint64_t warm_until = rte_rdtsc() + rte_get_tsc_hz() * 3 / 10;

	cyc = 0;
	for (long r = -1; r < rounds; r++) {
		t0 = rte_rdtsc_precise();
		scan_round(c, in);
		if (r < 0) {
			if (rte_rdtsc() < warm_until)
				r--; /* again */
			continue;
		}
		round_cyc[r] = rte_rdtsc_precise() - t0;
		cyc += round_cyc[r];
	}
	qsort(round_cyc, (size_t)rounds, sizeof(*round_cyc), cmp_u64);
	{
		double per = 1e9 / (double)rte_get_tsc_hz() / nframes,
		       best = (double)round_cyc[0] * per,
		       median = (double)round_cyc[rounds / 2] * per;
		double pk = (double)rounds * nframes,
		       ns = (double)cyc * 1e9 / (double)rte_get_tsc_hz() / pk;

		struct lit l = {0};
		hs_scratch_t *ls = NULL;
		double lit_ns = 0;
		uint64_t lit_matched = 0;

		if (hs_literal && c->names) {
			if (lit_build(t, &l, &ls))
				rte_exit(EXIT_FAILURE, "the literal databases do not build\n");
			for (uint32_t i = 0; i < nframes; i++)
				lit_matched += lit_scan(&l, ls, &in[i]) > 0;
			t0 = rte_rdtsc_precise();
			for (long r = 0; r < rounds; r++)
				for (uint32_t i = 0; i < nframes; i++)
					lit_scan(&l, ls, &in[i]);
			lit_ns = (double)(rte_rdtsc_precise() - t0) * 1e9 /
				 (double)rte_get_tsc_hz() / pk;
		}
		printf("{\"rules\": %u, \"packets\": %u, \"matched\": %lu, \"ns_per_packet\": "
		       "%.1f, "
		       "\"payload_bytes_avg\": %.1f, \"gbit_per_s\": %.2f, \"database_kib\": "
		       "%.1f, \"names\": %u, \"names_bytes\": %lu, \"bytes_per_name\": %.1f, "
		       "\"names_build_s\": %.3f, \"table_load_s\": %.3f, "
		       "\"ns_per_packet_round_median\": %.1f, \"ns_per_packet_round_best\": %.1f",
		       t->ncontent, nframes, (unsigned long)matched, ns, (double)bytes / nframes,
		       (double)bytes * 8 / nframes / ns, (double)c->db_bytes / 1024, c->names,
		       (unsigned long)c->names_bytes,
		       c->names ? (double)c->names_bytes / c->names : 0.0, c->names_build_s, load_s,
		       median, best);
		if (l.build_s > 0)
			printf(", \"hs_literal\": {\"ns_per_packet\": %.1f, \"matched\": %lu, "
			       "\"build_s\": %.3f, \"bytes\": %zu}",
			       lit_ns, (unsigned long)lit_matched, l.build_s, l.bytes);
		printf("}\n");
		for (int f = 0; f < 4; f++) {
			hs_free_database(l.db[f]);
			free(l.exact[f]);
			free(l.len[f]);
		}
		hs_free_scratch(ls);
	}
	free(round_cyc);
	dp_content_free(c);
	fwd_class_free(cls);
	fwd_table_free(t);
	rte_eal_cleanup();
	return 0;
}
