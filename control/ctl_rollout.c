#include "ctl_rollout.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_defs.h"
#include "fwd_json.h"

#define REPORT_MAX (64u << 10) /* a node report larger than this is refused */

/* A node reports each of regionfwd's drop reasons: they must all fit. */
_Static_assert(FWD_DROP_MAX <= CTL_ROLLOUT_REASONS_MAX, "CTL_ROLLOUT_REASONS_MAX too small");
#define RECORD_MAX (1u << 20) /* a rollout record larger than this is refused */

/* ---- names ------------------------------------------------------------- */

static const char *const state_names[CTL_RO_STATE_MAX] = {
#define X(id, name) [CTL_RO_##id] = name,
	CTL_ROLLOUT_STATES(X)
#undef X
};

static const char *const nstatus_names[CTL_RN_MAX] = {
#define X(id, name) [CTL_RN_##id] = name,
	CTL_ROLLOUT_NSTATUS(X)
#undef X
};

static const char *const node_state_names[] = {
	[CTL_NODE_IN_SYNC] = "in_sync",
	[CTL_NODE_APPLYING] = "applying",
	[CTL_NODE_FAILED] = "failed",
	[CTL_NODE_STALE] = "stale",
	[CTL_NODE_VALIDATE_ONLY] = "validate_only",
};

const char *ctl_rollout_state_name(enum ctl_rollout_state s)
{
	return (unsigned)s < CTL_RO_STATE_MAX ? state_names[s] : "invalid";
}

static int name_index(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return i;
	return -1;
}

/* Facility, node and rollout names: [a-z0-9-]{1,max}. */
static bool name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	return true;
}

/* Label keys and values, link and drop reason names: [A-Za-z0-9._-]. */
static bool token_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

static bool hash_ok(const char *s)
{
	if (strlen(s) != 16)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* ---- a strict reader of JSON objects ------------------------------------ */

/* Each getter names the field it refuses: "<what>.<path>.<key>". */
struct rd {
	struct fwd_err *err;
	const char *what; /* "report", "rollout", "options" */
};

static int rd_fail(const struct rd *d, const char *path, const char *key, const char *why)
{
	char p[256];

	snprintf(p, sizeof(p), "%s%s%s", path, *path && key ? "." : "", key ? key : "");
	return fwd_err_fail(d->err, FWD_R_INVALID, d->what, 0, p, "%s", why);
}

/* Refuse members not in @keys (NULL-terminated). */
static int rd_known(const struct rd *d, const json_t *o, const char *path, const char *const *keys)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)o, k, v) {
		int i;

		for (i = 0; keys[i] && strcmp(keys[i], k) != 0; i++)
			;
		if (!keys[i])
			return rd_fail(d, path, k, "unknown field");
	}
	return 0;
}

static int rd_obj(const struct rd *d, const json_t *o, const char *path, const char *key,
		  bool null_ok, const json_t **out)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if ((v == NULL || json_is_null(v)) && null_ok)
		return 0;
	if (!json_is_object(v))
		return rd_fail(d, path, key,
			       null_ok ? "must be an object or null" : "must be an object");
	*out = v;
	return 0;
}

/* A string member copied into @buf; @check refuses its charset. */
static int rd_str(const struct rd *d, const json_t *o, const char *path, const char *key, char *buf,
		  size_t size, bool null_ok, bool (*check)(const char *, size_t))
{
	json_t *v = json_object_get(o, key);
	const char *s;

	buf[0] = '\0';
	if ((v == NULL || json_is_null(v)) && null_ok)
		return 0;
	if (!json_is_string(v))
		return rd_fail(d, path, key, "must be a string");
	s = json_string_value(v);
	if (json_string_length(v) >= size || strlen(s) != json_string_length(v))
		return rd_fail(d, path, key, "too long");
	memcpy(buf, s, json_string_length(v) + 1);
	if (check && !check(buf, size - 1))
		return rd_fail(d, path, key, "has characters or a length it may not have");
	return 0;
}

static bool check_hash(const char *s, size_t max)
{
	(void)max;
	return hash_ok(s);
}

static bool check_name(const char *s, size_t max)
{
	return name_ok(s, max);
}

bool ctl_rollout_node_name_ok(const char *s)
{
	return name_ok(s, CTL_ROLLOUT_NAME_MAX);
}

static bool check_token(const char *s, size_t max)
{
	return token_ok(s, max);
}

static int rd_u64(const struct rd *d, const json_t *o, const char *path, const char *key,
		  uint64_t *out, bool null_ok)
{
	json_t *v = json_object_get(o, key);

	*out = 0;
	if ((v == NULL || json_is_null(v)) && null_ok)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return rd_fail(d, path, key, "must be a non-negative integer");
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int rd_int(const struct rd *d, const json_t *o, const char *path, const char *key,
		  long long min, long long max, int *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		char why[96];

		snprintf(why, sizeof(why), "must be an integer from %lld to %lld", min, max);
		return rd_fail(d, path, key, why);
	}
	*out = (int)json_integer_value(v);
	return 0;
}

static int rd_bool(const struct rd *d, const json_t *o, const char *path, const char *key,
		   bool *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_boolean(v))
		return rd_fail(d, path, key, "must be true or false");
	*out = json_is_true(v);
	return 0;
}

static int rd_schema(const struct rd *d, const json_t *o)
{
	json_t *v = json_object_get(o, "schema");

	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return rd_fail(d, "", "schema", "must be a positive integer");
	if (json_integer_value(v) > CTL_ROLLOUT_SCHEMA) {
		char why[96];

		snprintf(why, sizeof(why), "version %lld is newer than this regiond's (%d)",
			 json_integer_value(v), CTL_ROLLOUT_SCHEMA);
		return rd_fail(d, "", "schema", why);
	}
	return 0;
}

/* {"reason": count, ...} into @drops. */
static int rd_drops(const struct rd *d, const json_t *o, const char *path,
		    struct ctl_rollout_drop *drops, unsigned *n)
{
	const char *k;
	json_t *v;

	*n = 0;
	if (json_object_size(o) > CTL_ROLLOUT_REASONS_MAX)
		return rd_fail(d, path, NULL, "too many drop reasons");
	json_object_foreach((json_t *)o, k, v) {
		if (!token_ok(k, CTL_ROLLOUT_REASON_MAX))
			return rd_fail(d, path, k, "is not a drop reason name");
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return rd_fail(d, path, k, "must be a non-negative integer");
		snprintf(drops[*n].reason, sizeof(drops[*n].reason), "%s", k);
		drops[(*n)++].count = (uint64_t)json_integer_value(v);
	}
	return 0;
}

/* ["name", ...] of link names into @links. */
static int cmp_link(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A list of link names (at most CTL_ROLLOUT_LINKS_READ, one table's links):
 * *n is how many, @links the first CTL_ROLLOUT_LINKS_MAX in name order, so
 * that a node with many links down is still read (it used to be refused,
 * and a node whose report is refused looked absent). */
static int rd_links(const struct rd *d, const json_t *a, const char *path,
		    char links[][CTL_ROLLOUT_NAME_MAX + 1], unsigned *n)
{
	const char *names[CTL_ROLLOUT_LINKS_READ];
	size_t i, k = 0;
	json_t *v;

	*n = 0;
	if (!json_is_array(a))
		return rd_fail(d, path, NULL, "must be an array of link names");
	if (json_array_size(a) > CTL_ROLLOUT_LINKS_READ)
		return rd_fail(d, path, NULL, "more links than a table has");
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || !token_ok(json_string_value(v), CTL_ROLLOUT_NAME_MAX))
			return rd_fail(d, path, NULL, "must be an array of link names");
		names[k++] = json_string_value(v);
	}
	qsort(names, k, sizeof(names[0]), cmp_link);
	for (i = 0; i < k; i++) {
		if (i && strcmp(names[i], names[i - 1]) == 0)
			return rd_fail(d, path, NULL, "names a link twice");
		if (i < CTL_ROLLOUT_LINKS_MAX)
			snprintf(links[i], CTL_ROLLOUT_NAME_MAX + 1, "%s", names[i]);
	}
	*n = (unsigned)k;
	return 0;
}

