/*
 * Name sets (common/fwd_nameset.c) and their place in the table document
 * (common/fwd_table_content.c): normalisation and its refusals, matching
 * against a brute-force reference on generated names (exact, suffixes,
 * case, trailing dots, labels at 63 and names at 253, malformed queries),
 * names files refused on a bad line with its file and number, the embedded
 * form and its hash, and fwd_embed making a document stand alone.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fwd_embed.h"
#include "fwd_hash.h"
#include "fwd_nameset.h"
#include "fwd_table.h"

static int norm(const char *in, char *out, enum fwd_ns_kind *kind, const char **why)
{
	return fwd_name_normalize(in, strlen(in), out, kind, why);
}

static void test_normalize_refusals(void **state)
{
	static const struct {
		const char *in, *why;
	} bad[] = {
		{"", "empty name"},
		{".", "empty name"},
		{"*.", "'*' only"},
		{"a..b", "empty label"},
		{".a", "empty label"},
		{"a.b..", "empty label"},
		{"ex ample.com", "a name holds"},
		{"exa\xc3\xa9mple.com", "non-ASCII"},
		{"a.*.com", "'*' only"},
		{"*", "'*' only"},
		{"**.a", "'*' only"},
		{"a/b", "a name holds"},
	};
	char out[FWD_NS_NAME_MAX + 1], big[400];
	enum fwd_ns_kind kind;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(norm(bad[i].in, out, &kind, &why), -EINVAL);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("'%s': '%s' does not say '%s'", bad[i].in, why, bad[i].why);
	}
	/* a label of 63 passes, 64 does not */
	memset(big, 'a', 63);
	strcpy(big + 63, ".com");
	assert_int_equal(norm(big, out, &kind, &why), 67);
	memset(big, 'a', 64);
	strcpy(big + 64, ".com");
	assert_int_equal(norm(big, out, &kind, &why), -EINVAL);
	assert_non_null(strstr(why, "63"));
	/* 253 bytes pass (with a trailing dot: 254), 254 do not */
	for (int i = 0; i < 253; i++)
		big[i] = i % 2 ? '.' : 'x';
	big[253] = '\0';
	assert_int_equal(norm(big, out, &kind, &why), 253);
	big[253] = '.';
	big[254] = '\0';
	assert_int_equal(norm(big, out, &kind, &why), 253);
	big[253] = 'y';
	assert_int_equal(norm(big, out, &kind, &why), -EINVAL);
	assert_non_null(strstr(why, "253"));
}

static void test_normalize_forms(void **state)
{
	char out[FWD_NS_NAME_MAX + 1];
	enum fwd_ns_kind kind;
	const char *why;

	(void)state;
	assert_int_equal(norm("Example.COM.", out, &kind, &why), 11);
	assert_string_equal(out, "example.com");
	assert_int_equal(kind, FWD_NS_EXACT);
	assert_int_equal(norm("*.xn--bcher-kva.example", out, &kind, &why), 21);
	assert_string_equal(out, "xn--bcher-kva.example");
	assert_int_equal(kind, FWD_NS_SUFFIX);
	assert_int_equal(norm("_dmarc.Example.com", out, &kind, &why), 18);
	assert_string_equal(out, "_dmarc.example.com");
}

struct hits {
	uint32_t rules[64];
	unsigned n;
	const struct fwd_nameset *s;
	char last[FWD_NS_NAME_MAX + 3];
};

static void on_hit(void *arg, uint32_t rule, uint32_t entry, enum fwd_ns_kind kind)
{
	struct hits *h = arg;
	size_t n;
	const char *e = fwd_nameset_entry(h->s, entry, &n);

	if (h->n < 64)
		h->rules[h->n] = rule;
	h->n++;
	snprintf(h->last, sizeof(h->last), "%s%.*s", kind == FWD_NS_SUFFIX ? "*." : "", (int)n, e);
}

/* The reference: every entry compared as a string with every suffix. */
struct ent {
	char name[FWD_NS_NAME_MAX + 1];
	enum fwd_ns_kind kind;
	uint32_t rule;
};

