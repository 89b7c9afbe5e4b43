/* ctl_etcd.c - the etcd v3 JSON gateway client (contract in ctl_etcd.h). */
#include "ctl_etcd.h"
#include "fwd_clock.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ETCD_MAX_ENDPOINTS 8
#define ETCD_DEFAULT_TIMEOUT_MS 2000
#define ETCD_DEFAULT_MAX_REPLY (8u << 20)
/* gRPC status codes etcd's gateway returns in "code" (google.rpc.Code). */
#define GRPC_CANCELED 1
#define GRPC_DEADLINE_EXCEEDED 4
#define GRPC_NOT_FOUND 5
#define GRPC_PERMISSION_DENIED 7
#define GRPC_OUT_OF_RANGE 11
#define GRPC_UNAVAILABLE 14
#define GRPC_UNAUTHENTICATED 16

struct buf {
	char *p;
	size_t len, cap, max;
	int over; /* the peer sent more than max: the transfer was cut */
};

struct ctl_etcd {
	char *endpoints[ETCD_MAX_ENDPOINTS];
	unsigned n_endpoints;
	unsigned cur; /* the endpoint tried first */
	unsigned timeout_ms;
	size_t max_reply;
	char *ca_file, *cert_file, *key_file, *user, *password;
	char token[512]; /* "" until authenticated */
	CURL *curl; /* reused: keeps the connection to the current endpoint */
	struct buf reply;
};

struct ctl_etcd_watch {
	struct ctl_etcd *e;
	char *key;
	unsigned flags;
	int64_t next; /* the next revision to deliver */
	unsigned cur; /* endpoint of the stream */
	CURLM *multi;
	CURL *curl; /* the stream, or NULL */
	struct curl_slist *headers;
	char *body;
	struct buf in; /* bytes received, not yet a whole message */
	int created; /* etcd confirmed the watch on this stream */
	uint64_t started_ms; /* when the stream was opened */
};

/* ---- small helpers ------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is not thread-safe with libcurl before 7.84: once. */
static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const void *data, size_t len)
{
	const unsigned char *s = data;
	char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		*o++ = b64_alphabet[(v >> 18) & 63];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int b64_val(char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;

	return p ? (int)(p - b64_alphabet) : -1;
}

/* Decode @s into a new NUL-terminated buffer; NULL when @s is not base64. */
static char *b64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s), o = 0;
	char *out;
	uint32_t acc = 0;
	unsigned bits = 0;

	if (n % 4)
		return NULL;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int v;

		if (s[i] == '=') {
			/* padding only at the end, at most two */
			if (i + 2 < n || (i + 1 < n && s[i + 1] != '='))
				goto bad;
			break;
		}
		v = b64_val(s[i]);
		if (v < 0)
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	*len = o;
	return out;
bad:
	free(out);
	return NULL;
}

/* etcd's gateway writes 64-bit numbers as strings ("revision":"12"),
 * protobuf's JSON mapping; accept integers too. Absent is 0. */
static int json_i64(json_t *o, const char *name, int64_t *v)
{
	json_t *j = json_object_get(o, name);
	char *end;

	*v = 0;
	if (!j)
		return 0;
	if (json_is_integer(j)) {
		*v = json_integer_value(j);
		return 0;
	}
	if (!json_is_string(j))
		return -EINVAL;
	errno = 0;
	*v = strtoll(json_string_value(j), &end, 10);
	if (errno || *end || end == json_string_value(j))
		return -EINVAL;
	return 0;
}

