/*
 * fwd_fib4.c - DIR-24-8 built and changed from sorted prefixes (fwd_fib4.h).
 */
#include "fwd_fib4.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_hugemap.h"

#define TBL24_N ((uint32_t)1 << 24)
#define GROUP_BYTES (256 * sizeof(uint32_t))
#define GROUPS_MAX (FWD_FIB4_EXT - 1) /* numbers must stay clear of the flag */

/* How a sweep writes. NOFREE: the entries hold no groups to free (a build:
 * fresh memory, or kept memory whose old contents mean nothing), so they are
 * written without being read. ZERO: they are zero too, so region 0
 * (FWD_REGION_UNKNOWN) needs no write. Neither: a change, on a FIB whose
 * entries mean what they say. */
enum { NOFREE = 1, ZERO = 2 };

/* Sorted order of the table: by address, then length. */
static inline int before(const struct fwd_prefix4 *p, uint32_t addr, uint8_t len)
{
	return p->addr < addr || (p->addr == addr && p->len < len);
}

static inline uint32_t mask_of(unsigned len)
{
	return len ? ~(uint32_t)0 << (32 - len) : 0;
}

/* First index in [lo, hi) not before addr/len. */
static uint32_t lower_bound(const struct fwd_prefix4 *p, uint32_t lo, uint32_t hi, uint32_t addr,
			    uint8_t len)
{
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (before(&p[mid], addr, len))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The same, searching forward from @from (every index before it is before
 * addr/len) in doubling steps: a sorted batch's changes are near each other,
 * so a change costs the log of its distance from the last, and the steps
 * stay in lines the last search brought in. */
static uint32_t gallop_fwd(const struct fwd_prefix4 *p, uint32_t n, uint32_t from, uint32_t addr,
			   uint8_t len)
{
	uint32_t lo = from, step = 1;

	while (lo < n) {
		uint32_t probe = n - lo > step ? lo + step : n;

		if (probe == n || !before(&p[probe], addr, len))
			return lower_bound(p, lo, probe, addr, len);
		lo = probe + 1;
		step <<= 1;
	}
	return n;
}

/* The same, searching back from @hi (nothing at or after it is before
 * addr/len): a prefix's covers sit shortly before it, most of the time. */
static uint32_t gallop_back(const struct fwd_prefix4 *p, uint32_t hi, uint32_t addr, uint8_t len)
{
	uint32_t top = hi, step = 1;

	while (top > 0) {
		uint32_t probe = top > step ? top - step : 0;

		if (before(&p[probe], addr, len))
			return lower_bound(p, probe + 1, top, addr, len);
		top = probe;
		step <<= 1;
	}
	return 0;
}

/* ---- groups --------------------------------------------------------------------- */

static int groups_grow(struct fwd_fib4 *f)
{
	uint32_t cap = f->cap < 64 ? 64 : f->cap + f->cap / 2;
	uint32_t *t8, *base, *fr;

	if (f->cap >= GROUPS_MAX)
		return -ENOMEM;
	if (cap > GROUPS_MAX || cap < f->cap)
		cap = GROUPS_MAX;
	/* The small arrays first: a larger one than cap says is harmless if a
	 * later step fails (free() needs no size), a larger tbl8 mapping would
	 * not be (its unmap does). cap changes only once all three grew. */
	base = realloc(f->base, (size_t)cap * 4);
	if (base == NULL)
		return -ENOMEM;
	f->base = base;
	fr = realloc(f->free, (size_t)cap * 4);
	if (fr == NULL)
		return -ENOMEM;
	f->free = fr;
	t8 = fwd_hugemap_grow(f->tbl8, f->tbl8_size, (size_t)cap * GROUP_BYTES);
	if (t8 == NULL)
		return -ENOMEM;
	f->tbl8 = t8;
	f->tbl8_size = (size_t)cap * GROUP_BYTES;
	f->cap = cap;
	return 0;
}

static int group_alloc(struct fwd_fib4 *f, uint32_t *g)
{
	if (f->nfree) {
		*g = f->free[--f->nfree];
	} else {
		if (f->top == f->cap) {
			int rc = groups_grow(f);

			if (rc)
				return rc;
		}
		*g = f->top++;
	}
	f->groups++;
	return 0;
}

static void group_release(struct fwd_fib4 *f, uint32_t g)
{
	f->free[f->nfree++] = g;
	f->groups--;
}

/* ---- writing ranges ------------------------------------------------------------ */

/* tbl24 entries [lo, end) take region @r, releasing the groups they held
 * (@mode: NOFREE, ZERO above). */
static void put24(struct fwd_fib4 *f, uint32_t lo, uint32_t end, uint32_t r, int mode)
{
	uint32_t *t = f->tbl24;

	if (mode & NOFREE) {
		if (r != 0 || !(mode & ZERO))
			for (uint32_t x = lo; x < end; x++)
				t[x] = r;
		return;
	}
	for (uint32_t x = lo; x < end; x++) {
		if (t[x] & FWD_FIB4_EXT)
			group_release(f, t[x] & ~FWD_FIB4_EXT);
		t[x] = r;
	}
}

static inline void put8(uint32_t *g, uint32_t lo, uint32_t end, uint32_t r)
{
	for (uint32_t x = lo; x < end; x++)
		g[x] = r;
}

/* /24 number @b gets a group from its prefixes longer than /24, p[j..k)
 * (sorted, all inside it), over region @base: the one it has (@mode 0 and
 * the entry links one), else a new one. The same sweep as sweep24, in the
 * group's 8 bits; it writes all 256 entries, whatever the group held. */
static int put_block(struct fwd_fib4 *f, uint32_t b, uint32_t base, const struct fwd_prefix4 *p,
		     uint32_t j, uint32_t k, int mode)
{
	struct {
		uint32_t end, r;
	} st[9]; /* lengths 25-32 nest at most 8 deep */
	uint32_t e = mode & NOFREE ? 0 : f->tbl24[b], g, cur = 0, *t8;
	unsigned sp = 0;

	if (e & FWD_FIB4_EXT) {
		g = e & ~FWD_FIB4_EXT;
	} else {
		int rc = group_alloc(f, &g);

		if (rc)
			return rc;
	}
	t8 = f->tbl8 + ((size_t)g << 8);
	for (; j < k; j++) {
		uint32_t s = p[j].addr & 0xff;

		while (sp && st[sp - 1].end <= s) {
			put8(t8, cur, st[sp - 1].end, st[sp - 1].r);
			cur = st[--sp].end;
		}
		put8(t8, cur, s, sp ? st[sp - 1].r : base);
		cur = s;
		st[sp].end = s + (1u << (32 - p[j].len));
		st[sp++].r = p[j].region;
	}
	while (sp) {
		put8(t8, cur, st[sp - 1].end, st[sp - 1].r);
		cur = st[--sp].end;
	}
	put8(t8, cur, 256, base);
	f->base[g] = base;
	f->tbl24[b] = FWD_FIB4_EXT | g;
	return 0;
}

/* tbl24 entries [lo, end) from the prefixes p[j..k) (sorted, all inside the
 * range) over region @base: a sweep with a stack of the enclosing prefixes,
 * each gap taking the innermost one's region. Prefixes of /24 or shorter set
 * entries; each /24 holding longer ones gets its group. */
static int sweep24(struct fwd_fib4 *f, const struct fwd_prefix4 *p, uint32_t j, uint32_t k,
		   uint32_t lo, uint32_t end, uint32_t base, int mode)
{
	struct {
		uint32_t end, r;
	} st[26]; /* lengths 0-24 */
	uint32_t cur = lo;
	unsigned sp = 0;

	while (j < k) {
		uint32_t b = p[j].addr >> 8, r;

		while (sp && st[sp - 1].end <= b) {
			put24(f, cur, st[sp - 1].end, st[sp - 1].r, mode);
			cur = st[--sp].end;
		}
		r = sp ? st[sp - 1].r : base;
		put24(f, cur, b, r, mode);
		cur = b;
		if (p[j].len <= 24) {
			st[sp].end = b + (uint32_t)(1ull << (24 - p[j].len));
			st[sp++].r = p[j].region;
			j++;
			continue;
		}
		/* A /24's longer prefixes are consecutive: one of /24 or
		 * shorter starting there sorts before them. */
		uint32_t m = j + 1;

		while (m < k && p[m].addr >> 8 == b)
			m++;
		int rc = put_block(f, b, r, p, j, m, mode);

		if (rc)
			return rc;
		cur = b + 1;
		j = m;
	}
	while (sp) {
		put24(f, cur, st[sp - 1].end, st[sp - 1].r, mode);
		cur = st[--sp].end;
	}
	put24(f, cur, end, base, mode);
	return 0;
}

/* ---- the API --------------------------------------------------------------------- */

struct fwd_fib4 *fwd_fib4_create(uint32_t groups)
{
	struct fwd_fib4 *f = calloc(1, sizeof(*f));
	size_t dirty;

	if (f == NULL)
		return NULL;
	if (groups < 64)
		groups = 64;
	if (groups > GROUPS_MAX)
		groups = GROUPS_MAX;
	/* Kept memory when there is some (fwd_hugemap.h): the build writes
	 * every entry then, and every group it makes. */
	f->tbl24 = fwd_hugemap_reuse((size_t)TBL24_N * sizeof(uint32_t), FWD_HUGEMAP_FIB_TBL24,
				     &f->tbl24_size, &dirty);
	f->dirty24 = dirty != 0;
	f->tbl8 = fwd_hugemap_reuse((size_t)groups * GROUP_BYTES, FWD_HUGEMAP_FIB4_GROUPS,
				    &f->tbl8_size, &dirty);
	if (f->tbl8 && f->tbl8_size / GROUP_BYTES < GROUPS_MAX)
		groups = (uint32_t)(f->tbl8_size / GROUP_BYTES);
	f->base = malloc((size_t)groups * 4);
	f->free = malloc((size_t)groups * 4);
	f->cap = groups;
	if (f->tbl24 == NULL || f->tbl8 == NULL || f->base == NULL || f->free == NULL) {
		fwd_fib4_free(f);
		errno = ENOMEM;
		return NULL;
	}
	return f;
}

void fwd_fib4_free(struct fwd_fib4 *f)
{
	if (f == NULL)
		return;
	fwd_hugemap_recycle(f->tbl24, f->tbl24_size, FWD_HUGEMAP_FIB_TBL24);
	fwd_hugemap_recycle(f->tbl8, f->tbl8_size, FWD_HUGEMAP_FIB4_GROUPS);
	free(f->base);
	free(f->free);
	free(f);
}

uint32_t fwd_fib4_groups_needed(const struct fwd_prefix4 *p, uint32_t n)
{
	uint32_t groups = 0, last = 0;
	int have = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (p[i].len <= 24 || (have && p[i].addr >> 8 == last))
			continue;
		groups++;
		last = p[i].addr >> 8;
		have = 1;
	}
	return groups;
}

