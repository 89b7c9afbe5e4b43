/*
 * ctl_content.h - regiond's side of content rules: compile a table's rules
 * (fwd_hs, in a limited child) as part of validation, and ship the
 * serialized databases with the push (binary, in the PushRequest) so
 * regionfwd only deserializes.
 *
 * A small cache keyed by fwd_content_hash() holds the databases of the
 * last few rule sets: validation compiles, the push that follows (and a
 * re-push after a regionfwd restart, or a rollback to a recent generation)
 * reuses the same bytes. The cache is read and changed under regiond's
 * state lock, like the rest of its state; ctl_content_prepare() compiles
 * outside it, so that no lock is held through a compile (a read of a
 * hostile table held the main loop 30 s).
 */
#ifndef CTL_CONTENT_H
#define CTL_CONTENT_H

#include <pthread.h>

#include "ctl_state.h"
#include "fwd_hs.h"
#include "fwd_table.h"

/** The CPU seconds a compile may take before its rules are refused as
 *  pattern_too_expensive (default 30); call before any thread starts. */
void ctl_content_set_cpu_seconds(unsigned seconds);

/** Compile @t's content rules; 0, or -errno with @e (422 invalid_pattern / pattern_too_expensive). */
int ctl_content_validate(const struct fwd_table *t, struct fwd_err *e);

/**
 * Without the state lock: compile @t's content rules into the cache (or
 * remember their refusal for a minute), and keep this thread's own copy
 * of the result, so that the validate under the lock that follows finds
 * it whatever else the cache took meanwhile. One compile at a time per
 * kind (@writer or not); @state_lock (NULL: none) is taken only to read
 * and fill the cache. @t NULL: drop this thread's copy.
 */
void ctl_content_prepare(const struct fwd_table *t, pthread_mutex_t *state_lock, int writer);

/**
 * The compiled databases of @t's content rules, to ship with the push
 * (borrowed from the cache: valid until the next compile of a different
 * rule set). NULL when @t has no content rules, or compiling failed:
 * regionfwd then compiles itself and reports any error.
 */
const struct fwd_hs_dbs *ctl_content_dbs(const struct fwd_table *t);

/** The content compiler as regiond's "content" extension (ctl_ext.h):
 *  validation compiles, the push ships the databases. */
struct ctl_ext ctl_content_ext(void);

/** Drop the cache (at exit). */
void ctl_content_cleanup(void);

#endif /* CTL_CONTENT_H */
