/*
 * ctl_rib.h - the routing feed's learned prefixes and how they become
 * prefix deltas of the regions (docs/bgp-feed.md).
 *
 * The feed (ctl_feed.c) tells this module which prefixes the routing daemon
 * has put in which region's kernel table (learn, forget); this module keeps
 * them coalesced per prefix and, when asked, reconciles the table regiond
 * holds with them through one prefix delta (fwd_delta.h). It reconciles
 * rather than replays: it knows which prefixes it added itself (owned), and
 * compares what is wanted with what the table holds, so a change made
 * meanwhile by someone else (a full table PUT that carries only the static
 * prefixes) is repaired, never fought.
 *
 * Precedence (docs/bgp-feed.md, precedence):
 * - static wins: a prefix the table holds that the feed did not add is
 *   static; a learned prefix equal to one is not applied (shadowed);
 * - a prefix learned in two regions' tables at once belongs to the region
 *   whose table had it first (conflicting), until that one withdraws it;
 * - a change the table refuses (residency, validation) is refused alone: a
 *   refused batch is split until only the refused changes remain, each
 *   reported with its reason; the rest applies.
 *
 * Bounds: at most max_prefixes learned prefixes; beyond that a route is
 * refused and counted (overflow), never stored. Everything else this
 * module allocates is proportional to what it stores. A prefix that flaps
 * between two reconciles is one change at most.
 *
 * Not thread-safe: one caller (the feed's thread) at a time. DPDK-free,
 * unit-tested against a fake table (tests/unit/test_rib.c).
 */
#ifndef CTL_RIB_H
#define CTL_RIB_H

#include <stdint.h>

#include "fwd_delta.h"
#include "fwd_err.h"
#include "fwd_names.h"

#define CTL_RIB_MAX_REGIONS 16 /* kernel tables the feed follows: one per region */
#define CTL_RIB_MAX_REASONS 32 /* refused prefixes remembered with their reason */
#define CTL_RIB_OVER_NAMED 8 /* prefixes refused past max_prefixes, named per dump */

struct ctl_rib_pfx {
	uint8_t family; /* 4 or 6 */
	uint8_t len;
	uint8_t addr[16]; /* network order, host bits zero; IPv4 in addr[0..3] */
};

/* What the feed reconciles with: regiond's current table (ctl_feed.c) or
 * a fake one (the unit tests). Region ids are the table's; names are what
 * stays the same across table changes. */
struct ctl_rib_table {
	void *arg;
	/* The id of region @name in the table, or -ENOENT. */
	int (*region_id)(void *arg, const char *name);
	/* The id of the region that holds exactly @p, 0 when none does. */
	int (*held_by)(void *arg, const struct ctl_rib_pfx *p);
	/* Apply @d all or nothing, as ctl_state_apply_delta(): the new
	 * generation id, 0 when every change is a no-op, -1 with @e. After a
	 * successful call, region_id and held_by answer for the new table. */
	int64_t (*apply)(void *arg, const struct fwd_delta *d, struct fwd_err *e);
	/* Optional, the record of what the feed owns: write-ahead before an
	 * apply adds prefixes (owned 1), after one removed them (owned 0), then
	 * commit makes the records durable. A record or commit that fails
	 * stops the batch before anything is applied. */
	int (*record)(void *arg, const struct ctl_rib_pfx *p, const char *region, int owned);
	int (*commit)(void *arg, struct fwd_err *e);
	/* Optional: whether @d would apply now, changing nothing (0, or -1
	 * with @e as apply would fill it). Asked before the record for the
	 * additions of prefixes refused last time: a retry the table refuses
	 * again writes no "+" and "-" pair to the record, which a refused
	 * prefix once got at every full comparison (every PUT, rollback,
	 * recovery). */
	int (*check)(void *arg, const struct fwd_delta *d, struct fwd_err *e);
};

/* A refused prefix and why (the table's own words). One per prefix: refused
 * again, its entry is updated and becomes the newest, never repeated (one
 * prefix refused at every comparison once filled the list with itself). */
struct ctl_rib_refusal {
	struct ctl_rib_pfx p;
	char region[FWD_NAME_MAX];
	char reason[384]; /* as long as fwd_err's */
	int64_t when; /* unix seconds */
};

#define CTL_RIB_BATCH_NEWS 8 /* new refusals a batch names (for the log) */

