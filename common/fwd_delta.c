#include "fwd_delta.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_class.h"
#include "fwd_fib4.h"
#include "fwd_fib6.h"
#include "fwd_hash.h"
#include "fwd_names.h"
#include "fwd_parse.h"
#include "fwd_prefix.h"
#include "fwd_residency.h"

#define REC 24 /* bytes per packed change */

void fwd_delta_clear(struct fwd_delta *d)
{
	if (d == NULL)
		return;
	free(d->ops);
	free(d->paths);
	memset(d, 0, sizeof(*d));
}

static struct fwd_delta_op *grow(struct fwd_delta *d, const char *path)
{
	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 64;
		struct fwd_delta_op *ops = realloc(d->ops, sizeof(*ops) * cap);

		if (ops == NULL)
			return NULL;
		d->ops = ops;
		if (d->paths || path) {
			char(*paths)[FWD_DELTA_PATH_MAX] = realloc(d->paths, sizeof(*paths) * cap);

			if (paths == NULL)
				return NULL;
			if (d->paths == NULL) /* the changes before had no path */
				memset(paths, 0, sizeof(*paths) * d->n);
			d->paths = paths;
		}
		d->cap = cap;
	} else if (path && d->paths == NULL) {
		d->paths = calloc(d->cap, sizeof(*d->paths));
		if (d->paths == NULL)
			return NULL;
	}
	if (d->paths)
		snprintf(d->paths[d->n], sizeof(d->paths[d->n]), "%s", path ? path : "");
	memset(&d->ops[d->n], 0, sizeof(d->ops[d->n]));
	d->ops[d->n].index = d->n;
	return &d->ops[d->n++];
}

/* Where change @i is named in errors. */
static const char *op_path(const struct fwd_delta *d, uint32_t i, char *buf, size_t len)
{
	if (d->paths && d->paths[i][0])
		return d->paths[i];
	snprintf(buf, len, "changes[%u]", i);
	return buf;
}

static int host_bits(const uint8_t *a, unsigned bytes, uint8_t len)
{
	for (unsigned i = 0; i < bytes; i++) {
		unsigned keep = len >= (i + 1) * 8 ? 8 : (len > i * 8 ? len - i * 8 : 0);
		uint8_t m = keep ? (uint8_t)(0xff << (8 - keep)) : 0;

		if (a[i] & ~m)
			return 1;
	}
	return 0;
}

int fwd_delta_add_bin(struct fwd_delta *d, enum fwd_delta_kind kind, uint16_t region, int family,
		      const uint8_t *addr, uint8_t len, struct fwd_err *e)
{
	struct fwd_delta_op *op;

	if ((kind != FWD_DELTA_ADD && kind != FWD_DELTA_REMOVE) || (family != 4 && family != 6) ||
	    len > (family == 4 ? 32 : 128) || host_bits(addr, family == 4 ? 4 : 16, len)) {
		char path[32];

		snprintf(path, sizeof(path), "changes[%u]", d->n);
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
				    "not a prefix change (kind %d, family %d, length %u)", kind,
				    family, len);
	}
	op = grow(d, NULL);
	if (op == NULL)
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	op->kind = (uint8_t)kind;
	op->family = (uint8_t)family;
	op->len = len;
	op->region = region;
	memcpy(op->addr, addr, family == 4 ? 4 : 16);
	return 0;
}

int fwd_delta_add_text(struct fwd_delta *d, enum fwd_delta_kind kind, uint16_t region,
		       const char *prefix, const char *path, struct fwd_err *e)
{
	char addr[64], *end;
	const char *slash = strchr(prefix, '/');
	unsigned long len;
	uint8_t a[16] = {0};
	int fam;
	struct fwd_delta_op *op;

	if (path == NULL)
		path = "";
	if (slash == NULL || (size_t)(slash - prefix) >= sizeof(addr) || slash[1] < '0' ||
	    slash[1] > '9')
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
				    "'%.64s' is not a prefix (ADDRESS/LENGTH)", prefix);
	memcpy(addr, prefix, (size_t)(slash - prefix));
	addr[slash - prefix] = '\0';
	errno = 0;
	len = strtoul(slash + 1, &end, 10);
	if (*end || errno || slash[1] == '\0')
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
				    "'%.64s' has a bad prefix length", prefix);
	if (fwd_prefix_len_leading_zero(slash + 1))
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
				    "'%.64s': a prefix length with a leading zero", prefix);
	fam = strchr(addr, ':') ? 6 : 4;
	if (inet_pton(fam == 4 ? AF_INET : AF_INET6, addr, a) != 1)
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
				    "'%s' is not a valid IPv%d address", addr, fam);
	if (len > (fam == 4 ? 32u : 128u))
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
				    "IPv%d prefix length %lu is out of range 0..%u", fam, len,
				    fam == 4 ? 32u : 128u);
	if (host_bits(a, fam == 4 ? 4 : 16, (uint8_t)len)) {
		char buf[64];
		struct fwd_delta_op tmp = {.family = (uint8_t)fam, .len = (uint8_t)len};

		memcpy(tmp.addr, a, 16);
		for (unsigned i = 0; i < 16; i++) {
			unsigned keep = len >= (i + 1) * 8 ? 8 : (len > i * 8 ? len - i * 8 : 0);

			tmp.addr[i] &= keep ? (uint8_t)(0xff << (8 - keep)) : 0;
		}
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
				    "host bits set in '%.64s' (did you mean %s?)", prefix,
				    fwd_delta_prefix_str(&tmp, buf, sizeof(buf)));
	}
	if (fam == 6 && fwd_prefix6_mapped(a, (unsigned)len))
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path, FWD_PREFIX6_MAPPED_FMT,
				    prefix, FWD_PREFIX6_MAPPED_ARGS(a, (unsigned)len));
	op = grow(d, path);
	if (op == NULL)
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	op->kind = (uint8_t)kind;
	op->family = (uint8_t)fam;
	op->len = (uint8_t)len;
	op->region = region;
	memcpy(op->addr, a, 16);
	return 0;
}

