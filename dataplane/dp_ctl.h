/*
 * dp_ctl.h - the fast path's control socket: the one narrow channel from the
 * control plane (regiond) into regionfwd.
 *
 * A unix stream socket (mode 0660, optional group) owned by the control
 * thread. Messages are typed (common/fwd_msg.h: a 16-byte versioned header,
 * then a protobuf message of common/fwd_ctl.proto); one request at a time per
 * connection, each answered by its reply or an Error:
 *
 *   push      PushRequest: the document, the generation id, who pushed it,
 *             and the compiled content databases as bytes. Validated again
 *             here, fully (residency included), built, published; the
 *             content that already runs is a no-op
 *   status    the running generation, workers, packet totals, ports
 *   counters  the counter report (the --stats-json model)
 *   explain   ExplainRequest: where would this packet go
 *   table     the running document, for a regiond to adopt
 *   capture_start, capture_read, capture_stop
 *             a packet capture (dp_cap.h): its match, then its pcapng in
 *             chunks of whole blocks, at most DP_CAP_BUF_MAX bytes each
 *
 * The header is checked before a body is allocated: a frame of another
 * protocol or version, an unknown op, flags or a length over the limit gets
 * one Error and its connection closes. Sockets are non-blocking and polled
 * with the control loop, so a slow or hostile client delays nothing but
 * itself; a malformed request gets an Error and changes nothing.
 */
#ifndef DP_CTL_H
#define DP_CTL_H

struct dp_ctx;
struct dp_ctl;

/** 1 when a process accepts connections on the unix socket @path. */
int dp_ctl_in_use(const char *path);

/**
 * Listen on @path (a stale socket file is replaced; a live one is refused).
 * @param group  group owning the socket, or NULL
 * @return the handle, or NULL with errno set (logged)
 */
struct dp_ctl *dp_ctl_create(struct dp_ctx *ctx, const char *path, const char *group);

/** Serve what is ready, waiting at most @timeout_ms. @return 0 or -errno. */
int dp_ctl_poll(struct dp_ctl *ctl, int timeout_ms);

/** Close every connection and remove the socket file. NULL-safe. */
void dp_ctl_free(struct dp_ctl *ctl);

#endif /* DP_CTL_H */
