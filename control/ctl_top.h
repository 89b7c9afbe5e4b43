/*
 * ctl_top.h - `regionctl top`: a live view of the box, refreshed every
 * interval: totals and rates per link, region, service, policy and drop
 * reason, the generation and its age, the box's health, and the ports.
 *
 * Every frame is built from two reads of the counter report (rates from
 * fwd_report_rates, the same as `counters --rate`) and one of the status
 * model, through the caller's fetch functions (regionctl's API client), so
 * top shows nothing the API does not serve. Three renderings of the same
 * frame: ncurses on a terminal (keys to sort, filter, hide sections), plain
 * text frames when stdout is not a terminal, one JSON object a line (-j).
 */
#ifndef CTL_TOP_H
#define CTL_TOP_H

#include <jansson.h>

#include "fwd_report.h"

enum ctl_top_sort { CTL_TOP_BY_RATE, CTL_TOP_BY_TOTAL, CTL_TOP_BY_NAME, CTL_TOP_NSORTS };

/** The sorts' names by enum ctl_top_sort: --sort's values. */
extern const char *const ctl_top_sorts[CTL_TOP_NSORTS];

struct ctl_top_conf {
	double interval; /* seconds between frames, 0.1..3600 */
	long count; /* frames to show, 0: until stopped (q, SIGINT) */
	enum ctl_top_sort sort;
	const char *filter; /* only rows whose name contains it; NULL: all */
	int json; /* JSON lines */
	int curses; /* a terminal: ncurses; else plain text frames */
};

struct ctl_top_source {
	void *arg;
	/* @return 0, or the exit code the caller said why for */
	int (*counters)(void *arg, struct fwd_report **out);
	int (*status)(void *arg, json_t **out);
};

/** Run until @conf->count frames were shown, q was pressed or SIGINT came.
 *  @return 0, or the exit code of a failed fetch */
int ctl_top_run(const struct ctl_top_conf *conf, const struct ctl_top_source *src);

/** @v in columns, "12.3M" style (k, M, G, T, P): rates and totals, here
 *  and in regionctl's --rate columns. @return @buf */
const char *ctl_top_si(double v, char *buf, size_t len);

/** CLOCK_MONOTONIC in seconds: the windows rates are measured over. */
double ctl_top_mono_s(void);

/** The sort named @name ("rate", "total", "name"), or -1. */
int ctl_top_sort_of(const char *name);

#endif /* CTL_TOP_H */
