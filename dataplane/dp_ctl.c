#define _GNU_SOURCE /* accept4 */
#include "dp_ctl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_ethdev.h>

#include "dp_ctx.h"
#include "dp_log.h"
#include "fwd_b64.h"
#include "fwd_doc.h"
#include "fwd_hs.h"

#define DP_CTL_MAX_CLIENTS 16
#define DP_CTL_PROTO 1

struct ctl_client {
	int fd;
	uint8_t hdr[4];
	size_t hdr_got;
	char *body;
	size_t need, got;
	char *out; /* response being written */
	size_t out_len, out_sent;
};

struct dp_ctl {
	struct dp_ctx *ctx;
	int fd;
	char path[108];
	struct ctl_client c[DP_CTL_MAX_CLIENTS];
};

static void client_close(struct ctl_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->body);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* A control_socket under a directory that does not exist yet (/run/regionfwd
 * after a boot) gets that one directory, mode 0750 and the control group, so
 * the group's members (regiond) can reach the socket and nobody else can.
 * Deeper missing paths are a configuration error, reported as such. */
static int make_socket_dir(const char *path, const char *group)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if (access(dir, F_OK) == 0)
		return 0;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		int err = errno;

		DP_LOG(ERR, "control socket %s: cannot create its directory %s: %s", path, dir,
		       strerror(err));
		return err;
	}
	if (group && group[0]) {
		struct group *gr = getgrnam(group);

		if (gr != NULL && chown(dir, (uid_t)-1, gr->gr_gid) < 0)
			DP_LOG(WARNING, "control socket directory %s: chown to group '%s': %s", dir,
			       group, strerror(errno));
	}
	return 0;
}

struct dp_ctl *dp_ctl_create(struct dp_ctx *ctx, const char *path, const char *group)
{
	struct dp_ctl *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int probe, err;

