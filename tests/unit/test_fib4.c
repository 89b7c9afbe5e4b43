/*
 * test_fib4 - the IPv4 FIB (common/fwd_fib4.c) against a brute-force longest
 * match: built from random tables, then changed by random batches of adds,
 * removals and moves, after each of which it must answer as the table
 * after the batch does and hold exactly the groups a fresh build of it
 * would (none leaked, none missing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fwd_fib4.h"
#include "fwd_hugemap.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static uint32_t mask_of(unsigned len)
{
	return len ? ~(uint32_t)0 << (32 - len) : 0;
}

static int cmp_prefix(const void *a, const void *b)
{
	const struct fwd_prefix4 *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return (int)x->len - (int)y->len;
}

/* Index of the longest prefix holding addr/len, or -1: every prefix tried. */
static int64_t brute_longest(const struct fwd_prefix4 *p, uint32_t n, uint32_t addr, uint8_t len)
{
	int64_t best = -1;

	for (uint32_t i = 0; i < n; i++)
		if (p[i].len <= len && ((p[i].addr ^ addr) & mask_of(p[i].len)) == 0 &&
		    (best < 0 || p[i].len > p[best].len))
			best = i;
	return best;
}

/* Lengths chosen so prefixes nest and share /24s: a few short ones, many
 * around /24, and long ones inside. */
static const uint8_t lens[] = {0,  1,  7,  8,  12, 15, 16, 18, 20, 21, 22, 23, 23, 24,
			       24, 24, 24, 25, 25, 26, 27, 28, 29, 30, 31, 32, 32};

static struct fwd_prefix4 random_prefix(uint32_t space, uint32_t space_mask)
{
	struct fwd_prefix4 q = {0};

	/* The shortest (/0 and /1) stay rare: a table holding the default
	 * route has no address left unknown (region 0), and the unknown gaps
	 * between prefixes must be tested too. */
	do
		q.len = lens[rnd() % sizeof(lens)];
	while (q.len < 4 && rnd() % 64);
	q.addr = (space | (rnd() & ~space_mask)) & mask_of(q.len);
	q.region = (uint16_t)(1 + rnd() % 7);
	return q;
}

static int holds(const struct fwd_prefix4 *p, uint32_t n, const struct fwd_prefix4 *q)
{
	for (uint32_t i = 0; i < n; i++)
		if (p[i].addr == q->addr && p[i].len == q->len)
			return (int)i;
	return -1;
}

/* A random table of up to @want distinct prefixes, sorted. */
static uint32_t random_table(struct fwd_prefix4 *p, uint32_t want, uint32_t space,
			     uint32_t space_mask)
{
	uint32_t n = 0;

	for (uint32_t tries = 0; n < want && tries < want * 4; tries++) {
		struct fwd_prefix4 q = random_prefix(space, space_mask);

		if (holds(p, n, &q) < 0)
			p[n++] = q;
	}
	qsort(p, n, sizeof(*p), cmp_prefix);
	return n;
}

/* Addresses worth asking: each prefix's first and last, the ones just
 * outside it, and random ones in the space. */
