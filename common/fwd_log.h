/*
 * fwd_log.h - the one log of regiond and regionfwd. Every line has a level
 * (syslog's priorities) and goes to one target chosen at start (--log):
 * stderr, with a UTC timestamp and the level in front; the journal
 * (sd_journal_send), with PRIORITY and, for changes, structured fields; or
 * syslog. Lines below the chosen level are dropped. regionfwd sends DPDK's
 * whole log here through a stream (dataplane/dp_log.c).
 *
 * Changes to policy go through fwd_log_change(): each applied, refused,
 * reverted, rolled back or confirmed change is logged exactly once, at the
 * point that decided it, with the generation, the author the request
 * named, the authenticated client, the request and the reason (journal
 * fields EVENT, GENERATION, AUTHOR, CLIENT, REQUEST, REASON).
 *
 * Not thread-safe to open; fwd_log() and fwd_log_change() may be called
 * from any thread once it is open (each line is one write or one call).
 */
#ifndef FWD_LOG_H
#define FWD_LOG_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

enum fwd_log_level {
	FWD_LOG_ERR = 3,
	FWD_LOG_WARNING = 4,
	FWD_LOG_NOTICE = 5,
	FWD_LOG_INFO = 6,
	FWD_LOG_DEBUG = 7,
};

/* The names --log and --log-level take, NULL-terminated. */
extern const char *const fwd_log_targets[];
extern const char *const fwd_log_levels[]; /* index + 3 is the level */

/**
 * Log as @ident to target @target (an index in fwd_log_targets) at
 * @level and above. Before it is called, lines go to stderr at info.
 * @return 0, or -ENOTSUP when the journal is asked for and regiond was
 * built without libsystemd
 */
int fwd_log_open(const char *ident, unsigned target, int level);

/** One line at @level. */
void fwd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One change to policy, as fwd_log_change() records it. */
struct fwd_log_change {
	const char *event; /* "applied", "refused", "reverted", "rolled back", "confirmed" */
	uint64_t generation; /* the new one; for "refused", the one that stays */
	uint64_t hash; /* the new generation's content hash; 0 when none */
	const char *author; /* as the request named it; may be NULL */
	const char *client; /* the authenticated client, or "regiond" */
	const char *request; /* "PUT /v1/table", ...; may be NULL */
	const char *reason; /* the comment, or why it was refused; may be NULL */
};

/** The change @c, once, at notice (refused: warning). */
void fwd_log_change(const struct fwd_log_change *c);

void fwd_log_close(void);

/**
 * @in into @out (@cap bytes, NUL-terminated, cut short rather than
 * overrun, never inside a character) with each byte of a control character
 * (fwd_control_len: C0 below 0x20, DEL 0x7f, C1 U+0080..U+009F, so U+009B
 * is \xc2\x9b, U+2028/U+2029, \xe2\x80\xa8, and the bidirectional
 * controls U+202A..U+202E, U+2066..U+2069) and each byte that is not
 * UTF-8 (a lone 0x9b) as \xNN:
 * for anything a client, a document or a device gave that goes into a log
 * line or an error message, where a newline would forge a line and an
 * escape would drive the reader's terminal. Other UTF-8 is kept as it is.
 * @return @out ("" when @cap is 0).
 */
const char *fwd_escape_controls(const char *in, char *out, size_t cap);

/**
 * As fwd_escape_controls, for a stream of lines: newline and tab kept, @in
 * (@n bytes, NULs included) taken until @out (@cap bytes, at least 5) is
 * full. @return the bytes written to @out; *@taken, the bytes of @in used.
 */
size_t fwd_escape_chunk(const char *in, size_t n, size_t *taken, char *out, size_t cap);

/**
 * Make the process's stderr write through fwd_escape_chunk: every message
 * a command prints there (usage errors echo its arguments; errors quote a
 * peer's words) reaches the terminal without a raw control character.
 * @return 0, or -errno (stderr left as it was)
 */
int fwd_stderr_escaped(void);

/**
 * The same for stdout, line-buffered: for a command's text output, which
 * quotes what a daemon, a peer or an operator wrote (an author, an alarm).
 * Not for output that is not text for a terminal (a pcapng, a document to
 * save, a full-screen view). @return 0, or -errno (stdout left as it was)
 */
int fwd_stdout_escaped(void);

/**
 * stdout as it is (fully buffered), through the same kind of stream, so
 * that fwd_stdout_errno() can say why a write to it failed. Not for a
 * terminal that curses draws on. @return 0, or -errno (stdout left as it was)
 */
int fwd_stdout_plain(void);

/**
 * How a write to @fd through these streams (and fwd_write_guarded()) takes
 * a signal; other descriptors (stderr), a regular file (which never blocks)
 * and NULL flags are not guarded: retried, the default. A guarded write
 * never blocks for long: it waits for room a tick (250 ms) at a time and
 * writes through a non-blocking description of its own of @fd's pipe,
 * FIFO or terminal (a socket: at most PIPE_BUF a write), so that no signal
 * can land between a check of the flags and a write that then blocks for
 * ever. Once *@patient is set
 * (a first Ctrl-C) @on_patient (or NULL) is called, once per write that
 * finds it set (regionctl asks regiond to stop the capture there, not
 * after the write), and the write goes on while the reader takes bytes,
 * giving up (ETIMEDOUT) after @stall_ms in which it took none; once
 * *@give_up is set (a second Ctrl-C, SIGTERM) it gives up at once (EINTR).
 * regionctl capture sets them: blocked on a pipe nobody reads it once
 * ignored Ctrl-C and SIGTERM alike, and then the first Ctrl-C abandoned a
 * reader that was still reading, slowly (the stream's end and statistics
 * lost). fwd_write_gave_up() says why a write gave up.
 */
void fwd_stdout_interruptible(int fd, volatile sig_atomic_t *patient,
			      volatile sig_atomic_t *give_up, int stall_ms,
			      void (*on_patient)(void));

/**
 * @n bytes of @b to @fd, as fwd_stdout_interruptible() says a signal is
 * taken. @return how many were written; fewer than @n with errno set.
 */
size_t fwd_write_guarded(int fd, const void *b, size_t n);

/** Why the last guarded write gave up on purpose: EINTR (give_up),
 *  ETIMEDOUT (nothing taken for stall_ms), or 0 (it did not: a write that
 *  failed says so in errno, an ETIMEDOUT of a socket's own included). */
int fwd_write_gave_up(void);

/**
 * Why the last write to stdout through fwd_stdout_escaped()'s or
 * fwd_stdout_plain()'s stream failed (an errno: ENOSPC, EPIPE), or 0.
 */
int fwd_stdout_errno(void);

#endif /* FWD_LOG_H */
