/*
 * The routing feed's logic without a kernel or regiond (control/ctl_rib.c,
 * ctl_owned.c, ctl_bird.c): coalescing, reconcile against a fake table,
 * precedence (static wins, first table holds), refused changes split out,
 * the bound, withdrawal, the record of owned prefixes, BIRD's replies.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl_bird.h"
#include "ctl_owned.h"
#include "ctl_rib.h"
#include "fwd_residency.h"

/* A table as the feed sees it: regions by id (index + 1), the prefixes
 * each holds, and the refusals regiond's would make, all or nothing. */
#define FAKE_MAX 4096

struct fake {
	const char *names[4];
	int nnames;
	struct {
		struct ctl_rib_pfx p;
		int region;
	} held[FAKE_MAX];
	int n;
	struct ctl_rib_pfx forbidden[8]; /* residency: refused as additions */
	int nforbidden;
	/* residency by a cover: an addition of p refused while cover is in
	 * the table the batch makes (as fwd_delta's nesting check) */
	struct {
		struct ctl_rib_pfx p, cover;
	} covered[4];
	int ncovered;
	int other_failure; /* refuse everything for another reason */
	/* residency as fwd_residency_check_pair: region protect's prefixes
	 * may not hold another region's inside them, whichever is added, and
	 * the refusal says both, in the validator's words */
	int protect;
	int forbid_nth4; /* residency: every addition in nth4()'s 100.64.0.0/10 */
	/* errors name changes[N]: 1 by the op's index, 2 by its place in
	 * what apply was given (as fwd_delta's checks count) */
	int name_change;
	int applies, records, records_at_apply;
	int64_t gen;
	/* What the record says the feed owns: each "+" without a later "-". */
	struct ctl_rib_pfx recorded[64];
	int nrecorded;
};

static int same_pfx(const struct ctl_rib_pfx *a, const struct ctl_rib_pfx *b)
{
	return a->family == b->family && a->len == b->len && memcmp(a->addr, b->addr, 16) == 0;
}

static int fake_region_id(void *arg, const char *name)
{
	struct fake *f = arg;

	for (int i = 0; i < f->nnames; i++)
		if (strcmp(f->names[i], name) == 0)
			return i + 1;
	return -ENOENT;
}

static int fake_find(const struct fake *f, const struct ctl_rib_pfx *p)
{
	for (int i = 0; i < f->n; i++)
		if (same_pfx(&f->held[i].p, p))
			return i;
	return -1;
}

static int fake_held_by(void *arg, const struct ctl_rib_pfx *p)
{
	struct fake *f = arg;
	int i = fake_find(f, p);

	return i < 0 ? 0 : f->held[i].region;
}

static void op_pfx(const struct fwd_delta_op *op, struct ctl_rib_pfx *p)
{
	memset(p, 0, sizeof(*p));
	p->family = op->family;
	p->len = op->len;
	memcpy(p->addr, op->addr, 16);
}

static int64_t refuse(struct fake *f, const struct fwd_delta *d, const struct fwd_delta_op *op,
		      enum fwd_reason r, const char *why, struct fwd_err *e)
{
	char path[32];

	snprintf(path, sizeof(path), "changes[%u]",
		 f->name_change == 2 ? (unsigned)(op - d->ops) : op->index);
	fwd_err_fail(e, r, NULL, 0, f->name_change ? path : "", "%s", why);
	return -1;
}

static int fake_after(const struct fake *f, const struct fwd_delta *d, const struct ctl_rib_pfx *p);

static int pfx_inside(const struct ctl_rib_pfx *in, const struct ctl_rib_pfx *out)
{
	uint8_t whole = out->len / 8, rest = out->len % 8;

	return in->family == out->family && in->len > out->len &&
	       memcmp(in->addr, out->addr, whole) == 0 &&
	       (rest == 0 || ((in->addr[whole] ^ out->addr[whole]) & (0xff << (8 - rest))) == 0);
}

/* A nested pair the table @d makes breaks region f->protect's residency:
 * the refusal of @op (one of the two), naming both as the validator does. */
static int64_t fake_nested(struct fake *f, const struct fwd_delta *d, const struct fwd_delta_op *op,
			   struct fwd_err *e)
{
	struct ctl_rib_pfx p, q;
	char a[64], b[64], why[384];

	op_pfx(op, &p);
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < (pass ? (int)d->n : f->n); i++) {
			int region;

			if (pass) {
				if (d->ops[i].kind != FWD_DELTA_ADD)
					continue;
				op_pfx(&d->ops[i], &q);
				region = d->ops[i].region;
			} else {
				q = f->held[i].p;
				region = f->held[i].region;
			}
			if (!fake_after(f, d, &q) || region == op->region)
				continue;
			if (op->region == f->protect && pfx_inside(&q, &p))
				snprintf(why, sizeof(why),
					 FWD_RESIDENCY_NESTED_HEAD " and would take",
					 ctl_rib_pfx_str(&q, a, sizeof(a)), f->names[region - 1],
					 ctl_rib_pfx_str(&p, b, sizeof(b)),
					 f->names[op->region - 1]);
			else if (region == f->protect && pfx_inside(&p, &q) && !pass)
				/* as fwd_delta, which sorts a batch: a cover added
				 * with it is checked first and is what it refuses */
				snprintf(why, sizeof(why),
					 FWD_RESIDENCY_NESTED_HEAD " and would take",
					 ctl_rib_pfx_str(&p, a, sizeof(a)),
					 f->names[op->region - 1],
					 ctl_rib_pfx_str(&q, b, sizeof(b)), f->names[region - 1]);
			else
				continue;
			return refuse(f, d, op, FWD_R_RESIDENCY_VIOLATION, why, e);
		}
	return 0;
}

/* Whether @p is in the table @d makes of @f's. */
static int fake_after(const struct fake *f, const struct fwd_delta *d, const struct ctl_rib_pfx *p)
{
	int in = fake_find(f, p) >= 0;

	for (uint32_t i = 0; i < d->n; i++) {
		struct ctl_rib_pfx q;

		op_pfx(&d->ops[i], &q);
		if (same_pfx(&q, p))
			in = d->ops[i].kind == FWD_DELTA_ADD;
	}
	return in;
}

static int64_t fake_apply(void *arg, const struct fwd_delta *d, struct fwd_err *e)
{
	struct fake *f = arg;
	int changed = 0;

	f->applies++;
	f->records_at_apply = f->records;
	if (f->other_failure) {
		fwd_err_fail(e, FWD_R_DATAPLANE_UNAVAILABLE, NULL, 0, "", "regionfwd is away");
		return -1;
	}
	for (uint32_t i = 0; i < d->n; i++) {
		const struct fwd_delta_op *op = &d->ops[i];
		struct ctl_rib_pfx p;
		int at;

		op_pfx(op, &p);
		for (uint32_t k = 0; k < i; k++) {
			struct ctl_rib_pfx q;

			op_pfx(&d->ops[k], &q);
			if (same_pfx(&p, &q))
				return refuse(f, d, op, FWD_R_INVALID_DELTA, "named twice", e);
		}
		at = fake_find(f, &p);
		for (int k = 0; op->kind == FWD_DELTA_ADD && k < f->nforbidden; k++)
			if (same_pfx(&p, &f->forbidden[k]))
				return refuse(f, d, op, FWD_R_RESIDENCY_VIOLATION,
					      "would carve protected users out", e);
		if (f->forbid_nth4 && op->kind == FWD_DELTA_ADD && p.family == 4 &&
		    p.addr[0] == 100 && (p.addr[1] & 0xc0) == 64)
			return refuse(f, d, op, FWD_R_RESIDENCY_VIOLATION,
				      "would carve protected users out", e);
		for (int k = 0; op->kind == FWD_DELTA_ADD && k < f->ncovered; k++)
			if (same_pfx(&p, &f->covered[k].p) &&
			    fake_after(f, d, &f->covered[k].cover))
				return refuse(f, d, op, FWD_R_RESIDENCY_VIOLATION,
					      "inside a protected region's prefix", e);
		if (op->kind == FWD_DELTA_ADD && at >= 0 && f->held[at].region != op->region)
			return refuse(f, d, op, FWD_R_INVALID_DELTA, "held by another region", e);
		if (f->protect && op->kind == FWD_DELTA_ADD && fake_nested(f, d, op, e))
			return -1;
		if (op->kind == FWD_DELTA_REMOVE && (at < 0 || f->held[at].region != op->region))
			return refuse(f, d, op, FWD_R_INVALID_DELTA, "not in that region", e);
	}
	for (uint32_t i = 0; i < d->n; i++) {
		struct ctl_rib_pfx p;
		int at;

		op_pfx(&d->ops[i], &p);
		at = fake_find(f, &p);
		if (d->ops[i].kind == FWD_DELTA_ADD && at < 0) {
			assert_true(f->n < FAKE_MAX);
			f->held[f->n].p = p;
			f->held[f->n++].region = d->ops[i].region;
			changed = 1;
		} else if (d->ops[i].kind == FWD_DELTA_REMOVE) {
			f->held[at] = f->held[--f->n];
			changed = 1;
		}
	}
	return changed ? ++f->gen : 0;
}

