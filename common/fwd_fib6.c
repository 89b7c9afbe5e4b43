/*
 * fwd_fib6.c - a 24-8-8-... multibit trie built and changed from sorted
 * prefixes (fwd_fib6.h).
 */
#include "fwd_fib6.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_hugemap.h"

typedef unsigned __int128 u128;

#define TBL24_N ((uint32_t)1 << 24)
#define GROUP_BYTES (256 * sizeof(uint32_t))
#define GROUPS_MAX (FWD_FIB6_EXT - 1)
#define TOP UINT32_MAX /* the tbl24, where a group number is expected */
#define LEVELS 14 /* 24 bits, then 13 x 8 */

/* How a sweep writes, as in fwd_fib4.c. NOFREE: the entries hold no links
 * to free (a new group, a build), so they are written without being read.
 * ZERO: they are zero too (fresh memory), so region 0 needs no write.
 * Neither: a change, on entries that mean what they say. */
enum { NOFREE = 1, ZERO = 2 };

/* Last bit (exclusive) that level @l indexes: 24, 32, ..., 128. */
static inline unsigned depth_of(unsigned l)
{
	return 24 + 8 * l;
}

static inline unsigned level_of(unsigned len)
{
	return len <= 24 ? 0 : (len - 24 + 7) / 8;
}

static inline u128 load(const uint8_t a[16])
{
	u128 v = 0;

	for (int i = 0; i < 16; i++)
		v = v << 8 | a[i];
	return v;
}

static inline u128 mask_of(unsigned len)
{
	return len ? ~(u128)0 << (128 - len) : 0;
}

/* Entry of @a in a table of level @l. */
static inline uint32_t index_of(u128 a, unsigned l)
{
	return l == 0 ? (uint32_t)(a >> 104) : (uint32_t)(a >> (128 - depth_of(l))) & 0xff;
}

static inline uint32_t *entries(const struct fwd_fib6 *f, uint32_t gid)
{
	return gid == TOP ? f->tbl24 : f->tbl8 + ((size_t)gid << 8);
}

/* Sorted order of the table: by address, then length. */
static inline int before(const struct fwd_prefix6 *p, u128 key, unsigned len)
{
	u128 k = load(p->addr);

	return k < key || (k == key && p->len < len);
}

