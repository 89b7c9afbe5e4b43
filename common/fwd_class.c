/*
 * fwd_class.c - compile a fwd_table into the flat arrays of fwd_class.h.
 */
#include "fwd_class.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_hash.h"

static uint64_t fnv64(const char *s)
{
	return fwd_hash64(s, strlen(s));
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* log2(x) in Q32 for 1 <= x < 2^63, by repeated squaring of the mantissa:
 * integer-only, so every box computes the same bits. */
static uint64_t log2_q32(uint64_t x)
{
	int k = 63 - __builtin_clzll(x);
	uint64_t m = x << (63 - k); /* mantissa in [2^63, 2^64) ~ [1, 2) */
	uint64_t r = (uint64_t)k << 32;

	for (int i = 31; i >= 0; i--) {
		unsigned __int128 sq = (unsigned __int128)m * m;

		m = (uint64_t)(sq >> 63);
		if (sq >> 127) { /* square >= 2: one more bit, renormalise */
			r |= 1ull << i;
			m = (uint64_t)(sq >> 64);
		}
	}
	return r;
}

/* u = x / 2^52 with x in [1, 2^52]; cost = -log2(u) in Q32. -log2(u) of a
 * uniform u is exponentially distributed, and weighted rendezvous picks the
 * member with the largest weight / cost (the "-ln(u)" form of weighted HRW;
 * the log's base cancels), which gives each member a share of slots
 * proportional to its weight. A cost of 0 (u = 1, or within Q32 rounding of
 * it, odds about 2^-32) is clamped to 1 so it never divides by zero. */
static uint64_t hrw_cost_of(uint64_t name_hash, uint32_t slot)
{
	uint64_t h = splitmix64(name_hash ^ splitmix64(slot));
	uint64_t x = (h >> 12) + 1;
	uint64_t cost = (52ull << 32) - log2_q32(x);

	return cost ? cost : 1;
}

uint64_t fwd_class_hrw_cost(const char *link_name, uint32_t slot)
{
	return hrw_cost_of(fnv64(link_name), slot);
}

/* Each member link's cost for every slot, made once per build and shared
 * by every group the link is in: the cost (a 32-step log) was computed
 * for each (group, slot, member), and 1,024 groups of 64 members took
 * 38 s of a link-down's generation on both regiond and regionfwd (a
 * probe). The same function, so the same bits: no slot moves. NULL when
 * there is no memory for it (the cost is then computed in place). */
static const uint64_t *link_costs(const struct fwd_table *t, uint16_t link, uint64_t **cache)
{
	if (cache == NULL)
		return NULL;
	if (cache[link] == NULL && (cache[link] = malloc(FWD_GROUP_SLOTS * sizeof(uint64_t)))) {
		const uint64_t name = fnv64(t->links[link].name);

		for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++)
			cache[link][s] = hrw_cost_of(name, s);
	}
	return cache[link];
}

/* Whether member @m of a group may take slots by the table: its link up,
 * not drained, of weight > 0. Down or drained members take no slot; a
 * drained link still carries what a policy steers to it directly. */
static int member_carries(const struct fwd_table *t, const struct fwd_group_member *m)
{
	const struct fwd_link *l = &t->links[m->link];

	return l->up && !l->drained && m->weight != 0;
}

/* Which members of @g its slots leave out for @out (per link:
 * FWD_PORT_IN, a held rank or FWD_PORT_DOWN; NULL: all in), into @ex (per
 * member): of the members that may take slots, those whose port is in
 * carry, or when none is, those held longest (the lowest rank), and the
 * rest are left out; when every one's port is down, none is left out: the
 * group keeps its table's slots. Each left out is as if down in the table,
 * so the flows that move are those 'link down' would move, and no other. */
static void group_excluded(const struct fwd_table *t, const struct fwd_group *g, const uint8_t *out,
			   uint8_t ex[FWD_MAX_GROUP_MEMBERS])
{
	unsigned best = FWD_PORT_DOWN;

	memset(ex, 0, FWD_MAX_GROUP_MEMBERS);
	if (out == NULL)
		return;
	for (uint16_t i = 0; i < g->nmembers; i++)
		if (member_carries(t, &g->members[i]) && out[g->members[i].link] < best)
			best = out[g->members[i].link];
	if (best == FWD_PORT_DOWN)
		return;
	for (uint16_t i = 0; i < g->nmembers; i++)
		ex[i] = out[g->members[i].link] > best;
}

