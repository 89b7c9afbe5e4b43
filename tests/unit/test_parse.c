/*
 * Unit tests of the shared packet parser and per-packet arithmetic
 * (common/fwd_parse.h, common/fwd_pktops.h) on byte arrays, no DPDK.
 * One test per malformed class the parser names, plus the valid shapes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fwd_pktops.h"
#include "pktbuild.h"

static const char S4[4] = {103, 21, 5, 5}, D4[4] = {10, 1, 1, 1};
static const uint8_t S6[16] = {0x24, 0x01, 0x49, 0x00, [15] = 1};
static const uint8_t D6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};

static int parse(const struct pb *p, struct fwd_pkt *out)
{
	return fwd_parse(p->b, p->b + p->len, out);
}

static void udp4(struct pb *p, uint16_t dport)
{
	pb_eth(p, 0x0800);
	pb_ipv4(p, S4, D4, FWD_PROTO_UDP, 0);
	pb_ports(p, 4000, dport, 8);
	pb_payload(p, 10);
	pb_finish_v4(p);
}

static void test_ipv4_udp(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	udp4(&p, 53);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.family, 4);
	assert_int_equal(k.proto, FWD_PROTO_UDP);
	assert_int_equal(k.l2_len, 14);
	assert_int_equal(k.l3_len, 20);
	assert_int_equal(k.sport, 4000);
	assert_int_equal(k.dport, 53);
	assert_int_equal(k.frag, FWD_FRAG_NONE);
	assert_memory_equal(k.src, S4, 4);
	assert_memory_equal(k.dst, D4, 4);
}

static void test_ipv4_options_tcp(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	pb_eth(&p, 0x0800);
	pb_ipv4(&p, S4, D4, FWD_PROTO_TCP, 12);
	pb_ports(&p, 1234, 443, 20);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.l3_len, 32);
	assert_int_equal(k.dport, 443);
}

static void test_vlan_and_qinq(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	pb_eth(&p, 0x8100);
	pb_vlan(&p, 100, 0x0800);
	pb_ipv4(&p, S4, D4, FWD_PROTO_UDP, 0);
	pb_ports(&p, 1, 123, 8);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.vlans, 1);
	assert_int_equal(k.l2_len, 18);

	pb_eth(&p, 0x88a8);
	pb_vlan(&p, 7, 0x8100);
	pb_vlan(&p, 100, 0x86dd);
	pb_ipv6(&p, S6, D6, FWD_PROTO_TCP);
	pb_ports(&p, 5, 443, 20);
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.vlans, 2);
	assert_int_equal(k.l2_len, 22);
	assert_int_equal(k.dport, 443);
}

static void test_l2_malformed(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	pb_eth(&p, 0x0800);
	p.len = 13;
	assert_int_equal(parse(&p, &k), FWD_ERR(RUNT));
	p.len = 0;
	assert_int_equal(parse(&p, &k), FWD_ERR(RUNT));

	pb_eth(&p, 0x8100);
	p.len += 2; /* half a tag */
	assert_int_equal(parse(&p, &k), FWD_ERR(L2_TRUNCATED));

	pb_eth(&p, 0x88a8);
	pb_vlan(&p, 1, 0x8100);
	pb_vlan(&p, 2, 0x8100);
	pb_vlan(&p, 3, 0x0800); /* three tags */
	pb_ipv4(&p, S4, D4, FWD_PROTO_UDP, 0);
	pb_ports(&p, 1, 2, 8);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(VLAN_TOO_DEEP));

	pb_eth(&p, 0x0806); /* ARP */
	pb_payload(&p, 28);
	assert_int_equal(parse(&p, &k), FWD_ERR(NON_IP));
}

static void test_ipv4_malformed(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	udp4(&p, 53);
	p.len = 14 + 19;
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV4_TRUNCATED));

	udp4(&p, 53);
	p.b[14] = 0x65; /* version 6 in an IPv4 EtherType */
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV4_BAD_HEADER));

	udp4(&p, 53);
	p.b[14] = 0x44; /* IHL 4 */
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV4_BAD_HEADER));

	udp4(&p, 53);
	pb_u16(p.b + 16, 19); /* total length below the header */
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV4_BAD_HEADER));

	udp4(&p, 53);
	p.len -= 1; /* total length says one more byte than the frame has */
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV4_TRUNCATED));

	udp4(&p, 53);
	p.b[14 + 10] ^= 0x01;
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV4_BAD_CSUM));

	pb_eth(&p, 0x0800); /* IHL 15 but the frame stops after 20 bytes */
	pb_ipv4(&p, S4, D4, FWD_PROTO_UDP, 40);
	pb_finish_v4(&p);
	p.len = 14 + 20;
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV4_TRUNCATED));
}

static void test_ipv4_padding_accepted(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	udp4(&p, 53);
	pb_payload(&p, 6); /* Ethernet padding after the datagram */
	assert_int_equal(parse(&p, &k), FWD_OK);
}

static void test_l4_truncated(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	pb_eth(&p, 0x0800);
	pb_ipv4(&p, S4, D4, FWD_PROTO_TCP, 0);
	pb_ports(&p, 1, 443, 8); /* 8 of TCP's 20 bytes */
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(L4_TRUNCATED));

	pb_eth(&p, 0x0800);
	pb_ipv4(&p, S4, D4, FWD_PROTO_UDP, 0);
	pb_payload(&p, 3);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(L4_TRUNCATED));

	pb_eth(&p, 0x0800);
	pb_ipv4(&p, S4, D4, FWD_PROTO_SCTP, 0);
	pb_ports(&p, 1, 2905, 12);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.dport, 2905);

	pb_eth(&p, 0x0800); /* ICMP has no ports and needs none */
	pb_ipv4(&p, S4, D4, FWD_PROTO_ICMP, 0);
	pb_payload(&p, 8);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.dport, 0);
}

