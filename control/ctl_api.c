#define _GNU_SOURCE /* struct ucred (SO_PEERCRED) */
#include "ctl_api.h"
#include "fwd_log.h"

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

#include "ctl_confirm.h"
#include "ctl_dp.h"
#include "ctl_explain.h"
#include "ctl_http.h"
#include "ctl_metrics.h"
#include "ctl_model.h"
#include "ctl_patch.h"

/* Connection limits. The unix socket (the operators' and regionctl's way
 * in) and TCP have separate daemons and budgets, so no flood of TCP
 * connections can take the descriptors the unix socket needs: 64 + 512
 * stay well under the 1,024 descriptors a process gets by default. On TCP,
 * one address holds at most 32 connections, and a connection idle for
 * 30 s is closed. */
#define CTL_API_UNIX_CONNECTIONS 64
#define CTL_API_TCP_CONNECTIONS 512
#define CTL_API_TCP_PER_ADDRESS 32
#define CTL_API_TCP_IDLE_S 30

struct ctl_api {
	struct MHD_Daemon *unix_d, *tcp_d;
	int unix_fd;
	char unix_path[108];
	struct ctl_state *st;
	pthread_mutex_t *lock;
	const char *token, *read_token;
	size_t max_body;
	int64_t started;
	/* The read view GET /v1/status answers from: rebuilt under the state
	 * lock after every request that takes it and by the main loop
	 * (ctl_api_publish), read under view_lock alone. A push that waits
	 * for a hung regionfwd holds the state lock, never view_lock, so
	 * status keeps answering, with the age of its dataplane report. */
	pthread_mutex_t view_lock;
	json_t *view;
	int64_t view_report_ms;
};

struct req {
	char *body;
	size_t len, cap;
	int too_big;
	int tcp;
	int answered; /* refused from its headers: its body is never read */
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
		snprintf(reason, sizeof(reason),
			 "body is not a JSON object%s%s (line %d, column %d)", j ? "" : ": ",
			 j ? "" : je.text, je.line, je.column);
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
		snprintf(reason, sizeof(reason), "'%s' must be a string of at most %zu bytes", key,
			 max);
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
		snprintf(reason, sizeof(reason), "'%s' must be an integer in %" PRId64 "..%" PRId64,
			 key, min, max);
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

/* Writes are refused while an apply awaits confirmation (ctl_confirm.h). */
static int confirm_pending(struct ctl_state *st, struct reply *r)
{
	struct fwd_err e;

	if (ctl_confirm_none_pending(st, &e) == 0)
		return 0;
	reply_err(r, &e);
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
	int64_t id =
		ctl_state_apply(st, doc, len, author ? author : "api", comment, expected, 1, &e);

	if (id < 0) {
		reply_err(r, &e);
		return;
	}
	if (id > 0 && confirm_s > 0)
		ctl_confirm_arm(st, (uint64_t)id, prev, confirm_s, &e);
	r->status = 200;
	r->body = json_pack("{s:o, s:b}", "generation", gen_json(ctl_state_current(st)), "changed",
			    id > 0);
	if (id > 0 && confirm_s > 0)
		json_object_set_new(r->body, "confirm_by", json_integer(st->confirm_deadline));
}

static void h_put_table(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"document", "expected_generation", "author",
					   "comment",  "confirm_timeout_s",   NULL};
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
		reply_simple(r, FWD_R_BAD_REQUEST, "document",
			     "'document' (the table, YAML or JSON text) is required");
		goto out;
	}
	if (json_object_get(b, "expected_generation") == NULL) {
		reply_simple(r, FWD_R_BAD_REQUEST, "expected_generation",
			     "'expected_generation' is required: the generation this table "
			     "replaces (0 for none)");
		goto out;
	}
	if (confirm_pending(api->st, r))
		goto out;
	if (confirm > 0 && ctl_state_current(api->st) == NULL) {
		/* Nothing to go back to: the revert could not keep its promise. */
		reply_simple(r, FWD_R_BAD_REQUEST, "confirm_timeout_s",
			     "there is no generation yet to revert to; apply the first table "
			     "without confirm_timeout_s");
		goto out;
	}
	doc = json_string_value(json_object_get(b, "document"));
	do_apply(api, r, doc, json_string_length(json_object_get(b, "document")), author, comment,
		 expected, confirm);
