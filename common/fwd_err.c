#include "fwd_err.h"

#include "fwd_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

size_t fwd_utf8_valid_len(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		/* The second byte's range narrows for E0 (no overlongs), ED (no
		 * surrogates), F0 (no overlongs) and F4 (nothing past U+10FFFF). */
		unsigned char lo = 0x80, hi = 0xbf;
		size_t more;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			more = 1;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		else
			return i;
		if (n - i <= more || p[i + 1] < lo || p[i + 1] > hi)
			return i;
		for (size_t k = 2; k <= more; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
		i += more + 1;
	}
	return n;
}

void fwd_utf8_clean(char *s)
{
	size_t n = strlen(s);

	/* What JSON encoders take: the strict check, each bad byte a '?'. */
	while (n > 0) {
		size_t ok = fwd_utf8_valid_len(s, n);

		if (ok == n)
			break;
		s[ok] = '?';
		s += ok + 1;
		n -= ok + 1;
	}
}

size_t fwd_utf8_char_len(const char *s, size_t n)
{
	unsigned char c = n ? (unsigned char)s[0] : 0;
	size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

	return n && k <= n && fwd_utf8_valid_len(s, k) == k ? k : 0;
}

size_t fwd_control_len(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	if (n == 0)
		return 0;
	if (p[0] < 0x20 || p[0] == 0x7f)
		return 1;
	if (n >= 2 && p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		return 2;
	if (n < 3 || p[0] != 0xe2)
		return 0;
	/* e2 80 a8..ae: U+2028, U+2029, U+202A..U+202E; e2 81 a6..a9: U+2066..U+2069 */
	return (p[1] == 0x80 && p[2] >= 0xa8 && p[2] <= 0xae) ||
			       (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
		       ? 3
		       : 0;
}

/* fwd_text_check() and fwd_prose_check(): @prose lets line feeds and tabs
 * by, and says so in the reason. */
static int text_check(const char *s, size_t n, const char *field, int prose, char *reason,
		      size_t cap)
{
	const char *what =
		prose ? "must be text (line breaks and tabs are)" : "must be one line of text";

	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = (const unsigned char *)s + i;
		size_t k = prose && (*p == '\n' || *p == '\t') ? 0 : fwd_control_len(s + i, n - i);

		if (k == 1) {
			snprintf(reason, cap,
				 "'%s' %s: byte 0x%02x at offset %zu is a control character", field,
				 what, p[0], i);
			return -EINVAL;
		}
		if (k == 2) { /* c2 80..c2 9f: U+0080..U+009F */
			snprintf(reason, cap,
				 "'%s' %s: U+%04X at offset %zu is a control character", field,
				 what, (unsigned)p[1], i);
			return -EINVAL;
		}
		if (k == 3) {
			unsigned cp = 0x2000u | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);

			snprintf(reason, cap, "'%s' %s: U+%04X at offset %zu is a %s", field, what,
				 cp, i,
				 cp == 0x2028u	 ? "line separator"
				 : cp == 0x2029u ? "paragraph separator"
						 : "bidirectional control (it reorders what a "
						   "terminal shows)");
			return -EINVAL;
		}
	}
	return 0;
}

int fwd_text_check(const char *s, size_t n, const char *field, char *reason, size_t cap)
{
	return text_check(s, n, field, 0, reason, cap);
}

int fwd_prose_check(const char *s, size_t n, const char *field, char *reason, size_t cap)
{
	return text_check(s, n, field, 1, reason, cap);
}

static const struct {
	const char *name;
	int errnum;
} reasons[FWD_R_MAX] = {
#define FWD_REASON(id, name, errnum, help) [FWD_R_##id] = {name, errnum},
#include "fwd_reasons.def"
#undef FWD_REASON
};

const char *fwd_reason_name(enum fwd_reason r)
{
	return (unsigned)r < FWD_R_MAX ? reasons[r].name : reasons[FWD_R_INVALID].name;
}

int fwd_reason_from_name(const char *name)
{
	for (int r = 0; name && r < FWD_R_MAX; r++)
		if (strcmp(reasons[r].name, name) == 0)
			return r;
	return -1;
}

int fwd_reason_errno(enum fwd_reason r)
{
	return (unsigned)r < FWD_R_MAX ? reasons[r].errnum : EINVAL;
}

static void err_vset(struct fwd_err *err, enum fwd_reason r, const char *file, uint32_t line,
		     const char *path, const char *fmt, va_list ap)
{
	err->reason_code = r;
	snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
	err->line = line;
	snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	/* Reasons quote hostile input, and truncation can split a character:
	 * keep them valid UTF-8 so every JSON encoder accepts them. */
	fwd_utf8_clean(err->file);
	fwd_utf8_clean(err->path);
	fwd_utf8_clean(err->reason);
}

int fwd_err_set(struct fwd_err *err, const char *file, uint32_t line, const char *path,
		const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -EINVAL;
	va_start(ap, fmt);
	err_vset(err, FWD_R_INVALID, file, line, path, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int fwd_err_fail(struct fwd_err *err, enum fwd_reason r, const char *file, uint32_t line,
		 const char *path, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -fwd_reason_errno(r);
	va_start(ap, fmt);
	err_vset(err, r, file, line, path, fmt, ap);
	va_end(ap);
	return -fwd_reason_errno(r);
}

const char *fwd_err_str(const struct fwd_err *err, char *buf, size_t len)
{
	/* Every field whole (sizeof the struct bounds them), then shown: a
	 * path or reason quotes what the input said, and a control character
	 * in a document's name would drive the terminal it is printed on. */
	char raw[sizeof(err->file) + sizeof(err->path) + sizeof(err->reason) + 32];
	size_t n = 0;

	if (len == 0)
		return buf;
	raw[0] = '\0';
	if (err->file[0])
		n += (size_t)snprintf(raw + n, sizeof(raw) - n, "%s:", err->file);
	if (err->line)
		n += (size_t)snprintf(raw + n, sizeof(raw) - n, "%u:", err->line);
	if (n)
		n += (size_t)snprintf(raw + n, sizeof(raw) - n, " ");
	if (err->path[0])
		n += (size_t)snprintf(raw + n, sizeof(raw) - n, "%s: ", err->path);
	snprintf(raw + n, sizeof(raw) - n, "%s", err->reason);
	return fwd_escape_controls(raw, buf, len);
}
