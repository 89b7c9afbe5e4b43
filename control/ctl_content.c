#include "ctl_content.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define CACHE_SLOTS 4

/* The databases of the last few rule sets, by fwd_content_hash(). */
static struct {
	int used;
	struct fwd_hs_dbs dbs;
} cache[CACHE_SLOTS];
static unsigned cache_next;

static const struct fwd_hs_dbs *cache_get(uint64_t key)
{
	for (unsigned i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].used && cache[i].dbs.rules_hash == key)
			return &cache[i].dbs;
	return NULL;
}

/* Compile into the cache; returns the cached databases (borrowed) or NULL with @e. */
static const struct fwd_hs_dbs *compile(const struct fwd_table *t, struct fwd_err *e)
{
	static const struct fwd_hs_limits lim = FWD_HS_DEFAULT_LIMITS;
	const struct fwd_hs_dbs *hit = cache_get(fwd_content_hash(t));
	struct fwd_hs_dbs d;

	if (hit)
		return hit;
	if (fwd_hs_build(t, &lim, &d, e))
		return NULL;
	if (cache[cache_next].used)
		fwd_hs_free(&cache[cache_next].dbs);
	cache[cache_next].dbs = d;
	cache[cache_next].used = 1;
	hit = &cache[cache_next].dbs;
	cache_next = (cache_next + 1) % CACHE_SLOTS;
	return hit;
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

static const struct fwd_hs_dbs *ext_dbs(void *arg, const struct fwd_table *t)
{
	(void)arg;
	return ctl_content_dbs(t);
}

struct ctl_ext ctl_content_ext(void)
{
	return (struct ctl_ext){
		.name = "content", .validate = ext_validate, .content_dbs = ext_dbs};
}
