/*
 * fwd_table_regions.c - the regions section: names, IPv4 and IPv6 prefixes.
 * The prefix parser and the duplicate check serve the filters section too.
 */
#include "fwd_table_int.h"
#include "fwd_prefix.h"
#include "fwd_stages.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fwd_table_fast = 1;

int tv_parse_prefix(struct vctx *c, const struct fwd_node *n, const char *path, uint16_t region)
{
	struct fwd_table *t = c->t;
	const char *s;
	char addr[64];
	const char *slash;
	uint64_t len;
	char *end;
	int rc = tv_get_scalar(c, n, path, &s);

	if (rc)
		return rc;
	slash = strchr(s, '/');
	if (slash == NULL || (size_t)(slash - s) >= sizeof(addr) ||
	    !isdigit((unsigned char)slash[1]))
		return tv_fail(c, n, path, "'%s' is not a prefix (ADDRESS/LENGTH)", s);
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	errno = 0;
	len = strtoull(slash + 1, &end, 10);
	if (*end || errno)
		return tv_fail(c, n, path, "'%s' has a bad prefix length", s);
	if (fwd_prefix_len_leading_zero(slash + 1))
		return tv_fail(c, n, path, "'%s': a prefix length with a leading zero", s);

	if (strchr(addr, ':') == NULL) {
		struct in_addr a;
		uint32_t host, mask;

		if (inet_pton(AF_INET, addr, &a) != 1)
			return tv_fail(c, n, path, "'%s' is not a valid IPv4 address", addr);
		if (len > 32)
			return tv_fail(c, n, path, "IPv4 prefix length %llu is out of range 0..32",
				       (unsigned long long)len);
		if (t->nprefix4 >= FWD_MAX_PREFIX4)
			return tv_fail(c, n, path, "more than %d IPv4 prefixes", FWD_MAX_PREFIX4);
		host = ntohl(a.s_addr);
		mask = len ? ~0u << (32 - len) : 0;
		if (host & ~mask) {
			struct in_addr net = {.s_addr = htonl(host & mask)};
			char buf[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &net, buf, sizeof(buf));
			return tv_fail(c, n, path, "host bits set in '%s' (did you mean %s/%llu?)",
				       s, buf, (unsigned long long)len);
		}
		t->prefix4[t->nprefix4++] = (struct fwd_prefix4){
			.addr = host, .len = (uint8_t)len, .region = region, .line = n->line};
	} else {
		struct fwd_prefix6 *p;
		uint8_t a[16];
		int bad = 0;

		if (inet_pton(AF_INET6, addr, a) != 1)
			return tv_fail(c, n, path, "'%s' is not a valid IPv6 address", addr);
		if (len > 128)
			return tv_fail(c, n, path, "IPv6 prefix length %llu is out of range 0..128",
				       (unsigned long long)len);
		if (t->nprefix6 >= FWD_MAX_PREFIX6)
			return tv_fail(c, n, path, "more than %d IPv6 prefixes", FWD_MAX_PREFIX6);
		for (unsigned i = 0; i < 16; i++) {
			unsigned keep =
				len >= (i + 1) * 8 ? 8 : (len > i * 8 ? (unsigned)len - i * 8 : 0);
			uint8_t m = keep ? (uint8_t)(0xff << (8 - keep)) : 0;

			if (a[i] & ~m)
				bad = 1;
			a[i] &= m;
		}
		if (bad) {
			char buf[INET6_ADDRSTRLEN];

			inet_ntop(AF_INET6, a, buf, sizeof(buf));
			return tv_fail(c, n, path, "host bits set in '%s' (did you mean %s/%llu?)",
				       s, buf, (unsigned long long)len);
		}
		if (fwd_prefix6_mapped(a, (unsigned)len))
			return tv_fail(c, n, path, FWD_PREFIX6_MAPPED_FMT, s,
				       FWD_PREFIX6_MAPPED_ARGS(a, (unsigned)len));
		p = &t->prefix6[t->nprefix6++];
		memcpy(p->addr, a, 16);
		p->len = (uint8_t)len;
		p->region = region;
		p->line = n->line;
	}
	return 0;
}

/* The common shapes of a prefix, read in one pass where tv_parse_prefix()
 * splits, copies, converts and calls inet_pton() after its caller has
 * formatted the field's path: 0 when @n is one of them and is stored (host
 * bits clear, within the limits), 1 when it is not, and tv_parse_prefix()
 * reads it and names what is wrong. So a prefix is read as before, or
 * refused as before, only faster. IPv4: four decimal octets without
 * leading zeros (what inet_pton() takes), '/', one or two digits. */