static unsigned brute(const struct ent *e, unsigned n, const char *q)
{
	char name[300];
	size_t len = strlen(q);
	unsigned hits = 0;

	if (len && q[len - 1] == '.')
		len--;
	if (len == 0 || len > FWD_NS_QUERY_MAX)
		return 0;
	memcpy(name, q, len);
	name[len] = '\0';
	if (name[0] == '.' || name[len - 1] == '.' || strstr(name, ".."))
		return 0;
	for (unsigned i = 0; i < n; i++) {
		if ((e[i].kind & FWD_NS_EXACT) && strcmp(name, e[i].name) == 0)
			hits++;
		if (e[i].kind & FWD_NS_SUFFIX)
			for (size_t k = 0; k < len; k++)
				if (name[k] == '.' && strcmp(name + k + 1, e[i].name) == 0)
					hits++;
	}
	return hits;
}

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

static void rnd_label(char *out, size_t len)
{
	static const char alpha[] = "abcdefghij-_0123";

	for (size_t i = 0; i < len; i++)
		out[i] = alpha[rnd() % (sizeof(alpha) - 1)];
	out[len] = '\0';
}

/* "lab." in front of @name (a buffer of @cap bytes), when it fits. */
static void prepend(char *name, size_t cap, const char *lab)
{
	size_t a = strlen(lab), b = strlen(name);

	if (a + 1 + b + 1 > cap)
		return;
	memmove(name + a + 1, name, b + 1);
	memcpy(name, lab, a);
	name[a] = '.';
}

static void test_match_against_brute_force(void **state)
{
	enum { N = 3000, Q = 20000 };
	struct ent *e = calloc(N, sizeof(*e));
	struct fwd_nameset *s = fwd_nameset_create(N, 0);
	unsigned n = 0;
	static const char *const tld[] = {"com", "in", "example", "b"};

	(void)state;
	assert_non_null(s);
	while (n < N) {
		char lab[70], name[FWD_NS_NAME_MAX + 1];
		unsigned nl = 1 + rnd() % 3;
		int dup = 0;

		snprintf(name, sizeof(name), "%s", tld[rnd() % 4]);
		for (unsigned k = 0; k < nl; k++) {
			rnd_label(lab, 1 + rnd() % 3);
			prepend(name, sizeof(name), lab);
		}
		e[n].kind = rnd() % 2 ? FWD_NS_EXACT : FWD_NS_SUFFIX;
		e[n].rule = rnd() % 5;
		snprintf(e[n].name, sizeof(e[n].name), "%s", name);
		for (unsigned k = 0; k < n; k++)
			if (e[k].rule == e[n].rule && strcmp(e[k].name, name) == 0) {
				e[k].kind |= e[n].kind; /* the set merges them too */
				dup = 1;
			}
		assert_int_equal(fwd_nameset_add(s, name, strlen(name), e[n].kind, e[n].rule), 0);
		if (!dup)
			n++;
	}
	assert_int_equal(fwd_nameset_count(s), n);
	unsigned matched = 0;
	/* the queries also go through the staged steps, 32 at a time, as a
	 * worker's burst: every step over all 32 before the next */
	enum { B = 32 };
	char(*qs)[300] = calloc(B, 300);
	struct hits *want_h = calloc(B, sizeof(*want_h));
	struct fwd_ns_query *sq = calloc(B, sizeof(*sq));

	assert_non_null(qs);
	assert_non_null(want_h);
	assert_non_null(sq);
	for (unsigned q = 0; q < Q; q++) {
		char *name = qs[q % B], lab[70];
		struct hits *hp = &want_h[q % B], h;

		*hp = (struct hits){.s = s};

		if (rnd() % 2) { /* a set member, maybe with labels in front */
			const struct ent *b = &e[rnd() % n];

			snprintf(name, 300, "%s", b->name);
			for (unsigned k = rnd() % 3; k > 0; k--) {
				rnd_label(lab, 1 + rnd() % 2);
				prepend(name, 300, lab);
			}
		} else {
			snprintf(name, 300, "%s", tld[rnd() % 4]);
			for (unsigned k = 1 + rnd() % 3; k > 0; k--) {
				rnd_label(lab, 1 + rnd() % 3);
				prepend(name, 300, lab);
			}
		}
		switch (rnd() % 8) { /* trailing dots, empty labels */
		case 0:
			strcat(name, ".");
			break;
		case 1:
			strcat(name, "..");
			break;
		case 2: {
			char tmp[300];

			snprintf(tmp, sizeof(tmp), ".%s", name);
			memcpy(name, tmp, 300);
			break;
		}
		default:
			break;
		}
		unsigned want = brute(e, n, name);

		fwd_nameset_match(s, name, strlen(name), on_hit, hp);
		if (hp->n != want)
			fail_msg("'%s': %u hits, reference %u", name, hp->n, want);
		matched += want > 0;
		if (q % B != B - 1)
			continue;
		for (unsigned k = 0; k < B; k++)
			fwd_nameset_prepare(s, &sq[k], qs[k], strlen(qs[k]));
		for (unsigned k = 0; k < B; k++)
			fwd_nameset_probe(s, &sq[k]);
		for (unsigned k = 0; k < B; k++) {
			h = (struct hits){.s = s};
			assert_int_equal(fwd_nameset_finish(s, &sq[k], on_hit, &h), want_h[k].n);
			if (h.n != want_h[k].n ||
			    memcmp(h.rules, want_h[k].rules,
				   (h.n < 64 ? h.n : 64) * sizeof(h.rules[0])) != 0 ||
			    strcmp(h.last, want_h[k].last) != 0)
				fail_msg("'%s': staged %u hits (last %s), whole %u (last %s)",
					 qs[k], h.n, h.last, want_h[k].n, want_h[k].last);
		}
	}
	/* neither side is trivially empty */
	assert_true(matched > Q / 4 && matched < Q);
	fwd_nameset_free(s);
	free(e);
	free(qs);
	free(want_h);
	free(sq);
}

