/*
 * Table document tests: the valid shapes (YAML and JSON, one model), and one
 * case per class of invalid input asserting the exact error a user sees:
 * file, line (YAML), field path and reason.
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

#include "fwd_filter_kern_user.h"
#include "fwd_log.h"
#include "fwd_names.h"
#include "fwd_filter.h"
#include "fwd_table.h"

#define BASE_REGIONS                                                                               \
	"regions:\n"                                                                               \
	"  in:\n"                                                                                  \
	"    prefixes: [10.0.0.0/8, 2001:db8::/32]\n"                                              \
	"  sg:\n"                                                                                  \
	"    prefixes: [11.0.0.0/8]\n"
#define BASE_SERVICES                                                                              \
	"services:\n"                                                                              \
	"  https: [tcp/443, udp/443]\n"                                                            \
	"  dns: [any/53]\n"
#define BASE_LINKS                                                                                 \
	"links:\n"                                                                                 \
	"  l1: {port: p0, next_hop_mac: \"02:00:00:00:00:01\", tags: [in]}\n"                      \
	"  l2: {port: p1, next_hop_mac: \"02:00:00:00:00:02\"}\n"

static struct fwd_table *load(const char *doc, struct fwd_err *err)
{
	memset(err, 0, sizeof(*err));
	return fwd_table_parse(doc, strlen(doc), "t.yaml", -1, err);
}

/* @doc is taken, or the test fails with the refusal. */
static void t_ok(const char *doc)
{
	struct fwd_err err;
	struct fwd_table *t = load(doc, &err);
	char b[1024];

	if (t == NULL)
		fail_msg("refused: %s", fwd_err_str(&err, b, sizeof(b)));
	fwd_table_free(t);
}

static void test_valid_yaml(void **state)
{
	struct fwd_err err;
	struct fwd_table *t;

	(void)state;
	t = load("version: 1\n" BASE_REGIONS BASE_SERVICES BASE_LINKS
		 "link_groups:\n  g: {members: {l1: 1, l2: 2}}\n"
		 "policies:\n"
		 "  - {region: in, service: https, action: steer, to: l1, mirror: l2}\n"
		 "  - {region: any, service: dns, action: steer, to: g}\n"
		 "  - {region: unknown, service: other, action: drop}\n"
		 "default: {action: steer, to: l2}\n"
		 "residency:\n"
		 "  - {name: keep-in, region: in, services: [https], allowed_tags: [in]}\n",
		 &err);
	assert_non_null(t);
	assert_int_equal(t->nregions, 3);
	assert_string_equal(t->region_names[0], "unknown");
	assert_string_equal(t->region_names[2], "sg");
	assert_int_equal(t->nservices, 3);
	assert_string_equal(t->service_names[0], "other");
	assert_int_equal(t->nranges, 5); /* any/53 is three */
	assert_int_equal(t->nprefix4, 2);
	assert_int_equal(t->nprefix6, 1);
	assert_int_equal(t->nlinks, 2);
	assert_int_equal(t->ngroups, 1);
	assert_int_equal(t->groups[0].members[1].weight, 2);
	assert_int_equal(t->npolicies, 4);
	assert_int_equal(t->policies[0].action, FWD_ACT_LINK);
	assert_int_equal(t->policies[1].mirror, 1);
	assert_int_equal(t->policies[2].action, FWD_ACT_GROUP);
	assert_int_equal(t->policies[2].region, FWD_ANY);
	assert_int_equal(t->policies[3].region, FWD_REGION_UNKNOWN);
	assert_int_equal(t->policies[3].service, FWD_SERVICE_OTHER);
	assert_int_equal(t->nresidency, 1);
	fwd_table_free(t);
}

static void test_valid_json_same_model(void **state)
{
	static const char json[] =
		"{\"regions\": {\"in\": {\"prefixes\": [\"10.0.0.0/8\"]}},"
		" \"services\": {\"https\": [\"tcp/443\"]},"
		" \"links\": {\"l1\": {\"port\": \"p0\", \"next_hop_mac\": \"02:00:00:00:00:01\","
		" \"vlan\": 100}},"
		" \"policies\": [{\"region\": \"in\", \"service\": \"https\", \"action\": "
		"\"steer\","
		" \"to\": \"l1\"}]}";
	struct fwd_err err;
	struct fwd_table *t;

	(void)state;
	t = load(json, &err);
	assert_non_null(t);
	assert_int_equal(t->links[0].vlan, 100);
	assert_int_equal(t->policies[0].action, FWD_ACT_DROP); /* no default: drop */
	assert_int_equal(t->npolicies, 2);
	fwd_table_free(t);
}

static void test_filters_section(void **state)
{
	struct fwd_err err;
	struct fwd_table *t;

	(void)state;
	t = load("filters:\n"
		 "  default: pass\n"
		 "  malformed: drop\n"
		 "  rules:\n"
		 "    - {name: bogons, action: drop, prefixes: [0.0.0.0/8, 240.0.0.0/4, "
		 "'fc00::/7']}\n"
		 "    - {name: partners, action: pass, prefixes: [240.1.0.0/16]}\n"
		 "    - {name: no-telnet, action: drop, services: [tcp/23, any/2323]}\n",
		 &err);
	assert_non_null(t);
	assert_int_equal(t->filters.present, 1);
	assert_int_equal(t->filters.default_action, 0);
	assert_int_equal(t->filters.malformed_action, 1);
	assert_int_equal(t->filters.non_ip_action, 0);
	assert_int_equal(t->filters.nrules, 3);
	assert_string_equal(t->filters.rules[2].name, "no-telnet");
	assert_int_equal(t->filters.rules[1].action, 0);
	assert_int_equal(t->filters.nprefix4, 3);
	assert_int_equal(t->filters.nprefix6, 1);
	assert_int_equal(t->filters.nranges, 4);
	assert_int_equal(t->nprefix4, 0); /* regions untouched */
	fwd_table_free(t);
}

/* A length counted once however many prefixes use it: a byte a length
 * wrapped every 256 prefixes of one length into a "new" length, and 8,193
 * IPv6 /48s were refused as 33 distinct lengths (a review). */
static void test_filter_v6_lengths_counted_once(void **state)
{
	size_t cap = 64 + 300 * 48 + 33 * 48;
	char *doc = malloc(cap);
	size_t n = 0;
	struct fwd_err err;
	struct fwd_table *t;

	(void)state;
	assert_non_null(doc);
	n += (size_t)snprintf(doc + n, cap - n,
			      "filters:\n  rules:\n    - {name: a, action: "
			      "drop, prefixes: [");
	for (int i = 0; i < 300; i++) /* 300 prefixes of one length, and 31 others */
		n += (size_t)snprintf(doc + n, cap - n, "%s'2001:db8:%x::/48'", i ? ", " : "", i);
	for (int len = 16; len < 16 + 31; len++)
		n += (size_t)snprintf(doc + n, cap - n, ", 'fc00::/%d'", len);
	snprintf(doc + n, cap - n, "]}\n");
	t = load(doc, &err);
	if (t == NULL)
		fail_msg("%s", fwd_err_str(&err, (char[512]){0}, 512));
	/* 32 lengths: the limit */
	assert_int_equal(t->filters.nprefix6, 331);
	fwd_table_free(t);
	free(doc);
}

/* What the XDP program gets as its malformed policy (fwd_filter_kern_user.h:
 * `malformed: pass` must not let by what the rules might drop). */
static void test_filter_malformed_policy(void **state)
{
	static const struct {
		const char *section;
		uint8_t want;
	} cases[] = {
		{"filters: {}\n", FWD_FLT_PASS},
		{"filters:\n  rules:\n    - {name: a, action: pass, prefixes: [10.0.0.0/8]}\n",
		 FWD_FLT_PASS},
		{"filters:\n  rules:\n    - {name: a, action: drop, prefixes: [10.0.0.0/8]}\n",
		 FWD_FLT_PASS | FWD_FLT_MALFORMED_UNSEEN_SOURCE},
		{"filters:\n  rules:\n    - {name: a, action: rate, rate_pps: 5, prefixes: "
		 "['2001:db8::/32']}\n",
		 FWD_FLT_PASS | FWD_FLT_MALFORMED_UNSEEN_SOURCE},
		{"filters:\n  rules:\n    - {name: a, action: drop, services: [tcp/23]}\n",
		 FWD_FLT_PASS | FWD_FLT_MALFORMED_UNSEEN_PORTS | FWD_FLT_MALFORMED_UNSEEN_SOURCE},
		{"filters:\n  rules:\n    - {name: a, action: pass, services: [tcp/80]}\n",
		 FWD_FLT_PASS},
		{"filters: {default: drop}\n",
		 FWD_FLT_PASS | FWD_FLT_MALFORMED_UNSEEN_PORTS | FWD_FLT_MALFORMED_UNSEEN_SOURCE},
		{"filters: {default: drop, malformed: drop}\n", FWD_FLT_DROP},
		{"filters:\n  malformed: drop\n  rules:\n    - {name: a, action: drop, services: "
		 "[tcp/23]}\n",
		 FWD_FLT_DROP},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fwd_err err;
		struct fwd_table *t = load(cases[i].section, &err);

		assert_non_null(t);
		if (fwd_flt_malformed_policy(&t->filters) != cases[i].want)
			fail_msg("%s: %#x, not %#x", cases[i].section,
				 fwd_flt_malformed_policy(&t->filters), cases[i].want);
		fwd_table_free(t);
	}
}

static void test_content_rules_section(void **state)
{
	struct fwd_err err;
	struct fwd_table *t;

	(void)state;
	t = load(BASE_REGIONS
		 "services:\n  https: [tcp/443]\n  dns: [udp/53]\n" BASE_LINKS
		 "link_groups: {g: {members: {l1: 1, l2: 1}}}\n"
		 "content_rules:\n"
		 "  - {name: telemetry, field: tls_sni, pattern: 'telemetry\\.example\\.com$', "
		 "caseless: true, services: [https], regions: [in], action: drop}\n"
		 "  - {name: zone, field: dns_qname, pattern: in.example, literal: true, services: "
		 "[dns], action: steer, to: g}\n"
		 "  - {name: sig, field: payload, pattern: '\\x90{16}', services: [https, dns], "
		 "action: mirror, to: l2}\n",
		 &err);
	if (t == NULL) {
		char b[512];

		fail_msg("%s", fwd_err_str(&err, b, sizeof(b)));
	}
	assert_int_equal(t->ncontent, 3);
	assert_string_equal(t->content[0].pattern, "telemetry\\.example\\.com$");
	assert_int_equal(t->content[0].field, FWD_CF_TLS_SNI);
	assert_int_equal(t->content[0].caseless, 1);
	assert_int_equal(t->content[0].nregions, 1);
	assert_int_equal(t->content[1].action, FWD_CA_STEER);
	assert_int_equal(t->content[1].target_kind, FWD_ACT_GROUP);
	assert_int_equal(t->content[1].literal, 1);
	assert_int_equal(t->content[2].nservices, 2);
	assert_int_equal(t->content[2].target_kind, FWD_ACT_LINK);
	assert_int_equal(t->content[0].unreadable, 0);
	fwd_table_free(t);

	/* Fail closed: unreadable: true instead of a pattern or a set. */
	t = load(BASE_REGIONS "services:\n  https: [tcp/443]\n  dns: [udp/53]\n" BASE_LINKS
			      "content_rules:\n"
			      "  - {name: u-sni, field: tls_sni, unreadable: true, services: "
			      "[https], regions: [sg], action: drop}\n"
			      "  - {name: u-dns, field: dns_qname, unreadable: true, services: "
			      "[dns], action: steer, to: l1}\n",
		 &err);
	if (t == NULL) {
		char b[512];

		fail_msg("%s", fwd_err_str(&err, b, sizeof(b)));
	}
	assert_int_equal(t->ncontent, 2);
	assert_int_equal(t->content[0].unreadable, 1);
	assert_null(t->content[0].pattern);
	assert_null(t->content[0].names);
	assert_int_equal(t->content[0].field, FWD_CF_TLS_SNI);
	assert_int_equal(t->content[0].action, FWD_CA_DROP);
	assert_int_equal(t->content[1].unreadable, 1);
	assert_int_equal(t->content[1].action, FWD_CA_STEER);
	fwd_table_free(t);
}

