#include "fwd_report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_doc.h" /* fwd_hash64 */
#include "fwd_names.h"

/* Every named section of the model once: its key (the document section it
 * counts, by its fwd_schema.def id, or a name of the report's own), its
 * attributes and its counters, in the order the JSON shows them. */
static const struct {
	enum fwd_schema doc_key;
	const char *own_key;
	const char *attrs[FWD_REPORT_ATTRS];
	const char *values[FWD_REPORT_VALUES];
	unsigned gauges; /* bit v: values[v] is a level, not a count: it has no rate */
} sections[FWD_RS_MAX] = {
	[FWD_RS_LINKS] = {FWD_F_DOC_LINKS, NULL, {"port", "state"}, {"packets", "bytes"}, 0},
	[FWD_RS_REGIONS] = {FWD_F_DOC_REGIONS, NULL, {NULL}, {"packets", "bytes"}, 0},
	[FWD_RS_SERVICES] = {FWD_F_DOC_SERVICES, NULL, {NULL}, {"packets", "bytes"}, 0},
	[FWD_RS_POLICIES] = {FWD_F_DOC_POLICIES, NULL, {"action", "target"}, {"packets"}, 0},
	[FWD_RS_CONTENT] = {FWD_F_DOC_CONTENT_RULES,
			    NULL,
			    {"field", "action", "to"},
			    {"matches", "flow_packets"},
			    0},
	[FWD_RS_PORTS] = {FWD_SCHEMA_MAX,
			  "ports",
			  {"link"},
			  {"ipackets", "opackets", "imissed", "ierrors", "oerrors", "rx_nombuf",
			   "speed_mbps"},
			  1u << 6},
};

static const char *const port_links[FWD_PORT_LINK_MAX] = {
	[FWD_PORT_LINK_UNKNOWN] = "unknown",
	[FWD_PORT_LINK_DOWN] = "down",
	[FWD_PORT_LINK_UP] = "up",
};

const char *fwd_port_link_name(enum fwd_port_link l)
{
	return (unsigned)l < FWD_PORT_LINK_MAX ? port_links[l] : NULL;
}

enum fwd_port_link fwd_port_link_by_name(const char *name)
{
	for (int l = 0; name && l < FWD_PORT_LINK_MAX; l++)
		if (strcmp(port_links[l], name) == 0)
			return (enum fwd_port_link)l;
	return FWD_PORT_LINK_UNKNOWN;
}

const char *fwd_report_sec_key(enum fwd_report_sec s)
{
	return sections[s].own_key ? sections[s].own_key : fwd_schema_name(sections[s].doc_key);
}

const char *fwd_report_value_name(enum fwd_report_sec s, int v)
{
	return v >= 0 && v < FWD_REPORT_VALUES ? sections[s].values[v] : NULL;
}

const char *fwd_report_attr_name(enum fwd_report_sec s, int a)
{
	return a >= 0 && a < FWD_REPORT_ATTRS ? sections[s].attrs[a] : NULL;
}

struct fwd_report *fwd_report_new(void)
{
	return calloc(1, sizeof(struct fwd_report));
}

void fwd_report_free(struct fwd_report *r)
{
	if (r == NULL)
		return;
	for (int s = 0; s < FWD_RS_MAX; s++) {
		for (uint32_t i = 0; i < r->sec[s].n; i++)
			free(r->sec[s].rows[i].top);
		free(r->sec[s].rows);
		free(r->sec[s].index);
	}
	free(r);
}

int fwd_report_set_top(struct fwd_report_row *row, const struct fwd_report_top *top, uint32_t n)
{
	struct fwd_report_top *t = NULL;

	if (n > FWD_REPORT_TOP_MAX)
		n = FWD_REPORT_TOP_MAX;
	if (n && (t = malloc(sizeof(*t) * n)) == NULL)
		return -ENOMEM;
	if (n)
		memcpy(t, top, sizeof(*t) * n);
	free(row->top);
	row->top = t;
	row->ntop = n;
	return 0;
}

struct fwd_report *fwd_report_clone(const struct fwd_report *r)
{
	struct fwd_report *c = malloc(sizeof(*c));

