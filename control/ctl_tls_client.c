#include "ctl_tls_client.h"
#include "ctl_file.h"
#include "ctl_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* As regiond's side (ctl_api.c): TLS 1.2 and 1.3, GnuTLS's NORMAL ciphers. */
#define CTL_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct ctl_tls_client {
	const struct ctl_tls_client_conf *conf;
	gnutls_certificate_credentials_t cred;
};

struct ctl_conn {
	int fd;
	gnutls_session_t s; /* NULL: plain */
	int truncated;
	char why[256];
	volatile sig_atomic_t *intr; /* ctl_conn_interruptible() */
};

void ctl_conn_interruptible(struct ctl_conn *c, volatile sig_atomic_t *flag)
{
	c->intr = flag;
}

struct ctl_conn *ctl_conn_plain(int fd)
{
	struct ctl_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	return c;
}

/* Whom to trust, and the client certificate if any: each file read with
 * ctl_file_read_from() (a regular file or a pipe, read to a bound: not
 * /dev/zero, which GnuTLS would read for ever), checked with ctl_tls_check()
 * and handed to GnuTLS as text. @return 0, or -1 with @why. */
static int load_credentials(struct ctl_tls_client *t, char *why, size_t len)
{
	const struct ctl_tls_client_conf *conf = t->conf;
	const struct ctl_tls_files names = {.cert_opt = "--cert",
					    .cert = conf->cert_file,
					    .key_opt = "--key",
					    .key = conf->key_file,
					    .ca_opt = "--ca",
					    .ca = conf->ca_file};
	char *ca = NULL, *cert = NULL, *key = NULL, text[512], warn[256];
	size_t calen = 0, certlen = 0, keylen = 0;
	enum ctl_tls_bad bad;
	int rc, ret = -1;

	if ((rc = gnutls_certificate_allocate_credentials(&t->cred)) < 0) {
		snprintf(why, len, "TLS: %s", gnutls_strerror(rc));
		return -1;
	}
	if (conf->ca_file && (ca = ctl_file_read_from(conf->ca_file, CTL_FILE_PIPE, 0, NULL, &calen,
						      text, sizeof(text))) == NULL) {
		snprintf(why, len, "--ca %s: %s", conf->ca_file, text);
		goto out;
	}
	if (conf->cert_file &&
	    ((cert = ctl_file_read_from(conf->cert_file, CTL_FILE_PIPE, 0, NULL, &certlen, text,
					sizeof(text))) == NULL ||
	     (key = ctl_file_read_from(conf->key_file, CTL_FILE_PIPE, 1, "read or change the key",
				       &keylen, text, sizeof(text))) == NULL)) {
		snprintf(why, len, "--%s %s: %s", cert ? "key" : "cert",
			 cert ? conf->key_file : conf->cert_file, text);
		goto out;
	}
	if ((ca || cert) && (bad = ctl_tls_check(cert, key, ca, text, sizeof(text), warn,
						 sizeof(warn))) != CTL_TLS_OK) {
		ctl_tls_refused(bad, &names, text, why, len);
		goto out;
	}
	if (ca) {
		gnutls_datum_t d = {.data = (unsigned char *)ca, .size = (unsigned)calen};

		rc = gnutls_certificate_set_x509_trust_mem(t->cred, &d, GNUTLS_X509_FMT_PEM);
		if (rc <= 0) {
			ctl_tls_refused(CTL_TLS_BAD_CA, &names,
					rc < 0 ? gnutls_strerror(rc) : "no PEM certificate in it",
					why, len);
			goto out;
		}
	} else {
		/* None there (no ca-certificates): nothing verifies, and the
		 * handshake's error says to give --ca. */
		(void)gnutls_certificate_set_x509_system_trust(t->cred);
	}
	if (cert) {
		gnutls_datum_t c = {.data = (unsigned char *)cert, .size = (unsigned)certlen},
			       k = {.data = (unsigned char *)key, .size = (unsigned)keylen};

		rc = gnutls_certificate_set_x509_key_mem(t->cred, &c, &k, GNUTLS_X509_FMT_PEM);
		if (rc < 0) {
			ctl_tls_refused(CTL_TLS_MISMATCH, &names,
					rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH
						? "the key does not match the certificate"
						: gnutls_strerror(rc),
					why, len);
			goto out;
		}
	}
	ret = 0;
out:
	free(ca);
	free(cert);
	if (key) {
		explicit_bzero(key, keylen);
		free(key);
	}
	return ret;
}

