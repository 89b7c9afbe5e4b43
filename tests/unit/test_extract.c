/*
 * Extractor tests (common/fwd_extract.c): TLS SNI, HTTP Host, DNS query
 * name on valid input, on each malformed class, and truncated at every
 * length (no read past the end: the sanitizer build checks; never a name).
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fwd_extract.h"

struct buf {
	uint8_t b[70000];
	size_t n;
};

static void put(struct buf *x, const void *p, size_t n)
{
	memcpy(x->b + x->n, p, n);
	x->n += n;
}

static void put8(struct buf *x, uint32_t v)
{
	x->b[x->n++] = (uint8_t)v;
}

static void put16(struct buf *x, uint32_t v)
{
	put8(x, v >> 8);
	put8(x, v);
}

/* A server_name extension with one host_name. */
static void put_sni(struct buf *ext, const char *sni, size_t sni_len)
{
	put16(ext, 0); /* server_name */
	put16(ext, (uint32_t)sni_len + 5);
	put16(ext, (uint32_t)sni_len + 3);
	put8(ext, 0);
	put16(ext, (uint32_t)sni_len);
	put(ext, sni, sni_len);
}

/* A ClientHello in one record carrying the extensions @ext. */
static void hello_with(struct buf *x, const struct buf *ext, int session_id)
{
	static struct buf body;
	static const uint8_t random[32] = {1, 2, 3};

	body.n = 0;
	put16(&body, 0x0303);
	put(&body, random, 32);
	put8(&body, session_id ? 32 : 0);
	for (int i = 0; session_id && i < 32; i++)
		put8(&body, (uint32_t)i);
	put16(&body, 4);
	put16(&body, 0x1301);
	put16(&body, 0x1302);
	put8(&body, 1);
	put8(&body, 0);
	put16(&body, (uint32_t)ext->n);
	put(&body, ext->b, ext->n);
	x->n = 0;
	put8(x, 0x16);
	put16(x, 0x0301);
	put16(x, (uint32_t)body.n + 4);
	put8(x, 1);
	put8(x, (uint32_t)(body.n >> 16));
	put16(x, (uint32_t)body.n);
	put(x, body.b, body.n);
}

/* A ClientHello with a supported_groups extension before server_name. */
static void client_hello(struct buf *x, const char *sni, size_t sni_len, int session_id)
{
	static struct buf ext;

	ext.n = 0;
	put16(&ext, 10); /* supported_groups */
	put16(&ext, 4);
	put16(&ext, 2);
	put16(&ext, 29);
	if (sni)
		put_sni(&ext, sni, sni_len);
	hello_with(x, &ext, session_id);
}

static void test_sni(void **state)
{
	struct buf h;
	char out[FWD_X_NAME_MAX];

	(void)state;
	client_hello(&h, "Api.Example.COM", 15, 1);
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), 15);
	assert_string_equal(out, "api.example.com");
	client_hello(&h, NULL, 0, 0);
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_NONE);
	assert_int_equal(
		fwd_extract_sni((const uint8_t *)"GET / HTTP/1.1\r\n", 16, out, sizeof(out)),
		FWD_X_NONE);
	client_hello(&h, "a.example", 9, 0);
	h.b[5] = 2; /* a ServerHello */
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_NONE);
}

static void test_sni_malformed(void **state)
{
	struct buf h;
	char out[FWD_X_NAME_MAX], big[300];

	(void)state;
	client_hello(&h, "a.example", 9, 1);
	h.b[9 + 34] = 33; /* session id longer than 32 */
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	/* The end of the hello: ext type(2) len(2) list len(2) name type(1) name len(2) name(9). */
	client_hello(&h, "a.example", 9, 0);
	h.b[h.n - 14] = 0x7f; /* SNI list length disagrees with its extension */
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	client_hello(&h, "a.example", 9, 0);
	h.b[h.n - 12] = 7; /* an unknown name type is skipped: no host name */
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_NONE);
	client_hello(&h, "a\001example", 9, 0);
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	memset(big, 'a', sizeof(big));
	client_hello(&h, big, sizeof(big), 0);
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_TOO_LONG);
	client_hello(&h, "a.example", 9, 0);
	h.b[3] = 0; /* record shorter than the hello it carries */
	h.b[4] = 10;
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	client_hello(&h, "a.example", 9, 0);
	h.b[h.n - 16] = 0xff; /* an extension length past the hello */
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	client_hello(&h, "a.example", 9, 0);
	h.b[3] = 0xff; /* record length over 2^14 (found by the fast-path corpus test) */
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	client_hello(&h, "a.example", 9, 0);
	h.b[3] = 0x40; /* exactly 2^14 + the low byte: still over */
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
}

/* The hello of @h re-framed as records of at most @chunk handshake bytes
 * each, all in one payload (RFC 8446 5.1: a handshake message may span
 * records). */
static void split_records(struct buf *h, size_t chunk)
{
	struct buf x = {.n = 0};
	size_t hs = h->n - 5;

	for (size_t k = 0; k < hs; k += chunk) {
		size_t n = hs - k < chunk ? hs - k : chunk;

		put8(&x, 0x16);
		put16(&x, 0x0301);
		put16(&x, (uint32_t)n);
		put(&x, h->b + 5 + k, n);
	}
	memcpy(h->b, x.b, x.n);
	h->n = x.n;
}

static void test_sni_over_several_records(void **state)
{
	static const size_t chunks[] = {1, 2, 3, 4, 5, 40, 100};
	struct buf h;
	char out[FWD_X_NAME_MAX];

	(void)state;
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		client_hello(&h, "Telemetry.Example.com", 21, 1);
		split_records(&h, chunks[c]);
		assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), 21);
		assert_string_equal(out, "telemetry.example.com");
		/* cut anywhere: the hello continues in another segment */
		for (size_t n = 9; n < h.n; n++)
			assert_int_equal(fwd_extract_sni(h.b, n, out, sizeof(out)) > 0, 0);
	}
	client_hello(&h, "a.example", 9, 0);
	split_records(&h, 40);
	h.b[5 + 40] = 0x17; /* the second record is application data */
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	client_hello(&h, "a.example", 9, 0);
	split_records(&h, 40);
	h.b[5 + 40 + 3] = 0; /* an empty record in between */
	h.b[5 + 40 + 4] = 0;
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	client_hello(&h, "a.example", 9, 0);
	split_records(&h, 2);
	h.b[5] = 2; /* a ServerHello over records */
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_NONE);
	/* An empty record first: p[5] is the next record's, not a handshake
	 * type; the records say it is malformed (a review: it read as "not a
	 * ClientHello", hiding the name from rules and from the counter). */
	client_hello(&h, "a.example", 9, 0);
	memmove(h.b + 5, h.b, h.n);
	memcpy(h.b, "\x16\x03\x01\x00\x00", 5);
	h.n += 5;
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	/* A first record of 1..3 bytes: the hello over the records. */
	for (size_t c = 1; c <= 3; c++) {
		client_hello(&h, "a.example", 9, 0);
		split_records(&h, c);
		assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), 9);
	}
}

/*
 * A hostile sender's ClientHellos: the name against what a server acts on.
 */
static void test_sni_hostile(void **state)
{
	static struct buf h, ext;
	char out[FWD_X_NAME_MAX];

	(void)state;
	/* a trailing dot: nginx strips it and picks evil.example's server */
	client_hello(&h, "Evil.Example.", 13, 0);
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), 12);
	assert_string_equal(out, "evil.example");
	client_hello(&h, ".", 1, 0);
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	client_hello(&h, "evil.example..", 14, 0); /* nginx: 400 */
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	client_hello(&h, "", 0, 0); /* zero-length */
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_MALFORMED);
	/* two host_names: the first (OpenSSL reads it alone; Go, BoringSSL
	 * and rustls refuse the hello) */
	ext.n = 0;
	put16(&ext, 0);
	put16(&ext, 2 + 3 + 12 + 3 + 12);
	put16(&ext, 3 + 12 + 3 + 12);
	put8(&ext, 0);
	put16(&ext, 12);
	put(&ext, "good.example", 12);
	put8(&ext, 0);
	put16(&ext, 12);
	put(&ext, "evil.example", 12);
	hello_with(&h, &ext, 0);
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), 12);
	assert_string_equal(out, "good.example");
	/* GREASE extensions and an ECH outer hello: the outer (public) name,
	 * the one on the wire; the inner one is encrypted */
	ext.n = 0;
	put16(&ext, 0x0a0a); /* GREASE */
	put16(&ext, 0);
	put16(&ext, 0xfe0d); /* encrypted_client_hello, outer */
	put16(&ext, 8);
	put(&ext, "\0\0\1\0\1\7\0\0", 8);
	put_sni(&ext, "public.example", 14);
	put16(&ext, 0x3a3a); /* GREASE, one byte */
	put16(&ext, 1);
	put8(&ext, 0);
	hello_with(&h, &ext, 1);
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), 14);
	assert_string_equal(out, "public.example");
}

