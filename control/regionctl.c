/*
 * regionctl - the operator CLI, a thin client of regiond's API (docs/api.md,
 * docs/regionctl.md). It holds no logic the API lacks: every command is one
 * or two API calls, printed as aligned tables, or as the API's JSON with -j.
 *
 * Exit codes (ctl_exit.h, the one mapping from reasons): 0 done; 1 refused
 * (invalid table, residency, conflict, not found); 2 usage; 3 regiond or
 * regionfwd unreachable; 4 regiond failed to carry it out.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl_exit.h"
#include "fwd_doc.h"
#include "fwd_names.h"
#include "fwd_report.h"
#include "fwd_table.h"

#define EXIT_REFUSED CTL_EXIT_REFUSED
#define EXIT_USAGE CTL_EXIT_USAGE
#define EXIT_UNREACHABLE CTL_EXIT_UNREACHABLE

struct opts {
	const char *sock, *url, *token;
	int json;
};

/*
 * Every command is one descriptor in the table near the end of this file:
 * the dispatch, the 'regionctl --help' listing, each command's --help and
 * every usage error are made from it, so a command cannot be added without
 * its help, and its help cannot say other than what the parser accepts.
 */
#define CTL_MAX_OPTS 8
#define CTL_MAX_ARGS 8

struct ctl_opt {
	const char *name, *alias; /* "--json", "-j" */
	const char *arg; /* its value's name; NULL for a flag */
	const char *key; /* the request body field its value goes to as is, if any */
	int content_field; /* or: the field named by content field N - 1 (fwd_schema.def) */
	const char *help;
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

/* A usage error names the command and the offending word, then where its usage is. */
__attribute__((format(printf, 2, 3))) static int usage_error(const struct ctl_call *c,
							     const char *fmt, ...)
{
	va_list ap;

	print_path(stderr, c);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nSee '", stderr);
	print_path(stderr, c);
	fputs(" --help'.\n", stderr);
	return EXIT_USAGE;
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

static int conn_open(const struct opts *o)
{
	int fd;

	if (o->url) { /* http://HOST:PORT */
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
		char host[256], *colon;
		const char *p = strncmp(o->url, "http://", 7) == 0 ? o->url + 7 : o->url;

		snprintf(host, sizeof(host), "%s", p);
		host[strcspn(host, "/")] = '\0';
		colon = strrchr(host, ':');
		if (colon == NULL)
			return -EINVAL;
		*colon = '\0';
		if (host[0] == '[') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		if (getaddrinfo(host, colon + 1, &hints, &ai))
			return -EHOSTUNREACH;
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			close(fd);
			fd = -1;
		}
		freeaddrinfo(ai);
		return fd < 0 ? -errno : fd;
	} else {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		if (strlen(o->sock) >= sizeof(sa.sun_path))
			return -ENAMETOOLONG;
		strcpy(sa.sun_path, o->sock);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			int e = errno;

			close(fd);
			return -e;
		}
		return fd;
	}
}