static size_t buf_write(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;

	if (b->len + len + 1 > b->max) {
		b->over = 1;
		return 0; /* curl aborts the transfer */
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		if (cap > b->max)
			cap = b->max;
		p = realloc(b->p, cap);
		if (!p)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return len;
}

/* "http://host:port" or "https://host:port" with a host and a port only. */
static int endpoint_ok(const char *u)
{
	const char *rest = !strncmp(u, "http://", 7)	? u + 7
			   : !strncmp(u, "https://", 8) ? u + 8
							: NULL;
	const char *colon;

	if (!rest || !*rest || strchr(rest, '/') || strlen(u) > 255)
		return 0;
	colon = strrchr(rest, ':');
	if (!colon || colon == rest || !colon[1])
		return 0;
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---- the client --------------------------------------------------------- */

struct ctl_etcd *ctl_etcd_create(const struct ctl_etcd_conf *conf, struct fwd_err *err)
{
	struct ctl_etcd *e;
	char *list, *save = NULL;

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "libcurl does not initialise");
		errno = ENOMEM;
		return NULL;
	}
	if (!conf || !conf->endpoints || !*conf->endpoints) {
		fwd_err_set(err, NULL, 0, "endpoints", "no etcd endpoint given");
		errno = EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	list = strdup(conf->endpoints);
	if (!e || !list)
		goto nomem;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (e->n_endpoints == ETCD_MAX_ENDPOINTS) {
			fwd_err_set(err, NULL, 0, "endpoints", "more than %d etcd endpoints",
				    ETCD_MAX_ENDPOINTS);
			goto invalid;
		}
		if (!endpoint_ok(t)) {
			fwd_err_set(err, NULL, 0, "endpoints",
				    "'%.200s' is not http(s)://host:port", t);
			goto invalid;
		}
		e->endpoints[e->n_endpoints] = strdup(t);
		if (!e->endpoints[e->n_endpoints++])
			goto nomem;
	}
	if (!e->n_endpoints) {
		fwd_err_set(err, NULL, 0, "endpoints", "no etcd endpoint given");
		goto invalid;
	}
	if (conf->user && !conf->password) {
		fwd_err_set(err, NULL, 0, "password", "an etcd user needs a password");
		goto invalid;
	}
	free(list);
	list = NULL;
	e->timeout_ms = conf->timeout_ms ? conf->timeout_ms : ETCD_DEFAULT_TIMEOUT_MS;
	e->max_reply = conf->max_reply ? conf->max_reply : ETCD_DEFAULT_MAX_REPLY;
	e->ca_file = dup_or_null(conf->ca_file);
	e->cert_file = dup_or_null(conf->cert_file);
	e->key_file = dup_or_null(conf->key_file);
	e->user = dup_or_null(conf->user);
	e->password = dup_or_null(conf->password);
	e->curl = curl_easy_init();
	if ((conf->ca_file && !e->ca_file) || (conf->cert_file && !e->cert_file) ||
	    (conf->key_file && !e->key_file) || (conf->user && !e->user) ||
	    (conf->password && !e->password) || !e->curl)
		goto nomem;
	return e;
nomem:
	fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	free(list);
	ctl_etcd_free(e);
	errno = ENOMEM;
	return NULL;
invalid:
	free(list);
	ctl_etcd_free(e);
	errno = EINVAL;
	return NULL;
}

void ctl_etcd_free(struct ctl_etcd *e)
{
	if (!e)
		return;
	for (unsigned i = 0; i < e->n_endpoints; i++)
		free(e->endpoints[i]);
	if (e->curl)
		curl_easy_cleanup(e->curl);
	free(e->ca_file);
	free(e->cert_file);
	free(e->key_file);
	free(e->user);
	if (e->password)
		memset(e->password, 0, strlen(e->password));
	free(e->password);
	free(e->reply.p);
	free(e);
}

const char *ctl_etcd_endpoint(const struct ctl_etcd *e)
{
	return e->endpoints[e->cur];
}

/* Options common to the request handle and the watch streams. */
static void setup_handle(struct ctl_etcd *e, CURL *c, const char *url, const char *body,
			 struct curl_slist *headers, struct buf *b)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	/* No signals: regiond is threaded, and a timeout must not be SIGALRM. */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	/* A member that vanishes without a FIN (partition, power) is noticed
	 * on an idle watch stream by TCP keepalive within a few seconds. */
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 2L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 1L);
	if (e->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, e->ca_file);
	if (e->cert_file)
		curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert_file);
	if (e->key_file)
		curl_easy_setopt(c, CURLOPT_SSLKEY, e->key_file);
}

static struct curl_slist *make_headers(const char *token)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json"), *n;
	char auth[600];

	if (!h || !token || !*token)
		return h;
	snprintf(auth, sizeof(auth), "Authorization: %s", token);
	n = curl_slist_append(h, auth);
	if (!n) {
		curl_slist_free_all(h);
		return NULL;
	}
	return n;
}

/* What one attempt on one endpoint came to. */
enum attempt {
	ATT_OK, /* a JSON object reply without an error: in *out */
	ATT_NEXT, /* transport failure or etcd unavailable: try the next one */
	ATT_REAUTH, /* the token expired */
	ATT_FAIL, /* a final error, in err */
};

/* etcd's gateway error body: {"error":"...","message":"...","code":N}.
 * Out of reach rather than refused, so the next member is tried: an
 * unavailable member (no leader, a leader change, a request timed out),
 * a deadline passed inside the member, and a call canceled under the
 * gateway (HTTP 408 "grpc: the client connection is closing", from a
 * member shutting down). A write may have been applied all the same, as
 * with any call left unanswered, and its retry on the next member then
 * fails its compare: callers that write with a compare look whether what
 * they find is their own (the leader key on their lease, the rollout record
 * with their id) or read again. A nested body is a streaming call's error. */
static enum attempt etcd_error(json_t *j, long http, const char *endpoint, const char *path,
			       struct fwd_err *err, int *rc)
{
	json_t *code = json_object_get(j, "code"), *nested = json_object_get(j, "error");
	const char *msg = json_string_value(json_object_get(j, "message"));
	long long c;
	char text[300];

