/*
 * Content-rule compilation (common/fwd_hs.c): valid rules give one
 * database per field used; an invalid pattern is refused naming its rule;
 * a compilation over its memory limit is refused, and regiond survives;
 * a compiling child that hangs asleep (a lock copied by fork) is killed
 * and the build retried, never waited on for ever.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fwd_hs.h"

#define HEAD                                                                                       \
	"services: {https: [tcp/443], dns: [udp/53]}\n"                                            \
	"links: {l1: {port: p0, next_hop_mac: '02:00:00:00:00:01'}}\n"                             \
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

/* While this file exists, a compiling child takes it away and sleeps for
 * ever, as one would on a lock another thread held at fork(): the first
 * child hangs, the retry finds no file. hang_always keeps every child asleep. */
static char hang_flag[64];
static int hang_always;
/* How a compiling child ends before it compiles, when set: burning CPU
 * into its RLIMIT_CPU (SIGXCPU), a signal of its own, or an exit status. */
static int child_spin, child_signal, child_exit = -1;

void fwd_hs_child_hook(void);
void fwd_hs_child_hook(void)
{
	if (hang_always || (hang_flag[0] && unlink(hang_flag) == 0))
		for (;;)
			pause();
	while (child_spin)
		;
	if (child_signal) {
		signal(child_signal, SIG_DFL); /* cmocka's handler came through fork() */
		raise(child_signal);
	}
	if (child_exit >= 0)
		_exit(child_exit);
}

static const struct fwd_hs_limits roomy = {.cpu_seconds = 30, .memory_bytes = 2ull << 30};

static void test_compiles_per_field(void **state)
{
	struct fwd_table *t = load(
		HEAD "  - {name: a, field: tls_sni, pattern: '(^|\\.)telemetry\\.example\\.com$', "
		     "caseless: true, services: [https], action: drop}\n"
		     "  - {name: b, field: dns_qname, pattern: 'a(b', literal: true, services: "
		     "[dns], action: count}\n");
	struct fwd_hs_dbs dbs;
	struct fwd_err e = {0};
	const char *code = "";

	(void)state;
	assert_int_equal(fwd_hs_compile(t, &roomy, &dbs, &e, &code), 0);
	assert_null(dbs.bytes[FWD_CF_PAYLOAD]);
	assert_non_null(dbs.bytes[FWD_CF_TLS_SNI]);
	assert_null(dbs.bytes[FWD_CF_HTTP_HOST]);
	assert_non_null(dbs.bytes[FWD_CF_DNS_QNAME]); /* 'a(b' is fine as a literal */
	assert_true(dbs.len[FWD_CF_TLS_SNI] > 100);
	fwd_hs_free(&dbs);
	fwd_table_free(t);
}

/* unreadable: true rules (fail closed) have no pattern: a set of them alone
 * builds no database and runs no child; beside a pattern they shift its id
 * (the hash says so) but add nothing to Hyperscan. */
static void test_unreadable_rules_compile_without_hyperscan(void **state)
{
	struct fwd_table *t =
		load(HEAD "  - {name: u, field: tls_sni, unreadable: true, services: "
			  "[https], action: drop}\n"
			  "  - {name: v, field: dns_qname, unreadable: true, services: "
			  "[dns], action: count}\n");
	struct fwd_table *mix = load(HEAD "  - {name: u, field: tls_sni, unreadable: true, "
					  "services: [https], action: drop}\n"
					  "  - {name: p, field: tls_sni, pattern: abc, services: "
					  "[https], action: count}\n");
	struct fwd_table *alone = load(HEAD "  - {name: p, field: tls_sni, pattern: abc, services: "
					    "[https], action: count}\n");
	struct fwd_hs_dbs dbs;
	struct fwd_err e = {0};
	const char *code = "";

	(void)state;
	assert_int_equal(fwd_content_patterns(t), 0);
	assert_int_equal(fwd_hs_compile(t, &roomy, &dbs, &e, &code), 0);
	for (int f = 0; f < 4; f++)
		assert_null(dbs.bytes[f]);
	assert_true(dbs.rules_hash == fwd_content_hash(t));
	fwd_hs_free(&dbs);
	assert_int_equal(fwd_content_patterns(mix), 1);
	assert_int_equal(fwd_hs_compile(mix, &roomy, &dbs, &e, &code), 0);
	assert_non_null(dbs.bytes[FWD_CF_TLS_SNI]);
	assert_null(dbs.bytes[FWD_CF_DNS_QNAME]);
	fwd_hs_free(&dbs);
	assert_true(fwd_content_hash(mix) != fwd_content_hash(alone)); /* ids shifted */
	fwd_table_free(t);
	fwd_table_free(mix);
	fwd_table_free(alone);
}