static unsigned kept_links(unsigned n)
{
	return n < CTL_ROLLOUT_LINKS_MAX ? n : CTL_ROLLOUT_LINKS_MAX;
}

static json_t *load(const struct rd *d, const char *buf, size_t len, size_t max)
{
	json_error_t je;
	json_t *j;

	if (len > max) {
		rd_fail(d, "", NULL, "larger than allowed");
		return NULL;
	}
	j = fwd_json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		fwd_err_fail(d->err, FWD_R_INVALID, d->what, (uint32_t)je.line, "", "%s", je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		rd_fail(d, "", NULL, "must be a JSON object");
		return NULL;
	}
	return j;
}

/* ---- options ----------------------------------------------------------- */

enum opt_kind { OPT_U32, OPT_BOOL, OPT_LABEL };

/* The options, their defaults and ranges: the API, regionctl and the docs
 * all read this one table. */
static const struct opt_desc {
	const char *name;
	enum opt_kind kind;
	size_t off;
	uint32_t def, min, max;
} opt_descs[] = {
	{"canary", OPT_U32, offsetof(struct ctl_rollout_opts, canary), 1, 0, CTL_ROLLOUT_WAVE_MAX},
	{"canary_label", OPT_LABEL, offsetof(struct ctl_rollout_opts, canary_label), 0, 0, 0},
	{"bake_s", OPT_U32, offsetof(struct ctl_rollout_opts, bake_s), 60, 0, 86400},
	{"wave", OPT_U32, offsetof(struct ctl_rollout_opts, wave), 1, 1, CTL_ROLLOUT_WAVE_MAX},
	{"sync_timeout_s", OPT_U32, offsetof(struct ctl_rollout_opts, sync_timeout_s), 60, 1,
	 CTL_ROLLOUT_SYNC_TIMEOUT_MAX},
	{"max_drop_pps", OPT_U32, offsetof(struct ctl_rollout_opts, max_drop_pps), 100, 0,
	 1000000000},
	{"max_drop_pct", OPT_U32, offsetof(struct ctl_rollout_opts, max_drop_pct), 200, 100,
	 1000000},
	{"link_gate", OPT_BOOL, offsetof(struct ctl_rollout_opts, link_gate), 1, 0, 1},
	{"max_health", OPT_U32, offsetof(struct ctl_rollout_opts, max_health), 1, 0, 2},
};

#define N_OPTS (sizeof(opt_descs) / sizeof(opt_descs[0]))

void ctl_rollout_opts_default(struct ctl_rollout_opts *o)
{
	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < N_OPTS; i++) {
		void *f = (char *)o + opt_descs[i].off;

		if (opt_descs[i].kind == OPT_U32)
			*(uint32_t *)f = opt_descs[i].def;
		else if (opt_descs[i].kind == OPT_BOOL)
			*(bool *)f = opt_descs[i].def;
	}
}

/* "k=v" with both parts tokens. */
static bool label_key_ok(const char *s, size_t n)
{
	if (n == 0 || n > CTL_ROLLOUT_LABEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

/* Not empty: the reports' parser always refused an empty value, and
 * regionds of every version read each other's records and reports. */
static bool label_value_ok(const char *s)
{
	return token_ok(s, CTL_ROLLOUT_LABEL_MAX);
}

bool ctl_rollout_label_ok(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq != NULL && label_key_ok(kv, (size_t)(eq - kv)) && label_value_ok(eq + 1);
}

static int opts_check(const struct rd *d, const struct ctl_rollout_opts *o)
{
	if (o->canary == 0 && !o->canary_label[0])
		return rd_fail(d, "options", "canary",
			       "must be at least 1 unless canary_label chooses the canaries");
	return 0;
}

int ctl_rollout_opts_from_json(struct ctl_rollout_opts *o, const json_t *j, struct fwd_err *err)
{
	struct rd d = {err, "options"};
	const char *k;
	json_t *v;
	int rc;

	if (!json_is_object(j))
		return fwd_err_fail(err, FWD_R_BAD_REQUEST, NULL, 0, "options",
				    "must be an object");
	json_object_foreach((json_t *)j, k, v) {
		const struct opt_desc *od = NULL;
		void *f;

		for (size_t i = 0; i < N_OPTS && !od; i++)
			if (strcmp(opt_descs[i].name, k) == 0)
				od = &opt_descs[i];
		if (od == NULL)
			return rd_fail(&d, "options", k, "unknown option");
		f = (char *)o + od->off;
		if (od->kind == OPT_U32) {
			if (!json_is_integer(v) || json_integer_value(v) < od->min ||
			    json_integer_value(v) > od->max) {
				char why[96];

				snprintf(why, sizeof(why), "must be an integer from %u to %u",
					 od->min, od->max);
				return rd_fail(&d, "options", k, why);
			}
			*(uint32_t *)f = (uint32_t)json_integer_value(v);
		} else if (od->kind == OPT_BOOL) {
			if (!json_is_boolean(v))
				return rd_fail(&d, "options", k, "must be true or false");
			*(bool *)f = json_is_true(v);
		} else {
			const char *s = json_is_string(v) ? json_string_value(v) : NULL;

			if (json_is_null(v) || (s && !*s)) {
				o->canary_label[0] = '\0';
				continue;
			}
			if (s == NULL || strlen(s) >= sizeof(o->canary_label) ||
			    !ctl_rollout_label_ok(s))
				return rd_fail(
					&d, "options", k,
					"must be \"key=value\" (key 1..63 of a-z 0-9 . _ -, "
					"value 1..63 of A-Z a-z 0-9 . _ -), as --fleet-label");
			snprintf(o->canary_label, sizeof(o->canary_label), "%s", s);
		}
	}
	rc = opts_check(&d, o);
	return rc;
}

json_t *ctl_rollout_opts_to_json(const struct ctl_rollout_opts *o)
{
	json_t *j = json_object();

	for (size_t i = 0; j && i < N_OPTS; i++) {
		const void *f = (const char *)o + opt_descs[i].off;
		json_t *v = opt_descs[i].kind == OPT_U32    ? json_integer(*(const uint32_t *)f)
			    : opt_descs[i].kind == OPT_BOOL ? json_boolean(*(const bool *)f)
			    : *(const char *)f		    ? json_string((const char *)f)
							    : json_null();

		json_object_set_new(j, opt_descs[i].name, v);
	}
	return j;
}

/* ---- node reports ------------------------------------------------------ */

static int node_from_json(const struct rd *d, const json_t *j, struct ctl_rollout_node *n)
{
	const json_t *o, *h, *c;
	const char *k;
	json_t *v;
	char s[32];
	int rc, st;

	memset(n, 0, sizeof(*n));
	if ((rc = rd_schema(d, j)) ||
	    (rc = rd_str(d, j, "", "node", n->name, sizeof(n->name), false, check_name)))
		return rc;
	if ((rc = rd_obj(d, j, "", "labels", true, &o)))
		return rc;
	if (o && json_object_size(o) > CTL_ROLLOUT_LABELS_MAX)
		return rd_fail(d, "", "labels", "too many labels");
	json_object_foreach((json_t *)o, k, v) {
		if (!label_key_ok(k, strlen(k)) || !json_is_string(v) ||
		    !label_value_ok(json_string_value(v)))
			return rd_fail(
				d, "labels", k,
				"labels are key: value, the key of a-z 0-9 . _ -, the value of "
				"A-Z a-z 0-9 . _ - (as --fleet-label)");
		snprintf(n->labels[n->n_labels].key, sizeof(n->labels[0].key), "%s", k);
		snprintf(n->labels[n->n_labels++].value, sizeof(n->labels[0].value), "%s",
			 json_string_value(v));
	}
	if ((rc = rd_str(d, j, "", "state", s, sizeof(s), false, NULL)))
		return rc;
	st = name_index(node_state_names, 5, s);
	if (st < 0)
		return rd_fail(d, "", "state", "is not a node state");
	n->state = (enum ctl_node_state)st;
	if ((rc = rd_obj(d, j, "", "target", true, &o)) ||
	    (o && (rc = rd_str(d, o, "target", "table", n->target, sizeof(n->target), true,
			       check_hash))))
		return rc;
	if ((rc = rd_obj(d, j, "", "running", true, &o)) ||
	    (o && (rc = rd_str(d, o, "running", "table", n->running, sizeof(n->running), true,
			       check_hash))))
		return rc;
	if ((rc = rd_bool(d, j, "", "in_sync", &n->in_sync)))
		return rc;
	if (json_object_get(j, "stale") && (rc = rd_bool(d, j, "", "stale", &n->stale)))
		return rc;
	if ((rc = rd_obj(d, j, "", "apply_error", true, &o)))
		return rc;
	if (o) {
		n->apply_error = true;
		if ((rc = rd_str(d, o, "apply_error", "table", n->error_table,
				 sizeof(n->error_table), true, check_hash)))
			return rc;
		v = json_object_get(o, "reason");
		snprintf(n->error_reason, sizeof(n->error_reason), "%s",
			 json_is_string(v) ? json_string_value(v) : "");
		fwd_utf8_clean(n->error_reason);
	}
	if ((rc = rd_obj(d, j, "", "health", true, &h)))
		return rc;
	if (h) {
		if ((rc = rd_int(d, h, "health", "code", 0, 2, &n->health)))
			return rc;
		if (json_object_get(h, "links_down") &&
		    (rc = rd_links(d, json_object_get(h, "links_down"), "health.links_down",
				   n->links_down, &n->n_links_down)))
			return rc;
	}
	if ((rc = rd_obj(d, j, "", "counters", true, &c)))
		return rc;
	if (c && (rc = rd_obj(d, c, "counters", "drop_reasons", true, &o)))
		return rc;
	if (c && o && (rc = rd_drops(d, o, "counters.drop_reasons", n->drops, &n->n_drops)))
		return rc;
	return rd_u64(d, j, "", "updated_at", &n->updated_at, false);
}

int ctl_rollout_node_parse(const char *buf, size_t len, struct ctl_rollout_node *n,
			   struct fwd_err *err)
{
	struct rd d = {err, "report"};
	json_t *j = load(&d, buf, len, REPORT_MAX);
	int rc;

	if (j == NULL)
		return -EINVAL;
	rc = node_from_json(&d, j, n);
	json_decref(j);
	return rc;
}

static uint64_t drop_count(const struct ctl_rollout_drop *d, unsigned n, const char *reason,
			   bool *found)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(d[i].reason, reason) == 0) {
			if (found)
				*found = true;
			return d[i].count;
		}
	if (found)
		*found = false;
	return 0;
}

