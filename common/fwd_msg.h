/*
 * fwd_msg.h - the framing and typing of the control channel between regiond
 * and regionfwd: a versioned header, an op, and a protobuf-c message per
 * (op, request | reply | error) from one op table. Pure code: no sockets,
 * so both ends, the unit tests and the fuzzer use the same functions.
 *
 * Frame: 16 bytes, big-endian, explicit sizes
 *     u32 magic   FWD_MSG_MAGIC ("RFWC")
 *     u16 version FWD_MSG_VERSION
 *     u16 op      enum Regionfwd__Ctl__Op (fwd_ctl.proto)
 *     u16 flags   FWD_MSG_REPLY, FWD_MSG_ERROR
 *     u16 reserved, 0
 *     u32 length  of the body that follows (<= the receiver's limit)
 * then the body: the request message of the op; or its reply message with
 * FWD_MSG_REPLY; or Error with FWD_MSG_REPLY | FWD_MSG_ERROR.
 *
 * The header is checked in full before a byte of the body is read or
 * allocated: a wrong magic, version, op, flag or reserved bits, or a length
 * over the limit, is refused with a reason (FWD_R_UNSUPPORTED_VERSION,
 * FWD_R_UNKNOWN_OP, FWD_R_BAD_REQUEST, FWD_R_BODY_TOO_LARGE). A body that
 * does not decode as its message is FWD_R_BAD_REQUEST.
 */
#ifndef FWD_MSG_H
#define FWD_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_ctl.pb-c.h"
#include "fwd_err.h"

#define FWD_MSG_MAGIC 0x52465743u /* "RFWC" */
#define FWD_MSG_VERSION 2 /* 1 was length-prefixed JSON */
#define FWD_MSG_HDR_LEN 16
#define FWD_MSG_REPLY 0x1u
#define FWD_MSG_ERROR 0x2u
/* A push carries the table (up to FWD_DOC_MAX_BYTES) and its databases. */
#define FWD_MSG_MAX_BODY (1536u * 1024u * 1024u)
/* Every other request's limit in the op table (status, explain with a
 * payload, capture). */
#define FWD_MSG_SMALL_BODY (1024u * 1024u)

struct fwd_msg_hdr {
	uint16_t version;
	uint16_t op; /* Regionfwd__Ctl__Op */
	uint16_t flags;
	uint32_t len;
};

/** The op's name in the proto ("OP_PUSH" -> "push"), "?" when unknown. */
const char *fwd_msg_op_name(unsigned op);

/** Write the header for @op/@flags and a body of @len bytes into @out. */
void fwd_msg_hdr_encode(uint8_t out[FWD_MSG_HDR_LEN], unsigned op, unsigned flags, uint32_t len);

/**
 * Check and decode a received header. @max_body: the largest body this
 * receiver accepts. @return 0, or a negative errno with @e.
 */
int fwd_msg_hdr_decode(const uint8_t in[FWD_MSG_HDR_LEN], size_t max_body, struct fwd_msg_hdr *h,
		       struct fwd_err *e);

/**
 * A whole frame (header + packed @m) in one malloc'd buffer, *@len its size.
 * @m must be the message the op table names for (@op, @flags). NULL on ENOMEM
 * or a mismatch (a programming error).
 */
uint8_t *fwd_msg_pack(unsigned op, unsigned flags, const ProtobufCMessage *m, size_t *len);

/** A frame carrying @err as the reply to @op. */
uint8_t *fwd_msg_pack_error(unsigned op, const struct fwd_err *err, size_t *len);

/**
 * Decode the body of a frame whose header is @h into its message (free with
 * protobuf_c_message_free_unpacked(m, NULL)). @return the message, or NULL
 * with @e (FWD_R_BAD_REQUEST: not that message).
 */
ProtobufCMessage *fwd_msg_unpack(const struct fwd_msg_hdr *h, const uint8_t *body,
				 struct fwd_err *e);

/** An Error message into @err (unknown codes become FWD_R_INVALID). */
void fwd_msg_error_to_err(const Regionfwd__Ctl__Error *m, struct fwd_err *err);

#endif /* FWD_MSG_H */
