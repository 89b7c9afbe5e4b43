/* ctl_fleet.c - the fleet node agent (contract in ctl_fleet.h, keys and
 * failure behaviour in docs/fleet.md). */
#include "ctl_fleet.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl_api.h"
#include "ctl_dp.h"
#include "ctl_etcd.h"
#include "ctl_metrics.h"
#include "ctl_rollout.h"
#include "ctl_rollout_store.h"
#include "fwd_ctl.pb-c.h"
#include "fwd_hash.h"
#include "fwd_log.h"
#include "fwd_names.h"
#include "fwd_report.h"
#include "fwd_clock.h"

#define FLEET_SCHEMA 1
#define FLEET_CHUNK_MAX (512u << 10) /* the contract's chunk size bound */
#define FLEET_TABLE_MAX (256ull << 20) /* the API's default --max-body */
#define FLEET_CHUNKS_MAX 65536 /* a sanity bound: 4 KiB chunks of the largest table */
#define FLEET_POLL_MS 100 /* each watch's wait per turn */
/* The author of every generation the agent applies: what the node runs
 * came from the fleet. */
#define FLEET_AUTHOR "fleet"
#define FLEET_RETRY_MS 2000 /* a target that failed for a passing reason */
#define FLEET_DOWN_PAUSE_MS 500 /* between attempts while etcd does not answer */
/* Still applying one target this long (no refusal: a slow fetch of a
 * routing-scale table, etcd or regionfwd not there and retried) before the
 * node raises its alarm; refused: at once. The alarm degrades health, which
 * load balancers read: a wave node whose apply takes a minute must not drop
 * out of them mid-rollout. A rollout gives its wave at most
 * CTL_ROLLOUT_SYNC_TIMEOUT_MAX to converge (its sync_timeout gate aborts it
 * otherwise), so a node of a healthy rollout never raises it; one still off
 * its target after that is stuck by any measure. Its report says
 * "applying" (and not in sync) the whole time. A facility whose rollouts
 * sync faster may say so (--fleet-stuck-after): a stuck node is then
 * named sooner. */
#define FLEET_STUCK_S CTL_ROLLOUT_SYNC_TIMEOUT_MAX /* --fleet-stuck-after's default */

/* The agent's counters, in /metrics as regiond_fleet_NAME_total. */
#define FLEET_COUNTERS(X)                                                                          \
	X(applies, "targets applied (or validated, in validate-only mode)")                        \
	X(refusals, "targets refused: invalid document, schema, facility, hash, residency")        \
	X(etcd_errors, "etcd calls that failed")                                                   \
	X(reports, "node reports written")                                                         \
	X(watch_events, "changes of desired or the pin delivered by the watches")                  \
	X(rereads, "reads of the target at a fresh revision (start, reconnect, compaction)")

enum {
#define X(n, h) FC_##n,
	FLEET_COUNTERS(X)
#undef X
		FC_MAX
};

static const struct {
	const char *name, *help;
} counter_desc[FC_MAX] = {
#define X(n, h) {#n, h},
	FLEET_COUNTERS(X)
#undef X
};

/* What a desired or pin key asks for. */
struct target {
	int present; /* the key exists */
	char table[17]; /* H */
	char rollout[65]; /* "" when null */
	int64_t revision; /* the key's mod_revision */
	/* The key itself is refused (schema, facility, not JSON): reported as
	 * the node's apply_error, nothing applied. */
	int refused;
	struct fwd_err err;
};

/* What the view shows (GET /v1/fleet, the report), under f->mu. */
struct view {
	int connected;
	char endpoint[256];
	char watch_endpoint[256]; /* where the watches' streams are */
	int64_t revision; /* the last store revision the agent read or was told of */
	struct target target;
	const char *source; /* "desired", "pin" or NULL */
	const char *state;
	int in_sync, stale;
	int has_apply_err;
	int apply_final; /* refused: not tried again until its key changes */
	char apply_table[17];
	struct fwd_err apply_err;
	char last_error[600];
	int64_t last_error_at; /* unix seconds, 0: none */
	int64_t lease;
	struct target pin; /* the pin, when there is one (present) */
	int pin_stray; /* no active rollout owns it (checked at one revision) */
	int off_target; /* off its target long enough, or refused: the alarm */
	json_t *report; /* the last report written */
	uint64_t counters[FC_MAX];
};

struct ctl_fleet {
	/* the configuration, copied */
	char node[65], facility[33];
	json_t *labels;
	int validate_only;
	unsigned lease_s, report_ms;
	unsigned stuck_after_s; /* still applying this long: the alarm */
	char version[32];
	/* keys */
	char k_prefix[64], k_desired[80], k_pin[160], k_node[160];

	struct ctl_state *st;
	struct ctl_etcd *etcd;
	struct ctl_dp *dp; /* counters for the report; NULL in validate-only mode */
	pthread_t thread;
	int thread_started;
	atomic_int quit;
	/* The lease's keeper while the thread fetches and applies a target
	 * (keep_begin): a client of its own, its thread, told to stop under
	 * kmu. It reads f->lease, which the agent's thread, blocked in the
	 * fetch or apply meanwhile, does not change until keep_end() joins. */
	struct ctl_etcd *keeper_etcd;
	pthread_t keeper;
	pthread_mutex_t kmu;
	pthread_cond_t kcv;
	int keeper_stop;
	int keeper_lapsed; /* the keeper's: etcd said the lease is gone */

	/* thread-only (lease_kept_ms also the keeper's while the thread waits
	 * for it: keeper_thread says how that is ordered) */
	struct ctl_etcd_watch *w_desired, *w_pin;
	struct target desired, pin;
	int need_read, read_once;
	int64_t lease;
	int64_t lease_kept_ms, report_at_ms, last_ok_ms, checked_ms;
	/* check_watches: what a read found that the watches had not delivered */
	int suspect;
	struct target suspect_d, suspect_p;
	int64_t suspect_rev;
	char *last_report_text; /* without updated_at and counters: "changed?" */
	char tried_table[17]; /* the last target tried, with its key's revision */
	int64_t tried_revision;
	const char *tried_source;
	int tried_final; /* refused: not tried again until its key changes */
	/* ... but for a table refused for having no manifest yet: looked for
	 * again every FLEET_RETRY_MS, applied once it is published. */
	int await_manifest;
	int had_target; /* a pin or desired was seen since regiond started */
	struct fwd_steady clock; /* the reports' updated_at */
	/* The report key's mod_revision after our last write (0: none yet),
	 * and when another writer's report was last found in its place. */
	int64_t report_rev, dup_seen_ms, dup_lease;
	int tried_ok;
	int64_t retry_at_ms;
	char validated[17]; /* validate-only: the last target that validated */
	/* Whether the active rollout owns the pin: the verdict, for the pin of
	 * mod_revision owner_rev, checked again every third of the lease (a
	 * rollout that finishes leaves its pin unchanged); the active record's
	 * id, cached by its create_revision. */
	int64_t owner_rev, owner_checked_ms, active_create;
	int pin_stray;
	char active_id[CTL_ROLLOUT_ID_MAX + 1];
	int64_t off_since_ms; /* off its target since (0: on it) */
	char off_table[17]; /* ... that target: a new one starts the time again */
	char alarm[CTL_ALARM_LEN]; /* the alarm last raised ("" none) */
	struct fwd_report *counters; /* regionfwd's last totals, or NULL */

	pthread_mutex_t mu;
	struct view v;
	/* What was logged (under mu): the last few etcd refusals and when
	 * (a role refused both the report's txn and the watch's range, and
	 * with one remembered the two alternated into the log twice a
	 * second); whether a lost connection was said and not yet its
	 * return; whether etcd ever answered. */
	struct {
		char text[600];
		int64_t ms; /* 0: a free slot */
	} logged[4];
	int logged_down, reached;
};

/* ---- configuration ------------------------------------------------------ */

/* [a-z0-9-]{1,max}, the contract's names. */
static int name_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return 0;
	return 1;
}

int ctl_fleet_conf_check(const struct ctl_fleet_conf *c, struct fwd_err *e)
{
	struct ctl_etcd_conf ec = {.endpoints = c->endpoints};
	struct ctl_etcd *probe;

	if (!name_ok(c->node, 64))
		return fwd_err_set(e, NULL, 0, "fleet-node",
				   "--fleet-node is 1..64 of a-z 0-9 - (got '%.80s')",
				   c->node ? c->node : "");
	if (!name_ok(c->facility, 32))
		return fwd_err_set(e, NULL, 0, "fleet-facility",
				   "--fleet-facility is 1..32 of a-z 0-9 - (got '%.80s')",
				   c->facility ? c->facility : "");
	if (c->nlabels > CTL_FLEET_MAX_LABELS)
		return fwd_err_set(e, NULL, 0, "fleet-label", "at most %d --fleet-label",
				   CTL_FLEET_MAX_LABELS);
	for (unsigned i = 0; i < c->nlabels; i++) {
		/* The rollouts' rule (ctl_rollout_label_ok): a label they
		 * could not read would leave the node out of every rollout. */
		if (!ctl_rollout_label_ok(c->labels[i]))
			return fwd_err_set(e, NULL, 0, "fleet-label",
					   "--fleet-label '%.80s' is not KEY=VALUE (key 1..63 of "
					   "a-z 0-9 . _ -, value 1..63 of A-Z a-z 0-9 . _ -)",
					   c->labels[i]);
		for (unsigned j = 0; j < i; j++)
			if (strcspn(c->labels[i], "=") == strcspn(c->labels[j], "=") &&
			    !strncmp(c->labels[i], c->labels[j], strcspn(c->labels[i], "=")))
				return fwd_err_set(e, NULL, 0, "fleet-label",
						   "--fleet-label '%.80s' names its key twice",
						   c->labels[i]);
	}
	if (!c->cert_file != !c->key_file)
		return fwd_err_set(e, NULL, 0, "fleet-cert",
				   "--fleet-cert and --fleet-key go together");
	if (!c->user != !c->password)
		return fwd_err_set(e, NULL, 0, "fleet-user",
				   "--fleet-user and --fleet-password-file go together");
	if (c->lease_s < 2 || c->lease_s > 3600)
		return fwd_err_set(e, NULL, 0, "fleet-lease", "--fleet-lease takes 2..3600 (s)");
	if (c->report_ms < 100 || c->report_ms > 600000)
		return fwd_err_set(e, NULL, 0, "fleet-report-ms",
				   "--fleet-report-ms takes 100..600000");
	if (c->stuck_after_s > 86400)
		return fwd_err_set(e, NULL, 0, "fleet-stuck-after",
				   "--fleet-stuck-after takes 1..86400 (s)");
	probe = ctl_etcd_create(&ec, e);
	if (!probe) {
		char why[sizeof(e->reason)];

		snprintf(why, sizeof(why), "%s", e->reason);
		return fwd_err_set(e, NULL, 0, "fleet-endpoints", "--fleet-endpoints: %.300s", why);
	}
	ctl_etcd_free(probe);
	return 0;
}

