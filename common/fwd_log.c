#define _GNU_SOURCE /* fopencookie */
#include "fwd_log.h"

#include "fwd_clock.h"
#include "fwd_err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef FWD_LOG_JOURNAL
#include <systemd/sd-journal.h>
#endif

enum { TARGET_STDERR, TARGET_JOURNAL, TARGET_SYSLOG };

const char *const fwd_log_targets[] = {"stderr", "journal", "syslog", NULL};
const char *const fwd_log_levels[] = {"err", "warning", "notice", "info", "debug", NULL};

static struct {
	char ident[32];
	unsigned target;
	int level;
} lg = {"regiond", TARGET_STDERR, FWD_LOG_INFO};

int fwd_log_open(const char *ident, unsigned target, int level)
{
#ifndef FWD_LOG_JOURNAL
	if (target == TARGET_JOURNAL)
		return -ENOTSUP;
#endif
	snprintf(lg.ident, sizeof(lg.ident), "%s", ident);
	lg.target = target;
	lg.level = level;
	if (target == TARGET_SYSLOG)
		openlog(lg.ident, LOG_PID, LOG_DAEMON);
	return 0;
}

void fwd_log_close(void)
{
	if (lg.target == TARGET_SYSLOG)
		closelog();
	lg.target = TARGET_STDERR;
}

/* "2026-11-30T10:46:27.123Z notice regiond: MSG\n" as one write, so lines
 * from two threads never interleave. */
static void to_stderr(int level, const char *msg)
{
	char line[2048], ts[32];
	struct timespec now;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s: %s\n", ts, now.tv_nsec / 1000000,
		     fwd_log_levels[level - FWD_LOG_ERR], lg.ident, msg);
	if (n >= (int)sizeof(line)) { /* cut, but still a line */
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere else to say it. */
	}
}

/* The one escaping loop: @in's control characters (fwd_control_len: C0,
 * DEL, C1, U+2028/9, the bidirectional controls) as \xNN, each of their bytes, into @out while a whole escape or
 * character still fits; newline and tab kept when @keep_lines. A byte that
 * is not UTF-8 is escaped on its own too: a lone 0x9b is CSI to a terminal
 * in an 8-bit mode. Valid UTF-8 (é, 漢字) is copied as it is, never cut.
 * A newline in an author once forged a whole log line, and U+009B reached
 * it raw: every log line goes through it before it is written. A character
 * split between two writes of a stream is escaped, as bytes that are not
 * UTF-8 on their own; a message is one write. */
static size_t escape_bytes(const char *in, size_t n, int keep_lines, size_t *taken, char *out,
			   size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned char c = (unsigned char)in[i];
		size_t ctl = fwd_control_len(in + i, n - i);
		/* A C1's or separator's first byte escaped here, the rest as not
		 * UTF-8 on their own: each escape a unit of 4 bytes, as C0's. */
		size_t k = ctl ? 1 : fwd_utf8_char_len(in + i, n - i);
		int esc = (ctl && !(keep_lines && (c == '\n' || c == '\t'))) || k == 0;

		if (o + (esc ? 4 : k) > cap)
			break;
		if (esc) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
			i++;
		} else {
			memcpy(out + o, in + i, k);
			o += k;
			i += k;
		}
	}
	*taken = i;
	return o;
}

/* Whether escape_bytes would change the @n bytes at @s. */
static int needs_escape(const char *s, size_t n)
{
	/* Valid UTF-8 holds c2 only as a lead byte: a byte-wise scan finds
	 * every control character. */
	for (size_t i = 0; i < n; i++)
		if (fwd_control_len(s + i, n - i))
			return 1;
	return fwd_utf8_valid_len(s, n) != n;
}

const char *fwd_escape_controls(const char *in, char *out, size_t cap)
{
	size_t taken;

	if (cap == 0)
		return "";
	out[escape_bytes(in, strlen(in), 0, &taken, out, cap - 1)] = '\0';
	return out;
}

size_t fwd_escape_chunk(const char *in, size_t n, size_t *taken, char *out, size_t cap)
{
	return escape_bytes(in, n, 1, taken, out, cap);
}

/* Why the last write to stdout through one of these streams failed (0:
 * none did): stdio keeps only that one did, and a line-buffered stream
 * has dropped the line by the time its command ends. */
static int stdout_errno;
static volatile sig_atomic_t *write_patient, *write_give_up;
static int write_stall_ms, write_fd = -1, write_nb = -1, write_why;
static void (*write_on_patient)(void);