/* Upper-case letters that are no literal character of a name pattern, and
 * patterns that may match one (caseless, an inline option, payload), are
 * taken: only a letter that surely can never match is refused. */
static void test_uppercase_patterns_accepted(void **state)
{
	static const char *const pats[] = {
		"\\S+\\.example",
		"\\W\\D\\d",
		"\\Bx\\b",
		"\\Aabc\\Z",
		"\\Gx\\z",
		"\\Qabc\\E\\E",
		"\\p{Lu}x\\P{Lu}",
		"\\pLx\\PL",
		"\\x{4A}x\\x4A",
		"\\N{U+0041}x",
		"\\cAx",
		"[A-Za-z]+\\.example",
		"[^A-Z]x",
		"[]A]x",
		"[[:upper:]A-Z]x",
		"[\\]A]x",
		"(?<Name>abc)\\k<Name>",
		"(?P<Name>abc)(?P=Name)",
		"(?P>Name)x",
		"\\g{Name}x",
		"(*UTF8)abc",
		"(*UCP)(*UTF8)x",
		"(?i)Telemetry\\.Example",
		"abc(?i:Def)",
		"(?i-s)X",
		"(?si)X",
		"(?s-i:x)(?i)X",
		"(?mx)a # A Comment",
		"(?sJ)abc",
		"(?x)a # A Comment",
		"(?#A Comment)x",
		"(?=x)y",
	};
	char doc[1024], b[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		struct fwd_err err;
		struct fwd_table *t;

		snprintf(doc, sizeof(doc),
			 BASE_SERVICES BASE_LINKS
			 "content_rules:\n  - {name: c, field: tls_sni, "
			 "pattern: '%s', services: [https], action: drop}\n",
			 pats[i]);
		if ((t = load(doc, &err)) == NULL)
			fail_msg("'%s' refused: %s", pats[i], fwd_err_str(&err, b, sizeof(b)));
		fwd_table_free(t);
	}
	/* caseless, and the payload, which is matched as it is */
	t_ok(BASE_SERVICES BASE_LINKS
	     "content_rules:\n  - {name: c, field: http_host, pattern: "
	     "Telemetry, caseless: true, services: [https], action: drop}\n");
	t_ok(BASE_SERVICES BASE_LINKS
	     "content_rules:\n  - {name: c, field: payload, pattern: "
	     "Telemetry, literal: true, services: [https], action: drop}\n");
}

static void test_empty_sections(void **state)
{
	struct fwd_err err;
	struct fwd_table *t;

	(void)state;
	t = load("regions: {}\n", &err);
	assert_non_null(t);
	assert_int_equal(t->nregions, 1);
	assert_int_equal(t->npolicies, 1);
	fwd_table_free(t);
}

struct bad_case {
	const char *name;
	const char *doc;
	const char *error;
};

