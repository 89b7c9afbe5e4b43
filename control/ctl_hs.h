/*
 * ctl_hs.h - compile a table's content rules with Hyperscan, in a child
 * process under CPU-time and memory limits, so a pathological pattern costs
 * a refused change, never a stuck or bloated regiond.
 *
 * One block-mode database per field (payload, tls_sni, http_host, dns_qname)
 * holding the rules of that field; pattern ids are rule indexes. Literal
 * patterns are escaped byte by byte. Every pattern gets HS_FLAG_SINGLEMATCH
 * (a rule either matches a packet or not) and HS_FLAG_DOTALL.
 */
#ifndef CTL_HS_H
#define CTL_HS_H

#include <stddef.h>

#include "ctl_state.h"
#include "fwd_table.h"

struct ctl_hs_dbs {
	char *bytes[4]; /* serialized database per enum fwd_content_field, or NULL */
	size_t len[4];
	double compile_s; /* wall time of the compilation */
};

struct ctl_hs_limits {
	unsigned cpu_seconds; /* RLIMIT_CPU of the compiling child */
	size_t memory_bytes; /* RLIMIT_AS of the compiling child */
};

/**
 * @return 0 with @out filled (free with ctl_hs_free), or -errno with @e:
 *         422 invalid_pattern naming the rule and Hyperscan's reason, or
 *         422 pattern_too_expensive when the child hit its limits
 */
int ctl_hs_compile(const struct fwd_table *t, const struct ctl_hs_limits *lim, struct ctl_hs_dbs *out,
		   struct ctl_error *e);
void ctl_hs_free(struct ctl_hs_dbs *dbs);

#endif /* CTL_HS_H */
