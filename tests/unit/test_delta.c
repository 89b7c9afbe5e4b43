/*
 * Prefix deltas (common/fwd_delta.c): every refusal names the change and
 * the prefix and changes nothing; the table a chain of random deltas makes
 * has exactly the prefixes of a document validated whole with the same
 * content; residency holds for nested prefixes a delta makes, as for a
 * whole document; packing round-trips and refuses malformed records.
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

#include "fwd_delta.h"
#include "fwd_residency.h"

#define LINKS                                                                                      \
	"links:\n"                                                                                 \
	"  local: {port: p0, next_hop_mac: '02:00:00:00:00:01', tags: [in]}\n"                     \
	"  to-sg: {port: p1, next_hop_mac: '02:00:00:00:00:02', tags: [sg]}\n"

static struct fwd_table *parse(const char *doc)
{
	struct fwd_err e = {0};
	struct fwd_table *t = fwd_table_parse(doc, strlen(doc), "t.yaml", 0, &e);
	char buf[512];

	if (t == NULL)
		fail_msg("%s", fwd_err_str(&e, buf, sizeof(buf)));
	return t;
}

static const char *BASE =
	"regions:\n"
	"  in: {prefixes: [10.0.0.0/8, 2001:db8::/32]}\n"
	"  sg: {prefixes: [11.0.0.0/8, 11.1.0.0/16]}\n"
	"  br: {prefixes: [12.0.0.0/8]}\n" LINKS "default: {action: steer, to: local}\n";

static int add(struct fwd_delta *d, int kind, const struct fwd_table *t, const char *region,
	       const char *prefix)
{
	struct fwd_err e;
	char path[48];

	snprintf(path, sizeof(path), "changes[%u]", d->n);
	return fwd_delta_add_text(d, kind, (uint16_t)fwd_table_region_id(t, region), prefix, path,
				  &e);
}

/* Apply @d to @t, expecting a refusal whose text holds @want and path @path. */
static void refused(const struct fwd_table *t, const struct fwd_delta *d, enum fwd_reason code,
		    const char *path, const char *want)
{
	struct fwd_table *nt = NULL;
	struct fwd_err e = {0};

	assert_int_not_equal(fwd_delta_apply(t, d, &nt, NULL, NULL, &e), 0);
	assert_null(nt);
	assert_int_equal(e.reason_code, code);
	assert_string_equal(e.path, path);
	if (strstr(e.reason, want) == NULL)
		fail_msg("'%s' not in '%s'", want, e.reason);
}

