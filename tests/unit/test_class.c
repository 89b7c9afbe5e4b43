/*
 * Classifier tests (common/fwd_class.c): service lookup, policy precedence,
 * link state, and the consistent-hash properties of link groups: weights
 * respected, determinism, and that a weight change, a member going down or
 * a member added moves only the flows it must.
 * Ends with classification of whole packets on byte arrays, the region found
 * by a naive longest-prefix scan (no DPDK).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fwd_class.h"
#include "fwd_pktops.h"
#include "pktbuild.h"

static const char *const DOC =
	"regions:\n"
	"  in: {prefixes: [10.0.0.0/8, 10.1.0.0/16, 2001:db8::/32]}\n"
	"  sg: {prefixes: [10.1.2.0/24, 11.0.0.0/8, 2001:db8:1::/48]}\n"
	"services:\n"
	"  https: [tcp/443, udp/443]\n"
	"  dns: [any/53]\n"
	"  sync: [tcp/7000-7010]\n"
	"  ping: [icmp, icmpv6]\n"
	"links:\n"
	"  l1: {port: p0, next_hop_mac: '02:00:00:00:00:01'}\n"
	"  l2: {port: p0, next_hop_mac: '02:00:00:00:00:02'}\n"
	"  l3: {port: p1, next_hop_mac: '02:00:00:00:00:03'}\n"
	"  dead: {port: p1, next_hop_mac: '02:00:00:00:00:04', state: down}\n"
	"link_groups:\n"
	"  g: {members: {l1: 3, l2: 1}}\n"
	"policies:\n"
	"  - {region: in, service: https, action: steer, to: l1}\n"
	"  - {region: in, service: any, action: steer, to: l2}\n"
	"  - {region: any, service: dns, action: steer, to: l3}\n"
	"  - {region: sg, service: sync, action: steer, to: dead}\n"
	"  - {region: sg, service: https, action: steer, to: g, mirror: dead}\n"
	"  - {region: unknown, service: ping, action: steer, to: l3, mirror: l2}\n"
	"default: {action: drop}\n";

static struct fwd_table *load(const char *doc)
{
	struct fwd_err err = {0};
	struct fwd_table *t = fwd_table_parse(doc, strlen(doc), "t.yaml", 0, &err);
	char buf[512];

	if (t == NULL)
		fail_msg("%s", fwd_err_str(&err, buf, sizeof(buf)));
	return t;
}

static void decide(const struct fwd_class *c, const char *region_name, const struct fwd_table *t,
		   uint8_t proto, uint16_t dport, struct fwd_decision *d)
{
	int r = fwd_table_region_id(t, region_name);

	assert_true(r >= 0);
	fwd_class_decide(c, (uint16_t)r, proto, dport, 12345, d);
}

static void test_services(void **state)
{
	struct fwd_table *t = load(DOC);
	struct fwd_class *c = fwd_class_build(t);

	(void)state;
	assert_int_equal(fwd_class_service(c, FWD_PROTO_TCP, 443),
			 fwd_table_service_id(t, "https"));
	assert_int_equal(fwd_class_service(c, FWD_PROTO_UDP, 443),
			 fwd_table_service_id(t, "https"));
	assert_int_equal(fwd_class_service(c, FWD_PROTO_SCTP, 443), FWD_SERVICE_OTHER);
	for (uint8_t p = 0; p < 3; p++) {
		uint8_t proto = p == 0 ? FWD_PROTO_TCP : p == 1 ? FWD_PROTO_UDP : FWD_PROTO_SCTP;

		assert_int_equal(fwd_class_service(c, proto, 53), fwd_table_service_id(t, "dns"));
	}
	assert_int_equal(fwd_class_service(c, FWD_PROTO_TCP, 6999), FWD_SERVICE_OTHER);
	assert_int_equal(fwd_class_service(c, FWD_PROTO_TCP, 7000),
			 fwd_table_service_id(t, "sync"));
	assert_int_equal(fwd_class_service(c, FWD_PROTO_TCP, 7010),
			 fwd_table_service_id(t, "sync"));
	assert_int_equal(fwd_class_service(c, FWD_PROTO_TCP, 7011), FWD_SERVICE_OTHER);
	assert_int_equal(fwd_class_service(c, FWD_PROTO_ICMP, 0), fwd_table_service_id(t, "ping"));
	assert_int_equal(fwd_class_service(c, FWD_PROTO_ICMPV6, 0),
			 fwd_table_service_id(t, "ping"));
	assert_int_equal(fwd_class_service(c, 47, 0), FWD_SERVICE_OTHER); /* GRE */
	/* The fast path's variant for port protocols agrees on every port. */
	for (uint32_t port = 0; port <= 0xffff; port++) {
		static const uint8_t with_ports[] = {FWD_PROTO_TCP, FWD_PROTO_UDP, FWD_PROTO_SCTP};

		for (size_t k = 0; k < sizeof(with_ports); k++)
			assert_int_equal(fwd_class_service_ports(c, with_ports[k], (uint16_t)port),
					 fwd_class_service(c, with_ports[k], (uint16_t)port));
	}
	fwd_class_free(c);
	fwd_table_free(t);
}

