#include "ctl_content.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_clock.h"

#define CACHE_SLOTS 4
/* How long a rule set's refusal is answered from memory: a compile that
 * ran out of CPU time on a busy machine may pass later. */
#define REFUSAL_TTL_MS 60000

/* The compiling child's limits: --content-compile-cpu sets the CPU time
 * before any thread runs, so it is read without a lock. */
static struct fwd_hs_limits limits = FWD_HS_DEFAULT_LIMITS;

void ctl_content_set_cpu_seconds(unsigned seconds)
{
	limits.cpu_seconds = seconds;
}

/* The databases of the last few rule sets, by fwd_content_hash(); and
 * the refusals of the last few. Read and changed under regiond's state
 * lock only: a push borrows the databases while holding it. */
static struct {
	int used;
	struct fwd_hs_dbs dbs;
} cache[CACHE_SLOTS];
static unsigned cache_next;
static struct {
	int used;
	uint64_t hash;
	int64_t at_ms;
	struct fwd_err e;
} refusals[CACHE_SLOTS];
static unsigned refusal_next;

/* What this thread's prepare found or compiled, for its own validate under
 * the lock: a copy of its own, which no other request can push out of the
 * shared cache in between (a review: four cheap refusals between the
 * prepare and the validate of an expensive table made the validate
 * compile again, under the lock). */
static __thread struct {
	int state; /* 0: nothing, 1: dbs, 2: the refusal e */
	uint64_t key;
	struct fwd_hs_dbs dbs;
	struct fwd_err e;
} mine;

static void mine_drop(void)
{
	if (mine.state == 1)
		fwd_hs_free(&mine.dbs);
	mine.state = 0;
}

static int dbs_copy(struct fwd_hs_dbs *to, const struct fwd_hs_dbs *from)
{
	*to = *from;
	for (int f = 0; f < 4; f++) {
		to->bytes[f] = NULL;
		if (from->bytes[f] == NULL)
			continue;
		to->bytes[f] = malloc(from->len[f] ? from->len[f] : 1);
		if (to->bytes[f] == NULL) {
			fwd_hs_free(to);
			return -ENOMEM;
		}
		memcpy(to->bytes[f], from->bytes[f], from->len[f]);
	}
	return 0;
}

/* One compile at a time outside the state lock for reads, one for writes:
 * the CPU a compile takes stays bounded, and a stream of reads cannot
 * make a write wait. Taken before the state lock, never under it. */
static pthread_mutex_t compile_mu[2] = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER};

static const struct fwd_hs_dbs *cache_get(uint64_t key)
{
	for (unsigned i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].used && cache[i].dbs.rules_hash == key)
			return &cache[i].dbs;
	return NULL;
}

static const struct fwd_hs_dbs *cache_put(struct fwd_hs_dbs *d)
{
	const struct fwd_hs_dbs *hit;

	if (cache[cache_next].used)
		fwd_hs_free(&cache[cache_next].dbs);
	cache[cache_next].dbs = *d;
	cache[cache_next].used = 1;
	hit = &cache[cache_next].dbs;
	cache_next = (cache_next + 1) % CACHE_SLOTS;
	return hit;
}

static const struct fwd_err *refusal_get(uint64_t key)
{
	for (unsigned i = 0; i < CACHE_SLOTS; i++)
		if (refusals[i].used && refusals[i].hash == key &&
		    fwd_mono_ms() - refusals[i].at_ms < REFUSAL_TTL_MS)
			return &refusals[i].e;
	return NULL;
}

/* A refusal for what the rules are (not a fork or pipe that failed). */
static void refusal_put(uint64_t key, const struct fwd_err *e)
{
	if (e->reason_code == FWD_R_INTERNAL)
		return;
	refusals[refusal_next].used = 1;
	refusals[refusal_next].hash = key;
	refusals[refusal_next].at_ms = fwd_mono_ms();
	refusals[refusal_next].e = *e;
	refusal_next = (refusal_next + 1) % CACHE_SLOTS;
}

/* A remembered refusal as @t's: the same rules (by hash, in the same
 * order) may sit in another document, or at other lines of it. */