/* A ClientHello larger than a segment, as a post-quantum key share makes
 * it (~1.8 KB): the server_name is read when it is wholly in this segment,
 * in one record or over several; TRUNCATED when the segment ends before its
 * end. */
static void test_sni_cut_hello(void **state)
{
	static struct buf h, ext, w;
	static uint8_t key[1250];
	char out[FWD_X_NAME_MAX];
	size_t sni_end;

	(void)state;
	ext.n = 0;
	put16(&ext, 0x2a2a); /* GREASE */
	put16(&ext, 0);
	put_sni(&ext, "Evil.Example", 12);
	put16(&ext, 51); /* key_share: X25519MLKEM768, as browsers send it */
	put16(&ext, (uint32_t)sizeof(key) + 6);
	put16(&ext, (uint32_t)sizeof(key) + 4);
	put16(&ext, 0x11ec);
	put16(&ext, (uint32_t)sizeof(key));
	put(&ext, key, sizeof(key));
	hello_with(&h, &ext, 1);
	/* where the name's extension ends: record(5) + handshake(4) + version,
	 * random(34) + session id(33) + suites(6) + compression(2) + the
	 * extensions' length(2) + GREASE(4) + server_name(4 + 5 + 12) */
	sni_end = 5 + 4 + 34 + 33 + 6 + 2 + 2 + 4 + 21;
	for (size_t n = 9; n <= 1460 && n < h.n; n++) {
		int r = fwd_extract_sni(h.b, n, out, sizeof(out));

		if (n < sni_end) {
			assert_int_equal(r, FWD_X_TRUNCATED);
		} else {
			assert_int_equal(r, 12);
			assert_string_equal(out, "evil.example");
		}
	}
	/* the same over records of 100 bytes, cut anywhere */
	w = h;
	split_records(&w, 100);
	for (size_t n = 9; n < w.n; n += 7) {
		int r = fwd_extract_sni(w.b, n, out, sizeof(out));
		/* the name's end in the records: 5 bytes of header per 100 */
		size_t at = sni_end + 5 * ((sni_end - 5 - 1) / 100);

		assert_int_equal(r, n < at ? FWD_X_TRUNCATED : 12);
	}
	/* a length past the hello's own end is MALFORMED, cut or not */
	w = h;
	w.b[5 + 4 + 34 + 33 + 6 + 2 + 2 + 4 + 2] = 0x7f; /* server_name's length */
	assert_int_equal(fwd_extract_sni(w.b, 600, out, sizeof(out)), FWD_X_MALFORMED);
	/* the name after the key share, past the segment: not here */
	ext.n = 0;
	put16(&ext, 51);
	put16(&ext, (uint32_t)sizeof(key) + 6);
	put16(&ext, (uint32_t)sizeof(key) + 4);
	put16(&ext, 0x11ec);
	put16(&ext, (uint32_t)sizeof(key));
	put(&ext, key, sizeof(key));
	put_sni(&ext, "evil.example", 12);
	put16(&ext, 21); /* padding to past a segment */
	put16(&ext, 400);
	memset(ext.b + ext.n, 0, 400);
	ext.n += 400;
	hello_with(&h, &ext, 1);
	assert_int_equal(fwd_extract_sni(h.b, 1300, out, sizeof(out)), FWD_X_TRUNCATED);
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), 12);
	/* A hello padded past 16 KiB (RFC 7685), so over two records: OpenSSL
	 * and Go serve it. Its name, in the first segment, was MALFORMED. */
	ext.n = 0;
	put_sni(&ext, "Evil.Example", 12);
	put16(&ext, 21);
	put16(&ext, 20000);
	memset(ext.b + ext.n, 0, 20000);
	ext.n += 20000;
	hello_with(&h, &ext, 1);
	split_records(&h, 16384);
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), 12);
	assert_string_equal(out, "evil.example");
	assert_int_equal(fwd_extract_sni(h.b, 1460, out, sizeof(out)), 12);
	/* its name past the first 16 KiB of the hello: not read */
	ext.n = 0;
	put16(&ext, 21);
	put16(&ext, 20000);
	memset(ext.b + ext.n, 0, 20000);
	ext.n += 20000;
	put_sni(&ext, "evil.example", 12);
	hello_with(&h, &ext, 1);
	split_records(&h, 16384);
	assert_int_equal(fwd_extract_sni(h.b, h.n, out, sizeof(out)), FWD_X_TRUNCATED);
}

static void test_every_truncation(void **state)
{
	struct buf h;
	char out[FWD_X_NAME_MAX];
	static const char http[] = "GET /x HTTP/1.1\r\nHost: www.example.com\r\n\r\n";
	static const uint8_t dns[] = {0x12, 0x34, 1,   0,   0,	 1,   0,   0,	0,   0,	  0,
				      0,    3,	  'w', 'w', 'w', 7,   'e', 'x', 'a', 'm', 'p',
				      'l',  'e',  3,   'c', 'o', 'm', 0,   0,	1,   0,	  1};

	(void)state;
	client_hello(&h, "www.example.com", 15, 1);
	for (size_t n = 1; n < h.n; n++) {
		uint8_t *c = malloc(n);

		memcpy(c, h.b, n);
		assert_true(fwd_extract_sni(c, n, out, sizeof(out)) <= 0);
		free(c);
	}
	for (size_t n = 0; n < sizeof(http) - 1; n++) {
		uint8_t *c = malloc(n ? n : 1);
		int rc;

		memcpy(c, http, n);
		rc = fwd_extract_http_host(c, n, out, sizeof(out));
		/* Once "www.example.com\r\n" is in, the name is known. */
		assert_true(
			rc <= 0 ||
			(rc == 15 && n >= strlen("GET /x HTTP/1.1\r\nHost: www.example.com\r\n")));
		free(c);
	}
	for (size_t n = 0; n < 29; n++) { /* up to the name's final zero */
		uint8_t *c = malloc(n ? n : 1);

		memcpy(c, dns, n);
		assert_true(fwd_extract_dns_qname(c, n, out, sizeof(out)) <= 0);
		free(c);
	}
	assert_int_equal(fwd_extract_dns_qname(dns, sizeof(dns), out, sizeof(out)), 15);
	assert_string_equal(out, "www.example.com");
}

static void test_http_host(void **state)
{
	char out[FWD_X_NAME_MAX];
#define H(s) (const uint8_t *)(s), strlen(s), out, sizeof(out)

	(void)state;
	assert_int_equal(
		fwd_extract_http_host(
			H("GET / HTTP/1.1\r\nAccept: */*\r\nHoSt:  Example.COM:8080 \r\n\r\n")),
		11);
	assert_string_equal(out, "example.com");
	assert_int_equal(fwd_extract_http_host(H("POST /a HTTP/1.0\nHost: [2001:db8::1]:443\n\n")),
			 13);
	assert_string_equal(out, "[2001:db8::1]");
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")),
			 FWD_X_MALFORMED);
	assert_int_equal(
		fwd_extract_http_host(H("GET / HTTP/1.1\r\nAccept: */*\r\n\r\nHost: late\r\n")),
		FWD_X_NONE);
	assert_int_equal(fwd_extract_http_host(H("SSH-2.0-OpenSSH_9.2\r\n")), FWD_X_NONE);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/2.0\r\nHost: a\r\n\r\n")), FWD_X_NONE);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: a b\r\n\r\n")),
			 FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost:\r\n\r\n")),
			 FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n")),
			 FWD_X_MALFORMED);
	/* Absolute-form: the server takes the target's host and ignores Host
	 * (RFC 9112 3.2.2), and so does the extractor (a hostile probe). */
	assert_int_equal(fwd_extract_http_host(H("GET http://Other.ORG/x HTTP/1.1\r\nHost: "
						 "example.com\r\n\r\n")),
			 9);
	assert_string_equal(out, "other.org");
	assert_int_equal(fwd_extract_http_host(H("GET HTTPS://u:p@evil.example:8443?q HTTP/1.1\r\n"
						 "\r\n")),
			 12);
	assert_string_equal(out, "evil.example");
	assert_int_equal(fwd_extract_http_host(H("GET http://[2001:db8::1]:80/ HTTP/1.1\r\n\r\n")),
			 13);
	assert_string_equal(out, "[2001:db8::1]");
	assert_int_equal(fwd_extract_http_host(H("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n")),
			 FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_http_host(H("GET http://[::1/ HTTP/1.1\r\n\r\n")),
			 FWD_X_MALFORMED);
	/* a path that merely holds "http://" is origin-form: Host decides */
	assert_int_equal(fwd_extract_http_host(H("GET /r?u=http://x.org HTTP/1.1\r\nHost: "
						 "a.example\r\n\r\n")),
			 9);
	assert_string_equal(out, "a.example");
#undef H
}

/*
 * A hostile sender's Host headers: each against what a server acts on
 * (docs/content-rules.md, "Extractors"). A rule on evil.example must see
 * evil.example wherever nginx, Apache or Go would serve evil.example, and
 * a Host no server serves as written is unreadable (MALFORMED), as two
 * Host headers are.
 */
