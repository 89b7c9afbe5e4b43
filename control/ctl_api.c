#define _GNU_SOURCE /* struct ucred (SO_PEERCRED) */
#include "ctl_api.h"
#include "fwd_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_capture.h"
#include "ctl_confirm.h"
#include "ctl_dp.h"
#include "ctl_explain.h"
#include "ctl_headwatch.h"
#include "ctl_http.h"
#include "ctl_metrics.h"
#include "ctl_model.h"
#include "ctl_patch.h"
#include "ctl_prefixes.h"
#include "ctl_rollout_driver.h"
#include "ctl_rollout_store.h"
#include "ctl_tls.h"
#include "ctl_traffic.h"
#include "fwd_json.h"
#include "fwd_opts.h"
#include "fwd_unixsock.h"
#include "fwd_clock.h"

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
/* A request head must arrive whole within this (ctl_headwatch.h): a head
 * is a few hundred bytes, sent in one write by every real client. */
#define CTL_API_HEAD_MS 10000
/* ... and a body, after the same 10 s, at 256 KiB/s on average unless
 * regiond --min-body-rate says otherwise: a routing-scale document (30 MB)
 * over a 2 Mbit/s link; a client that trickles its body is cut off as one
 * that trickles its head is. */
#define CTL_API_BODY_RATE (256u * 1024)
/* TLS 1.2 and 1.3 only, with GnuTLS's NORMAL ciphers. */
#define CTL_API_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* An answer's text that several requests send (GET /v1/table of one
 * generation): counted references, one for the cache and one for each
 * response that sends it (libmicrohttpd drops its own with the response,
 * shared_put). */
struct shared_text {
	unsigned long refs;
	size_t len;
	char text[];
};

