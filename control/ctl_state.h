/*
 * ctl_state.h - regiond's desired state: the history of table generations,
 * persisted, and the two functions that change it.
 *
 * Every change of a whole document (full replace, patch, rollback,
 * automatic revert) goes through ctl_state_apply(), every batch of prefix
 * changes (POST /v1/prefixes, a routing feed) through
 * ctl_state_apply_delta(): validate completely (document or delta,
 * residency), write it ahead, push to regionfwd and wait for it to run the
 * generation, then record and persist. Any failure on the way changes
 * nothing. The history keeps the last N generations (id, time, author,
 * comment, identity hash) in the state directory, each either a document
 * (gen-N.doc) or a delta on the generation before it (gen-N.delta: packed
 * prefix changes, fwd_delta.h), each file written atomically (write, fsync,
 * rename, fsync the directory), so a SIGKILL at any instant leaves either
 * the old or the new state. The oldest generation kept is always a
 * document: before retention deletes a document a listed delta chains
 * from, it folds that delta into a checkpoint document, so every listed
 * generation can be produced.
 *
 * Locking (regiond's threads: the API's, the main loop): every call is made
 * with *st->lock held. A call that may change the state or talk to
 * regionfwd (apply, revert, sync, refresh, the confirm tick, the
 * extensions' sync) is a write: made between ctl_state_write_begin() and
 * ctl_state_write_end(), which hold st->writer too, taken first. A write
 * releases *st->lock while it waits for regionfwd (push, status, table),
 * with the state consistent (a change in flight is only the pending
 * record), so reads of the state (table, history, validate, the view) go
 * on; st->writer keeps any other write out meanwhile. Reads never wait
 * for regionfwd through this module.
 */
#ifndef CTL_STATE_H
#define CTL_STATE_H

#include <pthread.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <time.h>

#include <jansson.h>

#include "ctl_dp.h"
#include "ctl_ext.h"
#include "fwd_delta.h"
#include "fwd_err.h"
#include "fwd_table.h"

enum ctl_gen_kind {
	CTL_GEN_DOCUMENT = 0, /* gen-N.doc: a whole table document */
	CTL_GEN_DELTA = 1, /* gen-N.delta: prefix changes to the generation before it */
};

/* Which of a generation's prefixes the routing feed had added (its owned
 * set, ctl_ownset.h), so that a rollback to it knows them
 * (docs/bgp-feed.md, rollback). */
enum ctl_gen_own {
	CTL_OWN_UNKNOWN = 0, /* written by an older regiond, or derived from one */
	CTL_OWN_FILE, /* gen-N.owned holds it (a document, a checkpoint) */
	CTL_OWN_FEED, /* a delta of the feed: its parent's, plus what it adds, less what it removes */
	CTL_OWN_OTHER, /* another delta (the API's): its parent's, less what it removes */
	CTL_OWN_NONE, /* none (no file: a regiond without the feed writes none) */
};

struct ctl_gen {
	uint64_t id;
	int64_t time; /* unix seconds */
	/* Its identity: fwd_hash64(doc) for a document applied as given, the
	 * chain hash fwd_delta_hash(parent's hash, changes) for a delta and
	 * for a checkpoint folded from one (or what regionfwd named a table
	 * that was adopted): what regionfwd reports when it runs it. */
	uint64_t hash;
	char author[64];
	char comment[256];
	/* Who made the change, as authenticated (not as claimed, unlike
	 * author): "uid 0 pid 42 on the unix socket", "write token from
	 * 10.0.0.5 port 41234", "client certificate CN=automation,O=Example
	 * from 10.0.0.5 port 41234", "regiond (commit-confirm timer)". Room
	 * for a 255-byte certificate subject with a token and an address. */
	char by[384];
	enum ctl_gen_kind kind;
	/* CTL_GEN_DOCUMENT: the document and its own hash (== hash but for
	 * checkpoints and adopted generations); checkpoint: written by
	 * retention from the table's model in place of a delta. */
	char *doc;
	size_t len;
	uint64_t doc_hash;
	int checkpoint;
	/* CTL_GEN_DELTA: the generation it applies to (the one before it in
	 * the history), its effective changes (fwd_delta_pack) and their counts. */
	uint64_t parent;
	uint8_t *changes;
	size_t clen;
	uint32_t added, removed;
	enum ctl_gen_own own;
};

