#include "fwd_nameset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* 8 bytes: a slot holds only what a probe that misses needs. The rule and
 * kinds live with the name in the arena ([u32 (rule + 1) << 2 | kinds]
 * [u8 length][bytes]), read on a check match, which a hit reads anyway to
 * confirm the name; a 32-bit check makes a stray arena read one probe in
 * 4 billion. Half the bytes of a 16-byte slot: at 100k names the table
 * fits where it did not. */
struct ns_slot {
	uint32_t check; /* the key's high 32 bits (its low bits chose the slot) */
	uint32_t off1; /* arena offset + 1; 0: empty */
};

#define NS_HDR 5 /* arena bytes before a name: rule and kinds, length */

struct fwd_nameset {
	struct ns_slot *slot;
	uint64_t mask;
	/* bit k: some entry of that kind has k labels (1..127). A query's
	 * suffix is probed only when an entry could have its label count:
	 * most lists hold names of 2-4 labels, so a lookup probes about one
	 * slot per kind instead of one per label. */
	uint64_t labels[2][2]; /* [kind - 1][k / 64] */
	uint32_t count, limit;
	char *arena;
	size_t used, cap;
};

int fwd_name_normalize(const char *s, size_t len, char *out, enum fwd_ns_kind *kind,
		       const char **why)
{
	size_t n = 0, label = 0;

	*kind = FWD_NS_EXACT;
	if (len && s[len - 1] == '.')
		len--;
	if (len >= 2 && s[0] == '*' && s[1] == '.') {
		*kind = FWD_NS_SUFFIX;
		s += 2;
		len -= 2;
	}
	if (len == 0)
		return *why = "empty name", -EINVAL;
	if (len > FWD_NS_NAME_MAX)
		return *why = "name longer than 253 bytes", -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return *why = "empty label", -EINVAL;
			label = 0;
			out[n++] = '.';
			continue;
		}
		if (++label > FWD_NS_LABEL_MAX)
			return *why = "label longer than 63 bytes", -EINVAL;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		if (c >= 0x80)
			return *why = "non-ASCII name: write it in its ACE (xn--) form", -EINVAL;
		if (c == '*')
			return *why = "'*' only as the whole first label (*.example.com)", -EINVAL;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return *why = "a name holds letters, digits, '-', '_' and dots only",
			       -EINVAL;
		out[n++] = (char)c;
	}
	if (label == 0)
		return *why = "empty label", -EINVAL;
	out[n] = '\0';
	return (int)n;
}

/* ---- hashing: a chain over labels, rightmost first --------------------------------- */

#define NS_SEED 0x243f6a8885a308d3ull
#define NS_MUL 0x9fb21c651e98df25ull

static inline uint64_t rd64(const char *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
	return w;
}

static inline uint64_t mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * NS_MUL;
	return h ^ (h >> 32);
}

/* Extend the chain @h (the suffix to the right) by the label [p, p + n)
 * of the name starting at @name. Each 8 bytes are one word; the last 1..7
 * bytes one word zero-extended (little-endian), read as the 8 bytes that
 * end the label, shifted, when those lie inside the name (no branch on
 * the length: label lengths vary from name to name, their branches would
 * mispredict), else byte by byte. The length is mixed in off the chain's
 * critical path. */
static inline uint64_t ns_label(uint64_t h, const char *name, const char *p, size_t n)
{
	h ^= (uint64_t)n * 0x9e3779b97f4a7c15ull;
	for (; n >= 8; p += 8, n -= 8)
		h = mix(h, rd64(p));
	if (n) {
		uint64_t w = 0;

		if (p + n - name >= 8) {
			w = rd64(p + n - 8) >> (64 - 8 * n);
		} else {
			for (size_t k = 0; k < n; k++)
				w |= (uint64_t)(unsigned char)p[k] << (8 * k);
		}
		h = mix(h, w);
	}
	return h;
}

/* Avalanche (Murmur3's fmix64): the key spreads over every slot bit. */
static inline uint64_t ns_final(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

/* Chain values of every suffix of @name starting at a label boundary:
 * key[j] for the suffix at start[j]; ns_final() of it is its key. @return the label count, 0 for a name with an
 * empty label or more labels than a 253-byte name can hold. */
static unsigned suffix_keys(const char *name, size_t len, uint16_t *start, uint64_t *key)
{
	unsigned nl = 1;
	uint64_t h = NS_SEED;
	size_t end = len;

	start[0] = 0;
#ifdef __SSE2__
	/* The dots 16 bytes at a time (names are ~20-30 bytes: two compares
	 * instead of a branch per byte). The last block is the name's last 16
	 * bytes, its mask shifted past what the previous block saw: nothing
	 * outside the name is read, and no copy (a copy then a wide load
	 * stalls on store forwarding). */
	if (len >= 16) {
		const __m128i dot = _mm_set1_epi8('.');

		for (size_t b = 0; b < len; b += 16) {
			size_t at = len - b >= 16 ? b : len - 16;
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(name + at));
			unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, dot));

			m >>= b - at; /* the overlap with the previous block */
			while (m) {
				if (nl == (FWD_NS_NAME_MAX + 1) / 2)
					return 0;
				start[nl++] = (uint16_t)(b + (unsigned)__builtin_ctz(m) + 1);
				m &= m - 1;
			}
		}
	} else
