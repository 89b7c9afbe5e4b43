#include "ctl_traffic.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_model.h"
#include "fwd_class.h"
#include "fwd_hash.h"
#include "fwd_residency.h"

/* Samples every 10 s; a minute's window needs 7, one more for slack. */
#define SAMPLES 8
#define WINDOW_MS 65000

struct ctl_traffic {
	struct {
		struct fwd_report *r;
		int64_t ms;
	} s[SAMPLES];
	unsigned next, n;
};

struct ctl_traffic *ctl_traffic_new(void)
{
	return calloc(1, sizeof(struct ctl_traffic));
}

void ctl_traffic_free(struct ctl_traffic *tr)
{
	if (tr == NULL)
		return;
	for (unsigned i = 0; i < SAMPLES; i++)
		fwd_report_free(tr->s[i].r);
	free(tr);
}

void ctl_traffic_add(struct ctl_traffic *tr, struct fwd_report *r, int64_t now_ms)
{
	fwd_report_free(tr->s[tr->next].r);
	tr->s[tr->next].r = r;
	tr->s[tr->next].ms = now_ms;
	tr->next = (tr->next + 1) % SAMPLES;
	if (tr->n < SAMPLES)
		tr->n++;
}

int ctl_traffic_due(const struct ctl_traffic *tr, int64_t now_ms)
{
	unsigned last = (tr->next + SAMPLES - 1) % SAMPLES;

	return tr->n == 0 || now_ms - tr->s[last].ms >= CTL_TRAFFIC_EVERY_MS;
}

json_t *ctl_traffic_window(const struct ctl_traffic *tr, int64_t now_ms)
{
	unsigned last = (tr->next + SAMPLES - 1) % SAMPLES, first = last;

	if (tr->n < 2)
		return NULL;
	/* The oldest sample still inside the window. */
	for (unsigned k = 1; k < tr->n; k++) {
		unsigned i = (last + SAMPLES - k) % SAMPLES;

		if (now_ms - tr->s[i].ms > WINDOW_MS)
			break;
		first = i;
	}
	if (first == last)
		return NULL;
	return fwd_report_rates(tr->s[first].r, tr->s[last].r,
				(double)(tr->s[last].ms - tr->s[first].ms) / 1000.0);
}

/* ---- address space moving between regions ------------------------------- */

/* A hash of the prefixes of one table, by (family, address, length), for a
 * longest-prefix lookup by trying each shorter length: a change touches a
 * few prefixes of a table that may hold a million. */
struct pfx_set {
	struct pfx_slot {
		uint8_t used, family, len;
		uint8_t addr[16];
		uint16_t region;
	} * slot;
	uint64_t mask;
	uint8_t lens4[33], lens6[129]; /* lengths present */
};

static uint64_t pfx_hash(int family, const uint8_t *addr, uint8_t len)
{
	uint64_t h = fwd_hash64(addr, family == 4 ? 4 : 16);

	return fwd_hash64_update(h, &len, 1) ^ (uint64_t)family;
}

/* @addr masked to @len */
static void mask_to(uint8_t *out, const uint8_t *addr, int bytes, uint8_t len)
{
	for (int i = 0; i < bytes; i++) {
		int bits = len - i * 8;

		out[i] = bits >= 8   ? addr[i]
			 : bits <= 0 ? 0
				     : (uint8_t)(addr[i] & (0xff << (8 - bits)));
	}
}

static void pfx_put(struct pfx_set *s, int family, const uint8_t *addr, uint8_t len,
		    uint16_t region)
{
	uint64_t i = pfx_hash(family, addr, len) & s->mask;

	while (s->slot[i].used)
		i = (i + 1) & s->mask;
	s->slot[i] = (struct pfx_slot){
		.used = 1, .family = (uint8_t)family, .len = len, .region = region};
	memcpy(s->slot[i].addr, addr, family == 4 ? 4 : 16);
	if (family == 4)
		s->lens4[len] = 1;
	else
		s->lens6[len] = 1;
}