static const struct bad_case bad_cases[] = {
	{"yaml syntax", "regions: [\n",
	 "t.yaml:2: YAML syntax: did not find expected node content while parsing a flow node"},
	{"json syntax", "{\"regions\": }",
	 "t.yaml:1: JSON syntax: unexpected token near '}' (column 13)"},
	{"not a map", "- a\n- b\n", "t.yaml:1: expected a map, got list"},
	{"alias", "regions: &r {}\nservices: *r\n", "t.yaml:1: YAML anchors are not accepted"},
	{"two documents", "regions: {}\n---\nregions: {}\n",
	 "t.yaml:2: more than one YAML document in the stream"},
	{"duplicate key", "regions: {}\nregions: {}\n",
	 "t.yaml:2: regions: duplicate key 'regions'"},
	{"duplicate key, nested", "regions:\n  in: {prefixes: [10.0.0.0/8]}\n  in: {}\n",
	 "t.yaml:3: regions.in: duplicate key 'in'"},
	{"duplicate key in a list", "policies:\n  - {region: a, region: b}\n",
	 "t.yaml:2: policies[0].region: duplicate key 'region'"},
	{"unknown top field", "region: {}\n",
	 "t.yaml:1: region: unknown field 'region' (expected one of: version, description, "
	 "regions, services, links, link_groups, policies, default, residency, filters, "
	 "content_rules)"},
	{"bad version", "version: 2\n", "t.yaml:1: version: 2 is out of range 1..1"},
	{"bad prefix", "regions:\n  in: {prefixes: [10.0.0.256/24]}\n",
	 "t.yaml:2: regions.in.prefixes[0]: '10.0.0.256' is not a valid IPv4 address"},
	{"prefix without length", "regions:\n  in: {prefixes: [10.0.0.0]}\n",
	 "t.yaml:2: regions.in.prefixes[0]: '10.0.0.0' is not a prefix (ADDRESS/LENGTH)"},
	{"prefix length", "regions:\n  in: {prefixes: [10.0.0.0/33]}\n",
	 "t.yaml:2: regions.in.prefixes[0]: IPv4 prefix length 33 is out of range 0..32"},
	{"host bits v4", "regions:\n  in: {prefixes: [10.1.2.3/8]}\n",
	 "t.yaml:2: regions.in.prefixes[0]: host bits set in '10.1.2.3/8' (did you mean "
	 "10.0.0.0/8?)"},
	{"host bits v6", "regions:\n  in: {prefixes: ['2001:db8::1/32']}\n",
	 "t.yaml:2: regions.in.prefixes[0]: host bits set in '2001:db8::1/32' (did you mean "
	 "2001:db8::/32?)"},
	{"leading zero v4", "regions:\n  in: {prefixes: [10.0.0.0/08]}\n",
	 "t.yaml:2: regions.in.prefixes[0]: '10.0.0.0/08': a prefix length with a leading zero"},
	{"leading zero v6", "regions:\n  in: {prefixes: ['2001:db8::/032']}\n",
	 "t.yaml:2: regions.in.prefixes[0]: '2001:db8::/032': a prefix length with a leading "
	 "zero"},
	{"ipv4-mapped", "regions:\n  in: {prefixes: ['::ffff:10.0.0.0/104']}\n",
	 "t.yaml:2: regions.in.prefixes[0]: '::ffff:10.0.0.0/104' is an IPv4-mapped IPv6 "
	 "prefix, which no packet carries as its source; for IPv4 sources write 10.0.0.0/8"},
	{"ipv4-mapped whole", "regions:\n  in: {prefixes: ['::ffff:0:0/96']}\n",
	 "t.yaml:2: regions.in.prefixes[0]: '::ffff:0:0/96' is an IPv4-mapped IPv6 prefix, "
	 "which no packet carries as its source; for IPv4 sources write 0.0.0.0/0"},
	{"same prefix two regions",
	 "regions:\n  in: {prefixes: [10.0.0.0/8]}\n  sg:\n    prefixes: [10.0.0.0/8]\n",
	 "t.yaml:4: regions.sg.prefixes: prefix 10.0.0.0/8 is also in region 'in'"},
	{"same prefix twice",
	 "regions:\n  in:\n    prefixes:\n      - 2001:db8::/32\n      - 2001:db8::/32\n",
	 "t.yaml:5: regions.in.prefixes: prefix 2001:db8::/32 is listed twice"},
	{"reserved region", "regions:\n  unknown: {prefixes: []}\n",
	 "t.yaml:2: regions.unknown: 'unknown' is a reserved region name"},
	{"bad region name", "regions:\n  \"in dia\": {}\n",
	 "t.yaml:2: regions.in dia: region name 'in dia' may only use letters, digits, '_', '-', "
	 "'.'"},
	{"unknown region field", "regions:\n  in: {prefix: []}\n",
	 "t.yaml:2: regions.in.prefix: unknown field 'prefix' (expected one of: prefixes, "
	 "description)"},
	{"bad protocol", "services:\n  web: [tpc/80]\n",
	 "t.yaml:2: services.web[0]: 'tpc/80': protocol must be tcp, udp, sctp, any, icmp, icmpv6 "
	 "or 0..255"},
	{"bad port", "services:\n  web: [tcp/70000]\n",
	 "t.yaml:2: services.web[0]: 'tcp/70000': ports must be PORT or LO-HI within 0..65535"},
	{"inverted range", "services:\n  web: [tcp/90-80]\n",
	 "t.yaml:2: services.web[0]: 'tcp/90-80': range start 90 is above its end 80"},
	{"port on icmp", "services:\n  ping: [icmp/8]\n",
	 "t.yaml:2: services.ping[0]: 'icmp/8': only tcp, udp, sctp and any have ports"},
	{"any without port", "services:\n  all: [any]\n",
	 "t.yaml:2: services.all[0]: 'any': 'any' needs a port or range (any/53)"},
	{"overlapping ranges", "services:\n  web: [tcp/80-90]\n  alt: [tcp/88]\n",
	 "t.yaml:3: services.alt: tcp/88 overlaps tcp/80-90 of service 'web'"},
	{"overlap via any", "services:\n  dns: [udp/53]\n  dns2: [any/50-60]\n",
	 "t.yaml:3: services.dns2: udp/50-60 overlaps udp/53 of service 'dns'"},
	{"empty service", "services:\n  web: []\n",
	 "t.yaml:2: services.web: a service needs at least one protocol/port entry"},
	{"link missing port", "links:\n  l1: {next_hop_mac: '02:00:00:00:00:01'}\n",
	 "t.yaml:2: links.l1.port: missing field 'port'"},
	{"bad mac", "links:\n  l1: {port: p0, next_hop_mac: '02:00:00:00:01'}\n",
	 "t.yaml:2: links.l1.next_hop_mac: '02:00:00:00:01' is not a MAC address "
	 "(aa:bb:cc:dd:ee:ff)"},
	{"multicast mac", "links:\n  l1: {port: p0, next_hop_mac: 'ff:ff:ff:ff:ff:ff'}\n",
	 "t.yaml:2: links.l1.next_hop_mac: 'ff:ff:ff:ff:ff:ff' is a multicast/broadcast address; a "
	 "next hop is unicast"},
	{"vlan range", "links:\n  l1: {port: p0, next_hop_mac: '02:00:00:00:00:01', vlan: 4095}\n",
	 "t.yaml:2: links.l1.vlan: 4095 is out of range 1..4094"},
	{"vlan not a number",
	 "links:\n  l1: {port: p0, next_hop_mac: '02:00:00:00:00:01', vlan: ten}\n",
	 "t.yaml:2: links.l1.vlan: 'ten' is not a whole number"},
	/* whole numbers out of range, not "not a whole number" (a probe) */
	{"vlan negative", "links:\n  l1: {port: p0, next_hop_mac: '02:00:00:00:00:01', vlan: -1}\n",
	 "t.yaml:2: links.l1.vlan: '-1' is out of range 1..4094"},
	{"vlan past 64 bits",
	 "links:\n  l1: {port: p0, next_hop_mac: '02:00:00:00:00:01', vlan: "
	 "99999999999999999999}\n",
	 "t.yaml:2: links.l1.vlan: '99999999999999999999' is out of range 1..4094"},
	{"vlan minus zero",
	 "links:\n  l1: {port: p0, next_hop_mac: '02:00:00:00:00:01', vlan: -0}\n",
	 "t.yaml:2: links.l1.vlan: '-0' is not a whole number"},
	{"bad state", "links:\n  l1: {port: p0, next_hop_mac: '02:00:00:00:00:01', state: off}\n",
	 "t.yaml:2: links.l1.state: state must be 'up', 'down' or 'drain', not 'off'"},
	{"link typo field", "links:\n  l1: {port: p0, nexthop_mac: '02:00:00:00:00:01'}\n",
	 "t.yaml:2: links.l1.nexthop_mac: unknown field 'nexthop_mac' (expected one of: port, "
	 "next_hop_mac, vlan, tags, state, description)"},
	{"group unknown link", BASE_LINKS "link_groups:\n  g: {members: {l3: 1}}\n",
	 "t.yaml:5: link_groups.g.members.l3: unknown link 'l3'"},
	{"group zero weights", BASE_LINKS "link_groups:\n  g: {members: {l1: 0, l2: 0}}\n",
	 "t.yaml:5: link_groups.g.members: every member has weight 0; the group could carry "
	 "nothing"},
	{"group named like link", BASE_LINKS "link_groups:\n  l1: {members: {l2: 1}}\n",
	 "t.yaml:5: link_groups.l1: 'l1' is already a link name; links and groups share names"},
	{"policy unknown region",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "policies:\n  - {region: br, service: https, action: drop}\n",
	 "t.yaml:13: policies[0].region: unknown region 'br'"},
	{"policy unknown service",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "policies:\n  - {region: in, service: ssh, action: drop}\n",
	 "t.yaml:13: policies[0].service: unknown service 'ssh'"},
	{"policy unknown link",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "policies:\n  - {region: in, service: https, action: steer, to: l9}\n",
	 "t.yaml:13: policies[0].to: unknown link or link group 'l9'"},
	{"steer without to",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "policies:\n  - {region: in, service: https, action: steer}\n",
	 "t.yaml:13: policies[0].to: action 'steer' needs 'to' (a link or link group)"},
	{"drop with to",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "policies:\n  - {region: in, service: https, action: drop, to: l1}\n",
	 "t.yaml:13: policies[0].to: action 'drop' takes no 'to'"},
	{"bad action",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "policies:\n  - {region: in, service: https, action: forward, to: l1}\n",
	 "t.yaml:13: policies[0].action: action must be 'steer' or 'drop', not 'forward'"},
	{"duplicate policy",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "policies:\n  - {region: in, service: https, action: drop}\n  - {region: in, service: "
	 "https, action: steer, to: l1}\n",
	 "t.yaml:14: policies[1]: a policy for region 'in', service 'https' already exists (line "
	 "13)"},
	{"duplicate policy in JSON",
	 "{\"regions\": {\"in\": {\"prefixes\": [\"10.0.0.0/8\"]}}, \"links\": {\"l1\": "
	 "{\"port\": \"p0\", \"next_hop_mac\": \"02:00:00:00:00:01\"}}, \"policies\": "
	 "[{\"region\": \"any\", \"service\": \"other\", \"action\": \"drop\"}, "
	 "{\"region\": \"in\", \"service\": \"any\", \"action\": \"drop\"}, "
	 "{\"region\": \"in\", \"service\": \"any\", \"action\": \"steer\", \"to\": "
	 "\"l1\"}]}",
	 "t.yaml: policies[2]: a policy for region 'in', service 'any' already exists "
	 "(policies[1])"},
	{"any any policy",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "policies:\n  - {region: any, service: any, action: drop}\n",
	 "t.yaml:13: policies[0]: region 'any' with service 'any' is the 'default' section"},
	{"mirror to group",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "link_groups:\n  g: {members: {l1: 1}}\npolicies:\n  - {region: in, service: https, "
	 "action: drop, mirror: g}\n",
	 "t.yaml:15: policies[0].mirror: unknown link 'g' (mirror takes a link)"},
	{"mirror to the steered link",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "policies:\n  - {region: in, service: https, action: steer, to: l1, mirror: l1}\n",
	 "t.yaml:13: policies[0].mirror: 'l1' is the link the packets are steered to: each would "
	 "leave on it twice (mirror to another link, or leave mirror out)"},
	{"default mirror to its link", BASE_LINKS "default: {action: steer, to: l1, mirror: l1}\n",
	 "t.yaml:4: default.mirror: 'l1' is the link the packets are steered to: each would leave "
	 "on it twice (mirror to another link, or leave mirror out)"},
	{"policy missing region",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS "policies:\n  - {service: https, action: drop}\n",
	 "t.yaml:13: policies[0].region: missing field 'region' (a name or 'any')"},
	{"default with region", BASE_LINKS "default: {region: in, action: drop}\n",
	 "t.yaml:4: default.region: unknown field 'region' (expected one of: action, to, mirror, "
	 "description)"},
	{"residency unknown service",
	 BASE_REGIONS BASE_SERVICES
	 "residency:\n  - {name: r, region: in, services: [sync], allowed_tags: [in]}\n",
	 "t.yaml:10: residency[0].services[0]: unknown service 'sync'"},
	{"residency any region",
	 BASE_REGIONS BASE_SERVICES
	 "residency:\n  - {name: r, region: any, services: [https], allowed_tags: [in]}\n",
	 "t.yaml:10: residency[0].region: a residency rule protects one region, not 'any'"},
	{"residency no tags",
	 BASE_REGIONS BASE_SERVICES "residency:\n  - {name: r, region: in, services: [https]}\n",
	 "t.yaml:10: residency[0].allowed_tags: missing field 'allowed_tags'"},
	{"residency dup name",
	 BASE_REGIONS BASE_SERVICES
	 "residency:\n  - {name: r, region: in, services: [https], allowed_tags: [in]}\n  - {name: "
	 "r, region: sg, services: [any], allowed_tags: [sg]}\n",
	 "t.yaml:11: residency[1].name: residency rule 'r' is defined twice"},
	{"wrong type", "regions: [in, sg]\n", "t.yaml:1: regions: expected a map, got list"},
	{"content bad field",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS "content_rules:\n  - {name: c, field: body, "
					       "pattern: x, services: [https], action: count}\n",
	 "t.yaml:13: content_rules[0].field: field must be payload, tls_sni, http_host or "
	 "dns_qname, not 'body'"},
	{"content service twice",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: tls_sni, "
	 "pattern: x, services: [https, https], action: count}\n",
	 "t.yaml:13: content_rules[0].services[1]: service 'https' is listed twice (also at [0])"},
	{"content region twice",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS "content_rules:\n  - {name: c, field: tls_sni, "
					       "pattern: x, services: [https], regions: [in, "
					       "sg, in], action: count}\n",
	 "t.yaml:13: content_rules[0].regions[2]: region 'in' is listed twice (also at [0])"},
	{"link tag twice",
	 BASE_REGIONS BASE_SERVICES
	 "links:\n  l1: {port: p0, next_hop_mac: \"02:00:00:00:00:01\", tags: [in, sg, in]}\n",
	 "t.yaml:10: links.l1.tags[2]: tag 'in' is listed twice (also at [0])"},
	{"residency tag twice",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "residency:\n  - {name: r, region: in, services: [https], allowed_tags: [in, in]}\n",
	 "t.yaml:13: residency[0].allowed_tags[1]: tag 'in' is listed twice (also at [0])"},
	{"residency service twice",
	 BASE_REGIONS BASE_SERVICES
	 "residency:\n  - {name: r, region: in, services: [https, https], allowed_tags: [in]}\n",
	 "t.yaml:10: residency[0].services[1]: service 'https' is listed twice (also at [0])"},
	{"content unknown service",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS "content_rules:\n  - {name: c, field: tls_sni, "
					       "pattern: x, services: [ssh], action: count}\n",
	 "t.yaml:13: content_rules[0].services[0]: unknown service 'ssh'"},
	{"content steer on tcp",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: tls_sni, pattern: x, services: [https], action: "
	 "steer, to: l1}\n",
	 "t.yaml:13: content_rules[0].action: steer decides per packet, so its scope must be UDP "
	 "only: service 'https' has tcp ports (a tcp flow would change link mid-stream)"},
	{"content steer on other",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: payload, pattern: x, services: [other], action: "
	 "steer, to: l1}\n",
	 "t.yaml:13: content_rules[0].action: steer decides per packet, so its scope must be UDP "
	 "only: service 'other' is every protocol and port no service names, TCP's too (a TCP "
	 "flow would change link mid-stream)"},
	{"content mirror to group",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "link_groups: {g: {members: {l1: 1}}}\ncontent_rules:\n  - {name: c, field: payload, "
	 "pattern: x, services: [https], action: mirror, to: g}\n",
	 "t.yaml:14: content_rules[0].to: unknown link (mirror takes a link) 'g'"},
	{"content count with to",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: payload, pattern: x, services: [https], action: "
	 "count, to: l1}\n",
	 "t.yaml:13: content_rules[0].to: action 'count' takes no 'to'"},
	{"content empty pattern",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS "content_rules:\n  - {name: c, field: payload, "
					       "pattern: '', services: [https], action: drop}\n",
	 "t.yaml:13: content_rules[0].pattern: a pattern is 1..4096 bytes"},
	{"content dup name",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: payload, pattern: a, services: [https], action: "
	 "drop}\n  - {name: c, field: payload, pattern: b, services: [https], action: drop}\n",
	 "t.yaml:14: content_rules[1].name: content rule 'c' is defined twice"},
	{"content residency",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "residency: [{name: keep, region: in, services: [dns], allowed_tags: "
	 "[in]}]\ncontent_rules:\n  - {name: c, field: dns_qname, pattern: x, services: [dns], "
	 "regions: [in], action: mirror, to: l2}\n",
	 "t.yaml:14: content_rules[0]: breaks residency rule 'keep': mirrors region 'in' traffic "
	 "to link 'l2' (no tags), but the rule allows service 'dns' only on links tagged in"},
	/* Every protected service the rule scopes, and the link's own tags. */
	{"content residency, tagged link, all services",
	 BASE_REGIONS BASE_SERVICES
	 "links:\n  tap: {port: p0, next_hop_mac: \"02:00:00:00:00:01\", tags: [ids, eu]}\n"
	 "residency: [{name: keep, region: in, services: [any], allowed_tags: [in, "
	 "gov]}]\ncontent_rules:\n  - {name: c, field: payload, pattern: x, services: [https, "
	 "dns], "
	 "action: mirror, to: tap}\n",
	 "t.yaml:13: content_rules[0]: breaks residency rule 'keep': mirrors region 'in' traffic "
	 "to link 'tap' (tags: ids, eu), but the rule allows services 'https', 'dns' only on "
	 "links tagged in, gov"},
	{"content residency, steer to a group",
	 BASE_REGIONS
	 "services: {sync: [udp/4000], ntp: [udp/123]}\n" BASE_LINKS
	 "link_groups: {g: {members: {l1: 1, l2: 1}}}\n"
	 "residency: [{name: keep, region: in, services: [sync], allowed_tags: "
	 "[in]}]\ncontent_rules:\n  - {name: c, field: payload, pattern: x, services: [ntp, sync], "
	 "action: steer, to: g}\n",
	 "t.yaml:13: content_rules[0]: breaks residency rule 'keep': steers region 'in' traffic "
	 "to group 'g' with link 'l2' (no tags), but the rule allows service 'sync' only on "
	 "links tagged in"},
	/* Names are lowercased before they are matched: an upper-case
	 * literal on a name field can never match (docs/content-rules.md). */
	{"content upper-case literal in a name pattern",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: tls_sni, "
	 "pattern: 'Telemetry\\.Example', services: [https], action: drop}\n",
	 "t.yaml:13: content_rules[0].pattern: the upper-case 'T' at position 1 can never match: "
	 "tls_sni names are lowercased before they are matched; write it lowercase or add "
	 "caseless: true"},
	{"content upper-case in a literal",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: http_host, "
	 "pattern: 'evil.Example', literal: true, services: [https], action: drop}\n",
	 "t.yaml:13: content_rules[0].pattern: the upper-case 'E' at position 6 can never match: "
	 "http_host names are lowercased before they are matched; write it lowercase or add "
	 "caseless: true"},
	{"content upper-case quoted",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: dns_qname, "
	 "pattern: '\\Qa.B\\E', services: [dns], action: count}\n",
	 "t.yaml:13: content_rules[0].pattern: the upper-case 'B' at position 5 can never match: "
	 "dns_qname names are lowercased before they are matched; write it lowercase or add "
	 "caseless: true"},
	{"content upper-case after a class and an escape",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: dns_qname, "
	 "pattern: '[A-Z]+\\S\\.Corp', services: [dns], action: count}\n",
	 "t.yaml:13: content_rules[0].pattern: the upper-case 'C' at position 11 can never match: "
	 "dns_qname names are lowercased before they are matched; write it lowercase or add "
	 "caseless: true"},
	{"content upper-case after a group name",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: tls_sni, "
	 "pattern: '(?<Host>x)\\x{4A}Y', services: [https], action: drop}\n",
	 "t.yaml:13: content_rules[0].pattern: the upper-case 'Y' at position 17 can never match: "
	 "tls_sni names are lowercased before they are matched; write it lowercase or add "
	 "caseless: true"},
	/* Options that do not turn caseless on leave the letters literal:
	 * (?s) once left the whole pattern alone. */
	/* (?P<Name> is a group's name, not options: the letters after it
	 * stay literal (the options' scan once took its P for one) */
	{"content upper-case after a P group name",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: tls_sni, "
	 "pattern: '(?P<Host>x)Y', services: [https], action: drop}\n",
	 "t.yaml:13: content_rules[0].pattern: the upper-case 'Y' at position 12 can never match: "
	 "tls_sni names are lowercased before they are matched; write it lowercase or add "
	 "caseless: true"},
	{"content upper-case after options that are not caseless",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: tls_sni, "
	 "pattern: '(?s)x(?m-i:y)(?-x)Telemetry', services: [https], action: drop}\n",
	 "t.yaml:13: content_rules[0].pattern: the upper-case 'T' at position 19 can never match: "
	 "tls_sni names are lowercased before they are matched; write it lowercase or add "
	 "caseless: true"},
	{"filter bad action", "filters: {default: block}\n",
	 "t.yaml:1: filters.default: must be 'pass' or 'drop', not 'block'"},
	{"filter rate default", "filters: {default: rate}\n",
	 "t.yaml:1: filters.default: must be 'pass' or 'drop', not 'rate'"},
	{"filter rate no pps",
	 "filters:\n  rules:\n    - {name: a, action: rate, prefixes: [10.0.0.0/8]}\n",
	 "t.yaml:3: filters.rules[0].rate_pps: action 'rate' needs 'rate_pps'"},
	{"filter rate services",
	 "filters:\n  rules:\n    - {name: a, action: rate, rate_pps: 5, services: [tcp/1]}\n",
	 "t.yaml:3: filters.rules[0]: a rate rule limits source prefixes: give 'prefixes'"},
	{"filter pps on drop",
	 "filters:\n  rules:\n    - {name: a, action: drop, rate_pps: 5, prefixes: [10.0.0.0/8]}\n",
	 "t.yaml:3: filters.rules[0].rate_pps: 'rate_pps' and 'burst' go with action 'rate'"},
	{"filter both kinds",
	 "filters:\n  rules:\n    - {name: a, action: drop, prefixes: [10.0.0.0/8], services: "
	 "[tcp/22]}\n",
	 "t.yaml:3: filters.rules[0]: a rule matches either 'prefixes' or 'services', exactly one "
	 "of them"},
	{"filter icmp", "filters:\n  rules:\n    - {name: a, action: drop, services: [icmp]}\n",
	 "t.yaml:3: filters.rules[0].services[0]: filter services take tcp, udp, sctp or any with "
	 "ports"},
	{"filter dup prefix",
	 "filters:\n  rules:\n    - {name: a, action: drop, prefixes: [10.0.0.0/8]}\n    - {name: "
	 "b, action: pass, prefixes: [10.0.0.0/8]}\n",
	 "t.yaml:4: filters.rules.b.prefixes: prefix 10.0.0.0/8 is also in rule 'a'"},
	{"filter overlap",
	 "filters:\n  rules:\n    - {name: a, action: drop, services: [tcp/20-30]}\n    - {name: "
	 "b, action: pass, services: [any/22]}\n",
	 "t.yaml:4: filters.rules.b.services: tcp/22 overlaps tcp/20-30 of rule 'a'"},
	{"filter dup name",
	 "filters:\n  rules:\n    - {name: a, action: drop, services: [tcp/1]}\n    - {name: a, "
	 "action: pass, services: [tcp/2]}\n",
	 "t.yaml:4: filters.rules[1].name: filter rule 'a' is defined twice"},
	{"filter unknown field",
	 "filters:\n  rules:\n    - {name: a, action: drop, prefix: [10.0.0.0/8]}\n",
	 "t.yaml:3: filters.rules[0].prefix: unknown field 'prefix' (expected one of: name, "
	 "action, prefixes, services, rate_pps, burst, description)"},
	{"link missing mac", "links:\n  l1: {port: p0}\n",
	 "t.yaml:2: links.l1.next_hop_mac: missing field 'next_hop_mac'"},
	{"group missing members", BASE_LINKS "link_groups:\n  g: {description: x}\n",
	 "t.yaml:5: link_groups.g.members: missing field 'members'"},
	{"default missing action", "default: {description: x}\n",
	 "t.yaml:1: default.action: missing field 'action'"},
	{"residency any not alone",
	 BASE_REGIONS BASE_SERVICES
	 "residency:\n  - {name: r, region: in, services: [any, dns], allowed_tags: [in]}\n",
	 "t.yaml:10: residency[0].services[0]: 'any' must stand alone"},
	{"residency missing services",
	 BASE_REGIONS BASE_SERVICES "residency:\n  - {name: r, region: in, allowed_tags: [in]}\n",
	 "t.yaml:10: residency[0].services: missing field 'services' (a list, or [any])"},
	{"residency missing name", "residency:\n  - {region: in}\n",
	 "t.yaml:2: residency[0].name: missing field 'name'"},
	{"content not a bool",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: payload, pattern: x, literal: yes, services: "
	 "[https], action: drop}\n",
	 "t.yaml:13: content_rules[0].literal: must be true or false"},
	{"content bad action",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS "content_rules:\n  - {name: c, field: payload, "
					       "pattern: x, services: [https], action: block}\n",
	 "t.yaml:13: content_rules[0].action: action must be count, drop, mirror or steer, not "
	 "'block'"},
	{"content mirror without to",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS "content_rules:\n  - {name: c, field: payload, "
					       "pattern: x, services: [https], action: mirror}\n",
	 "t.yaml:13: content_rules[0].to: action 'mirror' needs 'to'"},
	{"content missing pattern",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: payload, services: [https], action: drop}\n",
	 "t.yaml:13: content_rules[0].pattern: missing field 'pattern' (or 'names' / "
	 "'names_file' / 'unreadable')"},
	/* unreadable: true (fail closed) stands alone, on a name field only */
	{"content unreadable on payload",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: payload, unreadable: true, services: [https], "
	 "action: drop}\n",
	 "t.yaml:13: content_rules[0].field: unreadable matches a name that cannot be read: "
	 "tls_sni, http_host or dns_qname, not payload"},
	{"content unreadable with pattern",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: tls_sni, unreadable: true, pattern: x, services: "
	 "[https], action: drop}\n",
	 "t.yaml:13: content_rules[0].unreadable: a rule has unreadable: true or 'pattern', not "
	 "both"},
	{"content unreadable with names",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: http_host, unreadable: true, names: [a.example], "
	 "services: [https], action: drop}\n",
	 "t.yaml:13: content_rules[0].unreadable: a rule has unreadable: true or 'names', not "
	 "both"},
	{"content unreadable false",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: tls_sni, unreadable: false, services: [https], "
	 "action: drop}\n",
	 "t.yaml:13: content_rules[0].unreadable: must be true (a rule that matches unreadable "
	 "names; without it, give a pattern or names)"},
	{"content unreadable caseless",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: tls_sni, unreadable: true, caseless: true, "
	 "services: [https], action: drop}\n",
	 "t.yaml:13: content_rules[0].caseless: an unreadable rule matches no text: 'caseless' is "
	 "for patterns"},
	{"content unreadable literal",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: dns_qname, unreadable: true, literal: false, "
	 "services: [dns], action: count}\n",
	 "t.yaml:13: content_rules[0].literal: an unreadable rule matches no text: 'literal' is "
	 "for patterns"},
	{"content unreadable steer on tcp",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "content_rules:\n  - {name: c, field: tls_sni, unreadable: true, services: [https], "
	 "action: steer, to: l1}\n",
	 "t.yaml:13: content_rules[0].action: steer decides per packet, so its scope must be UDP "
	 "only: service 'https' has tcp ports (a tcp flow would change link mid-stream)"},
	{"content unreadable residency",
	 BASE_REGIONS BASE_SERVICES BASE_LINKS
	 "residency: [{name: keep, region: in, services: [dns], allowed_tags: "
	 "[in]}]\ncontent_rules:\n  - {name: c, field: dns_qname, unreadable: true, services: "
	 "[dns], action: mirror, to: l2}\n",
	 "t.yaml:14: content_rules[0]: breaks residency rule 'keep': mirrors region 'in' traffic "
	 "to link 'l2' (no tags), but the rule allows service 'dns' only on links tagged in"},
	{"filter bad redirect", "filters: {redirect: xdp}\n",
	 "t.yaml:1: filters.redirect: must be 'af_xdp' or 'kernel', not 'xdp'"},
	{"filter rule bad action",
	 "filters:\n  rules:\n    - {name: a, action: block, prefixes: [10.0.0.0/8]}\n",
	 "t.yaml:3: filters.rules[0].action: must be 'pass', 'rate' or 'drop', not 'block'"},
	{"filter rule no action", "filters:\n  rules:\n    - {name: a, prefixes: [10.0.0.0/8]}\n",
	 "t.yaml:3: filters.rules[0].action: missing field 'action' (pass or drop)"},
	{"filter rule no name",
	 "filters:\n  rules:\n    - {action: drop, prefixes: [10.0.0.0/8]}\n",
	 "t.yaml:3: filters.rules[0].name: missing field 'name'"},
	{"filter burst range",
	 "filters:\n  rules:\n    - {name: a, action: rate, rate_pps: 5, burst: 0, prefixes: "
	 "[10.0.0.0/8]}\n",
	 "t.yaml:3: filters.rules[0].burst: 0 is out of range 1..100000000"},
	{"nul byte in key", "{\"regions\": {\"a\\u0000b\": {}}}",
	 "t.yaml:1: JSON syntax: NUL byte in object key not supported near '\"a\\u0000b\"' (column "
	 "23)"},
	{"nul byte in a yaml key", "regions:\n  \"in\\0evil\": {}\n",
	 "t.yaml:2: NUL byte inside a key"},
	/* 1.0 and 1e0 are reals in JSON as in YAML: no integer field takes one. */
	{"json real as integer", "{\"version\": 1.0}",
	 "t.yaml: version: '1.0' is not a whole number"},
	{"json exponent as integer", "{\"version\": 1e0}",
	 "t.yaml: version: '1.0' is not a whole number"},
	{"yaml real as integer", "version: 1.0\n",
	 "t.yaml:1: version: '1.0' is not a whole number"},
	{"nul byte in value", "{\"description\": \"a\\u0000b\"}",
	 "t.yaml:1: JSON syntax: a string holds \\u0000 (a NUL character) near "
	 "'\"a\\u0000b\"' (column 26)"},
};