static int fake_record(void *arg, const struct ctl_rib_pfx *p, const char *region, int owned)
{
	struct fake *f = arg;
	int at = -1;

	(void)region;
	f->records++;
	for (int i = 0; i < f->nrecorded; i++)
		if (same_pfx(&f->recorded[i], p))
			at = i;
	if (owned && at < 0 && f->nrecorded < 64)
		f->recorded[f->nrecorded++] = *p;
	else if (!owned && at >= 0)
		f->recorded[at] = f->recorded[--f->nrecorded];
	return 0;
}

static int fake_recorded(const struct fake *f, const struct ctl_rib_pfx *p)
{
	for (int i = 0; i < f->nrecorded; i++)
		if (same_pfx(&f->recorded[i], p))
			return 1;
	return 0;
}

/* The table's checks without applying: fake_apply on a copy. */
static int fake_check(void *arg, const struct fwd_delta *d, struct fwd_err *e)
{
	struct fake *c = malloc(sizeof(*c));
	int64_t rc;

	assert_non_null(c);
	*c = *(struct fake *)arg;
	rc = fake_apply(c, d, e);
	free(c);
	return rc < 0 ? -1 : 0;
}

static struct ctl_rib_table fake_table(struct fake *f)
{
	return (struct ctl_rib_table){.arg = f,
				      .region_id = fake_region_id,
				      .held_by = fake_held_by,
				      .apply = fake_apply,
				      .record = fake_record};
}

static const char regions[3][FWD_NAME_MAX] = {"india", "singapore", "brazil"};

static struct fake *new_fake(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	f->names[0] = "india";
	f->names[1] = "singapore";
	f->names[2] = "brazil";
	f->nnames = 3;
	f->name_change = 1;
	return f;
}

static struct ctl_rib_pfx pfx(const char *s)
{
	struct ctl_rib_pfx p;

	assert_int_equal(ctl_rib_pfx_parse(s, &p), 0);
	return p;
}

static struct ctl_rib_pfx nth4(unsigned i)
{
	char b[32];

	snprintf(b, sizeof(b), "100.%u.%u.0/24", 64 + (i >> 8), i & 255);
	return pfx(b);
}

static void reconcile_ok(struct ctl_rib *r, struct fake *f, enum ctl_rib_mode m, int full,
			 struct ctl_rib_batch *b)
{
	struct ctl_rib_table t = fake_table(f);
	struct fwd_err e = {0};

	assert_int_equal(ctl_rib_reconcile(r, &t, m, full, 1u << 20, b, &e), 0);
}

static void test_learn_apply_withdraw(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_pfx a = pfx("100.64.1.0/24"), b6 = pfx("2001:db8:1::/48"),
			   c = pfx("100.64.2.0/24");
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;

	(void)state;
	assert_int_equal(ctl_rib_learn(r, &a, 0), 1);
	assert_int_equal(ctl_rib_learn(r, &a, 0), 0); /* known already */
	assert_int_equal(ctl_rib_learn(r, &b6, 0), 1);
	assert_int_equal(ctl_rib_learn(r, &c, 1), 1);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.added, 3);
	assert_int_equal(b.applies, 1);
	assert_int_equal(f->held[fake_find(f, &c)].region, 2);
	ctl_rib_stats(r, &s);
	assert_int_equal(s.owned, 3);
	assert_int_equal(s.learned4[0], 1);
	assert_int_equal(s.learned6[0], 1);
	assert_int_equal(s.learned4[1], 1);
	assert_int_equal(s.pending, 0);
	/* The records were written before the apply (write-ahead). */
	assert_int_equal(f->records_at_apply, 3);
	ctl_rib_forget(r, &a, 0);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.removed, 1);
	assert_int_equal(fake_find(f, &a), -1);
	ctl_rib_stats(r, &s);
	assert_int_equal(s.owned, 2);
	assert_int_equal(s.learned, 2);
	/* Nothing changed: nothing applied. */
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.applies, 0);
	ctl_rib_free(r);
	free(f);
}

static void test_flap_is_coalesced(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_pfx a = pfx("100.64.9.0/24");
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;

	(void)state;
	for (int i = 0; i < 10000; i++) {
		ctl_rib_learn(r, &a, 0);
		ctl_rib_forget(r, &a, 0);
	}
	ctl_rib_learn(r, &a, 0);
	ctl_rib_stats(r, &s);
	assert_int_equal(s.pending, 1); /* one prefix however often it flapped */
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.applies, 1);
	assert_int_equal(b.added, 1);
	for (int i = 0; i < 10000; i++) {
		ctl_rib_forget(r, &a, 0);
		ctl_rib_learn(r, &a, 0);
	}
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.applies, 0); /* ended where it was: no change at all */
	assert_int_not_equal(fake_find(f, &a), -1);
	ctl_rib_forget(r, &a, 0);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.removed, 1);
	ctl_rib_stats(r, &s);
	assert_int_equal(s.learned + s.owned + s.pending, 0);
	ctl_rib_free(r);
	free(f);
}

static void test_static_wins(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_pfx a = pfx("100.64.1.0/24"), b4 = pfx("100.64.2.0/24"), listed[4];
	unsigned lr[4];
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;
	uint64_t v;

	(void)state;
	f->held[0].p = a;
	f->held[0].region = 2; /* static, singapore's */
	f->held[1].p = b4;
	f->held[1].region = 1; /* static, india's: the same region as learned */
	f->n = 2;
	ctl_rib_learn(r, &a, 0);
	ctl_rib_learn(r, &b4, 0);
	v = ctl_rib_shadow_version(r);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.applies, 0);
	ctl_rib_stats(r, &s);
	assert_int_equal(s.shadowed, 2);
	assert_int_equal(s.owned, 0);
	assert_int_equal(ctl_rib_shadowed(r, listed, lr, 4), 2);
	assert_int_equal(lr[0], 0);
	/* The status lists them again only when this changed: it did, and
	 * a batch that changes nothing leaves it. */
	assert_true(ctl_rib_shadow_version(r) != v);
	v = ctl_rib_shadow_version(r);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(ctl_rib_shadow_version(r), v);
	/* Withdrawn: the static one stays, untouched. */
	ctl_rib_forget(r, &a, 0);
	ctl_rib_forget(r, &b4, 0);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.applies, 0);
	assert_int_equal(f->n, 2);
	ctl_rib_stats(r, &s);
	assert_int_equal(s.shadowed, 0);
	assert_true(ctl_rib_shadow_version(r) != v);
	assert_int_equal(ctl_rib_shadowed(r, listed, lr, 4), 0);
	ctl_rib_free(r);
	free(f);
}

static void test_first_table_holds_then_moves(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_pfx a = pfx("2001:db8:5::/48");
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;

	(void)state;
	ctl_rib_learn(r, &a, 1); /* singapore's table first */
	assert_int_equal(ctl_rib_learn(r, &a, 0), 0); /* then india's: no change */
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(f->held[fake_find(f, &a)].region, 2);
	ctl_rib_stats(r, &s);
	assert_int_equal(s.conflicting, 1);
	assert_int_equal(s.learned, 1);
	/* Singapore withdraws: india's holds it now. One batch may not name a
	 * prefix twice, so it is a removal, then an addition. */
	ctl_rib_forget(r, &a, 1);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.removed, 1);
	assert_int_equal(b.added, 1);
	assert_int_equal(b.applies, 2);
	assert_int_equal(f->held[fake_find(f, &a)].region, 1);
	ctl_rib_stats(r, &s);
	assert_int_equal(s.conflicting, 0);
	assert_int_equal(s.owned, 1);
	ctl_rib_free(r);
	free(f);
}

static void test_put_is_repaired(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_pfx a = pfx("100.64.1.0/24"), c = pfx("100.64.2.0/24");
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;

	(void)state;
	ctl_rib_learn(r, &a, 0);
	ctl_rib_learn(r, &c, 0);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(f->n, 2);
	/* A full PUT with the static prefixes only, one of which is now c,
	 * given to brazil by the operator. */
	f->n = 0;
	f->held[0].p = c;
	f->held[0].region = 3;
	f->n = 1;
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 1, &b);
	assert_int_equal(b.added, 1); /* a re-added */
	assert_int_equal(f->held[fake_find(f, &a)].region, 1);
	assert_int_equal(f->held[fake_find(f, &c)].region, 3); /* c is static now */
	ctl_rib_stats(r, &s);
	assert_int_equal(s.owned, 1);
	assert_int_equal(s.shadowed, 1);
	/* Withdrawing c leaves the operator's c alone. */
	ctl_rib_forget(r, &c, 0);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.applies, 0);
	assert_int_not_equal(fake_find(f, &c), -1);
	ctl_rib_free(r);
	free(f);
}

static void residency_split(int name_change)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_refusal ref[CTL_RIB_MAX_REASONS];
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;

	f->name_change = name_change;
	for (unsigned i = 0; i < 100; i++)
		ctl_rib_learn(r, (struct ctl_rib_pfx[]){nth4(i)}, 1);
	f->forbidden[0] = nth4(7);
	f->forbidden[1] = nth4(50);
	f->forbidden[2] = nth4(99);
	f->nforbidden = 3;
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.added, 97);
	assert_int_equal(b.refused, 3);
	assert_int_equal(f->n, 97);
	/* The three refused, and those alone: a change named by its place in
	 * a part that starts past the batch's first once refused a good route
	 * with the named one's reason (a hostile probe, the BGP feed). */
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(fake_find(f, (struct ctl_rib_pfx[]){nth4(i)}) >= 0,
				 i != 7 && i != 50 && i != 99);
	if (name_change)
		assert_int_equal(b.applies, 4); /* each refusal named: one apply each */
	else
		assert_true(b.applies < 40); /* halves */
	ctl_rib_stats(r, &s);
	assert_int_equal(s.refused, 3);
	assert_int_equal(ctl_rib_refusals(r, ref, CTL_RIB_MAX_REASONS), 3);
	assert_string_equal(ref[0].region, "singapore");
	assert_non_null(strstr(ref[0].reason, "protected"));
	/* Not retried until something changes. */
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.applies, 0);
	ctl_rib_free(r);
	free(f);
}

