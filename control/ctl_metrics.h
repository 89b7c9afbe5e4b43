/*
 * ctl_metrics.h - GET /metrics: regiond's and regionfwd's counters in the
 * Prometheus text exposition format (version 0.0.4). Pure rendering: the
 * caller fetches regionfwd's counter report; a missing report still renders
 * regiond's own series (regionfwd down is itself a metric).
 */
#ifndef CTL_METRICS_H
#define CTL_METRICS_H

#include "ctl_state.h"
#include "fwd_report.h"

/** The exposition text (malloc'd), from @st and regionfwd's counter
 *  report @r (NULL when regionfwd did not answer). NULL on ENOMEM. */
char *ctl_metrics_render(const struct ctl_state *st, const struct fwd_report *r);

#endif /* CTL_METRICS_H */
