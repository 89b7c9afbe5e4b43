/*
 * xdp_filter - regionfwd's XDP filter: drop or pass by source prefix (exact
 * longest prefix match, IPv4 in at most three array reads) and by protocol
 * and destination port, with per-rule and per-verdict counters per CPU.
 *
 * It parses with the fast path's own parser (common/fwd_parse.h). Anything it
 * does not fully understand follows a configured policy, pass by default, so
 * the box stays reachable. Maps and their layout: fwd_filter_kern_user.h.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define FWD_INLINE static __always_inline
#include "fwd_filter_kern_user.h"
#include "fwd_parse.h"

/* A BPF object has no C library: a glibc header reaching this build works
 * only where the 32-bit libc headers happen to be installed. Fail here, on
 * every machine, rather than on a user's. Types come from fwd_types.h. */
#ifdef __GLIBC__
#error "a glibc header was included in the BPF build: use <linux/types.h> (see common/fwd_types.h)"
#endif

/* regiond's loader sizes the maps before load (bpf_map__set_max_entries);
 * the sizes here are what an object loaded by someone else gets (DPDK's
 * net_af_xdp with xdp_prog=): 4,096 IPv4 groups and 65,536 prefixes per half. */

/* 1 when regiond's loader loaded this program (set before load: a frozen
 * constant, so the verifier drops the test of it below and nothing runs
 * per packet); 0 in an object someone else loads (DPDK's net_af_xdp with
 * xdp_prog=). How a regiond whose pins are gone tells its own program on
 * an interface from the fast path's (control/ctl_filter.c). */
const volatile __u32 loaded_by_regiond = 0;

/* Which half is live, and the policies for what matches nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_flt_cfg);
} flt_cfg SEC(".maps");

/* Per half: its generation and the policies that go with its rules
 * (fwd_filter_kern_user.h: a flip changes nothing but flt_cfg.active). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct fwd_flt_half);
} flt_half SEC(".maps");

/* IPv4 first stage: 2 halves x 65536 entries, indexed by the top 16 bits. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 65536);
	__type(key, __u32);
	__type(value, __u32);
} flt_v4_tbl16 SEC(".maps");

/* IPv4 second and third stages: 2 halves x groups x 256 entries. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 4096 * 256);
	__type(key, __u32);
	__type(value, __u32);
} flt_v4_tbl8 SEC(".maps");

/* IPv6 (half, length, masked address) -> prefix index + 1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * 65536);
	__type(key, struct fwd_flt_v6_key);
	__type(value, __u32);
} flt_v6 SEC(".maps");

/* IPv6 lengths present, longest first: 2 halves x FWD_FLT_MAX_V6_LENGTHS. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * FWD_FLT_MAX_V6_LENGTHS);
	__type(key, __u32);
	__type(value, __u8);
} flt_v6_lengths SEC(".maps");

/* Prefix index -> rule id, per half. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 65536);
	__type(key, __u32);
	__type(value, __u16);
} flt_prefix_rule SEC(".maps");

/* (TCP|UDP|SCTP, dport) -> rule id + 1, per half: 2 x 3 x 65536. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 3 * 65536);
	__type(key, __u32);
	__type(value, __u16);
} flt_ports SEC(".maps");

/* Rule id -> action, per half. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * FWD_FLT_MAX_RULES);
	__type(key, __u32);
	__type(value, struct fwd_flt_rule);
} flt_rules SEC(".maps");

/* Rate state per prefix index (both halves: indexes include the half). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * 65536);
	__type(key, __u32);
	__type(value, struct fwd_flt_bucket);
} flt_buckets SEC(".maps");

/* AF_XDP sockets by RX queue: DPDK's net_af_xdp (xdp_prog=this object)
 * inserts its sockets here; admitted IP traffic is redirected to them when
 * cfg.redirect is set. The name is the PMD's contract. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

/* Hits per rule id (per CPU; not per half: ids are the loader's, stable). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FWD_FLT_MAX_RULES);
	__type(key, __u32);
	__type(value, struct fwd_flt_rule_stats);
} flt_rule_stats SEC(".maps");

/* Verdict counters (per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FWD_FLT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} flt_counters SEC(".maps");

/* Drop capture: its flag (regiond sets it while a capture runs) and the
 * ring buffer the drops' first bytes go to (fwd_filter_kern_user.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_flt_capture);
} flt_capture SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FWD_FLT_CAP_RB_BYTES);
} flt_cap_rb SEC(".maps");

static __always_inline void count(__u32 id)
{
	__u64 *c = bpf_map_lookup_elem(&flt_counters, &id);

	if (c)
		(*c)++;
}

/* A packet about to be dropped, while a capture runs: its first bytes and
 * why into the ring buffer; a full ring buffer loses the copy, counted. */
