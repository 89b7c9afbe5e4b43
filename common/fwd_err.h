/*
 * fwd_err.h - a structured error for everything that refuses outside input
 * (table documents, node configs, API requests): where (file, line, field
 * path) and why. The API returns the same three fields as {code, path,
 * reason}; the CLI and logs print fwd_err_str().
 */
#ifndef FWD_ERR_H
#define FWD_ERR_H

#include <stddef.h>
#include <stdint.h>

struct fwd_err {
	char file[128]; /* document name ("" when it came from a buffer) */
	uint32_t line; /* 1-based line, 0 when the format has no lines */
	char path[256]; /* field path, e.g. regions.india.prefixes[3] */
	char reason[384];
};

/** Fill @err (NULL-safe). Returns -EINVAL so callers can `return fwd_err_set(...)`. */
int fwd_err_set(struct fwd_err *err, const char *file, uint32_t line, const char *path,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/** Replace every byte that is not part of valid UTF-8 by '?', in place. */
void fwd_utf8_clean(char *s);

/** "file:line: path: reason" with the parts that are known. */
const char *fwd_err_str(const struct fwd_err *err, char *buf, size_t len);

#endif /* FWD_ERR_H */
