#include "ctl_api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_http.h"
#include "ctl_model.h"

struct ctl_api {
	struct MHD_Daemon *unix_d, *tcp_d;
	int unix_fd;
	char unix_path[108];
	struct ctl_state *st;
	pthread_mutex_t *lock;
	const char *token;
	size_t max_body;
	int64_t started;
	struct ctl_api_filters filters;
};

struct req {
	char *body;
	size_t len, cap;
	int too_big;
	int tcp;
};

struct reply {
	int status;
	json_t *body; /* JSON, or NULL with text */
	char *text;
	const char *ctype;
};

static json_t *err_json(const struct fwd_err *e)
{
	return json_pack("{s:{s:s, s:s, s:s, s:s, s:i}}", "error", "code",
			 fwd_reason_name(e->reason_code), "path", e->path, "reason", e->reason,
			 "file", e->file, "line", (int)e->line);
}

static void reply_err(struct reply *r, const struct fwd_err *e)
{
	r->status = ctl_http_status(e->reason_code);
	r->body = err_json(e);
}

static void reply_simple(struct reply *r, enum fwd_reason reason, const char *path,
			 const char *text)
{
	struct fwd_err e;

	fwd_err_fail(&e, reason, NULL, 0, path, "%s", text);
	reply_err(r, &e);
}

/* Request bodies are JSON objects; a bad one gets a 400 naming why. */
static json_t *body_json(const struct req *q, struct reply *r)
{
	json_error_t je;
	json_t *j;
	char reason[300];

	if (q->len == 0) {
		reply_simple(r, FWD_R_BAD_REQUEST, "", "a JSON object body is required");
		return NULL;
	}
	j = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL || !json_is_object(j)) {
		snprintf(reason, sizeof(reason), "body is not a JSON object%s%s (line %d, column %d)",
			 j ? "" : ": ", j ? "" : je.text, je.line, je.column);
		json_decref(j);
		reply_simple(r, FWD_R_BAD_REQUEST, "", reason);
		return NULL;
	}
	return j;
}

