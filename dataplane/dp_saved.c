#include "dp_saved.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <jansson.h>

#include "fwd_doc.h"
#include "fwd_hash.h"

#define SAVED_FORMAT "regionfwd-pushed-table"
/* Version 2 adds "check", a hash of the header's own fields: the document
 * had its hash, but a flipped digit in the generation id or the pusher
 * went unseen. Version 1 (a previous release's save, no check) is still
 * read, so an upgrade resumes what ran. */
#define SAVED_VERSION 2
#define SAVED_VERSION_UNCHECKED 1
/* Version 3 is version 2 with "controller", the pushing regiond's
 * identity, under the check: written only when there is one, so a
 * regionfwd from before it refuses the file by its version, said as such,
 * not as "corrupt or edited", and starts on --table until regiond pushes. */
#define SAVED_VERSION_CONTROLLER 3

/* The hash that "check" records: every other field, in a fixed order, one
 * a line (a pusher's name may hold any byte but NUL; its length is in the
 * line before it, so no field can pass for another). The controller comes
 * last and only when there is one: a save written before it was recorded
 * keeps its check. */
static uint64_t header_check(json_int_t version, uint64_t id, uint64_t hash, json_int_t bytes,
			     const char *pushed_by, uint64_t gen_hash, uint64_t controller)
{
	char canon[512];
	int n = snprintf(canon, sizeof(canon),
			 "%s\n%lld\n%" PRIu64 "\n%016" PRIx64 "\n%lld\n%016" PRIx64 "\n%zu\n%s",
			 SAVED_FORMAT, (long long)version, id, hash, (long long)bytes, gen_hash,
			 strlen(pushed_by), pushed_by);

	if (controller && n > 0 && (size_t)n < sizeof(canon))
		n += snprintf(canon + n, sizeof(canon) - (size_t)n, "\ncontroller %016" PRIx64,
			      controller);
	return fwd_hash64(canon, n < 0			     ? 0
				 : (size_t)n < sizeof(canon) ? (size_t)n
							     : sizeof(canon) - 1);
}

/* Exactly 16 hex digits (strtoull alone takes a sign, spaces, "0x"). */
static int parse_hex16(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || strlen(s) != 16)
		return -1;
	for (int i = 0; i < 16; i++) {
		int c = s[i], d = c >= '0' && c <= '9'	 ? c - '0'
				  : c >= 'a' && c <= 'f' ? c - 'a' + 10
				  : c >= 'A' && c <= 'F' ? c - 'A' + 10
							 : -1;

		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

static void journal_path(const char *path, char *out, size_t len)
{
	snprintf(out, len, "%s.deltas", path);
}

int dp_saved_write(const char *path, uint64_t id, uint64_t gen_hash, const char *pushed_by,
		   uint64_t controller, const char *doc, size_t len)
{
	char dir[PATH_MAX], hash[17], *head;
	const char *slash = strrchr(path, '/');
	int rc;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	snprintf(hash, sizeof(hash), "%016" PRIx64, fwd_hash64(doc, len));
	json_t *j = json_pack("{s:s, s:i, s:I, s:s, s:I, s:s}", "format", SAVED_FORMAT, "version",
			      controller ? SAVED_VERSION_CONTROLLER : SAVED_VERSION, "generation",
			      (json_int_t)id, "hash", hash, "bytes", (json_int_t)len, "pushed_by",
			      pushed_by);

	uint64_t doc_hash = fwd_hash64(doc, len), own = gen_hash ? gen_hash : doc_hash;
	char check[17];

	if (j && own != doc_hash) {
		char gh[17];

		snprintf(gh, sizeof(gh), "%016" PRIx64, own);
		json_object_set_new(j, "generation_hash", json_string(gh));
	}
	if (j && controller) {
		char ch[17];

		snprintf(ch, sizeof(ch), "%016" PRIx64, controller);
		json_object_set_new(j, "controller", json_string(ch));
	}
	snprintf(check, sizeof(check), "%016" PRIx64,
		 header_check(controller ? SAVED_VERSION_CONTROLLER : SAVED_VERSION, id, doc_hash,
			      (json_int_t)len, pushed_by, own, controller));
	if (j)
		json_object_set_new(j, "check", json_string(check));
	head = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (head == NULL)
		return -ENOMEM;
	/* The header has no newline of its own (compact JSON escapes them). */
	struct iovec parts[] = {
		{.iov_base = head, .iov_len = strlen(head)},
		{.iov_base = (void *)"\n", .iov_len = 1},
		{.iov_base = (void *)doc, .iov_len = len},
	};

	rc = fwd_write_atomic(dir, slash ? slash + 1 : path, parts, 3);
	free(head);
	if (rc == 0) {
		char jp[PATH_MAX + 8];

		journal_path(path, jp, sizeof(jp));
		/* A directory there is no journal (a start says so and runs the
		 * document): the document is saved. Failing here made every
		 * retry save the whole table again, every 2 s. */
		if (unlink(jp) && errno != ENOENT && errno != EISDIR)
			return -errno;
	}
	return rc;
}

/* The journal is regionfwd's own regular file, opened for writing only so:
 * a symlink is not followed (a save replaces a link, never writes through
 * it: an append once wrote journal records into whatever file a link named,
 * or created a dangling link's target), a FIFO is not waited on (an open for
 * writing blocks until a reader comes: the control thread once hung in it,
 * every push after waiting out regiond's deadline), and a directory or
 * anything else is left alone. O_NONBLOCK is what makes a FIFO's open fail
 * at once (ENXIO); it changes nothing for a regular file. */
static int open_journal(const char *jp, int flags)
{
	struct stat st;
	int fd = open(jp, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);

	if (fd < 0)
		return errno == ELOOP || errno == ENXIO || errno == EISDIR ? DP_SAVED_NOT_REGULAR
									   : -errno;
	/* A second name (a hard link) would be written through as well. */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		close(fd);
		return DP_SAVED_NOT_REGULAR;
	}
	return fd;
}