/* ---- the view ----------------------------------------------------------- */

static void count(struct ctl_fleet *f, int c)
{
	pthread_mutex_lock(&f->mu);
	f->v.counters[c]++;
	pthread_mutex_unlock(&f->mu);
}

/* An etcd call failed: said in the view, and logged when it is news. No
 * answer in time (etcd_unavailable) is a lost connection, logged once until
 * etcd answers again; a refusal (etcd_error: a role that may not write, a
 * reply that is not the gateway's) leaves the connection up and is logged
 * when none of the last few logged was the same, or a minute later. */
static void etcd_failed(struct ctl_fleet *f, const struct fwd_err *e)
{
	const size_t slots = sizeof(f->logged) / sizeof(f->logged[0]);
	char buf[600];
	int say, down = e->reason_code == FWD_R_ETCD_UNAVAILABLE;
	int64_t now = fwd_mono_ms();
	size_t slot = 0, oldest = 0;

	fwd_err_str(e, buf, sizeof(buf));
	pthread_mutex_lock(&f->mu);
	for (slot = 0; slot < slots; slot++) {
		if (f->logged[slot].ms && strcmp(buf, f->logged[slot].text) == 0)
			break;
		if (f->logged[slot].ms < f->logged[oldest].ms)
			oldest = slot;
	}
	if (down)
		say = !f->logged_down;
	else
		say = slot == slots || now - f->logged[slot].ms > 60000;
	if (down)
		f->v.connected = 0;
	f->v.counters[FC_etcd_errors]++;
	snprintf(f->v.last_error, sizeof(f->v.last_error), "%s", buf);
	f->v.last_error_at = (int64_t)time(NULL);
	if (say && down) {
		f->logged_down = 1;
	} else if (say) {
		if (slot == slots)
			slot = oldest;
		snprintf(f->logged[slot].text, sizeof(f->logged[slot].text), "%s", buf);
		f->logged[slot].ms = now;
	}
	pthread_mutex_unlock(&f->mu);
	if (say)
		fwd_log(FWD_LOG_WARNING, "fleet: etcd: %s%s", buf,
			f->validate_only ? "" : " (forwarding goes on unchanged)");
}

static void etcd_ok(struct ctl_fleet *f)
{
	int first, back;

	f->last_ok_ms = fwd_mono_ms();
	pthread_mutex_lock(&f->mu);
	first = !f->reached;
	back = f->logged_down;
	f->reached = 1;
	f->logged_down = 0;
	f->v.connected = 1;
	snprintf(f->v.endpoint, sizeof(f->v.endpoint), "%s", ctl_etcd_endpoint(f->etcd));
	pthread_mutex_unlock(&f->mu);
	if (first || back)
		fwd_log(FWD_LOG_NOTICE, "fleet: etcd reached at %s", ctl_etcd_endpoint(f->etcd));
}

static json_t *target_json(const struct target *t, const char *source)
{
	if (!t->present && !t->refused)
		return json_null();
	return json_pack("{s:s?, s:s?, s:s?, s:I}", "table", t->table[0] ? t->table : NULL,
			 "source", source, "rollout", t->rollout[0] ? t->rollout : NULL, "revision",
			 (json_int_t)t->revision);
}

/* ---- keys and their values ---------------------------------------------- */