/* Names that need more than a staged query holds: more suffixes to probe
 * than FWD_NS_QPROBES, more entries with one name than FWD_NS_QCANDS.
 * finish() looks them up whole: every hit, longest first, all the rules. */
static void test_staged_overflow(void **state)
{
	struct fwd_nameset *s = fwd_nameset_create(64, 0);
	char name[300] = "a1", q[300];
	struct fwd_ns_query sq;
	struct hits h = {.s = s};

	(void)state;
	assert_non_null(s);
	/* *.a1, *.a2.a1, ... *.a12...a1: twelve suffix entries of 1..12 labels */
	for (int k = 2; k <= 13; k++) {
		char lab[8];

		assert_int_equal(fwd_nameset_add(s, name, strlen(name), FWD_NS_SUFFIX, 0), 0);
		snprintf(lab, sizeof(lab), "a%d", k);
		prepend(name, sizeof(name), lab);
	}
	/* one name in ten rules */
	for (uint32_t r = 0; r < 10; r++)
		assert_int_equal(fwd_nameset_add(s, "x.example", 9, FWD_NS_EXACT, r), 0);
	assert_true(12 > FWD_NS_QPROBES && 10 > FWD_NS_QCANDS);
	snprintf(q, sizeof(q), "q.%s", name); /* 14 labels: under all twelve */
	fwd_nameset_prepare(s, &sq, q, strlen(q));
	fwd_nameset_probe(s, &sq);
	assert_int_equal(fwd_nameset_finish(s, &sq, on_hit, &h), 12);
	assert_int_equal(h.n, 12);
	assert_string_equal(h.last, "*.a1"); /* longest first: the shortest last */
	assert_int_equal(fwd_nameset_match(s, q, strlen(q), on_hit, &h), 12);
	h = (struct hits){.s = s};
	fwd_nameset_prepare(s, &sq, "x.example.", 10);
	fwd_nameset_probe(s, &sq);
	assert_int_equal(fwd_nameset_finish(s, &sq, on_hit, &h), 10);
	for (uint32_t r = 0; r < 10; r++) /* every rule, each once */
		for (uint32_t k = 0; k < 10; k++)
			if (h.rules[k] == r)
				break;
			else
				assert_true(k < 9);
	/* finish without a probe first, and a name that matches nothing */
	h = (struct hits){.s = s};
	fwd_nameset_prepare(s, &sq, "b.a2.a1", 7);
	assert_int_equal(fwd_nameset_finish(s, &sq, on_hit, &h), 2);
	fwd_nameset_prepare(s, &sq, "a1.example", 10);
	fwd_nameset_probe(s, &sq);
	assert_int_equal(fwd_nameset_finish(s, &sq, on_hit, &h), 0);
	fwd_nameset_free(s);
}

