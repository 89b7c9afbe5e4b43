/*
 * fwd_filter_kern_user.h - what the XDP filter (bpf/xdp_filter.bpf.c) and
 * its loader (control/ctl_bpf.c) share: map layouts, value encodings and
 * counter ids. Kernel UAPI types only (<linux/types.h>, __u32), as libbpf's
 * and xdp-tools' shared headers do: included by BPF, which has no libc, and
 * by user space.
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

#include <linux/types.h>

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
#define FWD_FLT_COUNTERS(X)                                                                        \
	X(PASS, "pass", "passed: a pass rule or the default")                                      \
	X(DROP, "drop", "dropped: a drop rule or the default")                                     \
	X(NON_IP, "non_ip", "not IPv4/IPv6: handled by the non_ip policy")                         \
	X(MALFORMED, "malformed", "IP but malformed: handled by the malformed policy")             \
	X(RATE_LIMITED, "rate_limited", "dropped by a rate rule over its rate")                    \
	X(TO_AFXDP, "to_afxdp",                                                                    \
	  "admitted IP packets redirected to an AF_XDP socket (none on the queue: to the kernel)") \
	X(PREFIX_HIT, "prefix_hit", "decided by a source prefix rule")                             \
	X(SERVICE_HIT, "service_hit", "decided by a protocol/port rule")                           \
	X(DEFAULT, "default", "matched no rule")                                                   \
	X(CAPTURED, "captured", "drops copied to a running capture (regionctl capture)")           \
	X(CAPTURE_LOST, "capture_lost", "drops a running capture lost: its ring buffer was full")

enum fwd_flt_counter {
#define X(id, name, help) FWD_FLT_CNT_##id,
	FWD_FLT_COUNTERS(X)
#undef X
		FWD_FLT_CNT_MAX
};

/*
 * flt_cfg: which half is live. The program reads only `active` from it;
 * the other fields are written for an older program adopted from its pins
 * (a regiond upgraded over a running filter), which reads them all there.
 * That older program read the policies for what matches nothing from here
 * after the half's rules, in place, while the loader rewrote the value:
 * a packet could meet the old half's rules with the new default (a probe
 * saw allowed packets dropped as a table turned to `default: drop`).
 */
struct fwd_flt_cfg {
	__u32 active; /* 0 or 1: the half the program reads */
	__u32 generation; /* for older programs: table generation the active half holds */
	__u8 default_action; /* for older programs: as fwd_flt_half's */
	__u8 non_ip_action;
	__u8 malformed_action;
	__u8 redirect;
	__u32 n_v6_lengths[2];
};

/* flt_half[half]: the policies that go with each half's rules, written with
 * them before the flip and never while the half is live, but for the
 * generation (ctl_bpf_set_generation: the same policies, a new number). */
struct fwd_flt_half {
	__u32 generation; /* table generation this half holds */
	__u8 default_action; /* enum fwd_flt_action when nothing matches */
	__u8 non_ip_action; /* ARP, LLDP, ...: pass keeps the box reachable */
	/* The malformed policy (FWD_FLT_MALFORMED_ACTION bits), and with
	 * `malformed: pass` what it must not pass (FWD_FLT_MALFORMED_UNSEEN_*) */
	__u8 malformed_action;
	__u8 redirect; /* 1: admitted IP packets go to the AF_XDP socket of their queue */
	__u32 n_v6_lengths; /* IPv6 prefix lengths in this half (flt_v6_lengths) */
};

/*
 * `malformed: pass` keeps a parser's refusal from cutting the box off; it
 * must not let by what the rules would drop. Linux takes some packets the
 * parser refuses (a first fragment whose length is not a multiple of 8,
 * which it trims; an extension chain of more than 8 headers), so a packet
 * the rules cannot be checked on is dropped when they might drop it (a
 * review: a telnet SYN in such a fragment passed `tcp/23` drop rules and
 * `default: drop`). The loader sets, beside FWD_FLT_PASS:
 *   UNSEEN_PORTS: the default drops, or a service rule does: a malformed
 *     packet whose source no prefix rule decides (its ports unread) drops;
 *   UNSEEN_SOURCE: that, or a prefix rule drops or limits a rate: a
 *     malformed packet whose addresses were not read drops.
 * Only with FWD_FLT_PASS (an older program, which compares the byte with
 * FWD_FLT_DROP, then passes as it did), and never in flt_cfg.
 */
#define FWD_FLT_MALFORMED_ACTION 0x0f
#define FWD_FLT_MALFORMED_UNSEEN_PORTS 0x40
#define FWD_FLT_MALFORMED_UNSEEN_SOURCE 0x80

struct fwd_flt_v6_key {
	__u8 half;
	__u8 len;
	__u8 pad[2];
	__u8 addr[16]; /* masked to len */
};

struct fwd_flt_rule {
	__u8 action;
	__u8 pad[3];
	__u32 rate_pps; /* FWD_FLT_RATE: packets per second per source prefix */
	__u32 burst; /* FWD_FLT_RATE: packets allowed back to back */
	/* The loader's, never read by the program: a hash of the rule's name,
	 * so that a restarted regiond finds which rule id (and counters) each
	 * rule name holds (control/ctl_filter.c). 0: none. */
	__u32 tag;
};

/* Rate state per prefix (GCRA): the theoretical arrival time of the next
 * conforming packet, shared by all CPUs under the lock. */
struct fwd_flt_bucket {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 tat_ns;
};

struct fwd_flt_rule_stats {
	__u64 packets, bytes;
};

/*
 * Drop capture (regionctl capture). While flt_capture's flag is set, the
 * program copies the first FWD_FLT_CAP_SNAP bytes of each packet it drops,
 * with why, into the flt_cap_rb ring buffer regiond reads. A full ring
 * buffer loses the record (counted: capture_lost), never delays the
 * verdict. Flag off: one array read per dropped packet, nothing per packet
 * passed.
 */
#define FWD_FLT_CAP_SNAP 256
#define FWD_FLT_CAP_RB_BYTES (1u << 20) /* a power of two, a multiple of the page size */

enum fwd_flt_cap_why {
	FWD_FLT_WHY_RULE = 0, /* a drop rule: rule names it */
	FWD_FLT_WHY_RATE = 1, /* a rate rule over its rate: rule names it */
	FWD_FLT_WHY_DEFAULT = 2, /* matched no rule; the default drops */
	FWD_FLT_WHY_NON_IP = 3, /* the non_ip policy drops */
	FWD_FLT_WHY_MALFORMED = 4, /* the malformed policy drops */
};

struct fwd_flt_capture {
	__u32 on;
	__u32 pad;
};

struct fwd_flt_cap_rec {
	__u64 ktime_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 ifindex;
	__u32 len; /* the frame's length */
	__u32 caplen; /* bytes of it in data */
	__u32 generation; /* cfg.generation: the rule set that dropped it */
	__u16 rule; /* rule id + 1; 0: no rule */
	__u8 why; /* enum fwd_flt_cap_why */
	__u8 pad[5];
	__u8 data[FWD_FLT_CAP_SNAP];
};

#endif /* FWD_FILTER_KERN_USER_H */
