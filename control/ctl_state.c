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
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "ctl_model.h"
#include "ctl_ownset.h"
#include "fwd_class.h"
#include "fwd_delta.h"
#include "fwd_doc.h"
#include "fwd_hash.h"
#include "fwd_hs.h"
#include "fwd_residency.h"
#include "fwd_stages.h"
#include "fwd_clock.h"

static const char *state_dir_lost(const struct ctl_state *st);

/* One buffer, written atomically and durably (fwd_write_atomic) into the
 * state directory, and only while its path names the directory this
 * regiond holds (and locks): into another one in its place, its files went
 * there without the history they follow, beside another regiond's (a
 * probe, a review). Refused (ESTALE) then, as a full disk would be: what
 * must run is held in memory and said. */
static int write_atomic(const struct ctl_state *st, const char *name, const char *data, size_t len)
{
	struct iovec part = {.iov_base = (void *)data, .iov_len = len};

	if (state_dir_lost(st)) {
		errno = ESTALE;
		return -ESTALE;
	}
	return fwd_write_atomic(st->dir, name, &part, 1);
}

/* A generation's file: gen-N.doc (a document) or gen-N.delta (a delta). */
static void gen_file(char *buf, size_t len, uint64_t id, enum ctl_gen_kind kind)
{
	snprintf(buf, len, "gen-%" PRIu64 ".%s", id, kind == CTL_GEN_DELTA ? "delta" : "doc");
}

/* A generation's owned set (ctl_ownset.h): gen-N.owned. */
static void owned_file(char *buf, size_t len, uint64_t id)
{
	snprintf(buf, len, "gen-%" PRIu64 ".owned", id);
}

static const char *const own_names[] = {"", "file", "feed", "other", "none"};

/* The text of a hash in history.json: 16 hex digits. */
static void hexhash(uint64_t h, char out[17])
{
	snprintf(out, 17, "%016" PRIx64, h);
}

static void unlink_gen(const struct ctl_state *st, uint64_t id, unsigned mask);

/* A record of history.json. A document's doc_hash is written only when it
 * is not its identity (a checkpoint, an adopted table): older records have
 * neither that nor "kind", and read as documents. */
static json_t *gen_record(const struct ctl_gen *g)
{
	char h[17], f[64];
	json_t *r;

	hexhash(g->hash, h);
	gen_file(f, sizeof(f), g->id, g->kind);
	r = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)g->id, "time",
		      (json_int_t)g->time, "hash", h, "author", g->author, "comment", g->comment,
		      "by", g->by, "file", f, "kind",
		      g->kind == CTL_GEN_DELTA ? "delta" : "document");
	if (r == NULL)
		return NULL;
	/* Absent (not known) in records of an older regiond. */
	if (g->own != CTL_OWN_UNKNOWN)
		json_object_set_new(r, "owned", json_string(own_names[g->own]));
	if (g->kind == CTL_GEN_DELTA) {
		json_object_set_new(r, "parent", json_integer((json_int_t)g->parent));
		json_object_set_new(r, "added", json_integer(g->added));
		json_object_set_new(r, "removed", json_integer(g->removed));
	} else if (g->doc_hash != g->hash) {
		hexhash(g->doc_hash, h);
		json_object_set_new(r, "doc_hash", json_string(h));
		if (g->checkpoint)
			json_object_set_new(r, "checkpoint", json_true());
	}
	return r;
}

int ctl_state_save(struct ctl_state *st, struct fwd_err *e)
{
	json_t *root = json_object(), *gens = json_array();
	char *text;
	int rc;

	for (unsigned i = 0; i < st->nhist; i++) {
		json_t *r = gen_record(&st->hist[i]);

		if (r && i < st->hidden) /* kept for a listed delta's chain only */
			json_object_set_new(r, "hidden", json_true());
		json_array_append_new(gens, r);
	}
	json_object_set_new(root, "next_id", json_integer((json_int_t)st->next_id));
	{
		char sid[17];

		hexhash(st->state_id, sid);
		json_object_set_new(root, "state_id", json_string(sid));
		/* Until this regiond is in step with regionfwd or has pushed:
		 * the identity is not yet the one regionfwd knows it by (made
		 * for an older regiond's history), and a restart meanwhile must
		 * not take its own former pushes for another regiond's. */
		if (st->state_id_new)
			json_object_set_new(root, "state_id_new", json_true());
		/* What regionfwd was last seen running of this regiond's: a
		 * restart still knows that another regiond's table in its place
		 * replaced it (foreign_took_over), and holds back as before. */
		if (st->ran_hash) {
			hexhash(st->ran_hash, sid);
			json_object_set_new(root, "ran", json_string(sid));
		}
	}
	json_object_set_new(root, "generations", gens);
	json_object_set_new(root, "pending",
			    st->has_pending ? gen_record(&st->pending) : json_null());
	json_object_set_new(root, "confirm", ctl_confirm_json(st));
	if (st->confirmed_gen) /* absent when none, as an older regiond wrote it */
		json_object_set_new(root, "confirmed", json_integer((json_int_t)st->confirmed_gen));
	text = json_dumps(root, JSON_INDENT(1));
	json_decref(root);
	if (text == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return -ENOMEM;
	}
	rc = write_atomic(st, "history.json", text, strlen(text));
	if (rc == 0) {
		st->history_len = strlen(text);
		st->history_sum = fwd_hash64(text, st->history_len);
		st->history_ctime = (struct timespec){0}; /* read back at the next check */
	}
	free(text);
	if (rc) {
		fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "",
			     "cannot write %s/history.json: %s", st->dir, strerror(-rc));
		return rc;
	}
	st->ran_written = st->ran_hash;
	/* A history without them is durable now: their files may go. */
	for (unsigned i = 0; i < st->ngone; i++)
		unlink_gen(st, st->gone[i].id, st->gone[i].mask);
	st->ngone = 0;
	return 0;
}

/* Note generation @id's files (@mask: 1 its document, 2 its delta) for
 * deletion once a history without them is durable. -1 out of memory. */
static int gone_add(struct ctl_state *st, uint64_t id, unsigned mask)
{
	if (st->ngone == st->capgone) {
		unsigned cap = st->capgone ? st->capgone * 2 : 16;
		void *g = realloc(st->gone, sizeof(*st->gone) * cap);

		if (g == NULL)
			return -1;
		st->gone = g;
		st->capgone = cap;
	}
	st->gone[st->ngone].id = id;
	st->gone[st->ngone++].mask = mask;
	return 0;
}

/* The record of generation @id (history, hidden ones included, or
 * pending), or NULL. */
static const struct ctl_gen *referenced(const struct ctl_state *st, uint64_t id)
{
	for (unsigned i = 0; i < st->nhist; i++)
		if (st->hist[i].id == id)
			return &st->hist[i];
	return st->has_pending && st->pending.id == id ? &st->pending : NULL;
}

/* Every generation file in the state directory must be one the history
 * names. Three exceptions, each a crash at a known step: the file of an
 * apply killed between writing it and writing its write-ahead record (it
 * carries the next id, it never ran); the other kind's file of a generation
 * retention was folding (a checkpoint document not yet in the history, or
 * the delta a recorded checkpoint replaced); and the file of a generation a
 * durable history no longer names, whose deletion a crash cut (retention's
 * oldest, a change refused after its write-ahead: ids below next_id, which
 * files are deleted only after such a history is written). All are
 * removed: what regiond runs is read from the history alone. Any other
 * stranger (an id this history never handed out) means the directory was
 * edited or mixed up (or lost its history.json, @fresh): corrupt, and
 * nothing is deleted, not even the leftovers, which are removed only once
 * no stranger was found and, with a history, once its replay has read
 * the files it names. A soak that killed regiond at every step found the
 * third: regiond then refused to start until the file was removed by
 * hand. */
/* Whether @name is the temporary file of a write of regiond's own into the
 * state directory (fwd_write_atomic: ".NAME.PID.tmp", NAME history.json,
 * gen-*, feed-owned) by another process than this one: not another
 * program's (a regionfwd file pointed here by mistake, its write in
 * flight), nor a write of this regiond. */
static int leftover_tmp(const char *name)
{
	size_t n = strlen(name), d;
	char me[24];

	if (n < 8 || name[0] != '.' || strcmp(name + n - 4, ".tmp") != 0 ||
	    (strncmp(name, ".gen-", 5) != 0 && strncmp(name, ".history.json.", 14) != 0 &&
	     strncmp(name, ".feed-owned.", 12) != 0))
		return 0;
	for (d = n - 4; d > 1 && name[d - 1] >= '0' && name[d - 1] <= '9'; d--)
		;
	if (!(d < n - 4 && d > 1 && name[d - 1] == '.'))
		return 0;
	snprintf(me, sizeof(me), ".%ld.tmp", (long)getpid());
	return strcmp(name + d - 1, me) != 0;
}

static int check_documents(struct ctl_state *st, uint64_t disk_next_id, int fresh, int passes,
			   struct fwd_err *e)
{
	int rc = 0;

	/* @passes: 1 checks (refuses a stranger), 2 checks then removes the
	 * leftovers, -1 removes them alone: load_history() checks before its
	 * replay and removes only once the replay has read every file the
	 * history names, so a history from another directory (whose own
	 * files are not there) stops the start with nothing deleted. */
	for (int pass = passes < 0 ? 1 : 0; pass < (passes < 0 ? 2 : passes) && rc == 0; pass++) {
		DIR *d = opendir(st->dir);
		struct dirent *de;

		while (d && rc == 0 && (de = readdir(d)) != NULL) {
			const struct ctl_gen *g;
			enum ctl_gen_kind kind;
			uint64_t id;
			char tail[8], p[512];

			/* A write a crash cut short leaves its temporary file
			 * (fwd_write_atomic: ".NAME.PID.tmp"), never renamed and
			 * never read; with the directory locked no writer is
			 * left to finish one. They were kept for good, a whole
			 * document each, and filled a small state disk (a
			 * probe). */
			if (pass == 1 && leftover_tmp(de->d_name)) {
				snprintf(p, sizeof(p), "%s/%s", st->dir, de->d_name);
				if (unlink(p) == 0)
					fwd_log(FWD_LOG_NOTICE,
						"%s: a write a crash cut short left it: removed",
						p);
				continue;
			}
			if (sscanf(de->d_name, "gen-%" SCNu64 ".%6s", &id, tail) != 2)
				continue;
			if (strcmp(tail, "owned") == 0) {
				/* What the feed had added to a generation: written
				 * ahead of it, or left by retention or a crash. Not
				 * a generation: one no record names goes. */
				g = referenced(st, id);
				snprintf(p, sizeof(p), "%s/%s", st->dir, de->d_name);
				if (pass == 1 && (g == NULL || g->own != CTL_OWN_FILE))
					unlink(p);
				continue;
			}
			if (strcmp(tail, "doc") && strcmp(tail, "delta"))
				continue;
			kind = strcmp(tail, "doc") ? CTL_GEN_DELTA : CTL_GEN_DOCUMENT;
			g = referenced(st, id);
			if (g && g->kind == kind)
				continue;
			snprintf(p, sizeof(p), "%s/%s", st->dir, de->d_name);
			/* (With no generation listed, an id below next_id is
			 * not taken for a leftover: a history emptied by hand
			 * looks the same, and stops the start.) */
			if (id == disk_next_id || g ||
			    (!fresh && st->nhist > 0 && id < disk_next_id)) {
				if (pass == 1 && unlink(p) == 0 && !g && id != disk_next_id)
					fwd_log(FWD_LOG_NOTICE,
						"%s: generation %" PRIu64
						" is no longer in the history (a cleanup a crash "
						"cut short): removed",
						p, id);
				continue;
			}
			rc = fwd_err_fail(
				e, FWD_R_STATE_CORRUPT, p, 0, "",
				"generation %" PRIu64 " is not in history.json%s, which never "
				"handed out its id: the state directory was edited or mixed up; "
				"regiond will not guess (move that file away if it is a stray "
				"copy; a directory moved away to start afresh adopts what "
				"regionfwd runs)",
				id, fresh ? " (there is no history.json)" : "");
		}
		if (d)
			closedir(d);
	}
	return rc;
}

/* A 16-digit hash of history.json into *@out; -1 when it is not one. */
static int parse_hash(const json_t *v, uint64_t *out)
{
	char *end = NULL;

	if (!json_is_string(v) || json_string_length(v) != 16 ||
	    strspn(json_string_value(v), "0123456789abcdefABCDEF") != 16)
		return -1; /* strtoull alone takes a sign or spaces */
	*out = strtoull(json_string_value(v), &end, 16);
	return *end == '\0' ? 0 : -1;
}

/* The delta file of record @g read and checked as whole records; its
 * parent and chain hash are checked by the caller, which knows the
 * generation before it. */
static int load_delta(struct ctl_state *st, const json_t *v, const char *where, struct ctl_gen *g,
		      const char *path, struct fwd_err *e)
{
	const json_t *parent = json_object_get(v, "parent");
	struct fwd_delta d = {0};
	struct fwd_err fe = {0};
	char *buf = NULL;
	size_t len = 0;

	(void)st;
	if (!json_is_integer(parent) || json_integer_value(parent) < 1)
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, "history.json", 0, where,
				    "a delta record needs its parent's id");
	g->parent = (uint64_t)json_integer_value(parent);
	if (fwd_read_file(path, &buf, &len, &fe) || len == 0 ||
	    fwd_delta_unpack((const uint8_t *)buf, len, &d, &fe)) {
		free(buf);
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "",
				    "missing, empty or not whole prefix changes%s%s",
				    fe.reason[0] ? ": " : "", fe.reason);
	}
	for (uint32_t i = 0; i < d.n; i++)
		d.ops[i].kind == FWD_DELTA_ADD ? g->added++ : g->removed++;
	fwd_delta_clear(&d);
	g->changes = (uint8_t *)buf;
	g->clen = len;
	return 0;
}

/* One generation record of history.json, its file read and checked. */
static int load_record(struct ctl_state *st, const json_t *v, const char *where, struct ctl_gen *g,
		       struct fwd_err *e)
{
	const json_t *id = json_object_get(v, "id"), *hash = json_object_get(v, "hash"),
		     *kind = json_object_get(v, "kind"), *dh = json_object_get(v, "doc_hash");
	struct fwd_err fe = {0};
	char f[64], path[512];

	if (!json_is_object(v) || !json_is_integer(id) || json_integer_value(id) < 1 ||
	    !json_is_string(hash) || json_string_length(hash) != 16)
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, "history.json", 0, where,
				    "a generation record needs an id >= 1 and a 16-digit hash");
	memset(g, 0, sizeof(*g));
	g->id = (uint64_t)json_integer_value(id);
	if (parse_hash(hash, &g->hash))
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, "history.json", 0, where,
				    "hash '%s' is not 16 hex digits", json_string_value(hash));
	/* absent in records written before deltas: a document */
	if (kind != NULL &&
	    (!json_is_string(kind) || (strcmp(json_string_value(kind), "document") &&
				       strcmp(json_string_value(kind), "delta"))))
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, "history.json", 0, where,
				    "kind must be \"document\" or \"delta\"");
	g->kind = kind && strcmp(json_string_value(kind), "delta") == 0 ? CTL_GEN_DELTA
									: CTL_GEN_DOCUMENT;
	g->doc_hash = g->hash;
	if (dh != NULL && (g->kind == CTL_GEN_DELTA || parse_hash(dh, &g->doc_hash)))
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, "history.json", 0, where,
				    "doc_hash must be 16 hex digits, of a document");
	g->checkpoint = json_is_true(json_object_get(v, "checkpoint"));
	{
		const json_t *own = json_object_get(v, "owned");

		g->own = CTL_OWN_UNKNOWN; /* absent: an older regiond's record */
		for (int k = CTL_OWN_FILE; own && k <= CTL_OWN_NONE; k++)
			if (json_is_string(own) &&
			    strcmp(json_string_value(own), own_names[k]) == 0)
				g->own = (enum ctl_gen_own)k;
		if (own && (g->own == CTL_OWN_UNKNOWN ||
			    (g->kind == CTL_GEN_DOCUMENT && g->own != CTL_OWN_FILE &&
			     g->own != CTL_OWN_NONE)))
			return fwd_err_fail(e, FWD_R_STATE_CORRUPT, "history.json", 0, where,
					    "owned must be \"file\" or \"none\", or of a delta "
					    "\"feed\" or \"other\"");
	}
	g->time = json_integer_value(json_object_get(v, "time"));
	snprintf(g->author, sizeof(g->author), "%s",
		 json_string_value(json_object_get(v, "author")) ?: "");
	snprintf(g->comment, sizeof(g->comment), "%s",
		 json_string_value(json_object_get(v, "comment")) ?: "");
	/* absent in records written before it was kept */
	snprintf(g->by, sizeof(g->by), "%s", json_string_value(json_object_get(v, "by")) ?: "");
	gen_file(f, sizeof(f), g->id, g->kind);
	snprintf(path, sizeof(path), "%s/%s", st->dir, f);
	if (g->kind == CTL_GEN_DELTA)
		return load_delta(st, v, where, g, path, e);
	/* Which of the two: "missing" sent operators looking for a file that
	 * was there, as a directory or a FIFO. */
	if (fwd_read_file(path, &g->doc, &g->len, &fe))
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "",
				    "%s; history.json names it as generation %" PRIu64, fe.reason,
				    g->id);
	if (fwd_hash64(g->doc, g->len) != g->doc_hash)
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "",
				    "does not match its hash in history.json");
	return 0;
}