static void test_exact_suffix_and_limits(void **state)
{
	struct fwd_nameset *s = fwd_nameset_create(10, 0);
	char l63[64], n253[254], q[300];
	struct hits h = {.s = s};

	(void)state;
	memset(l63, 'a', 63);
	l63[63] = '\0';
	for (int i = 0; i < 253; i++)
		n253[i] = i % 2 ? '.' : 'z';
	n253[253] = '\0';
	assert_int_equal(fwd_nameset_add(s, "example.com", 11, FWD_NS_EXACT, 0), 0);
	assert_int_equal(fwd_nameset_add(s, "example.com", 11, FWD_NS_SUFFIX, 1), 0);
	assert_int_equal(fwd_nameset_add(s, l63, 63, FWD_NS_SUFFIX, 2), 0);
	assert_int_equal(fwd_nameset_add(s, n253, 253, FWD_NS_EXACT, 3), 0);
	assert_int_equal(fwd_nameset_add(s, "x", 0, FWD_NS_EXACT, 3), -EINVAL);
	assert_int_equal(fwd_nameset_add(s, "x", 254, FWD_NS_EXACT, 3), -EINVAL);
	assert_int_equal(fwd_nameset_add(s, "a..b", 4, FWD_NS_EXACT, 3), -EINVAL);
	/* exact: only the name; suffix: only names under it */
	assert_int_equal(fwd_nameset_match(s, "example.com", 11, on_hit, &h), 1);
	assert_int_equal(h.rules[0], 0);
	assert_string_equal(h.last, "example.com");
	h.n = 0;
	assert_int_equal(fwd_nameset_match(s, "a.example.com.", 14, on_hit, &h), 1);
	assert_int_equal(h.rules[0], 1);
	assert_string_equal(h.last, "*.example.com");
	assert_int_equal(fwd_nameset_match(s, "xexample.com", 12, on_hit, &h), 0);
	assert_int_equal(fwd_nameset_match(s, "example.com.evil", 16, on_hit, &h), 0);
	assert_int_equal(fwd_nameset_match(s, "example.co", 10, on_hit, &h), 0);
	snprintf(q, sizeof(q), "b.%s", l63);
	assert_int_equal(fwd_nameset_match(s, q, strlen(q), on_hit, &h), 1);
	assert_int_equal(fwd_nameset_match(s, l63, 63, on_hit, &h), 0);
	assert_int_equal(fwd_nameset_match(s, n253, 253, on_hit, &h), 1);
	snprintf(q, sizeof(q), "%s.", n253);
	assert_int_equal(fwd_nameset_match(s, q, 254, on_hit, &h), 1);
	snprintf(q, sizeof(q), "a.%s", n253); /* 255 bytes, 128 labels: no entry that long */
	assert_int_equal(fwd_nameset_match(s, q, strlen(q), on_hit, &h), 0);
	/* Names of 254 and 255 bytes under a suffix entry: a packet may carry
	 * them and a server serves them, so they match (they were passed over:
	 * "*.evil.example" evaded with 254 bytes, a probe); 256 is past what an
	 * extractor yields. Also at 128 labels, one more than an entry has. */
	assert_int_equal(fwd_nameset_add(s, "evil.example", 12, FWD_NS_SUFFIX, 5), 0);
	assert_int_equal(fwd_nameset_add(s, "z", 1, FWD_NS_SUFFIX, 6), 0);
	for (size_t len = 250; len <= 256; len++) {
		struct fwd_ns_query sq;

		memset(q, 'a', len - 13);
		memcpy(q + len - 13, ".evil.example", 13);
		for (size_t k = 63; k < len - 13; k += 64)
			q[k] = '.';
		h.n = 0;
		assert_int_equal(fwd_nameset_match(s, q, len, on_hit, &h), len <= 255);
		if (len <= 255) {
			assert_int_equal(h.rules[0], 5);
			assert_string_equal(h.last, "*.evil.example");
		}
		fwd_nameset_prepare(s, &sq, q, len); /* the worker's staged steps */
		fwd_nameset_probe(s, &sq);
		assert_int_equal(fwd_nameset_finish(s, &sq, on_hit, &h), len <= 255);
		/* 127 and 128 labels, every one a letter, under "*.z" */
		for (size_t k = 0; k < len; k++)
			q[k] = k % 2 ? '.' : (k + 1 == len ? 'z' : 'y');
		if (len % 2) {
			h.n = 0;
			assert_int_equal(fwd_nameset_match(s, q, len, on_hit, &h), len <= 255);
			fwd_nameset_prepare(s, &sq, q, len);
			fwd_nameset_probe(s, &sq);
			assert_int_equal(fwd_nameset_finish(s, &sq, on_hit, &h), len <= 255);
		}
	}
	assert_int_equal(fwd_nameset_match(s, "", 0, on_hit, &h), 0);
	assert_int_equal(fwd_nameset_match(s, ".", 1, on_hit, &h), 0);
	/* past the entries it was created for */
	for (int i = 0; i < 4; i++) {
		char n[8];

		snprintf(n, sizeof(n), "n%d", i);
		assert_int_equal(fwd_nameset_add(s, n, strlen(n), FWD_NS_EXACT, 4), 0);
	}
	assert_int_equal(fwd_nameset_add(s, "full", 4, FWD_NS_EXACT, 4), -ENOSPC);
	/* the same name for the same rule is one entry, both kinds */
	assert_int_equal(fwd_nameset_add(s, "n0", 2, FWD_NS_SUFFIX, 4), 0);
	assert_int_equal(fwd_nameset_count(s), 10);
	h.n = 0;
	assert_int_equal(fwd_nameset_match(s, "n0", 2, on_hit, &h), 1);
	assert_int_equal(fwd_nameset_match(s, "q.n0", 4, on_hit, &h), 1);
	fwd_nameset_free(s);
}

