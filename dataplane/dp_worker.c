#include "dp_worker.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>

#include "fwd_pktops.h"
#include "fwd_residency.h"

#define PREFETCH_AHEAD 4

#ifdef DP_WORKER_STAGE_TSC
uint64_t dp_stage_cycles[DP_STAGE_MAX], dp_stage_marks[DP_STAGE_MAX];
static uint64_t stage_last;

static inline uint64_t stage_tsc(void)
{
#if defined(RTE_ARCH_X86)
	__builtin_ia32_lfence(); /* the stage's instructions have completed */
	return rte_rdtsc();
#else
	return rte_rdtsc_precise();
#endif
}

void dp_stage_begin(void)
{
	stage_last = stage_tsc();
}

static inline void stage_mark(enum dp_stage k)
{
	uint64_t t = stage_tsc();

	dp_stage_cycles[k] += t - stage_last;
	dp_stage_marks[k]++;
	stage_last = t;
}
#define STAGE_MARK(k) stage_mark(k)
#else
#define STAGE_MARK(k) ((void)0)
#endif

/* Sequence count around a burst's accounting. The worker is the only writer.
 * The odd store is relaxed; the release fence after it keeps the counter
 * writes that follow from being seen before it. Release on the even store
 * publishes them. A reader copies between two acquire loads of
 * an equal even value (dp_counters_read). On x86 these are plain stores;
 * the orders only stop the compiler from moving counter writes across. */
