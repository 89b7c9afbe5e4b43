#include "ctl_state.h"
#include "fwd_log.h"

#include "ctl_confirm.h"
#include "ctl_traffic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fwd_class.h"
#include "fwd_doc.h"
#include "fwd_hs.h"
#include "fwd_residency.h"
#include "fwd_stages.h"

/* One buffer, written atomically and durably (fwd_write_atomic). */
static int write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
	struct iovec part = {.iov_base = (void *)data, .iov_len = len};

	return fwd_write_atomic(dir, name, &part, 1);
}

static void gen_file(char *buf, size_t len, uint64_t id)
{
	snprintf(buf, len, "gen-%" PRIu64 ".doc", id);
}

static void hexhash(uint64_t h, char out[17])
{
	snprintf(out, 17, "%016" PRIx64, h);
}

static void unlink_doc(const struct ctl_state *st, uint64_t id);

static json_t *gen_record(const struct ctl_gen *g)
{
	char h[17], f[64];

	hexhash(g->hash, h);
	gen_file(f, sizeof(f), g->id);
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)g->id, "time",
			 (json_int_t)g->time, "hash", h, "author", g->author, "comment", g->comment,
			 "by", g->by, "file", f);
}

int ctl_state_save(struct ctl_state *st, struct fwd_err *e)
{
	json_t *root = json_object(), *gens = json_array();
	char *text;
	int rc;

	for (unsigned i = 0; i < st->nhist; i++)
		json_array_append_new(gens, gen_record(&st->hist[i]));
	json_object_set_new(root, "next_id", json_integer((json_int_t)st->next_id));
	json_object_set_new(root, "generations", gens);
	json_object_set_new(root, "pending",
			    st->has_pending ? gen_record(&st->pending) : json_null());
	json_object_set_new(root, "confirm", ctl_confirm_json(st));
	text = json_dumps(root, JSON_INDENT(1));
	json_decref(root);
	if (text == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return -ENOMEM;
	}
	rc = write_atomic(st->dir, "history.json", text, strlen(text));
	free(text);
	if (rc) {
		fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "",
			     "cannot write %s/history.json: %s", st->dir, strerror(-rc));
		return rc;
	}
	/* A history without them is durable now: their documents may go. */
	for (unsigned i = 0; i < st->ngone; i++)
		unlink_doc(st, st->gone[i]);
	st->ngone = 0;
	return 0;
}

static int referenced(const struct ctl_state *st, uint64_t id)
{
	return ctl_state_find(st, id) != NULL || (st->has_pending && st->pending.id == id);
}

/* Every document in the state directory must be one the history names.
 * The one exception is the document of an apply killed between writing it
 * and writing its write-ahead record: it carries the next id, it never ran,
 * and it is removed. Any other stranger means the directory was edited or
 * mixed up: corrupt, and nothing is deleted. */
static int check_documents(struct ctl_state *st, uint64_t disk_next_id, struct fwd_err *e)
{
	DIR *d = opendir(st->dir);
	struct dirent *de;
	int rc = 0;

	while (d && rc == 0 && (de = readdir(d)) != NULL) {
		uint64_t id;
		char tail[8], p[512];

		if (sscanf(de->d_name, "gen-%" SCNu64 ".%4s", &id, tail) != 2 ||
		    strcmp(tail, "doc") || referenced(st, id))
			continue;
		snprintf(p, sizeof(p), "%s/%s", st->dir, de->d_name);
		if (id == disk_next_id) {
			unlink(p);
			continue;
		}
		rc = fwd_err_fail(e, FWD_R_STATE_CORRUPT, p, 0, "",
				  "generation %" PRIu64 " is not in history.json: the state "
				  "directory was edited or mixed up; regiond will not guess (move "
				  "the directory away to start afresh)",
				  id);
	}
	if (d)
		closedir(d);
	return rc;
}

/* One generation record of history.json, its document read and checked. */
static int load_record(struct ctl_state *st, const json_t *v, const char *where, struct ctl_gen *g,
		       struct fwd_err *e)
{
	const json_t *id = json_object_get(v, "id"), *hash = json_object_get(v, "hash");
	struct fwd_err fe = {0};
	char f[64], path[512], *end = NULL;

	if (!json_is_object(v) || !json_is_integer(id) || json_integer_value(id) < 1 ||
	    !json_is_string(hash) || json_string_length(hash) != 16)
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, "history.json", 0, where,
				    "a generation record needs an id >= 1 and a 16-digit hash");
	memset(g, 0, sizeof(*g));
	g->id = (uint64_t)json_integer_value(id);
	g->hash = strtoull(json_string_value(hash), &end, 16);
	if (*end != '\0')
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, "history.json", 0, where,
				    "hash '%s' is not 16 hex digits", json_string_value(hash));
	g->time = json_integer_value(json_object_get(v, "time"));
	snprintf(g->author, sizeof(g->author), "%s",
		 json_string_value(json_object_get(v, "author")) ?: "");
	snprintf(g->comment, sizeof(g->comment), "%s",
		 json_string_value(json_object_get(v, "comment")) ?: "");
	/* absent in records written before it was kept */
	snprintf(g->by, sizeof(g->by), "%s", json_string_value(json_object_get(v, "by")) ?: "");
	gen_file(f, sizeof(f), g->id);
	snprintf(path, sizeof(path), "%s/%s", st->dir, f);
	if (fwd_read_file(path, &g->doc, &g->len, &fe) || fwd_hash64(g->doc, g->len) != g->hash)
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "",
				    "missing or does not match its hash in history.json");
	return 0;
}

