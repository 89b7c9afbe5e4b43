#include "dp_fold.h"

#include <errno.h>
#include <string.h>

#include "fwd_class.h"

int dp_fold_gen(struct fwd_report *acc, const struct dp_gen *g)
{
	const struct fwd_table *t = g->table;
	struct fwd_report_row *row;
	char key[80];

	/* Region, service and policy totals over the workers: direct counters
	 * plus, for tables counted per cell, the cells summed (see dp_gen.h).
	 * The sums go to the generation's own scratch (callers hold ctx->lock).
	 * Each worker writes its own cells with plain increments, no atomics
	 * on the hot path; the loads here are relaxed atomics so that the
	 * compiler reads each cell once and whole. Both sides rely on x86-64
	 * (and every 64-bit CPU DPDK runs on) never splitting an aligned
	 * 8-byte store: a reader sees a cell's old or new value, so a total
	 * may lag a burst but is never torn. These rows are not under the
	 * burst's sequence count, which guards the drop/tx/rx invariant only. */
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
				uint64_t pk =
					__atomic_load_n(&c->cell[cell].pkts, __ATOMIC_RELAXED);
				uint64_t by =
					__atomic_load_n(&c->cell[cell].bytes, __ATOMIC_RELAXED);

				reg[2 * r] += pk;
				reg[2 * r + 1] += by;
				svc[2 * sv] += pk;
				svc[2 * sv + 1] += by;
				pol[g->cls->matrix[cell]] += pk;
			}
		}
	}
	for (uint16_t i = 0; i < t->nregions; i++) {
		if ((row = fwd_report_row(acc, FWD_RS_REGIONS, t->region_names[i])) == NULL)
			return -ENOMEM;
		row->v[FWD_RV_PACKETS] += reg[2 * i];
		row->v[FWD_RV_BYTES] += reg[2 * i + 1];
	}
	for (uint16_t i = 0; i < t->nservices; i++) {
		if ((row = fwd_report_row(acc, FWD_RS_SERVICES, t->service_names[i])) == NULL)
			return -ENOMEM;
		row->v[FWD_RV_PACKETS] += svc[2 * i];
		row->v[FWD_RV_BYTES] += svc[2 * i + 1];
	}
	for (uint32_t i = 0; i < t->npolicies; i++) {
		fwd_table_policy_key(t, i, key, sizeof(key));
		if ((row = fwd_report_row(acc, FWD_RS_POLICIES, key)) == NULL)
			return -ENOMEM;
		row->v[FWD_RV_PACKETS] += pol[i];
	}

	for (uint16_t w = 0; w < g->nworkers; w++) {
		const struct dp_gen_cnt *c = &g->cnt[w];

		for (uint16_t i = 0; i < t->nlinks; i++) {
			if ((row = fwd_report_row(acc, FWD_RS_LINKS, t->links[i].name)) == NULL)
				return -ENOMEM;
			row->v[FWD_RV_PACKETS] +=
				__atomic_load_n(&c->link[i].pkts, __ATOMIC_RELAXED);
			row->v[FWD_RV_BYTES] +=
				__atomic_load_n(&c->link[i].bytes, __ATOMIC_RELAXED);
		}
		for (uint32_t i = 0; i < t->ncontent; i++) {
			if ((row = fwd_report_row(acc, FWD_RS_CONTENT, t->content[i].name)) == NULL)
				return -ENOMEM;
			row->v[FWD_RV_MATCHES] +=
				__atomic_load_n(&c->content_match[i], __ATOMIC_RELAXED);
			row->v[FWD_RV_FLOW_PACKETS] +=
				__atomic_load_n(&c->content_flow[i], __ATOMIC_RELAXED);
		}
	}
	return 0;
}
