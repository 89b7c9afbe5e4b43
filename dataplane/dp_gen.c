#include "dp_gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_errno.h>
#include <rte_malloc.h>

#include "fwd_names.h"
#include "dp_log.h"
#include "fwd_doc.h"
#include "fwd_residency.h"

#define DP_FIB_2B_MAX 32767 /* tbl8 groups addressable with 2-byte next hops */

/* Room the FIBs keep for deltas (dp_fibs_apply): RIB nodes, and tbl8 groups
 * on top of what the table needs. A delta that needs more is applied by
 * building the FIBs anew from its table (the slow path, logged). */
#define DP_FIB_ROUTE_ROOM 65536u

static uint32_t tbl8_room(uint32_t need)
{
	uint32_t n = need + need / 4 + 1024;

	/* 2-byte next hops halve the tbl24 (32 MiB less per FIB) but address
	 * at most DP_FIB_2B_MAX groups: keep them while the table fits with
	 * the old, smaller margin, and give deltas what is left below it. */
	if (n > DP_FIB_2B_MAX && need + need / 8 + 64 <= DP_FIB_2B_MAX)
		n = DP_FIB_2B_MAX;
	return n;
}

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

static int build_fibs(const struct fwd_table *t, struct dp_fibs *f, struct fwd_err *err)
{
	struct rte_fib_conf c4 = {0};
	struct rte_fib6_conf c6 = {0};
	char name[32];
	uint32_t need4 = tbl8_needed4(t), need6 = tbl8_needed6(t);
	int rc;

	/* A tbl8 group's index is stored in the next-hop field, so 2-byte next
	 * hops address at most 32,767 groups. Stay at 2 bytes (half the tbl24,
	 * 32 MiB) while the table allows it, else 4 bytes. */
	c4.type = RTE_FIB_DIR24_8;
	c4.default_nh = FWD_REGION_UNKNOWN;
	/* The RIB keeps inner nodes too; room for deltas on top. */
	c4.max_routes = (int)(t->nprefix4 * 2 + DP_FIB_ROUTE_ROOM);
	c4.dir24_8.num_tbl8 = tbl8_room(need4);
	c4.dir24_8.nh_sz =
		c4.dir24_8.num_tbl8 <= DP_FIB_2B_MAX ? RTE_FIB_DIR24_8_2B : RTE_FIB_DIR24_8_4B;
	/* Names must be unique while two generations coexist, whatever ids the
	 * control plane chooses: a private build sequence (control thread only). */
	static uint64_t build_seq;
	uint64_t seq = __atomic_add_fetch(&build_seq, 1, __ATOMIC_RELAXED);

	memset(f, 0, sizeof(*f));
	snprintf(name, sizeof(name), "fib4_%llu", (unsigned long long)seq);
	f->fib4 = rte_fib_create(name, SOCKET_ID_ANY, &c4);
	if (f->fib4 == NULL)
		return fwd_err_set(err, t->source, 0, FWD_KEY_NAME(DOC, REGIONS),
				   "cannot create the IPv4 FIB (%u prefixes, %u tbl8): %s",
				   t->nprefix4, c4.dir24_8.num_tbl8, rte_strerror(rte_errno));
	for (uint32_t i = 0; i < t->nprefix4; i++) {
		rc = rte_fib_add(f->fib4, t->prefix4[i].addr, t->prefix4[i].len,
				 t->prefix4[i].region);
		if (rc)
			return fwd_err_set(err, t->source, t->prefix4[i].line,
					   FWD_KEY_NAME(DOC, REGIONS),
					   "IPv4 FIB refused a prefix: %s", strerror(-rc));
	}

	c6.type = RTE_FIB6_TRIE;
	c6.default_nh = FWD_REGION_UNKNOWN;
	c6.max_routes = (int)(t->nprefix6 * 2 + DP_FIB_ROUTE_ROOM);
	c6.trie.num_tbl8 = tbl8_room(need6);
	c6.trie.nh_sz = c6.trie.num_tbl8 <= DP_FIB_2B_MAX ? RTE_FIB6_TRIE_2B : RTE_FIB6_TRIE_4B;
	snprintf(name, sizeof(name), "fib6_%llu", (unsigned long long)seq);
	f->fib6 = rte_fib6_create(name, SOCKET_ID_ANY, &c6);
	if (f->fib6 == NULL)
		return fwd_err_set(err, t->source, 0, FWD_KEY_NAME(DOC, REGIONS),
				   "cannot create the IPv6 FIB (%u prefixes, %u tbl8): %s",
				   t->nprefix6, c6.trie.num_tbl8, rte_strerror(rte_errno));
	for (uint32_t i = 0; i < t->nprefix6; i++) {
		rc = rte_fib6_add(f->fib6, t->prefix6[i].addr, t->prefix6[i].len,
				  t->prefix6[i].region);
		if (rc)
			return fwd_err_set(err, t->source, t->prefix6[i].line,
					   FWD_KEY_NAME(DOC, REGIONS),
					   "IPv6 FIB refused a prefix: %s", strerror(-rc));
	}
	f->bytes = (1ull << 24) * (c4.dir24_8.nh_sz == RTE_FIB_DIR24_8_2B ? 2 : 4) +
		   (uint64_t)c4.dir24_8.num_tbl8 * 256 *
			   (c4.dir24_8.nh_sz == RTE_FIB_DIR24_8_2B ? 2 : 4) +
		   (1ull << 24) * (c6.trie.nh_sz == RTE_FIB6_TRIE_2B ? 2 : 4) +
		   (uint64_t)c6.trie.num_tbl8 * 256 * (c6.trie.nh_sz == RTE_FIB6_TRIE_2B ? 2 : 4);
	return 0;
}