static void test_bad_documents(void **state)
{
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct fwd_err err;
		struct fwd_table *t = load(bad_cases[i].doc, &err);
		char buf[1024];

		if (t != NULL) {
			printf("case '%s': accepted, expected: %s\n", bad_cases[i].name,
			       bad_cases[i].error);
			fwd_table_free(t);
			failed++;
			continue;
		}
		fwd_err_str(&err, buf, sizeof(buf));
		if (strcmp(buf, bad_cases[i].error) != 0) {
			printf("case '%s':\n  got:      %s\n  expected: %s\n", bad_cases[i].name,
			       buf, bad_cases[i].error);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* ---- fwd_schema.def: the names of the document, spelled once ---- */

/* Every name round-trips name -> id -> name within its scope; the scopes
 * partition the ids; the word indexes are the enums' values. */
static void test_schema_round_trip(void **state)
{
	unsigned next = 0;

	(void)state;
	for (unsigned sc = 0; sc < FWD_SC_MAX; sc++) {
		const struct fwd_scope_info *si = &fwd_scopes[sc];

		assert_non_null(si->name);
		assert_int_equal(si->begin, next); /* contiguous, in .def order */
		assert_true(si->end > si->begin); /* no empty scope */
		next = si->end;
		for (unsigned id = si->begin; id < si->end; id++) {
			const char *name = fwd_schema_name((enum fwd_schema)id);

			assert_non_null(name);
			assert_true(name[0] != '\0');
			assert_int_equal(fwd_schema_scope((enum fwd_schema)id), sc);
			assert_int_equal(fwd_schema_lookup((enum fwd_scope)sc, name), id);
			assert_int_equal(fwd_schema_index((enum fwd_scope)sc, name),
					 id - si->begin);
			assert_string_equal(fwd_schema_name((enum fwd_schema)fwd_schema_lookup(
						    (enum fwd_scope)sc, name)),
					    name);
		}
	}
	assert_int_equal(next, FWD_SCHEMA_MAX);
	assert_null(fwd_schema_name(FWD_SCHEMA_MAX));
	assert_int_equal(fwd_schema_scope(FWD_SCHEMA_MAX), FWD_SC_MAX);
	assert_int_equal(fwd_schema_lookup(FWD_SC_LINK, "nexthop_mac"), -1);
	assert_int_equal(fwd_schema_lookup(FWD_SC_LINK, "members"), -1); /* a GROUP field */
	assert_int_equal(fwd_schema_lookup(FWD_SC_MAX, "port"), -1);

	/* The expansion names every id after its line (spot checks). */
	assert_string_equal(fwd_schema_name(FWD_F_LINK_PORT), "port");
	assert_string_equal(FWD_KEY_NAME(LINK, NEXT_HOP_MAC), "next_hop_mac");
	assert_string_equal(FWD_KEY_NAME(DOC, CONTENT_RULES), "content_rules");
	assert_string_equal(FWD_WORD_NAME(LINK_STATE, DOWN), "down");
	assert_string_equal(FWD_WORD_NAME(BUILTIN, OTHER), "other");

	/* Word indexes are the values the table stores. */
	assert_int_equal(FWD_CONTENT_FIELDS, 4);
	assert_int_equal(FWD_CONTENT_ACTIONS, 4);
	assert_int_equal(FWD_CF_DNS_QNAME, 3);
	assert_int_equal(FWD_CA_STEER, 3);
	assert_string_equal(fwd_content_field_name(FWD_CF_TLS_SNI), "tls_sni");
	assert_string_equal(fwd_content_action_name(FWD_CA_MIRROR), "mirror");
	assert_int_equal(fwd_schema_index(FWD_SC_CONTENT_FIELD, "http_host"), FWD_CF_HTTP_HOST);
	assert_int_equal(fwd_schema_index(FWD_SC_FILTER_ACTION, "rate"), FWD_FLT_RATE);

	/* Protocol words and their numbers; 'any' is no single protocol. */
	assert_int_equal(fwd_proto_by_name("tcp"), FWD_PROTO_TCP);
	assert_int_equal(fwd_proto_by_name("icmpv6"), FWD_PROTO_ICMPV6);
	assert_true(fwd_proto_by_name("any") < 0);
	assert_true(fwd_proto_by_name("6") < 0);
	assert_true(fwd_proto_by_name("tcpx") < 0);
	for (unsigned id = fwd_scopes[FWD_SC_PROTO].begin; id < fwd_scopes[FWD_SC_PROTO].end;
	     id++) {
		char buf[16];
		int n = fwd_proto_by_name(fwd_schema_names[id]);

		if (id == FWD_V_PROTO_ANY)
			continue;
		assert_true(n >= 0);
		assert_string_equal(fwd_proto_name((uint8_t)n, buf, sizeof(buf)),
				    fwd_schema_names[id]);
	}
}

/* Names within one scope are distinct (a duplicate would make lookups take
 * the first and "expected one of" list it twice). */
/* One wire (port, next hop, VLAN) under two names with other tags: a rule
 * could allow under one name what it refuses under the other; and a null
 * residency section. Refused by fwd_table_check_written() (a document
 * being written), while the table still parses: one stored before the
 * check must load and run. */
static void test_one_wire_one_set_of_tags(void **state)
{
	static const struct {
		const char *doc, *want;
	} cases[] = {
		{BASE_REGIONS BASE_SERVICES
		 "links:\n  l1: {port: p0, next_hop_mac: \"02:00:00:00:00:01\", vlan: 7, tags: "
		 "[in]}\n"
		 "  l2: {port: p1, next_hop_mac: \"02:00:00:00:00:01\", vlan: 7, tags: [sg]}\n"
		 "  l3: {port: p0, next_hop_mac: \"02:00:00:00:00:02\", vlan: 7, tags: [sg]}\n"
		 "  l4: {port: p0, next_hop_mac: \"02:00:00:00:00:01\", tags: [sg]}\n"
		 "  l5: {port: p0, next_hop_mac: \"02-00-00-00-00-01\", vlan: 7, tags: [in, sg]}\n",
		 "t.yaml:14: links.l5: link 'l5' leaves by the same port 'p0', next hop and VLAN "
		 "as "
		 "link 'l1' (one wire), but is tagged in, sg where 'l1' is tagged in: give both "
		 "the "
		 "tags of where that wire goes"},
		{BASE_REGIONS BASE_SERVICES
		 "links:\n  l1: {port: p0, next_hop_mac: \"02:00:00:00:00:01\", tags: [in]}\n"
		 "  l2:\n    port: p0\n    next_hop_mac: \"02:00:00:00:00:01\"\n",
		 "t.yaml:12: links.l2: link 'l2' leaves by the same port 'p0', next hop and VLAN "
		 "as "
		 "link 'l1' (one wire), but is untagged where 'l1' is tagged in: give both the "
		 "tags of where that wire goes"},
		/* "residency:" with every rule commented out: null, which read as
		 * no section; refused when written, not when loaded */
		{BASE_REGIONS BASE_SERVICES "residency:\n#  - {name: r, region: in, services: "
					    "[https]}\n",
		 "t.yaml:9: residency: has no value (null: every rule commented out?); write "
		 "'residency: []' for a table with no residency rules, or leave the section out"},
		{BASE_REGIONS BASE_SERVICES "residency: []\n", NULL},
		/* a YAML tag is read as if it were not there: refused when written
		 * (but !!str, which says what every value is: text) */
		{BASE_REGIONS BASE_SERVICES "description: !!binary aGVsbG8=\n",
		 "t.yaml:9: YAML tag '!!binary' is not read (every value is text, typed by its "
		 "field): remove it"},
		{BASE_REGIONS "services: !!python/object:os.system\n  https: [tcp/443]\n",
		 "t.yaml:6: YAML tag '!!python/object:os.system' is not read (every value is text, "
		 "typed by its field): remove it"},
		{BASE_REGIONS BASE_SERVICES "description: !!str 010\n", NULL},
		/* an alias: the same tags in another order, and other wires */
		{BASE_REGIONS BASE_SERVICES
		 "links:\n  l1: {port: p0, next_hop_mac: \"02:00:00:00:00:01\", tags: [in, sg]}\n"
		 "  l2: {port: p0, next_hop_mac: \"02:00:00:00:00:01\", tags: [sg, in]}\n"
		 "  l3: {port: p0, next_hop_mac: \"02:00:00:00:00:01\", vlan: 9}\n"
		 "  l4: {port: p1, next_hop_mac: \"02:00:00:00:00:01\"}\n",
		 NULL},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fwd_err err = {0};
		struct fwd_table *t = load(cases[i].doc, &err);
		char b[1024];
		int rc;

		if (t == NULL)
			fail_msg("case %zu did not parse: %s", i, fwd_err_str(&err, b, sizeof(b)));
		rc = fwd_table_check_written(t, &err);
		fwd_table_free(t);
		if (cases[i].want == NULL) {
			if (rc)
				fail_msg("case %zu refused: %s", i,
					 fwd_err_str(&err, b, sizeof(b)));
			continue;
		}
		assert_int_equal(rc, -EINVAL);
		assert_string_equal(fwd_err_str(&err, b, sizeof(b)), cases[i].want);
	}
}

static void test_schema_names_unique(void **state)
{
	(void)state;
	for (unsigned sc = 0; sc < FWD_SC_MAX; sc++)
		for (unsigned a = fwd_scopes[sc].begin; a < fwd_scopes[sc].end; a++)
			for (unsigned b = a + 1; b < fwd_scopes[sc].end; b++)
				if (strcmp(fwd_schema_names[a], fwd_schema_names[b]) == 0)
					fail_msg("scope %s names '%s' twice", fwd_scopes[sc].name,
						 fwd_schema_names[a]);
}

/* Each map of the document refuses an unknown field with the list it gave
 * before fwd_schema.def (literal below), and that list is the scope's keys. */
static void test_schema_key_lists(void **state)
{
	static const struct {
		enum fwd_scope sc;
		const char *doc, *error;
	} cases[] = {
		{FWD_SC_DOC, "bogus: 1\n",
		 "t.yaml:1: bogus: unknown field 'bogus' (expected one of: version, description, "
		 "regions, services, links, link_groups, policies, default, residency, filters, "
		 "content_rules)"},
		{FWD_SC_REGION, "regions:\n  in: {bogus: 1}\n",
		 "t.yaml:2: regions.in.bogus: unknown field 'bogus' (expected one of: prefixes, "
		 "description)"},
		{FWD_SC_LINK, "links:\n  l1: {bogus: 1}\n",
		 "t.yaml:2: links.l1.bogus: unknown field 'bogus' (expected one of: port, "
		 "next_hop_mac, vlan, tags, state, description)"},
		{FWD_SC_GROUP, BASE_LINKS "link_groups:\n  g: {bogus: 1}\n",
		 "t.yaml:5: link_groups.g.bogus: unknown field 'bogus' (expected one of: members, "
		 "description)"},
		{FWD_SC_POLICY, "policies:\n  - {bogus: 1}\n",
		 "t.yaml:2: policies[0].bogus: unknown field 'bogus' (expected one of: region, "
		 "service, action, to, mirror, description)"},
		{FWD_SC_DEFAULT, "default: {bogus: 1}\n",
		 "t.yaml:1: default.bogus: unknown field 'bogus' (expected one of: action, to, "
		 "mirror, description)"},
		{FWD_SC_RESIDENCY, "residency:\n  - {bogus: 1}\n",
		 "t.yaml:2: residency[0].bogus: unknown field 'bogus' (expected one of: name, "
		 "region, services, allowed_tags, description)"},
		{FWD_SC_FILTERS, "filters: {bogus: 1}\n",
		 "t.yaml:1: filters.bogus: unknown field 'bogus' (expected one of: default, "
		 "non_ip, malformed, redirect, rules, description)"},
		{FWD_SC_FILTER_RULE, "filters:\n  rules:\n    - {bogus: 1}\n",
		 "t.yaml:3: filters.rules[0].bogus: unknown field 'bogus' (expected one of: name, "
		 "action, prefixes, services, rate_pps, burst, description)"},
		{FWD_SC_CONTENT, "content_rules:\n  - {bogus: 1}\n",
		 "t.yaml:2: content_rules[0].bogus: unknown field 'bogus' (expected one of: name, "
		 "field, pattern, names, names_file, unreadable, literal, caseless, services, "
		 "regions, action, to, description)"},
		{FWD_SC_NAMES_FILE,
		 "services: {dns: [udp/53]}\ncontent_rules:\n  - {name: a, field: dns_qname, "
		 "services: [dns], action: count, names_file: {bogus: 1}}\n",
		 "t.yaml:3: content_rules[0].names_file.bogus: unknown field 'bogus' (expected one "
		 "of: path, hash, text)"},
	};
	int key_scope[FWD_SC_MAX] = {0}, tested[FWD_SC_MAX] = {0};

	(void)state;
#define FWD_KEY(sc, id, name) key_scope[FWD_SC_##sc] = 1;
#include "fwd_schema.def"
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fwd_err err;
		struct fwd_table *t = load(cases[i].doc, &err);
		char buf[1024], list[512] = "", want[600];
		unsigned n;
		const char *const *keys = fwd_schema_keys(cases[i].sc, &n);
		size_t off = 0;

		assert_null(t);
		fwd_err_str(&err, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].error);
		for (unsigned k = 0; k < n; k++)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
						k ? ", " : "", keys[k]);
		snprintf(want, sizeof(want), "(expected one of: %s)", list);
		assert_non_null(strstr(cases[i].error, want));
		tested[cases[i].sc] = 1;
	}
	/* Every scope with fields is checked here, and only those. */
	for (unsigned sc = 0; sc < FWD_SC_MAX; sc++)
		if (key_scope[sc] != tested[sc])
			fail_msg("scope %s: %s", fwd_scopes[sc].name,
				 key_scope[sc] ? "has fields but no unknown-field case"
					       : "has no fields");
}