static void test_refusals(void **state)
{
	struct fwd_table *t = parse(BASE);
	struct fwd_delta d = {0};
	struct fwd_err e;

	(void)state;
	/* Held by another region. */
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "in", "12.1.0.0/16"), 0);
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "in", "11.1.0.0/16"), 0);
	refused(t, &d, FWD_R_INVALID_DELTA, "changes[1]",
		"prefix 11.1.0.0/16 is held by region 'sg', not 'in'");
	fwd_delta_clear(&d);
	/* Removing one that is absent, or another region's. */
	assert_int_equal(add(&d, FWD_DELTA_REMOVE, t, "in", "10.9.0.0/16"), 0);
	refused(t, &d, FWD_R_INVALID_DELTA, "changes[0]",
		"prefix 10.9.0.0/16 is not in region 'in'");
	fwd_delta_clear(&d);
	assert_int_equal(add(&d, FWD_DELTA_REMOVE, t, "in", "12.0.0.0/8"), 0);
	refused(t, &d, FWD_R_INVALID_DELTA, "changes[0]", "not in region 'in' but in 'br'");
	fwd_delta_clear(&d);
	/* Twice in one change, other than a move. */
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "in", "10.1.0.0/16"), 0);
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "br", "13.0.0.0/8"), 0);
	assert_int_equal(add(&d, FWD_DELTA_REMOVE, t, "in", "10.1.0.0/16"), 0);
	refused(t, &d, FWD_R_INVALID_DELTA, "changes[2]",
		"prefix 10.1.0.0/16 is named twice in this change (also changes[0])");
	fwd_delta_clear(&d);
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "in", "12.0.0.0/8"), 0);
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "sg", "12.0.0.0/8"), 0);
	refused(t, &d, FWD_R_INVALID_DELTA, "changes[1]",
		"prefix 12.0.0.0/8 is named twice in this change (also changes[0])");
	fwd_delta_clear(&d);
	/* A move is a removal and an add of one prefix, in either order. */
	{
		struct fwd_table *nt = NULL;
		struct fwd_delta eff;
		struct fwd_delta_stats st;

		assert_int_equal(add(&d, FWD_DELTA_ADD, t, "in", "12.0.0.0/8"), 0);
		assert_int_equal(add(&d, FWD_DELTA_REMOVE, t, "br", "12.0.0.0/8"), 0);
		assert_int_equal(fwd_delta_apply(t, &d, &nt, &eff, &st, &e), 0);
		assert_non_null(nt);
		assert_int_equal(st.added4, 1);
		assert_int_equal(st.removed4, 1);
		assert_int_equal(st.unchanged, 0);
		assert_int_equal(eff.n, 2);
		assert_int_equal(eff.ops[0].kind, FWD_DELTA_REMOVE); /* removal first */
		assert_int_equal(nt->nprefix4, t->nprefix4);
		assert_int_equal(nt->prefix4[3].addr, 12u << 24);
		assert_string_equal(nt->region_names[nt->prefix4[3].region], "in");
		fwd_table_free(nt);
		fwd_delta_clear(&eff);
		fwd_delta_clear(&d);
	}
	/* Unknown region id. */
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, 9, "10.1.0.0/16", "changes[0]", &e),
			 0);
	refused(t, &d, FWD_R_INVALID_DELTA, "changes[0]", "region id 9");
	fwd_delta_clear(&d);
	/* Malformed prefixes, refused at parse with the path. */
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, 1, "10.1.0.1/16", "x[3]", &e),
			 -EINVAL);
	assert_string_equal(e.path, "x[3]");
	assert_non_null(strstr(e.reason, "did you mean 10.1.0.0/16?"));
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, 1, "10.1.0.0/33", "x", &e), -EINVAL);
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, 1, "10.1.0/16", "x", &e), -EINVAL);
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, 1, "zz::/16", "x", &e), -EINVAL);
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, 1, "10.0.0.0", "x", &e), -EINVAL);
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, 1, "10.0.0.0/", "x", &e), -EINVAL);
	/* What a document refuses (fwd_prefix.h): a length with a leading zero,
	 * an IPv4-mapped IPv6 prefix. ::fffe:0:0/95 holds the mapped block
	 * and more: a real IPv6 prefix, taken. */
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, 1, "10.1.0.0/016", "x", &e),
			 -EINVAL);
	assert_non_null(strstr(e.reason, "leading zero"));
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, 1, "::ffff:10.1.0.0/112", "x", &e),
			 -EINVAL);
	assert_non_null(strstr(e.reason, "write 10.1.0.0/16"));
	assert_int_equal(d.n, 0);
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, 1, "::fffe:0:0/95", "x", &e), 0);
	assert_int_equal(d.n, 1);
	fwd_delta_clear(&d);
	fwd_delta_clear(&d);
	fwd_table_free(t);
}

