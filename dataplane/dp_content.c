#include "dp_content.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_malloc.h>

#include "fwd_names.h"
#include "fwd_doc.h"
#include "fwd_clock.h"

void dp_content_free(struct dp_content *c)
{
	if (c == NULL)
		return;
	for (uint16_t w = 0; w <= c->nworkers; w++)
		hs_free_scratch(c->scratch[w]);
	for (int f = 0; f < 4; f++) {
		hs_free_database(c->db[f]);
		fwd_nameset_free(c->ns[f]);
		free(c->unread_rules[f]);
	}
	rte_free(c->scope);
	for (uint16_t w = 0; w < c->nworkers && w < DP_MAX_WORKERS; w++)
		rte_free(c->top[w]);
	free(c->top_of);
	free(c->rule_keys);
	free(c->key_index);
	free(c);
}

static int build_scope(struct dp_content *c, const struct fwd_table *t)
{
	c->nservices = t->nservices;
	c->scope = rte_zmalloc("dp_content_scope", (size_t)t->nregions * t->nservices, 0);
	if (c->scope == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->ncontent; i++) {
		const struct fwd_content_rule *r = &t->content[i];
		uint16_t nreg = r->nregions ? r->nregions : t->nregions;

		for (uint16_t k = 0; k < nreg; k++) {
			uint16_t region = r->nregions ? r->regions[k] : k;

			for (uint16_t s = 0; s < r->nservices; s++)
				c->scope[(uint32_t)region * t->nservices + r->services[s]] |=
					(uint8_t)(1u << r->field);
		}
	}
	return 0;
}

/*
 * A rule's key: its name and what it matches (field, pattern or names and
 * their flags, unreadable), not its action, target or scope. A TCP flow
 * decided under an earlier generation follows the rule of the same key
 * (dp_worker.c): a rule whose action was raised from count to drop still
 * holds the connections it matched, but a rule of the same name that now
 * matches something else does not. Keyed by the name alone, a flow pinned
 * by "watch" counting 'example' was dropped, every packet unscanned, once
 * "watch" became a drop of 'evil\.example$', and explain said it passed
 * (a hostile probe).
 */
static uint64_t rule_key(const struct fwd_content_rule *r)
{
	/* the kind too: a pattern 'a.example' and a set of the one name
	 * 'a.example' hash the same bytes, and match differently (a review) */
	const uint8_t how[5] = {r->field, r->literal, r->caseless, r->unreadable,
				(uint8_t)(r->pattern != NULL ? 1
					  : r->names != NULL ? 2
							     : 0)};
	uint64_t h = fwd_hash64(r->name, strlen(r->name) + 1);

	h = fwd_hash64_update(h, how, sizeof(how));
	if (r->pattern != NULL)
		h = fwd_hash64_update(h, r->pattern, strlen(r->pattern) + 1);
	if (r->names != NULL)
		h = fwd_hash64_update(h, r->names, r->names_len);
	return h;
}

static int build_keys(struct dp_content *c, const struct fwd_table *t)
{
	uint32_t size = 16;

	while (size < t->ncontent * 2)
		size <<= 1;
	c->key_mask = size - 1;
	c->rule_keys = calloc(t->ncontent, sizeof(*c->rule_keys));
	c->key_index = calloc(size, sizeof(*c->key_index));
	if (c->rule_keys == NULL || c->key_index == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->ncontent; i++) {
		uint64_t k = rule_key(&t->content[i]);
		uint32_t h = (uint32_t)k & c->key_mask;

		c->rule_keys[i] = k;
		while (c->key_index[h])
			h = (h + 1) & c->key_mask;
		c->key_index[h] = i + 1;
	}
	return 0;
}

uint32_t dp_content_rule_by_key(const struct dp_content *c, uint64_t key)
{
	for (uint32_t h = (uint32_t)key & c->key_mask;; h = (h + 1) & c->key_mask) {
		uint32_t v = c->key_index[h];

		if (v == 0)
			return DP_CONTENT_NONE;
		if (c->rule_keys[v - 1] == key)
			return v - 1;
	}
}

