/*
 * fwd_table_filters.c - the filters section: the XDP filter (docs/filters.md).
 */
#include "fwd_table_int.h"

#include "fwd_filter_kern_user.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(FWD_SCHEMA_POS(FILTER_ACTION, PASS) == FWD_FLT_PASS &&
		       FWD_SCHEMA_POS(FILTER_ACTION, DROP) == FWD_FLT_DROP &&
		       FWD_SCHEMA_POS(FILTER_ACTION, RATE) == FWD_FLT_RATE,
	       "fwd_schema.def: FILTER_ACTION words are indexed like enum fwd_flt_action");

static int parse_flt_action(struct vctx *c, const struct fwd_node *n, const char *path,
			    uint8_t *out, int allow_rate)
{
	const char *s;
	int rc = tv_get_scalar(c, n, path, &s), w;

	if (rc)
		return rc;
	w = fwd_schema_lookup(FWD_SC_FILTER_ACTION, s);
	if (w == FWD_V_FILTER_ACTION_PASS || w == FWD_V_FILTER_ACTION_DROP ||
	    (allow_rate && w == FWD_V_FILTER_ACTION_RATE)) {
		*out = (uint8_t)(w - FWD_SCHEMA_BEGIN_FILTER_ACTION); /* enum fwd_flt_action */
		return 0;
	}
	char rate[32] = "";

	if (allow_rate)
		snprintf(rate, sizeof(rate), ", '%s'", WORD(FILTER_ACTION, RATE));
	return tv_fail(c, n, path, "must be '%s'%s or '%s', not '%s'", WORD(FILTER_ACTION, PASS),
		       rate, WORD(FILTER_ACTION, DROP), s);
}

