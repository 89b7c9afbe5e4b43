/*
 * fwd_table.c - document -> struct fwd_table, with complete validation.
 * Every refusal names the line (YAML) and the field path.
 */
#include "fwd_table.h"

#include "fwd_hash.h"

#include "fwd_filter_kern_user.h"
#include "fwd_names.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The document's names, all from fwd_schema.def: KEY(LINK, PORT) is "port",
 * WORD(LINK_STATE, UP) is "up". */
#define KEY(sc, id) (fwd_schema_names[FWD_F_##sc##_##id])
#define WORD(sc, id) (fwd_schema_names[FWD_V_##sc##_##id])

_Static_assert(FWD_SCHEMA_POS(FILTER_ACTION, PASS) == FWD_FLT_PASS &&
		       FWD_SCHEMA_POS(FILTER_ACTION, DROP) == FWD_FLT_DROP &&
		       FWD_SCHEMA_POS(FILTER_ACTION, RATE) == FWD_FLT_RATE,
	       "fwd_schema.def: FILTER_ACTION words are indexed like enum fwd_flt_action");

struct vctx {
	const char *file;
	struct fwd_err *err;
	struct fwd_table *t;
	int filters; /* parsing the filters section: owners are rules, not regions/services */
};

/* Name -> id index (open addressing) used while validating, so resolving
 * 65,000 policies against 4,000 regions stays linear. */
struct nidx {
	uint32_t mask;
	uint32_t *slot; /* id + 1, 0 = empty */
	const char (*names)[FWD_NAME_MAX];
};

static uint32_t name_hash(const char *s)
{
	return (uint32_t)fwd_hash64(s, strlen(s));
}

static int nidx_build(struct nidx *x, const char (*names)[FWD_NAME_MAX], uint32_t n)
{
	uint32_t cap = 16;

	while (cap < n * 2)
		cap <<= 1;
	x->slot = calloc(cap, sizeof(*x->slot));
	if (x->slot == NULL)
		return -ENOMEM;
	x->mask = cap - 1;
	x->names = names;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = name_hash(names[i]) & x->mask;

		while (x->slot[h])
			h = (h + 1) & x->mask;
		x->slot[h] = i + 1;
	}
	return 0;
}

static int nidx_find(const struct nidx *x, const char *name)
{
	uint32_t h = name_hash(name) & x->mask;

	while (x->slot[h]) {
		if (strcmp(x->names[x->slot[h] - 1], name) == 0)
			return (int)x->slot[h] - 1;
		h = (h + 1) & x->mask;
	}
	return -ENOENT;
}

static void nidx_free(struct nidx *x)
{
	free(x->slot);
	x->slot = NULL;
}

static int fail(struct vctx *c, const struct fwd_node *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct vctx *c, const struct fwd_node *n, const char *path, const char *fmt, ...)
{
	char reason[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return fwd_err_set(c->err, c->file, n ? n->line : 0, path, "%s", reason);
}

static const char *type_name(const struct fwd_node *n)
{
	static const char *const names[] = {"null", "scalar", "list", "map"};

	return names[n->type];
}

static int want(struct vctx *c, const struct fwd_node *n, const char *path, int type)
{
	static const char *const what[] = {"null", "a value", "a list", "a map"};

	if (n->type == type)
		return 0;
	return fail(c, n, path, "expected %s, got %s", what[type], type_name(n));
}

/* Refuse unknown fields: a typo ('nexthop_mac') must not silently become a
 * default. The fields of scope @sc are the FWD_KEY lines of fwd_schema.def. */
static int check_keys(struct vctx *c, const struct fwd_node *map, const char *path,
		      enum fwd_scope sc)
{
	unsigned nallowed;
	const char *const *allowed = fwd_schema_keys(sc, &nallowed);

	for (const struct fwd_node *k = map->child; k; k = k->next) {
		int ok = 0;
		char list[256] = "";
		size_t n = 0;

		for (unsigned i = 0; i < nallowed; i++) {
			if (strcmp(k->key, allowed[i]) == 0)
				ok = 1;
			if (n < sizeof(list))
				n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
						      i ? ", " : "", allowed[i]);
		}
		if (!ok) {
			char p[320];

			snprintf(p, sizeof(p), "%s%s%s", path, path[0] ? "." : "", k->key);
			return fail(c, k, p, "unknown field '%s' (expected one of: %s)", k->key, list);
		}
	}
	return 0;
}

/* The words of scope @sc as a list for a message: "'up' or 'down'" (quote
 * "'", last " or "), "tcp, udp, ..., icmpv6" (quote "", last ", "). */
static const char *word_list(enum fwd_scope sc, const char *quote, const char *last, char *buf,
			     size_t len)
{
	unsigned n;
	const char *const *w = fwd_schema_keys(sc, &n);
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < n && off < len; i++) {
		const char *sep = i == 0 ? "" : i + 1 < n ? ", " : last;

		off += (size_t)snprintf(buf + off, len - off, "%s%s%s%s", sep, quote, w[i], quote);
	}
	return buf;
}

static int get_scalar(struct vctx *c, const struct fwd_node *n, const char *path, const char **out)
{
	*out = "";
	if (n->type != FWD_NODE_SCALAR)
		return fail(c, n, path, "expected a value, got %s", type_name(n));
	*out = n->str;
	return 0;
}

