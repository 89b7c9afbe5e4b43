/*
 * ctl_prefixes.h - the body of POST /v1/prefixes (docs/api.md, prefix
 * deltas) into a struct fwd_delta, and the request's own names for the
 * changes fwd_delta_apply() refuses.
 *
 *   {"expected_generation": 7, "author": "bgp-sync", "comment": "...",
 *    "changes": [{"region": "india", "add": ["10.1.0.0/16"], "remove": [...]}]}
 *
 * The body is read by a scanner of its own rather than into a jansson tree:
 * a batch of 200,000 prefixes costs one pass over the text and the delta's
 * array, not a JSON value, a string and a path per prefix. It is as strict
 * as the API's other bodies (valid JSON and UTF-8, no duplicate or unknown
 * field, every field of its type), and refuses the whole batch at the first
 * problem, naming it: 400 bad_request for the shape ("changes[3].add[2]
 * must be a prefix string"), 422 invalid_delta for a region the table lacks
 * (changes[i].region) or a prefix that is not one, or has host bits
 * (changes[i].add[j], with the prefix).
 */
#ifndef CTL_PREFIXES_H
#define CTL_PREFIXES_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_delta.h"
#include "fwd_err.h"
#include "fwd_table.h"

struct ctl_prefixes_req {
	int64_t expected; /* expected_generation; -1 when not given */
	char author[64]; /* "" when not given */
	char comment[256];
	uint32_t nchanges; /* objects in "changes" */
	/* Every prefix in request order, op i's index being i, each with its
	 * path ("changes[i].add[j]") for fwd_delta_apply()'s refusals;
	 * fwd_delta_clear() it. */
	struct fwd_delta d;
};

/**
 * Read @body (@len bytes) into @q, region names resolved against @t.
 * @return 0, or -EINVAL / -ENOMEM with @e (FWD_R_BAD_REQUEST,
 *         FWD_R_INVALID_DELTA, FWD_R_INTERNAL); @q's delta is then empty
 */
int ctl_prefixes_parse(const char *body, size_t len, const struct fwd_table *t,
		       struct ctl_prefixes_req *q, struct fwd_err *e);

/**
 * An error fwd_delta_apply() gave for a delta ctl_prefixes_parse() read from
 * @body names the change by its op's index ("changes[K]": the K-th prefix
 * of the request): rewrite its path into the request's own terms,
 * "changes[i].add[j]" or "changes[i].remove[j]". Left as it is when it
 * names nothing of the kind.
 */
void ctl_prefixes_locate(const char *body, size_t len, struct fwd_err *e);

/** The "author" of @body into @out ("" when it has none or is not JSON),
 *  without reading the rest into memory: for the log of a refused batch.
 *  @return 1 when the body was read (an object: its author found, or all
 *  of it read without one), 0 when it was not (not JSON, cut short). */
int ctl_prefixes_author(const char *body, size_t len, char *out, size_t cap);

/** The "expected_generation" of @body when it is a non-negative integer,
 *  else -1 (none, or not JSON), without reading the rest into memory: a
 *  batch ctl_prefixes_parse() refused for a change it names is first
 *  checked for a stale generation, as every write is (docs/api.md). */
int64_t ctl_prefixes_expected(const char *body, size_t len);

#endif /* CTL_PREFIXES_H */