static void check_table(const struct fwd_fib4 *f, const struct fwd_prefix4 *p, uint32_t n,
			uint32_t space, uint32_t space_mask)
{
	for (uint32_t i = 0; i < n + 300; i++) {
		uint32_t probe[4];

		if (i < n) {
			uint32_t last = p[i].addr | ~mask_of(p[i].len);

			probe[0] = p[i].addr;
			probe[1] = last;
			probe[2] = p[i].addr - 1;
			probe[3] = last + 1;
		} else {
			for (int k = 0; k < 4; k++)
				probe[k] = k < 2 ? (space | (rnd() & ~space_mask)) : rnd();
		}
		for (int k = 0; k < 4; k++) {
			int64_t b = brute_longest(p, n, probe[k], 32);
			uint32_t want = b < 0 ? 0 : p[b].region;

			if (fwd_fib4_lookup(f, probe[k]) != want)
				fail_msg("address %08x: FIB says %u, the table %u (prefix %lld)",
					 probe[k], fwd_fib4_lookup(f, probe[k]), want,
					 (long long)b);
			assert_int_equal(fwd_fib4_longest(f, p, n, probe[k], 32), b);
			assert_int_equal(fwd_fib4_longest(NULL, p, n, probe[k], 32), b);
		}
		if (i < n) { /* a prefix's covers, strict and not */
			assert_int_equal(fwd_fib4_longest(f, p, n, p[i].addr, p[i].len), i);
			if (p[i].len)
				assert_int_equal(
					fwd_fib4_longest(f, p, n, p[i].addr,
							 (uint8_t)(p[i].len - 1)),
					brute_longest(p, n, p[i].addr, (uint8_t)(p[i].len - 1)));
		}
	}
	assert_int_equal(f->groups, fwd_fib4_groups_needed(p, n));
	for (unsigned l = 0; l <= 32; l++) {
		uint32_t c = 0;

		for (uint32_t i = 0; i < n; i++)
			c += p[i].len == l;
		assert_int_equal(f->nlen[l], c);
	}
}

static const struct {
	uint32_t space, mask;
} spaces[] = {
	{0x0a000000, 0xfff00000}, /* 10.0.0.0/12: dense, everything nests */
	{0x0a000000, 0xffff0000}, /* 10.0.0.0/16: denser */
	{0, 0}, /* anywhere: sparse */
};

static void test_build_matches_brute_force(void **state)
{
	(void)state;
	for (int round = 0; round < 30; round++) {
		uint32_t want = 1 + rnd() % 1500, sp = (uint32_t)round % 3;
		struct fwd_prefix4 *p = calloc(want, sizeof(*p));
		uint32_t n = random_table(p, want, spaces[sp].space, spaces[sp].mask);
		struct fwd_fib4 *f = fwd_fib4_create(fwd_fib4_groups_needed(p, n));

		assert_non_null(f);
		assert_int_equal(fwd_fib4_build(f, p, n), 0);
		check_table(f, p, n, spaces[sp].space, spaces[sp].mask);
		fwd_fib4_free(f);
		free(p);
	}
}

struct change {
	struct fwd_prefix4 q;
	int d; /* +1 added, -1 removed, 0 moved */
};

static int cmp_change(const void *a, const void *b)
{
	return cmp_prefix(&((const struct change *)a)->q, &((const struct change *)b)->q);
}

/* One batch: changes to distinct prefixes, applied to the table (kept
 * sorted), then to the FIB in sorted order as regionfwd does. */
static uint32_t random_batch(struct fwd_fib4 *f, struct fwd_prefix4 **pp, uint32_t *n,
			     uint32_t *cap, uint32_t space, uint32_t space_mask, uint32_t nchanges)
{
	struct change *c = calloc(nchanges, sizeof(*c));
	struct fwd_prefix4 *p = *pp;
	uint32_t nc = 0, hint = 0;

	for (uint32_t t = 0; t < nchanges; t++) {
		struct fwd_prefix4 q;
		int at, dup = 0;

		if (*n && rnd() % 2) /* a change of a held prefix */
			q = p[rnd() % *n];
		else
			q = random_prefix(space, space_mask);
		for (uint32_t k = 0; k < nc; k++)
			dup |= c[k].q.addr == q.addr && c[k].q.len == q.len;
		if (dup)
			continue;
		at = holds(p, *n, &q);
		if (at < 0) {
			c[nc].d = 1;
			if (*n == *cap) {
				*cap = *cap * 2 + 16;
				p = realloc(p, *cap * sizeof(*p));
			}
			p[(*n)++] = q;
		} else if (rnd() % 2) {
			c[nc].d = -1;
			p[at] = p[--*n];
		} else {
			c[nc].d = 0;
			q.region = (uint16_t)(1 + (q.region + rnd() % 6) % 7);
			p[at].region = q.region;
		}
		c[nc++].q = q;
	}
	qsort(p, *n, sizeof(*p), cmp_prefix);
	qsort(c, nc, sizeof(*c), cmp_change);
	for (uint32_t k = 0; k < nc; k++)
		fwd_fib4_count(f, c[k].q.len, c[k].d);
	for (uint32_t k = 0; k < nc; k++)
		assert_int_equal(fwd_fib4_update(f, p, *n, c[k].q.addr, c[k].q.len, &hint), 0);
	free(c);
	*pp = p;
	return nc;
}

