/*
 * regiond's API without HTTP (ctl_api_dispatch), against a fake regionfwd
 * on a unix socket that records every op it is sent:
 *  - reads (status, table, history, metrics, validate) never push a table:
 *    only the main loop's ctl_state_sync() does; status asks regionfwd
 *    nothing (it answers from the view ctl_api_publish builds);
 *  - errors carry the status of their reason (ctl_http.c);
 *  - PATCH refuses an unknown op or an unknown field of a change by name;
 *  - commit-confirm: armed by PUT, pending blocks writes, confirm once;
 *  - POST /v1/prefixes: its body refused by name, and a regionfwd older
 *    than OP_DELTA (its unknown_op framed with another op) gets the batch
 *    as a whole push named by the chain hash.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ctl_api.h"
#include "ctl_dp.h"
#include "ctl_metrics.h"
#include "ctl_ownset.h"
#include "ctl_prefixes.h"
#include "fwd_msg.h"

static const char table_doc[] =
	"regions: {india: {prefixes: [103.21.0.0/16]}, sg: {prefixes: [8.128.0.0/13]}}\n"
	"services: {https: [tcp/443]}\n"
	"links: {local: {port: p0, next_hop_mac: '02:00:00:00:01:01'},\n"
	"        to-sg: {port: p1, next_hop_mac: '02:00:00:00:02:01'}}\n"
	"link_groups: {g: {members: {local: 1, to-sg: 1}}}\n"
	"policies: [{region: sg, service: any, action: steer, to: g}]\n"
	"default: {action: steer, to: local}\n";

/* The fake regionfwd: one connection at a time, ops recorded in order. */
static struct {
	int lfd;
	char path[108];
	pthread_mutex_t mu;
	char ops[64][16];
	int nops;
	char running_hash[17];
	/* As a regionfwd that predates OP_DELTA: its refusal of the op framed
	 * with one it knows, whole pushes answered with the document's hash. */
	int old;
	uint64_t pushed_ident;
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER, .running_hash = "0000000000000000"};

static int rd(int fd, void *p, size_t n)
{
	for (size_t d = 0; d < n;) {
		ssize_t r = read(fd, (char *)p + d, n - d);

		if (r <= 0)
			return -1;
		d += (size_t)r;
	}
	return 0;
}

/* One connection: regiond keeps several (the state's, the API reads'), so
 * each is served by a thread of its own, as regionfwd serves them. */
static void *fake_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t hdr[FWD_MSG_HDR_LEN];

	{
		while (rd(fd, hdr, sizeof(hdr)) == 0) {
			struct fwd_msg_hdr h;
			struct fwd_err e;
			uint8_t *b = NULL, *out = NULL;
			size_t n = 0;

			if (fwd_msg_hdr_decode(hdr, FWD_MSG_MAX_BODY, &h, &e) ||
			    (b = malloc(h.len + 1)) == NULL || rd(fd, b, h.len)) {
				free(b);
				break;
			}
			if (h.op == REGIONFWD__CTL__OP__OP_PUSH) {
				Regionfwd__Ctl__PushRequest *q =
					(Regionfwd__Ctl__PushRequest *)fwd_msg_unpack(&h, b, &e);

				fake.pushed_ident = q ? q->generation_hash : 0;
				if (q)
					protobuf_c_message_free_unpacked(&q->base, NULL);
			}
			free(b);
			pthread_mutex_lock(&fake.mu);
			if (fake.nops < 64)
				snprintf(fake.ops[fake.nops++], 16, "%s", fwd_msg_op_name(h.op));
			pthread_mutex_unlock(&fake.mu);
			if (h.op == REGIONFWD__CTL__OP__OP_STATUS) {
				Regionfwd__Ctl__StatusReply r = REGIONFWD__CTL__STATUS_REPLY__INIT;
				Regionfwd__Ctl__GenerationInfo g =
					REGIONFWD__CTL__GENERATION_INFO__INIT;

				g.id = 99;
				g.hash = 0; /* not what regiond holds */
				r.generation = &g;
				out = fwd_msg_pack(h.op, FWD_MSG_REPLY, &r.base, &n);
			} else if (h.op == REGIONFWD__CTL__OP__OP_COUNTERS) {
				Regionfwd__Ctl__CounterReport r =
					REGIONFWD__CTL__COUNTER_REPORT__INIT;
				static const char j[] =
					"{\"generation\": {\"id\": 99}, \"packets\": "
					"{\"rx\": 5, \"tx\": 4}, \"drops\": {}}";

				r.json.data = (uint8_t *)j;
				r.json.len = sizeof(j) - 1;
				out = fwd_msg_pack(h.op, FWD_MSG_REPLY, &r.base, &n);
			} else if (h.op == REGIONFWD__CTL__OP__OP_PUSH) {
				Regionfwd__Ctl__PushReply r = REGIONFWD__CTL__PUSH_REPLY__INIT;

				r.hash = fake.old ? 0x1234 : fake.pushed_ident;
				out = fwd_msg_pack(h.op, FWD_MSG_REPLY, &r.base, &n);
			} else if (h.op == REGIONFWD__CTL__OP__OP_DELTA && fake.old) {
				fwd_err_fail(&e, FWD_R_UNKNOWN_OP, NULL, 0, "op", "unknown op 9");
				out = fwd_msg_pack_error(REGIONFWD__CTL__OP__OP_STATUS, &e, &n);
			} else {
				fwd_err_fail(&e, FWD_R_UNKNOWN_OP, NULL, 0, "op", "not faked");
				out = fwd_msg_pack_error(h.op, &e, &n);
			}
			if (out == NULL || write(fd, out, n) != (ssize_t)n) {
				free(out);
				break;
			}
			free(out);
		}
		close(fd);
	}
	return NULL;
}

static void *fake_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(fake.lfd, NULL, NULL);
		pthread_t th;

		if (fd < 0)
			return NULL;
		if (pthread_create(&th, NULL, fake_conn, (void *)(intptr_t)fd) == 0)
			pthread_detach(th);
		else
			close(fd);
	}
}

static int count_op(const char *op)
{
	int c = 0;

	pthread_mutex_lock(&fake.mu);
	for (int i = 0; i < fake.nops; i++)
		c += strcmp(fake.ops[i], op) == 0;
	pthread_mutex_unlock(&fake.mu);
	return c;
}

static void reset_ops(void)
{
	pthread_mutex_lock(&fake.mu);
	fake.nops = 0;
	pthread_mutex_unlock(&fake.mu);
}

static struct ctl_state st;
static struct ctl_api *api;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int setup(void **state)
{
	static const struct ctl_api_conf conf = {.max_body = 1 << 20};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/regiond-apitest-XXXXXX";
	struct fwd_err e;
	struct ctl_dp *dp;
	pthread_t th;

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(fake.path, sizeof(fake.path), "%s/dp.sock", dir);
	strcpy(sa.sun_path, fake.path);
	fake.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(fake.lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fake.lfd, 4) ||
	    pthread_create(&th, NULL, fake_main, NULL))
		return -1;
	pthread_detach(th);
	dp = ctl_dp_create(fake.path);
	if (dp == NULL || ctl_state_open(&st, dir, 5, dp, &e) ||
	    ctl_state_apply(&st, table_doc, sizeof(table_doc) - 1, "test", "seed", -1, 0, &e) != 1)
		return -1;
	api = ctl_api_new(&conf, &st, &lock, 0);
	return api ? 0 : -1;
}

static int call(const char *method, const char *url, const char *body, json_t **out)
{
	char *text = NULL;
	int status = ctl_api_dispatch(api, method, url, body, body ? strlen(body) : 0, &text);

	*out = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return status;
}

static const char *code_of(json_t *r)
{
	return json_string_value(json_object_get(json_object_get(r, "error"), "code"));
}

