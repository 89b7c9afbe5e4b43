/*
 * The API model (control/ctl_model.c) is what a PATCH turns back into a
 * document: every section must survive model -> document -> model, or a
 * PATCH of one policy would silently drop the XDP filters or the content
 * rules. Regression test: both sections were once missing from the model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctl_model.h"
#include "fwd_class.h"
#include "ctl_state.h"
#include "ctl_rib.h"
#include "ctl_traffic.h"
#include "fwd_delta.h"

static const char doc[] =
	"regions: {india: {prefixes: [103.21.0.0/16, '2401:4900::/32']}, brazil: {prefixes: "
	"[18.228.0.0/15]}}\n"
	"services: {https: [tcp/443, udp/443], dns: [udp/53], sync: [tcp/7000-7010]}\n"
	"links:\n"
	"  local: {port: p0, next_hop_mac: '02:00:00:00:01:01', tags: [in]}\n"
	"  ids: {port: p1, next_hop_mac: '02:00:00:00:01:02', vlan: 7, tags: [in]}\n"
	"  to-br: {port: p1, next_hop_mac: '02:00:00:00:01:03', state: down}\n"
	"link_groups: {g: {members: {local: 3, ids: 0}}}\n"
	"policies:\n"
	"  - {region: india, service: any, action: steer, to: local, mirror: ids}\n"
	"  - {region: brazil, service: sync, action: steer, to: g}\n"
	"default: {action: drop}\n"
	"residency: [{name: r, region: india, services: [sync], allowed_tags: [in]}]\n"
	"filters:\n"
	"  default: drop\n"
	"  redirect: af_xdp\n"
	"  non_ip: drop\n"
	"  malformed: drop\n"
	"  rules:\n"
	"    - {name: bogons, action: drop, prefixes: [0.0.0.0/8, 'fc00::/7']}\n"
	"    - {name: telnet, action: pass, services: [tcp/23, any/2323, udp/100-200]}\n"
	"    - {name: scan, action: rate, rate_pps: 100, burst: 250, prefixes: [198.18.0.0/15]}\n"
	"content_rules:\n"
	"  - {name: a, field: tls_sni, pattern: '(^|\\.)x\\.in$', caseless: true, services: "
	"[https], regions: [brazil], action: drop}\n"
	"  - {name: b, field: dns_qname, pattern: 'a(b', literal: true, services: [dns], action: "
	"steer, to: g}\n"
	"  - {name: c, field: payload, pattern: '\\x90{4}', services: [sync, https], action: "
	"mirror, to: ids}\n"
	"  - {name: d, field: http_host, unreadable: true, services: [https], regions: [india], "
	"action: drop}\n";

static void test_round_trip_keeps_every_section(void **state)
{
	struct fwd_err e = {0};
	char b[512];
	struct fwd_table *t = fwd_table_parse(doc, strlen(doc), "m.yaml", 0, &e), *t2;
	json_t *m, *m2;
	char *d;

	(void)state;
	if (t == NULL)
		fail_msg("%s", fwd_err_str(&e, b, sizeof(b)));
	m = ctl_model(t);
	assert_non_null(json_object_get(m, "filters"));
	assert_int_equal(json_array_size(json_object_get(json_object_get(m, "filters"), "rules")),
			 3);
	assert_int_equal(json_array_size(json_object_get(m, "content_rules")), 4);
	/* a fail-closed rule says so, and carries no pattern or names */
	assert_true(json_is_true(json_object_get(
		json_array_get(json_object_get(m, "content_rules"), 3), "unreadable")));
	assert_null(
		json_object_get(json_array_get(json_object_get(m, "content_rules"), 3), "pattern"));
	d = json_dumps(m, JSON_COMPACT);
	t2 = fwd_table_parse(d, strlen(d), "model", 1, &e);
	if (t2 == NULL)
		fail_msg("%s", fwd_err_str(&e, b, sizeof(b)));
	m2 = ctl_model(t2);
	assert_true(json_equal(m, m2));
	assert_int_equal(t2->filters.nrules, 3);
	assert_int_equal(t2->filters.rules[2].burst, 250);
	assert_int_equal(t2->ncontent, 4);
	assert_true(t2->content[3].unreadable && t2->content[3].pattern == NULL &&
		    t2->content[3].names == NULL && t2->content[3].action == FWD_CA_DROP);
	assert_string_equal(t2->content[1].pattern, "a(b");
	assert_true(t2->content[1].literal && t2->content[0].caseless);
	free(d);
	json_decref(m);
	json_decref(m2);
	fwd_table_free(t);
	fwd_table_free(t2);
}