static void test_noop_and_effective(void **state)
{
	struct fwd_table *t = parse(BASE), *nt;
	struct fwd_delta d = {0}, eff;
	struct fwd_delta_stats st;
	struct fwd_err e;

	(void)state;
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "in", "10.0.0.0/8"), 0);
	assert_int_equal(fwd_delta_apply(t, &d, &nt, &eff, &st, &e), 0);
	assert_null(nt);
	assert_int_equal(eff.n, 0);
	assert_int_equal(st.unchanged, 1);
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "br", "2001:db9::/32"), 0);
	assert_int_equal(add(&d, FWD_DELTA_REMOVE, t, "sg", "11.1.0.0/16"), 0);
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "in", "9.0.0.0/8"), 0);
	assert_int_equal(fwd_delta_apply(t, &d, &nt, &eff, &st, &e), 0);
	assert_non_null(nt);
	assert_int_equal(eff.n, 3);
	assert_int_equal(st.added4, 1);
	assert_int_equal(st.added6, 1);
	assert_int_equal(st.removed4, 1);
	assert_int_equal(st.unchanged, 1);
	/* Effective changes are sorted: IPv4 by address, then IPv6. */
	assert_int_equal(eff.ops[0].addr[0], 9);
	assert_int_equal(eff.ops[1].addr[0], 11);
	assert_int_equal(eff.ops[2].family, 6);
	assert_int_equal(nt->nprefix4, 4);
	assert_int_equal(nt->nprefix6, 2);
	assert_int_equal(t->nprefix4, 4); /* the base is untouched */
	/* Packing round-trips; the chain hash depends on base and changes. */
	size_t len;
	uint8_t *p = fwd_delta_pack(&eff, &len);
	struct fwd_delta back;

	assert_int_equal(len, 3 * 24);
	assert_int_equal(fwd_delta_unpack(p, len, &back, &e), 0);
	assert_int_equal(back.n, 3);
	assert_memory_equal(back.ops[2].addr, eff.ops[2].addr, 16);
	assert_int_equal(back.ops[1].kind, FWD_DELTA_REMOVE);
	assert_true(fwd_delta_hash(1, p, len) != fwd_delta_hash(2, p, len));
	assert_true(fwd_delta_hash(1, p, len) != fwd_delta_hash(1, p, len - 24));
	/* Malformed records. */
	fwd_delta_clear(&back);
	assert_int_equal(fwd_delta_unpack(p, len - 1, &back, &e), -EINVAL);
	p[1] = 5;
	assert_int_equal(fwd_delta_unpack(p, len, &back, &e), -EINVAL);
	p[1] = 4;
	p[8 + 3] = 1; /* host bits of 9.0.0.0/8 */
	assert_int_equal(fwd_delta_unpack(p, len, &back, &e), -EINVAL);
	/* An IPv4-mapped IPv6 prefix, refused as the text path refuses it
	 * (a control-socket delta took one, and regionfwd then refused its
	 * own save at start). */
	{
		static const uint8_t mapped[24] = {/* add, IPv6, /104, region 1 */
						   FWD_DELTA_ADD, 6, 104, 0, 0, 1, 0, 0,
						   /* ::ffff:10.0.0.0 */
						   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0,
						   0, 0};

		memset(&e, 0, sizeof(e));
		assert_int_equal(fwd_delta_unpack(mapped, sizeof(mapped), &back, &e), -EINVAL);
		assert_int_equal(e.reason_code, FWD_R_INVALID_DELTA);
		assert_string_equal(e.path, "changes[0]");
		assert_non_null(strstr(e.reason, "'::ffff:10.0.0.0/104' is an IPv4-mapped IPv6 "
						 "prefix"));
		assert_non_null(strstr(e.reason, "write 10.0.0.0/8"));
	}
	free(p);
	fwd_delta_clear(&back);
	fwd_delta_clear(&eff);
	fwd_delta_clear(&d);
	fwd_table_free(nt);
	fwd_table_free(t);
}

/* ---- random deltas against whole documents ------------------------------------ */

#define NREG 4
#define POOL 600

struct pfx {
	char text[48];
	int region; /* 0: absent, else 1..NREG */
};

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (uint32_t)rnd_state;
}

