#include "ctl_rollout_store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fwd_hash.h"
#include "fwd_json.h"

#define PREFIX "/regionfwd/v1/fac/"
/* etcd refuses a transaction of more than --max-txn-ops (128 by default)
 * operations: past this many pins a step uses prefix deletes instead. */
#define PIN_OPS_MAX 100

int ctl_rstore_key(char *buf, size_t len, const char *facility, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(buf, len, PREFIX "%s/", facility);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return (size_t)n < len ? 0 : -ENAMETOOLONG;
}

void ctl_rstore_table_hash(const char *doc, size_t len, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)fwd_hash64(doc, len));
}

static char *dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(j);
	return s;
}

static uint64_t unix_s(uint64_t ms)
{
	return ms / 1000;
}

/* @leader's compares into @cmp (its key into @key): @return how many. */
static size_t leader_cmps(const char *facility, const struct ctl_rstore_leader *leader,
			  char key[160], struct ctl_etcd_cmp cmp[2])
{
	if (leader == NULL)
		return 0;
	ctl_rstore_key(key, 160, facility, "rollout/leader");
	cmp[0] = (struct ctl_etcd_cmp){.key = key,
				       .target = CTL_ETCD_CMP_CREATE,
				       .result = CTL_ETCD_EQUAL,
				       .number = leader->create_revision};
	cmp[1] = (struct ctl_etcd_cmp){.key = key,
				       .target = CTL_ETCD_CMP_LEASE,
				       .result = CTL_ETCD_EQUAL,
				       .number = leader->lease};
	return 2;
}

/* The desired key's table ("" when there is none) and the compare that
 * keeps it so until the transaction. */
static int read_desired(struct ctl_etcd *e, const char *facility, char *table, char *key,
			size_t key_len, struct ctl_etcd_cmp *cmp, struct fwd_err *err)
{
	struct ctl_etcd_range rg = {0};
	json_t *j = NULL, *v;
	int rc;

	table[0] = '\0';
	ctl_rstore_key(key, key_len, facility, "desired");
	rc = ctl_etcd_range(e, key, 0, 0, 1, &rg, err);
	if (rc)
		return rc;
	*cmp = (struct ctl_etcd_cmp){
		.key = key, .target = CTL_ETCD_CMP_CREATE, .result = CTL_ETCD_EQUAL};
	if (rg.count == 0)
		goto out;
	cmp->target = CTL_ETCD_CMP_MOD;
	cmp->number = rg.kvs[0].mod_revision;
	j = fwd_json_loadb(rg.kvs[0].value, rg.kvs[0].value_len, JSON_REJECT_DUPLICATES, NULL);
	v = json_object_get(j, "schema");
	if (json_is_integer(v) && json_integer_value(v) > CTL_ROLLOUT_SCHEMA) {
		rc = fwd_err_fail(err, FWD_R_UNSUPPORTED_SCHEMA, NULL, 0, key,
				  "schema %lld is newer than this regiond's (%d)",
				  json_integer_value(v), CTL_ROLLOUT_SCHEMA);
		goto out;
	}
	v = json_object_get(j, "table");
	if (!json_is_integer(json_object_get(j, "schema")) || !json_is_string(v) ||
	    json_string_length(v) != 16 || strspn(json_string_value(v), "0123456789abcdef") != 16) {
		rc = fwd_err_fail(err, FWD_R_INVALID_FLEET_KEY, NULL, 0, key,
				  "is not {\"schema\":1, \"table\": HASH, ...}: fix or delete it");
		goto out;
	}
	memcpy(table, json_string_value(v), 17);
out:
	json_decref(j);
	ctl_etcd_range_free(&rg);
	return rc;
}

/* The id of whatever holds rollout/active, for a 409's message. */
static int in_progress(const struct ctl_etcd_range *rg, const char *facility, struct fwd_err *err)
{
	json_t *j =
		rg->count ? fwd_json_loadb(rg->kvs[0].value, rg->kvs[0].value_len, 0, NULL) : NULL;
	const char *id = json_string_value(json_object_get(j, "id"));
	const char *state = json_string_value(json_object_get(j, "state"));
	int rc = fwd_err_fail(err, FWD_R_ROLLOUT_IN_PROGRESS, NULL, 0, "",
			      "rollout %.40s is %.16s in facility %s: one at a time (abort it, "
			      "or wait for it)",
			      id ? id : "?", state ? state : "in progress", facility);

	json_decref(j);
	return rc;
}

/* Whether what holds rollout/active is the record with @id: our own
 * create, applied by a member that did not answer, whose retry on the next
 * member failed its compare on it. */
static bool active_is(const struct ctl_etcd_range *rg, const char *id)
{
	json_t *j =
		rg->count ? fwd_json_loadb(rg->kvs[0].value, rg->kvs[0].value_len, 0, NULL) : NULL;
	const char *have = json_string_value(json_object_get(j, "id"));
	bool same = have && strcmp(have, id) == 0;

	json_decref(j);
	return same;
}

/* Rollout @id's record in the facility's history, into @r: 1 when it is
 * there, 0 when not, or a negative errno (etcd did not say, or the record
 * does not parse) with @err set. */
static int history_record(struct ctl_etcd *e, const char *facility, const char *id,
			  struct ctl_rollout *r, struct fwd_err *err)
{
	struct ctl_etcd_range rg = {0};
	char hkey[200];
	int rc;

	ctl_rstore_key(hkey, sizeof(hkey), facility, "rollout/history/%s", id);
	rc = ctl_etcd_range(e, hkey, 0, 0, 1, &rg, err);
	if (rc == 0 && rg.count == 1) {
		rc = ctl_rollout_parse(rg.kvs[0].value, rg.kvs[0].value_len, r, err);
		if (rc == 0)
			rc = 1;
	}
	ctl_etcd_range_free(&rg);
	return rc;
}