	if (ctl == NULL)
		return NULL;
	ctl->ctx = ctx;
	ctl->fd = -1;
	for (int i = 0; i < DP_CTL_MAX_CLIENTS; i++)
		ctl->c[i].fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		DP_LOG(ERR, "control socket path too long: %s", path);
		err = ENAMETOOLONG;
		goto fail;
	}
	strcpy(sa.sun_path, path);
	strcpy(ctl->path, path);
	/* A live regionfwd on this path must not lose its socket to us. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(probe);
		DP_LOG(ERR, "control socket %s is in use by a running process", path);
		err = EADDRINUSE;
		goto fail;
	}
	if (probe >= 0)
		close(probe);
	if ((err = make_socket_dir(path, group)) != 0)
		goto fail;
	unlink(path);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0 || bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, 0660) < 0 || listen(ctl->fd, 16) < 0) {
		err = errno;
		DP_LOG(ERR, "control socket %s: %s", path, strerror(err));
		goto fail;
	}
	if (group && group[0]) {
		struct group *gr = getgrnam(group);

		if (gr == NULL || chown(path, (uid_t)-1, gr->gr_gid) < 0) {
			err = gr ? errno : ENOENT;
			DP_LOG(ERR, "control socket %s: cannot give it to group '%s': %s", path, group,
			       gr ? strerror(err) : "no such group");
			goto fail;
		}
	}
	return ctl;
fail:
	dp_ctl_free(ctl);
	errno = err;
	return NULL;
}

void dp_ctl_free(struct dp_ctl *ctl)
{
	if (ctl == NULL)
		return;
	for (int i = 0; i < DP_CTL_MAX_CLIENTS; i++)
		client_close(&ctl->c[i]);
	if (ctl->fd >= 0) {
		close(ctl->fd);
		unlink(ctl->path);
	}
	free(ctl);
}

static json_t *error_reply(const char *code, const struct fwd_err *e)
{
	return json_pack("{s:i, s:b, s:{s:s, s:s, s:i, s:s, s:s}}", "v", DP_CTL_PROTO, "ok", 0,
			 "error", "code", code, "file", e->file, "line", (int)e->line, "path", e->path,
			 "reason", e->reason);
}

static json_t *simple_error(const char *code, const char *path, const char *reason)
{
	struct fwd_err e = {0};

	fwd_err_set(&e, "", 0, path, "%s", reason);
	return error_reply(code, &e);
}

static json_t *ok_reply(json_t *body)
{
	json_t *r = json_pack("{s:i, s:b}", "v", DP_CTL_PROTO, "ok", 1);

	if (body) {
		json_object_update(r, body);
		json_decref(body);
	}
	return r;
}

/* content_db: {"rules_hash": hex, <field>: base64, ...} from regiond. */
static json_t *parse_content_db(json_t *o, struct fwd_hs_dbs *d)
{
	const char *h = json_string_value(json_object_get(o, "rules_hash")), *k;
	char *end = NULL;
	json_t *v;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(o))
		return simple_error("bad_request", "content_db", "'content_db' must be an object");
	json_object_foreach(o, k, v) {
		int f;

		if (strcmp(k, "rules_hash") == 0)
			continue;
		f = fwd_schema_index(FWD_SC_CONTENT_FIELD, k); /* enum fwd_content_field */
		if (f < 0 || !json_is_string(v))
			return simple_error("bad_request", "content_db",
					    "'content_db' holds rules_hash and base64 strings for payload, tls_sni, http_host, dns_qname");
		d->bytes[f] = malloc(json_string_length(v) / 4 * 3 + 1);
		if (d->bytes[f] == NULL)
			return simple_error("internal", "content_db", "out of memory");
		long n = fwd_b64_decode(json_string_value(v), json_string_length(v), (uint8_t *)d->bytes[f]);

		if (n <= 0) {
			char path[40];

			snprintf(path, sizeof(path), "content_db.%s", k);
			return simple_error("bad_request", path, "not base64");
		}
		d->len[f] = (size_t)n;
	}
	if (h == NULL || strlen(h) != 16 || (d->rules_hash = strtoull(h, &end, 16), *end != '\0'))
		return simple_error("bad_request", "content_db.rules_hash", "'rules_hash' must be 16 hex digits");
	return NULL;
}

static json_t *op_push(struct dp_ctl *ctl, json_t *req)
{
	json_t *doc = json_object_get(req, "document"), *gen = json_object_get(req, "generation");
	json_t *name = json_object_get(req, "name");
	struct fwd_hs_dbs db = {0};
	const struct fwd_hs_dbs *shipped = NULL;
	struct fwd_err e = {0};
	char nm[128], hash[20];
	json_int_t id = 0;
	int rc;

	if (!json_is_string(doc))
		return simple_error("bad_request", "document", "'document' must be the table as a string");
	if (gen) {
		if (!json_is_integer(gen) || json_integer_value(gen) < 1)
			return simple_error("bad_request", "generation", "'generation' must be an integer >= 1");
		id = json_integer_value(gen);
	}
	if (name && (!json_is_string(name) || json_string_length(name) == 0 ||
		     json_string_length(name) > 100))
		return simple_error("bad_request", "name", "'name' must be a string of 1..100 bytes");
	snprintf(nm, sizeof(nm), "%s", name ? json_string_value(name) : "push");
	if (json_object_get(req, "content_db")) {
		json_t *bad = parse_content_db(json_object_get(req, "content_db"), &db);

		if (bad) {
			fwd_hs_free(&db);
			return bad;
		}
		shipped = &db;
	}
	rc = dp_ctx_apply(ctl->ctx, json_string_value(doc), json_string_length(doc), nm, (uint64_t)id,
			  shipped, &e);
	fwd_hs_free(&db);
	if (rc < 0)
		return error_reply("invalid_table", &e);
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)ctl->ctx->gen->hash);
	return ok_reply(json_pack("{s:I, s:s, s:b}", "generation", (json_int_t)ctl->ctx->gen->id,
				  "hash", hash, "noop", rc == 1));
}