double ctl_rollout_drop_rate(const struct ctl_rollout_node *prev,
			     const struct ctl_rollout_node *cur, const char *reason)
{
	uint64_t a, b;

	if (prev == NULL || cur->updated_at <= prev->updated_at)
		return -1;
	/* A reason absent from a report has not happened yet: counted 0. */
	a = drop_count(prev->drops, prev->n_drops, reason, NULL);
	b = drop_count(cur->drops, cur->n_drops, reason, NULL);
	if (b < a)
		return -1; /* regionfwd restarted: its totals began again */
	return (double)(b - a) * 1000.0 / (double)(cur->updated_at - prev->updated_at);
}

/* ---- the record: JSON -------------------------------------------------- */

static json_t *drops_json(const struct ctl_rollout_drop *d, unsigned n)
{
	json_t *o = json_object();

	for (unsigned i = 0; o && i < n; i++)
		json_object_set_new(o, d[i].reason, json_integer((json_int_t)d[i].count));
	return o;
}

static json_t *str_or_null(const char *s)
{
	return *s ? json_string(s) : json_null();
}

static json_t *rnode_json(const struct ctl_rollout_rnode *n, bool pinned)
{
	json_t *links = json_array();

	for (unsigned i = 0; links && i < kept_links(n->n_base_links); i++)
		json_array_append_new(links, json_string(n->base_links[i]));
	/* "links_down_count" only where the names do not say it all: regionds
	 * before it refuse the field, and a fleet is upgraded node by node. */
	return json_pack("{s:s, s:i, s:s, s:b, s:{s:i, s:o, s:o*, s:o}, s:o}", "name", n->name,
			 "wave", n->wave, "status", nstatus_names[n->status], "pinned", pinned,
			 "base", "health", n->base_health, "links_down", links, "links_down_count",
			 n->n_base_links > CTL_ROLLOUT_LINKS_MAX
				 ? json_integer((json_int_t)n->n_base_links)
				 : NULL,
			 "drop_pps", drops_json(n->base_rates, n->n_base_rates), "bake",
			 n->bake_at ? json_pack("{s:I, s:o}", "at", (json_int_t)n->bake_at, "drops",
						drops_json(n->bake_drops, n->n_bake_drops))
				    : json_null());
}

json_t *ctl_rollout_to_json(const struct ctl_rollout *r)
{
	json_t *nodes = json_array(), *j;

	for (unsigned i = 0; nodes && i < r->n_nodes; i++)
		json_array_append_new(nodes, rnode_json(&r->nodes[i], r->nodes[i].pinned));
	j = json_pack(
		"{s:i, s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:o, s:o, s:s, s:i, s:i, s:I, "
		"s:b, s:I, s:o, s:o}",
		"schema", CTL_ROLLOUT_SCHEMA, "id", r->id, "facility", r->facility, "table",
		r->table, "previous", str_or_null(r->previous), "created_by", r->created_by,
		"created_at", (json_int_t)r->created_at, "updated_at", (json_int_t)r->updated_at,
		"finished_at",
		r->finished_at ? json_integer((json_int_t)r->finished_at) : json_null(), "options",
		ctl_rollout_opts_to_json(&r->opts), "state", ctl_rollout_state_name(r->state),
		"wave", r->wave, "waves", r->n_waves, "since", (json_int_t)r->since,
		"abort_requested", r->abort_requested, "writes", (json_int_t)r->writes, "abort",
		r->abort_gate[0] ? json_pack("{s:s, s:o, s:s}", "gate", r->abort_gate, "node",
					     str_or_null(r->abort_node), "reason", r->abort_reason)
				 : json_null(),
		"nodes", nodes);
	return j;
}

