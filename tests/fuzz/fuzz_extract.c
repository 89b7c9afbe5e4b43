/*
 * Fuzz target: the SNI, HTTP Host and DNS name extractors on arbitrary
 * payloads. Beyond "no crash": a returned length is the string's length, the
 * name is printable, lowercase ASCII, and never longer than 255 bytes; an
 * SNI or a Host never ends in a dot (servers strip one), a Host holds no
 * userinfo, path or port ('@', '/', '?', '#', '\\'; ':' in an IP literal only).
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
	/* A small output buffer must never be overrun either. */
	check(fwd_extract_sni(data, len, name, 8), name);
	return 0;
}
