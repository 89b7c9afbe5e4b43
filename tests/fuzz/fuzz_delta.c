/*
 * Fuzz target: prefix deltas (common/fwd_delta.c) as regionfwd receives them
 * (packed records, fwd_delta_unpack) against a fixed table with nested
 * prefixes of both families and a residency rule. Properties of an accepted
 * delta: the table it makes validates whole from its model (sorted, no
 * duplicate, residency holds, nesting included), and applying the effective
 * changes again to the base makes the same table (what regiond computes and
 * what regionfwd recomputes agree).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_model.h"
#include "fwd_class.h"
#include "fwd_delta.h"
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