static __always_inline void capture_drop(struct xdp_md *ctx, __u8 why, __u32 rule, __u32 gen)
{
	__u32 zero = 0, len = ctx->data_end - ctx->data;
	struct fwd_flt_capture *c = bpf_map_lookup_elem(&flt_capture, &zero);
	struct fwd_flt_cap_rec *r;
	/* 64 bits, so the clamp below bounds the very register passed to
	 * bpf_xdp_load_bytes (a 32-bit copy clamped and then widened again
	 * loses the bound for the verifier). */
	__u64 caplen = len;

	if (c == NULL || !c->on)
		return;
	r = bpf_ringbuf_reserve(&flt_cap_rb, sizeof(*r), 0);
	if (r == NULL) {
		count(FWD_FLT_CNT_CAPTURE_LOST);
		return;
	}
	if (caplen > FWD_FLT_CAP_SNAP)
		caplen = FWD_FLT_CAP_SNAP;
	r->ktime_ns = bpf_ktime_get_ns();
	r->ifindex = ctx->ingress_ifindex;
	r->len = len;
	r->caplen = caplen;
	r->generation = gen;
	r->rule = (__u16)rule;
	r->why = why;
	if (caplen == 0 || bpf_xdp_load_bytes(ctx, 0, r->data, caplen)) {
		bpf_ringbuf_discard(r, 0);
		count(FWD_FLT_CNT_CAPTURE_LOST);
		return;
	}
	bpf_ringbuf_submit(r, 0);
	count(FWD_FLT_CNT_CAPTURED);
}

static __always_inline __u32 lookup_v4(__u32 half, const __u8 *src)
{
	__u32 k = half * 65536 + ((__u32)src[0] << 8 | src[1]);
	__u32 *e = bpf_map_lookup_elem(&flt_v4_tbl16, &k);

	for (int level = 2; level <= 3; level++) {
		if (e == NULL || !(*e & FWD_FLT_GROUP))
			break;
		/* Groups of both halves share the array; the loader hands out
		 * group numbers per half, so the index is half-local already. */
		k = (*e & ~FWD_FLT_GROUP) * 256 + src[level];
		e = bpf_map_lookup_elem(&flt_v4_tbl8, &k);
	}
	return e && !(*e & FWD_FLT_GROUP) ? *e : 0;
}

struct v6_walk {
	struct fwd_flt_v6_key key;
	__u8 src[16];
	__u32 half;
	__u32 found;
};

/* One prefix length, longest first; stops the walk on a hit. A bpf_loop
 * callback is verified once, whatever the number of lengths. */
static long v6_step(__u32 i, void *arg)
{
	struct v6_walk *w = arg;
	__u32 li = w->half * FWD_FLT_MAX_V6_LENGTHS + (i & (FWD_FLT_MAX_V6_LENGTHS - 1));
	__u8 *len = bpf_map_lookup_elem(&flt_v6_lengths, &li);
	__u32 *v;

	if (len == NULL)
		return 1;
	w->key.len = *len;
	for (int b = 0; b < 16; b++) {
		int keep = (int)*len - b * 8;

		w->key.addr[b] = keep >= 8   ? w->src[b]
				 : keep <= 0 ? 0
					     : w->src[b] & (__u8)(0xff << (8 - keep));
	}
	v = bpf_map_lookup_elem(&flt_v6, &w->key);
	if (v == NULL)
		return 0;
	w->found = *v;
	return 1;
}

static __always_inline __u32 lookup_v6(__u32 half, __u32 nlen, const __u8 *src)
{
	struct v6_walk w = {.key = {.half = (__u8)half}, .half = half};

	__builtin_memcpy(w.src, src, 16);
	if (nlen > FWD_FLT_MAX_V6_LENGTHS)
		nlen = FWD_FLT_MAX_V6_LENGTHS;
	bpf_loop(nlen, v6_step, &w, 0);
	return w.found;
}