static void test_precedence_and_link_state(void **state)
{
	struct fwd_table *t = load(DOC);
	struct fwd_class *c = fwd_class_build(t);
	struct fwd_decision d;

	(void)state;
	decide(c, "in", t, FWD_PROTO_TCP, 443, &d); /* (region, service) */
	assert_int_equal(d.link, fwd_table_link_id(t, "l1"));
	assert_int_equal(d.drop, 0);
	decide(c, "in", t, FWD_PROTO_UDP, 53, &d); /* (region, any) beats (any, service) */
	assert_int_equal(d.link, fwd_table_link_id(t, "l2"));
	decide(c, "sg", t, FWD_PROTO_UDP, 53, &d); /* (any, service) */
	assert_int_equal(d.link, fwd_table_link_id(t, "l3"));
	decide(c, "unknown", t, FWD_PROTO_TCP, 53, &d);
	assert_int_equal(d.link, fwd_table_link_id(t, "l3"));
	decide(c, "sg", t, FWD_PROTO_TCP, 80, &d); /* default: drop */
	assert_int_equal(d.policy, FWD_POLICY_DEFAULT);
	assert_int_equal(d.drop, 1 + FWD_DROP_POLICY);
	assert_int_equal(d.link, FWD_LINK_NONE);
	decide(c, "sg", t, FWD_PROTO_TCP, 7005, &d); /* link admin-down: fail closed */
	assert_int_equal(d.drop, 1 + FWD_DROP_NO_LINK);
	decide(c, "sg", t, FWD_PROTO_TCP, 443, &d); /* mirror to a down link: none */
	assert_int_equal(d.mirror, FWD_LINK_NONE);
	assert_int_equal(d.drop, 0);
	decide(c, "unknown", t, FWD_PROTO_ICMP, 0, &d);
	assert_int_equal(d.link, fwd_table_link_id(t, "l3"));
	assert_int_equal(d.mirror, fwd_table_link_id(t, "l2"));
	fwd_class_free(c);
	fwd_table_free(t);
}

static struct fwd_class *group_class(const char *members, struct fwd_table **tp)
{
	char doc[1024];

	snprintf(doc, sizeof(doc),
		 "links:\n"
		 "  a: {port: p0, next_hop_mac: '02:00:00:00:00:01'}\n"
		 "  b: {port: p0, next_hop_mac: '02:00:00:00:00:02'}\n"
		 "  c: {port: p0, next_hop_mac: '02:00:00:00:00:03'%s}\n"
		 "  d: {port: p0, next_hop_mac: '02:00:00:00:00:04'}\n"
		 "link_groups:\n  g: {members: {%s}}\n"
		 "default: {action: steer, to: g}\n",
		 strstr(members, "c-down")    ? ", state: down"
		 : strstr(members, "c-drain") ? ", state: drain"
					      : "",
		 members);
	/* The markers ", c-down" and ", c-drain" set c's state, then go. */
	for (char *p = strstr(doc, ", c-d"); p; p = NULL) {
		size_t n = strcspn(p + 2, "}") + 2;

		memmove(p, p + n, strlen(p + n) + 1);
	}
	*tp = load(doc);
	return fwd_class_build(*tp);
}

