#include "fwd_residency.h"

#include "fwd_hash.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
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

/* "tags: a, b" or "no tags": a link's tags as the refusals show them, so an
 * untagged link does not read as one tagged "none". */
static void link_tags(const struct fwd_link *l, char *buf, size_t len)
{
	char list[256];

	if (l->ntags == 0) {
		snprintf(buf, len, "no tags");
		return;
	}
	tag_list((const char(*)[FWD_NAME_MAX])l->tags, l->ntags, list, sizeof(list));
	snprintf(buf, len, "tags: %s", list);
}

static int violation(const struct fwd_table *t, const struct fwd_residency *r, uint16_t service,
		     uint32_t pid, const struct fwd_link *l, const char *how, struct fwd_err *err)
{
	const struct fwd_policy *p = &t->policies[pid];
	char path[64], have[272], want[256]; /* have: "tags: " and a list */

	if (pid == FWD_POLICY_DEFAULT)
		snprintf(path, sizeof(path), "%s", FWD_KEY_NAME(DOC, DEFAULT));
	else
		snprintf(path, sizeof(path), "%s[%u]", FWD_KEY_NAME(DOC, POLICIES), pid - 1);
	/* "no tags" for an untagged link: "tags: none" read the same as a
	 * link tagged 'none' (a probe). */
	link_tags(l, have, sizeof(have));
	tag_list((const char(*)[FWD_NAME_MAX])r->tags, r->ntags, want, sizeof(want));
	fwd_err_set(err, t->source, p->line, path,
		    "breaks residency rule '%s': region '%s' service '%s' %s link '%s' "
		    "(%s; allowed: %s)",
		    r->name, t->region_names[r->region], t->service_names[service], how, l->name,
		    have, want);
	return -EPERM;
}

/* The first link of cell (@region, @s) that rule @r does not allow, with how
 * the cell's policy uses it; NULL when the cell keeps to the rule. */
static const struct fwd_link *cell_breaks(const struct fwd_table *t, const struct fwd_class *c,
					  const struct fwd_residency *r, uint16_t region,
					  uint16_t s, uint32_t *pid_out, char *how, size_t howlen)
{
	uint32_t pid = c->matrix[(uint32_t)region * t->nservices + s];
	const struct fwd_policy *p = &t->policies[pid];

	*pid_out = pid;
	if (p->action == FWD_ACT_LINK && !fwd_link_allowed(&t->links[p->target], r)) {
		snprintf(how, howlen, "steers to");
		return &t->links[p->target];
	}
	if (p->action == FWD_ACT_GROUP) {
		const struct fwd_group *g = &t->groups[p->target];

		for (uint16_t m = 0; m < g->nmembers; m++) {
			const struct fwd_link *l = &t->links[g->members[m].link];

			if (g->members[m].weight && !fwd_link_allowed(l, r)) {
				snprintf(how, howlen, "steers to group '%s' with", g->name);
				return l;
			}
		}
	}
	if (p->mirror != FWD_LINK_NONE && !fwd_link_allowed(&t->links[p->mirror], r)) {
		snprintf(how, howlen, "mirrors to");
		return &t->links[p->mirror];
	}
	return NULL;
}

/* 1 when content rule @cr runs on traffic classified as @region. */
static int content_scopes(const struct fwd_content_rule *cr, uint16_t region)
{
	if (cr->nregions == 0)
		return 1;
	for (uint16_t k = 0; k < cr->nregions; k++)
		if (cr->regions[k] == region)
			return 1;
	return 0;
}

/* The first link content rule @cr would carry traffic of one of rule @r's
 * services on that @r does not allow, with the service and how; NULL when
 * it keeps to the rule (count and drop send nothing anywhere). Scope by
 * region is the caller's. */
static const struct fwd_link *content_breaks(const struct fwd_table *t,
					     const struct fwd_content_rule *cr,
					     const struct fwd_residency *r, uint16_t *svc_out,
					     char *how, size_t howlen)
{
	const struct fwd_link *l = NULL;
	int svc = -1;

	if (cr->action != FWD_CA_MIRROR && cr->action != FWD_CA_STEER)
		return NULL;
	/* The target first: one link or a group's members, where the
	 * services are the two rules' lists against each other. */
	if (cr->target_kind == FWD_ACT_LINK) {
		if (fwd_link_allowed(&t->links[cr->target], r))
			return NULL;
		snprintf(how, howlen, "%ss to", fwd_content_action_name(cr->action));
		l = &t->links[cr->target];
	} else {
		const struct fwd_group *g = &t->groups[cr->target];

		for (uint16_t m = 0; m < g->nmembers && l == NULL; m++)
			if (g->members[m].weight &&
			    !fwd_link_allowed(&t->links[g->members[m].link], r)) {
				snprintf(how, howlen, "steers to group '%s' with", g->name);
				l = &t->links[g->members[m].link];
			}
		if (l == NULL)
			return NULL;
	}
	for (uint16_t k = 0; k < cr->nservices && svc < 0; k++)
		for (uint16_t m = 0; m < r->nservices && svc < 0; m++)
			if (r->services[m] == FWD_ANY || r->services[m] == cr->services[k])
				svc = cr->services[k];
	if (svc < 0)
		return NULL;
	*svc_out = (uint16_t)svc;
	return l;
}