static int get_uint(struct vctx *c, const struct fwd_node *n, const char *path, uint64_t min,
		    uint64_t max, uint64_t *out)
{
	const char *s;
	char *end;
	unsigned long long v;
	int rc = get_scalar(c, n, path, &s);

	if (rc)
		return rc;
	if (!isdigit((unsigned char)s[0]))
		return fail(c, n, path, "'%s' is not a whole number", s);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno)
		return fail(c, n, path, "'%s' is not a whole number", s);
	if (v < min || v > max)
		return fail(c, n, path, "%llu is out of range %llu..%llu", v,
			    (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

static int get_name(struct vctx *c, const struct fwd_node *n, const char *path, const char *what,
		    char out[FWD_NAME_MAX])
{
	const char *s;
	size_t len;
	int rc = get_scalar(c, n, path, &s);

	if (rc)
		return rc;
	len = strlen(s);
	if (len == 0 || len >= FWD_NAME_MAX)
		return fail(c, n, path, "%s name must be 1..%d characters", what, FWD_NAME_MAX - 1);
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return fail(c, n, path, "%s name '%s' may only use letters, digits, '_', '-', '.'",
				    what, s);
	memcpy(out, s, len + 1);
	return 0;
}

/* A section that maps names to entries (regions, services, links, groups):
 * absent or null is empty (returns 1), otherwise a map of at most @max keys. */
static int section_map(struct vctx *c, const struct fwd_node *n, const char *name, uint32_t max,
		       const char *what)
{
	int rc;

	if (n == NULL || n->type == FWD_NODE_NULL)
		return 1;
	if ((rc = want(c, n, name, FWD_NODE_MAP)))
		return rc;
	if (n->count > max)
		return fail(c, n, name, "more than %u %s", max, what);
	return 0;
}

/* One entry of such a section: its key is a valid name (copied to @out),
 * and, unless @keys is FWD_SC_MAX, its value is a map with only the fields
 * of that scope. */
static int section_entry(struct vctx *c, const struct fwd_node *e, const char *section,
			 const char *what, enum fwd_scope keys, char out[FWD_NAME_MAX], char *path,
			 size_t pathlen)
{
	struct fwd_node keynode = *e;
	int rc;

	snprintf(path, pathlen, "%s.%s", section, e->key);
	keynode.type = FWD_NODE_SCALAR;
	keynode.str = e->key;
	if ((rc = get_name(c, &keynode, path, what, out)))
		return rc;
	if (keys != FWD_SC_MAX &&
	    ((rc = want(c, e, path, FWD_NODE_MAP)) || (rc = check_keys(c, e, path, keys))))
		return rc;
	return 0;
}

/* ---- regions --------------------------------------------------------------- */

static int parse_prefix(struct vctx *c, const struct fwd_node *n, const char *path, uint16_t region)
{
	struct fwd_table *t = c->t;
	const char *s;
	char addr[64];
	const char *slash;
	uint64_t len;
	char *end;
	int rc = get_scalar(c, n, path, &s);

	if (rc)
		return rc;
	slash = strchr(s, '/');
	if (slash == NULL || (size_t)(slash - s) >= sizeof(addr) || !isdigit((unsigned char)slash[1]))
		return fail(c, n, path, "'%s' is not a prefix (ADDRESS/LENGTH)", s);
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	errno = 0;
	len = strtoull(slash + 1, &end, 10);
	if (*end || errno)
		return fail(c, n, path, "'%s' has a bad prefix length", s);

	if (strchr(addr, ':') == NULL) {
		struct in_addr a;
		uint32_t host, mask;

		if (inet_pton(AF_INET, addr, &a) != 1)
			return fail(c, n, path, "'%s' is not a valid IPv4 address", addr);
		if (len > 32)
			return fail(c, n, path, "IPv4 prefix length %llu is out of range 0..32",
				    (unsigned long long)len);
		if (t->nprefix4 >= FWD_MAX_PREFIX4)
			return fail(c, n, path, "more than %d IPv4 prefixes", FWD_MAX_PREFIX4);
		host = ntohl(a.s_addr);
		mask = len ? ~0u << (32 - len) : 0;
		if (host & ~mask) {
			struct in_addr net = {.s_addr = htonl(host & mask)};
			char buf[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &net, buf, sizeof(buf));
			return fail(c, n, path, "host bits set in '%s' (did you mean %s/%llu?)", s, buf,
				    (unsigned long long)len);
		}
		t->prefix4[t->nprefix4++] = (struct fwd_prefix4){
			.addr = host, .len = (uint8_t)len, .region = region, .line = n->line};
	} else {
		struct fwd_prefix6 *p;
		uint8_t a[16];
		int bad = 0;

		if (inet_pton(AF_INET6, addr, a) != 1)
			return fail(c, n, path, "'%s' is not a valid IPv6 address", addr);
		if (len > 128)
			return fail(c, n, path, "IPv6 prefix length %llu is out of range 0..128",
				    (unsigned long long)len);
		if (t->nprefix6 >= FWD_MAX_PREFIX6)
			return fail(c, n, path, "more than %d IPv6 prefixes", FWD_MAX_PREFIX6);
		for (unsigned i = 0; i < 16; i++) {
			unsigned keep = len >= (i + 1) * 8 ? 8 : (len > i * 8 ? (unsigned)len - i * 8 : 0);
			uint8_t m = keep ? (uint8_t)(0xff << (8 - keep)) : 0;

			if (a[i] & ~m)
				bad = 1;
			a[i] &= m;
		}
		if (bad) {
			char buf[INET6_ADDRSTRLEN];

			inet_ntop(AF_INET6, a, buf, sizeof(buf));
			return fail(c, n, path, "host bits set in '%s' (did you mean %s/%llu?)", s, buf,
				    (unsigned long long)len);
		}
		p = &t->prefix6[t->nprefix6++];
		memcpy(p->addr, a, 16);
		p->len = (uint8_t)len;
		p->region = region;
		p->line = n->line;
	}
	return 0;
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

static int check_dup_prefixes(struct vctx *c)
{
	struct fwd_table *t = c->t;
	char buf[INET6_ADDRSTRLEN + 8], a[INET6_ADDRSTRLEN];

	qsort(t->prefix4, t->nprefix4, sizeof(*t->prefix4), cmp_p4);
	for (uint32_t i = 1; i < t->nprefix4; i++) {
		const struct fwd_prefix4 *x = &t->prefix4[i - 1], *y = &t->prefix4[i];

		if (x->addr == y->addr && x->len == y->len) {
			struct in_addr ia = {.s_addr = htonl(y->addr)};

			inet_ntop(AF_INET, &ia, a, sizeof(a));
			snprintf(buf, sizeof(buf), "%s/%u", a, y->len);
			return dup_prefix(c, buf, y->line, x->region, y->region);
		}
	}
	qsort(t->prefix6, t->nprefix6, sizeof(*t->prefix6), cmp_p6);
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

static int parse_regions(struct vctx *c, const struct fwd_node *regions)
{
	const char *const sec = KEY(DOC, REGIONS), *const prefixes = KEY(REGION, PREFIXES);
	struct fwd_table *t = c->t;
	uint64_t n4 = 0, n6 = 0;
	char path[320];
	int rc;

	if ((rc = section_map(c, regions, sec, FWD_MAX_REGIONS, "regions")) < 0)
		return rc;
	if (rc)
		regions = NULL;
	t->nregions = (uint16_t)(1 + (regions ? regions->count : 0));
	t->region_names = calloc(t->nregions, FWD_NAME_MAX);
	if (t->region_names == NULL)
		return -ENOMEM;
	strcpy(t->region_names[0], WORD(BUILTIN, UNKNOWN));

	/* Count first so the prefix arrays are allocated once. */
	for (const struct fwd_node *r = regions ? regions->child : NULL; r; r = r->next) {
		const struct fwd_node *p = fwd_node_get(r, prefixes);

		for (const struct fwd_node *e = p && p->type == FWD_NODE_SEQ ? p->child : NULL; e;
		     e = e->next) {
			if (strchr(e->str, ':'))
				n6++;
			else
				n4++;
		}
	}
	if (n4 > FWD_MAX_PREFIX4 || n6 > FWD_MAX_PREFIX6)
		return fail(c, regions, sec, "more than %d IPv4 or %d IPv6 prefixes",
			    FWD_MAX_PREFIX4, FWD_MAX_PREFIX6);
	t->prefix4 = malloc(sizeof(*t->prefix4) * (n4 ? n4 : 1));
	t->prefix6 = malloc(sizeof(*t->prefix6) * (n6 ? n6 : 1));
	if (t->prefix4 == NULL || t->prefix6 == NULL)
		return -ENOMEM;

	uint16_t id = 1;
	for (const struct fwd_node *r = regions ? regions->child : NULL; r; r = r->next, id++) {
		const struct fwd_node *p;

		if ((rc = section_entry(c, r, sec, "region", FWD_SC_MAX, t->region_names[id], path,
					sizeof(path))))
			return rc;
		if (strcmp(r->key, WORD(BUILTIN, ANY)) == 0 ||
		    strcmp(r->key, WORD(BUILTIN, UNKNOWN)) == 0)
			return fail(c, r, path, "'%s' is a reserved region name", r->key);
		if (r->type == FWD_NODE_NULL)
			continue;
		if ((rc = want(c, r, path, FWD_NODE_MAP)) ||
		    (rc = check_keys(c, r, path, FWD_SC_REGION)))
			return rc;
		p = fwd_node_get(r, prefixes);
		if (p == NULL || p->type == FWD_NODE_NULL)
			continue;
		snprintf(path, sizeof(path), "%s.%s.%s", sec, r->key, prefixes);
		if ((rc = want(c, p, path, FWD_NODE_SEQ)))
			return rc;
		uint32_t i = 0;
		for (const struct fwd_node *e = p->child; e; e = e->next, i++) {
			snprintf(path, sizeof(path), "%s.%s.%s[%u]", sec, r->key, prefixes, i);
			if ((rc = parse_prefix(c, e, path, id)))
				return rc;
		}
	}
	return check_dup_prefixes(c);
}

/* ---- services -------------------------------------------------------------- */

static int proto_from_name(const char *s, size_t len, int *proto)
{
	/* The PROTO words of fwd_schema.def by their index; 'any' is -1. */
	static const int numbers[] = {
		[FWD_SCHEMA_POS(PROTO, TCP)] = FWD_PROTO_TCP,
		[FWD_SCHEMA_POS(PROTO, UDP)] = FWD_PROTO_UDP,
		[FWD_SCHEMA_POS(PROTO, SCTP)] = FWD_PROTO_SCTP,
		[FWD_SCHEMA_POS(PROTO, ANY)] = -1,
		[FWD_SCHEMA_POS(PROTO, ICMP)] = FWD_PROTO_ICMP,
		[FWD_SCHEMA_POS(PROTO, ICMPV6)] = FWD_PROTO_ICMPV6,
	};
	_Static_assert(sizeof(numbers) / sizeof(numbers[0]) ==
			       FWD_SCHEMA_END_PROTO - FWD_SCHEMA_BEGIN_PROTO,
		       "every PROTO word of fwd_schema.def has a number");
	char tmp[16];
	int k;

	if (len == 0 || len >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if ((k = fwd_schema_index(FWD_SC_PROTO, tmp)) >= 0) {
		*proto = numbers[k];
		return 0;
	}
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)tmp[i]))
			return -EINVAL;
	if (atoi(tmp) > 255)
		return -EINVAL;
	*proto = atoi(tmp);
	return 0;
}

static int has_ports(int proto)
{
	return proto == FWD_PROTO_TCP || proto == FWD_PROTO_UDP || proto == FWD_PROTO_SCTP;
}

static int parse_port(const char *s, const char *e, uint16_t *out)
{
	unsigned long v = 0;

	if (s == e || e - s > 5)
		return -EINVAL;
	for (const char *p = s; p < e; p++) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static int add_range(struct vctx *c, const struct fwd_node *n, const char *path, uint8_t proto,
		     uint16_t lo, uint16_t hi, uint16_t service)
{
	struct fwd_table *t = c->t;

	if (t->nranges >= (uint32_t)FWD_MAX_SERVICES * 16)
		return fail(c, n, path, "too many service entries");
	t->ranges[t->nranges++] = (struct fwd_svc_range){
		.proto = proto, .lo = lo, .hi = hi, .service = service, .line = n->line};
	return 0;
}

static int parse_svc_entry(struct vctx *c, const struct fwd_node *n, const char *path, uint16_t service)
{
	const char *s, *slash, *dash;
	uint16_t lo = 0, hi = 65535;
	int proto, rc = get_scalar(c, n, path, &s);

	if (rc)
		return rc;
	slash = strchr(s, '/');
	if (proto_from_name(s, slash ? (size_t)(slash - s) : strlen(s), &proto)) {
		char words[128];

		return fail(c, n, path, "'%s': protocol must be %s or 0..255", s,
			    word_list(FWD_SC_PROTO, "", ", ", words, sizeof(words)));
	}
	if (slash) {
		if (proto >= 0 && !has_ports(proto))
			return fail(c, n, path, "'%s': only tcp, udp, sctp and any have ports", s);
		dash = strchr(slash + 1, '-');
		if (parse_port(slash + 1, dash ? dash : slash + 1 + strlen(slash + 1), &lo) ||
		    (dash && parse_port(dash + 1, dash + 1 + strlen(dash + 1), &hi)))
			return fail(c, n, path, "'%s': ports must be PORT or LO-HI within 0..65535", s);
		if (!dash)
			hi = lo;
		if (lo > hi)
			return fail(c, n, path, "'%s': range start %u is above its end %u", s, lo, hi);
	} else if (proto < 0) {
		return fail(c, n, path, "'%s': 'any' needs a port or range (any/53)", s);
	}
	if (proto >= 0)
		return add_range(c, n, path, (uint8_t)proto, lo, hi, service);
	if ((rc = add_range(c, n, path, FWD_PROTO_TCP, lo, hi, service)) ||
	    (rc = add_range(c, n, path, FWD_PROTO_UDP, lo, hi, service)))
		return rc;
	return add_range(c, n, path, FWD_PROTO_SCTP, lo, hi, service);
}

static int cmp_range(const void *a, const void *b)
{
	const struct fwd_svc_range *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static void range_str(const struct fwd_svc_range *r, char *buf, size_t len)
{
	char p[8];

	fwd_proto_name(r->proto, p, sizeof(p));
	if (!has_ports(r->proto))
		snprintf(buf, len, "%s", p);
	else if (r->lo == r->hi)
		snprintf(buf, len, "%s/%u", p, r->lo);
	else
		snprintf(buf, len, "%s/%u-%u", p, r->lo, r->hi);
}

static int check_overlaps(struct vctx *c)
{
	struct fwd_table *t = c->t;
	char path[320];

	qsort(t->ranges, t->nranges, sizeof(*t->ranges), cmp_range);
	for (uint32_t i = 1; i < t->nranges; i++) {
		const struct fwd_svc_range *x = &t->ranges[i - 1], *y = &t->ranges[i];

		if (x->proto == y->proto && y->lo <= x->hi) {
			char a[32], b[32];
			const struct fwd_svc_range *later = x->line > y->line ? x : y;
			const struct fwd_svc_range *first = later == x ? y : x;

			range_str(later, a, sizeof(a));
			range_str(first, b, sizeof(b));
			if (c->filters)
				snprintf(path, sizeof(path), "%s.%s.%s.%s", KEY(DOC, FILTERS),
					 KEY(FILTERS, RULES), t->service_names[later->service],
					 KEY(FILTER_RULE, SERVICES));
			else
				snprintf(path, sizeof(path), "%s.%s", KEY(DOC, SERVICES),
					 t->service_names[later->service]);
			return fwd_err_set(c->err, c->file, later->line, path, "%s overlaps %s of %s '%s'", a,
					   b, c->filters ? "rule" : "service", t->service_names[first->service]);
		}
	}
	return 0;
}

static int parse_services(struct vctx *c, const struct fwd_node *services)
{
	struct fwd_table *t = c->t;
	uint32_t total = 0;
	char path[320];
	int rc;

	if ((rc = section_map(c, services, KEY(DOC, SERVICES), FWD_MAX_SERVICES, "services")) < 0)
		return rc;
	if (rc)
		services = NULL;
	t->nservices = (uint16_t)(1 + (services ? services->count : 0));
	t->service_names = calloc(t->nservices, FWD_NAME_MAX);
	for (const struct fwd_node *s = services ? services->child : NULL; s; s = s->next)
		total += s->type == FWD_NODE_SEQ ? s->count * 3 : 0;
	t->ranges = malloc(sizeof(*t->ranges) * (total ? total : 1));
	if (t->service_names == NULL || t->ranges == NULL)
		return -ENOMEM;
	strcpy(t->service_names[0], WORD(BUILTIN, OTHER));

	uint16_t id = 1;
	for (const struct fwd_node *s = services ? services->child : NULL; s; s = s->next, id++) {
		if ((rc = section_entry(c, s, KEY(DOC, SERVICES), "service", FWD_SC_MAX,
					t->service_names[id], path, sizeof(path))))
			return rc;
		if (strcmp(s->key, WORD(BUILTIN, ANY)) == 0 ||
		    strcmp(s->key, WORD(BUILTIN, OTHER)) == 0)
			return fail(c, s, path, "'%s' is a reserved service name", s->key);
		if ((rc = want(c, s, path, FWD_NODE_SEQ)))
			return rc;
		if (s->count == 0)
			return fail(c, s, path, "a service needs at least one protocol/port entry");
		uint32_t i = 0;
		for (const struct fwd_node *e = s->child; e; e = e->next, i++) {
			snprintf(path, sizeof(path), "%s.%s[%u]", KEY(DOC, SERVICES), s->key, i);
			if ((rc = parse_svc_entry(c, e, path, id)))
				return rc;
		}
	}
	return check_overlaps(c);
}

/* ---- links and groups ------------------------------------------------------ */

static int parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
			return -EINVAL;
		char hex[3] = {s[0], s[1], 0};

		mac[i] = (uint8_t)strtoul(hex, NULL, 16);
		s += 2;
		if (i < 5) {
			if (*s != ':' && *s != '-')
				return -EINVAL;
			s++;
		}
	}
	return *s ? -EINVAL : 0;
}

static int parse_tags(struct vctx *c, const struct fwd_node *n, const char *path,
		      char tags[FWD_MAX_TAGS][FWD_NAME_MAX], uint8_t *ntags)
{
	char p[340];
	int rc;

	if ((rc = want(c, n, path, FWD_NODE_SEQ)))
		return rc;
	if (n->count > FWD_MAX_TAGS)
		return fail(c, n, path, "more than %d tags", FWD_MAX_TAGS);
	*ntags = 0;
	for (const struct fwd_node *e = n->child; e; e = e->next) {
		snprintf(p, sizeof(p), "%s[%u]", path, *ntags);
		if ((rc = get_name(c, e, p, "tag", tags[*ntags])))
			return rc;
		(*ntags)++;
	}
	return 0;
}

static int parse_links(struct vctx *c, const struct fwd_node *links)
{
	const char *const sec = KEY(DOC, LINKS);
	struct fwd_table *t = c->t;
	char path[320];
	int rc;

	if ((rc = section_map(c, links, sec, FWD_MAX_LINKS, "links")))
		return rc < 0 ? rc : 0;
	t->links = calloc(links->count ? links->count : 1, sizeof(*t->links));
	if (t->links == NULL)
		return -ENOMEM;
	for (const struct fwd_node *l = links->child; l; l = l->next) {
		struct fwd_link *lk = &t->links[t->nlinks];
		const struct fwd_node *f;
		const char *s;
		uint64_t v;

		if ((rc = section_entry(c, l, sec, "link", FWD_SC_LINK, lk->name, path,
					sizeof(path))))
			return rc;
		snprintf(path, sizeof(path), "%s.%s.%s", sec, l->key, KEY(LINK, PORT));
		if ((f = fwd_node_get(l, KEY(LINK, PORT))) == NULL)
			return fail(c, l, path, "missing field '%s'", KEY(LINK, PORT));
		if ((rc = get_name(c, f, path, "port", lk->port)))
			return rc;
		snprintf(path, sizeof(path), "%s.%s.%s", sec, l->key, KEY(LINK, NEXT_HOP_MAC));
		if ((f = fwd_node_get(l, KEY(LINK, NEXT_HOP_MAC))) == NULL)
			return fail(c, l, path, "missing field '%s'", KEY(LINK, NEXT_HOP_MAC));
		if ((rc = get_scalar(c, f, path, &s)))
			return rc;
		if (parse_mac(s, lk->next_hop_mac))
			return fail(c, f, path, "'%s' is not a MAC address (aa:bb:cc:dd:ee:ff)", s);
		if (lk->next_hop_mac[0] & 1)
			return fail(c, f, path, "'%s' is a multicast/broadcast address; a next hop is unicast",
				    s);
		if (!(lk->next_hop_mac[0] | lk->next_hop_mac[1] | lk->next_hop_mac[2] |
		      lk->next_hop_mac[3] | lk->next_hop_mac[4] | lk->next_hop_mac[5]))
			return fail(c, f, path, "the all-zero MAC is not a next hop");
		if ((f = fwd_node_get(l, KEY(LINK, VLAN))) != NULL) {
			snprintf(path, sizeof(path), "%s.%s.%s", sec, l->key, KEY(LINK, VLAN));
			if ((rc = get_uint(c, f, path, 1, 4094, &v)))
				return rc;
			lk->vlan = (uint16_t)v;
		}
		if ((f = fwd_node_get(l, KEY(LINK, TAGS))) != NULL) {
			snprintf(path, sizeof(path), "%s.%s.%s", sec, l->key, KEY(LINK, TAGS));
			if ((rc = parse_tags(c, f, path, lk->tags, &lk->ntags)))
				return rc;
		}
		lk->up = 1;
		if ((f = fwd_node_get(l, KEY(LINK, STATE))) != NULL) {
			int w;

			snprintf(path, sizeof(path), "%s.%s.%s", sec, l->key, KEY(LINK, STATE));
			if ((rc = get_scalar(c, f, path, &s)))
				return rc;
			if ((w = fwd_schema_lookup(FWD_SC_LINK_STATE, s)) < 0) {
				char words[64];

				return fail(
				    c, f, path, "%s must be %s, not '%s'", KEY(LINK, STATE),
				    word_list(FWD_SC_LINK_STATE, "'", " or ", words, sizeof(words)),
				    s);
			}
			lk->up = w == FWD_V_LINK_STATE_UP;
		}
		t->nlinks++;
	}
	return 0;
}

static int parse_groups(struct vctx *c, const struct fwd_node *groups, const struct nidx *links)
{
	const char *const sec = KEY(DOC, LINK_GROUPS), *const members = KEY(GROUP, MEMBERS);
	struct fwd_table *t = c->t;
	char path[320];
	int rc;

	if ((rc = section_map(c, groups, sec, FWD_MAX_GROUPS, "link groups")))
		return rc < 0 ? rc : 0;
	t->groups = calloc(groups->count ? groups->count : 1, sizeof(*t->groups));
	if (t->groups == NULL)
		return -ENOMEM;
	for (const struct fwd_node *g = groups->child; g; g = g->next) {
		struct fwd_group *gr = &t->groups[t->ngroups];
		const struct fwd_node *m;
		uint64_t wsum = 0;

		if ((rc = section_entry(c, g, sec, "link group", FWD_SC_GROUP, gr->name, path,
					sizeof(path))))
			return rc;
		if (nidx_find(links, g->key) >= 0)
			return fail(c, g, path, "'%s' is already a link name; links and groups share names",
				    g->key);
		snprintf(path, sizeof(path), "%s.%s.%s", sec, g->key, members);
		if ((m = fwd_node_get(g, members)) == NULL)
			return fail(c, g, path, "missing field '%s'", members);
		if ((rc = want(c, m, path, FWD_NODE_MAP)))
			return rc;
		if (m->count == 0 || m->count > FWD_MAX_GROUP_MEMBERS)
			return fail(c, m, path, "a group needs 1..%d members", FWD_MAX_GROUP_MEMBERS);
		for (const struct fwd_node *e = m->child; e; e = e->next) {
			int id = nidx_find(links, e->key);
			uint64_t w;

			snprintf(path, sizeof(path), "%s.%s.%s.%s", sec, g->key, members, e->key);
			if (id < 0)
				return fail(c, e, path, "unknown link '%s'", e->key);
			if ((rc = get_uint(c, e, path, 0, 1000000, &w)))
				return rc;
			gr->members[gr->nmembers++] = (struct fwd_group_member){
				.link = (uint16_t)id, .weight = (uint32_t)w};
			wsum += w;
		}
		if (wsum == 0) {
			snprintf(path, sizeof(path), "%s.%s.%s", sec, g->key, members);
			return fail(c, m, path, "every member has weight 0; the group could carry nothing");
		}
		t->ngroups++;
	}
	return 0;
}

/* ---- policies ------------------------------------------------------------------ */

struct names {
	struct nidx regions, services, links, groups;
};

static int resolve_target(struct vctx *c, const struct names *nm, const struct fwd_node *n,
			  const char *path, struct fwd_policy *p)
{
	const char *s;
	int rc = get_scalar(c, n, path, &s), id;

	if (rc)
		return rc;
	if ((id = nidx_find(&nm->links, s)) >= 0) {
		p->action = FWD_ACT_LINK;
		p->target = (uint16_t)id;
		return 0;
	}
	if ((id = nidx_find(&nm->groups, s)) >= 0) {
		p->action = FWD_ACT_GROUP;
		p->target = (uint16_t)id;
		return 0;
	}
	return fail(c, n, path, "unknown link or link group '%s'", s);
}

/* The action of a policy or (@dflt) of the default section. */
static int parse_action(struct vctx *c, const struct names *nm, const struct fwd_node *m,
			const char *base, int dflt, struct fwd_policy *p)
{
	const char *const action = dflt ? KEY(DEFAULT, ACTION) : KEY(POLICY, ACTION);
	const char *const to_key = dflt ? KEY(DEFAULT, TO) : KEY(POLICY, TO);
	const char *const mirror = dflt ? KEY(DEFAULT, MIRROR) : KEY(POLICY, MIRROR);
	const struct fwd_node *a = fwd_node_get(m, action), *to = fwd_node_get(m, to_key),
			      *mir = fwd_node_get(m, mirror);
	char path[340];
	const char *s;
	int rc, w;

	snprintf(path, sizeof(path), "%s.%s", base, action);
	if (a == NULL)
		return fail(c, m, path, "missing field '%s'", action);
	if ((rc = get_scalar(c, a, path, &s)))
		return rc;
	p->mirror = FWD_LINK_NONE;
	p->line = m->line;
	w = fwd_schema_lookup(FWD_SC_POLICY_ACTION, s);
	if (w == FWD_V_POLICY_ACTION_DROP) {
		p->action = FWD_ACT_DROP;
		p->target = 0;
		if (to) {
			snprintf(path, sizeof(path), "%s.%s", base, to_key);
			return fail(c, to, path, "%s '%s' takes no '%s'", action, s, to_key);
		}
	} else if (w == FWD_V_POLICY_ACTION_STEER) {
		snprintf(path, sizeof(path), "%s.%s", base, to_key);
		if (to == NULL)
			return fail(c, m, path, "%s '%s' needs '%s' (a link or link group)", action,
				    s, to_key);
		if ((rc = resolve_target(c, nm, to, path, p)))
			return rc;
	} else {
		char words[64];

		return fail(c, a, path, "%s must be %s, not '%s'", action,
			    word_list(FWD_SC_POLICY_ACTION, "'", " or ", words, sizeof(words)), s);
	}
	if (mir) {
		int id;

		snprintf(path, sizeof(path), "%s.%s", base, mirror);
		if ((rc = get_scalar(c, mir, path, &s)))
			return rc;
		if ((id = nidx_find(&nm->links, s)) < 0)
			return fail(c, mir, path, "unknown link '%s' (%s takes a link)", s, mirror);
		p->mirror = (uint16_t)id;
	}
	return 0;
}

static int resolve_scope(struct vctx *c, const struct nidx *x, const struct fwd_node *m,
			 const char *base, const char *field, const char *builtin, uint16_t *out)
{
	const struct fwd_node *n = fwd_node_get(m, field);
	char path[340];
	const char *s;
	int rc, id;

	snprintf(path, sizeof(path), "%s.%s", base, field);
	if (n == NULL)
		return fail(c, m, path, "missing field '%s' (a name or '%s')", field,
			    WORD(BUILTIN, ANY));
	if ((rc = get_scalar(c, n, path, &s)))
		return rc;
	if (strcmp(s, WORD(BUILTIN, ANY)) == 0) {
		*out = FWD_ANY;
		return 0;
	}
	if (strcmp(s, builtin) == 0) {
		*out = 0;
		return 0;
	}
	if ((id = nidx_find(x, s)) < 0)
		return fail(c, n, path, "unknown %s '%s'", field, s);
	*out = (uint16_t)id;
	return 0;
}

static int parse_policies(struct vctx *c, const struct names *nm, const struct fwd_node *pol,
			  const struct fwd_node *def)
{
	const char *const sec = KEY(DOC, POLICIES), *const dsec = KEY(DOC, DEFAULT);
	const char *const any = WORD(BUILTIN, ANY);
	struct fwd_table *t = c->t;
	uint32_t n = pol && pol->type == FWD_NODE_SEQ ? pol->count : 0;
	char path[320];
	int rc;

	if (pol && pol->type != FWD_NODE_NULL && (rc = want(c, pol, sec, FWD_NODE_SEQ)))
		return rc;
	if (n + 1 > FWD_MAX_POLICIES)
		return fail(c, pol, sec, "more than %d policies", FWD_MAX_POLICIES - 1);
	t->policies = calloc(n + 1, sizeof(*t->policies));
	if (t->policies == NULL)
		return -ENOMEM;

	/* Policy 0: the default, drop when the document has none (fail closed). */
	t->policies[0] = (struct fwd_policy){.region = FWD_ANY, .service = FWD_ANY,
					     .action = FWD_ACT_DROP, .mirror = FWD_LINK_NONE};
	if (def && def->type != FWD_NODE_NULL) {
		if ((rc = want(c, def, dsec, FWD_NODE_MAP)) ||
		    (rc = check_keys(c, def, dsec, FWD_SC_DEFAULT)) ||
		    (rc = parse_action(c, nm, def, dsec, 1, &t->policies[0])))
			return rc;
		t->policies[0].region = FWD_ANY;
		t->policies[0].service = FWD_ANY;
	}
	t->npolicies = 1;

	/* Uniqueness of (region, service): a dense bitmap would be 16M bits at
	 * the limits; a hash of the pair into a small open table is enough. */
	uint32_t cap = 64;
	while (cap < n * 2)
		cap <<= 1;
	uint32_t *seen = calloc(cap, sizeof(*seen)); /* policy index + 1 */
	if (seen == NULL)
		return -ENOMEM;
	uint32_t i = 0;
	for (const struct fwd_node *m = n ? pol->child : NULL; m; m = m->next, i++) {
		struct fwd_policy *p = &t->policies[t->npolicies];
		uint32_t key, h;

		snprintf(path, sizeof(path), "%s[%u]", sec, i);
		if ((rc = want(c, m, path, FWD_NODE_MAP)) ||
		    (rc = check_keys(c, m, path, FWD_SC_POLICY)) ||
		    (rc = resolve_scope(c, &nm->regions, m, path, KEY(POLICY, REGION),
					WORD(BUILTIN, UNKNOWN), &p->region)) ||
		    (rc = resolve_scope(c, &nm->services, m, path, KEY(POLICY, SERVICE),
					WORD(BUILTIN, OTHER), &p->service)) ||
		    (rc = parse_action(c, nm, m, path, 0, p)))
			goto out;
		if (p->region == FWD_ANY && p->service == FWD_ANY) {
			rc = fail(c, m, path, "%s '%s' with %s '%s' is the '%s' section",
				  KEY(POLICY, REGION), any, KEY(POLICY, SERVICE), any, dsec);
			goto out;
		}
		key = (uint32_t)p->region << 16 | p->service;
		for (h = (key * 2654435761u) & (cap - 1); seen[h]; h = (h + 1) & (cap - 1)) {
			const struct fwd_policy *q = &t->policies[seen[h]];

			if (((uint32_t)q->region << 16 | q->service) == key) {
				rc =
				    fail(c, m, path,
					 "a policy for %s '%s', %s '%s' already exists (line %u)",
					 KEY(POLICY, REGION),
					 p->region == FWD_ANY ? any : t->region_names[p->region],
					 KEY(POLICY, SERVICE),
					 p->service == FWD_ANY ? any : t->service_names[p->service],
					 q->line);
				goto out;
			}
		}
		seen[h] = t->npolicies;
		t->npolicies++;
	}
	rc = 0;
out:
	free(seen);
	return rc;
}

static int parse_residency(struct vctx *c, const struct names *nm, const struct fwd_node *res)
{
	const char *const sec = KEY(DOC, RESIDENCY), *const services = KEY(RESIDENCY, SERVICES);
	const char *const any = WORD(BUILTIN, ANY);
	struct fwd_table *t = c->t;
	char path[320];
	int rc;

	if (res == NULL || res->type == FWD_NODE_NULL)
		return 0;
	if ((rc = want(c, res, sec, FWD_NODE_SEQ)))
		return rc;
	if (res->count > FWD_MAX_RESIDENCY)
		return fail(c, res, sec, "more than %d residency rules", FWD_MAX_RESIDENCY);
	t->residency = calloc(res->count ? res->count : 1, sizeof(*t->residency));
	if (t->residency == NULL)
		return -ENOMEM;
	uint32_t i = 0;
	for (const struct fwd_node *m = res->child; m; m = m->next, i++) {
		struct fwd_residency *r = &t->residency[t->nresidency];
		const struct fwd_node *f;

		snprintf(path, sizeof(path), "%s[%u]", sec, i);
		if ((rc = want(c, m, path, FWD_NODE_MAP)) ||
		    (rc = check_keys(c, m, path, FWD_SC_RESIDENCY)))
			return rc;
		snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(RESIDENCY, NAME));
		if ((f = fwd_node_get(m, KEY(RESIDENCY, NAME))) == NULL)
			return fail(c, m, path, "missing field '%s'", KEY(RESIDENCY, NAME));
		if ((rc = get_name(c, f, path, "rule", r->name)))
			return rc;
		for (uint16_t j = 0; j < t->nresidency; j++)
			if (strcmp(t->residency[j].name, r->name) == 0)
				return fail(c, f, path, "residency rule '%s' is defined twice", r->name);
		snprintf(path, sizeof(path), "%s[%u]", sec, i);
		if ((rc = resolve_scope(c, &nm->regions, m, path, KEY(RESIDENCY, REGION),
					WORD(BUILTIN, UNKNOWN), &r->region)))
			return rc;
		if (r->region == FWD_ANY) {
			snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(RESIDENCY, REGION));
			return fail(c, fwd_node_get(m, KEY(RESIDENCY, REGION)), path,
				    "a residency rule protects one region, not '%s'", any);
		}
		snprintf(path, sizeof(path), "%s[%u].%s", sec, i, services);
		if ((f = fwd_node_get(m, services)) == NULL)
			return fail(c, m, path, "missing field '%s' (a list, or [%s])", services,
				    any);
		if ((rc = want(c, f, path, FWD_NODE_SEQ)))
			return rc;
		if (f->count == 0 || f->count > FWD_MAX_SERVICES)
			return fail(c, f, path, "list 1..%d services", FWD_MAX_SERVICES);
		r->services = calloc(f->count, sizeof(*r->services));
		if (r->services == NULL)
			return -ENOMEM;
		t->nresidency++; /* from here r->services is owned by the table */
		uint32_t j = 0;
		for (const struct fwd_node *e = f->child; e; e = e->next, j++) {
			const char *s;
			int id;

			snprintf(path, sizeof(path), "%s[%u].%s[%u]", sec, i, services, j);
			if ((rc = get_scalar(c, e, path, &s)))
				return rc;
			if (strcmp(s, any) == 0) {
				if (f->count != 1)
					return fail(c, e, path, "'%s' must stand alone", any);
				id = FWD_ANY;
			} else if (strcmp(s, WORD(BUILTIN, OTHER)) == 0) {
				id = FWD_SERVICE_OTHER;
			} else if ((id = nidx_find(&nm->services, s)) < 0) {
				return fail(c, e, path, "unknown service '%s'", s);
			}
			r->services[r->nservices++] = (uint16_t)id;
		}
		snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(RESIDENCY, ALLOWED_TAGS));
		if ((f = fwd_node_get(m, KEY(RESIDENCY, ALLOWED_TAGS))) == NULL)
			return fail(c, m, path, "missing field '%s'", KEY(RESIDENCY, ALLOWED_TAGS));
		if ((rc = parse_tags(c, f, path, r->tags, &r->ntags)))
			return rc;
		if (r->ntags == 0)
			return fail(c, f, path, "list at least one tag");
	}
	return 0;
}

