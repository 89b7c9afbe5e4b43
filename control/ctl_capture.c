#define _GNU_SOURCE /* POLLRDHUP */
#include "ctl_capture.h"

#include <errno.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcap/pcap.h>

#include "ctl_dp.h"
#include "fwd_log.h"
#include "ctl_pcapng.h"
#include "fwd_msg.h"
#include "fwd_names.h"
#include "fwd_clock.h"

#define CTL_CAPTURE_DP_TIMEOUT_MS 10000
#define CTL_CAPTURE_MAX_XDP_IFS 8

struct ctl_capture {
	struct ctl_dp *dp;
	uint64_t id; /* regionfwd's */
	uint64_t count, packets; /* asked for, written */
	int64_t deadline_ms; /* CLOCK_MONOTONIC; 0: none */
	int64_t read_ms; /* regionfwd last answered a read (its lease runs from it) */
	int64_t finished_ms; /* when finished was set */
	/* Over: since when the client has taken drained bytes (the deadline
	 * runs from drain_ms, ctl_capture_deadline). */
	int64_t drain_ms;
	size_t drained;
	size_t taken; /* handed to the client since regionfwd's last read */
	int client_fd;
	int fwd_done; /* regionfwd sent its last chunk, or failed (fwd_lost) */
	/* regionfwd answered, and regiond could not take its chunk (out of
	 * memory, not whole blocks): the chunk is not in the file, and unless
	 * regionfwd said done its capture still runs (stopped by fwd_lost) */
	int chunk_refused, fwd_running;
	int ours; /* that failure was regiond's own (out of memory) */
	char fwd_why[160]; /* why regionfwd's last exchange failed */
	char fwd_end[32]; /* why regionfwd said its copy ended ("" while it runs) */
	int finished; /* nothing more will be added to out */
	struct ctl_buf out; /* the stream, from out_off on not yet handed over */
	size_t out_off;
	uint32_t fwd_interfaces; /* regionfwd's interface blocks: ours come after */
	/* The XDP drops: the extension's capture, the filter expression for
	 * them (regionfwd runs its own), their interface blocks by name. */
	const struct ctl_ext *xdp;
	void *xcap;
	int has_filter;
	struct bpf_program filter;
	char xifs[CTL_CAPTURE_MAX_XDP_IFS][32];
	unsigned nxifs;
	uint64_t xdp_written;
	/* Set by ctl_capture_stop() from an API thread (the client's Ctrl-C),
	 * read by the stream's reader: an atomic flag, no lock, and nothing
	 * else shared (the reader stops as at its duration). */
	int stop_asked;
};

static int opt_name(const json_t *b, const char *key, char *out, size_t len, struct fwd_err *e)
{
	const json_t *v = json_object_get(b, key);

	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= len)
		return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, key,
				    "'%s' must be a string of 1..%zu bytes", key, len - 1);
	snprintf(out, len, "%s", json_string_value(v));
	return 0;
}

/* libpcap's compiler, as regionfwd runs it: Ethernet frames. */
static int compile(const char *expr, struct bpf_program *prog, struct fwd_err *e)
{
	pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
	int rc = 0;

	if (p == NULL)
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "filter", "out of memory");
	if (pcap_compile(p, prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0)
		rc = fwd_err_fail(e, FWD_R_INVALID_CAPTURE, NULL, 0, "filter", "'%s': %s", expr,
				  pcap_geterr(p));
	pcap_close(p);
	return rc;
}

