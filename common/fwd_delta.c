/*
 * fwd_delta.c - STAND-IN for the lead's implementation of fwd_delta.h, so
 * regiond's side of deltas builds and is tested before it lands. Replaced
 * whole by main's file at the merge (take theirs). Follows the header's
 * contract; residency nesting is not checked here.
 */
#include "fwd_delta.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_hash.h"

#define REC 24

void fwd_delta_clear(struct fwd_delta *d)
{
	if (d == NULL)
		return;
	free(d->ops);
	memset(d, 0, sizeof(*d));
}

static struct fwd_delta_op *grow(struct fwd_delta *d)
{
	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 64;
		struct fwd_delta_op *ops = realloc(d->ops, sizeof(*ops) * cap);

		if (ops == NULL)
			return NULL;
		d->ops = ops;
		d->cap = cap;
	}
	return &d->ops[d->n];
}

static int host_bits(int family, const uint8_t *a, unsigned len)
{
	unsigned bits = family == 4 ? 32 : 128;

	for (unsigned b = len; b < bits; b++)
		if (a[b / 8] & (0x80 >> (b % 8)))
			return 1;
	return 0;
}

int fwd_delta_add_bin(struct fwd_delta *d, enum fwd_delta_kind kind, uint16_t region, int family,
		      const uint8_t *addr, uint8_t len, struct fwd_err *e)
{
	struct fwd_delta_op *op;

	if ((family != 4 && family != 6) || len > (family == 4 ? 32 : 128) ||
	    host_bits(family, addr, len))
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, "", "bad prefix");
	if ((op = grow(d)) == NULL)
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	memset(op, 0, sizeof(*op));
	op->kind = (uint8_t)kind;
	op->family = (uint8_t)family;
	op->len = len;
	op->region = region;
	memcpy(op->addr, addr, family == 4 ? 4 : 16);
	op->index = d->n++;
	return 0;
}

int fwd_delta_add_text(struct fwd_delta *d, enum fwd_delta_kind kind, uint16_t region,
		       const char *prefix, const char *path, struct fwd_err *e)
{
	char a[64], *slash, *end;
	uint8_t addr[16] = {0};
	unsigned long len;
	int family;

	if (strlen(prefix) >= sizeof(a) || (slash = strchr(prefix, '/')) == NULL)
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
				    "'%.80s' is not a prefix (ADDRESS/LENGTH)", prefix);
	memcpy(a, prefix, (size_t)(slash - prefix));
	a[slash - prefix] = '\0';
	family = strchr(a, ':') ? 6 : 4;
	len = strtoul(slash + 1, &end, 10);
	if (inet_pton(family == 4 ? AF_INET : AF_INET6, a, addr) != 1 || *end || end == slash + 1 ||
	    len > (family == 4 ? 32u : 128u))
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
				    "'%.80s' is not a prefix (ADDRESS/LENGTH)", prefix);
	if (host_bits(family, addr, (unsigned)len))
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path, "host bits set in '%s'",
				    prefix);
	if (fwd_delta_add_bin(d, kind, region, family, addr, (uint8_t)len, e)) {
		if (e)
			snprintf(e->path, sizeof(e->path), "%s", path);
		return -ENOMEM;
	}
	return 0;
}

const char *fwd_delta_prefix_str(const struct fwd_delta_op *op, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(op->family == 4 ? AF_INET : AF_INET6, op->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, op->len);
	return buf;
}

static int op_cmp(const void *x, const void *y)
{
	const struct fwd_delta_op *a = x, *b = y;
	int r;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	r = memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16);
	if (r)
		return r;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

static int p4_cmp(const void *x, const void *y)
{
	const struct fwd_prefix4 *a = x, *b = y;

	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	return a->len < b->len ? -1 : a->len > b->len;
}