/* Optional fields with their types checked; 400 names the field. */
static int opt_str(json_t *b, const char *key, size_t max, const char **out, struct reply *r)
{
	json_t *v = json_object_get(b, key);
	char reason[128];

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) > max) {
		snprintf(reason, sizeof(reason), "'%s' must be a string of at most %zu bytes", key, max);
		reply_simple(r, FWD_R_BAD_REQUEST, key, reason);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

static int opt_int(json_t *b, const char *key, int64_t min, int64_t max, int64_t *out,
		   struct reply *r)
{
	json_t *v = json_object_get(b, key);
	char reason[128];

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		snprintf(reason, sizeof(reason), "'%s' must be an integer in %" PRId64 "..%" PRId64, key,
			 min, max);
		reply_simple(r, FWD_R_BAD_REQUEST, key, reason);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

static int check_keys(json_t *b, const char *const *keys, struct reply *r)
{
	const char *k;
	json_t *v;
	char reason[200];

	json_object_foreach(b, k, v) {
		int ok = 0;

		for (int i = 0; keys[i]; i++)
			ok |= strcmp(k, keys[i]) == 0;
		if (!ok) {
			snprintf(reason, sizeof(reason), "unknown field '%.100s'", k);
			reply_simple(r, FWD_R_BAD_REQUEST, k, reason);
			return -1;
		}
	}
	return 0;
}

static int confirm_pending(struct ctl_state *st, struct reply *r)
{
	char reason[200];

	if (!st->confirm_gen)
		return 0;
	snprintf(reason, sizeof(reason),
		 "generation %" PRIu64 " awaits confirmation (reverts in %" PRId64
		 " s); confirm it first",
		 st->confirm_gen, st->confirm_deadline - (int64_t)time(NULL));
	reply_simple(r, FWD_R_CONFIRM_PENDING, "", reason);
	return 1;
}

static json_t *gen_json(const struct ctl_gen *g)
{
	char h[17];

	if (g == NULL)
		return json_null();
	snprintf(h, sizeof(h), "%016" PRIx64, g->hash);
	return json_pack("{s:I, s:s, s:I, s:s, s:s}", "id", (json_int_t)g->id, "hash", h, "time",
			 (json_int_t)g->time, "author", g->author, "comment", g->comment);
}

/* Apply and answer with the new generation (or the no-op). */
static void do_apply(struct ctl_api *api, struct reply *r, const char *doc, size_t len,
		     const char *author, const char *comment, int64_t expected, int64_t confirm_s)
{
	struct ctl_state *st = api->st;
	const struct ctl_gen *before = ctl_state_current(st);
	uint64_t prev = before ? before->id : 0;
	struct fwd_err e;
	int64_t id = ctl_state_apply(st, doc, len, author ? author : "api", comment, expected, 1, &e);

	if (id < 0) {
		reply_err(r, &e);
		return;
	}
	if (id > 0 && confirm_s > 0) {
		st->confirm_gen = (uint64_t)id;
		st->revert_to = prev;
		st->confirm_deadline = (int64_t)time(NULL) + confirm_s;
		ctl_state_save(st, &e);
	}
	r->status = 200;
	r->body = json_pack("{s:o, s:b}", "generation", gen_json(ctl_state_current(st)), "changed",
			    id > 0);
	if (id > 0 && confirm_s > 0)
		json_object_set_new(r->body, "confirm_by", json_integer(st->confirm_deadline));
}

static void h_put_table(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"document", "expected_generation", "author", "comment",
					   "confirm_timeout_s", NULL};
	json_t *b = body_json(q, r);
	const char *doc, *author, *comment;
	int64_t expected = -1, confirm = 0;

	if (b == NULL)
		return;
	if (check_keys(b, keys, r) || opt_str(b, "author", 63, &author, r) ||
	    opt_str(b, "comment", 255, &comment, r) ||
	    opt_int(b, "expected_generation", 0, INT64_MAX, &expected, r) ||
	    opt_int(b, "confirm_timeout_s", 1, 86400, &confirm, r))
		goto out;
	if (!json_is_string(json_object_get(b, "document"))) {
		reply_simple(r, FWD_R_BAD_REQUEST, "document", "'document' (the table, YAML or JSON text) is required");
		goto out;
	}
	if (json_object_get(b, "expected_generation") == NULL) {
		reply_simple(r, FWD_R_BAD_REQUEST, "expected_generation",
			     "'expected_generation' is required: the generation this table replaces (0 for none)");
		goto out;
	}
	if (confirm_pending(api->st, r))
		goto out;
	doc = json_string_value(json_object_get(b, "document"));
	do_apply(api, r, doc, json_string_length(json_object_get(b, "document")), author, comment,
		 expected, confirm);
out:
	json_decref(b);
}

static const char *canon_prefix(const char *s, char *buf, size_t len)
{
	char a[64];
	unsigned char bin[16];
	const char *slash = s ? strchr(s, '/') : NULL;
	int fam;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(a))
		return NULL;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	fam = strchr(a, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(fam, a, bin) != 1 || !inet_ntop(fam, bin, a, sizeof(a)))
		return NULL;
	snprintf(buf, len, "%s/%s", a, slash + 1);
	return buf;
}

