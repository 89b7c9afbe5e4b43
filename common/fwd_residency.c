#include "fwd_residency.h"

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
	int svc = -1;

	if (cr->action != FWD_CA_MIRROR && cr->action != FWD_CA_STEER)
		return NULL;
	for (uint16_t k = 0; k < cr->nservices && svc < 0; k++)
		for (uint16_t m = 0; m < r->nservices && svc < 0; m++)
			if (r->services[m] == FWD_ANY || r->services[m] == cr->services[k])
				svc = cr->services[k];
	if (svc < 0)
		return NULL;
	*svc_out = (uint16_t)svc;
	if (cr->target_kind == FWD_ACT_LINK) {
		if (fwd_link_allowed(&t->links[cr->target], r))
			return NULL;
		snprintf(how, howlen, "%ss to", fwd_content_action_name(cr->action));
		return &t->links[cr->target];
	}
	const struct fwd_group *g = &t->groups[cr->target];

	for (uint16_t m = 0; m < g->nmembers; m++)
		if (g->members[m].weight && !fwd_link_allowed(&t->links[g->members[m].link], r)) {
			snprintf(how, howlen, "steers to group '%s' with", g->name);
			return &t->links[g->members[m].link];
		}
	return NULL;
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
 * xx's 10.1.1/24 still holds India's users in 10.1.1/24). A pair of regions
 * found keeping to the rules is not checked again (@ok, a byte per pair), so
 * the common walk costs a stack scan a prefix; the error's text is built
 * only for the pair that breaks. */
struct nest_check {
	const struct fwd_table *t;
	const struct fwd_class *c;
	int fam;
	uint8_t *ok; /* nregions x nregions bytes, zeroed */
	struct fwd_err *err;
};

static int check_pair_once(void *arg, const struct nest_key *k, const struct nest_key *o)
{
	struct nest_check *nc = arg;
	const struct fwd_table *t = nc->t;
	uint8_t *seen = &nc->ok[(size_t)o->region * t->nregions + k->region];
	char ib[64], ob[64], path[96];

	if (*seen)
		return 0;
	if (fwd_residency_check_pair(t, nc->c, k->region, o->region, "", "", 0, "", NULL) == 0) {
		*seen = 1;
		return 0;
	}
	snprintf(path, sizeof(path), "%s.%s.%s", FWD_KEY_NAME(DOC, REGIONS),
		 t->region_names[k->region], FWD_KEY_NAME(REGION, PREFIXES));
	return fwd_residency_check_pair(
		t, nc->c, k->region, o->region, fwd_nest_str(nc->fam, k->a, k->len, ib, sizeof(ib)),
		fwd_nest_str(nc->fam, o->a, o->len, ob, sizeof(ob)), k->line, path, nc->err);
}

static int check_nesting(const struct fwd_table *t, const struct fwd_class *c, struct fwd_err *err)
{
	uint8_t *ok;
	int rc = 0;

	if (t->nresidency == 0)
		return 0;
	ok = calloc((size_t)t->nregions * t->nregions, 1);
	if (ok == NULL)
		return fwd_err_fail(err, FWD_R_INTERNAL, t->source, 0, "",
				    "out of memory checking nested prefixes");
	for (int fam = 4; fam <= 6 && rc == 0; fam += 2) {
		struct nest_check nc = {.t = t, .c = c, .fam = fam, .ok = ok, .err = err};

		rc = walk_nested(t, fam, check_pair_once, &nc);
	}
	free(ok);
	return rc;
}

int fwd_residency_check(const struct fwd_table *t, const struct fwd_class *c, struct fwd_err *err)
{
	for (uint16_t i = 0; i < t->nresidency; i++) {
		const struct fwd_residency *r = &t->residency[i];
		uint16_t n = rule_nservices(t, r);

		for (uint16_t k = 0; k < n; k++) {
			uint16_t s = (uint16_t)rule_services(r, k);
			char how[64];
			uint32_t pid;
			const struct fwd_link *l =
				cell_breaks(t, c, r, r->region, s, &pid, how, sizeof(how));

			if (l)
				return violation(t, r, s, pid, l, how, err);
		}
	}
	/* Again here, not only when the document is parsed: a table changed
	 * by a delta (a group's weight raised) is checked whole. */
	for (uint32_t i = 0; i < t->ncontent && t->nresidency; i++) {
		char path[48];

		snprintf(path, sizeof(path), "%s[%u]", FWD_KEY_NAME(DOC, CONTENT_RULES), i);
		if (fwd_residency_check_content(t, &t->content[i], path, err))
			return -EPERM;
	}
	return check_nesting(t, c, err);
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
