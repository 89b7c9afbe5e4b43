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

#endif
