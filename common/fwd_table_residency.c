/*
 * fwd_table_residency.c - the residency section: which links may carry a
 * region's protected services. fwd_residency.c checks the policies against it.
 */
#include "fwd_table_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tv_parse_residency(struct vctx *c, const struct fwd_node *res)
{
	const struct names *nm = &c->nm;
	const char *const sec = KEY(DOC, RESIDENCY), *const services = KEY(RESIDENCY, SERVICES);
	const char *const any = WORD(BUILTIN, ANY);
	struct fwd_table *t = c->t;
	char path[320];
	int rc;

	if (res == NULL)
		return 0;
	/* Refused where a table is written (fwd_table_check_written), not
	 * here: a table stored with it must still load. */
	if (res->type == FWD_NODE_NULL) {
		t->residency_null_line = res->line + 1;
		return 0;
	}
	if ((rc = tv_want(c, res, sec, FWD_NODE_SEQ)))
		return rc;
	if (res->count > FWD_MAX_RESIDENCY)
		return tv_fail_limit(c, res, sec, FWD_MAX_RESIDENCY, "residency rules");
	t->residency = calloc(res->count ? res->count : 1, sizeof(*t->residency));
	if (t->residency == NULL)
		return -ENOMEM;
	uint32_t i = 0;
	for (const struct fwd_node *m = res->child; m; m = m->next, i++) {
		struct fwd_residency *r = &t->residency[t->nresidency];
		const struct fwd_node *f;

		snprintf(path, sizeof(path), "%s[%u]", sec, i);
		if ((rc = tv_want(c, m, path, FWD_NODE_MAP)) ||
		    (rc = tv_check_keys(c, m, path, FWD_SC_RESIDENCY)) ||
		    (rc = tv_get_desc(c, m, path, FWD_F_RESIDENCY_DESCRIPTION, &r->desc)))
			return rc;
		snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(RESIDENCY, NAME));
		if ((f = fwd_node_get(m, KEY(RESIDENCY, NAME))) == NULL)
			return tv_fail(c, m, path, "missing field '%s'", KEY(RESIDENCY, NAME));
		if ((rc = tv_get_name(c, f, path, "rule", r->name)))
			return rc;
		for (uint16_t j = 0; j < t->nresidency; j++)
			if (strcmp(t->residency[j].name, r->name) == 0)
				return tv_fail(c, f, path, "residency rule '%s' is defined twice",
					       r->name);
		snprintf(path, sizeof(path), "%s[%u]", sec, i);
		if ((rc = tv_resolve_scope(c, &nm->regions, m, path, KEY(RESIDENCY, REGION),
					   WORD(BUILTIN, UNKNOWN), &r->region)))
			return rc;
		if (r->region == FWD_ANY) {
			snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(RESIDENCY, REGION));
			return tv_fail(c, fwd_node_get(m, KEY(RESIDENCY, REGION)), path,
				       "a residency rule protects one region, not '%s'", any);
		}
		/* 'unknown' is what no prefix holds: a prefix added to any
		 * region (a delta, the BGP feed) takes sources from it without
		 * nesting in anything, so no check could hold such a rule (a
		 * red team moved 10.0.0.0/8 out of it to a region steering out).
		 * A region of its own with 0.0.0.0/0 and ::/0 is checked. */
		if (r->region == FWD_REGION_UNKNOWN) {
			snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(RESIDENCY, REGION));
			return tv_fail(
				c, fwd_node_get(m, KEY(RESIDENCY, REGION)), path,
				"a residency rule cannot protect '%s': its sources are the "
				"addresses no region holds, and a prefix added to any region "
				"takes some of them out of the rule; give them a region of "
				"their own (prefixes 0.0.0.0/0 and ::/0) and protect that",
				WORD(BUILTIN, UNKNOWN));
		}
		snprintf(path, sizeof(path), "%s[%u].%s", sec, i, services);
		if ((f = fwd_node_get(m, services)) == NULL)
			return tv_fail(c, m, path, "missing field '%s' (a list, or [%s])", services,
				       any);
		if ((rc = tv_want(c, f, path, FWD_NODE_SEQ)))
			return rc;
		if (f->count == 0)
			return tv_fail(c, f, path, "list 1..%d services", FWD_MAX_SERVICES);
		if (f->count > FWD_MAX_SERVICES)
			return tv_fail_limit(c, f, path, FWD_MAX_SERVICES, "services");
		r->services = calloc(f->count, sizeof(*r->services));
		if (r->services == NULL)
			return -ENOMEM;
		t->nresidency++; /* from here r->services is owned by the table */
		uint32_t j = 0;
		for (const struct fwd_node *e = f->child; e; e = e->next, j++) {
			const char *s;
			int id;

			snprintf(path, sizeof(path), "%s[%u].%s[%u]", sec, i, services, j);
			if ((rc = tv_get_scalar(c, e, path, &s)))
				return rc;
			if (strcmp(s, any) == 0) {
				if (f->count != 1)
					return tv_fail(c, e, path, "'%s' must stand alone", any);
				id = FWD_ANY;
			} else if (strcmp(s, WORD(BUILTIN, OTHER)) == 0) {
				id = FWD_SERVICE_OTHER;
			} else if ((id = tv_nidx_find(&nm->services, s)) < 0) {
				return tv_fail(c, e, path, "unknown service '%s'", s);
			}
			for (uint32_t k = 0; k < r->nservices; k++)
				if (r->services[k] == id)
					return tv_fail(
						c, e, path,
						"service '%s' is listed twice (also at [%u])", s,
						k);
			r->services[r->nservices++] = (uint16_t)id;
		}
		snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(RESIDENCY, ALLOWED_TAGS));
		if ((f = fwd_node_get(m, KEY(RESIDENCY, ALLOWED_TAGS))) == NULL)
			return tv_fail(c, m, path, "missing field '%s'",
				       KEY(RESIDENCY, ALLOWED_TAGS));
		if ((rc = tv_parse_tags(c, f, path, r->tags, &r->ntags)))
			return rc;
		if (r->ntags == 0)
			return tv_fail(c, f, path, "list at least one tag");
	}
	return 0;
}
