/*
 * ctl_owned.h - the record of the prefixes the routing feed added to the
 * table (docs/bgp-feed.md, restarts), in regiond's state directory.
 *
 * The table itself does not say which of its prefixes came from the feed;
 * without a record, a regiond restarted while the feed was down would take
 * the feed's prefixes for static ones and keep them for ever (fail open).
 * So the feed writes ahead: "+ PREFIX REGION" before an addition is
 * applied, "- PREFIX REGION" after a removal applied, each batch made
 * durable (fdatasync) before the table changes. The opposite (a prefix the
 * feed added without a record) never happens. A "+" for an addition that
 * did not apply (refused, or the table away) is undone ("-") right after:
 * left there, it would make a restarted regiond take a static prefix the
 * operator adds later for the feed's, and withdraw it with the route.
 *
 * The file, feed-owned in the state directory, is appended to and
 * rewritten whole (atomically) when it has grown past twice what it
 * describes, or after a commit failed (it may then hold records that never
 * took effect). A last line cut short by a crash is ignored; any other line
 * that does not parse stops regiond with the file and line (a state
 * directory regiond did not write is not guessed at).
 */
#ifndef CTL_OWNED_H
#define CTL_OWNED_H

#include "ctl_rib.h"
#include "fwd_err.h"

struct ctl_owned;

/**
 * Open (create when missing) @dir/feed-owned and replay it through @fn,
 * record by record in order (@owned 1 for "+", 0 for "-").
 * A file that can be read but not written (a read-only or full state
 * directory) still opens: commits are refused (their batches not applied)
 * until ctl_owned_compact() has written it whole.
 * @return the handle, or NULL with @e (FWD_R_STATE_CORRUPT naming the line,
 *         FWD_R_STATE_DIR when it cannot be read)
 */
struct ctl_owned *ctl_owned_open(const char *dir,
				 int (*fn)(void *arg, const struct ctl_rib_pfx *p,
					   const char *region, int owned),
				 void *arg, struct fwd_err *e);
void ctl_owned_close(struct ctl_owned *o);

/** Queue one record (in memory until commit). @return 0 or -ENOMEM. */
int ctl_owned_record(struct ctl_owned *o, const struct ctl_rib_pfx *p, const char *region,
		     int owned);

/** Append what is queued and fdatasync it. @return 0 or -errno with @e. */
int ctl_owned_commit(struct ctl_owned *o, struct fwd_err *e);

/**
 * Rewrite the file from @r's owned prefixes when it has grown past twice
 * their number (plus slack) or a commit failed since; else nothing. A
 * failed rewrite is tried again 1 s later, then 2, 4, ... up to 5 min
 * (@now_ms, monotonic), not at every call.
 * @return 0 (rewritten, or not due); 1 rewritten after failures; or
 *         -errno with @e, which says when it is tried again
 */
int ctl_owned_compact(struct ctl_owned *o, const struct ctl_rib *r, uint64_t owned, int64_t now_ms,
		      struct fwd_err *e);

/** Why the last rewrite failed ("PATH: cannot rewrite: ..."), or NULL once
 *  one succeeds: the feed's alarm while the record cannot be written. */
const char *ctl_owned_trouble(const struct ctl_owned *o);

#endif /* CTL_OWNED_H */