static char *doc_of(const struct pfx *pool)
{
	size_t cap = 64 * POOL + 1024, off = 0;
	char *doc = malloc(cap);

	off += (size_t)snprintf(doc + off, cap - off, "regions:\n");
	for (int r = 1; r <= NREG; r++) {
		int first = 1;

		off += (size_t)snprintf(doc + off, cap - off, "  r%d: {prefixes: [", r);
		for (int i = 0; i < POOL; i++)
			if (pool[i].region == r) {
				off += (size_t)snprintf(doc + off, cap - off, "%s%s",
							first ? "" : ", ", pool[i].text);
				first = 0;
			}
		off += (size_t)snprintf(doc + off, cap - off, "]}\n");
	}
	snprintf(doc + off, cap - off, LINKS "default: {action: steer, to: local}\n");
	return doc;
}

static void same_prefixes(const struct fwd_table *a, const struct fwd_table *b)
{
	assert_int_equal(a->nprefix4, b->nprefix4);
	assert_int_equal(a->nprefix6, b->nprefix6);
	for (uint32_t i = 0; i < a->nprefix4; i++) {
		assert_int_equal(a->prefix4[i].addr, b->prefix4[i].addr);
		assert_int_equal(a->prefix4[i].len, b->prefix4[i].len);
		assert_string_equal(a->region_names[a->prefix4[i].region],
				    b->region_names[b->prefix4[i].region]);
	}
	for (uint32_t i = 0; i < a->nprefix6; i++) {
		assert_memory_equal(a->prefix6[i].addr, b->prefix6[i].addr, 16);
		assert_int_equal(a->prefix6[i].len, b->prefix6[i].len);
		assert_string_equal(a->region_names[a->prefix6[i].region],
				    b->region_names[b->prefix6[i].region]);
	}
}

static void test_random_chains(void **state)
{
	static struct pfx pool[POOL];
	struct fwd_table *t;
	char *doc;

	(void)state;
	/* A pool of nested and disjoint prefixes of both families. */
	for (int i = 0; i < POOL; i++) {
		unsigned len = 8 + rnd() % 25;

		if (i % 3 == 2)
			snprintf(pool[i].text, sizeof(pool[i].text), "2001:db8:%x::/48",
				 rnd() % 4096);
		else
			snprintf(pool[i].text, sizeof(pool[i].text), "%u.%u.0.0/%u", 10 + rnd() % 4,
				 rnd() % 4 * 64, len < 16 ? 16 : len);
		/* Normalize host bits (the /16+ of a.b.0.0 have none; dedupe). */
		for (int j = 0; j < i; j++)
			if (strcmp(pool[j].text, pool[i].text) == 0) {
				snprintf(pool[i].text, sizeof(pool[i].text), "2001:db9:%x::/48", i);
				break;
			}
		pool[i].region = rnd() % 2 ? 1 + (int)(rnd() % NREG) : 0;
	}
	doc = doc_of(pool);
	t = parse(doc);
	free(doc);
	for (int round = 0; round < 60; round++) {
		struct fwd_delta d = {0}, eff = {0};
		struct fwd_table *nt, *whole;
		struct fwd_err e;
		static char used[POOL];
		int n = 1 + (int)(rnd() % 40);

		memset(used, 0, sizeof(used));
		for (int k = 0; k < n; k++) {
			int i = (int)(rnd() % POOL);
			char name[8];

			if (used[i])
				continue;
			used[i] = 1;
			if (pool[i].region && rnd() % 4 == 0) {
				/* a move: out of one region, into another */
				snprintf(name, sizeof(name), "r%d", pool[i].region);
				assert_int_equal(add(&d, FWD_DELTA_REMOVE, t, name, pool[i].text),
						 0);
				pool[i].region = 1 + pool[i].region % NREG;
				snprintf(name, sizeof(name), "r%d", pool[i].region);
				assert_int_equal(add(&d, FWD_DELTA_ADD, t, name, pool[i].text), 0);
			} else if (pool[i].region && rnd() % 2) {
				snprintf(name, sizeof(name), "r%d", pool[i].region);
				assert_int_equal(add(&d, FWD_DELTA_REMOVE, t, name, pool[i].text),
						 0);
				pool[i].region = 0;
			} else if (pool[i].region) {
				/* re-add where it is: a no-op */
				snprintf(name, sizeof(name), "r%d", pool[i].region);
				assert_int_equal(add(&d, FWD_DELTA_ADD, t, name, pool[i].text), 0);
			} else {
				pool[i].region = 1 + (int)(rnd() % NREG);
				snprintf(name, sizeof(name), "r%d", pool[i].region);
				assert_int_equal(add(&d, FWD_DELTA_ADD, t, name, pool[i].text), 0);
			}
		}
		if (fwd_delta_apply(t, &d, &nt, &eff, NULL, &e)) {
			char buf[512];

			fail_msg("round %d: %s", round, fwd_err_str(&e, buf, sizeof(buf)));
		}
		/* The effective changes come sorted whatever the request's order:
		 * IPv4 first, by address, then length, a move's removal first. */
		for (uint32_t k = 1; k < eff.n; k++) {
			const struct fwd_delta_op *x = &eff.ops[k - 1], *y = &eff.ops[k];
			int c = x->family != y->family ? x->family - y->family
						       : memcmp(x->addr, y->addr, 16);

			if (c == 0 && x->len != y->len)
				c = x->len - y->len;
			else if (c == 0) /* a move: one removal, then one add */
				c = x->kind == FWD_DELTA_REMOVE && y->kind == FWD_DELTA_ADD ? -1
											    : 1;
			assert_true(c < 0);
		}
		fwd_delta_clear(&eff);
		doc = doc_of(pool);
		whole = parse(doc);
		free(doc);
		if (nt) {
			fwd_table_free(t);
			t = nt;
		}
		same_prefixes(t, whole);
		fwd_table_free(whole);
		fwd_delta_clear(&d);
	}
	fwd_table_free(t);
}