static void test_refused_change_is_split_out(void **state)
{
	(void)state;
	residency_split(1);
	residency_split(2);
	residency_split(0);
}

/* A refused addition was written ahead ("+"): it must be undone, or a
 * restarted regiond takes a static prefix the operator adds later for the
 * feed's and removes it with the route. */
static void test_refused_addition_leaves_no_record(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_table t = fake_table(f);
	struct ctl_rib_pfx bad = pfx("103.21.50.0/24"), good = pfx("100.64.5.0/24"),
			   later = pfx("100.64.6.0/24");
	struct ctl_rib_batch b;
	struct fwd_err e = {0};

	(void)state;
	f->forbidden[0] = bad;
	f->nforbidden = 1;
	ctl_rib_learn(r, &bad, 1);
	ctl_rib_learn(r, &good, 1);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.added, 1);
	assert_int_equal(b.refused, 1);
	assert_false(fake_recorded(f, &bad));
	assert_true(fake_recorded(f, &good));
	/* Not applied for another reason (regionfwd away): undone as well,
	 * written ahead again when it is retried. */
	ctl_rib_learn(r, &later, 1);
	f->other_failure = 1;
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), -1);
	assert_false(fake_recorded(f, &later));
	f->other_failure = 0;
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.added, 1);
	assert_true(fake_recorded(f, &later));
	assert_int_equal(f->nrecorded, 2);
	ctl_rib_free(r);
	free(f);
}

/* A refusal that stands, retried at each full comparison: one entry in the
 * refusals, reported (refused_new) once, and with a check nothing written
 * to the record after the first try. It was appended and reported at each
 * comparison, and the record got a "+" and a "-" each time. A new reason
 * is reported again. */
static void test_standing_refusal_is_reported_once(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_table t = fake_table(f);
	struct ctl_rib_pfx bad = pfx("103.21.7.0/24"), other = pfx("103.21.8.0/24");
	struct ctl_rib_refusal ref[CTL_RIB_MAX_REASONS];
	struct ctl_rib_batch b;
	struct fwd_err e = {0};
	int records;

	(void)state;
	t.check = fake_check;
	f->forbidden[0] = bad;
	f->forbidden[1] = other;
	f->nforbidden = 2;
	ctl_rib_learn(r, &bad, 1);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), 0);
	assert_int_equal(b.refused, 1);
	assert_int_equal(b.refused_new, 1);
	assert_true(same_pfx(&b.news[0].p, &bad));
	records = f->records;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 1, 1000, &b, &e), 0);
		assert_int_equal(b.refused, 1);
		assert_int_equal(b.refused_new, 0);
		assert_int_equal(b.applies, 0);
	}
	assert_int_equal(f->records, records);
	assert_int_equal(ctl_rib_refusals(r, ref, CTL_RIB_MAX_REASONS), 1);
	/* Another prefix: its own entry, reported new. (Refused in the same
	 * batch as the standing one's retry, which comes after the batch's
	 * fresh changes: which of the two is the newest says nothing.) */
	ctl_rib_learn(r, &other, 1);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 1, 1000, &b, &e), 0);
	assert_int_equal(b.refused_new, 1);
	assert_true(same_pfx(&b.news[0].p, &other));
	assert_int_equal(ctl_rib_refusals(r, ref, CTL_RIB_MAX_REASONS), 2);
	assert_true(same_pfx(&ref[0].p, &other) || same_pfx(&ref[1].p, &other));
	/* The region gone from the table: another reason, reported again. */
	f->names[1] = "elsewhere";
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 1, 1000, &b, &e), 0);
	assert_int_equal(b.refused_new, 2);
	assert_int_equal(ctl_rib_refusals(r, ref, CTL_RIB_MAX_REASONS), 2);
	assert_non_null(strstr(ref[0].reason, "not in the table"));
	ctl_rib_free(r);
	free(f);
}

/* A retry refused because a feed-owned prefix covered it, when the same
 * batch removes that cover (a full comparison after the cover was
 * withdrawn): the table takes it. Its check once asked about the retries
 * alone, against the table that still had the cover, and dropped it, out
 * of forwarding until the next full comparison, nothing logged. */
static void test_retry_checked_with_its_batch(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_table t = fake_table(f);
	struct ctl_rib_pfx cover = pfx("100.64.0.0/16"), in = pfx("100.64.7.0/24");
	struct ctl_rib_batch b;
	struct fwd_err e = {0};

	(void)state;
	t.check = fake_check;
	f->covered[0].p = in;
	f->covered[0].cover = cover;
	f->ncovered = 1;
	ctl_rib_learn(r, &cover, 0);
	ctl_rib_learn(r, &in, 1);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), 0);
	assert_int_equal(b.added, 1);
	assert_int_equal(b.refused, 1);
	assert_int_equal(fake_find(f, &in), -1);
	/* The cover withdrawn; the full comparison removes it and retries. */
	ctl_rib_forget(r, &cover, 0);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 1, 1000, &b, &e), 0);
	assert_int_equal(b.removed, 1);
	assert_int_equal(b.refused, 0);
	assert_int_equal(b.added, 1);
	assert_int_equal(fake_find(f, &cover), -1);
	assert_true(fake_find(f, &in) >= 0);
	assert_int_equal(f->held[fake_find(f, &in)].region, 2);
	assert_true(fake_recorded(f, &in));
	/* A retry the whole batch still refuses is dropped before the record. */
	ctl_rib_forget(r, &in, 1);
	ctl_rib_learn(r, &cover, 0);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), 0);
	ctl_rib_learn(r, &in, 1);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), 0);
	assert_int_equal(b.refused, 1);
	{
		int records = f->records;

		assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 1, 1000, &b, &e), 0);
		assert_int_equal(b.refused, 1);
		assert_int_equal(b.refused_new, 0);
		assert_int_equal(b.applies, 0);
		assert_int_equal(f->records, records);
	}
	ctl_rib_free(r);
	free(f);
}

/* A learned prefix of a protected region refused because another
 * region's learned prefix lies inside it: which came first decided, and
 * with Singapore's /24 learned first India's /16 was refused, its users
 * then covered by whatever else (Singapore's static /13, a learned
 * default) out of India (a hostile probe). The protected cover wins now:
 * the nested prefix goes, refused, and comes back when the cover goes; a
 * static nested prefix still keeps the cover out. */
static void test_a_protected_cover_wins_over_a_nested_learned_prefix(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_table t = fake_table(f);
	struct ctl_rib_pfx cover = pfx("8.132.0.0/16"), in = pfx("8.132.5.0/24"),
			   in2 = pfx("8.132.6.0/24"), cover2 = pfx("8.133.0.0/16"),
			   static_in = pfx("8.133.5.0/24");
	struct ctl_rib_refusal ref[CTL_RIB_MAX_REASONS];
	struct ctl_rib_batch b;
	struct fwd_err e = {0};
	unsigned n, found = 0;

	(void)state;
	t.check = fake_check;
	f->protect = 1; /* india */
	ctl_rib_learn(r, &in, 1);
	ctl_rib_learn(r, &in2, 2);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), 0);
	assert_int_equal(b.added, 2);
	ctl_rib_learn(r, &cover, 0);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), 0);
	assert_int_equal(b.added, 1);
	assert_int_equal(b.removed, 2);
	assert_int_equal(b.refused, 2);
	assert_true(fake_find(f, &cover) >= 0 && f->held[fake_find(f, &cover)].region == 1);
	assert_int_equal(fake_find(f, &in), -1);
	assert_int_equal(fake_find(f, &in2), -1);
	assert_true(fake_recorded(f, &cover));
	assert_false(fake_recorded(f, &in));
	n = ctl_rib_refusals(r, ref, CTL_RIB_MAX_REASONS);
	for (unsigned k = 0; k < n; k++)
		if (same_pfx(&ref[k].p, &in) && strstr(ref[k].reason, "the protected prefix wins"))
			found++;
	assert_int_equal(found, 1);
	/* A full comparison: it stands, nothing moves. */
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 1, 1000, &b, &e), 0);
	assert_int_equal(b.added + b.removed, 0);
	assert_true(fake_find(f, &cover) >= 0);
	assert_int_equal(fake_find(f, &in), -1);
	/* The cover withdrawn: the nested ones come back. */
	ctl_rib_forget(r, &cover, 0);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 1, 1000, &b, &e), 0);
	assert_int_equal(b.removed, 1);
	assert_int_equal(b.added, 2);
	assert_true(fake_find(f, &in) >= 0 && f->held[fake_find(f, &in)].region == 2);
	assert_true(fake_find(f, &in2) >= 0 && f->held[fake_find(f, &in2)].region == 3);
	/* A static prefix in the way: the cover stays refused, as before. */
	f->held[f->n].p = static_in;
	f->held[f->n++].region = 2;
	ctl_rib_learn(r, &cover2, 0);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), 0);
	assert_int_equal(b.refused, 1);
	assert_int_equal(b.added, 0);
	assert_int_equal(fake_find(f, &cover2), -1);
	assert_true(fake_find(f, &static_in) >= 0);
	ctl_rib_free(r);
	free(f);
}

