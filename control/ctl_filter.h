/*
 * ctl_filter.h - regiond's XDP filters: one program (ctl_bpf) attached to
 * the interfaces of regiond's config, holding the rules of the current
 * generation's 'filters' section (none: pass everything).
 */
#ifndef CTL_FILTER_H
#define CTL_FILTER_H

#include <stdio.h>

#include <jansson.h>

#include "ctl_bpf.h"
#include "ctl_state.h"

#define CTL_FILTER_MAX_IFACES 8

struct ctl_filter_conf {
	const char *ifaces[CTL_FILTER_MAX_IFACES];
	unsigned nifaces;
	enum ctl_xdp_mode mode;
	const char *pin_dir;
	struct ctl_bpf_conf sizes;
	/* ctl_filter_claim's, for the ifindex each interface was claimed by:
	 * one created again between the claim and the start is claimed again
	 * at the first check after the start (a second). NULL: the ifindex
	 * the start finds. */
	const struct ctl_filter_claims *claims;
};

struct ctl_filter;
struct ctl_filter_claims;

/** One regiond per interface: claim each of @ifaces (by name and by
 *  ifindex) for this process, before its state or any filter is touched.
 *  The claims last until ctl_filter_release() or the process's end. NULL
 *  with @err naming the holder when another process has one, or naming an
 *  interface that does not exist. */
struct ctl_filter_claims *ctl_filter_claim(const char *const *ifaces, unsigned n,
					   struct fwd_err *err);
void ctl_filter_release(struct ctl_filter_claims *c);

/**
 * regiond's filter attached to interfaces of this network namespace that no
 * running regiond claims: an earlier regiond's, left on purpose to filter
 * through a restart, seen by one started without --xdp-iface, which does
 * not update it, so it keeps the rules of the generation it last had.
 * Read only: nothing is claimed or locked; one netlink dump a call.
 * @id      in: the program found at the last look (0: none); out: the one
 *          to look for next: the one pinned in @pin_dir, else the one found
 *          before for as long as it stays attached (its pins removed
 *          first, it filters all the same)
 * @afxdp   set when that program is the fast path's AF_XDP one, not loaded
 *          by a regiond (taking it off cuts regionfwd's port)
 * @return how many interfaces, said in @out ("eth1, eth2 (program 12,
 *         generation 3)"); -1 when it could not look (the dump or the
 *         claims unreadable), with nothing changed
 */
int ctl_filter_unmanaged(const char *pin_dir, uint32_t *id, int *afxdp, char *out, size_t len);

/** Adopt or load, attach everywhere. NULL with @err on failure. */
struct ctl_filter *ctl_filter_start(const struct ctl_filter_conf *conf, struct fwd_err *err);

/** Find the rule ids the adopted filter's running half gives the rule
 *  names (their tags; an earlier regiond's ids were positions: then @t's,
 *  if it is the generation @gen the filter runs). Once, before the first
 *  apply or status; a filter loaded by this start holds none. */
void ctl_filter_bind(struct ctl_filter *f, const struct fwd_table *t, uint64_t gen);

/** Install @t's filters as generation @gen, each rule under its name's id
 *  (its counters follow the name across updates). */
int ctl_filter_apply(void *filter, const struct fwd_table *t, uint64_t gen, struct fwd_err *e);

/** Generation the kernel side holds. */
uint32_t ctl_filter_generation(const struct ctl_filter *f);

/** Per interface: mode, program id, generation; counters; per-rule hits. */
json_t *ctl_filter_status(struct ctl_filter *f, const struct fwd_table *t);

/** Its GET /metrics families (regiond_xdp_*: generation, attached per
 *  interface, counters, per-rule hits of @t's rules) into @out. */
void ctl_filter_metrics(struct ctl_filter *f, const struct fwd_table *t, FILE *out);

/** Detach from every interface and remove the pins. */
int ctl_filter_detach(struct ctl_filter *f);

void ctl_filter_free(struct ctl_filter *f);

/** @f as regiond's "filters" extension (ctl_ext.h): applied with every new
 *  generation, converged on each tick, status and detach for the API. */
struct ctl_ext ctl_filter_ext(struct ctl_filter *f);

#endif /* CTL_FILTER_H */
