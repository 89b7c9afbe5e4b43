#include "ctl_owned.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fwd_doc.h"
#include "fwd_log.h"

#define OWNED_FILE "feed-owned"
#define OWNED_HEADER "# regiond: prefixes the routing feed added (docs/bgp-feed.md)\n"

struct ctl_owned {
	char dir[256], path[300];
	/* -1: not open for appends (the state directory refused the open, a
	 * torn line's cut or the header: read-only or full). Every commit is
	 * then refused, its batch not applied, until the rewrite (pending,
	 * rewrite = 1) writes the file whole and opens it again. */
	int fd;
	char *buf; /* queued records */
	size_t len, cap;
	uint64_t lines; /* records in the file */
	/* A commit failed: the file may hold records that never took effect
	 * (a "+" whose addition was not applied, written before the failure),
	 * or lack an undo. It is rewritten from what the feed owns at the next
	 * compaction, whatever its size. */
	int rewrite;
	/* A rewrite failed (a full or failing disk): tried again after
	 * backoff_ms, doubled each time up to OWNED_RETRY_MAX_MS, so a disk
	 * that stays bad costs a line in the log now and then, not every
	 * tick. The appends go on meanwhile: the file only stays long. Not
	 * when it is not open (fd -1): every batch waits for the rewrite then,
	 * so it is tried at least every OWNED_RETRY_CLOSED_MS. */
	int64_t retry_at_ms, backoff_ms;
	char trouble[400]; /* the last rewrite's failure (its path too), "" once one succeeds */
};

#define OWNED_RETRY_FIRST_MS 1000
#define OWNED_RETRY_MAX_MS 300000
#define OWNED_RETRY_CLOSED_MS 5000

static int parse_line(char *line, struct ctl_rib_pfx *p, char **region, int *owned)
{
	char *pfx, *reg, *save = NULL;

	if ((line[0] != '+' && line[0] != '-') || line[1] != ' ')
		return -EINVAL;
	*owned = line[0] == '+';
	pfx = strtok_r(line + 2, " ", &save);
	reg = strtok_r(NULL, " ", &save);
	if (pfx == NULL || reg == NULL || strtok_r(NULL, " ", &save) != NULL ||
	    ctl_rib_pfx_parse(pfx, p))
		return -EINVAL;
	*region = reg;
	return 0;
}