#define NS_ADD_BATCH 256

/* One set per field from the rules' names; the rule index is what a hit
 * reports, like a Hyperscan pattern id. */
static int build_namesets(struct dp_content *c, const struct fwd_table *t, struct fwd_err *err)
{
	uint64_t t0 = fwd_mono_ns();

	for (int f = 0; f < 4; f++) {
		uint64_t n = 0, bytes = 0;

		for (uint32_t i = 0; i < t->ncontent; i++)
			if (t->content[i].field == f && t->content[i].names) {
				n += t->content[i].nnames;
				bytes += t->content[i].names_len;
			}
		if (n == 0)
			continue;
		if ((c->ns[f] = fwd_nameset_create((uint32_t)n, bytes)) == NULL)
			return fwd_err_set(err, t->source, 0, FWD_KEY_NAME(DOC, CONTENT_RULES),
					   "out of memory for the name sets");
		for (uint32_t i = 0; i < t->ncontent; i++) {
			const struct fwd_content_rule *r = &t->content[i];
			struct fwd_ns_add batch[NS_ADD_BATCH];
			uint32_t nb = 0, bad;
			int rc = 0;

			if (r->field != f || r->names == NULL)
				continue;
			/* In batches: fwd_nameset_add_many overlaps the inserts' misses. */
			for (const char *p = r->names; p < r->names + r->names_len && !rc;) {
				size_t len = strlen(p);
				int sfx = len > 2 && p[0] == '*' && p[1] == '.';

				batch[nb++] = (struct fwd_ns_add){.name = p + 2 * sfx,
								  .len = (uint32_t)(len - 2 * sfx),
								  .rule = i,
								  .kind = sfx ? FWD_NS_SUFFIX
									      : FWD_NS_EXACT};
				p += len + 1;
				if (nb == NS_ADD_BATCH || p >= r->names + r->names_len) {
					rc = fwd_nameset_add_many(c->ns[f], batch, nb, &bad);
					nb = 0;
				}
			}
			if (rc)
				return fwd_err_set(
					err, t->source, r->line, FWD_KEY_NAME(DOC, CONTENT_RULES),
					"rule '%s': name '%.*s' not added (%s)", r->name,
					(int)batch[bad].len, batch[bad].name, strerror(-rc));
		}
		c->names += fwd_nameset_count(c->ns[f]);
		c->names_bytes += fwd_nameset_bytes(c->ns[f]);
	}
	c->names_build_s = (double)(fwd_mono_ns() - t0) / 1e9;
	return 0;
}

static int build_top(struct dp_content *c, const struct fwd_table *t, struct fwd_err *err)
{
	if ((c->top_of = malloc(sizeof(*c->top_of) * t->ncontent)) == NULL)
		goto nomem;
	for (uint32_t i = 0; i < t->ncontent; i++)
		c->top_of[i] = t->content[i].names ? c->ntop++ : DP_CONTENT_NONE;
	for (uint16_t w = 0; c->ntop && w < c->nworkers; w++)
		if ((c->top[w] =
			     rte_zmalloc("dp_content_top",
					 sizeof(struct dp_content_top) * DP_CONTENT_TOP_K * c->ntop,
					 RTE_CACHE_LINE_SIZE)) == NULL)
			goto nomem;
	return 0;
nomem:
	return fwd_err_set(err, t->source, 0, FWD_KEY_NAME(DOC, CONTENT_RULES), "out of memory");
}

/* Per field, the rules that match an unreadable name (no Hyperscan, no
 * set: the extractor's result is the match). */
static int build_unread(struct dp_content *c, const struct fwd_table *t, struct fwd_err *err)
{
	for (uint32_t i = 0; i < t->ncontent; i++)
		c->nunread[t->content[i].field] += t->content[i].unreadable;
	for (int f = 0; f < 4; f++) {
		uint32_t n = 0;

		if (c->nunread[f] == 0)
			continue;
		if ((c->unread_rules[f] = malloc(sizeof(uint32_t) * c->nunread[f])) == NULL)
			return fwd_err_set(err, t->source, 0, FWD_KEY_NAME(DOC, CONTENT_RULES),
					   "out of memory");
		for (uint32_t i = 0; i < t->ncontent; i++)
			if (t->content[i].field == f && t->content[i].unreadable)
				c->unread_rules[f][n++] = i;
	}
	return 0;
}

