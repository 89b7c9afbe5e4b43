#define _GNU_SOURCE /* memfd_create */
#include "dp_cap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <pcap/pcap.h>
#include <rte_bpf.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_pcapng.h>
#include <rte_rcu_qsbr.h>
#include <rte_version.h>

#include "dp_log.h"
#include "dp_node.h"
#include "dp_port.h"
#include "dp_worker.h"
#include "fwd_hash.h"
#include "fwd_names.h"
#include "fwd_clock.h"

/* Records drained per ring in one control-loop turn: the loop also serves
 * the control socket, so a busy capture must not hold it for long. */
#define DP_CAP_POLL_BUDGET 1024
#define DP_CAP_FMT_MBUFS 127 /* the formatting pool: one batch at a time */

/* pcapng (draft-ietf-opsawg-pcapng): block types and option codes we read or write. */
#define PCAPNG_IDB 0x00000001u
#define PCAPNG_OPT_END 0
#define PCAPNG_OPT_COMMENT 1

struct dp_cap {
	const struct dp_node *node;
	const struct dp_ports *ports;
	struct dp_lcore *const *workers;
	uint16_t nworkers;
	struct rte_mempool *pool; /* the workers' copies */
	struct rte_mempool *fmt; /* rte_pcapng_copy's blocks, on this thread */
	uint32_t block_max; /* the largest block one copy can make */

	/* The capture, control thread only. on: it exists (running, or done
	 * and waiting for its last read); live: what the workers were given,
	 * NULL once they stopped copying. */
	int on, done;
	struct dp_capture *live;
	uint64_t id, next_id;
	rte_pcapng_t *out; /* writes into fd, a memory file */
	int fd;
	uint32_t held_packets; /* enhanced packet blocks in fd */
	uint32_t interfaces;
	uint64_t count, captured, lost_writer, overflow0;
	int64_t last_read_ms;
	int64_t last_poll_ms; /* dp_cap_poll's last call, 0 before the first */
	uint64_t started_ns;
	uint64_t started_tsc; /* the TSC at started_ns: the blocks' clock (block_time) */
	char owner[400], end[128];
};

struct dp_cap *dp_cap_create(const struct dp_node *node, const struct dp_ports *ports,
			     struct dp_lcore *const *workers, uint16_t nworkers, uint32_t frame_max)
{
	struct dp_cap *c = calloc(1, sizeof(*c));
	uint16_t priv = (uint16_t)RTE_ALIGN(sizeof(struct dp_cap_rec), RTE_MBUF_PRIV_ALIGN);
	char name[RTE_RING_NAMESIZE];