/* The cover and the nested prefix in one batch (a dump at start): the
 * table checks the cover first and refused it, the nested one then applied
 * (a review). The nested one is refused now, the cover applied; and when
 * the cover is withdrawn, the nested one comes back in the same reconcile,
 * without a full comparison (it waited for one). 60 covers, each with its
 * own nested prefix, in one batch: the split's stack once held 40 ranges. */
static void test_a_protected_cover_wins_in_one_batch_and_gives_back(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 10000);
	struct fake *f = new_fake();
	struct ctl_rib_table t = fake_table(f);
	struct ctl_rib_batch b;
	struct fwd_err e = {0};
	char a[32];

	(void)state;
	t.check = fake_check;
	f->protect = 1;
	for (unsigned i = 0; i < 60; i++) {
		snprintf(a, sizeof(a), "8.%u.5.0/24", 10 + i);
		ctl_rib_learn(r, (struct ctl_rib_pfx[]){pfx(a)}, 1);
		snprintf(a, sizeof(a), "8.%u.0.0/16", 10 + i);
		ctl_rib_learn(r, (struct ctl_rib_pfx[]){pfx(a)}, 0);
	}
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), 0);
	assert_int_equal(b.added, 60);
	assert_int_equal(b.refused, 60);
	for (unsigned i = 0; i < 60; i++) {
		snprintf(a, sizeof(a), "8.%u.0.0/16", 10 + i);
		assert_true(fake_find(f, (struct ctl_rib_pfx[]){pfx(a)}) >= 0);
		snprintf(a, sizeof(a), "8.%u.5.0/24", 10 + i);
		assert_int_equal(fake_find(f, (struct ctl_rib_pfx[]){pfx(a)}), -1);
	}
	/* One cover withdrawn: its nested prefix comes back in the next batch
	 * (it is pending after this one), not at a full comparison. */
	ctl_rib_forget(r, (struct ctl_rib_pfx[]){pfx("8.10.0.0/16")}, 0);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), 0);
	assert_int_equal(b.removed, 1);
	assert_int_equal(b.left, 1);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), 0);
	assert_int_equal(b.added, 1);
	assert_true(fake_find(f, (struct ctl_rib_pfx[]){pfx("8.10.5.0/24")}) >= 0);
	assert_int_equal(fake_find(f, (struct ctl_rib_pfx[]){pfx("8.11.5.0/24")}), -1);
	ctl_rib_free(r);
	free(f);
}

/* A "+" written ahead of an addition a crash kept from applying: at start
 * the table does not hold the prefix, so it is not the feed's, even if the
 * operator adds it as a static one later. */
static void test_unheld_record_is_disowned_at_start(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_table t = fake_table(f);
	struct ctl_rib_pfx held = pfx("100.64.1.0/24"), torn = pfx("103.21.50.0/24");
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;

	(void)state;
	f->held[0].p = held;
	f->held[0].region = 2;
	f->n = 1;
	ctl_rib_own(r, &held, 1);
	ctl_rib_own(r, &torn, 1);
	f->recorded[0] = held;
	f->recorded[1] = torn;
	f->nrecorded = 2;
	assert_int_equal(ctl_rib_disown_unheld(r, &t), 1);
	assert_false(fake_recorded(f, &torn));
	ctl_rib_stats(r, &s);
	assert_int_equal(s.owned, 1);
	/* The operator adds it to singapore as a static prefix: the feed,
	 * which never learns it, leaves it alone. */
	f->held[1].p = torn;
	f->held[1].region = 2;
	f->n = 2;
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 1, &b);
	assert_int_equal(b.removed, 1); /* held: not learned, so the feed's goes */
	assert_int_equal(fake_find(f, &held), -1);
	assert_int_not_equal(fake_find(f, &torn), -1);
	ctl_rib_free(r);
	free(f);
}

/* Two routes for one prefix in one table: the delete of one leaves the
 * prefix until a dump says none is left. A resync applies only what
 * changed and keeps a conflicting prefix where it is. */
static void test_several_routes_and_resync(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_pfx a = pfx("100.64.1.0/24"), c = pfx("100.64.2.0/24");
	struct ctl_rib_batch b;

	(void)state;
	ctl_rib_learn(r, &a, 0);
	ctl_rib_more_routes(r, &a); /* a second route, another metric */
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.added, 1);
	assert_int_equal(ctl_rib_forget(r, &a, 0), 1); /* kept: a dump must tell */
	assert_true(ctl_rib_learned_in(r, &a, 0));
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.applies, 0);
	assert_int_not_equal(fake_find(f, &a), -1);
	/* The dump finds one route left: nothing changes, nothing retried. */
	ctl_rib_forget_all(r);
	ctl_rib_learn(r, &a, 0);
	assert_int_equal(ctl_rib_relearned(r), 0);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.applies, 0);
	/* Its delete now removes it. */
	assert_int_equal(ctl_rib_forget(r, &a, 0), 0);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.removed, 1);
	/* Singapore's table had c first; a dump lists india's first. */
	ctl_rib_learn(r, &c, 1);
	ctl_rib_learn(r, &c, 0);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(f->held[fake_find(f, &c)].region, 2);
	ctl_rib_forget_all(r);
	ctl_rib_learn(r, &c, 0);
	ctl_rib_learn(r, &c, 1);
	assert_int_equal(ctl_rib_relearned(r), 0);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.applies, 0);
	assert_int_equal(f->held[fake_find(f, &c)].region, 2);
	/* Gone from the tables without a notification: the dump removes it. */
	ctl_rib_forget_all(r);
	assert_int_equal(ctl_rib_relearned(r), 0);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.removed, 1);
	assert_int_equal(b.applies, 1);
	assert_int_equal(f->n, 0);
	ctl_rib_free(r);
	free(f);
}

/* An IPv4-mapped IPv6 prefix matches no packet and a table refuses it:
 * the feed refuses its route like any refused one, with the reason. */
/* A default route and special-purpose blocks name no users: the feed
 * took 0.0.0.0/0, 224.0.0.0/4, 127.0.0.0/8, ::1/128, fe80::/10 and ff00::/8
 * into regions without a word (a hostile probe); refused now, saying why.
 * Their neighbours still apply. */
static void test_prefixes_of_no_users_are_refused(void **state)
{
	static const char *const refused[] = {
		"0.0.0.0/0",	  "::/0",	 "224.0.0.0/4", "239.1.0.0/16", "127.0.0.0/8",
		"169.254.7.0/24", "240.0.0.0/4", "::1/128",	"fe80::/64",	"ff02::/16",
		"0.0.0.0/8",	  "128.0.0.0/1", "0.0.0.0/1",	"fec0::/10",	"2000::/3"};
	static const char *const kept[] = {"1.0.0.0/8", "192.0.2.0/24", "2400::/16",
					   "2001:db8::/32", "::2/128"};
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_refusal ref[CTL_RIB_MAX_REASONS];
	struct ctl_rib_batch b;
	unsigned n;

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		ctl_rib_learn(r, (struct ctl_rib_pfx[]){pfx(refused[i])}, 1);
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		ctl_rib_learn(r, (struct ctl_rib_pfx[]){pfx(kept[i])}, 1);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.refused, sizeof(refused) / sizeof(refused[0]));
	assert_int_equal(b.added, sizeof(kept) / sizeof(kept[0]));
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_int_equal(fake_find(f, (struct ctl_rib_pfx[]){pfx(refused[i])}), -1);
	n = ctl_rib_refusals(r, ref, CTL_RIB_MAX_REASONS);
	for (unsigned k = 0; k < n; k++)
		assert_true(strstr(ref[k].reason, "default route") ||
			    strstr(ref[k].reason, "which no user's packet carries"));
	ctl_rib_free(r);
	free(f);
}

static void test_ipv4_mapped_prefix_is_refused(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_pfx m = pfx("::ffff:100.69.0.0/120"), ok = pfx("2001:db8:69::/48");
	struct ctl_rib_refusal ref[2];
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;

	(void)state;
	ctl_rib_learn(r, &m, 2);
	ctl_rib_learn(r, &ok, 2);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.added, 1);
	assert_int_equal(b.refused, 1);
	assert_int_equal(fake_find(f, &m), -1);
	assert_false(fake_recorded(f, &m));
	ctl_rib_stats(r, &s);
	assert_int_equal(s.refused, 1);
	assert_int_equal(ctl_rib_refusals(r, ref, 2), 1);
	assert_string_equal(ref[0].region, "brazil");
	assert_non_null(strstr(ref[0].reason, "IPv4-mapped"));
	assert_non_null(strstr(ref[0].reason, "100.69.0.0/24"));
	/* One an older regiond added goes. */
	ctl_rib_own(r, &m, 2);
	f->held[f->n].p = m;
	f->held[f->n++].region = 3;
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.removed, 1);
	assert_int_equal(fake_find(f, &m), -1);
	ctl_rib_free(r);
	free(f);
}