out:
	json_decref(b);
}

static void h_patch_table(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"changes", "expected_generation", "author", "comment",
					   NULL};
	json_t *b = body_json(q, r), *m = NULL, *changes;
	const char *author, *comment;
	int64_t expected = -1;
	struct fwd_err e;
	char *doc;

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
	if (m == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		goto out;
	}
	if (ctl_patch_apply(m, changes, &e)) {
		reply_err(r, &e);
		goto out;
	}
	doc = json_dumps(m, JSON_COMPACT);
	if (doc == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		goto out;
	}
	do_apply(api, r, doc, strlen(doc), author, comment, expected, 0);
	free(doc);
out:
	json_decref(m);
	json_decref(b);
}

static void h_validate(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"document", NULL};
	json_t *b = body_json(q, r), *d;
	struct fwd_err e;
	struct fwd_table *t;

	if (b == NULL)
		return;
	if (check_keys(b, keys, r))
		goto out;
	d = json_object_get(b, "document");
	if (!json_is_string(d)) {
		reply_simple(r, FWD_R_BAD_REQUEST, "document", "'document' is required");
		goto out;
	}
	t = ctl_state_validate(api->st, json_string_value(d), json_string_length(d), "document",
			       &e);
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
	static const char *const keys[] = {"generation", "expected_generation", "author", "comment",
					   NULL};
	json_t *b = q->len ? body_json(q, r) : json_object();
	const struct ctl_gen *cur = ctl_state_current(api->st), *to = NULL;
	const char *author, *comment;
	int64_t gen = 0, expected = -1;
	char c[300];

	if (b == NULL)
		return;
	if (check_keys(b, keys, r) || opt_str(b, "author", 63, &author, r) ||
	    opt_str(b, "comment", 255, &comment, r) ||
	    opt_int(b, "generation", 1, INT64_MAX, &gen, r) ||
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
			     gen ? "that generation is not in the history"
				 : "there is no previous generation");
		goto out;
	}
	snprintf(c, sizeof(c), "rollback to generation %" PRIu64 "%s%s", to->id,
		 comment ? ": " : "", comment ? comment : "");
	/* The target's document gets a new id; residency is checked again. */
	do_apply(api, r, to->doc, to->len, author, c, expected, 0);
	(void)cur;
out:
	json_decref(b);
}

static void h_confirm(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {NULL};
	struct fwd_err e;
	uint64_t gen;
	json_t *b = q->len ? body_json(q, r) : json_object();

	/* No fields: a body, if any, must be an empty object (docs/api.md:
	 * unknown fields are refused). */
	if (b == NULL)
		return;
	if (check_keys(b, keys, r)) {
		json_decref(b);
		return;
	}
	json_decref(b);
	gen = ctl_confirm_accept(api->st, &e);
	if (gen == 0) {
		reply_err(r, &e);
		return;
	}
	r->status = 200;
	r->body = json_pack("{s:I}", "confirmed", (json_int_t)gen);
}

