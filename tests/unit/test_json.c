/*
 * test_json.c - the fast JSON reader (common/fwd_json.h) against jansson.
 *
 * The reader may only ever be faster: every document must come out of
 * fwd_doc_parse() exactly as it did when jansson read every JSON document
 * (the same tree, or the same error: file, line, path, text), and out of
 * fwd_json_loadb() exactly as out of json_loadb(). Checked on hand-picked
 * documents at every edge the reader decides on, on random documents with
 * everything JSON allows and much it does not, and on their mutations.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fwd_doc.h"
#include "fwd_json.h"

/* ---- comparing the two ways ------------------------------------------------------ */

static int same_tree(const struct fwd_node *a, const struct fwd_node *b, char *why, size_t n)
{
	if (a->type != b->type || a->line != b->line || a->count != b->count ||
	    a->quoted != b->quoted || strcmp(a->str, b->str) != 0 ||
	    (a->key == NULL) != (b->key == NULL) || (a->key && strcmp(a->key, b->key) != 0)) {
		snprintf(why, n, "node differs: type %d/%d str '%s'/'%s' key '%s'/'%s' count %u/%u",
			 a->type, b->type, a->str, b->str, a->key ? a->key : "-",
			 b->key ? b->key : "-", a->count, b->count);
		return 0;
	}
	for (a = a->child, b = b->child; a && b; a = a->next, b = b->next)
		if (!same_tree(a, b, why, n))
			return 0;
	if (a || b) {
		snprintf(why, n, "children differ in number");
		return 0;
	}
	return 1;
}

static unsigned nfast_ok, nerr;

/* fwd_doc_parse both ways, and fwd_json_loadb against json_loadb. */
static void check_doc(const char *buf, size_t len)
{
	struct fwd_err e1 = {0}, e2 = {0};
	struct fwd_doc *d1, *d2;
	char why[512];
	static const size_t flagsets[] = {JSON_REJECT_DUPLICATES, 0, JSON_DECODE_ANY,
					  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY};

	fwd_doc_json_fast = 1;
	d1 = fwd_doc_parse(buf, len, "t.json", 1, &e1);
	fwd_doc_json_fast = 0;
	d2 = fwd_doc_parse(buf, len, "t.json", 1, &e2);
	fwd_doc_json_fast = 1;
	if ((d1 == NULL) != (d2 == NULL))
		fail_msg("accepted one way only (%s): '%.*s'", d1 ? e2.reason : e1.reason, (int)len,
			 buf);
	if (d1) {
		nfast_ok++;
		if (!same_tree(fwd_doc_root(d1), fwd_doc_root(d2), why, sizeof(why)))
			fail_msg("%s: '%.*s'", why, (int)len, buf);
	} else {
		nerr++;
		if (strcmp(e1.file, e2.file) || e1.line != e2.line || strcmp(e1.path, e2.path) ||
		    strcmp(e1.reason, e2.reason))
			fail_msg("errors differ: '%u %s %s' / '%u %s %s': '%.*s'", e1.line, e1.path,
				 e1.reason, e2.line, e2.path, e2.reason, (int)len, buf);
	}
	fwd_doc_free(d1);
	fwd_doc_free(d2);

	for (size_t f = 0; f < sizeof(flagsets) / sizeof(flagsets[0]); f++) {
		json_error_t j1, j2;
		json_t *a = fwd_json_loadb(buf, len, flagsets[f], &j1);
		json_t *b = json_loadb(buf, len, flagsets[f], &j2);

		/* A NUL byte, which jansson takes between values or refuses in
		 * other words, is refused as one (fwd_json_slow_loadb). */
		const char *nul = memchr(buf, '\0', len);

		if (nul &&
		    (b != NULL || j2.position < 0 || (size_t)j2.position >= (size_t)(nul - buf))) {
			if (a != NULL || strncmp(j1.text, "a NUL byte", 10) != 0 ||
			    j1.position != (int)(nul - buf))
				fail_msg("a NUL byte taken or said otherwise: %d '%s'", j1.position,
					 j1.text);
			json_decref(a);
			json_decref(b);
			continue;
		}
		if ((a == NULL) != (b == NULL))
			fail_msg("json_loadb(%zu) differs: '%.*s'", flagsets[f], (int)len, buf);
		if (a) {
			char *sa = json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT);
			char *sb = json_dumps(b, JSON_ENCODE_ANY | JSON_COMPACT);

			if (sa == NULL || sb == NULL || strcmp(sa, sb) != 0)
				fail_msg("json_loadb(%zu) trees differ: %s / %s", flagsets[f], sa,
					 sb);
			free(sa);
			free(sb);
		}
		if (j1.line != j2.line || j1.column != j2.column || j1.position != j2.position ||
		    strcmp(j1.text, j2.text) || strcmp(j1.source, j2.source))
			fail_msg("json_error_t differs: %d:%d:%d '%s' '%s' / %d:%d:%d '%s' '%s'",
				 j1.line, j1.column, j1.position, j1.text, j1.source, j2.line,
				 j2.column, j2.position, j2.text, j2.source);
		json_decref(a);
		json_decref(b);
	}
}