#endif
	{
		for (size_t i = 0; i < len; i++)
			if (name[i] == '.') {
				if (nl == (FWD_NS_NAME_MAX + 1) / 2)
					return 0;
				start[nl++] = (uint16_t)(i + 1);
			}
	}
	for (unsigned j = nl; j-- > 0;) {
		if (end == start[j])
			return 0; /* empty label */
		h = ns_label(h, name, name + start[j], end - start[j]);
		key[j] = h; /* ns_final() only for the suffixes probed */
		end = start[j] ? (size_t)start[j] - 1 : 0;
	}
	return nl;
}

/* The key of the whole name, and its label count in *@nl; 0 for a name
 * with an empty label. */
static uint64_t name_key(const char *name, size_t len, unsigned *nl)
{
	uint16_t start[(FWD_NS_NAME_MAX + 1) / 2];
	uint64_t key[(FWD_NS_NAME_MAX + 1) / 2];

	return (*nl = suffix_keys(name, len, start, key)) ? ns_final(key[0]) : 0;
}

static inline uint32_t arena_rk(const struct fwd_nameset *s, uint32_t off)
{
	uint32_t rk;

	memcpy(&rk, s->arena + off, 4);
	return rk;
}

/* ---- building --------------------------------------------------------------------- */

/* Ask for transparent huge pages over the 2 MiB-aligned inside of a large
 * allocation, before anything touches it: at a million names every probe
 * lands on another 4 KiB page, and the page walks cost as much as the
 * misses (1M-name lookups alone 67-78 ns -> 61-65 ns here). Only advice:
 * without THP nothing changes. */
static void hint_huge(void *p, size_t len)
{
	const uintptr_t huge = 2u << 20;
	uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1),
		  e = ((uintptr_t)p + len) & ~(huge - 1);

	if (p && e > a)
		(void)madvise((void *)a, e - a, MADV_HUGEPAGE);
}

struct fwd_nameset *fwd_nameset_create(uint32_t entries, size_t arena_hint)
{
	struct fwd_nameset *s;
	uint64_t size = 16;

	if (entries > (1u << 30)) {
		errno = EINVAL;
		return NULL;
	}
	while (size < (uint64_t)entries + entries / 2)
		size <<= 1;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->slot = calloc(size, sizeof(*s->slot));
	hint_huge(s->slot, size * sizeof(*s->slot));
	s->cap = (arena_hint ? arena_hint : 64) + (size_t)entries * NS_HDR;
	s->arena = malloc(s->cap);
	hint_huge(s->arena, s->cap);
	if (s->slot == NULL || s->arena == NULL) {
		fwd_nameset_free(s);
		errno = ENOMEM;
		return NULL;
	}
	s->mask = size - 1;
	s->limit = entries;
	return s;
}

void fwd_nameset_free(struct fwd_nameset *s)
{
	if (s == NULL)
		return;
	free(s->slot);
	free(s->arena);
	free(s);
}

/* Insert @name whose key is @key (0: invalid) and label count @nl. */
static int add_keyed(struct fwd_nameset *s, const char *name, size_t len, enum fwd_ns_kind kind,
		     uint32_t rule, uint64_t key, unsigned nl)
{
	uint64_t i;

	if (len == 0 || len > FWD_NS_NAME_MAX || rule > FWD_NS_MAX_RULE || key == 0)
		return -EINVAL;
	/* Noted before anything can fail: a count no entry has costs a probe. */
	for (unsigned kd = 0; kd < 2; kd++)
		if (kind & (1u << kd))
			s->labels[kd][nl / 64] |= 1ull << (nl % 64);
	for (i = key & s->mask; s->slot[i].off1; i = (i + 1) & s->mask) {
		const struct ns_slot *o = &s->slot[i];
		uint32_t off = o->off1 - 1;

		if (o->check == (uint32_t)(key >> 32) && arena_rk(s, off) >> 2 == rule + 1 &&
		    (unsigned char)s->arena[off + 4] == len &&
		    memcmp(s->arena + off + NS_HDR, name, len) == 0) {
			uint32_t rk = arena_rk(s, off) | kind; /* the same name again: one entry */

			memcpy(s->arena + off, &rk, 4);
			return 0;
		}
	}
	if (s->count == s->limit)
		return -ENOSPC;
	if (s->used + len + NS_HDR > s->cap) {
		size_t cap =
			s->cap * 2 > s->used + len + NS_HDR ? s->cap * 2 : s->used + len + NS_HDR;
		char *a;

		if (cap >= UINT32_MAX || (a = realloc(s->arena, cap)) == NULL)
			return -ENOMEM;
		s->arena = a;
		s->cap = cap;
	}
	{
		uint32_t rk = (rule + 1) << 2 | kind;

		memcpy(s->arena + s->used, &rk, 4);
	}
	s->arena[s->used + 4] = (char)len;
	memcpy(s->arena + s->used + NS_HDR, name, len);
	s->slot[i] =
		(struct ns_slot){.check = (uint32_t)(key >> 32), .off1 = (uint32_t)s->used + 1};
	s->used += len + NS_HDR;
	s->count++;
	return 0;
}

