/*
 * fwd_fib4.h - the IPv4 FIB of a table: DIR-24-8 (a 2^24-entry table indexed
 * by the top 24 bits, and groups of 256 entries for the /24s that hold a
 * longer prefix), next hop = region id, built and changed from the table's
 * sorted prefixes instead of from a RIB.
 *
 * Why not rte_fib: DPDK's DIR-24-8 keeps a RIB beside the tables and every
 * rte_fib_add walks it several times (exact lookup, covered prefixes,
 * parent), a chain of dependent cache misses through a million 192-byte
 * nodes: 2-3 us a prefix on a 1M table, most of a delta's time, and the RIB
 * alone is ~190 MiB a copy. The table already holds what the RIB answers:
 * its prefixes sorted by address then length put a prefix right before the
 * prefixes inside it. So:
 *   - a build is one sweep over the sorted prefixes with a stack of the
 *     enclosing ones, writing each entry once (the gaps between prefixes
 *     take the innermost enclosing region);
 *   - a change of prefix P rewrites P's range from the table after the
 *     change: the prefixes inside P (the run after P's position, found by
 *     galloping from the previous change's position, changes being sorted),
 *     with P's region, or for a removed P the region of the longest prefix
 *     still covering it (fwd_fib4_longest);
 *   - each group remembers the region its /24 has from prefixes of /24 or
 *     shorter, so a change longer than /24 rebuilds one group alone.
 * A batch's changes go through in the table's order (a prefix before the
 * prefixes inside it): a change longer than /24 takes its /24's region from
 * the FIB as the changes before it left it. Then the FIB equals a fresh
 * build of the table after the batch, groups included.
 *
 * Concurrency: lookups may run on any number of threads at once; a build or
 * change must not run beside lookups of the same FIB (regionfwd changes only
 * FIBs no worker can see: a standby, then publishes it under RCU).
 *
 * Memory: the 64 MiB tbl24 and the groups come from fwd_hugemap (THP). A
 * FIB freed hands its mappings back for the next build (fwd_hugemap_recycle,
 * within the limit the dataplane sets), which then writes every entry; on
 * fresh memory, zero until touched, region 0 (FWD_REGION_UNKNOWN) needs no
 * write, so a small table touches little. Groups grow with mremap, so a
 * change never fails for want of room short of the system's memory.
 *
 * DPDK-free: the dataplane, the unit tests and the fuzzers share it.
 */
#ifndef FWD_FIB4_H
#define FWD_FIB4_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_table.h"

#define FWD_FIB4_EXT 0x80000000u /* tbl24 entry: the rest is a group number */

/* Read directly only by the inline lookups below. */
struct fwd_fib4 {
	uint32_t *tbl24; /* 1 << 24 entries: a region id, or FWD_FIB4_EXT | group */
	uint32_t *tbl8; /* cap groups of 256 region ids */
	uint32_t *base; /* per group: its /24's region from prefixes of /24 or shorter */
	uint32_t *free; /* numbers of free groups below top, a stack */
	uint32_t nfree, top, cap, groups; /* groups: in use */
	uint32_t nlen[33]; /* the table's prefixes per length (fwd_fib4_longest skips the empty) */
	size_t tbl24_size, tbl8_size; /* the mappings' lengths */
	uint8_t dirty24; /* the tbl24 came with old contents (fwd_hugemap_reuse) */
};

/** An empty FIB (every address FWD_REGION_UNKNOWN) with room for @groups
 *  groups before it grows. NULL with errno. */
struct fwd_fib4 *fwd_fib4_create(uint32_t groups);

void fwd_fib4_free(struct fwd_fib4 *f);

/** Groups a build of @p needs: the distinct /24s holding a prefix longer than
 *  /24. @p sorted as fwd_table leaves it. */
uint32_t fwd_fib4_groups_needed(const struct fwd_prefix4 *p, uint32_t n);

/**
 * Fill a FIB just made by fwd_fib4_create() with the @n prefixes of @p
 * (sorted by address then length, no duplicates, as fwd_table leaves them).
 * @return 0, or -ENOMEM (the FIB is then only fit for fwd_fib4_free)
 */
int fwd_fib4_build(struct fwd_fib4 *f, const struct fwd_prefix4 *p, uint32_t n);

/** Before changes: count prefix length @len in or out of the table (@d +1 for
 *  an added prefix, -1 for a removed one; a moved one is neither). Count every
 *  change of a batch before the first fwd_fib4_update() of it. */
void fwd_fib4_count(struct fwd_fib4 *f, uint8_t len, int d);

/**
 * Make the FIB hold @p (the table after the change, sorted as above) over
 * the range of @addr/@len, which was added, removed or given another region.
 * @hint: in: a position in @p at or before @addr/@len's (0 will do; the
 * changes of a sorted batch pass back what the last one left); out: its
 * position. The FIB mirrors @p once every changed prefix went through here,
 * in sorted order.
 * @return 0, or -ENOMEM (the FIB is then only fit for fwd_fib4_free)
 */
int fwd_fib4_update(struct fwd_fib4 *f, const struct fwd_prefix4 *p, uint32_t n, uint32_t addr,
		    uint8_t len, uint32_t *hint);

/**
 * The longest prefix of @p (sorted as above) that holds @addr/@len, itself
 * included: the index into @p, or -1. @f may be NULL; when given, its
 * length counts let the search skip lengths the table has none of.
 * What explain names, and a removed prefix's cover.
 */
int64_t fwd_fib4_longest(const struct fwd_fib4 *f, const struct fwd_prefix4 *p, uint32_t n,
			 uint32_t addr, uint8_t len);

/** Bytes mapped for @f: the tbl24 and the groups' room. */
size_t fwd_fib4_bytes(const struct fwd_fib4 *f);

/** The region of @ip (host order). */
static inline uint32_t fwd_fib4_lookup(const struct fwd_fib4 *f, uint32_t ip)
{
	uint32_t e = f->tbl24[ip >> 8];

	if (e & FWD_FIB4_EXT)
		e = f->tbl8[(size_t)(e & ~FWD_FIB4_EXT) << 8 | (ip & 0xff)];
	return e;
}

/** The regions of @n addresses (host order). The tbl24 entries are
 *  prefetched 8 ahead: each is a miss on a 64 MiB table, and they are
 *  independent, so the misses overlap. */
static inline void fwd_fib4_lookup_bulk(const struct fwd_fib4 *f, const uint32_t *ip, uint64_t *nh,
					unsigned n)
{
	enum { AHEAD = 8 };
	size_t i; /* as wide as the addresses it forms (benchmarks.md, round 9) */

	for (i = 0; i < n && i < AHEAD; i++)
		__builtin_prefetch(&f->tbl24[ip[i] >> 8]);
	for (i = 0; i + AHEAD < n; i++) {
		__builtin_prefetch(&f->tbl24[ip[i + AHEAD] >> 8]);
		nh[i] = fwd_fib4_lookup(f, ip[i]);
	}
	for (; i < n; i++)
		nh[i] = fwd_fib4_lookup(f, ip[i]);
}

#endif /* FWD_FIB4_H */