static struct fwd_table *regions_table(const char *regions)
{
	char d[1024];
	struct fwd_err e = {0};
	struct fwd_table *t;

	snprintf(d, sizeof(d),
		 "regions: {%s}\nservices: {https: [tcp/443]}\n"
		 "links: {l: {port: p0, next_hop_mac: '02:00:00:00:01:01'}}\n"
		 "default: {action: steer, to: l}\n",
		 regions);
	t = fwd_table_parse(d, strlen(d), "t", 0, &e);
	if (t == NULL)
		fail_msg("%s", e.reason);
	return t;
}

static const json_t *move_of(const json_t *moves, const char *from, const char *to)
{
	const json_t *v;
	size_t i;

	json_array_foreach(moves, i, v)
		if (!strcmp(json_string_value(json_object_get(v, "from")), from) &&
		    !strcmp(json_string_value(json_object_get(v, "to")), to))
			return v;
	return NULL;
}

static double num(const json_t *v, const char *k)
{
	return json_number_value(json_object_get(v, k));
}

/* Address space moving between regions, counted by longest covering
 * prefix on each side: moved whole, carved out of a covering prefix,
 * dropped to 'unknown', appearing from 'unknown', IPv6 too; regions that
 * keep their space count nothing. */
static void test_moves(void **state)
{
	struct fwd_table *a = regions_table("sg: {prefixes: [8.128.0.0/13, '2406:da18::/32']}, "
					    "br: {prefixes: [18.228.0.0/15, 10.0.0.0/8]}, "
					    "in: {prefixes: [103.21.0.0/16]}");
	struct fwd_table *b =
		regions_table("sg: {prefixes: ['2406:da18::/32']}, "
			      "br: {prefixes: [18.228.0.0/15, 8.128.0.0/13, 10.0.0.0/8, "
			      "'2406:da18:1::/48']}, "
			      "in: {prefixes: [103.21.0.0/16, 10.1.0.0/16, 11.0.0.0/24]}");
	json_t *m = ctl_traffic_moves(a, b, 1000);
	const json_t *v;

	(void)state;
	v = move_of(m, "sg", "br"); /* the /13 whole, and a /48 carved out of sg's /32 */
	assert_non_null(v);
	assert_int_equal(num(v, "prefixes"), 2);
	assert_true(num(v, "ipv4_addresses") == 524288.0);
	assert_true(num(v, "ipv6_addresses") == 1208925819614629174706176.0); /* 2^80 */
	v = move_of(m, "br", "in"); /* a /16 carved out of br's 10/8 */
	assert_non_null(v);
	assert_true(num(v, "ipv4_addresses") == 65536.0);
	v = move_of(m, "unknown", "in"); /* from nowhere */
	assert_non_null(v);
	assert_true(num(v, "ipv4_addresses") == 256.0);
	assert_int_equal(json_array_size(m), 3);
	json_decref(m);
	/* and back: removed prefixes go to whoever covers them, or 'unknown' */
	m = ctl_traffic_moves(b, a, 1000);
	assert_true(num(move_of(m, "in", "unknown"), "ipv4_addresses") == 256.0);
	assert_true(num(move_of(m, "in", "br"), "ipv4_addresses") == 65536.0);
	assert_true(num(move_of(m, "br", "sg"), "ipv4_addresses") == 524288.0);
	json_decref(m);
	/* past the limit: said, not counted */
	m = ctl_traffic_moves(a, b, 1);
	assert_true(json_is_true(json_object_get(json_array_get(m, 0), "truncated")));
	json_decref(m);
	fwd_table_free(a);
	fwd_table_free(b);
}

