/*
 * ctl_pcapng.h - the few pcapng blocks the control plane writes or walks
 * (draft-ietf-opsawg-pcapng): regiond appends the XDP filter's drops to a
 * capture regionfwd writes with rte_pcapng (an interface description block
 * per XDP interface, an enhanced packet block per drop with its comment, an
 * interface statistics block at the end); regionctl walks a stream's blocks
 * to count packets, print them, and cut an interrupted file at the last
 * whole block.
 *
 * regiond is not a DPDK process (rte_pcapng formats mbufs), so these few
 * blocks are written here, in the byte order of the section regionfwd
 * started: this host's, as rte_pcapng writes it. Pure C, no I/O.
 */
#ifndef CTL_PCAPNG_H
#define CTL_PCAPNG_H

#include <stddef.h>
#include <stdint.h>

#define CTL_PCAPNG_SHB 0x0a0d0d0au
#define CTL_PCAPNG_IDB 0x00000001u
#define CTL_PCAPNG_EPB 0x00000006u
#define CTL_PCAPNG_ISB 0x00000005u
#define CTL_PCAPNG_OPT_COMMENT 1
#define CTL_PCAPNG_MAX_BLOCK (16u * 1024 * 1024) /* a sane block is far smaller */

/* A growable byte buffer the writers append to. */
struct ctl_buf {
	uint8_t *data;
	size_t len, cap;
};

/** Append raw bytes. @return 0 or -ENOMEM */
int ctl_buf_put(struct ctl_buf *b, const void *p, size_t n);
void ctl_buf_free(struct ctl_buf *b);

/** An interface description block: Ethernet, nanosecond timestamps,
 *  @snaplen, named @name. */
int ctl_pcapng_idb(struct ctl_buf *b, const char *name, uint32_t snaplen);

/** An enhanced packet block on interface @ifid at @ts_ns (Unix time), @caplen
 *  bytes of a frame of @origlen, with @comment (NULL: none). */
int ctl_pcapng_epb(struct ctl_buf *b, uint32_t ifid, uint64_t ts_ns, const uint8_t *data,
		   uint32_t caplen, uint32_t origlen, const char *comment);

/** An interface statistics block for @ifid: received @recv, dropped @drop,
 *  with @comment. */
int ctl_pcapng_isb(struct ctl_buf *b, uint32_t ifid, uint64_t ts_ns, uint64_t recv, uint64_t drop,
		   const char *comment);

/* A block found in a byte stream. */
struct ctl_pcapng_block {
	uint32_t type, len; /* len: the whole block, both length fields included */
	const uint8_t *p; /* its first byte */
};

/**
 * The block at the start of @p (@n bytes) in this host's byte order.
 * @return 1 with @out when a whole block is there, 0 when more bytes are
 * needed, -1 when the bytes cannot be a block (a length under 12, not a
 * multiple of 4, over CTL_PCAPNG_MAX_BLOCK, or trailing length differs).
 */
int ctl_pcapng_block(const uint8_t *p, size_t n, struct ctl_pcapng_block *out);

/** The first opt_comment of enhanced packet or statistics block @b, copied
 *  into @buf (""): its options follow the fixed part. */
void ctl_pcapng_comment(const struct ctl_pcapng_block *b, char *buf, size_t len);

/* An enhanced packet block's fixed fields. */
struct ctl_pcapng_epb_info {
	uint32_t ifid, caplen, origlen;
	uint64_t ts; /* in the interface's resolution (ns for every block we make or read) */
	const uint8_t *data;
};

/** @return 0 with @out, or -1 when @b is not a well-formed EPB. */
int ctl_pcapng_epb_info(const struct ctl_pcapng_block *b, struct ctl_pcapng_epb_info *out);

#endif /* CTL_PCAPNG_H */