int fwd_fib4_build(struct fwd_fib4 *f, const struct fwd_prefix4 *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		f->nlen[p[i].len]++;
	return sweep24(f, p, 0, n, 0, TBL24_N, 0, f->dirty24 ? NOFREE : NOFREE | ZERO);
}

void fwd_fib4_count(struct fwd_fib4 *f, uint8_t len, int d)
{
	if (len <= 32)
		f->nlen[len] += (uint32_t)d;
}

int64_t fwd_fib4_longest(const struct fwd_fib4 *f, const struct fwd_prefix4 *p, uint32_t n,
			 uint32_t addr, uint8_t len)
{
	uint32_t i, hi;
	int l;

	if (len > 32)
		return -1;
	addr &= mask_of(len);
	/* Every prefix holding addr/len sorts before it (a shorter one at the
	 * same address included) and after nothing it holds: so the last
	 * prefix at or before addr/len either holds it, and is the longest
	 * that does, or lies inside each that does. */
	i = lower_bound(p, 0, n, addr, (uint8_t)(len + 1));
	if (i == 0)
		return -1;
	const struct fwd_prefix4 *q = &p[i - 1];

	if (q->len <= len && ((q->addr ^ addr) & mask_of(q->len)) == 0)
		return i - 1;
	/* Then a holder also holds q: its length is at most the bits q and
	 * addr share. Try each such length, longest first, for the exact
	 * prefix; each is searched for before the last one's position. */
	l = __builtin_clz(q->addr ^ addr); /* q->addr != addr, or q would hold it */
	if (l > len)
		l = len;
	hi = i - 1;
	for (; l >= 0; l--) {
		uint32_t a = addr & mask_of((unsigned)l), j;

		if (f && f->nlen[l] == 0)
			continue;
		j = gallop_back(p, hi, a, (uint8_t)l);
		if (j < hi && p[j].addr == a && p[j].len == l)
			return j;
		hi = j;
	}
	return -1;
}