	if (c == NULL)
		return NULL;
	rte_errno = 0; /* what failed below says why, not an earlier call */
	c->node = node;
	c->ports = ports;
	c->workers = workers;
	c->nworkers = nworkers;
	c->fd = -1;
	c->next_id = 1;
	/* A block: the EPB header in the headroom, the frame padded to 4,
	 * flags and queue options (rte_pcapng_mbuf_size), then the comment
	 * and the end of options this file appends. */
	c->block_max = rte_pcapng_mbuf_size(frame_max) + 4 + DP_CAP_COMMENT_MAX + 4 + 4;
	/* Each call checked as it returns: a later DPDK call may set rte_errno
	 * too (a lookup's ENOENT once named a pool too large for memory). */
	c->pool = rte_pktmbuf_pool_create("cap_copies", node->capture_mbufs, 0, priv,
					  (uint16_t)(RTE_PKTMBUF_HEADROOM + frame_max),
					  (int)rte_socket_id());
	if (c->pool == NULL)
		goto fail;
	c->fmt = rte_pktmbuf_pool_create("cap_blocks", DP_CAP_FMT_MBUFS, 0, 0,
					 (uint16_t)(RTE_PKTMBUF_HEADROOM + c->block_max),
					 (int)rte_socket_id());
	if (c->fmt == NULL)
		goto fail;
	for (uint16_t w = 0; w < nworkers; w++) {
		snprintf(name, sizeof(name), "cap_ring%u", w);
		/* One producer (the worker), one consumer (the control thread):
		 * neither end takes a compare-and-swap. */
		workers[w]->cap_ring =
			rte_ring_create(name, node->capture_ring, (int)rte_socket_id(),
					RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
		if (workers[w]->cap_ring == NULL)
			goto fail;
	}
	return c;
fail:;
	/* dp_cap_free() calls into libc and DPDK, which may set errno. */
	int why = rte_errno ? rte_errno : ENOMEM;

	dp_cap_free(c);
	errno = why;
	return NULL;
}

static uint64_t overflow_now(const struct dp_cap *c)
{
	uint64_t n = 0;

	for (uint16_t w = 0; w < c->nworkers; w++) {
		struct dp_counters k;

		dp_counters_read(&c->workers[w]->cnt, &k);
		n += k.evt[FWD_EVT_CAPTURE_OVERFLOW];
	}
	return n;
}

static const char *port_name(const struct dp_cap *c, uint16_t port_id)
{
	for (uint16_t i = 0; i < c->node->nports; i++)
		if (c->ports->port_id[i] == port_id)
			return c->node->ports[i].name;
	return "?";
}

void dp_cap_comment(const struct dp_cap_rec *r, const char *in, char *buf, size_t len)
{
	const struct fwd_table *t = r->g->table;
	size_t n;

	if (r->drop)
		n = (size_t)snprintf(buf, len, "regionfwd drop reason=%s gen=%llu in=%s",
				     fwd_drop_names[r->drop - 1], (unsigned long long)r->g->id, in);
	else
		n = (size_t)snprintf(buf, len, "regionfwd forward gen=%llu in=%s",
				     (unsigned long long)r->g->id, in);
	if (n < len && r->classified) {
		char pol[2 * FWD_NAME_MAX + 8];

		fwd_table_policy_key(t, r->policy, pol, sizeof(pol));
		n += (size_t)snprintf(buf + n, len - n, " region=%s service=%s policy=%s",
				      t->region_names[r->region], t->service_names[r->service],
				      pol);
	}
	if (n < len && !r->drop && r->link != FWD_LINK_NONE)
		n += (size_t)snprintf(buf + n, len - n, " link=%s", t->links[r->link].name);
	if (n < len && r->mirror != FWD_LINK_NONE)
		snprintf(buf + n, len - n, " mirror=%s", t->links[r->mirror].name);
}

int dp_cap_comment_append(struct rte_mbuf *m, const char *comment)
{
	struct rte_mbuf *last = rte_pktmbuf_lastseg(m);
	size_t n = strlen(comment);
	uint16_t code = PCAPNG_OPT_COMMENT, olen = (uint16_t)n, zero16 = 0;
	uint32_t pad = (uint32_t)RTE_ALIGN(n, 4), add = 4 + pad + 4, total;
	uint8_t *p;

	if (n > DP_CAP_COMMENT_MAX || last->data_len < 4 || rte_pktmbuf_tailroom(last) < add)
		return -ENOSPC;
	/* The block ends with its total length: the options go where it was,
	 * the length moves to the new end. The section's byte order is this
	 * host's (rte_pcapng writes it so). */
	p = rte_pktmbuf_mtod_offset(last, uint8_t *, last->data_len - 4);
	if (rte_pktmbuf_append(m, (uint16_t)add) == NULL)
		return -ENOSPC;
	memcpy(p, &code, 2);
	memcpy(p + 2, &olen, 2);
	memcpy(p + 4, comment, n);
	memset(p + 4 + n, 0, pad - n);
	p += 4 + pad;
	memcpy(p, &zero16, 2); /* opt_endofopt */
	memcpy(p + 2, &zero16, 2);
	total = rte_pktmbuf_pkt_len(m);
	memcpy(p + 4, &total, 4);
	memcpy(rte_pktmbuf_mtod_offset(m, uint8_t *, 4), &total, 4);
	return 0;
}

/* Unix time in ns of TSC @tsc, from the pair taken when the capture
 * started. rte_pcapng_copy() and rte_pcapng_write_stats() stamp blocks
 * themselves, but 22.11.11's wall-clock base is wrong on the machines we
 * tried (about 7.09e9 s ahead: year 2251; tests/control/test_capture.py
 * checks the times), so the writer stamps every block it makes again. */
static uint64_t block_time(const struct dp_cap *c, uint64_t tsc)
{
	uint64_t hz = rte_get_tsc_hz();
	int64_t d = (int64_t)(tsc - c->started_tsc);
	uint64_t a = (uint64_t)(d < 0 ? -d : d);
	uint64_t ns = a / hz * 1000000000ull + a % hz * 1000000000ull / hz;

	return d < 0 ? c->started_ns - ns : c->started_ns + ns;
}

/* Set the timestamp of the block that starts at @p (enhanced packet and
 * interface statistics blocks keep it at bytes 12..19: high, low words). */
static void stamp(uint8_t *p, uint64_t ns)
{
	uint32_t hi = (uint32_t)(ns >> 32), lo = (uint32_t)ns;

	memcpy(p + 12, &hi, 4);
	memcpy(p + 16, &lo, 4);
}

/* Bytes the memory file holds (what the next read hands over). */
static size_t held(const struct dp_cap *c)
{
	off_t o = lseek(c->fd, 0, SEEK_CUR);

	return o > 0 ? (size_t)o : 0;
}

/* The count's packets came: written, or lost for a full writer's buffer.
 * A worker copies at most the count (dp_cap.h), so with the lost ones
 * left out a capture that lost any waited for ever for packets no worker
 * would copy (a probe: --count 300000 stood at 296,198 captured and 3,802
 * lost, the capture slot held, until a Ctrl-C). */
static int count_reached(const struct dp_cap *c)
{
	return c->count && c->captured + c->lost_writer >= c->count;
}

/* Format and write @n copies (freed here): each becomes a block with its
 * verdict comment, or is counted lost when the writer's buffer is full;
 * copies past the count are dropped silently (the capture has what it
 * asked for). */
static void write_copies(struct dp_cap *c, struct rte_mbuf **m, unsigned n)
{
	struct rte_mbuf *b[FWD_BURST];
	size_t room = DP_CAP_BUF_MAX - RTE_MIN(held(c), (size_t)DP_CAP_BUF_MAX);
	unsigned k = 0;
	ssize_t w;

	for (unsigned i = 0; i < n; i++) {
		const struct dp_cap_rec *r = rte_mbuf_to_priv(m[i]);
		char text[DP_CAP_COMMENT_MAX + 1];
		struct rte_mbuf *blk;

		if (c->done || (c->count && c->captured + c->lost_writer + k >= c->count)) {
			rte_pktmbuf_free(m[i]);
			continue;
		}
		if (room < c->block_max) {
			c->lost_writer++;
			rte_pktmbuf_free(m[i]);
			continue;
		}
		dp_cap_comment(r, port_name(c, m[i]->port), text, sizeof(text));
		blk = rte_pcapng_copy(m[i]->port, r->worker, m[i], c->fmt, UINT32_MAX, r->tsc,
				      RTE_PCAPNG_DIRECTION_IN);
		rte_pktmbuf_free(m[i]);
		if (blk == NULL || dp_cap_comment_append(blk, text)) {
			rte_pktmbuf_free(blk);
			c->lost_writer++;
			continue;
		}
		stamp(rte_pktmbuf_mtod(blk, uint8_t *), block_time(c, r->tsc));
		room -= rte_pktmbuf_pkt_len(blk);
		b[k++] = blk;
	}
	if (k == 0)
		return;
	w = rte_pcapng_write_packets(c->out, b, (uint16_t)k);
	/* Its header says it frees them; 22.11's does not (measured: the pool
	 * drains), so the blocks go back here, as dpdk-dumpcap does. */
	rte_pktmbuf_free_bulk(b, k);
	if (w < 0) {
		c->lost_writer += k;
		DP_LOG(ERR, "capture %llu: writing its pcapng failed: %s",
		       (unsigned long long)c->id, strerror(errno));
		return;
	}
	c->captured += k;
	c->held_packets += k;
}

/* Drain the rings: at most @budget records per ring, or (0) what each held
 * when its turn came. Not "until empty": after a grace period every record
 * of the old generation is in the ring, while workers keep adding copies
 * under the new one, which at line rate could keep this loop (and the
 * publish waiting on it) going without end. */
static void drain(struct dp_cap *c, unsigned budget)
{
	struct rte_mbuf *m[FWD_BURST];

	for (uint16_t w = 0; w < c->nworkers; w++) {
		struct rte_ring *r = c->workers[w]->cap_ring;
		unsigned taken = 0, n, bound = budget;

		if (r != NULL && bound == 0 && (bound = rte_ring_count(r)) == 0)
			continue;
		while (r != NULL && taken < bound &&
		       (n = rte_ring_sc_dequeue_burst(r, (void **)m, FWD_BURST, NULL)) > 0) {
			taken += n;
			if (c->on)
				write_copies(c, m, n);
			else
				rte_pktmbuf_free_bulk(m, n);
		}
	}
}

void dp_cap_flush(struct dp_cap *c)
{
	if (c != NULL)
		drain(c, 0);
}

static void match_free(struct dp_capture *m)
{
	if (m == NULL)
		return;
	if (m->bpf)
		rte_bpf_destroy(m->bpf);
	free(m);
}

/* The workers stop copying: unpublish, wait out their grace period, then
 * take what they copied before. */
static void stop_workers(struct dp_cap *c, struct dp_pub *pub)
{
	if (c->live == NULL)
		return;
	/* Relaxed: NULL publishes nothing. The grace period's token is stored
	 * with release after this store and read with acquire by each
	 * worker's quiescent report, so once synchronize returns every worker
	 * has finished the loop that held the match and loads NULL next. */
	__atomic_store_n(&pub->cap, NULL, __ATOMIC_RELAXED);
	rte_rcu_qsbr_synchronize(pub->qsv, RTE_QSBR_THRID_INVALID);
	match_free(c->live);
	c->live = NULL;
	drain(c, 0);
}

static uint64_t lost(const struct dp_cap *c)
{
	return c->lost_writer + (overflow_now(c) - c->overflow0);
}

/* End the capture: the workers stop, the statistics block says what was
 * captured and lost and why it ended. The last read hands it over. */
static void end(struct dp_cap *c, struct dp_pub *pub, const char *why)
{
	char text[256];
	uint64_t ovf, now;
	off_t at;

	if (c->done)
		return;
	stop_workers(c, pub);
	c->done = 1;
	snprintf(c->end, sizeof(c->end), "%s", why);
	ovf = overflow_now(c) - c->overflow0;
	snprintf(text, sizeof(text),
		 "regionfwd capture %llu: captured=%llu lost=%llu (ring or pool full %llu, "
		 "writer buffer full %llu) end=%s",
		 (unsigned long long)c->id, (unsigned long long)c->captured,
		 (unsigned long long)(ovf + c->lost_writer), (unsigned long long)ovf,
		 (unsigned long long)c->lost_writer, why);
	/* Interface statistics of the first port: received = matched (captured
	 * or lost), dropped = lost. Stamped again, as the packets are. */
	at = lseek(c->fd, 0, SEEK_CUR);
	now = fwd_wall_ns();
	if (rte_pcapng_write_stats(c->out, c->ports->port_id[0], text, c->started_ns, now,
				   c->captured + ovf + c->lost_writer, ovf + c->lost_writer) < 0) {
		DP_LOG(WARNING, "capture %llu: cannot write its statistics block",
		       (unsigned long long)c->id);
	} else if (at >= 0) {
		uint8_t ts[20];

		stamp(ts, now);
		if (pwrite(c->fd, ts + 12, 8, at + 12) != 8)
			DP_LOG(WARNING, "capture %llu: cannot stamp its statistics block",
			       (unsigned long long)c->id);
	}
	DP_LOG(INFO, "capture %llu for %s ended: %s", (unsigned long long)c->id, c->owner, text);
}

/* Forget the capture (it was handed over, or nobody reads it). */
static void release(struct dp_cap *c)
{
	if (c->out)
		rte_pcapng_close(c->out); /* closes fd */
	else if (c->fd >= 0)
		close(c->fd);
	c->out = NULL;
	c->fd = -1;
	c->on = c->done = 0;
	c->id = 0;
}

/* Interface description blocks in the memory file (rte_pcapng_fdopen
 * writes one per ethdev port in 22.11; regiond numbers its own after them). */
static uint32_t count_interfaces(int fd)
{
	off_t end = lseek(fd, 0, SEEK_CUR), off = 0;
	uint32_t n = 0, hdr[2];

	while (end > 0 && off + 8 <= end && pread(fd, hdr, 8, off) == 8 && hdr[1] >= 12) {
		n += hdr[0] == PCAPNG_IDB;
		off += hdr[1];
	}
	return n;
}

/*
 * Indirect loads as rte_bpf_convert() gets them wrong, put right.
 *
 * cBPF's indirect load, A = pkt[X + k] (BPF_LD | BPF_IND | size: libpcap
 * emits them for udp[n], tcp[n], icmp[n] and the like, X being the IP
 * header's length), is eBPF's too, whose index is the register src_reg
 * names. DPDK 22.11's converter (lib/bpf/bpf_convert.c, bpf_convert_filter)
 * copies the code and sets src_reg = BPF_SRC(code) == BPF_X ? X : 0. In a
 * load that bit is not a source but a size bit: BPF_H (0x08) == BPF_X. So
 * a halfword load gets X (R7) and is right, while byte and word loads get
 * R0, which is the converter's A: they read pkt[A + k], whatever A holds
 * then (udp[8] = 0x70 matches nothing, udp[8] != 0 everything). The
 * interpreter and the x86 JIT both index by src_reg as they should, so
 * the fault is the converter's alone (22.11.11's, and still main's at
 * 38f72e500b).
 *
 * The converter emits BPF_LD | BPF_IND for cBPF's indirect loads and for
 * nothing else (ldxb 4*([k]&0xf) becomes an absolute load), and every one
 * of them indexes by X: pointing each at X is exact for any filter, and a
 * no-op on a DPDK that got it right. X is whatever the converter's prologue
 * clears second (A ^= A; X ^= X; ctx = arg1), read from the program rather
 * than assumed. A program whose prologue is not that shape comes from a
 * converter this was not written for: its indirect loads are refused, not
 * guessed at (a capture must never show wrong results silently).
 */
static int fix_indirect_loads(struct rte_bpf_prm *prm, const char *expr, struct fwd_err *err)
{
	/* Ours: rte_bpf_convert() allocated it, instructions after the header. */
	struct ebpf_insn *ins = (struct ebpf_insn *)(uintptr_t)prm->ins;
	const uint8_t xor64 = EBPF_ALU64 | BPF_XOR | BPF_X;
	int indirect = 0;

	for (uint32_t i = 0; i < prm->nb_ins; i++)
		indirect |= BPF_CLASS(ins[i].code) == BPF_LD && BPF_MODE(ins[i].code) == BPF_IND;
	if (!indirect)
		return 0;
	if (prm->nb_ins < 2 || ins[0].code != xor64 || ins[0].dst_reg != EBPF_REG_0 ||
	    ins[0].src_reg != EBPF_REG_0 || ins[1].code != xor64 ||
	    ins[1].dst_reg != ins[1].src_reg || ins[1].dst_reg == EBPF_REG_0)
		return fwd_err_fail(err, FWD_R_INVALID_CAPTURE, NULL, 0, "filter",
				    "'%s' loads relative to a header's length (like udp[8]), which "
				    "this DPDK's cBPF converter is not known to get right: refused "
				    "rather than run with wrong results",
				    expr);
	for (uint32_t i = 0; i < prm->nb_ins; i++)
		if (BPF_CLASS(ins[i].code) == BPF_LD && BPF_MODE(ins[i].code) == BPF_IND)
			ins[i].src_reg = ins[1].dst_reg;
	return 0;
}

/* libpcap's compiler -> cBPF -> rte_bpf_convert (its indirect loads put
 * right) -> rte_bpf_load (+ JIT). */
static int compile_filter(const char *expr, struct dp_capture *m, struct fwd_err *err)
{
	pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
	struct bpf_program prog;
	struct rte_bpf_prm *prm;
	struct rte_bpf_jit jit = {0};

	if (p == NULL)
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "filter", "out of memory");
	if (pcap_compile(p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		fwd_err_fail(err, FWD_R_INVALID_CAPTURE, NULL, 0, "filter", "'%s': %s", expr,
			     pcap_geterr(p));
		pcap_close(p);
		return -EINVAL;
	}
	pcap_close(p);
	prm = rte_bpf_convert(&prog);
	pcap_freecode(&prog);
	if (prm == NULL)
		/* rte_errno is EPERM for an instruction it does not take: said
		 * as what it is, not as a permission the operator lacks. */
		return fwd_err_fail(
			err, FWD_R_INVALID_CAPTURE, NULL, 0, "filter",
			rte_errno == EPERM
				? "'%s' compiles to classic BPF that DPDK's converter does "
				  "not take (libpcap's 'protochain', 'inbound', 'outbound' "
				  "and 'ifindex' do)"
				: "'%s' cannot be converted to eBPF: %s",
			expr, rte_strerror(rte_errno));
	if (fix_indirect_loads(prm, expr, err)) {
		rte_free(prm);
		return -EINVAL;
	}
	m->bpf = rte_bpf_load(prm);
	rte_free(prm);
	if (m->bpf == NULL)
		return fwd_err_fail(err, FWD_R_INVALID_CAPTURE, NULL, 0, "filter",
				    "'%s' is refused by DPDK's BPF verifier: %s", expr,
				    rte_strerror(rte_errno));
	if (rte_bpf_get_jit(m->bpf, &jit) == 0 && jit.func != NULL)
		m->jit = jit.func;
	return 0;
}

/* A name of the running generation, as its key; -EINVAL with @err when it
 * has no such name. */
static int name_key(const char *what, const char *name, int id, const struct dp_gen *g,
		    uint64_t *key, struct fwd_err *err)
{
	*key = 0;
	if (name == NULL || name[0] == '\0')
		return 0;
	if (id < 0)
		return fwd_err_fail(err, FWD_R_INVALID_CAPTURE, NULL, 0, what,
				    "no %s '%s' in the running table (generation %llu)", what, name,
				    (unsigned long long)g->id);
	*key = fwd_hash64(name, strlen(name));
	return 0;
}

static int parse_reason(const char *name, uint8_t *out, struct fwd_err *err)
{
	*out = 0;
	if (name == NULL || name[0] == '\0')
		return 0;
	for (int i = 0; i < FWD_DROP_MAX; i++)
		if (strcmp(fwd_drop_names[i], name) == 0) {
			*out = (uint8_t)(1 + i);
			return 0;
		}
	return fwd_err_fail(err, FWD_R_INVALID_CAPTURE, NULL, 0, "reason",
			    "'%s' is not a drop reason (regionctl drops -j lists them)", name);
}

/* The section header's comment: what this capture matches. */
static void describe(const struct dp_cap_req *q, uint64_t id, char *buf, size_t len)
{
	const struct {
		const char *key, *val;
	} f[] = {{"reason", q->reason},
		 {"region", q->region},
		 {"service", q->service},
		 {"link", q->link},
		 {"filter", q->filter}};
	size_t n = (size_t)snprintf(
		buf, len, "regionfwd capture %llu for %s:", (unsigned long long)id, q->owner);
	const size_t head = n;

	if (n < len && q->drops_only)
		n += (size_t)snprintf(buf + n, len - n, " drops-only");
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (n < len && f[i].val && f[i].val[0])
			n += (size_t)snprintf(buf + n, len - n, " %s='%s'", f[i].key, f[i].val);
	if (n < len && q->count)
		n += (size_t)snprintf(buf + n, len - n, " count=%llu",
				      (unsigned long long)q->count);
	if (n == head && n < len) /* no criterion: the colon must not end the line */
		snprintf(buf + n, len - n, " every packet");
}

int dp_cap_start(struct dp_cap *c, struct dp_pub *pub, const struct dp_gen *g,
		 const struct dp_cap_req *q, uint64_t *id, uint32_t *interfaces,
		 struct fwd_err *err)
{
	const struct fwd_table *t = g->table;
	struct dp_capture *m;
	struct utsname un;
	char os[160], app[96], text[1600];
	int rc;