/* The rule (id + 1) of the longest prefix holding the source, 0 for none;
 * *@hit the prefix's index (+ 1), the key of its rate state. */
static __always_inline __u32 prefix_rule(__u32 half, const struct fwd_flt_half *h,
					 const struct fwd_pkt *p, __u32 *hit)
{
	__u16 *rid;
	__u32 k;

	*hit = p->family == 4 ? lookup_v4(half, p->src) : lookup_v6(half, h->n_v6_lengths, p->src);
	if (*hit == 0)
		return 0;
	k = *hit - 1; /* the loader offsets indexes by half already */
	rid = bpf_map_lookup_elem(&flt_prefix_rule, &k);
	return rid ? (__u32)*rid + 1 : 0;
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;
	__u32 zero = 0, rule = 0, half, hit = 0;
	struct fwd_flt_cfg *cfg = bpf_map_lookup_elem(&flt_cfg, &zero);
	const struct fwd_flt_half *h;
	struct fwd_flt_rule *r = NULL;
	struct fwd_pkt p;
	int rc, action, malformed = 0;

	if (cfg == NULL || loaded_by_regiond > 1) /* the latter never: see its definition */
		return XDP_PASS; /* not configured: fail open */
	/* The one read of flt_cfg (volatile: one load, never taken again
	 * later): everything else this packet is decided by is of the same
	 * half, rules and policies alike. */
	half = *(volatile __u32 *)&cfg->active & 1;
	h = bpf_map_lookup_elem(&flt_half, &half);
	if (h == NULL)
		return XDP_PASS; /* cannot happen: an array of two */
	p.family = 0; /* set by the parser with the addresses, as it reads them */
	rc = fwd_parse(data, end, &p);
	if (rc != FWD_OK) {
		int non_ip = rc == FWD_ERR(NON_IP);
		__u8 m = h->malformed_action, unseen = FWD_FLT_MALFORMED_UNSEEN_SOURCE;

		/* A source-prefix rule that drops holds for every IP packet
		 * whose addresses were read, however broken the rest: a
		 * hostile probe got a dropped prefix's packets to the kernel,
		 * which takes them, with nine IPv6 destination-options headers
		 * (a chain the parser calls malformed, which passes by
		 * default). A rate rule limits them as it limits whole ones,
		 * then its conforming share meets the malformed policy (never
		 * the AF_XDP redirect, nor past `malformed: drop`); under a
		 * pass rule the malformed policy decides. */
		if (!non_ip && (p.family == 4 || p.family == 6)) {
			rule = prefix_rule(half, h, &p, &hit);
			if (rule) {
				__u32 k = half * FWD_FLT_MAX_RULES + rule - 1;

				r = bpf_map_lookup_elem(&flt_rules, &k);
				if (r && (r->action == FWD_FLT_DROP || r->action == FWD_FLT_RATE)) {
					count(FWD_FLT_CNT_PREFIX_HIT);
					malformed = 1;
					goto decide;
				}
				unseen = 0; /* a pass rule decides before services */
			} else {
				unseen = FWD_FLT_MALFORMED_UNSEEN_PORTS;
			}
			rule = 0;
			r = NULL;
		}
		count(non_ip ? FWD_FLT_CNT_NON_IP : FWD_FLT_CNT_MALFORMED);
		/* What the rules might drop, unread, is dropped (see
		 * FWD_FLT_MALFORMED_UNSEEN_PORTS). */
		action = non_ip		? h->non_ip_action
			 : (m & unseen) ? FWD_FLT_DROP
					: m & FWD_FLT_MALFORMED_ACTION;
		count(action == FWD_FLT_DROP ? FWD_FLT_CNT_DROP : FWD_FLT_CNT_PASS);
		if (action != FWD_FLT_DROP)
			return XDP_PASS;
		capture_drop(ctx, non_ip ? FWD_FLT_WHY_NON_IP : FWD_FLT_WHY_MALFORMED, 0,
			     h->generation);
		return XDP_DROP;
	}
	rule = prefix_rule(half, h, &p, &hit);
	if (rule)
		count(FWD_FLT_CNT_PREFIX_HIT);
	if (rule == 0 && p.frag != FWD_FRAG_LATER) {
		int pi = p.proto == FWD_PROTO_TCP    ? 0
			 : p.proto == FWD_PROTO_UDP  ? 1
			 : p.proto == FWD_PROTO_SCTP ? 2
						     : -1;

		if (pi >= 0) {
			__u32 k = half * 3 * 65536 + (__u32)pi * 65536 + p.dport;
			__u16 *rid = bpf_map_lookup_elem(&flt_ports, &k);

			if (rid && *rid) {
				rule = *rid;
				count(FWD_FLT_CNT_SERVICE_HIT);
			}
		}
	}
decide:
	if (rule == 0) {
		count(FWD_FLT_CNT_DEFAULT);
		action = h->default_action;
	} else {
		__u32 k = half * FWD_FLT_MAX_RULES + rule - 1;
		__u32 sk = rule - 1;
		struct fwd_flt_rule_stats *st = bpf_map_lookup_elem(&flt_rule_stats, &sk);

		r = bpf_map_lookup_elem(&flt_rules, &k);
		action = r ? r->action : h->default_action;
		if (action == FWD_FLT_RATE) {
			/* GCRA: a packet conforms if the next theoretical arrival
			 * time is at most (burst - 1) intervals ahead of now, so
			 * exactly 'burst' packets pass back to back, then one per
			 * interval. Prefix rules only (validated): hit names the
			 * source prefix, and each prefix has its own state. */
			__u32 bk = hit - 1;
			struct fwd_flt_bucket *b = bpf_map_lookup_elem(&flt_buckets, &bk);
			__u64 now = bpf_ktime_get_ns(), interval, tau;

			action = FWD_FLT_DROP;
			if (b && r && r->rate_pps) {
				interval = 1000000000ull / r->rate_pps;
				tau = interval * (r->burst > 1 ? r->burst - 1 : 0);
				bpf_spin_lock(&b->lock);
				if (b->tat_ns < now)
					b->tat_ns = now;
				if (b->tat_ns - now <= tau) {
					b->tat_ns += interval;
					action = FWD_FLT_PASS;
				}
				bpf_spin_unlock(&b->lock);
			}
			if (action == FWD_FLT_DROP)
				count(FWD_FLT_CNT_RATE_LIMITED);
		}
		if (st) {
			st->packets++;
			st->bytes += (__u64)(end - data);
		}
	}
	/* A malformed packet its rate rule let by: the malformed policy. */
	if (malformed && action != FWD_FLT_DROP) {
		count(FWD_FLT_CNT_MALFORMED);
		if ((h->malformed_action & FWD_FLT_MALFORMED_ACTION) == FWD_FLT_DROP) {
			count(FWD_FLT_CNT_DROP);
			capture_drop(ctx, FWD_FLT_WHY_MALFORMED, 0, h->generation);
			return XDP_DROP;
		}
		count(FWD_FLT_CNT_PASS);
		return XDP_PASS;
	}
	count(action == FWD_FLT_DROP ? FWD_FLT_CNT_DROP : FWD_FLT_CNT_PASS);
	if (action == FWD_FLT_DROP) {
		capture_drop(ctx,
			     rule == 0			      ? FWD_FLT_WHY_DEFAULT
			     : r && r->action == FWD_FLT_RATE ? FWD_FLT_WHY_RATE
							      : FWD_FLT_WHY_RULE,
			     rule, h->generation);
		return XDP_DROP;
	}
	/* A destination no router forwards (broadcast, multicast, link-local:
	 * neighbour discovery, DHCP) is the kernel's, also when the fast path
	 * takes the rest: it drops them (martian_destination), and a review
	 * found the host's own neighbour solicitations sent there. So is an
	 * IPv6 link-scoped source to a unicast address: neighbour
	 * unreachability detection from fe80:: to this host's global address.
	 * Other martian sources go on to the fast path, which drops and counts
	 * them (martian_source): the kernel, forwarding by its own routes,
	 * would not (169.254/16 and 240/4 are no martians of Linux's). */
	if (h->redirect && (p.family == 4 ? fwd_martian4(p.dst)
					  : fwd_martian6(p.dst) || fwd_src6_link_scoped(p.src)))
		return XDP_PASS;
	if (h->redirect) {
		/* To the fast path's socket on this queue; with no socket there
		 * the packet goes to the kernel (the XDP_PASS fallback), which
		 * to_afxdp does not count: it once counted every attempt. */
		long act = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);

		if (act == XDP_REDIRECT)
			count(FWD_FLT_CNT_TO_AFXDP);
		return (int)act;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
