#include "dp_aged.h"

static uint32_t nbuckets_for(uint32_t entries)
{
	uint32_t b = 1;

	while (b * DP_AGED_WAYS < entries && b < (1u << 24))
		b <<= 1;
	return b;
}

uint64_t dp_aged_mem_size(uint32_t entries, size_t esize)
{
	return (uint64_t)nbuckets_for(entries) * DP_AGED_WAYS * esize;
}

void dp_aged_init(struct dp_aged *t, void *mem, uint32_t entries, uint64_t timeout)
{
	t->e = mem;
	t->bucket_mask = nbuckets_for(entries) - 1;
	t->timeout = timeout;
}