static void test_http_host_hostile(void **state)
{
	char out[FWD_X_NAME_MAX];
	static const char nul[] = "GET / HTTP/1.1\r\nHost: evil.example\0.good\r\n\r\n";
#define H(s) (const uint8_t *)(s), strlen(s), out, sizeof(out)
#define IS(s, want)                                                                                \
	do {                                                                                       \
		assert_int_equal(fwd_extract_http_host(H(s)), (int)strlen(want));                  \
		assert_string_equal(out, want);                                                    \
	} while (0)

	(void)state;
	/* userinfo: Host = uri-host [":" port] (RFC 9110 7.2) has none; nginx
	 * serves "good@evil.example" as a name no server block has, Go and
	 * Apache answer 400, a URL parser (Node, Python) reads evil.example:
	 * the name a rule sees, as in an absolute-form target */
	IS("GET / HTTP/1.1\r\nHost: good@evil.example\r\n\r\n", "evil.example");
	/* A ':' before the '@': nginx serves the name before it, a URL
	 * parser the one after: two names, unreadable (a review). */
	assert_int_equal(
		fwd_extract_http_host(
			H("GET / HTTP/1.1\r\nHost: good.example:443@Evil.Example:80\r\n\r\n")),
		FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_http_host(
				 H("GET / HTTP/1.1\r\nHost: evil.example:1@good.example\r\n\r\n")),
			 FWD_X_MALFORMED);
	assert_int_equal(
		fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: u:p@evil.example\r\n\r\n")),
		FWD_X_MALFORMED);
	IS("GET / HTTP/1.1\r\nHost: a@b@evil.example\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHost: u@[2001:db8::1]:80\r\n\r\n", "[2001:db8::1]");
	/* the authority ends at '/', '?', '#', '\\' (a URL parser's reading) */
	IS("GET / HTTP/1.1\r\nHost: evil.example/x@good.example\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHost: evil.example?@good.example\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHost: evil.example#\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHost: evil.example\\@good.example\r\n\r\n", "evil.example");
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: good@\r\n\r\n")),
			 FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: /evil\r\n\r\n")),
			 FWD_X_MALFORMED);
	/* bytes no host holds, and no URL parser takes */
	assert_int_equal(
		fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: \"evil.example\"\r\n\r\n")),
		FWD_X_MALFORMED);
	assert_int_equal(
		fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: evil<x>.example\r\n\r\n")),
		FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: evil.example]\r\n\r\n")),
			 FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: [::1]x]\r\n\r\n")), 5);
	assert_int_equal(
		fwd_extract_http_host((const uint8_t *)nul, sizeof(nul) - 1, out, sizeof(out)),
		FWD_X_MALFORMED);
	/* a trailing dot: nginx and Apache strip one and serve evil.example */
	IS("GET / HTTP/1.1\r\nHost: evil.example.\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHost: EVIL.Example.:8080\r\n\r\n", "evil.example");
	IS("GET http://evil.example./ HTTP/1.1\r\nHost: good.example\r\n\r\n", "evil.example");
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: .\r\n\r\n")),
			 FWD_X_MALFORMED);
	/* percent-encoding: no server decodes a Host; it stays as sent */
	IS("GET / HTTP/1.1\r\nHost: evil%2Eexample\r\n\r\n", "evil%2eexample");
	/* blanks, LF-only lines */
	IS("GET / HTTP/1.1\r\nHost:\t evil.example \t\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\nHost: evil.example\n\n", "evil.example");
	/* obs-fold (RFC 9112 5.2): Apache joins the lines with a space */
	IS("GET / HTTP/1.1\r\nHost:\r\n evil.example\r\nAccept: */*\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHost:  \r\n\t\r\n  evil.example:80 \r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHost: evil.example\r\n \r\n\r\n", "evil.example");
	assert_int_equal(
		fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: evil\r\n .example\r\n\r\n")),
		FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost:\r\n evil.exa")),
			 FWD_X_TRUNCATED);
	/* a folded line after another header is that header's */
	IS("GET / HTTP/1.1\r\nX-A: b\r\n Host: good.example\r\nHost: evil.example\r\n\r\n",
	   "evil.example");
	/* any method: Go and nginx's upstreams serve "XGET" or "PURGE" */
	IS("XGET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", "evil.example");
	IS("PURGE /x HTTP/1.1\r\nHost: evil.example\r\n\r\n", "evil.example");
	IS("M-SEARCH * HTTP/1.1\r\nHost: evil.example\r\n\r\n", "evil.example");
	IS("X / HTTP/1.1\r\nHost: evil.example\r\n\r\n", "evil.example");
	assert_int_equal(fwd_extract_http_host(H("G(T / HTTP/1.1\r\nHost: a\r\n\r\n")), FWD_X_NONE);
	assert_int_equal(fwd_extract_http_host(H(" GET / HTTP/1.1\r\nHost: a\r\n\r\n")),
			 FWD_X_NONE);
	/* a cut request line is unreadable for a known method only: text that
	 * starts with a word and a space is no request */
	assert_int_equal(fwd_extract_http_host(H("GET /very/long/pa")), FWD_X_TRUNCATED);
	assert_int_equal(fwd_extract_http_host(H("Some text of a body")), FWD_X_NONE);
	/* empty lines before the request line (RFC 9112 2.2: nginx skips them) */
	IS("\r\n\r\nGET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", "evil.example");
	IS("\nGET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", "evil.example");
	/* an absolute-form target of any scheme: nginx and Go take its host */
	IS("GET ws://evil.example/ HTTP/1.1\r\nHost: good.example\r\n\r\n", "evil.example");
	IS("GET svn+ssh://evil.example:22/x HTTP/1.1\r\nHost: good.example\r\n\r\n",
	   "evil.example");
	IS("GET h1.x-y://evil.example HTTP/1.1\r\nHost: good.example\r\n\r\n", "evil.example");
	IS("GET /x?u=ws://evil.example HTTP/1.1\r\nHost: good.example\r\n\r\n", "good.example");
	IS("GET 1ws://evil.example/ HTTP/1.1\r\nHost: good.example\r\n\r\n", "good.example");
	IS("GET mailto:evil.example HTTP/1.1\r\nHost: good.example\r\n\r\n", "good.example");
	/* its authority read as Host's ('#' and '\\' in a target: Go and nginx
	 * answer 400) */
	IS("GET http://u:p@evil.example?@good.example/ HTTP/1.1\r\n\r\n", "evil.example");
	IS("GET http://evil.example#@good.example/ HTTP/1.1\r\n\r\n", "evil.example");
	/* spaces after the version, and more than one between the parts
	 * (nginx takes both) */
	IS("GET / HTTP/1.1  \r\nHost: evil.example\r\n\r\n", "evil.example");
	IS("GET   ws://evil.example/   HTTP/1.1 \r\nHost: good.example\r\n\r\n", "evil.example");
	/* CONNECT's authority-form: Go takes it as the Host */
	IS("CONNECT evil.example:443 HTTP/1.1\r\nHost: good.example\r\n\r\n", "evil.example");
	IS("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: good.example\r\n\r\n", "[2001:db8::1]");
	IS("CONNECT /x HTTP/1.1\r\nHost: good.example\r\n\r\n", "good.example");
	/* a request split before its Host: unreadable here, not "no Host" */
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\n")), FWD_X_TRUNCATED);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nAccept: */*\r\n")),
			 FWD_X_TRUNCATED);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n")),
			 FWD_X_NONE);
	/* blanks before the colon (RFC 9112 5.1 says refuse; nginx ignores the
	 * line): the proper Host decides; alone, it is the Host Apache's
	 * "Unsafe" mode and older servers serve */
	IS("GET / HTTP/1.1\r\nHost : good.example\r\nHost: evil.example\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHost: evil.example\r\nHost\t: good.example\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHost : evil.example\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHOST \t :\r\n evil.example\r\n\r\n", "evil.example");
	assert_int_equal(
		fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost : a.example\r\nHost : b\r\n\r\n")),
		FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost x: a.example\r\n\r\n")),
			 FWD_X_NONE);
	/* nginx reads every digit of the minor version (HTTP/1.10 is served
	 * as 1.1 is) and ends a header line at any number of CRs before its
	 * LF: both were read as no HTTP or MALFORMED, and passed every rule */
	IS("GET / HTTP/1.10\r\nHost: evil.example\r\n\r\n", "evil.example");
	IS("GET ws://evil.example/ HTTP/1.001 \r\nHost: good.example\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHost: evil.example\r\r\n\r\n", "evil.example");
	IS("GET / HTTP/1.1\r\nHost: evil.example \r\r\r\nAccept: */*\r\n\r\n", "evil.example");
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/1.1\r\nHost: evil\r.example\r\n\r\n")),
			 FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_http_host(H("GET / HTTP/2.10\r\nHost: evil.example\r\n\r\n")),
			 FWD_X_NONE);
#undef IS
#undef H
}

/* ---- the HTTP Host extractor against the line walk it replaced ----------------------- */

