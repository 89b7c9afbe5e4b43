/*
 * etcd_probe - drives control/ctl_etcd.c from tests/control/test_etcd_client.py
 * against a real etcd cluster (tests/lib/etcdlab.py) and fake endpoints.
 * One command per run; each result or error is one JSON line on stdout.
 *
 * Environment: ETCD_ENDPOINTS (required), ETCD_TIMEOUT_MS, ETCD_MAX_REPLY,
 * ETCD_CA, ETCD_CERT, ETCD_KEY, ETCD_USER, ETCD_PASSWORD.
 *
 *   put KEY VALUE [LEASE]          get KEY [prefix] [REV]      del KEY [prefix]
 *   create KEY VALUE               (txn: put if absent, else read it)
 *   cas KEY MOD_REV VALUE          (txn: put if mod_revision is MOD_REV)
 *   leasecas KEY LEASE VALUE       (txn: put if the key is on LEASE)
 *   lease TTL                      (grant, one keepalive, print both)
 *   keepalive ID                   revoke ID
 *   watch KEY FROM COUNT [prefix]  (events until COUNT, one line each;
 *                                   reconnects and compaction as lines)
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_etcd.h"

static void print_err(const char *what, int rc, const struct fwd_err *err)
{
	char buf[600];
	json_t *j = json_pack("{s:s, s:i, s:s, s:s}", "error", what, "rc", rc, "code",
			      fwd_reason_name(err->reason_code), "message",
			      fwd_err_str(err, buf, sizeof(buf)));

	json_dumpf(j, stdout, JSON_COMPACT);
	putchar('\n');
	fflush(stdout);
	json_decref(j);
}

static json_t *kv_json(const struct ctl_etcd_kv *kv)
{
	return json_pack("{s:s%, s:s%, s:I, s:I, s:I, s:I}", "key", kv->key, kv->key_len, "value",
			 kv->value, kv->value_len, "create_revision",
			 (json_int_t)kv->create_revision, "mod_revision",
			 (json_int_t)kv->mod_revision, "version", (json_int_t)kv->version, "lease",
			 (json_int_t)kv->lease);
}

static void print_range(const struct ctl_etcd_range *r, const char *extra, long long v)
{
	json_t *a = json_array(), *j;

	for (size_t i = 0; i < r->count; i++)
		json_array_append_new(a, kv_json(&r->kvs[i]));
	j = json_pack("{s:I, s:o, s:b}", "revision", (json_int_t)r->revision, "kvs", a, "more",
		      r->more);
	if (extra)
		json_object_set_new(j, extra, json_integer(v));
	json_dumpf(j, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(j);
}

struct watch_state {
	long left;
};

static int on_events(void *arg, const struct ctl_etcd_event *ev, size_t n)
{
	struct watch_state *st = arg;

	for (size_t i = 0; i < n; i++) {
		json_t *j = kv_json(&ev[i].kv);

		json_object_set_new(j, "type",
				    json_string(ev[i].type == CTL_ETCD_EV_PUT ? "PUT" : "DELETE"));
		json_dumpf(j, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(j);
		st->left--;
	}
	fflush(stdout);
	return 0;
}

static int watch(struct ctl_etcd *e, int argc, char **argv)
{
	struct fwd_err err;
	struct watch_state st = {.left = argc > 4 ? atol(argv[4]) : 1};
	unsigned flags = argc > 5 && !strcmp(argv[5], "prefix") ? CTL_ETCD_PREFIX : 0;
	struct ctl_etcd_watch *w;

	w = ctl_etcd_watch_create(e, argv[2], flags, atoll(argv[3]), &err);
	if (!w) {
		print_err("watch_create", -1, &err);
		return 1;
	}
	printf("{\"watching\":true}\n");
	fflush(stdout);
	while (st.left > 0) {
		int rc = ctl_etcd_watch_poll(w, 500, on_events, &st, &err);

		if (rc < 0) {
			print_err("watch", rc, &err);
			if (err.reason_code == FWD_R_ETCD_COMPACTED) {
				ctl_etcd_watch_free(w);
				return 3;
			}
		}
	}
	ctl_etcd_watch_free(w);
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl_etcd_conf conf = {
		.endpoints = getenv("ETCD_ENDPOINTS"),
		.timeout_ms = getenv("ETCD_TIMEOUT_MS") ? atoi(getenv("ETCD_TIMEOUT_MS")) : 0,
		.max_reply =
			getenv("ETCD_MAX_REPLY") ? strtoul(getenv("ETCD_MAX_REPLY"), 0, 10) : 0,
		.ca_file = getenv("ETCD_CA"),
		.cert_file = getenv("ETCD_CERT"),
		.key_file = getenv("ETCD_KEY"),
		.user = getenv("ETCD_USER"),
		.password = getenv("ETCD_PASSWORD"),
	};
	struct fwd_err err;
	struct ctl_etcd *e;
	struct ctl_etcd_range r;
	int64_t rev = 0, id;
	int rc = 0;
	const char *cmd = argc > 1 ? argv[1] : "";

	e = ctl_etcd_create(&conf, &err);
	if (!e) {
		print_err("create", -1, &err);
		return 1;
	}
	if (!strcmp(cmd, "put") && argc >= 4) {
		rc = ctl_etcd_put(e, argv[2], argv[3], strlen(argv[3]),
				  argc > 4 ? atoll(argv[4]) : 0, &rev, &err);
		if (rc == 0)
			printf("{\"revision\":%" PRId64 "}\n", rev);
	} else if (!strcmp(cmd, "get") && argc >= 3) {
		unsigned flags = argc > 3 && !strcmp(argv[3], "prefix") ? CTL_ETCD_PREFIX : 0;

		rc = ctl_etcd_range(e, argv[2], flags, argc > 4 ? atoll(argv[4]) : 0, 0, &r, &err);
		if (rc == 0)
			print_range(&r, NULL, 0);
		ctl_etcd_range_free(&r);
	} else if (!strcmp(cmd, "del") && argc >= 3) {
		unsigned flags = argc > 3 && !strcmp(argv[3], "prefix") ? CTL_ETCD_PREFIX : 0;

		rc = ctl_etcd_delete(e, argv[2], flags, &rev, &err);
		if (rc >= 0)
			printf("{\"deleted\":%d,\"revision\":%" PRId64 "}\n", rc, rev);
	} else if ((!strcmp(cmd, "create") && argc >= 4) || (!strcmp(cmd, "cas") && argc >= 5) ||
		   (!strcmp(cmd, "leasecas") && argc >= 5)) {
		/* cas compares the key's mod_revision, leasecas its lease. */
		int cas = strcmp(cmd, "create") != 0;
		const char *val = argv[cas ? 4 : 3];
		struct ctl_etcd_cmp c = {
			.key = argv[2],
			.target = !cas			? CTL_ETCD_CMP_CREATE
				  : !strcmp(cmd, "cas") ? CTL_ETCD_CMP_MOD
							: CTL_ETCD_CMP_LEASE,
			.result = CTL_ETCD_EQUAL,
			.number = cas ? atoll(argv[3]) : 0,
		};
		struct ctl_etcd_op put = {.type = CTL_ETCD_OP_PUT,
					  .key = argv[2],
					  .value = val,
					  .value_len = strlen(val)};
		struct ctl_etcd_op get = {.type = CTL_ETCD_OP_RANGE, .key = argv[2]};
		struct ctl_etcd_txn_result res;

		rc = ctl_etcd_txn(e, &c, 1, &put, 1, &get, 1, &res, &err);
		if (rc == 0) {
			res.range.revision = res.revision;
			print_range(&res.range, "succeeded", res.succeeded);
		}
		ctl_etcd_range_free(&res.range);
	} else if (!strcmp(cmd, "lease") && argc >= 3) {
		int64_t ttl = 0;

		rc = ctl_etcd_lease_grant(e, (unsigned)atoi(argv[2]), &id, &err);
		if (rc == 0)
			rc = ctl_etcd_lease_keepalive(e, id, &ttl, &err);
		if (rc == 0)
			printf("{\"id\":%" PRId64 ",\"ttl\":%" PRId64 "}\n", id, ttl);
	} else if (!strcmp(cmd, "keepalive") && argc >= 3) {
		int64_t ttl = 0;

		rc = ctl_etcd_lease_keepalive(e, atoll(argv[2]), &ttl, &err);
		if (rc == 0)
			printf("{\"ttl\":%" PRId64 "}\n", ttl);
	} else if (!strcmp(cmd, "revoke") && argc >= 3) {
		rc = ctl_etcd_lease_revoke(e, atoll(argv[2]), &err);
		if (rc == 0)
			printf("{\"revoked\":true}\n");
	} else if (!strcmp(cmd, "watch") && argc >= 5) {
		rc = watch(e, argc, argv);
		ctl_etcd_free(e);
		return rc;
	} else {
		fprintf(stderr, "usage: etcd_probe put|get|del|create|cas|leasecas|lease|keepalive|"
				"revoke|watch ...\n");
		ctl_etcd_free(e);
		return 2;
	}
	if (rc < 0)
		print_err(cmd, rc, &err);
	printf("{\"endpoint\":\"%s\"}\n", ctl_etcd_endpoint(e));
	ctl_etcd_free(e);
	return rc < 0 ? 1 : 0;
}