static void test_bounded(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 100);
	struct fake *f = new_fake();
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;
	int refused = 0;

	(void)state;
	for (unsigned i = 0; i < 150; i++)
		refused += ctl_rib_learn(r, (struct ctl_rib_pfx[]){nth4(i)}, 0) == -ENOSPC;
	assert_int_equal(refused, 50);
	ctl_rib_stats(r, &s);
	assert_int_equal(s.learned, 100);
	assert_int_equal(s.overflow, 50);
	assert_int_equal(s.pending, 100);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.added, 100);
	/* One withdrawn: room for one more. */
	ctl_rib_forget(r, (struct ctl_rib_pfx[]){nth4(0)}, 0);
	assert_int_equal(ctl_rib_learn(r, (struct ctl_rib_pfx[]){nth4(120)}, 0), 1);
	assert_int_equal(ctl_rib_learn(r, (struct ctl_rib_pfx[]){nth4(121)}, 0), -ENOSPC);
	ctl_rib_free(r);
	free(f);
}

static void test_withdraw_keep_and_other_failures(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_table t = fake_table(f);
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;
	struct fwd_err e = {0};

	(void)state;
	for (unsigned i = 0; i < 10; i++)
		ctl_rib_learn(r, (struct ctl_rib_pfx[]){nth4(i)}, 0);
	/* regionfwd away: nothing is lost, all of it waits. */
	f->other_failure = 1;
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 1000, &b, &e), -1);
	assert_int_equal(e.reason_code, FWD_R_DATAPLANE_UNAVAILABLE);
	assert_int_equal(b.failed, 1);
	ctl_rib_stats(r, &s);
	assert_int_equal(s.pending, 10);
	assert_int_equal(s.owned, 0);
	f->other_failure = 0;
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.added, 10);
	/* The routing daemon relearning after a loss: what it has not
	 * announced again yet is kept ... */
	ctl_rib_forget_all(r);
	ctl_rib_learn(r, (struct ctl_rib_pfx[]){nth4(3)}, 0);
	ctl_rib_learn(r, (struct ctl_rib_pfx[]){nth4(200)}, 0);
	assert_int_equal(ctl_rib_relearned(r), 0);
	reconcile_ok(r, f, CTL_RIB_KEEP, 1, &b);
	assert_int_equal(b.added, 1);
	assert_int_equal(b.removed, 0);
	assert_int_equal(f->n, 11);
	/* ... until the full comparison after it. */
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 1, &b);
	assert_int_equal(b.removed, 9);
	assert_int_equal(f->n, 2);
	/* Lost past the hold: everything the feed added goes, learned or not. */
	reconcile_ok(r, f, CTL_RIB_WITHDRAW, 1, &b);
	assert_int_equal(b.removed, 2);
	assert_int_equal(f->n, 0);
	ctl_rib_stats(r, &s);
	assert_int_equal(s.owned, 0);
	assert_int_equal(s.learned, 2); /* still known, for when it is back */
	/* Back: applied again. */
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 1, &b);
	assert_int_equal(b.added, 2);
	/* A max_changes cap leaves the rest for the next call. */
	for (unsigned i = 300; i < 310; i++)
		ctl_rib_learn(r, (struct ctl_rib_pfx[]){nth4(i)}, 0);
	assert_int_equal(ctl_rib_reconcile(r, &t, CTL_RIB_FOLLOW, 0, 4, &b, &e), 0);
	assert_int_equal(b.added, 4);
	assert_int_equal(b.left, 6);
	ctl_rib_free(r);
	free(f);
}

/* The feed lost (holding), or a routing daemon back relearning (KEEP): a
 * full PUT that dropped what the feed holds (it carries static prefixes
 * only) does not take it out for the rest of the hold. It goes back where
 * the feed had it, without a new record; one the PUT gave to another
 * region is static from then on; one the table now refuses is not the
 * feed's any more. Nothing learned meanwhile is applied while holding. */
static void test_held_prefixes_survive_a_full_put(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_pfx a = pfx("100.64.1.0/24"), b6 = pfx("2001:db8:1::/48"),
			   c = pfx("100.64.2.0/24"), d = pfx("100.64.3.0/24"),
			   n = pfx("100.64.9.0/24");
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;
	int records;

	(void)state;
	ctl_rib_learn(r, &a, 0);
	ctl_rib_learn(r, &b6, 0);
	ctl_rib_learn(r, &c, 1);
	ctl_rib_learn(r, &d, 2);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.added, 4);
	/* Lost: the routing daemon took its routes out; one new one came. */
	ctl_rib_forget_all(r);
	ctl_rib_learn(r, &n, 0);
	assert_int_equal(ctl_rib_relearned(r), 0);
	/* A full PUT: c given to india as a static prefix, d now refused,
	 * the others dropped. */
	f->n = 0;
	f->held[f->n].p = c;
	f->held[f->n++].region = 1;
	f->forbidden[f->nforbidden++] = d;
	records = f->records;
	reconcile_ok(r, f, CTL_RIB_HOLD, 1, &b);
	assert_int_equal(f->held[fake_find(f, &a)].region, 1);
	assert_int_equal(f->held[fake_find(f, &b6)].region, 1);
	assert_int_equal(f->held[fake_find(f, &c)].region, 1); /* the static one */
	assert_int_equal(fake_find(f, &d), -1);
	assert_int_equal(fake_find(f, &n), -1); /* learned while lost: waits */
	assert_true(fake_recorded(f, &a) && fake_recorded(f, &b6));
	assert_false(fake_recorded(f, &c) || fake_recorded(f, &d));
	assert_int_equal(f->records - records, 2); /* c and d disowned, no new "+" */
	ctl_rib_stats(r, &s);
	assert_int_equal(s.owned, 2);
	/* Relearning after it (KEEP): the same for a PUT then. */
	f->n = 0;
	reconcile_ok(r, f, CTL_RIB_KEEP, 1, &b);
	assert_int_equal(f->held[fake_find(f, &a)].region, 1);
	assert_int_equal(f->held[fake_find(f, &b6)].region, 1);
	assert_int_equal(f->held[fake_find(f, &n)].region, 1);
	/* The full comparison: what is not learned goes. */
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 1, &b);
	assert_int_equal(b.removed, 2);
	assert_int_equal(f->n, 1);
	ctl_rib_free(r);
	free(f);
}

/* A refused route that flaps (withdrawn, announced again, refused again
 * for the same reason) is not a new refusal: its entry outlives the
 * withdrawal, and it was logged again at each re-announce. Applied
 * meanwhile, then refused again, it is a new one. */
static void test_flapping_refusal_is_reported_once(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_pfx bad = pfx("103.21.7.0/24");
	struct ctl_rib_refusal ref[2];
	struct ctl_rib_batch b;

	(void)state;
	f->forbidden[f->nforbidden++] = bad;
	ctl_rib_learn(r, &bad, 1);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.refused_new, 1);
	for (int i = 0; i < 3; i++) {
		ctl_rib_forget(r, &bad, 1);
		reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
		ctl_rib_learn(r, &bad, 1);
		reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
		assert_int_equal(b.refused, 1);
		assert_int_equal(b.refused_new, 0);
	}
	assert_int_equal(ctl_rib_refusals(r, ref, 2), 1);
	/* Allowed, applied, withdrawn; refused again later: new. */
	f->nforbidden = 0;
	ctl_rib_forget(r, &bad, 1);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	ctl_rib_learn(r, &bad, 1);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.added, 1);
	ctl_rib_forget(r, &bad, 1);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.removed, 1);
	f->forbidden[f->nforbidden++] = bad;
	ctl_rib_learn(r, &bad, 1);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.refused, 1);
	assert_int_equal(b.refused_new, 1);
	ctl_rib_free(r);
	free(f);
}

/* Standing refusals retried at a full comparison (after a PUT) do not
 * hold the fresh changes back: each refused retry costs an apply (the
 * table names one refusal at a time), and mixed with them a new route
 * waited behind hundreds (a probe: some 40 s for 20,000). Fresh changes go
 * first, as a delta of their own. */
/* A full comparison retries every standing refusal, one apply each (the
 * table names one refusal at a time): 256 of them held the state's lock
 * 13 s after a feed came back, status calling regionfwd unreachable (a
 * hostile probe). At most RETRY_APPLIES (16) a reconcile now; the rest
 * stay refused, counted, and come back in the next batches, after fresh
 * changes, until every one was tried. */
static void test_retries_are_bounded_a_batch_and_stay_refused(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 100000);
	struct fake *f = new_fake();
	struct ctl_rib_batch b;
	struct ctl_rib_stats st;
	struct ctl_rib_pfx p, good = pfx("198.18.0.0/16");
	unsigned tried = 0, rounds = 0;

	(void)state;
	f->forbid_nth4 = 1; /* refused by the apply, one at a time */
	for (unsigned i = 0; i < 40; i++)
		ctl_rib_learn(r, (p = nth4(i), &p), 1);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.refused, 40);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 1, &b); /* all 40 are retries now */
	assert_true(b.applies <= 16);
	assert_int_equal(b.left, 40 - b.refused);
	tried += b.refused;
	ctl_rib_stats(r, &st);
	assert_int_equal(st.refused, 40); /* still refused, every one */
	ctl_rib_learn(r, &good, 1);
	while (st.pending && rounds++ < 10) {
		reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
		assert_true(b.applies <= 17); /* the fresh one's, then 16 */
		if (rounds == 1)
			assert_int_equal(b.added, 1); /* the fresh change first */
		tried += b.refused;
		ctl_rib_stats(r, &st);
		assert_int_equal(st.refused, 40);
	}
	assert_int_equal(tried, 40);
	assert_true(fake_find(f, &good) >= 0);
	ctl_rib_free(r);
	free(f);
}