static inline void cnt_open(struct dp_counters *c)
{
	__atomic_store_n(&c->seq, c->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void cnt_close(struct dp_counters *c)
{
	__atomic_store_n(&c->seq, c->seq + 1, __ATOMIC_RELEASE);
}

/* A burst takes a microsecond or two, all of it but its receive inside
 * the count, so a reader usually finds the count even and unchanged within
 * a few tries: it spins that long, then yields the CPU between tries (the
 * worker may be preempted mid-accounting on a shared core). It waits as
 * long as it takes: a bound with a field-by-field copy after it (a182def)
 * gave sums a burst off under the suite's load, the reader's copy outlasting
 * the receive between two bursts for over a second at full rate (the
 * dataplane tier's rx = tx + dropped checks caught it twice), and each sum
 * must hold exactly. A worker stuck inside an accounting would hold the
 * reader with it (docs/architecture.md, counters). */
#define CNT_READ_SPINS 1024

void dp_counters_read(const struct dp_counters *c, struct dp_counters *out)
{
	for (unsigned t = 0;; t++) {
		uint64_t s1 = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE), s2;

		if (!(s1 & 1)) {
			memcpy(out, c, sizeof(*out));
			/* The copy above must complete before seq is read again. */
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			s2 = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
			if (s1 == s2)
				return;
		}
		if (t < CNT_READ_SPINS)
			rte_pause();
		else
			sched_yield();
	}
}

static inline void drop_pkt(struct dp_lcore *lc, struct rte_mbuf *m, enum fwd_drop reason)
{
	lc->cnt.drop[reason]++;
	rte_pktmbuf_free(m);
}

/*
 * A running capture (dp_cap.h) and packet @m, before it is sent or freed:
 * @drop is 0 (it leaves on d->link) or 1 + its drop reason; @d is the
 * decision, NULL when the parser dropped it; @classified says whether d's
 * region, service and policy are this generation's. A packet the capture
 * matches is copied into the capture's pool, its verdict in the copy's
 * private area, onto this worker's ring; a full pool or ring is counted
 * (capture_overflow), never waited for. Out of line: only bursts of a
 * running capture call it.
 */
static __rte_noinline void capture_pkt(struct dp_lcore *lc, const struct dp_capture *cap,
				       const struct dp_gen *g, struct rte_mbuf *m,
				       const struct fwd_decision *d, int classified, uint8_t drop)
{
	struct rte_mbuf *c;
	struct dp_cap_rec *r;

	if ((cap->drops_only && !drop) || (cap->reason && cap->reason != drop))
		return;
	if ((cap->region_key || cap->service_key) &&
	    (!classified || (cap->region_key && g->region_keys[d->region] != cap->region_key) ||
	     (cap->service_key && g->service_keys[d->service] != cap->service_key)))
		return;
	if (cap->link_key && (drop || d == NULL || d->link == FWD_LINK_NONE ||
			      g->link_keys[d->link] != cap->link_key))
		return;
	if (cap->bpf != NULL && (cap->jit ? cap->jit(m) : rte_bpf_exec(cap->bpf, m)) == 0)
		return;
	if (cap->count) {
		if (lc->cap_id != cap->id) {
			lc->cap_id = cap->id;
			lc->cap_n = 0;
		}
		if (lc->cap_n >= cap->count)
			return; /* this worker has given the capture all it asked for */
	}
	c = rte_pktmbuf_copy(m, cap->pool, 0, UINT32_MAX);
	if (unlikely(c == NULL)) {
		lc->cnt.evt[FWD_EVT_CAPTURE_OVERFLOW]++;
		return;
	}
	r = rte_mbuf_to_priv(c);
	r->g = g;
	r->tsc = rte_rdtsc();
	r->worker = lc->idx;
	r->drop = drop;
	r->classified = classified && d != NULL;
	r->region = d ? d->region : 0;
	r->service = d ? d->service : 0;
	r->policy = d ? d->policy : 0;
	r->link = d && !drop ? d->link : FWD_LINK_NONE;
	r->mirror = d ? d->mirror : FWD_LINK_NONE;
	if (unlikely(rte_ring_sp_enqueue(lc->cap_ring, c) != 0)) {
		rte_pktmbuf_free(c);
		lc->cnt.evt[FWD_EVT_CAPTURE_OVERFLOW]++;
		return;
	}
	lc->cnt.evt[FWD_EVT_CAPTURED]++;
	lc->cap_n++;
}

/* Stage 1's drop of packet @i (@m) of the burst: counted and freed, or,
 * while a capture runs, held for stage 3 (parser_drop_captured), which
 * copies it in its place in the burst. Copied here, a burst's parser
 * drops came ahead of the packets before them in the capture, a false
 * arrival order (out-of-order TCP to tshark that never happened). */
static __rte_always_inline void parser_drop(struct dp_lcore *lc, struct rte_mbuf *m, size_t i,
					    enum fwd_drop why)
{
	if (unlikely(lc->cap != NULL)) {
		lc->cap_held[i] = m;
		lc->cap_held_drop[i] = (uint8_t)(1 + why);
		return;
	}
	drop_pkt(lc, m, why);
}

/* Stage 3 of a capture's burst, at packet @i, which the parser dropped:
 * copied (if the capture takes it) where it came, then counted and freed. */
static __rte_noinline void parser_drop_captured(struct dp_lcore *lc, const struct dp_gen *g,
						const struct dp_capture *cap, size_t i)
{
	struct rte_mbuf *m = lc->cap_held[i];

	if (m == NULL)
		return;
	lc->cap_held[i] = NULL;
	capture_pkt(lc, cap, g, m, NULL, 0, lc->cap_held_drop[i]);
	drop_pkt(lc, m, (enum fwd_drop)(lc->cap_held_drop[i] - 1));
}

/* Replace whatever L2 header the packet came with (Ethernet and up to two
 * VLAN tags) by the link's template for the family: next-hop MAC, port MAC,
 * optional 802.1Q tag, EtherType. The usual case (untagged in, untagged out)
 * moves no data pointer and copies 14 bytes of constant size. */
static inline int rewrite_l2(struct rte_mbuf *m, uint16_t old_l2, uint8_t family,
			     const struct dp_link_out *o)
{
	const uint8_t *h = o->hdr[family == 6];
	uint8_t *eth;

	if (likely(old_l2 == 14 && o->hdr_len == 14)) {
		memcpy(rte_pktmbuf_mtod(m, uint8_t *), h, 14);
		return 0;
	}
	if (old_l2 > o->hdr_len)
		eth = (uint8_t *)rte_pktmbuf_adj(m, (uint16_t)(old_l2 - o->hdr_len));
	else if (old_l2 < o->hdr_len)
		eth = (uint8_t *)rte_pktmbuf_prepend(m, (uint16_t)(o->hdr_len - old_l2));
	else
		eth = rte_pktmbuf_mtod(m, uint8_t *);
	if (unlikely(eth == NULL))
		return -1;
	if (o->hdr_len == 18)
		memcpy(eth, h, 18);
	else
		memcpy(eth, h, 14);
	return 0;
}

_Static_assert(FWD_MAX_LINKS <= DP_TX_MIRROR, "link ids must leave the mirror bit free");

static inline void stage_tx(struct dp_lcore *lc, struct rte_mbuf *m, const struct dp_link_out *o,
			    uint16_t link)
{
	struct dp_txq_stage *s = &lc->tx[o->port_id];
	uint16_t k = s->n;

	if (k == 0)
		lc->dirty[lc->ndirty++] = o->port_id;
	s->m[k] = m;
	s->link[k] = link;
	s->len[k] = rte_pktmbuf_pkt_len(m);
	s->n = (uint16_t)(k + 1);
}

/* A stage with mirror copies or a short send: account packet by packet.
 * Unsent originals are dropped as tx_full (port_down while @port reports
 * its link down), unsent copies counted as mirror_fail. */
static __rte_noinline void flush_tx_slow(struct dp_lcore *lc, struct dp_gen_cnt *gc,
					 struct dp_txq_stage *s, uint16_t sent, uint16_t port)
{
	const enum fwd_drop unsent =
		sent < s->n && __atomic_load_n(&lc->pub->port_down[port], __ATOMIC_RELAXED)
			? FWD_DROP_PORT_DOWN
			: FWD_DROP_TX_FULL;

	for (uint16_t k = 0; k < s->n; k++) {
		if (s->link[k] & DP_TX_MIRROR) {
			if (k < sent) {
				lc->cnt.evt[FWD_EVT_MIRROR_TX]++;
			} else {
				lc->cnt.evt[FWD_EVT_MIRROR_FAIL]++;
				rte_pktmbuf_free(s->m[k]);
			}
			continue;
		}
		if (k < sent) {
			lc->cnt.tx++;
			lc->cnt.tx_bytes += s->len[k];
			gc->link[s->link[k]].pkts++;
			gc->link[s->link[k]].bytes += s->len[k];
		} else {
			drop_pkt(lc, s->m[k], unsent);
		}
	}
}

static inline void flush_tx(struct dp_lcore *lc, struct dp_gen_cnt *gc)
{
	for (uint16_t d = 0; d < lc->ndirty; d++) {
		uint16_t port = lc->dirty[d];
		struct dp_txq_stage *s = &lc->tx[port];
		uint16_t sent;

		STAGE_MARK(DP_STAGE_FORWARD);
		sent = rte_eth_tx_burst(port, lc->idx, s->m, s->n);
		STAGE_MARK(DP_STAGE_TX);
		if (likely(sent == s->n && s->nmirror == 0)) {
			/* A stage that holds one link (the usual case) is summed in
			 * registers: incrementing the link's counters in memory per
			 * packet would chain every packet through a store and its
			 * reload. A stage of mixed links is counted per packet; its
			 * increments mostly hit different links. */
			struct dp_pb *cnt_link = gc->link;
			const uint16_t link0 = s->link[0];
			uint16_t mixed = 0;
			uint64_t bytes = 0;

			/* Unrolled (here and below): the loop's own increment,
			 * compare and branch were a third of its instructions. */
#pragma GCC unroll 4
			for (uint16_t k = 0; k < sent; k++) {
				mixed |= s->link[k] ^ link0;
				bytes += s->len[k];
			}
			if (likely(mixed == 0)) {
				cnt_link[link0].pkts += sent;
				cnt_link[link0].bytes += bytes;
			} else {
#pragma GCC unroll 4
				for (uint16_t k = 0; k < sent; k++) {
					cnt_link[s->link[k]].pkts++;
					cnt_link[s->link[k]].bytes += s->len[k];
				}
			}
			lc->cnt.tx += sent;
			lc->cnt.tx_bytes += bytes;
		} else {
			flush_tx_slow(lc, gc, s, sent, port);
		}
		s->nmirror = 0;
		s->n = 0;
		STAGE_MARK(DP_STAGE_TX_COUNT);
	}
	lc->ndirty = 0;
}

static inline void mirror_pkt(struct dp_lcore *lc, const struct dp_gen *g, struct rte_mbuf *m,
			      const struct fwd_pkt *p, uint16_t link)
{
	struct rte_mbuf *c = rte_pktmbuf_copy(m, lc->pool, 0, UINT32_MAX);

	if (unlikely(c == NULL)) {
		lc->cnt.evt[FWD_EVT_MIRROR_FAIL]++;
		return;
	}
	if (unlikely(rewrite_l2(c, p->l2_len, p->family, &g->links[link]))) {
		lc->cnt.evt[FWD_EVT_MIRROR_FAIL]++;
		rte_pktmbuf_free(c);
		return;
	}
	stage_tx(lc, c, &g->links[link], (uint16_t)(link | DP_TX_MIRROR));
	lc->tx[g->links[link].port_id].nmirror++;
}

/* Whether some packet of the burst is in a content rule's scope: the scope
 * bytes of its cells ORed (dp_content_scope() is indexed by cell), a load
 * and an OR a packet, in L1 by now. Traffic outside every scope pays this
 * instead of content_prepare()'s loop. */
static __rte_always_inline int burst_in_scope(const struct dp_content *cs,
					      struct rte_mbuf *const *pkts, const uint32_t *cell,
					      uint16_t n, const int plain4)
{
	uint8_t any = 0;

	for (uint16_t i = 0; i < n; i++)
		if (plain4 || likely(pkts[i] != NULL)) /* NULL: dropped, its cell unset */
			any |= cs->scope[cell[i]];
	return any != 0;
}

/* Stage 3's first step when the generation has content rules: every packet
 * of the burst in some rule's scope (not a fragment: those are decided in
 * order, by decide_slow) gets its input in lc->cin, and the burst's names
 * are extracted and their lookups started together (dp_content.h), so one
 * packet's cache misses overlap the others' work. content_stage() finishes
 * each packet's scan where it is forwarded; nothing is counted here. A
 * packet whose TCP header is bad is left unprepared: content_stage()
 * counts it. */
static __rte_noinline void content_prepare(struct dp_lcore *lc, const struct dp_gen *g,
					   struct rte_mbuf **pkts, const struct fwd_pkt *meta,
					   const uint64_t *nh, const uint32_t *cell, uint16_t n)
{
	const struct dp_content *cs = g->content;
	struct dp_gen_cnt *gc = (struct dp_gen_cnt *)&g->cnt[lc->idx];
	int any = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct dp_content_input *in = &lc->cin[i];
		const struct fwd_pkt *p = &meta[i];
		const uint16_t region = (uint16_t)nh[i];
		uint16_t service;
		const uint8_t *data;
		uint8_t fields, tcp_flags;

		in->fields = 0;
		if (pkts[i] == NULL || p->frag != FWD_FRAG_NONE)
			continue;
		/* the cell is region * nservices + service (fwd_class_cell) */
		service = (uint16_t)(cell[i] - (uint32_t)region * g->cls->nservices);
		fields = dp_content_scope(cs, region, service);
		if (fields == 0)
			continue;
		data = rte_pktmbuf_mtod(pkts[i], const uint8_t *);
		if (fwd_l4_payload(data, data + rte_pktmbuf_data_len(pkts[i]), p, &in->payload,
				   &in->len, &tcp_flags))
			continue;
		*in = (struct dp_content_input){.fields = fields,
						.proto = p->proto,
						.region = region,
						.service = service,
						.payload = in->payload,
						.len = in->len,
						.match_cnt = gc->content_match,
						.top = cs->top[lc->idx]};
		any = 1;
	}
	if (any)
		dp_content_prepare(cs, lc->cin, lc->cprep, n);
}

