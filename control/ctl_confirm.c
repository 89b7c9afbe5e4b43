#include "ctl_confirm.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

int ctl_confirm_none_pending(const struct ctl_state *st, struct fwd_err *e)
{
	if (!st->confirm_gen)
		return 0;
	return fwd_err_fail(e, FWD_R_CONFIRM_PENDING, NULL, 0, "",
			    "generation %" PRIu64 " awaits confirmation (reverts in %" PRId64
			    " s); confirm it first",
			    st->confirm_gen, st->confirm_deadline - (int64_t)time(NULL));
}

int ctl_confirm_arm(struct ctl_state *st, uint64_t gen, uint64_t revert_to, int64_t seconds,
		    struct fwd_err *e)
{
	st->confirm_gen = gen;
	st->revert_to = revert_to;
	st->confirm_deadline = (int64_t)time(NULL) + seconds;
	return ctl_state_save(st, e);
}

uint64_t ctl_confirm_accept(struct ctl_state *st, struct fwd_err *e)
{
	uint64_t gen = st->confirm_gen;
	struct fwd_err ignored;

	if (!gen) {
		fwd_err_fail(e, FWD_R_NOTHING_TO_CONFIRM, NULL, 0, "",
			     "no apply awaits confirmation");
		return 0;
	}
	st->confirm_gen = 0;
	ctl_state_save(st, &ignored);
	return gen;
}

void ctl_confirm_tick(struct ctl_state *st)
{
	const struct ctl_gen *to;
	struct fwd_err e;
	char c[200];

	if (!st->confirm_gen || (int64_t)time(NULL) < st->confirm_deadline)
		return;
	to = ctl_state_find(st, st->revert_to);
	snprintf(c, sizeof(c), "automatic revert: generation %" PRIu64 " was not confirmed in time",
		 st->confirm_gen);
	/* ctl_state_apply() appends to the history (realloc): 'to' points into
	 * it, so nothing may read through it after the call. */
	if (to && ctl_state_apply(st, to->doc, to->len, "regiond", c, -1, 1, &e) < 0) {
		fprintf(stderr,
			"regiond: revert to generation %" PRIu64 " failed: %s (will retry)\n",
			st->revert_to, e.reason);
		return; /* try again next tick, e.g. when regionfwd is back */
	}
	fprintf(stderr, "regiond: %s; back on the table of generation %" PRIu64 "\n", c,
		st->revert_to);
	st->confirm_gen = 0;
	ctl_state_save(st, &e);
}

json_t *ctl_confirm_json(const struct ctl_state *st)
{
	if (!st->confirm_gen)
		return json_null();
	return json_pack("{s:I, s:I, s:I}", "generation", (json_int_t)st->confirm_gen, "revert_to",
			 (json_int_t)st->revert_to, "deadline", (json_int_t)st->confirm_deadline);
}