int fwd_fib4_update(struct fwd_fib4 *f, const struct fwd_prefix4 *p, uint32_t n, uint32_t addr,
		    uint8_t len, uint32_t *hint)
{
	uint32_t i, j, k, b, base;
	int held;

	if (len > 32)
		return -EINVAL;
	addr &= mask_of(len);
	i = gallop_fwd(p, n, *hint < n ? *hint : n, addr, len);
	*hint = i;
	held = i < n && p[i].addr == addr && p[i].len == len;
	if (len <= 24) {
		uint32_t last = addr | ~mask_of(len);
		int64_t c;

		/* The range's base: the prefix itself, or what covers it now. */
		if (held) {
			base = p[i].region;
		} else {
			c = len ? fwd_fib4_longest(f, p, n, addr, (uint8_t)(len - 1)) : -1;
			base = c < 0 ? 0 : p[c].region;
		}
		j = i + (uint32_t)held;
		k = j;
		while (k < n &&
		       p[k].addr <= last) /* the prefixes inside it: few, most often none */
			k++;
		return sweep24(f, p, j, k, addr >> 8, (addr >> 8) + (uint32_t)(1ull << (24 - len)),
			       base, 0);
	}
	/* Longer than /24: only its /24's group changes. Its region from the
	 * shorter prefixes is the entry itself or the group's base. */
	b = addr >> 8;
	base = f->tbl24[b] & FWD_FIB4_EXT ? f->base[f->tbl24[b] & ~FWD_FIB4_EXT] : f->tbl24[b];
	j = i;
	while (j > 0 && p[j - 1].addr >> 8 == b && p[j - 1].len > 24)
		j--;
	k = i;
	while (k < n &&
	       p[k].addr >> 8 == b) /* all longer than /24: they sort after a shorter one */
		k++;
	if (j == k) { /* none left: the /24 is one entry again */
		put24(f, b, b + 1, base, 0);
		return 0;
	}
	return put_block(f, b, base, p, j, k, 0);
}

size_t fwd_fib4_bytes(const struct fwd_fib4 *f)
{
	return f ? f->tbl24_size + f->tbl8_size + (size_t)f->cap * 8 : 0;
}
