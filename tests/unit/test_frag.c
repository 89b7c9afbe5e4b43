/*
 * Fragment table tests (dataplane/dp_frag.c): later fragments find their
 * first fragment's decision; entries expire; a full bucket evicts (and says
 * so); duplicates refresh; IPv4 and IPv6 keys do not collide.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dp_frag.h"

static struct dp_frag_table ft;
static void *mem;

static int setup(void **state)
{
	(void)state;
	mem = calloc(1, dp_frag_mem_size(64));
	dp_frag_init(&ft, mem, 64, 100);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(mem);
	return 0;
}

static void key(struct dp_frag_key *k, uint8_t family, uint32_t id, uint8_t s)
{
	struct fwd_pkt p;

	memset(&p, 0, sizeof(p));
	p.family = family;
	p.proto = FWD_PROTO_UDP;
	p.frag_id = id;
	p.src[0] = s;
	p.dst[0] = 9;
	if (family == 4)
		p.src[5] = 0x77; /* garbage beyond an IPv4 address must not matter */
	dp_frag_key_of(&p, k);
}

static void test_insert_lookup_expire(void **state)
{
	struct dp_frag_key k;
	struct fwd_decision d = {.region = 3, .link = 7};
	const struct dp_frag_entry *e;

	(void)state;
	key(&k, 4, 1, 1);
	assert_null(dp_frag_lookup(&ft, &k, 10));
	assert_int_equal(dp_frag_insert(&ft, &k, 5, &d, 0, 0, 0, 0, 0, 10), 0);
	e = dp_frag_lookup(&ft, &k, 50);
	assert_non_null(e);
	assert_int_equal(e->d.link, 7);
	assert_int_equal(e->gen, 5);
	assert_null(dp_frag_lookup(&ft, &k, 110)); /* expired at 10 + 100 */
}

static void test_families_distinct(void **state)
{
	struct dp_frag_key k4, k6;
	struct fwd_decision d = {.link = 1};

	(void)state;
	key(&k4, 4, 2, 1);
	key(&k6, 6, 2, 1);
	dp_frag_insert(&ft, &k4, 1, &d, 0, 0, 0, 0, 0, 1000);
	assert_null(dp_frag_lookup(&ft, &k6, 1001));
	assert_non_null(dp_frag_lookup(&ft, &k4, 1001));
}

static void test_eviction_counted(void **state)
{
	struct fwd_decision d = {.link = 2};
	int evicted = 0;

	(void)state;
	/* 64 entries: 1000 live datagrams must evict, and say so. */
	for (uint32_t i = 0; i < 1000; i++) {
		struct dp_frag_key k;

		key(&k, 4, i, 2);
		evicted += dp_frag_insert(&ft, &k, 1, &d, 0, 0, 0, 0, 0, 2000);
	}
	assert_int_equal(evicted, 1000 - 64);
	/* Duplicate first fragments refresh instead of evicting. */
	{
		struct dp_frag_key k;

		key(&k, 4, 999, 2);
		assert_int_equal(dp_frag_insert(&ft, &k, 1, &d, 0, 0, 0, 0, 0, 2001), 0);
	}
}

/* A first fragment again with another port or link: the datagram's rest
 * follows neither (a spoofed one led a protected datagram out of region);
 * the same one again refreshes; a third agreeing with either changes
 * nothing. */
static void test_disagreeing_first_fragments(void **state)
{
	struct fwd_decision a = {.link = 2}, b = {.link = 3};
	const struct dp_frag_entry *e;
	struct dp_frag_key k;

	(void)state;
	key(&k, 4, 7, 2);
	dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9000, 0, 100);
	dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9000, 0, 101); /* sent again */
	e = dp_frag_lookup(&ft, &k, 102);
	assert_non_null(e);
	assert_int_equal(e->d.drop, 0);
	assert_int_equal(e->d.link, 2);
	dp_frag_insert(&ft, &k, 1, &b, 0xb, 0, 17, 443, 0, 103); /* another port, another link */
	e = dp_frag_lookup(&ft, &k, 104);
	assert_non_null(e);
	assert_int_equal(e->d.drop, 1 + FWD_DROP_FRAG_INVALID);
	assert_int_equal(e->d.link, FWD_LINK_NONE);
	assert_int_equal(e->d.mirror, FWD_LINK_NONE);
	assert_true(e->link_key == 0 && e->mirror_key == 0);
	dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9000, 0, 105); /* the first one's again */
	e = dp_frag_lookup(&ft, &k, 106);
	assert_int_equal(e->d.drop, 1 + FWD_DROP_FRAG_INVALID);
	/* Another port alone, same link, is not the same datagram either. */
	key(&k, 4, 8, 2);
	dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9000, 0, 100);
	dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9001, 0, 101);
	assert_int_equal(dp_frag_lookup(&ft, &k, 102)->d.drop, 1 + FWD_DROP_FRAG_INVALID);
}

/* A sender whose IPv4 ids never change sends a first fragment under the
 * same key every datagram: once two disagreed, each one after refreshed
 * the frag_invalid entry, and the rest of its datagrams was dropped for as
 * long as it sent (a probe). The entry now ages out a timeout (100 here)
 * after the disagreement, and the next first fragment's decision holds. */
