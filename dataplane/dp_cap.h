/*
 * dp_cap.h - packet capture at regionfwd: the packets the workers handle,
 * dropped ones included, copied with their verdict and written as pcapng
 * whose packet comments carry that verdict (docs/architecture.md, Capture).
 *
 * Two sides, and what each may cost:
 *
 *  - Workers (dp_worker.c) load the published match, struct dp_capture, once
 *    per loop with the generation. NULL, the usual case, costs one
 *    predictable branch per burst and nothing per packet. When set, a
 *    burst takes the general path, and each packet whose verdict and frame
 *    match is copied (rte_pktmbuf_copy into the capture's own pool, the
 *    verdict in the copy's private area, struct dp_cap_rec) onto the
 *    worker's own single-producer, single-consumer ring. A full ring or an
 *    empty pool counts capture_overflow and moves on: a worker never waits
 *    for a capture, and a capture never takes a forwarding mbuf.
 *  - The control thread drains the rings (dp_cap_poll once per control
 *    loop; dp_cap_flush before a generation is freed), formats each copy as
 *    a pcapng enhanced packet block with rte_pcapng_copy, appends the
 *    verdict as the block's comment (dp_cap_comment_append: 22.11's
 *    rte_pcapng_copy takes none), and writes the blocks with
 *    rte_pcapng_write_packets into a memory file that OP_CAPTURE_READ hands
 *    to regiond, whole blocks at a time. At most DP_CAP_BUF_MAX bytes wait
 *    there; what does not fit is counted lost, never waited for.
 *
 * Why the control thread formats, not the workers: 22.11's rte_pcapng_copy
 * converts the TSC to wall time through static state it updates without
 * synchronisation (a lazy start, then a step each second), so calls from
 * several workers race. One writer thread calls it, with the TSC the worker
 * read when it copied the packet.
 *
 * Lifetimes: a struct dp_capture is published with a release store and
 * unpublished with a relaxed store followed by an RCU grace period (the
 * generation's rte_rcu_qsbr variable: workers hold it only until their
 * quiescent report), after which no worker can copy for it and it is freed.
 * A record names the generation that decided it; the generation outlives
 * the record because dp_ctx_publish() flushes the rings after the grace
 * period and before the old generation is freed.
 *
 * One capture at a time; a second start is refused (capture_busy). A
 * capture nobody reads for DP_CAP_LEASE_MS (its regiond went away) ends.
 */
#ifndef DP_CAP_H
#define DP_CAP_H

#include <stdint.h>

#include <rte_bpf.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dp_gen.h"
#include "fwd_defs.h"
#include "fwd_err.h"

struct dp_lcore;
struct dp_node;
struct dp_ports;
struct dp_pub;

#define DP_CAP_BUF_MAX (4u * 1024 * 1024) /* pcapng waiting for regiond */
#define DP_CAP_LEASE_MS FWD_CAPTURE_LEASE_MS /* a capture nobody reads for this long ends */
#define DP_CAP_FILTER_MAX 1024 /* a filter expression's bytes */
#define DP_CAP_COMMENT_MAX 384 /* a verdict comment's bytes */

/* What a worker reads of the running capture: immutable while published. */
struct dp_capture {
	/* Only packets whose region, service or link has this name (its
	 * fwd_hash64, as dp_gen.h keys them; 0: any): a name holds across
	 * generations whatever its id. */
	uint64_t region_key, service_key, link_key;
	uint8_t drops_only; /* only packets that are dropped */
	uint8_t reason; /* 0 any, else only drops with 1 + enum fwd_drop */
	/* The filter expression (libpcap -> cBPF -> rte_bpf_convert), run on
	 * the frame as received; NULL: none. jit: its native code, or NULL to
	 * interpret it (rte_bpf_exec). */
	struct rte_bpf *bpf;
	uint64_t (*jit)(void *);
	struct rte_mempool *pool; /* the workers' copies */
	uint64_t id; /* the capture's */
	/* A worker copies at most this many (0: no limit): the writer stops at
	 * the count, and a worker need not fill its ring past it. Counted per
	 * worker (dp_lcore.cap_n, reset when id changes): no shared counter. */
	uint64_t count;
};

