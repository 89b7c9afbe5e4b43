#include "fwd_residency.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void tag_list(const char (*tags)[FWD_NAME_MAX], uint8_t n, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (uint8_t i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", tags[i]);
	if (n == 0)
		snprintf(buf, len, "none");
}

static int violation(const struct fwd_table *t, const struct fwd_residency *r, uint16_t service,
		     uint32_t pid, const struct fwd_link *l, const char *how, struct fwd_err *err)
{
	const struct fwd_policy *p = &t->policies[pid];
	char path[64], have[256], want[256];

	if (pid == FWD_POLICY_DEFAULT)
		snprintf(path, sizeof(path), "%s", FWD_KEY_NAME(DOC, DEFAULT));
	else
		snprintf(path, sizeof(path), "%s[%u]", FWD_KEY_NAME(DOC, POLICIES), pid - 1);
	tag_list((const char(*)[FWD_NAME_MAX])l->tags, l->ntags, have, sizeof(have));
	tag_list((const char(*)[FWD_NAME_MAX])r->tags, r->ntags, want, sizeof(want));
	fwd_err_set(err, t->source, p->line, path,
		    "breaks residency rule '%s': region '%s' service '%s' %s link '%s' "
		    "(tags: %s; allowed: %s)",
		    r->name, t->region_names[r->region], t->service_names[service], how, l->name,
		    have, want);
	return -EPERM;
}

int fwd_residency_check(const struct fwd_table *t, const struct fwd_class *c, struct fwd_err *err)
{
	for (uint16_t i = 0; i < t->nresidency; i++) {
		const struct fwd_residency *r = &t->residency[i];
		int all = r->nservices == 1 && r->services[0] == FWD_ANY;
		uint16_t n = all ? t->nservices : r->nservices;

		for (uint16_t k = 0; k < n; k++) {
			uint16_t s = all ? k : r->services[k];
			uint32_t pid = c->matrix[(uint32_t)r->region * t->nservices + s];
			const struct fwd_policy *p = &t->policies[pid];

			if (p->action == FWD_ACT_LINK && !fwd_link_allowed(&t->links[p->target], r))
				return violation(t, r, s, pid, &t->links[p->target], "steers to",
						 err);
			if (p->action == FWD_ACT_GROUP) {
				const struct fwd_group *g = &t->groups[p->target];

				for (uint16_t m = 0; m < g->nmembers; m++) {
					const struct fwd_link *l = &t->links[g->members[m].link];
					char how[64];

					snprintf(how, sizeof(how), "steers to group '%s' with",
						 g->name);
					if (g->members[m].weight && !fwd_link_allowed(l, r))
						return violation(t, r, s, pid, l, how, err);
				}
			}
			if (p->mirror != FWD_LINK_NONE &&
			    !fwd_link_allowed(&t->links[p->mirror], r))
				return violation(t, r, s, pid, &t->links[p->mirror], "mirrors to",
						 err);
		}
	}
	return 0;
}
