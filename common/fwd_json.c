/*
 * fwd_json.c - the fast JSON reader and its json_t sink (fwd_json.h).
 */
#include "fwd_json.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH_CAP 64 /* the most any caller may ask for */

/* Inside a string: 0 a byte taken as is, 1 '"' or '\\', 2 a control
 * character (refused by JSON), 3 a byte of a UTF-8 sequence. */
static const uint8_t str_class[256] = {
	[0x00 ... 0x1f] = 2,
	['"'] = 1,
	['\\'] = 1,
	[0x80 ... 0xff] = 3,
};

struct rd {
	const unsigned char *p, *end;
	char *scratch[2]; /* [0] keys, [1] values: a key stays valid while its value is read */
	size_t cap[2];
};

static void skip_ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
		r->p++;
}

/* Length of the valid UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF) at @p, 0 when there is none. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	size_t n = (size_t)(end - p);
	unsigned c = p[0];

	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

		return n >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

		return n >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
				       (p[3] & 0xc0) == 0x80
			       ? 4
			       : 0;
	}
	return 0;
}

static int room(struct rd *r, int which, size_t need)
{
	size_t cap = r->cap[which] ? r->cap[which] : 256;
	char *s;

	if (need <= r->cap[which])
		return 0;
	while (cap < need)
		cap *= 2;
	if ((s = realloc(r->scratch[which], cap)) == NULL)
		return -ENOMEM;
	r->scratch[which] = s;
	r->cap[which] = cap;
	return 0;
}

static int hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

/* A string whose opening quote has been read. Without escapes it is
 * returned in place; with them, decoded into scratch[@which]. */
static int read_string(struct rd *r, int which, const char **out, size_t *outlen)
{
	const unsigned char *start = r->p, *p = r->p, *end = r->end;
	size_t n;

	for (;;) {
		while (p < end && str_class[*p] == 0)
			p++;
		if (p == end || str_class[*p] == 2)
			return FWD_JSON_DECLINED;
		if (str_class[*p] == 3) {
			size_t k = utf8_seq(p, end);

			if (k == 0)
				return FWD_JSON_DECLINED;
			p += k;
			continue;
		}
		break;
	}
	if (*p == '"') {
		*out = (const char *)start;
		*outlen = (size_t)(p - start);
		r->p = p + 1;
		return 0;
	}
	/* An escape: decode from here on. */
	n = (size_t)(p - start);
	if (room(r, which, n + 64))
		return -ENOMEM;
	memcpy(r->scratch[which], start, n);
	while (p < end && *p != '"') {
		const unsigned char *run = p;
		unsigned c, cp, lo;
		char *d;

		while (p < end && str_class[*p] == 0)
			p++;
		if (room(r, which, n + (size_t)(p - run) + 4))
			return -ENOMEM;
		memcpy(r->scratch[which] + n, run, (size_t)(p - run));
		n += (size_t)(p - run);
		if (p == end || *p == '"')
			break;
		c = *p;
		d = r->scratch[which] + n;
		if (str_class[c] == 2)
			return FWD_JSON_DECLINED;
		if (str_class[c] == 3) {
			size_t k = utf8_seq(p, end);

			if (k == 0)
				return FWD_JSON_DECLINED;
			memcpy(d, p, k);
			n += k;
			p += k;
			continue;
		}
		/* a backslash */
		if (end - p < 2)
			return FWD_JSON_DECLINED;
		switch (p[1]) {
		case '"':
		case '\\':
		case '/':
			*d = (char)p[1];
			break;
		case 'b':
			*d = '\b';
			break;
		case 'f':
			*d = '\f';
			break;
		case 'n':
			*d = '\n';
			break;
		case 'r':
			*d = '\r';
			break;
		case 't':
			*d = '\t';
			break;
		case 'u':
			if (end - p < 6 || hex4(p + 2, &cp) || cp == 0 ||
			    (cp >= 0xdc00 && cp <= 0xdfff))
				return FWD_JSON_DECLINED;
			p += 6;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
				    hex4(p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return FWD_JSON_DECLINED;
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp < 0x80) {
				d[0] = (char)cp;
				n += 1;
			} else if (cp < 0x800) {
				d[0] = (char)(0xc0 | cp >> 6);
				d[1] = (char)(0x80 | (cp & 0x3f));
				n += 2;
			} else if (cp < 0x10000) {
				d[0] = (char)(0xe0 | cp >> 12);
				d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
				d[2] = (char)(0x80 | (cp & 0x3f));
				n += 3;
			} else {
				d[0] = (char)(0xf0 | cp >> 18);
				d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
				d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
				d[3] = (char)(0x80 | (cp & 0x3f));
				n += 4;
			}
			continue;
		default:
			return FWD_JSON_DECLINED;
		}
		n++;
		p += 2;
	}
	if (p == end)
		return FWD_JSON_DECLINED;
	*out = r->scratch[which];
	*outlen = n;
	r->p = p + 1;
	return 0;
}

