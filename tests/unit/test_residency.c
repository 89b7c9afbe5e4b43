/*
 * Residency guard tests (common/fwd_residency.c): tables that would carry a
 * region's protected services on a link without an allowed tag are refused,
 * naming the rule and the policy; precedence is honoured (the check sees the
 * policy that really applies), groups and mirrors included.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fwd_delta.h"
#include "fwd_residency.h"

#define HEAD                                                                                       \
	"regions: {in: {prefixes: [10.0.0.0/8]}, sg: {prefixes: [11.0.0.0/8]}}\n"                  \
	"services: {sync: [tcp/7000], web: [tcp/443]}\n"                                           \
	"links:\n"                                                                                 \
	"  local: {port: p0, next_hop_mac: '02:00:00:00:00:01', tags: [in]}\n"                     \
	"  local2: {port: p0, next_hop_mac: '02:00:00:00:00:03', tags: [in, dr]}\n"                \
	"  to-sg: {port: p1, next_hop_mac: '02:00:00:00:00:02', tags: [sg]}\n"                     \
	"link_groups:\n"                                                                           \
	"  both: {members: {local: 1, to-sg: 1}}\n"                                                \
	"  india: {members: {local: 1, local2: 1}}\n"                                              \
	"  drained: {members: {local: 1, to-sg: 0}}\n"                                             \
	"residency:\n"                                                                             \
	"  - {name: keep-sync, region: in, services: [sync], allowed_tags: [in]}\n"

static int check(const char *doc, char *msg, size_t len)
{
	struct fwd_err err = {0};
	struct fwd_table *t = fwd_table_parse(doc, strlen(doc), "r.yaml", 0, &err);
	struct fwd_class *c;
	int rc;

	if (t == NULL) {
		fwd_err_str(&err, msg, len);
		return -EINVAL;
	}
	c = fwd_class_build(t);
	rc = fwd_residency_check(t, c, &err);
	msg[0] = '\0';
	if (rc)
		fwd_err_str(&err, msg, len);
	fwd_class_free(c);
	fwd_table_free(t);
	return rc;
}

static void test_allowed(void **state)
{
	char msg[512];

	(void)state;
	assert_int_equal(check(HEAD "policies:\n"
				    "  - {region: in, service: sync, action: steer, to: local}\n"
				    "  - {region: in, service: web, action: steer, to: to-sg}\n"
				    "  - {region: any, service: sync, action: steer, to: to-sg}\n",
			       msg, sizeof(msg)),
			 0);
	/* A group of allowed links, a drained foreign member, a drop: all fine. */
	assert_int_equal(
		check(HEAD "policies:\n  - {region: in, service: sync, action: steer, to: india}\n",
		      msg, sizeof(msg)),
		0);
	assert_int_equal(
		check(HEAD
		      "policies:\n  - {region: in, service: sync, action: steer, to: drained}\n",
		      msg, sizeof(msg)),
		0);
	assert_int_equal(check(HEAD "policies:\n  - {region: in, service: any, action: drop}\n",
			       msg, sizeof(msg)),
			 0);
}