	/* A streaming call's (lease keepalive) error comes nested, as a
	 * watch's does: {"error":{"grpc_code":N,"http_code":H,"message":..}}. */
	if (code == NULL && json_is_object(nested)) {
		code = json_object_get(nested, "grpc_code");
		msg = json_string_value(json_object_get(nested, "message"));
	}
	c = json_is_integer(code) ? json_integer_value(code) : -1;

	snprintf(text, sizeof(text), "%s", msg ? msg : "no message");
	fwd_utf8_clean(text);
	if (c == GRPC_UNAVAILABLE || c == GRPC_DEADLINE_EXCEEDED || c == GRPC_CANCELED) {
		*rc = fwd_err_fail(err, FWD_R_ETCD_UNAVAILABLE, NULL, 0, path,
				   "%s: etcd unavailable (HTTP %ld): %s", endpoint, http, text);
		return ATT_NEXT;
	}
	if (c == GRPC_UNAUTHENTICATED && strstr(text, "token"))
		return ATT_REAUTH;
	if (c == GRPC_OUT_OF_RANGE && strstr(text, "compacted")) {
		*rc = fwd_err_fail(err, FWD_R_ETCD_COMPACTED, NULL, 0, path, "etcd: %s", text);
		return ATT_FAIL;
	}
	*rc = fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, path, "etcd (HTTP %ld): %s", http, text);
	if (c == GRPC_NOT_FOUND)
		*rc = -ENOENT;
	else if (c == GRPC_PERMISSION_DENIED || c == GRPC_UNAUTHENTICATED)
		*rc = -EACCES;
	return ATT_FAIL;
}

static enum attempt attempt_one(struct ctl_etcd *e, unsigned idx, const char *path,
				const char *body, int with_token, json_t **out, struct fwd_err *err,
				int *rc)
{
	char url[400];
	struct curl_slist *h = make_headers(with_token ? e->token : NULL);
	CURLcode cc;
	long http = 0;
	json_t *j;
	json_error_t je;

	if (!h) {
		*rc = fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return ATT_FAIL;
	}
	snprintf(url, sizeof(url), "%s%s", e->endpoints[idx], path);
	e->reply.len = 0;
	e->reply.over = 0;
	e->reply.max = e->max_reply;
	curl_easy_reset(e->curl);
	setup_handle(e, e->curl, url, body, h, &e->reply);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
	cc = curl_easy_perform(e->curl);
	curl_slist_free_all(h);
	/* A reply over the bound or one that is not JSON is not etcd speaking:
	 * a proxy, a port reused by something else. Another member may answer. */
	if (e->reply.over) {
		*rc = fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, path,
				   "%s answered more than %zu bytes", e->endpoints[idx],
				   e->max_reply);
		return ATT_NEXT;
	}
	if (cc != CURLE_OK) {
		*rc = fwd_err_fail(err, FWD_R_ETCD_UNAVAILABLE, NULL, 0, path, "%s: %s",
				   e->endpoints[idx], curl_easy_strerror(cc));
		return ATT_NEXT;
	}
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &http);
	j = json_loadb(e->reply.p ? e->reply.p : "", e->reply.len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(j)) {
		char text[200];

		snprintf(text, sizeof(text), "%.150s", e->reply.p ? e->reply.p : "");
		text[strcspn(text, "\r\n")] = '\0';
		fwd_utf8_clean(text);
		json_decref(j);
		*rc = fwd_err_fail(err, http >= 500 ? FWD_R_ETCD_UNAVAILABLE : FWD_R_ETCD_ERROR,
				   NULL, 0, path, "%s: HTTP %ld, not etcd's JSON: %s",
				   e->endpoints[idx], http, text);
		return ATT_NEXT;
	}
	if (json_object_get(j, "error") || http != 200) {
		enum attempt a = etcd_error(j, http, e->endpoints[idx], path, err, rc);

		json_decref(j);
		return a;
	}
	*out = j;
	return ATT_OK;
}

static int authenticate(struct ctl_etcd *e, struct fwd_err *err);

/* POST @req (taken) to @path: the first endpoint that answers, from the
 * current one; the reply object in *out. */
static int call(struct ctl_etcd *e, const char *path, json_t *req, json_t **out,
		struct fwd_err *err)
{
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	int rc = 0, reauthed = 0;

	json_decref(req);
	*out = NULL;
	if (!body)
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	if (e->user && !e->token[0] && strcmp(path, "/v3/auth/authenticate")) {
		rc = authenticate(e, err);
		if (rc < 0)
			goto out;
	}
	for (unsigned n = 0; n < e->n_endpoints; n++) {
		unsigned idx = (e->cur + n) % e->n_endpoints;
		enum attempt a = attempt_one(e, idx, path, body, 1, out, err, &rc);

		if (a == ATT_REAUTH && !reauthed && e->user) {
			reauthed = 1;
			e->token[0] = '\0';
			rc = authenticate(e, err);
			if (rc < 0)
				goto out;
			n--; /* the same endpoint again, with the new token */
			continue;
		}
		if (a == ATT_OK) {
			e->cur = idx;
			rc = 0;
			goto out;
		}
		if (a != ATT_NEXT)
			goto out;
	}
	/* Every endpoint failed: err says how the last one did. Start from the
	 * next one next time rather than hammering the same one first. */
	e->cur = (e->cur + 1) % e->n_endpoints;
out:
	free(body);
	return rc;
}