/* A delta record @g is the generation after @prev (NULL: none kept) and
 * has the chain hash its changes make from it. */
static int check_chain(const struct ctl_state *st, const struct ctl_gen *prev,
		       const struct ctl_gen *g, struct fwd_err *e)
{
	char f[64], path[512];

	if (g->kind != CTL_GEN_DELTA)
		return 0;
	gen_file(f, sizeof(f), g->id, g->kind);
	snprintf(path, sizeof(path), "%s/%s", st->dir, f);
	if (prev == NULL || prev->id != g->parent)
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "",
				    "its parent, generation %" PRIu64
				    ", is not the generation before it in history.json",
				    g->parent);
	if (fwd_delta_hash(prev->hash, g->changes, g->clen) != g->hash)
		return fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "",
				    "does not match its hash in history.json (chain from "
				    "generation %" PRIu64 ")",
				    prev->id);
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
 * awaits confirmation, or the pending one when regiond stopped while
 * applying it (written ahead with it; resolved with it); an older one when
 * regiond stopped between recording the automatic revert and clearing the
 * record (the revert happened: the record is spent). Anything else, or a revert target the history does not
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
	if ((cur == NULL || gen > cur->id) && !(st->has_pending && gen == st->pending.id && cur))
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
	st->confirm_due_wall = 1; /* a restart's: it follows the wall clock (ctl_confirm.c) */
	ctl_confirm_set_due(st);
	/* Said at start: a restart that said nothing left the operator
	 * unaware of a revert coming (a walkthrough). Not of a pending
	 * generation's: it may be dropped (resolved by what regionfwd runs),
	 * and then nothing reverts (a review). */
	if (cur && gen == cur->id)
		fwd_log(FWD_LOG_NOTICE,
			"generation %" PRIu64
			" awaits confirmation, as when regiond stopped: it reverts "
			"to generation %" PRIu64 " in %" PRId64
			" s unless confirmed (regionctl confirm)",
			gen, st->revert_to, ctl_confirm_left_s(st));
	return 0;
}

/* The table of hist[@i]: the nearest document at or before it, then each
 * delta after it applied in order. @full: the document is validated as a
 * change would be (residency, the extensions: regiond's current table at
 * start), else parsed only (it was validated when it was made). A delta
 * that does not apply is corruption, named by its file. */
static struct fwd_table *replay(const struct ctl_state *st, unsigned i, int full, struct fwd_err *e)
{
	unsigned b = i;
	struct fwd_table *t;
	struct fwd_err fe = {0};

	while (b > 0 && st->hist[b].kind == CTL_GEN_DELTA)
		b--;
	if (st->hist[b].kind == CTL_GEN_DELTA) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, "history.json", 0, "",
			     "generation %" PRIu64 " is a delta with no document kept before it",
			     st->hist[b].id);
		return NULL;
	}
	if (full) {
		t = ctl_state_validate(st, st->hist[b].doc, st->hist[b].len, "current", e);
	} else {
		t = fwd_table_parse(st->hist[b].doc, st->hist[b].len, "document", -1, &fe);
		if (t == NULL) {
			*e = fe;
			e->reason_code = FWD_R_STATE_CORRUPT;
		}
	}
	for (unsigned k = b + 1; t && k <= i; k++) {
		const struct ctl_gen *g = &st->hist[k];
		struct fwd_delta d = {0};
		struct fwd_table *nt = NULL;
		char f[64], path[512];

		gen_file(f, sizeof(f), g->id, g->kind);
		snprintf(path, sizeof(path), "%s/%s", st->dir, f);
		if (fwd_delta_unpack(g->changes, g->clen, &d, &fe) ||
		    fwd_delta_apply(t, &d, &nt, NULL, NULL, &fe) || nt == NULL) {
			fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, fe.path,
				     "does not apply to generation %" PRIu64 ": %s", g->parent,
				     nt == NULL && fe.reason[0] == '\0' ? "it changes nothing"
									: fe.reason);
			fwd_table_free(nt);
			nt = NULL;
		}
		fwd_delta_clear(&d);
		fwd_table_free(t);
		t = nt;
	}
	return t;
}

/* gen-@id.owned read into *@out. One that cannot be read (removed or
 * damaged on disk) is not known, as an older regiond's record: an error
 * here once failed every fold reading it, and retention then kept every
 * later generation (history and files growing with each change, each
 * paying a replay in the fold tried again). @return 0; 1 not known
 * (logged); -1 out of memory, with @e. */
static int load_owned(const struct ctl_state *st, uint64_t id, struct ctl_ownset **out,
		      struct fwd_err *e)
{
	struct ctl_ownset *s = ctl_ownset_new();
	char f[64], path[512], *buf = NULL;
	size_t len = 0;
	int rc;

	owned_file(f, sizeof(f), id);
	snprintf(path, sizeof(path), "%s/%s", st->dir, f);
	if (s == NULL)
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory"), -1;
	rc = fwd_read_file(path, &buf, &len, e);
	if (rc == 0)
		rc = ctl_ownset_parse(s, buf, len, path, e);
	free(buf);
	if (rc == 0) {
		*out = s;
		return 0;
	}
	ctl_ownset_free(s);
	if (rc == -ENOMEM || e->reason_code == FWD_R_INTERNAL)
		return -1;
	fwd_log(FWD_LOG_WARNING,
		"%s cannot be read (%s): which prefixes the BGP feed had added to generation "
		"%" PRIu64 " is not known; a rollback to it brings them back as static prefixes "
		"(docs/bgp-feed.md)",
		path, e->reason, id);
	memset(e, 0, sizeof(*e));
	return 1;
}

/* The owned set of hist[@i]: the nearest one written out at or before it
 * (gen-N.owned), then each delta after it: the feed's additions are the
 * feed's, and a removal, anyone's, takes a prefix out. An addition by
 * someone else is a static prefix (a delta cannot add a prefix another
 * region holds, nor one its region holds already). @return 0 with *@out,
 * 1 not known (a record of an older regiond on the way, or a gen-N.owned
 * that cannot be read), -1 with @e. */
static int owned_at(const struct ctl_state *st, unsigned i, struct ctl_ownset **out,
		    struct fwd_err *e)
{
	struct fwd_table *names = NULL;
	const struct fwd_table *t;
	struct ctl_ownset *s;
	unsigned b = i, j;
	int lrc;

	*out = NULL;
	while (st->hist[b].own == CTL_OWN_FEED || st->hist[b].own == CTL_OWN_OTHER) {
		if (b == 0)
			return 1;
		b--;
	}
	if (st->hist[b].own == CTL_OWN_NONE) {
		if ((s = ctl_ownset_new()) == NULL)
			return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory"), -1;
	} else if (st->hist[b].own != CTL_OWN_FILE) {
		return 1;
	} else if ((lrc = load_owned(st, st->hist[b].id, &s, e)) != 0) {
		return lrc;
	}
	/* A delta keeps the regions of the table it changes: the current
	 * table's when only deltas follow, else replayed. */
	for (j = i + 1; j < st->nhist && st->hist[j].kind == CTL_GEN_DELTA; j++)
		;
	t = j == st->nhist ? st->table : NULL;
	if (b < i && t == NULL && (t = names = replay(st, i, 0, e)) == NULL) {
		ctl_ownset_free(s);
		return -1;
	}
	for (unsigned k = b + 1; k <= i; k++) {
		struct fwd_delta d = {0};
		int rc = 0;

		if (fwd_delta_unpack(st->hist[k].changes, st->hist[k].clen, &d, e)) {
			rc = -1;
		} else {
			for (uint32_t n = 0; n < d.n && rc == 0; n++) {
				const struct fwd_delta_op *op = &d.ops[n];
				struct ctl_rib_pfx p = {.family = op->family, .len = op->len};

				memcpy(p.addr, op->addr, 16);
				if (op->kind == FWD_DELTA_REMOVE)
					ctl_ownset_del(s, &p);
				else if (st->hist[k].own == CTL_OWN_FEED &&
					 op->region < t->nregions &&
					 ctl_ownset_put(s, &p, t->region_names[op->region]))
					rc = fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "",
							  "out of memory");
			}
		}
		fwd_delta_clear(&d);
		if (rc) {
			fwd_table_free(names);
			ctl_ownset_free(s);
			return -1;
		}
	}
	fwd_table_free(names);
	*out = s;
	return 0;
}

int ctl_state_owned(const struct ctl_state *st, const struct ctl_gen *g, struct ctl_ownset **out,
		    struct fwd_err *e)
{
	*out = NULL;
	if (g < st->hist || g >= st->hist + st->nhist) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "not a generation of the history");
		return -1;
	}
	return owned_at(st, (unsigned)(g - st->hist), out, e);
}

/* @s as gen-@id.owned, durably; none for an empty set (most tables,
 * every one of a regiond without the feed). @return the generation's
 * record (CTL_OWN_FILE, CTL_OWN_NONE), or -errno. */
static int write_owned(const struct ctl_state *st, uint64_t id, const struct ctl_ownset *s)
{
	char f[64], *text;
	size_t len;
	int rc;

	if (ctl_ownset_count(s) == 0)
		return CTL_OWN_NONE;
	owned_file(f, sizeof(f), id);
	if ((text = ctl_ownset_text(s, &len)) == NULL)
		return -ENOMEM;
	rc = write_atomic(st, f, text, len);
	free(text);
	return rc ? rc : CTL_OWN_FILE;
}

struct own_merge {
	struct ctl_ownset *s;
	const struct fwd_table *t;
	int rc;
};

static int own_merge_one(void *arg, const struct ctl_rib_pfx *p, const char *region)
{
	struct own_merge *m = arg;
	int id = ctl_ownset_held_by(m->t, p);

	/* Only where @t holds it in that region: anything else is not the
	 * feed's in @t (someone moved or removed it). */
	if (m->t == NULL || (id > 0 && strcmp(m->t->region_names[id], region) == 0))
		m->rc = ctl_ownset_put(m->s, p, region);
	return m->rc;
}

/* The owned set of document @t, about to follow the current generation:
 * what the feed had added to the current one and @t holds in the same
 * region (a full PUT carries the static prefixes, so mostly none), and, for
 * a rollback (st->rollback_of), what it had added to the generation rolled
 * back to, which @t holds again: the feed's, not static ones (a rollback
 * once brought back prefixes the routing daemon had withdrawn since as
 * static ones, for ever). @return 0 with *@out, 1 not known (the current
 * generation's is not), logged. */
static int doc_owned(const struct ctl_state *st, const struct fwd_table *t, struct ctl_ownset **out)
{
	const struct ctl_gen *cur = ctl_state_current(st),
			     *to = st->rollback_of ? ctl_state_find(st, st->rollback_of) : NULL;
	struct ctl_ownset *s = NULL, *back = NULL;
	struct fwd_err e = {0};
	int rc, cur_unknown = 0;

	*out = NULL;
	if (cur == NULL)
		rc = (s = ctl_ownset_new())
			     ? 0
			     : fwd_err_fail(&e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	else
		rc = owned_at(st, (unsigned)(cur - st->hist), &s, &e);
	if (rc < 0)
		fwd_log(FWD_LOG_ERR,
			"which prefixes the BGP feed added to generation %" PRIu64
			" cannot be read (%s): the next generation does not record them either",
			cur->id, e.reason);
	if (rc && to == NULL)
		return 1;
	if (rc) {
		/* The current generation's set is not known, but a rollback's
		 * target may be: recorded alone, it still gives the feed back
		 * what it had added there (returning "not known" let them come
		 * back static, a review). What the feed owns now stays its own
		 * by its record either way. */
		ctl_ownset_free(s);
		if ((s = ctl_ownset_new()) == NULL)
			return 1;
		cur_unknown = 1;
	}
	if (to) {
		rc = owned_at(st, (unsigned)(to - st->hist), &back, &e);
		if (rc == 0 && cur_unknown)
			fwd_log(FWD_LOG_WARNING,
				"which prefixes the BGP feed added to generation %" PRIu64
				" is not known: the rollback records only those it had added "
				"to generation %" PRIu64,
				cur->id, to->id);
		if (rc == 0) {
			struct own_merge m = {.s = s, .t = t};

			ctl_ownset_foreach(back, own_merge_one, &m);
			ctl_ownset_free(back);
			if (m.rc) {
				ctl_ownset_free(s);
				return 1;
			}
		} else {
			fwd_log(FWD_LOG_WARNING,
				"rollback to generation %" PRIu64
				": which of its prefixes the BGP feed had added is not known (%s): "
				"any it holds come back as static prefixes (docs/bgp-feed.md)",
				to->id,
				rc > 0 ? "not recorded: an older regiond's history, or its "
					 "gen-N.owned "
					 "cannot be read"
				       : e.reason);
			if (cur_unknown) { /* neither known: not known, as before */
				ctl_ownset_free(s);
				return 1;
			}
		}
	}
	ctl_ownset_keep_held(s, t);
	*out = s;
	return 0;
}

int ctl_state_own_bootstrap(struct ctl_state *st, const struct ctl_ownset *s, struct fwd_err *e)
{
	struct ctl_gen *cur = st->nhist ? &st->hist[st->nhist - 1] : NULL;
	struct ctl_ownset *k = NULL;
	struct own_merge m = {.t = st->table};
	int rc;

	if (cur == NULL || st->table == NULL)
		return 0;
	rc = owned_at(st, st->nhist - 1, &k, e);
	ctl_ownset_free(k);
	if (rc <= 0)
		return rc; /* known (or unreadable: said by the caller) */
	if ((m.s = ctl_ownset_new()) == NULL)
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory"), -1;
	ctl_ownset_foreach(s, own_merge_one, &m);
	rc = m.rc ? m.rc : write_owned(st, cur->id, m.s);
	ctl_ownset_free(m.s);
	if (rc < 0) {
		char f[64];

		owned_file(f, sizeof(f), cur->id);
		return fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "", "cannot write %s/%s: %s",
				    st->dir, f, strerror(-rc)),
		       -1;
	}
	cur->own = (enum ctl_gen_own)rc;
	if (ctl_state_save(st, e)) {
		cur->own = CTL_OWN_UNKNOWN; /* the file goes at the next start */
		return -1;
	}
	return 0;
}

/* The keys of history.json this regiond reads; the rest are a newer
 * regiond's (a downgrade) or an edit's misspelling. */
static const char *const hist_keys[] = {"next_id", "state_id", "state_id_new", "ran", "generations",
					"pending", "confirm",  "confirmed",    NULL};
static const char *const record_keys[] = {
	"id",	 "time",   "hash",  "author",  "comment",  "by",	 "file",   "kind",
	"owned", "parent", "added", "removed", "doc_hash", "checkpoint", "hidden", NULL};
static const char *const confirm_keys[] = {"generation", "revert_to", "deadline", "reverts_in_s",
					   NULL};

/* Append to @out (@len) each key of @obj that @known does not hold, as
 * "@where.key" ("key" at the top); @n counts them. */
static void unknown_keys(const json_t *obj, const char *where, const char *const *known, char *out,
			 size_t len, unsigned *n)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return;
	json_object_foreach((json_t *)obj, key, v) {
		unsigned k = 0;
		size_t at = strlen(out);

		while (known[k] && strcmp(known[k], key))
			k++;
		if (known[k])
			continue;
		(*n)++;
		if (at + 1 < len)
			snprintf(out + at, len - at, "%s%s%s%.40s", at ? ", " : "", where,
				 where[0] ? "." : "", key);
	}
}

/* Said once at start, not refused: a downgrade must start, and the keys
 * are not kept (the next change writes the history without them). A
 * misspelt optional key was once taken without a word. */
static void say_unknown_keys(const json_t *root, const char *path)
{
	const json_t *gens = json_object_get(root, "generations"), *v;
	char out[512] = "", where[48];
	unsigned n = 0;
	size_t i;

	unknown_keys(root, "", hist_keys, out, sizeof(out), &n);
	json_array_foreach(gens, i, v) {
		snprintf(where, sizeof(where), "generations[%zu]", i);
		unknown_keys(v, where, record_keys, out, sizeof(out), &n);
	}
	unknown_keys(json_object_get(root, "pending"), "pending", record_keys, out, sizeof(out),
		     &n);
	unknown_keys(json_object_get(root, "confirm"), "confirm", confirm_keys, out, sizeof(out),
		     &n);
	if (n)
		fwd_log(FWD_LOG_WARNING,
			"%s: %u key%s this regiond does not know (%s%s): written by a newer "
			"regiond, or misspelt? not used, and dropped when the history is next "
			"written",
			path, n, n == 1 ? "" : "s", out,
			strlen(out) + 1 >= sizeof(out) ? " ..." : "");
}