struct ctl_owned *ctl_owned_open(const char *dir,
				 int (*fn)(void *arg, const struct ctl_rib_pfx *p,
					   const char *region, int owned),
				 void *arg, struct fwd_err *e)
{
	struct ctl_owned *o = calloc(1, sizeof(*o));
	struct fwd_err fe = {0};
	char *text = NULL, *line, *next;
	size_t len = 0, keep;
	unsigned lineno = 0;

	if (o == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return NULL;
	}
	o->fd = -1;
	snprintf(o->dir, sizeof(o->dir), "%s", dir);
	snprintf(o->path, sizeof(o->path), "%s/%s", dir, OWNED_FILE);
	if (access(o->path, F_OK) == 0 && fwd_read_file(o->path, &text, &len, &fe)) {
		fwd_err_fail(e, FWD_R_STATE_DIR, o->path, 0, "", "%s", fe.reason);
		goto fail;
	}
	keep = len;
	while (keep && text[keep - 1] != '\n')
		keep--;
	for (line = text; line && *line; line = next) {
		struct ctl_rib_pfx p;
		char *region;
		int owned;

		next = strchr(line, '\n');
		lineno++;
		if (next == NULL)
			break; /* cut short by a crash: never committed */
		*next++ = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (parse_line(line, &p, &region, &owned)) {
			fwd_err_fail(e, FWD_R_STATE_CORRUPT, o->path, lineno, "",
				     "not a record regiond writes ('+ PREFIX REGION' or '- PREFIX "
				     "REGION'); regiond will not guess which prefixes the feed "
				     "added (move the file away to start afresh)");
			goto fail;
		}
		o->lines++;
		if (fn(arg, &p, region, owned)) {
			fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
			goto fail;
		}
	}
	free(text);
	text = NULL;
	/* What was read is known; writing it is another matter. A state
	 * directory that is read-only or full once stopped regiond here (with
	 * --feed-table only): now regiond starts, the feed's batches are
	 * refused (not applied, retried) and the rewrite is tried with its
	 * backoff, saying why, until the disk takes the file. */
	o->rewrite = 1;
	/* A torn last line is cut off, so the next append starts a line. */
	if (keep != len && truncate(o->path, (off_t)keep) < 0) {
		fwd_log(FWD_LOG_WARNING, "bgp feed: %s: cannot cut its torn last line: %s", o->path,
			strerror(errno));
		return o;
	}
	o->fd = open(o->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (o->fd < 0) {
		fwd_log(FWD_LOG_WARNING, "bgp feed: %s: cannot open for writing: %s", o->path,
			strerror(errno));
		return o;
	}
	ssize_t w = keep == 0 ? write(o->fd, OWNED_HEADER, strlen(OWNED_HEADER)) : 0;

	if (keep == 0 && w != (ssize_t)strlen(OWNED_HEADER)) {
		/* A short write sets no errno: what is left there is stale. */
		fwd_log(FWD_LOG_WARNING, "bgp feed: %s: cannot write: %s", o->path,
			w < 0 ? strerror(errno) : "a short write (the disk is full)");
		/* A cut header has no newline: the next open takes it for
		 * a line a crash cut short, not for a record. */
		close(o->fd);
		o->fd = -1;
		return o;
	}
	o->rewrite = 0;
	return o;
fail:
	free(text);
	ctl_owned_close(o);
	return NULL;
}

void ctl_owned_close(struct ctl_owned *o)
{
	if (o == NULL)
		return;
	if (o->fd >= 0)
		close(o->fd);
	free(o->buf);
	free(o);
}

int ctl_owned_record(struct ctl_owned *o, const struct ctl_rib_pfx *p, const char *region,
		     int owned)
{
	char pfx[64];
	int n;

	if (o->cap - o->len < 128) {
		size_t cap = o->cap ? o->cap * 2 : 65536;
		char *b = realloc(o->buf, cap);

		if (b == NULL)
			return -ENOMEM;
		o->buf = b;
		o->cap = cap;
	}
	n = snprintf(o->buf + o->len, o->cap - o->len, "%c %s %s\n", owned ? '+' : '-',
		     ctl_rib_pfx_str(p, pfx, sizeof(pfx)), region);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		return -EOVERFLOW;
	o->len += (size_t)n;
	o->lines++;
	return 0;
}

int ctl_owned_commit(struct ctl_owned *o, struct fwd_err *e)
{
	struct stat st;
	size_t off = 0;

	if (o->len == 0)
		return 0;
	if (o->fd < 0) {
		o->len = 0;
		o->rewrite = 1;
		return fwd_err_fail(e, FWD_R_PERSIST_FAILED, o->path, 0, "",
				    "not open for writing (the state directory refused it): "
				    "nothing is recorded until it is written whole again");
	}
	if (fstat(o->fd, &st) < 0) {
		o->len = 0;
		o->rewrite = 1;
		return fwd_err_fail(e, FWD_R_PERSIST_FAILED, o->path, 0, "", "cannot stat: %s",
				    strerror(errno));
	}
	while (off < o->len) {
		ssize_t w = write(o->fd, o->buf + off, o->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int err = w < 0 ? errno : EIO;

			/* The batch is not applied: what was written of it is
			 * cut off again, so the next append follows a whole
			 * line. Left there, the next batch (the disk had room
			 * again) once followed a torn line ("+ + 100.73.0.0/24
			 * india"), which the next start refused as not a
			 * record: regiond would not start until the file was
			 * edited by hand. Cutting frees room, so it seldom
			 * fails; if it does, no append is made until the
			 * rewrite has written the file whole. */
			if (ftruncate(o->fd, st.st_size) < 0) {
				close(o->fd);
				o->fd = -1;
			}
			o->len = 0;
			o->rewrite = 1;
			return fwd_err_fail(e, FWD_R_PERSIST_FAILED, o->path, 0, "",
					    "cannot write: %s", strerror(err));
		}
		off += (size_t)w;
	}
	o->len = 0;
	if (fdatasync(o->fd) < 0) {
		o->rewrite = 1;
		return fwd_err_fail(e, FWD_R_PERSIST_FAILED, o->path, 0, "", "cannot sync: %s",
				    strerror(errno));
	}
	return 0;
}

struct out {
	char *buf;
	size_t len, cap;
	uint64_t lines;
};

static int add_line(void *arg, const struct ctl_rib_pfx *p, const char *region)
{
	struct out *w = arg;
	char pfx[64];
	int n;

	if (w->cap - w->len < 128) {
		size_t cap = w->cap * 2;
		char *b = realloc(w->buf, cap);

		if (b == NULL)
			return -ENOMEM;
		w->buf = b;
		w->cap = cap;
	}
	n = snprintf(w->buf + w->len, w->cap - w->len, "+ %s %s\n",
		     ctl_rib_pfx_str(p, pfx, sizeof(pfx)), region);
	w->len += (size_t)n;
	w->lines++;
	return 0;
}

/* The rewrite failed: set when to try again. @return the wait, seconds */
static int64_t next_try(struct ctl_owned *o, int64_t now_ms)
{
	o->backoff_ms = o->backoff_ms ? o->backoff_ms * 2 : OWNED_RETRY_FIRST_MS;
	if (o->backoff_ms > OWNED_RETRY_MAX_MS)
		o->backoff_ms = OWNED_RETRY_MAX_MS;
	if (o->fd < 0 && o->backoff_ms > OWNED_RETRY_CLOSED_MS)
		o->backoff_ms = OWNED_RETRY_CLOSED_MS;
	o->retry_at_ms = now_ms + o->backoff_ms;
	return o->backoff_ms / 1000;
}

int ctl_owned_compact(struct ctl_owned *o, const struct ctl_rib *r, uint64_t owned, int64_t now_ms,
		      struct fwd_err *e)
{
	struct out w = {.cap = 65536};
	struct iovec part;
	struct stat at_fd, at_path;
	int rc, fd, recovered = o->backoff_ms != 0;

	/* Still the file the appends go to? Removed, or replaced (a directory,
	 * another file, a second name) while regiond ran, the appends went
	 * to an unlinked file, nothing said until the next start read the
	 * path, or stopped on it (a probe). Closed then (each batch refused
	 * until the record is whole again) and written whole. */
	if (o->fd >= 0 && (fstat(o->fd, &at_fd) != 0 || lstat(o->path, &at_path) != 0 ||
			   !S_ISREG(at_path.st_mode) || at_path.st_nlink != 1 ||
			   at_fd.st_ino != at_path.st_ino || at_fd.st_dev != at_path.st_dev)) {
		fwd_log(FWD_LOG_WARNING,
			"bgp feed: %s was removed or replaced while regiond runs: written whole "
			"again from what the feed holds",
			o->path);
		close(o->fd);
		o->fd = -1;
		o->rewrite = 1;
		o->retry_at_ms = 0;
	}
	if (!o->rewrite && o->lines <= 2 * owned + 4096)
		return 0;
	if (now_ms < o->retry_at_ms)
		return 0;
	if ((w.buf = malloc(w.cap)) == NULL)
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "",
				    "out of memory (tried again in %" PRId64 " s)",
				    next_try(o, now_ms));
	memcpy(w.buf, OWNED_HEADER, strlen(OWNED_HEADER));
	w.len = strlen(OWNED_HEADER);
	if (ctl_rib_foreach_owned(r, add_line, &w)) {
		free(w.buf);
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "",
				    "out of memory (tried again in %" PRId64 " s)",
				    next_try(o, now_ms));
	}
	part = (struct iovec){.iov_base = w.buf, .iov_len = w.len};
	rc = fwd_write_atomic(o->dir, OWNED_FILE, &part, 1);
	free(w.buf);
	if (rc) {
		snprintf(o->trouble, sizeof(o->trouble), "%s: cannot rewrite: %s", o->path,
			 strerror(-rc));
		return fwd_err_fail(e, FWD_R_PERSIST_FAILED, o->path, 0, "",
				    "cannot rewrite: %s (tried again in %" PRId64 " s)",
				    strerror(-rc), next_try(o, now_ms));
	}
	fd = open(o->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		/* The old fd names the file the rename just replaced: no
		 * appends into it. */
		if (o->fd >= 0)
			close(o->fd);
		o->fd = -1;
		errno = err;
		snprintf(o->trouble, sizeof(o->trouble), "%s: cannot reopen: %s", o->path,
			 strerror(errno));
		return fwd_err_fail(e, FWD_R_PERSIST_FAILED, o->path, 0, "",
				    "cannot reopen: %s (tried again in %" PRId64 " s)",
				    strerror(errno), next_try(o, now_ms));
	}
	if (o->fd >= 0)
		close(o->fd);
	o->fd = fd;
	o->lines = w.lines;
	o->rewrite = 0;
	o->backoff_ms = o->retry_at_ms = 0;
	o->trouble[0] = '\0';
	return recovered;
}

const char *ctl_owned_trouble(const struct ctl_owned *o)
{
	/* Only while batches wait on it: a grown file's rewrite that fails
	 * with the file still open loses nothing (the appends go on). */
	return o && o->fd < 0 && o->trouble[0] ? o->trouble : NULL;
}
