/*
 * dp_fib.c - the FIBs of a table: exact sizes, IPv6 on a second thread,
 * release in the background (dp_fib.h).
 */
#define _GNU_SOURCE /* pthread_getaffinity_np */
#include "dp_fib.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "dp_log.h"
#include "fwd_names.h"
#include "fwd_stages.h"

#define DP_FIB_2B_MAX 32767 /* tbl8 groups addressable with 2-byte next hops */

/* ---- sizes ------------------------------------------------------------------------ */

/* tbl8 groups DIR-24-8 needs: one per distinct /24 that holds a longer
 * prefix. prefix4 is sorted by address (fwd_table validation), so distinct
 * values are runs. */
static uint32_t tbl8_needed4(const struct fwd_table *t)
{
	uint32_t n = 0, last = 0;
	int have = 0;

	for (uint32_t i = 0; i < t->nprefix4; i++) {
		const struct fwd_prefix4 *p = &t->prefix4[i];

		if (p->len <= 24)
			continue;
		if (!have || (p->addr >> 8) != last) {
			n++;
			last = p->addr >> 8;
			have = 1;
		}
	}
	return n;
}

/* The rte_fib6 trie has a 24-bit first stride, then 8-bit strides: a prefix
 * longer than k bits (k = 24, 32, ..., 120) needs the tbl8 group of its
 * k-bit ancestor. Count distinct ancestors per level; sorted input makes the
 * truncations non-decreasing, so counting runs is exact. */
static uint32_t tbl8_needed6(const struct fwd_table *t)
{
	uint32_t total = 0;

	for (unsigned k = 24; k < 128; k += 8) {
		const uint8_t *last = NULL;
		unsigned bytes = k / 8;

		for (uint32_t i = 0; i < t->nprefix6; i++) {
			const struct fwd_prefix6 *p = &t->prefix6[i];

			if (p->len <= k)
				continue;
			if (last == NULL || memcmp(last, p->addr, bytes) != 0) {
				total++;
				last = p->addr;
			}
		}
	}
	return total;
}

/* IPv6 addresses as two 64-bit halves, for prefix arithmetic. */
struct a128 {
	uint64_t hi, lo;
};

static struct a128 a128_of(const uint8_t b[16])
{
	struct a128 a = {0, 0};

	for (int i = 0; i < 8; i++) {
		a.hi = a.hi << 8 | b[i];
		a.lo = a.lo << 8 | b[8 + i];
	}
	return a;
}

/* Leading bits @x and @y share (128 when equal). */
static unsigned common6(struct a128 x, struct a128 y)
{
	uint64_t h = x.hi ^ y.hi, l = x.lo ^ y.lo;

	return h ? (unsigned)__builtin_clzll(h) : l ? 64 + (unsigned)__builtin_clzll(l) : 128;
}

static unsigned common4(uint32_t x, uint32_t y)
{
	return x == y ? 32 : (unsigned)__builtin_clz(x ^ y);
}

/*
 * RIB nodes of a sorted prefix list: DPDK's RIB is the compressed binary
 * trie of the prefixes, whose nodes are the prefixes and the points where
 * two of them branch apart. Sorted by address then length is the trie's
 * preorder, so every branch point is the common prefix of exactly one pair
 * of neighbours (the last prefix of its left side, the first of its right);
 * it costs a node unless it is itself a prefix, which would then be an
 * ancestor of the left neighbour: on the stack of those.
 */
static uint32_t rib_nodes4(const struct fwd_table *t)
{
	uint8_t stack[33]; /* lengths of the prefixes covering the current one */
	uint32_t sa[33], nodes = t->nprefix4;
	unsigned depth = 0;

	for (uint32_t i = 0; i + 1 < t->nprefix4; i++) {
		const struct fwd_prefix4 *p = &t->prefix4[i], *q = &t->prefix4[i + 1];
		unsigned l;

		while (depth && (stack[depth - 1] > p->len ||
				 common4(sa[depth - 1], p->addr) < stack[depth - 1]))
			depth--;
		stack[depth] = p->len;
		sa[depth++] = p->addr;
		l = common4(p->addr, q->addr);
		if (l >= p->len)
			continue; /* p covers q */
		nodes++;
		for (unsigned k = 0; k < depth; k++)
			if (stack[k] == l) {
				nodes--; /* the branch point is a prefix */
				break;
			}
	}
	return nodes;
}

