/*
 * Fuzz target: prefix deltas (common/fwd_delta.c) as regionfwd receives them
 * (packed records, fwd_delta_unpack) against a fixed table with nested
 * prefixes of both families and a residency rule. Properties of an accepted
 * delta: the table it makes validates whole from its model (sorted, no
 * duplicate, residency holds, nesting included), and applying the effective
 * changes again to the base makes the same table (what regiond computes and
 * what regionfwd recomputes agree), and the base's FIBs changed by them
 * (fwd_fib4_update, fwd_fib6_update, as regionfwd's standby) answer as the
 * new table's longest match at every prefix's edges, with the groups a
 * build of it makes; and changed back, as the base's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_model.h"
#include "fwd_class.h"
#include "fwd_delta.h"
#include "fwd_fib4.h"
#include "fwd_fib6.h"
#include "fwd_residency.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static const char BASE[] =
	"regions:\n"
	"  in: {prefixes: [10.0.0.0/8, 10.1.0.0/16, '2001:db8::/32']}\n"
	"  sg: {prefixes: [11.0.0.0/8, '2001:db8:1::/48']}\n"
	"  br: {prefixes: [12.0.0.0/8, 12.1.2.0/24, 0.0.0.0/0]}\n"
	"services: {sync: [tcp/7000]}\n"
	"links:\n"
	"  local: {port: p0, next_hop_mac: '02:00:00:00:00:01', tags: [in]}\n"
	"  to-sg: {port: p1, next_hop_mac: '02:00:00:00:00:02', tags: [sg]}\n"
	"policies:\n"
	"  - {region: in, service: any, action: steer, to: local}\n"
	"  - {region: sg, service: sync, action: steer, to: local}\n"
	"default: {action: steer, to: to-sg}\n"
	"residency:\n"
	"  - {name: keep-sync, region: in, services: [sync], allowed_tags: [in]}\n";

static struct fwd_table *base;

static void same(const struct fwd_table *a, const struct fwd_table *b)
{
	if (a->nprefix4 != b->nprefix4 || a->nprefix6 != b->nprefix6)
		abort();
	for (uint32_t i = 0; i < a->nprefix4; i++)
		if (a->prefix4[i].addr != b->prefix4[i].addr ||
		    a->prefix4[i].len != b->prefix4[i].len ||
		    a->prefix4[i].region != b->prefix4[i].region)
			abort();
	for (uint32_t i = 0; i < a->nprefix6; i++)
		if (memcmp(a->prefix6[i].addr, b->prefix6[i].addr, 16) ||
		    a->prefix6[i].len != b->prefix6[i].len ||
		    a->prefix6[i].region != b->prefix6[i].region)
			abort();
}

/* The base's FIBs, built once: each input changes them into its table's and
 * back (a build per input would write the whole 64 MiB tbl24, the base
 * holding 0.0.0.0/0). */
static struct fwd_fib4 *base4;
static struct fwd_fib6 *base6;

/* The changes that undo @eff, in its order: each kind turned, a move's
 * pair (its removal, then its add) from the new region back. */
static void inverse(const struct fwd_delta *eff, struct fwd_delta *inv)
{
	inv->ops = malloc(sizeof(*inv->ops) * (eff->n ? eff->n : 1));
	inv->n = inv->cap = eff->n;
	if (inv->ops == NULL)
		abort();
	for (uint32_t i = 0; i < eff->n; i++) {
		inv->ops[i] = eff->ops[i];
		inv->ops[i].kind =
			eff->ops[i].kind == FWD_DELTA_ADD ? FWD_DELTA_REMOVE : FWD_DELTA_ADD;
	}
	for (uint32_t i = 0; i + 1 < inv->n; i++)
		if (inv->ops[i].kind == FWD_DELTA_ADD && inv->ops[i + 1].kind == FWD_DELTA_REMOVE &&
		    inv->ops[i].family == inv->ops[i + 1].family &&
		    inv->ops[i].len == inv->ops[i + 1].len &&
		    !memcmp(inv->ops[i].addr, inv->ops[i + 1].addr, 16)) {
			struct fwd_delta_op x = inv->ops[i];

			inv->ops[i] = inv->ops[i + 1];
			inv->ops[i + 1] = x;
			i++;
		}
}

/* No change of a prefix shorter than /8. */
static int short_free(const struct fwd_delta *eff)
{
	for (uint32_t i = 0; i < eff->n; i++)
		if (eff->ops[i].len < 8)
			return 0;
	return 1;
}

