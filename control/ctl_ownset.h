/*
 * ctl_ownset.h - which prefixes of a generation's table the routing feed
 * had added (docs/bgp-feed.md, rollback): a set of prefixes, each with the
 * region the feed added it to.
 *
 * regiond's state keeps one with each generation that needs it written
 * out (gen-N.owned: a document, a checkpoint), and derives the others
 * along the delta chain (ctl_state_owned), so that a rollback to a
 * generation knows which of its prefixes were the feed's then, not only
 * which the feed owns now. The text form is one "PREFIX REGION" line per
 * prefix, the lines of feed-owned without their sign.
 *
 * Bounds: proportional to what it holds (the feed's prefixes, at most its
 * --feed-max-prefixes, of a table that holds them all). Not thread-safe.
 */
#ifndef CTL_OWNSET_H
#define CTL_OWNSET_H

#include <stddef.h>

#include "ctl_rib.h"
#include "fwd_err.h"
#include "fwd_table.h"

struct ctl_ownset;

struct ctl_ownset *ctl_ownset_new(void);
void ctl_ownset_free(struct ctl_ownset *s);

/** @p is the feed's in @region (replacing what it was). 0 or -ENOMEM. */
int ctl_ownset_put(struct ctl_ownset *s, const struct ctl_rib_pfx *p, const char *region);

/** @p is not the feed's. */
void ctl_ownset_del(struct ctl_ownset *s, const struct ctl_rib_pfx *p);

/** The region the feed added @p to, or NULL. */
const char *ctl_ownset_get(const struct ctl_ownset *s, const struct ctl_rib_pfx *p);

size_t ctl_ownset_count(const struct ctl_ownset *s);

/** Call @fn for every prefix; a nonzero return stops the walk and is returned. */
int ctl_ownset_foreach(const struct ctl_ownset *s,
		       int (*fn)(void *arg, const struct ctl_rib_pfx *p, const char *region),
		       void *arg);

/** Drop every prefix table @t does not hold in the same region. */
void ctl_ownset_keep_held(struct ctl_ownset *s, const struct fwd_table *t);

/** The region id of the region of @t that holds exactly @p, 0 when none. */
int ctl_ownset_held_by(const struct fwd_table *t, const struct ctl_rib_pfx *p);

/** The text form (malloc'd, "" for an empty set), or NULL out of memory. */
char *ctl_ownset_text(const struct ctl_ownset *s, size_t *len);

/** Add the prefixes of text @buf (the text form). 0, or -EINVAL with @e
 *  naming the line (@name: the file), -ENOMEM. */
int ctl_ownset_parse(struct ctl_ownset *s, const char *buf, size_t len, const char *name,
		     struct fwd_err *e);

#endif /* CTL_OWNSET_H */