/* The manifest's "format": JSON when the document starts with '{'. */
static const char *table_format(const char *doc, size_t len)
{
	const char *p = doc;

	while (p < doc + len && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p < doc + len && *p == '{' ? "json" : "yaml";
}

static int put_table(struct ctl_etcd *e, const char *facility, const char *hash, const char *doc,
		     size_t len, struct ctl_etcd_op *ops, char (*keys)[160], char **manifest,
		     uint64_t now_ms, const char *by, size_t *n_ops)
{
	size_t chunks = (len + CTL_RSTORE_CHUNK - 1) / CTL_RSTORE_CHUNK;

	(void)e;
	for (size_t c = 0; c < chunks; c++) {
		size_t off = c * CTL_RSTORE_CHUNK;

		ctl_rstore_key(keys[*n_ops], 160, facility, "tables/%s/chunk/%06zu", hash, c);
		ops[*n_ops] = (struct ctl_etcd_op){
			.type = CTL_ETCD_OP_PUT,
			.key = keys[*n_ops],
			.value = doc + off,
			.value_len = len - off < CTL_RSTORE_CHUNK ? len - off : CTL_RSTORE_CHUNK,
		};
		(*n_ops)++;
	}
	*manifest = dump(json_pack("{s:i, s:s, s:I, s:I, s:s, s:I, s:s}", "schema",
				   CTL_ROLLOUT_SCHEMA, "hash", hash, "len", (json_int_t)len,
				   "chunks", (json_int_t)chunks, "format", table_format(doc, len),
				   "created_at", (json_int_t)unix_s(now_ms), "created_by", by));
	if (*manifest == NULL)
		return -ENOMEM;
	ctl_rstore_key(keys[*n_ops], 160, facility, "tables/%s/manifest", hash);
	ops[*n_ops] = (struct ctl_etcd_op){.type = CTL_ETCD_OP_PUT,
					   .key = keys[*n_ops],
					   .value = *manifest,
					   .value_len = strlen(*manifest)};
	(*n_ops)++;
	return 0;
}

/* Whether etcd holds table @hash as @doc: a manifest of its hash and length,
 * and chunks that put together are @doc. A table is immutable by its hash,
 * but a key can be forged or damaged: a create that took a bad copy for
 * the table would roll out a table no node can fetch (hash_mismatch on
 * every node, found by a hostile probe), so a copy that is not @doc is
 * written again. 1 when it is, 0 when not (or absent), -errno for etcd. */
static int stored_table_is(struct ctl_etcd *e, const char *facility, const char *hash,
			   const char *doc, size_t len, struct fwd_err *err)
{
	struct ctl_etcd_range rg = {0};
	char key[160];
	json_t *m;
	json_int_t chunks, mlen;
	size_t off = 0;
	int rc;

	ctl_rstore_key(key, sizeof(key), facility, "tables/%s/manifest", hash);
	if ((rc = ctl_etcd_range(e, key, 0, 0, 1, &rg, err)))
		return rc;
	if (rg.count == 0) {
		ctl_etcd_range_free(&rg);
		return 0;
	}
	m = json_loadb(rg.kvs[0].value, rg.kvs[0].value_len, JSON_REJECT_DUPLICATES, NULL);
	ctl_etcd_range_free(&rg);
	chunks = json_integer_value(json_object_get(m, "chunks"));
	mlen = json_integer_value(json_object_get(m, "len"));
	/* What put_table() writes, but the time and the author: the nodes
	 * check more of a manifest than its hash (format, chunk sizes), so a
	 * copy is trusted only when it is what this create would write. */
	rc = json_is_string(json_object_get(m, "hash")) &&
	     strcmp(json_string_value(json_object_get(m, "hash")), hash) == 0 &&
	     json_is_string(json_object_get(m, "format")) &&
	     strcmp(json_string_value(json_object_get(m, "format")), table_format(doc, len)) == 0 &&
	     json_integer_value(json_object_get(m, "schema")) == CTL_ROLLOUT_SCHEMA &&
	     mlen == (json_int_t)len &&
	     chunks == (json_int_t)((len + CTL_RSTORE_CHUNK - 1) / CTL_RSTORE_CHUNK);
	json_decref(m);
	for (json_int_t c = 0; rc == 1 && c < chunks; c++) {
		ctl_rstore_key(key, sizeof(key), facility, "tables/%s/chunk/%06lld", hash,
			       (long long)c);
		if ((rc = ctl_etcd_range(e, key, 0, 0, 1, &rg, err)) < 0)
			return rc;
		rc = rg.count == 1 &&
		     rg.kvs[0].value_len ==
			     (len - off < CTL_RSTORE_CHUNK ? len - off : CTL_RSTORE_CHUNK) &&
		     memcmp(doc + off, rg.kvs[0].value, rg.kvs[0].value_len) == 0;
		if (rc)
			off += rg.kvs[0].value_len;
		ctl_etcd_range_free(&rg);
	}
	return rc == 1 && off == len;
}

int ctl_rstore_create(struct ctl_etcd *e, const char *facility, const char *doc, size_t len,
		      const struct ctl_rollout_opts *opts, const char *created_by, uint64_t now_ms,
		      struct ctl_rollout *r, struct fwd_err *err)
{
	size_t max_chunks = (len + CTL_RSTORE_CHUNK - 1) / CTL_RSTORE_CHUNK + 2;
	char(*keys)[160] = calloc(max_chunks + 2, sizeof(*keys));
	struct ctl_etcd_op *ops = calloc(max_chunks + 2, sizeof(*ops));
	char desired_key[160], active_key[160], history_key[200], hash[17], previous[17], id[41];
	struct ctl_etcd_cmp cmp[3];
	int rc = -ENOMEM;

	if (keys == NULL || ops == NULL) {
		fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		goto out;
	}
	ctl_rstore_table_hash(doc, len, hash);
	ctl_rstore_key(active_key, sizeof(active_key), facility, "rollout/active");
	{
		uint16_t salt = 0;

		/* Two regionds creating in the same millisecond differ. One id
		 * for every attempt: a try applied by a member that did not
		 * answer is then known by it, whatever happened to it since. */
		if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != sizeof(salt))
			salt = (uint16_t)random();
		snprintf(id, sizeof(id), "r-%llu-%04x", (unsigned long long)now_ms, (unsigned)salt);
	}
	ctl_rstore_key(history_key, sizeof(history_key), facility, "rollout/history/%s", id);
	/* A desired key that moves under us (a rollout promoted meanwhile)
	 * fails the compare: read it again, a few times. */
	for (int attempt = 0; attempt < 5; attempt++) {
		struct ctl_etcd_txn_result res = {0};
		struct ctl_etcd_range rg = {0};
		struct ctl_etcd_op fail_op = {.type = CTL_ETCD_OP_RANGE, .key = active_key};
		char *manifest = NULL, *record = NULL;
		size_t n_ops = 0;
		bool have_table;

		rc = read_desired(e, facility, previous, desired_key, sizeof(desired_key), &cmp[1],
				  err);
		if (rc)
			goto out;
		rc = stored_table_is(e, facility, hash, doc, len, err);
		if (rc < 0)
			goto out;
		have_table = rc == 1;
		rc = ctl_rollout_init(r, id, facility, hash, previous, opts, created_by, now_ms,
				      err);
		if (rc)
			goto out;
		r->writes = 1;
		if (!have_table && len > CTL_RSTORE_ONE_TXN) {
			/* Too large for one request: the table first, then the
			 * record; refuse early if the facility is busy. */
			rc = ctl_etcd_range(e, active_key, 0, 0, 1, &rg, err);
			if (rc == 0 && rg.count)
				rc = in_progress(&rg, facility, err);
			ctl_etcd_range_free(&rg);
			if (rc == 0)
				rc = put_table(e, facility, hash, doc, len, ops, keys, &manifest,
					       now_ms, created_by, &n_ops);
			for (size_t i = 0; rc == 0 && i < n_ops; i++)
				rc = ctl_etcd_put(e, ops[i].key, ops[i].value, ops[i].value_len, 0,
						  NULL, err);
			free(manifest);
			manifest = NULL;
			if (rc)
				goto out;
			r->writes += n_ops;
			n_ops = 0;
			have_table = true;
		}
		if (!have_table) {
			rc = put_table(e, facility, hash, doc, len, ops, keys, &manifest, now_ms,
				       created_by, &n_ops);
			if (rc) {
				fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
				goto out;
			}
		}
		record = dump(ctl_rollout_to_json(r));
		if (record == NULL) {
			free(manifest);
			rc = fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
			goto out;
		}
		ops[n_ops++] = (struct ctl_etcd_op){.type = CTL_ETCD_OP_PUT,
						    .key = active_key,
						    .value = record,
						    .value_len = strlen(record)};
		cmp[0] = (struct ctl_etcd_cmp){.key = active_key,
					       .target = CTL_ETCD_CMP_CREATE,
					       .result = CTL_ETCD_EQUAL,
					       .number = 0};
		/* Not a second time: a create applied by a member that did not
		 * answer may have finished (an unreadable report aborts it at
		 * the first step, an operator's abort) before its retry, whose
		 * other compares then hold. */
		cmp[2] = (struct ctl_etcd_cmp){.key = history_key,
					       .target = CTL_ETCD_CMP_CREATE,
					       .result = CTL_ETCD_EQUAL,
					       .number = 0};
		rc = ctl_etcd_txn(e, cmp, 3, ops, n_ops, &fail_op, 1, &res, err);
		free(manifest);
		free(record);
		if (rc == 0 && !res.succeeded && res.range.count && active_is(&res.range, id)) {
			rc = 0; /* ours, created by the try that went unanswered */
		} else if (rc == 0 && !res.succeeded) {
			/* Ours and finished already (@r is then its record), or
			 * another's in progress, or desired moved: again. */
			rc = history_record(e, facility, id, r, err);
			if (rc == 1)
				rc = 0;
			else if (rc == 0 && res.range.count)
				rc = in_progress(&res.range, facility, err);
			else if (rc == 0)
				rc = -EAGAIN;
		}
		ctl_etcd_range_free(&res.range);
		if (rc != -EAGAIN)
			goto out;
	}
	rc = fwd_err_fail(err, FWD_R_ROLLOUT_IN_PROGRESS, NULL, 0, "",
			  "the facility's desired table kept changing: try again");
out:
	free(keys);
	free(ops);
	return rc;
}

