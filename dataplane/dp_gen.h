/*
 * dp_gen.h - a table generation: everything a worker reads to forward, built
 * completely off the fast path and immutable once published, but for two
 * fields dp_gen_derive() writes on the live one for a delta: handed_over
 * (written by the control thread before the delta's publish takes the
 * context's lock, read under that lock: by the control thread, and by
 * telemetry's report, dp_ctx_report; never by a worker) and its content
 * state's table pointer
 * (swapped with release for a copy as whole as the one it replaces).
 *
 * A generation owns the validated table, its compiled classifier, the IPv4
 * and IPv6 FIBs (fwd_fib4 DIR-24-8 and fwd_fib6 trie, next hop = region id),
 * the L2 rewrite template of every link, and per-worker hit counters
 * (regions, services, policies, links) that only that worker writes.
 *
 * Lifecycle (dp_ctx.c): build -> publish with one release store -> workers
 * load it once per loop with acquire and report quiescence after the loop
 * -> the previous generation is freed after an rte_rcu_qsbr grace period,
 * its counters folded by name into the process totals first. Every packet is
 * handled by exactly one generation.
 */
#ifndef DP_GEN_H
#define DP_GEN_H

#include <stdint.h>

#include "dp_content.h"
#include "dp_node.h"
#include "dp_port.h"
#include "fwd_class.h"
#include "fwd_delta.h"
#include "fwd_err.h"
#include "fwd_fib4.h"
#include "fwd_fib6.h"
#include "fwd_table.h"

struct dp_link_out {
	uint16_t port_id; /* ethdev port */
	uint8_t node_port; /* index in the node config */
	uint8_t vlan; /* 1: hdr carries an 802.1Q tag */
	uint8_t hdr_len; /* 14, or 18 with the tag */
	/* The whole L2 header per family, EtherType included: [0] IPv4, [1] IPv6.
	 * The rewrite is one fixed-size copy. */
	uint8_t hdr[2][18];
};

/* A packet and byte count side by side: one cache line per counted thing. */
struct dp_pb {
	uint64_t pkts, bytes;
};

/* A cell_link value with this bit (and not FWD_LINK_NONE) names a group:
 * the low bits are its id. Link ids stay below it (FWD_MAX_LINKS). */
#define DP_CELL_GROUP 0x4000u
_Static_assert(FWD_MAX_LINKS <= DP_CELL_GROUP && FWD_MAX_GROUPS <= DP_CELL_GROUP,
	       "link and group ids must leave DP_CELL_GROUP free");

/* Tables with at most this many (region, service) cells count per cell. */
#define DP_CELL_COUNTERS_MAX 65536u

/* Per-worker hit counters of one generation, indexed by the table's ids.
 * When the table has at most DP_CELL_COUNTERS_MAX (region, service) cells,
 * the fast path counts one packet/byte pair per cell instead of three
 * counters (region, service, policy): readers derive those by summing the
 * cells, a cell's policy being fixed for the generation (the classifier's
 * matrix). Larger tables count region, service and policy directly. Readers
 * add both forms; the unused one stays zero. */
struct dp_gen_cnt {
	struct dp_pb *cell; /* nregions x nservices, or NULL */
	struct dp_pb *region, *service, *link;
	uint64_t *policy;
	uint64_t *content_match; /* per content rule: packets whose scan matched it */
	uint64_t *content_flow; /* per content rule: packets that took its flow verdict */
};

/* A pair of FIBs (next hop = region id) and what their tables take. */
struct dp_fibs {
	struct fwd_fib4 *fib4;
	struct fwd_fib6 *fib6;
	uint64_t bytes; /* memory both map: tbl24s, groups */
};