void ctl_api_publish(struct ctl_api *api)
{
	struct ctl_state *st = api->st;
	const struct ctl_gen *cur = ctl_state_current(st);
	const char *ran = json_string_value(
		json_object_get(json_object_get(st->dp_report, "generation"), "hash"));
	char h[17] = "";
	json_t *v, *old;
	int in_sync;

	/* Compared now, not when the report was taken: a change made since
	 * (the confirm timer's revert) must not read as in sync. */
	if (cur)
		snprintf(h, sizeof(h), "%016" PRIx64, cur->hash);
	in_sync = cur && ran && strcmp(ran, h) == 0;
	v = json_pack("{s:o, s:{s:b, s:b, s:O?}, s:o, s:o}", "generation", gen_json(cur),
		      "dataplane", "connected", st->dp_report != NULL, "in_sync", in_sync, "status",
		      st->dp_report, "confirm", ctl_confirm_json(st), "alarm",
		      st->alarm[0] ? json_string(st->alarm) : json_null());

	if (v == NULL)
		return; /* out of memory: the previous view stays */
	pthread_mutex_lock(&api->view_lock);
	old = api->view;
	api->view = v;
	api->view_report_ms = st->dp_report_ms;
	pthread_mutex_unlock(&api->view_lock);
	json_decref(old);
}

/* A read of the view (ctl_api_publish), without the state lock: what regiond
 * holds and what regionfwd last reported, with the report's age. It never
 * asks regionfwd and never pushes (the main loop's ctl_state_sync does). */
static void h_status(struct ctl_api *api, const struct req *q, struct reply *r)
{
	json_t *b;
	int64_t report_ms;

	(void)q;
	pthread_mutex_lock(&api->view_lock);
	b = json_deep_copy(api->view);
	report_ms = api->view_report_ms;
	pthread_mutex_unlock(&api->view_lock);
	if (b == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		return;
	}
	json_object_set_new(b, "regiond",
			    json_pack("{s:s, s:I}", "version", "0.1.0", "uptime_s",
				      (json_int_t)(time(NULL) - api->started)));
	/* null until regiond first asked regionfwd */
	json_object_set_new(json_object_get(b, "dataplane"), "report_age_ms",
			    report_ms ? json_integer(ctl_mono_ms() - report_ms) : json_null());
	r->status = 200;
	r->body = b;
}

static void h_table(struct ctl_api *api, const struct req *q, struct reply *r)
{
	const struct ctl_gen *g = ctl_state_current(api->st);

	(void)q;
	if (g == NULL) {
		reply_simple(r, FWD_R_NO_TABLE, "", "no table yet");
		return;
	}
	r->status = 200;
	r->body = json_pack("{s:o, s:o, s:s%}", "generation", gen_json(g), "model",
			    ctl_model(api->st->table), "document", g->doc, g->len);
}

/* regionfwd's counter report, read through the one reader of its model
 * (fwd_report_from_json), or NULL with @e. */
static struct fwd_report *dp_counters(struct ctl_api *api, struct fwd_err *e)
{
	Regionfwd__Ctl__Empty req = REGIONFWD__CTL__EMPTY__INIT;
	Regionfwd__Ctl__CounterReport *rep;
	struct fwd_report *r = NULL;
	struct fwd_err je;
	json_t *j;

	if (ctl_dp_call(api->st->dp, REGIONFWD__CTL__OP__OP_COUNTERS, &req.base,
			(ProtobufCMessage **)&rep, 10000, e))
		return NULL;
	j = json_loadb((const char *)rep->json.data, rep->json.len, 0, NULL);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	if (j == NULL || (r = fwd_report_from_json(j, &je)) == NULL)
		fwd_err_fail(e, FWD_R_DATAPLANE_BROKEN, NULL, 0, "",
			     "regionfwd's counter report is broken%s%s", j ? ": " : "",
			     j ? je.reason : "");
	json_decref(j);
	return r;
}

static void h_counters(struct ctl_api *api, const struct req *q, struct reply *r)
{
	struct fwd_err e;
	struct fwd_report *c = dp_counters(api, &e);

	(void)q;
	if (c == NULL) {
		reply_err(r, &e);
		return;
	}
	r->body = fwd_report_json(c);
	fwd_report_free(c);
	if (r->body == NULL)
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
	else
		r->status = 200;
}