static void test_ipv4_fragments(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	pb_eth(&p, 0x0800);
	pb_ipv4(&p, S4, D4, FWD_PROTO_UDP, 0);
	pb_ports(&p, 9, 7001, 8);
	pb_payload(&p, 16);
	pb_ipv4_frag(&p, 0x4242, 1, 0);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.frag, FWD_FRAG_FIRST);
	assert_int_equal(k.frag_id, 0x4242);
	assert_int_equal(k.dport, 7001);

	pb_eth(&p, 0x0800);
	pb_ipv4(&p, S4, D4, FWD_PROTO_UDP, 0);
	pb_payload(&p, 3); /* a later fragment: no ports to read */
	pb_ipv4_frag(&p, 0x4242, 0, 3);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.frag, FWD_FRAG_LATER);
	assert_int_equal(k.dport, 0);

	pb_eth(&p, 0x0800); /* non-last fragment not a multiple of 8 */
	pb_ipv4(&p, S4, D4, FWD_PROTO_UDP, 0);
	pb_payload(&p, 12);
	pb_ipv4_frag(&p, 1, 1, 0);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(FRAG_INVALID));

	pb_eth(&p, 0x0800); /* offset + length beyond 64 KiB ("ping of death") */
	pb_ipv4(&p, S4, D4, FWD_PROTO_UDP, 0);
	pb_payload(&p, 16);
	pb_ipv4_frag(&p, 1, 0, 8190);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(FRAG_INVALID));

	pb_eth(&p, 0x0800); /* empty fragment */
	pb_ipv4(&p, S4, D4, FWD_PROTO_UDP, 0);
	pb_ipv4_frag(&p, 1, 0, 5);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(FRAG_INVALID));

	/* The limit is the total length, header included: 65,512 + 16 bytes
	 * made a 65,548-byte datagram, which passed (a probe); 65,512 + 3
	 * ends at 65,535 exactly. */
	pb_eth(&p, 0x0800);
	pb_ipv4(&p, S4, D4, FWD_PROTO_UDP, 0);
	pb_payload(&p, 16);
	pb_ipv4_frag(&p, 1, 0, 8189);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(FRAG_INVALID));
	pb_eth(&p, 0x0800);
	pb_ipv4(&p, S4, D4, FWD_PROTO_UDP, 0);
	pb_payload(&p, 3);
	pb_ipv4_frag(&p, 1, 0, 8189);
	pb_finish_v4(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.frag, FWD_FRAG_LATER);
}

static void test_ipv6_ext_chain(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	pb_eth(&p, 0x86dd);
	pb_ipv6(&p, S6, D6, 0);
	pb_ext6(&p, 43);
	pb_ext6(&p, 60);
	pb_ext6(&p, FWD_PROTO_TCP);
	pb_ports(&p, 7, 7005, 20);
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.family, 6);
	assert_int_equal(k.proto, FWD_PROTO_TCP);
	assert_int_equal(k.l3_len, 40 + 24);
	assert_int_equal(k.dport, 7005);
	assert_memory_equal(k.src, S6, 16);

	/* Every generic header of IANA's registry is walked to the TCP
	 * segment behind it; 253 and 254 (experiments) were once taken for
	 * the packet's protocol. */
	static const uint8_t registry[] = {43, 60, 135, 139, 140, 253, 254};
	for (size_t i = 0; i < sizeof(registry); i++) {
		pb_eth(&p, 0x86dd);
		pb_ipv6(&p, S6, D6, registry[i]);
		pb_ext6(&p, FWD_PROTO_TCP);
		pb_ports(&p, 7, 7005, 20);
		pb_finish_v6(&p);
		assert_int_equal(parse(&p, &k), FWD_OK);
		assert_int_equal(k.proto, FWD_PROTO_TCP);
		assert_int_equal(k.dport, 7005);
	}
	for (unsigned nh = 0; nh < 256; nh++) /* and nothing else is */
		assert_int_equal(fwd_ipv6_is_ext((uint8_t)nh),
				 nh == 0 || nh == 44 || nh == 51 ||
					 memchr(registry, (int)nh, sizeof(registry)) != NULL);

	pb_eth(&p, 0x86dd); /* hop-by-hop not first */
	pb_ipv6(&p, S6, D6, 60);
	pb_ext6(&p, 0);
	pb_ext6(&p, FWD_PROTO_UDP);
	pb_ports(&p, 1, 53, 8);
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV6_EXT_CHAIN));

	pb_eth(&p, 0x86dd); /* nine extension headers */
	pb_ipv6(&p, S6, D6, 60);
	for (int i = 0; i < 8; i++)
		pb_ext6(&p, 60);
	pb_ext6(&p, FWD_PROTO_UDP);
	pb_ports(&p, 1, 53, 8);
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV6_EXT_CHAIN));

	pb_eth(&p, 0x86dd); /* extension header cut short */
	pb_ipv6(&p, S6, D6, 60);
	pb_payload(&p, 4);
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV6_EXT_CHAIN));

	pb_eth(&p, 0x86dd); /* header length pointing past the payload */
	pb_ipv6(&p, S6, D6, 43);
	pb_ext6(&p, FWD_PROTO_UDP);
	p.b[p.len - 8 + 1] = 10;
	pb_ports(&p, 1, 53, 8);
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV6_EXT_CHAIN));
}

/* Destinations no router forwards are dropped as martian_destination, by
 * the full parser (the fast path hands them over); their neighbours are
 * ordinary. A probe saw a router solicitation to ff02::2 and a DHCP
 * discover to 255.255.255.255 steered out on a cross-region link. The same
 * addresses as sources are dropped as martian_source (a spoofed 127.0.0.1
 * was steered as the region of 0.0.0.0/0), the destination's reason first
 * when both are. */
