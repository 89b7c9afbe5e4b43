/*
 * Fuzz target: the SNI, HTTP Host and DNS name extractors on arbitrary
 * payloads. Beyond "no crash": a returned length is the string's length, the
 * name is printable, lowercase ASCII, and never longer than 255 bytes.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char name[FWD_X_NAME_MAX];

	check(fwd_extract_sni(data, len, name, sizeof(name)), name);
	check(fwd_extract_http_host(data, len, name, sizeof(name)), name);
	check(fwd_extract_dns_qname(data, len, name, sizeof(name)), name);
	/* A small output buffer must never be overrun either. */
	check(fwd_extract_sni(data, len, name, 8), name);
	return 0;
}
