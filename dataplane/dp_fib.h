/*
 * dp_fib.h - a table's two FIBs (rte_fib DIR-24-8 for IPv4, rte_fib6 trie
 * for IPv6; next hop = region id), built from its sorted prefixes, sized
 * to them, IPv6 on a second thread; and their release off the control
 * thread's way.
 *
 * Sizing. Both FIBs take their capacity at creation, and DPDK allocates
 * and touches all of it: the RIB's node pool (rte_fib_conf.max_routes x 2
 * nodes, ~128 B each) and the tbl8 groups (256 next hops each). Both are
 * counted exactly from the sorted prefixes rather than guessed:
 *   - RIB nodes: the prefixes plus the branch points of their binary trie
 *     that are not prefixes themselves (DPDK's RIB is that compressed
 *     trie), one per pair of neighbours in sorted order whose common prefix
 *     is not in the table; +2 for rte_rib_insert's transient node.
 *   - IPv4 tbl8 groups: one per distinct /24 holding a longer prefix (what
 *     DIR-24-8 allocates, and what its reservation counts).
 *   - IPv6 tbl8 groups: the larger of what the trie allocates (one per
 *     distinct 24-, 32-, ..., 120-bit ancestor of a longer prefix) and what
 *     rte_fib6's reservation check asks for when the prefixes go in in this
 *     order (it reserves pessimistically per prefix: up to (depth - parent
 *     depth) / 8 groups; dataplane/dp_fib.c simulates it). DPDK 22.11's
 *     trie_modify() refuses with -ENOSPC past either.
 * A caller that later adds prefixes with rte_fib_add()/rte_fib6_add() (a
 * delta) asks for room on top (struct dp_fib_room); without it the FIBs
 * take exactly the table.
 */
#ifndef DP_FIB_H
#define DP_FIB_H

#include <stdint.h>

#include <rte_fib.h>
#include <rte_fib6.h>

#include "fwd_err.h"
#include "fwd_table.h"

/* Room for prefixes added later, per family, on top of the table's own. */
struct dp_fib_room {
	uint32_t prefixes; /* RIB nodes for this many more prefixes (2 each) */
	uint32_t tbl8_pct; /* tbl8 groups: this percentage of the table's count more, */
	uint32_t tbl8_min; /* and this many more */
	uint8_t keep_2b; /* but no more than keeps 2-byte next hops if the table alone fits them */
};

/* What a build made, for the log and for whoever sizes memory. */
struct dp_fib_info {
	uint32_t rib_nodes4, rib_nodes6; /* counted; the pools hold 2 more (+ room) */
	uint32_t tbl8_4, tbl8_6; /* groups created */
	uint8_t nh_bytes4, nh_bytes6; /* 2 or 4 */
	uint64_t ns4, ns6; /* each FIB's create + adds, on its own thread */
	uint64_t create_ns4, create_ns6; /* of which rte_fib_create / rte_fib6_create */
	uint64_t wall_ns; /* the whole call */
	int parallel; /* 1: IPv6 was built on a second thread */
};

/**
 * Build the IPv4 and IPv6 FIBs of a validated table: every prefix of
 * @t->prefix4 and @t->prefix6 (sorted by address then length, no duplicates:
 * as fwd_table leaves them), next hop its region id, default
 * FWD_REGION_UNKNOWN, added in that order (a prefix before the prefixes
 * inside it: DIR-24-8 writes each range once, and a prefix whose parent has
 * its next hop changes nothing but the RIB). The RIBs hold exactly the
 * table's prefixes (explain names the matching one from them; rte_fib_add/
 * delete work on them later).
 *
 * IPv6 is built on a DPDK control thread (rte_ctrl_thread_create: the cores
 * no lcore uses) while the calling thread builds IPv4, when such a thread
 * runs on a core the calling thread does not; otherwise (every core has an
 * lcore, so control threads share the main lcore's) one after the other,
 * which is faster on one core. Waits first for FIBs still
 * being freed by dp_fib_free(), so a build never overlaps an old release:
 * memory holds at most the FIBs in use (the running pair, a standby) and
 * these.
 *
 * Any thread may call it, several at once (names come from an atomic
 * sequence); dp_fib_free() may run beside it.
 *
 * @room:  room for later additions (see above); NULL: exactly the table
 * @bytes: DPDK memory the two FIBs occupy (tables, tbl8 groups, RIB pools), as
 *         the heap counts it: approximate if another thread frees DPDK memory
 *         meanwhile
 * @info:  may be NULL
 * @return 0 with *@fib4 and *@fib6 set, or -errno with both NULL, nothing
 *         left allocated and @err filled (file @t->source, path "regions",
 *         the refused prefix's line)
 */
int dp_fib_build(const struct fwd_table *t, const struct dp_fib_room *room, struct rte_fib **fib4,
		 struct rte_fib6 **fib6, uint64_t *bytes, struct dp_fib_info *info,
		 struct fwd_err *err);

/**
 * Free FIBs no worker can see any more (either may be NULL). DPDK's
 * rte_rib_free() unlinks the RIB node by node: ~0.3-1 s for a million
 * prefixes. With dp_fib_background(1) the pair is queued for a DPDK control
 * thread, at the control thread's priority, that frees queued pairs in
 * order, and this returns at once; otherwise it frees them here. Call it
 * after the generation's other DPDK memory is freed (a release holds the
 * heap's lock while it zeroes the tables). Any thread.
 */
void dp_fib_free(struct rte_fib *fib4, struct rte_fib6 *fib6);

/**
 * Wait until every release dp_fib_free() queued is done. Call it before
 * allocating a new generation's DPDK memory (dp_fib_build() does): the
 * release zeroes freed tables under the heap's spinlock, and the memory
 * must be back before a new generation takes its own. Any thread.
 */
void dp_fib_drain(void);

/**
 * 1: dp_fib_free() releases in the background from now on. 0: it no longer
 * does, and this waits for the releases queued; call it before
 * rte_eal_cleanup().
 */
void dp_fib_background(int on);

#endif /* DP_FIB_H */