int dp_content_build(const struct fwd_table *t, const struct fwd_hs_dbs *shipped, uint16_t nworkers,
		     struct dp_content **out, struct fwd_err *err)
{
	static const struct fwd_hs_limits lim = FWD_HS_DEFAULT_LIMITS;
	struct fwd_hs_dbs local = {0};
	const struct fwd_hs_dbs *d = shipped;
	struct dp_content *c;
	int rc = 0;

	*out = NULL;
	if (t->ncontent == 0)
		return 0;
	if (d != NULL && d->rules_hash != fwd_content_hash(t))
		return fwd_err_set(
			err, t->source, 0, "content_db.rules_hash",
			"the databases were compiled from other content rules than this table's");
	if (d == NULL && fwd_content_patterns(t) == 0) {
		d = &local; /* name sets only: nothing for Hyperscan */
	} else if (d == NULL) {
		const char *code;

		if ((rc = fwd_hs_compile(t, &lim, &local, err, &code)))
			return rc;
		d = &local;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	c->t = t;
	c->nworkers = nworkers;
	c->compiled_here = d == &local && fwd_content_patterns(t) > 0;
	for (int f = 0; f < 4; f++) {
		int has = 0;

		for (uint32_t i = 0; i < t->ncontent && !has; i++)
			has = t->content[i].field == f && t->content[i].pattern;
		if (has != (d->bytes[f] != NULL)) {
			rc = fwd_err_set(err, t->source, 0, "content_db", "database for '%s' %s",
					 fwd_content_field_name(f),
					 has ? "missing" : "without rules");
			goto out;
		}
		if (!has)
			continue;
		if (hs_deserialize_database(d->bytes[f], d->len[f], &c->db[f]) != HS_SUCCESS) {
			rc = fwd_err_set(
				err, t->source, 0, "content_db",
				"database for '%s' does not "
				"deserialize (corrupt, or built for another Hyperscan or CPU)",
				fwd_content_field_name(f));
			goto out;
		}
		size_t sz = 0;

		hs_database_size(c->db[f], &sz);
		c->db_bytes += sz;
		/* One scratch serves every database it was allocated for. */
		for (uint16_t w = 0; w <= nworkers; w++)
			if (hs_alloc_scratch(c->db[f], &c->scratch[w]) != HS_SUCCESS) {
				rc = fwd_err_set(err, t->source, 0,
						 FWD_KEY_NAME(DOC, CONTENT_RULES),
						 "out of memory for Hyperscan scratch");
				goto out;
			}
	}
	for (uint16_t w = 0; w <= nworkers && c->scratch[w]; w++) {
		size_t sz = 0;

		hs_scratch_size(c->scratch[w], &sz);
		c->scratch_bytes += sz;
	}
	if ((rc = build_namesets(c, t, err)) || (rc = build_top(c, t, err)) ||
	    (rc = build_unread(c, t, err)))
		goto out;
	for (int f = 0; f < 4; f++)
		if (c->db[f] || c->ns[f] || c->nunread[f])
			c->fields_used |= (uint8_t)(1u << f);
	if (build_scope(c, t) || build_keys(c, t)) {
		rc = fwd_err_set(err, t->source, 0, FWD_KEY_NAME(DOC, CONTENT_RULES),
				 "out of memory");
		goto out;
	}
	*out = c;
	c = NULL;
out:
	dp_content_free(c);
	fwd_hs_free(&local);
	return rc;
}

/* ---- scanning ------------------------------------------------------------------- */

struct match_ctx {
	const struct dp_content *c;
	const struct dp_content_input *in;
	struct dp_content_verdict *v;
	uint32_t nseen; /* rules matched by this packet (each counts once) */
	uint32_t seen[DP_CONTENT_SEEN];
	int field; /* the field hs_scan() scans */
};

static inline int rank(uint8_t action)
{
	return action == FWD_CA_DROP	 ? 3
	       : action == FWD_CA_STEER	 ? 2
	       : action == FWD_CA_MIRROR ? 1
					 : 0;
}

static int in_rule_scope(const struct fwd_content_rule *r, uint16_t region, uint16_t service)
{
	int ok = r->nregions == 0;

	for (uint16_t k = 0; k < r->nregions && !ok; k++)
		ok = r->regions[k] == region;
	if (!ok)
		return 0;
	for (uint16_t k = 0; k < r->nservices; k++)
		if (r->services[k] == service)
			return 1;
	return 0;
}

int dp_content_rule_scopes(const struct dp_content *c, uint32_t rule, uint16_t region,
			   uint16_t service)
{
	return in_rule_scope(&dp_content_table(c)->content[rule], region, service);
}

/* Space-saving (Metwally et al.): a name already held counts up; another
 * takes the smallest slot and its count plus one, so a name matched more
 * than 1/K of the time always holds a slot. Only this worker writes these
 * slots; relaxed stores let a reader see each word whole (a key and its
 * count may be a moment apart: an estimate either way). */
static void top_add(struct dp_content_top *t, uint64_t key)
{
	unsigned min = 0;

	for (unsigned k = 0; k < DP_CONTENT_TOP_K; k++) {
		if (t[k].key == key) {
			__atomic_store_n(&t[k].count, t[k].count + 1, __ATOMIC_RELAXED);
			return;
		}
		if (t[k].count < t[min].count)
			min = k;
	}
	__atomic_store_n(&t[min].key, key, __ATOMIC_RELAXED);
	__atomic_store_n(&t[min].count, t[min].count + 1, __ATOMIC_RELAXED);
}

/* Rule @id matched (a pattern, or entry @entry of a name set by @kind). */
static void matched(struct match_ctx *m, unsigned id, uint32_t entry, uint8_t kind)
{
	const struct fwd_content_rule *r = &dp_content_table(m->c)->content[id];
	struct dp_content_verdict *v = m->v;

	if (!in_rule_scope(r, m->in->region, m->in->service))
		return;
	/* A name can match one rule's set twice (as itself and under a
	 * suffix, or under two suffixes), and a packet's names (pipelined
	 * requests) one rule each: the rule matched once. */
	{
		for (uint32_t h = 0; h < m->nseen; h++)
			if (m->seen[h] == id)
				return;
		if (m->nseen < DP_CONTENT_SEEN)
			m->seen[m->nseen++] = id;
	}
	if (m->in->match_cnt)
		m->in->match_cnt[id]++;
	if (kind && m->in->top)
		top_add(m->in->top + (size_t)m->c->top_of[id] * DP_CONTENT_TOP_K,
			(uint64_t)entry << 2 | kind);
	{
		/* The list keeps the first rules in document order, whatever
		 * order Hyperscan reports them in: a full list gives up its
		 * latest rule for an earlier one (the cold case, over
		 * DP_CONTENT_MAX_HITS matches). */
		uint32_t slot = v->nhits;

		if (unlikely(slot >= DP_CONTENT_MAX_HITS)) {
			slot = 0;
			for (uint32_t h = 1; h < DP_CONTENT_MAX_HITS; h++)
				if (v->hits[h] > v->hits[slot])
					slot = h;
			if (v->hits[slot] < id)
				slot = DP_CONTENT_MAX_HITS;
		}
		if (slot < DP_CONTENT_MAX_HITS) {
			v->hits[slot] = id;
			v->hit_entry[slot] = entry;
			v->hit_kind[slot] = kind;
		}
	}
	v->nhits++;
	if (v->rule == DP_CONTENT_NONE ||
	    rank(r->action) > rank(dp_content_table(m->c)->content[v->rule].action) ||
	    (rank(r->action) == rank(dp_content_table(m->c)->content[v->rule].action) &&
	     id < v->rule)) {
		v->rule = id;
		v->rule_entry = entry;
		v->rule_kind = kind;
	}
}

/* Hyperscan's callback; SINGLEMATCH makes it run at most once per rule and scan. */
static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
		    void *arg)
{
	struct match_ctx *m = arg;
	const struct fwd_table *t = dp_content_table(m->c);

	(void)from;
	(void)to;
	(void)flags;
	/* The id indexes the rules. A database regiond compiled reports only
	 * this field's pattern rules; one pushed by another client of the
	 * control socket (a frame is outside input) may report any id, and
	 * one past the rules was read and counted through (a hostile probe's
	 * push crashed the worker). Anything else ends the scan as a failed
	 * one: counted (content_scan_error), the packet keeps its policy
	 * decision. The id cannot be checked when the database arrives:
	 * Hyperscan does not list a serialized database's ids. */
	if (unlikely(id >= t->ncontent || t->content[id].field != m->field ||
		     t->content[id].pattern == NULL))
		return 1;
	matched(m, id, 0, 0);
	return 0; /* go on: every matching rule is counted */
}