/* A literal at the documented 4,096 bytes compiles: every byte escaped as
 * \xNN made it 16 KiB, past Hyperscan's pattern length limit. */
static void test_longest_literal_compiles(void **state)
{
	char *doc = malloc(8192), *p;
	struct fwd_table *t;
	struct fwd_hs_dbs dbs;
	struct fwd_err e = {0};
	const char *code = "";

	(void)state;
	p = doc + sprintf(doc, HEAD "  - {name: lit, field: payload, literal: true, pattern: '");
	for (int i = 0; i < 4096; i++)
		*p++ = "sig_4096"[i % 8];
	sprintf(p, "', services: [https], action: count}\n");
	t = load(doc);
	assert_int_equal(fwd_hs_compile(t, &roomy, &dbs, &e, &code), 0);
	assert_non_null(dbs.bytes[FWD_CF_PAYLOAD]);
	fwd_hs_free(&dbs);
	fwd_table_free(t);
	free(doc);
}

static void test_invalid_pattern_named(void **state)
{
	struct fwd_table *t = load(
		HEAD
		"  - {name: ok, field: payload, pattern: abc, services: [https], action: count}\n"
		"  - {name: broken, field: http_host, pattern: 'a(b', services: [https], action: "
		"drop}\n");
	struct fwd_hs_dbs dbs;
	struct fwd_err e = {0};
	const char *code = "";
	char b[512];

	(void)state;
	assert_int_equal(fwd_hs_compile(t, &roomy, &dbs, &e, &code), -EINVAL);
	assert_string_equal(code, "invalid_pattern");
	assert_int_equal(e.reason_code, FWD_R_INVALID_PATTERN);
	assert_string_equal(fwd_err_str(&e, b, sizeof(b)),
			    "c.yaml:5: content_rules[1].pattern: rule 'broken': Missing close "
			    "parenthesis for group started at index 1.");
	fwd_table_free(t);
}

static void test_too_expensive_refused(void **state)
{
#ifdef __SANITIZE_ADDRESS__
	skip(); /* no address-space limit under ASan (see fwd_hs.c) */
#endif
	char doc[200000];
	size_t n = (size_t)snprintf(doc, sizeof(doc), "%s", HEAD);
	struct fwd_hs_limits tight = {.cpu_seconds = 30, .memory_bytes = 4u << 20};
	struct fwd_hs_dbs dbs;
	struct fwd_err e = {0};
	const char *code = "";
	struct fwd_table *t;

	(void)state;
	for (int i = 0; i < 400; i++)
		n += (size_t)snprintf(
			doc + n, sizeof(doc) - n,
			"  - {name: r%d, field: payload, pattern: '[a-z]{%d}x[0-9]{2,40}y%dz', "
			"services: [https], action: count}\n",
			i, 10 + i % 50, i);
	t = load(doc);
	assert_int_equal(fwd_hs_compile(t, &tight, &dbs, &e, &code), -E2BIG);
	assert_string_equal(code, "pattern_too_expensive");
	assert_int_equal(e.reason_code, FWD_R_PATTERN_TOO_EXPENSIVE);
	/* the limit that was hit, not Hyperscan's "Unable to allocate memory"
	 * at a rule that is not to blame */
	assert_string_equal(e.reason,
			    "compiling the content rules exceeded its memory limit (4 MiB)");
	fwd_table_free(t);
}