static int hex16_ok(const char *s)
{
	if (!s || strlen(s) != 16)
		return 0;
	for (int i = 0; i < 16; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return 0;
	return 1;
}

/* Check a value's "schema": 1 is read; higher is refused, never guessed at. */
static int check_schema(json_t *j, const char *key, struct fwd_err *e)
{
	json_t *s = json_object_get(j, "schema");

	if (!json_is_integer(s))
		return fwd_err_fail(e, FWD_R_INVALID_FLEET_KEY, key, 0, "schema",
				    "no integer \"schema\"");
	if (json_integer_value(s) > FLEET_SCHEMA)
		return fwd_err_fail(e, FWD_R_UNSUPPORTED_SCHEMA, key, 0, "schema",
				    "schema %lld is newer than this regiond reads (%d)",
				    (long long)json_integer_value(s), FLEET_SCHEMA);
	if (json_integer_value(s) != FLEET_SCHEMA)
		return fwd_err_fail(e, FWD_R_INVALID_FLEET_KEY, key, 0, "schema",
				    "schema %lld is not one this regiond reads (%d)",
				    (long long)json_integer_value(s), FLEET_SCHEMA);
	return 0;
}

/* A desired (@pin 0) or pin value into @t. */
static void parse_target(struct ctl_fleet *f, const struct ctl_etcd_kv *kv, int pin,
			 struct target *t)
{
	json_error_t je;
	json_t *j, *table, *rollout;

	memset(t, 0, sizeof(*t));
	t->present = 1;
	t->revision = kv->mod_revision;
	j = json_loadb(kv->value, kv->value_len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(j)) {
		fwd_err_fail(&t->err, FWD_R_INVALID_FLEET_KEY, kv->key, j ? 0 : (uint32_t)je.line,
			     "", "not a JSON object%s%s", j ? "" : ": ", j ? "" : je.text);
		goto refused;
	}
	if (check_schema(j, kv->key, &t->err))
		goto refused;
	if (!pin) {
		const char *fac = json_string_value(json_object_get(j, "facility"));

		if (!fac) {
			fwd_err_fail(&t->err, FWD_R_INVALID_FLEET_KEY, kv->key, 0, "facility",
				     "no \"facility\"");
			goto refused;
		}
		if (strcmp(fac, f->facility)) {
			fwd_err_fail(&t->err, FWD_R_FACILITY_MISMATCH, kv->key, 0, "facility",
				     "names facility '%.40s', this node is in '%s'", fac,
				     f->facility);
			goto refused;
		}
	}
	table = json_object_get(j, "table");
	if (!hex16_ok(json_string_value(table))) {
		fwd_err_fail(&t->err, FWD_R_INVALID_FLEET_KEY, kv->key, 0, "table",
			     "\"table\" is not 16 lowercase hex digits (a document's hash)");
		goto refused;
	}
	snprintf(t->table, sizeof(t->table), "%s", json_string_value(table));
	rollout = json_object_get(j, "rollout");
	if (rollout && !json_is_null(rollout)) {
		if (!json_is_string(rollout) || json_string_length(rollout) == 0 ||
		    json_string_length(rollout) >= sizeof(t->rollout)) {
			fwd_err_fail(&t->err, FWD_R_INVALID_FLEET_KEY, kv->key, 0, "rollout",
				     "\"rollout\" is not null or an id of 1..64 characters");
			goto refused;
		}
		snprintf(t->rollout, sizeof(t->rollout), "%s", json_string_value(rollout));
		fwd_utf8_clean(t->rollout);
	}
	json_decref(j);
	return;
refused:
	json_decref(j);
	t->refused = 1;
}

/* The target: the pin when there is one, else desired. */
static const struct target *current_target(const struct ctl_fleet *f, const char **source)
{
	if (f->pin.present) {
		*source = "pin";
		return &f->pin;
	}
	*source = f->desired.present ? "desired" : NULL;
	return &f->desired;
}

/* ---- reading the target ------------------------------------------------- */

static int read_key(struct ctl_fleet *f, const char *key, int64_t rev, int pin, struct target *t,
		    int64_t *at, struct fwd_err *e)
{
	struct ctl_etcd_range r;
	int rc = ctl_etcd_range(f->etcd, key, 0, rev, 1, &r, e);

	if (rc < 0)
		return rc;
	memset(t, 0, sizeof(*t));
	if (r.count)
		parse_target(f, &r.kvs[0], pin, t);
	*at = r.revision;
	ctl_etcd_range_free(&r);
	return 0;
}

/* Desired and the pin at one revision R, then both watches from R + 1: a
 * change after R arrives by the watch, one before it is in what was read. */
static int read_targets(struct ctl_fleet *f)
{
	struct fwd_err e;
	struct target d, p;
	int64_t rev, rev2;

	if (read_key(f, f->k_desired, 0, 0, &d, &rev, &e) < 0 ||
	    read_key(f, f->k_pin, rev, 1, &p, &rev2, &e) < 0) {
		etcd_failed(f, &e);
		return -1;
	}
	etcd_ok(f);
	f->desired = d;
	f->pin = p;
	if (!f->w_desired)
		f->w_desired = ctl_etcd_watch_create(f->etcd, f->k_desired, 0, rev + 1, &e);
	if (!f->w_pin)
		f->w_pin = ctl_etcd_watch_create(f->etcd, f->k_pin, 0, rev + 1, &e);
	if (!f->w_desired || !f->w_pin) {
		etcd_failed(f, &e);
		return -1;
	}
	ctl_etcd_watch_reset(f->w_desired, rev + 1);
	ctl_etcd_watch_reset(f->w_pin, rev + 1);
	f->need_read = 0;
	f->suspect = 0;
	f->read_once = 1;
	pthread_mutex_lock(&f->mu);
	snprintf(f->v.watch_endpoint, sizeof(f->v.watch_endpoint), "%s",
		 ctl_etcd_watch_endpoint(f->w_desired));
	f->v.revision = rev;
	f->v.counters[FC_rereads]++;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

struct watch_arg {
	struct ctl_fleet *f;
	int pin;
};

static int on_change(void *arg, const struct ctl_etcd_event *ev, size_t n)
{
	struct watch_arg *wa = arg;
	struct ctl_fleet *f = wa->f;
	struct target *t = wa->pin ? &f->pin : &f->desired;

	for (size_t i = 0; i < n; i++) {
		if (ev[i].type == CTL_ETCD_EV_DELETE) {
			memset(t, 0, sizeof(*t));
			t->revision = ev[i].kv.mod_revision;
			/* A rollout's promotion deletes the pin and sets desired in
			 * one transaction, but the two arrive on two streams: read
			 * both at one revision before converging, or the node would
			 * flip back to the old desired table for a moment. */
			if (wa->pin)
				f->need_read = 1;
		} else {
			parse_target(f, &ev[i].kv, wa->pin, t);
		}
		pthread_mutex_lock(&f->mu);
		if (ev[i].kv.mod_revision > f->v.revision)
			f->v.revision = ev[i].kv.mod_revision;
		f->v.counters[FC_watch_events]++;
		pthread_mutex_unlock(&f->mu);
	}
	return 0;
}

static void poll_watch(struct ctl_fleet *f, struct ctl_etcd_watch *w, int pin)
{
	struct watch_arg wa = {f, pin};
	struct fwd_err e;
	int rc;

	if (!w)
		return;
	rc = ctl_etcd_watch_poll(w, FLEET_POLL_MS, on_change, &wa, &e);
	if (rc >= 0)
		return;
	if (e.reason_code == FWD_R_ETCD_COMPACTED) {
		/* What was missed is gone from the history: read what is now. */
		f->need_read = 1;
		return;
	}
	etcd_failed(f, &e);
	/* The stream comes back on the next poll; meanwhile the other calls
	 * (report, keepalive) tell whether etcd is there at all. */
	usleep(FLEET_POLL_MS * 1000);
}

/* ---- fetching a table --------------------------------------------------- */

/* The document of table @h: manifest first, then its chunks at the
 * manifest's revision (tables are immutable: a later revision would do as
 * well, the same one is simply consistent), length and hash checked.
 * @return 0 with *doc (malloc'd), a negative errno with @e: the reasons of
 * etcd, compaction included (passing), or invalid_fleet_key /
 * unsupported_schema / hash_mismatch (final). */
static int fetch_table(struct ctl_fleet *f, const char *h, char **doc, size_t *len,
		       struct fwd_err *e)
{
	char key[200];
	struct ctl_etcd_range r;
	json_t *m;
	json_error_t je;
	json_int_t mlen, chunks;
	const char *fmt, *mh;
	int64_t rev;
	char *buf = NULL;
	size_t off = 0;
	int rc;

	*doc = NULL;
	snprintf(key, sizeof(key), "%stables/%s/manifest", f->k_prefix, h);
	rc = ctl_etcd_range(f->etcd, key, 0, 0, 1, &r, e);
	if (rc < 0)
		return rc;
	if (r.count == 0) {
		ctl_etcd_range_free(&r);
		f->await_manifest = 1;
		return fwd_err_fail(e, FWD_R_INVALID_FLEET_KEY, key, 0, "",
				    "table %s has no manifest in etcd", h);
	}
	rev = r.revision;
	m = json_loadb(r.kvs[0].value, r.kvs[0].value_len, JSON_REJECT_DUPLICATES, &je);
	ctl_etcd_range_free(&r);
	if (m == NULL) /* jansson's words: a number past 64 bits, say */
		return fwd_err_fail(e, FWD_R_INVALID_FLEET_KEY, key, je.line, "",
				    "the manifest is not JSON: %s (column %d)", je.text, je.column);
	if (!json_is_object(m)) {
		json_decref(m);
		return fwd_err_fail(e, FWD_R_INVALID_FLEET_KEY, key, 0, "",
				    "the manifest is not a JSON object");
	}
	rc = check_schema(m, key, e);
	if (rc < 0)
		goto out;
	mh = json_string_value(json_object_get(m, "hash"));
	fmt = json_string_value(json_object_get(m, "format"));
	mlen = json_integer_value(json_object_get(m, "len"));
	chunks = json_integer_value(json_object_get(m, "chunks"));
	if (!mh || strcmp(mh, h)) {
		rc = fwd_err_fail(e, FWD_R_INVALID_FLEET_KEY, key, 0, "hash",
				  "the manifest's hash is not %s", h);
		goto out;
	}
	if (!fmt || (strcmp(fmt, "json") && strcmp(fmt, "yaml"))) {
		rc = fwd_err_fail(e, FWD_R_INVALID_FLEET_KEY, key, 0, "format",
				  "\"format\" is not \"json\" or \"yaml\"");
		goto out;
	}
	/* Chunks of at most 512 KiB, none empty: a writer may cut smaller. */
	if (!json_is_integer(json_object_get(m, "len")) || mlen <= 0 ||
	    (uint64_t)mlen > FLEET_TABLE_MAX || !json_is_integer(json_object_get(m, "chunks")) ||
	    chunks < (mlen + FLEET_CHUNK_MAX - 1) / FLEET_CHUNK_MAX || chunks > mlen ||
	    chunks > FLEET_CHUNKS_MAX) {
		rc = fwd_err_fail(e, FWD_R_INVALID_FLEET_KEY, key, 0, "len",
				  "\"len\" is not 1..%llu bytes in at most %d \"chunks\" of at "
				  "most %u KiB",
				  (unsigned long long)FLEET_TABLE_MAX, FLEET_CHUNKS_MAX,
				  FLEET_CHUNK_MAX >> 10);
		goto out;
	}
	buf = malloc((size_t)mlen + 1);
	if (!buf) {
		rc = fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		goto out;
	}
	for (json_int_t i = 0; i < chunks; i++) {
		snprintf(key, sizeof(key), "%stables/%s/chunk/%06lld", f->k_prefix, h,
			 (long long)i);
		rc = ctl_etcd_range(f->etcd, key, 0, rev, 1, &r, e);
		if (rc < 0)
			goto out;
		if (r.count == 0 || r.kvs[0].value_len == 0 ||
		    r.kvs[0].value_len > FLEET_CHUNK_MAX ||
		    off + r.kvs[0].value_len > (size_t)mlen) {
			rc = fwd_err_fail(e, FWD_R_HASH_MISMATCH, key, 0, "",
					  "chunk %lld of table %s is %s", (long long)i, h,
					  !r.count		? "missing"
					  : !r.kvs[0].value_len ? "empty"
								: "too long");
			ctl_etcd_range_free(&r);
			goto out;
		}
		memcpy(buf + off, r.kvs[0].value, r.kvs[0].value_len);
		off += r.kvs[0].value_len;
		ctl_etcd_range_free(&r);
	}
	if (off != (size_t)mlen) {
		rc = fwd_err_fail(e, FWD_R_HASH_MISMATCH, key, 0, "",
				  "table %s's chunks hold %zu bytes, its manifest says %lld", h,
				  off, (long long)mlen);
		goto out;
	}
	{
		char got[17];

		snprintf(got, sizeof(got), "%016" PRIx64, fwd_hash64(buf, off));
		if (strcmp(got, h)) {
			rc = fwd_err_fail(e, FWD_R_HASH_MISMATCH, key, 0, "",
					  "table %s's chunks hash to %s", h, got);
			goto out;
		}
	}
	buf[off] = '\0';
	*doc = buf;
	*len = off;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	json_decref(m);
	return rc;
}

/* ---- converging --------------------------------------------------------- */

/* A failure that may pass by itself: tried again later. A compaction
 * under a table's fetch (its chunks are read at the manifest's revision)
 * passes too: the next try reads the manifest at a fresh revision, and the
 * table, immutable, is the same there. */
static int passing(enum fwd_reason r)
{
	switch (r) {
	case FWD_R_ETCD_UNAVAILABLE:
	case FWD_R_ETCD_ERROR:
	case FWD_R_ETCD_COMPACTED:
	case FWD_R_DATAPLANE_UNAVAILABLE:
	case FWD_R_PUSH_EXPIRED:
	case FWD_R_DATAPLANE_BROKEN:
	case FWD_R_PERSIST_FAILED:
	case FWD_R_STATE_DIR:
	case FWD_R_CONFIRM_PENDING:
	case FWD_R_INTERNAL:
		return 1;
	default:
		return 0;
	}
}

static void set_apply_error(struct ctl_fleet *f, const char *table, const struct fwd_err *e)
{
	pthread_mutex_lock(&f->mu);
	f->v.has_apply_err = e != NULL;
	/* A failure that may pass is retried: the node is still applying. */
	f->v.apply_final = e != NULL && f->tried_final;
	if (e) {
		f->v.apply_err = *e;
		snprintf(f->v.apply_table, sizeof(f->v.apply_table), "%s", table ? table : "");
	}
	pthread_mutex_unlock(&f->mu);
}

/* Apply (or validate) document @doc of table @h. @return 0, or -1 with @e. */
static int apply_doc(struct ctl_fleet *f, const struct target *t, const char *source,
		     const char *doc, size_t len, struct fwd_err *e)
{
	struct ctl_state *st = f->st;
	char comment[200], name[40];
	int64_t gen;

	if (f->validate_only) {
		struct fwd_table *tab;

		snprintf(name, sizeof(name), "fleet table %s", t->table);
		/* Compiled before the lock, not under it (ctl_state_prepare). */
		ctl_state_prepare(st, doc, len, name, 1);
		pthread_mutex_lock(st->lock);
		/* as a node applies a new desired table (ctl_state.c) */
		tab = ctl_state_validate_written(st, doc, len, name, e);
		pthread_mutex_unlock(st->lock);
		ctl_state_prepared_drop(st);
		if (!tab)
			return -1;
		fwd_table_free(tab);
		snprintf(f->validated, sizeof(f->validated), "%s", t->table);
		return 0;
	}
	if (t->rollout[0])
		snprintf(comment, sizeof(comment), "fleet %s: table %s of rollout %s", source,
			 t->table, t->rollout);
	else
		snprintf(comment, sizeof(comment), "fleet %s: table %s (etcd revision %" PRId64 ")",
			 source, t->table, t->revision);
	ctl_state_prepare(st, doc, len, "document", 1);
	ctl_state_write_begin(st);
	snprintf(st->who, sizeof(st->who), "fleet agent (node %s, etcd %s)", f->node,
		 ctl_etcd_endpoint(f->etcd));
	snprintf(st->request, sizeof(st->request), "fleet %s", source);
	st->write_kind = CTL_WRITE_FLEET;
	gen = ctl_state_apply(st, doc, len, FLEET_AUTHOR, comment, -1, 1, e);
	if (gen >= 0)
		ctl_state_refresh(st);
	st->who[0] = '\0';
	st->request[0] = '\0';
	st->write_kind = CTL_WRITE_OWN;
	ctl_state_write_end(st);
	ctl_state_prepared_drop(st);
	if (gen > 0)
		fwd_log(FWD_LOG_NOTICE, "fleet: generation %" PRId64 " runs table %s (%s)", gen,
			t->table, comment);
	return gen < 0 ? -1 : 0;
}

/* The table of the current generation when it is a document as given
 * (its identity is then the document's hash), "" otherwise. */
static void running_table(struct ctl_state *st, char out[17], uint64_t *gen)
{
	const struct ctl_gen *cur = ctl_state_current(st);

	out[0] = '\0';
	*gen = cur ? cur->id : 0;
	if (cur && cur->kind == CTL_GEN_DOCUMENT && !cur->checkpoint)
		snprintf(out, 17, "%016" PRIx64, cur->hash);
}

static void report(struct ctl_fleet *f, int force);

/* The lease kept alive every third of it while the agent's thread fetches
 * and applies a target: that can take longer than the lease (a table of
 * many chunks, a push of a routing-scale table, regionfwd stopped until
 * --dataplane-timeout), and a node whose lease lapsed leaves the fleet
 * view (its report goes with it: a rollout takes it for lost) though it is
 * only applying. On a client of its own: the thread's is in use.
 *
 * The first keepalive is due a third of the lease after the agent's last
 * one (lease_kept_ms), not after the keeper's start: the agent may have
 * kept it most of a third ago. A failed keepalive is tried again after a
 * twelfth of the lease, not a third: one keepalive that tries every
 * endpoint can take several --fleet-timeout-ms on a loaded etcd, and a
 * third more on top of it let a 3 s lease lapse in a CI run.
 *
 * lease_kept_ms is the agent thread's: it wrote it before keep_begin()
 * created this thread and reads it after keep_end() joined it, and does
 * not touch it in between (it is blocked in the fetch or the apply), so
 * the create and the join order both accesses; keeper_lapsed the same. */
static void *keeper_thread(void *arg)
{
	struct ctl_fleet *f = arg;
	const int64_t third = (int64_t)f->lease_s * 1000 / 3;
	const int64_t retry = third / 4 > 100 ? third / 4 : 100;
	int64_t due = f->lease_kept_ms + third, sent, ttl;
	unsigned failed = 0;
	int rc;
	struct fwd_err e;
	char b[400];

	pthread_mutex_lock(&f->kmu);
	while (!f->keeper_stop) {
		int64_t wait = due - fwd_mono_ms();

		if (f->keeper_lapsed) {
			pthread_cond_wait(&f->kcv, &f->kmu);
			continue;
		}
		if (wait > 0) {
			struct timespec ts = fwd_mono_after_ms(wait);

			/* Woken early (keep_end, or spuriously): look again. */
			pthread_cond_timedwait(&f->kcv, &f->kmu, &ts);
			continue;
		}
		pthread_mutex_unlock(&f->kmu);
		sent = fwd_mono_ms();
		rc = ctl_etcd_lease_keepalive(f->keeper_etcd, f->lease, &ttl, &e);
		if (rc == 0) {
			f->lease_kept_ms = sent;
			due = sent + third;
			if (failed)
				fwd_log(FWD_LOG_NOTICE,
					"fleet: lease kept again after %u failed keepalives",
					failed);
			failed = 0;
		} else if (rc == -ENOENT) {
			/* Nothing to keep: the agent takes a new lease and
			 * reports again once the apply is over. */
			f->keeper_lapsed = 1;
			fwd_log(FWD_LOG_WARNING, "fleet: the lease lapsed during an apply: %s",
				"the node is out of the fleet view until it ends");
		} else {
			if (failed++ == 0)
				fwd_log(FWD_LOG_WARNING,
					"fleet: cannot keep the lease (again every %" PRId64
					" ms): %s",
					retry, fwd_err_str(&e, b, sizeof(b)));
			due = fwd_mono_ms() + retry;
		}
		pthread_mutex_lock(&f->kmu);
	}
	pthread_mutex_unlock(&f->kmu);
	return NULL;
}

/* @return 1 when a keeper runs (keep_end() must follow). */
static int keep_begin(struct ctl_fleet *f)
{
	if (!f->lease || !f->keeper_etcd)
		return 0;
	f->keeper_stop = 0;
	f->keeper_lapsed = 0;
	return pthread_create(&f->keeper, NULL, keeper_thread, f) == 0;
}

static void keep_end(struct ctl_fleet *f, int started)
{
	if (!started)
		return;
	pthread_mutex_lock(&f->kmu);
	f->keeper_stop = 1;
	pthread_cond_signal(&f->kcv);
	pthread_mutex_unlock(&f->kmu);
	pthread_join(f->keeper, NULL);
	/* A lapsed lease is no use to the report that follows the apply:
	 * session() takes a new one first (a report on the old one would
	 * only be refused, one more etcd error for nothing). */
	if (f->keeper_lapsed)
		f->lease = 0;
}

/* Whether the table refused for having no manifest is published now.
 * The refusal stays, with its alarm, until it is: a mistyped hash must not
 * pass for a slow publisher. But automation that writes desired a moment
 * before the table's keys must not leave the node refusing a table that is
 * there, until someone writes desired again. One small read each
 * FLEET_RETRY_MS while it waits; an etcd failure waits for the next. */
static int manifest_published(struct ctl_fleet *f, const char *h)
{
	char key[200];
	struct ctl_etcd_range r;
	struct fwd_err e;
	int found;

	if (!f->await_manifest || fwd_mono_ms() < f->retry_at_ms)
		return 0;
	f->retry_at_ms = fwd_mono_ms() + FLEET_RETRY_MS;
	snprintf(key, sizeof(key), "%stables/%s/manifest", f->k_prefix, h);
	if (ctl_etcd_range(f->etcd, key, CTL_ETCD_KEYS_ONLY, 0, 1, &r, &e) < 0)
		return 0;
	found = r.count > 0;
	ctl_etcd_range_free(&r);
	if (found)
		fwd_log(FWD_LOG_INFO, "fleet: table %s is published now: trying it again", h);
	return found;
}

/* Bring the node to its target. Called every turn; does nothing while
 * the target is what runs, or was refused at this revision. */
static void converge(struct ctl_fleet *f)
{
	const char *source;
	const struct target *t = current_target(f, &source);
	struct fwd_err e;
	char running[17];
	uint64_t gen;
	char *doc = NULL;
	size_t len = 0;
	int same, keeping, rc;

	if (t->refused) {
		if (!(f->tried_final && f->tried_revision == t->revision &&
		      f->tried_source == source)) {
			char b[600];

			fwd_log(FWD_LOG_WARNING, "fleet: %s refused: %s", source,
				fwd_err_str(&t->err, b, sizeof(b)));
			count(f, FC_refusals);
		}
		f->tried_final = 1;
		f->tried_ok = 0;
		f->tried_revision = t->revision;
		f->tried_source = source;
		f->tried_table[0] = '\0';
		set_apply_error(f, NULL, &t->err);
		return;
	}
	if (!t->present) {
		set_apply_error(f, NULL, NULL);
		f->tried_table[0] = '\0';
		f->tried_final = 0;
		return;
	}
	same = !strcmp(f->tried_table, t->table) && f->tried_revision == t->revision &&
	       f->tried_source == source;
	if (same && f->tried_final && !manifest_published(f, t->table))
		return; /* refused at this revision: not again until it changes */
	if (f->validate_only) {
		if (same && f->tried_ok)
			return;
	} else {
		pthread_mutex_lock(f->st->lock);
		running_table(f->st, running, &gen);
		pthread_mutex_unlock(f->st->lock);
		/* What runs is the target: nothing to do but say so. The rollout
		 * id of a pin may change with the same table: nothing to apply. */
		if (!strcmp(running, t->table)) {
			if (!same || !f->tried_ok) {
				f->tried_ok = 1;
				f->tried_final = 0;
				snprintf(f->tried_table, sizeof(f->tried_table), "%s", t->table);
				f->tried_revision = t->revision;
				f->tried_source = source;
				set_apply_error(f, NULL, NULL);
			}
			return;
		}
	}
	/* Applied at this revision already (ctl_state_apply found the content
	 * current, or the main loop's sync keeps regionfwd on it): not again. */
	if (same && f->tried_ok)
		return;
	if (same && !f->tried_final && fwd_mono_ms() < f->retry_at_ms)
		return;
	pthread_mutex_lock(&f->mu);
	f->v.state = "applying";
	/* The last error stays until this try's outcome replaces it, but it
	 * is no longer a refusal of what the node is asked to run. */
	f->v.apply_final = 0;
	pthread_mutex_unlock(&f->mu);
	snprintf(f->tried_table, sizeof(f->tried_table), "%s", t->table);
	f->tried_revision = t->revision;
	f->tried_source = source;
	f->tried_ok = 0;
	f->tried_final = 0;
	f->await_manifest = 0;
	/* The fleet sees the node on its way to the new target, and keeps
	 * seeing it however long the fetch and the apply take. */
	report(f, 0);
	keeping = keep_begin(f);
	rc = fetch_table(f, t->table, &doc, &len, &e) == 0 &&
	     apply_doc(f, t, source, doc, len, &e) == 0;
	keep_end(f, keeping);
	if (rc) {
		free(doc);
		f->tried_ok = 1;
		set_apply_error(f, NULL, NULL);
		count(f, FC_applies);
		return;
	}
	free(doc);
	if (e.reason_code == FWD_R_ETCD_UNAVAILABLE || e.reason_code == FWD_R_ETCD_ERROR)
		etcd_failed(f, &e);
	if (passing(e.reason_code)) {
		f->retry_at_ms = fwd_mono_ms() + FLEET_RETRY_MS;
	} else {
		char b[600];

		f->tried_final = 1;
		f->retry_at_ms = fwd_mono_ms() + FLEET_RETRY_MS; /* await_manifest */
		count(f, FC_refusals);
		fwd_log(FWD_LOG_WARNING, "fleet: table %s (%s) refused: %s", t->table, source,
			fwd_err_str(&e, b, sizeof(b)));
	}
	set_apply_error(f, t->table, &e);
}

/* ---- the report --------------------------------------------------------- */

/* regionfwd's totals for the report, read on the agent's own connection. */
static void read_counters(struct ctl_fleet *f)
{
	Regionfwd__Ctl__Empty req = REGIONFWD__CTL__EMPTY__INIT;
	Regionfwd__Ctl__CounterReport *rep;
	struct fwd_err e, je;
	json_t *j;

	if (!f->dp)
		return;
	if (ctl_dp_call(f->dp, REGIONFWD__CTL__OP__OP_COUNTERS, &req.base,
			(ProtobufCMessage **)&rep, 1000, &e))
		return; /* the last totals stay; health says regionfwd is gone */
	j = json_loadb((const char *)rep->json.data, rep->json.len, 0, NULL);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	if (j) {
		struct fwd_report *r = fwd_report_from_json(j, &je);

		if (r) {
			fwd_report_free(f->counters);
			f->counters = r;
		}
	}
	json_decref(j);
}

static json_t *counters_json(const struct fwd_report *r)
{
	json_t *reasons = json_object();

	for (int i = 0; r && i < FWD_DROP_MAX; i++)
		if (r->drops[i])
			json_object_set_new(reasons, fwd_drop_names[i],
					    json_integer((json_int_t)r->drops[i]));
	return json_pack("{s:I, s:I, s:I, s:o}", "rx", (json_int_t)(r ? r->packets.rx : 0), "tx",
			 (json_int_t)(r ? r->packets.tx : 0), "drops",
			 (json_int_t)(r ? r->packets.dropped : 0), "drop_reasons", reasons);
}

/* The XDP filter's part of a health model (GET /v1/status's "filters"), or
 * NULL without --xdp-iface: an interface that lost the filter degrades
 * the report's health as it does the status's. st->lock held. */
static json_t *filters_json(struct ctl_state *st)
{
	const struct ctl_ext *x = ctl_state_ext(st, "filters");

	return x && x->status ? x->status(x->arg, NULL) : NULL;
}

/* The health summary, by the rules of GET /v1/status (ctl_api_health);
 * what runs in *@running, and in *@dp_in_sync whether regionfwd runs
 * regiond's current generation. */
static json_t *health_summary(struct ctl_fleet *f, json_t **running, int *dp_in_sync)
{
	struct ctl_state *st = f->st;
	char table[17];
	uint64_t gen;
	json_t *model, *h, *down = json_array(), *l;
	const char *ran;
	size_t i;
	int code;

	pthread_mutex_lock(st->lock);
	running_table(st, table, &gen);
	ran = json_string_value(
		json_object_get(json_object_get(st->dp_report, "generation"), "hash"));
	*dp_in_sync = ran && !st->dp_foreign && ctl_state_runs(st, strtoull(ran, NULL, 16));
	model = json_pack(
		"{s:{s:O?, s:o, s:b}, s:s?, s:o, s:o?}", "dataplane", "status", st->dp_report,
		"report_age_ms",
		st->dp_report_ms ? json_integer(fwd_mono_ms() - st->dp_report_ms) : json_null(),
		"in_sync", *dp_in_sync, "alarm", st->alarm[0] ? st->alarm : NULL, "generation",
		ctl_state_current(st) ? json_true() : json_null(), "filters", filters_json(st));
	*running = json_pack("{s:I, s:s?, s:s?}", "generation", (json_int_t)gen, "table",
			     table[0] ? table : NULL, "hash", ran);
	json_array_foreach(json_object_get(st->dp_report, "links"), i, l) {
		const char *oper = json_string_value(json_object_get(l, "oper"));
		const char *admin = json_string_value(json_object_get(l, "admin"));

		if ((oper && strcmp(oper, "up")) || (admin && !strcmp(admin, "down")))
			json_array_append(down, json_object_get(l, "name"));
	}
	h = ctl_api_health(model);
	code = (int)json_integer_value(json_object_get(h, "exit"));
	json_decref(h);
	json_decref(model);
	h = json_pack("{s:i, s:o, s:s}", "code", code, "links_down", down, "alarm", st->alarm);
	pthread_mutex_unlock(st->lock);
	return h;
}

/* A validate-only node's health summary: GET /v1/status's rules, which
 * judge no regionfwd in that mode, so only the alarm counts. */
static json_t *validate_only_health(struct ctl_fleet *f)
{
	struct ctl_state *st = f->st;
	json_t *model, *h;
	int code;

	pthread_mutex_lock(st->lock);
	model = json_pack("{s:{s:b}, s:s?, s:o?}", "fleet", "validate_only", 1, "alarm",
			  st->alarm[0] ? st->alarm : NULL, "filters", filters_json(st));
	h = model ? ctl_api_health(model) : NULL;
	/* No model, no verdict: not said healthy (the report is written anyway) */
	code = h ? (int)json_integer_value(json_object_get(h, "exit")) : 1;
	json_decref(h);
	json_decref(model);
	h = json_pack("{s:i, s:[], s:s}", "code", code, "links_down", "alarm", st->alarm);
	pthread_mutex_unlock(st->lock);
	return h;
}

/* Whether the last try was of target @t from @source: a refusal of another
 * target (the pin just deleted, a desired key since rewritten) says nothing
 * of this one until it is tried too. */
static int tried_this(const struct ctl_fleet *f, const struct target *t, const char *source)
{
	return f->tried_revision == t->revision && f->tried_source == source &&
	       (t->refused || !strcmp(f->tried_table, t->table));
}

/* The node's state from what the view holds (f->mu held); @tried_here:
 * tried_this() of the current target. */
static const char *node_state(const struct view *v, int validate_only, int tried_here)
{
	/* A refusal of this target; a failure that may pass is applying, and
	 * so is a target not tried yet, whatever the last one's fate. */
	if (v->apply_final && tried_here)
		return "failed";
	if (v->stale)
		return "stale";
	if (validate_only)
		return "validate_only";
	return v->in_sync ? "in_sync" : "applying";
}

/* The report's "apply_error": the table, the reason's code, the message and
 * where in the table it points ("at": FILE:LINE: FIELD, the parts there
 * are; null without). Status and the report gave the message alone, and
 * the field was in regiond's log only (a probe). */
static json_t *apply_error_json(const struct view *v)
{
	char at[sizeof(v->apply_err.file) + sizeof(v->apply_err.path) + 32];
	size_t n = 0;

	at[0] = '\0';
	if (v->apply_err.file[0])
		n += (size_t)snprintf(at + n, sizeof(at) - n, "%s", v->apply_err.file);
	if (v->apply_err.line)
		n += (size_t)snprintf(at + n, sizeof(at) - n, "%s%u", n ? ":" : "line ",
				      v->apply_err.line);
	if (v->apply_err.path[0] && n < sizeof(at))
		snprintf(at + n, sizeof(at) - n, "%s%s", n ? ": " : "", v->apply_err.path);
	return json_pack("{s:s?, s:s, s:s, s:s?}", "table",
			 v->apply_table[0] ? v->apply_table : NULL, "reason",
			 fwd_reason_name(v->apply_err.reason_code), "message", v->apply_err.reason,
			 "at", at[0] ? at : NULL);
}

/* The report's "pin": null, or the pin with whether it is stray (no active
 * rollout owns it). */
static json_t *pin_json(const struct target *pin, int stray)
{
	if (!pin->present)
		return json_null();
	/* An unreadable pin says so: with neither table nor rollout it read as
	 * an operator's pin to "-" (a probe). */
	return json_pack("{s:s?, s:s?, s:I, s:b, s:s?}", "table", pin->table[0] ? pin->table : NULL,
			 "rollout", pin->rollout[0] ? pin->rollout : NULL, "revision",
			 (json_int_t)pin->revision, "stray", stray, "unreadable",
			 pin->refused ? pin->err.reason : NULL);
}

/* The node's fleet alarm (status "alarm", so health says degraded): a stray
 * pin that names a rollout holds it off desired (its rollout finished
 * without it, or etcd does not know that rollout), or it refused its target
 * (at once), or it has been applying the same target for stuck_after_s: a
 * node that a rollout's abort could not revert runs a table that failed its
 * gates while desired says otherwise, and nothing else would say so. A pin
 * with "rollout": null is an operator's, a box held on a table on purpose:
 * reported (the report's pin, /metrics regiond_fleet_pin_by_hand), never
 * an alarm. @return 1 when the alarm changed (the health just read is then
 * out of date). */
static int fleet_alarm(struct ctl_fleet *f, const struct target *t, const char *source,
		       const char *running, int in_sync, int refused, const char *why, int orphan)
{
	char a[CTL_ALARM_LEN] = "", b[200] = "";
	int64_t now = fwd_mono_ms();
	int off = f->read_once && !in_sync && (t->present || t->refused);

	if (!off || strcmp(f->off_table, t->table) != 0)
		f->off_since_ms = 0;
	if (off && !f->off_since_ms) {
		f->off_since_ms = now;
		snprintf(f->off_table, sizeof(f->off_table), "%s", t->table);
	}
	off = off && (refused || now - f->off_since_ms >= (int64_t)f->stuck_after_s * 1000);
	if (f->pin.present && f->pin_stray && f->owner_rev == f->pin.revision && f->pin.rollout[0])
		snprintf(a, sizeof(a),
			 "fleet: pinned to table %s by rollout %s, which no active rollout owns "
			 "(desired is %s; regionctl fleet unpin %s)",
			 f->pin.table, f->pin.rollout,
			 f->desired.present ? f->desired.table : "none", f->node);
	if (off) {
		char still[48];

		snprintf(still, sizeof(still), "still applying after %u s", f->stuck_after_s);
		snprintf(b, sizeof(b), "fleet: runs table %s, not its target %s (%s): %s%s%s",
			 running && running[0] ? running : "none",
			 t->table[0] ? t->table : "unreadable", source ? source : "?",
			 refused ? "refused" : still, why ? ", " : "", why ? why : "");
	}
	if (f->dup_seen_ms &&
	    now - f->dup_seen_ms < (int64_t)f->lease_s * 2000 + 2 * f->report_ms) {
		char d[200];

		snprintf(d, sizeof(d),
			 "fleet: another regiond reports as node %s (etcd lease %" PRIx64
			 "): give each box its own --fleet-node",
			 f->node, (uint64_t)f->dup_lease);
		if (a[0])
			snprintf(a + strlen(a), sizeof(a) - strlen(a), "; %s", d);
		else
			snprintf(a, sizeof(a), "%s", d);
	}
	if (orphan)
		snprintf(b, sizeof(b),
			 "fleet: runs table %s from the fleet, but the facility has no desired "
			 "table (its first rollout aborted, or etcd lost its keys): regionctl "
			 "fleet apply the table it should run",
			 running && running[0] ? running : "(a delta generation)");
	if (a[0] && b[0])
		snprintf(a + strlen(a), sizeof(a) - strlen(a), "; %s", b);
	else if (b[0])
		snprintf(a, sizeof(a), "%s", b);
	pthread_mutex_lock(&f->mu);
	f->v.off_target = off || orphan;
	pthread_mutex_unlock(&f->mu);
	if (!strcmp(a, f->alarm))
		return 0;
	snprintf(f->alarm, sizeof(f->alarm), "%s", a);
	pthread_mutex_lock(f->st->lock);
	ctl_state_alarm(f->st, CTL_ALARM_FLEET, a[0] ? "%s" : NULL, a);
	pthread_mutex_unlock(f->st->lock);
	return 1;
}

/* Build the report; in *@changed whether anything but the counters and
 * the time moved since the last one written. */
static json_t *build_report(struct ctl_fleet *f, int *changed)
{
	const char *source;
	const struct target *t = current_target(f, &source);
	json_t *running = NULL, *health, *r, *err = json_null(), *cmp;
	char *text;
	int in_sync;

	if (f->validate_only) {
		running = json_pack("{s:i, s:s?, s:n}", "generation", 0, "table",
				    f->validated[0] ? f->validated : NULL, "hash");
		in_sync = !t->present || (!t->refused && !strcmp(f->validated, t->table));
		/* Nothing runs here to be off target; a stray pin or a twin
		 * reporting under this name still says so, in the health too. */
		fleet_alarm(f, t, source, f->validated, 1, 0, NULL, 0);
		health = validate_only_health(f);
	} else {
		const char *rt;
		int dp_in_sync;

		char rtab[17], why[48];
		int refused, failed, orphan = 0;

		health = health_summary(f, &running, &dp_in_sync);
		rt = json_string_value(json_object_get(running, "table"));
		snprintf(rtab, sizeof(rtab), "%s", rt ? rt : "");
		/* No target yet: nothing is asked of the node. Else the
		 * target is regiond's current generation and regionfwd runs it. */
		in_sync = !t->present || (!t->refused && rt && !strcmp(rt, t->table) && dp_in_sync);
		/* Before its first read the node does not know its target yet. */
		in_sync = in_sync && f->read_once;
		pthread_mutex_lock(&f->mu);
		failed = f->v.has_apply_err;
		if (failed)
			snprintf(why, sizeof(why), "%s",
				 fwd_reason_name(f->v.apply_err.reason_code));
		pthread_mutex_unlock(&f->mu);
		/* Refused for what it is (not tried again until its key
		 * changes), or failing for a reason that may pass (retried). */
		refused = tried_this(f, t, source) && (t->refused || (failed && f->tried_final));
		/* No target, yet the node had one, or what runs came from
		 * the fleet: etcd lost desired, or a first rollout's abort
		 * had no previous table to pin back to. Nothing else would
		 * say that the node runs a table no one now asks for (a
		 * hostile probe). */
		if (t->present)
			f->had_target = 1;
		if (f->read_once && !t->present && !t->refused) {
			const struct ctl_gen *cur;

			pthread_mutex_lock(f->st->lock);
			cur = ctl_state_current(f->st);
			orphan = f->had_target || (cur && strcmp(cur->author, FLEET_AUTHOR) == 0);
			pthread_mutex_unlock(f->st->lock);
		}
		if (fleet_alarm(f, t, source, rtab, in_sync && !failed, refused,
				failed ? why : NULL, orphan)) {
			json_decref(health);
			json_decref(running);
			health = health_summary(f, &running, &dp_in_sync);
		}
	}
	/* Before its first read the node does not know its target yet. */
	in_sync = in_sync && f->read_once;
	pthread_mutex_lock(&f->mu);
	f->v.in_sync = in_sync && !f->v.has_apply_err;
	f->v.target = *t;
	f->v.source = source;
	f->v.pin = f->pin;
	f->v.pin_stray = f->pin.present && f->pin_stray && f->owner_rev == f->pin.revision;
	f->v.state = node_state(&f->v, f->validate_only, tried_this(f, t, source));
	if (f->v.has_apply_err)
		err = apply_error_json(&f->v);
	r = json_pack("{s:i, s:s, s:s, s:O, s:s, s:s, s:o, s:o, s:o, s:b, s:b, s:o, s:o}", "schema",
		      FLEET_SCHEMA, "node", f->node, "facility", f->facility, "labels", f->labels,
		      "version", f->version, "state", f->v.state, "target", target_json(t, source),
		      "pin", pin_json(&f->v.pin, f->v.pin_stray), "running", running, "in_sync",
		      f->v.in_sync, "stale", f->v.stale, "apply_error", err, "health", health);
	pthread_mutex_unlock(&f->mu);
	if (!r)
		return NULL;
	text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
	*changed = !text || !f->last_report_text || strcmp(text, f->last_report_text);
	free(f->last_report_text);
	f->last_report_text = text;
	cmp = counters_json(f->counters);
	json_object_set_new(r, "counters", cmp);
	/* Step-free (fwd_steady_ms): rollouts take rates over it. */
	json_object_set_new(r, "updated_at", json_integer(fwd_steady_ms(&f->clock)));
	return r;
}

/* Put the report, and notice another writer of the same key: the key
 * is ours as long as its mod_revision is that of our last write. Another
 * regiond given the same --fleet-node overwrites it between our writes
 * (a hostile probe saw the two alternate unseen, fleet status listing one
 * node); a report of ours that lapsed with its lease, or our former self
 * before our first write, is not one. Written either way: the node is
 * not dropped from the fleet view for a conflict it cannot settle. */
static int write_report(struct ctl_fleet *f, const char *text, struct fwd_err *e)
{
	struct ctl_etcd_cmp cmp = {.key = f->k_node,
				   .target = CTL_ETCD_CMP_MOD,
				   .result = CTL_ETCD_EQUAL,
				   .number = f->report_rev};
	struct ctl_etcd_op put = {.type = CTL_ETCD_OP_PUT,
				  .key = f->k_node,
				  .value = text,
				  .value_len = strlen(text),
				  .lease = f->lease};
	struct ctl_etcd_op fail[2] = {{.type = CTL_ETCD_OP_RANGE, .key = f->k_node}, put};
	struct ctl_etcd_txn_result res = {0};
	int rc = ctl_etcd_txn(f->etcd, &cmp, 1, &put, 1, fail, 2, &res, e);

	if (rc)
		return rc;
	if (!res.succeeded && f->report_rev && res.range.count == 1 &&
	    res.range.kvs[0].lease != f->lease) {
		f->dup_seen_ms = fwd_mono_ms();
		f->dup_lease = res.range.kvs[0].lease;
	}
	f->report_rev = res.revision;
	ctl_etcd_range_free(&res.range);
	return 0;
}

/* Write the report when it changed or report_ms passed (@force: now). */
static void report(struct ctl_fleet *f, int force)
{
	struct fwd_err e;
	int changed = 0;
	int64_t now = fwd_mono_ms();
	json_t *r;
	char *text;

	if (!f->lease)
		return;
	r = build_report(f, &changed);
	if (!r)
		return;
	/* The node's state moved (build_report updated it): status's fleet
	 * part shows it before etcd's report says it. */
	if (changed)
		ctl_state_publish(f->st);
	if (!force && !changed && now < f->report_at_ms) {
		json_decref(r);
		return;
	}
	/* The counters move all the time: read on the period, not per change. */
	if (now >= f->report_at_ms) {
		read_counters(f);
		json_object_set_new(r, "counters", counters_json(f->counters));
	}
	text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
	if (text && write_report(f, text, &e) == 0) {
		etcd_ok(f);
		f->report_at_ms = now + f->report_ms;
		pthread_mutex_lock(&f->mu);
		json_decref(f->v.report);
		f->v.report = json_incref(r);
		f->v.counters[FC_reports]++;
		pthread_mutex_unlock(&f->mu);
	} else if (text) {
		/* not written: the next turn tries again */
		free(f->last_report_text);
		f->last_report_text = NULL;
		etcd_failed(f, &e);
		if (e.reason_code == FWD_R_ETCD_ERROR && strstr(e.reason, "lease"))
			f->lease = 0;
	}
	free(text);
	json_decref(r);
}

/* ---- the session: lease, staleness ------------------------------------- */

/* A lease for the report. @return 0 when there is one. */
static int session(struct ctl_fleet *f)
{
	struct fwd_err e;
	int64_t now = fwd_mono_ms(), ttl;

	if (f->lease && now - f->lease_kept_ms >= (int64_t)f->lease_s * 1000 / 3) {
		int rc = ctl_etcd_lease_keepalive(f->etcd, f->lease, &ttl, &e);

		if (rc == 0) {
			f->lease_kept_ms = now;
			etcd_ok(f);
		} else if (rc == -ENOENT) {
			f->lease = 0; /* expired while we were away: a new one */
		} else {
			etcd_failed(f, &e);
			return -1;
		}
	}
	if (f->lease)
		return 0;
	if (ctl_etcd_lease_grant(f->etcd, f->lease_s, &f->lease, &e) < 0) {
		f->lease = 0;
		etcd_failed(f, &e);
		return -1;
	}
	f->lease_kept_ms = now;
	etcd_ok(f);
	pthread_mutex_lock(&f->mu);
	f->v.lease = f->lease;
	pthread_mutex_unlock(&f->mu);
	/* A new session: whatever happened meanwhile, read it afresh. */
	f->need_read = 1;
	free(f->last_report_text);
	f->last_report_text = NULL;
	return 0;
}

/* Whether the watches delivered what a read at revision @at found: the key's
 * revision when it exists; its absence otherwise. */
static int caught_up(const struct target *read, const struct target *mine, int64_t at)
{
	if (read->present)
		return mine->present && mine->revision >= read->revision;
	return !mine->present || mine->revision > at;
}

/* The watches' safety net, every third of the lease: desired and the pin
 * read now must be what the watches delivered, at the latest by the next
 * check (a change may land between a poll and this read). A stream stuck
 * on a member that hangs (stopped, or cut off with its TCP session still
 * up) delivers nothing and never fails; this finds it, and the keys are
 * read again on fresh streams. */
static void check_watches(struct ctl_fleet *f)
{
	struct fwd_err e;
	struct target d, p;
	int64_t rev, rev2;

	if (fwd_mono_ms() - f->checked_ms < (int64_t)f->lease_s * 1000 / 3)
		return;
	f->checked_ms = fwd_mono_ms();
	if (read_key(f, f->k_desired, 0, 0, &d, &rev, &e) < 0 ||
	    read_key(f, f->k_pin, rev, 1, &p, &rev2, &e) < 0) {
		etcd_failed(f, &e);
		return;
	}
	etcd_ok(f);
	if (f->suspect && (!caught_up(&f->suspect_d, &f->desired, f->suspect_rev) ||
			   !caught_up(&f->suspect_p, &f->pin, f->suspect_rev))) {
		fwd_log(FWD_LOG_WARNING,
			"fleet: the watch on %s missed a change (revision %" PRId64
			"): reading again on fresh streams",
			ctl_etcd_watch_endpoint(f->w_desired), f->suspect_rev);
		f->suspect = 0;
		f->need_read = 1;
		return;
	}
	f->suspect = !caught_up(&d, &f->desired, rev) || !caught_up(&p, &f->pin, rev);
	f->suspect_d = d;
	f->suspect_p = p;
	f->suspect_rev = rev;
}

/* Whether the active rollout owns the pin: the pin and rollout/active read
 * at one revision (a rollout pins and finishes in one transaction with its
 * record, so one revision never shows its pin without it). A pin that the
 * watch has not caught up with is left for the next turn: the verdict is
 * always about the pin the node follows. */
static void check_pin_owner(struct ctl_fleet *f)
{
	struct ctl_etcd_range r;
	struct fwd_err e;
	int64_t rev;
	int rc;

	if (!f->pin.present || f->pin.refused) {
		f->owner_rev = 0;
		f->pin_stray = 0;
		return;
	}
	if (f->owner_rev == f->pin.revision &&
	    fwd_mono_ms() - f->owner_checked_ms < (int64_t)f->lease_s * 1000 / 3)
		return;
	f->owner_checked_ms = fwd_mono_ms();
	if (ctl_etcd_range(f->etcd, f->k_pin, CTL_ETCD_KEYS_ONLY, 0, 1, &r, &e) < 0) {
		etcd_failed(f, &e);
		return;
	}
	rev = r.revision;
	rc = r.count == 1 && r.kvs[0].mod_revision == f->pin.revision;
	ctl_etcd_range_free(&r);
	if (!rc)
		return; /* the watch brings the change; checked then */
	rc = ctl_rstore_active_id(f->etcd, f->facility, rev, &f->active_create, f->active_id, &e);
	if (rc < 0 && e.reason_code != FWD_R_INVALID_FLEET_KEY) {
		etcd_failed(f, &e);
		return;
	}
	/* An active record without a readable id might be the pin's own
	 * rollout: not called stray (the driver pauses on it and says so). */
	f->pin_stray = rc == 0 && (!f->pin.rollout[0] || strcmp(f->pin.rollout, f->active_id));
	f->owner_rev = f->pin.revision;
}

static void *fleet_thread(void *arg)
{
	struct ctl_fleet *f = arg;
	int was_connected = 1;

	f->last_ok_ms = fwd_mono_ms();
	while (!atomic_load(&f->quit)) {
		int connected;

		/* Away longer than the lease: the fleet saw this node vanish;
		 * stale until it has read its target afresh and converged. */
		pthread_mutex_lock(&f->mu);
		connected = f->v.connected;
		if (!connected && fwd_mono_ms() - f->last_ok_ms > (int64_t)f->lease_s * 1000)
			f->v.stale = 1;
		pthread_mutex_unlock(&f->mu);
		if (!connected && was_connected)
			f->need_read = 1; /* the watches may have missed a session's end */
		was_connected = connected;
		if (session(f) < 0) {
			usleep(FLEET_DOWN_PAUSE_MS * 1000);
			continue;
		}
		if (f->need_read) {
			report(f, 1); /* says "stale" first when it was */
			if (read_targets(f) < 0) {
				usleep(FLEET_DOWN_PAUSE_MS * 1000);
				continue;
			}
		}
		/* Each step is etcd calls of up to --fleet-timeout-ms per endpoint
		 * (and a login's, bcrypt on etcd's side): a stop waits for the
		 * step under way, not for the rest of the round (a stop under
		 * load once took past 20 s). */
		if (atomic_load(&f->quit))
			break;
		converge(f);
		if (atomic_load(&f->quit))
			break;
		check_pin_owner(f);
		if (atomic_load(&f->quit))
			break;
		pthread_mutex_lock(&f->mu);
		if (f->v.stale && !f->need_read && (f->tried_ok || f->tried_final))
			f->v.stale = 0; /* read afresh and converged (or refused) */
		else if (f->v.stale && !f->desired.present && !f->pin.present)
			f->v.stale = 0;
		pthread_mutex_unlock(&f->mu);
		report(f, 0);
		if (atomic_load(&f->quit))
			break;
		poll_watch(f, f->w_desired, 0);
		poll_watch(f, f->w_pin, 1);
		if (!f->need_read)
			check_watches(f);
		pthread_mutex_lock(&f->mu);
		snprintf(f->v.watch_endpoint, sizeof(f->v.watch_endpoint), "%s",
			 f->w_desired ? ctl_etcd_watch_endpoint(f->w_desired) : "");
		pthread_mutex_unlock(&f->mu);
	}
	return NULL;
}

/* ---- start, stop, view -------------------------------------------------- */

static int key_of(char *out, size_t len, const char *prefix, const char *rest)
{
	return snprintf(out, len, "%s%s", prefix, rest) >= (int)len ? -1 : 0;
}

struct ctl_fleet *ctl_fleet_start(const struct ctl_fleet_conf *c, struct ctl_state *st,
				  struct fwd_err *e)
{
	struct ctl_etcd_conf ec = {
		.endpoints = c->endpoints,
		.timeout_ms = c->etcd_timeout_ms,
		/* a chunk of 512 KiB in base64 with its envelope */
		.max_reply = 2u << 20,
		.ca_file = c->ca_file,
		.cert_file = c->cert_file,
		.key_file = c->key_file,
		.user = c->user,
		.password = c->password,
	};
	struct ctl_fleet *f;
	char rest[100];

	if (ctl_fleet_conf_check(c, e))
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return NULL;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_mutex_init(&f->kmu, NULL);
	fwd_cond_init_mono(&f->kcv);
	snprintf(f->node, sizeof(f->node), "%s", c->node);
	snprintf(f->facility, sizeof(f->facility), "%s", c->facility);
	snprintf(f->version, sizeof(f->version), "%s", c->version ? c->version : "");
	f->validate_only = c->validate_only;
	f->lease_s = c->lease_s;
	f->report_ms = c->report_ms;
	fwd_steady_init(&f->clock);
	f->stuck_after_s = c->stuck_after_s ? c->stuck_after_s : FLEET_STUCK_S;
	f->st = st;
	f->labels = json_object();
	for (unsigned i = 0; f->labels && i < c->nlabels; i++) {
		size_t kl = strcspn(c->labels[i], "=");

		json_object_setn_new(f->labels, c->labels[i], kl,
				     json_string(c->labels[i] + kl + 1));
	}
	snprintf(f->k_prefix, sizeof(f->k_prefix), "/regionfwd/v1/fac/%s/", f->facility);
	snprintf(rest, sizeof(rest), "pins/%s", f->node);
	if (key_of(f->k_desired, sizeof(f->k_desired), f->k_prefix, "desired") ||
	    key_of(f->k_pin, sizeof(f->k_pin), f->k_prefix, rest))
		goto nomem;
	snprintf(rest, sizeof(rest), "nodes/%s", f->node);
	if (key_of(f->k_node, sizeof(f->k_node), f->k_prefix, rest))
		goto nomem;
	f->v.state = c->validate_only ? "validate_only" : "applying";
	f->etcd = ctl_etcd_create(&ec, e);
	if (!f->etcd || !f->labels || !(f->keeper_etcd = ctl_etcd_create(&ec, e)))
		goto fail;
	snprintf(f->v.endpoint, sizeof(f->v.endpoint), "%s", ctl_etcd_endpoint(f->etcd));
	if (!c->validate_only && !(f->dp = ctl_dp_create_like(st->dp)))
		goto nomem;
	f->need_read = 1;
	if (pthread_create(&f->thread, NULL, fleet_thread, f)) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "cannot start the fleet thread");
		goto fail;
	}
	f->thread_started = 1;
	fwd_log(FWD_LOG_NOTICE, "fleet: node %s of facility %s%s, etcd %s", f->node, f->facility,
		f->validate_only ? " (validate only: no regionfwd)" : "", c->endpoints);
	return f;
nomem:
	fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
fail:
	ctl_fleet_free(f);
	return NULL;
}

