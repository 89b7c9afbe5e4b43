#include "dp_gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_errno.h>
#include <rte_malloc.h>

#include "fwd_names.h"
#include "dp_fib.h"
#include "dp_log.h"
#include "fwd_doc.h"
#include "fwd_residency.h"
#include "fwd_stages.h"
#include "fwd_clock.h"

/* Room the FIBs keep for deltas (dp_fibs_apply): groups on top of what the
 * table needs, a quarter more and 1,024. Past it they grow by themselves:
 * the room only spares the first deltas' growth. */
static const struct dp_fib_room delta_room = {
	.groups_pct = 25,
	.groups_min = 1024,
};

/* Both FIBs, sized with the room above and built in parallel where a core
 * is spare (dp_fib.h). */
static int build_fibs(struct dp_gen *g, struct fwd_err *err)
{
	const struct fwd_table *t = g->table;
	struct dp_fib_info fi;
	int rc;

	fwd_stage("links");
	rc = dp_fib_build(t, &delta_room, &g->fib4, &g->fib6, &g->fib_bytes, &fi, err);
	if (rc)
		return rc;
	fwd_stage("FIBs");
	DP_LOG(INFO,
	       "FIBs: IPv4 %u prefixes in %.1f ms (create %.1f ms, %u groups), IPv6 %u in %.1f ms "
	       "(create %.1f ms, %u groups)%s; %.1f MiB mapped",
	       t->nprefix4, (double)fi.ns4 / 1e6, (double)fi.create_ns4 / 1e6, fi.groups4,
	       t->nprefix6, (double)fi.ns6 / 1e6, (double)fi.create_ns6 / 1e6, fi.groups6,
	       fi.parallel ? " side by side" : " one after the other",
	       (double)g->fib_bytes / 1048576.0);
	return 0;
}

int dp_fibs_build(const struct fwd_table *t, struct dp_fibs *f, struct fwd_err *err)
{
	memset(f, 0, sizeof(*f));
	return dp_fib_build(t, &delta_room, &f->fib4, &f->fib6, &f->bytes, NULL, err);
}

void dp_fibs_free(struct dp_fibs *f)
{
	dp_fib_free(f->fib4, f->fib6);
	memset(f, 0, sizeof(*f));
}

int dp_fibs_apply(struct dp_fibs *f, const struct fwd_table *t, const struct fwd_delta *eff)
{
	return fwd_delta_update_fibs(eff, t, f->fib4, f->fib6);
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
	uint8_t *group_untagged;

	if (g->cnt[0].cell == NULL || cells == 0)
		return 0; /* no cell counters: the fast path's general case */
	g->cell_link =
		rte_malloc("dp_cell_link", cells * sizeof(*g->cell_link), RTE_CACHE_LINE_SIZE);
	/* Per group: 1 when every member that may take a slot leaves
	 * untagged, so the plain-cell loop's 14-byte header fits whichever
	 * the flow gets (a slot without a link drops: the general path names
	 * that). Its members, not its slots as built: a member whose port is
	 * down gives its slots to others (fwd_class_ports_out), which may be
	 * ones that won none here. */
	group_untagged = calloc(c->ngroups ? c->ngroups : 1, 1);
	if (g->cell_link == NULL || group_untagged == NULL) {
		free(group_untagged);
		return fwd_err_set(err, g->table->source, 0, "",
				   "out of memory for the cell links");
	}
	for (uint16_t grp = 0; grp < c->ngroups; grp++) {
		const struct fwd_group *gr = &g->table->groups[grp];

		group_untagged[grp] = 1;
		for (uint16_t i = 0; i < gr->nmembers; i++) {
			const struct fwd_group_member *m = &gr->members[i];
			const struct fwd_link *l = &g->table->links[m->link];

			/* Those that may take a slot: fwd_class.c member_carries(). */
			if (l->up && !l->drained && m->weight != 0 &&
			    g->links[m->link].hdr_len != 14)
				group_untagged[grp] = 0;
		}
	}
	for (uint32_t cell = 0; cell < cells; cell++) {
		const struct fwd_class_policy *p = &c->policies[c->matrix[cell]];
		uint16_t link = FWD_LINK_NONE;

		if (p->mirror == FWD_LINK_NONE &&
		    (g->content == NULL ||
		     dp_content_scope(g->content, (uint16_t)(cell / c->nservices),
				      (uint16_t)(cell % c->nservices)) == 0)) {
			if (p->action == FWD_ACT_LINK && g->links[p->link].hdr_len == 14)
				link = p->link;
			else if (p->action == FWD_ACT_GROUP && group_untagged[p->group])
				link = (uint16_t)(DP_CELL_GROUP | p->group);
		}
		g->cell_link[cell] = link;
		g->any_cell_link |= link != FWD_LINK_NONE;
	}
	free(group_untagged);
	return 0;
}

