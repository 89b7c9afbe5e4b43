#include "ctl_rib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fwd_hash.h"
#include "fwd_prefix.h"
#include "fwd_residency.h"

/* One prefix: learned somewhere, owned, or changed since the last
 * reconcile (an entry with none of the three is deleted). 24 bytes, so 2M
 * learned prefixes take about 100 MiB with the table's slack. */
struct ent {
	uint8_t addr[16];
	uint8_t family; /* 0: an empty slot */
	uint8_t len;
	uint8_t holder; /* 1 + the region whose table holds it first; 0: not learned */
	uint8_t owned; /* 1 + the region the feed added it to; 0: not owned */
	uint8_t flags;
	uint8_t prev; /* while relearning: the holder before the dump */
	uint16_t mask; /* the regions' tables that hold it */
};

/* F_MULTI: a region's table may hold more than one route for the prefix
 * (another metric, TOS or source, an appended or multipath route): the
 * kernel says which route one RTM_DELROUTE took, not whether another
 * remains, so such a prefix is kept until a dump tells. */
/* F_STOOD: refused when the comparison under way began (decide): refused
 * again for the same reason, the refusal stands and is not reported anew,
 * and the retry is checked before anything is written ahead. */
/* F_YIELDED: refused because a protected cover the feed learned won over
 * it (cover_wins): listed in r->yielded, retried when a removal takes a
 * prefix that covers it. */
enum { F_DIRTY = 1, F_SHADOWED = 2, F_REFUSED = 4, F_MULTI = 8, F_STOOD = 16, F_YIELDED = 32 };

/* Applies one reconcile may make while it splits refused batches: with
 * the refused change named by the table (changes[i]) that is one apply per
 * refusal; past it the rest waits for the next reconcile. */
#define MAX_APPLIES 256
#define YIELDED_MAX 1024
/* The same for the retries of prefixes refused before, which the table
 * mostly refuses again, one an apply: 256 of them (a copy of the table
 * each, under the state's lock) held status 13 s and made it call
 * regionfwd unreachable after a feed came back (a hostile probe). Past it
 * they stay refused and wait for the next batch, after its fresh changes. */
#define RETRY_APPLIES 16

struct ctl_rib {
	char regions[CTL_RIB_MAX_REGIONS][FWD_NAME_MAX];
	unsigned nregions;
	uint64_t max;
	struct ent *slots;
	size_t cap, used; /* cap: a power of two */
	/* Changed since the last reconcile, each once (F_DIRTY): a prefix
	 * that flaps is one entry here however often it flaps. */
	struct ctl_rib_pfx *dirty;
	size_t ndirty, dcap;
	struct ctl_rib_stats st;
	/* Entries with a nonzero mask: st.learned, also while relearning
	 * (when holders wait for ctl_rib_relearned). */
	uint64_t nmasked;
	/* Bumped at each change of what the feed owns (ctl_rib_owned_version),
	 * and of a prefix learned in more than one table, or its holder
	 * (ctl_rib_conflict_version), and of what is shadowed
	 * (ctl_rib_shadow_version). */
	uint64_t owned_version, conflict_version, shadow_version;
	int relearning;
	/* The refused prefixes with their reason, in no order: reason_seq
	 * says which is the newest (the highest), reason_key is the hash of
	 * the prefix, compared first. */
	struct ctl_rib_refusal reasons[CTL_RIB_MAX_REASONS];
	uint64_t reason_seq[CTL_RIB_MAX_REASONS], reason_key[CTL_RIB_MAX_REASONS], seq;
	/* The prefix applied since (settle): a refusal after it is a new one. */
	uint8_t reason_ended[CTL_RIB_MAX_REASONS];
	unsigned nreasons;
	/* Refused past max: counted only, once, which the operator could
	 * not tell apart; the first few since the last dump are named. */
	struct ctl_rib_pfx over[CTL_RIB_OVER_NAMED];
	uint8_t over_region[CTL_RIB_OVER_NAMED];
	unsigned nover;
	uint64_t over_since;
	/* The prefixes refused because a protected cover won (F_YIELDED), to
	 * retry when a removal takes a prefix that covers one: without it they
	 * waited for the next full comparison, which a withdrawal of the cover
	 * does not make (a review). Bounded; past it one waits for that. */
	struct ctl_rib_pfx yielded[YIELDED_MAX];
	unsigned nyielded;
};

static void key_of(const struct ent *e, struct ctl_rib_pfx *p)
{
	p->family = e->family;
	p->len = e->len;
	memcpy(p->addr, e->addr, 16);
}

static uint64_t hash_pfx(const struct ctl_rib_pfx *p)
{
	uint64_t h = fwd_hash64(p->addr, p->family == 4 ? 4 : 16);

	h = fwd_hash64_update(h, &p->len, 1);
	h = fwd_hash64_update(h, &p->family, 1);
	/* FNV's low bits mix poorly for the slot index: fold the high ones in. */
	return h ^ (h >> 29) ^ (h >> 47);
}

static int same(const struct ent *e, const struct ctl_rib_pfx *p)
{
	return e->family == p->family && e->len == p->len && memcmp(e->addr, p->addr, 16) == 0;
}

static int same_pfx(const struct ctl_rib_pfx *a, const struct ctl_rib_pfx *b)
{
	return a->family == b->family && a->len == b->len && memcmp(a->addr, b->addr, 16) == 0;
}

static struct ent *find(const struct ctl_rib *r, const struct ctl_rib_pfx *p)
{
	size_t m = r->cap - 1;

	for (size_t i = hash_pfx(p) & m;; i = (i + 1) & m) {
		struct ent *e = &r->slots[i];

		if (e->family == 0)
			return NULL;
		if (same(e, p))
			return e;
	}
}

static int grow(struct ctl_rib *r)
{
	size_t ncap = r->cap * 2, m = ncap - 1;
	struct ent *ns = calloc(ncap, sizeof(*ns));

	if (ns == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < r->cap; i++) {
		struct ctl_rib_pfx p;
		size_t j;

		if (r->slots[i].family == 0)
			continue;
		key_of(&r->slots[i], &p);
		for (j = hash_pfx(&p) & m; ns[j].family; j = (j + 1) & m)
			;
		ns[j] = r->slots[i];
	}
	free(r->slots);
	r->slots = ns;
	r->cap = ncap;
	return 0;
}

static struct ent *insert(struct ctl_rib *r, const struct ctl_rib_pfx *p)
{
	size_t m, i;

	if ((r->used + 1) * 10 > r->cap * 7 && grow(r))
		return NULL;
	m = r->cap - 1;
	for (i = hash_pfx(p) & m; r->slots[i].family; i = (i + 1) & m)
		;
	memset(&r->slots[i], 0, sizeof(r->slots[i]));
	r->slots[i].family = p->family;
	r->slots[i].len = p->len;
	memcpy(r->slots[i].addr, p->addr, 16);
	r->used++;
	return &r->slots[i];
}

static void set_flag(struct ctl_rib *r, struct ent *e, uint8_t flag, int on);

/* Backward-shift deletion: no tombstones, so a table that churns (a
 * flapping feed) never fills with them. Invalidates entry pointers. */