/* One HTTP/1.1 exchange (Connection: close). Returns the status, or -errno. */
static int http(const struct opts *o, const char *method, const char *path, json_t *body,
		json_t **out, char **raw)
{
	char *req = NULL, *resp = NULL, *b = body ? json_dumps(body, JSON_COMPACT) : NULL, *sep;
	size_t rlen = 0, cap = 0;
	int fd = conn_open(o), status = -EPROTO, n;
	FILE *f;
	size_t qlen;

	*out = NULL;
	if (raw)
		*raw = NULL;
	if (fd < 0) {
		free(b);
		return fd;
	}
	f = open_memstream(&req, &qlen);
	fprintf(f, "%s %s HTTP/1.1\r\nHost: regiond\r\nConnection: close\r\n", method, path);
	if (o->token)
		fprintf(f, "Authorization: Bearer %s\r\n", o->token);
	fprintf(f, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		b ? strlen(b) : 0);
	if (b)
		fputs(b, f);
	fclose(f);
	for (size_t off = 0; off < qlen;) {
		/* MSG_NOSIGNAL: a peer that closed the connection is "unreachable"
		 * (exit 3), not a SIGPIPE that kills regionctl without a word. */
		ssize_t w = send(fd, req + off, qlen - off, MSG_NOSIGNAL);

		if (w <= 0) {
			status = -errno;
			goto out;
		}
		off += (size_t)w;
	}
	for (;;) {
		ssize_t r;

		if (rlen + 65536 + 1 > cap) {
			cap = (rlen + 65536) * 2;
			resp = realloc(resp, cap);
		}
		r = read(fd, resp + rlen, cap - rlen - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		rlen += (size_t)r;
	}
	if (resp == NULL)
		goto out;
	resp[rlen] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &n) != 1 || (sep = strstr(resp, "\r\n\r\n")) == NULL)
		goto out;
	status = n;
	*out = json_loads(sep + 4, 0, NULL);
	if (raw)
		*raw = strdup(sep + 4);
out:
	close(fd);
	free(req);
	free(resp);
	free(b);
	return status;
}

static int show_error(int status, json_t *r)
{
	json_t *e = json_object_get(r, "error");
	const char *file = json_string_value(json_object_get(e, "file"));
	int line = (int)json_integer_value(json_object_get(e, "line"));
	const char *path = json_string_value(json_object_get(e, "path"));

	fprintf(stderr,
		"regionctl: %s (%d): ", json_string_value(json_object_get(e, "code")) ?: "error",
		status);
	if (file && file[0])
		fprintf(stderr, "%s:", file);
	if (line)
		fprintf(stderr, "%d:", line);
	if ((file && file[0]) || line)
		fputc(' ', stderr);
	if (path && path[0])
		fprintf(stderr, "%s: ", path);
	fprintf(stderr, "%s\n",
		json_string_value(json_object_get(e, "reason")) ?: "no reason given");
	return (int)ctl_exit_code_of(json_string_value(json_object_get(e, "code")), status);
}

/* Call the API; on failure print why and return the exit code (> 0). */
static int call(const struct opts *o, const char *method, const char *path, json_t *body,
		json_t **out)
{
	int st = http(o, method, path, body, out, NULL);

	if (st < 0) {
		fprintf(stderr, "regionctl: cannot reach regiond at %s: %s\n",
			o->url ? o->url : o->sock, strerror(-st));
		return EXIT_UNREACHABLE;
	}
	if (st >= 400 || *out == NULL) {
		int rc = *out ? show_error(st, *out)
			      : (fprintf(stderr, "regionctl: HTTP %d\n", st), EXIT_UNREACHABLE);

		json_decref(*out);
		*out = NULL;
		return rc;
	}
	return 0;
}

static void print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	putchar('\n');
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

