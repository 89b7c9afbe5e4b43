/*
 * ctl_bpf.h - the XDP filter's lifecycle in user space: open the skeleton,
 * size its maps, load, and swap rule sets atomically.
 *
 * ctl_bpf_apply() writes a compiled image (common/fwd_filter.h) into the half
 * the program is not reading (batch map updates), then flips cfg.active with
 * one update: the program sees the old rule set or the new one, never a mix.
 * The single user of the generated skeleton.
 */
#ifndef CTL_BPF_H
#define CTL_BPF_H

#include <stdint.h>

#include "fwd_err.h"
#include "fwd_filter.h"

struct ctl_bpf_conf {
	uint32_t max_prefixes; /* per half */
	uint32_t max_groups; /* IPv4 256-entry groups per half */
};

struct ctl_bpf;

/** @return the loaded (not attached) program, or NULL with @err */
struct ctl_bpf *ctl_bpf_load(const struct ctl_bpf_conf *conf, struct fwd_err *err);

/**
 * Adopt the program and maps pinned in @pin_dir by an earlier regiond, or
 * load them and pin them there. The pins are what lets a restarted regiond
 * take over a filter that never stopped filtering.
 * @param adopted  set to 1 when adopted
 */
struct ctl_bpf *ctl_bpf_open_pinned(const struct ctl_bpf_conf *conf, const char *pin_dir,
				    int *adopted, struct fwd_err *err);

/** Whether another regiond holds @pin_dir (its lock, ctl_bpf_open_pinned),
 *  asked before regiond touches its state: -EBUSY with @err if so, else 0
 *  (a directory not there yet, or one that cannot be read: the start says
 *  that). The start takes the lock for good, so a race is still caught,
 *  only later. */
int ctl_bpf_probe_dir(const char *pin_dir, struct fwd_err *err);

/** Remove the pins (the program stays attached until detached). */
void ctl_bpf_unpin(const char *pin_dir);

/** The same, after a start that failed: the directory too only if that
 *  start (ctl_bpf_open_pinned) made it. */
void ctl_bpf_unpin_made(const struct ctl_bpf *b, const char *pin_dir);

enum ctl_xdp_mode { CTL_XDP_AUTO, CTL_XDP_NATIVE, CTL_XDP_GENERIC };

/**
 * Attach to @ifname, replacing an earlier instance of this filter but
 * nothing else. AUTO tries native first and falls back to generic, saying
 * so in @mode_out ("native", "generic (native refused: ...)").
 */
int ctl_bpf_attach(struct ctl_bpf *b, const char *ifname, enum ctl_xdp_mode mode, char *mode_out,
		   size_t len, struct fwd_err *err);

/* What an interface carried before a start attached the filter to it, to
 * put it back when the start fails (ctl_bpf_check, ctl_bpf_restore). */
struct ctl_bpf_prev {
	uint32_t id; /* 0: no program */
	int fd; /* a reference on it, so a replaced program outlives the attach; -1 */
	int generic; /* it was attached in SKB mode */
};

/**
 * Whether the filter may be attached to @ifname: it exists and carries no
 * program, or one named xdp_filter (ours, or an earlier regiond's). What it
 * carries goes into @prev (close with ctl_bpf_restore or ctl_bpf_prev_close).
 * @return 0, or -errno with @err naming the interface and what to do
 */
int ctl_bpf_check(const char *ifname, struct ctl_bpf_prev *prev, struct fwd_err *err);

/** Put back on @ifname what it carried before (@prev): our program
 *  detached, or the earlier one attached again. Closes @prev. */
void ctl_bpf_restore(const struct ctl_bpf *b, const char *ifname, struct ctl_bpf_prev *prev);

void ctl_bpf_prev_close(struct ctl_bpf_prev *prev);

/** Detach from @ifname if our program is the one attached. */
int ctl_bpf_detach(struct ctl_bpf *b, const char *ifname);

/** Program id, and the generation the active half holds. */
uint32_t ctl_bpf_prog_id(const struct ctl_bpf *b);

/** What the maps were sized for (at load, or by the regiond whose pins were
 *  adopted): prefixes and IPv4 groups. */