static json_t *op_status(struct dp_ctl *ctl)
{
	struct dp_ctx *ctx = ctl->ctx;
	json_t *r = dp_ctx_report(ctx), *ports = json_array(), *out;

	for (uint16_t i = 0; i < ctx->node.nports; i++) {
		char mac[RTE_ETHER_ADDR_FMT_SIZE];

		rte_ether_format_addr(mac, sizeof(mac), &ctx->ports.mac[i]);
		json_array_append_new(ports, json_pack("{s:s, s:s, s:b, s:i, s:s}", "name",
						       ctx->node.ports[i].name, "device",
						       ctx->node.ports[i].device, "ingress",
						       ctx->node.ports[i].ingress, "port_id",
						       ctx->ports.port_id[i], "mac", mac));
	}
	out = json_pack("{s:O, s:O, s:O, s:o}", "generation", json_object_get(r, "generation"),
			"workers", json_object_get(r, "workers"), "packets", json_object_get(r, "packets"),
			"ports", ports);
	json_decref(r);
	return ok_reply(out);
}

static int parse_addr(json_t *v, uint8_t out[16], uint8_t *family)
{
	const char *s = json_string_value(v);

	memset(out, 0, 16);
	if (s == NULL)
		return -EINVAL;
	if (inet_pton(AF_INET, s, out) == 1) {
		*family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*family = 6;
		return 0;
	}
	return -EINVAL;
}

static int parse_port(json_t *req, const char *key, uint16_t *out)
{
	json_t *v = json_object_get(req, key);

	*out = 0;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535)
		return -EINVAL;
	*out = (uint16_t)json_integer_value(v);
	return 0;
}

#define EXPLAIN_MAX_PAYLOAD 9216 /* a jumbo frame's payload */

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Optional content inputs of explain: payload (text) or payload_hex, and the
 * field values tls_sni, http_host, dns_qname (lowercased, as extracted). */
static json_t *explain_content_args(json_t *req, struct dp_probe *p, uint8_t *payload,
				    char given[4][FWD_X_NAME_MAX])
{
	json_t *text = json_object_get(req, "payload"), *hex = json_object_get(req, "payload_hex");

	if (text && hex)
		return simple_error("bad_request", "payload", "give 'payload' or 'payload_hex', not both");
	if (text) {
		if (!json_is_string(text) || json_string_length(text) > EXPLAIN_MAX_PAYLOAD)
			return simple_error("bad_request", "payload", "'payload' must be a string of at most 9216 bytes");
		memcpy(payload, json_string_value(text), json_string_length(text));
		p->payload = payload;
		p->payload_len = (uint32_t)json_string_length(text);
	} else if (hex) {
		const char *h = json_string_value(hex);
		size_t n = json_string_length(hex);

		if (!json_is_string(hex) || n % 2 || n / 2 > EXPLAIN_MAX_PAYLOAD)
			return simple_error("bad_request", "payload_hex",
					    "'payload_hex' must be an even number of hex digits, at most 9216 bytes");
		for (size_t i = 0; i < n; i += 2) {
			int a = hexval(h[i]), b = hexval(h[i + 1]);

			if (a < 0 || b < 0)
				return simple_error("bad_request", "payload_hex", "'payload_hex' holds a non-hex digit");
			payload[i / 2] = (uint8_t)(a << 4 | b);
		}
		p->payload = payload;
		p->payload_len = (uint32_t)(n / 2);
	}
	for (int f = 0; f < FWD_CONTENT_FIELDS; f++) {
		const char *key = fwd_content_field_name(f);
		json_t *v = json_object_get(req, key);
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);

		if (f == FWD_CF_PAYLOAD || v == NULL) /* the payload came above */
			continue;
		if (s == NULL || n == 0 || n >= FWD_X_NAME_MAX || strlen(s) != n)
			return simple_error("bad_request", key, "must be a name of 1..255 bytes");
		for (size_t i = 0; i <= n; i++)
			given[f][i] = (char)tolower((unsigned char)s[i]);
		p->given[f] = given[f];
	}
	return NULL;
}