int ctl_rstore_active(struct ctl_etcd *e, const char *facility, struct ctl_rollout *r,
		      int64_t *mod_revision, struct fwd_err *err)
{
	struct ctl_etcd_range rg = {0};
	char key[160];
	int rc;

	ctl_rstore_key(key, sizeof(key), facility, "rollout/active");
	rc = ctl_etcd_range(e, key, 0, 0, 1, &rg, err);
	if (rc)
		return rc;
	if (rg.count == 0) {
		ctl_etcd_range_free(&rg);
		return fwd_err_fail(err, FWD_R_NO_ROLLOUT, NULL, 0, "",
				    "facility %s has no rollout in progress", facility);
	}
	rc = ctl_rollout_parse(rg.kvs[0].value, rg.kvs[0].value_len, r, err);
	if (rc == 0 && strcmp(r->facility, facility) != 0)
		rc = fwd_err_fail(err, FWD_R_FACILITY_MISMATCH, NULL, 0, key, "names facility %s",
				  r->facility);
	else if (rc)
		err->reason_code = strcmp(err->path, "schema") == 0 && strstr(err->reason, "newer")
					   ? FWD_R_UNSUPPORTED_SCHEMA
					   : FWD_R_INVALID_FLEET_KEY;
	if (mod_revision)
		*mod_revision = rg.kvs[0].mod_revision;
	ctl_etcd_range_free(&rg);
	return rc;
}

static int write_record(struct ctl_etcd *e, struct ctl_rollout *r, int64_t mod_revision,
			const struct ctl_rstore_leader *leader, struct ctl_etcd_op *ops,
			size_t n_ops, bool finish, int64_t *new_rev, struct fwd_err *err)
{
	struct ctl_etcd_cmp cmp[3];
	struct ctl_etcd_txn_result res = {0};
	struct ctl_etcd_op get = {.type = CTL_ETCD_OP_RANGE};
	char akey[160], hkey[200], lkey[160], *record;
	size_t ncmp = 0, len;
	int rc;

	ctl_rstore_key(akey, sizeof(akey), r->facility, "rollout/active");
	ctl_rstore_key(hkey, sizeof(hkey), r->facility, "rollout/history/%s", r->id);
	get.key = finish ? hkey : akey;
	cmp[ncmp++] = (struct ctl_etcd_cmp){.key = akey,
					    .target = CTL_ETCD_CMP_MOD,
					    .result = CTL_ETCD_EQUAL,
					    .number = mod_revision};
	ncmp += leader_cmps(r->facility, leader, lkey, &cmp[ncmp]);
	r->writes++;
	record = dump(ctl_rollout_to_json(r));
	if (record == NULL)
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	if (finish) {
		ops[n_ops++] = (struct ctl_etcd_op){.type = CTL_ETCD_OP_PUT,
						    .key = hkey,
						    .value = record,
						    .value_len = strlen(record)};
		ops[n_ops++] = (struct ctl_etcd_op){.type = CTL_ETCD_OP_DELETE, .key = akey};
	} else {
		ops[n_ops++] = (struct ctl_etcd_op){.type = CTL_ETCD_OP_PUT,
						    .key = akey,
						    .value = record,
						    .value_len = strlen(record)};
	}
	rc = ctl_etcd_txn(e, cmp, ncmp, ops, n_ops, &get, 1, &res, err);
	/* The record as written, byte for byte (it carries its write count
	 * and time): this very write, applied by a member that did not
	 * answer, met by its retry on the next member. Taken as another's,
	 * the step's log line, count and history pruning were lost, and an
	 * operator's abort could answer that the rollout was already
	 * aborting. */
	len = strlen(record);
	if (rc == 0 && !res.succeeded && res.range.count == 1 &&
	    res.range.kvs[0].value_len == len && memcmp(res.range.kvs[0].value, record, len) == 0) {
		res.succeeded = 1;
		res.revision = res.range.kvs[0].mod_revision;
	}
	free(record);
	ctl_etcd_range_free(&res.range);
	if (rc)
		return rc;
	if (!res.succeeded)
		return fwd_err_fail(err, FWD_R_STALE_GENERATION, NULL, 0, akey,
				    "changed since it was read (another writer or leader)");
	if (new_rev)
		*new_rev = res.revision;
	return 0;
}

/* Whether rollout @id finished, in history, with an abort requested: then
 * its record is in @r. */
static bool aborted_in_history(struct ctl_etcd *e, const char *facility, const char *id,
			       struct ctl_rollout *r)
{
	struct ctl_etcd_range rg = {0};
	struct fwd_err err = {0};
	char hkey[200];
	bool yes = false;

	ctl_rstore_key(hkey, sizeof(hkey), facility, "rollout/history/%s", id);
	if (ctl_etcd_range(e, hkey, 0, 0, 1, &rg, &err) == 0 && rg.count == 1 &&
	    ctl_rollout_parse(rg.kvs[0].value, rg.kvs[0].value_len, r, &err) == 0)
		yes = r->abort_requested && strcmp(r->id, id) == 0;
	ctl_etcd_range_free(&rg);
	return yes;
}

/*
 * An active record this regiond cannot read as a rollout of its facility
 * (a half write, a hand's edit, another facility's record): the leader
 * pauses on it, and abort, unpin and apply were all refused on it, the
 * operator left with etcdctl (a hostile probe). The abort takes it away
 * as a rollout's abort ends: the record deleted, and the pins rollouts
 * wrote with it (those naming a rollout; an operator's pin by hand stays),
 * so those nodes follow desired, which a rollout changes only as it
 * completes. One transaction, each key only as it was read. A newer
 * regiond's record (unsupported_schema) is left alone. @return 1 with
 * what was wrong with the record in @err's reason, or -errno with @err.
 */
static int abort_unreadable(struct ctl_etcd *e, const char *facility, int64_t read_mod,
			    struct fwd_err *err)
{
	struct ctl_etcd_range rg = {0}, pg = {0};
	struct ctl_etcd_txn_result res = {0};
	struct ctl_etcd_cmp cmp[1 + PIN_OPS_MAX];
	struct ctl_etcd_op ops[1 + PIN_OPS_MAX];
	char akey[160], pins[160], why[sizeof(err->reason)];
	size_t n = 0;
	int rc;

