/*
 * ctl_metrics.h - GET /metrics: regiond's and regionfwd's counters in the
 * Prometheus text exposition format (version 0.0.4). Pure rendering: the
 * caller fetches regionfwd's counter report and regiond's health verdict;
 * a missing report still renders everything regiond knows on its own
 * (generation and its age, sync, alarm, confirm, health, the age of
 * regionfwd's last answer, its extensions' series such as the XDP filter's),
 * with regiond_dataplane_up 0: regionfwd down is itself a metric.
 *
 * Naming follows Prometheus's conventions (docs/monitoring.md lists every
 * family): base units in the name (_seconds, _bytes), counters end in
 * _total, an enumeration is one 0/1 series per state.
 */
#ifndef CTL_METRICS_H
#define CTL_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "ctl_state.h"
#include "fwd_report.h"

struct ctl_metrics_in {
	const struct ctl_state *st;
	const struct fwd_report *r; /* regionfwd's counter report; NULL: it did not answer */
	int64_t report_age_ms; /* of regionfwd's last answer to regiond's main loop; < 0: none */
	int health; /* the status's verdict: 0 healthy, 1 degraded, 2 unreachable */
	int64_t started; /* regiond's start, unix seconds */
	/* requests refused for their credentials since the start: none or
	 * no valid one (401), one that may not do what was asked (403) */
	uint64_t refused_401, refused_403;
};

/** The exposition text (malloc'd), with the state lock held (the
 *  extensions' metrics run under it). NULL on ENOMEM. */
char *ctl_metrics_render(const struct ctl_metrics_in *in);

/* For extensions that render their own families (ctl_ext.h, metrics). */

/** "# HELP" and "# TYPE" of family @name (@type: "counter", "gauge"). */
void ctl_metrics_family(FILE *f, const char *name, const char *help, const char *type);

/** One sample of @name with value @v and labels given as (name, value)
 *  string pairs, ended by NULL; values are escaped. */
void ctl_metrics_sample(FILE *f, const char *name, double v, ...) __attribute__((sentinel));

#endif /* CTL_METRICS_H */