/* A method: one or more token bytes (RFC 9110 5.6.2), then a space. */
static size_t ref_method(const uint8_t *p, size_t len)
{
	size_t n = 0;

	while (n < len && p[n] < 0x7f &&
	       ((p[n] >= '0' && p[n] <= '9') || ((p[n] | 0x20) >= 'a' && (p[n] | 0x20) <= 'z') ||
		(p[n] && strchr("!#$%&'*+-.^_`|~", p[n]))))
		n++;
	return n > 0 && n < len && p[n] == ' ' ? n : 0;
}

/* A host as the extractor returns it: one trailing dot gone, printable,
 * lowercased, no byte a host may not hold (a literal's ':' aside). */
static int ref_copy(const uint8_t *s, size_t n, char *out, size_t outlen)
{
	int lit = n > 0 && s[0] == '[';

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || s[n - 1] == '.')
		return FWD_X_MALFORMED;
	if (n > 255 || n + 1 > outlen)
		return FWD_X_TOO_LONG;
	for (size_t i = 0; i < n; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return FWD_X_MALFORMED;
		out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
	}
	for (size_t i = lit; i < n - lit; i++)
		if (strchr("@/?#\"<>\\^`{|}[]", s[i]) || (s[i] == ':' && !lit))
			return FWD_X_MALFORMED;
	out[n] = '\0';
	return (int)n;
}

/* The line walk, one memchr a line, as fwd_extract_http_host was before it
 * looked only at the lines that matter: the reference. Empty lines before
 * the request line are skipped; a Host value continued on lines starting
 * with a blank (obs-fold) is joined; its authority ends at '/', '?', '#' or
 * '\\' and loses its userinfo; headers that do not end in the buffer and
 * hold no Host are TRUNCATED. */
static int ref_http_host(const uint8_t *p, size_t len, char *out, size_t outlen)
{
	const uint8_t *end = p + (len > 8192 ? 8192 : len), *line = p, *host = NULL, *lhost = NULL;
	size_t host_len = 0, lhost_len = 0, m;
	int first = 1;

	while (line < end && (*line == '\r' || *line == '\n'))
		line++;
	if ((m = ref_method(line, (size_t)(end - line))) == 0)
		return FWD_X_NONE;
	if (memchr(line, '\n', (size_t)(end - line)) == NULL) { /* the request line is cut */
		static const char *const known[] = {"GET ",   "POST ",	  "PUT ",
						    "HEAD ",  "DELETE ",  "OPTIONS ",
						    "PATCH ", "CONNECT ", "TRACE "};

		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strlen(known[k]) == m + 1 && memcmp(line, known[k], m + 1) == 0)
				return FWD_X_TRUNCATED;
		return FWD_X_NONE;
	}
	while (line < end) {
		const uint8_t *eol = memchr(line, '\n', (size_t)(end - line));
		const uint8_t *stop, *nc;

		if (eol == NULL)
			return host    ? ref_copy(host, host_len, out, outlen)
			       : lhost ? ref_copy(lhost, lhost_len, out, outlen)
				       : FWD_X_TRUNCATED;
		stop = eol > line && eol[-1] == '\r' ? eol - 1 : eol;
		if (stop == line) /* the empty line: end of the headers */
			return host    ? ref_copy(host, host_len, out, outlen)
			       : lhost ? ref_copy(lhost, lhost_len, out, outlen)
				       : FWD_X_NONE;
		if (first) {
			first = 0;
			while (stop > line + m && stop[-1] == ' ') /* spaces after the version */
				stop--;
			const uint8_t *mv = stop; /* the minor version's digits */

			while (mv > line + m && mv[-1] >= '0' && mv[-1] <= '9')
				mv--;
			if (mv == stop)
				mv = stop - 1;
			if (mv - line < (ptrdiff_t)m + 10 || memcmp(mv - 7, "HTTP/1.", 7))
				return FWD_X_NONE; /* not HTTP/1.x */
		} else if (stop - line >= 5 && (line[0] | 0x20) == 'h' && (line[1] | 0x20) == 'o' &&
			   (line[2] | 0x20) == 's' && (line[3] | 0x20) == 't' &&
			   (nc = line + 4 + strspn((const char *)line + 4, " \t")) < stop &&
			   *nc == ':') {
			/* "Host :" is a Host where there is no "Host:" */
			const uint8_t *v = nc + 1, *ve = stop,
				      **hp = nc > line + 4 ? &lhost : &host;
			size_t *hlp = nc > line + 4 ? &lhost_len : &host_len;
			int pieces;

			if (*hp)
				return FWD_X_MALFORMED; /* two Host headers */
			while (ve > v && ve[-1] == '\r') /* nginx: CRs, then LF */
				ve--;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			pieces = v < ve;
			while (eol + 1 < end && (eol[1] == ' ' || eol[1] == '\t')) { /* obs-fold */
				const uint8_t *c = eol + 1, *ce;

				if ((eol = memchr(c, '\n', (size_t)(end - c))) == NULL)
					return FWD_X_TRUNCATED;
				ce = eol[-1] == '\r' ? eol - 1 : eol;
				while (c < ce && (*c == ' ' || *c == '\t'))
					c++;
				while (ce > c && (ce[-1] == ' ' || ce[-1] == '\t'))
					ce--;
				if (c < ce) {
					if (pieces++)
						return FWD_X_MALFORMED;
					v = c;
					ve = ce;
				}
			}
			for (const uint8_t *c = v; c < ve; c++) { /* the authority's end */
				if (*c && strchr("/?#\\", *c)) {
					ve = c;
					break;
				}
			}
			for (const uint8_t *c = ve; c > v; c--) { /* after its last '@' */
				if (c[-1] == '@') {
					/* a ':' before it: two names (nginx's, a URL's) */
					if (memchr(v, ':', (size_t)(c - 1 - v)))
						return FWD_X_MALFORMED;
					v = c;
					break;
				}
			}
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
			*hp = v;
			*hlp = (size_t)(ve - v);
		}
		line = eol + 1;
	}
	return host    ? ref_copy(host, host_len, out, outlen)
	       : lhost ? ref_copy(lhost, lhost_len, out, outlen)
		       : FWD_X_TRUNCATED;
}

static uint32_t xs = 2463534242u;

static uint32_t xrnd(void)
{
	xs ^= xs << 13;
	xs ^= xs >> 17;
	xs ^= xs << 5;
	return xs;
}

/* Requests made of pieces that matter to the search (Host in any case, lines
 * starting with 'h', bare CR, LF-only ends, empty lines, duplicates, IPv6
 * literals, ports, lines longer than 16 bytes), cut at every length and
 * with a byte changed: the same answer and name as the line walk. */
static void test_http_host_against_line_walk(void **state)
{
	static const char *const lines[] = {
		"Host: example.com",
		"host:a.b",
		"HOST:  Api.Example.COM:8080 ",
		"Host: [2001:db8::1]:443",
		"Host: [::1",
		"Host:",
		"Host: a b",
		"hostname: x",
		"h",
		"H: y",
		"Accept: */*",
		"User-Agent: some/long-agent-string 1.2.3 (with parens)",
		"\r",
		"X-h: hhhh\nhost",
		"Connection: keep-alive",
		"hOsT:\tx.example\t",
		"Host: a.example:80:90",
		"Host: u@A.example.:8080/x?y",
		"Host: u:p@A.example",
		"Host: a.example\\@b#c",
		"Host:",
		" folded.example ",
		"\tx",
		"Host: e.example.",
		"Host : loose.example",
		"HOST\t:loose.example",
		""};
	static const char *const firsts[] = {
		"GET / HTTP/1.1",      "POST /a/long/path?q=1 HTTP/1.0",
		"GET / HTTP/2.0",      "HEAD /x HTTP/1.1",
		"PUT / HTTP/1.",       "\r\nXGET / HTTP/1.1",
		"M-SEARCH * HTTP/1.1", "GET  /x  HTTP/1.1  "};
	char a[FWD_X_NAME_MAX], b[FWD_X_NAME_MAX];
	uint8_t req[1200];
	unsigned compared = 0, hosts = 0, folded = 0, userinfo = 0, loose = 0;

	(void)state;
	for (int t = 0; t < 3000; t++) {
		size_t n = 0;
		const char *f = firsts[xrnd() % (sizeof(firsts) / sizeof(firsts[0]))];

		memcpy(req, f, strlen(f));
		n += strlen(f);
		for (int k = (int)(xrnd() % 7); k >= 0 && n < 1000; k--) {
			const char *l = lines[xrnd() % (sizeof(lines) / sizeof(lines[0]))];

			memcpy(req + n, xrnd() % 4 ? "\r\n" : "\n", 2);
			n += req[n] == '\r' ? 2 : 1;
			memcpy(req + n, l, strlen(l));
			n += strlen(l);
		}
		if (xrnd() % 3) { /* the headers' end, maybe more after it */
			memcpy(req + n, "\r\n\r\nHost: late\r\n", 16);
			n += xrnd() % 2 ? 4 : 16;
		}
		for (size_t cut = 0; cut <= n; cut += 1 + (cut > 64 ? xrnd() % 7 : 0)) {
			uint8_t *c = malloc(
				cut ? cut
				    : 1); /* exactly cut bytes: the sanitizers see a read past */
			int x, y;

			memcpy(c, req, cut);
			if (cut && xrnd() % 4 == 0) /* a byte changed */
				c[xrnd() % cut] = (uint8_t) "\n\rhH: x\t[@/."[xrnd() % 13];
			x = fwd_extract_http_host(c, cut, a, sizeof(a));
			y = ref_http_host(c, cut, b, sizeof(b));
			if (x != y || (x > 0 && memcmp(a, b, (size_t)x) != 0))
				fail_msg("request %d cut at %zu: %d '%s', line walk %d '%s'", t,
					 cut, x, x > 0 ? a : "", y, y > 0 ? b : "");
			compared++;
			hosts += x > 0;
			if (x > 0 && memcmp(a, "loose.example", 13) == 0)
				loose++;
			if (x > 0 && memcmp(a, "folded.example", 14) == 0)
				folded++;
			if (x > 0 && memcmp(a, "a.example", 10) == 0 && memmem(c, cut, "u@", 2))
				userinfo++;
			free(c);
		}
	}
	/* neither side trivially empty */
	assert_true(hosts > compared / 20 && hosts < compared);
	assert_true(folded > 50 && userinfo > 50 && loose > 50);
}

