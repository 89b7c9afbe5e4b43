#include "fwd_nameset.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_hugemap.h"
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

/* ---- hashing: end-aligned words, every suffix from one pass ------------------------- */

/*
 * The key of a name is a hash of its bytes read as 8-byte words aligned to
 * the name's END (word i covers [len - 8i, len - 8i + 8), bytes before the
 * name's start as zeros): the words of a suffix are then the same words as
 * in the whole name, and its key is the chain of the full words to its
 * right and, in one more mix, the word it starts in with the bytes before
 * it zeroed (as the first word of a name has them) and its length. One pass
 * over a query, right to left, yields the key of every suffix that starts
 * at a label boundary: about one multiply per 8 bytes plus one per suffix
 * keyed, and the dots are found in the same words (SWAR), so a
 * name is read once. An entry's key is the key of its whole name, the same
 * function on the same bytes.
 */
#define NS_SEED 0x243f6a8885a308d3ull
#define NS_MUL 0x9fb21c651e98df25ull
#define NS_ONES 0x0101010101010101ull
#define NS_LOW7 0x7f7f7f7f7f7f7f7full

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

/* The key of a suffix of @m bytes: @h the chain of its full words, @w the
 * word it starts in (its top m % 8 bytes are the suffix's). Those bytes
 * are kept in place, the bytes before them zeroed, as the first word of a
 * name of that length has them, and the length goes in the low byte (a
 * partial word has at most 7 bytes, so its low byte is free; m <= 253):
 * one more mix finishes the key. mix() is a full-width multiply folded
 * back onto the low half, so the slot bits (low) and the check (high)
 * depend on every byte. */
static const uint64_t ns_top_bytes[8] = {0,	      ~0ull << 56, ~0ull << 48, ~0ull << 40,
					 ~0ull << 32, ~0ull << 24, ~0ull << 16, ~0ull << 8};

static inline uint64_t suffix_key(uint64_t h, uint64_t w, size_t m)
{
	/* the word's top m % 8 bytes: a table, where the shift needed a
	 * branch or a select for m % 8 == 0 */
	return mix(h, (w & ns_top_bytes[m & 7]) | (uint64_t)m);
}

/* The first (leftmost) word of a name of @len bytes, len % 8 of them, as
 * end-aligned: zeros before the start; only the name's own bytes read. */
static inline uint64_t first_word(const char *name, size_t len)
{
	const unsigned r = (unsigned)(len & 7);
	uint64_t w = 0;

	if (len >= 8)
		return rd64(name) << (8 * (8 - r));
	for (unsigned k = 0; k < r; k++)
		w |= (uint64_t)(unsigned char)name[k] << (8 * (8 - r + k));
	return w;
}

/* The label counts some entry of each kind has (bit k: k labels). */
typedef uint64_t ns_labels_t[2][2];

static const ns_labels_t ns_whole = {{~0ull, ~0ull}, {0, 0}}; /* the name itself only */

#define NS_MAX_LABELS ((FWD_NS_QUERY_MAX + 1) / 2)

/* Whether some entry has @labels labels: a query may have more (128) than
 * the bitmap holds, which no entry of at most 253 bytes has. */
static inline int ns_wanted(const uint64_t bits[2], unsigned labels)
{
	return labels < 128 && (bits[labels / 64] >> (labels % 64) & 1);
}

/* A right-to-left walk over a name's words (name_keys). */
struct ns_walk {
	const ns_labels_t *want;
	uint16_t *start;
	uint64_t *key;
	size_t len;
	ptrdiff_t prev; /* the dot right of the label being read (len: none) */
	unsigned labels; /* of the suffix right of the next dot */
	int at; /* start[] and key[] are filled from here down */
};

/* Word @w's dots, right to left (@pos0: where w's byte 0 lies in the name,
 * negative for the first word): for each, the suffix after it, keyed when
 * its label count is wanted (@h: the chain of the words right of w).
 * @return 0, -1 for an empty label, -2 when the keys outgrow start[]. */
static inline __attribute__((always_inline)) int word_dots(struct ns_walk *k, uint64_t w,
							   ptrdiff_t pos0, uint64_t h)
{
	const uint64_t t = w ^ (NS_ONES * '.');
	/* a byte's top bit set exactly where t's byte is 0: a dot */
	uint64_t dots = ~(((t & NS_LOW7) + NS_LOW7) | t | NS_LOW7);

	while (dots) {
		const unsigned bit = 63 - (unsigned)__builtin_clzll(dots);
		const ptrdiff_t d = pos0 + (ptrdiff_t)(bit >> 3);

		dots ^= 1ull << bit;
		if (d + 1 == k->prev)
			return -1; /* an empty label */
		k->prev = d;
		if (ns_wanted((*k->want)[1], k->labels)) {
			if (k->at == 0)
				return -2;
			k->start[--k->at] = (uint16_t)(d + 1);
			k->key[k->at] = suffix_key(h, w, k->len - (size_t)d - 1);
		}
		k->labels++;
	}
	return 0;
}

