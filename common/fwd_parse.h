/*
 * fwd_parse.h - the one packet parser: Ethernet, 802.1Q/QinQ, IPv4 with
 * options, IPv6 with a bounded extension-header chain, TCP/UDP/SCTP ports,
 * ICMP/ICMPv6, and fragment state.
 *
 * Header-only and dependency-free (no DPDK, no libc), so the very same code
 * runs in the DPDK workers, in the unit tests on byte arrays and, later, in
 * the XDP programs. It reads bytes through a cursor that is checked against
 * `end` before every access, and every loop has a constant bound.
 *
 * The BPF verifier only trusts comparisons against the packet's own end, not
 * against lengths read from the packet: where a read is already proven in
 * range by such a length, an extra `> end` check makes the proof visible to
 * it. In C those checks are never taken.
 *
 * Contract: fwd_parse() returns FWD_OK and fills *pkt, or returns
 * FWD_ERR(reason) naming exactly one drop reason from fwd_counters.def. It
 * never reads outside [data, end). Fields are host byte order except the
 * addresses, which stay in network order (as rte_fib6 wants them).
 */
#ifndef FWD_PARSE_H
#define FWD_PARSE_H

#include "fwd_types.h"

#include "fwd_defs.h"

#ifndef FWD_INLINE
#define FWD_INLINE static inline __attribute__((always_inline))
#endif

#define FWD_ETH_P_IPV4 0x0800
#define FWD_ETH_P_IPV6 0x86dd
#define FWD_ETH_P_8021Q 0x8100
#define FWD_ETH_P_8021AD 0x88a8
#define FWD_ETH_P_QINQ_OLD 0x9100 /* pre-802.1ad QinQ, still seen in the wild */

struct fwd_pkt {
	uint16_t l2_len; /* offset of the IP header: Ethernet + VLAN tags */
	uint16_t l3_len; /* IP header incl. options / extension headers */
	uint8_t family; /* 4 or 6 */
	uint8_t proto; /* upper-layer protocol after extension headers */
	uint8_t frag; /* enum fwd_frag */
	uint8_t vlans; /* VLAN tags seen (and stripped on rewrite) */
	/* dport before sport, then frag_id: fwd_parse_fast() fills these 8
	 * bytes with one byte-swapped load of the L4 header's first word. */
	uint16_t dport; /* host order; 0 unless TCP/UDP/SCTP and not a later fragment */
	uint16_t sport;
	uint32_t
		frag_id; /* fragments only (0 otherwise): IPv4 identification or IPv6 fragment id */
	uint8_t src[16]; /* network order; IPv4 uses the first 4 bytes */
	uint8_t dst[16];
};

FWD_INLINE uint16_t fwd_rd16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

FWD_INLINE uint32_t fwd_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

FWD_INLINE void fwd_copy(uint8_t *dst, const uint8_t *src, int n)
{
	for (int i = 0; i < n; i++)
		dst[i] = src[i];
}

/* Ports of TCP, UDP and SCTP sit in the first 4 bytes of their headers.
 * An unfragmented packet must carry the protocol's whole fixed header; a
 * first fragment is at least 8 bytes long (checked by the caller), which
 * always covers the ports. */
FWD_INLINE int fwd_parse_l4(const uint8_t *l4, const uint8_t *l4end, const uint8_t *end,
			    struct fwd_pkt *pkt)
{
	int need;

	switch (pkt->proto) {
	case FWD_PROTO_TCP:
		need = 20;
		break;
	case FWD_PROTO_UDP:
		need = 8;
		break;
	case FWD_PROTO_SCTP:
		need = 12;
		break;
	default:
		return FWD_OK; /* ICMP, ESP, GRE, ...: classified by protocol alone */
	}
	if (pkt->frag == FWD_FRAG_FIRST)
		need = 4;
	if (l4 + need > l4end || l4 + 4 > end)
		return FWD_ERR(L4_TRUNCATED);
	pkt->sport = fwd_rd16(l4);
	pkt->dport = fwd_rd16(l4 + 2);
	return FWD_OK;
}

/* A fragment other than the last must carry a multiple of 8 bytes, no
 * fragment may be empty, and the datagram it ends must fit the 16-bit
 * length: @before is what the datagram carries ahead of its fragmentable
 * part within that length (IPv4's header: the limit is the total length,
 * RFC 791; IPv6's extension headers before the fragment header: the
 * limit is the payload length, RFC 8200 4.5). The IPv4 header was left
 * out, and a 65,548-byte "ping of death" passed (a probe). */
