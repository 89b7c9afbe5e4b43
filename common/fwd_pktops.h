/*
 * fwd_pktops.h - per-packet arithmetic shared by the fast path and the tests:
 * the flow hash that picks a link in a group, and the TTL / hop-limit
 * decrement with an incremental IPv4 checksum update (RFC 1624, eqn. 3).
 *
 * The flow hash is CRC32C (Castagnoli) over the 5-tuple as a byte string,
 * then MurmurHash3's 32-bit finalizer: defined on bytes, so every box with
 * the same table picks the same link for a flow whatever its CPU or byte
 * order (ECMP across boxes stays consistent), and computed with the CPU's
 * CRC32C instruction where there is one (SSE4.2, ARMv8 CRC), a few
 * instructions where MurmurHash3's mixing over the same words took ~40.
 */
#ifndef FWD_PKTOPS_H
#define FWD_PKTOPS_H

#include <stdint.h>
#include <string.h>

#include "fwd_parse.h"

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#elif defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#endif

FWD_INLINE uint32_t fwd_rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/* MurmurHash3's 32-bit mixing step (the content flow table's hash,
 * dp_aged.h). */
FWD_INLINE uint32_t fwd_hash_mix(uint32_t h, uint32_t k)
{
	k *= 0xcc9e2d51u;
	k = fwd_rotl32(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = fwd_rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

/* CRC32C of one byte onto @crc, bit by bit (reflected polynomial
 * 0x82f63b78, no inversion): the definition the instructions below
 * compute, and the fallback where there is none. */
FWD_INLINE uint32_t fwd_crc32c_u8_soft(uint32_t crc, uint8_t b)
{
	crc ^= b;
	for (int k = 0; k < 8; k++)
		crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	return crc;
}

/* CRC32C of the 4 bytes of @v, least significant first. */
FWD_INLINE uint32_t fwd_crc32c_u32_soft(uint32_t crc, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		crc = fwd_crc32c_u8_soft(crc, (uint8_t)(v >> (8 * i)));
	return crc;
}

FWD_INLINE uint32_t fwd_crc32c_u32(uint32_t crc, uint32_t v)
{
#if defined(__SSE4_2__)
	return _mm_crc32_u32(crc, v);
#elif defined(__ARM_FEATURE_CRC32)
	return __crc32cw(crc, v);
#else
	return fwd_crc32c_u32_soft(crc, v);
#endif
}

/* CRC32C of the 4 bytes at @p in memory order. */
FWD_INLINE uint32_t fwd_crc32c_4(uint32_t crc, const uint8_t *p)
{
#if defined(__SSE4_2__) || defined(__ARM_FEATURE_CRC32)
	uint32_t v;

	if (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) {
		memcpy(&v, p, 4); /* the first byte is the least significant */
		return fwd_crc32c_u32(crc, v);
	}
#endif
	return fwd_crc32c_u32_soft(crc, (uint32_t)p[0] | (uint32_t)p[1] << 8 |
						(uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* MurmurHash3's fmix32: CRC is linear, the slot index is the top bits. */
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
 * 4 for IPv6): a constant where the caller knows the family. The bytes, in
 * this order: per word i, src[4i..4i+3] and dst[4i..4i+3] (wire order);
 * then dport and sport (host values, least significant byte first: the
 * 32-bit value sport << 16 | dport), then proto and three zero bytes; the
 * CRC starts at 0x5eed0001, and the finalizer takes the byte count. */
FWD_INLINE uint32_t fwd_flow_hash_words(const struct fwd_pkt *pkt, int words)
{
	uint32_t h = 0x5eed0001u;

	for (int i = 0; i < 4; i++) {
		if (i >= words)
			break;
		h = fwd_crc32c_4(h, pkt->src + 4 * i);
		h = fwd_crc32c_4(h, pkt->dst + 4 * i);
	}
	h = fwd_crc32c_u32(h, (uint32_t)pkt->sport << 16 | pkt->dport);
	h = fwd_crc32c_u32(h, pkt->proto);
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