	if (c->on && c->done)
		return fwd_err_fail(
			err, FWD_R_CAPTURE_BUSY, NULL, 0, "",
			"capture %llu for %s has ended and waits for its reader (let go "
			"%d s after its last read); one at a time",
			(unsigned long long)c->id, c->owner, DP_CAP_LEASE_MS / 1000);
	if (c->on)
		return fwd_err_fail(err, FWD_R_CAPTURE_BUSY, NULL, 0, "",
				    "capture %llu for %s runs (%.0f s so far); one at a time",
				    (unsigned long long)c->id, c->owner,
				    (double)(fwd_wall_ns() - c->started_ns) / 1e9);
	if (q->owner == NULL || q->owner[0] == '\0' || strlen(q->owner) >= sizeof(c->owner))
		return fwd_err_fail(err, FWD_R_BAD_REQUEST, NULL, 0, "owner",
				    "'owner' must be 1..%zu bytes", sizeof(c->owner) - 1);
	if (q->filter && strlen(q->filter) > DP_CAP_FILTER_MAX)
		return fwd_err_fail(err, FWD_R_INVALID_CAPTURE, NULL, 0, "filter",
				    "a filter of at most %d bytes", DP_CAP_FILTER_MAX);
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	m->drops_only = q->drops_only != 0;
	m->pool = c->pool;
	m->id = c->next_id;
	m->count = q->count;
	if ((rc = parse_reason(q->reason, &m->reason, err)) ||
	    (rc = name_key("region", q->region, q->region ? fwd_table_region_id(t, q->region) : -1,
			   g, &m->region_key, err)) ||
	    (rc = name_key("service", q->service,
			   q->service ? fwd_table_service_id(t, q->service) : -1, g,
			   &m->service_key, err)) ||
	    (rc = name_key("link", q->link, q->link ? fwd_table_link_id(t, q->link) : -1, g,
			   &m->link_key, err)) ||
	    (q->filter && q->filter[0] && (rc = compile_filter(q->filter, m, err))))
		goto fail;
	c->fd = memfd_create("regionfwd-capture", MFD_CLOEXEC);
	if (c->fd < 0) {
		rc = fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "memfd_create: %s",
				  strerror(errno));
		goto fail;
	}
	if (uname(&un) == 0)
		snprintf(os, sizeof(os), "%s %s", un.sysname, un.release);
	else
		snprintf(os, sizeof(os), "Linux");
	snprintf(app, sizeof(app), "regionfwd 0.1.0 (%s)", rte_version());
	describe(q, c->next_id, text, sizeof(text));
	/* Writes the section header and an interface block per port. */
	c->out = rte_pcapng_fdopen(c->fd, os, NULL, app, text);
	if (c->out == NULL) {
		close(c->fd);
		c->fd = -1;
		rc = fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "rte_pcapng_fdopen: %s",
				  rte_strerror(rte_errno));
		goto fail;
	}
	/* Anything a ring still holds belongs to no capture: freed, with
	 * c->on still 0 (drain writes what it takes into the capture that is
	 * on). Every path that ends a capture or frees a generation has
	 * drained already; this keeps a new capture clean if one did not. */
	drain(c, 0);
	c->on = 1;
	c->done = 0;
	c->id = c->next_id++;
	c->interfaces = count_interfaces(c->fd);
	c->count = q->count;
	c->captured = c->lost_writer = 0;
	c->held_packets = 0;
	c->overflow0 = overflow_now(c);
	c->last_read_ms = fwd_mono_ms();
	c->last_poll_ms = 0;
	c->started_tsc = rte_get_tsc_cycles();
	c->started_ns = fwd_wall_ns();
	c->end[0] = '\0';
	snprintf(c->owner, sizeof(c->owner), "%s", q->owner);
	c->live = m;
	/* Release: the match is complete before a worker can load it (acquire,
	 * dp_worker_main). */
	__atomic_store_n(&pub->cap, m, __ATOMIC_RELEASE);
	*id = c->id;
	*interfaces = c->interfaces;
	DP_LOG(INFO, "capture %llu started: %s", (unsigned long long)c->id, text);
	return 0;
