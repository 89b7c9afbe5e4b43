/*
 * fwd_unixsock.c - see fwd_unixsock.h.
 */
#include "fwd_unixsock.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int fwd_unix_probe(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, rc, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	err = errno;
	close(fd);
	return rc == 0 || err == EAGAIN || err == EINPROGRESS ? 0 : -err;
}

/* Whether a process listens on the socket at @path (fwd_unix_probe). */
static int someone_listens(const char *path)
{
	return fwd_unix_probe(path) == 0;
}

int fwd_unix_path_free(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	/* A second regiond (or regionfwd) started on the path of a running
	 * one once renamed its socket over the live one: the first ran on,
	 * unreachable, and the path vanished when the second stopped. */
	return someone_listens(path) ? -EADDRINUSE : 0;
}

static int fail(int fd, const char *bound, const char *what, const char **why)
{
	int err = errno;

	if (bound != NULL)
		unlink(bound);
	if (fd >= 0)
		close(fd);
	if (why != NULL)
		*why = what;
	return -err;
}

/* fwd_unix_path_free() as a failure of fwd_unix_listen(): -errno, *@why set. */
static int refuse_unless_free(const char *p, const char **why)
{
	int err = fwd_unix_path_free(p);

	if (err == 0)
		return 0;
	errno = -err;
	return fail(-1, NULL,
		    err == -EEXIST	 ? "the path exists and is not a socket; not replacing it"
		    : err == -EADDRINUSE ? "a running process listens on it (another regiond or "
					   "regionfwd?); not replacing it"
					 : "lstat",
		    why);
}

/* fwd_unix_listen(), and the identity of the socket file bound in *@made
 * (when not NULL). */
static int unix_listen(const char *path, int sock_flags, int backlog, mode_t mode, gid_t gid,
		       const char **why, struct stat *made)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char tmp[sizeof(sa.sun_path)];
	const char *bound;
	uint32_t salt = 0;
	int fd, n, err;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return fail(-1, NULL, "path too long", why);
	}
	if ((err = refuse_unless_free(path, why)) != 0)
		return err;
	/* The temporary name carries the pid and a random word, so two
	 * processes starting on one path (in two PID namespaces sharing the
	 * directory, pid 1 both) never bind each other's. When the name does
	 * not fit sun_path the socket is bound in place, and the window this
	 * module closes is open again for that path only. */
	if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != (ssize_t)sizeof(salt))
		salt = (uint32_t)random();
	n = snprintf(tmp, sizeof(tmp), "%s.%ld.%08x.tmp", path, (long)getpid(), (unsigned)salt);
	bound = (n > 0 && (size_t)n < sizeof(tmp)) ? tmp : path;
	if ((err = refuse_unless_free(bound, why)) != 0)
		return err;
	unlink(bound);
	strcpy(sa.sun_path, bound);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | sock_flags, 0);
	if (fd < 0)
		return fail(-1, NULL, "socket", why);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail(fd, NULL, "bind", why);
	if (chmod(bound, mode) < 0)
		return fail(fd, bound, "chmod", why);
	if (gid != (gid_t)-1 && chown(bound, (uid_t)-1, gid) < 0)
		return fail(fd, bound, "chown", why);
	if (listen(fd, backlog) < 0)
		return fail(fd, bound, "listen", why);
	/* The file's identity before it is renamed (rename keeps it): the
	 * path read after the rename might already name another's. */
	if (made != NULL && lstat(bound, made) < 0)
		return fail(fd, bound, "lstat", why);
	/* rename() replaces a stale socket at @path in one step: a client sees
	 * the old (refusing) socket or the new listening one, never no file and
	 * never a file that is not yet listening. */
	if (bound == tmp && rename(tmp, path) < 0)
		return fail(fd, tmp, "rename", why);
	return fd;
}

int fwd_unix_listen(const char *path, int sock_flags, int backlog, mode_t mode, gid_t gid,
		    const char **why)
{
	return unix_listen(path, sock_flags, backlog, mode, gid, why, NULL);
}

int fwd_unix_keep_listen(struct fwd_unix_keep *k, const char *path, int sock_flags, int backlog,
			 mode_t mode, gid_t gid, const char **why)
{
	struct stat made;
	int fd;

	memset(k, 0, sizeof(*k));
	k->gone = "";
	if (strlen(path) >= sizeof(k->path)) {
		if (why != NULL)
			*why = "path too long";
		return -ENAMETOOLONG;
	}
	strcpy(k->path, path);
	k->sock_flags = sock_flags;
	k->backlog = backlog;
	k->mode = mode;
	k->gid = gid;
	fd = unix_listen(path, sock_flags, backlog, mode, gid, why, &made);
	if (fd < 0)
		k->path[0] = '\0'; /* not ours: never checked, never unlinked */
	else {
		k->dev = made.st_dev;
		k->ino = made.st_ino;
	}
	return fd;
}

/* Whether @k's path names the socket file bound: 1, or 0 with k->gone set. */
static int still_named(struct fwd_unix_keep *k)
{
	struct stat st;

	if (lstat(k->path, &st) < 0) {
		/* ENOENT, ENOTDIR (the directory gone, or a file in its place);
		 * EACCES too: no client of ours reaches it either. */
		k->gone = "was removed or renamed away";
		return 0;
	}
	if (st.st_dev == k->dev && st.st_ino == k->ino)
		return 1;
	k->gone = "was replaced by another file";
	return 0;
}

int fwd_unix_keep_check(struct fwd_unix_keep *k, int *fd)
{
	const char *why = "";
	struct stat made;
	int nfd;

	if (k->path[0] == '\0')
		return 0;
	if (still_named(k)) {
		/* Put back (a directory renamed away and back): the socket
		 * bound at start serves there again. */
		k->gone = "";
		k->error[0] = '\0';
		return 0;
	}
	nfd = unix_listen(k->path, k->sock_flags, k->backlog, k->mode, k->gid, &why, &made);
	if (nfd < 0) {
		/* fwd_unix_path_free()'s refusals carry their reason in @why. */
		snprintf(k->error, sizeof(k->error), "%s%s%s", why,
			 nfd == -EEXIST || nfd == -EADDRINUSE ? "" : ": ",
			 nfd == -EEXIST || nfd == -EADDRINUSE ? "" : strerror(-nfd));
		return nfd;
	}
	k->dev = made.st_dev;
	k->ino = made.st_ino;
	k->error[0] = '\0';
	*fd = nfd;
	return 1;
}

void fwd_unix_keep_unlink(const struct fwd_unix_keep *k)
{
	struct stat st;

	if (k->path[0] && lstat(k->path, &st) == 0 && st.st_dev == k->dev && st.st_ino == k->ino)
		unlink(k->path);
}