/* ---- filters (the XDP filter, docs/filters.md) ----------------------------------- */

static int parse_flt_action(struct vctx *c, const struct fwd_node *n, const char *path, uint8_t *out,
			    int allow_rate)
{
	const char *s;
	int rc = get_scalar(c, n, path, &s), w;

	if (rc)
		return rc;
	w = fwd_schema_lookup(FWD_SC_FILTER_ACTION, s);
	if (w == FWD_V_FILTER_ACTION_PASS || w == FWD_V_FILTER_ACTION_DROP ||
	    (allow_rate && w == FWD_V_FILTER_ACTION_RATE)) {
		*out = (uint8_t)(w - FWD_SCHEMA_BEGIN_FILTER_ACTION); /* enum fwd_flt_action */
		return 0;
	}
	char rate[32] = "";

	if (allow_rate)
		snprintf(rate, sizeof(rate), ", '%s'", WORD(FILTER_ACTION, RATE));
	return fail(c, n, path, "must be '%s'%s or '%s', not '%s'", WORD(FILTER_ACTION, PASS), rate,
		    WORD(FILTER_ACTION, DROP), s);
}

static int parse_filters(struct vctx *c, const struct fwd_node *f)
{
	/* The three actions of the filters section, each in its field. */
	static const struct {
		enum fwd_schema key;
		size_t off;
	} actions[] = {
	    {FWD_F_FILTERS_DEFAULT, offsetof(struct fwd_filters, default_action)},
	    {FWD_F_FILTERS_NON_IP, offsetof(struct fwd_filters, non_ip_action)},
	    {FWD_F_FILTERS_MALFORMED, offsetof(struct fwd_filters, malformed_action)},
	};
	const char *const sec = KEY(DOC, FILTERS);
	const char *const name = KEY(FILTER_RULE, NAME), *const action = KEY(FILTER_RULE, ACTION);
	const char *const prefixes = KEY(FILTER_RULE, PREFIXES);
	const char *const services = KEY(FILTER_RULE, SERVICES);
	const char *const rate_pps = KEY(FILTER_RULE, RATE_PPS), *const burst =
								     KEY(FILTER_RULE, BURST);
	char rules_path[64];
	struct fwd_filters *fl = &c->t->filters;
	struct fwd_table s = {0}; /* the prefix and port parsers write here */
	struct vctx sc = *c;
	const struct fwd_node *rules, *n;
	uint32_t n4 = 0, n6 = 0, nr = 0;
	char path[320];
	int rc;

	if (f == NULL || f->type == FWD_NODE_NULL)
		return 0;
	if ((rc = want(c, f, sec, FWD_NODE_MAP)) || (rc = check_keys(c, f, sec, FWD_SC_FILTERS)))
		return rc;
	fl->present = 1;
	for (size_t k = 0; k < sizeof(actions) / sizeof(actions[0]); k++) {
		const char *key = fwd_schema_name(actions[k].key);

		if ((n = fwd_node_get(f, key)) == NULL)
			continue;
		snprintf(path, sizeof(path), "%s.%s", sec, key);
		if ((rc = parse_flt_action(c, n, path, (uint8_t *)fl + actions[k].off, 0)))
			return rc;
	}
	if ((n = fwd_node_get(f, KEY(FILTERS, REDIRECT))) != NULL) {
		const char *v;
		char words[64];
		int w;

		snprintf(path, sizeof(path), "%s.%s", sec, KEY(FILTERS, REDIRECT));
		if ((rc = get_scalar(c, n, path, &v)))
			return rc;
		if ((w = fwd_schema_lookup(FWD_SC_REDIRECT, v)) < 0)
			return fail(c, n, path, "must be %s, not '%s'",
				    word_list(FWD_SC_REDIRECT, "'", " or ", words, sizeof(words)),
				    v);
		fl->redirect = w == FWD_V_REDIRECT_AF_XDP;
	}
	snprintf(rules_path, sizeof(rules_path), "%s.%s", sec, KEY(FILTERS, RULES));
	rules = fwd_node_get(f, KEY(FILTERS, RULES));
	if (rules == NULL || rules->type == FWD_NODE_NULL)
		return 0;
	if ((rc = want(c, rules, rules_path, FWD_NODE_SEQ)))
		return rc;
	if (rules->count > 4096)
		return fail(c, rules, rules_path, "more than 4096 filter rules");
	for (const struct fwd_node *r = rules->child; r; r = r->next) {
		const struct fwd_node *p = fwd_node_get(r, prefixes),
				      *sv = fwd_node_get(r, services);

		for (const struct fwd_node *e = p && p->type == FWD_NODE_SEQ ? p->child : NULL; e; e = e->next)
			*(strchr(e->str, ':') ? &n6 : &n4) += 1;
		nr += sv && sv->type == FWD_NODE_SEQ ? sv->count * 3 : 0;
	}
	fl->rules = calloc(rules->count ? rules->count : 1, sizeof(*fl->rules));
	s.region_names = calloc(rules->count ? rules->count : 1, FWD_NAME_MAX);
	s.prefix4 = malloc(sizeof(*s.prefix4) * (n4 ? n4 : 1));
	s.prefix6 = malloc(sizeof(*s.prefix6) * (n6 ? n6 : 1));
	s.ranges = malloc(sizeof(*s.ranges) * (nr ? nr : 1));
	if (!fl->rules || !s.region_names || !s.prefix4 || !s.prefix6 || !s.ranges) {
		rc = -ENOMEM;
		goto out;
	}
	s.service_names = s.region_names;
	snprintf(s.source, sizeof(s.source), "%s", c->t->source);
	sc.t = &s;
	sc.filters = 1;
	uint32_t i = 0;
	for (const struct fwd_node *r = rules->child; r; r = r->next, i++) {
		struct fwd_filter_rule *fr = &fl->rules[i];
		const struct fwd_node *p, *sv;

		snprintf(path, sizeof(path), "%s[%u]", rules_path, i);
		if ((rc = want(c, r, path, FWD_NODE_MAP)) ||
		    (rc = check_keys(c, r, path, FWD_SC_FILTER_RULE)))
			goto out;
		snprintf(path, sizeof(path), "%s[%u].%s", rules_path, i, name);
		if ((n = fwd_node_get(r, name)) == NULL) {
			rc = fail(c, r, path, "missing field '%s'", name);
			goto out;
		}
		if ((rc = get_name(c, n, path, "rule", fr->name)))
			goto out;
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(fl->rules[j].name, fr->name) == 0) {
				rc = fail(c, n, path, "filter rule '%s' is defined twice", fr->name);
				goto out;
			}
		memcpy(s.region_names[i], fr->name, FWD_NAME_MAX);
		fr->line = r->line;
		snprintf(path, sizeof(path), "%s[%u].%s", rules_path, i, action);
		if ((n = fwd_node_get(r, action)) == NULL) {
			rc = fail(c, r, path, "missing field '%s' (%s or %s)", action,
				  WORD(FILTER_ACTION, PASS), WORD(FILTER_ACTION, DROP));
			goto out;
		}
		if ((rc = parse_flt_action(c, n, path, &fr->action, 1)))
			goto out;
		p = fwd_node_get(r, prefixes);
		sv = fwd_node_get(r, services);
		{
			const struct fwd_node *rp = fwd_node_get(r, rate_pps),
					      *bu = fwd_node_get(r, burst);
			const char *rate = WORD(FILTER_ACTION, RATE);
			uint64_t v;

			snprintf(path, sizeof(path), "%s[%u].%s", rules_path, i, rate_pps);
			if (fr->action == FWD_FLT_RATE) {
				if (rp == NULL) {
					rc = fail(c, r, path, "%s '%s' needs '%s'", action, rate,
						  rate_pps);
					goto out;
				}
				if (p == NULL) {
					snprintf(path, sizeof(path), "%s[%u]", rules_path, i);
					rc = fail(c, r, path,
						  "a %s rule limits source prefixes: give '%s'",
						  rate, prefixes);
					goto out;
				}
				if ((rc = get_uint(c, rp, path, 1, 100000000, &v)))
					goto out;
				fr->rate_pps = (uint32_t)v;
				fr->burst = fr->rate_pps;
				if (bu) {
					snprintf(path, sizeof(path), "%s[%u].%s", rules_path, i,
						 burst);
					if ((rc = get_uint(c, bu, path, 1, 100000000, &v)))
						goto out;
					fr->burst = (uint32_t)v;
				}
			} else if (rp || bu) {
				rc = fail(c, rp ? rp : bu, path, "'%s' and '%s' go with %s '%s'",
					  rate_pps, burst, action, rate);
				goto out;
			}
		}
		if ((p == NULL) == (sv == NULL)) {
			snprintf(path, sizeof(path), "%s[%u]", rules_path, i);
			rc = fail(c, r, path,
				  "a rule matches either '%s' or '%s', exactly one of them",
				  prefixes, services);
			goto out;
		}
		snprintf(path, sizeof(path), "%s[%u].%s", rules_path, i, p ? prefixes : services);
		if ((rc = want(c, p ? p : sv, path, FWD_NODE_SEQ)))
			goto out;
		if ((p ? p : sv)->count == 0) {
			rc = fail(c, p ? p : sv, path, "list at least one entry");
			goto out;
		}
		uint32_t k = 0;
		for (const struct fwd_node *e = (p ? p : sv)->child; e; e = e->next, k++) {
			uint32_t before = s.nranges;

			snprintf(path, sizeof(path), "%s[%u].%s[%u]", rules_path, i,
				 p ? prefixes : services, k);
			if ((rc = p ? parse_prefix(&sc, e, path, (uint16_t)i) : parse_svc_entry(&sc, e, path, (uint16_t)i)))
				goto out;
			for (uint32_t x = before; x < s.nranges; x++)
				if (s.ranges[x].proto != FWD_PROTO_TCP && s.ranges[x].proto != FWD_PROTO_UDP &&
				    s.ranges[x].proto != FWD_PROTO_SCTP) {
					rc = fail(c, e, path, "filter services take tcp, udp, sctp or any with ports");
					goto out;
				}
		}
	}
	fl->nrules = (uint16_t)i;
	if ((rc = check_dup_prefixes(&sc)) || (rc = check_overlaps(&sc)))
		goto out;
	{
		uint8_t lens[129] = {0};
		int distinct = 0;

		for (uint32_t x = 0; x < s.nprefix6; x++)
			distinct += !lens[s.prefix6[x].len]++;
		if (distinct > FWD_FLT_MAX_V6_LENGTHS) {
			rc = fail(c, rules, rules_path,
				  "IPv6 filter prefixes use %d distinct lengths; at most %d",
				  distinct, FWD_FLT_MAX_V6_LENGTHS);
			goto out;
		}
	}
	fl->prefix4 = s.prefix4;
	fl->prefix6 = s.prefix6;
	fl->ranges = s.ranges;
	fl->nprefix4 = s.nprefix4;
	fl->nprefix6 = s.nprefix6;
	fl->nranges = s.nranges;
	s.prefix4 = NULL;
	s.prefix6 = NULL;
	s.ranges = NULL;
	rc = 0;