const char *fwd_delta_prefix_str(const struct fwd_delta_op *op, char *buf, size_t len)
{
	return fwd_nest_str(op->family, op->addr, op->len, buf, len);
}

/* ---- the table's prefixes as 16-byte keys -------------------------------- */

static void p4_key(const struct fwd_prefix4 *p, uint8_t a[16])
{
	memset(a, 0, 16);
	a[0] = (uint8_t)(p->addr >> 24);
	a[1] = (uint8_t)(p->addr >> 16);
	a[2] = (uint8_t)(p->addr >> 8);
	a[3] = (uint8_t)p->addr;
}

static uint32_t key_u32(const uint8_t *a)
{
	return (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
}

/* Order of validated tables: address, then length. */
static int cmp_key(const uint8_t *a, uint8_t alen, const uint8_t *b, uint8_t blen)
{
	int r = memcmp(a, b, 16);

	if (r)
		return r;
	return alen < blen ? -1 : alen > blen;
}

/* A family's prefixes of a table, sorted. */
struct side {
	int fam;
	uint32_t n;
	const struct fwd_prefix4 *p4;
	const struct fwd_prefix6 *p6;
};

static void side_key(const struct side *s, uint32_t i, uint8_t a[16], uint8_t *len,
		     uint16_t *region)
{
	if (s->fam == 4) {
		p4_key(&s->p4[i], a);
		*len = s->p4[i].len;
		*region = s->p4[i].region;
	} else {
		memcpy(a, s->p6[i].addr, 16);
		*len = s->p6[i].len;
		*region = s->p6[i].region;
	}
}

/* Prefix @i of @s against (@a, @len): <0, 0, >0. Typed, without building
 * a key: binary searches over a million prefixes are cache misses first,
 * and the compare should add nothing to them. */
static inline int side_cmp(const struct side *s, uint32_t i, const uint8_t *a, uint8_t len)
{
	if (s->fam == 4) {
		uint64_t x = (uint64_t)s->p4[i].addr << 8 | s->p4[i].len,
			 y = (uint64_t)key_u32(a) << 8 | len;

		return x < y ? -1 : x > y;
	}
	int r = memcmp(s->p6[i].addr, a, 16);

	return r ? r : (s->p6[i].len < len ? -1 : s->p6[i].len > len);
}

/* First index in [@lo, @hi) whose key is not below (@a, @len). */
static uint32_t lower_bound_in(const struct side *s, uint32_t lo, uint32_t hi, const uint8_t *a,
			       uint8_t len)
{
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (side_cmp(s, mid, a, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint32_t lower_bound(const struct side *s, const uint8_t *a, uint8_t len)
{
	return lower_bound_in(s, 0, s->n, a, len);
}

/* lower_bound at or after @from, for keys given in order: galloping from
 * the last position costs O(log gap), so m sorted changes cost
 * O(m log(n/m)) and stay near the cache lines the last one touched. */
static uint32_t gallop(const struct side *s, uint32_t from, const uint8_t *a, uint8_t len)
{
	uint32_t step = 1, lo = from, hi;

	if (from >= s->n || side_cmp(s, from, a, len) >= 0)
		return from;
	for (;;) {
		hi = lo + step;
		if (hi >= s->n || hi < lo) {
			hi = s->n;
			break;
		}
		if (side_cmp(s, hi, a, len) >= 0)
			break;
		lo = hi;
		step *= 2;
	}
	return lower_bound_in(s, lo + 1, hi, a, len);
}

/* Index of exactly (@a, @len), or UINT32_MAX. */
static uint32_t find(const struct side *s, const uint8_t *a, uint8_t len)
{
	uint32_t i = lower_bound(s, a, len);

	return i < s->n && side_cmp(s, i, a, len) == 0 ? i : UINT32_MAX;
}

static void mask_key(const uint8_t *a, uint8_t len, uint8_t out[16])
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = len >= (i + 1) * 8 ? 8 : (len > i * 8 ? len - i * 8 : 0);

		out[i] = a[i] & (keep ? (uint8_t)(0xff << (8 - keep)) : 0);
	}
}

/* ---- apply ------------------------------------------------------------------ */

/* Sort order of changes: family, address, length, then request order. */
static int cmp_op(const void *x, const void *y)
{
	const struct fwd_delta_op *a = x, *b = y;
	int r;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if ((r = cmp_key(a->addr, a->len, b->addr, b->len)))
		return r;
	if (a->kind != b->kind) /* a move's removal before its add */
		return a->kind == FWD_DELTA_REMOVE ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

/* cmp_op's order within a family as three integers compared in turn: the
 * address's halves, then length, kind (removal first) and request index. */
struct op_key {
	uint64_t hi, lo, tail;
	uint32_t at; /* the op's position before sorting */
};

static uint64_t be64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static inline int key_before(const struct op_key *a, const struct op_key *b)
{
	if (a->hi != b->hi)
		return a->hi < b->hi;
	if (a->lo != b->lo)
		return a->lo < b->lo;
	return a->tail < b->tail;
}

/*
 * Sort @ops by cmp_op. What regionfwd receives is sorted already (regiond
 * sends the effective changes): one pass says so. Otherwise a bottom-up merge
 * sort of precomputed keys: qsort's indirect comparison and byte-wise copies
 * of 28-byte records took most of a 20k-change batch's validation here.
 * The families are split first (IPv4 before IPv6), then each is sorted.
 */
static int sort_ops(struct fwd_delta_op *ops, uint32_t n)
{
	struct op_key *k, *tmp;
	struct fwd_delta_op *out;
	uint32_t n4 = 0, i4 = 0, i6;

	uint32_t sorted = 1;

	while (sorted < n && cmp_op(&ops[sorted - 1], &ops[sorted]) < 0)
		sorted++;
	if (sorted >= n)
		return 0;
	k = malloc(sizeof(*k) * n * 2);
	out = malloc(sizeof(*out) * n);
	if (k == NULL || out == NULL) {
		free(k);
		free(out);
		return -ENOMEM;
	}
	tmp = k + n;
	for (uint32_t i = 0; i < n; i++)
		n4 += ops[i].family == 4;
	i6 = n4;
	for (uint32_t i = 0; i < n; i++) {
		const struct fwd_delta_op *op = &ops[i];
		struct op_key *x = &k[op->family == 4 ? i4++ : i6++];

		x->hi = be64(op->addr);
		x->lo = be64(op->addr + 8);
		x->tail = (uint64_t)op->len << 40 | (uint64_t)(op->kind == FWD_DELTA_ADD) << 32 |
			  op->index;
		x->at = i;
	}
	/* Runs of w, merged pairwise into tmp, within each family's part. */
	for (int part = 0; part < 2; part++) {
		uint32_t lo = part ? n4 : 0, hi = part ? n : n4;
		struct op_key *src = k, *dst = tmp;

		for (uint32_t w = 1; w < hi - lo; w *= 2) {
			for (uint32_t s = lo; s < hi; s += 2 * w) {
				uint32_t m = s + w < hi ? s + w : hi, e = m + w < hi ? m + w : hi;
				uint32_t a = s, b = m, o = s;

				while (a < m && b < e)
					dst[o++] =
						key_before(&src[b], &src[a]) ? src[b++] : src[a++];
				while (a < m)
					dst[o++] = src[a++];
				while (b < e)
					dst[o++] = src[b++];
			}
			struct op_key *t = src;

			src = dst;
			dst = t;
		}
		if (src != k)
			memcpy(k + lo, src + lo, sizeof(*k) * (hi - lo));
	}
	for (uint32_t i = 0; i < n; i++)
		out[i] = ops[k[i].at];
	memcpy(ops, out, sizeof(*ops) * n);
	free(out);
	free(k);
	return 0;
}

/* The merge of one family: the old prefixes minus the removed plus the added. */
static int merge(const struct side *old, const struct fwd_delta_op *ops, const uint32_t *pos,
		 uint32_t nops, int fam, void **out, uint32_t *nout)
{
	uint32_t added = 0, removed = 0, i = 0, j = 0, k = 0;
	size_t sz = fam == 4 ? sizeof(struct fwd_prefix4) : sizeof(struct fwd_prefix6);
	uint8_t *arr;

	for (uint32_t m = 0; m < nops; m++)
		ops[m].kind == FWD_DELTA_ADD ? added++ : removed++;
	*nout = old->n + added - removed;
	arr = malloc(sz * (*nout ? *nout : 1));
	if (arr == NULL)
		return -ENOMEM;
	/* Runs of untouched prefixes are copied whole: the cost is a memcpy
	 * of the table plus the changes, at the positions found before. */
	const uint8_t *src = fam == 4 ? (const uint8_t *)old->p4 : (const uint8_t *)old->p6;

	for (j = 0; j < nops; j++) {
		uint32_t at = pos[j];

		if (at < i) /* a move's add, after its removal */
			at = i;

		if (at > i)
			memcpy(arr + sz * k, src + sz * i, sz * (at - i));
		k += at - i;
		i = at;
		if (ops[j].kind == FWD_DELTA_REMOVE) {
			i++; /* it is there: fwd_delta_apply checked */
			continue;
		}
		if (fam == 4) {
			struct fwd_prefix4 *p = (struct fwd_prefix4 *)(arr + sz * k++);

			*p = (struct fwd_prefix4){.addr = key_u32(ops[j].addr),
						  .len = ops[j].len,
						  .region = ops[j].region};
		} else {
			struct fwd_prefix6 *p = (struct fwd_prefix6 *)(arr + sz * k++);

			memset(p, 0, sizeof(*p));
			memcpy(p->addr, ops[j].addr, 16);
			p->len = ops[j].len;
			p->region = ops[j].region;
		}
	}
	if (old->n > i)
		memcpy(arr + sz * k, src + sz * i, sz * (old->n - i));
	k += old->n - i;
	(void)k;
	*out = arr;
	return 0;
}

static void lens_of(const struct side *s, uint8_t lens[129])
{
	memset(lens, 0, 129);
	for (uint32_t i = 0; i < s->n; i++)
		lens[s->fam == 4 ? s->p4[i].len : s->p6[i].len] = 1;
}

/* Residency of what a family's changes touch, in the new table, as
 * fwd_residency_check() holds it for a whole one: every prefix against every
 * protected prefix that covers it. Only an added prefix makes new pairs: it
 * is checked against each protected cover, and when its region is protected,
 * each prefix of another region inside it is checked against it. A removal
 * makes none (whatever still covers a prefix covered it before), so it is
 * never refused for nesting. @seen: nregions bytes, scratch. */
static int check_nesting(struct fwd_table *nt, const struct fwd_class *c,
			 struct fwd_res_pairs *pairs, const struct side *s,
			 const struct fwd_delta_op *ops, uint32_t nops, const struct fwd_delta *d,
			 uint8_t *seen, struct fwd_err *e)
{
	uint8_t lens[129];
	int ok;

	lens_of(s, lens);
	for (uint32_t m = 0; m < nops; m++) {
		const struct fwd_delta_op *op = &ops[m];
		char ib[64], ob[64], pb[64];
		uint8_t a[16], len, hi[16];
		uint16_t region;
		uint32_t i;

		if (op->kind != FWD_DELTA_ADD)
			continue;
		/* Its covers, nearest first. */
		for (int l = (int)op->len - 1; l >= 0; l--) {
			uint8_t ca[16];
			uint16_t cov_region;

			if (!lens[l])
				continue;
			mask_key(op->addr, (uint8_t)l, ca);
			if ((i = find(s, ca, (uint8_t)l)) == UINT32_MAX)
				continue;
			side_key(s, i, ca, &len, &cov_region);
			if (cov_region == op->region || !fwd_residency_protects(nt, cov_region))
				continue;
			/* Each pair judged once a delta (a batch of 800 prefixes
			 * into one region took 28 s, each re-walking every rule,
			 * service and group member: a probe); the reason's text
			 * only for a pair that breaks. */
			if ((ok = fwd_residency_pair_ok(pairs, op->region, cov_region)) < 0)
				return fwd_err_fail(e, FWD_R_INTERNAL, nt->source, 0, "",
						    "out of memory");
			if (!ok &&
			    fwd_residency_check_pair(nt, c, op->region, cov_region,
						     fwd_delta_prefix_str(op, ib, sizeof(ib)),
						     fwd_nest_str(s->fam, ca, len, ob, sizeof(ob)),
						     0, op_path(d, op->index, pb, sizeof(pb)), e))
				return -EPERM;
			/* The rules of the cover hold the added prefix's region
			 * now: its later fragments keep to them too. */
			fwd_residency_rows_nest(nt, op->region, cov_region);
		}
		/* What it covers, when it is protected: every prefix in its range,
		 * one check per region. */
		if (!fwd_residency_protects(nt, op->region))
			continue;
		memset(seen, 0, nt->nregions);
		memcpy(hi, op->addr, 16);
		for (unsigned b = op->len; b < (s->fam == 4 ? 32u : 128u); b++)
			hi[b / 8] |= (uint8_t)(0x80 >> (b % 8));
		for (i = lower_bound(s, op->addr, (uint8_t)(op->len + 1)); i < s->n; i++) {
			side_key(s, i, a, &len, &region);
			if (memcmp(a, hi, 16) > 0)
				break;
			if (!fwd_nest_covers(op->addr, op->len, a, len) || len == op->len ||
			    region == op->region || seen[region])
				continue;
			if ((ok = fwd_residency_pair_ok(pairs, region, op->region)) < 0)
				return fwd_err_fail(e, FWD_R_INTERNAL, nt->source, 0, "",
						    "out of memory");
			if (!ok &&
			    fwd_residency_check_pair(nt, c, region, op->region,
						     fwd_nest_str(s->fam, a, len, ib, sizeof(ib)),
						     fwd_delta_prefix_str(op, ob, sizeof(ob)), 0,
						     op_path(d, op->index, pb, sizeof(pb)), e))
				return -EPERM;
			fwd_residency_rows_nest(nt, region, op->region);
			seen[region] = 1;
		}
	}
	return 0;
}

int fwd_delta_apply(const struct fwd_table *t, const struct fwd_delta *d, struct fwd_table **out,
		    struct fwd_delta *effective, struct fwd_delta_stats *stats, struct fwd_err *e)
{
	struct side old[2] = {{.fam = 4, .n = t->nprefix4, .p4 = t->prefix4},
			      {.fam = 6, .n = t->nprefix6, .p6 = t->prefix6}};
	struct fwd_delta_stats st = {0};
	struct fwd_delta_op *ops = NULL;
	struct fwd_table *nt = NULL;
	void *arr[2] = {NULL, NULL};
	uint32_t narr[2] = {0, 0}, nops = 0, nfam4 = 0;
	char pb[FWD_DELTA_PATH_MAX + 16], xb[64];
	uint8_t *move = NULL; /* per change (request order): half of a move */
	uint32_t *pos = NULL, *npos = NULL; /* per change: its place in the table */
	uint16_t *held = NULL; /* per change: the region holding its prefix, or 0 */
	int rc = 0;

	*out = NULL;
	if (effective)
		memset(effective, 0, sizeof(*effective));
	/* Sorted, a prefix named twice is two neighbours. Allowed only as a
	 * move: its removal from one region and its add to another. */
	ops = malloc(sizeof(*ops) * (d->n ? d->n : 1));
	move = calloc(d->n ? d->n : 1, 1);
	pos = malloc(sizeof(*pos) * (d->n ? d->n : 1));
	npos = malloc(sizeof(*npos) * (d->n ? d->n : 1));
	held = malloc(sizeof(*held) * (d->n ? d->n : 1));
	if (ops == NULL || move == NULL || pos == NULL || npos == NULL || held == NULL) {
		rc = fwd_err_fail(e, FWD_R_INTERNAL, t->source, 0, "", "out of memory");
		goto out;
	}
	/* An empty batch ({"add": []}) has no ops array: memcpy's source must
	 * not be NULL even for no bytes. */
	if (d->n != 0)
		memcpy(ops, d->ops, sizeof(*ops) * d->n);
	for (uint32_t i = 0; i < d->n; i++)
		ops[i].index = i;
	if (sort_ops(ops, d->n)) {
		rc = fwd_err_fail(e, FWD_R_INTERNAL, t->source, 0, "", "out of memory");
		goto out;
	}
	for (uint32_t i = 1; i < d->n; i++) {
		const struct fwd_delta_op *x = &ops[i - 1], *y = &ops[i];

		if (x->family != y->family || cmp_key(x->addr, x->len, y->addr, y->len))
			continue;
		if (x->kind == FWD_DELTA_REMOVE && y->kind == FWD_DELTA_ADD &&
		    x->region != y->region &&
		    (i + 1 == d->n || ops[i + 1].family != y->family ||
		     cmp_key(ops[i + 1].addr, ops[i + 1].len, y->addr, y->len))) {
			move[x->index] = move[y->index] = 1;
			continue;
		}
		{
			uint32_t first = x->index < y->index ? x->index : y->index;
			uint32_t second = x->index < y->index ? y->index : x->index;
			char fb[FWD_DELTA_PATH_MAX + 16];

			snprintf(fb, sizeof(fb), "%s", op_path(d, first, pb, sizeof(pb)));
			rc = fwd_err_fail(e, FWD_R_INVALID_DELTA, t->source, 0,
					  op_path(d, second, pb, sizeof(pb)),
					  "prefix %s is named twice in this change (also %s)",
					  fwd_delta_prefix_str(y, xb, sizeof(xb)), fb);
			goto out;
		}
	}
	/* Where each change falls in the table: sorted changes gallop along
	 * the sorted prefixes (one pass, not a search per change). By request
	 * index: the region holding the prefix (0: none) and the position. */
	for (uint32_t i = 0, from[2] = {0, 0}; i < d->n; i++) {
		const struct fwd_delta_op *op = &ops[i];
		int f = op->family == 6;
		uint32_t at = gallop(&old[f], from[f], op->addr, op->len);

		from[f] = at;
		pos[op->index] = at;
		held[op->index] = at < old[f].n && side_cmp(&old[f], at, op->addr, op->len) == 0
					  ? (f ? old[f].p6[at].region : old[f].p4[at].region)
					  : FWD_REGION_UNKNOWN;
	}
	/* Each change against the table, in the order given: the first bad
	 * one is the one named. */
	for (uint32_t i = 0; i < d->n; i++) {
		const struct fwd_delta_op *op = &d->ops[i];
		uint16_t h = held[i];

		if (op->region == FWD_REGION_UNKNOWN || op->region >= t->nregions) {
			rc = fwd_err_fail(e, FWD_R_INVALID_DELTA, t->source, 0,
					  op_path(d, i, pb, sizeof(pb)),
					  "region id %u is not a region of the table", op->region);
			goto out;
		}
		if (op->kind == FWD_DELTA_ADD && h != FWD_REGION_UNKNOWN && h != op->region &&
		    !move[i]) {
			rc = fwd_err_fail(e, FWD_R_INVALID_DELTA, t->source, 0,
					  op_path(d, i, pb, sizeof(pb)),
					  "prefix %s is held by region '%s', not '%s': remove it "
					  "there in the same change to move it",
					  fwd_delta_prefix_str(op, xb, sizeof(xb)),
					  t->region_names[h], t->region_names[op->region]);
			goto out;
		}
		if (op->kind == FWD_DELTA_REMOVE && h != op->region) {
			if (h == FWD_REGION_UNKNOWN)
				rc = fwd_err_fail(e, FWD_R_INVALID_DELTA, t->source, 0,
						  op_path(d, i, pb, sizeof(pb)),
						  "prefix %s is not in region '%s'",
						  fwd_delta_prefix_str(op, xb, sizeof(xb)),
						  t->region_names[op->region]);
			else
				rc = fwd_err_fail(e, FWD_R_INVALID_DELTA, t->source, 0,
						  op_path(d, i, pb, sizeof(pb)),
						  "prefix %s is not in region '%s' but in '%s'",
						  fwd_delta_prefix_str(op, xb, sizeof(xb)),
						  t->region_names[op->region], t->region_names[h]);
			goto out;
		}
	}
	/* Adds of prefixes their region holds drop out (no-ops). */
	for (uint32_t i = 0; i < d->n; i++) {
		const struct fwd_delta_op *op = &ops[i];

		if (op->kind == FWD_DELTA_ADD && held[op->index] != FWD_REGION_UNKNOWN &&
		    !move[op->index]) {
			st.unchanged++;
			continue;
		}
		if (op->family == 4)
			op->kind == FWD_DELTA_ADD ? st.added4++ : st.removed4++;
		else
			op->kind == FWD_DELTA_ADD ? st.added6++ : st.removed6++;
		npos[nops] = pos[op->index];
		ops[nops++] = *op;
		nfam4 += op->family == 4;
	}
	if (stats)
		*stats = st;
	if (nops == 0)
		goto out; /* nothing changes: no table */
	if (merge(&old[0], ops, npos, nfam4, 4, &arr[0], &narr[0]) ||
	    merge(&old[1], ops + nfam4, npos + nfam4, nops - nfam4, 6, &arr[1], &narr[1])) {
		free(arr[0]);
		free(arr[1]);
		rc = fwd_err_fail(e, FWD_R_INTERNAL, t->source, 0, "", "out of memory");
		goto out;
	}
	nt = fwd_table_with_prefixes(t, arr[0], narr[0], arr[1], narr[1]);
	if (nt == NULL) {
		rc = fwd_err_fail(e, FWD_R_INTERNAL, t->source, 0, "", "out of memory");
		goto out;
	}
	if (t->nresidency) {
		struct fwd_class *c = fwd_class_build(nt);
		struct fwd_res_pairs *pairs = c ? fwd_residency_pairs_create(nt, c) : NULL;
		uint8_t *seen = malloc(nt->nregions ? nt->nregions : 1);
		struct side ns[2] = {{.fam = 4, .n = nt->nprefix4, .p4 = nt->prefix4},
				     {.fam = 6, .n = nt->nprefix6, .p6 = nt->prefix6}};

		if (c == NULL || pairs == NULL || seen == NULL)
			rc = fwd_err_fail(e, FWD_R_INTERNAL, t->source, 0, "", "out of memory");
		else if (check_nesting(nt, c, pairs, &ns[0], ops, nfam4, d, seen, e) ||
			 check_nesting(nt, c, pairs, &ns[1], ops + nfam4, nops - nfam4, d, seen, e))
			rc = -EPERM;
		free(seen);
		fwd_residency_pairs_free(pairs);
		fwd_class_free(c);
		if (rc)
			goto out;
		/* A removal can take a region out of a protected one's
		 * prefixes (or a protected prefix away from over others): the
		 * rows, copied and only added to above, would go on holding it
		 * where the same table built whole does not. Filled again then,
		 * from the new prefixes: a walk, for removals that can matter. */
		for (uint32_t i = 0; i < nops; i++)
			if (ops[i].kind == FWD_DELTA_REMOVE &&
			    fwd_residency_rows_stale(nt, ops[i].region)) {
				if (fwd_residency_rows_refill(nt)) {
					rc = fwd_err_fail(e, FWD_R_INTERNAL, t->source, 0, "",
							  "out of memory");
					goto out;
				}
				break;
			}
	}
	if (effective) {
		effective->ops = ops;
		effective->n = effective->cap = nops;
		ops = NULL;
	}
	*out = nt;
	nt = NULL;
out:
	fwd_table_free(nt);
	free(held);
	free(npos);
	free(pos);
	free(move);
	free(ops);
	return rc;
}

/* ---- the FIBs ------------------------------------------------------------------ */

/* A move is its removal, then its add (fwd_delta_apply's order). */
static int is_move(const struct fwd_delta *eff, uint32_t i)
{
	const struct fwd_delta_op *op = &eff->ops[i], *nx;

	if (op->kind != FWD_DELTA_REMOVE || i + 1 >= eff->n)
		return 0;
	nx = &eff->ops[i + 1];
	return nx->kind == FWD_DELTA_ADD && nx->family == op->family && nx->len == op->len &&
	       memcmp(nx->addr, op->addr, 16) == 0;
}

int fwd_delta_update_fibs(const struct fwd_delta *eff, const struct fwd_table *t,
			  struct fwd_fib4 *f4, struct fwd_fib6 *f6)
{
	uint32_t hint4 = 0, hint6 = 0;

	/* The table's prefix lengths are counted first: a removal's cover is
	 * searched among the lengths the table after the delta holds. A move
	 * counts neither way. */
	for (uint32_t i = 0; i < eff->n; i++) {
		const struct fwd_delta_op *op = &eff->ops[i];
		int d = op->kind == FWD_DELTA_ADD ? 1 : -1;

		if (is_move(eff, i)) {
			i++;
			continue;
		}
		if (op->family == 4)
			fwd_fib4_count(f4, op->len, d);
		else
			fwd_fib6_count(f6, op->len, d);
	}
	/* In the ops' order (a prefix before the prefixes inside it, which
	 * take their cover's region from the FIB as it left it), the hints
	 * walking forward through the table. */
	for (uint32_t i = 0; i < eff->n; i++) {
		const struct fwd_delta_op *op = &eff->ops[i];
		int rc = op->family == 4 ? fwd_fib4_update(f4, t->prefix4, t->nprefix4,
							   fwd_rd32(op->addr), op->len, &hint4)
					 : fwd_fib6_update(f6, t->prefix6, t->nprefix6, op->addr,
							   op->len, &hint6);

		if (rc)
			return rc;
		i += (uint32_t)is_move(eff, i);
	}
	return 0;
}

/* ---- packing ---------------------------------------------------------------- */

uint8_t *fwd_delta_pack(const struct fwd_delta *d, size_t *len)
{
	uint8_t *buf = calloc(d->n ? d->n : 1, REC);

	if (buf == NULL)
		return NULL;
	for (uint32_t i = 0; i < d->n; i++) {
		uint8_t *r = buf + (size_t)i * REC;
		const struct fwd_delta_op *op = &d->ops[i];

		r[0] = op->kind;
		r[1] = op->family;
		r[2] = op->len;
		r[4] = (uint8_t)(op->region >> 8);
		r[5] = (uint8_t)op->region;
		memcpy(r + 8, op->addr, 16);
	}
	*len = (size_t)d->n * REC;
	return buf;
}

int fwd_delta_unpack(const uint8_t *buf, size_t len, struct fwd_delta *d, struct fwd_err *e)
{
	memset(d, 0, sizeof(*d));
	if (len % REC || len / REC > UINT32_MAX / 2)
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, "changes",
				    "%zu bytes are not whole changes of %d bytes", len, REC);
	d->cap = (uint32_t)(len / REC);
	d->ops = calloc(d->cap ? d->cap : 1, sizeof(*d->ops));
	if (d->ops == NULL)
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	for (uint32_t i = 0; i < d->cap; i++) {
		const uint8_t *r = buf + (size_t)i * REC;
		struct fwd_delta_op *op = &d->ops[i];
		int fam = r[1];

		if ((r[0] != FWD_DELTA_ADD && r[0] != FWD_DELTA_REMOVE) || (fam != 4 && fam != 6) ||
		    r[2] > (fam == 4 ? 32 : 128) || r[3] || r[6] || r[7] ||
		    (fam == 4 && (r[12] | r[13] | r[14] | r[15] | r[16] | r[17] | r[18] | r[19] |
				  r[20] | r[21] | r[22] | r[23])) ||
		    host_bits(r + 8, fam == 4 ? 4 : 16, r[2])) {
			fwd_delta_clear(d);
			return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, "changes",
					    "change %u is malformed", i);
		}
		op->kind = r[0];
		op->family = (uint8_t)fam;
		op->len = r[2];
		op->region = (uint16_t)(r[4] << 8 | r[5]);
		memcpy(op->addr, r + 8, 16);
		op->index = i;
		/* As fwd_delta_add_text() refuses it: a delta on regionfwd's
		 * control socket took one, which its saved document then
		 * carried, and regionfwd refused its own save at the next
		 * start (running the stale --table instead). */
		if (fam == 6 && fwd_prefix6_mapped(op->addr, op->len)) {
			char text[64], path[32];

			fwd_delta_prefix_str(op, text, sizeof(text));
			snprintf(path, sizeof(path), "changes[%u]", i);
			fwd_delta_clear(d);
			return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
					    FWD_PREFIX6_MAPPED_FMT, text,
					    FWD_PREFIX6_MAPPED_ARGS(r + 8, (unsigned)r[2]));
		}
	}
	d->n = d->cap;
	return 0;
}

