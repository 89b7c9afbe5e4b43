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
#include <time.h>
#include <unistd.h>

#include <rte_ethdev.h>

#include "dp_cap.h"
#include "dp_ctx.h"
#include "dp_explain.h"
#include "dp_log.h"
#include "fwd_unixsock.h"
#include "fwd_doc.h"
#include "fwd_extract.h"
#include "fwd_hs.h"
#include "fwd_msg.h"
#include "fwd_clock.h"

#define DP_CTL_MAX_CLIENTS 16
/* Time limits (node config control_frame_timeout_ms, default 30 s, and
 * control_idle_timeout_ms, default 60 s): a frame (request in, reply out)
 * must move whole within that time of its first byte, so a client that
 * trickles or stops reading loses its connection, not a slot forever (a
 * 1 GiB push over a unix socket takes about a second); a connection with
 * nothing in flight is closed when idle that long, and is the first to go
 * when every slot is taken, so idle clients can never keep regiond (which
 * talks every second) out. */
/* The body buffer grows with what has arrived, not with what the header
 * announces: a peer that announces a large frame and stalls costs nothing. */
#define DP_CTL_BODY_STEP (64u * 1024u)
/* All connections' body buffers together: one table push at its largest
 * and every other connection at a small request's limit. A peer can make
 * regionfwd hold that much, never 16 pushes' worth. */
#define DP_CTL_BODY_BUDGET ((size_t)FWD_MSG_MAX_BODY + DP_CTL_MAX_CLIENTS * FWD_MSG_SMALL_BODY)
/* When every slot is busy, a new connection may take the place of the
 * slowest frame that moved at under DP_CTL_SLOW_BYTES_PER_S over its last
 * window of DP_CTL_SLOW_AFTER_MS (free_slot()): on a unix socket a real
 * frame moves at hundreds of MB/s, while a peer trickling a byte now and
 * then, or stalling after a burst, would otherwise hold its slot for
 * control_frame_timeout_ms and keep regiond out. */
#define DP_CTL_SLOW_AFTER_MS 1000
#define DP_CTL_SLOW_BYTES_PER_S (1024u * 1024u)
/* Lines a peer can cause (refused frames, evictions): at most this many a
 * second of each kind, then one line saying how many were left out, so a
 * connection flood cannot fill the disk with the log. */
#define DP_CTL_LOG_PER_S 5

struct ctl_client {
	int fd;
	uint8_t hdr[FWD_MSG_HDR_LEN];
	size_t hdr_got;
	struct fwd_msg_hdr h; /* decoded once hdr_got == FWD_MSG_HDR_LEN */
	uint8_t *body;
	size_t got, cap;
	uint8_t *out; /* reply frame being written */
	size_t out_len, out_sent;
	int close_after; /* the peer broke the framing: answer, then close */
	int64_t frame_start_ms; /* first byte of the frame in flight (request or reply), 0: none */
	/* The frame's pace over the last whole window of at least
	 * DP_CTL_SLOW_AFTER_MS (expire()): bytes a second, UINT64_MAX before a
	 * window closed. A recent window, not the average since the first
	 * byte, which a burst up front would keep high through a stall. */
	int64_t mark_ms;
	uint64_t mark_moved, rate;
	uint64_t served; /* requests answered on this connection */
	int64_t idle_since_ms; /* last time a frame completed, or the accept */
};

enum ctl_log_kind { CTL_LOG_REFUSED, CTL_LOG_TIMEOUT, CTL_LOG_EVICTED, CTL_LOG_BUSY, CTL_LOG_N };

struct ctl_log_limit {
	int64_t second; /* the second of the lines counted */
	unsigned lines, left_out;
};

struct dp_ctl {
	struct dp_ctx *ctx;
	int fd;
	char path[108];
	struct fwd_unix_keep keep; /* the socket file, bound again if taken away */
	int64_t kept_ms; /* when it was last checked */
	char sock_error[512]; /* status's socket_error: "" while it is reachable */
	size_t buffered; /* bytes of every client's body buffer */
	struct ctl_log_limit lim[CTL_LOG_N];
	struct ctl_client c[DP_CTL_MAX_CLIENTS];
};

/* Bytes of the frame in flight on @c moved so far (the request read, or
 * the reply sent). */
static uint64_t frame_moved(const struct ctl_client *c)
{
	return c->out ? c->out_sent : c->hdr_got + c->got;
}

/* A frame (request, or the reply after it) starts moving on @c now. */
static void frame_begin(struct ctl_client *c, int64_t now)
{
	c->frame_start_ms = c->mark_ms = now;
	c->mark_moved = 0;
	c->rate = UINT64_MAX;
}

/* Print the count of lines @l left out once its second is over, without
 * waiting for another line of its kind (a flood that stops). */
static void log_flush(struct ctl_log_limit *l, int64_t sec)
{
	if (l->left_out && sec != l->second) {
		DP_LOG(WARNING, "control: %u more lines like the last left out", l->left_out);
		l->left_out = 0;
	}
}

/* Whether a line of @kind may go to the log now (DP_CTL_LOG_PER_S); the
 * first line of a new second first says how many the last one left out. */
