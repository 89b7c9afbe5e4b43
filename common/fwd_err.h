/*
 * fwd_err.h - the one error model: a negative errno for C callers, plus a
 * structured error for people and programs: which of the reasons in
 * fwd_reasons.def, where (file, line, field path) and why (text).
 *
 * Everything that refuses outside input (table documents, node configs, API
 * requests) or fails an operation fills a struct fwd_err. The API returns it
 * as {code, file, line, path, reason} with the HTTP status its reason maps
 * to (ctl_api.c); the CLIs print fwd_err_str() and exit with the code its
 * reason maps to.
 */
#ifndef FWD_ERR_H
#define FWD_ERR_H

#include <stddef.h>
#include <stdint.h>

enum fwd_reason {
#define FWD_REASON(id, name, errnum, help) FWD_R_##id,
#include "fwd_reasons.def"
#undef FWD_REASON
	FWD_R_MAX
};

struct fwd_err {
	enum fwd_reason reason_code; /* what kind of failure (fwd_reasons.def) */
	char file[128]; /* document name ("" when it came from a buffer) */
	uint32_t line; /* 1-based line, 0 when the format has no lines */
	char path[256]; /* field path, e.g. regions.india.prefixes[3] */
	char reason[384];
};

/** Fill @err (NULL-safe) as refused input (FWD_R_INVALID). Returns -EINVAL
 *  so callers can `return fwd_err_set(...)`. A caller that knows better (the
 *  API: invalid_table) changes err->reason_code afterwards. */
int fwd_err_set(struct fwd_err *err, const char *file, uint32_t line, const char *path,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/** Fill @err (NULL-safe) with reason @r. Returns -errno of @r (fwd_reasons.def). */
int fwd_err_fail(struct fwd_err *err, enum fwd_reason r, const char *file, uint32_t line,
		 const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/** The reason's code ("invalid_table"); "invalid" for a value out of range. */
const char *fwd_reason_name(enum fwd_reason r);

/** The reason named @name, or -1 (a code from a newer peer, or garbage). */
int fwd_reason_from_name(const char *name);

/** The positive errno that goes with @r. */
int fwd_reason_errno(enum fwd_reason r);

/** How many of the @n bytes at @s are valid UTF-8 (RFC 3629: no overlong
 *  forms, surrogates or code points past U+10FFFF) before the first that is
 *  not: @n when all are. */
size_t fwd_utf8_valid_len(const char *s, size_t n);

/** The length of the valid UTF-8 character (RFC 3629, as
 *  fwd_utf8_valid_len) that starts the @n bytes at @s: 1..4, or 0 when they
 *  do not start one (a byte that is not UTF-8 on its own, a sequence cut
 *  short, @n 0). */
size_t fwd_utf8_char_len(const char *s, size_t n);

/**
 * The one definition of a control character, for every check and every
 * escaper: the bytes of the one that starts the @n bytes at @s, 1 for C0
 * (below 0x20) and DEL (0x7f), 2 for C1 (U+0080..U+009F, the UTF-8
 * sequences c2 80..c2 9f: U+009B is CSI, which a terminal acts on as it
 * does on ESC [), 3 for U+2028 and U+2029 (the line and paragraph
 * separators: format characters, not controls, but they break a line for
 * many log readers and JavaScript, so a log line or a one-line field must
 * not carry them raw either) and for the bidirectional embeddings,
 * overrides and isolates U+202A..U+202E and U+2066..U+2069 (they reorder
 * what a terminal shows after them: a description could make the text an
 * operator reads differ from what the table says); 0 when they start none.
 */
size_t fwd_control_len(const char *s, size_t n);

/** 0 when the @n bytes at @s hold no control character (fwd_control_len:
 *  C0, DEL, C1, U+2028, U+2029, the bidirectional controls): text that is shown as one line (an
 *  author, a comment). Else -EINVAL with @reason naming @field, the
 *  character and its offset. */
int fwd_text_check(const char *s, size_t n, const char *field, char *reason, size_t cap);

/** fwd_text_check() for text of several lines (a description): line feeds
 *  and tabs are let by, every other control character refused alike. */
int fwd_prose_check(const char *s, size_t n, const char *field, char *reason, size_t cap);

/** Replace every byte fwd_utf8_valid_len() stops at by '?', in place. */
void fwd_utf8_clean(char *s);

/** "file:line: path: reason" with the parts that are known. */
const char *fwd_err_str(const struct fwd_err *err, char *buf, size_t len);

#endif /* FWD_ERR_H */