/* The batched insert: the same set as one at a time, the first bad name's
 * index reported with the names before it in. */
static void test_add_many(void **state)
{
	enum { N = 1000 };
	struct fwd_ns_add *v = calloc(N, sizeof(*v));
	char(*names)[32] = calloc(N, 32);
	struct fwd_nameset *s = fwd_nameset_create(N, 0);
	struct hits h = {.s = s};
	uint32_t bad = 0;

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(names[i], 32, "n%d.z%d.example", i, i % 7);
		v[i] = (struct fwd_ns_add){names[i], (uint32_t)strlen(names[i]), (uint32_t)(i % 3),
					   i % 2 ? FWD_NS_SUFFIX : FWD_NS_EXACT};
	}
	v[700].len = 0;
	assert_int_equal(fwd_nameset_add_many(s, v, N, &bad), -EINVAL);
	assert_int_equal(bad, 700);
	assert_int_equal(fwd_nameset_count(s), 700);
	assert_int_equal(fwd_nameset_match(s, "n10.z3.example", 14, on_hit, &h), 1);
	assert_int_equal(h.rules[0], 1);
	assert_int_equal(fwd_nameset_match(s, "a.n11.z4.example", 16, on_hit, &h), 1);
	assert_int_equal(fwd_nameset_match(s, "n11.z4.example", 14, on_hit, &h), 0);
	assert_int_equal(fwd_nameset_match(s, "n702.z2.example", 15, on_hit, &h),
			 0); /* after the bad one */
	fwd_nameset_free(s);
	free(v);
	free(names);
}

/* ---- the document ---------------------------------------------------------------- */

#define HEAD                                                                                       \
	"services: {https: [tcp/443], dns: [udp/53]}\n"                                            \
	"links: {l1: {port: p0, next_hop_mac: '02:00:00:00:00:01'}}\n"                             \
	"default: {action: steer, to: l1}\n"                                                       \
	"content_rules:\n"

static void expect_refused(const char *doc, const char *file, uint32_t line, const char *path,
			   const char *words)
{
	struct fwd_err err = {0};
	struct fwd_table *t = fwd_table_parse(doc, strlen(doc), "c.yaml", 0, &err);
	char b[768];

	if (t)
		fail_msg("accepted: %s", doc);
	fwd_err_str(&err, b, sizeof(b));
	if (strstr(b, words) == NULL || (path && strcmp(err.path, path)) ||
	    (file && strcmp(err.file, file)) || (line && err.line != line))
		fail_msg("'%s' (file %s line %u path %s): expected %s:%u %s '%s'", b, err.file,
			 err.line, err.path, file ? file : "-", line, path ? path : "-", words);
}

