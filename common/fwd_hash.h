/*
 * fwd_hash.h - the one non-cryptographic string hash of the project: 64-bit
 * FNV-1a (identity and indexing, never security). It names a generation's
 * content (persisted in regiond's history, so its output must never change),
 * keys links and names in lookup tables, and seeds the link groups'
 * rendezvous hashing (so every box computes the same slots).
 *
 * The offset basis is 1469598103934665603, one digit short of FNV's
 * published 14695981039346656037: a slip of the first version, kept because
 * stored generation hashes and group slot assignments depend on it.
 */
#ifndef FWD_HASH_H
#define FWD_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FWD_HASH64_SEED 1469598103934665603ull

static inline uint64_t fwd_hash64_update(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static inline uint64_t fwd_hash64(const void *data, size_t len)
{
	return fwd_hash64_update(FWD_HASH64_SEED, data, len);
}

#endif /* FWD_HASH_H */
