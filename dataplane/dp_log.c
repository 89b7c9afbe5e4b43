#define _GNU_SOURCE /* fopencookie */
#include "dp_log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <syslog.h>
#include <unistd.h>

#include "fwd_log.h"

/*
 * DPDK writes each message with one vfprintf and an fflush; this stream's
 * write gets it whole (or in buffer-sized pieces, kept until their newline)
 * and hands each line to fwd_log at the level rte_log is printing at.
 */
static char pending[2048];
static size_t npending;

static void flush_line(const char *s, size_t n)
{
	/* RTE_LOG_EMERG (1) .. RTE_LOG_DEBUG (8) are syslog's 0..7 plus one. */
	int level = (int)rte_log_cur_msg_loglevel() - 1;
	static const char prefix[] = "regionfwd: ";

	/* DP_LOG's own "regionfwd: " is the log's identifier already. */
	if (n >= sizeof(prefix) - 1 && memcmp(s, prefix, sizeof(prefix) - 1) == 0) {
		s += sizeof(prefix) - 1;
		n -= sizeof(prefix) - 1;
	}
	if (n)
		fwd_log(level, "%.*s", (int)n, s);
}

static ssize_t stream_write(void *cookie, const char *buf, size_t len)
{
	(void)cookie;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n' || npending == sizeof(pending)) {
			flush_line(pending, npending);
			npending = 0;
			if (buf[i] == '\n')
				continue;
		}
		pending[npending++] = buf[i];
	}
	return (ssize_t)len;
}

/*
 * Without --log, DPDK's own default (each message to stderr and to syslog)
 * with one change: control characters other than newline and tab as \xNN.
 * Device strings and a pusher's name reach these lines, and an escape in
 * them would drive the operator's terminal, a newline forge a line.
 */
static ssize_t plain_write(void *cookie, const char *buf, size_t len)
{
	size_t off = 0;

	(void)cookie;
	while (off < len) {
		char out[2048];
		size_t taken, o = fwd_escape_chunk(buf + off, len - off, &taken, out, sizeof(out));

		if (write(STDERR_FILENO, out, o) < 0) {
			/* Nowhere else to say it. */
		}
		/* Syslog's levels are rte_log's minus one, as DPDK's default has them. */
		syslog(rte_log_cur_msg_loglevel() - 1, "%.*s", (int)o, out);
		off += taken;
	}
	return (ssize_t)len;
}

int dp_log_plain(void)
{
	cookie_io_functions_t io = {.write = plain_write};
	FILE *f = fopencookie(NULL, "w", io);

	if (f == NULL)
		return -errno;
	return rte_openlog_stream(f) ? -EINVAL : 0;
}

int dp_log_redirect(const char *target)
{
	cookie_io_functions_t io = {.write = stream_write};
	FILE *f;
	int rc;

	for (unsigned i = 0; fwd_log_targets[i]; i++) {
		if (strcmp(target, fwd_log_targets[i]))
			continue;
		rc = fwd_log_open("regionfwd", i, FWD_LOG_DEBUG);
		if (rc)
			return rc;
		f = fopencookie(NULL, "w", io);
		if (f == NULL)
			return -errno;
		/* Before rte_eal_init: EAL's own lines go here too. */
		return rte_openlog_stream(f) ? -EINVAL : 0;
	}
	return -EINVAL;
}
