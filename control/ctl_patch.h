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
#include <stddef.h>
#include <stdint.h>

#include "fwd_err.h"

/* Where the patched model's new elements came from: each policy and prefix
 * a change added, by its node in the model, and each policy the table had,
 * by its index there. Filled by ctl_patch_apply(); read by
 * ctl_patch_name_source(). */
struct ctl_patch_origin {
	const json_t *node;
	int32_t change; /* changes[change], or -1: the table's own policy */
	int32_t item; /* prefixes[item] of the change, the table's policy index, or -1 */
};

struct ctl_patch_src {
	struct ctl_patch_origin *o;
	size_t n, cap;
};

/**
 * Apply every change of @changes (a JSON array of {"op": ...} objects) to
 * @model, in order, noting in @src (zeroed by the caller, NULL-safe) where
 * added elements came from. @return 0, or a negative errno with @e naming the
 * change (changes[i]) and why: FWD_R_BAD_REQUEST (malformed change, unknown
 * op) or FWD_R_INVALID_CHANGE (it names something the table does not have).
 * A region's prefixes are a set: adding one it holds adds nothing, one
 * another region holds, a removal of one it lacks and a prefix named twice
 * in a change are refused as changes[i].prefixes[j].
 * @model is then partly changed: callers discard it.
 */
int ctl_patch_apply(json_t *model, json_t *changes, struct ctl_patch_src *src, struct fwd_err *e);

/**
 * Each change's shape, as the request's (400 bad_request): an object with
 * a known 'op' and only its fields; nothing about the table. Checked before
 * the generation is compared, so a malformed body is said first, as for
 * every write. @return 0, or -EINVAL with @e.
 */
int ctl_patch_check(json_t *changes, struct fwd_err *e);

/**
 * A validation error of the patched @model, as the client wrote it: a path
 * inside a policy or prefix a change added becomes that change's
 * ("policies[11].region" -> "changes[0].policy.region"), a path inside one
 * of the table's policies names its index in the table (a removal before it
 * shifts the model's), and the error's file is "" (the patched table is no
 * file the client sent; other paths keep the model's names, which are the
 * document's).
 */
void ctl_patch_name_source(const struct ctl_patch_src *src, const json_t *model, struct fwd_err *e);

void ctl_patch_src_free(struct ctl_patch_src *src);

#endif /* CTL_PATCH_H */