static void test_changes_match_brute_force(void **state)
{
	(void)state;
	for (int round = 0; round < 12; round++) {
		uint32_t cap = 1 + rnd() % 800, sp = (uint32_t)round % 3;
		struct fwd_prefix4 *p = calloc(cap, sizeof(*p));
		uint32_t n = random_table(p, cap, spaces[sp].space, spaces[sp].mask);
		/* Little room: the groups grow while changes run. */
		struct fwd_fib4 *f = fwd_fib4_create(0);

		assert_non_null(f);
		assert_int_equal(fwd_fib4_build(f, p, n), 0);
		for (int batch = 0; batch < 25; batch++) {
			random_batch(f, &p, &n, &cap, spaces[sp].space, spaces[sp].mask,
				     1 + rnd() % (batch % 5 ? 20 : 300));
			check_table(f, p, n, spaces[sp].space, spaces[sp].mask);
		}
		/* Everything removed: one batch back to nothing. */
		{
			struct fwd_prefix4 *old = malloc((n ? n : 1) * sizeof(*old));
			uint32_t on = n, hint = 0;

			memcpy(old, p, n * sizeof(*p));
			n = 0;
			for (uint32_t k = 0; k < on; k++)
				fwd_fib4_count(f, old[k].len, -1);
			for (uint32_t k = 0; k < on; k++)
				assert_int_equal(
					fwd_fib4_update(f, p, 0, old[k].addr, old[k].len, &hint),
					0);
			check_table(f, p, 0, spaces[sp].space, spaces[sp].mask);
			free(old);
		}
		fwd_fib4_free(f);
		free(p);
	}
}

/* At scale: 200k prefixes of an Internet-like length mix, then batches of
 * 20k changes (moves, removals, adds). The oracle is fwd_fib4_longest over
 * the table, itself checked against brute force above; what this adds is
 * groups by the ten thousand, their growth and reuse, and long galloping
 * runs. */
static int find(const struct fwd_prefix4 *p, uint32_t n, const struct fwd_prefix4 *q)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (cmp_prefix(&p[mid], q) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && cmp_prefix(&p[lo], q) == 0 ? (int)lo : -1;
}

static struct fwd_prefix4 internet_prefix(void)
{
	static const uint8_t mix[] = {8,  12, 16, 16, 18, 19, 20, 20, 21, 22, 22, 23, 23, 24,
				      24, 24, 24, 24, 24, 24, 24, 24, 25, 26, 28, 30, 32};
	struct fwd_prefix4 q = {0};

	q.len = mix[rnd() % sizeof(mix)];
	q.addr = (rnd() << 16 ^ rnd()) & mask_of(q.len);
	q.region = (uint16_t)(1 + rnd() % 50);
	return q;
}

static uint32_t unique_sorted(struct fwd_prefix4 *p, uint32_t n)
{
	uint32_t m = 0;

	qsort(p, n, sizeof(*p), cmp_prefix);
	for (uint32_t i = 0; i < n; i++)
		if (m == 0 || cmp_prefix(&p[m - 1], &p[i]) != 0)
			p[m++] = p[i];
	return m;
}