fail:
	match_free(m);
	return rc;
}

int dp_cap_read(struct dp_cap *c, struct dp_pub *pub, uint64_t id, int stop,
		struct dp_cap_chunk *out, struct fwd_err *err)
{
	size_t len, got = 0;

	memset(out, 0, sizeof(*out));
	if (!c->on || id != c->id)
		return fwd_err_fail(err, FWD_R_NO_CAPTURE, NULL, 0, "id",
				    "no capture %llu runs here%s", (unsigned long long)id,
				    c->on ? " (another one does)" : "");
	c->last_read_ms = fwd_mono_ms();
	if (stop)
		end(c, pub, "stopped");
	else if (!c->done)
		drain(c, DP_CAP_POLL_BUDGET);
	if (!c->done && count_reached(c))
		end(c, pub, "count reached");
	len = held(c);
	out->data = malloc(len ? len : 1);
	if (out->data == NULL)
		return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	while (got < len) {
		ssize_t r = pread(c->fd, out->data + got, len - got, (off_t)got);

		if (r <= 0) {
			free(out->data);
			out->data = NULL;
			return fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "",
					    "reading the capture back: %s",
					    r < 0 ? strerror(errno) : "short");
		}
		got += (size_t)r;
	}
	/* Handed over: the file starts again empty; rte_pcapng writes at the
	 * descriptor's offset. */
	if (ftruncate(c->fd, 0) < 0 || lseek(c->fd, 0, SEEK_SET) < 0)
		DP_LOG(WARNING, "capture %llu: cannot reset its buffer: %s",
		       (unsigned long long)c->id, strerror(errno));
	out->len = len;
	out->packets = c->held_packets;
	c->held_packets = 0;
	out->done = c->done;
	out->captured = c->captured;
	out->lost = lost(c);
	snprintf(out->end, sizeof(out->end), "%s", c->end);
	if (c->done)
		release(c);
	return 0;
}

