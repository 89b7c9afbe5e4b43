#include "dp_ctx.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>
#include <rte_telemetry.h>

#include "dp_log.h"
#include "fwd_names.h"

static void obj_add(json_t *obj, const char *key, uint64_t v)
{
	json_t *o = json_object_get(obj, key);

	json_object_set_new(obj, key, json_integer((json_int_t)((uint64_t)json_integer_value(o) + v)));
}

static json_t *obj_child(json_t *obj, const char *key)
{
	json_t *o = json_object_get(obj, key);

	if (o == NULL) {
		o = json_object();
		json_object_set_new(obj, key, o);
	}
	return o;
}

/* Add a generation's per-worker hit counters into @acc by name. */
static void fold_gen(json_t *acc, const struct dp_gen *g)
{
	const struct fwd_table *t = g->table;
	json_t *regions = obj_child(acc, "regions"), *services = obj_child(acc, "services");
	json_t *policies = obj_child(acc, "policies"), *links = obj_child(acc, "links");
	json_t *content = obj_child(acc, "content_rules");
	char key[80];

	/* Region, service and policy totals over the workers: direct counters
	 * plus, for tables counted per cell, the cells summed (see dp_gen.h).
	 * The sums go to the generation's own scratch (callers hold ctx->lock). */
	uint64_t *reg = g->fold_sum, *svc = reg + 2u * t->nregions, *pol = svc + 2u * t->nservices;

	memset(reg, 0, g->fold_sum_words * sizeof(*reg));
	for (uint16_t w = 0; w < g->nworkers; w++) {
		const struct dp_gen_cnt *c = &g->cnt[w];

		for (uint16_t i = 0; i < t->nregions; i++) {
			reg[2 * i] += __atomic_load_n(&c->region[i].pkts, __ATOMIC_RELAXED);
			reg[2 * i + 1] += __atomic_load_n(&c->region[i].bytes, __ATOMIC_RELAXED);
		}
		for (uint16_t i = 0; i < t->nservices; i++) {
			svc[2 * i] += __atomic_load_n(&c->service[i].pkts, __ATOMIC_RELAXED);
			svc[2 * i + 1] += __atomic_load_n(&c->service[i].bytes, __ATOMIC_RELAXED);
		}
		for (uint32_t i = 0; i < t->npolicies; i++)
			pol[i] += __atomic_load_n(&c->policy[i], __ATOMIC_RELAXED);
		if (c->cell == NULL)
			continue;
		for (uint32_t r = 0; r < t->nregions; r++) {
			for (uint32_t sv = 0; sv < t->nservices; sv++) {
				uint32_t cell = fwd_class_cell(g->cls, (uint16_t)r, (uint16_t)sv);
				uint64_t pk = __atomic_load_n(&c->cell[cell].pkts, __ATOMIC_RELAXED);
				uint64_t by = __atomic_load_n(&c->cell[cell].bytes, __ATOMIC_RELAXED);

				reg[2 * r] += pk;
				reg[2 * r + 1] += by;
				svc[2 * sv] += pk;
				svc[2 * sv + 1] += by;
				pol[g->cls->matrix[cell]] += pk;
			}
		}
	}
	for (uint16_t i = 0; i < t->nregions; i++) {
		json_t *o = obj_child(regions, t->region_names[i]);

		obj_add(o, "packets", reg[2 * i]);
		obj_add(o, "bytes", reg[2 * i + 1]);
	}
	for (uint16_t i = 0; i < t->nservices; i++) {
		json_t *o = obj_child(services, t->service_names[i]);

		obj_add(o, "packets", svc[2 * i]);
		obj_add(o, "bytes", svc[2 * i + 1]);
	}
	for (uint32_t i = 0; i < t->npolicies; i++) {
		fwd_table_policy_key(t, i, key, sizeof(key));
		obj_add(obj_child(policies, key), "packets", pol[i]);
	}

	for (uint16_t w = 0; w < g->nworkers; w++) {
		const struct dp_gen_cnt *c = &g->cnt[w];

		for (uint16_t i = 0; i < t->nlinks; i++) {
			json_t *l = obj_child(links, t->links[i].name);

			obj_add(l, "packets", __atomic_load_n(&c->link[i].pkts, __ATOMIC_RELAXED));
			obj_add(l, "bytes", __atomic_load_n(&c->link[i].bytes, __ATOMIC_RELAXED));
		}
		for (uint32_t i = 0; i < t->ncontent; i++) {
			json_t *o = obj_child(content, t->content[i].name);

			obj_add(o, "matches", __atomic_load_n(&c->content_match[i], __ATOMIC_RELAXED));
			obj_add(o, "flow_packets", __atomic_load_n(&c->content_flow[i], __ATOMIC_RELAXED));
		}
	}
}