/* Who raised an alarm (ctl_state.alarms): each owner raises and clears its
 * own. TABLE: which table runs (adoption refused, a commit-confirm revert
 * failing or unrecorded), cleared when an operator's table runs; FEED: the
 * BGP feed (withdrawn, over its prefix limit), cleared by the feed alone. */
/* TABLE: what runs is not what the operator chose (a failed revert, a
 * seed, a held-back table); FEED: the BGP feed; RECORD: a generation runs
 * whose record the disk has not taken yet. */
/* Room kept on the state disk beyond two documents: history.json, a
 * delta, an owned-prefix record. */
#define CTL_DISK_SPARE (256u * 1024)

enum ctl_alarm_owner {
	CTL_ALARM_TABLE,
	CTL_ALARM_FEED,
	CTL_ALARM_RECORD,
	CTL_ALARM_DP_SAVE, /* regionfwd cannot save what it runs for a restart */
	CTL_ALARM_FLEET, /* fleet mode: a stray pin, or the node off its target */
	CTL_ALARM_STATE_DIR, /* the state directory removed or replaced under regiond */
	CTL_ALARM_STATE_DISK, /* its filesystem nearly full, or read-only */
	CTL_ALARM_API_SOCKET, /* the API socket taken away, not bound again yet */
	CTL_ALARM_DP_SOCKET, /* regionfwd's control socket likewise (its status says) */
	CTL_ALARM_FILTER, /* an earlier regiond's XDP filter, which this one does not update */
	CTL_ALARM_OWNERS
};
#define CTL_ALARM_LEN 512 /* one owner's sentence, with its NUL (a save error's path, too) */

/* The kinds of write (ctl_state.write_kind). */
enum ctl_write_kind {
	CTL_WRITE_OWN = 0, /* regiond on its own: the initial table, a revert, an adoption */
	CTL_WRITE_DOCUMENT, /* PUT /v1/table: a document someone wrote */
	CTL_WRITE_PATCH, /* PATCH /v1/table: changes to the running table */
	CTL_WRITE_PREFIXES, /* POST /v1/prefixes: a batch of prefixes */
	CTL_WRITE_ROLLBACK, /* POST /v1/rollback: back to a kept generation */
	CTL_WRITE_FLEET, /* a fleet's desired table (new, or one this node ran) */
	CTL_WRITE_OTHER, /* a confirm, a filter's detach */
	CTL_WRITE_PREVIEW, /* a rollback's dry run, set by its handler: nothing written */
};

