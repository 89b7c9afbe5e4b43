/*
 * content_bench - what content rules cost per packet: the table's Hyperscan
 * databases are built as a generation builds them (dp_content_build), then
 * every frame of a pcap is located (fwd_l4_payload), its scoped fields
 * extracted and scanned (dp_content_scan), over and over. Prints ns per
 * packet, Gbit/s of payload scanned, and how many frames matched.
 *
 *   content_bench [EAL args] -- --table T --pcap P [--rounds N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>

#include "dp_content.h"
#include "fwd_class.h"
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

int main(int argc, char **argv)
{
	int eal = rte_eal_init(argc, argv), opt;
	const char *table = NULL, *pcap = NULL;
	long rounds = 200;
	static const struct option opts[] = {
		{"table", 1, 0, 't'}, {"pcap", 1, 0, 'p'}, {"rounds", 1, 0, 'r'}, {0, 0, 0, 0}};
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
		else
			rte_exit(EXIT_FAILURE,
				 "usage: content_bench [EAL] -- --table T --pcap P [--rounds N]\n");
	}
	if (table == NULL || pcap == NULL || read_pcap(pcap))
		rte_exit(EXIT_FAILURE, "need --table and a readable --pcap\n");
	t = fwd_table_load(table, &err);
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
	t0 = rte_rdtsc_precise();
	for (long r = 0; r < rounds; r++)
		for (uint32_t i = 0; i < nframes; i++) {
			struct dp_content_verdict v;

			dp_content_scan(c, c->scratch[0], &in[i], &v);
		}
	cyc = rte_rdtsc_precise() - t0;
	{
		double pk = (double)rounds * nframes,
		       ns = (double)cyc * 1e9 / (double)rte_get_tsc_hz() / pk;

		printf("{\"rules\": %u, \"packets\": %u, \"matched\": %lu, \"ns_per_packet\": "
		       "%.1f, "
		       "\"payload_bytes_avg\": %.1f, \"gbit_per_s\": %.2f, \"database_kib\": "
		       "%.1f}\n",
		       t->ncontent, nframes, (unsigned long)matched, ns, (double)bytes / nframes,
		       (double)bytes * 8 / nframes / ns, (double)c->db_bytes / 1024);
	}
	dp_content_free(c);
	fwd_class_free(cls);
	fwd_table_free(t);
	rte_eal_cleanup();
	return 0;
}