static int log_allowed(struct dp_ctl *ctl, enum ctl_log_kind kind)
{
	struct ctl_log_limit *l = &ctl->lim[kind];
	int64_t sec = fwd_mono_ms() / 1000;

	if (sec != l->second) {
		log_flush(l, sec);
		l->second = sec;
		l->lines = 0;
	}
	if (l->lines < DP_CTL_LOG_PER_S) {
		l->lines++;
		return 1;
	}
	l->left_out++;
	return 0;
}

#define CTL_LOG(ctl, kind, level, ...)                                                             \
	do {                                                                                       \
		if (log_allowed(ctl, kind))                                                        \
			DP_LOG(level, __VA_ARGS__);                                                \
	} while (0)

static void client_close(struct dp_ctl *ctl, struct ctl_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	ctl->buffered -= c->cap;
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

int dp_ctl_in_use(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int probe, used;

	if (strlen(path) >= sizeof(sa.sun_path))
		return 0; /* dp_ctl_create() refuses it, naming why */
	strcpy(sa.sun_path, path);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return 0;
	used = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(probe);
	return used;
}

struct dp_ctl *dp_ctl_create(struct dp_ctx *ctx, const char *path, const char *group)
{
	struct dp_ctl *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	gid_t gid = (gid_t)-1;
	const char *why = NULL;
	int err;

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
	/* A live regionfwd on this path must not lose its socket to us
	 * (regionfwd.c asked before touching any port; asked again here, as
	 * one may have started meanwhile). */
	if (dp_ctl_in_use(path)) {
		DP_LOG(ERR, "control socket %s is in use by a running process", path);
		err = EADDRINUSE;
		goto fail;
	}
	if ((err = make_socket_dir(path, group)) != 0)
		goto fail;
	if (group && group[0]) {
		struct group *gr = getgrnam(group);

		if (gr == NULL) {
			DP_LOG(ERR,
			       "control socket %s: cannot give it to group '%s': no such group",
			       path, group);
			err = ENOENT;
			goto fail;
		}
		gid = gr->gr_gid;
	}
	/* Replaces only a socket (one a stopped regionfwd left): a path that
	 * names anything else -- a table, a config, a typo's victim -- is
	 * refused, as regionfwd runs as root. The socket appears on @path only
	 * once it listens, so a client that waits for the file is not refused. */
	ctl->fd = fwd_unix_keep_listen(&ctl->keep, path, SOCK_NONBLOCK, 16, 0660, gid, &why);
	if (ctl->fd < 0) {
		err = -ctl->fd;
		ctl->fd = -1;
		DP_LOG(ERR, "control socket %s: %s%s%s", path, why,
		       err == EEXIST || err == EADDRINUSE ? "" : ": ",
		       err == EEXIST || err == EADDRINUSE ? "" : strerror(err));
		goto fail;
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
		client_close(ctl, &ctl->c[i]);
	if (ctl->fd >= 0) {
		close(ctl->fd);
		fwd_unix_keep_unlink(&ctl->keep); /* not another process's, bound since */
	}
	free(ctl);
}

/* A reply frame in *out: the message, or @err as an Error. */
static uint8_t *reply_msg(unsigned op, const ProtobufCMessage *m, size_t *len)
{
	return fwd_msg_pack(op, FWD_MSG_REPLY, m, len);
}

static uint8_t *reply_error(unsigned op, const struct fwd_err *err, size_t *len)
{
	return fwd_msg_pack_error(op, err, len);
}

/* The pusher's name goes into log lines, `show` and the save: a control
 * character in it would forge a line or drive the operator's terminal. */
#define PUSHER_NAME_RULE                                                                           \
	"'name' must be 1..100 bytes, none of them a control character, U+2028/U+2029 or a "       \
	"bidirectional control"

static int pusher_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 100)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (fwd_control_len(name + i, n - i))
			return 0;
	return 1;
}

static uint8_t *op_push(struct dp_ctl *ctl, const Regionfwd__Ctl__PushRequest *req, size_t *len)
{
	Regionfwd__Ctl__PushReply rep = REGIONFWD__CTL__PUSH_REPLY__INIT;
	struct fwd_hs_dbs db = {0};
	const struct fwd_hs_dbs *shipped = NULL;
	struct fwd_err e = {0};
	char nm[128];
	int rc;

	if (req->document.len == 0)
		fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "document",
			     "the push carries no table document");
	else if (!pusher_name_ok(req->name))
		fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "name", PUSHER_NAME_RULE);
	else if (req->generation > FWD_GEN_ID_MAX)
		fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "generation",
			     "%llu is past the largest generation id, %llu",
			     (unsigned long long)req->generation,
			     (unsigned long long)FWD_GEN_ID_MAX);
	else if (req->has_content && req->n_content_db > FWD_CONTENT_FIELDS)
		fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "content_db",
			     "%zu databases: there are %d content fields", req->n_content_db,
			     FWD_CONTENT_FIELDS);
	if (e.reason[0])
		return reply_error(REGIONFWD__CTL__OP__OP_PUSH, &e, len);
	snprintf(nm, sizeof(nm), "%s", req->name);
	if (req->has_content) {
		/* Borrowed, not copied: dp_ctx_apply deserializes them before
		 * the request is freed. */
		for (size_t f = 0; f < req->n_content_db; f++) {
			db.bytes[f] =
				req->content_db[f].len ? (char *)req->content_db[f].data : NULL;
			db.len[f] = req->content_db[f].len;
		}
		db.rules_hash = req->content_rules_hash;
		shipped = &db;
	}
	const struct dp_pusher by = {nm, req->controller};

	rc = dp_ctx_apply(ctl->ctx, (const char *)req->document.data, req->document.len, nm,
			  req->generation, req->generation_hash, shipped, req->deadline_mono_ns,
			  &by, &e);
	if (rc < 0) {
		if (e.reason_code == FWD_R_INVALID)
			e.reason_code = FWD_R_INVALID_TABLE;
		return reply_error(REGIONFWD__CTL__OP__OP_PUSH, &e, len);
	}
	/* From now on the table is the pusher's: SIGHUP refuses to reload
	 * the file (regionfwd.c). */
	snprintf(ctl->ctx->managed_by, sizeof(ctl->ctx->managed_by), "%s", nm);
	ctl->ctx->controller = req->controller;
	/* The next start resumes it (dp_saved.h): saved before the reply, so
	 * once regiond hears "runs" a restart of regionfwd runs it too. A
	 * table published was saved before its swap (dp_ctx_apply); a no-op
	 * is saved here, once, when its generation came from --table or
	 * another controller pushed it (the header names the new one). */
	if (rc == 1)
		dp_ctx_save_pushed(ctl->ctx, &by);
	rep.generation = ctl->ctx->pub.gen->id;
	rep.hash = ctl->ctx->pub.gen->hash;
	rep.noop = rc == 1;
	return reply_msg(REGIONFWD__CTL__OP__OP_PUSH, &rep.base, len);
}