static void test_document_inline(void **state)
{
	struct fwd_err err = {0};
	const char *doc = HEAD "  - {name: a, field: tls_sni, names: [Example.com, '*.b.example.', "
			       "c.in], services: [https], action: drop}\n";
	struct fwd_table *t = fwd_table_parse(doc, strlen(doc), "c.yaml", 0, &err);

	(void)state;
	assert_non_null(t);
	assert_null(t->content[0].pattern);
	assert_int_equal(t->content[0].nnames, 3);
	assert_memory_equal(t->content[0].names, "example.com\0*.b.example\0c.in\0", 29);
	fwd_table_free(t);
	expect_refused(HEAD "  - {name: a, field: tls_sni, names: [ok.com, 'bad..com'], services: "
			    "[https], action: drop}\n",
		       "c.yaml", 5, "content_rules[0].names[1]", "empty label");
	expect_refused(HEAD "  - {name: a, field: tls_sni, names: [a.com], pattern: x, services: "
			    "[https], action: drop}\n",
		       NULL, 5, "content_rules[0].pattern", "not both");
	expect_refused(HEAD "  - {name: a, field: tls_sni, services: [https], action: drop}\n",
		       NULL, 5, "content_rules[0].pattern", "names_file");
	expect_refused(HEAD "  - {name: a, field: payload, names: [a.com], services: [https], "
			    "action: drop}\n",
		       NULL, 5, "content_rules[0].field", "not payload");
	expect_refused(HEAD "  - {name: a, field: dns_qname, names: [a.com], caseless: true, "
			    "services: [dns], action: count}\n",
		       NULL, 5, "content_rules[0].caseless", "for patterns");
	expect_refused(HEAD "  - {name: a, field: dns_qname, names: [], services: [dns], action: "
			    "count}\n",
		       NULL, 5, "content_rules[0].names", "empty list");
	/* a document sent as text cannot name a file on the receiver's disk */
	expect_refused(HEAD "  - {name: a, field: dns_qname, names_file: /etc/passwd, services: "
			    "[dns], action: count}\n",
		       NULL, 5, "content_rules[0].names_file", "regionctl apply FILE");
}

static void test_document_embedded(void **state)
{
	const char *text = "# blocklist\n\nA.example.com\n  *.b.example  # the zone\n";
	char doc[1024], bad[1024];
	struct fwd_err err = {0};
	struct fwd_table *t;

	(void)state;
	snprintf(doc, sizeof(doc),
		 HEAD "  - name: a\n    field: dns_qname\n    services: [dns]\n    action: count\n"
		      "    names: [c.in]\n"
		      "    names_file: {path: list.txt, hash: '%016llx', text: \"%s\"}\n",
		 (unsigned long long)fwd_hash64(text, strlen(text)),
		 "# blocklist\\n\\nA.example.com\\n  *.b.example  # the zone\\n");
	t = fwd_table_parse(doc, strlen(doc), "c.yaml", 0, &err);
	if (t == NULL) {
		char b[512];

		fail_msg("%s", fwd_err_str(&err, b, sizeof(b)));
	}
	assert_int_equal(t->content[0].nnames, 3);
	assert_memory_equal(t->content[0].names, "c.in\0a.example.com\0*.b.example\0", 31);
	assert_int_equal(t->content[0].names_hash, fwd_hash64(text, strlen(text)));
	fwd_table_free(t);
	/* the text altered after its hash was taken */
	snprintf(bad, sizeof(bad), "%s", doc);
	*strstr(bad, "A.example") = 'B';
	expect_refused(bad, NULL, 0, "content_rules[0].names_file.hash", "altered");
	/* a bad line: the file and the line named */
	snprintf(doc, sizeof(doc),
		 HEAD "  - name: a\n    field: dns_qname\n    services: [dns]\n    action: count\n"
		      "    names_file: {path: list.txt, hash: '%016llx', text: \"%s\"}\n",
		 (unsigned long long)fwd_hash64("ok.com\n\n# c\nb\xc3\xa4.com\n",
						strlen("ok.com\n\n# c\nb\xc3\xa4.com\n")),
		 "ok.com\\n\\n# c\\nb\xc3\xa4.com\\n");
	expect_refused(doc, "c.yaml", 9, "content_rules[0].names_file",
		       "'list.txt' line 4 is not a name (7 bytes, not shown)");
}

