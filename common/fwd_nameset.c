#include "fwd_nameset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ns_slot {
	uint64_t key; /* ns_final() of the name's label chain */
	uint32_t off; /* the name in the arena: [len][bytes] */
	uint32_t rule_kinds; /* (rule + 1) << 2 | enum fwd_ns_kind bits; 0: empty */
};

struct fwd_nameset {
	struct ns_slot *slot;
	uint64_t mask;
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

static inline uint32_t rd32(const char *p)
{
	uint32_t w;

	memcpy(&w, p, 4);
	return w;
}

static inline uint16_t rd16(const char *p)
{
	uint16_t w;

	memcpy(&w, p, 2);
	return w;
}

/* The last 1..7 bytes of a label as one word, reading only inside it:
 * two loads that may overlap cover every byte (the label's length is
 * mixed in separately, so overlapping reads stay unambiguous). */
static inline uint64_t tail(const char *p, size_t n)
{
	if (n >= 4)
		return (uint64_t)rd32(p) | (uint64_t)rd32(p + n - 4) << 32;
	if (n >= 2)
		return (uint64_t)rd16(p) | (uint64_t)rd16(p + n - 2) << 16;
	return (unsigned char)p[0];
}

static inline uint64_t mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * NS_MUL;
	return h ^ (h >> 32);
}

/* Extend the chain @h (the suffix to the right) by the label [p, p + n). */
static inline uint64_t ns_label(uint64_t h, const char *p, size_t n)
{
	h = mix(h, n);
	for (; n >= 8; p += 8, n -= 8)
		h = mix(h, rd64(p));
	if (n)
		h = mix(h, tail(p, n));
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

/* Keys of every suffix of @name starting at a label boundary: key[j] for
 * the suffix at start[j]. @return the label count, 0 for a name with an
 * empty label or more labels than a 253-byte name can hold. */
static unsigned suffix_keys(const char *name, size_t len, uint16_t *start, uint64_t *key)
{
	unsigned nl = 1;
	uint64_t h = NS_SEED;
	size_t end = len;

	start[0] = 0;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '.') {
			if (nl == (FWD_NS_NAME_MAX + 1) / 2)
				return 0;
			start[nl++] = (uint16_t)(i + 1);
		}
	for (unsigned j = nl; j-- > 0;) {
		if (end == start[j])
			return 0; /* empty label */
		h = ns_label(h, name + start[j], end - start[j]);
		key[j] = ns_final(h);
		end = start[j] ? (size_t)start[j] - 1 : 0;
	}
	return nl;
}

static uint64_t name_key(const char *name, size_t len)
{
	uint16_t start[(FWD_NS_NAME_MAX + 1) / 2];
	uint64_t key[(FWD_NS_NAME_MAX + 1) / 2];

	return suffix_keys(name, len, start, key) ? key[0] : 0;
}

/* ---- building --------------------------------------------------------------------- */

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
	s->cap = arena_hint ? arena_hint : 64;
	s->arena = malloc(s->cap);
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

int fwd_nameset_add(struct fwd_nameset *s, const char *name, size_t len, enum fwd_ns_kind kind,
		    uint32_t rule)
{
	uint64_t key, i;

	if (len == 0 || len > FWD_NS_NAME_MAX || rule > FWD_NS_MAX_RULE ||
	    (key = name_key(name, len)) == 0)
		return -EINVAL;
	for (i = key & s->mask; s->slot[i].rule_kinds; i = (i + 1) & s->mask) {
		struct ns_slot *o = &s->slot[i];

		if (o->key == key && o->rule_kinds >> 2 == rule + 1 &&
		    (unsigned char)s->arena[o->off] == len &&
		    memcmp(s->arena + o->off + 1, name, len) == 0) {
			o->rule_kinds |= kind; /* the same name again: one entry */
			return 0;
		}
	}
	if (s->count == s->limit)
		return -ENOSPC;
	if (s->used + len + 1 > s->cap) {
		size_t cap = s->cap * 2 > s->used + len + 1 ? s->cap * 2 : s->used + len + 1;
		char *a;

		if (cap > UINT32_MAX || (a = realloc(s->arena, cap)) == NULL)
			return -ENOMEM;
		s->arena = a;
		s->cap = cap;
	}
	s->arena[s->used] = (char)len;
	memcpy(s->arena + s->used + 1, name, len);
	s->slot[i] = (struct ns_slot){
		.key = key, .off = (uint32_t)s->used, .rule_kinds = (rule + 1) << 2 | kind};
	s->used += len + 1;
	s->count++;
	return 0;
}

/* ---- matching --------------------------------------------------------------------- */

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
	/* Every probe's first slot requested before the first is read: at a
	 * million names each is a cache miss, and they overlap. */
	for (unsigned j = 0; j < nl; j++)
		__builtin_prefetch(&s->slot[key[j] & s->mask]);
	for (unsigned j = 0; j < nl; j++) {
		const unsigned want = j == 0 ? FWD_NS_EXACT : FWD_NS_SUFFIX;
		const size_t n = len - start[j];

		for (uint64_t i = key[j] & s->mask; s->slot[i].rule_kinds; i = (i + 1) & s->mask) {
			const struct ns_slot *o = &s->slot[i];

			if (o->key != key[j] || !(o->rule_kinds & want) ||
			    (unsigned char)s->arena[o->off] != n ||
			    memcmp(s->arena + o->off + 1, name + start[j], n) != 0)
				continue;
			hits++;
			fn(arg, (o->rule_kinds >> 2) - 1, o->off, (enum fwd_ns_kind)want);
		}
	}
	return hits;
}

const char *fwd_nameset_entry(const struct fwd_nameset *s, uint32_t entry, size_t *len)
{
	*len = (unsigned char)s->arena[entry];
	return s->arena + entry + 1;
}

uint32_t fwd_nameset_count(const struct fwd_nameset *s)
{
	return s->count;
}

size_t fwd_nameset_bytes(const struct fwd_nameset *s)
{
	return sizeof(*s) + (s->mask + 1) * sizeof(*s->slot) + s->cap;
}
