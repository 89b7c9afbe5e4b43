#include "fwd_extract.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static uint32_t rd16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t rd24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

#define X_ONES 0x0101010101010101ull
#define X_HIGH 0x8080808080808080ull

/* 8 bytes of a name at once (SWAR): @x lowercased into *@out; @return
 * nonzero if a byte is outside '!'..'~' (or is a dot, with @nodot). Every
 * byte's test is done within its own byte: for y = x & 0x7f.., y + (0x80 - c)
 * has its top bit set exactly when y >= c, without a carry into the next. */
static inline uint64_t lower8(uint64_t x, uint64_t *out, int nodot)
{
	const uint64_t y = x & ~X_HIGH;
	const uint64_t ge21 = (y + X_ONES * (0x80 - 0x21)) & X_HIGH;
	const uint64_t ge7f = (y + X_ONES * (0x80 - 0x7f)) & X_HIGH;
	const uint64_t geA = (y + X_ONES * (0x80 - 'A')) & X_HIGH;
	const uint64_t gtZ = (y + X_ONES * (0x80 - 'Z' - 1)) & X_HIGH;
	uint64_t bad = (x & X_HIGH) | (ge21 ^ X_HIGH) | ge7f;

	if (nodot) { /* a dot: y ^ '.' is 0, the only byte that stays under 0x80 plus 0x7f.. */
		const uint64_t t = y ^ (X_ONES * '.');

		bad |= ~((t + X_ONES * 0x7f) | t) & X_HIGH;
	}
	*out = x | (geA & ~gtZ) >> 2; /* 'A'..'Z' + 0x20 */
	return bad;
}

/*
 * Copy @n name bytes, lowercased, and check them: printable ASCII without
 * spaces (and without dots, for a DNS label: @nodot). 16 or 8 bytes at a
 * time (the last block overlapping the ones before, rather than a byte
 * loop for the rest): a byte loop with its two tests per byte was the
 * larger part of extracting a name. All @n bytes are copied even when one
 * is bad (the DNS extractor checks its copy again). @return 0, or -1 for a
 * bad byte.
 */
static inline int lower_copy(const uint8_t *s, size_t n, char *out, int nodot)
{
	uint64_t bad = 0, w, o;

#ifdef __SSE2__
	if (n >= 16) { /* the same tests 16 bytes at a time, signed: >= 0x80 is below '!' */
		const __m128i sp = _mm_set1_epi8(0x21), del = _mm_set1_epi8(0x7f),
			      at = _mm_set1_epi8('A' - 1), z = _mm_set1_epi8('Z' + 1),
			      dot = _mm_set1_epi8('.'), x20 = _mm_set1_epi8(0x20);
		__m128i badv = _mm_setzero_si128();

		for (size_t k = 0;; k += 16) {
			const size_t at16 = k + 16 <= n ? k : n - 16;
			const __m128i v =
				_mm_loadu_si128((const __m128i *)(const void *)(s + at16));
			const __m128i up =
				_mm_and_si128(_mm_cmpgt_epi8(v, at), _mm_cmpgt_epi8(z, v));

			badv = _mm_or_si128(
				badv, _mm_or_si128(_mm_cmpgt_epi8(sp, v), _mm_cmpeq_epi8(v, del)));
			if (nodot)
				badv = _mm_or_si128(badv, _mm_cmpeq_epi8(v, dot));
			_mm_storeu_si128((__m128i *)(void *)(out + at16),
					 _mm_add_epi8(v, _mm_and_si128(up, x20)));
			if (at16 + 16 == n)
				break;
		}
		return _mm_movemask_epi8(badv) ? -1 : 0;
	}
#endif
	if (n >= 8) {
		for (size_t k = 0; k + 8 <= n; k += 8) {
			memcpy(&w, s + k, 8);
			bad |= lower8(w, &o, nodot);
			memcpy(out + k, &o, 8);
		}
		if (n & 7) {
			memcpy(&w, s + n - 8, 8);
			bad |= lower8(w, &o, nodot);
			memcpy(out + n - 8, &o, 8);
		}
		return bad ? -1 : 0;
	}
	for (size_t i = 0; i < n; i++) { /* every byte copied, as above, bad or not */
		uint8_t c = s[i];

		bad |= c <= 0x20 || c >= 0x7f || (nodot && c == '.');
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	return bad ? -1 : 0;
}

/* Copy a host name: printable ASCII without spaces, lowercased. */
static int copy_name(const uint8_t *s, size_t n, char *out, size_t outlen)
{
	if (n == 0)
		return FWD_X_MALFORMED;
	if (n > 255 || n + 1 > outlen)
		return FWD_X_TOO_LONG;
	if (lower_copy(s, n, out, 0))
		return FWD_X_MALFORMED;
	out[n] = '\0';
	return (int)n;
}

/* A host name as a server acts on it: one trailing dot removed. nginx and
 * Apache strip it when they choose the virtual host (and nginx does for the
 * SNI too), so "evil.example." is served as evil.example; a rule anchored
 * at the end ('example$') saw the dot and missed (a hostile probe). A name
 * that is a dot alone, or ends in two ("a.."), is MALFORMED: nginx answers
 * 400 to an empty label, and no name of a server ends in a dot. */
static int copy_host(const uint8_t *s, size_t n, char *out, size_t outlen)
{
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n > 0 && s[n - 1] == '.')
		return FWD_X_MALFORMED;
	return copy_name(s, n, out, outlen);
}

/*
 * The ClientHello's body [q, end): its server_name. Only [q, lim) is here
 * (lim < end: the hello continues in the next segment). A ClientHello with
 * a post-quantum key share (X25519MLKEM768, the browsers' default since
 * 2024) is ~1.8 KB, more than a 1500-byte MTU's segment: read only whole,
 * no browser's SNI was ever seen. So the extensions are read as far as
 * they are here: a server_name wholly in this segment is the name the
 * server reads (TCP delivers these bytes as they are), and only one past
 * @lim is TRUNCATED. Every length is still checked against @end, the
 * hello's own: one past it is MALFORMED, as in a whole hello.
 */
#define X_NEED(x)                                                                                  \
	do {                                                                                       \
		if ((x) > end)                                                                     \
			return FWD_X_MALFORMED;                                                    \
		if ((x) > lim)                                                                     \
			return FWD_X_TRUNCATED;                                                    \
	} while (0)

