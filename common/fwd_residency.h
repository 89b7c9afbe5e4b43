/*
 * fwd_residency.h - refuse tables that would send a region's protected
 * traffic out of region.
 *
 * A residency rule says: traffic of region R for services S may leave only
 * on links tagged with one of T. The check walks the compiled policy matrix,
 * so it sees exactly what the fast path would do, precedence included: for
 * every (R, s) cell of every rule, the effective policy's link, every member
 * of its group that can carry traffic (weight > 0, up or down: a down link
 * may come back up), and its mirror link must carry an allowed tag. Because
 * every member of such a group is allowed, failover inside the group can
 * only pick allowed links; when none is up the packets are dropped
 * (no_link_up): fail closed.
 */
#ifndef FWD_RESIDENCY_H
#define FWD_RESIDENCY_H

#include "fwd_class.h"
#include "fwd_err.h"
#include "fwd_table.h"

/**
 * @param c  the table's compiled classifier (fwd_class_build(t))
 * @return 0 when every rule holds, -EPERM with @err naming the rule, the
 *         policy (its path and line) and the link that breaks it
 */
int fwd_residency_check(const struct fwd_table *t, const struct fwd_class *c, struct fwd_err *err);

#endif /* FWD_RESIDENCY_H */
