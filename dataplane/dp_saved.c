#include "dp_saved.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <jansson.h>

#include "fwd_doc.h"
#include "fwd_hash.h"

#define SAVED_FORMAT "regionfwd-pushed-table"
#define SAVED_VERSION 1

int dp_saved_write(const char *path, uint64_t id, const char *pushed_by, const char *doc,
		   size_t len)
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
			      SAVED_VERSION, "generation", (json_int_t)id, "hash", hash, "bytes",
			      (json_int_t)len, "pushed_by", pushed_by);

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
	return rc;
}

/* The header's fields, each checked; @return 0 or -EINVAL with @err. */
static int read_header(const char *path, const char *buf, size_t hlen, struct dp_saved *out,
		       json_int_t *bytes, struct fwd_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(buf, hlen, 0, &je);
	const char *format = NULL, *hash = NULL, *by = NULL;
	json_int_t version = 0, id = 0;
	char *end;
	int rc = 0;

	if (j == NULL ||
	    json_unpack(j, "{s:s, s:I, s:I, s:s, s:I, s:s}", "format", &format, "version", &version,
			"generation", &id, "hash", &hash, "bytes", bytes, "pushed_by", &by)) {
		rc = fwd_err_set(err, path, 1, NULL,
				 "not a saved pushed table: its first line must be the JSON header "
				 "(format, version, generation, hash, bytes, pushed_by)");
		goto out;
	}
	if (strcmp(format, SAVED_FORMAT) != 0 || version != SAVED_VERSION) {
		rc = fwd_err_set(err, path, 1, "format",
				 "format '%s' version %lld: this regionfwd reads %s version %d",
				 format, (long long)version, SAVED_FORMAT, SAVED_VERSION);
		goto out;
	}
	errno = 0;
	out->hash = strtoull(hash, &end, 16);
	if (id <= 0 || *bytes < 0 || strlen(hash) != 16 || *end || errno ||
	    strlen(by) >= sizeof(out->pushed_by) || by[0] == '\0') {
		rc = fwd_err_set(
			err, path, 1, NULL,
			"header field out of range (generation > 0, hash of 16 hex digits, "
			"bytes >= 0, pushed_by 1..127 bytes)");
		goto out;
	}
	out->id = (uint64_t)id;
	snprintf(out->pushed_by, sizeof(out->pushed_by), "%s", by);
out:
	json_decref(j);
	return rc;
}

int dp_saved_read(const char *path, struct dp_saved *out, struct fwd_err *err)
{
	struct fwd_err rerr = {0};
	char *buf, *nl;
	size_t len, hlen;
	json_int_t bytes = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = fwd_read_file(path, &buf, &len, &rerr);
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
	return 0;
fail:
	free(buf);
	memset(out, 0, sizeof(*out));
	return rc < 0 ? rc : -EINVAL;
}

void dp_saved_clear(struct dp_saved *s)
{
	free(s->doc);
	memset(s, 0, sizeof(*s));
}
