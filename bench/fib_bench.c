/*
 * fib_bench - what a table's FIBs cost to build and free, alone: the table
 * is read and validated once, then built and freed --rounds times with
 * dp_fib_build() and dp_fib_free(), as a generation builds them.
 *
 *   fib_bench [EAL args] -- --table T [--rounds N] [--json]
 *
 * Whether IPv6 is built beside IPv4 depends on the EAL's cores, as in
 * regionfwd (dp_fib.h): with `-l 0` the control threads get the other cores
 * (side by side); with every core an lcore (`-l 0,1` on two) they share the
 * main lcore's (one after the other). The first round also pays for first
 * touching the memory (--no-huge: the kernel zeroes each page); the
 * figures are the medians of the rounds after it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>

#include "dp_fib.h"
#include "dp_log.h"
#include "fwd_stages.h"

RTE_LOG_REGISTER_DEFAULT(dp_logtype, WARNING); /* dp_log.h's logtype, as regionfwd.c defines it */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double med_ms(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return (double)v[n / 2] / 1e6;
}

int main(int argc, char **argv)
{
	int eal = rte_eal_init(argc, argv), rounds = 5, json = 0, opt;
	const char *table = NULL;
	static const struct option lo[] = {{"table", required_argument, NULL, 't'},
					   {"rounds", required_argument, NULL, 'r'},
					   {"json", no_argument, NULL, 'j'},
					   {NULL, 0, NULL, 0}};
	struct fwd_err err;
	struct fwd_table *t;
	uint64_t *wall, *b4, *b6, *c4, *c6, *fr, bytes = 0;
	struct dp_fib_info fi = {0};

	if (eal < 0)
		return 1;
	argc -= eal;
	argv += eal;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (opt == 't')
			table = optarg;
		else if (opt == 'r')
			rounds = atoi(optarg);
		else if (opt == 'j')
			json = 1;
		else
			return 2;
	}
	if (table == NULL || rounds < 2) {
		fprintf(stderr, "usage: fib_bench [EAL] -- --table T [--rounds N>=2] [--json]\n");
		return 2;
	}
	t = fwd_table_load(table, &err);
	if (t == NULL) {
		fprintf(stderr, "%s:%u: %s\n", err.file, err.line, err.reason);
		return 1;
	}
	wall = calloc((size_t)rounds * 6, sizeof(uint64_t));
	if (wall == NULL)
		return 1;
	b4 = wall + rounds;
	b6 = b4 + rounds;
	c4 = b6 + rounds;
	c6 = c4 + rounds;
	fr = c6 + rounds;
	for (int r = 0; r < rounds; r++) {
		struct fwd_fib4 *f4;
		struct fwd_fib6 *f6;
		uint64_t t0;

		if (dp_fib_build(t, NULL, &f4, &f6, &bytes, &fi, &err)) {
			fprintf(stderr, "%s:%u: %s\n", err.file, err.line, err.reason);
			return 1;
		}
		t0 = fwd_mono_ns();
		dp_fib_free(f4, f6); /* in the foreground here: its own figure */
		fr[r] = fwd_mono_ns() - t0;
		wall[r] = fi.wall_ns;
		b4[r] = fi.ns4;
		b6[r] = fi.ns6;
		c4[r] = fi.create_ns4;
		c6[r] = fi.create_ns6;
		if (!json)
			printf("round %d: %.1f ms (IPv4 %.1f, create %.1f; IPv6 %.1f, create "
			       "%.1f), "
			       "free %.1f ms\n",
			       r, (double)wall[r] / 1e6, (double)b4[r] / 1e6, (double)c4[r] / 1e6,
			       (double)b6[r] / 1e6, (double)c6[r] / 1e6, (double)fr[r] / 1e6);
	}
	/* Rounds after the first: memory already touched once. */
	printf("%s{\"prefixes_v4\": %u, \"prefixes_v6\": %u, \"side_by_side\": %d, \"rounds\": %d, "
	       "\"build_ms\": %.1f, \"v4_ms\": %.1f, \"v4_create_ms\": %.1f, \"v6_ms\": %.1f, "
	       "\"v6_create_ms\": %.1f, \"free_ms\": %.1f, \"first_build_ms\": %.1f, "
	       "\"fib_mib\": %.1f, \"groups_v4\": %u, \"groups_v6\": %u}\n",
	       json ? "" : "median of the rounds after the first: ", t->nprefix4, t->nprefix6,
	       fi.parallel, rounds, med_ms(wall + 1, rounds - 1), med_ms(b4 + 1, rounds - 1),
	       med_ms(c4 + 1, rounds - 1), med_ms(b6 + 1, rounds - 1), med_ms(c6 + 1, rounds - 1),
	       med_ms(fr + 1, rounds - 1), (double)wall[0] / 1e6, (double)bytes / 1048576.0,
	       fi.groups4, fi.groups6);
	fwd_table_free(t);
	free(wall);
	rte_eal_cleanup();
	return 0;
}