out:
	free(s.prefix4);
	free(s.prefix6);
	free(s.ranges);
	free(s.region_names);
	return rc;
}

/* ---- content rules -------------------------------------------------------------- */

static int parse_id_list(struct vctx *c, const struct fwd_node *n, const char *path, const struct nidx *x,
			 const char *what, uint16_t **out, uint16_t *count)
{
	char p[340];
	int rc;

	if ((rc = want(c, n, path, FWD_NODE_SEQ)))
		return rc;
	if (n->count == 0 || n->count > 4096)
		return fail(c, n, path, "list 1..4096 %ss", what);
	*out = calloc(n->count, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	*count = 0;
	for (const struct fwd_node *e = n->child; e; e = e->next) {
		const char *s;
		int id;

		snprintf(p, sizeof(p), "%s[%u]", path, *count);
		if ((rc = get_scalar(c, e, p, &s)))
			return rc;
		if ((id = nidx_find(x, s)) < 0)
			return fail(c, e, p, "unknown %s '%s'", what, s);
		(*out)[(*count)++] = (uint16_t)id;
	}
	return 0;
}

/* A content rule that mirrors or steers traffic a residency rule protects
 * may only use links the rule allows (every carrying member of a group). */
static int content_residency(struct vctx *c, const struct fwd_content_rule *cr, const char *path)
{
	const struct fwd_table *t = c->t;

	if (cr->action != FWD_CA_MIRROR && cr->action != FWD_CA_STEER)
		return 0;
	for (uint16_t i = 0; i < t->nresidency; i++) {
		const struct fwd_residency *r = &t->residency[i];
		int region = cr->nregions == 0, svc = 0;

		for (uint16_t k = 0; k < cr->nregions; k++)
			region |= cr->regions[k] == r->region;
		for (uint16_t k = 0; k < cr->nservices; k++)
			for (uint16_t m = 0; m < r->nservices; m++)
				svc |= r->services[m] == FWD_ANY || r->services[m] == cr->services[k];
		if (!region || !svc)
			continue;
		if (cr->target_kind == FWD_ACT_LINK) {
			if (!fwd_link_allowed(&t->links[cr->target], r))
				return fwd_err_set(c->err, c->file, cr->line, path,
						   "breaks residency rule '%s': %ss region '%s' "
						   "traffic to link '%s'",
						   r->name, fwd_content_action_name(cr->action),
						   t->region_names[r->region],
						   t->links[cr->target].name);
		} else {
			const struct fwd_group *g = &t->groups[cr->target];

			for (uint16_t m = 0; m < g->nmembers; m++)
				if (g->members[m].weight && !fwd_link_allowed(&t->links[g->members[m].link], r))
					return fwd_err_set(c->err, c->file, cr->line, path,
							   "breaks residency rule '%s': steers region '%s' traffic to group '%s' with link '%s'",
							   r->name, t->region_names[r->region], g->name,
							   t->links[g->members[m].link].name);
		}
	}
	return 0;
}

static int parse_content(struct vctx *c, const struct names *nm, const struct fwd_node *n)
{
	const char *const sec = KEY(DOC, CONTENT_RULES), *const to_key = KEY(CONTENT, TO);
	struct fwd_table *t = c->t;
	char path[320], words[128];
	int rc, w;

	if (n == NULL || n->type == FWD_NODE_NULL)
		return 0;
	if ((rc = want(c, n, sec, FWD_NODE_SEQ)))
		return rc;
	if (n->count > FWD_MAX_CONTENT_RULES)
		return fail(c, n, sec, "more than %d content rules", FWD_MAX_CONTENT_RULES);
	t->content = calloc(n->count ? n->count : 1, sizeof(*t->content));
	if (t->content == NULL)
		return -ENOMEM;
	uint32_t i = 0;
	for (const struct fwd_node *m = n->child; m; m = m->next, i++) {
		struct fwd_content_rule *cr = &t->content[t->ncontent];
		const struct fwd_node *f;
		const char *s;

		snprintf(path, sizeof(path), "%s[%u]", sec, i);
		if ((rc = want(c, m, path, FWD_NODE_MAP)) ||
		    (rc = check_keys(c, m, path, FWD_SC_CONTENT)))
			return rc;
		t->ncontent++; /* owned from here: freed with the table */
		cr->line = m->line;
#define REQ(id)                                                                                    \
	snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(CONTENT, id));                       \
	if ((f = fwd_node_get(m, KEY(CONTENT, id))) == NULL)                                       \
		return fail(c, m, path, "missing field '%s'", KEY(CONTENT, id));
		REQ(NAME);
		if ((rc = get_name(c, f, path, "content rule", cr->name)))
			return rc;
		for (uint32_t j = 0; j + 1 < t->ncontent; j++)
			if (strcmp(t->content[j].name, cr->name) == 0)
				return fail(c, f, path, "content rule '%s' is defined twice", cr->name);
		REQ(FIELD);
		if ((rc = get_scalar(c, f, path, &s)))
			return rc;
		if ((w = fwd_schema_index(FWD_SC_CONTENT_FIELD, s)) < 0)
			return fail(
			    c, f, path, "%s must be %s, not '%s'", KEY(CONTENT, FIELD),
			    word_list(FWD_SC_CONTENT_FIELD, "", " or ", words, sizeof(words)), s);
		cr->field = (uint8_t)w; /* enum fwd_content_field */
		REQ(PATTERN);
		if ((rc = get_scalar(c, f, path, &s)))
			return rc;
		if (s[0] == '\0' || strlen(s) > FWD_MAX_PATTERN)
			return fail(c, f, path, "a pattern is 1..%d bytes", FWD_MAX_PATTERN);
		cr->pattern = strdup(s);
		if (cr->pattern == NULL)
			return -ENOMEM;
		for (int k = 0; k < 2; k++) {
			const char *key = k ? KEY(CONTENT, CASELESS) : KEY(CONTENT, LITERAL);

			if ((f = fwd_node_get(m, key)) == NULL)
				continue;
			snprintf(path, sizeof(path), "%s[%u].%s", sec, i, key);
			if ((rc = get_scalar(c, f, path, &s)))
				return rc;
			if ((w = fwd_schema_lookup(FWD_SC_BOOL, s)) < 0)
				return fail(
				    c, f, path, "must be %s",
				    word_list(FWD_SC_BOOL, "", " or ", words, sizeof(words)));
			*(k ? &cr->caseless : &cr->literal) = w == FWD_V_BOOL_TRUE;
		}
		REQ(SERVICES);
		if ((rc = parse_id_list(c, f, path, &nm->services, "service", &cr->services,
					&cr->nservices)))
			return rc;
		if ((f = fwd_node_get(m, KEY(CONTENT, REGIONS))) != NULL) {
			snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(CONTENT, REGIONS));
			if ((rc = parse_id_list(c, f, path, &nm->regions, "region", &cr->regions,
						&cr->nregions)))
				return rc;
		}
		REQ(ACTION);
		if ((rc = get_scalar(c, f, path, &s)))
			return rc;
		if ((w = fwd_schema_index(FWD_SC_CONTENT_ACTION, s)) < 0)
			return fail(
			    c, f, path, "%s must be %s, not '%s'", KEY(CONTENT, ACTION),
			    word_list(FWD_SC_CONTENT_ACTION, "", " or ", words, sizeof(words)), s);
		cr->action = (uint8_t)w; /* enum fwd_content_action */
#undef REQ
		f = fwd_node_get(m, to_key);
		snprintf(path, sizeof(path), "%s[%u].%s", sec, i, to_key);
		if (cr->action == FWD_CA_MIRROR || cr->action == FWD_CA_STEER) {
			int id;

			if (f == NULL)
				return fail(c, m, path, "%s '%s' needs '%s'", KEY(CONTENT, ACTION),
					    fwd_content_action_name(cr->action), to_key);
			if ((rc = get_scalar(c, f, path, &s)))
				return rc;
			if ((id = nidx_find(&nm->links, s)) >= 0) {
				cr->target_kind = FWD_ACT_LINK;
			} else if (cr->action == FWD_CA_STEER && (id = nidx_find(&nm->groups, s)) >= 0) {
				cr->target_kind = FWD_ACT_GROUP;
			} else {
				return fail(c, f, path, "unknown %s '%s'",
					    cr->action == FWD_CA_MIRROR ? "link (mirror takes a link)" : "link or link group", s);
			}
			cr->target = (uint16_t)id;
		} else if (f) {
			return fail(c, f, path, "%s '%s' takes no '%s'", KEY(CONTENT, ACTION),
				    fwd_content_action_name(cr->action), to_key);
		}
		if (cr->action == FWD_CA_STEER) {
			/* A steer decides per packet; on a TCP (or SCTP) flow that would
			 * move a connection between links mid-stream. */
			for (uint16_t k = 0; k < cr->nservices; k++)
				for (uint32_t r = 0; r < t->nranges; r++)
					if (t->ranges[r].service == cr->services[k] && t->ranges[r].proto != FWD_PROTO_UDP) {
						char proto[8];

						snprintf(path, sizeof(path), "%s[%u].%s", sec, i,
							 KEY(CONTENT, ACTION));
						fwd_proto_name(t->ranges[r].proto, proto, sizeof(proto));
						return fail(
						    c, fwd_node_get(m, KEY(CONTENT, ACTION)), path,
						    "steer decides per packet, so its scope must "
						    "be UDP only: service '%s' has %s ports (a %s "
						    "flow would change link mid-stream)",
						    t->service_names[cr->services[k]], proto,
						    proto);
					}
		}
		snprintf(path, sizeof(path), "%s[%u]", sec, i);
		if ((rc = content_residency(c, cr, path)))
			return rc;
	}
	return 0;
}

