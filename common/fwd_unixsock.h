/*
 * fwd_unixsock.h - a listening unix stream socket that appears on its path
 * only once it accepts connections.
 *
 * bind() creates the socket file before chmod() and listen(): a client that
 * waits for the file (a test, regionctl, systemd's path units) can connect in
 * that window and be refused. So the socket is bound under a temporary name
 * beside its path, given its mode and group, made to listen, and then
 * rename()d over the path, which replaces a stale socket atomically.
 *
 * Both processes that serve a unix socket (regionfwd's control socket,
 * regiond's API socket) use this, so the rule "replace only a socket, never a
 * file a typo names" is written once.
 */
#ifndef FWD_UNIXSOCK_H
#define FWD_UNIXSOCK_H

#include <sys/types.h>

/* The longest path a socket takes (sun_path, with its NUL). */
#define FWD_UNIX_PATH_MAX 108

/** 0 when a process listens on the socket at @path: a connection it
 *  accepts, or would (its backlog full); a stopped process's socket refuses
 *  (-ECONNREFUSED); or another -errno of connect() (-ENOENT: no file,
 *  -ENOTSOCK ...). The probe's connection is closed unused. */
int fwd_unix_probe(const char *path);

/** 0 when a socket may be created at @path: nothing is there, or a socket
 *  (one a stopped process left: it refuses connections); -EADDRINUSE when a
 *  process listens on the socket there (a second regiond must not take a
 *  running one's path); -EEXIST when something else is (never replaced:
 *  regionfwd and regiond run as root, and a typo must not delete a file);
 *  or another -errno from lstat(). */
int fwd_unix_path_free(const char *path);

/**
 * Listen on @path (SOCK_STREAM, close-on-exec, plus @sock_flags such as
 * SOCK_NONBLOCK) with @backlog, file mode @mode and, when @gid is not
 * (gid_t)-1, group @gid. The path is replaced only when fwd_unix_path_free()
 * allows it; nothing is left behind on failure.
 *
 * @return the listening fd, or -errno with *@why (when not NULL) set to what
 * failed: "path too long", "the path exists and is not a socket; not replacing
 * it", "a running process listens on it ...; not replacing it", "bind",
 * "chmod", "chown", "listen" or "rename".
 */
int fwd_unix_listen(const char *path, int sock_flags, int backlog, mode_t mode, gid_t gid,
		    const char **why);

/*
 * A listening socket kept on its path. Removed (rm) or renamed away while
 * its daemon runs, a socket went on accepting where no client could reach
 * it, until a restart: regionctl, and a restarted regiond, could not reach
 * the daemon. So the daemon checks, in its own loop (every second), that the
 * path still names the socket file it bound, and binds a fresh one there when
 * it does not -- with the same mode and group, and only where
 * fwd_unix_path_free() allows (a live socket of another process, or a file
 * that is not a socket, is never replaced: that is said and tried again).
 */
struct fwd_unix_keep {
	char path[FWD_UNIX_PATH_MAX];
	int sock_flags, backlog;
	mode_t mode;
	gid_t gid;
	dev_t dev; /* the socket file bound (lstat), to tell it from another */
	ino_t ino;
	/* What became of the file bound ("was removed or renamed away", "was
	 * replaced by another file"), "" while the path names it. */
	const char *gone;
	/* Why a fresh socket cannot be bound there (a sentence ending in the
	 * reason, for the log and an alarm), "" when it is not lost. */
	char error[256];
};

/** fwd_unix_listen() (same arguments), remembered in @k for
 *  fwd_unix_keep_check(). @return the listening fd, or -errno (*@why set). */
int fwd_unix_keep_listen(struct fwd_unix_keep *k, const char *path, int sock_flags, int backlog,
			 mode_t mode, gid_t gid, const char **why);

/**
 * Whether @k's path still names the socket file bound; if not, listen on a
 * fresh one there (as fwd_unix_keep_listen() did at start).
 * @return 0 when it still does (nothing to do; again, after it was put
 * back, k->error cleared); 1 with *@fd the fresh
 * listening socket, to serve from now on (the caller closes the one it held;
 * k->gone says what became of the old file); or -errno when the path no
 * longer names it and a fresh one cannot be bound there yet (the directory
 * is gone, a permission, another process's live socket or a file that is not
 * a socket is there): k->error says why, until a later check binds it.
 */
int fwd_unix_keep_check(struct fwd_unix_keep *k, int *fd);

/** Remove the socket file at @k's path, only if it is still the one bound
 *  (never another process's socket that took the path meanwhile). */
void fwd_unix_keep_unlink(const struct fwd_unix_keep *k);

#endif
