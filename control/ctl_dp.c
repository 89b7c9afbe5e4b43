#include "ctl_dp.h"

#include <inttypes.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fwd_msg.h"
#include "fwd_report.h"
#include "fwd_clock.h"

struct ctl_dp {
	char path[108];
	int fd;
	int wrote; /* a byte of a request was sent since ctl_dp_wrote_reset() */
};

struct ctl_dp *ctl_dp_create(const char *path)
{
	struct ctl_dp *dp;

	if (strlen(path) >= sizeof(dp->path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	dp = calloc(1, sizeof(*dp));
	if (dp == NULL)
		return NULL;
	strcpy(dp->path, path);
	dp->fd = -1;
	return dp;
}

struct ctl_dp *ctl_dp_create_like(const struct ctl_dp *dp)
{
	return ctl_dp_create(dp->path);
}

void ctl_dp_free(struct ctl_dp *dp)
{
	if (dp == NULL)
		return;
	if (dp->fd >= 0)
		close(dp->fd);
	free(dp);
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int64_t left = deadline - fwd_mono_ms();
	int rc;

	if (left <= 0)
		return -ETIMEDOUT;
	rc = poll(&p, 1, (int)left);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	return rc == 0 ? -ETIMEDOUT : 0;
}

static int xfer(struct ctl_dp *dp, char *buf, size_t len, int out, int64_t deadline)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;
		int rc = wait_fd(dp->fd, out ? POLLOUT : POLLIN, deadline);

		if (rc)
			return rc;
		n = out ? send(dp->fd, buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT)
			: recv(dp->fd, buf + done, len - done, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		dp->wrote |= out;
		done += (size_t)n;
	}
	return 0;
}

void ctl_dp_wrote_reset(struct ctl_dp *dp)
{
	dp->wrote = 0;
}

int ctl_dp_wrote(const struct ctl_dp *dp)
{
	return dp->wrote;
}

static int dp_connect(struct ctl_dp *dp)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	strcpy(sa.sun_path, dp->path);
	/* Non-blocking: a stopped regionfwd's full accept queue makes a
	 * blocking connect() wait for ever, holding regiond's state lock; this
	 * way it fails at once (EAGAIN) and says "unavailable". */
	dp->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (dp->fd < 0)
		return -errno;
	if (connect(dp->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = -errno;

		close(dp->fd);
		dp->fd = -1;
		return rc;
	}
	return 0;
}

int ctl_dp_call(struct ctl_dp *dp, unsigned op, const ProtobufCMessage *req,
		ProtobufCMessage **reply, int timeout_ms, struct fwd_err *e)
{
	int64_t deadline = fwd_mono_ms() + timeout_ms;
	uint8_t *frame = NULL, hdr[FWD_MSG_HDR_LEN], *body = NULL;
	struct fwd_msg_hdr h;
	struct fwd_err fe;
	size_t n;
	int rc = 0;

	*reply = NULL;
	frame = fwd_msg_pack(op, 0, req, &n);
	if (frame == NULL)
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, fwd_msg_op_name(op),
				    "cannot frame the %s request", fwd_msg_op_name(op));
	for (int attempt = 0;; attempt++) {
		int reused = dp->fd >= 0;

		if (!reused && (rc = dp_connect(dp)))
			goto out;
		rc = xfer(dp, (char *)frame, n, 1, deadline);
		if (rc == 0)
			rc = xfer(dp, (char *)hdr, sizeof(hdr), 0, deadline);
		/* regionfwd closes connections idle too long, or the longest idle
		 * one when every slot is taken: a kept connection may be gone by the
		 * time it is used again. It was closed idle, so the request was not
		 * taken: send it once more on a new connection (a push is a no-op
		 * when its content already runs). */
		if (reused && attempt == 0 && (rc == -EPIPE || rc == -ECONNRESET)) {
			close(dp->fd);
			dp->fd = -1;
			continue;
		}
		if (rc)
			goto out;
		break;
	}
	/* A reply is checked like a request: its header before its body. An
	 * error may come framed with another op: a regionfwd older than @op
	 * frames its unknown_op refusal with an op it knows (fwd_msg_pack_error),
	 * and the caller must see that refusal (OP_DELTA falls back to a push). */
	if (fwd_msg_hdr_decode(hdr, FWD_MSG_MAX_BODY, &h, &fe) ||
	    (h.op != op && !(h.flags & FWD_MSG_ERROR)) || !(h.flags & FWD_MSG_REPLY)) {
		rc = -EPROTO;
		goto out;
	}
	body = malloc(h.len ? h.len : 1);
	if (body == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = xfer(dp, (char *)body, h.len, 0, deadline)))
		goto out;
	*reply = fwd_msg_unpack(&h, body, &fe);
	if (*reply == NULL) {
		rc = -EPROTO;
		goto out;
	}
	if (h.flags & FWD_MSG_ERROR) {
		/* regionfwd answered and refused: its reason, as it gave it. */
		fwd_msg_error_to_err((const Regionfwd__Ctl__Error *)*reply, e);
		protobuf_c_message_free_unpacked(*reply, NULL);
		*reply = NULL;
		free(frame);
		free(body);
		return -fwd_reason_errno(e->reason_code);
	}
out:
	free(frame);
	free(body);
	if (rc) {
		if (dp->fd >= 0) {
			close(dp->fd);
			dp->fd = -1;
		}
		return fwd_err_fail(e, FWD_R_DATAPLANE_UNAVAILABLE, NULL, 0, "",
				    "regionfwd did not answer the %s request (%s)",
				    fwd_msg_op_name(op),
				    rc == -EPROTO ? "broken reply" : strerror(-rc));
	}
	return 0;
}