/* A packet in some content rule's scope: a TCP flow already decided takes
 * its verdict; anything else is scanned (finished, when content_prepare()
 * staged it as @pin), and a TCP verdict is remembered. Out of line:
 * unscoped traffic only pays the scope byte in stage 3. */
static __rte_noinline void content_stage(struct dp_lcore *lc, const struct dp_gen *g,
					 const struct rte_mbuf *m, const struct fwd_pkt *p,
					 struct fwd_decision *d, uint8_t fields, uint64_t now,
					 const struct dp_content_input *pin,
					 struct dp_content_prep *pprep)
{
	const struct dp_content *cs = g->content;
	struct dp_gen_cnt *gc = (struct dp_gen_cnt *)&g->cnt[lc->idx];
	const uint8_t *data = rte_pktmbuf_mtod(m, const uint8_t *);
	struct dp_content_input in = {.fields = fields,
				      .proto = p->proto,
				      .region = d->region,
				      .service = d->service,
				      .match_cnt = gc->content_match,
				      .top = cs->top[lc->idx]};
	struct dp_content_verdict v;
	struct dp_flow_key k;
	uint8_t tcp_flags;
	uint32_t pinned = DP_CONTENT_NONE;

	if (p->proto == FWD_PROTO_TCP) {
		struct dp_flow_entry *e;

		dp_flow_key_of(p, &k);
		e = dp_flow_lookup(&lc->flow, &k, now);
		if (e != NULL) {
			/* Decided under an earlier generation: the same rule by name
			 * and by what it matches (its key), if this generation still
			 * has it and it still scopes the packet's region and
			 * service; otherwise scan afresh. A rule this generation
			 * narrowed away from the flow must not act on it: its
			 * mirror or steer was validated (residency included) only
			 * for the scope it has now. */
			uint32_t rule = e->gen == g->seq ? e->rule
							 : dp_content_rule_by_key(cs, e->rule_key);

			if (rule != DP_CONTENT_NONE && e->gen != g->seq &&
			    !dp_content_rule_scopes(cs, rule, d->region, d->service))
				rule = DP_CONTENT_NONE;
			/* A drop is final: the rest of the flow follows it unscanned.
			 * Any other verdict keeps the flow on its link and mirror,
			 * but each packet is still scanned for a drop: an HTTP/1.1
			 * connection carries a Host per request, DNS over TCP a
			 * question per query, and a signature may come in any
			 * segment (a hostile probe: a first request whose Host
			 * only a count rule matched let the next request, Host
			 * evil.example, pass a drop rule unscanned). */
			if (rule != DP_CONTENT_NONE &&
			    dp_content_table(cs)->content[rule].action == FWD_CA_DROP) {
				lc->cnt.evt[FWD_EVT_CONTENT_FLOW_HIT]++;
				gc->content_flow[rule]++;
				dp_content_act(cs, g->cls, p, rule, d);
				return;
			}
			pinned = rule;
		}
	}
	if (pin != NULL && pin->fields == fields) {
		lc->cnt.evt[FWD_EVT_CONTENT_SCANNED]++;
		dp_content_scan_prepared(cs, cs->scratch[lc->idx], pin, pprep, &v);
	} else {
		if (unlikely(fwd_l4_payload(data, data + rte_pktmbuf_data_len(m), p, &in.payload,
					    &in.len, &tcp_flags))) {
			lc->cnt.evt[FWD_EVT_CONTENT_BAD_TCP]++;
			v.rule = DP_CONTENT_NONE;
			goto follow; /* not scanned; a decided flow keeps its verdict */
		}
		lc->cnt.evt[FWD_EVT_CONTENT_SCANNED]++;
		dp_content_scan(cs, cs->scratch[lc->idx], &in, &v);
	}
	if (unlikely(v.scan_error))
		lc->cnt.evt[FWD_EVT_CONTENT_SCAN_ERROR]++;
	if (unlikely(dp_content_any_unreadable(&v)))
		lc->cnt.evt[FWD_EVT_CONTENT_UNREADABLE]++;
follow:
	/* A decided flow: its verdict, unless this packet matched a drop,
	 * which then decides the flow from here on. */
	if (pinned != DP_CONTENT_NONE &&
	    (v.rule == DP_CONTENT_NONE ||
	     dp_content_table(cs)->content[v.rule].action != FWD_CA_DROP)) {
		lc->cnt.evt[FWD_EVT_CONTENT_FLOW_HIT]++;
		gc->content_flow[pinned]++;
		dp_content_act(cs, g->cls, p, pinned, d);
		return;
	}
	if (v.rule == DP_CONTENT_NONE)
		return;
	dp_content_act(cs, g->cls, p, v.rule, d);
	if (p->proto == FWD_PROTO_TCP) {
		/* A flow decided again (as dropped) is the same flow: counted once. */
		lc->cnt.evt[FWD_EVT_CONTENT_FLOW_NEW] += pinned == DP_CONTENT_NONE;
		if (dp_flow_insert(&lc->flow, &k, g->seq, v.rule, cs->rule_keys[v.rule], now))
			lc->cnt.evt[FWD_EVT_CONTENT_FLOW_EVICTED]++;
	}
}

/* The decision for a fragment (the common path handles everything else).
 * First fragments are remembered; later fragments take the decision of
 * their first fragment, which precedes them in arrival order and so is
 * already in the table even when it came in this very burst.
 * @return 0 decided (counted as usual), 1 decided but not counted per
 *         region/service/policy, -1 to be dropped as d->drop - 1 (the
 *         caller frees it, after a capture's copy) */