/* Every byte value at every position of Host values of 1..40 bytes (the
 * authority is read 16 or 8 bytes at a time, then byte by byte), a port
 * and userinfo around some: the same answer as the line walk. */
static void test_host_every_byte(void **state)
{
	char a[FWD_X_NAME_MAX], b[FWD_X_NAME_MAX], req[128];
	unsigned hosts = 0;

	(void)state;
	for (size_t len = 1; len <= 40; len++)
		for (size_t pos = 0; pos < len; pos++)
			for (unsigned c = 0; c < 256; c++) {
				size_t n = (size_t)snprintf(req, sizeof(req),
							    "GET / HTTP/1.1\r\nHost: ");
				int x, y;

				for (size_t k = 0; k < len; k++)
					req[n + k] = k == pos ? (char)c
							      : "aZ9.-:@x"[(k * 5 + len) %
									   (len % 3 ? 5 : 8)];
				n += len;
				memcpy(req + n, "\r\n\r\n", 4);
				n += 4;
				x = fwd_extract_http_host((const uint8_t *)req, n, a, sizeof(a));
				y = ref_http_host((const uint8_t *)req, n, b, sizeof(b));
				if (x != y || (x > 0 && memcmp(a, b, (size_t)x + 1) != 0))
					fail_msg("length %zu, byte %u at %zu: %d '%s', line walk "
						 "%d '%s'",
						 len, c, pos, x, x > 0 ? a : "", y, y > 0 ? b : "");
				hosts += x > 0;
			}
	/* 42,133 of 209,920: a ':' before an '@' makes many unreadable. */
	assert_true(hosts > 40000);
}

static void test_dns(void **state)
{
	char out[FWD_X_NAME_MAX];
	uint8_t q[600] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
	size_t n;

	(void)state;
	memcpy(q + 12, "\003WwW\007Example\003COM\000", 17);
	assert_int_equal(fwd_extract_dns_qname(q, 29 + 4, out, sizeof(out)), 15);
	assert_string_equal(out, "www.example.com");
	q[12] = 0; /* the root */
	assert_int_equal(fwd_extract_dns_qname(q, 17, out, sizeof(out)), 1);
	assert_string_equal(out, ".");
	q[12] = 0xc0; /* a compression pointer to itself: refused, never followed */
	q[13] = 12;
	assert_int_equal(fwd_extract_dns_qname(q, 20, out, sizeof(out)), FWD_X_MALFORMED);
	q[12] = 0x40; /* reserved label type */
	assert_int_equal(fwd_extract_dns_qname(q, 20, out, sizeof(out)), FWD_X_MALFORMED);
	q[12] = 5; /* label past the end */
	assert_int_equal(fwd_extract_dns_qname(q, 15, out, sizeof(out)), FWD_X_TRUNCATED);
	n = 12; /* 5 x 63-byte labels: 320 bytes, over 255 */
	for (int l = 0; l < 5; l++) {
		q[n++] = 63;
		memset(q + n, 'a', 63);
		n += 63;
	}
	q[n++] = 0;
	assert_int_equal(fwd_extract_dns_qname(q, n, out, sizeof(out)), FWD_X_TOO_LONG);
	q[5] = 0; /* no question */
	assert_int_equal(fwd_extract_dns_qname(q, n, out, sizeof(out)), FWD_X_NONE);
	q[5] = 1;
	q[2] = 0x28; /* opcode UPDATE */
	assert_int_equal(fwd_extract_dns_qname(q, n, out, sizeof(out)), FWD_X_NONE);
}

/*
 * A hostile sender's DNS questions: compression pointers followed as a
 * resolver follows them (dnsmasq: to any offset, forward too), loops and
 * chains refused, the name's limits kept.
 */
static void test_dns_hostile(void **state)
{
	char out[FWD_X_NAME_MAX];
	uint8_t q[1200] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1};
	size_t n;

	(void)state;
	/* "www" then a pointer forward, past the question, into an additional
	 * record's data: dnsmasq resolves www.evil.example */
	memcpy(q + 12, "\003www\300\040\000\001\000\001", 10);
	memset(q + 22, 0, 10);
	memcpy(q + 32, "\004Evil\007example\000", 14);
	assert_int_equal(fwd_extract_dns_qname(q, 46, out, sizeof(out)), 16);
	assert_string_equal(out, "www.evil.example");
	/* a pointer alone, and one to the header (a backward pointer, as BIND
	 * takes them: offset 4 is QDCOUNT's high byte, 0: the name ends) */
	memcpy(q + 12, "\300\040", 2);
	assert_int_equal(fwd_extract_dns_qname(q, 46, out, sizeof(out)), 12);
	assert_string_equal(out, "evil.example");
	memcpy(q + 12, "\003www\300\004", 6);
	assert_int_equal(fwd_extract_dns_qname(q, 46, out, sizeof(out)), 3);
	assert_string_equal(out, "www");
	/* out of the message, cut, a loop */
	memcpy(q + 12, "\003www\300\056", 6);
	assert_int_equal(fwd_extract_dns_qname(q, 46, out, sizeof(out)), FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_dns_qname(q, 17, out, sizeof(out)), FWD_X_TRUNCATED);
	memcpy(q + 12, "\003www\300\020", 6); /* to itself */
	assert_int_equal(fwd_extract_dns_qname(q, 46, out, sizeof(out)), FWD_X_MALFORMED);
	/* a chain of pointers, each to the next, then the name: dnsmasq
	 * follows 255 (a chain of 65 was MALFORMED, and passed every rule
	 * though dnsmasq resolves it); 256 is a loop's */
	for (size_t k = 0; k < 256; k++) {
		q[12 + 2 * k] = (uint8_t)(0xc0 | (14 + 2 * k) >> 8);
		q[13 + 2 * k] = (uint8_t)(14 + 2 * k);
	}
	memcpy(q + 524, "\004evil\000", 6);
	assert_int_equal(fwd_extract_dns_qname(q, 530, out, sizeof(out)), FWD_X_MALFORMED);
	memcpy(q + 522, "\004evil\000", 6); /* 255 pointers, then the name */
	assert_int_equal(fwd_extract_dns_qname(q, 530, out, sizeof(out)), 4);
	assert_string_equal(out, "evil");
	q[12 + 2 * 64] = 4; /* 64 pointers, then the name */
	memcpy(q + 141, "\004evil\000", 6);
	q[13 + 2 * 63] = 141;
	assert_int_equal(fwd_extract_dns_qname(q, 148, out, sizeof(out)), 4);
	assert_string_equal(out, "evil");
	/* a loop that grows the name: past 255 bytes, TOO_LONG */
	q[12] = 63;
	memset(q + 13, 'a', 63);
	q[76] = 0xc0;
	q[77] = 12;
	assert_int_equal(fwd_extract_dns_qname(q, 80, out, sizeof(out)), FWD_X_TOO_LONG);
	/* labels over 63 (0x40..0xbf: no such label type), a pointer to one */
	memcpy(q + 12, "\100", 1);
	assert_int_equal(fwd_extract_dns_qname(q, 80, out, sizeof(out)), FWD_X_MALFORMED);
	memcpy(q + 12, "\300\017\000\100", 4);
	assert_int_equal(fwd_extract_dns_qname(q, 80, out, sizeof(out)), FWD_X_MALFORMED);
	/* two questions: the first (resolvers answer FORMERR to more than one) */
	n = 12;
	memcpy(q + n, "\004EVIL\007example\000\000\001\000\001", 18);
	n += 18;
	memcpy(q + n, "\004good\007example\000\000\001\000\001", 18);
	n += 18;
	q[5] = 2;
	assert_int_equal(fwd_extract_dns_qname(q, n, out, sizeof(out)), 12);
	assert_string_equal(out, "evil.example");
}