int ctl_capture_parse(const json_t *b, struct ctl_capture_req *q, struct fwd_err *e)
{
	static const char *const keys[] = {"count",  "duration_s", "drops_only", "reason",
					   "region", "service",	   "link",	 "filter",
					   "xdp",    NULL};
	const json_t *v;
	const char *k;
	struct bpf_program prog;

	memset(q, 0, sizeof(*q));
	q->xdp = 1;
	json_object_foreach((json_t *)b, k, v) {
		int known = 0;

		for (int i = 0; keys[i]; i++)
			known |= strcmp(k, keys[i]) == 0;
		if (!known)
			return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, k,
					    "unknown field '%.100s'", k);
	}
	if ((v = json_object_get(b, "count")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > CTL_CAPTURE_MAX_COUNT)
			return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "count",
					    "'count' must be an integer in 1..%d",
					    CTL_CAPTURE_MAX_COUNT);
		q->count = (uint64_t)json_integer_value(v);
	}
	if ((v = json_object_get(b, "duration_s")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > CTL_CAPTURE_MAX_DURATION_S)
			return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "duration_s",
					    "'duration_s' must be an integer in 1..%d",
					    CTL_CAPTURE_MAX_DURATION_S);
		q->duration_s = (uint32_t)json_integer_value(v);
	}
	for (int i = 0; i < 2; i++) {
		const char *key = i ? "xdp" : "drops_only";

		if ((v = json_object_get(b, key)) && !json_is_null(v)) {
			if (!json_is_boolean(v))
				return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, key,
						    "'%s' must be true or false", key);
			*(i ? &q->xdp : &q->drops_only) = json_is_true(v);
		}
	}
	if (opt_name(b, "reason", q->reason, sizeof(q->reason), e) ||
	    opt_name(b, "region", q->region, sizeof(q->region), e) ||
	    opt_name(b, "service", q->service, sizeof(q->service), e) ||
	    opt_name(b, "link", q->link, sizeof(q->link), e) ||
	    opt_name(b, "filter", q->filter, sizeof(q->filter), e))
		return -EINVAL;
	if (q->reason[0]) {
		int found = 0;

		for (int i = 0; i < FWD_DROP_MAX; i++)
			found |= strcmp(fwd_drop_names[i], q->reason) == 0;
		if (!found)
			return fwd_err_fail(e, FWD_R_INVALID_CAPTURE, NULL, 0, "reason",
					    "'%s' is not a drop reason (regionctl drops -j lists "
					    "them)",
					    q->reason);
	}
	if (q->filter[0]) {
		if (compile(q->filter, &prog, e))
			return -EINVAL;
		pcap_freecode(&prog);
	}
	return 0;
}

/* Whole blocks of @p (@n bytes) onto the stream; enhanced packet blocks
 * past the count are left out. */
static int take_blocks(struct ctl_capture *c, const uint8_t *p, size_t n)
{
	struct ctl_pcapng_block blk;
	int rc;

	while (n > 0) {
		rc = ctl_pcapng_block(p, n, &blk);
		if (rc <= 0)
			return -EPROTO; /* regionfwd hands over whole blocks only */
		if (blk.type == CTL_PCAPNG_EPB) {
			if (c->count && c->packets >= c->count)
				goto next;
			c->packets++;
		}
		if (ctl_buf_put(&c->out, blk.p, blk.len))
			return -ENOMEM;
	next:
		p += blk.len;
		n -= blk.len;
	}
	return 0;
}

/* Ask regionfwd for capture @c's next chunk, or to stop it (@stop);
 * *@d is its answer (free it) when 0 is returned. */
static int fwd_ask(struct ctl_capture *c, int stop, Regionfwd__Ctl__CaptureData **d,
		   struct fwd_err *e)
{
	Regionfwd__Ctl__CaptureRead req = REGIONFWD__CTL__CAPTURE_READ__INIT;

	req.id = c->id;
	return ctl_dp_call(c->dp,
			   stop ? REGIONFWD__CTL__OP__OP_CAPTURE_STOP
				: REGIONFWD__CTL__OP__OP_CAPTURE_READ,
			   &req.base, (ProtobufCMessage **)d, CTL_CAPTURE_DP_TIMEOUT_MS, e);
}