static json_t *op_explain(struct dp_ctl *ctl, json_t *req)
{
	struct dp_probe p = {0};
	uint8_t payload[EXPLAIN_MAX_PAYLOAD];
	char given[4][FWD_X_NAME_MAX];
	json_t *proto = json_object_get(req, "proto"), *r;
	struct fwd_err e = {0};
	uint8_t fam2;

	if (parse_addr(json_object_get(req, "src"), p.src, &p.family))
		return simple_error("bad_request", "src", "'src' must be an IPv4 or IPv6 address");
	if (parse_addr(json_object_get(req, "dst"), p.dst, &fam2))
		return simple_error("bad_request", "dst", "'dst' must be an IPv4 or IPv6 address");
	if (fam2 != p.family)
		return simple_error("bad_request", "dst", "'src' and 'dst' must be of one family");
	if (json_is_integer(proto) && json_integer_value(proto) >= 0 && json_integer_value(proto) <= 255) {
		p.proto = (uint8_t)json_integer_value(proto);
	} else if (json_is_string(proto)) {
		int n = fwd_proto_by_name(json_string_value(proto)); /* a PROTO word, not 'any' */

		if (n < 0)
			return simple_error("bad_request", "proto",
					    "'proto' must be tcp, udp, sctp, icmp, icmpv6 or 0..255");
		p.proto = (uint8_t)n;
	} else {
		return simple_error("bad_request", "proto",
				    "'proto' must be tcp, udp, sctp, icmp, icmpv6 or 0..255");
	}
	if (parse_port(req, "sport", &p.sport))
		return simple_error("bad_request", "sport", "'sport' must be 0..65535");
	if (parse_port(req, "dport", &p.dport))
		return simple_error("bad_request", "dport", "'dport' must be 0..65535");
	if ((r = explain_content_args(req, &p, payload, given)) != NULL)
		return r;
	/* The control thread owns ctx->gen: it alone frees generations. */
	r = dp_gen_explain(ctl->ctx->gen, &p, &e);
	if (r == NULL)
		return error_reply("bad_request", &e);
	return ok_reply(r);
}

static json_t *handle(struct dp_ctl *ctl, const char *body, size_t len)
{
	json_error_t je;
	json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je), *r;
	const char *op;
	char reason[256];

	if (req == NULL || !json_is_object(req)) {
		snprintf(reason, sizeof(reason), "request is not a JSON object%s%s",
			 req ? "" : ": ", req ? "" : je.text);
		json_decref(req);
		return simple_error("bad_request", "", reason);
	}
	if (json_integer_value(json_object_get(req, "v")) != DP_CTL_PROTO) {
		json_decref(req);
		return simple_error("unsupported_version", "v", "protocol version must be 1");
	}
	op = json_string_value(json_object_get(req, "op"));
	if (op && strcmp(op, "push") == 0)
		r = op_push(ctl, req);
	else if (op && strcmp(op, "status") == 0)
		r = op_status(ctl);
	else if (op && strcmp(op, "counters") == 0)
		r = ok_reply(dp_ctx_report(ctl->ctx));
	else if (op && strcmp(op, "explain") == 0)
		r = op_explain(ctl, req);
	else
		r = simple_error("unknown_op", "op", "'op' must be push, status, counters or explain");
	json_decref(req);
	return r;
}

