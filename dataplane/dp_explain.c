#include "dp_explain.h"

#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include "fwd_names.h"
#include "fwd_pktops.h"

/* Ethernet + IP + the protocol's fixed header, checksum valid, TTL 64. */
static size_t probe_frame(const struct dp_probe *p, uint8_t *f)
{
	size_t l3 = 14, l4, l4len;

	memset(f, 0, 128);
	f[0] = 0x02;
	f[6] = 0x02;
	if (p->family == 4) {
		f[12] = 0x08;
		l4 = l3 + 20;
		f[l3] = 0x45;
		f[l3 + 8] = 64;
		f[l3 + 9] = p->proto;
		memcpy(f + l3 + 12, p->src, 4);
		memcpy(f + l3 + 16, p->dst, 4);
	} else {
		f[12] = 0x86;
		f[13] = 0xdd;
		l4 = l3 + 40;
		f[l3] = 0x60;
		f[l3 + 6] = p->proto;
		f[l3 + 7] = 64;
		memcpy(f + l3 + 8, p->src, 16);
		memcpy(f + l3 + 24, p->dst, 16);
	}
	l4len = p->proto == FWD_PROTO_TCP ? 20 : p->proto == FWD_PROTO_SCTP ? 12 : 8;
	if (p->proto == FWD_PROTO_TCP || p->proto == FWD_PROTO_UDP || p->proto == FWD_PROTO_SCTP) {
		f[l4] = (uint8_t)(p->sport >> 8);
		f[l4 + 1] = (uint8_t)p->sport;
		f[l4 + 2] = (uint8_t)(p->dport >> 8);
		f[l4 + 3] = (uint8_t)p->dport;
	}
	if (p->family == 4) {
		uint32_t sum = 0;

		f[l3 + 2] = (uint8_t)((20 + l4len) >> 8);
		f[l3 + 3] = (uint8_t)(20 + l4len);
		for (int i = 0; i < 20; i += 2)
			sum += (uint32_t)f[l3 + i] << 8 | f[l3 + i + 1];
		sum = ~fwd_csum_fold(sum) & 0xffff;
		f[l3 + 10] = (uint8_t)(sum >> 8);
		f[l3 + 11] = (uint8_t)sum;
	} else {
		f[l3 + 5] = (uint8_t)l4len;
	}
	return l4 + l4len;
}

static json_t *matched_prefix(const struct dp_gen *g, const struct fwd_pkt *k)
{
	char addr[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN + 8];
	uint8_t depth = 0;

	if (k->family == 4) {
		/* The table's own sorted prefixes answer which one matched:
		 * the FIBs keep no RIB (fwd_fib4.h). */
		const struct fwd_table *t = g->table;
		int64_t i =
			fwd_fib4_longest(g->fib4, t->prefix4, t->nprefix4, fwd_rd32(k->src), 32);
		uint32_t ip;

		if (i < 0)
			return json_null();
		ip = htonl(t->prefix4[i].addr);
		depth = t->prefix4[i].len;
		inet_ntop(AF_INET, &ip, addr, sizeof(addr));
	} else {
		const struct fwd_table *t = g->table;
		int64_t i = fwd_fib6_longest(g->fib6, t->prefix6, t->nprefix6, k->src, 128);
		const uint8_t *ip;

		if (i < 0)
			return json_null();
		ip = t->prefix6[i].addr;
		depth = t->prefix6[i].len;
		inet_ntop(AF_INET6, ip, addr, sizeof(addr));
	}
	snprintf(out, sizeof(out), "%s/%u", addr, depth);
	return json_string(out);
}

/* One matching rule @id for explain's list (@entry, @kind: its name set's
 * entry, as the verdict has it). */
static json_t *match_json(const struct dp_gen *g, const struct dp_content_verdict *v, uint32_t id,
			  uint32_t entry, uint8_t kind)
{
	const struct fwd_content_rule *r = &g->table->content[id];
	json_t *mo = json_pack("{s:s, s:s, s:s}", "rule", r->name, "field",
			       fwd_content_field_name(r->field), "action",
			       fwd_content_action_name(r->action));

	if (r->unreadable) /* fail closed: matched because the name was unreadable */
		json_object_set_new(mo, "unreadable",
				    json_string(fwd_extract_error_name(v->unreadable[r->field])));
	if (kind) { /* a name set's entry: as the set lists it */
		char nm[FWD_NS_NAME_MAX + 3];
		size_t n;
		const char *e = fwd_nameset_entry(g->content->ns[r->field], entry, &n);

		snprintf(nm, sizeof(nm), "%s%.*s", kind == FWD_NS_SUFFIX ? "*." : "", (int)n, e);
		json_object_set_new(mo, "name", json_string(nm));
	}
	return mo;
}

/* Content rules for explain, with the control thread's scratch: what is in
 * scope, what the extractors found, which rules matched and which decides.
 * Applies the verdict to @d as a worker would. null when nothing is scoped. */