int ctl_state_add_ext(struct ctl_state *st, const struct ctl_ext *x)
{
	if (st->next >= CTL_MAX_EXT)
		return -ENOSPC;
	st->ext[st->next++] = *x;
	return 0;
}

const struct ctl_ext *ctl_state_ext(const struct ctl_state *st, const char *name)
{
	for (unsigned i = 0; i < st->next; i++)
		if (strcmp(st->ext[i].name, name) == 0)
			return &st->ext[i];
	return NULL;
}

/* The commit-confirm record. It names the current generation while one
 * awaits confirmation; an older one when regiond stopped between recording
 * the automatic revert and clearing the record (the revert happened: the
 * record is spent). Anything else, or a revert target the history does not
 * hold, is corruption: regiond will not guess what to revert to. */
static int load_confirm(struct ctl_state *st, const json_t *cf, const char *path, struct fwd_err *e)
{
	const json_t *g = json_object_get(cf, "generation"), *to = json_object_get(cf, "revert_to"),
		     *dl = json_object_get(cf, "deadline");
	const struct ctl_gen *cur = st->nhist ? &st->hist[st->nhist - 1] : NULL;
	uint64_t gen;

	if (!json_is_object(cf) || !json_is_integer(g) || !json_is_integer(to) ||
	    !json_is_integer(dl) || json_integer_value(g) < 1)
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "confirm",
				    "needs 'generation', 'revert_to' and 'deadline' (integers)");
	gen = (uint64_t)json_integer_value(g);
	if (cur && gen < cur->id)
		return 0;
	if (cur == NULL || gen > cur->id)
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "confirm.generation",
				    "generation %" PRIu64 " is not in the history", gen);
	if (ctl_state_find(st, (uint64_t)json_integer_value(to)) == NULL ||
	    (uint64_t)json_integer_value(to) == gen)
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "confirm.revert_to",
				    "generation %" PRIu64 " to revert to is not in the history",
				    (uint64_t)json_integer_value(to));
	st->confirm_gen = gen;
	st->revert_to = (uint64_t)json_integer_value(to);
	st->confirm_deadline = json_integer_value(dl);
	return 0;
}

/* Read history.json strictly: anything it does not say exactly as regiond
 * writes it stops regiond, naming the file and what is wrong; regiond never
 * reverts or deletes on a guess. */