void ctl_fleet_free(struct ctl_fleet *f)
{
	if (!f)
		return;
	if (f->thread_started) {
		atomic_store(&f->quit, 1);
		pthread_join(f->thread, NULL);
	}
	/* The report goes now rather than at the lease's end: a node that
	 * stops on purpose leaves the fleet view at once. */
	if (f->lease && f->etcd) {
		struct fwd_err e;

		ctl_etcd_lease_revoke(f->etcd, f->lease, &e);
	}
	ctl_etcd_watch_free(f->w_desired);
	ctl_etcd_watch_free(f->w_pin);
	ctl_etcd_free(f->etcd);
	ctl_etcd_free(f->keeper_etcd);
	ctl_dp_free(f->dp);
	fwd_report_free(f->counters);
	free(f->last_report_text);
	json_decref(f->labels);
	json_decref(f->v.report);
	pthread_mutex_destroy(&f->mu);
	pthread_mutex_destroy(&f->kmu);
	pthread_cond_destroy(&f->kcv);
	free(f);
}

json_t *ctl_fleet_view(struct ctl_fleet *f)
{
	json_t *v, *cnt = json_object(), *err = json_null();
	int64_t error_at;

	pthread_mutex_lock(&f->mu);
	error_at = f->v.last_error_at;
	for (int i = 0; cnt && i < FC_MAX; i++)
		json_object_set_new(cnt, counter_desc[i].name,
				    json_integer((json_int_t)f->v.counters[i]));
	if (f->v.has_apply_err)
		err = apply_error_json(&f->v);
	v = json_pack("{s:s, s:s, s:s, s:b, s:b, s:s, s:s, s:I, s:o, s:o, s:b, s:s, s:b, s:b, "
		      "s:o, s:s?, s:I, s:I, s:O?, s:o}",
		      "node", f->node, "facility", f->facility, "mode",
		      f->validate_only ? "validate_only" : "apply", "connected", f->v.connected,
		      "stale", f->v.stale, "endpoint", f->v.endpoint, "watch_endpoint",
		      f->v.watch_endpoint, "revision", (json_int_t)f->v.revision, "target",
		      target_json(&f->v.target, f->v.source), "pin",
		      pin_json(&f->v.pin, f->v.pin_stray), "off_target", f->v.off_target, "state",
		      f->v.state, "in_sync", f->v.in_sync, "validate_only", f->validate_only,
		      "apply_error", err, "last_error", f->v.last_error[0] ? f->v.last_error : NULL,
		      "last_error_at", (json_int_t)f->v.last_error_at, "lease",
		      (json_int_t)f->v.lease, "report", f->v.report, "counters", cnt);
	pthread_mutex_unlock(&f->mu);
	if (v && !error_at)
		json_object_set_new(v, "last_error_at", json_null());
	return v;
}

