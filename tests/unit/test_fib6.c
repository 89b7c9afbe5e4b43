/*
 * test_fib6 - the IPv6 FIB (common/fwd_fib6.c) against a brute-force longest
 * match, as test_fib4: random tables whose prefixes nest across every level
 * of the trie (24, 32, ..., 128 bits), then random batches of adds,
 * removals and moves; after each batch every probed address answers as the
 * table does and the groups are exactly a fresh build's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fwd_fib6.h"
#include "fwd_hugemap.h"

typedef unsigned __int128 u128;

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static u128 mask_of(unsigned len)
{
	return len ? ~(u128)0 << (128 - len) : 0;
}

static u128 get(const uint8_t a[16])
{
	u128 v = 0;

	for (int i = 0; i < 16; i++)
		v = v << 8 | a[i];
	return v;
}

static void set(uint8_t a[16], u128 v)
{
	for (int i = 15; i >= 0; i--, v >>= 8)
		a[i] = (uint8_t)v;
}

static int cmp_prefix(const void *x, const void *y)
{
	const struct fwd_prefix6 *a = x, *b = y;
	int c = memcmp(a->addr, b->addr, 16);

	return c ? c : (int)a->len - (int)b->len;
}

/* The addresses of the table being checked, as integers (brute_prepare):
 * brute force reads every prefix per probe, and loading 16 bytes each time
 * was most of the test's time. */
static u128 *brute_addr;

static void brute_prepare(const struct fwd_prefix6 *p, uint32_t n)
{
	free(brute_addr);
	brute_addr = malloc(sizeof(*brute_addr) * (n ? n : 1));
	for (uint32_t i = 0; i < n; i++)
		brute_addr[i] = get(p[i].addr);
}

static int64_t brute_longest(const struct fwd_prefix6 *p, uint32_t n, u128 a, unsigned len)
{
	int64_t best = -1;

	for (uint32_t i = 0; i < n; i++)
		if (p[i].len <= len && ((brute_addr[i] ^ a) & mask_of(p[i].len)) == 0 &&
		    (best < 0 || p[i].len > p[best].len))
			best = i;
	return best;
}

/* Lengths on and around every level's boundary, and a few short ones. */
static const uint8_t lens[] = {0,  3,  16, 23, 24,  24,	 25,  31,  32,	32,  33,  39,
			       40, 44, 47, 48, 48,  48,	 49,  56,  57,	63,  64,  64,
			       65, 72, 80, 96, 100, 112, 119, 120, 121, 127, 128, 128};

/* Prefixes share the top @share bits of @space, so they nest. */
static struct fwd_prefix6 random_prefix(u128 space, unsigned share)
{
	struct fwd_prefix6 q = {0};
	u128 r = (u128)rnd() << 64 | rnd();

	/* Mostly near the space's other prefixes: the low bits of a few
	 * patterns, so blocks at every level hold several prefixes. */
	if (rnd() % 3)
		r &= ~(u128)0 << (rnd() % 3 * 40);
	/* The shortest (/0 and /3) stay rare: a table holding the default
	 * route has no address left unknown (region 0), and the unknown gaps
	 * between prefixes must be tested too. */
	do
		q.len = lens[rnd() % sizeof(lens)];
	while (q.len < 4 && rnd() % 64);
	set(q.addr, (space & mask_of(share)) | (r & ~mask_of(share)));
	set(q.addr, get(q.addr) & mask_of(q.len));
	q.region = (uint16_t)(1 + rnd() % 7);
	return q;
}

static int holds(const struct fwd_prefix6 *p, uint32_t n, const struct fwd_prefix6 *q)
{
	for (uint32_t i = 0; i < n; i++)
		if (p[i].len == q->len && memcmp(p[i].addr, q->addr, 16) == 0)
			return (int)i;
	return -1;
}

static uint32_t random_table(struct fwd_prefix6 *p, uint32_t want, u128 space, unsigned share)
{
	uint32_t n = 0;

	for (uint32_t tries = 0; n < want && tries < want * 4; tries++) {
		struct fwd_prefix6 q = random_prefix(space, share);

		if (holds(p, n, &q) < 0)
			p[n++] = q;
	}
	qsort(p, n, sizeof(*p), cmp_prefix);
	return n;
}