	if (c == NULL)
		return NULL;
	*c = *r;
	for (int s = 0; s < FWD_RS_MAX; s++)
		c->sec[s] = (struct fwd_report_section){0}; /* owned once copied below */
	for (int s = 0; s < FWD_RS_MAX; s++) {
		const struct fwd_report_section *from = &r->sec[s];
		struct fwd_report_section *to = &c->sec[s];

		to->rows = from->cap ? malloc(sizeof(*to->rows) * from->cap) : NULL;
		to->index =
			from->index ? malloc(sizeof(*to->index) * (from->index_mask + 1)) : NULL;
		if ((from->cap && to->rows == NULL) || (from->index && to->index == NULL))
			goto fail;
		to->cap = from->cap;
		to->index_mask = from->index_mask;
		if (from->n)
			memcpy(to->rows, from->rows, sizeof(*to->rows) * from->n);
		if (from->index)
			memcpy(to->index, from->index, sizeof(*to->index) * (from->index_mask + 1));
		/* to->n counts the rows whose top list is the copy's own */
		for (uint32_t i = 0; i < from->n; i++, to->n++) {
			to->rows[i].top = NULL;
			to->rows[i].ntop = 0;
			if (fwd_report_set_top(&to->rows[i], from->rows[i].top, from->rows[i].ntop))
				goto fail;
		}
	}
	return c;
fail:
	fwd_report_free(c);
	return NULL;
}

static uint32_t slot_of(const char *name, uint32_t mask)
{
	return (uint32_t)fwd_hash64(name, strlen(name)) & mask;
}

/* Rebuild the name index at twice the size (load kept under one half). */
static int grow_index(struct fwd_report_section *sec)
{
	uint32_t size = sec->index ? (sec->index_mask + 1) * 2 : 64;
	uint32_t *idx = calloc(size, sizeof(*idx));

	if (idx == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < sec->n; i++) {
		uint32_t h = slot_of(sec->rows[i].name, size - 1);

		while (idx[h])
			h = (h + 1) & (size - 1);
		idx[h] = i + 1;
	}
	free(sec->index);
	sec->index = idx;
	sec->index_mask = size - 1;
	return 0;
}

static const struct fwd_report_row *find(const struct fwd_report_section *sec, const char *name,
					 uint32_t *slot)
{
	uint32_t h;

	if (sec->index == NULL)
		return NULL;
	for (h = slot_of(name, sec->index_mask); sec->index[h]; h = (h + 1) & sec->index_mask)
		if (strcmp(sec->rows[sec->index[h] - 1].name, name) == 0)
			return &sec->rows[sec->index[h] - 1];
	if (slot)
		*slot = h;
	return NULL;
}

const struct fwd_report_row *fwd_report_find(const struct fwd_report *r, enum fwd_report_sec s,
					     const char *name)
{
	return find(&r->sec[s], name, NULL);
}

struct fwd_report_row *fwd_report_row(struct fwd_report *r, enum fwd_report_sec s, const char *name)
{
	struct fwd_report_section *sec = &r->sec[s];
	struct fwd_report_row *row;
	uint32_t slot = 0;

	row = (struct fwd_report_row *)find(sec, name, &slot);
	if (row)
		return row;
	if (sec->index == NULL || (sec->n + 1) * 2 > sec->index_mask + 1) {
		if (grow_index(sec))
			return NULL;
		find(sec, name, &slot);
	}
	if (sec->n == sec->cap) {
		uint32_t cap = sec->cap ? sec->cap * 2 : 16;
		struct fwd_report_row *rows = realloc(sec->rows, sizeof(*rows) * cap);

		if (rows == NULL)
			return NULL;
		sec->rows = rows;
		sec->cap = cap;
	}
	row = &sec->rows[sec->n];
	memset(row, 0, sizeof(*row));
	snprintf(row->name, sizeof(row->name), "%s", name);
	sec->index[slot] = ++sec->n;
	return row;
}

void fwd_report_set_attr(struct fwd_report_row *row, int a, const char *value)
{
	row->attr_state[a] = value ? FWD_RA_SET : FWD_RA_NULL;
	snprintf(row->attr[a], sizeof(row->attr[a]), "%s", value ? value : "");
}

/* ---- the JSON model ------------------------------------------------------ */