/* fwd_martian_prefix() against the address tests: a prefix it calls martian
 * holds only martian addresses (its first, its last and random ones), and a
 * prefix it does not holds at least one ordinary address among 256 tries
 * (every prefix length, network addresses from near every block edge). */
static void test_martian_prefix_agrees_with_addresses(void **state)
{
	static const uint8_t leads4[] = {0,   1,   126, 127, 128, 168, 169,
					 170, 223, 224, 239, 240, 255};
	static const uint8_t leads6[][2] = {{0, 0},	  {0xfe, 0x7f}, {0xfe, 0x80}, {0xfe, 0xbf},
					    {0xfe, 0xc0}, {0xfe, 0xff}, {0xff, 0},    {0x20, 0x01}};
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	int said_martian = 0, said_ordinary = 0;

	(void)state;
	for (int family = 4; family <= 6; family += 2) {
		int bits = family == 4 ? 32 : 128;
		size_t nleads = family == 4 ? sizeof(leads4) : sizeof(leads6) / sizeof(leads6[0]);

		for (size_t l = 0; l < nleads * 4; l++) {
			for (int len = 0; len <= bits; len++) {
				uint8_t net[16] = {0};
				int martian, ordinary_seen = 0;

				if (family == 4) {
					net[0] = leads4[l % nleads];
					net[1] = l / nleads == 1 ? 254 : (uint8_t)(l / nleads * 85);
				} else {
					net[0] = leads6[l % nleads][0];
					net[1] = leads6[l % nleads][1];
					if (l / nleads == 1) /* ::1 and ::ffff:0:0/96 */
						net[15] = 1;
					if (l / nleads == 2 && net[0] == 0)
						net[10] = net[11] = 0xff;
				}
				for (int b = len; b < bits; b++) /* the network address */
					net[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
				martian = fwd_martian_prefix(net, (unsigned)len, family);
				for (int t = 0; t < 256; t++) {
					uint8_t a[16];

					memcpy(a, net, sizeof(a));
					for (int b = len; b < bits; b++) {
						seed = seed * 6364136223846793005ull +
						       1442695040888963407ull;
						if (t == 1 || (t > 1 && (seed >> 63)))
							a[b / 8] |= (uint8_t)(0x80 >> (b % 8));
					}
					if (!(family == 4 ? fwd_martian4(a) : fwd_martian6(a)))
						ordinary_seen = 1;
				}
				if (martian)
					assert_false(ordinary_seen);
				else
					assert_true(ordinary_seen);
				said_martian += martian;
				said_ordinary += !martian;
			}
		}
	}
	assert_true(said_martian > 100 && said_ordinary > 100);
}

static void test_martian_addresses(void **state)
{
	static const char martian4[][4] = {
		{0, 1, 2, 3},
		{127, 0, 0, 1},
		{(char)169, (char)254, 1, 1},
		{(char)224, 0, 0, (char)251},
		{(char)239, 1, 1, 1},
		{(char)240, 0, 0, 1},
		{(char)255, (char)255, (char)255, (char)255},
	};
	static const char ordinary4[][4] = {
		{1, 0, 0, 1},
		{126, (char)255, (char)255, (char)255},
		{(char)128, 0, 0, 1},
		{(char)169, (char)253, 1, 1},
		{(char)169, (char)255, 0, 1},
		{(char)223, (char)255, (char)255, (char)254},
	};
	static const uint8_t martian6[][16] = {
		{0}, /* :: */
		{[15] = 1}, /* ::1 */
		{0xfe, 0x80, [15] = 1}, /* fe80::1 */
		{0xfe, 0xbf, [15] = 1}, /* the end of fe80::/10 */
		{0xff, 0x02, [15] = 2}, /* ff02::2 */
		{0xff, 0x0e, [15] = 1}, /* global multicast: no multicast routing */
		{[10] = 0xff, [11] = 0xff, 10, 1, 1, 1}, /* ::ffff:10.1.1.1 */
	};
	static const uint8_t ordinary6[][16] = {
		{[15] = 2}, /* ::2 (IPv4-compatible, deprecated, not scoped) */
		{0xfe, 0xc0, [15] = 1}, /* fec0::1 (site-local, deprecated) */
		{0xfd, 0x00, [15] = 1}, /* ULA */
		{0x20, 0x01, 0x0d, 0xb8, [15] = 2},
	};
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	for (size_t i = 0; i < sizeof(martian4) / sizeof(martian4[0]); i++) {
		pb_eth(&p, 0x0800);
		pb_ipv4(&p, S4, martian4[i], FWD_PROTO_UDP, 0);
		pb_ports(&p, 68, 67, 8);
		pb_finish_v4(&p);
		assert_int_equal(fwd_parse_fast(p.b, p.b + p.len, &k), 0);
		assert_int_equal(parse(&p, &k), FWD_ERR(DST_MARTIAN));
		pb_eth(&p, 0x0800);
		pb_ipv4(&p, martian4[i], D4, FWD_PROTO_UDP, 0);
		pb_ports(&p, 68, 67, 8);
		pb_finish_v4(&p);
		assert_int_equal(fwd_parse_fast(p.b, p.b + p.len, &k), 0);
		/* nor on a NIC's verdict (the worker's other fast entry) */
		assert_int_equal(fwd_parse_fast4_verified(p.b, p.b + p.len, &k), 0);
		assert_int_equal(parse(&p, &k), FWD_ERR(SRC_MARTIAN));
		pb_eth(&p, 0x0800);
		pb_ipv4(&p, martian4[i], martian4[i], FWD_PROTO_UDP, 0);
		pb_ports(&p, 68, 67, 8);
		pb_finish_v4(&p);
		assert_int_equal(parse(&p, &k), FWD_ERR(DST_MARTIAN));
	}
	for (size_t i = 0; i < sizeof(ordinary4) / sizeof(ordinary4[0]); i++) {
		pb_eth(&p, 0x0800);
		pb_ipv4(&p, S4, ordinary4[i], FWD_PROTO_UDP, 0);
		pb_ports(&p, 68, 67, 8);
		pb_finish_v4(&p);
		assert_int_equal(parse(&p, &k), FWD_OK);
		pb_eth(&p, 0x0800);
		pb_ipv4(&p, ordinary4[i], D4, FWD_PROTO_UDP, 0);
		pb_ports(&p, 68, 67, 8);
		pb_finish_v4(&p);
		assert_int_equal(parse(&p, &k), FWD_OK);
		assert_memory_equal(k.src, ordinary4[i], 4);
	}
	for (size_t i = 0; i < sizeof(martian6) / sizeof(martian6[0]); i++) {
		pb_eth(&p, 0x86dd);
		/* UDP with its ports: the fast path would take it but for
		 * its destination (ICMPv6 it never takes) */
		pb_ipv6(&p, S6, martian6[i], FWD_PROTO_UDP);
		pb_ports(&p, 1, 53, 8);
		pb_finish_v6(&p);
		assert_int_equal(fwd_parse_fast(p.b, p.b + p.len, &k), 0);
		assert_int_equal(parse(&p, &k), FWD_ERR(DST_MARTIAN));
		pb_eth(&p, 0x86dd);
		pb_ipv6(&p, martian6[i], D6, FWD_PROTO_UDP);
		pb_ports(&p, 1, 53, 8);
		pb_finish_v6(&p);
		assert_int_equal(fwd_parse_fast(p.b, p.b + p.len, &k), 0);
		/* ::ffff:10.1.1.1 has a reason of its own */
		assert_int_equal(parse(&p, &k), i == sizeof(martian6) / sizeof(martian6[0]) - 1
							? FWD_ERR(IPV6_MAPPED_SRC)
							: FWD_ERR(SRC_MARTIAN));
	}
	for (size_t i = 0; i < sizeof(ordinary6) / sizeof(ordinary6[0]); i++) {
		pb_eth(&p, 0x86dd);
		pb_ipv6(&p, S6, ordinary6[i], FWD_PROTO_UDP);
		pb_ports(&p, 1, 53, 8);
		pb_finish_v6(&p);
		assert_int_equal(parse(&p, &k), FWD_OK);
		pb_eth(&p, 0x86dd);
		pb_ipv6(&p, ordinary6[i], D6, FWD_PROTO_UDP);
		pb_ports(&p, 1, 53, 8);
		pb_finish_v6(&p);
		assert_int_equal(parse(&p, &k), FWD_OK);
		assert_memory_equal(k.src, ordinary6[i], 16);
	}
}

static void test_ipv6_malformed(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	pb_eth(&p, 0x86dd);
	pb_ipv6(&p, S6, D6, FWD_PROTO_UDP);
	pb_ports(&p, 1, 53, 8);
	pb_finish_v6(&p);
	p.b[14] = 0x40;
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV6_BAD_HEADER));

	/* An IPv4-mapped source (::ffff:10.9.9.9): no region may hold it, and
	 * it once classified as no region at all, following the default out
	 * where its IPv4 twin kept to its region's residency. The fast path
	 * leaves it to the full parser, which names the drop; ::fffe:... and
	 * an IPv4-compatible ::10.9.9.9 are ordinary sources. */
	{
		static const uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff, 10, 9, 9, 9};
		uint8_t other[16];

		pb_eth(&p, 0x86dd);
		pb_ipv6(&p, mapped, D6, FWD_PROTO_UDP);
		pb_ports(&p, 1, 7005, 8);
		pb_finish_v6(&p);
		assert_int_equal(fwd_parse_fast(p.b, p.b + p.len, &k), 0);
		assert_int_equal(parse(&p, &k), FWD_ERR(IPV6_MAPPED_SRC));
		for (int v = 0; v < 3; v++) {
			memcpy(other, mapped, 16);
			if (v == 0)
				other[11] = 0xfe;
			else if (v == 1)
				other[10] = other[11] = 0;
			else
				other[0] = 0x20;
			pb_eth(&p, 0x86dd);
			pb_ipv6(&p, other, D6, FWD_PROTO_UDP);
			pb_ports(&p, 1, 7005, 8);
			pb_finish_v6(&p);
			assert_int_equal(parse(&p, &k), FWD_OK);
			assert_memory_equal(k.src, other, 16);
		}
	}

	pb_eth(&p, 0x86dd);
	pb_ipv6(&p, S6, D6, FWD_PROTO_UDP);
	p.len = 14 + 39;
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV6_TRUNCATED));

	pb_eth(&p, 0x86dd);
	pb_ipv6(&p, S6, D6, FWD_PROTO_UDP);
	pb_ports(&p, 1, 53, 8);
	pb_finish_v6(&p);
	p.len -= 1;
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV6_TRUNCATED));
}

