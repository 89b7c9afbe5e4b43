#include "dp_frag.h"

#include <string.h>

#include "fwd_pktops.h"

static uint32_t nbuckets_for(uint32_t entries)
{
	uint32_t b = 1;

	while (b * DP_FRAG_WAYS < entries && b < (1u << 24))
		b <<= 1;
	return b;
}

uint64_t dp_frag_mem_size(uint32_t entries)
{
	return (uint64_t)nbuckets_for(entries) * DP_FRAG_WAYS * sizeof(struct dp_frag_entry);
}

void dp_frag_init(struct dp_frag_table *ft, void *mem, uint32_t entries, uint64_t timeout)
{
	ft->e = mem;
	ft->bucket_mask = nbuckets_for(entries) - 1;
	ft->timeout = timeout;
}

static uint32_t key_hash(const struct dp_frag_key *k)
{
	uint32_t h = 0x9747b28cu;

	h = fwd_hash_mix(h, (uint32_t)k->family << 8 | k->proto);
	h = fwd_hash_mix(h, k->id);
	for (int i = 0; i < 16; i += 4) {
		h = fwd_hash_mix(h, fwd_rd32(k->src + i));
		h = fwd_hash_mix(h, fwd_rd32(k->dst + i));
	}
	return fwd_hash_final(h, sizeof(*k));
}

const struct dp_frag_entry *dp_frag_lookup(const struct dp_frag_table *ft,
					   const struct dp_frag_key *k, uint64_t now)
{
	const struct dp_frag_entry *b = &ft->e[(key_hash(k) & ft->bucket_mask) * DP_FRAG_WAYS];

	for (int i = 0; i < DP_FRAG_WAYS; i++)
		if (b[i].expires > now && memcmp(&b[i].key, k, sizeof(*k)) == 0)
			return &b[i];
	return NULL;
}

int dp_frag_insert(struct dp_frag_table *ft, const struct dp_frag_key *k, uint64_t gen,
		   const struct fwd_decision *d, uint64_t link_key, uint64_t mirror_key, uint64_t now)
{
	struct dp_frag_entry *b = &ft->e[(key_hash(k) & ft->bucket_mask) * DP_FRAG_WAYS];
	struct dp_frag_entry *victim = NULL;
	int evicted = 0;

	for (int i = 0; i < DP_FRAG_WAYS; i++) {
		if (b[i].expires > now && memcmp(&b[i].key, k, sizeof(*k)) == 0) {
			victim = &b[i]; /* duplicate first fragment: refresh */
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
	victim->link_key = link_key;
	victim->mirror_key = mirror_key;
	victim->d = *d;
	victim->expires = now + ft->timeout;
	return evicted;
}