void dp_ctx_publish(struct dp_ctx *ctx, struct dp_gen *g)
{
	struct dp_gen *old;

	pthread_mutex_lock(&ctx->lock);
	old = ctx->pub.gen; /* plain: this thread is its only writer */
	ctx->retiring = old;
	/* Release: the generation was built completely above this store; a
	 * worker's acquire load of pub.gen (dp_worker_main) sees all of it. */
	__atomic_store_n(&ctx->pub.gen, g, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&ctx->lock);
	if (old == NULL)
		return;
	/* Every worker reports quiescence after each loop, once it has dropped
	 * its pointer; after this returns, no worker can still see @old. */
	rte_rcu_qsbr_synchronize(ctx->pub.qsv, RTE_QSBR_THRID_INVALID);
	pthread_mutex_lock(&ctx->lock);
	fold_gen(ctx->totals, old);
	ctx->retiring = NULL;
	pthread_mutex_unlock(&ctx->lock);
	dp_gen_free(old);
}

int dp_ctx_apply(struct dp_ctx *ctx, const char *buf, size_t len, const char *name, uint64_t id,
		 const struct fwd_hs_dbs *content_db, struct fwd_err *err)
{
	uint64_t hash = fwd_hash64(buf, len), t0 = rte_get_tsc_cycles();
	struct fwd_table *t;
	struct dp_gen *g;

	if (ctx->pub.gen && ctx->pub.gen->hash == hash)
		return 1;
	t = fwd_table_parse(buf, len, name, -1, err);
	if (t == NULL)
		return -EINVAL;
	if (id == 0)
		id = ctx->next_gen_id;
	g = dp_gen_build(t, id, hash, &ctx->node, &ctx->ports, ctx->nworkers, content_db, err);
	if (g == NULL)
		return -EINVAL;
	if (id >= ctx->next_gen_id)
		ctx->next_gen_id = id + 1;
	dp_ctx_publish(ctx, g);
	DP_LOG(INFO, "generation %llu (%016llx) from %s: %u IPv4 + %u IPv6 prefixes, FIBs %.1f MiB, "
		     "built and published in %.1f ms",
	       (unsigned long long)g->id, (unsigned long long)hash, name, g->table->nprefix4,
	       g->table->nprefix6, (double)g->fib_bytes / 1048576.0,
	       (double)(rte_get_tsc_cycles() - t0) * 1000.0 / (double)rte_get_tsc_hz());
	if (g->content)
		DP_LOG(INFO, "generation %llu: %u content rules, databases %.1f KiB (%s), scratch %.1f KiB",
		       (unsigned long long)g->id, g->table->ncontent, (double)g->content->db_bytes / 1024.0,
		       g->content->compiled_here ? "compiled here" : "shipped",
		       (double)g->content->scratch_bytes / 1024.0);
	return 0;
}

int dp_ctx_apply_file(struct dp_ctx *ctx, const char *path, struct fwd_err *err)
{
	char *buf;
	size_t len;
	int rc = fwd_read_file(path, &buf, &len, err);

	if (rc)
		return rc;
	rc = dp_ctx_apply(ctx, buf, len, path, 0, NULL, err);
	free(buf);
	return rc;
}