int tv_parse_filters(struct vctx *c, const struct fwd_node *f)
{
	/* The three actions of the filters section, each in its field. */
	static const struct {
		enum fwd_schema key;
		size_t off;
	} actions[] = {
		{FWD_F_FILTERS_DEFAULT, offsetof(struct fwd_filters, default_action)},
		{FWD_F_FILTERS_NON_IP, offsetof(struct fwd_filters, non_ip_action)},
		{FWD_F_FILTERS_MALFORMED, offsetof(struct fwd_filters, malformed_action)},
	};
	const char *const sec = KEY(DOC, FILTERS);
	const char *const name = KEY(FILTER_RULE, NAME), *const action = KEY(FILTER_RULE, ACTION);
	const char *const prefixes = KEY(FILTER_RULE, PREFIXES);
	const char *const services = KEY(FILTER_RULE, SERVICES);
	const char *const rate_pps = KEY(FILTER_RULE, RATE_PPS), *const burst =
									 KEY(FILTER_RULE, BURST);
	char rules_path[64];
	struct fwd_filters *fl = &c->t->filters;
	struct fwd_table s = {0}; /* the prefix and port parsers write here */
	struct vctx sc = *c;
	const struct fwd_node *rules, *n;
	uint32_t n4 = 0, n6 = 0, nr = 0;
	char path[320];
	int rc;

	if (f == NULL || f->type == FWD_NODE_NULL)
		return 0;
	if ((rc = tv_want(c, f, sec, FWD_NODE_MAP)) ||
	    (rc = tv_check_keys(c, f, sec, FWD_SC_FILTERS)) ||
	    (rc = tv_get_desc(c, f, sec, FWD_F_FILTERS_DESCRIPTION, &fl->desc)))
		return rc;
	fl->present = 1;
	for (size_t k = 0; k < sizeof(actions) / sizeof(actions[0]); k++) {
		const char *key = fwd_schema_name(actions[k].key);

		if ((n = fwd_node_get(f, key)) == NULL)
			continue;
		snprintf(path, sizeof(path), "%s.%s", sec, key);
		if ((rc = parse_flt_action(c, n, path, (uint8_t *)fl + actions[k].off, 0)))
			return rc;
	}
	if ((n = fwd_node_get(f, KEY(FILTERS, REDIRECT))) != NULL) {
		const char *v;
		char words[64];
		int w;

		snprintf(path, sizeof(path), "%s.%s", sec, KEY(FILTERS, REDIRECT));
		if ((rc = tv_get_scalar(c, n, path, &v)))
			return rc;
		if ((w = fwd_schema_lookup(FWD_SC_REDIRECT, v)) < 0)
			return tv_fail(
				c, n, path, "must be %s, not '%s'",
				tv_word_list(FWD_SC_REDIRECT, "'", " or ", words, sizeof(words)),
				v);
		fl->redirect = w == FWD_V_REDIRECT_AF_XDP;
	}
	snprintf(rules_path, sizeof(rules_path), "%s.%s", sec, KEY(FILTERS, RULES));
	rules = fwd_node_get(f, KEY(FILTERS, RULES));
	if (rules == NULL || rules->type == FWD_NODE_NULL)
		return 0;
	if ((rc = tv_want(c, rules, rules_path, FWD_NODE_SEQ)))
		return rc;
	if (rules->count > 4096)
		return tv_fail_limit(c, rules, rules_path, 4096, "filter rules");
	for (const struct fwd_node *r = rules->child; r; r = r->next) {
		const struct fwd_node *p = fwd_node_get(r, prefixes),
				      *sv = fwd_node_get(r, services);

		for (const struct fwd_node *e = p && p->type == FWD_NODE_SEQ ? p->child : NULL; e;
		     e = e->next)
			*(strchr(e->str, ':') ? &n6 : &n4) += 1;
		nr += sv && sv->type == FWD_NODE_SEQ ? sv->count * 3 : 0;
	}
	fl->rules = calloc(rules->count ? rules->count : 1, sizeof(*fl->rules));
	s.region_names = calloc(rules->count ? rules->count : 1, FWD_NAME_MAX);
	s.prefix4 = malloc(sizeof(*s.prefix4) * (n4 ? n4 : 1));
	s.prefix6 = malloc(sizeof(*s.prefix6) * (n6 ? n6 : 1));
	s.ranges = malloc(sizeof(*s.ranges) * (nr ? nr : 1));
	if (!fl->rules || !s.region_names || !s.prefix4 || !s.prefix6 || !s.ranges) {
		rc = -ENOMEM;
		goto out;
	}
	s.service_names = s.region_names;
	snprintf(s.source, sizeof(s.source), "%s", c->t->source);
	sc.t = &s;
	sc.filters = 1;
	uint32_t i = 0;
	for (const struct fwd_node *r = rules->child; r; r = r->next, i++) {
		struct fwd_filter_rule *fr = &fl->rules[i];
		const struct fwd_node *p, *sv;

		snprintf(path, sizeof(path), "%s[%u]", rules_path, i);
		if ((rc = tv_want(c, r, path, FWD_NODE_MAP)) ||
		    (rc = tv_check_keys(c, r, path, FWD_SC_FILTER_RULE)) ||
		    (rc = tv_get_desc(c, r, path, FWD_F_FILTER_RULE_DESCRIPTION, &fr->desc)))
			goto out;
		snprintf(path, sizeof(path), "%s[%u].%s", rules_path, i, name);
		if ((n = fwd_node_get(r, name)) == NULL) {
			rc = tv_fail(c, r, path, "missing field '%s'", name);
			goto out;
		}
		if ((rc = tv_get_name(c, n, path, "rule", fr->name)))
			goto out;
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(fl->rules[j].name, fr->name) == 0) {
				rc = tv_fail(c, n, path, "filter rule '%s' is defined twice",
					     fr->name);
				goto out;
			}
		memcpy(s.region_names[i], fr->name, FWD_NAME_MAX);
		fr->line = r->line;
		snprintf(path, sizeof(path), "%s[%u].%s", rules_path, i, action);
		if ((n = fwd_node_get(r, action)) == NULL) {
			rc = tv_fail(c, r, path, "missing field '%s' (%s or %s)", action,
				     WORD(FILTER_ACTION, PASS), WORD(FILTER_ACTION, DROP));
			goto out;
		}
		if ((rc = parse_flt_action(c, n, path, &fr->action, 1)))
			goto out;
		p = fwd_node_get(r, prefixes);
		sv = fwd_node_get(r, services);
		{
			const struct fwd_node *rp = fwd_node_get(r, rate_pps),
					      *bu = fwd_node_get(r, burst);
			const char *rate = WORD(FILTER_ACTION, RATE);
			uint64_t v;

			snprintf(path, sizeof(path), "%s[%u].%s", rules_path, i, rate_pps);
			if (fr->action == FWD_FLT_RATE) {
				if (rp == NULL) {
					rc = tv_fail(c, r, path, "%s '%s' needs '%s'", action, rate,
						     rate_pps);
					goto out;
				}
				if (p == NULL) {
					snprintf(path, sizeof(path), "%s[%u]", rules_path, i);
					rc = tv_fail(c, r, path,
						     "a %s rule limits source prefixes: give '%s'",
						     rate, prefixes);
					goto out;
				}
				if ((rc = tv_get_uint(c, rp, path, 1, 100000000, &v)))
					goto out;
				fr->rate_pps = (uint32_t)v;
				fr->burst = fr->rate_pps;
				if (bu) {
					snprintf(path, sizeof(path), "%s[%u].%s", rules_path, i,
						 burst);
					if ((rc = tv_get_uint(c, bu, path, 1, 100000000, &v)))
						goto out;
					fr->burst = (uint32_t)v;
				}
			} else if (rp || bu) {
				rc = tv_fail(c, rp ? rp : bu, path, "'%s' and '%s' go with %s '%s'",
					     rate_pps, burst, action, rate);
				goto out;
			}
		}
		if ((p == NULL) == (sv == NULL)) {
			snprintf(path, sizeof(path), "%s[%u]", rules_path, i);
			rc = tv_fail(c, r, path,
				     "a rule matches either '%s' or '%s', exactly one of them",
				     prefixes, services);
			goto out;
		}
		snprintf(path, sizeof(path), "%s[%u].%s", rules_path, i, p ? prefixes : services);
		if ((rc = tv_want(c, p ? p : sv, path, FWD_NODE_SEQ)))
			goto out;
		if ((p ? p : sv)->count == 0) {
			rc = tv_fail(c, p ? p : sv, path, "list at least one entry");
			goto out;
		}
		uint32_t k = 0;
		for (const struct fwd_node *e = (p ? p : sv)->child; e; e = e->next, k++) {
			uint32_t before = s.nranges;

			snprintf(path, sizeof(path), "%s[%u].%s[%u]", rules_path, i,
				 p ? prefixes : services, k);
			if ((rc = p ? tv_parse_prefix(&sc, e, path, (uint16_t)i)
				    : tv_parse_svc_entry(&sc, e, path, (uint16_t)i)))
				goto out;
			for (uint32_t x = before; x < s.nranges; x++)
				if (s.ranges[x].proto != FWD_PROTO_TCP &&
				    s.ranges[x].proto != FWD_PROTO_UDP &&
				    s.ranges[x].proto != FWD_PROTO_SCTP) {
					rc = tv_fail(c, e, path,
						     "filter services take tcp, udp, sctp or any "
						     "with ports");
					goto out;
				}
		}
	}
	fl->nrules = (uint16_t)i;
	if ((rc = tv_check_dup_prefixes(&sc)) || (rc = tv_check_overlaps(&sc)))
		goto out;
	{
		uint8_t lens[129] = {0}; /* a flag a length: a count wrapped at 256 */
		int distinct = 0;

		for (uint32_t x = 0; x < s.nprefix6; x++)
			if (!lens[s.prefix6[x].len]) {
				lens[s.prefix6[x].len] = 1;
				distinct++;
			}
		if (distinct > FWD_FLT_MAX_V6_LENGTHS) {
			rc = tv_fail(c, rules, rules_path,
				     "IPv6 filter prefixes use %d distinct lengths; at most %d",
				     distinct, FWD_FLT_MAX_V6_LENGTHS);
			goto out;
		}
	}
	fl->prefix4 = s.prefix4;
	fl->prefix6 = s.prefix6;
	fl->ranges = s.ranges;
	fl->nprefix4 = s.nprefix4;
	fl->nprefix6 = s.nprefix6;
	fl->nranges = s.nranges;
	s.prefix4 = NULL;
	s.prefix6 = NULL;
	s.ranges = NULL;
	rc = 0;
out:
	free(s.prefix4);
	free(s.prefix6);
	free(s.ranges);
	free(s.region_names);
	return rc;
}