static int sni_hello(const uint8_t *q, const uint8_t *end, const uint8_t *lim, char *out,
		     size_t outlen)
{
	/* client_version (2), random (32), the session_id's length */
	X_NEED(q + 35);
	q += 34;
	if (q[0] > 32)
		return FWD_X_MALFORMED;
	X_NEED(q + 1 + q[0]); /* session_id */
	q += 1 + q[0];
	X_NEED(q + 2); /* cipher_suites */
	if (rd16(q) & 1)
		return FWD_X_MALFORMED;
	X_NEED(q + 2 + rd16(q));
	q += 2 + rd16(q);
	X_NEED(q + 1); /* compression_methods */
	X_NEED(q + 1 + q[0]);
	q += 1 + q[0];
	if (q == end)
		return FWD_X_NONE; /* no extensions at all */
	X_NEED(q + 2);
	if (q + 2 + rd16(q) != end)
		return FWD_X_MALFORMED;
	q += 2;
	while (q < end) { /* each step advances by at least 4 bytes */
		uint32_t type, elen;

		X_NEED(q + 4);
		type = rd16(q);
		elen = rd16(q + 2);
		q += 4;
		X_NEED(q + elen);
		if (type == 0) { /* server_name: list length, then (type, length, name) */
			const uint8_t *l = q, *lend;

			if (elen < 2 || 2 + rd16(l) != elen)
				return FWD_X_MALFORMED;
			lend = q + elen;
			l += 2;
			/* The first host_name: OpenSSL reads the first entry
			 * alone; Go, BoringSSL and rustls refuse a list with two
			 * host_names, so no server acts on a later one. */
			while (l < lend) {
				uint32_t nlen;

				if (l + 3 > lend)
					return FWD_X_MALFORMED;
				nlen = rd16(l + 1);
				if (l + 3 + nlen > lend)
					return FWD_X_MALFORMED;
				if (l[0] == 0) /* host_name */
					return copy_host(l + 3, nlen, out, outlen);
				l += 3 + nlen;
			}
			return FWD_X_NONE;
		}
		q += elen;
	}
	return FWD_X_NONE;
}

#undef X_NEED

#define X_HELLO_MAX 16384 /* what one record may carry: the bound a hello always had */

/*
 * A ClientHello over several handshake records of this payload: RFC 8446
 * 5.1 lets a handshake message span records and servers reassemble it, so
 * a hello split so (one byte per record, say) names its server all the
 * same. Its fragments are gathered into a buffer on the stack, out of line
 * (the usual hello, in one record, never comes here). Each record must be
 * a non-empty TLS handshake record. The hello's first X_HELLO_MAX bytes,
 * header included, are read (a name past them is TRUNCATED).
 */
static __attribute__((noinline)) int sni_records(const uint8_t *p, size_t len, char *out,
						 size_t outlen)
{
	uint8_t buf[X_HELLO_MAX];
	const uint8_t *q = p, *end = p + len;
	size_t got = 0, need = 4; /* the handshake header first, then its length */

	/* At most X_HELLO_MAX bytes of the hello are gathered: a longer one
	 * is read as a cut one is, its name found when it lies within them. */
	while (got < need && got < X_HELLO_MAX) { /* each record advances q by >= 6 bytes */
		const uint8_t *f, *fend;
		size_t rl;
		int cut = 0;

		if (q + 5 > end)
			break; /* the hello continues in another segment */
		if (q[0] != 0x16 || q[1] != 3)
			return FWD_X_MALFORMED; /* the hello is cut by something else */
		rl = rd16(q + 3);
		if (rl == 0 || rl > 16384)
			return FWD_X_MALFORMED; /* RFC 8446 5.1: no empty handshake fragments */
		f = q + 5;
		fend = f + rl;
		if (fend > end) { /* this record continues in another segment */
			fend = end;
			cut = 1;
		}
		while (f < fend && got < need && got < X_HELLO_MAX) {
			const size_t want = (need < X_HELLO_MAX ? need : X_HELLO_MAX) - got;
			size_t take = (size_t)(fend - f) < want ? (size_t)(fend - f) : want;

			memcpy(buf + got, f, take);
			got += take;
			f += take;
			if (need == 4 && got == 4) {
				if (buf[0] != 1)
					return FWD_X_NONE; /* a handshake, but not a ClientHello */
				/* No bound but the length's own: OpenSSL takes a
				 * hello of up to 128 KiB, Go of 64 KiB, so one padded
				 * past 16 KiB (RFC 7685) is served; MALFORMED, it
				 * passed every rule on its name. */
				need = 4 + rd24(buf + 1);
			}
		}
		if (cut)
			break;
		q = fend;
	}
	if (need == 4) /* not even the handshake header */
		return FWD_X_TRUNCATED;
	/* What is here of the hello, as sni_hello reads a cut one. Its end
	 * may lie past buf (a hello longer than X_HELLO_MAX): only compared,
	 * never read, and made from an integer, as buf + need would index
	 * past the array. */
	return sni_hello(buf + 4, (const uint8_t *)((uintptr_t)buf + need), buf + got, out, outlen);
}

int fwd_extract_sni(const uint8_t *p, size_t len, char *out, size_t outlen)
{
	const uint8_t *end;
	size_t rec, hs;

	if (len < 1 || p[0] != 0x16)
		return FWD_X_NONE; /* not a TLS handshake record */
	if (len < 9)
		return FWD_X_TRUNCATED;
	if (p[1] != 3)
		return FWD_X_NONE; /* not TLS (SSL 3.0 / TLS 1.x record version) */
	rec = rd16(p + 3);
	/* A record too short for the handshake header (an empty one, even):
	 * p[5] is not this record's, so the records decide (a review: a
	 * leading empty record hid the hello behind it as "not one"). */
	if (rec < 4)
		return sni_records(p, len, out, outlen);
	if (p[5] != 1)
		return FWD_X_NONE; /* a handshake, but not a ClientHello */
	hs = rd24(p + 6);
	if (rec > 16384)
		return FWD_X_MALFORMED; /* RFC 8446 5.1: a record carries at most 2^14 bytes */
	if (hs + 4 > rec)
		return sni_records(p, len, out, outlen); /* the hello spans records */
	end = p + 9 + hs;
	/* the hello may continue in another segment: read what is here */
	return sni_hello(p + 9, end, end < p + len ? end : p + len, out, outlen);
}

#define X_TCHAR 1 /* RFC 9110 5.6.2 token: a method */
#define X_HOSTC 2 /* RFC 3986 reg-name: unreserved, pct-encoded, sub-delims */
#define X_SCHEME 4 /* RFC 3986 3.1: a scheme after its first letter */
#define X_AUTH 8 /* ends an authority ('/', '?', '#', '\\') or its userinfo ('@') */