/* The services of content rule @cr that rule @r protects, as "service 'a'"
 * or "services 'a', 'b'": the rule's allowed tags bind each of them, so the
 * refusal names every one the operator would have to move, not the first. */
static void protected_services(const struct fwd_table *t, const struct fwd_content_rule *cr,
			       const struct fwd_residency *r, char *buf, size_t len)
{
	size_t off = 0;
	unsigned n = 0;

	for (uint16_t k = 0; k < cr->nservices; k++)
		for (uint16_t m = 0; m < r->nservices; m++)
			if (r->services[m] == FWD_ANY || r->services[m] == cr->services[k]) {
				n++;
				break;
			}
	off = (size_t)snprintf(buf, len, "service%s ", n == 1 ? "" : "s");
	n = 0;
	for (uint16_t k = 0; k < cr->nservices && off < len; k++)
		for (uint16_t m = 0; m < r->nservices; m++)
			if (r->services[m] == FWD_ANY || r->services[m] == cr->services[k]) {
				off += (size_t)snprintf(buf + off, len - off, "%s'%s'",
							n++ ? ", " : "",
							t->service_names[cr->services[k]]);
				break;
			}
}

int fwd_residency_check_content(const struct fwd_table *t, const struct fwd_content_rule *cr,
				const char *path, struct fwd_err *err)
{
	for (uint16_t i = 0; i < t->nresidency; i++) {
		const struct fwd_residency *r = &t->residency[i];
		char how[96], have[300], want[256], svcs[300];
		uint16_t s;
		const struct fwd_link *l;

		if (!content_scopes(cr, r->region) ||
		    (l = content_breaks(t, cr, r, &s, how, sizeof(how))) == NULL)
			continue;
		/* The protected services, the tags the rule allows and the link's
		 * own, as the nested-prefix refusal says them: what to change
		 * (the link's tags, the rule's, or the content rule's scope)
		 * can be read off the refusal. */
		link_tags(l, have, sizeof(have));
		tag_list((const char(*)[FWD_NAME_MAX])r->tags, r->ntags, want, sizeof(want));
		protected_services(t, cr, r, svcs, sizeof(svcs));
		if (cr->target_kind == FWD_ACT_LINK)
			return fwd_err_fail(
				err, FWD_R_RESIDENCY_VIOLATION, t->source, cr->line, path,
				"breaks residency rule '%s': %ss region '%s' traffic to "
				"link '%s' (%s), but the rule allows %s only on links tagged %s",
				r->name, fwd_content_action_name(cr->action),
				t->region_names[r->region], l->name, have, svcs, want);
		return fwd_err_fail(
			err, FWD_R_RESIDENCY_VIOLATION, t->source, cr->line, path,
			"breaks residency rule '%s': steers region '%s' traffic to "
			"group '%s' with link '%s' (%s), but the rule allows %s only on "
			"links tagged %s",
			r->name, t->region_names[r->region], t->groups[cr->target].name, l->name,
			have, svcs, want);
	}
	return 0;
}

static int rule_services(const struct fwd_residency *r, uint16_t k)
{
	return r->nservices == 1 && r->services[0] == FWD_ANY ? k : r->services[k];
}

static uint16_t rule_nservices(const struct fwd_table *t, const struct fwd_residency *r)
{
	return r->nservices == 1 && r->services[0] == FWD_ANY ? t->nservices : r->nservices;
}

/* The refusal of a region @inner nested in protected @outer: @who (the
 * region, or one of its content rules) @how (steers to, mirrors to) link
 * @l, which rule @r does not allow for service @s. */
static int nested_refusal(const struct fwd_table *t, const struct fwd_residency *r, uint16_t inner,
			  uint16_t outer, const char *inner_pfx, const char *outer_pfx,
			  uint32_t line, const char *path, uint16_t s, const char *who,
			  const char *how, const struct fwd_link *l, struct fwd_err *err)
{
	char have[300], want[256];

	link_tags(l, have, sizeof(have));
	tag_list((const char(*)[FWD_NAME_MAX])r->tags, r->ntags, want, sizeof(want));
	fwd_err_fail(err, FWD_R_RESIDENCY_VIOLATION, t->source, line, path,
		     FWD_RESIDENCY_NESTED_HEAD
		     " and would take its "
		     "protected traffic out: residency rule '%s' allows service '%s' only on "
		     "links tagged %s, but %s %s link '%s' (%s)",
		     inner_pfx, t->region_names[inner], outer_pfx, t->region_names[outer], r->name,
		     t->service_names[s], want, who, how, l->name, have);
	return -EPERM;
}

/* What of region @inner breaks a rule of protected region @outer whose
 * users it would take: the rule, the service, who (the region, or one of
 * its content rules), how (steers to, mirrors to) and the link; NULL when
 * @inner keeps to every rule of @outer. */
struct pair_break {
	const struct fwd_residency *rule;
	uint16_t service;
	char who[160], how[96];
};

