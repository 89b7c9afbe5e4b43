/*
 * ctl_tls.h - TLS on regiond's TCP API (GnuTLS, which libmicrohttpd serves
 * it with): the certificate, key and client CA checked before the daemon
 * starts, so a bad file is named instead of "cannot listen"; and who a
 * client certificate says the peer is, once GnuTLS verified it against the
 * client CA (docs/operations.md#security).
 */
#ifndef CTL_TLS_H
#define CTL_TLS_H

#include <stddef.h>

/* Which of the files ctl_tls_check() refused. */
enum ctl_tls_bad {
	CTL_TLS_OK = 0,
	CTL_TLS_BAD_CERT, /* --tls-cert holds no PEM certificate */
	CTL_TLS_BAD_KEY, /* --tls-key holds no unencrypted PEM private key */
	CTL_TLS_MISMATCH, /* the key is not the certificate's */
	CTL_TLS_BAD_CA, /* --tls-client-ca holds no PEM certificate */
};

/**
 * Check the PEM text of the server's certificate (chain) @cert, its private
 * key @key and, unless NULL, the client CA certificates @ca, as
 * libmicrohttpd will load them. @cert and @key NULL: @ca alone (a client's
 * trusted CAs; a client's certificate and key are checked the same way). @why gets the reason when one is refused;
 * @warn (always written, "" when none) a problem that does not stop the
 * start: a certificate outside its validity period.
 * @return CTL_TLS_OK or which file is wrong
 */
enum ctl_tls_bad ctl_tls_check(const char *cert, const char *key, const char *ca, char *why,
			       size_t whylen, char *warn, size_t warnlen);

/* The options that named the files ctl_tls_check() was given, and their
 * paths: regionctl's --cert, --key, --ca; regiond's --tls-cert, --tls-key,
 * --tls-client-ca, or --fleet-cert, --fleet-key, --fleet-ca. */
struct ctl_tls_files {
	const char *cert_opt, *cert;
	const char *key_opt, *key;
	const char *ca_opt, *ca;
};

/**
 * Which file @bad (not CTL_TLS_OK) says is wrong and @why, as one line
 * into @buf: "--ca F: why", or for CTL_TLS_MISMATCH "--key K and --cert C:
 * why".
 */
void ctl_tls_refused(enum ctl_tls_bad bad, const struct ctl_tls_files *f, const char *why,
		     char *buf, size_t len);

enum ctl_tls_peer {
	CTL_TLS_PEER_NONE, /* no client certificate */
	CTL_TLS_PEER_UNTRUSTED, /* one that does not verify (@why says why) */
	CTL_TLS_PEER_OK, /* verified: its subject is known */
};

/**
 * The client certificate of @session (a gnutls_session_t), verified against
 * the trusted CAs of its credentials (--tls-client-ca) for TLS client
 * authentication: its subject as RFC 4514 writes it ("CN=automation,O=Example",
 * the form 'openssl x509 -noout -subject -nameopt RFC2253' prints), control
 * characters replaced by '?', into @subject; why it is refused into @why.
 */
enum ctl_tls_peer ctl_tls_peer(void *session, char *subject, size_t slen, char *why, size_t whylen);

/** GnuTLS's account of a certificate verification @status ("The certificate
 *  is NOT trusted. The certificate issuer is unknown."), into @buf. */
void ctl_tls_status_text(unsigned status, char *buf, size_t len);

#endif /* CTL_TLS_H */