/* Member @i's cost for slot @s. */
static uint64_t member_cost(const struct fwd_table *t, const struct fwd_group *g,
			    const uint64_t *const *costs, uint16_t i, uint32_t s)
{
	return costs[i] ? costs[i][s] : fwd_class_hrw_cost(t->links[g->members[i].link].name, s);
}

/* Whether (@link, @w, @cost) ranks above the best so far (@best, or
 * FWD_LINK_NONE): the larger w/cost, then the smaller name. */
static int ranks_above(const struct fwd_table *t, uint16_t link, uint64_t w, uint64_t cost,
		       uint16_t best, uint64_t best_w, uint64_t best_cost)
{
	/* w/cost > best_w/best_cost, cross-multiplied: weight <= 10^6 < 2^20
	 * and cost <= 52 * 2^32 < 2^38, so the products fit in 64 bits. */
	return best == FWD_LINK_NONE || w * best_cost > best_w * cost ||
	       (w * best_cost == best_w * cost &&
		strcmp(t->links[link].name, t->links[best].name) < 0);
}

/* The member slot @s of @g goes to, the members @ex names left out
 * (FWD_LINK_NONE: no member can take it). */
static uint16_t slot_winner(const struct fwd_table *t, const struct fwd_group *g,
			    const uint64_t *const *costs, uint32_t s, const uint8_t *ex)
{
	uint16_t best = FWD_LINK_NONE;
	uint64_t best_w = 0, best_cost = 1;

	for (uint16_t i = 0; i < g->nmembers; i++) {
		const struct fwd_group_member *m = &g->members[i];
		uint64_t cost;

		if (!member_carries(t, m) || ex[i])
			continue;
		cost = member_cost(t, g, costs, i, s);
		if (ranks_above(t, m->link, m->weight, cost, best, best_w, best_cost)) {
			best = m->link;
			best_w = m->weight;
			best_cost = cost;
		}
	}
	return best;
}

static void fill_group(const struct fwd_table *t, const struct fwd_group *g,
		       uint16_t slots[FWD_GROUP_SLOTS], uint64_t **cache, const uint8_t *ex)
{
	const uint64_t *costs[FWD_MAX_GROUP_MEMBERS];

	for (uint16_t i = 0; i < g->nmembers; i++)
		costs[i] = link_costs(t, g->members[i].link, cache);
	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++)
		slots[s] = slot_winner(t, g, costs, s, ex);
}

static void compile_policy(const struct fwd_table *t, const struct fwd_policy *p,
			   struct fwd_class_policy *cp)
{
	cp->action = p->action;
	cp->drop = FWD_DROP_POLICY;
	cp->link = FWD_LINK_NONE;
	cp->group = 0;
	cp->mirror =
		p->mirror != FWD_LINK_NONE && t->links[p->mirror].up ? p->mirror : FWD_LINK_NONE;
	if (p->action == FWD_ACT_LINK) {
		if (t->links[p->target].up) {
			cp->link = p->target;
		} else {
			cp->action = FWD_ACT_DROP;
			cp->drop = FWD_DROP_NO_LINK;
		}
	} else if (p->action == FWD_ACT_GROUP) {
		cp->group = p->target;
	}
}

struct fwd_class *fwd_class_build(const struct fwd_table *t)
{
	struct fwd_class *c = calloc(1, sizeof(*c));
	uint32_t cells;

	if (c == NULL)
		goto nomem;
	c->nregions = t->nregions;
	c->nservices = t->nservices;
	c->nlinks = t->nlinks;
	c->ngroups = t->ngroups;
	c->npolicies = t->npolicies;
	cells = (uint32_t)t->nregions * t->nservices;
	c->port_svc = calloc((3u << 16) + 256, sizeof(*c->port_svc));
	c->svc_key = calloc(256, sizeof(*c->svc_key));
	c->matrix = calloc(cells, sizeof(*c->matrix));
	c->policies = calloc(t->npolicies, sizeof(*c->policies));
	c->slots = calloc(t->ngroups ? t->ngroups : 1, sizeof(*c->slots));
	c->link_out = calloc(t->nlinks ? t->nlinks : 1, 1);
	if (!c->port_svc || !c->svc_key || !c->matrix || !c->policies || !c->slots || !c->link_out)
		goto nomem;

