#include "ctl_traffic.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_model.h"
#include "fwd_class.h"
#include "fwd_hash.h"
#include "ctl_ownset.h"
#include "fwd_delta.h"
#include "fwd_residency.h"

/* Samples every 10 s; a minute's window needs 7, one more for slack. */
#define SAMPLES 8
#define WINDOW_MS 65000

struct ctl_traffic {
	struct {
		struct fwd_report *r;
		int64_t ms;
	} s[SAMPLES];
	unsigned next, n;
};

struct ctl_traffic *ctl_traffic_new(void)
{
	return calloc(1, sizeof(struct ctl_traffic));
}

void ctl_traffic_free(struct ctl_traffic *tr)
{
	if (tr == NULL)
		return;
	for (unsigned i = 0; i < SAMPLES; i++)
		fwd_report_free(tr->s[i].r);
	free(tr);
}

void ctl_traffic_add(struct ctl_traffic *tr, struct fwd_report *r, int64_t now_ms)
{
	fwd_report_free(tr->s[tr->next].r);
	tr->s[tr->next].r = r;
	tr->s[tr->next].ms = now_ms;
	tr->next = (tr->next + 1) % SAMPLES;
	if (tr->n < SAMPLES)
		tr->n++;
}

int ctl_traffic_due(const struct ctl_traffic *tr, int64_t now_ms)
{
	unsigned last = (tr->next + SAMPLES - 1) % SAMPLES;

	return tr->n == 0 || now_ms - tr->s[last].ms >= CTL_TRAFFIC_EVERY_MS;
}

json_t *ctl_traffic_window(const struct ctl_traffic *tr, int64_t now_ms)
{
	unsigned last = (tr->next + SAMPLES - 1) % SAMPLES, first = last;

	if (tr->n < 2)
		return NULL;
	/* The oldest sample still inside the window, of the run of regionfwd
	 * that counted the last one: after a restart the window is what that
	 * run counted (fwd_report_rates says counters_reset when no sample
	 * of it came before the last). */
	for (unsigned k = 1; k < tr->n; k++) {
		unsigned i = (last + SAMPLES - k) % SAMPLES;

		if (now_ms - tr->s[i].ms > WINDOW_MS)
			break;
		if (first != last && tr->s[i].r->instance != tr->s[last].r->instance)
			break;
		first = i;
	}
	if (first == last)
		return NULL;
	return fwd_report_rates(tr->s[first].r, tr->s[last].r,
				(double)(tr->s[last].ms - tr->s[first].ms) / 1000.0);
}

/* ---- address space moving between regions ------------------------------- */

/* A hash of the prefixes of one table, by (family, address, length), for a
 * longest-prefix lookup by trying each shorter length: a change touches a
 * few prefixes of a table that may hold a million. */
struct pfx_set {
	struct pfx_slot {
		uint8_t used, family, len;
		uint8_t addr[16];
		uint16_t region;
	} * slot;
	uint64_t mask;
	uint8_t lens4[33], lens6[129]; /* lengths present */
};

static uint64_t pfx_hash(int family, const uint8_t *addr, uint8_t len)
{
	uint64_t h = fwd_hash64(addr, family == 4 ? 4 : 16);

	return fwd_hash64_update(h, &len, 1) ^ (uint64_t)family;
}

/* @addr masked to @len */
static void mask_to(uint8_t *out, const uint8_t *addr, int bytes, uint8_t len)
{
	for (int i = 0; i < bytes; i++) {
		int bits = len - i * 8;

		out[i] = bits >= 8   ? addr[i]
			 : bits <= 0 ? 0
				     : (uint8_t)(addr[i] & (0xff << (8 - bits)));
	}
}

static void pfx_put(struct pfx_set *s, int family, const uint8_t *addr, uint8_t len,
		    uint16_t region)
{
	uint64_t i = pfx_hash(family, addr, len) & s->mask;

	while (s->slot[i].used)
		i = (i + 1) & s->mask;
	s->slot[i] = (struct pfx_slot){
		.used = 1, .family = (uint8_t)family, .len = len, .region = region};
	memcpy(s->slot[i].addr, addr, family == 4 ? 4 : 16);
	if (family == 4)
		s->lens4[len] = 1;
	else
		s->lens6[len] = 1;
}

