/*
 * fwd_stages.h - where a long operation's time goes: named stages, timed
 * with CLOCK_MONOTONIC and printed as one line ("parse 210.4 ms, validate
 * 95.1 ms, ...") for the log.
 *
 * The operation begins a struct fwd_stages, which becomes its thread's
 * current one; code anywhere below it marks the end of a stage with
 * fwd_stage("name"), a no-op when the thread has no current stages (so the
 * validator marks its stages whoever calls it). Work done on another thread
 * is added by its own time with fwd_stage_add(). A name marked twice adds
 * up. Not for the fast path: a mark costs a clock read.
 */
#ifndef FWD_STAGES_H
#define FWD_STAGES_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_clock.h" /* fwd_mono_ns(), which the users of stages time with */

#define FWD_STAGES_MAX 24

struct fwd_stages {
	uint64_t t0, last; /* CLOCK_MONOTONIC ns: begin, last mark */
	unsigned n;
	struct {
		const char *name; /* static strings only */
		uint64_t ns;
	} s[FWD_STAGES_MAX];
	struct fwd_stages *outer; /* the thread's current stages before these */
};

/** Start @st and make it this thread's current stages (until fwd_stages_end). */
void fwd_stages_begin(struct fwd_stages *st);

/** @st is no longer current; the one current before it is again. */
void fwd_stages_end(struct fwd_stages *st);

/** The time since the current stages' last mark goes to stage @name. */
void fwd_stage(const char *name);

/** Add @ns to stage @name of @st (NULL: the current stages), e.g. another
 *  thread's share; the clock of the last mark is not moved. */
void fwd_stage_add(struct fwd_stages *st, const char *name, uint64_t ns);

/** Stage @name's time so far, 0 when it has none. */
uint64_t fwd_stage_ns(const struct fwd_stages *st, const char *name);

/** Since fwd_stages_begin. */
uint64_t fwd_stages_total_ns(const struct fwd_stages *st);

/** "name 12.3 ms, name 4.0 ms" into @buf; @return @buf. */
const char *fwd_stages_format(const struct fwd_stages *st, char *buf, size_t len);

#endif /* FWD_STAGES_H */
