#include "ctl_ownset.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_hash.h"

struct slot {
	struct ctl_rib_pfx p; /* family 0: empty */
	uint16_t region; /* index into names */
};

struct ctl_ownset {
	struct slot *slots;
	size_t cap, used; /* cap: a power of two */
	/* The regions named, interned: a table has a few, not one per prefix. */
	char (*names)[FWD_NAME_MAX];
	unsigned nnames, capnames;
};

static uint64_t hash_pfx(const struct ctl_rib_pfx *p)
{
	uint64_t h = fwd_hash64(p->addr, p->family == 4 ? 4 : 16);

	h = fwd_hash64_update(h, &p->len, 1);
	h = fwd_hash64_update(h, &p->family, 1);
	return h ^ (h >> 29) ^ (h >> 47);
}

static int same(const struct ctl_rib_pfx *a, const struct ctl_rib_pfx *b)
{
	return a->family == b->family && a->len == b->len && memcmp(a->addr, b->addr, 16) == 0;
}

struct ctl_ownset *ctl_ownset_new(void)
{
	struct ctl_ownset *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->cap = 64;
	s->slots = calloc(s->cap, sizeof(*s->slots));
	if (s->slots == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void ctl_ownset_free(struct ctl_ownset *s)
{
	if (s == NULL)
		return;
	free(s->slots);
	free(s->names);
	free(s);
}

static struct slot *find(const struct ctl_ownset *s, const struct ctl_rib_pfx *p)
{
	size_t m = s->cap - 1;

	for (size_t i = hash_pfx(p) & m;; i = (i + 1) & m) {
		if (s->slots[i].p.family == 0)
			return NULL;
		if (same(&s->slots[i].p, p))
			return &s->slots[i];
	}
}

static int grow(struct ctl_ownset *s)
{
	size_t ncap = s->cap * 2, m = ncap - 1;
	struct slot *ns = calloc(ncap, sizeof(*ns));

	if (ns == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		size_t j;

		if (s->slots[i].p.family == 0)
			continue;
		for (j = hash_pfx(&s->slots[i].p) & m; ns[j].p.family; j = (j + 1) & m)
			;
		ns[j] = s->slots[i];
	}
	free(s->slots);
	s->slots = ns;
	s->cap = ncap;
	return 0;
}

static int intern(struct ctl_ownset *s, const char *region)
{
	for (unsigned i = 0; i < s->nnames; i++)
		if (strcmp(s->names[i], region) == 0)
			return (int)i;
	if (s->nnames == 65535)
		return -ENOSPC;
	if (s->nnames == s->capnames) {
		unsigned cap = s->capnames ? s->capnames * 2 : 8;
		void *n = realloc(s->names, cap * sizeof(*s->names));

		if (n == NULL)
			return -ENOMEM;
		s->names = n;
		s->capnames = cap;
	}
	snprintf(s->names[s->nnames], sizeof(s->names[0]), "%s", region);
	return (int)s->nnames++;
}

int ctl_ownset_put(struct ctl_ownset *s, const struct ctl_rib_pfx *p, const char *region)
{
	struct slot *x = find(s, p);
	int r = intern(s, region);
	size_t m, i;

	if (r < 0)
		return r;
	if (x) {
		x->region = (uint16_t)r;
		return 0;
	}
	if ((s->used + 1) * 10 > s->cap * 7 && grow(s))
		return -ENOMEM;
	m = s->cap - 1;
	for (i = hash_pfx(p) & m; s->slots[i].p.family; i = (i + 1) & m)
		;
	s->slots[i].p = *p;
	s->slots[i].region = (uint16_t)r;
	s->used++;
	return 0;
}

/* Backward-shift deletion, as the RIB's: no tombstones. */
void ctl_ownset_del(struct ctl_ownset *s, const struct ctl_rib_pfx *p)
{
	struct slot *x = find(s, p);
	size_t m = s->cap - 1, i, j;

	if (x == NULL)
		return;
	i = j = (size_t)(x - s->slots);
	for (;;) {
		size_t k;

		j = (j + 1) & m;
		if (s->slots[j].p.family == 0)
			break;
		k = hash_pfx(&s->slots[j].p) & m;
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		s->slots[i] = s->slots[j];
		i = j;
	}
	memset(&s->slots[i], 0, sizeof(s->slots[i]));
	s->used--;
}

const char *ctl_ownset_get(const struct ctl_ownset *s, const struct ctl_rib_pfx *p)
{
	const struct slot *x = find(s, p);

	return x ? s->names[x->region] : NULL;
}

size_t ctl_ownset_count(const struct ctl_ownset *s)
{
	return s->used;
}

int ctl_ownset_foreach(const struct ctl_ownset *s,
		       int (*fn)(void *arg, const struct ctl_rib_pfx *p, const char *region),
		       void *arg)
{
	for (size_t i = 0; i < s->cap; i++) {
		int rc;

		if (s->slots[i].p.family &&
		    (rc = fn(arg, &s->slots[i].p, s->names[s->slots[i].region])))
			return rc;
	}
	return 0;
}

int ctl_ownset_held_by(const struct fwd_table *t, const struct ctl_rib_pfx *p)
{
	uint32_t lo = 0, hi;

	if (t == NULL)
		return 0;
	/* Validation leaves the prefixes sorted by address, then length. */
	if (p->family == 4) {
		uint32_t a;

		memcpy(&a, p->addr, 4);
		a = ntohl(a);
		hi = t->nprefix4;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			const struct fwd_prefix4 *x = &t->prefix4[mid];

			if (x->addr == a && x->len == p->len)
				return x->region;
			if (x->addr < a || (x->addr == a && x->len < p->len))
				lo = mid + 1;
			else
				hi = mid;
		}
		return 0;
	}
	hi = t->nprefix6;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct fwd_prefix6 *x = &t->prefix6[mid];
		int c = memcmp(x->addr, p->addr, 16);

		if (c == 0 && x->len == p->len)
			return x->region;
		if (c < 0 || (c == 0 && x->len < p->len))
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

void ctl_ownset_keep_held(struct ctl_ownset *s, const struct fwd_table *t)
{
	/* The scan restarts at a slot an erase shifted another entry into. */
	for (size_t i = 0; i < s->cap;) {
		struct slot *x = &s->slots[i];
		int id;

		if (x->p.family == 0) {
			i++;
			continue;
		}
		id = ctl_ownset_held_by(t, &x->p);
		if (id > 0 && strcmp(t->region_names[id], s->names[x->region]) == 0) {
			i++;
			continue;
		}
		ctl_ownset_del(s, &x->p);
	}
}

char *ctl_ownset_text(const struct ctl_ownset *s, size_t *len)
{
	size_t cap = s->used * (64 + FWD_NAME_MAX) + 1, at = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return NULL;
	for (size_t i = 0; i < s->cap; i++) {
		char p[64];

		if (s->slots[i].p.family == 0)
			continue;
		at += (size_t)snprintf(buf + at, cap - at, "%s %s\n",
				       ctl_rib_pfx_str(&s->slots[i].p, p, sizeof(p)),
				       s->names[s->slots[i].region]);
	}
	buf[at] = '\0';
	*len = at;
	return buf;
}

int ctl_ownset_parse(struct ctl_ownset *s, const char *buf, size_t len, const char *name,
		     struct fwd_err *e)
{
	size_t at = 0;
	uint32_t line = 0;

	while (at < len) {
		const char *nl = memchr(buf + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (buf + at)) : len - at;
		char text[64 + FWD_NAME_MAX + 2], pfx[64], region[64];
		struct ctl_rib_pfx p;
		int rc;

		line++;
		/* Written whole (atomically): a line without its newline, or one
		 * that does not parse, is not one regiond wrote. */
		if (nl == NULL || n >= sizeof(text))
			return fwd_err_fail(e, FWD_R_STATE_CORRUPT, name, line, "",
					    "not a line regiond wrote");
		memcpy(text, buf + at, n);
		text[n] = '\0';
		if (sscanf(text, "%63s %63s", pfx, region) != 2 || ctl_rib_pfx_parse(pfx, &p) ||
		    strlen(region) >= FWD_NAME_MAX)
			return fwd_err_fail(e, FWD_R_STATE_CORRUPT, name, line, "",
					    "not 'PREFIX REGION'");
		if ((rc = ctl_ownset_put(s, &p, region)) != 0)
			return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory") ?: rc;
		at += n + 1;
	}
	return 0;
}