static void test_fresh_changes_go_before_retries(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 100000);
	struct fake *f = new_fake();
	struct ctl_rib_batch b;
	struct ctl_rib_pfx p, good = pfx("198.18.0.0/16");

	(void)state;
	f->forbid_nth4 = 1; /* refused by the apply, one at a time */
	for (unsigned i = 0; i < 600; i++)
		ctl_rib_learn(r, (p = nth4(i), &p), 1);
	for (int i = 0; i < 5; i++) /* MAX_APPLIES a call: settled in three */
		reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.left, 0);
	ctl_rib_learn(r, &good, 1);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 1, &b);
	assert_int_equal(b.added, 1);
	assert_int_equal(fake_find(f, &good) >= 0, 1);
	ctl_rib_free(r);
	free(f);
}

/* The refusals: at most CTL_RIB_MAX_REASONS, one per prefix, newest
 * first; one refused again is the newest, and past the bound the oldest
 * goes. Entries are updated in place and ordered when read (they were
 * moved to the front at each refusal: ~14 GB moved at a million). */
static void test_refusals_newest_first_and_bounded(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_refusal ref[CTL_RIB_MAX_REASONS + 1];
	struct ctl_rib_batch b;
	struct ctl_rib_pfx p;

	(void)state;
	f->nnames = 2; /* the table has no brazil: each refused alone */
	for (unsigned i = 0; i < 40; i++)
		ctl_rib_learn(r, (p = nth4(i), &p), 2);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.refused, 40);
	assert_int_equal(ctl_rib_refusals(r, ref, CTL_RIB_MAX_REASONS + 1), CTL_RIB_MAX_REASONS);
	for (unsigned i = 0; i < CTL_RIB_MAX_REASONS; i++)
		assert_true(same_pfx(&ref[i].p, (p = nth4(39 - i), &p)));
	/* Refused again: the newest, still one entry. */
	ctl_rib_forget(r, (p = nth4(10), &p), 2);
	ctl_rib_learn(r, &p, 2);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(ctl_rib_refusals(r, ref, CTL_RIB_MAX_REASONS + 1), CTL_RIB_MAX_REASONS);
	assert_true(same_pfx(&ref[0].p, (p = nth4(10), &p)));
	assert_true(same_pfx(&ref[1].p, (p = nth4(39), &p)));
	/* A new one pushes the oldest (8) out, not the one refused again. */
	ctl_rib_learn(r, (p = nth4(50), &p), 2);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(ctl_rib_refusals(r, ref, CTL_RIB_MAX_REASONS + 1), CTL_RIB_MAX_REASONS);
	assert_true(same_pfx(&ref[0].p, (p = nth4(50), &p)));
	assert_true(same_pfx(&ref[1].p, (p = nth4(10), &p)));
	assert_true(same_pfx(&ref[CTL_RIB_MAX_REASONS - 1].p, (p = nth4(9), &p)));
	for (unsigned i = 0; i < CTL_RIB_MAX_REASONS; i++)
		assert_false(same_pfx(&ref[i].p, (p = nth4(8), &p)));
	/* Fewer asked: the newest. */
	assert_int_equal(ctl_rib_refusals(r, ref, 2), 2);
	assert_true(same_pfx(&ref[0].p, (p = nth4(50), &p)));
	ctl_rib_free(r);
	free(f);
}

/* The key of the conflicting prefixes' listing (ctl_feed.c build_status):
 * it moves when what ctl_rib_conflicting answers may change, not with the
 * churn of prefixes in one table, so the walk of the whole RIB is not
 * made at each status snapshot. */
static void test_conflict_version(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_pfx a = pfx("100.64.1.0/24"), c = pfx("100.64.2.0/24"),
			   d = pfx("100.64.3.0/24"), cf[4];
	unsigned holder[4];
	uint16_t mask[4];
	uint8_t refused[4];
	struct ctl_rib_batch b;
	uint64_t v;

	(void)state;
	ctl_rib_learn(r, &a, 0);
	v = ctl_rib_conflict_version(r);
	ctl_rib_learn(r, &a, 1); /* in two tables */
	assert_true(ctl_rib_conflict_version(r) != v);
	assert_int_equal(ctl_rib_conflicting(r, cf, mask, holder, refused, 4), 1);
	v = ctl_rib_conflict_version(r);
	for (int i = 0; i < 3; i++) { /* churn elsewhere */
		ctl_rib_learn(r, &c, 2);
		reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
		ctl_rib_forget(r, &c, 2);
		reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	}
	assert_int_equal(ctl_rib_conflict_version(r), v);
	ctl_rib_learn(r, &a, 2); /* a third table */
	assert_true(ctl_rib_conflict_version(r) != v);
	assert_int_equal(ctl_rib_conflicting(r, cf, mask, holder, refused, 4), 1);
	assert_int_equal(mask[0], 7);
	v = ctl_rib_conflict_version(r);
	ctl_rib_forget(r, &a, 0); /* its holder goes: another holds it */
	assert_true(ctl_rib_conflict_version(r) != v);
	assert_int_equal(ctl_rib_conflicting(r, cf, mask, holder, refused, 4), 1);
	assert_int_equal(holder[0], 1);
	v = ctl_rib_conflict_version(r);
	ctl_rib_forget(r, &a, 1); /* in one table: no conflict */
	assert_true(ctl_rib_conflict_version(r) != v);
	assert_int_equal(ctl_rib_conflicting(r, cf, mask, holder, refused, 4), 0);
	/* Its holder's route refused by the table: "held by" alone read as
	 * if the table had it there (a probe). Said, and the listing moves. */
	ctl_rib_forget(r, &a, 2);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	f->forbidden[f->nforbidden++] = d;
	ctl_rib_learn(r, &d, 1);
	ctl_rib_learn(r, &d, 0);
	v = ctl_rib_conflict_version(r);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.refused, 1);
	assert_true(ctl_rib_conflict_version(r) != v);
	assert_int_equal(ctl_rib_conflicting(r, cf, mask, holder, refused, 4), 1);
	assert_int_equal(holder[0], 1);
	assert_int_equal(refused[0], 1);
	f->nforbidden = 0; /* allowed now: retried, added, not refused */
	v = ctl_rib_conflict_version(r);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 1, &b);
	assert_int_equal(b.added, 1);
	assert_true(ctl_rib_conflict_version(r) != v);
	assert_int_equal(ctl_rib_conflicting(r, cf, mask, holder, refused, 4), 1);
	assert_int_equal(refused[0], 0);
	ctl_rib_free(r);
	free(f);
}

/* The key of the commit-confirm count (ctl_feed.c confirm_json): it moves
 * with every change of what the feed owns and with nothing else, so the
 * count is walked again exactly when it may differ. */
static void test_owned_version(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_pfx a = pfx("100.64.1.0/24"), c = pfx("100.64.2.0/24");
	struct ctl_rib_batch b;
	uint64_t v;

	(void)state;
	v = ctl_rib_owned_version(r);
	ctl_rib_learn(r, &a, 0);
	assert_int_equal(ctl_rib_owned_version(r), v); /* learned, not owned yet */
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_true(ctl_rib_owned_version(r) != v);
	v = ctl_rib_owned_version(r);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 1, &b); /* nothing to change */
	ctl_rib_learn(r, &c, 1);
	ctl_rib_learn(r, &a, 1); /* a second table: a conflict, not a move */
	assert_int_equal(ctl_rib_owned_version(r), v);
	reconcile_ok(r, f, CTL_RIB_HOLD, 1, &b); /* held: nothing applied */
	assert_int_equal(ctl_rib_owned_version(r), v);
	ctl_rib_forget(r, &a, 0); /* moves to singapore */
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_true(ctl_rib_owned_version(r) != v);
	v = ctl_rib_owned_version(r);
	ctl_rib_own(r, &a, -1); /* a later record says it is not the feed's */
	assert_true(ctl_rib_owned_version(r) != v);
	ctl_rib_free(r);
	free(f);
}

static void test_region_missing_from_table(void **state)
{
	struct ctl_rib *r = ctl_rib_new(regions, 3, 1000);
	struct fake *f = new_fake();
	struct ctl_rib_refusal ref[2];
	struct ctl_rib_batch b;

	(void)state;
	f->nnames = 2; /* the table has no brazil */
	ctl_rib_learn(r, (struct ctl_rib_pfx[]){nth4(1)}, 2);
	reconcile_ok(r, f, CTL_RIB_FOLLOW, 0, &b);
	assert_int_equal(b.applies, 0);
	assert_int_equal(ctl_rib_refusals(r, ref, 2), 1);
	assert_non_null(strstr(ref[0].reason, "'brazil' is not in the table"));
	ctl_rib_free(r);
	free(f);
}

/* --- the record of owned prefixes --- */

struct replay {
	struct ctl_rib *r;
	int n;
};

static int replay(void *arg, const struct ctl_rib_pfx *p, const char *region, int owned)
{
	struct replay *x = arg;

	x->n++;
	for (int i = 0; i < 3; i++)
		if (strcmp(regions[i], region) == 0)
			return ctl_rib_own(x->r, p, owned ? i : -1);
	return 0;
}

