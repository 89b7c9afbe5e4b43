/*
 * ctl_rollout_store.h - a facility's rollout keys in etcd (docs/fleet.md,
 * "Key layout"): creating a rollout (table chunks, manifest, rollout/active),
 * reading it, asking it to abort, committing a driver's step, its history
 * and the fleet view of the nodes/ reports. The API and the rollout driver
 * both go through here, so every write of a rollout has one shape.
 *
 * Invariants:
 * - rollout/active is created by a transaction that compares its
 *   create_revision with 0, and every later write compares its mod_revision:
 *   two writers cannot both win; the loser changes nothing.
 * - A table of up to CTL_RSTORE_ONE_TXN bytes goes in the same transaction
 *   as rollout/active, so a rollout refused by that compare writes nothing
 *   at all. A larger one is written first (chunks, then its manifest, both
 *   immutable and named by the content's hash, so an orphan is harmless and
 *   reused by the next rollout of the same table).
 * - Every value read is parsed as hostile input (ctl_rollout.h).
 *
 * Errors: 0 or a count, else a negative errno with @err: the etcd client's
 * reasons, FWD_R_ROLLOUT_IN_PROGRESS, FWD_R_NO_ROLLOUT, FWD_R_INVALID_FLEET_KEY,
 * FWD_R_UNSUPPORTED_SCHEMA.
 */
#ifndef CTL_ROLLOUT_STORE_H
#define CTL_ROLLOUT_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl_etcd.h"
#include "ctl_rollout.h"
#include "fwd_err.h"

#define CTL_RSTORE_CHUNK (512u << 10) /* bytes per table chunk */
#define CTL_RSTORE_ONE_TXN (768u << 10) /* tables up to this go in one txn */

/* The rollout leader's key (rollout/leader) as its campaign made it. A
 * leader's writes compare both: a put over the key (by hand, or a writer
 * that should not) keeps its create_revision but not its lease, and a
 * leader compared on the revision alone would go on committing beside the
 * key's new holder until its next keepalive found out. */
struct ctl_rstore_leader {
	int64_t create_revision;
	int64_t lease;
};