static uint8_t *op_delta(struct dp_ctl *ctl, const Regionfwd__Ctl__DeltaRequest *req, size_t *len)
{
	Regionfwd__Ctl__PushReply rep = REGIONFWD__CTL__PUSH_REPLY__INIT;
	struct fwd_err e = {0};
	char nm[128];
	int rc;

	if (!pusher_name_ok(req->name)) {
		fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "name", PUSHER_NAME_RULE);
		return reply_error(REGIONFWD__CTL__OP__OP_DELTA, &e, len);
	}
	if (req->generation > FWD_GEN_ID_MAX) {
		fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "generation",
			     "%llu is past the largest generation id, %llu",
			     (unsigned long long)req->generation,
			     (unsigned long long)FWD_GEN_ID_MAX);
		return reply_error(REGIONFWD__CTL__OP__OP_DELTA, &e, len);
	}
	/* A chain is one controller's: its save names one. Another's delta,
	 * even on the same base (a second regiond holding the same table),
	 * is refused like one on another base, and its sender pushes whole,
	 * which takes regionfwd over in the open (the other regiond sees it). */
	if (req->controller != ctl->ctx->controller) {
		fwd_err_fail(&e, FWD_R_DELTA_BASE_MISMATCH, NULL, 0, "controller",
			     "the running generation was pushed by another controller "
			     "(%016llx, this delta's %016llx); push the generation whole",
			     (unsigned long long)ctl->ctx->controller,
			     (unsigned long long)req->controller);
		return reply_error(REGIONFWD__CTL__OP__OP_DELTA, &e, len);
	}
	snprintf(nm, sizeof(nm), "%s", req->name);
	const struct dp_pusher by = {nm, req->controller};

	rc = dp_ctx_apply_delta(ctl->ctx, req->changes.data, req->changes.len, nm, req->generation,
				req->base_hash, req->hash, req->deadline_mono_ns, &by, &e);
	if (rc < 0)
		return reply_error(REGIONFWD__CTL__OP__OP_DELTA, &e, len);
	snprintf(ctl->ctx->managed_by, sizeof(ctl->ctx->managed_by), "%s", nm);
	/* Its journal record was saved before its swap (dp_ctx_apply_delta). */
	rep.generation = ctl->ctx->pub.gen->id;
	rep.hash = ctl->ctx->pub.gen->hash;
	return reply_msg(REGIONFWD__CTL__OP__OP_DELTA, &rep.base, len);
}

/* Fill @gi from the totals' generation (strings borrowed from @tot). */
static void gen_msg(struct dp_ctx_totals *tot, Regionfwd__Ctl__GenerationInfo *gi)
{
	gi->id = tot->gen.id;
	gi->hash = tot->gen.hash;
	gi->source = tot->gen.source;
	gi->created_unix_ns = tot->gen.created_unix_ns;
	gi->regions = tot->gen.regions;
	gi->services = tot->gen.services;
	gi->links = tot->gen.links;
	gi->policies = tot->gen.policies;
	gi->prefixes_v4 = tot->gen.prefixes_v4;
	gi->prefixes_v6 = tot->gen.prefixes_v6;
}