static void test_reads_never_push(void **state)
{
	static const char *const reads[][2] = {{"GET", "/v1/status"},
					       {"GET", "/v1/table"},
					       {"GET", "/v1/history"},
					       {"GET", "/metrics"},
					       {"GET", "/v1/counters"}};
	json_t *r;

	(void)state;
	/* regionfwd runs something else (hash 0): regiond's state differs. */
	reset_ops();
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		char *text = NULL;

		assert_int_equal(ctl_api_dispatch(api, reads[i][0], reads[i][1], NULL, 0, &text),
				 200);
		free(text);
	}
	{
		/* Status answers from regiond's view: it asks regionfwd nothing
		 * (a hung regionfwd cannot hold it up) ... */
		int asked = count_op("status");

		assert_int_equal(call("GET", "/v1/status", NULL, &r), 200);
		assert_int_equal(count_op("status"), asked);
		assert_true(json_is_null(
			json_object_get(json_object_get(r, "dataplane"), "report_age_ms")));
		json_decref(r);
		/* ... and shows regionfwd's report once one was taken. */
		ctl_state_write_begin(&st); /* a write, as in regiond's main loop */
		ctl_state_refresh(&st);
		ctl_state_write_end(&st); /* which publishes the view */
		assert_int_equal(count_op("status"), asked + 1);
		assert_int_equal(call("GET", "/v1/status", NULL, &r), 200);
		assert_true(
			json_is_false(json_object_get(json_object_get(r, "dataplane"), "in_sync")));
		assert_true(json_is_true(
			json_object_get(json_object_get(r, "dataplane"), "connected")));
		assert_true(json_is_integer(
			json_object_get(json_object_get(r, "dataplane"), "report_age_ms")));
		json_decref(r);
	}
	assert_int_equal(count_op("push"), 0);
	{
		/* /metrics renders regionfwd's report, read through fwd_report. */
		char *text = NULL;

		assert_int_equal(ctl_api_dispatch(api, "GET", "/metrics", NULL, 0, &text), 200);
		assert_non_null(strstr(text, "regiond_dataplane_up 1\n"));
		assert_non_null(strstr(text, "regionfwd_generation 99\n"));
		assert_non_null(strstr(text, "regionfwd_packets_total{dir=\"rx\"} 5\n"));
		assert_non_null(strstr(text, "regionfwd_drops_total{reason=\"policy_drop\"} 0\n"));
		assert_non_null(strstr(text, "regiond_dataplane_in_sync 0\n")); /* hash 0 */
		free(text);
	}
	{
		/* regionfwd down: regiond still renders all it knows itself. */
		struct ctl_metrics_in in = {
			.st = &st, .r = NULL, .report_age_ms = -1, .health = 2, .started = 7};
		char *text;

		pthread_mutex_lock(&lock);
		text = ctl_metrics_render(&in);
		pthread_mutex_unlock(&lock);
		assert_non_null(text);
		for (const char *const *l =
			     (const char *const[]){
				     "regiond_start_time_seconds 7\n", "regiond_generation 1\n",
				     "\nregiond_generation_age_seconds ",
				     "regiond_dataplane_up 0\n", "regiond_dataplane_in_sync 0\n",
				     "regiond_dataplane_report_age_seconds +Inf\n",
				     "regiond_alarm 0\n", "regiond_confirm_pending 0\n",
				     "regiond_health{state=\"unreachable\"} 1\n",
				     "regiond_health{state=\"healthy\"} 0\n", NULL};
		     *l; l++)
			assert_non_null(strstr(text, *l));
		assert_null(strstr(text, "regionfwd_"));
		free(text);
	}
	/* The one place that pushes: the main loop's sync. */
	ctl_state_write_begin(&st);
	ctl_state_sync(&st);
	ctl_state_write_end(&st);
	assert_int_equal(count_op("push"), 1);
}

static void test_errors_carry_their_reasons_status(void **state)
{
	json_t *r;

	(void)state;
	assert_int_equal(call("DELETE", "/v1/table", NULL, &r), 404);
	assert_string_equal(code_of(r), "not_found");
	json_decref(r);
	assert_int_equal(call("GET", "/v1/filters", NULL, &r), 404);
	assert_string_equal(code_of(r), "no_filters");
	json_decref(r);
	/* Without --feed-table: no feed to show. */
	assert_int_equal(call("GET", "/v1/feed", NULL, &r), 404);
	assert_string_equal(code_of(r), "not_found");
	assert_non_null(
		strstr(json_string_value(json_object_get(json_object_get(r, "error"), "reason")),
		       "--feed-table"));
	json_decref(r);
	assert_int_equal(call("PUT", "/v1/table", "[1]", &r), 400);
	assert_string_equal(code_of(r), "bad_request");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(r, "error"), "reason")),
		"the body is an array; a JSON object is required");
	json_decref(r);
	/* jansson's refusals name the body's line as a document's errors do,
	 * with its column in the reason. */
	assert_int_equal(
		call("POST", "/v1/explain", "{\"src\": \"10.0.0.1\",\n \"src\": \"x\"}", &r), 400);
	assert_string_equal(code_of(r), "bad_request");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "file")),
			    "body");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "error"), "line")),
			 2);
	assert_non_null(
		strstr(json_string_value(json_object_get(json_object_get(r, "error"), "reason")),
		       "duplicate object key"));
	json_decref(r);
	assert_int_equal(call("PUT", "/v1/table",
			      "{\"document\": \"x: 1\", \"expected_generation\": 1}", &r),
			 422);
	assert_string_equal(code_of(r), "invalid_table");
	json_decref(r);
	{
		/* An author or a comment is one line of text: C1 controls (CSI,
		 * U+009B) and the line separators are refused as C0 is, by name,
		 * before the generation is looked at. */
		static const char *const bad[][3] = {
			{"\"comment\": \"a\\u009b31m\"", "comment",
			 "'comment' must be one line of text: U+009B at offset 1 is a control "
			 "character"},
			{"\"author\": \"x\\u2028y\"", "author",
			 "'author' must be one line of text: U+2028 at offset 1 is a line "
			 "separator"},
			{"\"comment\": \"\\u2029\"", "comment",
			 "'comment' must be one line of text: U+2029 at offset 0 is a paragraph "
			 "separator"},
			{"\"author\": \"\\u0085\"", "author",
			 "'author' must be one line of text: U+0085 at offset 0 is a control "
			 "character"},
		};
		char body[256];

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(body, sizeof(body),
				 "{\"document\": \"{}\", \"expected_generation\": 77, %s}",
				 bad[i][0]);
			assert_int_equal(call("PUT", "/v1/table", body, &r), 400);
			assert_string_equal(json_string_value(json_object_get(
						    json_object_get(r, "error"), "path")),
					    bad[i][1]);
			assert_string_equal(json_string_value(json_object_get(
						    json_object_get(r, "error"), "reason")),
					    bad[i][2]);
			json_decref(r);
		}
	}
	assert_int_equal(
		call("PUT", "/v1/table", "{\"document\": \"{}\", \"expected_generation\": 77}", &r),
		409);
	assert_string_equal(code_of(r), "stale_generation");
	json_decref(r);
	assert_int_equal(call("POST", "/v1/rollback", "{\"generation\": 4242}", &r), 404);
	assert_string_equal(code_of(r), "unknown_generation");
	json_decref(r);
	/* Unknown fields are refused everywhere, validate and confirm too. */
	assert_int_equal(call("POST", "/v1/validate", "{\"document\": \"{}\", \"dry\": true}", &r),
			 400);
	assert_string_equal(code_of(r), "bad_request");
	json_decref(r);
	assert_int_equal(call("POST", "/v1/confirm", "{\"force\": true}", &r), 400);
	assert_string_equal(code_of(r), "bad_request");
	json_decref(r);
}