static int authenticate(struct ctl_etcd *e, struct fwd_err *err)
{
	json_t *r = NULL;
	const char *tok;
	int rc;

	rc = call(e, "/v3/auth/authenticate",
		  json_pack("{s:s, s:s}", "name", e->user, "password", e->password), &r, err);
	if (rc < 0)
		return rc;
	tok = json_string_value(json_object_get(r, "token"));
	if (!tok || !*tok || strlen(tok) >= sizeof(e->token) || strpbrk(tok, "\r\n")) {
		json_decref(r);
		return fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, "token",
				    "etcd's authenticate answer has no usable token");
	}
	snprintf(e->token, sizeof(e->token), "%s", tok);
	json_decref(r);
	return 0;
}

/* ---- keys --------------------------------------------------------------- */

/* The smallest key after every key starting with @key (etcd's range_end for
 * a prefix): the last byte below 0xff incremented, what follows it cut. */
static char *prefix_end(const char *key, size_t *len)
{
	size_t n = strlen(key);
	char *end = malloc(n + 1);

	if (!end)
		return NULL;
	memcpy(end, key, n + 1);
	while (n && (unsigned char)end[n - 1] == 0xff)
		n--;
	if (!n) {
		/* every key: range_end "\0" */
		end[0] = '\0';
		*len = 1;
		return end;
	}
	end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
	end[n] = '\0';
	*len = n;
	return end;
}

/* Set "key" (and "range_end" with CTL_ETCD_PREFIX) in @o. */
static int set_key(json_t *o, const char *key, unsigned flags)
{
	char *k = b64_encode(key, strlen(key));
	int rc = k ? json_object_set_new(o, "key", json_string(k)) : -1;

	free(k);
	if (rc == 0 && (flags & CTL_ETCD_PREFIX)) {
		size_t n;
		char *end = prefix_end(key, &n);
		char *b = end ? b64_encode(end, n) : NULL;

		rc = b ? json_object_set_new(o, "range_end", json_string(b)) : -1;
		free(end);
		free(b);
	}
	return rc ? -ENOMEM : 0;
}

static int set_bytes(json_t *o, const char *name, const void *v, size_t len)
{
	char *b = b64_encode(v ? v : "", len);
	int rc = b ? json_object_set_new(o, name, json_string(b)) : -1;

	free(b);
	return rc ? -ENOMEM : 0;
}

static int set_i64(json_t *o, const char *name, int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRId64, v);
	return json_object_set_new(o, name, json_string(s)) ? -ENOMEM : 0;
}

static void kv_clear(struct ctl_etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

/* One mvccpb.KeyValue from the gateway. */
static int parse_kv(json_t *j, struct ctl_etcd_kv *kv, const char *path, struct fwd_err *err)
{
	const char *k = json_string_value(json_object_get(j, "key"));
	json_t *v = json_object_get(j, "value");

	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(j) || !k || (v && !json_is_string(v)) ||
	    json_i64(j, "create_revision", &kv->create_revision) ||
	    json_i64(j, "mod_revision", &kv->mod_revision) ||
	    json_i64(j, "version", &kv->version) || json_i64(j, "lease", &kv->lease))
		goto bad;
	kv->key = b64_decode(k, &kv->key_len);
	kv->value = b64_decode(v ? json_string_value(v) : "", &kv->value_len);
	if (!kv->key || !kv->value)
		goto bad;
	return 0;
bad:
	kv_clear(kv);
	return fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, path,
			    "etcd's answer has a key that is not a KeyValue");
}

static int header_revision(json_t *r, int64_t *rev, const char *path, struct fwd_err *err)
{
	if (json_i64(json_object_get(r, "header"), "revision", rev) || *rev < 0)
		return fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, path,
				    "etcd's answer has no header revision");
	return 0;
}

/* A RangeResponse (the whole reply, or one in a txn) into @out. */
static int parse_range(json_t *r, struct ctl_etcd_range *out, const char *path, struct fwd_err *err)
{
	json_t *kvs = json_object_get(r, "kvs");
	size_t n = json_array_size(kvs);
	int rc;

	memset(out, 0, sizeof(*out));
	if (kvs && !json_is_array(kvs))
		return fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, path,
				    "etcd's answer has kvs that are not a list");
	out->more = json_is_true(json_object_get(r, "more"));
	if (!n)
		return 0;
	out->kvs = calloc(n, sizeof(*out->kvs));
	if (!out->kvs)
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	for (size_t i = 0; i < n; i++) {
		rc = parse_kv(json_array_get(kvs, i), &out->kvs[i], path, err);
		if (rc < 0) {
			ctl_etcd_range_free(out);
			return rc;
		}
		out->count = i + 1;
	}
	return 0;
}