static __rte_noinline int decide_slow(struct dp_lcore *lc, const struct dp_gen *g,
				      struct rte_mbuf *m, const struct fwd_pkt *p, uint16_t region,
				      struct fwd_decision *d, uint64_t *now)
{
	if (*now == 0)
		*now = rte_rdtsc();
	if (p->frag == FWD_FRAG_LATER) {
		struct dp_frag_key k;
		const struct dp_frag_entry *e;
		uint16_t l;

		dp_frag_key_of(p, &k);
		e = dp_frag_lookup(&lc->frag, &k, *now);
		if (e == NULL) {
			d->drop = 1 + FWD_DROP_FRAG_NO_FIRST;
			d->link = d->mirror = FWD_LINK_NONE;
			return -1;
		}
		*d = e->d;
		lc->cnt.evt[FWD_EVT_FRAG_FOLLOWED]++;
		if (likely(e->gen == g->seq)) {
			/* This fragment is the first one's datagram only by
			 * the key, which an IPv4 id used again within the
			 * timeout or a spoofed first fragment shares: its own
			 * service is unknown. It leaves, or is copied, only
			 * where every rule holding its region allows; a web
			 * datagram's first fragment once led a sync datagram's
			 * rest out of region (a red team). Its region is the
			 * first fragment's: the same source, in this
			 * generation. */
			if (unlikely(g->table->nresidency != 0)) {
				if (d->mirror != FWD_LINK_NONE &&
				    !fwd_residency_frag_may_carry(g->table, d->region, d->mirror))
					d->mirror = FWD_LINK_NONE;
				if (d->link != FWD_LINK_NONE &&
				    !fwd_residency_frag_may_carry(g->table, d->region, d->link)) {
					d->drop = 1 + FWD_DROP_FRAG_RESIDENCY;
					d->link = FWD_LINK_NONE;
					return 1;
				}
			}
			return 0;
		}
		/* Decided by an earlier generation: follow the same link by name,
		 * if this generation still has it up. Its region, service and
		 * policy ids mean nothing here: not counted. */
		lc->cnt.evt[FWD_EVT_FRAG_ACROSS_GEN]++;
		l = d->drop ? FWD_LINK_NONE : dp_gen_link_by_key(g, e->link_key);
		d->mirror = e->mirror_key ? dp_gen_link_by_key(g, e->mirror_key) : FWD_LINK_NONE;
		/* A mirror link that is down is skipped, as a policy's is. */
		if (d->mirror != FWD_LINK_NONE && !g->table->links[d->mirror].up)
			d->mirror = FWD_LINK_NONE;
		/* The name may now stand for a link this generation's residency
		 * rules keep the datagram's traffic off (the link was given other
		 * tags, or a rule came): the datagram, as this generation
		 * classifies it (this fragment's source, the first one's
		 * protocol and port), must be allowed there, else the rest of
		 * it is dropped under a reason of its own (frag_residency: the
		 * operator sees residency at work, not a link down), and no copy
		 * goes to a link the rules refuse (a mirror they allow still gets
		 * one, as a dropped packet's mirror does: table-format.md). */
		if (g->table->nresidency && (l != FWD_LINK_NONE || d->mirror != FWD_LINK_NONE)) {
			uint16_t s = fwd_class_service(g->cls, e->proto, e->dport);
			/* The source's region in this generation: a later
			 * fragment's @region is not looked up (it takes its first
			 * fragment's decision), and as 'unknown' it was held to
			 * the rules of unknown sources: a table that steered
			 * those to the link let a protected datagram's rest
			 * follow its old link out of region (a red team). */
			uint16_t r = dp_gen_region_of(g, p->family, p->src);

			/* And as any later fragment: held to every rule of
			 * its region, whatever its first fragment's service. */
			if (d->mirror != FWD_LINK_NONE &&
			    (!fwd_residency_link_may_carry(g->table, g->cls, r, s, d->mirror) ||
			     !fwd_residency_frag_may_carry(g->table, r, d->mirror)))
				d->mirror = FWD_LINK_NONE;
			if (l != FWD_LINK_NONE &&
			    (!fwd_residency_link_may_carry(g->table, g->cls, r, s, l) ||
			     !fwd_residency_frag_may_carry(g->table, r, l))) {
				d->drop = 1 + FWD_DROP_FRAG_RESIDENCY;
				d->link = FWD_LINK_NONE;
				return 1;
			}
		}
		if (!d->drop && (l == FWD_LINK_NONE || !g->table->links[l].up)) {
			d->drop = 1 + FWD_DROP_NO_LINK;
			l = FWD_LINK_NONE;
		}
		d->link = l;
		return 1;
	}
	uint8_t fields = 0;

	fwd_class_decide_pkt(g->cls, region, p, d);
	/* Content rules before the fragment table: later fragments then follow
	 * the content verdict of their first fragment too. */
	if (g->content != NULL) {
		fields = dp_content_scope(g->content, d->region, d->service);
		if (fields) /* a first fragment: scanned here, in order */
			content_stage(lc, g, m, p, d, fields, *now, NULL, NULL);
	}
	if (p->frag == FWD_FRAG_FIRST) {
		struct dp_frag_key k;
		const uint8_t *ip = rte_pktmbuf_mtod_offset(m, const uint8_t *, p->l2_len);

		/* One the caller drops as ttl_expired leaves nothing for its
		 * later fragments to follow, as a too_big one does: they went
		 * out, a datagram no one could reassemble (a probe). One a
		 * policy or content rule drops never reaches that check: its
		 * drop (and mirror) is its later fragments' too. */
		if (!d->drop && (p->family == 4 ? ip[8] : ip[7]) <= 1)
			return 0;
		dp_frag_key_of(p, &k);
		lc->cnt.evt[FWD_EVT_FRAG_FIRST]++;
		if (dp_frag_insert(&lc->frag, &k, g->seq, d,
				   d->link != FWD_LINK_NONE ? g->link_keys[d->link] : 0,
				   d->mirror != FWD_LINK_NONE ? g->link_keys[d->mirror] : 0,
				   p->proto, p->dport, fields != 0, *now))
			lc->cnt.evt[FWD_EVT_FRAG_EVICTED]++;
	}
	return 0;
}

/* Stage @m (its frame as sent: @len bytes) for @link, which leaves by o's
 * port, through the register-cached stage of stage3(). */
static __rte_always_inline void stage_cached(struct dp_lcore *lc, struct rte_mbuf *m,
					     const struct dp_link_out *o, uint16_t link,
					     uint32_t len, struct dp_txq_stage **cs,
					     uint16_t *cport, uint16_t *cn)
{
	if (likely(o->port_id == *cport)) {
		(*cs)->m[*cn] = m;
		(*cs)->link[*cn] = link;
		(*cs)->len[*cn] = len;
		(*cn)++;
	} else {
		if (*cs != NULL)
			(*cs)->n = *cn;
		stage_tx(lc, m, o, link);
		*cport = o->port_id;
		*cs = &lc->tx[*cport];
		*cn = (*cs)->n;
	}
}

/* The per-generation state stage 3 reads for every packet, copied into
 * locals: the packet writes go through uint8_t pointers, which may alias
 * anything, so fields read through g->cls or the counters would be reloaded
 * for every packet. Locals whose address never escapes cannot be aliased. */
struct stage3_env {
	struct fwd_class cls;
	const uint16_t *cell_link; /* set for plain bursts */
	struct dp_pb *cnt_cell; /* set for plain bursts */
	struct dp_pb *cnt_region, *cnt_service;
	uint64_t *cnt_policy;
	const struct dp_link_out *links;
	int any_content;
	uint64_t now; /* rdtsc, read once per burst when a content rule needs it */
	/* The stage of the previous packet's egress port, with its fill count
	 * in a register: most bursts leave by one port, so most packets are
	 * staged without stage_tx()'s load and store of the count. The count is
	 * written back before anything else stages (a port change, mirror
	 * copies) and at the end. */
	struct dp_txq_stage *cs;
	uint16_t cport, cn;
};

/* mirror_pkt() beside the register-cached stage: its count is written back
 * first (the copy may go to the same port) and read again after. */
static __rte_always_inline void mirror_cached(struct dp_lcore *lc, const struct dp_gen *g,
					      struct stage3_env *e, struct rte_mbuf *m,
					      const struct fwd_pkt *p, uint16_t mirror)
{
	if (e->cs != NULL)
		e->cs->n = e->cn;
	mirror_pkt(lc, g, m, p, mirror);
	if (e->cs != NULL)
		e->cn = e->cs->n;
}