static void on_name(void *arg, uint32_t rule, uint32_t entry, enum fwd_ns_kind kind)
{
	matched(arg, rule, entry, (uint8_t)kind);
}

/* Field @f's name was there but could not be read (@x: FWD_X_*): the
 * packet is seen by the field's unreadable rules (fail closed), each as a
 * pattern's match would be, scope check included. */
static void unreadable_field(struct match_ctx *m, int f, int x)
{
	m->v->unreadable[f] = (int8_t)x;
	for (uint32_t k = 0; k < m->c->nunread[f]; k++)
		matched(m, m->c->unread_rules[f][k], 0, 0);
}

_Static_assert(FWD_CF_PAYLOAD == 0 && FWD_CF_DNS_QNAME == DP_CONTENT_NAME_FIELDS,
	       "dp_content_prep indexes the name fields as field - 1");

/* The next name of field @f (not the payload) of @in into @out
 * (FWD_X_NAME_MAX bytes), from *@it (zeroed for the first): > 0 its
 * length, else nothing to scan (< 0: unreadable). it->off < in->len after
 * it while another name follows: pipelined HTTP/1.x requests and
 * DNS-over-TCP messages each name one (fwd_extract.h), a ClientHello or a
 * DNS-over-UDP query one alone. */
static int extract_field(const struct dp_content_input *in, int f, struct fwd_x_iter *it, char *out)
{
	const uint8_t *p = in->payload;
	size_t len = in->len;

	if (f == FWD_CF_DNS_QNAME && in->proto == FWD_PROTO_TCP)
		return fwd_extract_dns_tcp_next(p, len, it, out, FWD_X_NAME_MAX);
	if (f == FWD_CF_HTTP_HOST && in->proto == FWD_PROTO_TCP)
		return fwd_extract_http_next(p, len, it, out, FWD_X_NAME_MAX);
	it->off = len;
	/* TLS and HTTP/1.x run over TCP, DNS over UDP (or TCP, above): a
	 * query read out of SCTP's or ICMP's bytes is no query a resolver
	 * would take (content-rules.md said so; the code read any) */
	if (!fwd_extract_carried(f, in->proto))
		return 0;
	return f == FWD_CF_TLS_SNI ? fwd_extract_sni(p, len, out, FWD_X_NAME_MAX)
				   : fwd_extract_dns_qname(p, len, out, FWD_X_NAME_MAX);
}