static int load_history(struct ctl_state *st, const char *path, struct fwd_err *e)
{
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je), *gens, *v, *cf, *pend,
	       *nid;
	uint64_t disk_next;
	size_t i;
	int rc = -EINVAL;

	gens = json_object_get(root, "generations");
	nid = json_object_get(root, "next_id");
	if (root == NULL || !json_is_array(gens) || !json_is_integer(nid) ||
	    json_integer_value(nid) < 1) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, root ? 0 : (uint32_t)je.line, "", "%s",
			     root ? "needs 'generations' (a list) and 'next_id' (>= 1)" : je.text);
		goto out;
	}
	disk_next = (uint64_t)json_integer_value(nid);
	st->hist = calloc(json_array_size(gens) + 1, sizeof(*st->hist));
	if (st->hist == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		goto out;
	}
	json_array_foreach(gens, i, v) {
		struct ctl_gen *g = &st->hist[st->nhist];
		char where[48];

		snprintf(where, sizeof(where), "generations[%zu]", i);
		if (load_record(st, v, where, g, e))
			goto out;
		st->nhist++;
		if (st->nhist > 1 && g->id <= st->hist[st->nhist - 2].id) {
			fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, where,
				     "generation %" PRIu64 " after %" PRIu64 ": ids only grow",
				     g->id, st->hist[st->nhist - 2].id);
			goto out;
		}
	}
	pend = json_object_get(root, "pending");
	if (json_is_object(pend)) {
		if (load_record(st, pend, "pending", &st->pending, e))
			goto out;
		st->has_pending = 1;
	}
	if ((st->nhist && disk_next <= st->hist[st->nhist - 1].id) ||
	    (st->has_pending && disk_next <= st->pending.id)) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "next_id",
			     "%" PRIu64 " is not above every generation's id", disk_next);
		goto out;
	}
	st->next_id = disk_next;
	cf = json_object_get(root, "confirm");
	if (cf != NULL && !json_is_null(cf) && load_confirm(st, cf, path, e))
		goto out;
	if (check_documents(st, disk_next, e))
		goto out;
	if (st->nhist) {
		const struct ctl_gen *cur = &st->hist[st->nhist - 1];

		st->table = ctl_state_validate(st, cur->doc, cur->len, "current", e);
		if (st->table == NULL)
			goto out;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int ctl_state_open(struct ctl_state *st, const char *dir, unsigned keep, struct ctl_dp *dp,
		   struct fwd_err *e)
{
	struct ctl_ext ext[CTL_MAX_EXT];
	unsigned next = st->next;
	char path[512];

	memcpy(ext, st->ext, sizeof(ext));
	memset(st, 0, sizeof(*st));
	memcpy(st->ext, ext, sizeof(ext));
	st->next = next;
	snprintf(st->dir, sizeof(st->dir), "%s", dir);
	st->keep = keep ? keep : 1;
	st->dp = dp;
	pthread_mutex_init(&st->writer, NULL);
	st->dp_timeout_ms = 120000;
	st->next_id = 1;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		fwd_err_fail(e, FWD_R_STATE_DIR, NULL, 0, "", "cannot create %s: %s", dir,
			     strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/history.json", dir);
	if (access(path, F_OK) != 0) /* a fresh state directory */
		return check_documents(st, 1, e) ? -EINVAL : 0;
	return load_history(st, path, e);
}

void ctl_state_close(struct ctl_state *st)
{
	for (unsigned i = 0; i < st->nhist; i++)
		free(st->hist[i].doc);
	free(st->pending.doc);
	free(st->hist);
	fwd_table_free(st->table);
	json_decref(st->dp_report);
	ctl_traffic_free(st->traffic);
	pthread_mutex_destroy(&st->writer);
	memset(st, 0, sizeof(*st));
}

const struct ctl_gen *ctl_state_current(const struct ctl_state *st)
{
	return st->nhist ? &st->hist[st->nhist - 1] : NULL;
}

const struct ctl_gen *ctl_state_find(const struct ctl_state *st, uint64_t id)
{
	for (unsigned i = 0; i < st->nhist; i++)
		if (st->hist[i].id == id)
			return &st->hist[i];
	return NULL;
}

struct fwd_table *ctl_state_validate(const struct ctl_state *st, const char *doc, size_t len,
				     const char *name, struct fwd_err *e)
{
	struct fwd_err fe = {0};
	struct fwd_table *t = fwd_table_parse(doc, len, name, -1, &fe);
	struct fwd_class *c;

	if (t == NULL) {
		*e = fe;
		e->reason_code = FWD_R_INVALID_TABLE;
		return NULL;
	}
	c = fwd_class_build(t);
	if (c == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		fwd_table_free(t);
		return NULL;
	}
	if (fwd_residency_check(t, c, &fe)) {
		*e = fe;
		e->reason_code = FWD_R_RESIDENCY_VIOLATION;
		fwd_class_free(c);
		fwd_table_free(t);
		return NULL;
	}
	fwd_class_free(c);
	fwd_stage("classifier + residency");
	for (unsigned i = 0; i < st->next; i++)
		if (st->ext[i].validate && st->ext[i].validate(st->ext[i].arg, t, e)) {
			fwd_table_free(t);
			return NULL;
		}
	fwd_stage("extensions' validate");
	return t;
}

/* Ask regionfwd to run @doc as generation @id, with the content databases
 * regiond compiled for @t (binary, as compiled) when there are any. */
void ctl_state_write_begin(struct ctl_state *st)
{
	pthread_mutex_lock(&st->writer);
	if (st->lock)
		pthread_mutex_lock(st->lock);
}

void ctl_state_write_end(struct ctl_state *st)
{
	if (st->lock)
		pthread_mutex_unlock(st->lock);
	pthread_mutex_unlock(&st->writer);
}

/* A call to regionfwd from a write (st->writer and *st->lock held): the
 * state lock is let go for the wait, which may last up to the timeout on a
 * hung or busy regionfwd, so reads are served meanwhile; nothing of the
 * state changes while it is let go (only writers change it, and this one
 * holds st->writer). */
static int dp_call(struct ctl_state *st, unsigned op, const ProtobufCMessage *req,
		   ProtobufCMessage **reply, int timeout_ms, struct fwd_err *e)
{
	int rc;

	if (st->lock)
		pthread_mutex_unlock(st->lock);
	rc = ctl_dp_call(st->dp, op, req, reply, timeout_ms, e);
	if (st->lock)
		pthread_mutex_lock(st->lock);
	return rc;
}

static int push(struct ctl_state *st, uint64_t id, const char *doc, size_t len,
		const struct fwd_table *t, struct fwd_err *e)
{
	Regionfwd__Ctl__PushRequest req = REGIONFWD__CTL__PUSH_REQUEST__INIT;
	const struct fwd_hs_dbs *dbs = NULL;
	ProtobufCBinaryData db[FWD_CONTENT_FIELDS];
	ProtobufCMessage *reply;
	struct fwd_err de;
	int rc;

	for (unsigned i = 0; t && dbs == NULL && i < st->next; i++)
		if (st->ext[i].content_dbs)
			dbs = st->ext[i].content_dbs(st->ext[i].arg, t);
	req.generation = id;
	req.name = (char *)"regiond";
	/* regionfwd refuses to publish past this; it is set short of our own
	 * wait (by a tenth, at most a second) so that a table published in
	 * time is answered in time, and one answered "nothing changed" is
	 * never published later (docs/architecture.md, push deadline). */
	req.deadline_mono_ns =
		(uint64_t)(ctl_mono_ms() + st->dp_timeout_ms -
			   (st->dp_timeout_ms / 10 < 1000 ? st->dp_timeout_ms / 10 : 1000)) *
		1000000u;
	req.document.data = (uint8_t *)doc;
	req.document.len = len;
	memset(db, 0, sizeof(db));
	if (dbs) {
		/* Copied: the content cache they live in may be refilled by a
		 * read's validate while dp_call lets the state lock go. */
		req.has_content = 1;
		req.content_rules_hash = dbs->rules_hash;
		for (int f = 0; f < FWD_CONTENT_FIELDS; f++) {
			db[f].len = dbs->len[f];
			if (dbs->len[f] && (db[f].data = malloc(dbs->len[f])) == NULL) {
				fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "",
					     "out of memory; nothing changed");
				for (int g = 0; g < f; g++)
					free(db[g].data);
				return -ENOMEM;
			}
			if (dbs->len[f])
				memcpy(db[f].data, dbs->bytes[f], dbs->len[f]);
		}
		req.n_content_db = FWD_CONTENT_FIELDS;
		req.content_db = db;
	}
	rc = dp_call(st, REGIONFWD__CTL__OP__OP_PUSH, &req.base, &reply, st->dp_timeout_ms, &de);
	for (int f = 0; f < FWD_CONTENT_FIELDS; f++)
		free(db[f].data);
	if (rc == 0) {
		protobuf_c_message_free_unpacked(reply, NULL);
		return 0;
	}
	if (de.reason_code == FWD_R_DATAPLANE_UNAVAILABLE ||
	    de.reason_code == FWD_R_DATAPLANE_BROKEN || de.reason_code == FWD_R_PUSH_EXPIRED ||
	    de.reason_code == FWD_R_INTERNAL) {
		/* Not the table's fault: regionfwd gone, speaking another
		 * protocol, or out of memory. Said as it is. */
		fwd_err_fail(e, de.reason_code, NULL, 0, "", "%s; nothing changed", de.reason);
		return -EAGAIN;
	}
	fwd_err_fail(e, FWD_R_DATAPLANE_REFUSED, NULL, 0, de.path,
		     "regionfwd refused the table: %s", de.reason);
	return -EINVAL;
}

static void unlink_doc(const struct ctl_state *st, uint64_t id)
{
	char f[64], p[512];

	gen_file(f, sizeof(f), id);
	snprintf(p, sizeof(p), "%s/%s", st->dir, f);
	unlink(p);
}

static void drop_pending(struct ctl_state *st)
{
	free(st->pending.doc);
	memset(&st->pending, 0, sizeof(st->pending));
	st->has_pending = 0;
}

/* The pending generation runs: make it current, in memory and on disk.
 * Retention drops the oldest generations beyond --keep, never the current
 * one nor the one before it (the last good), and deletes their documents
 * only once a history without them is durable (ctl_state_save). If that
 * history cannot be written, regionfwd runs the generation and the disk
 * still says pending: said in the log, and resolved at the next start by
 * what regionfwd runs. @unsaved: an automatic revert whose write-ahead
 * failed; nothing is written here (see ctl_state_persist_unsaved).
 * @return 0 recorded on disk, -1 not. */
static int commit_pending(struct ctl_state *st, struct fwd_table *t, int unsaved)
{
	struct ctl_gen *hist = realloc(st->hist, sizeof(*st->hist) * (st->nhist + 1));
	struct fwd_err e;

	if (hist == NULL) { /* keep the old current: the pending record resolves it */
		fwd_log(FWD_LOG_ERR, "out of memory recording generation %" PRIu64 "",
			st->pending.id);
		fwd_table_free(t);
		return -1;
	}
	st->hist = hist;
	st->hist[st->nhist++] = st->pending;
	memset(&st->pending, 0, sizeof(st->pending));
	st->has_pending = 0;
	fwd_table_free(st->table);
	st->table = t;
	while (st->nhist > st->keep && st->nhist > 2 &&
	       st->ngone < sizeof(st->gone) / sizeof(st->gone[0])) {
		st->gone[st->ngone++] = st->hist[0].id;
		free(st->hist[0].doc);
		memmove(st->hist, st->hist + 1, sizeof(*st->hist) * (st->nhist - 1));
		st->nhist--;
	}
	if (unsaved) {
		/* Neither document nor record may be on disk: written in that
		 * order by ctl_state_persist_unsaved(), never the record alone. */
		st->unsaved_id = st->hist[st->nhist - 1].id;
		return -1;
	}
	if (ctl_state_save(st, &e) == 0)
		return 0;
	fwd_log(FWD_LOG_ERR,
		"generation %" PRIu64 " runs but its record could not be written "
		"(%s); the next start resolves it by what regionfwd runs",
		st->hist[st->nhist - 1].id, e.reason);
	return -1; /* the pruned documents stay: the history on disk names them */
}

/* Every extension's applied(), in order; the first refusal stops them. */
static int run_applied(struct ctl_state *st, const struct fwd_table *t, uint64_t id,
		       struct fwd_err *e)
{
	for (unsigned i = 0; i < st->next; i++)
		if (st->ext[i].applied && st->ext[i].applied(st->ext[i].arg, t, id, e))
			return -1;
	return 0;
}

int ctl_state_persist_unsaved(struct ctl_state *st, struct fwd_err *e)
{
	const struct ctl_gen *g = ctl_state_find(st, st->unsaved_id);
	char f[64];
	int rc;

	if (!st->unsaved_id)
		return 0;
	if (g == NULL) { /* pruned by now: only the history is left to write */
		rc = ctl_state_save(st, e);
	} else {
		gen_file(f, sizeof(f), g->id);
		rc = write_atomic(st->dir, f, g->doc, g->len);
		if (rc)
			fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "", "cannot write %s/%s: %s",
				     st->dir, f, strerror(-rc));
		else
			rc = ctl_state_save(st, e);
	}
	if (rc == 0)
		st->unsaved_id = 0;
	return rc;
}