/* ---- the sections fwd_table_from_doc() walks ---- */

/* Every top-level field of fwd_schema.def's DOC scope is one section's, and
 * only once: a field added to the .def without a section would be accepted
 * and ignored. */
static void test_sections_cover_doc(void **state)
{
	const struct fwd_scope_info *doc = &fwd_scopes[FWD_SC_DOC];
	int seen[FWD_SCHEMA_MAX] = {0};
	enum fwd_schema k;
	unsigned i;

	(void)state;
	for (i = 0; i < FWD_SCHEMA_MAX && (k = fwd_table_section(i)) != FWD_SCHEMA_MAX; i++) {
		if (fwd_schema_scope(k) != FWD_SC_DOC)
			fail_msg("section %u is '%s', not a top-level field", i,
				 fwd_schema_name(k));
		seen[k]++;
	}
	for (unsigned id = doc->begin; id < doc->end; id++)
		if (seen[id] != 1)
			fail_msg("top-level field '%s' has %d sections", fwd_schema_names[id],
				 seen[id]);
	assert_int_equal(i, doc->end - doc->begin);
}

/* A document wrong in every section is refused for the first section in
 * validation order, whatever the order of its text; fixing that one moves
 * the refusal to the next. Policies come before default: the policies field
 * is read first, then the default, then each policy. */