static void check_str(const char *s)
{
	check_doc(s, strlen(s));
}

/* ---- hand-picked documents ---------------------------------------------------------- */

static void test_edges(void **state)
{
	static const char *const docs[] = {
		/* what tables look like */
		"{\"version\": 1, \"regions\": {\"in\": {\"prefixes\": [\"10.0.0.0/8\", "
		"\"2001:db8::/32\"]}}, \"default\": {\"action\": \"drop\"}}",
		"{}",
		"[]",
		"{\"a\":{}}",
		"{\"a\":[]}",
		"[[],[[]],{}]",
		" \t\r\n{ } \n",
		/* roots that are not containers */
		"1",
		"\"x\"",
		"true",
		"false",
		"null",
		"-0",
		"  7  ",
		/* integers */
		"[0]",
		"[-0]",
		"[12]",
		"[-12]",
		"[01]",
		"[-01]",
		"[00]",
		"[-]",
		"[1-]",
		"[+1]",
		"[123456789012345678]",
		"[-123456789012345678]",
		"[1234567890123456789]",
		"[9223372036854775807]",
		"[9223372036854775808]",
		"[-9223372036854775808]",
		"[-9223372036854775809]",
		"[99999999999999999999999]",
		/* reals */
		"[1.5]",
		"[1e3]",
		"[1E3]",
		"[-0.0]",
		"[1.]",
		"[.5]",
		"[1e]",
		"[1e+]",
		"[1e309]",
		"[0.1e-2]",
		/* literals */
		"[true,false,null]",
		"[tru]",
		"[nul]",
		"[truex]",
		"[True]",
		"[nulll]",
		"[falsey]",
		/* strings and escapes */
		"[\"\"]",
		"[\"a\\\"b\"]",
		"[\"\\\\\\/\\b\\f\\n\\r\\t\"]",
		"[\"\\u0041\"]",
		"[\"\\u00e9\\u20ac\"]",
		"[\"\\ud83d\\ude00\"]",
		"[\"\\ud83d\"]",
		"[\"\\ude00\"]",
		"[\"\\ud83dx\"]",
		"[\"\\ud83d\\u0041\"]",
		"[\"\\u0000\"]",
		"[\"\\u00\"]",
		"[\"\\uzzzz\"]",
		"[\"\\x\"]",
		"[\"\\\"]",
		"[\"a\tb\"]",
		"[\"a\nb\"]",
		"[\"\x7f\"]",
		"[\"caf\xc3\xa9\"]",
		"[\"\xe2\x82\xac\"]",
		"[\"\xf0\x9f\x98\x80\"]",
		"[\"\xc3\"]",
		"[\"\xc0\x80\"]",
		"[\"\xed\xa0\x80\"]",
		"[\"\xf4\x90\x80\x80\"]",
		"[\"\xe0\x80\xaf\"]",
		"[\"\xf0\x80\x80\xaf\"]",
		"[\"\xff\"]",
		"[\"\x80\"]",
		"[\"unterminated]",
		"[\"a\\",
		/* keys */
		"{\"a\":1,\"a\":2}",
		"{\"a\":1,\"b\":{\"a\":1,\"a\":[]}}",
		"{\"\":1}",
		"{\"k\\u00e9\":1}",
		"{\"a\\u0000\":1}",
		"{\"a\"}",
		"{\"a\":}",
		"{a:1}",
		"{\"a\" 1}",
		"{,}",
		"{\"a\":1,}",
		"[1,]",
		"[,1]",
		"[1 2]",
		"{\"z\":1,\"b\":2,\"y\":3,\"a\":4}",
		/* structure */
		"",
		" ",
		"{",
		"[",
		"}",
		"]",
		"{]",
		"[}",
		"[1]]",
		"{} {}",
		"{}x",
		"{}\x00",
		"\x00",
		"\xef\xbb\xbf{}",
		"[1]\v",
		"\f[1]",
		"/*c*/{}",
		"{}//",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		check_str(docs[i]);
	check_doc("[\"a\x00b\"]", 7); /* a raw NUL inside a string */
}

/* Nesting at the reader's limit (FWD_DOC_MAX_DEPTH) and past it, both kinds. */
static void test_depth(void **state)
{
	char buf[256];

	(void)state;
	for (int d = 28; d <= 40; d++) {
		for (int kind = 0; kind < 3; kind++) {
			size_t n = 0;

			for (int i = 0; i < d; i++)
				n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s",
						      kind == 1 || (kind == 2 && i % 2) ? "{\"k\":"
											: "[");
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "1");
			for (int i = d - 1; i >= 0; i--)
				n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s",
						      kind == 1 || (kind == 2 && i % 2) ? "}"
											: "]");
			check_doc(buf, n);
		}
	}
}