/* A body that is not JSON gets one answer whatever the endpoint: file
 * "body", line 1, path "", the parser's reason (docs/api.md, Errors).
 * POST /v1/prefixes, read by a scanner of its own, once named the field
 * ("duplicate field", "must be an integer"), /v1/confirm the generation;
 * a \u0000 was answered in jansson's words, naming its flag. */
static void test_one_json_fault_one_answer(void **state)
{
	static const char *const ep[][2] = {
		{"PUT", "/v1/table"},	  {"PATCH", "/v1/table"},  {"POST", "/v1/prefixes"},
		{"POST", "/v1/rollback"}, {"POST", "/v1/confirm"}, {"POST", "/v1/explain"},
		{"POST", "/v1/validate"}, {"POST", "/v1/capture"}, {"POST", "/v1/filters/detach"},
	};
	static const char *const fault[][2] = {
		{"{\"expected_generation\": 1, \"expected_generation\": 1}",
		 "duplicate object key"},
		{"{\"generation\": 99999999999999999999}", "too big integer"},
		/* 2^63: past the signed 64 bits every integer is read as */
		{"{\"expected_generation\": 9223372036854775808}", "too big integer"},
		{"{\"author\": \"a\\u0000\"}", "a string holds \\u0000 (a NUL character)"},
	};
	json_t *r;

	(void)state;
	reset_ops();
	for (size_t f = 0; f < sizeof(fault) / sizeof(fault[0]); f++) {
		char first[512] = "";

		for (size_t i = 0; i < sizeof(ep) / sizeof(ep[0]); i++) {
			const json_t *err;
			const char *why;

			assert_int_equal(call(ep[i][0], ep[i][1], fault[f][0], &r), 400);
			err = json_object_get(r, "error");
			why = json_string_value(json_object_get(err, "reason"));
			print_message("%s %s %s: %s\n", ep[i][0], ep[i][1], fault[f][0], why);
			assert_string_equal(code_of(r), "bad_request");
			assert_string_equal(json_string_value(json_object_get(err, "path")), "");
			assert_string_equal(json_string_value(json_object_get(err, "file")),
					    "body");
			assert_int_equal(json_integer_value(json_object_get(err, "line")), 1);
			assert_non_null(strstr(why, fault[f][1]));
			assert_null(strstr(why, "JSON_"));
			if (i == 0)
				snprintf(first, sizeof(first), "%s", why);
			assert_string_equal(why, first);
			json_decref(r);
		}
	}
	assert_int_equal(count_op("push"), 0);
}

/* POST /v1/filters/detach checks its body before the filters' state: a
 * body that is not JSON, or names a field it does not take, was answered
 * 404 no_filters without filters where /v1/confirm answers 400. */
static void test_detach_checks_its_body_first(void **state)
{
	static const char *const bad[][2] = {
		{"notjson", ""}, {"{\"bogus\": 1}", "bogus"}, {"[]", ""}};
	json_t *r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(call("POST", "/v1/filters/detach", bad[i][0], &r), 400);
		assert_string_equal(code_of(r), "bad_request");
		assert_string_equal(
			json_string_value(json_object_get(json_object_get(r, "error"), "path")),
			bad[i][1]);
		json_decref(r);
	}
	/* a good body (none, or {}): then the state decides */
	assert_int_equal(call("POST", "/v1/filters/detach", "{}", &r), 404);
	assert_string_equal(code_of(r), "no_filters");
	json_decref(r);
	assert_int_equal(call("POST", "/v1/filters/detach", NULL, &r), 404);
	json_decref(r);
}

/* A field of the wrong type is said as a type error naming it, not as a
 * missing field ('document' of 5 or null: "is required") nor as a range
 * it is in ('dport' of "80": "must be 0..65535"). */
static void test_a_wrong_type_is_said_as_one(void **state)
{
	static const char *const bad[][4] = {
		{"PUT", "/v1/table", "{\"document\": 5, \"expected_generation\": 1}",
		 "'document' must be a string (the table, YAML or JSON text)"},
		{"PUT", "/v1/table", "{\"document\": null, \"expected_generation\": 1}",
		 "'document' must be a string (the table, YAML or JSON text)"},
		{"PUT", "/v1/table", "{\"expected_generation\": 1}",
		 "'document' (the table, YAML or JSON text) is required"},
		{"POST", "/v1/validate", "{\"document\": [\"x\"]}",
		 "'document' must be a string (the table, YAML or JSON text)"},
		{"POST", "/v1/explain",
		 "{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": \"tcp\", \"dport\": "
		 "\"80\"}",
		 "'dport' must be an integer 0..65535"},
		{"POST", "/v1/explain",
		 "{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": \"tcp\", \"sport\": "
		 "null}",
		 "'sport' must be an integer 0..65535"},
	};
	json_t *r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const json_t *err;

		assert_int_equal(call(bad[i][0], bad[i][1], bad[i][2], &r), 400);
		err = json_object_get(r, "error");
		assert_string_equal(json_string_value(json_object_get(err, "reason")), bad[i][3]);
		assert_non_null(strstr(bad[i][3], json_string_value(json_object_get(err, "path"))));
		json_decref(r);
	}
}

