#include "ctl_state.h"

#include "ctl_confirm.h"

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

static uint64_t next_id; /* never reused, persisted in history.json */

static int write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
	char tmp[512], dst[512];
	size_t off = 0;
	int fd, dfd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			break;
		}
		off += (size_t)w;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, dst) < 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	/* The rename is durable only once the directory is. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static void gen_file(char *buf, size_t len, uint64_t id)
{
	snprintf(buf, len, "gen-%" PRIu64 ".doc", id);
}

static void hexhash(uint64_t h, char out[17])
{
	snprintf(out, 17, "%016" PRIx64, h);
}

int ctl_state_save(struct ctl_state *st, struct fwd_err *e)
{
	json_t *root = json_object(), *gens = json_array();
	char *text;
	int rc;

	for (unsigned i = 0; i < st->nhist; i++) {
		const struct ctl_gen *g = &st->hist[i];
		char h[17], f[64];

		hexhash(g->hash, h);
		gen_file(f, sizeof(f), g->id);
		json_array_append_new(gens, json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "id",
						      (json_int_t)g->id, "time",
						      (json_int_t)g->time, "hash", h, "author",
						      g->author, "comment", g->comment, "file", f));
	}
	json_object_set_new(root, "next_id", json_integer((json_int_t)next_id));
	json_object_set_new(root, "generations", gens);
	json_object_set_new(root, "confirm", ctl_confirm_json(st));
	text = json_dumps(root, JSON_INDENT(1));
	json_decref(root);
	if (text == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return -ENOMEM;
	}
	rc = write_atomic(st->dir, "history.json", text, strlen(text));
	free(text);
	if (rc)
		fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "",
			     "cannot write %s/history.json: %s", st->dir, strerror(-rc));
	return rc;
}

/* A document written for an apply that never completed (regiond killed
 * between writing it and recording it) is not part of the state: remove it. */