static uint32_t lower_bound(const struct fwd_prefix6 *p, uint32_t lo, uint32_t hi, u128 key,
			    unsigned len)
{
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (before(&p[mid], key, len))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Galloping searches: as fwd_fib4.c. */
static uint32_t gallop_fwd(const struct fwd_prefix6 *p, uint32_t n, uint32_t from, u128 key,
			   unsigned len)
{
	uint32_t lo = from, step = 1;

	while (lo < n) {
		uint32_t probe = n - lo > step ? lo + step : n;

		if (probe == n || !before(&p[probe], key, len))
			return lower_bound(p, lo, probe, key, len);
		lo = probe + 1;
		step <<= 1;
	}
	return n;
}

static uint32_t gallop_back(const struct fwd_prefix6 *p, uint32_t hi, u128 key, unsigned len)
{
	uint32_t top = hi, step = 1;

	while (top > 0) {
		uint32_t probe = top > step ? top - step : 0;

		if (before(&p[probe], key, len))
			return lower_bound(p, probe + 1, top, key, len);
		top = probe;
		step <<= 1;
	}
	return 0;
}

/* Whether @q lies strictly inside the @d-bit block of @a (longer than @d). */
static inline int inside(const struct fwd_prefix6 *q, u128 a, unsigned d)
{
	return q->len > d && ((load(q->addr) ^ a) & mask_of(d)) == 0;
}

/* ---- groups --------------------------------------------------------------------- */

static int groups_grow(struct fwd_fib6 *f)
{
	uint32_t cap = f->cap < 64 ? 64 : f->cap + f->cap / 2;
	uint32_t *t8, *base, *fr;

	if (f->cap >= GROUPS_MAX)
		return -ENOMEM;
	if (cap > GROUPS_MAX || cap < f->cap)
		cap = GROUPS_MAX;
	/* As fwd_fib4.c: the small arrays first, cap last. */
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
	f->tbl8_size = (size_t)cap * GROUP_BYTES; /* what grew is zero: clean_from stays */
	f->cap = cap;
	return 0;
}

/* A group for a sweep that writes all of it; *@zero: 1 when it is zero
 * already (never used since the mapping was made), so zeros need no write.
 * May move f->tbl8. */
static int group_alloc(struct fwd_fib6 *f, uint32_t *g, int *zero)
{
	*zero = 0;
	if (f->nfree) {
		*g = f->free[--f->nfree];
	} else {
		if (f->top == f->cap) {
			int rc = groups_grow(f);

			if (rc)
				return rc;
		}
		*g = f->top++;
		*zero = *g >= f->clean_from;
	}
	f->groups++;
	return 0;
}

/* Free group @g and every group below it. */
static void free_tree(struct fwd_fib6 *f, uint32_t g)
{
	const uint32_t *t = f->tbl8 + ((size_t)g << 8);

	for (unsigned x = 0; x < 256; x++)
		if (t[x] & FWD_FIB6_EXT)
			free_tree(f, t[x] & ~FWD_FIB6_EXT);
	f->free[f->nfree++] = g;
	f->groups--;
}

/* ---- writing ranges ------------------------------------------------------------ */

/* Entries [lo, end) of table @gid take region @r, freeing the groups below
 * them (@mode: NOFREE, ZERO above). */
static void put(struct fwd_fib6 *f, uint32_t gid, uint32_t lo, uint32_t end, uint32_t r, int mode)
{
	uint32_t *t = entries(f, gid);

	if (mode & NOFREE) {
		if (r != 0 || !(mode & ZERO))
			for (uint32_t x = lo; x < end; x++)
				t[x] = r;
		return;
	}
	for (uint32_t x = lo; x < end; x++) {
		if (t[x] & FWD_FIB6_EXT)
			free_tree(f, t[x] & ~FWD_FIB6_EXT);
		t[x] = r;
	}
}

static int sweep(struct fwd_fib6 *f, unsigned l, uint32_t gid, const struct fwd_prefix6 *p,
		 uint32_t j, uint32_t k, uint32_t lo, uint32_t end, uint32_t base, int mode);

/* Entry @idx of table @pgid (level @l - 1) gets the group of level @l built
 * from p[j..k) (sorted, all inside the entry's block) over region @base:
 * the group it has, rewritten (@mode 0 and the entry links one), or a new
 * one. On failure the FIB is only fit for freeing (fwd_fib6.h): a half
 * written group is left where it is, unread. */
static int put_group(struct fwd_fib6 *f, unsigned l, uint32_t pgid, uint32_t idx, uint32_t base,
		     const struct fwd_prefix6 *p, uint32_t j, uint32_t k, int mode)
{
	uint32_t e = mode & NOFREE ? 0 : entries(f, pgid)[idx], g;
	int rc, zero, sub = 0;

	if (!(e & FWD_FIB6_EXT)) {
		if ((rc = group_alloc(f, &g, &zero)) != 0)
			return rc;
		sub = NOFREE | (zero ? ZERO : 0);
	} else {
		g = e & ~FWD_FIB6_EXT;
	}
	if ((rc = sweep(f, l, g, p, j, k, 0, 256, base, sub)) != 0)
		return rc;
	f->base[g] = base;
	entries(f, pgid)[idx] = FWD_FIB6_EXT | g; /* after the sweep: tbl8 may have moved */
	return 0;
}

/* Entries [lo, end) of table @gid (level @l) from the prefixes p[j..k)
 * (sorted, all inside the range and longer than the level above) over
 * region @base, as fwd_fib4.c's sweep24: a stack of the enclosing
 * prefixes that end at this level, each gap the innermost one's region;
 * an entry with longer prefixes inside gets their group. */
static int sweep(struct fwd_fib6 *f, unsigned l, uint32_t gid, const struct fwd_prefix6 *p,
		 uint32_t j, uint32_t k, uint32_t lo, uint32_t end, uint32_t base, int mode)
{
	struct {
		uint32_t end, r;
	} st[26]; /* lengths 0-24 at level 0, 8 lengths below */
	unsigned d = depth_of(l), sp = 0;
	uint32_t cur = lo;

	while (j < k) {
		u128 a = load(p[j].addr);
		uint32_t idx = index_of(a, l), r;

		while (sp && st[sp - 1].end <= idx) {
			put(f, gid, cur, st[sp - 1].end, st[sp - 1].r, mode);
			cur = st[--sp].end;
		}
		r = sp ? st[sp - 1].r : base;
		put(f, gid, cur, idx, r, mode);
		cur = idx;
		if (p[j].len <= d) {
			st[sp].end = idx + (uint32_t)(1ull << (d - p[j].len));
			st[sp++].r = p[j].region;
			j++;
			continue;
		}
		/* The prefixes inside this entry are consecutive. */
		uint32_t m = j + 1;

		while (m < k && inside(&p[m], a, d))
			m++;
		int rc = put_group(f, l + 1, gid, idx, r, p, j, m, mode);

		if (rc)
			return rc;
		cur = idx + 1;
		j = m;
	}
	while (sp) {
		put(f, gid, cur, st[sp - 1].end, st[sp - 1].r, mode);
		cur = st[--sp].end;
	}
	put(f, gid, cur, end, base, mode);
	return 0;
}

/* ---- the API --------------------------------------------------------------------- */

struct fwd_fib6 *fwd_fib6_create(uint32_t groups)
{
	struct fwd_fib6 *f = calloc(1, sizeof(*f));
	size_t dirty;

	if (f == NULL)
		return NULL;
	if (groups < 64)
		groups = 64;
	if (groups > GROUPS_MAX)
		groups = GROUPS_MAX;
	/* Kept memory when there is some (fwd_hugemap.h): the build then
	 * writes every entry, and every entry of the groups it makes. */
	f->tbl24 = fwd_hugemap_reuse((size_t)TBL24_N * sizeof(uint32_t), FWD_HUGEMAP_FIB_TBL24,
				     &f->tbl24_size, &dirty);
	f->dirty24 = dirty != 0;
	f->tbl8 = fwd_hugemap_reuse((size_t)groups * GROUP_BYTES, FWD_HUGEMAP_FIB6_GROUPS,
				    &f->tbl8_size, &dirty);
	if (f->tbl8 && f->tbl8_size / GROUP_BYTES < GROUPS_MAX)
		groups = (uint32_t)(f->tbl8_size / GROUP_BYTES);
	/* Groups past what old contents reach are zero (a mapping grown to
	 * fit, or fresh). */
	f->clean_from = (uint32_t)((dirty + GROUP_BYTES - 1) / GROUP_BYTES);
	f->base = malloc((size_t)groups * 4);
	f->free = malloc((size_t)groups * 4);
	f->cap = groups;
	if (f->tbl24 == NULL || f->tbl8 == NULL || f->base == NULL || f->free == NULL) {
		fwd_fib6_free(f);
		errno = ENOMEM;
		return NULL;
	}
	return f;
}

void fwd_fib6_free(struct fwd_fib6 *f)
{
	if (f == NULL)
		return;
	fwd_hugemap_recycle(f->tbl24, f->tbl24_size, FWD_HUGEMAP_FIB_TBL24);
	fwd_hugemap_recycle(f->tbl8, f->tbl8_size, FWD_HUGEMAP_FIB6_GROUPS);
	free(f->base);
	free(f->free);
	free(f);
}

uint32_t fwd_fib6_groups_needed(const struct fwd_prefix6 *p, uint32_t n)
{
	uint32_t groups = 0;

	/* Sorted input makes each level's truncations non-decreasing: count runs. */
	for (unsigned l = 0; l + 1 < LEVELS; l++) {
		unsigned d = depth_of(l);
		u128 last = 0;
		int have = 0;

		for (uint32_t i = 0; i < n; i++) {
			u128 t = load(p[i].addr) & mask_of(d);

			if (p[i].len <= d || (have && t == last))
				continue;
			groups++;
			last = t;
			have = 1;
		}
	}
	return groups;
}

int fwd_fib6_build(struct fwd_fib6 *f, const struct fwd_prefix6 *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		f->nlen[p[i].len]++;
	return sweep(f, 0, TOP, p, 0, n, 0, TBL24_N, 0, f->dirty24 ? NOFREE : NOFREE | ZERO);
}

void fwd_fib6_count(struct fwd_fib6 *f, uint8_t len, int d)
{
	if (len <= 128)
		f->nlen[len] += (uint32_t)d;
}

static int64_t longest(const struct fwd_fib6 *f, const struct fwd_prefix6 *p, uint32_t n, u128 a,
		       unsigned len)
{
	uint32_t i, hi;
	int l;

	a &= mask_of(len);
	/* As fwd_fib4_longest: the last prefix at or before a/len holds it,
	 * or lies inside every prefix that does. */
	i = lower_bound(p, 0, n, a, len + 1);
	if (i == 0)
		return -1;
	u128 q = load(p[i - 1].addr), x = q ^ a;

	if (p[i - 1].len <= len && (x & mask_of(p[i - 1].len)) == 0)
		return i - 1;
	l = (uint64_t)(x >> 64) ? __builtin_clzll((uint64_t)(x >> 64))
				: 64 + __builtin_clzll((uint64_t)x); /* x != 0 */
	if (l > (int)len)
		l = (int)len;
	hi = i - 1;
	for (; l >= 0; l--) {
		u128 c = a & mask_of((unsigned)l);
		uint32_t j;

		if (f && f->nlen[l] == 0)
			continue;
		j = gallop_back(p, hi, c, (unsigned)l);
		if (j < hi && p[j].len == l && load(p[j].addr) == c)
			return j;
		hi = j;
	}
	return -1;
}

int64_t fwd_fib6_longest(const struct fwd_fib6 *f, const struct fwd_prefix6 *p, uint32_t n,
			 const uint8_t addr[16], uint8_t len)
{
	return len > 128 ? -1 : longest(f, p, n, load(addr), len);
}

int fwd_fib6_update(struct fwd_fib6 *f, const struct fwd_prefix6 *p, uint32_t n,
		    const uint8_t addr[16], uint8_t len, uint32_t *hint)
{
	struct {
		uint32_t gid, idx;
	} path[LEVELS];
	unsigned lv, L;
	uint32_t i, j, k, base;
	u128 a;
	int held, rc;

	if (len > 128)
		return -EINVAL;
	a = load(addr) & mask_of(len);
	i = gallop_fwd(p, n, *hint < n ? *hint : n, a, len);
	*hint = i;
	held = i < n && p[i].len == len && load(p[i].addr) == a;
	L = level_of(len);
	/* Down to the prefix's level. An entry above it with no group gets
	 * one built from the prefixes inside its block, this change's
	 * included: then nothing is left to do. */
	path[0].gid = TOP;
	for (lv = 0; lv < L; lv++) {
		uint32_t idx = index_of(a, lv), e = entries(f, path[lv].gid)[idx];
		unsigned d = depth_of(lv);

		path[lv].idx = idx;
		if (e & FWD_FIB6_EXT) {
			path[lv + 1].gid = e & ~FWD_FIB6_EXT;
			continue;
		}
		j = i;
		while (j > 0 && inside(&p[j - 1], a, d))
			j--;
		k = i;
		while (k < n && inside(&p[k], a, d))
			k++;
		return j == k ? 0 : put_group(f, lv + 1, path[lv].gid, idx, e, p, j, k, 0);
	}
	/* Its entries at its level, from the table after the change. */
	if (held) {
		base = p[i].region;
	} else {
		int64_t c = len ? longest(f, p, n, a, len - 1u) : -1;

		base = c < 0 ? 0 : p[c].region;
	}
	{
		u128 last = a | ~mask_of(len);
		uint32_t idx = index_of(a, L);

		j = i + (uint32_t)held;
		k = j;
		while (k < n && load(p[k].addr) <= last)
			k++;
		rc = sweep(f, L, path[L].gid, p, j, k, idx,
			   idx + (uint32_t)(1ull << (depth_of(L) - len)), base, 0);
		if (rc)
			return rc;
	}
	/* A group whose block holds no prefix any more goes, and its entry
	 * takes the region the group was built over; then the one above. */
	for (lv = L; lv >= 1 && !held; lv--) {
		unsigned d = depth_of(lv - 1);
		uint32_t g = path[lv].gid;

		if ((i > 0 && inside(&p[i - 1], a, d)) || (i < n && inside(&p[i], a, d)))
			break;
		entries(f, path[lv - 1].gid)[path[lv - 1].idx] = f->base[g];
		free_tree(f, g);
	}
	return 0;
}

size_t fwd_fib6_bytes(const struct fwd_fib6 *f)
{
	return f ? f->tbl24_size + f->tbl8_size + (size_t)f->cap * 8 : 0;
}