static void test_patch_names_what_it_refuses(void **state)
{
	json_t *r;
	const char *reason;

	(void)state;
	assert_int_equal(
		call("PATCH", "/v1/table", "{\"changes\": [{\"op\": \"frobnicate\"}]}", &r), 400);
	reason = json_string_value(json_object_get(json_object_get(r, "error"), "reason"));
	assert_string_equal(reason,
			    "unknown op 'frobnicate' (add_prefixes, remove_prefixes, set_weight, "
			    "set_link_state, add_policy, remove_policy)");
	json_decref(r);
	/* A field the op does not take is refused, not silently dropped. */
	assert_int_equal(call("PATCH", "/v1/table",
			      "{\"changes\": [{\"op\": \"set_link_state\", \"link\": \"local\", "
			      "\"state\": \"down\", \"weight\": 3}]}",
			      &r),
			 400);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "path")),
			    "changes[0]");
	reason = json_string_value(json_object_get(json_object_get(r, "error"), "reason"));
	assert_string_equal(reason, "unknown field 'weight' for op 'set_link_state'");
	json_decref(r);
	assert_int_equal(call("PATCH", "/v1/table",
			      "{\"changes\": [{\"op\": \"remove_prefixes\", \"region\": \"india\", "
			      "\"prefixes\": [\"10.0.0.0/8\"]}]}",
			      &r),
			 422);
	assert_string_equal(code_of(r), "invalid_change");
	json_decref(r);
	{
		/* Link changes name what they refuse (regionctl link passes it on),
		 * and the field: a field of the wrong type was named by its
		 * change alone (changes[0]). */
		static const struct {
			const char *change;
			int status;
			const char *reason, *path;
		} bad[] = {
			{"\"op\": \"set_link_state\", \"link\": \"to-mars\", \"state\": \"down\"",
			 422, "no link 'to-mars' in the table", "changes[0].link"},
			{"\"op\": \"set_link_state\", \"link\": \"to mars\", \"state\": \"down\"",
			 400, "'to mars' is not a link name (1..31 of A-Z a-z 0-9 _ - .)",
			 "changes[0].link"},
			{"\"op\": \"set_link_state\", \"link\": \"local\", \"state\": \"off\"", 400,
			 "'state' must be 'up', 'down' or 'drain', not 'off'", "changes[0].state"},
			{"\"op\": \"set_link_state\", \"link\": \"local\", \"state\": 5", 400,
			 "'state' must be a string ('up', 'down' or 'drain')", "changes[0].state"},
			{"\"op\": \"set_link_state\", \"state\": \"down\"", 400,
			 "'link' (a link's name) is required", "changes[0].link"},
			{"\"op\": \"set_link_state\", \"link\": 7, \"state\": \"down\"", 400,
			 "'link' must be a string (a link's name)", "changes[0].link"},
			{"\"op\": \"set_weight\", \"link\": \"local\", \"weight\": -1", 400,
			 "'weight' must be an integer 0..1000000", "changes[0].weight"},
			{"\"op\": \"set_weight\", \"link\": \"local\", \"weight\": \"3\"", 400,
			 "'weight' must be an integer 0..1000000: a JSON number, not the string "
			 "\"3\"",
			 "changes[0].weight"},
			{"\"op\": \"set_weight\", \"group\": 1, \"link\": \"local\", \"weight\": 3",
			 400, "'group' must be a string (a link group's name)", "changes[0].group"},
			{"\"op\": \"set_weight\", \"group\": \"h\", \"link\": \"local\", "
			 "\"weight\": 2",
			 422, "no link group 'h' in the table", "changes[0].group"},
			{"\"op\": \"set_weight\", \"link\": \"nolink\", \"weight\": 2", 422,
			 "no link 'nolink' in the table", "changes[0].link"},
			{"\"op\": \"add_prefixes\", \"prefixes\": []", 400,
			 "'region' (a region's name) is required", "changes[0].region"},
			{"\"op\": \"add_prefixes\", \"region\": 3, \"prefixes\": []", 400,
			 "'region' must be a string (a region's name)", "changes[0].region"},
			{"\"op\": \"add_prefixes\", \"region\": \"mars\", \"prefixes\": []", 422,
			 "no region 'mars'", "changes[0].region"},
			{"\"op\": \"add_prefixes\", \"region\": \"india\", \"prefixes\": \"x\"",
			 400, "'prefixes' must be a list of prefix strings", "changes[0].prefixes"},
			{"\"op\": \"add_policy\", \"policy\": []", 400,
			 "'policy' must be an object", "changes[0].policy"},
			{"\"op\": \"remove_policy\", \"region\": \"sg\", \"service\": null", 400,
			 "'service' must be a string (a service's name)", "changes[0].service"},
		};
		char body[512];

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(body, sizeof(body), "{\"changes\": [{%s}]}", bad[i].change);
			assert_int_equal(call("PATCH", "/v1/table", body, &r), bad[i].status);
			reason = json_string_value(
				json_object_get(json_object_get(r, "error"), "reason"));
			assert_string_equal(reason, bad[i].reason);
			assert_string_equal(json_string_value(json_object_get(
						    json_object_get(r, "error"), "path")),
					    bad[i].path);
			json_decref(r);
		}
	}
	{
		/* A refusal of the patched table names the change that caused
		 * it, not the generated document's index (policies[1] here,
		 * after a removal shifted it). */
		static const struct {
			const char *changes, *path, *reason;
		} bad[] = {
			{"{\"op\": \"remove_policy\", \"region\": \"sg\", \"service\": \"any\"}, "
			 "{\"op\": \"add_policy\", \"policy\": {\"region\": \"in\", \"service\": "
			 "\"https\", \"action\": \"drop\"}}, "
			 "{\"op\": \"add_policy\", \"policy\": {\"region\": \"mars\", \"service\": "
			 "\"https\", \"action\": \"drop\"}}",
			 "changes[1].policy.region", "unknown region 'in'"},
			{"{\"op\": \"add_prefixes\", \"region\": \"india\", \"prefixes\": "
			 "[\"103.22.0.0/16\", \"10.1.2.3/8\"]}",
			 "changes[0].prefixes[1]",
			 "host bits set in '10.1.2.3/8' (did you mean 10.0.0.0/8?)"},
		};
		char body[1024];

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			json_t *e;

			snprintf(body, sizeof(body), "{\"changes\": [%s]}", bad[i].changes);
			assert_int_equal(call("PATCH", "/v1/table", body, &r), 422);
			e = json_object_get(r, "error");
			assert_string_equal(code_of(r), "invalid_table");
			assert_string_equal(json_string_value(json_object_get(e, "path")),
					    bad[i].path);
			assert_string_equal(json_string_value(json_object_get(e, "file")), "");
			assert_string_equal(json_string_value(json_object_get(e, "reason")),
					    bad[i].reason);
			json_decref(r);
		}
	}
}

static void test_commit_confirm(void **state)
{
	uint64_t cur = ctl_state_current(&st)->id;
	char doc[sizeof(table_doc)], body[2048], *d, *enc;
	json_t *r, *j;

	(void)state;
	/* A different table (the default to-sg) with a confirmation timeout. */
	memcpy(doc, table_doc, sizeof(doc));
	d = strstr(doc, "default: {action: steer, to: local}");
	assert_non_null(d);
	memcpy(d, "default: {action: steer, to: to-sg}", 35);
	j = json_string(doc);
	enc = json_dumps(j, JSON_ENCODE_ANY);
	json_decref(j);
	snprintf(body, sizeof(body),
		 "{\"document\": %s, \"expected_generation\": %llu, \"confirm_timeout_s\": 60}",
		 enc, (unsigned long long)cur);
	free(enc);
	assert_int_equal(call("PUT", "/v1/table", body, &r), 200);
	assert_true(json_is_integer(json_object_get(r, "confirm_by")));
	json_decref(r);
	assert_int_equal(call("GET", "/v1/status", NULL, &r), 200);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(r, "confirm"), "revert_to")),
		(json_int_t)cur);
	json_decref(r);
	/* Pending: other writes are refused with their reason. */
	assert_int_equal(call("POST", "/v1/rollback", NULL, &r), 409);
	assert_string_equal(code_of(r), "confirm_pending");
	json_decref(r);
	assert_int_equal(call("POST", "/v1/confirm", NULL, &r), 200);
	assert_int_equal(json_integer_value(json_object_get(r, "confirmed")), (json_int_t)cur + 1);
	json_decref(r);
	assert_int_equal(call("POST", "/v1/confirm", NULL, &r), 409);
	assert_string_equal(code_of(r), "nothing_to_confirm");
	json_decref(r);
	/* A PATCH takes a confirmation timeout too (regionctl link ... --confirm-timeout);
	 * set_weight without a group sets the link's weight in all its groups. */
	assert_int_equal(call("PATCH", "/v1/table",
			      "{\"confirm_timeout_s\": 60, \"changes\": [{\"op\": "
			      "\"set_link_state\", \"link\": \"to-sg\", \"state\": \"drain\"}, "
			      "{\"op\": \"set_weight\", \"link\": \"local\", \"weight\": 7}]}",
			      &r),
			 200);
	assert_true(json_is_integer(json_object_get(r, "confirm_by")));
	json_decref(r);
	assert_int_equal(call("GET", "/v1/table", NULL, &r), 200);
	j = json_object_get(json_object_get(r, "model"), "links");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "to-sg"), "state")), "drain");
	j = json_object_get(json_object_get(json_object_get(r, "model"), "link_groups"), "g");
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(j, "members"), "local")), 7);
	json_decref(r);
	assert_int_equal(call("POST", "/v1/confirm", NULL, &r), 200);
	json_decref(r);
}

/* Held back (another regiond's table runs on regionfwd): what regiond does
 * on its own, the BGP feed's batches and a commit-confirm revert, waits with
 * held_back, never pushed (each once took regionfwd back with no operator);
 * an operator's change that changes nothing, a no-op PATCH, pushes the
 * current generation again and takes regionfwd back. */
/* A PATCH that changes nothing: the link "local" is up already. */
#define LINK_UP_NOOP                                                                               \
	"{\"changes\": [{\"op\": \"set_link_state\", \"link\": \"local\", \"state\": \"up\"}]}"