static void refusal_for(const struct fwd_table *t, const struct fwd_err *no, struct fwd_err *e)
{
	unsigned rule;

	*e = *no;
	snprintf(e->file, sizeof(e->file), "%s", t->source);
	if (e->line && sscanf(e->path, "content_rules[%u]", &rule) == 1 && rule < t->ncontent)
		e->line = t->content[rule].line;
}

/* Compile into the cache; returns the cached databases (borrowed) or NULL
 * with @e. Under the state lock: fast when ctl_content_prepare() ran. */
static const struct fwd_hs_dbs *compile(const struct fwd_table *t, struct fwd_err *e)
{
	const uint64_t key = fwd_content_hash(t);
	const struct fwd_hs_dbs *hit = cache_get(key);
	const struct fwd_err *no = hit ? NULL : refusal_get(key);
	struct fwd_hs_dbs d;

	if (hit)
		return hit;
	if (mine.state && mine.key == key) {
		if (mine.state == 2) {
			refusal_for(t, &mine.e, e);
			return NULL;
		}
		mine.state = 0;
		return cache_put(&mine.dbs); /* the cache owns it now */
	}
	if (no) {
		refusal_for(t, no, e);
		return NULL;
	}
	if (fwd_hs_build(t, &limits, &d, e)) {
		refusal_put(key, e);
		return NULL;
	}
	return cache_put(&d);
}

void ctl_content_prepare(const struct fwd_table *t, pthread_mutex_t *state_lock, int writer)
{
	const struct fwd_hs_dbs *hit;
	const struct fwd_err *no;
	struct fwd_hs_dbs d, c;
	struct fwd_err e;
	uint64_t key;
	int rc;

	mine_drop();
	if (t == NULL || t->ncontent == 0)
		return;
	key = fwd_content_hash(t);
	pthread_mutex_lock(&compile_mu[writer != 0]);
	if (state_lock)
		pthread_mutex_lock(state_lock);
	hit = cache_get(key);
	no = hit ? NULL : refusal_get(key);
	if (hit && dbs_copy(&mine.dbs, hit) == 0)
		mine.state = 1;
	else if (no)
		mine.e = *no, mine.state = 2;
	mine.key = key;
	if (state_lock)
		pthread_mutex_unlock(state_lock);
	if (!hit && !no) {
		rc = fwd_hs_build(t, &limits, &d, &e);
		if (state_lock)
			pthread_mutex_lock(state_lock);
		if (rc) {
			refusal_put(key, &e);
			if (e.reason_code != FWD_R_INTERNAL)
				mine.e = e, mine.state = 2;
		} else {
			if (!cache_get(key) && dbs_copy(&c, &d) == 0)
				cache_put(&c);
			mine.dbs = d;
			mine.state = 1;
		}
		if (state_lock)
			pthread_mutex_unlock(state_lock);
	}
	pthread_mutex_unlock(&compile_mu[writer != 0]);
}

int ctl_content_validate(const struct fwd_table *t, struct fwd_err *e)
{
	if (t->ncontent == 0)
		return 0;
	return compile(t, e) ? 0 : -EINVAL;
}

const struct fwd_hs_dbs *ctl_content_dbs(const struct fwd_table *t)
{
	struct fwd_err e = {0};

	if (t->ncontent == 0)
		return NULL;
	return compile(t, &e);
}

void ctl_content_cleanup(void)
{
	for (unsigned i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i].used)
			fwd_hs_free(&cache[i].dbs);
		cache[i].used = 0;
	}
}

static int ext_validate(void *arg, const struct fwd_table *t, struct fwd_err *e)
{
	(void)arg;
	return ctl_content_validate(t, e);
}

static void ext_prepare(void *arg, const struct fwd_table *t, pthread_mutex_t *state_lock,
			int writer)
{
	(void)arg;
	ctl_content_prepare(t, state_lock, writer);
}

static const struct fwd_hs_dbs *ext_dbs(void *arg, const struct fwd_table *t)
{
	(void)arg;
	return ctl_content_dbs(t);
}

struct ctl_ext ctl_content_ext(void)
{
	return (struct ctl_ext){.name = "content",
				.validate = ext_validate,
				.prepare = ext_prepare,
				.content_dbs = ext_dbs};
}
