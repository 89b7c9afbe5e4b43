/*
 * fwd_table_policies.c - the policies and default sections: (region,
 * service) -> action, unique per pair, and the default as policy 0.
 */
#include "fwd_table_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int resolve_target(struct vctx *c, const struct names *nm, const struct fwd_node *n,
			  const char *path, struct fwd_policy *p)
{
	const char *s;
	int rc = tv_get_scalar(c, n, path, &s), id;

	if (rc)
		return rc;
	if ((id = tv_nidx_find(&nm->links, s)) >= 0) {
		p->action = FWD_ACT_LINK;
		p->target = (uint16_t)id;
		return 0;
	}
	if ((id = tv_nidx_find(&nm->groups, s)) >= 0) {
		p->action = FWD_ACT_GROUP;
		p->target = (uint16_t)id;
		return 0;
	}
	return tv_fail(c, n, path, "unknown link or link group '%s'", s);
}

/* The action of a policy or (@dflt) of the default section. */
static int parse_action(struct vctx *c, const struct names *nm, const struct fwd_node *m,
			const char *base, int dflt, struct fwd_policy *p)
{
	const char *const action = dflt ? KEY(DEFAULT, ACTION) : KEY(POLICY, ACTION);
	const char *const to_key = dflt ? KEY(DEFAULT, TO) : KEY(POLICY, TO);
	const char *const mirror = dflt ? KEY(DEFAULT, MIRROR) : KEY(POLICY, MIRROR);
	const struct fwd_node *a = fwd_node_get(m, action), *to = fwd_node_get(m, to_key),
			      *mir = fwd_node_get(m, mirror);
	char path[340];
	const char *s;
	int rc, w;

	snprintf(path, sizeof(path), "%s.%s", base, action);
	if (a == NULL)
		return tv_fail(c, m, path, "missing field '%s'", action);
	if ((rc = tv_get_scalar(c, a, path, &s)))
		return rc;
	p->mirror = FWD_LINK_NONE;
	p->line = m->line;
	w = fwd_schema_lookup(FWD_SC_POLICY_ACTION, s);
	if (w == FWD_V_POLICY_ACTION_DROP) {
		p->action = FWD_ACT_DROP;
		p->target = 0;
		if (to) {
			snprintf(path, sizeof(path), "%s.%s", base, to_key);
			return tv_fail(c, to, path, "%s '%s' takes no '%s'", action, s, to_key);
		}
	} else if (w == FWD_V_POLICY_ACTION_STEER) {
		snprintf(path, sizeof(path), "%s.%s", base, to_key);
		if (to == NULL)
			return tv_fail(c, m, path, "%s '%s' needs '%s' (a link or link group)",
				       action, s, to_key);
		if ((rc = resolve_target(c, nm, to, path, p)))
			return rc;
	} else {
		char words[64];

		return tv_fail(
			c, a, path, "%s must be %s, not '%s'", action,
			tv_word_list(FWD_SC_POLICY_ACTION, "'", " or ", words, sizeof(words)), s);
	}
	if (mir) {
		int id;

		snprintf(path, sizeof(path), "%s.%s", base, mirror);
		if ((rc = tv_get_scalar(c, mir, path, &s)))
			return rc;
		if ((id = tv_nidx_find(&nm->links, s)) < 0)
			return tv_fail(c, mir, path, "unknown link '%s' (%s takes a link)", s,
				       mirror);
		/* A copy on the link the original takes: every packet left on
		 * it twice (a probe's find), which no receiver wants. */
		if (p->action == FWD_ACT_LINK && p->target == (uint16_t)id)
			return tv_fail(c, mir, path,
				       "'%s' is the link the packets are steered to: each would "
				       "leave on it twice (mirror to another link, or leave %s "
				       "out)",
				       s, mirror);
		p->mirror = (uint16_t)id;
	}
	return 0;
}

int tv_resolve_scope(struct vctx *c, const struct nidx *x, const struct fwd_node *m,
		     const char *base, const char *field, const char *builtin, uint16_t *out)
{
	const struct fwd_node *n = fwd_node_get(m, field);
	char path[340];
	const char *s;
	int rc, id;

	snprintf(path, sizeof(path), "%s.%s", base, field);
	if (n == NULL)
		return tv_fail(c, m, path, "missing field '%s' (a name or '%s')", field,
			       WORD(BUILTIN, ANY));
	if ((rc = tv_get_scalar(c, n, path, &s)))
		return rc;
	if (strcmp(s, WORD(BUILTIN, ANY)) == 0) {
		*out = FWD_ANY;
		return 0;
	}
	if (strcmp(s, builtin) == 0) {
		*out = 0;
		return 0;
	}
	if ((id = tv_nidx_find(x, s)) < 0)
		return tv_fail(c, n, path, "unknown %s '%s'", field, s);
	*out = (uint16_t)id;
	return 0;
}