/* Apply one PATCH change to the model; 0, or -1 with the reply set. */
static int patch_one(json_t *m, json_t *c, size_t i, struct reply *r)
{
	const char *op = json_string_value(json_object_get(c, "op"));
	char path[64], reason[300];

	snprintf(path, sizeof(path), "changes[%zu]", i);
	if (op == NULL) {
		reply_simple(r, FWD_R_BAD_REQUEST, path, "each change needs an 'op'");
		return -1;
	}
	if (!strcmp(op, "add_prefixes") || !strcmp(op, "remove_prefixes")) {
		const char *region = json_string_value(json_object_get(c, "region"));
		json_t *reg = region ? json_object_get(json_object_get(m, "regions"), region) : NULL;
		json_t *list = json_object_get(c, "prefixes"), *have, *v;
		size_t k;

		if (reg == NULL) {
			snprintf(reason, sizeof(reason), "no region '%.60s'", region ? region : "(missing)");
			reply_simple(r, FWD_R_INVALID_CHANGE, path, reason);
			return -1;
		}
		if (!json_is_array(list)) {
			reply_simple(r, FWD_R_BAD_REQUEST, path, "'prefixes' must be a list");
			return -1;
		}
		have = json_object_get(reg, "prefixes");
		json_array_foreach(list, k, v) {
			char cb[80], cb2[80];
			const char *cp = canon_prefix(json_string_value(v), cb, sizeof(cb));
			size_t j;
			json_t *h;
			int found = 0;

			if (cp == NULL) {
				snprintf(reason, sizeof(reason), "prefixes[%zu] is not a prefix", k);
				reply_simple(r, FWD_R_INVALID_CHANGE, path, reason);
				return -1;
			}
			json_array_foreach(have, j, h) {
				if (strcmp(canon_prefix(json_string_value(h), cb2, sizeof(cb2)) ?: "", cp) == 0) {
					found = 1;
					if (op[0] == 'r') {
						json_array_remove(have, j);
						break;
					}
				}
			}
			if (op[0] == 'r' && !found) {
				snprintf(reason, sizeof(reason), "prefix %s is not in region '%s'", cp, region);
				reply_simple(r, FWD_R_INVALID_CHANGE, path, reason);
				return -1;
			}
			if (op[0] == 'a')
				json_array_append_new(have, json_string(json_string_value(v)));
		}
		return 0;
	}
	if (!strcmp(op, "set_weight")) {
		const char *g = json_string_value(json_object_get(c, "group"));
		const char *l = json_string_value(json_object_get(c, "link"));
		json_t *grp = g ? json_object_get(json_object_get(m, "link_groups"), g) : NULL;
		json_t *w = json_object_get(c, "weight");

		if (grp == NULL || l == NULL || !json_object_get(json_object_get(grp, "members"), l)) {
			reply_simple(r, FWD_R_INVALID_CHANGE, path, "no such group, or the link is not a member");
			return -1;
		}
		if (!json_is_integer(w)) {
			reply_simple(r, FWD_R_BAD_REQUEST, path, "'weight' must be an integer");
			return -1;
		}
		json_object_set(json_object_get(grp, "members"), l, w);
		return 0;
	}
	if (!strcmp(op, "set_link_state")) {
		const char *l = json_string_value(json_object_get(c, "link"));
		json_t *lk = l ? json_object_get(json_object_get(m, "links"), l) : NULL;
		json_t *s = json_object_get(c, "state");

		if (lk == NULL) {
			reply_simple(r, FWD_R_INVALID_CHANGE, path, "no such link");
			return -1;
		}
		if (!json_is_string(s)) {
			reply_simple(r, FWD_R_BAD_REQUEST, path, "'state' must be 'up' or 'down'");
			return -1;
		}
		json_object_set(lk, "state", s);
		return 0;
	}
	if (!strcmp(op, "add_policy")) {
		json_t *p = json_object_get(c, "policy");

		if (!json_is_object(p)) {
			reply_simple(r, FWD_R_BAD_REQUEST, path, "'policy' must be an object");
			return -1;
		}
		json_array_append(json_object_get(m, "policies"), p);
		return 0;
	}
	if (!strcmp(op, "remove_policy")) {
		const char *rg = json_string_value(json_object_get(c, "region"));
		const char *sv = json_string_value(json_object_get(c, "service"));
		json_t *pols = json_object_get(m, "policies"), *p;
		size_t j;

		json_array_foreach(pols, j, p) {
			/* Policies added earlier in this request come from the client
			 * and may lack either field: compare only real strings. */
			const char *pr = json_string_value(json_object_get(p, "region"));
			const char *ps = json_string_value(json_object_get(p, "service"));

			if (rg && sv && pr && ps && !strcmp(pr, rg) && !strcmp(ps, sv)) {
				json_array_remove(pols, j);
				return 0;
			}
		}
		reply_simple(r, FWD_R_INVALID_CHANGE, path, "no policy for that region and service");
		return -1;
	}
	snprintf(reason, sizeof(reason),
		 "unknown op '%.40s' (add_prefixes, remove_prefixes, set_weight, set_link_state, "
		 "add_policy, remove_policy)", op);
	reply_simple(r, FWD_R_BAD_REQUEST, path, reason);
	return -1;
}