static void h_explain(struct ctl_api *api, const struct req *q, struct reply *r)
{
	json_t *b = body_json(q, r);
	struct ctl_explain *x = NULL;
	Regionfwd__Ctl__ExplainReply *rep;
	struct fwd_err e;

	if (b == NULL)
		goto out;
	x = malloc(sizeof(*x));
	if (x == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		goto out;
	}
	if (ctl_explain_parse(b, x, &e) ||
	    ctl_dp_call(api->st->dp, REGIONFWD__CTL__OP__OP_EXPLAIN, &x->req.base,
			(ProtobufCMessage **)&rep, 10000, &e)) {
		reply_err(r, &e);
		goto out;
	}
	r->body = json_loadb((const char *)rep->json.data, rep->json.len, 0, NULL);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	if (r->body == NULL)
		reply_simple(r, FWD_R_DATAPLANE_BROKEN, "", "regionfwd's explanation is broken");
	else
		r->status = 200;
out:
	free(x);
	json_decref(b);
}

static void h_metrics(struct ctl_api *api, const struct req *q, struct reply *r)
{
	struct fwd_err e;
	struct fwd_report *c = dp_counters(api, &e);

	(void)q;
	r->text = ctl_metrics_render(api->st, c);
	fwd_report_free(c);
	if (r->text == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		return;
	}
	r->status = 200;
	r->ctype = "text/plain; version=0.0.4";
}

/* @h (the header value after "Bearer ") is @want, in time that depends
 * only on @want's length. */
static int token_is(const char *want, const char *h)
{
	size_t n = strlen(h), m = strlen(want);
	unsigned char diff = 0;

	for (size_t i = 0; i < m; i++)
		diff |= (unsigned char)(want[i] ^ (i < n ? h[i] : 0));
	return diff == 0 && n == m;
}

enum access { ACCESS_NONE, ACCESS_READ, ACCESS_WRITE };

/* What this connection's credentials allow: everything on the unix socket
 * (its file mode is the access control); on TCP, what its bearer token is
 * for (the read token reads, the token writes too). */
static enum access access_of(struct ctl_api *api, struct MHD_Connection *con, int tcp)
{
	const char *h;

	if (!tcp)
		return ACCESS_WRITE;
	h = con ? MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization") : NULL;
	if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
		return ACCESS_NONE;
	h += 7;
	if (api->token && token_is(api->token, h))
		return ACCESS_WRITE;
	if (api->read_token && token_is(api->read_token, h))
		return ACCESS_READ;
	return ACCESS_NONE;
}

static void h_history(struct ctl_api *api, const struct req *q, struct reply *r)
{
	(void)q;
	r->status = 200;
	r->body = json_pack("{s:o}", "history", ctl_state_history(api->st));
}

static void h_filters(struct ctl_api *api, const struct req *q, struct reply *r)
{
	const struct ctl_ext *x = ctl_state_ext(api->st, "filters");

	(void)q;
	r->status = 200;
	r->body = x->status(x->arg, api->st->table);
}

static void h_filters_detach(struct ctl_api *api, const struct req *q, struct reply *r)
{
	const struct ctl_ext *x = ctl_state_ext(api->st, "filters");

	(void)q;
	r->status = 200;
	r->body = json_pack("{s:b}", "detached", x->detach(x->arg) == 0);
}

/* Every endpoint once (docs/api.md): method, path, whether it writes
 * (writes over TCP need the token) and whether it needs the XDP filters. */
/* ROUTE_VIEW: answered from the read view, without the state lock. */
enum { ROUTE_WRITE = 1, ROUTE_FILTERS = 2, ROUTE_VIEW = 4 };