struct ctl_state {
	char dir[256];
	/* The state directory, open and locked (flock, exclusive) for as long
	 * as the state is: two regionds on one directory once overwrote each
	 * other's generations (gen-N.doc, history.json) without a word. 0
	 * when not open. */
	int dir_fd;
	unsigned keep;
	struct ctl_gen *hist; /* oldest first; the last one is current */
	unsigned nhist;
	/* The first @hidden of hist are past --keep: not listed, found or
	 * rolled back to, kept (with their files) only because a listed delta
	 * chains from them. Once --keep of them pile up, retention folds the
	 * oldest listed delta into a checkpoint and drops them all: one fold of
	 * the whole table per --keep changes, not per change. */
	unsigned hidden;
	struct fwd_table *table; /* current, validated */
	struct ctl_dp *dp;
	int dp_timeout_ms;
	/* What regiond plugs in (ctl_ext.h), in the order added; kept by
	 * ctl_state_open. */
	struct ctl_ext ext[CTL_MAX_EXT];
	unsigned next;
	/* Ids are never reused: the next one, persisted with the history. */
	uint64_t next_id;
	/* The write-ahead record: a generation durable on disk (document and
	 * history) and being pushed, not yet current. Resolved by the apply
	 * that wrote it, or after a crash by ctl_state_sync(): current if
	 * regionfwd runs it, dropped if not. */
	struct ctl_gen pending;
	int has_pending;
	/* commit-confirm: revert to revert_to unless confirmed by deadline */
	uint64_t confirm_gen, revert_to;
	/* The last generation a confirmation kept (0: none): a retried
	 * confirm of it is answered "already", not refused. Persisted with
	 * the history ("confirmed"), so it survives a restart. */
	uint64_t confirmed_gen;
	int64_t confirm_deadline;
	/* When it is due on CLOCK_MONOTONIC (ms): the revert compares this,
	 * not the wall clock, which an operator or NTP may step (a step
	 * forward reverted a change before its time). Derived from
	 * confirm_deadline when armed and when loaded from disk. */
	int64_t confirm_due_ms;
	/* Loaded from disk (a restart): the deadline has no reference but the
	 * wall clock, and follows it while it is pending (ctl_confirm.c). */
	int confirm_due_wall;
	/* The confirm_timeout_s (0: none) of the change being applied: armed
	 * with its write-ahead record and recorded with its commit, so that no
	 * crash and no refused write leaves it current without its deadline
	 * on disk. Set by the caller around ctl_state_apply() only. */
	int64_t confirm_next_s;
	int64_t revert_tried_ms; /* CLOCK_MONOTONIC of the last failed revert: retried once a second */
	/* A generation regionfwd runs and regiond holds as current whose
	 * document and record could not be written (an automatic revert on a
	 * full or read-only disk, or a change whose commit record the disk
	 * refused): written by ctl_state_persist_unsaved(),
	 * which every later change must pass first. 0 when none. */
	uint64_t unsaved_id;
	/* The check of the files a restart reads (check_files, each second):
	 * history.json's length as last written or read (0: not known), the
	 * next generation to look at (a tick looks at a bounded number, round
	 * robin), and when a failed rewrite is tried again (doubling to a
	 * minute) while its alarm stands. history_sum: fwd_hash64 of
	 * history.json's bytes as last written or read (0: not known), which
	 * the check compares the file with, for an edit that keeps its size. */
	size_t history_len;
	uint64_t history_sum;
	/* history.json's ctime when its bytes were last found to match
	 * history_sum (0: not since it was last written): an unchanged ctime
	 * spares the read, which a write cannot avoid changing. */
	struct timespec history_ctime;
	unsigned files_next;
	/* verify_content's place: the generation (index, id) and the offset
	 * in its file compared so far. */
	unsigned verify_next;
	uint64_t verify_id;
	size_t verify_off;
	int64_t files_retry_ms, files_backoff_ms;
	int files_alarm;
	/* unsaved_id is an automatic revert (its alarm is the table's), not a
	 * change whose commit record the disk refused (CTL_ALARM_RECORD). */
	int unsaved_revert;
	/* Files of generations retention dropped (mask 1 the document, 2 the
	 * delta, 4 the owned set) or folded into a checkpoint (2), deleted once a history
	 * without them is durable (ctl_state_save), never before. */
	struct {
		uint64_t id;
		unsigned mask;
	} * gone;
	unsigned ngone, capgone;
	/* The whole document of one generation produced from its table's
	 * model (ctl_state_doc): a current delta generation is read whole
	 * (GET /v1/table, a push after regionfwd restarted) without writing
	 * its 1M prefixes out each time. cache_id 0: empty. */
	uint64_t cache_id;
	char *cache_doc;
	size_t cache_len;
	/* A regionfwd older than PushRequest.generation_hash runs a generation
	 * pushed whole under its document's hash: alias_hash is that hash for
	 * generation alias_id, which then counts as in sync too
	 * (ctl_state_runs). 0: none (a current regionfwd reports the
	 * generation's own hash). */
	uint64_t alias_id, alias_hash;
	/* regionfwd's last status report, as the main loop's sync (or a
	 * write that just ran) saw it: what reads answer from, so no read
	 * waits for regionfwd. dp_report is NULL when it did not answer;
	 * dp_report_ms is CLOCK_MONOTONIC ms of that attempt, 0 before any. */
	json_t *dp_report;
	/* The last report regionfwd answered with, kept while it does not
	 * answer: status shows it (docs/api.md), marked stale by connected
	 * false and its age, so an operator sees what ran when it went quiet.
	 * Nothing decides by it: dp_report is what is known now. */
	json_t *dp_last;
	int dp_in_sync;
	/* The last report's table was pushed by another regiond (another
	 * state_id): not in sync with this one, whatever its hash. */
	int dp_foreign;
	int64_t dp_report_ms;
	/* The current generation is the --table an empty state directory was
	 * seeded with at this start, and no change was made since: such a
	 * regiond adopts a table another regiond pushed rather than overwrite
	 * it (ctl_state_sync). Cleared by the first change or adoption. */
	int seeded;
	/* The seed ran: regionfwd was seen running it, or took its push. A
	 * seed that never ran leaves the history when a table is adopted
	 * (it would be the previous generation a rollback runs). */
	int seed_ran;
	/* ctl_state_sync found a table it should adopt but could not: regionfwd
	 * is left on it, and nothing else (the XDP filter) may be moved to
	 * regiond's current generation either. */
	int held_back;
	/* A push of this write ended a hold (held_back): its answer says
	 * so ("taken_back"), as a no-op's "changed": false would not. Cleared
	 * by the API before each write. */
	int took_back;
	/* The users this write's generation hands out of their residency
	 * (ctl_traffic_handovers: a protected region's prefix removed or
	 * moved to a region whose policies take its protected traffic out),
	 * logged at the commit and said in the answer
	 * ("residency_handovers"); NULL when none. Cleared by the API before
	 * each write. */
	json_t *handovers;
	/* The residency rules this write's generation drops or weakens
	 * (ctl_residency_weakened), logged and answered
	 * ("residency_weakened") as the handovers are; NULL when none. */
	json_t *weakened;
	/* The links whose admin state this write's whole table changes
	 * (ctl_link_states_changed; not a link command's own change), logged
	 * and answered ("link_states_changed"); NULL when none. */
	json_t *link_states;
	int64_t adopt_tried_ms; /* CLOCK_MONOTONIC ms of the last failed adoption */
	uint64_t reported; /* hash of a foreign table already logged as replaced */
	/* The hash of the current generation once regionfwd was seen running
	 * it: a regiond-pushed table found in its place later was pushed by
	 * another regiond since (ctl_state_sync). Kept in history.json
	 * ("ran"), so a restart knows it too; ran_written is what the
	 * history on disk says. */
	uint64_t ran_hash;
	uint64_t ran_written;
	/* This state directory's identity (history.json's state_id): random,
	 * made when the directory is first used, kept by a backup restored.
	 * Sent with every push (PushRequest.controller); regionfwd reports who
	 * pushed what runs, so a second regiond on the same regionfwd (its own
	 * state directory) is told apart from this one's older self. */
	uint64_t state_id;
	/* The identity was made for a history an older regiond wrote (kept
	 * in history.json as state_id_new until cleared): regionfwd may run
	 * this regiond's own push under no identity or a former one (a backup
	 * restored), so another identity is judged by ids alone, as before,
	 * until regionfwd is seen running this regiond's table and that is
	 * written down (keep_report). */
	int state_id_new;
	/* ctl_state_sync has had regionfwd's answer since this start: until
	 * then whether to hold back is not known, and regiond's own changes
	 * (the feed's, a revert) wait as they do while held back. */
	int dp_seen;
	/* Set by the caller around a change, as confirm_next_s: the generation
	 * whose document a rollback (or an automatic revert) applies again,
	 * 0 for any other change; and 1 while the routing feed applies its
	 * delta. The new generation's owned set follows from them. */
	uint64_t rollback_of;
	int delta_feed;
	/* The authenticated client of the write in progress, set by the API
	 * around a write; "" when regiond acts on its own. */
	char who[384];
	/* The API request of that write ("PUT /v1/table"), for the log. */
	char request[48];
	/* What that write is, set with @request by whoever begins it: the
	 * checks and words that differ between a document someone writes and
	 * a way back to one that ran are chosen by it, not by @request's text. */
	enum ctl_write_kind write_kind;
	/* The last minute of regionfwd's counters, for impact previews
	 * (ctl_traffic.h): sampled by ctl_state_sample_traffic(). */
	struct ctl_traffic *traffic;
	/* The caller's lock, held around every call (released around waits
	 * on regionfwd; NULL: never released), and the writers' lock (see the
	 * top of this file). */
	pthread_mutex_t *lock;
	pthread_mutex_t writer;
	/* Called by ctl_state_write_end() with the state lock still held:
	 * the API's read view follows every write at once, whichever thread
	 * made it (a request, the fleet agent, the routing feed, the confirm
	 * timer), so a status read after a change never shows the one before.
	 * Set and cleared under the writers' lock (ctl_api_new/stop). */
	void (*on_write_end)(void *arg);
	void *on_write_end_arg;
	/* The operator-facing alarm (status "alarm"): every raised slot's
	 * sentence, joined by "; " in slot order; "" when none. Composed by
	 * ctl_state_alarm(), read by everyone else. */
	char alarm[CTL_ALARM_OWNERS * (CTL_ALARM_LEN + 2)];
	/* One slot per kind of trouble, so that one owner's alarm neither
	 * hides nor clears another's (a feed lost while a revert fails shows
	 * both). Each is logged once when raised or changed, once cleared. */
	char alarms[CTL_ALARM_OWNERS][CTL_ALARM_LEN];
	/* The state directory's filesystem, as ctl_state_check_dir() last
	 * read it (disk_known 0 before): its free bytes (for an unprivileged
	 * writer) and what the next change may need there. */
	int disk_known;
	uint64_t disk_free, disk_need;
};