static const struct fwd_link *pair_breaks(const struct fwd_table *t, const struct fwd_class *c,
					  uint16_t inner, uint16_t outer, struct pair_break *b)
{
	if (inner == outer)
		return NULL;
	for (uint16_t i = 0; i < t->nresidency; i++) {
		const struct fwd_residency *r = &t->residency[i];
		uint16_t n = rule_nservices(t, r);

		if (r->region != outer)
			continue;
		b->rule = r;
		for (uint16_t k = 0; k < n; k++) {
			uint32_t pid;
			const struct fwd_link *l;

			b->service = (uint16_t)rule_services(r, k);
			l = cell_breaks(t, c, r, inner, b->service, &pid, b->how, sizeof(b->how));
			if (l == NULL)
				continue;
			snprintf(b->who, sizeof(b->who), "region '%s'", t->region_names[inner]);
			return l;
		}
		/* The content rules of the inner region act on the outer's
		 * protected users too; rules of every region are checked
		 * against the outer itself (fwd_residency_check_content). */
		for (uint32_t ci = 0; ci < t->ncontent; ci++) {
			const struct fwd_content_rule *cr = &t->content[ci];
			const struct fwd_link *l;

			if (cr->nregions == 0 || !content_scopes(cr, inner) ||
			    (l = content_breaks(t, cr, r, &b->service, b->how, sizeof(b->how))) ==
				    NULL)
				continue;
			snprintf(b->who, sizeof(b->who), "content rule '%s' of region '%s'",
				 cr->name, t->region_names[inner]);
			return l;
		}
	}
	return NULL;
}

int fwd_residency_check_pair(const struct fwd_table *t, const struct fwd_class *c, uint16_t inner,
			     uint16_t outer, const char *inner_pfx, const char *outer_pfx,
			     uint32_t line, const char *path, struct fwd_err *err)
{
	struct pair_break b;
	const struct fwd_link *l = pair_breaks(t, c, inner, outer, &b);

	if (l == NULL)
		return 0;
	return nested_refusal(t, b.rule, inner, outer, inner_pfx, outer_pfx, line, path, b.service,
			      b.who, b.how, l, err);
}

/* ---- pair verdicts in bulk (fwd_res_pairs) ---------------------------------------- */

/* What an outer region's rules allow, per service they protect: the links
 * every rule covering that service allows (the intersection of their
 * rows), as a class shared by services with the same links. */
struct res_outer {
	int built;
	uint32_t nsvc; /* services some rule of the region protects */
	uint16_t *svc;
	uint32_t *cls_of; /* per svc[] entry: its class */
	uint64_t *cls; /* per class: lw words of allowed links */
	uint64_t *content_bad; /* regions a breaking content rule is scoped to */
};

struct fwd_res_pairs {
	const struct fwd_table *t;
	const struct fwd_class *c;
	size_t lw; /* words of a link bitmap */
	uint64_t *allowed; /* per residency rule: the links it allows */
	uint64_t *group_links; /* per group: its members that can carry traffic */
	/* Regions whose policy rows are equal (most: those without policies
	 * of their own) share their cells' verdicts: a table of 2,000 chains
	 * of 56 protected and 56 other regions, 4,000 services, made millions
	 * of pairs and took 105 s judged pair by pair (a probe). */
	uint16_t *row_of; /* per region: its row's id */
	uint16_t *row_rep; /* per row id: a region with that row */
	uint8_t *memo; /* outer x nregions + row id: 0 not asked, 1 keeps, 2 breaks */
	struct res_outer *outer; /* per region */
};

static int bit_of(const uint64_t *w, uint32_t i)
{
	return (int)(w[i / 64] >> (i % 64) & 1);
}

/* 1 when @g's links all lie in @a. */
static int links_within(const uint64_t *g, const uint64_t *a, size_t lw)
{
	uint64_t out = 0;

	for (size_t k = 0; k < lw; k++)
		out |= g[k] & ~a[k];
	return out == 0;
}

void fwd_residency_pairs_free(struct fwd_res_pairs *p)
{
	if (p == NULL)
		return;
	for (uint16_t r = 0; p->outer && r < p->t->nregions; r++) {
		free(p->outer[r].svc);
		free(p->outer[r].cls_of);
		free(p->outer[r].cls);
		free(p->outer[r].content_bad);
	}
	free(p->outer);
	free(p->memo);
	free(p->row_of);
	free(p->row_rep);
	free(p->allowed);
	free(p->group_links);
	free(p);
}