/* Queue @r as the client's response frame. */
static void respond(struct ctl_client *c, json_t *r)
{
	size_t n = r ? json_dumpb(r, NULL, 0, JSON_COMPACT) : 0;

	c->out = malloc(n + 4);
	if (c->out && n) {
		json_dumpb(r, c->out + 4, n, JSON_COMPACT);
		c->out[0] = (char)(n >> 24);
		c->out[1] = (char)(n >> 16);
		c->out[2] = (char)(n >> 8);
		c->out[3] = (char)n;
		c->out_len = n + 4;
		c->out_sent = 0;
	}
	json_decref(r);
}

/* Read what is there; returns -1 when the connection must close. */
static int client_read(struct dp_ctl *ctl, struct ctl_client *c)
{
	for (;;) {
		ssize_t r;

		if (c->hdr_got < 4) {
			r = read(c->fd, c->hdr + c->hdr_got, 4 - c->hdr_got);
		} else {
			if (c->body == NULL) {
				c->need = (size_t)c->hdr[0] << 24 | (size_t)c->hdr[1] << 16 |
					  (size_t)c->hdr[2] << 8 | c->hdr[3];
				if (c->need == 0 || c->need > FWD_DOC_MAX_BYTES) {
					DP_LOG(WARNING, "control: frame of %zu bytes refused", c->need);
					return -1;
				}
				c->body = malloc(c->need);
				if (c->body == NULL)
					return -1;
				c->got = 0;
			}
			r = read(c->fd, c->body + c->got, c->need - c->got);
		}
		if (r == 0)
			return -1;
		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if (c->hdr_got < 4) {
			c->hdr_got += (size_t)r;
			continue;
		}
		c->got += (size_t)r;
		if (c->got == c->need) {
			respond(c, handle(ctl, c->body, c->need));
			free(c->body);
			c->body = NULL;
			c->hdr_got = 0;
			return c->out ? 0 : -1;
		}
	}
}

static int client_write(struct ctl_client *c)
{
	while (c->out_sent < c->out_len) {
		/* MSG_NOSIGNAL: a client that went away must not SIGPIPE the fast path. */
		ssize_t w = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);

		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->out_sent += (size_t)w;
	}
	free(c->out);
	c->out = NULL;
	return 0;
}

int dp_ctl_poll(struct dp_ctl *ctl, int timeout_ms)
{
	struct pollfd pfd[DP_CTL_MAX_CLIENTS + 1];
	int idx[DP_CTL_MAX_CLIENTS + 1], n = 0, rc;

	pfd[n] = (struct pollfd){.fd = ctl->fd, .events = POLLIN};
	idx[n++] = -1;
	for (int i = 0; i < DP_CTL_MAX_CLIENTS; i++) {
		if (ctl->c[i].fd < 0)
			continue;
		/* One request at a time per connection: read again once answered. */
		pfd[n] = (struct pollfd){.fd = ctl->c[i].fd, .events = ctl->c[i].out ? POLLOUT : POLLIN};
		idx[n++] = i;
	}
	rc = poll(pfd, (nfds_t)n, timeout_ms);
	if (rc <= 0)
		return rc < 0 && errno != EINTR ? -errno : 0;
	for (int k = 1; k < n; k++) {
		struct ctl_client *c = &ctl->c[idx[k]];

		if (pfd[k].revents & (POLLERR | POLLNVAL)) {
			client_close(c);
			continue;
		}
		if ((pfd[k].revents & (POLLIN | POLLHUP)) && !c->out && client_read(ctl, c) < 0) {
			client_close(c);
			continue;
		}
		if (c->out && client_write(c) < 0)
			client_close(c);
	}
	if (pfd[0].revents & POLLIN) {
		int fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			int i;

			for (i = 0; i < DP_CTL_MAX_CLIENTS && ctl->c[i].fd >= 0; i++)
				;
			if (i == DP_CTL_MAX_CLIENTS) {
				DP_LOG(WARNING, "control: too many connections, refusing one");
				close(fd);
			} else {
				ctl->c[i].fd = fd;
			}
		}
	}
	return 0;
}
