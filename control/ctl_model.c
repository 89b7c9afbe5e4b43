#include "ctl_model.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_class.h"
#include "fwd_filter_kern_user.h"
#include "fwd_names.h"

/* The model is a table document: every name in it comes from fwd_schema.def. */
#define KEY(sc, id) (fwd_schema_names[FWD_F_##sc##_##id])
#define WORD(sc, id) (fwd_schema_names[FWD_V_##sc##_##id])

static json_t *str_list(const char (*v)[FWD_NAME_MAX], uint8_t n)
{
	json_t *a = json_array();

	for (uint8_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* A thing's description (pool offset @off) into its map @o under @key, when
 * it has one: as the document has it, so a PATCH (model -> document) and a
 * checkpoint keep it. */
static void set_desc(json_t *o, const char *key, const struct fwd_table *t, uint32_t off)
{
	const char *d = fwd_table_desc(t, off);

	if (d[0])
		json_object_set_new(o, key, json_string(d));
}

static const char *scope_name(const struct fwd_table *t, uint16_t id, int region)
{
	if (id == FWD_ANY)
		return WORD(BUILTIN, ANY);
	return region ? t->region_names[id] : t->service_names[id];
}

/* The action of a policy, or (@dflt) of the default section. */
static json_t *action_json(const struct fwd_table *t, const struct fwd_policy *p, int dflt)
{
	json_t *a = json_pack("{s:s}", dflt ? KEY(DEFAULT, ACTION) : KEY(POLICY, ACTION),
			      p->action == FWD_ACT_DROP ? WORD(POLICY_ACTION, DROP)
							: WORD(POLICY_ACTION, STEER));

	if (p->action != FWD_ACT_DROP)
		json_object_set_new(a, dflt ? KEY(DEFAULT, TO) : KEY(POLICY, TO),
				    json_string(fwd_table_policy_target(t, p)));
	if (p->mirror != FWD_LINK_NONE)
		json_object_set_new(a, dflt ? KEY(DEFAULT, MIRROR) : KEY(POLICY, MIRROR),
				    json_string(t->links[p->mirror].name));
	return a;
}

static const char *flt_action(uint8_t a)
{
	return a == FWD_FLT_DROP   ? WORD(FILTER_ACTION, DROP)
	       : a == FWD_FLT_RATE ? WORD(FILTER_ACTION, RATE)
				   : WORD(FILTER_ACTION, PASS);
}

static void port_range_str(const struct fwd_svc_range *r, char *buf, size_t len)
{
	char p[8];

	fwd_proto_name(r->proto, p, sizeof(p));
	if (r->proto != FWD_PROTO_TCP && r->proto != FWD_PROTO_UDP && r->proto != FWD_PROTO_SCTP)
		snprintf(buf, len, "%s", p);
	else if (r->lo == r->hi)
		snprintf(buf, len, "%s/%u", p, r->lo);
	else
		snprintf(buf, len, "%s/%u-%u", p, r->lo, r->hi);
}

/* The XDP filter section, rebuilt from the table (rule ids sit in the
 * prefixes' region and the ranges' service fields). */
static json_t *filters_model(const struct fwd_table *t)
{
	const struct fwd_filters *fl = &t->filters;
	json_t *rules = json_array(), *f;
	char buf[INET6_ADDRSTRLEN + 8], a[INET6_ADDRSTRLEN];

	for (uint16_t i = 0; i < fl->nrules; i++) {
		const struct fwd_filter_rule *r = &fl->rules[i];
		json_t *o = json_pack("{s:s, s:s}", KEY(FILTER_RULE, NAME), r->name,
				      KEY(FILTER_RULE, ACTION), flt_action(r->action));
		json_t *pre = json_array(), *svc = json_array();

		if (r->action == FWD_FLT_RATE) {
			json_object_set_new(o, KEY(FILTER_RULE, RATE_PPS),
					    json_integer(r->rate_pps));
			json_object_set_new(o, KEY(FILTER_RULE, BURST), json_integer(r->burst));
		}
		for (uint32_t k = 0; k < fl->nprefix4; k++) {
			struct in_addr ia = {.s_addr = htonl(fl->prefix4[k].addr)};

			if (fl->prefix4[k].region != i)
				continue;
			inet_ntop(AF_INET, &ia, a, sizeof(a));
			snprintf(buf, sizeof(buf), "%s/%u", a, fl->prefix4[k].len);
			json_array_append_new(pre, json_string(buf));
		}
		for (uint32_t k = 0; k < fl->nprefix6; k++) {
			if (fl->prefix6[k].region != i)
				continue;
			inet_ntop(AF_INET6, fl->prefix6[k].addr, a, sizeof(a));
			snprintf(buf, sizeof(buf), "%s/%u", a, fl->prefix6[k].len);
			json_array_append_new(pre, json_string(buf));
		}
		for (uint32_t k = 0; k < fl->nranges; k++) {
			if (fl->ranges[k].service != i)
				continue;
			port_range_str(&fl->ranges[k], buf, sizeof(buf));
			json_array_append_new(svc, json_string(buf));
		}
		if (json_array_size(pre))
			json_object_set_new(o, KEY(FILTER_RULE, PREFIXES), pre);
		else
			json_decref(pre);
		if (json_array_size(svc))
			json_object_set_new(o, KEY(FILTER_RULE, SERVICES), svc);
		else
			json_decref(svc);
		set_desc(o, KEY(FILTER_RULE, DESCRIPTION), t, r->desc);
		json_array_append_new(rules, o);
	}
	f = json_pack("{s:s, s:s, s:s, s:s, s:o}", KEY(FILTERS, DEFAULT),
		      flt_action(fl->default_action), KEY(FILTERS, NON_IP),
		      flt_action(fl->non_ip_action), KEY(FILTERS, MALFORMED),
		      flt_action(fl->malformed_action), KEY(FILTERS, REDIRECT),
		      fl->redirect ? WORD(REDIRECT, AF_XDP) : WORD(REDIRECT, KERNEL),
		      KEY(FILTERS, RULES), rules);
	set_desc(f, KEY(FILTERS, DESCRIPTION), t, fl->desc);
	return f;
}

static json_t *content_model(const struct fwd_table *t)
{
	json_t *a = json_array();

	for (uint32_t i = 0; i < t->ncontent; i++) {
		const struct fwd_content_rule *r = &t->content[i];
		json_t *svc = json_array(), *o;

		for (uint16_t k = 0; k < r->nservices; k++)
			json_array_append_new(svc, json_string(t->service_names[r->services[k]]));
		o = json_pack("{s:s, s:s, s:o, s:s}", KEY(CONTENT, NAME), r->name,
			      KEY(CONTENT, FIELD), fwd_content_field_name(r->field),
			      KEY(CONTENT, SERVICES), svc, KEY(CONTENT, ACTION),
			      fwd_content_action_name(r->action));
		if (r->unreadable) {
			json_object_set_new(o, KEY(CONTENT, UNREADABLE), json_true());
		} else if (r->pattern) {
			json_object_set_new(o, KEY(CONTENT, PATTERN), json_string(r->pattern));
			json_object_set_new(o, KEY(CONTENT, LITERAL), json_boolean(r->literal));
			json_object_set_new(o, KEY(CONTENT, CASELESS), json_boolean(r->caseless));
		} else {
			/* The model carries the set whole, inline (a names_file's
			 * names among them): it must stand alone like the document. */
			json_t *names = json_array();

			for (const char *p = r->names; p < r->names + r->names_len;
			     p += strlen(p) + 1)
				json_array_append_new(names, json_string(p));
			json_object_set_new(o, KEY(CONTENT, NAMES), names);
		}
		if (r->nregions) {
			json_t *reg = json_array();

			for (uint16_t k = 0; k < r->nregions; k++)
				json_array_append_new(reg,
						      json_string(t->region_names[r->regions[k]]));
			json_object_set_new(o, KEY(CONTENT, REGIONS), reg);
		}
		if (r->action == FWD_CA_MIRROR || r->action == FWD_CA_STEER)
			json_object_set_new(o, KEY(CONTENT, TO),
					    json_string(r->target_kind == FWD_ACT_GROUP
								? t->groups[r->target].name
								: t->links[r->target].name));
		set_desc(o, KEY(CONTENT, DESCRIPTION), t, r->desc);
		json_array_append_new(a, o);
	}
	return a;
}

json_t *ctl_model(const struct fwd_table *t)
{
	json_t *m = json_object(), *regions = json_object(), *services = json_object();
	json_t *links = json_object(), *groups = json_object(), *pols = json_array();
	json_t *res = json_array();
	char buf[INET6_ADDRSTRLEN + 8], a[INET6_ADDRSTRLEN];

	json_object_set_new(m, KEY(DOC, VERSION), json_integer(1));
	if (t->description[0])
		json_object_set_new(m, KEY(DOC, DESCRIPTION), json_string(t->description));
	for (uint16_t r = 1; r < t->nregions; r++) {
		json_t *o = json_pack("{s:[]}", KEY(REGION, PREFIXES));

		if (t->region_desc)
			set_desc(o, KEY(REGION, DESCRIPTION), t, t->region_desc[r]);
		json_object_set_new(regions, t->region_names[r], o);
	}
	for (uint32_t i = 0; i < t->nprefix4; i++) {
		const struct fwd_prefix4 *p = &t->prefix4[i];
		struct in_addr ia = {.s_addr = htonl(p->addr)};

		inet_ntop(AF_INET, &ia, a, sizeof(a));
		snprintf(buf, sizeof(buf), "%s/%u", a, p->len);
		json_array_append_new(
			json_object_get(json_object_get(regions, t->region_names[p->region]),
					KEY(REGION, PREFIXES)),
			json_string(buf));
	}
	for (uint32_t i = 0; i < t->nprefix6; i++) {
		const struct fwd_prefix6 *p = &t->prefix6[i];

		inet_ntop(AF_INET6, p->addr, a, sizeof(a));
		snprintf(buf, sizeof(buf), "%s/%u", a, p->len);
		json_array_append_new(
			json_object_get(json_object_get(regions, t->region_names[p->region]),
					KEY(REGION, PREFIXES)),
			json_string(buf));
	}
	for (uint16_t s = 1; s < t->nservices; s++)
		json_object_set_new(services, t->service_names[s], json_array());
	for (uint32_t i = 0; i < t->nranges; i++) {
		const struct fwd_svc_range *r = &t->ranges[i];

		port_range_str(r, buf, sizeof(buf));
		json_array_append_new(json_object_get(services, t->service_names[r->service]),
				      json_string(buf));
	}
	for (uint16_t i = 0; i < t->nlinks; i++) {
		const struct fwd_link *l = &t->links[i];
		const uint8_t *mac = l->next_hop_mac;
		json_t *o;

		snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
			 mac[3], mac[4], mac[5]);
		o = json_pack("{s:s, s:s, s:o, s:s}", KEY(LINK, PORT), l->port,
			      KEY(LINK, NEXT_HOP_MAC), buf, KEY(LINK, TAGS),
			      str_list((const char(*)[FWD_NAME_MAX])l->tags, l->ntags),
			      KEY(LINK, STATE), fwd_link_state_name(l));
		if (l->vlan)
			json_object_set_new(o, KEY(LINK, VLAN), json_integer(l->vlan));
		set_desc(o, KEY(LINK, DESCRIPTION), t, l->desc);
		json_object_set_new(links, l->name, o);
	}
	for (uint16_t i = 0; i < t->ngroups; i++) {
		const struct fwd_group *g = &t->groups[i];
		json_t *mem = json_object(), *o;

		for (uint16_t k = 0; k < g->nmembers; k++)
			json_object_set_new(mem, t->links[g->members[k].link].name,
					    json_integer(g->members[k].weight));
		o = json_pack("{s:o}", KEY(GROUP, MEMBERS), mem);
		set_desc(o, KEY(GROUP, DESCRIPTION), t, g->desc);
		json_object_set_new(groups, g->name, o);
	}
	for (uint32_t i = 1; i < t->npolicies; i++) {
		const struct fwd_policy *p = &t->policies[i];
		json_t *o = action_json(t, p, 0);

		json_object_set_new(o, KEY(POLICY, REGION),
				    json_string(scope_name(t, p->region, 1)));
		json_object_set_new(o, KEY(POLICY, SERVICE),
				    json_string(scope_name(t, p->service, 0)));
		set_desc(o, KEY(POLICY, DESCRIPTION), t, p->desc);
		json_array_append_new(pols, o);
	}
	for (uint16_t i = 0; i < t->nresidency; i++) {
		const struct fwd_residency *r = &t->residency[i];
		json_t *svc = json_array(), *o;

		for (uint16_t k = 0; k < r->nservices; k++)
			json_array_append_new(svc, json_string(scope_name(t, r->services[k], 0)));
		o = json_pack("{s:s, s:s, s:o, s:o}", KEY(RESIDENCY, NAME), r->name,
			      KEY(RESIDENCY, REGION), t->region_names[r->region],
			      KEY(RESIDENCY, SERVICES), svc, KEY(RESIDENCY, ALLOWED_TAGS),
			      str_list((const char(*)[FWD_NAME_MAX])r->tags, r->ntags));
		set_desc(o, KEY(RESIDENCY, DESCRIPTION), t, r->desc);
		json_array_append_new(res, o);
	}
	json_object_set_new(m, KEY(DOC, REGIONS), regions);
	json_object_set_new(m, KEY(DOC, SERVICES), services);
	json_object_set_new(m, KEY(DOC, LINKS), links);
	json_object_set_new(m, KEY(DOC, LINK_GROUPS), groups);
	json_object_set_new(m, KEY(DOC, POLICIES), pols);
	{
		json_t *d = action_json(t, &t->policies[0], 1);

		set_desc(d, KEY(DEFAULT, DESCRIPTION), t, t->policies[0].desc);
		json_object_set_new(m, KEY(DOC, DEFAULT), d);
	}
	json_object_set_new(m, KEY(DOC, RESIDENCY), res);
	/* Every section, so a PATCH (model -> document) keeps what it does not touch. */
	if (t->filters.present)
		json_object_set_new(m, KEY(DOC, FILTERS), filters_model(t));
	if (t->ncontent)
		json_object_set_new(m, KEY(DOC, CONTENT_RULES), content_model(t));
	return m;
}

/* Names in a and not in b. */
static json_t *names_minus(json_t *a, json_t *b)
{
	json_t *out = json_array(), *v;
	const char *k;

	json_object_foreach(a, k, v)
		if (json_object_get(b, k) == NULL)
			json_array_append_new(out, json_string(k));
	return out;
}

static json_t *list_minus(json_t *a, json_t *b)
{
	json_t *set = json_object(), *out = json_array(), *v;
	size_t i;

	json_array_foreach(b, i, v)
		json_object_set(set, json_string_value(v), json_true());
	json_array_foreach(a, i, v)
		if (json_object_get(set, json_string_value(v)) == NULL)
			json_array_append(out, v);
	json_decref(set);
	return out;
}

static json_t *section_diff(json_t *mo, json_t *mn, const char *sec, int prefixes)
{
	json_t *o = json_object_get(mo, sec), *n = json_object_get(mn, sec), *v,
	       *changed = json_array();
	const char *k;

	json_object_foreach(o, k, v) {
		json_t *nv = json_object_get(n, k);

		if (nv == NULL || json_equal(v, nv))
			continue;
		if (prefixes) {
			json_t *po = json_object_get(v, KEY(REGION, PREFIXES));
			json_t *pn = json_object_get(nv, KEY(REGION, PREFIXES));

			json_t *dk = json_object_get(v, KEY(REGION, DESCRIPTION));
			json_t *dn = json_object_get(nv, KEY(REGION, DESCRIPTION));

			/* Equal prefixes: the description is what changed. */
			json_array_append_new(
				changed,
				json_pack("{s:s, s:o, s:o, s:b}", "name", k, "prefixes_added",
					  list_minus(pn, po), "prefixes_removed",
					  list_minus(po, pn), "description_changed",
					  !(dk == dn || (dk && dn && json_equal(dk, dn)))));
		} else {
			json_array_append_new(changed, json_pack("{s:s, s:O, s:O}", "name", k,
								 "before", v, "after", nv));
		}
	}
	return json_pack("{s:o, s:o, s:o}", "added", names_minus(n, o), "removed",
			 names_minus(o, n), "changed", changed);
}

/* An array of {"name": ...} objects as an object by name. */
static json_t *by_name(const json_t *list)
{
	json_t *out = json_object(), *v;
	size_t i;

	json_array_foreach(list, i, v)
		json_object_set(out, json_string_value(json_object_get(v, KEY(CONTENT, NAME))), v);
	return out;
}

static json_t *policies_by_key(json_t *m)
{
	json_t *out = json_object(), *v;
	size_t i;
	char key[80];

	json_array_foreach(json_object_get(m, KEY(DOC, POLICIES)), i, v) {
		snprintf(key, sizeof(key), "%s/%s",
			 json_string_value(json_object_get(v, KEY(POLICY, REGION))),
			 json_string_value(json_object_get(v, KEY(POLICY, SERVICE))));
		json_object_set(out, key, v);
	}
	return out;
}

json_t *ctl_diff(const struct fwd_table *old, const struct fwd_table *new)
{
	json_t *mo = ctl_model(old), *mn = ctl_model(new), *d = json_object();
	json_t *po = policies_by_key(mo), *pn = policies_by_key(mn);
	const char *const pols = KEY(DOC, POLICIES), *const res = KEY(DOC, RESIDENCY);
	const char *const dflt = KEY(DOC, DEFAULT);
	json_t *tmp_o = json_pack("{s:O}", pols, po), *tmp_n = json_pack("{s:O}", pols, pn);

	/* The diff is keyed by section name. */
	json_object_set_new(d, KEY(DOC, REGIONS), section_diff(mo, mn, KEY(DOC, REGIONS), 1));
	json_object_set_new(d, KEY(DOC, SERVICES), section_diff(mo, mn, KEY(DOC, SERVICES), 0));
	json_object_set_new(d, KEY(DOC, LINKS), section_diff(mo, mn, KEY(DOC, LINKS), 0));
	json_object_set_new(d, KEY(DOC, LINK_GROUPS),
			    section_diff(mo, mn, KEY(DOC, LINK_GROUPS), 0));
	json_object_set_new(d, pols, section_diff(tmp_o, tmp_n, pols, 0));
	{
		/* Rules by name, as the other sections are; filter settings apart. */
		const char *const flt = KEY(DOC, FILTERS), *const cr = KEY(DOC, CONTENT_RULES);
		json_t *fo = json_object_get(mo, flt), *fn = json_object_get(mn, flt);
		json_t *ro = json_pack("{s:o}", flt,
				       by_name(json_object_get(fo, KEY(FILTERS, RULES)))),
		       *rn = json_pack("{s:o}", flt,
				       by_name(json_object_get(fn, KEY(FILTERS, RULES)))),
		       *co = json_pack("{s:o}", cr, by_name(json_object_get(mo, cr))),
		       *cn = json_pack("{s:o}", cr, by_name(json_object_get(mn, cr))),
		       *so = json_deep_copy(fo), *sn = json_deep_copy(fn);

		json_object_set_new(d, flt, section_diff(ro, rn, flt, 0));
		json_object_set_new(d, cr, section_diff(co, cn, cr, 0));
		/* The settings are what the filter does: not its description. */
		json_object_del(so, KEY(FILTERS, RULES));
		json_object_del(sn, KEY(FILTERS, RULES));
		json_object_del(so, KEY(FILTERS, DESCRIPTION));
		json_object_del(sn, KEY(FILTERS, DESCRIPTION));
		json_object_set_new(d, "filters_settings_changed",
				    json_boolean(so && sn && !json_equal(so, sn)));
		json_object_set_new(d, "filters_section",
				    so && !sn	? json_string("removed")
				    : !so && sn ? json_string("added")
						: json_null());
		json_decref(ro);
		json_decref(rn);
		json_decref(co);
		json_decref(cn);
		json_decref(so);
		json_decref(sn);
	}
	json_object_set_new(
		d, "residency_changed",
		json_boolean(!json_equal(json_object_get(mo, res), json_object_get(mn, res))));
	json_object_set_new(
		d, "default_changed",
		json_boolean(!json_equal(json_object_get(mo, dflt), json_object_get(mn, dflt))));
	json_decref(tmp_o);
	json_decref(tmp_n);
	json_decref(po);
	json_decref(pn);
	json_decref(mo);
	json_decref(mn);
	return d;
}

/* Outcome of (region, service) by names: "link X", "link X (down)", "group G",
 * "group G (no member up)", "drop", or "absent" when either name does not
 * exist. A group whose every member that takes flows is down or drained
 * carries nothing (no_link_up), as a down link does: said so, or a change
 * that takes a region's whole group away would show as no change. */
void ctl_outcome(const struct fwd_table *t, const struct fwd_class *c, const char *region,
		 const char *service, char *buf, size_t len)
{
	int r = fwd_table_region_id(t, region), s = fwd_table_service_id(t, service);
	const struct fwd_policy *p;

	if (r < 0 || s < 0) {
		snprintf(buf, len, "absent");
		return;
	}
	p = &t->policies[c->matrix[(uint32_t)r * t->nservices + (uint32_t)s]];
	if (p->action == FWD_ACT_DROP) {
		snprintf(buf, len, "drop");
	} else if (p->action == FWD_ACT_GROUP) {
		const struct fwd_group *g = &t->groups[p->target];
		int carries = 0;

		for (uint16_t m = 0; m < g->nmembers && !carries; m++) {
			const struct fwd_link *l = &t->links[g->members[m].link];

			carries = g->members[m].weight && l->up && !l->drained;
		}
		snprintf(buf, len, "group %s%s", g->name, carries ? "" : " (no member up)");
	} else {
		snprintf(buf, len, "link %s%s", t->links[p->target].name,
			 t->links[p->target].up ? "" : " (down)");
	}
}

json_t *ctl_impact(const struct fwd_table *old, const struct fwd_table *new, size_t limit)
{
	struct fwd_class *co = fwd_class_build(old), *cn = fwd_class_build(new);
	json_t *out = json_array(), *regions = json_object(), *services = json_object();
	json_t *r = json_object(), *rv, *sv, *cells = json_object();
	const char *rk, *sk;
	int truncated = 0;
	char key[80];

	/* How many cells each old policy governs: its packets are one cell's
	 * only when it governs one (ctl_traffic.h). */
	for (uint32_t i = 0; co && i < (uint32_t)old->nregions * old->nservices; i++) {
		json_t *c;

		fwd_table_policy_key(old, co->matrix[i], key, sizeof(key));
		if ((c = json_object_get(cells, key)) == NULL)
			json_object_set_new(cells, key,
					    c = json_pack("{s:i, s:i}", "cells", 0, "changed", 0));
		json_object_set_new(
			c, "cells",
			json_integer(json_integer_value(json_object_get(c, "cells")) + 1));
	}

	for (uint16_t i = 0; i < old->nregions; i++)
		json_object_set_new(regions, old->region_names[i], json_true());
	for (uint16_t i = 0; i < new->nregions; i++)
		json_object_set_new(regions, new->region_names[i], json_true());
	for (uint16_t i = 0; i < old->nservices; i++)
		json_object_set_new(services, old->service_names[i], json_true());
	for (uint16_t i = 0; i < new->nservices; i++)
		json_object_set_new(services, new->service_names[i], json_true());
	json_object_foreach(regions, rk, rv) {
		json_object_foreach(services, sk, sv) {
			char before[80], after[80];

			if (co == NULL || cn == NULL)
				break;
			ctl_outcome(old, co, rk, sk, before, sizeof(before));
			ctl_outcome(new, cn, rk, sk, after, sizeof(after));
			if (strcmp(before, after) == 0)
				continue;
			if (json_array_size(out) >= limit) {
				truncated = 1;
				break;
			}
			json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "region", rk, "service", sk,
					      "before", before, "after", after);
			int ri = fwd_table_region_id(old, rk), si = fwd_table_service_id(old, sk);

			if (ri >= 0 && si >= 0) {
				json_t *c;

				fwd_table_policy_key(
					old,
					co->matrix[(uint32_t)ri * old->nservices + (uint32_t)si],
					key, sizeof(key));
				json_object_set_new(e, "policy", json_string(key));
				c = json_object_get(cells, key);
				json_object_set_new(c, "changed",
						    json_integer(json_integer_value(json_object_get(
									 c, "changed")) +
								 1));
			}
			json_array_append_new(out, e);
		}
	}
	json_object_set_new(r, "changes", out);
	json_object_set_new(r, "truncated", json_boolean(truncated));
	json_object_set_new(r, "policy_cells", cells);
	json_decref(regions);
	json_decref(services);
	fwd_class_free(co);
	fwd_class_free(cn);
	return r;
}

char *ctl_model_dump(const json_t *m, size_t *len)
{
	char *text = json_dumps(m, JSON_COMPACT), *out;
	size_t n;

	if (text == NULL)
		return NULL;
	n = strlen(text);
	out = realloc(text, n + 2);
	if (out == NULL) {
		free(text);
		return NULL;
	}
	out[n] = '\n';
	out[n + 1] = '\0';
	*len = n + 1;
	return out;
}