static void test_section_order(void **state)
{
	static const struct {
		const char *line, *path, *reason;
	} order[] = {
		{"version: 2", "version", "2 is out of range 1..1"},
		{"description: [x]", "description", "expected a value, got list"},
		{"regions: 1", "regions", "expected a map, got scalar"},
		{"services: 1", "services", "expected a map, got scalar"},
		{"links: 1", "links", "expected a map, got scalar"},
		{"link_groups: 1", "link_groups", "expected a map, got scalar"},
		{"policies: 1", "policies", "expected a list, got scalar"},
		{"default: 1", "default", "expected a map, got scalar"},
		{"residency: 1", "residency", "expected a list, got scalar"},
		{"filters: 1", "filters", "expected a map, got scalar"},
		{"content_rules: 1", "content_rules", "expected a list, got scalar"},
	};
	const size_t n = sizeof(order) / sizeof(order[0]);

	(void)state;
	for (size_t first = 0; first < n; first++) {
		char doc[512] = "";
		struct fwd_err err;
		size_t off = 0;

		/* Last section first in the text: the first error is found by the walk. */
		for (size_t k = n; k-- > first;)
			off += (size_t)snprintf(doc + off, sizeof(doc) - off, "%s\n",
						order[k].line);
		assert_null(load(doc, &err));
		assert_int_equal(err.line, n - first);
		assert_string_equal(err.path, order[first].path);
		assert_string_equal(err.reason, order[first].reason);
	}
}

/* A growing document buffer for the limit tests (tables of 1,000s of lines). */
struct gbuf {
	char *p;
	size_t len, cap;
	uint32_t lines;
};

