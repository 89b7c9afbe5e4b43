/*
 * test_prefixes.c - the regions section's fast prefix reader and radix sort
 * (common/fwd_table_regions.c) against the general reader and qsort().
 *
 * With fwd_table_fast = 0 every prefix goes through tv_parse_prefix() and
 * the arrays through qsort(), as before the fast paths. Every document here
 * must come out the same both ways: the same prefixes in the same order, or
 * the same refusal (line, path, text). Prefix strings at every edge the fast
 * readers decide on, random ones, and large tables with duplicates.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fwd_table.h"

static struct fwd_table *load(const char *doc, size_t len, int fast, struct fwd_err *e)
{
	struct fwd_table *t;

	memset(e, 0, sizeof(*e));
	fwd_table_fast = fast;
	t = fwd_table_parse(doc, len, "t.yaml", -1, e);
	fwd_table_fast = 1;
	return t;
}

static unsigned nok, nrefused;

static void same_both_ways(const char *doc, size_t len)
{
	struct fwd_err e1, e2;
	struct fwd_table *a = load(doc, len, 1, &e1), *b = load(doc, len, 0, &e2);

	if ((a == NULL) != (b == NULL))
		fail_msg("one way only (%s%s): %.300s", e1.reason, e2.reason, doc);
	if (a == NULL) {
		nrefused++;
		if (e1.line != e2.line || strcmp(e1.path, e2.path) || strcmp(e1.reason, e2.reason))
			fail_msg("refusals differ: %u %s %s / %u %s %s", e1.line, e1.path,
				 e1.reason, e2.line, e2.path, e2.reason);
		return;
	}
	nok++;
	assert_int_equal(a->nprefix4, b->nprefix4);
	assert_int_equal(a->nprefix6, b->nprefix6);
	for (uint32_t i = 0; i < a->nprefix4; i++)
		if (a->prefix4[i].addr != b->prefix4[i].addr ||
		    a->prefix4[i].len != b->prefix4[i].len ||
		    a->prefix4[i].region != b->prefix4[i].region ||
		    a->prefix4[i].line != b->prefix4[i].line)
			fail_msg("IPv4 prefix %u differs", i);
	for (uint32_t i = 0; i < a->nprefix6; i++)
		if (memcmp(a->prefix6[i].addr, b->prefix6[i].addr, 16) ||
		    a->prefix6[i].len != b->prefix6[i].len ||
		    a->prefix6[i].region != b->prefix6[i].region ||
		    a->prefix6[i].line != b->prefix6[i].line)
			fail_msg("IPv6 prefix %u differs", i);
	fwd_table_free(a);
	fwd_table_free(b);
}

/* One prefix, as a YAML plain scalar, a quoted one, and in JSON. */
static void one(const char *p)
{
	char doc[512];
	int n;

	n = snprintf(doc, sizeof(doc), "regions:\n  in:\n    prefixes:\n      - '%s'\n", p);
	same_both_ways(doc, (size_t)n);
	n = snprintf(doc, sizeof(doc), "{\"regions\": {\"in\": {\"prefixes\": [\"%s\"]}}}", p);
	same_both_ways(doc, (size_t)n);
}

static void test_edges(void **state)
{
	static const char *const p[] = {
		"10.0.0.0/8",
		"0.0.0.0/0",
		"255.255.255.255/32",
		"1.2.3.4/32",
		"1.2.3.0/24",
		"10.0.0.0/08",
		"10.0.0.0/008",
		"10.0.0.0/0008",
		"10.0.0.0/33",
		"10.0.0.0/99",
		"10.0.0.0/123",
		"10.0.0.0/18446744073709551616",
		"10.0.0.0/",
		"10.0.0.0",
		"/8",
		"10.0.0.0/8 ",
		" 10.0.0.0/8",
		"10.0.0.0/+8",
		"10.0.0.0/-8",
		"10.0.0.0/8/8",
		"010.0.0.0/8",
		"10.00.0.0/16",
		"10.0.0.00/32",
		"256.0.0.0/8",
		"10.0.0.256/32",
		"1.2.3/24",
		"1.2.3.4.5/32",
		"1.2.3.4./32",
		".1.2.3/8",
		"1..2.3/8",
		"a.b.c.d/8",
		"1.2.3.4/31",
		"1.2.3.5/31",
		"10.1.2.3/8",
		"128.0.0.0/1",
		"192.168.1.0/23",
		"1000.0.0.0/8",
		"1.2.3.4e/32",
		"0x0a.0.0.0/8",
		"10.0.0.0/8\t",
		"",
		"2001:db8::/32",
		"2001:DB8::/32",
		"2001:db8::1/32",
		"2001:db8::1/128",
		"::/0",
		"::/1",
		"::1/128",
		"::ffff:10.0.0.0/104",
		"::ffff:10.0.0.1/104",
		"2001:db8::/129",
		"2001:db8::/000032",
		"2001:db8::/",
		"2001:db8::",
		"2001:db8:::/48",
		":::/0",
		"2001:db8::1::/64",
		"2001:0db8:0000:0000:0000:0000:0000:0000/32",
		"2001:00db8::/32",
		"2001:db8:1:2:3:4:5:6/128",
		"2001:db8:1:2:3:4:5:6:7/128",
		"1:2:3:4::5:6:7:8/128",
		"2001:db8::g/64",
		"fe80::1%eth0/64",
		"[2001:db8::]/32",
		"2001:db8::/32 ",
		"2001:db8::/3.2",
		"2001:db8:/32",
		":2001:db8::/32",
		"2001:db8::/18446744073709551616",
		"10.0.0.0:/8",
		"10.0.0.0/8:",
		":/8",
		"2001:db8:1234:5678:9abc:def0:1234:5678/127",
		"2001:db8:1234:5678:9abc:def0:1234:5678/128",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		one(p[i]);
	/* not scalars */
	same_both_ways("regions:\n  in:\n    prefixes:\n      - [10.0.0.0/8]\n", 44);
	same_both_ways("regions:\n  in:\n    prefixes:\n      - {a: 1}\n", 40);
	same_both_ways("regions:\n  in:\n    prefixes:\n      - ~\n", 37);
	same_both_ways("{\"regions\": {\"in\": {\"prefixes\": [7, true, null]}}}", 51);
}

static uint64_t rs = 7;

static uint32_t rnd(uint32_t n)
{
	rs = rs * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rs >> 33) % n;
}