/* ---- top level ------------------------------------------------------------------ */

struct fwd_table *fwd_table_from_doc(const struct fwd_doc *doc, struct fwd_err *err)
{
	const struct fwd_node *root = fwd_doc_root(doc), *f;
	struct fwd_table *t = calloc(1, sizeof(*t));
	struct vctx c = {.file = fwd_doc_name(doc), .err = err, .t = t};
	struct names nm = {0};
	int rc;

	if (t == NULL) {
		fwd_err_set(err, c.file, 0, NULL, "out of memory");
		return NULL;
	}
	snprintf(t->source, sizeof(t->source), "%s", c.file);
	if ((rc = want(&c, root, "", FWD_NODE_MAP)) || (rc = check_keys(&c, root, "", FWD_SC_DOC)))
		goto fail;
	if ((f = fwd_node_get(root, KEY(DOC, VERSION))) != NULL) {
		uint64_t v;

		if ((rc = get_uint(&c, f, KEY(DOC, VERSION), 1, 1, &v)))
			goto fail;
	}
	if ((f = fwd_node_get(root, KEY(DOC, DESCRIPTION))) != NULL) {
		const char *s;

		if ((rc = get_scalar(&c, f, KEY(DOC, DESCRIPTION), &s)))
			goto fail;
		snprintf(t->description, sizeof(t->description), "%s", s);
	}
	if ((rc = parse_regions(&c, fwd_node_get(root, KEY(DOC, REGIONS)))) ||
	    (rc = parse_services(&c, fwd_node_get(root, KEY(DOC, SERVICES)))) ||
	    (rc = parse_links(&c, fwd_node_get(root, KEY(DOC, LINKS)))))
		goto fail;
	if (nidx_build(&nm.regions, (const char(*)[FWD_NAME_MAX])t->region_names, t->nregions) ||
	    nidx_build(&nm.services, (const char(*)[FWD_NAME_MAX])t->service_names, t->nservices)) {
		rc = -ENOMEM;
		goto fail;
	}
	/* Links are not a plain name array; index them through a copy. */
	{
		char(*ln)[FWD_NAME_MAX] = calloc(t->nlinks ? t->nlinks : 1, FWD_NAME_MAX);

		if (ln == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		for (uint16_t i = 0; i < t->nlinks; i++)
			memcpy(ln[i], t->links[i].name, FWD_NAME_MAX);
		rc = nidx_build(&nm.links, (const char(*)[FWD_NAME_MAX])ln, t->nlinks);
		if (rc == 0)
			rc = parse_groups(&c, fwd_node_get(root, KEY(DOC, LINK_GROUPS)), &nm.links);
		if (rc == 0) {
			char(*gn)[FWD_NAME_MAX] = calloc(t->ngroups ? t->ngroups : 1, FWD_NAME_MAX);

			if (gn == NULL)
				rc = -ENOMEM;
			for (uint16_t i = 0; gn && i < t->ngroups; i++)
				memcpy(gn[i], t->groups[i].name, FWD_NAME_MAX);
			if (rc == 0)
				rc = nidx_build(&nm.groups, (const char(*)[FWD_NAME_MAX])gn, t->ngroups);
			if (rc == 0)
				rc = parse_policies(&c, &nm, fwd_node_get(root, KEY(DOC, POLICIES)),
						    fwd_node_get(root, KEY(DOC, DEFAULT)));
			if (rc == 0)
				rc = parse_residency(&c, &nm,
						     fwd_node_get(root, KEY(DOC, RESIDENCY)));
			if (rc == 0)
				rc = parse_filters(&c, fwd_node_get(root, KEY(DOC, FILTERS)));
			if (rc == 0)
				rc = parse_content(&c, &nm,
						   fwd_node_get(root, KEY(DOC, CONTENT_RULES)));
			free(gn);
		}
		free(ln);
	}
	if (rc)
		goto fail;
	nidx_free(&nm.regions);
	nidx_free(&nm.services);
	nidx_free(&nm.links);
	nidx_free(&nm.groups);
	return t;
fail:
	if (rc == -ENOMEM && err && err->reason[0] == '\0')
		fwd_err_set(err, c.file, 0, NULL, "out of memory");
	nidx_free(&nm.regions);
	nidx_free(&nm.services);
	nidx_free(&nm.links);
	nidx_free(&nm.groups);
	fwd_table_free(t);
	return NULL;
}

struct fwd_table *fwd_table_load(const char *path, struct fwd_err *err)
{
	struct fwd_doc *doc = fwd_doc_load(path, err);
	struct fwd_table *t;