static const uint8_t xchar[256] = {
	['a' ... 'z'] = X_TCHAR | X_HOSTC | X_SCHEME,
	['A' ... 'Z'] = X_TCHAR | X_HOSTC | X_SCHEME,
	['0' ... '9'] = X_TCHAR | X_HOSTC | X_SCHEME,
	['-'] = X_TCHAR | X_HOSTC | X_SCHEME,
	['.'] = X_TCHAR | X_HOSTC | X_SCHEME,
	['+'] = X_TCHAR | X_HOSTC | X_SCHEME,
	['_'] = X_TCHAR | X_HOSTC,
	['~'] = X_TCHAR | X_HOSTC,
	['!'] = X_TCHAR | X_HOSTC,
	['$'] = X_TCHAR | X_HOSTC,
	['%'] = X_TCHAR | X_HOSTC,
	['&'] = X_TCHAR | X_HOSTC,
	['\''] = X_TCHAR | X_HOSTC,
	['*'] = X_TCHAR | X_HOSTC,
	['('] = X_HOSTC,
	[')'] = X_HOSTC,
	[','] = X_HOSTC,
	[';'] = X_HOSTC,
	['='] = X_HOSTC,
	['#'] = X_TCHAR | X_AUTH,
	['/'] = X_AUTH,
	['?'] = X_AUTH,
	['\\'] = X_AUTH,
	['@'] = X_AUTH,
	['^'] = X_TCHAR,
	['`'] = X_TCHAR,
	['|'] = X_TCHAR,
};

/*
 * The method's length when [p, end) starts with a method and its space,
 * else 0. Any token (RFC 9110 9.1), not a list of the usual ones: Go's
 * server and nginx (to its upstream) serve a method they do not know, and
 * a handler that does not check it answers "PURGE" or "XGET" like GET (a
 * hostile probe: "XGET / HTTP/1.1" with "Host: evil.example" was not read
 * as HTTP at all). Most payloads still fail on their first byte (TLS
 * records start with 0x14..0x17, no token byte).
 */
static size_t method_len(const uint8_t *p, const uint8_t *end)
{
	size_t n = 0;

	if (end - p >= 4 && memcmp(p, "GET ", 4) == 0)
		return 3; /* most requests */
	while (p + n < end && (xchar[p[n]] & X_TCHAR))
		n++;
	return n > 0 && p + n < end && p[n] == ' ' ? n : 0;
}

/* Whether the method [p, p + n) is one of RFC 9110's (and PATCH): a cut
 * request line is unreadable (TRUNCATED) only for these; a segment of text
 * that merely starts with a word and a space is no request. */
static int known_method(const uint8_t *p, size_t n)
{
	static const char *const methods[] = {"GET",	 "POST",  "PUT",     "HEAD", "DELETE",
					      "OPTIONS", "PATCH", "CONNECT", "TRACE"};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strlen(methods[i]) == n && memcmp(p, methods[i], n) == 0)
			return 1;
	return 0;
}

/* A Host (or request-target) host copied as copy_host does, and refused
 * (MALFORMED) when authority_host found a byte in it that no host holds
 * (@odd). */
static int copy_http_host(const uint8_t *s, size_t n, int odd, char *out, size_t outlen)
{
	int rc = copy_host(s, n, out, outlen);

	return rc > 0 && odd ? FWD_X_MALFORMED : rc;
}

/* memchr(p, @c, end - p) inline: header lines and host names are short,
 * and a call per line cost more than the search. 16 bytes at a time; the
 * last bytes in one load that ends at @end and starts inside [@start, p),
 * its bytes before p masked off, when the buffer has 16 bytes. */
static inline const uint8_t *find_byte(const uint8_t *start, const uint8_t *p, const uint8_t *end,
				       uint8_t c)
{
#ifdef __SSE2__
	const __m128i cv = _mm_set1_epi8((char)c);

	for (; end - p >= 16; p += 16) {
		unsigned m = (unsigned)_mm_movemask_epi8(
			_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)p), cv));

		if (m)
			return p + __builtin_ctz(m);
	}
	if (p < end && end - start >= 16) {
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
			_mm_loadu_si128((const __m128i *)(const void *)(end - 16)), cv));

		m >>= 16 - (end - p); /* the bytes from p on */
		return m ? p + __builtin_ctz(m) : NULL;
	}
#else
	(void)start;
#endif
	for (; p < end; p++)
		if (*p == c)
			return p;
	return NULL;
}

/*
 * Whether the line at @line (the buffer ending at @end) is named Host: the
 * offset of its value (past the ':'), else 0. *@loose: blanks between the
 * name and the ':' ("Host :"). RFC 9112 5.1 says a server must refuse
 * that, and nginx ignores the line; but Apache (HttpProtocolOptions Unsafe)
 * and older servers drop the blanks and take it as the Host, so, when the
 * request has no proper Host, it is the name they serve (a hostile probe's
 * "Host : evil.example" read as no Host at all).
 */
static inline size_t host_named(const uint8_t *line, const uint8_t *end, int *loose)
{
	const uint8_t *c = line + 4;

	*loose = 0;
	if (end - line < 5 || (line[1] | 0x20) != 'o' || (line[2] | 0x20) != 's' ||
	    (line[3] | 0x20) != 't')
		return 0;
	if (*c == ':')
		return 5;
	while (c < end && (*c == ' ' || *c == '\t'))
		c++;
	if (c == line + 4 || c == end || *c != ':')
		return 0;
	*loose = 1;
	return (size_t)(c + 1 - line);
}

/*
 * The host of an authority [@a, @e) (a Host value, blanks trimmed, or a
 * request-target's) as a URL parser reads it (RFC 3986 3.2, the WHATWG URL
 * standard): it ends at the first '/', '?', '#' or '\\'; userinfo, up to its
 * last '@', goes; then an IPv6 literal runs to its ']', a name to the
 * port's ':'. "Host: good@evil.example" was matched as written: no host
 * holds an '@' (RFC 9110 7.2: Host = uri-host [":" port]), so no server
 * serves it as that name: nginx serves it as a name no server block has,
 * Go and Apache answer 400, and an application that reads the Host as a
 * URL's authority (Node's URL, Python's urlsplit) reads evil.example. A
 * rule on evil.example must see that one; one on good.example has nothing
 * to see. One pass, most bytes a host's (RFC 3986 reg-name: unreserved,
 * pct-encoded, sub-delims). @return 1 with *@h, *@hl (maybe empty); 2 the
 * same, but the host holds a byte no host holds ('"', '<', a space, ...:
 * MALFORMED once copied); or FWD_X_MALFORMED for an unclosed IPv6 literal,
 * or, in a Host value (@host_header), a ':' before userinfo's '@'.
 */