static json_t *section_json(const struct fwd_report *r, enum fwd_report_sec s)
{
	json_t *o = json_object();

	for (uint32_t i = 0; o && i < r->sec[s].n; i++) {
		const struct fwd_report_row *row = &r->sec[s].rows[i];
		json_t *e = json_object();

		for (int v = 0; v < FWD_REPORT_VALUES && sections[s].values[v]; v++)
			json_object_set_new(e, sections[s].values[v],
					    json_integer((json_int_t)row->v[v]));
		for (int a = 0; a < FWD_REPORT_ATTRS && sections[s].attrs[a]; a++)
			if (row->attr_state[a] != FWD_RA_ABSENT)
				json_object_set_new(e, sections[s].attrs[a],
						    row->attr_state[a] == FWD_RA_SET
							    ? json_string(row->attr[a])
							    : json_null());
		if (row->ntop) {
			json_t *a = json_array();

			for (uint32_t k = 0; k < row->ntop; k++)
				json_array_append_new(a, json_pack("{s:s, s:I}", "name",
								   row->top[k].name, "count",
								   (json_int_t)row->top[k].count));
			json_object_set_new(e, "top_names", a);
		}
		json_object_set_new(o, row->name, e);
	}
	return o;
}

json_t *fwd_report_gen_json(const struct fwd_report_gen *g)
{
	json_t *gen;
	char h[17];

	snprintf(h, sizeof(h), "%016llx", (unsigned long long)g->hash);
	gen = json_pack("{s:I, s:s, s:s, s:I, s:i, s:i, s:i, s:i, s:I, s:I}", "id",
			(json_int_t)g->id, "hash", h, "source", g->source, "created_unix_ns",
			(json_int_t)g->created_unix_ns, "regions", (int)g->regions, "services",
			(int)g->services, "links", (int)g->links, "policies", (int)g->policies,
			"prefixes_v4", (json_int_t)g->prefixes_v4, "prefixes_v6",
			(json_int_t)g->prefixes_v6);
	if (gen && g->has_content)
		json_object_set_new(
			gen, "content",
			json_pack("{s:i, s:I, s:I, s:b}", "rules", (int)g->content_rules,
				  "database_bytes", (json_int_t)g->database_bytes, "scratch_bytes",
				  (json_int_t)g->scratch_bytes, "compiled_here", g->compiled_here));
	return gen;
}

json_t *fwd_report_json(const struct fwd_report *r)
{
	json_t *j = json_object(), *gen, *drops = json_object(), *evts = json_object();

	if (j == NULL || drops == NULL || evts == NULL) {
		json_decref(j);
		json_decref(drops);
		json_decref(evts);
		return NULL;
	}
	gen = fwd_report_gen_json(&r->gen);
	for (int i = 0; i < FWD_DROP_MAX; i++)
		json_object_set_new(drops, fwd_drop_names[i],
				    json_integer((json_int_t)r->drops[i]));
	for (int i = 0; i < FWD_EVT_MAX; i++)
		json_object_set_new(evts, fwd_evt_names[i], json_integer((json_int_t)r->events[i]));
	json_object_set_new(j, "generation", gen);
	json_object_set_new(j, "workers", json_integer(r->workers));
	json_object_set_new(j, fwd_report_sec_key(FWD_RS_PORTS), section_json(r, FWD_RS_PORTS));
	if (r->has_mbufs)
		json_object_set_new(j, "mbufs",
				    json_pack("{s:I, s:I}", "pool", (json_int_t)r->mbuf_pool,
					      "in_use", (json_int_t)r->mbuf_in_use));
	json_object_set_new(j, "packets",
			    json_pack("{s:I, s:I, s:I, s:I, s:I}", "rx", (json_int_t)r->packets.rx,
				      "rx_bytes", (json_int_t)r->packets.rx_bytes, "tx",
				      (json_int_t)r->packets.tx, "tx_bytes",
				      (json_int_t)r->packets.tx_bytes, "dropped",
				      (json_int_t)r->packets.dropped));
	json_object_set_new(j, "drops", drops);
	json_object_set_new(j, "events", evts);
	if (r->instance) {
		char id[20];

		snprintf(id, sizeof(id), "%016" PRIx64, r->instance);
		json_object_set_new(j, "instance", json_string(id));
		json_object_set_new(j, "uptime_ns", json_integer((json_int_t)r->uptime_ns));
	}
	for (int s = 0; s < FWD_RS_MAX; s++)
		if (s != FWD_RS_PORTS)
			json_object_set_new(j, fwd_report_sec_key((enum fwd_report_sec)s),
					    section_json(r, (enum fwd_report_sec)s));
	return j;
}

/* A non-negative integer member, or -1 with @e naming @path.@key. */
static int get_u64(const json_t *o, const char *path, const char *key, uint64_t *out, int required,
		   struct fwd_err *e)
{
	json_t *v = json_object_get(o, key);
	char p[160];

