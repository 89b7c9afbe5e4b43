#include "fwd_filter.h"

#include "fwd_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp_len(const void *a, const void *b)
{
	const struct fwd_flt_prefix *x = *(const struct fwd_flt_prefix *const *)a;
	const struct fwd_flt_prefix *y = *(const struct fwd_flt_prefix *const *)b;

	return (int)x->len - (int)y->len;
}

/* Make *entry point to a group, creating one that inherits the entry's
 * current value (the longest prefix so far covering that range). */
static int ensure_group(struct fwd_flt_image *img, uint32_t *entry, uint32_t max_groups,
			uint32_t *g)
{
	uint32_t v = *entry;

	if (v & FWD_FLT_GROUP) {
		*g = v & ~FWD_FLT_GROUP;
		return 0;
	}
	if (img->ngroups == max_groups)
		return -ENOSPC;
	*g = img->ngroups++;
	for (int i = 0; i < 256; i++)
		img->tbl8[*g * 256 + i] = v;
	*entry = FWD_FLT_GROUP | *g;
	return 0;
}

static uint32_t count_groups(const struct fwd_flt_prefix *p, uint32_t n)
{
	/* An upper bound: one group per prefix longer than /16 and one more per
	 * prefix longer than /24; exact counting is not worth it here. */
	uint32_t g = 0;

	for (uint32_t i = 0; i < n; i++)
		if (p[i].family == 4)
			g += (p[i].len > 16) + (p[i].len > 24);
	return g;
}

struct fwd_flt_image *fwd_flt_compile(const struct fwd_flt_prefix *prefixes, uint32_t nprefixes,
				      const struct fwd_flt_ports *ports, uint32_t nports,
				      const uint8_t *actions, uint16_t nrules, struct fwd_err *err)
{
	struct fwd_flt_image *img = calloc(1, sizeof(*img));
	const struct fwd_flt_prefix **order = NULL;
	uint32_t max_groups = count_groups(prefixes, nprefixes);

	if (img == NULL)
		goto nomem;
	if (nrules > FWD_FLT_MAX_RULES) {
		fwd_err_set(err, "", 0, "filters", "more than %d filter rules", FWD_FLT_MAX_RULES);
		goto fail;
	}
	img->nrules = nrules;
	for (uint16_t r = 0; r < nrules; r++)
		img->rules[r].action = actions[r];
	img->tbl8 = calloc((size_t)(max_groups ? max_groups : 1) * 256, sizeof(*img->tbl8));
	img->prefix_rule = calloc(nprefixes ? nprefixes : 1, sizeof(*img->prefix_rule));
	img->v6 = calloc(nprefixes ? nprefixes : 1, sizeof(*img->v6));
	order = malloc(sizeof(*order) * (nprefixes ? nprefixes : 1));
	if (!img->tbl8 || !img->prefix_rule || !img->v6 || !order)
		goto nomem;
	for (uint32_t i = 0; i < nprefixes; i++) {
		if (prefixes[i].rule >= nrules) {
			fwd_err_set(err, "", 0, "filters", "prefix refers to rule %u of %u",
				    prefixes[i].rule, nrules);
			goto fail;
		}
		order[i] = &prefixes[i];
	}
	/* Shortest first: a longer prefix then overwrites exactly its range. */
	qsort(order, nprefixes, sizeof(*order), cmp_len);
	for (uint32_t i = 0; i < nprefixes; i++) {
		const struct fwd_flt_prefix *p = order[i];
		uint32_t idx = img->nprefix++, val = idx + 1;

		img->prefix_rule[idx] = p->rule;
		if (p->family == 6) {
			int seen = 0;

			img->v6[img->nv6].len = p->len;
			memcpy(img->v6[img->nv6].addr, p->addr, 16);
			img->v6[img->nv6++].prefix = idx;
			for (uint32_t k = 0; k < img->n_v6_lengths; k++)
				seen |= img->v6_lengths[k] == p->len;
			if (!seen) {
				if (img->n_v6_lengths == FWD_FLT_MAX_V6_LENGTHS) {
					fwd_err_set(err, "", 0, "filters",
						    "IPv6 filter prefixes use more than %d "
						    "distinct lengths",
						    FWD_FLT_MAX_V6_LENGTHS);
					goto fail;
				}
				img->v6_lengths[img->n_v6_lengths++] = p->len;
			}
			continue;
		}
		uint32_t a = (uint32_t)p->addr[0] << 24 | (uint32_t)p->addr[1] << 16 |
			     (uint32_t)p->addr[2] << 8 | p->addr[3];
		uint32_t g2, g3;

		if (p->len <= 16) {
			for (uint32_t k = 0; k < (1u << (16 - p->len)); k++)
				img->tbl16[(a >> 16) + k] = val;
			continue;
		}
		if (ensure_group(img, &img->tbl16[a >> 16], max_groups, &g2))
			goto nospc;
		if (p->len <= 24) {
			for (uint32_t k = 0; k < (1u << (24 - p->len)); k++)
				img->tbl8[g2 * 256 + ((a >> 8) & 0xff) + k] = val;
			continue;
		}
		if (ensure_group(img, &img->tbl8[g2 * 256 + ((a >> 8) & 0xff)], max_groups, &g3))
			goto nospc;
		for (uint32_t k = 0; k < (1u << (32 - p->len)); k++)
			img->tbl8[g3 * 256 + (a & 0xff) + k] = val;
	}
	/* Longest IPv6 length first: the first hit is the longest match. */
	for (uint32_t x = 1; x < img->n_v6_lengths; x++)
		for (uint32_t y = x; y > 0 && img->v6_lengths[y - 1] < img->v6_lengths[y]; y--) {
			uint8_t t = img->v6_lengths[y];

			img->v6_lengths[y] = img->v6_lengths[y - 1];
			img->v6_lengths[y - 1] = t;
		}
	for (uint32_t i = 0; i < nports; i++) {
		const struct fwd_flt_ports *pr = &ports[i];
		int pi = pr->proto == 6 ? 0 : pr->proto == 17 ? 1 : pr->proto == 132 ? 2 : -1;

		if (pi < 0 || pr->rule >= nrules || pr->lo > pr->hi) {
			fwd_err_set(err, "", 0, "filters",
				    "bad port rule (protocol %u, %u-%u, rule %u)", pr->proto,
				    pr->lo, pr->hi, pr->rule);
			goto fail;
		}
		for (uint32_t port = pr->lo; port <= pr->hi; port++)
			img->ports[(uint32_t)pi * 65536 + port] = (uint16_t)(pr->rule + 1);
	}
	free(order);
	return img;
nospc:
	fwd_err_set(err, "", 0, "filters", "internal: IPv4 group budget exceeded");
	goto fail;
nomem:
	fwd_err_set(err, "", 0, "filters", "out of memory");
fail:
	free(order);
	fwd_flt_image_free(img);
	return NULL;
}

