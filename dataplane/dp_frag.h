/*
 * dp_frag.h - per-lcore table that lets every fragment of a datagram take
 * the decision of its first fragment.
 *
 * A first fragment carries the ports, so it is classified normally and its
 * decision is remembered under (family, proto, id, src, dst). Later
 * fragments find it here. Fragments that arrive before their first fragment
 * (or after it aged out) are dropped and counted as frag_no_first: without
 * the ports nobody can know the service, and guessing could send protected
 * data out of region. Receive-side scaling hashes on addresses only
 * (dp_port.c), so all fragments of a datagram reach the same worker.
 *
 * The table is a dp_aged table (dp_aged.h): fixed memory, no allocation
 * after init, DP_FRAG_WAYS-way buckets; a bucket that is full evicts its
 * entry closest to expiry (counted). Entries expire a timeout after their
 * first fragment (a lookup does not extend it). Time is passed in by the
 * caller (TSC ticks), so the module is pure C and tested without DPDK. One
 * table per worker: no sharing, no locks.
 */
#ifndef DP_FRAG_H
#define DP_FRAG_H

#include <stdint.h>

#include "dp_aged.h"
#include "fwd_class.h"
#include "fwd_parse.h"

#define DP_FRAG_WAYS DP_AGED_WAYS

struct dp_frag_key {
	uint8_t family, proto;
	uint16_t pad;
	uint32_t id;
	uint8_t src[16], dst[16];
};

struct dp_frag_entry { /* a dp_aged entry: key first, then expires */
	struct dp_frag_key key; /* 40 bytes */
	uint64_t expires; /* 0: empty */
	uint64_t gen; /* generation the decision belongs to */
	uint64_t link_key, mirror_key; /* name keys of d.link and d.mirror (dp_gen.h) */
	struct fwd_decision d;
	uint8_t proto; /* the first fragment's protocol and destination port: */
	uint16_t dport; /* its service in a newer generation (dp_worker.c) */
	uint8_t scoped; /* content rules read it: its verdict was its payload's too */
} __attribute__((aligned(64)));

struct dp_frag_table {
	struct dp_aged t; /* of struct dp_frag_entry */
};

/** Bytes needed for @entries entries (rounded up to a power-of-two buckets). */
uint64_t dp_frag_mem_size(uint32_t entries);

/**
 * Initialise over caller-provided zeroed memory of dp_frag_mem_size() bytes.
 * @param timeout  lifetime of an entry in the caller's time unit
 */
void dp_frag_init(struct dp_frag_table *ft, void *mem, uint32_t entries, uint64_t timeout);

static inline void dp_frag_key_of(const struct fwd_pkt *p, struct dp_frag_key *k)
{
	k->family = p->family;
	k->proto = p->family == 4 ? p->proto : 0; /* IPv6 ids are per (src, dst) */
	k->pad = 0;
	k->id = p->frag_id;
	for (int i = 0; i < 16; i++) {
		k->src[i] = p->src[i];
		k->dst[i] = p->dst[i];
	}
	if (p->family == 4)
		for (int i = 4; i < 16; i++)
			k->src[i] = k->dst[i] = 0;
}

/**
 * Find the decision of a datagram's first fragment.
 * @return the entry, or NULL when unknown or expired
 */
const struct dp_frag_entry *dp_frag_lookup(const struct dp_frag_table *ft,
					   const struct dp_frag_key *k, uint64_t now);

/**
 * Remember a first fragment's decision: a duplicate first fragment
 * refreshes it, one of the same service under a newer generation replaces
 * it (unless content rules read either: @scoped), one that disagrees
 * leaves frag_invalid for a timeout (dp_frag.c).
 * @return 1 when a live entry was evicted to make room, else 0
 */
int dp_frag_insert(struct dp_frag_table *ft, const struct dp_frag_key *k, uint64_t gen,
		   const struct fwd_decision *d, uint64_t link_key, uint64_t mirror_key,
		   uint8_t proto, uint16_t dport, uint8_t scoped, uint64_t now);

#endif /* DP_FRAG_H */