/* Keys of @name's suffixes that start at a label boundary, the name itself
 * included, whose label count @want allows: start[j] and key[j] for j in
 * [return, @cap), longest first (filled from the end). *@nl gets the label
 * count. @return the first index; -1 for a name with an empty label
 * ("a..b", ".a", "a."); -2 when more than @cap are wanted. */
static inline __attribute__((always_inline)) int name_keys(const ns_labels_t *want,
							   const char *name, size_t len,
							   uint16_t *start, uint64_t *key, int cap,
							   unsigned *nl)
{
	struct ns_walk k = {.want = want,
			    .start = start,
			    .key = key,
			    .len = len,
			    .prev = (ptrdiff_t)len,
			    .labels = 1,
			    .at = cap};
	const size_t full = len / 8;
	uint64_t h = NS_SEED, w = 0;
	int rc;

	for (size_t i = 1; i <= full; i++) {
		w = rd64(name + len - 8 * i);
		if ((rc = word_dots(&k, w, (ptrdiff_t)(len - 8 * i), h)))
			return rc;
		h = mix(h, w);
	}
	if (len & 7) {
		w = first_word(name, len);
		if ((rc = word_dots(&k, w, (ptrdiff_t)(len & 7) - 8, h)))
			return rc;
	}
	if (k.prev == 0)
		return -1; /* a leading dot: an empty first label */
	if (ns_wanted((*want)[0], k.labels)) { /* the name itself */
		if (k.at == 0)
			return -2;
		start[--k.at] = 0;
		key[k.at] = suffix_key(h, w, len);
	}
	*nl = k.labels;
	return k.at;
}

/* The key of the whole name, and its label count in *@nl; 0 for a name
 * with an empty label. */
static uint64_t name_key(const char *name, size_t len, unsigned *nl)
{
	uint16_t start;
	uint64_t key;

	return name_keys(&ns_whole, name, len, &start, &key, 1, nl) < 0 ? 0 : key;
}

static inline uint32_t arena_rk(const struct fwd_nameset *s, uint32_t off)
{
	uint32_t rk;

	memcpy(&rk, s->arena + off, 4);
	return rk;
}

/* ---- building --------------------------------------------------------------------- */

/*
 * The table and the arena come from mmap, starting on a 2 MiB boundary and
 * advised for transparent huge pages before anything touches them: every
 * probe lands on another page, and in a VM a 4 KiB page walk costs as much
 * as the miss itself. A 2 MiB table (100k names) is then one huge page
 * instead of 512 small ones, where a malloc'd one was never aligned. The
 * length is not rounded up: a tail under 2 MiB stays in small pages,
 * nothing is wasted. Only advice: without THP nothing changes. Zeroed, as
 * mmap gives it (fwd_hugemap.h).
 */
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
	s->mask = size - 1;
	s->slot = fwd_hugemap(size * sizeof(*s->slot));
	s->cap = (arena_hint ? arena_hint : 64) + (size_t)entries * NS_HDR;
	/* arena offsets are 32-bit, as the growth path checks too */
	s->arena = s->cap < UINT32_MAX ? fwd_hugemap(s->cap) : NULL;
	if (s->slot == NULL || s->arena == NULL) {
		fwd_nameset_free(s);
		errno = ENOMEM;
		return NULL;
	}
	s->limit = entries;
	return s;
}