/* Slot -> link name, so tables with different link ids compare by name. */
static const char *slot_link(const struct fwd_table *t, const struct fwd_class *c, uint32_t s)
{
	uint16_t l = c->slots[0][s];

	return l == FWD_LINK_NONE ? "-" : t->links[l].name;
}

static void test_group_weights(void **state)
{
	struct fwd_table *t;
	struct fwd_class *c = group_class("a: 3, b: 1", &t);
	uint32_t na = 0;

	(void)state;
	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++)
		na += strcmp(slot_link(t, c, s), "a") == 0;
	/* 3:1 is 3072 of 4096; rendezvous sampling stays within a few percent. */
	assert_in_range(na, 2900, 3250);
	fwd_class_free(c);
	fwd_table_free(t);

	c = group_class("a: 2, b: 5, c: 1", &t); /* 1024 / 2560 / 512 expected */
	uint32_t n[3] = {0};
	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++)
		n[slot_link(t, c, s)[0] - 'a']++;
	assert_in_range(n[0], 900, 1150);
	assert_in_range(n[1], 2400, 2720);
	assert_in_range(n[2], 420, 600);
	fwd_class_free(c);
	fwd_table_free(t);
}

static void expect_moves(const char *before, const char *after, const char *must_involve)
{
	struct fwd_table *t1, *t2;
	struct fwd_class *c1 = group_class(before, &t1), *c2 = group_class(after, &t2);
	uint32_t moved = 0;

	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++) {
		const char *x = slot_link(t1, c1, s), *y = slot_link(t2, c2, s);

		if (strcmp(x, y) == 0)
			continue;
		moved++;
		if (strcmp(x, must_involve) && strcmp(y, must_involve))
			fail_msg("slot %u moved %s -> %s, not involving %s", s, x, y, must_involve);
	}
	assert_true(moved > 0);
	fwd_class_free(c1);
	fwd_class_free(c2);
	fwd_table_free(t1);
	fwd_table_free(t2);
}

static void test_group_minimal_disruption(void **state)
{
	(void)state;
	expect_moves("a: 1, b: 1, c: 1", "a: 1, b: 1, c: 2", "c"); /* weight up */
	expect_moves("a: 1, b: 1, c: 2", "a: 1, b: 1, c: 1", "c"); /* weight down */
	expect_moves("a: 1, b: 1, c: 1", "a: 1, b: 1", "c"); /* member removed */
	expect_moves("a: 1, b: 1, c: 1", "a: 1, b: 1, c: 1, c-down", "c"); /* member down */
	expect_moves("a: 1, b: 1, c: 1", "a: 1, b: 1, c: 1, d: 1", "d"); /* member added */
	expect_moves("a: 2, b: 5, c: 1", "a: 2, b: 5, c: 0", "c"); /* drained */
	expect_moves("a: 1, b: 1, c: 1", "a: 1, b: 1, c: 1, c-drain", "c"); /* state: drain */
}

/* A drained link takes no slot of its groups, exactly like weight 0, and
 * still carries what a policy steers to it directly. */
static void test_group_drain(void **state)
{
	struct fwd_table *t1, *t2, *t;
	struct fwd_class *c1 = group_class("a: 2, b: 5, c: 0", &t1);
	struct fwd_class *c2 = group_class("a: 2, b: 5, c: 1, c-drain", &t2), *c;
	struct fwd_decision d;

	(void)state;
	assert_string_equal(fwd_link_state_name(&t2->links[fwd_table_link_id(t2, "c")]), "drain");
	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++)
		assert_string_equal(slot_link(t1, c1, s), slot_link(t2, c2, s));
	fwd_class_free(c1);
	fwd_class_free(c2);
	fwd_table_free(t1);
	fwd_table_free(t2);
	t = load("links:\n"
		 "  a: {port: p0, next_hop_mac: '02:00:00:00:00:01', state: drain}\n"
		 "default: {action: steer, to: a}\n");
	c = fwd_class_build(t);
	fwd_class_decide(c, 0, FWD_PROTO_TCP, 80, 99, &d);
	assert_int_equal(d.link, fwd_table_link_id(t, "a"));
	assert_int_equal(d.drop, 0);
	fwd_class_free(c);
	fwd_table_free(t);
}