/* Classified by the step that failed, never by the wording of Hyperscan's
 * message: a limit Hyperscan applies while parsing one pattern (a bounded
 * repeat of 60,000) refuses that pattern, named with its line; the set that
 * parses but cannot be built in the child's limits is too expensive
 * (test_too_expensive_refused). */
/* A pattern whose match can be zero bytes long is the pattern's fault:
 * invalid, named with its line, said in the document's terms. Those that
 * match the empty buffer Hyperscan refuses (its text advised
 * HS_FLAG_ALLOWEMPTY, a flag the operator cannot set); those that match a
 * point (^, $, \b, \A, \z alone) it built, and '^' counted every packet
 * of its services. */
static void test_empty_match_is_invalid(void **state)
{
	const char *const pats[] = {"'x|'", "'a*'",  "'(abc)?'", "'\\d*'", "'^'",   "'$'",
				    "'^$'", "'\\b'", "'\\A'",	 "'\\z'",  "'^a?'", "'(?:)'"};

	(void)state;
	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		char doc[512], b[512];

		snprintf(doc, sizeof(doc),
			 HEAD "  - {name: ok, field: payload, pattern: abc, services: [https], "
			      "action: count}\n"
			      "  - {name: bad, field: tls_sni, pattern: %s, services: [https], "
			      "action: drop}\n",
			 pats[i]);
		struct fwd_table *t = load(doc);
		struct fwd_hs_dbs dbs;
		struct fwd_err e = {0};

		if (fwd_hs_build(t, &roomy, &dbs, &e) != -EINVAL)
			fail_msg("%s: accepted", pats[i]);
		assert_int_equal(e.reason_code, FWD_R_INVALID_PATTERN);
		if (strcmp(fwd_err_str(&e, b, sizeof(b)),
			   "c.yaml:5: content_rules[1].pattern: rule 'bad': the pattern can match "
			   "zero bytes (as a*, ^ or \\b alone do), which matches every packet: "
			   "make it consume at least one byte"))
			fail_msg("%s: %s", pats[i], b);
		fwd_table_free(t);
	}
}

static void test_parse_limit_is_the_patterns_fault(void **state)
{
	struct fwd_table *t = load(
		HEAD
		"  - {name: ok, field: payload, pattern: abc, services: [https], action: count}\n"
		"  - {name: huge, field: payload, pattern: '[a-z]{1,60000}x', services: [https], "
		"action: drop}\n");
	struct fwd_hs_dbs dbs;
	struct fwd_err e = {0};
	char b[512];

	(void)state;
	assert_int_equal(fwd_hs_build(t, &roomy, &dbs, &e), -EINVAL);
	assert_int_equal(e.reason_code, FWD_R_INVALID_PATTERN);
	assert_string_equal(
		fwd_err_str(&e, b, sizeof(b)),
		"c.yaml:5: content_rules[1].pattern: rule 'huge': Bounded repeat is too large.");
	fwd_table_free(t);
}

/* How the compiling child ended is said in words: the CPU limit (SIGXCPU),
 * the memory limit (an allocation that failed), any other signal by name;
 * it said "(3 s CPU, 2048 MiB; signal 24)". */
static void test_child_end_said_in_words(void **state)
{
	struct fwd_table *t = load(HEAD "  - {name: a, field: payload, pattern: abc, services: "
					"[https], action: count}\n");
	const struct fwd_hs_limits one = {.cpu_seconds = 1, .memory_bytes = 2ull << 30};
	struct fwd_hs_dbs dbs;
	struct fwd_err e = {0};
	char b[512];

	(void)state;
	child_spin = 1;
	assert_int_equal(fwd_hs_build(t, &one, &dbs, &e), -E2BIG);
	child_spin = 0;
	assert_int_equal(e.reason_code, FWD_R_PATTERN_TOO_EXPENSIVE);
	assert_string_equal(fwd_err_str(&e, b, sizeof(b)),
			    "c.yaml: content_rules: compiling the content rules exceeded its CPU "
			    "limit (1 s)");
	memset(&e, 0, sizeof(e));
	child_exit = 3; /* what the child does when an allocation fails */
	assert_int_equal(fwd_hs_build(t, &roomy, &dbs, &e), -E2BIG);
	child_exit = -1;
	assert_string_equal(
		fwd_err_str(&e, b, sizeof(b)),
		"c.yaml: content_rules: compiling the content rules exceeded its memory "
		"limit (2048 MiB)");
	memset(&e, 0, sizeof(e));
	child_signal = SIGSEGV;
	assert_int_equal(fwd_hs_build(t, &roomy, &dbs, &e), -E2BIG);
	child_signal = 0;
	assert_string_equal(
		fwd_err_str(&e, b, sizeof(b)),
		"c.yaml: content_rules: the process compiling the content rules (limits "
		"30 s CPU, 2048 MiB) was ended by SIGSEGV (Segmentation fault)");
	fwd_table_free(t);
}

