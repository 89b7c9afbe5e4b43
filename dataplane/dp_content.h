/*
 * dp_content.h - a generation's content rules in the fast path: the
 * Hyperscan databases (one per field), per-worker scratch, and the scope
 * map that decides which packets are scanned at all.
 *
 * Name-set rules (fwd_nameset.h) are built into one set per field here too,
 * from the names the table carries (the document holds them, so nothing
 * else is shipped); a worker looks the extracted name up in it, and a hit
 * is handled like a Hyperscan match of that rule. So is a name that is
 * there but unreadable (the extractor's TRUNCATED, MALFORMED, TOO_LONG) for
 * the field's unreadable: true rules, which fail closed: without them such a
 * name meets no rule at all.
 *
 * Everything Hyperscan-related except scanning happens while the generation
 * is built on the control thread: deserializing the databases regiond
 * shipped (or compiling them in a limited child when the table came from a
 * file), and allocating one scratch per worker plus one for explain. A
 * worker only calls hs_scan() with its own scratch.
 *
 * Scope: scope[region * nservices + service] holds a bit per field some
 * rule wants for that (region, service); 0 means the packet is not scanned
 * and pays one byte load. A match is kept only when the packet is in the
 * matching rule's own scope (one database holds the rules of every scope).
 *
 * Verdict when several rules match: drop > steer > mirror > count, and the
 * first rule in document order among equals. Every matching rule counts a
 * match.
 */
#ifndef DP_CONTENT_H
#define DP_CONTENT_H

#include <stdint.h>

#include <hs.h>

#include "dp_node.h"
#include "fwd_class.h"
#include "fwd_err.h"
#include "fwd_extract.h"
#include "fwd_hs.h"
#include "fwd_nameset.h"
#include "fwd_report.h"
#include "fwd_table.h"

#define DP_CONTENT_NONE UINT32_MAX
#define DP_CONTENT_MAX_HITS 16 /* matches listed per packet by explain (all are counted) */
/* Rules one packet's names are deduplicated over: a packet matching more
 * rules than this could count a rule twice (one name under two of its
 * suffixes, two pipelined requests' names); documented in
 * docs/content-rules.md. */
#define DP_CONTENT_SEEN 64
/* Heavy-hitter slots per name-set rule and worker (space-saving): the
 * names a rule matches most, in fixed memory, counted where the match is. */
#define DP_CONTENT_TOP_K 8

struct dp_content_top {
	uint64_t key; /* entry << 2 | enum fwd_ns_kind; 0: empty */
	uint64_t count; /* an overestimate by at most the count it inherited */
};

struct dp_content {
	hs_database_t *db[4]; /* per enum fwd_content_field, NULL when no pattern rule uses it */
	struct fwd_nameset *ns[4]; /* per field, NULL when no name-set rule uses it */
	hs_scratch_t *scratch[DP_MAX_WORKERS + 1]; /* [nworkers]: the control thread's */
	uint16_t nworkers, nservices;
	uint8_t *scope; /* nregions x nservices field bits */
	/* the generation's table: rules, links, groups; read through
	 * dp_content_table(), as dp_gen_derive() may swap it under readers */
	const struct fwd_table *t;
	uint64_t *rule_keys; /* each rule's name and what it matches (dp_content.c) */
	uint32_t key_mask; /* key_index: open addressing, rule key -> index + 1 */
	uint32_t *key_index;
	uint64_t db_bytes, scratch_bytes, names_bytes;
	uint32_t names; /* entries in all name sets */
	double names_build_s; /* wall time building the name sets */
	uint32_t *top_of; /* per rule: its sketch index among name-set rules, or DP_CONTENT_NONE */
	uint32_t ntop; /* name-set rules */
	/* per worker: ntop x DP_CONTENT_TOP_K slots, written by that worker only */
	struct dp_content_top *top[DP_MAX_WORKERS];
	int compiled_here; /* 1: the table came without databases, compiled locally */
	/* bit f: field f has a database, a name set or an unreadable rule (a
	 * scope bit of a field without any scans nothing) */
	uint8_t fields_used;
	/* per field: the rules with unreadable: true (fail closed), in
	 * document order; matched only where the field's name was there but
	 * could not be read, so a name that reads costs nothing more */
	uint32_t *unread_rules[4];
	uint32_t nunread[4];
};

/* The table a worker reads rules, links and groups through. dp_gen_derive()
 * hands a delta's copy of it to workers still on the old generation: its
 * release store pairs with this acquire load, so a worker that sees the new
 * pointer sees the copy whole (free on x86-64, where both are plain moves;
 * needed on weaker orderings, and no data race for the compiler either). */
static inline const struct fwd_table *dp_content_table(const struct dp_content *c)
{
	return __atomic_load_n(&c->t, __ATOMIC_ACQUIRE);
}

struct dp_content_verdict {
	uint32_t rule; /* deciding rule, or DP_CONTENT_NONE */
	uint32_t nhits; /* matching rules */
	/* the first DP_CONTENT_MAX_HITS of them in document order, in no
	 * order (for explain) */
	uint32_t hits[DP_CONTENT_MAX_HITS];
	/* for a hit of a name set: the entry (fwd_nameset_entry) and how it
	 * matched; hit_kind 0 for a pattern's hit. rule_*: the same for the
	 * deciding rule, which the list may have left out. */
	uint32_t hit_entry[DP_CONTENT_MAX_HITS], rule_entry;
	uint8_t hit_kind[DP_CONTENT_MAX_HITS], rule_kind;
	int scan_error; /* hs_scan failed (counted; the packet keeps its policy decision) */
	/* Per content field: the FWD_X_* (< 0) its extractor gave when the
	 * name was there but could not be read (a ClientHello cut by the
	 * segment's end, two Host headers, a name past 255 bytes), else 0.
	 * No pattern or set saw such a packet (the field's unreadable rules
	 * did): counted, and said by explain. */
	int8_t unreadable[4];
};