void ctl_state_alarm(struct ctl_state *st, const char *fmt, ...)
{
	char now[sizeof(st->alarm)] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(now, sizeof(now), fmt, ap);
		va_end(ap);
		/* Reasons carry paths and peers' words: the truncation above can
		 * split a UTF-8 sequence, and the status view (JSON) must never
		 * fail to build over it. The alarm is ASCII. */
		for (char *c = now; *c; c++)
			if ((unsigned char)*c >= 0x80 || (unsigned char)*c < 0x20)
				*c = '?';
	}
	if (strcmp(now, st->alarm) == 0)
		return; /* one line per change, not one per retry */
	if (now[0])
		fwd_log(FWD_LOG_ERR, "ALARM: %s", now);
	else
		fwd_log(FWD_LOG_NOTICE, "alarm cleared (was: %s)", st->alarm);
	snprintf(st->alarm, sizeof(st->alarm), "%s", now);
}

static int64_t apply_gen_staged(struct ctl_state *st, const char *doc, size_t len,
				const char *author, const char *comment, int64_t expected,
				int push_it, int must_run, struct fwd_err *e);

/* Where an apply's time goes (fwd_stages.h), logged with the generation. */
static int64_t apply_gen(struct ctl_state *st, const char *doc, size_t len, const char *author,
			 const char *comment, int64_t expected, int push_it, int must_run,
			 struct fwd_err *e)
{
	struct fwd_stages stages;
	char times[512];
	int64_t id;

