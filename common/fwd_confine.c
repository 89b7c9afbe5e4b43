#define _GNU_SOURCE /* O_PATH */
#include "fwd_confine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#include "fwd_doc.h"

int fwd_confine_no_openat2;

static int refuse(const struct fwd_confine *w, const char *name, struct fwd_err *err,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int refuse(const struct fwd_confine *w, const char *name, struct fwd_err *err,
		  const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return fwd_err_set(err, w->doc, w->line, w->field, "names_file '%.80s' refused: %s", name,
			   why);
}

/* A '..' component anywhere: refused by the name alone, whatever it would
 * resolve to, so the rule can be read off the document. */
static int has_dotdot(const char *p)
{
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 1;
		p += n;
		p += strspn(p, "/");
	}
	return 0;
}

/* @name past the operator's directory @trusted, or NULL when it is not
 * beneath it. Compared as written: the document names the directory the
 * operator named, not one that happens to resolve to it. */
static const char *beneath_trusted(const char *trusted, const char *name)
{
	size_t n = strlen(trusted);

	while (n > 0 && trusted[n - 1] == '/')
		n--;
	if (strncmp(name, trusted, n) != 0 || name[n] != '/')
		return NULL;
	name += n;
	return name + strspn(name, "/");
}

static int fd_path(int fd, char *out, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, len - 1);
	if (n < 0 || (size_t)n >= len - 1)
		return -1;
	out[n] = '\0';
	return 0;
}

/*
 * Without openat2: O_PATH follows the path without opening the file (no
 * FIFO waits, no device is touched), then the file it reached must be
 * beneath @dfd by their /proc/self/fd names, and only a regular file is
 * opened for reading, through that descriptor (what was checked is what is
 * read, whatever is renamed meanwhile). -EXDEV when it is outside; another
 * file than a regular one comes back as the O_PATH descriptor, for the
 * caller to refuse by its type.
 */
static int open_checked(int dfd, const char *rel)
{
	char root[PATH_MAX], got[PATH_MAX], link[64];
	struct stat a, b;
	size_t rl;
	int pfd = openat(dfd, rel, O_PATH | O_CLOEXEC), fd;

	if (pfd < 0)
		return -errno;
	if (fd_path(dfd, root, sizeof(root)) || fd_path(pfd, got, sizeof(got))) {
		close(pfd);
		return -EOPNOTSUPP; /* no /proc: where it leads cannot be told */
	}
	rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
	if (strncmp(got, root, rl) != 0 || got[rl] != '/') {
		close(pfd);
		return -EXDEV;
	}
	if (fstat(pfd, &a) < 0 || !S_ISREG(a.st_mode))
		return pfd;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", pfd);
	fd = open(link, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || fstat(fd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		int rc = fd < 0 ? -errno : -EXDEV;

		if (fd >= 0)
			close(fd);
		close(pfd);
		return rc;
	}
	close(pfd);
	return fd;
}

/* @rel opened for reading beneath @dfd, or -errno (-EXDEV: it leads out). */
static int open_beneath(int dfd, const char *rel)
{
#ifdef SYS_openat2
	if (!fwd_confine_no_openat2) {
		/* O_NONBLOCK: a FIFO is opened without waiting for a writer, and
		 * refused by its type. */
		struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
				       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
		long fd = syscall(SYS_openat2, dfd, rel, &how, sizeof(how));

		if (fd >= 0)
			return (int)fd;
		/* An older kernel, or a seccomp filter that does not know the
		 * call (containers answer EPERM): the check below does. */
		if (errno != ENOSYS && errno != EPERM && errno != E2BIG)
			return -errno;
	}
#endif
	return open_checked(dfd, rel);
}

static const char *type_name(mode_t m)
{
	return S_ISDIR(m)    ? "a directory"
	       : S_ISFIFO(m) ? "a FIFO"
	       : S_ISSOCK(m) ? "a socket"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISBLK(m)  ? "a block device"
			     : "not a regular file";
}

int fwd_read_confined(const struct fwd_confine *w, const char *name, char **buf, size_t *len,
		      struct fwd_err *err)
{
	const char *rel = name, *base = w->dir[0] ? w->dir : ".";
	char shown[PATH_MAX];
	struct stat st = {0};
	int dfd, fd, rc;

	if (name[0] == '\0')
		return refuse(w, name, err, "an empty path");
	if (name[0] == '/') {
		if (w->trusted == NULL || (rel = beneath_trusted(w->trusted, name)) == NULL)
			return refuse(
				w, name, err,
				"an absolute path; a names file is read from the document's "
				"directory tree only (regionctl --names-dir DIR lets an operator "
				"allow another one)");
		base = w->trusted;
	}
	if (has_dotdot(rel))
		return refuse(w, name, err,
			      "a '..' component; a names file is read from the document's "
			      "directory tree only");
	if (rel[0] == '\0')
		return refuse(w, name, err, "names a directory, not a file");
	if (snprintf(shown, sizeof(shown), "%s%s", name[0] == '/' ? "" : w->dir, name) >=
	    (int)sizeof(shown))
		return refuse(w, name, err, "too long a path");
	if ((dfd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = -errno;
		fwd_err_set(err, shown, 0, w->field, "cannot open the directory %.200s: %s", base,
			    strerror(errno));
		return rc;
	}
	fd = open_beneath(dfd, rel);
	close(dfd);
	if (fd == -EXDEV || fd == -ELOOP)
		return refuse(w, name, err,
			      "it leads out of %s through a symlink (one inside must be relative "
			      "and stay inside)",
			      name[0] == '/' ? "the --names-dir directory"
					     : "the document's directory tree");
	if (fd == -EOPNOTSUPP)
		return refuse(w, name, err,
			      "where it leads cannot be checked here (no openat2, no /proc)");
	if (fd < 0) {
		fwd_err_set(err, shown, 0, w->field, "cannot open: %s", strerror(-fd));
		return fd;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return refuse(w, name, err, "%s, not a regular file", type_name(st.st_mode));
	}
	if ((uint64_t)st.st_size > FWD_DOC_MAX_BYTES) {
		close(fd);
		return refuse(w, name, err, "larger than %u bytes", FWD_DOC_MAX_BYTES);
	}
	rc = fwd_read_fd(fd, shown, buf, len, err);
	close(fd);
	if (rc && err)
		snprintf(err->path, sizeof(err->path), "%s", w->field);
	return rc;
}
