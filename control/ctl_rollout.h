/*
 * ctl_rollout.h - a fleet rollout as data and a pure state machine
 * (docs/fleet.md, "Rollouts and gates").
 *
 * A rollout takes one facility from its desired table (`previous`) to a new
 * one (`table`): canary nodes first, then the other nodes in waves. Each wave
 * is pinned to the new table, must report it in sync within the sync
 * timeout, then bakes while the gates (the descriptor table in
 * ctl_rollout.c) watch it; a failed gate, or an operator, aborts: the nodes
 * already changed are pinned back to `previous` and their pins deleted once
 * they report it. After the last wave, promotion sets desired to the new
 * table and deletes every pin in one transaction.
 *
 * This module knows nothing of etcd or time sources: ctl_rollout_step()
 * takes the record (rollout/active), the node reports (nodes/N, each with the
 * driver's previous report of the same node for rates) and the time, and
 * returns the writes to make, all of which the driver commits in one etcd
 * transaction with the record, compared on its mod_revision. Every decision
 * that must survive a takeover (plan, baselines, bake snapshots) is in the
 * record, so a new leader resumes from rollout/active alone.
 *
 * Records and node reports read from etcd are hostile input: the parsers
 * check schema, sizes, charsets and types, and name the field they refuse.
 */
#ifndef CTL_ROLLOUT_H
#define CTL_ROLLOUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fwd_err.h"

#define CTL_ROLLOUT_SCHEMA 1
#define CTL_ROLLOUT_NODES_MAX 512 /* nodes of one facility a rollout handles */
#define CTL_ROLLOUT_SKEW_MS (10 * 60 * 1000ull) /* a record's phase may start this far ahead */
/* Nodes pinned in one step: a wave's pins are one etcd transaction, and etcd
 * refuses more than --max-txn-ops (128 by default) operations in one. */
#define CTL_ROLLOUT_WAVE_MAX 100
#define CTL_ROLLOUT_NAME_MAX 64 /* node names: [a-z0-9-]{1,64} */
#define CTL_ROLLOUT_FAC_MAX 32 /* facility names: [a-z0-9-]{1,32} */
#define CTL_ROLLOUT_ID_MAX 40 /* rollout ids: [a-z0-9-]{1,40} */
/* The longest sync_timeout_s a rollout may set: a node still applying its
 * target after this long is stuck by any rollout's measure (ctl_fleet.c). */
#define CTL_ROLLOUT_SYNC_TIMEOUT_MAX 3600
#define CTL_ROLLOUT_LABEL_MAX 63 /* label keys and values: [A-Za-z0-9._-] */
#define CTL_ROLLOUT_LABELS_MAX 16 /* labels per node kept */
#define CTL_ROLLOUT_LINKS_MAX 16 /* names of links down kept per node (the first, sorted) */
#define CTL_ROLLOUT_LINKS_READ 1024 /* names a report may list (FWD_MAX_LINKS) */
#define CTL_ROLLOUT_REASONS_MAX 32 /* drop reasons per node (fwd_counters.def has 26) */
#define CTL_ROLLOUT_REASON_MAX 31 /* drop reason names */
#define CTL_ROLLOUT_BY_MAX 200 /* created_by */

/* ---- options ----------------------------------------------------------- */

/* The rollout's options; ctl_rollout_opts_default() fills the defaults that
 * docs/fleet.md lists. */
struct ctl_rollout_opts {
	uint32_t canary; /* canary nodes by count (first by name), 0 with a label: all
			  * (at most CTL_ROLLOUT_WAVE_MAX either way) */
	char canary_label[2 * CTL_ROLLOUT_LABEL_MAX + 2]; /* "k=v" or "" */
	uint32_t bake_s; /* each wave bakes this long once in sync */
	uint32_t wave; /* nodes per wave after the canary */
	uint32_t sync_timeout_s; /* a wave must report the table in sync by then */
	uint32_t max_drop_pps; /* drop_rate gate: increase per reason, packets/s ... */
	uint32_t max_drop_pct; /* ... and above this percent of the rate before */
	bool link_gate; /* link_down gate: a link down that was up before */
	uint32_t max_health; /* health gate: highest health code allowed (0..2) */
};

void ctl_rollout_opts_default(struct ctl_rollout_opts *o);

/**
 * Read options from a JSON object (API body "options"), over the defaults
 * already in @o. Unknown fields, wrong types and out-of-range values are
 * refused naming the field ("options.bake_s").
 * @return 0, or -EINVAL with @err filled (bad_request).
 */
int ctl_rollout_opts_from_json(struct ctl_rollout_opts *o, const json_t *j, struct fwd_err *err);

json_t *ctl_rollout_opts_to_json(const struct ctl_rollout_opts *o);

/* ---- node reports ------------------------------------------------------ */

enum ctl_node_state {
	CTL_NODE_IN_SYNC,
	CTL_NODE_APPLYING,
	CTL_NODE_FAILED,
	CTL_NODE_STALE,
	CTL_NODE_VALIDATE_ONLY,
};

