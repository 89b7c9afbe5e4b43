/*
 * dp_ctl.h - the fast path's control socket: the one narrow channel from the
 * control plane (regiond) into regionfwd.
 *
 * A unix stream socket (mode 0660, optional group) owned by the control
 * thread. Framing: a 4-byte big-endian length, then that many bytes of one
 * JSON object; at most FWD_DOC_MAX_BYTES. Every request carries "v": 1 and
 * an "op"; every response is {"v": 1, "ok": true, ...} or
 * {"v": 1, "ok": false, "error": {"code", "file", "line", "path", "reason"}}.
 *
 *   push      {"document": TEXT, "generation": N, "name": S}  validate (again,
 *             fully, residency included), build, publish; same content as the
 *             running generation: no-op
 *   status    running generation, workers, ports
 *   counters  the counter report (the --stats-json model)
 *   explain   {"src", "dst", "proto", "sport", "dport"}: where would it go
 *
 * Sockets are non-blocking and polled with the control loop, so a slow or
 * hostile client delays nothing but itself; a malformed frame closes its
 * connection, a malformed request gets an error and changes nothing.
 */
#ifndef DP_CTL_H
#define DP_CTL_H

struct dp_ctx;
struct dp_ctl;

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