	for (uint32_t proto = 0; proto < 256; proto++) {
		int pi = fwd_class_port_index((uint8_t)proto);

		c->svc_key[proto] =
			pi >= 0 ? (uint64_t)0xffff << 32 | (uint32_t)pi << 16 : (3u << 16) + proto;
	}
	/* Ranges do not overlap (validated), so plain filling is exact. */
	for (uint32_t i = 0; i < t->nranges; i++) {
		const struct fwd_svc_range *r = &t->ranges[i];
		int pi = fwd_class_port_index(r->proto);

		if (pi < 0) {
			c->port_svc[(3u << 16) + r->proto] = r->service;
			continue;
		}
		for (uint32_t port = r->lo; port <= r->hi; port++)
			c->port_svc[(uint32_t)pi << 16 | port] = r->service;
	}

	for (uint32_t i = 0; i < t->npolicies; i++)
		compile_policy(t, &t->policies[i], &c->policies[i]);

	/* Precedence by painting, least specific first: (any, s), then (r, any),
	 * then (r, s). Cells nothing paints keep the default, policy 0. */
	for (int pass = 0; pass < 3; pass++) {
		for (uint32_t i = 1; i < t->npolicies; i++) {
			const struct fwd_policy *p = &t->policies[i];
			int kind = p->region == FWD_ANY ? 0 : p->service == FWD_ANY ? 1 : 2;

			if (kind != pass)
				continue;
			if (kind == 0) {
				for (uint32_t r = 0; r < t->nregions; r++)
					c->matrix[r * t->nservices + p->service] = (uint16_t)i;
			} else if (kind == 1) {
				for (uint32_t s = 0; s < t->nservices; s++)
					c->matrix[(uint32_t)p->region * t->nservices + s] =
						(uint16_t)i;
			} else {
				c->matrix[(uint32_t)p->region * t->nservices + p->service] =
					(uint16_t)i;
			}
		}
	}

	{
		uint64_t **cache = t->ngroups ? calloc(t->nlinks, sizeof(*cache)) : NULL;

		for (uint16_t g = 0; g < t->ngroups; g++) {
			uint8_t none[FWD_MAX_GROUP_MEMBERS] = {0};

			fill_group(t, &t->groups[g], c->slots[g], cache, none);
		}
		for (uint32_t l = 0; cache && l < t->nlinks; l++)
			free(cache[l]);
		free(cache);
	}
	return c;
nomem:
	fwd_class_free(c);
	errno = ENOMEM;
	return NULL;
}

void fwd_class_free(struct fwd_class *c)
{
	if (c == NULL)
		return;
	free(c->link_out);
	free(c->slots);
	free(c->policies);
	free(c->matrix);
	free(c->port_svc);
	free(c->svc_key);
	free(c);
}

void fwd_class_group_out(const struct fwd_class *c, const struct fwd_table *t, uint16_t group,
			 uint8_t out[FWD_MAX_GROUP_MEMBERS])
{
	const struct fwd_group *g = &t->groups[group];

	group_excluded(t, g, c->link_out, out);
	for (uint16_t i = 0; i < g->nmembers; i++)
		out[i] = out[i] && member_carries(t, &g->members[i]);
}

int fwd_class_member_out(const struct fwd_class *c, const struct fwd_table *t, uint16_t group,
			 uint16_t i)
{
	uint8_t out[FWD_MAX_GROUP_MEMBERS];

	fwd_class_group_out(c, t, group, out);
	return out[i];
}

/* @g's slots (group @gid of @c, as filled with c->link_out) as @out fills
 * them, into @fresh, without ranking every member for every slot (1,024
 * groups of 64 members took the control thread a second or more): a slot
 * whose link stays keeps it unless a member let back in ranks above it
 * (it ranked above every other that stays), and only a slot whose link
 * goes out is ranked again over every member. The same result as
 * fill_group() (a unit test compares them). @pos: per link of @t, 0. */