/* What one reconcile did. */
struct ctl_rib_batch {
	uint32_t added, removed; /* changes that applied */
	uint32_t refused; /* changes refused this time, retries included */
	/* Of them, refusals to report: a prefix not refused before, or refused
	 * now for another reason. A refusal that stands (the same prefix, the
	 * same reason, retried at a full comparison) is not one: it was
	 * reported when it began. The first CTL_RIB_BATCH_NEWS in @news. */
	uint32_t refused_new;
	struct ctl_rib_refusal news[CTL_RIB_BATCH_NEWS];
	uint32_t applies; /* calls to apply (more than 1: a split batch or a move) */
	uint32_t left; /* changes still to make (over the batch limit, or a failed apply) */
	int64_t generation; /* the last generation made, 0 when none */
	int failed; /* the table refused for another reason than a change (@e of reconcile) */
};

/* Counters, by the region whose table holds a learned prefix. */
struct ctl_rib_stats {
	uint64_t learned; /* prefixes learned in at least one region's table */
	uint64_t learned4[CTL_RIB_MAX_REGIONS], learned6[CTL_RIB_MAX_REGIONS];
	uint64_t owned; /* prefixes the feed added to the table (and holds there) */
	uint64_t shadowed; /* learned, equal to a static prefix: not applied */
	uint64_t conflicting; /* learned in more than one region's table */
	uint64_t refused; /* learned, refused by the table (residency, validation) */
	uint64_t overflow; /* routes refused past max_prefixes, since start */
	uint64_t pending; /* prefixes changed since the last reconcile */
};

struct ctl_rib;

/** A RIB for @nregions region names (index = the feed's table index),
 *  holding at most @max_prefixes. NULL on ENOMEM or bad arguments. */
struct ctl_rib *ctl_rib_new(const char (*regions)[FWD_NAME_MAX], unsigned nregions,
			    uint64_t max_prefixes);
void ctl_rib_free(struct ctl_rib *r);

/**
 * The routing daemon put @p in region @region's table.
 * @return 1 when that changes what is wanted, 0 when not (known already),
 *         -ENOSPC when it is a new prefix past max_prefixes (counted as
 *         overflow, not stored), -ENOMEM
 */
int ctl_rib_learn(struct ctl_rib *r, const struct ctl_rib_pfx *p, unsigned region);

/** Whether @p is learned in region @region's table. */
int ctl_rib_learned_in(const struct ctl_rib *r, const struct ctl_rib_pfx *p, unsigned region);

/** The table that holds @p (learned) may hold more than one route for it:
 *  a second route message for it that replaced nothing (another metric,
 *  an appended or multipath route). Its removals are then verified by a
 *  dump (ctl_rib_forget). */
void ctl_rib_more_routes(struct ctl_rib *r, const struct ctl_rib_pfx *p);

/**
 * The routing daemon took one route for @p out of region @region's table.
 * @return 0 (forgotten, or not known), or 1 when @p may have more routes
 *         there (ctl_rib_more_routes): it stays learned, and the caller
 *         must dump the tables again to know
 */
int ctl_rib_forget(struct ctl_rib *r, const struct ctl_rib_pfx *p, unsigned region);

/** A resync begins: forget what every table holds (a dump is about to
 *  learn it again through ctl_rib_learn, then ctl_rib_relearned ends it);
 *  what the feed owns is kept, and nothing is applied meanwhile. Called
 *  again before the end (a dump tried again), it starts over. */
void ctl_rib_forget_all(struct ctl_rib *r);

/** The dump is complete: a prefix keeps the region that held it before
 *  while that region's table still has it; a prefix whose holder changed
 *  (new, gone, or moved) is marked changed, so the next reconcile applies
 *  the difference as one delta, and nothing else is retried.
 *  @return 0, or -ENOMEM (then reconcile with @full). */
int ctl_rib_relearned(struct ctl_rib *r);

/** The feed owns @p in region @region (from its record at start; -1: a
 *  later record says it does not any more): the next reconcile removes it
 *  unless it is learned again. */
int ctl_rib_own(struct ctl_rib *r, const struct ctl_rib_pfx *p, int region);

/** The region (its index) the feed added @p to, or -1 when it does not own it. */
int ctl_rib_owner(const struct ctl_rib *r, const struct ctl_rib_pfx *p);

/** At start, after the record's replay: every prefix the feed owns that
 *  table @t does not hold in that region is not the feed's (a "+" written
 *  ahead of an addition a crash kept from applying). Dropped now, before
 *  the operator can add the same prefix as a static one, and recorded so
 *  through @t->record (committed by the caller). @return how many. */
unsigned ctl_rib_disown_unheld(struct ctl_rib *r, const struct ctl_rib_table *t);