static int rnode_from_json(const struct rd *d, const json_t *o, const char *path,
			   struct ctl_rollout_rnode *n, int n_waves)
{
	static const char *const keys[] = {"name", "wave", "status", "pinned",
					   "base", "bake", NULL};
	static const char *const bkeys[] = {"health", "links_down", "links_down_count", "drop_pps",
					    NULL};
	static const char *const kkeys[] = {"at", "drops", NULL};
	const json_t *b, *k, *dr;
	char s[24], bp[64], lp[64], dp[64];
	int rc, st;

	memset(n, 0, sizeof(*n));
	if (!json_is_object(o))
		return rd_fail(d, path, NULL, "must be an object");
	if ((rc = rd_known(d, o, path, keys)) ||
	    (rc = rd_str(d, o, path, "name", n->name, sizeof(n->name), false, check_name)) ||
	    (rc = rd_int(d, o, path, "wave", -1, n_waves - 1, &n->wave)) ||
	    (rc = rd_str(d, o, path, "status", s, sizeof(s), false, NULL)) ||
	    (rc = rd_bool(d, o, path, "pinned", &n->pinned)))
		return rc;
	st = name_index(nstatus_names, CTL_RN_MAX, s);
	if (st < 0)
		return rd_fail(d, path, "status", "is not a node status");
	n->status = (enum ctl_rollout_nstatus)st;
	if ((n->wave < 0) != (n->status == CTL_RN_ALREADY))
		return rd_fail(d, path, "wave", "only a node already on the table has no wave");
	snprintf(bp, sizeof(bp), "%s.base", path);
	snprintf(lp, sizeof(lp), "%s.base.links_down", path);
	snprintf(dp, sizeof(dp), "%s.base.drop_pps", path);
	if ((rc = rd_obj(d, o, path, "base", false, &b)) || (rc = rd_known(d, b, bp, bkeys)) ||
	    (rc = rd_int(d, b, bp, "health", 0, 2, &n->base_health)) ||
	    (rc = rd_links(d, json_object_get(b, "links_down"), lp, n->base_links,
			   &n->n_base_links)) ||
	    (rc = rd_obj(d, b, bp, "drop_pps", false, &dr)) ||
	    (rc = rd_drops(d, dr, dp, n->base_rates, &n->n_base_rates)))
		return rc;
	/* The record keeps the first names and the count (a record without
	 * it, written before the count was, holds every name). */
	if (json_object_get(b, "links_down_count")) {
		int cnt;

		if ((rc = rd_int(d, b, bp, "links_down_count", (int)n->n_base_links,
				 CTL_ROLLOUT_LINKS_READ, &cnt)))
			return rc;
		if (n->n_base_links < (unsigned)cnt && n->n_base_links != CTL_ROLLOUT_LINKS_MAX)
			return rd_fail(
				d, bp, "links_down_count",
				"is more than the names kept, which are fewer than the most kept");
		n->n_base_links = (unsigned)cnt;
	}
	if ((rc = rd_obj(d, o, path, "bake", true, &k)))
		return rc;
	snprintf(bp, sizeof(bp), "%s.bake", path);
	snprintf(dp, sizeof(dp), "%s.bake.drops", path);
	if (k) {
		if ((rc = rd_known(d, k, bp, kkeys)) ||
		    (rc = rd_u64(d, k, bp, "at", &n->bake_at, false)) ||
		    (rc = rd_obj(d, k, bp, "drops", false, &dr)) ||
		    (rc = rd_drops(d, dr, dp, n->bake_drops, &n->n_bake_drops)))
			return rc;
		if (n->bake_at == 0)
			return rd_fail(d, bp, "at", "must be a time");
	}
	return 0;
}

int ctl_rollout_from_json(const json_t *j, struct ctl_rollout *r, struct fwd_err *err)
{
	static const char *const keys[] = {
		"schema",     "id",	    "facility",	  "table",	 "previous",
		"created_by", "created_at", "updated_at", "finished_at", "options",
		"state",      "wave",	    "waves",	  "since",	 "abort_requested",
		"abort",      "nodes",	    "writes",	  NULL};
	static const char *const akeys[] = {"gate", "node", "reason", NULL};
	struct rd d = {err, "rollout"};
	const json_t *o, *nodes;
	char s[24];
	int rc, st;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(j))
		return rd_fail(&d, "", NULL, "must be a JSON object");
	if ((rc = rd_schema(&d, j)) || (rc = rd_known(&d, j, "", keys)) ||
	    (rc = rd_str(&d, j, "", "id", r->id, sizeof(r->id), false, check_name)) ||
	    (rc = rd_str(&d, j, "", "facility", r->facility, sizeof(r->facility), false,
			 check_name)) ||
	    (rc = rd_str(&d, j, "", "table", r->table, sizeof(r->table), false, check_hash)) ||
	    (rc = rd_str(&d, j, "", "previous", r->previous, sizeof(r->previous), true,
			 check_hash)) ||
	    (rc = rd_str(&d, j, "", "created_by", r->created_by, sizeof(r->created_by), false,
			 NULL)) ||
	    (rc = rd_u64(&d, j, "", "created_at", &r->created_at, false)) ||
	    (rc = rd_u64(&d, j, "", "updated_at", &r->updated_at, false)) ||
	    (rc = rd_u64(&d, j, "", "finished_at", &r->finished_at, true)) ||
	    (rc = rd_obj(&d, j, "", "options", false, &o)))
		return rc;
	fwd_utf8_clean(r->created_by);
	ctl_rollout_opts_default(&r->opts);
	if ((rc = ctl_rollout_opts_from_json(&r->opts, o, err)))
		return rc;
	if ((rc = rd_str(&d, j, "", "state", s, sizeof(s), false, NULL)))
		return rc;
	st = name_index(state_names, CTL_RO_STATE_MAX, s);
	if (st < 0)
		return rd_fail(&d, "", "state", "is not a rollout state");
	r->state = (enum ctl_rollout_state)st;
	if ((rc = rd_int(&d, j, "", "waves", 0, CTL_ROLLOUT_NODES_MAX, &r->n_waves)) ||
	    /* A rollout that finished before its plan (aborted while pending,
	     * no nodes, every node already on the table) has no waves and wave
	     * 0: the driver writes it so. */
	    (rc = rd_int(&d, j, "", "wave", -1,
			 r->n_waves ? r->n_waves - 1
			 : r->state == CTL_RO_ABORTED || r->state == CTL_RO_COMPLETED ? 0
										      : -1,
			 &r->wave)) ||
	    (rc = rd_u64(&d, j, "", "since", &r->since, false)) ||
	    (rc = rd_bool(&d, j, "", "abort_requested", &r->abort_requested)) ||
	    (rc = rd_u64(&d, j, "", "writes", &r->writes, false)) ||
	    (rc = rd_obj(&d, j, "", "abort", true, &o)))
		return rc;
	if (o && ((rc = rd_known(&d, o, "abort", akeys)) ||
		  (rc = rd_str(&d, o, "abort", "gate", r->abort_gate, sizeof(r->abort_gate), false,
			       check_token)) ||
		  (rc = rd_str(&d, o, "abort", "node", r->abort_node, sizeof(r->abort_node), true,
			       check_name)) ||
		  (rc = rd_str(&d, o, "abort", "reason", r->abort_reason, sizeof(r->abort_reason),
			       false, NULL))))
		return rc;
	fwd_utf8_clean(r->abort_reason);
	if ((r->state == CTL_RO_PENDING) != (r->wave < 0))
		return rd_fail(&d, "", "wave", "a pending rollout has no wave, any other has one");
	nodes = json_object_get(j, "nodes");
	if (!json_is_array(nodes))
		return rd_fail(&d, "", "nodes", "must be an array");
	if (json_array_size(nodes) > CTL_ROLLOUT_NODES_MAX)
		return rd_fail(&d, "", "nodes", "too many nodes");
	for (size_t i = 0; i < json_array_size(nodes); i++) {
		char path[32];

		snprintf(path, sizeof(path), "nodes[%zu]", i);
		if ((rc = rnode_from_json(&d, json_array_get(nodes, i), path, &r->nodes[i],
					  r->n_waves)))
			return rc;
		for (size_t k = 0; k < i; k++)
			if (strcmp(r->nodes[k].name, r->nodes[i].name) == 0)
				return rd_fail(&d, path, "name", "appears twice");
		r->n_nodes = (unsigned)i + 1;
	}
	/* A plan places a node in every wave (the canaries in 0, the rest in
	 * waves of opts.wave): a record past pending whose waves hold no node
	 * was not written by a driver, and stepping it would promote its table
	 * at once with no node ever gated (found by a hostile probe). */
	if (r->state == CTL_RO_SYNCING || r->state == CTL_RO_BAKING) {
		for (int w = 0; w < r->n_waves; w++) {
			unsigned k = 0;

			while (k < r->n_nodes && r->nodes[k].wave != w)
				k++;
			if (k == r->n_nodes) {
				char why[64];

				snprintf(why, sizeof(why), "wave %d of the plan holds no node", w);
				return rd_fail(&d, "", "nodes", why);
			}
		}
	}
	return 0;
}

