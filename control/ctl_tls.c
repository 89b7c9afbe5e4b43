#include "ctl_tls.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fwd_err.h" /* fwd_control_len */

static gnutls_datum_t datum(const char *s)
{
	return (gnutls_datum_t){.data = (unsigned char *)s, .size = s ? (unsigned)strlen(s) : 0};
}

/* The certificates in PEM text @pem: their number (>0), or a gnutls error. */
static int import_certs(const char *pem, gnutls_x509_crt_t **list, unsigned *n)
{
	gnutls_datum_t d = datum(pem);

	*list = NULL;
	*n = 0;
	return gnutls_x509_crt_list_import2(list, n, &d, GNUTLS_X509_FMT_PEM, 0);
}

static void free_certs(gnutls_x509_crt_t *list, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(list[i]);
	gnutls_free(list);
}

/* A warning when @crt is not valid now (written into @warn, which is left
 * alone otherwise). */
static void validity(gnutls_x509_crt_t crt, const char *what, char *warn, size_t len)
{
	time_t now = time(NULL), from = gnutls_x509_crt_get_activation_time(crt),
	       until = gnutls_x509_crt_get_expiration_time(crt);
	char t[32];
	struct tm tm;

	if (until != (time_t)-1 && until < now) {
		gmtime_r(&until, &tm);
		strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%SZ", &tm);
		snprintf(warn, len, "%s expired at %s: clients will refuse it", what, t);
	} else if (from != (time_t)-1 && from > now) {
		gmtime_r(&from, &tm);
		strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%SZ", &tm);
		snprintf(warn, len, "%s is not valid before %s: clients will refuse it", what, t);
	}
}

enum ctl_tls_bad ctl_tls_check(const char *cert, const char *key, const char *ca, char *why,
			       size_t whylen, char *warn, size_t warnlen)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_x509_privkey_t pk = NULL;
	gnutls_x509_crt_t *list = NULL;
	gnutls_datum_t c = datum(cert), k = datum(key);
	enum ctl_tls_bad bad = CTL_TLS_OK;
	unsigned n = 0;
	int rc;

	warn[0] = '\0';
	why[0] = '\0';
	if (cert == NULL)
		goto ca;
	if ((rc = import_certs(cert, &list, &n)) < 0 || n == 0) {
		snprintf(why, whylen, "no PEM certificate in it (GnuTLS: %s)",
			 gnutls_strerror(rc < 0 ? rc : GNUTLS_E_NO_CERTIFICATE_FOUND));
		return CTL_TLS_BAD_CERT;
	}
	validity(list[0], "the server certificate", warn, warnlen);
	free_certs(list, n);
	if ((rc = gnutls_x509_privkey_init(&pk)) < 0 ||
	    (rc = gnutls_x509_privkey_import2(pk, &k, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		snprintf(why, whylen, "no unencrypted PEM private key in it (GnuTLS: %s)",
			 gnutls_strerror(rc));
		bad = CTL_TLS_BAD_KEY;
		goto out;
	}
	/* What libmicrohttpd will do with them: the pair must load as one. */
	if ((rc = gnutls_certificate_allocate_credentials(&cred)) < 0 ||
	    (rc = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM)) < 0) {
		snprintf(why, whylen, "%s (GnuTLS: %s)",
			 rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH
				 ? "the key does not match the certificate"
				 : "the certificate and key do not load together",
			 gnutls_strerror(rc));
		bad = CTL_TLS_MISMATCH;
		goto out;
	}
ca:
	if (ca) {
		if ((rc = import_certs(ca, &list, &n)) < 0 || n == 0) {
			snprintf(why, whylen, "no PEM certificate in it (GnuTLS: %s)",
				 gnutls_strerror(rc < 0 ? rc : GNUTLS_E_NO_CERTIFICATE_FOUND));
			bad = CTL_TLS_BAD_CA;
			goto out;
		}
		if (warn[0] == '\0')
			validity(list[0], "the client CA certificate", warn, warnlen);
		free_certs(list, n);
	}
out:
	if (cred)
		gnutls_certificate_free_credentials(cred);
	if (pk)
		gnutls_x509_privkey_deinit(pk);
	return bad;
}