static void test_owned_record(void **state)
{
	char dir[] = "/tmp/test_rib.XXXXXX", path[64];
	struct replay x = {.r = ctl_rib_new(regions, 3, 1000)};
	struct ctl_rib_pfx a = pfx("100.64.1.0/24"), b6 = pfx("2001:db8::/32");
	struct ctl_rib_stats s;
	struct fwd_err e = {0};
	struct ctl_owned *o;
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	o = ctl_owned_open(dir, replay, &x, &e);
	assert_non_null(o);
	assert_int_equal(ctl_owned_record(o, &a, "india", 1), 0);
	assert_int_equal(ctl_owned_record(o, &b6, "brazil", 1), 0);
	assert_int_equal(ctl_owned_commit(o, &e), 0);
	assert_int_equal(ctl_owned_record(o, &a, "india", 0), 0);
	assert_int_equal(ctl_owned_commit(o, &e), 0);
	ctl_owned_close(o);
	/* A crash in the middle of a line: that line never counted. */
	snprintf(path, sizeof(path), "%s/feed-owned", dir);
	fp = fopen(path, "a");
	fputs("+ 100.64.7.0/24 ind", fp);
	fclose(fp);
	o = ctl_owned_open(dir, replay, &x, &e);
	assert_non_null(o);
	assert_int_equal(x.n, 3);
	ctl_rib_stats(x.r, &s);
	assert_int_equal(s.owned, 1); /* b6 alone */
	assert_int_equal(ctl_owned_record(o, &a, "india", 1), 0);
	assert_int_equal(ctl_owned_commit(o, &e), 0); /* appended after the cut */
	ctl_owned_close(o);
	x.n = 0;
	o = ctl_owned_open(dir, replay, &x, &e);
	assert_non_null(o);
	assert_int_equal(x.n, 4);
	ctl_owned_close(o);
	/* A line regiond did not write stops it, naming the line. */
	fp = fopen(path, "a");
	fputs("garbage\n", fp);
	fclose(fp);
	assert_null(ctl_owned_open(dir, replay, &x, &e));
	assert_int_equal(e.reason_code, FWD_R_STATE_CORRUPT);
	assert_int_equal(e.line, 6);
	unlink(path);
	rmdir(dir);
	ctl_rib_free(x.r);
}

/* A rewrite that fails (its directory gone, as a failing disk would
 * refuse it) is tried again after 1 s, 2 s, ... not at every tick; it says
 * when, and it says once it succeeds again. */
static void test_owned_compaction_backs_off(void **state)
{
	char dir[] = "/tmp/test_rib.XXXXXX", path[64], held[80];
	struct replay x = {.r = ctl_rib_new(regions, 3, 1000)};
	struct ctl_rib_pfx a = pfx("100.64.1.0/24");
	struct fwd_err e = {0};
	struct ctl_owned *o;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/feed-owned", dir);
	snprintf(held, sizeof(held), "%s.away", dir);
	o = ctl_owned_open(dir, replay, &x, &e);
	assert_non_null(o);
	/* Past twice what it describes plus the slack: due for a rewrite. */
	for (int i = 0; i < 2100; i++) {
		assert_int_equal(ctl_owned_record(o, &a, "india", 1), 0);
		assert_int_equal(ctl_owned_record(o, &a, "india", 0), 0);
	}
	assert_int_equal(ctl_owned_commit(o, &e), 0);
	assert_int_equal(rename(dir, held), 0); /* the directory is gone */
	memset(&e, 0, sizeof(e));
	assert_true(ctl_owned_compact(o, x.r, 0, 10000, &e) < 0);
	assert_int_equal(e.reason_code, FWD_R_PERSIST_FAILED);
	assert_non_null(strstr(e.reason, "tried again in 1 s"));
	assert_int_equal(rename(held, dir), 0); /* back, but not tried before its time */
	assert_int_equal(ctl_owned_compact(o, x.r, 0, 10999, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 4200 * 10); /* still the long file */
	/* Gone again: the next wait is twice as long. */
	assert_int_equal(rename(dir, held), 0);
	memset(&e, 0, sizeof(e));
	assert_true(ctl_owned_compact(o, x.r, 0, 11000, &e) < 0);
	assert_non_null(strstr(e.reason, "tried again in 2 s"));
	assert_int_equal(ctl_owned_compact(o, x.r, 0, 12999, &e), 0);
	assert_int_equal(rename(held, dir), 0);
	/* Due: rewritten, and said to be so after the failures. */
	assert_int_equal(ctl_owned_compact(o, x.r, 0, 13000, &e), 1);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < 200);
	ctl_owned_close(o);
	unlink(path);
	rmdir(dir);
	ctl_rib_free(x.r);
}

/* A probe's find: on a full disk a commit's write was cut short, the
 * torn bytes left, and the next batch (the disk had room again) appended
 * after them: "+ + 100.73.0.0/24 india", which the next start refused as
 * not a record, so regiond would not start until the file was edited by
 * hand. The torn part is cut off again now. A full disk is played by
 * RLIMIT_FSIZE: a write across it is short, the next one fails (EFBIG). */