/* A table whose region 'in' is protected (sync on links tagged in), with
 * a catch-all 'cat' steering out and a region 'keep' steering in;
 * @in_pfx and @others fill the prefixes. */
static struct fwd_table *protected_table(const char *in_pfx, const char *cat_pfx,
					 const char *keep_pfx)
{
	char d[2048];
	struct fwd_err e;
	struct fwd_table *t;

	snprintf(d, sizeof(d),
		 "regions: {in: {prefixes: [%s]}, cat: {prefixes: [%s]}, keep: {prefixes: [%s]}}\n"
		 "services: {sync: [tcp/7000]}\n"
		 "links: {home: {port: p0, next_hop_mac: '02:00:00:00:01:01', tags: [in]},\n"
		 "        away: {port: p1, next_hop_mac: '02:00:00:00:01:02', tags: [sg]}}\n"
		 "policies:\n"
		 "  - {region: in, service: any, action: steer, to: home}\n"
		 "  - {region: keep, service: any, action: steer, to: home}\n"
		 "  - {region: cat, service: any, action: steer, to: away}\n"
		 "default: {action: drop}\n"
		 "residency: [{name: r, region: in, services: [sync], allowed_tags: [in]}]\n",
		 in_pfx, cat_pfx, keep_pfx);
	t = fwd_table_parse(d, strlen(d), "t", 0, &e);
	if (t == NULL)
		fail_msg("%s", e.reason);
	return t;
}

static int gives_back_10(void *arg, const struct ctl_rib_pfx *p, const char *region)
{
	(void)arg;
	return p->family == 4 && p->len == 8 && p->addr[0] == 10 && strcmp(region, "in") == 0;
}

/* Users of a protected region handed to one that takes their protected
 * traffic out (ctl_traffic_handovers): by a removal to a cover (IPv4 and
 * IPv6, across the two families of the side-by-side walk), by a move; not
 * when the cover is the region's own, when the new holder keeps to the
 * rule, when the feed gives the prefix back; and a delta's removals alike. */