static uint32_t rib_nodes6(const struct fwd_table *t)
{
	uint8_t stack[129];
	struct a128 sa[129];
	uint32_t nodes = t->nprefix6;
	unsigned depth = 0;

	for (uint32_t i = 0; i + 1 < t->nprefix6; i++) {
		const struct fwd_prefix6 *p = &t->prefix6[i], *q = &t->prefix6[i + 1];
		struct a128 pa = a128_of(p->addr);
		unsigned l;

		while (depth &&
		       (stack[depth - 1] > p->len || common6(sa[depth - 1], pa) < stack[depth - 1]))
			depth--;
		stack[depth] = p->len;
		sa[depth++] = pa;
		l = common6(pa, a128_of(q->addr));
		if (l >= p->len)
			continue;
		nodes++;
		for (unsigned k = 0; k < depth; k++)
			if (stack[k] == l) {
				nodes--;
				break;
			}
	}
	return nodes;
}

/*
 * What rte_fib6's reservation check asks for when the sorted prefixes go in
 * one by one (DPDK 22.11 lib/fib/trie.c, trie_modify): a prefix of depth d >
 * 24 with no prefix already below its (d rounded down to 8)-bit block
 * reserves (ceil8(d) - ceil8(max(parent depth, 24))) / 8 groups, parent
 * being its longest covering prefix; it is refused with -ENOSPC when the
 * reservations so far plus its own exceed the trie's groups; the
 * reservation is kept unless the parent has its next hop (the trie is not
 * touched then). Returns the largest sum any check saw. In sorted order the
 * prefixes already in a block are its neighbours just before, and the
 * covering ones are on the stack.
 */
static uint32_t tbl8_reserved6(const struct fwd_table *t)
{
	uint8_t stack[129];
	struct a128 sa[129];
	uint16_t sr[129];
	unsigned depth = 0;
	uint64_t rsvd = 0, most = 0;

	for (uint32_t i = 0; i < t->nprefix6; i++) {
		const struct fwd_prefix6 *p = &t->prefix6[i];
		struct a128 pa = a128_of(p->addr);

		while (depth &&
		       (stack[depth - 1] > p->len || common6(sa[depth - 1], pa) < stack[depth - 1]))
			depth--;
		if (p->len > 24) {
			unsigned block = p->len / 8 * 8, diff = 0;
			const struct fwd_prefix6 *prev = i ? &t->prefix6[i - 1] : NULL;
			int below = prev && prev->len > block &&
				    common6(a128_of(prev->addr), pa) >= block;

			if (!below) {
				unsigned parent =
					depth && stack[depth - 1] > 24 ? stack[depth - 1] : 24;

				diff = ((p->len + 7) / 8 - (parent + 7) / 8);
			}
			if (rsvd + diff > most)
				most = rsvd + diff;
			if (!(depth && sr[depth - 1] == p->region))
				rsvd += diff;
		}
		stack[depth] = p->len;
		sa[depth] = pa;
		sr[depth++] = p->region;
	}
	return most > UINT32_MAX ? UINT32_MAX : (uint32_t)most;
}

/* ---- building ---------------------------------------------------------------------- */

static uint64_t heap_allocated(void)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < rte_socket_count(); i++) {
		struct rte_malloc_socket_stats s;

		if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &s) == 0)
			sum += s.heap_allocsz_bytes;
	}
	return sum;
}

struct job {
	const struct fwd_table *t;
	const struct dp_fib_room *room;
	char name[32];
	struct rte_fib *fib4;
	struct rte_fib6 *fib6;
	uint32_t nodes, tbl8;
	uint8_t nh_bytes;
	uint64_t ns, create_ns;
	int rc;
	struct fwd_err err;
};