const char *dp_saved_strerror(int rc)
{
	/* The retry writes the whole table, which replaces a link or a FIFO
	 * there (a directory stays, and is said again). */
	return rc == DP_SAVED_NOT_REGULAR
		       ? "its .deltas is not a regular file of its own (a symbolic "
			 "link, a FIFO, a directory, a second name of another "
			 "file): nothing written through it"
		       : strerror(-rc);
}

int dp_saved_journal_is_dir(const char *path)
{
	char jp[PATH_MAX + 8];
	struct stat st;

	journal_path(path, jp, sizeof(jp));
	return lstat(jp, &st) == 0 && S_ISDIR(st.st_mode);
}

long long dp_saved_journal_len(const char *path)
{
	char jp[PATH_MAX + 8];
	struct stat st;

	journal_path(path, jp, sizeof(jp));
	if (lstat(jp, &st) == 0)
		return S_ISREG(st.st_mode) ? (long long)st.st_size : -EINVAL;
	return errno == ENOENT ? 0 : -errno;
}

int dp_saved_journal_cut(const char *path, long long len)
{
	char jp[PATH_MAX + 8];
	int fd, rc = 0;

	journal_path(path, jp, sizeof(jp));
	/* Truncated and fsync'd in place, not removed: the file's own fsync
	 * makes it durable, where a removal would need the directory's. */
	if ((fd = open_journal(jp, O_WRONLY)) < 0)
		return fd == -ENOENT && len == 0 ? 0 : fd;
	if (ftruncate(fd, (off_t)len) || fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

int dp_saved_remove(const char *path)
{
	char jp[PATH_MAX + 8];

	struct stat s;

	journal_path(path, jp, sizeof(jp));
	/* Looked up first: on a read-only filesystem unlink() fails (EROFS)
	 * before it looks at the name, and "nothing saved" read as a save
	 * that could not be removed. */
	if (lstat(jp, &s) == 0 && unlink(jp) && errno != ENOENT)
		return -errno;
	if (lstat(path, &s) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (unlink(path) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

#define JOURNAL_MAGIC 0x52464a44u /* "RFJD" */
#define JOURNAL_HEAD 28u /* magic, id, hash, length */

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int dp_saved_append(const char *path, const uint64_t *id, const uint64_t *hash,
		    uint8_t *const *changes, const size_t *len, uint32_t n)
{
	char jp[PATH_MAX + 8];
	int fd, rc = 0, created;

	for (uint32_t i = 0; i < n; i++)
		if (len[i] > UINT32_MAX)
			return -E2BIG;
	journal_path(path, jp, sizeof(jp));
	created = faccessat(AT_FDCWD, jp, F_OK, AT_SYMLINK_NOFOLLOW) != 0;
	if ((fd = open_journal(jp, O_WRONLY | O_CREAT | O_APPEND)) < 0)
		return fd;
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		uint8_t head[JOURNAL_HEAD], sum[8];

		put64(head, JOURNAL_MAGIC);
		put64(head + 4, id[i]);
		put64(head + 12, hash[i]);
		head[20] = (uint8_t)len[i];
		head[21] = (uint8_t)(len[i] >> 8);
		head[22] = (uint8_t)(len[i] >> 16);
		head[23] = (uint8_t)(len[i] >> 24);
		memset(head + 24, 0, 4);
		put64(sum, fwd_hash64_update(fwd_hash64(head, sizeof(head)), changes[i], len[i]));
		struct iovec v[] = {{head, sizeof(head)}, {changes[i], len[i]}, {sum, sizeof(sum)}};
		ssize_t want = (ssize_t)(sizeof(head) + len[i] + sizeof(sum)), w = writev(fd, v, 3);

		if (w != want)
			rc = w < 0 ? -errno : -ENOSPC;
	}
	/* One fsync for every record: a chain written whole after a failed
	 * save (thousands of small deltas) costs one flush, not thousands. */
	if (rc == 0 && fsync(fd))
		rc = -errno;
	close(fd);
	if (rc == 0 && created) {
		/* A new file's name is durable once its directory is. */
		char dir[PATH_MAX];
		const char *slash = strrchr(path, '/');
		int dfd;

		snprintf(dir, sizeof(dir), "%.*s",
			 slash ? (int)(slash == path ? 1 : slash - path) : 1, slash ? path : ".");
		if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			if (fsync(dfd))
				rc = -errno;
			close(dfd);
		}
	}
	return rc;
}

/* Whether a whole, checked record starts anywhere in @p (@len bytes) past
 * its first header: then what ends before it was damaged, not torn (a
 * torn record is the last one; a damaged length reads as one cut short). */
static int record_after(const uint8_t *p, size_t len)
{
	for (size_t o = JOURNAL_HEAD; o + JOURNAL_HEAD + 8 <= len; o++) {
		const uint8_t *r = p + o;
		uint32_t n;

		if ((get64(r) & 0xffffffffu) != JOURNAL_MAGIC)
			continue;
		n = (uint32_t)r[20] | (uint32_t)r[21] << 8 | (uint32_t)r[22] << 16 |
		    (uint32_t)r[23] << 24;
		if (len - o - JOURNAL_HEAD - 8 >= n &&
		    fwd_hash64_update(fwd_hash64(r, JOURNAL_HEAD), r + JOURNAL_HEAD, n) ==
			    get64(r + JOURNAL_HEAD + n))
			return 1;
	}
	return 0;
}

/* The journal's whole records; a bad one ends it (noted). */
static void read_journal(const char *path, struct dp_saved *out)
{
	char jp[PATH_MAX + 8];
	struct fwd_err e;
	char *buf;
	size_t len, off = 0;
	int damaged = 0;

	journal_path(path, jp, sizeof(jp));
	if (fwd_read_file(jp, &buf, &len, &e)) {
		struct stat st;

		/* None: no delta since the document. Anything else there (a
		 * directory, a FIFO, a dangling link, unreadable) is said: the
		 * start would otherwise run the document alone, an older table
		 * than was pushed, without a word. */
		if (lstat(jp, &st) == 0 || errno != ENOENT)
			out->journal_lost = 1;
		if (out->journal_lost)
			snprintf(out->journal_note, sizeof(out->journal_note),
				 "%.100s: %.80s: the prefix changes pushed after the document "
				 "are not applied",
				 jp, e.reason);
		return;
	}
	while (off < len) {
		const uint8_t *r = (const uint8_t *)buf + off;
		uint32_t n;
		struct dp_saved_delta *d;

		if (len - off < JOURNAL_HEAD + 8)
			break; /* a tail shorter than any record: torn */
		if ((get64(r) & 0xffffffffu) != JOURNAL_MAGIC) {
			damaged = 1;
			break;
		}
		n = (uint32_t)r[20] | (uint32_t)r[21] << 8 | (uint32_t)r[22] << 16 |
		    (uint32_t)r[23] << 24;
		if (len - off - JOURNAL_HEAD - 8 < n) {
			/* cut short: torn, unless a whole record follows (its
			 * length damaged, which reads the same) */
			damaged = record_after(r, len - off);
			break;
		}
		if (fwd_hash64_update(fwd_hash64(r, JOURNAL_HEAD), r + JOURNAL_HEAD, n) !=
		    get64(r + JOURNAL_HEAD + n)) {
			damaged = 1; /* whole, but not what was written */
			break;
		}
		d = realloc(out->deltas, sizeof(*d) * (out->ndeltas + 1));
		if (d == NULL)
			break;
		out->deltas = d;
		d = &out->deltas[out->ndeltas];
		d->changes = malloc(n ? n : 1);
		if (d->changes == NULL)
			break;
		memcpy(d->changes, r + JOURNAL_HEAD, n);
		d->len = n;
		d->id = get64(r + 4);
		d->hash = get64(r + 12);
		out->ndeltas++;
		off += JOURNAL_HEAD + n + 8;
	}
	/* Which of the two, said apart (a probe): a crash cut the last write
	 * short, or a record is there whole but damaged, and the changes from
	 * it on, pushed and acknowledged, are lost to this start. */
	out->journal_lost |= off < len && damaged;
	if (off < len && damaged)
		snprintf(out->journal_note, sizeof(out->journal_note),
			 "%.120s: record %u is damaged (its checksum or mark does not match): it "
			 "and the %zu bytes after it are not applied, so this start runs an older "
			 "table than was last pushed, until regiond pushes again",
			 jp, out->ndeltas + 1, len - off);
	else if (off < len)
		snprintf(out->journal_note, sizeof(out->journal_note),
			 "%.120s: %zu bytes after record %u are not a whole record (a torn "
			 "write?): ignored",
			 jp, len - off, out->ndeltas);
	free(buf);
}

/* The header's fields, each checked; @return 0 or -EINVAL with @err. */
static int read_header(const char *path, const char *buf, size_t hlen, struct dp_saved *out,
		       json_int_t *bytes, struct fwd_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(buf, hlen, 0, &je);
	const char *format = NULL, *hash = NULL, *by = NULL;
	json_int_t version = 0, id = 0;
	const char *gen_hash = NULL, *controller = NULL;
	int rc = 0;

	if (j == NULL ||
	    json_unpack(j, "{s:s, s:I, s:I, s:s, s:I, s:s}", "format", &format, "version", &version,
			"generation", &id, "hash", &hash, "bytes", bytes, "pushed_by", &by)) {
		rc = fwd_err_set(err, path, 1, NULL,
				 "not a saved pushed table: its first line must be the JSON header "
				 "(format, version, generation, hash, bytes, pushed_by)");
		goto out;
	}
	if (strcmp(format, SAVED_FORMAT) != 0 ||
	    (version != SAVED_VERSION && version != SAVED_VERSION_UNCHECKED &&
	     version != SAVED_VERSION_CONTROLLER)) {
		rc = fwd_err_set(
			err, path, 1, "format",
			"format '%s' version %lld: this regionfwd reads %s versions %d to %d",
			format, (long long)version, SAVED_FORMAT, SAVED_VERSION_UNCHECKED,
			SAVED_VERSION_CONTROLLER);
		goto out;
	}
	if (id <= 0 || *bytes < 0 || parse_hex16(hash, &out->hash) ||
	    strlen(by) >= sizeof(out->pushed_by) || by[0] == '\0') {
		rc = fwd_err_set(
			err, path, 1, NULL,
			"header field out of range (generation > 0, hash of 16 hex digits, "
			"bytes >= 0, pushed_by 1..127 bytes)");
		goto out;
	}
	out->id = (uint64_t)id;
	out->gen_hash = out->hash;
	if (json_unpack(j, "{s:s}", "generation_hash", &gen_hash) == 0 &&
	    parse_hex16(gen_hash, &out->gen_hash)) {
		rc = fwd_err_set(err, path, 1, "generation_hash", "not a hash of 16 hex digits");
		goto out;
	}
	/* Absent in a save by an older regionfwd, or of a push whose sender
	 * did not say (0). */
	if (json_object_get(j, "controller") != NULL &&
	    (json_unpack(j, "{s:s}", "controller", &controller) ||
	     parse_hex16(controller, &out->controller) || out->controller == 0)) {
		rc = fwd_err_set(err, path, 1, "controller", "not an identity of 16 hex digits");
		goto out;
	}
	if ((controller != NULL) != (version == SAVED_VERSION_CONTROLLER)) {
		rc = fwd_err_set(err, path, 1, "controller",
				 "version %d saves, and only they, have one (this is version %lld)",
				 SAVED_VERSION_CONTROLLER, (long long)version);
		goto out;
	}
	if (version >= SAVED_VERSION) {
		const char *check = NULL;
		uint64_t want;

		if (json_unpack(j, "{s:s}", "check", &check)) {
			rc = fwd_err_set(err, path, 1, "check", "missing: version %lld has one",
					 (long long)version);
			goto out;
		}
		if (parse_hex16(check, &want) ||
		    want != header_check(version, out->id, out->hash, *bytes, by, out->gen_hash,
					 out->controller)) {
			rc = fwd_err_set(err, path, 1, "check",
					 "the header does not match its check: corrupt or edited");
			goto out;
		}
	}
	snprintf(out->pushed_by, sizeof(out->pushed_by), "%s", by);
out:
	json_decref(j);
	return rc;
}

int dp_saved_read(const char *path, struct dp_saved *out, struct fwd_err *err)
{
	struct fwd_err rerr = {0};
	struct stat st;
	char *buf, *nl;
	size_t len, hlen;
	json_int_t bytes = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = fwd_read_file(path, &buf, &len, &rerr);
	if (rc == -ENOENT && lstat(path, &st) == 0) {
		/* A dangling symlink is a save that cannot be read, not none. */
		fwd_err_set(err, path, 0, NULL, "a symbolic link to nothing");
		return -EINVAL;
	}
	if (rc == -ENOENT)
		return rc;
	if (rc) {
		*err = rerr;
		return rc;
	}
	nl = memchr(buf, '\n', len);
	if (nl == NULL) {
		rc = fwd_err_set(err, path, 1, NULL, "truncated: no header line");
		goto fail;
	}
	hlen = (size_t)(nl - buf);
	rc = read_header(path, buf, hlen, out, &bytes, err);
	if (rc)
		goto fail;
	if ((uint64_t)bytes != len - hlen - 1) {
		rc = fwd_err_set(err, path, 0, NULL,
				 "the header says %lld bytes of document, the file holds %zu: "
				 "truncated or appended to",
				 (long long)bytes, len - hlen - 1);
		goto fail;
	}
	if (fwd_hash64(nl + 1, (size_t)bytes) != out->hash) {
		rc = fwd_err_set(err, path, 0, NULL,
				 "the document does not match its recorded hash %016" PRIx64
				 ": corrupt or edited",
				 out->hash);
		goto fail;
	}
	/* The document moves to the front of the buffer it already has. */
	memmove(buf, nl + 1, (size_t)bytes);
	buf[bytes] = '\0';
	out->doc = buf;
	out->len = (size_t)bytes;
	read_journal(path, out);
	return 0;
fail:
	free(buf);
	memset(out, 0, sizeof(*out));
	return rc < 0 ? rc : -EINVAL;
}

int dp_saved_foreign(const char *path, struct fwd_err *err)
{
	char head[256];
	struct stat st;
	ssize_t n;
	int fd;

	if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode))
		return 0; /* nothing, or a link a save replaces, not follows */
	if (!S_ISREG(st.st_mode)) {
		fwd_err_set(err, path, 0, NULL,
			    "pushed_table: the path exists and is not a regular file; not "
			    "replacing it (give pushed_table a path of its own)");
		return 1;
	}
	if (st.st_size == 0 || (fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
		return 0;
	n = read(fd, head, sizeof(head) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	head[n] = '\0';
	head[strcspn(head, "\n")] = '\0';
	if (strstr(head, "\"format\":\"" SAVED_FORMAT "\"") != NULL)
		return 0;
	fwd_err_set(err, path, 1, NULL,
		    "pushed_table: the file there is not a table regionfwd saved (its first "
		    "line is not the header); not replacing it (a typo for the --table "
		    "path? give pushed_table a path of its own)");
	return 1;
}

void dp_saved_clear(struct dp_saved *s)
{
	for (uint32_t i = 0; i < s->ndeltas; i++)
		free(s->deltas[i].changes);
	free(s->deltas);
	free(s->doc);
	memset(s, 0, sizeof(*s));
}
