/*
 * pktbuild.h - build test frames into byte arrays, header by header, with
 * correct lengths and checksums unless a test breaks them on purpose.
 */
#ifndef PKTBUILD_H
#define PKTBUILD_H

#include <stdint.h>
#include <string.h>

struct pb {
	uint8_t b[2048];
	size_t len;
	size_t l3; /* offset of the IP header */
	size_t l4; /* offset of the L4 header */
};

static inline void pb_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void pb_eth(struct pb *p, uint16_t etype)
{
	static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0, 0xbb};

	memset(p, 0, sizeof(*p));
	memcpy(p->b, macs, 12);
	pb_u16(p->b + 12, etype);
	p->len = 14;
}

/* Insert a VLAN tag: the current EtherType becomes the tag's TPID. */
static inline void pb_vlan(struct pb *p, uint16_t vid, uint16_t inner_etype)
{
	pb_u16(p->b + p->len, vid);
	pb_u16(p->b + p->len + 2, inner_etype);
	p->len += 4;
}

static inline uint16_t pb_csum(const uint8_t *d, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)d[i] << 8 | d[i + 1];
	if (n & 1)
		s += (uint32_t)d[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* IPv4 header with @optlen bytes of options (NOPs); total length is fixed
 * up by pb_finish_v4(). */
static inline void pb_ipv4(struct pb *p, const char src[4], const char dst[4], uint8_t proto,
			   uint8_t optlen)
{
	uint8_t *ip = p->b + p->len;
	size_t hl = 20 + optlen;

	p->l3 = p->len;
	ip[0] = (uint8_t)(0x40 | (hl / 4));
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	memset(ip + 20, 1, optlen);
	p->len += hl;
	p->l4 = p->len;
}

static inline void pb_ports(struct pb *p, uint16_t sport, uint16_t dport, size_t hdrlen)
{
	uint8_t *l4 = p->b + p->len;

	memset(l4, 0, hdrlen);
	pb_u16(l4, sport);
	pb_u16(l4 + 2, dport);
	if (hdrlen == 20)
		l4[12] = 0x50; /* TCP data offset */
	if (hdrlen == 8)
		pb_u16(l4 + 4, 8);
	p->len += hdrlen;
}

static inline void pb_payload(struct pb *p, size_t n)
{
	memset(p->b + p->len, 0xab, n);
	p->len += n;
}

static inline void pb_finish_v4(struct pb *p)
{
	uint8_t *ip = p->b + p->l3;
	size_t hl = (size_t)(ip[0] & 0xf) * 4;

	pb_u16(ip + 2, (uint16_t)(p->len - p->l3));
	ip[10] = ip[11] = 0;
	pb_u16(ip + 10, pb_csum(ip, hl));
}

static inline void pb_ipv4_frag(struct pb *p, uint16_t id, int more, uint16_t off8)
{
	uint8_t *ip = p->b + p->l3;

	pb_u16(ip + 4, id);
	pb_u16(ip + 6, (uint16_t)((more ? 0x2000 : 0) | off8));
}

static inline void pb_ipv6(struct pb *p, const uint8_t src[16], const uint8_t dst[16], uint8_t nh)
{
	uint8_t *ip = p->b + p->len;

	p->l3 = p->len;
	ip[0] = 0x60;
	ip[6] = nh;
	ip[7] = 64;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	p->len += 40;
	p->l4 = p->len;
}

/* Generic 8-byte extension header (hop-by-hop, routing, destination opts). */
static inline void pb_ext6(struct pb *p, uint8_t nh)
{
	uint8_t *e = p->b + p->len;

	memset(e, 0, 8);
	e[0] = nh;
	p->len += 8;
	p->l4 = p->len;
}

static inline void pb_frag6(struct pb *p, uint8_t nh, uint32_t id, int more, uint16_t off8)
{
	uint8_t *e = p->b + p->len;

	memset(e, 0, 8);
	e[0] = nh;
	pb_u16(e + 2, (uint16_t)(off8 << 3 | (more ? 1 : 0)));
	e[4] = (uint8_t)(id >> 24);
	e[5] = (uint8_t)(id >> 16);
	e[6] = (uint8_t)(id >> 8);
	e[7] = (uint8_t)id;
	p->len += 8;
	p->l4 = p->len;
}

static inline void pb_finish_v6(struct pb *p)
{
	pb_u16(p->b + p->l3 + 4, (uint16_t)(p->len - p->l3 - 40));
}

#endif /* PKTBUILD_H */