/* row_of[] and row_rep[]: equal rows of the policy matrix share an id. */
static int rows_intern(struct fwd_res_pairs *p)
{
	const struct fwd_table *t = p->t;
	const size_t rl = (size_t)t->nservices * sizeof(uint16_t);
	uint32_t nslot = 16, nrows = 0;
	uint32_t *slot;

	while (nslot < 2u * t->nregions)
		nslot <<= 1;
	if ((slot = malloc(nslot * sizeof(*slot))) == NULL)
		return -ENOMEM;
	memset(slot, 0xff, nslot * sizeof(*slot));
	for (uint16_t r = 0; r < t->nregions; r++) {
		const uint16_t *row = p->c->matrix + (size_t)r * t->nservices;
		uint32_t k = (uint32_t)fwd_hash64(row, rl) & (nslot - 1);

		while (slot[k] != UINT32_MAX &&
		       memcmp(p->c->matrix + (size_t)p->row_rep[slot[k]] * t->nservices, row, rl))
			k = (k + 1) & (nslot - 1);
		if (slot[k] == UINT32_MAX) {
			p->row_rep[nrows] = r;
			slot[k] = nrows++;
		}
		p->row_of[r] = (uint16_t)slot[k];
	}
	free(slot);
	return 0;
}

struct fwd_res_pairs *fwd_residency_pairs_create(const struct fwd_table *t,
						 const struct fwd_class *c)
{
	struct fwd_res_pairs *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->t = t;
	p->c = c;
	p->lw = (t->nlinks + 63u) / 64u + 1;
	p->allowed = calloc((size_t)t->nresidency + 1, p->lw * sizeof(uint64_t));
	p->group_links = calloc((size_t)t->ngroups + 1, p->lw * sizeof(uint64_t));
	p->memo = calloc((size_t)t->nregions * t->nregions + 1, 1);
	p->outer = calloc((size_t)t->nregions + 1, sizeof(*p->outer));
	p->row_of = calloc((size_t)t->nregions + 1, sizeof(*p->row_of));
	p->row_rep = calloc((size_t)t->nregions + 1, sizeof(*p->row_rep));
	if (!p->allowed || !p->group_links || !p->memo || !p->outer || !p->row_of || !p->row_rep ||
	    rows_intern(p)) {
		fwd_residency_pairs_free(p);
		return NULL;
	}
	for (uint16_t i = 0; i < t->nresidency; i++)
		for (uint16_t l = 0; l < t->nlinks; l++)
			if (fwd_link_allowed(&t->links[l], &t->residency[i]))
				p->allowed[i * p->lw + l / 64] |= 1ull << (l % 64);
	for (uint16_t g = 0; g < t->ngroups; g++)
		for (uint16_t m = 0; m < t->groups[g].nmembers; m++)
			if (t->groups[g].members[m].weight) {
				uint16_t l = t->groups[g].members[m].link;

				p->group_links[g * p->lw + l / 64] |= 1ull << (l % 64);
			}
	return p;
}

/* 1 when content rule @cr carries some service rule @i protects on a link
 * the rule does not allow (content_breaks(), on the bitmaps). @svc_of_rule:
 * the rule's services as a bitmap. */
static int content_rule_breaks(const struct fwd_res_pairs *p, const struct fwd_content_rule *cr,
			       uint16_t i, const uint64_t *svc_of_rule)
{
	const uint64_t *a = p->allowed + (size_t)i * p->lw;

	if (cr->action != FWD_CA_MIRROR && cr->action != FWD_CA_STEER)
		return 0;
	if (cr->target_kind == FWD_ACT_LINK
		    ? bit_of(a, cr->target)
		    : links_within(p->group_links + (size_t)cr->target * p->lw, a, p->lw))
		return 0;
	for (uint16_t k = 0; k < cr->nservices; k++)
		if (bit_of(svc_of_rule, cr->services[k]))
			return 1;
	return 0;
}