/* One exchange with regionfwd: a read, or the stop. */
static int fwd_turn(struct ctl_capture *c, int stop)
{
	Regionfwd__Ctl__CaptureData *d;
	struct fwd_err e;
	int rc;

	rc = fwd_ask(c, stop, &d, &e);
	if (rc) {
		fwd_log(FWD_LOG_NOTICE, "capture %llu: regionfwd: %s", (unsigned long long)c->id,
			e.reason);
		snprintf(c->fwd_why, sizeof(c->fwd_why), "%.150s", e.reason);
		return rc;
	}
	c->read_ms = fwd_mono_ms();
	c->taken = 0;
	rc = take_blocks(c, d->pcapng.data, d->pcapng.len);
	if (rc) {
		snprintf(c->fwd_why, sizeof(c->fwd_why), "%s",
			 rc == -ENOMEM ? "out of memory"
				       : "a chunk that is not whole pcapng blocks");
		c->chunk_refused = 1;
		c->fwd_running = !d->done;
		c->ours = rc == -ENOMEM;
	}
	if (d->done) {
		c->fwd_done = 1;
		snprintf(c->fwd_end, sizeof(c->fwd_end), "%.31s", d->end ? d->end : "");
		fwd_log(FWD_LOG_NOTICE,
			"capture %llu ended at regionfwd: %s (%llu captured, %llu lost)",
			(unsigned long long)c->id, d->end, (unsigned long long)d->captured,
			(unsigned long long)d->lost);
	}
	protobuf_c_message_free_unpacked(&d->base, NULL);
	return rc;
}

/* The interface id of XDP interface @name, its block written first. */
static int xdp_ifid(struct ctl_capture *c, const char *name, uint32_t *id)
{
	char full[40];
	unsigned i;

	for (i = 0; i < c->nxifs; i++)
		if (strcmp(c->xifs[i], name) == 0)
			break;
	if (i == c->nxifs) {
		if (i == CTL_CAPTURE_MAX_XDP_IFS)
			return -ENOSPC;
		snprintf(full, sizeof(full), "xdp:%s", name);
		if (ctl_pcapng_idb(&c->out, full, 65535))
			return -ENOMEM;
		snprintf(c->xifs[c->nxifs++], sizeof(c->xifs[0]), "%s", name);
	}
	*id = c->fwd_interfaces + i;
	return 0;
}

/* An XDP drop, from the extension's poll. */
static void xdp_pkt(void *arg, const struct ctl_ext_pkt *p)
{
	struct ctl_capture *c = arg;
	struct pcap_pkthdr h = {.caplen = p->caplen, .len = p->len};
	uint32_t id;

	if (c->count && c->packets >= c->count)
		return;
	if (c->has_filter && pcap_offline_filter(&c->filter, &h, p->data) == 0)
		return;
	if (xdp_ifid(c, p->ifname, &id) ||
	    ctl_pcapng_epb(&c->out, id, p->ts_ns, p->data, p->caplen, p->len, p->comment))
		return;
	c->packets++;
	c->xdp_written++;
}

static void xdp_close(struct ctl_capture *c)
{
	uint64_t captured, lost;
	uint32_t id;
	char text[256];

	if (c->xcap == NULL)
		return;
	c->xdp->capture_close(c->xcap, xdp_pkt, c, &captured, &lost);
	c->xcap = NULL;
	/* Its statistics, on its first interface (one is made when no drop
	 * came, so that the numbers are there). The count is over both sides:
	 * when XDP drops bring it there, regiond stops regionfwd's copy, whose
	 * own block then says end=stopped, so this one says why. (regionfwd
	 * reaching the count on its own says end=count reached itself.) */
	snprintf(text, sizeof(text), "xdp capture: captured=%llu written=%llu lost=%llu%s",
		 (unsigned long long)captured, (unsigned long long)c->xdp_written,
		 (unsigned long long)lost,
		 c->count && c->packets >= c->count && strcmp(c->fwd_end, "stopped") == 0
			 ? " end=count reached (regionfwd's and XDP's packets together; regiond "
			   "stopped regionfwd's copy)"
			 : "");
	if (xdp_ifid(c, c->nxifs ? c->xifs[0] : "filter", &id) == 0)
		ctl_pcapng_isb(&c->out, id, fwd_wall_ns(), captured + lost, lost, text);
}

