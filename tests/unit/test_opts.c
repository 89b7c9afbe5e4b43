/*
 * The option tables (common/fwd_opts.c): defaults parsed like the command
 * line, every kind set from its argument, values out of range refused with
 * the table's message, a required option missing named, --help reported,
 * the options given marked, and the help lines from the same table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <netdb.h>
#include <sys/socket.h>

#include "fwd_opts.h"

struct o {
	const char *name;
	uint64_t count, mode;
	uint32_t n;
	double rate;
	struct fwd_opt_list ifs;
	uint8_t mac[6];
	int json, once;
};

static const char *const modes[] = {"auto", "native", NULL};

#define AT(m) offsetof(struct o, m)
static const struct fwd_opt table[] = {
	{.name = "name",
	 .arg = "N",
	 .kind = FWD_OPT_STR,
	 .off = AT(name),
	 .required = 1,
	 .help = "a name"},
	{.name = "count",
	 .arg = "C",
	 .def = "20",
	 .kind = FWD_OPT_UINT,
	 .off = AT(count),
	 .min = 2,
	 .max = 100,
	 .refused = "--count takes 2..100",
	 .help = "how many"},
	{.name = "mode",
	 .arg = "M",
	 .def = "auto",
	 .kind = FWD_OPT_CHOICE,
	 .off = AT(mode),
	 .choices = modes,
	 .refused = "--mode takes auto or native",
	 .help = "which"},
	{.name = "n", .arg = "N", .kind = FWD_OPT_U32, .off = AT(n), .help = "a number"},
	{.name = "rate",
	 .arg = "R",
	 .def = "1.5",
	 .kind = FWD_OPT_REAL,
	 .off = AT(rate),
	 .help = "r"},
	{.name = "if",
	 .arg = "IF",
	 .kind = FWD_OPT_LIST,
	 .off = AT(ifs),
	 .max = 2,
	 .mark = 1,
	 .help = "interfaces"},
	{.name = "mac", .arg = "MAC", .kind = FWD_OPT_MAC, .off = AT(mac), .help = "a MAC"},
	{.name = "json", .kind = FWD_OPT_FLAG, .off = AT(json), .help = "JSON"},
	{.name = "once",
	 .kind = FWD_OPT_FLAG,
	 .off = AT(once),
	 .once = 1,
	 .help = "a flag given once"},
	{.name = "help", .kind = FWD_OPT_HELP, .help = "this help"},
};
#undef AT
#define N (sizeof(table) / sizeof(table[0]))

static enum fwd_opts_result run(struct o *o, uint64_t *given, struct fwd_err *e, int argc, ...)
{
	char *argv[16] = {"prog"};
	va_list ap;

	va_start(ap, argc);
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	memset(o, 0, sizeof(*o));
	memset(e, 0, sizeof(*e));
	return fwd_opts_parse(table, N, argc, argv, o, given, NULL, e);
}

static void test_kinds_and_defaults(void **state)
{
	struct o o;
	struct fwd_err e;
	uint64_t given;

	(void)state;
	assert_int_equal(run(&o, &given, &e, 3, "--name", "x"), FWD_OPTS_OK);
	assert_string_equal(o.name, "x");
	assert_int_equal(o.count, 20); /* the defaults, parsed */
	assert_int_equal(o.mode, 0);
	assert_true(o.rate > 1.49 && o.rate < 1.51);
	assert_int_equal(given, 1); /* only --name was given */
	assert_int_equal(run(&o, &given, &e, 16, "--name", "x", "--count", "7", "--mode", "native",
			     "--n", "42", "--if", "a", "--if", "b", "--mac", "02:00:00:00:00:0a",
			     "--json"),
			 FWD_OPTS_OK);
	assert_int_equal(o.count, 7);
	assert_int_equal(o.mode, 1);
	assert_int_equal(o.n, 42);
	assert_int_equal(o.ifs.n, 2);
	assert_string_equal(o.ifs.v[1], "b");
	assert_int_equal(o.mac[5], 0x0a);
	assert_int_equal(o.json, 1);
	assert_true(given & (1u << 5)); /* --if: the caller's marked option */
}

