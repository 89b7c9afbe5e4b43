/*
 * fwd_hugemap.c - 2 MiB-aligned anonymous mappings (fwd_hugemap.h).
 */
#define _GNU_SOURCE /* mremap */
#include "fwd_hugemap.h"

#include <errno.h>
#include <pthread.h>
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

/* ---- recycling -------------------------------------------------------------- */

#define KEPT_MAX 16 /* a few FIB pairs' mappings: two tables each */

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	void *p;
	size_t size;
	unsigned tag;
} kept[KEPT_MAX];
static unsigned nkept;
static size_t kept_bytes, kept_limit;

void *fwd_hugemap_reuse(size_t len, unsigned tag, size_t *size, size_t *dirty)
{
	int fit = -1, big = -1;
	void *p = NULL;
	size_t have = 0;

	pthread_mutex_lock(&kept_lock);
	for (unsigned i = 0; i < nkept; i++) {
		if (kept[i].tag != tag)
			continue;
		if (kept[i].size >= len && (fit < 0 || kept[i].size < kept[fit].size))
			fit = (int)i;
		if (big < 0 || kept[i].size > kept[big].size)
			big = (int)i;
	}
	if (fit >= 0 || big >= 0) {
		int at = fit >= 0 ? fit : big;

		p = kept[at].p;
		have = kept[at].size;
		kept_bytes -= have;
		kept[at] = kept[--nkept];
	}
	pthread_mutex_unlock(&kept_lock);
	if (p && have < len) {
		/* A table grown since: its old part is reused, its tail is new. */
		void *g = fwd_hugemap_grow(p, have, len);

		if (g == NULL) {
			fwd_hugemap_free(p, have);
			p = NULL;
		} else {
			p = g;
			*size = len;
			*dirty = have;
			return p;
		}
	}
	if (p) {
		*size = have;
		*dirty = have;
		return p;
	}
	*size = len;
	*dirty = 0;
	return fwd_hugemap(len);
}

void fwd_hugemap_recycle(void *p, size_t size, unsigned tag)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&kept_lock);
	if (nkept < KEPT_MAX && kept_bytes + size <= kept_limit) {
		kept[nkept].p = p;
		kept[nkept].tag = tag;
		kept[nkept++].size = size;
		kept_bytes += size;
		p = NULL;
	}
	pthread_mutex_unlock(&kept_lock);
	fwd_hugemap_free(p, size);
}

void fwd_hugemap_keep(size_t bytes)
{
	void *drop[KEPT_MAX];
	size_t dsize[KEPT_MAX];
	unsigned ndrop = 0;

	pthread_mutex_lock(&kept_lock);
	kept_limit = bytes;
	while (nkept && kept_bytes > kept_limit) {
		/* The largest first: what is left fits best under the limit. */
		unsigned big = 0;

		for (unsigned i = 1; i < nkept; i++)
			if (kept[i].size > kept[big].size)
				big = i;
		drop[ndrop] = kept[big].p;
		dsize[ndrop++] = kept[big].size;
		kept_bytes -= kept[big].size;
		kept[big] = kept[--nkept];
	}
	pthread_mutex_unlock(&kept_lock);
	for (unsigned i = 0; i < ndrop; i++) /* outside the lock: unmapping takes ms */
		fwd_hugemap_free(drop[i], dsize[i]);
}

size_t fwd_hugemap_kept(void)
{
	size_t b;

	pthread_mutex_lock(&kept_lock);
	b = kept_bytes;
	pthread_mutex_unlock(&kept_lock);
	return b;
}