enum ctl_rib_mode {
	CTL_RIB_FOLLOW, /* the table gets the learned prefixes */
	CTL_RIB_KEEP, /* the same, but what the feed added and no longer learns stays
		       * (while a routing daemon that came back relearns its routes) */
	CTL_RIB_WITHDRAW, /* the table loses every prefix the feed owns (fail closed) */
	CTL_RIB_HOLD, /* the feed is lost: nothing learned is applied, but what the feed
		       * owns and a change of the table took out (a full PUT, which
		       * carries the static prefixes only) goes back as it was held */
};

/**
 * Bring table @t to what @mode wants: the prefixes changed since the last
 * call, or with @full every prefix (after the table changed under the feed,
 * a resync or a change of mode). At most @max_changes changes are made per
 * call (more are left for the next one: @out->left).
 * @return 0 (@out says what happened), -1 with @e when the table refused for
 *         another reason than a change (regionfwd unavailable, the disk):
 *         nothing that was not applied is lost, the next call retries
 */
int ctl_rib_reconcile(struct ctl_rib *r, const struct ctl_rib_table *t, enum ctl_rib_mode mode,
		      int full, uint32_t max_changes, struct ctl_rib_batch *out, struct fwd_err *e);

/** The counters, now. */
void ctl_rib_stats(const struct ctl_rib *r, struct ctl_rib_stats *s);

/** A number that changes whenever what the feed owns (a prefix, or its
 *  region) changes, and only then: the key of what is derived from the
 *  owned set by a walk (the commit-confirm count), so it is not walked
 *  again while nothing changed. */
uint64_t ctl_rib_owned_version(const struct ctl_rib *r);

/** A number that changes whenever what ctl_rib_conflicting answers may
 *  change (a prefix starts or stops being learned in more than one table,
 *  the tables that have one, its holder or its refusal change), and only
 *  then. */
uint64_t ctl_rib_conflict_version(const struct ctl_rib *r);

/** The last refusals, newest first; @return how many (<= CTL_RIB_MAX_REASONS). */
unsigned ctl_rib_refusals(const struct ctl_rib *r, struct ctl_rib_refusal *out, unsigned max);

/** The first prefixes refused past max_prefixes since the last dump began
 *  (ctl_rib_forget_all), with the region (its index) whose table had them,
 *  at most CTL_RIB_OVER_NAMED; @return how many; *@since, when not NULL,
 *  how many were refused since then in all (each route message counts). */
unsigned ctl_rib_overflowed(const struct ctl_rib *r, struct ctl_rib_pfx *out, unsigned *region,
			    unsigned max, uint64_t *since);

/** Up to @max prefixes learned in more than one region's table: each with
 *  the regions' tables that have it (@mask: bit = region index), the one
 *  that holds it (@holder: region index) and whether regiond's table
 *  refused it there (@refused: 1; the holder's route is then in no
 *  table). @return how many. Walks the whole RIB: for status, not per
 *  route, and again only when ctl_rib_conflict_version changed. */
unsigned ctl_rib_conflicting(const struct ctl_rib *r, struct ctl_rib_pfx *out, uint16_t *mask,
			     unsigned *holder, uint8_t *refused, unsigned max);

/** A number that changes whenever what ctl_rib_shadowed answers may
 *  change (a prefix starts or stops being shadowed, a shadowed one's
 *  holder changes or it goes). A comparison with the table also moves it
 *  for a prefix that stays shadowed (its flag is cleared, then set again):
 *  those come with a change of the table or a batch, not four times a
 *  second, so a listing keyed on it is not walked for more often. */
uint64_t ctl_rib_shadow_version(const struct ctl_rib *r);

/** Up to @max shadowed prefixes with the region that learned them (its
 *  index); @return how many. Walks the whole RIB: for status, not per
 *  route, and again only when ctl_rib_shadow_version changed. */
unsigned ctl_rib_shadowed(const struct ctl_rib *r, struct ctl_rib_pfx *out, unsigned *region,
			  unsigned max);

/** Call @fn for every prefix the feed owns (compacting its record). */
int ctl_rib_foreach_owned(const struct ctl_rib *r,
			  int (*fn)(void *arg, const struct ctl_rib_pfx *p, const char *region),
			  void *arg);

/** "10.1.0.0/16" or "2001:db8::/32" into @buf. */
const char *ctl_rib_pfx_str(const struct ctl_rib_pfx *p, char *buf, size_t len);

/** Parse "ADDRESS/LEN" (host bits must be zero). @return 0 or -EINVAL. */
int ctl_rib_pfx_parse(const char *s, struct ctl_rib_pfx *p);

#endif /* CTL_RIB_H */
