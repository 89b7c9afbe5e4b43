/*
 * dp_explain.h - "where would this packet go?" for one generation.
 *
 * Explain builds a synthetic frame from a probe and runs the fast path's own
 * parser, FIB lookup, classifier and content scan on it, so the answer is
 * what a worker would do with that packet, not a second model of it. It runs
 * on the control thread (which owns the generation and its spare content
 * scratch), touches no counter and changes nothing.
 */
#ifndef DP_EXPLAIN_H
#define DP_EXPLAIN_H

#include <stdint.h>

#include <jansson.h>

#include "dp_gen.h"
#include "fwd_err.h"

/* A synthetic packet for explain. */
struct dp_probe {
	uint8_t family; /* 4 or 6 */
	uint8_t proto;
	uint16_t sport, dport;
	uint8_t src[16], dst[16];
	const uint8_t *payload; /* optional L4 payload for content rules */
	uint32_t payload_len;
	const char *given[4]; /* optional field values (tls_sni, http_host, dns_qname) */
};

/**
 * Explain @probe against @g: region and matched prefix, service, policy,
 * action and target, link, port, mirror, drop reason, flow hash, and the
 * content rules' view (null when none is in scope).
 * @return a JSON object (new reference), or NULL with @err filled
 */
json_t *dp_explain(const struct dp_gen *g, const uint8_t *port_down, const struct dp_probe *probe,
		   struct fwd_err *err);

#endif /* DP_EXPLAIN_H */