static struct shared_text *shared_get(struct shared_text *s)
{
	/* Relaxed: a reference is taken from one that is held (the cache's,
	 * under table_lock), so the count cannot reach 0 meanwhile. */
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

static void shared_put(void *cls)
{
	struct shared_text *s = cls;

	/* Acq-rel: whoever drops the last reference sees every write of the
	 * text before it frees it (the text is written once, before the
	 * first reference is shared, so this is the standard pattern). */
	if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(s);
}

struct ctl_api {
	struct MHD_Daemon *unix_d, *tcp_d;
	struct ctl_headwatch *headwatch; /* both daemons' request-head deadline */
	int unix_fd;
	char unix_path[108];
	struct fwd_unix_keep keep; /* the socket file, bound again if taken away */
	/* The daemons of sockets taken away, quiesced: each accepts no more,
	 * and is stopped once the connections it holds are closed (requests
	 * over, idle ones past their timeout), never before
	 * (stopping one waits for its requests: the second socket taken away
	 * while a 30 s validate ran on the first held regiond's main loop,
	 * its sync, confirm timer and signals, for those 30 s, and cut the
	 * validate's answer). At most CTL_API_RETIRED: past that a socket
	 * taken away is bound again once one is stopped. */
	struct MHD_Daemon *retired[CTL_API_RETIRED];
	int retired_fd[CTL_API_RETIRED]; /* their listening sockets, closed once stopped */
	unsigned nretired;
	char sock_alarm[CTL_ALARM_LEN]; /* the socket's alarm as last set, "" when none */
	char tcp_listen[160]; /* for the log */
	struct ctl_state *st;
	pthread_mutex_t *lock;
	const struct ctl_token *tokens;
	unsigned ntokens;
	/* --tls-client-ca: every TCP request needs a verified client
	 * certificate; those whose subject is in writers may write. */
	int tls_client;
	const char *const *writers;
	size_t max_body;
	/* Bytes the bodies of requests in flight hold (their buffers'
	 * capacity): all of them, TCP's, and read-only credentials'; and the
	 * most each may hold. All together max_buffered (--max-buffered: each
	 * connection may buffer max_body, and 64 of them could hold 64 times
	 * it). TCP clients tcp_cap, which keeps one max_body (at most half)
	 * for the unix socket, so the local operator's upload fits whatever
	 * TCP clients send; read-only credentials ro_cap, half of TCP's, so a
	 * reader's validate bodies leave room to writers (a hostile probe
	 * filled the whole bound with two 256 MiB validate bodies on a read
	 * token and every write was refused, unix ones too). Under
	 * buffered_lock: the three move together, and a request takes
	 * memory a few times in its life (its buffer doubles), so the lock
	 * is rare. */
	pthread_mutex_t buffered_lock;
	size_t max_buffered, tcp_cap, ro_cap;
	size_t buffered, buffered_tcp, buffered_ro;
	/* Bodies refused for it since the last log line, and when that was:
	 * one line a second at most, however fast they come. */
	pthread_mutex_t full_lock;
	unsigned long full_refused;
	int64_t full_logged_ms;
	int64_t started;
	/* libmicrohttpd older than 1.0 hands a raw NUL byte in the request
	 * line on (1.0 refuses it itself): on_request() looks for it. */
	int raw_nul_check;
	/* The read view GET /v1/status answers from: rebuilt under the state
	 * lock at the end of every write, whoever made it (ctl_state's
	 * on_write_end hook: requests, the fleet agent, the feed, the main
	 * loop's tick), read under view_lock alone. A push that waits
	 * for a hung regionfwd holds the state lock, never view_lock, so
	 * status keeps answering, with the age of its dataplane report. */
	pthread_mutex_t view_lock;
	json_t *view;
	int64_t view_report_ms;
	/* Reads that ask regionfwd (counters, explain, /metrics) use their own
	 * connection, one at a time, without the state lock: a write's push
	 * holds the state's connection (ctl_state.h, locking). */
	pthread_mutex_t dp_read_lock;
	struct ctl_dp *dp_read;
	/* The one capture that may run (POST /v1/capture): who runs it and
	 * since when, "" when none. Under capture_lock alone. */
	pthread_mutex_t capture_lock;
	char capture_owner[sizeof(((struct ctl_state *)0)->who)];
	int64_t capture_since;
	/* The capture that streams, for POST /v1/capture/stop: set once it has
	 * started, cleared before it is freed, both under capture_lock. */
	struct ctl_capture *capture_running;
	/* Fleet mode: the facility's etcd, for /v1/fleet/rollouts and
	 * /v1/fleet/nodes (each request its own client), and the driver whose
	 * status they show; NULL in single-box mode. */
	const struct ctl_rdriver_conf *fleet;
	struct ctl_rdriver *fleet_driver;
	/* GET /v1/fleet/nodes' cache of rollout/active's id (a record of
	 * 100 KiB and more, read whole only when a new rollout starts): copied
	 * in and out under pins_lock, never held over etcd. */
	pthread_mutex_t pins_lock;
	struct ctl_rstore_pinset pins_cache;
	/* GET /v1/table's whole answer for one generation (its id and hash),
	 * made once and sent by every request for it: made per request, 120
	 * readers that did not read their answers held 120 copies (7.6 MB
	 * each for a 200k-prefix table, regiond at 1.3 GB), each made under
	 * the state lock (0.25 s), so such readers held writes off for
	 * minutes. Under table_lock (h_table runs under the state lock too). */
	pthread_mutex_t table_lock;
	struct shared_text *table_text;
	uint64_t table_id, table_hash;
	/* The stop: once it has begun (stop_flag, set by regiond's SIGTERM
	 * handler, or stopping, set by ctl_api_stop) every new write is
	 * refused 503 stopping, and the stop waits for the writes admitted
	 * before it (writes, counted from admission to their answer's end)
	 * before it closes any connection: closed mid-write, their changes
	 * were recorded while their clients heard nothing (a soak: 34 of
	 * 372). Under stop_lock, so a write is either counted before the
	 * stop looks or refused. */
	pthread_mutex_t stop_lock;
	/* A document's prepare (parse, classify, compile) takes some 25 bytes
	 * of memory a byte of it and up to 30 s of a core: one at a time for
	 * clients that may write, one for those that may only read, so that
	 * bodies within --max-buffered cannot add up to many times it in
	 * trees (six read-only validates of 20 MB held 2.5 GB: a probe), and
	 * readers wait for readers, never a writer for them. */
	pthread_mutex_t prepare_lock[2];
	const volatile sig_atomic_t *stop_flag;
	int stopping;
	unsigned writes;
};

enum access { ACCESS_NONE, ACCESS_READ, ACCESS_WRITE };

struct req {
	char *body;
	size_t len, cap;
	int too_big;
	int too_many; /* its body would pass --max-buffered: not buffered */
	size_t dropped; /* bytes of such a body read and dropped */
	size_t announced; /* Content-Length, 0: none (the buffer grows by it) */
	int tcp;
	int answered; /* refused from its headers: its body is never read */
	/* Its credentials, from the connection and the headers alone
	 * (credentials()): what they allow, why not more, and who they say
	 * the client is, as recorded with a change it makes. */
	enum access access;
	char subject[256]; /* a verified client certificate's, or "" */
	char why[256];
	char who[sizeof(((struct ctl_state *)0)->who)];
	struct MHD_Connection *con; /* NULL through ctl_api_dispatch() */
	/* Its request-target as it came (on_uri()), before libmicrohttpd
	 * split off the query and decoded it in place, and whether its path
	 * holds a NUL byte: refused, as the decoded URL ends there. */
	const char *raw_uri;
	size_t raw_len;
	int bad_path;
	int begun; /* on_request() has seen it */
	int counted; /* a write admitted before the stop: in api->writes */
};

static int read_only(const struct req *q)
{
	return q->access != ACCESS_WRITE;
}

struct capture_stream;

struct reply {
	int status;
	json_t *body; /* JSON, or NULL with text */
	char *text;
	const char *ctype;
	struct capture_stream *stream; /* a capture's pcapng instead (ROUTE_CAPTURE) */
	struct shared_text *shared; /* a shared text instead (one reference) */
	int close; /* "Connection: close": the connection ends with this answer */
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
	/* A table in a PUT is a JSON string of up to 256 MiB: jansson's reader
	 * took a second for 25 MB. The fast reader builds the same tree, and
	 * leaves every refusal, and its message, to jansson (fwd_json.h). */
	/* any value: one that is not an object is said by its kind below */
	j = fwd_json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (j == NULL) {
		struct fwd_err e;

		fwd_json_body_err(&e, &je);
		reply_err(r, &e);
		return NULL;
	}
	if (!json_is_object(j)) {
		static const char *const kind[] = {
			[JSON_ARRAY] = "an array",   [JSON_STRING] = "a string",
			[JSON_INTEGER] = "a number", [JSON_REAL] = "a number",
			[JSON_TRUE] = "true",	     [JSON_FALSE] = "false",
			[JSON_NULL] = "null",
		};
		const int t = json_typeof(j);

		snprintf(reason, sizeof(reason), "the body is %s; a JSON object is required",
			 t >= 0 && t < (int)(sizeof(kind) / sizeof(kind[0])) && kind[t]
				 ? kind[t]
				 : "not an object");
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
	if (fwd_text_check(json_string_value(v), json_string_length(v), key, reason,
			   sizeof(reason))) {
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

	/* Absent is the default; an explicit null is not an integer (a PUT's
	 * required expected_generation once passed as null). */
	if (v == NULL)
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

/* A required string field: absent and of another type are told apart (a
 * document of 5 or null was answered "'document' ... is required"). */
static int need_str(json_t *b, const char *key, const char *what, struct reply *r)
{
	json_t *v = json_object_get(b, key);
	char reason[160];

	if (json_is_string(v))
		return 0;
	snprintf(reason, sizeof(reason),
		 v == NULL ? "'%s' (%s) is required" : "'%s' must be a string (%s)", key, what);
	reply_simple(r, FWD_R_BAD_REQUEST, key, reason);
	return -1;
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

/* A stale expected_generation is answered before the change is validated,
 * by every write that takes one (PUT, PATCH, prefixes, rollback): a PATCH
 * once checked its changes against a table its writer had not read and
 * answered 422 where PUT answered 409 stale_generation. */
static int stale(const struct ctl_state *st, int64_t expected, struct reply *r)
{
	struct fwd_err e;

	if (ctl_state_check_expected(st, expected, &e) == 0)
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

/* A change that changes nothing (a PATCH to what the table already says, a
 * rollback to the current generation): answered as ctl_state_apply()
 * answers the current document again, 200 with changed false, after the
 * same precondition. Each once made a generation, pushed to regionfwd (a
 * PATCH's document is the model as JSON, never the bytes of a YAML
 * table, and a delta generation's hash is its chain's). */
static void reply_noop(struct ctl_api *api, struct reply *r, int64_t expected)
{
	struct fwd_err e;

	if (ctl_state_apply_noop(api->st, expected, &e)) {
		reply_err(r, &e);
		return;
	}
	r->status = 200;
	r->body = json_pack("{s:o, s:b}", "generation", gen_json(ctl_state_current(api->st)),
			    "changed", 0);
}

/* Apply and answer with the new generation (or the no-op). */
/* A document applied as PUT applies it. For a PATCH, @model and @src (else
 * NULL) are the patched model and its origins, which name a refusal by the
 * change that caused it. */
static void do_apply(struct ctl_api *api, struct reply *r, const char *doc, size_t len,
		     const char *author, const char *comment, int64_t expected, int64_t confirm_s,
		     const json_t *model, const struct ctl_patch_src *src)
{
	struct ctl_state *st = api->st;
	struct fwd_err e;
	int64_t id;

	/* Armed with the change's write-ahead record (ctl_state.h). */
	st->confirm_next_s = confirm_s;
	id = ctl_state_apply(st, doc, len, author ? author : "api", comment, expected, 1, &e);
	st->confirm_next_s = 0;
	if (id < 0) {
		if (model != NULL && strcmp(e.file, "document") == 0)
			ctl_patch_name_source(src, model, &e);
		reply_err(r, &e);
		return;
	}
	r->status = 200;
	r->body = json_pack("{s:o, s:b}", "generation", gen_json(ctl_state_current(st)), "changed",
			    id > 0);
	if (id > 0 && confirm_s > 0)
		json_object_set_new(r->body, "confirm_by", json_integer(st->confirm_deadline));
	if (id > 0 && confirm_s > 0)
		json_object_set_new(r->body, "confirm_within_s",
				    json_integer(ctl_confirm_left_s(st)));
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
	if (need_str(b, "document", "the table, YAML or JSON text", r))
		goto out;
	if (json_object_get(b, "expected_generation") == NULL) {
		reply_simple(r, FWD_R_BAD_REQUEST, "expected_generation",
			     "'expected_generation' is required: the generation this table "
			     "replaces (0 for none)");
		goto out;
	}
	if (confirm_pending(api->st, r) || stale(api->st, expected, r))
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
		 expected, confirm, NULL, NULL);
out:
	json_decref(b);
}

static void h_patch_table(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"changes", "expected_generation", "author",
					   "comment", "confirm_timeout_s",   NULL};
	json_t *b = body_json(q, r), *m = NULL, *m0 = NULL, *changes;
	const char *author, *comment;
	int64_t expected = -1, confirm = 0;
	struct ctl_patch_src src = {0};
	struct fwd_err e;
	size_t dlen;
	char *doc;

	if (b == NULL)
		return;
	if (check_keys(b, keys, r) || opt_str(b, "author", 63, &author, r) ||
	    opt_str(b, "comment", 255, &comment, r) ||
	    opt_int(b, "expected_generation", 0, INT64_MAX, &expected, r) ||
	    opt_int(b, "confirm_timeout_s", 1, 86400, &confirm, r))
		goto out;
	changes = json_object_get(b, "changes");
	if (!json_is_array(changes) || json_array_size(changes) == 0) {
		reply_simple(r, FWD_R_BAD_REQUEST, "changes", "'changes' must be a non-empty list");
		goto out;
	}
	/* An unknown op is a malformed body, said before a stale generation
	 * (it answered 409 stale_generation: a probe), as api.md orders them. */
	if (ctl_patch_check(changes, &e)) {
		reply_err(r, &e);
		goto out;
	}
	if (confirm_pending(api->st, r) || stale(api->st, expected, r))
		goto out;
	if (api->st->table == NULL) {
		reply_simple(r, FWD_R_NO_TABLE, "", "there is no table to change yet; PUT one");
		goto out;
	}
	m = ctl_model(api->st->table);
	m0 = m ? json_deep_copy(m) : NULL;
	if (m == NULL || m0 == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		goto out;
	}
	if (ctl_patch_apply(m, changes, &src, &e)) {
		reply_err(r, &e);
		goto out;
	}
	if (json_equal(m, m0)) {
		reply_noop(api, r, expected);
		goto out;
	}
	doc = ctl_model_dump(m, &dlen);
	if (doc == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		goto out;
	}
	/* A patch has a current generation to revert to: it patches it. */
	do_apply(api, r, doc, dlen, author, comment, expected, confirm, m, &src);
	free(doc);
out:
	ctl_patch_src_free(&src);
	json_decref(m0);
	json_decref(m);
	json_decref(b);
}

/* POST /v1/prefixes: a batch of prefix changes as one delta generation
 * (ctl_state_apply_delta), refused whole at its first problem. The body is
 * read by ctl_prefixes.c's scanner, not into a JSON tree: 200,000 changes
 * cost the delta's array and nothing per change. */
static void h_prefixes(struct ctl_api *api, const struct req *q, struct reply *r)
{
	struct ctl_state *st = api->st;
	struct ctl_prefixes_req pq;
	struct fwd_delta_stats ds;
	struct fwd_err e;
	int64_t id;
	char h[17];

	if (q->len == 0) {
		reply_simple(r, FWD_R_BAD_REQUEST, "", "a JSON object body is required");
		return;
	}
	if (st->table == NULL) {
		/* a stale generation first, as every write answers it */
		if (!stale(st, ctl_prefixes_expected(q->body, q->len), r))
			reply_simple(r, FWD_R_NO_TABLE, "",
				     "there is no table to change yet; PUT one");
		return;
	}
	if (ctl_prefixes_parse(q->body, q->len, st->table, &pq, &e)) {
		/* A change refused (a region a concurrent PUT removed): what
		 * every write checks first comes first, a stale generation
		 * included. A malformed body stays 400: it has no generation. */
		if (e.reason_code != FWD_R_BAD_REQUEST && e.reason_code != FWD_R_INTERNAL &&
		    (confirm_pending(st, r) ||
		     stale(st, ctl_prefixes_expected(q->body, q->len), r)))
			return;
		reply_err(r, &e);
		return;
	}
	if (confirm_pending(st, r))
		goto out;
	id = ctl_state_apply_delta(st, &pq.d, pq.author[0] ? pq.author : "api",
				   pq.comment[0] ? pq.comment : NULL, pq.expected, &ds, &e);
	if (id < 0) {
		/* fwd_delta_apply names the change by its position in the batch;
		 * the client knows it as changes[i].add[j]. */
		ctl_prefixes_locate(q->body, q->len, &e);
		/* The table's name without a line says nothing the path does not:
		 * the batch is not a document. */
		if (e.line == 0)
			e.file[0] = '\0';
		reply_err(r, &e);
		goto out;
	}
	snprintf(h, sizeof(h), "%016" PRIx64, ctl_state_current(st)->hash);
	r->status = 200;
	r->body = json_pack("{s:I, s:s, s:b, s:I, s:I, s:I}", "generation",
			    (json_int_t)ctl_state_current(st)->id, "hash", h, "noop", id == 0,
			    "added", (json_int_t)(ds.added4 + ds.added6), "removed",
			    (json_int_t)(ds.removed4 + ds.removed6), "unchanged",
			    (json_int_t)ds.unchanged);
out:
	fwd_delta_clear(&pq.d);
}

/* The link groups of @t that something steers to (a policy, the default, a
 * content rule) and that no member can carry now: each is down, drained or
 * of weight 0, so what goes there is dropped (no_link_up). Weights alone
 * are refused by the validator; drain and down are an operator's to make
 * (maintenance), so said, not refused: draining the last member once went
 * without a word (a walkthrough). NULL when there is none. */
static json_t *groups_carrying_nothing(const struct fwd_table *t)
{
	json_t *out = NULL;

	for (uint16_t g = 0; t && g < t->ngroups; g++) {
		const struct fwd_group *gr = &t->groups[g];
		uint32_t users = 0;
		int carries = 0;

		for (uint16_t m = 0; m < gr->nmembers && !carries; m++) {
			const struct fwd_link *l = &t->links[gr->members[m].link];

			carries = gr->members[m].weight && l->up && !l->drained;
		}
		if (carries)
			continue;
		for (uint32_t p = 0; p < t->npolicies; p++)
			users += t->policies[p].action == FWD_ACT_GROUP &&
				 t->policies[p].target == g;
		for (uint32_t c = 0; c < t->ncontent; c++)
			users += t->content[c].action == FWD_CA_STEER &&
				 t->content[c].target_kind == FWD_ACT_GROUP &&
				 t->content[c].target == g;
		if (users == 0)
			continue;
		if (out == NULL)
			out = json_array();
		json_array_append_new(out, json_pack("{s:s, s:I}", "group", gr->name, "users",
						     (json_int_t)users));
	}
	return out;
}

/* The policies (the default included) and content rules that send to link
 * @l of @t directly, not through a group: a steer or a mirror copy. */
static uint32_t link_users(const struct fwd_table *t, uint16_t l)
{
	uint32_t users = 0;

	for (uint32_t p = 0; p < t->npolicies; p++)
		users += (t->policies[p].action == FWD_ACT_LINK && t->policies[p].target == l) ||
			 t->policies[p].mirror == l;
	for (uint32_t c = 0; c < t->ncontent; c++)
		users += (t->content[c].action == FWD_CA_STEER ||
			  t->content[c].action == FWD_CA_MIRROR) &&
			 t->content[c].target_kind == FWD_ACT_LINK && t->content[c].target == l;
	return users;
}

/* The links of @t a maintenance state leaves otherwise than it may seem,
 * as groups_carrying_nothing says of groups (a probe: both went without a
 * word). @down: down, with policies or content rules steering or
 * mirroring to it directly, whose traffic drops (no_link_up; a mirror
 * copy is skipped). @lone: drained but a member of no group, so the drain
 * moves nothing: it still carries what is steered or mirrored to it.
 * Either NULL when there is none. */
static void links_in_maintenance(const struct fwd_table *t, json_t **down, json_t **lone)
{
	*down = *lone = NULL;
	for (uint16_t l = 0; t && l < t->nlinks; l++) {
		const struct fwd_link *lk = &t->links[l];
		uint32_t users;
		int grouped = 0;
		json_t **into = lk->up ? lone : down;

		if (lk->up && !lk->drained)
			continue;
		users = link_users(t, l);
		for (uint16_t g = 0; g < t->ngroups && !grouped; g++)
			for (uint16_t m = 0; m < t->groups[g].nmembers && !grouped; m++)
				grouped = t->groups[g].members[m].link == l;
		/* a drained link in no group with nothing steered to it: the
		 * drain changes nothing, and nothing is there to say */
		if (lk->up ? grouped || users == 0 : users == 0)
			continue;
		if (*into == NULL && (*into = json_array()) == NULL)
			continue;
		json_array_append_new(*into, json_pack("{s:s, s:I}", "link", lk->name, "users",
						       (json_int_t)users));
	}
}

/* groups_carrying_nothing, links_down_in_use and links_drained_alone into
 * @body when there are any. */
static void maintenance_warnings(const struct fwd_table *t, json_t *body)
{
	json_t *dark = groups_carrying_nothing(t), *down, *lone;

	links_in_maintenance(t, &down, &lone);
	if (dark)
		json_object_set_new(body, "groups_carrying_nothing", dark);
	if (down)
		json_object_set_new(body, "links_down_in_use", down);
	if (lone)
		json_object_set_new(body, "links_drained_alone", lone);
}

/* A link of @t whose port the node regionfwd runs lacks, by regionfwd's
 * last report (its ports by name): regionfwd refuses such a table, so
 * validate says so as regionfwd would, where it once said "valid" and the
 * apply was refused (a walkthrough). Without a report, nothing is known of
 * the ports and nothing is said. @return 1 with @e set, else 0. */
static int port_missing(const struct ctl_state *st, const struct fwd_table *t, struct fwd_err *e)
{
	const json_t *rep = st->dp_report ? st->dp_report : st->dp_last,
		     *ports = json_object_get(rep, "ports"), *p;
	size_t i, used = 0;
	char list[256] = "", path[FWD_NAME_MAX + 16];

	if (!json_is_array(ports) || json_array_size(ports) == 0)
		return 0;
	for (uint16_t l = 0; l < t->nlinks; l++) {
		int found = 0;

		json_array_foreach(ports, i, p) {
			const char *name = json_string_value(json_object_get(p, "name"));

			found |= name && strcmp(name, t->links[l].port) == 0;
		}
		if (found)
			continue;
		json_array_foreach(ports, i, p)
			if (used < sizeof(list))
				used += (size_t)snprintf(
					list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					json_string_value(json_object_get(p, "name")) ?: "?");
		snprintf(path, sizeof(path), "links.%s.port", t->links[l].name);
		fwd_err_fail(e, FWD_R_INVALID_TABLE, t->source, t->links[l].port_line, path,
			     "no port '%s' on the node regionfwd runs (ports: %s): regionfwd would "
			     "refuse the table",
			     t->links[l].port, list);
		return 1;
	}
	return 0;
}

/* validate's answer for @doc: checked as a PUT of it (@written) or as a
 * rollback to it (not: the checks newer than some stored tables are for
 * documents someone writes), and what it would change. */
static void answer_validate(struct ctl_api *api, struct reply *r, const char *doc, size_t len,
			    int written)
{
	struct fwd_err e;
	struct fwd_table *t;

	t = written ? ctl_state_validate_written(api->st, doc, len, "document", &e)
		    : ctl_state_validate(api->st, doc, len, "document", &e);
	if (t != NULL && port_missing(api->st, t, &e)) {
		fwd_table_free(t);
		t = NULL;
	}
	if (t == NULL) {
		reply_err(r, &e);
		json_object_set_new(r->body, "valid", json_false());
		return;
	}
	r->status = 200;
	r->body = json_pack("{s:b}", "valid", 1);
	if (api->st->table) {
		const struct ctl_ext *f = ctl_state_ext(api->st, "filters");
		json_t *diff = ctl_diff(api->st->table, t),
		       *imp = ctl_impact(api->st->table, t, 10000),
		       *win = api->st->traffic ? ctl_traffic_window(api->st->traffic, fwd_mono_ms())
					       : NULL,
		       *fs = f && f->status ? f->status(f->arg, api->st->table) : NULL;

		json_object_set_new(imp, "moves", ctl_traffic_moves(api->st->table, t, 100000));
		ctl_traffic_annotate(imp, diff, api->st->table, t, win, fs);
		json_t *handovers = ctl_state_handovers(api->st, t),
		       *weakened = ctl_residency_weakened(api->st->table, t),
		       *states = ctl_link_states_changed(api->st->table, t);

		json_object_set_new(r->body, "diff", diff);
		json_object_set_new(r->body, "impact", imp);
		/* As a write's answer would say them, whatever the moves'
		 * bound (impact.moves stops counting at 100,000 prefixes). */
		if (handovers)
			json_object_set_new(r->body, "residency_handovers", handovers);
		if (weakened)
			json_object_set_new(r->body, "residency_weakened", weakened);
		if (states)
			json_object_set_new(r->body, "link_states_changed", states);
		maintenance_warnings(t, r->body);
		json_decref(win);
		json_decref(fs);
	}
	fwd_table_free(t);
}

static void h_validate(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"document", NULL};
	json_t *b = body_json(q, r), *d;

	if (b == NULL)
		return;
	if (check_keys(b, keys, r))
		goto out;
	if (need_str(b, "document", "the table, YAML or JSON text", r))
		goto out;
	d = json_object_get(b, "document");
	/* as a PUT of it would be, the running document included (a review:
	 * validate refused what a PUT of it took as a no-op) */
	answer_validate(api, r, json_string_value(d), json_string_length(d), 1);
out:
	json_decref(b);
}

/* Whether @g is the automatic revert of @to (ctl_confirm.c writes its
 * comment; nothing comes between an unconfirmed change and its revert). */
static int reverted_by(const struct ctl_gen *to, const struct ctl_gen *g)
{
	char c[64];

	snprintf(c, sizeof(c), "automatic revert: generation %" PRIu64 " ", to->id);
	/* and made by the timer: a PUT may carry any comment (a review) */
	return strncmp(g->comment, c, strlen(c)) == 0 &&
	       strcmp(g->by, "regiond (commit-confirm timer)") == 0;
}

static void h_rollback(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {
		"generation", "expected_generation", "author", "comment", "dry_run", NULL};
	json_t *b = q->len ? body_json(q, r) : json_object(), *dry;
	const struct ctl_gen *cur = ctl_state_current(api->st), *to = NULL;
	const char *author, *comment, *doc;
	int64_t gen = 0, expected = -1;
	struct fwd_err e;
	size_t len;
	char c[300];

	if (b == NULL)
		return;
	/* A preview: what the rollback would run and change, as validate
	 * answers a document (its residency rules' weakening before it runs,
	 * not after: a walkthrough). Nothing changes, so nothing waits for a
	 * confirm or compares the generation; and a preview from the first
	 * check on, refused or not (route() logs no change for it). */
	dry = json_object_get(b, "dry_run");
	if (json_is_true(dry))
		api->st->write_kind = CTL_WRITE_PREVIEW;
	if (check_keys(b, keys, r) || opt_str(b, "author", 63, &author, r) ||
	    opt_str(b, "comment", 255, &comment, r) ||
	    opt_int(b, "generation", 1, INT64_MAX, &gen, r) ||
	    opt_int(b, "expected_generation", 0, INT64_MAX, &expected, r))
		goto out;
	if (dry && !json_is_boolean(dry)) {
		reply_simple(r, FWD_R_BAD_REQUEST, "dry_run", "'dry_run' must be true or false");
		goto out;
	}
	if (!json_is_true(dry) && (confirm_pending(api->st, r) || stale(api->st, expected, r)))
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
	if (gen == 0 && cur && reverted_by(to, cur)) {
		/* "The previous one" after an automatic revert is the change
		 * that went unconfirmed: a plain rollback ran it again, with no
		 * confirmation asked (a walkthrough). Named, it is a choice. */
		char why[200];

		snprintf(why, sizeof(why),
			 "the previous generation, %" PRIu64 ", is the change generation %" PRIu64
			 " reverted when it went unconfirmed; to run it again, name it "
			 "('generation': %" PRIu64 ")",
			 to->id, cur->id, to->id);
		reply_simple(r, FWD_R_BAD_REQUEST, "generation", why);
		goto out;
	}
	if (json_is_true(dry)) {
		/* not a write (write_kind PREVIEW, above): route() neither logs
		 * its refusal as a refused change nor asks regionfwd for a fresh
		 * report after it */
		if ((doc = ctl_state_doc(api->st, to, &len, &e)) == NULL) {
			reply_err(r, &e);
			goto out;
		}
		answer_validate(api, r, doc, len, 0);
		if (json_is_object(r->body)) {
			json_object_set_new(r->body, "rollback_to",
					    json_integer((json_int_t)to->id));
			/* as the rollback itself answers it: no change (a probe) */
			json_object_set_new(r->body, "runs_already",
					    json_boolean(cur && to->id == cur->id));
		}
		goto out;
	}
	if (cur && to->id == cur->id) {
		reply_noop(api, r, expected);
		goto out;
	}
	snprintf(c, sizeof(c), "rollback to generation %" PRIu64 "%s%s", to->id,
		 comment ? ": " : "", comment ? comment : "");
	/* The target's document gets a new id; residency is checked again. A
	 * delta generation's is its table's model, replayed from the nearest
	 * document before it. */
	if ((doc = ctl_state_doc(api->st, to, &len, &e)) == NULL) {
		reply_err(r, &e);
		goto out;
	}
	/* What the feed had added to the target is the feed's again
	 * (docs/bgp-feed.md, rollback), not static. */
	api->st->rollback_of = to->id;
	do_apply(api, r, doc, len, author, c, expected, 0, NULL, NULL);
	api->st->rollback_of = 0;
out:
	json_decref(b);
}

/* {} confirms whatever awaits confirmation (as before); {"generation": N}
 * confirms N only, and answers a retry of the last one confirmed with
 * "already" (docs/api.md). */
static void h_confirm(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"generation", NULL};
	struct fwd_err e;
	uint64_t gen;
	int64_t want = 0;
	int already;
	json_t *b = q->len ? body_json(q, r) : json_object();

	/* A body, if any, is an object with at most the generation
	 * (docs/api.md: unknown fields are refused). */
	if (b == NULL)
		return;
	if (check_keys(b, keys, r) || opt_int(b, "generation", 1, INT64_MAX, &want, r)) {
		json_decref(b);
		return;
	}
	json_decref(b);
	gen = ctl_confirm_accept(api->st, (uint64_t)want, &already, &e);
	if (gen == 0) {
		reply_err(r, &e);
		return;
	}
	r->status = 200;
	r->body = json_pack("{s:I}", "confirmed", (json_int_t)gen);
	if (already)
		json_object_set_new(r->body, "already", json_true());
}

void ctl_api_publish(struct ctl_api *api)
{
	struct ctl_state *st = api->st;
	const struct ctl_gen *cur = ctl_state_current(st);
	const char *ran = json_string_value(
		json_object_get(json_object_get(st->dp_report, "generation"), "hash"));
	const struct ctl_ext *x = ctl_state_ext(st, "filters");
	json_t *v, *old, *filters = NULL;
	int in_sync;

	/* Compared now, not when the report was taken: a change made since
	 * (the confirm timer's revert) must not read as in sync. */
	in_sync = ran && !st->dp_foreign && ctl_state_runs(st, strtoull(ran, NULL, 16));
	v = json_pack("{s:o, s:{s:b, s:b, s:O?}, s:o, s:o}", "generation", gen_json(cur),
		      "dataplane", "connected", st->dp_report != NULL, "in_sync", in_sync, "status",
		      st->dp_report ? st->dp_report : st->dp_last, "confirm", ctl_confirm_json(st),
		      "alarm", st->alarm[0] ? json_string(st->alarm) : json_null());

	if (v == NULL)
		return; /* out of memory: the previous view stays */
	{
		/* regionfwd's status.controller names this when this regiond
		 * pushed what runs. */
		char sid[17];

		snprintf(sid, sizeof(sid), "%016" PRIx64, st->state_id);
		json_object_set_new(v, "state_id", json_string(sid));
	}
	/* The state disk's room, as the main loop last read it (null before). */
	json_object_set_new(
		v, "state_disk",
		st->disk_known ? json_pack("{s:I, s:I}", "free_bytes",
					   (json_int_t)(st->disk_free > INT64_MAX ? INT64_MAX
										  : st->disk_free),
					   "need_bytes", (json_int_t)st->disk_need)
			       : json_null());
	/* The XDP filter's summary: GET /v1/filters without the rules. */
	if (x && x->status && (filters = x->status(x->arg, NULL)) != NULL)
		json_object_del(filters, "rules");
	json_object_set_new(v, "filters", filters ? filters : json_null());
	/* The routing feed's summary (GET /v1/feed with shorter lists). */
	x = ctl_state_ext(st, "feed");
	json_object_set_new(v, "feed", x && x->status ? x->status(x->arg, NULL) : json_null());
	/* The fleet agent's part is not in the view: status_json() reads it
	 * when asked. */
	pthread_mutex_lock(&api->view_lock);
	old = api->view;
	api->view = v;
	api->view_report_ms = st->dp_report_ms;
	pthread_mutex_unlock(&api->view_lock);
	json_decref(old);
}

/* ctl_state's end-of-write hook: the view follows every write. */
static void publish_on_write(void *arg)
{
	ctl_api_publish(arg);
}

/* The box's health from a status model (docs/operations.md, health for
 * monitoring), in the monitoring-plugin convention regionctl status exits
 * with: healthy (0) when regionfwd runs regiond's current generation and no
 * alarm is raised; degraded (1) when it answers but runs something else, or
 * an alarm is raised; unreachable (2) when regionfwd has not answered, or
 * its last answer is over 10 s old (regiond asks every second). A
 * validate-only fleet node has no regionfwd: only its alarm and filters
 * count. */
json_t *ctl_api_health(const json_t *status)
{
	const json_t *dp = json_object_get(status, "dataplane"),
		     *age = json_object_get(dp, "report_age_ms");
	const char *state = "healthy", *why = "regionfwd runs the current generation";
	int code = 0;
	/* --fleet-validate-only runs without regionfwd by design (docs/fleet.md):
	 * nothing there to be unreachable or out of sync, but an alarm (a stray
	 * pin, a twin under its node name) degrades it as any box. It used to be
	 * "unreachable" here while its fleet report said 0. */
	int no_dataplane =
		json_is_true(json_object_get(json_object_get(status, "fleet"), "validate_only"));

	if (no_dataplane) {
		why = "validate only (--fleet-validate-only): no regionfwd here by design";
	} else if (json_is_false(json_object_get(dp, "connected")) ||
		   !json_is_object(json_object_get(dp, "status")) || !json_is_integer(age) ||
		   json_integer_value(age) > 10000) {
		state = "unreachable", code = 2;
		/* Over 10 s only when the age says so: a regionfwd that just
		 * went away has no status but a young last answer. */
		why = !json_is_integer(age)		? "regionfwd has not answered"
		      : json_integer_value(age) > 10000 ? "regionfwd has not answered for over 10 s"
							: "regionfwd is not connected";
	}
	if (code != 0) {
		/* unreachable says it all */
	} else if (json_is_string(json_object_get(status, "alarm"))) {
		state = "degraded", code = 1,
		why = json_string_value(json_object_get(status, "alarm"));
	} else if (!no_dataplane && !json_is_true(json_object_get(dp, "in_sync"))) {
		state = "degraded", code = 1;
		why = json_is_null(json_object_get(status, "generation"))
			      ? "regiond has no table yet"
			      : "regionfwd does not run the current generation";
	} else {
		/* An --xdp-iface without the filter (not detached on purpose):
		 * its traffic is unfiltered. Named: the reason is what a pager
		 * shows. */
		static __thread char named[256]; /* an altname may be 127 bytes */
		const json_t *f = json_object_get(status, "filters"), *v;
		size_t i;

		json_array_foreach(json_is_true(json_object_get(f, "detached"))
					   ? NULL
					   : json_object_get(f, "interfaces"),
				   i, v)
			if (!json_is_true(json_object_get(v, "ours"))) {
				state = "degraded", code = 1;
				snprintf(named, sizeof(named),
					 "--xdp-iface %s does not carry the XDP filter (status "
					 "filters.interfaces)",
					 json_string_value(json_object_get(v, "interface")));
				why = named;
				break;
			}
		/* a second regiond given it by another name could adopt it */
		json_array_foreach(code || json_is_true(json_object_get(f, "detached"))
					   ? NULL
					   : json_object_get(f, "interfaces"),
				   i, v)
			if (json_is_false(json_object_get(v, "claimed"))) {
				state = "degraded", code = 1;
				snprintf(named, sizeof(named),
					 "another process holds the claim of --xdp-iface %s: "
					 "it could adopt the XDP filter "
					 "(status filters.interfaces)",
					 json_string_value(json_object_get(v, "interface")));
				why = named;
				break;
			}
		if (code == 0 && json_is_true(json_object_get(f, "foreign_writer"))) {
			state = "degraded", code = 1;
			why = "the XDP filter's maps were written by another process (a second "
			      "regiond?); the next change applied writes them again (status "
			      "filters.foreign_writer)";
		}
	}
	return json_pack("{s:s, s:i, s:s}", "state", state, "exit", code, "reason", why);
}

/* The status model: the view, regiond's own part, the age of regionfwd's
 * report (*@report_ms: its CLOCK_MONOTONIC ms, 0 before the first) and the
 * health. NULL on ENOMEM.
 * It is a read of the view (ctl_api_publish), without the state lock: what
 * regiond holds and what regionfwd last reported. It never asks regionfwd
 * and never pushes (the main loop's ctl_state_sync does). */
static json_t *status_json(struct ctl_api *api, int64_t *report_ms)
{
	const struct ctl_ext *x;
	json_t *b, *fleet;

	pthread_mutex_lock(&api->view_lock);
	b = json_deep_copy(api->view);
	*report_ms = api->view_report_ms;
	pthread_mutex_unlock(&api->view_lock);
	if (b == NULL)
		return NULL;
	/* The fleet agent's view (GET /v1/fleet without its last report),
	 * read now from the agent's own lock, not published with the view:
	 * that is once per main-loop turn, and an etcd refusal the agent met
	 * since must not be missing from a status asked right after GET
	 * /v1/fleet showed it. */
	x = ctl_state_ext(api->st, "fleet");
	fleet = x && x->status ? x->status(x->arg, NULL) : NULL;
	json_object_del(fleet, "report");
	json_object_set_new(b, "fleet", fleet ? fleet : json_null());
	json_object_set_new(b, "regiond",
			    json_pack("{s:s, s:I}", "version", CTL_REGIOND_VERSION, "uptime_s",
				      (json_int_t)(time(NULL) - api->started)));
	/* null until regiond first asked regionfwd */
	json_object_set_new(json_object_get(b, "dataplane"), "report_age_ms",
			    *report_ms ? json_integer(fwd_mono_ms() - *report_ms) : json_null());
	json_object_set_new(b, "health", ctl_api_health(b));
	return b;
}

static void h_status(struct ctl_api *api, const struct req *q, struct reply *r)
{
	int64_t report_ms;
	json_t *b = status_json(api, &report_ms);

	(void)q;
	if (b == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		return;
	}
	r->status = 200;
	r->body = b;
}

/* GET /v1/health: the status's health alone, for load balancers and probes
 * that read only the HTTP status: 200 healthy, 503 degraded or unreachable. */
static void h_health(struct ctl_api *api, const struct req *q, struct reply *r)
{
	json_t *h;

	h_status(api, q, r);
	if (r->status != 200)
		return;
	h = json_incref(json_object_get(r->body, "health"));
	json_decref(r->body);
	r->body = h;
	r->status =
		strcmp(json_string_value(json_object_get(h, "state")), "healthy") == 0 ? 200 : 503;
}

static void h_table(struct ctl_api *api, const struct req *q, struct reply *r)
{
	const struct ctl_gen *g = ctl_state_current(api->st);
	const char *doc, *model;
	char *gen = NULL, *dtext = NULL, *text = NULL;
	struct shared_text *s = NULL;
	json_t *gj = NULL, *ds = NULL;
	struct fwd_err e;
	size_t len, mlen, tlen;
	FILE *f;

	(void)q;
	if (g == NULL) {
		reply_simple(r, FWD_R_NO_TABLE, "", "no table yet");
		return;
	}
	pthread_mutex_lock(&api->table_lock);
	if (api->table_text && api->table_id == g->id && api->table_hash == g->hash)
		r->shared = shared_get(api->table_text);
	pthread_mutex_unlock(&api->table_lock);
	if (r->shared) {
		r->status = 200;
		r->ctype = "application/json";
		return;
	}
	/* The model's text is made once per generation and cached (a delta
	 * generation's document is that same text): a 1M-prefix table is not
	 * written out again for every read. The answer is put together as text,
	 * once per generation too. */
	if ((model = ctl_state_model_text(api->st, &mlen, &e)) == NULL ||
	    (doc = ctl_state_doc(api->st, g, &len, &e)) == NULL) {
		reply_err(r, &e);
		return;
	}
	gen = json_dumps(gj = gen_json(g), JSON_COMPACT | JSON_SORT_KEYS);
	ds = json_stringn(doc, len);
	dtext = ds ? json_dumps(ds, JSON_ENCODE_ANY) : NULL;
	if (gen && dtext && (f = open_memstream(&text, &tlen)) != NULL) {
		fprintf(f, "{\"document\": %s, \"generation\": %s, \"model\": ", dtext, gen);
		fwrite(model, 1, mlen, f);
		fputs("}\n", f);
		if (fclose(f) == 0 && (s = malloc(sizeof(*s) + tlen)) != NULL) {
			s->refs = 1; /* the cache's */
			s->len = tlen;
			memcpy(s->text, text, tlen);
		}
	}
	free(text);
	if (s == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
	} else {
		pthread_mutex_lock(&api->table_lock);
		shared_put(api->table_text); /* freed once its last reader is done */
		api->table_text = s;
		api->table_id = g->id;
		api->table_hash = g->hash;
		r->shared = shared_get(s);
		pthread_mutex_unlock(&api->table_lock);
		r->status = 200;
	}
	r->ctype = "application/json";
	json_decref(gj);
	json_decref(ds);
	free(gen);
	free(dtext);
}

/* A read's call to regionfwd (ROUTE_DP): on the reads' own connection,
 * without the state lock, so neither a write's push nor the main loop's
 * sync holds it up. Refused at once when regionfwd has not answered the
 * main loop for over 10 s (hung): a read must not take that long to say so.
 * Reads take the connection one at a time; the 10 s a read may wait
 * cover its wait for the connection too, so reads that queue behind one
 * on a regionfwd that just hung (two Prometheus servers, a top, a
 * dashboard) each answer within 10 s, not 10 s times their place in the
 * queue. */
#define READ_DP_MS 10000

static int read_dp_call(struct ctl_api *api, unsigned op, const ProtobufCMessage *req,
			ProtobufCMessage **reply, int wait_ms, struct fwd_err *e)
{
	int64_t seen, start = fwd_mono_ms(), left;
	struct timespec until;
	int rc;

	pthread_mutex_lock(&api->view_lock);
	seen = api->view_report_ms;
	pthread_mutex_unlock(&api->view_lock);
	if (seen && fwd_mono_ms() - seen > 10000) {
		fwd_err_fail(e, FWD_R_DATAPLANE_UNAVAILABLE, NULL, 0, "",
			     "regionfwd has not answered regiond for %lld s (regionctl status): "
			     "not asked",
			     (long long)((fwd_mono_ms() - seen) / 1000));
		return -EAGAIN;
	}
	if (api->dp_read == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return -ENOMEM;
	}
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	if (pthread_mutex_clocklock(&api->dp_read_lock, CLOCK_MONOTONIC, &until) != 0) {
		fwd_err_fail(e, FWD_R_DATAPLANE_UNAVAILABLE, NULL, 0, "",
			     "regionfwd did not answer within %.1f s: the read before this one "
			     "still waits for it",
			     wait_ms / 1e3);
		return -ETIMEDOUT;
	}
	left = wait_ms - (fwd_mono_ms() - start);
	rc = ctl_dp_call(api->dp_read, op, req, reply, (int)(left > 1 ? left : 1), e);
	pthread_mutex_unlock(&api->dp_read_lock);
	return rc;
}

/* regionfwd's counter report, read through the one reader of its model
 * (fwd_report_from_json), or NULL with @e. */
static struct fwd_report *dp_counters(struct ctl_api *api, int wait_ms, struct fwd_err *e)
{
	Regionfwd__Ctl__Empty req = REGIONFWD__CTL__EMPTY__INIT;
	Regionfwd__Ctl__CounterReport *rep;
	struct fwd_report *r = NULL;
	struct fwd_err je;
	json_t *j;

