/*
 * ctl_fleet.h - the fleet node agent: a thread of regiond (with --fleet-*)
 * that makes this box run its facility's table from etcd (docs/fleet.md).
 *
 * Target: the node's pin (/regionfwd/v1/fac/F/pins/N) when there is one,
 * else the facility's desired table (/regionfwd/v1/fac/F/desired). The
 * agent reads both at one revision, then follows them with two watches
 * from that revision + 1 (ctl_etcd.h: none missed, none replayed; after a
 * compaction or a lost session it reads again at a fresh revision; every
 * third of the lease a read of both keys catches a stream stuck on a member
 * that hangs). A new
 * target is fetched (manifest, then its chunks at the manifest's revision,
 * length and hash checked) and applied through ctl_state_apply(), the
 * same validation, residency check, write-ahead and push as a local PUT,
 * author "fleet". A refused target (invalid document, residency, facility
 * mismatch, future schema, hash mismatch) changes nothing: the node keeps
 * running what it ran and reports state "failed" with the reason, and
 * tries that target again only when its key changes. A failure that may
 * pass (etcd or regionfwd unreachable) is retried.
 *
 * The node's report (/regionfwd/v1/fac/F/nodes/N, JSON schema 1) is put on
 * a lease of conf.lease_s (kept alive at a third of it), rewritten when
 * anything in it changes and every conf.report_ms for the counters; when
 * the node dies its lease expires and the key goes. A node that could not
 * reach etcd for longer than its lease is "stale" from then on until it
 * has read its target at a fresh revision and converged; it goes on
 * forwarding on its last good generation meanwhile.
 *
 * With conf.validate_only there is no regionfwd: a target is fetched and
 * validated completely (ctl_state_validate: residency and content rules
 * included), never applied; the report's state is "validate_only" (or
 * "failed"). It is the scale-test mode (docs/fleet.md).
 *
 * Locking: the thread takes the state lock only to apply or validate and
 * to copy what it reports; etcd calls are made without it, so a hung etcd
 * never blocks the local API. The view (ctl_fleet_view) is under the
 * agent's own mutex, never held across an etcd call.
 */
#ifndef CTL_FLEET_H
#define CTL_FLEET_H

#include <jansson.h>

#include "ctl_ext.h"
#include "ctl_state.h"
#include "fwd_err.h"

#define CTL_FLEET_MAX_LABELS 16

struct ctl_fleet_conf {
	const char *endpoints; /* --fleet-endpoints */
	const char *node; /* [a-z0-9-]{1,64} */
	const char *facility; /* [a-z0-9-]{1,32} */
	const char *labels[CTL_FLEET_MAX_LABELS]; /* "k=v" */
	unsigned nlabels;
	const char *ca_file, *cert_file, *key_file;
	const char *user, *password; /* the password's text, not its file */
	unsigned lease_s; /* 2..3600 */
	unsigned report_ms; /* 100..600000 */
	unsigned etcd_timeout_ms; /* per etcd call; 0: 2000 */
	/* Still applying one target this long raises the fleet alarm;
	 * 0: CTL_ROLLOUT_SYNC_TIMEOUT_MAX (an hour). */
	unsigned stuck_after_s;
	int validate_only;
	const char *version; /* regiond's, for the report */
};

struct ctl_fleet;

/**
 * Check @conf (names, labels, endpoints) without starting anything.
 * @return 0, or -EINVAL with @e naming the option.
 */
int ctl_fleet_conf_check(const struct ctl_fleet_conf *conf, struct fwd_err *e);

/**
 * Start the agent's thread on @st (whose lock is set). Nothing is asked of
 * etcd before the thread runs: an unreachable etcd is not a start failure.
 * @return the agent, or NULL with @e.
 */
struct ctl_fleet *ctl_fleet_start(const struct ctl_fleet_conf *conf, struct ctl_state *st,
				  struct fwd_err *e);

/** Stop the thread (within about a second plus one etcd timeout), revoke
 *  the node's lease when etcd answers, free (NULL-safe). */
void ctl_fleet_free(struct ctl_fleet *f);

/** GET /v1/fleet: the node's own view (connected, endpoint, revision,
 *  target, state, running, last error, the report last written). Takes the
 *  agent's mutex only. NULL on ENOMEM. */
json_t *ctl_fleet_view(struct ctl_fleet *f);

/** The extension: "fleet" in GET /v1/status and its /metrics series. */
struct ctl_ext ctl_fleet_ext(struct ctl_fleet *f);

#endif /* CTL_FLEET_H */
