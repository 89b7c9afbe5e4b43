#include "ctl_confirm.h"
#include "fwd_log.h"
#include "fwd_clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int ctl_confirm_none_pending(const struct ctl_state *st, struct fwd_err *e)
{
	if (!st->confirm_gen)
		return 0;
	return fwd_err_fail(e, FWD_R_CONFIRM_PENDING, NULL, 0, "",
			    "generation %" PRIu64 " awaits confirmation (reverts in %" PRId64
			    " s); confirm it first",
			    st->confirm_gen, ctl_confirm_left_s(st));
}

/* What is left of the deadline by the wall clock now: reverted once the
 * deadline's whole second has passed, at wall deadline + 1 s. */
static int64_t left_by_wall_ms(const struct ctl_state *st)
{
	const int64_t wall_ms = fwd_wall_ms();
	/* A deadline from disk is clamped to what an apply can ask (86400 s
	 * from now): no overflow for a damaged record, no revert put off past
	 * what anyone asked for by a clock set back meanwhile. */
	int64_t left_ms;

	if (st->confirm_deadline > wall_ms / 1000 + 86400 + 1)
		left_ms = (int64_t)(86400 + 1) * 1000;
	else if (st->confirm_deadline < wall_ms / 1000 - 1)
		left_ms = 0;
	else
		left_ms = (st->confirm_deadline + 1) * 1000 - wall_ms;
	return left_ms < 0 ? 0 : left_ms;
}

void ctl_confirm_set_due(struct ctl_state *st)
{
	st->confirm_due_ms = fwd_mono_ms() + left_by_wall_ms(st);
}

/* When the revert is due (monotonic ms). Armed by this regiond, on the
 * monotonic clock alone: a wall clock stepped meanwhile changes nothing.
 * Loaded from disk at a restart, the deadline's only reference is the wall
 * clock, and it follows it: fixed at the restart, a clock that was wrong
 * then (a box booted before NTP set it) kept its error after it was set
 * right, the revert two hours late and a confirm after confirm_by taken (a
 * hostile probe). */
static int64_t due_ms(const struct ctl_state *st)
{
	return st->confirm_due_wall ? fwd_mono_ms() + left_by_wall_ms(st) : st->confirm_due_ms;
}

int ctl_confirm_due(const struct ctl_state *st)
{
	return st->confirm_gen && fwd_mono_ms() >= due_ms(st);
}

int64_t ctl_confirm_left_s(const struct ctl_state *st)
{
	/* Whole seconds, rounded down: what an apply of S seconds says at
	 * once is S (the revert comes up to a second later, never sooner). */
	int64_t left = due_ms(st) - fwd_mono_ms();

	return left > 0 ? left / 1000 : 0;
}

void ctl_confirm_arm(struct ctl_state *st, uint64_t gen, uint64_t revert_to, int64_t seconds)
{
	st->confirm_gen = gen;
	st->revert_to = revert_to;
	st->confirm_deadline = (int64_t)time(NULL) + seconds;
	st->confirm_due_wall = 0;
	ctl_confirm_set_due(st);
}

/* What became of generation @gen, which does not await confirmation: a
 * clause for the refusal, from the history (an automatic revert is the
 * generation right after the one it reverts: nothing else is written
 * while one awaits confirmation). */
static void fate(const struct ctl_state *st, uint64_t gen, char *out, size_t len)
{
	char c[64];

	snprintf(c, sizeof(c), "automatic revert: generation %" PRIu64 " ", gen);
	for (unsigned i = 0; i < st->nhist; i++) {
		if (st->hist[i].id != gen)
			continue;
		if (i + 1 < st->nhist && strncmp(st->hist[i + 1].comment, c, strlen(c)) == 0)
			snprintf(out, len,
				 "%" PRIu64 " was reverted at its deadline, by generation %" PRIu64,
				 gen, st->hist[i + 1].id);
		else
			snprintf(out, len, "%" PRIu64 " does not await confirmation", gen);
		return;
	}
	if (gen >= st->next_id)
		snprintf(out, len, "there is no generation %" PRIu64 " yet", gen);
	else
		snprintf(out, len, "generation %" PRIu64 " is not in the history", gen);
}