static void remove_orphans(struct ctl_state *st)
{
	DIR *d = opendir(st->dir);
	struct dirent *de;

	while (d && (de = readdir(d)) != NULL) {
		uint64_t id;
		char tail[8], p[512];

		if (sscanf(de->d_name, "gen-%" SCNu64 ".%4s", &id, tail) != 2 ||
		    strcmp(tail, "doc") || ctl_state_find(st, id))
			continue;
		snprintf(p, sizeof(p), "%s/%s", st->dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
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

int ctl_state_open(struct ctl_state *st, const char *dir, unsigned keep, struct ctl_dp *dp,
		   struct fwd_err *e)
{
	struct ctl_ext ext[CTL_MAX_EXT];
	unsigned next = st->next;
	char path[512];
	json_t *root, *gens, *v, *cf;
	json_error_t je;
	size_t i;

	memcpy(ext, st->ext, sizeof(ext));
	memset(st, 0, sizeof(*st));
	memcpy(st->ext, ext, sizeof(ext));
	st->next = next;
	snprintf(st->dir, sizeof(st->dir), "%s", dir);
	st->keep = keep ? keep : 1;
	st->dp = dp;
	st->dp_timeout_ms = 120000;
	next_id = 1;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		fwd_err_fail(e, FWD_R_STATE_DIR, NULL, 0, "", "cannot create %s: %s", dir,
			     strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/history.json", dir);
	if (access(path, F_OK) != 0) {
		remove_orphans(
			st); /* a fresh state directory, or one killed before its first record */
		return 0;
	}
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	gens = json_object_get(root, "generations");
	if (root == NULL || !json_is_array(gens)) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, NULL, 0, "", "%s: %s", path,
			     root ? "no 'generations' list" : je.text);
		json_decref(root);
		return -EINVAL;
	}
	next_id = (uint64_t)json_integer_value(json_object_get(root, "next_id"));
	st->hist = calloc(json_array_size(gens) + 1, sizeof(*st->hist));
	json_array_foreach(gens, i, v) {
		struct ctl_gen *g = &st->hist[st->nhist];
		struct fwd_err fe = {0};
		char f[64];

		g->id = (uint64_t)json_integer_value(json_object_get(v, "id"));
		g->time = json_integer_value(json_object_get(v, "time"));
		g->hash = strtoull(json_string_value(json_object_get(v, "hash")) ?: "0", NULL, 16);
		snprintf(g->author, sizeof(g->author), "%s",
			 json_string_value(json_object_get(v, "author")) ?: "");
		snprintf(g->comment, sizeof(g->comment), "%s",
			 json_string_value(json_object_get(v, "comment")) ?: "");
		gen_file(f, sizeof(f), g->id);
		snprintf(path, sizeof(path), "%s/%s", dir, f);
		if (fwd_read_file(path, &g->doc, &g->len, &fe) ||
		    fwd_hash64(g->doc, g->len) != g->hash) {
			fwd_err_fail(e, FWD_R_STATE_CORRUPT, NULL, 0, "",
				     "%s: missing or does not match its hash", path);
			json_decref(root);
			return -EINVAL;
		}
		st->nhist++;
		if (g->id >= next_id)
			next_id = g->id + 1;
	}
	cf = json_object_get(root, "confirm");
	if (json_is_object(cf)) {
		st->confirm_gen = (uint64_t)json_integer_value(json_object_get(cf, "generation"));
		st->revert_to = (uint64_t)json_integer_value(json_object_get(cf, "revert_to"));
		st->confirm_deadline = json_integer_value(json_object_get(cf, "deadline"));
	}
	json_decref(root);
	remove_orphans(st);
	if (st->nhist) {
		const struct ctl_gen *cur = &st->hist[st->nhist - 1];

		st->table = ctl_state_validate(st, cur->doc, cur->len, "current", e);
		if (st->table == NULL)
			return -EINVAL;
	}
	return 0;
}

void ctl_state_close(struct ctl_state *st)
{
	for (unsigned i = 0; i < st->nhist; i++)
		free(st->hist[i].doc);
	free(st->hist);
	fwd_table_free(st->table);
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
	for (unsigned i = 0; i < st->next; i++)
		if (st->ext[i].validate && st->ext[i].validate(st->ext[i].arg, t, e)) {
			fwd_table_free(t);
			return NULL;
		}
	return t;
}

/* Ask regionfwd to run @doc as generation @id, with the content databases
 * regiond compiled for @t (binary, as compiled) when there are any. */
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
	req.document.data = (uint8_t *)doc;
	req.document.len = len;
	if (dbs) {
		req.has_content = 1;
		req.content_rules_hash = dbs->rules_hash;
		for (int f = 0; f < FWD_CONTENT_FIELDS; f++)
			db[f] = (ProtobufCBinaryData){.len = dbs->len[f],
						      .data = (uint8_t *)dbs->bytes[f]};
		req.n_content_db = FWD_CONTENT_FIELDS;
		req.content_db = db;
	}
	rc = ctl_dp_call(st->dp, REGIONFWD__CTL__OP__OP_PUSH, &req.base, &reply, st->dp_timeout_ms,
			 &de);
	if (rc == 0) {
		protobuf_c_message_free_unpacked(reply, NULL);
		return 0;
	}
	if (de.reason_code == FWD_R_DATAPLANE_UNAVAILABLE ||
	    de.reason_code == FWD_R_DATAPLANE_BROKEN || de.reason_code == FWD_R_INTERNAL) {
		/* Not the table's fault: regionfwd gone, speaking another
		 * protocol, or out of memory. Said as it is. */
		fwd_err_fail(e, de.reason_code, NULL, 0, "", "%s; nothing changed", de.reason);
		return -EAGAIN;
	}
	fwd_err_fail(e, FWD_R_DATAPLANE_REFUSED, NULL, 0, de.path,
		     "regionfwd refused the table: %s", de.reason);
	return -EINVAL;
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

int64_t ctl_state_apply(struct ctl_state *st, const char *doc, size_t len, const char *author,
			const char *comment, int64_t expected, int push_it, struct fwd_err *e)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	uint64_t hash = fwd_hash64(doc, len), id;
	struct fwd_table *t;
	struct ctl_gen g = {0};
	char f[64];
	int rc, pushed;

	if (expected >= 0 && (uint64_t)expected != (cur ? cur->id : 0)) {
		fwd_err_fail(e, FWD_R_STALE_GENERATION, NULL, 0, "expected_generation",
			     "the table is at generation %" PRIu64 ", not %" PRId64
			     "; read it again and redo the change",
			     cur ? cur->id : 0, expected);
		return -1;
	}
	if (cur && cur->hash == hash)
		return 0;
	t = ctl_state_validate(st, doc, len, "document", e);
	if (t == NULL)
		return -1;
	id = next_id;
	/* The document first: if it cannot be stored, nothing is pushed. */
	gen_file(f, sizeof(f), id);
	rc = write_atomic(st->dir, f, doc, len);
	if (rc) {
		fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "", "cannot write %s/%s: %s",
			     st->dir, f, strerror(-rc));
		fwd_table_free(t);
		return -1;
	}
	pushed = push_it && push(st, id, doc, len, t, e) == 0;
	if ((push_it && !pushed) || run_applied(st, t, id, e)) {
		char p[512];
		struct fwd_err ignored;

		/* Pushed but an extension (the filter) refused: put regionfwd
		 * back on the current generation, so nothing changed anywhere. */
		if (pushed && cur)
			push(st, cur->id, cur->doc, cur->len, st->table, &ignored);
		snprintf(p, sizeof(p), "%s/%s", st->dir, f);
		unlink(p);
		fwd_table_free(t);
		return -1;
	}
	g.id = id;
	g.time = (int64_t)time(NULL);
	g.hash = hash;
	snprintf(g.author, sizeof(g.author), "%s", author ? author : "");
	snprintf(g.comment, sizeof(g.comment), "%s", comment ? comment : "");
	g.doc = malloc(len + 1);
	if (g.doc == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		fwd_table_free(t);
		return -1;
	}
	memcpy(g.doc, doc, len);
	g.doc[len] = '\0';
	g.len = len;
	next_id = id + 1;
	if (st->nhist == st->keep) { /* prune the oldest */
		char p[512];

		gen_file(f, sizeof(f), st->hist[0].id);
		snprintf(p, sizeof(p), "%s/%s", st->dir, f);
		unlink(p);
		free(st->hist[0].doc);
		memmove(st->hist, st->hist + 1, sizeof(*st->hist) * (st->nhist - 1));
		st->nhist--;
	}
	st->hist = realloc(st->hist, sizeof(*st->hist) * (st->nhist + 1));
	st->hist[st->nhist++] = g;
	fwd_table_free(st->table);
	st->table = t;
	if (ctl_state_save(st, e))
		return -1; /* running, but not durable: said so */
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

	if (ctl_dp_call(st->dp, REGIONFWD__CTL__OP__OP_STATUS, &req.base, &reply, 5000, &e))
		return NULL;
	return (Regionfwd__Ctl__StatusReply *)reply;
}

