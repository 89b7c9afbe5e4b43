/*
 * Fuzz target: the SNI, HTTP Host and DNS name extractors on arbitrary
 * payloads. Beyond "no crash": a returned length is the string's length, the
 * name is printable, lowercase ASCII, and never longer than 255 bytes; an
 * SNI or a Host never ends in a dot (servers strip one), a Host holds no
 * userinfo, path or port ('@', '/', '?', '#', '\\'; ':' in an IP literal only).
 * The pipelined-request and DNS-over-TCP walks the same, name by name, and
 * bounded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void check(int n, const char *name)
{
	if (n <= 0)
		return;
	if ((size_t)n != strlen(name) || n > 255)
		abort();
	for (int i = 0; i < n; i++)
		if (name[i] < 0x21 || name[i] > 0x7e || (name[i] >= 'A' && name[i] <= 'Z'))
			abort();
}

/* A server's name: no trailing dot, and for a Host, an authority's host alone. */
static void check_host(int n, const char *name, int http)
{
	check(n, name);
	if (n <= 0)
		return;
	if (name[n - 1] == '.')
		abort();
	if (http && (strpbrk(name, "@/?#\\") || (name[0] != '[' && strchr(name, ':'))))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char name[FWD_X_NAME_MAX];

	check_host(fwd_extract_sni(data, len, name, sizeof(name)), name, 0);
	check_host(fwd_extract_http_host(data, len, name, sizeof(name)), name, 1);
	check(fwd_extract_dns_qname(data, len, name, sizeof(name)), name);
	/* Every request or message of the payload: the walk moves forward,
	 * stops within FWD_X_MAX_NAMES + 1 calls, and each name holds. */
	for (int dns = 0; dns < 2; dns++) {
		struct fwd_x_iter it = {0};
		unsigned calls = 0;

		do {
			const size_t at = it.off;
			const int n =
				dns ? fwd_extract_dns_tcp_next(data, len, &it, name, sizeof(name))
				    : fwd_extract_http_next(data, len, &it, name, sizeof(name));

			if (dns)
				check(n, name);
			else
				check_host(n, name, 1);
			if (it.off > len || (it.off < len && (it.off <= at || n < 0)) ||
			    ++calls > FWD_X_MAX_NAMES + 1)
				abort();
		} while (it.off < len);
	}
	/* A small output buffer must never be overrun either. */
	check(fwd_extract_sni(data, len, name, 8), name);
	return 0;
}
