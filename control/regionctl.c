/*
 * regionctl - the operator CLI, a thin client of regiond's API (docs/api.md,
 * docs/regionctl.md). It holds no logic the API lacks: every command is one
 * or two API calls, printed as aligned tables, or as the API's JSON with -j.
 *
 * Exit codes (ctl_exit.h, the one mapping from reasons): 0 done; 1 refused
 * (invalid table, residency, conflict, not found); 2 usage; 3 regiond or
 * regionfwd unreachable; 4 regiond failed to carry it out.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <jansson.h>

#include "ctl_exit.h"
#include "ctl_file.h"
#include "ctl_pcapng.h"
#include "ctl_top.h"
#include "ctl_tls_client.h"
#include "fwd_delta.h"
#include "fwd_doc.h"
#include "fwd_embed.h"
#include "fwd_names.h"
#include "fwd_log.h"
#include "fwd_opts.h"
#include "fwd_parse.h"
#include "fwd_report.h"
#include "fwd_table.h"

#define EXIT_REFUSED CTL_EXIT_REFUSED
#define EXIT_USAGE CTL_EXIT_USAGE
#define EXIT_UNREACHABLE CTL_EXIT_UNREACHABLE

struct opts {
	const char *sock, *url, *token;
	int https; /* url is https:// */
	struct ctl_tls_client_conf tls; /* --ca, --cert, --key */
	struct ctl_tls_client *tls_client; /* loaded from tls, with https */
	int json;
	/* How an error regiond answers is shown on stdout besides the text
	 * on stderr (show_api_error): not at all, as indented JSON (-j), or
	 * as one line (top's and capture's one-object-a-line streams). */
	enum { JERR_NONE, JERR_INDENTED, JERR_LINE } json_errors;
	/* --timeout S, in ms (0: not given): the bound on every wait of every
	 * command, reads and writes alike, in place of their defaults. */
	int timeout_ms;
	/* The bound on connecting to regiond and on each wait for its bytes in
	 * the exchange under way (ms; 0: none), and whether that exchange may
	 * change something (then a timeout leaves its outcome unknown). */
	int wait_ms;
	int writes;
};

/* Every command waits for regiond a bounded time: a regiond stopped,
 * deadlocked or paused once left every command but status (and a
 * monitoring script running one) waiting for ever. A read is answered from
 * regiond's own view at once, even while a write waits for a hung
 * regionfwd: 30 s of silence means regiond is hung. A write may wait for
 * regionfwd up to regiond's --dataplane-timeout (120 s by default) after
 * validating the document (seconds for a million prefixes), and behind
 * another write doing the same: 300 s is past all of that. --timeout
 * replaces both (a regiond whose --dataplane-timeout is longer). */
#define READ_TIMEOUT_MS 30000
#define WRITE_TIMEOUT_MS 300000

/*
 * Every command is one descriptor in the table near the end of this file:
 * the dispatch, the 'regionctl --help' listing, each command's --help and
 * every usage error are made from it, so a command cannot be added without
 * its help, and its help cannot say other than what the parser accepts.
 */
#define CTL_MAX_OPTS 12
#define CTL_MAX_ARGS 8

struct ctl_opt {
	const char *name, *alias; /* "--json", "-j" */
	const char *arg; /* its value's name; NULL for a flag */
	const char *key; /* the request body field its value goes to as is, if any */
	int content_field; /* or: the field named by content field N - 1 (fwd_schema.def) */
	const char *help;
	/* The values it takes, when they are a fixed set: listed under the
	 * option in --help ("KEY: a, b, c"), where the bash completion reads
	 * them, so neither can drift from the binary. */
	const char *const *choices;
	size_t nchoices;
};

struct ctl_call;

struct ctl_cmd {
	const char *name;
	const char *summary; /* one line, for the listing */
	const char *args; /* synopsis of the positional arguments */
	const char *detail; /* what --help adds to the summary, if anything */
	const struct ctl_opt *opts; /* ends with {0} */
	int min_args, max_args;
	int (*run)(const struct opts *o, const struct ctl_call *c);
	const struct ctl_cmd *subs; /* ends with {0}; then the command itself has no run */
	/* Whether its stdout, this time, is not text for a terminal (a
	 * document to save, a pcapng, a full-screen view): then written as it
	 * is. NULL, and every other time: through fwd_stdout_escaped(). */
	int (*raw_stdout)(const struct opts *o, const struct ctl_call *c);
};

/* A parsed command line: the words that named the command, then its arguments. */
struct ctl_call {
	const struct ctl_cmd *path[3]; /* path[0] is the root, path[depth] the command */
	int depth;
	const char *pos[CTL_MAX_ARGS];
	int npos;
	const char *val[CTL_MAX_OPTS]; /* by index in the command's opts */
};

static const struct ctl_cmd *cmd_of(const struct ctl_call *c)
{
	return c->path[c->depth];
}

static void print_path(FILE *f, const struct ctl_call *c)
{
	fputs("regionctl", f);
	for (int i = 1; i <= c->depth; i++)
		fprintf(f, " %s", c->path[i]->name);
}

/* A usage error names the command and the offending word, then where its
 * usage is. The word is the operator's: its newline would end the line in
 * the middle of the quote (stderr's escaping keeps newlines, the ends of
 * its lines), so the message, one line, is shown with every control
 * character as \xNN. */
__attribute__((format(printf, 2, 3))) static int usage_error(const struct ctl_call *c,
							     const char *fmt, ...)
{
	char raw[1024], shown[4 * sizeof(raw)];
	va_list ap;

	print_path(stderr, c);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	fputs(fwd_escape_controls(raw, shown, sizeof(shown)), stderr);
	fputs("\nSee '", stderr);
	print_path(stderr, c);
	fputs(" --help'.\n", stderr);
	return EXIT_USAGE;
}

/* Every whole number regionctl reads from its arguments: decimal digits
 * only (no sign, space, '+' or "0x", which strtoull would take and the
 * operator did not mean), in @lo..@hi. One reader, so every option reads
 * "+5" and " 5" alike: as a usage error. @return 0, or -1. */
static int whole_number(const char *s, unsigned long long lo, unsigned long long hi,
			unsigned long long *out)
{
	char *end;

	if (s[0] < '0' || s[0] > '9' || strspn(s, "0123456789") != strlen(s))
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *out < lo || *out > hi ? -1 : 0;
}

/* The value given for option @name of the command, or NULL. */
static const char *opt_val(const struct ctl_call *c, const char *name)
{
	const struct ctl_opt *op = cmd_of(c)->opts;

	for (int i = 0; op && op[i].name; i++)
		if (!strcmp(op[i].name, name))
			return c->val[i];
	return NULL;
}

/* Options with a body field set it, so a new one of that kind needs only its descriptor. */
static void opts_into_body(const struct ctl_call *c, json_t *b)
{
	const struct ctl_opt *op = cmd_of(c)->opts;

	for (int i = 0; op && op[i].name; i++) {
		const char *key = op[i].content_field
					  ? fwd_content_field_name(op[i].content_field - 1)
					  : op[i].key;

		if (key && c->val[i])
			json_object_set_new(b, key, json_string(c->val[i]));
	}
}

/* A connection to regiond: the unix socket, or --url's address, over TLS
 * for https://. NULL with @why. */
/* @fd's connect and each send and receive wait @ms at most (0: no bound). */
static void bound_waits(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	if (fd >= 0 && ms > 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		/* also bounds connect(): a unix socket whose listen queue is
		 * full (every connection taken) waits in it */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
}

/* Each receive on @fd waits @ms at most (0: no bound, cleared). */
static void silence_bound(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Why a connect, send or receive failed with @err, for the operator. */
static const char *wait_failed(const struct opts *o, int err, char *buf, size_t len)
{
	if (o->wait_ms > 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS))
		snprintf(buf, len, "no answer within %d s", o->wait_ms / 1000);
	else
		snprintf(buf, len, "%s", strerror(err));
	return buf;
}

/* --url's HOST (an IPv6 address without its brackets) and PORT, from
 * [http(s)://]HOST:PORT[/]: -1 with @why when it is not that. Checked as
 * the options are parsed (endpoint(): a usage error), so a URL that
 * cannot be one never reads as regiond unreachable. */
static int url_split(const char *url, char *host, size_t hlen, char *port, size_t plen, char *why,
		     size_t len)
{
	const char *p = strstr(url, "://") ? strstr(url, "://") + 3 : url;
	char buf[256], *path, *colon, *h = buf;

	if (strlen(p) >= sizeof(buf)) {
		snprintf(why, len, "the URL is longer than %zu bytes", sizeof(buf) - 1);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", p);
	path = buf + strcspn(buf, "/");
	if (*path && strcmp(path, "/") != 0) {
		/* The API's paths are regionctl's to choose: a path here
		 * would be dropped without a word. */
		snprintf(why, len, "the URL has a path (%s)", path);
		return -1;
	}
	*path = '\0';
	if (buf[0] == '[') { /* [IPv6]:PORT */
		char *rb = strchr(buf, ']');

		if (rb == NULL || rb == buf + 1) {
			snprintf(why, len, "the URL's host '%s' is not an [IPv6 address]", buf);
			return -1;
		}
		*rb = '\0';
		h = buf + 1;
		colon = rb[1] == ':' ? rb + 1 : NULL;
		if (colon == NULL && rb[1]) {
			snprintf(why, len, "the URL has '%s' after its host, not :PORT", rb + 1);
			return -1;
		}
	} else {
		colon = strrchr(buf, ':');
		if (colon)
			*colon = '\0';
		/* Said, not sent: 'user:pass@' is no credential regiond
		 * takes (--token-file is), and an IPv6 address without its
		 * brackets was split at its last colon, then unreachable. */
		if (strchr(buf, '@') != NULL) {
			snprintf(why, len,
				 "user@ in a URL is not a credential regiond takes (give "
				 "--token-file)");
			return -1;
		}
		if (strchr(buf, ':') != NULL) {
			snprintf(why, len, "an IPv6 address goes in [] ([%s]:PORT)", buf);
			return -1;
		}
	}
	if (h[0] == '\0') {
		snprintf(why, len, "the URL has no host");
		return -1;
	}
	if (colon == NULL) {
		snprintf(why, len, "the URL has no :PORT");
		return -1;
	}
	if (fwd_parse_port(colon + 1) < 0) {
		snprintf(why, len, "the URL's port '%s' is not in 1..65535", colon + 1);
		return -1;
	}
	snprintf(host, hlen, "%s", h);
	snprintf(port, plen, "%s", colon + 1);
	return 0;
}

static struct ctl_conn *conn_open(const struct opts *o, char *why, size_t len)
{
	int fd = -1;

	if (o->url) { /* http(s)://HOST:PORT */
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
		char host[256], port[8];
		int rc;

		if (url_split(o->url, host, sizeof(host), port, sizeof(port), why, len))
			return NULL;
		if ((rc = getaddrinfo(host, port, &hints, &ai))) {
			snprintf(why, len, "%s", gai_strerror(rc));
			return NULL;
		}
		/* Every address the name has, in the resolver's order, as curl
		 * does: "localhost" is ::1 first on many boxes, while regiond
		 * may listen on 127.0.0.1 only. */
		for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
			fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
			bound_waits(fd, o->wait_ms);
			if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
				int e = errno;

				close(fd);
				fd = -1;
				errno = e;
			}
		}
		freeaddrinfo(ai);
		if (fd < 0) {
			wait_failed(o, errno, why, len);
			return NULL;
		}
		if (o->https)
			return ctl_conn_tls(fd, host, o->tls_client, why, len);
	} else {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		if (strlen(o->sock) >= sizeof(sa.sun_path)) {
			snprintf(why, len, "%s", strerror(ENAMETOOLONG));
			return NULL;
		}
		strcpy(sa.sun_path, o->sock);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bound_waits(fd, o->wait_ms);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			int e = errno;
			struct stat st;
			size_t n;

			close(fd);
			wait_failed(o, e, why, len);
			/* What the operator can do about it: a directory or a
			 * file there gave "Connection refused", a socket of
			 * mode 0660 "Permission denied", with no more said. */
			n = strlen(why);
			if (e == EACCES)
				snprintf(why + n, len - n,
					 " (regiond's socket is mode 0660: run regionctl as root, "
					 "or as its owner or a member of its group)");
			else if (stat(o->sock, &st) == 0 && !S_ISSOCK(st.st_mode))
				snprintf(why + n, len - n,
					 " (%s is not a socket: -s names regiond's "
					 "API socket, --api-socket)",
					 o->sock);
			return NULL;
		}
		if (fd < 0) {
			snprintf(why, len, "%s", strerror(errno));
			return NULL;
		}
	}
	struct ctl_conn *c = ctl_conn_plain(fd);

	if (c == NULL)
		snprintf(why, len, "out of memory");
	return c;
}

/* The Content-Length of the response head @head (ending at @end): -1
 * without one, -2 when it is not a length (negative, not a number, past
 * long long). */