/* The @i-th prefix of @t (IPv4 first): family, address, length, region. */
static void nth_prefix(const struct fwd_table *t, uint32_t i, int *family, uint8_t *addr,
		       uint8_t *len, uint16_t *region)
{
	if (i < t->nprefix4) {
		uint32_t a = t->prefix4[i].addr;

		*family = 4;
		addr[0] = (uint8_t)(a >> 24);
		addr[1] = (uint8_t)(a >> 16);
		addr[2] = (uint8_t)(a >> 8);
		addr[3] = (uint8_t)a;
		*len = t->prefix4[i].len;
		*region = t->prefix4[i].region;
	} else {
		*family = 6;
		memcpy(addr, t->prefix6[i - t->nprefix4].addr, 16);
		*len = t->prefix6[i - t->nprefix4].len;
		*region = t->prefix6[i - t->nprefix4].region;
	}
}

static int pfx_build(struct pfx_set *s, const struct fwd_table *t)
{
	uint64_t n = (uint64_t)t->nprefix4 + t->nprefix6, cap = 64;

	while (cap < 2 * n)
		cap *= 2;
	memset(s, 0, sizeof(*s));
	if ((s->slot = calloc(cap, sizeof(*s->slot))) == NULL)
		return -1;
	s->mask = cap - 1;
	for (uint32_t i = 0; i < t->nprefix4 + t->nprefix6; i++) {
		uint8_t addr[16], len;
		uint16_t region;
		int family;

		nth_prefix(t, i, &family, addr, &len, &region);
		pfx_put(s, family, addr, len, region);
	}
	return 0;
}

/* The slot of @addr/@len itself in @s, or NULL. */
static const struct pfx_slot *pfx_find(const struct pfx_set *s, int family, const uint8_t *addr,
				       uint8_t len)
{
	for (uint64_t i = pfx_hash(family, addr, len) & s->mask; s->slot[i].used;
	     i = (i + 1) & s->mask)
		if (s->slot[i].family == family && s->slot[i].len == len &&
		    !memcmp(s->slot[i].addr, addr, family == 4 ? 4 : 16))
			return &s->slot[i];
	return NULL;
}

/* The region of the longest prefix of @s that covers all of @addr/@len. */
static uint16_t pfx_owner(const struct pfx_set *s, int family, const uint8_t *addr, uint8_t len)
{
	const uint8_t *lens = family == 4 ? s->lens4 : s->lens6;
	const struct pfx_slot *hit;
	uint8_t m[16];

	for (int l = len; l >= 0; l--) {
		if (!lens[l])
			continue;
		mask_to(m, addr, family == 4 ? 4 : 16, (uint8_t)l);
		if ((hit = pfx_find(s, family, m, (uint8_t)l)) != NULL)
			return hit->region;
	}
	return FWD_REGION_UNKNOWN;
}

/* At most this many (from, to) pairs in impact.moves: past it the moves
 * are [{"truncated": true}] (they were once dropped unsaid). A display's
 * bound: residency handovers are found without it
 * (ctl_traffic_handovers). */
#define MAX_MOVES 256

struct move {
	const char *from, *to; /* region names */
	uint64_t prefixes;
	double v4, v6;
};

/* -ENOSPC past MAX_MOVES pairs. */
static int count_move(struct move *mv, size_t *nmv, const char *from, const char *to, int family,
		      uint8_t len)
{
	size_t i;

	for (i = 0; i < *nmv; i++)
		if (!strcmp(mv[i].from, from) && !strcmp(mv[i].to, to))
			break;
	if (i == *nmv) {
		if (*nmv == MAX_MOVES)
			return -ENOSPC;
		mv[(*nmv)++] = (struct move){.from = from, .to = to};
	}
	mv[i].prefixes++;
	if (family == 4)
		mv[i].v4 += ldexp(1.0, 32 - len);
	else
		mv[i].v6 += ldexp(1.0, 128 - len);
	return 0;
}

