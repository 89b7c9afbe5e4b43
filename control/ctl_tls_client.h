/*
 * ctl_tls_client.h - regionctl's connection to regiond's API: a connected
 * socket as is (the unix socket, http://), or TLS (https://) with GnuTLS:
 * regiond's certificate verified against --ca (else the system's trust
 * store) for the host or address the URL names, and a client certificate
 * (--cert, --key) sent when regiond asks for one. There is no way to skip
 * the verification.
 */
#ifndef CTL_TLS_CLIENT_H
#define CTL_TLS_CLIENT_H

#include <signal.h>

#include <stddef.h>
#include <sys/types.h>

struct ctl_tls_client_conf {
	const char *ca_file; /* PEM; NULL: the system's trust store */
	const char *cert_file, *key_file; /* PEM, both or neither */
};

struct ctl_tls_client;
struct ctl_conn;

/**
 * The credentials of @conf loaded: whom to trust, the client certificate.
 * Each file must be a regular file or a pipe (--ca <(vault ...), a FIFO,
 * whose writer is waited for) of at most CTL_FILE_MAX_BYTES without a NUL
 * byte (ctl_file.h) holding PEM certificates, or the certificate's
 * unencrypted key. A --key that its group or others may read is refused,
 * as ssh does.
 * @return them, or NULL with the reason (naming the option and file) in @why.
 * @conf must outlive them.
 */
struct ctl_tls_client *ctl_tls_client_new(const struct ctl_tls_client_conf *conf, char *why,
					  size_t whylen);
void ctl_tls_client_free(struct ctl_tls_client *t);

/** @fd (connected) as a plain connection; it closes @fd. NULL: out of memory. */
struct ctl_conn *ctl_conn_plain(int fd);

/**
 * A TLS session over @fd (connected) with @host (a DNS name or an IP address,
 * as in the URL): the handshake done and regiond's certificate verified for
 * @host. @return the connection (it closes @fd), or NULL with the reason in
 * @why (what failed to verify) and @fd closed.
 */
struct ctl_conn *ctl_conn_tls(int fd, const char *host, const struct ctl_tls_client *t, char *why,
			      size_t whylen);

/** Send all of @buf. @return 0, or -1 with ctl_conn_error() saying why. */
int ctl_conn_send(struct ctl_conn *c, const void *buf, size_t len);

/** Up to @len bytes. @return their number, 0 at the end, -1 with ctl_conn_error(). */
ssize_t ctl_conn_recv(struct ctl_conn *c, void *buf, size_t len);

/** A receive interrupted by a signal returns -1 with errno EINTR while
 *  *@flag is set (NULL: it is retried, the default), so that the caller
 *  can act on the signal (regionctl capture's Ctrl-C) between receives. */
void ctl_conn_interruptible(struct ctl_conn *c, volatile sig_atomic_t *flag);

/** 1 when a TLS peer closed the connection without saying so (close_notify):
 *  what was received may be cut short, so its length must be checked. */
int ctl_conn_truncated(const struct ctl_conn *c);

const char *ctl_conn_error(const struct ctl_conn *c);

/** The socket under @c (to shut it down from a signal handler). */
int ctl_conn_fd(const struct ctl_conn *c);

void ctl_conn_close(struct ctl_conn *c);

#endif /* CTL_TLS_CLIENT_H */
