/*
 * fwd_pktops.h - per-packet arithmetic shared by the fast path and the tests:
 * the flow hash that picks a link in a group, and the TTL / hop-limit
 * decrement with an incremental IPv4 checksum update (RFC 1624, eqn. 3).
 *
 * The flow hash is MurmurHash3's 32-bit mixing over the 5-tuple read as
 * big-endian words, so every box with the same table picks the same link
 * for a flow whatever its byte order: ECMP across boxes stays consistent.
 */
#ifndef FWD_PKTOPS_H
#define FWD_PKTOPS_H

#include <stdint.h>

#include "fwd_parse.h"

FWD_INLINE uint32_t fwd_rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

FWD_INLINE uint32_t fwd_hash_mix(uint32_t h, uint32_t k)
{
	k *= 0xcc9e2d51u;
	k = fwd_rotl32(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = fwd_rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

FWD_INLINE uint32_t fwd_hash_final(uint32_t h, uint32_t len)
{
	h ^= len;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* The 5-tuple hash over @words 32-bit words of each address (1 for IPv4,
 * 4 for IPv6): a constant where the caller knows the family. */
FWD_INLINE uint32_t fwd_flow_hash_words(const struct fwd_pkt *pkt, int words)
{
	uint32_t h = 0x5eed0001u;

	for (int i = 0; i < 4; i++) {
		if (i >= words)
			break;
		h = fwd_hash_mix(h, fwd_rd32(pkt->src + 4 * i));
		h = fwd_hash_mix(h, fwd_rd32(pkt->dst + 4 * i));
	}
	h = fwd_hash_mix(h, (uint32_t)pkt->sport << 16 | pkt->dport);
	h = fwd_hash_mix(h, pkt->proto);
	return fwd_hash_final(h, (uint32_t)words * 8 + 8);
}

/** 5-tuple hash (addresses, protocol, ports) of a parsed packet. */
FWD_INLINE uint32_t fwd_flow_hash(const struct fwd_pkt *pkt)
{
	return fwd_flow_hash_words(pkt, pkt->family == 4 ? 1 : 4);
}

/** fwd_flow_hash() of a packet known to be IPv4 (@v6 = 0) or IPv6. */
FWD_INLINE uint32_t fwd_flow_hash_family(const struct fwd_pkt *pkt, int v6)
{
	return fwd_flow_hash_words(pkt, v6 ? 4 : 1);
}

/* One's-complement 16-bit fold. */
FWD_INLINE uint16_t fwd_csum_fold(uint32_t s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/**
 * Decrement the IPv4 TTL (@v6 = 0) and patch the header checksum
 * incrementally, or the IPv6 hop limit (@v6 = 1). RFC 1624 eqn. 3, HC' =
 * ~(~HC + ~m + m'), with m the 16-bit word holding TTL and protocol: m' = m -
 * 0x0100, so HC' = HC + 0x0100 in ones' complement, i.e. add with end-around
 * carry, where a sum of 0xffff must wrap to 0x0000 as eqn. 3 gives (the same
 * reduction Linux's ip_decrease_ttl() uses). tests/unit/test_parse.c checks
 * it against a full recomputation and against eqn. 3 for every checksum
 * value, and that IPv6 changes only the hop limit.
 *
 * The family is data, not a branch: a loop over a burst of both families in
 * arrival order would otherwise branch with the mix and mispredict on it;
 * where @v6 is a constant the masking folds away. Bytes 10-11, the IPv4
 * checksum, lie inside the IPv6 source address: IPv6 has them written back
 * as they were.
 * @param ip  the IP header (TTL or hop limit must be > 1; the caller checks)
 * @param v6  0 or 1, nothing else (it is an offset and a mask)
 */
FWD_INLINE void fwd_ip_ttl_dec(uint8_t *ip, unsigned int v6)
{
	/* Ones' complement addition does not depend on byte order (RFC 1071
	 * 2(B)): adding the word whose bytes are {0x01, 0x00} to the checksum
	 * read in host order adds 0x0100 in network order, and 0xffff and 0 read
	 * the same either way. So no byte swaps. */
	const uint16_t one_in_first_byte =
		__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 0x0001 : 0x0100;
	/* All ones for IPv4, 0 for IPv6: masks the checksum's increment. (A
	 * conditional here compiled to a branch on the family.) */
	const uint32_t v4_mask = (uint32_t)v6 - 1;
	uint16_t w;
	uint32_t inc;

	__builtin_memcpy(&w, ip + 10, 2);
	/* one, plus one more when w + one reaches 0xffff: tested on w, so the
	 * compare and the add need not wait for the first sum. */
	inc = (one_in_first_byte + (w >= 0xffff - one_in_first_byte)) & v4_mask;
	w = (uint16_t)(w + inc);
	ip[8 - v6]--;
	__builtin_memcpy(ip + 10, &w, 2);
}

/** fwd_ip_ttl_dec() of an IPv4 header. */
FWD_INLINE void fwd_ipv4_ttl_dec(uint8_t *ip)
{
	fwd_ip_ttl_dec(ip, 0);
}

#endif /* FWD_PKTOPS_H */