/* A copy's verdict, in the private area of its mbuf. */
struct dp_cap_rec {
	/* The generation that decided. Alive until the writer has drained the
	 * record: dp_ctx_publish() flushes before it frees a generation. */
	const struct dp_gen *g;
	uint64_t tsc; /* when the worker copied it */
	uint16_t worker;
	uint16_t region, service, policy; /* valid when classified */
	uint16_t link, mirror; /* FWD_LINK_NONE: none */
	uint8_t drop; /* 0 forwarded, else 1 + enum fwd_drop */
	uint8_t classified; /* 0: dropped by the parser, or a fragment that followed
			       its first fragment across generations */
};

struct dp_cap;

/**
 * The capture machinery of a process, made once at start so that a capture
 * never fails for memory at an incident: the copies' pool (node
 * capture_mbufs), a small pool for the formatted blocks, and one ring of
 * node capture_ring entries per worker, handed to each worker's
 * dp_lcore.cap_ring. @frame_max: the largest frame a port receives.
 * NULL with errno when DPDK memory is short.
 */
struct dp_cap *dp_cap_create(const struct dp_node *node, const struct dp_ports *ports,
			     struct dp_lcore *const *workers, uint16_t nworkers,
			     uint32_t frame_max);

/** Stop what runs (workers must be stopped) and free everything. NULL-safe. */
void dp_cap_free(struct dp_cap *c);

/* A start request, checked (the control channel's CaptureStart). */
struct dp_cap_req {
	const char *owner;
	int drops_only;
	const char *reason, *region, *service, *link, *filter; /* "" or NULL: any */
	uint64_t count; /* 0: until stopped */
};

/**
 * Start a capture matching @req against generation @g (names are checked
 * there: a name it lacks is refused) and publish it to the workers through
 * @pub. @return 0 with *@id and *@interfaces (interface description blocks
 * the stream holds), or -errno with @err (FWD_R_INVALID_CAPTURE,
 * FWD_R_CAPTURE_BUSY, FWD_R_INTERNAL); nothing runs then.
 */
int dp_cap_start(struct dp_cap *c, struct dp_pub *pub, const struct dp_gen *g,
		 const struct dp_cap_req *req, uint64_t *id, uint32_t *interfaces,
		 struct fwd_err *err);

/* What a read hands over. */
struct dp_cap_chunk {
	uint8_t *data; /* whole pcapng blocks (malloc'd; free it) */
	size_t len;
	uint32_t packets; /* enhanced packet blocks among them */
	int done; /* the capture ended; nothing follows */
	uint64_t captured, lost;
	char end[128]; /* why it ended, once done */
};

/**
 * What capture @id wrote since the last read; with @stop, stop it first
 * (the workers' copies drained, the statistics block written) and hand over
 * the rest. A capture that is done is released by this read.
 * @return 0, or -errno with @err (FWD_R_NO_CAPTURE: no such capture)
 */
int dp_cap_read(struct dp_cap *c, struct dp_pub *pub, uint64_t id, int stop,
		struct dp_cap_chunk *out, struct fwd_err *err);

/** The control loop's turn: drain the rings into the pcapng, end a capture
 *  at its count or past its lease. Cheap when no capture runs. */
void dp_cap_poll(struct dp_cap *c, struct dp_pub *pub);

/** Drain every ring now (the grace period of a generation swap is over and
 *  the old generation is about to be freed). */
void dp_cap_flush(struct dp_cap *c);

/**
 * Append @comment as an opt_comment option to the enhanced packet block
 * rte_pcapng_copy() made in @m (its last 4 bytes are the trailing block
 * length; 22.11 writes no end-of-options), then opt_endofopt, and patch
 * both block lengths. @return 0, or -ENOSPC when the mbuf lacks tailroom
 * (the block is unchanged).
 */
int dp_cap_comment_append(struct rte_mbuf *m, const char *comment);

/** The verdict comment of @r for a packet received on node port @in. */
void dp_cap_comment(const struct dp_cap_rec *r, const char *in, char *buf, size_t len);

#endif /* DP_CAP_H */