static const struct route {
	const char *method, *path;
	unsigned flags;
	void (*handle)(struct ctl_api *api, const struct req *q, struct reply *r);
} routes[] = {
	{"GET", "/v1/status", ROUTE_VIEW, h_status},
	{"GET", "/v1/table", 0, h_table},
	{"PUT", "/v1/table", ROUTE_WRITE, h_put_table},
	{"PATCH", "/v1/table", ROUTE_WRITE, h_patch_table},
	{"POST", "/v1/validate", 0, h_validate},
	{"POST", "/v1/rollback", ROUTE_WRITE, h_rollback},
	{"POST", "/v1/confirm", ROUTE_WRITE, h_confirm},
	{"GET", "/v1/history", 0, h_history},
	{"GET", "/v1/counters", 0, h_counters},
	{"POST", "/v1/explain", 0, h_explain},
	{"GET", "/metrics", 0, h_metrics},
	{"GET", "/v1/filters", ROUTE_FILTERS, h_filters},
	{"POST", "/v1/filters/detach", ROUTE_WRITE | ROUTE_FILTERS, h_filters_detach},
};

/* The credential check, from the headers alone: over TCP every request
 * needs a token, a write the write token. Fills @r and returns 1 when
 * refused. */
static int refused(struct ctl_api *api, struct MHD_Connection *con, const struct req *q,
		   const struct route *rt, struct reply *r)
{
	enum access have = access_of(api, con, q->tcp);

	if (have == ACCESS_NONE) {
		reply_simple(r, FWD_R_UNAUTHORIZED, "",
			     "requests over TCP need 'Authorization: Bearer TOKEN'");
		return 1;
	}
	if (rt && (rt->flags & ROUTE_WRITE) && have != ACCESS_WRITE) {
		reply_simple(r, FWD_R_FORBIDDEN, "", "this token may read, not write");
		return 1;
	}
	return 0;
}

/* Who sends this request, as the kernel or the credential says (never as
 * the request claims): SO_PEERCRED on the unix socket, the write token and
 * the peer's address on TCP. Recorded with every change it makes. */
static void client_identity(struct MHD_Connection *con, int tcp, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci;

	snprintf(out, len, "%s", tcp ? "write token" : "local client");
	if (con == NULL)
		return;
	if (!tcp) {
		struct ucred uc;
		socklen_t sl = sizeof(uc);

		ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &sl) == 0)
			snprintf(out, len, "uid %u pid %d on the unix socket", (unsigned)uc.uid,
				 (int)uc.pid);
		return;
	}
	ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		char host[INET6_ADDRSTRLEN + 8] = "?", port[8] = "?";
		socklen_t sl = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								      : sizeof(struct sockaddr_in);

		getnameinfo(ci->client_addr, sl, host, sizeof(host), port, sizeof(port),
			    NI_NUMERICHOST | NI_NUMERICSERV);
		snprintf(out, len, "write token from %s port %s", host, port);
	}
}

static const struct route *find_route(const char *method, const char *url)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(routes[i].path, url) == 0 && strcmp(routes[i].method, method) == 0)
			return &routes[i];
	return NULL;
}

/* A write refused: logged once, here, whatever refused it (the body, the
 * table, residency, a stale expected_generation, the disk). */
static void log_refused(const struct ctl_state *st, const struct req *q, const struct reply *r)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	json_t *b = q->len ? json_loadb(q->body, q->len, 0, NULL) : NULL;
	json_t *err = json_object_get(json_object_get(r->body, "error"), "reason");
	struct fwd_log_change c = {
		.event = "refused",
		.generation = cur ? cur->id : 0,
		.author = json_string_value(json_object_get(b, "author")),
		.client = st->who,
		.request = st->request,
		.reason = err ? json_string_value(err) : "refused",
	};

	fwd_log_change(&c);
	json_decref(b);
}