static int authority_host(const uint8_t *a, const uint8_t *e, int host_header, const uint8_t **h,
			  size_t *hl)
{
	const uint8_t *c = a, *colon = NULL;
	int odd = 0;

#ifdef __SSE2__
	/* 16 or 8 bytes at a time while they are a name and its port (letters,
	 * digits, '.', '-', ':'), as nearly every Host is: the byte loop below
	 * cost a third of extracting a Host. Bytes from 0x80 are negative here,
	 * so never a letter or a digit. */
	while (e - c >= 8) {
		const unsigned full = e - c >= 16 ? 0xffff : 0xff;
		const __m128i v = full == 0xffff
					  ? _mm_loadu_si128((const __m128i *)(const void *)c)
					  : _mm_loadl_epi64((const __m128i *)(const void *)c);
		const __m128i l = _mm_or_si128(v, _mm_set1_epi8(0x20)),
			      co = _mm_cmpeq_epi8(v, _mm_set1_epi8(':'));
		__m128i ok = _mm_and_si128(_mm_cmpgt_epi8(l, _mm_set1_epi8('a' - 1)),
					   _mm_cmpgt_epi8(_mm_set1_epi8('z' + 1), l));
		unsigned bad, mc;

		ok = _mm_or_si128(ok, _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
						    _mm_cmpgt_epi8(_mm_set1_epi8('9' + 1), v)));
		ok = _mm_or_si128(ok, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('.')),
						   _mm_cmpeq_epi8(v, _mm_set1_epi8('-'))));
		ok = _mm_or_si128(ok, co);
		bad = ~(unsigned)_mm_movemask_epi8(ok) & full;
		mc = (unsigned)_mm_movemask_epi8(co) & (bad ? (bad & -bad) - 1 : full);
		if (mc && colon == NULL)
			colon = c + __builtin_ctz(mc);
		if (bad) { /* the byte loop decides from there */
			c += __builtin_ctz(bad);
			break;
		}
		c += full == 0xffff ? 16 : 8;
	}
#endif
	for (; c < e; c++) {
		if (xchar[*c] & X_HOSTC)
			continue;
		if (*c == '@') { /* what came before is userinfo */
			/* A Host value with a ':' before it is two names: nginx
			 * ends the host at that ':' ("evil.example:1@good.example"
			 * is served as evil.example), a URL parser takes what
			 * follows the '@'. Neither reading is safe to give a rule,
			 * so it is unreadable, which a rule with `unreadable: true`
			 * can act on (a review). A request-target is a URL, read
			 * as one. */
			if (host_header && colon)
				return FWD_X_MALFORMED;
			a = c + 1;
			colon = NULL;
			odd = 0;
		} else if (xchar[*c] & X_AUTH) { /* '/', '?', '#', '\\': the authority ends */
			e = c;
			break;
		} else if (*c == ':') {
			if (colon == NULL)
				colon = c;
		} else if (colon == NULL) { /* the port's bytes are not the host's */
			odd = 1;
		}
	}
	if (a < e && *a == '[') { /* IPv6 literal: up to ']' */
		const uint8_t *rb = a;

		while (rb < e && *rb != ']')
			rb++;
		if (rb == e)
			return FWD_X_MALFORMED;
		odd = 0;
		for (c = a + 1; c < rb; c++)
			odd |= !(xchar[*c] & X_HOSTC) && *c != ':';
		e = rb + 1;
	} else if (colon) {
		e = colon;
	}
	*h = a;
	*hl = (size_t)(e - a);
	return odd ? 2 : 1;
}

static void trim_blanks(const uint8_t **v, const uint8_t **ve)
{
	while (*v < *ve && (**v == ' ' || **v == '\t'))
		(*v)++;
	while (*ve > *v && ((*ve)[-1] == ' ' || (*ve)[-1] == '\t'))
		(*ve)--;
}

/*
 * obs-fold (RFC 9112 5.2): the lines after the Host line ending at *@eol
 * that start with a space or a tab continue its value; a server either
 * refuses them (400) or joins them with a space (Apache does), so
 * "Host:\r\n evil.example" is served as evil.example, and was read as an
 * empty Host. [*@v, *@ve): the Host line's value, made the one piece of
 * the joined value that is not blank; two such pieces join into a value
 * with a space inside: MALFORMED. *@eol: the last continuation's '\n'.
 * @return 0, FWD_X_MALFORMED, or FWD_X_TRUNCATED when a continuation runs
 * past the buffer.
 */
static int host_folded(const uint8_t *p, const uint8_t *end, const uint8_t **eol, const uint8_t **v,
		       const uint8_t **ve)
{
	int pieces = *v < *ve;

	while (*eol + 1 < end && ((*eol)[1] == ' ' || (*eol)[1] == '\t')) {
		const uint8_t *c = *eol + 1, *e = find_byte(p, c, end, '\n'), *ce;

		if (e == NULL)
			return FWD_X_TRUNCATED;
		ce = e[-1] == '\r' ? e - 1 : e;
		trim_blanks(&c, &ce);
		if (c < ce) {
			if (pieces++)
				return FWD_X_MALFORMED;
			*v = c;
			*ve = ce;
		}
		*eol = e;
	}
	return 0;
}

/* The first '\n' in [@q, end - 1) followed by '\n', '\r', 'h' or 'H': where
 * a line that matters to the Host search starts. 16 positions at a time
 * (two overlapping loads); the last ones in one window ending at @end,
 * its positions before @q masked off, when the buffer from @start holds
 * 17 bytes. */
static inline const uint8_t *next_line_mark(const uint8_t *start, const uint8_t *q,
					    const uint8_t *end)
{
#ifdef __SSE2__
	const __m128i nl = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r'), h = _mm_set1_epi8('h'),
		      x20 = _mm_set1_epi8(0x20);

	for (;; q += 16) {
		const uint8_t *w = end - q >= 17 ? q : end - 17;
		__m128i v0, v1, next;
		unsigned m;

		if (end - q < 2 || w < start)
			break;
		v0 = _mm_loadu_si128((const __m128i *)(const void *)w);
		v1 = _mm_loadu_si128((const __m128i *)(const void *)(w + 1));
		next = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v1, nl), _mm_cmpeq_epi8(v1, cr)),
				    _mm_cmpeq_epi8(_mm_or_si128(v1, x20), h));
		m = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(v0, nl), next));
		m >>= q - w; /* the window's positions before q: already seen */
		if (m)
			return q + __builtin_ctz(m);
		if (w != q)
			return NULL; /* that was the last window */
	}
#else
	(void)start;
#endif
	for (; q + 1 < end; q++)
		if (*q == '\n' && (q[1] == '\n' || q[1] == '\r' || (q[1] | 0x20) == 'h'))
			return q;
	return NULL;
}

/*
 * The host of the request-target [@t, @te) when it names one, which a
 * server then takes over Host: an absolute-form target ("scheme://host/..."
 * with any scheme, RFC 9112 3.2.2: nginx and Go take its host whatever the
 * scheme; a hostile probe's "GET ws://evil.example/" with "Host:
 * good.example" was matched as good.example), or CONNECT's authority-form
 * ("host:port", Go takes it as the Host). Its host is read as Host's is
 * (authority_host). @return authority_host's 1 or 2 with *@h, *@hl; 0 when the target names no
 * host; or FWD_X_MALFORMED (no host, an unclosed IPv6 literal).
 */
