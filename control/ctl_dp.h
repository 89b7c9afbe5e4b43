/*
 * ctl_dp.h - regiond's client of regionfwd's control socket (dp_ctl.h):
 * connect, send one typed request (fwd_msg.h), wait for its reply, with a
 * deadline.
 * A failed call closes the connection; the next call reconnects.
 */
#ifndef CTL_DP_H
#define CTL_DP_H

#include <jansson.h>

#include "fwd_msg.h"

struct ctl_dp;

/** @return a handle (not yet connected), or NULL with errno */
struct ctl_dp *ctl_dp_create(const char *path);
void ctl_dp_free(struct ctl_dp *dp);

/** A second handle on @dp's socket (its own connection): a handle serves
 *  one caller at a time. @return it, or NULL with errno */
struct ctl_dp *ctl_dp_create_like(const struct ctl_dp *dp);

/**
 * Send request @req of @op (its message per fwd_msg.c's op table) and wait
 * at most @timeout_ms for the reply. @return 0 with *@reply (free with
 * protobuf_c_message_free_unpacked(*reply, NULL)); or a negative errno with
 * @e: FWD_R_DATAPLANE_UNAVAILABLE when regionfwd is unreachable, slow or
 * answers garbage (the connection is then closed), or regionfwd's own
 * refusal (its reason, path and text) when it answered with an error.
 */
int ctl_dp_call(struct ctl_dp *dp, unsigned op, const ProtobufCMessage *req,
		ProtobufCMessage **reply, int timeout_ms, struct fwd_err *e);

/**
 * Whether any byte of a request went out on @dp since ctl_dp_wrote_reset():
 * a call that failed without (its connect refused: the socket gone, nobody
 * listening) cannot have reached regionfwd, one that sent a byte may have.
 */
void ctl_dp_wrote_reset(struct ctl_dp *dp);
int ctl_dp_wrote(const struct ctl_dp *dp);

/** regionfwd's status reply in the API's model (GET /v1/status, "dataplane.status"). */
json_t *ctl_dp_status_json(const Regionfwd__Ctl__StatusReply *s);

#endif /* CTL_DP_H */
