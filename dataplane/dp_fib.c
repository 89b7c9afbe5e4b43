/*
 * dp_fib.c - the FIBs of a table: counted sizes, IPv6 on a second thread,
 * release in the background (dp_fib.h).
 */
#define _GNU_SOURCE /* pthread_getaffinity_np */
#include "dp_fib.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_lcore.h>

#include "dp_log.h"
#include "fwd_hugemap.h"
#include "fwd_names.h"
#include "fwd_stages.h"

/* ---- building ---------------------------------------------------------------------- */

/* Tables from this many prefixes on keep freed FIB memory for the next
 * build (below). */
#define DP_FIB_KEEP_PREFIXES 65536u

struct job {
	const struct fwd_table *t;
	const struct dp_fib_room *room;
	struct fwd_fib4 *fib4;
	struct fwd_fib6 *fib6;
	uint32_t groups;
	uint64_t ns, create_ns;
	int rc;
	struct fwd_err err;
};

/* Groups for a table that needs @need, with @room's on top. */
static uint32_t with_room(uint64_t need, const struct dp_fib_room *room)
{
	uint64_t n = need;

	if (room)
		n += need * room->groups_pct / 100 + room->groups_min;
	return (uint32_t)(n > UINT32_MAX / 2 ? UINT32_MAX / 2 : n);
}

static void build4(struct job *j)
{
	const struct fwd_table *t = j->t;
	uint64_t t0 = fwd_mono_ns();
	uint32_t groups = with_room(fwd_fib4_groups_needed(t->prefix4, t->nprefix4), j->room);
	int rc;

	j->fib4 = fwd_fib4_create(groups);
	j->create_ns = fwd_mono_ns() - t0;
	if (j->fib4 == NULL) {
		j->rc = fwd_err_set(&j->err, t->source, 0, FWD_KEY_NAME(DOC, REGIONS),
				    "cannot create the IPv4 FIB (%u prefixes, %u groups): %s",
				    t->nprefix4, groups, strerror(errno));
		return;
	}
	if ((rc = fwd_fib4_build(j->fib4, t->prefix4, t->nprefix4)) != 0) {
		j->rc = fwd_err_set(&j->err, t->source, 0, FWD_KEY_NAME(DOC, REGIONS),
				    "cannot build the IPv4 FIB (%u prefixes): %s", t->nprefix4,
				    strerror(-rc));
		return;
	}
	j->groups = j->fib4->groups;
	j->ns = fwd_mono_ns() - t0;
}

static void build6(struct job *j)
{
	const struct fwd_table *t = j->t;
	uint64_t t0 = fwd_mono_ns();
	uint32_t groups = with_room(fwd_fib6_groups_needed(t->prefix6, t->nprefix6), j->room);
	int rc;

	j->fib6 = fwd_fib6_create(groups);
	j->create_ns = fwd_mono_ns() - t0;
	if (j->fib6 == NULL) {
		j->rc = fwd_err_set(&j->err, t->source, 0, FWD_KEY_NAME(DOC, REGIONS),
				    "cannot create the IPv6 FIB (%u prefixes, %u groups): %s",
				    t->nprefix6, groups, strerror(errno));
		return;
	}
	if ((rc = fwd_fib6_build(j->fib6, t->prefix6, t->nprefix6)) != 0) {
		j->rc = fwd_err_set(&j->err, t->source, 0, FWD_KEY_NAME(DOC, REGIONS),
				    "cannot build the IPv6 FIB (%u prefixes): %s", t->nprefix6,
				    strerror(-rc));
		return;
	}
	j->groups = j->fib6->groups;
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
	struct fwd_fib4 *fib4;
	struct fwd_fib6 *fib6;
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

int dp_fib_build(const struct fwd_table *t, const struct dp_fib_room *room, struct fwd_fib4 **fib4,
		 struct fwd_fib6 **fib6, uint64_t *bytes, struct dp_fib_info *info,
		 struct fwd_err *err)
{
	struct job j4 = {.t = t, .room = room}, j6 = {.t = t, .room = room};
	uint64_t t0 = fwd_mono_ns();
	pthread_t tid;
	int parallel, routing_scale;

	*fib4 = NULL;
	*fib6 = NULL;
	dp_fib_drain(); /* the last release first: never three generations' FIBs at once */
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
		fwd_fib4_free(j4.fib4);
		fwd_fib6_free(j6.fib6);
		return j4.rc ? j4.rc : j6.rc;
	}
	*fib4 = j4.fib4;
	*fib6 = j6.fib6;
	*bytes = fwd_fib4_bytes(j4.fib4) + fwd_fib6_bytes(j6.fib6);
	/* The next build takes the memory of a pair freed before it (whose
	 * pages are in place) instead of touching new memory (fwd_hugemap.h
	 * says what that saves). Two pairs' worth: a whole replacement frees
	 * two (the standby and the retired pair) and the standby built next
	 * takes one, so the other waits for the next replacement. Only for
	 * tables of routing scale: a build on kept memory writes both 64 MiB
	 * first tables whole, so a small table would hold ~128 MiB resident
	 * per pair, four pairs, where on fresh memory it touches a few pages. */
	routing_scale = (uint64_t)t->nprefix4 + t->nprefix6 >= DP_FIB_KEEP_PREFIXES;
	fwd_hugemap_keep(routing_scale ? *bytes * 2 : 0);
	if (info) {
		info->groups4 = j4.groups;
		info->groups6 = j6.groups;
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
	/* At the control thread's priority (a DPDK control thread), as when
	 * the FIBs were DPDK's and their release held the heap's spinlock. */
	pthread_mutex_lock(&reap_lock);
	while ((r = queue) != NULL) {
		uint64_t t0 = fwd_mono_ns();

		queue = r->next;
		if (queue == NULL)
			queue_tail = &queue;
		pthread_mutex_unlock(&reap_lock);
		fwd_fib6_free(r->fib6);
		fwd_fib4_free(r->fib4);
		DP_LOG(DEBUG, "retired FIBs freed in %.1f ms", (double)(fwd_mono_ns() - t0) / 1e6);
		free(r);
		pthread_mutex_lock(&reap_lock);
	}
	busy = 0;
	pthread_cond_broadcast(&reap_idle);
	pthread_mutex_unlock(&reap_lock);
	return NULL;
}

void dp_fib_free(struct fwd_fib4 *fib4, struct fwd_fib6 *fib6)
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
	fwd_fib6_free(fib6);
	fwd_fib4_free(fib4);
}

void dp_fib_background(int on)
{
	pthread_mutex_lock(&reap_lock);
	background = on;
	pthread_mutex_unlock(&reap_lock);
	if (!on)
		dp_fib_drain();
}
