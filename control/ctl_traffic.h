/*
 * ctl_traffic.h - what a table change would do to traffic: the impact
 * preview of validate/diff (docs/api.md, POST /v1/validate) told in
 * addresses, packets and bytes, not only in (region, service) pairs.
 *
 * The last minute of traffic: regiond's main loop adds regionfwd's counter
 * report every CTL_TRAFFIC_EVERY_MS; the window is the rates between the
 * newest sample and the oldest no older than a minute and a bit
 * (fwd_report_rates). Everything here runs under regiond's state lock.
 *
 * What is exact and what is a bound is said in the output: the counters
 * are per policy, region and service, not per (region, service) cell nor
 * per prefix, so the traffic of a changed cell is exact when its policy
 * governs only changed cells, and "at most" otherwise.
 */
#ifndef CTL_TRAFFIC_H
#define CTL_TRAFFIC_H

#include <stdint.h>

#include <jansson.h>

#include "fwd_report.h"
#include "fwd_table.h"

#define CTL_TRAFFIC_EVERY_MS 10000

struct ctl_traffic;

struct ctl_traffic *ctl_traffic_new(void);
void ctl_traffic_free(struct ctl_traffic *tr);

/** Add a sample taken at @now_ms (CLOCK_MONOTONIC); @r is taken over. */
void ctl_traffic_add(struct ctl_traffic *tr, struct fwd_report *r, int64_t now_ms);

/** Whether a sample is due at @now_ms. */
int ctl_traffic_due(const struct ctl_traffic *tr, int64_t now_ms);

/** The rates over the last minute (fwd_report_rates, with "interval_s"),
 *  or NULL with fewer than two samples in it. New reference. */
json_t *ctl_traffic_window(const struct ctl_traffic *tr, int64_t now_ms);

/**
 * Which region's address space moves to which region between @old and
 * @new: every prefix added to a region, by the region that held its
 * address space in @old (its longest covering prefix there, else
 * 'unknown'), and every prefix removed from one, by the region that holds
 * it in @new. JSON array of {"from", "to", "prefixes", "ipv4_addresses",
 * "ipv6_addresses"} (IPv6 as a number, possibly 2^64 and more), and
 * "residency" where the move hands users of a region @new protects to one
 * that would take their protected traffic out (as ctl_traffic_handovers
 * says), or with more than @limit changed prefixes or 256 (from, to)
 * pairs (or no memory to count them) an array of one {"truncated": true}.
 */
json_t *ctl_traffic_moves(const struct fwd_table *old, const struct fwd_table *new, size_t limit);

struct ctl_rib_pfx;
struct fwd_delta;

/**
 * The users of regions @new protects that @old to @new hands to a region
 * whose policies (or content rules) would take their protected traffic out
 * (fwd_residency_handover): each prefix of such a region in @old that @new
 * does not hold in it, by the regions of the prefixes @new has inside it
 * (the same one in another region, or more specific ones) and of its
 * longest cover in @new ('unknown' without one) for what they leave. Regions
 * are matched by name: one renamed is another, its rules with it. A prefix
 * @given_back (may be NULL) says will come back (the BGP feed's, which a
 * PUT of the static prefixes leaves out and the feed adds again) is not
 * counted. JSON array of {"from", "to", "prefixes", "ipv4_addresses",
 * "ipv6_addresses", "residency"} per pair, [{"truncated": true}] out of
 * memory; NULL when none, @old is NULL or @new has no residency rule. One
 * walk of both tables side by side (they are sorted), and binary searches
 * for the prefixes handed on only. New reference.
 */
json_t *ctl_traffic_handovers(const struct fwd_table *old, const struct fwd_table *new,
			      int (*given_back)(void *arg, const struct ctl_rib_pfx *p,
						const char *region),
			      void *arg);

/**
 * The residency rules @old has that @new drops or weakens, by the rule's
 * name: removed, moved to another region, services it no longer protects,
 * or tags it allows now. A table is its own rules: one without them passes
 * every check, so a desired table in etcd that left its residency section
 * out was applied without a word (a hostile probe). Said, not refused, as
 * the handovers are. JSON array of {"rule", "region", "change"}; NULL
 * when none or @old is NULL. New reference.
 */
json_t *ctl_residency_weakened(const struct fwd_table *old, const struct fwd_table *new);

/**
 * The links of both tables whose admin state (up, down, drain) @new
 * changes. The state is a field of the table, so a whole-table write (an
 * apply, a rollback, a fleet's desired table) brought a link an operator
 * took down for maintenance back up without a word (a probe). Said, not
 * refused. JSON array of {"link", "from", "to"}; NULL when none or @old
 * is NULL. New reference.
 */
json_t *ctl_link_states_changed(const struct fwd_table *old, const struct fwd_table *new);

/** The same for a delta @d (its effective changes) that made @new: only
 *  its removals from protected regions are looked at. */
json_t *ctl_traffic_handovers_delta(const struct fwd_table *new, const struct fwd_delta *d);

/**
 * Add traffic to an impact (ctl_impact, with ctl_traffic_moves as
 * "moves") and a diff (ctl_diff) from the rates @window (NULL: regionfwd's
 * counters are not known yet; then "traffic" says so): per changed cell the
 * packets of its policy in the window, per move its source region's, per
 * changed content rule its matches and its services' traffic, and per
 * filter rule what @filter_status (the XDP filter's, may be NULL) counted;
 * then "traffic": the window, totals and the share that would change link.
 */
void ctl_traffic_annotate(json_t *impact, const json_t *diff, const struct fwd_table *old,
			  const struct fwd_table *new, const json_t *window,
			  const json_t *filter_status);

#endif /* CTL_TRAFFIC_H */