static void test_refused(void **state)
{
	char msg[512];

	(void)state;
	assert_int_equal(
		check(HEAD "policies:\n  - {region: in, service: sync, action: steer, to: to-sg}\n",
		      msg, sizeof(msg)),
		-EPERM);
	assert_string_equal(
		msg, "r.yaml:14: policies[0]: breaks residency rule 'keep-sync': region 'in' "
		     "service 'sync' steers to link 'to-sg' (tags: sg; allowed: in)");
	/* Precedence: (in, any) applies to sync when no (in, sync) policy exists. */
	assert_int_equal(check(HEAD "policies:\n"
				    "  - {region: any, service: sync, action: steer, to: local}\n"
				    "  - {region: in, service: any, action: steer, to: to-sg}\n",
			       msg, sizeof(msg)),
			 -EPERM);
	assert_string_equal(
		msg, "r.yaml:15: policies[1]: breaks residency rule 'keep-sync': region 'in' "
		     "service 'sync' steers to link 'to-sg' (tags: sg; allowed: in)");
	/* The default applies when nothing else does. */
	assert_int_equal(check(HEAD "default: {action: steer, to: to-sg}\n", msg, sizeof(msg)),
			 -EPERM);
	assert_string_equal(msg,
			    "r.yaml:13: default: breaks residency rule 'keep-sync': region 'in' "
			    "service 'sync' steers to link 'to-sg' (tags: sg; allowed: in)");
	/* A group that could fail over out of region. */
	assert_int_equal(
		check(HEAD "policies:\n  - {region: in, service: sync, action: steer, to: both}\n",
		      msg, sizeof(msg)),
		-EPERM);
	assert_string_equal(
		msg,
		"r.yaml:14: policies[0]: breaks residency rule 'keep-sync': region 'in' "
		"service 'sync' steers to group 'both' with link 'to-sg' (tags: sg; allowed: in)");
	/* A copy is data leaving too. */
	assert_int_equal(check(HEAD "policies:\n  - {region: in, service: sync, action: steer, to: "
				    "local, mirror: to-sg}\n",
			       msg, sizeof(msg)),
			 -EPERM);
	assert_string_equal(
		msg, "r.yaml:14: policies[0]: breaks residency rule 'keep-sync': region 'in' "
		     "service 'sync' mirrors to link 'to-sg' (tags: sg; allowed: in)");
	/* 'unknown' cannot be protected: a prefix added to any region takes
	 * sources from it, nested in nothing (a red team's find). */
	assert_int_equal(check(HEAD "  - {name: k2, region: unknown, services: [sync], "
				    "allowed_tags: [in]}\n",
			       msg, sizeof(msg)),
			 -EINVAL);
	assert_string_equal(msg,
			    "r.yaml:13: residency[1].region: a residency rule cannot protect "
			    "'unknown': its sources are the addresses no region holds, and a "
			    "prefix added to any region takes some of them out of the rule; "
			    "give them a region of their own (prefixes 0.0.0.0/0 and ::/0) and "
			    "protect that");
}

static void test_any_services(void **state)
{
	char msg[512];
	const char *doc =
		"regions: {in: {prefixes: [10.0.0.0/8]}}\n"
		"services: {web: [tcp/443]}\n"
		"links: {x: {port: p0, next_hop_mac: '02:00:00:00:00:01', tags: [us]}}\n"
		"policies: [{region: in, service: web, action: drop}]\n"
		"default: {action: steer, to: x}\n"
		"residency: [{name: all-in, region: in, services: [any], allowed_tags: [in]}]\n";

	(void)state;
	/* web is dropped, but 'other' traffic of region in takes the default. */
	assert_int_equal(check(doc, msg, sizeof(msg)), -EPERM);
	assert_string_equal(msg, "r.yaml:5: default: breaks residency rule 'all-in': region 'in' "
				 "service 'other' steers to link 'x' (tags: us; allowed: in)");
}

/* A decision carried over by link name (a later fragment's, across a swap):
 * the link the cell's policy uses is fine, as is any link every rule
 * protecting the service allows; anything else is not. */
static void test_link_may_carry(void **state)
{
	const char *doc =
		HEAD "  - {name: keep-web, region: sg, services: [web], allowed_tags: [sg]}\n"
		     "policies:\n"
		     "  - {region: in, service: sync, action: steer, to: india}\n"
		     "  - {region: in, service: web, action: steer, to: to-sg}\n"
		     "  - {region: sg, service: any, action: steer, to: to-sg}\n";
	struct fwd_err err = {0};
	struct fwd_table *t = fwd_table_parse(doc, strlen(doc), "r.yaml", 0, &err);
	struct fwd_class *c;
	int in, sg, unk = 0, sync, web, other = 0, local, local2, tosg;

	(void)state;
	assert_non_null(t);
	c = fwd_class_build(t);
	assert_int_equal(fwd_residency_check(t, c, &err), 0);
	in = fwd_table_region_id(t, "in");
	sg = fwd_table_region_id(t, "sg");
	sync = fwd_table_service_id(t, "sync");
	web = fwd_table_service_id(t, "web");
	local = fwd_table_link_id(t, "local");
	local2 = fwd_table_link_id(t, "local2");
	tosg = fwd_table_link_id(t, "to-sg");
	/* in/sync: its group's members, never to-sg */
	assert_true(fwd_residency_link_may_carry(t, c, in, sync, local));
	assert_true(fwd_residency_link_may_carry(t, c, in, sync, local2));
	assert_false(fwd_residency_link_may_carry(t, c, in, sync, tosg));
	/* in/web: its policy's link; local is not tagged sg, which keep-web
	 * (another region's rule: a prefix may nest) asks of web */
	assert_true(fwd_residency_link_may_carry(t, c, in, web, tosg));
	assert_false(fwd_residency_link_may_carry(t, c, in, web, local));
	/* sg/sync: its policy's link, or one keep-sync allows; sg/web: keep-web
	 * asks sg of web, which local lacks */
	assert_true(fwd_residency_link_may_carry(t, c, sg, sync, tosg));
	assert_true(fwd_residency_link_may_carry(t, c, sg, sync, local2));
	assert_false(fwd_residency_link_may_carry(t, c, sg, web, local));
	/* a service no rule protects may leave on any link */
	assert_true(fwd_residency_link_may_carry(t, c, unk, other, tosg));
	assert_true(fwd_residency_link_may_carry(t, c, in, other, tosg));
	/* ids out of range are never allowed */
	assert_false(fwd_residency_link_may_carry(t, c, in, sync, (uint16_t)t->nlinks));
	fwd_class_free(c);
	fwd_table_free(t);
}

