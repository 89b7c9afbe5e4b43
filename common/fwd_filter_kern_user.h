/*
 * fwd_filter_kern_user.h - what the XDP filter (bpf/xdp_filter.bpf.c) and
 * its loader (control/ctl_bpf.c) share: map layouts, value encodings and
 * counter ids. Fixed-width types only: included by BPF and user space.
 *
 * Every rule table exists twice (two "halves"); the program reads the half
 * named by cfg.active, the loader writes the other half and then flips
 * cfg.active with one map update: never a moment without a filter, never
 * half a rule set.
 *
 * IPv4 source match: DIR-16-8-8, exact longest prefix match in at most three
 * array reads. v4_tbl16[half][addr >> 16] and 256-entry groups in v4_tbl8
 * hold an entry: 0 = no prefix, FWD_FLT_GROUP | g = look in group g at the
 * next byte, otherwise prefix index + 1. The loader expands prefixes in
 * increasing length, so an entry always holds the longest prefix covering
 * it (control/fwd_filter.c is the same algorithm as rte_lpm's).
 *
 * IPv6 source match: one hash entry per (length, masked address), tried
 * from the longest length present to the shortest (at most
 * FWD_FLT_MAX_V6_LENGTHS lengths).
 */
#ifndef FWD_FILTER_KERN_USER_H
#define FWD_FILTER_KERN_USER_H

#include <stdint.h>

#ifndef __bpf__
#include <linux/bpf.h> /* struct bpf_spin_lock */
#endif

#define FWD_FLT_GROUP 0x80000000u
#define FWD_FLT_MAX_V6_LENGTHS 32
#define FWD_FLT_MAX_RULES 4096

enum fwd_flt_action {
	FWD_FLT_PASS = 0, /* to the kernel stack (or the AF_XDP socket when redirecting) */
	FWD_FLT_DROP = 1,
	FWD_FLT_RATE = 2, /* pass up to rate_pps per source prefix (burst), drop beyond */
};

/* Verdict counters (per CPU), one list for program, loader and docs. */
#define FWD_FLT_COUNTERS(X)                                                          \
	X(PASS, "pass", "passed: a pass rule or the default")                        \
	X(DROP, "drop", "dropped: a drop rule or the default")                       \
	X(NON_IP, "non_ip", "not IPv4/IPv6: handled by the non_ip policy")           \
	X(MALFORMED, "malformed", "IP but malformed: handled by the malformed policy") \
	X(RATE_LIMITED, "rate_limited", "dropped by a rate rule over its rate")       \
	X(TO_AFXDP, "to_afxdp", "admitted IP packets redirected to AF_XDP sockets")   \
	X(PREFIX_HIT, "prefix_hit", "decided by a source prefix rule")               \
	X(SERVICE_HIT, "service_hit", "decided by a protocol/port rule")             \
	X(DEFAULT, "default", "matched no rule")

enum fwd_flt_counter {
#define X(id, name, help) FWD_FLT_CNT_##id,
	FWD_FLT_COUNTERS(X)
#undef X
	FWD_FLT_CNT_MAX
};

struct fwd_flt_cfg {
	uint32_t active; /* 0 or 1: the half the program reads */
	uint32_t generation; /* table generation the active half holds */
	uint8_t default_action; /* enum fwd_flt_action when nothing matches */
	uint8_t non_ip_action; /* ARP, LLDP, ...: pass keeps the box reachable */
	uint8_t malformed_action;
	uint8_t redirect; /* 1: admitted IP packets go to the AF_XDP socket of their queue */
	uint32_t n_v6_lengths[2]; /* per half */
};

struct fwd_flt_v6_key {
	uint8_t half;
	uint8_t len;
	uint8_t pad[2];
	uint8_t addr[16]; /* masked to len */
};

struct fwd_flt_rule {
	uint8_t action;
	uint8_t pad[3];
	uint32_t rate_pps; /* FWD_FLT_RATE: packets per second per source prefix */
	uint32_t burst; /* FWD_FLT_RATE: packets allowed back to back */
	uint32_t pad2;
};

/* Rate state per prefix (GCRA): the theoretical arrival time of the next
 * conforming packet, shared by all CPUs under the lock. */
struct fwd_flt_bucket {
	struct bpf_spin_lock lock;
	uint32_t pad;
	uint64_t tat_ns;
};

struct fwd_flt_rule_stats {
	uint64_t packets, bytes;
};

#endif /* FWD_FILTER_KERN_USER_H */
