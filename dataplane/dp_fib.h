/*
 * dp_fib.h - a table's two FIBs (next hop = region id), built from its
 * sorted prefixes: IPv4 a fwd_fib4 (DIR-24-8), IPv6 a fwd_fib6 (24-8-8-...
 * trie), neither with a RIB (common/fwd_fib4.h says why); IPv6 on a second
 * thread when a core is spare; and their release off the control thread's
 * way.
 *
 * Sizing: each FIB's first table is fixed (64 MiB, untouched pages cost
 * nothing) and its groups are counted from the sorted prefixes (IPv4: one
 * per /24 holding a longer prefix; IPv6: one per 24-, 32-, ..., 120-bit
 * block holding a longer prefix), plus the room a caller asks for deltas;
 * past it they grow by themselves (mremap), so a delta never needs FIBs
 * built anew for want of room.
 *
 * Memory of freed FIBs, for tables of 65,536 prefixes and more: up to two
 * pairs' worth (the size of the last pair built) is kept and taken by the
 * next builds (fwd_hugemap_recycle): first touching ~0.5 GiB costs this VM
 * ~1 s, memory already touched nothing. A whole replacement frees two
 * pairs (the standby, the retired pair) and the next standby takes one, so
 * the steady state is the running pair, the standby and one kept pair, and
 * a replacement builds into the kept one without growing it. Smaller tables
 * keep nothing: a build on kept memory writes both 64 MiB first tables
 * whole, where on fresh memory a small table touches a few pages.
 */
#ifndef DP_FIB_H
#define DP_FIB_H

#include <stdint.h>

#include "fwd_err.h"
#include "fwd_fib4.h"
#include "fwd_fib6.h"
#include "fwd_table.h"

/* Room for groups later deltas need, per family, on top of the table's own. */
struct dp_fib_room {
	uint32_t groups_pct; /* this percentage of the table's count more, */
	uint32_t groups_min; /* and this many more */
};

/* What a build made, for the log and for whoever sizes memory. */
struct dp_fib_info {
	uint32_t groups4, groups6; /* in use */
	uint64_t ns4, ns6; /* each FIB's create + build, on its own thread */
	uint64_t create_ns4, create_ns6; /* of which fwd_fib4_create / fwd_fib6_create */
	uint64_t wall_ns; /* the whole call */
	int parallel; /* 1: IPv6 was built on a second thread */
};

/**
 * Build the IPv4 and IPv6 FIBs of a validated table: every prefix of
 * @t->prefix4 and @t->prefix6 (sorted by address then length, no duplicates:
 * as fwd_table leaves them), next hop its region id, default
 * FWD_REGION_UNKNOWN, each in one sweep. Which prefix matched comes from the
 * table itself (fwd_fib4_longest, fwd_fib6_longest).
 *
 * IPv6 is built on a DPDK control thread (rte_ctrl_thread_create: the cores
 * no lcore uses) while the calling thread builds IPv4, when such a thread
 * runs on a core the calling thread does not; otherwise (every core has an
 * lcore, so control threads share the main lcore's) one after the other,
 * which is faster on one core. Waits first for FIBs still being freed by
 * dp_fib_free(), so a build never overlaps an old release: memory holds at
 * most the FIBs in use (the running pair, a standby) and these.
 *
 * Any thread may call it, several at once; dp_fib_free() may run beside it.
 *
 * @room:  room for later additions (see above); NULL: exactly the table
 * @bytes: memory the two FIBs map (tables, groups' room)
 * @info:  may be NULL
 * @return 0 with *@fib4 and *@fib6 set, or -errno with both NULL, nothing
 *         left allocated and @err filled (file @t->source, path "regions")
 */
int dp_fib_build(const struct fwd_table *t, const struct dp_fib_room *room, struct fwd_fib4 **fib4,
		 struct fwd_fib6 **fib6, uint64_t *bytes, struct dp_fib_info *info,
		 struct fwd_err *err);

/**
 * Free FIBs no worker can see any more (either may be NULL). Unmapping a
 * routing-scale pair returns ~1 GiB of touched pages to the kernel, tens of
 * ms: with dp_fib_background(1) the pair is queued for a DPDK control
 * thread that frees queued pairs in order, and this returns at once;
 * otherwise it frees them here. Any thread.
 */
void dp_fib_free(struct fwd_fib4 *fib4, struct fwd_fib6 *fib6);

/**
 * Wait until every release dp_fib_free() queued is done. dp_fib_build()
 * does, so memory never holds a retired pair beside a new one. Any thread.
 */
void dp_fib_drain(void);

/**
 * 1: dp_fib_free() releases in the background from now on. 0: it no longer
 * does, and this waits for the releases queued; call it before
 * rte_eal_cleanup().
 */
void dp_fib_background(int on);

#endif /* DP_FIB_H */