/* ---- residency of nested prefixes -------------------------------------------------- */

#define RES_DOC(policies)                                                                          \
	"regions:\n"                                                                               \
	"  in: {prefixes: [10.0.0.0/8]}\n"                                                         \
	"  sg: {prefixes: [11.0.0.0/8]}\n"                                                         \
	"services: {sync: [tcp/7000]}\n" LINKS "policies:\n"                                       \
	"  - {region: in, service: any, action: steer, to: local}\n" policies                      \
	"default: {action: steer, to: to-sg}\n"                                                    \
	"residency:\n"                                                                             \
	"  - {name: keep-sync, region: in, services: [sync], allowed_tags: [in]}\n"

static void test_nested_residency(void **state)
{
	struct fwd_table *t = parse(RES_DOC("")), *nt = NULL;
	struct fwd_delta d = {0};
	struct fwd_err e = {0};
	struct fwd_class *c;

	(void)state;
	/* sg's traffic leaves on to-sg: a sg prefix inside in's 10/8 would
	 * take India's protected sync traffic out of region. */
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "sg", "10.1.0.0/16"), 0);
	refused(t, &d, FWD_R_RESIDENCY_VIOLATION, "changes[0]",
		"prefix 10.1.0.0/16 of region 'sg' lies inside 10.0.0.0/8 of region 'in'");
	fwd_delta_clear(&d);
	/* The same content as a whole document is refused alike. */
	{
		const char *doc = "regions:\n"
				  "  in: {prefixes: [10.0.0.0/8]}\n"
				  "  sg: {prefixes: [11.0.0.0/8, 10.1.0.0/16]}\n"
				  "services: {sync: [tcp/7000]}\n" LINKS "policies:\n"
				  "  - {region: in, service: any, action: steer, to: local}\n"
				  "default: {action: steer, to: to-sg}\n"
				  "residency:\n"
				  "  - {name: keep-sync, region: in, services: [sync], "
				  "allowed_tags: [in]}\n";
		struct fwd_table *w = parse(doc);

		c = fwd_class_build(w);
		assert_int_equal(fwd_residency_check(w, c, &e), -EPERM);
		assert_int_equal(e.reason_code, FWD_R_RESIDENCY_VIOLATION);
		assert_non_null(
			strstr(e.reason, "10.1.0.0/16 of region 'sg' lies inside 10.0.0.0/8"));
		assert_string_equal(e.path, "regions.sg.prefixes");
		fwd_class_free(c);
		fwd_table_free(w);
	}
	/* A covering prefix added to the protected region: the sg prefix
	 * already there becomes nested. */
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "in", "10.0.0.0/7"), 0);
	refused(t, &d, FWD_R_RESIDENCY_VIOLATION, "changes[0]",
		"prefix 11.0.0.0/8 of region 'sg' lies inside 10.0.0.0/7 of region 'in'");
	fwd_delta_clear(&d);
	fwd_table_free(t);
	/* When sg's sync stays on India's link, nesting is allowed. */
	t = parse(RES_DOC("  - {region: sg, service: sync, action: steer, to: local}\n"));
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "sg", "10.1.0.0/16"), 0);
	assert_int_equal(fwd_delta_apply(t, &d, &nt, NULL, NULL, &e), 0);
	assert_non_null(nt);
	fwd_table_free(nt);
	fwd_delta_clear(&d);
	fwd_table_free(t);
	/* A region in between does not lift in's rules: br's 10.1.2/24 lies in
	 * sg's 10.1/16 (which keeps to them) and in in's 10/8 as well. A whole
	 * document with that chain is refused, naming in's prefix, ... */
