/*
 * fwd_hugemap.h - large tables in anonymous memory the kernel can back with
 * transparent huge pages: mappings of 2 MiB or more start on a 2 MiB
 * boundary and are marked MADV_HUGEPAGE, so a table of tens of MiB costs a
 * few TLB entries instead of thousands. Memory is zero when mapped and is
 * only resident once touched: a table written sparsely stays small.
 *
 * Used for tables built outside DPDK's heap (name sets, the IPv4 FIB): they
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

#endif /* FWD_HUGEMAP_H */