/* ---- random documents ------------------------------------------------------------------ */

struct out {
	char *b;
	size_t n, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->n + n + 1 > o->cap) {
		o->cap = (o->n + n + 1) * 2;
		o->b = realloc(o->b, o->cap);
		assert_non_null(o->b);
	}
	memcpy(o->b + o->n, s, n);
	o->n += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33) % n;
}

static void gen_ws(struct out *o)
{
	static const char *const ws[] = {"", "", "", " ", "\n", "\t", "\r\n", "  "};

	puts_(o, ws[rnd(8)]);
	if (rnd(400) == 0)
		puts_(o, rnd(2) ? "\v" : "\f"); /* not JSON whitespace */
}

static void gen_string(struct out *o, int key)
{
	static const char *const parts[] = {
		"a",
		"b",
		"k",
		"10.0.0.0/8",
		"2001:db8::/32",
		" ",
		"-",
		".",
		"_",
		"Z",
		"0",
		"\\\"",
		"\\\\",
		"\\/",
		"\\b",
		"\\f",
		"\\n",
		"\\r",
		"\\t",
		"\\u0041",
		"\\u00e9",
		"\\u20ac",
		"\\ud83d\\ude00",
		"\xc3\xa9",
		"\xe2\x82\xac",
		"\xf0\x9f\x98\x80",
		"\x7f",
	};
	static const char *const bad[] = {
		"\\ud83d",  "\\ude00",	    "\\u0000",
		"\\x",	    "\\u12",	    "\x01",
		"\t",	    "\n",	    "\xc3",
		"\xc0\xaf", "\xed\xa0\x80", "\xf5\x80\x80\x80",
		"\xff",	    "\xe0\x80\x80", "\\ud800\\u0041",
	};
	unsigned n = key ? 1 + rnd(3) : rnd(6);

	puts_(o, "\"");
	for (unsigned i = 0; i < n; i++) {
		if (rnd(60) == 0)
			puts_(o, bad[rnd(sizeof(bad) / sizeof(bad[0]))]);
		else
			puts_(o, parts[rnd(sizeof(parts) / sizeof(parts[0]))]);
	}
	puts_(o, "\"");
}

static void gen_number(struct out *o)
{
	static const char *const odd[] = {"-0",
					  "01",
					  "-",
					  "1.5",
					  "1e3",
					  "-2.5E-3",
					  "1.",
					  ".5",
					  "123456789012345678",
					  "1234567890123456789",
					  "-99999999999999999999",
					  "+1",
					  "0x10",
					  "1e400"};
	char b[32];

	if (rnd(8) == 0) {
		puts_(o, odd[rnd(sizeof(odd) / sizeof(odd[0]))]);
		return;
	}
	snprintf(b, sizeof(b), "%s%u", rnd(4) ? "" : "-", rnd(5) ? rnd(100) : rnd(4000000000u));
	puts_(o, b);
}