/* Groups for a table that needs @need, with @room's on top (dp_fib.h). */
static uint64_t with_room(uint64_t need, const struct dp_fib_room *room)
{
	uint64_t n = need;

	if (room == NULL)
		return n;
	n += need * room->tbl8_pct / 100 + room->tbl8_min;
	if (room->keep_2b && n > DP_FIB_2B_MAX && need <= DP_FIB_2B_MAX)
		n = DP_FIB_2B_MAX;
	return n;
}

static void build4(struct job *j)
{
	const struct fwd_table *t = j->t;
	struct rte_fib_conf c = {0};
	uint64_t t0 = fwd_mono_ns();
	uint64_t nodes, tbl8;

	j->nodes = rib_nodes4(t);
	nodes = (uint64_t)j->nodes + 2 + (j->room ? 2ull * j->room->prefixes : 0);
	/* One spare group beyond the count, for install_to_fib()'s "room for
	 * two" check (dir24_8.c) on a later add; DPDK rounds up to 64 anyway. */
	tbl8 = with_room((uint64_t)tbl8_needed4(t) + 1, j->room);
	c.type = RTE_FIB_DIR24_8;
	c.default_nh = FWD_REGION_UNKNOWN;
	c.max_routes = (int)((nodes + 1) / 2); /* rte_fib_create: RIB nodes = max_routes x 2 */
	/* A tbl8 group's index is stored in the next-hop field, so 2-byte next
	 * hops address at most 32,767 groups. Stay at 2 bytes (half the tbl24,
	 * 32 MiB) while the table allows it, else 4 bytes. */
	c.dir24_8.num_tbl8 = (uint32_t)(tbl8 > UINT32_MAX / 2 ? UINT32_MAX / 2 : tbl8);
	c.dir24_8.nh_sz =
		c.dir24_8.num_tbl8 <= DP_FIB_2B_MAX ? RTE_FIB_DIR24_8_2B : RTE_FIB_DIR24_8_4B;
	j->tbl8 = c.dir24_8.num_tbl8;
	j->nh_bytes = c.dir24_8.nh_sz == RTE_FIB_DIR24_8_2B ? 2 : 4;
	j->fib4 = rte_fib_create(j->name, SOCKET_ID_ANY, &c);
	j->create_ns = fwd_mono_ns() - t0;
	if (j->fib4 == NULL) {
		j->rc = fwd_err_set(&j->err, t->source, 0, FWD_KEY_NAME(DOC, REGIONS),
				    "cannot create the IPv4 FIB (%u prefixes, %u tbl8): %s",
				    t->nprefix4, c.dir24_8.num_tbl8, rte_strerror(rte_errno));
		return;
	}
	for (uint32_t i = 0; i < t->nprefix4; i++) {
		int rc = rte_fib_add(j->fib4, t->prefix4[i].addr, t->prefix4[i].len,
				     t->prefix4[i].region);

		if (rc) {
			j->rc = fwd_err_set(&j->err, t->source, t->prefix4[i].line,
					    FWD_KEY_NAME(DOC, REGIONS),
					    "IPv4 FIB refused a prefix: %s", strerror(-rc));
			return;
		}
	}
	j->ns = fwd_mono_ns() - t0;
}