void fwd_flt_image_free(struct fwd_flt_image *img)
{
	if (img == NULL)
		return;
	free(img->tbl8);
	free(img->prefix_rule);
	free(img->v6);
	free(img);
}

uint32_t fwd_flt_image_lookup(const struct fwd_flt_image *img, int family, const uint8_t *a)
{
	if (family == 4) {
		uint32_t e = img->tbl16[(uint32_t)a[0] << 8 | a[1]];

		for (int level = 2; level <= 3 && (e & FWD_FLT_GROUP); level++)
			e = img->tbl8[(e & ~FWD_FLT_GROUP) * 256 + a[level]];
		return e ? (uint32_t)img->prefix_rule[e - 1] + 1 : 0;
	}
	for (uint32_t l = 0; l < img->n_v6_lengths; l++) {
		uint8_t len = img->v6_lengths[l];

		for (uint32_t i = 0; i < img->nv6; i++) {
			const struct fwd_flt_v6_entry *v = &img->v6[i];
			int ok = v->len == len;

			for (int b = 0; ok && b < len; b++)
				ok = ((a[b / 8] ^ v->addr[b / 8]) & (0x80 >> (b % 8))) == 0;
			if (ok)
				return (uint32_t)img->prefix_rule[v->prefix] + 1;
		}
	}
	return 0;
}

struct fwd_flt_image *fwd_flt_compile_table(const struct fwd_filters *f, struct fwd_err *err)
{
	uint32_t np = f->nprefix4 + f->nprefix6;
	struct fwd_flt_prefix *px = calloc(np ? np : 1, sizeof(*px));
	struct fwd_flt_ports *pt = calloc(f->nranges ? f->nranges : 1, sizeof(*pt));
	uint8_t *act = calloc(f->nrules ? f->nrules : 1, 1);
	struct fwd_flt_image *img = NULL;
	uint32_t k = 0;

