/*
 * fwd_hs.h - compile a table's content rules with Hyperscan in a child
 * process under CPU-time and memory limits, so a pathological pattern costs
 * a refused change, never a stuck or bloated regiond or regionfwd.
 *
 * One block-mode database per field (payload, tls_sni, http_host, dns_qname)
 * holding the pattern rules of that field (name sets are fwd_nameset's); pattern ids are rule indexes. Literal
 * patterns are escaped byte by byte. Every pattern gets HS_FLAG_SINGLEMATCH
 * (a rule either matches a packet or not) and HS_FLAG_DOTALL.
 *
 * regiond compiles (that is the validation) and ships the serialized
 * databases with the generation; regionfwd deserializes them, or compiles
 * itself when it loads a table from a file. fwd_content_hash() binds a set
 * of databases to the rules they were compiled from.
 */
#ifndef FWD_HS_H
#define FWD_HS_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_err.h"
#include "fwd_table.h"

struct fwd_hs_dbs {
	char *bytes[4]; /* serialized database per enum fwd_content_field, or NULL */
	size_t len[4];
	uint64_t rules_hash; /* fwd_content_hash() of the table compiled */
	double compile_s; /* wall time of the compilation */
};

struct fwd_hs_limits {
	unsigned cpu_seconds; /* RLIMIT_CPU of the compiling child */
	size_t memory_bytes; /* RLIMIT_AS of the compiling child */
};

#define FWD_HS_DEFAULT_LIMITS                                                                      \
	{                                                                                          \
		.cpu_seconds = 30, .memory_bytes = 2ull << 30                                      \
	}

/**
 * Compile the table's content rules in a child process under @lim.
 * @return 0 with @out filled (free with fwd_hs_free; all NULL when the table
 *         has no content rules), or -errno with @err naming the rule and its
 *         reason: FWD_R_INVALID_PATTERN (the pattern does not parse),
 *         FWD_R_PATTERN_TOO_EXPENSIVE (they parse, the database cannot be built
 *         within the limits) or FWD_R_INTERNAL (pipe, fork)
 */
int fwd_hs_build(const struct fwd_table *t, const struct fwd_hs_limits *lim, struct fwd_hs_dbs *out,
		 struct fwd_err *err);

/** fwd_hs_build() with the reason's code as a string in @code; for callers
 *  not yet moved to err->reason_code. */
int fwd_hs_compile(const struct fwd_table *t, const struct fwd_hs_limits *lim,
		   struct fwd_hs_dbs *out, struct fwd_err *err, const char **code);
void fwd_hs_free(struct fwd_hs_dbs *dbs);

/** Rules of @t that are patterns (the others are name sets: no database). */
uint32_t fwd_content_patterns(const struct fwd_table *t);

/** Hash of what the databases depend on: each rule's index, field, flags and pattern. */
uint64_t fwd_content_hash(const struct fwd_table *t);

#endif /* FWD_HS_H */