static void test_refusals(void **state)
{
	struct o o;
	struct fwd_err e;

	(void)state;
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--count", "1"), FWD_OPTS_ERROR);
	assert_string_equal(e.reason, "--count takes 2..100 (given \"1\")");
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--count", "-5"), FWD_OPTS_ERROR);
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--count", "7x"), FWD_OPTS_ERROR);
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--mode", "turbo"), FWD_OPTS_ERROR);
	assert_string_equal(e.reason, "--mode takes auto or native");
	assert_int_equal(run(&o, NULL, &e, 9, "--name", "x", "--if", "a", "--if", "b", "--if", "c"),
			 FWD_OPTS_ERROR);
	assert_string_equal(e.reason, "at most 2 --if");
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--mac", "02:00:00:00:00"),
			 FWD_OPTS_ERROR);
	assert_int_equal(run(&o, NULL, &e, 3, "--count", "7"), FWD_OPTS_ERROR);
	assert_string_equal(e.reason, "--name is required");
	assert_int_equal(run(&o, NULL, &e, 4, "--name", "x", "--bogus"), FWD_OPTS_ERROR);
	assert_non_null(strstr(e.reason, "--bogus"));
	assert_int_equal(run(&o, NULL, &e, 4, "--name", "x", "stray"), FWD_OPTS_ERROR);
	assert_string_equal(e.reason, "unexpected argument: stray");
	assert_int_equal(run(&o, NULL, &e, 2, "--help"), FWD_OPTS_HELP); /* even without --name */
	assert_int_equal(run(&o, NULL, &e, 2, "-h"), FWD_OPTS_HELP);
	/* Help wins over an error before or after it. */
	assert_int_equal(run(&o, NULL, &e, 3, "--bogus", "--help"), FWD_OPTS_HELP);
	assert_int_equal(run(&o, NULL, &e, 4, "--count", "7x", "-h"), FWD_OPTS_HELP);
}

/* Numbers are digits first and nothing after: strtoull took "" as 0 and
 * " 20", "+20" as 20, atof "abc" as 0; a repeated option kept its last
 * value without a word. */
static void test_strict_numbers_and_repeats(void **state)
{
	static const char *const bad_whole[] = {"", " 20", "+20", "20 ", "0x10", "1e3", "nan"};
	static const char *const bad_real[] = {"",    " 1",    "+1",	"-1",  "nan",
					       "inf", "1e400", "1junk", "abc", "0x1p3"};
	struct o o;
	struct fwd_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_whole) / sizeof(bad_whole[0]); i++) {
		assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--count", bad_whole[i]),
				 FWD_OPTS_ERROR);
		assert_non_null(strstr(e.reason, "--count takes 2..100"));
		assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--n", bad_whole[i]),
				 FWD_OPTS_ERROR);
		assert_non_null(strstr(e.reason, "--n:"));
	}
	for (size_t i = 0; i < sizeof(bad_real) / sizeof(bad_real[0]); i++) {
		assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--rate", bad_real[i]),
				 FWD_OPTS_ERROR);
		assert_non_null(strstr(e.reason, "--rate"));
	}
	/* A uint32_t past its 32 bits is refused, not wrapped. */
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--n", "4294967297"), FWD_OPTS_ERROR);
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--n", "4294967295"), FWD_OPTS_OK);
	assert_int_equal(o.n, 4294967295u);
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--rate", ".5"), FWD_OPTS_OK);
	assert_true(o.rate > 0.49 && o.rate < 0.51);
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--rate", "2e3"), FWD_OPTS_OK);
	assert_true(o.rate > 1999 && o.rate < 2001);
	assert_int_equal(run(&o, NULL, &e, 7, "--name", "x", "--count", "5", "--count", "6"),
			 FWD_OPTS_ERROR);
	assert_string_equal(e.reason, "--count given twice");
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--name", "y"), FWD_OPTS_ERROR);
	assert_string_equal(e.reason, "--name given twice");
	/* A list takes values, not the same value twice (a slip: an
	 * --xdp-iface given twice was attached twice). */
	assert_int_equal(run(&o, NULL, &e, 7, "--name", "x", "--if", "a", "--if", "a"),
			 FWD_OPTS_ERROR);
	assert_string_equal(e.reason, "--if a given twice");
	assert_int_equal(run(&o, NULL, &e, 7, "--name", "x", "--if", "a", "--if", "b"),
			 FWD_OPTS_OK);
	/* A flag twice says the same thing twice: taken. */
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--json", "--json"), FWD_OPTS_OK);
	/* Unless the program says its flags are given once (regionfwd-gen,
	 * whose doc says so, took --json --json). */
	assert_int_equal(run(&o, NULL, &e, 5, "--name", "x", "--once", "--once"), FWD_OPTS_ERROR);
	assert_string_equal(e.reason, "--once given twice");
	assert_int_equal(run(&o, NULL, &e, 4, "--name", "x", "--once"), FWD_OPTS_OK);
	assert_int_equal(o.once, 1);
	/* With @repeated the last value is taken and the repeat marked. */
	char *argv[] = {"prog", "--name", "x", "--count", "5", "--count",
			"6",	"--if",	  "a", "--if",	  "b"};
	uint64_t repeated = 7;

	memset(&o, 0, sizeof(o));
	assert_int_equal(fwd_opts_parse(table, N, 11, argv, &o, NULL, &repeated, &e), FWD_OPTS_OK);
	assert_int_equal(o.count, 6);
	assert_int_equal(repeated, 1u << 1); /* --count; not the list --if */
}