/** Plug @x in (before ctl_state_open when its validation must see the
 *  stored generations). @return 0, or -ENOSPC past CTL_MAX_EXT. */
int ctl_state_add_ext(struct ctl_state *st, const struct ctl_ext *x);

/** The extension named @name, or NULL. */
const struct ctl_ext *ctl_state_ext(const struct ctl_state *st, const char *name);

/** A write: when a sample is due, read regionfwd's counters into
 *  st->traffic (a failure only skips the sample). */
void ctl_state_sample_traffic(struct ctl_state *st);

/** Start or end a write (top of this file): take st->writer, then *st->lock. */
void ctl_state_write_begin(struct ctl_state *st);
void ctl_state_write_end(struct ctl_state *st);

/** Rebuild the API's view now (the on_write_end hook), under the state lock
 *  alone: for what changes outside a write but shows in the view, such as
 *  the fleet agent's own state after its report. Call without the state
 *  lock. */
void ctl_state_publish(struct ctl_state *st);

/** Load the persisted history from @dir (created if missing). st->lock is
 *  NULL afterwards: the caller sets it. */
int ctl_state_open(struct ctl_state *st, const char *dir, unsigned keep, struct ctl_dp *dp,
		   struct fwd_err *e);
void ctl_state_close(struct ctl_state *st);