static void erase(struct ctl_rib *r, struct ent *e)
{
	size_t m = r->cap - 1, i = (size_t)(e - r->slots), j = i;

	/* Its counts go with it (a forget that could not mark it dirty
	 * erased it shadowed, counted for good), and the listing moves. */
	set_flag(r, e, F_SHADOWED, 0);
	set_flag(r, e, F_REFUSED, 0);
	for (;;) {
		struct ctl_rib_pfx p;
		size_t k;

		j = (j + 1) & m;
		if (r->slots[j].family == 0)
			break;
		key_of(&r->slots[j], &p);
		k = hash_pfx(&p) & m;
		/* Slot j's entry may move to i when its home k is not in (i, j]. */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		r->slots[i] = r->slots[j];
		i = j;
	}
	r->slots[i].family = 0;
	r->used--;
}

/* The counters follow every change of an entry's state through these. */
static void set_holder(struct ctl_rib *r, struct ent *e, unsigned holder)
{
	r->conflict_version += __builtin_popcount(e->mask) > 1 && e->holder != holder;
	r->shadow_version += (e->flags & F_SHADOWED) && e->holder != holder;
	if (e->holder) {
		uint64_t *c = e->family == 4 ? r->st.learned4 : r->st.learned6;

		c[e->holder - 1]--;
		r->st.learned--;
	}
	e->holder = (uint8_t)holder;
	if (holder) {
		uint64_t *c = e->family == 4 ? r->st.learned4 : r->st.learned6;

		c[holder - 1]++;
		r->st.learned++;
	}
}

static void set_mask(struct ctl_rib *r, struct ent *e, uint16_t mask)
{
	r->conflict_version += e->mask != mask &&
			       (__builtin_popcount(e->mask) > 1 || __builtin_popcount(mask) > 1);
	r->st.conflicting -= __builtin_popcount(e->mask) > 1;
	r->nmasked -= e->mask != 0;
	e->mask = mask;
	r->st.conflicting += __builtin_popcount(e->mask) > 1;
	r->nmasked += e->mask != 0;
}

static void set_flag(struct ctl_rib *r, struct ent *e, uint8_t flag, int on)
{
	uint64_t *c = flag == F_SHADOWED ? &r->st.shadowed : &r->st.refused;

	if (!!(e->flags & flag) == !!on)
		return;
	r->shadow_version += flag == F_SHADOWED;
	/* a conflicting prefix's listing says whether it was refused */
	r->conflict_version += flag == F_REFUSED && __builtin_popcount(e->mask) > 1;
	e->flags ^= flag;
	*c += on ? 1 : (uint64_t)-1;
}

static void set_owned(struct ctl_rib *r, struct ent *e, unsigned owned)
{
	r->owned_version += e->owned != owned;
	r->st.owned -= e->owned != 0;
	e->owned = (uint8_t)owned;
	r->st.owned += e->owned != 0;
}

static int mark_dirty(struct ctl_rib *r, struct ent *e)
{
	if (e->flags & F_DIRTY)
		return 0;
	if (r->ndirty == r->dcap) {
		size_t n = r->dcap ? r->dcap * 2 : 1024;
		struct ctl_rib_pfx *d = realloc(r->dirty, n * sizeof(*d));

		if (d == NULL)
			return -ENOMEM;
		r->dirty = d;
		r->dcap = n;
	}
	key_of(e, &r->dirty[r->ndirty++]);
	e->flags |= F_DIRTY;
	return 0;
}

/* Delete @e when nothing about it is left to remember. */
static void collect(struct ctl_rib *r, struct ent *e)
{
	if (e->mask == 0 && e->owned == 0 && !(e->flags & F_DIRTY)) {
		set_flag(r, e, F_SHADOWED, 0);
		set_flag(r, e, F_REFUSED, 0);
		erase(r, e);
	}
}