static void test_owned_torn_write_is_cut(void **state)
{
	char dir[] = "/tmp/test_rib.XXXXXX", path[64];
	struct replay x = {.r = ctl_rib_new(regions, 3, 1000)};
	struct ctl_rib_pfx a = pfx("100.64.1.0/24"), b = pfx("100.73.0.0/24");
	struct rlimit was, small;
	struct fwd_err e = {0};
	struct ctl_owned *o;
	struct stat st;
	off_t whole;

	(void)state;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/feed-owned", dir);
	o = ctl_owned_open(dir, replay, &x, &e);
	assert_non_null(o);
	assert_int_equal(ctl_owned_record(o, &a, "india", 1), 0);
	assert_int_equal(ctl_owned_commit(o, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	whole = st.st_size;
	small = (struct rlimit){.rlim_cur = (rlim_t)whole + 30, .rlim_max = was.rlim_max};
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	for (int i = 0; i < 20; i++) /* far past the room left */
		assert_int_equal(ctl_owned_record(o, &b, "india", 1), 0);
	memset(&e, 0, sizeof(e));
	assert_true(ctl_owned_commit(o, &e) < 0);
	assert_int_equal(e.reason_code, FWD_R_PERSIST_FAILED);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, whole); /* cut back to its whole lines */
	/* Room again: the next batch follows a whole line. */
	assert_int_equal(ctl_owned_record(o, &b, "india", 1), 0);
	assert_int_equal(ctl_owned_commit(o, &e), 0);
	ctl_owned_close(o);
	x.n = 0;
	memset(&e, 0, sizeof(e));
	o = ctl_owned_open(dir, replay, &x, &e);
	assert_non_null(o); /* it once stopped regiond here */
	assert_int_equal(x.n, 2);
	ctl_owned_close(o);
	unlink(path);

	/* A state directory that cannot take the header (a full disk at the
	 * first start with the feed) no longer stops regiond: the handle
	 * opens, commits are refused until the rewrite has written it. */
	small.rlim_cur = 10;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	memset(&e, 0, sizeof(e));
	o = ctl_owned_open(dir, replay, &x, &e);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
	assert_non_null(o);
	assert_int_equal(ctl_owned_record(o, &a, "india", 1), 0);
	assert_true(ctl_owned_commit(o, &e) < 0);
	assert_int_equal(e.reason_code, FWD_R_PERSIST_FAILED);
	assert_non_null(strstr(e.reason, "not open for writing"));
	assert_int_equal(ctl_owned_compact(o, x.r, 0, 1000, &e), 0); /* written whole */
	assert_int_equal(ctl_owned_record(o, &b, "india", 1), 0);
	assert_int_equal(ctl_owned_commit(o, &e), 0);
	ctl_owned_close(o);
	x.n = 0;
	o = ctl_owned_open(dir, replay, &x, &e);
	assert_non_null(o);
	assert_true(x.n >= 1);
	ctl_owned_close(o);
	unlink(path);
	rmdir(dir);
	ctl_rib_free(x.r);
}

/* A probe's find: feed-owned removed, or replaced by a directory, while
 * regiond ran: the appends went on into the unlinked file, health healthy,
 * and the next start lost the record or stopped on the directory. The
 * compaction's check closes the file, writes it whole again, and says why
 * it cannot (ctl_owned_trouble: the feed's alarm). */
static void test_owned_replaced_while_running(void **state)
{
	char dir[] = "/tmp/test_rib.XXXXXX", path[64];
	struct replay x = {.r = ctl_rib_new(regions, 3, 1000)};
	struct ctl_rib_pfx a = pfx("100.64.1.0/24"), b = pfx("100.64.2.0/24");
	struct fwd_err e = {0};
	struct ctl_owned *o;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/feed-owned", dir);
	o = ctl_owned_open(dir, replay, &x, &e);
	assert_non_null(o);
	assert_int_equal(ctl_rib_own(x.r, &a, 0), 0);
	assert_int_equal(ctl_owned_record(o, &a, "india", 1), 0);
	assert_int_equal(ctl_owned_commit(o, &e), 0);
	/* Removed: written whole again at the next tick. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ctl_owned_compact(o, x.r, 1, 1000, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_null(ctl_owned_trouble(o));
	assert_int_equal(ctl_owned_record(o, &b, "india", 1), 0);
	assert_int_equal(ctl_owned_commit(o, &e), 0);
	/* A directory in its place: said, batches wait. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	memset(&e, 0, sizeof(e));
	assert_true(ctl_owned_compact(o, x.r, 1, 2000, &e) < 0);
	assert_non_null(ctl_owned_trouble(o));
	assert_non_null(strstr(ctl_owned_trouble(o), "cannot rewrite"));
	assert_int_equal(ctl_owned_record(o, &b, "india", 1), 0);
	assert_true(ctl_owned_commit(o, &e) < 0);
	/* Gone again: written at the next try (at most 5 s later). */
	assert_int_equal(rmdir(path), 0);
	assert_true(ctl_owned_compact(o, x.r, 1, 7000, &e) >= 0);
	assert_null(ctl_owned_trouble(o));
	assert_int_equal(ctl_owned_record(o, &b, "india", 1), 0);
	assert_int_equal(ctl_owned_commit(o, &e), 0);
	ctl_owned_close(o);
	x.n = 0;
	o = ctl_owned_open(dir, replay, &x, &e);
	assert_non_null(o);
	assert_true(x.n >= 2);
	ctl_owned_close(o);
	unlink(path);
	rmdir(dir);
	ctl_rib_free(x.r);
}

/* --- BIRD's replies --- */

static void test_bird_parse(void **state)
{
	static const char reply[] =
		"2002-Name       Proto      Table      State  Since         Info\n"
		"1002-device1    Device     ---        up     13:38:32.456  \n"
		" k101       Kernel     t101       up     13:38:32.456  \n"
		" peer1      BGP        ---        up     13:38:36.384  Established   \n"
		" peer2      BGP        ---        start  2024-05-01 13:38:36  Active        "
		"Socket: Connection refused\n"
		"0000 \n";
	struct ctl_bird_session s[4];
	char why[128] = "";

	(void)state;
	assert_int_equal(ctl_bird_parse(reply, s, 4, NULL, why, sizeof(why)), 2);
	assert_string_equal(s[0].name, "peer1");
	assert_true(s[0].up);
	assert_string_equal(s[0].info, "Established");
	assert_string_equal(s[1].name, "peer2");
	assert_false(s[1].up);
	assert_string_equal(s[1].state, "start");
	assert_string_equal(s[1].info, "Active Socket: Connection refused");
	/* More sessions than room: counted, not written past. */
	assert_int_equal(ctl_bird_parse(reply, s, 1, NULL, why, sizeof(why)), 2);
	assert_int_equal(ctl_bird_parse("9001 syntax error\n", s, 4, NULL, why, sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "syntax error"));
	assert_int_equal(ctl_bird_parse("HTTP/1.1 200 OK\n", s, 4, NULL, why, sizeof(why)),
			 -EPROTO);
	assert_int_equal(ctl_bird_parse("1002-peer1 BGP --- up 1 Established\n", s, 4, NULL, why,
					sizeof(why)),
			 -EPROTO); /* no end */
}

/* Every session is judged, also past those listed: a session down after
 * the first CTL_BIRD_MAX_SESSIONS is counted and listed. */
static void test_bird_many_sessions(void **state)
{
	struct ctl_bird_session s[CTL_BIRD_MAX_SESSIONS];
	static char reply[16384];
	unsigned down = 0, listed_down = 0;
	size_t n = 0;
	char why[128] = "";

	(void)state;
	n += (size_t)snprintf(reply + n, sizeof(reply) - n,
			      "2002-Name Proto Table State Since Info\n");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(reply + n, sizeof(reply) - n,
				      "1002-peer%d BGP --- %s 13:38:36 %s\n", i,
				      i == 35 ? "start" : "up", i == 35 ? "Active" : "Established");
	snprintf(reply + n, sizeof(reply) - n, "0000 \n");
	assert_int_equal(ctl_bird_parse(reply, s, CTL_BIRD_MAX_SESSIONS, &down, why, sizeof(why)),
			 40);
	assert_int_equal(down, 1);
	for (int i = 0; i < CTL_BIRD_MAX_SESSIONS; i++)
		if (!s[i].up) {
			assert_string_equal(s[i].name, "peer35");
			listed_down++;
		}
	assert_int_equal(listed_down, 1);
}

/* BIRD's names are up to 64 characters: read whole; a longer word is not
 * BIRD's reply, never a session skipped. */
static void test_bird_long_names(void **state)
{
	char name[80], reply[512], why[256] = "";
	struct ctl_bird_session s[2];

	(void)state;
	memset(name, 'p', 64);
	name[64] = '\0';
	snprintf(reply, sizeof(reply), "1002-%s BGP --- start 13:38:36 Active\n0000 \n", name);
	assert_int_equal(ctl_bird_parse(reply, s, 2, NULL, why, sizeof(why)), 1);
	assert_string_equal(s[0].name, name);
	assert_false(s[0].up);
	memset(name, 'p', 65);
	name[65] = '\0';
	snprintf(reply, sizeof(reply), "1002-%s BGP --- start 13:38:36 Active\n0000 \n", name);
	assert_int_equal(ctl_bird_parse(reply, s, 2, NULL, why, sizeof(why)), -EPROTO);
	assert_non_null(strstr(why, "protocol name longer than 64"));
}

/* What the reply says goes into JSON, labels and the log: bytes that are
 * not UTF-8 and control characters come out as '?'. */
static void test_bird_hostile_bytes(void **state)
{
	struct ctl_bird_session s[2];
	char why[256] = "";

	(void)state;
	assert_int_equal(ctl_bird_parse("1002-peer\xff BGP --- st\x1b 13:38:36 Act\xc3\n0000 \n", s,
					2, NULL, why, sizeof(why)),
			 1);
	assert_string_equal(s[0].name, "peer?");
	assert_string_equal(s[0].state, "st?");
	assert_string_equal(s[0].info, "Act?");
	assert_int_equal(ctl_bird_parse("9001 bad \xe2\x82\n", s, 2, NULL, why, sizeof(why)),
			 -EINVAL);
	assert_string_equal(why, "BIRD: bad ??");
	/* Tabs separate fields as spaces do: cleaning must not merge them. */
	assert_int_equal(ctl_bird_parse("1002-peer1\tBGP\t---\tup\t13:38:36\tEstablished\n0000 \n",
					s, 2, NULL, why, sizeof(why)),
			 1);
	assert_string_equal(s[0].name, "peer1");
	assert_true(s[0].up);
}

static void test_pfx_text(void **state)
{
	struct ctl_rib_pfx p;
	char b[64];

	(void)state;
	assert_int_equal(ctl_rib_pfx_parse("10.1.0.0/16", &p), 0);
	assert_string_equal(ctl_rib_pfx_str(&p, b, sizeof(b)), "10.1.0.0/16");
	assert_int_equal(ctl_rib_pfx_parse("10.1.0.1/16", &p), -EINVAL); /* host bits */
	assert_int_equal(ctl_rib_pfx_parse("2001:db8::/129", &p), -EINVAL);
	assert_int_equal(ctl_rib_pfx_parse("2001:db8::/32", &p), 0);
	assert_string_equal(ctl_rib_pfx_str(&p, b, sizeof(b)), "2001:db8::/32");
	assert_int_equal(ctl_rib_pfx_parse("nonsense", &p), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_learn_apply_withdraw),
		cmocka_unit_test(test_flap_is_coalesced),
		cmocka_unit_test(test_static_wins),
		cmocka_unit_test(test_first_table_holds_then_moves),
		cmocka_unit_test(test_put_is_repaired),
		cmocka_unit_test(test_refused_change_is_split_out),
		cmocka_unit_test(test_refused_addition_leaves_no_record),
		cmocka_unit_test(test_standing_refusal_is_reported_once),
		cmocka_unit_test(test_retry_checked_with_its_batch),
		cmocka_unit_test(test_a_protected_cover_wins_over_a_nested_learned_prefix),
		cmocka_unit_test(test_a_protected_cover_wins_in_one_batch_and_gives_back),
		cmocka_unit_test(test_unheld_record_is_disowned_at_start),
		cmocka_unit_test(test_several_routes_and_resync),
		cmocka_unit_test(test_ipv4_mapped_prefix_is_refused),
		cmocka_unit_test(test_prefixes_of_no_users_are_refused),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_withdraw_keep_and_other_failures),
		cmocka_unit_test(test_held_prefixes_survive_a_full_put),
		cmocka_unit_test(test_region_missing_from_table),
		cmocka_unit_test(test_owned_version),
		cmocka_unit_test(test_conflict_version),
		cmocka_unit_test(test_refusals_newest_first_and_bounded),
		cmocka_unit_test(test_fresh_changes_go_before_retries),
		cmocka_unit_test(test_retries_are_bounded_a_batch_and_stay_refused),
		cmocka_unit_test(test_flapping_refusal_is_reported_once),
		cmocka_unit_test(test_owned_record),
		cmocka_unit_test(test_owned_compaction_backs_off),
		cmocka_unit_test(test_owned_torn_write_is_cut),
		cmocka_unit_test(test_owned_replaced_while_running),
		cmocka_unit_test(test_bird_parse),
		cmocka_unit_test(test_bird_many_sessions),
		cmocka_unit_test(test_bird_long_names),
		cmocka_unit_test(test_bird_hostile_bytes),
		cmocka_unit_test(test_pfx_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