void fwd_stdout_interruptible(int fd, volatile sig_atomic_t *patient,
			      volatile sig_atomic_t *give_up, int stall_ms,
			      void (*on_patient)(void))
{
	struct stat st;
	char path[32];

	write_fd = fd >= 0 && patient && !(fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) ? fd : -1;
	if (write_nb >= 0)
		close(write_nb);
	write_nb = -1;
	/* A pipe, FIFO or terminal opened again through /proc: a description
	 * of its own, non-blocking, so that no write waits (a terminal's took
	 * a PIPE_BUF write after poll() said writable, and blocked on it for
	 * good: a probe); the shared one (a shell's) is not touched. A socket
	 * cannot be opened so: it keeps the PIPE_BUF writes. */
	if (write_fd >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		write_nb = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	}
	write_patient = patient;
	write_give_up = give_up;
	write_stall_ms = stall_ms;
	write_on_patient = on_patient;
}

int fwd_write_gave_up(void)
{
	return write_why;
}

/* Gives up on purpose: @why kept for fwd_write_gave_up(), and in errno. */
static int gave_up(int why)
{
	write_why = why;
	errno = why;
	return 1;
}

size_t fwd_write_guarded(int fd, const void *b, size_t n)
{
	const char *p = b;
	int guarded = fd == write_fd && fd >= 0, turned_patient = 0;
	int64_t progress_ms = 0; /* the last byte taken, once patient */
	size_t w = 0;

	write_why = 0;
	while (w < n) {
		size_t want = n - w;
		ssize_t k;

		if (guarded) {
			/* Wait for room a tick at a time, then write through the
			 * non-blocking description (write_nb), or, without one (a
			 * socket), no more than PIPE_BUF: a write that blocked
			 * could not see a flag set by a signal that came just
			 * before it. A socket may still block on that much; a
			 * second signal ends it. */
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			int r;

			if (*write_patient && !turned_patient) {
				turned_patient = 1;
				if (write_on_patient)
					write_on_patient();
				progress_ms = fwd_mono_ms();
			}
			if (turned_patient && fwd_mono_ms() - progress_ms >= write_stall_ms &&
			    gave_up(ETIMEDOUT))
				break;
			r = poll(&pf, 1, 250);
			if (write_give_up && *write_give_up && gave_up(EINTR))
				break;
			if (r == 0 || (r < 0 && errno == EINTR))
				continue;
			if (want > PIPE_BUF && write_nb < 0)
				want = PIPE_BUF;
		}
		k = write(guarded && write_nb >= 0 ? write_nb : fd, p + w, want);
		if (k < 0 &&
		    (errno == EINTR || (guarded && (errno == EAGAIN || errno == EWOULDBLOCK)))) {
			if (guarded && write_give_up && *write_give_up && gave_up(EINTR))
				break;
			continue;
		}
		if (k <= 0) {
			if (k == 0)
				errno = EIO;
			break;
		}
		w += (size_t)k;
		if (turned_patient)
			progress_ms = fwd_mono_ms();
	}
	return w;
}

/* @n bytes of @b written to @fd whole. @return how many were written
 * before a write failed (why kept for fwd_stdout_errno()), or @n. */
static size_t write_whole(int fd, const char *b, size_t n)
{
	size_t w = fwd_write_guarded(fd, b, n);

	if (w < n && fd == STDOUT_FILENO)
		stdout_errno = errno;
	return w;
}

/* Writes @buf to @fd as it is (the cookie @fd | PLAIN) or escaped. */
#define PLAIN ((intptr_t)1 << 16)

static ssize_t escaped_write(void *cookie, const char *buf, size_t len)
{
	int fd = (int)((intptr_t)cookie & (PLAIN - 1));
	size_t off = 0;

	if ((intptr_t)cookie & PLAIN) {
		size_t w = write_whole(fd, buf, len);

		return w || len == 0 ? (ssize_t)w : -1;
	}
	while (off < len) {
		char out[1024];
		size_t taken, o = fwd_escape_chunk(buf + off, len - off, &taken, out, sizeof(out));

		if (write_whole(fd, out, o) < o)
			return off ? (ssize_t)off : -1;
		off += taken;
	}
	return (ssize_t)len;
}

/* A stream writing to @fd through escaped_write(), buffered as @mode says
 * (setvbuf's), in @buf of @size bytes; *@stream replaced by it, after a
 * flush of what it held. */
