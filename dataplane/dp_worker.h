/*
 * dp_worker.h - the worker lcore: receive -> parse -> bulk LPM -> classify ->
 * rewrite -> transmit, run to completion on bursts of FWD_BURST.
 *
 * Everything a worker writes lives in its own cache-aligned struct dp_lcore
 * (counters, fragment table, TX staging, its capture ring); it shares
 * nothing writable with other workers, takes no lock, makes no syscall and
 * allocates nothing per packet (a mirror copy takes an mbuf from the pool,
 * as RX does; a running capture's copy one from the capture's pool).
 *
 * Counters are published per burst under a sequence count, so a reader
 * (control thread, telemetry) always sees a burst boundary where
 * rx = tx + sum(drops) holds exactly.
 */
#ifndef DP_WORKER_H
#define DP_WORKER_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include "dp_cap.h"
#include "dp_flow.h"
#include "dp_frag.h"
#include "dp_gen.h"
#include "fwd_defs.h"

/*
 * What the control thread publishes to the workers, and all a worker reads
 * of the process. struct dp_ctx owns it; every struct dp_lcore points to it.
 * It has a cache line of its own, so the control thread's and the telemetry
 * readers' writes to the rest of struct dp_ctx (its mutex above all) never
 * take away the line a worker reads on every loop.
 */
struct dp_pub {
	/* The published generation. The control thread stores it with release
	 * (dp_ctx_publish(): everything built before the store is visible), a
	 * worker loads it with acquire once per loop and holds it only until
	 * its quiescent report. The control thread, which alone stores it,
	 * reads it plainly. */
	struct dp_gen *gen;
	/* The running capture's match (dp_cap.h), or NULL: loaded with the
	 * generation, once per loop, with acquire (dp_cap_start() stores it
	 * with release once it is complete) and held until the quiescent
	 * report; unpublished by a store of NULL and an RCU grace period. NULL
	 * costs a worker one predictable branch per burst. */
	struct dp_capture *cap;
	/* Set once, at exit; workers poll it relaxed (they need only see it
	 * eventually: rte_eal_mp_wait_lcore() is the synchronisation point). */
	int quit;
	/* The RCU QSBR variable of the workers (thread id = worker index). Set
	 * before the workers start, never changed. */
	struct rte_rcu_qsbr *qsv;
	/* By ethdev id: 1 while the port reports its link down (the control
	 * thread polls it twice a second, dp_ctx_poll_links). Read only for
	 * the packets a send did not take, to count them as port_down rather
	 * than tx_full ("congestion" for a cable pulled: a probe). Relaxed
	 * both ways: a count, not a decision, and a poll late by one burst
	 * names one burst's reason wrong at most. */
	uint8_t port_down[RTE_MAX_ETHPORTS] __rte_cache_aligned; /* not the line above */
} __rte_cache_aligned;

struct dp_counters {
	uint64_t seq; /* odd while a burst is being accounted */
	uint64_t rx, rx_bytes, tx, tx_bytes;
	uint64_t drop[FWD_DROP_MAX];
	uint64_t evt[FWD_EVT_MAX];
};

/* Set in dp_txq_stage.link[] on a mirror copy (link ids are < FWD_MAX_LINKS). */
#define DP_TX_MIRROR 0x8000u

/* Packets staged for one egress port during a burst. The usual burst sends
 * everything and has no mirror copies: then flush only adds up links and
 * bytes, without the mirror and short-send handling. */
struct dp_txq_stage {
	uint16_t n;
	uint16_t nmirror; /* mirror copies among the n */
	struct rte_mbuf *m[2 * FWD_BURST]; /* a burst plus its mirror copies */
	uint16_t link[2 * FWD_BURST]; /* link id, | DP_TX_MIRROR on mirror copies */
	uint32_t len[2 * FWD_BURST]; /* pkt_len: a sent mbuf may not be read again */
};

