#include "fwd_extract.h"

#include <string.h>

static uint32_t rd16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t rd24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

/* Copy a host name: printable ASCII without spaces, lowercased. */
static int copy_name(const uint8_t *s, size_t n, char *out, size_t outlen)
{
	if (n == 0)
		return FWD_X_MALFORMED;
	if (n > 255 || n + 1 > outlen)
		return FWD_X_TOO_LONG;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];

		if (c <= 0x20 || c >= 0x7f)
			return FWD_X_MALFORMED;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[n] = '\0';
	return (int)n;
}

int fwd_extract_sni(const uint8_t *p, size_t len, char *out, size_t outlen)
{
	const uint8_t *end, *q;
	size_t rec, hs;

	if (len < 1 || p[0] != 0x16)
		return FWD_X_NONE; /* not a TLS handshake record */
	if (len < 9)
		return FWD_X_TRUNCATED;
	if (p[1] != 3)
		return FWD_X_NONE; /* not TLS (SSL 3.0 / TLS 1.x record version) */
	if (p[5] != 1)
		return FWD_X_NONE; /* a handshake, but not a ClientHello */
	rec = rd16(p + 3);
	hs = rd24(p + 6);
	if (rec > 16384)
		return FWD_X_MALFORMED; /* RFC 8446 5.1: a record carries at most 2^14 bytes */
	if (hs + 4 > rec)
		return FWD_X_MALFORMED; /* ClientHello larger than its record */
	end = p + 9 + hs;
	if (end > p + len)
		return FWD_X_TRUNCATED; /* the hello continues in another segment */
	q = p + 9;
	/* client_version (2), random (32) */
	if (q + 35 > end)
		return FWD_X_MALFORMED;
	q += 34;
	if (q + 1 + q[0] > end || q[0] > 32) /* session_id */
		return FWD_X_MALFORMED;
	q += 1 + q[0];
	if (q + 2 > end || q + 2 + rd16(q) > end || (rd16(q) & 1)) /* cipher_suites */
		return FWD_X_MALFORMED;
	q += 2 + rd16(q);
	if (q + 1 > end || q + 1 + q[0] > end) /* compression_methods */
		return FWD_X_MALFORMED;
	q += 1 + q[0];
	if (q == end)
		return FWD_X_NONE; /* no extensions at all */
	if (q + 2 > end || q + 2 + rd16(q) != end)
		return FWD_X_MALFORMED;
	q += 2;
	while (q < end) { /* each step advances by at least 4 bytes */
		uint32_t type, elen;

		if (q + 4 > end)
			return FWD_X_MALFORMED;
		type = rd16(q);
		elen = rd16(q + 2);
		q += 4;
		if (q + elen > end)
			return FWD_X_MALFORMED;
		if (type == 0) { /* server_name: list length, then (type, length, name) */
			const uint8_t *l = q, *lend;

			if (elen < 2 || 2 + rd16(l) != elen)
				return FWD_X_MALFORMED;
			lend = q + elen;
			l += 2;
			while (l < lend) {
				uint32_t nlen;

				if (l + 3 > lend)
					return FWD_X_MALFORMED;
				nlen = rd16(l + 1);
				if (l + 3 + nlen > lend)
					return FWD_X_MALFORMED;
				if (l[0] == 0) /* host_name */
					return copy_name(l + 3, nlen, out, outlen);
				l += 3 + nlen;
			}
			return FWD_X_NONE;
		}
		q += elen;
	}
	return FWD_X_NONE;
}

static int is_method(const uint8_t *p, size_t len)
{
	static const char *const methods[] = {"GET ",	  "POST ",  "PUT ",	"HEAD ", "DELETE ",
					      "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t n = strlen(methods[i]);

		if (len >= n && memcmp(p, methods[i], n) == 0)
			return 1;
	}
	return 0;
}

int fwd_extract_http_host(const uint8_t *p, size_t len, char *out, size_t outlen)
{
	const uint8_t *end = p + (len > 8192 ? 8192 : len), *line = p, *host = NULL;
	size_t host_len = 0;
	int first = 1;

	if (!is_method(p, len))
		return FWD_X_NONE;
	while (line < end) {
		const uint8_t *eol = memchr(line, '\n', (size_t)(end - line));
		const uint8_t *stop;

		if (eol == NULL)
			return host ? copy_name(host, host_len, out, outlen) : FWD_X_TRUNCATED;
		stop = eol > line && eol[-1] == '\r' ? eol - 1 : eol;
		if (stop == line) /* the empty line: end of the headers */
			break;
		if (first) {
			first = 0;
			if (stop - line < 14 || memcmp(stop - 8, "HTTP/1.", 7))
				return FWD_X_NONE; /* not HTTP/1.x */
		} else if (stop - line >= 5 && (line[0] | 0x20) == 'h' && (line[1] | 0x20) == 'o' &&
			   (line[2] | 0x20) == 's' && (line[3] | 0x20) == 't' && line[4] == ':') {
			const uint8_t *v = line + 5, *ve = stop;

			if (host)
				return FWD_X_MALFORMED; /* two Host headers */
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (v < ve && *v == '[') { /* IPv6 literal: up to ']' */
				const uint8_t *rb = memchr(v, ']', (size_t)(ve - v));

				if (rb == NULL)
					return FWD_X_MALFORMED;
				ve = rb + 1;
			} else {
				const uint8_t *colon = memchr(v, ':', (size_t)(ve - v));

				if (colon)
					ve = colon;
			}
			host = v;
			host_len = (size_t)(ve - v);
		}
		line = eol + 1;
	}
	return host ? copy_name(host, host_len, out, outlen) : FWD_X_NONE;
}

int fwd_extract_dns_qname(const uint8_t *p, size_t len, char *out, size_t outlen)
{
	size_t o = 0, i = 12;

	if (outlen < 2)
		return FWD_X_TOO_LONG;
	if (len < 12)
		return FWD_X_TRUNCATED;
	if (rd16(p + 4) == 0)
		return FWD_X_NONE; /* no question */
	if ((p[2] & 0x78) != 0)
		return FWD_X_NONE; /* opcode other than QUERY */
	for (int labels = 0; labels < 128; labels++) { /* a 255-byte name has at most 127 labels */
		uint8_t l;

		if (i >= len)
			return FWD_X_TRUNCATED;
		l = p[i++];
		if (l == 0) {
			if (o == 0) {
				if (outlen < 2)
					return FWD_X_TOO_LONG;
				out[0] = '.'; /* the root */
				out[1] = '\0';
				return 1;
			}
			out[o - 1] = '\0'; /* drop the trailing dot */
			return (int)(o - 1);
		}
		if (l & 0xc0)
			return FWD_X_MALFORMED; /* compression pointer or reserved label type */
		if (i + l > len)
			return FWD_X_TRUNCATED;
		if (o + l + 1 > 255 || o + l + 1 > outlen - 1)
			return FWD_X_TOO_LONG;
		for (uint8_t k = 0; k < l; k++) {
			uint8_t c = p[i + k];

			if (c <= 0x20 || c >= 0x7f || c == '.')
				return FWD_X_MALFORMED;
			out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		out[o++] = '.';
		i += l;
	}
	return FWD_X_TOO_LONG;
}
