/*
 * Fuzz target: the control channel's framing and messages (fwd_msg.c), as
 * regionfwd's control thread meets them from a hostile peer: a 16-byte
 * header checked before any body is allocated, then the body decoded as the
 * op's request (or, on regiond's side, as its reply or an Error). Whatever
 * decodes must re-encode to a frame whose header checks; a refused frame
 * must say why. (Re-decoding the re-encoded body is not asserted:
 * protobuf-c keeps unknown fields it accepted in non-canonical form, e.g. a
 * tag of field 0 spelled in two bytes, and writes them back canonically,
 * where its own decoder then refuses them. Receivers ignore unknown fields,
 * so this costs nothing but the round trip.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct fwd_msg_hdr h;
	struct fwd_err e = {0};
	ProtobufCMessage *m;
	uint8_t *again;
	size_t n;

	if (len < FWD_MSG_HDR_LEN)
		return 0;
	/* A small limit, so length checks are exercised too. */
	if (fwd_msg_hdr_decode(data, 1 << 16, &h, &e)) {
		if (e.reason[0] == '\0' || e.reason_code == FWD_R_INVALID)
			abort(); /* a refusal always names its reason */
		return 0;
	}
	if (h.len > 1 << 16)
		abort();
	if (h.len > len - FWD_MSG_HDR_LEN)
		return 0; /* the rest has not arrived: a reader would wait */
	m = fwd_msg_unpack(&h, data + FWD_MSG_HDR_LEN, &e);
	if (m == NULL) {
		if (e.reason_code != FWD_R_BAD_REQUEST && e.reason_code != FWD_R_UNKNOWN_OP)
			abort();
		return 0;
	}
	again = fwd_msg_pack(h.op, h.flags, m, &n);
	if (again == NULL)
		abort(); /* a message that decoded must encode */
	{
		struct fwd_msg_hdr h2;

		if (fwd_msg_hdr_decode(again, FWD_MSG_MAX_BODY, &h2, &e) || h2.op != h.op ||
		    h2.flags != h.flags || h2.len != n - FWD_MSG_HDR_LEN)
			abort();
	}
	free(again);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}