void ctl_etcd_range_free(struct ctl_etcd_range *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->count; i++)
		kv_clear(&r->kvs[i]);
	free(r->kvs);
	r->kvs = NULL;
	r->count = 0;
}

static json_t *range_req(const char *key, unsigned flags, int64_t revision, size_t limit)
{
	json_t *o = json_object();

	if (!o || set_key(o, key, flags) || (revision && set_i64(o, "revision", revision)) ||
	    (limit && set_i64(o, "limit", (int64_t)limit)) ||
	    ((flags & CTL_ETCD_KEYS_ONLY) && json_object_set_new(o, "keys_only", json_true()))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int ctl_etcd_range(struct ctl_etcd *e, const char *key, unsigned flags, int64_t revision,
		   size_t limit, struct ctl_etcd_range *out, struct fwd_err *err)
{
	json_t *req = range_req(key, flags, revision, limit), *r;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!req)
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	rc = call(e, "/v3/kv/range", req, &r, err);
	if (rc < 0)
		return rc;
	rc = parse_range(r, out, key, err);
	if (rc == 0)
		rc = header_revision(r, &out->revision, key, err);
	if (rc < 0)
		ctl_etcd_range_free(out);
	json_decref(r);
	return rc;
}

static json_t *put_req(const char *key, const void *value, size_t len, int64_t lease)
{
	json_t *o = json_object();

	if (!o || set_key(o, key, 0) || set_bytes(o, "value", value, len) ||
	    (lease && set_i64(o, "lease", lease))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int ctl_etcd_put(struct ctl_etcd *e, const char *key, const void *value, size_t len, int64_t lease,
		 int64_t *revision, struct fwd_err *err)
{
	json_t *req = put_req(key, value, len, lease), *r;
	int64_t rev;
	int rc;

	if (!req)
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	rc = call(e, "/v3/kv/put", req, &r, err);
	if (rc < 0)
		return rc;
	rc = header_revision(r, &rev, key, err);
	json_decref(r);
	if (rc == 0 && revision)
		*revision = rev;
	return rc;
}

int ctl_etcd_delete(struct ctl_etcd *e, const char *key, unsigned flags, int64_t *revision,
		    struct fwd_err *err)
{
	json_t *req = json_object(), *r;
	int64_t rev, deleted;
	int rc;

	if (!req || set_key(req, key, flags)) {
		json_decref(req);
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	}
	rc = call(e, "/v3/kv/deleterange", req, &r, err);
	if (rc < 0)
		return rc;
	rc = header_revision(r, &rev, key, err);
	if (rc == 0 && (json_i64(r, "deleted", &deleted) || deleted < 0 || deleted > INT32_MAX))
		rc = fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, key,
				  "etcd's delete answer has no count");
	json_decref(r);
	if (rc < 0)
		return rc;
	if (revision)
		*revision = rev;
	return (int)deleted;
}

/* ---- transactions ------------------------------------------------------- */

static json_t *cmp_json(const struct ctl_etcd_cmp *c)
{
	static const char *const target[] = {
		[CTL_ETCD_CMP_CREATE] = "CREATE",   [CTL_ETCD_CMP_MOD] = "MOD",
		[CTL_ETCD_CMP_VERSION] = "VERSION", [CTL_ETCD_CMP_VALUE] = "VALUE",
		[CTL_ETCD_CMP_LEASE] = "LEASE",
	};
	static const char *const field[] = {
		[CTL_ETCD_CMP_CREATE] = "create_revision",
		[CTL_ETCD_CMP_MOD] = "mod_revision",
		[CTL_ETCD_CMP_VERSION] = "version",
		[CTL_ETCD_CMP_LEASE] = "lease",
	};
	static const char *const result[] = {
		[CTL_ETCD_EQUAL] = "EQUAL",
		[CTL_ETCD_NOT_EQUAL] = "NOT_EQUAL",
		[CTL_ETCD_GREATER] = "GREATER",
		[CTL_ETCD_LESS] = "LESS",
	};
	json_t *o;
	int bad;

	if ((unsigned)c->target > CTL_ETCD_CMP_LEASE || (unsigned)c->result > CTL_ETCD_LESS ||
	    !c->key)
		return NULL;
	o = json_pack("{s:s, s:s}", "target", target[c->target], "result", result[c->result]);
	if (!o)
		return NULL;
	bad = set_key(o, c->key, 0) ||
	      (c->target == CTL_ETCD_CMP_VALUE ? set_bytes(o, "value", c->value, c->value_len)
					       : set_i64(o, field[c->target], c->number));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *op_json(const struct ctl_etcd_op *op)
{
	json_t *inner = NULL;
	const char *name = NULL;

	if (!op->key)
		return NULL;
	switch (op->type) {
	case CTL_ETCD_OP_RANGE:
		inner = range_req(op->key, op->flags, 0, 0);
		name = "request_range";
		break;
	case CTL_ETCD_OP_PUT:
		inner = put_req(op->key, op->value, op->value_len, op->lease);
		name = "request_put";
		break;
	case CTL_ETCD_OP_DELETE:
		inner = json_object();
		if (inner && set_key(inner, op->key, op->flags)) {
			json_decref(inner);
			inner = NULL;
		}
		name = "request_delete_range";
		break;
	}
	return inner ? json_pack("{s:o}", name, inner) : NULL;
}

static json_t *list_json(const void *items, size_t n, int cmp)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_t *j = cmp ? cmp_json((const struct ctl_etcd_cmp *)items + i)
				: op_json((const struct ctl_etcd_op *)items + i);

		if (!j || json_array_append_new(a, j)) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

int ctl_etcd_txn(struct ctl_etcd *e, const struct ctl_etcd_cmp *cmp, size_t ncmp,
		 const struct ctl_etcd_op *success, size_t nsuccess,
		 const struct ctl_etcd_op *failure, size_t nfailure,
		 struct ctl_etcd_txn_result *res, struct fwd_err *err)
{
	json_t *c = list_json(cmp, ncmp, 1), *s = list_json(success, nsuccess, 0);
	json_t *f = list_json(failure, nfailure, 0), *req, *r, *resps;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!c || !s || !f) {
		json_decref(c);
		json_decref(s);
		json_decref(f);
		return fwd_err_set(err, NULL, 0, "txn", "a compare or an op is not valid");
	}
	req = json_pack("{s:o, s:o, s:o}", "compare", c, "success", s, "failure", f);
	if (!req)
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	rc = call(e, "/v3/kv/txn", req, &r, err);
	if (rc < 0)
		return rc;
	/* proto3's JSON leaves out false: no "succeeded" is a failed compare */
	res->succeeded = json_is_true(json_object_get(r, "succeeded"));
	rc = header_revision(r, &res->revision, "txn", err);
	resps = json_object_get(r, "responses");
	for (size_t i = 0; rc == 0 && i < json_array_size(resps); i++) {
		json_t *rr = json_object_get(json_array_get(resps, i), "response_range");

		if (rr) {
			rc = parse_range(rr, &res->range, "txn", err);
			res->range.revision = res->revision;
			break;
		}
	}
	json_decref(r);
	return rc;
}

/* ---- leases ------------------------------------------------------------- */

int ctl_etcd_lease_grant(struct ctl_etcd *e, unsigned ttl_s, int64_t *id, struct fwd_err *err)
{
	json_t *r;
	int64_t v = 0;
	int rc;

	rc = call(e, "/v3/lease/grant", json_pack("{s:I}", "TTL", (json_int_t)ttl_s), &r, err);
	if (rc < 0)
		return rc;
	if (json_i64(r, "ID", &v) || v <= 0)
		rc = fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, "lease",
				  "etcd's lease grant answer has no ID");
	json_decref(r);
	*id = v;
	return rc;
}

/* The gateway maps the KeepAlive stream to one request, one answer:
 * {"result":{"ID":..,"TTL":..}}; an unknown or expired lease has no TTL. */
int ctl_etcd_lease_keepalive(struct ctl_etcd *e, int64_t id, int64_t *ttl_s, struct fwd_err *err)
{
	json_t *req = json_object(), *r, *res;
	int64_t ttl = 0;
	int rc;

	if (!req || set_i64(req, "ID", id)) {
		json_decref(req);
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	}
	rc = call(e, "/v3/lease/keepalive", req, &r, err);
	if (rc < 0)
		return rc;
	res = json_object_get(r, "result");
	if (!json_is_object(res) || json_i64(res, "TTL", &ttl))
		rc = fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, "lease",
				  "etcd's keepalive answer is not a LeaseKeepAliveResponse");
	else if (ttl <= 0) {
		fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, "lease",
			     "lease %" PRId64 " has expired", id);
		rc = -ENOENT;
	}
	json_decref(r);
	if (rc == 0 && ttl_s)
		*ttl_s = ttl;
	return rc;
}

