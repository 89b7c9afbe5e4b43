/*
 * ctl_model.h - a validated table as JSON, and what changes between two.
 *
 * The model is itself a valid table document (normalized: prefixes sorted,
 * "any/53" written as tcp/udp/sctp, defaults spelled out), so regiond can
 * edit it (PATCH) and validate the result like any document.
 */
#ifndef CTL_MODEL_H
#define CTL_MODEL_H

#include <jansson.h>

#include "fwd_table.h"

/** @return the model (new reference), or NULL on allocation failure */
json_t *ctl_model(const struct fwd_table *t);

/** A model as the document text of a generation made from it (a PATCH,
 *  a delta's checkpoint, the table a delta led to): compact JSON on one
 *  line, ending in a newline as a saved file does (`regionctl show table`
 *  once left the shell's prompt on its line). Allocated; NULL on
 *  allocation failure. @len its length. */
char *ctl_model_dump(const json_t *m, size_t *len);

/**
 * What differs between two tables: for regions, services, links, link_groups
 * and policies, the names added, removed and changed (regions with the
 * prefixes added and removed), and the default if it changed.
 */
json_t *ctl_diff(const struct fwd_table *old, const struct fwd_table *new);

/**
 * The (region, service) pairs whose outcome changes: steer target (link or
 * group), drop, or absent, before and after. At most @limit entries
 * ("truncated": true beyond).
 */
json_t *ctl_impact(const struct fwd_table *old, const struct fwd_table *new, size_t limit);

struct fwd_class;

/** What table @t (classified as @c) does with (region, service) by names:
 *  "link X", "link X (down)", "group G", "group G (no member up)" (every
 *  member that takes flows down or drained), "drop", or "absent" when
 *  either name does not exist. */
void ctl_outcome(const struct fwd_table *t, const struct fwd_class *c, const char *region,
		 const char *service, char *buf, size_t len);

#endif /* CTL_MODEL_H */