static void gen_value(struct out *o, int depth)
{
	unsigned k = depth > 40 ? 3 + rnd(5) : rnd(depth < 3 ? 4 : 9);

	gen_ws(o);
	switch (k) {
	case 0:
	case 1: { /* object */
		unsigned n = rnd(5);
		char keys[8][8];

		puts_(o, "{");
		for (unsigned i = 0; i < n; i++) {
			if (i)
				puts_(o, rnd(200) ? "," : "");
			gen_ws(o);
			if (rnd(30) == 0 && i) { /* a duplicate key */
				puts_(o, "\"");
				puts_(o, keys[rnd(i)]);
				puts_(o, "\"");
			} else {
				snprintf(keys[i], sizeof(keys[i]), "k%u", rnd(20));
				if (rnd(10) == 0) {
					gen_string(o, 1);
					keys[i][0] = '\0';
				} else {
					puts_(o, "\"");
					puts_(o, keys[i]);
					puts_(o, "\"");
				}
			}
			gen_ws(o);
			puts_(o, rnd(300) ? ":" : "");
			gen_value(o, depth + 1);
			gen_ws(o);
		}
		puts_(o, rnd(300) ? "}" : "");
		break;
	}
	case 2:
	case 3: { /* array */
		unsigned n = rnd(5);

		puts_(o, "[");
		for (unsigned i = 0; i < n; i++) {
			if (i)
				puts_(o, rnd(200) ? "," : "");
			gen_value(o, depth + 1);
		}
		gen_ws(o);
		puts_(o, rnd(300) ? "]" : "");
		break;
	}
	case 4:
	case 5:
		gen_string(o, 0);
		break;
	case 6:
		gen_number(o);
		break;
	default: {
		static const char *const lit[] = {"true", "false", "null",  "true", "false",
						  "null", "tru",   "nulls", "True"};

		puts_(o, lit[rnd(rnd(20) ? 6 : 9)]);
		break;
	}
	}
	gen_ws(o);
}

/* An error's field path to the line of a YAML document (regionctl says a
 * refusal of an embedded, line-less copy at the written file's line). */
static void test_line_of(void **state)
{
	static const char yaml[] = "version: 1\n" /* 1 */
				   "links:\n" /* 2 */
				   "  to.br:\n" /* 3 */
				   "    port: br0\n" /* 4 */
				   "  to:\n" /* 5 */
				   "    port: x0\n" /* 6 */
				   "content_rules:\n" /* 7 */
				   "  - name: a\n" /* 8 */
				   "    services: [https]\n" /* 9 */
				   "  - name: b\n" /* 10 */
				   "    services:\n" /* 11 */
				   "      - dns\n" /* 12 */
				   "      - ntp\n"; /* 13 */
	struct fwd_err e;
	struct fwd_doc *d = fwd_doc_parse(yaml, sizeof(yaml) - 1, "t", 0, &e);
	const struct fwd_node *r;

	(void)state;
	assert_non_null(d);
	r = fwd_doc_root(d);
	assert_int_equal(fwd_node_line_of(r, "links.to.br.port"), 4); /* the longer key */
	assert_int_equal(fwd_node_line_of(r, "links.to.port"), 6);
	assert_int_equal(fwd_node_line_of(r, "content_rules[1].services[1]"), 13);
	assert_int_equal(fwd_node_line_of(r, "content_rules[0].services[0]"), 9);
	/* what is not there: the deepest node that is */
	assert_int_equal(fwd_node_line_of(r, "content_rules[1].names"), 10);
	assert_int_equal(fwd_node_line_of(r, "content_rules[7].services"), 8); /* the list starts */
	assert_int_equal(fwd_node_line_of(r, "links.to.br.port.x"), 4);
	assert_int_equal(fwd_node_line_of(r, "links[0]"), 3); /* the map starts */
	assert_int_equal(fwd_node_line_of(r, "nosuch"), 0);
	assert_int_equal(fwd_node_line_of(r, ""), 0);
	assert_int_equal(fwd_node_line_of(NULL, "links"), 0);
	fwd_doc_free(d);
}

/* A UTF-8 byte order mark first is ignored by both readers and by the
 * sniffer: a `.json` file with one was refused by regionfwd (JSON by its
 * name) and taken by regiond (sniffed as YAML), a probe. */
static void test_byte_order_mark(void **state)
{
	static const char bom_json[] = "\xef\xbb\xbf{\"version\": 1}";
	static const char bom_yaml[] = "\xef\xbb\xbfversion: 1\nregions: {}\n";
	struct fwd_err e;

	(void)state;
	for (int json = -1; json <= 1; json += 2) {
		struct fwd_doc *d =
			fwd_doc_parse(bom_json, sizeof(bom_json) - 1, "t.json", json, &e);

		assert_non_null(d);
		assert_non_null(fwd_node_get(fwd_doc_root(d), "version"));
		fwd_doc_free(d);
	}
	{
		struct fwd_doc *d = fwd_doc_parse(bom_yaml, sizeof(bom_yaml) - 1, "t.yaml", -1, &e);

		assert_non_null(d);
		assert_int_equal(fwd_node_line_of(fwd_doc_root(d), "regions"), 2);
		fwd_doc_free(d);
	}
}