/* What the devices count, next to what the workers count: rx_nombuf (pool
 * empty), imissed (RX ring full), oerrors. */
static json_t *port_stats(const struct dp_ctx *ctx)
{
	json_t *o = json_object();

	for (uint16_t i = 0; i < ctx->node.nports && i < ctx->ports.nports; i++) {
		struct rte_eth_stats s;

		if (!ctx->ports.started[i] || rte_eth_stats_get(ctx->ports.port_id[i], &s))
			continue;
		json_object_set_new(o, ctx->node.ports[i].name,
				    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "ipackets", (json_int_t)s.ipackets,
					      "opackets", (json_int_t)s.opackets, "imissed", (json_int_t)s.imissed,
					      "ierrors", (json_int_t)s.ierrors, "oerrors", (json_int_t)s.oerrors,
					      "rx_nombuf", (json_int_t)s.rx_nombuf));
	}
	return o;
}

/* Every worker's counters summed; each worker's copy is consistent (read
 * between its bursts). */
static void sum_workers(struct dp_ctx *ctx, struct dp_counters *sum)
{
	struct dp_counters one;

	memset(sum, 0, sizeof(*sum));
	for (uint16_t w = 0; w < ctx->nworkers; w++) {
		dp_counters_read(&ctx->workers[w]->cnt, &one);
		sum->rx += one.rx;
		sum->rx_bytes += one.rx_bytes;
		sum->tx += one.tx;
		sum->tx_bytes += one.tx_bytes;
		for (int i = 0; i < FWD_DROP_MAX; i++)
			sum->drop[i] += one.drop[i];
		for (int i = 0; i < FWD_EVT_MAX; i++)
			sum->evt[i] += one.evt[i];
	}
}

void dp_ctx_totals(struct dp_ctx *ctx, struct dp_ctx_totals *t)
{
	struct dp_counters sum;
	const struct dp_gen *g;

	memset(t, 0, sizeof(*t));
	sum_workers(ctx, &sum);
	t->rx = sum.rx;
	t->rx_bytes = sum.rx_bytes;
	t->tx = sum.tx;
	t->tx_bytes = sum.tx_bytes;
	for (int i = 0; i < FWD_DROP_MAX; i++)
		t->dropped += sum.drop[i];
	pthread_mutex_lock(&ctx->lock);
	g = ctx->pub.gen;
	t->gen_id = g->id;
	t->gen_hash = g->hash;
	t->created_unix_ns = (int64_t)g->created_unix_ns;
	snprintf(t->source, sizeof(t->source), "%s", g->table->source);
	t->regions = g->table->nregions - 1u;
	t->services = g->table->nservices - 1u;
	t->links = g->table->nlinks;
	t->policies = g->table->npolicies - 1u;
	t->prefixes_v4 = g->table->nprefix4;
	t->prefixes_v6 = g->table->nprefix6;
	pthread_mutex_unlock(&ctx->lock);
}

