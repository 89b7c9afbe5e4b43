/*
 * ctl_rollout_driver.h - the thread of a fleet-mode regiond that drives its
 * facility's rollouts (docs/fleet.md, "Rollouts and gates").
 *
 * Every fleet regiond runs one; the one holding rollout/leader (a key on
 * its own lease, created by a transaction comparing create_revision with 0)
 * drives, the others wait for that lease to expire and take over. The
 * leader polls rollout/active and the nodes/ reports, keeps each node's
 * previous report for rates, runs ctl_rollout_step() and commits what it
 * returns in one transaction that compares the record's mod_revision and
 * the leader key's create_revision and lease. So the driver holds no state a
 * successor needs: it resumes from rollout/active.
 *
 * A driver that cannot reach etcd is paused: it writes nothing it has not
 * just read a fresh record for, so it never promotes or reverts blind; a
 * leader whose lease lapsed stops driving before another may start.
 *
 * The leader also looks at the facility's pins every few seconds: one no
 * active rollout owns is logged and counted (status "stray_pins"), and one
 * of a finished rollout is deleted after conf.unpin_after_s, by
 * ctl_rstore_unpin() with the leader key compared.
 */
#ifndef CTL_ROLLOUT_DRIVER_H
#define CTL_ROLLOUT_DRIVER_H

#include <jansson.h>

#include "ctl_etcd.h"
#include "ctl_ext.h"
#include "fwd_err.h"

struct ctl_rdriver;

struct ctl_rdriver_conf {
	struct ctl_etcd_conf etcd; /* strings kept by the caller while it runs */
	const char *facility;
	const char *node; /* this regiond's node name, written in the leader key */
	unsigned lease_s; /* the leader key's lease; 0: 10 */
	unsigned poll_ms; /* how often the leader reads the facility; 0: 500 */
	/* A pin that names a rollout of the history (it finished without
	 * deleting it) is deleted by the leader once it has seen it for this
	 * long; 0: never (such pins are only reported). Other stray pins (an
	 * operator's, "rollout": null, or an unknown rollout's) are reported
	 * only (docs/fleet.md, "Pins nobody owns"). */
	unsigned unpin_after_s;
	/* The nodes' report interval (--fleet-report-ms; 0: 2000), for the
	 * API's age of the reports: one older than
	 * ctl_rdriver_report_stale_ms() of it is said to be stale. */
	unsigned report_ms;
};

/** How old a node's report may be before GET /v1/fleet/nodes and
 *  regionctl fleet status call it stale: three report intervals, at least
 *  10 s (docs/fleet.md, "Node behaviour"). */
static inline uint64_t ctl_rdriver_report_stale_ms(unsigned report_ms)
{
	uint64_t ms = 3ull * (report_ms ? report_ms : 2000);

	return ms > 10000 ? ms : 10000;
}

/**
 * Start the driver thread.
 * @return the handle, or NULL with @err (an invalid etcd configuration).
 */
struct ctl_rdriver *ctl_rdriver_start(const struct ctl_rdriver_conf *conf, struct fwd_err *err);

/** Stop the thread (idempotent; NULL-safe; from the thread that owns the
 *  driver): it ends the pass it is in, and a leader revokes its lease so
 *  another takes over at once. The status stays readable until
 *  ctl_rdriver_free(), with all the thread did ("leader" then says whether
 *  it led at its last pass). */
void ctl_rdriver_stop(struct ctl_rdriver *d);

/** Stop the thread and free the driver (NULL-safe). */
void ctl_rdriver_free(struct ctl_rdriver *d);

/** What the driver does now: {"leader", "leader_node", "paused",
 *  "last_error", "steps", "commits", "rollout", "state", "stray_pins",
 *  "pins_truncated" (more pins than it reads), "unpinned"}. NULL on ENOMEM. */
json_t *ctl_rdriver_status(struct ctl_rdriver *d);

/** The rollouts' clock, ms since the epoch (fwd_steady_ms: a clock step
 *  after regiond's start does not move it): the times a rollout record is
 *  created with, so that its leader reads them on the same clock. */
int64_t ctl_rdriver_now_ms(const struct ctl_rdriver *d);

/** The extension "rollouts": its status (the above) and its /metrics
 *  series (regiond_fleet_rollout_*), each under the driver's own mutex. */
struct ctl_ext ctl_rdriver_ext(struct ctl_rdriver *d);

#endif /* CTL_ROLLOUT_DRIVER_H */