void dp_cap_poll(struct dp_cap *c, struct dp_pub *pub)
{
	int64_t now = fwd_mono_ms();

	if (c == NULL || !c->on)
		return;
	/* The control thread polls every ~10 ms. A longer gap was a push, a
	 * delta or a save it was busy with: a read that came meanwhile is
	 * still queued on the socket, so that time is not the reader's (a
	 * capture ended "not read" during a long table change, when an
	 * operator is most likely to be capturing). */
	if (c->last_poll_ms != 0 && now - c->last_poll_ms > 1000) {
		c->last_read_ms += now - c->last_poll_ms;
		/* (a read taken after the push in that same poll is recent
		 * already: not pushed past now) */
		if (c->last_read_ms > now)
			c->last_read_ms = now;
	}
	c->last_poll_ms = now;
	if (c->done) {
		/* Ended (its count or duration reached) but never read to the
		 * end: its reader went away (a regiond killed, a start whose
		 * answer came too late for it). Held for its lease, then let
		 * go: it held the one capture slot, and every later capture
		 * was refused as busy until regionfwd restarted. */
		if (now - c->last_read_ms > DP_CAP_LEASE_MS) {
			DP_LOG(WARNING, "capture %llu for %s: ended, not read for %d s; released",
			       (unsigned long long)c->id, c->owner, DP_CAP_LEASE_MS / 1000);
			release(c);
		}
		return;
	}
	drain(c, DP_CAP_POLL_BUDGET);
	if (count_reached(c))
		end(c, pub, "count reached");
	else if (now - c->last_read_ms > DP_CAP_LEASE_MS) {
		DP_LOG(WARNING, "capture %llu for %s: not read for %d s, ended",
		       (unsigned long long)c->id, c->owner, DP_CAP_LEASE_MS / 1000);
		end(c, pub, "not read");
		release(c);
	}
}

void dp_cap_free(struct dp_cap *c)
{
	if (c == NULL)
		return;
	/* The workers have stopped: the match is no longer read. */
	match_free(c->live);
	c->live = NULL;
	c->on = 0;
	drain(c, 0); /* every copy back to its pool */
	for (uint16_t w = 0; w < c->nworkers; w++) {
		rte_ring_free(c->workers[w]->cap_ring);
		c->workers[w]->cap_ring = NULL;
	}
	release(c);
	rte_mempool_free(c->fmt);
	rte_mempool_free(c->pool);
	free(c);
}