static void test_group_deterministic(void **state)
{
	struct fwd_table *t1, *t2;
	struct fwd_class *c1 = group_class("a: 3, b: 1, c: 2", &t1);
	struct fwd_class *c2 = group_class("c: 2, a: 3, b: 1", &t2); /* member order */
	uint32_t h = 0;

	(void)state;
	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++) {
		assert_string_equal(slot_link(t1, c1, s), slot_link(t2, c2, s));
		h = h * 31 + (uint32_t)slot_link(t1, c1, s)[0];
	}
	/* Pinned: every box and every release must fill the slots identically. */
	assert_int_equal(h, 0x087ff66fu);
	assert_int_equal(fwd_class_hrw_cost("a", 0), fwd_class_hrw_cost("a", 0));
	fwd_class_free(c1);
	fwd_class_free(c2);
	fwd_table_free(t1);
	fwd_table_free(t2);
}

static void test_group_all_down(void **state)
{
	struct fwd_table *t;
	struct fwd_class *c = group_class("c: 1, c-down", &t);
	struct fwd_decision d;

	(void)state;
	fwd_class_decide(c, 0, FWD_PROTO_TCP, 80, 99, &d);
	assert_int_equal(d.link, FWD_LINK_NONE);
	assert_int_equal(d.drop, 1 + FWD_DROP_NO_LINK);
	fwd_class_free(c);
	fwd_table_free(t);
}

/* Whether @link is out of at least one of its groups. */
static int link_out(const struct fwd_class *c, const struct fwd_table *t, uint16_t link)
{
	for (uint16_t g = 0; g < t->ngroups; g++)
		for (uint16_t i = 0; i < t->groups[g].nmembers; i++)
			if (t->groups[g].members[i].link == link &&
			    fwd_class_member_out(c, t, g, i))
				return 1;
	return 0;
}

/* A member whose port is down leaves its group exactly as 'link down'
 * takes it out (the same slots move, to the same members), comes back to
 * the table's slots when its port is up, and a group none of whose
 * members' ports is up keeps its table's slots. */