/* @steer_group: the group a content rule's steer took the link from, or
 * left as it is. */
static json_t *explain_content(const struct dp_gen *g, const struct dp_probe *probe,
			       const struct fwd_pkt *k, struct fwd_decision *d,
			       uint16_t *steer_group)
{
	const struct dp_content *cs = g->content;
	char names[4][FWD_X_NAME_MAX] = {{0}};
	struct dp_content_input in = {.proto = k->proto,
				      .region = d->region,
				      .service = d->service,
				      .payload = probe->payload,
				      .len = probe->payload_len,
				      .names = names};
	struct dp_content_verdict v;
	json_t *o, *scope, *found, *matches, *unread;

	if (cs == NULL || (in.fields = dp_content_scope(cs, d->region, d->service)) == 0)
		return json_null();
	for (int f = 0; f < 4; f++)
		in.given[f] = f == FWD_CF_PAYLOAD ? NULL : probe->given[f];
	if (in.payload == NULL)
		in.payload = (const uint8_t *)"";
	dp_content_scan(cs, cs->scratch[cs->nworkers], &in, &v);
	scope = json_array();
	found = json_object();
	unread = json_object();
	matches = json_array();
	for (int f = 0; f < 4; f++) {
		if (!(in.fields & (1u << f)))
			continue;
		json_array_append_new(scope, json_string(fwd_content_field_name(f)));
		if (f != FWD_CF_PAYLOAD)
			json_object_set_new(found, fwd_content_field_name(f),
					    probe->given[f] ? json_string(probe->given[f])
					    : names[f][0]   ? json_string(names[f])
							    : json_null());
		if (v.unreadable[f])
			json_object_set_new(unread, fwd_content_field_name(f),
					    json_string(fwd_extract_error_name(v.unreadable[f])));
	}
	/* The first DP_CONTENT_MAX_HITS matches in document order, and the
	 * deciding rule after them if it is not one of them: a list in
	 * Hyperscan's order once left the verdict out. */
	{
		uint32_t n = v.nhits < DP_CONTENT_MAX_HITS ? v.nhits : DP_CONTENT_MAX_HITS;
		int listed = 0;

		for (uint32_t i = 1; i < n; i++) /* insertion sort of at most 16 */
			for (uint32_t j = i; j > 0 && v.hits[j - 1] > v.hits[j]; j--) {
				uint32_t id = v.hits[j], en = v.hit_entry[j];
				uint8_t kd = v.hit_kind[j];

				v.hits[j] = v.hits[j - 1], v.hit_entry[j] = v.hit_entry[j - 1],
				v.hit_kind[j] = v.hit_kind[j - 1];
				v.hits[j - 1] = id, v.hit_entry[j - 1] = en, v.hit_kind[j - 1] = kd;
			}
		for (uint32_t h = 0; h < n; h++) {
			listed |= v.hits[h] == v.rule;
			json_array_append_new(matches, match_json(g, &v, v.hits[h], v.hit_entry[h],
								  v.hit_kind[h]));
		}
		if (v.rule != DP_CONTENT_NONE && !listed)
			json_array_append_new(matches,
					      match_json(g, &v, v.rule, v.rule_entry, v.rule_kind));
	}
	o = json_pack("{s:o, s:o, s:o, s:o, s:i, s:b}", "scoped_fields", scope, "extracted", found,
		      "unreadable", unread, "matches", matches, "matched", (int)v.nhits,
		      "payload_given", probe->payload != NULL);
	if (v.rule != DP_CONTENT_NONE) {
		const struct fwd_content_rule *cr = &g->table->content[v.rule];

		/* A steer never overrides a drop (dp_content_act); one to a
		 * link leaves no group. */
		if (cr->action == FWD_CA_STEER && !d->drop)
			*steer_group =
				cr->target_kind == FWD_ACT_GROUP ? cr->target : FWD_LINK_NONE;
		dp_content_act(cs, g->cls, k, v.rule, d);
		json_object_set_new(o, "verdict", json_string(g->table->content[v.rule].name));
	} else {
		json_object_set_new(o, "verdict", json_null());
	}
	return o;
}

/* The answer for a packet the parser drops for @reason: every field of
 * the classification null, the action a drop. */
static json_t *parser_drop(const struct dp_gen *g, int reason, struct fwd_err *err)
{
	char hash[20];
	json_t *r;

	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)g->hash);
	r = json_pack("{s:I, s:s, s:n, s:n, s:n, s:n, s:s, s:n, s:n, s:n, s:n, s:n, s:n, s:n, "
		      "s:s, s:n, s:n}",
		      "generation", (json_int_t)g->id, "hash", hash, "region", "prefix", "service",
		      "policy", "action", FWD_WORD_NAME(POLICY_ACTION, DROP), "target", "group",
		      "link", "port", "mirror", "port_down", "group_ports_down", "drop_reason",
		      fwd_drop_names[reason], "flow_hash", "content");
	if (r == NULL)
		fwd_err_set(err, "", 0, "", "out of memory");
	return r;
}