/* Everything stage 3 does for one packet that is not a plain cell's: decide
 * (fragments through decide_slow), content rules, count, drop, TTL, mirror,
 * L2 rewrite, stage. With a capture (@cap, NULL in the instances that run
 * without one, where its tests fold away), the packet as received and its
 * verdict go to capture_pkt() before it is freed or changed. */
static __rte_always_inline void forward_one(struct dp_lcore *lc, const struct dp_gen *g,
					    struct stage3_env *e, uint16_t i, struct rte_mbuf *m,
					    const struct fwd_pkt *p, uint16_t region,
					    uint16_t service, uint32_t cell, uint16_t pid,
					    const int plain4, const struct dp_capture *cap)
{
	const uint8_t family = plain4 ? 4 : p->family;
	const uint16_t l2_len = plain4 ? 14 : p->l2_len;
	const struct dp_link_out *o;
	struct fwd_decision d;
	uint32_t len = rte_pktmbuf_pkt_len(m);
	int classified = 1; /* d's region, service and policy are this generation's */
	uint8_t *ip;

	if (plain4 || likely(p->frag == FWD_FRAG_NONE)) {
		fwd_class_finish_pkt(&e->cls, region, service, cell, pid, p, &d);
		/* Traffic outside every content rule's scope pays this one byte
		 * load when the table has content rules, else nothing. */
		if (unlikely(e->any_content)) {
			uint8_t fields = dp_content_scope(g->content, d.region, d.service);

			if (fields) {
				struct fwd_decision dc = d;

				if (e->now == 0)
					e->now = rte_rdtsc();
				/* content_prepare() ran for this burst (@i is
				 * the packet's index in it) */
				content_stage(lc, g, m, p, &dc, fields, e->now, &lc->cin[i],
					      &lc->cprep[i]);
				d = dc;
			}
		}
	} else {
		/* Its own variable: d's address never escapes, so the compiler
		 * keeps the common path's decision in registers. */
		struct fwd_decision ds;
		uint64_t now = e->now; /* its own copy: e's address must not escape */
		int rc = decide_slow(lc, g, m, p, region, &ds, &now);

		e->now = now;
		d = ds;
		if (rc < 0) {
			if (cap)
				capture_pkt(lc, cap, g, m, NULL, 0, d.drop);
			drop_pkt(lc, m, (enum fwd_drop)(d.drop - 1));
			return;
		}
		if (rc > 0) {
			classified = 0;
			goto counted;
		}
	}
	if (plain4 || likely(e->cnt_cell != NULL)) { /* one pair per (region, service), dp_gen.h */
		struct dp_pb *c = &e->cnt_cell[d.cell];

		c->pkts++;
		c->bytes += len;
	} else {
		e->cnt_region[d.region].pkts++;
		e->cnt_region[d.region].bytes += len;
		e->cnt_service[d.service].pkts++;
		e->cnt_service[d.service].bytes += len;
		e->cnt_policy[d.policy]++;
	}
counted:
	/* A mirror to the link the packet leaves on (a group's member its flow
	 * hashed to, a content rule's mirror to the cell's link) would send it
	 * there twice: the one packet is the copy, and the capture says no
	 * mirror. A policy's own `to` is refused as its mirror at validation. */
	if (d.mirror == d.link)
		d.mirror = FWD_LINK_NONE;
	if (unlikely(d.drop)) {
		if (cap)
			capture_pkt(lc, cap, g, m, &d, classified, d.drop);
		if (d.mirror != FWD_LINK_NONE)
			mirror_cached(lc, g, e, m, p, d.mirror);
		drop_pkt(lc, m, (enum fwd_drop)(d.drop - 1));
		return;
	}
	/* A capture copies the packet as received: before its TTL and L2
	 * header change. */
	ip = rte_pktmbuf_mtod_offset(m, uint8_t *, l2_len);
	if (family == 4) {
		if (unlikely(ip[8] <= 1)) {
			d.mirror = FWD_LINK_NONE; /* dropped, not copied: the capture says so */
			if (cap)
				capture_pkt(lc, cap, g, m, &d, classified,
					    1 + FWD_DROP_TTL_EXPIRED);
			drop_pkt(lc, m, FWD_DROP_TTL_EXPIRED);
			return;
		}
		if (cap)
			capture_pkt(lc, cap, g, m, &d, classified, 0);
		fwd_ipv4_ttl_dec(ip);
	} else {
		if (unlikely(ip[7] <= 1)) {
			d.mirror = FWD_LINK_NONE; /* dropped, not copied: the capture says so */
			if (cap)
				capture_pkt(lc, cap, g, m, &d, classified,
					    1 + FWD_DROP_TTL_EXPIRED);
			drop_pkt(lc, m, FWD_DROP_TTL_EXPIRED);
			return;
		}
		if (cap)
			capture_pkt(lc, cap, g, m, &d, classified, 0);
		ip[7]--;
	}
	if (unlikely(d.mirror != FWD_LINK_NONE))
		mirror_cached(lc, g, e, m, p, d.mirror);
	o = &e->links[d.link];
	if (likely(l2_len == 14 && o->hdr_len == 14)) {
		/* rewrite_l2()'s usual case, with the family's branch above
		 * already taken: ip - 14 is the frame's start. The length stays
		 * as received. */
		memcpy(ip - 14, o->hdr[family == 6], 14);
	} else if (unlikely(rewrite_l2(m, l2_len, family, o))) {
		drop_pkt(lc, m, FWD_DROP_NO_HEADROOM);
		return;
	} else {
		len = rte_pktmbuf_pkt_len(m); /* tags pushed or popped */
	}
	/* From here len is the frame as it leaves: link and tx bytes. */
	stage_cached(lc, m, o, d.link, len, &e->cs, &e->cport, &e->cn);
}

/* Stage 3's locals for generation @g, whose counters for this worker are
 * @gc; nothing staged yet. */
static __rte_always_inline struct stage3_env stage3_env_of(const struct dp_gen *g,
							   struct dp_gen_cnt *gc)
{
	return (struct stage3_env){
		.cls = *g->cls,
		.cell_link = g->cell_link,
		.cnt_cell = gc->cell,
		.cnt_region = gc->region,
		.cnt_service = gc->service,
		.cnt_policy = gc->policy,
		.links = g->links,
		.any_content = g->content != NULL,
		.cs = NULL,
		.cport = UINT16_MAX,
		.cn = 0,
	};
}

/* forward_one() with locals of its own, for a loop that calls it rarely:
 * out of line, so that the loop keeps its state in registers. The caller
 * writes its cached stage count back first and reads it again after. */
static __rte_noinline void forward_general(struct dp_lcore *lc, const struct dp_gen *g, uint16_t i,
					   struct rte_mbuf *m, const struct fwd_pkt *p,
					   uint16_t region, uint16_t service, uint32_t cell,
					   uint16_t pid)
{
	struct stage3_env e = stage3_env_of(g, (struct dp_gen_cnt *)&g->cnt[lc->idx]);

	forward_one(lc, g, &e, i, m, p, region, service, cell, pid, 0, NULL);
	if (e.cs != NULL)
		e.cs->n = e.cn;
}

/*
 * Stage 3: decide, account, TTL, rewrite, stage for TX, in arrival order (so
 * a first fragment is decided before its later fragments). Always inlined
 * four times: with @plain4 set when stage 1 found every packet of the
 * burst to be untagged IPv4 without options, not a fragment, TCP or UDP
 * (the usual burst) and the generation counts per cell (g->cell_link set),
 * so those tests fold away; with @plain4 and @mixed when the fast path took
 * every packet but some were IPv6 (untagged, no extension headers: its
 * plain-cell loop takes the family from each packet's fwd_pkt) and some cell
 * has a link (dp_gen.any_cell_link); without, for
 * everything else; and, when a capture runs (@cap not NULL), without @plain4
 * and with the capture's copies, so that the others carry no capture test
 * at all.
 */
