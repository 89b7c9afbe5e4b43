#include "dp_flow.h"

#define LAYOUT DP_AGED_LAYOUT(struct dp_flow_entry)
DP_AGED_CHECK(struct dp_flow_entry);

uint64_t dp_flow_mem_size(uint32_t entries)
{
	return dp_aged_mem_size(entries, sizeof(struct dp_flow_entry));
}

void dp_flow_init(struct dp_flow_table *ft, void *mem, uint32_t entries, uint64_t timeout)
{
	dp_aged_init(&ft->t, mem, entries, timeout);
}

static inline uint32_t key_hash(const struct dp_flow_key *k)
{
	return dp_aged_hash(0x3c6ef372u, (uint32_t)k->family << 8 | k->proto,
			    (uint32_t)k->sport << 16 | k->dport, k->src, k->dst, sizeof(*k));
}

struct dp_flow_entry *dp_flow_lookup(struct dp_flow_table *ft, const struct dp_flow_key *k,
				     uint64_t now)
{
	return dp_aged_lookup(&ft->t, LAYOUT, key_hash(k), k, now, 1); /* an idle timeout */
}

int dp_flow_insert(struct dp_flow_table *ft, const struct dp_flow_key *k, uint64_t gen,
		   uint32_t rule, uint64_t rule_key, uint64_t now)
{
	int evicted; /* the same flow decided again (after a swap): overwritten */
	struct dp_flow_entry *e = dp_aged_insert(&ft->t, LAYOUT, key_hash(k), k, now, &evicted);

	e->gen = gen;
	e->rule = rule;
	e->rule_key = rule_key;
	return evicted;
}
