/*
 * ctl_feed.h - region prefixes learned from a routing daemon (issue 19,
 * docs/bgp-feed.md).
 *
 * A routing daemon (BIRD 2, FRR) speaks BGP, maps communities to regions in
 * its filters and exports each region's routes into a kernel routing table
 * of its own (--feed-table india=101). The feed follows those tables over
 * netlink (a dump, then RTM_NEWROUTE/RTM_DELROUTE), keeps what they hold in
 * its RIB (ctl_rib.h) and, every batch interval, brings regiond's table to
 * it through one prefix delta (ctl_state_apply_delta). Static prefixes win.
 *
 * The feed is lost when the netlink socket fails, or, with --feed-bird-socket,
 * when BIRD does not answer or a BGP session is not established. Then it
 * holds: nothing it added is withdrawn for --feed-hold seconds (a routing
 * daemon withdraws a lost session's routes from the kernel at once; regiond
 * does not follow that). Back within the hold, it resyncs with a fresh dump
 * and reconciles; past the hold it withdraws everything it added (fail
 * closed) with an alarm, until the feed is back.
 *
 * Threads: the feed runs its own thread. It changes regiond's state only
 * as a write (ctl_state_write_begin/end), so it never blocks reads; its
 * status is a snapshot the thread refreshes, read through the "feed"
 * extension (ctl_ext.h) in GET /v1/status, GET /v1/feed and /metrics.
 */
#ifndef CTL_FEED_H
#define CTL_FEED_H

#include <stdint.h>

#include "ctl_ext.h"
#include "ctl_rib.h"
#include "ctl_state.h"
#include "fwd_err.h"

struct ctl_feed_conf {
	unsigned ntables;
	char region[CTL_RIB_MAX_REGIONS][FWD_NAME_MAX]; /* --feed-table REGION=TABLE */
	uint32_t table[CTL_RIB_MAX_REGIONS];
	unsigned hold_s; /* --feed-hold */
	unsigned batch_ms; /* --feed-batch-ms */
	uint64_t max_prefixes; /* --feed-max-prefixes */
	const char *bird_socket; /* --feed-bird-socket, NULL: no session state */
	const char *state_dir; /* where feed-owned is kept (ctl_owned.h) */
};

struct ctl_feed;

/**
 * Parse one --feed-table argument "REGION=TABLE" into @c (appended).
 * @return 0, or -EINVAL with @e (a bad name, a table out of 1..2^32-1 or a
 *         reserved one: 253 default, 254 main, 255 local; a region or table
 *         given twice; too many)
 */
int ctl_feed_conf_table(struct ctl_feed_conf *c, const char *arg, struct fwd_err *e);

/**
 * Start following the kernel tables of @c for @st: the record of owned
 * prefixes is read, the netlink socket opened, the thread started (the
 * first dump and reconcile run there). @st->lock must be set.
 * @return the feed, or NULL with @e (a corrupt record, no netlink socket)
 */
struct ctl_feed *ctl_feed_start(const struct ctl_feed_conf *c, struct ctl_state *st,
				struct fwd_err *e);

/** Stop the feed's thread (idempotent; NULL-safe): no write of the state
 *  comes from it after this returns. Its memory, which the state's
 *  extension list still points to, stays until ctl_feed_free(). */
void ctl_feed_stop(struct ctl_feed *f);

/** Stop the thread and free the feed (NULL-safe). What it added stays in
 *  the table and in its record: a restart takes it over. Call without the
 *  state lock. */
void ctl_feed_free(struct ctl_feed *f);

/** The "feed" extension: status (GET /v1/feed; summary in /v1/status) and
 *  metrics. */
struct ctl_ext ctl_feed_ext(struct ctl_feed *f);

#endif /* CTL_FEED_H */