/* The hash that binds shipped databases to rules changes with anything compiled. */
static void test_content_hash(void **state)
{
	struct fwd_table *a = load(
		HEAD
		"  - {name: a, field: payload, pattern: abc, services: [https], action: count}\n");
	struct fwd_table *b = load(
		HEAD
		"  - {name: b, field: payload, pattern: abc, services: [https], action: drop}\n");
	struct fwd_table *c = load(HEAD "  - {name: a, field: payload, pattern: abc, caseless: "
					"true, services: [https], action: count}\n");
	struct fwd_table *d = load(HEAD "  - {name: a, field: http_host, pattern: abc, services: "
					"[https], action: count}\n");

	(void)state;
	assert_true(fwd_content_hash(a) ==
		    fwd_content_hash(b)); /* name and action are not compiled */
	assert_true(fwd_content_hash(a) != fwd_content_hash(c));
	assert_true(fwd_content_hash(a) != fwd_content_hash(d));
	fwd_table_free(a);
	fwd_table_free(b);
	fwd_table_free(c);
	fwd_table_free(d);
}

static void test_hung_child_is_retried(void **state)
{
	struct fwd_table *t = load(HEAD "  - {name: a, field: tls_sni, pattern: 'x\\.example', "
					"services: [https], action: drop}\n");
	struct fwd_hs_dbs dbs;
	struct fwd_err e = {0};
	FILE *f;

	(void)state;
	snprintf(hang_flag, sizeof(hang_flag), "/tmp/test_hs_hang.%d", (int)getpid());
	f = fopen(hang_flag, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(fwd_hs_build(t, &roomy, &dbs, &e), 0);
	assert_int_equal(access(hang_flag, F_OK), -1); /* a child did hang */
	assert_non_null(dbs.bytes[FWD_CF_TLS_SNI]);
	fwd_hs_free(&dbs);
	hang_flag[0] = 0;
	fwd_table_free(t);
}

static void test_child_hung_twice_is_internal(void **state)
{
	struct fwd_table *t = load(HEAD "  - {name: a, field: tls_sni, pattern: 'x\\.example', "
					"services: [https], action: drop}\n");
	struct fwd_hs_dbs dbs;
	struct fwd_err e = {0};

	(void)state;
	hang_always = 1;
	assert_int_equal(fwd_hs_build(t, &roomy, &dbs, &e), -ENOMEM);
	hang_always = 0;
	assert_int_equal(e.reason_code, FWD_R_INTERNAL);
	assert_non_null(strstr(e.reason, "hung"));
	for (int f = 0; f < 4; f++)
		assert_null(dbs.bytes[f]);
	fwd_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compiles_per_field),
		cmocka_unit_test(test_unreadable_rules_compile_without_hyperscan),
		cmocka_unit_test(test_longest_literal_compiles),
		cmocka_unit_test(test_invalid_pattern_named),
		cmocka_unit_test(test_parse_limit_is_the_patterns_fault),
		cmocka_unit_test(test_empty_match_is_invalid),
		cmocka_unit_test(test_too_expensive_refused),
		cmocka_unit_test(test_child_end_said_in_words),
		cmocka_unit_test(test_content_hash),
		cmocka_unit_test(test_hung_child_is_retried),
		cmocka_unit_test(test_child_hung_twice_is_internal),
	};

	return cmocka_run_group_tests_name("hs", tests, NULL, NULL);
}