/** "/regionfwd/v1/fac/F/" + @rest (printf) into @buf. */
int ctl_rstore_key(char *buf, size_t len, const char *facility, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/** The fleet identity of a document: fwd_hash64 of its bytes, 16 hex digits. */
void ctl_rstore_table_hash(const char *doc, size_t len, char out[17]);

/**
 * Create a rollout of @doc (already validated by the caller: the residency
 * check runs before this) in @facility with @opts. The previous table is
 * the facility's desired one, compared in the same transaction.
 * @r:  the new record, filled (state pending)
 * @return 0; -EBUSY (FWD_R_ROLLOUT_IN_PROGRESS, naming the rollout that
 *         holds the facility) when another rollout is active.
 */
int ctl_rstore_create(struct ctl_etcd *e, const char *facility, const char *doc, size_t len,
		      const struct ctl_rollout_opts *opts, const char *created_by, uint64_t now_ms,
		      struct ctl_rollout *r, struct fwd_err *err);

/** Read rollout/active into @r (and its mod_revision).
 *  @return 0, or -ENOENT (FWD_R_NO_ROLLOUT) when there is none. */
int ctl_rstore_active(struct ctl_etcd *e, const char *facility, struct ctl_rollout *r,
		      int64_t *mod_revision, struct fwd_err *err);

/** Ask the active rollout to abort (the driver reverts). @r: the record
 *  as written. @return 0, -ENOENT when none, -EALREADY when it is finished;
 *  1 when the active record could not be read and was deleted with every
 *  pin instead (@err's reason says what was wrong with it, @r unset). */
int ctl_rstore_abort(struct ctl_etcd *e, const char *facility, struct ctl_rollout *r,
		     struct fwd_err *err);

/**
 * Commit a driver's step: @act's pins, desired on promotion, and the record
 * (rollout/active, or into history and active deleted on finish), in one
 * transaction comparing rollout/active's @mod_revision and the leader key
 * (@leader, when not NULL). @r->writes is counted before it is written.
 * @return 0 with *@mod_revision the new one; -ESTALE when a compare failed
 *         (someone else wrote: read again); an etcd error.
 */
int ctl_rstore_commit(struct ctl_etcd *e, struct ctl_rollout *r, int64_t *mod_revision,
		      const struct ctl_rstore_leader *leader, const struct ctl_rollout_actions *act,
		      struct fwd_err *err);

/* Finished rollouts kept under rollout/history/ (the oldest beyond are
 * deleted when a rollout finishes), and what one history read returns at
 * most: records of big facilities are 100 KiB and more. */
#define CTL_RSTORE_HISTORY_KEEP 200
#define CTL_RSTORE_HISTORY_BYTES (4u << 20)
#define CTL_RSTORE_PRUNE_MAX 50 /* records deleted at one finish */

/** Finished rollouts, newest first, at most @limit and about
 *  CTL_RSTORE_HISTORY_BYTES of records: a JSON array of records (an
 *  unreadable one as {"key", "error"}). NULL with @err. */
json_t *ctl_rstore_history(struct ctl_etcd *e, const char *facility, size_t limit,
			   struct fwd_err *err);

/** Delete the oldest finished rollouts beyond the newest @keep, at most
 *  CTL_RSTORE_PRUNE_MAX. @return how many were deleted, or a negative errno
 *  with @err. */
int ctl_rstore_prune_history(struct ctl_etcd *e, const char *facility, size_t keep,
			     struct fwd_err *err);

/**
 * The facility's node reports. @nodes (may be NULL): each readable report,
 * parsed, up to @max; @view (may be NULL): the fleet view, a JSON array of
 * the reports as the nodes wrote them (an unreadable one as {"key", "error"}).
 * @return the number of reports in @nodes, or a negative errno.
 */
int ctl_rstore_nodes(struct ctl_etcd *e, const char *facility, struct ctl_rollout_node *nodes,
		     size_t max, json_t **view, struct fwd_err *err);

/* ---- pins (docs/fleet.md, "Pins nobody owns") --------------------------- */

/* Who a pin (pins/N) belongs to, as far as etcd tells at one revision. */
enum ctl_pin_owner {
	CTL_PIN_OWNER_ACTIVE, /* the rollout in rollout/active */
	CTL_PIN_OWNER_FINISHED, /* a rollout in rollout/history: it ended without it */
	CTL_PIN_OWNER_UNKNOWN, /* a rollout neither active nor in the history (another
				* tool's, a pruned record, a hand-written id) */
	CTL_PIN_OWNER_OPERATOR, /* "rollout": null: written by hand */
	CTL_PIN_OWNER_UNREADABLE, /* not a pin's JSON (the node refuses it too) */
};

const char *ctl_pin_owner_name(enum ctl_pin_owner o);

/* A pin's value is a small JSON object (under 200 bytes): a larger one is
 * reported unreadable, never parsed (every etcd value is hostile; one of
 * megabytes must not cost every reader its memory or its reply bound). */
#define CTL_RSTORE_PIN_BYTES 4096

struct ctl_rstore_pin {
	/* The node the key names; "" when the key is no node name (upper case,
	 * longer than CTL_ROLLOUT_NAME_MAX, a byte outside a-z 0-9 -): such a
	 * pin is unreadable and @why shows the key, never cut into the name of
	 * another node that an unpin would then delete. */
	char node[CTL_ROLLOUT_NAME_MAX + 1];
	uint64_t key_hash; /* fwd_hash64 of the whole key: tells every key apart */
	char table[17]; /* "" when unreadable */
	/* As written (cleaned); "" for null. An unreadable pin keeps one that
	 * reads as an id: an unpin then knows whether it may be the active
	 * rollout's. */
	char rollout[CTL_ROLLOUT_NAME_MAX + 1];
	/* Whether @rollout says whose it is: a string, or a schema-1 value
	 * (where null or none is an operator's). An unreadable pin of another
	 * schema without one may be anybody's, the active rollout's too. */
	bool rollout_known;
	int64_t mod_revision;
	enum ctl_pin_owner owner;
	char why[200]; /* unreadable: which field, why */
};

/** Every pin is stray but the active rollout's. */
static inline int ctl_rstore_pin_stray(const struct ctl_rstore_pin *p)
{
	return p->owner != CTL_PIN_OWNER_ACTIVE;
}

json_t *ctl_rstore_pin_json(const struct ctl_rstore_pin *p);

/**
 * The id of rollout/active at @revision (0: the latest) into @id ("" when
 * there is none). @create_rev caches the record's create_revision with @id:
 * a record of the same create_revision is the same rollout (its id never
 * changes), so only a new record is read whole (they are 100 KiB and more).
 * The record is parsed as the driver parses it (duplicate keys refused).
 * @return 0; -EINVAL (FWD_R_INVALID_FLEET_KEY) when the record has no
 *         readable "id" (then @id is ""); an etcd error.
 */
int ctl_rstore_active_id(struct ctl_etcd *e, const char *facility, int64_t revision,
			 int64_t *create_rev, char id[CTL_ROLLOUT_ID_MAX + 1], struct fwd_err *err);

/* What ctl_rstore_pins() and ctl_rstore_unpin() keep between calls (zero it
 * once, keep it while reading one facility): rollout/active's id with its
 * create_revision, so the record is read whole only when a new rollout
 * starts. And what one ctl_rstore_pins() found besides the pins. */
struct ctl_rstore_pinset {
	int64_t active_create; /* kept: rollout/active's create_revision, 0 none */
	char active[CTL_ROLLOUT_ID_MAX + 1]; /* kept: its id, "" none or unreadable */
	bool active_unreadable; /* out: a record without a readable "id" */
	bool truncated; /* out: more pins than @max: only the first @max (in key
			 * order) were read */
	bool values_alone; /* out: the values did not fit one reply (a hostile
			    * one): each was read alone, bounded */
};

/**
 * The facility's pins, at most @max into @pins, each with its owner, read with
 * rollout/active (and the history keys of the rollouts they name, one read
 * per rollout named) at one revision. A pin that cannot be read (its key, a
 * value over CTL_RSTORE_PIN_BYTES or over the client's reply bound, bad JSON)
 * is there as unreadable with the reason: it never fails the others.
 * @set: the cache and what was found (above).
 * @return the number of pins filled (<= @max), or a negative errno with
 *         @err (etcd not there, or not answering as etcd).
 */
int ctl_rstore_pins(struct ctl_etcd *e, const char *facility, struct ctl_rstore_pin *pins,
		    size_t max, struct ctl_rstore_pinset *set, struct fwd_err *err);

/**
 * Delete node @node's pin, unless the active rollout owns it (its wave or
 * its revert: abort the rollout instead), or may own it: an unreadable pin
 * while a rollout is active is refused unless it names another rollout.
 * One transaction compares the pin's
 * mod_revision and rollout/active's create_revision as read, and @leader's
 * key when not NULL (the driver's): nothing changed in between, or
 * nothing is deleted. @expect_mod (0: any) and @only_finished (the leader's
 * sweep: only a pin of a rollout in the history) narrow what may go.
 * @cache (may be NULL): as for ctl_rstore_pins(), the active record's id.
 * @out: the pin deleted.
 * @return 0; -ENOENT (FWD_R_NO_PIN); -EBUSY (FWD_R_ROLLOUT_IN_PROGRESS: the
 *         active rollout's, or maybe); -ESTALE when it changed since
 *         @expect_mod, or is not a finished rollout's with @only_finished;
 *         an etcd error.
 */
int ctl_rstore_unpin(struct ctl_etcd *e, const char *facility, const char *node, int64_t expect_mod,
		     bool only_finished, const struct ctl_rstore_leader *leader,
		     struct ctl_rstore_pinset *cache, struct ctl_rstore_pin *out,
		     struct fwd_err *err);

#endif /* CTL_ROLLOUT_STORE_H */