int ctl_state_observe(struct ctl_state *st, json_t **dp_status_json)
{
	Regionfwd__Ctl__StatusReply *r = dp_status(st);
	int in_sync;

	*dp_status_json = NULL;
	if (r == NULL)
		return 0;
	in_sync = runs_current(st, r);
	*dp_status_json = ctl_dp_status_json(r);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return in_sync;
}

int ctl_state_sync(struct ctl_state *st)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	Regionfwd__Ctl__StatusReply *r = dp_status(st);
	struct fwd_err e;
	int in_sync;

	if (r == NULL)
		return 0;
	in_sync = runs_current(st, r);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	if (!in_sync && cur != NULL && push(st, cur->id, cur->doc, cur->len, st->table, &e) == 0)
		in_sync = 1;
	return in_sync;
}

json_t *ctl_state_history(const struct ctl_state *st)
{
	json_t *a = json_array();

	for (unsigned i = st->nhist; i-- > 0;) {
		const struct ctl_gen *g = &st->hist[i];
		char h[17];

		hexhash(g->hash, h);
		json_array_append_new(a, json_pack("{s:I, s:I, s:s, s:s, s:s, s:I}", "id",
						   (json_int_t)g->id, "time", (json_int_t)g->time,
						   "author", g->author, "comment", g->comment,
						   "hash", h, "bytes", (json_int_t)g->len));
	}
	return a;
}