static int fast_prefix4(struct fwd_table *t, const struct fwd_node *n, uint16_t region)
{
	const char *s = n->str;
	unsigned len, oct;
	uint32_t a = 0;

	for (unsigned i = 0; i < 4; i++, s++) {
		if (*s < '0' || *s > '9')
			return 1;
		oct = (unsigned)(*s++ - '0');
		if (oct != 0)
			for (unsigned k = 0; k < 2 && *s >= '0' && *s <= '9'; k++)
				oct = oct * 10 + (unsigned)(*s++ - '0');
		if (oct > 255 || *s != (i < 3 ? '.' : '/'))
			return 1;
		a = a << 8 | oct;
	}
	if (*s < '0' || *s > '9')
		return 1;
	len = (unsigned)(*s++ - '0');
	if (len != 0 && *s >= '0' && *s <= '9') /* "/08": the slow path refuses it */
		len = len * 10 + (unsigned)(*s++ - '0');
	if (*s != '\0' || len > 32 || (len < 32 && (a & (~0u >> len))) ||
	    t->nprefix4 >= FWD_MAX_PREFIX4)
		return 1;
	t->prefix4[t->nprefix4++] = (struct fwd_prefix4){
		.addr = a, .len = (uint8_t)len, .region = region, .line = n->line};
	return 0;
}

/* IPv6: inet_pton() as tv_parse_prefix() calls it, without the path and
 * the conversions around it. */
static int fast_prefix6(struct fwd_table *t, const struct fwd_node *n, uint16_t region)
{
	const char *s = n->str, *slash = strchr(s, '/'), *d;
	struct fwd_prefix6 *p = &t->prefix6[t->nprefix6];
	unsigned len = 0;
	char addr[64];

	if (slash == NULL || slash - s >= (ptrdiff_t)sizeof(addr) || slash[1] < '0' ||
	    slash[1] > '9' || fwd_prefix_len_leading_zero(slash + 1) ||
	    memchr(s, ':', (size_t)(slash - s)) == NULL || t->nprefix6 >= FWD_MAX_PREFIX6)
		return 1;
	for (d = slash + 1; *d >= '0' && *d <= '9' && len <= 128; d++)
		len = len * 10 + (unsigned)(*d - '0');
	if (*d != '\0' || len > 128)
		return 1;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	if (inet_pton(AF_INET6, addr, p->addr) != 1)
		return 1;
	for (unsigned b = len; b < 128; b++)
		if (p->addr[b / 8] & (0x80 >> (b % 8)))
			return 1;
	if (fwd_prefix6_mapped(p->addr, len))
		return 1;
	p->len = (uint8_t)len;
	p->region = region;
	p->line = n->line;
	t->nprefix6++;
	return 0;
}

static int fast_prefix(struct fwd_table *t, const struct fwd_node *n, uint16_t region)
{
	if (n->type != FWD_NODE_SCALAR || !fwd_table_fast)
		return 1;
	return fast_prefix4(t, n, region) == 0 ? 0 : fast_prefix6(t, n, region);
}