	if (read_dp_call(api, REGIONFWD__CTL__OP__OP_COUNTERS, &req.base, (ProtobufCMessage **)&rep,
			 wait_ms, e))
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
	struct fwd_report *c = dp_counters(api, READ_DP_MS, &e);

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
	json_t *xdp = NULL;
	Regionfwd__Ctl__ExplainReply *rep;
	struct fwd_err e;

	if (b == NULL)
		goto out;
	x = malloc(sizeof(*x));
	if (x == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		goto out;
	}
	if (ctl_explain_parse(b, x, &e)) {
		reply_err(r, &e);
		goto out;
	}
	/* The XDP stage first, from regiond's table (the state lock only for
	 * that): the filter runs before regionfwd ever sees the packet. */
	pthread_mutex_lock(api->lock);
	if (api->st->table) {
		const struct ctl_ext *f = ctl_state_ext(api->st, "filters");
		json_t *fs = f && f->status ? f->status(f->arg, api->st->table) : NULL;

		const struct ctl_gen *cur = ctl_state_current(api->st);

		xdp = ctl_explain_xdp(x, api->st->table, fs, cur ? cur->id : 0);
		json_decref(fs);
	}
	pthread_mutex_unlock(api->lock);
	if (read_dp_call(api, REGIONFWD__CTL__OP__OP_EXPLAIN, &x->req.base,
			 (ProtobufCMessage **)&rep, READ_DP_MS, &e)) {
		reply_err(r, &e);
		goto out;
	}
	r->body = json_loadb((const char *)rep->json.data, rep->json.len, 0, NULL);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	if (r->body == NULL) {
		reply_simple(r, FWD_R_DATAPLANE_BROKEN, "", "regionfwd's explanation is broken");
	} else {
		r->status = 200;
		json_object_set(r->body, "xdp", xdp ? xdp : json_null());
	}
out:
	json_decref(xdp);
	free(x);
	json_decref(b);
}

/* How long a scrape waits for regionfwd: READ_DP_MS, or less when the
 * scraper says it gives up sooner (Prometheus sends its scrape_timeout as
 * X-Prometheus-Scrape-Timeout-Seconds; 10 s by default): half a second
 * before that (a tenth of it, when that is less), at least 100 ms, so
 * that the scrape that says regiond_dataplane_up 0 when regionfwd hangs
 * arrives in time instead of failing. */
static int scrape_wait_ms(const struct req *q)
{
	const char *h = q->con ? MHD_lookup_connection_value(q->con, MHD_HEADER_KIND,
							     "X-Prometheus-Scrape-Timeout-Seconds")
			       : NULL;
	char *end;
	double s, ms;

	if (h == NULL)
		return READ_DP_MS;
	errno = 0;
	s = strtod(h, &end);
	if (errno || end == h || *end != '\0' || !(s > 0))
		return READ_DP_MS;
	ms = s * 1000;
	ms -= ms / 10 < 500 ? ms / 10 : 500; /* the scraper's own margin */
	return ms >= READ_DP_MS ? READ_DP_MS : ms < 100 ? 100 : (int)ms;
}

static void auth_totals(uint64_t *unauthorized, uint64_t *forbidden);

/* Everything regiond knows, and regionfwd's counters when it answers: a
 * regionfwd that is down still leaves the generation, its age, sync, alarm,
 * health and the XDP filter's counters to scrape. */
static void h_metrics(struct ctl_api *api, const struct req *q, struct reply *r)
{
	struct fwd_err e;
	struct fwd_report *c = dp_counters(api, scrape_wait_ms(q), &e);
	int64_t report_ms;
	json_t *s = status_json(api, &report_ms);
	struct ctl_metrics_in in = {
		.st = api->st,
		.r = c,
		.report_age_ms = report_ms ? fwd_mono_ms() - report_ms : -1,
		.health = (int)json_integer_value(
			json_object_get(json_object_get(s, "health"), "exit")),
		.started = api->started,
	};

	auth_totals(&in.refused_401, &in.refused_403);

	(void)q;
	if (s == NULL) {
		fwd_report_free(c);
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		return;
	}
	json_decref(s);
	pthread_mutex_lock(api->lock); /* the counters were read without it */
	r->text = ctl_metrics_render(&in);
	pthread_mutex_unlock(api->lock);
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
static int token_is(const char *want, const char *h, size_t n)
{
	size_t m = strlen(want);
	unsigned char diff = 0;

	for (size_t i = 0; i < m; i++)
		diff |= (unsigned char)(want[i] ^ (i < n ? h[i] : 0));
	return diff == 0 && n == m;
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

static void h_feed(struct ctl_api *api, const struct req *q, struct reply *r)
{
	const struct ctl_ext *x = ctl_state_ext(api->st, "feed");

	(void)q;
	if (x == NULL || x->status == NULL) {
		reply_simple(
			r, FWD_R_NOT_FOUND, "",
			"regiond runs without a routing feed (--feed-table, docs/bgp-feed.md)");
		return;
	}
	r->status = 200;
	r->body = x->status(x->arg, api->st->table);
}

/* GET /v1/fleet: the fleet agent's own view, from its own lock (a ROUTE_VIEW:
 * answered while a write holds the state lock). The extensions are fixed
 * before the API starts, so reading the list needs no lock. */
static void h_fleet(struct ctl_api *api, const struct req *q, struct reply *r)
{
	const struct ctl_ext *x = ctl_state_ext(api->st, "fleet");

	(void)q;
	if (x == NULL || x->status == NULL) {
		r->status = 200;
		r->body = json_pack("{s:b}", "enabled", 0);
		return;
	}
	r->body = x->status(x->arg, NULL);
	if (r->body == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		return;
	}
	json_object_set_new(r->body, "enabled", json_true());
	if (api->fleet_driver)
		json_object_set_new(r->body, "rollouts", ctl_rdriver_status(api->fleet_driver));
	r->status = 200;
}

/* The generation a write's answer names: {"generation": {"id": N}} (PUT,
 * PATCH, rollback), or {"generation": N} (POST /v1/prefixes, whose
 * unsaved batch was once answered as saved: a probe). 0 when none. */
static uint64_t answer_gen_id(const json_t *body)
{
	const json_t *g = json_object_get(body, "generation");

	return (uint64_t)json_integer_value(json_is_integer(g) ? g : json_object_get(g, "id"));
}

/* Its body, none or {} (it takes no field), checked before the filters'
 * state: a body that is not JSON, or names a field, is a 400 naming that
 * whether or not filters run (it was answered 404 no_filters). */
static int detach_body_bad(const struct req *q, struct reply *r)
{
	static const char *const keys[] = {NULL};
	json_t *b = q->len ? body_json(q, r) : json_object();
	int bad = b == NULL || check_keys(b, keys, r);

	json_decref(b);
	return bad;
}

static void h_filters_detach(struct ctl_api *api, const struct req *q, struct reply *r)
{
	const struct ctl_ext *x = ctl_state_ext(api->st, "filters");

	/* the body was checked by route(), before the filters' state */
	int rc = x->detach(x->arg);

	/* The box's XDP protection off, in one request: logged with who
	 * asked (it once left no trace but a metric, a walkthrough). */
	if (rc == 0 || rc == -EINPROGRESS)
		fwd_log(FWD_LOG_WARNING,
			"XDP filter detached by %s%s: the interfaces run unfiltered until regiond "
			"restarts",
			q->who,
			rc ? " (an interface out of this network namespace keeps it until it is "
			     "back)"
			   : "");
	else
		fwd_log(FWD_LOG_NOTICE, "XDP filter detach asked by %s: %s", q->who, strerror(-rc));
	r->status = 200;
	/* pending: an interface out of this network namespace keeps the
	 * program until it is back (ctl_filter_detach) */
	r->body = json_pack("{s:b, s:b}", "detached", rc == 0, "pending", rc == -EINPROGRESS);
}

/* A capture being streamed to its client, and whose turn it is. */
struct capture_stream {
	struct ctl_api *api;
	struct ctl_capture *cap;
	struct MHD_Connection *con;
};

static void capture_release(struct ctl_api *api)
{
	pthread_mutex_lock(&api->capture_lock);
	api->capture_owner[0] = '\0';
	pthread_mutex_unlock(&api->capture_lock);
}

/* POST /v1/capture: checked, started (regionfwd and the XDP filter say
 * yes or no here, before a byte of the stream), then streamed by
 * send_reply(). One at a time: a second is refused with capture_busy. */
static void h_capture(struct ctl_api *api, const struct req *q, struct reply *r)
{
	json_t *b = q->len ? body_json(q, r) : json_object();
	const union MHD_ConnectionInfo *ci;
	const struct ctl_ext *xdp;
	struct ctl_capture_req cq;
	struct capture_stream *s = NULL;
	struct ctl_dp *dp;
	struct fwd_err e;
	char reason[600];

	if (b == NULL)
		return;
	if (q->con == NULL) {
		reply_simple(r, FWD_R_BAD_REQUEST, "",
			     "a capture streams its answer: over a connection only");
		goto out;
	}
	if (ctl_capture_parse(b, &cq, &e)) {
		reply_err(r, &e);
		goto out;
	}
	pthread_mutex_lock(&api->capture_lock);
	if (api->capture_owner[0]) {
		/* Its id, and how to stop it: "stop it" named no way to (a
		 * walkthrough), and a capture without --count or --duration
		 * held everyone's off until its client was killed. */
		char how[96] = "";

		if (api->capture_running)
			snprintf(how, sizeof(how), " (regionctl capture --stop %llu)",
				 (unsigned long long)ctl_capture_id(api->capture_running));
		snprintf(reason, sizeof(reason),
			 "a capture for %s runs (%lld s so far); one at a time: wait for it or "
			 "stop it%s",
			 api->capture_owner,
			 (long long)((fwd_mono_ms() - api->capture_since) / 1000), how);
		pthread_mutex_unlock(&api->capture_lock);
		reply_simple(r, FWD_R_CAPTURE_BUSY, "", reason);
		goto out;
	}
	snprintf(api->capture_owner, sizeof(api->capture_owner), "%s", q->who);
	api->capture_since = fwd_mono_ms();
	pthread_mutex_unlock(&api->capture_lock);
	s = calloc(1, sizeof(*s));
	dp = api->dp_read ? ctl_dp_create_like(api->dp_read) : NULL;
	if (s == NULL || dp == NULL) {
		ctl_dp_free(dp);
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		goto fail;
	}
	ci = MHD_get_connection_info(q->con, MHD_CONNECTION_INFO_CONNECTION_FD);
	/* The XDP capture opens under the state lock, held only for the
	 * start (its drops are named later by the filter's own rule ids, for
	 * the generation that dropped each: ctl_filter.c). */
	pthread_mutex_lock(api->lock);
	xdp = ctl_state_ext(api->st, "filters");
	s->cap = ctl_capture_start(dp, &cq, q->who, xdp, api->st->table, ci ? ci->connect_fd : -1,
				   &e);
	pthread_mutex_unlock(api->lock);
	if (s->cap == NULL) {
		reply_err(r, &e);
		goto fail;
	}
	s->api = api;
	s->con = q->con;
	pthread_mutex_lock(&api->capture_lock);
	api->capture_running = s->cap;
	pthread_mutex_unlock(&api->capture_lock);
	r->status = 200;
	r->stream = s;
	goto out;
fail:
	free(s);
	capture_release(api);
out:
	json_decref(b);
}

/*
 * libmicrohttpd calls the stream's reader only while the client's socket
 * takes bytes: a client that stops reading but keeps its connection would
 * keep the capture, and the one capture slot, for as long as it liked. So
 * whenever the reader returns, the stream gets its deadline
 * (ctl_capture_deadline), enforced twice over:
 *  - libmicrohttpd's own idle timeout on the connection, set to the time
 *    left: a client that takes nothing more is closed by the connection's
 *    own thread when it passes. Alone it would not do: every byte a
 *    trickling client takes restarts it.
 *  - the head watch shuts the socket down at the deadline
 *    (ctl_headwatch_stream_deadline): every send after that fails, so the
 *    trickle stops and the timeout above runs out. Alone it would not do
 *    either: libmicrohttpd waits for a writable socket in select(), which
 *    reports a shut down unix socket whose peer's queue is full as neither
 *    writable nor in error (TCP, it does).
 * The stream ends at its deadline, or at worst one timeout after the last
 * byte the client took before it. While the reader runs, neither applies:
 * it bounds its own wait (the duration, regionfwd's timeout, the client's
 * hang-up), and may rightly wait long for a packet that matches.
 */
static void capture_arm(struct MHD_Connection *con, const struct ctl_capture *cap)
{
	int64_t deadline = ctl_capture_deadline(cap), left = deadline - fwd_mono_ms();

	ctl_headwatch_stream_deadline(con, deadline);
	/* In seconds, and 0 would mean none: at least 1. */
	MHD_set_connection_option(con, MHD_CONNECTION_OPTION_TIMEOUT,
				  (unsigned)(left <= 1000 ? 1 : (left + 999) / 1000));
}

static void capture_disarm(struct MHD_Connection *con)
{
	ctl_headwatch_stream_deadline(con, 0);
	MHD_set_connection_option(con, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
}

static ssize_t capture_chunk(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct capture_stream *s = cls;
	ssize_t n;

	(void)pos;
	capture_disarm(s->con);
	n = ctl_capture_read(s->cap, (uint8_t *)buf, max);
	capture_arm(s->con, s->cap);
	return n > 0	? n
	       : n == 0 ? MHD_CONTENT_READER_END_OF_STREAM
			: MHD_CONTENT_READER_END_WITH_ERROR;
}

/* The stream is over (or the client went): stop what runs, free the slot. */
static void capture_done(void *cls)
{
	struct capture_stream *s = cls;

	/* Out of a stop's reach first: it is freed next. */
	pthread_mutex_lock(&s->api->capture_lock);
	if (s->api->capture_running == s->cap)
		s->api->capture_running = NULL;
	pthread_mutex_unlock(&s->api->capture_lock);
	ctl_capture_free(s->cap);
	capture_release(s->api);
	free(s);
}

/* POST /v1/capture/stop {"capture": N}: end capture N as its duration
 * would, so that its stream ends with the statistics (regionctl's Ctrl-C;
 * a closed connection ends it without them). N is the stream's Capture-Id
 * header: one client does not stop another's capture by chance. */
static void h_capture_stop(struct ctl_api *api, const struct req *q, struct reply *r)
{
	json_t *b = body_json(q, r), *v;
	json_int_t id;

	if (b == NULL)
		return;
	v = json_object_get(b, "capture");
	if (!json_is_integer(v) || (id = json_integer_value(v)) < 1 || json_object_size(b) != 1) {
		reply_simple(r, FWD_R_BAD_REQUEST, "capture",
			     "the body is {\"capture\": N}, N the Capture-Id of the stream");
		json_decref(b);
		return;
	}
	pthread_mutex_lock(&api->capture_lock);
	if (api->capture_running && ctl_capture_id(api->capture_running) == (uint64_t)id) {
		ctl_capture_stop(api->capture_running);
		pthread_mutex_unlock(&api->capture_lock);
		fwd_log(FWD_LOG_NOTICE, "capture %lld: stopped by %s", (long long)id, q->who);
		r->status = 200;
		r->body = json_pack("{s:I}", "stopping", id);
	} else {
		char text[128];

		pthread_mutex_unlock(&api->capture_lock);
		snprintf(text, sizeof(text),
			 "no capture %lld streams here (it ended, or another one runs)",
			 (long long)id);
		reply_simple(r, FWD_R_NO_CAPTURE, "capture", text);
	}
	json_decref(b);
}

/* ---- fleet rollouts (docs/fleet.md, "Rollouts and gates") -------------- */

/* Served without the state lock (ROUTE_FLEET): etcd calls may take their
 * timeout, and the state is not theirs; only the validation takes it. */
static struct ctl_etcd *fleet_client(struct ctl_api *api, struct reply *r)
{
	struct fwd_err e;
	struct ctl_etcd *c;

	if (api->fleet == NULL) {
		reply_simple(r, FWD_R_NOT_FLEET, "",
			     "regiond runs in single-box mode (no --fleet-endpoints): no fleet, no "
			     "rollouts");
		return NULL;
	}
	c = ctl_etcd_create(&api->fleet->etcd, &e);
	if (c == NULL)
		reply_err(r, &e);
	return c;
}

static void h_fleet_rollout_create(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"document", "options", "author", NULL};
	json_t *b = body_json(q, r), *d, *o;
	struct ctl_rollout *ro = NULL;
	struct ctl_rollout_opts opts;
	struct ctl_etcd *c = NULL;
	struct fwd_table *t;
	const char *author;
	char by[CTL_ROLLOUT_BY_MAX + 1];
	struct fwd_err e;

	if (b == NULL)
		return;
	if (check_keys(b, keys, r) || opt_str(b, "author", 63, &author, r))
		goto out;
	if (need_str(b, "document", "the table, YAML or JSON text", r))
		goto out;
	d = json_object_get(b, "document");
	ctl_rollout_opts_default(&opts);
	o = json_object_get(b, "options");
	if (o && !json_is_null(o) && ctl_rollout_opts_from_json(&opts, o, &e)) {
		e.reason_code = FWD_R_BAD_REQUEST;
		reply_err(r, &e);
		goto out;
	}
	if ((c = fleet_client(api, r)) == NULL)
		goto out;
	/* The whole validation, residency included, before anything is
	 * written to etcd: a table every node would refuse never leaves. */
	pthread_mutex_lock(api->lock);
	t = ctl_state_validate_written(api->st, json_string_value(d), json_string_length(d),
				       "document", &e);
	pthread_mutex_unlock(api->lock);
	if (t == NULL) {
		reply_err(r, &e);
		goto out;
	}
	fwd_table_free(t);
	ro = malloc(sizeof(*ro));
	if (ro == NULL) {
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
		goto out;
	}
	snprintf(by, sizeof(by), "%.63s%s%.120s", author ? author : "", author ? " via " : "",
		 q->who);
	if (ctl_rstore_create(c, api->fleet->facility, json_string_value(d), json_string_length(d),
			      &opts, by,
			      (uint64_t)(api->fleet_driver ? ctl_rdriver_now_ms(api->fleet_driver)
							   : fwd_wall_ms()),
			      ro, &e)) {
		reply_err(r, &e);
		goto out;
	}
	fwd_log(FWD_LOG_NOTICE, "fleet rollout %s of table %s created by %s", ro->id, ro->table,
		by);
	r->status = 201;
	r->body = json_pack("{s:o}", "rollout", ctl_rollout_to_json(ro));
out:
	free(ro);
	ctl_etcd_free(c);
	json_decref(b);
}

static void h_fleet_rollout_active(struct ctl_api *api, const struct req *q, struct reply *r)
{
	struct ctl_etcd *c = fleet_client(api, r);
	struct ctl_rollout *ro = c ? malloc(sizeof(*ro)) : NULL;
	struct fwd_err e;

	(void)q;
	if (c == NULL)
		return;
	if (ro == NULL)
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
	else if (ctl_rstore_active(c, api->fleet->facility, ro, NULL, &e))
		reply_err(r, &e);
	else {
		const struct ctl_rollout_gate_info *g;
		size_t n = ctl_rollout_gates(&g);
		json_t *gates = json_array();

		/* What each gate watches, for the operator reading the record. */
		for (size_t i = 0; gates && i < n; i++)
			json_array_append_new(gates, json_pack("{s:s, s:s}", "name", g[i].name,
							       "fails_when", g[i].fails_when));
		r->status = 200;
		r->body = json_pack("{s:o, s:o, s:o}", "rollout", ctl_rollout_to_json(ro), "driver",
				    api->fleet_driver ? ctl_rdriver_status(api->fleet_driver)
						      : json_null(),
				    "gates", gates ? gates : json_null());
	}
	free(ro);
	ctl_etcd_free(c);
}

static void h_fleet_rollout_abort(struct ctl_api *api, const struct req *q, struct reply *r)
{
	struct ctl_etcd *c = fleet_client(api, r);
	struct ctl_rollout *ro = c ? malloc(sizeof(*ro)) : NULL;
	struct fwd_err e;
	int rc;

	if (c == NULL)
		return;
	if (ro == NULL)
		reply_simple(r, FWD_R_INTERNAL, "", "out of memory");
	else if ((rc = ctl_rstore_abort(c, api->fleet->facility, ro, &e)) == 1) {
		/* Unreadable: deleted with every pin (ctl_rollout_store.c). */
		fwd_log(FWD_LOG_WARNING,
			"fleet: rollout/active could not be read (%s): deleted with every pin by "
			"%s's abort; the nodes follow the desired table",
			e.reason, q->who);
		r->status = 202;
		r->body = json_pack("{s:{s:s, s:n}, s:s}", "rollout", "id", "", "previous",
				    "unreadable_removed", e.reason);
	} else if (rc)
		reply_err(r, &e);
	else {
		fwd_log(FWD_LOG_NOTICE, "fleet rollout %s: abort asked by %s", ro->id, q->who);
		r->status = 202;
		r->body = json_pack("{s:o}", "rollout", ctl_rollout_to_json(ro));
	}
	free(ro);
	ctl_etcd_free(c);
}

static void h_fleet_rollouts(struct ctl_api *api, const struct req *q, struct reply *r)
{
	struct ctl_etcd *c = fleet_client(api, r);
	struct fwd_err e;
	json_t *h;

	(void)q;
	if (c == NULL)
		return;
	h = ctl_rstore_history(c, api->fleet->facility, 100, &e);
	if (h == NULL)
		reply_err(r, &e);
	else {
		r->status = 200;
		r->body = json_pack("{s:s, s:o}", "facility", api->fleet->facility, "rollouts", h);
	}
	ctl_etcd_free(c);
}

static void h_fleet_nodes(struct ctl_api *api, const struct req *q, struct reply *r)
{
	struct ctl_etcd *c = fleet_client(api, r);
	struct fwd_err e;
	json_t *v = NULL;

	(void)q;
	if (c == NULL)
		return;
	if (ctl_rstore_nodes(c, api->fleet->facility, NULL, 0, &v, &e) < 0)
		reply_err(r, &e);
	else {
		struct ctl_rstore_pin *pins = calloc(CTL_ROLLOUT_NODES_MAX, sizeof(*pins));
		struct ctl_rstore_pinset set;
		json_t *pv = json_array(), *rep;
		uint64_t stale_ms = ctl_rdriver_report_stale_ms(api->fleet->report_ms);
		int64_t now = api->fleet_driver ? ctl_rdriver_now_ms(api->fleet_driver)
						: (int64_t)fwd_wall_ms();
		size_t k;
		int n;

		/* Each report's age: a report stays while its node's lease is
		 * kept (a node applying for long, a fleet thread hung beside a
		 * live keepalive), and one written an hour ago looked as live
		 * as one of a second ago. On this regiond's clock less the
		 * node's (both the wall time at their start advanced on the
		 * monotonic clock), so a difference between the boxes' clocks
		 * shows in it; a node's ahead reads as 0. */
		json_array_foreach(v, k, rep) {
			json_t *u = json_object_get(rep, "updated_at");
			int64_t age;

			if ((json_object_get(rep, "error") && !json_object_get(rep, "node")) ||
			    !json_is_integer(u))
				continue; /* unreadable: said as such */
			age = now - (int64_t)json_integer_value(u);
			if (age < 0)
				age = 0;
			json_object_set_new(rep, "age_ms", json_integer(age));
			json_object_set_new(rep, "report_stale",
					    json_boolean((uint64_t)age > stale_ms));
		}

		pthread_mutex_lock(&api->pins_lock);
		set = api->pins_cache;
		pthread_mutex_unlock(&api->pins_lock);
		n = pins && pv ? ctl_rstore_pins(c, api->fleet->facility, pins,
						 CTL_ROLLOUT_NODES_MAX, &set, &e)
			       : fwd_err_fail(&e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		if (n >= 0) {
			pthread_mutex_lock(&api->pins_lock);
			api->pins_cache = set;
			pthread_mutex_unlock(&api->pins_lock);
		}
		/* Every pin, with who owns it: a node's report says its own,
		 * this says those of nodes that do not report too. A pin that
		 * cannot be read is one entry saying why; pins that cannot be
		 * read at all (etcd) leave the nodes shown, with the error. */
		for (int i = 0; i < n && i < CTL_ROLLOUT_NODES_MAX; i++)
			json_array_append_new(pv, ctl_rstore_pin_json(&pins[i]));
		free(pins);
		if (n < 0) {
			char buf[400];

			json_decref(pv);
			pv = json_null();
			snprintf(buf, sizeof(buf), "%s: %s", fwd_reason_name(e.reason_code),
				 e.reason);
			r->status = 200;
			r->body = json_pack("{s:s, s:o, s:o, s:s, s:n, s:I}", "facility",
					    api->fleet->facility, "nodes", v, "pins", pv,
					    "pins_error", buf, "active_rollout",
					    "report_stale_after_ms", (json_int_t)stale_ms);
		} else {
			r->status = 200;
			r->body = json_pack("{s:s, s:o, s:o, s:b, s:s?, s:I, s:I}", "facility",
					    api->fleet->facility, "nodes", v, "pins", pv,
					    "pins_truncated", set.truncated, "active_rollout",
					    set.active[0] ? set.active : NULL, "unpin_after_s",
					    (json_int_t)api->fleet->unpin_after_s,
					    "report_stale_after_ms", (json_int_t)stale_ms);
		}
	}
	ctl_etcd_free(c);
}

/* POST /v1/fleet/unpin {"node": N}: delete a pin no active rollout owns (a
 * rollout's own pins go with an abort, never behind its back). */
static void h_fleet_unpin(struct ctl_api *api, const struct req *q, struct reply *r)
{
	static const char *const keys[] = {"node", NULL};
	json_t *b = body_json(q, r);
	struct ctl_rstore_pin p;
	struct ctl_etcd *c = NULL;
	const char *node;
	struct fwd_err e;

	if (b == NULL)
		return;
	/* a number or a list is said as a type error, as every field's is
	 * (it read "is required": a probe) */
	if (check_keys(b, keys, r) || need_str(b, "node", "a node's name", r))
		goto out;
	node = json_string_value(json_object_get(b, "node"));
	if (!ctl_rollout_node_name_ok(node)) {
		reply_simple(r, FWD_R_BAD_REQUEST, "node",
			     "'node' must be a node's name: 1..64 of a-z 0-9 -");
		goto out;
	}
	if ((c = fleet_client(api, r)) == NULL)
		goto out;
	if (ctl_rstore_unpin(c, api->fleet->facility, node, 0, false, NULL, NULL, &p, &e)) {
		reply_err(r, &e);
		goto out;
	}
	fwd_log(FWD_LOG_NOTICE, "fleet: pin of node %s (table %s, %s %s) deleted by %s", node,
		p.table[0] ? p.table : "unreadable", ctl_pin_owner_name(p.owner),
		p.rollout[0] ? p.rollout : "pin", q->who);
	r->status = 200;
	r->body = json_pack("{s:o}", "unpinned", ctl_rstore_pin_json(&p));
out:
	ctl_etcd_free(c);
	json_decref(b);
}

/* Every endpoint once (docs/api.md): method, path, whether it writes
 * (writes over TCP need the token) and whether it needs the XDP filters. */
/* How each is served (ctl_state.h, locking): ROUTE_WRITE as a write
 * (the writers' lock, then the state lock, let go while it waits for
 * regionfwd); ROUTE_VIEW from the read view alone; ROUTE_DP asks regionfwd
 * on the reads' connection and takes the state lock only for what it reads
 * of the state; every other read under the state lock, never waiting for
 * regionfwd. */
/* ROUTE_CAPTURE streams packets: over TCP it takes a credential that may
 * write (packet contents are more than a read token may see), and it is
 * served like ROUTE_DP, on a connection of its own. */
/* ROUTE_TABLE writes change the table: in fleet mode the table comes from
 * etcd only, and they are refused with 409 fleet_managed (docs/fleet.md). */
/* ROUTE_FLEET talks to etcd and takes the state lock itself, only to
 * validate; ROUTE_FLEET_WRITE is one that writes (a write credential). */
enum {
	ROUTE_WRITE = 1,
	ROUTE_FILTERS = 2,
	ROUTE_VIEW = 4,
	ROUTE_DP = 8,
	ROUTE_CAPTURE = 16,
	ROUTE_TABLE = 32,
	ROUTE_FLEET = 64,
	ROUTE_FLEET_WRITE = 128,
};
/* A write route and what kind of write it is (ctl_state.write_kind), in
 * the bits above the flags. */
#define WRITES(kind) (ROUTE_WRITE | (unsigned)(kind) << 8)
#define ROUTE_WRITE_KIND(flags) ((enum ctl_write_kind)((flags) >> 8))

/* A route's prepare, when it has one, runs before any lock is taken:
 * it checks the request's document and compiles its content rules
 * (ctl_state_prepare), so that the handler, under the state lock, does
 * neither again; a 30 s compile of a read then holds back no one. */
static void prepare_document(struct ctl_api *api, const struct req *q, int writer)
{
	json_t *b = q->len ? fwd_json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	json_t *d = json_object_get(b, "document");

	if (json_is_string(d))
		ctl_state_prepare(api->st, json_string_value(d), json_string_length(d), "document",
				  writer);
	json_decref(b);
}

static const struct route {
	const char *method, *path;
	unsigned flags;
	void (*handle)(struct ctl_api *api, const struct req *q, struct reply *r);
	void (*prepare)(struct ctl_api *api, const struct req *q, int writer);
} routes[] = {
	{"GET", "/v1/status", ROUTE_VIEW, h_status, NULL},
	{"GET", "/v1/health", ROUTE_VIEW, h_health, NULL},
	{"GET", "/v1/table", 0, h_table, NULL},
	{"PUT", "/v1/table", WRITES(CTL_WRITE_DOCUMENT) | ROUTE_TABLE, h_put_table,
	 prepare_document},
	{"PATCH", "/v1/table", WRITES(CTL_WRITE_PATCH) | ROUTE_TABLE, h_patch_table, NULL},
	{"POST", "/v1/prefixes", WRITES(CTL_WRITE_PREFIXES) | ROUTE_TABLE, h_prefixes, NULL},
	{"POST", "/v1/validate", 0, h_validate, prepare_document},
	{"POST", "/v1/rollback", WRITES(CTL_WRITE_ROLLBACK) | ROUTE_TABLE, h_rollback, NULL},
	{"POST", "/v1/confirm", WRITES(CTL_WRITE_OTHER) | ROUTE_TABLE, h_confirm, NULL},
	{"GET", "/v1/history", 0, h_history, NULL},
	{"GET", "/v1/counters", ROUTE_DP, h_counters, NULL},
	{"POST", "/v1/explain", ROUTE_DP, h_explain, NULL},
	{"GET", "/metrics", ROUTE_DP, h_metrics, NULL},
	{"GET", "/v1/filters", ROUTE_FILTERS, h_filters, NULL},
	{"GET", "/v1/feed", 0, h_feed, NULL},
	{"GET", "/v1/fleet", ROUTE_VIEW, h_fleet, NULL},
	{"POST", "/v1/filters/detach", WRITES(CTL_WRITE_OTHER) | ROUTE_FILTERS, h_filters_detach,
	 NULL},
	{"POST", "/v1/capture", ROUTE_CAPTURE, h_capture, NULL},
	{"POST", "/v1/capture/stop", ROUTE_CAPTURE, h_capture_stop, NULL},
	{"GET", "/v1/fleet/nodes", ROUTE_FLEET, h_fleet_nodes, NULL},
	{"GET", "/v1/fleet/rollouts", ROUTE_FLEET, h_fleet_rollouts, NULL},
	{"POST", "/v1/fleet/rollouts", ROUTE_FLEET | ROUTE_FLEET_WRITE, h_fleet_rollout_create,
	 prepare_document},
	{"GET", "/v1/fleet/rollouts/active", ROUTE_FLEET, h_fleet_rollout_active, NULL},
	{"POST", "/v1/fleet/rollouts/active/abort", ROUTE_FLEET | ROUTE_FLEET_WRITE,
	 h_fleet_rollout_abort, NULL},
	{"POST", "/v1/fleet/unpin", ROUTE_FLEET | ROUTE_FLEET_WRITE, h_fleet_unpin, NULL},
};

/* Headers named @name (any case) whose value is not @skip (any case;
 * NULL: every one), counted into @n: a request must not carry a second
 * Authorization the first would hide, nor a Content-Encoding other than
 * identity anywhere in its list (the first alone let "identity" then
 * "gzip" through). */
struct header_count {
	const char *name, *skip;
	unsigned n;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct header_count *c = cls;

	(void)kind;
	c->n += strcasecmp(key, c->name) == 0 &&
		(c->skip == NULL || value == NULL || strcasecmp(value, c->skip) != 0);
	return MHD_YES;
}

/* What the bearer token in @h (an Authorization header) allows, and the
 * token's name in @name ("" when it has none). Every token is compared, so
 * the time taken does not tell which one (nearly) matched. */
static enum access token_access(const struct ctl_api *api, const char *h, const char **name)
{
	enum access a = ACCESS_NONE;

	size_t n;

	*name = "";
	/* A field value is without its leading and trailing whitespace (RFC
	 * 9110 section 5.5), which libmicrohttpd 0.9.75 leaves on at the end;
	 * the scheme is case-insensitive (section 11.1) and followed by one or
	 * more spaces (RFC 6750 section 2.1): "Bearer  T" and "Bearer T " were
	 * refused 401. */
	h += strspn(h, " \t");
	if (strncasecmp(h, "Bearer", 6) != 0 || h[6] != ' ')
		return ACCESS_NONE;
	h += 6;
	h += strspn(h, " ");
	for (n = strlen(h); n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'); n--)
		;
	for (unsigned i = 0; i < api->ntokens; i++)
		if (token_is(api->tokens[i].secret, h, n) && a == ACCESS_NONE) {
			a = api->tokens[i].write ? ACCESS_WRITE : ACCESS_READ;
			*name = api->tokens[i].name;
		}
	return a;
}

static int is_writer(const struct ctl_api *api, const char *subject)
{
	for (size_t i = 0; api->writers && api->writers[i]; i++)
		if (strcmp(api->writers[i], subject) == 0)
			return 1;
	return 0;
}

/* The peer's address, "ADDR port PORT". */
static void peer_address(struct MHD_Connection *con, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char host[INET6_ADDRSTRLEN + 8] = "?", port[8] = "?";

	if (ci && ci->client_addr) {
		socklen_t sl = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								      : sizeof(struct sockaddr_in);

		getnameinfo(ci->client_addr, sl, host, sizeof(host), port, sizeof(port),
			    NI_NUMERICHOST | NI_NUMERICSERV);
	}
	snprintf(out, len, "%s port %s", host, port);
}

/*
 * What this request's credentials allow, and who they say sends it (never
 * what the request claims), into @q; from the connection and the headers
 * alone. On the unix socket everything (its file mode is the access
 * control), the peer named by SO_PEERCRED. On TCP, the bearer token: the
 * token writes, the read token reads; with --tls-client-ca first a client
 * certificate that verifies against that CA (none, or one that does not
 * verify, is refused whatever the token), which reads, and writes when its
 * subject is in --tls-writers. A token that is given must be valid, also
 * next to a certificate; the stronger of the two counts.
 */
static void credentials(struct ctl_api *api, struct MHD_Connection *con, struct req *q)
{
	enum access tok = ACCESS_NONE, cert = ACCESS_NONE;
	const char *h, *tname = "";
	struct header_count auth = {"Authorization", NULL, 0};
	char from[INET6_ADDRSTRLEN + 24];

	q->access = ACCESS_NONE;
	snprintf(q->who, sizeof(q->who), "local client");
	if (!q->tcp) {
		const union MHD_ConnectionInfo *ci =
			con ? MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD)
			    : NULL;
		struct ucred uc;
		socklen_t sl = sizeof(uc);

		q->access = ACCESS_WRITE;
		if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &sl) == 0)
			snprintf(q->who, sizeof(q->who), "uid %u pid %d on the unix socket",
				 (unsigned)uc.uid, (int)uc.pid);
		return;
	}
	if (api->tls_client) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(con, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		char why[200];

		switch (ctl_tls_peer(ci ? ci->tls_session : NULL, q->subject, sizeof(q->subject),
				     why, sizeof(why))) {
		case CTL_TLS_PEER_NONE:
			snprintf(q->why, sizeof(q->why),
				 "requests over TCP need a client certificate issued by "
				 "regiond's --tls-client-ca");
			return;
		case CTL_TLS_PEER_UNTRUSTED:
			snprintf(q->why, sizeof(q->why), "%s", why);
			return;
		case CTL_TLS_PEER_OK:
			cert = is_writer(api, q->subject) ? ACCESS_WRITE : ACCESS_READ;
			break;
		}
	}
	h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
	/* Only the first would be read: a second, whatever it holds, must not
	 * be ignored without a word (a proxy may have added or kept one). */
	MHD_get_connection_values(con, MHD_HEADER_KIND, count_header, &auth);
	if (auth.n > 1) {
		snprintf(q->why, sizeof(q->why), "more than one Authorization header: give one");
		return;
	}
	if (h || !api->tls_client) {
		tok = h ? token_access(api, h, &tname) : ACCESS_NONE;
		if (tok == ACCESS_NONE) {
			snprintf(q->why, sizeof(q->why), "%s",
				 h ? "the Authorization header holds no valid token (give "
				     "'Authorization: Bearer TOKEN')"
				   : "requests over TCP need 'Authorization: Bearer TOKEN'");
			return;
		}
	}
	q->access = tok > cert ? tok : cert;
	/* Named by what lets it write (who is recorded for writes only). */
	peer_address(con, from, sizeof(from));
	if (cert == ACCESS_WRITE)
		snprintf(q->who, sizeof(q->who), "client certificate %s%s from %s", q->subject,
			 tok == ACCESS_WRITE ? " and write token" : "", from);
	else if (tok == ACCESS_WRITE)
		snprintf(q->who, sizeof(q->who), "write token%s%s%s%s%s from %s",
			 tname[0] ? " '" : "", tname, tname[0] ? "'" : "",
			 q->subject[0] ? " with client certificate " : "", q->subject, from);
	else
		snprintf(q->who, sizeof(q->who), "%s%s from %s",
			 q->subject[0] ? "client certificate " : "read token", q->subject, from);
}

/* Requests refused for their credentials: counted (/metrics) and
 * logged, the first of each 10 s at once with its address and reason, the
 * rest of those 10 s as one line (auth_flush(), every second). They left
 * no trace: 3,000 wrong tokens in a row were invisible (a probe). */
static struct {
	pthread_mutex_t lock;
	uint64_t total[2]; /* 401, 403 */
	int64_t since_ms; /* the window's first refusal, 0: none open */
	unsigned long more[2]; /* after it in the window */
	char last[400]; /* the window's last: address and reason */
} auth_refusals = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void auth_flush(void)
{
	int64_t now = fwd_mono_ms();

	pthread_mutex_lock(&auth_refusals.lock);
	if (auth_refusals.since_ms && now - auth_refusals.since_ms >= 10000) {
		if (auth_refusals.more[0] + auth_refusals.more[1])
			fwd_log(FWD_LOG_WARNING,
				"API: %lu more requests refused for their credentials in %d s "
				"(%lu without a valid one, %lu not allowed); the last %s",
				auth_refusals.more[0] + auth_refusals.more[1],
				(int)((now - auth_refusals.since_ms) / 1000), auth_refusals.more[0],
				auth_refusals.more[1], auth_refusals.last);
		auth_refusals.since_ms = 0;
		auth_refusals.more[0] = auth_refusals.more[1] = 0;
	}
	pthread_mutex_unlock(&auth_refusals.lock);
}

static void auth_totals(uint64_t *unauthorized, uint64_t *forbidden)
{
	pthread_mutex_lock(&auth_refusals.lock);
	*unauthorized = auth_refusals.total[0];
	*forbidden = auth_refusals.total[1];
	pthread_mutex_unlock(&auth_refusals.lock);
}

static void auth_refused(const struct req *q, int forbidden, const char *why)
{
	char from[128], line[400];

	peer_address(q->con, from, sizeof(from));
	snprintf(line, sizeof(line), "from %s: %s", from, why);
	auth_flush();
	pthread_mutex_lock(&auth_refusals.lock);
	auth_refusals.total[forbidden]++;
	if (auth_refusals.since_ms == 0) {
		auth_refusals.since_ms = fwd_mono_ms();
		pthread_mutex_unlock(&auth_refusals.lock);
		fwd_log(FWD_LOG_WARNING, "API: request refused (%d) %s", forbidden ? 403 : 401,
			line);
		return;
	}
	auth_refusals.more[forbidden]++;
	snprintf(auth_refusals.last, sizeof(auth_refusals.last), "%s", line);
	pthread_mutex_unlock(&auth_refusals.lock);
}

/* The credential check of credentials(): over TCP every request needs a
 * credential, a write one that may write. Fills @r and returns 1 when
 * refused. */
static int refused(const struct req *q, const struct route *rt, struct reply *r)
{
	char reason[400];

	if (q->access == ACCESS_NONE) {
		auth_refused(q, 0, q->why);
		reply_simple(r, FWD_R_UNAUTHORIZED, "", q->why);
		return 1;
	}
	if (rt && (rt->flags & (ROUTE_WRITE | ROUTE_CAPTURE | ROUTE_FLEET_WRITE)) &&
	    q->access != ACCESS_WRITE) {
		if (q->subject[0])
			snprintf(reason, sizeof(reason),
				 "client certificate %s may read, not write: its subject is not in "
				 "regiond's --tls-writers, and no write token was given",
				 q->subject);
		else
			snprintf(reason, sizeof(reason), "this token may read, not write");
		auth_refused(q, 1, reason);
		reply_simple(r, FWD_R_FORBIDDEN, "", reason);
		return 1;
	}
	return 0;
}

/* HEAD is served by the GET route of its path (RFC 9110 9.3.2): the same
 * status and headers, and libmicrohttpd sends no body. A monitor's
 * `HEAD /metrics` or `HEAD /v1/status` was answered 404. */
static const struct route *find_route(const char *method, const char *url)
{
	if (strcmp(method, "HEAD") == 0)
		method = "GET";
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
	/* A batch of prefixes may be 200,000 of them: its author is read by
	 * its own scanner, not by loading the whole body into JSON values. */
	int batch = st->write_kind == CTL_WRITE_PREFIXES;
	json_t *b = q->len && !batch ? json_loadb(q->body, q->len, 0, NULL) : NULL;
	json_t *err = json_object_get(json_object_get(r->body, "error"), "reason");
	json_t *named = json_object_get(b, "author");
	char author[64] = "";
	/* A body read that names no author is the API's, as a write it
	 * carries out says ("author 'api'"); "no author" is for a body that
	 * was never read (not JSON, too large, cut short). */
	const char *who = batch ? author : json_string_value(named);

	if (batch ? q->len && ctl_prefixes_author(q->body, q->len, author, sizeof(author)) &&
			    author[0] == '\0'
		  : json_is_object(b) && named == NULL)
		who = "api";
	struct fwd_log_change c = {
		.event = "refused",
		.generation = cur ? cur->id : 0,
		.author = who,
		.client = st->who,
		.request = st->request,
		.reason = err ? json_string_value(err) : "refused",
	};

	fwd_log_change(&c);
	json_decref(b);
}

static void uploads_full(struct ctl_api *api, struct reply *r);

/* The largest body @q may send with nothing else in flight: --max-body,
 * or its class's share of --max-buffered when that is less (TCP clients,
 * read-only credentials). Past it the answer is 413, not 503 "try again":
 * no wait would let it fit. */
/* Bytes of a chunked body past its limit read and dropped, beyond the
 * limit itself, before its connection is closed unanswered. */
#define DROP_GRACE ((size_t)1 << 20)

static size_t body_cap(const struct ctl_api *api, const struct req *q)
{
	size_t c = api->max_body;

	if (q->tcp && api->tcp_cap < c)
		c = api->tcp_cap;
	if (read_only(q) && api->ro_cap < c)
		c = api->ro_cap;
	return c;
}

static void body_too_large(const struct ctl_api *api, const struct req *q, struct reply *r)
{
	char reason[200];
	size_t c = body_cap(api, q);

	snprintf(reason, sizeof(reason), "request body larger than %zu bytes%s", c,
		 c == api->max_body ? ""
		 : read_only(q)	    ? " (what read-only credentials may send: their share of "
				      "--max-buffered)"
				: " (what TCP clients may send: their share of --max-buffered)");
	reply_simple(r, FWD_R_BODY_TOO_LARGE, "", reason);
}

/* regiond's signal handler writes the flag on the main thread; the API's
 * threads read it: an atomic load (relaxed: it orders nothing, a refusal
 * a moment late is the same refusal), which the handler's atomic store
 * pairs with. A plain read of the volatile was a data race to TSan. */
static int stop_signalled(const struct ctl_api *api)
{
	return __atomic_load_n(api->stop_flag, __ATOMIC_RELAXED) != 0;
}

/* Whether the stop has begun. */
static int stop_begun(struct ctl_api *api)
{
	int s;

	pthread_mutex_lock(&api->stop_lock);
	s = api->stopping || (api->stop_flag && stop_signalled(api));
	pthread_mutex_unlock(&api->stop_lock);
	return s;
}

static void reply_stopping(struct reply *r)
{
	reply_simple(r, FWD_R_STOPPING, "",
		     "regiond is stopping: this write was not run and nothing changed; send it "
		     "again once regiond is back");
}

/* A write (a request that changes state) is counted until its answer is
 * sent, or refused at once once the stop has begun. @return 1 when
 * refused (@r filled). */
static int write_admit(struct ctl_api *api, struct req *q, struct reply *r)
{
	int refuse;

	pthread_mutex_lock(&api->stop_lock);
	refuse = api->stopping || (api->stop_flag && stop_signalled(api));
	if (!refuse) {
		api->writes++;
		q->counted = 1;
	}
	pthread_mutex_unlock(&api->stop_lock);
	if (refuse)
		reply_stopping(r);
	return refuse;
}

static void write_done(struct ctl_api *api, struct req *q)
{
	if (!q->counted)
		return;
	pthread_mutex_lock(&api->stop_lock);
	api->writes--;
	pthread_mutex_unlock(&api->stop_lock);
	q->counted = 0;
}

static void route(struct ctl_api *api, const char *url, const char *method, struct req *q,
		  struct reply *r)
{
	const struct route *rt = find_route(method, url);
	const struct ctl_ext *filters;

	if (refused(q, rt, r))
		return;
	if (q->too_big) {
		body_too_large(api, q, r);
		return;
	}
	if (q->too_many) {
		uploads_full(api, r);
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
	/* Before anything of it is read or prepared: nothing of it runs. */
	if ((rt->flags & (ROUTE_WRITE | ROUTE_FLEET_WRITE)) && write_admit(api, q, r))
		return;
	if ((rt->flags & ROUTE_TABLE) && ctl_state_ext(api->st, "fleet")) {
		reply_simple(r, FWD_R_FLEET_MANAGED, "",
			     "regiond runs in fleet mode: its table comes from etcd "
			     "(regionctl fleet apply, docs/fleet.md), not from local writes");
		return;
	}
	/* Before the body is parsed: a bad body's 400 would hide that the
	 * endpoint cannot serve anything here (docs/api.md: every fleet
	 * endpoint answers 404 not_fleet in single-box mode). */
	if ((rt->flags & ROUTE_FLEET) && api->fleet == NULL) {
		fleet_client(api, r);
		return;
	}
	if (rt->handle == h_filters_detach && detach_body_bad(q, r))
		return;
	if ((rt->flags & ROUTE_FILTERS) &&
	    (filters == NULL || filters->status == NULL || filters->detach == NULL)) {
		reply_simple(r, FWD_R_NO_FILTERS, "",
			     "regiond runs without XDP filters (--xdp-iface)");
		return;
	}
	if (rt->prepare) {
		pthread_mutex_t *one = &api->prepare_lock[q->access == ACCESS_WRITE];

		pthread_mutex_lock(one);
		rt->prepare(api, q, (rt->flags & (ROUTE_WRITE | ROUTE_FLEET_WRITE)) != 0);
		pthread_mutex_unlock(one);
	}
	if (rt->flags & (ROUTE_VIEW | ROUTE_DP | ROUTE_CAPTURE | ROUTE_FLEET)) {
		rt->handle(api, q, r);
		ctl_state_prepared_drop(api->st);
		return;
	}
	if (!(rt->flags & ROUTE_WRITE)) {
		pthread_mutex_lock(api->lock);
		rt->handle(api, q, r);
		pthread_mutex_unlock(api->lock);
		ctl_state_prepared_drop(api->st);
		return;
	}
	ctl_state_write_begin(api->st);
	snprintf(api->st->who, sizeof(api->st->who), "%s", q->who);
	snprintf(api->st->request, sizeof(api->st->request), "%s %s", rt->method, rt->path);
	api->st->write_kind = ROUTE_WRITE_KIND(rt->flags);
	/* Admitted, then queued behind another write (a push waiting for a
	 * hung regionfwd) while the stop began: it has not begun, so it does
	 * not, and the stop waits for one push at most, not one per writer. */
	api->st->took_back = 0;
	json_decref(api->st->handovers);
	api->st->handovers = NULL;
	json_decref(api->st->weakened);
	api->st->weakened = NULL;
	json_decref(api->st->link_states);
	api->st->link_states = NULL;
	if (stop_begun(api))
		reply_stopping(r);
	else
		rt->handle(api, q, r);
	/* regionfwd ran a table this regiond held back from (another
	 * regiond's, or one it could not adopt), and this write's push took
	 * it back: said in the answer, a no-op's included ("changed": false
	 * speaks of this regiond's history, not of what regionfwd runs), and
	 * a refusal's too (a change pushed, then undone by pushing the
	 * current table back, took regionfwd back all the same). */
	if (api->st->took_back && json_is_object(r->body))
		json_object_set_new(r->body, "taken_back", json_true());
	/* Users the change handed out of their residency (no rule refuses
	 * that: the table says who they are), said where the caller looks. */
	if (api->st->handovers && r->status < 300 && json_is_object(r->body))
		json_object_set(r->body, "residency_handovers", api->st->handovers);
	if (api->st->weakened && r->status < 300 && json_is_object(r->body))
		json_object_set(r->body, "residency_weakened", api->st->weakened);
	if (api->st->link_states && r->status < 300 && json_is_object(r->body))
		json_object_set(r->body, "link_states_changed", api->st->link_states);
	/* A table change that leaves a group nothing to carry on. */
	if ((rt->flags & ROUTE_WRITE) && r->status < 300 && json_is_object(r->body) &&
	    json_object_get(r->body, "generation") != NULL) {
		maintenance_warnings(api->st->table, r->body);
	}
	/* A change that runs but whose commit record the disk refused: held
	 * in memory, written as soon as the disk takes it (hold_unsaved). It
	 * was answered 200 as any other, while a restart of both daemons
	 * before that write drops it (a hostile probe): the answer says so. */
	if ((rt->flags & ROUTE_WRITE) && r->status < 300 && json_is_object(r->body) &&
	    api->st->unsaved_id && !api->st->unsaved_revert &&
	    answer_gen_id(r->body) == api->st->unsaved_id)
		json_object_set_new(r->body, "saved", json_false());
	if ((rt->flags & ROUTE_WRITE) && r->status >= 400 &&
	    api->st->write_kind != CTL_WRITE_PREVIEW)
		log_refused(api->st, q, r);
	api->st->who[0] = '\0';
	api->st->request[0] = '\0';
	/* A write that ran: regionfwd just answered, so its report is fresh
	 * to ask for and the view shows the change with what runs. */
	if (r->status < 300 && api->st->write_kind != CTL_WRITE_PREVIEW)
		ctl_state_refresh(api->st);
	api->st->write_kind = CTL_WRITE_OWN;
	ctl_state_write_end(api->st); /* publishes the view (publish_on_write) */
	ctl_state_prepared_drop(api->st);
}

/* An answer must be taken: a client that sends its requests and never
 * reads the answers (64 of them, pipelining) held every unix socket
 * connection for libmicrohttpd's 60 s idle timeout, and `regionctl status`
 * and a confirm waited past the confirm's deadline (a probe). The watch's
 * shutdown() cannot end it (ctl_headwatch.h: a writer blocked on a unix
 * socket is not woken), libmicrohttpd's own timeout can: while an answer
 * goes out, nothing taken for CTL_API_HEAD_MS ends the connection, as
 * nothing sent of a head does. A slow reader that takes bytes is not
 * idle. (The next head's watch deadline is as short.) */
static void answer_arm(struct MHD_Connection *con)
{
	MHD_set_connection_option(con, MHD_CONNECTION_OPTION_TIMEOUT,
				  (unsigned)(CTL_API_HEAD_MS / 1000));
}

static enum MHD_Result send_reply(struct MHD_Connection *con, struct reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text;
	size_t len;

	if (r->stream) {
		/* Size unknown: chunked. Not the idle timeout of other answers:
		 * a capture that matches nothing for a while is not idle. The
		 * capture's deadline instead, from here on, as the client may
		 * not even read the head (capture_arm()). */
		capture_arm(con, r->stream->cap);
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, capture_chunk,
							 r->stream, capture_done);
		if (resp == NULL) {
			capture_done(r->stream);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type", "application/x-pcapng");
		{ /* what POST /v1/capture/stop names it by */
			char id[24];

			snprintf(id, sizeof(id), "%llu",
				 (unsigned long long)ctl_capture_id(r->stream->cap));
			MHD_add_response_header(resp, "Capture-Id", id);
		}
		ret = MHD_queue_response(con, 200, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (r->shared) {
		resp = MHD_create_response_from_buffer_with_free_callback_cls(
			r->shared->len, r->shared->text, shared_put, r->shared);
		if (resp == NULL) {
			shared_put(r->shared);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type", r->ctype);
		answer_arm(con);
		ret = MHD_queue_response(con, (unsigned)r->status, resp);
		MHD_destroy_response(resp);
		return ret;
	}
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
	if (r->close)
		MHD_add_response_header(resp, "Connection", "close");
	/* RFC 9110 section 11.6.1: a 401 says which scheme would do. */
	if (r->status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"regiond\"");
	answer_arm(con);
	ret = MHD_queue_response(con, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Whether @n more bytes fit beside the bodies in flight, in every account
 * @q counts in. Under buffered_lock; each account stays within its bound,
 * so the differences cannot wrap. */
static int buffered_fits(const struct ctl_api *api, const struct req *q, size_t n)
{
	return n <= api->max_buffered - api->buffered &&
	       (!q->tcp || n <= api->tcp_cap - api->buffered_tcp) &&
	       (!read_only(q) || n <= api->ro_cap - api->buffered_ro);
}

/* Take @n more bytes of --max-buffered for @q's body: 0, or -1 when they
 * would pass a bound it counts in (nothing taken). */
static int buffered_take(struct ctl_api *api, const struct req *q, size_t n)
{
	int rc = -1;

	pthread_mutex_lock(&api->buffered_lock);
	if (buffered_fits(api, q, n)) {
		api->buffered += n;
		api->buffered_tcp += q->tcp ? n : 0;
		api->buffered_ro += read_only(q) ? n : 0;
		rc = 0;
	}
	pthread_mutex_unlock(&api->buffered_lock);
	return rc;
}

static void buffered_give(struct ctl_api *api, const struct req *q, size_t n)
{
	pthread_mutex_lock(&api->buffered_lock);
	api->buffered -= n;
	api->buffered_tcp -= q->tcp ? n : 0;
	api->buffered_ro -= read_only(q) ? n : 0;
	pthread_mutex_unlock(&api->buffered_lock);
}

/* The answer to a request whose body would pass --max-buffered, and the
 * log line that says so: one a second at most with the count since, so
 * a flood of them cannot flood the log. */
static void uploads_full(struct ctl_api *api, struct reply *r)
{
	char reason[300];
	int64_t now = fwd_mono_ms();

	snprintf(reason, sizeof(reason),
		 "the bodies of requests in flight fill what this client may hold of "
		 "--max-buffered (%zu bytes; TCP clients %zu, read-only credentials %zu); "
		 "try again once they are taken",
		 api->max_buffered, api->tcp_cap, api->ro_cap);
	reply_simple(r, FWD_R_UPLOADS_FULL, "", reason);
	pthread_mutex_lock(&api->full_lock);
	api->full_refused++;
	if (now - api->full_logged_ms >= 1000) {
		fwd_log(FWD_LOG_WARNING,
			"API: %lu request(s) refused: request bodies in flight would pass "
			"--max-buffered %zu bytes",
			api->full_refused, api->max_buffered);
		api->full_refused = 0;
		api->full_logged_ms = now;
	}
	pthread_mutex_unlock(&api->full_lock);
}

/* What the framing headers of a request say (framing_header()). */
struct framing {
	unsigned lengths; /* Content-Length headers */
	unsigned long long cl; /* the first one's value */
	int cl_bad; /* one is not 1*DIGIT, or differs from the first */
	unsigned encodings; /* Transfer-Encoding headers */
	int te_bad; /* one is not "chunked" alone */
	int name_bad; /* a header name that is not a token, or a framing name mangled */
};

/* RFC 9110 section 5.6.2: a field name is 1*tchar. */
static int is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!(*s >= '0' && *s <= '9') && !((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z') &&
		    strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return 0;
	return 1;
}

/* @key starts with @name, ignoring case, and is longer: the name a folded
 * line was glued to ("Content-Length32"). Not any name holding it:
 * X-Upload-Content-Length is a client's own header. */
static int holds_name(const char *key, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(key, name, n) == 0 && key[n] != '\0';
}

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	struct framing *f = cls;

	(void)kind;
	/* libmicrohttpd 0.9.75 hands over "Content-Length : 5" (whitespace
	 * before the colon, which RFC 9112 section 5.1 says to refuse) as a
	 * header named "Content-Length ", and a folded line (obs-fold,
	 * section 5.2: refuse, or read as a space) glued to the previous
	 * header's name: "Content-Length: 0" then " 32" arrive as
	 * "Content-Length32: 0". Either way it reads no length and takes the
	 * body for the next request, where a proxy in front may have read
	 * another: request smuggling. A name that is not a token, or one
	 * that holds a framing header's name and is not it, is refused. */
	if (!is_token(key) || holds_name(key, "Content-Length") ||
	    holds_name(key, "Transfer-Encoding"))
		f->name_bad = 1;
	if (strcasecmp(key, "Content-Length") == 0) {
		unsigned long long n;
		char *end;

		errno = 0;
		n = strtoull(value ? value : "", &end, 10);
		if (value == NULL || value[0] < '0' || value[0] > '9' || *end || errno ||
		    (f->lengths && n != f->cl))
			f->cl_bad = 1;
		if (f->lengths++ == 0)
			f->cl = n;
	} else if (strcasecmp(key, "Transfer-Encoding") == 0) {
		f->encodings++;
		if (value == NULL || strcasecmp(value, "chunked") != 0)
			f->te_bad = 1;
	}
	return MHD_YES;
}

/* RFC 9112 section 6.3: a request whose body's length its headers do not
 * say one way (Content-Length values that differ or are not numbers, one
 * with Transfer-Encoding, a coding other than chunked alone) is answered
 * 400 and its connection closed. libmicrohttpd 0.9.75 takes the first
 * Content-Length and reads what the others announce as the next request:
 * a proxy in front that honours another one would pass a request it never
 * saw (request smuggling). 1 with @r filled when refused. */
static int refused_framing(struct MHD_Connection *con, struct reply *r)
{
	struct framing f = {0};
	const char *why = NULL;

	MHD_get_connection_values(con, MHD_HEADER_KIND, framing_header, &f);
	if (f.name_bad)
		why = "a header line that is not 'name: value' (whitespace before a colon, or a "
		      "line folded onto the one before): where the body ends is ambiguous";
	else if (f.lengths && f.encodings)
		why = "Content-Length with Transfer-Encoding: the body's length is ambiguous";
	else if (f.cl_bad)
		why = f.lengths > 1 ? "Content-Length headers that differ: the body's length is "
				      "ambiguous"
				    : "Content-Length is not a number";
	else if (f.encodings > 1 || f.te_bad)
		why = "Transfer-Encoding other than chunked alone";
	if (why == NULL)
		return 0;
	reply_simple(r, FWD_R_BAD_REQUEST, "", why);
	r->close = 1; /* what follows on the connection is not a request to answer */
	return 1;
}

/* Refuse from the headers alone: missing or insufficient credentials, a
 * path with a NUL byte in it (as one that matches no route), or a
 * Content-Length over the limit. 1 with @r filled when refused. */
static int refused_early(struct ctl_api *api, struct MHD_Connection *con, const char *url,
			 const char *method, const struct req *q, struct reply *r)
{
	const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
	char *end;

	/* The decoded URL ends at the NUL: "/v1/table%00.old" would be
	 * taken for /v1/table. */
	if (refused(q, q->bad_path ? NULL : find_route(method, url), r))
		return 1;
	if (q->bad_path) {
		reply_simple(
			r, FWD_R_NOT_FOUND, "",
			"the URL holds a NUL byte (raw, or %00 in its path): no endpoint has one");
		return 1;
	}
	/* A compressed body would be read as it is, and refused as JSON or
	 * YAML that it is not: say what is wrong instead. */
	struct header_count coded = {"Content-Encoding", "identity", 0};

	MHD_get_connection_values(con, MHD_HEADER_KIND, count_header, &coded);
	if (coded.n) {
		reply_simple(r, FWD_R_BAD_REQUEST, "",
			     "a Content-Encoding other than identity (gzip, ...) is not taken: "
			     "send the body as it is");
		r->close = 1; /* its body is not read */
		return 1;
	}
	if (cl && strtoull(cl, &end, 10) > body_cap(api, q)) {
		body_too_large(api, q, r);
		return 1;
	}
	/* A body that cannot fit beside those in flight now is refused
	 * before a byte of it is read (nothing is taken for it yet: an
	 * announced length that never comes holds nothing). */
	if (cl) {
		unsigned long long n = strtoull(cl, &end, 10);
		int fits;

		pthread_mutex_lock(&api->buffered_lock);
		fits = buffered_fits(api, q, (size_t)n);
		pthread_mutex_unlock(&api->buffered_lock);
		if (!fits) {
			uploads_full(api, r);
			return 1;
		}
	}
	return 0;
}

/* A request's struct req, made as libmicrohttpd has read its request line
 * (MHD_OPTION_URI_LOG_CALLBACK: it becomes on_request()'s *con_cls), with
 * its request-target as it came, before the query is split off and the
 * path decoded in place. NULL when out of memory. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
	struct req *q = calloc(1, sizeof(*q));

	(void)cls;
	(void)con;
	if (q && uri) {
		const char *z = strstr(uri, "%00");

		q->raw_uri = uri;
		q->raw_len = strlen(uri);
		/* in the path; the query is not read */
		q->bad_path = z && (size_t)(z - uri) < strcspn(uri, "?");
	}
	return q;
}

/* Whether @con came through the unix socket, by its socket's own family:
 * comparing daemons read api->tcp_d, which is stored only after the TCP
 * daemon already answers, so a request in between was taken for the unix
 * socket's (write access without a token). Anything unknown counts as TCP,
 * which needs credentials. */
static int on_unix_socket(struct MHD_Connection *con)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	return ci && getsockname(ci->connect_fd, (struct sockaddr *)&ss, &sl) == 0 &&
	       ss.ss_family == AF_UNIX;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct ctl_api *api = cls;
	struct req *q = *con_cls;
	struct reply r = {0};

	if (q == NULL) /* on_uri() was out of memory */
		return MHD_NO;
	if (!q->begun) {
		q->begun = 1;
		q->tcp = !on_unix_socket(con);
		q->con = con;
		ctl_headwatch_request_begins(con);
		/* A raw NUL byte in the request-target: libmicrohttpd 0.9
		 * keeps the request line in place, the target (which on_uri()
		 * saw up to its first NUL, @url now) ending where the space
		 * before @version was. Its length is on_uri()'s unless a NUL
		 * cut what on_uri() saw short. */
		if (api->raw_nul_check && q->raw_uri && url == q->raw_uri &&
		    version != q->raw_uri + q->raw_len + 1)
			q->bad_path = 1;
		/* Where its body ends, before anything of it is used: its
		 * credentials, its route, its announced length. */
		if (refused_framing(con, &r)) {
			q->answered = 1;
			return send_reply(con, &r);
		}
		credentials(api, con, q);
		{
			const char *cl =
				MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
			unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;

			q->announced = n <= api->max_body ? (size_t)n : 0;
		}
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
		ctl_headwatch_body(con, *data_size);
		if (!q->too_big && q->len + *data_size > body_cap(api, q)) {
			q->too_big = 1;
			buffered_give(api, q, q->cap);
			free(q->body);
			q->body = NULL;
			q->len = q->cap = 0;
		}
		if (!q->too_big && !q->too_many && q->len + *data_size > q->cap) {
			/* Grown by doubling up to body_cap(), or to the announced
			 * length at once: the capacity is what --max-buffered
			 * counts, so it is never more than the body needs. */
			size_t cap = (q->len + *data_size) * 2;

			if (cap > body_cap(api, q))
				cap = body_cap(api, q);
			if (q->announced >= q->len + *data_size && cap > q->announced)
				cap = q->announced;
			if (buffered_take(api, q, cap - q->cap)) {
				/* the rest is read and dropped, the answer 503 */
				buffered_give(api, q, q->cap);
				free(q->body);
				q->body = NULL;
				q->len = q->cap = 0;
				q->too_many = 1;
			} else {
				char *nb = realloc(q->body, cap);

				if (nb == NULL) {
					buffered_give(api, q, cap - q->cap);
					return MHD_NO;
				}
				q->body = nb;
				q->cap = cap;
			}
		}
		if (!q->too_big && !q->too_many) {
			memcpy(q->body + q->len, data, *data_size);
			q->len += *data_size;
		} else if ((q->dropped += *data_size) > body_cap(api, q) + DROP_GRACE) {
			/* A chunked body has no length to refuse it by: it is read
			 * and dropped, and answered 413 (503) once it ends. One
			 * that goes on for as much again ends its connection
			 * unanswered, as libmicrohttpd 0.9.75 cannot answer before
			 * a body is over (a response queued then is its internal
			 * error): a client streaming without end holds no
			 * connection for ever. */
			fwd_log(FWD_LOG_NOTICE,
				"api: %s %s: a chunked body past %s kept coming (%zu bytes "
				"dropped): connection closed",
				method, url, q->too_big ? "its size limit" : "--max-buffered",
				q->dropped);
			return MHD_NO;
		}
		*data_size = 0;
		return MHD_YES;
	}
	ctl_headwatch_body_done(con);
	route(api, url, method, q, &r);
	return send_reply(con, &r);
}

static void on_done(void *cls, struct MHD_Connection *con, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct req *q = *con_cls;

	(void)toe;
	if (q) {
		write_done(cls, q); /* answered, or its connection ended */
		buffered_give(cls, q, q->cap);
		free(q->body);
		free(q);
	}
	*con_cls = NULL;
	ctl_headwatch_request_ends(con);
}

struct ctl_api *ctl_api_new(const struct ctl_api_conf *conf, struct ctl_state *st,
			    pthread_mutex_t *lock, int64_t started)
{
	struct ctl_api *api = calloc(1, sizeof(*api));

	if (api == NULL)
		return NULL;
	api->st = st;
	api->lock = lock;
	api->tokens = conf->tokens;
	api->ntokens = conf->ntokens;
	api->tls_client = conf->tls_client_ca != NULL;
	api->writers = conf->tls_writers;
	api->max_body = conf->max_body;
	/* a caller without a bound of its own (tests): twice max_body */
	api->max_buffered = conf->max_buffered		    ? conf->max_buffered
			    : conf->max_body > SIZE_MAX / 2 ? SIZE_MAX
							    : conf->max_body * 2;
	api->tcp_cap =
		api->max_buffered -
		(api->max_body < api->max_buffered / 2 ? api->max_body : api->max_buffered / 2);
	api->ro_cap = api->tcp_cap / 2;
	pthread_mutex_init(&api->buffered_lock, NULL);
	pthread_mutex_init(&api->table_lock, NULL);
	pthread_mutex_init(&api->full_lock, NULL);
	api->fleet = conf->rollouts;
	api->fleet_driver = conf->rollout_driver;
	api->started = started;
	api->raw_nul_check = strncmp(MHD_get_version(), "0.", 2) == 0;
	api->unix_fd = -1;
	pthread_mutex_init(&api->view_lock, NULL);
	pthread_mutex_init(&api->dp_read_lock, NULL);
	pthread_mutex_init(&api->capture_lock, NULL);
	pthread_mutex_init(&api->pins_lock, NULL);
	pthread_mutex_init(&api->stop_lock, NULL);
	pthread_mutex_init(&api->prepare_lock[0], NULL);
	pthread_mutex_init(&api->prepare_lock[1], NULL);
	api->stop_flag = conf->stop_flag;
	api->dp_read = ctl_dp_create_like(st->dp); /* NULL: reads asking regionfwd say so */
	if (st->lock == NULL)
		st->lock = lock; /* writes let it go while they wait for regionfwd */
	ctl_state_write_begin(st);
	ctl_api_publish(api); /* before any request: status always has a view */
	st->on_write_end = publish_on_write;
	st->on_write_end_arg = api;
	ctl_state_write_end(st);
	return api;
}

int ctl_api_dispatch(struct ctl_api *api, const char *method, const char *url, const char *body,
		     size_t len, char **out)
{
	struct req q = {.body = (char *)body,
			.len = len,
			.cap = len,
			.too_big = len > api->max_body,
			.access = ACCESS_WRITE,
			.who = "local client"};
	struct reply r = {0};

	route(api, url, method, &q, &r);
	write_done(api, &q);
	if (r.stream) /* not over a connection: h_capture refuses it; never here */
		capture_done(r.stream);
	if (r.body) {
		*out = json_dumps(r.body, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(r.body);
		free(r.text);
	} else if (r.shared) {
		*out = strndup(r.shared->text, r.shared->len);
		shared_put(r.shared);
	} else {
		*out = r.text;
	}
	return r.status;
}

/* Words of libmicrohttpd's messages that say only that the client went
 * away: `regionctl capture | head`, a Ctrl-C, a closed browser tab. That is
 * the client's choice, not regiond's fault, and an err line for each made
 * an operator's log cry wolf; they are kept, at info. */
static const char *const peer_gone[] = {
	/* MHD's words for EPIPE and ECONNRESET, in "Failed to send ..." */
	"The socket is no longer available for sending", "forcibly closed by remote peer",
	/* a request cut short by its client */
	"closed by remote side", "Socket has been disconnected",
	/* strerror()'s, where MHD passes the system's text on */
	"Broken pipe", "Connection reset by peer",
	"The socket is not connected", /* ENOTCONN, MHD's words */
};

/* libmicrohttpd's messages are its clients' doing, so a client can make
 * as many as it likes: 3,218 unauthenticated requests with 40 KB heads
 * wrote 3,218 err lines in 5 s, which filled the small disk the state
 * directory shared with the log (a probe). At most MHD_LOG_BURST lines in
 * each MHD_LOG_WINDOW_MS; the rest are counted, and the count is said once
 * the window is over (mhd_log_flush(), every second and at the next line). */
#define MHD_LOG_BURST 20
#define MHD_LOG_WINDOW_MS 10000
static struct {
	pthread_mutex_t lock;
	int64_t window_ms; /* CLOCK_MONOTONIC start of the window */
	unsigned lines; /* logged in it */
	unsigned long held; /* not logged in it */
} mhd_log_rate = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Under mhd_log_rate.lock: a window that is over says what it held back,
 * and the next begins. */
static void mhd_log_window(int64_t now)
{
	if (now - mhd_log_rate.window_ms < MHD_LOG_WINDOW_MS)
		return;
	if (mhd_log_rate.held)
		fwd_log(FWD_LOG_WARNING,
			"API: %lu more libmicrohttpd messages in %d s not logged (at most %d "
			"each %d s: clients can make any number of them)",
			mhd_log_rate.held, (int)((now - mhd_log_rate.window_ms) / 1000),
			MHD_LOG_BURST, MHD_LOG_WINDOW_MS / 1000);
	mhd_log_rate.window_ms = now;
	mhd_log_rate.lines = 0;
	mhd_log_rate.held = 0;
}

static void mhd_log_flush(void)
{
	pthread_mutex_lock(&mhd_log_rate.lock);
	mhd_log_window(fwd_mono_ms());
	pthread_mutex_unlock(&mhd_log_rate.lock);
}

/* libmicrohttpd's own messages (a failed TLS handshake, a refused
 * connection) into regiond's log, saying whose they are. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	int level = FWD_LOG_ERR;
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strcspn(line, "\n");
	line[n] = '\0';
	while (n && line[n - 1] == ' ')
		n--;
	for (size_t i = 0; i < sizeof(peer_gone) / sizeof(peer_gone[0]); i++)
		if (strstr(line, peer_gone[i]))
			level = FWD_LOG_INFO;
	pthread_mutex_lock(&mhd_log_rate.lock);
	mhd_log_window(fwd_mono_ms());
	if (mhd_log_rate.lines >= MHD_LOG_BURST) {
		mhd_log_rate.held++;
		pthread_mutex_unlock(&mhd_log_rate.lock);
		return;
	}
	mhd_log_rate.lines++;
	pthread_mutex_unlock(&mhd_log_rate.lock);
	fwd_log(level, "API on %s: %.*s", (const char *)cls, (int)n, line);
}

/* The API on the listening unix socket @fd (the daemon owns it once
 * started). MHD_USE_ITC: a daemon whose socket was taken away is quiesced
 * (ctl_api_keep_socket), which its polling thread must be woken for. */
static struct MHD_Daemon *start_unix(struct ctl_api *api, int fd)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_ERROR_LOG | MHD_USE_ITC;

	return MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
		(void *)api->unix_path, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
		on_done, api, MHD_OPTION_URI_LOG_CALLBACK, on_uri, api,
		MHD_OPTION_NOTIFY_CONNECTION, ctl_headwatch_notify, api->headwatch,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)CTL_API_UNIX_CONNECTIONS, MHD_OPTION_END);
}

/* Stop the retired daemon @i (waiting for its connections' requests) and
 * close its socket. */
static void retire_end(struct ctl_api *api, unsigned i)
{
	MHD_stop_daemon(api->retired[i]);
	if (api->retired_fd[i] >= 0)
		close(api->retired_fd[i]);
	api->nretired--;
	api->retired[i] = api->retired[api->nretired];
	api->retired_fd[i] = api->retired_fd[api->nretired];
}

/* Stop the retired daemons whose requests are all over: quiesced, they
 * take no new connection, so stopping one whose count is 0 waits for
 * nothing. */
static void retire_idle(struct ctl_api *api)
{
	const union MHD_DaemonInfo *di;

	for (unsigned i = api->nretired; i-- > 0;)
		if ((di = MHD_get_daemon_info(api->retired[i],
					      MHD_DAEMON_INFO_CURRENT_CONNECTIONS)) == NULL ||
		    di->num_connections == 0)
			retire_end(api, i);
}

/* Raise (@fmt) or clear (NULL) the API socket's alarm: the state's write
 * lock is taken only when it changes. */
static void socket_alarm(struct ctl_api *api, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void socket_alarm(struct ctl_api *api, const char *fmt, ...)
{
	char now[sizeof(api->sock_alarm)] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(now, sizeof(now), fmt, ap);
		va_end(ap);
	}
	if (strcmp(now, api->sock_alarm) == 0)
		return;
	memcpy(api->sock_alarm, now, sizeof(now));
	ctl_state_write_begin(api->st);
	if (now[0])
		ctl_state_alarm(api->st, CTL_ALARM_API_SOCKET, "%s", now);
	else
		ctl_state_alarm(api->st, CTL_ALARM_API_SOCKET, NULL);
	ctl_state_write_end(api->st);
}

void ctl_api_keep_socket(struct ctl_api *api)
{
	struct MHD_Daemon *d;
	struct stat st;
	int fd = -1, rc;

	mhd_log_flush();
	auth_flush();
	if (api == NULL || api->unix_d == NULL)
		return;
	retire_idle(api);
	/* No room to retire the serving daemon: bound again once one of
	 * those retired ends (the alarm says so until then). Whatever is at
	 * the path but the socket bound (nothing, a stale socket another
	 * left) would be bound again below: not now. */
	if (api->nretired == CTL_API_RETIRED &&
	    !(lstat(api->unix_path, &st) == 0 && st.st_dev == api->keep.dev &&
	      st.st_ino == api->keep.ino)) {
		socket_alarm(api,
			     "the API socket %s was taken away %u times while connections to "
			     "the earlier ones are still open: bound again once one of them "
			     "closes",
			     api->unix_path, CTL_API_RETIRED + 1);
		return;
	}
	rc = fwd_unix_keep_check(&api->keep, &fd);
	if (rc < 0) {
		socket_alarm(api,
			     "the API socket %s %s while regiond runs and cannot be made again "
			     "(%s): regionctl cannot reach regiond there; trying every second",
			     api->unix_path, api->keep.gone, api->keep.error);
		return;
	}
	if (rc == 0) {
		socket_alarm(api, NULL);
		return;
	}
	if ((d = start_unix(api, fd)) == NULL) {
		/* Taken away again, so the next check tries once more. */
		fwd_unix_keep_unlink(&api->keep);
		close(fd);
		socket_alarm(api,
			     "the API socket %s %s while regiond runs and cannot be served again "
			     "(libmicrohttpd's reason above); trying every second",
			     api->unix_path, api->keep.gone);
		return;
	}
	fwd_log(FWD_LOG_NOTICE,
		"API socket %s %s while regiond ran: listening on a fresh one there",
		api->unix_path, api->keep.gone);
	/* Requests in flight on the old socket's connections (a write waiting
	 * for regionfwd, a validate compiling) are answered there; it accepts
	 * no more, and is stopped by retire_idle() once they are over. Those
	 * of a socket taken away before are not cut short either. */
	fd = MHD_quiesce_daemon(api->unix_d);
	/* Quiesced, it accepts nothing, but a connect through the path it was
	 * renamed to would sit in its backlog until the client's timeout: shut
	 * down, it refuses at once. The fd itself must stay open until the
	 * daemon stops (libmicrohttpd: its threads may still hold it). */
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	api->retired[api->nretired] = api->unix_d;
	api->retired_fd[api->nretired++] = fd;
	api->unix_d = d;
	socket_alarm(api, NULL);
}

/* @dir cut to its parent (the root stays the root; "." for a bare name). */
static void dir_up(char *dir)
{
	char *slash = strrchr(dir, '/');

	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
}

/* Whether a socket can be made at @path: its directory, when it exists,
 * must take it; when it does not, start_api() creates it (one level), so
 * its parent must. 0 or -errno. */
static int socket_dir_ok(const char *path)
{
	char dir[256];

	if (strlen(path) >= sizeof(dir))
		return -ENAMETOOLONG;
	strcpy(dir, path);
	dir_up(dir);
	if (access(dir, F_OK) != 0) {
		if (errno != ENOENT)
			return -errno;
		dir_up(dir);
	}
	return access(dir, W_OK | X_OK) != 0 ? -errno : 0;
}

int ctl_api_preflight(const struct ctl_api_conf *conf, struct fwd_err *e)
{
	struct sockaddr_un sa;
	struct addrinfo *ai;
	int rc, fd, one = 1;

	if (strlen(conf->unix_path) >= sizeof(sa.sun_path))
		return fwd_err_set(e, "", 0, "api-socket", "API socket path %s too long",
				   conf->unix_path);
	rc = fwd_unix_path_free(conf->unix_path);
	if (rc < 0)
		return fwd_err_set(e, "", 0, "api-socket", "API socket %s: %s", conf->unix_path,
				   rc == -EEXIST       ? "the path exists and is not a socket"
				   : rc == -EADDRINUSE ? "a running process listens on it (another "
							 "regiond?)"
						       : strerror(-rc));
	if ((rc = socket_dir_ok(conf->unix_path)) < 0)
		return fwd_err_set(e, "", 0, "api-socket", "API socket %s: its directory: %s",
				   conf->unix_path, strerror(-rc));
	if (conf->tcp_listen == NULL)
		return 0;
	if (fwd_parse_listen(conf->tcp_listen, &ai))
		return fwd_err_set(e, "", 0, "listen",
				   "--listen %s: not a numeric address and a port in 1..65535",
				   conf->tcp_listen);
	/* As libmicrohttpd binds it (SO_REUSEADDR): a port another process
	 * listens on is refused, one with connections of a stopped regiond
	 * in TIME_WAIT is not. */
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* IPv6 only, as libmicrohttpd binds an IPv6 address (MHD_USE_IPv6
	 * without dual stack): [::]:8080 beside another process's
	 * 0.0.0.0:8080 is no clash. */
	rc = fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
			     (ai->ai_family == AF_INET6 &&
			      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
			     bind(fd, ai->ai_addr, ai->ai_addrlen)
		     ? -errno
		     : 0;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	if (rc)
		return fwd_err_set(e, "", 0, "listen", "--listen %s: %s", conf->tcp_listen,
				   strerror(-rc));
	return 0;
}

struct ctl_api *ctl_api_start(const struct ctl_api_conf *conf, struct ctl_state *st,
			      pthread_mutex_t *lock, int64_t started)
{
	struct ctl_api *api = ctl_api_new(conf, st, lock, started);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *why = NULL;
	/* A thread per connection (bounded by the connection limits below): a
	 * write waiting for regionfwd (up to --dataplane-timeout, holding the
	 * state lock) occupies its own thread only, and status, answered from
	 * the view without that lock, keeps answering on the others. One
	 * polling thread would serve nothing else meanwhile (issue 16, 3). */
	unsigned flags =
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;

	if (api == NULL)
		return NULL;
	if ((api->headwatch = ctl_headwatch_new(CTL_API_HEAD_MS,
						conf->min_body_rate ? conf->min_body_rate
								    : CTL_API_BODY_RATE)) == NULL) {
		fwd_log(FWD_LOG_ERR, "API: cannot start the request-head watch");
		goto fail;
	}
	if (strlen(conf->unix_path) >= sizeof(sa.sun_path)) {
		fwd_log(FWD_LOG_ERR, "API socket path too long");
		goto fail;
	}
	strcpy(api->unix_path, conf->unix_path);
	/* Replaces only a socket (a stopped regiond's), so a typo in
	 * --api-socket cannot delete a file; the socket appears on the path
	 * only once it listens (fwd_unixsock.h). */
	api->unix_fd =
		fwd_unix_keep_listen(&api->keep, conf->unix_path, 0, 64, 0660, (gid_t)-1, &why);
	if (api->unix_fd < 0) {
		int err = -api->unix_fd;

		api->unix_fd = -1;
		fwd_log(FWD_LOG_ERR, "API socket %s: %s%s%s", conf->unix_path, why,
			err == EEXIST || err == EADDRINUSE ? "" : ": ",
			err == EEXIST || err == EADDRINUSE ? "" : strerror(err));
		goto fail;
	}
	api->unix_d = start_unix(api, api->unix_fd);
	if (api->unix_d == NULL) {
		fwd_log(FWD_LOG_ERR, "cannot start the API on %s", conf->unix_path);
		goto fail;
	}
	api->unix_fd = -1; /* MHD owns it now and closes it when stopped */
	if (conf->tcp_listen) {
		struct addrinfo *ai;

		snprintf(api->tcp_listen, sizeof(api->tcp_listen), "%s", conf->tcp_listen);
		if (fwd_parse_listen(conf->tcp_listen, &ai)) {
			fwd_log(FWD_LOG_ERR,
				"--listen %s: not a numeric address and a port in 1..65535",
				conf->tcp_listen);
			goto fail;
		}
		/* TLS: the port speaks HTTPS only (a plain request fails its
		 * handshake); with a client CA, GnuTLS asks every client for a
		 * certificate, and credentials() refuses a request without one
		 * that verifies. */
		struct MHD_OptionItem tls[] = {
			{MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)conf->tls_cert},
			{MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)conf->tls_key},
			{MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)CTL_API_TLS_PRIORITIES},
			{conf->tls_client_ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0,
			 (void *)conf->tls_client_ca},
			{MHD_OPTION_END, 0, NULL},
		};
		int use_tls = conf->tls_cert != NULL && conf->tls_key != NULL;

		if (use_tls && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			fwd_log(FWD_LOG_ERR, "this libmicrohttpd is built without TLS");
			freeaddrinfo(ai);
			goto fail;
		}
		api->tcp_d = MHD_start_daemon(
			flags | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
				(use_tls ? MHD_USE_TLS : 0),
			0, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
			(void *)api->tcp_listen, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
			MHD_OPTION_NOTIFY_COMPLETED, on_done, api, MHD_OPTION_URI_LOG_CALLBACK,
			on_uri, api, MHD_OPTION_NOTIFY_CONNECTION, ctl_headwatch_notify,
			api->headwatch, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CTL_API_TCP_IDLE_S,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned)CTL_API_TCP_CONNECTIONS,
			MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CTL_API_TCP_PER_ADDRESS,
			MHD_OPTION_ARRAY, use_tls ? tls : &tls[4], MHD_OPTION_END);
		freeaddrinfo(ai);
		if (api->tcp_d == NULL) {
			fwd_log(FWD_LOG_ERR, "cannot %s on %s (libmicrohttpd's reason above)",
				use_tls ? "serve HTTPS" : "listen", conf->tcp_listen);
			goto fail;
		}
	}
	return api;
fail:
	ctl_api_stop(api);
	return NULL;
}

/* How long a stop waits for the writes admitted before it, past the push
 * one of them may be waiting for (--dataplane-timeout): their answers are
 * small, so this is for a client that does not read its answer, which is
 * not waited for beyond it. */
#define STOP_ANSWER_MS 5000

/* Refuse every write from now on and wait for the ones admitted before,
 * so that each client hears the outcome of a change that ran: a running
 * write ends within its push's --dataplane-timeout, one queued behind it
 * is refused once it gets the lock (route()). */
static void stop_writes(struct ctl_api *api)
{
	const int64_t until = fwd_mono_ms() +
			      (api->st->dp_timeout_ms > 0 ? api->st->dp_timeout_ms : 0) +
			      STOP_ANSWER_MS;
	unsigned left;

	pthread_mutex_lock(&api->stop_lock);
	api->stopping = 1;
	while ((left = api->writes) > 0 && fwd_mono_ms() < until) {
		pthread_mutex_unlock(&api->stop_lock);
		usleep(10000);
		pthread_mutex_lock(&api->stop_lock);
	}
	pthread_mutex_unlock(&api->stop_lock);
	if (left)
		fwd_log(FWD_LOG_WARNING,
			"stop: %u write(s) still unanswered after %d ms; closing their "
			"connections",
			left, api->st->dp_timeout_ms + STOP_ANSWER_MS);
}

void ctl_api_stop(struct ctl_api *api)
{
	if (api == NULL)
		return;
	stop_writes(api);
	/* Threads that write (the fleet agent, the feed) outlive the API:
	 * their writes stop publishing into it before it goes. */
	ctl_state_write_begin(api->st);
	api->st->on_write_end = NULL;
	ctl_state_write_end(api->st);
	if (api->tcp_d)
		MHD_stop_daemon(api->tcp_d);
	if (api->unix_d)
		MHD_stop_daemon(api->unix_d);
	while (api->nretired)
		retire_end(api, api->nretired - 1);
	ctl_headwatch_free(api->headwatch);
	if (api->unix_fd >= 0)
		close(api->unix_fd);
	fwd_unix_keep_unlink(&api->keep); /* not another process's, bound since */
	json_decref(api->view);
	pthread_mutex_destroy(&api->view_lock);
	pthread_mutex_destroy(&api->buffered_lock);
	shared_put(api->table_text);
	pthread_mutex_destroy(&api->table_lock);
	ctl_dp_free(api->dp_read);
	pthread_mutex_destroy(&api->dp_read_lock);
	pthread_mutex_destroy(&api->capture_lock);
	pthread_mutex_destroy(&api->pins_lock);
	pthread_mutex_destroy(&api->stop_lock);
	pthread_mutex_destroy(&api->prepare_lock[0]);
	pthread_mutex_destroy(&api->prepare_lock[1]);
	free(api);
}