/** The current generation, or NULL when there is none yet. The pointers
 * these return are invalidated by ctl_state_apply() and
 * ctl_state_apply_delta() (they grow the history). ctl_state_find() finds
 * listed generations only, not those retention hides. */
const struct ctl_gen *ctl_state_current(const struct ctl_state *st);
const struct ctl_gen *ctl_state_find(const struct ctl_state *st, uint64_t id);

/**
 * Apply a batch of prefix changes (fwd_delta.h) to the current table as a
 * new generation: the one function every delta goes through (the API's
 * POST /v1/prefixes, a routing feed). Checked with fwd_delta_apply(),
 * written ahead (gen-N.delta, then the history naming it pending), sent to
 * regionfwd as OP_DELTA on the generation it runs; when regionfwd runs
 * something else (delta_base_mismatch) or predates deltas (unknown_op),
 * the new table is pushed whole with its chain hash as generation_hash.
 * Then every extension's applied() and the record, as ctl_state_apply().
 * Called as a write (ctl_state_write_begin/end), st->who naming the client.
 * @param expected  the generation the writer based its change on, or -1
 * @param stats     when not NULL, what the batch does (also for a no-op)
 * @return the new generation id (> 0); 0 when every change is a no-op; or
 *         -1 with @e filled and nothing changed (invalid_delta,
 *         residency_violation, stale_generation, confirm_pending while a
 *         commit-confirm change awaits its confirmation, no_table,
 *         persist_failed, the dataplane's reasons)
 */
int64_t ctl_state_apply_delta(struct ctl_state *st, const struct fwd_delta *d, const char *author,
			      const char *comment, int64_t expected, struct fwd_delta_stats *stats,
			      struct fwd_err *e);