static void build6(struct job *j)
{
	const struct fwd_table *t = j->t;
	struct rte_fib6_conf c = {0};
	uint64_t t0 = fwd_mono_ns();
	uint64_t nodes, tbl8, need, rsvd;

	j->nodes = rib_nodes6(t);
	nodes = (uint64_t)j->nodes + 2 + (j->room ? 2ull * j->room->prefixes : 0);
	need = tbl8_needed6(t);
	rsvd = tbl8_reserved6(t);
	tbl8 = with_room((need > rsvd ? need : rsvd) + 1, j->room);
	c.type = RTE_FIB6_TRIE;
	c.default_nh = FWD_REGION_UNKNOWN;
	c.max_routes = (int)((nodes + 1) / 2);
	c.trie.num_tbl8 = (uint32_t)(tbl8 > UINT32_MAX / 2 ? UINT32_MAX / 2 : tbl8);
	c.trie.nh_sz = c.trie.num_tbl8 <= DP_FIB_2B_MAX ? RTE_FIB6_TRIE_2B : RTE_FIB6_TRIE_4B;
	j->tbl8 = c.trie.num_tbl8;
	j->nh_bytes = c.trie.nh_sz == RTE_FIB6_TRIE_2B ? 2 : 4;
	j->fib6 = rte_fib6_create(j->name, SOCKET_ID_ANY, &c);
	j->create_ns = fwd_mono_ns() - t0;
	if (j->fib6 == NULL) {
		j->rc = fwd_err_set(&j->err, t->source, 0, FWD_KEY_NAME(DOC, REGIONS),
				    "cannot create the IPv6 FIB (%u prefixes, %u tbl8): %s",
				    t->nprefix6, c.trie.num_tbl8, rte_strerror(rte_errno));
		return;
	}
	for (uint32_t i = 0; i < t->nprefix6; i++) {
		int rc = rte_fib6_add(j->fib6, t->prefix6[i].addr, t->prefix6[i].len,
				      t->prefix6[i].region);

		if (rc) {
			j->rc = fwd_err_set(&j->err, t->source, t->prefix6[i].line,
					    FWD_KEY_NAME(DOC, REGIONS),
					    "IPv6 FIB refused a prefix: %s", strerror(-rc));
			return;
		}
	}
	j->ns = fwd_mono_ns() - t0;
}

static void *build6_thread(void *arg)
{
	build6(arg);
	return NULL;
}

/* Releases in the background: FIB pairs queued, freed in order by one
 * detached control thread that lives while the queue has work. Any thread
 * may queue or wait (dp_fib.h). */
struct reap {
	struct rte_fib *fib4;
	struct rte_fib6 *fib6;
	struct reap *next;
};

static pthread_mutex_t reap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reap_idle = PTHREAD_COND_INITIALIZER;
static struct reap *queue, **queue_tail = &queue;
static int busy, background; /* busy: a release is queued or running */

void dp_fib_drain(void)
{
	pthread_mutex_lock(&reap_lock);
	while (busy)
		pthread_cond_wait(&reap_idle, &reap_lock);
	pthread_mutex_unlock(&reap_lock);
}

/* Where a control thread may run: DPDK sets it before the thread starts. */
static void *own_cores(void *arg)
{
	if (pthread_getaffinity_np(pthread_self(), sizeof(rte_cpuset_t), arg))
		CPU_ZERO((rte_cpuset_t *)arg);
	return NULL;
}

/* Whether a DPDK control thread runs on a core this thread does not: the
 * cores no lcore uses, when the box has some; else the main lcore's, and
 * then two FIBs built side by side on one core only take turns (measured:
 * 0.73 s against 0.52 s one after the other for a 1M + 200k table, as each
 * evicts the other's cache). Asked once, of a thread that does nothing. */
static int spare;

static void probe_cores(void)
{
	rte_cpuset_t mine, theirs;
	pthread_t tid;

	if (pthread_getaffinity_np(pthread_self(), sizeof(mine), &mine) ||
	    rte_ctrl_thread_create(&tid, "dp-fib-probe", NULL, own_cores, &theirs))
		return;
	pthread_join(tid, NULL);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &theirs) && !CPU_ISSET(c, &mine))
			spare = 1;
}

static int spare_core(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, probe_cores);
	return spare;
}

int dp_fib_build(const struct fwd_table *t, const struct dp_fib_room *room, struct rte_fib **fib4,
		 struct rte_fib6 **fib6, uint64_t *bytes, struct dp_fib_info *info,
		 struct fwd_err *err)
{
	/* Names must be unique while FIBs coexist (generations, a standby),
	 * whatever ids the control plane chooses and whichever thread builds. */
	static uint64_t build_seq;
	struct job j4 = {.t = t, .room = room}, j6 = {.t = t, .room = room};
	uint64_t t0 = fwd_mono_ns(), heap0, heap1, seq;
	pthread_t tid;
	int parallel;

