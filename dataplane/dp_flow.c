#include "dp_flow.h"

#include <string.h>

#include "fwd_pktops.h"

static uint32_t nbuckets_for(uint32_t entries)
{
	uint32_t b = 1;

	while (b * DP_FLOW_WAYS < entries && b < (1u << 24))
		b <<= 1;
	return b;
}

uint64_t dp_flow_mem_size(uint32_t entries)
{
	return (uint64_t)nbuckets_for(entries) * DP_FLOW_WAYS * sizeof(struct dp_flow_entry);
}

void dp_flow_init(struct dp_flow_table *ft, void *mem, uint32_t entries, uint64_t timeout)
{
	ft->e = mem;
	ft->bucket_mask = nbuckets_for(entries) - 1;
	ft->timeout = timeout;
}

static uint32_t key_hash(const struct dp_flow_key *k)
{
	uint32_t h = 0x3c6ef372u;

	h = fwd_hash_mix(h, (uint32_t)k->family << 8 | k->proto);
	h = fwd_hash_mix(h, (uint32_t)k->sport << 16 | k->dport);
	for (int i = 0; i < 16; i += 4) {
		h = fwd_hash_mix(h, fwd_rd32(k->src + i));
		h = fwd_hash_mix(h, fwd_rd32(k->dst + i));
	}
	return fwd_hash_final(h, sizeof(*k));
}

struct dp_flow_entry *dp_flow_lookup(struct dp_flow_table *ft, const struct dp_flow_key *k,
				     uint64_t now)
{
	struct dp_flow_entry *b = &ft->e[(key_hash(k) & ft->bucket_mask) * DP_FLOW_WAYS];

	for (int i = 0; i < DP_FLOW_WAYS; i++)
		if (b[i].expires > now && memcmp(&b[i].key, k, sizeof(*k)) == 0) {
			b[i].expires = now + ft->timeout;
			return &b[i];
		}
	return NULL;
}

int dp_flow_insert(struct dp_flow_table *ft, const struct dp_flow_key *k, uint64_t gen,
		   uint32_t rule, uint64_t rule_key, uint64_t now)
{
	struct dp_flow_entry *b = &ft->e[(key_hash(k) & ft->bucket_mask) * DP_FLOW_WAYS];
	struct dp_flow_entry *victim = NULL;
	int evicted = 0;

	for (int i = 0; i < DP_FLOW_WAYS; i++) {
		if (b[i].expires > now && memcmp(&b[i].key, k, sizeof(*k)) == 0) {
			victim = &b[i]; /* the same flow decided again (after a swap): overwrite */
			break;
		}
		if (b[i].expires <= now) {
			if (victim == NULL || victim->expires > now)
				victim = &b[i];
		} else if (victim == NULL || (victim->expires > now && b[i].expires < victim->expires)) {
			victim = &b[i];
		}
	}
	if (victim->expires > now && memcmp(&victim->key, k, sizeof(*k)) != 0)
		evicted = 1;
	victim->key = *k;
	victim->gen = gen;
	victim->rule = rule;
	victim->rule_key = rule_key;
	victim->expires = now + ft->timeout;
	return evicted;
}
