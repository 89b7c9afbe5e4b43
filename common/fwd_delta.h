/*
 * fwd_delta.h - a batch of prefix changes to the regions of a table: the
 * unit of an incremental generation (docs/api.md, prefix deltas).
 *
 * A delta adds prefixes to regions and removes prefixes from them; nothing
 * else of the table changes, so the classifier, links, content rules and
 * counters of a generation carry over to the next one and only the FIBs
 * change. regiond validates a delta against its current table with
 * fwd_delta_apply() and sends regionfwd the effective changes (fwd_delta_pack:
 * no-ops removed, sorted), which regionfwd checks again with the same
 * function against the table it runs: both sides refuse and accept alike.
 *
 * Semantics of one batch, all or nothing:
 * - add P to R: P must not be held by another region ("prefix P is held by
 *   region 'S'"); held by R already, it is a no-op (retries are idempotent).
 * - remove P from R: R must hold P ("prefix P is not in region 'R'").
 * - a prefix named twice in one batch is refused (the order would matter).
 * - residency: a prefix of region B may not lie inside a prefix of a region A
 *   that a residency rule protects when B's policy for a protected service
 *   takes a link the rule does not allow (fwd_residency_check_nesting): that
 *   would carve A's protected users out to another region's links.
 * Every refusal names the change (changes[i]), the prefix and the reason.
 *
 * Identity: a generation made by a delta is named by the chain hash
 * fwd_delta_hash(base generation's hash, packed changes), computed alike on
 * both sides, so "does regionfwd run what regiond holds" stays one
 * comparison of hashes.
 *
 * DPDK-free: regiond, regionfwd and the unit tests share it.
 */
#ifndef FWD_DELTA_H
#define FWD_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_err.h"
#include "fwd_table.h"

enum fwd_delta_kind {
	FWD_DELTA_ADD = 1,
	FWD_DELTA_REMOVE = 2,
};

struct fwd_delta_op {
	uint8_t kind; /* enum fwd_delta_kind */
	uint8_t family; /* 4 or 6 */
	uint8_t len; /* prefix length */
	uint16_t region; /* region id in the table the delta applies to (never 0) */
	uint8_t addr[16]; /* network order, host bits zero; IPv4 in addr[0..3] */
	uint32_t index; /* position in the request: errors name changes[index] */
};

#define FWD_DELTA_PATH_MAX 48

struct fwd_delta {
	uint32_t n, cap;
	struct fwd_delta_op *ops;
	/* Per change, how errors name it ("changes[2].add[17]"): kept only
	 * when fwd_delta_add_text() was given paths; else "changes[i]". */
	char (*paths)[FWD_DELTA_PATH_MAX];
};

/* What fwd_delta_apply() did. */
struct fwd_delta_stats {
	uint32_t added4, added6, removed4, removed6;
	uint32_t unchanged; /* adds of prefixes their region already held */
};

/** Free the ops of @d (NULL-safe) and zero it. */
void fwd_delta_clear(struct fwd_delta *d);

/**
 * Append one change: @prefix is "ADDRESS/LENGTH" text (host bits zero),
 * @region a region id of the table it will apply to. @path names the change
 * in errors ("changes[3].prefixes[17]").
 * @return 0, -EINVAL with @e (FWD_R_INVALID_DELTA) for a malformed prefix,
 *         -ENOMEM
 */
int fwd_delta_add_text(struct fwd_delta *d, enum fwd_delta_kind kind, uint16_t region,
		       const char *prefix, const char *path, struct fwd_err *e);

/** Append one change given in binary (@addr network order, 4 or 16 bytes). */
int fwd_delta_add_bin(struct fwd_delta *d, enum fwd_delta_kind kind, uint16_t region, int family,
		      const uint8_t *addr, uint8_t len, struct fwd_err *e);

/**
 * Check @d against table @t and make the table it produces.
 * @param out       the new table (fwd_table_free), sharing nothing with @t;
 *                  NULL when every change is a no-op (then 0 is returned)
 * @param effective when not NULL, receives the changes that do something,
 *                  sorted (IPv4 first, by address, then length): what
 *                  fwd_delta_pack() sends and fwd_delta_hash() names
 * @return 0, or -errno with @e: FWD_R_INVALID_DELTA (unknown region id,
 *         held elsewhere, absent, twice), FWD_R_RESIDENCY_VIOLATION, or
 *         FWD_R_INTERNAL (out of memory); @t is never changed
 */
int fwd_delta_apply(const struct fwd_table *t, const struct fwd_delta *d, struct fwd_table **out,
		    struct fwd_delta *effective, struct fwd_delta_stats *stats, struct fwd_err *e);

struct fwd_fib4;
struct fwd_fib6;

/**
 * Change FIBs that mirror the table before @eff (fwd_delta_apply's
 * @effective: sorted, a move's removal right before its add) into FIBs of
 * @t, the table after it: each changed prefix's range rewritten from @t
 * (fwd_fib4_update, fwd_fib6_update), a move as one change of its region.
 * What regionfwd's standby gets, and the fuzzers check.
 * @return 0, or -errno (-ENOMEM, -EINVAL): the FIBs are then partly changed
 *         and only fit for freeing
 */
int fwd_delta_update_fibs(const struct fwd_delta *eff, const struct fwd_table *t,
			  struct fwd_fib4 *f4, struct fwd_fib6 *f6);

/** Serialize @d (as fwd_delta_apply's @effective) for the control channel and
 *  history files: 24 bytes per change. @return malloc'd bytes, or NULL. */
uint8_t *fwd_delta_pack(const struct fwd_delta *d, size_t *len);

/** The inverse; refuses a length that is not whole records, unknown kinds,
 *  families or lengths, and host bits: -EINVAL with @e. */
int fwd_delta_unpack(const uint8_t *buf, size_t len, struct fwd_delta *d, struct fwd_err *e);

/** The hash of the generation that @packed (fwd_delta_pack) makes from the
 *  generation whose hash is @base. */
uint64_t fwd_delta_hash(uint64_t base, const uint8_t *packed, size_t len);

/** "10.1.0.0/16" or "2001:db8::/32" of change @op, into @buf. */
const char *fwd_delta_prefix_str(const struct fwd_delta_op *op, char *buf, size_t len);

/** A deep copy of @t, with its region prefixes replaced by @p4/@p6 (taken
 *  over; sorted as validation leaves them). NULL on allocation failure
 *  (@p4/@p6 are freed then too). */
struct fwd_table *fwd_table_with_prefixes(const struct fwd_table *t, struct fwd_prefix4 *p4,
					  uint32_t n4, struct fwd_prefix6 *p6, uint32_t n6);

#endif /* FWD_DELTA_H */