void ctl_bpf_capacity(const struct ctl_bpf *b, uint32_t *prefixes, uint32_t *groups);
uint32_t ctl_bpf_generation(const struct ctl_bpf *b);

/**
 * Move the live half to generation @gen without rewriting it: for a table
 * whose filters are the same as the live half's (ctl_filter.c). Rules,
 * policies and the rate limiters' state stay as they are.
 * @return 0, or -errno with @err.
 */
int ctl_bpf_set_generation(struct ctl_bpf *b, uint32_t gen, struct fwd_err *err);

/** What is attached to @ifname: 0 none, else the program id; @mode_out "native"/"generic". */
uint32_t ctl_bpf_query(const char *ifname, char *mode_out, size_t len);

int ctl_bpf_prog_fd(const struct ctl_bpf *b);

/**
 * Install @img with the given policies as generation @gen.
 * @return 0, or -errno with @err (nothing changed for the running half)
 */
int ctl_bpf_apply(struct ctl_bpf *b, const struct fwd_flt_image *img, uint8_t default_action,
		  uint8_t non_ip_action, uint8_t malformed_action, uint8_t redirect, uint32_t gen,
		  struct fwd_err *err);

/**
 * Adopt the filter attached to @ifname by someone else (DPDK's net_af_xdp
 * loads it with xdp_prog=bpf/xdp_filter.bpf.o and owns its XSKMAP): find it
 * by program name and its maps by name. NULL with @err when there is none.
 */
struct ctl_bpf *ctl_bpf_open_attached(const char *ifname, struct fwd_err *err);

/** Whether a regiond loaded the program of @b (its loaded_by_regiond):
 *  one found attached without pins is then a regiond's whose pins are
 *  gone, not the fast path's. */
int ctl_bpf_loaded_by_regiond(const struct ctl_bpf *b);

/** Pin @b's program and maps into @dir (which holds none of them), and
 *  lock it as ctl_bpf_open_pinned() does: 0, or a negative errno with
 *  @err. */
int ctl_bpf_repin(struct ctl_bpf *b, const char *dir, struct fwd_err *err);

/** Verdict counters summed over CPUs. */
int ctl_bpf_counters(const struct ctl_bpf *b, uint64_t out[FWD_FLT_CNT_MAX]);

/** One rule's hits summed over CPUs. */
int ctl_bpf_rule_stats(const struct ctl_bpf *b, uint16_t rule, struct fwd_flt_rule_stats *out);

/** Zero one rule id's hits, before a rule new to it is installed there. */
int ctl_bpf_rule_stats_reset(const struct ctl_bpf *b, uint16_t rule);

/** The tag (struct fwd_flt_rule) of each rule id of the half the program
 *  reads: what a restarted regiond finds its rule names' ids from. */
int ctl_bpf_active_tags(const struct ctl_bpf *b, uint32_t tags[FWD_FLT_MAX_RULES]);

/**
 * Drop capture: set the flag that makes the program copy what it drops
 * into its ring buffer (fwd_filter_kern_user.h). @return 0, or -ENOTSUP
 * when this filter has no capture maps (adopted from an older regiond).
 */
int ctl_bpf_capture(struct ctl_bpf *b, int on);

/** The capture ring buffer's map fd (for ring_buffer__new), or -1. */
int ctl_bpf_capture_rb_fd(const struct ctl_bpf *b);

void ctl_bpf_free(struct ctl_bpf *b);

/** An interface with an XDP program attached (ctl_bpf_xdp_attached). */
struct ctl_xdp_att {
	unsigned ifindex;
	uint32_t prog_id;
	char name[16]; /* IF_NAMESIZE */
};

/** Every interface of this network namespace with an XDP program, in one
 *  RTM_GETLINK dump: bpf_xdp_query() dumps every link for each interface
 *  it is asked about, which made a walk of N interfaces cost N dumps.
 *  @return how many were found (at most @cap kept), or a negative errno. */
int ctl_bpf_xdp_attached(struct ctl_xdp_att *out, unsigned cap);

/** The id of regiond's filter pinned in @pin_dir ("prog", an XDP program
 *  named xdp_filter), 0 when there is none. Read only. */
uint32_t ctl_bpf_pinned_id(const char *pin_dir);

#endif /* CTL_BPF_H */