	fwd_stages_begin(&stages);
	id = apply_gen_staged(st, doc, len, author, comment, expected, push_it, must_run, e);
	if (id > 0)
		fwd_log(FWD_LOG_INFO, "generation %" PRId64 " (%zu bytes) applied in %.1f ms: %s",
			id, len, (double)fwd_stages_total_ns(&stages) / 1e6,
			fwd_stages_format(&stages, times, sizeof(times)));
	fwd_stages_end(&stages);
	return id;
}

int64_t ctl_state_apply(struct ctl_state *st, const char *doc, size_t len, const char *author,
			const char *comment, int64_t expected, int push_it, struct fwd_err *e)
{
	if (ctl_state_persist_unsaved(st, e)) {
		/* Nothing is stacked on a generation the disk does not know. */
		snprintf(e->reason + strlen(e->reason), sizeof(e->reason) - strlen(e->reason),
			 " (generation %" PRIu64 ", an automatic revert, is not recorded yet); "
			 "nothing changed",
			 st->unsaved_id);
		return -1;
	}
	int64_t id = apply_gen(st, doc, len, author, comment, expected, push_it, 0, e);

	if (id >= 0 && push_it) { /* the table the operator chose runs */
		st->seeded = 0;
		ctl_state_alarm(st, NULL);
	}
	return id;
}

int64_t ctl_state_revert(struct ctl_state *st, const char *doc, size_t len, const char *comment,
			 struct fwd_err *e)
{
	struct fwd_err ignored;

	/* An earlier revert not yet on disk stays in memory and is written by
	 * a later call; this one must run whether or not the disk takes it. */
	ctl_state_persist_unsaved(st, &ignored);
	return apply_gen(st, doc, len, "regiond", comment, -1, 1, 1, e);
}

/* @must_run: the automatic revert. A document or record that cannot be
 * written does not stop it (the deadline is a promise to the operator);
 * the generation is held in memory as unsaved instead. */
