/*
 * ctl_patch.h - the changes of PATCH /v1/table (docs/api.md) applied to a
 * table model (ctl_model.h): JSON in, JSON out, errors as struct fwd_err.
 *
 * It only edits the model; the result goes through the same validation,
 * residency check and commit as a whole document (ctl_state_apply), so a
 * change cannot produce a table a PUT could not. Knows nothing of HTTP.
 */
#ifndef CTL_PATCH_H
#define CTL_PATCH_H

#include <jansson.h>

#include "fwd_err.h"

/**
 * Apply every change of @changes (a JSON array of {"op": ...} objects) to
 * @model, in order. @return 0, or a negative errno with @e naming the change
 * (changes[i]) and why: FWD_R_BAD_REQUEST (malformed change, unknown op) or
 * FWD_R_INVALID_CHANGE (it names something the table does not have). @model
 * is then partly changed: callers discard it.
 */
int ctl_patch_apply(json_t *model, json_t *changes, struct fwd_err *e);

#endif /* CTL_PATCH_H */