/* The FIBs answer as @x's longest match at the edges of @x's and @y's
 * prefixes, and hold the groups a build of @x would. */
static void fibs_hold(const struct fwd_table *x, const struct fwd_table *y)
{
	if (base4->groups != fwd_fib4_groups_needed(x->prefix4, x->nprefix4) ||
	    base6->groups != fwd_fib6_groups_needed(x->prefix6, x->nprefix6))
		abort();
	for (int t = 0; t < 2; t++) {
		const struct fwd_table *e = t ? y : x;

		for (uint32_t i = 0; i < e->nprefix4; i++) {
			uint32_t lo = e->prefix4[i].addr,
				 hi = lo | (e->prefix4[i].len ? ~(~0u << (32 - e->prefix4[i].len))
							      : ~0u);
			uint32_t probe[4] = {lo, hi, lo - 1, hi + 1};

			for (int k = 0; k < 4; k++) {
				int64_t m = fwd_fib4_longest(NULL, x->prefix4, x->nprefix4,
							     probe[k], 32);

				if (fwd_fib4_lookup(base4, probe[k]) !=
				    (m < 0 ? 0u : x->prefix4[m].region))
					abort();
			}
		}
		for (uint32_t i = 0; i < e->nprefix6; i++) {
			uint8_t probe[2][16];

			memcpy(probe[0], e->prefix6[i].addr, 16);
			memcpy(probe[1], probe[0], 16);
			for (unsigned b = e->prefix6[i].len; b < 128; b++)
				probe[1][b / 8] |= (uint8_t)(0x80 >> (b % 8));
			for (int k = 0; k < 2; k++) {
				int64_t m = fwd_fib6_longest(NULL, x->prefix6, x->nprefix6,
							     probe[k], 128);

				if (fwd_fib6_lookup(base6, probe[k]) !=
				    (m < 0 ? 0u : x->prefix6[m].region))
					abort();
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct fwd_delta d, eff, eff2;
	struct fwd_table *t = NULL, *t2 = NULL, *w;
	struct fwd_err err;
	struct fwd_class *c;
	json_t *m;
	char *doc;

	if (base == NULL && (base = fwd_table_parse(BASE, strlen(BASE), "base", 0, &err)) == NULL)
		abort();
	if (base4 == NULL &&
	    ((base4 = fwd_fib4_create(0)) == NULL || (base6 = fwd_fib6_create(0)) == NULL ||
	     fwd_fib4_build(base4, base->prefix4, base->nprefix4) ||
	     fwd_fib6_build(base6, base->prefix6, base->nprefix6)))
		abort();
	if (len > 24 * 64)
		return 0;
	if (fwd_delta_unpack(data, len - len % 24, &d, &err))
		return 0;
	if (fwd_delta_apply(base, &d, &t, &eff, NULL, &err) || t == NULL) {
		fwd_delta_clear(&d);
		return 0;
	}
	/* The table a delta makes is a table a document could make. */
	m = ctl_model(t);
	doc = json_dumps(m, JSON_COMPACT);
	w = fwd_table_parse(doc, strlen(doc), "model", 1, &err);
	if (w == NULL || (c = fwd_class_build(w)) == NULL)
		abort();
	if (fwd_residency_check(w, c, &err))
		abort();
	same(t, w);
	/* The effective changes make the same table again. */
	if (fwd_delta_apply(base, &eff, &t2, &eff2, NULL, &err) || t2 == NULL)
		abort();
	same(t, t2);
	if (eff2.n != eff.n)
		abort();
	/* Prefixes shorter than /8 rewrite a million tbl24 entries and more
	 * each (~35 ms an input, against ~0.1 ms for the rest): their ranges
	 * are the unit tests' (tests/unit/test_fib4.c, test_fib6.c). */
	if (short_free(&eff)) {
		struct fwd_delta inv = {0};

		if (fwd_delta_update_fibs(&eff, t, base4, base6))
			abort();
		fibs_hold(t, base);
		inverse(&eff, &inv);
		if (fwd_delta_update_fibs(&inv, base, base4, base6))
			abort();
		fibs_hold(base, t);
		fwd_delta_clear(&inv);
	}
	fwd_class_free(c);
	fwd_table_free(w);
	json_decref(m);
	free(doc);
	fwd_table_free(t2);
	fwd_table_free(t);
	fwd_delta_clear(&eff2);
	fwd_delta_clear(&eff);
	fwd_delta_clear(&d);
	return 0;
}