	/* what the read said, its field first; cut to the reason's size */
	snprintf(why, sizeof(why), "%.120s%s%.250s", err->path, err->path[0] ? ": " : "",
		 err->reason);
	ctl_rstore_key(akey, sizeof(akey), facility, "rollout/active");
	ctl_rstore_key(pins, sizeof(pins), facility, "pins/");
	if ((rc = ctl_etcd_range(e, akey, 0, 0, 1, &rg, err)))
		return rc;
	if (rg.count != 1) {
		ctl_etcd_range_free(&rg);
		return fwd_err_fail(err, FWD_R_NO_ROLLOUT, NULL, 0, "",
				    "facility %s has no rollout in progress", facility);
	}
	if ((rc = ctl_etcd_range(e, pins, CTL_ETCD_PREFIX, 0, 0, &pg, err))) {
		ctl_etcd_range_free(&rg);
		return rc;
	}
	/* The record found unreadable, not whatever is there now: one mended
	 * or replaced by a new rollout meanwhile is left alone (a review). */
	if (rg.kvs[0].mod_revision != read_mod) {
		ctl_etcd_range_free(&rg);
		ctl_etcd_range_free(&pg);
		return fwd_err_fail(err, FWD_R_STALE_GENERATION, NULL, 0, akey,
				    "changed while this abort read it: try again");
	}
	cmp[n] = (struct ctl_etcd_cmp){.key = akey,
				       .target = CTL_ETCD_CMP_MOD,
				       .result = CTL_ETCD_EQUAL,
				       .number = read_mod};
	ops[n++] = (struct ctl_etcd_op){.type = CTL_ETCD_OP_DELETE, .key = akey};
	for (size_t i = 0; i < pg.count && n <= PIN_OPS_MAX; i++) {
		json_t *j = json_loadb(pg.kvs[i].value, pg.kvs[i].value_len, 0, NULL);
		const char *ro = json_string_value(json_object_get(j, "rollout"));

		/* a key with a NUL inside would name another key to the txn */
		if (ro && ro[0] && strlen(pg.kvs[i].key) == pg.kvs[i].key_len) {
			cmp[n] = (struct ctl_etcd_cmp){.key = pg.kvs[i].key,
						       .target = CTL_ETCD_CMP_MOD,
						       .result = CTL_ETCD_EQUAL,
						       .number = pg.kvs[i].mod_revision};
			ops[n++] = (struct ctl_etcd_op){.type = CTL_ETCD_OP_DELETE,
							.key = pg.kvs[i].key};
		}
		json_decref(j);
	}
	rc = ctl_etcd_txn(e, cmp, n, ops, n, NULL, 0, &res, err);
	ctl_etcd_range_free(&res.range);
	ctl_etcd_range_free(&rg);
	ctl_etcd_range_free(&pg);
	if (rc)
		return rc;
	if (!res.succeeded)
		return fwd_err_fail(err, FWD_R_STALE_GENERATION, NULL, 0, akey,
				    "changed while this abort read it: try again");
	*err = (struct fwd_err){0};
	snprintf(err->reason, sizeof(err->reason), "%s", why);
	return 1;
}

int ctl_rstore_abort(struct ctl_etcd *e, const char *facility, struct ctl_rollout *r,
		     struct fwd_err *err)
{
	struct ctl_etcd_op ops[2];
	char id[CTL_ROLLOUT_ID_MAX + 1] = "";

	for (int attempt = 0; attempt < 5; attempt++) {
		int64_t mod;
		int rc = ctl_rstore_active(e, facility, r, &mod, err);

		/* An abort written, whose answer was lost, that the leader acted
		 * on before this look: the record aborting on it, or gone to
		 * history. That is this abort's doing (or a concurrent one's,
		 * which asked the same), not a rollout already aborting. */
		if (id[0] && rc == 0 && strcmp(r->id, id) == 0 && r->abort_requested &&
		    (r->state == CTL_RO_ABORTING || r->state == CTL_RO_ABORTED))
			return 0;
		if (id[0] && rc && err->reason_code == FWD_R_NO_ROLLOUT &&
		    aborted_in_history(e, facility, id, r)) {
			*err = (struct fwd_err){0};
			return 0;
		}
		/* The rollout this abort meant finished meanwhile and another
		 * began: that one is not what the operator asked to abort. */
		if (id[0] && rc == 0 && strcmp(r->id, id) != 0)
			return fwd_err_fail(err, FWD_R_NO_ROLLOUT, NULL, 0, "",
					    "rollout %s finished while this abort ran; rollout %s "
					    "began since and is left alone",
					    id, r->id);
		if (rc && !id[0] &&
		    (err->reason_code == FWD_R_INVALID_FLEET_KEY ||
		     err->reason_code == FWD_R_FACILITY_MISMATCH))
			return abort_unreadable(e, facility, mod, err);
		if (rc)
			return rc;
		if (r->state == CTL_RO_ABORTING || r->state == CTL_RO_ABORTED ||
		    r->state == CTL_RO_COMPLETED)
			return fwd_err_fail(err, FWD_R_NO_ROLLOUT, NULL, 0, "",
					    "rollout %s is already %s", r->id,
					    ctl_rollout_state_name(r->state));
		if (r->abort_requested)
			return 0;
		r->abort_requested = true;
		rc = write_record(e, r, mod, NULL, ops, 0, false, NULL, err);
		if (rc != -ESTALE)
			return rc;
		snprintf(id, sizeof(id), "%s", r->id);
	}
	return fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, "",
			    "rollout/active kept changing: try again");
}

int ctl_rstore_commit(struct ctl_etcd *e, struct ctl_rollout *r, int64_t *mod_revision,
		      const struct ctl_rstore_leader *leader, const struct ctl_rollout_actions *act,
		      struct fwd_err *err)
{
	struct ctl_etcd_op *ops = calloc(CTL_ROLLOUT_NODES_MAX + 4, sizeof(*ops));
	char(*keys)[200] = calloc(CTL_ROLLOUT_NODES_MAX + 1, sizeof(*keys));
	char *values[2] = {NULL, NULL}; /* pin to table, pin to previous */
	char *desired = NULL, pins[160];
	size_t n = 0, n_pins = 0;
	bool all_away = true; /* every pin op goes back to desired */
	int rc = -ENOMEM;

	if (ops == NULL || keys == NULL)
		goto out;
	for (unsigned i = 0; i < r->n_nodes; i++)
		if (act->pin[i] != CTL_PIN_KEEP) {
			n_pins++;
			all_away &= act->pin[i] != CTL_PIN_TABLE;
		}
	values[0] = dump(json_pack("{s:i, s:s, s:s}", "schema", CTL_ROLLOUT_SCHEMA, "table",
				   r->table, "rollout", r->id));
	values[1] = r->previous[0] ? dump(json_pack("{s:i, s:s, s:s}", "schema", CTL_ROLLOUT_SCHEMA,
						    "table", r->previous, "rollout", r->id))
				   : NULL;
	if (values[0] == NULL || (r->previous[0] && values[1] == NULL))
		goto out;
	ctl_rstore_key(pins, sizeof(pins), r->facility, "pins/");
	if ((act->promote || n_pins > PIN_OPS_MAX) && all_away) {
		/* Only rollouts pin, one at a time: every pin is this one's.
		 * Without its pin a node follows desired (the previous table,
		 * or the new one with this promotion). */
		ops[n++] = (struct ctl_etcd_op){
			.type = CTL_ETCD_OP_DELETE, .key = pins, .flags = CTL_ETCD_PREFIX};
	} else if (n_pins > PIN_OPS_MAX) {
		rc = fwd_err_fail(err, FWD_R_INVALID, NULL, 0, "options.wave",
				  "a wave of more than %d nodes does not fit one etcd transaction",
				  PIN_OPS_MAX);
		goto out;
	} else {
		for (unsigned i = 0; i < r->n_nodes; i++) {
			const char *v;

			if (act->pin[i] == CTL_PIN_KEEP)
				continue;
			ctl_rstore_key(keys[i], sizeof(keys[i]), r->facility, "pins/%s",
				       r->nodes[i].name);
			if (act->pin[i] == CTL_PIN_DELETE ||
			    (act->pin[i] == CTL_PIN_PREVIOUS && values[1] == NULL)) {
				ops[n++] = (struct ctl_etcd_op){.type = CTL_ETCD_OP_DELETE,
								.key = keys[i]};
				continue;
			}
			v = act->pin[i] == CTL_PIN_TABLE ? values[0] : values[1];
			ops[n++] = (struct ctl_etcd_op){.type = CTL_ETCD_OP_PUT,
							.key = keys[i],
							.value = v,
							.value_len = strlen(v)};
		}
	}
	if (act->promote) {
		ctl_rstore_key(keys[CTL_ROLLOUT_NODES_MAX], sizeof(keys[0]), r->facility,
			       "desired");
		desired = dump(json_pack("{s:i, s:s, s:s, s:s, s:I}", "schema", CTL_ROLLOUT_SCHEMA,
					 "facility", r->facility, "table", r->table, "rollout",
					 r->id, "updated_at", (json_int_t)unix_s(r->updated_at)));
		if (desired == NULL)
			goto out;
		ops[n++] = (struct ctl_etcd_op){.type = CTL_ETCD_OP_PUT,
						.key = keys[CTL_ROLLOUT_NODES_MAX],
						.value = desired,
						.value_len = strlen(desired)};
	}
	rc = write_record(e, r, *mod_revision, leader, ops, n, act->finish, mod_revision, err);
	goto done;
out:
	if (rc == -ENOMEM)
		fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
done:
	free(values[0]);
	free(values[1]);
	free(desired);
	free(ops);
	free(keys);
	return rc;
}