struct dp_gen {
	uint64_t id;
	/* This process's own, strictly increasing number for the generation: what
	 * the fragment and flow tables remember. Ids come from outside (regiond,
	 * or the local count for --table) and may repeat; a repeat must never make
	 * a table entry of one generation pass for another's. */
	uint64_t seq;
	uint64_t hash; /* fwd_hash64 of the document text */
	uint64_t created_unix_ns;
	struct fwd_table *table;
	struct fwd_class *cls;
	struct fwd_fib4 *fib4;
	struct fwd_fib6 *fib6;
	struct dp_content *content; /* NULL when the table has no content rules */
	/* Per (region, service) cell, when the cell's whole decision is "send
	 * to this link" or "send to this group's slot for the flow" (no mirror,
	 * no content rule in scope, untagged egress on every link it can pick):
	 * the link id, or DP_CELL_GROUP | group id; else FWD_LINK_NONE. The fast
	 * path sends those packets without reading the policy. NULL when the
	 * table counts without cells (more than DP_CELL_COUNTERS_MAX). */
	uint16_t *cell_link;
	/* 1 when some cell_link is not FWD_LINK_NONE. Without one (every link
	 * tagged, say), bursts of both families take the general path: the
	 * mixed plain-cell loop would hand each packet to forward_general()
	 * (dp_worker.c), which costs more. */
	uint8_t any_cell_link;
	struct dp_link_out *links;
	uint64_t *link_keys; /* per link: fwd_hash64 of its name, stable across generations */
	/* Per region and per service: fwd_hash64 of its name. A capture's
	 * match names them (dp_cap.h) and holds in every generation that has
	 * the name, whatever its id there. */
	uint64_t *region_keys, *service_keys;
	uint32_t key_mask; /* key_index: open addressing, key -> link id */
	struct {
		uint64_t key;
		uint16_t link;
	} * key_index;
	uint64_t fib_bytes; /* DPDK memory of both FIBs: tbl24, tbl8 groups, RIB node pools */
	/* 1 once a generation derived from this one by a delta (dp_gen_derive)
	 * took over everything but the table and the FIBs: the classifier,
	 * links, content state and the counters themselves, so counting goes
	 * on without a fold. Freeing this one then frees only its table and
	 * whatever FIBs it still holds. */
	uint8_t handed_over;
	uint16_t nworkers;
	void *cnt_mem;
	uint64_t *fold_sum; /* readers' scratch for region/service/policy sums */
	size_t fold_sum_words;
	struct dp_gen_cnt cnt[DP_MAX_WORKERS];
};

/**
 * Build a generation from a validated table; takes ownership of @t (freed
 * on failure too). Links whose port is not in the node config are refused.
 * @content_db: the content databases shipped with the table, or NULL to
 * compile them here (see dp_content_build).
 * @return the generation, or NULL with @err filled
 */
struct dp_gen *dp_gen_build(struct fwd_table *t, uint64_t id, uint64_t hash,
			    const struct dp_node *node, const struct dp_ports *ports,
			    uint16_t nworkers, const struct fwd_hs_dbs *content_db,
			    struct fwd_err *err);

/** This generation's id for the link with name key @key, or FWD_LINK_NONE. */
static inline uint16_t dp_gen_link_by_key(const struct dp_gen *g, uint64_t key)
{
	for (uint32_t h = (uint32_t)key & g->key_mask;; h = (h + 1) & g->key_mask) {
		if (g->key_index[h].link == FWD_LINK_NONE || g->key_index[h].key == key)
			return g->key_index[h].link;
	}
}

/**
 * Build FIBs holding @t's region prefixes, sized with room for deltas.
 * Callable from any thread (names come from an atomic sequence).
 * @return 0, or -errno with @err
 */
int dp_fibs_build(const struct fwd_table *t, struct dp_fibs *f, struct fwd_err *err);

/** Apply effective changes (fwd_delta_apply's: sorted, removals before adds
 *  of a prefix) to @f, which must mirror the table before them; @t is the
 *  table after them (each change's range is rewritten from it).
 *  @return 0, or -errno (-ENOMEM, -EINVAL): @f is then partly changed and must be
 *  freed. */
int dp_fibs_apply(struct dp_fibs *f, const struct fwd_table *t, const struct fwd_delta *eff);

/** Free both FIBs (NULL-safe) and zero @f. */
void dp_fibs_free(struct dp_fibs *f);

/**
 * The generation a delta makes from @g: table @t (the delta applied, owned
 * from here on) and FIBs @f (taken over), everything else taken over from
 * @g, which is marked handed_over. @g must be the published generation and
 * is retired by the caller's publish.
 * @return the generation, or NULL (out of memory: @t and @f are not taken,
 *         @g unchanged)
 */
struct dp_gen *dp_gen_derive(struct dp_gen *g, struct fwd_table *t, struct dp_fibs *f, uint64_t id,
			     uint64_t hash);

/** Free a generation no worker can see any more. NULL-safe. */
void dp_gen_free(struct dp_gen *g);

/** Region of an address through the generation's own FIB (for explain and tests). */
uint16_t dp_gen_region_of(const struct dp_gen *g, int family, const uint8_t *addr);

#endif /* DP_GEN_H */