static void route(struct ctl_api *api, struct MHD_Connection *con, const char *url,
		  const char *method, const struct req *q, struct reply *r)
{
	const struct route *rt = find_route(method, url);
	const struct ctl_ext *filters;

	if (refused(api, con, q, rt, r))
		return;
	if (q->too_big) {
		char reason[100];

		snprintf(reason, sizeof(reason), "request body larger than %zu bytes",
			 api->max_body);
		reply_simple(r, FWD_R_BODY_TOO_LARGE, "", reason);
		return;
	}
	filters = ctl_state_ext(api->st, "filters");
	if (rt == NULL) {
		if (strncmp(url, "/v1/filters", 11) == 0 &&
		    (filters == NULL || filters->status == NULL))
			reply_simple(r, FWD_R_NO_FILTERS, "",
				     "regiond runs without XDP filters (--xdp-iface)");
		else
			reply_simple(r, FWD_R_NOT_FOUND, "",
				     "no such endpoint or method (see docs/api.md)");
		return;
	}
	if ((rt->flags & ROUTE_FILTERS) &&
	    (filters == NULL || filters->status == NULL || filters->detach == NULL)) {
		reply_simple(r, FWD_R_NO_FILTERS, "",
			     "regiond runs without XDP filters (--xdp-iface)");
		return;
	}
	if (rt->flags & ROUTE_VIEW) {
		rt->handle(api, q, r);
		return;
	}
	pthread_mutex_lock(api->lock);
	if (rt->flags & ROUTE_WRITE) {
		client_identity(con, q->tcp, api->st->who, sizeof(api->st->who));
		snprintf(api->st->request, sizeof(api->st->request), "%s %s", rt->method, rt->path);
	}
	rt->handle(api, q, r);
	if ((rt->flags & ROUTE_WRITE) && r->status >= 400)
		log_refused(api->st, q, r);
	api->st->who[0] = '\0';
	api->st->request[0] = '\0';
	/* A write that ran: regionfwd just answered, so its report is fresh
	 * to ask for and the view shows the change with what runs. */
	if ((rt->flags & ROUTE_WRITE) && r->status < 300)
		ctl_state_refresh(api->st);
	ctl_api_publish(api);
	pthread_mutex_unlock(api->lock);
}