#define CHAIN_DOC(br_policy)                                                                       \
	"regions:\n"                                                                               \
	"  in: {prefixes: [10.0.0.0/8]}\n"                                                         \
	"  sg: {prefixes: [10.1.0.0/16]}\n"                                                        \
	"  br: {prefixes: [10.1.2.0/24]}\n"                                                        \
	"services: {sync: [tcp/7000]}\n" LINKS "policies:\n"                                       \
	"  - {region: in, service: any, action: steer, to: local}\n"                               \
	"  - {region: sg, service: any, action: steer, to: local}\n" br_policy                     \
	"default: {action: steer, to: to-sg}\n"                                                    \
	"residency:\n"                                                                             \
	"  - {name: keep-sync, region: in, services: [sync], allowed_tags: [in]}\n"
	t = parse(CHAIN_DOC(""));
	c = fwd_class_build(t);
	memset(&e, 0, sizeof(e));
	assert_int_equal(fwd_residency_check(t, c, &e), -EPERM);
	assert_int_equal(e.reason_code, FWD_R_RESIDENCY_VIOLATION);
	assert_non_null(strstr(e.reason, "10.1.2.0/24 of region 'br' lies inside 10.0.0.0/8 of "
					 "region 'in'"));
	assert_string_equal(e.path, "regions.br.prefixes");
	assert_int_equal(e.line, 4);
	fwd_class_free(c);
	/* ... and so is the delta that makes it, though its nearest cover is
	 * sg's and sg is not protected. */
	assert_int_equal(add(&d, FWD_DELTA_REMOVE, t, "br", "10.1.2.0/24"), 0);
	assert_int_equal(fwd_delta_apply(t, &d, &nt, NULL, NULL, &e), 0);
	fwd_delta_clear(&d);
	assert_int_equal(add(&d, FWD_DELTA_ADD, nt, "br", "10.1.2.0/24"), 0);
	refused(nt, &d, FWD_R_RESIDENCY_VIOLATION, "changes[0]",
		"prefix 10.1.2.0/24 of region 'br' lies inside 10.0.0.0/8 of region 'in'");
	fwd_delta_clear(&d);
	fwd_table_free(nt);
	nt = NULL;
	fwd_table_free(t);
	/* When br keeps sync local the chain is allowed, and removing the
	 * prefix in between nests nothing new: it is not refused. */
	t = parse(CHAIN_DOC("  - {region: br, service: sync, action: steer, to: local}\n"));
	c = fwd_class_build(t);
	assert_int_equal(fwd_residency_check(t, c, &e), 0);
	fwd_class_free(c);
	assert_int_equal(add(&d, FWD_DELTA_REMOVE, t, "sg", "10.1.0.0/16"), 0);
	assert_int_equal(fwd_delta_apply(t, &d, &nt, NULL, NULL, &e), 0);
	fwd_delta_clear(&d);
	/* A protected prefix added over the chain checks every prefix inside
	 * it, not only the top of its range: 10.1.2/24 (br's own policy
	 * steers its other services out) lies under sg's 10.1/16 as well. */
	fwd_table_free(nt);
	nt = NULL;
	fwd_table_free(t);
	t = parse("regions:\n"
		  "  in: {prefixes: [11.0.0.0/8]}\n"
		  "  sg: {prefixes: [10.1.0.0/16]}\n"
		  "  br: {prefixes: [10.1.2.0/24]}\n"
		  "services: {sync: [tcp/7000]}\n" LINKS "policies:\n"
		  "  - {region: in, service: any, action: steer, to: local}\n"
		  "  - {region: sg, service: any, action: steer, to: local}\n"
		  "default: {action: steer, to: to-sg}\n"
		  "residency:\n"
		  "  - {name: keep-sync, region: in, services: [sync], allowed_tags: [in]}\n");
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "in", "10.0.0.0/8"), 0);
	refused(t, &d, FWD_R_RESIDENCY_VIOLATION, "changes[0]",
		"prefix 10.1.2.0/24 of region 'br' lies inside 10.0.0.0/8 of region 'in'");
	fwd_delta_clear(&d);
	fwd_table_free(t);
}

