/*
 * The control channel's framing (common/fwd_msg.c): every op's request and
 * reply round-trip through a frame; every way a header can be wrong is
 * refused with its own reason before a body would be read; op names come
 * from the proto.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fwd_msg.h"

static void test_round_trip(void **state)
{
	Regionfwd__Ctl__PushRequest p = REGIONFWD__CTL__PUSH_REQUEST__INIT;
	ProtobufCBinaryData db[2] = {{3, (uint8_t *)"\x00\x01\x02"}, {0, NULL}};
	struct fwd_msg_hdr h;
	struct fwd_err e;
	Regionfwd__Ctl__PushRequest *q;
	uint8_t *f;
	size_t n;

	(void)state;
	p.generation = 42;
	p.name = (char *)"regiond";
	p.document.data = (uint8_t *)"regions: {}\n";
	p.document.len = 12;
	p.has_content = 1;
	p.content_rules_hash = 0x0123456789abcdefull;
	p.n_content_db = 2;
	p.content_db = db;
	f = fwd_msg_pack(REGIONFWD__CTL__OP__OP_PUSH, 0, &p.base, &n);
	assert_non_null(f);
	assert_int_equal(fwd_msg_hdr_decode(f, FWD_MSG_MAX_BODY, &h, &e), 0);
	assert_int_equal(h.op, REGIONFWD__CTL__OP__OP_PUSH);
	assert_int_equal(h.len, n - FWD_MSG_HDR_LEN);
	q = (Regionfwd__Ctl__PushRequest *)fwd_msg_unpack(&h, f + FWD_MSG_HDR_LEN, &e);
	assert_non_null(q);
	assert_int_equal(q->generation, 42);
	assert_string_equal(q->name, "regiond");
	assert_int_equal(q->content_rules_hash, 0x0123456789abcdefull);
	assert_int_equal(q->n_content_db, 2);
	assert_memory_equal(q->content_db[0].data, "\x00\x01\x02", 3); /* binary, as it was */
	assert_int_equal(q->content_db[1].len, 0);
	protobuf_c_message_free_unpacked(&q->base, NULL);
	free(f);
	/* A message that is not the op's is refused by the packer. */
	assert_null(fwd_msg_pack(REGIONFWD__CTL__OP__OP_STATUS, 0, &p.base, &n));
	assert_null(fwd_msg_pack(REGIONFWD__CTL__OP__OP_PUSH, FWD_MSG_REPLY, &p.base, &n));
}

static void test_error_reply(void **state)
{
	struct fwd_err in, out;
	struct fwd_msg_hdr h;
	ProtobufCMessage *m;
	uint8_t *f;
	size_t n;

	(void)state;
	fwd_err_fail(&in, FWD_R_RESIDENCY_VIOLATION, "t.yaml", 9, "residency[0]", "breaks it");
	f = fwd_msg_pack_error(REGIONFWD__CTL__OP__OP_PUSH, &in, &n);
	assert_non_null(f);
	assert_int_equal(fwd_msg_hdr_decode(f, FWD_MSG_MAX_BODY, &h, &out), 0);
	assert_int_equal(h.flags, FWD_MSG_REPLY | FWD_MSG_ERROR);
	m = fwd_msg_unpack(&h, f + FWD_MSG_HDR_LEN, &out);
	assert_non_null(m);
	fwd_msg_error_to_err((Regionfwd__Ctl__Error *)m, &out);
	assert_int_equal(out.reason_code, FWD_R_RESIDENCY_VIOLATION);
	assert_string_equal(out.file, "t.yaml");
	assert_int_equal(out.line, 9);
	assert_string_equal(out.path, "residency[0]");
	assert_string_equal(out.reason, "breaks it");
	protobuf_c_message_free_unpacked(m, NULL);
	free(f);
}

/* Each bad header field alone, and the reason it gets. */
static void test_bad_headers(void **state)
{
	static const struct {
		int at, width;
		uint32_t value;
		enum fwd_reason reason;
		const char *path;
	} cases[] = {
		{0, 4, 0x0000000e, FWD_R_UNSUPPORTED_VERSION, "magic"}, /* a v1 length prefix */
		{4, 2, 1, FWD_R_UNSUPPORTED_VERSION, "version"},
		{4, 2, 3, FWD_R_UNSUPPORTED_VERSION, "version"},
		{6, 2, 0, FWD_R_UNKNOWN_OP, "op"},
		{6, 2, 77, FWD_R_UNKNOWN_OP, "op"},
		{8, 2, 0x4, FWD_R_BAD_REQUEST, "flags"},
		{8, 2, FWD_MSG_ERROR, FWD_R_BAD_REQUEST, "flags"}, /* an error that is no reply */
		{10, 2, 1, FWD_R_BAD_REQUEST, "flags"},
		{12, 4, 1001, FWD_R_BODY_TOO_LARGE, "length"},
	};
	uint8_t f[FWD_MSG_HDR_LEN];
	struct fwd_msg_hdr h;
	struct fwd_err e;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fwd_msg_hdr_encode(f, REGIONFWD__CTL__OP__OP_STATUS, 0, 10);
		for (int k = 0; k < cases[i].width; k++)
			f[cases[i].at + k] =
				(uint8_t)(cases[i].value >> (8 * (cases[i].width - 1 - k)));
		memset(&e, 0, sizeof(e));
		assert_true(fwd_msg_hdr_decode(f, 1000, &h, &e) < 0);
		assert_int_equal(e.reason_code, cases[i].reason);
		assert_string_equal(e.path, cases[i].path);
	}
	fwd_msg_hdr_encode(f, REGIONFWD__CTL__OP__OP_STATUS, 0, 1000);
	assert_int_equal(fwd_msg_hdr_decode(f, 1000, &h, &e), 0); /* the limit itself is fine */
}

static void test_garbage_body(void **state)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff};
	struct fwd_msg_hdr h = {FWD_MSG_VERSION, REGIONFWD__CTL__OP__OP_EXPLAIN, 0, sizeof(junk)};
	struct fwd_err e;

	(void)state;
	assert_null(fwd_msg_unpack(&h, junk, &e));
	assert_int_equal(e.reason_code, FWD_R_BAD_REQUEST);
	assert_string_equal(e.path, "explain");
}

static void test_op_names(void **state)
{
	(void)state;
	assert_string_equal(fwd_msg_op_name(REGIONFWD__CTL__OP__OP_PUSH), "push");
	assert_string_equal(fwd_msg_op_name(REGIONFWD__CTL__OP__OP_EXPLAIN), "explain");
	assert_string_equal(fwd_msg_op_name(0), "?");
	assert_string_equal(fwd_msg_op_name(999), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_bad_headers), cmocka_unit_test(test_garbage_body),
		cmocka_unit_test(test_op_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
