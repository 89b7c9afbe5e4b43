/*
 * fwd_nameset.h - sets of DNS names for content rules (issue 21): "this
 * exact name" and "this name's subdomains" at blocklist scale, matched in a
 * few hash probes instead of a Hyperscan scan.
 *
 * A set holds entries (name, kind, rule): kind EXACT matches the name
 * itself, SUFFIX (written "*.example.com") matches every name strictly under
 * it ("a.example.com", "b.a.example.com", not "example.com" itself; list
 * both to get both). One entry per (name, rule): the same name given both
 * ways to one rule is one entry with both kinds.
 *
 * Layout: one flat open-addressing table (linear probing, load <= 2/3) of
 * 8-byte slots {the key's high 32 bits, arena offset}, and one arena of the
 * entries ([rule and kinds][length byte][bytes], normalised). A slot is
 * chosen by the key's low bits. The key of a name hashes its bytes as
 * 8-byte words aligned to its end, so one pass over a query, right to left,
 * yields the key of every suffix that starts at a label boundary. A lookup
 * keys the suffixes some entry's label count allows, prefetches their slots
 * (the misses overlap), then probes from the longest (the name itself:
 * EXACT) down; a check match is confirmed against the arena, so there are
 * no false positives.
 *
 * Names are normalised before they get here: lowercase ASCII, no trailing
 * dot (fwd_name_normalize for a document's names; a query is lowercased by
 * the extractor and fwd_nameset_match drops one trailing dot itself). A
 * query with an empty label ("a..b", ".a") matches nothing; a query may be
 * up to FWD_NS_QUERY_MAX bytes, more than an entry.
 *
 * Thread safety: built on one thread, then read-only; any number of readers.
 */
#ifndef FWD_NAMESET_H
#define FWD_NAMESET_H

#include <stddef.h>
#include <stdint.h>

#define FWD_NS_NAME_MAX 253 /* bytes of a name without its trailing dot (RFC 1035 2.3.4) */
/* Bytes of a name a query may have: the longest the extractors yield
 * (fwd_extract.h). Longer than a set's own names, yet servers serve such
 * names (OpenSSL answered a 254-byte SNI), so "*.evil.example" must match
 * them: a query over 253 bytes was once passed over, and the name evaded
 * its rule (a hostile probe). */
#define FWD_NS_QUERY_MAX 255
#define FWD_NS_LABEL_MAX 63
#define FWD_NS_MAX_RULE ((1u << 30) - 1)

enum fwd_ns_kind {
	FWD_NS_EXACT = 1,
	FWD_NS_SUFFIX = 2,
};

struct fwd_nameset;

/**
 * Validate and normalise one name as an operator wrote it: one trailing dot
 * removed, "*." in front makes it a SUFFIX entry, letters folded to
 * lowercase; labels 1..63 bytes, the name 1..253; letters, digits, '-' and
 * '_' only (underscore: SRV/DMARC owner names and hosts that carry it in
 * practice); non-ASCII refused (internationalised names in their ACE
 * "xn--" form).
 * @param out  receives the name without "*." (at least FWD_NS_NAME_MAX + 1 bytes)
 * @return the length written (NUL-terminated) with *@kind set, or -EINVAL
 *         with *@why saying what is wrong (a static string)
 */
int fwd_name_normalize(const char *s, size_t len, char *out, enum fwd_ns_kind *kind,
		       const char **why);

/**
 * An empty set with room for @entries entries and @arena_hint bytes of
 * names (the arena grows past it; its per-entry header is added here). @return the set, or NULL (ENOMEM, or
 * EINVAL when @entries is over 2^30)
 */
struct fwd_nameset *fwd_nameset_create(uint32_t entries, size_t arena_hint);

/**
 * Add normalised @name (@len bytes) of @kind for @rule.
 * @return 0, or -ENOSPC past the entries given to create, -EINVAL for a
 *         length outside 1..253 or a rule over FWD_NS_MAX_RULE, -ENOMEM
 */