static void test_residency_handovers(void **state)
{
	const char *cat = "0.0.0.0/0, '::/0'", *keep = "11.0.0.0/8";
	struct fwd_table *a =
		protected_table("10.0.0.0/8, 10.2.0.0/16, '2001:db8::/32'", cat, keep);
	struct fwd_table *b;
	json_t *h;
	const json_t *v;

	(void)state;
	/* kept as it was: nothing */
	assert_null(ctl_traffic_handovers(a, a, NULL, NULL));
	/* 10.2/16 dropped under in's own 10/8: nothing */
	b = protected_table("10.0.0.0/8, '2001:db8::/32'", cat, keep);
	assert_null(ctl_traffic_handovers(a, b, NULL, NULL));
	fwd_table_free(b);
	/* 10/8 dropped: to the catch-all; 2001:db8::/32 moved to 'keep' (home): only the first */
	b = protected_table("10.2.0.0/16", cat, "11.0.0.0/8, '2001:db8::/32'");
	h = ctl_traffic_handovers(a, b, NULL, NULL);
	assert_int_equal(json_array_size(h), 1);
	v = move_of(h, "in", "cat");
	assert_non_null(v);
	assert_int_equal(num(v, "prefixes"), 1);
	/* what 10.2/16, still in's, leaves of it */
	assert_true(num(v, "ipv4_addresses") == 16777216.0 - 65536 &&
		    num(v, "ipv6_addresses") == 0);
	assert_non_null(
		strstr(json_string_value(json_object_get(v, "residency")),
		       "residency rule 'r' of region 'in' allows service 'sync' only on links "
		       "tagged in, but region 'cat' steers to link 'away' (tags: sg)"));
	json_decref(h);
	/* the feed gives 10/8 back: nothing */
	assert_null(ctl_traffic_handovers(a, b, gives_back_10, NULL));
	fwd_table_free(b);
	/* 10/8 split into two /9s of 'cat': the /9s take it, not a cover
	 * (once unseen); into two /9s of 'in' itself: nothing (once taken for
	 * a handover to the cover); half of it to 'cat', half kept: the half */
	b = protected_table("10.2.0.0/16, '2001:db8::/32'",
			    "0.0.0.0/0, '::/0', 10.0.0.0/9, 10.128.0.0/9", keep);
	h = ctl_traffic_handovers(a, b, NULL, NULL);
	v = move_of(h, "in", "cat");
	assert_int_equal(json_array_size(h), 1);
	assert_int_equal(num(v, "prefixes"), 2);
	assert_true(num(v, "ipv4_addresses") == 16777216.0);
	json_decref(h);
	fwd_table_free(b);
	b = protected_table("10.0.0.0/9, 10.128.0.0/9, 10.2.0.0/16, '2001:db8::/32'", cat, keep);
	assert_null(ctl_traffic_handovers(a, b, NULL, NULL));
	fwd_table_free(b);
	b = protected_table("10.0.0.0/9, 10.2.0.0/16, '2001:db8::/32'",
			    "0.0.0.0/0, '::/0', 10.128.0.0/9", keep);
	h = ctl_traffic_handovers(a, b, NULL, NULL);
	v = move_of(h, "in", "cat");
	assert_int_equal(json_array_size(h), 1);
	assert_int_equal(num(v, "prefixes"), 1);
	assert_true(num(v, "ipv4_addresses") == 8388608.0);
	json_decref(h);
	fwd_table_free(b);
	/* the IPv6 block to the catch-all, after every IPv4 prefix kept */
	b = protected_table("10.0.0.0/8, 10.2.0.0/16", cat, keep);
	h = ctl_traffic_handovers(a, b, NULL, NULL);
	v = move_of(h, "in", "cat");
	assert_int_equal(json_array_size(h), 1);
	assert_true(num(v, "ipv6_addresses") == 79228162514264337593543950336.0); /* 2^96 */
	json_decref(h);
	fwd_table_free(b);
	/* a delta removing 10/8 and moving 2001:db8::/32 to the catch-all */
	{
		struct fwd_delta d = {0}, eff = {0};
		struct fwd_delta_stats ds;
		struct fwd_err e;
		int in = fwd_table_region_id(a, "in"), c = fwd_table_region_id(a, "cat");

		assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_REMOVE, (uint16_t)in,
						    "10.0.0.0/8", NULL, &e),
				 0);
		assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_REMOVE, (uint16_t)in,
						    "2001:db8::/32", NULL, &e),
				 0);
		assert_int_equal(fwd_delta_add_text(&d, FWD_DELTA_ADD, (uint16_t)c, "2001:db8::/32",
						    NULL, &e),
				 0);
		assert_int_equal(fwd_delta_apply(a, &d, &b, &eff, &ds, &e), 0);
		h = ctl_traffic_handovers_delta(b, &eff);
		v = move_of(h, "in", "cat");
		assert_non_null(v);
		assert_int_equal(num(v, "prefixes"), 2);
		assert_true(num(v, "ipv4_addresses") == 16777216.0 - 65536); /* 10.2/16 stays */
		assert_true(num(v, "ipv6_addresses") == 79228162514264337593543950336.0);
		json_decref(h);
		fwd_delta_clear(&d);
		fwd_delta_clear(&eff);
		fwd_table_free(b);
	}
	fwd_table_free(a);
}

/* regiond's alarm slots (ctl_state_alarm): one owner's alarm neither hides
 * nor clears another's; status shows every raised one. Once, the BGP feed
 * and the table's alarms shared one string: a feed alarm raised while a
 * revert failed was not shown, and an operator's change cleared it. */