static int cmp_p4(const void *a, const void *b)
{
	const struct fwd_prefix4 *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int cmp_p6(const void *a, const void *b)
{
	const struct fwd_prefix6 *x = a, *y = b;
	int r = memcmp(x->addr, y->addr, 16);

	if (r)
		return r;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* The order tv_check_dup_prefixes() leaves the prefixes in: by address,
 * then length, and equal ones (a duplicate, refused right after) in
 * document order, which is what qsort() by cmp_p4()/cmp_p6() gave (lines
 * only grow through a document; equal lines kept their order in glibc's
 * merge sort). A stable LSD radix sort instead: linear where qsort() of a
 * million prefixes took a tenth of a second. Small arrays, or no memory
 * for the copy, take qsort(). */
#define RADIX_MIN 256

static void sort_p4(struct fwd_prefix4 *p, uint32_t n)
{
	enum { BITS = 11, BUCKETS = 1 << BITS, PASSES = 4 }; /* the key: addr << 8 | len, 40 bits */
	uint32_t(*cnt)[BUCKETS] =
		n >= RADIX_MIN && fwd_table_fast ? calloc(PASSES, sizeof(*cnt)) : NULL;
	struct fwd_prefix4 *tmp = cnt ? malloc(sizeof(*p) * n) : NULL, *src = p, *dst = tmp, *x;

	if (tmp == NULL) {
		free(cnt);
		qsort(p, n, sizeof(*p), cmp_p4);
		return;
	}
#define KEY4(e) ((uint64_t)(e)->addr << 8 | (e)->len)
	for (uint32_t i = 0; i < n; i++)
		for (unsigned d = 0; d < PASSES; d++)
			cnt[d][(KEY4(&p[i]) >> (d * BITS)) & (BUCKETS - 1)]++;
	for (unsigned d = 0; d < PASSES; d++) {
		uint32_t sum = 0;

		if (cnt[d][(KEY4(&src[0]) >> (d * BITS)) & (BUCKETS - 1)] == n)
			continue; /* one value of this digit: nothing moves */
		for (unsigned b = 0; b < BUCKETS; b++) {
			uint32_t k = cnt[d][b];

			cnt[d][b] = sum;
			sum += k;
		}
		for (uint32_t i = 0; i < n; i++)
			dst[cnt[d][(KEY4(&src[i]) >> (d * BITS)) & (BUCKETS - 1)]++] = src[i];
		x = src;
		src = dst;
		dst = x;
	}
#undef KEY4
	if (src != p)
		memcpy(p, src, sizeof(*p) * n);
	free(tmp);
	free(cnt);
}

/* IPv6: a byte per digit, the length first, then the address from its
 * last byte to its first (17 passes at most, constant digits skipped). */
static void sort_p6(struct fwd_prefix6 *p, uint32_t n)
{
	enum { PASSES = 17 };
	uint32_t(*cnt)[256] =
		n >= RADIX_MIN && fwd_table_fast ? calloc(PASSES, sizeof(*cnt)) : NULL;
	struct fwd_prefix6 *tmp = cnt ? malloc(sizeof(*p) * n) : NULL, *src = p, *dst = tmp, *x;

	if (tmp == NULL) {
		free(cnt);
		qsort(p, n, sizeof(*p), cmp_p6);
		return;
	}
#define DIGIT6(e, d) ((d) == 0 ? (e)->len : (e)->addr[16 - (d)])
	for (uint32_t i = 0; i < n; i++)
		for (unsigned d = 0; d < PASSES; d++)
			cnt[d][DIGIT6(&p[i], d)]++;
	for (unsigned d = 0; d < PASSES; d++) {
		uint32_t sum = 0;

		if (cnt[d][DIGIT6(&src[0], d)] == n)
			continue;
		for (unsigned b = 0; b < 256; b++) {
			uint32_t k = cnt[d][b];

			cnt[d][b] = sum;
			sum += k;
		}
		for (uint32_t i = 0; i < n; i++)
			dst[cnt[d][DIGIT6(&src[i], d)]++] = src[i];
		x = src;
		src = dst;
		dst = x;
	}
#undef DIGIT6
	if (src != p)
		memcpy(p, src, sizeof(*p) * n);
	free(tmp);
	free(cnt);
}

static int dup_prefix(struct vctx *c, const char *pfx, uint32_t line, uint16_t r1, uint16_t r2)
{
	const struct fwd_table *t = c->t;
	char path[64];

	if (c->filters)
		snprintf(path, sizeof(path), "%s.%s.%s.%s", KEY(DOC, FILTERS), KEY(FILTERS, RULES),
			 t->region_names[r2], KEY(FILTER_RULE, PREFIXES));
	else
		snprintf(path, sizeof(path), "%s.%s.%s", KEY(DOC, REGIONS), t->region_names[r2],
			 KEY(REGION, PREFIXES));
	if (r1 == r2)
		return fwd_err_set(c->err, c->file, line, path, "prefix %s is listed twice", pfx);
	return fwd_err_set(c->err, c->file, line, path, "prefix %s is also in %s '%s'", pfx,
			   c->filters ? "rule" : "region", t->region_names[r1]);
}

int tv_check_dup_prefixes(struct vctx *c)
{
	struct fwd_table *t = c->t;
	char buf[INET6_ADDRSTRLEN + 8], a[INET6_ADDRSTRLEN];

	sort_p4(t->prefix4, t->nprefix4);
	for (uint32_t i = 1; i < t->nprefix4; i++) {
		const struct fwd_prefix4 *x = &t->prefix4[i - 1], *y = &t->prefix4[i];

		if (x->addr == y->addr && x->len == y->len) {
			struct in_addr ia = {.s_addr = htonl(y->addr)};

			inet_ntop(AF_INET, &ia, a, sizeof(a));
			snprintf(buf, sizeof(buf), "%s/%u", a, y->len);
			return dup_prefix(c, buf, y->line, x->region, y->region);
		}
	}
	sort_p6(t->prefix6, t->nprefix6);
	for (uint32_t i = 1; i < t->nprefix6; i++) {
		const struct fwd_prefix6 *x = &t->prefix6[i - 1], *y = &t->prefix6[i];

		if (memcmp(x->addr, y->addr, 16) == 0 && x->len == y->len) {
			inet_ntop(AF_INET6, y->addr, a, sizeof(a));
			snprintf(buf, sizeof(buf), "%s/%u", a, y->len);
			return dup_prefix(c, buf, y->line, x->region, y->region);
		}
	}
	return 0;
}

int tv_parse_regions(struct vctx *c, const struct fwd_node *regions)
{
	const char *const sec = KEY(DOC, REGIONS), *const prefixes = KEY(REGION, PREFIXES);
	struct fwd_table *t = c->t;
	uint64_t n4 = 0, n6 = 0;
	char path[320];
	int rc;

	if ((rc = tv_section_map(c, regions, sec, FWD_MAX_REGIONS, "regions")) < 0)
		return rc;
	if (rc)
		regions = NULL;
	t->nregions = (uint16_t)(1 + (regions ? regions->count : 0));
	t->region_names = calloc(t->nregions, FWD_NAME_MAX);
	t->region_desc = calloc(t->nregions, sizeof(*t->region_desc));
	if (t->region_names == NULL || t->region_desc == NULL)
		return -ENOMEM;
	strcpy(t->region_names[0], WORD(BUILTIN, UNKNOWN));

	/* Count first so the prefix arrays are allocated once; the first
	 * prefix past a family's limit is the one a refusal names. */
	for (const struct fwd_node *r = regions ? regions->child : NULL; r; r = r->next) {
		const struct fwd_node *p = fwd_node_get(r, prefixes);
		uint32_t i = 0;

		for (const struct fwd_node *e = p && p->type == FWD_NODE_SEQ ? p->child : NULL; e;
		     e = e->next, i++) {
			int v6 = strchr(e->str, ':') != NULL;

			if ((v6 ? ++n6 : ++n4) <= (v6 ? FWD_MAX_PREFIX6 : FWD_MAX_PREFIX4))
				continue;
			snprintf(path, sizeof(path), "%s.%s.%s[%u]", sec, r->key, prefixes, i);
			return tv_fail(c, e, path,
				       "more than %d %s prefixes: this is the first past the limit",
				       v6 ? FWD_MAX_PREFIX6 : FWD_MAX_PREFIX4,
				       v6 ? "IPv6" : "IPv4");
		}
	}
	t->prefix4 = malloc(sizeof(*t->prefix4) * (n4 ? n4 : 1));
	t->prefix6 = malloc(sizeof(*t->prefix6) * (n6 ? n6 : 1));
	if (t->prefix4 == NULL || t->prefix6 == NULL)
		return -ENOMEM;

	uint16_t id = 1;
	for (const struct fwd_node *r = regions ? regions->child : NULL; r; r = r->next, id++) {
		const struct fwd_node *p;

		if ((rc = tv_section_entry(c, r, sec, "region", FWD_SC_MAX, t->region_names[id],
					   path, sizeof(path))))
			return rc;
		if (strcmp(r->key, WORD(BUILTIN, ANY)) == 0 ||
		    strcmp(r->key, WORD(BUILTIN, UNKNOWN)) == 0)
			return tv_fail(c, r, path, "'%s' is a reserved region name", r->key);
		if (r->type == FWD_NODE_NULL)
			continue;
		if ((rc = tv_want(c, r, path, FWD_NODE_MAP)) ||
		    (rc = tv_check_keys(c, r, path, FWD_SC_REGION)) ||
		    (rc = tv_get_desc(c, r, path, FWD_F_REGION_DESCRIPTION, &t->region_desc[id])))
			return rc;
		p = fwd_node_get(r, prefixes);
		if (p == NULL || p->type == FWD_NODE_NULL)
			continue;
		snprintf(path, sizeof(path), "%s.%s.%s", sec, r->key, prefixes);
		if ((rc = tv_want(c, p, path, FWD_NODE_SEQ)))
			return rc;
		uint32_t i = 0;
		for (const struct fwd_node *e = p->child; e; e = e->next, i++) {
			if (fast_prefix(t, e, id) == 0)
				continue;
			snprintf(path, sizeof(path), "%s.%s.%s[%u]", sec, r->key, prefixes, i);
			if ((rc = tv_parse_prefix(c, e, path, id)))
				return rc;
		}
	}
	fwd_stage("prefixes");
	rc = tv_check_dup_prefixes(c);
	fwd_stage("sort + duplicates");
	return rc;
}

int tv_index_regions(struct vctx *c)
{
	return tv_nidx_build(&c->nm.regions, (const char(*)[FWD_NAME_MAX])c->t->region_names,
			     c->t->nregions);
}