static void refill_group(const struct fwd_class *c, const struct fwd_table *t, uint16_t gid,
			 uint16_t *fresh, uint64_t **cache, const uint8_t *out, uint8_t *pos)
{
	const struct fwd_group *g = &t->groups[gid];
	const uint64_t *costs[FWD_MAX_GROUP_MEMBERS];
	uint16_t back[FWD_MAX_GROUP_MEMBERS], nback = 0;
	uint8_t was[FWD_MAX_GROUP_MEMBERS], is[FWD_MAX_GROUP_MEMBERS];

	group_excluded(t, g, c->link_out, was);
	group_excluded(t, g, out, is);
	for (uint16_t i = 0; i < g->nmembers; i++) {
		costs[i] = link_costs(t, g->members[i].link, cache);
		pos[g->members[i].link] = (uint8_t)(i + 1);
		if (member_carries(t, &g->members[i]) && was[i] && !is[i])
			back[nback++] = i;
	}
	for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++) {
		const uint16_t cur = c->slots[gid][s]; /* this thread is its writer */
		const unsigned ci = cur != FWD_LINK_NONE ? pos[cur] : 0;
		uint16_t best;
		uint64_t best_w, best_cost;

		/* No link (no member could take it), or its link goes out */
		if (ci == 0 || is[ci - 1]) {
			fresh[s] = slot_winner(t, g, costs, s, is);
			continue;
		}
		best = cur;
		best_w = g->members[ci - 1].weight;
		best_cost = member_cost(t, g, costs, (uint16_t)(ci - 1), s);
		for (uint16_t k = 0; k < nback; k++) {
			const struct fwd_group_member *m = &g->members[back[k]];
			const uint64_t cost = member_cost(t, g, costs, back[k], s);

			if (ranks_above(t, m->link, m->weight, cost, best, best_w, best_cost)) {
				best = m->link;
				best_w = m->weight;
				best_cost = cost;
			}
		}
		fresh[s] = best;
	}
	for (uint16_t i = 0; i < g->nmembers; i++)
		pos[g->members[i].link] = 0;
}

/* Whether group @g has a member @out would take out, or let back in. */
static int group_touched(const struct fwd_class *c, const struct fwd_group *g, const uint8_t *out)
{
	for (uint16_t i = 0; i < g->nmembers; i++)
		if (c->link_out[g->members[i].link] != out[g->members[i].link])
			return 1;
	return 0;
}

int fwd_class_ports_out(struct fwd_class *c, const struct fwd_table *t, const uint8_t *out,
			uint32_t *moved)
{
	uint16_t *fresh = NULL;
	uint64_t **cache = NULL;
	uint8_t *pos = NULL;
	uint32_t n = 0;

	*moved = 0;
	for (uint16_t g = 0; g < t->ngroups; g++) {
		const struct fwd_group *grp = &t->groups[g];

		if (!group_touched(c, grp, out))
			continue;
		if (fresh == NULL) {
			fresh = malloc(FWD_GROUP_SLOTS * sizeof(*fresh));
			cache = calloc(t->nlinks, sizeof(*cache));
			pos = calloc(t->nlinks, sizeof(*pos));
			if (fresh == NULL || cache == NULL || pos == NULL) {
				free(fresh);
				free(cache);
				free(pos);
				return -ENOMEM; /* nothing written yet */
			}
		}
		/* A group none of whose members' ports is up keeps the slots
		 * of its table: what it carries goes on being given to those
		 * ports, and is counted as port_down, not as no_link_up (which
		 * says the table left it nothing). group_excluded(). */
		refill_group(c, t, g, fresh, cache, out, pos);
		for (uint32_t s = 0; s < FWD_GROUP_SLOTS; s++) {
			if (fresh[s] == c->slots[g][s])
				continue;
			/* Relaxed: workers read each slot whole (fwd_class_slot)
			 * and either link is a member the table allows; no other
			 * memory is published with it. */
			__atomic_store_n(&c->slots[g][s], fresh[s], __ATOMIC_RELAXED);
			n++;
		}
	}
	for (uint32_t l = 0; cache && l < t->nlinks; l++)
		free(cache[l]);
	free(cache);
	free(fresh);
	free(pos);
	memcpy(c->link_out, out, t->nlinks);
	*moved = n;
	return 0;
}