static int target_host(const uint8_t *m, size_t mlen, const uint8_t *t, const uint8_t *te,
		       const uint8_t **h, size_t *hl)
{
	const uint8_t *a = t;
	int rc;

	if (mlen == 7 && memcmp(m, "CONNECT", 7) == 0 && t < te && *t != '/') {
		a = t; /* authority-form */
	} else {
		if (t >= te || (*t | 0x20) < 'a' || (*t | 0x20) > 'z')
			return 0; /* a scheme starts with a letter */
		for (a = t + 1; a < te && (xchar[*a] & X_SCHEME); a++)
			;
		if (te - a < 3 || memcmp(a, "://", 3) != 0)
			return 0; /* origin-form, asterisk-form, or no authority */
		a += 3;
	}
	if ((rc = authority_host(a, te, 0, h, hl)) < 0)
		return rc;
	return *hl ? rc : FWD_X_MALFORMED;
}

/* A host found: where, how long, and whether it holds a byte no host does. */
struct xhost {
	const uint8_t *p;
	size_t len;
	int odd;
};

/* The request's Host: the proper one, else one written "Host :" (see
 * host_named), else none. */
static int host_found(const struct xhost *host, const struct xhost *loose, char *out, size_t outlen)
{
	if (host->p)
		return copy_http_host(host->p, host->len, host->odd, out, outlen);
	if (loose->p)
		return copy_http_host(loose->p, loose->len, loose->odd, out, outlen);
	return FWD_X_NONE;
}

/* The request's header block found by http_request: where its header lines
 * start and where the bytes after its empty line start (NULL when the
 * headers do not end in the buffer), and its method. */
struct xreq {
	const uint8_t *hs, *he, *m;
	size_t mlen;
	int notreq; /* NONE because the bytes start no request (not: no Host) */
};

/* The end of the headers whose lines start at @line: the byte after the
 * empty line, or NULL when it is not in [line, end). A plain line walk, for
 * a request whose target named the host (its Host lines are not read). */
static const uint8_t *headers_end(const uint8_t *start, const uint8_t *line, const uint8_t *end)
{
	while (line < end) { /* each turn moves past a '\n' */
		const uint8_t *eol;

		if (*line == '\n')
			return line + 1;
		if (*line == '\r' && line + 1 < end && line[1] == '\n')
			return line + 2;
		if ((eol = find_byte(start, line, end, '\n')) == NULL)
			return NULL;
		line = eol + 1;
	}
	return NULL;
}

/*
 * An HTTP/0.9 request line, [@t, @stop): "GET target" and its line end, no
 * version. nginx still serves it (GET only: another method is
 * NGX_HTTP_PARSE_INVALID_09_METHOD), from the server block of an
 * absolute-form target's host (a hostile probe: "GET http://evil.example/"
 * with no version yielded no name). @return the target's host as an
 * HTTP/1.x absolute-form target's is read, FWD_X_NONE for an origin-form
 * target (no name: the default server), or 1 when it is no HTTP/0.9 line.
 */
static int http09(const uint8_t *r, size_t mlen, const uint8_t *t, const uint8_t *stop, char *out,
		  size_t outlen)
{
	const uint8_t *h;
	size_t hl;
	int rc;

	if (mlen != 3 || memcmp(r, "GET", 3) != 0)
		return 1;
	while (t < stop && *t == ' ')
		t++;
	if (t >= stop || memchr(t, ' ', (size_t)(stop - t)) != NULL)
		return 1; /* no target, or more than a target: no request nginx serves */
	if ((rc = target_host(r, mlen, t, stop, &h, &hl)) == 0)
		return FWD_X_NONE;
	return rc < 0 ? rc : copy_http_host(h, hl, rc == 2, out, outlen);
}

/*
 * Only two kinds of header line matter: one starting with 'h' (a Host
 * header, maybe) and the empty line that ends the headers. So rather than
 * walking every line, the search looks for a line end followed by 'h', 'H',
 * '\r' or '\n', 16 positions at a time (two overlapping loads), and looks
 * at those lines alone. Every line is still covered: a second Host header
 * anywhere before the empty line is refused, as the line walk refused it.
 * When the headers do not end in the buffer: the Host found so far, else
 * TRUNCATED (the Host may be in the next segment: a request split before
 * its Host header is unreadable here, and counted as such). *@x: where the
 * headers are (fwd_extract_http_next reads the body's framing from them).
 */
/*
 * How much of a request its line and headers may take: nginx's default
 * large_client_header_buffers (4 x 8 KiB). It was 8 KiB, where nginx serves
 * more: in a jumbo frame a first request of 9 KB of headers hid a second,
 * pipelined one for evil.example from every rule (a hostile probe). Past it
 * the rest of the segment is unreadable (fwd_extract_http_next). A segment
 * of the largest MTU (9600) never reaches it.
 */
#define X_HTTP_HEAD_MAX 32768

/* Whether @p starts HTTP/2's connection preface, or is its start cut by
 * the segment's end (3 bytes on: "PRI" is no HTTP/1 method anyone serves;
 * RFC 9113 3.4 reserves it): a client that wrote the preface in two
 * pieces got past unreadable rules with the first (a review). */
static int h2_preface(const uint8_t *p, size_t len)
{
	static const char pri[] = "PRI * HTTP/2.0\r\n";
	const size_t n = sizeof(pri) - 1;

	return len >= 3 && memcmp(p, pri, len < n ? len : n) == 0;
}