static const char *js(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

static long long ji(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static void when(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

/* The exit code of 'status' for monitoring (docs/operations.md): 0 regionfwd
 * runs regiond's current generation and no alarm is raised; 1 degraded (out
 * of sync, or an alarm); 3 regionfwd unreachable, as every other command
 * says "unreachable" (ctl_exit.c) — 2 stays "usage". */
static int status_health(const json_t *r)
{
	const json_t *dp = json_object_get(r, "dataplane"),
		     *age = json_object_get(dp, "report_age_ms");

	/* regiond asks regionfwd every second: a report older than 10 s means
	 * regionfwd hangs (or regiond's loop waits on it) — not reachable. */
	if (!json_is_object(json_object_get(dp, "status")) || !json_is_integer(age) ||
	    json_integer_value(age) > 10000)
		return 3;
	if (!json_is_true(json_object_get(dp, "in_sync")) ||
	    json_is_string(json_object_get(r, "alarm")))
		return 1;
	return 0;
}

static int cmd_status(const struct opts *o, const struct ctl_call *c)
{
	json_t *r, *g, *dp, *cf;
	char t[32];
	int rc = call(o, "GET", "/v1/status", NULL, &r), health;

	(void)c;
	if (rc)
		return rc;
	health = status_health(r);
	if (o->json) {
		print_json(r);
		json_decref(r);
		return health;
	}
	g = json_object_get(r, "generation");
	dp = json_object_get(r, "dataplane");
	when(ji(g, "time"), t, sizeof(t));
	printf("generation   %lld  %s  by %s  \"%s\"  (%s)\n", ji(g, "id"), js(g, "hash"),
	       js(g, "author"), js(g, "comment"), t);
	printf("dataplane    %s, %s",
	       json_is_true(json_object_get(dp, "connected")) ? "connected" : "UNREACHABLE",
	       json_is_true(json_object_get(dp, "in_sync")) ? "runs it" : "OUT OF SYNC");
	if (json_is_object(json_object_get(dp, "status"))) {
		json_t *s = json_object_get(dp, "status"), *pk = json_object_get(s, "packets");

		printf(" (generation %lld, %lld workers, rx %lld tx %lld dropped %lld)",
		       ji(json_object_get(s, "generation"), "id"), ji(s, "workers"), ji(pk, "rx"),
		       ji(pk, "tx"), ji(pk, "dropped"));
		if (ji(dp, "report_age_ms") > 2000)
			printf(" [report %lld s old]", ji(dp, "report_age_ms") / 1000);
	}
	putchar('\n');
	cf = json_object_get(r, "confirm");
	if (json_is_object(cf))
		printf("confirm      generation %lld reverts to %lld in %lld s unless confirmed\n",
		       ji(cf, "generation"), ji(cf, "revert_to"),
		       ji(cf, "deadline") - (long long)time(NULL));
	if (json_is_string(json_object_get(r, "alarm")))
		printf("ALARM        %s\n", js(r, "alarm"));
	json_decref(r);
	return health;
}

/* One handler for every 'show' subcommand: the subcommand's name is the model's section. */
static int cmd_show(const struct opts *o, const struct ctl_call *c)
{
	const char *what = cmd_of(c)->name;
	json_t *r, *m, *sec, *v;
	const char *k;
	size_t i;
	int rc;

	if ((rc = call(o, "GET", "/v1/table", NULL, &r)))
		return rc;
	m = json_object_get(r, "model");
	sec = strcmp(what, "table") ? json_object_get(m, what) : m;
	if (c->npos == 1) { /* one region, service or link: the section with only it */
		json_t *one = json_object_get(sec, c->pos[0]);

		if (one == NULL) {
			fprintf(stderr, "regionctl: no %.*s '%s' in the running table\n",
				(int)strlen(what) - 1, what, c->pos[0]);
			json_decref(r);
			return EXIT_REFUSED;
		}
		sec = json_pack("{sO}", c->pos[0], one);
		json_object_set_new(m, what, sec); /* r owns it from here */
		json_object_set_new(m, FWD_KEY_NAME(DOC, LINK_GROUPS), json_object());
	}
	if (o->json) {
		print_json(sec);
	} else if (!strcmp(what, "table")) {
		fputs(json_string_value(json_object_get(r, "document")), stdout);
	} else if (!strcmp(what, FWD_KEY_NAME(DOC, REGIONS))) {
		printf("%-20s %8s  %s\n", "REGION", "PREFIXES", "FIRST PREFIXES");
		json_object_foreach(sec, k, v) {
			json_t *p = json_object_get(v, FWD_KEY_NAME(REGION, PREFIXES));

			printf("%-20s %8zu ", k, json_array_size(p));
			for (i = 0; i < json_array_size(p) && i < 4; i++)
				printf(" %s", json_string_value(json_array_get(p, i)));
			printf("%s\n", json_array_size(p) > 4 ? " ..." : "");
		}
	} else if (!strcmp(what, FWD_KEY_NAME(DOC, SERVICES))) {
		printf("%-20s %s\n", "SERVICE", "ENTRIES");
		json_object_foreach(sec, k, v) {
			printf("%-20s", k);
			json_array_foreach(v, i, m)
				printf(" %s", json_string_value(m));
			putchar('\n');
		}
	} else if (!strcmp(what, FWD_KEY_NAME(DOC, LINKS))) {
		printf("%-20s %-12s %-18s %5s %-5s %s\n", "LINK", "PORT", "NEXT HOP", "VLAN",
		       "STATE", "TAGS");
		json_object_foreach(sec, k, v) {
			json_t *tags = json_object_get(v, FWD_KEY_NAME(LINK, TAGS)), *t;

			printf("%-20s %-12s %-18s %5lld %-5s", k, js(v, FWD_KEY_NAME(LINK, PORT)),
			       js(v, FWD_KEY_NAME(LINK, NEXT_HOP_MAC)),
			       ji(v, FWD_KEY_NAME(LINK, VLAN)), js(v, FWD_KEY_NAME(LINK, STATE)));
			json_array_foreach(tags, i, t)
				printf(" %s", json_string_value(t));
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
		printf("%-20s %-16s %-7s %-20s %s\n", "REGION", "SERVICE", "ACTION", "TO",
		       "MIRROR");
		json_array_foreach(sec, i, v)
			printf("%-20s %-16s %-7s %-20s %s\n", js(v, FWD_KEY_NAME(POLICY, REGION)),
			       js(v, FWD_KEY_NAME(POLICY, SERVICE)),
			       js(v, FWD_KEY_NAME(POLICY, ACTION)), js(v, FWD_KEY_NAME(POLICY, TO)),
			       js(v, FWD_KEY_NAME(POLICY, MIRROR)));
		v = json_object_get(m, FWD_KEY_NAME(DOC, DEFAULT));
		printf("%-20s %-16s %-7s %-20s %s\n", "(default)", "",
		       js(v, FWD_KEY_NAME(POLICY, ACTION)), js(v, FWD_KEY_NAME(POLICY, TO)),
		       js(v, FWD_KEY_NAME(POLICY, MIRROR)));
	}
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
		printf(" %s", json_string_value(v));
	printf("\n");
	json_object_foreach(json_object_get(c, "extracted"), k, v)
		printf("  %-9s  %s\n", k,
		       json_is_string(v) ? json_string_value(v) : "(none found)");
	json_array_foreach(json_object_get(c, "matches"), i, v)
		printf("  matched   %s (%s, %s)\n", js(v, "rule"), js(v, "field"), js(v, "action"));
	if (json_is_string(json_object_get(c, "verdict")))
		printf("  verdict   %s\n", js(c, "verdict"));
	else
		printf("  verdict   none: no content rule matched\n");
}

static int cmd_explain(const struct opts *o, const struct ctl_call *c)
{
	const char *const *argv = c->pos;
	int argc = c->npos, rc;
	json_t *b, *r;

	b = json_pack("{s:s, s:s, s:s}", "src", argv[0], "dst", argv[1], "proto", argv[2]);
	opts_into_body(c, b);
	for (int i = 3; i < argc; i++) {
		char *end;
		long v = strtol(argv[i], &end, 10);

		if (*end || v < 0 || v > 65535) {
			json_decref(b);
			return usage_error(c, "'%s' is not a port", argv[i]);
		}
		json_object_set_new(b, argc == 5 && i == 3 ? "sport" : "dport", json_integer(v));
	}
	rc = call(o, "POST", "/v1/explain", b, &r);
	json_decref(b);
	if (rc)
		return rc;
	if (o->json) {
		print_json(r);
	} else {
		printf("generation  %lld (%s)\n", ji(r, "generation"), js(r, "hash"));
		printf("region      %s (matched %s)\n", js(r, "region"),
		       json_is_null(json_object_get(r, "prefix")) ? "no prefix" : js(r, "prefix"));
		printf("service     %s\n", js(r, "service"));
		printf("policy      %s: %s %s\n", js(r, "policy"), js(r, "action"),
		       js(r, "target"));
		if (!json_is_null(json_object_get(r, "group")))
			printf("group       %s (flow hash %lld)\n", js(r, "group"),
			       ji(r, "flow_hash"));
		if (!json_is_null(json_object_get(r, "link")))
			printf("leaves on   link %s, port %s\n", js(r, "link"), js(r, "port"));
		if (!json_is_null(json_object_get(r, "mirror")))
			printf("mirror      %s\n", js(r, "mirror"));
		if (!json_is_null(json_object_get(r, "drop_reason")))
			printf("dropped     %s\n", js(r, "drop_reason"));
		explain_content_print(json_object_get(r, "content"));
	}
	json_decref(r);
	return 0;
}

static void print_counts(const char *title, const struct fwd_report *r, enum fwd_report_sec sec)
{
	printf("\n%-28s %16s\n", title, "packets");
	for (uint32_t i = 0; i < r->sec[sec].n; i++)
		printf("  %-26s %16" PRIu64 "\n", r->sec[sec].rows[i].name,
		       r->sec[sec].rows[i].v[FWD_RV_PACKETS]);
}

/* The API's counter report, read through the one reader of its model. */
static int counters(const struct opts *o, int drops_only)
{
	static const enum fwd_report_sec secs[] = {FWD_RS_LINKS, FWD_RS_REGIONS, FWD_RS_SERVICES,
						   FWD_RS_POLICIES};
	struct fwd_report *c;
	struct fwd_err e;
	json_t *r;
	int rc = call(o, "GET", "/v1/counters", NULL, &r);

	if (rc)
		return rc;
	if (o->json) {
		print_json(drops_only ? json_object_get(r, "drops") : r);
		json_decref(r);
		return 0;
	}
	c = fwd_report_from_json(r, &e);
	json_decref(r);
	if (c == NULL) {
		fprintf(stderr,
			"regionctl: the counter report is not what the API promises: %s: %s\n",
			e.path, e.reason);
		return CTL_EXIT_FAILED;
	}
	if (!drops_only) {
		printf("generation %" PRIu64 ": rx %" PRIu64 "  tx %" PRIu64 "  dropped %" PRIu64
		       "\n",
		       c->gen.id, c->packets.rx, c->packets.tx, c->packets.dropped);
		for (size_t s = 0; s < sizeof(secs) / sizeof(secs[0]); s++)
			print_counts(fwd_report_sec_key(secs[s]), c, secs[s]);
	}
	printf("\n%-28s %16s\n", "drops", "packets");
	for (int i = 0; i < FWD_DROP_MAX; i++)
		if (c->drops[i])
			printf("  %-26s %16" PRIu64 "\n", fwd_drop_names[i], c->drops[i]);
	if (!drops_only) {
		printf("\n%-28s %16s\n", "events", "packets");
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
		}
	}
	fwd_report_free(c);
	return 0;
}

static json_t *doc_body(const char *file, int *rc)
{
	struct fwd_err e = {0};
	char *buf;
	size_t len;
	json_t *b;

	if (fwd_read_file(file, &buf, &len, &e)) {
		fprintf(stderr, "regionctl: %s: %s\n", file, e.reason);
		*rc = EXIT_USAGE;
		return NULL;
	}
	b = json_pack("{s:s%}", "document", buf, len);
	free(buf);
	return b;
}

static void print_valid(json_t *r, const char *file)
{
	(void)r;
	printf("%s: valid\n", file);
}

static void print_diff(json_t *r, const char *unused)
{
	static const enum fwd_schema secs[] = {FWD_F_DOC_REGIONS, FWD_F_DOC_SERVICES,
					       FWD_F_DOC_LINKS, FWD_F_DOC_LINK_GROUPS,
					       FWD_F_DOC_POLICIES};
	json_t *d = json_object_get(r, "diff"), *imp = json_object_get(r, "impact"), *v;
	size_t i;

	(void)unused;
	for (size_t s = 0; s < 5; s++) {
		json_t *sd = json_object_get(d, fwd_schema_name(secs[s]));

		json_array_foreach(json_object_get(sd, "added"), i, v)
			printf("+ %s %s\n", fwd_schema_name(secs[s]), json_string_value(v));
		json_array_foreach(json_object_get(sd, "removed"), i, v)
			printf("- %s %s\n", fwd_schema_name(secs[s]), json_string_value(v));
		json_array_foreach(json_object_get(sd, "changed"), i, v) {
			if (json_object_get(v, "prefixes_added"))
				printf("~ %s %s: +%zu -%zu prefixes\n", fwd_schema_name(secs[s]),
				       js(v, "name"),
				       json_array_size(json_object_get(v, "prefixes_added")),
				       json_array_size(json_object_get(v, "prefixes_removed")));
			else
				printf("~ %s %s\n", fwd_schema_name(secs[s]), js(v, "name"));
		}
	}
	if (json_is_true(json_object_get(d, "default_changed")))
		printf("~ default\n");
	if (json_is_true(json_object_get(d, "residency_changed")))
		printf("~ residency\n");
	printf("\nimpact: %zu (region, service) pairs change%s\n",
	       json_array_size(json_object_get(imp, "changes")),
	       json_is_true(json_object_get(imp, "truncated")) ? " (truncated)" : "");
	json_array_foreach(json_object_get(imp, "changes"), i, v)
		printf("  %-20s %-16s %-24s -> %s\n", js(v, "region"), js(v, "service"),
		       js(v, "before"), js(v, "after"));
}

static int cmd_counters(const struct opts *o, const struct ctl_call *c)
{
	(void)c;
	return counters(o, 0);
}

static int cmd_drops(const struct opts *o, const struct ctl_call *c)
{
	(void)c;
	return counters(o, 1);
}

static int validate(const struct opts *o, const char *file, int diff)
{
	json_t *b;
	int rc = 0;

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

static void print_gen(json_t *r, const char *what)
{
	json_t *g = json_object_get(r, "generation");

	if (json_is_true(json_object_get(r, "changed")))
		printf("%s: generation %lld (%s) is running\n", what, ji(g, "id"), js(g, "hash"));
	else
		printf("%s: no change, generation %lld already has this table\n", what,
		       ji(g, "id"));
	if (json_object_get(r, "confirm_by"))
		printf("confirm within %lld s with 'regionctl confirm', or it reverts by itself\n",
		       ji(r, "confirm_by") - (long long)time(NULL));
}

static int cmd_apply(const struct opts *o, const struct ctl_call *c)
{
	const char *file = c->pos[0], *timeout = opt_val(c, "--confirm-timeout");
	long confirm = 0;
	long long cur;
	json_t *b;
	int rc = 0;

	if (timeout) {
		char *end;

		/* Strict: a typo must not silently apply without a confirm window. */
		confirm = strtol(timeout, &end, 10);
		if (*end || end == timeout || confirm < 1 || confirm > 86400)
			return usage_error(c, "--confirm-timeout takes seconds 1..86400, not '%s'",
					   timeout);
	}
	if ((b = doc_body(file, &rc)) == NULL)
		return rc;
	if ((rc = current_generation(o, &cur))) {
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

static void print_post(json_t *r, const char *what)
{
	if (json_object_get(r, "confirmed"))
		printf("confirmed generation %lld\n", ji(r, "confirmed"));
	else if (json_object_get(r, "detached"))
		printf("%s\n",
		       json_is_true(json_object_get(r, "detached")) ? "detached" : "not attached");
	else
		print_gen(r, what);
}

static int simple_post(const struct opts *o, const char *path, json_t *b, const char *what)
{
	return show(o, "POST", path, b, print_post, what);
}

static int cmd_confirm(const struct opts *o, const struct ctl_call *c)
{
	(void)c;
	return simple_post(o, "/v1/confirm", json_object(), "confirm");
}

static int cmd_rollback(const struct opts *o, const struct ctl_call *c)
{
	json_t *b = json_object();

	if (c->npos) {
		char *end;
		long long g = strtoll(c->pos[0], &end, 10);

		if (*end || g < 1) {
			json_decref(b);
			return usage_error(c, "'%s' is not a generation", c->pos[0]);
		}
		json_object_set_new(b, "generation", json_integer(g));
	}
	return simple_post(o, "/v1/rollback", b, "rollback");
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
		printf("%6lld  %-20s  %-16s  %-12s  %s", ji(v, "id"), t, js(v, "hash"),
		       js(v, "author"), js(v, "comment"));
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
	return simple_post(o, "/v1/filters/detach", json_object(), "detach");
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
	printf("program %lld, generation %lld%s\n", ji(r, "program_id"), ji(r, "generation"),
	       json_is_true(json_object_get(r, "adopted")) ? " (adopted after a restart)" : "");
	printf("%-16s %-10s %10s  %s\n", "INTERFACE", "MODE", "PROGRAM", "ATTACHED AS");
	json_array_foreach(json_object_get(r, "interfaces"), i, v)
		printf("%-16s %-10s %10lld  %s%s\n", js(v, "interface"), js(v, "mode"),
		       ji(v, "program_id"), js(v, "attached_as"),
		       json_is_true(json_object_get(v, "ours")) ? "" : "  (NOT OURS)");
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

static int cmd_help(const struct opts *o, const struct ctl_call *c);

static const struct ctl_opt global_opts[] = {
	{.name = "-s",
	 .arg = "SOCK",
	 .help = "the API's socket ($REGIOND_SOCKET, else /run/regiond/api.sock)"},
	{.name = "--url",
	 .arg = "http://HOST:PORT",
	 .help = "the TCP API instead; every request there needs a token"},
	{.name = "--token-file", .arg = "F", .help = "the API token, for --url"},
	{.name = "--json", .alias = "-j", .help = "print the API's JSON instead of tables"},
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

static const struct ctl_opt apply_opts[] = {
	{.name = "--comment", .arg = "C", .key = "comment", .help = "why, kept in the history"},
	{.name = "--author",
	 .arg = "A",
	 .key = "author",
	 .help = "who, kept in the history (default: $USER)"},
	{.name = "--confirm-timeout",
	 .arg = "S",
	 .help = "revert by itself after S seconds (1..86400) unless confirmed"},
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
	 .summary = "links (port, next hop, VLAN, state, tags) and link groups",
	 .args = "[NAME]",
	 .max_args = 1,
	 .detail = "With NAME, that link only (no groups)."},
	{.name = "policies", .run = cmd_show, .summary = "policies, then the default"},
	{.name = "table",
	 .run = cmd_show,
	 .summary = "the table document as it was applied",
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

/* A command's option values live in struct ctl_call, by index. */
#define OPTS_FIT(a) _Static_assert(sizeof(a) / sizeof((a)[0]) <= CTL_MAX_OPTS + 1, #a " too long")
OPTS_FIT(global_opts);
OPTS_FIT(explain_opts);
OPTS_FIT(apply_opts);

/* The order here is the order of the listing. */
static const struct ctl_cmd commands[] = {
	{.name = "status",
	 .run = cmd_status,
	 .summary = "what regiond holds and regionfwd runs",
	 .detail = "Exits with the box's health: 0 healthy, 1 degraded (regionfwd runs another\n"
		   "generation, or an alarm is raised), 3 regionfwd unreachable."},
	{.name = "show", .subs = show_cmds, .summary = "the running table, one section at a time"},
	{.name = "explain",
	 .run = cmd_explain,
	 .opts = explain_opts,
	 .args = "SRC DST PROTO [SPORT] DPORT",
	 .min_args = 4,
	 .max_args = 5,
	 .summary = "where would this packet go?",
	 .detail = "Runs regionfwd's own classifier on a synthetic packet against the running\n"
		   "generation; counters are not touched. With a payload or a name, also shows\n"
		   "which content rule matched."},
	{.name = "counters",
	 .run = cmd_counters,
	 .summary = "packets per link, region, service, policy; drops; events"},
	{.name = "drops",
	 .run = cmd_drops,
	 .summary = "the non-zero drop reasons (all of them with -j)"},
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
	 .detail = "Sends the current generation as expected_generation: if someone else changed\n"
		   "the table in between, it is refused (stale_generation); diff and apply again."},
	{.name = "confirm",
	 .run = cmd_confirm,
	 .summary = "keep what 'apply --confirm-timeout' applied"},
	{.name = "rollback",
	 .run = cmd_rollback,
	 .args = "[GEN]",
	 .max_args = 1,
	 .summary = "back to an earlier generation (default: the previous one)",
	 .detail = "The old table becomes a new generation; it is validated again, so one that\n"
		   "breaks today's residency rules is refused."},
	{.name = "history", .run = cmd_history, .summary = "generations kept for rollback"},
	{.name = "filter", .subs = filter_cmds, .summary = "the XDP filters regiond manages"},
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
	.args = "[-s SOCK | --url http://HOST:PORT [--token-file F]] [-j] COMMAND ...",
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

	if (op == NULL || op->name == NULL)
		return;
	fprintf(f, "\n%s:\n", title);
	for (; op->name; op++) {
		opt_synopsis(op, syn, sizeof(syn));
		fprintf(f, "  %-22s  %s\n", syn, op->help);
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
			   "Exit: 0 done, 1 refused, 2 usage, 3 unreachable, 4 failed.\n");
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

/* The @n-th required word of @args ("SRC DST PROTO [SPORT] DPORT", 3: DPORT), to name what
 * is missing. */
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
	int help = 0;

	for (int i = 1; i < argc; i++)
		help |= is_help(argv[i]);
	memset(c, 0, sizeof(*c));
	c->path[0] = &root;
	for (int i = 1; i < argc; i++) {
		const struct ctl_cmd *cmd = cmd_of(c), *sub;
		const char *a = argv[i], **vals = c->val;
		int k = -1;

		if (is_help(a))
			continue;
		if (a[0] == '-') {
			if (cmd != &root)
				k = find_opt(cmd->opts, a);
			if (k < 0 && (k = find_opt(root.opts, a)) >= 0)
				vals = gval;
			if (k < 0) {
				if (help)
					continue;
				return usage_error(c, "unknown option '%s'", a);
			}
			if (vals == c->val ? cmd->opts[k].arg == NULL : root.opts[k].arg == NULL) {
				vals[k] = a;
			} else if (i + 1 < argc) {
				vals[k] = argv[++i];
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

int main(int argc, char **argv)
{
	struct opts o = {.sock = getenv("REGIOND_SOCKET") ? getenv("REGIOND_SOCKET")
							  : "/run/regiond/api.sock"};
	const char *gval[CTL_MAX_OPTS] = {0};
	struct ctl_call c;
	char *token = NULL;
	int rc = parse(argc, argv, &c, gval);

	if (rc == 1) {
		print_help(stdout, &c);
		return 0;
	}
	if (rc)
		return rc;
	o.json = global_val(gval, "--json") != NULL;
	o.url = global_val(gval, "--url");
	if (global_val(gval, "-s"))
		o.sock = global_val(gval, "-s");
	if (global_val(gval, "--token-file")) {
		struct fwd_err e = {0};
		size_t len;

		if (fwd_read_file(global_val(gval, "--token-file"), &token, &len, &e)) {
			fprintf(stderr, "regionctl: %s\n", e.reason);
			return EXIT_USAGE;
		}
		token[strcspn(token, "\r\n")] = '\0';
		o.token = token;
	}
	rc = cmd_of(&c)->run(&o, &c);
	free(token);
	return rc;
}