static void test_ipv6_fragments(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	pb_eth(&p, 0x86dd);
	pb_ipv6(&p, S6, D6, 44);
	pb_frag6(&p, FWD_PROTO_UDP, 0xdeadbeef, 1, 0);
	pb_ports(&p, 3, 123, 8);
	pb_payload(&p, 8);
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.frag, FWD_FRAG_FIRST);
	assert_int_equal(k.frag_id, 0xdeadbeef);
	assert_int_equal(k.dport, 123);

	pb_eth(&p, 0x86dd);
	pb_ipv6(&p, S6, D6, 44);
	pb_frag6(&p, FWD_PROTO_UDP, 0xdeadbeef, 0, 2);
	pb_payload(&p, 5);
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.frag, FWD_FRAG_LATER);
	assert_int_equal(k.proto, FWD_PROTO_UDP);

	pb_eth(&p, 0x86dd); /* atomic fragment: a whole datagram */
	pb_ipv6(&p, S6, D6, 44);
	pb_frag6(&p, FWD_PROTO_TCP, 5, 0, 0);
	pb_ports(&p, 3, 443, 20);
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	assert_int_equal(k.frag, FWD_FRAG_NONE);
	assert_int_equal(k.dport, 443);

	pb_eth(&p, 0x86dd); /* two fragment headers */
	pb_ipv6(&p, S6, D6, 44);
	pb_frag6(&p, 44, 5, 0, 0);
	pb_frag6(&p, FWD_PROTO_UDP, 5, 1, 0);
	pb_ports(&p, 3, 53, 8);
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(FRAG_INVALID));

	/* The limit is the payload length: the extension headers before
	 * the fragment header count in it (RFC 8200 4.5), the 40-byte
	 * header does not. */
	pb_eth(&p, 0x86dd);
	pb_ipv6(&p, S6, D6, 44);
	pb_frag6(&p, FWD_PROTO_UDP, 7, 0, 8190);
	pb_payload(&p, 8); /* ends at 65,528 */
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);
	pb_eth(&p, 0x86dd);
	pb_ipv6(&p, S6, D6, 60);
	pb_ext6(&p, 44); /* 8 bytes of destination options ahead */
	pb_frag6(&p, FWD_PROTO_UDP, 7, 0, 8190);
	pb_payload(&p, 8); /* 8 + 65,520 + 8: 65,536 */
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(FRAG_INVALID));
	pb_eth(&p, 0x86dd);
	pb_ipv6(&p, S6, D6, 60);
	pb_ext6(&p, 44);
	pb_frag6(&p, FWD_PROTO_UDP, 7, 0, 8190);
	pb_payload(&p, 7); /* 65,535 */
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_OK);

	pb_eth(&p, 0x86dd); /* first fragment that cuts the header chain (RFC 7112) */
	pb_ipv6(&p, S6, D6, 44);
	pb_frag6(&p, 60, 6, 1, 0);
	pb_payload(&p, 8);
	p.b[p.len - 8 + 1] = 3; /* destination options claiming 32 bytes */
	pb_finish_v6(&p);
	assert_int_equal(parse(&p, &k), FWD_ERR(IPV6_EXT_CHAIN));
}