struct ctl_rib *ctl_rib_new(const char (*regions)[FWD_NAME_MAX], unsigned nregions,
			    uint64_t max_prefixes)
{
	struct ctl_rib *r;

	if (nregions == 0 || nregions > CTL_RIB_MAX_REGIONS || max_prefixes == 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	for (unsigned i = 0; i < nregions; i++)
		snprintf(r->regions[i], sizeof(r->regions[i]), "%s", regions[i]);
	r->nregions = nregions;
	r->max = max_prefixes;
	r->cap = 1024;
	r->slots = calloc(r->cap, sizeof(*r->slots));
	if (r->slots == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void ctl_rib_free(struct ctl_rib *r)
{
	if (r == NULL)
		return;
	free(r->slots);
	free(r->dirty);
	free(r);
}

int ctl_rib_learn(struct ctl_rib *r, const struct ctl_rib_pfx *p, unsigned region)
{
	struct ent *e;

	if (region >= r->nregions)
		return -EINVAL;
	e = find(r, p);
	if (e && (e->mask & (1u << region)))
		return 0;
	/* A prefix new to the learned set past the bound is refused here, so
	 * the table and the dirty list never grow past it. */
	if ((e == NULL || e->mask == 0) && r->nmasked >= r->max) {
		r->st.overflow++;
		r->over_since++;
		if (r->nover < CTL_RIB_OVER_NAMED) {
			for (unsigned i = 0; i < r->nover; i++)
				if (r->over[i].family == p->family && r->over[i].len == p->len &&
				    memcmp(r->over[i].addr, p->addr, p->family == 4 ? 4 : 16) == 0)
					return -ENOSPC; /* named already (a second route) */
			memcpy(&r->over[r->nover], p, sizeof(*p));
			r->over_region[r->nover++] = (uint8_t)region;
		}
		return -ENOSPC;
	}
	if (e == NULL && (e = insert(r, p)) == NULL)
		return -ENOMEM;
	set_mask(r, e, (uint16_t)(e->mask | (1u << region)));
	if (r->relearning)
		return 1; /* the holder is chosen when the dump is complete */
	if (e->holder)
		return 0; /* another region's table had it first: it keeps it */
	set_holder(r, e, region + 1);
	if (mark_dirty(r, e)) {
		/* Not remembered as changed: undone, so nothing is half-known. */
		set_holder(r, e, 0);
		set_mask(r, e, 0);
		collect(r, e);
		return -ENOMEM;
	}
	return 1;
}

int ctl_rib_learned_in(const struct ctl_rib *r, const struct ctl_rib_pfx *p, unsigned region)
{
	const struct ent *e = region < r->nregions ? find(r, p) : NULL;

	return e != NULL && (e->mask & (1u << region));
}

void ctl_rib_more_routes(struct ctl_rib *r, const struct ctl_rib_pfx *p)
{
	struct ent *e = find(r, p);

	if (e && e->mask)
		e->flags |= F_MULTI;
}

int ctl_rib_forget(struct ctl_rib *r, const struct ctl_rib_pfx *p, unsigned region)
{
	struct ent *e = region < r->nregions ? find(r, p) : NULL;

	if (e == NULL || !(e->mask & (1u << region)))
		return 0;
	if (e->flags & F_MULTI)
		return 1; /* another route may remain: kept until a dump tells */
	set_mask(r, e, (uint16_t)(e->mask & ~(1u << region)));
	if (e->holder == region + 1) {
		/* The next region that has it takes over; which one had it
		 * second is not known, so the lowest table index. */
		set_holder(r, e, e->mask ? (unsigned)__builtin_ctz(e->mask) + 1 : 0);
		if (mark_dirty(r, e) && e->owned == 0 && e->mask == 0)
			erase(r, e); /* cannot be remembered, and nothing was applied */
		else
			collect(r, e);
	}
	return 0;
}

void ctl_rib_forget_all(struct ctl_rib *r)
{
	for (size_t i = 0; i < r->cap; i++) {
		struct ent *e = &r->slots[i];

		if (e->family == 0)
			continue;
		/* A dump tried again after a failed one: the holders are
		 * those from before the first. */
		if (!r->relearning)
			e->prev = e->holder;
		set_holder(r, e, 0);
		set_mask(r, e, 0);
		e->flags &= (uint8_t)~F_MULTI;
	}
	r->relearning = 1;
	r->nover = 0; /* the dump tells again what it has no room for */
	r->over_since = 0;
}

int ctl_rib_relearned(struct ctl_rib *r)
{
	int rc = 0;

	for (size_t i = 0; i < r->cap; i++) {
		struct ent *e = &r->slots[i];
		unsigned prev = e->prev, want;

		if (e->family == 0)
			continue;
		e->prev = 0;
		/* The table that held it before keeps it while it still has
		 * it: a dump lists the tables in its own order, and a resync
		 * must not move a conflicting prefix. */
		if (prev && (e->mask & (1u << (prev - 1))))
			want = prev;
		else
			want = e->mask ? (unsigned)__builtin_ctz(e->mask) + 1 : 0;
		set_holder(r, e, want);
		if (want != prev && mark_dirty(r, e))
			rc = -ENOMEM; /* the caller compares every prefix instead */
	}
	r->relearning = 0;
	/* Entries left with nothing (not owned, not dirty) go; the scan
	 * restarts after each erase, whose shift may move an unvisited entry
	 * back over the cursor. */
	for (size_t i = 0; i < r->cap;) {
		struct ent *e = &r->slots[i];

		if (e->family && e->mask == 0 && e->owned == 0 && !(e->flags & F_DIRTY)) {
			set_flag(r, e, F_SHADOWED, 0);
			set_flag(r, e, F_REFUSED, 0);
			erase(r, e); /* slot i may hold another entry now: look again */
		} else {
			i++;
		}
	}
	return rc;
}

int ctl_rib_own(struct ctl_rib *r, const struct ctl_rib_pfx *p, int region)
{
	struct ent *e;

	if (region >= (int)r->nregions)
		return -EINVAL;
	e = find(r, p);
	if (region < 0) {
		if (e) {
			set_owned(r, e, 0);
			collect(r, e);
		}
		return 0;
	}
	if (e == NULL && (e = insert(r, p)) == NULL)
		return -ENOMEM;
	set_owned(r, e, (unsigned)region + 1);
	return mark_dirty(r, e);
}

int ctl_rib_owner(const struct ctl_rib *r, const struct ctl_rib_pfx *p)
{
	const struct ent *e = find(r, p);

	return e && e->owned ? e->owned - 1 : -1;
}

unsigned ctl_rib_disown_unheld(struct ctl_rib *r, const struct ctl_rib_table *t)
{
	unsigned n = 0;

	for (size_t i = 0; i < r->cap; i++) {
		struct ent *e = &r->slots[i];
		struct ctl_rib_pfx p;
		int id;

		if (e->family == 0 || e->owned == 0)
			continue;
		key_of(e, &p);
		id = t->region_id(t->arg, r->regions[e->owned - 1]);
		if (id > 0 && t->held_by(t->arg, &p) == id)
			continue;
		if (t->record)
			t->record(t->arg, &p, r->regions[e->owned - 1], 0);
		set_owned(r, e, 0); /* the entry stays (dirty) until a reconcile */
		n++;
	}
	return n;
}

/* Remember why @p was refused: one entry per prefix, at most
 * CTL_RIB_MAX_REASONS (past them the oldest goes). Refused again, its
 * entry is updated in place and becomes the newest (its sequence number:
 * the list is ordered only when read). Entries once moved to the front on
 * every refusal: 31 entries of ~450 bytes moved at each of a million
 * refusals of a full comparison (a mistyped region with a full table).
 * Reported in @out when the refusal is new: for another reason or region
 * than its entry says, or after the prefix applied meanwhile; without an
 * entry, when the prefix was not refused when this comparison began. An
 * entry outlives the prefix's withdrawal (the list is bounded): a refused
 * route that flaps was logged again at each re-announce. A standing
 * refusal whose entry newer ones pushed out is not reported again: its
 * reason is not known any more, and a full comparison would otherwise
 * report every such prefix each time. */
static void refuse(struct ctl_rib *r, struct ent *e, unsigned region, const char *why,
		   struct ctl_rib_batch *out)
{
	const char *name = region ? r->regions[region - 1] : "";
	int stood = (e->flags & (F_STOOD | F_REFUSED)) != 0, changed = 1, found;
	struct ctl_rib_refusal *x;
	struct ctl_rib_pfx p;
	uint64_t h;
	unsigned k;

	set_flag(r, e, F_REFUSED, 1);
	key_of(e, &p);
	h = hash_pfx(&p);
	for (k = 0; k < r->nreasons; k++)
		if (r->reason_key[k] == h && same_pfx(&r->reasons[k].p, &p))
			break;
	found = k < r->nreasons;
	if (found) {
		changed = strcmp(r->reasons[k].region, name) != 0 ||
			  strncmp(r->reasons[k].reason, why, sizeof(x->reason) - 1) != 0;
		stood = !r->reason_ended[k];
	} else if (r->nreasons < CTL_RIB_MAX_REASONS) {
		k = r->nreasons++;
	} else {
		k = 0; /* the oldest goes */
		for (unsigned i = 1; i < r->nreasons; i++)
			if (r->reason_seq[i] < r->reason_seq[k])
				k = i;
	}
	x = &r->reasons[k];
	if (changed) {
		memset(x, 0, sizeof(*x));
		x->p = p;
		snprintf(x->region, sizeof(x->region), "%s", name);
		snprintf(x->reason, sizeof(x->reason), "%s", why);
		r->reason_key[k] = h;
	}
	x->when = (int64_t)time(NULL);
	r->reason_seq[k] = ++r->seq;
	r->reason_ended[k] = 0;
	if (stood && !changed)
		return;
	if (out->refused_new < CTL_RIB_BATCH_NEWS)
		out->news[out->refused_new] = *x;
	out->refused_new++;
}

static void op_key(const struct fwd_delta_op *op, struct ctl_rib_pfx *p)
{
	p->family = op->family;
	p->len = op->len;
	memcpy(p->addr, op->addr, 16);
}

static int push_op(struct fwd_delta *d, uint8_t kind, const struct ent *e, int region)
{
	struct fwd_delta_op *op;

	if (d->n == d->cap) {
		uint32_t n = d->cap ? d->cap * 2 : 256;
		struct fwd_delta_op *ops = realloc(d->ops, n * sizeof(*ops));

		if (ops == NULL)
			return -ENOMEM;
		d->ops = ops;
		d->cap = n;
	}
	op = &d->ops[d->n];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->family = e->family;
	op->len = e->len;
	op->region = (uint16_t)region;
	memcpy(op->addr, e->addr, 16);
	op->index = d->n++;
	return 0;
}

/* Blocks no user's packet carries as its source: a learned prefix inside
 * one names no users, and a default route (length 0) names everyone. The
 * feed accepted 0.0.0.0/0 into a region (every source nobody else holds
 * then became that region's, which turned a refused protected route into
 * a leak for any range), 224.0.0.0/4, 127.0.0.0/8, ::1/128, fe80::/10 and
 * ff00::/8 without a word (a hostile probe). Static prefixes are the
 * table's to decide; these are the feed's refusals. */
static const struct {
	uint8_t family, len, addr[16];
	const char *what;
} no_users[] = {
	{4, 8, {0}, "'this network' (0.0.0.0/8)"},
	{4, 8, {127}, "loopback (127.0.0.0/8)"},
	{4, 16, {169, 254}, "link-local (169.254.0.0/16)"},
	{4, 4, {224}, "multicast (224.0.0.0/4)"},
	{4, 4, {240}, "reserved and broadcast (240.0.0.0/4)"},
	{6, 128, {0}, "the unspecified address (::/128)"},
	{6, 128, {[15] = 1}, "loopback (::1/128)"},
	{6, 10, {0xfe, 0x80}, "link-local (fe80::/10)"},
	{6, 8, {0xff}, "multicast (ff00::/8)"},
};

/* Why a learned prefix @p names no users, or NULL. */
static const char *names_no_users(const struct ctl_rib_pfx *p, char *why, size_t len)
{
	char s[64];

	ctl_rib_pfx_str(p, s, sizeof(s));
	/* A default, or one in parts: 0.0.0.0/1 and 128.0.0.0/1 are every
	 * source nobody else holds as surely as 0.0.0.0/0 (a review). No
	 * user block is shorter than an IPv4 /8 or an IPv6 /16. */
	if (p->len < (p->family == 4 ? 8 : 16)) {
		snprintf(why, len,
			 "%s is a default route%s, which says nothing about who the users are: "
			 "the feed learns none, nor any prefix shorter than /%u (a region meant "
			 "to hold every other source says so with a static prefix)",
			 s, p->len ? " or a part of one" : "", p->family == 4 ? 8u : 16u);
		return why;
	}
	for (size_t i = 0; i < sizeof(no_users) / sizeof(no_users[0]); i++) {
		uint8_t whole = no_users[i].len / 8, rest = no_users[i].len % 8;

		if (p->family != no_users[i].family || p->len < no_users[i].len ||
		    memcmp(p->addr, no_users[i].addr, whole) != 0 ||
		    (rest && ((p->addr[whole] ^ no_users[i].addr[whole]) & (0xff << (8 - rest)))))
			continue;
		snprintf(why, len, "%s lies in %s, which no user's packet carries as its source", s,
			 no_users[i].what);
		return why;
	}
	return NULL;
}

enum { DO_NOTHING, DO_OP, DO_MOVE };

/* What entry @e needs, as one op appended to @d (DO_OP), a removal now
 * and an addition after it (DO_MOVE: one batch may not name a prefix
 * twice), or nothing. */
static int decide(struct ctl_rib *r, const struct ctl_rib_table *t, const int *ids,
		  enum ctl_rib_mode mode, struct ent *e, struct fwd_delta *d,
		  struct ctl_rib_batch *out)
{
	struct ctl_rib_pfx p;
	unsigned want = mode != CTL_RIB_WITHDRAW ? e->holder : 0;
	int held, rc;

	key_of(e, &p);
	held = t->held_by(t->arg, &p);
	/* Held (the feed lost, or a routing daemon back relearning), but the
	 * table changed under the feed and dropped it: a full PUT carries the
	 * static prefixes only, and once took every held prefix out of the
	 * table for the rest of the hold while the status said "holding"
	 * (a hostile probe). It goes back where the feed had it. */
	if (e->owned && held == 0 && ids[e->owned - 1] > 0 &&
	    (mode == CTL_RIB_HOLD || (mode == CTL_RIB_KEEP && e->holder == 0)))
		return push_op(d, FWD_DELTA_ADD, e, ids[e->owned - 1]) ?: DO_OP;
	if (e->owned && (ids[e->owned - 1] <= 0 || held != ids[e->owned - 1])) {
		/* Someone else changed it (a full PUT dropped it or gave it to
		 * another region): not the feed's any more. */
		if (t->record)
			t->record(t->arg, &p, r->regions[e->owned - 1], 0);
		set_owned(r, e, 0);
	}
	if (mode == CTL_RIB_HOLD)
		return DO_NOTHING; /* the rest waits until the feed is back */
	set_flag(r, e, F_SHADOWED, 0);
	/* Whether it is a retry: refuse() and the check before the record. */
	e->flags = (uint8_t)((e->flags & ~F_STOOD) | ((e->flags & F_REFUSED) ? F_STOOD : 0));
	set_flag(r, e, F_REFUSED, 0);
	if (want == 0 && mode == CTL_RIB_KEEP)
		return DO_NOTHING; /* kept; the full FOLLOW after it removes it */
	if (want == 0)
		return e->owned ? (push_op(d, FWD_DELTA_REMOVE, e, held) ?: DO_OP) : DO_NOTHING;
	if (e->family == 6 && fwd_prefix6_mapped(e->addr, e->len)) {
		/* A table refuses it (it matches no packet): so does the feed,
		 * in the table's words, rather than hold a table that fails its
		 * own validation; one an older regiond added goes. */
		char pfx[64], why[256];

		snprintf(why, sizeof(why), FWD_PREFIX6_MAPPED_FMT,
			 ctl_rib_pfx_str(&p, pfx, sizeof(pfx)),
			 FWD_PREFIX6_MAPPED_ARGS(e->addr, (unsigned)e->len));
		refuse(r, e, want, why, out);
		out->refused++;
		return e->owned ? (push_op(d, FWD_DELTA_REMOVE, e, held) ?: DO_OP) : DO_NOTHING;
	}
	{
		char why[384];

		if (names_no_users(&p, why, sizeof(why))) {
			refuse(r, e, want, why, out);
			out->refused++;
			/* one an older regiond added goes */
			return e->owned ? (push_op(d, FWD_DELTA_REMOVE, e, held) ?: DO_OP)
					: DO_NOTHING;
		}
	}
	if (ids[want - 1] <= 0) {
		char why[FWD_NAME_MAX + 48];

		snprintf(why, sizeof(why), "region '%s' is not in the table", r->regions[want - 1]);
		refuse(r, e, want, why, out);
		out->refused++;
		return DO_NOTHING;
	}
	if (e->owned == want)
		return DO_NOTHING;
	if (e->owned) {
		rc = push_op(d, FWD_DELTA_REMOVE, e, held);
		return rc ?: DO_MOVE;
	}
	if (held == 0)
		return push_op(d, FWD_DELTA_ADD, e, ids[want - 1]) ?: DO_OP;
	set_flag(r, e, F_SHADOWED, 1); /* static wins */
	return DO_NOTHING;
}

/* The changes the table refuses one by one, not as a whole. */
static int change_refusal(const struct fwd_err *e)
{
	return e->reason_code == FWD_R_INVALID_DELTA ||
	       e->reason_code == FWD_R_RESIDENCY_VIOLATION || e->reason_code == FWD_R_INVALID_TABLE;
}

/* The index N of "changes[N]" in @e's path or text, or -1. */
static long named_change(const struct fwd_err *e)
{
	const char *s = strstr(e->path, "changes[");
	char *end;
	long n;

	if (s == NULL && (s = strstr(e->reason, "changes[")) == NULL)
		return -1;
	n = strtol(s + 8, &end, 10);
	return *end == ']' && n >= 0 ? n : -1;
}

static void swap_ops(struct fwd_delta_op *a, struct fwd_delta_op *b)
{
	struct fwd_delta_op x = *a;

	*a = *b;
	*b = x;
}

static int pfx_inside(const struct ctl_rib_pfx *in, const struct ctl_rib_pfx *out)
{
	uint8_t whole = out->len / 8, rest = out->len % 8;

	return in->family == out->family && in->len > out->len &&
	       memcmp(in->addr, out->addr, whole) == 0 &&
	       (rest == 0 || ((in->addr[whole] ^ out->addr[whole]) & (0xff << (8 - rest))) == 0);
}

/* @e yielded to a protected cover: listed, to be retried when it goes. */
static void yield(struct ctl_rib *r, struct ent *e)
{
	if ((e->flags & F_YIELDED) || r->nyielded == YIELDED_MAX)
		return;
	e->flags |= F_YIELDED;
	key_of(e, &r->yielded[r->nyielded++]);
}

static void unyield(struct ctl_rib *r, struct ent *e)
{
	struct ctl_rib_pfx p;

	key_of(e, &p);
	e->flags &= (uint8_t)~F_YIELDED;
	for (unsigned i = 0; i < r->nyielded; i++)
		if (same_pfx(&r->yielded[i], &p)) {
			r->yielded[i] = r->yielded[--r->nyielded];
			return;
		}
}

/* A prefix @removed went: the prefixes that yielded to it (or to any
 * cover it held) are retried, as retries, in the next round. */
static void retry_yielded_inside(struct ctl_rib *r, const struct ctl_rib_pfx *removed)
{
	for (unsigned i = 0; i < r->nyielded;) {
		struct ent *x;

		if (!pfx_inside(&r->yielded[i], removed)) {
			i++;
			continue;
		}
		if ((x = find(r, &r->yielded[i])) != NULL) {
			x->flags &= (uint8_t)~F_YIELDED;
			mark_dirty(r, x);
		}
		r->yielded[i] = r->yielded[--r->nyielded];
	}
}

/* What an applied (@ok) or refused op means for its entry. */
static void settle(struct ctl_rib *r, const struct ctl_rib_table *t, const struct fwd_delta_op *op,
		   int ok, const char *why, struct ctl_rib_batch *out)
{
	struct ctl_rib_pfx p;
	struct ent *e;

	op_key(op, &p);
	if ((e = find(r, &p)) == NULL)
		return;
	if (!ok) {
		refuse(r, e, e->holder ? e->holder : e->owned, why, out);
		out->refused++;
		/* A held prefix put back (decide) that the table now refuses
		 * is not the feed's any more. */
		if (op->kind == FWD_DELTA_ADD && e->owned) {
			if (t->record)
				t->record(t->arg, &p, r->regions[e->owned - 1], 0);
			set_owned(r, e, 0);
		}
		return;
	}
	e->flags &= (uint8_t)~F_STOOD; /* applied: a refusal later is a new one */
	if (op->kind == FWD_DELTA_ADD && (e->flags & F_YIELDED))
		unyield(r, e);
	if (op->kind == FWD_DELTA_REMOVE && r->nyielded)
		retry_yielded_inside(r, &p);
	if (op->kind == FWD_DELTA_ADD) {
		uint64_t h = r->nreasons ? hash_pfx(&p) : 0;

		for (unsigned k = 0; k < r->nreasons; k++)
			if (r->reason_key[k] == h && same_pfx(&r->reasons[k].p, &p))
				r->reason_ended[k] = 1;
		/* Owned already: a held prefix put back where the feed had it. */
		set_owned(r, e, e->owned ? e->owned : e->holder);
		out->added++;
	} else {
		if (t->record && e->owned)
			t->record(t->arg, &p, r->regions[e->owned - 1], 0);
		set_owned(r, e, 0);
		out->removed++;
	}
}

/* Retries not tried this time: refused still (their refusal stands, and
 * counts), and back on the dirty list, retries again in the next batch. */
static void requeue_refused(struct ctl_rib *r, const struct fwd_delta_op *ops, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct ctl_rib_pfx p;
		struct ent *e;

		op_key(&ops[i], &p);
		if ((e = find(r, &p)) != NULL) {
			set_flag(r, e, F_REFUSED, 1);
			mark_dirty(r, e);
		}
	}
}

/* Back on the dirty list: not applied this time. */
static void requeue(struct ctl_rib *r, const struct fwd_delta_op *ops, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct ctl_rib_pfx p;
		struct ent *e;

		op_key(&ops[i], &p);
		if ((e = find(r, &p)) != NULL)
			mark_dirty(r, e);
	}
}

/* Learned prefixes one protected cover may take back, tried one at a time
 * as the table names them: each try is an apply (a copy of the table). */
#define COVER_TRIES 16

/* The entries a nested-prefix residency refusal @fe of @op's addition
 * names: @op's own prefix, its outer one, in *@cover, and the prefix inside
 * it in *@in, both learned, in the regions the refusal says (*@in by its
 * region the feed added it to, else its holder's: it may not be applied
 * yet). 0, or -1 when @fe says anything else. */
static int nested_refusal(struct ctl_rib *r, const struct fwd_delta_op *op,
			  const struct fwd_err *fe, struct ent **cover, struct ent **in)
{
	char is[64], in_region[FWD_NAME_MAX], outer[64], outer_region[FWD_NAME_MAX];
	struct ctl_rib_pfx ip, cp, own;
	struct ent *c, *x;

	if (op->kind != FWD_DELTA_ADD || fe->reason_code != FWD_R_RESIDENCY_VIOLATION ||
	    fwd_residency_nested_of(fe->reason, is, in_region, outer, outer_region) ||
	    ctl_rib_pfx_parse(is, &ip) || ctl_rib_pfx_parse(outer, &cp))
		return -1;
	op_key(op, &own);
	if (!same_pfx(&cp, &own) || (c = find(r, &own)) == NULL || c->holder == 0 ||
	    strcmp(outer_region, r->regions[c->holder - 1]) != 0 || (x = find(r, &ip)) == NULL ||
	    x == c || (x->owned ? x->owned : x->holder) == 0 ||
	    strcmp(in_region, r->regions[(x->owned ? x->owned : x->holder) - 1]) != 0)
		return -1;
	*cover = c;
	*in = x;
	return 0;
}

/* The learned prefix in the way of @op's addition, by @fe: a prefix the
 * feed added for another region (owned), inside @op's. NULL when @fe says
 * anything else. */
static struct ent *learned_in_the_way(struct ctl_rib *r, const struct fwd_delta_op *op,
				      const struct fwd_err *fe)
{
	struct ent *c, *x;

	if (nested_refusal(r, op, fe, &c, &x) || x->owned == 0)
		return NULL;
	return x;
}

/* Why a nested prefix is refused when the protected @cover won over it. */
static const char *yielded_why(const struct ctl_rib *r, const struct fwd_delta_op *cover, char *why,
			       size_t len)
{
	char cs[64];
	struct ctl_rib_pfx cp;

	op_key(cover, &cp);
	snprintf(why, len,
		 "lies inside %s of region '%s', which the feed learned too and a residency rule "
		 "protects: the protected prefix wins (this one is retried when it goes)",
		 ctl_rib_pfx_str(&cp, cs, sizeof(cs)), r->regions[find(r, &cp)->holder - 1]);
	return why;
}

/*
 * The addition @op of a learned prefix of region A, refused by a residency
 * rule of A because a prefix the feed learned for region B lies inside it
 * and would take A's protected users out: the protected cover wins. Which
 * of the two was learned first decided it (the later one refused), so
 * India's own route was refused when Singapore's nested one was older, and
 * India's users then followed whatever else covered them (Singapore's
 * static /13, a learned default) out of India; a full PUT could flip it (a
 * hostile probe). The nested prefixes now go, refused (retried when the
 * cover goes), and the cover applies, in one delta. A nested prefix that
 * is static, or a refusal of anything else, leaves the cover refused.
 * @return 1 when @op applied, 0 when nothing changed.
 */
static int cover_wins(struct ctl_rib *r, const struct ctl_rib_table *t,
		      const struct fwd_delta_op *op, const struct fwd_err *refusal,
		      unsigned *applies, unsigned max_applies, struct ctl_rib_batch *out)
{
	struct fwd_delta_op ops[COVER_TRIES + 1];
	struct ent *nested[COVER_TRIES], *x;
	struct fwd_err fe = *refusal;
	unsigned n = 0;
	int64_t gen = -1;

	ops[0] = *op;
	/* Each try is an apply (a copy of the table under the state's lock),
	 * counted with the batch's own: 16 tries a cover, uncounted, once let
	 * a batch take 17 times its bound (a review). */
	while (gen < 0 && n < COVER_TRIES && *applies < max_applies &&
	       (x = learned_in_the_way(r, op, &fe)) != NULL) {
		struct ctl_rib_pfx ip;
		struct fwd_delta d;

		for (unsigned k = 0; k < n; k++)
			if (nested[k] == x)
				return 0; /* named again: it is not what refuses */
		key_of(x, &ip);
		nested[n++] = x;
		memset(&ops[n], 0, sizeof(ops[n]));
		ops[n].kind = FWD_DELTA_REMOVE;
		ops[n].family = x->family;
		ops[n].len = x->len;
		memcpy(ops[n].addr, x->addr, 16);
		ops[n].region = (uint16_t)t->held_by(t->arg, &ip);
		for (unsigned k = 0; k <= n; k++)
			ops[k].index = k;
		d = (struct fwd_delta){.n = n + 1, .cap = n + 1, .ops = ops};
		memset(&fe, 0, sizeof(fe));
		(*applies)++;
		out->applies++;
		gen = t->apply(t->arg, &d, &fe);
	}
	if (gen < 0)
		return 0;
	if (gen > 0)
		out->generation = gen;
	settle(r, t, &ops[0], 1, NULL, out);
	for (unsigned k = 0; k < n; k++) {
		char why[384];
		unsigned region = nested[k]->owned;

		settle(r, t, &ops[k + 1], 1, NULL, out); /* removed: the feed's no more */
		refuse(r, nested[k], nested[k]->holder ? nested[k]->holder : region,
		       yielded_why(r, op, why, sizeof(why)), out);
		out->refused++;
		yield(r, nested[k]);
	}
	return 1;
}

/*
 * The same when the learned prefix in the way is added by the same batch
 * (a dump at start, a relearn): not owned yet, it was not taken back, and
 * the table, which checks the cover first, refused the cover and took the
 * nested one (a review). The index in [@lo, @hi) of @d's addition of the
 * nested prefix @fe names, another region's inside @op, or -1.
 */
static long nested_addition(struct ctl_rib *r, const struct fwd_delta *d, uint32_t lo, uint32_t hi,
			    const struct fwd_delta_op *op, const struct fwd_err *fe)
{
	struct ctl_rib_pfx ip;
	struct ent *c, *x;

	if (nested_refusal(r, op, fe, &c, &x))
		return -1;
	key_of(x, &ip);
	for (uint32_t k = lo; k < hi; k++) {
		struct ctl_rib_pfx q;

		op_key(&d->ops[k], &q);
		if (d->ops[k].kind == FWD_DELTA_ADD && same_pfx(&q, &ip))
			return (long)k;
	}
	return -1;
}

/* Apply @d; a refused batch is split: the change the table names goes
 * alone (refused), else halves, until every change applied or was refused
 * alone. @return 0, or -1 with @e (a refusal not about a change). */
static int apply_split(struct ctl_rib *r, const struct ctl_rib_table *t, struct fwd_delta *d,
		       unsigned max_applies, struct ctl_rib_batch *out, struct fwd_err *e)
{
	struct range {
		uint32_t lo, hi;
	} * stack;
	unsigned sp = 0, applies = 0;
	int rc = 0;

	if (d->n == 0)
		return 0;
	/* A binary split never holds more than log2(n) + 1 pending ranges, and
	 * each apply may leave one more behind (a cover's own range, below):
	 * 40 alone was overrun by 40 protected covers in one batch (a review). */
	const unsigned cap = 40 + max_applies;

	stack = malloc(cap * sizeof(*stack));
	if (stack == NULL) {
		requeue(r, d->ops, d->n);
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	}
	stack[sp++] = (struct range){0, d->n};
	while (sp) {
		struct range g = stack[--sp];
		struct fwd_delta part = {
			.n = g.hi - g.lo, .cap = g.hi - g.lo, .ops = d->ops + g.lo};
		struct fwd_err fe = {0};
		int64_t gen;
		long named;

		if (g.lo == g.hi)
			continue;
		if (applies == max_applies || rc) {
			if (rc == 0 && max_applies == RETRY_APPLIES)
				requeue_refused(r, part.ops, part.n);
			else
				requeue(r, part.ops, part.n);
			continue;
		}
		applies++;
		out->applies++;
		/* The table names a refused change by its place in what it was
		 * given (changes[N], as fwd_delta's checks count): each op's index
		 * is made that place, so both ways of naming one agree. An index
		 * kept from the whole batch named the wrong change once a part
		 * started past 0, and refused a good route with another's reason. */
		for (uint32_t k = 0; k < part.n; k++)
			part.ops[k].index = k;
		gen = t->apply(t->arg, &part, &fe);
		if (gen >= 0) {
			if (gen > 0)
				out->generation = gen;
			for (uint32_t i = g.lo; i < g.hi; i++)
				settle(r, t, &d->ops[i], 1, NULL, out);
			continue;
		}
		if (!change_refusal(&fe)) {
			*e = fe;
			rc = -1;
			requeue(r, part.ops, part.n);
			continue;
		}
		if (part.n == 1) {
			if (!cover_wins(r, t, part.ops, &fe, &applies, max_applies, out))
				settle(r, t, part.ops, 0, fe.reason, out);
			continue;
		}
		named = named_change(&fe);
		if (named >= 0 && (uint32_t)named < part.n) {
			long in;

			swap_ops(&d->ops[g.lo], &d->ops[g.lo + (uint32_t)named]);
			/* A protected cover refused for a nested prefix this batch
			 * adds: the nested one is refused instead, the cover tried
			 * again with the rest. */
			if ((in = nested_addition(r, d, g.lo + 1, g.hi, &d->ops[g.lo], &fe)) >= 0) {
				char why[384];
				struct ctl_rib_pfx ip;
				struct ent *x;

				/* the reason names the cover: said before the swap */
				yielded_why(r, &d->ops[g.lo], why, sizeof(why));
				swap_ops(&d->ops[g.lo], &d->ops[(uint32_t)in]);
				op_key(&d->ops[g.lo], &ip);
				settle(r, t, &d->ops[g.lo], 0, why, out);
				if ((x = find(r, &ip)) != NULL)
					yield(r, x);
				stack[sp++] = (struct range){g.lo + 1, g.hi};
				continue;
			}
			/* The rest first, then the named one alone: its cover may
			 * win once the rest is in (cover_wins). */
			if (learned_in_the_way(r, &d->ops[g.lo], &fe) && sp + 2 <= cap) {
				stack[sp++] = (struct range){g.lo, g.lo + 1};
				stack[sp++] = (struct range){g.lo + 1, g.hi};
				continue;
			}
			settle(r, t, &d->ops[g.lo], 0, fe.reason, out);
			stack[sp++] = (struct range){g.lo + 1, g.hi};
			continue;
		}
		stack[sp++] = (struct range){g.lo + (g.hi - g.lo) / 2, g.hi};
		stack[sp++] = (struct range){g.lo, g.lo + (g.hi - g.lo) / 2};
	}
	free(stack);
	return rc;
}

/* Checks of a batch's retries before anything is written ahead, at most. */
#define CHECK_TRIES 16

/* Whether @op adds a prefix refused when this comparison began (a retry). */
static int is_retry(const struct ctl_rib *r, const struct fwd_delta_op *op)
{
	struct ctl_rib_pfx p;
	const struct ent *x;

	if (op->kind != FWD_DELTA_ADD)
		return 0;
	op_key(op, &p);
	x = find(r, &p);
	return x && (x->flags & F_STOOD) && x->owned == 0;
}

/* Before anything is written ahead: the additions of prefixes refused when
 * this comparison began (retries, at a full comparison or a change of the
 * table) are checked with t->check, and those the table still refuses are
 * settled as refused and taken out of @d. A retry refused again once wrote
 * a "+" and a "-" to the record each time, and logged its refusal again.
 * The check is of the whole batch, as the apply will see it: a retry's
 * refusal may depend on the batch's other changes (a cover the batch
 * removes), and the retries checked alone once dropped a route the apply
 * would have taken, out of forwarding until the next full comparison. A
 * refused change that is not a retry is set aside for the apply, which
 * refuses it too (it is checked without it, as the apply's split leaves
 * it out); a refusal that names no change leaves the rest to the apply. */
static void check_retries(struct ctl_rib *r, const struct ctl_rib_table *t, struct fwd_delta *d,
			  struct ctl_rib_batch *out)
{
	struct fwd_delta part = *d;
	uint32_t n = 0;

	if (t->check == NULL)
		return;
	for (uint32_t i = 0; i < d->n; i++)
		n += (uint32_t)is_retry(r, &d->ops[i]);
	/* d->ops[0, part.n): checked, with n retries; [part.n, d->n): set
	 * aside for the apply. Done when no retry is left to check, or after
	 * CHECK_TRIES checks: each builds a copy of the whole table (a second
	 * at a million prefixes, under the writer's lock), and a retry left
	 * unchecked only goes to the apply, which refuses it as before (a
	 * review: MAX_APPLIES of them could take minutes). */
	for (unsigned tries = 0; tries < CHECK_TRIES && n; tries++) {
		struct fwd_err fe = {0};
		uint32_t k;
		long named;

		/* Named by its place, as apply_split numbers them. */
		for (k = 0; k < part.n; k++)
			d->ops[k].index = k;
		if (t->check(t->arg, &part, &fe) == 0 || !change_refusal(&fe))
			return;
		named = named_change(&fe);
		if (named < 0 || (uint32_t)named >= part.n)
			return;
		k = (uint32_t)named;
		/* A protected cover a learned prefix is in the way of goes to
		 * the apply, whose cover_wins() may take the way back. */
		if (is_retry(r, &d->ops[k]) && learned_in_the_way(r, &d->ops[k], &fe) == NULL) {
			settle(r, t, &d->ops[k], 0, fe.reason, out);
			n--;
			/* Out of the batch (the order of its changes means
			 * nothing to the table). */
			d->ops[k] = d->ops[--part.n];
			d->ops[part.n] = d->ops[--d->n];
		} else {
			n -= (uint32_t)is_retry(r, &d->ops[k]); /* set aside, not checked */
			swap_ops(&d->ops[k], &d->ops[--part.n]);
		}
	}
}

/* Write @d ahead, apply it (split where refused), undo what did not apply
 * in the record, and forget entries with nothing left to remember.
 * @return 0, or -1 with @e (what was not applied is back in the queue). */
static int apply_part(struct ctl_rib *r, const struct ctl_rib_table *t, struct fwd_delta *d,
		      unsigned max_applies, struct ctl_rib_batch *out, struct fwd_err *e)
{
	int rc = 0;

	/* Write-ahead: the feed owns what it adds before the table has it,
	 * so a crash in between never leaves a learned prefix that looks
	 * static. */
	for (uint32_t k = 0; t->record && k < d->n; k++)
		if (d->ops[k].kind == FWD_DELTA_ADD) {
			struct ctl_rib_pfx p;
			struct ent *x;

			op_key(&d->ops[k], &p);
			x = find(r, &p);
			/* A held prefix put back is recorded the feed's already. */
			if (x && !x->owned && t->record(t->arg, &p, r->regions[x->holder - 1], 1)) {
				rc = fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "",
						  "cannot record the feed's prefixes");
				break;
			}
		}
	if (rc == 0 && t->commit)
		rc = t->commit(t->arg, e) ? -1 : 0;
	if (rc) {
		requeue(r, d->ops, d->n);
		out->failed = 1;
		return rc;
	}
	if (apply_split(r, t, d, max_applies, out, e)) {
		out->failed = 1;
		rc = -1;
	}
	/* An addition written ahead that did not apply (refused, or the
	 * table away) is undone in the record at once: a stale "+" would
	 * make a restarted regiond take a static prefix the operator adds
	 * later for the feed's, and remove it with the route. */
	for (uint32_t k = 0; t->record && k < d->n; k++)
		if (d->ops[k].kind == FWD_DELTA_ADD) {
			struct ctl_rib_pfx p;
			struct ent *x;

			op_key(&d->ops[k], &p);
			if ((x = find(r, &p)) != NULL && x->owned == 0 && x->holder)
				t->record(t->arg, &p, r->regions[x->holder - 1], 0);
		}
	/* Entries that ended with nothing to remember go. */
	for (uint32_t k = 0; k < d->n; k++) {
		struct ctl_rib_pfx p;
		struct ent *x;

		op_key(&d->ops[k], &p);
		if ((x = find(r, &p)) != NULL)
			collect(r, x);
	}
	if (t->commit) {
		struct fwd_err ignored;

		/* The removals and undos: a lost one is repaired by the
		 * record's rewrite (ctl_owned_compact). */
		t->commit(t->arg, &ignored);
	}
	return rc;
}