void dp_content_prepare(const struct dp_content *c, const struct dp_content_input *in,
			struct dp_content_prep *pr, unsigned n)
{
	/* Step 1, the whole burst: names extracted, keyed, slots prefetched;
	 * the payload two packets ahead prefetched (a ClientHello's name is
	 * ~100 bytes in, on the frame's second or third cache line). */
	for (unsigned i = 0; i < n; i++) {
		if (i + 2 < n && in[i + 2].fields) {
			__builtin_prefetch(in[i + 2].payload + 64);
			__builtin_prefetch(in[i + 2].payload + 128);
		}
		pr[i].fields = in[i].fields;
		/* the name fields this packet's scope wants and something scans */
		for (unsigned todo = in[i].fields & c->fields_used & ~(1u << FWD_CF_PAYLOAD); todo;
		     todo &= todo - 1) {
			const int f = __builtin_ctz(todo), k = f - 1;
			struct dp_content_prep *q = &pr[i];

			q->it[k] = (struct fwd_x_iter){0};
			q->n[k] = (int16_t)extract_field(&in[i], f, &q->it[k], q->name[k]);
			if (q->n[k] > 0 && c->ns[f])
				fwd_nameset_prepare(c->ns[f], &q->q[k], q->name[k],
						    (size_t)q->n[k]);
		}
	}
	/* Step 2: the slots read, the entries prefetched. */
	for (unsigned i = 0; i < n; i++)
		for (unsigned todo = pr[i].fields & c->fields_used & ~(1u << FWD_CF_PAYLOAD); todo;
		     todo &= todo - 1) {
			const int f = __builtin_ctz(todo);

			if (c->ns[f] && pr[i].n[f - 1] > 0)
				fwd_nameset_probe(c->ns[f], &pr[i].q[f - 1]);
		}
}