struct ctl_capture *ctl_capture_start(struct ctl_dp *dp, const struct ctl_capture_req *q,
				      const char *owner, const struct ctl_ext *xdp,
				      const struct fwd_table *t, int client_fd, struct fwd_err *e)
{
	Regionfwd__Ctl__CaptureStart req = REGIONFWD__CTL__CAPTURE_START__INIT;
	Regionfwd__Ctl__CaptureStarted *rep;
	struct ctl_capture *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		ctl_dp_free(dp);
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return NULL;
	}
	c->dp = dp;
	c->client_fd = client_fd;
	c->count = q->count;
	if (q->filter[0]) {
		if (compile(q->filter, &c->filter, e))
			goto fail;
		c->has_filter = 1;
	}
	req.owner = (char *)owner;
	req.drops_only = q->drops_only;
	req.reason = (char *)q->reason;
	req.region = (char *)q->region;
	req.service = (char *)q->service;
	req.link = (char *)q->link;
	req.filter = (char *)q->filter;
	req.count = q->count;
	if (ctl_dp_call(dp, REGIONFWD__CTL__OP__OP_CAPTURE_START, &req.base,
			(ProtobufCMessage **)&rep, CTL_CAPTURE_DP_TIMEOUT_MS, e))
		goto fail;
	c->id = rep->id;
	c->fwd_interfaces = rep->interfaces;
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	/* The section header and regionfwd's interfaces come first: the XDP
	 * blocks are numbered after them. */
	if (fwd_turn(c, 0)) {
		fwd_err_fail(e, FWD_R_DATAPLANE_UNAVAILABLE, NULL, 0, "",
			     "regionfwd started capture %llu but did not hand it over",
			     (unsigned long long)c->id);
		goto fail;
	}
	/* XDP drops have no region, service, link or regionfwd reason: a
	 * capture that asks for one of those leaves them out. */
	if (xdp && xdp->capture_open && q->xdp && !q->reason[0] && !q->region[0] &&
	    !q->service[0] && !q->link[0]) {
		c->xdp = xdp;
		c->xcap = xdp->capture_open(xdp->arg, t, e);
		if (c->xcap == NULL)
			goto fail;
	}
	if (q->duration_s)
		c->deadline_ms = fwd_mono_ms() + (int64_t)q->duration_s * 1000;
	return c;
fail:
	ctl_capture_free(c);
	return NULL;
}