static void h_patch_table(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"changes", "expected_generation", "author", "comment", NULL};
	json_t *b = body_json(q, r), *m = NULL, *changes, *c;
	const char *author, *comment;
	int64_t expected = -1;
	char *doc;
	size_t i;

	if (b == NULL)
		return;
	if (check_keys(b, keys, r) || opt_str(b, "author", 63, &author, r) ||
	    opt_str(b, "comment", 255, &comment, r) ||
	    opt_int(b, "expected_generation", 0, INT64_MAX, &expected, r))
		goto out;
	changes = json_object_get(b, "changes");
	if (!json_is_array(changes) || json_array_size(changes) == 0) {
		reply_simple(r, FWD_R_BAD_REQUEST, "changes", "'changes' must be a non-empty list");
		goto out;
	}
	if (api->st->table == NULL) {
		reply_simple(r, FWD_R_NO_TABLE, "", "there is no table to change yet; PUT one");
		goto out;
	}
	if (confirm_pending(api->st, r))
		goto out;
	m = ctl_model(api->st->table);
	json_array_foreach(changes, i, c)
		if (patch_one(m, c, i, r))
			goto out;
	doc = json_dumps(m, JSON_COMPACT);
	do_apply(api, r, doc, strlen(doc), author, comment, expected, 0);
	free(doc);
out:
	json_decref(m);
	json_decref(b);
}

static void h_validate(struct ctl_api *api, const struct req *q, struct reply *r)
{
	json_t *b = body_json(q, r), *d;
	struct fwd_err e;
	struct fwd_table *t;

	if (b == NULL)
		return;
	d = json_object_get(b, "document");
	if (!json_is_string(d)) {
		reply_simple(r, FWD_R_BAD_REQUEST, "document", "'document' is required");
		goto out;
	}
	t = ctl_state_validate(json_string_value(d), json_string_length(d), "document", &e);
	if (t == NULL) {
		reply_err(r, &e);
		json_object_set_new(r->body, "valid", json_false());
		goto out;
	}
	r->status = 200;
	r->body = json_pack("{s:b}", "valid", 1);
	if (api->st->table) {
		json_object_set_new(r->body, "diff", ctl_diff(api->st->table, t));
		json_object_set_new(r->body, "impact", ctl_impact(api->st->table, t, 10000));
	}
	fwd_table_free(t);
out:
	json_decref(b);
}

static void h_rollback(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"generation", "expected_generation", "author", "comment", NULL};
	json_t *b = q->len ? body_json(q, r) : json_object();
	const struct ctl_gen *cur = ctl_state_current(api->st), *to = NULL;
	const char *author, *comment;
	int64_t gen = 0, expected = -1;
	char c[300];

	if (b == NULL)
		return;
	if (check_keys(b, keys, r) || opt_str(b, "author", 63, &author, r) ||
	    opt_str(b, "comment", 255, &comment, r) || opt_int(b, "generation", 1, INT64_MAX, &gen, r) ||
	    opt_int(b, "expected_generation", 0, INT64_MAX, &expected, r))
		goto out;
	if (confirm_pending(api->st, r))
		goto out;
	if (gen)
		to = ctl_state_find(api->st, (uint64_t)gen);
	else if (api->st->nhist >= 2)
		to = &api->st->hist[api->st->nhist - 2];
	if (to == NULL) {
		reply_simple(r, FWD_R_UNKNOWN_GENERATION, "generation",
			     gen ? "that generation is not in the history" : "there is no previous generation");
		goto out;
	}
	snprintf(c, sizeof(c), "rollback to generation %" PRIu64 "%s%s", to->id, comment ? ": " : "",
		 comment ? comment : "");
	/* The target's document gets a new id; residency is checked again. */
	do_apply(api, r, to->doc, to->len, author, c, expected, 0);
	(void)cur;
out:
	json_decref(b);
}

void ctl_api_confirm_tick(struct ctl_state *st)
{
	const struct ctl_gen *to;
	struct fwd_err e;
	char c[200];

	if (!st->confirm_gen || (int64_t)time(NULL) < st->confirm_deadline)
		return;
	to = ctl_state_find(st, st->revert_to);
	snprintf(c, sizeof(c), "automatic revert: generation %" PRIu64 " was not confirmed in time",
		 st->confirm_gen);
	/* ctl_state_apply() appends to the history (realloc): 'to' points into
	 * it, so nothing may read through it after the call. */
	if (to && ctl_state_apply(st, to->doc, to->len, "regiond", c, -1, 1, &e) < 0) {
		fprintf(stderr, "regiond: revert to generation %" PRIu64 " failed: %s (will retry)\n",
			st->revert_to, e.reason);
		return; /* try again next tick, e.g. when regionfwd is back */
	}
	fprintf(stderr, "regiond: %s; back on the table of generation %" PRIu64 "\n", c, st->revert_to);
	st->confirm_gen = 0;
	ctl_state_save(st, &e);
}