json_t *dp_ctx_report(struct dp_ctx *ctx)
{
	struct dp_counters sum;
	json_t *r = json_object(), *acc, *pk, *drops, *evts, *gen, *links, *pol;
	const struct dp_gen *g;
	const struct fwd_table *t;
	uint64_t dropped = 0;
	char key[80];

	if (r == NULL)
		return NULL;
	sum_workers(ctx, &sum);
	drops = json_object();
	for (int i = 0; i < FWD_DROP_MAX; i++) {
		json_object_set_new(drops, fwd_drop_names[i], json_integer((json_int_t)sum.drop[i]));
		dropped += sum.drop[i];
	}
	evts = json_object();
	for (int i = 0; i < FWD_EVT_MAX; i++)
		json_object_set_new(evts, fwd_evt_names[i], json_integer((json_int_t)sum.evt[i]));
	pk = json_pack("{s:I, s:I, s:I, s:I, s:I}", "rx", (json_int_t)sum.rx, "rx_bytes",
		       (json_int_t)sum.rx_bytes, "tx", (json_int_t)sum.tx, "tx_bytes",
		       (json_int_t)sum.tx_bytes, "dropped", (json_int_t)dropped);

	pthread_mutex_lock(&ctx->lock);
	g = ctx->pub.gen;
	t = g->table;
	acc = json_deep_copy(ctx->totals);
	if (ctx->retiring)
		fold_gen(acc, ctx->retiring);
	fold_gen(acc, g);
	snprintf(key, sizeof(key), "%016llx", (unsigned long long)g->hash);
	gen = json_pack("{s:I, s:s, s:s, s:I, s:i, s:i, s:i, s:i, s:I, s:I}", "id", (json_int_t)g->id,
			"hash", key, "source", t->source, "created_unix_ns", (json_int_t)g->created_unix_ns,
			"regions", t->nregions - 1, "services", t->nservices - 1, "links", t->nlinks,
			"policies", (int)t->npolicies - 1, "prefixes_v4", (json_int_t)t->nprefix4,
			"prefixes_v6", (json_int_t)t->nprefix6);
	links = json_object_get(acc, "links");
	for (uint16_t i = 0; i < t->nlinks; i++) {
		json_t *l = json_object_get(links, t->links[i].name);

		json_object_set_new(l, "port", json_string(t->links[i].port));
		json_object_set_new(l, "state",
				    json_string(t->links[i].up ? FWD_WORD_NAME(LINK_STATE, UP)
							       : FWD_WORD_NAME(LINK_STATE, DOWN)));
	}
	pol = json_object_get(acc, "policies");
	for (uint32_t i = 0; i < t->npolicies; i++) {
		const struct fwd_policy *p = &t->policies[i];
		json_t *o;

		fwd_table_policy_key(t, i, key, sizeof(key));
		o = json_object_get(pol, key);
		json_object_set_new(o, "action",
				    json_string(p->action == FWD_ACT_DROP
						    ? FWD_WORD_NAME(POLICY_ACTION, DROP)
						    : FWD_WORD_NAME(POLICY_ACTION, STEER)));
		json_object_set_new(o, "target", json_string(fwd_table_policy_target(t, p)));
	}
	pol = json_object_get(acc, "content_rules");
	for (uint32_t i = 0; i < t->ncontent; i++) {
		const struct fwd_content_rule *cr = &t->content[i];
		json_t *o = json_object_get(pol, cr->name);

		json_object_set_new(o, "field", json_string(fwd_content_field_name(cr->field)));
		json_object_set_new(o, "action", json_string(fwd_content_action_name(cr->action)));
		json_object_set_new(o, "to", cr->action == FWD_CA_MIRROR || cr->action == FWD_CA_STEER ?
				    json_string(cr->target_kind == FWD_ACT_GROUP ? t->groups[cr->target].name :
						t->links[cr->target].name) : json_null());
	}
	if (g->content)
		json_object_set_new(gen, "content", json_pack("{s:i, s:I, s:I, s:b}", "rules", (int)t->ncontent,
							    "database_bytes", (json_int_t)g->content->db_bytes,
							    "scratch_bytes", (json_int_t)g->content->scratch_bytes,
							    "compiled_here", g->content->compiled_here));
	pthread_mutex_unlock(&ctx->lock);

	json_object_set_new(r, "generation", gen);
	json_object_set_new(r, "workers", json_integer(ctx->nworkers));
	json_object_set_new(r, "ports", port_stats(ctx));
	if (ctx->pool)
		json_object_set_new(r, "mbufs", json_pack("{s:I, s:I}", "pool", (json_int_t)ctx->pool->size,
							  "in_use", (json_int_t)rte_mempool_in_use_count(ctx->pool)));
	json_object_set_new(r, "packets", pk);
	json_object_set_new(r, "drops", drops);
	json_object_set_new(r, "events", evts);
	json_object_update(r, acc);
	json_decref(acc);
	return r;
}

static uint64_t ju(const json_t *o, const char *key)
{
	return (uint64_t)json_integer_value(json_object_get(o, key));
}