static uint8_t *op_table(struct dp_ctl *ctl, size_t *len)
{
	struct dp_ctx *ctx = ctl->ctx;
	Regionfwd__Ctl__TableReply rep = REGIONFWD__CTL__TABLE_REPLY__INIT;
	Regionfwd__Ctl__GenerationInfo gi = REGIONFWD__CTL__GENERATION_INFO__INIT;
	struct dp_ctx_totals tot;

	dp_ctx_totals(ctx, &tot);
	gen_msg(&tot, &gi);
	rep.generation = &gi;
	/* The control thread is the document's only writer and is here. */
	rep.document.data = (uint8_t *)ctx->doc;
	rep.document.len = ctx->doc ? ctx->doc_len : 0;
	rep.managed_by = ctx->managed_by;
	rep.controller = ctx->controller;
	if (ctx->doc && ctx->doc_gen_hash != fwd_hash64(ctx->doc, ctx->doc_len))
		rep.document_hash = ctx->doc_gen_hash;
	/* Borrowed: the control thread is the journal's only writer too. */
	ProtobufCBinaryData *deltas = NULL;

	if (ctx->journal.n) {
		deltas = calloc(ctx->journal.n, sizeof(*deltas));
		if (deltas == NULL) {
			struct fwd_err e;

			fwd_err_fail(&e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
			return reply_error(REGIONFWD__CTL__OP__OP_TABLE, &e, len);
		}
		for (uint32_t i = 0; i < ctx->journal.n; i++) {
			deltas[i].data = ctx->journal.rec[i];
			deltas[i].len = ctx->journal.len[i];
		}
		rep.n_deltas = ctx->journal.n;
		rep.deltas = deltas;
	}
	uint8_t *out = reply_msg(REGIONFWD__CTL__OP__OP_TABLE, &rep.base, len);

	free(deltas);
	return out;
}

static uint8_t *op_status(struct dp_ctl *ctl, size_t *len)
{
	static const Regionfwd__Ctl__LinkStatus links[FWD_PORT_LINK_MAX] = {
		[FWD_PORT_LINK_UNKNOWN] = REGIONFWD__CTL__LINK_STATUS__LINK_UNKNOWN,
		[FWD_PORT_LINK_DOWN] = REGIONFWD__CTL__LINK_STATUS__LINK_DOWN,
		[FWD_PORT_LINK_UP] = REGIONFWD__CTL__LINK_STATUS__LINK_UP,
	};
	struct dp_ctx *ctx = ctl->ctx;
	const struct fwd_table *t = ctx->pub.gen->table; /* ours: the control thread's */
	Regionfwd__Ctl__StatusReply rep = REGIONFWD__CTL__STATUS_REPLY__INIT;
	Regionfwd__Ctl__GenerationInfo gi = REGIONFWD__CTL__GENERATION_INFO__INIT;
	Regionfwd__Ctl__Packets pk = REGIONFWD__CTL__PACKETS__INIT;
	Regionfwd__Ctl__Mbufs mb = REGIONFWD__CTL__MBUFS__INIT;
	Regionfwd__Ctl__Port ports[DP_MAX_PORTS], *pp[DP_MAX_PORTS];
	Regionfwd__Ctl__PortStats stats[DP_MAX_PORTS];
	Regionfwd__Ctl__Link *lk = calloc(t->nlinks ? t->nlinks : 1, sizeof(*lk));
	Regionfwd__Ctl__Link **lp = calloc(t->nlinks ? t->nlinks : 1, sizeof(*lp));
	char macs[DP_MAX_PORTS][RTE_ETHER_ADDR_FMT_SIZE];
	struct dp_ctx_totals tot;
	uint8_t *out;

	if (lk == NULL || lp == NULL) {
		struct fwd_err e;

		free(lk);
		free(lp);
		fwd_err_fail(&e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return reply_error(REGIONFWD__CTL__OP__OP_STATUS, &e, len);
	}
	dp_ctx_totals(ctx, &tot);
	rep.managed_by = ctx->managed_by;
	rep.controller = ctx->controller;
	rep.save_error = ctx->save_error;
	rep.socket_error = ctl->sock_error;
	gen_msg(&tot, &gi);
	pk.rx = tot.rx;
	pk.rx_bytes = tot.rx_bytes;
	pk.tx = tot.tx;
	pk.tx_bytes = tot.tx_bytes;
	pk.dropped = tot.dropped;
	for (uint16_t i = 0; i < ctx->node.nports; i++) {
		struct dp_port_health h;

		regionfwd__ctl__port__init(&ports[i]);
		rte_ether_format_addr(macs[i], sizeof(macs[i]), &ctx->ports.mac[i]);
		ports[i].name = ctx->node.ports[i].name;
		ports[i].device = ctx->node.ports[i].device;
		ports[i].ingress = ctx->node.ports[i].ingress;
		ports[i].port_id = ctx->ports.port_id[i];
		ports[i].mac = macs[i];
		dp_port_health(&ctx->ports, i, &h);
		ports[i].link = links[h.link];
		ports[i].speed_mbps = h.speed_mbps;
		ports[i].full_duplex = h.full_duplex;
		if (h.has_stats) {
			regionfwd__ctl__port_stats__init(&stats[i]);
			stats[i].ipackets = h.stats.ipackets;
			stats[i].opackets = h.stats.opackets;
			stats[i].imissed = h.stats.imissed;
			stats[i].ierrors = h.stats.ierrors;
			stats[i].oerrors = h.stats.oerrors;
			stats[i].rx_nombuf = h.stats.rx_nombuf;
			ports[i].stats = &stats[i];
		}
		pp[i] = &ports[i];
	}
	for (uint16_t i = 0; i < t->nlinks; i++) {
		regionfwd__ctl__link__init(&lk[i]);
		lk[i].name = (char *)t->links[i].name;
		lk[i].port = (char *)t->links[i].port;
		lk[i].state = (char *)fwd_link_state_name(&t->links[i]);
		lp[i] = &lk[i];
	}
	if (ctx->pool) {
		mb.pool = ctx->pool->size;
		mb.in_use = rte_mempool_in_use_count(ctx->pool);
		rep.mbufs = &mb;
	}
	rep.generation = &gi;
	rep.workers = ctx->nworkers;
	rep.packets = &pk;
	rep.n_ports = ctx->node.nports;
	rep.ports = pp;
	rep.n_links = t->nlinks;
	rep.links = lp;
	out = reply_msg(REGIONFWD__CTL__OP__OP_STATUS, &rep.base, len);
	free(lk);
	free(lp);
	return out;
}

static uint8_t *op_counters(struct dp_ctl *ctl, size_t *len)
{
	Regionfwd__Ctl__CounterReport rep = REGIONFWD__CTL__COUNTER_REPORT__INIT;
	struct fwd_report *r = dp_ctx_report(ctl->ctx);
	json_t *j = r ? fwd_report_json(r) : NULL;
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	uint8_t *out;

	json_decref(j);
	fwd_report_free(r);
	if (text == NULL) {
		struct fwd_err e;

		fwd_err_fail(&e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return reply_error(REGIONFWD__CTL__OP__OP_COUNTERS, &e, len);
	}
	rep.json.data = (uint8_t *)text;
	rep.json.len = strlen(text);
	out = reply_msg(REGIONFWD__CTL__OP__OP_COUNTERS, &rep.base, len);
	free(text);
	return out;
}

#define EXPLAIN_MAX_PAYLOAD 9216 /* a jumbo frame's payload, as regiond allows */

static uint8_t *op_explain(struct dp_ctl *ctl, const Regionfwd__Ctl__ExplainRequest *req,
			   size_t *len)
{
	Regionfwd__Ctl__ExplainReply rep = REGIONFWD__CTL__EXPLAIN_REPLY__INIT;
	struct dp_probe p = {0};
	struct fwd_err e = {0};
	char given[FWD_CONTENT_FIELDS][FWD_X_NAME_MAX];
	json_t *r;
	char *text;
	uint8_t *out;

	/* regiond checked all of this; a frame is still outside input. */
	if ((req->src.len != 4 && req->src.len != 16) || req->dst.len != req->src.len)
		fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "src",
			     "addresses of 4 or 16 bytes, one family");
	else if (req->proto > 255 || req->sport > 65535 || req->dport > 65535)
		fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "proto",
			     "proto 0..255, ports 0..65535");
	else if (req->payload.len > EXPLAIN_MAX_PAYLOAD)
		fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "payload", "at most 9216 bytes");
	else if (req->n_given > FWD_CONTENT_FIELDS)
		fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "given", "one name per content field");
	for (size_t f = 0; e.reason[0] == '\0' && f < req->n_given; f++) {
		char name[FWD_X_NAME_MAX];

		if (strlen(req->given[f]) >= FWD_X_NAME_MAX) {
			fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "given",
				     "names of at most 255 bytes");
			break;
		}
		/* The explanation quotes the names back in JSON: valid UTF-8 only,
		 * or they would silently drop out of the answer. */
		strcpy(name, req->given[f]);
		fwd_utf8_clean(name);
		if (strcmp(name, req->given[f]) != 0) {
			fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "given",
				     "names must be valid UTF-8");
			break;
		}
		/* Read as the field's extractor reads it from a packet
		 * (regiond did; another client of the socket may not): a
		 * name no packet yields would explain what cannot happen. */
		given[f][0] = '\0';
		if (f != FWD_CF_PAYLOAD && req->given[f][0] &&
		    fwd_extract_given((int)f, req->given[f], strlen(req->given[f]), given[f],
				      sizeof(given[f])) < 0)
			fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "given",
				     "a name its field's extractor does not read from a packet");
		else if (f != FWD_CF_PAYLOAD && req->given[f][0] &&
			 !fwd_extract_carried((int)f, req->proto))
			fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "given",
				     "a name no packet of the protocol carries");
	}
	if (e.reason[0])
		return reply_error(REGIONFWD__CTL__OP__OP_EXPLAIN, &e, len);
	p.family = req->src.len == 4 ? 4 : 6;
	memcpy(p.src, req->src.data, req->src.len);
	memcpy(p.dst, req->dst.data, req->dst.len);
	p.proto = (uint8_t)req->proto;
	p.sport = (uint16_t)req->sport;
	p.dport = (uint16_t)req->dport;
	if (req->has_payload) {
		p.payload = req->payload.data;
		p.payload_len = (uint32_t)req->payload.len;
	}
	for (size_t f = 0; f < req->n_given; f++)
		if (f != FWD_CF_PAYLOAD && given[f][0])
			p.given[f] = given[f];
	/* The control thread owns ctx->pub.gen: it alone frees generations. */
	r = dp_explain(ctl->ctx->pub.gen, ctl->ctx->pub.port_down, &p, &e);
	if (r == NULL) {
		e.reason_code = FWD_R_BAD_REQUEST;
		return reply_error(REGIONFWD__CTL__OP__OP_EXPLAIN, &e, len);
	}
	text = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	if (text == NULL) {
		fwd_err_fail(&e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return reply_error(REGIONFWD__CTL__OP__OP_EXPLAIN, &e, len);
	}
	rep.json.data = (uint8_t *)text;
	rep.json.len = strlen(text);
	out = reply_msg(REGIONFWD__CTL__OP__OP_EXPLAIN, &rep.base, len);
	free(text);
	return out;
}

