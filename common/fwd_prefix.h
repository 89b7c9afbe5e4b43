/*
 * fwd_prefix.h - the two rules a prefix written as text must keep beyond
 * what inet_pton() and the length bounds check, shared by the table
 * document's reader (fwd_table_regions.c) and the API's prefix deltas
 * (fwd_delta.c), so that a prefix one refuses the other refuses too.
 */
#ifndef FWD_PREFIX_H
#define FWD_PREFIX_H

#include <stdint.h>
#include <string.h>

/* A length written with a leading zero ("/08"): refused, as inet_pton()
 * refuses an octet such as "010", because some tools read it as octal. */
static inline int fwd_prefix_len_leading_zero(const char *digits)
{
	return digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9';
}

/* An IPv6 prefix inside ::ffff:0:0/96, the IPv4-mapped addresses: a socket
 * API's way to show an IPv4 peer, never a source address on the wire
 * (RFC 4291 2.5.5.2), so a region that lists one matches no packet; the
 * operator meant the IPv4 prefix (fwd_prefix6_mapped_hint() spells it). */
static inline int fwd_prefix6_mapped(const uint8_t a[16], unsigned len)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return len >= 96 && memcmp(a, mapped, sizeof(mapped)) == 0;
}

/* The refusal's text for a mapped prefix @text, naming the IPv4 prefix. */
#define FWD_PREFIX6_MAPPED_FMT                                                                     \
	"'%s' is an IPv4-mapped IPv6 prefix, which no packet carries as its source; "              \
	"for IPv4 sources write %u.%u.%u.%u/%u"
#define FWD_PREFIX6_MAPPED_ARGS(a, len) (a)[12], (a)[13], (a)[14], (a)[15], (len)-96u

#endif