int fwd_nameset_add(struct fwd_nameset *s, const char *name, size_t len, enum fwd_ns_kind kind,
		    uint32_t rule);

/* One name for fwd_nameset_add_many. */
struct fwd_ns_add {
	const char *name; /* normalised, @len bytes */
	uint32_t len;
	uint32_t rule;
	enum fwd_ns_kind kind;
};

/**
 * fwd_nameset_add() of @n names, a batch at a time: the keys of a batch
 * computed and their slots prefetched before the first is written (at a
 * million names every insert is a cache miss; a batch overlaps them).
 * @return 0, or the first error with *@failed its index (the names before
 *         it are in the set)
 */
int fwd_nameset_add_many(struct fwd_nameset *s, const struct fwd_ns_add *v, uint32_t n,
			 uint32_t *failed);

void fwd_nameset_free(struct fwd_nameset *s);

/**
 * Called for each (entry, rule) that @name matches, longest match first.
 * @entry identifies the entry's name (fwd_nameset_entry), @kind how it
 * matched (EXACT: the name itself, SUFFIX: a name under it).
 */
typedef void (*fwd_nameset_hit_fn)(void *arg, uint32_t rule, uint32_t entry, enum fwd_ns_kind kind);

/**
 * Match @name (lowercase; one trailing dot is ignored) against the set.
 * @return the number of hits reported to @fn
 */
unsigned fwd_nameset_match(const struct fwd_nameset *s, const char *name, size_t len,
			   fwd_nameset_hit_fn fn, void *arg);

/*
 * The same lookup in three steps, for a burst of names (dp_content runs 32
 * packets' names through each step before the next): prepare computes the
 * keys and prefetches their slots, probe reads the slots and prefetches the
 * entries whose check matches, finish confirms them against the name and
 * reports the hits. Between the steps the other names' steps run, so their
 * cache misses overlap instead of adding up. fwd_nameset_match() is the three
 * in a row; the hits and their order are the same either way.
 *
 * A query keeps at most FWD_NS_QPROBES suffixes and FWD_NS_QCANDS entries;
 * a name needing more (many labels where the set has entries of many label
 * counts, or one name in more than FWD_NS_QCANDS rules) is marked and
 * finish looks it up whole, unstaged: the same hits, only slower.
 */
#define FWD_NS_QPROBES 8
#define FWD_NS_QCANDS 8

struct fwd_ns_query {
	const char *name; /* the caller's bytes, read again by finish */
	uint16_t len;
	uint8_t state; /* internal: prepared, probed, whole */
	uint8_t first, ncand; /* probes are [first, FWD_NS_QPROBES) */
	uint8_t cand_probe[FWD_NS_QCANDS]; /* the probe (suffix) a candidate came from */
	uint16_t start[FWD_NS_QPROBES]; /* where a probed suffix starts, longest first */
	uint64_t key[FWD_NS_QPROBES];
	uint32_t cand[FWD_NS_QCANDS]; /* arena offsets whose check matched */
};

/** Step 1: @name (kept by pointer until finish) keyed, its slots prefetched. */
void fwd_nameset_prepare(const struct fwd_nameset *s, struct fwd_ns_query *q, const char *name,
			 size_t len);

/** Step 2: the slots read, the candidate entries prefetched. */
void fwd_nameset_probe(const struct fwd_nameset *s, struct fwd_ns_query *q);

/** Step 3: the candidates confirmed; @return the hits reported to @fn. */
unsigned fwd_nameset_finish(const struct fwd_nameset *s, struct fwd_ns_query *q,
			    fwd_nameset_hit_fn fn, void *arg);

/** The name of entry @entry (not NUL-terminated: *@len bytes). */
const char *fwd_nameset_entry(const struct fwd_nameset *s, uint32_t entry, size_t *len);

/** Entries held, and bytes the set occupies (table and arena). */
uint32_t fwd_nameset_count(const struct fwd_nameset *s);
size_t fwd_nameset_bytes(const struct fwd_nameset *s);

#endif /* FWD_NAMESET_H */