	if (px == NULL || pt == NULL || act == NULL) {
		fwd_err_set(err, "", 0, "filters", "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < f->nprefix4; i++, k++) {
		uint32_t a = f->prefix4[i].addr;

		px[k] = (struct fwd_flt_prefix){.family = 4,
						.len = f->prefix4[i].len,
						.rule = f->prefix4[i].region,
						.addr = {(uint8_t)(a >> 24), (uint8_t)(a >> 16),
							 (uint8_t)(a >> 8), (uint8_t)a}};
	}
	for (uint32_t i = 0; i < f->nprefix6; i++, k++) {
		px[k] = (struct fwd_flt_prefix){
			.family = 6, .len = f->prefix6[i].len, .rule = f->prefix6[i].region};
		memcpy(px[k].addr, f->prefix6[i].addr, 16);
	}
	for (uint32_t i = 0; i < f->nranges; i++)
		pt[i] = (struct fwd_flt_ports){.proto = f->ranges[i].proto,
					       .lo = f->ranges[i].lo,
					       .hi = f->ranges[i].hi,
					       .rule = f->ranges[i].service};
	for (uint16_t i = 0; i < f->nrules; i++)
		act[i] = f->rules[i].action;
	img = fwd_flt_compile(px, np, pt, f->nranges, act, f->nrules, err);
	for (uint16_t i = 0; img && i < f->nrules; i++)
		if (f->rules[i].action == FWD_FLT_RATE)
			fwd_flt_image_rate(img, i, f->rules[i].rate_pps, f->rules[i].burst);
out:
	free(px);
	free(pt);
	free(act);
	return img;
}

uint8_t fwd_flt_malformed_policy(const struct fwd_filters *f)
{
	uint8_t unseen = 0;

	if (!f->present || f->malformed_action != FWD_FLT_PASS)
		return f->present ? f->malformed_action : FWD_FLT_PASS;
	if (f->default_action == FWD_FLT_DROP)
		unseen = FWD_FLT_MALFORMED_UNSEEN_PORTS | FWD_FLT_MALFORMED_UNSEEN_SOURCE;
	for (uint32_t i = 0; i < f->nranges; i++)
		if (f->rules[f->ranges[i].service].action == FWD_FLT_DROP)
			unseen = FWD_FLT_MALFORMED_UNSEEN_PORTS | FWD_FLT_MALFORMED_UNSEEN_SOURCE;
	for (uint32_t i = 0; i < f->nprefix4 + f->nprefix6; i++) {
		uint16_t r =
			i < f->nprefix4 ? f->prefix4[i].region : f->prefix6[i - f->nprefix4].region;

		if (f->rules[r].action != FWD_FLT_PASS)
			unseen |= FWD_FLT_MALFORMED_UNSEEN_SOURCE;
	}
	return (uint8_t)(FWD_FLT_PASS | unseen);
}

/* @a within @p/@len (network order). */
static int covers(const uint8_t *p, uint8_t len, const uint8_t *a)
{
	uint8_t whole = len / 8, rest = len % 8;

	if (memcmp(p, a, whole))
		return 0;
	return rest == 0 || ((p[whole] ^ a[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

void fwd_flt_decide(const struct fwd_filters *f, int family, const uint8_t *src, uint8_t proto,
		    int has_ports, uint16_t dport, struct fwd_flt_verdict *v)
{
	int best = -1;

	memset(v, 0, sizeof(*v));
	v->rule = -1;
	v->by = FWD_FLT_BY_DEFAULT;
	v->action = f->present ? f->default_action : FWD_FLT_PASS;
	if (!f->present)
		return;
	/* A linear scan: explain asks once, the fast path uses the image. */
	for (uint32_t i = 0; family == 4 && i < f->nprefix4; i++) {
		uint32_t a = f->prefix4[i].addr;
		uint8_t p[4] = {(uint8_t)(a >> 24), (uint8_t)(a >> 16), (uint8_t)(a >> 8),
				(uint8_t)a};

		if (covers(p, f->prefix4[i].len, src) && (best < 0 || f->prefix4[i].len > v->len)) {
			best = (int)i;
			v->len = f->prefix4[i].len;
			v->rule = f->prefix4[i].region;
			memcpy(v->prefix, p, 4);
		}
	}
	for (uint32_t i = 0; family == 6 && i < f->nprefix6; i++)
		if (covers(f->prefix6[i].addr, f->prefix6[i].len, src) &&
		    (best < 0 || f->prefix6[i].len > v->len)) {
			best = (int)i;
			v->len = f->prefix6[i].len;
			v->rule = f->prefix6[i].region;
			memcpy(v->prefix, f->prefix6[i].addr, 16);
		}
	if (best >= 0) {
		v->by = FWD_FLT_BY_PREFIX;
		v->action = f->rules[v->rule].action;
		return;
	}
	for (uint32_t i = 0; has_ports && i < f->nranges; i++)
		if (f->ranges[i].proto == proto && dport >= f->ranges[i].lo &&
		    dport <= f->ranges[i].hi) {
			v->by = FWD_FLT_BY_SERVICE;
			v->rule = f->ranges[i].service;
			v->lo = f->ranges[i].lo;
			v->hi = f->ranges[i].hi;
			v->action = f->rules[v->rule].action;
			return;
		}
}