/* Truncating a valid frame at every length never reads out of bounds (the
 * sanitizer build checks that) and fails with a truncation class, never OK
 * until the frame is complete. */
static void test_every_truncation(void **state)
{
	struct pb full, p;
	struct fwd_pkt k;

	(void)state;
	pb_eth(&full, 0x8100);
	pb_vlan(&full, 9, 0x86dd);
	pb_ipv6(&full, S6, D6, 0);
	pb_ext6(&full, FWD_PROTO_TCP);
	pb_ports(&full, 1, 443, 20);
	pb_finish_v6(&full);
	for (size_t len = 0; len < full.len; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		int rc;

		memcpy(copy, full.b, len);
		rc = fwd_parse(copy, copy + len, &k);
		assert_int_not_equal(rc, FWD_OK);
		free(copy);
	}
	p = full;
	assert_int_equal(parse(&p, &k), FWD_OK);
}

static void test_ttl_decrement_checksum(void **state)
{
	struct pb p;
	struct fwd_pkt k;

	(void)state;
	srand(7);
	for (int i = 0; i < 5000; i++) {
		udp4(&p, (uint16_t)rand());
		for (int j = 0; j < 20; j++)
			if (j != 0 && j != 2 && j != 3 && j != 10 && j != 11)
				p.b[14 + j] = (uint8_t)rand();
		p.b[14 + 6] &= 0x40; /* no fragmentation */
		p.b[14 + 7] = 0;
		p.b[14 + 8] = (uint8_t)(2 + rand() % 254);
		p.b[14 + 9] = FWD_PROTO_UDP;
		if (fwd_martian4(p.b + 14 + 16))
			p.b[14 + 16] = 198; /* a destination regionfwd forwards */
		if (fwd_martian4(p.b + 14 + 12))
			p.b[14 + 12] = 198; /* and a source */
		pb_finish_v4(&p);
		assert_int_equal(parse(&p, &k), FWD_OK);
		fwd_ipv4_ttl_dec(p.b + 14);
		assert_int_equal(pb_csum(p.b + 14, 20), 0); /* verifies as a whole */
		assert_int_equal(parse(&p, &k), FWD_OK);
	}
}

/* RFC 1624 eqn. 3 taken literally, the reference for fwd_ipv4_ttl_dec(). */
static uint16_t ttl_dec_eqn3(uint16_t hc, uint16_t old_word, uint16_t new_word)
{
	return (uint16_t)~fwd_csum_fold((uint32_t)(uint16_t)~hc + (uint16_t)~old_word + new_word);
}

/* Every checksum value, including the 0x0000 / 0xffff corner of ones'
 * complement, against the equation; no other byte written, in either
 * family. */