static int http_request(const uint8_t *p, size_t len, char *out, size_t outlen, struct xreq *x)
{
	const uint8_t *end = p + (len > X_HTTP_HEAD_MAX ? X_HTTP_HEAD_MAX : len), *eol, *stop, *q,
		      *r, *mv;
	struct xhost host = {NULL, 0, 0}, loose = {NULL, 0, 0};
	size_t mlen;

	x->hs = x->he = NULL;
	x->notreq = 0;
	/* HTTP/2 with prior knowledge (RFC 9113 3.3): the preface, then
	 * binary frames whose HEADERS carry :authority in HPACK, which a
	 * stateless reader cannot decode in general (its dynamic table spans
	 * the connection). Unreadable rather than no request: read as NONE,
	 * an h2c request for evil.example passed every rule (a probe). */
	/* RFC 9112 2.2: empty lines before the request line are ignored
	 * (nginx, Node do): "\r\nGET / HTTP/1.1" is a request. The preface
	 * after them too: a server that reads it as a request line of method
	 * PRI switches to HTTP/2 (a probe). */
	for (r = p; r < end && (*r == '\r' || *r == '\n'); r++)
		;
	if (h2_preface(r, (size_t)(end - r)))
		return FWD_X_UNSUPPORTED;
	if ((mlen = method_len(r, end)) == 0) {
		x->notreq = 1;
		return FWD_X_NONE;
	}
	x->m = r;
	x->mlen = mlen;
	/* the request line: "METHOD target HTTP/1.x" */
	if ((eol = find_byte(p, r, end, '\n')) == NULL) {
		x->notreq = !known_method(r, mlen);
		return x->notreq ? FWD_X_NONE : FWD_X_TRUNCATED;
	}
	stop = eol > r && eol[-1] == '\r' ? eol - 1 : eol;
	/* nginx takes spaces after the version and more than one between the
	 * parts ("GET  ws://evil.example/ HTTP/1.1 "): so does the search */
	while (stop > r + mlen && stop[-1] == ' ')
		stop--;
	/* The minor version: nginx reads all its digits ("HTTP/1.10" is a
	 * request it serves; read as no HTTP, its Host passed every rule).
	 * One byte of any kind, as before, when the line ends in no digit. */
	for (mv = stop; mv > r + mlen && mv[-1] >= '0' && mv[-1] <= '9'; mv--)
		;
	if (mv == stop)
		mv = stop - 1;
	if (mv - r < (ptrdiff_t)mlen + 10 || memcmp(mv - 7, "HTTP/1.", 7)) {
		/* not HTTP/1.x: HTTP/0.9, or no request. A 0.9 request has no
		 * headers, and its connection closes after the response: it
		 * ends what is read of the segment (x->he stays NULL). */
		int rc = http09(r, mlen, r + mlen + 1, stop, out, outlen);

		x->notreq = rc == 1;
		return rc == 1 ? FWD_X_NONE : rc;
	}
	x->hs = eol + 1;
	{
		/* the target: after the method's space, before " HTTP/1.x" */
		const uint8_t *t = r + mlen + 1, *te = mv - 8;
		int rc;

		while (t < te && *t == ' ')
			t++;
		while (te > t && te[-1] == ' ')
			te--;
		if (t < te && *te == ' ' &&
		    (rc = target_host(r, mlen, t, te, &host.p, &host.len)) != 0) {
			if (rc < 0)
				return rc;
			x->he = headers_end(p, eol + 1, end);
			return copy_http_host(host.p, host.len, rc == 2, out, outlen);
		}
	}
	for (q = eol;;) { /* q: a line end; the line after it starts at q + 1 */
		const uint8_t *line = q + 1;
		int rc;

		if (line >= end) /* the buffer stops at a line's end */
			break;
		if (*line == '\n' || *line == '\r' || (*line | 0x20) == 'h') {
			int is_loose = 0;
			const size_t named =
				(*line | 0x20) == 'h' ? host_named(line, end, &is_loose) : 0;

			if ((eol = find_byte(p, line, end, '\n')) == NULL)
				break; /* inside a line */
			stop = eol[-1] == '\r' ? eol - 1 : eol;
			if (stop == line) { /* the empty line: end of the headers */
				x->he = eol + 1;
				return host_found(&host, &loose, out, outlen);
			}
			if (named) {
				const uint8_t *v = line + named, *ve = stop;
				struct xhost *h = is_loose ? &loose : &host;

				if (h->p)
					return FWD_X_MALFORMED; /* two Host headers */
				/* nginx ends a header line at CRs then LF, any
				 * number ("Host: evil.example\r\r\n" is served
				 * as evil.example; read as MALFORMED, it passed
				 * every rule) */
				while (ve > v && ve[-1] == '\r')
					ve--;
				trim_blanks(&v, &ve);
				if (eol + 1 < end && (eol[1] == ' ' || eol[1] == '\t') &&
				    (rc = host_folded(p, end, &eol, &v, &ve)) < 0)
					return rc;
				if ((rc = authority_host(v, ve, 1, &h->p, &h->len)) < 0)
					return rc;
				h->odd = rc == 2;
			}
			q = eol;
			continue;
		}
		/* The next line end followed by a byte that matters. */
		if ((q = next_line_mark(p, line, end)) == NULL)
			break; /* no line that matters starts in the buffer */
	}
	/* The headers do not end in the buffer: the Host may come next. */
	if (host.p || loose.p)
		return host_found(&host, &loose, out, outlen);
	return FWD_X_TRUNCATED;
}

int fwd_extract_http_host(const uint8_t *p, size_t len, char *out, size_t outlen)
{
	struct xreq x;

	return http_request(p, len, out, outlen, &x);
}

/* Whether the header line [l, le) is named @name (lowercase, with its ':',
 * no blanks before it: nginx ignores such a line): its value, blanks
 * trimmed, in [*v, *ve). */