static void test_held_back_waits_for_an_operator(void **state)
{
	const struct ctl_gen *cur = ctl_state_current(&st);
	struct fwd_err e = {0};
	size_t len;
	const char *doc;
	json_t *r;

	(void)state;
	pthread_mutex_lock(&lock);
	/* Before the first sync of a start, regiond's own changes wait too. */
	st.dp_seen = 0;
	st.delta_feed = 1;
	assert_int_equal(ctl_state_delta_ready(&st, &e), -1);
	st.delta_feed = 0;
	assert_int_equal(e.reason_code, FWD_R_DATAPLANE_UNAVAILABLE);
	st.dp_seen = 1;
	st.held_back = 1;
	reset_ops();
	st.delta_feed = 1;
	assert_int_equal(ctl_state_delta_ready(&st, &e), -1);
	st.delta_feed = 0;
	assert_int_equal(e.reason_code, FWD_R_HELD_BACK);
	assert_non_null(strstr(e.reason, "holds back"));
	doc = ctl_state_doc(&st, cur, &len, &e);
	assert_non_null(doc);
	memset(&e, 0, sizeof(e));
	assert_int_equal(ctl_state_revert(&st, doc, len, "automatic revert (test)", &e), -1);
	assert_int_equal(e.reason_code, FWD_R_HELD_BACK);
	assert_int_equal(count_op("push") + count_op("delta"), 0);
	assert_true(ctl_state_current(&st) == cur);
	pthread_mutex_unlock(&lock);
	/* The operator's no-op PATCH (a link already up set up) takes it back. */
	assert_int_equal(call("PATCH", "/v1/table", LINK_UP_NOOP, &r), 200);
	assert_true(json_is_false(json_object_get(r, "changed")));
	assert_true(json_is_true(json_object_get(r, "taken_back")));
	json_decref(r);
	assert_int_equal(count_op("push"), 1);
	assert_int_equal(st.held_back, 0);
	/* Again, nothing held back: nothing pushed, nothing taken back. */
	assert_int_equal(call("PATCH", "/v1/table", LINK_UP_NOOP, &r), 200);
	assert_true(json_is_false(json_object_get(r, "changed")));
	assert_null(json_object_get(r, "taken_back"));
	json_decref(r);
	assert_int_equal(count_op("push"), 1);
}

/* A confirm-timeout apply needs something to revert to: refused on an empty
 * state, with the field named (it used to be taken and never reverted). */
static void test_confirm_needs_a_generation(void **state)
{
	static const struct ctl_api_conf conf = {.max_body = 1 << 20};
	static struct ctl_state empty;
	static pthread_mutex_t lock2 = PTHREAD_MUTEX_INITIALIZER;
	char dir[] = "/tmp/regiond-apitest-empty-XXXXXX", *text = NULL;
	struct ctl_api *api2;
	struct ctl_dp *dp2 = ctl_dp_create(fake.path);
	struct fwd_err e;
	json_t *r;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(ctl_state_open(&empty, dir, 5, dp2, &e), 0);
	api2 = ctl_api_new(&conf, &empty, &lock2, 0);
	assert_non_null(api2);
	assert_int_equal(ctl_api_dispatch(api2, "PUT", "/v1/table",
					  "{\"document\": \"{}\", \"expected_generation\": 0, "
					  "\"confirm_timeout_s\": 30}",
					  69, &text),
			 400);
	r = json_loads(text, 0, NULL);
	free(text);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "path")),
			    "confirm_timeout_s");
	json_decref(r);
	assert_null(ctl_state_current(&empty));
	ctl_api_stop(api2);
	ctl_state_close(&empty);
	ctl_dp_free(dp2);
}

/* POST /v1/explain's fields are checked by regiond (ctl_explain.c) before
 * anything reaches regionfwd; regionfwd's own refusal passes through with
 * its reason. */
static void test_explain_args(void **state)
{
	static const struct {
		const char *body, *path;
	} bad[] = {
		{"{\"src\": \"10.1.0.5\", \"dst\": \"::1\", \"proto\": \"udp\"}", "dst"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": \"gre\"}", "proto"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": \"tcp\", \"dport\": "
		 "70000}",
		 "dport"},
		{"{\"src\": \"x\", \"dst\": \"10.0.0.1\", \"proto\": 6}", "src"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 6, \"payload_hex\": "
		 "\"zz\"}",
		 "payload_hex"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 6, \"payload_hex\": "
		 "\"abc\"}",
		 "payload_hex"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 6, \"payload\": \"a\", "
		 "\"payload_hex\": \"61\"}",
		 "payload"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 6, \"tls_sni\": \"\"}",
		 "tls_sni"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 6, \"bogus\": 1}",
		 "bogus"},
		/* names no packet yields, as the extractors read them: a
		 * space, an empty label, a label over 63 bytes, a line break
		 * in a Host, a bare dot */
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 6, \"tls_sni\": \"a "
		 "b\"}",
		 "tls_sni"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 6, \"tls_sni\": "
		 "\"a..\"}",
		 "tls_sni"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 17, \"dns_qname\": "
		 "\"a..example\"}",
		 "dns_qname"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 17, \"dns_qname\": "
		 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example\"}",
		 "dns_qname"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 6, \"http_host\": "
		 "\"a.example\\r\\nHost: b.example\"}",
		 "http_host"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 6, \"http_host\": "
		 "\".\"}",
		 "http_host"},
		/* names no packet of the protocol carries to the rules: DNS
		 * over UDP and TCP, TLS and HTTP over TCP */
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": \"sctp\", \"dport\": "
		 "53, \"dns_qname\": \"a.example\"}",
		 "dns_qname"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 17, \"dport\": 443, "
		 "\"tls_sni\": \"a.example\"}",
		 "tls_sni"},
		{"{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": 1, \"http_host\": "
		 "\"a.example\"}",
		 "http_host"},
	};
	static const char *const martians[] = {
		"{\"src\": \"10.1.0.5\", \"dst\": \"224.0.0.251\", \"proto\": 17, \"dport\": 5353}",
		"{\"src\": \"2001:db8::1\", \"dst\": \"ff02::2\", \"proto\": \"icmpv6\"}",
		"{\"src\": \"127.0.0.1\", \"dst\": \"10.0.0.1\", \"proto\": 17, \"dport\": 67}",
	};
	json_t *r;

	(void)state;
	reset_ops();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(call("POST", "/v1/explain", bad[i].body, &r), 400);
		assert_string_equal(code_of(r), "bad_request");
		assert_string_equal(
			json_string_value(json_object_get(json_object_get(r, "error"), "path")),
			bad[i].path);
		json_decref(r);
	}
	assert_int_equal(count_op("explain"), 0);
	/* Addresses no router forwards, to or from, are no bad request: the
	 * packets exist, and regionfwd answers that its parser drops them
	 * (explain once refused them, and with them the XDP stage). */
	for (size_t i = 0; i < sizeof(martians) / sizeof(martians[0]); i++) {
		assert_int_equal(call("POST", "/v1/explain", martians[i], &r), 502);
		assert_string_equal(code_of(r), "unknown_op");
		json_decref(r);
	}
	assert_int_equal(count_op("explain"), 3);
	/* A good request reaches regionfwd; the fake refuses it as unknown. */
	assert_int_equal(call("POST", "/v1/explain",
			      "{\"src\": \"10.1.0.5\", \"dst\": \"10.0.0.1\", \"proto\": \"tcp\", "
			      "\"dport\": 443, \"tls_sni\": \"API.Example.COM\"}",
			      &r),
			 502);
	assert_string_equal(code_of(r), "unknown_op");
	json_decref(r);
	assert_int_equal(count_op("explain"), 4);
}