uint64_t ctl_confirm_accept(struct ctl_state *st, uint64_t want, int *already, struct fwd_err *e)
{
	uint64_t gen = st->confirm_gen, last = st->confirmed_gen;

	*already = 0;
	/* A confirm that names its generation confirms that one or nothing:
	 * a late confirm of a change reverted meanwhile must not keep another
	 * client's change, and a retried one is answered, not refused. */
	if (want && want != gen && want == last) {
		*already = 1;
		return want;
	}
	if (want && want != gen) {
		char f[128];

		fate(st, want, f, sizeof(f));
		if (gen)
			fwd_err_fail(e, FWD_R_NOTHING_TO_CONFIRM, NULL, 0, "generation",
				     "generation %" PRIu64 " awaits confirmation, not %" PRIu64
				     " (%s)",
				     gen, want, f);
		else
			fwd_err_fail(e, FWD_R_NOTHING_TO_CONFIRM, NULL, 0, "generation",
				     "no apply awaits confirmation (%s)", f);
		return 0;
	}
	if (!gen) {
		fwd_err_fail(e, FWD_R_NOTHING_TO_CONFIRM, NULL, 0, "",
			     "no apply awaits confirmation");
		return 0;
	}
	/* Past the deadline (confirm_by was the last second a confirmation
	 * is taken) the change is given up: its revert is due, or retried
	 * while regionfwd does not answer. Taken then, a confirm kept the
	 * change the deadline had given up, and the failed revert's alarm
	 * stayed up until some later change (a soak, regionfwd killed across
	 * the deadline). Held back (another regiond's table runs), the revert
	 * waits and never ran: a confirm is then the operator's way out, the
	 * change kept and a table applied next taking regionfwd back; refused,
	 * every write was refused as confirm_pending for as long as the other
	 * regiond ran. */
	if (ctl_confirm_due(st) && !st->held_back) {
		fwd_err_fail(e, FWD_R_NOTHING_TO_CONFIRM, NULL, 0, want ? "generation" : "",
			     "generation %" PRIu64 " was not confirmed in time (by %" PRId64
			     "): its revert to generation %" PRIu64 " is %s; nothing changed",
			     gen, st->confirm_deadline, st->revert_to,
			     st->revert_tried_ms ? "retried every second until regionfwd answers"
						 : "due");
		return 0;
	}
	/* Armed with a write-ahead record a crash left undecided: the change
	 * may yet be dropped, and "kept" would be a promise about a
	 * generation that never becomes current (a review). */
	if (st->has_pending && st->pending.id == gen) {
		fwd_err_fail(e, FWD_R_DATAPLANE_UNAVAILABLE, NULL, 0, "",
			     "generation %" PRIu64 " was being applied when regiond stopped; it is "
			     "resolved once regionfwd answers; confirm it then",
			     gen);
		return 0;
	}
	/* A confirmation only the memory knows would be undone by a restart
	 * (the record on disk still says "revert at the deadline"): it is
	 * durable or it is refused, and the deadline still holds. */
	st->confirm_gen = 0;
	st->confirmed_gen = gen;
	if (ctl_state_save(st, e)) {
		st->confirm_gen = gen;
		st->confirmed_gen = last;
		snprintf(e->reason + strlen(e->reason), sizeof(e->reason) - strlen(e->reason),
			 "; generation %" PRIu64 " is not confirmed and still reverts at its "
			 "deadline",
			 gen);
		return 0;
	}
	{
		const struct ctl_gen *g = ctl_state_find(st, gen);
		struct fwd_log_change c = {
			.event = "confirmed",
			.generation = gen,
			.author = g ? g->author : NULL,
			.client = st->who[0] ? st->who : "regiond",
			.request = st->request[0] ? st->request : NULL,
			.reason = "kept; it no longer reverts",
		};

		fwd_log_change(&c);
	}
	return gen;
}

/* Past the deadline the revert happens, whatever the disk says: to the
 * dataplane first (ctl_state_revert runs it even when the disk refuses its
 * record), to disk when it can. What cannot be done yet is one alarm in
 * status and one log line, retried quietly every tick, not a line a tick. */