static int header_is(const uint8_t *l, const uint8_t *le, const char *name, const uint8_t **v,
		     const uint8_t **ve)
{
	const size_t n = strlen(name);

	if ((size_t)(le - l) < n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((l[i] >= 'A' && l[i] <= 'Z' ? l[i] + 32 : l[i]) != (uint8_t)name[i])
			return 0;
	*v = l + n;
	*ve = le;
	trim_blanks(v, ve);
	return 1;
}

#define X_BODY_PAST ((const uint8_t *)1) /* the body runs past the payload */

/*
 * A chunked body from @b (RFC 9112 7.1): chunks, the last one (size 0),
 * trailer lines, the empty line. Each chunk line is read to its '\n' (its
 * extension, after ';', skipped), each chunk moves on by at least its line:
 * bounded by the payload. @return where the body ends, X_BODY_PAST, or NULL
 * for a chunk size that is no hex number or data not ended by a line end.
 */
static const uint8_t *chunked_end(const uint8_t *start, const uint8_t *b, const uint8_t *end)
{
	for (;;) {
		const uint8_t *eol;
		uint64_t size = 0;
		unsigned digits = 0;

		for (; b < end && digits < 16; b++, digits++) {
			const uint8_t c = *b | 0x20;

			if (*b >= '0' && *b <= '9')
				size = size << 4 | (uint64_t)(*b - '0');
			else if (c >= 'a' && c <= 'f')
				size = size << 4 | (uint64_t)(c - 'a' + 10);
			else
				break;
		}
		if (b == end)
			return X_BODY_PAST;
		if (digits == 0 || digits == 16 || (*b != ';' && *b != '\r' && *b != '\n'))
			return NULL;
		if ((eol = find_byte(start, b, end, '\n')) == NULL)
			return X_BODY_PAST;
		if (*b == '\r' && eol != b + 1)
			return NULL;
		b = eol + 1;
		if (size == 0) /* the trailer: lines up to the empty one */
			return headers_end(start, b, end) ?: X_BODY_PAST;
		if (size >= (uint64_t)(end - b))
			return X_BODY_PAST;
		b += size;
		if (*b == '\n')
			b++;
		else if (*b == '\r' && b + 1 < end && b[1] == '\n')
			b += 2;
		else if (*b == '\r' && b + 1 == end)
			return X_BODY_PAST;
		else
			return NULL;
	}
}

/*
 * Where the request whose headers *@x found ends in [.., @end): after its
 * body, framed as RFC 9112 6.3 says and nginx reads it: Transfer-Encoding
 * chunked, else Content-Length, else no body. @return that, X_BODY_PAST
 * when it is not in the payload (the rest is body, or data of a CONNECT
 * tunnel), or NULL when the framing cannot be read: two Content-Lengths,
 * a value that is no number, both headers, another coding than chunked
 * (nginx answers 400 or 501 to each, and a server that guesses reads the
 * next request elsewhere than this would).
 */
static const uint8_t *request_end(const uint8_t *start, const struct xreq *x, const uint8_t *end)
{
	const uint8_t *l = x->hs, *v, *ve, *eol;
	uint64_t clen = 0;
	int ncl = 0, te = 0;

	if (x->mlen == 7 && memcmp(x->m, "CONNECT", 7) == 0)
		return X_BODY_PAST; /* a tunnel follows */
	for (; l < x->he; l = eol + 1) { /* each line: bounded by the headers */
		const uint8_t *le;

		eol = find_byte(start, l, x->he, '\n');
		le = eol > l && eol[-1] == '\r' ? eol - 1 : eol;
		if ((*l | 0x20) == 'c' && header_is(l, le, "content-length:", &v, &ve)) {
			if (ncl++ || v == ve || ve - v > 18)
				return NULL;
			for (; v < ve; v++) {
				if (*v < '0' || *v > '9')
					return NULL;
				clen = clen * 10 + (uint64_t)(*v - '0');
			}
		} else if ((*l | 0x20) == 't' && header_is(l, le, "transfer-encoding:", &v, &ve)) {
			if (te++ || ve - v != 7 || !header_is(v, ve, "chunked", &v, &ve))
				return NULL;
		}
	}
	if (te && ncl)
		return NULL;
	if (te)
		return chunked_end(start, x->he, end);
	return clen > (uint64_t)(end - x->he) ? X_BODY_PAST : x->he + clen;
}

int fwd_extract_http_next(const uint8_t *p, size_t len, struct fwd_x_iter *it, char *out,
			  size_t outlen)
{
	const uint8_t *q = p + it->off, *end = p + len, *next;
	struct xreq x;
	int rc;

	if (it->next_rc || it->n >= FWD_X_MAX_NAMES) {
		rc = it->next_rc ? it->next_rc : FWD_X_TOO_MANY;
		it->off = len;
		return rc;
	}
	rc = http_request(q, len - it->off, out, outlen, &x);
	/* After a request, bytes that start none are NONE as at the start
	 * (x.notreq): a server answers 400 to them and closes, serving
	 * nothing after them; a cut request line is TRUNCATED for the
	 * RFC 9110 methods, as the first one's. */
	it->n++;
	it->off = len;
	if (rc >= 0 && x.hs != NULL && x.he == NULL && len - (size_t)(q - p) > X_HTTP_HEAD_MAX) {
		/* headers past what is read, with bytes after them: a request
		 * may follow, and no rule would see it */
		it->off = (size_t)(q - p) + X_HTTP_HEAD_MAX;
		it->next_rc = FWD_X_TOO_LONG;
		return rc;
	}
	if (rc < 0 || x.he == NULL || x.he == end)
		return rc; /* nothing more is read: an error, or no end of the headers */
	if ((next = request_end(p, &x, end)) == NULL) {
		it->off = (size_t)(x.he - p); /* the rest is unreadable: said by the next call */
		it->next_rc = FWD_X_MALFORMED;
		return rc;
	}
	if (next == X_BODY_PAST)
		return rc;
	/* RFC 9112 2.2: empty lines between requests, as before the first */
	while (next < end && (*next == '\r' || *next == '\n'))
		next++;
	it->off = (size_t)(next - p);
	return rc;
}

int fwd_extract_dns_tcp_next(const uint8_t *p, size_t len, struct fwd_x_iter *it, char *out,
			     size_t outlen)
{
	const size_t rest = len - it->off;
	size_t mlen;
	int rc;

	if (it->n >= FWD_X_MAX_NAMES) {
		it->off = len;
		return FWD_X_TOO_MANY;
	}
	it->n++;
	if (rest < 2) { /* not even the length: none at the start, cut later on */
		it->off = len;
		return it->n > 1 ? FWD_X_TRUNCATED : FWD_X_NONE;
	}
	mlen = rd16(p + it->off);
	if (mlen > rest - 2) { /* the message continues in the next segment */
		p += it->off + 2;
		it->off = len;
		return fwd_extract_dns_qname(p, rest - 2, out, outlen);
	}
	rc = fwd_extract_dns_qname(p + it->off + 2, mlen, out, outlen);
	it->off = rc < 0 ? len : it->off + 2 + mlen; /* an unreadable one ends the walk */
	return rc;
}

/* Compression pointers followed in one name, at most: dnsmasq's bound.
 * With 64, a chain of 65 dnsmasq resolves was MALFORMED, seen by no rule.
 * A name without loops needs no more than 255 either way (a pointer alone
 * adds no byte, so a chain costs as much as a 255-byte name's bytes). */
#define X_DNS_HOPS 255

/*
 * A first question's name that holds a compression pointer, label by label,
 * following the pointers (out of line: queries do not compress). RFC 1035
 * 4.1.4 lets a name end in a pointer, and dnsmasq follows one to any offset
 * of the message, forward too (Unbound refuses a pointer in a query): "www" then a pointer to "evil.example" put
 * in an EDNS option is resolved as www.evil.example, which a rule read as
 * unreadable and let pass (a hostile probe). BIND and Knot take backward
 * pointers only, which here can reach the header alone. Bounded: at most
 * X_DNS_HOPS pointers (a loop ends there, MALFORMED), and every label
 * grows the name, which stops at 255 bytes. The outcome for a name without
 * pointers is the label-by-label one of fwd_extract_dns_qname.
 */
static __attribute__((noinline)) int dns_qname_ptr(const uint8_t *p, size_t len, char *out,
						   size_t outlen)
{
	const size_t max = outlen - 1 < 255 ? outlen - 1 : 255;
	size_t i = 12, o = 0;
	unsigned hops = 0;

	for (;;) {
		uint8_t l;

		if (i >= len)
			return FWD_X_TRUNCATED;
		l = p[i];
		if (l >= 0xc0) { /* a pointer: 14 bits of offset */
			if (i + 1 >= len)
				return FWD_X_TRUNCATED;
			i = (size_t)(l & 0x3f) << 8 | p[i + 1];
			if (++hops > X_DNS_HOPS || i >= len)
				return FWD_X_MALFORMED; /* a loop, or out of the message */
			continue;
		}
		if (l > 63)
			return FWD_X_MALFORMED; /* a reserved label type */
		if (l == 0)
			break;
		if (i + 1 + l > len)
			return FWD_X_TRUNCATED;
		if (o + l + 1 > max)
			return FWD_X_TOO_LONG;
		if (lower_copy(p + i + 1, l, out + o, 1))
			return FWD_X_MALFORMED;
		o += l;
		out[o++] = '.';
		i += 1 + l;
	}
	if (o == 0) {
		out[0] = '.'; /* the root */
		out[1] = '\0';
		return 1;
	}
	out[o - 1] = '\0';
	return (int)(o - 1);
}

/*
 * The name is read in two steps: a walk over its length bytes alone (a
 * handful of labels) checks the structure, then the labels and the length
 * bytes between them, one span of the payload, are copied and checked
 * together, 16 or 8 bytes at a time. Copying label by label spent most of
 * its time on the short labels' byte loop. The outcome is the label-by-label
 * one's: a label's bytes are checked only when its length was good, and the
 * first label with a fault, in that order, decides the error.
 */
int fwd_extract_dns_qname(const uint8_t *p, size_t len, char *out, size_t outlen)
{
	/* Where each label's length byte is. A label ends by byte 12 + 255 (the
	 * dotted name with a dot after its last label within 255 bytes, as the
	 * label-by-label extractor had it) and leaves room for the NUL: so at
	 * most 127 labels of 1 byte, and the walk is bounded by that too. */
	const size_t cap = 12 + (outlen - 1 < 255 ? outlen - 1 : 255), lim = len < cap ? len : cap;
	uint16_t at[128];
	unsigned labels;
	size_t i = 12, n;
	int rc = 0;

	if (outlen < 2)
		return FWD_X_TOO_LONG;
	if (len < 12)
		return FWD_X_TRUNCATED;
	if (rd16(p + 4) == 0)
		return FWD_X_NONE; /* no question */
	if ((p[2] & 0x78) != 0)
		return FWD_X_NONE; /* opcode other than QUERY */
	for (labels = 0;; labels++) {
		uint8_t l;
		size_t e;

		if (i >= len) {
			rc = FWD_X_TRUNCATED;
			break;
		}
		l = p[i];
		if ((uint8_t)(l - 1) > 62) { /* 0: the end; 64 up: not a plain label */
			if (l >= 0xc0)
				return dns_qname_ptr(p, len, out, outlen);
			if (l)
				rc = FWD_X_MALFORMED; /* a reserved label type */
			break;
		}
		e = i + 1 + l;
		if (e > lim) { /* the payload's end first, as a label's own checks go */
			rc = e > len ? FWD_X_TRUNCATED : FWD_X_TOO_LONG;
			break;
		}
		at[labels] = (uint16_t)i;
		i = e;
	}
	if (labels == 0) {
		if (rc)
			return rc;
		out[0] = '.'; /* the root */
		out[1] = '\0';
		return 1;
	}
	/* The good labels, [13, i): copied lowercased; the length bytes between
	 * them then made a letter and the copy checked (printable, no dot), so
	 * that only a label's own bytes can fail it; then made dots. */
	n = i - 13;
	lower_copy(p + 13, n, out, 1);
	for (unsigned k = 1; k < labels; k++)
		out[at[k] - 13] = 'a';
	if (lower_copy((const uint8_t *)out, n, out, 1))
		return FWD_X_MALFORMED;
	if (rc)
		return rc;
	for (unsigned k = 1; k < labels; k++)
		out[at[k] - 13] = '.';
	out[n] = '\0';
	return (int)n;
}

/* A DNS name in presentation form: as fwd_extract_dns_qname gives the
 * query's name from its labels. */
static int given_qname(const char *s, size_t n, char *out, size_t outlen)
{
	size_t label = 0;

	if (n == 1 && s[0] == '.') {
		if (outlen < 2)
			return FWD_X_TOO_LONG;
		out[0] = '.';
		out[1] = '\0';
		return 1;
	}
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0)
		return FWD_X_MALFORMED;
	/* counted with a dot after the last label, as on the wire */
	if (n + 1 > 255 || n + 2 > outlen)
		return FWD_X_TOO_LONG;
	if (lower_copy((const uint8_t *)s, n, out, 0))
		return FWD_X_MALFORMED;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && out[i] != '.') {
			label++;
			continue;
		}
		if (label == 0 || label > 63) /* an empty label; over 63: no label type */
			return FWD_X_MALFORMED;
		label = 0;
	}
	out[n] = '\0';
	return (int)n;
}

