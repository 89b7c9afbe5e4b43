/*
 * Content flow-verdict table tests (dataplane/dp_flow.c): a verdict is
 * found by its 5-tuple only; the idle timer restarts on every hit and an
 * idle entry expires; a full bucket evicts the entry closest to expiry and
 * says so; re-deciding a flow overwrites in place; a fuller table than its
 * size keeps working (bounded memory, counted evictions).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dp_flow.h"

static struct dp_flow_table ft;
static void *mem;

static int setup(void **state)
{
	(void)state;
	mem = calloc(1, dp_flow_mem_size(64));
	dp_flow_init(&ft, mem, 64, 100);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(mem);
	return 0;
}

static void key(struct dp_flow_key *k, uint8_t family, uint16_t sport, uint16_t dport)
{
	struct fwd_pkt p;

	memset(&p, 0, sizeof(p));
	p.family = family;
	p.proto = FWD_PROTO_TCP;
	p.sport = sport;
	p.dport = dport;
	p.src[0] = 10;
	p.dst[0] = 192;
	if (family == 4)
		p.src[7] = 0x55; /* bytes beyond an IPv4 address must not matter */
	dp_flow_key_of(&p, k);
}

static void test_idle_timer(void **state)
{
	struct dp_flow_key k;
	struct dp_flow_entry *e;

	(void)state;
	key(&k, 4, 1000, 443);
	assert_null(dp_flow_lookup(&ft, &k, 1));
	assert_int_equal(dp_flow_insert(&ft, &k, 7, 3, 0xabc, 10), 0);
	e = dp_flow_lookup(&ft, &k, 90); /* alive, timer restarts: expires at 190 */
	assert_non_null(e);
	assert_int_equal(e->rule, 3);
	assert_true(e->gen == 7 && e->rule_key == 0xabc);
	assert_non_null(dp_flow_lookup(&ft, &k, 180));
	assert_null(dp_flow_lookup(&ft, &k, 281)); /* idle for the timeout: forgotten */
}

static void test_tuple_and_family_distinguish(void **state)
{
	struct dp_flow_key a, b, c, d;

	(void)state;
	key(&a, 4, 1000, 443);
	key(&b, 4, 1001, 443);
	key(&c, 4, 1000, 80);
	key(&d, 6, 1000, 443);
	dp_flow_insert(&ft, &a, 1, 1, 1, 0);
	assert_null(dp_flow_lookup(&ft, &b, 1));
	assert_null(dp_flow_lookup(&ft, &c, 1));
	assert_null(dp_flow_lookup(&ft, &d, 1));
	assert_non_null(dp_flow_lookup(&ft, &a, 1));
}

static void test_redecide_overwrites(void **state)
{
	struct dp_flow_key k;

	(void)state;
	key(&k, 6, 5, 6);
	assert_int_equal(dp_flow_insert(&ft, &k, 1, 1, 11, 0), 0);
	assert_int_equal(dp_flow_insert(&ft, &k, 2, 9, 99, 1), 0); /* same flow: no eviction */
	assert_int_equal(dp_flow_lookup(&ft, &k, 2)->rule, 9);
}

/* Many more flows than entries: memory stays bounded, every insert beyond
 * capacity evicts a live entry and reports it, the newest flow is always found. */
static void test_overfull_evicts_and_counts(void **state)
{
	int evicted = 0;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct dp_flow_key k;

		key(&k, 4, (uint16_t)i, 443);
		evicted += dp_flow_insert(&ft, &k, 1, (uint32_t)i, 0, 0); /* all live */
		assert_int_equal(dp_flow_lookup(&ft, &k, 0)->rule, (uint32_t)i);
	}
	assert_true(evicted >= 1000 - 64);
	assert_true(evicted <= 1000 - 16); /* every bucket filled before evicting */
}

/* In a full bucket the entry closest to expiry goes, not a fresher one. */
static void test_evicts_closest_to_expiry(void **state)
{
	struct dp_flow_table one;
	void *m = calloc(1, dp_flow_mem_size(DP_FLOW_WAYS));
	struct dp_flow_key k[DP_FLOW_WAYS + 1];

	(void)state;
	dp_flow_init(&one, m, DP_FLOW_WAYS, 100); /* a single bucket */
	for (int i = 0; i <= DP_FLOW_WAYS; i++)
		key(&k[i], 4, (uint16_t)(100 + i), 443);
	for (int i = 0; i < DP_FLOW_WAYS; i++)
		assert_int_equal(dp_flow_insert(&one, &k[i], 1, (uint32_t)i, 0, (uint64_t)i * 10),
				 0);
	assert_non_null(dp_flow_lookup(&one, &k[0], 35)); /* flow 0 used again: now the freshest */
	assert_int_equal(dp_flow_insert(&one, &k[DP_FLOW_WAYS], 1, 9, 0, 40), 1);
	assert_non_null(dp_flow_lookup(&one, &k[0], 41));
	assert_null(dp_flow_lookup(&one, &k[1], 41)); /* flow 1 was closest to expiry */
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_idle_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tuple_and_family_distinguish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redecide_overwrites, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overfull_evicts_and_counts, setup, teardown),
		cmocka_unit_test(test_evicts_closest_to_expiry),
	};

	return cmocka_run_group_tests_name("flow", tests, NULL, NULL);
}