static long long content_length(const char *head, const char *end)
{
	for (const char *p = strstr(head, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n"))
		if (strncasecmp(p + 2, "Content-Length:", 15) == 0) {
			const char *v = p + 17 + strspn(p + 17, " \t");
			char *e;
			long long n;

			errno = 0;
			n = strtoll(v, &e, 10);
			return *v >= '0' && *v <= '9' && !errno && e <= end &&
					       (*e == '\r' || *e == ' ' || *e == '\t')
				       ? n
				       : -2;
		}
	return -1;
}

/* Whether the response head @head (ending at @end) says its body is chunked. */
static int is_chunked(const char *head, const char *end)
{
	for (const char *p = strstr(head, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n"))
		if (strncasecmp(p + 2, "Transfer-Encoding:", 18) == 0) {
			const char *e = strstr(p + 2, "\r\n");
			const char *c = strstr(p + 2, "chunked");

			return c && e && c < e;
		}
	return 0;
}

/*
 * HTTP/1.1 chunked framing (RFC 9112 7.1), one decoder for every body
 * regionctl reads: a whole answer (http(), through dechunk()) and a
 * capture's stream (fed as it arrives). There were two, and they
 * disagreed: a bare LF in an extension was framing to one and not to the
 * other, an extension past 62 bytes the reverse, and both took "0x5" (a C
 * prefix, no HTTP) for 5.
 */

/* A chunk's size line, extensions included, or one trailer line: longer
 * is no server's (a proxy's extensions are a few words). */
#define CHUNK_LINE_MAX 1024

/* An answer's head (status line and headers): regiond's are some 200
 * bytes; one past this is not regiond's. The trailers after the last
 * chunk, all of them, are bounded as a head is. */
#define HEAD_MAX 65536

enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE, CH_BAD };

struct chunked {
	int state;
	unsigned long long left; /* of the chunk's data */
	unsigned long long max; /* the largest chunk taken; 0: any */
	const char *max_what; /* what max is, for the message */
	size_t nline; /* bytes of the line so far */
	size_t trailers; /* bytes of the trailer section so far */
	char line[CHUNK_LINE_MAX + 1];
	char why[160]; /* with CH_BAD */
};

/* Whether @c may be in a size line's extensions or a trailer: visible
 * characters, spaces and tabs (a CR, an LF, a NUL there is smuggling). */
static int chunk_char_ok(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* The size line @s (@n bytes, its CRLF gone): chunk-size = 1*HEXDIG, then
 * optional whitespace and extensions (";name[=value]", taken unread).
 * @return 0 with *@size, or -1 with @ch's why. */
static int chunk_size_line(struct chunked *ch, const char *s, size_t n, unsigned long long *size)
{
	unsigned long long v = 0;
	size_t i = 0;

	if (n == 0 || !isxdigit((unsigned char)s[0])) {
		snprintf(ch->why, sizeof(ch->why), "a chunk size that is not hexadecimal");
		return -1;
	}
	for (; i < n && isxdigit((unsigned char)s[i]); i++) {
		unsigned d = (unsigned)(isdigit((unsigned char)s[i])
						? s[i] - '0'
						: (tolower((unsigned char)s[i]) - 'a' + 10));

		if (v > (ULLONG_MAX - d) / 16) {
			snprintf(ch->why, sizeof(ch->why), "a chunk size past 64 bits");
			return -1;
		}
		v = v * 16 + d;
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < n && s[i] != ';') { /* "1zz", "0x5", "5 junk": no size */
		snprintf(ch->why, sizeof(ch->why), "a chunk size that is not hexadecimal");
		return -1;
	}
	for (; i < n; i++)
		if (!chunk_char_ok((unsigned char)s[i])) {
			snprintf(ch->why, sizeof(ch->why),
				 "a control character (\\x%02x) in a chunk extension",
				 (unsigned char)s[i]);
			return -1;
		}
	if (ch->max && v > ch->max) {
		snprintf(ch->why, sizeof(ch->why), "a chunk of %llu bytes, past %s", v,
			 ch->max_what ? ch->max_what : "the largest answer");
		return -1;
	}
	*size = v;
	return 0;
}

/* The line just ended in @ch (CRLF gone): a size, the end of a chunk's
 * data, or a trailer. @return 0 or -1 (why said). */
static int chunk_line(struct chunked *ch)
{
	const char *s = ch->line;
	size_t n = ch->nline;

	ch->nline = 0;
	switch (ch->state) {
	case CH_SIZE:
		if (chunk_size_line(ch, s, n, &ch->left))
			return -1;
		ch->state = ch->left ? CH_DATA : CH_TRAILER;
		return 0;
	case CH_DATA_END:
		if (n) {
			snprintf(ch->why, sizeof(ch->why), "no CRLF after a chunk's data");
			return -1;
		}
		ch->state = CH_SIZE;
		return 0;
	default: /* CH_TRAILER */
		if (n == 0) {
			ch->state = CH_DONE;
			return 0;
		}
		for (size_t i = 0; i < n; i++)
			if (!chunk_char_ok((unsigned char)s[i])) {
				snprintf(ch->why, sizeof(ch->why),
					 "a control character (\\x%02x) in a trailer",
					 (unsigned char)s[i]);
				return -1;
			}
		if ((ch->trailers += n + 2) > HEAD_MAX) {
			snprintf(ch->why, sizeof(ch->why), "trailers past %d KiB", HEAD_MAX >> 10);
			return -1;
		}
		return 0;
	}
}

/* Feed @n bytes at @p to @ch; each run of data goes to @out(@arg, data,
 * length) when not NULL. Lines end in CRLF: a lone LF or CR is refused,
 * as it would be read as a line's end by one reader and not by another.
 * @return the bytes taken (all, or up to the end of the body: what
 * follows is no part of it), -1 when it is not chunked framing (@ch's
 * why), -2 when @out failed. */
static ssize_t chunked_feed(struct chunked *ch, const uint8_t *p, size_t n,
			    int (*out)(void *arg, const uint8_t *d, size_t len), void *arg)
{
	size_t i = 0;

	while (i < n && ch->state != CH_DONE && ch->state != CH_BAD) {
		if (ch->state == CH_DATA) {
			size_t m = n - i < ch->left ? n - i : (size_t)ch->left;

			if (out && out(arg, p + i, m))
				return -2;
			i += m;
			if ((ch->left -= m) == 0)
				ch->state = CH_DATA_END;
			continue;
		}
		if (p[i] == '\n') {
			if (ch->nline == 0 || ch->line[ch->nline - 1] != '\r') {
				snprintf(ch->why, sizeof(ch->why),
					 "a line ending in LF without CR");
				ch->state = CH_BAD;
				return -1;
			}
			ch->nline--;
			i++;
			if (chunk_line(ch)) {
				ch->state = CH_BAD;
				return -1;
			}
			continue;
		}
		if (ch->nline && ch->line[ch->nline - 1] == '\r') {
			snprintf(ch->why, sizeof(ch->why), "a CR not followed by LF");
			ch->state = CH_BAD;
			return -1;
		}
		if (ch->nline >= CHUNK_LINE_MAX) {
			snprintf(ch->why, sizeof(ch->why), "a chunk line past %d bytes",
				 CHUNK_LINE_MAX);
			ch->state = CH_BAD;
			return -1;
		}
		ch->line[ch->nline++] = (char)p[i++];
	}
	return ch->state == CH_BAD ? -1 : (ssize_t)i;
}

struct dechunked {
	char *to; /* NULL: only counted */
	size_t len;
};

static int dechunk_put(void *arg, const uint8_t *d, size_t len)
{
	struct dechunked *o = arg;

	if (o->to) /* never ahead of what is read: in place */
		memmove(o->to + o->len, d, len);
	o->len += len;
	return 0;
}

/* The chunked body @p of @n bytes (an HTTP/1.1 server, a proxy in front
 * of regiond, may send one), chunks at most @max bytes (0: any): its
 * data's length into *@len, and with @move the data itself to @p. @return
 * 0 whole, 1 not yet whole, -1 not chunked framing (*@why). */
static int dechunk(char *p, size_t n, unsigned long long max, size_t *len, int move, char *why,
		   size_t whylen)
{
	struct chunked ch = {.max = max};
	struct dechunked o = {.to = move ? p : NULL};

	if (chunked_feed(&ch, (const uint8_t *)p, n, dechunk_put, &o) < 0) {
		snprintf(why, whylen, "%s", ch.why);
		return -1;
	}
	if (ch.state != CH_DONE)
		return 1;
	*len = o.len;
	return 0;
}

/* A request's head and JSON body @b (NULL: none). */
static void request_head(FILE *f, const struct opts *o, const char *method, const char *path,
			 const char *b)
{
	fprintf(f, "%s %s HTTP/1.1\r\nHost: regiond\r\nConnection: close\r\n", method, path);
	if (o->token)
		fprintf(f, "Authorization: Bearer %s\r\n", o->token);
	fprintf(f, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		b ? strlen(b) : 0);
	if (b)
		fputs(b, f);
}

/* Whether @method @path may change something: every route but GET and the
 * two POSTs that only compute an answer (api.md). */
static int is_write(const char *method, const char *path)
{
	return strcmp(method, "GET") != 0 && strcmp(path, "/v1/validate") != 0 &&
	       strcmp(path, "/v1/explain") != 0 && strcmp(path, "/v1/capture/stop") != 0;
}

/* @o with the bound of an exchange @method @path: --timeout, else the
 * default of a read or a write. A validate (validate, diff) is a read that
 * does a write's work: the document's content rules compile for up to 30 s
 * of CPU, a million prefixes take their time; it waits as a write does. */
static struct opts bounded(const struct opts *o, const char *method, const char *path)
{
	struct opts b = *o;

	b.writes = is_write(method, path);
	b.wait_ms = o->timeout_ms				    ? o->timeout_ms
		    : b.writes || strcmp(path, "/v1/validate") == 0 ? WRITE_TIMEOUT_MS
								    : READ_TIMEOUT_MS;
	return b;
}

/* @why for a write whose request went out and got no answer (@unanswered:
 * the wait ran out, or the connection ended first): regiond may have
 * carried it out and not yet answered, or died after, so it is never said
 * to have failed. @return 1 when the outcome is unknown (http() then
 * answers -2: exit CTL_EXIT_UNKNOWN) */
static int outcome_unknown(const struct opts *o, int unanswered, char *why, size_t whylen)
{
	size_t n = strlen(why);

	if (!o->writes || !unanswered)
		return 0;
	if (n < whylen)
		snprintf(why + n, whylen - n,
			 "; the change may or may not have been applied: 'regionctl history' "
			 "says whether it was");
	return 1;
}

static size_t answer_max(const char *method, const char *path);

/* The status of the status line at @h ("HTTP/1.1 200 OK"): three digits,
 * 100..599, then a space or the line's end; -1 for what no server sends
 * (a "-2" once read as http()'s own "outcome unknown"). */
static int status_of(const char *h)
{
	if (strncmp(h, "HTTP/1.", 7) != 0 || (h[7] != '0' && h[7] != '1') || h[8] != ' ' ||
	    !isdigit((unsigned char)h[9]) || !isdigit((unsigned char)h[10]) ||
	    !isdigit((unsigned char)h[11]) || (h[12] != ' ' && h[12] != '\r') || h[9] < '1' ||
	    h[9] > '5')
		return -1;
	return (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
}

/* The final answer's head at the start of @buf (*@len bytes, a string).
 * Interim answers (1xx: 100 Continue, 103 Early Hints, from a proxy or a
 * server before its answer) are dropped from @buf as they come, their
 * bytes counted in *@interim: RFC 9110 15.2, a client reads past them (one
 * was taken for the answer, "HTTP 100", and a write's outcome lost).
 * @return the final status, *@body_at set; 0 not yet whole; -1 no HTTP (a
 * status no server sends, 101 Switching Protocols, which regionctl never
 * asks for, heads past HEAD_MAX in all). */
static int head_final(char *buf, size_t *len, size_t *interim, size_t *body_at)
{
	for (;;) {
		char *sep = strstr(buf, "\r\n\r\n");
		size_t hl;
		int st;

		if (sep == NULL)
			return *interim + *len > HEAD_MAX ? -1 : 0;
		hl = (size_t)(sep + 4 - buf);
		st = status_of(buf);
		if (st < 0 || st == 101)
			return -1;
		if (st >= 200) {
			*body_at = hl;
			return st;
		}
		if ((*interim += hl) > HEAD_MAX)
			return -1;
		memmove(buf, buf + hl, *len - hl + 1); /* its NUL too */
		*len -= hl;
	}
}

/* One HTTP/1.1 exchange (Connection: close). Returns the status, or -1
 * with @why (regiond unreachable, or TLS refused), or -2 with @why for a
 * write sent whole and not answered (its outcome unknown). */
static int http(const struct opts *unbounded, const char *method, const char *path, json_t *body,
		json_t **out, char *why, size_t whylen)
{
	struct opts bo = bounded(unbounded, method, path), *o = &bo;
	char *req = NULL, *resp = NULL, *b = body ? json_dumps(body, JSON_COMPACT) : NULL, *sep;
	size_t rlen = 0, cap = 0;
	struct ctl_conn *c = conn_open(o, why, whylen);
	int status = -1, n = 0; /* the final status; -1: no HTTP */
	long long clen = -1;
	size_t body_at = 0, dlen = 0, max = answer_max(method, path), interim = 0, fed = 0;
	int chunked = 0, cut = 0;
	struct chunked ch = {.max = max};
	char chmax[96], cut_why[512] = "";
	json_error_t jerr;
	double t0;
	FILE *f;
	size_t qlen;

	*out = NULL;
	if (c == NULL) {
		free(b);
		return -1;
	}
	snprintf(chmax, sizeof(chmax), "the %zu MiB the largest %s %s has", max >> 20, method,
		 path);
	ch.max_what = chmax;
	f = open_memstream(&req, &qlen);
	request_head(f, o, method, path, b);
	fclose(f);
	errno = 0;
	if (ctl_conn_send(c, req, qlen)) {
		int e = errno;

		if (e == EAGAIN || e == EWOULDBLOCK)
			wait_failed(o, e, why, whylen);
		else if ((e == EPIPE || e == ECONNRESET) && b != NULL) {
			/* regiond closes a connection whose body it will not take:
			 * too slow for its --min-body-rate, or past --max-body,
			 * which it answers first (413 body_too_large, 503
			 * uploads_full): that answer is read if it came, and
			 * said as any refusal (it was 'unreachable', exit 3,
			 * which a script retries for ever). Nothing was taken
			 * either way, so no outcome is unknown. */
			snprintf(cut_why, sizeof(cut_why),
				 "%s: regiond closed the connection before the whole request "
				 "was sent (an upload slower than its --min-body-rate, or a body "
				 "past its --max-body?); nothing changed",
				 ctl_conn_error(c));
			cut = 1;
			bo.writes = 0;
		} else {
			snprintf(why, whylen, "%s", ctl_conn_error(c));
		}
		if (!cut) {
			if (outcome_unknown(o, e == EAGAIN || e == EWOULDBLOCK, why, whylen))
				status = -2;
			goto out;
		}
	}
	/* The head must come whole within the bound: a server that trickles
	 * it (a byte every few seconds, each wait in time) held a command
	 * for ever. Then the body, each wait bounded, at least 64 KiB every
	 * 10 s on average (as a capture's stream: a slow link keeps up); it
	 * ends at its Content-Length (a server that keeps the connection
	 * open after the answer once made it wait out the bound), and is at
	 * most answer_max() bytes (an endless one once took all memory). */
	t0 = ctl_top_mono_s();
	for (;;) {
		double left = t0 + o->wait_ms / 1000.0 - ctl_top_mono_s();
		ssize_t r;

		if (body_at)
			left += (double)(rlen - body_at) / 65536 * 10;
		if (left > o->wait_ms / 1000.0)
			left = o->wait_ms / 1000.0;
		if (left <= 0) { /* the interim answers' bytes came too ("0 bytes" once) */
			snprintf(why, whylen, "no whole answer within %d s (%zu bytes came)",
				 o->wait_ms / 1000, rlen + interim);
			if (outcome_unknown(o, 1, why, whylen))
				status = -2;
			goto out;
		}
		silence_bound(ctl_conn_fd(c), (int)(left * 1000) + 1);
		if (rlen + 65536 + 1 > cap) {
			char *grown = realloc(resp, (rlen + 65536) * 2);

			if (grown == NULL) {
				snprintf(why, whylen, "out of memory for an answer of %zu bytes",
					 rlen);
				if (outcome_unknown(o, 1, why, whylen))
					status = -2;
				goto out;
			}
			resp = grown;
			cap = (rlen + 65536) * 2;
		}
		errno = 0;
		r = ctl_conn_recv(c, resp + rlen, cap - rlen - 1);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* a partial answer is no answer either */
			if (rlen + interim)
				snprintf(why, whylen,
					 "no whole answer within %d s (%zu bytes came)",
					 o->wait_ms / 1000, rlen + interim);
			else
				wait_failed(o, errno, why, whylen);
			if (outcome_unknown(o, 1, why, whylen))
				status = -2;
			goto out;
		}
		if (r < 0 && rlen == 0) {
			snprintf(why, whylen, "%s", ctl_conn_error(c));
			if (outcome_unknown(o, 1, why, whylen)) /* sent whole, then cut */
				status = -2;
			goto out;
		}
		if (r <= 0)
			break;
		rlen += (size_t)r;
		resp[rlen] = '\0';
		/* The final answer's head, past interim ones (resp is a
		 * string: a NUL in a head makes it no HTTP). */
		if (body_at == 0) {
			if ((n = head_final(resp, &rlen, &interim, &body_at)) < 0)
				break; /* no HTTP: said below */
			if (n > 0) {
				sep = resp + body_at - 4;
				clen = content_length(resp, sep);
				if (clen == -2 || clen > (long long)max)
					break; /* said below */
				chunked = clen == -1 && is_chunked(resp, sep);
			}
		}
		/* A chunked body, decoded as it comes: it ends at its last
		 * chunk's trailers (a connection kept open after is no
		 * wait), and framing that is not chunked is said at once. */
		if (chunked && rlen > body_at + fed) {
			ssize_t t = chunked_feed(&ch, (const uint8_t *)resp + body_at + fed,
						 rlen - body_at - fed, NULL, NULL);

			if (t < 0)
				break; /* said below */
			fed += (size_t)t;
			if (ch.state == CH_DONE) {
				rlen = body_at + fed; /* what follows is no part of it */
				break;
			}
		}
		if (body_at && clen >= 0 && rlen - body_at >= (size_t)clen) {
			rlen = body_at + (size_t)clen; /* what follows is no part of it */
			break;
		}
		if (rlen - body_at > max) {
			snprintf(why, whylen, "an answer past %zu MiB, the largest %s %s has",
				 max >> 20, method, path);
			if (outcome_unknown(o, 1, why, whylen))
				status = -2;
			goto out;
		}
	}
	snprintf(why, whylen, "no HTTP response%s",
		 o->url && !o->https ? " (does it serve HTTPS? then use https://)"
		 : !o->url	     ? " (is it regiond's API socket? regionfwd's control socket, "
				       "for one, answers no HTTP)"
				     : "");
	/* resp is allocated before the first read: a connection closed
	 * unanswered is an empty one (once tested as resp == NULL, never
	 * true, so a write whose regiond died before answering exited 3,
	 * "nothing changed", not 5). */
	if (resp == NULL || rlen == 0) {
		if (outcome_unknown(o, 1, why, whylen)) /* sent whole, closed unanswered */
			status = -2;
		goto out;
	}
	resp[rlen] = '\0';
	if (n <= 0 || body_at == 0 || clen == -2 || clen > (long long)max) {
		if (n < 0 && status_of(resp) == 101)
			snprintf(why, whylen,
				 "an HTTP 101 Switching Protocols, which regionctl never asks for: "
				 "no answer");
		else if (body_at && clen == -2)
			snprintf(why, whylen,
				 "an HTTP answer whose Content-Length is not a length");
		else if (body_at && clen > (long long)max)
			snprintf(why, whylen,
				 "an answer of %lld bytes, past %zu MiB, the largest %s %s has",
				 clen, max >> 20, method, path);
		if (outcome_unknown(o, 1, why, whylen)) /* sent whole, not answered in HTTP */
			status = -2;
		goto out;
	}
	sep = resp + body_at - 4;
	if (chunked) {
		char cwhy[160];

		if (ch.state != CH_DONE ||
		    dechunk(resp + body_at, rlen - body_at, max, &dlen, 1, cwhy, sizeof(cwhy))) {
			if (ch.state == CH_BAD)
				snprintf(why, whylen,
					 "an HTTP answer whose chunked body is not chunked framing "
					 "(%s)",
					 ch.why);
			else
				snprintf(why, whylen,
					 "the answer was cut short (its chunked body has no end)");
			if (outcome_unknown(o, 1, why, whylen))
				status = -2;
			goto out;
		}
		rlen = body_at + dlen;
	}
	/* Over TLS a connection cut without close_notify may be an attacker's
	 * truncation, and over either a body shorter than its Content-Length
	 * is one cut short: the body must be as long as announced. */
	if ((clen >= 0 && (size_t)clen != rlen - body_at) ||
	    (ctl_conn_truncated(c) && clen < 0 && !chunked)) {
		snprintf(why, whylen, "%sthe answer was cut short (%zu bytes of its body, %s)",
			 ctl_conn_truncated(c) ? "TLS: " : "", rlen - body_at,
			 clen >= 0 ? "its Content-Length more" : "no Content-Length");
		if (outcome_unknown(o, 1, why, whylen)) /* sent whole, answered in part */
			status = -2;
		goto out;
	}
	status = n;
	/* by its length: a NUL byte in it is no end of it */
	*out = json_loadb(sep + 4, rlen - body_at, 0, &jerr);
	if (*out == NULL) /* said by the caller */
		snprintf(why, whylen, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
out:
	if (cut && status < 0) /* no answer to read after all */
		snprintf(why, whylen, "%s", cut_why);
	ctl_conn_close(c);
	free(req);
	free(resp);
	free(b);
	return status;
}

/* The file whose text this run sent as the body's "document" (validate,
 * diff, apply), or NULL: the API names that text "document", and the
 * operator knows it by its file (docs/regionctl.md: file:line: path). */
static const char *sent_document;

/* That file's document as it was written, when what was sent is another
 * text (its names files embedded: compact JSON, no lines): a refusal
 * regiond or regionfwd names by field alone is said at the field's line of
 * the file (sent_document_line). */
static struct fwd_doc *sent_written;

/* The line of @path in the written document, or 0. */
static uint32_t sent_document_line(const char *path)
{
	return sent_written && path && *path ? fwd_node_line_of(fwd_doc_root(sent_written), path)
					     : 0;
}

/* --names-dir: the one directory besides a document's own that its
 * names_file paths may reach (absolute paths beneath it). Only the
 * command line gives it: a document that could name its own would be
 * confined by nothing (fwd_confine.h). */
static const char *names_dir;

/* 'prefixes add|remove' FILE: the line of each prefix sent, in the order
 * sent, so that regiond's refusal of changes[0].add[N] is said at FILE:LINE
 * as regionctl's own are (on a batch of thousands, the index alone did not
 * say which line to fix). */
static const char *sent_prefix_file;
static unsigned *sent_prefix_lines;
static size_t sent_prefix_n;

/* The line of the prefix @path names (changes[0].add[N] or .remove[N], and
 * anything below it), or 0. */
static unsigned sent_prefix_line(const char *path)
{
	const char *p = path;
	unsigned long k;
	char *end;

	if (sent_prefix_lines == NULL || path == NULL || strncmp(p, "changes[0].", 11) != 0)
		return 0;
	p += 11;
	p += strspn(p, "abcdefghijklmnopqrstuvwxyz");
	if (*p != '[' || p[1] < '0' || p[1] > '9')
		return 0;
	errno = 0;
	k = strtoul(p + 1, &end, 10);
	if (errno || *end != ']' || (end[1] != '\0' && end[1] != '.') || k >= sent_prefix_n)
		return 0;
	return sent_prefix_lines[k];
}

/* Whether a credential went with the requests (--token-file, --cert): a
 * 401 without one says which option gives it, not only the header. */
static int sent_credential;

static int show_error(int status, json_t *r)
{
	json_t *e = json_object_get(r, "error");
	const char *file = json_string_value(json_object_get(e, "file"));

	if (sent_document && file && strcmp(file, "document") == 0)
		file = sent_document;
	int line = (int)json_integer_value(json_object_get(e, "line"));
	const char *path = json_string_value(json_object_get(e, "path"));
	unsigned pline = (file == NULL || *file == '\0') ? sent_prefix_line(path) : 0;

	if (pline) {
		file = sent_prefix_file;
		line = (int)pline;
	}
	/* A document sent with its names files embedded has no lines, and a
	 * refusal of regionfwd's (a port the node lacks) none either: the
	 * field's line in the file as written. Not for a refusal inside an
	 * embedded names file (its own name and lines are given). */
	if (line == 0 && sent_written && (file == NULL || *file == '\0' || file == sent_document) &&
	    (pline = sent_document_line(path)) != 0) {
		file = sent_document;
		line = (int)pline;
	}

	const char *code = json_string_value(json_object_get(e, "code"));
	/* As the CLIs print their own errors (fwd_err_str): a reason quotes
	 * what a document said, control characters shown as \xNN. */
	struct fwd_err shown = {.line = line > 0 ? (uint32_t)line : 0};
	char msg[1024], head[64];

	snprintf(shown.file, sizeof(shown.file), "%s", file ? file : "");
	snprintf(shown.path, sizeof(shown.path), "%s", path ? path : "");
	snprintf(shown.reason, sizeof(shown.reason), "%s",
		 json_string_value(json_object_get(e, "reason")) ?: "no reason given");
	fprintf(stderr, "regionctl: %s (%d): %s%s\n",
		fwd_escape_controls(code ? code : "error", head, sizeof(head)), status,
		fwd_err_str(&shown, msg, sizeof(msg)),
		status == 401 && !sent_credential
			? " (regionctl sent none: give --token-file F, a file holding a token of "
			  "regiond's --token-file, or --read-token-file for reads; or --cert and "
			  "--key)"
			: "");
	return (int)ctl_exit_code_of(code, status);
}

/*
 * What a 2xx answer must hold, per route: each field regionctl reads from
 * it (to print it, or to count a write as carried out), by its path from
 * the answer's root, and its JSON type. An answer that lacks one, or holds
 * it as another type, is not the API's answer (another service behind
 * --url, a proxy, a regiond that is not what it should be): once a '200 {}'
 * read as a status block of zeros, 'valid' for validate, an empty history,
 * and 'show table' crashed on it. A read then shows nothing and names the
 * field (call()); a write's outcome is unknown. A path is member names
 * joined by '.', "[]" for each element of a list ("history[].id"), "*"
 * for each member of an object ("counters.*"); a field whose parent is
 * absent or null (where its own entry allows that) is not checked.
 */
enum ans_type {
	AT_OBJ = 1,
	AT_ARR,
	AT_STR,
	AT_BOOL,
	AT_TRUE,
	AT_NUM, /* an integer or a real */
	AT_INT,
	AT_UINT, /* an integer >= 0: a counter, a time */
	AT_ID, /* an integer >= 1: a generation that exists */
};
#define AT_NULL 0x100 /* or null */
#define AT_OPT 0x200 /* or absent */
#define AT_MASK 0xff

static const char *const ans_type_names[] = {
	[AT_OBJ] = "an object",	     [AT_ARR] = "a list",
	[AT_STR] = "a string",	     [AT_BOOL] = "true or false",
	[AT_TRUE] = "true",	     [AT_NUM] = "a number",
	[AT_INT] = "an integer",     [AT_UINT] = "an integer >= 0",
	[AT_ID] = "an integer >= 1",
};

struct ans_field {
	const char *path;
	unsigned type; /* enum ans_type, | AT_NULL, AT_OPT */
};

/* A write's outcome (api.md), with every field its line prints: a table
 * change (apply, link, rollback) its generation and whether it changed,
 * and its confirm window when it has one; confirm the generation
 * confirmed; a prefix batch its generation and counts; detach, unpin,
 * abort what they say. Only the outcome was checked once: a 200 whose
 * "hash" was a number printed "(-)", and unpin's "node: 7" an empty name,
 * exit 0. */
static const struct ans_field ans_table_change[] = {
	{"changed", AT_BOOL},
	{"generation", AT_OBJ},
	{"generation.id", AT_ID},
	{"generation.hash", AT_STR},
	{"confirm_by", AT_INT | AT_OPT},
	{"confirm_within_s", AT_INT | AT_OPT},
	{"taken_back", AT_BOOL | AT_OPT},
	{0},
};

static const struct ans_field ans_confirm[] = {
	{"confirmed", AT_ID},
	{"already", AT_BOOL | AT_OPT},
	{0},
};

static const struct ans_field ans_prefixes[] = {
	{"generation", AT_ID},
	{"hash", AT_STR},
	{"noop", AT_BOOL},
	{"added", AT_UINT},
	{"removed", AT_UINT},
	{"unchanged", AT_UINT},
	{"taken_back", AT_BOOL | AT_OPT},
	{0},
};

static const struct ans_field ans_detach[] = {
	{"detached", AT_BOOL},
	{"pending", AT_BOOL | AT_OPT},
	{0},
};

static const struct ans_field ans_unpin[] = {
	{"unpinned", AT_OBJ},
	{"unpinned.node", AT_STR},
	{"unpinned.table", AT_STR | AT_NULL | AT_OPT},
	{"unpinned.rollout", AT_STR | AT_NULL | AT_OPT},
	{"unpinned.owner", AT_STR},
	{0},
};

static const struct ans_field ans_abort[] = {
	{"rollout", AT_OBJ},
	{"rollout.id", AT_STR},
	{"rollout.previous", AT_STR | AT_NULL},
	{0},
};

/* GET /v1/status: status, top's frames, the generation apply and link send.
 * What health and the exit code stand on (health, the generation, the
 * dataplane's connection and sync) must be there; every other field may be
 * absent, and is checked when present: a regiond of another version (a
 * field added since, or retired) is shown, not called unreachable -- a
 * monitor paged "unreachable" for a healthy box of a mixed fleet (a
 * review). */
static const struct ans_field ans_status[] = {
	{"generation", AT_OBJ | AT_NULL}, /* null: regiond has no table yet */
	{"generation.id", AT_UINT},
	{"generation.hash", AT_STR | AT_OPT},
	{"generation.time", AT_INT | AT_OPT},
	{"generation.author", AT_STR | AT_OPT},
	{"generation.comment", AT_STR | AT_OPT},
	{"dataplane", AT_OBJ},
	{"dataplane.connected", AT_BOOL},
	{"dataplane.in_sync", AT_BOOL},
	{"dataplane.report_age_ms", AT_INT | AT_NULL | AT_OPT},
	{"dataplane.status", AT_OBJ | AT_NULL | AT_OPT}, /* regionfwd's last report */
	{"dataplane.status.generation", AT_OBJ | AT_OPT},
	{"dataplane.status.generation.id", AT_UINT | AT_OPT},
	{"dataplane.status.workers", AT_UINT | AT_OPT},
	{"dataplane.status.packets", AT_OBJ | AT_OPT},
	{"dataplane.status.packets.rx", AT_UINT | AT_OPT},
	{"dataplane.status.packets.tx", AT_UINT | AT_OPT},
	{"dataplane.status.packets.dropped", AT_UINT | AT_OPT},
	{"dataplane.status.mbufs", AT_OBJ | AT_NULL | AT_OPT},
	{"dataplane.status.mbufs.pool", AT_UINT | AT_OPT},
	{"dataplane.status.mbufs.in_use", AT_UINT | AT_OPT},
	{"dataplane.status.links", AT_ARR | AT_OPT},
	{"dataplane.status.links[].name", AT_STR | AT_OPT},
	{"dataplane.status.links[].port", AT_STR | AT_OPT},
	{"dataplane.status.links[].admin", AT_STR | AT_OPT},
	{"dataplane.status.links[].oper", AT_STR | AT_OPT},
	{"dataplane.status.ports", AT_ARR | AT_OPT},
	{"dataplane.status.ports[].name", AT_STR | AT_OPT},
	{"dataplane.status.ports[].link", AT_STR | AT_OPT},
	{"dataplane.status.ports[].speed_mbps", AT_UINT | AT_NULL | AT_OPT},
	{"dataplane.status.ports[].duplex", AT_STR | AT_NULL | AT_OPT},
	{"dataplane.status.ports[].stats", AT_OBJ | AT_NULL | AT_OPT}, /* null: not started */
	{"dataplane.status.ports[].stats.ipackets", AT_UINT | AT_OPT},
	{"dataplane.status.ports[].stats.opackets", AT_UINT | AT_OPT},
	{"dataplane.status.ports[].stats.ierrors", AT_UINT | AT_OPT},
	{"dataplane.status.ports[].stats.oerrors", AT_UINT | AT_OPT},
	{"dataplane.status.ports[].stats.imissed", AT_UINT | AT_OPT},
	{"dataplane.status.ports[].stats.rx_nombuf", AT_UINT | AT_OPT},
	{"confirm", AT_OBJ | AT_NULL | AT_OPT},
	{"confirm.generation", AT_UINT | AT_OPT},
	{"confirm.revert_to", AT_UINT | AT_OPT},
	{"confirm.deadline", AT_INT | AT_OPT},
	{"confirm.reverts_in_s", AT_INT | AT_OPT},
	{"alarm", AT_STR | AT_NULL | AT_OPT},
	{"state_disk", AT_OBJ | AT_NULL | AT_OPT},
	{"state_disk.free_bytes", AT_UINT | AT_OPT},
	{"state_disk.need_bytes", AT_UINT | AT_OPT},
	{"filters", AT_OBJ | AT_NULL | AT_OPT},
	{"filters.generation", AT_UINT | AT_OPT},
	{"filters.program_id", AT_UINT | AT_OPT},
	{"filters.interfaces", AT_ARR | AT_OPT},
	{"filters.interfaces[].interface", AT_STR | AT_OPT},
	{"filters.interfaces[].mode", AT_STR | AT_OPT},
	{"filters.interfaces[].program_id", AT_UINT | AT_OPT},
	{"filters.interfaces[].ours", AT_BOOL | AT_OPT},
	{"filters.counters", AT_OBJ | AT_OPT},
	{"filters.counters.*", AT_UINT | AT_OPT},
	/* the feed's summary: {"state": "down"} alone before its first */
	{"feed", AT_OBJ | AT_NULL | AT_OPT},
	{"feed.state", AT_STR | AT_OPT},
	{"feed.since", AT_INT | AT_OPT},
	{"feed.hold_left_s", AT_NUM | AT_OPT},
	{"feed.reason", AT_STR | AT_NULL | AT_OPT},
	{"feed.learned", AT_UINT | AT_OPT},
	{"feed.owned", AT_UINT | AT_OPT},
	{"feed.shadowed", AT_UINT | AT_OPT},
	{"feed.conflicting", AT_UINT | AT_OPT},
	{"feed.refused", AT_UINT | AT_OPT},
	{"feed.overflow", AT_UINT | AT_OPT},
	{"feed.max_prefixes", AT_UINT | AT_OPT},
	{"feed.pending", AT_UINT | AT_OPT},
	{"feed.resyncs", AT_UINT | AT_OPT},
	{"feed.losses", AT_UINT | AT_OPT},
	{"feed.hold_expiries", AT_UINT | AT_OPT},
	{"feed.last_loss", AT_OBJ | AT_NULL | AT_OPT},
	{"feed.last_loss.time", AT_INT | AT_OPT},
	{"feed.last_loss.reason", AT_STR | AT_OPT},
	{"feed.last_loss.withdrawn_after_s", AT_NUM | AT_NULL | AT_OPT},
	{"feed.last_loss.up_after_s", AT_NUM | AT_NULL | AT_OPT},
	{"feed.tables", AT_ARR | AT_OPT},
	{"feed.tables[].region", AT_STR | AT_OPT},
	{"feed.tables[].table", AT_UINT | AT_OPT},
	{"feed.tables[].learned_v4", AT_UINT | AT_OPT},
	{"feed.tables[].learned_v6", AT_UINT | AT_OPT},
	/* null: regiond holds no table yet */
	{"feed.tables[].in_table", AT_BOOL | AT_NULL | AT_OPT},
	{"feed.bird", AT_OBJ | AT_NULL | AT_OPT},
	{"feed.bird.sessions", AT_ARR | AT_OPT},
	{"feed.bird.sessions[].name", AT_STR | AT_OPT},
	{"feed.bird.sessions[].state", AT_STR | AT_OPT},
	{"feed.bird.sessions[].info", AT_STR | AT_OPT},
	{"feed.bird.sessions_total", AT_UINT | AT_OPT},
	{"feed.bird.sessions_down", AT_UINT | AT_OPT},
	{"feed.bird.sessions_unlisted", AT_UINT | AT_OPT},
	{"feed.bird.error", AT_STR | AT_NULL | AT_OPT},
	{"feed.last_batch", AT_OBJ | AT_NULL | AT_OPT},
	{"feed.last_batch.time", AT_INT | AT_OPT},
	{"feed.last_batch.added", AT_UINT | AT_OPT},
	{"feed.last_batch.removed", AT_UINT | AT_OPT},
	{"feed.last_batch.refused", AT_UINT | AT_OPT},
	{"feed.last_batch.duration_ms", AT_UINT | AT_OPT},
	{"feed.last_batch.generation", AT_UINT | AT_OPT},
	{"feed.shadowed_prefixes", AT_ARR | AT_OPT},
	{"feed.shadowed_prefixes[].prefix", AT_STR | AT_OPT},
	{"feed.shadowed_prefixes[].region", AT_STR | AT_OPT},
	{"feed.refusals", AT_ARR | AT_OPT},
	{"feed.refusals[].prefix", AT_STR | AT_OPT},
	{"feed.refusals[].region", AT_STR | AT_OPT},
	{"feed.refusals[].reason", AT_STR | AT_OPT},
	{"feed.conflicting_prefixes", AT_ARR | AT_OPT},
	{"feed.conflicting_prefixes[].prefix", AT_STR | AT_OPT},
	{"feed.conflicting_prefixes[].regions", AT_ARR | AT_OPT},
	{"feed.conflicting_prefixes[].regions[]", AT_STR | AT_OPT},
	{"feed.conflicting_prefixes[].held_by", AT_STR | AT_OPT},
	{"feed.conflicting_prefixes[].refused", AT_BOOL | AT_OPT},
	{"feed.overflow_prefixes", AT_ARR | AT_OPT},
	{"feed.overflow_prefixes[].prefix", AT_STR | AT_OPT},
	{"feed.overflow_prefixes[].region", AT_STR | AT_OPT},
	/* null: no commit-confirm generation awaits confirmation */
	{"feed.confirm_wait", AT_OBJ | AT_NULL | AT_OPT},
	{"feed.confirm_wait.text", AT_STR | AT_OPT},
	{"feed.last_error", AT_STR | AT_NULL | AT_OPT},
	/* the fleet agent's view (GET /v1/fleet without its report) */
	{"fleet", AT_OBJ | AT_NULL | AT_OPT},
	{"fleet.node", AT_STR | AT_OPT},
	{"fleet.facility", AT_STR | AT_OPT},
	{"fleet.state", AT_STR | AT_OPT},
	{"fleet.connected", AT_BOOL | AT_OPT},
	{"fleet.stale", AT_BOOL | AT_OPT},
	{"fleet.endpoint", AT_STR | AT_NULL | AT_OPT},
	{"fleet.target", AT_OBJ | AT_NULL | AT_OPT},
	{"fleet.target.table", AT_STR | AT_NULL | AT_OPT},
	{"fleet.target.source", AT_STR | AT_NULL | AT_OPT},
	{"fleet.target.rollout", AT_STR | AT_NULL | AT_OPT},
	{"fleet.target.revision", AT_INT | AT_OPT},
	{"fleet.pin", AT_OBJ | AT_NULL | AT_OPT},
	{"fleet.pin.table", AT_STR | AT_NULL | AT_OPT},
	{"fleet.pin.rollout", AT_STR | AT_NULL | AT_OPT},
	{"fleet.pin.stray", AT_BOOL | AT_OPT},
	{"fleet.apply_error", AT_OBJ | AT_NULL | AT_OPT},
	{"fleet.apply_error.table", AT_STR | AT_NULL | AT_OPT},
	{"fleet.apply_error.reason", AT_STR | AT_OPT},
	{"fleet.apply_error.message", AT_STR | AT_OPT},
	{"fleet.last_error", AT_STR | AT_NULL | AT_OPT},
	{"fleet.last_error_at", AT_INT | AT_NULL | AT_OPT},
	{"health", AT_OBJ},
	{"health.state", AT_STR},
	{"health.exit", AT_INT},
	{"health.reason", AT_STR},
	{0},
};

/* GET /v1/table: show, prefixes list (the model's keys: fwd_schema.def). */
static const struct ans_field ans_table[] = {
	{"generation", AT_OBJ},
	{"generation.id", AT_ID},
	{"document", AT_STR},
	{"model", AT_OBJ},
	{"model.regions", AT_OBJ},
	{"model.regions.*", AT_OBJ},
	{"model.regions.*.prefixes", AT_ARR},
	{"model.regions.*.prefixes[]", AT_STR},
	{"model.services", AT_OBJ},
	{"model.services.*", AT_ARR},
	{"model.services.*[]", AT_STR},
	{"model.links", AT_OBJ},
	{"model.links.*", AT_OBJ},
	{"model.links.*.port", AT_STR},
	{"model.links.*.next_hop_mac", AT_STR},
	{"model.links.*.vlan", AT_UINT | AT_OPT},
	{"model.links.*.state", AT_STR},
	{"model.links.*.tags", AT_ARR},
	{"model.links.*.tags[]", AT_STR},
	{"model.link_groups", AT_OBJ},
	{"model.link_groups.*", AT_OBJ},
	{"model.link_groups.*.members", AT_OBJ},
	{"model.link_groups.*.members.*", AT_UINT},
	{"model.policies", AT_ARR},
	{"model.policies[]", AT_OBJ},
	{"model.policies[].region", AT_STR},
	{"model.policies[].service", AT_STR},
	{"model.policies[].action", AT_STR},
	{"model.policies[].to", AT_STR | AT_OPT},
	{"model.policies[].mirror", AT_STR | AT_OPT},
	{"model.default", AT_OBJ},
	{"model.default.action", AT_STR},
	{"model.default.to", AT_STR | AT_OPT},
	{"model.default.mirror", AT_STR | AT_OPT},
	{0},
};

static const struct ans_field ans_history[] = {
	{"history", AT_ARR},
	{"history[]", AT_OBJ},
	{"history[].id", AT_ID},
	{"history[].time", AT_INT},
	{"history[].hash", AT_STR},
	{"history[].author", AT_STR},
	{"history[].comment", AT_STR},
	{"history[].by", AT_STR | AT_OPT},
	{0},
};

/* POST /v1/validate (validate, diff): a 200 is a valid table, never a
 * '{}' read as one. diff and impact are absent while regiond has no table. */
static const struct ans_field ans_validate[] = {
	{"valid", AT_TRUE},
	{"diff", AT_OBJ | AT_OPT},
	{"diff.regions.added[]", AT_STR},
	{"diff.regions.removed[]", AT_STR},
	{"diff.regions.changed[].name", AT_STR},
	{"diff.services.added[]", AT_STR},
	{"diff.services.removed[]", AT_STR},
	{"diff.services.changed[].name", AT_STR},
	{"diff.links.added[]", AT_STR},
	{"diff.links.removed[]", AT_STR},
	{"diff.links.changed[].name", AT_STR},
	{"diff.link_groups.added[]", AT_STR},
	{"diff.link_groups.removed[]", AT_STR},
	{"diff.link_groups.changed[].name", AT_STR},
	{"diff.policies.added[]", AT_STR},
	{"diff.policies.removed[]", AT_STR},
	{"diff.policies.changed[].name", AT_STR},
	{"diff.filters_section", AT_STR | AT_NULL | AT_OPT},
	{"impact", AT_OBJ | AT_OPT},
	{"impact.changes", AT_ARR},
	{"impact.changes[].region", AT_STR},
	{"impact.changes[].service", AT_STR},
	{"impact.changes[].before", AT_STR},
	{"impact.changes[].after", AT_STR},
	{"impact.changes[].packets", AT_NUM | AT_OPT},
	{"impact.changes[].policy_packets", AT_NUM | AT_OPT},
	{"impact.moves", AT_ARR | AT_OPT},
	{"impact.moves[]", AT_OBJ},
	{"impact.moves[].outcomes[].service", AT_STR},
	{"impact.filter_rules[].name", AT_STR},
	{"impact.filter_rules[].change", AT_STR},
	{"impact.content_rules[].name", AT_STR},
	{"impact.content_rules[].change", AT_STR},
	{"impact.traffic", AT_OBJ | AT_OPT},
	{0},
};

/* POST /v1/explain: what regionfwd's classifier said of the packet. */
static const struct ans_field ans_explain[] = {
	{"generation", AT_ID},
	{"hash", AT_STR},
	/* null, with flow_hash: a packet the parser drops for an address
	 * (martian_source, martian_destination), before any table is asked */
	{"region", AT_STR | AT_NULL},
	{"prefix", AT_STR | AT_NULL},
	{"service", AT_STR | AT_NULL},
	{"policy", AT_STR | AT_NULL},
	{"action", AT_STR},
	{"target", AT_STR | AT_NULL | AT_OPT},
	{"group", AT_STR | AT_NULL},
	{"flow_hash", AT_UINT | AT_NULL | AT_OPT},
	{"link", AT_STR | AT_NULL},
	{"port", AT_STR | AT_NULL | AT_OPT},
	/* a regionfwd older than these has neither */
	{"port_down", AT_BOOL | AT_NULL | AT_OPT},
	{"group_ports_down", AT_ARR | AT_NULL | AT_OPT},
	{"group_ports_down[]", AT_STR},
	{"mirror", AT_STR | AT_NULL},
	{"drop_reason", AT_STR | AT_NULL},
	{"content", AT_OBJ | AT_NULL | AT_OPT},
	{"content.scoped_fields", AT_ARR},
	{"content.scoped_fields[]", AT_STR},
	{"content.extracted", AT_OBJ},
	{"content.extracted.*", AT_STR | AT_NULL},
	{"content.matches", AT_ARR},
	{"content.matches[].rule", AT_STR},
	{"content.matches[].field", AT_STR},
	{"content.matches[].action", AT_STR},
	{"content.verdict", AT_STR | AT_NULL | AT_OPT},
	{"xdp", AT_OBJ | AT_NULL | AT_OPT},
	{"xdp.section", AT_BOOL},
	{"xdp.verdict", AT_STR},
	{"xdp.to_host_stack", AT_BOOL | AT_OPT},
	{"xdp.by", AT_STR},
	{"xdp.rule", AT_STR | AT_NULL | AT_OPT},
	{"xdp.rate_pps", AT_UINT | AT_OPT},
	{"xdp.burst", AT_UINT | AT_OPT},
	{"xdp.enforced_on", AT_ARR},
	{"xdp.enforced_on[]", AT_STR},
	{"xdp.not_enforced_on", AT_ARR},
	{"xdp.not_enforced_on[].interface", AT_STR},
	{"xdp.not_enforced_on[].why", AT_STR},
	{0},
};

/* GET /v1/filters: filter status. */
static const struct ans_field ans_filters[] = {
	{"program_id", AT_UINT},
	{"generation", AT_UINT},
	{"adopted", AT_BOOL},
	{"interfaces", AT_ARR},
	{"interfaces[].interface", AT_STR},
	{"interfaces[].mode", AT_STR},
	{"interfaces[].program_id", AT_UINT},
	{"interfaces[].attached_as", AT_STR},
	{"interfaces[].ours", AT_BOOL},
	{"rules", AT_OBJ},
	{"rules.*", AT_OBJ},
	{"rules.*.action", AT_STR},
	{"rules.*.packets", AT_UINT},
	{"rules.*.bytes", AT_UINT},
	{"counters", AT_OBJ},
	{"counters.*", AT_UINT},
	{0},
};

/* GET /v1/fleet/rollouts/active: fleet rollout (the record as in etcd). */
static const struct ans_field ans_rollout_active[] = {
	{"rollout", AT_OBJ},
	{"rollout.id", AT_STR},
	{"rollout.facility", AT_STR},
	{"rollout.state", AT_STR},
	{"rollout.table", AT_STR},
	{"rollout.previous", AT_STR | AT_NULL},
	{"rollout.created_by", AT_STR},
	{"rollout.created_at", AT_UINT},
	{"rollout.wave", AT_INT},
	{"rollout.waves", AT_UINT},
	{"rollout.writes", AT_UINT},
	{"rollout.options", AT_OBJ},
	{"rollout.abort", AT_OBJ | AT_NULL},
	{"rollout.nodes", AT_ARR},
	{"rollout.nodes[].name", AT_STR},
	{"rollout.nodes[].wave", AT_INT},
	{"rollout.nodes[].status", AT_STR},
	{"rollout.nodes[].pinned", AT_BOOL},
	{"driver", AT_OBJ | AT_OPT},
	{0},
};

/* the finished ones: a record, or {key, error} for one that does not parse */
static const struct ans_field ans_rollouts[] = {
	{"rollouts", AT_ARR},
	{"rollouts[]", AT_OBJ},
	{0},
};

/* each node's report as it wrote it, or {key, error} */
static const struct ans_field ans_fleet_nodes[] = {
	{"facility", AT_STR},
	{"nodes", AT_ARR},
	{"nodes[]", AT_OBJ},
	/* the report's age, added by regiond (absent from an older one's) */
	{"nodes[].age_ms", AT_UINT | AT_OPT},
	{"nodes[].report_stale", AT_BOOL | AT_OPT},
	{"report_stale_after_ms", AT_UINT | AT_OPT},
	{"pins", AT_ARR | AT_NULL | AT_OPT},
	{"pins[]", AT_OBJ},
	{0},
};

static const struct ans_field ans_rollout_made[] = {
	{"rollout", AT_OBJ},
	{"rollout.id", AT_STR},
	{"rollout.table", AT_STR},
	{0},
};

/* Every route regionctl reads an answer of; a route not here needs an
 * object. */
static const struct ans_route {
	const char *method, *path;
	const struct ans_field *fields;
	/* its largest answer, MiB; 0: ANSWER_MAX_MIB. A table's holds its
	 * document and its model, each up to regiond's --max-body (256 MiB by
	 * default), and validate's diff may list every prefix of both. */
	unsigned max_mib;
} ans_routes[] = {
	{"PUT", "/v1/table", ans_table_change, 0},
	{"PATCH", "/v1/table", ans_table_change, 0},
	/* a dry run's answer is validate's (ans_check) */
	{"POST", "/v1/rollback", ans_table_change, 1024},
	{"POST", "/v1/confirm", ans_confirm, 0},
	{"POST", "/v1/prefixes", ans_prefixes, 0},
	{"POST", "/v1/filters/detach", ans_detach, 0},
	{"POST", "/v1/fleet/unpin", ans_unpin, 0},
	{"POST", "/v1/fleet/rollouts/active/abort", ans_abort, 0},
	{"GET", "/v1/status", ans_status, 0},
	{"GET", "/v1/table", ans_table, 1024},
	{"GET", "/v1/history", ans_history, 0},
	{"POST", "/v1/validate", ans_validate, 1024},
	{"POST", "/v1/explain", ans_explain, 0},
	{"GET", "/v1/filters", ans_filters, 0},
	{"GET", "/v1/fleet/rollouts/active", ans_rollout_active, 0},
	{"GET", "/v1/fleet/rollouts", ans_rollouts, 0},
	{"GET", "/v1/fleet/nodes", ans_fleet_nodes, 0},
	{"POST", "/v1/fleet/rollouts", ans_rollout_made, 0},
};

/* Any other answer: a status, a history of --keep generations, an error
 * are a few KiB to some MiB. */
#define ANSWER_MAX_MIB 64

static const struct ans_route *ans_route_of(const char *method, const char *path)
{
	for (size_t i = 0; i < sizeof(ans_routes) / sizeof(ans_routes[0]); i++)
		if (!strcmp(ans_routes[i].method, method) && !strcmp(ans_routes[i].path, path))
			return &ans_routes[i];
	return NULL;
}

/* The most bytes of an answer's body regionctl takes from @method @path. */
static size_t answer_max(const char *method, const char *path)
{
	const struct ans_route *r = ans_route_of(method, path);

	return (size_t)(r && r->max_mib ? r->max_mib : ANSWER_MAX_MIB) << 20;
}

/* What @v is, for a message: "a string", "-3", "null". */
static const char *ans_what(const json_t *v, char *buf, size_t len)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "a list";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	case JSON_REAL:
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	default:
		return "null";
	}
}

/* Whether @v (NULL: absent) is of @type; else -1 with @why naming @at. */
static int ans_leaf(const json_t *v, unsigned type, const char *at, char *why, size_t len)
{
	unsigned t = type & AT_MASK;
	char buf[64];
	int ok;

	if (v == NULL || json_is_null(v)) {
		if ((v == NULL && (type & AT_OPT)) || (v != NULL && (type & AT_NULL)))
			return 0;
		snprintf(why, len, "%s: %s, expected %s", at, v ? "null" : "missing",
			 ans_type_names[t]);
		return -1;
	}
	switch (t) {
	case AT_OBJ:
		ok = json_is_object(v);
		break;
	case AT_ARR:
		ok = json_is_array(v);
		break;
	case AT_STR:
		ok = json_is_string(v);
		break;
	case AT_BOOL:
		ok = json_is_boolean(v);
		break;
	case AT_TRUE:
		ok = json_is_true(v);
		break;
	case AT_NUM:
		ok = json_is_number(v);
		break;
	case AT_INT:
		ok = json_is_integer(v);
		break;
	default: /* AT_UINT, AT_ID */
		ok = json_is_integer(v) && json_integer_value(v) >= (t == AT_ID ? 1 : 0);
	}
	if (ok)
		return 0;
	snprintf(why, len, "%s: expected %s, got %s", at, ans_type_names[t],
		 ans_what(v, buf, sizeof(buf)));
	return -1;
}

/* Check the field @p (the rest of a path) of @v, reached by @at (its
 * first @n bytes so far). The path's depth is the table's, never the
 * answer's: nesting in the answer costs no stack here. */
static int ans_walk(const json_t *v, const char *p, unsigned type, char *at, size_t n, size_t cap,
		    char *why, size_t len)
{
	const json_t *e;
	const char *k;
	size_t i;

	if (*p == '.')
		p++;
	if (*p == '\0')
		return ans_leaf(v, type, at, why, len);
	if (v == NULL || json_is_null(v)) /* its own entry says whether it may be */
		return 0;
	if (strncmp(p, "[]", 2) == 0) {
		if (!json_is_array(v))
			return ans_leaf(v, AT_ARR, at, why, len);
		json_array_foreach(v, i, e) {
			size_t m = n + (size_t)snprintf(at + n, cap - n, "[%zu]", i);

			if (ans_walk(e, p + 2, type, at, m < cap ? m : cap - 1, cap, why, len))
				return -1;
		}
		at[n] = '\0';
		return 0;
	}
	if (!json_is_object(v))
		return ans_leaf(v, AT_OBJ, at, why, len);
	if (*p == '*') {
		json_object_foreach((json_t *)v, k, e) {
			size_t m = n + (size_t)snprintf(at + n, cap - n, "%s%s", n ? "." : "", k);

			if (ans_walk(e, p + 1, type, at, m < cap ? m : cap - 1, cap, why, len))
				return -1;
		}
		at[n] = '\0';
		return 0;
	}
	{
		size_t kl = strcspn(p, ".["), m;
		char key[64];

		snprintf(key, sizeof(key), "%.*s", (int)kl, p);
		m = n + (size_t)snprintf(at + n, cap - n, "%s%s", n ? "." : "", key);
		return ans_walk(json_object_get(v, key), p + kl, type, at, m < cap ? m : cap - 1,
				cap, why, len);
	}
}

/* Whether @r is what the API answers @method @path with (ans_routes);
 * else -1 with @why naming the first field that is not. */
static int ans_check(const char *method, const char *path, const json_t *r, char *why, size_t len)
{
	const struct ans_route *route = ans_route_of(method, path);
	const struct ans_field *f = route ? route->fields : NULL;
	char at[256] = "";

	if (route && strcmp(route->path, "/v1/rollback") == 0 &&
	    json_object_get(r, "rollback_to") != NULL)
		f = ans_validate; /* rollback --dry-run */

	if (!json_is_object(r)) {
		snprintf(why, len, "the answer is %s, not an object", ans_what(r, at, sizeof(at)));
		return -1;
	}
	for (; f && f->path; f++)
		if (ans_walk(r, f->path, f->type, at, 0, sizeof(at), why, len))
			return -1;
	return 0;
}

/* Reals with 15 significant digits: a rate rounded to 0.01 printed with
 * jansson's 17 as 0.10000000000000001; every real regionctl prints (rates,
 * seconds, ratios) is exact to far fewer digits than 15. */
#define JSON_REALS JSON_REAL_PRECISION(15)

static void print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REALS);
	putchar('\n');
}

/* -j (main), and whether the command is validate or diff, whose refusals
 * also say "valid": false. */
static int json_refusals, json_refusals_valid;

/* A refusal regionctl makes itself (a document's bytes, a name not in the
 * running table), with -j also printed as regiond prints one: the API's
 * {"error": {...}} on stdout. A program reading stdout once got nothing
 * there, the words on stderr only. The text goes to stderr as before. */
static void json_refusal(enum fwd_reason code, const char *file, size_t line, const char *path,
			 const char *reason)
{
	json_t *e, *j;

	if (!json_refusals)
		return;
		/* Each string to its longest UTF-8 prefix: a name cut inside a
	 * character by a buffer, a path of other bytes, made no JSON string,
	 * and no refusal was printed at all (a review). */
#define TEXT(s)                                                                                    \
	json_stringn((s) ? (s) : "", fwd_utf8_valid_len((s) ? (s) : "", (s) ? strlen(s) : 0))
	e = json_pack("{s:s, s:o, s:I, s:o, s:o}", "code", fwd_reason_name(code), "file",
		      TEXT(file), "line", (json_int_t)line, "path", TEXT(path), "reason",
		      TEXT(reason));
#undef TEXT
	j = e ? json_pack("{s:o}", "error", e) : NULL;
	if (j && json_refusals_valid)
		json_object_set_new(j, "valid", json_false());
	if (j)
		print_json(j);
	json_decref(j);
}

/* Whether the last call() ended on an error regiond answered (its JSON),
 * not on regiond unreachable or an answer that is not the API's: status
 * says the first "unknown" (3), whatever exit code the error's own code
 * has (uploads_full's 3 once read as "unreachable", 2). */
static int call_answered_error;

/* An error regiond answered: with -j the program that reads stdout gets
 * it as the API's JSON (code, reason, file, line, path), not an empty
 * stdout beside text it would have to parse; the text still goes to
 * stderr for the operator. @return the exit code of its code. */
static int show_api_error(const struct opts *o, int status, json_t *r)
{
	json_t *e = json_object_get(r, "error");
	const char *f = json_string_value(json_object_get(e, "file"));
	uint32_t wl;

	/* The written file's line (show_error), in the JSON too; its file
	 * "document", as the API names a sent document. */
	if (json_is_object(e) && json_integer_value(json_object_get(e, "line")) == 0 &&
	    (f == NULL || *f == '\0' || strcmp(f, "document") == 0) &&
	    (wl = sent_document_line(json_string_value(json_object_get(e, "path")))) != 0 &&
	    sent_prefix_line(json_string_value(json_object_get(e, "path"))) == 0) {
		json_object_set_new(e, "file", json_string("document"));
		json_object_set_new(e, "line", json_integer(wl));
	}
	if (o->json_errors != JERR_NONE && json_is_object(json_object_get(r, "error"))) {
		if (o->json_errors == JERR_LINE) {
			json_dumpf(r, stdout, JSON_COMPACT | JSON_SORT_KEYS | JSON_REALS);
			putchar('\n');
		} else {
			print_json(r);
		}
		fflush(stdout);
	}
	call_answered_error = 1;
	return show_error(status, r);
}

/* Call the API; on failure print why and return the exit code (> 0). */
static int call(const struct opts *o, const char *method, const char *path, json_t *body,
		json_t **out)
{
	char why[512], bad[320] = "";
	int st = http(o, method, path, body, out, why, sizeof(why)), answered = 0;

	call_answered_error = 0;

	if (st < 0) {
		fprintf(stderr, "regionctl: %s regiond at %s: %s\n",
			st == -2 ? "no answer from" : "cannot reach", o->url ? o->url : o->sock,
			why);
		return st == -2 ? CTL_EXIT_UNKNOWN : EXIT_UNREACHABLE;
	}
	/* A write that went out whole and was answered with something that is
	 * not the API's answer (a 200 of another service behind --url, a
	 * proxy's 5xx page, a body cut short): an {} once read as "no change,
	 * generation 0 already has this table", exit 0, and a page as
	 * unreachable, exit 3, which a script retries as "nothing changed". */
	if (st < 400 && *out && ans_check(method, path, *out, bad, sizeof(bad)) == 0)
		answered = 1;
	if (is_write(method, path) && (st < 400 || st >= 500) &&
	    (*out == NULL || (st < 400 && !answered))) {
		fprintf(stderr,
			"regionctl: regiond at %s answered the write with HTTP %d and "
			"%s%s%s%s, not the API's answer; the change may or may not have "
			"been applied: 'regionctl history' says whether it was\n",
			o->url ? o->url : o->sock, st,
			*out ? "JSON without the outcome" : "a body that is not JSON",
			bad[0] ? " (" : "", bad, bad[0] ? ")" : "");
		json_decref(*out);
		*out = NULL;
		return CTL_EXIT_UNKNOWN;
	}
	/* A read answered so: said with the field it lacks, and nothing is
	 * shown (a status block of zeros, an empty history, 'valid'); as
	 * unreachable, what answered is not regiond's API. */
	if (st < 400 && *out && !answered) {
		fprintf(stderr,
			"regionctl: regiond at %s answered %s %s with what is not the API's "
			"answer: %s\n",
			o->url ? o->url : o->sock, method, path, bad);
		json_decref(*out);
		*out = NULL;
		return EXIT_UNREACHABLE;
	}
	if (st >= 400 || *out == NULL) {
		const char *code = *out ? json_string_value(json_object_get(
						  json_object_get(*out, "error"), "code"))
					: NULL;
		/* A write refused with a code this build does not know (a newer
		 * regiond, a proxy's JSON): whether it was carried out is not
		 * known, and 1 or 4 would tell a script "nothing changed". */
		int unknown_write = *out && is_write(method, path) &&
				    (code == NULL || fwd_reason_from_name(code) < 0);
		int rc = *out ? show_api_error(o, st, *out)
			      : (fprintf(stderr,
					 "regionctl: regiond at %s answered %s %s with HTTP %d "
					 "and a body that is not JSON (%s)\n",
					 o->url ? o->url : o->sock, method, path, st, why),
				 EXIT_UNREACHABLE);

		json_decref(*out);
		*out = NULL;
		if (unknown_write) {
			fprintf(stderr,
				"regionctl: that error code is not one this regionctl knows; the "
				"change may or may not have been applied: 'regionctl history' "
				"says whether it was\n");
			return CTL_EXIT_UNKNOWN;
		}
		return rc;
	}
	return 0;
}

/* One API call shown the usual way: the API's JSON with -j, else @human.
 * Takes @body. */
static int show(const struct opts *o, const char *method, const char *path, json_t *body,
		void (*human)(json_t *r, const char *arg), const char *arg)
{
	json_t *r;
	int rc = call(o, method, path, body, &r);

	json_decref(body);
	if (rc)
		return rc;
	if (o->json)
		print_json(r);
	else
		human(r, arg);
	json_decref(r);
	return 0;
}

/* A string of an answer, "-" when it is not one (printf's %s takes no
 * NULL: the answer model checks most of them, this the rest). */
static const char *jsv(const json_t *v)
{
	const char *s = json_string_value(v);

	return s ? s : "-";
}

static const char *js(json_t *o, const char *k)
{
	return jsv(json_object_get(o, k));
}

/* Column widths for names: at least @min (the usual layout), else the
 * longest (a 31-character name pushed its row's other columns right). */
static int key_width(const json_t *obj, int min)
{
	const char *k;
	json_t *v;
	int w = min;

	json_object_foreach((json_t *)obj, k, v)
		w = (int)strlen(k) > w ? (int)strlen(k) : w;
	return w;
}

/* The same for field @f of an array's objects, or of an object's values. */
static int field_width(const json_t *c, const char *f, int min)
{
	const char *k;
	json_t *v;
	size_t i;
	int w = min;

	if (json_is_array(c))
		json_array_foreach((json_t *)c, i, v)
			w = (int)strlen(js(v, f)) > w ? (int)strlen(js(v, f)) : w;
	else
		json_object_foreach((json_t *)c, k, v)
			w = (int)strlen(js(v, f)) > w ? (int)strlen(js(v, f)) : w;
	return w;
}

static long long ji(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static void when(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	/* A time no calendar date of four digits holds (an answer's 2^62)
	 * left tm unset: a date made of uninitialised memory. */
	if (gmtime_r(&tt, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		snprintf(buf, len, "time %lld", t);
	else
		strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

/* The exit code of 'status' for monitoring (docs/operations.md): regiond's
 * own verdict, health.exit in the status model (ctl_api.c health_json), in
 * the monitoring-plugin convention: 0 healthy, 1 degraded, 2 unreachable.
 * regiond itself unreachable is 2 as well; regiond answering with an error
 * instead of the status (a missing or wrong token, a 5xx) is 3, unknown:
 * the convention's own code for a check that could not tell, where
 * ctl_exit.c's 1 ("refused") would read as degraded. Only 'status' answers
 * with health; every other command keeps ctl_exit.c's codes (3
 * "unreachable"). */
#define HEALTH_UNREACHABLE 2
#define HEALTH_UNKNOWN 3

static int status_health(const json_t *r)
{
	const json_t *code = json_object_get(json_object_get(r, "health"), "exit");

	return json_is_integer(code) && json_integer_value(code) >= 0 &&
			       json_integer_value(code) <= HEALTH_UNREACHABLE
		       ? (int)json_integer_value(code)
		       : HEALTH_UNREACHABLE; /* a regiond that does not say: not trusted healthy */
}

/* "1,843 of 32,767 in use (5.6 %)": a pool whose use stays near its size
 * means a device holds mbufs (stuck TX ring) or the pool is too small. */
/* @stale: "" for a report of a regionfwd that answers, else what says it
 * is not (the tables below the first line once read as live: every link
 * "up" of a regionfwd that was gone, a probe). */
static void status_mbufs(json_t *mb, const char *stale)
{
	long long pool = ji(mb, "pool"), used = ji(mb, "in_use");

	if (!json_is_object(mb))
		return;
	printf("mbufs        %lld of %lld in use (%.1f %%)%s\n", used, pool,
	       pool ? 100.0 * (double)used / (double)pool : 0.0, stale);
}

/* The XDP filter's summary (GET /v1/filters without its rules). */
static void status_filters(json_t *f)
{
	json_t *v;
	const char *k;
	size_t i;

	if (!json_is_object(f))
		return;
	printf("xdp filter   generation %lld, program %lld on", ji(f, "generation"),
	       ji(f, "program_id"));
	json_array_foreach(json_object_get(f, "interfaces"), i, v)
		printf("%s %s (%s%s%s)", i ? "," : "", js(v, "interface"), js(v, "mode"),
		       json_is_true(json_object_get(v, "ours")) ? ""
		       : ji(v, "program_id")			? ", NOT OURS"
		       : json_is_true(json_object_get(f, "detached"))
			       ? ", detached by regionctl filter detach"
			       : ", NOT ATTACHED",
		       json_is_false(json_object_get(v, "claimed")) ? ", NOT CLAIMED" : "");
	if (json_array_size(json_object_get(f, "interfaces")) == 0)
		printf(" no interface");
	printf("\n            ");
	json_object_foreach(json_object_get(f, "counters"), k, v)
		printf(" %s %lld", k, (long long)json_integer_value(v));
	putchar('\n');
}

/* Fleet mode (docs/fleet.md): the node's state, its target, and whether it
 * hears etcd. A node cut off from etcd takes no change of the fleet while
 * its health stays as it was: said here, not only in GET /v1/fleet. */
static void status_fleet(json_t *f)
{
	json_t *t, *p, *e;
	char at[32];

	if (!json_is_object(f))
		return;
	t = json_object_get(f, "target");
	printf("fleet        node %s of %s: %s", js(f, "node"), js(f, "facility"), js(f, "state"));
	if (json_is_object(t)) {
		printf(", target %s (%s", js(t, "table"), js(t, "source"));
		if (json_is_string(json_object_get(t, "rollout")))
			printf(", rollout %s", js(t, "rollout"));
		printf(", etcd revision %lld)", ji(t, "revision"));
	} else {
		printf(", no target (the facility has no desired table)");
	}
	putchar('\n');
	if (json_is_object((p = json_object_get(f, "pin"))) &&
	    json_is_string(json_object_get(p, "unreadable")))
		printf("             pinned, but the pin cannot be read: %s\n",
		       js(p, "unreadable"));
	else if (json_is_object(p))
		printf("             pinned to %s by %s%s\n", js(p, "table"),
		       json_is_string(json_object_get(p, "rollout")) ? js(p, "rollout")
								     : "an operator",
		       json_is_true(json_object_get(p, "stray")) &&
				       json_is_string(json_object_get(p, "rollout"))
			       ? " (no active rollout owns it)"
			       : "");
	if (json_is_object((e = json_object_get(f, "apply_error"))))
		printf("             apply error (table %s): %s: %s%s%s\n", js(e, "table"),
		       js(e, "reason"), json_is_string(json_object_get(e, "at")) ? js(e, "at") : "",
		       json_is_string(json_object_get(e, "at")) ? ": " : "", js(e, "message"));
	if (json_is_true(json_object_get(f, "connected"))) {
		printf("             etcd connected (%s)\n", js(f, "endpoint"));
		/* It answers but refuses (a role that may not write, its quota
		 * full): the last minute's refusal, not one long past. */
		if (json_is_string(json_object_get(f, "last_error")) &&
		    ji(f, "last_error_at") >= (long long)time(NULL) - 60) {
			when(ji(f, "last_error_at"), at, sizeof(at));
			printf("             last etcd error %s: %s\n", at, js(f, "last_error"));
		}
		return;
	}
	printf("             etcd UNREACHABLE: no fleet change reaches this node");
	if (json_is_true(json_object_get(f, "stale")))
		printf(" (stale: away longer than its lease, gone from the fleet view)");
	putchar('\n');
	if (json_is_string(json_object_get(f, "last_error"))) {
		when(ji(f, "last_error_at"), at, sizeof(at));
		printf("             last etcd error %s: %s\n", at, js(f, "last_error"));
	}
}

/* The routing feed (docs/bgp-feed.md): its state, what it learned per
 * region, what it did not apply and why, its last batch. */
static void status_feed(json_t *f)
{
	json_t *v;
	size_t i;
	char t[32];

	if (!json_is_object(f))
		return;
	when(ji(f, "since"), t, sizeof(t));
	printf("feed         %s since %s", js(f, "state"), t);
	if (json_is_number(json_object_get(f, "hold_left_s")))
		printf(", withdrawn in %.0f s unless it is back",
		       json_number_value(json_object_get(f, "hold_left_s")));
	if (json_is_string(json_object_get(f, "reason")))
		printf(" (%s)", js(f, "reason"));
	printf("\n             learned %lld:", ji(f, "learned"));
	json_array_foreach(json_object_get(f, "tables"), i, v)
		printf("%s %s (table %lld%s) %lld v4 %lld v6", i ? "," : "", js(v, "region"),
		       ji(v, "table"),
		       json_is_false(json_object_get(v, "in_table")) ? ", not in the table" : "",
		       ji(v, "learned_v4"), ji(v, "learned_v6"));
	printf("\n             owned %lld, shadowed %lld, conflicting %lld, refused %lld, "
	       "over max %lld (max %lld), pending %lld, resyncs %lld\n",
	       ji(f, "owned"), ji(f, "shadowed"), ji(f, "conflicting"), ji(f, "refused"),
	       ji(f, "overflow"), ji(f, "max_prefixes"), ji(f, "pending"), ji(f, "resyncs"));
	if (json_is_object((v = json_object_get(f, "last_loss")))) {
		when(ji(v, "time"), t, sizeof(t));
		printf("             losses %lld, holds run out %lld; last lost %s (%s)",
		       ji(f, "losses"), ji(f, "hold_expiries"), t, js(v, "reason"));
		if (json_is_number(json_object_get(v, "withdrawn_after_s")))
			printf(", withdrawn after %.1f s",
			       json_number_value(json_object_get(v, "withdrawn_after_s")));
		if (json_is_number(json_object_get(v, "up_after_s")))
			printf(", up again after %.1f s",
			       json_number_value(json_object_get(v, "up_after_s")));
		putchar('\n');
	} else if (ji(f, "hold_expiries") > 0) {
		/* No loss yet, so the hold that ran out is the one at start
		 * (regiond restarted while the feed was lost): the prefixes
		 * were withdrawn, which this line once left unsaid. */
		printf("             losses %lld, holds run out %lld (at start: not up within the "
		       "hold)\n",
		       ji(f, "losses"), ji(f, "hold_expiries"));
	}
	/* BIRD gives no info for a disabled protocol: no empty parentheses. */
	json_array_foreach(json_object_get(json_object_get(f, "bird"), "sessions"), i, v)
		printf("             bgp %s %s%s%s%s\n", js(v, "name"), js(v, "state"),
		       js(v, "info")[0] ? " (" : "", js(v, "info"), js(v, "info")[0] ? ")" : "");
	if (ji(json_object_get(f, "bird"), "sessions_unlisted") > 0)
		printf("             bgp and %lld more sessions (%lld of all %lld not "
		       "established)\n",
		       ji(json_object_get(f, "bird"), "sessions_unlisted"),
		       ji(json_object_get(f, "bird"), "sessions_down"),
		       ji(json_object_get(f, "bird"), "sessions_total"));
	if (json_is_string(json_object_get(json_object_get(f, "bird"), "error")))
		printf("             bird: %s\n", js(json_object_get(f, "bird"), "error"));
	if (json_is_object((v = json_object_get(f, "last_batch")))) {
		char gen[48];

		when(ji(v, "time"), t, sizeof(t));
		/* All refused: no generation was made (there is no 0). */
		if (ji(v, "generation") > 0)
			snprintf(gen, sizeof(gen), "generation %lld", ji(v, "generation"));
		else
			snprintf(gen, sizeof(gen), "no new generation");
		printf("             last batch %s: %lld added, %lld removed, %lld refused in "
		       "%lld ms (%s)\n",
		       t, ji(v, "added"), ji(v, "removed"), ji(v, "refused"), ji(v, "duration_ms"),
		       gen);
	}
	json_array_foreach(json_object_get(f, "shadowed_prefixes"), i, v)
		printf("             shadowed %s (%s): a static prefix holds it\n", js(v, "prefix"),
		       js(v, "region"));
	json_array_foreach(json_object_get(f, "refusals"), i, v)
		printf("             refused %s (%s): %s\n", js(v, "prefix"), js(v, "region"),
		       js(v, "reason"));
	/* Which prefixes the counts above are about (they once named none). */
	json_array_foreach(json_object_get(f, "conflicting_prefixes"), i, v) {
		json_t *r;
		size_t k;

		printf("             conflicting %s: in the tables of", js(v, "prefix"));
		json_array_foreach(json_object_get(v, "regions"), k, r)
			printf("%s %s", k ? "," : "",
			       json_string_value(r) ? json_string_value(r) : "-");
		printf(" (held by %s%s)\n", js(v, "held_by"),
		       json_is_true(json_object_get(v, "refused")) ? ", refused there" : "");
	}
	if (json_array_size(json_object_get(f, "overflow_prefixes"))) {
		printf("             over max, refused:");
		json_array_foreach(json_object_get(f, "overflow_prefixes"), i, v)
			printf("%s %s (%s)", i ? "," : "", js(v, "prefix"), js(v, "region"));
		if ((size_t)ji(f, "overflow") >
		    json_array_size(json_object_get(f, "overflow_prefixes")))
			printf(" and more (%lld route messages refused since start)",
			       ji(f, "overflow"));
		putchar('\n');
	}
	if (json_is_object(json_object_get(f, "confirm_wait")))
		printf("             %s\n", js(json_object_get(f, "confirm_wait"), "text"));
	if (json_is_string(json_object_get(f, "last_error")))
		printf("             last error: %s\n", js(f, "last_error"));
}

/* Every link (admin state from the table, operational from its port) and
 * every port (its link, speed and what the device counts). */
static void status_links_ports(json_t *s, const char *stale)
{
	json_t *v, *st;
	size_t i;

	if (json_array_size(json_object_get(s, "links"))) {
		const json_t *ls = json_object_get(s, "links");
		int wn = field_width(ls, "name", 20), wp = field_width(ls, "port", 12);

		printf("\n%-*s %-*s %-6s %s%s\n", wn, "LINK", wp, "PORT", "ADMIN", "OPER", stale);
		json_array_foreach(json_object_get(s, "links"), i, v)
			printf("%-*s %-*s %-6s %s\n", wn, js(v, "name"), wp, js(v, "port"),
			       js(v, "admin"), js(v, "oper"));
	}
	if (json_array_size(json_object_get(s, "ports")) == 0)
		return;
	printf("\n%-12s %-7s %-14s %12s %12s %9s %9s %9s %9s%s\n", "PORT", "LINK", "SPEED",
	       "RX PACKETS", "TX PACKETS", "RX ERRORS", "TX ERRORS", "IMISSED", "RX_NOMBUF", stale);
	json_array_foreach(json_object_get(s, "ports"), i, v) {
		char speed[32] = "-";

		if (json_is_integer(json_object_get(v, "speed_mbps")))
			snprintf(speed, sizeof(speed), "%lld Mb/s%s%s", ji(v, "speed_mbps"),
				 json_is_string(json_object_get(v, "duplex")) ? " " : "",
				 json_is_string(json_object_get(v, "duplex")) ? js(v, "duplex")
									      : "");
		st = json_object_get(v, "stats");
		printf("%-12s %-7s %-14s", js(v, "name"), js(v, "link"), speed);
		if (json_is_object(st))
			printf(" %12lld %12lld %9lld %9lld %9lld %9lld\n", ji(st, "ipackets"),
			       ji(st, "opackets"), ji(st, "ierrors"), ji(st, "oerrors"),
			       ji(st, "imissed"), ji(st, "rx_nombuf"));
		else
			printf(" %12s\n", "(not started)");
	}
}

static int cmd_status(const struct opts *o, const struct ctl_call *c)
{
	json_t *r, *g, *dp, *cf;
	char t[32], stale[96] = "";
	int rc, health;

	(void)c;
	rc = call(o, "GET", "/v1/status", NULL, &r);
	if (rc && call_answered_error) /* said: regiond's error instead of the status */
		return HEALTH_UNKNOWN;
	if (rc == CTL_EXIT_UNREACHABLE) /* regiond itself */
		return HEALTH_UNREACHABLE;
	if (rc == EXIT_USAGE)
		return rc;
	if (rc) /* said on stderr: regiond's error, or an answer not understood */
		return HEALTH_UNKNOWN;
	health = status_health(r);
	if (o->json) {
		print_json(r);
		json_decref(r);
		return health;
	}
	g = json_object_get(r, "generation");
	dp = json_object_get(r, "dataplane");
	when(ji(g, "time"), t, sizeof(t));
	if (json_is_null(g)) /* not generation 0 of nobody in 1970 */
		printf("generation   none: regiond has no table yet\n");
	else
		printf("generation   %lld  %s  by %s  \"%s\"  (%s)\n", ji(g, "id"), js(g, "hash"),
		       js(g, "author"), js(g, "comment"), t);
	if (json_is_true(json_object_get(json_object_get(r, "fleet"), "validate_only")))
		/* no regionfwd by design: not "UNREACHABLE, OUT OF SYNC" */
		printf("dataplane    none: validate only (--fleet-validate-only), tables are "
		       "validated, never run");
	else if (!json_is_true(json_object_get(dp, "connected")))
		/* Not "OUT OF SYNC": what a regionfwd that does not answer runs
		 * is not known, and a hung one still runs what it ran (a
		 * walkthrough read it as out of sync); its last report follows. */
		printf("dataplane    UNREACHABLE, what it runs not known");
	else
		printf("dataplane    connected, %s",
		       json_is_true(json_object_get(dp, "in_sync")) ? "runs it" : "OUT OF SYNC");
	if (json_is_object(json_object_get(dp, "status"))) {
		json_t *s = json_object_get(dp, "status"), *pk = json_object_get(s, "packets");

		printf(" (%sgeneration %lld, %lld workers, rx %lld tx %lld dropped %lld)",
		       json_is_true(json_object_get(dp, "connected")) ? "" : "last report: ",
		       ji(json_object_get(s, "generation"), "id"), ji(s, "workers"), ji(pk, "rx"),
		       ji(pk, "tx"), ji(pk, "dropped"));
		if (ji(dp, "report_age_ms") > 2000)
			printf(" [report %lld s old]", ji(dp, "report_age_ms") / 1000);
	}
	putchar('\n');
	cf = json_object_get(r, "confirm");
	if (json_is_object(cf))
		/* The deadline second is still in time: the revert follows it. */
		printf("confirm      generation %lld reverts to %lld in %lld s unless confirmed\n",
		       ji(cf, "generation"), ji(cf, "revert_to"),
		       json_object_get(cf, "reverts_in_s")
			       ? ji(cf, "reverts_in_s")
			       : ji(cf, "deadline") + 1 - (long long)time(NULL));
	if (json_is_string(json_object_get(r, "alarm")))
		printf("ALARM        %s\n", js(r, "alarm"));
	/* The same rule as the first line's "[report N s old]". */
	if (!json_is_true(json_object_get(dp, "connected")) || ji(dp, "report_age_ms") > 2000)
		snprintf(stale, sizeof(stale), "  (regionfwd's last report, %lld s old)",
			 ji(dp, "report_age_ms") / 1000);
	status_mbufs(json_object_get(json_object_get(dp, "status"), "mbufs"), stale);
	status_filters(json_object_get(r, "filters"));
	status_feed(json_object_get(r, "feed"));
	status_fleet(json_object_get(r, "fleet"));
	{
		json_t *h = json_object_get(r, "health");

		printf("health       %s: %s\n", js(h, "state"), js(h, "reason"));
	}
	status_links_ports(json_object_get(dp, "status"), stale);
	json_decref(r);
	return health;
}

/* One handler for every 'show' subcommand: the subcommand's name is the model's section. */
/* Whether the decimal @d (digits and at most one point, checked) is in
 * 0.1..3600 as written: strtod rounds "3600.0000000000001" to 3600 and
 * "0.09999999999999999999" to 0.1, which a compare of doubles takes. */
static int decimal_in_window(const char *d)
{
	size_t whole = strcspn(d, ".");
	const char *frac = d[whole] ? d + whole + 1 : d + whole;

	while (whole > 1 && *d == '0')
		d++, whole--;
	if (whole > 4 || (whole == 4 && strncmp(d, "3600", 4) > 0))
		return 0;
	if (whole == 4 && strncmp(d, "3600", 4) == 0)
		return strspn(frac, "0") == strlen(frac);
	/* below 1: a first fraction digit of 1 or more */
	return !(whole == 0 || (whole == 1 && *d == '0')) || (frac[0] >= '1' && frac[0] <= '9');
}

/* --rate / --interval S of counters, drops and show links: the window in
 * seconds, 0 when no rate is asked for, or -1 after a usage error (said). */
static double rate_window(const struct ctl_call *c)
{
	const char *iv = opt_val(c, "--interval");
	char *end;
	double s;

	if (iv == NULL)
		return opt_val(c, "--rate") ? 1.0 : 0.0;
	errno = 0;
	s = strtod(iv, &end);
	/* digits and one point (".5" too): strtod also takes " 1", "+1", "1e0"
	 * and "0x1" */
	if (strspn(iv, "0123456789.") != strlen(iv) || strspn(iv, ".") > 1 || *end || errno ||
	    end == iv || !decimal_in_window(iv)) {
		usage_error(c, "--interval takes seconds 0.1..3600, not '%s'", iv);
		return -1;
	}
	return s;
}

/* The API's counter report (its JSON in *@json if asked), read through the
 * one reader of its model. @return 0 or an exit code (said). */
static int read_counters(const struct opts *o, struct fwd_report **rep, json_t **json)
{
	struct fwd_err e;
	json_t *r;
	int rc = call(o, "GET", "/v1/counters", NULL, &r);

	if (rc)
		return rc;
	*rep = fwd_report_from_json(r, &e);
	if (*rep == NULL) {
		fprintf(stderr,
			"regionctl: the counter report is not what the API promises: %s: %s\n",
			e.path, e.reason);
		json_decref(r);
		return CTL_EXIT_FAILED;
	}
	if (json)
		*json = r;
	else
		json_decref(r);
	return 0;
}

/* Two reads of the counter report @window seconds apart: the second report
 * (and its JSON) and the rates between them (fwd_report_rates), measured
 * over the time that really passed between the reads. */
static int read_rates(const struct opts *o, double window, struct fwd_report **rep, json_t **json,
		      json_t **rates)
{
	struct fwd_report *first;
	double t0, t1;
	int rc;

	t0 = ctl_top_mono_s();
	if ((rc = read_counters(o, &first, NULL)))
		return rc;
	usleep((useconds_t)(window * 1e6));
	t1 = ctl_top_mono_s();
	if ((rc = read_counters(o, rep, json))) {
		fwd_report_free(first);
		return rc;
	}
	*rates = fwd_report_rates(first, *rep, t1 - t0);
	fwd_report_free(first);
	if (*rates == NULL) {
		fprintf(stderr, "regionctl: out of memory\n");
		fwd_report_free(*rep);
		json_decref(*json);
		return CTL_EXIT_FAILED;
	}
	return 0;
}

static double jrate(const json_t *rates, const char *sec, const char *row, const char *key)
{
	return json_number_value(
		json_object_get(json_object_get(json_object_get(rates, sec), row), key));
}

static void print_counts(const char *title, const struct fwd_report *r, enum fwd_report_sec sec,
			 const json_t *rates)
{
	const char *key = fwd_report_sec_key(sec);
	int bytes = fwd_report_value_name(sec, FWD_RV_BYTES) != NULL;
	char a[16], b[16];

	printf("\n%-28s %16s", title, "packets");
	if (rates)
		printf(" %10s", "pkts/s");
	if (rates && bytes)
		printf(" %10s", "bits/s");
	putchar('\n');
	for (uint32_t i = 0; i < r->sec[sec].n; i++) {
		const struct fwd_report_row *row = &r->sec[sec].rows[i];

		printf("  %-26s %16" PRIu64, row->name, row->v[FWD_RV_PACKETS]);
		if (rates)
			printf(" %10s",
			       ctl_top_si(jrate(rates, key, row->name, "packets_per_s"), a, 16));
		if (rates && bytes)
			printf(" %10s",
			       ctl_top_si(jrate(rates, key, row->name, "bits_per_s"), b, 16));
		putchar('\n');
	}
}

static const uint64_t *sort_counts;

static int by_count_desc(const void *x, const void *y)
{
	uint64_t a = sort_counts[*(const int *)x], b = sort_counts[*(const int *)y];

	return a < b ? 1 : a > b ? -1 : *(const int *)x - *(const int *)y;
}

/* The non-zero drop reasons, the most frequent first. */
static void print_drops(const struct fwd_report *c, const json_t *rates)
{
	int order[FWD_DROP_MAX], n = 0;
	char a[16];

	for (int i = 0; i < FWD_DROP_MAX; i++)
		if (c->drops[i])
			order[n++] = i;
	sort_counts = c->drops;
	qsort(order, (size_t)n, sizeof(order[0]), by_count_desc);
	printf("\n%-28s %16s%s\n", "drops", "packets", rates ? "     pkts/s" : "");
	for (int k = 0; k < n; k++) {
		printf("  %-26s %16" PRIu64, fwd_drop_names[order[k]], c->drops[order[k]]);
		if (rates)
			printf(" %10s", ctl_top_si(json_number_value(json_object_get(
							   json_object_get(rates, "drops"),
							   fwd_drop_names[order[k]])),
						   a, 16));
		putchar('\n');
	}
}

/* show table: the document, to save and apply again byte for byte. */
static int raw_always(const struct opts *o, const struct ctl_call *c)
{
	(void)o, (void)c;
	return 1;
}

static int cmd_show(const struct opts *o, const struct ctl_call *c)
{
	const char *what = cmd_of(c)->name;
	double window = cmd_of(c)->opts ? rate_window(c) : 0;
	json_t *r, *m, *sec, *v, *rates = NULL, *cj = NULL;
	struct fwd_report *cr = NULL;
	const char *k;
	size_t i;
	int rc;

	if (window < 0)
		return EXIT_USAGE;
	if ((rc = call(o, "GET", "/v1/table", NULL, &r)))
		return rc;
	if (window > 0 && (rc = read_rates(o, window, &cr, &cj, &rates))) {
		json_decref(r);
		return rc;
	}
	m = json_object_get(r, "model");
	sec = strcmp(what, "table") ? json_object_get(m, what) : m;
	if (c->npos == 1) { /* one region, service or link: the section with only it */
		json_t *one = json_object_get(sec, c->pos[0]);

		if (one == NULL) {
			char why[160], at[96];

			snprintf(why, sizeof(why), "no %.*s '%s' in the running table",
				 (int)strlen(what) - 1, what, c->pos[0]);
			snprintf(at, sizeof(at), "%s.%s", what, c->pos[0]);
			fprintf(stderr, "regionctl: %s\n", why);
			json_refusal(FWD_R_INVALID, NULL, 0, at, why);
			json_decref(r);
			json_decref(rates);
			json_decref(cj);
			fwd_report_free(cr);
			return EXIT_REFUSED;
		}
		sec = json_pack("{sO}", c->pos[0], one);
		json_object_set_new(m, what, sec); /* r owns it from here */
		json_object_set_new(m, FWD_KEY_NAME(DOC, LINK_GROUPS), json_object());
	}
	if (o->json && !strcmp(what, "table")) {
		print_json(m);
	} else if (o->json) {
		/* What the text shows, as the model has it: the section under
		 * its own key, with the groups of `show links` and the default
		 * of `show policies`, and the rates of --rate. */
		json_t *out = json_pack("{s:O}", what, sec);

		if (!strcmp(what, FWD_KEY_NAME(DOC, LINKS)))
			json_object_set(out, FWD_KEY_NAME(DOC, LINK_GROUPS),
					json_object_get(m, FWD_KEY_NAME(DOC, LINK_GROUPS)));
		if (!strcmp(what, FWD_KEY_NAME(DOC, POLICIES)))
			json_object_set(out, FWD_KEY_NAME(DOC, DEFAULT),
					json_object_get(m, FWD_KEY_NAME(DOC, DEFAULT)));
		if (rates) {
			json_t *all = json_object_get(rates, what), *one;

			/* With NAME, its rates alone, as the section holds it
			 * alone (every link's were printed once). */
			if (c->npos == 1 && json_is_object(all))
				json_object_set_new(out, "rates",
						    (one = json_object_get(all, c->pos[0]))
							    ? json_pack("{sO}", c->pos[0], one)
							    : json_object());
			else
				json_object_set(out, "rates", all);
			json_object_set(out, "interval_s", json_object_get(rates, "interval_s"));
			json_object_set(out, "reset", json_object_get(rates, "reset"));
		}
		print_json(out);
		json_decref(out);
	} else if (!strcmp(what, "table")) {
		fputs(jsv(json_object_get(r, "document")), stdout);
	} else if (!strcmp(what, FWD_KEY_NAME(DOC, REGIONS))) {
		int w = key_width(sec, 20);

		printf("%-*s %8s  %s\n", w, "REGION", "PREFIXES", "FIRST PREFIXES");
		json_object_foreach(sec, k, v) {
			json_t *p = json_object_get(v, FWD_KEY_NAME(REGION, PREFIXES));

			printf("%-*s %8zu ", w, k, json_array_size(p));
			for (i = 0; i < json_array_size(p) && i < 4; i++)
				printf(" %s", jsv(json_array_get(p, i)));
			printf("%s\n", json_array_size(p) > 4 ? " ..." : "");
		}
	} else if (!strcmp(what, FWD_KEY_NAME(DOC, SERVICES))) {
		int w = key_width(sec, 20);

		printf("%-*s %s\n", w, "SERVICE", "ENTRIES");
		json_object_foreach(sec, k, v) {
			printf("%-*s", w, k);
			json_array_foreach(v, i, m)
				printf(" %s", jsv(m));
			putchar('\n');
		}
	} else if (!strcmp(what, FWD_KEY_NAME(DOC, LINKS))) {
		int wn = key_width(sec, 20), wp = field_width(sec, FWD_KEY_NAME(LINK, PORT), 12);

		if (rates)
			printf("rates over %.1f s%s\n",
			       json_number_value(json_object_get(rates, "interval_s")),
			       json_is_true(json_object_get(rates, "reset"))
				       ? " (regionfwd restarted in the window: since its start)"
				       : "");
		printf("%-*s %-*s %-18s %5s %-5s ", wn, "LINK", wp, "PORT", "NEXT HOP", "VLAN",
		       "STATE");
		if (rates)
			printf("%10s %10s ", "PKTS/S", "BITS/S");
		printf("TAGS\n");
		json_object_foreach(sec, k, v) {
			json_t *tags = json_object_get(v, FWD_KEY_NAME(LINK, TAGS)), *t;
			json_t *vlan = json_object_get(v, FWD_KEY_NAME(LINK, VLAN));
			char a[16], b[16], vid[24] = "-";

			/* An untagged link has no vlan in the model (0 is no VLAN
			 * id, and the table refuses it): "-" as any absent value,
			 * not a "0" that reads as a tag. */
			if (json_is_integer(vlan))
				snprintf(vid, sizeof(vid), "%lld",
					 (long long)json_integer_value(vlan));
			printf("%-*s %-*s %-18s %5s %-5s", wn, k, wp,
			       js(v, FWD_KEY_NAME(LINK, PORT)),
			       js(v, FWD_KEY_NAME(LINK, NEXT_HOP_MAC)), vid,
			       js(v, FWD_KEY_NAME(LINK, STATE)));
			if (rates)
				printf(" %10s %10s",
				       ctl_top_si(jrate(rates, what, k, "packets_per_s"), a, 16),
				       ctl_top_si(jrate(rates, what, k, "bits_per_s"), b, 16));
			json_array_foreach(tags, i, t)
				printf(" %s", jsv(t));
			putchar('\n');
		}
		sec = json_object_get(m, FWD_KEY_NAME(DOC, LINK_GROUPS));
		json_object_foreach(sec, k, v) {
			const char *mk;
			json_t *w;

			printf("group %-14s", k);
			json_object_foreach(json_object_get(v, FWD_KEY_NAME(GROUP, MEMBERS)), mk, w)
				printf(" %s:%lld", mk, (long long)json_integer_value(w));
			putchar('\n');
		}
	} else {
		int wr = field_width(sec, FWD_KEY_NAME(POLICY, REGION), 20),
		    ws = field_width(sec, FWD_KEY_NAME(POLICY, SERVICE), 16),
		    wt = field_width(sec, FWD_KEY_NAME(POLICY, TO), 20);

		printf("%-*s %-*s %-7s %-*s %s\n", wr, "REGION", ws, "SERVICE", "ACTION", wt, "TO",
		       "MIRROR");
		json_array_foreach(sec, i, v)
			printf("%-*s %-*s %-7s %-*s %s\n", wr, js(v, FWD_KEY_NAME(POLICY, REGION)),
			       ws, js(v, FWD_KEY_NAME(POLICY, SERVICE)),
			       js(v, FWD_KEY_NAME(POLICY, ACTION)), wt,
			       js(v, FWD_KEY_NAME(POLICY, TO)),
			       js(v, FWD_KEY_NAME(POLICY, MIRROR)));
		v = json_object_get(m, FWD_KEY_NAME(DOC, DEFAULT));
		printf("%-*s %-*s %-7s %-*s %s\n", wr, "(default)", ws, "",
		       js(v, FWD_KEY_NAME(POLICY, ACTION)), wt, js(v, FWD_KEY_NAME(POLICY, TO)),
		       js(v, FWD_KEY_NAME(POLICY, MIRROR)));
	}
	json_decref(rates);
	json_decref(cj);
	fwd_report_free(cr);
	json_decref(r);
	return 0;
}

static void explain_content_print(json_t *c)
{
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(c))
		return;
	printf("content     scans");
	json_array_foreach(json_object_get(c, "scoped_fields"), i, v)
		printf(" %s", jsv(v));
	printf("\n");
	json_object_foreach(json_object_get(c, "extracted"), k, v) {
		const char *why =
			json_string_value(json_object_get(json_object_get(c, "unreadable"), k));

		if (json_is_string(v))
			printf("  %-9s  %s\n", k, jsv(v));
		else if (why)
			printf("  %-9s  (there, but unreadable: %s)\n", k, why);
		else
			printf("  %-9s  (none found)\n", k);
	}
	json_array_foreach(json_object_get(c, "matches"), i, v)
		if (json_is_string(json_object_get(v, "name")))
			printf("  matched   %s (%s, %s) by name %s\n", js(v, "rule"),
			       js(v, "field"), js(v, "action"), js(v, "name"));
		else if (json_is_string(json_object_get(v, "unreadable")))
			printf("  matched   %s (%s, %s) as unreadable: %s\n", js(v, "rule"),
			       js(v, "field"), js(v, "action"), js(v, "unreadable"));
		else
			printf("  matched   %s (%s, %s)\n", js(v, "rule"), js(v, "field"),
			       js(v, "action"));
	if (ji(c, "matched") > (long long)json_array_size(json_object_get(c, "matches")))
		printf("  and %lld more matched (each counted; explain lists the first 16 in "
		       "document order, and the verdict)\n",
		       ji(c, "matched") -
			       (long long)json_array_size(json_object_get(c, "matches")));
	if (json_is_string(json_object_get(c, "verdict")))
		printf("  verdict   %s\n", js(c, "verdict"));
	else
		printf("  verdict   none: no content rule matched\n");
}

/* The XDP stage of an explanation: what the filter does before regionfwd,
 * and only where it is enforced now (enforced_on: our program attached and
 * running this generation); the interfaces it should guard but does not
 * are named with why. */
static void explain_xdp_print(json_t *x)
{
	json_t *on = json_object_get(x, "enforced_on"),
	       *off = json_object_get(x, "not_enforced_on"), *v;
	char where[160] = "", lost[320] = "";
	size_t i, n = 0, m = 0;

	if (!json_is_object(x))
		return;
	if (!json_is_true(json_object_get(x, "section"))) {
		printf("xdp filter  none (the table has no filters section)\n");
		return;
	}
	json_array_foreach(on, i, v)
		n += (size_t)snprintf(where + n, n < sizeof(where) ? sizeof(where) - n : 0, "%s%s",
				      i ? ", " : "", json_string_value(v));
	json_array_foreach(off, i, v)
		m += (size_t)snprintf(lost + m, m < sizeof(lost) ? sizeof(lost) - m : 0, "%s%s: %s",
				      i ? "; " : "", js(v, "interface"), js(v, "why"));
	printf("xdp filter  %s", js(x, "verdict"));
	if (json_is_string(json_object_get(x, "rule")))
		printf(" by rule %s (%s %s)", js(x, "rule"), js(x, "by"), js(x, "match"));
	else
		printf(" (%s)", js(x, "by"));
	if (json_is_integer(json_object_get(x, "rate_pps")))
		printf(", up to %lld pkts/s, burst %lld", ji(x, "rate_pps"), ji(x, "burst"));
	if (json_array_size(on))
		printf(" on %s", where);
	else if (json_array_size(off))
		printf("; not enforced on any interface");
	else
		printf("; regiond attaches the filter nowhere (no --xdp-iface)");
	putchar('\n');
	if (json_array_size(off))
		printf("            not enforced on %s\n", lost);
	if (!strcmp(js(x, "verdict"), "drop") && json_array_size(on))
		printf("            dropped there: it never reaches regionfwd; if it did:\n");
	else if (json_is_true(json_object_get(x, "to_host_stack")) && json_array_size(on))
		printf("            left to the host's stack there (AF_XDP mode leaves it the "
		       "kernel's): it never reaches regionfwd; if it did:\n");
	else if (!strcmp(js(x, "verdict"), "drop") && json_array_size(off))
		printf("            the filter would drop it but is not enforced on any "
		       "interface; if it reaches regionfwd:\n");
}

static int cmd_explain(const struct opts *o, const struct ctl_call *c)
{
	const char *const *argv = c->pos;
	int argc = c->npos, rc, proto;
	json_t *b, *r;

	/* A PROTO that reads as a number is one by the rule of every number
	 * here: "+6", "0x06" and "256" once went to regiond and came back 400,
	 * exit 1, where a port of the same form was a usage error. A word goes
	 * as a string, for regiond to name the field if it is none. */
	if (strchr("0123456789+-. \t", argv[2][0])) {
		unsigned long long v;

		if (whole_number(argv[2], 0, 255, &v))
			return usage_error(c,
					   "PROTO '%s' is not a protocol: tcp, udp, sctp, icmp, "
					   "icmpv6 or a number 0..255 (decimal digits alone)",
					   argv[2]);
		proto = (int)v;
		b = json_pack("{s:s, s:s, s:I}", "src", argv[0], "dst", argv[1], "proto",
			      (json_int_t)v);
	} else {
		proto = fwd_proto_by_name(argv[2]);
		b = json_pack("{s:s, s:s, s:s}", "src", argv[0], "dst", argv[1], "proto", argv[2]);
	}
	/* Required here though the API takes ports 0 without them: a TCP, UDP
	 * or SCTP packet to port 0 is not one an operator asks about, and
	 * "explain SRC DST tcp 443" with the port forgotten would be answered
	 * for port 0 as if it were right. */
	if (argc < 4 &&
	    (proto == FWD_PROTO_TCP || proto == FWD_PROTO_UDP || proto == FWD_PROTO_SCTP)) {
		json_decref(b);
		return usage_error(c, "missing argument DPORT: tcp, udp and sctp (6, 17, 132) need "
				      "one here (POST /v1/explain alone takes port 0)");
	}
	opts_into_body(c, b);
	for (int i = 3; i < argc; i++) {
		unsigned long long v;

		if (whole_number(argv[i], 0, 65535, &v)) {
			json_decref(b);
			return usage_error(c, "'%s' is not a port (0..65535)", argv[i]);
		}
		json_object_set_new(b, argc == 5 && i == 3 ? "sport" : "dport",
				    json_integer((json_int_t)v));
	}
	rc = call(o, "POST", "/v1/explain", b, &r);
	json_decref(b);
	if (rc)
		return rc;
	if (o->json) {
		print_json(r);
	} else {
		printf("generation  %lld (%s)\n", ji(r, "generation"), js(r, "hash"));
		explain_xdp_print(json_object_get(r, "xdp"));
		if (json_is_null(json_object_get(r, "region"))) {
			/* Dropped by the parser for an address: no table was asked. */
			const char *why = "by the parser";

			for (int i = 0; i < FWD_DROP_MAX; i++)
				if (strcmp(fwd_drop_names[i], js(r, "drop_reason")) == 0)
					why = fwd_drop_help[i];
			printf("dropped     %s (%s), before any table is asked\n",
			       js(r, "drop_reason"), why);
			goto done;
		}
		printf("region      %s (matched %s)\n", js(r, "region"),
		       json_is_null(json_object_get(r, "prefix")) ? "no prefix" : js(r, "prefix"));
		printf("service     %s\n", js(r, "service"));
		/* The target only where there is one: "drop", not "drop drop". */
		if (json_is_string(json_object_get(r, "target")) &&
		    strcmp(js(r, "target"), js(r, "action")) != 0)
			printf("policy      %s: %s %s\n", js(r, "policy"), js(r, "action"),
			       js(r, "target"));
		else
			printf("policy      %s: %s\n", js(r, "policy"), js(r, "action"));
		if (!json_is_null(json_object_get(r, "group"))) {
			json_t *out = json_object_get(r, "group_ports_down"), *v;
			size_t i;

			printf("group       %s (flow hash %lld)\n", js(r, "group"),
			       ji(r, "flow_hash"));
			/* Members its slots leave out while their port is down. */
			if (json_array_size(out)) {
				printf("            left out for their port (down, or just back):");
				json_array_foreach(out, i, v)
					printf("%s %s", i ? "," : "", json_string_value(v));
				printf("\n");
			}
		}
		if (!json_is_null(json_object_get(r, "link")))
			printf("leaves on   link %s, port %s%s\n", js(r, "link"), js(r, "port"),
			       json_is_true(json_object_get(r, "port_down"))
				       ? " (its link is down: the NIC does not take it)"
				       : "");
		if (!json_is_null(json_object_get(r, "mirror")))
			printf("mirror      %s\n", js(r, "mirror"));
		if (!json_is_null(json_object_get(r, "drop_reason")))
			printf("dropped     %s\n", js(r, "drop_reason"));
		explain_content_print(json_object_get(r, "content"));
	}
done:
	json_decref(r);
	return 0;
}

/* counters and drops: the report, with rates over a window when asked. */
static int counters(const struct opts *o, const struct ctl_call *cl, int drops_only)
{
	static const enum fwd_report_sec secs[] = {FWD_RS_LINKS, FWD_RS_REGIONS, FWD_RS_SERVICES,
						   FWD_RS_POLICIES};
	double window = rate_window(cl);
	struct fwd_report *c;
	json_t *r = NULL, *rates = NULL;
	char v[5][16];
	int rc;

	if (window < 0)
		return EXIT_USAGE;
	rc = window > 0 ? read_rates(o, window, &c, &r, &rates) : read_counters(o, &c, &r);
	if (rc)
		return rc;
	if (o->json) {
		json_t *out = drops_only ? json_pack("{s:O}", "drops", json_object_get(r, "drops"))
					 : json_incref(r);

		if (rates)
			json_object_set_new(
				out, "rates",
				drops_only
					? json_pack("{s:O, s:O, s:O}", "drops",
						    json_object_get(rates, "drops"), "interval_s",
						    json_object_get(rates, "interval_s"), "reset",
						    json_object_get(rates, "reset"))
					: json_incref(rates));
		/* drops -j without a rate keeps its model: the reasons alone */
		print_json(drops_only && !rates ? json_object_get(r, "drops") : out);
		json_decref(out);
		goto out;
	}
	if (!drops_only) {
		printf("generation %" PRIu64 ": rx %" PRIu64 "  tx %" PRIu64 "  dropped %" PRIu64,
		       c->gen.id, c->packets.rx, c->packets.tx, c->packets.dropped);
		if (rates) {
			const json_t *p = json_object_get(rates, "packets");

			printf("\nrates over %.1f s: rx %s pkts/s %sbit/s  tx %s pkts/s %sbit/s  "
			       "dropped %s pkts/s",
			       json_number_value(json_object_get(rates, "interval_s")),
			       ctl_top_si(json_number_value(json_object_get(p, "rx_packets_per_s")),
					  v[0], 16),
			       ctl_top_si(json_number_value(json_object_get(p, "rx_bits_per_s")),
					  v[1], 16),
			       ctl_top_si(json_number_value(json_object_get(p, "tx_packets_per_s")),
					  v[2], 16),
			       ctl_top_si(json_number_value(json_object_get(p, "tx_bits_per_s")),
					  v[3], 16),
			       ctl_top_si(json_number_value(
						  json_object_get(p, "dropped_packets_per_s")),
					  v[4], 16));
			if (json_is_true(json_object_get(rates, "reset")))
				printf("  (regionfwd restarted in the window: since its start)");
		}
		putchar('\n');
		for (size_t s = 0; s < sizeof(secs) / sizeof(secs[0]); s++)
			print_counts(fwd_report_sec_key(secs[s]), c, secs[s], rates);
	}
	if (drops_only && rates)
		printf("rates over %.1f s%s\n",
		       json_number_value(json_object_get(rates, "interval_s")),
		       json_is_true(json_object_get(rates, "reset"))
			       ? " (regionfwd restarted in the window: since its start)"
			       : "");
	print_drops(c, rates);
	if (!drops_only) {
		printf("\n%-28s %16s\n", "events", "count");
		for (int i = 0; i < FWD_EVT_MAX; i++)
			if (c->events[i])
				printf("  %-26s %16" PRIu64 "\n", fwd_evt_names[i], c->events[i]);
	}
	if (!drops_only && c->sec[FWD_RS_CONTENT].n) {
		const struct fwd_report_section *sec = &c->sec[FWD_RS_CONTENT];

		printf("\n%-28s %-10s %-7s %-14s %12s %12s\n", "content rules", "field", "action",
		       "to", "matches", "flow_pkts");
		for (uint32_t i = 0; i < sec->n; i++) {
			const struct fwd_report_row *row = &sec->rows[i];

			printf("  %-26s %-10s %-7s %-14s %12" PRIu64 " %12" PRIu64 "\n", row->name,
			       row->attr_state[0] == FWD_RA_SET ? row->attr[0] : "-",
			       row->attr_state[1] == FWD_RA_SET ? row->attr[1] : "-",
			       row->attr_state[2] == FWD_RA_SET ? row->attr[2] : "-",
			       row->v[FWD_RV_MATCHES], row->v[FWD_RV_FLOW_PACKETS]);
			for (uint32_t k = 0; k < row->ntop; k++) /* a name set's top names */
				printf("    %-52s %12" PRIu64 "\n", row->top[k].name,
				       row->top[k].count);
		}
	}
out:
	json_decref(rates);
	json_decref(r);
	fwd_report_free(c);
	return 0;
}

/* Standard input whole (a pipe too), at most a document's bound, NUL
 * ended. 0, or -errno with @e. */
static int read_stdin(char **buf, size_t *len, struct fwd_err *e)
{
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap);

	for (;;) {
		ssize_t r;

		if (b == NULL) {
			fwd_err_set(e, "stdin", 0, NULL, "out of memory");
			return -ENOMEM;
		}
		if (n + 1 == cap) {
			char *g = cap >= FWD_DOC_MAX_BYTES ? NULL : realloc(b, cap * 2);

			if (g == NULL) {
				free(b);
				fwd_err_set(e, "stdin", 0, NULL,
					    "more than %u bytes, or out of memory",
					    FWD_DOC_MAX_BYTES);
				return -EFBIG;
			}
			b = g;
			cap *= 2;
		}
		r = read(STDIN_FILENO, b + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;

			free(b);
			fwd_err_set(e, "stdin", 0, NULL, "cannot read: %s", strerror(err));
			return -err;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

/* The body of validate, diff and apply: the document at @file, its names
 * files embedded. A file that cannot be read is the command line's fault
 * (exit 2); a document that cannot be sent as it is (a names_file refused,
 * bytes that are not UTF-8) is refused like an invalid table (exit 1), as
 * docs/regionctl.md has 'validate' exit: a script that gates on it must not
 * take a bad document for its own mistake. */
static json_t *doc_body(const char *path, int *rc)
{
	/* '-': the document from standard input (a generator's pipe), named
	 * "stdin" in errors; its names files beneath the current directory. */
	const int from_stdin = strcmp(path, "-") == 0;
	const char *file = from_stdin ? "stdin" : path;
	struct fwd_err e = {0};
	char *buf;
	size_t len;
	json_t *b;

	if (from_stdin ? read_stdin(&buf, &len, &e) : fwd_read_file(file, &buf, &len, &e)) {
		struct stat st;
		/* A pipe (validate <(gen)) is read as standard input is: say so. */
		const int pipe = !from_stdin && stat(file, &st) == 0 && S_ISFIFO(st.st_mode);

		fprintf(stderr, "regionctl: %s: %s%s\n", file, e.reason,
			pipe ? " (a pipe: give '-' and the document on standard input)" : "");
		*rc = EXIT_USAGE;
		return NULL;
	}
	{ /* the name-set files it names travel inside it (fwd_embed.h) */
		const char *slash = from_stdin ? NULL : strrchr(file, '/');
		char dir[PATH_MAX], *emb, msg[768];
		size_t elen;

		snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - file + 1) : 0, file);
		int erc = fwd_embed_names(buf, len, file, dir, names_dir, &emb, &elen, &e);

		if (erc) {
			fprintf(stderr, "regionctl: %s\n", fwd_err_str(&e, msg, sizeof(msg)));
			if (erc != -ENOMEM)
				json_refusal(FWD_R_INVALID_TABLE, e.file, e.line, e.path, e.reason);
			free(buf);
			*rc = erc == -ENOMEM ? CTL_EXIT_FAILED : EXIT_REFUSED;
			return NULL;
		}
		if (emb && (erc = fwd_table_written_tags(buf, len, file, &e))) {
			/* the embedded JSON keeps no YAML tag for regiond to refuse */
			fprintf(stderr, "regionctl: %s\n", fwd_err_str(&e, msg, sizeof(msg)));
			json_refusal(FWD_R_INVALID_TABLE, e.file, e.line, e.path, e.reason);
			free(emb);
			free(buf);
			*rc = EXIT_REFUSED;
			return NULL;
		}
		if (emb) {
			struct fwd_err ignored;

			/* Its lines, for a refusal said by field alone. */
			fwd_doc_free(sent_written);
			sent_written = fwd_doc_parse(buf, len, file, -1, &ignored);
			free(buf);
			buf = emb;
			len = elen;
		}
	}
	/* A NUL byte: regiond's JSON reader refuses it, naming its own flag
	 * and the request's byte, not the file's line. Said here, as the
	 * parser says it for a file it reads. */
	const char *nul = memchr(buf, '\0', len);

	if (nul != NULL) {
		size_t line = 1;

		for (const char *q = buf; q < nul; q++)
			line += *q == '\n';
		fprintf(stderr, "regionctl: %s:%zu: a NUL byte: a table document is text\n", file,
			line);
		json_refusal(FWD_R_INVALID_TABLE, file, line, "",
			     "a NUL byte: a table document is text");
		free(buf);
		*rc = EXIT_REFUSED;
		return NULL;
	}
	b = json_pack("{s:s%}", "document", buf, len);
	sent_document = file;
	if (b == NULL) {
		/* A JSON string is UTF-8: say where the file stops being it,
		 * rather than send nothing and look successful. */
		size_t ok = fwd_utf8_valid_len(buf, len), line = 1, col = 1;

		for (size_t i = 0; i < ok && i < len; i++, col++)
			if (buf[i] == '\n')
				line++, col = 0;
		if (ok < len) {
			char why[96];

			snprintf(why, sizeof(why),
				 "not UTF-8 text (byte 0x%02x at column %zu): a table document is "
				 "UTF-8",
				 (unsigned char)buf[ok], col);
			fprintf(stderr, "regionctl: %s:%zu: %s\n", file, line, why);
			json_refusal(FWD_R_INVALID_TABLE, file, line, "", why);
			*rc = EXIT_REFUSED;
		} else {
			fprintf(stderr, "regionctl: %s: out of memory\n", file);
			*rc = CTL_EXIT_FAILED;
		}
	}
	free(buf);
	return b;
}

/* A move of protected users out of their residency (impact.moves[].residency):
 * valid, since the table says who the users are, but said where the
 * operator looks before applying. */
static void print_handover(json_t *move, const char *indent)
{
	if (json_is_string(json_object_get(move, "residency")))
		printf("%swarning: users of '%s' handed to '%s' leave its residency: %s\n", indent,
		       js(move, "from"), js(move, "to"), js(move, "residency"));
}

/* A link's admin state as a sentence says it ("drain" is "drained"). */
static const char *state_word(const char *s)
{
	return strcmp(s, "drain") == 0 ? "drained" : s;
}

/* A write that runs but whose record regiond could not write yet. */
static void print_unsaved(json_t *r, long long id)
{
	if (json_is_false(json_object_get(r, "saved")))
		fprintf(stderr,
			"regionctl: warning: generation %lld runs, but regiond could not write its "
			"record to disk yet (it retries; status says why): a restart of regiond "
			"and regionfwd before it is written would drop it\n",
			id);
}

/* "N policies or content rules" of a warning's "users". */
static const char *users_said(json_t *v, char *buf, size_t len)
{
	long long u = ji(v, "users");

	snprintf(buf, len, "%lld polic%s or content rule%s", u, u == 1 ? "y" : "ies",
		 u == 1 ? "" : "s");
	return buf;
}

/* A write's residency_handovers: the change ran, and these users left;
 * and the residency rules it dropped or weakened. */
static void print_handovers(json_t *r)
{
	char n[64];
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(r, "groups_carrying_nothing"), i, v)
		printf("warning: link group '%s' has no member that can carry traffic (each is "
		       "down, drained or of weight 0): what is steered there (%s) is dropped "
		       "(no_link_up)\n",
		       js(v, "group"), users_said(v, n, sizeof(n)));
	json_array_foreach(json_object_get(r, "links_down_in_use"), i, v)
		printf("warning: link '%s' is down: what is steered or mirrored to it directly "
		       "(%s) is not sent (a steer drops as no_link_up, a mirror copy is not "
		       "made)\n",
		       js(v, "link"), users_said(v, n, sizeof(n)));
	json_array_foreach(json_object_get(r, "links_drained_alone"), i, v)
		printf("warning: link '%s' is drained but a member of no link group: a drain only "
		       "moves a group's flows to its other members, so it still carries what is "
		       "steered or mirrored to it directly (%s); 'link down' stops that\n",
		       js(v, "link"), users_said(v, n, sizeof(n)));
	json_array_foreach(json_object_get(r, "link_states_changed"), i, v)
		printf("warning: this table sets link '%s' %s (it is %s now): a link's state is "
		       "the table's\n",
		       js(v, "link"), state_word(js(v, "to")), state_word(js(v, "from")));

	json_array_foreach(json_object_get(r, "residency_weakened"), i, v)
		printf("warning: residency rule '%s' of region '%s' %s\n", js(v, "rule"),
		       js(v, "region"), js(v, "change"));

	json_array_foreach(json_object_get(r, "residency_handovers"), i, v) {
		if (i == 20) { /* thousands of regions: -j has them all */
			printf("warning: and %zu more (region, region) pairs (-j lists them all)\n",
			       json_array_size(json_object_get(r, "residency_handovers")) - i);
			break;
		}
		if (json_is_true(json_object_get(v, "truncated")))
			printf("warning: regiond ran out of memory checking whether the change "
			       "hands protected users out of their residency\n");
		else
			print_handover(v, "");
	}
}

static void print_valid(json_t *r, const char *file)
{
	/* '-' is named "stdin", as its errors are */
	printf("%s: valid\n", strcmp(file, "-") ? file : "stdin");
	print_handovers(r);
}

/* The rules of the filters and content_rules sections that a change adds,
 * removes or changes, with the traffic each saw (ctl_traffic.h). */
static void print_rules_impact(const char *title, const json_t *list)
{
	const json_t *v;
	char a[16], b[16];
	size_t i;

	json_array_foreach(list, i, v) {
		const char *ch = js((json_t *)v, "change");

		printf("%c %s %s",
		       ch[0] == 'a'   ? '+'
		       : ch[0] == 'r' ? '-'
				      : '~',
		       title, js((json_t *)v, "name"));
		if (json_is_number(json_object_get(v, "scope_packets")))
			printf(": its services saw %s packets",
			       ctl_top_si(json_number_value(json_object_get(v, "scope_packets")), a,
					  16));
		if (json_is_number(json_object_get(v, "matches")))
			printf(", it matched %s",
			       ctl_top_si(json_number_value(json_object_get(v, "matches")), b, 16));
		if (json_is_integer(json_object_get(v, "packets_since_set")))
			printf(": %lld packets since it was set",
			       ji((json_t *)v, "packets_since_set"));
		putchar('\n');
	}
}

/* One value of a changed field as text: a plain string bare (drain), any
 * other value as compact JSON, a string too when it is empty, "(none)" or
 * holds a control character or a quote (a description's newline once
 * broke the line); "(none)" when absent. Allocated. */
static char *diff_text(const json_t *v)
{
	const char *sv = json_string_value(v);
	int bare = sv != NULL && *sv != '\0' && strcmp(sv, "(none)") != 0;

	for (const char *c = sv; bare && *c; c++)
		bare = (unsigned char)*c >= 0x20 && *c != '"' && *c != 0x7f;
	if (v == NULL)
		return strdup("(none)");
	return bare ? strdup(sv) : json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* @t cut to about 40 bytes for a diff line, around byte @at (where it
 * differs from the other side: two long lists that differ past their
 * first 40 bytes once printed the same on both sides), never inside a
 * character. */
static void diff_cut(const char *t, size_t at, char *out, size_t cap)
{
	size_t n = strlen(t), from = 0, k;

	if (n <= 40) {
		snprintf(out, cap, "%s", t);
		return;
	}
	if (at > 12)
		from = at - 12;
	if (from > n - 34)
		from = n - 34;
	while (from > 0 && ((unsigned char)t[from] & 0xc0) == 0x80)
		from--;
	k = fwd_utf8_valid_len(t + from, n - from < 34 ? n - from : 34);
	snprintf(out, cap, "%s%.*s%s", from ? "..." : "", (int)k, t + from,
		 from + k < n ? "..." : "");
}

/* Both sides of a changed value, each cut around where they first differ. */
static void diff_values(const json_t *b, const json_t *a, char *x, char *y, size_t cap)
{
	char *tb = diff_text(b), *ta = diff_text(a);
	size_t at = 0;

	if (tb && ta)
		while (tb[at] && tb[at] == ta[at])
			at++;
	diff_cut(tb ? tb : "?", at, x, cap);
	diff_cut(ta ? ta : "?", at, y, cap);
	free(tb);
	free(ta);
}

/* The fields of one changed entry (a link, a group, a policy) that differ,
 * "FIELD BEFORE -> AFTER", an object's own fields by their dotted path
 * (members.to-us-west-b 5 -> 3): a diff once said "~ links to-sg" and
 * not what of it changed. At most @left more. */
static void diff_fields(const json_t *b, const json_t *a, const char *at, int *left, int *first)
{
	const char *k;
	json_t *v;

	for (int side = 0; side < 2; side++) {
		const json_t *one = side ? a : b, *other = side ? b : a;

		json_object_foreach((json_t *)one, k, v) {
			json_t *w = json_object_get(other, k);
			char path[128], x[48], y[48];

			if (side && w != NULL) /* both sides: said from the first */
				continue;
			if (w != NULL && json_equal(v, w))
				continue;
			snprintf(path, sizeof(path), "%s%s%s", at, *at ? "." : "", k);
			if (w != NULL && json_is_object(v) && json_is_object(w)) {
				diff_fields(v, w, path, left, first);
				continue;
			}
			if ((*left)-- <= 0) {
				if (*left == -1)
					printf(", ...");
				continue;
			}
			diff_values(side ? NULL : v, side ? v : w, x, y, sizeof(x));
			printf("%s%s %s -> %s", *first ? ": " : ", ", path, x, y);
			*first = 0;
		}
	}
}

static void print_diff(json_t *r, const char *unused)
{
	static const enum fwd_schema secs[] = {FWD_F_DOC_REGIONS, FWD_F_DOC_SERVICES,
					       FWD_F_DOC_LINKS, FWD_F_DOC_LINK_GROUPS,
					       FWD_F_DOC_POLICIES};
	json_t *d = json_object_get(r, "diff"), *imp = json_object_get(r, "impact"), *v, *o,
	       *tr = json_object_get(imp, "traffic");
	char a[16], b[16], c[16], e[16];
	size_t i, k;

	(void)unused;
	for (size_t s = 0; s < 5; s++) {
		/* never NULL for these: GCC cannot tell (-Wformat-overflow at -O3) */
		const char *sec = fwd_schema_name(secs[s]) ?: "?";
		json_t *sd = json_object_get(d, sec);

		json_array_foreach(json_object_get(sd, "added"), i, v)
			printf("+ %s %s\n", sec, jsv(v));
		json_array_foreach(json_object_get(sd, "removed"), i, v)
			printf("- %s %s\n", sec, jsv(v));
		json_array_foreach(json_object_get(sd, "changed"), i, v) {
			if (json_object_get(v, "prefixes_added"))
				printf("~ %s %s: +%zu -%zu prefixes%s\n", sec, js(v, "name"),
				       json_array_size(json_object_get(v, "prefixes_added")),
				       json_array_size(json_object_get(v, "prefixes_removed")),
				       json_is_true(json_object_get(v, "description_changed"))
					       ? ", description"
					       : "");
			else {
				int left = 6, first = 1;

				json_t *bf = json_object_get(v, "before"),
				       *af = json_object_get(v, "after");

				printf("~ %s %s", sec, js(v, "name"));
				if (json_is_object(bf) && json_is_object(af)) {
					diff_fields(bf, af, "", &left, &first);
				} else { /* a service's list */
					char x[48], y[48];

					diff_values(bf, af, x, y, sizeof(x));
					printf(": %s -> %s", x, y);
				}
				putchar('\n');
			}
		}
	}
	if (json_is_true(json_object_get(d, "default_changed")))
		printf("~ default\n");
	if (json_is_true(json_object_get(d, "residency_changed")))
		printf("~ residency\n");
	json_array_foreach(json_object_get(r, "residency_weakened"), i, v)
		printf("  warning: residency rule '%s' of region '%s' %s\n", js(v, "rule"),
		       js(v, "region"), js(v, "change"));
	if (json_is_string(json_object_get(d, "filters_section")))
		printf("%c filters section\n", js(d, "filters_section")[0] == 'a' ? '+' : '-');
	if (json_is_true(json_object_get(d, "filters_settings_changed")))
		printf("~ filters (default, non_ip, malformed or redirect)\n");
	print_rules_impact("filter rule", json_object_get(imp, "filter_rules"));
	print_rules_impact("content rule", json_object_get(imp, "content_rules"));
	json_array_foreach(json_object_get(imp, "moves"), i, v) {
		if (json_is_true(json_object_get(v, "truncated"))) {
			printf("moves: too many prefixes change to count them here\n");
			print_handovers(r); /* counted whole all the same */
			break;
		}
		printf("move %s -> %s: %lld prefixes", js(v, "from"), js(v, "to"),
		       ji(v, "prefixes"));
		if (json_number_value(json_object_get(v, "ipv4_addresses")) > 0)
			printf(", %.0f IPv4 addresses",
			       json_number_value(json_object_get(v, "ipv4_addresses")));
		if (json_number_value(json_object_get(v, "ipv6_addresses")) > 0)
			printf(", 2^%.0f IPv6 addresses",
			       log2(json_number_value(json_object_get(v, "ipv6_addresses"))));
		if (json_is_number(json_object_get(v, "from_region_packets_at_most")))
			printf(" (%s saw %s packets in the window: the most that moves)",
			       js(v, "from"),
			       ctl_top_si(json_number_value(json_object_get(
						  v, "from_region_packets_at_most")),
					  a, 16));
		putchar('\n');
		json_array_foreach(json_object_get(v, "outcomes"), k, o)
			printf("  %-41s %-24s -> %s\n", js(o, "service"), js(o, "before"),
			       js(o, "after"));
		print_handover(v, "  ");
	}
	printf("\nimpact: %zu (region, service) pairs change%s\n",
	       json_array_size(json_object_get(imp, "changes")),
	       json_is_true(json_object_get(imp, "truncated")) ? " (truncated)" : "");
	json_array_foreach(json_object_get(imp, "changes"), i, v) {
		printf("  %-20s %-16s %-24s -> %s", js(v, "region"), js(v, "service"),
		       js(v, "before"), js(v, "after"));
		if (json_is_number(json_object_get(v, "packets")))
			printf("  %s packets",
			       ctl_top_si(json_number_value(json_object_get(v, "packets")), a, 16));
		else if (json_is_number(json_object_get(v, "policy_packets")))
			printf("  (%s %s packets)", js(v, "policy"),
			       ctl_top_si(json_number_value(json_object_get(v, "policy_packets")),
					  a, 16));
		putchar('\n');
	}
	if (json_is_string(json_object_get(tr, "unknown")))
		printf("traffic: unknown, %s\n", js(tr, "unknown"));
	else if (json_is_object(tr))
		printf("traffic over the last %.0f s%s: %s packets, %sB; would change link: %s "
		       "packets (%.2f %%)%s, at most %sB (%.2f %%) of the bytes\n",
		       json_number_value(json_object_get(tr, "window_s")),
		       json_is_true(json_object_get(tr, "counters_reset"))
			       ? " (regionfwd restarted: since its start)"
			       : "",
		       ctl_top_si(json_number_value(json_object_get(tr, "packets")), a, 16),
		       ctl_top_si(json_number_value(json_object_get(tr, "bytes")), b, 16),
		       ctl_top_si(json_number_value(json_object_get(tr, "changed_packets")), c, 16),
		       100 * json_number_value(json_object_get(tr, "changed_share")),
		       json_is_true(json_object_get(tr, "changed_packets_exact")) ? "" : " at most",
		       ctl_top_si(json_number_value(json_object_get(tr, "changed_bytes_at_most")),
				  e, 16),
		       100 * json_number_value(json_object_get(tr, "changed_bytes_share_at_most")));
}

/* top's fetches: the same API calls as counters and status. */
static int top_counters(void *arg, struct fwd_report **out)
{
	return read_counters(arg, out, NULL);
}

static int top_status(void *arg, json_t **out)
{
	return call(arg, "GET", "/v1/status", NULL, out);
}

/* top's full-screen view (curses) writes its own terminal sequences. */
static int top_is_curses(const struct opts *o, const struct ctl_call *c)
{
	(void)c;
	return !o->json && isatty(STDOUT_FILENO);
}

static int cmd_top(const struct opts *o, const struct ctl_call *c)
{
	const char *cnt = opt_val(c, "--count"), *sort = opt_val(c, "--sort");
	struct ctl_top_conf conf = {.interval = 1.0,
				    .filter = opt_val(c, "--filter"),
				    .json = o->json,
				    .curses = top_is_curses(o, c)};
	struct opts lines = *o;
	struct ctl_top_source src = {.arg = &lines, .counters = top_counters, .status = top_status};
	unsigned long long n;

	/* -j's frames are one JSON object a line: so is an error between them */
	if (lines.json_errors != JERR_NONE)
		lines.json_errors = JERR_LINE;

	if (opt_val(c, "--interval") && (conf.interval = rate_window(c)) < 0)
		return EXIT_USAGE;
	if (cnt) {
		if (whole_number(cnt, 1, LONG_MAX, &n))
			return usage_error(c, "--count takes a number of frames >= 1, not '%s'",
					   cnt);
		conf.count = (long)n;
	}
	if (sort) {
		int s = ctl_top_sort_of(sort);

		if (s < 0)
			return usage_error(c, "--sort takes rate, total or name, not '%s'", sort);
		conf.sort = (enum ctl_top_sort)s;
	}
	if (conf.filter && conf.filter[0] == '\0')
		conf.filter = NULL;
	return ctl_top_run(&conf, &src);
}

static int cmd_counters(const struct opts *o, const struct ctl_call *c)
{
	return counters(o, c, 0);
}

static int cmd_drops(const struct opts *o, const struct ctl_call *c)
{
	return counters(o, c, 1);
}

static int validate(const struct opts *o, const char *file, int diff)
{
	json_t *b;
	int rc = 0;

	json_refusals_valid = 1;
	if ((b = doc_body(file, &rc)) == NULL)
		return rc;
	return show(o, "POST", "/v1/validate", b, diff ? print_diff : print_valid, file);
}

static int cmd_validate(const struct opts *o, const struct ctl_call *c)
{
	return validate(o, c->pos[0], 0);
}

static int cmd_diff(const struct opts *o, const struct ctl_call *c)
{
	return validate(o, c->pos[0], 1);
}

static int current_generation(const struct opts *o, long long *id)
{
	json_t *r;
	int rc = call(o, "GET", "/v1/status", NULL, &r);

	if (rc == 0)
		*id = ji(json_object_get(r, "generation"), "id");
	json_decref(r);
	return rc;
}

/* The line of a write that took regionfwd back (taken_back): it ran a
 * table this regiond held back from, the alarm's, and runs this one's
 * again. A no-op's "no change" alone read as if nothing had happened. */
static void print_taken_back(json_t *r, const char *what, long long id)
{
	if (json_is_true(json_object_get(r, "taken_back")))
		printf("%s: regionfwd taken back: it ran a table this regiond held back from "
		       "(another regiond's, or one it could not adopt), and runs generation %lld "
		       "now\n",
		       what, id);
}

static void print_gen(json_t *r, const char *what)
{
	json_t *g = json_object_get(r, "generation");

	if (json_is_true(json_object_get(r, "changed")))
		printf("%s: generation %lld (%s) is running\n", what, ji(g, "id"), js(g, "hash"));
	else
		printf("%s: no change, generation %lld already has this table\n", what,
		       ji(g, "id"));
	print_taken_back(r, what, ji(g, "id"));
	print_handovers(r);
	print_unsaved(r, ji(g, "id"));
	if (json_object_get(r, "confirm_by"))
		printf("confirm within %lld s with 'regionctl confirm %lld', or it reverts by "
		       "itself\n",
		       json_object_get(r, "confirm_within_s")
			       ? ji(r, "confirm_within_s")
			       : ji(r, "confirm_by") - (long long)time(NULL),
		       ji(g, "id"));
}

/* --confirm-timeout's seconds into *@confirm (0 without it). Strict: a typo
 * must not silently change the table without a confirm window. @return 0
 * or EXIT_USAGE (said). */
static int confirm_timeout(const struct ctl_call *c, long *confirm)
{
	const char *timeout = opt_val(c, "--confirm-timeout");
	unsigned long long s;

	*confirm = 0;
	if (timeout == NULL)
		return 0;
	if (whole_number(timeout, 1, 86400, &s))
		return usage_error(c, "--confirm-timeout takes seconds 1..86400, not '%s'",
				   timeout);
	*confirm = (long)s;
	return 0;
}

static int cmd_apply(const struct opts *o, const struct ctl_call *c)
{
	const char *file = c->pos[0];
	long confirm;
	long long cur;
	json_t *b;
	int rc = 0;

	const char *expected = opt_val(c, "--expected-generation");
	unsigned long long v;

	if ((rc = confirm_timeout(c, &confirm)))
		return rc;
	/* The generation the edit was made from, when the caller says it:
	 * the current one read here only guards regionctl's own read-then-PUT
	 * gap, and another client's change made since the caller read the
	 * table was silently undone (a soak of concurrent clients). */
	if (expected && whole_number(expected, 0, LLONG_MAX, &v))
		return usage_error(c, "--expected-generation takes a generation >= 0, not '%s'",
				   expected);
	if ((b = doc_body(file, &rc)) == NULL)
		return rc;
	if (expected) {
		cur = (long long)v;
	} else if ((rc = current_generation(o, &cur))) {
		json_decref(b);
		return rc;
	}
	json_object_set_new(b, "expected_generation", json_integer(cur));
	if (getenv("USER"))
		json_object_set_new(b, "author", json_string(getenv("USER")));
	opts_into_body(c, b);
	if (confirm)
		json_object_set_new(b, "confirm_timeout_s", json_integer(confirm));
	return show(o, "PUT", "/v1/table", b, print_gen, "apply");
}

/*
 * 'link down|up|drain LINK' and 'link weight LINK N': one PATCH of the
 * table (set_link_state, set_weight), so the change is validated like any
 * other (residency included), recorded with who made it, and can be
 * committed with a confirm window; the subcommand's name is the state word.
 */
static int cmd_link(const struct opts *o, const struct ctl_call *c)
{
	const char *sub = cmd_of(c)->name, *link = c->pos[0], *group = opt_val(c, "--group");
	const char *expected = opt_val(c, "--expected-generation");
	unsigned long long ev = 0;
	int weight = strcmp(sub, "weight") == 0;
	char what[96], comment[160], shown[256];
	long confirm;
	long long cur, w = 0;
	json_t *b, *change;
	int rc;

	if (fwd_name_check(link))
		return usage_error(c, "'%s' is not a link name (1..%d of A-Z a-z 0-9 _ - .)",
				   fwd_name_shown(link, shown, sizeof(shown)), FWD_NAME_MAX - 1);
	if (group && fwd_name_check(group))
		return usage_error(c, "'%s' is not a link group name (1..%d of A-Z a-z 0-9 _ - .)",
				   fwd_name_shown(group, shown, sizeof(shown)), FWD_NAME_MAX - 1);
	if (weight) {
		unsigned long long v;

		if (whole_number(c->pos[1], 0, 1000000, &v))
			return usage_error(c, "a weight is 0..1000000, not '%s'", c->pos[1]);
		w = (long long)v;
		change = json_pack("{s:s, s:s, s:I}", "op", "set_weight", "link", link, "weight",
				   (json_int_t)w);
		if (group)
			json_object_set_new(change, "group", json_string(group));
		snprintf(what, sizeof(what), "link weight %s %lld", link, w);
		snprintf(comment, sizeof(comment), "link %s: weight %lld%s%s", link, w,
			 group ? " in " : "", group ? group : "");
	} else {
		if (fwd_schema_lookup(FWD_SC_LINK_STATE, sub) < 0)
			return usage_error(c, "'%s' is not a link state", sub);
		change = json_pack("{s:s, s:s, s:s}", "op", "set_link_state", "link", link, "state",
				   sub);
		snprintf(what, sizeof(what), "link %s %s", sub, link);
		snprintf(comment, sizeof(comment), "link %s: state %s", link, sub);
	}
	/* --expected-generation as apply takes it: it was once advertised
	 * here and never read, the change made on whatever was current. */
	if (expected && whole_number(expected, 0, LLONG_MAX, &ev)) {
		json_decref(change);
		return usage_error(c, "--expected-generation takes a generation >= 0, not '%s'",
				   expected);
	}
	if ((rc = confirm_timeout(c, &confirm)) ||
	    (!expected && (rc = current_generation(o, &cur)))) {
		json_decref(change);
		return rc;
	}
	if (expected)
		cur = (long long)ev;
	b = json_pack("{s:[o], s:I, s:s}", "changes", change, "expected_generation",
		      (json_int_t)cur, "comment", comment);
	if (getenv("USER"))
		json_object_set_new(b, "author", json_string(getenv("USER")));
	opts_into_body(c, b); /* --comment, --author */
	if (confirm)
		json_object_set_new(b, "confirm_timeout_s", json_integer(confirm));
	return show(o, "PATCH", "/v1/table", b, print_gen, what);
}

/* Each write's own line, from the fields its ans_routes entry checks (a
 * rollback answered with "confirmed" once printed "confirmed generation"). */
static void print_confirmed(json_t *r, const char *unused)
{
	(void)unused;
	if (json_is_true(json_object_get(r, "already")))
		printf("generation %lld was already confirmed\n", ji(r, "confirmed"));
	else
		printf("confirmed generation %lld\n", ji(r, "confirmed"));
}

static void print_detached(json_t *r, const char *unused)
{
	(void)unused;
	printf("%s\n",
	       json_is_true(json_object_get(r, "detached")) ? "detached"
	       : json_is_true(json_object_get(r, "pending"))
		       ? "detached where the interfaces are; an --xdp-iface is not in "
			 "regiond's network namespace: taken off when it is back (regionctl "
			 "filter status)"
		       : "not attached");
}

/* A generation's text (a positive integer, as regiond takes it) into
 * *@g. @return 0, or -1 when it is not one. */
static int parse_generation(const char *s, long long *g)
{
	unsigned long long v;

	if (whole_number(s, 1, LLONG_MAX, &v))
		return -1;
	*g = (long long)v;
	return 0;
}

/* With GEN, that generation only: a late confirm of a change reverted
 * meanwhile cannot keep someone else's, and a retry says it was done. */
static int cmd_confirm(const struct opts *o, const struct ctl_call *c)
{
	json_t *b = json_object();
	long long g;

	if (c->npos) {
		if (parse_generation(c->pos[0], &g)) {
			json_decref(b);
			return usage_error(c, "'%s' is not a generation", c->pos[0]);
		}
		json_object_set_new(b, "generation", json_integer(g));
	}
	return show(o, "POST", "/v1/confirm", b, print_confirmed, NULL);
}

/* rollback --dry-run: what it would run, as diff shows a document. */
static void print_rollback_preview(json_t *r, const char *unused)
{
	(void)unused;
	if (json_is_true(json_object_get(r, "runs_already"))) {
		printf("rollback to generation %lld: no change, it is the one running (dry run)\n",
		       ji(r, "rollback_to"));
		return;
	}
	printf("rollback to generation %lld would change (dry run, nothing changed):\n",
	       ji(r, "rollback_to"));
	print_diff(r, NULL);
}

static int cmd_rollback(const struct opts *o, const struct ctl_call *c)
{
	const char *expected = opt_val(c, "--expected-generation");
	unsigned long long ev = 0;
	long long cur = 0;
	json_t *b;
	int rc;

	/* As apply and link: --expected-generation N, else the generation
	 * current when regionctl starts. A rollback without it undid whatever
	 * was current when regiond got it: another operator's change made in
	 * between, or the other of two rollbacks run at once, which then
	 * rolled the bad change forward again (a hostile probe). */
	if (expected && whole_number(expected, 0, LLONG_MAX, &ev))
		return usage_error(c, "--expected-generation takes a generation >= 0, not '%s'",
				   expected);
	if (c->npos) {
		long long g;

		if (parse_generation(c->pos[0], &g))
			return usage_error(c, "'%s' is not a generation", c->pos[0]);
	}
	if (opt_val(c, "--dry-run")) {
		long long g;

		b = json_pack("{s:b}", "dry_run", 1);
		if (c->npos && parse_generation(c->pos[0], &g) == 0)
			json_object_set_new(b, "generation", json_integer(g));
		json_refusals_valid = 1;
		return show(o, "POST", "/v1/rollback", b, print_rollback_preview, "rollback");
	}
	if (!expected && (rc = current_generation(o, &cur)))
		return rc;
	b = json_pack("{s:I}", "expected_generation", expected ? (json_int_t)ev : (json_int_t)cur);
	if (c->npos) {
		long long g;

		if (parse_generation(c->pos[0], &g)) {
			json_decref(b);
			return usage_error(c, "'%s' is not a generation", c->pos[0]);
		}
		json_object_set_new(b, "generation", json_integer(g));
	}
	/* Who and why, as every other change records them (it said 'api'). */
	if (getenv("USER"))
		json_object_set_new(b, "author", json_string(getenv("USER")));
	opts_into_body(c, b);
	return show(o, "POST", "/v1/rollback", b, print_gen, "rollback");
}

/* The second line of a prefix file refused before anything was sent. */
static void nothing_sent(const struct ctl_call *c)
{
	fprintf(stderr, "nothing was sent. See '");
	print_path(stderr, c);
	fprintf(stderr, " --help'.\n");
}

/* A prefix file's bounds. A line holds a prefix (at most 43 bytes) or a
 * comment; the whole file becomes one request body, and regiond accepts at
 * most --max-body (256 MiB by default) of those: a larger file could not be
 * sent to a regiond left at its default. The bound is fixed, since
 * regionctl cannot know regiond's --max-body, and keeps what regionctl
 * holds bounded: a larger file is split, each part its own batch. */
#define PREFIX_LINE_MAX 4096
#define PREFIX_FILE_MAX (256u * 1024u * 1024u)

/* Says that prefix file @name (at line @line, 0: as a whole) is larger
 * than PREFIX_FILE_MAX, and what to do. */
static void prefix_file_too_large(const char *name, unsigned line)
{
	char at[16] = "";

	if (line)
		snprintf(at, sizeof(at), ":%u", line);
	fprintf(stderr,
		"regionctl: %s%s: larger than %u bytes, more than regiond takes in one batch "
		"by default (--max-body): split it into files of fewer lines, each sent as a "
		"batch of its own\n",
		name, at, PREFIX_FILE_MAX);
}

/* The next line of @f into @buf (PREFIX_LINE_MAX + 1 bytes), '\n' dropped,
 * NUL-terminated; *@total counts what was read. @return its length (a NUL
 * byte in it counts), -1 at the end, -2 when longer than PREFIX_LINE_MAX
 * bytes, -3 past PREFIX_FILE_MAX, -4 a read error (errno says). */
static ssize_t prefix_line(FILE *f, char *buf, size_t *total)
{
	size_t n = 0;
	int ch;

	while ((ch = getc_unlocked(f)) != EOF) {
		if (++*total > PREFIX_FILE_MAX)
			return -3;
		if (ch == '\n')
			break;
		if (n == PREFIX_LINE_MAX)
			return -2;
		buf[n++] = (char)ch;
	}
	buf[n] = '\0';
	if (ch == EOF && ferror(f))
		return -4;
	return ch == EOF && n == 0 ? -1 : (ssize_t)n;
}

/* @file (or stdin, "-") to read prefix lines from, opened and checked by
 * ctl_file_open(): a regular file, a pipe (a named FIFO waits for its
 * writer, as with '<'), /dev/null (empty) or, for stdin, a terminal. Not
 * /dev/zero or a directory, which would read for ever or fail at once.
 * @return it, or NULL (said) with the exit code in @rc. */
static FILE *prefix_file(const struct ctl_call *c, const char *file, int *rc)
{
	const char *name = strcmp(file, "-") ? file : "stdin";
	char why[256];
	struct stat st;
	FILE *f;
	int fd = ctl_file_open(strcmp(file, "-") ? file : NULL, CTL_FILE_PIPE | CTL_FILE_DEVNULL,
			       &st, why, sizeof(why));

	if (fd < 0) {
		fprintf(stderr, "regionctl: %s: %s\n", name, why);
		goto fail;
	}
	if (S_ISREG(st.st_mode) && (unsigned long long)st.st_size > PREFIX_FILE_MAX) {
		prefix_file_too_large(name, 0);
		nothing_sent(c);
		*rc = (int)ctl_exit_code(FWD_R_INVALID_DELTA);
		goto fail;
	}
	if (fd == 0)
		return stdin;
	if ((f = fdopen(fd, "r")) == NULL) {
		fprintf(stderr, "regionctl: %s: %s\n", file, strerror(errno));
		goto fail;
	}
	return f;
fail:
	if (*rc == 0)
		*rc = EXIT_USAGE;
	if (fd > 0)
		close(fd);
	return NULL;
}

/*
 * 'prefixes add|remove REGION FILE|-': the prefixes of a file, one a line
 * ('#' comments and blank lines allowed), as one POST /v1/prefixes batch.
 * Every line is checked here first, with the same parser regiond uses
 * (fwd_delta_add_text), so a typo is refused with its line number before
 * anything is sent; regiond checks the batch again against its table.
 * What the file holds is the input's fault, refused as regiond refuses a
 * bad batch (exit 1): a bad line, a NUL byte, a line longer than
 * PREFIX_LINE_MAX, more than PREFIX_FILE_MAX bytes, no prefix at all. A
 * file that cannot be opened or read, or is not a file or a pipe, is the
 * command line's (exit 2).
 */
static json_t *prefix_lines(const struct ctl_call *c, const char *file, int *rc)
{
	const char *name = strcmp(file, "-") ? file : "stdin";
	FILE *f;
	struct fwd_delta one = {0};
	struct fwd_err e;
	json_t *list;
	char *line;
	size_t total = 0, cap = 0;
	unsigned n = 0, *lines = NULL;
	ssize_t got;

	*rc = 0;
	if ((f = prefix_file(c, file, rc)) == NULL)
		return NULL;
	list = json_array();
	line = malloc(PREFIX_LINE_MAX + 1);
	if (list == NULL || line == NULL) {
		fprintf(stderr, "regionctl: out of memory\n");
		*rc = EXIT_USAGE;
		goto out;
	}
	while ((got = prefix_line(f, line, &total)) >= 0) {
		char *p = line, *end;

		n++;
		if (memchr(line, '\0', (size_t)got) != NULL) {
			/* Text cut short at a NUL would be a different prefix
			 * than the line holds, or none. */
			fprintf(stderr, "regionctl: %s:%u: a NUL byte in the line\n", name, n);
			json_refusal(FWD_R_INVALID_DELTA, name, n, "", "a NUL byte in the line");
			nothing_sent(c);
			*rc = (int)ctl_exit_code(FWD_R_INVALID_DELTA);
			break;
		}
		/* A UTF-8 byte order mark opening the file (an editor's), as
		 * table documents take it: it read as part of the first prefix,
		 * shown invisibly ("'10.0.0.0' is not a valid IPv4 address"). */
		if (n == 1 && got >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
			p += 3;
		p[strcspn(p, "#")] = '\0';
		p += strspn(p, " \t\r\n");
		end = p + strlen(p);
		while (end > p && strchr(" \t\r\n", end[-1]))
			*--end = '\0';
		if (*p == '\0')
			continue;
		/* Bytes that are not text: the parser's words show them as '?',
		 * the line itself (escaped by stderr's stream) as \xNN. */
		if (fwd_utf8_valid_len(p, strlen(p)) != strlen(p)) {
			fprintf(stderr, "regionctl: %s:%u: not a prefix (not UTF-8 text): %s\n",
				name, n, p);
			json_refusal(FWD_R_INVALID_DELTA, name, n, "",
				     "not a prefix (not UTF-8 text)");
			nothing_sent(c);
			*rc = (int)ctl_exit_code(FWD_R_INVALID_DELTA);
			break;
		}
		one.n = 0; /* the op is only checked, not kept */
		if (fwd_delta_add_text(&one, FWD_DELTA_ADD, 1, p, "", &e)) {
			fprintf(stderr, "regionctl: %s:%u: %s%s%s\n", name, n, e.reason,
				strstr(e.reason, p) ? "" : ": ", strstr(e.reason, p) ? "" : p);
			json_refusal(FWD_R_INVALID_DELTA, name, n, "", e.reason);
			nothing_sent(c);
			*rc = (int)ctl_exit_code(FWD_R_INVALID_DELTA);
			break;
		}
		if (json_array_size(list) == cap) {
			unsigned *more =
				realloc(lines, sizeof(*lines) * (cap = cap ? 2 * cap : 256));

			if (more == NULL) {
				fprintf(stderr, "regionctl: out of memory\n");
				*rc = EXIT_USAGE;
				break;
			}
			lines = more;
		}
		lines[json_array_size(list)] = n;
		json_array_append_new(list, json_string(p));
	}
	if (*rc) {
		/* said above */
	} else if (got == -2 || got == -3) {
		if (got == -2)
			fprintf(stderr, "regionctl: %s:%u: a line longer than %d bytes\n", name,
				n + 1, PREFIX_LINE_MAX);
		else
			prefix_file_too_large(name, n + 1);
		nothing_sent(c);
		*rc = (int)ctl_exit_code(FWD_R_INVALID_DELTA);
	} else if (got == -4) {
		fprintf(stderr, "regionctl: %s:%u: cannot read: %s\n", name, n + 1,
			strerror(errno));
		*rc = EXIT_USAGE;
	}
	if (*rc == 0 && json_array_size(list) == 0) {
		/* empty, or only comments and blank lines: a batch of nothing */
		fprintf(stderr, "regionctl: no prefixes in %s: nothing to %s\n", name,
			cmd_of(c)->name);
		nothing_sent(c);
		*rc = (int)ctl_exit_code(FWD_R_INVALID_DELTA);
	}
out:
	if (f != stdin)
		fclose(f);
	free(line);
	fwd_delta_clear(&one);
	if (*rc) {
		free(lines);
		json_decref(list);
		return NULL;
	}
	/* kept until regionctl exits: read by show_error() */
	sent_prefix_file = name;
	sent_prefix_lines = lines;
	sent_prefix_n = json_array_size(list);
	return list;
}

static void print_prefixes(json_t *r, const char *what)
{
	if (json_is_true(json_object_get(r, "noop")))
		printf("%s: no change, generation %lld already has these prefixes (%lld already "
		       "held)\n",
		       what, ji(r, "generation"), ji(r, "unchanged"));
	else
		printf("%s: generation %lld (%s) is running: %lld added, %lld removed, %lld "
		       "already "
		       "held\n",
		       what, ji(r, "generation"), js(r, "hash"), ji(r, "added"), ji(r, "removed"),
		       ji(r, "unchanged"));
	print_taken_back(r, what, ji(r, "generation"));
	print_handovers(r);
	print_unsaved(r, ji(r, "generation"));
}

static int cmd_prefixes_change(const struct opts *o, const struct ctl_call *c)
{
	const char *sub = cmd_of(c)->name, *region = c->pos[0],
		   *expected = opt_val(c, "--expected-generation");
	char what[96], shown[256];
	long long gen = -1;
	unsigned long long v;
	json_t *list, *b;
	int rc;

	if (fwd_name_check(region))
		return usage_error(c, "'%s' is not a region name (1..%d of A-Z a-z 0-9 _ - .)",
				   fwd_name_shown(region, shown, sizeof(shown)), FWD_NAME_MAX - 1);
	if (expected) {
		if (whole_number(expected, 0, LLONG_MAX, &v))
			return usage_error(
				c, "--expected-generation takes a generation >= 0, not '%s'",
				expected);
		gen = (long long)v;
	}
	if ((list = prefix_lines(c, c->pos[1], &rc)) == NULL)
		return rc;
	b = json_pack("{s:[{s:s, s:o}]}", "changes", "region", region, sub, list);
	if (gen >= 0)
		json_object_set_new(b, "expected_generation", json_integer(gen));
	if (getenv("USER"))
		json_object_set_new(b, "author", json_string(getenv("USER")));
	opts_into_body(c, b); /* --author, --comment */
	snprintf(what, sizeof(what), "prefixes %s %s", sub, region);
	return show(o, "POST", "/v1/prefixes", b, print_prefixes, what);
}

/* 'prefixes list REGION': the region's prefixes in the running table, one
 * a line (GET /v1/table's model); -j the region's model. */
static int cmd_prefixes_list(const struct opts *o, const struct ctl_call *c)
{
	json_t *r, *reg, *v;
	char shown[256];
	size_t i;
	int rc;

	/* as add and remove: a usage error, not "no region ''" (exit 1) */
	if (fwd_name_check(c->pos[0]))
		return usage_error(c, "'%s' is not a region name (1..%d of A-Z a-z 0-9 _ - .)",
				   fwd_name_shown(c->pos[0], shown, sizeof(shown)),
				   FWD_NAME_MAX - 1);
	if ((rc = call(o, "GET", "/v1/table", NULL, &r)))
		return rc;
	reg = json_object_get(json_object_get(json_object_get(r, "model"), "regions"), c->pos[0]);
	if (reg == NULL) {
		char why[128], at[80];

		snprintf(why, sizeof(why), "no region '%s' in the running table", c->pos[0]);
		snprintf(at, sizeof(at), "regions.%s", c->pos[0]);
		fprintf(stderr, "regionctl: %s\n", why);
		json_refusal(FWD_R_INVALID, NULL, 0, at, why);
		json_decref(r);
		return EXIT_REFUSED;
	}
	if (o->json)
		print_json(reg);
	else
		json_array_foreach(json_object_get(reg, FWD_KEY_NAME(REGION, PREFIXES)), i, v)
			puts(jsv(v));
	json_decref(r);
	return 0;
}

/* @s and spaces to @width terminal columns: an author is free UTF-8
 * ("José", "山田"), which printf's %-12s pads by bytes, pushing the
 * comment column off by a character's extra bytes or its double width.
 * Widths from C.UTF-8 whatever the environment's locale (regionctl sets
 * none); a byte that is not UTF-8 counts one column. */
static void put_col(const char *s, int width)
{
	static locale_t utf8;
	locale_t old = (locale_t)0;
	mbstate_t st;
	int cols = 0;

	if (utf8 == (locale_t)0)
		utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (utf8 != (locale_t)0)
		old = uselocale(utf8);
	memset(&st, 0, sizeof(st));
	for (const char *p = s; *p;) {
		wchar_t wc;
		size_t n = utf8 != (locale_t)0 ? mbrtowc(&wc, p, strlen(p), &st) : (size_t)-1;
		int w;

		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			memset(&st, 0, sizeof(st));
			n = 1, w = 1;
		} else {
			w = wcwidth(wc);
			w = w < 0 ? 1 : w;
		}
		p += n, cols += w;
	}
	if (old != (locale_t)0)
		uselocale(old);
	printf("%s%*s", s, cols < width ? width - cols : 0, "");
}

static void print_history(json_t *r, const char *unused)
{
	json_t *v;
	size_t i;

	(void)unused;
	printf("%6s  %-20s  %-16s  %-12s  %s\n", "GEN", "TIME", "HASH", "AUTHOR", "COMMENT");
	json_array_foreach(json_object_get(r, "history"), i, v) {
		char t[32];

		when(ji(v, "time"), t, sizeof(t));
		printf("%6lld  %-20s  %-16s  ", ji(v, "id"), t, js(v, "hash"));
		put_col(js(v, "author"), 12);
		printf("  %s", js(v, "comment"));
		/* a prefix batch's generation: what -j says of it (a probe) */
		if (!strcmp(js(v, "kind"), "delta"))
			printf("  (prefixes on %lld: +%lld -%lld)", ji(v, "parent"), ji(v, "added"),
			       ji(v, "removed"));
		/* a batch retention wrote whole (its table as a document): it
		 * lost its "prefixes on" mark without a word (a probe) */
		else if (json_is_true(json_object_get(v, "checkpoint")))
			printf("  (prefixes: a batch kept whole since)");
		if (json_string_length(json_object_get(v, "by")))
			printf("  [by %s]", js(v, "by"));
		putchar('\n');
	}
}

static int cmd_history(const struct opts *o, const struct ctl_call *c)
{
	(void)c;
	return show(o, "GET", "/v1/history", NULL, print_history, NULL);
}

static int cmd_filter_detach(const struct opts *o, const struct ctl_call *c)
{
	(void)c;
	return show(o, "POST", "/v1/filters/detach", json_object(), print_detached, NULL);
}

static int cmd_filter_status(const struct opts *o, const struct ctl_call *c)
{
	json_t *r, *v;
	const char *k;
	size_t i;
	int rc;

	(void)c;
	if ((rc = call(o, "GET", "/v1/filters", NULL, &r)))
		return rc;
	if (o->json) {
		print_json(r);
		json_decref(r);
		return 0;
	}
	/* adopted: from the fast path's AF_XDP port (owner net_af_xdp), at
	 * every start; or from the pins a regiond before this one left */
	printf("program %lld, generation %lld%s\n", ji(r, "program_id"), ji(r, "generation"),
	       !json_is_true(json_object_get(r, "adopted")) ? ""
	       : strcmp(js(r, "owner"), "net_af_xdp") == 0
		       ? " (adopted from the fast path's AF_XDP port)"
		       : " (adopted after a restart)");
	printf("%-16s %-10s %10s  %s\n", "INTERFACE", "MODE", "PROGRAM", "ATTACHED AS");
	json_array_foreach(json_object_get(r, "interfaces"), i, v)
		printf("%-16s %-10s %10lld  %s%s%s\n", js(v, "interface"), js(v, "mode"),
		       ji(v, "program_id"), js(v, "attached_as"),
		       json_is_true(json_object_get(v, "ours")) ? ""
		       : ji(v, "program_id")			? "  (NOT OURS)"
		       : json_is_true(json_object_get(r, "detached"))
			       ? "  (detached by regionctl filter detach)"
			       : "  (NOT ATTACHED)",
		       json_is_false(json_object_get(v, "claimed"))
			       ? "  (NOT CLAIMED: another process holds its claim)"
			       : "");
	printf("\n%-24s %-6s %14s %16s\n", "RULE", "ACTION", "PACKETS", "BYTES");
	json_object_foreach(json_object_get(r, "rules"), k, v)
		printf("%-24s %-6s %14lld %16lld\n", k, js(v, "action"), ji(v, "packets"),
		       ji(v, "bytes"));
	printf("\n%-24s %14s\n", "VERDICT", "PACKETS");
	json_object_foreach(json_object_get(r, "counters"), k, v)
		printf("%-24s %14lld\n", k, (long long)json_integer_value(v));
	json_decref(r);
	return 0;
}

/* Set once a command said that stdout cannot be written, so that the
 * check at its end (stdout_checked) does not say it again. */
static int stdout_said;

/* ---- capture ---------------------------------------------------------- */

/* A capture's pcapng on its way to a file, stdout or the terminal. Only
 * whole blocks are ever written, so a capture cut short (Ctrl-C, a lost
 * connection) leaves a file that ends at its last whole block. */
struct cap_sink {
	int fd; /* where the pcapng goes; -1: a line (or JSON object) per packet */
	int json;
	struct ctl_buf pend; /* received bytes not yet a whole block */
	uint64_t packets, bytes;
	char stats[4][320]; /* the statistics blocks' comments: what was lost, why it ended */
	int nstats;
	char why[256]; /* set when the stream is not pcapng or cannot be written */
	int out_errno; /* why a write of the pcapng or of a packet's line failed */
	int out_blocked; /* stdout was blocked (a full pipe) when a signal came */
	off_t base; /* a regular file's offset where the capture begins; -1: not one */
};

/* Where a capture written to @fd begins, for cutting a failed write back
 * to whole blocks: a regular file's offset (its end when appended to), -1
 * for anything that cannot be cut (a pipe, a device). */
static off_t output_base(int fd)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || fl < 0)
		return -1;
	return fl & O_APPEND ? st.st_size : lseek(fd, 0, SEEK_CUR);
}

/* Ctrl-C ends a capture early. Once the stream has begun (its Capture-Id
 * known), the first one asks regiond to stop it (POST /v1/capture/stop,
 * from the read loop: cap_stop_asked interrupts the receive), so the
 * stream ends with its statistics, what was lost included, as tcpdump's
 * does; it once ended without them. A second one, SIGTERM, or a regiond
 * that does not end the stream within CAP_STOP_WAIT_MS shuts the
 * connection down (regiond then stops the capture), what arrived whole
 * kept. */
#define CAP_STOP_WAIT_MS 10000
#define CAP_TICK_MS 500
static volatile sig_atomic_t cap_interrupted, cap_stop_asked, cap_can_stop;
/* Any of them came: a write blocked on stdout goes on while its reader
 * takes bytes, for at most CAP_STOP_WAIT_MS without one (write_all and
 * fwd_stdout_interruptible); cap_interrupted ends it at once. It once
 * ignored Ctrl-C and SIGTERM alike with a pipe nobody read, then ended at
 * the first Ctrl-C with a reader still reading (the statistics lost). */
static volatile sig_atomic_t cap_signalled;
static volatile int cap_sock = -1;
static unsigned long long cap_id;

static void cap_on_signal(int sig)
{
	cap_signalled = 1;
	if (sig == SIGINT && cap_can_stop && !cap_stop_asked) {
		cap_stop_asked = 1;
		return;
	}
	cap_interrupted = 1;
	if (cap_sock >= 0)
		shutdown(cap_sock, SHUT_RDWR);
}

/* The stream's Capture-Id (regiond's answer head @head, to @end): 0 without. */
static unsigned long long capture_id_of(const char *head, const char *end)
{
	for (const char *p = strstr(head, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n"))
		if (strncasecmp(p + 2, "Capture-Id:", 11) == 0) {
			const char *v = p + 13 + strspn(p + 13, " \t");
			size_t n = strcspn(v, " \t\r\n");
			unsigned long long id;
			char num[24];

			if (n == 0 || n >= sizeof(num))
				return 0;
			memcpy(num, v, n);
			num[n] = '\0';
			return whole_number(num, 1, UINT64_MAX, &id) ? 0 : id;
		}
	return 0;
}

/* Ask regiond to end capture cap_id (its statistics then close the
 * stream). Whatever the answer, the stream is read on (bounded by a
 * silence of CAP_STOP_WAIT_MS): a 404 most often means the capture ended
 * meanwhile, its last bytes and statistics unread in the socket. */
static void capture_stop(const struct opts *unbounded)
{
	struct opts so = *unbounded;
	char why[256];
	json_t *b = json_pack("{s:I}", "capture", (json_int_t)cap_id), *out = NULL;
	const char *reason;
	int status;

	so.timeout_ms = 5000;
	so.json_errors = JERR_NONE;
	status = http(&so, "POST", "/v1/capture/stop", b, &out, why, sizeof(why));
	json_decref(b);
	reason = json_string_value(json_object_get(json_object_get(out, "error"), "reason"));
	if (status != 200 && status != 404)
		fprintf(stderr,
			"regionctl: could not ask regiond to stop the capture (%s): reading what "
			"comes for %d s more\n",
			status > 0 ? (reason ? reason : "refused") : "no answer",
			CAP_STOP_WAIT_MS / 1000);
	json_decref(out);
}

/* The stream's options, for a stop asked outside its read loop. */
static const struct opts *cap_opts;
static int cap_stop_sent;
static double cap_stop_by; /* when it was: the wait for the end runs from there */

/* After the first Ctrl-C, ask regiond once to stop the capture: from the
 * read loop, or from a write to stdout that blocked when the Ctrl-C came
 * (fwd_stdout_interruptible()'s hook), so that the end is on its way while
 * a slow reader takes what is left; asked only once that write was done,
 * it came after regiond had given up on the reader. */
static void cap_send_stop(void)
{
	if (cap_stop_sent || !cap_stop_asked || cap_interrupted || cap_opts == NULL)
		return;
	cap_stop_sent = 1;
	capture_stop(cap_opts);
	cap_stop_by = ctl_top_mono_s();
}

/* A packet comment "SOURCE FATE key=value ..." as JSON. */
static json_t *verdict_json(const char *comment)
{
	json_t *v = json_object();
	char buf[512], *save = NULL, *w;
	int i = 0;

	snprintf(buf, sizeof(buf), "%s", comment);
	for (w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save), i++) {
		char *eq = strchr(w, '=');

		unsigned long long id;

		if (eq) {
			*eq = '\0';
			/* A generation id is an integer in every other answer
			 * (explain, status, history): a string "2" here once made
			 * a script compare 2 with "2". A gen= that is no number
			 * (no comment regionfwd or regiond writes) stays text. */
			if (!strcmp(w, "gen") && !whole_number(eq + 1, 0, INT64_MAX, &id))
				json_object_set_new(v, w, json_integer((json_int_t)id));
			else
				json_object_set_new(v, w, json_string(eq + 1));
		} else {
			json_object_set_new(v,
					    i == 0   ? "source"
					    : i == 1 ? "fate"
						     : w,
					    i < 2 ? json_string(w) : json_true());
		}
	}
	return v;
}

/* The addresses and protocol of a frame the parser refused (a bad total
 * length, checksum or header length) when its IP header is there at all:
 * after Ethernet and up to two VLAN tags, an IPv4 header's 20 bytes or an
 * IPv6 header's 40. It was printed "(not IP)", which it is not.
 * @return the family (4, 6), or 0 with nothing filled. */
static int header_guess(const uint8_t *d, size_t len, char *src, char *dst, size_t n,
			uint8_t *proto, int *sport, int *dport)
{
	size_t off = 12, l4 = 0;
	uint16_t type;
	int fam = 0;

	*sport = *dport = -1;
	for (int tags = 0;; tags++) {
		if (off + 2 > len)
			return 0;
		type = (uint16_t)(d[off] << 8 | d[off + 1]);
		if ((type != FWD_ETH_P_8021Q && type != FWD_ETH_P_8021AD &&
		     type != FWD_ETH_P_QINQ_OLD) ||
		    tags == 2)
			break;
		off += 4;
	}
	off += 2;
	if (type == FWD_ETH_P_IPV4 && off + 20 <= len && d[off] >> 4 == 4) {
		inet_ntop(AF_INET, d + off + 12, src, (socklen_t)n);
		inet_ntop(AF_INET, d + off + 16, dst, (socklen_t)n);
		*proto = d[off + 9];
		/* A header length under 20 bytes puts "the ports" inside the
		 * addresses (they were printed so), and a later fragment has
		 * no L4 header: no ports then. */
		if ((d[off] & 0xf) >= 5 && ((d[off + 6] & 0x1f) | d[off + 7]) == 0)
			l4 = off + (size_t)(d[off] & 0xf) * 4;
		fam = 4;
	} else if (type == FWD_ETH_P_IPV6 && off + 40 <= len && d[off] >> 4 == 6) {
		inet_ntop(AF_INET6, d + off + 8, src, (socklen_t)n);
		inet_ntop(AF_INET6, d + off + 24, dst, (socklen_t)n);
		*proto = d[off + 6];
		l4 = off + 40;
		fam = 6;
		/* The extension headers as the parser walks them, for a packet
		 * it dropped for an address (a probe saw "0 fe80::1 > ..." for
		 * UDP behind a hop-by-hop header): the protocol after them, no
		 * ports behind a later fragment or past the record. */
		for (int i = 0; l4 && fwd_ipv6_is_ext(*proto) && i < FWD_MAX_IPV6_EXT; i++) {
			size_t hl;

			if (l4 + 8 > len) {
				l4 = 0;
				break;
			}
			hl = *proto == 44   ? 8
			     : *proto == 51 ? ((size_t)d[l4 + 1] + 2) * 4
					    : ((size_t)d[l4 + 1] + 1) * 8;
			if (*proto == 44 && (d[l4 + 2] << 8 | (d[l4 + 3] & 0xf8)) != 0) {
				*proto = d[l4];
				l4 = 0; /* a later fragment: no L4 header */
				break;
			}
			*proto = d[l4];
			l4 += hl;
		}
		if (fwd_ipv6_is_ext(*proto))
			l4 = 0;
	}
	/* The ports of TCP, UDP and SCTP when they are there (a frame cut
	 * short, as the XDP filter's 256-byte records are, keeps them). */
	if (fam && l4 &&
	    (*proto == FWD_PROTO_TCP || *proto == FWD_PROTO_UDP || *proto == FWD_PROTO_SCTP) &&
	    l4 + 4 <= len) {
		*sport = d[l4] << 8 | d[l4 + 1];
		*dport = d[l4 + 2] << 8 | d[l4 + 3];
	}
	return fam;
}

/* A packet's line (or JSON object) on stdout; 0, or the errno of a write
 * that failed (a full disk, a reader gone). */
static int print_packet(const struct cap_sink *k, const struct ctl_pcapng_block *b)
{
	struct ctl_pcapng_epb_info e;
	struct fwd_pkt p;
	char comment[512], src[INET6_ADDRSTRLEN] = "-", dst[INET6_ADDRSTRLEN] = "-", when[40],
			   proto[16];
	time_t sec;
	struct tm tm;
	uint8_t guessed_proto = 0;
	int ok, rc, ports, fam = 0, gsport = -1, gdport = -1;
	char what[32] = "", note[36] = "";

	if (ctl_pcapng_epb_info(b, &e))
		return 0;
	ctl_pcapng_comment(b, comment, sizeof(comment));
	rc = fwd_parse(e.data, e.data + e.caplen, &p);
	ok = rc == FWD_OK;
	/* Ports only where the header says them: TCP, UDP or SCTP, not a
	 * later fragment (its 0s once read as ports 0 > 0, a probe). */
	ports = ok && p.frag != FWD_FRAG_LATER &&
		(p.proto == FWD_PROTO_TCP || p.proto == FWD_PROTO_UDP || p.proto == FWD_PROTO_SCTP);
	if (ok) {
		fam = p.family;
		inet_ntop(p.family == 4 ? AF_INET : AF_INET6, p.src, src, sizeof(src));
		inet_ntop(p.family == 4 ? AF_INET : AF_INET6, p.dst, dst, sizeof(dst));
		fwd_proto_name(p.proto, proto, sizeof(proto));
	} else if ((fam = header_guess(e.data, e.caplen, src, dst, sizeof(src), &guessed_proto,
				       &gsport, &gdport))) {
		fwd_proto_name(guessed_proto, proto, sizeof(proto));
		/* Cut short by its record (the XDP filter's keep 256 bytes),
		 * not by the sender: its lengths cannot be checked. */
		if (e.caplen < e.origlen)
			snprintf(what, sizeof(what), "snapped at %u", e.caplen);
		/* Dropped for an address it carries, before the parser looked
		 * at its form any further: not called malformed. */
		else if (rc != FWD_ERR(DST_MARTIAN) && rc != FWD_ERR(SRC_MARTIAN) &&
			 rc != FWD_ERR(IPV6_MAPPED_SRC))
			snprintf(what, sizeof(what), "malformed IPv%d", fam);
	}
	sec = (time_t)(e.ts / 1000000000u);
	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	if (what[0])
		snprintf(note, sizeof(note), " (%s)", what);
	if (k->json) {
		json_t *j = json_pack("{s:I, s:i, s:i, s:s, s:o}", "time_ns", (json_int_t)e.ts,
				      "len", (int)e.origlen, "caplen", (int)e.caplen, "comment",
				      comment, "verdict", verdict_json(comment));

		if (ports)
			json_object_update_new(j, json_pack("{s:s, s:s, s:s, s:i, s:i}", "src", src,
							    "dst", dst, "proto", proto, "sport",
							    p.sport, "dport", p.dport));
		else if (fam) /* the header's addresses, and its ports when there */
			json_object_update_new(j, json_pack("{s:s, s:s, s:s}", "src", src, "dst",
							    dst, "proto", proto));
		if (!ok && fam && gsport >= 0)
			json_object_update_new(
				j, json_pack("{s:i, s:i}", "sport", gsport, "dport", gdport));
		json_dumpf(j, stdout, JSON_COMPACT | JSON_SORT_KEYS | JSON_REALS);
		putchar('\n');
		json_decref(j);
	} else if (ok && !ports) {
		printf("%s.%09llu %s %s > %s len %u  %s\n", when,
		       (unsigned long long)(e.ts % 1000000000u), proto, src, dst, e.origlen,
		       comment);
	} else if (ok) {
		/* An IPv6 address in brackets before its port ([2001:db8::1]:443):
		 * "2001:db8::1:443" reads as another address. */
		printf(fam == 6 ? "%s.%09llu %s [%s]:%u > [%s]:%u len %u  %s\n"
				: "%s.%09llu %s %s:%u > %s:%u len %u  %s\n",
		       when, (unsigned long long)(e.ts % 1000000000u), proto, src, p.sport, dst,
		       p.dport, e.origlen, comment);
	} else if (fam && gsport >= 0) {
		printf(fam == 6 ? "%s.%09llu %s [%s]:%d > [%s]:%d%s len %u  %s\n"
				: "%s.%09llu %s %s:%d > %s:%d%s len %u  %s\n",
		       when, (unsigned long long)(e.ts % 1000000000u), proto, src, gsport, dst,
		       gdport, note, e.origlen, comment);
	} else if (fam) {
		printf("%s.%09llu %s %s > %s%s len %u  %s\n", when,
		       (unsigned long long)(e.ts % 1000000000u), proto, src, dst, note, e.origlen,
		       comment);
	} else {
		printf("%s.%09llu (not IP) len %u  %s\n", when,
		       (unsigned long long)(e.ts % 1000000000u), e.origlen, comment);
	}
	errno = 0;
	if (fflush(stdout) == EOF || ferror(stdout))
		return fwd_stdout_errno() ? fwd_stdout_errno() : errno ? errno : EIO;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	return fwd_write_guarded(fd, p, n) == n ? 0 : -1;
}

/* A write to stdout given up on purpose (fwd_stdout_interruptible()): a
 * second signal, or nothing taken for CAP_STOP_WAIT_MS after the first. */
static int output_given_up(void)
{
	int why = fwd_write_gave_up();

	if (why == ETIMEDOUT)
		fprintf(stderr,
			"regionctl: stdout took nothing for %d s after the Ctrl-C: ending the "
			"capture without the rest\n",
			CAP_STOP_WAIT_MS / 1000);
	return why != 0;
}

/* Received bytes: every block they complete is written (or printed). */
static int sink_feed(struct cap_sink *k, const uint8_t *p, size_t n)
{
	struct ctl_pcapng_block b;
	size_t off = 0;
	int rc;

	if (ctl_buf_put(&k->pend, p, n))
		return -1;
	while ((rc = ctl_pcapng_block(k->pend.data + off, k->pend.len - off, &b)) == 1) {
		if (k->fd >= 0 && write_all(k->fd, b.p, b.len)) {
			int err = errno;

			if (output_given_up()) {
				cap_interrupted = 1;
				k->out_blocked = k->fd == STDOUT_FILENO;
				return -1;
			}
			k->out_errno = err;

			/* Only whole blocks stay, so the file still reads (a full
			 * disk cut one mid-packet, found by a hostile probe); a
			 * pipe or a device cannot be cut back. */
			if (k->base >= 0 && ftruncate(k->fd, k->base + (off_t)k->bytes) == 0)
				snprintf(k->why, sizeof(k->why),
					 "cannot write the capture: %s; the file keeps the %llu "
					 "whole packets before it",
					 strerror(err), (unsigned long long)k->packets);
			else
				snprintf(k->why, sizeof(k->why), "cannot write the capture: %s",
					 strerror(err));
			return -1;
		}
		if (b.type == CTL_PCAPNG_EPB) {
			k->packets++;
			/* Its reader gone or its disk full, a capture printed
			 * into nothing for ever, holding the one capture slot. */
			if (k->fd < 0 && (k->out_errno = print_packet(k, &b)) != 0) {
				k->packets--; /* not printed */
				if (output_given_up()) {
					k->out_errno = 0; /* given up on purpose */
					k->out_blocked = 1;
					cap_interrupted = 1;
					return -1;
				}
				snprintf(k->why, sizeof(k->why), "cannot write to stdout: %s",
					 strerror(k->out_errno));
				stdout_said = 1;
				return -1;
			}
		} else if (b.type == CTL_PCAPNG_ISB && k->nstats < 4) {
			ctl_pcapng_comment(&b, k->stats[k->nstats], sizeof(k->stats[0]));
			k->nstats += k->stats[k->nstats][0] != '\0';
		}
		k->bytes += b.len;
		off += b.len;
	}
	if (rc < 0) {
		snprintf(k->why, sizeof(k->why), "regiond sent something that is not pcapng");
		return -1;
	}
	memmove(k->pend.data, k->pend.data + off, k->pend.len - off);
	k->pend.len -= off;
	return 0;
}

/* The capture's data, out of the shared chunked decoder, into its sink. */
static int sink_put(void *arg, const uint8_t *d, size_t len)
{
	return sink_feed(arg, d, len);
}

/* Feed @n raw bytes of a chunked stream; decoded data goes to the sink.
 * -1: not chunked framing (said as such: it once read as "the capture
 * was cut short: regiond or regionfwd stopped it"), or the sink failed. */
static int stream_chunks(struct chunked *ch, struct cap_sink *k, const uint8_t *p, size_t n)
{
	ssize_t t = chunked_feed(ch, p, n, sink_put, k);

	if (t == -1 && !k->why[0])
		snprintf(k->why, sizeof(k->why),
			 "regiond sent something that is not HTTP chunked framing (%s)", ch->why);
	return t < 0 ? -1 : 0;
}

/* POST @path with @body and stream the pcapng answer into @k. @return 0
 * (whole, or cut short by Ctrl-C: cap_interrupted), or an exit code with
 * the reason said. *@started: regiond accepted and the stream began. */
/* Whether an error answer's body, from @body_at in @head, is whole: its
 * Content-Length @clen come, or its last chunk. */
static int error_body_whole(const struct ctl_buf *head, size_t body_at, long long clen, int chunked)
{
	size_t dlen;

	char why[160];

	if (chunked)
		return dechunk((char *)head->data + body_at, head->len - body_at,
			       (unsigned long long)ANSWER_MAX_MIB << 20, &dlen, 0, why,
			       sizeof(why)) == 0;
	return clen >= 0 && head->len - body_at >= (size_t)clen;
}

static int http_stream(const struct opts *unbounded, const char *path, json_t *body,
		       struct cap_sink *k, int *started)
{
	/* Starting a capture changes nothing, and regiond answers it once
	 * regionfwd has (10 s at most): the head waits as a read does. */
	struct opts bo = bounded(unbounded, "GET", path), *o = &bo;
	/* Then the stream: packets may be rare, so no bound on the whole of
	 * it, only on a silence. --timeout is one; with --duration, regiond
	 * ends the stream by then, so a silence past it and a read's bound is
	 * a hung regiond; else none (Ctrl-C or --count ends it). */
	json_int_t duration = json_integer_value(json_object_get(body, "duration_s"));
	int silence_ms = unbounded->timeout_ms ? unbounded->timeout_ms
			 : duration > 0	       ? (int)duration * 1000 + READ_TIMEOUT_MS
					       : 0;
	char why[512], *req = NULL, *b = json_dumps(body, JSON_COMPACT), *sep;
	struct ctl_conn *c = conn_open(o, why, sizeof(why));
	struct ctl_buf head = {0};
	/* A chunk is at most an answer: regiond's are some KiB, and a proxy
	 * re-chunks; the same bound as http()'s, so both decoders agree. */
	struct chunked ch = {.max = (unsigned long long)ANSWER_MAX_MIB << 20,
			     .max_what = "the 64 MiB of any answer"};
	size_t qlen, body_at = 0, interim = 0;
	long long clen = -1;
	int status = 0, chunked = 0, rc = EXIT_UNREACHABLE, stop_unanswered = 0;
	double t0, last_rx = 0;
	FILE *f;

	*started = 0;
	if (c == NULL) {
		fprintf(stderr, "regionctl: cannot reach regiond at %s: %s\n",
			o->url ? o->url : o->sock, why);
		free(b);
		return EXIT_UNREACHABLE;
	}
	f = open_memstream(&req, &qlen);
	request_head(f, o, "POST", path, b);
	fclose(f);
	free(b);
	errno = 0;
	if (ctl_conn_send(c, req, qlen)) {
		fprintf(stderr, "regionctl: cannot reach regiond: %s\n",
			errno == EAGAIN || errno == EWOULDBLOCK
				? wait_failed(o, errno, why, sizeof(why))
				: ctl_conn_error(c));
		goto out;
	}
	cap_sock = ctl_conn_fd(c);
	/* The head, then the body: JSON with an error status, else pcapng.
	 * The head whole within the bound, and at most HEAD_MAX; an error's
	 * body at most an answer's: a server that trickles or never ends
	 * them once held the command for ever, or took all memory. */
	t0 = ctl_top_mono_s();
	for (;;) {
		uint8_t buf[65536];
		ssize_t r;

		if (status == 0 || status != 200) {
			double left = t0 + o->wait_ms / 1000.0 - ctl_top_mono_s();

			if (left <= 0 || head.len > (status ? ANSWER_MAX_MIB << 20 : HEAD_MAX)) {
				fprintf(stderr,
					"regionctl: cannot reach regiond at %s: no whole answer "
					"within %d s (%zu bytes came)\n",
					o->url ? o->url : o->sock, o->wait_ms / 1000,
					head.len + interim);
				goto out;
			}
			silence_bound(ctl_conn_fd(c), (int)(left * 1000) + 1);
		}
		if (*started && cap_stop_asked && !cap_interrupted) {
			/* Ctrl-C: ask for the end (here, or already from a write
			 * that blocked), then wait for it, bounded. */
			ctl_conn_interruptible(c, NULL);
			cap_send_stop();
		}
		errno = 0;
		r = ctl_conn_recv(c, buf, sizeof(buf));
		if (r < 0 && errno == EINTR && !cap_interrupted)
			continue; /* the Ctrl-C above */
		if (r > 0)
			last_rx = ctl_top_mono_s();
		/* Once it streams, receives wait a tick (CAP_TICK_MS) at most,
		 * so that a Ctrl-C that came between two of them is seen; the
		 * silence is counted here. */
		if (r < 0 && *started && !cap_interrupted &&
		    (errno == EAGAIN || errno == EWOULDBLOCK)) {
			double now = ctl_top_mono_s();

			if (cap_stop_sent &&
			    now - (last_rx > cap_stop_by ? last_rx : cap_stop_by) >=
				    CAP_STOP_WAIT_MS / 1000.0) {
				fprintf(stderr,
					"regionctl: nothing from regiond for %d s after the stop: "
					"closing the "
					"connection, without the statistics\n",
					CAP_STOP_WAIT_MS / 1000);
				cap_interrupted = 1;
				stop_unanswered = 1; /* a hung regiond: exit 3 */
				break;
			}
			if (cap_stop_sent || !silence_ms || now - last_rx < silence_ms / 1000.0)
				continue;
		}
		if (r < 0 && !cap_interrupted && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (*started)
				fprintf(stderr,
					"regionctl: the capture stopped: nothing from regiond "
					"within %d s%s\n",
					o->wait_ms / 1000,
					unbounded->timeout_ms
						? " (no packet matched, or regiond hangs: regiond "
						  "sends nothing while nothing matches, so a quiet "
						  "filter wants --duration, not --timeout)"
						: " (past --duration: regiond hangs)");
			else
				fprintf(stderr, "regionctl: cannot reach regiond at %s: %s\n",
					o->url ? o->url : o->sock,
					wait_failed(o, errno, why, sizeof(why)));
			goto out;
		}
		if (r < 0 && !cap_interrupted) {
			fprintf(stderr, "regionctl: %s\n", ctl_conn_error(c));
			goto out;
		}
		if (r <= 0)
			break;
		if (status == 0) {
			if (ctl_buf_put(&head, buf, (size_t)r) || ctl_buf_put(&head, "", 1))
				goto out;
			head.len--; /* keep it a string, without counting the NUL */
			/* As http() takes a head: past interim answers (1xx), and
			 * a status no server sends is no HTTP (a "-2" once read
			 * as a refusal's code). */
			status = head_final((char *)head.data, &head.len, &interim, &body_at);
			if (status < 0 && status_of((char *)head.data) >= 200) {
				fprintf(stderr,
					"regionctl: cannot reach regiond at %s: no whole answer "
					"within %d s (%zu bytes came)\n",
					o->url ? o->url : o->sock, o->wait_ms / 1000,
					head.len + interim);
				goto out;
			}
			if (status < 0) {
				status = status_of((char *)head.data) == 101 ? -101 : 0;
				break;
			}
			if (status == 0)
				continue;
			sep = (char *)head.data + body_at - 4;
			chunked = is_chunked((char *)head.data, sep);
			if (status != 200) {
				/* The JSON error, read whole: to its length, or its
				 * last chunk, or the close. A server keeping the
				 * connection open once turned a refusal into "no
				 * whole answer" (a review). */
				body_at = (size_t)(sep + 4 - (char *)head.data);
				clen = content_length((char *)head.data, sep);
				if (error_body_whole(&head, body_at, clen, chunked))
					break;
				continue;
			}
			*started = 1;
			bo.wait_ms = silence_ms;
			last_rx = ctl_top_mono_s();
			silence_bound(ctl_conn_fd(c), CAP_TICK_MS);
			/* From here a Ctrl-C stops it through regiond, when it
			 * named the capture (an older regiond does not). */
			if ((cap_id = capture_id_of((char *)head.data, sep)) != 0) {
				ctl_conn_interruptible(c, &cap_stop_asked);
				cap_can_stop = 1;
			}
			/* -w FILE is emptied only now (a refused capture leaves
			 * it as it was); stdout never is: a file it is appended
			 * to (>>) keeps what it held, and a failed write cuts
			 * back to where this capture began (k->base). */
			if (k->fd >= 0 && k->fd != STDOUT_FILENO && ftruncate(k->fd, 0) < 0 &&
			    errno != EINVAL)
				fprintf(stderr, "regionctl: cannot empty the file: %s\n",
					strerror(errno));
			k->base = output_base(k->fd);
			{
				const uint8_t *rest = (const uint8_t *)sep + 4;
				size_t n = head.len - (size_t)(rest - head.data);

				if ((chunked ? stream_chunks(&ch, k, rest, n)
					     : sink_feed(k, rest, n)))
					break;
			}
			continue;
		}
		if (status != 200) {
			if (ctl_buf_put(&head, buf, (size_t)r) || ctl_buf_put(&head, "", 1))
				goto out;
			head.len--;
			if (error_body_whole(&head, body_at, clen, chunked))
				break;
			continue;
		}
		if (chunked ? stream_chunks(&ch, k, buf, (size_t)r) : sink_feed(k, buf, (size_t)r))
			break;
		/* A slow reader's write took its time: the silence after a stop
		 * is regiond's from here, not regionctl's own writing. */
		last_rx = ctl_top_mono_s();
	}
	cap_sock = -1;
	if (status <= 0 && cap_interrupted) {
		/* the user's Ctrl-C, not regiond's silence */
		fprintf(stderr,
			"regionctl: interrupted before regiond answered: nothing captured\n");
		goto out;
	}
	if (status <= 0) {
		fprintf(stderr, "regionctl: no HTTP response from regiond%s\n",
			status == -101 ? " (an HTTP 101 Switching Protocols, which regionctl never "
					 "asks for)"
				       : "");
		goto out;
	}
	if (status != 200) {
		char *eb = (char *)head.data + body_at;
		size_t elen = head.len - body_at;
		json_t *err;

		if (chunked && dechunk(eb, elen, (unsigned long long)ANSWER_MAX_MIB << 20, &elen, 1,
				       why, sizeof(why)) != 0)
			elen = 0; /* not whole, or not chunks: no error to show */
		else if (clen >= 0 && (size_t)clen < elen)
			elen = (size_t)clen;
		err = json_loadb(eb, elen, 0, NULL);

		/* -j: one line, as the packets' and the summary's; not when
		 * stdout carries the pcapng (-w -) */
		struct opts eo = *unbounded;

		eo.json_errors = eo.json_errors == JERR_NONE || k->fd == STDOUT_FILENO ? JERR_NONE
										       : JERR_LINE;
		rc = err ? show_api_error(&eo, status, err)
			 : (fprintf(stderr, "regionctl: HTTP %d\n", status), EXIT_UNREACHABLE);
		json_decref(err);
		goto out;
	}
	/* Bytes left that are no whole block at the end of a stream that
	 * ended whole: not pcapng ("hello", a JSON answer of another service
	 * with its 200), which once read as "capture: 0 packets", exit 0. A
	 * stream cut short keeps its own message below. */
	if (!k->why[0] && !cap_interrupted && k->pend.len &&
	    (chunked ? ch.state == CH_DONE : !ctl_conn_truncated(c)))
		snprintf(k->why, sizeof(k->why),
			 "regiond sent something that is not pcapng (%zu bytes that are no "
			 "whole block at its end)",
			 k->pend.len);
	if (k->why[0]) {
		if (k->out_errno != EPIPE) /* a reader gone: SIGPIPE, silent */
			fprintf(stderr, "regionctl: %s\n", k->why);
		rc = CTL_EXIT_FAILED;
		goto out;
	}
	rc = stop_unanswered ? EXIT_UNREACHABLE : 0;
	if (!cap_interrupted && (chunked ? ch.state != CH_DONE : ctl_conn_truncated(c))) {
		fprintf(stderr, "regionctl: the capture was cut short: regiond or regionfwd "
				"stopped it\n");
		rc = EXIT_UNREACHABLE;
	}
out:
	cap_sock = -1;
	ctl_buf_free(&head);
	ctl_conn_close(c);
	free(req);
	return rc;
}

static int parse_count(const struct ctl_call *c, const char *opt, unsigned long long max,
		       unsigned long long *out)
{
	const char *v = opt_val(c, opt);

	*out = 0;
	if (v == NULL)
		return 0;
	if (whole_number(v, 1, max, out))
		return usage_error(c, "%s takes a whole number in 1..%llu, not '%s'", opt, max, v);
	return 0;
}

/* capture -w -: the pcapng itself goes to stdout. */
static int capture_to_stdout(const struct opts *o, const struct ctl_call *c)
{
	const char *file = opt_val(c, "-w");

	(void)o;
	return file && strcmp(file, "-") == 0;
}

/* Whether a statistics block says the capture was stopped (end=stopped):
 * a Ctrl-C that came as it reached its count or duration stopped nothing,
 * and "(stopped at Ctrl-C)" beside "end=count reached" read as a
 * contradiction (a probe). */
static int ended_stopped(const struct cap_sink *k)
{
	for (int i = 0; i < k->nstats; i++)
		if (strstr(k->stats[i], "end=stopped"))
			return 1;
	return 0;
}

static int stdout_closed; /* when regionctl started (main) */

static void print_capture_stopping(json_t *r, const char *unused)
{
	(void)unused;
	printf("capture %lld: stopping (its client gets the end and the statistics)\n",
	       ji(r, "stopping"));
}

static int cmd_capture(const struct opts *o, const struct ctl_call *c)
{
	const char *file = opt_val(c, "-w");
	static const char *const names[] = {"--reason", "--region", "--service", "--link",
					    "--filter"};
	struct cap_sink k = {.fd = -1, .json = o->json, .base = -1};
	unsigned long long count, duration;
	struct sigaction sa = {.sa_handler = cap_on_signal};
	struct stat st;
	int created = 0, started, rc;
	json_t *b;
	FILE *out;

	if (opt_val(c, "--stop")) {
		unsigned long long id;

		/* Another client's capture, ended as its duration would end
		 * it (its file gets the statistics): one without --count or
		 * --duration was once stoppable only by killing its client. */
		if (whole_number(opt_val(c, "--stop"), 1, INT64_MAX, &id))
			return usage_error(c, "--stop takes a capture id (1 or more), not '%s'",
					   opt_val(c, "--stop"));
		for (int i = 0; cmd_of(c)->opts[i].name; i++)
			if (c->val[i] && strcmp(cmd_of(c)->opts[i].name, "--stop"))
				return usage_error(c, "--stop takes no other capture option (%s)",
						   cmd_of(c)->opts[i].name);
		return show(o, "POST", "/v1/capture/stop",
			    json_pack("{s:I}", "capture", (json_int_t)id), print_capture_stopping,
			    NULL);
	}
	if ((rc = parse_count(c, "--count", 10000000, &count)) ||
	    (rc = parse_count(c, "--duration", 86400, &duration)))
		return rc;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (opt_val(c, names[i]) && opt_val(c, names[i])[0] == '\0')
			return usage_error(c, "%s takes a non-empty value", names[i]);
	/* Where it goes is checked before regiond is asked: a capture to a
	 * file that cannot be written never starts. */
	if ((file == NULL || strcmp(file, "-") == 0) && stdout_closed) {
		fprintf(stderr,
			"regionctl capture: stdout is closed: give -w FILE, or redirect it\n");
		return EXIT_USAGE;
	}
	if (file && strcmp(file, "-") == 0) {
		if (isatty(STDOUT_FILENO)) {
			fprintf(stderr, "regionctl capture: not writing pcapng to a terminal: "
					"redirect stdout, or give -w FILE\n");
			return EXIT_USAGE;
		}
		k.fd = STDOUT_FILENO;
	} else if (file) {
		created = stat(file, &st) != 0;
		/* 0600 (narrowed further by the umask): a capture holds the
		 * customers' payload, which 0644 (tcpdump's) let every local
		 * user read. A file already there keeps its mode. */
		k.fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (k.fd < 0) {
			fprintf(stderr, "regionctl capture: cannot write '%s': %s\n", file,
				strerror(errno));
			return EXIT_USAGE;
		}
	}
	b = json_object();
	if (count)
		json_object_set_new(b, "count", json_integer((json_int_t)count));
	if (duration)
		json_object_set_new(b, "duration_s", json_integer((json_int_t)duration));
	if (opt_val(c, "--drops-only"))
		json_object_set_new(b, "drops_only", json_true());
	if (opt_val(c, "--no-xdp"))
		json_object_set_new(b, "xdp", json_false());
	opts_into_body(c, b);
	/* -j to a terminal kept glibc's own stdout (main), whose writes the
	 * guard does not see: a terminal nobody read held regionctl past
	 * Ctrl-C and SIGTERM (a probe). Printed packets flush each. */
	if (k.fd < 0 && o->json && isatty(STDOUT_FILENO) && fwd_stdout_plain())
		fprintf(stderr, "regionctl capture: stdout as it is: a terminal that stops "
				"reading may hold it past Ctrl-C\n");
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	cap_opts = o;
	fwd_stdout_interruptible(k.fd >= 0 ? k.fd : STDOUT_FILENO, &cap_signalled, &cap_interrupted,
				 CAP_STOP_WAIT_MS, cap_send_stop);
	rc = http_stream(o, "/v1/capture", b, &k, &started);
	/* The guard stays to the exit: the summary (-j's on stdout) and the
	 * exit's flush would block on a terminal nobody reads as the packets
	 * did (a review). No stop is asked from here on. */
	cap_opts = NULL;
	/* The handlers stay to the exit: a burst of Ctrl-C once had its late
	 * ones land after they were put back, killing regionctl before its
	 * summary (a probe). Late ones now only set flags nothing reads. */
	if (k.out_blocked) {
		__fpurge(stdout); /* what it held would block the exit's flush */
		clearerr(stdout);
	}
	json_decref(b);
	if (!started && created)
		unlink(file); /* refused: no empty file left behind */
	if (k.fd >= 0 && k.fd != STDOUT_FILENO)
		close(k.fd);
	ctl_buf_free(&k.pend);
	if (k.out_errno == EPIPE) {
		/* Its reader went away (regionctl capture | head -1): the
		 * connection is closed, so regiond stops the capture; end
		 * as every other command does then, by SIGPIPE, silent. */
		signal(SIGPIPE, SIG_DFL);
		raise(SIGPIPE);
	}
	if (!started)
		return rc;
	/* The summary: on stdout unless the pcapng went there (or stdout
	 * failed). */
	out = k.fd == STDOUT_FILENO || k.out_blocked ? stderr
	      : k.fd < 0 && !o->json		     ? stderr
						     : stdout;
	if (out == stdout && ferror(stdout))
		out = stderr;
	if (o->json) {
		json_t *stats = json_array(), *j;

		for (int i = 0; i < k.nstats; i++)
			json_array_append_new(stats, json_string(k.stats[i]));
		j = json_pack("{s:s, s:I, s:I, s:b, s:b, s:o}", "summary", "capture", "packets",
			      (json_int_t)k.packets, "bytes", (json_int_t)k.bytes, "complete",
			      rc == 0 && !cap_interrupted, "interrupted",
			      cap_interrupted != 0 || cap_stop_asked != 0, "statistics", stats);
		if (file)
			json_object_set_new(j, "file", json_string(file));
		json_dumpf(j, out, JSON_COMPACT | JSON_SORT_KEYS | JSON_REALS);
		fputc('\n', out);
		json_decref(j);
	} else {
		/* A failed stream or write (said above) is said here too: a
		 * bare "0 packets written to F" read as a quiet capture. */
		fprintf(out, "capture: %llu packets%s%s%s\n", (unsigned long long)k.packets,
			file ? (k.out_errno ? " (not all written) to " : " written to ") : "",
			file ? (k.fd == STDOUT_FILENO ? "stdout" : file) : "",
			cap_interrupted			      ? " (interrupted)"
			: rc				      ? " (incomplete: the error above)"
			: cap_stop_asked && ended_stopped(&k) ? " (stopped at Ctrl-C)"
							      : "");
		for (int i = 0; i < k.nstats; i++)
			fprintf(out, "  %s\n", k.stats[i]);
	}
	return rc;
}

/* ---- fleet (docs/fleet.md): rollouts through the facility's etcd ------- */

/* The rollout options regionctl sets: flag, the API's option name, and
 * whether it is a flag that sets false. */
static const struct {
	const char *flag, *option;
	int negate;
} fleet_opt_map[] = {
	{"--canary", "canary", 0},
	{"--canary-label", "canary_label", 0},
	{"--bake", "bake_s", 0},
	{"--wave", "wave", 0},
	{"--sync-timeout", "sync_timeout_s", 0},
	{"--max-drop-pps", "max_drop_pps", 0},
	{"--max-drop-pct", "max_drop_pct", 0},
	{"--no-link-gate", "link_gate", 1},
	{"--max-health", "max_health", 0},
};

static int fleet_options(const struct ctl_call *c, json_t *opts)
{
	/* A label alone chooses every node that has it. */
	if (opt_val(c, "--canary-label") && !opt_val(c, "--canary"))
		json_object_set_new(opts, "canary", json_integer(0));
	for (size_t i = 0; i < sizeof(fleet_opt_map) / sizeof(fleet_opt_map[0]); i++) {
		const char *v = opt_val(c, fleet_opt_map[i].flag);
		unsigned long long n;

		if (v == NULL)
			continue;
		if (fleet_opt_map[i].negate) {
			json_object_set_new(opts, fleet_opt_map[i].option, json_false());
			continue;
		}
		if (strcmp(fleet_opt_map[i].flag, "--canary-label") == 0) {
			json_object_set_new(opts, fleet_opt_map[i].option, json_string(v));
			continue;
		}
		if (whole_number(v, 0, LLONG_MAX, &n))
			return usage_error(c, "%s takes a number, not '%s'", fleet_opt_map[i].flag,
					   v);
		/* The range is regiond's to check: it names the option. */
		json_object_set_new(opts, fleet_opt_map[i].option, json_integer((json_int_t)n));
	}
	return 0;
}

static void print_rollout(json_t *ro)
{
	json_t *o = json_object_get(ro, "options"), *ab = json_object_get(ro, "abort"), *n;
	char t[32];
	size_t i;

	when(ji(ro, "created_at") / 1000, t, sizeof(t));
	printf("rollout %s in facility %s: %s", js(ro, "id"), js(ro, "facility"), js(ro, "state"));
	if (ji(ro, "waves") > 0)
		printf(", wave %lld of %lld", ji(ro, "wave") + 1, ji(ro, "waves"));
	putchar('\n');
	printf("  table %s (previous %s), created %s by %s\n", js(ro, "table"), js(ro, "previous"),
	       t, js(ro, "created_by"));
	printf("  canary %lld%s%s, bake %lld s, wave %lld, sync timeout %lld s, drops +%lld/s "
	       "and %lld%%, link gate %s, max health %lld; %lld etcd writes\n",
	       ji(o, "canary"), json_is_string(json_object_get(o, "canary_label")) ? " label " : "",
	       json_is_string(json_object_get(o, "canary_label")) ? js(o, "canary_label") : "",
	       ji(o, "bake_s"), ji(o, "wave"), ji(o, "sync_timeout_s"), ji(o, "max_drop_pps"),
	       ji(o, "max_drop_pct"), json_is_true(json_object_get(o, "link_gate")) ? "on" : "off",
	       ji(o, "max_health"), ji(ro, "writes"));
	if (json_is_true(json_object_get(ro, "abort_requested")) && !ab)
		printf("  abort asked: the driver reverts\n");
	if (json_is_object(ab))
		printf("  aborted: %s%s%s: %s\n", js(ab, "gate"),
		       json_is_string(json_object_get(ab, "node")) ? " on " : "",
		       json_is_string(json_object_get(ab, "node")) ? js(ab, "node") : "",
		       js(ab, "reason"));
	printf("  %-24s %-5s %-10s %s\n", "NODE", "WAVE", "STATUS", "PINNED");
	json_array_foreach(json_object_get(ro, "nodes"), i, n) {
		char w[16];

		if (ji(n, "wave") < 0)
			snprintf(w, sizeof(w), "-");
		else
			snprintf(w, sizeof(w), "%lld", ji(n, "wave"));
		printf("  %-24s %-5s %-10s %s\n", js(n, "name"), w, js(n, "status"),
		       json_is_true(json_object_get(n, "pinned")) ? "yes" : "no");
	}
}

static void print_active(json_t *r, const char *arg)
{
	json_t *d = json_object_get(r, "driver");

	(void)arg;
	print_rollout(json_object_get(r, "rollout"));
	/* Paused: its own reason (etcd, or a record that does not hold
	 * together), not a guess. */
	if (json_is_object(d))
		printf("driver on this regiond: %s%s%s%s\n",
		       json_is_true(json_object_get(d, "leader")) ? "leader" : "follower of ",
		       json_is_true(json_object_get(d, "leader")) ? "" : js(d, "leader_node"),
		       json_is_true(json_object_get(d, "paused")) ? ", paused: " : "",
		       json_is_true(json_object_get(d, "paused"))
			       ? (json_string_value(json_object_get(d, "last_error"))
					  ? json_string_value(json_object_get(d, "last_error"))
					  : "(no reason given)")
			       : "");
}

static void print_fleet_history(json_t *r, const char *arg)
{
	json_t *ro;
	size_t i;

	(void)arg;
	printf("%-28s %-10s %-16s %-16s %-20s %s\n", "ROLLOUT", "STATE", "TABLE", "PREVIOUS",
	       "FINISHED", "WHY");
	json_array_foreach(json_object_get(r, "rollouts"), i, ro) {
		json_t *ab = json_object_get(ro, "abort");
		char t[32] = "-", why[320] = "";

		if (json_object_get(ro, "error")) {
			printf("%-28s unreadable: %s\n", js(ro, "key"),
			       js(json_object_get(ro, "error"), "reason"));
			continue;
		}
		if (ji(ro, "finished_at"))
			when(ji(ro, "finished_at") / 1000, t, sizeof(t));
		if (json_is_object(ab))
			snprintf(why, sizeof(why), "%s%s%s: %s", js(ab, "gate"),
				 json_is_string(json_object_get(ab, "node")) ? " on " : "",
				 json_is_string(json_object_get(ab, "node")) ? js(ab, "node") : "",
				 js(ab, "reason"));
		printf("%-28s %-10s %-16s %-16s %-20s %s\n", js(ro, "id"), js(ro, "state"),
		       js(ro, "table"), js(ro, "previous"), t, why);
	}
}

/* An age in ms as an operator reads it: "4s", "12m", "3h", "2d". */
static void age_str(long long ms, char *buf, size_t len)
{
	long long s = ms / 1000;

	if (s < 120)
		snprintf(buf, len, "%llds", s);
	else if (s < 120 * 60)
		snprintf(buf, len, "%lldm", s / 60);
	else if (s < 48 * 3600)
		snprintf(buf, len, "%lldh", s / 3600);
	else
		snprintf(buf, len, "%lldd", s / 86400);
}

static void print_fleet_nodes(json_t *r, const char *arg)
{
	json_t *n;
	size_t i;

	(void)arg;
	printf("facility %s: %zu nodes\n", js(r, "facility"),
	       json_array_size(json_object_get(r, "nodes")));
	printf("%-20s %-13s %-16s %-16s %-7s %-6s %-7s %-12s %s\n", "NODE", "STATE", "TARGET",
	       "RUNNING", "IN_SYNC", "HEALTH", "AGE", "DROPS", "ERROR");
	json_array_foreach(json_object_get(r, "nodes"), i, n) {
		json_t *err = json_object_get(n, "apply_error");
		char age[24] = "-";

		if (json_object_get(n, "error") && !json_object_get(n, "node")) {
			printf("%-20s unreadable report: %s\n", js(n, "key"),
			       js(json_object_get(n, "error"), "reason"));
			continue;
		}
		/* The report's age (a regiond older than this one says none):
		 * a node that stopped reporting is told from a live one. */
		if (json_is_integer(json_object_get(n, "age_ms"))) {
			age_str(ji(n, "age_ms"), age, sizeof(age) - 1);
			if (json_is_true(json_object_get(n, "report_stale")))
				strcat(age, "!");
		}
		printf("%-20s %-13s %-16s %-16s %-7s %-6lld %-7s %-12lld %s\n", js(n, "node"),
		       js(n, "state"), js(json_object_get(n, "target"), "table"),
		       js(json_object_get(n, "running"), "table"),
		       json_is_true(json_object_get(n, "in_sync")) ? "yes" : "no",
		       ji(json_object_get(n, "health"), "code"), age,
		       ji(json_object_get(n, "counters"), "drops"),
		       json_is_object(err) ? js(err, "reason") : "");
	}
	/* What needs an operator, under the table: each node's alarm (a stray
	 * pin, a node off its target), a report not rewritten for longer
	 * than its interval allows, then every pin with who owns it. */
	json_array_foreach(json_object_get(r, "nodes"), i, n) {
		const char *a =
			json_string_value(json_object_get(json_object_get(n, "health"), "alarm"));

		if (a && a[0] && json_is_string(json_object_get(n, "node")))
			printf("alarm on %s: %s\n", js(n, "node"), a);
	}
	json_array_foreach(json_object_get(r, "nodes"), i, n) {
		char age[24];

		if (!json_is_true(json_object_get(n, "report_stale")) ||
		    !json_is_string(json_object_get(n, "node")))
			continue;
		age_str(ji(n, "age_ms"), age, sizeof(age));
		printf("stale report of %s: written %s ago, past %llds without a new one (its "
		       "state may be long gone: the node stopped reporting, a hung regiond or "
		       "a long apply holding its lease)\n",
		       js(n, "node"), age, ji(r, "report_stale_after_ms") / 1000);
	}
	if (json_is_string(json_object_get(r, "pins_error")))
		printf("pins: cannot be read: %s\n", js(r, "pins_error"));
	if (json_array_size(json_object_get(r, "pins")) == 0)
		return;
	printf("pins (take precedence over desired; active rollout %s)%s:\n",
	       json_is_string(json_object_get(r, "active_rollout")) ? js(r, "active_rollout")
								    : "none",
	       json_is_true(json_object_get(r, "pins_truncated"))
		       ? "; only the first ones: more are under pins/"
		       : "");
	printf("  %-20s %-16s %-28s %s\n", "NODE", "TABLE", "ROLLOUT", "OWNER");
	json_array_foreach(json_object_get(r, "pins"), i, n) {
		const char *owner = js(n, "owner");
		int stray = json_is_true(json_object_get(n, "stray"));
		int named = json_is_string(json_object_get(n, "node"));
		json_int_t after = json_integer_value(json_object_get(r, "unpin_after_s"));
		char note[160] = "";

		/* What becomes of it, as this regiond is set (a fleet runs one
		 * --fleet-unpin-after): only a finished rollout's pin goes by
		 * itself, and only when that is not 0. */
		if (!strcmp(owner, "finished") && after > 0)
			snprintf(note, sizeof(note), " (the leader deletes it after %llds)",
				 (long long)after);
		else if (!strcmp(owner, "finished"))
			snprintf(note, sizeof(note),
				 " (--fleet-unpin-after 0: regionctl fleet unpin NODE)");
		else if (stray && !named)
			snprintf(note, sizeof(note), " (%s; etcdctl del removes it)",
				 js(n, "error"));
		else if (!strcmp(owner, "operator"))
			snprintf(note, sizeof(note),
				 " (held on purpose? regionctl fleet unpin NODE)");
		else if (stray)
			snprintf(note, sizeof(note), " (regionctl fleet unpin NODE)");
		printf("  %-20s %-16s %-28s %s%s%s\n", named ? js(n, "node") : "(bad key)",
		       json_is_string(json_object_get(n, "table")) ? js(n, "table") : "-",
		       json_is_string(json_object_get(n, "rollout")) ? js(n, "rollout") : "(hand)",
		       owner, stray ? ": STRAY" : "", note);
	}
}

static void print_unpin(json_t *r, const char *arg)
{
	json_t *p = json_object_get(r, "unpinned");

	(void)arg;
	printf("node %s: pin to table %s (%s) deleted; the node follows desired\n", js(p, "node"),
	       json_is_string(json_object_get(p, "table")) ? js(p, "table") : "unreadable",
	       json_is_string(json_object_get(p, "rollout")) ? js(p, "rollout") : js(p, "owner"));
}

static int cmd_fleet_unpin(const struct opts *o, const struct ctl_call *c)
{
	return show(o, "POST", "/v1/fleet/unpin", json_pack("{s:s}", "node", c->pos[0]),
		    print_unpin, NULL);
}

static int cmd_fleet_status(const struct opts *o, const struct ctl_call *c)
{
	(void)c;
	return show(o, "GET", "/v1/fleet/nodes", NULL, print_fleet_nodes, NULL);
}

static int cmd_fleet_rollout(const struct opts *o, const struct ctl_call *c)
{
	(void)c;
	return show(o, "GET", "/v1/fleet/rollouts/active", NULL, print_active, NULL);
}

static int cmd_fleet_history(const struct opts *o, const struct ctl_call *c)
{
	(void)c;
	return show(o, "GET", "/v1/fleet/rollouts", NULL, print_fleet_history, NULL);
}

static void print_abort(json_t *r, const char *arg)
{
	(void)arg;
	if (json_is_string(json_object_get(r, "unreadable_removed"))) {
		printf("rollout/active could not be read (%s): deleted, with every pin; the nodes "
		       "follow the desired table\n",
		       js(r, "unreadable_removed"));
		return;
	}
	printf("rollout %s: abort asked; the driver pins the changed nodes back to %s\n",
	       js(json_object_get(r, "rollout"), "id"),
	       js(json_object_get(r, "rollout"), "previous"));
}

static int cmd_fleet_abort(const struct opts *o, const struct ctl_call *c)
{
	(void)c;
	return show(o, "POST", "/v1/fleet/rollouts/active/abort", json_object(), print_abort, NULL);
}

/* --wait's bound by default: a day. A rollout of 100 waves at the default
 * 60 s sync and bake takes under 4 h; a longer one sets --wait-timeout. */
#define FLEET_WAIT_DEFAULT_S 86400
#define FLEET_WAIT_MAX_S (30 * 86400)

/* Whether @ro, an answer's rollout, is one a rollout can be while active;
 * else why in @why. Checked beyond its shape (ans_check): a state
 * no rollout has, or a wave past its waves, is no regiond's answer. */
static int fleet_wait_sane(json_t *ro, char *why, size_t len)
{
	static const char *const states[] = {"pending",	 "syncing",   "baking",
					     "aborting", "completed", "aborted"};
	const char *st = js(ro, "state");
	size_t i;

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(st, states[i]) == 0)
			break;
	if (i == sizeof(states) / sizeof(states[0])) {
		char shown[64];

		snprintf(why, len, "rollout.state: '%s' is no rollout's state",
			 fwd_escape_controls(st, shown, sizeof(shown)));
		return -1;
	}
	if (ji(ro, "waves") > 0 && (ji(ro, "wave") < -1 || ji(ro, "wave") >= ji(ro, "waves"))) {
		snprintf(why, len, "rollout.wave: %lld, not a wave of the rollout's %lld",
			 ji(ro, "wave"), ji(ro, "waves"));
		return -1;
	}
	return 0;
}

/* --wait could not follow rollout @id to its end: it goes on (or ended)
 * in etcd, how is unknown here. */
static int wait_unknown(const char *id)
{
	fprintf(stderr,
		"regionctl: rollout %s was created, its outcome is unknown: 'regionctl fleet "
		"rollout' follows it, 'regionctl fleet history' has its end\n",
		id);
	return CTL_EXIT_UNKNOWN;
}

/* --wait: follow rollout @id until it is in the history, for @bound_s at
 * most; its exit code. It once polled for ever while a server (broken, or
 * not regiond) answered 200 with the rollout still active, and took any
 * such answer as it came ({} had no id: "neither active nor in the
 * history"). The rollout exists when it waits: when regionctl cannot tell
 * how it ends (its bound over, answers that are not the API's) its outcome
 * is unknown, exit 5, never 3, which a script may read as "nothing
 * changed" and apply again. An error while it waits is said as text only:
 * with -j its JSON would read as the rollout's outcome, which it is not. */
static int fleet_wait(const struct opts *wo, const char *id, unsigned bound_s)
{
	struct opts text = *wo, *o = &text;
	char last[64] = "";
	int unavailable = 0; /* consecutive answers of a regiond without etcd */
	double deadline = ctl_top_mono_s() + bound_s;

	text.json_errors = JERR_NONE;

	for (;;) {
		json_t *r = NULL, *ro;
		char why[512], bad[320] = "";
		struct opts po = *o;
		double left = deadline - ctl_top_mono_s();
		int st, each = o->timeout_ms ? o->timeout_ms : READ_TIMEOUT_MS;

		if (left <= 0) {
			fprintf(stderr,
				"regionctl: rollout %s is still %s after %u s (--wait-timeout)\n",
				id, last[0] ? last : "active", bound_s);
			return wait_unknown(id);
		}
		/* no single poll past the bound either */
		if (left * 1000 < each)
			po.timeout_ms = left * 1000 > 1000 ? (int)(left * 1000) : 1000;
		st = http(&po, "GET", "/v1/fleet/rollouts/active", NULL, &r, why, sizeof(why));
		if (st == 200 &&
		    (r == NULL ||
		     ans_check("GET", "/v1/fleet/rollouts/active", r, bad, sizeof(bad)) ||
		     fleet_wait_sane(json_object_get(r, "rollout"), bad, sizeof(bad)))) {
			fprintf(stderr,
				"regionctl: regiond at %s answered GET /v1/fleet/rollouts/active "
				"with what is not the API's answer: %s\n",
				o->url ? o->url : o->sock, r ? bad : why);
			json_decref(r);
			return wait_unknown(id);
		}
		ro = json_object_get(r, "rollout");
		if (st == 200 && strcmp(js(ro, "id"), id) == 0) {
			char now[64];

			if (ji(ro, "waves") > 0)
				snprintf(now, sizeof(now), "%.20s, wave %lld of %lld",
					 js(ro, "state"), ji(ro, "wave") + 1, ji(ro, "waves"));
			else
				snprintf(now, sizeof(now), "%.20s", js(ro, "state"));
			if (strcmp(now, last) != 0 && !o->json)
				printf("rollout %s: %s\n", id, now);
			snprintf(last, sizeof(last), "%s", now);
			unavailable = 0;
			json_decref(r);
			usleep(500 * 1000);
			continue;
		}
		/* etcd out of reach for a moment (a member lost): the rollout
		 * is paused, not gone; ask again for up to a minute. */
		if ((st == 502 || st == 503) && ++unavailable < 120) {
			json_decref(r);
			usleep(500 * 1000);
			continue;
		}
		/* Unreachable, or an error, once the rollout exists: what
		 * becomes of it is unknown here, whatever the error's own code
		 * (3 or 4 say nothing changed; 1, refused). */
		if (st < 0 || (st != 200 && st != 404)) {
			if (st < 0)
				fprintf(stderr, "regionctl: cannot reach regiond at %s: %s\n",
					o->url ? o->url : o->sock, why);
			else
				show_error(st, r);
			json_decref(r);
			return wait_unknown(id);
		}
		json_decref(r);
		break;
	}
	{
		json_t *h, *ro, *found = NULL;
		size_t i;
		int rc = call(o, "GET", "/v1/fleet/rollouts", NULL, &h);

		if (rc)
			return wait_unknown(id);
		json_array_foreach(json_object_get(h, "rollouts"), i, ro)
			if (strcmp(js(ro, "id"), id) == 0 && found == NULL)
				found = ro;
		if (found == NULL) {
			fprintf(stderr,
				"regionctl: rollout %s is neither active nor in the history\n", id);
			json_decref(h);
			return wait_unknown(id);
		}
		if (o->json)
			print_json(found);
		else
			print_rollout(found);
		rc = strcmp(js(found, "state"), "completed") == 0
			     ? 0
			     : (int)ctl_exit_code(FWD_R_ROLLOUT_ABORTED);
		if (rc && !o->json)
			fprintf(stderr, "regionctl: rollout_aborted: rollout %s did not complete\n",
				id);
		json_decref(h);
		return rc;
	}
}

static int cmd_fleet_apply(const struct opts *o, const struct ctl_call *c)
{
	json_t *b, *opts = json_object(), *r;
	const char *wt = opt_val(c, "--wait-timeout");
	unsigned long bound = FLEET_WAIT_DEFAULT_S;
	char id[64];
	int rc = 0;

	if (wt) {
		unsigned long long secs;

		/* strict, as --timeout: "5m" or "-1" bound nothing meant */
		if (whole_number(wt, 1, FLEET_WAIT_MAX_S, &secs)) {
			json_decref(opts);
			return usage_error(c, "--wait-timeout takes seconds 1..%d, not '%s'",
					   FLEET_WAIT_MAX_S, wt);
		}
		if (!opt_val(c, "--wait")) {
			json_decref(opts);
			return usage_error(c, "--wait-timeout goes with --wait");
		}
		bound = (unsigned long)secs;
	}
	if ((rc = fleet_options(c, opts))) {
		json_decref(opts);
		return rc;
	}
	if ((b = doc_body(c->pos[0], &rc)) == NULL) {
		json_decref(opts);
		return rc;
	}
	json_object_set_new(b, "options", opts);
	if (opt_val(c, "--author"))
		json_object_set_new(b, "author", json_string(opt_val(c, "--author")));
	else if (getenv("USER"))
		json_object_set_new(b, "author", json_string(getenv("USER")));
	rc = call(o, "POST", "/v1/fleet/rollouts", b, &r);
	json_decref(b);
	if (rc)
		return rc;
	snprintf(id, sizeof(id), "%s", js(json_object_get(r, "rollout"), "id"));
	if (!opt_val(c, "--wait")) {
		if (o->json)
			print_json(r);
		else
			printf("rollout %s created: table %s, canary first; follow it with "
			       "'regionctl fleet rollout'\n",
			       id, js(json_object_get(r, "rollout"), "table"));
		json_decref(r);
		return 0;
	}
	if (!o->json)
		printf("rollout %s created: table %s\n", id,
		       js(json_object_get(r, "rollout"), "table"));
	json_decref(r);
	return fleet_wait(o, id, (unsigned)bound);
}

static int cmd_help(const struct opts *o, const struct ctl_call *c);

static const struct ctl_opt global_opts[] = {
	{.name = "-s",
	 .arg = "SOCK",
	 .help = "the API's socket ($REGIOND_SOCKET, else /run/regiond/api.sock)"},
	{.name = "--url",
	 .arg = "URL",
	 .help = "the TCP API instead: http://HOST:PORT or https://HOST:PORT"},
	{.name = "--token-file", .arg = "F", .help = "the API token, for --url"},
	{.name = "--ca",
	 .arg = "F",
	 .help = "https: the CA (PEM) that issued regiond's certificate"},
	{.name = "--cert", .arg = "F", .help = "https: a client certificate (PEM), with --key"},
	{.name = "--key", .arg = "F", .help = "https: --cert's private key (PEM, mode 0600)"},
	{.name = "--names-dir",
	 .arg = "DIR",
	 .help = "a document's names_file may also be an absolute path beneath DIR"},
	{.name = "--json", .alias = "-j", .help = "print the API's JSON instead of tables"},
	{.name = "--timeout",
	 .arg = "S",
	 .help = "wait for regiond S s at most, 1..86400 (reads 30, writes 300)"},
	{.name = "--help", .alias = "-h", .help = "this help, or a command's: nothing is run"},
	{0},
};

static const struct ctl_opt explain_opts[] = {
	{.name = "--payload",
	 .arg = "TEXT",
	 .content_field = FWD_CF_PAYLOAD + 1,
	 .help = "the packet's payload, as text"},
	{.name = "--payload-hex",
	 .arg = "HEX",
	 .key = "payload_hex",
	 .help = "the payload, in hex"},
	{.name = "--sni",
	 .arg = "NAME",
	 .content_field = FWD_CF_TLS_SNI + 1,
	 .help = "a TLS ClientHello with this SNI"},
	{.name = "--host",
	 .arg = "NAME",
	 .content_field = FWD_CF_HTTP_HOST + 1,
	 .help = "an HTTP request with this Host"},
	{.name = "--qname",
	 .arg = "NAME",
	 .content_field = FWD_CF_DNS_QNAME + 1,
	 .help = "a DNS query for this name"},
	{0},
};

static const struct ctl_opt capture_opts[] = {
	{.name = "-w", .arg = "FILE", .help = "write pcapng to FILE ('-': stdout)"},
	{.name = "--count", .arg = "N", .help = "stop after N packets (1..10000000)"},
	{.name = "--duration", .arg = "S", .help = "stop after S seconds (1..86400)"},
	{.name = "--drops-only", .help = "only packets that are dropped"},
	{.name = "--reason",
	 .arg = "R",
	 .key = "reason",
	 .help = "only drops for reason R",
	 .choices = fwd_drop_names,
	 .nchoices = FWD_DROP_MAX},
	{.name = "--region", .arg = "R", .key = "region", .help = "only region R's packets"},
	{.name = "--service", .arg = "S", .key = "service", .help = "only service S's packets"},
	{.name = "--link", .arg = "L", .key = "link", .help = "only packets sent on link L"},
	{.name = "--filter",
	 .arg = "EXPR",
	 .key = "filter",
	 .help = "a pcap filter expression ('udp port 53')"},
	{.name = "--no-xdp", .help = "leave out the XDP filter's drops"},
	{.name = "--stop",
	 .arg = "ID",
	 .help = "stop capture ID, which another client runs (capture_busy names it)"},
	{0},
};

/* Who made a change and why, as every write that records one takes them. */
#define WHO_AND_WHY_OPTS                                                                           \
	{.name = "--comment", .arg = "C", .key = "comment", .help = "why, kept in the history"},   \
	{                                                                                          \
		.name = "--author", .arg = "A", .key = "author",                                   \
		.help = "who, kept in the history (default: $USER, else api)"                      \
	}

static const struct ctl_opt apply_opts[] = {
	WHO_AND_WHY_OPTS,
	{.name = "--confirm-timeout",
	 .arg = "S",
	 .help = "revert by itself after S seconds (1..86400) unless confirmed"},
	{.name = "--expected-generation",
	 .arg = "N",
	 .help = "refused (stale_generation) unless N is current (default: the one current "
		 "when regionctl starts)"},
	{0},
};

static const struct ctl_opt rollback_opts[] = {
	WHO_AND_WHY_OPTS,
	{.name = "--dry-run",
	 .help = "show what the rollback would change (diff, impact, warnings), change nothing"},
	{.name = "--expected-generation",
	 .arg = "N",
	 .help = "refused (stale_generation) unless N is current (default: the one current "
		 "when regionctl starts)"},
	{0},
};

/* The rate's window, one entry for counters, show links and drops. */
#define RATE_WINDOW_OPT                                                                            \
	{                                                                                          \
		.name = "--interval", .arg = "S",                                                  \
		.help = "the rate's window, 0.1..3600 seconds (default 1); implies --rate"         \
	}

static const struct ctl_opt rate_opts[] = {
	{.name = "--rate", .help = "also packets/s and bits/s, from two reads of the counters"},
	RATE_WINDOW_OPT,
	{0},
};

/* drops: a reason counts packets, no bytes (its help said bits/s too). */
static const struct ctl_opt drop_rate_opts[] = {
	{.name = "--rate", .help = "also packets/s a reason, from two reads of the counters"},
	RATE_WINDOW_OPT,
	{0},
};

static const struct ctl_opt top_opts[] = {
	{.name = "--interval", .arg = "S", .help = "seconds between frames, 0.1..3600 (default 1)"},
	{.name = "--count", .arg = "N", .help = "stop after N frames (default: until q or ^C)"},
	{.name = "--sort",
	 .arg = "KEY",
	 .help = "rows by rate (default), total or name",
	 .choices = ctl_top_sorts,
	 .nchoices = CTL_TOP_NSORTS},
	{.name = "--filter", .arg = "TEXT", .help = "only rows whose name contains TEXT"},
	{0},
};

static const struct ctl_opt link_weight_opts[] = {
	{.name = "--group",
	 .arg = "G",
	 .help = "only in this link group (default: every group the link is in)"},
	WHO_AND_WHY_OPTS,
	{.name = "--confirm-timeout",
	 .arg = "S",
	 .help = "revert by itself after S seconds (1..86400) unless confirmed"},
	{.name = "--expected-generation",
	 .arg = "N",
	 .help = "refused (stale_generation) unless N is current (default: the one current "
		 "when regionctl starts)"},
	{0},
};

static const struct ctl_opt prefixes_opts[] = {
	{.name = "--expected-generation",
	 .arg = "N",
	 .help = "refused (stale_generation) unless N is current"},
	WHO_AND_WHY_OPTS,
	{0},
};

#define PREFIXES_DETAIL                                                                            \
	"FILE ('-': standard input) holds one prefix a line (10.1.0.0/16, 2001:db8::/32);\n"       \
	"'#' starts a comment, blank lines are skipped. A bad line is refused with its\n"          \
	"number before anything is sent (exit 1), and so is a file without prefixes.\n"            \
	"The batch is one POST /v1/prefixes: all or nothing, a new generation holding\n"           \
	"only the changes (a delta), recorded with who made it. Without\n"                         \
	"--expected-generation it applies to whatever is current."

static const struct ctl_cmd prefixes_cmds[] = {
	{.name = "add",
	 .run = cmd_prefixes_change,
	 .opts = prefixes_opts,
	 .args = "REGION FILE",
	 .min_args = 2,
	 .max_args = 2,
	 .summary = "add the prefixes of FILE to a region, as one delta",
	 .detail = "A prefix the region holds already is a no-op (a retry changes nothing); one\n"
		   "another region holds is refused (invalid_delta).\n\n" PREFIXES_DETAIL},
	{.name = "remove",
	 .run = cmd_prefixes_change,
	 .opts = prefixes_opts,
	 .args = "REGION FILE",
	 .min_args = 2,
	 .max_args = 2,
	 .summary = "remove the prefixes of FILE from a region, as one delta",
	 .detail = "A prefix the region does not hold is refused "
		   "(invalid_delta).\n\n" PREFIXES_DETAIL},
	{.name = "list",
	 .run = cmd_prefixes_list,
	 .args = "REGION",
	 .min_args = 1,
	 .max_args = 1,
	 .summary = "a region's prefixes in the running table, one a line",
	 .detail = "With -j, the region's model (its prefixes and description)."},
	{0},
};

#define LINK_DETAIL                                                                                \
	"A PATCH of the table: validated like any change (residency included), recorded\n"         \
	"in the history with who made it, and with --confirm-timeout reverted unless\n"            \
	"'regionctl confirm' follows in time. Sends --expected-generation N, else the\n"           \
	"current generation, as expected_generation. The comment defaults to what changed."

/* The names of down, up and drain are the table's link state words (fwd_schema.def). */
static const struct ctl_cmd link_cmds[] = {
	{.name = "down",
	 .run = cmd_link,
	 .opts = apply_opts,
	 .args = "LINK",
	 .min_args = 1,
	 .max_args = 1,
	 .summary = "take a link down: it carries nothing",
	 .detail = "Policies that steer to it drop (no_link_up), its groups skip "
		   "it.\n\n" LINK_DETAIL},
	{.name = "up",
	 .run = cmd_link,
	 .opts = apply_opts,
	 .args = "LINK",
	 .min_args = 1,
	 .max_args = 1,
	 .summary = "bring a link up, or back from a drain",
	 .detail = "It takes its slots in its groups again, with the weights it "
		   "kept.\n\n" LINK_DETAIL},
	{.name = "drain",
	 .run = cmd_link,
	 .opts = apply_opts,
	 .args = "LINK",
	 .min_args = 1,
	 .max_args = 1,
	 .summary = "drain a link: its groups' flows move to the other members",
	 .detail = "It takes no slot in its link groups (as with weight 0, keeping its\n"
		   "weights), and still carries what a policy steers to it "
		   "directly.\n\n" LINK_DETAIL},
	{.name = "weight",
	 .run = cmd_link,
	 .opts = link_weight_opts,
	 .args = "LINK N",
	 .min_args = 2,
	 .max_args = 2,
	 .summary = "set a link's weight (0..1000000) in its link groups",
	 .detail =
		 "Only the flows to or from that link move. Refused when the link is in no\n"
		 "group, or when a group would be left with weight 0 everywhere.\n\n" LINK_DETAIL},
	{0},
};

static const struct ctl_cmd show_cmds[] = {
	{.name = "regions",
	 .run = cmd_show,
	 .summary = "regions and their source prefixes",
	 .args = "[NAME]",
	 .max_args = 1,
	 .detail = "With NAME, that region only, with all its prefixes in -j."},
	{.name = "services",
	 .run = cmd_show,
	 .summary = "services and their protocol/port entries",
	 .args = "[NAME]",
	 .max_args = 1,
	 .detail = "With NAME, that service only."},
	{.name = "links",
	 .run = cmd_show,
	 .opts = rate_opts,
	 .summary = "links (port, next hop, VLAN, state, tags) and link groups",
	 .args = "[NAME]",
	 .max_args = 1,
	 .detail = "With NAME, that link only (no groups)."},
	{.name = "policies", .run = cmd_show, .summary = "policies, then the default"},
	{.name = "table",
	 .run = cmd_show,
	 .raw_stdout = raw_always,
	 .summary = "the running table: its document, or JSON after a link change",
	 .detail = "With -j, the table's model (every section) instead."},
	{0},
};

static const struct ctl_cmd filter_cmds[] = {
	{.name = "status",
	 .run = cmd_filter_status,
	 .summary = "interfaces, program, generation, per-rule hits, verdicts"},
	{.name = "detach",
	 .run = cmd_filter_detach,
	 .summary = "detach the XDP filters everywhere and remove their pins"},
	{0},
};

static const struct ctl_opt fleet_apply_opts[] = {
	{.name = "--canary", .arg = "N", .help = "N canary nodes first, by name (default 1)"},
	{.name = "--canary-label",
	 .arg = "K=V",
	 .help = "the canaries are the nodes with this label (at most N with --canary N)"},
	{.name = "--bake", .arg = "S", .help = "each wave bakes S seconds in sync (default 60)"},
	{.name = "--wave", .arg = "N", .help = "nodes per wave after the canary (default 1)"},
	{.name = "--sync-timeout",
	 .arg = "S",
	 .help = "a wave must run the table in sync within S seconds (default 60)"},
	{.name = "--max-drop-pps",
	 .arg = "N",
	 .help = "drop_rate gate: a reason's rate may rise N/s over before (default 100)"},
	{.name = "--max-drop-pct",
	 .arg = "P",
	 .help = "... and to P% of its rate before (default 200)"},
	{.name = "--no-link-gate", .help = "a link going down does not fail the rollout"},
	{.name = "--max-health",
	 .arg = "N",
	 .help = "health gate: highest health code allowed, 0..2 (default 1)"},
	{.name = "--author", .arg = "A", .help = "who, kept in the record (default: $USER)"},
	{.name = "--wait",
	 .help = "follow it to the end; exit 0 completed, 1 aborted (rollout_aborted), 5 "
		 "its end unknown"},
	{.name = "--wait-timeout",
	 .arg = "S",
	 .help = "--wait follows it S seconds at most, 1..2592000 (default 86400); then "
		 "exit 5"},
	{0},
};

static const struct ctl_cmd fleet_cmds[] = {
	{.name = "apply",
	 .run = cmd_fleet_apply,
	 .opts = fleet_apply_opts,
	 .args = "FILE",
	 .min_args = 1,
	 .max_args = 1,
	 .summary = "roll a table out to the facility: canary, bake, gates, waves",
	 .detail =
		 "regiond validates FILE completely (residency included) before anything is\n"
		 "written to etcd, then creates the rollout: one at a time per facility (409\n"
		 "rollout_in_progress). The canary nodes are pinned to the table first; each wave\n"
		 "must run it in sync within --sync-timeout, then bakes while the gates watch it\n"
		 "(apply_error, sync_timeout, out_of_sync, link_down, health, drop_rate). A "
		 "failed\n"
		 "gate aborts and pins the changed nodes back to the previous table; after the\n"
		 "last wave the table becomes the facility's desired one (docs/fleet.md)."},
	{.name = "status",
	 .run = cmd_fleet_status,
	 .summary = "the facility's nodes as they report themselves in etcd"},
	{.name = "rollout",
	 .run = cmd_fleet_rollout,
	 .summary = "the rollout in progress: state, wave, gates' options, nodes"},
	{.name = "abort",
	 .run = cmd_fleet_abort,
	 .summary = "abort the rollout in progress: changed nodes go back to the previous table"},
	{.name = "history",
	 .run = cmd_fleet_history,
	 .summary = "finished rollouts, newest first, with why they aborted"},
	{.name = "unpin",
	 .run = cmd_fleet_unpin,
	 .args = "NODE",
	 .min_args = 1,
	 .max_args = 1,
	 .summary = "delete NODE's pin when no active rollout owns it: it follows desired",
	 .detail = "A pin (pins/NODE) holds a node on its table instead of the facility's desired\n"
		   "one. A rollout deletes its own pins; one left behind (its rollout finished,\n"
		   "or written by hand) is stray: fleet status lists it, and the node raises an\n"
		   "alarm when it names a rollout (\"rollout\": null is an operator's: no alarm).\n"
		   "This deletes it, in one transaction with the pin and the active rollout as\n"
		   "read; the active rollout's own pins are refused (409 rollout_in_progress:\n"
		   "abort the rollout instead), so is an unreadable pin while a rollout runs\n"
		   "unless it names another rollout (docs/fleet.md)."},
	{0},
};

/* A command's option values live in struct ctl_call, by index. */
#define OPTS_FIT(a) _Static_assert(sizeof(a) / sizeof((a)[0]) <= CTL_MAX_OPTS + 1, #a " too long")
OPTS_FIT(global_opts);
OPTS_FIT(explain_opts);
OPTS_FIT(apply_opts);
OPTS_FIT(link_weight_opts);
OPTS_FIT(capture_opts);
OPTS_FIT(prefixes_opts);
OPTS_FIT(fleet_apply_opts);

/* The order here is the order of the listing. */
static const struct ctl_cmd commands[] = {
	{.name = "status",
	 .run = cmd_status,
	 .summary = "what regiond holds and regionfwd runs",
	 .detail = "Shows every link (admin state from the table, operational from its port),\n"
		   "every port (link, speed, errors, imissed, rx_nombuf), the mbuf pool and the\n"
		   "XDP filter's counters. Exits with the box's health: 0 healthy, 1 degraded\n"
		   "(regionfwd runs another generation, or an alarm is raised), 2 unreachable,\n"
		   "3 unknown (regiond answered with an error: a refused token, a 5xx)."},
	{.name = "show", .subs = show_cmds, .summary = "the running table, one section at a time"},
	{.name = "explain",
	 .run = cmd_explain,
	 .opts = explain_opts,
	 .args = "SRC DST PROTO [[SPORT] DPORT]",
	 .min_args = 3,
	 .max_args = 5,
	 .summary = "where would this packet go?",
	 .detail = "Runs regionfwd's own classifier on a synthetic packet against the running\n"
		   "generation; counters are not touched. With a payload or a name, also shows\n"
		   "which content rule matched. PROTO is tcp, udp, sctp, icmp, icmpv6 or a\n"
		   "number 0..255 (decimal digits alone); tcp, udp and sctp (6, 17, 132)\n"
		   "require DPORT here (the API would take port 0), other protocols take the\n"
		   "ports as 0 when none are given."},
	{.name = "counters",
	 .run = cmd_counters,
	 .opts = rate_opts,
	 .summary = "packets per link, region, service, policy; drops; events",
	 .detail = "Totals since regionfwd started (across generations). With --rate, also\n"
		   "packets/s and bits/s over a window: two reads --interval apart."},
	{.name = "top",
	 .run = cmd_top,
	 .raw_stdout = top_is_curses,
	 .opts = top_opts,
	 .summary = "a live view: rates per link, region, service, policy, drop reason",
	 .detail = "Refreshes every --interval: totals and rates (two reads of the counters),\n"
		   "the generation and its age, health, ports and mbufs. On a terminal keys\n"
		   "steer it: q quit, s sort (rate, total, name), / filter, c clear the filter,\n"
		   "l r v p d hide or show links, regions, services, policies, drops, + - the\n"
		   "interval. Not on a terminal: plain text frames; with -j one JSON object a\n"
		   "line (time, requested_interval_s, generation, generation_age_s, health,\n"
		   "rates with the measured interval_s, counters as GET /v1/counters)."},
	{.name = "drops",
	 .run = cmd_drops,
	 .opts = drop_rate_opts,
	 .summary = "the non-zero drop reasons, most frequent first (all with -j)"},
	{.name = "capture",
	 .run = cmd_capture,
	 .raw_stdout = capture_to_stdout,
	 .opts = capture_opts,
	 .summary = "capture packets at regionfwd, with their verdicts",
	 .detail =
		 "Copies the packets regionfwd handles, dropped ones included, with each one's\n"
		 "verdict (region, service, policy, link or drop reason, generation) as its\n"
		 "pcapng packet comment; with XDP filters, their drops too ('xdp drop rule=...').\n"
		 "Criteria combine (all must hold). Without -w, one line per packet (-j: one\n"
		 "JSON object). Ends at --count, --duration or Ctrl-C; what was lost (a full\n"
		 "capture ring) is said at the end. One capture at a time (capture_busy)."},
	{.name = "validate",
	 .run = cmd_validate,
	 .args = "FILE",
	 .min_args = 1,
	 .max_args = 1,
	 .summary = "check a table document, change nothing"},
	{.name = "diff",
	 .run = cmd_diff,
	 .args = "FILE",
	 .min_args = 1,
	 .max_args = 1,
	 .summary = "what a table document would change, and its impact"},
	{.name = "apply",
	 .run = cmd_apply,
	 .opts = apply_opts,
	 .args = "FILE",
	 .min_args = 1,
	 .max_args = 1,
	 .summary = "make a table document the running table",
	 .detail = "Sends expected_generation: --expected-generation N, the generation the\n"
		   "document was made from (read with 'regionctl status' beside 'show table'):\n"
		   "refused (stale_generation) when anyone changed the table since. Without\n"
		   "it, the generation current when regionctl starts, which only guards\n"
		   "against a change between that read and the PUT. Refused: diff and apply\n"
		   "again."},
	{.name = "confirm",
	 .run = cmd_confirm,
	 .args = "[GEN]",
	 .max_args = 1,
	 .summary = "keep what a --confirm-timeout change applied",
	 .detail = "With GEN (the generation the change answered with), that generation only:\n"
		   "refused (exit 1, nothing_to_confirm) when it is not the one awaiting\n"
		   "confirmation, e.g. because it was reverted at its deadline; said as\n"
		   "already confirmed, exit 0, when a confirm of it succeeded before.\n"
		   "Without GEN, whichever change awaits confirmation."},
	{.name = "rollback",
	 .run = cmd_rollback,
	 .args = "[GEN]",
	 .max_args = 1,
	 .opts = rollback_opts,
	 .summary = "back to an earlier generation (default: the previous one)",
	 .detail = "The old table becomes a new generation; it is validated again as any\n"
		   "table is loaded, so one that no longer loads is refused.\n"
		   "Its own residency rules are the ones it is held to: rules it lacks\n"
		   "that the running table has are said (warning: residency rule ...\n"
		   "removed), not refused, as for any table; --dry-run shows that, and\n"
		   "the whole change, before it runs."},
	{.name = "history", .run = cmd_history, .summary = "generations kept for rollback"},
	{.name = "link", .subs = link_cmds, .summary = "change one link: down, up, drain, weight"},
	{.name = "prefixes",
	 .subs = prefixes_cmds,
	 .summary = "add or remove a region's prefixes in batches, or list them"},
	{.name = "filter", .subs = filter_cmds, .summary = "the XDP filters regiond manages"},
	{.name = "fleet",
	 .subs = fleet_cmds,
	 .summary = "the facility's fleet in etcd: rollouts, nodes (fleet mode)"},
	{.name = "help",
	 .run = cmd_help,
	 .args = "[COMMAND [SUBCOMMAND]]",
	 .max_args = 2,
	 .summary = "this listing, or a command's help"},
	{0},
};

/* Its synopsis is written out: the socket and the URL exclude each other. */
static const struct ctl_cmd root = {
	.name = "regionctl",
	.args = "[-s SOCK | --url URL [--token-file F] [--ca F]\n"
		"                 [--cert F --key F]] [-j] COMMAND ...",
	.opts = global_opts,
	.subs = commands,
};

static int is_help(const char *a)
{
	return !strcmp(a, "--help") || !strcmp(a, "-h");
}

static int find_opt(const struct ctl_opt *op, const char *a)
{
	for (int i = 0; op && op[i].name; i++)
		if (!strcmp(a, op[i].name) || (op[i].alias && !strcmp(a, op[i].alias)))
			return i;
	return -1;
}

static const struct ctl_cmd *find_sub(const struct ctl_cmd *cmd, const char *name)
{
	for (const struct ctl_cmd *s = cmd->subs; s && s->name; s++)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

static void opt_synopsis(const struct ctl_opt *op, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s", op->alias ? op->alias : "", op->alias ? ", " : "",
		 op->name, op->arg ? " " : "", op->arg ? op->arg : "");
}

/* Options wrap under the command's name to keep the line within 80 columns. */
static void print_usage_line(FILE *f, const struct ctl_call *c)
{
	const struct ctl_cmd *cmd = cmd_of(c);
	char sep = ' ', word[64];
	int indent = (int)strlen("usage: regionctl"), col;

	fputs("usage: ", f);
	print_path(f, c);
	if (cmd == &root) {
		fprintf(f, " %s\n", root.args);
		return;
	}
	for (int i = 1; i <= c->depth; i++)
		indent += 1 + (int)strlen(c->path[i]->name);
	col = indent;
	for (const struct ctl_cmd *s = cmd->subs; s && s->name; s++, sep = '|')
		col += fprintf(f, "%c%s", sep, s->name);
	if (cmd->args)
		col += fprintf(f, " %s", cmd->args);
	for (const struct ctl_opt *op = cmd->opts; op && op->name; op++) {
		int n = snprintf(word, sizeof(word), "[%s%s%s]", op->name, op->arg ? " " : "",
				 op->arg ? op->arg : "");

		if (col + 1 + n > 80)
			col = fprintf(f, "\n%*s", indent, "") - 1;
		col += fprintf(f, " %s", word);
	}
	fputc('\n', f);
}

static void print_opts(FILE *f, const char *title, const struct ctl_opt *op)
{
	char syn[64];
	int w = 22; /* wider when one option needs it, so the texts stay aligned */

	if (op == NULL || op->name == NULL)
		return;
	for (const struct ctl_opt *o = op; o->name; o++) {
		opt_synopsis(o, syn, sizeof(syn));
		w = (int)strlen(syn) > w ? (int)strlen(syn) : w;
	}
	fprintf(f, "\n%s:\n", title);
	for (; op->name; op++) {
		opt_synopsis(op, syn, sizeof(syn));
		fprintf(f, "  %-*s  %s\n", w, syn, op->help);
		for (size_t i = 0, col = 0; i < op->nchoices; i++) {
			if (i == 0)
				col = (size_t)fprintf(f, "  %-*s  %s: ", w, "", op->arg);
			else if (col + strlen(op->choices[i]) + 2 > 80)
				col = (size_t)fprintf(f, ",\n  %-*s    ", w, "") - 2;
			else
				col += (size_t)fprintf(f, ", ");
			col += (size_t)fprintf(f, "%s", op->choices[i]);
		}
		if (op->nchoices)
			fputc('\n', f);
	}
}

static void print_help(FILE *f, const struct ctl_call *c)
{
	const struct ctl_cmd *cmd = cmd_of(c);
	char syn[64];

	print_usage_line(f, c);
	if (cmd == &root) {
		fprintf(f, "\ncommands:\n");
		for (const struct ctl_cmd *k = commands; k->name; k++) {
			if (k->subs == NULL)
				fprintf(f, "  %-16s  %s\n", k->name, k->summary);
			for (const struct ctl_cmd *s = k->subs; s && s->name; s++) {
				snprintf(syn, sizeof(syn), "%s %s", k->name, s->name);
				fprintf(f, "  %-16s  %s\n", syn, s->summary);
			}
		}
		print_opts(f, "global options (before or after the command)", root.opts);
		fprintf(f, "\n'regionctl COMMAND --help' or 'regionctl help COMMAND' describes "
			   "one command.\n"
			   "Exit: 0 done, 1 refused, 2 usage, 3 unreachable, 4 failed, 5 a write "
			   "unanswered.\n");
		return;
	}
	fprintf(f, "\n%s\n", cmd->summary);
	if (cmd->detail)
		fprintf(f, "\n%s\n", cmd->detail);
	if (cmd->subs) {
		fprintf(f, "\nsubcommands:\n");
		for (const struct ctl_cmd *s = cmd->subs; s->name; s++)
			fprintf(f, "  %-16s  %s\n", s->name, s->summary);
	}
	print_opts(f, "options", cmd->opts);
	fputs("\nglobal options (", f);
	for (const struct ctl_opt *op = root.opts; op->name; op++)
		if (!is_help(op->name))
			fprintf(f, "%s%s", op == root.opts ? "" : ", ",
				op->alias ? op->alias : op->name);
	fputs("): see 'regionctl --help'\n", f);
}

/* Whether an option's value (its .arg word) is a path, which may hold any
 * bytes; every other value is text (a name, a URL, a number). */
static int arg_is_path(const char *arg)
{
	static const char *const paths[] = {"F", "FILE", "SOCK", "DIR"};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (strcmp(arg, paths[i]) == 0)
			return 1;
	return 0;
}

/* The @n-th required word of @args ("REGION FILE", 1: FILE), to name what is missing. */
static void required_arg(const char *args, int n, char *buf, size_t len)
{
	int depth = 0;

	snprintf(buf, len, "argument");
	while (args && *args) {
		size_t w = strcspn(args, " ");

		if (depth == 0 && args[0] != '[' && n-- == 0) {
			snprintf(buf, len, "%.*s", (int)w, args);
			return;
		}
		for (size_t i = 0; i < w; i++)
			depth += (args[i] == '[') - (args[i] == ']');
		args += w + strspn(args + w, " ");
	}
}

/*
 * Parses argv into @c. Returns 0 to run the command, 1 to show its help, or EXIT_USAGE
 * (having said why). --help (or -h) anywhere means help, whatever else the line says: a
 * command asked about is never run.
 */
static int parse(int argc, char **argv, struct ctl_call *c, const char **gval)
{
	int help = 0, only_args = 0;
	const char *took = NULL, *taken = NULL; /* the last option that took a value */

	/* Not past '--': a link named "-h" is a name there ('link down -- -h'
	 * once printed the help and exited 0, nothing done). An option's value
	 * is not '--' ending the options (--comment -- --help): the scan steps
	 * through the commands and over option values as the parse below does. */
	{
		const struct ctl_cmd *at = &root, *sub;

		for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
			const char *a = argv[i];
			int k;

			if (is_help(a)) {
				help = 1;
			} else if (a[0] == '-' && a[1] != '\0' && !isdigit((unsigned char)a[1])) {
				if (at != &root && (k = find_opt(at->opts, a)) >= 0) {
					i += at->opts[k].arg != NULL;
				} else if ((k = find_opt(root.opts, a)) >= 0) {
					i += root.opts[k].arg != NULL;
				}
			} else if (at->subs && (sub = find_sub(at, a)) != NULL) {
				at = sub;
			}
		}
	}
	memset(c, 0, sizeof(*c));
	c->path[0] = &root;
	for (int i = 1; i < argc; i++) {
		const struct ctl_cmd *cmd = cmd_of(c), *sub;
		const char *a = argv[i], **vals = c->val;
		int k = -1;

		/* '--' ends the options: a name a table allows may begin with
		 * '-' ('link down -- -sg'). */
		if (!only_args && strcmp(a, "--") == 0) {
			only_args = 1;
			continue;
		}
		if (!only_args && is_help(a))
			continue;
		/* A lone '-' is stdin, and '-1' a number (no option begins with a
		 * digit): 'link weight L -1' was an "unknown option '-1'", not
		 * the weight's range. */
		if (!only_args && a[0] == '-' && a[1] != '\0' && !isdigit((unsigned char)a[1])) {
			if (cmd != &root)
				k = find_opt(cmd->opts, a);
			if (k < 0 && (k = find_opt(root.opts, a)) >= 0)
				vals = gval;
			if (k < 0) {
				if (help)
					continue;
				return usage_error(c, "unknown option '%s'", a);
			}
			const struct ctl_opt *op = vals == c->val ? &cmd->opts[k] : &root.opts[k];

			if (op->arg == NULL) {
				vals[k] = a;
			} else if (i + 1 < argc) {
				/* Twice: which one counts? The last once won in
				 * silence (-s /wrong -s right, two --comment). */
				if (vals[k] != NULL && !help)
					return usage_error(c, "option '%s' given twice", a);
				vals[k] = argv[++i];
				took = a;
				taken = vals[k];
				/* A value sent as a JSON string must be UTF-8 text:
				 * jansson makes no string of other bytes, and the
				 * field was left out without a word (a capture's
				 * --region then took every region's packets, a
				 * fleet apply its --canary-label). Only a path
				 * may be any bytes. */
				if (!arg_is_path(op->arg) &&
				    fwd_utf8_valid_len(vals[k], strlen(vals[k])) != strlen(vals[k]))
					return usage_error(
						c, "option '%s': its value is not UTF-8 text%s", a,
						strcmp(a, "--payload") == 0
							? " (give other bytes with --payload-hex)"
							: "");
			} else {
				if (help)
					continue;
				return usage_error(c, "option '%s' needs a value", a);
			}
		} else if (cmd->subs) {
			if ((sub = find_sub(cmd, a)) == NULL)
				return usage_error(c, "unknown %s '%s'",
						   cmd == &root ? "command" : "subcommand", a);
			c->path[++c->depth] = sub;
		} else if (c->npos < cmd->max_args && c->npos < CTL_MAX_ARGS) {
			c->pos[c->npos++] = a;
		} else if (!help) {
			return usage_error(c, "unexpected argument '%s'", a);
		}
	}
	if (help)
		return 1;
	if (cmd_of(c) == &root) {
		/* A bare listing once answered 'regionctl --timeout status':
		 * the option had taken the command as its value. */
		if (argc > 1) {
			if (took && find_sub(&root, taken))
				return usage_error(c,
						   "missing command (option '%s' took '%s' as its "
						   "value)",
						   took, taken);
			return usage_error(c, "missing command");
		}
		print_help(stderr, c);
		return EXIT_USAGE;
	}
	if (cmd_of(c)->subs) {
		char list[128] = "", *p = list;

		for (const struct ctl_cmd *s = cmd_of(c)->subs; s->name; s++)
			p += snprintf(p, sizeof(list) - (size_t)(p - list), "%s%s",
				      p == list ? "" : "|", s->name);
		return usage_error(c, "missing subcommand (%s)", list);
	}
	if (c->npos < cmd_of(c)->min_args) {
		char what[32];

		required_arg(cmd_of(c)->args, c->npos, what, sizeof(what));
		return usage_error(c, "missing argument %s", what);
	}
	/* A name, an address or a protocol goes to regiond as a JSON string:
	 * other bytes than UTF-8 once made no body at all ("a JSON object body
	 * is required" for 'explain \xff ...'). A FILE is a path: any bytes. */
	for (int i = 0; i < c->npos; i++) {
		char what[32];

		required_arg(cmd_of(c)->args, i, what, sizeof(what));
		if (strcmp(what, "FILE") != 0 &&
		    fwd_utf8_valid_len(c->pos[i], strlen(c->pos[i])) != strlen(c->pos[i]))
			return usage_error(c, "argument '%s' is not UTF-8 text", c->pos[i]);
	}
	return 0;
}

/* 'help COMMAND [SUBCOMMAND]' resolves its words through the same table as the dispatch. */
static int cmd_help(const struct opts *o, const struct ctl_call *c)
{
	struct ctl_call h = {.path = {&root}};

	(void)o;
	for (int i = 0; i < c->npos; i++) {
		const struct ctl_cmd *sub = find_sub(cmd_of(&h), c->pos[i]);

		if (cmd_of(&h)->subs == NULL)
			return usage_error(c, "'%s' has no subcommands: unexpected '%s'",
					   cmd_of(&h)->name, c->pos[i]);
		if (sub == NULL)
			return usage_error(&h, "unknown %s '%s'",
					   h.depth ? "subcommand" : "command", c->pos[i]);
		h.path[++h.depth] = sub;
	}
	print_help(stdout, &h);
	return 0;
}

static const char *global_val(const char **gval, const char *name)
{
	return gval[find_opt(global_opts, name)];
}

/* --url's scheme, and the TLS options that only https:// takes. @return 0
 * or EXIT_USAGE (said). */
static int endpoint(struct opts *o, const char **gval)
{
	const char *sep = o->url ? strstr(o->url, "://") : NULL;
	struct ctl_call top = {.path = {&root}};

	o->tls.ca_file = global_val(gval, "--ca");
	o->tls.cert_file = global_val(gval, "--cert");
	sent_credential = o->tls.cert_file != NULL || global_val(gval, "--token-file") != NULL;
	o->tls.key_file = global_val(gval, "--key");
	if (sep && strncmp(o->url, "https://", 8) == 0)
		o->https = 1;
	else if (sep && strncmp(o->url, "http://", 7) != 0)
		return usage_error(&top,
				   "--url takes http://HOST:PORT or https://HOST:PORT, not '%s'",
				   o->url);
	if (o->url) {
		char host[256], port[8], why[200];

		if (url_split(o->url, host, sizeof(host), port, sizeof(port), why, sizeof(why)))
			return usage_error(&top,
					   "--url takes http://HOST:PORT or https://HOST:PORT, not "
					   "'%s': %s",
					   o->url, why);
	}
	if (!o->https && (o->tls.ca_file || o->tls.cert_file || o->tls.key_file))
		return usage_error(&top, "--ca, --cert and --key are for --url https://HOST:PORT");
	if (!o->tls.cert_file != !o->tls.key_file)
		return usage_error(&top, "--cert and --key go together");
	return 0;
}

/* What a command printed must have reached its file: a full disk
 * (regionctl show table > backup.yaml) once exited 0 with the file empty
 * or cut. @rc: the command's exit; kept when it is not 0, else 4 (failed)
 * when stdout could not be written. A reader gone (a closed pipe) ends
 * regionctl by SIGPIPE before this, as it ends any command of a shell. */
static int stdout_checked(int rc)
{
	int e;

	errno = 0;
	if (fflush(stdout) != EOF && !ferror(stdout))
		return rc;
	e = fwd_stdout_errno() ? fwd_stdout_errno() : errno;
	if (!stdout_said && stdout_closed)
		fprintf(stderr, "regionctl: cannot write to stdout: it was closed\n");
	else if (!stdout_said)
		fprintf(stderr, "regionctl: cannot write to stdout%s%s\n", e ? ": " : "",
			e ? strerror(e) : "");
	return rc ? rc : CTL_EXIT_FAILED;
}

int main(int argc, char **argv)
{
	struct opts o = {.sock = getenv("REGIOND_SOCKET") ? getenv("REGIOND_SOCKET")
							  : "/run/regiond/api.sock"};
	const char *gval[CTL_MAX_OPTS] = {0};
	struct ctl_call c;
	char *token = NULL;
	int rc;

	/* A closed stdin, stdout or stderr (`>&-`) would be the next
	 * descriptor opened: regiond's socket once became stdout (a capture
	 * written back into its own connection), a capture file stderr (its
	 * messages written into the pcapng). Each is /dev/null from here; a
	 * capture to a closed stdout is refused. stdout's is opened for
	 * reading only, so that what a command prints fails as on a full
	 * disk (stdout_checked): a closed stdout once exited 0, its output
	 * gone. */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", fd == STDERR_FILENO ? O_WRONLY : O_RDONLY);

			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
			stdout_closed |= fd == STDOUT_FILENO;
		}
	/* Before anything is said: usage errors echo the arguments, and
	 * errors quote regiond's and documents' words. */
	if (fwd_stderr_escaped()) {
		/* stderr as it was: nothing to refuse a command for */
	}
	rc = parse(argc, argv, &c, gval);

	if (rc == 1) {
		print_help(stdout, &c);
		return stdout_checked(0);
	}
	if (rc)
		return rc;
	o.json = global_val(gval, "--json") != NULL;
	o.json_errors = o.json ? JERR_INDENTED : JERR_NONE;
	json_refusals = o.json;
	o.url = global_val(gval, "--url");
	if (global_val(gval, "-s"))
		o.sock = global_val(gval, "-s");
	if ((rc = endpoint(&o, gval)))
		return rc;
	{
		struct ctl_call top = {.path = {&root}};

		/* One place to talk to: --url silently won over -s, in either
		 * order; an empty path was "cannot reach regiond at :". */
		if (o.url && global_val(gval, "-s"))
			return usage_error(&top, "-s and --url name two places: give one");
		if (!o.url && o.sock[0] == '\0')
			return usage_error(&top, "%s is empty: give the API's socket",
					   global_val(gval, "-s") ? "-s" : "$REGIOND_SOCKET");
		/* A path no socket address holds is the command line's fault: it
		 * was "cannot reach regiond ... File name too long", exit 3, a
		 * fault a script may retry for ever (and status said 2). */
		if (!o.url && strlen(o.sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return usage_error(&top,
					   "%s takes a socket path under %zu bytes (a socket's "
					   "limit), not %zu",
					   global_val(gval, "-s") ? "-s" : "$REGIOND_SOCKET",
					   sizeof(((struct sockaddr_un *)0)->sun_path),
					   strlen(o.sock));
	}

	if (global_val(gval, "--timeout")) {
		const char *v = global_val(gval, "--timeout");
		struct ctl_call top = {.path = {&root}};
		unsigned long long s;

		/* strict: "5s", "-1" or "" bound nothing the operator meant */
		if (whole_number(v, 1, 86400, &s))
			return usage_error(&top, "--timeout takes seconds 1..86400, not '%s'", v);
		o.timeout_ms = (int)s * 1000;
	}
	if ((names_dir = global_val(gval, "--names-dir")) != NULL) {
		struct ctl_call top = {.path = {&root}};
		struct stat st;

		/* Absolute: the documents name it as it is written here. */
		if (names_dir[0] != '/')
			return usage_error(&top,
					   "--names-dir takes an absolute directory, not '%s'",
					   names_dir);
		/* It once said "takes an absolute directory" of one that was
		 * absolute but missing. */
		if (stat(names_dir, &st) < 0)
			return usage_error(&top, "--names-dir %s: %s", names_dir, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return usage_error(&top, "--names-dir %s: not a directory", names_dir);
	}
	if (global_val(gval, "--token-file")) {
		const char *tf = global_val(gval, "--token-file");
		char why[256];

		if ((token = ctl_file_read(tf, 0, NULL, NULL, why, sizeof(why))) == NULL) {
			fprintf(stderr, "regionctl: --token-file %s: %s\n", tf, why);
			return EXIT_USAGE;
		}
		token[strcspn(token, "\n")] = '\0';
		if (*token && token[strlen(token) - 1] == '\r') /* a CRLF file's */
			token[strlen(token) - 1] = '\0';
		/* sent, either would only read as unauthorized (regiond takes no
		 * token with a space or control byte), or worse, in the header */
		char bad[160];

		if (token[0] == '\0' || strpbrk(token, " \t") ||
		    fwd_text_check(token, strlen(token), "token", bad, sizeof(bad))) {
			fprintf(stderr,
				"regionctl: --token-file %s: its first line is %s: it holds the "
				"API token alone\n",
				tf,
				token[0] == '\0'	 ? "empty"
				: !strpbrk(token, " \t") ? "not a token (a control character)"
				: token[strcspn(token, " \t") +
					strspn(token + strcspn(token, " \t"), " \t")]
					? "two words (a line NAME TOKEN of regiond's file?)"
					: "a token and a space or tab after it (take it away)");
			free(token);
			return EXIT_USAGE;
		}
		o.token = token;
	}
	if (o.https) {
		char why[512];

		if ((o.tls_client = ctl_tls_client_new(&o.tls, why, sizeof(why))) == NULL) {
			fprintf(stderr, "regionctl: %s\n", why);
			free(token);
			return EXIT_USAGE;
		}
	}
	/* Text quotes regiond's words (an author, a comment, an alarm, a
	 * peer's reason), saved before any check refused what they hold:
	 * each control character reaches the terminal as \xNN. JSON goes
	 * out as its encoder writes it (C0 as \u00XX, the rest as UTF-8:
	 * it is for programs), and raw output as it is. */
	if (!o.json && !(cmd_of(&c)->raw_stdout && cmd_of(&c)->raw_stdout(&o, &c))) {
		if (fwd_stdout_escaped()) {
			/* stdout as it was: nothing to refuse a command for */
		}
	} else if (!isatty(STDOUT_FILENO) && fwd_stdout_plain()) {
		/* as it is (curses draws on a terminal's): a failed write is
		 * still said, without its reason */
	}
	rc = stdout_checked(cmd_of(&c)->run(&o, &c));
	ctl_tls_client_free(o.tls_client);
	free(token);
	return rc;
}