int fwd_extract_given(int field, const char *s, size_t n, char *out, size_t outlen)
{
	static const char head[] = "GET / HTTP/1.1\r\nHost: ", tail[] = "\r\n\r\n";
	uint8_t req[sizeof(head) - 1 + 512 + sizeof(tail) - 1];

	switch (field) {
	case FWD_X_SNI:
		return copy_host((const uint8_t *)s, n, out, outlen);
	case FWD_X_QNAME:
		return given_qname(s, n, out, outlen);
	case FWD_X_HOST:
		/* The value in a request of its own, read by the extractor: the
		 * authority's rules (userinfo, port, characters) are its alone.
		 * A line break or NUL would make it another request, not this
		 * value. */
		if (n > 512)
			return FWD_X_TOO_LONG;
		if (memchr(s, '\r', n) || memchr(s, '\n', n) || memchr(s, '\0', n))
			return FWD_X_MALFORMED;
		memcpy(req, head, sizeof(head) - 1);
		memcpy(req + sizeof(head) - 1, s, n);
		memcpy(req + sizeof(head) - 1 + n, tail, sizeof(tail) - 1);
		n += sizeof(head) - 1 + sizeof(tail) - 1;
		{
			int rc = fwd_extract_http_host(req, n, out, outlen);

			/* no name at all (an empty value): a Host a server refuses */
			return rc == FWD_X_NONE ? FWD_X_MALFORMED : rc;
		}
	default:
		return FWD_X_MALFORMED;
	}
}

const char *fwd_extract_error_name(int rc)
{
	switch (rc) {
	case FWD_X_TRUNCATED:
		return "truncated";
	case FWD_X_MALFORMED:
		return "malformed";
	case FWD_X_TOO_LONG:
		return "too_long";
	case FWD_X_TOO_MANY:
		return "too_many";
	case FWD_X_UNSUPPORTED:
		return "unsupported";
	default:
		return "unknown";
	}
}
