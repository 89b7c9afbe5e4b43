#include "ctl_bird.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fwd_err.h" /* fwd_utf8_clean */
#include "fwd_clock.h"

/* A reply larger than this is not one BIRD sends for show protocols with
 * a sane number of protocols: refused rather than buffered without bound. */
#define BIRD_MAX_REPLY (1u << 20)
/* BIRD's greeting is one short line ("0001 BIRD 2.0.12 ready."). */
#define BIRD_MAX_GREETING (4u << 10)

/* What the reply says goes into the status (JSON), the metrics' labels and
 * the log: bytes that are not UTF-8 would keep the status from being built
 * (it stayed at its last view, the sessions up), control characters would
 * forge log lines. BIRD writes neither: each becomes '?'. */
static void clean_but(char *s, char keep)
{
	size_t n, k;

	fwd_utf8_clean(s);
	n = strlen(s);
	for (size_t i = 0; i < n; i += k ? k : 1)
		if ((k = fwd_control_len(s + i, n - i)) != 0 && s[i] != keep)
			memset(s + i, '?', k); /* C1: both its bytes */
}

static void clean(char *s)
{
	clean_but(s, 0);
}

/* The 4-digit code of @line and where its text starts, or -1 for a
 * continuation line (" text"), -2 for anything else. */
static int line_code(const char *line, const char **text, int *last)
{
	if (line[0] == ' ') {
		*text = line + 1;
		*last = 0;
		return -1;
	}
	for (int i = 0; i < 4; i++)
		if (!isdigit((unsigned char)line[i]))
			return -2;
	if (line[4] != '-' && line[4] != ' ' && line[4] != '\0')
		return -2;
	*last = line[4] != '-';
	*text = line[4] ? line + 5 : line + 4;
	return (line[0] - '0') * 1000 + (line[1] - '0') * 100 + (line[2] - '0') * 10 +
	       (line[3] - '0');
}

/* The next blank-separated word of *@p into @buf (@size with its NUL).
 * @return 1, 0 at the end of the text, -1 for a word longer than @size - 1
 * (never cut: a cut name would be another session's, or none). */
static int word(const char **p, char *buf, size_t size)
{
	size_t n;

	*p += strspn(*p, " \t");
	n = strcspn(*p, " \t");
	if (n == 0)
		return 0;
	if (n >= size)
		return -1;
	memcpy(buf, *p, n);
	buf[n] = '\0';
	*p += n;
	return 1;
}

/* One protocol line: name proto table state since... info.
 * @return 1 for a BGP protocol (in @s), 0 for another line, -1 for a word
 * longer than BIRD writes (@why says which). */
static int protocol_line(const char *text, struct ctl_bird_session *s, char *why, size_t whylen)
{
	static const char *const what[] = {"protocol name", "protocol type", "table name", "state"};
	char name[CTL_BIRD_NAME_MAX + 1], proto[32], table[CTL_BIRD_NAME_MAX + 1], state[16];
	char *const words[] = {name, proto, table, state};
	const size_t sizes[] = {sizeof(name), sizeof(proto), sizeof(table), sizeof(state)};
	const char *rest = text;

	for (int i = 0; i < 4; i++) {
		int w = word(&rest, words[i], sizes[i]);

		if (w < 0) {
			snprintf(why, whylen,
				 "BIRD's reply: a %s longer than %zu characters in '%.80s'",
				 what[i], sizes[i] - 1, text);
			clean(why); /* the cut may split a character */
			return -1;
		}
		if (w == 0)
			return 0;
	}
	if (strcmp(proto, "BGP") != 0)
		return 0;
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->state, sizeof(s->state), "%s", state);
	s->up = strcmp(state, "up") == 0;
	/* "since" is one or two words of digits (its format is configurable);
	 * the info column follows. */
	for (;;) {
		rest += strspn(rest, " \t");
		if (!isdigit((unsigned char)*rest))
			break;
		rest += strcspn(rest, " \t");
	}
	/* BIRD aligns its columns with runs of spaces: one is enough here. */
	for (size_t k = 0; *rest && k + 1 < sizeof(s->info); rest++) {
		if (!isspace((unsigned char)*rest))
			s->info[k++] = *rest;
		else if (k && s->info[k - 1] != ' ')
			s->info[k++] = ' ';
	}
	for (size_t l = strlen(s->info); l && s->info[l - 1] == ' '; l--)
		s->info[l - 1] = '\0';
	clean(s->name);
	clean(s->state);
	clean(s->info);
	return 1;
}

/* Keep @s in @out (@n kept of @max): while there is room, in order; when
 * full, a session not up takes the place of the last one up, so every
 * session down is listed while there are at most @max. */
static void keep(struct ctl_bird_session *out, unsigned *n, unsigned max,
		 const struct ctl_bird_session *s)
{
	unsigned k;

	if (*n < max) {
		out[(*n)++] = *s;
		return;
	}
	if (s->up)
		return;
	for (k = max; k > 0 && !out[k - 1].up; k--)
		;
	if (k == 0)
		return; /* all listed are down already */
	memmove(&out[k - 1], &out[k], (max - k) * sizeof(*out));
	out[max - 1] = *s;
}