/* fwd_fib6_lookup_bulk (what the workers call) must answer as
 * fwd_fib6_lookup does for every address, at every count: the probes go in
 * runs of 1 to 77, shorter and longer than its prefetch distance and a
 * burst. */
static void check_bulk(const struct fwd_fib6 *f, const uint8_t (*a)[16], uint32_t n)
{
	uint64_t *nh = malloc(n * sizeof(*nh));

	assert_non_null(nh);
	memset(nh, 0xa5, n * sizeof(*nh)); /* an answer never written shows */
	for (uint32_t i = 0, run = 1; i < n; i += run, run = run % 77 + 1) {
		uint32_t k = n - i < run ? n - i : run;

		fwd_fib6_lookup_bulk(f, a + i, nh + i, k);
	}
	for (uint32_t i = 0; i < n; i++)
		if (nh[i] != fwd_fib6_lookup(f, a[i]))
			fail_msg("address %u: bulk %llu, one by one %u", i,
				 (unsigned long long)nh[i], fwd_fib6_lookup(f, a[i]));
	free(nh);
}

static void check_one(const struct fwd_fib6 *f, const struct fwd_prefix6 *p, uint32_t n, u128 a)
{
	uint8_t b[16];
	int64_t best = brute_longest(p, n, a, 128);
	uint32_t want = best < 0 ? 0 : p[best].region;

	set(b, a);
	if (fwd_fib6_lookup(f, b) != want)
		fail_msg("address %016llx%016llx: FIB says %u, the table %u (prefix %lld)",
			 (unsigned long long)(a >> 64), (unsigned long long)a,
			 fwd_fib6_lookup(f, b), want, (long long)best);
	assert_int_equal(fwd_fib6_longest(f, p, n, b, 128), best);
	assert_int_equal(fwd_fib6_longest(NULL, p, n, b, 128), best);
}

static void check_table(const struct fwd_fib6 *f, const struct fwd_prefix6 *p, uint32_t n,
			u128 space, unsigned share)
{
	uint8_t(*edges)[16] = calloc(4 * (size_t)n + 1, 16);

	assert_non_null(edges);
	brute_prepare(p, n);
	for (uint32_t i = 0; i < n; i++) {
		u128 a = get(p[i].addr), last = a | ~mask_of(p[i].len);

		check_one(f, p, n, a);
		check_one(f, p, n, last);
		check_one(f, p, n, a - 1);
		check_one(f, p, n, last + 1);
		set(edges[4 * i], a);
		set(edges[4 * i + 1], last);
		set(edges[4 * i + 2], a - 1);
		set(edges[4 * i + 3], last + 1);
		assert_int_equal(fwd_fib6_longest(f, p, n, p[i].addr, p[i].len), i);
		if (p[i].len)
			assert_int_equal(
				fwd_fib6_longest(f, p, n, p[i].addr, (uint8_t)(p[i].len - 1)),
				brute_longest(p, n, a, p[i].len - 1u));
	}
	for (int r = 0; r < 300; r++) {
		struct fwd_prefix6 q = random_prefix(space, share);

		check_one(f, p, n, get(q.addr) | (((u128)rnd() << 64 | rnd()) & ~mask_of(q.len)));
	}
	check_bulk(f, (const uint8_t(*)[16])edges, 4 * n); /* the deepest walks */
	free(edges);
	assert_int_equal(f->groups, fwd_fib6_groups_needed(p, n));
	for (unsigned l = 0; l <= 128; l++) {
		uint32_t c = 0;

		for (uint32_t i = 0; i < n; i++)
			c += p[i].len == l;
		assert_int_equal(f->nlen[l], c);
	}
}

static const struct {
	uint64_t hi;
	unsigned share;
} spaces[] = {
	{0x20010db800000000ull, 20}, /* dense: every prefix in one /20 */
	{0x2a00000000000000ull, 12},
	{0, 0}, /* anywhere */
};