/* A later fragment's service is unknown (its key may be another datagram's):
 * it may leave only where every rule holding its region allows, the rules of
 * each protected region it lies nested in too, also once a delta nests it. */
static void test_frag_may_carry(void **state)
{
	const char *doc =
		"regions:\n"
		"  in: {prefixes: [10.0.0.0/8]}\n"
		"  mid: {prefixes: [10.1.0.0/16]}\n"
		"  sg: {prefixes: [11.0.0.0/8]}\n"
		"  far: {prefixes: [12.0.0.0/8, '2001:db8::/32']}\n"
		"services: {sync: [udp/7000], web: [udp/80]}\n"
		"links:\n"
		"  local: {port: p0, next_hop_mac: '02:00:00:00:00:01', tags: [in]}\n"
		"  local2: {port: p0, next_hop_mac: '02:00:00:00:00:03', tags: [in, dr]}\n"
		"  to-sg: {port: p1, next_hop_mac: '02:00:00:00:00:02', tags: [sg]}\n"
		"policies:\n"
		"  - {region: any, service: sync, action: steer, to: local}\n"
		"  - {region: any, service: web, action: steer, to: to-sg}\n"
		"residency:\n"
		"  - {name: keep-sync, region: in, services: [sync], allowed_tags: [in]}\n";
	struct fwd_err err = {0};
	struct fwd_table *t = fwd_table_parse(doc, strlen(doc), "r.yaml", 0, &err), *nt = NULL;
	struct fwd_delta d = {0};
	struct fwd_class *c;
	int in, mid, sg, far, local, local2, tosg;

	(void)state;
	assert_non_null(t);
	c = fwd_class_build(t);
	assert_int_equal(fwd_residency_check(t, c, &err), 0);
	in = fwd_table_region_id(t, "in");
	mid = fwd_table_region_id(t, "mid");
	sg = fwd_table_region_id(t, "sg");
	far = fwd_table_region_id(t, "far");
	local = fwd_table_link_id(t, "local");
	local2 = fwd_table_link_id(t, "local2");
	tosg = fwd_table_link_id(t, "to-sg");
	/* Not filled: every rule holds every region. */
	assert_false(fwd_residency_frag_may_carry(t, sg, tosg));
	assert_int_equal(fwd_residency_rows_fill(t), 0);
	/* in's own rule: whatever the first fragment's service (web goes to
	 * to-sg), the rest only on links tagged in */
	assert_true(fwd_residency_frag_may_carry(t, in, local));
	assert_true(fwd_residency_frag_may_carry(t, in, local2));
	assert_false(fwd_residency_frag_may_carry(t, in, tosg));
	/* mid lies inside in's 10.0.0.0/8: in's rule holds it */
	assert_false(fwd_residency_frag_may_carry(t, mid, tosg));
	assert_true(fwd_residency_frag_may_carry(t, mid, local));
	/* sg, far and sources of no region: no rule holds them */
	assert_true(fwd_residency_frag_may_carry(t, sg, tosg));
	assert_true(fwd_residency_frag_may_carry(t, far, tosg));
	assert_true(fwd_residency_frag_may_carry(t, 0, tosg));
	assert_false(fwd_residency_frag_may_carry(t, in, (uint16_t)t->nlinks));
	/* A delta nests far in in (10.2.0.0/16): the new table holds far to
	 * keep-sync, the old one is unchanged. */
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, (uint16_t)far, "10.2.0.0/16",
					    "changes[0]", &err),
			 0);
	assert_int_equal(fwd_delta_apply(t, &d, &nt, NULL, NULL, &err), 0);
	assert_false(fwd_residency_frag_may_carry(nt, far, tosg));
	assert_true(fwd_residency_frag_may_carry(nt, far, local));
	assert_true(fwd_residency_frag_may_carry(nt, sg, tosg));
	assert_true(fwd_residency_frag_may_carry(t, far, tosg));
	/* And a delta that takes it out again lets it go, as the same table
	 * built whole does (a review: the rows once only grew, so a table held
	 * a region or not by its history). So does moving mid out of in. */
	{
		struct fwd_table *nt2 = NULL;
		struct fwd_delta d2 = {0};

		assert_int_equal(fwd_delta_add_text(&d2, FWD_DELTA_REMOVE, (uint16_t)far,
						    "10.2.0.0/16", "changes[0]", &err),
				 0);
		assert_int_equal(fwd_delta_add_text(&d2, FWD_DELTA_REMOVE, (uint16_t)mid,
						    "10.1.0.0/16", "changes[1]", &err),
				 0);
		assert_int_equal(fwd_delta_add_text(&d2, FWD_DELTA_ADD, (uint16_t)mid, "13.0.0.0/8",
						    "changes[2]", &err),
				 0);
		assert_int_equal(fwd_delta_apply(nt, &d2, &nt2, NULL, NULL, &err), 0);
		assert_true(fwd_residency_frag_may_carry(nt2, far, tosg));
		assert_true(fwd_residency_frag_may_carry(nt2, mid, tosg));
		assert_false(fwd_residency_frag_may_carry(nt2, in, tosg));
		fwd_table_free(nt2);
		fwd_delta_clear(&d2);
	}
	fwd_table_free(nt);
	nt = NULL;
	fwd_delta_clear(&d);
	/* A protected prefix added over another region's (in takes
	 * 2001:db8::/31, over far's 2001:db8::/32): far is held. */
	memset(&d, 0, sizeof(d));
	assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, (uint16_t)in, "2001:db8::/31",
					    "changes[0]", &err),
			 0);
	assert_int_equal(fwd_delta_apply(t, &d, &nt, NULL, NULL, &err), 0);
	assert_false(fwd_residency_frag_may_carry(nt, far, tosg));
	assert_true(fwd_residency_frag_may_carry(nt, sg, tosg));
	fwd_table_free(nt);
	fwd_delta_clear(&d);
	fwd_class_free(c);
	fwd_table_free(t);
}