int ctl_rollout_parse(const char *buf, size_t len, struct ctl_rollout *r, struct fwd_err *err)
{
	struct rd d = {err, "rollout"};
	json_t *j = load(&d, buf, len, RECORD_MAX);
	int rc;

	if (j == NULL)
		return -EINVAL;
	rc = ctl_rollout_from_json(j, r, err);
	json_decref(j);
	return rc;
}

int ctl_rollout_init(struct ctl_rollout *r, const char *id, const char *facility, const char *table,
		     const char *previous, const struct ctl_rollout_opts *o, const char *created_by,
		     uint64_t now_ms, struct fwd_err *err)
{
	struct rd d = {err, "rollout"};

	memset(r, 0, sizeof(*r));
	if (id == NULL || !name_ok(id, CTL_ROLLOUT_ID_MAX))
		return rd_fail(&d, "", "id", "must be [a-z0-9-]{1,40}");
	if (facility == NULL || !name_ok(facility, CTL_ROLLOUT_FAC_MAX))
		return rd_fail(&d, "", "facility", "must be [a-z0-9-]{1,32}");
	if (table == NULL || !hash_ok(table))
		return rd_fail(&d, "", "table", "must be 16 lowercase hex digits");
	if (previous && *previous && !hash_ok(previous))
		return rd_fail(&d, "", "previous", "must be 16 lowercase hex digits");
	if (opts_check(&d, o))
		return -EINVAL;
	snprintf(r->id, sizeof(r->id), "%s", id);
	snprintf(r->facility, sizeof(r->facility), "%s", facility);
	snprintf(r->table, sizeof(r->table), "%s", table);
	snprintf(r->previous, sizeof(r->previous), "%s", previous ? previous : "");
	snprintf(r->created_by, sizeof(r->created_by), "%s", created_by ? created_by : "");
	fwd_utf8_clean(r->created_by);
	r->opts = *o;
	r->state = CTL_RO_PENDING;
	r->wave = -1;
	r->created_at = r->updated_at = r->since = now_ms;
	return 0;
}

/* ---- the gates --------------------------------------------------------- */

/* What a gate sees of one node of the wave. */
struct gate_ctx {
	const struct ctl_rollout *r;
	const struct ctl_rollout_rnode *rn;
	const struct ctl_rollout_node *rep;
	uint64_t now;
};

#define GATE_SYNCING (1u << CTL_RO_SYNCING)
#define GATE_BAKING (1u << CTL_RO_BAKING)

static bool runs_table(const struct ctl_rollout_node *rep, const char *table)
{
	return strcmp(rep->running, table) == 0 &&
	       (rep->in_sync || rep->state == CTL_NODE_VALIDATE_ONLY);
}

static bool gate_apply_error(const struct gate_ctx *g, char *why, size_t len)
{
	const struct ctl_rollout_node *n = g->rep;

	if (n->apply_error && (!n->error_table[0] || strcmp(n->error_table, g->r->table) == 0)) {
		snprintf(why, len, "did not apply %s: %s", g->r->table,
			 n->error_reason[0] ? n->error_reason : "no reason given");
		return true;
	}
	if (n->state == CTL_NODE_FAILED && strcmp(n->target, g->r->table) == 0) {
		snprintf(why, len, "reports state failed for %s", g->r->table);
		return true;
	}
	return false;
}

/* The node runs the rollout's table, in sync, and aims at it (not at a pin
 * or desired table that has moved on). */
static bool reports_synced(const struct ctl_rollout_node *rep, const char *table)
{
	return runs_table(rep, table) && strcmp(rep->target, table) == 0;
}

/* Judged on what the report says when the leader looks: a node in sync by
 * then is synced even when the leader looks after the deadline (a slow
 * round, a takeover, an etcd outage), since the timeout is there to stop a
 * rollout waiting on a stuck node, not to punish the leader's lateness. */
static bool gate_sync_timeout(const struct gate_ctx *g, char *why, size_t len)
{
	uint64_t deadline = g->r->since + (uint64_t)g->r->opts.sync_timeout_s * 1000;

	if (g->rn->status != CTL_RN_PINNED || g->now < deadline ||
	    reports_synced(g->rep, g->r->table))
		return false;
	snprintf(why, len, "did not report %s in sync within %u s", g->r->table,
		 g->r->opts.sync_timeout_s);
	return true;
}

static bool gate_out_of_sync(const struct gate_ctx *g, char *why, size_t len)
{
	if (runs_table(g->rep, g->r->table))
		return false;
	snprintf(why, len, "left %s while baking (runs %s, in_sync %s)", g->r->table,
		 g->rep->running[0] ? g->rep->running : "nothing",
		 g->rep->in_sync ? "true" : "false");
	return true;
}

/* A link down now that was up at the baseline. Both sides keep the count
 * and the first CTL_ROLLOUT_LINKS_MAX names in name order. It fails on a
 * kept name the baseline lacks when the baseline's names were all kept, or
 * when it sorts before the baseline's last kept name (it would have been
 * kept had it been down); and on more links down than the baseline had
 * still down: its count less its kept names that are up now (missing from
 * the current names where those were all kept or sort past it). Not seen:
 * a link that came up and one that went down meanwhile, both past the
 * kept names (docs/fleet.md). */