static json_t *bad_key(const struct ctl_etcd_kv *kv, const struct fwd_err *e)
{
	char key[200];

	snprintf(key, sizeof(key), "%.*s", (int)(kv->key_len < 199 ? kv->key_len : 199), kv->key);
	fwd_utf8_clean(key);
	return json_pack("{s:s, s:{s:s, s:s, s:s}}", "key", key, "error", "code",
			 fwd_reason_name(e->reason_code), "path", e->path, "reason", e->reason);
}

json_t *ctl_rstore_history(struct ctl_etcd *e, const char *facility, size_t limit,
			   struct fwd_err *err)
{
	struct ctl_rollout *r = malloc(sizeof(*r));
	struct ctl_etcd_range keys = {0};
	json_t *out = json_array();
	size_t bytes = 0;
	char key[160];

	if (r == NULL || out == NULL) {
		fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		goto fail;
	}
	/* The keys first, then the records newest first, one a read, until
	 * @limit or CTL_RSTORE_HISTORY_BYTES: one range of every record went
	 * past the client's reply bound once a big facility had finished a few
	 * dozen rollouts, and history and fleet apply --wait failed for good. */
	ctl_rstore_key(key, sizeof(key), facility, "rollout/history/");
	if (ctl_etcd_range(e, key, CTL_ETCD_PREFIX | CTL_ETCD_KEYS_ONLY, 0, 0, &keys, err))
		goto fail;
	/* Ids begin with their creation time in ms: key order is time order. */
	for (size_t i = keys.count;
	     i-- > 0 && json_array_size(out) < limit && bytes < CTL_RSTORE_HISTORY_BYTES;) {
		struct ctl_etcd_range one = {0};
		struct fwd_err pe = {0};
		char k[200];

		snprintf(k, sizeof(k), "%.*s", (int)keys.kvs[i].key_len, keys.kvs[i].key);
		if (ctl_etcd_range(e, k, 0, 0, 1, &one, err))
			goto fail;
		if (one.count == 0) { /* pruned since */
			ctl_etcd_range_free(&one);
			continue;
		}
		bytes += one.kvs[0].value_len;
		if (ctl_rollout_parse(one.kvs[0].value, one.kvs[0].value_len, r, &pe) == 0)
			json_array_append_new(out, ctl_rollout_to_json(r));
		else
			json_array_append_new(out, bad_key(&one.kvs[0], &pe));
		ctl_etcd_range_free(&one);
	}
	ctl_etcd_range_free(&keys);
	free(r);
	return out;
fail:
	ctl_etcd_range_free(&keys);
	json_decref(out);
	free(r);
	return NULL;
}

int ctl_rstore_prune_history(struct ctl_etcd *e, const char *facility, size_t keep,
			     struct fwd_err *err)
{
	struct ctl_etcd_range keys = {0};
	char key[160];
	int n = 0, rc;

	ctl_rstore_key(key, sizeof(key), facility, "rollout/history/");
	if ((rc = ctl_etcd_range(e, key, CTL_ETCD_PREFIX | CTL_ETCD_KEYS_ONLY, 0, 0, &keys, err)))
		return rc;
	/* At most CTL_RSTORE_PRUNE_MAX deletes a finish: the driver's thread
	 * keeps its lease alive between steps, and the first finish after an
	 * upgrade may find thousands of records (the rest go at later ones). */
	for (size_t i = 0; i + keep < keys.count && n < CTL_RSTORE_PRUNE_MAX; i++) {
		char k[200];

		snprintf(k, sizeof(k), "%.*s", (int)keys.kvs[i].key_len, keys.kvs[i].key);
		if ((rc = ctl_etcd_delete(e, k, 0, NULL, err)) < 0)
			break;
		n += rc;
		rc = 0;
	}
	ctl_etcd_range_free(&keys);
	return rc ? rc : n;
}

/* One key's value alone at @rev into @v (its one kv), 0; or -errno with
 * @err: FWD_R_ETCD_ERROR when etcd cannot hand it over within the client's
 * bound, FWD_R_INVALID_FLEET_KEY when it is gone at @rev, else etcd's. */
static int value_alone(struct ctl_etcd *e, const struct ctl_etcd_kv *kv, int64_t rev,
		       struct ctl_etcd_range *v, struct fwd_err *err)
{
	char *key = malloc(kv->key_len + 1);
	int rc;

	if (key == NULL)
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	memcpy(key, kv->key, kv->key_len);
	key[kv->key_len] = '\0';
	rc = ctl_etcd_range(e, key, 0, rev, 1, v, err);
	free(key);
	if (rc == 0 && v->count != 1) {
		ctl_etcd_range_free(v);
		return fwd_err_fail(err, FWD_R_INVALID_FLEET_KEY, NULL, 0, "",
				    "gone at revision %lld", (long long)rev);
	}
	if (rc && err->reason_code == FWD_R_ETCD_ERROR)
		snprintf(err->path, sizeof(err->path), "value");
	return rc;
}