/* A port's link as the status model spells it. */
static enum fwd_port_link port_link(Regionfwd__Ctl__LinkStatus l)
{
	switch (l) {
	case REGIONFWD__CTL__LINK_STATUS__LINK_UP:
		return FWD_PORT_LINK_UP;
	case REGIONFWD__CTL__LINK_STATUS__LINK_DOWN:
		return FWD_PORT_LINK_DOWN;
	default:
		return FWD_PORT_LINK_UNKNOWN;
	}
}

/* A port's counters under the names of the counter report's "ports", null
 * when the port does not count (not started). */
static json_t *port_stats_json(const Regionfwd__Ctl__PortStats *ps)
{
	const uint64_t v[] = {
		[FWD_RV_IPACKETS] = ps ? ps->ipackets : 0,
		[FWD_RV_OPACKETS] = ps ? ps->opackets : 0,
		[FWD_RV_IMISSED] = ps ? ps->imissed : 0,
		[FWD_RV_IERRORS] = ps ? ps->ierrors : 0,
		[FWD_RV_OERRORS] = ps ? ps->oerrors : 0,
		[FWD_RV_RX_NOMBUF] = ps ? ps->rx_nombuf : 0,
	};
	json_t *o;

	if (ps == NULL)
		return json_null();
	o = json_object();
	for (size_t i = 0; o && i < sizeof(v) / sizeof(v[0]); i++)
		json_object_set_new(o, fwd_report_value_name(FWD_RS_PORTS, (int)i),
				    json_integer((json_int_t)v[i]));
	return o;
}

json_t *ctl_dp_status_json(const Regionfwd__Ctl__StatusReply *s)
{
	const Regionfwd__Ctl__GenerationInfo *g = s->generation;
	const Regionfwd__Ctl__Packets *p = s->packets;
	struct fwd_report_gen gen = {0};
	json_t *ports = json_array(), *links = json_array();

	for (size_t i = 0; i < s->n_ports; i++) {
		const Regionfwd__Ctl__Port *pt = s->ports[i];
		enum fwd_port_link l = port_link(pt->link);

		json_array_append_new(
			ports,
			json_pack("{s:s, s:s, s:b, s:i, s:s, s:s, s:o, s:o, s:o}", "name", pt->name,
				  "device", pt->device, "ingress", pt->ingress, "port_id",
				  (int)pt->port_id, "mac", pt->mac, "link", fwd_port_link_name(l),
				  "speed_mbps",
				  pt->speed_mbps ? json_integer(pt->speed_mbps) : json_null(),
				  "duplex",
				  l == FWD_PORT_LINK_UP
					  ? json_string(pt->full_duplex ? "full" : "half")
					  : json_null(),
				  "stats", port_stats_json(pt->stats)));
	}
	/* A link's operational state is its port's link. */
	for (size_t i = 0; i < s->n_links; i++) {
		const Regionfwd__Ctl__Link *lk = s->links[i];
		enum fwd_port_link oper = FWD_PORT_LINK_UNKNOWN;

		for (size_t k = 0; k < s->n_ports; k++)
			if (strcmp(s->ports[k]->name, lk->port) == 0)
				oper = port_link(s->ports[k]->link);
		json_array_append_new(links, json_pack("{s:s, s:s, s:s, s:s}", "name", lk->name,
						       "port", lk->port, "admin", lk->state, "oper",
						       fwd_port_link_name(oper)));
	}
	if (g) {
		/* The same "generation" object as the counter report's. */
		gen.id = g->id;
		gen.hash = g->hash;
		snprintf(gen.source, sizeof(gen.source), "%s", g->source);
		gen.created_unix_ns = g->created_unix_ns;
		gen.regions = g->regions;
		gen.services = g->services;
		gen.links = g->links;
		gen.policies = g->policies;
		gen.prefixes_v4 = g->prefixes_v4;
		gen.prefixes_v6 = g->prefixes_v6;
	}
	/* Which regiond's state directory pushed what runs (null: none said). */
	char controller[17];

	snprintf(controller, sizeof(controller), "%016" PRIx64, s->controller);
	return json_pack("{s:o, s:i, s:s, s:s?, s:s?, s:s?, s:{s:I, s:I, s:I, s:I, s:I}, s:o, s:o, "
			 "s:o}",
			 "generation", fwd_report_gen_json(&gen), "workers", (int)s->workers,
			 "managed_by", s->managed_by ? s->managed_by : "", "controller",
			 s->controller ? controller : NULL, "save_error",
			 s->save_error && s->save_error[0] ? s->save_error : NULL, "socket_error",
			 s->socket_error && s->socket_error[0] ? s->socket_error : NULL, "packets",
			 "rx", (json_int_t)(p ? p->rx : 0), "rx_bytes",
			 (json_int_t)(p ? p->rx_bytes : 0), "tx", (json_int_t)(p ? p->tx : 0),
			 "tx_bytes", (json_int_t)(p ? p->tx_bytes : 0), "dropped",
			 (json_int_t)(p ? p->dropped : 0), "ports", ports, "links", links, "mbufs",
			 s->mbufs ? json_pack("{s:I, s:I}", "pool", (json_int_t)s->mbufs->pool,
					      "in_use", (json_int_t)s->mbufs->in_use)
				  : json_null());
}