static uint8_t *op_capture_start(struct dp_ctl *ctl, const Regionfwd__Ctl__CaptureStart *req,
				 size_t *len)
{
	Regionfwd__Ctl__CaptureStarted rep = REGIONFWD__CTL__CAPTURE_STARTED__INIT;
	struct dp_ctx *ctx = ctl->ctx;
	struct dp_cap_req q = {.owner = req->owner,
			       .drops_only = req->drops_only,
			       .reason = req->reason,
			       .region = req->region,
			       .service = req->service,
			       .link = req->link,
			       .filter = req->filter,
			       .count = req->count};
	struct fwd_err e = {0};

	if (ctx->cap == NULL) {
		fwd_err_fail(&e, FWD_R_INTERNAL, NULL, 0, "", "this regionfwd has no capture");
		return reply_error(REGIONFWD__CTL__OP__OP_CAPTURE_START, &e, len);
	}
	/* The control thread owns ctx->pub.gen: names are checked against it. */
	if (dp_cap_start(ctx->cap, &ctx->pub, ctx->pub.gen, &q, &rep.id, &rep.interfaces, &e))
		return reply_error(REGIONFWD__CTL__OP__OP_CAPTURE_START, &e, len);
	return reply_msg(REGIONFWD__CTL__OP__OP_CAPTURE_START, &rep.base, len);
}

