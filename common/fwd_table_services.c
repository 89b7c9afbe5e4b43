/*
 * fwd_table_services.c - the services section: protocol and port entries,
 * no two ranges of a protocol overlapping. The entry parser and the overlap
 * check serve the filters section too.
 */
#include "fwd_table_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tv_proto_from_name(const char *s, size_t len, int *proto)
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
		return tv_fail(c, n, path, "more than %u port entries in the services section",
			       (uint32_t)FWD_MAX_SERVICES * 16);
	t->ranges[t->nranges++] = (struct fwd_svc_range){
		.proto = proto, .lo = lo, .hi = hi, .service = service, .line = n->line};
	return 0;
}

int tv_parse_svc_entry(struct vctx *c, const struct fwd_node *n, const char *path, uint16_t service)
{
	const char *s, *slash, *dash;
	uint16_t lo = 0, hi = 65535;
	int proto, rc = tv_get_scalar(c, n, path, &s);

	if (rc)
		return rc;
	slash = strchr(s, '/');
	if (tv_proto_from_name(s, slash ? (size_t)(slash - s) : strlen(s), &proto)) {
		char words[128];

		return tv_fail(c, n, path, "'%s': protocol must be %s or 0..255", s,
			       tv_word_list(FWD_SC_PROTO, "", ", ", words, sizeof(words)));
	}
	if (slash) {
		if (proto >= 0 && !has_ports(proto))
			return tv_fail(c, n, path, "'%s': only tcp, udp, sctp and any have ports",
				       s);
		dash = strchr(slash + 1, '-');
		if (parse_port(slash + 1, dash ? dash : slash + 1 + strlen(slash + 1), &lo) ||
		    (dash && parse_port(dash + 1, dash + 1 + strlen(dash + 1), &hi)))
			return tv_fail(c, n, path,
				       "'%s': ports must be PORT or LO-HI within 0..65535", s);
		if (!dash)
			hi = lo;
		if (lo > hi)
			return tv_fail(c, n, path, "'%s': range start %u is above its end %u", s,
				       lo, hi);
	} else if (proto < 0) {
		return tv_fail(c, n, path, "'%s': 'any' needs a port or range (any/53)", s);
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

int tv_check_overlaps(struct vctx *c)
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
			return fwd_err_set(c->err, c->file, later->line, path,
					   "%s overlaps %s of %s '%s'", a, b,
					   c->filters ? "rule" : "service",
					   t->service_names[first->service]);
		}
	}
	return 0;
}

int tv_parse_services(struct vctx *c, const struct fwd_node *services)
{
	struct fwd_table *t = c->t;
	uint32_t total = 0;
	char path[320];
	int rc;

	if ((rc = tv_section_map(c, services, KEY(DOC, SERVICES), FWD_MAX_SERVICES, "services")) <
	    0)
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
		if ((rc = tv_section_entry(c, s, KEY(DOC, SERVICES), "service", FWD_SC_MAX,
					   t->service_names[id], path, sizeof(path))))
			return rc;
		if (strcmp(s->key, WORD(BUILTIN, ANY)) == 0 ||
		    strcmp(s->key, WORD(BUILTIN, OTHER)) == 0)
			return tv_fail(c, s, path, "'%s' is a reserved service name", s->key);
		if ((rc = tv_want(c, s, path, FWD_NODE_SEQ)))
			return rc;
		if (s->count == 0)
			return tv_fail(c, s, path,
				       "a service needs at least one protocol/port entry");
		uint32_t i = 0;
		for (const struct fwd_node *e = s->child; e; e = e->next, i++) {
			snprintf(path, sizeof(path), "%s.%s[%u]", KEY(DOC, SERVICES), s->key, i);
			if ((rc = tv_parse_svc_entry(c, e, path, id)))
				return rc;
		}
	}
	return tv_check_overlaps(c);
}

int tv_index_services(struct vctx *c)
{
	return tv_nidx_build(&c->nm.services, (const char(*)[FWD_NAME_MAX])c->t->service_names,
			     c->t->nservices);
}
