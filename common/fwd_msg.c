#include "fwd_msg.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The op table: the one place that says which message each op carries.
 * Indexed by Regionfwd__Ctl__Op; an op without a row is unknown. */
static const struct {
	const ProtobufCMessageDescriptor *request, *reply;
	/* The largest request body the op may carry: a table (push) or a
	 * prefix batch (delta) may be large, nothing else is, so a peer
	 * announcing a 1.5 GiB status is refused at its header. */
	uint32_t request_max;
} ops[] = {
	[REGIONFWD__CTL__OP__OP_PUSH] = {&regionfwd__ctl__push_request__descriptor,
					 &regionfwd__ctl__push_reply__descriptor, FWD_MSG_MAX_BODY},
	[REGIONFWD__CTL__OP__OP_STATUS] = {&regionfwd__ctl__empty__descriptor,
					   &regionfwd__ctl__status_reply__descriptor,
					   FWD_MSG_SMALL_BODY},
	[REGIONFWD__CTL__OP__OP_COUNTERS] = {&regionfwd__ctl__empty__descriptor,
					     &regionfwd__ctl__counter_report__descriptor,
					     FWD_MSG_SMALL_BODY},
	[REGIONFWD__CTL__OP__OP_EXPLAIN] = {&regionfwd__ctl__explain_request__descriptor,
					    &regionfwd__ctl__explain_reply__descriptor,
					    FWD_MSG_SMALL_BODY},
	[REGIONFWD__CTL__OP__OP_TABLE] = {&regionfwd__ctl__empty__descriptor,
					  &regionfwd__ctl__table_reply__descriptor,
					  FWD_MSG_SMALL_BODY},
	[REGIONFWD__CTL__OP__OP_CAPTURE_START] = {&regionfwd__ctl__capture_start__descriptor,
						  &regionfwd__ctl__capture_started__descriptor,
						  FWD_MSG_SMALL_BODY},
	[REGIONFWD__CTL__OP__OP_CAPTURE_READ] = {&regionfwd__ctl__capture_read__descriptor,
						 &regionfwd__ctl__capture_data__descriptor,
						 FWD_MSG_SMALL_BODY},
	[REGIONFWD__CTL__OP__OP_CAPTURE_STOP] = {&regionfwd__ctl__capture_read__descriptor,
						 &regionfwd__ctl__capture_data__descriptor,
						 FWD_MSG_SMALL_BODY},
	[REGIONFWD__CTL__OP__OP_DELTA] = {&regionfwd__ctl__delta_request__descriptor,
					  &regionfwd__ctl__push_reply__descriptor,
					  FWD_MSG_MAX_BODY},
};

#define N_OPS (sizeof(ops) / sizeof(ops[0]))

static const ProtobufCMessageDescriptor *descriptor_of(unsigned op, unsigned flags)
{
	if (op >= N_OPS || ops[op].request == NULL)
		return NULL;
	if (flags & FWD_MSG_ERROR)
		return &regionfwd__ctl__error__descriptor;
	return flags & FWD_MSG_REPLY ? ops[op].reply : ops[op].request;
}