static void print_counts(FILE *out, const char *title, const json_t *obj)
{
	const char *k;
	json_t *v;

	fprintf(out, "\n%-24s %14s %16s\n", title, "packets", "bytes");
	json_object_foreach((json_t *)obj, k, v)
		fprintf(out, "  %-22s %14" PRIu64 " %16" PRIu64 "\n", k, ju(v, "packets"), ju(v, "bytes"));
}

void dp_report_print(const json_t *r, FILE *out)
{
	const json_t *pk = json_object_get(r, "packets"), *gen = json_object_get(r, "generation");
	const char *k;
	json_t *v;
	uint64_t rx = ju(pk, "rx"), tx = ju(pk, "tx"), dropped = ju(pk, "dropped");

	fprintf(out, "regionfwd: generation %" PRIu64 " from %s, %" PRIu64 " workers\n",
		ju(gen, "id"), json_string_value(json_object_get(gen, "source")), ju(r, "workers"));
	fprintf(out, "  rx %" PRIu64 "  tx %" PRIu64 "  dropped %" PRIu64 "  (rx = tx + dropped: %s)\n",
		rx, tx, dropped, rx == tx + dropped ? "holds" : "BROKEN");

	fprintf(out, "\n%-24s %-12s %-6s %14s %16s\n", "link", "port", "state", "packets", "bytes");
	json_object_foreach(json_object_get(r, "links"), k, v) {
		const char *port = json_string_value(json_object_get(v, "port"));
		const char *state = json_string_value(json_object_get(v, "state"));

		fprintf(out, "  %-22s %-12s %-6s %14" PRIu64 " %16" PRIu64 "\n", k, port ? port : "-",
			state ? state : "gone", ju(v, "packets"), ju(v, "bytes"));
	}
	fprintf(out, "\n%-24s %14s %14s %10s %10s %10s\n", "port", "ipackets", "opackets", "imissed",
		"rx_nombuf", "oerrors");
	json_object_foreach(json_object_get(r, "ports"), k, v)
		fprintf(out, "  %-22s %14" PRIu64 " %14" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n", k,
			ju(v, "ipackets"), ju(v, "opackets"), ju(v, "imissed"), ju(v, "rx_nombuf"), ju(v, "oerrors"));
	print_counts(out, "region", json_object_get(r, "regions"));
	print_counts(out, "service", json_object_get(r, "services"));

	fprintf(out, "\n%-24s %-8s %-20s %14s\n", "policy (region/service)", "action", "target",
		"packets");
	json_object_foreach(json_object_get(r, "policies"), k, v) {
		const char *a = json_string_value(json_object_get(v, "action"));
		const char *tg = json_string_value(json_object_get(v, "target"));

		fprintf(out, "  %-22s %-8s %-20s %14" PRIu64 "\n", k, a ? a : "-", tg ? tg : "(gone)",
			ju(v, "packets"));
	}
	if (json_object_size(json_object_get(r, "content_rules"))) {
		fprintf(out, "\n%-24s %-10s %-7s %-14s %12s %12s\n", "content rule", "field", "action", "to",
			"matches", "flow_pkts");
		json_object_foreach(json_object_get(r, "content_rules"), k, v) {
			const char *f = json_string_value(json_object_get(v, "field"));
			const char *a = json_string_value(json_object_get(v, "action"));
			const char *to = json_string_value(json_object_get(v, "to"));

			fprintf(out, "  %-22s %-10s %-7s %-14s %12" PRIu64 " %12" PRIu64 "\n", k, f ? f : "-",
				a ? a : "(gone)", to ? to : "-", ju(v, "matches"), ju(v, "flow_packets"));
		}
	}
	fprintf(out, "\n%-24s %14s\n", "drop reason", "packets");
	json_object_foreach(json_object_get(r, "drops"), k, v)
		if (json_integer_value(v))
			fprintf(out, "  %-22s %14" PRIu64 "\n", k, (uint64_t)json_integer_value(v));
	fprintf(out, "\n%-24s %14s\n", "event", "count");
	json_object_foreach(json_object_get(r, "events"), k, v)
		if (json_integer_value(v))
			fprintf(out, "  %-22s %14" PRIu64 "\n", k, (uint64_t)json_integer_value(v));
	fflush(out);
}