void ctl_confirm_tick(struct ctl_state *st)
{
	const struct ctl_gen *to, *cur;
	uint64_t gen = st->confirm_gen, target = st->revert_to;
	struct fwd_err e;
	const char *doc;
	char c[200];
	size_t len;
	int64_t id;

	if (st->unsaved_id) {
		/* A revert's alarm is the table's; a change's unwritten record
		 * has its own, which persisting clears. */
		const int revert = st->unsaved_revert;

		if (ctl_state_persist_unsaved(st, &e) == 0 && !st->confirm_gen && revert)
			ctl_state_alarm(st, CTL_ALARM_TABLE, NULL); /* the revert is on disk now */
	}
	/* The deadline is a whole second, armed at now + S: up to and through
	 * that second the change may still be confirmed, so it never reverts
	 * before S seconds have passed (at most S + 1 and a tick). */
	if (!gen)
		return;
	/* Left pending by a crash: reverted once it is resolved as current
	 * (a dropped one takes its confirmation with it). */
	if (st->has_pending && st->pending.id == gen)
		return;
	/* Another generation is current since (taken on from regionfwd at a
	 * start: most often this very revert, which a full disk kept off the
	 * record; or a state directory restored from a backup taken inside
	 * the window, older than what regionfwd runs): nothing of @gen runs
	 * to confirm or go back from. With a short --keep the adoption had
	 * pruned the target, and a false alarm ("... stays live; apply the
	 * table you want") stood for good; and until the deadline status said
	 * @gen would revert and every write was refused as confirm_pending
	 * (two probes). Dropped at once, not at the deadline. */
	if ((cur = ctl_state_current(st)) != NULL && cur->id != gen) {
		fwd_log(FWD_LOG_NOTICE,
			"generation %" PRIu64 " awaited confirmation, but generation %" PRIu64
			" runs now: nothing to confirm or revert",
			gen, cur->id);
		st->confirm_gen = 0;
		st->revert_tried_ms = 0;
		/* Its own alarm ("... waits for regionfwd's first answer",
		 * raised before a pending revert was resolved) goes with it;
		 * a held-back table's stays. */
		if (!st->held_back)
			ctl_state_alarm(st, CTL_ALARM_TABLE, NULL);
		if (ctl_state_save(st, &e))
			fwd_log(FWD_LOG_WARNING, "%s (retried with the next change)", e.reason);
		return;
	}
	if (!ctl_confirm_due(st))
		return;
	/* Held back (another regiond's table runs on regionfwd, the alarm
	 * says so): the revert would take regionfwd over from it with no
	 * operator; it waits, due, until an operator's change here takes
	 * regionfwd back (ctl_state.c, refused_while_held_back). */
	if (st->held_back)
		return;
	if (!st->dp_seen) { /* nor before regionfwd's first answer at this start */
		ctl_state_alarm(st, CTL_ALARM_TABLE,
				"generation %" PRIu64
				" was not confirmed in time: its revert to generation %" PRIu64
				" waits for regionfwd's first answer since regiond started",
				gen, target);
		return;
	}
	/* A failed revert (regionfwd not answering) spends a generation id
	 * per try: once a second, not at every 200 ms tick. */
	if (st->revert_tried_ms && fwd_mono_ms() - st->revert_tried_ms < 1000)
		return;
	to = ctl_state_find(st, target);
	if (to == NULL) {
		/* Nothing to go back to (the history was edited): said, never
		 * reported as reverted. The generation stays; writes reopen so
		 * the operator can apply the table they want. */
		ctl_state_alarm(st, CTL_ALARM_TABLE,
				"generation %" PRIu64
				" was not confirmed in time but generation %" PRIu64
				" to revert to is not in the history: generation %" PRIu64
				" stays live; apply the table you want",
				gen, target, gen);
		st->confirm_gen = 0;
		ctl_state_save(st, &e);
		return;
	}
	snprintf(c, sizeof(c), "automatic revert: generation %" PRIu64 " was not confirmed in time",
		 gen);
	/* ctl_state_revert() appends to the history (realloc): 'to' points into
	 * it, so nothing may read through it after the call. */
	/* A delta generation's document is its table's model, produced here
	 * (the text stays valid through the revert: it is copied first). */
	doc = ctl_state_doc(st, to, &len, &e);
	/* Back to a table that held the feed's prefixes: they are its again. */
	st->rollback_of = target;
	id = doc ? ctl_state_revert(st, doc, len, c, &e) : -1;
	st->rollback_of = 0;
	st->revert_tried_ms = id < 0 ? fwd_mono_ms() : 0;
	if (id >= 0) /* regionfwd just answered: the view shows what now runs */
		ctl_state_refresh(st);
	if (id < 0) {
		ctl_state_alarm(st, CTL_ALARM_TABLE,
				"generation %" PRIu64
				" was not confirmed in time and the revert to "
				"generation %" PRIu64 " failed: %s; retrying every second",
				gen, target, e.reason);
		return; /* e.g. regionfwd unreachable: the next tick tries again */
	}
	st->confirm_gen = 0;
	if (st->unsaved_id && ctl_state_persist_unsaved(st, &e)) {
		ctl_state_alarm(
			st, CTL_ALARM_TABLE,
			"generation %" PRIu64 " was not confirmed in time: regionfwd runs the "
			"table of generation %" PRIu64 " again, but the revert is not recorded "
			"(%s); table changes are refused until it is; retrying",
			gen, target, e.reason);
		return;
	}
	ctl_state_save(st, &e);
	/* the revert itself was logged once, as it was applied */
	ctl_state_alarm(st, CTL_ALARM_TABLE, NULL);
}

json_t *ctl_confirm_json(const struct ctl_state *st)
{
	if (!st->confirm_gen)
		return json_null();
	/* reverts_in_s: on regiond's monotonic clock, true whatever the wall
	 * clocks of regiond (stepped since) and of the reader say. */
	return json_pack("{s:I, s:I, s:I, s:I}", "generation", (json_int_t)st->confirm_gen,
			 "revert_to", (json_int_t)st->revert_to, "deadline",
			 (json_int_t)st->confirm_deadline, "reverts_in_s",
			 (json_int_t)ctl_confirm_left_s(st));
}
