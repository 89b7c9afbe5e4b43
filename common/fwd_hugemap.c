/*
 * fwd_hugemap.c - 2 MiB-aligned anonymous mappings (fwd_hugemap.h).
 */
#define _GNU_SOURCE /* mremap */
#include "fwd_hugemap.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#define HUGE ((size_t)2 << 20)
#define PAGE_ROUND(n) (((n) + 4095) & ~(size_t)4095)

void *fwd_hugemap(size_t len)
{
	size_t want = PAGE_ROUND(len);
	uint8_t *raw, *a;

	if (len == 0 || len > ((size_t)1 << 44)) { /* far past any table; no overflow below */
		errno = EINVAL;
		return NULL;
	}
	if (want < HUGE) {
		raw = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return raw == MAP_FAILED ? NULL : raw;
	}
	/* Over-map by 2 MiB and trim both ends: mmap only promises page
	 * alignment, and a huge page needs its 2 MiB boundary. */
	raw = mmap(NULL, want + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	a = (uint8_t *)(((uintptr_t)raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	if (a > raw)
		munmap(raw, (size_t)(a - raw));
	if (raw + want + HUGE > a + want)
		munmap(a + want, (size_t)(raw + want + HUGE - (a + want)));
	(void)madvise(a, want, MADV_HUGEPAGE); /* advice only: THP may be off */
	return a;
}

void fwd_hugemap_free(void *p, size_t len)
{
	if (p)
		munmap(p, PAGE_ROUND(len));
}

void *fwd_hugemap_grow(void *p, size_t old, size_t len)
{
	void *n;

	if (p == NULL)
		return fwd_hugemap(len);
	if (len <= old || len > ((size_t)1 << 44)) {
		errno = EINVAL;
		return NULL;
	}
	/* mremap moves page tables, not bytes: growing a table of tens of MiB
	 * costs microseconds. The moved mapping keeps its advice. */
	n = mremap(p, PAGE_ROUND(old), PAGE_ROUND(len), MREMAP_MAYMOVE);
	return n == MAP_FAILED ? NULL : n;
}