static void test_prefixes(void **state)
{
	static const struct {
		const char *body, *code, *path;
	} bad[] = {
		{"", "bad_request", ""},
		{"{\"changes\": [{\"region\": \"india\", \"add\": [\"10.1.0.0/16\"]}]",
		 "bad_request", ""},
		{"{\"changes\": [{\"region\": \"india\", \"add\": [\"10.1.0.0/16\"], "
		 "\"add\": []}]}",
		 "bad_request", ""}, /* a duplicate key: the body is not JSON */
		{"{\"changes\": [{\"region\": \"india\", \"add\": [\"10.1.0.0/16\", null]}]}",
		 "bad_request", "changes[0].add[1]"},
		{"{\"changes\": [{\"region\": \"india\", \"add\": [\"\\ud800\"]}]}", "bad_request",
		 ""},
		{"{\"author\": 7, \"changes\": [{\"region\": \"india\", \"add\": []}]}",
		 "bad_request", "author"},
		/* one line of text, C1 and the separators included */
		{"{\"comment\": \"a\\u009b31m\", \"changes\": [{\"region\": \"india\", "
		 "\"add\": [\"10.1.0.0/16\"]}]}",
		 "bad_request", "comment"},
		{"{\"author\": \"a\xc2\x9b\", \"changes\": [{\"region\": \"india\", "
		 "\"add\": [\"10.1.0.0/16\"]}]}",
		 "bad_request", "author"},
		{"{\"author\": \"x\\u2028y\", \"changes\": [{\"region\": \"india\", "
		 "\"add\": [\"10.1.0.0/16\"]}]}",
		 "bad_request", "author"},
		{"{\"expected_generation\": 1.5, \"changes\": [{\"region\": \"india\", \"add\": "
		 "[]}]}",
		 "bad_request", "expected_generation"},
		{"{\"changes\": [{\"region\": \"unknown\", \"add\": [\"10.1.0.0/16\"]}]}",
		 "invalid_delta", "changes[0].region"},
		/* a name cut in the middle of a character still makes a JSON answer */
		{"{\"changes\": [{\"region\": \"india\", \"add\": [], "
		 "\"a\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
		 "\xa9"
		 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\": 1}]}",
		 "bad_request", NULL},
		{"{\"changes\": [{\"region\": \"sg\", \"remove\": [\"8.128.0.0/13\"]}, "
		 "{\"region\": \"india\", \"add\": [\"10.1.0.0/16\", \"10.1.0.0/33\"]}]}",
		 "invalid_delta", "changes[1].add[1]"},
	};
	json_t *r, *h;

	(void)state;
	reset_ops();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(call("POST", "/v1/prefixes", bad[i].body, &r),
				 strcmp(bad[i].code, "bad_request") ? 422 : 400);
		assert_string_equal(code_of(r), bad[i].code);
		if (bad[i].path)
			assert_string_equal(json_string_value(json_object_get(
						    json_object_get(r, "error"), "path")),
					    bad[i].path);
		json_decref(r);
	}
	assert_int_equal(count_op("delta") + count_op("push"), 0);
	{
		/* A refused batch's author, for its log line, is cut at a
		 * character's start: 40 é are 80 bytes, 63 would end inside
		 * the 32nd. */
		char body[256], au[64], want[64];
		size_t n = 0;

		n += (size_t)snprintf(body, sizeof(body), "{\"author\": \"");
		for (int i = 0; i < 40; i++)
			n += (size_t)snprintf(body + n, sizeof(body) - n, "\xc3\xa9");
		snprintf(body + n, sizeof(body) - n, "\", \"changes\": []}");
		ctl_prefixes_author(body, strlen(body), au, sizeof(au));
		for (int i = 0; i < 31; i++)
			memcpy(want + 2 * i, "\xc3\xa9", 2);
		want[62] = '\0';
		assert_string_equal(au, want);
		/* one that fits is whole */
		snprintf(body, sizeof(body), "{\"author\": \"Jos\\u00e9\"}");
		assert_int_equal(ctl_prefixes_author(body, strlen(body), au, sizeof(au)), 1);
		assert_string_equal(au, "Jos\xc3\xa9");
		/* Read whole without one: the log says author 'api'. Not read
		 * (not JSON, cut short): "no author". */
		snprintf(body, sizeof(body), "{\"changes\": [{\"region\": \"x\", \"add\": []}]}");
		assert_int_equal(ctl_prefixes_author(body, strlen(body), au, sizeof(au)), 1);
		assert_string_equal(au, "");
		assert_int_equal(ctl_prefixes_author("{}", 2, au, sizeof(au)), 1);
		assert_int_equal(ctl_prefixes_author("nope", 4, au, sizeof(au)), 0);
		/* an author that is no string, a body with more after it */
		assert_int_equal(ctl_prefixes_author("{\"author\": 42}", 14, au, sizeof(au)), 0);
		assert_int_equal(ctl_prefixes_author("{} x", 4, au, sizeof(au)), 0);
		assert_int_equal(ctl_prefixes_author("{} \n", 4, au, sizeof(au)), 1);
		snprintf(body, sizeof(body), "{\"changes\": [{\"region\": \"x\"");
		assert_int_equal(ctl_prefixes_author(body, strlen(body), au, sizeof(au)), 0);
	}
	/* An escaped name is the name; the older regionfwd refuses the delta
	 * with an error framed as a status reply, and gets the table whole,
	 * named by the chain hash. */
	fake.old = 1;
	assert_int_equal(call("POST", "/v1/prefixes",
			      "{\"comment\": \"grow\", \"changes\": [{\"region\": \"\\u0069ndia\", "
			      "\"add\": [\"10.1.0.0/16\", \"2001:db8::/32\"]}]}",
			      &r),
			 200);
	assert_int_equal(count_op("delta"), 1);
	assert_int_equal(count_op("push"), 1);
	assert_true(fake.pushed_ident != 0);
	assert_int_equal(json_integer_value(json_object_get(r, "added")), 2);
	assert_true(json_is_false(json_object_get(r, "noop")));
	assert_int_equal(strtoull(json_string_value(json_object_get(r, "hash")), NULL, 16),
			 fake.pushed_ident);
	/* Its answer by the document's hash is the generation's alias. */
	assert_true(ctl_state_runs(&st, 0x1234));
	assert_true(ctl_state_runs(&st, fake.pushed_ident));
	json_decref(r);
	assert_int_equal(call("GET", "/v1/history", NULL, &h), 200);
	r = json_array_get(json_object_get(h, "history"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "kind")), "delta");
	assert_int_equal(json_integer_value(json_object_get(r, "added")), 2);
	assert_int_equal(json_integer_value(json_object_get(r, "bytes")), 48);
	json_decref(h);
	/* The same batch again changes nothing and asks regionfwd nothing. */
	reset_ops();
	assert_int_equal(
		call("POST", "/v1/prefixes",
		     "{\"changes\": [{\"region\": \"india\", \"add\": [\"10.1.0.0/16\"]}]}", &r),
		200);
	assert_true(json_is_true(json_object_get(r, "noop")));
	assert_int_equal(json_integer_value(json_object_get(r, "unchanged")), 1);
	assert_int_equal(count_op("delta") + count_op("push"), 0);
	json_decref(r);
	fake.old = 0;
}

/* A write made by another thread than the API's (the fleet agent, the
 * routing feed) shows in GET /v1/status as soon as that write ends: a node
 * that reported "in sync" must not read as running the table before. */
static void *apply_elsewhere(void *arg)
{
	static char doc[sizeof(table_doc) + 16];
	struct fwd_err e;
	int64_t *gen = arg;

	snprintf(doc, sizeof(doc), "%s", table_doc);
	memcpy(strstr(doc, "tcp/443"), "tcp/444", 7);
	ctl_state_write_begin(&st);
	*gen = ctl_state_apply(&st, doc, strlen(doc), "fleet", "from another thread", -1, 0, &e);
	ctl_state_write_end(&st);
	return NULL;
}

static void test_status_follows_writes_from_other_threads(void **state)
{
	int64_t gen = -1;
	pthread_t th;
	json_t *r, *g;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, apply_elsewhere, &gen), 0);
	pthread_join(th, NULL);
	assert_true(gen > 1);
	assert_int_equal(call("GET", "/v1/status", NULL, &r), 200);
	g = json_object_get(r, "generation");
	assert_int_equal(json_integer_value(json_object_get(g, "id")), gen);
	assert_string_equal(json_string_value(json_object_get(g, "comment")),
			    "from another thread");
	json_decref(r);
}

