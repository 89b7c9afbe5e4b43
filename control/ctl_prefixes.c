#include "ctl_prefixes.h"
#include "fwd_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where the scanner is in the body, and where its first refusal goes. */
struct scan {
	const char *p, *end, *start;
	struct fwd_err *e;
};

/* The deepest nesting a valid body may have is 4 (body, changes, a change,
 * its list); anything deeper is refused before it costs stack. */
#define MAX_DEPTH 32

/* Named as every other endpoint names a body that is not JSON: file
 * "body", its line, and the column in the reason (1-based, in bytes). */
static int syntax(struct scan *s, const char *what)
{
	uint32_t line = 1;
	size_t col = 1;

	for (const char *c = s->start; c < s->p; c++, col++)
		if (*c == '\n')
			line++, col = 0;
	return fwd_err_fail(s->e, FWD_R_BAD_REQUEST, "body", line, "",
			    "body is not valid JSON: %s (column %zu, byte %zu)", what, col,
			    (size_t)(s->p - s->start));
}

static int ws_peek(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
	return s->p < s->end ? (unsigned char)*s->p : -1;
}

static int lit(struct scan *s, char c)
{
	char what[24];

	if (ws_peek(s) == c) {
		s->p++;
		return 0;
	}
	snprintf(what, sizeof(what), "expected '%c'", c);
	return syntax(s, what);
}

/* @cp as UTF-8 into out[*n] when it fits below @cap (the length counts on). */
static void put_utf8(char *out, size_t cap, size_t *n, uint32_t cp)
{
	char b[4];
	size_t k;

	if (cp < 0x80) {
		b[0] = (char)cp, k = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), k = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f)), k = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), k = 4;
	}
	for (size_t i = 0; i < k; i++, (*n)++)
		if (out && *n + 1 < cap)
			out[*n] = b[i];
}

static int hex4(const char *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		const char *d = strchr("0123456789abcdef", p[i] | 0x20);

		if (p[i] == '\0' || d == NULL)
			return -1;
		*v = *v << 4 | (uint32_t)(d - "0123456789abcdef");
	}
	return 0;
}

/* The length of the valid UTF-8 sequence at @p (before @end), 0 if none. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t k = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
	uint32_t cp;

	if (p[0] < 0xc2 || p[0] > 0xf4 || (size_t)(end - p) < k)
		return 0;
	cp = p[0] & (k == 2 ? 0x1f : k == 3 ? 0x0f : 0x07);
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return k;
}

/* A string at the scanner (its opening quote next), decoded into @out
 * (NUL-terminated, cut to fit @cap at a character's start: a cut author
 * goes into a log line; @out may be NULL to only check it); *@n is its
 * whole decoded length. */
