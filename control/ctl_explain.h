/*
 * ctl_explain.h - POST /v1/explain's body (docs/api.md) turned into the
 * typed ExplainRequest regionfwd answers: addresses parsed, the protocol by
 * name or number, ports, an optional payload (text or hex) and extracted
 * names. Every field is checked here, with the API's field names in the
 * errors; regionfwd checks the typed request again (lengths, ranges).
 */
#ifndef CTL_EXPLAIN_H
#define CTL_EXPLAIN_H

#include <jansson.h>

#include "fwd_msg.h"
#include "fwd_table.h"

#define CTL_EXPLAIN_MAX_PAYLOAD 9216 /* a jumbo frame's payload */

/* The request and the storage its fields point into. */
struct ctl_explain {
	Regionfwd__Ctl__ExplainRequest req;
	uint8_t src[16], dst[16];
	uint8_t payload[CTL_EXPLAIN_MAX_PAYLOAD];
	char given[FWD_CONTENT_FIELDS][256];
	char *given_ptr[FWD_CONTENT_FIELDS];
};

/** Fill @x from the API body @b. @return 0, or a negative errno with @e
 *  (FWD_R_BAD_REQUEST naming the field). */
int ctl_explain_parse(json_t *b, struct ctl_explain *x, struct fwd_err *e);

/**
 * The XDP stage of the explanation: what table @t's filters section does
 * with the packet of @x (fwd_flt_decide, the model the XDP program runs),
 * and where it is enforced now: of the interfaces in @fs (the filter
 * status, NULL without --xdp-iface), those that carry our program running
 * generation @gen (@t's) in "enforced_on"; the others, with why, in
 * "not_enforced_on" (the same truth status and health read). JSON:
 * {"section", "verdict", "rule", "by", "match", "rate_pps", "burst",
 * "redirect", "enforced_on", "not_enforced_on"} (new reference; NULL on
 * ENOMEM).
 */
json_t *ctl_explain_xdp(const struct ctl_explain *x, const struct fwd_table *t, const json_t *fs,
			uint64_t gen);

#endif /* CTL_EXPLAIN_H */