FWD_INLINE int fwd_frag_sane(uint32_t offset8, int more, uint32_t len, uint32_t before)
{
	if (len == 0)
		return 0;
	if (more && (len & 7))
		return 0;
	return offset8 * 8 + len + before <= 65535;
}

/* Whether the IPv6 source at @a is IPv4-mapped (::ffff:0:0/96). Such an
 * address is a socket API's way to show an IPv4 peer and never a source on
 * the wire (RFC 4291 2.5.5.2; Linux drops it on input): no region may hold
 * it (the table refuses a mapped prefix), so it would classify as no region
 * at all and follow the default, where its IPv4 twin follows its region's
 * residency rules. Dropped, and counted. Two loads and one test. */
FWD_INLINE int fwd_ipv6_src_mapped(const uint8_t *a)
{
	uint64_t hi;

	__builtin_memcpy(&hi, a, 8);
	return hi == 0 && fwd_rd32(a + 8) == 0xffffu;
}

/*
 * Addresses no router forwards to or from (RFC 1812 4.2.2.11 and 5.3.7,
 * RFC 3927 7, RFC 4291 2.5.2-2.5.6 and 2.7): IPv4 0.0.0.0/8, loopback,
 * link-local 169.254/16, multicast and 240.0.0.0/4 with the limited
 * broadcast; IPv6 ::, ::1, link-local fe80::/10, multicast ff00::/8 and
 * IPv4-mapped (a mapped source has a reason of its own, checked first).
 * As destinations they were steered like any packet: a router solicitation
 * to ff02::2 or a DHCP discover to 255.255.255.255 left on a cross-region
 * link, TTL lowered (a probe); as sources, a spoofed 127.0.0.1 or
 * 255.255.255.255 classified as whatever region held 0.0.0.0/0 and left on
 * its link. Dropped by the fast path's parser (martian_destination, then
 * martian_source); the XDP program asks about destinations too, to leave
 * such packets to the kernel's stack in AF_XDP mode, whose they are
 * (neighbour discovery, DHCP; fwd_src6_link_scoped() for sources).
 */
FWD_INLINE int fwd_martian4(const uint8_t *a)
{
	return a[0] == 0 || a[0] == 127 || a[0] >= 224 || (a[0] == 169 && a[1] == 254);
}

FWD_INLINE int fwd_martian6(const uint8_t *a)
{
	uint64_t hi;

	__builtin_memcpy(&hi, a, 8);
	return a[0] == 0xff || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||
	       (hi == 0 && fwd_rd32(a + 8) == 0 && fwd_rd32(a + 12) <= 1) || fwd_ipv6_src_mapped(a);
}

/* An IPv6 source only a link knows: link-local fe80::/10, or :: (an
 * address being claimed, RFC 4862 5.4). The XDP filter leaves packets from
 * such a source to the kernel in AF_XDP mode (neighbour discovery). */
FWD_INLINE int fwd_src6_link_scoped(const uint8_t *a)
{
	uint64_t hi, lo;

	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&lo, a + 8, 8);
	return (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || (hi == 0 && lo == 0);
}

/* Whether every address of a prefix is martian (fwd_martian4/6): those
 * blocks are aligned, so such a prefix lies inside one of them, as long as
 * it or longer. @a holds the prefix's network address. */
