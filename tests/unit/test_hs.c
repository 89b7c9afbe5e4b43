/*
 * Content-rule compilation (control/ctl_hs.c): valid rules give one
 * database per field used; an invalid pattern is refused naming its rule;
 * a compilation over its memory limit is refused, and regiond survives.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ctl_hs.h"

#define HEAD                                                                \
	"services: {https: [tcp/443], dns: [udp/53]}\n"                     \
	"links: {l1: {port: p0, next_hop_mac: '02:00:00:00:00:01'}}\n"      \
	"content_rules:\n"

static struct fwd_table *load(const char *doc)
{
	struct fwd_err err = {0};
	struct fwd_table *t = fwd_table_parse(doc, strlen(doc), "c.yaml", 0, &err);
	char b[512];

	if (t == NULL)
		fail_msg("%s", fwd_err_str(&err, b, sizeof(b)));
	return t;
}

static const struct ctl_hs_limits roomy = {.cpu_seconds = 30, .memory_bytes = 2ull << 30};

static void test_compiles_per_field(void **state)
{
	struct fwd_table *t = load(HEAD
		"  - {name: a, field: tls_sni, pattern: '(^|\\.)telemetry\\.example\\.com$', caseless: true, services: [https], action: drop}\n"
		"  - {name: b, field: dns_qname, pattern: 'a(b', literal: true, services: [dns], action: count}\n");
	struct ctl_hs_dbs dbs;
	struct ctl_error e = {0};

	(void)state;
	assert_int_equal(ctl_hs_compile(t, &roomy, &dbs, &e), 0);
	assert_null(dbs.bytes[FWD_CF_PAYLOAD]);
	assert_non_null(dbs.bytes[FWD_CF_TLS_SNI]);
	assert_null(dbs.bytes[FWD_CF_HTTP_HOST]);
	assert_non_null(dbs.bytes[FWD_CF_DNS_QNAME]); /* 'a(b' is fine as a literal */
	assert_true(dbs.len[FWD_CF_TLS_SNI] > 100);
	ctl_hs_free(&dbs);
	fwd_table_free(t);
}

static void test_invalid_pattern_named(void **state)
{
	struct fwd_table *t = load(HEAD
		"  - {name: ok, field: payload, pattern: abc, services: [https], action: count}\n"
		"  - {name: broken, field: http_host, pattern: 'a(b', services: [https], action: drop}\n");
	struct ctl_hs_dbs dbs;
	struct ctl_error e = {0};
	char b[512];

	(void)state;
	assert_int_equal(ctl_hs_compile(t, &roomy, &dbs, &e), -EINVAL);
	assert_int_equal(e.status, 422);
	assert_string_equal(e.code, "invalid_pattern");
	assert_string_equal(fwd_err_str(&e.err, b, sizeof(b)),
			    "c.yaml:5: content_rules[1].pattern: rule 'broken': Missing close parenthesis for group started at index 1.");
	fwd_table_free(t);
}

static void test_too_expensive_refused(void **state)
{
#ifdef __SANITIZE_ADDRESS__
	skip(); /* no address-space limit under ASan (see ctl_hs.c) */
#endif
	char doc[200000];
	size_t n = (size_t)snprintf(doc, sizeof(doc), "%s", HEAD);
	struct ctl_hs_limits tight = {.cpu_seconds = 30, .memory_bytes = 24u << 20};
	struct ctl_hs_dbs dbs;
	struct ctl_error e = {0};
	struct fwd_table *t;

	(void)state;
	for (int i = 0; i < 400; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n,
				      "  - {name: r%d, field: payload, pattern: '[a-z]{%d}x[0-9]{2,40}y%dz', services: [https], action: count}\n",
				      i, 10 + i % 50, i);
	t = load(doc);
	assert_int_equal(ctl_hs_compile(t, &tight, &dbs, &e), -E2BIG);
	assert_string_equal(e.code, "pattern_too_expensive");
	assert_non_null(strstr(e.err.reason, "exceeded its limits (30 s CPU, 24 MiB;"));
	fwd_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compiles_per_field),
		cmocka_unit_test(test_invalid_pattern_named),
		cmocka_unit_test(test_too_expensive_refused),
	};

	return cmocka_run_group_tests_name("hs", tests, NULL, NULL);
}