/* The @i-th prefix of @t (IPv4 first): family, address, length, region. */
static void nth_prefix(const struct fwd_table *t, uint32_t i, int *family, uint8_t *addr,
		       uint8_t *len, uint16_t *region)
{
	if (i < t->nprefix4) {
		uint32_t a = t->prefix4[i].addr;

		*family = 4;
		addr[0] = (uint8_t)(a >> 24);
		addr[1] = (uint8_t)(a >> 16);
		addr[2] = (uint8_t)(a >> 8);
		addr[3] = (uint8_t)a;
		*len = t->prefix4[i].len;
		*region = t->prefix4[i].region;
	} else {
		*family = 6;
		memcpy(addr, t->prefix6[i - t->nprefix4].addr, 16);
		*len = t->prefix6[i - t->nprefix4].len;
		*region = t->prefix6[i - t->nprefix4].region;
	}
}

static int pfx_build(struct pfx_set *s, const struct fwd_table *t)
{
	uint64_t n = (uint64_t)t->nprefix4 + t->nprefix6, cap = 64;

	while (cap < 2 * n)
		cap *= 2;
	memset(s, 0, sizeof(*s));
	if ((s->slot = calloc(cap, sizeof(*s->slot))) == NULL)
		return -1;
	s->mask = cap - 1;
	for (uint32_t i = 0; i < t->nprefix4 + t->nprefix6; i++) {
		uint8_t addr[16], len;
		uint16_t region;
		int family;

		nth_prefix(t, i, &family, addr, &len, &region);
		pfx_put(s, family, addr, len, region);
	}
	return 0;
}

/* The slot of @addr/@len itself in @s, or NULL. */
static const struct pfx_slot *pfx_find(const struct pfx_set *s, int family, const uint8_t *addr,
				       uint8_t len)
{
	for (uint64_t i = pfx_hash(family, addr, len) & s->mask; s->slot[i].used;
	     i = (i + 1) & s->mask)
		if (s->slot[i].family == family && s->slot[i].len == len &&
		    !memcmp(s->slot[i].addr, addr, family == 4 ? 4 : 16))
			return &s->slot[i];
	return NULL;
}

/* The region of the longest prefix of @s that covers all of @addr/@len. */
static uint16_t pfx_owner(const struct pfx_set *s, int family, const uint8_t *addr, uint8_t len)
{
	const uint8_t *lens = family == 4 ? s->lens4 : s->lens6;
	const struct pfx_slot *hit;
	uint8_t m[16];

	for (int l = len; l >= 0; l--) {
		if (!lens[l])
			continue;
		mask_to(m, addr, family == 4 ? 4 : 16, (uint8_t)l);
		if ((hit = pfx_find(s, family, m, (uint8_t)l)) != NULL)
			return hit->region;
	}
	return FWD_REGION_UNKNOWN;
}

struct move {
	const char *from, *to; /* region names */
	uint64_t prefixes;
	double v4, v6;
};

struct moves {
	struct move *m;
	size_t n, cap;
};

/* -ENOMEM: the pair is not counted, and the caller says the moves are
 * not whole (a pair dropped unsaid once hid a residency handover's). */
static int count_move(struct moves *mv, const char *from, const char *to, int family, uint8_t len)
{
	size_t i;

	for (i = 0; i < mv->n; i++)
		if (!strcmp(mv->m[i].from, from) && !strcmp(mv->m[i].to, to))
			break;
	if (i == mv->n) {
		if (mv->n == mv->cap) {
			size_t cap = mv->cap ? mv->cap * 2 : 16;
			struct move *m = realloc(mv->m, cap * sizeof(*m));

			if (m == NULL)
				return -ENOMEM;
			mv->m = m;
			mv->cap = cap;
		}
		mv->m[mv->n++] = (struct move){.from = from, .to = to};
	}
	mv->m[i].prefixes++;
	if (family == 4)
		mv->m[i].v4 += ldexp(1.0, 32 - len);
	else
		mv->m[i].v6 += ldexp(1.0, 128 - len);
	return 0;
}