/* One change to @st's current table as a delta: the feed's (@feed) or the API's. */
static int64_t one_delta(struct ctl_state *s, int feed, enum fwd_delta_kind kind,
			 const char *region, const char *prefix)
{
	struct fwd_delta d = {0};
	struct fwd_err e;
	int64_t id;

	assert_int_equal(fwd_delta_add_text(&d, kind,
					    (uint16_t)fwd_table_region_id(s->table, region), prefix,
					    "changes[0]", &e),
			 0);
	s->dp_seen = 1; /* as after the main loop's first sync: the feed may apply */
	s->delta_feed = feed;
	id = ctl_state_apply_delta(s, &d, "test", feed ? "bgp feed" : "api", -1, NULL, &e);
	s->delta_feed = 0;
	fwd_delta_clear(&d);
	assert_true(id > 0);
	return id;
}

/* The feed's prefixes of generation @g as "PREFIX REGION;" sorted text, or
 * "unknown". */
static int own_line(void *arg, const struct ctl_rib_pfx *p, const char *region)
{
	char b[64];

	snprintf((char *)arg + strlen(arg), 512 - strlen(arg), "%s %s;",
		 ctl_rib_pfx_str(p, b, sizeof(b)), region);
	return 0;
}

/* ctl_state_close leaves the dataplane handle to its owner: here the
 * test's (LeakSanitizer counted one per test in the ASan stage). */
static void close_state(struct ctl_state *s)
{
	struct ctl_dp *d = s->dp;

	ctl_state_close(s);
	ctl_dp_free(d);
}

static const char *owned_text(const struct ctl_state *s, const struct ctl_gen *g)
{
	static char buf[512];
	struct ctl_ownset *o = NULL;
	struct fwd_err e;
	int rc = ctl_state_owned(s, g, &o, &e);

	buf[0] = '\0';
	if (rc)
		return rc > 0 ? "unknown" : "error";
	ctl_ownset_foreach(o, own_line, buf); /* one or two prefixes: order told below */
	ctl_ownset_free(o);
	return buf;
}

/* A rollback must know which prefixes the feed had added to the
 * generation it goes back to (docs/bgp-feed.md, rollback), also once
 * retention has folded the feed's deltas into a checkpoint, after a
 * restart, and says "unknown" for a history from an older regiond. */
static void test_feed_ownership_kept_across_folds(void **state)
{
	char dir[] = "/tmp/regiond-owntest-XXXXXX", path[512];
	struct ctl_state s = {0};
	const struct ctl_gen *g;
	struct fwd_err e;
	uint64_t cp = 0;
	const char *doc;
	size_t len;
	int64_t id;
	json_t *h, *v;
	size_t i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(ctl_state_open(&s, dir, 2, ctl_dp_create(fake.path), &e), 0);
	assert_int_equal(ctl_state_apply(&s, table_doc, sizeof(table_doc) - 1, "t", "", -1, 0, &e),
			 1);
	assert_string_equal(owned_text(&s, ctl_state_current(&s)), "");
	one_delta(&s, 1, FWD_DELTA_ADD, "india", "10.1.0.0/24");
	one_delta(&s, 1, FWD_DELTA_ADD, "india", "10.2.0.0/24");
	one_delta(&s, 1, FWD_DELTA_REMOVE, "india", "10.1.0.0/24");
	one_delta(&s, 0, FWD_DELTA_ADD, "sg", "10.9.0.0/24"); /* static */
	assert_string_equal(owned_text(&s, ctl_state_current(&s)), "10.2.0.0/24 india;");
	/* Static changes until retention folds the feed's deltas away. */
	for (int n = 0; n < 12 && cp <= 5; n++) {
		char p[32];

		snprintf(p, sizeof(p), "10.%d.0.0/24", 20 + n);
		one_delta(&s, 0, FWD_DELTA_ADD, "sg", p);
		if (s.hist[0].checkpoint) /* checkpoints of checkpoints, too */
			cp = s.hist[0].id;
	}
	assert_true(cp > 5); /* past the feed's last delta (5: the static 10.9) */
	assert_int_equal(s.hist[0].kind, CTL_GEN_DOCUMENT);
	assert_string_equal(owned_text(&s, &s.hist[0]), "10.2.0.0/24 india;");
	/* The prefix the feed had added is withdrawn since (a feed delta). */
	one_delta(&s, 1, FWD_DELTA_REMOVE, "india", "10.2.0.0/24");
	assert_string_equal(owned_text(&s, ctl_state_current(&s)), "");
	/* Restarted: the same from disk. */
	close_state(&s);
	assert_int_equal(ctl_state_open(&s, dir, 2, ctl_dp_create(fake.path), &e), 0);
	g = ctl_state_find(&s, s.hist[s.hidden].id);
	assert_non_null(g);
	/* A rollback to the oldest listed generation: its table holds
	 * 10.2.0.0/24 again, as the feed's, not as a static prefix. */
	assert_string_equal(owned_text(&s, g), "10.2.0.0/24 india;");
	doc = ctl_state_doc(&s, g, &len, &e);
	assert_non_null(doc);
	s.rollback_of = g->id;
	id = ctl_state_apply(&s, doc, len, "t", "rollback", -1, 1, &e);
	s.rollback_of = 0;
	assert_true(id > 0);
	assert_int_equal(ctl_state_current(&s)->own, CTL_OWN_FILE);
	assert_string_equal(owned_text(&s, ctl_state_current(&s)), "10.2.0.0/24 india;");
	/* A history of an older regiond has no "owned": not known, and a
	 * generation made on it does not make one up. */
	close_state(&s);
	snprintf(path, sizeof(path), "%s/history.json", dir);
	h = json_load_file(path, 0, NULL);
	assert_non_null(h);
	json_array_foreach(json_object_get(h, "generations"), i, v)
		json_object_del(v, "owned");
	assert_int_equal(json_dump_file(h, path, 0), 0);
	json_decref(h);
	assert_int_equal(ctl_state_open(&s, dir, 2, ctl_dp_create(fake.path), &e), 0);
	assert_string_equal(owned_text(&s, ctl_state_current(&s)), "unknown");
	h = ctl_state_history(&s); /* said there, newest first */
	assert_true(json_is_false(json_object_get(json_array_get(h, 0), "feed_prefixes_known")));
	json_decref(h);
	one_delta(&s, 1, FWD_DELTA_ADD, "india", "10.3.0.0/24");
	assert_string_equal(owned_text(&s, ctl_state_current(&s)), "unknown");
	/* Until the feed says what it owns now. */
	{
		struct ctl_ownset *mine = ctl_ownset_new();
		struct ctl_rib_pfx p;

		assert_int_equal(ctl_rib_pfx_parse("10.3.0.0/24", &p), 0);
		assert_int_equal(ctl_ownset_put(mine, &p, "india"), 0);
		assert_int_equal(ctl_rib_pfx_parse("10.4.0.0/24", &p), 0); /* not in the table */
		assert_int_equal(ctl_ownset_put(mine, &p, "india"), 0);
		assert_int_equal(ctl_state_own_bootstrap(&s, mine, &e), 0);
		ctl_ownset_free(mine);
	}
	assert_string_equal(owned_text(&s, ctl_state_current(&s)), "10.3.0.0/24 india;");
	h = ctl_state_history(&s);
	assert_null(json_object_get(json_array_get(h, 0), "feed_prefixes_known"));
	json_decref(h);
	close_state(&s);
}

/* A gen-N.owned that cannot be read (damaged, removed by hand) made every
 * fold reading it fail: retention stopped folding, and the history and
 * its delta files grew with every change for ever, each change paying a
 * full table replay in the fold tried again. The checkpoint is made
 * without the record (not known, as an older regiond's) and retention
 * goes on. */