/* Read history.json strictly: anything it does not say exactly as regiond
 * writes it stops regiond, naming the file and what is wrong; regiond never
 * reverts or deletes on a guess. Keys it does not know are said, not refused
 * (say_unknown_keys). */
static int load_history(struct ctl_state *st, const char *path, struct fwd_err *e)
{
	json_error_t je;
	json_t *root = NULL, *gens, *v, *cf, *pend, *nid;
	uint64_t disk_next;
	size_t i, len;
	char *text = NULL;
	int rc = -EINVAL;

	/* A regular file only: json_load_file() would wait for ever on a FIFO
	 * (no log line, no API socket); fwd_read_file() opens without
	 * blocking and refuses anything but a regular file, by name. */
	if (fwd_read_file(path, &text, &len, e)) {
		e->reason_code = FWD_R_STATE_CORRUPT;
		return -EINVAL;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	st->history_sum = fwd_hash64(text, len);
	free(text);

	gens = json_object_get(root, "generations");
	nid = json_object_get(root, "next_id");
	if (root == NULL || !json_is_array(gens) || !json_is_integer(nid) ||
	    json_integer_value(nid) < 1) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, root ? 0 : (uint32_t)je.line, "", "%s",
			     root ? "needs 'generations' (a list) and 'next_id' (>= 1)" : je.text);
		goto out;
	}
	disk_next = (uint64_t)json_integer_value(nid);
	if (disk_next > FWD_GEN_ID_MAX + 1) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "next_id",
			     "%" PRIu64 " is past the largest generation id, %" PRIu64, disk_next,
			     (uint64_t)FWD_GEN_ID_MAX);
		goto out;
	}
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
		if (json_is_true(json_object_get(v, "hidden"))) {
			if (st->hidden != st->nhist) {
				fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, where,
					     "a hidden generation after a listed one");
				goto out;
			}
			st->hidden++;
		}
		st->nhist++;
		if (check_chain(st, st->nhist > 1 ? &st->hist[st->nhist - 2] : NULL, g, e))
			goto out;
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
		if (check_chain(st, ctl_state_current(st), &st->pending, e))
			goto out;
	}
	if ((st->nhist && disk_next <= st->hist[st->nhist - 1].id) ||
	    (st->has_pending && disk_next <= st->pending.id)) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "next_id",
			     "%" PRIu64 " is not above every generation's id", disk_next);
		goto out;
	}
	st->next_id = disk_next;
	/* Absent from a history an older regiond wrote: ctl_state_open makes
	 * one. */
	v = json_object_get(root, "state_id");
	if (v != NULL && (parse_hash(v, &st->state_id) || st->state_id == 0)) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "state_id",
			     "must be the directory's identity, 16 hex digits, not all zero");
		goto out;
	}
	v = json_object_get(root, "state_id_new");
	if (v != NULL && !json_is_true(v)) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "state_id_new",
			     "is true when present");
		goto out;
	}
	st->state_id_new = v != NULL;
	/* Absent from an older regiond's history, and before regionfwd was
	 * first seen running a generation of this one's. */
	v = json_object_get(root, "ran");
	if (v != NULL && (parse_hash(v, &st->ran_hash) || st->ran_hash == 0)) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "ran",
			     "must be a generation's hash, 16 hex digits, not all zero");
		goto out;
	}
	st->ran_written = st->ran_hash;
	cf = json_object_get(root, "confirm");
	if (cf != NULL && !json_is_null(cf) && load_confirm(st, cf, path, e))
		goto out;
	/* The last generation confirmed: only ever compared with what a
	 * confirm names, so one retention dropped since is no corruption. */
	cf = json_object_get(root, "confirmed");
	if (cf != NULL && (!json_is_integer(cf) || json_integer_value(cf) < 1)) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "confirmed",
			     "must be a generation id (an integer >= 1)");
		goto out;
	}
	st->confirmed_gen = cf ? (uint64_t)json_integer_value(cf) : 0;
	if (check_documents(st, disk_next, 0, 1, e))
		goto out;
	if (st->hidden && st->hidden + 2 > st->nhist) {
		fwd_err_fail(e, FWD_R_STATE_CORRUPT, path, 0, "generations",
			     "%u of %u generations hidden: the current one and the one before it "
			     "are always listed",
			     st->hidden, st->nhist);
		goto out;
	}
	if (st->nhist && (st->table = replay(st, st->nhist - 1, 1, e)) == NULL)
		goto out;
	check_documents(st, disk_next, 0, -1, e);
	say_unknown_keys(root, path);
	{
		unsigned old = 0;

		for (unsigned k = st->hidden; k < st->nhist; k++)
			old += st->hist[k].own == CTL_OWN_UNKNOWN;
		if (old)
			fwd_log(FWD_LOG_NOTICE,
				"%u of the %u generations listed were recorded by an older "
				"regiond, "
				"without which of their prefixes the BGP feed had added: a "
				"rollback "
				"to one of them brings those back as static prefixes "
				"(docs/bgp-feed.md)",
				old, st->nhist - st->hidden);
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* A random identity for this state directory (ctl_state.state_id). */
static int new_state_id(struct ctl_state *st, struct fwd_err *e)
{
	uint64_t v = 0;

	while (v == 0)
		if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
			fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "",
				     "cannot draw the state directory's identity: %s",
				     strerror(errno));
			return -EIO;
		}
	st->state_id = v;
	return 0;
}

int ctl_state_open(struct ctl_state *st, const char *dir, unsigned keep, struct ctl_dp *dp,
		   struct fwd_err *e)
{
	struct ctl_ext ext[CTL_MAX_EXT];
	unsigned next = st->next;
	char path[512];
	struct stat sb;

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
	/* One regiond a state directory: a second one (a regiond started by
	 * hand beside the unit's, a unit and a copy of it) would hand out the
	 * same ids and write its gen-N.doc over the first's. */
	st->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dir_fd < 0) {
		int err = errno;

		st->dir_fd = 0;
		fwd_err_fail(e, FWD_R_STATE_DIR, NULL, 0, "", "cannot open %s: %s", dir,
			     strerror(err));
		return -err;
	}
	if (flock(st->dir_fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;

		close(st->dir_fd);
		st->dir_fd = 0;
		fwd_err_fail(
			e, FWD_R_STATE_DIR, NULL, 0, "",
			err == EWOULDBLOCK
				? "%s is in use by another regiond (it holds the directory's "
				  "lock): two on one history would overwrite each other's "
				  "generations; stop it, or give this one a --state-dir of its own"
				: "cannot lock %s: %s",
			dir, strerror(err));
		return -err;
	}
	snprintf(path, sizeof(path), "%s/history.json", dir);
	/* lstat: a history.json that is a dangling symlink is not "none" (a
	 * fresh state directory) but one that cannot be read, said by name. */
	if (lstat(path, &sb) != 0 && errno == ENOENT) { /* a fresh state directory */
		if (check_documents(st, 1, 1, 2, e))
			return -EINVAL;
		/* Written with the first change, which comes before any push. */
		return new_state_id(st, e);
	}
	if (load_history(st, path, e))
		return -EINVAL;
	st->history_len = S_ISREG(sb.st_mode) ? (size_t)sb.st_size : 0;
	if (st->state_id == 0) {
		struct fwd_err se;

		if (new_state_id(st, e))
			return -EIO;
		st->state_id_new = 1;
		/* An older regiond's history: written now, so a restart before
		 * the next change pushes under the same identity. */
		if (ctl_state_save(st, &se))
			fwd_log(FWD_LOG_WARNING,
				"%s/history.json has no state_id (an older regiond wrote it) "
				"and cannot be written with one now (%s): the next change writes "
				"it",
				dir, se.reason);
	}
	return 0;
}

/* What the next change may write to the state directory: a document as
 * large as the largest held (a PUT of the same size), or a delta as large
 * as the largest held (a prefix batch, the feed's), and retention's
 * checkpoint, the whole current table: when that is a delta generation,
 * its last document or checkpoint and the deltas since (their packed
 * changes, about the size of their text). A document written twice over,
 * or a checkpoint and a delta, fit in twice the larger of the two sizes
 * and the largest delta; and CTL_DISK_SPARE for history.json and the
 * owned-prefix record. */
static uint64_t disk_need(const struct ctl_state *st)
{
	uint64_t doc = st->has_pending && st->pending.doc ? st->pending.len : 0,
		 delta = st->has_pending && st->pending.changes ? st->pending.clen : 0, table = 0;
	int base_seen = 0;

	for (unsigned i = 0; i < st->nhist; i++) {
		const struct ctl_gen *g = &st->hist[i];

		if (g->doc && g->len > doc)
			doc = g->len;
		if (g->changes && g->clen > delta)
			delta = g->clen;
	}
	for (unsigned i = st->nhist; i-- > 0 && !base_seen;) {
		const struct ctl_gen *g = &st->hist[i];

		table += g->doc ? g->len : g->clen;
		base_seen = g->doc != NULL;
	}
	return 2 * (doc > table ? doc : table) + delta + CTL_DISK_SPARE;
}

int ctl_state_stat_disk(const struct ctl_state *st, struct statvfs *v)
{
	/* dir_fd is set once at open: no lock needed, and none held, since
	 * a statfs on a network filesystem is a round trip that may hang */
	return st->dir_fd > 0 && fstatvfs(st->dir_fd, v) == 0 ? 0 : -1;
}

/* Said before the refusals come: every change is refused persist_failed
 * once the disk cannot take its document and record, and an operator
 * learnt of it only from a failed change in an incident. The sentence
 * holds no figure, which moves: one line when raised, one when cleared
 * (status and /metrics carry the figures). Cleared with a quarter more
 * than needed, so a disk hovering at the mark does not log a pair a
 * second. A filesystem that reports no size (ramfs) has no figures. */
static void check_disk(struct ctl_state *st, const struct statvfs *v)
{
	uint64_t need = disk_need(st);
	int raised = st->alarms[CTL_ALARM_STATE_DISK][0] != '\0';

	if (v == NULL || v->f_blocks == 0) {
		st->disk_known = 0;
		ctl_state_alarm(st, CTL_ALARM_STATE_DISK, NULL);
		return;
	}
	st->disk_known = 1;
	st->disk_free = (uint64_t)v->f_bavail * v->f_frsize;
	st->disk_need = need;
	if (v->f_flag & ST_RDONLY)
		ctl_state_alarm(st, CTL_ALARM_STATE_DISK,
				"the state directory %s is on a read-only filesystem: every change "
				"is refused (persist_failed); remount it read-write",
				st->dir);
	else if (st->disk_free < need || (raised && st->disk_free < need + need / 4))
		/* "full" when nothing is left: "nearly full" with 0 bytes free
		 * read as a warning of what had already happened (a walkthrough).
		 * No byte count in it: the text is the alarm, logged when it
		 * changes, and the free bytes move all the time. */
		ctl_state_alarm(
			st, CTL_ALARM_STATE_DISK,
			"the state directory %s's filesystem is %s: less free than the next "
			"change may need (status state_disk: twice the current table, the "
			"largest delta and 256 KiB), so it %s refused (persist_failed); free "
			"space there",
			st->dir, st->disk_free ? "nearly full" : "full",
			st->disk_free ? "may be" : "will be");
	else
		ctl_state_alarm(st, CTL_ALARM_STATE_DISK, NULL);
}

/* Whether @name in the state directory is a regular file of @size bytes
 * (-1: any size): 1 it is; 0 it is damaged and may be written over (*what
 * says how); -1 a directory stands there, which a rename cannot replace. */
static int file_is(const struct ctl_state *st, const char *name, off_t size, const char **what)
{
	struct stat s;

	if (fstatat(st->dir_fd, name, &s, AT_SYMLINK_NOFOLLOW) != 0)
		*what = errno == ENOENT ? "removed" : "unreadable";
	else if (S_ISDIR(s.st_mode))
		return *what = "replaced by a directory", -1;
	else if (!S_ISREG(s.st_mode))
		*what = "replaced by something not a file";
	else if (s.st_nlink != 1) /* an edit through the other name is unseen */
		*what = "given a second name (a hard link)";
	else if (size >= 0 && s.st_size != size)
		*what = s.st_size < size ? "cut short" : "grown";
	else
		return 1;
	return 0;
}

/* A damaged file could not be written again: said, and tried again after
 * 1 s, 2 s, 4 s, then every 8 s (not at every tick: a full disk was filled
 * and emptied each time, the feed's and regionfwd's writes failing
 * meanwhile). @return 1 */
static int files_alarm(struct ctl_state *st, const char *name, uint64_t id, const char *what,
		       const char *why)
{
	char gen[48] = "";
	int64_t now = fwd_mono_ms();

	if (id)
		snprintf(gen, sizeof(gen), " (generation %" PRIu64 ")", id);
	ctl_state_alarm(st, CTL_ALARM_STATE_DIR,
			"%s/%s%s was %s while regiond runs and cannot be written again (%s): a "
			"restart of regiond would stop on it; %s",
			st->dir, name, gen, what, why,
			strcmp(what, "replaced by a directory") == 0 ? "move the directory away"
								     : "make room there");
	st->files_backoff_ms = st->files_backoff_ms ? st->files_backoff_ms * 2 : 1000;
	if (st->files_backoff_ms > 8000) /* no other file is looked at meanwhile */
		st->files_backoff_ms = 8000;
	st->files_retry_ms = now + st->files_backoff_ms;
	st->files_alarm = 1;
	return 1;
}

/* Generation files looked at a tick: --keep may be 10,000, an fstatat each
 * under the state's locks (~1 us); 64 a tick once left a removed file of a
 * 4,000-generation history unseen for a minute. */
#define CHECK_FILES_TICK 2048
#define CHECK_FILES_WRITES 16 /* files written again a tick, at most */

/* Bytes of generation files compared with what regiond holds, a tick. */
#define VERIFY_BYTES_TICK (1u << 20)

/* Damage that keeps a file's type, size and links (a bit flipped, an
 * edit in place) was found only by the next start's hash check, which then
 * stopped: the generation files are read back, VERIFY_BYTES_TICK a tick
 * round robin (a million-prefix document over some 30 s), and compared
 * with what regiond holds. @return 1 when the state directory's alarm
 * stands. */