/* The byte rule a name's copy applies, one byte at a time: printable ASCII
 * without the space (and, in a DNS label, without a dot), lowercased. */
static int ref_byte(uint8_t c, int nodot)
{
	if (c <= 0x20 || c >= 0x7f || (nodot && c == '.'))
		return -1;
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Every byte value at every position of names of 1..40 bytes (the copy
 * works 8 bytes at a time with an overlapping last word, so every length
 * and position class is covered), through the SNI and the DNS extractor,
 * against the byte rule above. */
static void test_every_byte_everywhere(void **state)
{
	struct buf h;
	char out[FWD_X_NAME_MAX], name[64], want[64];
	uint8_t q[128] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};

	(void)state;
	for (size_t len = 1; len <= 40; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (unsigned c = 0; c < 256; c++) {
				int ok = 1, r;

				for (size_t k = 0; k < len; k++) {
					/* the rest: letters of both cases, digits, '-' */
					uint8_t b =
						k == pos ? (uint8_t)c
							 : (uint8_t) "Az09-mQ"[(k * 3 + len) % 7];

					name[k] = (char)b;
				}
				for (size_t k = 0; k < len && ok; k++)
					ok = (r = ref_byte((uint8_t)name[k], 0)) >= 0 &&
					     (want[k] = (char)r, 1);
				client_hello(&h, name, len, 0);
				r = fwd_extract_sni(h.b, h.n, out, sizeof(out));
				if (ok && name[len - 1] == '.') { /* one trailing dot goes */
					assert_int_equal(r,
							 len > 1 ? (int)len - 1 : FWD_X_MALFORMED);
					if (len > 1)
						assert_memory_equal(out, want, len - 1);
				} else if (ok) {
					assert_int_equal(r, (int)len);
					assert_memory_equal(out, want, len);
					assert_int_equal(out[len], '\0');
				} else {
					assert_int_equal(r, FWD_X_MALFORMED);
				}
				/* the same bytes as one DNS label, where a dot is refused too */
				ok = 1;
				for (size_t k = 0; k < len && ok; k++)
					ok = (r = ref_byte((uint8_t)name[k], 1)) >= 0 &&
					     (want[k] = (char)r, 1);
				q[12] = (uint8_t)len;
				memcpy(q + 13, name, len);
				q[13 + len] = 0;
				memset(q + 14 + len, 0, 4);
				r = fwd_extract_dns_qname(q, 18 + len, out, sizeof(out));
				if (ok) {
					assert_int_equal(r, (int)len);
					assert_memory_equal(out, want, len);
				} else {
					assert_int_equal(r, FWD_X_MALFORMED);
				}
			}
		}
	}
}

/* The DNS extractor as it was written first, label by label with the
 * byte rule above: the reference the span-at-once one must agree with. */
static int ref_dns_qname(const uint8_t *p, size_t len, char *out, size_t outlen)
{
	size_t o = 0, i = 12;

	if (outlen < 2)
		return FWD_X_TOO_LONG;
	if (len < 12)
		return FWD_X_TRUNCATED;
	if ((p[4] << 8 | p[5]) == 0 || (p[2] & 0x78) != 0)
		return FWD_X_NONE;
	for (int labels = 0, hops = 0; labels < 128; labels++) {
		uint8_t l;

		if (i >= len)
			return FWD_X_TRUNCATED;
		l = p[i++];
		if ((l & 0xc0) == 0xc0) { /* a pointer, followed: not a label */
			if (i >= len)
				return FWD_X_TRUNCATED;
			i = (size_t)(l & 0x3f) * 256 + p[i];
			if (++hops > 255 || i >= len)
				return FWD_X_MALFORMED;
			labels--;
			continue;
		}
		if (l == 0) {
			if (o == 0) {
				out[0] = '.';
				out[1] = '\0';
				return 1;
			}
			out[o - 1] = '\0';
			return (int)(o - 1);
		}
		if (l & 0xc0)
			return FWD_X_MALFORMED;
		if (i + l > len)
			return FWD_X_TRUNCATED;
		if (o + l + 1 > 255 || o + l + 1 > outlen - 1)
			return FWD_X_TOO_LONG;
		for (size_t k = 0; k < l; k++) {
			int r = ref_byte(p[i + k], 1);

			if (r < 0)
				return FWD_X_MALFORMED;
			out[o + k] = (char)r;
		}
		o += l;
		out[o++] = '.';
		i += l;
	}
	return FWD_X_TOO_LONG;
}

/* Random questions against the reference: label counts and lengths up to
 * the limits and past them, a bad byte, a pointer or a zero placed
 * anywhere, the payload cut anywhere, output buffers of every size. */
static void test_dns_against_reference(void **state)
{
	uint8_t q[600];
	char out[FWD_X_NAME_MAX], want[FWD_X_NAME_MAX];

	(void)state;
	for (int iter = 0; iter < 400000; iter++) {
		size_t n = 12, len, outlen;
		unsigned nl;
		int r, w;

		memset(q, 0, 12);
		q[5] = 1;
		nl = (unsigned)(xrnd() % 8 == 0 ? xrnd() % 140 : xrnd() % 6);
		for (unsigned k = 0; k < nl && n + 66 < sizeof(q); k++) {
			unsigned l = (unsigned)(xrnd() % 4 == 0 ? xrnd() % 64 : 1 + xrnd() % 12);

			q[n++] = (uint8_t)l;
			for (unsigned b = 0; b < l; b++)
				q[n++] = (uint8_t) "abcXYZ019-_"[xrnd() % 11];
		}
		q[n++] = 0;
		q[n++] = 0;
		q[n++] = 1;
		if (xrnd() % 3 == 0) /* one byte anywhere in the name made anything */
			q[12 + xrnd() % (n - 12)] = (uint8_t)xrnd();
		len = xrnd() % 4 == 0 ? xrnd() % (n + 1) : n;
		outlen = xrnd() % 4 == 0 ? xrnd() % sizeof(out) : sizeof(out);
		r = fwd_extract_dns_qname(q, len, out, outlen);
		w = ref_dns_qname(q, len, want, outlen);
		if (r != w)
			fail_msg("iteration %d: %d, the reference %d", iter, r, w);
		if (r > 0)
			assert_memory_equal(out, want, (size_t)r + 1);
	}
}

/* Every name of a payload as fwd_extract_http_next or fwd_extract_dns_tcp_next
 * yields them, "a,b": "-" for a request or message without one, "!t", "!m",
 * "!l", "!n", "!u" for TRUNCATED, MALFORMED, TOO_LONG, TOO_MANY, UNSUPPORTED
 * (each ends it). */
static const char *all_names(int dns, const void *p, size_t len)
{
	static char got[64 * FWD_X_NAME_MAX];
	struct fwd_x_iter it = {0};
	size_t o = 0;

	got[0] = '\0';
	do {
		char out[FWD_X_NAME_MAX];
		int rc = dns ? fwd_extract_dns_tcp_next(p, len, &it, out, sizeof(out))
			     : fwd_extract_http_next(p, len, &it, out, sizeof(out));

		assert_true(it.off <= len);
		o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s", o ? "," : "",
				      rc > 0			? out
				      : rc == FWD_X_NONE	? "-"
				      : rc == FWD_X_TRUNCATED	? "!t"
				      : rc == FWD_X_MALFORMED	? "!m"
				      : rc == FWD_X_TOO_LONG	? "!l"
				      : rc == FWD_X_TOO_MANY	? "!n"
				      : rc == FWD_X_UNSUPPORTED ? "!u"
								: "?");
		if (rc < 0)
			assert_int_equal(it.off, len); /* an error ends the walk */
	} while (it.off < len);
	return got;
}

#define REQ(host) "GET / HTTP/1.1\r\nHost: " host "\r\n\r\n"

/* Header lines "X-Pad-N: " and 1,000 bytes each, N from @from to @to - 1,
 * written at @b of @buf (40,000 bytes); @return the new end. */
static size_t pad_headers(char *buf, size_t b, int from, int to)
{
	for (int i = from; i < to; i++) {
		b += (size_t)snprintf(buf + b, 40000 - b, "X-Pad-%d: ", i);
		memset(buf + b, 'p', 1000);
		b += 1000;
		b += (size_t)snprintf(buf + b, 40000 - b, "\r\n");
	}
	return b;
}

/*
 * Pipelined HTTP/1.x requests in one segment: nginx serves each, so each
 * one's name is read (a hostile probe: a second request for evil.example
 * behind one for good.example passed a drop rule on evil.example).
 */