struct ctl_rollout_drop {
	char reason[CTL_ROLLOUT_REASON_MAX + 1];
	uint64_t count;
};

/* What the rollout needs of a node's report (nodes/N, docs/fleet.md). */
struct ctl_rollout_node {
	char name[CTL_ROLLOUT_NAME_MAX + 1];
	unsigned n_labels;
	struct {
		char key[CTL_ROLLOUT_LABEL_MAX + 1], value[CTL_ROLLOUT_LABEL_MAX + 1];
	} labels[CTL_ROLLOUT_LABELS_MAX];
	enum ctl_node_state state;
	char target[17]; /* target.table, "" when none */
	char running[17]; /* running.table, "" when none */
	bool in_sync, stale;
	bool apply_error;
	char error_table[17], error_reason[48];
	int health; /* health.code */
	/* How many links are down, and the names of the first
	 * CTL_ROLLOUT_LINKS_MAX of them in name order: a node with more down
	 * is still read (and gated) on the count and those names. */
	unsigned n_links_down;
	char links_down[CTL_ROLLOUT_LINKS_MAX][CTL_ROLLOUT_NAME_MAX + 1];
	unsigned n_drops;
	struct ctl_rollout_drop drops[CTL_ROLLOUT_REASONS_MAX];
	uint64_t updated_at; /* the node's clock, ms */
	/* The driver's previous report of this node, for rates; NULL if none. */
	const struct ctl_rollout_node *prev;
	/* A key under nodes/ whose report cannot be read: name from the key,
	 * nothing else set but why. A rollout cannot vouch for such a node,
	 * so its presence aborts one (gate "unreadable_report"). */
	bool unreadable;
	char unreadable_why[200];
};

/**
 * Whether @kv is a label "key=value" as nodes report them and rollouts match
 * them: key 1..CTL_ROLLOUT_LABEL_MAX of a-z 0-9 . _ -, value
 * 1..CTL_ROLLOUT_LABEL_MAX of A-Z a-z 0-9 . _ -. One rule for regiond's
 * --fleet-label, the reports' parser and --canary-label, so that a label a
 * node may carry is one a rollout can read and match.
 */
bool ctl_rollout_label_ok(const char *kv);

/** Whether @s may name a node (1..CTL_ROLLOUT_NAME_MAX of a-z 0-9 -), as
 *  records and reports name them. */
bool ctl_rollout_node_name_ok(const char *s);

/**
 * Parse a node report (hostile: from etcd). Fields the rollout does not use
 * are ignored (the node may add some compatibly); those it uses are checked.
 * @return 0, or -EINVAL with @err naming the field.
 */
int ctl_rollout_node_parse(const char *buf, size_t len, struct ctl_rollout_node *n,
			   struct fwd_err *err);

/** Drop rate of @reason in packets/s between @prev and @cur, or -1 if it
 *  cannot be told (no earlier report, counters restarted, no time passed). */
double ctl_rollout_drop_rate(const struct ctl_rollout_node *prev,
			     const struct ctl_rollout_node *cur, const char *reason);

/* ---- the record -------------------------------------------------------- */

enum ctl_rollout_state {
#define CTL_ROLLOUT_STATES(X)                                                                      \
	X(PENDING, "pending") /* written by the API; no plan yet */                                \
	X(SYNCING, "syncing") /* the wave is pinned; waiting for it to report in sync */           \
	X(BAKING, "baking") /* the wave runs the table; gates watch it */                          \
	X(ABORTING, "aborting") /* changed nodes pinned back to previous */                        \
	X(COMPLETED, "completed") /* promoted: desired is the table (history only) */              \
	X(ABORTED, "aborted") /* reverted (history only) */
#define X(id, name) CTL_RO_##id,
	CTL_ROLLOUT_STATES(X)
#undef X
		CTL_RO_STATE_MAX
};

enum ctl_rollout_nstatus {
#define CTL_ROLLOUT_NSTATUS(X)                                                                     \
	X(WAITING, "waiting") /* its wave has not started */                                       \
	X(PINNED, "pinned") /* pinned to the table, not in sync yet */                             \
	X(SYNCED, "synced") /* runs the table, baking */                                           \
	X(DONE, "done") /* its wave passed */                                                      \
	X(ALREADY, "already") /* ran the table before the rollout: not changed */                  \
	X(LOST, "lost") /* its report disappeared (lease expired) during the rollout */            \
	X(REVERTING, "reverting") /* pinned back to previous */                                    \
	X(REVERTED, "reverted") /* reports previous again; pin deleted */                          \
	X(UNREVERTED, "unreverted") /* did not report previous in time; pin deleted anyway */
#define X(id, name) CTL_RN_##id,
	CTL_ROLLOUT_NSTATUS(X)
#undef X
		CTL_RN_MAX
};