static int64_t apply_gen_staged(struct ctl_state *st, const char *doc, size_t len,
				const char *author, const char *comment, int64_t expected,
				int push_it, int must_run, struct fwd_err *e)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	uint64_t hash = fwd_hash64(doc, len), id;
	struct fwd_table *t;
	struct ctl_gen g = {0};
	char f[64];
	int rc, pushed, unsaved = 0;

	if (expected >= 0 && (uint64_t)expected != (cur ? cur->id : 0)) {
		fwd_err_fail(e, FWD_R_STALE_GENERATION, NULL, 0, "expected_generation",
			     "the table is at generation %" PRIu64 ", not %" PRId64
			     "; read it again and redo the change",
			     cur ? cur->id : 0, expected);
		return -1;
	}
	if (st->has_pending) {
		/* Left by a crash: regionfwd may or may not run it, and only its
		 * answer tells (ctl_state_sync). Until then nothing is stacked on it. */
		fwd_err_fail(e, FWD_R_DATAPLANE_UNAVAILABLE, NULL, 0, "",
			     "generation %" PRIu64 " was being applied when regiond stopped; it is "
			     "resolved once regionfwd answers; nothing changed",
			     st->pending.id);
		return -1;
	}
	if (cur && cur->hash == hash)
		return 0;
	fwd_stage("hash");
	t = ctl_state_validate(st, doc, len, "document", e);
	if (t == NULL)
		return -1;
	id = st->next_id;
	/* Write ahead: the document, then the history naming it as pending and
	 * the next id past it, both durable, before regionfwd may run it. If
	 * either cannot be written, nothing is pushed and the answer says so. */
	gen_file(f, sizeof(f), id);
	rc = write_atomic(st->dir, f, doc, len);
	fwd_stage("write document");
	if (rc && must_run) {
		unsaved = 1;
	} else if (rc) {
		fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "",
			     "cannot write %s/%s: %s; nothing changed", st->dir, f, strerror(-rc));
		fwd_table_free(t);
		return -1;
	}
	memset(&g, 0, sizeof(g));
	g.id = id;
	g.time = (int64_t)time(NULL);
	g.hash = hash;
	snprintf(g.author, sizeof(g.author), "%s", author ? author : "");
	snprintf(g.comment, sizeof(g.comment), "%s", comment ? comment : "");
	snprintf(g.by, sizeof(g.by), "%s",
		 must_run     ? "regiond (commit-confirm timer)"
		 : st->who[0] ? st->who
			      : "regiond");
	g.doc = malloc(len + 1);
	if (g.doc == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		unlink_doc(st, id);
		fwd_table_free(t);
		return -1;
	}
	memcpy(g.doc, doc, len);
	g.doc[len] = '\0';
	g.len = len;
	/* The id is spent from here on, whatever happens: never reused. */
	st->next_id = id + 1;
	st->pending = g;
	st->has_pending = 1;
	if (!unsaved && ctl_state_save(st, e)) {
		if (must_run) {
			unsaved = 1;
		} else {
			/* On disk the history is as it was (the write is atomic):
			 * the pending document is a stranger only until it is
			 * removed here. */
			drop_pending(st);
			unlink_doc(st, id);
			fwd_table_free(t);
			snprintf(e->reason + strlen(e->reason),
				 sizeof(e->reason) - strlen(e->reason), "; nothing changed");
			return -1;
		}
	}
	fwd_stage("copy + write history");
	pushed = push_it && push(st, id, doc, len, t, e) == 0;
	fwd_stage("push");
	if ((push_it && !pushed) || run_applied(st, t, id, e)) {
		struct fwd_err ignored;

		/* Pushed but an extension (the filter) refused: put regionfwd
		 * back on the current generation, so nothing changed anywhere. */
		if (pushed && cur)
			push(st, cur->id, cur->doc, cur->len, st->table, &ignored);
		drop_pending(st);
		/* If the history cannot be rewritten now, the pending record
		 * stays on disk with its document, and the next start resolves
		 * it by what regionfwd runs. */
		if (ctl_state_save(st, &ignored) == 0)
			unlink_doc(st, id);
		fwd_table_free(t);
		return -1;
	}
	fwd_stage("extensions' applied");
	if (commit_pending(st, t, unsaved) < 0 && must_run && !st->unsaved_id &&
	    ctl_state_current(st) && ctl_state_current(st)->id == id)
		st->unsaved_id = id; /* runs, record not written: the tick retries */
	fwd_stage("commit + write history");
	/* The audit line: every change, who made it (authenticated), who it
	 * says wrote it, and why. */
	{
		const struct ctl_gen *now = ctl_state_current(st);

		if (now && now->id == id) {
			struct fwd_log_change c = {
				.event = must_run ? "reverted"
					 : strcmp(st->request, "POST /v1/rollback") == 0
						 ? "rolled back"
						 : "applied",
				.generation = now->id,
				.hash = now->hash,
				.author = now->author,
				.client = now->by,
				.request = st->request[0] ? st->request : NULL,
				.reason = now->comment,
			};

			fwd_log_change(&c);
		}
	}
	return (int64_t)id;
}

/* 1 when regionfwd's status reply says it runs regiond's current generation.
 * With no current generation regiond has nothing regionfwd could be in sync
 * with. */
static int runs_current(const struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	const struct ctl_gen *cur = ctl_state_current(st);

	return cur != NULL && r->generation != NULL && r->generation->hash == cur->hash;
}