static bool gate_link_down(const struct gate_ctx *g, char *why, size_t len)
{
	const unsigned nb = g->rn->n_base_links, kb = kept_links(nb);
	const unsigned nc = g->rep->n_links_down, kc = kept_links(nc);
	unsigned up = 0;

	if (!g->r->opts.link_gate)
		return false;
	for (unsigned i = 0; i < kc; i++) {
		const char *l = g->rep->links_down[i];
		unsigned k;

		for (k = 0; k < kb; k++)
			if (strcmp(g->rn->base_links[k], l) == 0)
				break;
		if (k == kb &&
		    (nb <= CTL_ROLLOUT_LINKS_MAX || strcmp(l, g->rn->base_links[kb - 1]) < 0)) {
			snprintf(why, len, "link %s went down (it was up before the wave)", l);
			return true;
		}
	}
	for (unsigned k = 0; k < kb; k++) {
		const char *b = g->rn->base_links[k];
		unsigned i;

		for (i = 0; i < kc; i++)
			if (strcmp(g->rep->links_down[i], b) == 0)
				break;
		if (i == kc &&
		    (nc <= CTL_ROLLOUT_LINKS_MAX || strcmp(b, g->rep->links_down[kc - 1]) < 0))
			up++;
	}
	if (nc + up > nb) {
		snprintf(why, len, "%u links are down, %u before the wave (%u of them up again)",
			 nc, nb, up);
		return true;
	}
	return false;
}

static bool gate_health(const struct gate_ctx *g, char *why, size_t len)
{
	if (g->rep->health <= (int)g->r->opts.max_health || g->rep->health <= g->rn->base_health)
		return false;
	snprintf(why, len, "health code %d (allowed %u, %d before the wave)", g->rep->health,
		 g->r->opts.max_health, g->rn->base_health);
	return true;
}

/* The rate of each reason over the bake so far (counters at the bake's
 * start to the latest report, on the node's own clock) against the rate
 * before the wave: it fails when it is both max_drop_pps above and
 * max_drop_pct of the rate before, so a busy box's noise and a quiet box's
 * first drops are both told from a jump. */
static bool gate_drop_rate(const struct gate_ctx *g, char *why, size_t len)
{
	const struct ctl_rollout_rnode *rn = g->rn;
	const struct ctl_rollout_node *n = g->rep;
	uint64_t dt;

	if (rn->bake_at == 0 || n->updated_at < rn->bake_at + 1000)
		return false; /* less than a second of bake on its clock: no rate yet */
	dt = n->updated_at - rn->bake_at;
	for (unsigned i = 0; i < n->n_drops; i++) {
		uint64_t then =
			drop_count(rn->bake_drops, rn->n_bake_drops, n->drops[i].reason, NULL);
		double base = (double)drop_count(rn->base_rates, rn->n_base_rates,
						 n->drops[i].reason, NULL);
		double rate;

		if (n->drops[i].count < then)
			continue; /* regionfwd restarted */
		rate = (double)(n->drops[i].count - then) * 1000.0 / (double)dt;
		if (rate > base + g->r->opts.max_drop_pps &&
		    rate * 100.0 > base * g->r->opts.max_drop_pct) {
			snprintf(why, len,
				 "%s drops at %.0f/s during the bake, %.0f/s before the wave "
				 "(allowed +%u/s and %u%%)",
				 n->drops[i].reason, rate, base, g->r->opts.max_drop_pps,
				 g->r->opts.max_drop_pct);
			return true;
		}
	}
	return false;
}

static const struct gate {
	const char *name;
	unsigned phases; /* GATE_SYNCING | GATE_BAKING */
	bool (*fails)(const struct gate_ctx *g, char *why, size_t len);
	const char *fails_when;
} gates[] = {
	{"apply_error", GATE_SYNCING | GATE_BAKING, gate_apply_error,
	 "a node of the wave refuses or fails to apply the table (state failed, apply_error)"},
	{"sync_timeout", GATE_SYNCING, gate_sync_timeout,
	 "a node of the wave does not report the table in sync within sync_timeout_s"},
	{"out_of_sync", GATE_BAKING, gate_out_of_sync,
	 "a node of the wave stops running the table in sync while it bakes"},
	{"link_down", GATE_BAKING, gate_link_down,
	 "a link of a node of the wave is down that was up before the wave (link_gate)"},
	{"health", GATE_BAKING, gate_health,
	 "a node's health code rises above max_health and above its code before the wave"},
	{"drop_rate", GATE_BAKING, gate_drop_rate,
	 "a drop reason's rate during the bake exceeds its rate before the wave by "
	 "max_drop_pps and max_drop_pct"},
};

#define N_GATES (sizeof(gates) / sizeof(gates[0]))

static struct ctl_rollout_gate_info gate_info[N_GATES];

static void fill_gate_info(void)
{
	for (size_t i = 0; i < N_GATES; i++)
		gate_info[i] = (struct ctl_rollout_gate_info){gates[i].name, gates[i].fails_when};
}

size_t ctl_rollout_gates(const struct ctl_rollout_gate_info **out)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	/* Once: API threads ask at once, and a store per call, the same
	 * values or not, is a data race (ThreadSanitizer said so). */
	pthread_once(&once, fill_gate_info);
	*out = gate_info;
	return N_GATES;
}

/* ---- the step ---------------------------------------------------------- */

/* A node's readable report, or NULL (gone, or unreadable: see
 * first_unreadable(), which aborts a rollout before this is asked). */
static const struct ctl_rollout_node *report_of(const struct ctl_rollout_node *nodes, size_t n,
						const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(nodes[i].name, name) == 0)
			return nodes[i].unreadable ? NULL : &nodes[i];
	return NULL;
}

static const struct ctl_rollout_node *first_unreadable(const struct ctl_rollout_node *nodes,
						       size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (nodes[i].unreadable)
			return &nodes[i];
	return NULL;
}

static bool has_label(const struct ctl_rollout_node *n, const char *kv)
{
	const char *eq = strchr(kv, '=');

	for (unsigned i = 0; eq && i < n->n_labels; i++)
		if (strlen(n->labels[i].key) == (size_t)(eq - kv) &&
		    strncmp(n->labels[i].key, kv, (size_t)(eq - kv)) == 0 &&
		    strcmp(n->labels[i].value, eq + 1) == 0)
			return true;
	return false;
}

static void set_abort(struct ctl_rollout *r, const char *gate, const char *node, const char *why)
{
	snprintf(r->abort_gate, sizeof(r->abort_gate), "%s", gate);
	snprintf(r->abort_node, sizeof(r->abort_node), "%s", node ? node : "");
	snprintf(r->abort_reason, sizeof(r->abort_reason), "%s", why);
	fwd_utf8_clean(r->abort_reason);
}

static void finish(struct ctl_rollout *r, enum ctl_rollout_state s, uint64_t now,
		   struct ctl_rollout_actions *act)
{
	r->state = s;
	r->finished_at = now;
	act->finish = true;
}

/* Pin every node this rollout changed back to previous; with no previous
 * table in the facility there is nothing to pin back to: the pins go and
 * the nodes are recorded unreverted. */
static void begin_abort(struct ctl_rollout *r, const char *gate, const char *node, const char *why,
			uint64_t now, struct ctl_rollout_actions *act)
{
	bool any = false;

	set_abort(r, gate, node, why);
	for (unsigned i = 0; i < r->n_nodes; i++) {
		struct ctl_rollout_rnode *rn = &r->nodes[i];

		if (!rn->pinned)
			continue;
		if (rn->status == CTL_RN_LOST || !r->previous[0]) {
			/* Without its pin a node follows desired, which is previous. */
			act->pin[i] = CTL_PIN_DELETE;
			rn->pinned = false;
			if (rn->status != CTL_RN_LOST)
				rn->status = CTL_RN_UNREVERTED;
			continue;
		}
		act->pin[i] = CTL_PIN_PREVIOUS;
		rn->status = CTL_RN_REVERTING;
		any = true;
	}
	r->state = CTL_RO_ABORTING;
	r->since = now;
	if (!any)
		finish(r, CTL_RO_ABORTED, now, act);
}

