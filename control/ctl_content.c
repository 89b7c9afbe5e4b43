#include "ctl_content.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fwd_b64.h"
#include "fwd_hs.h"

#define CACHE_SLOTS 4

static const char *const field_keys[4] = {"payload", "tls_sni", "http_host", "dns_qname"};

static struct {
	uint64_t key;
	json_t *db; /* the "content_db" object */
} cache[CACHE_SLOTS];
static unsigned cache_next;

static json_t *cache_get(uint64_t key)
{
	for (unsigned i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].db && cache[i].key == key)
			return cache[i].db;
	return NULL;
}

static json_t *dbs_json(uint64_t key, const struct fwd_hs_dbs *d)
{
	json_t *o = json_object();
	char h[17];

	if (o == NULL)
		return NULL;
	snprintf(h, sizeof(h), "%016llx", (unsigned long long)key);
	json_object_set_new(o, "rules_hash", json_string(h));
	for (int f = 0; f < 4; f++) {
		char *b;

		if (d->bytes[f] == NULL)
			continue;
		b = malloc(fwd_b64_enc_len(d->len[f]) + 1);
		if (b == NULL) {
			json_decref(o);
			return NULL;
		}
		fwd_b64_encode(d->bytes[f], d->len[f], b);
		json_object_set_new(o, field_keys[f], json_string(b));
		free(b);
	}
	return o;
}

/* Compile into the cache; returns the cached object (borrowed) or NULL with @e. */
static json_t *compile(const struct fwd_table *t, struct fwd_err *e)
{
	static const struct fwd_hs_limits lim = FWD_HS_DEFAULT_LIMITS;
	uint64_t key = fwd_content_hash(t);
	json_t *db = cache_get(key);
	struct fwd_hs_dbs d;

	if (db)
		return db;
	if (fwd_hs_build(t, &lim, &d, e))
		return NULL;
	db = dbs_json(key, &d);
	fwd_hs_free(&d);
	if (db == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "content_rules", "out of memory");
		return NULL;
	}
	json_decref(cache[cache_next].db);
	cache[cache_next].key = key;
	cache[cache_next].db = db;
	cache_next = (cache_next + 1) % CACHE_SLOTS;
	return db;
}

int ctl_content_validate(const struct fwd_table *t, struct fwd_err *e)
{
	if (t->ncontent == 0)
		return 0;
	return compile(t, e) ? 0 : -EINVAL;
}

json_t *ctl_content_push_extra(const struct fwd_table *t)
{
	struct fwd_err e = {0};
	json_t *db;

	if (t->ncontent == 0 || (db = compile(t, &e)) == NULL)
		return NULL;
	return json_pack("{s:O}", "content_db", db);
}

void ctl_content_cleanup(void)
{
	for (unsigned i = 0; i < CACHE_SLOTS; i++) {
		json_decref(cache[i].db);
		cache[i].db = NULL;
	}
}