static void test_alarm_owners(void **state)
{
	struct ctl_state *st = calloc(1, sizeof(*st));
	char big[600];

	(void)state;
	assert_non_null(st);
	ctl_state_alarm(st, CTL_ALARM_FEED, "bgp feed: lost for over %d s", 30);
	assert_string_equal(st->alarm, "bgp feed: lost for over 30 s");
	ctl_state_alarm(st, CTL_ALARM_TABLE, "the revert failed: %s", "no answer");
	assert_string_equal(st->alarm,
			    "the revert failed: no answer; bgp feed: lost for over 30 s");
	ctl_state_alarm(st, CTL_ALARM_TABLE, NULL); /* an operator's table runs */
	assert_string_equal(st->alarm, "bgp feed: lost for over 30 s");
	ctl_state_alarm(st, CTL_ALARM_TABLE, "adoption refused");
	ctl_state_alarm(st, CTL_ALARM_FEED, NULL); /* the feed is back */
	assert_string_equal(st->alarm, "adoption refused");
	ctl_state_alarm(st, CTL_ALARM_TABLE, NULL);
	assert_string_equal(st->alarm, "");
	/* both at their longest, and not ASCII: all of it shown, as ASCII */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[3] = (char)0xc3;
	ctl_state_alarm(st, CTL_ALARM_TABLE, "%s", big);
	ctl_state_alarm(st, CTL_ALARM_FEED, "%s", big);
	assert_int_equal(strlen(st->alarms[CTL_ALARM_TABLE]), CTL_ALARM_LEN - 1);
	assert_int_equal(strlen(st->alarm), 2 * (CTL_ALARM_LEN - 1) + 2);
	assert_true(st->alarm[3] == '?');
	free(st);
}

/* Descriptions at every level the format has one, and where it puts each. */
static const char desc_doc[] =
	"description: the table\n"
	"regions:\n"
	"  in: {prefixes: [10.0.0.0/8], description: users in India}\n"
	"  sg: {prefixes: [11.0.0.0/8]}\n"
	"services: {https: [tcp/443], dns: [udp/53]}\n"
	"links:\n"
	"  l1: {port: p0, next_hop_mac: '02:00:00:00:00:01', tags: [in], description: first}\n"
	"  l2: {port: p1, next_hop_mac: '02:00:00:00:00:02', description: 'Jos\xc3\xa9'}\n"
	"link_groups: {g: {members: {l1: 1, l2: 1}, description: both}}\n"
	"policies:\n"
	"  - {region: in, service: https, action: steer, to: g, description: india web}\n"
	"  - {region: sg, service: any, action: drop}\n"
	"default: {action: steer, to: l1, description: the rest}\n"
	"residency: [{name: r, region: in, services: [https], allowed_tags: [in], description: "
	"stays}]\n"
	"filters:\n"
	"  description: the edge\n"
	"  rules:\n"
	"    - {name: bogons, action: drop, prefixes: [0.0.0.0/8], description: no bogons}\n"
	"content_rules:\n"
	"  - {name: c, field: tls_sni, pattern: x, services: [https], action: count, "
	"description: count x}\n";

/* The description of map @o, "(none)" without one: a failure says what is missing. */
static const char *desc_of(const json_t *o)
{
	const json_t *d = json_object_get(o, "description");

	return d ? json_string_value(d) : "(none)";
}