int ctl_bird_parse(const char *reply, struct ctl_bird_session *out, unsigned max, unsigned *down,
		   char *why, size_t whylen)
{
	int count = 0, code = 0, ended = 0;
	unsigned kept = 0, ndown = 0;
	const char *p = reply;

	while (*p && !ended) {
		const char *eol = strchr(p, '\n'), *text;
		char line[512];
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		int c, last;

		snprintf(line, sizeof(line), "%.*s",
			 (int)(len < sizeof(line) ? len : sizeof(line) - 1), p);
		p = eol ? eol + 1 : p + len;
		c = line_code(line, &text, &last);
		if (c == -2)
			return -EPROTO;
		/* What @why quotes of it; tabs stay, as they separate the
		 * fields (cleaned again once split), and forge no log line. */
		clean_but(line, '\t');
		if (c >= 0)
			code = c;
		if (code == 0) {
			ended = 1;
		} else if (code >= 8000) {
			snprintf(why, whylen, "BIRD: %s", text);
			return -EINVAL;
		} else if (code == 1002) {
			struct ctl_bird_session s;
			int r = protocol_line(text, &s, why, whylen);

			if (r < 0)
				return -EPROTO;
			if (r) {
				keep(out, &kept, max, &s);
				ndown += !s.up;
				count++;
			}
		}
	}
	if (!ended) {
		snprintf(why, whylen, "BIRD's reply ended before its last line");
		return -EPROTO;
	}
	if (down)
		*down = ndown;
	return count;
}

/* Read from @fd into @buf until a line starting "0000" or an error code
 * (the reply's end) or @deadline, at most @max - 1 bytes.
 * @return 0, or -errno (-E2BIG past @max). */
static int read_reply(int fd, char **buf, size_t *len, int64_t deadline, int greeting, size_t max)
{
	size_t cap = max < 4096 ? max : 4096;

	*len = 0;
	if ((*buf = malloc(cap)) == NULL)
		return -ENOMEM;
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - fwd_mono_ms();
		ssize_t n;

		(*buf)[*len] = '\0';
		/* The end: a greeting line, "0000" alone, or an error's last line. */
		if (*len && (*buf)[*len - 1] == '\n') {
			const char *last = *len >= 2 ? *buf + *len - 2 : *buf;
			size_t ll;

			while (last > *buf && last[-1] != '\n')
				last--;
			/* The last line's length: a short one ("8\n") has no
			 * code, and its [4] is past what was read. */
			ll = (size_t)(*buf + *len - 1 - last);
			if ((greeting && ll >= 5 && strncmp(last, "0001 ", 5) == 0) ||
			    (ll >= 4 && strncmp(last, "0000", 4) == 0) ||
			    (ll >= 5 && (last[0] == '8' || last[0] == '9') && last[4] == ' '))
				return 0;
		}
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		if (cap - *len < 2) {
			size_t more = cap * 2 < max ? cap * 2 : max;
			char *b;

			if (cap >= max)
				return -E2BIG;
			if ((b = realloc(*buf, more)) == NULL)
				return -ENOMEM;
			*buf = b;
			cap = more;
		}
		n = read(fd, *buf + *len, cap - *len - 1);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		*len += (size_t)n;
	}
}

int ctl_bird_sessions(const char *path, int timeout_ms, struct ctl_bird_session *out, unsigned max,
		      unsigned *down, char *why, size_t whylen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int64_t deadline = fwd_mono_ms() + timeout_ms;
	static const char cmd[] = "show protocols\n";
	char *buf = NULL;
	size_t len;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		struct stat sb;

		rc = -errno;
		/* connect() to a path that is not a socket says only "Connection
		 * refused", as for a BIRD that stopped: the path is wrong, say so. */
		if (rc == -ECONNREFUSED && stat(path, &sb) == 0 && !S_ISSOCK(sb.st_mode))
			snprintf(why, whylen, "BIRD's control socket %s: not a socket (a %s)", path,
				 S_ISDIR(sb.st_mode)   ? "directory"
				 : S_ISREG(sb.st_mode) ? "regular file"
						       : "file");
		else
			snprintf(why, whylen, "BIRD's control socket %s: %s", path, strerror(-rc));
		goto out;
	}
	if ((rc = read_reply(fd, &buf, &len, deadline, 1, BIRD_MAX_GREETING)) != 0) {
		if (rc == -E2BIG)
			snprintf(
				why, whylen,
				"BIRD's control socket %s: its greeting is over %u KiB, not BIRD's",
				path, BIRD_MAX_GREETING >> 10);
		else
			snprintf(why, whylen, "BIRD's control socket %s: no greeting: %s", path,
				 strerror(-rc));
		goto out;
	}
	free(buf);
	buf = NULL;
	if (write(fd, cmd, sizeof(cmd) - 1) != (ssize_t)(sizeof(cmd) - 1)) {
		rc = -errno;
		snprintf(why, whylen, "BIRD's control socket %s: %s", path, strerror(errno));
		goto out;
	}
	if ((rc = read_reply(fd, &buf, &len, deadline, 0, BIRD_MAX_REPLY)) != 0) {
		if (rc == -E2BIG)
			snprintf(why, whylen,
				 "BIRD's control socket %s: the reply to 'show protocols' is over "
				 "%u KiB, more than regiond reads",
				 path, BIRD_MAX_REPLY >> 10);
		else
			snprintf(why, whylen, "BIRD's control socket %s: %s", path, strerror(-rc));
		goto out;
	}
	rc = ctl_bird_parse(buf, out, max, down, why, whylen);
	if (rc == -EPROTO && why[0] == '\0')
		snprintf(why, whylen, "BIRD's control socket %s: not a BIRD reply", path);
out:
	clean(why); /* the path is the operator's, and may be cut */
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}