json_t *ctl_traffic_moves(const struct fwd_table *old, const struct fwd_table *new, size_t limit)
{
	json_t *out = json_array();
	struct pfx_set so, sn;
	struct move *mv = calloc(MAX_MOVES, sizeof(*mv));
	size_t nmv = 0, changed = 0;
	struct fwd_class *cn = NULL; /* the new table's, built for a protected region's move */

	if (out == NULL || mv == NULL || pfx_build(&so, old)) {
		free(mv);
		return out;
	}
	if (pfx_build(&sn, new)) {
		free(so.slot);
		free(mv);
		return out;
	}
	/* Every prefix of the new table, from the region that held its address
	 * space in the old one; then every prefix of the old table that the
	 * new one does not have, to the region that holds its space now.
	 * Regions are compared by name: ids may differ between tables. */
	for (int pass = 0; pass < 2; pass++) {
		const struct fwd_table *t = pass ? old : new, *o = pass ? new : old;
		const struct pfx_set *other = pass ? &sn : &so;

		for (uint32_t i = 0; i < t->nprefix4 + t->nprefix6; i++) {
			uint8_t addr[16], len;
			uint16_t region;
			int family;
			const char *mine, *theirs;

			nth_prefix(t, i, &family, addr, &len, &region);
			if (pass && pfx_find(&sn, family, addr, len))
				continue; /* counted from the new table's side */
			mine = t->region_names[region];
			theirs = o->region_names[pfx_owner(other, family, addr, len)];
			if (!strcmp(mine, theirs))
				continue;
			if (++changed > limit || count_move(mv, &nmv, pass ? mine : theirs,
							    pass ? theirs : mine, family, len)) {
				json_decref(out);
				out = json_pack("[{s:b}]", "truncated", 1);
				goto done;
			}
		}
	}
	for (size_t i = 0; i < nmv; i++) {
		json_t *j = json_pack("{s:s, s:s, s:I, s:f, s:f}", "from", mv[i].from, "to",
				      mv[i].to, "prefixes", (json_int_t)mv[i].prefixes,
				      "ipv4_addresses", mv[i].v4, "ipv6_addresses", mv[i].v6);
		int from = fwd_table_region_id(new, mv[i].from),
		    to = fwd_table_region_id(new, mv[i].to);
		char why[1024];

		/* As ctl_traffic_handovers says it, beside the move. */
		if (from >= 0 && to >= 0 && fwd_residency_protects(new, (uint16_t)from) &&
		    (cn != NULL || (cn = fwd_class_build(new)) != NULL) &&
		    fwd_residency_handover(new, cn, (uint16_t)to, (uint16_t)from, why, sizeof(why)))
			json_object_set_new(j, "residency", json_string(why));
		json_array_append_new(out, j);
	}
done:
	fwd_class_free(cn);
	free(so.slot);
	free(sn.slot);
	free(mv);
	return out;
}

/* ---- residency handovers -------------------------------------------------- */

/* One prefix of a protected region that the new table gives to another. */
struct handed {
	uint16_t from, to; /* the new table's region ids */
	uint8_t family;
	double addresses; /* of the prefix, or of the part a cover takes */
};

struct handovers {
	const struct fwd_table *t; /* the new table */
	struct handed *v;
	size_t n, cap;
	int oom;
	int lens_built;
	uint8_t lens4[33], lens6[129]; /* lengths t has, for the cover searches */
};

/* Prefix @i of @t (IPv4 first) against (@family, @addr, @len), in the
 * tables' order: <0, 0, >0. */
static int cmp_nth(const struct fwd_table *t, uint32_t i, int family, const uint8_t *addr,
		   uint8_t len)
{
	if (i < t->nprefix4) {
		uint64_t x, y;

		if (family != 4)
			return -1; /* every IPv4 prefix comes before IPv6 */
		x = (uint64_t)t->prefix4[i].addr << 8 | t->prefix4[i].len;
		y = (uint64_t)((uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 |
			       (uint32_t)addr[2] << 8 | addr[3])
			    << 8 |
		    len;
		return x < y ? -1 : x > y;
	}
	if (family == 4)
		return 1;
	{
		const struct fwd_prefix6 *q = &t->prefix6[i - t->nprefix4];
		int c = memcmp(q->addr, addr, 16);

		return c ? c : q->len < len ? -1 : q->len > len;
	}
}

/* The region of the longest prefix of h->t shorter than @p that covers
 * it (else 'unknown'): one binary search a length the table has. */
static uint16_t cover_of(struct handovers *h, const struct ctl_rib_pfx *p)
{
	const uint8_t *lens = p->family == 4 ? h->lens4 : h->lens6;
	struct ctl_rib_pfx m = *p;

	if (!h->lens_built) { /* once a call: a removal of a million /128s
			       * once searched 129 lengths each */
		for (uint32_t i = 0; i < h->t->nprefix4; i++)
			h->lens4[h->t->prefix4[i].len] = 1;
		for (uint32_t i = 0; i < h->t->nprefix6; i++)
			h->lens6[h->t->prefix6[i].len] = 1;
		h->lens_built = 1;
	}
	for (int l = p->len - 1; l >= 0; l--) {
		int r;

		if (!lens[l])
			continue;
		m.len = (uint8_t)l;
		mask_to(m.addr, p->addr, p->family == 4 ? 4 : 16, (uint8_t)l);
		if ((r = ctl_ownset_held_by(h->t, &m)) > 0)
			return (uint16_t)r;
	}
	return FWD_REGION_UNKNOWN;
}

static void push_handed(struct handovers *h, uint16_t from, uint16_t to, int family,
			double addresses)
{
	if (h->oom)
		return;
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 64;
		struct handed *v = realloc(h->v, cap * sizeof(*v));

		if (v == NULL) {
			h->oom = 1;
			return;
		}
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n++] = (struct handed){
		.from = from, .to = to, .family = (uint8_t)family, .addresses = addresses};
}