/* The whole view, the report last written included (GET /v1/fleet);
 * status's summary leaves the report out. */
static json_t *ext_status(void *arg, const struct fwd_table *t)
{
	(void)t;
	return ctl_fleet_view(arg);
}

static void ext_metrics(void *arg, const struct fwd_table *t, FILE *out)
{
	static const char *const states[] = {"in_sync", "applying", "failed", "stale",
					     "validate_only"};
	struct ctl_fleet *f = arg;
	struct view v;
	char name[80];

	(void)t;
	pthread_mutex_lock(&f->mu);
	v = f->v;
	v.report = NULL;
	pthread_mutex_unlock(&f->mu);
	ctl_metrics_family(out, "regiond_fleet_connected",
			   "1 when the last etcd call of the fleet agent succeeded", "gauge");
	ctl_metrics_sample(out, "regiond_fleet_connected", v.connected, NULL);
	ctl_metrics_family(out, "regiond_fleet_in_sync",
			   "1 when the node runs (or validated) its fleet target", "gauge");
	ctl_metrics_sample(out, "regiond_fleet_in_sync", v.in_sync, NULL);
	ctl_metrics_family(out, "regiond_fleet_stale",
			   "1 when the node lost etcd longer than its lease and has not "
			   "converged since",
			   "gauge");
	ctl_metrics_sample(out, "regiond_fleet_stale", v.stale, NULL);
	ctl_metrics_family(out, "regiond_fleet_pinned",
			   "1 when a pin (pins/N) holds the node instead of desired", "gauge");
	ctl_metrics_sample(out, "regiond_fleet_pinned", v.pin.present, NULL);
	ctl_metrics_family(out, "regiond_fleet_pin_stray",
			   "1 when the node's pin is no active rollout's (a stray pin)", "gauge");
	ctl_metrics_sample(out, "regiond_fleet_pin_stray", v.pin_stray, NULL);
	ctl_metrics_family(out, "regiond_fleet_pin_by_hand",
			   "1 when the node's pin has \"rollout\": null (an operator's: no "
			   "alarm)",
			   "gauge");
	ctl_metrics_sample(out, "regiond_fleet_pin_by_hand",
			   v.pin.present && !v.pin.refused && !v.pin.rollout[0], NULL);
	ctl_metrics_family(out, "regiond_fleet_off_target",
			   "1 when the node refused its target or has been applying it for an "
			   "hour (its alarm)",
			   "gauge");
	ctl_metrics_sample(out, "regiond_fleet_off_target", v.off_target, NULL);
	ctl_metrics_family(out, "regiond_fleet_state", "the node's fleet state (1: this one)",
			   "gauge");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		ctl_metrics_sample(out, "regiond_fleet_state",
				   v.state && !strcmp(v.state, states[i]), "state", states[i],
				   NULL);
	ctl_metrics_family(out, "regiond_fleet_revision",
			   "the last etcd revision the agent read or was told of", "gauge");
	ctl_metrics_sample(out, "regiond_fleet_revision", (double)v.revision, NULL);
	for (int i = 0; i < FC_MAX; i++) {
		snprintf(name, sizeof(name), "regiond_fleet_%s_total", counter_desc[i].name);
		ctl_metrics_family(out, name, counter_desc[i].help, "counter");
		ctl_metrics_sample(out, name, (double)v.counters[i], NULL);
	}
}

struct ctl_ext ctl_fleet_ext(struct ctl_fleet *f)
{
	return (struct ctl_ext){
		.name = "fleet", .arg = f, .status = ext_status, .metrics = ext_metrics};
}