static void check_by_search(const struct fwd_fib4 *f, const struct fwd_prefix4 *p, uint32_t n,
			    const struct change *c, uint32_t nc)
{
	for (uint32_t i = 0; i < 20000 + 2 * nc; i++) {
		uint32_t a = i < 2 * nc ? (i % 2 ? c[i / 2].q.addr | ~mask_of(c[i / 2].q.len)
						 : c[i / 2].q.addr)
					: rnd() << 16 ^ rnd();
		int64_t b = fwd_fib4_longest(NULL, p, n, a, 32);

		if (fwd_fib4_lookup(f, a) != (b < 0 ? 0u : p[b].region))
			fail_msg("address %08x: FIB %u, table %u", a, fwd_fib4_lookup(f, a),
				 b < 0 ? 0u : p[b].region);
	}
	assert_int_equal(f->groups, fwd_fib4_groups_needed(p, n));
}

static void test_scale(void **state)
{
	uint32_t n = 200000, cap = n + 20000;
	struct fwd_prefix4 *p = calloc(cap, sizeof(*p)), *next = calloc(cap, sizeof(*p));
	struct change *c = calloc(20000, sizeof(*c));
	struct fwd_fib4 *f;
	uint8_t *gone = calloc(cap, 1);
	uint16_t *newreg = calloc(cap, sizeof(*newreg));

	(void)state;
	for (uint32_t i = 0; i < n; i++)
		p[i] = internet_prefix();
	n = unique_sorted(p, n);
	f = fwd_fib4_create(fwd_fib4_groups_needed(p, n));
	assert_int_equal(fwd_fib4_build(f, p, n), 0);
	check_by_search(f, p, n, c, 0);
	for (int batch = 0; batch < 4; batch++) {
		uint32_t nc = 0, m = 0, hint = 0;

		memset(gone, 0, cap);
		/* 6k removals and 8k moves of held prefixes, 6k adds. */
		for (uint32_t k = 0; k < 14000; k++) {
			uint32_t at = rnd() % n;

			if (gone[at])
				continue;
			gone[at] = k < 6000 ? 1 : 2;
			c[nc].q = p[at];
			c[nc].d = k < 6000 ? -1 : 0;
			if (k >= 6000)
				c[nc].q.region = newreg[at] =
					(uint16_t)(1 + (p[at].region + 1 + rnd() % 48) % 50);
			nc++;
		}
		for (uint32_t i = 0; i < n; i++) {
			if (gone[i] == 1)
				continue;
			next[m] = p[i];
			if (gone[i] == 2)
				next[m].region = newreg[i];
			m++;
		}
		for (uint32_t k = 0; k < 6000; k++) {
			struct fwd_prefix4 q = internet_prefix();

			if (find(p, n, &q) >= 0)
				continue; /* held (or removed now): not an add */
			next[m++] = q;
			c[nc].q = q;
			c[nc++].d = 1;
		}
		/* Adds of one prefix twice would be one add: keep the first. */
		qsort(c, nc, sizeof(*c), cmp_change);
		{
			uint32_t u = 0;

			for (uint32_t k = 0; k < nc; k++)
				if (u == 0 || cmp_prefix(&c[u - 1].q, &c[k].q) != 0)
					c[u++] = c[k];
			nc = u;
		}
		m = unique_sorted(next, m);
		memcpy(p, next, m * sizeof(*p));
		n = m;
		for (uint32_t k = 0; k < nc; k++)
			fwd_fib4_count(f, c[k].q.len, c[k].d);
		for (uint32_t k = 0; k < nc; k++)
			assert_int_equal(fwd_fib4_update(f, p, n, c[k].q.addr, c[k].q.len, &hint),
					 0);
		check_by_search(f, p, n, c, nc);
	}
	fwd_fib4_free(f);
	free(p);
	free(next);
	free(c);
	free(gone);
	free(newreg);
}

/* The default route, host routes and a /24 emptied of its longer prefixes
 * by hand, with the answers spelled out. */
