#include "fwd_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void fwd_utf8_clean(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		int n = *p < 0x80	      ? 0
			: (*p & 0xe0) == 0xc0 ? 1
			: (*p & 0xf0) == 0xe0 ? 2
			: (*p & 0xf8) == 0xf0 ? 3
					      : -1;
		int ok = n >= 0 && !(n == 1 && *p < 0xc2);

		for (int i = 1; ok && i <= n; i++)
			ok = (p[i] & 0xc0) == 0x80; /* stops at the NUL too */
		if (!ok) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
	}
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
	size_t n = 0;

	buf[0] = '\0';
	if (err->file[0])
		n += (size_t)snprintf(buf + n, len - n, "%s:", err->file);
	if (err->line && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%u:", err->line);
	if (n && n < len)
		n += (size_t)snprintf(buf + n, len - n, " ");
	if (err->path[0] && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%s: ", err->path);
	if (n < len)
		snprintf(buf + n, len - n, "%s", err->reason);
	return buf;
}