static uint8_t *op_capture_read(struct dp_ctl *ctl, unsigned op,
				const Regionfwd__Ctl__CaptureRead *req, size_t *len)
{
	Regionfwd__Ctl__CaptureData rep = REGIONFWD__CTL__CAPTURE_DATA__INIT;
	struct dp_ctx *ctx = ctl->ctx;
	struct dp_cap_chunk ch;
	struct fwd_err e = {0};
	uint8_t *out;

	if (ctx->cap == NULL || dp_cap_read(ctx->cap, &ctx->pub, req->id,
					    op == REGIONFWD__CTL__OP__OP_CAPTURE_STOP, &ch, &e)) {
		if (ctx->cap == NULL)
			fwd_err_fail(&e, FWD_R_NO_CAPTURE, NULL, 0, "id", "no capture runs here");
		return reply_error(op, &e, len);
	}
	rep.pcapng.data = ch.data;
	rep.pcapng.len = ch.len;
	rep.packets = ch.packets;
	rep.done = ch.done != 0;
	rep.captured = ch.captured;
	rep.lost = ch.lost;
	rep.end = ch.end;
	out = reply_msg(op, &rep.base, len);
	free(ch.data);
	return out;
}

/* One request frame (header checked, body read) to its reply frame. */
static uint8_t *handle(struct dp_ctl *ctl, const struct fwd_msg_hdr *h, const uint8_t *body,
		       size_t *len)
{
	struct fwd_err e = {0};
	ProtobufCMessage *m;
	uint8_t *out;

	if (h->flags != 0) {
		fwd_err_fail(&e, FWD_R_BAD_REQUEST, NULL, 0, "flags", "a request carries no flags");
		return reply_error(h->op, &e, len);
	}
	m = fwd_msg_unpack(h, body, &e);
	if (m == NULL)
		return reply_error(h->op, &e, len);
	switch (h->op) {
	case REGIONFWD__CTL__OP__OP_PUSH:
		out = op_push(ctl, (const Regionfwd__Ctl__PushRequest *)m, len);
		break;
	case REGIONFWD__CTL__OP__OP_STATUS:
		out = op_status(ctl, len);
		break;
	case REGIONFWD__CTL__OP__OP_COUNTERS:
		out = op_counters(ctl, len);
		break;
	case REGIONFWD__CTL__OP__OP_EXPLAIN:
		out = op_explain(ctl, (const Regionfwd__Ctl__ExplainRequest *)m, len);
		break;
	case REGIONFWD__CTL__OP__OP_TABLE:
		out = op_table(ctl, len);
		break;
	case REGIONFWD__CTL__OP__OP_DELTA:
		out = op_delta(ctl, (const Regionfwd__Ctl__DeltaRequest *)m, len);
		break;
	case REGIONFWD__CTL__OP__OP_CAPTURE_START:
		out = op_capture_start(ctl, (const Regionfwd__Ctl__CaptureStart *)m, len);
		break;
	case REGIONFWD__CTL__OP__OP_CAPTURE_READ:
	case REGIONFWD__CTL__OP__OP_CAPTURE_STOP:
		out = op_capture_read(ctl, h->op, (const Regionfwd__Ctl__CaptureRead *)m, len);
		break;
	default: /* fwd_msg_hdr_decode lets only the op table's ops through */
		fwd_err_fail(&e, FWD_R_UNKNOWN_OP, NULL, 0, "op", "no handler for op %u", h->op);
		out = reply_error(h->op, &e, len);
		break;
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return out;
}

/* Read what is there; returns -1 when the connection must close. The
 * header is checked whole before the body is allocated: a peer announcing a
 * body over the limit, or speaking another protocol, gets one error reply
 * and the connection closes (its stream cannot be resynchronized). */
static int client_read(struct dp_ctl *ctl, struct ctl_client *c)
{
	for (;;) {
		ssize_t r;

		if (c->hdr_got < FWD_MSG_HDR_LEN) {
			struct fwd_err e;

			r = read(c->fd, c->hdr + c->hdr_got, FWD_MSG_HDR_LEN - c->hdr_got);
			if (r == 0)
				return -1;
			if (r < 0)
				return errno == EAGAIN || errno == EINTR ? 0 : -1;
			if (c->hdr_got == 0)
				frame_begin(c, fwd_mono_ms());
			c->hdr_got += (size_t)r;
			if (c->hdr_got < FWD_MSG_HDR_LEN)
				continue;
			if (fwd_msg_hdr_decode(c->hdr, FWD_MSG_MAX_BODY, &c->h, &e)) {
				CTL_LOG(ctl, CTL_LOG_REFUSED, WARNING,
					"control: frame refused: %s: %s", e.path, e.reason);
				c->out = reply_error(c->h.op, &e, &c->out_len);
				c->out_sent = 0;
				c->close_after = 1;
				return c->out ? 0 : -1;
			}
			c->body = NULL;
			c->got = c->cap = 0;
		}
		if (c->got == c->cap && c->cap < c->h.len) {
			/* Grow by what may arrive next: doubling, at least a step, at
			 * most the announced length. */
			size_t cap = c->cap * 2 > DP_CTL_BODY_STEP ? c->cap * 2 : DP_CTL_BODY_STEP;
			uint8_t *b;

			if (cap > c->h.len)
				cap = c->h.len;
			if (ctl->buffered - c->cap + cap > DP_CTL_BODY_BUDGET) {
				struct fwd_err e;

				CTL_LOG(ctl, CTL_LOG_REFUSED, WARNING,
					"control: frames in flight would hold over %zu bytes, "
					"refusing a %u-byte %s",
					DP_CTL_BODY_BUDGET, c->h.len, fwd_msg_op_name(c->h.op));
				/* Answered with the reason, then closed: the rest of
				 * its body cannot be skipped in the stream. */
				fwd_err_fail(&e, FWD_R_BODY_TOO_LARGE, NULL, 0, "length",
					     "other frames in flight hold regionfwd's control "
					     "memory (%zu bytes in all); retry",
					     (size_t)DP_CTL_BODY_BUDGET);
				ctl->buffered -= c->cap;
				free(c->body);
				c->body = NULL;
				c->got = c->cap = 0;
				c->out = reply_error(c->h.op, &e, &c->out_len);
				c->out_sent = 0;
				c->close_after = 1;
				frame_begin(c, fwd_mono_ms());
				return c->out ? 0 : -1;
			}
			b = realloc(c->body, cap);
			if (b == NULL)
				return -1;
			ctl->buffered += cap - c->cap;
			c->body = b;
			c->cap = cap;
		}
		if (c->got < c->h.len) {
			r = read(c->fd, c->body + c->got, c->cap - c->got);
			if (r == 0)
				return -1;
			if (r < 0)
				return errno == EAGAIN || errno == EINTR ? 0 : -1;
			c->got += (size_t)r;
			if (c->got < c->h.len)
				continue;
		}
		c->out = handle(ctl, &c->h, c->body ? c->body : (const uint8_t *)"", &c->out_len);
		c->out_sent = 0;
		free(c->body);
		ctl->buffered -= c->cap;
		c->body = NULL;
		c->got = c->cap = 0;
		c->hdr_got = 0;
		frame_begin(c, fwd_mono_ms()); /* the reply's turn: it must leave in time too */
		return c->out ? 0 : -1;
	}
}

static int client_write(struct ctl_client *c)
{
	while (c->out_sent < c->out_len) {
		/* MSG_NOSIGNAL: a client that went away must not SIGPIPE the fast path. */
		ssize_t w =
			send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);

		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->out_sent += (size_t)w;
	}
	free(c->out);
	c->out = NULL;
	c->frame_start_ms = 0;
	c->idle_since_ms = fwd_mono_ms();
	c->served++;
	return c->close_after ? -1 : 0;
}