/* Each description of @m at its place, and only those: 11 of them. */
static void assert_descs(const json_t *m)
{
	const char *const d = "description";
	const json_t *pols = json_object_get(m, "policies");
	char *text = json_dumps(m, JSON_COMPACT);
	size_t n = 0;

	assert_string_equal(desc_of(m), "the table");
	assert_string_equal(desc_of(json_object_get(json_object_get(m, "regions"), "in")),
			    "users in India");
	assert_null(json_object_get(json_object_get(json_object_get(m, "regions"), "sg"), d));
	assert_string_equal(desc_of(json_object_get(json_object_get(m, "links"), "l1")), "first");
	assert_string_equal(desc_of(json_object_get(json_object_get(m, "links"), "l2")),
			    "Jos\xc3\xa9");
	assert_string_equal(desc_of(json_object_get(json_object_get(m, "link_groups"), "g")),
			    "both");
	assert_string_equal(desc_of(json_array_get(pols, 0)), "india web");
	assert_null(json_object_get(json_array_get(pols, 1), d));
	assert_string_equal(desc_of(json_object_get(m, "default")), "the rest");
	assert_string_equal(desc_of(json_array_get(json_object_get(m, "residency"), 0)), "stays");
	assert_string_equal(desc_of(json_object_get(m, "filters")), "the edge");
	assert_string_equal(
		desc_of(json_array_get(json_object_get(json_object_get(m, "filters"), "rules"), 0)),
		"no bogons");
	assert_string_equal(desc_of(json_array_get(json_object_get(m, "content_rules"), 0)),
			    "count x");
	for (const char *p = text; (p = strstr(p, "\"description\"")) != NULL; p++)
		n++;
	assert_int_equal(n, 11);
	free(text);
}

/* A description of a region, link, group, policy, the default, a residency
 * rule, the filters, a filter rule or a content rule is in the model (a
 * PATCH applies the model as the new document; a checkpoint is written
 * from it), survives model -> table -> model and a delta's copy of the
 * table. Regression: the model had the table's own description only, so
 * 'regionctl link down' dropped every other one. */
static void test_descriptions_kept(void **state)
{
	struct fwd_err e = {0};
	char b[512];
	struct fwd_table *t = fwd_table_parse(desc_doc, strlen(desc_doc), "d.yaml", 0, &e), *t2,
			 *cp;
	struct fwd_prefix4 *p4;
	struct fwd_prefix6 *p6;
	json_t *m, *m2, *m3, *patched, *d;
	char *text;

	(void)state;
	if (t == NULL)
		fail_msg("%s", fwd_err_str(&e, b, sizeof(b)));
	m = ctl_model(t);
	assert_descs(m);
	text = json_dumps(m, JSON_COMPACT);
	t2 = fwd_table_parse(text, strlen(text), "model", 1, &e);
	if (t2 == NULL)
		fail_msg("%s", fwd_err_str(&e, b, sizeof(b)));
	m2 = ctl_model(t2);
	assert_true(json_equal(m, m2));
	free(text);

	/* A delta generation's table is a copy with other prefixes. */
	p4 = malloc(sizeof(*p4) * t->nprefix4);
	p6 = malloc(sizeof(*p6) * (t->nprefix6 ? t->nprefix6 : 1));
	memcpy(p4, t->prefix4, sizeof(*p4) * t->nprefix4);
	memcpy(p6, t->prefix6, sizeof(*p6) * t->nprefix6);
	cp = fwd_table_with_prefixes(t, p4, t->nprefix4, p6, t->nprefix6);
	assert_non_null(cp);
	fwd_table_free(t); /* the copy shares nothing */
	t = NULL;
	m3 = ctl_model(cp);
	assert_true(json_equal(m2, m3));

	/* A link down, as a PATCH makes it: every description stays; only the
	 * link's state changed. */
	patched = json_deep_copy(m2);
	json_object_set_new(json_object_get(json_object_get(patched, "links"), "l2"), "state",
			    json_string("down"));
	text = json_dumps(patched, JSON_COMPACT);
	fwd_table_free(cp);
	cp = fwd_table_parse(text, strlen(text), "patched", 1, &e);
	if (cp == NULL)
		fail_msg("%s", fwd_err_str(&e, b, sizeof(b)));
	json_decref(m3);
	m3 = ctl_model(cp);
	assert_descs(m3);
	assert_true(json_equal(m3, patched));
	free(text);

	/* A description alone changed: the thing it describes changed, and
	 * nothing it does; the filters' settings did not. */
	json_decref(patched);
	patched = json_deep_copy(m2);
	json_object_set_new(json_object_get(json_object_get(patched, "regions"), "in"),
			    "description", json_string("people in India"));
	json_object_set_new(json_object_get(patched, "filters"), "description",
			    json_string("the border"));
	text = json_dumps(patched, JSON_COMPACT);
	fwd_table_free(cp);
	cp = fwd_table_parse(text, strlen(text), "patched", 1, &e);
	assert_non_null(cp);
	d = ctl_diff(t2, cp);
	{
		const json_t *ch = json_object_get(json_object_get(d, "regions"), "changed");

		assert_int_equal(json_array_size(ch), 1);
		assert_string_equal(
			json_string_value(json_object_get(json_array_get(ch, 0), "name")), "in");
		assert_true(json_is_true(
			json_object_get(json_array_get(ch, 0), "description_changed")));
		assert_int_equal(
			json_array_size(json_object_get(json_array_get(ch, 0), "prefixes_added")),
			0);
		assert_false(json_is_true(json_object_get(d, "filters_settings_changed")));
	}
	json_decref(d);
	/* ... and a table against itself differs in nothing. */
	d = ctl_diff(t2, t2);
	assert_int_equal(json_array_size(json_object_get(json_object_get(d, "regions"), "changed")),
			 0);
	assert_int_equal(json_array_size(json_object_get(json_object_get(d, "links"), "changed")),
			 0);
	json_decref(d);
	free(text);
	json_decref(patched);
	json_decref(m);
	json_decref(m2);
	json_decref(m3);
	fwd_table_free(cp);
	fwd_table_free(t2);
}