uint64_t fwd_delta_hash(uint64_t base, const uint8_t *packed, size_t len)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(base >> (8 * i));
	return fwd_hash64_update(fwd_hash64(b, sizeof(b)), packed, len);
}

/* ---- a table with other prefixes --------------------------------------------- */

static void *dup_mem(const void *p, size_t n)
{
	void *q;

	if (p == NULL)
		return NULL;
	q = malloc(n ? n : 1);
	if (q && n)
		memcpy(q, p, n);
	return q;
}

#define DUP(field, n)                                                                              \
	do {                                                                                       \
		c->field = dup_mem(t->field, sizeof(*t->field) * (size_t)(n));                     \
		if (t->field && c->field == NULL)                                                  \
			goto fail;                                                                 \
	} while (0)

struct fwd_table *fwd_table_with_prefixes(const struct fwd_table *t, struct fwd_prefix4 *p4,
					  uint32_t n4, struct fwd_prefix6 *p6, uint32_t n6)
{
	struct fwd_table *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		free(p4);
		free(p6);
		return NULL;
	}
	*c = *t;
	/* Nothing shared: every pointer is replaced before anything can fail
	 * (fwd_table_free of a half-copied table frees only copies). */
	c->region_names = NULL;
	c->region_desc = NULL;
	c->descs = NULL;
	c->service_names = NULL;
	c->ranges = NULL;
	c->links = NULL;
	c->groups = NULL;
	c->policies = NULL;
	c->residency = NULL;
	c->nresidency = 0;
	c->content = NULL;
	c->ncontent = 0;
	c->rule_rows = NULL;
	memset(&c->filters, 0, sizeof(c->filters));
	c->prefix4 = p4;
	c->nprefix4 = n4;
	c->prefix6 = p6;
	c->nprefix6 = n6;
	DUP(region_names, t->nregions);
	DUP(region_desc, t->nregions);
	DUP(descs, t->descs_len); /* the descriptions: the things' offsets stay valid */
	DUP(service_names, t->nservices);
	DUP(ranges, t->nranges);
	DUP(links, t->nlinks);
	DUP(groups, t->ngroups);
	DUP(policies, t->npolicies);
	DUP(rule_rows, fwd_residency_rows_words(t));
	c->filters = t->filters;
	c->filters.rules = NULL;
	c->filters.prefix4 = NULL;
	c->filters.prefix6 = NULL;
	c->filters.ranges = NULL;
	DUP(filters.rules, t->filters.nrules);
	DUP(filters.prefix4, t->filters.nprefix4);
	DUP(filters.prefix6, t->filters.nprefix6);
	DUP(filters.ranges, t->filters.nranges);
	if (t->residency) {
		c->residency = calloc(t->nresidency ? t->nresidency : 1, sizeof(*c->residency));
		if (c->residency == NULL)
			goto fail;
		for (uint16_t i = 0; i < t->nresidency; i++) {
			c->residency[i] = t->residency[i];
			c->residency[i].services = NULL;
			c->nresidency = (uint16_t)(i + 1);
			c->residency[i].services =
				dup_mem(t->residency[i].services,
					sizeof(uint16_t) * t->residency[i].nservices);
			if (t->residency[i].services && c->residency[i].services == NULL)
				goto fail;
		}
	}
	if (t->content) {
		c->content = calloc(t->ncontent ? t->ncontent : 1, sizeof(*c->content));
		if (c->content == NULL)
			goto fail;
		for (uint32_t i = 0; i < t->ncontent; i++) {
			const struct fwd_content_rule *r = &t->content[i];
			struct fwd_content_rule *q = &c->content[i];

			*q = *r;
			q->pattern = NULL;
			q->names = NULL;
			q->services = NULL;
			q->regions = NULL;
			c->ncontent = i + 1;
			q->pattern = r->pattern ? strdup(r->pattern) : NULL;
			q->names = dup_mem(r->names, r->names_len);
			q->services = dup_mem(r->services, sizeof(uint16_t) * r->nservices);
			q->regions = dup_mem(r->regions, sizeof(uint16_t) * r->nregions);
			if ((r->pattern && q->pattern == NULL) || (r->names && q->names == NULL) ||
			    (r->services && q->services == NULL) ||
			    (r->regions && q->regions == NULL))
				goto fail;
		}
	}
	return c;
fail:
	fwd_table_free(c);
	return NULL;
}
