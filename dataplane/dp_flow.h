/*
 * dp_flow.h - per-lcore table of TCP flows that a content rule has decided,
 * so a verdict found on a flow's ClientHello, Host header or payload
 * (drop, mirror, count) applies to the rest of that flow without scanning.
 *
 * A dp_aged table (dp_aged.h), as the fragment table (dp_frag.h): fixed
 * memory, DP_FLOW_WAYS-way buckets, no allocation after init, one table per
 * worker (receive-side scaling sends a flow to one worker), time passed in
 * by the caller. An entry lives for an idle timeout, refreshed by every
 * packet that finds it; a full bucket evicts the entry closest to expiry
 * and the caller counts it.
 * An evicted or expired flow is simply scanned again: the table bounds
 * memory, never correctness of a single packet's scan.
 *
 * The verdict names its rule twice: by index in generation @gen, and by the
 * hash of the rule's name, so a flow decided before a table swap keeps its
 * verdict if the new generation still has that rule (and loses it if not).
 */
#ifndef DP_FLOW_H
#define DP_FLOW_H

#include <stdint.h>

#include "dp_aged.h"
#include "fwd_parse.h"

#define DP_FLOW_WAYS DP_AGED_WAYS

struct dp_flow_key {
	uint8_t family, proto;
	uint16_t sport, dport, pad;
	uint8_t src[16], dst[16];
};

struct dp_flow_entry { /* a dp_aged entry: key first, then expires */
	struct dp_flow_key key; /* 40 bytes */
	uint64_t expires; /* 0: empty */
	uint64_t gen; /* generation that decided */
	uint64_t rule_key; /* the deciding rule's key (dp_content.c rule_key) */
	uint32_t rule; /* its index in generation @gen */
} __attribute__((aligned(64)));

struct dp_flow_table {
	struct dp_aged t; /* of struct dp_flow_entry */
};

/** Bytes needed for @entries entries (rounded up to power-of-two buckets). */
uint64_t dp_flow_mem_size(uint32_t entries);

/** Initialise over caller-provided zeroed memory of dp_flow_mem_size() bytes. */
void dp_flow_init(struct dp_flow_table *ft, void *mem, uint32_t entries, uint64_t timeout);

static inline void dp_flow_key_of(const struct fwd_pkt *p, struct dp_flow_key *k)
{
	k->family = p->family;
	k->proto = p->proto;
	k->sport = p->sport;
	k->dport = p->dport;
	k->pad = 0;
	for (int i = 0; i < 16; i++) {
		k->src[i] = p->src[i];
		k->dst[i] = p->dst[i];
	}
	if (p->family == 4)
		for (int i = 4; i < 16; i++)
			k->src[i] = k->dst[i] = 0;
}

/** The live entry of flow @k, its idle timer restarted; NULL when unknown or expired. */
struct dp_flow_entry *dp_flow_lookup(struct dp_flow_table *ft, const struct dp_flow_key *k,
				     uint64_t now);

/**
 * Remember a flow's verdict (an existing entry is overwritten).
 * @return 1 when a live entry of another flow was evicted, else 0
 */
int dp_flow_insert(struct dp_flow_table *ft, const struct dp_flow_key *k, uint64_t gen,
		   uint32_t rule, uint64_t rule_key, uint64_t now);

#endif /* DP_FLOW_H */