static void test_build_matches_brute_force(void **state)
{
	(void)state;
	for (int round = 0; round < 24; round++) {
		unsigned sp = (unsigned)round % 3;
		u128 space = (u128)spaces[sp].hi << 64;
		uint32_t want = 1 + (uint32_t)(rnd() % 1200);
		struct fwd_prefix6 *p = calloc(want, sizeof(*p));
		uint32_t n = random_table(p, want, space, spaces[sp].share);
		struct fwd_fib6 *f = fwd_fib6_create(fwd_fib6_groups_needed(p, n));

		assert_non_null(f);
		assert_int_equal(fwd_fib6_build(f, p, n), 0);
		check_table(f, p, n, space, spaces[sp].share);
		fwd_fib6_free(f);
		free(p);
	}
}

struct change {
	struct fwd_prefix6 q;
	int d;
};

static int cmp_change(const void *a, const void *b)
{
	return cmp_prefix(&((const struct change *)a)->q, &((const struct change *)b)->q);
}

static void random_batch(struct fwd_fib6 *f, struct fwd_prefix6 **pp, uint32_t *n, uint32_t *cap,
			 u128 space, unsigned share, uint32_t nchanges)
{
	struct change *c = calloc(nchanges, sizeof(*c));
	struct fwd_prefix6 *p = *pp;
	uint32_t nc = 0, hint = 0;

	for (uint32_t t = 0; t < nchanges; t++) {
		struct fwd_prefix6 q;
		int at, dup = 0;

		q = *n && rnd() % 2 ? p[rnd() % *n] : random_prefix(space, share);
		for (uint32_t k = 0; k < nc; k++)
			dup |= c[k].q.len == q.len && memcmp(c[k].q.addr, q.addr, 16) == 0;
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
		fwd_fib6_count(f, c[k].q.len, c[k].d);
	for (uint32_t k = 0; k < nc; k++)
		assert_int_equal(fwd_fib6_update(f, p, *n, c[k].q.addr, c[k].q.len, &hint), 0);
	free(c);
	*pp = p;
}

static void test_changes_match_brute_force(void **state)
{
	(void)state;
	for (int round = 0; round < 12; round++) {
		unsigned sp = (unsigned)round % 3;
		u128 space = (u128)spaces[sp].hi << 64;
		uint32_t cap = 1 + (uint32_t)(rnd() % 600);
		struct fwd_prefix6 *p = calloc(cap, sizeof(*p));
		uint32_t n = random_table(p, cap, space, spaces[sp].share);
		struct fwd_fib6 *f = fwd_fib6_create(0);

		assert_non_null(f);
		assert_int_equal(fwd_fib6_build(f, p, n), 0);
		for (int batch = 0; batch < 25; batch++) {
			random_batch(f, &p, &n, &cap, space, spaces[sp].share,
				     1 + (uint32_t)(rnd() % (batch % 5 ? 20 : 300)));
			check_table(f, p, n, space, spaces[sp].share);
		}
		{ /* everything removed in one batch */
			struct fwd_prefix6 *old = malloc((n ? n : 1) * sizeof(*old));
			uint32_t on = n, hint = 0;

			memcpy(old, p, n * sizeof(*p));
			for (uint32_t k = 0; k < on; k++)
				fwd_fib6_count(f, old[k].len, -1);
			for (uint32_t k = 0; k < on; k++)
				assert_int_equal(
					fwd_fib6_update(f, p, 0, old[k].addr, old[k].len, &hint),
					0);
			check_table(f, p, 0, space, spaces[sp].share);
			assert_int_equal(f->groups, 0);
			free(old);
		}
		fwd_fib6_free(f);
		free(p);
	}
}

/* At scale, as test_fib4's: 100k prefixes of an Internet-like length mix,
 * then batches of 10k changes, against fwd_fib6_longest over the table. */
static int find(const struct fwd_prefix6 *p, uint32_t n, const struct fwd_prefix6 *q)
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

static struct fwd_prefix6 internet_prefix(void)
{
	static const uint8_t mix[] = {29, 32, 32, 32, 36, 40, 44, 48, 48,
				      48, 48, 48, 48, 48, 56, 64, 128};
	struct fwd_prefix6 q = {0};
	/* 2000::/3, and mostly inside a few thousand /32s, so /48s share
	 * groups at every level as real allocations do. */
	u128 a = (u128)(0x2000000000000000ull | (rnd() % 4096) << 40 | (rnd() & 0xffffffffffull))
		 << 64;

	a |= (u128)rnd() << 64 >> 64;
	q.len = mix[rnd() % sizeof(mix)];
	set(q.addr, a & mask_of(q.len));
	q.region = (uint16_t)(1 + rnd() % 50);
	return q;
}

static uint32_t unique_sorted(struct fwd_prefix6 *p, uint32_t n)
{
	uint32_t m = 0;

	qsort(p, n, sizeof(*p), cmp_prefix);
	for (uint32_t i = 0; i < n; i++)
		if (m == 0 || cmp_prefix(&p[m - 1], &p[i]) != 0)
			p[m++] = p[i];
	return m;
}

static void check_by_search(const struct fwd_fib6 *f, const struct fwd_prefix6 *p, uint32_t n,
			    const struct change *c, uint32_t nc)
{
	uint8_t(*all)[16] = calloc(20000 + 2 * nc, 16);

	assert_non_null(all);
	for (uint32_t i = 0; i < 20000 + 2 * nc; i++) {
		uint8_t *b = all[i];
		int64_t best;

		if (i < 2 * nc) {
			u128 a = get(c[i / 2].q.addr);

			set(b, i % 2 ? a | ~mask_of(c[i / 2].q.len) : a);
		} else {
			struct fwd_prefix6 q = internet_prefix();

			set(b, get(q.addr) | ((u128)rnd() & ~mask_of(q.len)));
		}
		best = fwd_fib6_longest(NULL, p, n, b, 128);
		if (fwd_fib6_lookup(f, b) != (best < 0 ? 0u : p[best].region))
			fail_msg("probe %u: FIB %u, table %u", i, fwd_fib6_lookup(f, b),
				 best < 0 ? 0u : p[best].region);
	}
	check_bulk(f, (const uint8_t(*)[16])all, 20000 + 2 * nc);
	free(all);
	assert_int_equal(f->groups, fwd_fib6_groups_needed(p, n));
}

static void test_scale(void **state)
{
	uint32_t n = 100000, cap = n + 10000;
	struct fwd_prefix6 *p = calloc(cap, sizeof(*p)), *next = calloc(cap, sizeof(*p));
	struct change *c = calloc(10000, sizeof(*c));
	uint8_t *gone = calloc(cap, 1);
	uint16_t *newreg = calloc(cap, sizeof(*newreg));
	struct fwd_fib6 *f;

	(void)state;
	for (uint32_t i = 0; i < n; i++)
		p[i] = internet_prefix();
	n = unique_sorted(p, n);
	f = fwd_fib6_create(fwd_fib6_groups_needed(p, n));
	assert_int_equal(fwd_fib6_build(f, p, n), 0);
	check_by_search(f, p, n, c, 0);
	for (int batch = 0; batch < 4; batch++) {
		uint32_t nc = 0, m = 0, hint = 0;

		memset(gone, 0, cap);
		for (uint32_t k = 0; k < 7000; k++) { /* 3k removals, 4k moves */
			uint32_t at = (uint32_t)(rnd() % n);

			if (gone[at])
				continue;
			gone[at] = k < 3000 ? 1 : 2;
			c[nc].q = p[at];
			c[nc].d = k < 3000 ? -1 : 0;
			if (k >= 3000)
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
		for (uint32_t k = 0; k < 3000; k++) {
			struct fwd_prefix6 q = internet_prefix();

			if (find(p, n, &q) >= 0)
				continue;
			next[m++] = q;
			c[nc].q = q;
			c[nc++].d = 1;
		}
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
			fwd_fib6_count(f, c[k].q.len, c[k].d);
		for (uint32_t k = 0; k < nc; k++)
			assert_int_equal(fwd_fib6_update(f, p, n, c[k].q.addr, c[k].q.len, &hint),
					 0);
		check_by_search(f, p, n, c, nc);
	}
	fwd_fib6_free(f);
	free(p);
	free(next);
	free(c);
	free(gone);
	free(newreg);
}

/* A /128 alone in its /24 (a chain of 13 groups), its removal (the chain
 * goes), and a /48 under a /32 whose region changes. */
static void test_edges(void **state)
{
	struct fwd_prefix6 p[3] = {0};
	struct fwd_fib6 *f = fwd_fib6_create(0);
	uint8_t probe[16];
	uint32_t hint = 0;

	(void)state;
	set(p[0].addr, (u128)0x20010db8ull << 96);
	p[0].len = 32;
	p[0].region = 1;
	set(p[1].addr, (u128)0x20010db8ull << 96 | (u128)0x0001ull << 80);
	p[1].len = 48;
	p[1].region = 2;
	memset(p[2].addr, 0xff, 16);
	p[2].len = 128;
	p[2].region = 3;
	assert_int_equal(fwd_fib6_build(f, p, 3), 0);
	assert_int_equal(f->groups, 3 + 13); /* /32: one; /48: two more; /128: 13 */
	memcpy(probe, p[2].addr, 16);
	assert_int_equal(fwd_fib6_lookup(f, probe), 3);
	probe[15] = 0xfe;
	assert_int_equal(fwd_fib6_lookup(f, probe), 0);
	set(probe, (u128)0x20010db8ull << 96 | (u128)0x0001ull << 80 | 7);
	assert_int_equal(fwd_fib6_lookup(f, probe), 2);
	set(probe, (u128)0x20010db8ull << 96 | (u128)0x0002ull << 80);
	assert_int_equal(fwd_fib6_lookup(f, probe), 1);
	/* The /128 goes: its 13 groups with it. */
	fwd_fib6_count(f, 128, -1);
	assert_int_equal(fwd_fib6_update(f, p, 2, p[2].addr, 128, &hint), 0);
	assert_int_equal(f->groups, 3);
	memset(probe, 0xff, 16);
	assert_int_equal(fwd_fib6_lookup(f, probe), 0);
	/* The /32 moves to region 4: the /48 keeps 2, the rest of the /32 is 4. */
	p[0].region = 4;
	hint = 0;
	assert_int_equal(fwd_fib6_update(f, p, 2, p[0].addr, 32, &hint), 0);
	set(probe, (u128)0x20010db8ull << 96 | (u128)0x0002ull << 80);
	assert_int_equal(fwd_fib6_lookup(f, probe), 4);
	set(probe, (u128)0x20010db8ull << 96 | (u128)0x0001ull << 80 | 7);
	assert_int_equal(fwd_fib6_lookup(f, probe), 2);
	assert_int_equal(f->groups, 3);
	fwd_fib6_free(f);
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

/* A kept pair serves the next build kind for kind, even when that needs more
 * groups: the groups' mapping grows (its old part dirty, its tail zero), it
 * never takes the first table's, nor the first table the groups'. */
static void test_kept_memory_by_kind(void **state)
{
	struct fwd_fib6 *f;
	uint32_t cap;

	(void)state;
	fwd_hugemap_keep((size_t)1 << 30);
	f = fwd_fib6_create(90000);
	cap = f->cap;
	assert_int_equal(f->clean_from, 0);
	fwd_fib6_free(f);
	f = fwd_fib6_create(90001);
	assert_int_equal(f->tbl24_size, (size_t)64 << 20);
	assert_true(f->dirty24);
	assert_true(f->cap >= 90001);
	assert_int_equal(f->clean_from, cap);
	fwd_fib6_free(f);
	f = fwd_fib6_create(64); /* smaller: the kept groups serve, whole */
	assert_int_equal(f->tbl24_size, (size_t)64 << 20);
	assert_true(f->cap >= 90001);
	assert_int_equal(f->clean_from, f->cap);
	fwd_fib6_free(f);
	fwd_hugemap_keep(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_build_matches_brute_force),
		cmocka_unit_test(test_changes_match_brute_force),
		cmocka_unit_test(test_on_kept_memory),
		cmocka_unit_test(test_kept_memory_by_kind),
		cmocka_unit_test(test_scale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