static int p6_cmp(const void *x, const void *y)
{
	const struct fwd_prefix6 *a = x, *b = y;
	int r = memcmp(a->addr, b->addr, 16);

	if (r)
		return r;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* The region holding @op's prefix in @t (0: none), and its position. */
static uint16_t holder(const struct fwd_table *t, const struct fwd_delta_op *op, long *at)
{
	if (op->family == 4) {
		struct fwd_prefix4 k = {.len = op->len}, *p;

		k.addr = (uint32_t)op->addr[0] << 24 | (uint32_t)op->addr[1] << 16 |
			 (uint32_t)op->addr[2] << 8 | op->addr[3];
		p = bsearch(&k, t->prefix4, t->nprefix4, sizeof(k), p4_cmp);
		*at = p ? p - t->prefix4 : -1;
		return p ? p->region : 0;
	}
	struct fwd_prefix6 k = {.len = op->len}, *p;

	memcpy(k.addr, op->addr, 16);
	p = bsearch(&k, t->prefix6, t->nprefix6, sizeof(k), p6_cmp);
	*at = p ? p - t->prefix6 : -1;
	return p ? p->region : 0;
}

int fwd_delta_apply(const struct fwd_table *t, const struct fwd_delta *d, struct fwd_table **out,
		    struct fwd_delta *effective, struct fwd_delta_stats *stats, struct fwd_err *e)
{
	struct fwd_delta_stats st = {0};
	struct fwd_delta_op *sorted = NULL;
	uint8_t *gone4 = NULL, *gone6 = NULL;
	struct fwd_prefix4 *p4 = NULL;
	struct fwd_prefix6 *p6 = NULL;
	uint32_t n4 = 0, n6 = 0, eff = 0;
	char path[32], pfx[64];
	int rc = -ENOMEM;

	*out = NULL;
	if (effective)
		memset(effective, 0, sizeof(*effective));
	for (uint32_t i = 0; i < d->n; i++) {
		const struct fwd_delta_op *op = &d->ops[i];
		long at;
		uint16_t h;

		snprintf(path, sizeof(path), "changes[%u]", op->index);
		fwd_delta_prefix_str(op, pfx, sizeof(pfx));
		if (op->region == 0 || op->region >= t->nregions)
			return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
					    "no region %u in the table", op->region);
		h = holder(t, op, &at);
		if (op->kind == FWD_DELTA_ADD && h && h != op->region)
			return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
					    "prefix %s is held by region '%s'", pfx,
					    t->region_names[h]);
		if (op->kind == FWD_DELTA_REMOVE && h != op->region)
			return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
					    "prefix %s is not in region '%s'", pfx,
					    t->region_names[op->region]);
	}
	sorted = malloc(sizeof(*sorted) * (d->n ? d->n : 1));
	if (sorted == NULL)
		goto oom;
	memcpy(sorted, d->ops, sizeof(*sorted) * d->n);
	qsort(sorted, d->n, sizeof(*sorted), op_cmp);
	for (uint32_t i = 1; i < d->n; i++)
		if (sorted[i].family == sorted[i - 1].family &&
		    sorted[i].len == sorted[i - 1].len &&
		    !memcmp(sorted[i].addr, sorted[i - 1].addr, 16)) {
			snprintf(path, sizeof(path), "changes[%u]", sorted[i].index);
			rc = fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, path,
					  "prefix %s is named twice in the batch",
					  fwd_delta_prefix_str(&sorted[i], pfx, sizeof(pfx)));
			free(sorted);
			return rc;
		}
	gone4 = calloc(t->nprefix4 + 1, 1);
	gone6 = calloc(t->nprefix6 + 1, 1);
	if (gone4 == NULL || gone6 == NULL)
		goto oom;
	for (uint32_t i = 0; i < d->n; i++) {
		struct fwd_delta_op *op = &sorted[i];
		long at;
		uint16_t h = holder(t, op, &at);

		if (op->kind == FWD_DELTA_ADD && h) {
			st.unchanged++;
			continue;
		}
		if (op->kind == FWD_DELTA_REMOVE)
			(op->family == 4 ? gone4 : gone6)[at] = 1;
		if (op->family == 4)
			op->kind == FWD_DELTA_ADD ? st.added4++ : st.removed4++;
		else
			op->kind == FWD_DELTA_ADD ? st.added6++ : st.removed6++;
		sorted[eff++] = *op;
	}
	if (stats)
		*stats = st;
	if (eff == 0) {
		free(sorted);
		free(gone4);
		free(gone6);
		return 0;
	}
	p4 = malloc(sizeof(*p4) * (t->nprefix4 + st.added4 + 1));
	p6 = malloc(sizeof(*p6) * (t->nprefix6 + st.added6 + 1));
	if (p4 == NULL || p6 == NULL)
		goto oom;
	for (uint32_t i = 0; i < t->nprefix4; i++)
		if (!gone4[i])
			p4[n4++] = t->prefix4[i];
	for (uint32_t i = 0; i < t->nprefix6; i++)
		if (!gone6[i])
			p6[n6++] = t->prefix6[i];
	for (uint32_t i = 0; i < eff; i++) {
		const struct fwd_delta_op *op = &sorted[i];

		if (op->kind != FWD_DELTA_ADD)
			continue;
		if (op->family == 4) {
			struct fwd_prefix4 *p = &p4[n4++];

			memset(p, 0, sizeof(*p));
			p->addr = (uint32_t)op->addr[0] << 24 | (uint32_t)op->addr[1] << 16 |
				  (uint32_t)op->addr[2] << 8 | op->addr[3];
			p->len = op->len;
			p->region = op->region;
		} else {
			struct fwd_prefix6 *p = &p6[n6++];

			memset(p, 0, sizeof(*p));
			memcpy(p->addr, op->addr, 16);
			p->len = op->len;
			p->region = op->region;
		}
	}
	qsort(p4, n4, sizeof(*p4), p4_cmp);
	qsort(p6, n6, sizeof(*p6), p6_cmp);
	free(gone4);
	free(gone6);
	gone4 = gone6 = NULL;
	*out = fwd_table_with_prefixes(t, p4, n4, p6, n6);
	p4 = NULL;
	p6 = NULL;
	if (*out == NULL)
		goto oom;
	if (effective) {
		effective->ops = sorted;
		effective->n = effective->cap = eff;
	} else {
		free(sorted);
	}
	return 0;