static int str(struct scan *s, char *out, size_t cap, size_t *n)
{
	*n = 0;
	if (lit(s, '"'))
		return -1;
	while (s->p < s->end && *s->p != '"') {
		unsigned char c = (unsigned char)*s->p;

		if (c < 0x20)
			return syntax(s, "a control character in a string");
		if (c >= 0x80) {
			size_t k = utf8_len((const unsigned char *)s->p,
					    (const unsigned char *)s->end);

			if (k == 0)
				return syntax(s, "a string is not valid UTF-8");
			for (size_t i = 0; i < k; i++, (*n)++)
				if (out && *n + 1 < cap)
					out[*n] = s->p[i];
			s->p += k;
			continue;
		}
		if (c != '\\') {
			if (out && *n + 1 < cap)
				out[*n] = (char)c;
			(*n)++, s->p++;
			continue;
		}
		if (s->end - s->p < 2)
			return syntax(s, "an unfinished escape");
		switch (s->p[1]) {
		case '"':
		case '\\':
		case '/':
			put_utf8(out, cap, n, (unsigned char)s->p[1]);
			s->p += 2;
			break;
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			put_utf8(out, cap, n, "\b\f\n\r\t"[strchr("bfnrt", s->p[1]) - "bfnrt"]);
			s->p += 2;
			break;
		case 'u': {
			uint32_t cp, lo;

			if (s->end - s->p < 6 || hex4(s->p + 2, &cp) || cp == 0)
				return syntax(s, "a bad \\u escape");
			s->p += 6;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return syntax(s, "a lone surrogate in a \\u escape");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
				    hex4(s->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return syntax(s, "a lone surrogate in a \\u escape");
				s->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			put_utf8(out, cap, n, cp);
			break;
		}
		default:
			return syntax(s, "a bad escape");
		}
	}
	if (s->p >= s->end)
		return syntax(s, "an unfinished string");
	s->p++;
	/* What was decoded is valid UTF-8: when cut, its valid length is up
	 * to the last whole character. */
	if (out && cap)
		out[*n < cap ? *n : fwd_utf8_valid_len(out, cap - 1)] = '\0';
	return 0;
}

/* A number at the scanner: *@v its value and *@is_int whether it is an
 * integer that fits (no fraction, no exponent). */
static int number(struct scan *s, int64_t *v, int *is_int)
{
	int neg = 0, overflow = 0;
	uint64_t u = 0;

	*is_int = 1;
	if (s->p < s->end && *s->p == '-')
		neg = 1, s->p++;
	if (s->p >= s->end || *s->p < '0' || *s->p > '9')
		return syntax(s, "a bad number");
	if (*s->p == '0' && s->p + 1 < s->end && s->p[1] >= '0' && s->p[1] <= '9')
		return syntax(s, "a number with a leading zero");
	for (; s->p < s->end && *s->p >= '0' && *s->p <= '9'; s->p++) {
		overflow |= u > (UINT64_MAX - 9) / 10;
		u = u * 10 + (uint64_t)(*s->p - '0');
	}
	if (s->p < s->end && *s->p == '.') {
		*is_int = 0, s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return syntax(s, "a bad number");
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		*is_int = 0, s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return syntax(s, "a bad number");
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	if (overflow || u > (uint64_t)INT64_MAX)
		*is_int = 0;
	*v = neg ? -(int64_t)u : (int64_t)u;
	return 0;
}

/* Any value, checked and passed over. */
static int skip(struct scan *s, int depth)
{
	int c = ws_peek(s);
	size_t n;
	int64_t v;
	int is_int;

	if (depth > MAX_DEPTH)
		return syntax(s, "nested too deep");
	if (c == '"')
		return str(s, NULL, 0, &n);
	if (c == '-' || (c >= '0' && c <= '9'))
		return number(s, &v, &is_int);
	for (const char *const *w = (const char *const[]){"true", "false", "null", NULL}; *w; w++)
		if ((size_t)(s->end - s->p) >= strlen(*w) && !strncmp(s->p, *w, strlen(*w))) {
			s->p += strlen(*w);
			return 0;
		}
	if (c != '[' && c != '{')
		return syntax(s, "expected a value");
	s->p++;
	if (ws_peek(s) == (c == '[' ? ']' : '}')) {
		s->p++;
		return 0;
	}
	for (;;) {
		if (c == '{' && (ws_peek(s) != '"' ? syntax(s, "expected a field name")
						   : str(s, NULL, 0, &n) || lit(s, ':')))
			return -1;
		if (skip(s, depth + 1))
			return -1;
		if (ws_peek(s) == ',') {
			s->p++;
			continue;
		}
		return lit(s, c == '[' ? ']' : '}');
	}
}

/* A field name of an object being read (the opening brace or the comma
 * before it passed), its colon passed: its index in @keys (NULL-ended) or
 * -1 with the name in @key. */
static int field(struct scan *s, const char *const *keys, char *key, size_t cap)
{
	size_t n;

	if (str(s, key, cap, &n) || lit(s, ':'))
		return -2;
	for (int i = 0; keys[i]; i++)
		if (n < cap && strcmp(key, keys[i]) == 0)
			return i;
	return -1;
}

/* After a field's value: 1 another field follows, 0 the object ended. */
static int next(struct scan *s, char close)
{
	if (ws_peek(s) == ',') {
		s->p++;
		return 1;
	}
	return lit(s, close) ? -1 : 0;
}

/* A 400 naming @path (printf) with @reason. */
__attribute__((format(printf, 3, 4))) static int shape(struct scan *s, const char *reason,
						       const char *fmt, ...)
{
	va_list ap;

	fwd_err_fail(s->e, FWD_R_BAD_REQUEST, NULL, 0, "", "%s", reason);
	va_start(ap, fmt);
	vsnprintf(s->e->path, sizeof(s->e->path), fmt, ap);
	va_end(ap);
	return -1;
}

/* Where the values of one change's fields start (NULL: not given). */
struct change_at {
	const char *region, *list[2]; /* list[0] add, list[1] remove */
};

static const char *const change_keys[] = {"region", "add", "remove", NULL};

/* Change object @i at the scanner, passed over, its fields located. */
static int change_fields(struct scan *s, uint32_t i, struct change_at *at)
{
	const char **slot[] = {&at->region, &at->list[0], &at->list[1]};
	char key[48];
	int k, more = 1;

	memset(at, 0, sizeof(*at));
	if (ws_peek(s) != '{')
		return shape(s, "must be an object {region, add, remove}", "changes[%u]", i);
	s->p++;
	if (ws_peek(s) == '}')
		more = 0, s->p++;
	while (more > 0) {
		if ((k = field(s, change_keys, key, sizeof(key))) == -2)
			return -1;
		if (k < 0 || *slot[k]) {
			shape(s, "", "changes[%u].%.40s", i, key);
			snprintf(s->e->reason, sizeof(s->e->reason),
				 k < 0 ? "unknown field '%.40s' (a change has region, add, remove)"
				       : "field '%.40s' is given twice",
				 key);
			return -1;
		}
		ws_peek(s);
		*slot[k] = s->p;
		if (skip(s, 3))
			return -1;
		more = next(s, '}');
	}
	return more < 0 ? -1 : 0;
}

/* The prefixes of change @i's list (@kind) at @at, into @q. */
static int read_list(struct scan *s, const char *at, uint32_t i, enum fwd_delta_kind kind,
		     uint16_t region, struct ctl_prefixes_req *q)
{
	const char *name = kind == FWD_DELTA_ADD ? "add" : "remove";
	struct scan l = {.p = at, .end = s->end, .start = s->start, .e = s->e};
	char pfx[64], path[FWD_DELTA_PATH_MAX];
	size_t n;
	int more = 1;

	if (ws_peek(&l) != '[')
		return shape(s, "must be a list of prefix strings", "changes[%u].%s", i, name);
	l.p++;
	if (ws_peek(&l) == ']')
		return 0;
	for (uint32_t j = 0; more > 0; j++) {
		if (ws_peek(&l) != '"')
			return shape(s,
				     "must be a prefix string (\"10.1.0.0/16\", \"2001:db8::/32\")",
				     "changes[%u].%s[%u]", i, name, j);
		if (str(&l, pfx, sizeof(pfx), &n))
			return -1;
		/* The delta keeps it: fwd_delta_apply()'s refusals name it. */
		snprintf(path, sizeof(path), "changes[%u].%s[%u]", i, name, j);
		if (n >= sizeof(pfx) || fwd_delta_add_text(&q->d, kind, region, pfx, path, s->e)) {
			if (n >= sizeof(pfx))
				fwd_err_fail(s->e, FWD_R_INVALID_DELTA, NULL, 0, "",
					     "'%.40s...' is not a prefix (ADDRESS/LENGTH)", pfx);
			else if (strstr(s->e->reason, pfx) == NULL &&
				 s->e->reason_code != FWD_R_INTERNAL)
				snprintf(s->e->reason + strlen(s->e->reason),
					 sizeof(s->e->reason) - strlen(s->e->reason), ": '%s'",
					 pfx);
			snprintf(s->e->path, sizeof(s->e->path), "changes[%u].%s[%u]", i, name, j);
			return s->e->reason_code == FWD_R_INTERNAL ? -ENOMEM : -EINVAL;
		}
		/* Its position in the request: what ctl_prefixes_locate() maps
		 * back when a refusal names it so. */
		q->d.ops[q->d.n - 1].index = q->d.n - 1;
		more = next(&l, ']');
	}
	return more < 0 ? -1 : 0;
}

/* The list "changes" at the scanner, into @q. */
static int read_changes(struct scan *s, const struct fwd_table *t, struct ctl_prefixes_req *q)
{
	int more = 1;

	if (ws_peek(s) != '[')
		return shape(s, "'changes' must be a non-empty list of {region, add, remove}",
			     "changes");
	s->p++;
	if (ws_peek(s) == ']')
		return shape(s, "'changes' must be a non-empty list of {region, add, remove}",
			     "changes");
	for (uint32_t i = 0; more > 0; i++) {
		struct change_at at;
		struct scan r;
		char name[FWD_NAME_MAX + 8];
		size_t n;
		int id, rc;

		if (change_fields(s, i, &at))
			return -1;
		if (at.region == NULL)
			return shape(s, "'region' (a region's name) is required",
				     "changes[%u].region", i);
		if (at.list[0] == NULL && at.list[1] == NULL)
			return shape(s, "give 'add' or 'remove' (lists of prefixes)", "changes[%u]",
				     i);
		r = (struct scan){.p = at.region, .end = s->end, .start = s->start, .e = s->e};
		if (ws_peek(&r) != '"')
			return shape(s, "must be a region's name", "changes[%u].region", i);
		if (str(&r, name, sizeof(name), &n))
			return -1;
		id = n < sizeof(name) ? fwd_table_region_id(t, name) : -ENOENT;
		if (id <= 0) {
			fwd_err_fail(
				s->e, FWD_R_INVALID_DELTA, NULL, 0, "",
				id == 0 ? "region '%s' is where unmatched sources go: it holds "
					  "no prefixes"
					: "no region '%.40s' in the table",
				name);
			snprintf(s->e->path, sizeof(s->e->path), "changes[%u].region", i);
			return -1;
		}
		uint32_t before = q->d.n;

		for (int k = 0; k < 2; k++)
			if (at.list[k] &&
			    (rc = read_list(s, at.list[k], i, k ? FWD_DELTA_REMOVE : FWD_DELTA_ADD,
					    (uint16_t)id, q)))
				return rc;
		/* Empty lists are a change without add/remove too (docs/api.md):
		 * {"add": []} was answered 200 noop, as if it asked for
		 * something the table already had. */
		if (q->d.n == before)
			return shape(s, "give 'add' or 'remove' with at least one prefix",
				     "changes[%u]", i);
		q->nchanges++;
		more = next(s, ']');
	}
	return more < 0 ? -1 : 0;
}

static const char *const body_keys[] = {"expected_generation", "author", "comment", "changes",
					NULL};

int ctl_prefixes_parse(const char *body, size_t len, const struct fwd_table *t,
		       struct ctl_prefixes_req *q, struct fwd_err *e)
{
	struct scan s = {.p = body, .end = body + len, .start = body, .e = e};
	char key[48], why[128];
	unsigned seen = 0;
	int k, more = 1, rc = -EINVAL;

	memset(q, 0, sizeof(*q));
	q->expected = -1;
	/* The whole text first: a malformed body is a 400 wherever it breaks,
	 * never a 422 about a prefix met before the break; and checked as
	 * every other endpoint's body is (fwd_json.h), so that a duplicate
	 * key or an integer past 64 bits is the same 400 here as in a PUT
	 * (this scanner once named the field, worded otherwise). */
	json_error_t je;
	int ck = fwd_json_check(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);

	if (ck == -ENOMEM) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	if (ck) {
		fwd_json_body_err(e, &je);
		goto fail;
	}
	if (skip(&s, 0))
		goto fail;
	if (ws_peek(&s) >= 0) {
		syntax(&s, "more after the object");
		goto fail;
	}
	s.p = body;
	if (ws_peek(&s) != '{') {
		/* worded as every other endpoint words it (ctl_api.c) */
		int c = ws_peek(&s);

		fwd_err_fail(e, FWD_R_BAD_REQUEST, "", 0, "",
			     "the body is %s; a JSON object is required",
			     c == '['	? "an array"
			     : c == '"' ? "a string"
			     : c == 't' ? "true"
			     : c == 'f' ? "false"
			     : c == 'n' ? "null"
					: "a number");
		goto fail;
	}
	s.p++;
	if (ws_peek(&s) == '}')
		more = 0;
	while (more > 0) {
		if ((k = field(&s, body_keys, key, sizeof(key))) == -2)
			goto fail;
		if (k < 0 || (seen & (1u << k))) {
			shape(&s, "", "%.40s", key);
			snprintf(e->reason, sizeof(e->reason), "%s '%.40s'",
				 k < 0 ? "unknown field" : "duplicate field", key);
			goto fail;
		}
		seen |= 1u << k;
		if (k == 0) {
			int64_t v;
			int is_int;
			int c = ws_peek(&s);

			/* null included: an explicit null is not an integer. */
			if ((c != '-' && (c < '0' || c > '9')) || number(&s, &v, &is_int) ||
			    !is_int || v < 0) {
				shape(&s,
				      "'expected_generation' must be an integer in "
				      "0..9223372036854775807",
				      "expected_generation");
				goto fail;
			} else {
				q->expected = v;
			}
		} else if (k == 1 || k == 2) {
			char *out = k == 1 ? q->author : q->comment;
			size_t cap = k == 1 ? sizeof(q->author) : sizeof(q->comment), n;
			int c = ws_peek(&s);

			if (c == 'n') {
				s.p += 4;
			} else if (c != '"' || str(&s, out, cap, &n) || n >= cap) {
				out[0] = '\0';
				fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, body_keys[k],
					     "'%s' must be a string of at most %zu bytes",
					     body_keys[k], cap - 1);
				goto fail;
			} else if (fwd_text_check(out, n, body_keys[k], why, sizeof(why))) {
				out[0] = '\0';
				fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, body_keys[k], "%s",
					     why);
				goto fail;
			}
		} else if ((rc = read_changes(&s, t, q)) != 0) {
			goto fail;
		}
		rc = -EINVAL;
		more = next(&s, '}');
	}
	if (more < 0)
		goto fail;
	if (!(seen & 8)) {
		shape(&s, "'changes' must be a non-empty list of {region, add, remove}", "changes");
		goto fail;
	}
	return 0;
fail:
	/* Paths and reasons quote the body's names, cut to fit: keep them
	 * valid UTF-8 for the JSON answer. */
	fwd_utf8_clean(e->path);
	fwd_utf8_clean(e->reason);
	fwd_delta_clear(&q->d);
	return rc == -ENOMEM ? -ENOMEM : -EINVAL;
}

