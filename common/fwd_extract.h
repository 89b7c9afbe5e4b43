/*
 * fwd_extract.h - pull the name a content rule matches on out of a payload:
 * the TLS ClientHello server name (SNI), the HTTP/1.x Host header, the DNS
 * query name. For the fast path's content rules (issue 5) and the tests.
 *
 * Contract, for all of them: read only [p, p + len); no allocation, no
 * recursion, every loop bounded by the input; write at most outlen bytes
 * (NUL-terminated, lowercased: names compare case-insensitively). Return the
 * name's length (> 0), FWD_X_NONE when the payload is not that protocol or
 * has no such field, or a negative FWD_X_* saying why it is malformed.
 *
 * The name is the one a server or resolver acts on (documented, form by
 * form, in docs/content-rules.md, "Extractors"):
 * - TLS: the ClientHello must start the payload (in one record or over
 *   several); one larger than the segment is read as far as it goes, and
 *   a server_name past the segment is TRUNCATED. The first host_name; one
 *   trailing dot removed.
 * - HTTP: the request line (any token as the method, empty lines before it
 *   skipped) and headers within the payload and within 32 KiB; Host read as
 *   a URL's authority (userinfo, path and port dropped, one trailing dot
 *   removed); an absolute-form target of any scheme, or CONNECT's
 *   authority, wins over Host; obs-fold joined; "Host :" taken when there
 *   is no "Host:"; a second Host header is MALFORMED (RFC 9112 says
 *   reject); headers cut before a Host are TRUNCATED.
 * - HTTP/0.9 ("GET target" and no version, which nginx serves, GET only):
 *   an absolute-form target's host as above; an origin-form one is NONE.
 * - DNS: the first question's name; compression pointers followed to any
 *   offset, at most 255 (dnsmasq's bound; a loop is MALFORMED).
 * - Names holding bytes outside printable ASCII (for Host: outside a host's
 *   characters) are MALFORMED; names longer than 255 bytes, or than the
 *   output holds, are TOO_LONG (a DNS name is counted with a dot after its
 *   last label, and needs outlen >= its length + 2).
 *
 * Several in one payload: a TCP segment may carry pipelined HTTP/1.x
 * requests, or DNS-over-TCP messages each after its two-byte length, and a
 * server acts on every one. fwd_extract_http_next and fwd_extract_dns_tcp_next
 * read them one per call, from a struct fwd_x_iter zeroed before the first
 * (whose outcome is fwd_extract_http_host's, or fwd_extract_dns_qname's on
 * the first message): it->off < len after a call while another request or
 * message follows. An HTTP request ends after its headers' empty line and
 * its body (Content-Length, or chunked as far as the payload goes); a body
 * or a request cut by the payload's end ends the walk (the rest is that
 * body, or the cut request's: TRUNCATED as for a first one). A later
 * request is read as the first (MALFORMED, TRUNCATED alike; bytes that
 * start no request are NONE and end the walk: a server answers 400); a
 * body's framing that cannot be read (two Content-Lengths, both it and
 * Transfer-Encoding, a coding other than chunked, a bad chunk) makes what
 * follows it MALFORMED. At most FWD_X_MAX_NAMES requests or messages are read: a
 * call past them returns FWD_X_TOO_MANY. A negative result ends the walk.
 * An HTTP/0.9 request or a CONNECT's tunnel ends it too; headers longer
 * than 32 KiB with bytes after them make the rest TOO_LONG.
 */
#ifndef FWD_EXTRACT_H
#define FWD_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_defs.h"

#define FWD_X_NAME_MAX 256 /* 255 + NUL */

enum {
	FWD_X_NONE = 0,
	FWD_X_TRUNCATED = -1, /* a length points past the end of the payload */
	FWD_X_MALFORMED = -2, /* impossible lengths, bad characters, duplicate Host, ... */
	FWD_X_TOO_LONG = -3, /* the name is longer than 255 bytes or than outlen - 1 */
	FWD_X_TOO_MANY = -4, /* more requests or messages in a payload than FWD_X_MAX_NAMES */
	FWD_X_UNSUPPORTED = -5, /* a protocol read by none: HTTP/2 cleartext (binary, HPACK) */
};

/* Requests (HTTP) or messages (DNS over TCP) read in one payload, at most:
 * a bound on the work per packet; past it the field is unreadable. */
#define FWD_X_MAX_NAMES 16

/* Where fwd_extract_http_next / fwd_extract_dns_tcp_next are: zeroed first. */
struct fwd_x_iter {
	size_t off; /* where the next request or message starts; the length: none */
	uint16_t n; /* requests or messages read */
	int16_t next_rc; /* what the next call returns without reading (FWD_X_*), or 0 */
};

int fwd_extract_sni(const uint8_t *p, size_t len, char *out, size_t outlen);
int fwd_extract_http_host(const uint8_t *p, size_t len, char *out, size_t outlen);
int fwd_extract_dns_qname(const uint8_t *p, size_t len, char *out, size_t outlen);
int fwd_extract_http_next(const uint8_t *p, size_t len, struct fwd_x_iter *it, char *out,
			  size_t outlen);
int fwd_extract_dns_tcp_next(const uint8_t *p, size_t len, struct fwd_x_iter *it, char *out,
			     size_t outlen);

/* The fields fwd_extract_given() reads; equal to fwd_table.h's FWD_CF_*. */
enum { FWD_X_SNI = 1, FWD_X_HOST = 2, FWD_X_QNAME = 3 };

/*
 * A name given by hand, [s, s + n) (explain's tls_sni, http_host,
 * dns_qname), read as that field's extractor reads it from a packet, so
 * that explain and the fast path answer alike ("API.Example." is the SNI
 * api.example; "a b" is a name no packet yields: MALFORMED):
 * - FWD_X_SNI: a server_name as a ClientHello carries it;
 * - FWD_X_HOST: a Host header's value (userinfo and port dropped);
 * - FWD_X_QNAME: a DNS name in presentation form, labels of 1..63
 *   printable bytes joined by dots, one trailing dot allowed ("." is the
 *   root).
 * Returns as the extractors do: the name's length, or a negative FWD_X_*.
 */
int fwd_extract_given(int field, const char *s, size_t n, char *out, size_t outlen);

/* Whether the extractors read field @field (FWD_X_*) from a packet of IP
 * protocol @proto: TLS SNI and HTTP Host over TCP, a DNS name over UDP or
 * TCP. The fast path's scan and explain's refusal of a name given for a
 * protocol that never carries it both ask here. */
static inline int fwd_extract_carried(int field, unsigned proto)
{
	return proto == FWD_PROTO_TCP || (field == FWD_X_QNAME && proto == FWD_PROTO_UDP);
}

/* FWD_X_*'s name as explain and the counters say it ("malformed", ...). */
const char *fwd_extract_error_name(int rc);

#endif /* FWD_EXTRACT_H */