/* A content rule scoped to a region nested in a protected one acts on the
 * protected region's users too: its mirror or steer must keep to the rule,
 * as the region's policies must. It was checked only against the regions it
 * names, so a rule of 'partner' (10.1/16 inside India's 10/8) could mirror
 * India's sync traffic to Singapore. */
#define CONTENT_DOC(partner_prefixes, rule)                                                        \
	"regions:\n"                                                                               \
	"  in: {prefixes: [10.0.0.0/8, 2001:db8::/32]}\n"                                          \
	"  partner: {prefixes: [" partner_prefixes "]}\n"                                          \
	"services: {sync: [tcp/7000], dnsu: [udp/53], web: [tcp/443]}\n" LINKS                     \
	"link_groups: {both: {members: {local: 1, to-sg: 1}}}\n"                                   \
	"policies:\n"                                                                              \
	"  - {region: in, service: any, action: steer, to: local}\n"                               \
	"  - {region: partner, service: any, action: steer, to: local}\n"                          \
	"default: {action: steer, to: to-sg}\n"                                                    \
	"residency:\n"                                                                             \
	"  - {name: keep, region: in, services: [sync, dnsu], allowed_tags: [in]}\n"               \
	"content_rules:\n"                                                                         \
	"  - " rule "\n"

static int whole_check(const char *doc, struct fwd_err *e)
{
	struct fwd_table *t = parse(doc);
	struct fwd_class *c = fwd_class_build(t);
	int rc;

	memset(e, 0, sizeof(*e));
	rc = fwd_residency_check(t, c, e);
	fwd_class_free(c);
	fwd_table_free(t);
	return rc;
}