	*out = 0;
	if (v == NULL && !required)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(p, sizeof(p), "%s%s%s", path, path[0] ? "." : "", key);
		return fwd_err_fail(e, FWD_R_INVALID, NULL, 0, p,
				    "expected a counter (an integer >= 0)");
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* "top_names": [{name, count}], at most FWD_REPORT_TOP_MAX; absent is none. */
static int top_from_json(struct fwd_report_row *out, const json_t *a, const char *path,
			 struct fwd_err *e)
{
	struct fwd_report_top top[FWD_REPORT_TOP_MAX];
	size_t i;
	json_t *v;

	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > FWD_REPORT_TOP_MAX)
		return fwd_err_fail(e, FWD_R_INVALID, NULL, 0, path,
				    "'top_names' must be a list of at most %d", FWD_REPORT_TOP_MAX);
	json_array_foreach(a, i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));
		json_t *c = json_object_get(v, "count");

		if (n == NULL || strlen(n) >= sizeof(top[i].name) || !json_is_integer(c) ||
		    json_integer_value(c) < 0)
			return fwd_err_fail(e, FWD_R_INVALID, NULL, 0, path,
					    "'top_names'[%zu] must be {name, count}", i);
		snprintf(top[i].name, sizeof(top[i].name), "%s", n);
		top[i].count = (uint64_t)json_integer_value(c);
	}
	if (fwd_report_set_top(out, top, (uint32_t)json_array_size(a)))
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, path, "out of memory");
	return 0;
}

static int section_from_json(struct fwd_report *r, enum fwd_report_sec s, const json_t *o,
			     struct fwd_err *e)
{
	const char *name;
	json_t *row;

	if (o == NULL)
		return 0;
	if (!json_is_object(o))
		return fwd_err_fail(e, FWD_R_INVALID, NULL, 0,
				    fwd_report_sec_key((enum fwd_report_sec)s),
				    "expected an object");
	json_object_foreach((json_t *)o, name, row) {
		struct fwd_report_row *out;
		char path[160];
		int rc;

		snprintf(path, sizeof(path), "%s.%s", fwd_report_sec_key((enum fwd_report_sec)s),
			 name);
		if (!json_is_object(row))
			return fwd_err_fail(e, FWD_R_INVALID, NULL, 0, path, "expected an object");
		out = fwd_report_row(r, s, name);
		if (out == NULL)
			return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, path, "out of memory");
		for (int v = 0; v < FWD_REPORT_VALUES && sections[s].values[v]; v++)
			if ((rc = get_u64(row, path, sections[s].values[v], &out->v[v], 0, e)))
				return rc;
		for (int a = 0; a < FWD_REPORT_ATTRS && sections[s].attrs[a]; a++) {
			json_t *av = json_object_get(row, sections[s].attrs[a]);

			if (av == NULL)
				continue;
			if (!json_is_string(av) && !json_is_null(av))
				return fwd_err_fail(e, FWD_R_INVALID, NULL, 0, path,
						    "'%s' must be a string or null",
						    sections[s].attrs[a]);
			fwd_report_set_attr(out, a, json_string_value(av));
		}
		if ((rc = top_from_json(out, json_object_get(row, "top_names"), path, e)))
			return rc;
	}
	return 0;
}

struct fwd_report *fwd_report_from_json(const json_t *j, struct fwd_err *e)
{
	struct fwd_report *r;
	const json_t *g = json_object_get(j, "generation"), *pk = json_object_get(j, "packets");
	const json_t *c, *mb;
	const char *k;
	json_t *v;
	uint64_t u;
	int rc = 0;