/* Count @want down over the prefixes of the list at @at; 1 when it is one
 * of them (*@j its position). */
static int count_list(struct scan *s, const char *at, uint32_t *want, uint32_t *j)
{
	struct scan l = {.p = at, .end = s->end, .start = s->start, .e = s->e};
	size_t n;

	if (ws_peek(&l) != '[')
		return 0;
	l.p++;
	for (*j = 0; ws_peek(&l) == '"'; (*j)++) {
		if (*want == 0)
			return 1;
		if (str(&l, NULL, 0, &n))
			return 0;
		(*want)--;
		if (ws_peek(&l) == ',')
			l.p++;
	}
	return 0;
}

void ctl_prefixes_locate(const char *body, size_t len, struct fwd_err *e)
{
	struct fwd_err ignored;
	struct scan s = {.p = body, .end = body + len, .start = body, .e = &ignored};
	unsigned want;
	char key[48], rest[200];
	int more = 1, k;

	if (sscanf(e->path, "changes[%u]%199s", &want, rest) != 1)
		return; /* not "changes[K]" alone: it names the change already */
	if (lit(&s, '{'))
		return;
	while (more > 0 && (k = field(&s, body_keys, key, sizeof(key))) != -2) {
		if (k != 3) {
			if (skip(&s, 1))
				return;
			more = next(&s, '}');
			continue;
		}
		if (lit(&s, '['))
			return;
		for (uint32_t i = 0;; i++) {
			struct change_at at;
			uint32_t j;

			if (change_fields(&s, i, &at))
				return;
			for (int l = 0; l < 2; l++)
				if (at.list[l] && count_list(&s, at.list[l], &want, &j)) {
					snprintf(e->path, sizeof(e->path), "changes[%u].%s[%u]", i,
						 l ? "remove" : "add", j);
					return;
				}
			if (next(&s, ']') <= 0)
				return;
		}
	}
}