static int verify_content(struct ctl_state *st)
{
	unsigned n = st->nhist + (st->has_pending ? 1u : 0u);
	size_t budget = VERIFY_BYTES_TICK;
	char buf[65536];

	for (unsigned step = 0; n && budget && step <= n;) {
		unsigned i = st->verify_next % n;
		const struct ctl_gen *g = i < st->nhist ? &st->hist[i] : &st->pending;
		int delta = g->kind == CTL_GEN_DELTA, fd, rc;
		const char *data = delta ? (const char *)g->changes : g->doc;
		size_t len = delta ? g->clen : g->len, off;
		char f[64];

		if (g->id != st->verify_id) { /* the list moved: this one from its start */
			st->verify_id = g->id;
			st->verify_off = 0;
		}
		off = st->verify_off;
		if (data == NULL || (st->unsaved_id && g->id == st->unsaved_id) || off >= len) {
			st->verify_next = (i + 1) % n;
			st->verify_id = 0;
			step++;
			continue;
		}
		gen_file(f, sizeof(f), g->id, g->kind);
		fd = openat(st->dir_fd, f, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return 0; /* check_files' to say: removed, replaced */
		while (budget && off < len) {
			size_t want = len - off < sizeof(buf) ? len - off : sizeof(buf);
			ssize_t r;

			if (want > budget)
				want = budget;
			r = pread(fd, buf, want, (off_t)off);
			if (r <= 0)
				break; /* cut short meanwhile: check_files says it */
			if (memcmp(buf, data + off, (size_t)r) != 0) {
				size_t k = 0;

				while (buf[k] == data[off + k]) /* where: said in the log */
					k++;
				off += k;
				close(fd);
				if ((rc = write_atomic(st, f, data, len)) != 0)
					return files_alarm(st, f, g->id, "changed", strerror(-rc));
				fwd_log(FWD_LOG_WARNING,
					"%s/%s (generation %" PRIu64
					") was changed while regiond runs "
					"(its size kept; bytes from %zu differ): written again "
					"from what "
					"regiond holds",
					st->dir, f, g->id, off);
				st->verify_off = 0;
				return 0;
			}
			off += (size_t)r;
			budget -= (size_t)r;
		}
		close(fd);
		st->verify_off = off;
		if (off < len && budget)
			return 0; /* a short read: check_files' next tick */
	}
	return 0;
}

/* history.json's bytes against the hash of what regiond last wrote or read
 * there. An edit in place that kept its size (file_is sees type, size and
 * links) was found only by the next start, which stopped on it. Read whole
 * only when its ctime moved since it last matched: a write changes the
 * ctime, and nothing can set it back (a history of --keep 10000 is MBs, read
 * under the state's locks every second otherwise).
 * @return 1 when it differs; 0 when it is the same or was not read whole
 * (gone or cut meanwhile: file_is says so at the next tick). */
static int history_changed(struct ctl_state *st)
{
	uint64_t h = FWD_HASH64_SEED;
	size_t off = 0;
	char buf[65536];
	struct stat sb;
	int fd;

	if (st->history_len == 0 || st->history_sum == 0)
		return 0;
	fd = openat(st->dir_fd, "history.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &sb) == 0 && sb.st_ctim.tv_sec == st->history_ctime.tv_sec &&
	    sb.st_ctim.tv_nsec == st->history_ctime.tv_nsec) {
		close(fd);
		return 0;
	}
	while (off <= st->history_len) {
		ssize_t r = pread(fd, buf, sizeof(buf), (off_t)off);

		if (r <= 0)
			break;
		h = fwd_hash64_update(h, buf, (size_t)r);
		off += (size_t)r;
	}
	close(fd);
	if (off != st->history_len)
		return 0;
	if (h != st->history_sum)
		return 1;
	st->history_ctime = sb.st_ctim; /* as it should be: not read again until it moves */
	return 0;
}

/* The files a restart reads: every generation history.json lists (and the
 * pending one), then history.json itself, checked by type and size, a
 * bounded number a tick. Damage while regiond ran (a file removed, cut,
 * replaced) went unsaid, health healthy, until the next start stopped on
 * it (a probe of disk faults). regiond holds all of it in memory: what is
 * damaged is written again from there, and said: generation files first,
 * history.json last (a history naming a file not on disk stops the next
 * start). Not the generation ctl_state_persist_unsaved() owes the disk
 * (no file yet, by design); a damaged history.json meanwhile is written by
 * it (document first), or said. A directory in the way is not written
 * over: the alarm names it. @return 1 when the state directory's alarm
 * stands. */
static int check_files(struct ctl_state *st)
{
	unsigned n = st->nhist + (st->has_pending ? 1u : 0u);
	unsigned todo = n < CHECK_FILES_TICK ? n : CHECK_FILES_TICK;
	const char *what = NULL;
	struct fwd_err e = {0};
	int rc;

	if (st->files_alarm && fwd_mono_ms() < st->files_retry_ms)
		return 1;
	for (unsigned k = 0, written = 0; k < todo; k++) {
		unsigned i = (st->files_next + k) % n;
		const struct ctl_gen *g = i < st->nhist ? &st->hist[i] : &st->pending;
		int delta = g->kind == CTL_GEN_DELTA;
		const char *data = delta ? (const char *)g->changes : g->doc;
		size_t len = delta ? g->clen : g->len;
		char f[64];

		if (data == NULL || (st->unsaved_id && g->id == st->unsaved_id))
			continue;
		gen_file(f, sizeof(f), g->id, g->kind);
		if ((rc = file_is(st, f, (off_t)len, &what)) == 1)
			continue;
		if (rc < 0)
			return files_alarm(st, f, g->id, what, "a directory is in the way");
		if ((rc = write_atomic(st, f, data, len)) != 0)
			return files_alarm(st, f, g->id, what, strerror(-rc));
		fwd_log(FWD_LOG_WARNING,
			"%s/%s (generation %" PRIu64 ") was %s while regiond runs: written again "
			"from what regiond holds",
			st->dir, f, g->id, what);
		/* Each is an fsync under the state's locks: a backup's cp -al
		 * (every file a second name) would stall the API for seconds.
		 * The rest next tick, from here. */
		if (++written == CHECK_FILES_WRITES) {
			st->files_next = (i + 1) % n;
			return 0;
		}
	}
	st->files_next = n ? (st->files_next + todo) % n : 0;
	if (st->nhist || st->has_pending) {
		rc = file_is(st, "history.json", st->history_len ? (off_t)st->history_len : -1,
			     &what);
		if (rc == 1 && history_changed(st)) {
			rc = 0;
			what = "changed (its size kept)";
		}
	} else {
		rc = 1; /* an empty state (nothing applied or adopted yet) has none */
	}
	if (rc != 1) {
		if (rc < 0)
			return files_alarm(st, "history.json", 0, what,
					   "a directory is in the way");
		/* The history in memory names the generation the disk owes, if
		 * any: its document goes first (ctl_state_persist_unsaved
		 * writes both). Such a damage once went unsaid, and the next
		 * start stopped on it. */
		if (st->unsaved_id ? ctl_state_persist_unsaved(st, &e) : ctl_state_save(st, &e))
			return files_alarm(st, "history.json", 0, what, e.reason);
		fwd_log(FWD_LOG_WARNING,
			"%s/history.json was %s while regiond runs: written again from what "
			"regiond holds",
			st->dir, what);
	}
	if (verify_content(st))
		return 1;
	st->files_alarm = 0;
	st->files_backoff_ms = 0;
	return 0;
}

/* Whether the directory this regiond holds (and locks) is still the one
 * its path names: why not, or NULL. */
static const char *state_dir_lost(const struct ctl_state *st)
{
	struct stat held, named;

	if (st->dir_fd <= 0 || fstat(st->dir_fd, &held) != 0)
		return NULL;
	if (held.st_nlink == 0)
		return "was removed";
	if (stat(st->dir, &named) != 0)
		return "was moved away";
	if (named.st_dev != held.st_dev || named.st_ino != held.st_ino)
		return "was replaced by another directory";
	return NULL;
}

/* A change refused while the state directory's path names another
 * directory than the one this regiond locks: its files would go into that
 * one, which lacks the history they follow and which another regiond may
 * hold. A probe replaced it and started a second regiond there: each
 * issued generation 2, and the first one's, answered 200, was in no
 * directory. Checked at each write (two calls), not only at the once a
 * second check below. A commit-confirm's revert goes on (a promise to the
 * operator): what the disk refuses it holds in memory. */
static int refused_while_dir_lost(const struct ctl_state *st, struct fwd_err *e)
{
	const char *why = state_dir_lost(st);

	if (why == NULL)
		return 0;
	fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "",
		     "the state directory %s %s while regiond runs: nothing changed; put it back, "
		     "or restart regiond on the right one",
		     st->dir, why);
	return -1;
}

void ctl_state_check_dir(struct ctl_state *st, const struct statvfs *disk)
{
	const char *why = state_dir_lost(st),
		   *then = "every change is refused (persist_failed), and a restart "
			   "would begin an empty history";

	/* It once went unsaid: status healthy, exit 0, while every change
	 * was refused persist_failed and a restart would have begun afresh. */
	if (why && strcmp(why, "was replaced by another directory") == 0)
		then = "every change is refused (persist_failed): that one lacks the history they "
		       "follow, and another regiond may hold it";
	if (why)
		ctl_state_alarm(st, CTL_ALARM_STATE_DIR,
				"the state directory %s %s while regiond runs: %s; put it back, or "
				"restart regiond on the right one",
				st->dir, why, then);
	else if (!check_files(st))
		ctl_state_alarm(st, CTL_ALARM_STATE_DIR, NULL);
	check_disk(st, why ? NULL : disk);
}

void ctl_state_close(struct ctl_state *st)
{
	for (unsigned i = 0; i < st->nhist; i++) {
		free(st->hist[i].doc);
		free(st->hist[i].changes);
	}
	free(st->pending.doc);
	free(st->pending.changes);
	free(st->cache_doc);
	free(st->gone);
	free(st->hist);
	fwd_table_free(st->table);
	json_decref(st->dp_report);
	json_decref(st->dp_last);
	ctl_traffic_free(st->traffic);
	json_decref(st->handovers);
	st->handovers = NULL;
	json_decref(st->weakened);
	st->weakened = NULL;
	json_decref(st->link_states);
	st->link_states = NULL;
	pthread_mutex_destroy(&st->writer);
	if (st->dir_fd > 0)
		close(st->dir_fd); /* and its lock */
	memset(st, 0, sizeof(*st));
}

const struct ctl_gen *ctl_state_current(const struct ctl_state *st)
{
	return st->nhist ? &st->hist[st->nhist - 1] : NULL;
}

const struct ctl_gen *ctl_state_find(const struct ctl_state *st, uint64_t id)
{
	for (unsigned i = st->hidden; i < st->nhist; i++)
		if (st->hist[i].id == id)
			return &st->hist[i];
	return NULL;
}

/* Every extension's validate of @t, in order; the first refusal stops them. */
static int ext_validate(const struct ctl_state *st, const struct fwd_table *t, struct fwd_err *e)
{
	for (unsigned i = 0; i < st->next; i++)
		if (st->ext[i].validate && st->ext[i].validate(st->ext[i].arg, t, e))
			return -1;
	return 0;
}

struct fwd_table *ctl_state_gen_table(const struct ctl_state *st, const struct ctl_gen *g,
				      struct fwd_err *e)
{
	unsigned i = (unsigned)(g - st->hist);

	if (g < st->hist || i >= st->nhist) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "not a generation of the history");
		return NULL;
	}
	return replay(st, i, 0, e);
}

/* @t's model as document text (ctl_model_dump), or NULL. */
static char *model_text(const struct fwd_table *t, size_t *len)
{
	json_t *m = ctl_model(t);
	char *text = m ? ctl_model_dump(m, len) : NULL;

	json_decref(m);
	return text;
}

/* Generation @g's table's model text, from the cache or made (and cached). */
static const char *gen_model_text(struct ctl_state *st, const struct ctl_gen *g, size_t *len,
				  struct fwd_err *e)
{
	struct fwd_table *t;
	char *text;

	if (st->cache_id == g->id && st->cache_doc) {
		*len = st->cache_len;
		return st->cache_doc;
	}
	/* The current one from the table in memory; an older one replayed
	 * from the nearest document before it. */
	if (g == ctl_state_current(st)) {
		text = model_text(st->table, len);
	} else {
		if ((t = ctl_state_gen_table(st, g, e)) == NULL)
			return NULL;
		text = model_text(t, len);
		fwd_table_free(t);
	}
	if (text == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return NULL;
	}
	free(st->cache_doc);
	st->cache_doc = text;
	st->cache_len = *len;
	st->cache_id = g->id;
	return text;
}

const char *ctl_state_doc(struct ctl_state *st, const struct ctl_gen *g, size_t *len,
			  struct fwd_err *e)
{
	if (g->kind == CTL_GEN_DOCUMENT) {
		*len = g->len;
		return g->doc;
	}
	return gen_model_text(st, g, len, e);
}

const char *ctl_state_model_text(struct ctl_state *st, size_t *len, struct fwd_err *e)
{
	const struct ctl_gen *cur = ctl_state_current(st);

	if (cur == NULL) {
		fwd_err_fail(e, FWD_R_NO_TABLE, NULL, 0, "", "no table yet");
		return NULL;
	}
	return gen_model_text(st, cur, len, e);
}

int ctl_state_runs(const struct ctl_state *st, uint64_t hash)
{
	const struct ctl_gen *cur = ctl_state_current(st);

	return cur != NULL && hash != 0 &&
	       (hash == cur->hash || (st->alias_id == cur->id && hash == st->alias_hash));
}

/* What ctl_state_prepare() checked for this thread, for its validate. */
static __thread struct {
	struct fwd_table *t;
	uint64_t hash;
	size_t len;
	char name[64];
} prepared;

void ctl_state_prepared_drop(const struct ctl_state *st)
{
	fwd_table_free(prepared.t);
	prepared.t = NULL;
	for (unsigned i = 0; i < st->next; i++)
		if (st->ext[i].prepare)
			st->ext[i].prepare(st->ext[i].arg, NULL, NULL, 0);
}

/* Parse, classify and check residency: the part of validation that reads
 * nothing of the state. NULL with @e. */
static struct fwd_table *check_doc(const char *doc, size_t len, const char *name, struct fwd_err *e)
{
	struct fwd_err fe = {0};
	struct fwd_table *t = fwd_table_parse(doc, len, name, -1, &fe);
	struct fwd_class *c;

	if (t == NULL) {
		*e = fe;
		/* A content rule's mirror or steer is checked against the
		 * residency rules as it is parsed: that refusal keeps its code. */
		if (fe.reason_code != FWD_R_RESIDENCY_VIOLATION)
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
	return t;
}

void ctl_state_prepare(const struct ctl_state *st, const char *doc, size_t len, const char *name,
		       int writer)
{
	struct fwd_err e;
	struct fwd_table *t;

	ctl_state_prepared_drop(st);
	if ((t = check_doc(doc, len, name, &e)) == NULL)
		return;
	for (unsigned i = 0; i < st->next; i++)
		if (st->ext[i].prepare)
			st->ext[i].prepare(st->ext[i].arg, t, st->lock, writer);
	prepared.t = t;
	prepared.hash = fwd_hash64(doc, len);
	prepared.len = len;
	snprintf(prepared.name, sizeof(prepared.name), "%s", name);
}

struct fwd_table *ctl_state_validate(const struct ctl_state *st, const char *doc, size_t len,
				     const char *name, struct fwd_err *e)
{
	struct fwd_table *t = NULL;

	/* The table prepared from this very document, if any: taken over. */
	if (prepared.t && prepared.len == len && strcmp(prepared.name, name) == 0 &&
	    prepared.hash == fwd_hash64(doc, len)) {
		t = prepared.t;
		prepared.t = NULL;
	}
	if (t == NULL && (t = check_doc(doc, len, name, e)) == NULL)
		return NULL;
	if (ext_validate(st, t, e)) {
		fwd_table_free(t);
		return NULL;
	}
	fwd_stage("extensions' validate");
	return t;
}

struct fwd_table *ctl_state_validate_written(const struct ctl_state *st, const char *doc,
					     size_t len, const char *name, struct fwd_err *e)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	struct fwd_table *t = ctl_state_validate(st, doc, len, name, e);

	if (t && !(cur && cur->kind == CTL_GEN_DOCUMENT && cur->doc_hash == fwd_hash64(doc, len)) &&
	    fwd_table_check_written(t, e)) {
		fwd_table_free(t);
		return NULL;
	}
	return t;
}

void ctl_state_write_begin(struct ctl_state *st)
{
	pthread_mutex_lock(&st->writer);
	if (st->lock)
		pthread_mutex_lock(st->lock);
}

/* The state lock held. */
static void publish_view(struct ctl_state *st)
{
	if (st->on_write_end)
		st->on_write_end(st->on_write_end_arg);
}

void ctl_state_write_end(struct ctl_state *st)
{
	publish_view(st);
	if (st->lock)
		pthread_mutex_unlock(st->lock);
	pthread_mutex_unlock(&st->writer);
}

void ctl_state_publish(struct ctl_state *st)
{
	if (st->lock)
		pthread_mutex_lock(st->lock);
	publish_view(st);
	if (st->lock)
		pthread_mutex_unlock(st->lock);
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

/* The deadline a push or a delta carries: a tenth (at most a second) short
 * of regiond's own wait, so that a table published in time is answered in
 * time, and one answered "nothing changed" is never published later
 * (docs/architecture.md, push deadline). */
static uint64_t push_deadline(const struct ctl_state *st)
{
	return (uint64_t)(fwd_mono_ms() + st->dp_timeout_ms -
			  (st->dp_timeout_ms / 10 < 1000 ? st->dp_timeout_ms / 10 : 1000)) *
	       1000000u;
}

/* A refusal of regionfwd's (@de) as the answer of a change: not the
 * table's fault (regionfwd gone, speaking another protocol, out of memory)
 * said as it is, else "regionfwd refused". @doc_name: the name validation
 * gave the pushed text when it is the change's own document (its lines are
 * the client's: a link's port the node lacks is said at the link's line,
 * as validation's refusals are), NULL for text the client never saw (a
 * delta generation's model, a resync). */
static int dp_refusal(const struct fwd_err *de, const char *doc_name, struct fwd_err *e)
{
	if (de->reason_code == FWD_R_DATAPLANE_UNAVAILABLE ||
	    de->reason_code == FWD_R_DATAPLANE_BROKEN || de->reason_code == FWD_R_PUSH_EXPIRED ||
	    de->reason_code == FWD_R_INTERNAL) {
		fwd_err_fail(e, de->reason_code, NULL, 0, "", "%s; nothing changed", de->reason);
		return -EAGAIN;
	}
	/* A field named (a line, or a path: a JSON document has no lines) is
	 * the document's: its file is said, as the validator's refusals say
	 * it (a probe: a JSON document's refusal named no file). */
	fwd_err_fail(e, FWD_R_DATAPLANE_REFUSED, de->line || de->path[0] ? doc_name : NULL,
		     doc_name ? de->line : 0, de->path, "regionfwd refused the table: %s",
		     de->reason);
	return -EINVAL;
}

/* Ask regionfwd to run @doc as generation @id, with the content databases
 * regiond compiled for @t (binary, as compiled) when there are any. @ident:
 * the generation's identity when it is not the document's own hash (a
 * delta generation, a checkpoint), sent as generation_hash; 0 otherwise.
 * A regionfwd that answers with the document's hash instead predates
 * generation_hash: it is remembered as the generation's alias. */
static int push(struct ctl_state *st, uint64_t id, const char *doc, size_t len,
		const char *doc_name, const struct fwd_table *t, uint64_t ident, struct fwd_err *e)
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
	req.controller = st->state_id;
	req.deadline_mono_ns = push_deadline(st); /* regionfwd publishes nothing past it */
	req.generation_hash = ident;
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
		uint64_t ran = ((Regionfwd__Ctl__PushReply *)reply)->hash;

		/* regionfwd runs a push of this regiond's, an operator's change
		 * or take_back (regiond's own wait while held back): it is this
		 * regiond's again. (state_id_new is cleared once regionfwd is
		 * seen running it, keep_report, which writes that down.) */
		st->took_back |= st->held_back;
		st->held_back = 0;

		if (ident && ran != ident) { /* an older regionfwd: see alias_hash */
			st->alias_id = id;
			st->alias_hash = ran;
		}
		protobuf_c_message_free_unpacked(reply, NULL);
		return 0;
	}
	return dp_refusal(&de, doc_name, e);
}