/* regionfwd's status, or NULL when it did not answer. */
static Regionfwd__Ctl__StatusReply *dp_status(struct ctl_state *st)
{
	Regionfwd__Ctl__Empty req = REGIONFWD__CTL__EMPTY__INIT;
	ProtobufCMessage *reply;
	struct fwd_err e;

	if (dp_call(st, REGIONFWD__CTL__OP__OP_STATUS, &req.base, &reply, 5000, &e))
		return NULL;
	return (Regionfwd__Ctl__StatusReply *)reply;
}

int64_t ctl_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keep what regionfwd said (@r, or NULL: it did not answer) as the report
 * reads answer from. */
static void keep_report(struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	json_decref(st->dp_report);
	st->dp_report = r ? ctl_dp_status_json(r) : NULL;
	st->dp_in_sync = r ? runs_current(st, r) : 0;
	if (r) /* the age is that of the last answer, not of the last attempt */
		st->dp_report_ms = ctl_mono_ms();
}

int ctl_state_refresh(struct ctl_state *st)
{
	Regionfwd__Ctl__StatusReply *r = dp_status(st);

	keep_report(st, r);
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	return st->dp_in_sync;
}

/* A pending record left by a crash, resolved by what regionfwd runs: it
 * became current if regionfwd runs it, else it never happened. */
static void resolve_pending(struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	struct fwd_err e;

	if (r->generation && r->generation->hash == st->pending.hash) {
		struct fwd_table *t =
			ctl_state_validate(st, st->pending.doc, st->pending.len, "pending", &e);

		if (t) {
			fwd_log(FWD_LOG_NOTICE,
				"regionfwd runs generation %" PRIu64
				", which was being applied when regiond stopped: it is current",
				st->pending.id);
			commit_pending(st, t, 0);
			return;
		}
	}
	uint64_t id = st->pending.id;

	fwd_log(FWD_LOG_WARNING,
		"generation %" PRIu64 " was being applied when regiond stopped and "
		"regionfwd does not run it: dropped",
		id);
	drop_pending(st);
	if (ctl_state_save(st, &e) == 0)
		unlink_doc(st, id);
}

/* What regionfwd runs, as it was given (OP_TABLE), or NULL (said why in @e). */
static Regionfwd__Ctl__TableReply *dp_table(struct ctl_state *st, struct fwd_err *e)
{
	Regionfwd__Ctl__Empty req = REGIONFWD__CTL__EMPTY__INIT;
	ProtobufCMessage *reply;

	if (dp_call(st, REGIONFWD__CTL__OP__OP_TABLE, &req.base, &reply, st->dp_timeout_ms, e))
		return NULL;
	return (Regionfwd__Ctl__TableReply *)reply;
}

/* Whether regiond should take what regionfwd runs (@r) as its own rather
 * than push its current generation over it: when its own state is empty
 * (no generation, or only the --table this start seeded an empty state
 * directory with, against a table some regiond pushed), or older (regionfwd
 * runs a generation a regiond pushed with a higher id than regiond's
 * current: this state directory missed changes, e.g. restored from a
 * backup). A regionfwd running its own --table file (not pushed) is brought
 * to regiond's table instead: that file is a start-up default. */
static int should_adopt(const struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	int pushed;

	if (r->generation == NULL || r->generation->hash == 0)
		return 0;
	if (cur == NULL)
		return 1;
	pushed = strcmp(r->generation->source, "regiond") == 0;
	return pushed && (st->seeded || r->generation->id > cur->id);
}

/* Record what regionfwd runs as a new generation of regiond's (no push:
 * regionfwd runs it already), keeping its id when this regiond has not
 * used it, so the box's generation id does not go back. When it cannot be
 * adopted (it does not validate here, the disk refuses it), it is not
 * overwritten either: one alarm, and regiond holds back (held_back) until
 * an operator applies a table. @return 0 adopted, -1 not */