int dp_fibs_build(const struct fwd_table *t, struct dp_fibs *f, struct fwd_err *err)
{
	int rc = build_fibs(t, f, err);

	if (rc)
		dp_fibs_free(f);
	return rc;
}

void dp_fibs_free(struct dp_fibs *f)
{
	rte_fib6_free(f->fib6);
	rte_fib_free(f->fib4);
	memset(f, 0, sizeof(*f));
}

int dp_fibs_apply(struct dp_fibs *f, const struct fwd_delta *eff)
{
	for (uint32_t i = 0; i < eff->n; i++) {
		const struct fwd_delta_op *op = &eff->ops[i];
		int rc;

		/* A move (its removal, then its add: fwd_delta_apply's order) is
		 * one change of the prefix's next hop: rte_fib_add of a prefix
		 * the FIB holds rewrites its range once, where a delete and an
		 * add would rewrite it to the cover's region and back. */
		if (op->kind == FWD_DELTA_REMOVE && i + 1 < eff->n &&
		    eff->ops[i + 1].kind == FWD_DELTA_ADD && eff->ops[i + 1].family == op->family &&
		    eff->ops[i + 1].len == op->len &&
		    memcmp(eff->ops[i + 1].addr, op->addr, 16) == 0)
			continue;

		if (op->family == 4) {
			uint32_t ip = (uint32_t)op->addr[0] << 24 | (uint32_t)op->addr[1] << 16 |
				      (uint32_t)op->addr[2] << 8 | op->addr[3];

			rc = op->kind == FWD_DELTA_ADD
				     ? rte_fib_add(f->fib4, ip, op->len, op->region)
				     : rte_fib_delete(f->fib4, ip, op->len);
		} else {
			rc = op->kind == FWD_DELTA_ADD
				     ? rte_fib6_add(f->fib6, op->addr, op->len, op->region)
				     : rte_fib6_delete(f->fib6, op->addr, op->len);
		}
		if (rc)
			return rc < 0 ? rc : -EIO;
	}
	return 0;
}

static int build_links(struct dp_gen *g, const struct dp_node *node, const struct dp_ports *ports,
		       struct fwd_err *err)
{
	const struct fwd_table *t = g->table;