static int outer_build(struct fwd_res_pairs *p, uint16_t o)
{
	const struct fwd_table *t = p->t;
	struct res_outer *x = &p->outer[o];
	const size_t sw = (t->nservices + 63u) / 64u + 1, rw = (t->nregions + 63u) / 64u + 1;
	uint64_t *per_svc = calloc((size_t)t->nservices + 1, p->lw * sizeof(uint64_t));
	uint64_t *svc_of_rule = malloc(sw * sizeof(uint64_t));
	uint8_t *covered = calloc((size_t)t->nservices + 1, 1);
	uint32_t *slot = NULL, nslot = 16, ncls = 0;
	int rc = -ENOMEM;

	x->svc = calloc((size_t)t->nservices + 1, sizeof(*x->svc));
	x->cls_of = calloc((size_t)t->nservices + 1, sizeof(*x->cls_of));
	x->content_bad = calloc(rw, sizeof(uint64_t));
	if (!per_svc || !svc_of_rule || !covered || !x->svc || !x->cls_of || !x->content_bad)
		goto out;
	/* The links allowed per service: what every rule covering it allows. */
	for (uint16_t i = 0; i < t->nresidency; i++) {
		const struct fwd_residency *r = &t->residency[i];
		const uint64_t *a = p->allowed + (size_t)i * p->lw;
		uint16_t n = rule_nservices(t, r);

		if (r->region != o)
			continue;
		memset(svc_of_rule, 0, sw * sizeof(uint64_t));
		for (uint16_t k = 0; k < n; k++) {
			uint16_t s = (uint16_t)rule_services(r, k);
			uint64_t *d = per_svc + (size_t)s * p->lw;

			svc_of_rule[s / 64] |= 1ull << (s % 64);
			for (size_t w = 0; w < p->lw; w++)
				d[w] = covered[s] ? d[w] & a[w] : a[w];
			covered[s] = 1;
		}
		/* Content rules scoped to regions (a rule of every region is
		 * checked against the outer itself, fwd_residency_check_content)
		 * that break this rule: a region they run on breaks it too. */
		for (uint32_t ci = 0; ci < t->ncontent; ci++) {
			const struct fwd_content_rule *cr = &t->content[ci];

			if (cr->nregions && content_rule_breaks(p, cr, i, svc_of_rule))
				for (uint16_t k = 0; k < cr->nregions; k++)
					x->content_bad[cr->regions[k] / 64] |=
						1ull << (cr->regions[k] % 64);
		}
	}
	for (uint32_t s = 0; s < t->nservices; s++)
		x->nsvc += covered[s];
	while (nslot < 2 * x->nsvc)
		nslot <<= 1;
	slot = malloc(nslot * sizeof(*slot));
	x->cls = malloc(((size_t)x->nsvc + 1) * p->lw * sizeof(uint64_t));
	if (!slot || !x->cls)
		goto out;
	memset(slot, 0xff, nslot * sizeof(*slot));
	/* Services with the same allowed links share a class (interned). */
	x->nsvc = 0;
	for (uint32_t s = 0; s < t->nservices; s++) {
		const uint64_t *d = per_svc + (size_t)s * p->lw;
		uint64_t h = 1469598103934665603ull;
		uint32_t k;

		if (!covered[s])
			continue;
		for (size_t w = 0; w < p->lw; w++)
			h = (h ^ d[w]) * 1099511628211ull;
		for (k = (uint32_t)h & (nslot - 1);
		     slot[k] != UINT32_MAX &&
		     memcmp(x->cls + (size_t)slot[k] * p->lw, d, p->lw * sizeof(uint64_t));
		     k = (k + 1) & (nslot - 1))
			;
		if (slot[k] == UINT32_MAX) {
			memcpy(x->cls + (size_t)ncls * p->lw, d, p->lw * sizeof(uint64_t));
			slot[k] = ncls++;
		}
		x->svc[x->nsvc] = (uint16_t)s;
		x->cls_of[x->nsvc++] = slot[k];
	}
	x->built = 1;
	rc = 0;
out:
	free(per_svc);
	free(svc_of_rule);
	free(covered);
	free(slot);
	return rc;
}

/* 1 when region @inner's policies keep, for every service @x protects, to
 * the links allowed for it (cell_breaks() for every rule at once). */
static int cells_keep(const struct fwd_res_pairs *p, const struct res_outer *x, uint16_t inner)
{
	const struct fwd_table *t = p->t;

	for (uint32_t j = 0; j < x->nsvc; j++) {
		const uint64_t *a = x->cls + (size_t)x->cls_of[j] * p->lw;
		const struct fwd_policy *pol =
			&t->policies[p->c->matrix[(uint32_t)inner * t->nservices + x->svc[j]]];

		if ((pol->action == FWD_ACT_LINK && !bit_of(a, pol->target)) ||
		    (pol->action == FWD_ACT_GROUP &&
		     !links_within(p->group_links + (size_t)pol->target * p->lw, a, p->lw)) ||
		    (pol->mirror != FWD_LINK_NONE && !bit_of(a, pol->mirror)))
			return 0;
	}
	return 1;
}

int fwd_residency_pair_ok(struct fwd_res_pairs *p, uint16_t inner, uint16_t outer)
{
	const struct fwd_table *t = p->t;
	uint8_t *memo;
	struct res_outer *x;
	int ok;

	if (inner == outer || inner >= t->nregions || outer >= t->nregions)
		return 1;
	x = &p->outer[outer];
	if (!x->built && outer_build(p, outer))
		return -ENOMEM;
	if (bit_of(x->content_bad, inner))
		return 0;
	/* the cells by the inner region's row: one test per equal row */
	memo = &p->memo[(size_t)outer * t->nregions + p->row_of[inner]];
	if (*memo)
		return *memo == 1;
	ok = cells_keep(p, x, p->row_rep[p->row_of[inner]]);
	*memo = ok ? 1 : 2;
	return ok;
}

/* 1 when every protected region's own policies keep to its rules (the
 * first loop of fwd_residency_check(), which says what breaks). */
static int own_cells_keep(struct fwd_res_pairs *p)
{
	for (uint16_t i = 0; i < p->t->nresidency; i++) {
		uint16_t o = p->t->residency[i].region;

		if (!p->outer[o].built && outer_build(p, o))
			return -ENOMEM;
		if (!cells_keep(p, &p->outer[o], o))
			return 0;
	}
	return 1;
}

int fwd_residency_handover(const struct fwd_table *t, const struct fwd_class *c, uint16_t to,
			   uint16_t from, char *why, size_t len)
{
	struct pair_break b;
	const struct fwd_link *l = pair_breaks(t, c, to, from, &b);
	char have[300], want[256];

	if (l == NULL)
		return 0;
	link_tags(l, have, sizeof(have));
	tag_list((const char(*)[FWD_NAME_MAX])b.rule->tags, b.rule->ntags, want, sizeof(want));
	snprintf(why, len,
		 "residency rule '%s' of region '%s' allows service '%s' only on links tagged "
		 "%s, but %s %s link '%s' (%s)",
		 b.rule->name, t->region_names[from], t->service_names[b.service], want, b.who,
		 b.how, l->name, have);
	return 1;
}