int fwd_nameset_add(struct fwd_nameset *s, const char *name, size_t len, enum fwd_ns_kind kind,
		    uint32_t rule)
{
	unsigned nl = 0;
	uint64_t key = len && len <= FWD_NS_NAME_MAX ? name_key(name, len, &nl) : 0;

	return add_keyed(s, name, len, kind, rule, key, nl);
}

#define NS_BATCH 16

int fwd_nameset_add_many(struct fwd_nameset *s, const struct fwd_ns_add *v, uint32_t n,
			 uint32_t *failed)
{
	uint64_t key[NS_BATCH];
	unsigned nl[NS_BATCH];

	for (uint32_t b = 0; b < n; b += NS_BATCH) {
		uint32_t m = n - b < NS_BATCH ? n - b : NS_BATCH;

		for (uint32_t k = 0; k < m; k++) {
			const struct fwd_ns_add *a = &v[b + k];

			nl[k] = 0;
			key[k] = a->len && a->len <= FWD_NS_NAME_MAX
					 ? name_key(a->name, a->len, &nl[k])
					 : 0;
			__builtin_prefetch(&s->slot[key[k] & s->mask], 1);
		}
		for (uint32_t k = 0; k < m; k++) {
			const struct fwd_ns_add *a = &v[b + k];
			int rc = add_keyed(s, a->name, a->len, a->kind, a->rule, key[k], nl[k]);

			if (rc) {
				*failed = b + k;
				return rc;
			}
		}
	}
	return 0;
}

/* ---- matching --------------------------------------------------------------------- */

/* memcmp() == 0 inline: names are short, a call costs more than the compare. */
static inline int same(const char *a, const char *b, size_t n)
{
	uint64_t d = 0;

	if (n < 8) {
		for (size_t k = 0; k < n; k++)
			d |= (uint64_t)(a[k] ^ b[k]);
		return d == 0;
	}
	for (size_t k = 0; k + 8 <= n; k += 8)
		d |= rd64(a + k) ^ rd64(b + k);
	return (d | (rd64(a + n - 8) ^ rd64(b + n - 8))) == 0;
}

unsigned fwd_nameset_match(const struct fwd_nameset *s, const char *name, size_t len,
			   fwd_nameset_hit_fn fn, void *arg)
{
	uint16_t start[(FWD_NS_NAME_MAX + 1) / 2];
	uint64_t key[(FWD_NS_NAME_MAX + 1) / 2];
	unsigned nl, hits = 0;

	if (len && name[len - 1] == '.')
		len--;
	if (len == 0 || len > FWD_NS_NAME_MAX || (nl = suffix_keys(name, len, start, key)) == 0)
		return 0;
	/* Which suffixes can match at all (by label count), then every such
	 * probe's first slot requested before the first is read: at a million
	 * names each is a cache miss, and they overlap. */
	uint64_t probe[2] = {0, 0}; /* bit j: probe the suffix at start[j] */

	for (unsigned j = 0; j < nl; j++) {
		unsigned k = nl - j, kd = j == 0 ? 0 : 1;

		if (s->labels[kd][k / 64] >> (k % 64) & 1) {
			probe[j / 64] |= 1ull << (j % 64);
			key[j] = ns_final(key[j]);
			__builtin_prefetch(&s->slot[key[j] & s->mask]);
		}
	}
	for (unsigned j = 0; j < nl; j++) {
		const unsigned want = j == 0 ? FWD_NS_EXACT : FWD_NS_SUFFIX;
		const size_t n = len - start[j];

		if (!(probe[j / 64] >> (j % 64) & 1))
			continue;

		for (uint64_t i = key[j] & s->mask; s->slot[i].off1; i = (i + 1) & s->mask) {
			const struct ns_slot *o = &s->slot[i];
			uint32_t off = o->off1 - 1, rk;

			if (o->check != (uint32_t)(key[j] >> 32))
				continue;
			rk = arena_rk(s, off);
			if (!(rk & want) || (unsigned char)s->arena[off + 4] != n ||
			    !same(s->arena + off + NS_HDR, name + start[j], n))
				continue;
			hits++;
			fn(arg, (rk >> 2) - 1, off, (enum fwd_ns_kind)want);
		}
	}
	return hits;
}

const char *fwd_nameset_entry(const struct fwd_nameset *s, uint32_t entry, size_t *len)
{
	*len = (unsigned char)s->arena[entry + 4];
	return s->arena + entry + NS_HDR;
}

uint32_t fwd_nameset_count(const struct fwd_nameset *s)
{
	return s->count;
}

size_t fwd_nameset_bytes(const struct fwd_nameset *s)
{
	return sizeof(*s) + (s->mask + 1) * sizeof(*s->slot) + s->cap;
}