/* Close connections past their frame deadline or idle too long (the
 * connection's loss is the client's only cost; nothing else changes). */
static void expire(struct dp_ctl *ctl)
{
	int64_t now = fwd_mono_ms();
	int64_t frame_ms = ctl->ctx->node.control_frame_timeout_ms;
	int64_t idle_ms = ctl->ctx->node.control_idle_timeout_ms;

	for (int k = 0; k < CTL_LOG_N; k++)
		log_flush(&ctl->lim[k], now / 1000);
	for (int i = 0; i < DP_CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &ctl->c[i];

		if (c->fd < 0)
			continue;
		if (c->frame_start_ms && now - c->mark_ms >= DP_CTL_SLOW_AFTER_MS) {
			uint64_t moved = frame_moved(c);

			c->rate = (moved - c->mark_moved) * 1000u / (uint64_t)(now - c->mark_ms);
			c->mark_ms = now;
			c->mark_moved = moved;
		}
		if (c->frame_start_ms && now - c->frame_start_ms > frame_ms) {
			CTL_LOG(ctl, CTL_LOG_TIMEOUT, WARNING,
				"control: a frame took over %lld ms, closing its connection",
				(long long)frame_ms);
			client_close(ctl, c);
		} else if (!c->frame_start_ms && now - c->idle_since_ms > idle_ms) {
			client_close(ctl, c);
		}
	}
}