struct dp_gen *dp_gen_build(struct fwd_table *t, uint64_t id, uint64_t hash,
			    const struct dp_node *node, const struct dp_ports *ports,
			    uint16_t nworkers, const struct fwd_hs_dbs *content_db,
			    struct fwd_err *err)
{
	struct dp_gen *g;

	dp_fib_drain(); /* a retired generation's FIBs are back in the heap first */
	g = rte_zmalloc("dp_gen", sizeof(*g), RTE_CACHE_LINE_SIZE);

	if (g == NULL) {
		/* The error names the table's source: said before it is freed. */
		fwd_err_set(err, t ? t->source : "", 0, "", "out of memory");
		fwd_table_free(t);
		return NULL;
	}
	g->id = id;
	g->hash = hash;
	g->table = t;
	g->nworkers = nworkers;
	g->created_unix_ns = fwd_wall_ns();
	g->cls = fwd_class_build(t);
	if (g->cls == NULL) {
		fwd_err_set(err, t->source, 0, "", "out of memory compiling the classifier");
		goto free_gen;
	}
	fwd_stage("classifier");
	/* Checked here too, not only by whoever sent the table: the fast path
	 * never runs a table that breaks residency. */
	if (fwd_residency_check(t, g->cls, err))
		goto free_gen;
	/* What later fragments are held to (dp_worker.c): a delta derived
	 * from this generation copies the rows with its table. */
	if (fwd_residency_rows_fill(t)) {
		fwd_err_set(err, t->source, 0, "", "out of memory for the residency rules' rows");
		goto free_gen;
	}
	fwd_stage("residency");
	if (build_links(g, node, ports, err) || build_name_keys(g, err) || build_fibs(g, err) ||
	    build_counters(g, err))
		goto free_gen;
	/* Databases deserialized and every worker's scratch allocated here,
	 * before the swap: a worker only ever scans. */
	if (dp_content_build(t, content_db, nworkers, &g->content, err) || build_cell_links(g, err))
		goto free_gen;
	fwd_stage("counters + content");
	return g;
free_gen:
	dp_gen_free(g);
	return NULL;
}

struct dp_gen *dp_gen_derive(struct dp_gen *g, struct fwd_table *t, struct dp_fibs *f, uint64_t id,
			     uint64_t hash)
{
	struct dp_gen *n = rte_malloc("dp_gen", sizeof(*n), RTE_CACHE_LINE_SIZE);

	if (n == NULL)
		return NULL;
	/* Everything but the table and the FIBs is the same object: the
	 * classifier, links, keys, content state and counters do not depend
	 * on the prefixes a delta changes. */
	*n = *g;
	n->id = id;
	n->hash = hash;
	n->seq = 0; /* the caller numbers it */
	n->created_unix_ns = fwd_wall_ns();
	n->table = t;
	n->fib4 = f->fib4;
	n->fib6 = f->fib6;
	n->fib_bytes = f->bytes;
	n->handed_over = 0;
	memset(f, 0, sizeof(*f));
	/* The content state reads the rules, links and groups through its
	 * table: @t has the same ones (a deep copy but for the prefixes), and
	 * outlives @g's. Workers still on @g may read either: release, so
	 * that one which sees @t (dp_content_table(), acquire) sees it whole,
	 * built before this store (x86-64 keeps the order anyway; weaker CPUs
	 * and the compiler need the pair). */
	if (n->content)
		__atomic_store_n(&n->content->t, t, __ATOMIC_RELEASE);
	g->handed_over = 1;
	return n;
}

void dp_gen_free(struct dp_gen *g)
{
	struct fwd_fib4 *fib4;
	struct fwd_fib6 *fib6;

	if (g == NULL)
		return;
	fib4 = g->fib4;
	fib6 = g->fib6;
	if (g->handed_over) {
		fwd_table_free(g->table);
		rte_free(g);
		dp_fib_free(fib4, fib6); /* last: it may go on in the background (dp_fib.h) */
		return;
	}
	rte_free(g->cnt_mem);
	free(g->fold_sum);
	dp_content_free(g->content);
	rte_free(g->cell_link);
	rte_free(g->key_index);
	rte_free(g->link_keys);
	rte_free(g->region_keys);
	rte_free(g->service_keys);
	rte_free(g->links);
	fwd_class_free(g->cls);
	fwd_table_free(g->table);
	rte_free(g);
	dp_fib_free(fib4, fib6); /* last: it may go on in the background (dp_fib.h) */
}

uint16_t dp_gen_region_of(const struct dp_gen *g, int family, const uint8_t *addr)
{
	uint32_t nh;

	if (family == 4)
		nh = fwd_fib4_lookup(g->fib4, (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 |
						      (uint32_t)addr[2] << 8 | addr[3]);
	else
		nh = fwd_fib6_lookup(g->fib6, addr);
	return (uint16_t)nh;
}