static void test_group_ports_out(void **state)
{
	struct fwd_table *t, *td;
	struct fwd_class *c = group_class("a: 2, b: 5, c: 1", &t);
	struct fwd_class *cd = group_class("a: 2, b: 5, c: 1, c-down", &td);
	struct fwd_class *ref;
	uint8_t *out = calloc(t->nlinks, 1);
	uint16_t c_id = fwd_table_link_id(t, "c");
	uint32_t moved, had_c = 0;

	(void)state;
	ref = fwd_class_build(t);
	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++)
		had_c += c->slots[0][s] == c_id;
	assert_true(had_c > 0);
	out[c_id] = FWD_PORT_DOWN;
	assert_int_equal(fwd_class_ports_out(c, t, out, &moved), 0);
	assert_int_equal(moved, had_c); /* c's slots and no other */
	assert_int_equal(c->link_out[c_id], FWD_PORT_DOWN);
	for (uint16_t i = 0; i < t->groups[0].nmembers; i++)
		assert_int_equal(fwd_class_member_out(c, t, 0, i),
				 t->groups[0].members[i].link == c_id);
	assert_true(link_out(c, t, c_id));
	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++)
		assert_string_equal(slot_link(t, c, s), slot_link(td, cd, s));
	/* Again with nothing changed: nothing moves. */
	assert_int_equal(fwd_class_ports_out(c, t, out, &moved), 0);
	assert_int_equal(moved, 0);
	out[c_id] = 0;
	assert_int_equal(fwd_class_ports_out(c, t, out, &moved), 0);
	assert_int_equal(moved, had_c);
	assert_memory_equal(c->slots[0], ref->slots[0], sizeof(c->slots[0]));
	/* Every member's port down: the table's slots stay, and no member is
	 * said to be out (explain, the log). */
	memset(out, FWD_PORT_DOWN, t->nlinks);
	assert_int_equal(fwd_class_ports_out(c, t, out, &moved), 0);
	assert_int_equal(moved, 0);
	assert_memory_equal(c->slots[0], ref->slots[0], sizeof(c->slots[0]));
	for (uint16_t i = 0; i < t->groups[0].nmembers; i++)
		assert_false(fwd_class_member_out(c, t, 0, i));
	assert_false(link_out(c, t, c_id));
	/* One of them up again, held: it takes every slot rather than let
	 * them drop; a second one up later, held too, waits for its hold. */
	out[fwd_table_link_id(t, "b")] = FWD_PORT_HELD;
	assert_int_equal(fwd_class_ports_out(c, t, out, &moved), 0);
	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++)
		assert_string_equal(slot_link(t, c, s), "b");
	out[fwd_table_link_id(t, "a")] = FWD_PORT_HELD + 1;
	assert_int_equal(fwd_class_ports_out(c, t, out, &moved), 0);
	assert_int_equal(moved, 0);
	assert_true(link_out(c, t, fwd_table_link_id(t, "a")));
	/* b's hold over: a still waits for its own (b alone) */
	out[fwd_table_link_id(t, "b")] = FWD_PORT_IN;
	out[fwd_table_link_id(t, "a")] = FWD_PORT_HELD;
	assert_int_equal(fwd_class_ports_out(c, t, out, &moved), 0);
	assert_int_equal(moved, 0);
	/* a's hold over too: the table with c down */
	out[fwd_table_link_id(t, "a")] = FWD_PORT_IN;
	assert_int_equal(fwd_class_ports_out(c, t, out, &moved), 0);
	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++)
		assert_string_equal(slot_link(t, c, s), slot_link(td, cd, s));
	fwd_class_free(ref);
	fwd_class_free(c);
	fwd_class_free(cd);
	fwd_table_free(t);
	fwd_table_free(td);
	free(out);

	/* A group without the link is not touched; a down member in the
	 * table stays out whatever its port says. */
	t = load("links:\n"
		 "  a: {port: p0, next_hop_mac: '02:00:00:00:00:01'}\n"
		 "  b: {port: p1, next_hop_mac: '02:00:00:00:00:02'}\n"
		 "  c: {port: p1, next_hop_mac: '02:00:00:00:00:03', state: down}\n"
		 "link_groups:\n  g1: {members: {a: 1, b: 1}}\n  g2: {members: {a: 1, c: 1}}\n"
		 "  g3: {members: {b: 1, c: 1}}\n"
		 "default: {action: steer, to: g1}\n");
	c = fwd_class_build(t);
	ref = fwd_class_build(t);
	out = calloc(t->nlinks, 1);
	out[fwd_table_link_id(t, "b")] = FWD_PORT_DOWN;
	out[fwd_table_link_id(t, "c")] = FWD_PORT_DOWN;
	assert_int_equal(fwd_class_ports_out(c, t, out, &moved), 0);
	/* c is down in the table: out of nothing for its port's sake */
	assert_false(link_out(c, t, fwd_table_link_id(t, "c")));
	assert_true(link_out(c, t, fwd_table_link_id(t, "b"))); /* of g1 */
	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++) {
		assert_int_equal(c->slots[0][s], fwd_table_link_id(t, "a")); /* g1: a alone */
		assert_int_equal(c->slots[1][s], ref->slots[1][s]); /* g2: no member moved */
		assert_int_equal(c->slots[2][s], ref->slots[2][s]); /* g3: b's port, c down */
	}
	fwd_class_free(ref);
	fwd_class_free(c);
	fwd_table_free(t);
	free(out);
}