static void promote(struct ctl_rollout *r, uint64_t now, struct ctl_rollout_actions *act)
{
	for (unsigned i = 0; i < r->n_nodes; i++)
		if (r->nodes[i].pinned) {
			act->pin[i] = CTL_PIN_DELETE;
			r->nodes[i].pinned = false;
		}
	act->promote = true;
	finish(r, CTL_RO_COMPLETED, now, act);
}

static void baseline(struct ctl_rollout_rnode *rn, const struct ctl_rollout_node *rep)
{
	rn->base_health = rep->health;
	rn->n_base_links = rep->n_links_down;
	memcpy(rn->base_links, rep->links_down, sizeof(rn->base_links));
	rn->n_base_rates = 0;
	for (unsigned i = 0; i < rep->n_drops; i++) {
		double rate = ctl_rollout_drop_rate(rep->prev, rep, rep->drops[i].reason);

		if (rate <= 0)
			continue; /* unknown or none: compared with 0 */
		snprintf(rn->base_rates[rn->n_base_rates].reason, sizeof(rn->base_rates[0].reason),
			 "%s", rep->drops[i].reason);
		rn->base_rates[rn->n_base_rates++].count = (uint64_t)ceil(rate);
	}
}

/* Start wave @w (or promote when there is none left). A wave whose nodes
 * all vanished is skipped, but for the canary: without it there is no
 * evidence to go on. */
static void start_wave(struct ctl_rollout *r, int w, const struct ctl_rollout_node *nodes,
		       size_t n_nodes, uint64_t now, struct ctl_rollout_actions *act)
{
	for (; w < r->n_waves; w++) {
		unsigned live = 0;

		for (unsigned i = 0; i < r->n_nodes; i++) {
			struct ctl_rollout_rnode *rn = &r->nodes[i];
			const struct ctl_rollout_node *rep;

			if (rn->wave != w)
				continue;
			rep = report_of(nodes, n_nodes, rn->name);
			if (rep == NULL) {
				rn->status = CTL_RN_LOST;
				continue;
			}
			baseline(rn, rep);
			rn->status = CTL_RN_PINNED;
			rn->pinned = true;
			act->pin[i] = CTL_PIN_TABLE;
			live++;
		}
		if (live) {
			r->wave = w;
			r->state = CTL_RO_SYNCING;
			r->since = now;
			return;
		}
		if (w == 0) {
			r->wave = 0;
			begin_abort(r, "node_lost", NULL,
				    "every canary node vanished before its wave", now, act);
			return;
		}
	}
	promote(r, now, act);
}

static int cmp_report(const void *a, const void *b)
{
	return strcmp((*(const struct ctl_rollout_node *const *)a)->name,
		      (*(const struct ctl_rollout_node *const *)b)->name);
}

/* The plan, from the nodes that report now: those already on the table stay
 * out; the canaries (by label, then by count, by name) are wave 0; the rest
 * by name in waves of opts.wave. */
static void plan(struct ctl_rollout *r, const struct ctl_rollout_node *nodes, size_t n_nodes,
		 uint64_t now, struct ctl_rollout_actions *act)
{
	const struct ctl_rollout_node *sorted[CTL_ROLLOUT_NODES_MAX];
	unsigned n_change = 0, n_canary = 0, rest = 0;
	char why[160];

	if (n_nodes == 0) {
		snprintf(why, sizeof(why), "no node of facility %s reports", r->facility);
		set_abort(r, "no_nodes", NULL, why);
		r->wave = 0;
		finish(r, CTL_RO_ABORTED, now, act);
		return;
	}
	if (n_nodes > CTL_ROLLOUT_NODES_MAX) {
		snprintf(why, sizeof(why), "%zu nodes report, a rollout handles %d", n_nodes,
			 CTL_ROLLOUT_NODES_MAX);
		set_abort(r, "too_many_nodes", NULL, why);
		r->wave = 0;
		finish(r, CTL_RO_ABORTED, now, act);
		return;
	}
	for (size_t i = 0; i < n_nodes; i++)
		sorted[i] = &nodes[i];
	qsort(sorted, n_nodes, sizeof(sorted[0]), cmp_report);
	r->n_nodes = (unsigned)n_nodes;
	for (size_t i = 0; i < n_nodes; i++) {
		struct ctl_rollout_rnode *rn = &r->nodes[i];

		memset(rn, 0, sizeof(*rn));
		snprintf(rn->name, sizeof(rn->name), "%s", sorted[i]->name);
		rn->base_health = sorted[i]->health;
		if (runs_table(sorted[i], r->table) && !sorted[i]->apply_error) {
			rn->wave = -1;
			rn->status = CTL_RN_ALREADY;
			continue;
		}
		rn->wave = -2; /* to be placed */
		rn->status = CTL_RN_WAITING;
		n_change++;
	}
	for (unsigned i = 0; i < r->n_nodes; i++) {
		struct ctl_rollout_rnode *rn = &r->nodes[i];
		bool canary =
			r->opts.canary_label[0] ? has_label(sorted[i], r->opts.canary_label) : true;

		if (rn->wave != -2 || !canary || (r->opts.canary && n_canary >= r->opts.canary) ||
		    n_canary >= CTL_ROLLOUT_WAVE_MAX)
			continue;
		rn->wave = 0;
		n_canary++;
	}
	if (n_change == 0) {
		r->wave = 0;
		r->n_waves = 0;
		promote(r, now, act);
		return;
	}
	if (n_canary == 0) {
		snprintf(why, sizeof(why), "no node to change has the label %s",
			 r->opts.canary_label);
		set_abort(r, "no_canary", NULL, why);
		r->wave = 0;
		r->n_waves = 1;
		for (unsigned i = 0; i < r->n_nodes; i++)
			if (r->nodes[i].wave == -2)
				r->nodes[i].wave = 0;
		finish(r, CTL_RO_ABORTED, now, act);
		return;
	}
	for (unsigned i = 0; i < r->n_nodes; i++)
		if (r->nodes[i].wave == -2)
			r->nodes[i].wave = 1 + (int)(rest++ / r->opts.wave);
	r->n_waves = 1 + (int)((rest + r->opts.wave - 1) / r->opts.wave);
	start_wave(r, 0, nodes, n_nodes, now, act);
}

/* The first gate that fails for a node of the wave, or NULL. */
static const struct gate *gates_fail(const struct gate_ctx *g, char *why, size_t len)
{
	for (size_t i = 0; i < N_GATES; i++)
		if ((gates[i].phases & (1u << g->r->state)) && gates[i].fails(g, why, len))
			return &gates[i];
	return NULL;
}

static bool rates_ready(const struct ctl_rollout_node *nodes, size_t n_nodes)
{
	for (size_t i = 0; i < n_nodes; i++)
		if (nodes[i].prev == NULL && !nodes[i].unreadable)
			return false;
	return true;
}

