/*
 * ctl_capture.h - POST /v1/capture (docs/api.md): a packet capture at
 * regionfwd, every packet with its verdict, dropped ones included, and the
 * XDP filter's drops when regiond runs the filter, streamed to the client
 * as one pcapng.
 *
 * ctl_capture_parse() checks the request. ctl_capture_start() compiles its
 * filter, asks regionfwd to start (OP_CAPTURE_START, on a connection of the
 * capture's own: no lock of regiond's state is held while it streams),
 * takes regionfwd's first chunk (the section header and its interfaces) and
 * opens the XDP capture; any refusal comes back here, before the response
 * starts. ctl_capture_read() then blocks until it has bytes for the client:
 * regionfwd's chunks (OP_CAPTURE_READ every CTL_CAPTURE_POLL_MS), as they
 * are, with the XDP drops written between them (ctl_pcapng.h), until the
 * count or the duration is reached (OP_CAPTURE_STOP), regionfwd ends it, or
 * the client goes away. ctl_capture_free() stops whatever still runs.
 *
 * The count covers both sources; packets past it are not written. One
 * capture at a time is the API's rule (capture_busy); regionfwd enforces
 * it too, against a second regiond.
 */
#ifndef CTL_CAPTURE_H
#define CTL_CAPTURE_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "ctl_ext.h"
#include "fwd_defs.h"
#include "fwd_err.h"

#define CTL_CAPTURE_POLL_MS 50
/* Once a capture is over (its duration passed, its count reached, regionfwd
 * ended it), its client has this long to take the rest of the stream, and
 * as long again from each time it has taken CTL_CAPTURE_DRAIN_BYTES more
 * (or the rest): a slow but steady reader (a big capture over a slow link)
 * gets the whole file, one that stalls or trickles loses the connection and
 * the capture slot. There is no cap after the end: nothing is added to the
 * stream once the capture is over, so a client at the smallest rate that
 * keeps it (6.4 KiB/s) is done by itself, within what regiond held at the
 * end / CTL_CAPTURE_DRAIN_BYTES graces. That is bounded (below): at most
 * CTL_CAPTURE_HOLD_MAX and two of regionfwd's chunks (DP_CAP_BUF_MAX, 4
 * MiB: the last read before the hold cap tripped, and the stopping read),
 * some 24 MiB, so the slot is held at most some 64 minutes after the end,
 * by a client that keeps taking 64 KiB every 10 s all along; a faster one
 * takes proportionally less. (A fixed cap, once 5 minutes, cut exactly
 * the steady client the hold cap below promises a whole file.) */
#define CTL_CAPTURE_GRACE_MS 10000
#define CTL_CAPTURE_DRAIN_BYTES (64u * 1024)
/* While a capture runs, regionfwd ends it FWD_CAPTURE_LEASE_MS after
 * regiond's last read, and regiond reads only once the client has taken
 * what it holds: a chunk a slow client takes longer than that to drain
 * would end the capture under it. So a client that took
 * CTL_CAPTURE_DRAIN_BYTES since the last read has regionfwd read again
 * after half a lease anyway, what it hands over held behind the rest; once
 * regiond holds CTL_CAPTURE_HOLD_MAX the client cannot keep up with the
 * capture, which is stopped instead: the client still gets a whole file,
 * drained under the rule above. Should such a read fail (regionfwd's lease
 * lapsed, regionfwd restarted), what is held is not thrown away: the
 * capture ends there, a statistics block of regiond's saying why
 * ("end=regionfwd failed (...)"), and the client takes the rest. */
#define CTL_CAPTURE_HOLD_MAX (16u * 1024 * 1024)
#define CTL_CAPTURE_MAX_COUNT 10000000
#define CTL_CAPTURE_MAX_DURATION_S 86400
#define CTL_CAPTURE_FILTER_MAX 1024

struct ctl_capture_req {
	uint64_t count; /* 0: until the duration, or the client stops */
	uint32_t duration_s; /* 0: until the count, or the client stops */
	int drops_only;
	int xdp; /* also the XDP filter's drops (default: yes, when it runs) */
	char reason[48], region[FWD_NAME_MAX], service[FWD_NAME_MAX], link[FWD_NAME_MAX];
	char filter[CTL_CAPTURE_FILTER_MAX + 1];
};

/**
 * The body of POST /v1/capture into @q. Names are checked by regionfwd
 * against what it runs; the reason against fwd_counters.def and the filter
 * expression with libpcap here. @return 0, or -errno with @e
 * (FWD_R_BAD_REQUEST, FWD_R_INVALID_CAPTURE)
 */
int ctl_capture_parse(const json_t *body, struct ctl_capture_req *q, struct fwd_err *e);

struct ctl_capture;
struct ctl_dp;

/**
 * Start capture @q for @owner: regionfwd through @dp (a connection the
 * capture owns from now on, even on failure), the XDP drops through @xdp
 * (NULL, or an extension with capture_open: called here with @t, so hold
 * the state lock around this call). @client_fd: the client's socket, watched
 * for a hang-up while nothing matches. NULL with @e when refused.
 */
struct ctl_capture *ctl_capture_start(struct ctl_dp *dp, const struct ctl_capture_req *q,
				      const char *owner, const struct ctl_ext *xdp,
				      const struct fwd_table *t, int client_fd, struct fwd_err *e);

/**
 * The next bytes of the stream into @buf (at most @max); blocks until there
 * are some. @return their number, 0 at the end of the stream, -1 when the
 * capture broke (regionfwd gone while nothing was held for the client:
 * else the capture ends with what is held) or the client went away.
 */
ssize_t ctl_capture_read(struct ctl_capture *c, uint8_t *buf, size_t max);

/**
 * By when (CLOCK_MONOTONIC ms) the stream must be over, given that
 * ctl_capture_read() just returned and the client now has to take what it
 * returned. libmicrohttpd calls the reader only while the client's socket
 * takes bytes: a client that stops reading but keeps its connection would
 * otherwise keep the capture (and the one capture slot) for as long as it
 * likes, the duration being checked only in the reader. The stream's
 * connection is closed at this time (ctl_headwatch_stream_deadline):
 *  - a capture that is over (its count reached, regionfwd ended it, or its
 *    duration passed): CTL_CAPTURE_GRACE_MS after it ended or after the
 *    client last took another CTL_CAPTURE_DRAIN_BYTES (or the rest) since
 *    then, whichever is later (no cap: the stream is bounded once over);
 *  - one that runs: regionfwd ends it FWD_CAPTURE_LEASE_MS after regiond's
 *    last read, and nothing can be read of it after that (the reader would
 *    fail), so then, and a second for regionfwd to have logged why.
 */
int64_t ctl_capture_deadline(const struct ctl_capture *c);

/**
 * End capture @c as its duration would (POST /v1/capture/stop, the
 * client's Ctrl-C): regionfwd's copy is stopped and the stream ends with
 * the statistics blocks, within CTL_CAPTURE_POLL_MS. Safe from any thread
 * while @c is not freed (the API holds its capture_lock for that).
 */
void ctl_capture_stop(struct ctl_capture *c);

/** regionfwd's id of capture @c: the stream's Capture-Id header. */
uint64_t ctl_capture_id(const struct ctl_capture *c);

/** Stop what still runs (regionfwd's capture, the XDP capture) and free. */
void ctl_capture_free(struct ctl_capture *c);

#endif /* CTL_CAPTURE_H */