/* The identity to push generation @g's whole document with (push's @ident):
 * 0 when the document is its own identity. */
static uint64_t push_ident(const struct ctl_gen *g)
{
	return g->kind == CTL_GEN_DOCUMENT && g->doc_hash == g->hash ? 0 : g->hash;
}

/* Ask regionfwd to run generation @g whole (its own document, or its
 * table's model for a delta generation, which is @t's). */
static int push_gen(struct ctl_state *st, const struct ctl_gen *g, const struct fwd_table *t,
		    struct fwd_err *e)
{
	size_t len;
	const char *doc = ctl_state_doc(st, g, &len, e);

	return doc ? push(st, g->id, doc, len, NULL, t, push_ident(g), e) : -ENOMEM;
}

/* Send regionfwd the changes of delta generation @id (@packed, chain hash
 * @hash from @base, the generation regiond holds as current). @return 0
 * it runs it; 1 it runs another base or predates deltas (delta_base_mismatch,
 * unknown_op: push the table whole); <0 refused, with @e. */
static int push_delta(struct ctl_state *st, uint64_t id, uint64_t base, uint64_t hash,
		      const uint8_t *packed, size_t plen, struct fwd_err *e)
{
	Regionfwd__Ctl__DeltaRequest req = REGIONFWD__CTL__DELTA_REQUEST__INIT;
	ProtobufCMessage *reply;
	struct fwd_err de;

	req.generation = id;
	req.base_hash = base;
	req.hash = hash;
	req.name = (char *)"regiond";
	req.controller = st->state_id;
	req.changes.data = (uint8_t *)packed;
	req.changes.len = plen;
	req.deadline_mono_ns = push_deadline(st);
	if (dp_call(st, REGIONFWD__CTL__OP__OP_DELTA, &req.base, &reply, st->dp_timeout_ms, &de) ==
	    0) {
		protobuf_c_message_free_unpacked(reply, NULL);
		return 0;
	}
	if (de.reason_code == FWD_R_DELTA_BASE_MISMATCH || de.reason_code == FWD_R_UNKNOWN_OP) {
		fwd_log(FWD_LOG_INFO, "generation %" PRIu64 ": regionfwd %s; pushing it whole", id,
			de.reason_code == FWD_R_UNKNOWN_OP ? "predates deltas"
							   : "runs another base");
		return 1;
	}
	return dp_refusal(&de, NULL, e);
}

/* Remove generation @id's files: @mask 1 its document, 2 its delta, 4 its
 * owned set. */
static void unlink_gen(const struct ctl_state *st, uint64_t id, unsigned mask)
{
	char f[64], p[512];

	for (int k = 0; k < 3; k++) {
		if (!(mask & (1u << k)))
			continue;
		if (k == 2)
			owned_file(f, sizeof(f), id);
		else
			gen_file(f, sizeof(f), id, k ? CTL_GEN_DELTA : CTL_GEN_DOCUMENT);
		snprintf(p, sizeof(p), "%s/%s", st->dir, f);
		/* not from a directory in its place: it is not this one's */
		if (!state_dir_lost(st))
			unlink(p);
	}
}

static void unlink_doc(const struct ctl_state *st, uint64_t id)
{
	unlink_gen(st, id, 7);
}

static void drop_pending(struct ctl_state *st)
{
	free(st->pending.doc);
	free(st->pending.changes);
	memset(&st->pending, 0, sizeof(st->pending));
	st->has_pending = 0;
}

/* Generation @id never became current: its commit-confirm goes with it. */
static void disarm(struct ctl_state *st, uint64_t id)
{
	if (st->confirm_gen == id)
		st->confirm_gen = 0;
}

/* Fold delta generation hist[@i] into a checkpoint: its table's model
 * written whole as gen-N.doc (durable), the record a document keeping its
 * chain hash as identity; its delta file is deleted with the next durable
 * history. Retention does this to the delta right after the document it
 * prunes, so the oldest generation kept is always a document and every
 * listed one can be produced. @return 0, or -1 (logged; nothing changed). */
static int fold(struct ctl_state *st, unsigned i)
{
	struct ctl_gen *g = &st->hist[i];
	struct fwd_table *t;
	struct fwd_err e = {0};
	char f[64], *text = NULL;
	size_t len = 0;
	int rc = -1;

	struct ctl_ownset *own = NULL;
	enum ctl_gen_own rec = CTL_OWN_UNKNOWN;
	int orc;

	t = i + 1 == st->nhist ? NULL : ctl_state_gen_table(st, g, &e);
	if (i + 1 == st->nhist || t) /* the current one's table is st->table */
		text = model_text(t ? t : st->table, &len);
	fwd_table_free(t);
	gen_file(f, sizeof(f), g->id, CTL_GEN_DOCUMENT);
	/* What the feed had added to it goes with the checkpoint: the deltas
	 * it is derived from go with the fold. Written first: a checkpoint
	 * without it would make a rollback to it bring them back static. Not
	 * known (an older regiond's history): the checkpoint is not either. */
	orc = text ? owned_at(st, i, &own, &e) : 1;
	if (orc == 0 && (orc = write_owned(st, g->id, own)) > 0)
		rec = (enum ctl_gen_own)orc;
	ctl_ownset_free(own);
	if (orc < 0) {
		fwd_log(FWD_LOG_ERR,
			"cannot fold generation %" PRIu64 " into a checkpoint: which prefixes the "
			"BGP feed added cannot be %s: %s",
			g->id, e.reason[0] ? "read" : "written",
			e.reason[0] ? e.reason : strerror(-orc));
		free(text);
		return -1;
	}
	if (text == NULL) {
		fwd_log(FWD_LOG_ERR, "cannot fold generation %" PRIu64 " into a checkpoint: %s",
			g->id, e.reason[0] ? e.reason : "out of memory");
	} else if ((rc = write_atomic(st, f, text, len)) != 0) {
		fwd_log(FWD_LOG_ERR, "cannot write checkpoint %s/%s: %s", st->dir, f,
			strerror(-rc));
		rc = -1;
	} else {
		free(g->changes);
		g->changes = NULL;
		g->clen = 0;
		g->kind = CTL_GEN_DOCUMENT;
		g->doc = text;
		g->len = len;
		g->doc_hash = fwd_hash64(text, len);
		g->checkpoint = 1;
		g->own = rec;
		text = NULL;
		/* Its delta file goes once the checkpoint is recorded (out of
		 * memory here: the next start removes it, as a fold's leftover). */
		gone_add(st, g->id, 2);
	}
	free(text);
	return rc;
}

/* Retention: the oldest generations beyond --keep stop being listed
 * (never the current one nor the one before it, the last good). Their
 * files go once no listed generation replays from them: everything before
 * the document the oldest listed generation replays from. Deltas chaining
 * from a hidden document keep it until --keep generations are hidden; then
 * the oldest listed delta is folded into a checkpoint (fold) and they all
 * go. A fold writes the whole table, so it is paid once per --keep changes,
 * not at every change; one that fails (logged) leaves them hidden, and is
 * tried again at the next change. */
static void retain(struct ctl_state *st)
{
	unsigned b;

	while (st->nhist - st->hidden > st->keep && st->nhist - st->hidden > 2)
		st->hidden++;
	if (st->hidden && st->hidden >= st->keep && st->hist[st->hidden].kind == CTL_GEN_DELTA)
		fold(st, st->hidden);
	for (b = st->hidden; b > 0 && st->hist[b].kind == CTL_GEN_DELTA; b--)
		;
	for (unsigned i = 0; i < b; i++) {
		if (gone_add(st, st->hist[i].id, 7)) {
			b = i; /* out of memory: the rest is dropped next time */
			break;
		}
		free(st->hist[i].doc);
		free(st->hist[i].changes);
	}
	if (b == 0)
		return;
	memmove(st->hist, st->hist + b, sizeof(*st->hist) * (st->nhist - b));
	st->nhist -= b;
	st->hidden -= b;
}

/* The pending generation runs: make it current, in memory and on disk.
 * Retention (retain) stops listing the oldest generations beyond --keep and
 * deletes their files only once a history without them is durable
 * (ctl_state_save). If that
 * history cannot be written, regionfwd runs the generation and the disk
 * still says pending: said in the log, and resolved at the next start by
 * what regionfwd runs. @unsaved: an automatic revert whose write-ahead
 * failed; nothing is written here (see ctl_state_persist_unsaved).
 * @return 0 recorded on disk, -1 not. */
static int commit_pending(struct ctl_state *st, struct fwd_table *t, int unsaved,
			  struct fwd_err *why)
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
	/* A change's commit-confirm, armed with its write-ahead record, counts
	 * its seconds from now, as the answer does. */
	if (st->confirm_next_s > 0 && st->confirm_gen == st->pending.id)
		ctl_confirm_arm(st, st->confirm_gen, st->revert_to, st->confirm_next_s);
	memset(&st->pending, 0, sizeof(st->pending));
	st->has_pending = 0;
	fwd_table_free(st->table);
	st->table = t;
	retain(st);
	if (unsaved) {
		/* Neither document nor record may be on disk: written in that
		 * order by ctl_state_persist_unsaved(), never the record alone. */
		st->unsaved_id = st->hist[st->nhist - 1].id;
		st->unsaved_revert = 1;
		return -1;
	}
	if (ctl_state_save(st, &e) == 0)
		return 0;
	fwd_log(FWD_LOG_ERR,
		"generation %" PRIu64 " runs but its record could not be written (%s); "
		"retried every tick, table changes refused meanwhile",
		st->hist[st->nhist - 1].id, e.reason);
	if (why)
		*why = e;
	return -1; /* the pruned documents stay: the history on disk names them */
}

/* A generation that runs but whose commit the disk did not take: held as
 * unsaved (the confirm tick writes it as soon as it can, and no change is
 * stacked on it meanwhile), with an alarm, so that status, health and the
 * metrics say what a restart of regiond would otherwise silently undo (it
 * resolves a pending record by what regionfwd runs, and regionfwd may have
 * restarted too). */
static void hold_unsaved(struct ctl_state *st, uint64_t id, const struct fwd_err *why)
{
	const struct ctl_gen *cur = ctl_state_current(st);

	if (st->unsaved_id || cur == NULL || cur->id != id)
		return;
	st->unsaved_id = id;
	st->unsaved_revert = 0;
	ctl_state_alarm(st, CTL_ALARM_RECORD,
			"generation %" PRIu64 " runs but its record is not on disk (%s): table "
			"changes are refused until it is written (retried); a restart of regiond "
			"before then could drop it",
			id, why->reason);
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
	if (g == NULL || g->kind != CTL_GEN_DOCUMENT || g->doc == NULL) {
		/* pruned by now, or a delta (its changes were written ahead):
		 * only the history is left to write */
		rc = ctl_state_save(st, e);
	} else {
		/* an automatic revert's document may never have been written;
		 * anyone else's was written ahead, and is written again as is */
		gen_file(f, sizeof(f), g->id, CTL_GEN_DOCUMENT);
		rc = write_atomic(st, f, g->doc, g->len);
		if (rc)
			fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "", "cannot write %s/%s: %s",
				     st->dir, f, strerror(-rc));
		else
			rc = ctl_state_save(st, e);
	}
	if (rc == 0) {
		st->unsaved_id = 0;
		ctl_state_alarm(st, CTL_ALARM_RECORD, NULL);
	}
	return rc;
}

void ctl_state_alarm(struct ctl_state *st, enum ctl_alarm_owner owner, const char *fmt, ...)
{
	char now[sizeof(st->alarms[0])] = "", *slot = st->alarms[owner];
	size_t at = 0;
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(now, sizeof(now), fmt, ap);
		va_end(ap);
		/* Reasons carry paths and peers' words: the truncation above can
		 * split a UTF-8 sequence, and the status view (JSON) must never
		 * fail to build over it. The alarm is ASCII. */
		for (char *c = now; *c; c++)
			if ((unsigned char)*c >= 0x80 || fwd_control_len(c, 1))
				*c = '?';
	}
	if (strcmp(now, slot) == 0)
		return; /* one line per change, not one per retry */
	if (now[0])
		fwd_log(FWD_LOG_ERR, "ALARM: %s", now);
	else
		fwd_log(FWD_LOG_NOTICE, "alarm cleared (was: %s)", slot);
	snprintf(slot, sizeof(st->alarms[0]), "%s", now);
	/* The one sentence status shows: every raised slot, in slot order. */
	st->alarm[0] = '\0';
	for (int o = 0; o < CTL_ALARM_OWNERS; o++)
		if (st->alarms[o][0])
			at += (size_t)snprintf(st->alarm + at, sizeof(st->alarm) - at, "%s%s",
					       at ? "; " : "", st->alarms[o]);
}

static int64_t apply_gen_staged(struct ctl_state *st, const char *doc, size_t len, uint64_t ident,
				const char *author, const char *comment, int64_t expected,
				int push_it, int must_run, struct fwd_err *e);

/* Whether a kept generation holds the document of hash @doc_hash. */
static int doc_in_history(const struct ctl_state *st, uint64_t doc_hash)
{
	for (unsigned i = 0; i < st->nhist; i++)
		if (st->hist[i].kind == CTL_GEN_DOCUMENT && st->hist[i].doc_hash == doc_hash)
			return 1;
	return 0;
}

/* Where an apply's time goes (fwd_stages.h), logged with the generation. */
static int64_t apply_gen(struct ctl_state *st, const char *doc, size_t len, uint64_t ident,
			 const char *author, const char *comment, int64_t expected, int push_it,
			 int must_run, struct fwd_err *e)
{
	struct fwd_stages stages;
	char times[512];
	int64_t id;

	fwd_stages_begin(&stages);
	id = apply_gen_staged(st, doc, len, ident, author, comment, expected, push_it, must_run, e);
	if (id > 0)
		fwd_log(FWD_LOG_INFO, "generation %" PRId64 " (%zu bytes) applied in %.1f ms: %s",
			id, len, (double)fwd_stages_total_ns(&stages) / 1e6,
			fwd_stages_format(&stages, times, sizeof(times)));
	fwd_stages_end(&stages);
	return id;
}

/* Nothing is stacked on a generation the disk does not know: a change
 * (whole or delta) first records the one that runs, and is refused when
 * that still fails. @return 0, or -1 with @e saying why and that nothing
 * changed. */
static int refused_while_unsaved(struct ctl_state *st, struct fwd_err *e)
{
	if (!ctl_state_persist_unsaved(st, e))
		return 0;
	snprintf(e->reason + strlen(e->reason), sizeof(e->reason) - strlen(e->reason),
		 " (generation %" PRIu64 ", which runs, is not recorded yet); nothing changed",
		 st->unsaved_id);
	return -1;
}