static void test_nested_content_rules(void **state)
{
	struct fwd_table *t;
	struct fwd_delta d = {0};
	struct fwd_err e;

	(void)state;
	/* A mirror, IPv4 and IPv6. */
	assert_int_equal(whole_check(CONTENT_DOC("10.1.0.0/16", "{name: leak, field: payload, "
								"pattern: abc, services: [sync], "
								"regions: [partner], action: "
								"mirror, to: to-sg}"),
				     &e),
			 -EPERM);
	assert_int_equal(e.reason_code, FWD_R_RESIDENCY_VIOLATION);
	assert_string_equal(e.path, "regions.partner.prefixes");
	assert_int_equal(e.line, 3);
	assert_string_equal(
		e.reason, "prefix 10.1.0.0/16 of region 'partner' lies inside 10.0.0.0/8 of region "
			  "'in' and would take its protected traffic out: residency rule 'keep' "
			  "allows service 'sync' only on links tagged in, but content rule 'leak' "
			  "of region 'partner' mirrors to link 'to-sg' (tags: sg)");
	assert_int_equal(whole_check(CONTENT_DOC("2001:db8:1::/48", "{name: leak, field: payload, "
								    "pattern: abc, services: "
								    "[sync], regions: [partner], "
								    "action: mirror, to: to-sg}"),
				     &e),
			 -EPERM);
	assert_non_null(strstr(e.reason, "prefix 2001:db8:1::/48 of region 'partner' lies inside "
					 "2001:db8::/32 of region 'in'"));
	/* A steer of a UDP service to a group with a foreign member. */
	assert_int_equal(
		whole_check(CONTENT_DOC("10.1.0.0/16", "{name: s, field: dns_qname, "
						       "pattern: x, services: [dnsu], "
						       "regions: [partner], action: steer, "
						       "to: both}"),
			    &e),
		-EPERM);
	assert_non_null(strstr(e.reason, "but content rule 's' of region 'partner' steers to "
					 "group 'both' with link 'to-sg' (tags: sg)"));
	/* Kept to the rule's links, or on a service the rule does not protect,
	 * or with nothing nested: allowed. */
	assert_int_equal(whole_check(CONTENT_DOC("10.1.0.0/16", "{name: ok, field: payload, "
								"pattern: abc, services: [sync], "
								"regions: [partner], action: "
								"mirror, to: local}"),
				     &e),
			 0);
	assert_int_equal(whole_check(CONTENT_DOC("10.1.0.0/16", "{name: ok, field: payload, "
								"pattern: abc, services: [web], "
								"regions: [partner], action: "
								"mirror, to: to-sg}"),
				     &e),
			 0);
	assert_int_equal(
		whole_check(CONTENT_DOC("12.0.0.0/8", "{name: ok, field: payload, "
						      "pattern: abc, services: [sync], "
						      "regions: [partner], action: mirror, "
						      "to: to-sg}"),
			    &e),
		0);
	/* The delta that nests the partner's prefix is refused alike (the
	 * BGP feed and regionctl prefixes add go this way). */
	t = parse(CONTENT_DOC("12.0.0.0/8", "{name: leak, field: payload, pattern: abc, services: "
					    "[sync], regions: [partner], action: mirror, to: "
					    "to-sg}"));
	assert_int_equal(add(&d, FWD_DELTA_ADD, t, "partner", "10.1.0.0/16"), 0);
	refused(t, &d, FWD_R_RESIDENCY_VIOLATION, "changes[0]",
		"but content rule 'leak' of region 'partner' mirrors to link 'to-sg'");
	fwd_delta_clear(&d);
	fwd_table_free(t);
	/* The rule scoped to the protected region itself: refused as the
	 * document is parsed, as a residency violation (it said invalid_table). */
	{
		const char *doc = CONTENT_DOC("12.0.0.0/8", "{name: direct, field: payload, "
							    "pattern: abc, services: [sync], "
							    "regions: [in], action: mirror, to: "
							    "to-sg}");
		struct fwd_err pe = {0};

		assert_null(fwd_table_parse(doc, strlen(doc), "t.yaml", 0, &pe));
		assert_int_equal(pe.reason_code, FWD_R_RESIDENCY_VIOLATION);
		assert_string_equal(pe.path, "content_rules[0]");
		assert_string_equal(pe.reason, "breaks residency rule 'keep': mirrors region 'in' "
					       "traffic to link 'to-sg' (tags: sg), but the rule "
					       "allows service 'sync' only on links tagged in");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_noop_and_effective),
		cmocka_unit_test(test_random_chains),
		cmocka_unit_test(test_nested_residency),
		cmocka_unit_test(test_nested_content_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