static __rte_always_inline void stage3(struct dp_lcore *lc, const struct dp_gen *g,
				       struct rte_mbuf **pkts, const struct fwd_pkt *meta,
				       const uint64_t *nh, uint16_t n, const int plain4,
				       const int mixed, const struct dp_capture *cap)
{
	struct dp_gen_cnt *gc = (struct dp_gen_cnt *)&g->cnt[lc->idx];
	struct stage3_env e = stage3_env_of(g, gc);
	uint32_t cell[FWD_BURST];
	/* Plain bursts: each packet's cell counters, found in the bulk loop
	 * (which prefetches them): the plain-cell loop then keeps no register
	 * for their base, and its other state stays in registers (callgrind:
	 * two stack loads a packet fewer). */
	struct dp_pb *cc[FWD_BURST];
	/* lk[n] is a sentinel: the plain-cell loop below stops at it without
	 * testing i < n for every packet. */
	uint16_t svc[FWD_BURST], pid[FWD_BURST], lk[FWD_BURST + 1];

	/* Bulk classification: service, matrix cell and policy (or, for a plain
	 * burst, the cell's link) of every packet first, in a loop short enough
	 * for the CPU to keep the loads of many packets in flight (the port,
	 * matrix and counter tables of a big table do not fit in L1); the
	 * counter cells are prefetched for the pass below. Unrolled by four,
	 * as the TX accounting loops are. The indices of this loop, of the
	 * plain-cell loop and of stage 1 are as wide as the addresses they
	 * form: a narrower one was copied or extended for its loads and
	 * stores (callgrind: 1.5 to 3.3 instructions a packet, see
	 * docs/benchmarks.md, round 9). */
#pragma GCC unroll 4
	for (size_t i = 0; i < n; i++) {
		const struct fwd_pkt *p = &meta[i];
		uint16_t s;
		uint32_t c;

		if (!plain4 && unlikely(pkts[i] == NULL))
			continue;
		/* plain: TCP or UDP */
		s = plain4 ? fwd_class_service_ports(&e.cls, p->proto, p->dport)
			   : fwd_class_service(&e.cls, p->proto, p->dport);
		c = fwd_class_cell(&e.cls, (uint16_t)nh[i], s);
		cell[i] = c;
		if (plain4) {
			lk[i] = e.cell_link[c];
		} else {
			svc[i] = s;
			pid[i] = e.cls.matrix[c];
		}
		if (plain4) {
			cc[i] = &e.cnt_cell[c];
			rte_prefetch0(cc[i]);
		} else if (likely(e.cnt_cell != NULL)) {
			rte_prefetch0(&e.cnt_cell[c]);
		}
	}
	STAGE_MARK(DP_STAGE_CLASSIFY);
	if (unlikely(e.any_content) && burst_in_scope(g->content, pkts, cell, n, plain4))
		content_prepare(lc, g, pkts, meta, nh, cell, n);

	lk[n] = FWD_LINK_NONE;
	if (!plain4) {
		for (unsigned int i = 0; i < n; i++) {
			if (likely(pkts[i] != NULL)) /* NULL: dropped by the parser */
				forward_one(lc, g, &e, i, pkts[i], &meta[i], (uint16_t)nh[i],
					    svc[i], cell[i], pid[i], 0, cap);
			else if (cap != NULL) /* a capture's instance only */
				parser_drop_captured(lc, g, cap, i);
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			/* A run of packets whose cell's decision is its link
			 * (dp_gen.h cell_link): count, TTL, the link's untagged
			 * header, stage. No calls in this loop, so its state stays
			 * in registers. A group cell leaves it for its flow's
			 * link and comes back; anything else (a TTL about to
			 * expire included) leaves it for forward_one(). In a
			 * @mixed burst the family is data, not a branch: both
			 * families stay in arrival order (so the ports' tail drops
			 * under back-pressure and the content flow table see the
			 * burst as it came), and a branch on the family would
			 * follow the mix and mispredict on it. */
		run:
			for (; likely(lk[i] < DP_CELL_GROUP); i++) {
				struct rte_mbuf *m = pkts[i];
				/* TTL, checksum and link header at offsets from
				 * the frame's start: with the header written at
				 * ip - 14, GCC kept both addresses in registers
				 * (callgrind: 3.4 instructions a packet more on
				 * the IPv6 mix, 1.1 with NIC verdicts). */
				uint8_t *eth = rte_pktmbuf_mtod(m, uint8_t *);
				uint8_t *ip = eth + 14;
				const uint32_t len = rte_pktmbuf_pkt_len(m);
				const struct dp_link_out *o = &e.links[lk[i]];
				/* From meta, not the version nibble: that would
				 * put one more load between the mbuf and the TTL. */
				const unsigned int v6 = mixed && meta[i].family == 6;
				struct dp_pb *c = cc[i];

				if (unlikely(ip[8 - v6] <= 1)) /* TTL or hop limit */
					break;
				c->pkts++;
				c->bytes += len;
				fwd_ip_ttl_dec(ip, v6);
				memcpy(eth, o->hdr[v6], 14);
				stage_cached(lc, m, o, lk[i], len, &e.cs, &e.cport, &e.cn);
			}
			if (i == n)
				break;
			if (lk[i] >= DP_CELL_GROUP && lk[i] != FWD_LINK_NONE) {
				/* A group cell: the flow's slot, as
				 * fwd_class_finish() picks it, and the run goes on
				 * from this packet; a slot without a link drops, and
				 * forward_one() names why. (A link here is a TTL
				 * about to expire.) The hash with the family a
				 * constant in each arm. */
				const uint32_t h = mixed && meta[i].family == 6
							   ? fwd_flow_hash_family(&meta[i], 1)
							   : fwd_flow_hash_family(&meta[i], 0);
				const uint16_t l =
					fwd_class_slot(&e.cls, lk[i] & (DP_CELL_GROUP - 1), h);

				if (likely(l != FWD_LINK_NONE)) {
					lk[i] = l;
					goto run;
				}
			}
			{
				/* A plain burst kept only the cell: service and
				 * policy follow from it. */
				const uint16_t region = (uint16_t)nh[i];
				const uint16_t s =
					(uint16_t)(cell[i] - (uint32_t)region * e.cls.nservices);

				if (mixed) {
					/* Out of line, so that the loop keeps its
					 * state in registers; it stages through its
					 * own locals. */
					if (e.cs != NULL)
						e.cs->n = e.cn;
					forward_general(lc, g, (uint16_t)i, pkts[i], &meta[i],
							region, s, cell[i], e.cls.matrix[cell[i]]);
					if (e.cs != NULL)
						e.cn = e.cs->n;
				} else {
					forward_one(lc, g, &e, i, pkts[i], &meta[i], region, s,
						    cell[i], e.cls.matrix[cell[i]], 1, NULL);
				}
			}
		}
	}
	if (e.cs != NULL)
		e.cs->n = e.cn;
	STAGE_MARK(DP_STAGE_FORWARD);
}

/* Stage 3 for a burst the fast path took whole, some of it IPv6: out of
 * line, like the capture's, so that the usual bursts' code keeps its
 * register allocation (inlined, it cost them ~2 instructions a packet). */