	uint32_t cap = 16;

	while (cap < 2u * t->nlinks)
		cap <<= 1;
	g->links = rte_zmalloc("dp_links", sizeof(*g->links) * (t->nlinks ? t->nlinks : 1),
			       RTE_CACHE_LINE_SIZE);
	g->link_keys =
		rte_zmalloc("dp_link_keys", sizeof(*g->link_keys) * (t->nlinks ? t->nlinks : 1), 0);
	g->key_index = rte_malloc("dp_key_index", sizeof(*g->key_index) * cap, RTE_CACHE_LINE_SIZE);
	if (g->links == NULL || g->link_keys == NULL || g->key_index == NULL)
		return fwd_err_set(err, t->source, 0, FWD_KEY_NAME(DOC, LINKS), "out of memory");
	g->key_mask = cap - 1;
	for (uint32_t i = 0; i < cap; i++)
		g->key_index[i].link = FWD_LINK_NONE;
	for (uint16_t i = 0; i < t->nlinks; i++) {
		const struct fwd_link *l = &t->links[i];
		struct dp_link_out *o = &g->links[i];
		int pi = dp_node_link_port(node, t, i, err);

		if (pi < 0)
			return pi;
		/* Name keys let a later fragment find its first fragment's link in
		 * a newer generation (dp_worker.c). A 64-bit collision between two
		 * names of one table would be refused rather than guessed at. */
		g->link_keys[i] = fwd_hash64(l->name, strlen(l->name));
		for (uint32_t h = (uint32_t)g->link_keys[i] & g->key_mask;;
		     h = (h + 1) & g->key_mask) {
			if (g->key_index[h].link == FWD_LINK_NONE) {
				g->key_index[h].key = g->link_keys[i];
				g->key_index[h].link = i;
				break;
			}
			if (g->key_index[h].key == g->link_keys[i])
				return fwd_err_set(err, t->source, 0, FWD_KEY_NAME(DOC, LINKS),
						   "link names '%s' and '%s' collide", l->name,
						   t->links[g->key_index[h].link].name);
		}
		o->node_port = (uint8_t)pi;
		o->port_id = ports->port_id[pi];
		o->vlan = l->vlan != 0;
		o->hdr_len = o->vlan ? 18 : 14;
		for (int f = 0; f < 2; f++) {
			uint8_t *h = o->hdr[f];

			memcpy(h, l->next_hop_mac, 6);
			memcpy(h + 6, ports->mac[pi].addr_bytes, 6);
			if (o->vlan) {
				h[12] = 0x81;
				h[13] = 0x00;
				h[14] = (uint8_t)(l->vlan >> 8);
				h[15] = (uint8_t)l->vlan;
			}
			h[o->hdr_len - 2] = f == 0 ? 0x08 : 0x86; /* IPv4 0x0800, IPv6 0x86dd */
			h[o->hdr_len - 1] = f == 0 ? 0x00 : 0xdd;
		}
	}
	return 0;
}

/* Name keys of regions and services, for a capture's match (dp_cap.h). */
static int build_name_keys(struct dp_gen *g, struct fwd_err *err)
{
	const struct fwd_table *t = g->table;

	g->region_keys = rte_malloc("dp_region_keys", sizeof(uint64_t) * t->nregions, 0);
	g->service_keys = rte_malloc("dp_service_keys", sizeof(uint64_t) * t->nservices, 0);
	if (g->region_keys == NULL || g->service_keys == NULL)
		return fwd_err_set(err, t->source, 0, "", "out of memory");
	for (uint16_t i = 0; i < t->nregions; i++)
		g->region_keys[i] = fwd_hash64(t->region_names[i], strlen(t->region_names[i]));
	for (uint16_t i = 0; i < t->nservices; i++)
		g->service_keys[i] = fwd_hash64(t->service_names[i], strlen(t->service_names[i]));
	return 0;
}