/**
 * Whether a delta could apply now, whatever its changes: the checks
 * ctl_state_apply_delta() makes first (an unsaved generation's record
 * written, tried now; no pending record; no commit-confirm; a table), with
 * the same answer. For a writer that must not prepare a batch (a routing
 * feed writing its additions ahead, comparing with a table about to be
 * replaced) that would be refused as a whole. Called as a write.
 * @return 0, or -1 with @e
 */
int ctl_state_delta_ready(struct ctl_state *st, struct fwd_err *e);

/**
 * The whole document of generation @g: its own for a document generation;
 * for a delta generation its table's model (ctl_model, compact JSON),
 * st->table's for the current one, else replayed from the nearest document
 * before it. Produced text is cached for one generation.
 * @return the text (owned by @st: valid until the next call or change),
 *         or NULL with @e (out of memory, a stored delta that fails)
 */
const char *ctl_state_doc(struct ctl_state *st, const struct ctl_gen *g, size_t *len,
			  struct fwd_err *e);

/** The current generation's model (ctl_model) as compact JSON text: a delta
 *  generation's document, cached with it (ctl_state_doc). The pointer rules
 *  are ctl_state_doc's: a write may keep it across a wait on regionfwd,
 *  as reads only ever cache the current generation's. NULL with @e. */
const char *ctl_state_model_text(struct ctl_state *st, size_t *len, struct fwd_err *e);

/** The table of generation @g (fwd_table_free), replayed like ctl_state_doc;
 *  NULL with @e. */
struct fwd_table *ctl_state_gen_table(const struct ctl_state *st, const struct ctl_gen *g,
				      struct fwd_err *e);

/** 1 when a generation regionfwd reports as @hash is regiond's current one:
 *  its identity hash, or the alias an older regionfwd knows it by. */
int ctl_state_runs(const struct ctl_state *st, uint64_t hash);

/**
 * Validate a document into a table, residency included, then every
 * extension's validate (content rules compile).
 * @return the table, or NULL with @e (422 invalid_table / residency_violation)
 */
struct fwd_table *ctl_state_validate(const struct ctl_state *st, const char *doc, size_t len,
				     const char *name, struct fwd_err *e);

/**
 * The same for a document someone wrote and asks about (validate, a fleet
 * rollout, --fleet-validate-only), with the checks newer than some stored
 * tables (fwd_table_check_written) that a load, a rollback or a revert do
 * not make: unless @doc is the running document, which a PUT of it takes
 * as a no-op. apply_gen_staged() makes them for a PUT and a fleet's new
 * desired table.
 */
struct fwd_table *ctl_state_validate_written(const struct ctl_state *st, const char *doc,
					     size_t len, const char *name, struct fwd_err *e);

/**
 * Without the state lock: the slow part of ctl_state_validate() of @doc
 * ahead of it. Parses and checks @doc, runs every extension's prepare
 * (the content rules' compile, up to its 30 s limit), and keeps the table
 * for this thread, so that the ctl_state_validate() of the same @doc and
 * @name that follows, under the lock, neither parses nor compiles again.
 * A document that does not pass is simply not kept: validate finds the
 * same error. The state lock (and with it the main loop's sync, health
 * and XDP re-attach) is then never held through a compile. @writer: the
 * caller writes (its compile does not queue behind reads').
 */
void ctl_state_prepare(const struct ctl_state *st, const char *doc, size_t len, const char *name,
		       int writer);

/** Free what ctl_state_prepare() kept for this thread (the table, the
 *  extensions' prepared work) and was not used: at the end of a request. */
void ctl_state_prepared_drop(const struct ctl_state *st);

/**
 * A write that changes nothing (a PATCH to what the table says, a rollback
 * to the current generation), answered as ctl_state_apply() answers the
 * current document again: the same checks first (an unsaved generation's
 * record retried, @expected, a pending generation), and the operator's
 * table then counts as chosen (no longer seeded). 0, or -1 with @e filled.
 */
int64_t ctl_state_apply_noop(struct ctl_state *st, int64_t expected, struct fwd_err *e);

/**
 * The writer's @expected generation (-1: none given) against the current
 * one: FWD_R_STALE_GENERATION in @e when it is not. Every write that takes
 * expected_generation asks this before it validates its change: a writer
 * at a stale generation hears that, not what its change would break in a
 * table it has not read. Called as a write. @return 0, or -1 with @e.
 */