FWD_INLINE int fwd_martian_prefix(const uint8_t *a, unsigned len, int family)
{
	uint64_t hi;

	if (family == 4)
		return (len >= 8 && (a[0] == 0 || a[0] == 127)) || (len >= 3 && a[0] >= 224) ||
		       (len >= 16 && a[0] == 169 && a[1] == 254);
	__builtin_memcpy(&hi, a, 8);
	return (len >= 8 && a[0] == 0xff) || (len >= 10 && a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||
	       (len >= 127 && hi == 0 && fwd_rd32(a + 8) == 0 && fwd_rd32(a + 12) <= 1) ||
	       (len >= 96 && fwd_ipv6_src_mapped(a));
}

#ifndef __bpf__
/* The fast path's first look at an IPv4 address: 1 for the first bytes
 * that may make it martian (0, 127, 169, 224-255), which send the packet
 * to fwd_parse_full() to decide (169 is link-local only with 254 next).
 * One load a look, source and destination joined with '|': no branch, where
 * four compares a look cost 9-13 instructions a packet for the destination
 * alone. 256 bytes, of which traffic touches the lines of the first bytes
 * it carries. */
static const uint8_t fwd_martian4_lead[256] __attribute__((unused)) = {
	[0] = 1,
	[127] = 1,
	[169] = 1,
	[224 ... 255] = 1,
};
#endif

FWD_INLINE int fwd_parse_ipv4(const uint8_t *p, const uint8_t *end, struct fwd_pkt *pkt)
{
	uint32_t ihl, tot, fragw, off8, sum = 0;
	int more;

	if (p + 20 > end)
		return FWD_ERR(IPV4_TRUNCATED);
	ihl = (uint32_t)(p[0] & 0x0f) * 4;
	tot = fwd_rd16(p + 2);
	if ((p[0] >> 4) != 4 || ihl < 20 || tot < ihl)
		return FWD_ERR(IPV4_BAD_HEADER);
	if (p + tot > end) /* tot >= ihl, so this covers the options too */
		return FWD_ERR(IPV4_TRUNCATED);
#ifdef __bpf__
	for (int i = 0; i < 30; i++) { /* 60-byte maximum header, 16-bit words */
		if ((uint32_t)i * 2 >= ihl)
			break;
		if (p + i * 2 + 2 > end) /* verifier: already implied by tot <= end */
			return FWD_ERR(IPV4_TRUNCATED);
		sum += fwd_rd16(p + i * 2);
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	if (sum != 0xffff)
		return FWD_ERR(IPV4_BAD_CSUM);
#else
	/* The ones' complement sum does not depend on byte order (RFC 1071
	 * 2(B)): add the header as native 32-bit words, fold once, compare
	 * with all ones. Five loads for the usual 20-byte header instead of
	 * ten byte-swapped 16-bit reads; the fast path spent most of its
	 * parse time here. */
	{
		uint64_t acc = 0;
		uint32_t w;

		(void)sum;
		for (uint32_t off = 0; off < 20; off += 4) { /* unrolled: constant bound */
			__builtin_memcpy(&w, p + off, 4);
			acc += w;
		}
		for (uint32_t off = 20; off < ihl; off += 4) { /* options */
			__builtin_memcpy(&w, p + off, 4);
			acc += w;
		}
		acc = (acc & 0xffffffffu) + (acc >> 32);
		acc = (acc & 0xffffffffu) + (acc >> 32);
		acc = (acc & 0xffff) + (acc >> 16);
		acc = (acc & 0xffff) + (acc >> 16);
		if (acc != 0xffff)
			return FWD_ERR(IPV4_BAD_CSUM);
	}
#endif

	pkt->family = 4;
	pkt->proto = p[9];
	pkt->l3_len = (uint16_t)ihl;
	pkt->frag_id = 0;
	__builtin_memcpy(pkt->src, p + 12, 4);
	__builtin_memcpy(pkt->dst, p + 16, 4);
#ifndef __bpf__
	if (fwd_martian4(p + 16))
		return FWD_ERR(DST_MARTIAN);
	if (fwd_martian4(p + 12))
		return FWD_ERR(SRC_MARTIAN);
#endif

	fragw = fwd_rd16(p + 6);
	more = (fragw & 0x2000) != 0;
	off8 = fragw & 0x1fff;
	if (off8 == 0 && !more) {
		pkt->frag = FWD_FRAG_NONE;
	} else {
		if (!fwd_frag_sane(off8, more, tot - ihl, ihl))
			return FWD_ERR(FRAG_INVALID);
		pkt->frag_id = fwd_rd16(p + 4);
		pkt->frag = off8 ? FWD_FRAG_LATER : FWD_FRAG_FIRST;
		if (off8)
			return FWD_OK; /* no L4 header here */
	}
	return fwd_parse_l4(p + ihl, p + tot, end, pkt);
}

/* IANA's "IPv6 Extension Header Types" registry (RFC 8200 4., RFC 7045):
 * hop-by-hop, routing, fragment, AH, destination options, mobility, HIP,
 * shim6, and 253/254 for experiments (RFC 4727), which were once taken
 * for a protocol: a TCP segment behind 253 was service `other` (a probe). */
FWD_INLINE int fwd_ipv6_is_ext(uint8_t nh)
{
	return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60 || nh == 135 || nh == 139 ||
	       nh == 140 || nh == 253 || nh == 254;
}

FWD_INLINE int fwd_parse_ipv6(const uint8_t *p, const uint8_t *end, struct fwd_pkt *pkt)
{
	const uint8_t *q, *l4end;
	uint8_t nh;
	int seen_frag = 0;

	if (p + 40 > end)
		return FWD_ERR(IPV6_TRUNCATED);
	if ((p[0] >> 4) != 6)
		return FWD_ERR(IPV6_BAD_HEADER);
	l4end = p + 40 + fwd_rd16(p + 4);
	if (l4end > end)
		return FWD_ERR(IPV6_TRUNCATED);

	pkt->family = 6;
	pkt->frag = FWD_FRAG_NONE;
	pkt->frag_id = 0;
	__builtin_memcpy(pkt->src, p + 8, 16);
	__builtin_memcpy(pkt->dst, p + 24, 16);
	/* After the addresses are read: the XDP filter's drop rules hold for
	 * a malformed packet whose source it knows (xdp_filter.bpf.c). */
	if (fwd_ipv6_src_mapped(p + 8))
		return FWD_ERR(IPV6_MAPPED_SRC);
#ifndef __bpf__
	if (fwd_martian6(p + 24))
		return FWD_ERR(DST_MARTIAN);
	if (fwd_martian6(p + 8))
		return FWD_ERR(SRC_MARTIAN);
#endif
	nh = p[6];
	q = p + 40;

	for (int i = 0; i <= FWD_MAX_IPV6_EXT; i++) {
		uint32_t len;

		if (!fwd_ipv6_is_ext(nh))
			break;
		if (i == FWD_MAX_IPV6_EXT || (nh == 0 && i != 0))
			return FWD_ERR(IPV6_EXT_CHAIN); /* too long, or hop-by-hop not first */
		if (q + 8 > l4end || q + 8 > end)
			return FWD_ERR(IPV6_EXT_CHAIN);
		if (nh == 44) { /* fragment header: fixed 8 bytes */
			uint16_t offm = fwd_rd16(q + 2);
			uint32_t off8 = offm >> 3;
			int more = offm & 1;

			if (seen_frag)
				return FWD_ERR(FRAG_INVALID);
			seen_frag = 1;
			nh = q[0];
			q += 8;
			if (off8 == 0 && !more)
				continue; /* atomic fragment (RFC 6946): a whole datagram */
			if (!fwd_frag_sane(off8, more, (uint32_t)(l4end - q),
					   (uint32_t)(q - 8 - (p + 40))))
				return FWD_ERR(FRAG_INVALID);
			pkt->frag_id = fwd_rd32(q - 4);
			pkt->frag = off8 ? FWD_FRAG_LATER : FWD_FRAG_FIRST;
			if (off8) {
				pkt->proto = nh;
				pkt->l3_len = (uint16_t)(q - p);
				return FWD_OK; /* the rest is payload, not headers */
			}
			continue;
		}
		len = nh == 51 ? ((uint32_t)q[1] + 2) * 4 : ((uint32_t)q[1] + 1) * 8;
		nh = q[0];
		if (q + len > l4end) /* RFC 7112: the chain must be in the first fragment */
			return FWD_ERR(IPV6_EXT_CHAIN);
		q += len;
	}
	pkt->proto = nh;
	pkt->l3_len = (uint16_t)(q - p);
	return fwd_parse_l4(q, l4end, end, pkt);
}

/* The general parser: every encapsulation, every error. fwd_parse() below
 * tries the common shapes first; the unit tests compare the two. */
FWD_INLINE int fwd_parse_full(const uint8_t *data, const uint8_t *end, struct fwd_pkt *pkt)
{
	const uint8_t *p = data;
	uint16_t etype;

	pkt->sport = 0;
	pkt->dport = 0;
	pkt->vlans = 0;
	if (p + 14 > end)
		return FWD_ERR(RUNT);
	etype = fwd_rd16(p + 12);
	p += 14;
	for (int i = 0; i <= FWD_MAX_VLAN; i++) {
		if (etype != FWD_ETH_P_8021Q && etype != FWD_ETH_P_8021AD &&
		    etype != FWD_ETH_P_QINQ_OLD)
			break;
		if (i == FWD_MAX_VLAN)
			return FWD_ERR(VLAN_TOO_DEEP);
		if (p + 4 > end)
			return FWD_ERR(L2_TRUNCATED);
		etype = fwd_rd16(p + 2);
		p += 4;
		pkt->vlans++;
	}
	pkt->l2_len = (uint16_t)(p - data);
	if (etype == FWD_ETH_P_IPV4)
		return fwd_parse_ipv4(p, end, pkt);
	if (etype == FWD_ETH_P_IPV6)
		return fwd_parse_ipv6(p, end, pkt);
	return FWD_ERR(NON_IP);
}

#ifndef __bpf__
/* Bytes of the fixed TCP or UDP header, 0 for any other protocol: one
 * load from a table that stays in L1. Two compares compiled to branches
 * that follow the traffic's mix of TCP and UDP, and so mispredict on it. */
static const uint8_t fwd_fast_l4_bytes[256] = {[FWD_PROTO_TCP] = 20, [FWD_PROTO_UDP] = 8};

FWD_INLINE uint32_t fwd_fast_l4_need(uint8_t proto)
{
	return fwd_fast_l4_bytes[proto];
}

/* The fields fwd_parse_fast() fills for an untagged, unfragmented packet
 * with ports: two 8-byte stores instead of eleven narrow ones. The layout
 * they rely on is asserted here; a big-endian host takes the plain stores. */
_Static_assert(__builtin_offsetof(struct fwd_pkt, l3_len) == 2 &&
		       __builtin_offsetof(struct fwd_pkt, family) == 4 &&
		       __builtin_offsetof(struct fwd_pkt, proto) == 5 &&
		       __builtin_offsetof(struct fwd_pkt, frag) == 6 &&
		       __builtin_offsetof(struct fwd_pkt, vlans) == 7 &&
		       __builtin_offsetof(struct fwd_pkt, dport) == 8 &&
		       __builtin_offsetof(struct fwd_pkt, sport) == 10 &&
		       __builtin_offsetof(struct fwd_pkt, frag_id) == 12 && FWD_FRAG_NONE == 0,
	       "fwd_pkt_set_plain() writes these fields as two words");

FWD_INLINE void fwd_pkt_set_plain(struct fwd_pkt *pkt, uint8_t l3_len, uint8_t family,
				  uint8_t proto, const uint8_t *l4)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* l2_len 14, l3_len, family, proto 0 (written next), frag NONE, no
	 * VLAN tags: a constant word in the fast path's loops, stored as it is,
	 * then the protocol's byte over it. With the protocol shifted and ORed
	 * in, the word cost a shift, an OR and the register for the constant
	 * (callgrind: 2 instructions a packet more). The loops after it read
	 * proto as a byte, which the byte store alone forwards (a wider read
	 * would only wait for both stores). */
	uint64_t head = 14 | (uint64_t)l3_len << 16 | (uint64_t)family << 32;
	uint32_t ports;
	uint64_t tail;

	/* sport and dport in network order; swapped as one word they read
	 * dport | sport << 16 in host order, and frag_id is 0. */
	__builtin_memcpy(&ports, l4, 4);
	tail = __builtin_bswap32(ports);
	__builtin_memcpy(pkt, &head, 8);
	pkt->proto = proto;
	__builtin_memcpy((uint8_t *)pkt + 8, &tail, 8);
#else
	pkt->l2_len = 14;
	pkt->l3_len = l3_len;
	pkt->family = family;
	pkt->proto = proto;
	pkt->frag = FWD_FRAG_NONE;
	pkt->vlans = 0;
	pkt->dport = fwd_rd16(l4 + 2);
	pkt->sport = fwd_rd16(l4);
	pkt->frag_id = 0;
#endif
}

/*
 * fwd_parse_fast()'s IPv4 branch from the IP header @p on: no options (the
 * caller has seen 0x45), at least 42 bytes in the frame (the caller checked).
 * @csum_good: the header checksum is known to verify (the NIC's verdict,
 * fwd_parse_fast4_verified()), so it is not summed again.
 */
FWD_INLINE int fwd_parse_fast4(const uint8_t *p, const uint8_t *end, struct fwd_pkt *pkt,
			       const int csum_good)
{
	uint32_t tot = fwd_rd16(p + 2), w, need;
	uint8_t proto = p[9];
	uint64_t acc, q;

	need = fwd_fast_l4_need(proto);
	/* 20 + need <= tot <= end - p, both tested by one sign: the two
	 * differences are small (a frame is under 64 KiB), so neither
	 * overflows, and both are >= 0 exactly when their or is. (p[6] & 0x3f)
	 * | p[7]: MF and the fragment offset; then the first bytes of the source
	 * and the destination that may make either martian (fwd_martian4_lead). */
	if (need == 0 ||
	    (((int32_t)tot - (int32_t)(20 + need)) | ((int32_t)(end - p) - (int32_t)tot)) < 0 ||
	    ((p[6] & 0x3f) | p[7] | fwd_martian4_lead[p[12]] | fwd_martian4_lead[p[16]]))
		return 0;
	if (!csum_good) {
		/* The header verifies when its ones' complement sum is all ones,
		 * i.e. when the plain sum of its 16-bit words is a non-zero
		 * multiple of 0xffff. 2^16 = 1 mod 0xffff, so a wider word counts
		 * as the sum of its halves and a carry out of 64 bits as 1 (the
		 * end-around carry): two 8-byte words and one 4-byte word, in
		 * three loads, where five 4-byte words took five. acc > 0: the
		 * version byte is not 0, and an end-around sum is never 0 after a
		 * carry. The division by a constant compiles to a multiply,
		 * shorter than four folds. */
		__builtin_memcpy(&acc, p, 8);
		__builtin_memcpy(&q, p + 8, 8);
		acc += q;
		acc += acc < q;
		__builtin_memcpy(&w, p + 16, 4);
		acc += w;
		acc += acc < w;
		if (acc % 0xffff != 0)
			return 0;
	}
	__builtin_memcpy(pkt->src, p + 12, 4);
	__builtin_memcpy(pkt->dst, p + 16, 4);
	fwd_pkt_set_plain(pkt, 20, 4, proto, p + 20);
	return 4;
}

/*
 * The shapes nearly all traffic has, in straight-line code: untagged
 * Ethernet, then IPv4 without options and not fragmented (DF may be set), or
 * IPv6 without extension headers, carrying TCP or UDP with its whole fixed
 * header. The fast path only ever accepts: anything else, every malformed
 * frame included, returns 0 and goes to fwd_parse_full(), which decides and
 * names the drop reason. What it accepts it fills exactly as
 * fwd_parse_full() would; tests/unit/test_parse.c compares the two on every
 * test frame and on random mutations of them.
 *
 * Not in BPF builds: the XDP program keeps the one verifier-friendly path.
 * @return the family (4 or 6) when it took the packet, else 0
 */
FWD_INLINE int fwd_parse_fast(const uint8_t *data, const uint8_t *end, struct fwd_pkt *pkt)
{
	const uint8_t *p = data + 14;
	uint16_t etype;
	uint32_t need;
	uint8_t proto;

	/* Enough for every header byte read before a length check: the IPv4
	 * header up to its protocol, the IPv6 payload length and next header. */
	if (end - data < 14 + 20 + 8)
		return 0;
	etype = fwd_rd16(data + 12);
	if (etype == FWD_ETH_P_IPV4 && p[0] == 0x45)
		return fwd_parse_fast4(p, end, pkt, 0);
	if (etype == FWD_ETH_P_IPV6 && (p[0] >> 4) == 6) {
		uint32_t plen = fwd_rd16(p + 4);

		proto = p[6];
		need = fwd_fast_l4_need(proto);
		/* 0x00, 0xfe and 0xff lead every address fwd_martian6() names
		 * and ::ffff:0:0/96, as source or destination: the full parser
		 * decides, and names the reason */
		if (need == 0 || plen < need || p + 40 + plen > end ||
		    ((uint8_t)(p[8] + 2) <= 2) | ((uint8_t)(p[24] + 2) <= 2))
			return 0;
		__builtin_memcpy(pkt->src, p + 8, 16);
		__builtin_memcpy(pkt->dst, p + 24, 16);
		fwd_pkt_set_plain(pkt, 40, 6, proto, p + 40);
		return 6;
	}
	return 0;
}

/*
 * fwd_parse_fast() for a frame whose receiving NIC has verified what its
 * first checks establish: untagged Ethernet carrying IPv4 without options
 * (RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4) and a header checksum that
 * verifies (RTE_MBUF_F_RX_IP_CKSUM_GOOD). Everything else -- lengths,
 * fragment bits, the protocol -- is checked as fwd_parse_fast() checks it,
 * and what it accepts it fills identically (tests/unit/test_parse.c); the
 * worker calls it only on such a verdict (dp_worker.c), anything else goes
 * the software way.
 * @return 4 when it took the packet, else 0
 */
FWD_INLINE int fwd_parse_fast4_verified(const uint8_t *data, const uint8_t *end,
					struct fwd_pkt *pkt)
{
	if (end - data < 14 + 20 + 8)
		return 0;
	return fwd_parse_fast4(data + 14, end, pkt, 1);
}
#endif

/**
 * Parse one frame.
 * @param data  first byte of the Ethernet header
 * @param end   one past the last byte available
 * @param pkt   filled on success; partially written on failure
 * @return FWD_OK, or FWD_ERR(reason) with exactly one drop reason
 */
FWD_INLINE int fwd_parse(const uint8_t *data, const uint8_t *end, struct fwd_pkt *pkt)
{
#ifndef __bpf__
	if (__builtin_expect(fwd_parse_fast(data, end, pkt), 1))
		return FWD_OK;
#endif
	return fwd_parse_full(data, end, pkt);
}

/**
 * The L4 payload of a packet fwd_parse() accepted, for content rules: after
 * the TCP header (data offset checked), the UDP header or SCTP's common
 * header; for other protocols everything after the IP headers. It ends where the IP datagram
 * ends (Ethernet padding excluded), a UDP datagram where its length says
 * (bytes past it are no datagram's: a DNS query behind a UDP length of 8
 * was dropped by a content rule, a probe; a length under 8 leaves none; one
 * past the IP datagram, or a first fragment's, ends with the IP datagram).
 * Not part of fwd_parse(), so traffic that no content rule scopes never
 * pays for it.
 * @param tcp_flags  TCP flags byte, 0 for other protocols
 * @return 0 with [*pl, *pl + *len), or -1 when the TCP data offset is invalid
 */
FWD_INLINE int fwd_l4_payload(const uint8_t *data, const uint8_t *end, const struct fwd_pkt *p,
			      const uint8_t **pl, uint32_t *len, uint8_t *tcp_flags)
{
	const uint8_t *ip = data + p->l2_len, *l4 = ip + p->l3_len, *ipend;

	*tcp_flags = 0;
	*len = 0;
	*pl = l4;
	ipend = p->family == 4 ? ip + fwd_rd16(ip + 2) : ip + 40 + fwd_rd16(ip + 4);
	if (ipend > end)
		ipend = end; /* cannot happen after fwd_parse(); kept for callers that skip it */
	if (l4 > ipend)
		return -1;
	if (p->frag == FWD_FRAG_LATER) {
		/* no L4 header: the bytes continue an earlier fragment */
	} else if (p->proto == FWD_PROTO_TCP) {
		uint32_t hl;

		if (l4 + 20 > ipend)
			return -1;
		hl = (uint32_t)(l4[12] >> 4) * 4;
		if (hl < 20 || l4 + hl > ipend)
			return -1;
		*tcp_flags = l4[13];
		l4 += hl;
	} else if (p->proto == FWD_PROTO_UDP) {
		uint32_t ulen;

		if (l4 + 8 > ipend)
			return -1;
		ulen = fwd_rd16(l4 + 4);
		if (p->frag != FWD_FRAG_FIRST && ulen < 8)
			ipend = l4 + 8;
		else if (p->frag != FWD_FRAG_FIRST && ulen <= (uint32_t)(ipend - l4))
			ipend = l4 + ulen;
		l4 += 8;
	} else if (p->proto == FWD_PROTO_SCTP) {
		/* After the 12-byte common header, as TCP's and UDP's after
		 * theirs: the chunks. It started at the common header, and a
		 * pattern anchored at ^ met the ports where explain, which
		 * scans what it is given as the L4 payload, met the payload
		 * (a probe). A first fragment cut inside it has none. */
		l4 = l4 + 12 <= ipend ? l4 + 12 : ipend;
	}
	*pl = l4;
	*len = (uint32_t)(ipend - l4);
	return 0;
}

#endif /* FWD_PARSE_H */