static int build_counters(struct dp_gen *g, struct fwd_err *err)
{
	const struct fwd_table *t = g->table;
	uint64_t cells = (uint64_t)t->nregions * t->nservices;
	size_t ncell = cells <= DP_CELL_COUNTERS_MAX ? (size_t)cells : 0;
	size_t per = 2u * t->nregions + 2u * t->nservices + t->npolicies + 2u * t->nlinks +
		     2u * t->ncontent + 2u * ncell; /* uint64_t words */
	size_t stride = RTE_ALIGN_CEIL(per * sizeof(uint64_t), RTE_CACHE_LINE_SIZE);
	uint8_t *mem;

	g->cnt_mem = rte_zmalloc("dp_gen_cnt", stride * g->nworkers + RTE_CACHE_LINE_SIZE,
				 RTE_CACHE_LINE_SIZE);
	g->fold_sum_words = 2u * t->nregions + 2u * t->nservices + t->npolicies;
	g->fold_sum = calloc(g->fold_sum_words, sizeof(*g->fold_sum));
	if (g->cnt_mem == NULL || g->fold_sum == NULL)
		return fwd_err_set(err, t->source, 0, "", "out of memory for counters");
	mem = g->cnt_mem;
	for (uint16_t w = 0; w < g->nworkers; w++) {
		uint64_t *p = (uint64_t *)(mem + stride * w);
		struct dp_gen_cnt *c = &g->cnt[w];

		c->region = (struct dp_pb *)p;
		c->service = (struct dp_pb *)(p + 2u * t->nregions);
		c->link = (struct dp_pb *)(p + 2u * t->nregions + 2u * t->nservices);
		c->policy = p + 2u * t->nregions + 2u * t->nservices + 2u * t->nlinks;
		c->content_match = c->policy + t->npolicies;
		c->content_flow = c->content_match + t->ncontent;
		c->cell = ncell ? (struct dp_pb *)(c->content_flow + t->ncontent) : NULL;
	}
	return 0;
}

/* After the links, counters and content rules: it reads all three. */
static int build_cell_links(struct dp_gen *g, struct fwd_err *err)
{
	const struct fwd_class *c = g->cls;
	uint64_t cells = (uint64_t)c->nregions * c->nservices;

	if (g->cnt[0].cell == NULL || cells == 0)
		return 0; /* no cell counters: the fast path's general case */
	g->cell_link =
		rte_malloc("dp_cell_link", cells * sizeof(*g->cell_link), RTE_CACHE_LINE_SIZE);
	if (g->cell_link == NULL)
		return fwd_err_set(err, g->table->source, 0, "",
				   "out of memory for the cell links");
	for (uint32_t cell = 0; cell < cells; cell++) {
		const struct fwd_class_policy *p = &c->policies[c->matrix[cell]];
		uint16_t link = FWD_LINK_NONE;

		if (p->action == FWD_ACT_LINK && p->mirror == FWD_LINK_NONE &&
		    g->links[p->link].hdr_len == 14 &&
		    (g->content == NULL ||
		     dp_content_scope(g->content, (uint16_t)(cell / c->nservices),
				      (uint16_t)(cell % c->nservices)) == 0))
			link = p->link;
		g->cell_link[cell] = link;
	}
	return 0;
}

struct dp_gen *dp_gen_build(struct fwd_table *t, uint64_t id, uint64_t hash,
			    const struct dp_node *node, const struct dp_ports *ports,
			    uint16_t nworkers, const struct fwd_hs_dbs *content_db,
			    struct fwd_err *err)
{
	struct dp_gen *g = rte_zmalloc("dp_gen", sizeof(*g), RTE_CACHE_LINE_SIZE);
	struct timespec ts;

