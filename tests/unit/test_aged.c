/*
 * Aged-bucket table tests (dataplane/dp_aged.h), on an entry type of the
 * test's own: lookup, expiry with and without refresh, reuse of a live key,
 * free and expired ways before eviction, eviction of the entry closest to
 * expiry; and the policy against a reference copy of the per-type code the
 * fragment and flow tables had before they shared this module.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dp_aged.h"

struct tkey {
	uint32_t a, b;
	uint8_t src[16], dst[16];
};

struct tentry {
	struct tkey key;
	uint64_t expires;
	uint32_t val;
} __attribute__((aligned(64)));

DP_AGED_CHECK(struct tentry);
#define L DP_AGED_LAYOUT(struct tentry)

static uint32_t thash(const struct tkey *k)
{
	return dp_aged_hash(0x12345678u, k->a, k->b, k->src, k->dst, sizeof(*k));
}

static void mk(struct tkey *k, uint32_t a)
{
	memset(k, 0, sizeof(*k));
	k->a = a;
	k->src[0] = (uint8_t)a;
	k->dst[15] = 7;
}

static struct tentry *lookup(struct dp_aged *t, const struct tkey *k, uint64_t now, int refresh)
{
	return refresh ? dp_aged_lookup(t, L, thash(k), k, now, 1)
		       : dp_aged_lookup(t, L, thash(k), k, now, 0);
}

static int insert(struct dp_aged *t, const struct tkey *k, uint32_t val, uint64_t now)
{
	int evicted;
	struct tentry *e = dp_aged_insert(t, L, thash(k), k, now, &evicted);

	e->val = val;
	return evicted;
}

static void test_sizes(void **state)
{
	struct dp_aged t;
	void *m = calloc(1, dp_aged_mem_size(65, sizeof(struct tentry)));

	(void)state;
	assert_int_equal(dp_aged_mem_size(1, 64), DP_AGED_WAYS * 64);
	assert_int_equal(dp_aged_mem_size(64, 64), 64 * 64);
	assert_int_equal(dp_aged_mem_size(65, 64), 128 * 64); /* buckets: a power of two */
	dp_aged_init(&t, m, 65, 10);
	assert_int_equal(t.bucket_mask, 31);
	assert_int_equal(t.timeout, 10);
	free(m);
}

static void test_lookup_expiry_refresh(void **state)
{
	struct dp_aged t;
	void *m = calloc(1, dp_aged_mem_size(64, sizeof(struct tentry)));
	struct tkey k, other;

	(void)state;
	dp_aged_init(&t, m, 64, 100);
	mk(&k, 1);
	mk(&other, 2);
	assert_null(lookup(&t, &k, 0, 0));
	assert_int_equal(insert(&t, &k, 11, 10), 0);
	assert_int_equal(lookup(&t, &k, 109, 0)->val, 11);
	assert_null(lookup(&t, &other, 50, 0));
	assert_null(lookup(&t, &k, 110, 0)); /* 10 + 100: expired, not refreshed */
	/* With refresh, every lookup restarts the timer. */
	assert_int_equal(insert(&t, &k, 12, 200), 0);
	assert_non_null(lookup(&t, &k, 290, 1));
	assert_non_null(lookup(&t, &k, 380, 1));
	assert_int_equal(lookup(&t, &k, 479, 0)->val, 12);
	assert_null(lookup(&t, &k, 480, 0));
	free(m);
}

/* One bucket: a live key is reused, free and expired ways come before any
 * eviction, then the entry closest to expiry goes and the insert says so. */