int64_t ctl_state_apply(struct ctl_state *st, const char *doc, size_t len, const char *author,
			const char *comment, int64_t expected, int push_it, struct fwd_err *e)
{
	if (refused_while_unsaved(st, e))
		return -1;
	int64_t id = apply_gen(st, doc, len, 0, author, comment, expected, push_it, 0, e);

	if (id >= 0 && push_it) { /* the table the operator chose runs */
		st->seeded = 0;
		ctl_state_alarm(st, CTL_ALARM_TABLE, NULL);
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
	return apply_gen(st, doc, len, 0, "regiond", comment, -1, 1, 1, e);
}

/* What every change checks first: the writer's expected generation, and no
 * pending record left by a crash. @return 0, or -1 with @e. */
int ctl_state_check_expected(const struct ctl_state *st, int64_t expected, struct fwd_err *e)
{
	const struct ctl_gen *cur = ctl_state_current(st);

	if (expected >= 0 && (uint64_t)expected != (cur ? cur->id : 0)) {
		fwd_err_fail(e, FWD_R_STALE_GENERATION, NULL, 0, "expected_generation",
			     "the table is at generation %" PRIu64 ", not %" PRId64
			     "; read it again and redo the change",
			     cur ? cur->id : 0, expected);
		return -1;
	}
	return 0;
}

static int precheck(const struct ctl_state *st, int64_t expected, struct fwd_err *e)
{
	if (ctl_state_check_expected(st, expected, e))
		return -1;
	if (st->has_pending) {
		/* Left by a crash: regionfwd may or may not run it, and only its
		 * answer tells (ctl_state_sync). Until then nothing is stacked on it. */
		fwd_err_fail(e, FWD_R_DATAPLANE_UNAVAILABLE, NULL, 0, "",
			     "generation %" PRIu64 " was being applied when regiond stopped; it is "
			     "resolved once regionfwd answers; nothing changed",
			     st->pending.id);
		return -1;
	}
	return 0;
}

/* Held back (ctl_state_sync: another regiond's table runs, or one this
 * regiond cannot adopt): what regiond does on its own, a batch of the BGP
 * feed or a commit-confirm revert (@own), waits (the feed requeues it; the
 * confirm tick does not try the revert meanwhile, this is the backstop). Pushed, each took regionfwd back with no
 * operator, and the other regiond then held back in turn: two regionds
 * with feeds handed regionfwd over at every batch. An operator's change
 * takes it back, as the alarm says. */
static int refused_while_held_back(const struct ctl_state *st, int own, struct fwd_err *e)
{
	if (!own)
		return 0;
	/* Nor before the first answer since this start: whether to hold
	 * back is decided at that answer (ctl_state_sync), so until then
	 * regionfwd unheard-of is away. */
	if (!st->dp_seen) {
		fwd_err_fail(e, FWD_R_DATAPLANE_UNAVAILABLE, NULL, 0, "",
			     "regiond has not heard from regionfwd since it started: its own "
			     "changes wait until it knows what regionfwd runs; nothing changed");
		return -1;
	}
	if (!st->held_back)
		return 0;
	fwd_err_fail(e, FWD_R_HELD_BACK, NULL, 0, "",
		     "regionfwd runs a table this regiond holds back from (another regiond's, or "
		     "one it cannot adopt: the alarm says which); regiond's own changes wait "
		     "until an operator's change here takes regionfwd back; nothing changed");
	return -1;
}

/* An operator's change that changes nothing (the current table applied
 * again, a no-op PATCH or rollback) while held back: the current
 * generation is pushed again, which takes regionfwd back, as the alarm
 * says. Without it only a table that differs could. @return 0 or -1 with
 * @e (nothing changed) */
static int take_back(struct ctl_state *st, struct fwd_err *e)
{
	const struct ctl_gen *cur = ctl_state_current(st);

	if (!st->held_back || cur == NULL)
		return 0;
	if (push_gen(st, cur, st->table, e))
		return -1;
	fwd_log(FWD_LOG_NOTICE,
		"generation %" PRIu64 " (%016" PRIx64
		") applied again while held back%s%s: pushed, regionfwd taken back",
		cur->id, cur->hash, st->who[0] ? " by " : "", st->who);
	st->ran_hash = cur->hash; /* push() ended the hold */
	ctl_state_alarm(st, CTL_ALARM_TABLE, NULL);
	return 0;
}

int64_t ctl_state_apply_noop(struct ctl_state *st, int64_t expected, struct fwd_err *e)
{
	if (refused_while_unsaved(st, e) || precheck(st, expected, e) ||
	    refused_while_dir_lost(st, e) || take_back(st, e))
		return -1;
	st->seeded = 0; /* as ctl_state_apply() after its no-op */
	ctl_state_alarm(st, CTL_ALARM_TABLE, NULL);
	return 0;
}

/* A new generation record @g (id, time, author, comment, by) for a change. */
static void gen_init(const struct ctl_state *st, struct ctl_gen *g, uint64_t id, const char *author,
		     const char *comment, int must_run)
{
	memset(g, 0, sizeof(*g));
	g->id = id;
	g->time = (int64_t)time(NULL);
	snprintf(g->author, sizeof(g->author), "%s", author ? author : "");
	snprintf(g->comment, sizeof(g->comment), "%s", comment ? comment : "");
	snprintf(g->by, sizeof(g->by), "%s",
		 must_run     ? "regiond (commit-confirm timer)"
		 : st->who[0] ? st->who
			      : "regiond");
}

/* A change needs an id (FWD_GEN_ID_MAX): 2^53 - 1 of them last 285,000
 * years at one change a millisecond, so this is a hand-edited next_id
 * near the end, said rather than wrapped. @return 0, or -1 with @e. */
static int ids_used_up(const struct ctl_state *st, struct fwd_err *e)
{
	if (st->next_id <= FWD_GEN_ID_MAX)
		return 0;
	fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "",
		     "the generation ids are used up (next_id %" PRIu64
		     " is past the largest, %" PRIu64 "); nothing changed",
		     st->next_id, (uint64_t)FWD_GEN_ID_MAX);
	return -1;
}

/* Make the pending record @g durable (the history naming it pending and
 * the next id past it), its file being on disk already. @return 0, or -1
 * with @e and nothing left of it (memory or disk). */
static int write_pending(struct ctl_state *st, const struct ctl_gen *g, struct fwd_err *e)
{
	/* The id is spent once this record is durable: never reused once its
	 * push may have reached regionfwd (one that sent no byte is given
	 * back by undo_pending, once a history saying so is durable). */
	st->next_id = g->id + 1;
	st->pending = *g;
	st->has_pending = 1;
	if (ctl_state_save(st, e) == 0)
		return 0;
	/* On disk the history is as it was (the write is atomic): the pending
	 * file is a stranger only until it is removed here. Nothing ran the id
	 * and the disk still names it next: kept spent in memory alone, the
	 * next change's file would carry an id past the disk's next_id, which
	 * a crash before its record leaves as corruption (regiond would not
	 * start again). */
	drop_pending(st);
	disarm(st, g->id);
	unlink_doc(st, g->id);
	st->next_id = g->id;
	snprintf(e->reason + strlen(e->reason), sizeof(e->reason) - strlen(e->reason),
		 "; nothing changed");
	return -1;
}

/* A change that cannot go on after its pending record was written: put
 * regionfwd back on the current generation when it was @pushed the new one
 * (an extension refused), drop the record, and its file once a history
 * without it is durable (else the next start resolves it by what regionfwd
 * runs). */
static void undo_pending(struct ctl_state *st, int pushed, int unsent, uint64_t id)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	struct fwd_err ignored;
	/* A push none of whose bytes left regiond (@unsent: regionfwd's socket
	 * gone, nobody listening, its connect failed) cannot have reached regionfwd,
	 * so its id is given back, and ids skip only where regionfwd may have
	 * seen one (docs/api.md). Only once a history saying so is durable:
	 * until then the disk names it pending with the next id past it, and
	 * a second document under it could meet the first at a restart. Not a
	 * commit-confirm's: status may have shown it awaiting confirmation. */
	int give_back = unsent && st->next_id == id + 1 && st->confirm_gen != id;

	if (pushed && cur)
		push_gen(st, cur, st->table, &ignored);
	drop_pending(st);
	disarm(st, id);
	if (give_back)
		st->next_id = id;
	if (ctl_state_save(st, &ignored) == 0) {
		unlink_doc(st, id);
		return;
	}
	if (give_back)
		st->next_id = id + 1; /* the disk still names it: spent */
}

/* The audit line of change @id, once it is current: who made it
 * (authenticated), who it says wrote it, why, and @what it did. */
static void log_applied(const struct ctl_state *st, uint64_t id, const char *event,
			const char *what)
{
	const struct ctl_gen *now = ctl_state_current(st);
	char reason[sizeof(now->comment) + 128];

	if (now == NULL || now->id != id)
		return;
	snprintf(reason, sizeof(reason), "%s%s%s", now->comment, what && now->comment[0] ? " " : "",
		 what ? what : "");
	struct fwd_log_change c = {
		.event = event,
		.generation = now->id,
		.hash = now->hash,
		.author = now->author,
		.client = now->by,
		.request = st->request[0] ? st->request : NULL,
		.reason = reason,
	};

	fwd_log_change(&c);
}

/* A prefix the BGP feed had added to the current generation in @region
 * (@arg, its owned set): a document carries the static prefixes only, and
 * the feed adds its own back at its next batch (docs/bgp-feed.md), so its
 * absence there hands no one over. */
static int feed_gives_back(void *arg, const struct ctl_rib_pfx *p, const char *region)
{
	const char *r = ctl_ownset_get(arg, p);

	return r != NULL && strcmp(r, region) == 0;
}

json_t *ctl_state_handovers(const struct ctl_state *st, const struct fwd_table *t)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	struct ctl_ownset *own = NULL;
	struct fwd_err e;
	json_t *h;

	if (st->table == NULL || t->nresidency == 0)
		return NULL;
	if (cur && ctl_state_owned(st, cur, &own, &e) != 0)
		own = NULL; /* not known: every prefix counts */
	h = ctl_traffic_handovers(st->table, t, own ? feed_gives_back : NULL, own);
	ctl_ownset_free(own);
	return h;
}

/* Generation @id's weakened residency rules in the log, after the line
 * that says it was applied: whoever made the change (an operator, a fleet's
 * desired table, a revert) is said where it is seen. */
static void say_weakened(const struct ctl_state *st, uint64_t id)
{
	json_t *m;
	size_t i;

	json_array_foreach(st->weakened, i, m)
		fwd_log(FWD_LOG_WARNING,
			"generation %" PRIu64 " weakens residency rule '%s' of region '%s': %s", id,
			json_string_value(json_object_get(m, "rule")),
			json_string_value(json_object_get(m, "region")),
			json_string_value(json_object_get(m, "change")));
}

/* Generation @id's link state changes in the log (a link under maintenance
 * brought back up by a rollback is seen there, whoever made it). */
static void say_link_states(const struct ctl_state *st, uint64_t id)
{
	json_t *m;
	size_t i;

	json_array_foreach(st->link_states, i, m)
		fwd_log(FWD_LOG_WARNING,
			"generation %" PRIu64 " sets link '%s' %s (it was %s): its state is the "
			"table's",
			id, json_string_value(json_object_get(m, "link")),
			json_string_value(json_object_get(m, "to")),
			json_string_value(json_object_get(m, "from")));
}

/* A change's handovers @h (ctl_state_handovers, or a delta's; taken over,
 * NULL for none): kept for the write's answer (st->handovers) and
 * say_handovers(). */
static void note_handovers(struct ctl_state *st, json_t *h)
{
	json_decref(st->handovers);
	st->handovers = h;
}

/* Pairs said in the log a generation; the answer has them all. */
#define HANDOVERS_LOGGED 16

/* Generation @id's handovers in the log, after the line that says it was
 * applied. No rule refuses them (docs/table-format.md, "What a rule does
 * not see"), so whatever made the change (an operator, a revert, the BGP
 * feed's withdrawal) is said where it is seen. */
static void say_handovers(const struct ctl_state *st, uint64_t id)
{
	size_t n = json_array_size(st->handovers), i;
	json_t *m;

	json_array_foreach(st->handovers, i, m) {
		json_int_t k = json_integer_value(json_object_get(m, "prefixes"));

		if (json_is_true(json_object_get(m, "truncated"))) {
			fwd_log(FWD_LOG_WARNING,
				"generation %" PRIu64 ": out of memory checking whether it hands "
				"users of a protected region out of their residency",
				id);
			continue;
		}
		if (i == HANDOVERS_LOGGED) {
			fwd_log(FWD_LOG_WARNING,
				"generation %" PRIu64
				" hands protected users out of their residency "
				"in %zu more (region, region) pairs, not logged one by one (a "
				"write's answer has them all: residency_handovers)",
				id, n - i);
			break;
		}
		fwd_log(FWD_LOG_WARNING,
			"generation %" PRIu64 " hands %" JSON_INTEGER_FORMAT
			" prefix%s of region '%s' to '%s', out of its residency: %s",
			id, k, k == 1 ? "" : "es", json_string_value(json_object_get(m, "from")),
			json_string_value(json_object_get(m, "to")),
			json_string_value(json_object_get(m, "residency")));
	}
}

/* @must_run: the automatic revert. A document or record that cannot be
 * written does not stop it (the deadline is a promise to the operator);
 * the generation is held in memory as unsaved instead. @ident: the
 * generation's identity when it is not the document's hash (adopting what
 * regionfwd names otherwise), else 0. */
static int64_t apply_gen_staged(struct ctl_state *st, const char *doc, size_t len, uint64_t ident,
				const char *author, const char *comment, int64_t expected,
				int push_it, int must_run, struct fwd_err *e)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	uint64_t doc_hash = fwd_hash64(doc, len), hash = ident ? ident : doc_hash, id;
	enum ctl_gen_own own = CTL_OWN_UNKNOWN;
	struct ctl_ownset *owned = NULL;
	struct fwd_table *t;
	struct ctl_gen g;
	char f[64];
	int rc, pushed, unsaved = 0;

	if (precheck(st, expected, e) || (!must_run && refused_while_dir_lost(st, e)) ||
	    refused_while_held_back(st, must_run, e))
		return -1;
	/* The current content again: by its identity, or by the document a
	 * checkpoint holds. */
	/* A text and the same text with one newline more are one document:
	 * models were written without the newline before ctl_model_dump, and
	 * `show table` of such a generation applied again was a new one. */
	const int one_more =
		cur && cur->kind == CTL_GEN_DOCUMENT && len > 1 &&
		((cur->len + 1 == len && doc[len - 1] == '\n' &&
		  cur->doc_hash == fwd_hash64(doc, len - 1)) ||
		 (cur->len == len + 1 && cur->doc_hash == fwd_hash64_update(doc_hash, "\n", 1)));

	/* A delta generation is named by its chain, not by a document: the
	 * text `show table` gave of it (its model) applied again is that
	 * generation too, not a new one (a probe). Only JSON can be that text.
	 * The cached text when it is the current's (a GET of the table made
	 * it), else made here and not cached: @doc may be the cache itself (a
	 * rollback's), which gen_model_text() would free under it. */
	int same_model = 0;

	if (cur && !ident && cur->kind == CTL_GEN_DELTA && len > 1 && doc[0] == '{') {
		size_t ml = 0;
		char *made = NULL;
		const char *mt = st->cache_id == cur->id && st->cache_doc
					 ? (ml = st->cache_len, st->cache_doc)
					 : (made = model_text(st->table, &ml));
		size_t n = ml < len ? ml : len;

		same_model = mt != NULL && (ml == len || ml == len + 1 || ml + 1 == len) &&
			     memcmp(mt, doc, n) == 0 &&
			     (ml == len || (ml > len ? mt[len] : doc[ml]) == '\n');
		free(made);
	}
	if (cur && (cur->hash == hash || same_model ||
		    (!ident && cur->kind == CTL_GEN_DOCUMENT &&
		     (cur->doc_hash == doc_hash || one_more)))) {
		/* Held back: the operator applying the current table takes
		 * regionfwd back with it (take_back). */
		if (push_it && !must_run && take_back(st, e))
			return -1;
		return 0;
	}
	fwd_stage("hash");
	if (ids_used_up(st, e))
		return -1;
	t = ctl_state_validate(st, doc, len, "document", e);
	if (t == NULL)
		return -1;
	/* Checks newer than some tables they would refuse apply to a document
	 * someone writes (a PUT; a fleet's desired table, which anyone with
	 * the etcd credentials may have put there), not to what ran before: a
	 * rollback, a revert, a link command's PATCH of the running table, a
	 * fleet's way back to a table this node has run (an abort). */
	if ((st->write_kind == CTL_WRITE_DOCUMENT ||
	     (st->write_kind == CTL_WRITE_FLEET && !doc_in_history(st, doc_hash))) &&
	    fwd_table_check_written(t, e)) {
		fwd_table_free(t);
		return -1;
	}
	id = st->next_id;
	/* Write ahead: the document, then the history naming it as pending and
	 * the next id past it, both durable, before regionfwd may run it. If
	 * either cannot be written, nothing is pushed and the answer says so. */
	gen_file(f, sizeof(f), id, CTL_GEN_DOCUMENT);
	rc = write_atomic(st, f, doc, len);
	fwd_stage("write document");
	if (rc && must_run) {
		unsaved = 1;
	} else if (rc) {
		fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "",
			     "cannot write %s/%s: %s; nothing changed", st->dir, f, strerror(-rc));
		fwd_table_free(t);
		return -1;
	}
	/* Which of its prefixes the feed had added, written ahead with it. A
	 * revert whose document the disk refused writes no file either; when
	 * the feed had added nothing (no feed at all, most boxes) its record
	 * still says so: left unknown, every later start took it for an older
	 * regiond's and warned of a BGP feed that never ran (a walkthrough). */
	if (unsaved && doc_owned(st, t, &owned) == 0) {
		if (ctl_ownset_count(owned) == 0)
			own = CTL_OWN_NONE;
		else
			fwd_log(FWD_LOG_WARNING,
				"generation %" PRIu64 " goes on unsaved, without saying which of "
				"its prefixes the BGP feed had added: any it does not own then "
				"stay as static prefixes",
				id);
		ctl_ownset_free(owned);
	} else if (!unsaved && doc_owned(st, t, &owned) == 0) {
		rc = write_owned(st, id, owned);
		ctl_ownset_free(owned);
		if (rc > 0) {
			own = (enum ctl_gen_own)rc;
		} else if (!must_run) {
			fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "",
				     "cannot write %s/gen-%" PRIu64 ".owned: %s; nothing changed",
				     st->dir, id, strerror(-rc));
			unlink_doc(st, id);
			fwd_table_free(t);
			return -1;
		} else {
			/* A revert goes on without it; said here, since the feed
			 * later takes the record for an older regiond's (a review). */
			fwd_log(FWD_LOG_WARNING,
				"cannot write %s/gen-%" PRIu64 ".owned: %s; generation %" PRIu64
				" goes on without saying which of its prefixes the BGP feed had "
				"added: any it does not own now stay as static prefixes",
				st->dir, id, strerror(-rc), id);
		}
	}
	gen_init(st, &g, id, author, comment, must_run);
	g.kind = CTL_GEN_DOCUMENT;
	g.own = own;
	g.hash = hash;
	g.doc_hash = doc_hash;
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
	/* A commit-confirm is durable with the change: its write-ahead record
	 * carries it, so that a crash before the commit, resolved as current
	 * by what regionfwd runs, still reverts at the deadline. */
	if (!must_run && st->confirm_next_s > 0)
		ctl_confirm_arm(st, id, cur ? cur->id : 0, st->confirm_next_s);
	if (unsaved || must_run) {
		/* The id is spent from here on: never reused once its push may
		 * have reached regionfwd (undo_pending gives back one that
		 * sent no byte). */
		st->next_id = id + 1;
		st->pending = g;
		st->has_pending = 1;
		if (!unsaved && ctl_state_save(st, e))
			unsaved = 1;
	} else if (write_pending(st, &g, e)) {
		fwd_table_free(t);
		return -1;
	}
	fwd_stage("copy + write history");
	/* @doc may be ctl_state_doc's text, which undo_pending may replace:
	 * the push reads the record's own copy. */
	if (st->dp)
		ctl_dp_wrote_reset(st->dp); /* undo_pending() asks */
	pushed = push_it && push(st, id, st->pending.doc, len, "document", t, ident, e) == 0;
	fwd_stage("push");
	if ((push_it && !pushed) || run_applied(st, t, id, e)) {
		undo_pending(st, pushed, push_it && !pushed && st->dp && !ctl_dp_wrote(st->dp), id);
		fwd_table_free(t);
		return -1;
	}
	fwd_stage("extensions' applied");
	if (pushed) /* seen running: written with the commit record */
		st->ran_hash = hash;
	/* An adoption (nothing pushed) changed nothing here: what regionfwd
	 * runs was made elsewhere, and the table it follows (a seed) may never
	 * have run. */
	note_handovers(st, push_it ? ctl_state_handovers(st, t) : NULL);
	json_decref(st->weakened);
	st->weakened = push_it ? ctl_residency_weakened(st->table, t) : NULL;
	/* A link command's PATCH changes a link's state on purpose; a whole
	 * table (an apply, a rollback, a revert, a fleet's) does it in
	 * passing. */
	json_decref(st->link_states);
	st->link_states = push_it && st->write_kind != CTL_WRITE_PATCH
				  ? ctl_link_states_changed(st->table, t)
				  : NULL;
	fwd_stage("residency handovers");
	{
		struct fwd_err why = {0};

		if (commit_pending(st, t, unsaved, &why) < 0 && !unsaved) {
			if (must_run) { /* a revert: the confirm tick says so */
				if (!st->unsaved_id && ctl_state_current(st) &&
				    ctl_state_current(st)->id == id)
					st->unsaved_id = id, st->unsaved_revert = 1;
			} else {
				hold_unsaved(st, id, &why);
			}
		}
	}
	fwd_stage("commit + write history");
	log_applied(st, id,
		    must_run				   ? "reverted"
		    : st->write_kind == CTL_WRITE_ROLLBACK ? "rolled back"
							   : "applied",
		    NULL);
	say_handovers(st, id);
	say_weakened(st, id);
	say_link_states(st, id);
	return (int64_t)id;
}