/* -?(0|[1-9][0-9]*) of at most 18 digits, not followed by a fraction or an
 * exponent (those are reals: declined). */
static int read_integer(struct rd *r, struct fwd_json_value *v)
{
	const unsigned char *p = r->p, *end = r->end, *digits;
	long long x = 0;
	int neg = 0;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	digits = p;
	while (p < end && *p >= '0' && *p <= '9') {
		/* Counted before the digit is taken: a 19th would overflow x. */
		if (p - digits >= 18)
			return FWD_JSON_DECLINED;
		x = x * 10 + (*p++ - '0');
	}
	if (p == digits || (*digits == '0' && p - digits > 1))
		return FWD_JSON_DECLINED;
	if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
		return FWD_JSON_DECLINED;
	v->kind = FWD_JSON_INTEGER;
	v->integer = neg ? -x : x;
	v->str = (const char *)r->p;
	v->len = (size_t)(p - r->p);
	r->p = p;
	return 0;
}

static int literal(struct rd *r, const char *word, size_t n)
{
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
		return FWD_JSON_DECLINED;
	r->p += n;
	return 0;
}

static int read_all(struct rd *r, unsigned max_depth, int any_root,
		    const struct fwd_json_sink *sink, void *arg)
{
	uint8_t is_obj[MAX_DEPTH_CAP + 1];
	unsigned depth = 0; /* open containers */
	const char *key = NULL;
	size_t klen = 0;
	int rc;

	if (max_depth > MAX_DEPTH_CAP)
		max_depth = MAX_DEPTH_CAP;
	skip_ws(r);
	if (!any_root && (r->p == r->end || (*r->p != '{' && *r->p != '[')))
		return FWD_JSON_DECLINED;
	for (;;) {
		struct fwd_json_value v = {.key = key, .key_len = klen, .depth = depth};

		/* A value. */
		if (depth > max_depth)
			return FWD_JSON_DECLINED;
		skip_ws(r);
		if (r->p == r->end)
			return FWD_JSON_DECLINED;
		switch (*r->p) {
		case '{':
		case '[':
			v.kind = *r->p == '{' ? FWD_JSON_OBJECT : FWD_JSON_ARRAY;
			r->p++;
			if ((rc = sink->value(arg, &v)))
				return rc;
			is_obj[depth++] = v.kind == FWD_JSON_OBJECT;
			skip_ws(r);
			if (r->p < r->end && *r->p == (is_obj[depth - 1] ? '}' : ']')) {
				r->p++;
				depth--;
				if ((rc = sink->end(arg)))
					return rc;
				break; /* an empty one: what follows a value */
			}
			if (!is_obj[depth - 1]) {
				key = NULL;
				continue; /* its first item */
			}
			goto member;
		case '"':
			r->p++;
			if ((rc = read_string(r, 1, &v.str, &v.len)))
				return rc;
			v.kind = FWD_JSON_STRING;
			if ((rc = sink->value(arg, &v)))
				return rc;
			break;
		case 't':
		case 'f':
		case 'n':
			v.kind = *r->p == 't'	? FWD_JSON_TRUE
				 : *r->p == 'f' ? FWD_JSON_FALSE
						: FWD_JSON_NULL;
			if ((rc = literal(r,
					  *r->p == 't'	 ? "true"
					  : *r->p == 'f' ? "false"
							 : "null",
					  *r->p == 'f' ? 5 : 4)) ||
			    (rc = sink->value(arg, &v)))
				return rc;
			break;
		default:
			if (*r->p != '-' && (*r->p < '0' || *r->p > '9'))
				return FWD_JSON_DECLINED;
			if ((rc = read_integer(r, &v)) || (rc = sink->value(arg, &v)))
				return rc;
			break;
		}
		/* What follows a value: the end, a comma, or its container's end. */
		for (;;) {
			skip_ws(r);
			if (depth == 0)
				return r->p == r->end ? 0 : FWD_JSON_DECLINED;
			if (r->p == r->end)
				return FWD_JSON_DECLINED;
			if (*r->p == (is_obj[depth - 1] ? '}' : ']')) {
				r->p++;
				depth--;
				if ((rc = sink->end(arg)))
					return rc;
				continue;
			}
			if (*r->p != ',')
				return FWD_JSON_DECLINED;
			r->p++;
			break;
		}
		if (!is_obj[depth - 1]) {
			key = NULL;
			continue;
		}
	member:
		skip_ws(r);
		if (r->p == r->end || *r->p != '"')
			return FWD_JSON_DECLINED;
		r->p++;
		if ((rc = read_string(r, 0, &key, &klen)))
			return rc;
		skip_ws(r);
		if (r->p == r->end || *r->p != ':')
			return FWD_JSON_DECLINED;
		r->p++;
	}
}