/* One name (or the payload) [@data, + @n) of field @f: its name set (the
 * lookup @staged began, if any) and its database. */
static void scan_name(const struct dp_content *c, hs_scratch_t *s, struct match_ctx *m, int f,
		      const char *data, int n, struct fwd_ns_query *staged)
{
	if (c->ns[f]) {
		if (staged)
			fwd_nameset_finish(c->ns[f], staged, on_name, m);
		else
			fwd_nameset_match(c->ns[f], data, (size_t)n, on_name, m);
	}
	m->field = f;
	if (c->db[f] && hs_scan(c->db[f], data, (unsigned)n, 0, s, on_match, m) != HS_SUCCESS)
		m->v->scan_error = 1; /* HS_SCAN_TERMINATED too: a foreign id */
}

static int scan(const struct dp_content *c, hs_scratch_t *s, const struct dp_content_input *in,
		struct dp_content_prep *pr, struct dp_content_verdict *v)
{
	struct match_ctx m; /* seen[] is read only below nseen: not cleared per packet */
	char name[FWD_X_NAME_MAX];
	int scanned = 0;

	m.c = c;
	m.in = in;
	m.v = v;
	m.nseen = 0;
	v->rule = DP_CONTENT_NONE;
	v->nhits = 0;
	v->scan_error = 0;
	memset(v->unreadable, 0, sizeof(v->unreadable));
	for (unsigned todo = in->fields & c->fields_used; todo; todo &= todo - 1) {
		const int f = __builtin_ctz(todo);
		struct fwd_ns_query *staged = NULL; /* the name's lookup, begun */
		struct fwd_x_iter it = {.off = in->len}; /* none after the first name */
		const char *data;
		int n, any = 0;

		if (f == FWD_CF_PAYLOAD) {
			scanned++;
			/* An empty payload matches nothing Hyperscan could report
			 * here (every pattern must consume a byte: it refuses
			 * empty matches). */
			if (in->len)
				scan_name(c, s, &m, f, (const char *)in->payload, (int)in->len,
					  NULL);
			continue;
		}
		if (pr) {
			n = pr->n[f - 1];
			data = pr->name[f - 1];
			staged = &pr->q[f - 1];
			it = pr->it[f - 1];
		} else if (in->given[f]) {
			data = in->given[f];
			n = (int)strlen(data);
			any = 1; /* scanned, even empty */
		} else {
			it = (struct fwd_x_iter){0};
			n = extract_field(in, f, &it, name);
			data = name;
			if (n > 0 && in->names)
				memcpy(in->names[f], name, (size_t)n + 1);
		}
		/* Each name of the packet (the requests pipelined in a segment,
		 * the DNS-over-TCP messages): a rule matching any of them
		 * matches the packet, once; an unreadable one, the field's
		 * unreadable rules. At most FWD_X_MAX_NAMES turns. */
		for (;;) {
			if (n < 0) {
				unreadable_field(&m, f, n);
				break;
			}
			if (n > 0) {
				any = 1;
				scan_name(c, s, &m, f, data, n, staged);
			}
			if (it.off >= in->len)
				break;
			n = extract_field(in, f, &it, name);
			data = name;
			staged = NULL;
		}
		scanned += any;
	}
	return scanned;
}