	*fib4 = NULL;
	*fib6 = NULL;
	dp_fib_drain(); /* the last release first: never three generations' FIBs at once */
	heap0 = heap_allocated();
	seq = __atomic_add_fetch(&build_seq, 1, __ATOMIC_RELAXED);
	snprintf(j4.name, sizeof(j4.name), "fib4_%llu", (unsigned long long)seq);
	snprintf(j6.name, sizeof(j6.name), "fib6_%llu", (unsigned long long)seq);
	parallel = t->nprefix6 > 0 && spare_core() &&
		   rte_ctrl_thread_create(&tid, "dp-fib6", NULL, build6_thread, &j6) == 0;
	build4(&j4);
	if (parallel)
		pthread_join(tid, NULL);
	else
		build6(&j6);
	if (j4.rc || j6.rc) {
		/* Reported as before: IPv4 first. */
		*err = j4.rc ? j4.err : j6.err;
		rte_fib_free(j4.fib4);
		rte_fib6_free(j6.fib6);
		return j4.rc ? j4.rc : j6.rc;
	}
	*fib4 = j4.fib4;
	*fib6 = j6.fib6;
	heap1 = heap_allocated();
	*bytes = heap1 > heap0 ? heap1 - heap0 : 0;
	if (info) {
		info->rib_nodes4 = j4.nodes;
		info->rib_nodes6 = j6.nodes;
		info->tbl8_4 = j4.tbl8;
		info->tbl8_6 = j6.tbl8;
		info->nh_bytes4 = j4.nh_bytes;
		info->nh_bytes6 = j6.nh_bytes;
		info->ns4 = j4.ns;
		info->ns6 = j6.ns;
		info->create_ns4 = j4.create_ns;
		info->create_ns6 = j6.create_ns;
		info->wall_ns = fwd_mono_ns() - t0;
		info->parallel = parallel;
	}
	return 0;
}

/* ---- release ---------------------------------------------------------------------- */

static void *reap_thread(void *arg)
{
	struct reap *r;

	(void)arg;
	/* At the control thread's priority: rte_free() zeroes a freed table
	 * under the heap's spinlock, and a thread of lower priority holding
	 * it on the control thread's core would leave that thread spinning. */
	pthread_mutex_lock(&reap_lock);
	while ((r = queue) != NULL) {
		uint64_t t0 = fwd_mono_ns();

		queue = r->next;
		if (queue == NULL)
			queue_tail = &queue;
		pthread_mutex_unlock(&reap_lock);
		rte_fib6_free(r->fib6);
		rte_fib_free(r->fib4);
		DP_LOG(DEBUG, "retired FIBs freed in %.1f ms", (double)(fwd_mono_ns() - t0) / 1e6);
		free(r);
		pthread_mutex_lock(&reap_lock);
	}
	busy = 0;
	pthread_cond_broadcast(&reap_idle);
	pthread_mutex_unlock(&reap_lock);
	return NULL;
}

void dp_fib_free(struct rte_fib *fib4, struct rte_fib6 *fib6)
{
	struct reap *r;
	pthread_t tid;

	if (fib4 == NULL && fib6 == NULL)
		return;
	pthread_mutex_lock(&reap_lock);
	r = background ? malloc(sizeof(*r)) : NULL;
	if (r != NULL) {
		r->fib4 = fib4;
		r->fib6 = fib6;
		r->next = NULL;
		*queue_tail = r;
		queue_tail = &r->next;
		if (busy) { /* the running thread takes it next */
			pthread_mutex_unlock(&reap_lock);
			return;
		}
		if (rte_ctrl_thread_create(&tid, "dp-fib-free", NULL, reap_thread, NULL) == 0) {
			pthread_detach(tid);
			busy = 1;
			pthread_mutex_unlock(&reap_lock);
			return;
		}
		queue = NULL; /* no thread: freed here, as without background */
		queue_tail = &queue;
		free(r);
	}
	pthread_mutex_unlock(&reap_lock);
	rte_fib6_free(fib6);
	rte_fib_free(fib4);
}

void dp_fib_background(int on)
{
	pthread_mutex_lock(&reap_lock);
	background = on;
	pthread_mutex_unlock(&reap_lock);
	if (!on)
		dp_fib_drain();
}