/* ---- telemetry ------------------------------------------------------------ */

static struct dp_ctx *tel_ctx; /* the telemetry API has no user argument */

/* DPDK 22.11 telemetry refuses dict keys outside [A-Za-z0-9_/] (silently,
 * for the caller of the command); table names may also hold '-' and '.',
 * which become '_' here. The JSON model (--stats-json, the API) keeps the
 * exact names. */
static const char *tel_key(const char *name, char *buf, size_t len)
{
	size_t i;

	for (i = 0; name[i] && i + 1 < len; i++)
		buf[i] = isalnum((unsigned char)name[i]) || name[i] == '/' ? name[i] : '_';
	buf[i] = '\0';
	return buf;
}

/* Flat dict of one report section: integers as u64, objects by their
 * "packets" field (telemetry dicts nest one level at most). */
static int tel_section(const char *section, struct rte_tel_data *d)
{
	json_t *r = dp_ctx_report(tel_ctx), *sec;
	const char *name;
	char k[RTE_TEL_MAX_STRING_LEN];
	json_t *v;

	if (r == NULL)
		return -ENOMEM;
	sec = json_object_get(r, section);
	rte_tel_data_start_dict(d);
	json_object_foreach(sec, name, v) {
		tel_key(name, k, sizeof(k));
		if (json_is_integer(v))
			rte_tel_data_add_dict_u64(d, k, (uint64_t)json_integer_value(v));
		else if (json_is_object(v) && json_object_get(v, "packets"))
			rte_tel_data_add_dict_u64(d, k, ju(v, "packets"));
		else if (json_is_object(v) && json_object_get(v, "matches"))
			rte_tel_data_add_dict_u64(d, k, ju(v, "matches"));
		else if (json_is_string(v))
			rte_tel_data_add_dict_string(d, k, json_string_value(v));
	}
	json_decref(r);
	return 0;
}

#define TEL_CMD(fn, section)                                                          \
	static int fn(const char *cmd __rte_unused, const char *params __rte_unused, \
		      struct rte_tel_data *d)                                         \
	{                                                                             \
		return tel_section(section, d);                                       \
	}
TEL_CMD(tel_packets, "packets")
TEL_CMD(tel_drops, "drops")
TEL_CMD(tel_events, "events")
TEL_CMD(tel_links, "links")
TEL_CMD(tel_regions, "regions")
TEL_CMD(tel_services, "services")
TEL_CMD(tel_policies, "policies")
TEL_CMD(tel_generation, "generation")
TEL_CMD(tel_content, "content_rules")
#undef TEL_CMD

int dp_telemetry_register(struct dp_ctx *ctx)
{
	static const struct {
		const char *cmd;
		telemetry_cb fn;
		const char *help;
	} cmds[] = {
		{"/regionfwd/packets", tel_packets, "rx, tx and dropped packets and bytes"},
		{"/regionfwd/drops", tel_drops, "packets dropped, per reason"},
		{"/regionfwd/events", tel_events, "fragment, mirror and generation events"},
		{"/regionfwd/links", tel_links, "packets transmitted per link"},
		{"/regionfwd/regions", tel_regions, "packets per source region"},
		{"/regionfwd/services", tel_services, "packets per service"},
		{"/regionfwd/policies", tel_policies, "packets per policy (region/service)"},
		{"/regionfwd/generation", tel_generation, "the running table generation"},
		{"/regionfwd/content_rules", tel_content, "packets matched per content rule"},
	};
	int rc;

	tel_ctx = ctx;
	for (size_t i = 0; i < RTE_DIM(cmds); i++) {
		rc = rte_telemetry_register_cmd(cmds[i].cmd, cmds[i].fn, cmds[i].help);
		if (rc)
			return rc;
	}
	return 0;
}