int dp_content_scan(const struct dp_content *c, hs_scratch_t *s, const struct dp_content_input *in,
		    struct dp_content_verdict *v)
{
	return scan(c, s, in, NULL, v);
}

int dp_content_scan_prepared(const struct dp_content *c, hs_scratch_t *s,
			     const struct dp_content_input *in, struct dp_content_prep *pr,
			     struct dp_content_verdict *v)
{
	/* Prepared for other fields: afresh. (An input with given names or
	 * a names buffer is explain's, which never prepares.) */
	return scan(c, s, in, pr->fields == in->fields ? pr : NULL, v);
}

void dp_content_act(const struct dp_content *c, const struct fwd_class *cls,
		    const struct fwd_pkt *p, uint32_t rule, struct fwd_decision *d)
{
	const struct fwd_content_rule *r = &dp_content_table(c)->content[rule];
	uint16_t l;

	switch (r->action) {
	case FWD_CA_DROP:
		if (!d->drop) { /* a policy drop keeps its own reason: one per packet */
			d->drop = 1 + FWD_DROP_CONTENT;
			d->link = FWD_LINK_NONE;
		}
		break;
	case FWD_CA_MIRROR:
		if (dp_content_table(c)->links[r->target].up)
			d->mirror = r->target;
		break;
	case FWD_CA_STEER:
		if (d->drop)
			break; /* a steer never overrides a drop (residency, policy) */
		if (r->target_kind == FWD_ACT_LINK)
			l = dp_content_table(c)->links[r->target].up ? r->target : FWD_LINK_NONE;
		else
			l = fwd_class_slot(cls, r->target, fwd_flow_hash(p));
		d->link = l;
		if (l == FWD_LINK_NONE)
			d->drop = 1 + FWD_DROP_NO_LINK;
		break;
	default:
		break;
	}
}

uint32_t dp_content_top_names(const struct dp_content *c, uint32_t rule, struct fwd_report_top *out,
			      uint32_t max)
{
	struct dp_content_top all[DP_MAX_WORKERS * DP_CONTENT_TOP_K];
	uint32_t n = 0, got = 0;

	if (rule >= dp_content_table(c)->ncontent || c->top_of[rule] == DP_CONTENT_NONE)
		return 0;
	/* Sum each name over the workers. */
	for (uint16_t w = 0; w < c->nworkers; w++) {
		const struct dp_content_top *t =
			c->top[w] + (size_t)c->top_of[rule] * DP_CONTENT_TOP_K;

		for (unsigned k = 0; k < DP_CONTENT_TOP_K; k++) {
			uint64_t key = __atomic_load_n(&t[k].key, __ATOMIC_RELAXED),
				 cnt = __atomic_load_n(&t[k].count, __ATOMIC_RELAXED);
			uint32_t j = 0;

			if (key == 0 || cnt == 0)
				continue;
			while (j < n && all[j].key != key)
				j++;
			if (j == n)
				all[n++] = (struct dp_content_top){key, 0};
			all[j].count += cnt;
		}
	}
	/* The largest first: a selection, n is at most workers x K. */
	while (got < max && got < n) {
		uint32_t best = got;
		struct dp_content_top tmp;
		size_t len;
		const char *e;

		for (uint32_t j = got + 1; j < n; j++)
			if (all[j].count > all[best].count)
				best = j;
		tmp = all[got];
		all[got] = all[best];
		all[best] = tmp;
		e = fwd_nameset_entry(c->ns[dp_content_table(c)->content[rule].field],
				      (uint32_t)(all[got].key >> 2), &len);
		snprintf(out[got].name, sizeof(out[got].name), "%s%.*s",
			 (all[got].key & 3) == FWD_NS_SUFFIX ? "*." : "", (int)len, e);
		out[got].count = all[got].count;
		got++;
	}
	return got;
}