int ctl_rstore_nodes(struct ctl_etcd *e, const char *facility, struct ctl_rollout_node *nodes,
		     size_t max, json_t **view, struct fwd_err *err)
{
	struct ctl_etcd_range rg = {0};
	struct ctl_rollout_node *tmp = malloc(sizeof(*tmp));
	char key[160];
	size_t plen;
	int n = 0, rc, alone = 0;

	if (view)
		*view = json_array();
	if (tmp == NULL || (view && *view == NULL)) {
		rc = fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		goto fail;
	}
	ctl_rstore_key(key, sizeof(key), facility, "nodes/");
	plen = strlen(key);
	/* Values are hostile and etcd has no bound per value: a few reports
	 * of megabytes passed the client's reply bound, and fleet status and
	 * every rollout stopped (a hostile probe). Then, as for pins, the
	 * keys are read alone and each value by itself, so one bad report
	 * costs only itself (unreadable, which holds a rollout back). */
	rc = ctl_etcd_range(e, key, CTL_ETCD_PREFIX, 0, 0, &rg, err);
	if (rc && err->reason_code == FWD_R_ETCD_ERROR) {
		alone = 1;
		rc = ctl_etcd_range(e, key, CTL_ETCD_PREFIX | CTL_ETCD_KEYS_ONLY, 0, 0, &rg, err);
	}
	if (rc)
		goto fail;
	for (size_t i = 0; i < rg.count; i++) {
		const struct ctl_etcd_kv *kv = &rg.kvs[i];
		struct ctl_etcd_range v = {0};
		struct fwd_err pe = {0};
		const char *value = kv->value;
		size_t value_len = kv->value_len;
		int ok;

		if (alone) {
			rc = value_alone(e, kv, rg.revision, &v, &pe);
			if (rc && pe.reason_code != FWD_R_ETCD_ERROR &&
			    pe.reason_code != FWD_R_INVALID_FLEET_KEY) {
				*err = pe;
				ctl_etcd_range_free(&rg);
				goto fail;
			}
			value = rc ? NULL : v.kvs[0].value;
			value_len = rc ? 0 : v.kvs[0].value_len;
			rc = 0;
		}
		ok = value && ctl_rollout_node_parse(value, value_len, tmp, &pe) == 0;
		/* Every node writes its report on its lease, which takes the
		 * report when the node is gone: a key on none is a leftover or
		 * written by hand, and was listed as a live node for good (a
		 * hostile probe's ghost was picked as a rollout's canary). */
		if (ok && kv->lease == 0) {
			fwd_err_fail(&pe, FWD_R_INVALID_FLEET_KEY, NULL, 0, "lease",
				     "the report is on no lease: no node writes it so (a leftover "
				     "or hand-written key; delete it)");
			ok = 0;
		}

		if (ok && (kv->key_len <= plen || strcmp(kv->key + plen, tmp->name) != 0)) {
			fwd_err_fail(&pe, FWD_R_INVALID_FLEET_KEY, NULL, 0, "node",
				     "%s is not the node its key names", tmp->name);
			ok = 0;
		}
		if (view) {
			json_t *j = ok ? fwd_json_loadb(value, value_len, 0, NULL) : NULL;

			json_array_append_new(*view, j ? j : bad_key(kv, &pe));
		}
		ctl_etcd_range_free(&v);
		if (ok && nodes && (size_t)n < max) {
			nodes[n++] = *tmp;
		} else if (!ok && nodes && (size_t)n < max) {
			/* Kept, named by its key: the rollout must not plan
			 * around a node it cannot read, as if it were absent. */
			struct ctl_rollout_node *u = &nodes[n++];
			size_t nl = kv->key_len > plen ? kv->key_len - plen : 0;

			char raw[CTL_ROLLOUT_NAME_MAX + 1];

			memset(u, 0, sizeof(*u));
			snprintf(raw, sizeof(raw), "%.*s",
				 (int)(nl < sizeof(raw) - 1 ? nl : sizeof(raw) - 1),
				 kv->key + plen);
			fwd_utf8_clean(raw);
			/* The key's name when it may name a node; else none, and
			 * the key in the reason ("nodes/N1.old"). */
			if (nl < sizeof(raw) && ctl_rollout_node_name_ok(raw))
				snprintf(u->name, sizeof(u->name), "%s", raw);
			u->unreadable = true;
			snprintf(u->unreadable_why, sizeof(u->unreadable_why),
				 "%s%.40s%s%.40s%s%.100s", u->name[0] ? "" : "nodes/",
				 u->name[0] ? "" : raw, u->name[0] ? "" : ": ", pe.path,
				 pe.path[0] ? ": " : "", pe.reason);
			fwd_utf8_clean(u->unreadable_why);
		}
	}
	ctl_etcd_range_free(&rg);
	free(tmp);
	return n;
fail:
	if (view) {
		json_decref(*view);
		*view = NULL;
	}
	free(tmp);
	return rc;
}

/* ---- pins ---------------------------------------------------------------- */

const char *ctl_pin_owner_name(enum ctl_pin_owner o)
{
	static const char *const names[] = {"active", "finished", "unknown", "operator",
					    "unreadable"};

	return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "?";
}

json_t *ctl_rstore_pin_json(const struct ctl_rstore_pin *p)
{
	/* "node" null: the key names none (the reason in "error"). */
	return json_pack("{s:s?, s:s?, s:s?, s:I, s:s, s:b, s:s?}", "node",
			 p->node[0] ? p->node : NULL, "table", p->table[0] ? p->table : NULL,
			 "rollout", p->rollout[0] ? p->rollout : NULL, "revision",
			 (json_int_t)p->mod_revision, "owner", ctl_pin_owner_name(p->owner),
			 "stray", ctl_rstore_pin_stray(p), "error", p->why[0] ? p->why : NULL);
}

/* A rollout id as records carry them, [a-z0-9-]{1,CTL_ROLLOUT_ID_MAX}: only
 * such an id is looked up (it becomes part of a key). */
static bool id_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= CTL_ROLLOUT_ID_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

int ctl_rstore_active_id(struct ctl_etcd *e, const char *facility, int64_t revision,
			 int64_t *create_rev, char id[CTL_ROLLOUT_ID_MAX + 1], struct fwd_err *err)
{
	struct ctl_etcd_range rg = {0};
	char key[160];
	json_t *j;
	const char *v;
	int rc;

	ctl_rstore_key(key, sizeof(key), facility, "rollout/active");
	if ((rc = ctl_etcd_range(e, key, CTL_ETCD_KEYS_ONLY, revision, 1, &rg, err)))
		return rc;
	if (rg.count == 0) {
		ctl_etcd_range_free(&rg);
		*create_rev = 0;
		id[0] = '\0';
		return 0;
	}
	if (rg.kvs[0].create_revision == *create_rev && id[0]) {
		ctl_etcd_range_free(&rg);
		return 0;
	}
	*create_rev = rg.kvs[0].create_revision;
	ctl_etcd_range_free(&rg);
	id[0] = '\0';
	if ((rc = ctl_etcd_range(e, key, 0, revision, 1, &rg, err)))
		return rc;
	/* Duplicate keys refused, as the driver's parser does: a record with
	 * two "id"s must not name one rollout here and another there. */
	j = rg.count ? fwd_json_loadb(rg.kvs[0].value, rg.kvs[0].value_len, JSON_REJECT_DUPLICATES,
				      NULL)
		     : NULL;
	v = json_string_value(json_object_get(j, "id"));
	if (v && id_ok(v))
		snprintf(id, CTL_ROLLOUT_ID_MAX + 1, "%s", v);
	else if (rg.count)
		rc = fwd_err_fail(err, FWD_R_INVALID_FLEET_KEY, NULL, 0, "id",
				  "%s has no readable \"id\" (or holds a key twice): which "
				  "rollout owns a pin cannot be told",
				  key);
	json_decref(j);
	ctl_etcd_range_free(&rg);
	return rc;
}

/* The node a pins/N key names into @p->node, or "" with @p unreadable and
 * the key in @p->why: a key that is no node name is never cut into one (a
 * 65-character key would become another node's 64-character name, and an
 * unpin would delete that one). */
static bool pin_key(const char *key, size_t key_len, size_t plen, struct ctl_rstore_pin *p)
{
	size_t nl = key_len > plen ? key_len - plen : 0;
	char shown[64];

	p->key_hash = fwd_hash64(key, key_len);
	if (nl >= 1 && nl <= CTL_ROLLOUT_NAME_MAX && !memchr(key + plen, '\0', nl)) {
		memcpy(p->node, key + plen, nl);
		p->node[nl] = '\0';
		if (ctl_rollout_node_name_ok(p->node))
			return true;
	}
	p->node[0] = '\0';
	snprintf(shown, sizeof(shown), "%.*s", (int)(nl < 48 ? nl : 48), key + plen);
	fwd_utf8_clean(shown);
	p->owner = CTL_PIN_OWNER_UNREADABLE;
	snprintf(p->why, sizeof(p->why),
		 "key: pins/%s%s (%zu bytes) is no node name (1..%d of a-z 0-9 -): left alone",
		 shown, nl > 48 ? "..." : "", nl, CTL_ROLLOUT_NAME_MAX);
	return false;
}