void ctl_tls_refused(enum ctl_tls_bad bad, const struct ctl_tls_files *f, const char *why,
		     char *buf, size_t len)
{
	if (bad == CTL_TLS_BAD_CA)
		snprintf(buf, len, "%s %s: %s", f->ca_opt, f->ca, why);
	else if (bad == CTL_TLS_BAD_CERT)
		snprintf(buf, len, "%s %s: %s", f->cert_opt, f->cert, why);
	else if (bad == CTL_TLS_BAD_KEY)
		snprintf(buf, len, "%s %s: %s", f->key_opt, f->key, why);
	else
		snprintf(buf, len, "%s %s and %s %s: %s", f->key_opt, f->key, f->cert_opt, f->cert,
			 why);
}

void ctl_tls_status_text(unsigned status, char *buf, size_t len)
{
	gnutls_datum_t out = {0};
	size_t n;

	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) < 0) {
		snprintf(buf, len, "verification status 0x%x", status);
		return;
	}
	snprintf(buf, len, "%s", (const char *)out.data);
	gnutls_free(out.data);
	n = strlen(buf);
	while (n && buf[n - 1] == ' ')
		buf[--n] = '\0';
}

enum ctl_tls_peer ctl_tls_peer(void *session, char *subject, size_t slen, char *why, size_t whylen)
{
	gnutls_session_t s = session;
	gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
					 .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
	const gnutls_datum_t *peers;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t dn = {0};
	unsigned n = 0, status = 0;
	int rc;

	subject[0] = '\0';
	snprintf(why, whylen, "no client certificate");
	if (s == NULL || gnutls_certificate_type_get(s) != GNUTLS_CRT_X509 ||
	    (peers = gnutls_certificate_get_peers(s, &n)) == NULL || n == 0)
		return CTL_TLS_PEER_NONE;
	/* The chain to a --tls-client-ca CA, the validity period, and a key
	 * purpose (if the certificate names any) that allows client auth. */
	rc = gnutls_certificate_verify_peers(s, &purpose, 1, &status);
	if (rc < 0) {
		snprintf(why, whylen, "the client certificate cannot be verified: %s",
			 gnutls_strerror(rc));
		return CTL_TLS_PEER_UNTRUSTED;
	}
	if (status) {
		char text[200];

		ctl_tls_status_text(status, text, sizeof(text));
		snprintf(why, whylen, "the client certificate does not verify: %s", text);
		return CTL_TLS_PEER_UNTRUSTED;
	}
	if (gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_x509_crt_get_dn3(crt, &dn, 0) < 0) {
		snprintf(why, whylen, "the client certificate's subject cannot be read");
		if (crt)
			gnutls_x509_crt_deinit(crt);
		return CTL_TLS_PEER_UNTRUSTED;
	}
	/* Whole or not at all: a cut subject could equal a writer's. */
	if (dn.size >= slen || memchr(dn.data, '\0', dn.size)) {
		snprintf(why, whylen, "the client certificate's subject is too long or not text");
		gnutls_free(dn.data);
		gnutls_x509_crt_deinit(crt);
		return CTL_TLS_PEER_UNTRUSTED;
	}
	memcpy(subject, dn.data, dn.size);
	subject[dn.size] = '\0';
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
	/* It goes into the log and the history: one line, whatever it holds
	 * (a C1 control, both its bytes, too). */
	for (size_t i = 0, len = strlen(subject), k; i < len; i += k ? k : 1)
		if ((k = fwd_control_len(subject + i, len - i)) != 0)
			memset(subject + i, '?', k);
	why[0] = '\0';
	return CTL_TLS_PEER_OK;
}