json_t *dp_explain(const struct dp_gen *g, const uint8_t *port_down, const struct dp_probe *probe,
		   struct fwd_err *err)
{
	const struct fwd_table *t = g->table;
	uint8_t frame[128];
	struct fwd_pkt k;
	struct fwd_decision d;
	const struct fwd_policy *p;
	uint16_t group; /* the group the link came from: the policy's or a content steer's */
	size_t len = probe_frame(probe, frame);
	int rc = fwd_parse(frame, frame + len, &k);
	char pol[80], hash[20];
	json_t *r, *content;

	/* An address no router forwards, to or from: the parser drops the
	 * packet before any table is asked, and that is the answer (such
	 * packets exist: spoofed, link-local, broadcast). */
	if (rc == FWD_ERR(DST_MARTIAN) || rc == FWD_ERR(SRC_MARTIAN))
		return parser_drop(g, FWD_ERR_TO_DROP(rc), err);
	if (rc != FWD_OK) {
		fwd_err_set(err, "", 0, rc == FWD_ERR(IPV6_MAPPED_SRC) ? "src" : "proto",
			    "the probe does not parse: %s", fwd_drop_names[FWD_ERR_TO_DROP(rc)]);
		return NULL;
	}
	fwd_class_decide(g->cls, dp_gen_region_of(g, k.family, k.src), k.proto, k.dport,
			 fwd_flow_hash(&k), &d);
	p = &t->policies[d.policy];
	group = p->action == FWD_ACT_GROUP ? p->target : FWD_LINK_NONE;
	content = explain_content(g, probe, &k, &d, &group);
	fwd_table_policy_key(t, d.policy, pol, sizeof(pol));
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)g->hash);
	r = json_pack("{s:I, s:s, s:s, s:o, s:s, s:s, s:s, s:s}", "generation", (json_int_t)g->id,
		      "hash", hash, "region", t->region_names[d.region], "prefix",
		      matched_prefix(g, &k), "service", t->service_names[d.service], "policy", pol,
		      "action",
		      p->action == FWD_ACT_DROP ? FWD_WORD_NAME(POLICY_ACTION, DROP)
						: FWD_WORD_NAME(POLICY_ACTION, STEER),
		      "target", fwd_table_policy_target(t, p));
	if (r == NULL) {
		json_decref(content);
		fwd_err_set(err, "", 0, "", "out of memory");
		return NULL;
	}
	json_object_set_new(r, "group",
			    group != FWD_LINK_NONE ? json_string(t->groups[group].name)
						   : json_null());
	json_object_set_new(r, "link",
			    d.link != FWD_LINK_NONE ? json_string(t->links[d.link].name)
						    : json_null());
	json_object_set_new(r, "port",
			    d.link != FWD_LINK_NONE ? json_string(t->links[d.link].port)
						    : json_null());
	/* No copy where the packet leaves anyway (dp_worker.c forward_one). */
	json_object_set_new(r, "mirror",
			    d.mirror != FWD_LINK_NONE && d.mirror != d.link
				    ? json_string(t->links[d.mirror].name)
				    : json_null());
	/* A link whose port reports its link down: the NIC does not take
	 * what is given to it (the workers count port_down). As the workers
	 * read it: the control thread's last look at the ports (every 0.5 s). */
	{
		const int down =
			d.link != FWD_LINK_NONE &&
			__atomic_load_n(&port_down[g->links[d.link].port_id], __ATOMIC_RELAXED);

		json_object_set_new(r, "port_down",
				    d.link != FWD_LINK_NONE ? json_boolean(down) : json_null());
		if (down && !d.drop)
			d.drop = 1 + FWD_DROP_PORT_DOWN;
	}
	/* The group's members its slots leave out for their port's sake
	 * (none when every member's port is down: the group keeps its
	 * table's slots). */
	if (group != FWD_LINK_NONE) {
		const struct fwd_group *grp = &t->groups[group];
		json_t *out = json_array();
		uint8_t left[FWD_MAX_GROUP_MEMBERS];

		fwd_class_group_out(g->cls, t, group, left); /* once, not per member */
		for (uint16_t i = 0; i < grp->nmembers; i++)
			if (left[i])
				json_array_append_new(
					out, json_string(t->links[grp->members[i].link].name));
		json_object_set_new(r, "group_ports_down", out);
	} else {
		json_object_set_new(r, "group_ports_down", json_null());
	}
	json_object_set_new(r, "drop_reason",
			    d.drop ? json_string(fwd_drop_names[d.drop - 1]) : json_null());
	json_object_set_new(r, "flow_hash", json_integer(fwd_flow_hash(&k)));
	json_object_set_new(r, "content", content);
	return r;
}