/* A table of links l0..l7 in one group g with weights @w; @st per link: 0
 * up, 1 down, 2 drain; @down: links also down. */
static struct fwd_table *group_table(const int w[8], const int st[8], const uint8_t down[8])
{
	char doc[2048];
	size_t n = (size_t)snprintf(doc, sizeof(doc), "links:\n");

	for (int l = 0; l < 8; l++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n,
				      "  l%d: {port: p0, next_hop_mac: '02:00:00:00:00:0%d'%s}\n",
				      l, l,
				      st[l] == 1 || down[l] ? ", state: down"
				      : st[l] == 2	    ? ", state: drain"
							    : "");
	n += (size_t)snprintf(doc + n, sizeof(doc) - n, "link_groups:\n  g: {members: {");
	for (int l = 0; l < 8; l++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%sl%d: %d", l ? ", " : "", l,
				      w[l]);
	snprintf(doc + n, sizeof(doc) - n, "}}\ndefault: {action: steer, to: g}\n");
	return load(doc);
}

/* 16 random tables of 8 links (weights 0-5, some down or drained in the
 * table) in one group, each with 20 random sets of links whose port is
 * held (ranked) or down applied in turn to one classifier
 * (fwd_class_ports_out ranks only the slots that must change): after each,
 * its slots are those of the table built with the links it leaves out
 * down: all but those whose port is in, or when none is, all but those
 * held longest; none when every port is down (the table's own slots). */
static void test_group_ports_out_random(void **state)
{
	static const uint8_t none[8];
	unsigned seed = 12345;

	(void)state;
	for (int trial = 0; trial < 16; trial++) {
		int w[8], st[8];
		struct fwd_table *t;
		struct fwd_class *c;

		for (int l = 0; l < 8; l++) {
			w[l] = rand_r(&seed) % 6;
			st[l] = rand_r(&seed) % 5 == 0 ? 1 + rand_r(&seed) % 2 : 0;
		}
		w[rand_r(&seed) % 8] = 1 + rand_r(&seed) % 5; /* a group weighs > 0 */
		t = group_table(w, st, none);
		c = fwd_class_build(t);
		for (int step = 0; step < 20; step++) {
			uint8_t out[8] = {0}, down[8] = {0};
			unsigned best = FWD_PORT_DOWN;
			struct fwd_table *rt;
			struct fwd_class *rc;
			uint32_t moved;

			/* ids follow the document's order: l0..l7 are 0..7; a
			 * port out is down or held (ranks 1-3), at random */
			for (int l = 0; l < 8; l++)
				if (rand_r(&seed) % 100 < (step % 4 == 3 ? 90 : 30))
					out[l] = rand_r(&seed) % 2
							 ? FWD_PORT_DOWN
							 : FWD_PORT_HELD + rand_r(&seed) % 3;
			assert_int_equal(fwd_class_ports_out(c, t, out, &moved), 0);
			/* the reference: the lowest state of a member that may
			 * take slots carries, every higher one is down in the
			 * table; none when all are down */
			for (int l = 0; l < 8; l++)
				if (st[l] == 0 && w[l] > 0 && out[l] < best)
					best = out[l];
			for (int l = 0; l < 8; l++)
				down[l] = best < FWD_PORT_DOWN && out[l] > best;
			rt = group_table(w, st, down);
			rc = fwd_class_build(rt);
			for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++)
				if (strcmp(slot_link(t, c, s), slot_link(rt, rc, s)) != 0)
					fail_msg("trial %d step %d slot %u: %s, built: %s", trial,
						 step, s, slot_link(t, c, s), slot_link(rt, rc, s));
			fwd_class_free(rc);
			fwd_table_free(rt);
		}
		fwd_class_free(c);
		fwd_table_free(t);
	}
}