static void h_confirm(struct ctl_api *api, struct reply *r)
{
	struct fwd_err e;

	if (!api->st->confirm_gen) {
		reply_simple(r, FWD_R_NOTHING_TO_CONFIRM, "", "no apply awaits confirmation");
		return;
	}
	r->status = 200;
	r->body = json_pack("{s:I}", "confirmed", (json_int_t)api->st->confirm_gen);
	api->st->confirm_gen = 0;
	ctl_state_save(api->st, &e);
}

static void h_status(struct ctl_api *api, struct reply *r)
{
	struct ctl_state *st = api->st;
	json_t *dp = NULL;
	int in_sync = ctl_state_sync(st, &dp);

	r->status = 200;
	r->body = json_pack("{s:{s:s, s:I}, s:o, s:{s:b, s:b, s:O?}}", "regiond", "version", "0.1.0",
			    "uptime_s", (json_int_t)(time(NULL) - api->started), "generation",
			    gen_json(ctl_state_current(st)), "dataplane", "connected",
			    ctl_dp_connected(st->dp), "in_sync", in_sync, "status", dp);
	json_decref(dp);
	json_object_set_new(r->body, "confirm",
			    st->confirm_gen ? json_pack("{s:I, s:I, s:I}", "generation",
							(json_int_t)st->confirm_gen, "revert_to",
							(json_int_t)st->revert_to, "deadline",
							(json_int_t)st->confirm_deadline)
					    : json_null());
}

static void h_table(struct ctl_api *api, struct reply *r)
{
	const struct ctl_gen *g = ctl_state_current(api->st);

	if (g == NULL) {
		reply_simple(r, FWD_R_NO_TABLE, "", "no table yet");
		return;
	}
	r->status = 200;
	r->body = json_pack("{s:o, s:o, s:s%}", "generation", gen_json(g), "model",
			    ctl_model(api->st->table), "document", g->doc, g->len);
}

static void h_dp(struct ctl_api *api, const char *op, json_t *args, struct reply *r)
{
	json_t *resp = ctl_dp_call(api->st->dp, op, args, 10000);

	if (resp == NULL) {
		reply_simple(r, FWD_R_DATAPLANE_UNAVAILABLE, "", "regionfwd did not answer");
		return;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		json_t *je = json_object_get(resp, "error");
		int reason = fwd_reason_from_name(json_string_value(json_object_get(je, "code")));
		struct fwd_err e;

		/* regionfwd's refusal of the request (an explain of a bad address)
		 * under its own reason; one it does not name is refused input. */
		fwd_err_fail(&e, reason < 0 ? FWD_R_INVALID : (enum fwd_reason)reason,
			     json_string_value(json_object_get(je, "file")),
			     (uint32_t)json_integer_value(json_object_get(je, "line")),
			     json_string_value(json_object_get(je, "path")), "%s",
			     json_string_value(json_object_get(je, "reason")) ?: "refused");
		reply_err(r, &e);
		json_decref(resp);
		return;
	}
	json_object_del(resp, "ok");
	json_object_del(resp, "v");
	r->status = 200;
	r->body = resp;
}

static void h_explain(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"src",	"dst",	   "proto",	"sport",     "dport",
					   "payload", "payload_hex", "tls_sni", "http_host", "dns_qname",
					   NULL};
	json_t *b = body_json(q, r);

	if (b && check_keys(b, keys, r) == 0)
		h_dp(api, "explain", b, r);
	json_decref(b);
}

/* Prometheus label values: escape \, " and newline. */
static void prom_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*s, f);
	}
}