	if (g == NULL) {
		fwd_table_free(t);
		fwd_err_set(err, t ? t->source : "", 0, "", "out of memory");
		return NULL;
	}
	g->id = id;
	g->hash = hash;
	g->table = t;
	g->nworkers = nworkers;
	clock_gettime(CLOCK_REALTIME, &ts);
	g->created_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	g->cls = fwd_class_build(t);
	if (g->cls == NULL) {
		fwd_err_set(err, t->source, 0, "", "out of memory compiling the classifier");
		goto free_gen;
	}
	/* Checked here too, not only by whoever sent the table: the fast path
	 * never runs a table that breaks residency. */
	if (fwd_residency_check(t, g->cls, err))
		goto free_gen;
	struct dp_fibs f;

	if (build_links(g, node, ports, err) || build_name_keys(g, err) ||
	    dp_fibs_build(t, &f, err))
		goto free_gen;
	g->fib4 = f.fib4;
	g->fib6 = f.fib6;
	g->fib_bytes = f.bytes;
	if (build_counters(g, err))
		goto free_gen;
	/* Databases deserialized and every worker's scratch allocated here,
	 * before the swap: a worker only ever scans. */
	if (dp_content_build(t, content_db, nworkers, &g->content, err) || build_cell_links(g, err))
		goto free_gen;
	return g;
free_gen:
	dp_gen_free(g);
	return NULL;
}

struct dp_gen *dp_gen_derive(struct dp_gen *g, struct fwd_table *t, struct dp_fibs *f, uint64_t id,
			     uint64_t hash)
{
	struct dp_gen *n = rte_malloc("dp_gen", sizeof(*n), RTE_CACHE_LINE_SIZE);
	struct timespec ts;

	if (n == NULL)
		return NULL;
	/* Everything but the table and the FIBs is the same object: the
	 * classifier, links, keys, content state and counters do not depend
	 * on the prefixes a delta changes. */
	*n = *g;
	n->id = id;
	n->hash = hash;
	n->seq = 0; /* the caller numbers it */
	clock_gettime(CLOCK_REALTIME, &ts);
	n->created_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	n->table = t;
	n->fib4 = f->fib4;
	n->fib6 = f->fib6;
	n->fib_bytes = f->bytes;
	n->handed_over = 0;
	memset(f, 0, sizeof(*f));
	/* The content state reads the rules, links and groups through its
	 * table: @t has the same ones (a deep copy but for the prefixes), and
	 * outlives @g's. Workers still on @g may read either; both are
	 * whole. Relaxed: an aligned pointer store, nothing ordered by it. */
	if (n->content)
		__atomic_store_n(&n->content->t, t, __ATOMIC_RELAXED);
	g->handed_over = 1;
	return n;
}

void dp_gen_free(struct dp_gen *g)
{
	if (g == NULL)
		return;
	if (g->handed_over) {
		rte_fib6_free(g->fib6);
		rte_fib_free(g->fib4);
		fwd_table_free(g->table);
		rte_free(g);
		return;
	}
	rte_free(g->cnt_mem);
	free(g->fold_sum);
	dp_content_free(g->content);
	rte_free(g->cell_link);
	rte_fib6_free(g->fib6);
	rte_fib_free(g->fib4);
	rte_free(g->key_index);
	rte_free(g->link_keys);
	rte_free(g->region_keys);
	rte_free(g->service_keys);
	rte_free(g->links);
	fwd_class_free(g->cls);
	fwd_table_free(g->table);
	rte_free(g);
}

uint16_t dp_gen_region_of(const struct dp_gen *g, int family, const uint8_t *addr)
{
	uint64_t nh = FWD_REGION_UNKNOWN;

	if (family == 4) {
		uint32_t ip = (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 |
			      (uint32_t)addr[2] << 8 | addr[3];

		rte_fib_lookup_bulk(g->fib4, &ip, &nh, 1);
	} else {
		uint8_t ip[1][RTE_FIB6_IPV6_ADDR_SIZE];

		memcpy(ip[0], addr, 16);
		rte_fib6_lookup_bulk(g->fib6, ip, &nh, 1);
	}
	return (uint16_t)nh;
}