static int escape_stream(FILE **stream, intptr_t fd, int mode, char *buf, size_t size)
{
	cookie_io_functions_t io = {.write = escaped_write};
	FILE *f;

	fflush(*stream);
	f = fopencookie((void *)fd, "w", io);
	if (f == NULL)
		return -errno;
	setvbuf(f, buf, mode, size);
	*stream = f;
	return 0;
}

int fwd_stderr_escaped(void)
{
	/* Unbuffered, as stderr is: a message is out before an exit or a crash. */
	return escape_stream(&stderr, STDERR_FILENO, _IONBF, NULL, 0);
}

int fwd_stdout_escaped(void)
{
	static char buf[1 << 16];

	/* A line a write, as a terminal's stdout is: a character is cut
	 * between two writes (and then escaped as bytes that are not UTF-8)
	 * only by one stdio call of more than the buffer (regionctl prints a
	 * line, or a row, a call). exit() flushes it. */
	return escape_stream(&stdout, STDOUT_FILENO, _IOLBF, buf, sizeof(buf));
}

int fwd_stdout_plain(void)
{
	static char buf[1 << 16];

	/* Fully buffered, as stdout to a file or pipe is: a document of a
	 * million prefixes is not a million writes. */
	return escape_stream(&stdout, STDOUT_FILENO | PLAIN, _IOFBF, buf, sizeof(buf));
}

int fwd_stdout_errno(void)
{
	return stdout_errno;
}

static void emit(int level, const char *raw, const struct fwd_log_change *c)
{
	char buf[4 * 1536 + 1];
	const char *msg = raw;

	if (needs_escape(raw, strlen(raw)))
		msg = fwd_escape_controls(raw, buf, sizeof(buf));
	if (level < FWD_LOG_ERR)
		level = FWD_LOG_ERR;
	if (level > FWD_LOG_DEBUG)
		level = FWD_LOG_DEBUG;
	if (level > lg.level)
		return;
	switch (lg.target) {
#ifdef FWD_LOG_JOURNAL
	case TARGET_JOURNAL:
		if (c)
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level,
					"SYSLOG_IDENTIFIER=%s", lg.ident, "EVENT=%s", c->event,
					"GENERATION=%" PRIu64, c->generation, "AUTHOR=%s",
					c->author ? c->author : "", "CLIENT=%s",
					c->client ? c->client : "regiond", "REQUEST=%s",
					c->request ? c->request : "", "REASON=%s",
					c->reason ? c->reason : "", NULL);
		else
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level,
					"SYSLOG_IDENTIFIER=%s", lg.ident, NULL);
		return;
#endif
	case TARGET_SYSLOG:
		syslog(level, "%s", msg);
		return;
	default:
		(void)c;
		to_stderr(level, msg);
	}
}

void fwd_log(int level, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(level, msg, NULL);
}

void fwd_log_change(const struct fwd_log_change *c)
{
	char msg[1536], hash[32] = "";
	/* A write refused before its author was read has none, and a change
	 * without a comment has no reason: said so, not as "author ''" or a
	 * line ending in ": ". */
	const int has_author = c->author != NULL && c->author[0] != '\0';
	const int has_reason = c->reason != NULL && c->reason[0] != '\0';
	const char *a0 = has_author ? "author '" : "no author", *a = has_author ? c->author : "",
		   *a1 = has_author ? "'" : "";
	const char *r0 = has_reason ? ": " : "", *r = has_reason ? c->reason : "";
	const char *client = c->client ? c->client : "regiond";
	const char *q0 = c->request ? " (" : "", *q = c->request ? c->request : "",
		   *q1 = c->request ? ")" : "";

	if (c->hash)
		snprintf(hash, sizeof(hash), " (%016" PRIx64 ")", c->hash);
	if (strcmp(c->event, "refused") == 0)
		snprintf(msg, sizeof(msg),
			 "change refused, generation %" PRIu64 " stays: %s%s%s%s, %s%s%s%s%s",
			 c->generation, client, q0, q, q1, a0, a, a1, r0, r);
	else
		snprintf(msg, sizeof(msg), "generation %" PRIu64 "%s %s by %s%s%s%s, %s%s%s%s%s",
			 c->generation, hash, c->event, client, q0, q, q1, a0, a, a1, r0, r);
	emit(strcmp(c->event, "refused") ? FWD_LOG_NOTICE : FWD_LOG_WARNING, msg, c);
}