json_t *ctl_traffic_moves(const struct fwd_table *old, const struct fwd_table *new, size_t limit)
{
	json_t *out = json_array();
	struct pfx_set so, sn;
	struct moves mv = {0};
	size_t changed = 0;
	struct fwd_class *cn = NULL; /* the new table's, built for a protected region's move */

	if (out == NULL || pfx_build(&so, old))
		return out;
	if (pfx_build(&sn, new)) {
		free(so.slot);
		return out;
	}
	/* Every prefix of the new table, from the region that held its address
	 * space in the old one; then every prefix of the old table that the
	 * new one does not have, to the region that holds its space now.
	 * Regions are compared by name: ids may differ between tables. */
	for (int pass = 0; pass < 2; pass++) {
		const struct fwd_table *t = pass ? old : new, *o = pass ? new : old;
		const struct pfx_set *other = pass ? &sn : &so;

		for (uint32_t i = 0; i < t->nprefix4 + t->nprefix6; i++) {
			uint8_t addr[16], len;
			uint16_t region;
			int family;
			const char *mine, *theirs;

			nth_prefix(t, i, &family, addr, &len, &region);
			if (pass && pfx_find(&sn, family, addr, len))
				continue; /* counted from the new table's side */
			mine = t->region_names[region];
			theirs = o->region_names[pfx_owner(other, family, addr, len)];
			if (!strcmp(mine, theirs))
				continue;
			if (++changed > limit || count_move(&mv, pass ? mine : theirs,
							    pass ? theirs : mine, family, len)) {
				json_decref(out);
				out = json_pack("[{s:b}]", "truncated", 1);
				goto done;
			}
		}
	}
	for (size_t i = 0; i < mv.n; i++) {
		const struct move *m = &mv.m[i];
		json_t *j = json_pack("{s:s, s:s, s:I, s:f, s:f}", "from", m->from, "to", m->to,
				      "prefixes", (json_int_t)m->prefixes, "ipv4_addresses", m->v4,
				      "ipv6_addresses", m->v6);
		int from = fwd_table_region_id(new, m->from), to = fwd_table_region_id(new, m->to);
		char why[1024];

		/* Users of a region the new table still protects, handed to
		 * one whose policies would take that traffic out: no rule can
		 * refuse it (the table says who the users are), so it is said
		 * (fwd_residency_handover). A region removed took its rules
		 * with it. */
		if (from >= 0 && to >= 0 && fwd_residency_protects(new, (uint16_t)from) &&
		    (cn != NULL || (cn = fwd_class_build(new)) != NULL) &&
		    fwd_residency_handover(new, cn, (uint16_t)to, (uint16_t)from, why, sizeof(why)))
			json_object_set_new(j, "residency", json_string(why));
		json_array_append_new(out, j);
	}
done:
	fwd_class_free(cn);
	free(so.slot);
	free(sn.slot);
	free(mv.m);
	return out;
}