/* One pin's value into @p (hostile: checked as the node checks it). */
static void parse_pin(const char *value, size_t value_len, struct ctl_rstore_pin *p)
{
	json_t *j, *v;

	p->owner = CTL_PIN_OWNER_UNREADABLE;
	if (value_len > CTL_RSTORE_PIN_BYTES) {
		snprintf(p->why, sizeof(p->why), "value: %zu bytes (a pin is at most %u)",
			 value_len, CTL_RSTORE_PIN_BYTES);
		return;
	}
	j = fwd_json_loadb(value, value_len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j)) {
		snprintf(p->why, sizeof(p->why), "not a JSON object");
		goto out;
	}
	/* The rollout it names, even when the rest is unreadable (another
	 * schema): an unpin must know whether the active rollout may own it. */
	v = json_object_get(j, "rollout");
	if (json_is_string(v) && json_string_length(v) > 0 &&
	    json_string_length(v) < sizeof(p->rollout)) {
		snprintf(p->rollout, sizeof(p->rollout), "%s", json_string_value(v));
		fwd_utf8_clean(p->rollout);
		p->rollout_known = true;
	}
	v = json_object_get(j, "schema");
	if (!json_is_integer(v) || json_integer_value(v) != CTL_ROLLOUT_SCHEMA) {
		snprintf(p->why, sizeof(p->why), "schema: not %d", CTL_ROLLOUT_SCHEMA);
		goto out;
	}
	/* Schema 1: a rollout's pin names it; null or none is a hand's. */
	v = json_object_get(j, "rollout");
	p->rollout_known = p->rollout[0] || v == NULL || json_is_null(v);
	v = json_object_get(j, "table");
	if (!json_is_string(v) || json_string_length(v) != 16 ||
	    strspn(json_string_value(v), "0123456789abcdef") != 16) {
		snprintf(p->why, sizeof(p->why), "table: not 16 lowercase hex digits");
		goto out;
	}
	v = json_object_get(j, "rollout");
	if (v && !json_is_null(v) && (!json_is_string(v) || !p->rollout[0])) {
		snprintf(p->why, sizeof(p->why), "rollout: not null or an id of 1..64 characters");
		goto out;
	}
	memcpy(p->table, json_string_value(json_object_get(j, "table")), 17);
	p->owner = p->rollout[0] ? CTL_PIN_OWNER_UNKNOWN : CTL_PIN_OWNER_OPERATOR;
out:
	json_decref(j);
}

/* Whether rollouts are in the history, as one pass has looked them up: a
 * thousand pins left by one rollout cost one read, not a thousand. */
struct hist_memo {
	struct {
		char id[CTL_ROLLOUT_ID_MAX + 1];
		bool finished;
	} * ids;
	size_t n, cap;
};

/* The owner of @p, a readable pin naming a rollout, at @rev: the active one,
 * one in the history, or unknown. With an unreadable active record nothing
 * is called finished (it might be that very rollout). */
static int classify(struct ctl_etcd *e, const char *facility, int64_t rev, const char *active,
		    bool active_unreadable, struct hist_memo *memo, struct ctl_rstore_pin *p,
		    struct fwd_err *err)
{
	struct ctl_etcd_range rg = {0};
	char key[200];
	bool finished;
	int rc;

	if (p->owner != CTL_PIN_OWNER_UNKNOWN)
		return 0;
	if (active[0] && strcmp(active, p->rollout) == 0) {
		p->owner = CTL_PIN_OWNER_ACTIVE;
		return 0;
	}
	if (active_unreadable || !id_ok(p->rollout))
		return 0;
	for (size_t i = 0; memo && i < memo->n; i++)
		if (strcmp(memo->ids[i].id, p->rollout) == 0) {
			if (memo->ids[i].finished)
				p->owner = CTL_PIN_OWNER_FINISHED;
			return 0;
		}
	ctl_rstore_key(key, sizeof(key), facility, "rollout/history/%s", p->rollout);
	if ((rc = ctl_etcd_range(e, key, CTL_ETCD_KEYS_ONLY, rev, 1, &rg, err)))
		return rc;
	finished = rg.count > 0;
	ctl_etcd_range_free(&rg);
	if (finished)
		p->owner = CTL_PIN_OWNER_FINISHED;
	if (memo && memo->n < memo->cap) {
		snprintf(memo->ids[memo->n].id, sizeof(memo->ids[0].id), "%s", p->rollout);
		memo->ids[memo->n++].finished = finished;
	}
	return 0;
}

/* Read one pin's value alone at @rev (the values of all did not fit one
 * reply). A value etcd cannot hand over within the client's bound makes
 * that pin unreadable; etcd not there fails the read. */
static int pin_value_alone(struct ctl_etcd *e, const struct ctl_etcd_kv *kv, int64_t rev,
			   struct ctl_rstore_pin *p, struct fwd_err *err)
{
	struct ctl_etcd_range v = {0};
	struct fwd_err ve = {0};
	int rc = value_alone(e, kv, rev, &v, &ve);

	if (rc && ve.reason_code != FWD_R_ETCD_ERROR && ve.reason_code != FWD_R_INVALID_FLEET_KEY) {
		*err = ve;
		return rc;
	}
	p->owner = CTL_PIN_OWNER_UNREADABLE;
	if (rc && ve.reason_code == FWD_R_INVALID_FLEET_KEY)
		snprintf(p->why, sizeof(p->why), "value: gone at revision %lld", (long long)rev);
	else if (rc)
		snprintf(p->why, sizeof(p->why), "value: cannot be read: %.150s", ve.reason);
	else
		parse_pin(v.kvs[0].value, v.kvs[0].value_len, p);
	ctl_etcd_range_free(&v);
	return 0;
}

int ctl_rstore_pins(struct ctl_etcd *e, const char *facility, struct ctl_rstore_pin *pins,
		    size_t max, struct ctl_rstore_pinset *set, struct fwd_err *err)
{
	struct ctl_etcd_range rg = {0};
	struct fwd_err ae = {0};
	struct hist_memo memo = {.ids = calloc(max ? max : 1, sizeof(*memo.ids)), .cap = max};
	char key[160];
	size_t plen, n = 0;
	int rc;

	set->active_unreadable = set->truncated = set->values_alone = false;
	if (memo.ids == NULL)
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	ctl_rstore_key(key, sizeof(key), facility, "pins/");
	plen = strlen(key);
	/* At most @max keys, with their values in one reply. Values are
	 * hostile and etcd has no bound per value: a few of megabytes pass
	 * the client's reply bound, and then the keys are read alone and
	 * each value by itself, so one bad pin costs only itself. */
	rc = ctl_etcd_range(e, key, CTL_ETCD_PREFIX, 0, max, &rg, err);
	if (rc && err->reason_code == FWD_R_ETCD_ERROR) {
		set->values_alone = true;
		rc = ctl_etcd_range(e, key, CTL_ETCD_PREFIX | CTL_ETCD_KEYS_ONLY, 0, max, &rg, err);
	}
	if (rc)
		goto out;
	set->truncated = rg.more;
	/* rollout/active at the pins' revision: a wave's pins and its record
	 * change in one transaction, so one revision never shows a rollout's
	 * pin without its record. */
	rc = ctl_rstore_active_id(e, facility, rg.revision, &set->active_create, set->active, &ae);
	if (rc && ae.reason_code != FWD_R_INVALID_FLEET_KEY) {
		*err = ae;
		goto out;
	}
	set->active_unreadable = rc != 0;
	rc = 0;
	for (size_t i = 0; i < rg.count && n < max; i++) {
		struct ctl_rstore_pin *p = &pins[n++];

		memset(p, 0, sizeof(*p));
		p->mod_revision = rg.kvs[i].mod_revision;
		if (!pin_key(rg.kvs[i].key, rg.kvs[i].key_len, plen, p))
			continue;
		if (set->values_alone)
			rc = pin_value_alone(e, &rg.kvs[i], rg.revision, p, err);
		else
			parse_pin(rg.kvs[i].value, rg.kvs[i].value_len, p);
		if (rc == 0)
			rc = classify(e, facility, rg.revision, set->active, set->active_unreadable,
				      &memo, p, err);
		if (rc)
			goto out;
	}
out:
	ctl_etcd_range_free(&rg);
	free(memo.ids);
	return rc ? rc : (int)n;
}