static void test_ttl_decrement_every_checksum(void **state)
{
	static const uint8_t ttls[] = {2, 3, 64, 128, 255};
	static const uint8_t protos[] = {0, FWD_PROTO_TCP, FWD_PROTO_UDP, 255};
	uint8_t ip[20] = {0x45};

	(void)state;
	for (uint32_t hc = 0; hc <= 0xffff; hc++) {
		for (size_t t = 0; t < sizeof(ttls); t++) {
			for (size_t q = 0; q < sizeof(protos); q++) {
				uint16_t old_word = (uint16_t)(ttls[t] << 8 | protos[q]);
				uint8_t before[20];

				/* every other header byte something, and unchanged */
				for (int b = 1; b < 20; b++)
					ip[b] = (uint8_t)(hc * 11 + (uint32_t)b * 29);
				ip[8] = ttls[t];
				ip[9] = protos[q];
				pb_u16(ip + 10, (uint16_t)hc);
				memcpy(before, ip, sizeof(before));
				fwd_ipv4_ttl_dec(ip);
				assert_int_equal(ip[8], ttls[t] - 1);
				assert_int_equal(fwd_rd16(ip + 10),
						 ttl_dec_eqn3((uint16_t)hc, old_word,
							      (uint16_t)(old_word - 0x100)));
				ip[8] = before[8];
				ip[10] = before[10];
				ip[11] = before[11];
				assert_memory_equal(ip, before, sizeof(before));
			}
		}
		/* IPv6: the hop limit (byte 7) only; bytes 8-11, the source
		 * address's first word, whatever they hold, stay as they were. */
		{
			uint8_t ip6[40], before[40];

			for (int b = 0; b < 40; b++)
				ip6[b] = (uint8_t)(hc * 7 + (uint32_t)b * 13);
			ip6[0] = 0x60;
			ip6[7] = (uint8_t)(2 + hc % 254);
			ip6[8] = (uint8_t)(hc >> 3);
			pb_u16(ip6 + 10, (uint16_t)hc);
			memcpy(before, ip6, sizeof(before));
			fwd_ip_ttl_dec(ip6, 1);
			assert_int_equal(ip6[7], before[7] - 1);
			ip6[7] = before[7];
			assert_memory_equal(ip6, before, sizeof(before));
		}
	}
}

static void fix_v4_csum(struct pb *p)
{
	uint8_t *ip = p->b + p->l3;
	size_t hl = (size_t)(ip[0] & 0xf) * 4;

	if (p->l3 + hl > p->len || hl < 20)
		return;
	ip[10] = ip[11] = 0;
	pb_u16(ip + 10, pb_csum(ip, hl));
}

/* What a NIC that reports packet types and verifies IPv4 header checksums
 * vouches for (RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4, IP_CKSUM_GOOD): the
 * condition under which the worker calls fwd_parse_fast4_verified(). */
static int nic_vouches_ipv4(const struct pb *p)
{
	if (p->len < 34 || p->b[12] != 0x08 || p->b[13] != 0x00 || p->b[14] != 0x45)
		return 0;
	return pb_csum(p->b + 14, 20) == 0;
}

/* fwd_parse() tries fwd_parse_fast() first. Whatever the fast path accepts
 * must be exactly what fwd_parse_full() makes of the frame, and the two
 * entry points must agree on every verdict. Base frames of every shape,
 * then random byte changes (with the IPv4 checksum made right again half
 * the time, so mutated headers get past it) and random truncations. */
static void test_fast_path_equals_full(void **state)
{
	struct pb base[12], p;
	int nbase = 0, fast_hits = 0, fast_misses = 0, vouched = 0, vouched_taken = 0;

	(void)state;
	/* IPv4 UDP / TCP / TCP with DF, IPv6 UDP / TCP: the fast path's shapes. */
	udp4(&base[nbase++], 53);
	pb_eth(&base[nbase], 0x0800);
	pb_ipv4(&base[nbase], S4, D4, FWD_PROTO_TCP, 0);
	pb_ports(&base[nbase], 40000, 443, 20);
	pb_finish_v4(&base[nbase++]);
	base[nbase] = base[nbase - 1];
	base[nbase].b[14 + 6] = 0x40;
	pb_finish_v4(&base[nbase++]);
	pb_eth(&base[nbase], 0x86dd);
	pb_ipv6(&base[nbase], S6, D6, FWD_PROTO_UDP);
	pb_ports(&base[nbase], 5353, 53, 8);
	pb_payload(&base[nbase], 12);
	pb_finish_v6(&base[nbase++]);
	pb_eth(&base[nbase], 0x86dd);
	pb_ipv6(&base[nbase], S6, D6, FWD_PROTO_TCP);
	pb_ports(&base[nbase], 1234, 80, 20);
	pb_finish_v6(&base[nbase++]);
	int nfast = nbase;
	/* Shapes that must leave the fast path: options, VLAN, fragments,
	 * extension headers, SCTP, ICMP. */
	pb_eth(&base[nbase], 0x0800);
	pb_ipv4(&base[nbase], S4, D4, FWD_PROTO_TCP, 8);
	pb_ports(&base[nbase], 1, 2, 20);
	pb_finish_v4(&base[nbase++]);
	pb_eth(&base[nbase], 0x8100);
	pb_vlan(&base[nbase], 7, 0x0800);
	pb_ipv4(&base[nbase], S4, D4, FWD_PROTO_UDP, 0);
	pb_ports(&base[nbase], 1, 2, 8);
	pb_payload(&base[nbase], 30);
	pb_finish_v4(&base[nbase++]);
	pb_eth(&base[nbase], 0x0800);
	pb_ipv4(&base[nbase], S4, D4, FWD_PROTO_UDP, 0);
	pb_ports(&base[nbase], 1, 2, 8);
	pb_payload(&base[nbase], 32);
	pb_ipv4_frag(&base[nbase], 9, 1, 0);
	pb_finish_v4(&base[nbase++]);
	pb_eth(&base[nbase], 0x86dd);
	pb_ipv6(&base[nbase], S6, D6, 0);
	pb_ext6(&base[nbase], FWD_PROTO_TCP);
	pb_ports(&base[nbase], 1, 2, 20);
	pb_finish_v6(&base[nbase++]);
	pb_eth(&base[nbase], 0x0800);
	pb_ipv4(&base[nbase], S4, D4, FWD_PROTO_SCTP, 0);
	pb_ports(&base[nbase], 1, 2, 12);
	pb_payload(&base[nbase], 20);
	pb_finish_v4(&base[nbase++]);
	pb_eth(&base[nbase], 0x0800);
	pb_ipv4(&base[nbase], S4, D4, FWD_PROTO_ICMP, 0);
	pb_payload(&base[nbase], 30);
	pb_finish_v4(&base[nbase++]);

	srand(11);
	for (int b = 0; b < nbase; b++) {
		for (int it = 0; it < 40000; it++) {
			struct fwd_pkt f, g;
			int fast, full;

			p = base[b];
			if (it > 0) {
				int flips = 1 + rand() % 3;

				for (int k = 0; k < flips; k++) {
					size_t at = (size_t)rand() % (p.len < 80 ? p.len : 80);

					p.b[at] =
						(uint8_t)(rand() % 4
								  ? (unsigned)rand()
								  : p.b[at] ^ (1u << (rand() % 8)));
				}
				if (rand() % 2)
					fix_v4_csum(&p);
				if (rand() % 4 == 0)
					p.len = (size_t)rand() % (p.len + 1);
			}
			memset(&f, 0xa5, sizeof(f));
			memset(&g, 0xa5, sizeof(g));
			fast = fwd_parse_fast(p.b, p.b + p.len, &f);
			full = fwd_parse_full(p.b, p.b + p.len, &g);
			if (it == 0)
				assert_int_equal(fast != 0, b < nfast); /* the base shapes */
			if (fast) {
				fast_hits++;
				assert_int_equal(full, FWD_OK);
				assert_int_equal(fast, g.family); /* what it returns */
				assert_memory_equal(&f, &g, sizeof(f));
			} else {
				fast_misses++;
			}
			memset(&f, 0xa5, sizeof(f));
			assert_int_equal(fwd_parse(p.b, p.b + p.len, &f), full);
			if (full == FWD_OK)
				assert_memory_equal(&f, &g, sizeof(f));
			/* Where a NIC vouches for the header, the verdict path
			 * takes exactly what the fast path takes, and fills it
			 * the same. */
			if (nic_vouches_ipv4(&p)) {
				struct fwd_pkt v;
				int taken;

				memset(&v, 0xa5, sizeof(v));
				taken = fwd_parse_fast4_verified(p.b, p.b + p.len, &v);
				vouched++;
				assert_int_equal(taken, fast == 4 ? 4 : 0);
				if (taken) {
					vouched_taken++;
					assert_memory_equal(&v, &g, sizeof(v));
				}
			}
		}
	}
	/* Both sides of the fast path were exercised, and of the verdict path. */
	assert_true(fast_hits > 1000);
	assert_true(fast_misses > 1000);
	assert_true(vouched_taken > 1000);
	assert_true(vouched - vouched_taken > 1000);
}

