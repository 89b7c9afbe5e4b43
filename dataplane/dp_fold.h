/*
 * dp_fold.h - a generation's counters, kept per worker, summed and added by
 * name into a typed counter report (fwd_report.h).
 *
 * The report's rows are keyed by name (region, service, "region/service"
 * policy, link, content rule), not by a generation's indexes, so counters of
 * successive generations add up across reloads: a region that exists in both
 * keeps counting, one that is gone keeps its last total. Only the control
 * thread and report readers call this, under the context's lock; workers
 * never wait for it (they update their counters with relaxed atomics).
 */
#ifndef DP_FOLD_H
#define DP_FOLD_H

#include "dp_gen.h"
#include "fwd_report.h"

/** Add @g's counters into @acc's rows. @return 0 or -ENOMEM (@acc then holds
 *  part of them: callers fold into a copy when that matters). */
int dp_fold_gen(struct fwd_report *acc, const struct dp_gen *g);

#endif /* DP_FOLD_H */