/* regiond's --listen, read before anything starts: each of these once
 * passed the command line and exited 1 at the bind, not 2. */
static void test_listen_addresses(void **state)
{
	static const char *const bad[] = {
		"127.0.0.1:99999", "127.0.0.1:+18459", "127.0.0.1:018459", "127.0.0.1:0x4000",
		"127.0.0.1",	   "127.0.0.1:",       "localhost:18459",  "[::1:80",
		"::1]:80",	   ":18459",	       "127.0.0.1:0",	   "127.0.0.1: 80",
	};
	static const char *const good[] = {"127.0.0.1:18459", "0.0.0.0:1", "[::1]:65535",
					   "[::]:8080", "127.0.0.1:08080"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fwd_parse_listen(bad[i], NULL) != -1)
			fail_msg("'%s' was taken", bad[i]);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (fwd_parse_listen(good[i], NULL) != 0)
			fail_msg("'%s' was refused", good[i]);
	/* The address the socket binds is the one the check read. */
	static const struct {
		const char *s, *host;
		int family, port;
	} bound[] = {{"127.0.0.1:08080", "127.0.0.1", AF_INET, 8080},
		     {"[::1]:65535", "::1", AF_INET6, 65535},
		     {"[::ffff:10.0.0.1]:1", "::ffff:10.0.0.1", AF_INET6, 1}};
	for (size_t i = 0; i < sizeof(bound) / sizeof(bound[0]); i++) {
		struct addrinfo *ai = NULL;
		char host[64], port[8];

		if (fwd_parse_listen(bound[i].s, &ai) != 0 || ai == NULL)
			fail_msg("'%s' was refused", bound[i].s);
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), port, sizeof(port),
				NI_NUMERICHOST | NI_NUMERICSERV))
			fail_msg("'%s': no name", bound[i].s);
		assert_int_equal(ai->ai_family, bound[i].family);
		assert_string_equal(host, bound[i].host);
		assert_int_equal(atoi(port), bound[i].port);
		freeaddrinfo(ai);
	}
}

static void test_help_lines(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	fwd_opts_print(f, table, N);
	fclose(f);
	/* One column, as wide as the widest left side ("-h, --help"). */
	assert_non_null(strstr(buf, "  --count C  how many (default 20)\n"));
	assert_non_null(strstr(buf, "  --json     JSON\n"));
	assert_non_null(strstr(buf, "  -h, --help this help\n"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kinds_and_defaults),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_strict_numbers_and_repeats),
		cmocka_unit_test(test_listen_addresses),
		cmocka_unit_test(test_help_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