/* The default is read here, not by a section of its own: a policies field
 * of the wrong shape is refused before anything in the default. */
int tv_parse_policies(struct vctx *c, const struct fwd_node *pol)
{
	const char *const sec = KEY(DOC, POLICIES), *const dsec = KEY(DOC, DEFAULT);
	const struct fwd_node *def = fwd_node_get(c->root, dsec);
	const struct names *nm = &c->nm;
	const char *const any = WORD(BUILTIN, ANY);
	struct fwd_table *t = c->t;
	uint32_t n = pol && pol->type == FWD_NODE_SEQ ? pol->count : 0;
	char path[320];
	int rc;

	if (pol && pol->type != FWD_NODE_NULL && (rc = tv_want(c, pol, sec, FWD_NODE_SEQ)))
		return rc;
	if (n + 1 > FWD_MAX_POLICIES)
		return tv_fail_limit(c, pol, sec, FWD_MAX_POLICIES - 1, "policies");
	t->policies = calloc(n + 1, sizeof(*t->policies));
	if (t->policies == NULL)
		return -ENOMEM;

	/* Policy 0: the default, drop when the document has none (fail closed). */
	t->policies[0] = (struct fwd_policy){.region = FWD_ANY,
					     .service = FWD_ANY,
					     .action = FWD_ACT_DROP,
					     .mirror = FWD_LINK_NONE};
	if (def && def->type != FWD_NODE_NULL) {
		if ((rc = tv_want(c, def, dsec, FWD_NODE_MAP)) ||
		    (rc = tv_check_keys(c, def, dsec, FWD_SC_DEFAULT)) ||
		    (rc = parse_action(c, nm, def, dsec, 1, &t->policies[0])) ||
		    (rc = tv_get_desc(c, def, dsec, FWD_F_DEFAULT_DESCRIPTION,
				      &t->policies[0].desc)))
			return rc;
		t->policies[0].region = FWD_ANY;
		t->policies[0].service = FWD_ANY;
	}
	t->npolicies = 1;

	/* Uniqueness of (region, service): a dense bitmap would be 16M bits at
	 * the limits; a hash of the pair into a small open table is enough. */
	uint32_t cap = 64;
	while (cap < n * 2)
		cap <<= 1;
	uint32_t *seen = calloc(cap, sizeof(*seen)); /* policy index + 1 */
	if (seen == NULL)
		return -ENOMEM;
	uint32_t i = 0;
	for (const struct fwd_node *m = n ? pol->child : NULL; m; m = m->next, i++) {
		struct fwd_policy *p = &t->policies[t->npolicies];
		uint32_t key, h;

		snprintf(path, sizeof(path), "%s[%u]", sec, i);
		if ((rc = tv_want(c, m, path, FWD_NODE_MAP)) ||
		    (rc = tv_check_keys(c, m, path, FWD_SC_POLICY)) ||
		    (rc = tv_resolve_scope(c, &nm->regions, m, path, KEY(POLICY, REGION),
					   WORD(BUILTIN, UNKNOWN), &p->region)) ||
		    (rc = tv_resolve_scope(c, &nm->services, m, path, KEY(POLICY, SERVICE),
					   WORD(BUILTIN, OTHER), &p->service)) ||
		    (rc = parse_action(c, nm, m, path, 0, p)) ||
		    (rc = tv_get_desc(c, m, path, FWD_F_POLICY_DESCRIPTION, &p->desc)))
			goto out;
		if (p->region == FWD_ANY && p->service == FWD_ANY) {
			rc = tv_fail(c, m, path, "%s '%s' with %s '%s' is the '%s' section",
				     KEY(POLICY, REGION), any, KEY(POLICY, SERVICE), any, dsec);
			goto out;
		}
		key = (uint32_t)p->region << 16 | p->service;
		for (h = (key * 2654435761u) & (cap - 1); seen[h]; h = (h + 1) & (cap - 1)) {
			const struct fwd_policy *q = &t->policies[seen[h]];

			if (((uint32_t)q->region << 16 | q->service) == key) {
				char where[48];

				/* A JSON document (and a PATCH's model) has no
				 * lines: name the earlier policy by its index. */
				if (q->line)
					snprintf(where, sizeof(where), "line %u", q->line);
				else
					snprintf(where, sizeof(where), "%s[%u]",
						 FWD_KEY_NAME(DOC, POLICIES), seen[h] - 1);
				rc = tv_fail(
					c, m, path,
					"a policy for %s '%s', %s '%s' already exists (%s)",
					KEY(POLICY, REGION),
					p->region == FWD_ANY ? any : t->region_names[p->region],
					KEY(POLICY, SERVICE),
					p->service == FWD_ANY ? any : t->service_names[p->service],
					where);
				goto out;
			}
		}
		seen[h] = t->npolicies;
		t->npolicies++;
	}
	rc = 0;
out:
	free(seen);
	return rc;
}