/* What refuses every delta whatever its changes, in the order the answer
 * names them. @return 0, or -1 with @e. */
static int delta_precheck(struct ctl_state *st, int64_t expected, struct fwd_err *e)
{
	if (refused_while_unsaved(st, e) || ids_used_up(st, e))
		return -1;
	/* Every delta, the API's or a feed's: a revert armed by commit-confirm
	 * goes back to a table without it, and its target must stay listed. */
	if (precheck(st, expected, e) || refused_while_dir_lost(st, e) ||
	    ctl_confirm_none_pending(st, e))
		return -1;
	if (ctl_state_current(st) == NULL || st->table == NULL) {
		fwd_err_fail(e, FWD_R_NO_TABLE, NULL, 0, "",
			     "there is no table to change yet; PUT one");
		return -1;
	}
	return 0;
}

int ctl_state_delta_ready(struct ctl_state *st, struct fwd_err *e)
{
	/* The feed's gate: nothing is compared or written ahead while held
	 * back either. */
	return delta_precheck(st, -1, e) || refused_while_held_back(st, 1, e) ? -1 : 0;
}

static int64_t apply_delta_staged(struct ctl_state *st, const struct fwd_delta *d,
				  const char *author, const char *comment, int64_t expected,
				  struct fwd_delta_stats *stats, struct fwd_err *e)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	struct fwd_delta eff = {0};
	struct fwd_delta_stats ds = {0};
	struct fwd_table *t = NULL;
	struct ctl_gen g;
	uint64_t id, base;
	uint8_t *packed;
	size_t plen = 0;
	char f[64], what[96];
	int rc, pushed;
	json_t *handed; /* the users it hands out of their residency, said at the commit */

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (delta_precheck(st, expected, e) || refused_while_held_back(st, st->delta_feed, e))
		return -1;
	fwd_stage("checks");
	if (fwd_delta_apply(st->table, d, &t, &eff, &ds, e))
		return -1;
	fwd_stage("validate");
	if (stats)
		*stats = ds;
	if (t == NULL) { /* every change is a no-op: retries are idempotent */
		fwd_delta_clear(&eff);
		/* An operator's no-op batch takes regionfwd back as a no-op
		 * PUT does (take_back); the feed's never does. */
		return !st->delta_feed && take_back(st, e) ? -1 : 0;
	}
	handed = ctl_traffic_handovers_delta(t, &eff);
	fwd_stage("residency handovers");
	/* The extensions see the table as for any change (the content rules'
	 * databases are cached by their rules, which a delta leaves alone). */
	if (ext_validate(st, t, e) || (packed = fwd_delta_pack(&eff, &plen)) == NULL) {
		if (e->reason[0] == '\0')
			fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		fwd_delta_clear(&eff);
		json_decref(handed);
		fwd_table_free(t);
		return -1;
	}
	fwd_delta_clear(&eff);
	fwd_stage("extensions + pack");
	id = st->next_id;
	base = cur->hash;
	/* Write ahead, as for a document: the changes, then the history naming
	 * them pending, both durable before regionfwd may run them. */
	gen_file(f, sizeof(f), id, CTL_GEN_DELTA);
	rc = write_atomic(st, f, (const char *)packed, plen);
	if (rc) {
		fwd_err_fail(e, FWD_R_PERSIST_FAILED, NULL, 0, "",
			     "cannot write %s/%s: %s; nothing changed", st->dir, f, strerror(-rc));
		free(packed);
		json_decref(handed);
		fwd_table_free(t);
		return -1;
	}
	gen_init(st, &g, id, author, comment, 0);
	g.kind = CTL_GEN_DELTA;
	g.own = st->delta_feed ? CTL_OWN_FEED : CTL_OWN_OTHER;
	g.hash = fwd_delta_hash(base, packed, plen);
	g.parent = cur->id;
	g.changes = packed;
	g.clen = plen;
	g.added = ds.added4 + ds.added6;
	g.removed = ds.removed4 + ds.removed6;
	fwd_stage("write changes");
	if (write_pending(st, &g, e)) {
		json_decref(handed);
		fwd_table_free(t);
		return -1;
	}
	fwd_stage("write history");
	/* regionfwd applies the changes to what it runs when that is our
	 * current generation; else (it restarted, or predates deltas) it gets
	 * the new table whole, named by the chain hash. */
	if (st->dp)
		ctl_dp_wrote_reset(st->dp); /* undo_pending() asks */
	rc = push_delta(st, id, base, g.hash, packed, plen, e);
	if (rc == 1) {
		size_t len;
		char *doc = model_text(t, &len);

		rc = doc ? push(st, id, doc, len, NULL, t, g.hash, e)
			 : fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		if (doc && rc == 0) { /* the text is the new current's: keep it */
			free(st->cache_doc);
			st->cache_doc = doc;
			st->cache_len = len;
			st->cache_id = id;
			doc = NULL;
		}
		free(doc);
	}
	pushed = rc == 0;
	fwd_stage("push");
	if (!pushed || run_applied(st, t, id, e)) {
		undo_pending(st, pushed, !pushed && st->dp && !ctl_dp_wrote(st->dp), id);
		json_decref(handed);
		fwd_table_free(t);
		return -1;
	}
	fwd_stage("extensions' applied");
	st->ran_hash = st->pending.hash; /* seen running: written with the commit record */
	note_handovers(st, handed);
	handed = NULL;
	{
		struct fwd_err why = {0};

		if (commit_pending(st, t, 0, &why) < 0)
			hold_unsaved(st, id, &why);
	}
	fwd_stage("commit + write history");
	snprintf(what, sizeof(what), "(+%u -%u prefixes, %u already held)", g.added, g.removed,
		 ds.unchanged);
	log_applied(st, id, "delta applied", what);
	say_handovers(st, id);
	st->seeded = 0;
	ctl_state_alarm(st, CTL_ALARM_TABLE, NULL);
	return (int64_t)id;
}

/* Where a delta's time goes (fwd_stages.h), logged with the generation. */
int64_t ctl_state_apply_delta(struct ctl_state *st, const struct fwd_delta *d, const char *author,
			      const char *comment, int64_t expected, struct fwd_delta_stats *stats,
			      struct fwd_err *e)
{
	struct fwd_stages stages;
	char times[512];
	int64_t id;

	fwd_stages_begin(&stages);
	id = apply_delta_staged(st, d, author, comment, expected, stats, e);
	if (id > 0)
		fwd_log(FWD_LOG_INFO, "generation %" PRId64 " (%u changes) applied in %.1f ms: %s",
			id, d->n, (double)fwd_stages_total_ns(&stages) / 1e6,
			fwd_stages_format(&stages, times, sizeof(times)));
	fwd_stages_end(&stages);
	return id;
}

static int foreign(const struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r);

/* 1 when regionfwd's status reply says it runs regiond's current generation,
 * pushed by this regiond: the same table pushed by another regiond (foreign)
 * is that one's to change, and taken for this one's, its revert or its
 * feed's next batch took regionfwd from it with no operator. With no
 * current generation regiond has nothing regionfwd could be in sync with. */