struct ctl_tls_client *ctl_tls_client_new(const struct ctl_tls_client_conf *conf, char *why,
					  size_t whylen)
{
	struct ctl_tls_client *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	t->conf = conf;
	if (load_credentials(t, why, whylen)) {
		ctl_tls_client_free(t);
		return NULL;
	}
	return t;
}

void ctl_tls_client_free(struct ctl_tls_client *t)
{
	if (t == NULL)
		return;
	if (t->cred)
		gnutls_certificate_free_credentials(t->cred);
	free(t);
}

/* Why the handshake of @c failed, into @why. */
static void handshake_failure(struct ctl_conn *c, int rc, const struct ctl_tls_client_conf *conf,
			      char *why, size_t len)
{
	char text[200];

	if (rc != GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		/* A plain HTTP server answers the ClientHello with an error
		 * page, or closes. */
		snprintf(why, len, "TLS handshake failed: %s%s", gnutls_strerror(rc),
			 rc == GNUTLS_E_UNEXPECTED_PACKET_LENGTH ||
					 rc == GNUTLS_E_UNSUPPORTED_VERSION_PACKET ||
					 rc == GNUTLS_E_PREMATURE_TERMINATION
				 ? " (does it serve plain HTTP? then use http://)"
				 : "");
		return;
	}
	ctl_tls_status_text(gnutls_session_get_verify_cert_status(c->s), text, sizeof(text));
	snprintf(why, len, "TLS: regiond's certificate does not verify: %s (checked against %s%s)",
		 text,
		 conf->ca_file ? "--ca " : "the system's trust store; give regiond's CA with --ca",
		 conf->ca_file ? conf->ca_file : "");
}

struct ctl_conn *ctl_conn_tls(int fd, const char *host, const struct ctl_tls_client *t, char *why,
			      size_t whylen)
{
	struct ctl_conn *c = ctl_conn_plain(fd);
	/* The name or address the URL gave (an address is matched against the
	 * certificate's IP addresses), and a purpose that allows a server. */
	gnutls_typed_vdata_st check[] = {
		{.type = GNUTLS_DT_DNS_HOSTNAME, .data = (unsigned char *)host},
		{.type = GNUTLS_DT_KEY_PURPOSE_OID,
		 .data = (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER},
	};
	unsigned char addr[16];
	int rc;

	if (c == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	if ((rc = gnutls_init(&c->s, GNUTLS_CLIENT)) < 0 ||
	    (rc = gnutls_priority_set_direct(c->s, CTL_TLS_PRIORITIES, NULL)) < 0 ||
	    (rc = gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, t->cred)) < 0) {
		snprintf(why, whylen, "TLS: %s", gnutls_strerror(rc));
		goto fail;
	}
	/* SNI names hosts, never addresses (RFC 6066). The certificate is
	 * checked during the handshake, which fails if it does not verify. */
	if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1)
		gnutls_server_name_set(c->s, GNUTLS_NAME_DNS, host, strlen(host));
	gnutls_session_set_verify_cert2(c->s, check, 2, 0);
	gnutls_transport_set_int(c->s, fd);
	/* The whole handshake within the caller's bound (--timeout): AGAIN
	 * is not fatal, so each wait of a server that never answers the
	 * ClientHello ran into GnuTLS's own 40 s, whatever the bound. */
	{
		struct timeval tv = {0};
		socklen_t tl = sizeof(tv);
		unsigned ms = getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl) == 0
				      ? (unsigned)(tv.tv_sec * 1000 + tv.tv_usec / 1000)
				      : 0;

		gnutls_handshake_set_timeout(c->s, ms ? ms : GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);
		do
			rc = gnutls_handshake(c->s);
		while (rc < 0 && !gnutls_error_is_fatal(rc));
		if (rc == GNUTLS_E_TIMEDOUT && ms) {
			snprintf(why, whylen, "no answer within %u s (the TLS handshake)",
				 ms / 1000);
			goto fail;
		}
	}
	if (rc < 0) {
		handshake_failure(c, rc, t->conf, why, whylen);
		goto fail;
	}
	return c;
fail:
	ctl_conn_close(c);
	return NULL;
}

