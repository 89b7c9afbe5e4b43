/*
 * fwd_b64.h - RFC 4648 base64, for binary blobs (Hyperscan databases)
 * carried inside JSON messages. Decoding is strict: the alphabet, padding
 * only at the end, length a multiple of 4; anything else is refused.
 */
#ifndef FWD_B64_H
#define FWD_B64_H

#include <stddef.h>
#include <stdint.h>

static inline size_t fwd_b64_enc_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

/** Encode @n bytes into @out (fwd_b64_enc_len(n) + 1 bytes, NUL-terminated). */
static inline void fwd_b64_encode(const void *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *p = in;
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);

		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? a[v & 63] : '=';
	}
	out[o] = '\0';
}

static inline int fwd_b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/**
 * Decode @n characters into @out (at least n / 4 * 3 bytes).
 * @return the decoded length, or -1 when @in is not canonical base64
 */
static inline long fwd_b64_decode(const char *in, size_t n, uint8_t *out)
{
	size_t o = 0;

	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad || (v[k] = fwd_b64_val(in[i + k])) < 0)
				return -1; /* a character outside the alphabet, or data after '=' */
		}
		out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (uint8_t)(v[1] << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (uint8_t)(v[2] << 6 | v[3]);
	}
	return (long)o;
}

#endif /* FWD_B64_H */