void fwd_nameset_free(struct fwd_nameset *s)
{
	if (s == NULL)
		return;
	fwd_hugemap_free(s->slot, (s->mask + 1) * sizeof(*s->slot));
	fwd_hugemap_free(s->arena, s->cap);
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

		if (cap >= UINT32_MAX || (a = fwd_hugemap(cap)) == NULL)
			return -ENOMEM;
		memcpy(a, s->arena, s->used);
		fwd_hugemap_free(s->arena, s->cap);
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

/* Entry @off against the suffix of @name (@len bytes) at @start: the kind
 * the suffix asks for (the name itself: EXACT), the length, the bytes.
 * Reported to @fn when it holds; @return 1 then, else 0. */
static inline unsigned confirm(const struct fwd_nameset *s, uint32_t off, const char *name,
			       size_t len, unsigned start, fwd_nameset_hit_fn fn, void *arg)
{
	const unsigned want = start == 0 ? FWD_NS_EXACT : FWD_NS_SUFFIX;
	const size_t n = len - start;
	const uint32_t rk = arena_rk(s, off);

	if (!(rk & want) || (unsigned char)s->arena[off + 4] != n ||
	    !same(s->arena + off + NS_HDR, name + start, n))
		return 0;
	fn(arg, (rk >> 2) - 1, off, (enum fwd_ns_kind)want);
	return 1;
}

/* The lookup in one go, for any name: the staged query's fallback when a
 * name needs more probes or candidates than a query holds. */
static unsigned match_whole(const struct fwd_nameset *s, const char *name, size_t len,
			    fwd_nameset_hit_fn fn, void *arg)
{
	uint16_t start[NS_MAX_LABELS + 1];
	uint64_t key[NS_MAX_LABELS + 1];
	unsigned nl, hits = 0;
	int first;

	if (len == 0 || len > FWD_NS_QUERY_MAX ||
	    (first = name_keys(&s->labels, name, len, start, key, NS_MAX_LABELS + 1, &nl)) < 0)
		return 0;
	/* Every probe's first slot requested before the first is read: at a
	 * million names each is a cache miss, and they overlap. */
	for (int j = first; j <= NS_MAX_LABELS; j++)
		__builtin_prefetch(&s->slot[key[j] & s->mask]);
	for (int j = first; j <= NS_MAX_LABELS; j++)
		for (uint64_t i = key[j] & s->mask; s->slot[i].off1; i = (i + 1) & s->mask)
			if (s->slot[i].check == (uint32_t)(key[j] >> 32))
				hits += confirm(s, s->slot[i].off1 - 1, name, len, start[j], fn,
						arg);
	return hits;
}

enum { NSQ_NONE, NSQ_PREPARED, NSQ_PROBED, NSQ_WHOLE };

void fwd_nameset_prepare(const struct fwd_nameset *s, struct fwd_ns_query *q, const char *name,
			 size_t len)
{
	unsigned nl;
	int first;

	q->name = name;
	q->ncand = 0;
	q->state = NSQ_NONE;
	if (len && name[len - 1] == '.')
		len--;
	q->len = (uint16_t)len;
	if (len == 0 || len > FWD_NS_QUERY_MAX)
		return;
	/* Only the suffixes some entry's label count allows: usually one per
	 * kind, so a query rarely comes near FWD_NS_QPROBES. */
	first = name_keys(&s->labels, name, len, q->start, q->key, FWD_NS_QPROBES, &nl);
	if (first == -2) {
		q->state = NSQ_WHOLE;
		return;
	}
	if (first < 0 || first == FWD_NS_QPROBES)
		return;
	q->first = (uint8_t)first;
	for (int j = first; j < FWD_NS_QPROBES; j++)
		__builtin_prefetch(&s->slot[q->key[j] & s->mask]);
	q->state = NSQ_PREPARED;
}

void fwd_nameset_probe(const struct fwd_nameset *s, struct fwd_ns_query *q)
{
	if (q->state != NSQ_PREPARED)
		return;
	for (unsigned p = q->first; p < FWD_NS_QPROBES; p++) {
		const uint64_t key = q->key[p];

		for (uint64_t i = key & s->mask; s->slot[i].off1; i = (i + 1) & s->mask) {
			if (s->slot[i].check != (uint32_t)(key >> 32))
				continue;
			if (q->ncand == FWD_NS_QCANDS) {
				q->state = NSQ_WHOLE;
				return;
			}
			q->cand[q->ncand] = s->slot[i].off1 - 1;
			q->cand_probe[q->ncand++] = (uint8_t)p;
			__builtin_prefetch(s->arena + q->cand[q->ncand - 1]);
		}
	}
	q->state = NSQ_PROBED;
}

unsigned fwd_nameset_finish(const struct fwd_nameset *s, struct fwd_ns_query *q,
			    fwd_nameset_hit_fn fn, void *arg)
{
	unsigned hits = 0;

	if (q->state == NSQ_PREPARED)
		fwd_nameset_probe(s, q);
	if (q->state == NSQ_WHOLE)
		return match_whole(s, q->name, q->len, fn, arg);
	if (q->state != NSQ_PROBED)
		return 0;
	for (unsigned c = 0; c < q->ncand; c++)
		hits += confirm(s, q->cand[c], q->name, q->len, q->start[q->cand_probe[c]], fn,
				arg);
	return hits;
}

unsigned fwd_nameset_match(const struct fwd_nameset *s, const char *name, size_t len,
			   fwd_nameset_hit_fn fn, void *arg)
{
	struct fwd_ns_query q;

	fwd_nameset_prepare(s, &q, name, len);
	return fwd_nameset_finish(s, &q, fn, arg);
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