/* The fast path sums the IPv4 header in wide words, whose sum can carry
 * out of 64 bits; the carry must count as 1. Headers with high bytes (half
 * of them 0xff) in every field the fast path leaves free -- TOS, ID, DF,
 * TTL, addresses -- and a checksum that verifies are all taken, filled as
 * fwd_parse_full() fills them; the same with the checksum one off are
 * refused by both. A quarter of the headers (ID 0x2000, flags 0, both
 * addresses 223.255.255.255) make the second sum carry too; both carries
 * are counted, each must have happened often. */
static void test_fast_checksum_carries(void **state)
{
	int carried1 = 0, carried2 = 0;

	(void)state;
	srand(13);
	for (int it = 0; it < 200000; it++) {
		struct pb p;
		struct fwd_pkt f, g;
		uint8_t *ip;
		uint64_t w0, w1, sum;
		uint32_t w2;
		uint16_t c;

		udp4(&p, (uint16_t)rand());
		ip = p.b + 14;
		for (int k = 1; k < 20; k++) {
			if (k == 2 || k == 3 || k == 6 || k == 7 || k == 9 || k == 10 || k == 11)
				continue; /* length, fragment bits, protocol, checksum */
			ip[k] = rand() % 2 ? 0xff : (uint8_t)rand();
		}
		ip[6] = rand() % 2 ? 0x40 : 0; /* DF or not */
		if (it % 4 == 0) {
			/* Both addresses 223.255.255.255 (255.255.255.255 is never
			 * forwarded, from or to), ID 0x2000, flags 0: the upper
			 * halves of the first sum, bytes 4-7 and 12-15 as the
			 * little-endian loads read them, 0x00000020 + 0xffffffdf,
			 * fill 32 bits, so the second sum carries whenever the
			 * lower halves did not (and the first carries when they
			 * did). */
			ip[4] = 0x20;
			ip[5] = ip[6] = 0;
			memset(ip + 12, 0xff, 8);
			ip[12] = ip[16] = 0xdf;
		}
		if (fwd_martian4_lead[ip[16]])
			ip[16] = 198;
		if (fwd_martian4_lead[ip[12]])
			ip[12] = 0xdf; /* high, for the carries */
		fix_v4_csum(&p);
		memcpy(&w0, ip, 8);
		memcpy(&w1, ip + 8, 8);
		memcpy(&w2, ip + 16, 4);
		sum = w0 + w1;
		carried1 += sum < w1;
		sum += sum < w1;
		carried2 += sum + w2 < w2;
		memset(&f, 0xa5, sizeof(f));
		memset(&g, 0xa5, sizeof(g));
		assert_int_equal(fwd_parse_fast(p.b, p.b + p.len, &f), 4);
		assert_int_equal(fwd_parse_full(p.b, p.b + p.len, &g), FWD_OK);
		assert_memory_equal(&f, &g, sizeof(f));
		c = (uint16_t)(ip[10] << 8 | ip[11]);
		c = c == 0xfffe ? 0 : (uint16_t)(c + 1); /* one off, in ones' complement */
		ip[10] = (uint8_t)(c >> 8);
		ip[11] = (uint8_t)c;
		assert_int_equal(fwd_parse_fast(p.b, p.b + p.len, &f), 0);
		assert_int_equal(fwd_parse_full(p.b, p.b + p.len, &g), FWD_ERR(IPV4_BAD_CSUM));
	}
	assert_true(carried1 > 10000);
	assert_true(carried2 > 10000);
}