static void gb_add(struct gbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void gb_add(struct gbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = (b->cap + (size_t)n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	for (int i = 0; i < n; i++)
		b->lines += b->p[b->len + (size_t)i] == '\n';
	b->len += (size_t)n;
}

/* @doc refused at "t.yaml:@line: @path: @reason". */
static void t_refused_at(const char *doc, uint32_t line, const char *path, const char *reason)
{
	struct fwd_err err;
	struct fwd_table *t = load(doc, &err);
	char want[512], b[1024];

	if (t != NULL) {
		fwd_table_free(t);
		fail_msg("accepted, expected a refusal at %s", path);
	}
	snprintf(want, sizeof(want), "t.yaml:%u: %s: %s", line, path, reason);
	assert_string_equal(fwd_err_str(&err, b, sizeof(b)), want);
}

/* A table past one of its limits (mostly generated ones) is refused at the
 * first entry past the limit, with its path and line, not at the section
 * (whose line can be thousands of lines above). */
static void test_limits_name_the_entry_past_them(void **state)
{
	struct gbuf b = {0};
	uint32_t line;

	(void)state;
	b.cap = 1 << 16;
	b.p = malloc(b.cap);
	assert_non_null(b.p);

#define RESET() (b.len = 0, b.lines = 0, b.p[0] = '\0')
	/* regions: 4,000 and one more */
	RESET();
	gb_add(&b, "regions:\n");
	for (int i = 0; i <= FWD_MAX_REGIONS; i++)
		gb_add(&b, "  r%d: {prefixes: []}\n", i);
	t_refused_at(b.p, FWD_MAX_REGIONS + 2, "regions.r4000",
		     "more than 4000 regions: this is the first past the limit");

	/* services */
	RESET();
	gb_add(&b, BASE_REGIONS "services:\n");
	line = b.lines;
	for (int i = 0; i <= FWD_MAX_SERVICES; i++)
		gb_add(&b, "  s%d: [tcp/%d]\n", i, i + 1);
	t_refused_at(b.p, line + FWD_MAX_SERVICES + 1, "services.s4000",
		     "more than 4000 services: this is the first past the limit");

	/* links, and a link's tags */
	RESET();
	gb_add(&b, BASE_REGIONS BASE_SERVICES "links:\n");
	line = b.lines;
	for (int i = 0; i <= FWD_MAX_LINKS; i++)
		gb_add(&b, "  l%d: {port: p0, next_hop_mac: \"02:00:00:00:00:01\"}\n", i);
	t_refused_at(b.p, line + FWD_MAX_LINKS + 1, "links.l1024",
		     "more than 1024 links: this is the first past the limit");
	RESET();
	gb_add(&b, BASE_REGIONS BASE_SERVICES
	       "links:\n  l1:\n    port: p0\n    next_hop_mac: \"02:00:00:00:00:01\"\n    tags:\n");
	line = b.lines;
	for (int i = 0; i <= FWD_MAX_TAGS; i++)
		gb_add(&b, "      - t%d\n", i);
	t_refused_at(b.p, line + FWD_MAX_TAGS + 1, "links.l1.tags[16]",
		     "more than 16 tags: this is the first past the limit");

	/* link groups, and a group's members */
	RESET();
	gb_add(&b, BASE_REGIONS BASE_SERVICES BASE_LINKS "link_groups:\n");
	line = b.lines;
	for (int i = 0; i <= FWD_MAX_GROUPS; i++)
		gb_add(&b, "  g%d: {members: {l1: 1}}\n", i);
	t_refused_at(b.p, line + FWD_MAX_GROUPS + 1, "link_groups.g1024",
		     "more than 1024 link groups: this is the first past the limit");
	RESET();
	gb_add(&b, BASE_REGIONS BASE_SERVICES "links:\n");
	for (int i = 0; i <= FWD_MAX_GROUP_MEMBERS; i++)
		gb_add(&b, "  l%d: {port: p0, next_hop_mac: \"02:00:00:00:00:01\"}\n", i);
	gb_add(&b, "link_groups:\n  g:\n    members:\n");
	line = b.lines;
	for (int i = 0; i <= FWD_MAX_GROUP_MEMBERS; i++)
		gb_add(&b, "      l%d: 1\n", i);
	t_refused_at(b.p, line + FWD_MAX_GROUP_MEMBERS + 1, "link_groups.g.members.l64",
		     "more than 64 members in a group: this is the first past the limit");

	/* policies: 64,999 besides the default */
	RESET();
	gb_add(&b, BASE_REGIONS BASE_SERVICES BASE_LINKS "policies:\n");
	line = b.lines;
	for (int i = 0; i < FWD_MAX_POLICIES; i++)
		gb_add(&b, "  - {region: in, service: dns, action: local}\n");
	t_refused_at(b.p, line + FWD_MAX_POLICIES, "policies[64999]",
		     "more than 64999 policies: this is the first past the limit");

	/* residency rules, and a rule's services */
	RESET();
	gb_add(&b, BASE_REGIONS BASE_SERVICES BASE_LINKS "residency:\n");
	line = b.lines;
	for (int i = 0; i <= FWD_MAX_RESIDENCY; i++)
		gb_add(&b, "  - {region: in, services: [dns], allowed_tags: [in]}\n");
	t_refused_at(b.p, line + FWD_MAX_RESIDENCY + 1, "residency[1024]",
		     "more than 1024 residency rules: this is the first past the limit");
	RESET();
	gb_add(&b, BASE_REGIONS BASE_SERVICES BASE_LINKS
	       "residency:\n  - name: r\n    region: in\n    allowed_tags: [in]\n    services:\n");
	line = b.lines;
	for (int i = 0; i <= FWD_MAX_SERVICES; i++)
		gb_add(&b, "      - dns\n");
	t_refused_at(b.p, line + FWD_MAX_SERVICES + 1, "residency[0].services[4000]",
		     "more than 4000 services: this is the first past the limit");

	/* content rules and filter rules */
	RESET();
	gb_add(&b, BASE_REGIONS BASE_SERVICES BASE_LINKS "content_rules:\n");
	line = b.lines;
	for (int i = 0; i <= FWD_MAX_CONTENT_RULES; i++)
		gb_add(&b, "  - {name: c%d}\n", i);
	t_refused_at(b.p, line + FWD_MAX_CONTENT_RULES + 1, "content_rules[20000]",
		     "more than 20000 content rules: this is the first past the limit");
	RESET();
	gb_add(&b, BASE_REGIONS BASE_SERVICES BASE_LINKS "filters:\n  rules:\n");
	line = b.lines;
	for (int i = 0; i <= 4096; i++)
		gb_add(&b, "    - {action: drop, prefixes: [10.0.0.0/8]}\n");
	t_refused_at(b.p, line + 4097, "filters.rules[4096]",
		     "more than 4096 filter rules: this is the first past the limit");

	/* IPv6 prefixes over all regions: the first past the limit is in the
	 * second region */
	RESET();
	gb_add(&b, "regions:\n  a:\n    prefixes:\n");
	for (int i = 0; i < FWD_MAX_PREFIX6 - 1; i++)
		gb_add(&b, "      - 2001:db8:%x:%x::/64\n", i >> 16, i & 0xffff);
	gb_add(&b, "  b:\n    prefixes:\n      - 10.0.0.0/8\n      - 2001:db9::/64\n");
	line = b.lines;
	gb_add(&b, "      - 2001:db9:1::/64\n");
	t_refused_at(b.p, line + 1, "regions.b.prefixes[2]",
		     "more than 1000000 IPv6 prefixes: this is the first past the limit");
#undef RESET
	free(b.p);
}

static void test_deep_nesting_refused(void **state)
{
	char doc[256];
	struct fwd_err err;
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 40; i++)
		doc[n++] = '[';
	for (int i = 0; i < 40; i++)
		doc[n++] = ']';
	doc[n] = '\0';
	assert_null(load(doc, &err));
	assert_string_equal(err.reason, "nesting deeper than 32 levels");
}

/* Error reasons quote hostile bytes and may be truncated mid-character: they
 * are made valid UTF-8 (the API's JSON encoder refuses anything else; found by
 * fuzz_api, which got a 400 with no body). */
static void test_error_text_is_utf8(void **state)
{
	char a[] = "ok \xc3\xbc \xe7\x82 end \xc0\xaf \xff";
	struct fwd_err e;

	(void)state;
	fwd_utf8_clean(a);
	assert_string_equal(a, "ok \xc3\xbc ?"
			       "? end ?"
			       "? ?");
	/* The strict forms jansson refuses too: an overlong and a surrogate. */
	{
		char b[] = "a\xe0\x80\xaf"
			   "b\xed\xa0\x80"
			   "c";

		fwd_utf8_clean(b);
		assert_string_equal(b, "a??"
				       "?b??"
				       "?c");
	}
	fwd_err_set(&e, "f", 1, "p\x80", "bad '%s'", "\xe2\x82");
	assert_string_equal(e.path, "p?");
	assert_string_equal(e.reason, "bad '?"
				      "?'");
}

/* One definition of a control character, for every check and every
 * escaper: C0, DEL and C1 (U+0080..U+009F, UTF-8 c2 80..c2 9f: U+009B is
 * CSI, an escape sequence's start as ESC [ is). The one-line check refuses
 * the line and paragraph separators too. A probe once got U+009B into the
 * log and the history raw; text in other languages stays as it is. */
static void test_control_characters(void **state)
{
	static const struct {
		const char *in, *reason;
	} refused[] = {
		{"a\nb", "'comment' must be one line of text: byte 0x0a at offset 1 is a control "
			 "character"},
		{"a\x7f", "'comment' must be one line of text: byte 0x7f at offset 1 is a control "
			  "character"},
		{"a\xc2\x9b"
		 "31m",
		 "'comment' must be one line of text: U+009B at offset 1 is a control character"},
		{"\xc2\x80", "'comment' must be one line of text: U+0080 at offset 0 is a control "
			     "character"},
		{"\xc3\xa9\xc2\x9f", "'comment' must be one line of text: U+009F at offset 2 is a "
				     "control character"},
		{"x\xe2\x80\xa8y", "'comment' must be one line of text: U+2028 at offset 1 is a "
				   "line separator"},
		{"\xe2\x80\xa9", "'comment' must be one line of text: U+2029 at offset 0 is a "
				 "paragraph separator"},
		/* the bidirectional overrides, embeddings and isolates: a
		 * description once carried U+202E, which shows what follows
		 * it reversed */
		{"ok \xe2\x80\xae"
		 "cba",
		 "'comment' must be one line of text: U+202E at offset 3 is a bidirectional "
		 "control (it reorders what a terminal shows)"},
		{"\xe2\x80\xaa", "'comment' must be one line of text: U+202A at offset 0 is a "
				 "bidirectional control (it reorders what a terminal shows)"},
		{"\xe2\x81\xa6", "'comment' must be one line of text: U+2066 at offset 0 is a "
				 "bidirectional control (it reorders what a terminal shows)"},
		{"\xe2\x81\xa9", "'comment' must be one line of text: U+2069 at offset 0 is a "
				 "bidirectional control (it reorders what a terminal shows)"},
	};
	/* é, 漢字, U+00A0 and U+00BF (just past C1), U+2027 (just before the
	 * separators) */
	static const char *const kept[] = {
		"Jos\xc3\xa9",	"\xe6\xbc\xa2\xe5\xad\x97", "\xc2\xa0\xc2\xbf",
		"\xe2\x80\xa7", "\xe2\x80\xaf\xe2\x81\xa5", "\xe2\x81\xaa",
		"plain text"};
	char why[128], out[64];
	size_t taken, o;

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		why[0] = '\0';
		assert_int_equal(fwd_text_check(refused[i].in, strlen(refused[i].in), "comment",
						why, sizeof(why)),
				 -EINVAL);
		assert_string_equal(why, refused[i].reason);
	}
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		assert_int_equal(
			fwd_text_check(kept[i], strlen(kept[i]), "comment", why, sizeof(why)), 0);
		/* ... and printed as they are */
		assert_string_equal(fwd_escape_controls(kept[i], out, sizeof(out)), kept[i]);
	}
	/* Printed: each byte of a control character as \xNN, C1's both. */
	assert_string_equal(fwd_escape_controls("a\xc2\x9b"
						"31m\x1b[0m\x7f",
						out, sizeof(out)),
			    "a\\xc2\\x9b31m\\x1b[0m\\x7f");
	/* ... and the line and paragraph separators, each of their bytes: a
	 * log reader or a browser breaks the line at them. */
	assert_string_equal(
		fwd_escape_controls("x\xe2\x80\xa8y\xe2\x80\xa9z\xe2\x80\xa7", out, sizeof(out)),
		"x\\xe2\\x80\\xa8y\\xe2\\x80\\xa9z\xe2\x80\xa7");
	assert_string_equal(fwd_escape_controls("a\xe2\x80\xae"
						"b",
						out, sizeof(out)),
			    "a\\xe2\\x80\\xaeb");
	o = fwd_escape_chunk("a\n\xe2\x80\xa8", 5, &taken, out, sizeof(out));
	assert_int_equal(taken, 5);
	assert_memory_equal(out, "a\n\\xe2\\x80\\xa8", o);
	/* A byte that is not UTF-8 is escaped on its own: a lone 0x9b is CSI
	 * to a terminal in an 8-bit mode; so is a sequence cut short. */
	assert_string_equal(fwd_escape_controls("a\x9b"
						"31m \xc3 \xff \xe2\x80 \xc0\xaf",
						out, sizeof(out)),
			    "a\\x9b31m \\xc3 \\xff \\xe2\\x80 \\xc0\\xaf");
	/* Cut short at a character's end, never inside it. */
	assert_string_equal(fwd_escape_controls("\xc3\xa9\xc3\xa9", out, 4), "\xc3\xa9");
	/* The stream form keeps newline and tab, nothing else. */
	o = fwd_escape_chunk("a\n\xc2\x85\tb\x9b", 7, &taken, out, sizeof(out));
	assert_int_equal(taken, 7);
	assert_int_equal(o, strlen("a\n\\xc2\\x85\tb\\x9b"));
	assert_memory_equal(out, "a\n\\xc2\\x85\tb\\x9b", o);
}

