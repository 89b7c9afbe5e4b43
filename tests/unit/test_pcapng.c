/*
 * The pcapng blocks the control plane writes and walks (control/ctl_pcapng.h):
 * what it writes walks back block by block with its fields and comment;
 * a stream cut anywhere asks for more bytes; lengths that cannot be a block
 * are refused. tshark reading the blocks is tests/control/test_capture.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_pcapng.h"

static void test_written_blocks_walk_back(void **state)
{
	struct ctl_buf b = {0};
	struct ctl_pcapng_block blk;
	struct ctl_pcapng_epb_info e;
	uint8_t frame[61];
	char comment[128];
	size_t off = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)i;
	assert_int_equal(ctl_pcapng_idb(&b, "xdp:eth1", 65535), 0);
	assert_int_equal(ctl_pcapng_epb(&b, 3, 1796037304218467964ull, frame, 61, 1500,
					"xdp drop rule=deny-lab why=rule gen=2 in=eth1"),
			 0);
	assert_int_equal(ctl_pcapng_epb(&b, 3, 5, frame, 4, 4, NULL), 0);
	assert_int_equal(ctl_pcapng_isb(&b, 3, 7, 10, 2, "xdp capture: captured=8 lost=2"), 0);
	assert_int_equal(b.len % 4, 0);

	assert_int_equal(ctl_pcapng_block(b.data, b.len, &blk), 1);
	assert_int_equal(blk.type, CTL_PCAPNG_IDB);
	off += blk.len;
	assert_int_equal(ctl_pcapng_block(b.data + off, b.len - off, &blk), 1);
	assert_int_equal(blk.type, CTL_PCAPNG_EPB);
	assert_int_equal(ctl_pcapng_epb_info(&blk, &e), 0);
	assert_int_equal(e.ifid, 3);
	assert_int_equal(e.caplen, 61);
	assert_int_equal(e.origlen, 1500);
	assert_true(e.ts == 1796037304218467964ull);
	assert_memory_equal(e.data, frame, 61);
	ctl_pcapng_comment(&blk, comment, sizeof(comment));
	assert_string_equal(comment, "xdp drop rule=deny-lab why=rule gen=2 in=eth1");
	/* A short buffer gets the comment's start, terminated. */
	ctl_pcapng_comment(&blk, comment, 9);
	assert_string_equal(comment, "xdp drop");
	off += blk.len;
	assert_int_equal(ctl_pcapng_block(b.data + off, b.len - off, &blk), 1);
	ctl_pcapng_comment(&blk, comment, sizeof(comment));
	assert_string_equal(comment, ""); /* none */
	off += blk.len;
	assert_int_equal(ctl_pcapng_block(b.data + off, b.len - off, &blk), 1);
	assert_int_equal(blk.type, CTL_PCAPNG_ISB);
	ctl_pcapng_comment(&blk, comment, sizeof(comment));
	assert_string_equal(comment, "xdp capture: captured=8 lost=2");
	off += blk.len;
	assert_int_equal(off, b.len);
	assert_int_equal(ctl_pcapng_block(b.data + off, 0, &blk), 0);
	ctl_buf_free(&b);
}

static void test_cut_and_broken_streams(void **state)
{
	struct ctl_buf b = {0};
	struct ctl_pcapng_block blk;
	uint8_t frame[10] = {0};
	uint32_t len;

	(void)state;
	assert_int_equal(ctl_pcapng_epb(&b, 0, 1, frame, 10, 10, "x"), 0);
	/* Cut anywhere: not yet a block. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(ctl_pcapng_block(b.data, n, &blk), 0);
	assert_int_equal(ctl_pcapng_block(b.data, b.len, &blk), 1);
	/* A trailing length that differs, a length not a multiple of 4, under
	 * 12 or absurd: not pcapng. */
	b.data[b.len - 4] ^= 4;
	assert_int_equal(ctl_pcapng_block(b.data, b.len, &blk), -1);
	b.data[b.len - 4] ^= 4;
	memcpy(&len, b.data + 4, 4);
	for (uint32_t bad = 0; bad < 4; bad++) {
		uint32_t v = bad == 0 ? len + 2 : bad == 1 ? 8 : bad == 2 ? 0 : 0x7ffffffc;

		memcpy(b.data + 4, &v, 4);
		assert_int_equal(ctl_pcapng_block(b.data, b.len, &blk), -1);
	}
	ctl_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_written_blocks_walk_back),
		cmocka_unit_test(test_cut_and_broken_streams),
	};

	return cmocka_run_group_tests_name("pcapng", tests, NULL, NULL);
}