int ctl_etcd_lease_revoke(struct ctl_etcd *e, int64_t id, struct fwd_err *err)
{
	json_t *req = json_object(), *r;
	int rc;

	if (!req || set_i64(req, "ID", id)) {
		json_decref(req);
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	}
	rc = call(e, "/v3/lease/revoke", req, &r, err);
	if (rc == -ENOENT)
		return 0;
	json_decref(r);
	return rc < 0 ? rc : 0;
}

/* ---- watches ------------------------------------------------------------ */

struct ctl_etcd_watch *ctl_etcd_watch_create(struct ctl_etcd *e, const char *key, unsigned flags,
					     int64_t start_revision, struct fwd_err *err)
{
	struct ctl_etcd_watch *w = calloc(1, sizeof(*w));

	if (!w || !(w->key = strdup(key)) || !(w->multi = curl_multi_init())) {
		if (w)
			free(w->key);
		free(w);
		fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	w->e = e;
	w->flags = flags;
	w->next = start_revision > 0 ? start_revision : 0;
	w->cur = e->cur;
	return w;
}

const char *ctl_etcd_watch_endpoint(const struct ctl_etcd_watch *w)
{
	return w->e->endpoints[w->cur];
}

int64_t ctl_etcd_watch_next(const struct ctl_etcd_watch *w)
{
	return w->next;
}

static void stream_close(struct ctl_etcd_watch *w)
{
	if (w->curl) {
		curl_multi_remove_handle(w->multi, w->curl);
		curl_easy_cleanup(w->curl);
		w->curl = NULL;
	}
	curl_slist_free_all(w->headers);
	w->headers = NULL;
	free(w->body);
	w->body = NULL;
	w->in.len = 0;
	w->in.over = 0;
	w->created = 0;
}

void ctl_etcd_watch_reset(struct ctl_etcd_watch *w, int64_t start_revision)
{
	stream_close(w);
	w->next = start_revision > 0 ? start_revision : 0;
	w->cur = w->e->cur; /* where the client was last answered */
}

void ctl_etcd_watch_free(struct ctl_etcd_watch *w)
{
	if (!w)
		return;
	stream_close(w);
	curl_multi_cleanup(w->multi);
	free(w->in.p);
	free(w->key);
	free(w);
}

static int stream_open(struct ctl_etcd_watch *w, struct fwd_err *err)
{
	struct ctl_etcd *e = w->e;
	json_t *cr = json_object(), *req;
	char url[400];
	int rc;

	if (e->user && !e->token[0]) {
		rc = authenticate(e, err);
		if (rc < 0) {
			json_decref(cr);
			return rc;
		}
	}
	if (!cr || set_key(cr, w->key, w->flags) ||
	    (w->next && set_i64(cr, "start_revision", w->next))) {
		json_decref(cr);
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	}
	req = json_pack("{s:o}", "create_request", cr);
	w->body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	w->headers = make_headers(e->token);
	w->curl = curl_easy_init();
	if (!w->body || !w->headers || !w->curl) {
		stream_close(w);
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	}
	snprintf(url, sizeof(url), "%s/v3/watch", e->endpoints[w->cur]);
	/* One message is bounded like a reply; the stream itself is not. */
	w->in.max = e->max_reply;
	setup_handle(e, w->curl, url, w->body, w->headers, &w->in);
	if (curl_multi_add_handle(w->multi, w->curl) != CURLM_OK) {
		stream_close(w);
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	}
	w->started_ms = (uint64_t)fwd_mono_ms();
	return 0;
}

/* The stream failed on its endpoint: drop it, and the next poll opens one
 * on the next endpoint from w->next, so nothing delivered is replayed. */
static int stream_failed(struct ctl_etcd_watch *w, enum fwd_reason r, const char *why,
			 struct fwd_err *err)
{
	char text[300];

	snprintf(text, sizeof(text), "%s", why);
	fwd_utf8_clean(text);
	fwd_err_fail(err, r, NULL, 0, w->key, "watch on %s: %s", w->e->endpoints[w->cur], text);
	stream_close(w);
	if (r != FWD_R_ETCD_COMPACTED)
		w->cur = (w->cur + 1) % w->e->n_endpoints;
	return -fwd_reason_errno(r);
}

static void event_clear(struct ctl_etcd_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kv_clear(&ev[i].kv);
	free(ev);
}

/* One WatchResponse: hand its events to @cb. Returns events delivered, or a
 * negative errno (the stream is then closed). */
static int watch_message(struct ctl_etcd_watch *w, json_t *msg, ctl_etcd_watch_cb cb, void *arg,
			 struct fwd_err *err)
{
	json_t *res = json_object_get(msg, "result"), *evs, *e_err = json_object_get(msg, "error");
	struct ctl_etcd_event *ev;
	size_t n;
	int64_t compact = 0, prev;
	int rc = 0;

	if (e_err) {
		const char *m = json_string_value(json_object_get(e_err, "message"));
		json_t *code = json_object_get(e_err, "grpc_code");

		if (json_integer_value(code) == GRPC_UNAUTHENTICATED)
			w->e->token[0] = '\0'; /* log in again on the next stream */
		return stream_failed(w, FWD_R_ETCD_ERROR, m ? m : "an error", err);
	}
	if (!json_is_object(res))
		return stream_failed(w, FWD_R_ETCD_ERROR, "a message that is not a WatchResponse",
				     err);
	if (json_i64(res, "compact_revision", &compact))
		return stream_failed(w, FWD_R_ETCD_ERROR, "a bad compact_revision", err);
	if (json_is_true(json_object_get(res, "canceled"))) {
		const char *why = json_string_value(json_object_get(res, "cancel_reason"));

		if (compact > 0)
			return stream_failed(w, FWD_R_ETCD_COMPACTED, "revision compacted", err);
		return stream_failed(w, FWD_R_ETCD_ERROR, why ? why : "canceled by etcd", err);
	}
	if (json_is_true(json_object_get(res, "created")))
		w->created = 1;
	evs = json_object_get(res, "events");
	n = json_array_size(evs);
	if (!n)
		return 0;
	ev = calloc(n, sizeof(*ev));
	if (!ev)
		return stream_failed(w, FWD_R_INTERNAL, "out of memory", err);
	prev = w->next;
	for (size_t i = 0; i < n; i++) {
		json_t *je = json_array_get(evs, i);
		const char *type = json_string_value(json_object_get(je, "type"));

		if (type && strcmp(type, "PUT") && strcmp(type, "DELETE")) {
			event_clear(ev, i);
			return stream_failed(w, FWD_R_ETCD_ERROR, "an event of unknown type", err);
		}
		ev[i].type = type && !strcmp(type, "DELETE") ? CTL_ETCD_EV_DELETE : CTL_ETCD_EV_PUT;
		/* In revision order, none at or below what was delivered */
		if (parse_kv(json_object_get(je, "kv"), &ev[i].kv, w->key, err) < 0 ||
		    ev[i].kv.mod_revision < prev) {
			event_clear(ev, i + (ev[i].kv.key != NULL));
			return stream_failed(w, FWD_R_ETCD_ERROR, "a malformed or replayed event",
					     err);
		}
		prev = ev[i].kv.mod_revision;
	}
	/* Events come in revision order: once handed over, the stream resumes
	 * after the last one whatever the callback says. */
	w->next = ev[n - 1].kv.mod_revision + 1;
	rc = cb(arg, ev, n);
	event_clear(ev, n);
	return rc < 0 ? rc : (int)n;
}

/* Hand every whole message in w->in to @cb. The gateway ends each message
 * with a newline. */
static int watch_drain(struct ctl_etcd_watch *w, ctl_etcd_watch_cb cb, void *arg,
		       struct fwd_err *err)
{
	int total = 0;

	while (w->curl && w->in.len) {
		char *nl = memchr(w->in.p, '\n', w->in.len);
		size_t len;
		json_t *msg;
		int rc;

		if (!nl)
			break;
		len = (size_t)(nl - w->in.p);
		msg = len ? json_loadb(w->in.p, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
		memmove(w->in.p, nl + 1, w->in.len - len - 1);
		w->in.len -= len + 1;
		if (!len)
			continue;
		if (!msg)
			return stream_failed(w, FWD_R_ETCD_ERROR, "a message that is not JSON",
					     err);
		rc = watch_message(w, msg, cb, arg, err);
		json_decref(msg);
		if (rc < 0)
			return rc;
		total += rc;
	}
	return total;
}

int ctl_etcd_watch_poll(struct ctl_etcd_watch *w, unsigned wait_ms, ctl_etcd_watch_cb cb, void *arg,
			struct fwd_err *err)
{
	uint64_t deadline = (uint64_t)fwd_mono_ms() + wait_ms;
	int total = 0, rc;

	if (!w->curl) {
		rc = stream_open(w, err);
		if (rc < 0)
			return rc;
	}
	for (;;) {
		int running = 0, left;
		CURLMsg *m;
		uint64_t now;

		curl_multi_perform(w->multi, &running);
		rc = watch_drain(w, cb, arg, err);
		if (rc < 0)
			return total && rc != -fwd_reason_errno(FWD_R_ETCD_COMPACTED) ? total : rc;
		total += rc;
		if (w->in.over)
			return stream_failed(w, FWD_R_ETCD_ERROR, "a message over the size bound",
					     err);
		while ((m = curl_multi_info_read(w->multi, &left)))
			if (m->msg == CURLMSG_DONE) {
				/* A stream never ends on its own: the member went away. */
				char why[200];

				snprintf(why, sizeof(why), "the stream ended: %s",
					 curl_easy_strerror(m->data.result));
				rc = stream_failed(w, FWD_R_ETCD_UNAVAILABLE, why, err);
				return total ? total : rc;
			}
		now = (uint64_t)fwd_mono_ms();
		/* A member that takes the connection but never confirms the
		 * watch is as good as down. */
		if (!w->created && now - w->started_ms > w->e->timeout_ms)
			return stream_failed(w, FWD_R_ETCD_UNAVAILABLE,
					     "no answer to the watch request in time", err);
		if (total || now >= deadline)
			return total;
		curl_multi_poll(w->multi, NULL, 0, (int)(deadline - now), NULL);
	}
}
