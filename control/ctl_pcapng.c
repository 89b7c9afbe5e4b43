#include "ctl_pcapng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Option codes (interface description, enhanced packet, statistics). */
#define OPT_END 0
#define IDB_NAME 2
#define IDB_TSRESOL 9
#define ISB_IFRECV 4
#define ISB_IFDROP 5

int ctl_buf_put(struct ctl_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *d;

		while (cap < b->len + n)
			cap *= 2;
		d = realloc(b->data, cap);
		if (d == NULL)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void ctl_buf_free(struct ctl_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static int put32(struct ctl_buf *b, uint32_t v)
{
	return ctl_buf_put(b, &v, 4);
}

static int put16(struct ctl_buf *b, uint16_t v)
{
	return ctl_buf_put(b, &v, 2);
}

/* An option: code, length, value padded to 4 bytes. */
static int opt(struct ctl_buf *b, uint16_t code, const void *v, size_t n)
{
	static const uint8_t zero[4];

	if (n > 0xffff)
		return -EINVAL;
	return put16(b, code) || put16(b, (uint16_t)n) || ctl_buf_put(b, v, n) ||
			       ctl_buf_put(b, zero, (4 - n % 4) % 4)
		       ? -ENOMEM
		       : 0;
}

/* Start a block (type, length to be patched); returns its offset. */
static size_t begin(struct ctl_buf *b, uint32_t type, int *rc)
{
	size_t at = b->len;

	*rc = put32(b, type) || put32(b, 0);
	return at;
}

/* End the block begun at @at: end of options, trailing length, patch. */
static int finish(struct ctl_buf *b, size_t at, int rc)
{
	uint32_t len;

	if (rc || opt(b, OPT_END, NULL, 0))
		return -ENOMEM;
	len = (uint32_t)(b->len + 4 - at);
	if (put32(b, len))
		return -ENOMEM;
	memcpy(b->data + at + 4, &len, 4);
	return 0;
}

int ctl_pcapng_idb(struct ctl_buf *b, const char *name, uint32_t snaplen)
{
	const uint8_t tsresol = 9; /* nanoseconds */
	int rc;
	size_t at = begin(b, CTL_PCAPNG_IDB, &rc);

	rc = rc || put16(b, 1 /* LINKTYPE_ETHERNET */) || put16(b, 0) || put32(b, snaplen) ||
	     opt(b, IDB_NAME, name, strlen(name)) || opt(b, IDB_TSRESOL, &tsresol, 1);
	return finish(b, at, rc);
}

int ctl_pcapng_epb(struct ctl_buf *b, uint32_t ifid, uint64_t ts_ns, const uint8_t *data,
		   uint32_t caplen, uint32_t origlen, const char *comment)
{
	static const uint8_t zero[4];
	int rc;
	size_t at = begin(b, CTL_PCAPNG_EPB, &rc);

	rc = rc || put32(b, ifid) || put32(b, (uint32_t)(ts_ns >> 32)) ||
	     put32(b, (uint32_t)ts_ns) || put32(b, caplen) || put32(b, origlen) ||
	     ctl_buf_put(b, data, caplen) || ctl_buf_put(b, zero, (4 - caplen % 4) % 4) ||
	     (comment && opt(b, CTL_PCAPNG_OPT_COMMENT, comment, strlen(comment)));
	return finish(b, at, rc);
}

int ctl_pcapng_isb(struct ctl_buf *b, uint32_t ifid, uint64_t ts_ns, uint64_t recv, uint64_t drop,
		   const char *comment)
{
	int rc;
	size_t at = begin(b, CTL_PCAPNG_ISB, &rc);

	rc = rc || put32(b, ifid) || put32(b, (uint32_t)(ts_ns >> 32)) ||
	     put32(b, (uint32_t)ts_ns) ||
	     (comment && opt(b, CTL_PCAPNG_OPT_COMMENT, comment, strlen(comment))) ||
	     opt(b, ISB_IFRECV, &recv, 8) || opt(b, ISB_IFDROP, &drop, 8);
	return finish(b, at, rc);
}

int ctl_pcapng_block(const uint8_t *p, size_t n, struct ctl_pcapng_block *out)
{
	uint32_t type, len, tail;

	if (n < 8)
		return 0;
	memcpy(&type, p, 4);
	memcpy(&len, p + 4, 4);
	if (len < 12 || len % 4 || len > CTL_PCAPNG_MAX_BLOCK)
		return -1;
	if (n < len)
		return 0;
	memcpy(&tail, p + len - 4, 4);
	if (tail != len)
		return -1;
	out->type = type;
	out->len = len;
	out->p = p;
	return 1;
}

int ctl_pcapng_epb_info(const struct ctl_pcapng_block *b, struct ctl_pcapng_epb_info *out)
{
	uint32_t hi, lo;

	if (b->type != CTL_PCAPNG_EPB || b->len < 32)
		return -1;
	memcpy(&out->ifid, b->p + 8, 4);
	memcpy(&hi, b->p + 12, 4);
	memcpy(&lo, b->p + 16, 4);
	memcpy(&out->caplen, b->p + 20, 4);
	memcpy(&out->origlen, b->p + 24, 4);
	out->ts = (uint64_t)hi << 32 | lo;
	out->data = b->p + 28;
	if (out->caplen > b->len - 32)
		return -1;
	return 0;
}

void ctl_pcapng_comment(const struct ctl_pcapng_block *b, char *buf, size_t len)
{
	size_t off;
	const size_t end = b->len - 4;

	buf[0] = '\0';
	if (b->type == CTL_PCAPNG_EPB) {
		struct ctl_pcapng_epb_info e;

		if (ctl_pcapng_epb_info(b, &e))
			return;
		off = 28 + ((e.caplen + 3u) & ~3u);
	} else if (b->type == CTL_PCAPNG_ISB) {
		off = 20;
	} else {
		return;
	}
	while (off + 4 <= end) {
		uint16_t code, olen;

		memcpy(&code, b->p + off, 2);
		memcpy(&olen, b->p + off + 2, 2);
		if (code == OPT_END || off + 4 + olen > end)
			return;
		if (code == CTL_PCAPNG_OPT_COMMENT) {
			size_t n = olen < len - 1 ? olen : len - 1;

			memcpy(buf, b->p + off + 4, n);
			buf[n] = '\0';
			return;
		}
		off += 4 + ((olen + 3u) & ~3u);
	}
}