int fwd_json_read_at(const char *buf, size_t len, unsigned max_depth, int any_root,
		     const struct fwd_json_sink *sink, void *arg, size_t *at)
{
	struct rd r = {.p = (const unsigned char *)buf, .end = (const unsigned char *)buf + len};
	int rc = read_all(&r, max_depth, any_root, sink, arg);

	if (at)
		*at = (size_t)((const char *)r.p - buf);
	free(r.scratch[0]);
	free(r.scratch[1]);
	return rc;
}

int fwd_json_read(const char *buf, size_t len, unsigned max_depth, int any_root,
		  const struct fwd_json_sink *sink, void *arg)
{
	return fwd_json_read_at(buf, len, max_depth, any_root, sink, arg, NULL);
}

/* @error as jansson sets a refusal of @buf at byte @at, with @text. */
static void refusal_at(const char *buf, size_t len, size_t at, const char *text,
		       json_error_t *error)
{
	size_t line = 1, col = 1;

	if (error == NULL)
		return;
	if (at > len)
		at = len;
	/* Columns in characters, as jansson counts them: a UTF-8 sequence's
	 * continuation bytes are not columns (a refusal of ours once said a
	 * column further right than jansson's for the same place). */
	for (size_t i = 0; i < at; i++)
		if (buf[i] == '\n')
			line++, col = 1;
		else if (((unsigned char)buf[i] & 0xc0) != 0x80)
			col++;
	memset(error, 0, sizeof(*error));
	error->line = line > INT32_MAX ? -1 : (int)line;
	error->column = col > INT32_MAX ? -1 : (int)col;
	error->position = at > INT32_MAX ? -1 : (int)at;
	snprintf(error->source, sizeof(error->source), "%s", "<buffer>");
	snprintf(error->text, sizeof(error->text), "%s", text);
}

json_t *fwd_json_slow_loadb(const char *buf, size_t len, size_t flags, size_t at,
			    json_error_t *error)
{
	static const char nul_text[] = "a NUL byte (JSON has none, in a string or between values)";
	const char *nul = memchr(buf, '\0', len);
	size_t values = 1;
	json_error_t mine;
	json_t *j;
	int in_str = 0;

	/* Outside strings, every '[', '{' and ',' begins a value (or a member). */
	for (size_t i = 0; i < len && values <= FWD_JSON_SLOW_MAX_VALUES; i++) {
		char ch = buf[i];

		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = 0;
		} else if (ch == '"') {
			in_str = 1;
		} else if (ch == '[' || ch == '{' || ch == ',') {
			values++;
		}
	}
	if (values > FWD_JSON_SLOW_MAX_VALUES) {
		char text[JSON_ERROR_TEXT_LENGTH];

		snprintf(text, sizeof(text),
			 "more than %u values, and at or after this point something that takes "
			 "the slow reader (a syntax error, a duplicate key, a real number): not "
			 "read further",
			 FWD_JSON_SLOW_MAX_VALUES);
		refusal_at(buf, len, at, text, error);
		return NULL;
	}
	if (error == NULL)
		error = &mine;
	j = json_loadb(buf, len, flags, error);
	/* Taken, or refused at or past the NUL: the NUL is the first thing
	 * wrong there (a refusal before it stays jansson's). */
	if (nul &&
	    (j != NULL || error->position < 0 || (size_t)error->position >= (size_t)(nul - buf))) {
		json_decref(j);
		refusal_at(buf, len, (size_t)(nul - buf), nul_text, error);
		return NULL;
	}
	return j;
}

/* ---- the json_t sink ------------------------------------------------------------ */

struct jt {
	json_t *root;
	json_t *open[MAX_DEPTH_CAP + 1];
	unsigned depth;
};

static int jt_value(void *arg, const struct fwd_json_value *v)
{
	struct jt *b = arg;
	json_t *j, *parent = b->depth ? b->open[b->depth - 1] : NULL;

	switch (v->kind) {
	case FWD_JSON_OBJECT:
		j = json_object();
		break;
	case FWD_JSON_ARRAY:
		j = json_array();
		break;
	case FWD_JSON_STRING:
		j = json_stringn_nocheck(v->str, v->len);
		break;
	case FWD_JSON_INTEGER:
		j = json_integer(v->integer);
		break;
	case FWD_JSON_TRUE:
		j = json_true();
		break;
	case FWD_JSON_FALSE:
		j = json_false();
		break;
	default:
		j = json_null();
		break;
	}
	if (j == NULL)
		return -ENOMEM;
	if (parent == NULL) {
		b->root = j;
	} else if (json_is_array(parent)) {
		if (json_array_append_new(parent, j))
			return -ENOMEM;
	} else {
		if (json_object_getn(parent, v->key, v->key_len)) {
			json_decref(j);
			return FWD_JSON_DECLINED; /* json_loadb says what of it */
		}
		if (json_object_setn_new_nocheck(parent, v->key, v->key_len, j))
			return -ENOMEM;
	}
	if (v->kind == FWD_JSON_OBJECT || v->kind == FWD_JSON_ARRAY)
		b->open[b->depth++] = j;
	return 0;
}