/* The client went away (closed, or the daemon is stopping). */
static int client_gone(const struct ctl_capture *c, int wait_ms)
{
	struct pollfd p = {.fd = c->client_fd, .events = POLLRDHUP};

	if (c->client_fd < 0) {
		if (wait_ms)
			poll(NULL, 0, wait_ms);
		return 0;
	}
	return poll(&p, 1, wait_ms) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* When the capture was over for its client: it finished, or its duration
 * passed (perhaps later than now); INT64_MAX while neither. */
static int64_t ended_ms(const struct ctl_capture *c)
{
	int64_t e = c->finished ? c->finished_ms : INT64_MAX;

	return c->deadline_ms && c->deadline_ms < e ? c->deadline_ms : e;
}

/* One exchange: regionfwd's next chunk (its last with @stop), the XDP
 * drops, and the end once regionfwd sent its last. -1: regionfwd failed. */
static int turn(struct ctl_capture *c, int stop)
{
	if (!c->fwd_done && fwd_turn(c, stop))
		return -1;
	if (c->xcap && c->xdp->capture_poll(c->xcap, xdp_pkt, c) < 0)
		xdp_close(c);
	if (c->fwd_done && !c->finished) {
		/* regionfwd's statistics block is in: the XDP side ends with
		 * it, its own statistics last. */
		xdp_close(c);
		c->finished = 1;
		c->finished_ms = fwd_mono_ms();
	}
	return 0;
}

/* @n bytes handed to the client: after the end, each CTL_CAPTURE_DRAIN_BYTES
 * (or the last of the stream) moves its deadline on. */
static void count_drained(struct ctl_capture *c, size_t n)
{
	int64_t now = fwd_mono_ms();

	if (now < ended_ms(c))
		return;
	c->drained += n;
	if (c->drained >= CTL_CAPTURE_DRAIN_BYTES || (c->finished && c->out.len == 0)) {
		c->drain_ms = now;
		c->drained = 0;
	}
}

/* regionfwd failed to hand over its next chunk while regiond holds bytes
 * the client has not taken (its lease lapsed, it restarted, its answer was
 * broken): those bytes are whole blocks of the capture, up to
 * CTL_CAPTURE_HOLD_MAX and more, and aborting the stream would throw them
 * away. With none held (a client as fast as the capture) the file up to
 * here is as whole, and it ends the same way: which of the two it was
 * depended on the client's speed against the box's load, and the client
 * once got a whole file or a "cut short" by it. So regionfwd counts as
 * done, as if it had ended the capture: a
 * statistics block of regiond's own on regionfwd's first interface says
 * why (where regionfwd's would have said end=...), regiond logs it, the
 * XDP side closes, and the client takes the rest under the rule for a
 * capture that is over. regionfwd's capture, if it still runs, ends by its
 * lease (nothing reads it any more), or at once when the chunk regiond
 * could not take was of a capture that runs (stopped here). */
static void fwd_lost(struct ctl_capture *c, size_t held)
{
	/* regiond's own failure to take a chunk is not regionfwd's */
	const char *who = c->ours ? "regiond" : "regionfwd",
		   *why = c->fwd_why[0] ? c->fwd_why : "no answer";
	char text[384];

	if (held)
		fwd_log(FWD_LOG_NOTICE,
			"capture %llu ended: %s failed (%s) while %zu bytes were held for the "
			"client; they are sent, the file ends there",
			(unsigned long long)c->id, who, why, held);
	else
		fwd_log(FWD_LOG_NOTICE,
			"capture %llu ended: %s failed (%s) with nothing held for the client; "
			"the file ends there",
			(unsigned long long)c->id, who, why);
	snprintf(text, sizeof(text), "regiond capture %llu: end=%s failed (%s); %s",
		 (unsigned long long)c->id, who, why,
		 c->chunk_refused ? "this file holds the capture up to the chunk that failed"
				  : "everything regionfwd had handed over is in this file");
	if (c->fwd_running) {
		/* Its capture runs: stopped now (best effort, its chunk not
		 * taken), not at its lease, which would keep the next
		 * capture refused as busy meanwhile. */
		Regionfwd__Ctl__CaptureData *d = NULL;
		struct fwd_err e;

		if (fwd_ask(c, 1, &d, &e) == 0)
			protobuf_c_message_free_unpacked(&d->base, NULL);
	}
	if (c->fwd_interfaces > 0)
		ctl_pcapng_isb(&c->out, 0, fwd_wall_ns(), c->packets - c->xdp_written, 0, text);
	c->fwd_done = 1;
}

/* The client still has bytes to take and regionfwd runs: its next chunk is
 * taken now, behind them, when the duration has passed (the capture stops
 * now, not once the client has taken them: the end, and the deadline that
 * runs from it, does not wait on a slow client) or when a steady client
 * would otherwise outlast regionfwd's lease (CTL_CAPTURE_HOLD_MAX). */
static void read_ahead(struct ctl_capture *c)
{
	int64_t now = fwd_mono_ms();
	size_t held = c->out.len - c->out_off;
	int over = (c->deadline_ms && now >= c->deadline_ms) ||
		   __atomic_load_n(&c->stop_asked, __ATOMIC_ACQUIRE),
	    stop;

	if (!over &&
	    (now - c->read_ms < FWD_CAPTURE_LEASE_MS / 2 || c->taken < CTL_CAPTURE_DRAIN_BYTES))
		return;
	stop = over || held >= CTL_CAPTURE_HOLD_MAX;
	if (stop && !over)
		fwd_log(FWD_LOG_NOTICE,
			"capture %llu: its client takes less than the capture makes (%zu bytes "
			"held for it): stopped",
			(unsigned long long)c->id, held);
	memmove(c->out.data, c->out.data + c->out_off, held);
	c->out.len = held;
	c->out_off = 0;
	if (turn(c, stop)) {
		fwd_lost(c, c->out.len - c->out_off);
		turn(c, 0); /* no exchange now: the XDP side closes, the end is set */
	}
}

ssize_t ctl_capture_read(struct ctl_capture *c, uint8_t *buf, size_t max)
{
	if (!c->fwd_done && c->out_off < c->out.len)
		read_ahead(c); /* a failed one ends the capture, what is held kept (fwd_lost) */
	for (;;) {
		size_t before;
		int stop;

		if (c->out_off < c->out.len) {
			size_t n = c->out.len - c->out_off;

			if (n > max)
				n = max;
			memcpy(buf, c->out.data + c->out_off, n);
			c->out_off += n;
			if (c->out_off == c->out.len)
				c->out.len = c->out_off = 0;
			c->taken += n;
			count_drained(c, n);
			return (ssize_t)n;
		}
		if (c->finished)
			return 0;
		if (client_gone(c, 0))
			return -1;
		before = c->out.len;
		stop = (c->deadline_ms && fwd_mono_ms() >= c->deadline_ms) ||
		       (c->count && c->packets >= c->count) ||
		       __atomic_load_n(&c->stop_asked, __ATOMIC_ACQUIRE);
		if (turn(c, stop)) {
			/* what it handed over was taken: the file ends here,
			 * whole (what a failed chunk left, if any, first) */
			fwd_lost(c, c->out.len - c->out_off);
			turn(c, 0);
			continue;
		}
		if (c->finished)
			continue;
		if (c->out.len == before && client_gone(c, CTL_CAPTURE_POLL_MS))
			return -1;
	}
}

void ctl_capture_stop(struct ctl_capture *c)
{
	/* Release: pairs with the reader's acquire; the flag is all it reads. */
	__atomic_store_n(&c->stop_asked, 1, __ATOMIC_RELEASE);
}

uint64_t ctl_capture_id(const struct ctl_capture *c)
{
	return c->id;
}

int64_t ctl_capture_deadline(const struct ctl_capture *c)
{
	int64_t end = ended_ms(c),
		d = c->finished ? INT64_MAX : c->read_ms + FWD_CAPTURE_LEASE_MS + 1000;

	/* No cap after the end: nothing is added to the stream once it is over,
	 * so a client that keeps taking CTL_CAPTURE_DRAIN_BYTES a grace is done
	 * by itself, within (what was held) / CTL_CAPTURE_DRAIN_BYTES graces
	 * (ctl_capture.h: at most some 64 minutes). A fixed cap would cut the
	 * steady client the hold cap promised a whole file. */
	if (end != INT64_MAX) {
		int64_t drain = (c->drain_ms > end ? c->drain_ms : end) + CTL_CAPTURE_GRACE_MS;

		if (drain < d)
			d = drain;
	}
	return d;
}

void ctl_capture_free(struct ctl_capture *c)
{
	if (c == NULL)
		return;
	/* Past its deadline, the client stopped reading and regiond closed
	 * its connection (ctl_capture_deadline): said here, as the client
	 * may never say anything. */
	if (c->id && fwd_mono_ms() >= ctl_capture_deadline(c))
		fwd_log(FWD_LOG_NOTICE,
			"capture %llu: its client stopped reading (or took less than %u KiB in "
			"%d s once it was over); connection closed at the capture's deadline",
			(unsigned long long)c->id, CTL_CAPTURE_DRAIN_BYTES / 1024,
			CTL_CAPTURE_GRACE_MS / 1000);
	if (c->id && !c->fwd_done)
		fwd_turn(c, 1); /* the client went: regionfwd stops copying now */
	if (c->xcap) {
		c->xdp->capture_close(c->xcap, NULL, NULL, &(uint64_t){0}, &(uint64_t){0});
		c->xcap = NULL;
	}
	if (c->has_filter)
		pcap_freecode(&c->filter);
	ctl_dp_free(c->dp);
	ctl_buf_free(&c->out);
	free(c);
}