static void test_unreadable_owned_set_does_not_stop_retention(void **state)
{
	char dir[] = "/tmp/regiond-ownbad-XXXXXX", path[600];
	struct ctl_state s = {0};
	struct fwd_err e;
	uint64_t base;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(ctl_state_open(&s, dir, 2, ctl_dp_create(fake.path), &e), 0);
	assert_int_equal(ctl_state_apply(&s, table_doc, sizeof(table_doc) - 1, "t", "", -1, 0, &e),
			 1);
	one_delta(&s, 1, FWD_DELTA_ADD, "india", "10.1.0.0/24");
	/* Folded until the oldest listed generation is a checkpoint that has
	 * the feed's prefix written out. */
	for (int n = 0; n < 12 && !(s.hist[0].checkpoint && s.hist[0].own == CTL_OWN_FILE); n++) {
		char p[32];

		snprintf(p, sizeof(p), "10.%d.0.0/24", 20 + n);
		one_delta(&s, 0, FWD_DELTA_ADD, "sg", p);
	}
	assert_int_equal(s.hist[0].own, CTL_OWN_FILE);
	base = s.hist[0].id;
	snprintf(path, sizeof(path), "%s/gen-%" PRIu64 ".owned", dir, base);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a prefix\n", f);
	fclose(f);
	assert_string_equal(owned_text(&s, ctl_state_current(&s)), "unknown");
	for (int n = 0; n < 30; n++) {
		char p[32];

		snprintf(p, sizeof(p), "10.%d.0.0/24", 100 + n);
		one_delta(&s, 0, FWD_DELTA_ADD, "sg", p);
	}
	/* --keep 2: a few listed, a few hidden, not 30 more. */
	assert_true(s.nhist < 8);
	assert_true(s.hist[0].id > base);
	close_state(&s);
}

/* The current generation's set is not known (a damaged file, a revert
 * that went on without one) while the rollback's target's is: the
 * rollback records the target's, so the feed gets them back, where
 * returning "not known" let them come back as static prefixes (a
 * review). Neither known: not known, as before. */
static void test_rollback_records_its_target_when_the_current_is_unknown(void **state)
{
	char dir[] = "/tmp/regiond-ownrb-XXXXXX";
	struct ctl_state s = {0};
	const struct ctl_gen *g;
	struct fwd_err e;
	const char *doc;
	uint64_t to;
	size_t len;
	int64_t id;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(ctl_state_open(&s, dir, 10, ctl_dp_create(fake.path), &e), 0);
	assert_int_equal(ctl_state_apply(&s, table_doc, sizeof(table_doc) - 1, "t", "", -1, 0, &e),
			 1);
	one_delta(&s, 1, FWD_DELTA_ADD, "india", "10.2.0.0/24");
	to = ctl_state_current(&s)->id;
	assert_string_equal(owned_text(&s, ctl_state_current(&s)), "10.2.0.0/24 india;");
	one_delta(&s, 0, FWD_DELTA_ADD, "sg", "10.9.0.0/24"); /* static */
	/* The current one's not known (as a revert's the disk refused). */
	s.hist[s.nhist - 1].own = CTL_OWN_UNKNOWN;
	assert_string_equal(owned_text(&s, ctl_state_current(&s)), "unknown");
	for (int known = 1; known >= 0; known--) {
		g = ctl_state_find(&s, to);
		assert_non_null(g);
		doc = ctl_state_doc(&s, g, &len, &e);
		assert_non_null(doc);
		s.rollback_of = to;
		id = ctl_state_apply(&s, doc, len, "t", "rollback", -1, 1, &e);
		s.rollback_of = 0;
		assert_true(id > 0);
		if (known) {
			assert_string_equal(owned_text(&s, ctl_state_current(&s)),
					    "10.2.0.0/24 india;");
			/* Now the target's not known either (and a change, so
			 * the rollback is one). */
			one_delta(&s, 0, FWD_DELTA_ADD, "sg", "10.8.0.0/24");
			s.hist[s.nhist - 1].own = CTL_OWN_UNKNOWN;
			((struct ctl_gen *)ctl_state_find(&s, to))->own = CTL_OWN_UNKNOWN;
		} else {
			assert_string_equal(owned_text(&s, ctl_state_current(&s)), "unknown");
		}
	}
	close_state(&s);
}

/* The owned set of a rollback cannot be written (the disk full, here a
 * directory in its place): the change is refused whole, nothing pushed,
 * the current generation and the directory as they were (a review's
 * probe of ENOSPC while writing gen-N.owned). */
static void test_owned_set_unwritable_refuses_the_change(void **state)
{
	char dir[] = "/tmp/regiond-ownfull-XXXXXX", path[600];
	struct ctl_state s = {0};
	const struct ctl_gen *g;
	struct fwd_err e = {0};
	uint64_t cur, next;
	const char *doc;
	size_t len;
	int64_t id;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(ctl_state_open(&s, dir, 5, ctl_dp_create(fake.path), &e), 0);
	assert_int_equal(ctl_state_apply(&s, table_doc, sizeof(table_doc) - 1, "t", "", -1, 0, &e),
			 1);
	id = one_delta(&s, 1, FWD_DELTA_ADD, "india", "10.1.0.0/24");
	cur = (uint64_t)one_delta(&s, 1, FWD_DELTA_REMOVE, "india", "10.1.0.0/24");
	next = s.next_id;
	snprintf(path, sizeof(path), "%s/gen-%" PRIu64 ".owned", dir, next);
	assert_int_equal(mkdir(path, 0700), 0);
	g = ctl_state_find(&s, (uint64_t)id);
	doc = ctl_state_doc(&s, g, &len, &e);
	assert_non_null(doc);
	reset_ops();
	s.rollback_of = g->id;
	assert_int_equal(ctl_state_apply(&s, doc, len, "t", "rollback", -1, 1, &e), -1);
	s.rollback_of = 0;
	assert_int_equal(e.reason_code, FWD_R_PERSIST_FAILED);
	assert_non_null(strstr(e.reason, "nothing changed"));
	assert_int_equal(ctl_state_current(&s)->id, cur);
	assert_int_equal(s.next_id, next);
	assert_int_equal(count_op("push"), 0);
	snprintf(path, sizeof(path), "%s/gen-%" PRIu64 ".doc", dir, next);
	assert_int_equal(access(path, F_OK), -1);
	/* Room again: the same rollback goes through, with its record. */
	snprintf(path, sizeof(path), "%s/gen-%" PRIu64 ".owned", dir, next);
	assert_int_equal(rmdir(path), 0);
	doc = ctl_state_doc(&s, g, &len, &e);
	s.rollback_of = g->id;
	assert_int_equal(ctl_state_apply(&s, doc, len, "t", "rollback", -1, 1, &e), (int64_t)next);
	s.rollback_of = 0;
	assert_string_equal(owned_text(&s, ctl_state_current(&s)), "10.1.0.0/24 india;");
	close_state(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_never_push),
		cmocka_unit_test(test_errors_carry_their_reasons_status),
		cmocka_unit_test(test_one_json_fault_one_answer),
		cmocka_unit_test(test_detach_checks_its_body_first),
		cmocka_unit_test(test_a_wrong_type_is_said_as_one),
		cmocka_unit_test(test_patch_names_what_it_refuses),
		cmocka_unit_test(test_commit_confirm),
		cmocka_unit_test(test_held_back_waits_for_an_operator),
		cmocka_unit_test(test_explain_args),
		cmocka_unit_test(test_confirm_needs_a_generation),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_status_follows_writes_from_other_threads),
		cmocka_unit_test(test_feed_ownership_kept_across_folds),
		cmocka_unit_test(test_unreadable_owned_set_does_not_stop_retention),
		cmocka_unit_test(test_owned_set_unwritable_refuses_the_change),
		cmocka_unit_test(test_rollback_records_its_target_when_the_current_is_unknown),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