static int jt_end(void *arg)
{
	struct jt *b = arg;

	b->depth--;
	return 0;
}

json_t *fwd_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error)
{
	static const struct fwd_json_sink sink = {jt_value, jt_end};
	struct jt b = {0};
	size_t at = 0;

	if ((flags & ~(size_t)(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)) == 0 &&
	    fwd_json_read_at(buf, len, MAX_DEPTH_CAP, (flags & JSON_DECODE_ANY) != 0, &sink, &b,
			     &at) == 0) {
		if (error) {
			memset(error, 0, sizeof(*error));
			error->line = error->column = -1;
			error->position = (int)len; /* read to the end */
			snprintf(error->source, sizeof(error->source), "%s", "<buffer>");
		}
		return b.root;
	}
	json_decref(b.root);
	return fwd_json_slow_loadb(buf, len, flags, at, error);
}

/* ---- checking only -------------------------------------------------------------- */

/* Keys of the open objects as hashes, innermost last: a duplicate, or a
 * hash collision, or more keys than fit, is declined and jansson decides. */
#define CK_KEYS 256

struct ck {
	uint64_t keys[CK_KEYS];
	unsigned nkeys;
	unsigned base[MAX_DEPTH_CAP + 1]; /* each open container's first key */
	unsigned depth;
};

static int ck_value(void *arg, const struct fwd_json_value *v)
{
	struct ck *c = arg;

	if (v->key) {
		uint64_t h = 14695981039346656037ull;

		for (size_t i = 0; i < v->key_len; i++)
			h = (h ^ (unsigned char)v->key[i]) * 1099511628211ull;
		for (unsigned i = c->depth ? c->base[c->depth - 1] : 0; i < c->nkeys; i++)
			if (c->keys[i] == h)
				return FWD_JSON_DECLINED;
		if (c->nkeys == CK_KEYS)
			return FWD_JSON_DECLINED;
		c->keys[c->nkeys++] = h;
	}
	if (v->kind == FWD_JSON_OBJECT || v->kind == FWD_JSON_ARRAY)
		c->base[c->depth++] = c->nkeys;
	return 0;
}

static int ck_end(void *arg)
{
	struct ck *c = arg;

	c->nkeys = c->base[--c->depth];
	return 0;
}

int fwd_json_check(const char *buf, size_t len, size_t flags, json_error_t *error)
{
	static const struct fwd_json_sink sink = {ck_value, ck_end};
	struct ck *c = calloc(1, sizeof(*c));
	json_t *j;
	size_t at = 0;
	int rc;

	if (c == NULL)
		return -ENOMEM;
	rc = (flags & ~(size_t)(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)) == 0
		     ? fwd_json_read_at(buf, len, MAX_DEPTH_CAP, (flags & JSON_DECODE_ANY) != 0,
					&sink, c, &at)
		     : FWD_JSON_DECLINED;
	free(c);
	if (rc == 0)
		return 0;
	if (rc < 0)
		return rc;
	j = fwd_json_slow_loadb(buf, len, flags, at, error);
	json_decref(j);
	return j ? 0 : -EINVAL;
}

const char *fwd_json_error_text(const json_error_t *je, char *buf, size_t len)
{
	/* jansson's own words name its flag, which no client sends. */
	static const char nul[] = "\\u0000 is not allowed without JSON_ALLOW_NUL";

	if (strncmp(je->text, nul, sizeof(nul) - 1) == 0)
		snprintf(buf, len, "a string holds \\u0000 (a NUL character)%s",
			 je->text + sizeof(nul) - 1);
	else
		snprintf(buf, len, "%s", je->text);
	return buf;
}

int fwd_json_body_err(struct fwd_err *e, const json_error_t *je)
{
	char said[JSON_ERROR_TEXT_LENGTH + 64];
	const char *text = fwd_json_error_text(je, said, sizeof(said));

	/* file "body" and jansson's line, as a table document's errors name
	 * their file and line (regionctl: body:1: ...). */
	return fwd_err_fail(e, FWD_R_BAD_REQUEST, "body", je->line > 0 ? (uint32_t)je->line : 0, "",
			    "body is not valid JSON: %s (column %d, byte %d)", text, je->column,
			    je->position);
}