int fwd_residency_link_may_carry(const struct fwd_table *t, const struct fwd_class *c,
				 uint16_t region, uint16_t service, uint16_t link)
{
	const struct fwd_policy *p;

	if (t->nresidency == 0)
		return 1;
	if (region >= t->nregions || service >= t->nservices || link >= t->nlinks)
		return 0;
	p = &t->policies[c->matrix[(uint32_t)region * t->nservices + service]];
	if ((p->action == FWD_ACT_LINK && p->target == link) || p->mirror == link)
		return 1;
	if (p->action == FWD_ACT_GROUP) {
		const struct fwd_group *g = &t->groups[p->target];

		for (uint16_t m = 0; m < g->nmembers; m++)
			if (g->members[m].link == link && g->members[m].weight)
				return 1;
	}
	for (uint16_t i = 0; i < t->nresidency; i++) {
		const struct fwd_residency *r = &t->residency[i];
		uint16_t n = rule_nservices(t, r);

		for (uint16_t k = 0; k < n; k++)
			if (rule_services(r, k) == service) {
				if (!fwd_link_allowed(&t->links[link], r))
					return 0;
				break;
			}
	}
	return 1;
}

int fwd_residency_protects(const struct fwd_table *t, uint16_t region)
{
	for (uint16_t i = 0; i < t->nresidency; i++)
		if (t->residency[i].region == region)
			return 1;
	return 0;
}

/* Prefixes of one family as 16-byte keys, so the nesting walk is written once. */
struct nest_key {
	uint8_t a[16];
	uint8_t len;
	uint16_t region;
	uint32_t line;
};

static void key_at(const struct fwd_table *t, int fam, uint32_t i, struct nest_key *k)
{
	memset(k->a, 0, sizeof(k->a));
	if (fam == 4) {
		const struct fwd_prefix4 *p = &t->prefix4[i];

		k->a[0] = (uint8_t)(p->addr >> 24);
		k->a[1] = (uint8_t)(p->addr >> 16);
		k->a[2] = (uint8_t)(p->addr >> 8);
		k->a[3] = (uint8_t)p->addr;
		k->len = p->len;
		k->region = p->region;
		k->line = p->line;
	} else {
		const struct fwd_prefix6 *p = &t->prefix6[i];

		memcpy(k->a, p->addr, 16);
		k->len = p->len;
		k->region = p->region;
		k->line = p->line;
	}
}