int ctl_conn_send(struct ctl_conn *c, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w;

		if (c->s) {
			w = gnutls_record_send(c->s, (const char *)buf + off, len - off);
			if (w == GNUTLS_E_INTERRUPTED)
				continue;
			if (w == GNUTLS_E_AGAIN) {
				/* The socket is blocking: its send timeout ran
				 * out (SO_SNDTIMEO, the caller's bound). Retrying
				 * spun for ever on a regiond that stopped reading. */
				snprintf(c->why, sizeof(c->why), "%s", strerror(EAGAIN));
				errno = EAGAIN;
				return -1;
			}
			if (w < 0) {
				snprintf(c->why, sizeof(c->why), "TLS: %s",
					 gnutls_strerror((int)w));
				return -1;
			}
		} else {
			/* MSG_NOSIGNAL: a peer that closed the connection is
			 * "unreachable", not a SIGPIPE that kills regionctl
			 * without a word. */
			w = send(c->fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				snprintf(c->why, sizeof(c->why), "%s",
					 strerror(w < 0 ? errno : EPIPE));
				return -1;
			}
		}
		off += (size_t)w;
	}
	return 0;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* @fd's receive bound (SO_RCVTIMEO) in seconds, 0 for none. */
static double rcv_bound(int fd)
{
	struct timeval tv = {0};
	socklen_t tl = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl) < 0)
		return 0;
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void set_rcv_bound(int fd, double s)
{
	struct timeval tv = {.tv_sec = (time_t)s, .tv_usec = (suseconds_t)((s - (time_t)s) * 1e6)};

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static ssize_t conn_recv(struct ctl_conn *c, void *buf, size_t len, double t0, double bound);

/* One receive within the socket's bound, all of it: a TLS record without
 * data makes GnuTLS wait again (below), each time for what is left of the
 * bound, so the caller's --timeout holds (the whole bound at each retry let
 * one receive take twice it, a review); the bound is set back after. */
ssize_t ctl_conn_recv(struct ctl_conn *c, void *buf, size_t len)
{
	double bound = c->s != NULL ? rcv_bound(c->fd) : 0;
	ssize_t r = conn_recv(c, buf, len, mono_s(), bound);
	int saved = errno;

	if (bound > 0)
		set_rcv_bound(c->fd, bound);
	errno = saved;
	return r;
}

static ssize_t conn_recv(struct ctl_conn *c, void *buf, size_t len, double t0, double bound)
{
	for (;;) {
		ssize_t r;

		if (c->s == NULL) {
			r = read(c->fd, buf, len);
			if (r < 0 && errno == EINTR && !(c->intr && *c->intr))
				continue;
			if (r < 0)
				snprintf(c->why, sizeof(c->why), "%s", strerror(errno));
			return r;
		}
		r = gnutls_record_recv(c->s, buf, len);
		if (r == GNUTLS_E_INTERRUPTED && c->intr && *c->intr) {
			errno = EINTR;
			return -1;
		}
		if (r == GNUTLS_E_INTERRUPTED)
			continue;
		/* GnuTLS also answers AGAIN, at once, for a record that
		 * carried no data (a TLS 1.3 session ticket, which OpenSSL
		 * servers send once they have read the request): taken for
		 * the socket's bound run out, an answer behind a TLS proxy
		 * read as "no answer within 30 s" before it came (a write's
		 * outcome unknown, exit 5). Only a wait as long as the bound
		 * is one; the others wait again, within it. */
		if (r == GNUTLS_E_AGAIN) {
			double left = bound > 0 ? t0 + bound - mono_s() : 1;

			if (left > 0.01) {
				if (bound > 0)
					set_rcv_bound(c->fd, left);
				continue;
			}
		}
		if (r == GNUTLS_E_AGAIN) {
			/* The socket is blocking: its receive timeout ran out
			 * (SO_RCVTIMEO, the caller's bound), not "try again". */
			snprintf(c->why, sizeof(c->why), "%s", strerror(EAGAIN));
			errno = EAGAIN;
			return -1;
		}
		if (r == GNUTLS_E_PREMATURE_TERMINATION) {
			c->truncated = 1;
			return 0;
		}
		if (r < 0) {
			snprintf(c->why, sizeof(c->why), "TLS: %s", gnutls_strerror((int)r));
			c->truncated = 1; /* what came before is checked like a cut */
			return -1;
		}
		return r;
	}
}

int ctl_conn_fd(const struct ctl_conn *c)
{
	return c->fd;
}

int ctl_conn_truncated(const struct ctl_conn *c)
{
	return c->truncated;
}

const char *ctl_conn_error(const struct ctl_conn *c)
{
	return c->why[0] ? c->why : "connection failed";
}

void ctl_conn_close(struct ctl_conn *c)
{
	if (c == NULL)
		return;
	if (c->s)
		gnutls_deinit(c->s);
	close(c->fd);
	free(c);
}