static enum MHD_Result send_reply(struct MHD_Connection *con, struct reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text;
	size_t len;

	if (r->body) {
		text = json_dumps(r->body, JSON_INDENT(2) | JSON_SORT_KEYS);
		json_decref(r->body);
		r->ctype = "application/json";
	} else {
		text = r->text;
	}
	len = text ? strlen(text) : 0;
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", r->ctype ? r->ctype : "application/json");
	ret = MHD_queue_response(con, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Refuse from the headers alone: missing or insufficient credentials, or a
 * Content-Length over the limit. 1 with @r filled when refused. */
static int refused_early(struct ctl_api *api, struct MHD_Connection *con, const char *url,
			 const char *method, const struct req *q, struct reply *r)
{
	const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
	char *end;

	if (refused(api, con, q, find_route(method, url), r))
		return 1;
	if (cl && strtoull(cl, &end, 10) > api->max_body) {
		char reason[100];

		snprintf(reason, sizeof(reason), "request body larger than %zu bytes",
			 api->max_body);
		reply_simple(r, FWD_R_BODY_TOO_LARGE, "", reason);
		return 1;
	}
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct ctl_api *api = cls;
	struct req *q = *con_cls;
	struct reply r = {0};

	(void)version;
	if (q == NULL) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(con, MHD_CONNECTION_INFO_DAEMON);

		q = calloc(1, sizeof(*q));
		if (q == NULL)
			return MHD_NO;
		q->tcp = ci && ci->daemon == api->tcp_d && api->tcp_d != NULL;
		*con_cls = q;
		/* Credentials and the announced length are checked from the
		 * headers, before a byte of the body is read: a stranger or an
		 * oversized upload costs no memory (libmicrohttpd drops the body of
		 * a request answered early, closing the connection). */
		if (refused_early(api, con, url, method, q, &r)) {
			q->answered = 1;
			return send_reply(con, &r);
		}
		return MHD_YES;
	}
	if (q->answered) {
		*data_size = 0;
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
				char *nb =
					realloc(q->body, cap > api->max_body ? api->max_body : cap);

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
	return send_reply(con, &r);
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
	api->read_token = conf->read_token;
	api->max_body = conf->max_body;
	api->started = started;
	api->unix_fd = -1;
	pthread_mutex_init(&api->view_lock, NULL);
	pthread_mutex_lock(lock);
	ctl_api_publish(api); /* before any request: status always has a view */
	pthread_mutex_unlock(lock);
	return api;
}

int ctl_api_dispatch(struct ctl_api *api, const char *method, const char *url, const char *body,
		     size_t len, char **out)
{
	struct req q = {
		.body = (char *)body, .len = len, .cap = len, .too_big = len > api->max_body};
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
	/* A thread per connection (bounded by the connection limits below): a
	 * write waiting for regionfwd (up to --dataplane-timeout, holding the
	 * state lock) occupies its own thread only, and status, answered from
	 * the view without that lock, keeps answering on the others. One
	 * polling thread would serve nothing else meanwhile (issue 16, 3). */
	unsigned flags =
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;

	if (api == NULL)
		return NULL;
	if (strlen(conf->unix_path) >= sizeof(sa.sun_path)) {
		fwd_log(FWD_LOG_ERR, "API socket path too long");
		goto fail;
	}
	strcpy(sa.sun_path, conf->unix_path);
	strcpy(api->unix_path, conf->unix_path);
	unlink(conf->unix_path);
	api->unix_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (api->unix_fd < 0 || bind(api->unix_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(conf->unix_path, 0660) < 0 || listen(api->unix_fd, 64) < 0) {
		fwd_log(FWD_LOG_ERR, "API socket %s: %s", conf->unix_path, strerror(errno));
		goto fail;
	}
	api->unix_d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, api, MHD_OPTION_LISTEN_SOCKET, api->unix_fd,
		MHD_OPTION_NOTIFY_COMPLETED, on_done, api, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)60, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CTL_API_UNIX_CONNECTIONS,
		MHD_OPTION_END);
	if (api->unix_d == NULL) {
		fwd_log(FWD_LOG_ERR, "cannot start the API on %s", conf->unix_path);
		goto fail;
	}
	api->unix_fd = -1; /* MHD owns it now and closes it when stopped */
	if (conf->tcp_listen) {
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST},
				*ai;
		char host[128];
		const char *colon = strrchr(conf->tcp_listen, ':');

		if (colon == NULL || (size_t)(colon - conf->tcp_listen) >= sizeof(host)) {
			fwd_log(FWD_LOG_ERR, "--listen wants HOST:PORT");
			goto fail;
		}
		memcpy(host, conf->tcp_listen, (size_t)(colon - conf->tcp_listen));
		host[colon - conf->tcp_listen] = '\0';
		if (host[0] == '[') { /* [v6]:port */
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		if (getaddrinfo(host, colon + 1, &hints, &ai)) {
			fwd_log(FWD_LOG_ERR, "--listen %s: not a numeric address and port",
				conf->tcp_listen);
			goto fail;
		}
		api->tcp_d = MHD_start_daemon(
			flags | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
			on_request, api, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
			MHD_OPTION_NOTIFY_COMPLETED, on_done, api, MHD_OPTION_CONNECTION_TIMEOUT,
			(unsigned)CTL_API_TCP_IDLE_S, MHD_OPTION_CONNECTION_LIMIT,
			(unsigned)CTL_API_TCP_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
			(unsigned)CTL_API_TCP_PER_ADDRESS, MHD_OPTION_END);
		freeaddrinfo(ai);
		if (api->tcp_d == NULL) {
			fwd_log(FWD_LOG_ERR, "cannot listen on %s", conf->tcp_listen);
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
	json_decref(api->view);
	pthread_mutex_destroy(&api->view_lock);
	free(api);
}