oom:
	free(sorted);
	free(gone4);
	free(gone6);
	free(p4);
	free(p6);
	return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
}

uint8_t *fwd_delta_pack(const struct fwd_delta *d, size_t *len)
{
	uint8_t *b = calloc(d->n ? d->n : 1, REC);

	if (b == NULL)
		return NULL;
	for (uint32_t i = 0; i < d->n; i++) {
		uint8_t *r = b + (size_t)i * REC;
		const struct fwd_delta_op *op = &d->ops[i];

		r[0] = op->kind;
		r[1] = op->family;
		r[2] = op->len;
		r[4] = (uint8_t)(op->region >> 8);
		r[5] = (uint8_t)op->region;
		memcpy(r + 8, op->addr, 16);
	}
	*len = (size_t)d->n * REC;
	return b;
}

int fwd_delta_unpack(const uint8_t *buf, size_t len, struct fwd_delta *d, struct fwd_err *e)
{
	memset(d, 0, sizeof(*d));
	if (len % REC)
		return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, "",
				    "%zu bytes are not whole 24-byte records", len);
	for (size_t i = 0; i < len / REC; i++) {
		const uint8_t *r = buf + i * REC;

		if ((r[0] != FWD_DELTA_ADD && r[0] != FWD_DELTA_REMOVE) ||
		    fwd_delta_add_bin(d, r[0], (uint16_t)(r[4] << 8 | r[5]), r[1], r + 8, r[2],
				      e)) {
			fwd_delta_clear(d);
			return fwd_err_fail(e, FWD_R_INVALID_DELTA, NULL, 0, "",
					    "record %zu is not a prefix change", i);
		}
	}
	return 0;
}

uint64_t fwd_delta_hash(uint64_t base, const uint8_t *packed, size_t len)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(base >> (8 * i));
	return fwd_hash64_update(fwd_hash64(b, 8), packed, len);
}

static void *dup(const void *p, size_t n)
{
	void *q = malloc(n ? n : 1);

	if (q && n)
		memcpy(q, p, n);
	return q;
}

struct fwd_table *fwd_table_with_prefixes(const struct fwd_table *t, struct fwd_prefix4 *p4,
					  uint32_t n4, struct fwd_prefix6 *p6, uint32_t n6)
{
	struct fwd_table *c = calloc(1, sizeof(*c));
	int bad = 0;

	if (c == NULL) {
		free(p4);
		free(p6);
		return NULL;
	}
	*c = *t;
	c->prefix4 = p4;
	c->nprefix4 = n4;
	c->prefix6 = p6;
	c->nprefix6 = n6;
#define DUP(f, n) bad |= (c->f = dup(t->f, sizeof(*t->f) * (n))) == NULL
	DUP(region_names, t->nregions);
	DUP(service_names, t->nservices);
	DUP(ranges, t->nranges);
	DUP(links, t->nlinks);
	DUP(groups, t->ngroups);
	DUP(policies, t->npolicies);
	DUP(residency, t->nresidency);
	DUP(filters.rules, t->filters.nrules);
	DUP(filters.prefix4, t->filters.nprefix4);
	DUP(filters.prefix6, t->filters.nprefix6);
	DUP(filters.ranges, t->filters.nranges);
	DUP(content, t->ncontent);
#undef DUP
	for (uint16_t i = 0; !bad && i < t->nresidency; i++)
		bad |= (c->residency[i].services =
				dup(t->residency[i].services,
				    sizeof(uint16_t) * t->residency[i].nservices)) == NULL;
	for (uint32_t i = 0; !bad && i < t->ncontent; i++) {
		struct fwd_content_rule *r = &c->content[i];

		r->pattern = strdup(t->content[i].pattern);
		r->services = dup(t->content[i].services, sizeof(uint16_t) * r->nservices);
		r->regions = dup(t->content[i].regions, sizeof(uint16_t) * r->nregions);
		bad |= r->pattern == NULL || r->services == NULL || r->regions == NULL;
	}
	if (bad) { /* leaks on a half-made copy: a stand-in */
		return NULL;
	}
	return c;
}