static void test_random(void **state)
{
	struct out o = {0};

	(void)state;
	nfast_ok = nerr = 0;
	rng_state = 19;
	for (int i = 0; i < 8000; i++) {
		o.n = 0;
		/* Deep ones now and then, past the nesting limit. */
		if (rnd(50) == 0) {
			unsigned d = 28 + rnd(10);

			for (unsigned k = 0; k < d; k++)
				puts_(&o, "[");
			gen_value(&o, 41);
			for (unsigned k = 0; k < d; k++)
				puts_(&o, "]");
		} else {
			gen_value(&o, 0);
		}
		if (rnd(40) == 0)
			puts_(&o, rnd(2) ? "x" : "{}");
		check_doc(o.b, o.n);
		/* and a mutation of it: a byte changed, dropped or cut */
		if (o.n > 1) {
			size_t at = rnd((uint32_t)o.n);

			switch (rnd(3)) {
			case 0:
				o.b[at] = "{}[]\",:\\ 0a-e.\x80\xc3"[rnd(17)];
				break;
			case 1:
				memmove(o.b + at, o.b + at + 1, o.n - at - 1);
				o.n--;
				break;
			default:
				o.n = at;
				break;
			}
			check_doc(o.b, o.n);
		}
	}
	free(o.b);
	/* Both kinds were met plenty. */
	assert_true(nfast_ok > 1500);
	assert_true(nerr > 1500);
}

/* A text the fast reader declines goes to jansson, which builds all of it
 * to say what is wrong, with no bound: a 120 MB array of zeros with a real
 * number in it took 5 GB of a regiond (a probe). Past
 * FWD_JSON_SLOW_MAX_VALUES values jansson is not asked; the refusal says
 * where the fast reader stopped. Under it, jansson still says it. */
/* A NUL byte's refusal (ours) names the column jansson names for another
 * bad character at the same place: in characters, not bytes. */
static void test_a_nul_byte_is_refused_at_janssons_column(void **state)
{
	static const char *const before[] = {
		"[",
		"[\"\xc3\xa9\", ",
		"{\"\xe2\x82\xac\xf0\x9f\x98\x80\": ",
		"[1,\n \"\xc3\xa9\xc3\xa9\",\n  ",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
		char doc[64];
		size_t n = strlen(before[i]);
		json_error_t ours, theirs;
		json_t *a, *b;

		memcpy(doc, before[i], n);
		memcpy(doc + n, "x]", 3);
		b = json_loadb(doc, n + 2, 0, &theirs);
		doc[n] = '\0';
		a = fwd_json_loadb(doc, n + 2, 0, &ours);
		assert_null(a);
		assert_null(b);
		assert_int_equal(ours.position, (int)n);
		assert_int_equal(ours.line, theirs.line);
		assert_int_equal(ours.column, theirs.column);
	}
}

static void test_a_large_declined_text_is_not_read_slowly(void **state)
{
	size_t n = FWD_JSON_SLOW_MAX_VALUES + 10, len = 0, real_at;
	char *b = malloc(2 * n + 16);
	json_error_t je;
	struct fwd_err e = {0};
	struct fwd_doc *d;

	(void)state;
	assert_non_null(b);
	b[len++] = '[';
	for (size_t i = 0; i < n; i++) {
		b[len++] = '0';
		b[len++] = ',';
	}
	real_at = len;
	memcpy(b + len, "1.5]", 4);
	len += 4;
	assert_null(fwd_json_loadb(b, len, JSON_REJECT_DUPLICATES, &je));
	assert_non_null(strstr(je.text, "more than 2000000 values"));
	assert_int_equal(je.line, 1);
	assert_true(je.position >= (int)real_at && je.position <= (int)real_at + 3);
	assert_int_equal(fwd_json_check(b, len, JSON_REJECT_DUPLICATES, &je), -EINVAL);
	assert_non_null(strstr(je.text, "more than 2000000 values"));
	d = fwd_doc_parse(b, len, "big.json", 1, &e);
	assert_null(d);
	assert_non_null(strstr(e.reason, "more than 2000000 values"));
	/* Under the bound: jansson's own words, as before. */
	memcpy(b + 2 * 1000 + 1, "1.5]]", 5);
	assert_null(fwd_doc_parse(b, 2 * 1000 + 6, "small.json", 1, &e));
	assert_non_null(strstr(e.reason, "JSON syntax: end of file expected"));
	assert_null(strstr(e.reason, "values"));
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_line_of),
		cmocka_unit_test(test_byte_order_mark),
		cmocka_unit_test(test_a_large_declined_text_is_not_read_slowly),
		cmocka_unit_test(test_a_nul_byte_is_refused_at_janssons_column),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