static __rte_noinline void stage3_mixed(struct dp_lcore *lc, const struct dp_gen *g,
					struct rte_mbuf **pkts, const struct fwd_pkt *meta,
					const uint64_t *nh, uint16_t n)
{
	stage3(lc, g, pkts, meta, nh, n, 1, 1, NULL);
}

/* Stage 3 while a capture runs: out of line, so that its third copy of
 * stage 3 leaves the usual bursts' code (and its register allocation) as it
 * is without capture. */
static __rte_noinline void stage3_capture(struct dp_lcore *lc, const struct dp_gen *g,
					  struct rte_mbuf **pkts, const struct fwd_pkt *meta,
					  const uint64_t *nh, uint16_t n,
					  const struct dp_capture *cap)
{
	stage3(lc, g, pkts, meta, nh, n, 0, 0, cap);
}

/* Whether the receiving NIC vouches for what fwd_parse_fast4_verified()
 * skips: untagged Ethernet, IPv4 without options, a header checksum that
 * verifies. One test for the three, no branch between them. */
static __rte_always_inline int rx_verified_ipv4(const struct rte_mbuf *m)
{
	return ((m->packet_type & (RTE_PTYPE_L2_MASK | RTE_PTYPE_L3_MASK)) ==
		(RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4)) &
	       ((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD);
}

/* Whether @m's segments hold exactly its pkt_len bytes in nb_segs
 * segments, what every driver must give and TX relies on. When they do
 * not, pkt_len is set to what the first nb_segs segments hold, so that
 * whatever reads the frame before it is freed (a capture's copy and its
 * filter read up to pkt_len) stays inside the chain. */
static __rte_noinline int chain_holds_frame(struct rte_mbuf *m)
{
	uint64_t sum = 0;
	uint32_t segs = 0;
	const struct rte_mbuf *s;

	for (s = m; s != NULL && segs < m->nb_segs; s = s->next, segs++)
		sum += s->data_len;
	if (sum == m->pkt_len && segs == m->nb_segs && s == NULL)
		return 1;
	m->pkt_len = (uint32_t)sum;
	return 0;
}

/*
 * dp_worker_burst()'s body, in two instances: with @verdicts for a port
 * whose packet types and IPv4 checksum verdicts are used
 * (dp_lcore.rx_verdicts: a packet they vouch for skips the EtherType,
 * version and checksum tests), and without for every other port, which
 * then pays nothing for the option but one test and jump a burst.
 */
static __rte_always_inline void burst(struct dp_lcore *lc, const struct dp_gen *g,
				      const struct dp_capture *cap, struct rte_mbuf **pkts,
				      uint16_t n, const int verdicts)
{
	struct fwd_pkt meta[FWD_BURST];
	uint32_t ip4[FWD_BURST];
	uint8_t ip6[FWD_BURST][16];
	uint64_t nh4[FWD_BURST], nh6[FWD_BURST];
	uint64_t region[FWD_BURST]; /* FIB next hop (region id) per packet */
	const uint64_t *nh = region;
	uint8_t idx4[FWD_BURST], idx6[FWD_BURST];
	uint16_t n4 = 0, n6 = 0;
	uint16_t nfast = 0; /* packets fwd_parse_fast() took */
	uint64_t rx_bytes = 0;
	/* Packets below this index have one PREFETCH_AHEAD on to prefetch. */
	const uint16_t n_ahead = n > PREFETCH_AHEAD ? (uint16_t)(n - PREFETCH_AHEAD) : 0;

	cnt_open(&lc->cnt);
	lc->cnt.rx += n;
	/* Read back from lc where a capture is tested (stage 1's drops, the
	 * choice of stage 3): an argument kept live across the burst takes a
	 * register from the per-packet loops (callgrind: +38 instructions a
	 * burst, docs/benchmarks.md). */
	lc->cap = cap;

	/* Stage 1: parse, with the packet PREFETCH_AHEAD ahead on its way in;
	 * collect the source addresses per family. */
	for (uint16_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	const uint32_t fast_max = lc->fast_frame_max;
	for (size_t i = 0; i < n; i++) { /* size_t: see stage3()'s bulk loop */
		struct rte_mbuf *m = pkts[i];
		const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
		struct fwd_pkt *p = &meta[i];
		const uint8_t *fast_end;
		int rc, fast;

		if (likely(i < n_ahead))
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + PREFETCH_AHEAD], void *));
		rx_bytes += rte_pktmbuf_pkt_len(m);
		/* fwd_parse() in two steps, to know which bursts are all plain.
		 * A frame in more than one segment, or whose length is not its
		 * segment's, takes the general path, which checks the chain; so
		 * does one longer than an untagged frame of the mtu, which the
		 * general path measures. The fast path sees them as empty (a
		 * select, not a branch: '&', not '&&'). */
		fast_end = d + (((rte_pktmbuf_pkt_len(m) == rte_pktmbuf_data_len(m)) &
				 (rte_pktmbuf_data_len(m) <= fast_max))
					? rte_pktmbuf_data_len(m)
					: 0);
		if (verdicts && rx_verified_ipv4(m))
			fast = fwd_parse_fast4_verified(d, fast_end, p);
		else
			fast = fwd_parse_fast(d, fast_end, p);
		if (likely(fast == 4)) {
			/* The common case without reloading p->family. */
			nfast++;
			idx4[n4] = (uint8_t)i;
			__builtin_memcpy(&ip4[n4], p->src, 4);
			ip4[n4] = rte_be_to_cpu_32(ip4[n4]);
			n4++;
			continue;
		}
		if (fast == 6) {
			/* IPv6 without extension headers: not a fragment, so
			 * neither its family nor its fragment state needs a reload. */
			nfast++;
			idx6[n6] = (uint8_t)i;
			__builtin_memcpy(ip6[n6++], p->src, 16);
			continue;
		}
		/* Not the fast path's (it returns 4, 6 or 0): the full parser,
		 * once the segments are known to hold the frame. DPDK 22.11's
		 * net_pcap builds a chain of a record's length modulo 65536 for
		 * one over 65535 bytes, and TX read past it (a crash). */
		if (unlikely(rte_pktmbuf_pkt_len(m) != rte_pktmbuf_data_len(m)) &&
		    !chain_holds_frame(m)) {
			parser_drop(lc, m, i, FWD_DROP_BAD_MBUF);
			pkts[i] = NULL;
			continue;
		}
		rc = fwd_parse_full(d, d + rte_pktmbuf_data_len(m), p);
		if (unlikely(rc != FWD_OK)) {
			/* Headers that continue in a second segment look truncated;
			 * a chain of a packet over the mtu whatever its tags (a
			 * segment holds the mtu with two tags) is too big first. */
			enum fwd_drop why = m->nb_segs == 1 ? FWD_ERR_TO_DROP(rc)
					    : rte_pktmbuf_pkt_len(m) > lc->l3_max + 22
						    ? FWD_DROP_TOO_BIG
						    : FWD_DROP_MULTISEG;

			parser_drop(lc, m, i, why);
			pkts[i] = NULL;
			continue;
		}
		/* No port sends an IP packet over the mtu: a real NIC would
		 * refuse it or put a giant on the wire. The fast path took only
		 * untagged frames within fast_frame_max, so it needs no test. */
		if (unlikely(rte_pktmbuf_pkt_len(m) - p->l2_len > lc->l3_max)) {
			parser_drop(lc, m, i, FWD_DROP_TOO_BIG);
			pkts[i] = NULL;
			continue;
		}
		if (unlikely(p->frag == FWD_FRAG_LATER)) {
			region[i] =
				FWD_REGION_UNKNOWN; /* unused: takes its first fragment's decision */
			continue;
		}
		if (p->family == 4) {
			idx4[n4] = (uint8_t)i;
			__builtin_memcpy(&ip4[n4], p->src, 4);
			ip4[n4] = rte_be_to_cpu_32(ip4[n4]);
			n4++;
		} else {
			idx6[n6] = (uint8_t)i;
			__builtin_memcpy(ip6[n6++], p->src, 16);
		}
	}
	lc->cnt.rx_bytes += rx_bytes;
	STAGE_MARK(DP_STAGE_PARSE);

	/* Stage 2: one bulk longest-prefix lookup per family. When the whole
	 * burst was IPv4 and passed the parser (the usual case), nh4 is already
	 * in packet order and is read as it is. */
	if (n4) {
		fwd_fib4_lookup_bulk(g->fib4, ip4, nh4, n4);
		if (n4 == n) {
			nh = nh4;
		} else {
			for (uint16_t j = 0; j < n4; j++)
				region[idx4[j]] = nh4[j];
		}
	}
	if (n6) {
		fwd_fib6_lookup_bulk(g->fib6, (const uint8_t(*)[16])ip6, nh6, n6);
		for (uint16_t j = 0; j < n6; j++)
			region[idx6[j]] = nh6[j];
	}

	STAGE_MARK(DP_STAGE_LPM);

	/* The one test a burst pays for capture when none runs. */
	if (unlikely(lc->cap != NULL))
		stage3_capture(lc, g, pkts, meta, nh, n, lc->cap);
	else if (nfast == n && n4 == n && g->cell_link != NULL) /* nh == nh4 then */
		stage3(lc, g, pkts, meta, nh, n, 1, 0, NULL);
	else if (nfast == n && g->any_cell_link) /* the fast path took IPv6 too */
		stage3_mixed(lc, g, pkts, meta, nh, n);
	else
		stage3(lc, g, pkts, meta, nh, n, 0, 0, NULL);

	/* Stage 4: one TX burst per egress port. */
	flush_tx(lc, (struct dp_gen_cnt *)&g->cnt[lc->idx]);
	cnt_close(&lc->cnt);
	STAGE_MARK(DP_STAGE_TX_COUNT);
}