int ctl_prefixes_author(const char *body, size_t len, char *out, size_t cap)
{
	struct fwd_err ignored;
	struct scan s = {.p = body, .end = body + len, .start = body, .e = &ignored};
	char key[48];
	size_t n;
	int k, more = 1;

	out[0] = '\0';
	if (lit(&s, '{'))
		return 0;
	if (ws_peek(&s) == '}') {
		s.p++;
		return ws_peek(&s) < 0;
	}
	while (more > 0 && (k = field(&s, body_keys, key, sizeof(key))) != -2) {
		if (k == 1) { /* an author that is not a string is none (as a PUT's) */
			if (ws_peek(&s) != '"' || str(&s, out, cap, &n)) {
				out[0] = '\0';
				return 0;
			}
			return 1;
		}
		if (skip(&s, 1))
			return 0;
		more = next(&s, '}');
	}
	return more == 0 && ws_peek(&s) < 0; /* nothing after the object */
}

int64_t ctl_prefixes_expected(const char *body, size_t len)
{
	struct fwd_err ignored;
	struct scan s = {.p = body, .end = body + len, .start = body, .e = &ignored};
	char key[48];
	int64_t v;
	int k, c, is_int, more = 1;

	if (lit(&s, '{') || ws_peek(&s) == '}')
		return -1;
	while (more > 0 && (k = field(&s, body_keys, key, sizeof(key))) != -2) {
		if (k == 0) {
			c = ws_peek(&s);
			if ((c != '-' && (c < '0' || c > '9')) || number(&s, &v, &is_int) ||
			    !is_int || v < 0)
				return -1;
			return v;
		}
		if (skip(&s, 1))
			return -1;
		more = next(&s, '}');
	}
	return -1;
}