static void test_one_bucket_policy(void **state)
{
	struct dp_aged t;
	void *m = calloc(1, dp_aged_mem_size(DP_AGED_WAYS, sizeof(struct tentry)));
	struct tkey k[DP_AGED_WAYS + 2];

	(void)state;
	dp_aged_init(&t, m, DP_AGED_WAYS, 100);
	for (int i = 0; i < DP_AGED_WAYS + 2; i++)
		mk(&k[i], (uint32_t)(10 + i));
	for (int i = 0; i < DP_AGED_WAYS; i++)
		assert_int_equal(insert(&t, &k[i], (uint32_t)i, (uint64_t)i * 10), 0);
	assert_int_equal(insert(&t, &k[2], 22, 35), 0); /* same key: reused, not evicted */
	assert_int_equal(lookup(&t, &k[2], 36, 0)->val, 22);
	/* k[0] expires at 100: at 100 its way is free again, no eviction. */
	assert_int_equal(insert(&t, &k[4], 4, 100), 0);
	assert_null(lookup(&t, &k[0], 100, 0));
	/* Full and live: k[1] (expires 110) is closest to expiry. */
	assert_int_equal(insert(&t, &k[5], 5, 101), 1);
	assert_null(lookup(&t, &k[1], 102, 0));
	assert_non_null(lookup(&t, &k[2], 102, 0));
	assert_non_null(lookup(&t, &k[3], 102, 0));
	assert_non_null(lookup(&t, &k[4], 102, 0));
	assert_int_equal(lookup(&t, &k[5], 102, 0)->val, 5);
	free(m);
}

/* The fragment and flow tables' own insert before dp_aged, for one bucket. */
struct ref {
	uint32_t key[DP_AGED_WAYS];
	uint64_t expires[DP_AGED_WAYS];
};

static int ref_insert(struct ref *r, uint32_t key, uint64_t now, uint64_t timeout)
{
	int victim = -1, evicted = 0;

	for (int i = 0; i < DP_AGED_WAYS; i++) {
		if (r->expires[i] > now && r->key[i] == key) {
			victim = i;
			break;
		}
		if (r->expires[i] <= now) {
			if (victim < 0 || r->expires[victim] > now)
				victim = i;
		} else if (victim < 0 ||
			   (r->expires[victim] > now && r->expires[i] < r->expires[victim])) {
			victim = i;
		}
	}
	if (r->expires[victim] > now && r->key[victim] != key)
		evicted = 1;
	r->key[victim] = key;
	r->expires[victim] = now + timeout;
	return evicted;
}

static int ref_lookup(struct ref *r, uint32_t key, uint64_t now, uint64_t timeout, int refresh)
{
	for (int i = 0; i < DP_AGED_WAYS; i++)
		if (r->expires[i] > now && r->key[i] == key) {
			if (refresh)
				r->expires[i] = now + timeout;
			return 1;
		}
	return 0;
}

static void test_policy_matches_reference(void **state)
{
	struct dp_aged t;
	void *m = calloc(1, dp_aged_mem_size(DP_AGED_WAYS, sizeof(struct tentry)));
	struct ref r;
	uint64_t now = 1;
	unsigned seed = 1;

	(void)state;
	memset(&r, 0, sizeof(r));
	dp_aged_init(&t, m, DP_AGED_WAYS, 50);
	for (int i = 0; i < 200000; i++) {
		uint32_t key = (uint32_t)(rand_r(&seed) % 8);
		int op = rand_r(&seed) % 3;
		struct tkey k;

		now += (uint64_t)(rand_r(&seed) % 12);
		mk(&k, key);
		if (op == 0) {
			assert_int_equal(insert(&t, &k, key, now), ref_insert(&r, key, now, 50));
		} else {
			struct tentry *e = lookup(&t, &k, now, op == 2);

			assert_int_equal(e != NULL, ref_lookup(&r, key, now, 50, op == 2));
			if (e != NULL)
				assert_int_equal(e->val, key);
		}
	}
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_lookup_expiry_refresh),
		cmocka_unit_test(test_one_bucket_policy),
		cmocka_unit_test(test_policy_matches_reference),
	};

	return cmocka_run_group_tests_name("aged", tests, NULL, NULL);
}