/* A prefix: mostly valid (host bits clear or not), sometimes spoilt. */
static void rand_prefix(char *out, size_t len)
{
	char a[64];
	unsigned l;

	if (rnd(2)) {
		uint32_t x = rnd(0xffffffffu);

		l = rnd(5) ? 8 + rnd(25) : rnd(40);
		if (rnd(4))
			x &= l == 0 ? 0 : l >= 32 ? ~0u : ~(~0u >> l);
		snprintf(a, sizeof(a), "%u.%u.%u.%u", x >> 24, (x >> 16) & 255, (x >> 8) & 255,
			 x & 255);
	} else {
		uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8};

		for (int i = 4; i < 16; i++)
			b[i] = rnd(3) ? 0 : (uint8_t)rnd(256);
		l = rnd(5) ? 16 + rnd(113) : rnd(140);
		if (rnd(4))
			for (unsigned k = l; k < 128; k++)
				b[k / 8] &= (uint8_t) ~(0x80 >> (k % 8));
		inet_ntop(AF_INET6, b, a, sizeof(a));
	}
	snprintf(out, len, "%s/%s%u", a, rnd(20) ? "" : "0", l);
	if (rnd(15) == 0) /* spoil a byte */
		out[rnd((uint32_t)strlen(out))] = "0:./a9 x"[rnd(8)];
}

static void test_random(void **state)
{
	char p[96];

	(void)state;
	nok = nrefused = 0;
	for (int i = 0; i < 20000; i++) {
		rand_prefix(p, sizeof(p));
		one(p);
	}
	assert_true(nok > 5000 && nrefused > 5000);
}

/* Big tables in several regions: the radix sort's order against qsort()'s,
 * duplicates and all (which region a duplicate names is decided by the
 * order of equal prefixes). */
static void test_large(void **state)
{
	size_t cap = 1 << 23;
	char *doc = malloc(cap);

	(void)state;
	assert_non_null(doc);
	for (int round = 0; round < 12; round++) {
		size_t n = (size_t)snprintf(doc, cap, "regions:\n");
		unsigned nreg = 1 + rnd(6), per = 200 + rnd(3000);
		int dups = round % 3; /* 0: none, 1: within a region, 2: across regions */

		for (unsigned r = 0; r < nreg; r++) {
			n += (size_t)snprintf(doc + n, cap - n, "  r%u:\n    prefixes:\n", r);
			for (unsigned k = 0; k < per; k++) {
				uint32_t x = (10u << 24) | (r << 20) | (k << 8);
				uint8_t b[16] = {0x20,
						 0x01,
						 0x0d,
						 0xb8,
						 (uint8_t)r,
						 0,
						 (uint8_t)(k >> 8),
						 (uint8_t)k};
				char a[64];

				if (dups == 2 && r > 0 && k == per / 2)
					x = (10u << 24) | (k << 8); /* also in r0 */
				if (dups == 1 && k == per - 1)
					x = (10u << 24) | (r << 20); /* r's first, again */
				if (rnd(2) || k == 0 || k == per / 2 || k == per - 1) {
					n += (size_t)snprintf(doc + n, cap - n,
							      "      - %u.%u.%u.0/24\n", x >> 24,
							      (x >> 16) & 255, (x >> 8) & 255);
				} else {
					inet_ntop(AF_INET6, b, a, sizeof(a));
					n += (size_t)snprintf(doc + n, cap - n, "      - '%s/64'\n",
							      a);
				}
			}
		}
		same_both_ways(doc, n);
	}
	free(doc);
}

/* Equal addresses of several lengths, longest first, among enough others
 * for the radix sort: sorted by length. */
static void test_lengths(void **state)
{
	/* static, and snprintf: GCC's -Wformat-overflow at -O3 took a
	 * malloc'd buffer's sprintf for a null destination */
	static char doc[1 << 16];
	size_t n = 0;

	(void)state;
	n += (size_t)snprintf(doc + n, sizeof(doc) - n, "regions:\n  a:\n    prefixes:\n");
	for (int l = 32; l >= 8; l -= 4)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n,
				      "      - 10.0.0.0/%d\n      - '2001:db8::/%d'\n", l, l + 32);
	n += (size_t)snprintf(doc + n, sizeof(doc) - n, "  b:\n    prefixes:\n");
	for (int k = 0; k < 600; k++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n,
				      "      - 11.%d.%d.0/24\n      - '2001:db9:%x::/48'\n", k >> 8,
				      k & 255, k);
	assert_true(n < sizeof(doc));
	same_both_ways(doc, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