static int adopt(struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	const uint64_t id = r->generation->id, hash = r->generation->hash;
	Regionfwd__Ctl__TableReply *tr;
	char why[sizeof(((struct fwd_err *)0)->reason) + 32], who[sizeof(st->who)],
		comment[sizeof(((struct ctl_gen *)0)->comment)];
	struct fwd_err e = {0};
	int64_t got;

	/* A fetch is the whole document: not more than once in 5 s. */
	if (st->adopt_tried_ms && ctl_mono_ms() - st->adopt_tried_ms < 5000)
		return -1;
	st->adopt_tried_ms = ctl_mono_ms();
	tr = dp_table(st, &e);
	if (tr == NULL) {
		snprintf(why, sizeof(why), "fetching it failed: %s", e.reason);
		goto refused;
	}
	if (tr->generation == NULL || tr->generation->hash != hash ||
	    fwd_hash64(tr->document.data, tr->document.len) != hash) {
		/* It changed between the status and the fetch: next tick. */
		protobuf_c_message_free_unpacked(&tr->base, NULL);
		return -1;
	}
	snprintf(comment, sizeof(comment),
		 "adopted: regionfwd ran generation %" PRIu64 " (%016" PRIx64
		 "), pushed by %s, which this state directory did not hold",
		 id, hash, r->managed_by[0] ? r->managed_by : r->generation->source);
	if (id >= st->next_id && id < UINT64_MAX)
		st->next_id = id; /* its own id: spent here from now on */
	snprintf(who, sizeof(who), "%s", st->who);
	snprintf(st->who, sizeof(st->who), "regiond (adopted from regionfwd)");
	got = apply_gen(st, (const char *)tr->document.data, tr->document.len, "regiond", comment,
			-1, 0, 0, &e);
	snprintf(st->who, sizeof(st->who), "%s", who);
	protobuf_c_message_free_unpacked(&tr->base, NULL);
	if (got <= 0) {
		snprintf(why, sizeof(why), "%s", got == 0 ? "it is already current" : e.reason);
		goto refused;
	}
	fwd_log(FWD_LOG_NOTICE,
		"adopted what regionfwd runs (generation %" PRIu64 ", %016" PRIx64
		") as generation %" PRId64 ": this state directory was %s\n",
		id, hash, got, st->seeded ? "empty (seeded from --table)" : "empty or older");
	st->seeded = 0;
	st->held_back = 0;
	st->adopt_tried_ms = 0;
	ctl_state_alarm(st, NULL);
	return 0;
refused:
	ctl_state_alarm(st,
			"regionfwd runs generation %" PRIu64 " (%016" PRIx64
			"), which this regiond's state does not hold and cannot adopt (%s): not "
			"overwritten; apply a table to run (regionctl apply)",
			id, hash, why);
	st->held_back = 1;
	return -1;
}

int ctl_state_sync(struct ctl_state *st)
{
	const struct ctl_gen *cur;
	Regionfwd__Ctl__StatusReply *r = dp_status(st);
	struct fwd_err e;
	int in_sync;

	if (r == NULL) {
		keep_report(st, NULL);
		return 0;
	}
	if (st->has_pending)
		resolve_pending(st, r);
	in_sync = runs_current(st, r);
	if (!in_sync && !st->has_pending && should_adopt(st, r)) {
		if (adopt(st, r) < 0) {
			keep_report(st, r);
			protobuf_c_message_free_unpacked(&r->base, NULL);
			return 0;
		}
		in_sync = runs_current(st, r);
	}
	cur = ctl_state_current(st);
	keep_report(st, r);
	st->held_back = 0;
	if (!in_sync && cur != NULL && r->generation &&
	    strcmp(r->generation->source, "regiond") == 0 && r->generation->hash != st->reported)
		/* Not silent: another regiond's table (an id this one already
		 * passed) is replaced by this one's newer current generation. */
		fwd_log(FWD_LOG_NOTICE,
			"regionfwd ran generation %" PRIu64 " (%016" PRIx64
			"), pushed by a regiond, that is not in this history; this regiond's "
			"generation %" PRIu64 " is newer: pushing it\n",
			r->generation->id, r->generation->hash, cur->id);
	st->reported = r->generation && !in_sync ? r->generation->hash : 0;
	/* regionfwd runs our table but does not know it is managed (it never
	 * got a push: its --table had the same content, or it restarted on
	 * it): one push, a no-op there, makes it refuse SIGHUP reloads. */
	if (in_sync && cur != NULL && r->managed_by[0] == '\0')
		push(st, cur->id, cur->doc, cur->len, st->table, &e);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	if (!in_sync && cur != NULL && push(st, cur->id, cur->doc, cur->len, st->table, &e) == 0)
		in_sync = ctl_state_refresh(st);
	return in_sync;
}

void ctl_state_sample_traffic(struct ctl_state *st)
{
	Regionfwd__Ctl__Empty req = REGIONFWD__CTL__EMPTY__INIT;
	Regionfwd__Ctl__CounterReport *rep;
	struct fwd_report *r;
	struct fwd_err e;
	json_t *j;

	if (st->traffic == NULL && (st->traffic = ctl_traffic_new()) == NULL)
		return;
	if (!ctl_traffic_due(st->traffic, ctl_mono_ms()) ||
	    dp_call(st, REGIONFWD__CTL__OP__OP_COUNTERS, &req.base, (ProtobufCMessage **)&rep, 5000,
		    &e))
		return;
	j = json_loadb((const char *)rep->json.data, rep->json.len, 0, NULL);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	r = j ? fwd_report_from_json(j, &e) : NULL;
	json_decref(j);
	if (r)
		ctl_traffic_add(st->traffic, r, ctl_mono_ms());
}

json_t *ctl_state_history(const struct ctl_state *st)
{
	json_t *a = json_array();

	for (unsigned i = st->nhist; i-- > 0;) {
		const struct ctl_gen *g = &st->hist[i];
		char h[17];

		hexhash(g->hash, h);
		json_array_append_new(a, json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:I}", "id",
						   (json_int_t)g->id, "time", (json_int_t)g->time,
						   "author", g->author, "comment", g->comment, "by",
						   g->by, "hash", h, "bytes", (json_int_t)g->len));
	}
	return a;
}