struct dp_lcore {
	struct dp_counters cnt;
	const struct dp_pub *pub; /* all it reads of the process (struct dp_ctx owns it) */
	struct rte_mempool *pool; /* for mirror copies */
	/* A running capture's copies, to the control thread (dp_cap.h): this
	 * worker produces, the control thread consumes. */
	struct rte_ring *cap_ring;
	uint64_t cap_id, cap_n; /* the capture this worker copied cap_n packets for */
	/* This burst's capture (dp_worker_burst's argument): read where needed
	 * rather than kept live in a register across the burst. */
	const struct dp_capture *cap;
	unsigned lcore_id;
	uint16_t idx; /* worker index: RX queue on ingress ports, TX queue everywhere */
	uint16_t nrx;
	struct {
		uint16_t port, queue;
		/* The port's packet types and IPv4 checksum verdicts are used
		 * (dp_ports.verdicts); copied to rx_verdicts for each burst. */
		uint8_t verdicts;
	} rx[DP_MAX_PORTS];
	/* The burst being processed comes from a port whose verdicts are used. */
	uint8_t rx_verdicts;
	/* The node's mtu: the longest IP packet (frame less its Ethernet
	 * header and VLAN tags) any port sends; and that plus an untagged
	 * Ethernet header, the longest frame the fast parser may take. */
	uint32_t l3_max, fast_frame_max;
	/* The node's idle_sleep_us: the longest nap between polls once no
	 * packet came for a while; 0 = never nap. */
	uint32_t idle_sleep_us;
	uint64_t gen_seen;
	struct dp_frag_table frag;
	void *frag_mem;
	struct dp_flow_table flow; /* TCP flows decided by a content rule */
	void *flow_mem;
	uint16_t ndirty;
	uint16_t dirty[DP_MAX_PORTS]; /* ethdev ports staged this burst */
	struct dp_txq_stage tx[RTE_MAX_ETHPORTS];
	/* This burst's content scans, staged before its packets are forwarded
	 * (dp_content_prepare): cin[i] is packet i's input, fields 0 when it
	 * was not prepared; cprep[i] its extracted names and lookups. Written
	 * and read within one burst, only when the generation has content
	 * rules. */
	struct dp_content_input cin[FWD_BURST];
	struct dp_content_prep cprep[FWD_BURST];
	/* A running capture's parser drops, held from stage 1 to stage 3 so
	 * that they are copied where they came in the burst, not ahead of it
	 * (cap_held[i] NULL: packet i was not dropped by the parser). At the
	 * end, with the other state of bursts that need it: the hot fields'
	 * layout stays the one the benchmarks measured. */
	struct rte_mbuf *cap_held[FWD_BURST];
	uint8_t cap_held_drop[FWD_BURST]; /* 1 + its drop reason */
} __rte_cache_aligned;

/** Set @lc's bounds from the node's @mtu (the longest IP packet a port
 * sends); before its first burst. A frame longer is dropped as too_big. */
static inline void dp_worker_set_mtu(struct dp_lcore *lc, uint32_t mtu)
{
	lc->l3_max = mtu;
	lc->fast_frame_max = mtu + 14; /* an untagged Ethernet header */
}

/** lcore entry point (rte_eal_remote_launch); @arg is the struct dp_lcore. */
int dp_worker_main(void *arg);

/**
 * Process one received burst against generation @g: every mbuf is either
 * transmitted or freed and counted under exactly one drop reason. With a
 * capture @cap (NULL: none), packets it matches are also copied, with their
 * verdict, onto lc->cap_ring. The entries of @pkts are overwritten (scratch).
 * Exposed for the in-memory benchmark harness.
 */
void dp_worker_burst(struct dp_lcore *lc, const struct dp_gen *g, const struct dp_capture *cap,
		     struct rte_mbuf **pkts, uint16_t n);

/*
 * Where a burst's cycles go, for bench/burst_stages only: dp_worker.c built
 * with DP_WORKER_STAGE_TSC reads the TSC (after an lfence, so each reading
 * waits for the stage before it) at each stage boundary and adds the cycles
 * since the previous reading to the stage's sum. regionfwd itself is built
 * without it and carries no trace of it.
 */
enum dp_stage {
	DP_STAGE_PARSE, /* stage 1: fwd_parse_fast/full, address gather, rx counters */
	DP_STAGE_LPM, /* stage 2: fwd_fib4/6_lookup_bulk of the source addresses */
	DP_STAGE_CLASSIFY, /* stage 3's bulk loop: service, cell, policy or cell's link */
	DP_STAGE_FORWARD, /* stage 3's per-packet loop: cell counters, TTL, L2 rewrite, staging */
	DP_STAGE_TX, /* rte_eth_tx_burst (net_null in the harness: it frees the mbufs) */
	DP_STAGE_TX_COUNT, /* link and tx counters after the send, sequence count */
	DP_STAGE_MAX
};

#ifdef DP_WORKER_STAGE_TSC
/* TSC cycles per stage, and how many readings ended in it (each adds about
 * one reading's cost, which the harness measures and subtracts). */
extern uint64_t dp_stage_cycles[DP_STAGE_MAX], dp_stage_marks[DP_STAGE_MAX];
/* Starts a burst's timing (the reading the first stage is measured from). */
void dp_stage_begin(void);
#endif

/** Consistent copy of a worker's counters: retried while a burst's
 *  accounting is open (spinning, then yielding the CPU), however long. */
void dp_counters_read(const struct dp_counters *c, struct dp_counters *out);

#endif /* DP_WORKER_H */