/* Whether idle @a should go before idle @b: one that never sent a request
 * first (regiond's connection has served many), then the longest idle. */
static int evict_before(const struct ctl_client *a, const struct ctl_client *b)
{
	if ((a->served == 0) != (b->served == 0))
		return a->served == 0;
	return a->idle_since_ms < b->idle_since_ms;
}

/* A slot for a new connection: a free one, else one whose loss costs
 * least, in this order: an idle one that never sent a request; the slowest
 * frame under DP_CTL_SLOW_BYTES_PER_S over its last window (a trickle
 * that would hold its slot for the whole frame timeout); an idle one that
 * has served (regiond's, between its requests, goes last), longest idle
 * first. Else -1: every slot moves a frame at speed. */
static int free_slot(struct dp_ctl *ctl)
{
	int fresh = -1, slow = -1, idle = -1, victim;
	uint64_t slowest = UINT64_MAX;

	for (int i = 0; i < DP_CTL_MAX_CLIENTS; i++) {
		const struct ctl_client *c = &ctl->c[i];

		if (c->fd < 0)
			return i;
		if (!c->frame_start_ms && c->served == 0) {
			if (fresh < 0 || evict_before(c, &ctl->c[fresh]))
				fresh = i;
		} else if (!c->frame_start_ms) {
			if (idle < 0 || evict_before(c, &ctl->c[idle]))
				idle = i;
		} else if (c->rate < DP_CTL_SLOW_BYTES_PER_S && c->rate < slowest) {
			slow = i;
			slowest = c->rate;
		}
	}
	victim = fresh >= 0 ? fresh : slow >= 0 ? slow : idle;
	if (victim < 0)
		return -1;
	if (victim == slow)
		CTL_LOG(ctl, CTL_LOG_EVICTED, WARNING,
			"control: every connection taken, closing one whose frame moved at %llu "
			"bytes/s",
			(unsigned long long)slowest);
	else
		CTL_LOG(ctl, CTL_LOG_EVICTED, NOTICE,
			"control: every connection taken, closing an idle one");
	client_close(ctl, &ctl->c[victim]);
	return victim;
}

/* Every second: the socket file still there, or a fresh one bound in its
 * place (fwd_unix_keep_check). Taken away (rm, a rename), the socket went
 * on accepting where nobody could reach it: regiond, already connected,
 * said all was well while regionctl and a restarted regiond could not
 * reach regionfwd. What cannot be bound again is said once a cause, and in
 * status (socket_error, which regiond raises as an alarm). */
static void keep_socket(struct dp_ctl *ctl)
{
	int64_t now = fwd_mono_ms();
	int fd = -1, rc;

	if (now - ctl->kept_ms < 1000)
		return;
	ctl->kept_ms = now;
	rc = fwd_unix_keep_check(&ctl->keep, &fd);
	if (rc == 0 && ctl->sock_error[0]) {
		ctl->sock_error[0] = '\0';
		DP_LOG(NOTICE, "control socket %s is back where it was bound", ctl->path);
	} else if (rc == 1) {
		close(ctl->fd);
		ctl->fd = fd;
		ctl->sock_error[0] = '\0';
		DP_LOG(NOTICE,
		       "control socket %s %s while regionfwd ran: listening on a fresh one there",
		       ctl->path, ctl->keep.gone);
	} else if (rc < 0) {
		char now_err[sizeof(ctl->sock_error)];

		snprintf(now_err, sizeof(now_err),
			 "control socket %s %s and cannot be made again (%s): regionctl and a "
			 "restarted regiond cannot reach regionfwd; trying every second",
			 ctl->path, ctl->keep.gone, ctl->keep.error);
		if (strcmp(now_err, ctl->sock_error) != 0)
			DP_LOG(ERR, "%s", now_err);
		memcpy(ctl->sock_error, now_err, sizeof(now_err));
	}
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
		pfd[n] = (struct pollfd){.fd = ctl->c[i].fd,
					 .events = ctl->c[i].out ? POLLOUT : POLLIN};
		idx[n++] = i;
	}
	rc = poll(pfd, (nfds_t)n, timeout_ms);
	expire(ctl);
	keep_socket(ctl);
	if (rc <= 0)
		return rc < 0 && errno != EINTR ? -errno : 0;
	for (int k = 1; k < n; k++) {
		struct ctl_client *c = &ctl->c[idx[k]];

		if (pfd[k].revents & (POLLERR | POLLNVAL)) {
			client_close(ctl, c);
			continue;
		}
		if ((pfd[k].revents & (POLLIN | POLLHUP)) && !c->out && client_read(ctl, c) < 0) {
			client_close(ctl, c);
			continue;
		}
		if (c->out && client_write(c) < 0)
			client_close(ctl, c);
	}
	if (pfd[0].revents & POLLIN) {
		int fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			int i = free_slot(ctl);

			if (i < 0) {
				CTL_LOG(ctl, CTL_LOG_BUSY, WARNING,
					"control: %d connections busy mid-frame, refusing one",
					DP_CTL_MAX_CLIENTS);
				close(fd);
			} else {
				ctl->c[i].fd = fd;
				ctl->c[i].idle_since_ms = fwd_mono_ms();
			}
		}
	}
	return 0;
}