static __rte_noinline void burst_software(struct dp_lcore *lc, const struct dp_gen *g,
					  const struct dp_capture *cap, struct rte_mbuf **pkts,
					  uint16_t n)
{
	burst(lc, g, cap, pkts, n, 0);
}

static __rte_noinline void burst_verdicts(struct dp_lcore *lc, const struct dp_gen *g,
					  const struct dp_capture *cap, struct rte_mbuf **pkts,
					  uint16_t n)
{
	burst(lc, g, cap, pkts, n, 1);
}

void dp_worker_burst(struct dp_lcore *lc, const struct dp_gen *g, const struct dp_capture *cap,
		     struct rte_mbuf **pkts, uint16_t n)
{
	if (unlikely(lc->rx_verdicts))
		burst_verdicts(lc, g, cap, pkts, n);
	else
		burst_software(lc, g, cap, pkts, n);
}

/* Rounds of empty polls (every queue) before a worker with idle_sleep_us
 * naps. An empty round costs tens of nanoseconds, so this is tens of
 * microseconds of quiet: a gap between two bursts of live traffic never
 * sleeps, a link with nothing on it does almost at once. */
#define DP_IDLE_POLLS 1024

/*
 * Nothing came for DP_IDLE_POLLS rounds: sleep *@nap_us, which doubles from
 * 1 us up to the node's idle_sleep_us while the queues stay empty (a packet
 * resets it, in dp_worker_main), so a quiet worker costs a wake-up per
 * nap instead of a whole core, and the first packet after the quiet
 * waits at most idle_sleep_us. Offline for RCU while asleep: a writer
 * waiting out a grace period (a generation to free, a capture to end) does
 * not wait for the nap; the loop loads the generation afresh after it.
 */
static __rte_noinline void idle_nap(struct dp_lcore *lc, uint32_t *nap_us)
{
	struct timespec ts;

	*nap_us = *nap_us == 0 ? 1 : RTE_MIN(*nap_us * 2, lc->idle_sleep_us);
	ts.tv_sec = 0;
	ts.tv_nsec = (long)*nap_us * 1000;
	rte_rcu_qsbr_thread_offline(lc->pub->qsv, lc->idx);
	nanosleep(&ts, NULL); /* EINTR: a signal woke it early, which is harmless */
	rte_rcu_qsbr_thread_online(lc->pub->qsv, lc->idx);
	cnt_open(&lc->cnt);
	lc->cnt.evt[FWD_EVT_IDLE_NAPS]++;
	cnt_close(&lc->cnt);
}

int dp_worker_main(void *arg)
{
	struct dp_lcore *lc = arg;
	const struct dp_pub *pub = lc->pub;
	struct rte_mbuf *pkts[FWD_BURST];
	uint32_t empty_rounds = 0, nap_us = 0;

	/* The kernel's default timer slack (50 us) would stretch every short
	 * nap to that: 1 us keeps idle_sleep_us the bound it says it is. */
	if (lc->idle_sleep_us != 0)
		(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	rte_rcu_qsbr_thread_register(pub->qsv, lc->idx);
	rte_rcu_qsbr_thread_online(pub->qsv, lc->idx);
	/* Relaxed: the flag carries no data; it only has to be seen eventually. */
	while (!__atomic_load_n(&pub->quit, __ATOMIC_RELAXED)) {
		/* Acquire pairs with the release store in dp_ctx_publish(): all the
		 * generation's contents written before publishing are visible. The
		 * pointer is held only until the quiescent report below. */
		const struct dp_gen *g = __atomic_load_n(&pub->gen, __ATOMIC_ACQUIRE);
		/* The capture, or NULL: the same pairing with dp_cap_start()'s
		 * release store, and the same hold until the quiescent report
		 * (dp_cap.h). On x86 both are plain loads. */
		const struct dp_capture *cap = __atomic_load_n(&pub->cap, __ATOMIC_ACQUIRE);

		if (unlikely(g->seq != lc->gen_seen)) {
			lc->gen_seen = g->seq;
			/* Inside the sequence count, as every counter write is:
			 * a reader's copy is of whole bursts' accounting. */
			cnt_open(&lc->cnt);
			lc->cnt.evt[FWD_EVT_GEN_SWAPS]++;
			cnt_close(&lc->cnt);
		}
		uint16_t got = 0;

		for (uint16_t q = 0; q < lc->nrx; q++) {
			uint16_t n =
				rte_eth_rx_burst(lc->rx[q].port, lc->rx[q].queue, pkts, FWD_BURST);

			if (n == 0)
				continue;
			got = 1;
			lc->rx_verdicts = lc->rx[q].verdicts;
			dp_worker_burst(lc, g, cap, pkts, n);
		}
		/* This worker holds no generation pointer past this point. */
		rte_rcu_qsbr_quiescent(pub->qsv, lc->idx);
		if (likely(got != 0)) {
			empty_rounds = 0;
			nap_us = 0;
		} else if (lc->idle_sleep_us != 0) {
			if (empty_rounds < DP_IDLE_POLLS)
				empty_rounds++;
			else
				idle_nap(lc, &nap_us);
		}
	}
	rte_rcu_qsbr_thread_offline(pub->qsv, lc->idx);
	rte_rcu_qsbr_thread_unregister(pub->qsv, lc->idx);
	return 0;
}