static void step_wave(struct ctl_rollout *r, const struct ctl_rollout_node *nodes, size_t n_nodes,
		      uint64_t now, struct ctl_rollout_actions *act)
{
	unsigned live = 0, synced = 0;
	char why[256];

	for (unsigned i = 0; i < r->n_nodes; i++) {
		struct ctl_rollout_rnode *rn = &r->nodes[i];
		struct gate_ctx g = {r, rn, NULL, now};
		const struct gate *failed;

		if (rn->wave != r->wave ||
		    (rn->status != CTL_RN_PINNED && rn->status != CTL_RN_SYNCED))
			continue;
		g.rep = report_of(nodes, n_nodes, rn->name);
		if (g.rep == NULL) {
			rn->status = CTL_RN_LOST;
			act->write = true;
			continue;
		}
		failed = gates_fail(&g, why, sizeof(why));
		if (failed) {
			begin_abort(r, failed->name, rn->name, why, now, act);
			return;
		}
		live++;
		if (r->state == CTL_RO_SYNCING && reports_synced(g.rep, r->table)) {
			rn->status = CTL_RN_SYNCED;
			rn->bake_at = g.rep->updated_at;
			rn->n_bake_drops = g.rep->n_drops;
			memcpy(rn->bake_drops, g.rep->drops, sizeof(rn->bake_drops));
			act->write = true;
		}
		synced += rn->status == CTL_RN_SYNCED;
	}
	if (live == 0) {
		if (r->wave == 0) {
			begin_abort(r, "node_lost", NULL,
				    "every canary node vanished during its wave", now, act);
			return;
		}
		start_wave(r, r->wave + 1, nodes, n_nodes, now, act);
		return;
	}
	if (r->state == CTL_RO_SYNCING) {
		if (synced == live) {
			r->state = CTL_RO_BAKING;
			r->since = now;
			act->write = true;
			act->wake_at = now + (uint64_t)r->opts.bake_s * 1000;
		} else {
			act->wake_at = r->since + (uint64_t)r->opts.sync_timeout_s * 1000;
		}
		return;
	}
	if (now < r->since + (uint64_t)r->opts.bake_s * 1000) {
		act->wake_at = r->since + (uint64_t)r->opts.bake_s * 1000;
		return;
	}
	/* The next wave's baseline needs rates: a leader that just took over
	 * has one report of each node yet. */
	if (!rates_ready(nodes, n_nodes) &&
	    now < r->since + ((uint64_t)r->opts.bake_s + r->opts.sync_timeout_s) * 1000) {
		act->wake_at = now + 1000;
		return;
	}
	for (unsigned i = 0; i < r->n_nodes; i++)
		if (r->nodes[i].wave == r->wave && r->nodes[i].status == CTL_RN_SYNCED)
			r->nodes[i].status = CTL_RN_DONE;
	start_wave(r, r->wave + 1, nodes, n_nodes, now, act);
}

static void step_abort(struct ctl_rollout *r, const struct ctl_rollout_node *nodes, size_t n_nodes,
		       uint64_t now, struct ctl_rollout_actions *act)
{
	bool timeout = now >= r->since + (uint64_t)r->opts.sync_timeout_s * 1000;
	unsigned left = 0;

	for (unsigned i = 0; i < r->n_nodes; i++) {
		struct ctl_rollout_rnode *rn = &r->nodes[i];
		const struct ctl_rollout_node *rep;

		if (rn->status != CTL_RN_REVERTING)
			continue;
		rep = report_of(nodes, n_nodes, rn->name);
		if (rep == NULL || runs_table(rep, r->previous) || timeout) {
			rn->status = rep == NULL		    ? CTL_RN_LOST
				     : runs_table(rep, r->previous) ? CTL_RN_REVERTED
								    : CTL_RN_UNREVERTED;
			act->pin[i] = CTL_PIN_DELETE;
			rn->pinned = false;
			act->write = true;
			continue;
		}
		left++;
	}
	if (left == 0)
		finish(r, CTL_RO_ABORTED, now, act);
	else
		act->wake_at = r->since + (uint64_t)r->opts.sync_timeout_s * 1000;
}

int ctl_rollout_step(struct ctl_rollout *r, const struct ctl_rollout_node *nodes, size_t n_nodes,
		     uint64_t now, struct ctl_rollout_actions *act)
{
	enum ctl_rollout_state state0 = r->state;
	const struct ctl_rollout_node *bad;
	int wave0 = r->wave;

	memset(act, 0, sizeof(*act));
	if ((unsigned)r->state >= CTL_RO_STATE_MAX || r->n_nodes > CTL_ROLLOUT_NODES_MAX)
		return -EINVAL;
	/* A phase that began in the future (a forged or hand-edited record, or
	 * a clock far off) would wait for ever, silently: it does not hold
	 * together, which the driver reports and does not act on. Regionds'
	 * clocks may differ by a little; CTL_ROLLOUT_SKEW_MS is much more. An
	 * operator's abort of such a record goes on, its phase from now. */
	if (r->since > now + CTL_ROLLOUT_SKEW_MS) {
		if (!r->abort_requested)
			return -EINVAL;
		r->since = now;
	}
	/* A node of the facility whose report cannot be read (a label or a
	 * bound the parser refuses, a corrupt key) would take the table at
	 * promotion without a gate having seen it: no rollout goes on past
	 * it. Before the plan nothing is pinned; later the wave reverts. */
	bad = first_unreadable(nodes, n_nodes);
	if (bad && !r->abort_requested &&
	    (r->state == CTL_RO_PENDING || r->state == CTL_RO_SYNCING ||
	     r->state == CTL_RO_BAKING)) {
		char why[256];

		snprintf(why, sizeof(why), "the report %s%.48s cannot be read: %.140s",
			 bad->name[0] ? "of node " : "under a key that names no node", bad->name,
			 bad->unreadable_why);
		/* A key that is no node's name ("N1.old") has none: the record
		 * names nodes by the rule its reader checks. */
		const char *who = bad->name[0] ? bad->name : NULL;

		if (r->state == CTL_RO_PENDING) {
			set_abort(r, "unreadable_report", who, why);
			r->wave = 0;
			finish(r, CTL_RO_ABORTED, now, act);
		} else {
			begin_abort(r, "unreadable_report", who, why, now, act);
		}
		goto done;
	}
	switch (r->state) {
	case CTL_RO_PENDING:
		if (r->abort_requested) {
			set_abort(r, "operator", NULL, "aborted by the operator before it began");
			r->wave = 0;
			finish(r, CTL_RO_ABORTED, now, act);
			break;
		}
		/* Rates need two reports of every node: wait for them, but no
		 * longer than a sync timeout (a node whose report never moves
		 * gets a baseline of 0, the stricter comparison). */
		if (!rates_ready(nodes, n_nodes) &&
		    now < r->since + (uint64_t)r->opts.sync_timeout_s * 1000) {
			act->wake_at = now + 1000;
			return 0;
		}
		plan(r, nodes, n_nodes, now, act);
		break;
	case CTL_RO_SYNCING:
	case CTL_RO_BAKING:
		if (r->abort_requested) {
			begin_abort(r, "operator", NULL, "aborted by the operator", now, act);
			break;
		}
		step_wave(r, nodes, n_nodes, now, act);
		break;
	case CTL_RO_ABORTING:
		step_abort(r, nodes, n_nodes, now, act);
		break;
	case CTL_RO_COMPLETED:
	case CTL_RO_ABORTED:
		act->finish = true; /* a record left behind by a driver that died mid-way */
		break;
	default:
		return -EINVAL;
	}
done:
	if (r->state != state0 || r->wave != wave0 || act->finish || act->promote)
		act->write = true;
	for (unsigned i = 0; i < r->n_nodes && !act->write; i++)
		act->write = act->pin[i] != CTL_PIN_KEEP;
	if (act->write) {
		r->updated_at = now;
		if (!act->finish && act->wake_at == 0)
			act->wake_at = now; /* a new state: look again at once */
	}
	return 0;
}