int ctl_rib_reconcile(struct ctl_rib *r, const struct ctl_rib_table *t, enum ctl_rib_mode mode,
		      int full, uint32_t max_changes, struct ctl_rib_batch *out, struct fwd_err *e)
{
	struct fwd_delta d = {0};
	int ids[CTL_RIB_MAX_REGIONS], rc = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; full && i < r->cap; i++)
		if (r->slots[i].family && mark_dirty(r, &r->slots[i]))
			return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	/* A move is a removal in one round and an addition in the next. */
	for (int round = 0; round < 3 && rc == 0 && r->ndirty; round++) {
		size_t w = 0, i;
		uint32_t moves = 0;

		for (unsigned k = 0; k < r->nregions; k++)
			ids[k] = t->region_id(t->arg, r->regions[k]);
		d.n = 0;
		for (i = 0; i < r->ndirty && d.n < max_changes; i++) {
			struct ent *x = find(r, &r->dirty[i]);
			int what;

			if (x == NULL)
				continue;
			what = decide(r, t, ids, mode, x, &d, out);
			if (what < 0) {
				rc = fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
				break;
			}
			if (what == DO_MOVE) {
				r->dirty[w++] = r->dirty[i]; /* stays dirty: added next round */
				moves++;
				continue;
			}
			x->flags &= (uint8_t)~F_DIRTY;
			if (what == DO_NOTHING)
				collect(r, x);
		}
		/* The rest (past max_changes, or after an error) waits. */
		memmove(r->dirty + w, r->dirty + i, (r->ndirty - i) * sizeof(*r->dirty));
		r->ndirty = w + (r->ndirty - i);
		if (rc || d.n == 0)
			break;
		/* Fresh changes first, as a delta of their own; then the retries
		 * of prefixes refused before, checked against the table with
		 * the fresh ones in. Mixed, each refused retry cost an apply
		 * (the table names one refusal at a time) ahead of them: after a
		 * full PUT, 20,000 standing refusals held every other route
		 * back some 40 s (a probe). */
		uint32_t nfresh = 0;

		for (uint32_t k = 0; k < d.n; k++)
			if (!is_retry(r, &d.ops[k]))
				swap_ops(&d.ops[k], &d.ops[nfresh++]);
		if (nfresh) {
			struct fwd_delta fresh = {.n = nfresh, .cap = nfresh, .ops = d.ops};

			rc = apply_part(r, t, &fresh, MAX_APPLIES, out, e);
		}
		if (rc == 0 && nfresh < d.n) {
			struct fwd_delta retries = {
				.n = d.n - nfresh, .cap = d.n - nfresh, .ops = d.ops + nfresh};

			check_retries(r, t, &retries, out);
			rc = apply_part(r, t, &retries, RETRY_APPLIES, out, e);
		} else if (rc) {
			requeue(r, d.ops + nfresh, d.n - nfresh);
		}
		if (rc)
			break;
		if (d.n >= max_changes || moves == 0)
			break;
		max_changes -= d.n;
	}
	/* What is left: everything still dirty, the requeued included (each
	 * requeue once added its count here too, and "left" read double). */
	out->left += (uint32_t)r->ndirty;
	free(d.ops);
	return rc;
}