int ctl_state_check_expected(const struct ctl_state *st, int64_t expected, struct fwd_err *e);

/**
 * Make @doc the new generation.
 * @param expected  the generation the writer based its change on, or -1
 * @param push      0: record without pushing (start-up, no dataplane yet)
 * @return the new generation id (> 0); 0 when @doc is the current content
 *         (no-op); or -1 with @e filled and nothing changed
 */
int64_t ctl_state_apply(struct ctl_state *st, const char *doc, size_t len, const char *author,
			const char *comment, int64_t expected, int push, struct fwd_err *e);

/**
 * Like ctl_state_apply(), for the automatic revert of commit-confirm: when
 * the document or its record cannot be written (full or read-only disk),
 * regionfwd still runs it and regiond holds it as current, with
 * st->unsaved_id set until ctl_state_persist_unsaved() writes it.
 * @return as ctl_state_apply(); fails only when regionfwd does not run it.
 */
int64_t ctl_state_revert(struct ctl_state *st, const char *doc, size_t len, const char *comment,
			 struct fwd_err *e);

/** Write the unsaved generation, if any (document, then history).
 *  @return 0 (nothing left unsaved), or the error with FWD_R_PERSIST_FAILED. */
int ctl_state_persist_unsaved(struct ctl_state *st, struct fwd_err *e);

/** Set (or with NULL clear) @owner's alarm; logs only when it changes. */
void ctl_state_alarm(struct ctl_state *st, enum ctl_alarm_owner owner, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** The state directory's filesystem into *@v, read without a lock (call
 *  it without one: on a network filesystem it is a round trip).
 *  @return 0, or -1. */
int ctl_state_stat_disk(const struct ctl_state *st, struct statvfs *v);

/** Raise (or clear) the alarm of a state directory that is no longer the
 *  one regiond opened: removed, or moved away, while regiond runs (every
 *  change then fails to persist, and a restart would begin an empty
 *  history); and, from @disk (ctl_state_stat_disk's, or NULL when it
 *  failed), the alarm of its filesystem read-only, or with less free than
 *  the next change may need (a document or a delta as large as the largest
 *  held, retention's checkpoint of the current table, CTL_DISK_SPARE): it
 *  would be refused persist_failed. Called by regiond's main loop every
 *  second, as a writer. */
void ctl_state_check_dir(struct ctl_state *st, const struct statvfs *disk);

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
 * Ask regionfwd for its status now and keep it as the report reads answer
 * from (dp_report, dp_in_sync, dp_report_ms); pushes nothing.
 * @return 1 when it runs the current generation.
 */
int ctl_state_refresh(struct ctl_state *st);

/**
 * The prefixes of generation @g (the current one, or a listed one) that
 * the routing feed had added, each with its region: read from the nearest
 * gen-N.owned at or before it and carried along the deltas after it.
 * @return 0 with *@out (ctl_ownset_free); 1 when it is not known (a history
 *         written by an older regiond), *@out NULL; -1 with @e
 */
struct ctl_ownset;
int ctl_state_owned(const struct ctl_state *st, const struct ctl_gen *g, struct ctl_ownset **out,
		    struct fwd_err *e);

/**
 * The current generation's owned set is not known (ctl_state_owned: 1): the
 * routing feed, which knows what it owns now, gives it (@s, reduced to what
 * the table holds in those regions), written as gen-N.owned with the
 * history. Called as a write. @return 0 (also when it was known), or -1 with @e.
 */
int ctl_state_own_bootstrap(struct ctl_state *st, const struct ctl_ownset *s, struct fwd_err *e);

/**
 * The users table @t, following the current one, hands out of their
 * residency (ctl_traffic_handovers), the prefixes the BGP feed gives back
 * left out: what a write of @t answers as residency_handovers, and
 * validate too. NULL when none. New reference.
 */
json_t *ctl_state_handovers(const struct ctl_state *st, const struct fwd_table *t);

/** History as JSON, newest first (no documents): each generation's kind,
 *  "document" or "delta" (with its parent and counts). */
json_t *ctl_state_history(const struct ctl_state *st);

#endif /* CTL_STATE_H */