static void test_http_pipelined(void **state)
{
	char buf[4096];
	size_t n = 0;
#define ALL(s) all_names(0, s, strlen(s))

	(void)state;
	/* the first request alone: fwd_extract_http_host's outcome */
	assert_string_equal(ALL(REQ("good.example")), "good.example");
	assert_string_equal(ALL(REQ("good.example") REQ("evil.example")),
			    "good.example,evil.example");
	assert_string_equal(ALL(REQ("a.example") "\r\n" REQ("b.example") REQ("Evil.Example.")),
			    "a.example,b.example,evil.example");
	/* a body (Content-Length) between them: its bytes are no request,
	 * whatever they hold */
	assert_string_equal(
		ALL("POST /f HTTP/1.1\r\nHost: good.example\r\nContent-Length: "
		    "38\r\n\r\nGET / HTTP/1.1\r\nHost: hidden.example\r\n" REQ("evil.example")),
		"good.example,evil.example");
	assert_string_equal(ALL("POST /f HTTP/1.1\r\nHost: good.example\r\ncontent-length:  0 "
				"\r\n\r\n" REQ("evil.example")),
			    "good.example,evil.example");
	/* chunked: the chunks, their extensions, the last chunk, a trailer */
	assert_string_equal(ALL("POST /f HTTP/1.1\r\nHost: good.example\r\nTransfer-Encoding: "
				"Chunked\r\n\r\n5;x=y\r\nHost:\r\n1A\r\nGET / HTTP/1.1\r\nHost: "
				"x\r\n\r\n0\r\nT: 1\r\n\r\n" REQ("evil.example")),
			    "good.example,evil.example");
	/* a body past the segment: the rest is body, nothing more is read */
	assert_string_equal(ALL("POST /f HTTP/1.1\r\nHost: good.example\r\nContent-Length: "
				"500\r\n\r\n" REQ("x.example")),
			    "good.example");
	assert_string_equal(ALL("POST /f HTTP/1.1\r\nHost: good.example\r\nTransfer-Encoding: "
				"chunked\r\n\r\n100\r\n" REQ("x.example")),
			    "good.example");
	/* a CONNECT's tunnel follows its headers: no request */
	assert_string_equal(ALL("CONNECT good.example:443 HTTP/1.1\r\n\r\n" REQ("x.example")),
			    "good.example");
	/* a request without a name among them: no name, and on */
	assert_string_equal(ALL("GET / HTTP/1.0\r\n\r\n" REQ("evil.example")), "-,evil.example");
	/* the target's host, then a request */
	assert_string_equal(
		ALL("GET http://a.example/ HTTP/1.1\r\nHost: b\r\n\r\n" REQ("evil.example")),
		"a.example,evil.example");
	/* a later request cut by the segment's end: TRUNCATED (its Host may
	 * come next), or its Host when that is here */
	assert_string_equal(ALL(REQ("good.example") "GET / HTTP/1.1\r\nAccept: */*\r\n"),
			    "good.example,!t");
	assert_string_equal(ALL(REQ("good.example") "GET / HT"), "good.example,!t");
	assert_string_equal(ALL(REQ("good.example") "GET / HTTP/1.1\r\nHost: evil.example\r\n"),
			    "good.example,evil.example");
	/* a malformed later request */
	assert_string_equal(ALL(REQ("good.example") "GET / HTTP/1.1\r\nHost: a\r\nHost: "
						    "b\r\n\r\n" REQ("c")),
			    "good.example,!m");
	/* bytes that start no request: NONE, as at the start (a server
	 * answers 400 and closes), and the walk ends */
	assert_string_equal(ALL(REQ("good.example") "\x16\x03\x01 junk\r\n" REQ("e")),
			    "good.example,-");
	assert_string_equal(ALL(REQ("good.example") "GET / HTTP/2.0\r\n\r\n" REQ("e")),
			    "good.example,-");
	assert_string_equal(ALL(REQ("good.example") "RFWD00000012"), "good.example,-");
	/* a body's framing that cannot be read, when bytes follow it */
	assert_string_equal(ALL("POST / HTTP/1.1\r\nHost: good.example\r\nContent-Length: "
				"1\r\nContent-Length: 1\r\n\r\nx" REQ("evil.example")),
			    "good.example,!m");
	assert_string_equal(ALL("POST / HTTP/1.1\r\nHost: good.example\r\nContent-Length: "
				"1x\r\n\r\nx" REQ("evil.example")),
			    "good.example,!m");
	assert_string_equal(ALL("POST / HTTP/1.1\r\nHost: good.example\r\nContent-Length: "
				"1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" REQ("e")),
			    "good.example,!m");
	assert_string_equal(ALL("POST / HTTP/1.1\r\nHost: good.example\r\nTransfer-Encoding: "
				"gzip\r\n\r\nxx" REQ("evil.example")),
			    "good.example,!m");
	assert_string_equal(ALL("POST / HTTP/1.1\r\nHost: good.example\r\nTransfer-Encoding: "
				"chunked\r\n\r\nzz\r\n" REQ("evil.example")),
			    "good.example,!m");
	/* ... but not when nothing follows the headers */
	assert_string_equal(ALL("POST / HTTP/1.1\r\nHost: good.example\r\nContent-Length: "
				"1\r\nContent-Length: 1\r\n\r\n"),
			    "good.example");
	/* Long headers (jumbo frames): 9 KB of them still let the next request
	 * be read (nginx serves up to 32 KiB; 8 KiB hid it, a probe); past
	 * 32 KiB with bytes after, the rest is TOO_LONG, and a Host in the
	 * first 32 KiB is still read; headers that end the segment end it */
	{
		static char big[40000];
		size_t b = (size_t)snprintf(big, sizeof(big),
					    "GET / HTTP/1.1\r\nHost: good.example\r\n");

		b = pad_headers(big, b, 0, 9);
		assert_true(b > 9000);
		memcpy(big + b, "\r\n" REQ("evil.example"), sizeof("\r\n" REQ("evil.example")));
		assert_string_equal(all_names(0, big, strlen(big)), "good.example,evil.example");
		b = pad_headers(big, b, 9, 33);
		assert_true(b > 32768);
		memcpy(big + b, "\r\n" REQ("evil.example"), sizeof("\r\n" REQ("evil.example")));
		assert_string_equal(all_names(0, big, strlen(big)), "good.example,!l");
		assert_string_equal(all_names(0, big, 32768), "good.example");
		memcpy(big, "GET / HTTP/1.1\r\nX-Hos: good.example", 35); /* no Host in them */
		assert_string_equal(all_names(0, big, strlen(big)), "!t");
	}
	/* HTTP/2 with prior knowledge: its preface makes the field unreadable
	 * (an h2c request's :authority is HPACK), first or later */
	assert_string_equal(ALL("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4"), "!u");
	assert_int_equal(fwd_extract_http_host((const uint8_t *)"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
					       24, buf, sizeof(buf)),
			 FWD_X_UNSUPPORTED);
	assert_string_equal(ALL(REQ("good.example") "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
			    "good.example,!u");
	assert_string_equal(ALL("PRI * HTTP/2.0\r\n"), "!u");
	/* cut by the segment's end, from "PRI" on: a preface written in two
	 * pieces (its first was read as no request, a review) */
	assert_string_equal(ALL("PRI * HTTP/2.0"), "!u");
	assert_string_equal(ALL("PRI"), "!u");
	assert_string_equal(ALL("\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
			    "!u"); /* after empty lines */
	assert_string_equal(ALL("PR"), "-");
	assert_string_equal(ALL("PRIX / HTTP/1.1\r\nHost: a\r\n\r\n"), "a");
	/* FWD_X_MAX_NAMES requests are read; one more is TOO_MANY */
	for (int i = 0; i < FWD_X_MAX_NAMES; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, REQ("h%d.example"), i);
	assert_string_equal(all_names(0, buf, n),
			    "h0.example,h1.example,h2.example,h3.example,h4.example,h5.example,"
			    "h6.example,h7.example,h8.example,h9.example,h10.example,h11.example,"
			    "h12.example,h13.example,h14.example,h15.example");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, REQ("evil.example"));
	assert_string_equal(all_names(0, buf, n),
			    "h0.example,h1.example,h2.example,h3.example,h4.example,h5.example,"
			    "h6.example,h7.example,h8.example,h9.example,h10.example,h11.example,"
			    "h12.example,h13.example,h14.example,h15.example,!n");
#undef ALL
}

/* HTTP/0.9: "GET target" and no version; nginx serves an absolute-form
 * target from its host's server block, as it does HTTP/1.x's. */
static void test_http09(void **state)
{
	char out[FWD_X_NAME_MAX];
#define H(s) (const uint8_t *)(s), strlen(s), out, sizeof(out)

	(void)state;
	assert_int_equal(fwd_extract_http_host(H("GET http://Evil.Example/\r\n")), 12);
	assert_string_equal(out, "evil.example");
	assert_int_equal(fwd_extract_http_host(H("GET  https://u@evil.example.:8443/x?y  \n")), 12);
	assert_string_equal(out, "evil.example");
	/* as an HTTP/1.x absolute-form target is read */
	assert_int_equal(fwd_extract_http_host(H("GET http://evil.example/ HTTP/1.1\r\n\r\n")), 12);
	assert_string_equal(out, "evil.example");
	/* origin-form: no name (nginx: the default server) */
	assert_int_equal(fwd_extract_http_host(H("GET /\r\n")), FWD_X_NONE);
	assert_int_equal(fwd_extract_http_host(H("GET \r\n")), FWD_X_NONE); /* the fuzzer's */
	assert_int_equal(fwd_extract_http_host(H("GET /index.html\r\n")), FWD_X_NONE);
	/* no host in the target, a bad one: as HTTP/1.x's */
	assert_int_equal(fwd_extract_http_host(H("GET http:///x\r\n")), FWD_X_MALFORMED);
	assert_int_equal(fwd_extract_http_host(H("GET http://ev\"il/\r\n")), FWD_X_MALFORMED);
	/* GET only (nginx: "invalid method in HTTP/0.9 request"), one target */
	assert_int_equal(fwd_extract_http_host(H("POST http://evil.example/\r\n")), FWD_X_NONE);
	assert_int_equal(fwd_extract_http_host(H("GET http://evil.example/ HTTP/2.0\r\n")),
			 FWD_X_NONE);
	/* cut before its line end: TRUNCATED, as before */
	assert_int_equal(fwd_extract_http_host(H("GET http://evil.exa")), FWD_X_TRUNCATED);
	/* the connection closes after a 0.9 response: nothing after it is read */
	assert_string_equal(all_names(0, "GET http://a.example/\r\n" REQ("b.example"),
				      strlen("GET http://a.example/\r\n" REQ("b.example"))),
			    "a.example");
	/* after a request: a 0.9 one is a request too */
	assert_string_equal(all_names(0, REQ("a.example") "GET http://evil.example/\r\n",
				      strlen(REQ("a.example") "GET http://evil.example/\r\n")),
			    "a.example,evil.example");
#undef H
}

/* One DNS-over-TCP message: its two-byte length, then a query for @name
 * (dotted, no trailing dot). */
static size_t dns_tcp_msg(uint8_t *p, const char *name)
{
	static const uint8_t hdr[12] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
	size_t n = 14;

	memcpy(p + 2, hdr, 12);
	for (const char *l = name; *l;) {
		size_t k = strcspn(l, ".");

		p[n++] = (uint8_t)k;
		memcpy(p + n, l, k);
		n += k;
		l += k + (l[k] == '.');
	}
	p[n++] = 0;
	memcpy(p + n, "\x00\x01\x00\x01", 4); /* QTYPE A, QCLASS IN */
	n += 4;
	p[0] = (uint8_t)((n - 2) >> 8);
	p[1] = (uint8_t)(n - 2);
	return n;
}

/* DNS over TCP: several messages in one segment, each after its length
 * (RFC 7766 6.2.1.1: clients pipeline queries); a resolver answers each. */
static void test_dns_tcp_several(void **state)
{
	uint8_t b[4096];
	size_t n = 0, one;

	(void)state;
	n = dns_tcp_msg(b, "good.example");
	assert_string_equal(all_names(1, b, n), "good.example");
	n += dns_tcp_msg(b + n, "Evil.Example");
	assert_string_equal(all_names(1, b, n), "good.example,evil.example");
	n += dns_tcp_msg(b + n, "c.example");
	assert_string_equal(all_names(1, b, n), "good.example,evil.example,c.example");
	/* a later message cut by the segment's end: read as far as it goes */
	one = dns_tcp_msg(b, "good.example");
	n = one + dns_tcp_msg(b + one, "evil.example");
	assert_string_equal(all_names(1, b, n - 4), "good.example,evil.example");
	assert_string_equal(all_names(1, b, one + 8), "good.example,!t");
	assert_string_equal(all_names(1, b, one + 1), "good.example,!t");
	/* a message's length bounds its name: one cut by its own length */
	b[1] = 14;
	assert_string_equal(all_names(1, b, one), "!t");
	b[1] = (uint8_t)(one - 2);
	/* a message that is no query: no name, and on */
	b[4] = 0x28; /* opcode UPDATE */
	assert_string_equal(all_names(1, b, n), "-,evil.example");
	b[4] = 1;
	/* FWD_X_MAX_NAMES messages are read; one more is TOO_MANY */
	n = 0;
	for (int i = 0; i < FWD_X_MAX_NAMES; i++)
		n += dns_tcp_msg(b + n, "a.example");
	assert_int_equal(strlen(all_names(1, b, n)), FWD_X_MAX_NAMES * 10 - 1);
	n += dns_tcp_msg(b + n, "evil.example");
	assert_non_null(strstr(all_names(1, b, n), "a.example,!n"));
	assert_null(strstr(all_names(1, b, n), "evil"));
}

/* A name given by hand (explain) reads as the same name in a packet does:
 * each name below in a ClientHello, a Host header and a DNS query
 * (labels split at its dots) against fwd_extract_given(). Explain once
 * kept "example.in." and "a b", which the fast path reads as example.in
 * and as nothing (malformed). */
static void test_given_names_read_as_packets_are(void **state)
{
	static const char *const names[] = {
		"api.example.in",
		"API.Example.IN.",
		"a b",
		"a..",
		".",
		"a.",
		"x",
		"tab\there",
		"bad\x01byte",
		"u\xc3\xa9.example",
		"shop.example:80",
		"user@shop.example",
		"[2001:db8::1]:443",
		"a..b",
		"-.example",
		"a.b.c.d.e.f.g",
	};
	char lab64[80], big[300];
	struct buf h;
	char want[FWD_X_NAME_MAX], got[FWD_X_NAME_MAX];
	uint8_t q[700];
	int rw, rg;

	(void)state;
	memset(lab64, 'a', 64);
	strcpy(lab64 + 64, ".example");
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) + 2; i++) {
		const char *s = i < sizeof(names) / sizeof(names[0])	? names[i]
				: i == sizeof(names) / sizeof(names[0]) ? lab64
									: big;
		size_t n = strlen(s), m;
		char req[400];

		/* SNI */
		client_hello(&h, s, n, 0);
		rw = fwd_extract_sni(h.b, h.n, want, sizeof(want));
		rg = fwd_extract_given(FWD_X_SNI, s, n, got, sizeof(got));
		assert_int_equal(rg, rw);
		if (rw > 0)
			assert_string_equal(got, want);
		/* Host */
		m = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", s);
		if (m < sizeof(req)) {
			rw = fwd_extract_http_host((const uint8_t *)req, m, want, sizeof(want));
			rg = fwd_extract_given(FWD_X_HOST, s, n, got, sizeof(got));
			assert_int_equal(rg, rw == FWD_X_NONE ? FWD_X_MALFORMED : rw);
			if (rw > 0)
				assert_string_equal(got, want);
		}
		/* DNS: the wire form of the name's labels (a trailing dot ends
		 * them, "." is the root); an empty or over-long label has no
		 * wire form: the given name is refused as malformed */
		rg = fwd_extract_given(FWD_X_QNAME, s, n, got, sizeof(got));
		{
			size_t k = 12, ok = 1;
			const char *l = s;

			memset(q, 0, 12);
			q[5] = 1; /* one question */
			if (strcmp(s, ".") != 0)
				while (*l && ok) {
					size_t len = strcspn(l, ".");

					ok = len >= 1 && len <= 63 && k + len + 2 < sizeof(q);
					if (!ok)
						break;
					q[k++] = (uint8_t)len;
					memcpy(q + k, l, len);
					k += len;
					l += len + (l[len] == '.');
				}
			if (!ok) {
				assert_int_equal(rg, n > 254 ? FWD_X_TOO_LONG : FWD_X_MALFORMED);
				continue;
			}
			q[k++] = 0;
			memcpy(q + k, "\x00\x01\x00\x01", 4);
			rw = fwd_extract_dns_qname(q, k + 4, want, sizeof(want));
			assert_int_equal(rg, rw);
			if (rw > 0)
				assert_string_equal(got, want);
		}
	}
	assert_string_equal(fwd_extract_error_name(FWD_X_MALFORMED), "malformed");
	assert_string_equal(fwd_extract_error_name(FWD_X_UNSUPPORTED), "unsupported");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sni),
		cmocka_unit_test(test_sni_malformed),
		cmocka_unit_test(test_sni_over_several_records),
		cmocka_unit_test(test_sni_hostile),
		cmocka_unit_test(test_sni_cut_hello),
		cmocka_unit_test(test_http_host),
		cmocka_unit_test(test_http_host_hostile),
		cmocka_unit_test(test_dns),
		cmocka_unit_test(test_dns_hostile),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_every_byte_everywhere),
		cmocka_unit_test(test_dns_against_reference),
		cmocka_unit_test(test_http_host_against_line_walk),
		cmocka_unit_test(test_host_every_byte),
		cmocka_unit_test(test_http_pipelined),
		cmocka_unit_test(test_http09),
		cmocka_unit_test(test_dns_tcp_several),
		cmocka_unit_test(test_given_names_read_as_packets_are),
	};

	return cmocka_run_group_tests_name("extract", tests, NULL, NULL);
}
