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

#define EXIT_REFUSED CTL_EXIT_REFUSED
#define EXIT_USAGE CTL_EXIT_USAGE
#define EXIT_UNREACHABLE CTL_EXIT_UNREACHABLE

struct opts {
	const char *sock, *url, *token;
	int json;
};

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
	fprintf(f, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", b ? strlen(b) : 0);
	if (b)
		fputs(b, f);
	fclose(f);
	for (size_t off = 0; off < qlen;) {
		ssize_t w = write(fd, req + off, qlen - off);

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

	fprintf(stderr, "regionctl: %s (%d): ", json_string_value(json_object_get(e, "code")) ?: "error",
		status);
	if (file && file[0])
		fprintf(stderr, "%s:", file);
	if (line)
		fprintf(stderr, "%d:", line);
	if ((file && file[0]) || line)
		fputc(' ', stderr);
	if (path && path[0])
		fprintf(stderr, "%s: ", path);
	fprintf(stderr, "%s\n", json_string_value(json_object_get(e, "reason")) ?: "no reason given");
	return (int)ctl_exit_code_of(json_string_value(json_object_get(e, "code")), status);
}

/* Call the API; on failure print why and return the exit code (> 0). */
static int call(const struct opts *o, const char *method, const char *path, json_t *body, json_t **out)
{
	int st = http(o, method, path, body, out, NULL);

	if (st < 0) {
		fprintf(stderr, "regionctl: cannot reach regiond at %s: %s\n", o->url ? o->url : o->sock,
			strerror(-st));
		return EXIT_UNREACHABLE;
	}
	if (st >= 400 || *out == NULL) {
		int rc = *out ? show_error(st, *out) : (fprintf(stderr, "regionctl: HTTP %d\n", st), EXIT_UNREACHABLE);

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

static int cmd_status(const struct opts *o)
{
	json_t *r, *g, *dp, *cf;
	char t[32];
	int rc = call(o, "GET", "/v1/status", NULL, &r);

	if (rc)
		return rc;
	if (o->json) {
		print_json(r);
		json_decref(r);
		return 0;
	}
	g = json_object_get(r, "generation");
	dp = json_object_get(r, "dataplane");
	when(ji(g, "time"), t, sizeof(t));
	printf("generation   %lld  %s  by %s  \"%s\"  (%s)\n", ji(g, "id"), js(g, "hash"), js(g, "author"),
	       js(g, "comment"), t);
	printf("dataplane    %s, %s", json_is_true(json_object_get(dp, "connected")) ? "connected" : "UNREACHABLE",
	       json_is_true(json_object_get(dp, "in_sync")) ? "runs it" : "OUT OF SYNC");
	if (json_is_object(json_object_get(dp, "status"))) {
		json_t *s = json_object_get(dp, "status"), *pk = json_object_get(s, "packets");

		printf(" (generation %lld, %lld workers, rx %lld tx %lld dropped %lld)",
		       ji(json_object_get(s, "generation"), "id"), ji(s, "workers"), ji(pk, "rx"),
		       ji(pk, "tx"), ji(pk, "dropped"));
	}
	putchar('\n');
	cf = json_object_get(r, "confirm");
	if (json_is_object(cf))
		printf("confirm      generation %lld reverts to %lld in %lld s unless confirmed\n",
		       ji(cf, "generation"), ji(cf, "revert_to"), ji(cf, "deadline") - (long long)time(NULL));
	json_decref(r);
	return 0;
}

static int cmd_show(const struct opts *o, const char *what)
{
	json_t *r, *m, *sec, *v;
	const char *k;
	size_t i;
	int rc;

	if (what == NULL || (strcmp(what, "regions") && strcmp(what, "services") && strcmp(what, "links") &&
			     strcmp(what, "policies") && strcmp(what, "table"))) {
		fprintf(stderr, "regionctl: show regions|services|links|policies|table\n");
		return EXIT_USAGE;
	}
	if ((rc = call(o, "GET", "/v1/table", NULL, &r)))
		return rc;
	m = json_object_get(r, "model");
	sec = strcmp(what, "table") ? json_object_get(m, what) : m;
	if (o->json) {
		print_json(sec);
	} else if (!strcmp(what, "table")) {
		fputs(json_string_value(json_object_get(r, "document")), stdout);
	} else if (!strcmp(what, "regions")) {
		printf("%-20s %8s  %s\n", "REGION", "PREFIXES", "FIRST PREFIXES");
		json_object_foreach(sec, k, v) {
			json_t *p = json_object_get(v, "prefixes");

			printf("%-20s %8zu ", k, json_array_size(p));
			for (i = 0; i < json_array_size(p) && i < 4; i++)
				printf(" %s", json_string_value(json_array_get(p, i)));
			printf("%s\n", json_array_size(p) > 4 ? " ..." : "");
		}
	} else if (!strcmp(what, "services")) {
		printf("%-20s %s\n", "SERVICE", "ENTRIES");
		json_object_foreach(sec, k, v) {
			printf("%-20s", k);
			json_array_foreach(v, i, m)
				printf(" %s", json_string_value(m));
			putchar('\n');
		}
	} else if (!strcmp(what, "links")) {
		printf("%-20s %-12s %-18s %5s %-5s %s\n", "LINK", "PORT", "NEXT HOP", "VLAN", "STATE", "TAGS");
		json_object_foreach(sec, k, v) {
			json_t *tags = json_object_get(v, "tags"), *t;

			printf("%-20s %-12s %-18s %5lld %-5s", k, js(v, "port"), js(v, "next_hop_mac"),
			       ji(v, "vlan"), js(v, "state"));
			json_array_foreach(tags, i, t)
				printf(" %s", json_string_value(t));
			putchar('\n');
		}
		sec = json_object_get(m, "link_groups");
		json_object_foreach(sec, k, v) {
			const char *mk;
			json_t *w;

			printf("group %-14s", k);
			json_object_foreach(json_object_get(v, "members"), mk, w)
				printf(" %s:%lld", mk, (long long)json_integer_value(w));
			putchar('\n');
		}
	} else {
		printf("%-20s %-16s %-7s %-20s %s\n", "REGION", "SERVICE", "ACTION", "TO", "MIRROR");
		json_array_foreach(sec, i, v)
			printf("%-20s %-16s %-7s %-20s %s\n", js(v, "region"), js(v, "service"), js(v, "action"),
			       js(v, "to"), js(v, "mirror"));
		v = json_object_get(m, "default");
		printf("%-20s %-16s %-7s %-20s %s\n", "(default)", "", js(v, "action"), js(v, "to"),
		       js(v, "mirror"));
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
		printf("  %-9s  %s\n", k, json_is_string(v) ? json_string_value(v) : "(none found)");
	json_array_foreach(json_object_get(c, "matches"), i, v)
		printf("  matched   %s (%s, %s)\n", js(v, "rule"), js(v, "field"), js(v, "action"));
	if (json_is_string(json_object_get(c, "verdict")))
		printf("  verdict   %s\n", js(c, "verdict"));
	else
		printf("  verdict   none: no content rule matched\n");
}

static int cmd_explain(const struct opts *o, int argc, char **argv)
{
	static const struct {
		const char *opt, *key;
	} content_opts[] = {{"--payload", "payload"}, {"--payload-hex", "payload_hex"},
			    {"--sni", "tls_sni"},     {"--host", "http_host"},
			    {"--qname", "dns_qname"}};
	json_t *b, *r, *extra = json_object();
	char *pos[5];
	int npos = 0, rc;

	/* Content options anywhere among the positional arguments. */
	for (int i = 0; i < argc; i++) {
		size_t k;

		for (k = 0; k < sizeof(content_opts) / sizeof(content_opts[0]); k++)
			if (strcmp(argv[i], content_opts[k].opt) == 0)
				break;
		if (k < sizeof(content_opts) / sizeof(content_opts[0])) {
			if (i + 1 >= argc) {
				fprintf(stderr, "regionctl: %s needs a value\n", argv[i]);
				json_decref(extra);
				return EXIT_USAGE;
			}
			json_object_set_new(extra, content_opts[k].key, json_string(argv[++i]));
		} else if (npos < 5) {
			pos[npos++] = argv[i];
		} else {
			npos = 6;
			break;
		}
	}
	argc = npos;
	argv = pos;
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "regionctl: explain SRC DST PROTO [SPORT] DPORT [--payload TEXT | --payload-hex HEX] [--sni NAME] [--host NAME] [--qname NAME]\n");
		json_decref(extra);
		return EXIT_USAGE;
	}
	b = json_pack("{s:s, s:s, s:s}", "src", argv[0], "dst", argv[1], "proto", argv[2]);
	json_object_update(b, extra);
	json_decref(extra);
	for (int i = 3; i < argc; i++) {
		char *end;
		long v = strtol(argv[i], &end, 10);

		if (*end || v < 0 || v > 65535) {
			fprintf(stderr, "regionctl: '%s' is not a port\n", argv[i]);
			json_decref(b);
			return EXIT_USAGE;
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
		printf("policy      %s: %s %s\n", js(r, "policy"), js(r, "action"), js(r, "target"));
		if (!json_is_null(json_object_get(r, "group")))
			printf("group       %s (flow hash %lld)\n", js(r, "group"), ji(r, "flow_hash"));
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

static int cmd_counters(const struct opts *o, int drops_only)
{
	static const char *const secs[] = {"links", "regions", "services", "policies", "drops", "events"};
	json_t *r, *v;
	const char *k;
	int rc = call(o, "GET", "/v1/counters", NULL, &r);

	if (rc)
		return rc;
	if (o->json) {
		print_json(drops_only ? json_object_get(r, "drops") : r);
		json_decref(r);
		return 0;
	}
	if (!drops_only) {
		json_t *pk = json_object_get(r, "packets");

		printf("generation %lld: rx %lld  tx %lld  dropped %lld\n",
		       ji(json_object_get(r, "generation"), "id"), ji(pk, "rx"), ji(pk, "tx"), ji(pk, "dropped"));
	}
	for (size_t s = drops_only ? 4 : 0; s < (drops_only ? 5 : 6); s++) {
		printf("\n%-28s %16s\n", secs[s], "packets");
		json_object_foreach(json_object_get(r, secs[s]), k, v) {
			long long n = json_is_object(v) ? ji(v, "packets") : (long long)json_integer_value(v);

			if (n || s < 4)
				printf("  %-26s %16lld\n", k, n);
		}
	}
	if (!drops_only && json_object_size(json_object_get(r, "content_rules"))) {
		printf("\n%-28s %-10s %-7s %-14s %12s %12s\n", "content rules", "field", "action", "to",
		       "matches", "flow_pkts");
		json_object_foreach(json_object_get(r, "content_rules"), k, v)
			printf("  %-26s %-10s %-7s %-14s %12lld %12lld\n", k, js(v, "field"), js(v, "action"),
			       json_is_string(json_object_get(v, "to")) ? js(v, "to") : "-", ji(v, "matches"),
			       ji(v, "flow_packets"));
	}
	json_decref(r);
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
	static const char *const secs[] = {"regions", "services", "links", "link_groups", "policies"};
	json_t *d = json_object_get(r, "diff"), *imp = json_object_get(r, "impact"), *v;
	size_t i;

	(void)unused;
	for (size_t s = 0; s < 5; s++) {
		json_t *sd = json_object_get(d, secs[s]);

		json_array_foreach(json_object_get(sd, "added"), i, v)
			printf("+ %s %s\n", secs[s], json_string_value(v));
		json_array_foreach(json_object_get(sd, "removed"), i, v)
			printf("- %s %s\n", secs[s], json_string_value(v));
		json_array_foreach(json_object_get(sd, "changed"), i, v) {
			if (json_object_get(v, "prefixes_added"))
				printf("~ %s %s: +%zu -%zu prefixes\n", secs[s], js(v, "name"),
				       json_array_size(json_object_get(v, "prefixes_added")),
				       json_array_size(json_object_get(v, "prefixes_removed")));
			else
				printf("~ %s %s\n", secs[s], js(v, "name"));
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
		printf("  %-20s %-16s %-24s -> %s\n", js(v, "region"), js(v, "service"), js(v, "before"),
		       js(v, "after"));
}

static int cmd_validate(const struct opts *o, const char *file, int diff)
{
	json_t *b;
	int rc = 0;

	if (file == NULL) {
		fprintf(stderr, "regionctl: %s FILE\n", diff ? "diff" : "validate");
		return EXIT_USAGE;
	}
	if ((b = doc_body(file, &rc)) == NULL)
		return rc;
	return show(o, "POST", "/v1/validate", b, diff ? print_diff : print_valid, file);
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
		printf("%s: no change, generation %lld already has this table\n", what, ji(g, "id"));
	if (json_object_get(r, "confirm_by"))
		printf("confirm within %lld s with 'regionctl confirm', or it reverts by itself\n",
		       ji(r, "confirm_by") - (long long)time(NULL));
}

static int cmd_apply(const struct opts *o, int argc, char **argv)
{
	const char *file = NULL, *comment = NULL, *author = getenv("USER");
	long confirm = 0;
	long long cur;
	json_t *b;
	int rc = 0;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--comment") && i + 1 < argc)
			comment = argv[++i];
		else if (!strcmp(argv[i], "--author") && i + 1 < argc)
			author = argv[++i];
		else if (!strcmp(argv[i], "--confirm-timeout") && i + 1 < argc) {
			char *end;

			/* Strict: a typo must not silently apply without a confirm window. */
			confirm = strtol(argv[++i], &end, 10);
			if (*end || end == argv[i] || confirm < 1) {
				fprintf(stderr, "regionctl: --confirm-timeout takes seconds 1..86400, not '%s'\n", argv[i]);
				return EXIT_USAGE;
			}
		}
		else if (file == NULL && argv[i][0] != '-')
			file = argv[i];
		else {
			fprintf(stderr, "regionctl: apply FILE [--comment C] [--author A] [--confirm-timeout S]\n");
			return EXIT_USAGE;
		}
	}
	if (file == NULL || confirm < 0 || confirm > 86400) {
		fprintf(stderr, "regionctl: apply FILE [--comment C] [--author A] [--confirm-timeout S]\n");
		return EXIT_USAGE;
	}
	if ((b = doc_body(file, &rc)) == NULL)
		return rc;
	if ((rc = current_generation(o, &cur))) {
		json_decref(b);
		return rc;
	}
	json_object_set_new(b, "expected_generation", json_integer(cur));
	if (comment)
		json_object_set_new(b, "comment", json_string(comment));
	if (author)
		json_object_set_new(b, "author", json_string(author));
	if (confirm)
		json_object_set_new(b, "confirm_timeout_s", json_integer(confirm));
	return show(o, "PUT", "/v1/table", b, print_gen, "apply");
}

static void print_post(json_t *r, const char *what)
{
	if (json_object_get(r, "confirmed"))
		printf("confirmed generation %lld\n", ji(r, "confirmed"));
	else if (json_object_get(r, "detached"))
		printf("%s\n", json_is_true(json_object_get(r, "detached")) ? "detached" : "not attached");
	else
		print_gen(r, what);
}

static int cmd_simple_post(const struct opts *o, const char *path, json_t *b, const char *what)
{
	return show(o, "POST", path, b, print_post, what);
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
		printf("%6lld  %-20s  %-16s  %-12s  %s\n", ji(v, "id"), t, js(v, "hash"), js(v, "author"),
		       js(v, "comment"));
	}
}

static int cmd_history(const struct opts *o)
{
	return show(o, "GET", "/v1/history", NULL, print_history, NULL);
}

static int cmd_filter(const struct opts *o, const char *sub)
{
	json_t *r, *v;
	const char *k;
	size_t i;
	int rc;

	if (sub == NULL || (strcmp(sub, "status") && strcmp(sub, "detach"))) {
		fprintf(stderr, "regionctl: filter status|detach\n");
		return EXIT_USAGE;
	}
	if (!strcmp(sub, "detach"))
		return cmd_simple_post(o, "/v1/filters/detach", json_object(), "detach");
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
		printf("%-16s %-10s %10lld  %s%s\n", js(v, "interface"), js(v, "mode"), ji(v, "program_id"),
		       js(v, "attached_as"), json_is_true(json_object_get(v, "ours")) ? "" : "  (NOT OURS)");
	printf("\n%-24s %-6s %14s %16s\n", "RULE", "ACTION", "PACKETS", "BYTES");
	json_object_foreach(json_object_get(r, "rules"), k, v)
		printf("%-24s %-6s %14lld %16lld\n", k, js(v, "action"), ji(v, "packets"), ji(v, "bytes"));
	printf("\n%-24s %14s\n", "VERDICT", "PACKETS");
	json_object_foreach(json_object_get(r, "counters"), k, v)
		printf("%-24s %14lld\n", k, (long long)json_integer_value(v));
	json_decref(r);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: regionctl [-s SOCK | --url http://HOST:PORT [--token-file F]] [-j] COMMAND\n"
		"  status                         what regiond holds and regionfwd runs\n"
		"  show regions|services|links|policies|table\n"
		"  explain SRC DST PROTO [SPORT] DPORT   where would this packet go?\n"
		"          [--payload TEXT|--payload-hex HEX] [--sni N] [--host N] [--qname N]\n"
		"  counters | drops               packets per link, region, service, policy; drops\n"
		"  validate FILE | diff FILE      check a table; what it would change\n"
		"  apply FILE [--comment C] [--author A] [--confirm-timeout S]\n"
		"  confirm                        keep what 'apply --confirm-timeout' applied\n"
		"  rollback [GEN]                 back to GEN (default: the previous generation)\n"
		"  history                        generations kept for rollback\n"
		"  filter status|detach           the XDP filters regiond manages\n"
		"-j prints the API's JSON. Exit: 0 done, 1 refused, 2 usage, 3 unreachable.\n");
}

int main(int argc, char **argv)
{
	struct opts o = {.sock = getenv("REGIOND_SOCKET") ? getenv("REGIOND_SOCKET") : "/run/regiond/api.sock"};
	char *token = NULL;
	int i = 1, rc;
	const char *cmd;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json"))
			o.json = 1;
		else if (!strcmp(argv[i], "-s") && i + 1 < argc)
			o.sock = argv[++i];
		else if (!strcmp(argv[i], "--url") && i + 1 < argc)
			o.url = argv[++i];
		else if (!strcmp(argv[i], "--token-file") && i + 1 < argc) {
			struct fwd_err e = {0};
			size_t len;

			if (fwd_read_file(argv[++i], &token, &len, &e)) {
				fprintf(stderr, "regionctl: %s\n", e.reason);
				return EXIT_USAGE;
			}
			token[strcspn(token, "\r\n")] = '\0';
			o.token = token;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[i++];
	if (!strcmp(cmd, "status"))
		rc = cmd_status(&o);
	else if (!strcmp(cmd, "show"))
		rc = cmd_show(&o, i < argc ? argv[i] : NULL);
	else if (!strcmp(cmd, "explain"))
		rc = cmd_explain(&o, argc - i, argv + i);
	else if (!strcmp(cmd, "counters"))
		rc = cmd_counters(&o, 0);
	else if (!strcmp(cmd, "drops"))
		rc = cmd_counters(&o, 1);
	else if (!strcmp(cmd, "validate") || !strcmp(cmd, "diff"))
		rc = cmd_validate(&o, i < argc ? argv[i] : NULL, cmd[0] == 'd');
	else if (!strcmp(cmd, "apply"))
		rc = cmd_apply(&o, argc - i, argv + i);
	else if (!strcmp(cmd, "confirm"))
		rc = cmd_simple_post(&o, "/v1/confirm", json_object(), "confirm");
	else if (!strcmp(cmd, "rollback")) {
		json_t *b = json_object();

		if (i < argc) {
			char *end;
			long long g = strtoll(argv[i], &end, 10);

			if (*end || g < 1) {
				fprintf(stderr, "regionctl: rollback [GEN]: '%s' is not a generation\n", argv[i]);
				json_decref(b);
				return EXIT_USAGE;
			}
			json_object_set_new(b, "generation", json_integer(g));
		}
		rc = cmd_simple_post(&o, "/v1/rollback", b, "rollback");
	} else if (!strcmp(cmd, "history"))
		rc = cmd_history(&o);
	else if (!strcmp(cmd, "filter"))
		rc = cmd_filter(&o, i < argc ? argv[i] : NULL);
	else {
		fprintf(stderr, "regionctl: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = EXIT_USAGE;
	}
	free(token);
	return rc;
}
