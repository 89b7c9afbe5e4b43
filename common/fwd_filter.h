/*
 * fwd_filter.h - compile filter rules into the contents of one half of the
 * XDP filter's maps (layout: fwd_filter_kern_user.h). Pure C: the loader
 * (control/ctl_bpf.c) writes the image into the kernel, the tests compare it
 * with a naive longest-prefix match.
 *
 * Indexes in the image are local to it (group 0.., prefix 0..); the loader
 * offsets them into the half it writes.
 */
#ifndef FWD_FILTER_H
#define FWD_FILTER_H

#include <stdint.h>

#include "fwd_err.h"
#include "fwd_filter_kern_user.h"

struct fwd_flt_prefix {
	uint8_t family; /* 4 or 6 */
	uint8_t len;
	uint16_t rule; /* rule id */
	uint8_t addr[16]; /* network order, host bits zero */
};

struct fwd_flt_ports {
	uint8_t proto; /* TCP, UDP or SCTP */
	uint16_t lo, hi;
	uint16_t rule;
};

struct fwd_flt_v6_entry {
	uint8_t len;
	uint8_t addr[16];
	uint32_t prefix; /* index into prefix_rule */
};

struct fwd_flt_image {
	uint32_t tbl16[65536]; /* entries as in the map, group/prefix indexes image-local */
	uint32_t ngroups;
	uint32_t *tbl8; /* ngroups * 256 */
	uint32_t nprefix;
	uint16_t *prefix_rule; /* prefix index -> rule id */
	uint32_t nv6;
	struct fwd_flt_v6_entry *v6;
	uint32_t n_v6_lengths;
	uint8_t v6_lengths[FWD_FLT_MAX_V6_LENGTHS]; /* longest first */
	uint16_t ports[3 * 65536]; /* rule id + 1, 0 = none */
	uint16_t nrules;
	struct fwd_flt_rule rules[FWD_FLT_MAX_RULES];
};

/**
 * @param prefixes  valid, distinct prefixes (the table validator's job)
 * @param ports     non-overlapping port ranges
 * @param actions   action per rule id (enum fwd_flt_action)
 * @return the image, or NULL with @err (too many IPv6 lengths, bad rule id, ENOMEM)
 */
struct fwd_flt_image *fwd_flt_compile(const struct fwd_flt_prefix *prefixes, uint32_t nprefixes,
				      const struct fwd_flt_ports *ports, uint32_t nports,
				      const uint8_t *actions, uint16_t nrules, struct fwd_err *err);

/** Give rule @rule of @img a rate (FWD_FLT_RATE). */
static inline void fwd_flt_image_rate(struct fwd_flt_image *img, uint16_t rule, uint32_t pps,
				      uint32_t burst)
{
	img->rules[rule].action = FWD_FLT_RATE;
	img->rules[rule].rate_pps = pps;
	img->rules[rule].burst = burst;
}
void fwd_flt_image_free(struct fwd_flt_image *img);

struct fwd_filters;

/** Compile a validated table's filters section (fwd_table.h). */
struct fwd_flt_image *fwd_flt_compile_table(const struct fwd_filters *f, struct fwd_err *err);

/**
 * The malformed policy the program gets for a validated section: its
 * `malformed` action, and with `pass` the FWD_FLT_MALFORMED_UNSEEN_* bits
 * of what its rules and default might drop (fwd_filter_kern_user.h).
 */
uint8_t fwd_flt_malformed_policy(const struct fwd_filters *f);

/* What the filter does with one parsed IP packet (docs/filters.md, the
 * model), decided on the table's section as the XDP program decides on its
 * image: the longest source prefix of any rule, else the (protocol,
 * destination port) rule, else the default. For explain. */
struct fwd_flt_verdict {
	uint8_t action; /* enum fwd_flt_action */
	int rule; /* rule id, -1: the default decided */
	enum { FWD_FLT_BY_PREFIX, FWD_FLT_BY_SERVICE, FWD_FLT_BY_DEFAULT } by;
	uint8_t len; /* BY_PREFIX: the matched prefix's length */
	uint8_t prefix[16]; /* BY_PREFIX: its address (4 or 16 bytes, network order) */
	uint16_t lo, hi; /* BY_SERVICE: the matched port range */
};

/**
 * @param family      4 or 6; @src its source address, network order
 * @param has_ports   0 for a later fragment (no ports: the service step is skipped)
 */
void fwd_flt_decide(const struct fwd_filters *f, int family, const uint8_t *src, uint8_t proto,
		    int has_ports, uint16_t dport, struct fwd_flt_verdict *v);

/** The image's answer for one address: rule id + 1, or 0 (for tests). */
uint32_t fwd_flt_image_lookup(const struct fwd_flt_image *img, int family, const uint8_t *addr);

#endif /* FWD_FILTER_H */
