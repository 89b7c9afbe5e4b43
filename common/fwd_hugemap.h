/*
 * fwd_hugemap.h - large tables in anonymous memory the kernel can back with
 * transparent huge pages: mappings of 2 MiB or more start on a 2 MiB
 * boundary and are marked MADV_HUGEPAGE, so a table of tens of MiB costs a
 * few TLB entries instead of thousands. Memory is zero when mapped and is
 * only resident once touched: a table written sparsely stays small.
 *
 * Used for tables built outside DPDK's heap (name sets, the FIBs): they
 * can grow with fwd_hugemap_grow() without copying, which rte_realloc cannot
 * promise, and common/ stays DPDK-free.
 */
#ifndef FWD_HUGEMAP_H
#define FWD_HUGEMAP_H

#include <stddef.h>

/** Map @len bytes (rounded up to a page), zeroed. NULL with errno set. */
void *fwd_hugemap(size_t len);

/** Unmap what fwd_hugemap() or fwd_hugemap_grow() returned for @len (NULL-safe). */
void fwd_hugemap_free(void *p, size_t len);

/** Grow a mapping of @old bytes to @len bytes, keeping its contents; the new
 *  bytes are zero. It may move. NULL with errno set, and @p unchanged. */
void *fwd_hugemap_grow(void *p, size_t old, size_t len);

/*
 * Recycling, for tables built again and again (the FIBs of each generation).
 * Memory a process touches for the first time costs page faults, and in a VM
 * whose balloon reports free pages to the host (this one's) also the host's:
 * measured here ~1.7 ms per MiB, 1 s for a 1M + 200k FIB pair, where memory
 * the process touched before costs nothing more. DPDK's heap never gives
 * memory back, which is why rte_fib builds did not pay it. A mapping handed
 * back with fwd_hugemap_recycle() is kept, up to the limit, and handed out
 * again whole, with its old contents: the caller writes every byte it relies
 * on. Thread-safe.
 */

/* Kinds of kept mappings (fwd_hugemap_reuse's @tag). */
enum fwd_hugemap_tag {
	FWD_HUGEMAP_FIB_TBL24 = 1, /* either FIB's 64 MiB first table */
	FWD_HUGEMAP_FIB4_GROUPS, /* fwd_fib4's groups */
	FWD_HUGEMAP_FIB6_GROUPS, /* fwd_fib6's groups */
};

/**
 * A mapping of @len bytes for a table of kind @tag (any number the caller
 * picks: a kept mapping is only handed out again for the same kind, so a
 * FIB's 64 MiB first table never serves as another's groups). The smallest
 * kept one of that kind holding @len, else the largest kept one grown to
 * @len (mremap: only the tail is new memory), else a fresh one.
 * *@size: its length (free, grow and recycle it by that); *@dirty: how many
 * of its leading bytes may hold old contents (0: all zero). NULL with errno.
 */
void *fwd_hugemap_reuse(size_t len, unsigned tag, size_t *size, size_t *dirty);

/** Keep @p (@size bytes of kind @tag, from fwd_hugemap_reuse or
 *  fwd_hugemap_grow) for reuse while the kept mappings stay within the
 *  limit; else unmap it. */
void fwd_hugemap_recycle(void *p, size_t size, unsigned tag);

/** At most @bytes kept (0, the default: nothing); mappings past it are
 *  unmapped now. */
void fwd_hugemap_keep(size_t bytes);

/** Bytes kept for reuse now. */
size_t fwd_hugemap_kept(void);

#endif /* FWD_HUGEMAP_H */