/* fwd_residency_pair_ok() against fwd_residency_check_pair() on random
 * tables: links with random tags, groups with drained members, rules on
 * some services or all, policies by region or service or both, mirrors,
 * and content rules scoped to regions that mirror: the same verdict for
 * every pair of regions, and both verdicts seen. */
static uint32_t rs = 2463534242u;

static uint32_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 17;
	rs ^= rs << 5;
	return rs;
}

static void test_pair_verdicts_in_bulk(void **state)
{
	static char doc[16384];
	static const char *const tags[] = {"a", "b", "c"};
	unsigned tables = 0, ok_seen = 0, breaks_seen = 0;

	(void)state;
	for (int round = 0; round < 3000 && tables < 400; round++) {
		size_t n = 0;
		struct fwd_err err = {0};
		struct fwd_table *t;
		struct fwd_class *c;
		struct fwd_res_pairs *p;

#define OUT(...) (n += (size_t)snprintf(doc + n, sizeof(doc) - n, __VA_ARGS__))
		OUT("regions:\n");
		for (int r = 0; r < 6; r++)
			OUT("  r%d: {prefixes: [%d.0.0.0/8]}\n", r, 10 + r);
		OUT("services:\n");
		for (int k = 0; k < 5; k++)
			OUT("  s%d: [tcp/%d]\n", k, 7000 + k);
		OUT("links:\n");
		for (int l = 0; l < 5; l++) {
			OUT("  l%d: {port: p0, next_hop_mac: '02:00:00:00:00:%02x', tags: [", l,
			    l + 1);
			for (int g = 0, first = 1; g < 3; g++)
				if (rnd() % 2) {
					OUT("%s%s", first ? "" : ", ", tags[g]);
					first = 0;
				}
			OUT("]}\n");
		}
		OUT("link_groups:\n");
		for (int g = 0; g < 2; g++)
			OUT("  g%d: {members: {l%u: %u, l%u: %u}}\n", g, rnd() % 5, 1 + rnd() % 2,
			    5 - 1 - g, rnd() % 2);
		OUT("residency:\n");
		for (int i = 0, nr = 1 + (int)(rnd() % 4); i < nr; i++) {
			OUT("  - {name: k%d, region: r%u, services: [", i, rnd() % 3);
			if (rnd() % 4 == 0)
				OUT("any");
			else
				for (int k = 0, first = 1; k < 5; k++)
					if (rnd() % 2 || (first && k == 4)) {
						OUT("%ss%d", first ? "" : ", ", k);
						first = 0;
					}
			OUT("], allowed_tags: [%s]}\n", tags[rnd() % 3]);
		}
		OUT("policies:\n");
		for (int i = 0, np = 2 + (int)(rnd() % 8); i < np; i++) {
			unsigned r = rnd() % 7, k = rnd() % 6, what = rnd() % 5;
			char rn[8] = "any", sn[8] = "any";

			if (r < 6)
				snprintf(rn, sizeof(rn), "r%u", r);
			if (k < 5)
				snprintf(sn, sizeof(sn), "s%u", k);
			OUT("  - {region: %s, service: %s", rn, sn);
			OUT(", action: ");
			if (what == 0)
				OUT("drop");
			else
				OUT("steer, to: %s%u", what == 1 ? "g" : "l",
				    what == 1 ? rnd() % 2 : rnd() % 5);
			if (what && rnd() % 3 == 0)
				OUT(", mirror: l%u", rnd() % 5);
			OUT("}\n");
		}
		if (rnd() % 2) {
			OUT("content_rules:\n");
			for (int i = 0, nc = 1 + (int)(rnd() % 3); i < nc; i++)
				OUT("  - {name: c%d, field: tls_sni, unreadable: true, services: "
				    "[s%u], "
				    "regions: [r%u], action: mirror, to: l%u}\n",
				    i, rnd() % 5, 3 + rnd() % 3, rnd() % 5);
		}
#undef OUT
		assert_true(n < sizeof(doc));
		t = fwd_table_parse(doc, n, "r.yaml", 0, &err);
		if (t == NULL)
			continue; /* a content rule against its own region's rule, a duplicate */
		tables++;
		c = fwd_class_build(t);
		p = fwd_residency_pairs_create(t, c);
		assert_non_null(c);
		assert_non_null(p);
		for (uint16_t inner = 0; inner < t->nregions; inner++)
			for (uint16_t outer = 0; outer < t->nregions; outer++) {
				int want = fwd_residency_check_pair(t, c, inner, outer, "", "", 0,
								    "", NULL) == 0;
				int got = fwd_residency_pair_ok(p, inner, outer);

				if (got != want)
					fail_msg("pair (%u in %u): %d, check_pair %d\n%s", inner,
						 outer, got, want, doc);
				/* memoised: the same again */
				assert_int_equal(fwd_residency_pair_ok(p, inner, outer), want);
				ok_seen +=
					want && inner != outer && fwd_residency_protects(t, outer);
				breaks_seen += !want;
			}
		fwd_residency_pairs_free(p);
		fwd_class_free(c);
		fwd_table_free(t);
	}
	assert_true(tables >= 400);
	assert_true(ok_seen > 500 && breaks_seen > 500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed),	       cmocka_unit_test(test_refused),
		cmocka_unit_test(test_any_services),   cmocka_unit_test(test_link_may_carry),
		cmocka_unit_test(test_frag_may_carry), cmocka_unit_test(test_pair_verdicts_in_bulk),
	};

	return cmocka_run_group_tests_name("residency", tests, NULL, NULL);
}