/* ---- descriptions ---- */

/* A description at every level the format allows it. */
#define DESC_DOC                                                                                   \
	"description: \"the table,\\n\\tin two lines\"\n"                                          \
	"regions:\n"                                                                               \
	"  in: {prefixes: [10.0.0.0/8], description: users in India}\n"                            \
	"  sg: {prefixes: [11.0.0.0/8]}\n"                                                         \
	"  br: {prefixes: [12.0.0.0/8], description: ''}\n"                                        \
	"services: {https: [tcp/443], dns: [udp/53]}\n"                                            \
	"links:\n"                                                                                 \
	"  l1: {port: p0, next_hop_mac: '02:00:00:00:00:01', tags: [in], description: "            \
	"'Jos\xc3\xa9 link'}\n"                                                                    \
	"  l2: {port: p1, next_hop_mac: '02:00:00:00:00:02', description: second}\n"               \
	"link_groups: {g: {members: {l1: 1, l2: 1}, description: both}}\n"                         \
	"policies:\n"                                                                              \
	"  - {region: in, service: https, action: steer, to: g, description: india web}\n"         \
	"  - {region: sg, service: any, action: drop}\n"                                           \
	"default: {action: steer, to: l1, description: the rest}\n"                                \
	"residency: [{name: r, region: in, services: [https], allowed_tags: [in], description: "   \
	"stays}]\n"                                                                                \
	"filters:\n"                                                                               \
	"  default: pass\n"                                                                        \
	"  description: the edge\n"                                                                \
	"  rules:\n"                                                                               \
	"    - {name: bogons, action: drop, prefixes: [0.0.0.0/8], description: no bogons}\n"      \
	"    - {name: telnet, action: drop, services: [tcp/23]}\n"                                 \
	"content_rules:\n"                                                                         \
	"  - {name: c, field: tls_sni, pattern: x, services: [https], action: count, "             \
	"description: count x}\n"

static void test_descriptions(void **state)
{
	struct fwd_err err;
	struct fwd_table *t = load(DESC_DOC, &err);
	char buf[512];

	(void)state;
	if (t == NULL)
		fail_msg("%s", fwd_err_str(&err, buf, sizeof(buf)));
	assert_string_equal(t->description, "the table,\n\tin two lines"); /* lines and tabs */
	assert_non_null(t->region_desc);
	assert_string_equal(fwd_table_desc(t, t->region_desc[0]), "");
	assert_string_equal(fwd_table_desc(t, t->region_desc[fwd_table_region_id(t, "in")]),
			    "users in India");
	assert_string_equal(fwd_table_desc(t, t->region_desc[fwd_table_region_id(t, "sg")]), "");
	assert_int_equal(t->region_desc[fwd_table_region_id(t, "br")], 0);
	assert_string_equal(fwd_table_desc(t, t->links[0].desc), "Jos\xc3\xa9 link");
	assert_string_equal(fwd_table_desc(t, t->links[1].desc), "second");
	assert_string_equal(fwd_table_desc(t, t->groups[0].desc), "both");
	assert_string_equal(fwd_table_desc(t, t->policies[0].desc), "the rest");
	assert_string_equal(fwd_table_desc(t, t->policies[1].desc), "india web");
	assert_int_equal(t->policies[2].desc, 0);
	assert_string_equal(fwd_table_desc(t, t->residency[0].desc), "stays");
	assert_string_equal(fwd_table_desc(t, t->filters.desc), "the edge");
	assert_string_equal(fwd_table_desc(t, t->filters.rules[0].desc), "no bogons");
	assert_int_equal(t->filters.rules[1].desc, 0);
	assert_string_equal(fwd_table_desc(t, t->content[0].desc), "count x");
	/* An offset past the pool is no description, not a read past it. */
	assert_string_equal(fwd_table_desc(t, (uint32_t)t->descs_len), "");
	fwd_table_free(t);

	/* A table with none has no pool and reads "" everywhere. */
	t = load(BASE_REGIONS BASE_LINKS, &err);
	assert_non_null(t);
	assert_null(t->descs);
	assert_string_equal(fwd_table_desc(t, t->links[0].desc), "");
	assert_string_equal(fwd_table_desc(t, t->region_desc[1]), "");
	fwd_table_free(t);
}

/* Each description is checked as the table's own is: a value, one line of
 * text (lines and tabs taken), at most FWD_DESC_MAX bytes (a longer one was once cut short in
 * silence, and the others were not read at all). Refused naming the field. */
#define T "'description' must be text (line breaks and tabs are): "
static void test_bad_descriptions(void **state)
{
	char long_desc[FWD_DESC_MAX + 2], doc[FWD_DESC_MAX + 1024], buf[1024], want[512];
	static const struct {
		const char *doc, *error;
	} cases[] = {
		{"regions:\n  in: {prefixes: [10.0.0.0/8], description: \"a\\rb\"}\n",
		 "t.yaml:2: regions.in.description: " T
		 "byte 0x0d at offset 1 is a control character"},
		{BASE_LINKS "link_groups: {g: {members: {l1: 1}, description: \"\\e[31m\"}}\n",
		 "t.yaml:4: link_groups.g.description: " T
		 "byte 0x1b at offset 0 is a control character"},
		{BASE_LINKS "default: {action: drop, description: \"x\\u009by\"}\n",
		 "t.yaml:4: default.description: " T "U+009B at offset 1 is a control character"},
		{BASE_LINKS "policies: [{region: any, service: other, action: drop, description: "
			    "[a]}]\n",
		 "t.yaml:4: policies[0].description: expected a value, got list"},
		{"description: \"two\\n\\u2028lines\"\n",
		 "t.yaml:1: description: " T "U+2028 at offset 4 is a line separator"},
		{"filters: {description: \"\\x7f\"}\n",
		 "t.yaml:1: filters.description: " T
		 "byte 0x7f at offset 0 is a control character"},
	};
	/* Too long, at every level; FWD_DESC_MAX bytes itself is taken. */
	static const struct {
		const char *fmt, *path;
		int line;
	} longs[] = {
		{"description: %s\n", "description", 1},
		{"regions:\n  in: {prefixes: [10.0.0.0/8], description: %s}\n",
		 "regions.in.description", 2},
		{"links:\n  l1: {port: p0, next_hop_mac: '02:00:00:00:00:01', description: %s}\n",
		 "links.l1.description", 2},
		{BASE_LINKS "link_groups: {g: {members: {l1: 1}, description: %s}}\n",
		 "link_groups.g.description", 4},
		{BASE_LINKS "policies: [{region: any, service: other, action: drop, description: "
			    "%s}]\n",
		 "policies[0].description", 4},
		{"default: {action: drop, description: %s}\n", "default.description", 1},
		{BASE_REGIONS BASE_SERVICES BASE_LINKS
		 "residency: [{name: r, region: in, services: [https], allowed_tags: [in], "
		 "description: %s}]\n",
		 "residency[0].description", 12},
		{"filters: {description: %s}\n", "filters.description", 1},
		{"filters: {rules: [{name: a, action: drop, prefixes: [10.0.0.0/8], description: "
		 "%s}]}\n",
		 "filters.rules[0].description", 1},
		{BASE_SERVICES "content_rules: [{name: c, field: payload, pattern: x, services: "
			       "[https], action: count, description: %s}]\n",
		 "content_rules[0].description", 4},
	};
	struct fwd_err err;
	struct fwd_table *t;
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if ((t = load(cases[i].doc, &err)) != NULL) {
			printf("case %zu: accepted, expected: %s\n", i, cases[i].error);
			fwd_table_free(t);
			failed++;
			continue;
		}
		if (strcmp(fwd_err_str(&err, buf, sizeof(buf)), cases[i].error) != 0) {
			printf("case %zu:\n  got:      %s\n  expected: %s\n", i, buf,
			       cases[i].error);
			failed++;
		}
	}
	for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++) {
		for (size_t len = FWD_DESC_MAX; len <= FWD_DESC_MAX + 1; len++) {
			memset(long_desc, 'd', len);
			long_desc[len] = '\0';
			snprintf(doc, sizeof(doc), longs[i].fmt, long_desc);
			t = load(doc, &err);
			if (len == FWD_DESC_MAX) {
				if (t == NULL) {
					printf("long %zu: %d bytes refused: %s\n", i, FWD_DESC_MAX,
					       fwd_err_str(&err, buf, sizeof(buf)));
					failed++;
				}
				fwd_table_free(t);
				continue;
			}
			snprintf(want, sizeof(want),
				 "t.yaml:%d: %s: a description is at most %d bytes, not %zu",
				 longs[i].line, longs[i].path, FWD_DESC_MAX, len);
			if (t != NULL) {
				printf("long %zu: accepted, expected: %s\n", i, want);
				fwd_table_free(t);
				failed++;
			} else if (strcmp(fwd_err_str(&err, buf, sizeof(buf)), want) != 0) {
				printf("long %zu:\n  got:      %s\n  expected: %s\n", i, buf, want);
				failed++;
			}
		}
	}
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_yaml),
		cmocka_unit_test(test_valid_json_same_model),
		cmocka_unit_test(test_empty_sections),
		cmocka_unit_test(test_filters_section),
		cmocka_unit_test(test_filter_v6_lengths_counted_once),
		cmocka_unit_test(test_filter_malformed_policy),
		cmocka_unit_test(test_content_rules_section),
		cmocka_unit_test(test_uppercase_patterns_accepted),
		cmocka_unit_test(test_bad_documents),
		cmocka_unit_test(test_one_wire_one_set_of_tags),
		cmocka_unit_test(test_schema_round_trip),
		cmocka_unit_test(test_schema_names_unique),
		cmocka_unit_test(test_schema_key_lists),
		cmocka_unit_test(test_sections_cover_doc),
		cmocka_unit_test(test_section_order),
		cmocka_unit_test(test_limits_name_the_entry_past_them),
		cmocka_unit_test(test_deep_nesting_refused),
		cmocka_unit_test(test_error_text_is_utf8),
		cmocka_unit_test(test_control_characters),
		cmocka_unit_test(test_descriptions),
		cmocka_unit_test(test_bad_descriptions),
	};

	return cmocka_run_group_tests_name("table", tests, NULL, NULL);
}