/* Whether rollout/active is still the one created at @active_create (0:
 * none). A pin gone after a failed delete is this unpin's own only then:
 * a rollout started or finished meanwhile may have re-pinned the node and
 * removed that pin itself. */
static bool same_active(struct ctl_etcd *e, const char *facility, int64_t active_create)
{
	struct ctl_etcd_range rg = {0};
	struct fwd_err err = {0};
	char akey[160];
	bool same;

	ctl_rstore_key(akey, sizeof(akey), facility, "rollout/active");
	if (ctl_etcd_range(e, akey, CTL_ETCD_KEYS_ONLY, 0, 1, &rg, &err))
		return false;
	same = rg.count ? rg.kvs[0].create_revision == active_create : active_create == 0;
	ctl_etcd_range_free(&rg);
	return same;
}

int ctl_rstore_unpin(struct ctl_etcd *e, const char *facility, const char *node, int64_t expect_mod,
		     bool only_finished, const struct ctl_rstore_leader *leader,
		     struct ctl_rstore_pinset *cache, struct ctl_rstore_pin *out,
		     struct fwd_err *err)
{
	struct ctl_rstore_pinset own = {0};
	char pkey[200], akey[160], lkey[160];
	size_t plen;

	if (cache == NULL)
		cache = &own;
	ctl_rstore_key(pkey, sizeof(pkey), facility, "pins/");
	plen = strlen(pkey);
	if (!ctl_rollout_node_name_ok(node))
		return fwd_err_fail(err, FWD_R_BAD_REQUEST, NULL, 0, "node",
				    "a node is 1..%d of a-z 0-9 -", CTL_ROLLOUT_NAME_MAX);
	ctl_rstore_key(pkey, sizeof(pkey), facility, "pins/%s", node);
	ctl_rstore_key(akey, sizeof(akey), facility, "rollout/active");
	/* A rollout stepping meanwhile fails the compare: read again. */
	bool compared = false; /* a delete of the pin read failed its compare */

	for (int attempt = 0; attempt < 5; attempt++) {
		struct ctl_etcd_range rg = {0};
		struct ctl_etcd_txn_result res = {0};
		struct ctl_etcd_cmp cmp[4];
		struct ctl_etcd_op del = {.type = CTL_ETCD_OP_DELETE, .key = pkey};
		struct fwd_err ae = {0};
		size_t ncmp = 0;
		int rc;

		struct fwd_err ve = {0};

		/* The value, bounded by the client's reply bound. One too large
		 * to hand over (etcd's own error) is unreadable: its key alone
		 * gives the revision the delete compares, so a hostile value
		 * cannot keep its pin from being removed. */
		rc = ctl_etcd_range(e, pkey, 0, 0, 1, &rg, &ve);
		if (rc && ve.reason_code == FWD_R_ETCD_ERROR)
			rc = ctl_etcd_range(e, pkey, CTL_ETCD_KEYS_ONLY, 0, 1, &rg, err);
		else if (rc)
			*err = ve;
		if (rc)
			return rc;
		/* Gone since the delete that failed its compare: that delete's
		 * own, applied by a member that did not answer (its retry on the
		 * next member met it), or another's. Either way the node is
		 * unpinned, as asked; @out still describes the pin removed. */
		if (rg.count == 0 && compared && same_active(e, facility, cache->active_create)) {
			ctl_etcd_range_free(&rg);
			return 0;
		}
		if (rg.count == 0) {
			ctl_etcd_range_free(&rg);
			return fwd_err_fail(err, FWD_R_NO_PIN, NULL, 0, "node",
					    "node %s has no pin: it follows desired", node);
		}
		memset(out, 0, sizeof(*out));
		out->mod_revision = rg.kvs[0].mod_revision;
		pin_key(rg.kvs[0].key, rg.kvs[0].key_len, plen, out);
		if (ve.reason[0]) {
			out->owner = CTL_PIN_OWNER_UNREADABLE;
			snprintf(out->why, sizeof(out->why), "value: cannot be read: %.150s",
				 ve.reason);
		} else
			parse_pin(rg.kvs[0].value, rg.kvs[0].value_len, out);
		rc = ctl_rstore_active_id(e, facility, rg.revision, &cache->active_create,
					  cache->active, &ae);
		if (rc && ae.reason_code != FWD_R_INVALID_FLEET_KEY) {
			*err = ae;
			ctl_etcd_range_free(&rg);
			return rc;
		}
		if (rc == 0)
			rc = classify(e, facility, rg.revision, cache->active, false, NULL, out,
				      err);
		else if (out->owner == CTL_PIN_OWNER_UNKNOWN ||
			 out->owner == CTL_PIN_OWNER_UNREADABLE) {
			/* It may be that rollout's: not without its record. */
			ctl_etcd_range_free(&rg);
			*err = ae;
			return -EINVAL;
		} else
			rc = 0;
		ctl_etcd_range_free(&rg);
		if (rc)
			return rc;
		if (expect_mod && out->mod_revision != expect_mod)
			return fwd_err_fail(err, FWD_R_STALE_GENERATION, NULL, 0, "node",
					    "the pin of node %s changed since it was read", node);
		if (out->owner == CTL_PIN_OWNER_ACTIVE)
			return fwd_err_fail(err, FWD_R_ROLLOUT_IN_PROGRESS, NULL, 0, "node",
					    "node %s is pinned by rollout %s in progress: abort it "
					    "(regionctl fleet abort) to send the node back",
					    node, out->rollout);
		/* An unreadable pin (another schema, a damaged value) may be
		 * the active rollout's own: only one that names another
		 * rollout goes while a rollout is active. */
		if (out->owner == CTL_PIN_OWNER_UNREADABLE && cache->active_create &&
		    (!out->rollout_known || strcmp(out->rollout, cache->active) == 0))
			return fwd_err_fail(
				err, FWD_R_ROLLOUT_IN_PROGRESS, NULL, 0, "node",
				"the pin of node %s cannot be read (%s) and rollout %s "
				"is active: it may be that rollout's; unpin it once the "
				"rollout has finished, or abort it",
				node, out->why, cache->active);
		if (only_finished && out->owner != CTL_PIN_OWNER_FINISHED)
			return fwd_err_fail(err, FWD_R_STALE_GENERATION, NULL, 0, "node",
					    "the pin of node %s is not a finished rollout's", node);
		cmp[ncmp++] = (struct ctl_etcd_cmp){.key = pkey,
						    .target = CTL_ETCD_CMP_MOD,
						    .result = CTL_ETCD_EQUAL,
						    .number = out->mod_revision};
		cmp[ncmp++] = (struct ctl_etcd_cmp){.key = akey,
						    .target = CTL_ETCD_CMP_CREATE,
						    .result = CTL_ETCD_EQUAL,
						    .number = cache->active_create};
		ncmp += leader_cmps(facility, leader, lkey, &cmp[ncmp]);
		rc = ctl_etcd_txn(e, cmp, ncmp, &del, 1, NULL, 0, &res, err);
		ctl_etcd_range_free(&res.range);
		if (rc)
			return rc;
		if (res.succeeded)
			return 0;
		compared = true;
		if (expect_mod) {
			struct ctl_etcd_range now = {0};

			/* As above: the pin read, gone. */
			if (ctl_etcd_range(e, pkey, CTL_ETCD_KEYS_ONLY, 0, 1, &now, err) == 0 &&
			    now.count == 0 && same_active(e, facility, cache->active_create)) {
				ctl_etcd_range_free(&now);
				return 0;
			}
			ctl_etcd_range_free(&now);
			return fwd_err_fail(err, FWD_R_STALE_GENERATION, NULL, 0, "node",
					    "the pin of node %s, or the rollout, changed meanwhile",
					    node);
		}
	}
	return fwd_err_fail(err, FWD_R_ETCD_ERROR, NULL, 0, "",
			    "the pin or rollout/active kept changing: try again");
}
