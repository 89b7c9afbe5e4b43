/*
 * fwd_fib6.h - the IPv6 FIB of a table: a multibit trie with a 24-bit first
 * stride and 8-bit strides below (the layout of DPDK's rte_fib6 trie: one
 * 2^24-entry table, then groups of 256 entries, each entry a region id or a
 * link to the group of the next 8 bits), next hop = region id, built and
 * changed from the table's sorted prefixes instead of from a RIB.
 *
 * The same construction as fwd_fib4.h, on more levels:
 *   - a build sweeps the sorted prefixes once per level they reach, with a
 *     stack of the enclosing ones: an entry takes the innermost region
 *     whose prefix ends at or above its level, and an entry with longer
 *     prefixes inside gets a group built from just those;
 *   - a change of prefix P walks down to P's level (making the group of an
 *     entry that had none from the prefixes inside it, P's change
 *     included), rewrites P's entries there from the table after the
 *     change, and frees the groups left with no prefix inside (their entry
 *     takes the region the group was built over again);
 *   - a removed P's entries take the region of the longest prefix still
 *     covering it (fwd_fib6_longest).
 * A batch's changes go through in the table's order, as in fwd_fib4.h (an
 * entry given a group takes its region from the FIB as the changes before
 * it left it). Then the FIB equals a fresh build of the table after the
 * batch, its groups exactly those the build makes.
 *
 * Concurrency and memory: as fwd_fib4.h (lookups on any threads, changes
 * only on a FIB no lookup sees; fwd_hugemap tables that grow).
 *
 * DPDK-free: the dataplane, the unit tests and the fuzzers share it.
 */
#ifndef FWD_FIB6_H
#define FWD_FIB6_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_table.h"

#define FWD_FIB6_EXT 0x80000000u /* entry: the rest is a group number */

/* Read directly only by the inline lookups below. */
struct fwd_fib6 {
	uint32_t *tbl24; /* 1 << 24 entries: bits 0-23 */
	uint32_t *tbl8; /* cap groups of 256 entries: 8 more bits each */
	uint32_t *base; /* per group: the region it was built over (its entry's own) */
	uint32_t *free; /* numbers of free groups below top, a stack */
	uint32_t nfree, top, cap, groups; /* groups: in use */
	uint32_t nlen[129]; /* the table's prefixes per length */
	size_t tbl24_size, tbl8_size; /* the mappings' lengths */
	uint32_t clean_from; /* groups from this one on were never written (zero) */
	uint8_t dirty24; /* the tbl24 came with old contents (fwd_hugemap_reuse) */
};

/** An empty FIB (every address FWD_REGION_UNKNOWN) with room for @groups
 *  groups before it grows. NULL with errno. */
struct fwd_fib6 *fwd_fib6_create(uint32_t groups);

void fwd_fib6_free(struct fwd_fib6 *f);

/** Groups a build of @p needs: per level, the distinct blocks (24, 32, ...,
 *  120 leading bits) holding a longer prefix. @p sorted as fwd_table leaves it. */
uint32_t fwd_fib6_groups_needed(const struct fwd_prefix6 *p, uint32_t n);

/** Fill a FIB just made by fwd_fib6_create() with the @n prefixes of @p
 *  (sorted by address then length, no duplicates). @return 0, or -ENOMEM
 *  (the FIB is then only fit for fwd_fib6_free). */
int fwd_fib6_build(struct fwd_fib6 *f, const struct fwd_prefix6 *p, uint32_t n);

/** As fwd_fib4_count(). */
void fwd_fib6_count(struct fwd_fib6 *f, uint8_t len, int d);

/** As fwd_fib4_update(): make the FIB hold @p (the table after the change)
 *  over the range of @addr/@len (network order). */
int fwd_fib6_update(struct fwd_fib6 *f, const struct fwd_prefix6 *p, uint32_t n,
		    const uint8_t addr[16], uint8_t len, uint32_t *hint);

/** As fwd_fib4_longest(): the index into @p of the longest prefix holding
 *  @addr/@len, itself included, or -1. @f may be NULL. */
int64_t fwd_fib6_longest(const struct fwd_fib6 *f, const struct fwd_prefix6 *p, uint32_t n,
			 const uint8_t addr[16], uint8_t len);

/** Bytes mapped for @f. */
size_t fwd_fib6_bytes(const struct fwd_fib6 *f);

/* The tbl24 index of @ip: its first 3 bytes, from one 4-byte load. */
static inline uint32_t fwd_fib6_idx24(const uint8_t ip[16])
{
	uint32_t w;

	__builtin_memcpy(&w, ip, 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	w = __builtin_bswap32(w);
#endif
	return w >> 8;
}

/** The region of @ip (network order): one entry per level reached, 14 at
 *  most (a /128 in a block of its own). */
static inline uint32_t fwd_fib6_lookup(const struct fwd_fib6 *f, const uint8_t ip[16])
{
	uint32_t e = f->tbl24[fwd_fib6_idx24(ip)];

	/* Unrolled whole: each level's byte is then a constant offset and the
	 * bound (b < 16) no test, 8 instructions a level where the loop took
	 * 13 (callgrind: 325 -> 314 a packet on the 50 % IPv6 mix). */
#pragma GCC unroll 13
	for (unsigned b = 3; b < 16; b++) {
		if (!(e & FWD_FIB6_EXT))
			break;
		e = f->tbl8[(size_t)(e & ~FWD_FIB6_EXT) << 8 | ip[b]];
	}
	return e;
}

/** The regions of @n addresses; the tbl24 entries prefetched 8 ahead. */
static inline void fwd_fib6_lookup_bulk(const struct fwd_fib6 *f, const uint8_t (*ip)[16],
					uint64_t *nh, unsigned n)
{
	enum { AHEAD = 8 };
	size_t i; /* as wide as the addresses it forms (benchmarks.md, round 9) */

	for (i = 0; i < n && i < AHEAD; i++)
		__builtin_prefetch(&f->tbl24[fwd_fib6_idx24(ip[i])]);
	for (i = 0; i + AHEAD < n; i++) {
		__builtin_prefetch(&f->tbl24[fwd_fib6_idx24(ip[i + AHEAD])]);
		nh[i] = fwd_fib6_lookup(f, ip[i]);
	}
	for (; i < n; i++)
		nh[i] = fwd_fib6_lookup(f, ip[i]);
}

#endif /* FWD_FIB6_H */
