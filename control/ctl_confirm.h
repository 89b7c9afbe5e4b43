/*
 * ctl_confirm.h - commit-confirm: a generation applied with a confirmation
 * timeout stays only if someone confirms it before the deadline; otherwise
 * regiond reverts to the generation it replaced (docs/api.md, PUT with
 * confirm_timeout_s). While one awaits confirmation, other writes are
 * refused (confirm_pending), so the revert target stays what the operator
 * saw. The pending record lives in struct ctl_state and is persisted with
 * the history (ctl_state_save). Call with the state lock held.
 */
#ifndef CTL_CONFIRM_H
#define CTL_CONFIRM_H

#include <jansson.h>

#include "ctl_state.h"

/** 0 when nothing awaits confirmation; else FWD_R_CONFIRM_PENDING in @e. */
int ctl_confirm_none_pending(const struct ctl_state *st, struct fwd_err *e);

/** Generation @gen (which replaces @revert_to) must be confirmed within
 *  @seconds, in memory: recorded by the save of the change's write-ahead
 *  and commit records (ctl_state_apply() with confirm_next_s). */
void ctl_confirm_arm(struct ctl_state *st, uint64_t gen, uint64_t revert_to, int64_t seconds);

/** Keep the pending generation; with @want (0: whichever is pending) only
 *  if it is that one. @return its id, or 0 with FWD_R_NOTHING_TO_CONFIRM in
 *  @e (naming both generations when @want is not the pending one). A @want
 *  that is the last generation confirmed returns @want with *@already set:
 *  a retry, answered as done. */
uint64_t ctl_confirm_accept(struct ctl_state *st, uint64_t want, int *already, struct fwd_err *e);

/** Derive confirm_due_ms (monotonic) from confirm_deadline (wall seconds):
 *  when armed, and when the record is loaded from disk. */
void ctl_confirm_set_due(struct ctl_state *st);

/** Whether a pending confirmation's deadline has passed (monotonic). */
int ctl_confirm_due(const struct ctl_state *st);

/** Whole seconds until the revert, 0 when due. */
int64_t ctl_confirm_left_s(const struct ctl_state *st);

/** The timer (regiond's main loop): past the deadline, revert. */
void ctl_confirm_tick(struct ctl_state *st);

/** {generation, revert_to, deadline}, or JSON null when nothing is pending. */
json_t *ctl_confirm_json(const struct ctl_state *st);

#endif /* CTL_CONFIRM_H */