void ctl_rib_stats(const struct ctl_rib *r, struct ctl_rib_stats *s)
{
	*s = r->st;
	s->pending = r->ndirty;
}

uint64_t ctl_rib_owned_version(const struct ctl_rib *r)
{
	return r->owned_version;
}

uint64_t ctl_rib_conflict_version(const struct ctl_rib *r)
{
	return r->conflict_version;
}

uint64_t ctl_rib_shadow_version(const struct ctl_rib *r)
{
	return r->shadow_version;
}

unsigned ctl_rib_refusals(const struct ctl_rib *r, struct ctl_rib_refusal *out, unsigned max)
{
	unsigned order[CTL_RIB_MAX_REASONS], n = r->nreasons;

	/* Newest first: at most 32, ordered here rather than at each refusal. */
	for (unsigned i = 0; i < n; i++) {
		unsigned j = i;

		for (; j > 0 && r->reason_seq[order[j - 1]] < r->reason_seq[i]; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	if (n > max)
		n = max;
	for (unsigned i = 0; i < n; i++)
		out[i] = r->reasons[order[i]];
	return n;
}

unsigned ctl_rib_overflowed(const struct ctl_rib *r, struct ctl_rib_pfx *out, unsigned *region,
			    unsigned max, uint64_t *since)
{
	unsigned n = r->nover < max ? r->nover : max;

	for (unsigned i = 0; i < n; i++) {
		out[i] = r->over[i];
		region[i] = r->over_region[i];
	}
	if (since)
		*since = r->over_since;
	return n;
}

unsigned ctl_rib_conflicting(const struct ctl_rib *r, struct ctl_rib_pfx *out, uint16_t *mask,
			     unsigned *holder, uint8_t *refused, unsigned max)
{
	unsigned n = 0;

	for (size_t i = 0; i < r->cap && n < max && r->st.conflicting; i++)
		if (r->slots[i].family && __builtin_popcount(r->slots[i].mask) > 1) {
			key_of(&r->slots[i], &out[n]);
			mask[n] = r->slots[i].mask;
			refused[n] = (r->slots[i].flags & F_REFUSED) != 0;
			holder[n++] = r->slots[i].holder
					      ? r->slots[i].holder - 1u
					      : (unsigned)__builtin_ctz(r->slots[i].mask);
		}
	return n;
}

unsigned ctl_rib_shadowed(const struct ctl_rib *r, struct ctl_rib_pfx *out, unsigned *region,
			  unsigned max)
{
	unsigned n = 0;

	for (size_t i = 0; i < r->cap && n < max && r->st.shadowed; i++)
		if (r->slots[i].family && (r->slots[i].flags & F_SHADOWED) && r->slots[i].holder) {
			key_of(&r->slots[i], &out[n]);
			region[n++] = r->slots[i].holder - 1u;
		}
	return n;
}

int ctl_rib_foreach_owned(const struct ctl_rib *r,
			  int (*fn)(void *arg, const struct ctl_rib_pfx *p, const char *region),
			  void *arg)
{
	for (size_t i = 0; i < r->cap; i++) {
		struct ctl_rib_pfx p;
		int rc;

		if (r->slots[i].family == 0 || r->slots[i].owned == 0)
			continue;
		key_of(&r->slots[i], &p);
		if ((rc = fn(arg, &p, r->regions[r->slots[i].owned - 1])) != 0)
			return rc;
	}
	return 0;
}

const char *ctl_rib_pfx_str(const struct ctl_rib_pfx *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(p->family == 4 ? AF_INET : AF_INET6, p->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%u", a, p->len);
	return buf;
}

int ctl_rib_pfx_parse(const char *s, struct ctl_rib_pfx *p)
{
	char a[INET6_ADDRSTRLEN + 1], *end;
	const char *slash = strchr(s, '/');
	unsigned long len;
	unsigned bytes;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(a))
		return -EINVAL;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	memset(p, 0, sizeof(*p));
	if (inet_pton(AF_INET, a, p->addr) == 1)
		p->family = 4;
	else if (inet_pton(AF_INET6, a, p->addr) == 1)
		p->family = 6;
	else
		return -EINVAL;
	len = strtoul(slash + 1, &end, 10);
	bytes = p->family == 4 ? 4 : 16;
	if (*end || end == slash + 1 || len > bytes * 8)
		return -EINVAL;
	p->len = (uint8_t)len;
	for (unsigned b = 0; b < bytes; b++) {
		unsigned keep = len >= (b + 1) * 8 ? 8 : len > b * 8 ? (unsigned)len - b * 8 : 0;

		if (p->addr[b] & (uint8_t) ~(0xff00u >> keep))
			return -EINVAL;
	}
	return 0;
}