const char *fwd_msg_op_name(unsigned op)
{
	/* "OP_PUSH" in the proto, "push" in logs and errors. */
	static char names[N_OPS][24];
	const ProtobufCEnumValue *v;

	if (op >= N_OPS || ops[op].request == NULL)
		return "?";
	if (names[op][0] == '\0' &&
	    (v = protobuf_c_enum_descriptor_get_value(&regionfwd__ctl__op__descriptor, (int)op))) {
		const char *n = strncmp(v->name, "OP_", 3) == 0 ? v->name + 3 : v->name;
		size_t i;

		for (i = 0; n[i] && i + 1 < sizeof(names[op]); i++)
			names[op][i] = (char)tolower((unsigned char)n[i]);
		names[op][i] = '\0';
	}
	return names[op][0] ? names[op] : "?";
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

void fwd_msg_hdr_encode(uint8_t out[FWD_MSG_HDR_LEN], unsigned op, unsigned flags, uint32_t len)
{
	put32(out, FWD_MSG_MAGIC);
	put16(out + 4, FWD_MSG_VERSION);
	put16(out + 6, (uint16_t)op);
	put16(out + 8, (uint16_t)flags);
	put16(out + 10, 0);
	put32(out + 12, len);
}

int fwd_msg_hdr_decode(const uint8_t in[FWD_MSG_HDR_LEN], size_t max_body, struct fwd_msg_hdr *h,
		       struct fwd_err *e)
{
	h->version = get16(in + 4);
	h->op = get16(in + 6);
	h->flags = get16(in + 8);
	h->len = get32(in + 12);
	if (get32(in) != FWD_MSG_MAGIC)
		/* A version-1 peer sends a 4-byte length and JSON: say so. */
		return fwd_err_fail(e, FWD_R_UNSUPPORTED_VERSION, NULL, 0, "magic",
				    "not a control-channel frame of version %d (magic %08x): the "
				    "peer speaks another protocol",
				    FWD_MSG_VERSION, get32(in));
	if (h->version != FWD_MSG_VERSION)
		return fwd_err_fail(e, FWD_R_UNSUPPORTED_VERSION, NULL, 0, "version",
				    "protocol version %u, this side speaks %d", h->version,
				    FWD_MSG_VERSION);
	if (descriptor_of(h->op, 0) == NULL)
		return fwd_err_fail(e, FWD_R_UNKNOWN_OP, NULL, 0, "op", "unknown op %u", h->op);
	if ((h->flags & ~(FWD_MSG_REPLY | FWD_MSG_ERROR)) || get16(in + 10) != 0 ||
	    h->flags == FWD_MSG_ERROR)
		return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "flags",
				    "flags %#x or reserved bits %#x not understood", h->flags,
				    get16(in + 10));
	if (h->flags == 0 && max_body > ops[h->op].request_max)
		max_body = ops[h->op].request_max;
	if (h->len > max_body)
		return fwd_err_fail(e, FWD_R_BODY_TOO_LARGE, NULL, 0, "length",
				    "a %u-byte %s body is larger than the %zu bytes allowed",
				    h->len, fwd_msg_op_name(h->op), max_body);
	return 0;
}

uint8_t *fwd_msg_pack(unsigned op, unsigned flags, const ProtobufCMessage *m, size_t *len)
{
	const ProtobufCMessageDescriptor *d = descriptor_of(op, flags);
	size_t n;
	uint8_t *out;

	if (d == NULL || m->descriptor != d)
		return NULL;
	n = protobuf_c_message_get_packed_size(m);
	if (n > FWD_MSG_MAX_BODY)
		return NULL;
	out = malloc(FWD_MSG_HDR_LEN + (n ? n : 1));
	if (out == NULL)
		return NULL;
	fwd_msg_hdr_encode(out, op, flags, (uint32_t)n);
	protobuf_c_message_pack(m, out + FWD_MSG_HDR_LEN);
	*len = FWD_MSG_HDR_LEN + n;
	return out;
}

uint8_t *fwd_msg_pack_error(unsigned op, const struct fwd_err *err, size_t *len)
{
	Regionfwd__Ctl__Error m = REGIONFWD__CTL__ERROR__INIT;

	m.code = (char *)fwd_reason_name(err->reason_code);
	m.file = (char *)err->file;
	m.line = err->line;
	m.path = (char *)err->path;
	m.reason = (char *)err->reason;
	if (descriptor_of(op, 0) == NULL)
		op = REGIONFWD__CTL__OP__OP_STATUS; /* an error about an unknown op: any known one frames it */
	return fwd_msg_pack(op, FWD_MSG_REPLY | FWD_MSG_ERROR, &m.base, len);
}

ProtobufCMessage *fwd_msg_unpack(const struct fwd_msg_hdr *h, const uint8_t *body,
				 struct fwd_err *e)
{
	const ProtobufCMessageDescriptor *d = descriptor_of(h->op, h->flags);
	ProtobufCMessage *m;

	if (d == NULL) {
		fwd_err_fail(e, FWD_R_UNKNOWN_OP, NULL, 0, "op", "unknown op %u", h->op);
		return NULL;
	}
	m = protobuf_c_message_unpack(d, NULL, h->len, body);
	if (m == NULL)
		fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, fwd_msg_op_name(h->op),
			     "the %u-byte body is not a valid %s message", h->len, d->short_name);
	return m;
}

void fwd_msg_error_to_err(const Regionfwd__Ctl__Error *m, struct fwd_err *err)
{
	int r = fwd_reason_from_name(m->code);

	fwd_err_fail(err, r < 0 ? FWD_R_INVALID : (enum fwd_reason)r, m->file, m->line, m->path,
		     "%s", m->reason && m->reason[0] ? m->reason : "no reason given");
}