static void test_edges(void **state)
{
	struct fwd_prefix4 p[] = {
		{.addr = 0, .len = 0, .region = 1},
		{.addr = 0x0a000000, .len = 8, .region = 2},
		{.addr = 0x0a010200, .len = 24, .region = 3},
		{.addr = 0x0a010280, .len = 25, .region = 4},
		{.addr = 0x0a0102ff, .len = 32, .region = 5},
		{.addr = 0xffffffff, .len = 32, .region = 6},
	};
	struct fwd_fib4 *f = fwd_fib4_create(0);
	uint32_t hint = 0;

	(void)state;
	assert_int_equal(fwd_fib4_build(f, p, 6), 0);
	assert_int_equal(fwd_fib4_lookup(f, 0x01020304), 1);
	assert_int_equal(fwd_fib4_lookup(f, 0x0a7f0000), 2);
	assert_int_equal(fwd_fib4_lookup(f, 0x0a01027f), 3);
	assert_int_equal(fwd_fib4_lookup(f, 0x0a010280), 4);
	assert_int_equal(fwd_fib4_lookup(f, 0x0a0102fe), 4);
	assert_int_equal(fwd_fib4_lookup(f, 0x0a0102ff), 5);
	assert_int_equal(fwd_fib4_lookup(f, 0xfffffffe), 1);
	assert_int_equal(fwd_fib4_lookup(f, 0xffffffff), 6);
	assert_int_equal(f->groups, 2);
	/* Remove the /25 and the /32 of 10.1.2.0/24: its group goes. */
	fwd_fib4_count(f, 25, -1);
	fwd_fib4_count(f, 32, -1);
	p[3] = p[5];
	assert_int_equal(fwd_fib4_update(f, p, 4, 0x0a010280, 25, &hint), 0);
	assert_int_equal(fwd_fib4_update(f, p, 4, 0x0a0102ff, 32, &hint), 0);
	assert_int_equal(f->groups, 1);
	assert_int_equal(fwd_fib4_lookup(f, 0x0a0102ff), 3);
	assert_int_equal(fwd_fib4_lookup(f, 0x0a010280), 3);
	/* Remove the /8: 10/8 falls back to the default. */
	fwd_fib4_count(f, 8, -1);
	p[1] = p[2];
	p[2] = p[3];
	hint = 0;
	assert_int_equal(fwd_fib4_update(f, p, 3, 0x0a000000, 8, &hint), 0);
	assert_int_equal(fwd_fib4_lookup(f, 0x0a7f0000), 1);
	assert_int_equal(fwd_fib4_lookup(f, 0x0a010203), 3);
	/* The default gone too: unknown (0) outside what is left. */
	fwd_fib4_count(f, 0, -1);
	hint = 0;
	assert_int_equal(fwd_fib4_update(f, p + 1, 2, 0, 0, &hint), 0);
	assert_int_equal(fwd_fib4_lookup(f, 0x01020304), 0);
	assert_int_equal(fwd_fib4_lookup(f, 0x0a010203), 3);
	assert_int_equal(fwd_fib4_lookup(f, 0xffffffff), 6);
	fwd_fib4_free(f);
}

/* The same on memory a freed FIB left behind (fwd_hugemap_recycle): each
 * build takes the last one's mappings, old entries and groups in them, and
 * must answer as on fresh memory. */
static void test_on_kept_memory(void **state)
{
	fwd_hugemap_keep((size_t)1 << 30);
	test_build_matches_brute_force(state);
	assert_true(fwd_hugemap_kept() > 0);
	test_changes_match_brute_force(state);
	fwd_hugemap_keep(0);
	assert_int_equal(fwd_hugemap_kept(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_build_matches_brute_force),
		cmocka_unit_test(test_changes_match_brute_force),
		cmocka_unit_test(test_on_kept_memory),
		cmocka_unit_test(test_scale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