/* Naive reference: longest matching prefix by scanning every prefix. */
static uint16_t ref_region(const struct fwd_table *t, const struct fwd_pkt *p)
{
	int best = -1;
	uint16_t region = FWD_REGION_UNKNOWN;

	if (p->family == 4) {
		uint32_t a = fwd_rd32(p->src);

		for (uint32_t i = 0; i < t->nprefix4; i++) {
			uint32_t m = t->prefix4[i].len ? ~0u << (32 - t->prefix4[i].len) : 0;

			if ((a & m) == t->prefix4[i].addr && t->prefix4[i].len > best) {
				best = t->prefix4[i].len;
				region = t->prefix4[i].region;
			}
		}
		return region;
	}
	for (uint32_t i = 0; i < t->nprefix6; i++) {
		const struct fwd_prefix6 *q = &t->prefix6[i];
		int ok = 1;

		for (int b = 0; b < q->len && ok; b++)
			ok = ((p->src[b / 8] ^ q->addr[b / 8]) & (0x80 >> (b % 8))) == 0;
		if (ok && q->len > best) {
			best = q->len;
			region = q->region;
		}
	}
	return region;
}

static void test_classify_packets(void **state)
{
	struct fwd_table *t = load(DOC);
	struct fwd_class *c = fwd_class_build(t);
	static const struct {
		char src[4];
		uint16_t dport;
		const char *region, *link;
	} v4[] = {
		{{10, 9, 9, 9}, 443, "in", "l1"},
		{{10, 1, 9, 9}, 80, "in", "l2"}, /* /16 inside the /8, still in */
		{{10, 1, 2, 3}, 53, "sg", "l3"}, /* /24 inside in's /16: sg */
		{{12, 0, 0, 1}, 53, "unknown", "l3"},
		{{12, 0, 0, 1}, 443, "unknown", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		struct pb p;
		struct fwd_pkt k = {0};
		struct fwd_decision d;
		const char dst[4] = {1, 2, 3, 4};

		pb_eth(&p, 0x0800);
		pb_ipv4(&p, v4[i].src, dst, FWD_PROTO_UDP, 0);
		pb_ports(&p, 1000, v4[i].dport, 8);
		pb_finish_v4(&p);
		assert_int_equal(fwd_parse(p.b, p.b + p.len, &k), FWD_OK);
		fwd_class_decide(c, ref_region(t, &k), k.proto, k.dport, fwd_flow_hash(&k), &d);
		assert_string_equal(t->region_names[d.region], v4[i].region);
		if (v4[i].link)
			assert_string_equal(t->links[d.link].name, v4[i].link);
		else
			assert_int_equal(d.drop, 1 + FWD_DROP_POLICY);
	}
	{
		struct pb p;
		struct fwd_pkt k = {0};
		struct fwd_decision d;
		const uint8_t s6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 7}, d6[16] = {1};

		pb_eth(&p, 0x86dd);
		pb_ipv6(&p, s6, d6, FWD_PROTO_TCP);
		pb_ports(&p, 1000, 443, 20);
		pb_finish_v6(&p);
		assert_int_equal(fwd_parse(p.b, p.b + p.len, &k), FWD_OK);
		fwd_class_decide(c, ref_region(t, &k), k.proto, k.dport, fwd_flow_hash(&k), &d);
		assert_string_equal(t->region_names[d.region], "sg"); /* /48 beats /32 */
		assert_int_equal(d.drop, 0); /* sg/https steers to group g: l1 or l2 */
		assert_true(d.link == fwd_table_link_id(t, "l1") ||
			    d.link == fwd_table_link_id(t, "l2"));
	}
	fwd_class_free(c);
	fwd_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_precedence_and_link_state),
		cmocka_unit_test(test_group_weights),
		cmocka_unit_test(test_group_minimal_disruption),
		cmocka_unit_test(test_group_drain),
		cmocka_unit_test(test_group_deterministic),
		cmocka_unit_test(test_group_all_down),
		cmocka_unit_test(test_group_ports_out),
		cmocka_unit_test(test_group_ports_out_random),
		cmocka_unit_test(test_classify_packets),
	};

	return cmocka_run_group_tests_name("class", tests, NULL, NULL);
}
