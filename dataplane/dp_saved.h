/*
 * dp_saved.h - the last table a controller pushed, saved by regionfwd itself
 * so that a restart resumes the generation regiond manages instead of a
 * --table file that may be stale (docs/operations.md, "Failure behaviour").
 *
 * One file: a JSON header line (format, generation id, content hash, byte
 * count, who pushed it (its name, and the controller's identity when it
 * said one), the generation's own hash when it is not the
 * document's, and a check over those fields), then the document exactly as
 * pushed; and a journal of the deltas applied since (dp_saved_append).
 * Written atomically and durably (fwd_write_atomic); read back only when
 * every header field is sound, the check matches them (versions 2 and 3,
 * 3 with the controller; a version-1 save has none) and the document's hash
 * is the recorded one, so a torn, truncated or edited file is refused with
 * its path and reason rather than run. Plain C (no DPDK): linked into the unit tests.
 */
#ifndef DP_SAVED_H
#define DP_SAVED_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "fwd_err.h"

struct dp_saved_delta {
	uint64_t id, hash; /* the generation it made */
	uint8_t *changes; /* fwd_delta_pack(), malloc'd */
	size_t len;
};

struct dp_saved {
	uint64_t id; /* the generation id it ran as */
	uint64_t hash; /* fwd_hash64 of doc */
	uint64_t gen_hash; /* the document's generation's identity (hash unless pushed with one) */
	char pushed_by[128]; /* the push's name: who manages the table */
	uint64_t controller; /* the pushing regiond's identity; 0: not said */
	char *doc; /* malloc'd, NUL-terminated */
	size_t len;
	/* The journal: deltas applied since, in order, as far as it is whole. */
	struct dp_saved_delta *deltas;
	uint32_t ndeltas;
	char journal_note[384]; /* "" or why the journal's tail was not read */
	/* Changes pushed and acknowledged are not in what was read: a record
	 * damaged, or the journal there but unreadable (a torn last record,
	 * never published, is not: it is no such loss). */
	int journal_lost;
};

/**
 * Save a pushed table to @path (its directory must exist).
 * @return 0 or -errno (the previous file, if any, is unchanged)
 */
int dp_saved_write(const char *path, uint64_t id, uint64_t gen_hash, const char *pushed_by,
		   uint64_t controller, const char *doc, size_t len);

/** dp_saved_append()'s and dp_saved_journal_cut()'s answer when @path's
 *  journal is not a regular file (a symbolic link, a FIFO, a directory):
 *  nothing was written there. */
#define DP_SAVED_NOT_REGULAR (-4097) /* past every errno: never a system call's answer */

/** A failure of this module's calls in words (strerror, or what
 *  DP_SAVED_NOT_REGULAR means). */
const char *dp_saved_strerror(int rc);

/** Whether a directory stands at @path's journal. */
int dp_saved_journal_is_dir(const char *path);

/** The length in bytes of @path's journal (0: there is none), or -errno. */
long long dp_saved_journal_len(const char *path);

/**
 * Cut @path's journal back to @len bytes (dp_saved_journal_len's before an
 * append), durably: the records appended since are gone.
 * @return 0 or -errno
 */
int dp_saved_journal_cut(const char *path, long long len);

/**
 * Remove the saved table at @path and its journal, the journal first (a
 * journal without its document is never read, a document without its
 * journal is a sound older chain).
 * @return 1 the document was removed, 0 there was none, -errno
 */
int dp_saved_remove(const char *path);

/**
 * The journal: PATH.deltas, one record per delta applied since the saved
 * document (magic, generation id and hash, the packed changes, a checksum),
 * appended and fsync'd before the delta is published. dp_saved_write()
 * starts a new document and removes the journal (after the document is
 * durable: a journal left by a crash in between names another base in its
 * chain hashes and is not applied). A torn record ends the journal read.
 * Appends @n records (generation @id[i], @hash[i], @changes[i] of @len[i]
 * bytes) with one fsync.
 * @return 0 or -errno (some records may be written, the last one torn)
 */
int dp_saved_append(const char *path, const uint64_t *id, const uint64_t *hash,
		    uint8_t *const *changes, const size_t *len, uint32_t n);

/**
 * Read @path back.
 * @return 0 with @out filled (dp_saved_clear it); -ENOENT when there is no
 *         such file (nothing said); any other -errno with @err naming the
 *         file and what is wrong with it
 */
int dp_saved_read(const char *path, struct dp_saved *out, struct fwd_err *err);

/**
 * Whether something is at @path that regionfwd did not write there: not a
 * regular file, or one whose first line is not a save's header (an empty
 * file is taken for a damaged save). A save replaces what is at its path,
 * and --start-on table removes it: a pushed_table that names another file
 * (a typo for the --table path, say) would lose it. @return 1 with @err
 * (the path and what is there), else 0.
 */
int dp_saved_foreign(const char *path, struct fwd_err *err);

/** Free what dp_saved_read() filled in. */
void dp_saved_clear(struct dp_saved *s);

#endif /* DP_SAVED_H */