	if (doc == NULL)
		return NULL;
	t = fwd_table_from_doc(doc, err);
	fwd_doc_free(doc);
	return t;
}

struct fwd_table *fwd_table_parse(const char *buf, size_t len, const char *name, int json,
				  struct fwd_err *err)
{
	struct fwd_doc *doc = fwd_doc_parse(buf, len, name, json, err);
	struct fwd_table *t;

	if (doc == NULL)
		return NULL;
	t = fwd_table_from_doc(doc, err);
	fwd_doc_free(doc);
	return t;
}

void fwd_table_free(struct fwd_table *t)
{
	if (t == NULL)
		return;
	for (uint16_t i = 0; i < t->nresidency; i++)
		free(t->residency[i].services);
	free(t->residency);
	for (uint32_t i = 0; i < t->ncontent; i++) {
		free(t->content[i].pattern);
		free(t->content[i].services);
		free(t->content[i].regions);
	}
	free(t->content);
	free(t->filters.rules);
	free(t->filters.prefix4);
	free(t->filters.prefix6);
	free(t->filters.ranges);
	free(t->policies);
	free(t->groups);
	free(t->links);
	free(t->prefix6);
	free(t->prefix4);
	free(t->ranges);
	free(t->service_names);
	free(t->region_names);
	free(t);
}

static int find_name(const char (*names)[FWD_NAME_MAX], size_t stride, uint32_t n, const char *s)
{
	const char *base = (const char *)names;

	for (uint32_t i = 0; i < n; i++)
		if (strcmp(base + i * stride, s) == 0)
			return (int)i;
	return -ENOENT;
}

int fwd_table_region_id(const struct fwd_table *t, const char *name)
{
	return find_name(t->region_names, FWD_NAME_MAX, t->nregions, name);
}

int fwd_table_service_id(const struct fwd_table *t, const char *name)
{
	return find_name(t->service_names, FWD_NAME_MAX, t->nservices, name);
}

int fwd_table_link_id(const struct fwd_table *t, const char *name)
{
	return t->nlinks ? find_name((const char(*)[FWD_NAME_MAX])t->links[0].name,
				     sizeof(struct fwd_link), t->nlinks, name)
			 : -ENOENT;
}

int fwd_table_group_id(const struct fwd_table *t, const char *name)
{
	return t->ngroups ? find_name((const char(*)[FWD_NAME_MAX])t->groups[0].name,
				      sizeof(struct fwd_group), t->ngroups, name)
			  : -ENOENT;
}

const char *fwd_table_policy_target(const struct fwd_table *t, const struct fwd_policy *p)
{
	switch (p->action) {
	case FWD_ACT_LINK:
		return t->links[p->target].name;
	case FWD_ACT_GROUP:
		return t->groups[p->target].name;
	default:
		return WORD(POLICY_ACTION, DROP);
	}
}

int fwd_proto_by_name(const char *name)
{
	int proto;

	if (fwd_schema_lookup(FWD_SC_PROTO, name) < 0 ||
	    proto_from_name(name, strlen(name), &proto))
		return -ENOENT;
	return proto < 0 ? -ENOENT : proto;
}

const char *fwd_proto_name(uint8_t proto, char *buf, size_t len)
{
	switch (proto) {
	case FWD_PROTO_TCP:
		return snprintf(buf, len, "%s", WORD(PROTO, TCP)), buf;
	case FWD_PROTO_UDP:
		return snprintf(buf, len, "%s", WORD(PROTO, UDP)), buf;
	case FWD_PROTO_SCTP:
		return snprintf(buf, len, "%s", WORD(PROTO, SCTP)), buf;
	case FWD_PROTO_ICMP:
		return snprintf(buf, len, "%s", WORD(PROTO, ICMP)), buf;
	case FWD_PROTO_ICMPV6:
		return snprintf(buf, len, "%s", WORD(PROTO, ICMPV6)), buf;
	default:
		return snprintf(buf, len, "%u", proto), buf;
	}
}

int fwd_link_allowed(const struct fwd_link *l, const struct fwd_residency *r)
{
	for (uint8_t i = 0; i < l->ntags; i++)
		for (uint8_t j = 0; j < r->ntags; j++)
			if (strcmp(l->tags[i], r->tags[j]) == 0)
				return 1;
	return 0;
}

const char *fwd_table_policy_key(const struct fwd_table *t, uint32_t pid, char *buf, size_t len)
{
	const struct fwd_policy *p = &t->policies[pid];

	if (pid == FWD_POLICY_DEFAULT)
		snprintf(buf, len, "%s", KEY(DOC, DEFAULT));
	else
		snprintf(buf, len, "%s/%s",
			 p->region == FWD_ANY ? WORD(BUILTIN, ANY) : t->region_names[p->region],
			 p->service == FWD_ANY ? WORD(BUILTIN, ANY) : t->service_names[p->service]);
	return buf;
}