	if (!json_is_object(j)) {
		fwd_err_fail(e, FWD_R_INVALID, NULL, 0, "", "a counter report is a JSON object");
		return NULL;
	}
	if (!json_is_object(g) || !json_is_object(pk)) {
		fwd_err_fail(e, FWD_R_INVALID, NULL, 0,
			     json_is_object(g) ? "packets" : "generation",
			     "missing or not an object");
		return NULL;
	}
	r = fwd_report_new();
	if (r == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return NULL;
	}
	rc = get_u64(g, "generation", "id", &r->gen.id, 1, e);
	if (!rc && json_is_string(json_object_get(g, "hash")))
		r->gen.hash = strtoull(json_string_value(json_object_get(g, "hash")), NULL, 16);
	snprintf(r->gen.source, sizeof(r->gen.source), "%s",
		 json_string_value(json_object_get(g, "source")) ?: "");
	if (!rc && !(rc = get_u64(g, "generation", "created_unix_ns", &u, 0, e)))
		r->gen.created_unix_ns = (int64_t)u;
#define U32(field)                                                                                 \
	if (!rc && !(rc = get_u64(g, "generation", #field, &u, 0, e)))                             \
		r->gen.field = (uint32_t)u;
	U32(regions)
	U32(services)
	U32(links)
	U32(policies)
#undef U32
	if (!rc)
		rc = get_u64(g, "generation", "prefixes_v4", &r->gen.prefixes_v4, 0, e);
	if (!rc)
		rc = get_u64(g, "generation", "prefixes_v6", &r->gen.prefixes_v6, 0, e);
	if (!rc && json_is_object(c = json_object_get(g, "content"))) {
		r->gen.has_content = 1;
		if (!(rc = get_u64(c, "generation.content", "rules", &u, 0, e)))
			r->gen.content_rules = (uint32_t)u;
		if (!rc)
			rc = get_u64(c, "generation.content", "database_bytes",
				     &r->gen.database_bytes, 0, e);
		if (!rc)
			rc = get_u64(c, "generation.content", "scratch_bytes",
				     &r->gen.scratch_bytes, 0, e);
		r->gen.compiled_here = json_is_true(json_object_get(c, "compiled_here"));
	}
	if (!rc && !(rc = get_u64(j, "", "workers", &u, 0, e)))
		r->workers = (uint32_t)u;
	if (!rc)
		rc = get_u64(pk, "packets", "rx", &r->packets.rx, 1, e);
	if (!rc)
		rc = get_u64(pk, "packets", "rx_bytes", &r->packets.rx_bytes, 0, e);
	if (!rc)
		rc = get_u64(pk, "packets", "tx", &r->packets.tx, 1, e);
	if (!rc)
		rc = get_u64(pk, "packets", "tx_bytes", &r->packets.tx_bytes, 0, e);
	if (!rc)
		rc = get_u64(pk, "packets", "dropped", &r->packets.dropped, 0, e);
	json_object_foreach((json_t *)json_object_get(j, "drops"), k, v)
		for (int i = 0; !rc && i < FWD_DROP_MAX; i++)
			if (strcmp(k, fwd_drop_names[i]) == 0)
				rc = get_u64(json_object_get(j, "drops"), "drops", k, &r->drops[i],
					     1, e);
	json_object_foreach((json_t *)json_object_get(j, "events"), k, v)
		for (int i = 0; !rc && i < FWD_EVT_MAX; i++)
			if (strcmp(k, fwd_evt_names[i]) == 0)
				rc = get_u64(json_object_get(j, "events"), "events", k,
					     &r->events[i], 1, e);
	if (!rc && (v = json_object_get(j, "instance")) != NULL) {
		const char *id = json_string_value(v);
		char *end = NULL;

		if (id && strspn(id, "0123456789abcdef") == 16)
			r->instance = strtoull(id, &end, 16);
		if (id == NULL || strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16 ||
		    r->instance == 0)
			rc = fwd_err_fail(e, FWD_R_INVALID, NULL, 0, "instance",
					  "not 16 hex digits (not 0)");
		else
			rc = get_u64(j, "", "uptime_ns", &r->uptime_ns, 1, e);
	}
	if (!rc && json_is_object(mb = json_object_get(j, "mbufs"))) {
		r->has_mbufs = 1;
		if (!(rc = get_u64(mb, "mbufs", "pool", &r->mbuf_pool, 0, e)))
			rc = get_u64(mb, "mbufs", "in_use", &r->mbuf_in_use, 0, e);
	}
	for (int s = 0; !rc && s < FWD_RS_MAX; s++)
		rc = section_from_json(
			r, (enum fwd_report_sec)s,
			json_object_get(j, fwd_report_sec_key((enum fwd_report_sec)s)), e);
	if (rc) {
		fwd_report_free(r);
		return NULL;
	}
	return r;
}

/* ---- rates between two reports --------------------------------------------- */

/* (b - a) / s, where a counter that went down restarted from 0 (a
 * regionfwd that does not say its instance). */
static double per_s(uint64_t a, uint64_t b, double s, int *reset)
{
	if (b < a) {
		*reset = 1;
		a = 0;
	}
	return (double)(b - a) / s;
}

/* A rate in the JSON: two decimals are finer than any window measures. */
static json_t *rate_json(double v)
{
	return json_real((double)(int64_t)(v * 100.0 + 0.5) / 100.0);
}

static json_t *named_rates(const char *const *names, const uint64_t *a, const uint64_t *b, int n,
			   double s, int *reset)
{
	json_t *o = json_object();

	for (int i = 0; o && i < n; i++)
		if (names[i])
			json_object_set_new(o, names[i], rate_json(per_s(a[i], b[i], s, reset)));
	return o;
}

json_t *fwd_report_rates(const struct fwd_report *before, const struct fwd_report *after,
			 double seconds)
{
	static const struct fwd_report none; /* a run's start: every counter 0 */
	const struct fwd_report *a = before, *b = after;
	int reset = 0;
	json_t *o, *pk;
	char key[64];

	/* The time between the two sums, as regionfwd measured it: a client's
	 * own clock also counts how long each read took to be answered (a
	 * regiond paused 2 s under one read made 300 pkts/s read as 599). */
	if (a->instance && a->instance == b->instance && b->uptime_ns > a->uptime_ns)
		seconds = (double)(b->uptime_ns - a->uptime_ns) / 1e9;
	/* Another run: its counters began at 0 when it started, however far
	 * they got since (a restart 1 s into an 8 s window went unsaid, and
	 * 300 pkts/s read as 119). Over its uptime, when that is shorter. */
	/* (One side unsaid: a regionfwd upgraded in between, a run too.) */
	if ((a->instance || b->instance) && a->instance != b->instance) {
		reset = 1;
		a = &none;
		if (b->uptime_ns > 0 && (double)b->uptime_ns / 1e9 < seconds)
			seconds = (double)b->uptime_ns / 1e9;
	}
	if (seconds <= 0)
		return NULL;
	o = json_object();
	pk = json_object();
	if (o == NULL || pk == NULL) {
		json_decref(o);
		json_decref(pk);
		return NULL;
	}
	json_object_set_new(pk, "rx_packets_per_s",
			    rate_json(per_s(a->packets.rx, b->packets.rx, seconds, &reset)));
	json_object_set_new(
		pk, "rx_bits_per_s",
		rate_json(8.0 * per_s(a->packets.rx_bytes, b->packets.rx_bytes, seconds, &reset)));
	json_object_set_new(pk, "tx_packets_per_s",
			    rate_json(per_s(a->packets.tx, b->packets.tx, seconds, &reset)));
	json_object_set_new(
		pk, "tx_bits_per_s",
		rate_json(8.0 * per_s(a->packets.tx_bytes, b->packets.tx_bytes, seconds, &reset)));
	json_object_set_new(
		pk, "dropped_packets_per_s",
		rate_json(per_s(a->packets.dropped, b->packets.dropped, seconds, &reset)));
	json_object_set_new(o, "packets", pk);
	json_object_set_new(
		o, "drops",
		named_rates(fwd_drop_names, a->drops, b->drops, FWD_DROP_MAX, seconds, &reset));
	json_object_set_new(
		o, "events",
		named_rates(fwd_evt_names, a->events, b->events, FWD_EVT_MAX, seconds, &reset));
	for (int s = 0; s < FWD_RS_MAX; s++) {
		json_t *sec = json_object();

		for (uint32_t i = 0; sec && i < b->sec[s].n; i++) {
			const struct fwd_report_row *rb = &b->sec[s].rows[i],
						    *ra = fwd_report_find(a, s, rb->name);
			json_t *e = json_object();

			for (int v = 0; e && v < FWD_REPORT_VALUES && sections[s].values[v]; v++) {
				int bytes = strcmp(sections[s].values[v], "bytes") == 0;
				double r;

				/* A port's link speed per second was always 0 (and a
				 * speed change read as a rate, or a counter reset). */
				if (sections[s].gauges >> v & 1)
					continue;
				r = per_s(ra ? ra->v[v] : 0, rb->v[v], seconds, &reset);
				snprintf(key, sizeof(key), "%s_per_s",
					 bytes ? "bits" : sections[s].values[v]);
				json_object_set_new(e, key, rate_json(bytes ? 8.0 * r : r));
			}
			json_object_set_new(sec, rb->name, e);
		}
		json_object_set_new(o, fwd_report_sec_key(s), sec);
	}
	/* the window as measured, to the millisecond (the reads' own spread) */
	json_object_set_new(o, "interval_s",
			    json_real((double)(int64_t)(seconds * 1e3 + 0.5) / 1e3));
	json_object_set_new(o, "reset", json_boolean(reset));
	return o;
}