json_t *ctl_traffic_handovers(const struct fwd_table *old, const struct fwd_table *new)
{
	json_t *moves, *out, *m;
	size_t i;

	if (old == NULL || new->nresidency == 0)
		return NULL;
	moves = ctl_traffic_moves(old, new, SIZE_MAX);
	out = json_array();
	json_array_foreach(moves, i, m)
		if (json_object_get(m, "residency") ||
		    json_is_true(json_object_get(m, "truncated")))
			json_array_append(out, m);
	json_decref(moves);
	if (json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* ---- traffic on top of an impact ----------------------------------------- */

/* A counter's amount over the window: its rate times the window. */
static double in_window(const json_t *w, const char *sec, const char *row, const char *key)
{
	const json_t *v = json_object_get(json_object_get(json_object_get(w, sec), row), key);

	return json_number_value(v) * json_number_value(json_object_get(w, "interval_s"));
}

static double total(const json_t *w, const char *key)
{
	return json_number_value(json_object_get(json_object_get(w, "packets"), key)) *
	       json_number_value(json_object_get(w, "interval_s"));
}

/* The traffic of the services (names) of a content rule in the window. */
static double services_packets(const json_t *w, const json_t *rule)
{
	const json_t *v;
	double sum = 0;
	size_t i;

	json_array_foreach(json_object_get(rule, "services"), i, v)
		sum += in_window(w, "services", json_string_value(v), "packets_per_s");
	return sum;
}

static json_t *rule_by_name(json_t *model, const char *sec, const char *name)
{
	json_t *v, *list = json_object_get(model, sec);
	size_t i;

	if (json_is_object(list)) /* filters: {"rules": [...]} */
		list = json_object_get(list, "rules");
	json_array_foreach(list, i, v)
		if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", name))
			return v;
	return NULL;
}

/* Content and filter rules added, removed or changed, each with the
 * traffic it saw (content: its matches and its services' packets in the
 * window; filter: what the XDP filter counted for it since it was set). */
static json_t *rules_traffic(const json_t *diff, const char *sec, json_t *mo, json_t *mn,
			     const json_t *w, const json_t *fstatus)
{
	static const char *const changes[] = {"added", "removed", "changed"};
	const json_t *d = json_object_get(diff, sec), *v;
	json_t *out = json_array();
	int content = !strcmp(sec, "content_rules");
	size_t i;

	for (int c = 0; c < 3; c++)
		json_array_foreach(json_object_get(d, changes[c]), i, v) {
			const char *name = json_is_string(v)
						   ? json_string_value(v)
						   : json_string_value(json_object_get(v, "name"));
			json_t *before = c == 0 ? NULL : rule_by_name(mo, sec, name),
			       *after = c == 1 ? NULL : rule_by_name(mn, sec, name), *e;

			e = json_pack("{s:s, s:s}", "name", name, "change", changes[c]);
			if (content && w) {
				double sb = before ? services_packets(w, before) : 0,
				       sa = after ? services_packets(w, after) : 0;

				json_object_set_new(e, "scope_packets",
						    json_real(sa > sb ? sa : sb));
				if (before)
					json_object_set_new(
						e, "matches",
						json_real(in_window(w, "content_rules", name,
								    "matches_per_s")));
			} else if (!content) {
				const json_t *fr =
					json_object_get(json_object_get(fstatus, "rules"), name);

				json_object_set(e, "packets_since_set",
						json_is_integer(json_object_get(fr, "packets"))
							? json_object_get(fr, "packets")
							: json_null());
			}
			json_array_append_new(out, e);
		}
	return out;
}

/* Per move, the services whose outcome differs between the source region
 * in the old table and the destination region in the new one: what the
 * moved addresses' traffic does differently. */
static void move_outcomes(json_t *impact, const struct fwd_table *old, const struct fwd_table *new)
{
	struct fwd_class *co = fwd_class_build(old), *cn = fwd_class_build(new);
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(impact, "moves"), i, v) {
		const char *from = json_string_value(json_object_get(v, "from")),
			   *to = json_string_value(json_object_get(v, "to"));
		json_t *list = json_array();

		for (uint16_t s = 0; from && co && cn && s < new->nservices; s++) {
			char before[80], after[80];

			ctl_outcome(old, co, from, new->service_names[s], before, sizeof(before));
			ctl_outcome(new, cn, to, new->service_names[s], after, sizeof(after));
			if (strcmp(before, after))
				json_array_append_new(list,
						      json_pack("{s:s, s:s, s:s}", "service",
								new->service_names[s], "before",
								before, "after", after));
		}
		json_object_set_new(v, "outcomes", list);
	}
	fwd_class_free(co);
	fwd_class_free(cn);
}

void ctl_traffic_annotate(json_t *impact, const json_t *diff, const struct fwd_table *old,
			  const struct fwd_table *new, const json_t *window,
			  const json_t *filter_status)
{
	const json_t *cells = json_object_get(impact, "policy_cells");
	json_t *counted = json_object(), *by_region = json_object(), *mo = ctl_model(old),
	       *mn = ctl_model(new), *v, *sb;
	double pk = total(window, "rx_packets_per_s"), by = total(window, "rx_bits_per_s") / 8;
	double changed = 0, bytes_at_most = 0;
	const char *r;
	int exact = 1;
	size_t i;

	move_outcomes(impact, old, new);
	json_object_set_new(impact, "filter_rules",
			    rules_traffic(diff, "filters", mo, mn, window, filter_status));
	json_object_set_new(
		impact, "filters_settings_changed",
		json_boolean(json_is_true(json_object_get(diff, "filters_settings_changed"))));
	json_object_set_new(impact, "content_rules",
			    rules_traffic(diff, "content_rules", mo, mn, window, filter_status));
	json_decref(mo);
	json_decref(mn);
	if (window == NULL) {
		json_object_set_new(
			impact, "traffic",
			json_pack("{s:s}", "unknown",
				  "no counters from regionfwd yet (regiond samples them "
				  "every 10 s)"));
		goto out;
	}
	json_array_foreach(json_object_get(impact, "changes"), i, v) {
		const char *pol = json_string_value(json_object_get(v, "policy")),
			   *s = json_string_value(json_object_get(v, "service"));
		const json_t *pc = json_object_get(cells, pol ? pol : "");
		double p = pol ? in_window(window, "policies", pol, "packets_per_s") : 0;
		long long n = json_integer_value(json_object_get(pc, "cells"));
		int whole = pc && n == json_integer_value(json_object_get(pc, "changed"));
		json_t *rs;

		r = json_string_value(json_object_get(v, "region"));
		/* A policy's packets are this pair's when it governs no other;
		 * else they are what all its pairs share. */
		json_object_set_new(v, n == 1 ? "packets" : "policy_packets", json_real(p));
		if (pol && !json_object_get(counted, pol)) {
			json_object_set_new(counted, pol, json_true());
			changed += p;
			exact &= whole;
		}
		/* Bytes: per region, the smaller of its bytes and its changed
		 * services' bytes (summed below). */
		if ((rs = json_object_get(by_region, r)) == NULL)
			json_object_set_new(by_region, r, rs = json_real(0));
		json_real_set(rs, json_real_value(rs) +
					  in_window(window, "services", s, "bits_per_s") / 8);
	}
	json_object_foreach(by_region, r, sb) {
		double rb = in_window(window, "regions", r, "bits_per_s") / 8;

		bytes_at_most += rb < json_real_value(sb) ? rb : json_real_value(sb);
	}
	json_array_foreach(json_object_get(impact, "moves"), i, v) {
		const char *from = json_string_value(json_object_get(v, "from"));
		double p;

		if (from == NULL)
			continue;
		p = in_window(window, "regions", from, "packets_per_s");
		json_object_set_new(v, "from_region_packets_at_most", json_real(p));
		/* The moved addresses change link when the two regions' outcomes
		 * differ; their traffic is at most their old region's. */
		if (json_array_size(json_object_get(v, "outcomes"))) {
			changed += p;
			exact = 0;
			bytes_at_most += in_window(window, "regions", from, "bits_per_s") / 8;
		}
	}
	if (bytes_at_most > by)
		bytes_at_most = by;
	json_object_set_new(impact, "traffic",
			    json_pack("{s:O, s:b, s:f, s:f, s:f, s:b, s:f, s:f, s:f}", "window_s",
				      json_object_get(window, "interval_s"), "counters_reset",
				      json_is_true(json_object_get(window, "reset")), "packets", pk,
				      "bytes", by, "changed_packets", changed,
				      "changed_packets_exact", exact, "changed_share",
				      pk > 0 ? changed / pk : 0.0, "changed_bytes_at_most",
				      bytes_at_most, "changed_bytes_share_at_most",
				      by > 0 ? bytes_at_most / by : 0.0));
out:
	json_decref(counted);
	json_decref(by_region);
}