static void prom_family(FILE *f, const char *name, const char *help, const char *type,
			json_t *obj, const char *label, const char *field)
{
	const char *k;
	json_t *v;

	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	json_object_foreach(obj, k, v) {
		json_t *n = field ? json_object_get(v, field) : v;

		fprintf(f, "%s{%s=\"", name, label);
		prom_label(f, k);
		fprintf(f, "\"} %" JSON_INTEGER_FORMAT "\n", json_integer_value(n));
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void h_metrics(struct ctl_api *api, struct reply *r)
{
	json_t *c = ctl_dp_call(api->st->dp, "counters", NULL, 10000), *pk, *g;
	const struct ctl_gen *cur = ctl_state_current(api->st);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fprintf(f, "# HELP regiond_generation Generation id regiond holds as current.\n"
		   "# TYPE regiond_generation gauge\nregiond_generation %" PRIu64 "\n",
		cur ? cur->id : 0);
	fprintf(f, "# HELP regiond_dataplane_up 1 when regionfwd answered.\n"
		   "# TYPE regiond_dataplane_up gauge\nregiond_dataplane_up %d\n",
		c != NULL && json_is_true(json_object_get(c, "ok")));
	if (c && json_is_true(json_object_get(c, "ok"))) {
		pk = json_object_get(c, "packets");
		g = json_object_get(c, "generation");
		fprintf(f, "# HELP regionfwd_generation Generation id regionfwd runs.\n"
			   "# TYPE regionfwd_generation gauge\nregionfwd_generation %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(g, "id")));
		fprintf(f, "# HELP regionfwd_generation_age_seconds Age of the running generation.\n"
			   "# TYPE regionfwd_generation_age_seconds gauge\n"
			   "regionfwd_generation_age_seconds %.3f\n",
			now_s() - (double)json_integer_value(json_object_get(g, "created_unix_ns")) / 1e9);
		fprintf(f, "# HELP regionfwd_packets_total Packets by outcome.\n"
			   "# TYPE regionfwd_packets_total counter\n");
		fprintf(f, "regionfwd_packets_total{dir=\"rx\"} %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(pk, "rx")));
		fprintf(f, "regionfwd_packets_total{dir=\"tx\"} %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(pk, "tx")));
		fprintf(f, "# HELP regionfwd_bytes_total Bytes received and sent.\n"
			   "# TYPE regionfwd_bytes_total counter\n");
		fprintf(f, "regionfwd_bytes_total{dir=\"rx\"} %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(pk, "rx_bytes")));
		fprintf(f, "regionfwd_bytes_total{dir=\"tx\"} %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(pk, "tx_bytes")));
		prom_family(f, "regionfwd_drops_total", "Packets dropped, by reason.", "counter",
			    json_object_get(c, "drops"), "reason", NULL);
		prom_family(f, "regionfwd_link_packets_total", "Packets sent per link.", "counter",
			    json_object_get(c, "links"), "link", "packets");
		prom_family(f, "regionfwd_link_bytes_total", "Bytes sent per link.", "counter",
			    json_object_get(c, "links"), "link", "bytes");
		prom_family(f, "regionfwd_region_packets_total", "Packets per source region.", "counter",
			    json_object_get(c, "regions"), "region", "packets");
		prom_family(f, "regionfwd_region_bytes_total", "Bytes per source region.", "counter",
			    json_object_get(c, "regions"), "region", "bytes");
		prom_family(f, "regionfwd_service_packets_total", "Packets per service.", "counter",
			    json_object_get(c, "services"), "service", "packets");
		prom_family(f, "regionfwd_service_bytes_total", "Bytes per service.", "counter",
			    json_object_get(c, "services"), "service", "bytes");
		prom_family(f, "regionfwd_policy_packets_total", "Packets per policy (region/service).",
			    "counter", json_object_get(c, "policies"), "policy", "packets");
		prom_family(f, "regionfwd_events_total", "Fragment, mirror, generation and content events.",
			    "counter", json_object_get(c, "events"), "event", NULL);
		prom_family(f, "regionfwd_content_rule_matches_total",
			    "Packets whose scan matched a content rule.", "counter",
			    json_object_get(c, "content_rules"), "rule", "matches");
		prom_family(f, "regionfwd_content_rule_flow_packets_total",
			    "TCP packets that took a content rule's flow verdict without a scan.", "counter",
			    json_object_get(c, "content_rules"), "rule", "flow_packets");
	}
	json_decref(c);
	fclose(f);
	r->status = 200;
	r->text = buf;
	r->ctype = "text/plain; version=0.0.4";
}

static int authorized(struct ctl_api *api, struct MHD_Connection *con, const struct req *q)
{
	const char *h;
	size_t n, m;
	unsigned char diff = 0;

	if (!q->tcp)
		return 1; /* the unix socket's file mode is the access control */
	h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
	if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	n = strlen(h);
	m = strlen(api->token);
	for (size_t i = 0; i < m; i++) /* constant time in the token's length */
		diff |= (unsigned char)(api->token[i] ^ (i < n ? h[i] : 0));
	return diff == 0 && n == m;
}

static void route(struct ctl_api *api, struct MHD_Connection *con, const char *url,
		  const char *method, const struct req *q, struct reply *r)
{
	int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	int put = !strcmp(method, "PUT"), patch = !strcmp(method, "PATCH");
	int write = put || patch ||
		    (post && (!strcmp(url, "/v1/rollback") || !strcmp(url, "/v1/confirm") ||
			      !strcmp(url, "/v1/filters/detach")));

	if (q->too_big) {
		char reason[100];

		snprintf(reason, sizeof(reason), "request body larger than %zu bytes", api->max_body);
		reply_simple(r, FWD_R_BODY_TOO_LARGE, "", reason);
		return;
	}
	if (write && !authorized(api, con, q)) {
		reply_simple(r, FWD_R_UNAUTHORIZED, "", "writes over TCP need 'Authorization: Bearer TOKEN'");
		return;
	}
	pthread_mutex_lock(api->lock);
	if (!strcmp(url, "/v1/table") && put)
		h_put_table(api, q, r);
	else if (!strcmp(url, "/v1/table") && patch)
		h_patch_table(api, q, r);
	else if (!strcmp(url, "/v1/table") && get)
		h_table(api, r);
	else if (!strcmp(url, "/v1/validate") && post)
		h_validate(api, q, r);
	else if (!strcmp(url, "/v1/rollback") && post)
		h_rollback(api, q, r);
	else if (!strcmp(url, "/v1/confirm") && post)
		h_confirm(api, r);
	else if (!strcmp(url, "/v1/history") && get)
		r->status = 200, r->body = json_pack("{s:o}", "history", ctl_state_history(api->st));
	else if (!strcmp(url, "/v1/status") && get)
		h_status(api, r);
	else if (!strcmp(url, "/v1/counters") && get)
		h_dp(api, "counters", NULL, r);
	else if (!strcmp(url, "/v1/explain") && post)
		h_explain(api, q, r);
	else if (!strcmp(url, "/metrics") && get)
		h_metrics(api, r);
	else if (!strcmp(url, "/v1/filters") && get && api->filters.status)
		r->status = 200, r->body = api->filters.status(api->filters.arg, api->st->table);
	else if (!strcmp(url, "/v1/filters/detach") && post && api->filters.detach)
		r->status = 200, r->body = json_pack("{s:b}", "detached", api->filters.detach(api->filters.arg) == 0);
	else if (!strncmp(url, "/v1/filters", 11))
		reply_simple(r, FWD_R_NO_FILTERS, "", "regiond runs without XDP filters (--xdp-iface)");
	else
		reply_simple(r, FWD_R_NOT_FOUND, "", "no such endpoint or method (see docs/api.md)");
	pthread_mutex_unlock(api->lock);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct ctl_api *api = cls;
	struct req *q = *con_cls;
	struct reply r = {0};
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text;
	size_t len;

	(void)version;
	if (q == NULL) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(con, MHD_CONNECTION_INFO_DAEMON);

		q = calloc(1, sizeof(*q));
		if (q == NULL)
			return MHD_NO;
		q->tcp = ci && ci->daemon == api->tcp_d && api->tcp_d != NULL;
		*con_cls = q;
		return MHD_YES;
	}
	if (*data_size) {
		if (!q->too_big && q->len + *data_size > api->max_body) {
			q->too_big = 1;
			free(q->body);
			q->body = NULL;
			q->len = q->cap = 0;
		}
		if (!q->too_big) {
			if (q->len + *data_size > q->cap) {
				size_t cap = (q->len + *data_size) * 2;
				char *nb = realloc(q->body, cap > api->max_body ? api->max_body : cap);

				if (nb == NULL)
					return MHD_NO;
				q->body = nb;
				q->cap = cap > api->max_body ? api->max_body : cap;
			}
			memcpy(q->body + q->len, data, *data_size);
			q->len += *data_size;
		}
		*data_size = 0;
		return MHD_YES;
	}
	route(api, con, url, method, q, &r);
	if (r.body) {
		text = json_dumps(r.body, JSON_INDENT(2) | JSON_SORT_KEYS);
		json_decref(r.body);
		r.ctype = "application/json";
	} else {
		text = r.text;
	}
	len = text ? strlen(text) : 0;
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", r.ctype ? r.ctype : "application/json");
	ret = MHD_queue_response(con, (unsigned)r.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void on_done(void *cls, struct MHD_Connection *con, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct req *q = *con_cls;

	(void)cls;
	(void)con;
	(void)toe;
	if (q) {
		free(q->body);
		free(q);
	}
	*con_cls = NULL;
}

struct ctl_api *ctl_api_new(const struct ctl_api_conf *conf, struct ctl_state *st,
			    pthread_mutex_t *lock, int64_t started)
{
	struct ctl_api *api = calloc(1, sizeof(*api));

	if (api == NULL)
		return NULL;
	api->st = st;
	api->lock = lock;
	api->token = conf->token;
	api->max_body = conf->max_body;
	api->started = started;
	api->filters = conf->filters;
	api->unix_fd = -1;
	return api;
}

int ctl_api_dispatch(struct ctl_api *api, const char *method, const char *url, const char *body,
		     size_t len, char **out)
{
	struct req q = {.body = (char *)body, .len = len, .cap = len, .too_big = len > api->max_body};
	struct reply r = {0};

	route(api, NULL, url, method, &q, &r);
	if (r.body) {
		*out = json_dumps(r.body, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(r.body);
		free(r.text);
	} else {
		*out = r.text;
	}
	return r.status;
}

struct ctl_api *ctl_api_start(const struct ctl_api_conf *conf, struct ctl_state *st,
			      pthread_mutex_t *lock, int64_t started)
{
	struct ctl_api *api = ctl_api_new(conf, st, lock, started);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (api == NULL)
		return NULL;
	if (strlen(conf->unix_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "regiond: API socket path too long\n");
		goto fail;
	}
	strcpy(sa.sun_path, conf->unix_path);
	strcpy(api->unix_path, conf->unix_path);
	unlink(conf->unix_path);
	api->unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (api->unix_fd < 0 || bind(api->unix_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(conf->unix_path, 0660) < 0 || listen(api->unix_fd, 64) < 0) {
		fprintf(stderr, "regiond: API socket %s: %s\n", conf->unix_path, strerror(errno));
		goto fail;
	}
	api->unix_d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, api, MHD_OPTION_LISTEN_SOCKET,
				       api->unix_fd, MHD_OPTION_NOTIFY_COMPLETED, on_done, api,
				       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (api->unix_d == NULL) {
		fprintf(stderr, "regiond: cannot start the API on %s\n", conf->unix_path);
		goto fail;
	}
	api->unix_fd = -1; /* MHD owns it now and closes it when stopped */
	if (conf->tcp_listen) {
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
		char host[128];
		const char *colon = strrchr(conf->tcp_listen, ':');

		if (colon == NULL || (size_t)(colon - conf->tcp_listen) >= sizeof(host)) {
			fprintf(stderr, "regiond: --listen wants HOST:PORT\n");
			goto fail;
		}
		memcpy(host, conf->tcp_listen, (size_t)(colon - conf->tcp_listen));
		host[colon - conf->tcp_listen] = '\0';
		if (host[0] == '[') { /* [v6]:port */
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		if (getaddrinfo(host, colon + 1, &hints, &ai)) {
			fprintf(stderr, "regiond: --listen %s: not a numeric address and port\n",
				conf->tcp_listen);
			goto fail;
		}
		api->tcp_d = MHD_start_daemon(flags | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0,
					      NULL, NULL, on_request, api, MHD_OPTION_SOCK_ADDR,
					      ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_done, api,
					      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
		freeaddrinfo(ai);
		if (api->tcp_d == NULL) {
			fprintf(stderr, "regiond: cannot listen on %s\n", conf->tcp_listen);
			goto fail;
		}
	}
	return api;
fail:
	ctl_api_stop(api);
	return NULL;
}

void ctl_api_stop(struct ctl_api *api)
{
	if (api == NULL)
		return;
	if (api->tcp_d)
		MHD_stop_daemon(api->tcp_d);
	if (api->unix_d)
		MHD_stop_daemon(api->unix_d);
	if (api->unix_fd >= 0)
		close(api->unix_fd);
	if (api->unix_path[0])
		unlink(api->unix_path);
	free(api);
}
