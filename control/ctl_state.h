/*
 * ctl_state.h - regiond's desired state: the history of table generations,
 * persisted, and the one function that changes it.
 *
 * Every change (full replace, patch, rollback, automatic revert) goes
 * through ctl_state_apply(): validate completely (document, residency), push
 * to regionfwd and wait for it to run the generation, then record and
 * persist. Any failure on the way changes nothing. The history keeps the
 * last N generations (id, time, author, comment, content hash, document) in
 * the state directory, each file written atomically (write, fsync, rename,
 * fsync the directory), so a SIGKILL at any instant leaves either the old or
 * the new state.
 *
 * Not thread-safe: the caller holds its lock around every call.
 */
#ifndef CTL_STATE_H
#define CTL_STATE_H

#include <stdint.h>

#include <jansson.h>

#include "ctl_dp.h"
#include "fwd_err.h"
#include "fwd_table.h"

struct ctl_gen {
	uint64_t id;
	int64_t time; /* unix seconds */
	uint64_t hash;
	char author[64];
	char comment[256];
	char *doc;
	size_t len;
};

struct ctl_state {
	char dir[256];
	unsigned keep;
	struct ctl_gen *hist; /* oldest first; the last one is current */
	unsigned nhist;
	struct fwd_table *table; /* current, validated */
	struct ctl_dp *dp;
	int dp_timeout_ms;
	/* Called with each new generation once regionfwd runs it (the XDP
	 * filter); a failure rolls regionfwd back and refuses the change. */
	int (*hook)(void *arg, const struct fwd_table *t, uint64_t gen, struct fwd_err *e);
	void *hook_arg;
	/* commit-confirm: revert to revert_to unless confirmed by deadline */
	uint64_t confirm_gen, revert_to;
	int64_t confirm_deadline;
};

/** Load the persisted history from @dir (created if missing). */
int ctl_state_open(struct ctl_state *st, const char *dir, unsigned keep, struct ctl_dp *dp,
		   struct fwd_err *e);
void ctl_state_close(struct ctl_state *st);

/** The current generation, or NULL when there is none yet. The pointers
 * these return are invalidated by ctl_state_apply() (it grows the history). */
const struct ctl_gen *ctl_state_current(const struct ctl_state *st);
const struct ctl_gen *ctl_state_find(const struct ctl_state *st, uint64_t id);

/**
 * Validate a document into a table, residency included.
 * @return the table, or NULL with @e (422 invalid_table / residency_violation)
 */
struct fwd_table *ctl_state_validate(const char *doc, size_t len, const char *name,
				     struct fwd_err *e);

/* Checks that need more than the table itself (compiling content rules):
 * run by ctl_state_validate when set. */
extern int (*ctl_state_extra_validate)(const struct fwd_table *t, struct fwd_err *e);

/* The compiled content databases to ship with the push of table @t, or
 * NULL (none, or regionfwd compiles them): set by regiond. */
struct fwd_hs_dbs;
extern const struct fwd_hs_dbs *(*ctl_state_content_dbs)(const struct fwd_table *t);

/**
 * Make @doc the new generation.
 * @param expected  the generation the writer based its change on, or -1
 * @param push      0: record without pushing (start-up, no dataplane yet)
 * @return the new generation id (> 0); 0 when @doc is the current content
 *         (no-op); or -1 with @e filled and nothing changed
 */
int64_t ctl_state_apply(struct ctl_state *st, const char *doc, size_t len, const char *author,
			const char *comment, int64_t expected, int push, struct fwd_err *e);

/** Persist the pending confirmation (or its absence). */
int ctl_state_save(struct ctl_state *st, struct fwd_err *e);

/**
 * Make sure regionfwd runs the current generation (push it if its hash
 * differs, e.g. after regionfwd restarted). The one place regiond pushes
 * on its own: its main loop calls it; API reads never do.
 * @return 1 in sync, 0 not (unreachable, or no current generation).
 */
int ctl_state_sync(struct ctl_state *st);

/**
 * Read only: regionfwd's status report into *@dp_status (new reference, NULL
 * when it did not answer). @return 1 when it runs the current generation.
 */
int ctl_state_observe(struct ctl_state *st, json_t **dp_status);

/** History as JSON, newest first (no documents). */
json_t *ctl_state_history(const struct ctl_state *st);

#endif /* CTL_STATE_H */