/* A node of the plan, and what its gates compare with. */
struct ctl_rollout_rnode {
	char name[CTL_ROLLOUT_NAME_MAX + 1];
	int wave; /* 0 = canary; -1 = not in any wave (already) */
	enum ctl_rollout_nstatus status;
	/* It holds a pin of this rollout: kept apart from the status so a lost
	 * node's pin is not forgotten. */
	bool pinned;
	/* Before its wave (from the reports at the wave's start): */
	int base_health;
	unsigned n_base_links; /* links down at the baseline; names as in the report */
	char base_links[CTL_ROLLOUT_LINKS_MAX][CTL_ROLLOUT_NAME_MAX + 1];
	unsigned n_base_rates;
	struct ctl_rollout_drop base_rates[CTL_ROLLOUT_REASONS_MAX]; /* pps, rounded up */
	/* At the start of its bake: counters, for the rate during the bake. */
	uint64_t bake_at; /* the node's clock, ms; 0 = not baking yet */
	unsigned n_bake_drops;
	struct ctl_rollout_drop bake_drops[CTL_ROLLOUT_REASONS_MAX];
};

/* rollout/active, then rollout/history/ID. */
struct ctl_rollout {
	char id[CTL_ROLLOUT_ID_MAX + 1];
	char facility[CTL_ROLLOUT_FAC_MAX + 1];
	char table[17];
	char previous[17]; /* "" when the facility had no desired table */
	char created_by[CTL_ROLLOUT_BY_MAX + 1];
	uint64_t created_at, updated_at, finished_at; /* ms */
	struct ctl_rollout_opts opts;
	enum ctl_rollout_state state;
	int wave; /* the wave in progress (-1 before the plan) */
	int n_waves;
	uint64_t since; /* ms: the current state began */
	bool abort_requested; /* by the operator; the driver carries it out */
	uint64_t writes; /* etcd transactions made for it so far (its cost) */
	/* Why it aborted (state ABORTING/ABORTED): */
	char abort_gate[24]; /* a gate's name, "operator", "no_nodes", "no_canary" */
	char abort_node[CTL_ROLLOUT_NAME_MAX + 1];
	char abort_reason[256];
	unsigned n_nodes;
	struct ctl_rollout_rnode nodes[CTL_ROLLOUT_NODES_MAX];
};

const char *ctl_rollout_state_name(enum ctl_rollout_state s);

/**
 * A new rollout record (state pending) for @facility from @previous ("" or
 * NULL: none) to @table.
 * @return 0, or -EINVAL with @err naming the field.
 */
int ctl_rollout_init(struct ctl_rollout *r, const char *id, const char *facility, const char *table,
		     const char *previous, const struct ctl_rollout_opts *o, const char *created_by,
		     uint64_t now_ms, struct fwd_err *err);

/** The record as JSON (schema 1). NULL on ENOMEM. */
json_t *ctl_rollout_to_json(const struct ctl_rollout *r);

/**
 * Parse a record (hostile: from etcd or history). A higher schema, unknown
 * fields, wrong types, bad charsets, too many nodes or a plan that does not
 * hold together are refused.
 * @return 0, or -EINVAL with @err naming the field.
 */
int ctl_rollout_parse(const char *buf, size_t len, struct ctl_rollout *r, struct fwd_err *err);

/** The same from a jansson tree. */
int ctl_rollout_from_json(const json_t *j, struct ctl_rollout *r, struct fwd_err *err);

/* ---- the step ---------------------------------------------------------- */

enum ctl_rollout_pin {
	CTL_PIN_KEEP = 0, /* leave the node's pin as it is */
	CTL_PIN_TABLE, /* pin the node to the rollout's table */
	CTL_PIN_PREVIOUS, /* pin it back to the previous table */
	CTL_PIN_DELETE, /* delete its pin */
};

/* What the driver writes, in one transaction with the record. */
struct ctl_rollout_actions {
	bool write; /* anything to write: the record changed */
	enum ctl_rollout_pin pin[CTL_ROLLOUT_NODES_MAX]; /* per r->nodes[i] */
	bool promote; /* set desired to r->table */
	bool finish; /* record into history/ID, delete rollout/active */
	uint64_t wake_at; /* ms: step again by then even if nothing changes */
};

/**
 * Advance @r given the facility's node reports @nodes (any order, names
 * unique) at @now_ms. Pure: the same input gives the same output.
 * @return 0 with @r updated and @act filled; -EINVAL if @r does not hold
 *         together (then nothing is to be written).
 */
int ctl_rollout_step(struct ctl_rollout *r, const struct ctl_rollout_node *nodes, size_t n_nodes,
		     uint64_t now_ms, struct ctl_rollout_actions *act);

/* The gates, for documentation and the API: name and what fails it. */
struct ctl_rollout_gate_info {
	const char *name;
	const char *fails_when;
};
size_t ctl_rollout_gates(const struct ctl_rollout_gate_info **gates);

#endif /* CTL_ROLLOUT_H */
