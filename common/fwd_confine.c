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
#include "fwd_log.h"

int fwd_confine_no_openat2;

/* openat2 answers EAGAIN when a rename raced its walk (RESOLVE_BENEATH
 * cannot then vouch for the result): tried again this often, then said. */
#define OPENAT2_TRIES 8

static int refuse(const struct fwd_confine *w, const char *name, struct fwd_err *err,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The name as the document wrote it, its control characters as \xNN: a
 * newline in it would otherwise forge a line wherever the refusal is
 * printed (regionctl's stderr, a log that does not escape). */
static int refuse(const struct fwd_confine *w, const char *name, struct fwd_err *err,
		  const char *fmt, ...)
{
	char why[300], shown[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fwd_escape_controls(name, shown, sizeof(shown));
	return fwd_err_set(err, w->doc, w->line, w->field, "names_file '%.80s' refused: %s", shown,
			   why);
}

static int unreadable(const struct fwd_confine *w, const char *name, struct fwd_err *err, int rc,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A file that passed the checks but cannot be opened or read: placed, as
 * every other refusal of the document, at the document's line and field,
 * the path as the document wrote it (escaped, as refuse()) after them.
 * Placed at the names file's own path, the refusal named neither the
 * document nor the line that gave it. @return @rc. */
static int unreadable(const struct fwd_confine *w, const char *name, struct fwd_err *err, int rc,
		      const char *fmt, ...)
{
	char why[300], shown[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fwd_escape_controls(name, shown, sizeof(shown));
	fwd_err_set(err, w->doc, w->line, w->field, "'%.200s': %s", shown, why);
	return rc;
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

/* Why an open was refused, besides -errno: the open_*() below return it. */
enum { LEADS_OUT = 1, SYMLINK_NO_OPENAT2 };

/*
 * Without openat2: the path is walked one component at a time, each opened
 * relative to the one before with O_PATH|O_NOFOLLOW (O_PATH opens nothing:
 * no FIFO waits, no device is touched), so no symlink is ever followed and
 * no component can be swapped between a check and the open; '..' never
 * gets here (refused by name). A symlink anywhere is refused: without the
 * kernel's RESOLVE_BENEATH, where one leads cannot be checked without a
 * race (comparing /proc/self/fd names at two moments can be beaten by a
 * rename in between). @return an O_PATH descriptor of what the path names
 * (a directory for "." or a trailing '/'), or -errno with *@why set for a
 * refusal.
 */
static int walk_nofollow(int dfd, const char *rel, int *why)
{
	int cur = openat(dfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (cur < 0)
		return -errno;
	while (*rel) {
		char comp[NAME_MAX + 1];
		size_t n = strcspn(rel, "/"), slashes = strspn(rel + n, "/");
		int last = rel[n + slashes] == '\0', next;

		if (n > NAME_MAX) {
			close(cur);
			return -ENAMETOOLONG;
		}
		memcpy(comp, rel, n);
		comp[n] = '\0';
		rel += n + slashes;
		if (n == 0 || (n == 1 && comp[0] == '.'))
			continue;
		/* A component followed by a '/' must be a directory; the last one
		 * may be anything (its type is the caller's to refuse), a symlink
		 * then coming back as itself. */
		next = openat(cur, comp,
			      O_PATH | O_NOFOLLOW | O_CLOEXEC |
				      (last && slashes == 0 ? 0 : O_DIRECTORY));
		if (next < 0) {
			int e = errno;
			struct stat st;

			/* O_DIRECTORY|O_NOFOLLOW on a symlink: ENOTDIR, like a file.
			 * Told apart only for the message: a swap meanwhile changes
			 * what is said, never what is opened (nothing is). */
			if (e == ENOTDIR && fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode)) {
				*why = SYMLINK_NO_OPENAT2;
				e = ELOOP;
			}
			close(cur);
			return -e;
		}
		close(cur);
		cur = next;
		if (last) {
			struct stat st;

			if (fstat(cur, &st) == 0 && S_ISLNK(st.st_mode)) {
				close(cur);
				*why = SYMLINK_NO_OPENAT2;
				return -ELOOP;
			}
			break;
		}
	}
	return cur;
}

/* @rel beneath @dfd as an O_PATH descriptor (nothing opened yet: the type
 * is checked before any open that could have an effect), or -errno with
 * *@why set for a refusal. */
static int open_path_beneath(int dfd, const char *rel, int *why)
{
#ifdef SYS_openat2
	if (!fwd_confine_no_openat2) {
		struct open_how how = {.flags = O_PATH | O_CLOEXEC,
				       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};

		for (int i = 0; i < OPENAT2_TRIES; i++) {
			long fd = syscall(SYS_openat2, dfd, rel, &how, sizeof(how));

			if (fd >= 0)
				return (int)fd;
			if (errno == EAGAIN || errno == EINTR)
				continue;
			if (errno == EXDEV || errno == ELOOP) {
				*why = LEADS_OUT;
				return -errno;
			}
			/* An older kernel, or a seccomp filter that does not know
			 * the call (containers answer EPERM): the walk below does. */
			if (errno != ENOSYS && errno != EPERM && errno != E2BIG)
				return -errno;
			goto walk;
		}
		return -EAGAIN;
	}
walk:
#endif
	return walk_nofollow(dfd, rel, why);
}

/* Whether every directory between @dfd and the file @rel names can be
 * entered by others (o+x), its first one not searchable into @bad. A file
 * others may read in a directory they cannot enter (the package's
 * credentials/ is 0700) is no more public than one they cannot read. The
 * directories are looked at by name after the file was opened: a rename
 * meanwhile can only change which directory is judged, never which file is
 * read, and whoever can rename inside the tree could place a file there. */
static int dirs_public(int dfd, const char *rel, char *bad, size_t cap)
{
	char prefix[PATH_MAX];
	size_t n = strlen(rel);

	if (n >= sizeof(prefix))
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (rel[i] != '/' || i == 0 || rel[i - 1] == '/')
			continue;
		if (rel[i - 1] == '.' && (i == 1 || rel[i - 2] == '/'))
			continue; /* "." is the directory before it, judged already */
		memcpy(prefix, rel, i);
		prefix[i] = '\0';
		if (fstatat(dfd, prefix, &st, 0) < 0 || !S_ISDIR(st.st_mode) ||
		    !(st.st_mode & S_IXOTH)) {
			snprintf(bad, cap, "%s", prefix);
			return 0;
		}
	}
	return 1;
}

/* What a file that is not a regular one is, or NULL when not known. */
static const char *type_name(mode_t m)
{
	return S_ISDIR(m)    ? "a directory"
	       : S_ISFIFO(m) ? "a FIFO"
	       : S_ISSOCK(m) ? "a socket"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISBLK(m)  ? "a block device"
	       : S_ISLNK(m)  ? "a symlink"
			     : NULL;
}

int fwd_read_confined(const struct fwd_confine *w, const char *name, char **buf, size_t *len,
		      struct fwd_err *err)
{
	const char *rel = name, *base = w->dir[0] ? w->dir : ".", *type;
	char shown[PATH_MAX], clean[PATH_MAX], link[64], bad[PATH_MAX];
	struct stat st, rd;
	int dfd, pfd, fd, rc, why = 0;

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
	if (snprintf(shown, sizeof(shown), "%s%s", name[0] == '/' ? "" : w->dir,
		     fwd_escape_controls(name, clean, sizeof(clean))) >= (int)sizeof(shown))
		return refuse(w, name, err, "too long a path");
	if ((dfd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = -errno;
		return unreadable(w, name, err, rc, "cannot open the directory %.200s: %s",
				  fwd_escape_controls(base, clean, sizeof(clean)), strerror(-rc));
	}
	pfd = open_path_beneath(dfd, rel, &why);
	if (pfd < 0)
		close(dfd);
	if (why == LEADS_OUT)
		return refuse(w, name, err,
			      "it leads out of %s through a symlink (one inside must be relative "
			      "and stay inside)",
			      name[0] == '/' ? "the --names-dir directory"
					     : "the document's directory tree");
	if (why == SYMLINK_NO_OPENAT2)
		return refuse(w, name, err,
			      "it goes through a symlink; symlinks are followed only where the "
			      "kernel confines them (openat2), which this system does not offer");
	if (pfd == -EAGAIN)
		return refuse(w, name, err,
			      "its directories kept being renamed while it was opened; try again");
	if (pfd < 0)
		return unreadable(w, name, err, pfd, "cannot open: %s", strerror(-pfd));
	/* The type, the mode and the size, before anything is opened for
	 * reading: opening a device can have effects (a watchdog), a FIFO
	 * would wait for a writer. */
	if (fstat(pfd, &st) < 0) {
		rc = -errno;
		close(pfd);
		close(dfd);
		return unreadable(w, name, err, rc, "cannot examine it: %s", strerror(-rc));
	}
	if (!S_ISREG(st.st_mode)) {
		close(pfd);
		close(dfd);
		type = type_name(st.st_mode);
		return type ? refuse(w, name, err, "%s, not a regular file", type)
			    : refuse(w, name, err, "not a regular file");
	}
	/* Every API reader sees the table, so what the table is made of must
	 * be no secret: a file its owner keeps from others (0600, 0640: every
	 * key, token and password the package's units read) is refused even
	 * when it lies beneath the document's directory, as a document kept
	 * next to them (/etc/regionfwd/table.yaml and credentials/), or one in
	 * '/' or a home directory, would otherwise reach it. */
	if (!(st.st_mode & S_IROTH)) {
		close(pfd);
		close(dfd);
		return refuse(w, name, err,
			      "not readable by others; a names file becomes part of the table "
			      "every API reader sees");
	}
	if (!dirs_public(dfd, rel, bad, sizeof(bad))) {
		close(pfd);
		close(dfd);
		return refuse(w, name, err,
			      "its directory %s cannot be entered by others; a names file becomes "
			      "part of the table every API reader sees",
			      fwd_escape_controls(bad, clean, sizeof(clean)));
	}
	close(dfd);
	if ((uint64_t)st.st_size > FWD_DOC_MAX_BYTES) {
		close(pfd);
		return refuse(w, name, err, "larger than %u bytes", FWD_DOC_MAX_BYTES);
	}
	/* Opened for reading through the descriptor that was checked: its
	 * /proc/self/fd link is that very file, whatever is renamed meanwhile
	 * (openat(pfd, "") cannot reopen an O_PATH descriptor for reading). */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", pfd);
	fd = open(link, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	rc = fd < 0 ? -errno : 0;
	if (fd >= 0 && (fstat(fd, &rd) < 0 || rd.st_dev != st.st_dev || rd.st_ino != st.st_ino)) {
		close(fd); /* not the file that was checked: /proc is not what it seems */
		fd = -1;
		rc = -EXDEV;
	}
	close(pfd);
	if (fd < 0 && (rc == -ENOENT || rc == -EXDEV))
		return refuse(w, name, err,
			      "it cannot be reopened for reading through /proc/self/fd here (no "
			      "/proc?)");
	if (fd < 0)
		return unreadable(w, name, err, rc, "cannot open: %s", strerror(-rc));
	{
		struct fwd_err re = {0};

		rc = fwd_read_fd(fd, shown, buf, len, &re);
		close(fd);
		return rc ? unreadable(w, name, err, rc, "%s", re.reason) : 0;
	}
}