/* The outcome impact compares: a group that can carry nothing (every member
 * that takes flows down or drained) says so, as a down link does; once it
 * read "group G" either way, and a change that took a region's whole group
 * down showed as no change at all. */
static void test_outcome_of_a_group_that_carries_nothing(void **state)
{
	static const char *states[][3] = {
		{"up", "up", "group g"},
		{"down", "up", "group g"},
		{"down", "drain", "group g (no member up)"},
		{"drain", "drain", "group g (no member up)"},
		{"down", "down", "group g (no member up)"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		char text[1024], out[80];
		struct fwd_err err = {0};
		struct fwd_table *t;
		struct fwd_class *c;

		snprintf(text, sizeof(text),
			 "regions: {us: {prefixes: [30.0.0.0/8]}}\n"
			 "links:\n"
			 "  a: {port: p0, next_hop_mac: '02:00:00:00:01:01', state: %s}\n"
			 "  b: {port: p1, next_hop_mac: '02:00:00:00:01:02', state: %s}\n"
			 "  c: {port: p1, next_hop_mac: '02:00:00:00:01:03'}\n"
			 "  d: {port: p1, next_hop_mac: '02:00:00:00:01:04', state: down}\n"
			 "link_groups: {g: {members: {a: 1, b: 2, c: 0}}}\n"
			 "policies:\n"
			 "  - {region: us, service: any, action: steer, to: g}\n"
			 "  - {region: unknown, service: any, action: steer, to: d}\n",
			 states[i][0], states[i][1]);
		t = fwd_table_parse(text, strlen(text), "t.yaml", -1, &err);
		assert_non_null(t);
		c = fwd_class_build(t);
		assert_non_null(c);
		ctl_outcome(t, c, "us", "other", out, sizeof(out));
		assert_string_equal(out, states[i][2]);
		ctl_outcome(t, c, "unknown", "other", out, sizeof(out));
		assert_string_equal(out, "link d (down)");
		fwd_class_free(c);
		fwd_table_free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_keeps_every_section),
		cmocka_unit_test(test_descriptions_kept),
		cmocka_unit_test(test_moves),
		cmocka_unit_test(test_residency_handovers),
		cmocka_unit_test(test_outcome_of_a_group_that_carries_nothing),
		cmocka_unit_test(test_alarm_owners),
	};

	return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