/* The first index of @t's prefixes (IPv4 first) not before (@family,
 * @addr, @len). */
static uint32_t first_not_before(const struct fwd_table *t, int family, const uint8_t *addr,
				 uint8_t len)
{
	uint32_t lo = 0, hi = t->nprefix4 + t->nprefix6;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (cmp_nth(t, mid, family, addr, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The last address of @a/@len. */
static void last_of(uint8_t *out, const uint8_t *a, int bytes, uint8_t len)
{
	for (int i = 0; i < bytes; i++) {
		int bits = len - i * 8;

		out[i] = bits >= 8 ? a[i] : bits <= 0 ? 0xff : (uint8_t)(a[i] | (0xff >> bits));
	}
}

/* @p, which protected region @from (an id of h->t) held, as h->t holds it
 * now: the prefixes h->t has inside it (the same one in another region,
 * or more specific ones: sorted, they follow it) take their addresses,
 * and its cover (a shorter prefix, else 'unknown') whatever they leave.
 * Those of another region are counted. A split into more specific
 * prefixes of another region was once not seen, one of the same region
 * (a de-aggregation) taken for a handover to the cover (a probe). */
static void hand_one(struct handovers *h, uint16_t from, const struct ctl_rib_pfx *p)
{
	const struct fwd_table *t = h->t;
	int bytes = p->family == 4 ? 4 : 16;
	uint8_t end[16], top_end[16], a[16];
	double left = ldexp(1.0, (bytes * 8) - p->len), size;
	uint32_t n = t->nprefix4 + t->nprefix6;
	int have_top = 0;

	last_of(end, p->addr, bytes, p->len);
	for (uint32_t j = first_not_before(t, p->family, p->addr, p->len); j < n; j++) {
		uint8_t len;
		uint16_t r;
		int fam;

		nth_prefix(t, j, &fam, a, &len, &r);
		/* Sorted by address, then length: one that starts inside
		 * @p is inside it (a shorter one would start before it). */
		if (fam != p->family || memcmp(a, end, (size_t)bytes) > 0)
			break;
		size = ldexp(1.0, bytes * 8 - len);
		if (r != from)
			push_handed(h, from, r, fam, size);
		if (have_top && memcmp(a, top_end, (size_t)bytes) <= 0)
			continue; /* inside the last outermost one: counted there */
		left -= size; /* the outermost ones are disjoint */
		last_of(top_end, a, bytes, len);
		have_top = 1;
	}
	if (left > 0) {
		uint16_t to = cover_of(h, p);

		if (to != from)
			push_handed(h, from, to, p->family, left);
	}
}

static int cmp_handed(const void *a, const void *b)
{
	const struct handed *x = a, *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	return x->to < y->to ? -1 : x->to > y->to;
}

/* The pairs whose new holder breaks a rule of the old, as moves. */
static json_t *handovers_json(struct handovers *h)
{
	struct fwd_class *c = NULL;
	json_t *out;

	if (h->oom) {
		free(h->v);
		return json_pack("[{s:b}]", "truncated", 1);
	}
	if (h->n == 0)
		return NULL;
	out = json_array();
	qsort(h->v, h->n, sizeof(*h->v), cmp_handed);
	for (size_t i = 0, j; i < h->n; i = j) {
		double v4 = 0, v6 = 0;
		char why[1024];

		for (j = i; j < h->n && !cmp_handed(&h->v[i], &h->v[j]); j++) {
			if (h->v[j].family == 4)
				v4 += h->v[j].addresses;
			else
				v6 += h->v[j].addresses;
		}
		if (c == NULL && (c = fwd_class_build(h->t)) == NULL) {
			json_decref(out);
			out = json_pack("[{s:b}]", "truncated", 1);
			break;
		}
		if (!fwd_residency_handover(h->t, c, h->v[i].to, h->v[i].from, why, sizeof(why)))
			continue;
		json_array_append_new(out, json_pack("{s:s, s:s, s:I, s:f, s:f, s:s}", "from",
						     h->t->region_names[h->v[i].from], "to",
						     h->t->region_names[h->v[i].to], "prefixes",
						     (json_int_t)(j - i), "ipv4_addresses", v4,
						     "ipv6_addresses", v6, "residency", why));
	}
	fwd_class_free(c);
	free(h->v);
	if (out && json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *ctl_traffic_handovers(const struct fwd_table *old, const struct fwd_table *new,
			      int (*given_back)(void *arg, const struct ctl_rib_pfx *p,
						const char *region),
			      void *arg)
{
	struct handovers h = {.t = new};
	int32_t *map;

	if (old == NULL || new == NULL || new->nresidency == 0)
		return NULL;
	/* Old region ids to the new table's, for the regions it protects
	 * (by name: a region renamed is another region, its rules with it). */
	if ((map = malloc(old->nregions * sizeof(*map))) == NULL)
		return json_pack("[{s:b}]", "truncated", 1);
	for (uint16_t i = 0; i < old->nregions; i++) {
		int id = fwd_table_region_id(new, old->region_names[i]);

		map[i] = id > 0 && fwd_residency_protects(new, (uint16_t)id) ? id : -1;
	}
	/* Both tables are sorted (IPv4 first, by address, then length): one
	 * walk side by side finds the prefixes kept as they were, the usual
	 * case, with no search (a binary search each cost some 20 cache misses,
	 * over a second for a million); only the others look for a cover. */
	for (uint32_t i = 0, j = 0; i < old->nprefix4 + old->nprefix6 && !h.oom; i++) {
		struct ctl_rib_pfx p = {0};
		uint16_t region, held = 0;
		int family, c = 1;

		nth_prefix(old, i, &family, p.addr, &p.len, &region);
		p.family = (uint8_t)family;
		if (map[region] < 0)
			continue;
		while (j < new->nprefix4 + new->nprefix6 &&
		       (c = cmp_nth(new, j, family, p.addr, p.len)) < 0)
			j++;
		if (c == 0)
			held = j < new->nprefix4 ? new->prefix4[j].region
						 : new->prefix6[j - new->nprefix4].region;
		if (held == map[region])
			continue; /* kept */
		if (held == 0 && given_back && given_back(arg, &p, old->region_names[region]))
			continue;
		hand_one(&h, (uint16_t)map[region], &p);
	}
	free(map);
	return handovers_json(&h);
}

/* The service names of @r in @t, ", "-joined into @out; "every service"
 * for FWD_ANY. */
static void rule_services_str(const struct fwd_table *t, const struct fwd_residency *r, char *out,
			      size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	if (r->nservices == 1 && r->services[0] == FWD_ANY) {
		snprintf(out, len, "every service");
		return;
	}
	for (uint16_t k = 0; k < r->nservices && off < len; k++)
		off += (size_t)snprintf(out + off, len - off, "%s'%s'", k ? ", " : "",
					t->service_names[r->services[k]]);
}

static int rule_has_service(const struct fwd_table *t, const struct fwd_residency *r,
			    const char *name)
{
	if (r->nservices == 1 && r->services[0] == FWD_ANY)
		return 1;
	for (uint16_t k = 0; k < r->nservices; k++)
		if (strcmp(t->service_names[r->services[k]], name) == 0)
			return 1;
	return 0;
}

static void weakened_one(json_t *out, const char *rule, const char *region, const char *change)
{
	json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "rule", rule, "region", region,
					     "change", change));
}

json_t *ctl_link_states_changed(const struct fwd_table *old, const struct fwd_table *new)
{
	json_t *out = NULL;

	for (uint16_t i = 0; old && new &&i < new->nlinks; i++) {
		const struct fwd_link *n = &new->links[i];
		int j = fwd_table_link_id(old, n->name);
		const char *was, *is = fwd_link_state_name(n);

		if (j < 0 || strcmp(was = fwd_link_state_name(&old->links[j]), is) == 0)
			continue;
		if (out == NULL && (out = json_array()) == NULL)
			return NULL;
		json_array_append_new(
			out, json_pack("{s:s, s:s, s:s}", "link", n->name, "from", was, "to", is));
	}
	return out;
}

json_t *ctl_residency_weakened(const struct fwd_table *old, const struct fwd_table *new)
{
	json_t *out;

	if (old == NULL || new == NULL || old->nresidency == 0)
		return NULL;
	if ((out = json_array()) == NULL)
		return NULL;
	for (uint16_t i = 0; i < old->nresidency; i++) {
		const struct fwd_residency *o = &old->residency[i], *n = NULL;
		const char *region = old->region_names[o->region];
		char what[640], list[512];
		size_t off = 0;

		for (uint16_t j = 0; j < new->nresidency &&n == NULL; j++)
			if (strcmp(new->residency[j].name, o->name) == 0)
				n = &new->residency[j];
		if (n == NULL) {
			rule_services_str(old, o, list, sizeof(list));
			snprintf(what, sizeof(what),
				 "removed: %s of region '%s' no longer held to its links", list,
				 region);
			weakened_one(out, o->name, region, what);
			continue;
		}
		if (strcmp(new->region_names[n->region], region) != 0) {
			snprintf(what, sizeof(what), "protects region '%s' now, no longer '%s'",
				 new->region_names[n->region], region);
			weakened_one(out, o->name, region, what);
			continue;
		}
		list[0] = '\0';
		if (o->nservices == 1 && o->services[0] == FWD_ANY) {
			if (!(n->nservices == 1 && n->services[0] == FWD_ANY)) {
				rule_services_str(new, n, list, sizeof(list));
				off += (size_t)snprintf(what + off, sizeof(what) - off,
							"protects only %s, no longer every service",
							list);
			}
		} else {
			for (uint16_t k = 0; k < o->nservices; k++) {
				const char *s = old->service_names[o->services[k]];
				size_t l = strlen(list);

				if (!rule_has_service(new, n, s))
					snprintf(list + l, sizeof(list) - l, "%s'%s'",
						 l ? ", " : "", s);
			}
			if (list[0])
				off += (size_t)snprintf(what + off, sizeof(what) - off,
							"no longer protects %s", list);
		}
		list[0] = '\0';
		for (uint8_t k = 0; k < n->ntags; k++) {
			int had = 0;
			size_t l = strlen(list);

			for (uint8_t m = 0; m < o->ntags && !had; m++)
				had = strcmp(o->tags[m], n->tags[k]) == 0;
			if (!had)
				snprintf(list + l, sizeof(list) - l, "%s'%s'", l ? ", " : "",
					 n->tags[k]);
		}
		if (list[0] && off < sizeof(what))
			off += (size_t)snprintf(what + off, sizeof(what) - off,
						"%sallows links tagged %s too", off ? "; " : "",
						list);
		if (off)
			weakened_one(out, o->name, region, what);
	}
	if (json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *ctl_traffic_handovers_delta(const struct fwd_table *new, const struct fwd_delta *d)
{
	struct handovers h = {.t = new};

	if (new == NULL || new->nresidency == 0)
		return NULL;
	/* Only removals hand users over: an add that would take a protected
	 * region's users is refused by the nesting check (fwd_delta.h). The
	 * region ids of a delta's table are its base's. */
	for (uint32_t i = 0; i < d->n && !h.oom; i++) {
		const struct fwd_delta_op *op = &d->ops[i];
		struct ctl_rib_pfx p = {.family = op->family, .len = op->len};

		if (op->kind != FWD_DELTA_REMOVE || !fwd_residency_protects(new, op->region))
			continue;
		memcpy(p.addr, op->addr, 16);
		hand_one(&h, op->region, &p);
	}
	return handovers_json(&h);
}

/* ---- traffic on top of an impact ----------------------------------------- */

/* A counter's amount over the window: its rate times the window. */
/* A rate over the window as a count again: whole (the rates are rounded
 * to 0.01, and 17999.95582 packets read as a count that is not one). */
static double counted(double rate, const json_t *w)
{
	double n = rate * json_number_value(json_object_get(w, "interval_s"));

	return n > 0 ? (double)(int64_t)(n + 0.5) : 0;
}

static double in_window(const json_t *w, const char *sec, const char *row, const char *key)
{
	return counted(json_number_value(
			       json_object_get(json_object_get(json_object_get(w, sec), row), key)),
		       w);
}

static double total(const json_t *w, const char *key)
{
	return counted(json_number_value(json_object_get(json_object_get(w, "packets"), key)), w);
}

/* The traffic of the services (names) of a content rule in the window. */
static double services_packets(const json_t *w, const json_t *rule)
{
	const json_t *v;
	double sum = 0;
	size_t i;

	json_array_foreach(json_object_get(rule, "services"), i, v)
		sum += in_window(w, "services", json_string_value(v), "packets_per_s");
	return sum;
}

static json_t *rule_by_name(json_t *model, const char *sec, const char *name)
{
	json_t *v, *list = json_object_get(model, sec);
	size_t i;

	if (json_is_object(list)) /* filters: {"rules": [...]} */
		list = json_object_get(list, "rules");
	json_array_foreach(list, i, v)
		if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", name))
			return v;
	return NULL;
}

/* Content and filter rules added, removed or changed, each with the
 * traffic it saw (content: its matches and its services' packets in the
 * window; filter: what the XDP filter counted for it since it was set). */
static json_t *rules_traffic(const json_t *diff, const char *sec, json_t *mo, json_t *mn,
			     const json_t *w, const json_t *fstatus)
{
	static const char *const changes[] = {"added", "removed", "changed"};
	const json_t *d = json_object_get(diff, sec), *v;
	json_t *out = json_array();
	int content = !strcmp(sec, "content_rules");
	size_t i;

	for (int c = 0; c < 3; c++)
		json_array_foreach(json_object_get(d, changes[c]), i, v) {
			const char *name = json_is_string(v)
						   ? json_string_value(v)
						   : json_string_value(json_object_get(v, "name"));
			json_t *before = c == 0 ? NULL : rule_by_name(mo, sec, name),
			       *after = c == 1 ? NULL : rule_by_name(mn, sec, name), *e;

			e = json_pack("{s:s, s:s}", "name", name, "change", changes[c]);
			if (content && w) {
				double sb = before ? services_packets(w, before) : 0,
				       sa = after ? services_packets(w, after) : 0;

				json_object_set_new(e, "scope_packets",
						    json_real(sa > sb ? sa : sb));
				if (before)
					json_object_set_new(
						e, "matches",
						json_real(in_window(w, "content_rules", name,
								    "matches_per_s")));
			} else if (!content) {
				const json_t *fr =
					json_object_get(json_object_get(fstatus, "rules"), name);

				json_object_set(e, "packets_since_set",
						json_is_integer(json_object_get(fr, "packets"))
							? json_object_get(fr, "packets")
							: json_null());
			}
			json_array_append_new(out, e);
		}
	return out;
}

/* Per move, the services whose outcome differs between the source region
 * in the old table and the destination region in the new one: what the
 * moved addresses' traffic does differently. */
static void move_outcomes(json_t *impact, const struct fwd_table *old, const struct fwd_table *new)
{
	struct fwd_class *co = fwd_class_build(old), *cn = fwd_class_build(new);
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(impact, "moves"), i, v) {
		const char *from = json_string_value(json_object_get(v, "from")),
			   *to = json_string_value(json_object_get(v, "to"));
		json_t *list = json_array();

		for (uint16_t s = 0; from && co && cn && s < new->nservices; s++) {
			char before[80], after[80];

			ctl_outcome(old, co, from, new->service_names[s], before, sizeof(before));
			ctl_outcome(new, cn, to, new->service_names[s], after, sizeof(after));
			if (strcmp(before, after))
				json_array_append_new(list,
						      json_pack("{s:s, s:s, s:s}", "service",
								new->service_names[s], "before",
								before, "after", after));
		}
		json_object_set_new(v, "outcomes", list);
	}
	fwd_class_free(co);
	fwd_class_free(cn);
}

void ctl_traffic_annotate(json_t *impact, const json_t *diff, const struct fwd_table *old,
			  const struct fwd_table *new, const json_t *window,
			  const json_t *filter_status)
{
	const json_t *cells = json_object_get(impact, "policy_cells");
	json_t *counted = json_object(), *by_region = json_object(), *mo = ctl_model(old),
	       *mn = ctl_model(new), *v, *sb;
	double pk = total(window, "rx_packets_per_s"), by = total(window, "rx_bits_per_s") / 8;
	double changed = 0, bytes_at_most = 0;
	const char *r;
	int exact = 1;
	size_t i;

	move_outcomes(impact, old, new);
	json_object_set_new(impact, "filter_rules",
			    rules_traffic(diff, "filters", mo, mn, window, filter_status));
	json_object_set_new(
		impact, "filters_settings_changed",
		json_boolean(json_is_true(json_object_get(diff, "filters_settings_changed"))));
	json_object_set_new(impact, "content_rules",
			    rules_traffic(diff, "content_rules", mo, mn, window, filter_status));
	json_decref(mo);
	json_decref(mn);
	if (window == NULL) {
		json_object_set_new(
			impact, "traffic",
			json_pack("{s:s}", "unknown",
				  "no counters from regionfwd yet (regiond samples them "
				  "every 10 s)"));
		goto out;
	}
	json_array_foreach(json_object_get(impact, "changes"), i, v) {
		const char *pol = json_string_value(json_object_get(v, "policy")),
			   *s = json_string_value(json_object_get(v, "service"));
		const json_t *pc = json_object_get(cells, pol ? pol : "");
		double p = pol ? in_window(window, "policies", pol, "packets_per_s") : 0;
		long long n = json_integer_value(json_object_get(pc, "cells"));
		int whole = pc && n == json_integer_value(json_object_get(pc, "changed"));
		json_t *rs;

		r = json_string_value(json_object_get(v, "region"));
		/* A policy's packets are this pair's when it governs no other;
		 * else they are what all its pairs share. */
		json_object_set_new(v, n == 1 ? "packets" : "policy_packets", json_real(p));
		if (pol && !json_object_get(counted, pol)) {
			json_object_set_new(counted, pol, json_true());
			changed += p;
			exact &= whole;
		}
		/* Bytes: per region, the smaller of its bytes and its changed
		 * services' bytes (summed below). */
		if ((rs = json_object_get(by_region, r)) == NULL)
			json_object_set_new(by_region, r, rs = json_real(0));
		json_real_set(rs, json_real_value(rs) +
					  in_window(window, "services", s, "bits_per_s") / 8);
	}
	json_object_foreach(by_region, r, sb) {
		double rb = in_window(window, "regions", r, "bits_per_s") / 8;

		bytes_at_most += rb < json_real_value(sb) ? rb : json_real_value(sb);
	}
	json_array_foreach(json_object_get(impact, "moves"), i, v) {
		const char *from = json_string_value(json_object_get(v, "from"));
		double p;

		if (from == NULL)
			continue;
		p = in_window(window, "regions", from, "packets_per_s");
		json_object_set_new(v, "from_region_packets_at_most", json_real(p));
		/* The moved addresses change link when the two regions' outcomes
		 * differ; their traffic is at most their old region's. */
		if (json_array_size(json_object_get(v, "outcomes"))) {
			changed += p;
			exact = 0;
			bytes_at_most += in_window(window, "regions", from, "bits_per_s") / 8;
		}
	}
	if (bytes_at_most > by)
		bytes_at_most = by;
	json_object_set_new(impact, "traffic",
			    json_pack("{s:O, s:b, s:f, s:f, s:f, s:b, s:f, s:f, s:f}", "window_s",
				      json_object_get(window, "interval_s"), "counters_reset",
				      json_is_true(json_object_get(window, "reset")), "packets", pk,
				      "bytes", by, "changed_packets", changed,
				      "changed_packets_exact", exact, "changed_share",
				      pk > 0 ? changed / pk : 0.0, "changed_bytes_at_most",
				      bytes_at_most, "changed_bytes_share_at_most",
				      by > 0 ? bytes_at_most / by : 0.0));
out:
	json_decref(counted);
	json_decref(by_region);
}