/** Whether some name of @v's packet was there but unreadable. */
static inline int dp_content_any_unreadable(const struct dp_content_verdict *v)
{
	return (v->unreadable[0] | v->unreadable[1] | v->unreadable[2] | v->unreadable[3]) != 0;
}

/**
 * Build @t's content state. @shipped: the databases from the push (their
 * rules_hash must match @t), or NULL to compile here.
 * @return 0 with *@out (NULL when @t has no content rules), or -errno with @err
 */
int dp_content_build(const struct fwd_table *t, const struct fwd_hs_dbs *shipped, uint16_t nworkers,
		     struct dp_content **out, struct fwd_err *err);

void dp_content_free(struct dp_content *c);

static inline uint8_t dp_content_scope(const struct dp_content *c, uint16_t region,
				       uint16_t service)
{
	return c->scope[(uint32_t)region * c->nservices + service];
}

/** Index of the rule of @key (its name and what it matches) in this
 * generation, or DP_CONTENT_NONE. */
uint32_t dp_content_rule_by_key(const struct dp_content *c, uint64_t key);

/** Whether rule @rule of this generation scopes (@region, @service): the
 * test a match passes before it counts (its regions, if any, and services). */
int dp_content_rule_scopes(const struct dp_content *c, uint32_t rule, uint16_t region,
			   uint16_t service);

/* What is scanned for one packet. */
struct dp_content_input {
	uint8_t fields; /* dp_content_scope() bits */
	uint8_t proto;
	uint16_t region, service;
	const uint8_t *payload; /* the L4 payload (fwd_l4_payload) */
	uint32_t len;
	const char *given[4]; /* explain: field values given directly, else NULL */
	char (*names)[FWD_X_NAME_MAX]; /* explain: receives the extracted names, or NULL */
	uint64_t *match_cnt; /* per rule, incremented for every match; NULL for explain */
	struct dp_content_top
		*top; /* the worker's sketches (dp_content.top[w]); NULL for explain */
};

/**
 * The names rule @rule's set matched most in this generation, most first:
 * every worker's sketch merged (a reader's estimate while workers write).
 * @return how many were written to @out (at most @max; 0 for a pattern rule)
 */
uint32_t dp_content_top_names(const struct dp_content *c, uint32_t rule, struct fwd_report_top *out,
			      uint32_t max);

/** Apply rule @rule's action to decision @d (drop, mirror, steer; count changes nothing). */
void dp_content_act(const struct dp_content *c, const struct fwd_class *cls,
		    const struct fwd_pkt *p, uint32_t rule, struct fwd_decision *d);

/**
 * Extract the scoped fields and scan them with scratch @s.
 * @return the number of fields scanned; *@v says what matched
 */
int dp_content_scan(const struct dp_content *c, hs_scratch_t *s, const struct dp_content_input *in,
		    struct dp_content_verdict *v);

/*
 * A burst's scans in stages (the worker's stage 3): dp_content_prepare()
 * extracts the names of every scoped packet of the burst and runs the
 * first two steps of their name-set lookups (fwd_nameset.h: keys and slot
 * prefetches, then slot reads and entry prefetches), each step over the
 * whole burst before the next, so that one packet's cache misses overlap
 * the others' work; dp_content_scan_prepared() then finishes one packet's
 * scan as dp_content_scan() would, with the same verdict, counters and
 * sketches. Preparing matches and counts nothing: a packet whose scan is
 * never finished (its TCP flow already decided) leaves no trace.
 */
#define DP_CONTENT_NAME_FIELDS 3 /* tls_sni, http_host, dns_qname: field - 1 */

struct dp_content_prep {
	uint8_t fields; /* the scope prepared for; 0: not prepared */
	int16_t n[DP_CONTENT_NAME_FIELDS]; /* the first extracted name's length; <= 0: none */
	struct fwd_x_iter it[DP_CONTENT_NAME_FIELDS]; /* where the next name is, if any */
	struct fwd_ns_query q[DP_CONTENT_NAME_FIELDS];
	char name[DP_CONTENT_NAME_FIELDS][FWD_X_NAME_MAX];
};

/**
 * Stage the scans of @n packets: @pr[i] for @in[i] (one with fields 0 is
 * left unprepared). @in and the payloads must stay unchanged until the
 * scans are finished.
 */
void dp_content_prepare(const struct dp_content *c, const struct dp_content_input *in,
			struct dp_content_prep *pr, unsigned n);

/**
 * dp_content_scan() of @in, prepared as @pr by dp_content_prepare() in
 * this burst (the caller's to ensure: @pr is not checked for being from
 * an earlier burst); an @in whose fields differ from what @pr was prepared
 * for is scanned afresh. @in's given names and names buffer are ignored
 * (explain's, which calls dp_content_scan()).
 */
int dp_content_scan_prepared(const struct dp_content *c, hs_scratch_t *s,
			     const struct dp_content_input *in, struct dp_content_prep *pr,
			     struct dp_content_verdict *v);

#endif /* DP_CONTENT_H */