int fwd_nest_covers(const uint8_t *outer, uint8_t olen, const uint8_t *inner, uint8_t ilen)
{
	unsigned full = olen / 8, rest = olen % 8;

	if (olen > ilen || memcmp(outer, inner, full) != 0)
		return 0;
	return rest == 0 || ((outer[full] ^ inner[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

const char *fwd_nest_str(int fam, const uint8_t *a, uint8_t len, char *buf, size_t n)
{
	char s[INET6_ADDRSTRLEN];

	inet_ntop(fam == 4 ? AF_INET : AF_INET6, a, s, sizeof(s));
	snprintf(buf, n, "%s/%u", s, len);
	return buf;
}

/* The layout of fwd_table.rule_rows: per rule a row, its regions' words
 * then its links'; then per region the links every rule holding it allows
 * (the AND of those rules' link words, all links for a region none holds),
 * which a later fragment reads with one bit test. */
static size_t region_words(const struct fwd_table *t)
{
	return ((size_t)t->nregions + 63) / 64;
}

static size_t link_words(const struct fwd_table *t)
{
	return ((size_t)t->nlinks + 63) / 64;
}

static size_t row_words(const struct fwd_table *t)
{
	return region_words(t) + link_words(t);
}

size_t fwd_residency_rows_words(const struct fwd_table *t)
{
	return (size_t)t->nresidency * row_words(t) + (size_t)t->nregions * link_words(t);
}

static uint64_t *rule_row(const struct fwd_table *t, uint16_t i)
{
	return t->rule_rows + (size_t)i * row_words(t);
}

static uint64_t *region_links(const struct fwd_table *t, uint16_t region)
{
	return t->rule_rows + (size_t)t->nresidency * row_words(t) + (size_t)region * link_words(t);
}

static void set_bit(uint64_t *w, uint32_t i)
{
	w[i / 64] |= 1ull << (i % 64);
}

static int has_bit(const uint64_t *w, uint32_t i)
{
	return (int)(w[i / 64] >> (i % 64) & 1);
}

/* Rule @i holds @region from now on: its links narrow the region's. */
static void hold(struct fwd_table *t, uint16_t i, uint16_t region)
{
	uint64_t *row = rule_row(t, i), *rl = region_links(t, region);

	if (has_bit(row, region))
		return;
	set_bit(row, region);
	for (size_t w = 0; w < link_words(t); w++)
		rl[w] &= row[region_words(t) + w];
}

void fwd_residency_rows_nest(struct fwd_table *t, uint16_t inner, uint16_t outer)
{
	if (t->rule_rows == NULL || inner >= t->nregions)
		return;
	for (uint16_t i = 0; i < t->nresidency; i++)
		if (t->residency[i].region == outer)
			hold(t, i, inner);
}

/* Every pair (a prefix, a protected prefix of another region covering it):
 * prefixes sorted by address then length (as validation leaves them) put
 * each prefix after every prefix that covers it, so one walk with a stack
 * of the open covers finds them all, at any depth. @visit is called for
 * each pair; a nonzero return ends the walk with it. */
static int walk_nested(const struct fwd_table *t, int fam,
		       int (*visit)(void *arg, const struct nest_key *inner,
				    const struct nest_key *outer),
		       void *arg)
{
	uint32_t n = fam == 4 ? t->nprefix4 : t->nprefix6;
	/* At most one open cover a length: 129 for IPv6's /0 to /128. */
	struct nest_key stack[129], k;
	uint8_t prot[129];
	unsigned depth = 0;
	int rc;

	for (uint32_t i = 0; i < n; i++) {
		key_at(t, fam, i, &k);
		while (depth &&
		       !fwd_nest_covers(stack[depth - 1].a, stack[depth - 1].len, k.a, k.len))
			depth--;
		for (unsigned j = depth; j-- > 0;)
			if (prot[j] && stack[j].region != k.region &&
			    (rc = visit(arg, &k, &stack[j])) != 0)
				return rc;
		if (depth < sizeof(stack) / sizeof(stack[0])) {
			prot[depth] = (uint8_t)fwd_residency_protects(t, k.region);
			stack[depth++] = k;
		}
	}
	return 0;
}

/* Each (inner, outer) pair of regions once: a nested chain visits the same
 * pair at every depth, and each visit scanned all rules (up to 1,024) for
 * the outer's, so 2,000 chains of 113 prefixes in two regions took 57 s a
 * generation. @held is a bit a pair, nregions x nregions. */
struct hold_walk {
	struct fwd_table *t;
	uint64_t *held;
};

static int hold_pair(void *arg, const struct nest_key *inner, const struct nest_key *outer)
{
	struct hold_walk *hw = arg;
	size_t bit = (size_t)outer->region * hw->t->nregions + inner->region;

	if (hw->held[bit / 64] >> (bit % 64) & 1)
		return 0;
	hw->held[bit / 64] |= 1ull << (bit % 64);
	fwd_residency_rows_nest(hw->t, inner->region, outer->region);
	return 0;
}

int fwd_residency_rows_fill(struct fwd_table *t)
{
	size_t rw = region_words(t);
	struct hold_walk hw = {.t = t};

	if (t->rule_rows || t->nresidency == 0)
		return 0;
	hw.held = calloc(((size_t)t->nregions * t->nregions + 63) / 64, sizeof(uint64_t));
	t->rule_rows = calloc(fwd_residency_rows_words(t), sizeof(uint64_t));
	if (t->rule_rows == NULL || hw.held == NULL) {
		free(hw.held);
		free(t->rule_rows);
		t->rule_rows = NULL;
		return -ENOMEM;
	}
	for (uint16_t r = 0; r < t->nregions; r++)
		for (uint16_t l = 0; l < t->nlinks; l++)
			set_bit(region_links(t, r), l);
	for (uint16_t i = 0; i < t->nresidency; i++) {
		for (uint16_t l = 0; l < t->nlinks; l++)
			if (fwd_link_allowed(&t->links[l], &t->residency[i]))
				set_bit(rule_row(t, i) + rw, l);
		hold(t, i, t->residency[i].region);
	}
	walk_nested(t, 4, hold_pair, &hw);
	walk_nested(t, 6, hold_pair, &hw);
	free(hw.held);
	return 0;
}

/* 1 when rule @i holds a region besides its own. */
static int holds_others(const struct fwd_table *t, uint16_t i)
{
	const uint64_t *row = rule_row(t, i);
	uint16_t own = t->residency[i].region;

	for (size_t w = 0; w < region_words(t); w++)
		if (row[w] & ~(w == own / 64u ? 1ull << (own % 64) : 0))
			return 1;
	return 0;
}

int fwd_residency_rows_stale(const struct fwd_table *t, uint16_t region)
{
	if (t->rule_rows == NULL || region >= t->nregions)
		return 0;
	for (uint16_t i = 0; i < t->nresidency; i++)
		if (t->residency[i].region == region ? holds_others(t, i)
						     : has_bit(rule_row(t, i), region))
			return 1;
	return 0;
}

int fwd_residency_rows_refill(struct fwd_table *t)
{
	uint64_t *old = t->rule_rows;

	t->rule_rows = NULL;
	if (fwd_residency_rows_fill(t)) {
		t->rule_rows = old; /* holding more than it should: fails closed */
		return -ENOMEM;
	}
	free(old);
	return 0;
}

int fwd_residency_frag_may_carry(const struct fwd_table *t, uint16_t region, uint16_t link)
{
	if (region >= t->nregions || link >= t->nlinks)
		return t->nresidency == 0;
	if (t->rule_rows)
		return has_bit(region_links(t, region), link);
	for (uint16_t i = 0; i < t->nresidency; i++)
		if (!fwd_link_allowed(&t->links[link], &t->residency[i]))
			return 0;
	return 1;
}

/* Every prefix against every protected prefix that covers it (walk_nested).
 * Every cover, not only the nearest: a prefix of an unprotected region in
 * between would otherwise launder the addresses (in's 10/8 > mid's 10.1/16 >
 * xx's 10.1.1/24 still holds India's users in 10.1.1/24). Each pair of
 * regions is judged once (fwd_residency_pair_ok), so the common walk costs
 * a stack scan a prefix; the error's text is built only for the pair that
 * breaks. */
struct nest_check {
	const struct fwd_table *t;
	const struct fwd_class *c;
	int fam;
	struct fwd_res_pairs *pairs;
	struct fwd_err *err;
};

static int check_pair_once(void *arg, const struct nest_key *k, const struct nest_key *o)
{
	struct nest_check *nc = arg;
	const struct fwd_table *t = nc->t;
	char ib[64], ob[64], path[96];
	int ok = fwd_residency_pair_ok(nc->pairs, k->region, o->region);

	if (ok == 1)
		return 0;
	if (ok < 0)
		return fwd_err_fail(nc->err, FWD_R_INTERNAL, t->source, 0, "",
				    "out of memory checking nested prefixes");
	snprintf(path, sizeof(path), "%s.%s.%s", FWD_KEY_NAME(DOC, REGIONS),
		 t->region_names[k->region], FWD_KEY_NAME(REGION, PREFIXES));
	return fwd_residency_check_pair(
		t, nc->c, k->region, o->region, fwd_nest_str(nc->fam, k->a, k->len, ib, sizeof(ib)),
		fwd_nest_str(nc->fam, o->a, o->len, ob, sizeof(ob)), k->line, path, nc->err);
}

static int check_nesting(const struct fwd_table *t, const struct fwd_class *c,
			 struct fwd_res_pairs *pairs, struct fwd_err *err)
{
	int rc = 0;

	for (int fam = 4; fam <= 6 && rc == 0; fam += 2) {
		struct nest_check nc = {.t = t, .c = c, .fam = fam, .pairs = pairs, .err = err};

		rc = walk_nested(t, fam, check_pair_once, &nc);
	}
	return rc;
}

int fwd_residency_check(const struct fwd_table *t, const struct fwd_class *c, struct fwd_err *err)
{
	struct fwd_res_pairs *pairs;
	int rc;

	if (t->nresidency == 0)
		return 0;
	pairs = fwd_residency_pairs_create(t, c);
	rc = pairs ? own_cells_keep(pairs) : -ENOMEM;
	if (rc < 0) {
		fwd_residency_pairs_free(pairs);
		return fwd_err_fail(err, FWD_R_INTERNAL, t->source, 0, "",
				    "out of memory checking residency");
	}
	/* What breaks, rule by rule, only when something does: the walk
	 * below costs every rule x service x group member (seconds at the
	 * limits; the bitmaps above, milliseconds). */
	for (uint16_t i = 0; i < t->nresidency && rc == 0; i++) {
		const struct fwd_residency *r = &t->residency[i];
		uint16_t n = rule_nservices(t, r);

		for (uint16_t k = 0; k < n; k++) {
			uint16_t s = (uint16_t)rule_services(r, k);
			char how[64];
			uint32_t pid;
			const struct fwd_link *l =
				cell_breaks(t, c, r, r->region, s, &pid, how, sizeof(how));

			if (l) {
				fwd_residency_pairs_free(pairs);
				return violation(t, r, s, pid, l, how, err);
			}
		}
	}
	/* Again here, not only when the document is parsed: a table changed
	 * by a delta (a group's weight raised) is checked whole. */
	for (uint32_t i = 0; i < t->ncontent; i++) {
		char path[48];

		snprintf(path, sizeof(path), "%s[%u]", FWD_KEY_NAME(DOC, CONTENT_RULES), i);
		if (fwd_residency_check_content(t, &t->content[i], path, err)) {
			fwd_residency_pairs_free(pairs);
			return -EPERM;
		}
	}
	rc = check_nesting(t, c, pairs, err);
	fwd_residency_pairs_free(pairs);
	return rc;
}

int fwd_residency_nested_of(const char *reason, char inner[64], char inner_region[FWD_NAME_MAX],
			    char outer[64], char outer_region[FWD_NAME_MAX])
{
	int end = 0;

	/* The widths hold 63 and 31 characters (FWD_NAME_MAX - 1); a name
	 * is [A-Za-z0-9_.-], never a quote. */
	_Static_assert(FWD_NAME_MAX == 32, "the widths below");
	if (sscanf(reason, "prefix %63s of region '%31[^']' lies inside %63s of region '%31[^']'%n",
		   inner, inner_region, outer, outer_region, &end) != 4 ||
	    end == 0)
		return -EINVAL;
	return 0;
}