static int runs_current(const struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	return r->generation != NULL && ctl_state_runs(st, r->generation->hash) && !foreign(st, r);
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

/* Keep what regionfwd said (@r, or NULL: it did not answer) as the report
 * reads answer from. */
static void keep_report(struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	int clear_new = 0;

	json_decref(st->dp_report);
	st->dp_report = r ? ctl_dp_status_json(r) : NULL;
	st->dp_in_sync = r ? runs_current(st, r) : 0;
	st->dp_foreign = r ? foreign(st, r) : 0;
	if (st->dp_in_sync && ctl_state_current(st)) {
		st->ran_hash = ctl_state_current(st)->hash;
		/* In step, and regionfwd names this identity (ctl_state_sync
		 * claims it, one push, when it names another: the box's own
		 * regiond before a backup from before the upgrade came back);
		 * an older regionfwd names none. A stranger from now on is one:
		 * cleared while regionfwd named another, this regiond was held
		 * back from its own table at the next look. */
		clear_new =
			st->state_id_new && (r->controller == 0 || r->controller == st->state_id);
	}
	/* state_id_new is cleared once that is written down (a restart must
	 * not bring it back); until then it stays, judged by ids as before.
	 * ran_hash is written down whenever it is not yet (a change's commit
	 * record carries it already; an adoption, a take-back, the main
	 * loop's push do not): a restarted regiond holds back from what
	 * replaced it, as this one does. Tried again at every report, in step
	 * or not: a full disk now, and another regiond's table later, must
	 * not leave a restart to forget. Not while a write's record is
	 * pending, nor while a revert's document is not on disk: the history
	 * would name it alone. */
	if ((clear_new || st->ran_written != st->ran_hash) && !st->has_pending && !st->unsaved_id) {
		const int was_new = st->state_id_new;
		struct fwd_err se;

		if (clear_new)
			st->state_id_new = 0;
		if (ctl_state_save(st, &se))
			st->state_id_new = was_new;
	}
	if (r) { /* the age is that of the last answer, not of the last attempt */
		st->dp_report_ms = fwd_mono_ms();
		json_decref(st->dp_last);
		st->dp_last = json_incref(st->dp_report);
	}
}

int ctl_state_refresh(struct ctl_state *st)
{
	Regionfwd__Ctl__StatusReply *r = dp_status(st);

	keep_report(st, r);
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	return st->dp_in_sync;
}

/* The table of the pending generation: its document validated, or its
 * changes applied to the current table. NULL with @e. */
static struct fwd_table *pending_table(struct ctl_state *st, struct fwd_err *e)
{
	struct fwd_delta d = {0};
	struct fwd_table *t = NULL;

	if (st->pending.kind == CTL_GEN_DOCUMENT)
		return ctl_state_validate(st, st->pending.doc, st->pending.len, "pending", e);
	if (st->table && fwd_delta_unpack(st->pending.changes, st->pending.clen, &d, e) == 0)
		fwd_delta_apply(st->table, &d, &t, NULL, NULL, e);
	fwd_delta_clear(&d);
	return t;
}

/* A pending record left by a crash, resolved by what regionfwd runs: it
 * became current if regionfwd runs it, else it never happened. */
static void resolve_pending(struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	struct fwd_err e;

	if (r->generation && r->generation->hash == st->pending.hash) {
		struct fwd_table *t = pending_table(st, &e);

		if (t) {
			fwd_log(FWD_LOG_NOTICE,
				"regionfwd runs generation %" PRIu64
				", which was being applied when regiond stopped: it is current",
				st->pending.id);
			{
				struct fwd_err why = {0};
				uint64_t id = st->pending.id;

				st->ran_hash = st->pending.hash; /* regionfwd runs it */
				if (commit_pending(st, t, 0, &why) < 0)
					hold_unsaved(st, id, &why);
			}
			return;
		}
	}
	uint64_t id = st->pending.id;

	fwd_log(FWD_LOG_WARNING,
		"generation %" PRIu64 " was pending (its record not committed) when regiond "
		"stopped and regionfwd does not run it: dropped",
		id);
	drop_pending(st);
	disarm(st, id);
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
 * runs a generation a regiond pushed with an id this state directory never
 * handed out: it missed changes, e.g. restored from a backup). A regionfwd
 * running its own --table file (not pushed) is brought to regiond's table
 * instead: that file is a start-up default.
 *
 * An id between the current one and next_id was spent here on a change
 * that did not become current: most often a push regionfwd saved and then
 * died before answering, which regiond answered "nothing changed" for.
 * regionfwd restarts on that save; taking it as newer would run and record
 * a change its client was told was refused. */
static int spent_here(const struct ctl_state *st, uint64_t id)
{
	const struct ctl_gen *cur = ctl_state_current(st);

	return cur && id > cur->id && id < st->next_id;
}

/* Whether what regionfwd runs (@r) is a regiond's: pushed by one, or
 * made from one's deltas. Such a generation keeps its base table's source,
 * a file when a regiond took regionfwd's own --table over with a no-op
 * push and then sent only prefix batches (the BGP feed's ordinary day):
 * managed_by says a regiond pushed since. Taken for the file alone, a new
 * or restored state directory pushed its seed over every acknowledged
 * batch (a crash soak). */
static int pushed_by_regiond(const Regionfwd__Ctl__StatusReply *r)
{
	return r->generation != NULL && (strcmp(r->generation->source, "regiond") == 0 ||
					 (r->managed_by && strcmp(r->managed_by, "regiond") == 0));
}

/* Whether what regionfwd runs (@r) was pushed by another regiond: one
 * that said its state directory's identity, not this one's. A backup of
 * this directory restored keeps the identity (its table is adopted when
 * newer); a regiond started by hand on another state directory, given the
 * same regionfwd, does not: its newer id was once taken for a change this
 * regiond missed and adopted, both saying healthy. 0 is a sender that did
 * not say (an older regiond): judged by ids alone, as before. */
static int foreign(const struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	return !st->state_id_new && pushed_by_regiond(r) && r->controller != 0 &&
	       r->controller != st->state_id;
}

/* Whether another regiond (foreign) has taken regionfwd from this one:
 * its table replaced this regiond's current one, seen running before
 * (ran_hash, kept in history.json), or it is newer than any id this state
 * directory handed out (which an older state of this regiond would adopt),
 * whatever its content: the same table as this regiond's, pushed by
 * another, is that one's to change (runs_current). Either is two regionds
 * at work: this one holds back and says so. An older foreign table this
 * regiond never saw replace its own is a regiond gone (a state directory
 * wiped and started afresh, its seed chosen by an operator, beside a
 * regionfwd that resumed the old one's save): it is pushed over, as
 * before, and logged. */
static int foreign_took_over(const struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	const struct ctl_gen *cur = ctl_state_current(st);

	return cur != NULL && foreign(st, r) &&
	       (r->generation->id >= st->next_id || st->ran_hash == cur->hash);
}

static int should_adopt(const struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	uint64_t id;

	if (r->generation == NULL || r->generation->hash == 0)
		return 0;
	if (cur == NULL)
		return 1;
	if (!pushed_by_regiond(r))
		return 0;
	id = r->generation->id;
	/* Seeded: the seed is this regiond's only id, any other is a
	 * stranger's, which a regiond just set up takes on, whoever's, until
	 * its seed ran: another regiond's table in its place then took it over
	 * (foreign_took_over). */
	if (st->seeded && !spent_here(st, id) && !(st->seed_ran && foreign(st, r)))
		return 1;
	return id >= st->next_id && !foreign(st, r);
}

/* The whole document of what regionfwd runs (@tr): its document, or, when
 * deltas were applied since, the model of that document with them applied
 * (malloc'd). NULL with @e. */
static const char *adopted_doc(const Regionfwd__Ctl__TableReply *tr, size_t *len, struct fwd_err *e)
{
	struct fwd_table *t;
	char *text = NULL;

	*len = tr->document.len;
	if (tr->n_deltas == 0)
		return (const char *)tr->document.data;
	t = fwd_table_parse((const char *)tr->document.data, tr->document.len, "adopted", -1, e);
	for (size_t i = 0; t && i < tr->n_deltas; i++) {
		struct fwd_delta d = {0};
		struct fwd_table *nt = NULL;

		if (fwd_delta_unpack(tr->deltas[i].data, tr->deltas[i].len, &d, e) == 0 &&
		    fwd_delta_apply(t, &d, &nt, NULL, NULL, e) == 0 && nt == NULL)
			fwd_err_fail(e, FWD_R_DATAPLANE_BROKEN, NULL, 0, "",
				     "regionfwd's delta %zu changes nothing", i);
		fwd_delta_clear(&d);
		fwd_table_free(t);
		t = nt;
	}
	if (t && (text = model_text(t, len)) == NULL)
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	fwd_table_free(t);
	return text;
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
	const char *doc;
	size_t len;
	int64_t got;

	/* A fetch is the whole document: not more than once in 5 s. */
	if (st->adopt_tried_ms && fwd_mono_ms() - st->adopt_tried_ms < 5000)
		return -1;
	st->adopt_tried_ms = fwd_mono_ms();
	if (ctl_state_runs(st, hash)) {
		/* This regiond's current table (its seed, never run), pushed by
		 * another regiond: nothing to record, only to claim (below). */
		if (push_gen(st, ctl_state_current(st), st->table, &e)) {
			snprintf(why, sizeof(why), "%s", e.reason);
			goto refused;
		}
		fwd_log(FWD_LOG_NOTICE,
			"regionfwd runs this regiond's table (generation %" PRIu64 ", %016" PRIx64
			"), pushed by another regiond (state directory %016" PRIx64
			"): pushed again as this regiond's",
			id, hash, r->controller);
		st->held_back = 0;
		st->adopt_tried_ms = 0;
		ctl_state_alarm(st, CTL_ALARM_TABLE, NULL);
		return 0;
	}
	tr = dp_table(st, &e);
	if (tr == NULL) {
		snprintf(why, sizeof(why), "fetching it failed: %s", e.reason);
		goto refused;
	}
	if (tr->generation == NULL || tr->generation->hash != hash) {
		/* It changed between the status and the fetch: next tick. */
		protobuf_c_message_free_unpacked(&tr->base, NULL);
		return -1;
	}
	/* A generation regionfwd made from deltas is its document with them
	 * applied, named by a chain hash: recorded whole under that name. */
	if ((doc = adopted_doc(tr, &len, &e)) == NULL) {
		protobuf_c_message_free_unpacked(&tr->base, NULL);
		snprintf(why, sizeof(why), "%s", e.reason);
		goto refused;
	}
	snprintf(comment, sizeof(comment),
		 "adopted: regionfwd ran generation %" PRIu64 " (%016" PRIx64
		 "), pushed by %s, which this state directory did not hold",
		 id, hash, r->managed_by[0] ? r->managed_by : r->generation->source);
	if (id >= st->next_id && id <= FWD_GEN_ID_MAX)
		st->next_id = id; /* its own id: spent here from now on */
	/* The --table seed of an empty state, recorded at start but never run
	 * (regionfwd runs what it was pushed): left in the history, it was
	 * "the previous generation", and a plain rollback ran it. */
	uint64_t seed = st->seeded && !st->seed_ran && st->nhist == 1 ? st->hist[0].id : 0;

	snprintf(who, sizeof(who), "%s", st->who);
	snprintf(st->who, sizeof(st->who), "regiond (adopted from regionfwd)");
	got = apply_gen(st, doc, len, fwd_hash64(doc, len) == hash ? 0 : hash, "regiond", comment,
			-1, 0, 0, &e);
	snprintf(st->who, sizeof(st->who), "%s", who);
	if (doc != (const char *)tr->document.data)
		free((char *)doc);
	protobuf_c_message_free_unpacked(&tr->base, NULL);
	if (got <= 0) {
		snprintf(why, sizeof(why), "%s", got == 0 ? "it is already current" : e.reason);
		goto refused;
	}
	if (seed && st->nhist == 2 && st->hist[0].id == seed && gone_add(st, seed, 7) == 0) {
		struct fwd_err se;

		free(st->hist[0].doc);
		free(st->hist[0].changes);
		memmove(st->hist, st->hist + 1, sizeof(*st->hist));
		st->nhist = 1;
		if (ctl_state_save(st, &se))
			fwd_log(FWD_LOG_WARNING,
				"the --table seed (generation %" PRIu64
				"), which never ran, is out of the history but still on disk (%s): "
				"the next change writes the history without it",
				seed, se.reason);
	} else {
		seed = 0;
	}
	fwd_log(FWD_LOG_NOTICE,
		"adopted what regionfwd runs (generation %" PRIu64 ", %016" PRIx64
		") as generation %" PRId64 ": this state directory was %s%s",
		id, hash, got, st->seeded ? "empty (seeded from --table)" : "empty or older",
		seed ? "; the seed, which never ran, is dropped from the history" : "");
	st->seeded = 0;
	st->held_back = 0;
	st->adopt_tried_ms = 0;
	ctl_state_alarm(st, CTL_ALARM_TABLE, NULL);
	/* Another regiond's table (an empty or seeded state takes it on) is
	 * pushed back as this one's, the same table: regionfwd then names this
	 * regiond, the other holds back if it still runs, and this one's own
	 * changes (its feed's deltas, a revert) are not another's to refuse.
	 * Recorded first, pushed after: a push that fails is the main loop's
	 * to repeat (the adopted generation is current; regionfwd runs it
	 * under another's name), where a record undone left the seed current,
	 * and the main loop pushed the seed over the other's table. */
	if (foreign(st, r) && push_gen(st, ctl_state_current(st), st->table, &e))
		fwd_log(FWD_LOG_WARNING,
			"pushing the adopted generation %" PRId64 " back as this regiond's failed "
			"(%s): retried",
			got, e.reason);
	return 0;
refused:
	ctl_state_alarm(st, CTL_ALARM_TABLE,
			"regionfwd runs generation %" PRIu64 " (%016" PRIx64
			"), which this regiond's state does not hold and cannot adopt (%s): not "
			"overwritten; apply a table to run (regionctl apply)",
			id, hash, why);
	st->held_back = 1;
	return -1;
}

/* Whether regionfwd, seen running this regiond's current generation,
 * now runs another table a regiond pushed under that same id: another
 * regiond's generation N in place of this one's (a newer id is adopted,
 * an older one is replaced, and the other regiond then adopts this one's).
 * Two regionds on one regionfwd at one id each pushed their table back
 * once a second, regionfwd flipping between them while both said in sync;
 * the one overwritten says so and holds back instead. */
static int overwritten(const struct ctl_state *st, const Regionfwd__Ctl__StatusReply *r)
{
	const struct ctl_gen *cur = ctl_state_current(st);

	/* A regionfwd older than generation_hash (it names no controller
	 * either) runs a generation pushed with an identity of its own under
	 * the document's hash (alias_hash, learnt at the push, not kept
	 * across a restart of regiond): the same table, pushed again. */
	if (cur != NULL && r->controller == 0 && push_ident(cur) != 0)
		return 0;
	return cur != NULL && st->ran_hash == cur->hash && pushed_by_regiond(r) &&
	       r->generation->id == cur->id;
}

int ctl_state_sync(struct ctl_state *st)
{
	const struct ctl_gen *cur;
	Regionfwd__Ctl__StatusReply *r = dp_status(st);
	struct fwd_err e;
	int in_sync, was_held;

	if (r == NULL) {
		keep_report(st, NULL);
		return 0;
	}
	/* regionfwd's own save of what it runs (pushed_table) failed: nothing
	 * runs differently yet, but a restart of regionfwd would start on an
	 * older table until this regiond pushes again. Said while it lasts;
	 * an older regionfwd does not say (""). */
	if (r->save_error && r->save_error[0])
		/* regionfwd says itself what a restart would start on when it
		 * is not an older table (a file naming a push it refused). */
		ctl_state_alarm(st, CTL_ALARM_DP_SAVE, "regionfwd %s%s until regiond pushes again",
				r->save_error,
				strstr(r->save_error, "a restart of regionfwd would start on")
					? ","
					: "; a restart of regionfwd would start on an older table");
	else
		ctl_state_alarm(st, CTL_ALARM_DP_SAVE, NULL);
	/* regionfwd's control socket taken away and not bound again: this
	 * regiond, connected before, reaches it; regionctl and a restarted
	 * regiond do not. regionfwd names the socket and why. */
	if (r->socket_error && r->socket_error[0])
		ctl_state_alarm(st, CTL_ALARM_DP_SOCKET, "regionfwd's %s", r->socket_error);
	else
		ctl_state_alarm(st, CTL_ALARM_DP_SOCKET, NULL);
	if (st->has_pending)
		resolve_pending(st, r);
	/* Decided below, in this same write: held back or not. */
	st->dp_seen = 1;
	in_sync = runs_current(st, r);
	if (!in_sync && !st->has_pending && should_adopt(st, r)) {
		if (adopt(st, r) < 0) {
			keep_report(st, r);
			protobuf_c_message_free_unpacked(&r->base, NULL);
			return 0;
		}
		if (foreign(st, r)) {
			/* adopt() pushed it as this regiond's: what runs now. */
			protobuf_c_message_free_unpacked(&r->base, NULL);
			if ((r = dp_status(st)) == NULL) {
				keep_report(st, NULL);
				return 0;
			}
		}
		in_sync = runs_current(st, r);
	}
	if (!in_sync && foreign_took_over(st, r)) {
		ctl_state_alarm(
			st, CTL_ALARM_TABLE,
			"regionfwd runs generation %" PRIu64 " (%016" PRIx64
			"), pushed by another regiond (state directory %016" PRIx64
			"; this one's is %016" PRIx64 "), not this regiond's generation %" PRIu64
			" (%016" PRIx64
			"): two regionds manage this regionfwd? not pushed back, not adopted; "
			"apply a table here (the current one too; a change awaiting confirmation "
			"is "
			"confirmed first) to take it over",
			r->generation->id, r->generation->hash, r->controller, st->state_id,
			ctl_state_current(st)->id, ctl_state_current(st)->hash);
		st->held_back = 1;
		keep_report(st, r);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return 0;
	}
	if (!in_sync && overwritten(st, r)) {
		ctl_state_alarm(
			st, CTL_ALARM_TABLE,
			"regionfwd runs generation %" PRIu64 " (%016" PRIx64
			"), pushed by another regiond in place of this regiond's generation "
			"%" PRIu64 " (%016" PRIx64
			"): two regionds manage this regionfwd? not pushed back; apply a table "
			"here (a change awaiting confirmation is confirmed first) to take it over",
			r->generation->id, r->generation->hash, ctl_state_current(st)->id,
			ctl_state_current(st)->hash);
		st->held_back = 1;
		keep_report(st, r);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return 0;
	}
	cur = ctl_state_current(st);
	keep_report(st, r);
	was_held = st->held_back;
	st->held_back = 0;
	/* Commit-confirm's revert is due and its push was not answered in
	 * time: what regionfwd runs may be that revert, finished late (under
	 * an id spent here). The confirm tick pushes the revert again within a
	 * second; pushing the unconfirmed current generation meanwhile would
	 * run again the change the revert undoes. */
	if (!in_sync && ctl_confirm_due(st)) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return 0;
	}
	if (!in_sync && cur != NULL && pushed_by_regiond(r) && r->generation->hash != st->reported)
		/* Not silent: another regiond's table (an id this one already
		 * passed) is replaced by this one's newer current generation. */
		fwd_log(FWD_LOG_NOTICE,
			"regionfwd runs generation %" PRIu64 " (%016" PRIx64
			"), pushed by a regiond, not this regiond's current generation %" PRIu64
			" (%s): pushing %" PRIu64,
			r->generation->id, r->generation->hash, cur->id,
			spent_here(st, r->generation->id)
				? "a change this regiond answered was not made: regionfwd "
				  "saved its push and restarted before answering"
				: "an older one, or another regiond's",
			cur->id);
	st->reported = r->generation && !in_sync ? r->generation->hash : 0;
	/* regionfwd runs our table but does not know it is managed (it never
	 * got a push: its --table had the same content, or it restarted on
	 * it): one push, a no-op there, makes it refuse SIGHUP reloads. */
	if (in_sync && cur != NULL &&
	    (r->managed_by[0] == '\0' ||
	     /* Judged by ids alone (state_id_new), this regiond's table runs
	      * under another identity: its own former one, a backup from
	      * before the upgrade restored over the box's. Claimed, so that
	      * in step means pushed by this identity from then on. */
	     (st->state_id_new && r->controller != 0 && r->controller != st->state_id)))
		push_gen(st, cur, st->table, &e);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* Whole, also a delta generation (its model, named by its chain hash
	 * in generation_hash): regionfwd restarted, or runs something else. */
	if (!in_sync && cur != NULL && push_gen(st, cur, st->table, &e) == 0)
		in_sync = ctl_state_refresh(st);
	/* The hold ended without an operator (the table it held back from is
	 * gone: regionfwd restarted on its --table): its alarm goes with it. */
	if (in_sync && was_held)
		ctl_state_alarm(st, CTL_ALARM_TABLE, NULL);
	if (in_sync && st->seeded)
		st->seed_ran = 1;
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
	if (!ctl_traffic_due(st->traffic, fwd_mono_ms()) ||
	    dp_call(st, REGIONFWD__CTL__OP__OP_COUNTERS, &req.base, (ProtobufCMessage **)&rep, 5000,
		    &e))
		return;
	j = json_loadb((const char *)rep->json.data, rep->json.len, 0, NULL);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	r = j ? fwd_report_from_json(j, &e) : NULL;
	json_decref(j);
	if (r)
		ctl_traffic_add(st->traffic, r, fwd_mono_ms());
}

/* Whether hist[@i] records which prefixes the feed had added, by the
 * records alone (owned_at reads the files). */
static int own_known(const struct ctl_state *st, unsigned i)
{
	for (;; i--) {
		if (st->hist[i].own != CTL_OWN_FEED && st->hist[i].own != CTL_OWN_OTHER)
			return st->hist[i].own != CTL_OWN_UNKNOWN;
		if (i == 0)
			return 0;
	}
}

json_t *ctl_state_history(const struct ctl_state *st)
{
	json_t *a = json_array();

	for (unsigned i = st->nhist; i-- > st->hidden;) {
		const struct ctl_gen *g = &st->hist[i];
		char h[17];

		json_t *v;

		hexhash(g->hash, h);
		v = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "id", (json_int_t)g->id,
			      "time", (json_int_t)g->time, "author", g->author, "comment",
			      g->comment, "by", g->by, "hash", h, "bytes",
			      (json_int_t)(g->kind == CTL_GEN_DELTA ? g->clen : g->len), "kind",
			      g->kind == CTL_GEN_DELTA ? "delta" : "document");
		if (v && g->kind == CTL_GEN_DELTA) {
			json_object_set_new(v, "parent", json_integer((json_int_t)g->parent));
			json_object_set_new(v, "added", json_integer(g->added));
			json_object_set_new(v, "removed", json_integer(g->removed));
		} else if (v && g->checkpoint) {
			json_object_set_new(v, "checkpoint", json_true());
		}
		/* Said only when not known (an older regiond's record, or one
		 * derived from it): a rollback to it brings the prefixes the
		 * feed had added back as static ones (docs/bgp-feed.md). */
		if (v && !own_known(st, i))
			json_object_set_new(v, "feed_prefixes_known", json_false());
		json_array_append_new(a, v);
	}
	return a;
}
