/*
 * dp_aged.h - the expiring, bucketed hash table under the fragment table
 * (dp_frag.h) and the flow table (dp_flow.h). The contract:
 *
 * - Memory: fixed, given by the caller zeroed, never allocated after init:
 *   a power of two of buckets (at most 2^24, enough for the entries asked
 *   for) of DP_AGED_WAYS entries each.
 * - Entries: the user's struct. It begins with its key, compared with
 *   memcmp (whoever builds a key zeroes its padding), and has a field
 *   `uint64_t expires`: 0 is empty, an entry is live while expires > now.
 *   The rest is the user's value; this module never reads it.
 *   DP_AGED_LAYOUT(type) describes such a struct to the functions below.
 * - Hash: one function for every user, over two 32-bit words the user
 *   takes from its key, a 16-byte source and a 16-byte destination, with a
 *   seed of the user's.
 * - Lookup: the live entry with the key in its bucket, or NULL; with
 *   @refresh set its timer restarts (an idle timeout).
 * - Insert: a live entry with the same key is reused; else the first empty
 *   or expired way; else the live entry closest to expiry is evicted, and
 *   the insert says so for the caller's counter. The entry gets the key and
 *   expires = now + timeout; the caller writes its value.
 * - Time: passed in by the caller in its own unit (TSC ticks in the
 *   workers), so the module is pure C, tested without DPDK.
 * - One table per worker: no sharing, no locks.
 *
 * Lookup and insert are inline, for the users' own functions to specialise
 * with their constant layout: the same code as a table written for one type.
 */
#ifndef DP_AGED_H
#define DP_AGED_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fwd_pktops.h"

#define DP_AGED_WAYS 4

struct dp_aged {
	uint8_t *e; /* nbuckets * DP_AGED_WAYS entries */
	uint32_t bucket_mask;
	uint64_t timeout;
};

/* An entry type's size, key size and expiry offset; a compile-time constant. */
struct dp_aged_layout {
	size_t esize, ksize, exp_off;
};

#define DP_AGED_LAYOUT(type)                                                                       \
	((struct dp_aged_layout){.esize = sizeof(type),                                            \
				 .ksize = sizeof(((type *)0)->key),                                \
				 .exp_off = offsetof(type, expires)})

/* Checks DP_AGED_LAYOUT's assumptions on an entry type (file scope). */
#define DP_AGED_CHECK(type)                                                                        \
	_Static_assert(offsetof(type, key) == 0, #type ": the key comes first");                   \
	_Static_assert(sizeof(((type *)0)->expires) == 8, #type ": expires is a uint64_t")

/** Bytes needed for @entries entries of @esize bytes (power-of-two buckets). */
uint64_t dp_aged_mem_size(uint32_t entries, size_t esize);

/** Initialise over caller-provided zeroed memory of dp_aged_mem_size() bytes.
 * @param timeout  lifetime of an entry in the caller's time unit */
void dp_aged_init(struct dp_aged *t, void *mem, uint32_t entries, uint64_t timeout);

/** The hash of a key made of @w0, @w1 and two 16-byte addresses; @len is the
 * key's size. */
static inline uint32_t dp_aged_hash(uint32_t seed, uint32_t w0, uint32_t w1, const uint8_t *src,
				    const uint8_t *dst, uint32_t len)
{
	uint32_t h = seed;

	h = fwd_hash_mix(h, w0);
	h = fwd_hash_mix(h, w1);
	for (int i = 0; i < 16; i += 4) {
		h = fwd_hash_mix(h, fwd_rd32(src + i));
		h = fwd_hash_mix(h, fwd_rd32(dst + i));
	}
	return fwd_hash_final(h, len);
}

static inline __attribute__((always_inline)) uint64_t *
dp_aged_expires_(uint8_t *e, const struct dp_aged_layout l)
{
	return (uint64_t *)(void *)(e + l.exp_off);
}

static inline __attribute__((always_inline)) uint8_t *
dp_aged_bucket_(const struct dp_aged *t, uint32_t hash, const struct dp_aged_layout l)
{
	return t->e + (size_t)(hash & t->bucket_mask) * DP_AGED_WAYS * l.esize;
}

/**
 * The live entry of key @k (hash @hash), or NULL when unknown or expired.
 * @param refresh  restart its timer (expires = now + timeout)
 */
static inline __attribute__((always_inline)) void *dp_aged_lookup(const struct dp_aged *t,
								  const struct dp_aged_layout l,
								  uint32_t hash, const void *k,
								  uint64_t now, const int refresh)
{
	uint8_t *b = dp_aged_bucket_(t, hash, l);

	for (int i = 0; i < DP_AGED_WAYS; i++) {
		uint8_t *e = b + i * l.esize;
		uint64_t *exp = dp_aged_expires_(e, l);

		if (*exp > now && memcmp(e, k, l.ksize) == 0) {
			if (refresh)
				*exp = now + t->timeout;
			return e;
		}
	}
	return NULL;
}

/**
 * The entry for key @k (hash @hash): its own if live, else a free or
 * expired way, else the live entry closest to expiry. It gets the key and
 * expires = now + timeout; the caller writes its value.
 * @param evicted  set to 1 when a live entry of another key was evicted, else 0
 */
static inline __attribute__((always_inline)) void *dp_aged_insert(struct dp_aged *t,
								  const struct dp_aged_layout l,
								  uint32_t hash, const void *k,
								  uint64_t now, int *evicted)
{
	uint8_t *b = dp_aged_bucket_(t, hash, l);
	uint8_t *victim = NULL;
	uint64_t vexp = 0; /* victim's expires */

	for (int i = 0; i < DP_AGED_WAYS; i++) {
		uint8_t *e = b + i * l.esize;
		uint64_t exp = *dp_aged_expires_(e, l);

		if (exp > now && memcmp(e, k, l.ksize) == 0) {
			victim = e; /* the same key again: reuse */
			vexp = exp;
			break;
		}
		if (exp <= now) {
			if (victim == NULL || vexp > now) {
				victim = e;
				vexp = exp;
			}
		} else if (victim == NULL || (vexp > now && exp < vexp)) {
			victim = e;
			vexp = exp;
		}
	}
	*evicted = vexp > now && memcmp(victim, k, l.ksize) != 0;
	memcpy(victim, k, l.ksize);
	*dp_aged_expires_(victim, l) = now + t->timeout;
	return victim;
}

#endif /* DP_AGED_H */