static void test_a_disagreement_ages_out_under_a_steady_stream(void **state)
{
	struct fwd_decision a = {.link = 2};
	const struct dp_frag_entry *e;
	struct dp_frag_key k;

	(void)state;
	key(&k, 4, 4242, 3);
	dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9000, 0, 100);
	dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 443, 0, 110); /* disagrees */
	for (uint64_t t = 120; t < 210; t += 10) /* the stream goes on */
		dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9000, 0, t);
	e = dp_frag_lookup(&ft, &k, 205);
	assert_non_null(e);
	assert_int_equal(e->d.drop, 1 + FWD_DROP_FRAG_INVALID);
	assert_null(dp_frag_lookup(&ft, &k, 210)); /* 110 + 100: aged out */
	dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9000, 0, 210);
	e = dp_frag_lookup(&ft, &k, 211);
	assert_non_null(e);
	assert_int_equal(e->d.drop, 0);
	assert_int_equal(e->d.link, 2);
}

/* The same service decided again under a newer generation (its link went
 * down, the policy changed) replaces the entry: a constant-id stream's
 * later fragments were frag_invalid after every link command (a probe).
 * Under the same generation, or with another port, it is still a
 * disagreement. */
static void test_a_newer_generation_decides_again(void **state)
{
	struct fwd_decision a = {.link = 2},
			    down = {.drop = 1 + FWD_DROP_NO_LINK, .link = FWD_LINK_NONE},
			    c = {.link = 5};
	const struct dp_frag_entry *e;
	struct dp_frag_key k;

	(void)state;
	key(&k, 4, 4242, 4);
	dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9000, 0, 100);
	dp_frag_insert(&ft, &k, 2, &down, 0, 0, 17, 9000, 0, 110); /* generation 2: link down */
	e = dp_frag_lookup(&ft, &k, 111);
	assert_non_null(e);
	assert_int_equal(e->d.drop, 1 + FWD_DROP_NO_LINK);
	assert_int_equal(e->gen, 2);
	dp_frag_insert(&ft, &k, 3, &c, 0xc, 0, 17, 9000, 0, 120); /* generation 3: up, elsewhere */
	e = dp_frag_lookup(&ft, &k, 121);
	assert_int_equal(e->d.drop, 0);
	assert_int_equal(e->d.link, 5);
	assert_true(e->gen == 3 && e->link_key == 0xc);
	/* Same generation, another link: a disagreement. */
	dp_frag_insert(&ft, &k, 3, &a, 0xa, 0, 17, 9000, 0, 130);
	assert_int_equal(dp_frag_lookup(&ft, &k, 131)->d.drop, 1 + FWD_DROP_FRAG_INVALID);
	/* Content rules read the first fragment (scoped): its payload decided
	 * too, and a spoofed one with a harmless payload under a newer
	 * generation would lead the rest of a datagram a rule dropped past the
	 * rule (a review). A disagreement, whichever of the two was scoped. */
	{
		struct fwd_decision dropped = {.drop = 1 + FWD_DROP_CONTENT, .link = FWD_LINK_NONE};

		key(&k, 4, 4244, 4);
		dp_frag_insert(&ft, &k, 1, &dropped, 0, 0, 17, 9000, 1, 100);
		dp_frag_insert(&ft, &k, 2, &a, 0xa, 0, 17, 9000, 1, 110);
		assert_int_equal(dp_frag_lookup(&ft, &k, 111)->d.drop, 1 + FWD_DROP_FRAG_INVALID);
		key(&k, 4, 4245, 4);
		dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9000, 1, 100);
		dp_frag_insert(&ft, &k, 2, &c, 0xc, 0, 17, 9000, 0, 110);
		assert_int_equal(dp_frag_lookup(&ft, &k, 111)->d.drop, 1 + FWD_DROP_FRAG_INVALID);
		/* the same decision again under a newer generation: a refresh */
		key(&k, 4, 4246, 4);
		dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9000, 1, 100);
		dp_frag_insert(&ft, &k, 2, &a, 0xa, 0, 17, 9000, 1, 110);
		e = dp_frag_lookup(&ft, &k, 111);
		assert_true(e->d.drop == 0 && e->gen == 2);
	}
	/* A newer generation, another port: a disagreement. */
	key(&k, 4, 4243, 4);
	dp_frag_insert(&ft, &k, 1, &a, 0xa, 0, 17, 9000, 0, 100);
	dp_frag_insert(&ft, &k, 2, &a, 0xa, 0, 17, 443, 0, 110);
	assert_int_equal(dp_frag_lookup(&ft, &k, 111)->d.drop, 1 + FWD_DROP_FRAG_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_insert_lookup_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_families_distinct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eviction_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disagreeing_first_fragments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_disagreement_ages_out_under_a_steady_stream,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_newer_generation_decides_again, setup,
						teardown),
	};

	return cmocka_run_group_tests_name("frag", tests, NULL, NULL);
}