static void test_document_file(void **state)
{
	char dir[] = "/tmp/test_nameset.XXXXXX", p[256];
	struct fwd_err err = {0};
	struct fwd_table *t;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/t.yaml", dir);
	f = fopen(p, "w");
	fprintf(f, HEAD "  - {name: a, field: tls_sni, names_file: names.txt, services: [https], "
			"action: drop}\n");
	fclose(f);
	snprintf(p, sizeof(p), "%s/names.txt", dir);
	f = fopen(p, "w");
	fprintf(f, "one.example\n*.two.example\r\n\n# comment\nthree..example\n");
	fclose(f);
	assert_int_equal(chmod(p, 0644), 0); /* readable by others, whatever the umask */
	snprintf(p, sizeof(p), "%s/t.yaml", dir);
	t = fwd_table_load(p, &err);
	assert_null(t);
	/* the document and the rule's line, then the file as written and its line */
	assert_string_equal(err.file, p);
	assert_int_equal(err.line, 5);
	assert_string_equal(err.reason,
			    "'names.txt' line 5 is not a name (14 bytes, not shown): empty label");
	snprintf(p, sizeof(p), "%s/names.txt", dir);
	f = fopen(p, "w");
	fprintf(f, "one.example\n*.two.example\r\n\n# comment\n");
	fclose(f);
	snprintf(p, sizeof(p), "%s/t.yaml", dir);
	t = fwd_table_load(p, &err);
	assert_non_null(t);
	assert_int_equal(t->content[0].nnames, 2);
	fwd_table_free(t);
	snprintf(p, sizeof(p), "%s/names.txt", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/t.yaml", dir);
	assert_null(fwd_table_load(p, &err)); /* the file gone: refused, not an empty set */
	unlink(p);
	rmdir(dir);
}

/* fwd_embed: a document naming a file comes back standing alone (and
 * validates to the same names); one naming none comes back untouched; a
 * file with a NUL or missing is refused naming it. */
static void test_embed(void **state)
{
	char dir[] = "/tmp/test_embed.XXXXXX", p[256], d[300], *out = NULL, b[768];
	const char *doc =
		HEAD "  - {name: a, field: dns_qname, names_file: n.txt, services: [dns], "
		     "action: count}\n";
	struct fwd_err err = {0};
	struct fwd_table *t;
	size_t len = 0;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(d, sizeof(d), "%s/", dir);
	snprintf(p, sizeof(p), "%s/n.txt", dir);
	f = fopen(p, "w");
	fputs("# zones\nexample.com\n*.Example.org.\n", f);
	fclose(f);
	assert_int_equal(chmod(p, 0644), 0); /* readable by others, whatever the umask */
	assert_int_equal(fwd_embed_names(doc, strlen(doc), "t.yaml", d, NULL, &out, &len, &err), 0);
	assert_non_null(out);
	assert_non_null(strstr(out, "\"text\":\"# zones\\nexample.com"));
	t = fwd_table_parse(out, len, "t.yaml", -1, &err);
	assert_non_null(t);
	assert_int_equal(t->content[0].nnames, 2);
	assert_memory_equal(t->content[0].names, "example.com\0*.example.org\0", 26);
	fwd_table_free(t);
	free(out);
	/* nothing to embed: no copy */
	out = (char *)1;
	assert_int_equal(fwd_embed_names(HEAD, strlen(HEAD), "t.yaml", d, NULL, &out, &len, &err),
			 0);
	assert_null(out);
	/* a NUL on line 2 */
	f = fopen(p, "w");
	fwrite("a.com\nb\0.com\n", 1, 13, f);
	fclose(f);
	assert_int_equal(fwd_embed_names(doc, strlen(doc), "t.yaml", d, NULL, &out, &len, &err),
			 -EINVAL);
	assert_null(out);
	assert_string_equal(
		fwd_err_str(&err, b, sizeof(b)),
		"t.yaml:5: content_rules[0].names_file: 'n.txt' line 2: a NUL byte in a "
		"names file");
	unlink(p);
	/* missing: the document and line first, as every refusal */
	assert_int_equal(fwd_embed_names(doc, strlen(doc), "t.yaml", d, NULL, &out, &len, &err),
			 -EINVAL);
	assert_string_equal(fwd_err_str(&err, b, sizeof(b)),
			    "t.yaml:5: content_rules[0].names_file: 'n.txt': cannot open: No such "
			    "file or directory");
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize_refusals),
		cmocka_unit_test(test_normalize_forms),
		cmocka_unit_test(test_match_against_brute_force),
		cmocka_unit_test(test_staged_overflow),
		cmocka_unit_test(test_exact_suffix_and_limits),
		cmocka_unit_test(test_add_many),
		cmocka_unit_test(test_document_inline),
		cmocka_unit_test(test_document_embedded),
		cmocka_unit_test(test_document_file),
		cmocka_unit_test(test_embed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