/* The flow hash decides links across boxes: its value for a fixed tuple is
 * part of the contract and must not change by accident. */
/* A UDP payload ends where the UDP length says: bytes past it are no
 * datagram's (a DNS query behind a UDP length of 8 was dropped by a content
 * rule, a probe). A length under 8 leaves none; one past the IP datagram,
 * or a first fragment's (the datagram's whole length), ends with the IP
 * datagram. */
static void test_udp_payload_ends_at_the_udp_length(void **state)
{
	static const struct {
		uint16_t ulen;
		int more;
		uint32_t want;
	} cases[] = {
		{8 + 32, 0, 32}, /* as sent */
		{8, 0, 0}, /* the rest trails the datagram */
		{8 + 12, 0, 12},   {3, 0, 0}, /* invalid: nothing to scan */
		{8 + 100, 0, 32}, /* past the IP datagram: what there is */
		{8 + 1000, 1, 32}, /* a first fragment's: the whole datagram's */
	};
	const char src[4] = {10, 1, 2, 3}, dst[4] = {10, 9, 8, 7};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pb b;
		struct fwd_pkt p = {0};
		const uint8_t *pl;
		uint32_t len;
		uint8_t flags;

		pb_eth(&b, 0x0800);
		pb_ipv4(&b, src, dst, FWD_PROTO_UDP, 0);
		pb_ports(&b, 1234, 53, 8);
		pb_u16(b.b + b.l4 + 4, cases[i].ulen);
		pb_payload(&b, 32);
		if (cases[i].more)
			pb_ipv4_frag(&b, 7, 1, 0);
		pb_finish_v4(&b);
		assert_int_equal(fwd_parse(b.b, b.b + b.len, &p), FWD_OK);
		assert_int_equal(fwd_l4_payload(b.b, b.b + b.len, &p, &pl, &len, &flags), 0);
		assert_ptr_equal(pl, b.b + b.l4 + 8);
		if (len != cases[i].want)
			fail_msg("UDP length %u%s: payload %u, not %u", cases[i].ulen,
				 cases[i].more ? " (first fragment)" : "", len, cases[i].want);
	}
}

static void test_flow_hash_stable(void **state)
{
	struct pb p;
	struct fwd_pkt a, b;

	(void)state;
	udp4(&p, 443);
	assert_int_equal(parse(&p, &a), FWD_OK);
	b = a;
	assert_int_equal(fwd_flow_hash(&a), fwd_flow_hash(&b));
	assert_int_equal(fwd_flow_hash(&a), 0x4a908f6au); /* tests/lib/refclass.py agrees */
	b.sport++;
	assert_int_not_equal(fwd_flow_hash(&a), fwd_flow_hash(&b));
}

/* The CRC under the flow hash is CRC32C: its standard check value
 * (RFC 3720 B.4: "123456789", initial and final inversion). */
static void test_crc32c_definition(void **state)
{
	const uint8_t s[] = "123456789";
	uint32_t crc = 0xffffffffu;

	(void)state;
	for (int i = 0; i < 9; i++)
		crc = fwd_crc32c_u8_soft(crc, s[i]);
	assert_int_equal(crc ^ 0xffffffffu, 0xe3069283u);
	crc = fwd_crc32c_4(0xffffffffu, s);
	crc = fwd_crc32c_4(crc, s + 4);
	assert_int_equal(fwd_crc32c_u8_soft(crc, s[8]) ^ 0xffffffffu, 0xe3069283u);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_insn(uint32_t crc, uint32_t v)
{
	return __builtin_ia32_crc32si(crc, v);
}
#endif

/* The fast path computes the flow hash with the CPU's CRC32C instruction
 * (dataplane/ is built for SSE4.2): it must give what the bytewise
 * definition gives, which this test binary may be using instead. */
static void test_crc32c_instruction(void **state)
{
	(void)state;
#if defined(__x86_64__) || defined(__i386__)
	uint64_t x = 0x9e3779b97f4a7c15u;

	if (!__builtin_cpu_supports("sse4.2"))
		skip();
	for (int i = 0; i < 100000; i++) {
		uint32_t crc = (uint32_t)(x >> 32), v = (uint32_t)x;

		assert_int_equal(crc32c_insn(crc, v), fwd_crc32c_u32_soft(crc, v));
		assert_int_equal(fwd_crc32c_u32(crc, v), fwd_crc32c_u32_soft(crc, v));
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_udp),
		cmocka_unit_test(test_crc32c_definition),
		cmocka_unit_test(test_crc32c_instruction),
		cmocka_unit_test(test_ipv4_options_tcp),
		cmocka_unit_test(test_vlan_and_qinq),
		cmocka_unit_test(test_l2_malformed),
		cmocka_unit_test(test_ipv4_malformed),
		cmocka_unit_test(test_ipv4_padding_accepted),
		cmocka_unit_test(test_l4_truncated),
		cmocka_unit_test(test_ipv4_fragments),
		cmocka_unit_test(test_ipv6_ext_chain),
		cmocka_unit_test(test_ipv6_malformed),
		cmocka_unit_test(test_martian_addresses),
		cmocka_unit_test(test_martian_prefix_agrees_with_addresses),
		cmocka_unit_test(test_ipv6_fragments),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_ttl_decrement_checksum),
		cmocka_unit_test(test_ttl_decrement_every_checksum),
		cmocka_unit_test(test_fast_path_equals_full),
		cmocka_unit_test(test_fast_checksum_carries),
		cmocka_unit_test(test_flow_hash_stable),
		cmocka_unit_test(test_udp_payload_ends_at_the_udp_length),
	};

	return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
