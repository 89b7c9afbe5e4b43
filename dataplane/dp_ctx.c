#define _GNU_SOURCE /* pthread_setname_np */
#include "dp_ctx.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>
#include <rte_telemetry.h>

#include "dp_cap.h"
#include "dp_log.h"
#include "dp_fold.h"
#include "ctl_model.h"
#include "dp_saved.h"
#include "fwd_embed.h"
#include "fwd_names.h"
#include "fwd_stages.h"
#include "fwd_clock.h"

/* "'@name'" appended to the list in @buf (@*n bytes so far), or ", ..."
 * once it would not fit. */
static void name_list_add(char *buf, size_t len, size_t *n, const char *name)
{
	int w;

	if (*n >= len - 5)
		return; /* cut already */
	w = snprintf(buf + *n, len - 5 - *n, "%s'%s'", *n ? ", " : "", name);
	if (w >= 0 && (size_t)w < len - 5 - *n)
		*n += (size_t)w;
	else
		*n += (size_t)snprintf(buf + *n, len - *n, "%s...", *n ? ", " : ""), *n = len;
}

/* What the groups are told of port @pid (fwd_class.h FWD_PORT_*): down,
 * in, or held (up again for less than group_port_up_ms), ranked by how
 * long: 1 for the earliest up of the ports held now, and so on. */
static uint8_t port_state(const struct dp_ctx *ctx, uint16_t pid)
{
	unsigned rank = FWD_PORT_HELD;

	if (__atomic_load_n(&ctx->pub.port_down[pid], __ATOMIC_RELAXED))
		return FWD_PORT_DOWN;
	if (ctx->port_up_ns[pid] == 0)
		return FWD_PORT_IN;
	for (uint16_t i = 0; i < ctx->ports.nports; i++) {
		const uint64_t up = ctx->port_up_ns[ctx->ports.port_id[i]];

		rank += up != 0 && up < ctx->port_up_ns[pid];
	}
	return (uint8_t)(rank < FWD_PORT_DOWN ? rank : FWD_PORT_DOWN - 1);
}

/* Per member of every group of @t (FWD_MAX_GROUP_MEMBERS each) whether
 * @c leaves it out, into @m. */
static void members_out(const struct fwd_class *c, const struct fwd_table *t, uint8_t *m)
{
	for (uint16_t gr = 0; gr < t->ngroups; gr++)
		fwd_class_group_out(c, t, gr, m + (size_t)gr * FWD_MAX_GROUP_MEMBERS);
}

/* Link groups follow their members' ports (docs/operations.md "Link groups
 * and ports"): a link of @g whose port reports its link down, or has been
 * up for less than node.group_port_up_ms, leaves its groups while another
 * member can carry; it comes back once its port has been up that long
 * (fwd_class_ports_out). @before is the generation the workers ran until
 * now (@g itself on a poll; NULL at the start): who left or came back
 * against it is logged, by group and link name, so a push while a port is
 * down says nothing new. A derived generation shares its classifier with
 * the one it came from. Control thread only. */
static void groups_follow_ports(struct dp_ctx *ctx, struct dp_gen *g, const struct dp_gen *before)
{
	const struct fwd_table *t = g->table;
	struct fwd_class *c = g->cls;
	const size_t n = t->nlinks ? t->nlinks : 1,
		     nm = (size_t)(t->ngroups ? t->ngroups : 1) * FWD_MAX_GROUP_MEMBERS;
	uint8_t *out = calloc(n, 1), *was_port = calloc(n, 1), *touched = calloc(n, 1);
	uint8_t *was = calloc(nm, 1), *now = calloc(nm, 1), *bm = NULL;
	uint32_t moved = 0, said = 0, unsaid = 0;
	int rc = -ENOMEM;

	if (out == NULL || was_port == NULL || touched == NULL || was == NULL || now == NULL)
		goto failed;
	for (uint16_t l = 0; l < t->nlinks; l++)
		out[l] = port_state(ctx, g->links[l].port_id);
	/* Who was out before, by name: ids change with the table. Taken
	 * before the refill, which may write the very class. */
	if (before != NULL && before->cls == c) {
		memcpy(was_port, c->link_out, t->nlinks);
		members_out(c, t, was);
	} else if (before != NULL) {
		const struct fwd_table *bt = before->table;

		bm = calloc((size_t)(bt->ngroups ? bt->ngroups : 1) * FWD_MAX_GROUP_MEMBERS, 1);
		if (bm == NULL)
			goto failed;
		members_out(before->cls, bt, bm);
		for (uint16_t l = 0; l < t->nlinks; l++) {
			const int b = fwd_table_link_id(bt, t->links[l].name);

			was_port[l] = b >= 0 ? before->cls->link_out[b] : FWD_PORT_IN;
		}
		for (uint16_t gr = 0; gr < t->ngroups; gr++) {
			const int bg = fwd_table_group_id(bt, t->groups[gr].name);

			for (uint16_t i = 0; bg >= 0 && i < t->groups[gr].nmembers; i++)
				for (uint16_t j = 0; j < bt->groups[bg].nmembers; j++)
					if (strcmp(bt->links[bt->groups[bg].members[j].link].name,
						   t->links[t->groups[gr].members[i].link].name) ==
					    0)
						was[(size_t)gr * FWD_MAX_GROUP_MEMBERS + i] =
							bm[(size_t)bg * FWD_MAX_GROUP_MEMBERS + j];
		}
	}
	rc = fwd_class_ports_out(c, t, out, &moved);
	if (rc)
		goto failed;
	ctx->groups_behind = 0;
	members_out(c, t, now);
	/* The links whose membership changed, in one pass: the lists below
	 * walk every group for a link, which is for those alone (1,024 links
	 * in 1,024 groups of 64 would otherwise cost each publish). */
	for (uint16_t gr = 0; gr < t->ngroups; gr++)
		for (uint16_t i = 0; i < t->groups[gr].nmembers; i++) {
			const size_t k = (size_t)gr * FWD_MAX_GROUP_MEMBERS + i;

			if (was[k] != now[k])
				touched[t->groups[gr].members[i].link] = 1;
		}
	for (uint16_t l = 0; l < t->nlinks; l++) {
		char left[256], back[256], kept[256];
		size_t nl = 0, nb = 0, nk = 0;
		const struct fwd_link *lk = &t->links[l];
		const int went_down = out[l] == FWD_PORT_DOWN && was_port[l] != FWD_PORT_DOWN;

		if (!touched[l] && !went_down)
			continue;
		left[0] = back[0] = kept[0] = '\0';
		for (uint16_t gr = 0; gr < t->ngroups; gr++)
			for (uint16_t i = 0; i < t->groups[gr].nmembers; i++) {
				const size_t k = (size_t)gr * FWD_MAX_GROUP_MEMBERS + i;
				const char *name = t->groups[gr].name;

				if (t->groups[gr].members[i].link != l)
					continue;
				if (now[k] && !was[k])
					name_list_add(left, sizeof(left), &nl, name);
				else if (!now[k] && was[k])
					name_list_add(back, sizeof(back), &nb, name);
				/* down where no other member can take its flows */
				else if (went_down && !now[k] && lk->up && !lk->drained &&
					 t->groups[gr].members[i].weight != 0)
					name_list_add(kept, sizeof(kept), &nk, name);
			}
		/* A port with many links, or many ports at once: a few lines,
		 * then their number (explain and status say which). */
		if ((nl || nb || nk) && said >= 8) {
			unsaid++;
			continue;
		}
		said += nl || nb || nk;
		if (nl)
			DP_LOG(WARNING,
			       "generation %llu: link '%s' leaves its link groups (%s): its port "
			       "'%s' %s; its flows go to the groups' other members",
			       (unsigned long long)g->id, lk->name, left, lk->port,
			       out[l] == FWD_PORT_DOWN ? "reports its link down"
						       : "is up for less than group_port_up_ms");
		if (nb)
			DP_LOG(NOTICE,
			       "generation %llu: link '%s' is back in its link groups (%s): %s",
			       (unsigned long long)g->id, lk->name, back,
			       out[l] == FWD_PORT_IN
				       ? "its port has reported its link up for group_port_up_ms"
			       : out[l] == FWD_PORT_DOWN
				       ? "its port is down, as every other member's is: their "
					 "flows "
					 "stay as the table has them, dropped as port_down"
				       : "its port is up, not yet for group_port_up_ms, and no "
					 "member up for longer can take its flows");
		if (nk)
			DP_LOG(WARNING,
			       "generation %llu: the port '%s' of link '%s' reports its link down, "
			       "and no other member of its link groups (%s) can take its flows: "
			       "they stay, dropped as port_down",
			       (unsigned long long)g->id, lk->port, lk->name, kept);
	}
	if (unsaid)
		DP_LOG(NOTICE,
		       "generation %llu: %u more links left their link groups or came back "
		       "with their port ('regionctl explain' and 'status' say which)",
		       (unsigned long long)g->id, unsaid);
	goto done;
failed:
	if (!ctx->groups_behind)
		DP_LOG(ERR, "out of memory moving link groups' flows off (or back onto) "
			    "links whose port changed its link state; tried again every "
			    "0.5 s, the groups meanwhile as they were");
	ctx->groups_behind = 1;
done:
	free(out);
	free(was_port);
	free(touched);
	free(was);
	free(now);
	free(bm);
}

void dp_ctx_publish(struct dp_ctx *ctx, struct dp_gen *g)
{
	struct dp_gen *old;

	/* Before workers see it: a new table's groups start without the
	 * members whose port is down now. (pub.gen: this thread is its only
	 * writer.) */
	groups_follow_ports(ctx, g, ctx->pub.gen);
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
	/* A capture's copies made under @old name it (dp_cap.h): all of them
	 * are in the rings now, and are formatted before it goes. */
	dp_cap_flush(ctx->cap);
	pthread_mutex_lock(&ctx->lock);
	/* Before the free: the retired generation's counters live on in the
	 * totals. A fold that runs out of memory loses only what it could not
	 * add (logged); forwarding is not affected. A generation that handed
	 * its counters over to a derived one (a delta) is not folded: they
	 * are counting on in @g. */
	if (!old->handed_over && dp_fold_gen(ctx->totals, old))
		DP_LOG(ERR, "generation %llu: out of memory folding its counters into the totals",
		       (unsigned long long)old->id);
	ctx->retiring = NULL;
	pthread_mutex_unlock(&ctx->lock);
	if (old->handed_over) {
		/* No worker reads them any more: they get the delta next
		 * (dp_ctx_apply_delta) and become the standby. */
		ctx->recycled.fib4 = old->fib4;
		ctx->recycled.fib6 = old->fib6;
		ctx->recycled.bytes = old->fib_bytes;
		old->fib4 = NULL;
		old->fib6 = NULL;
	}
	dp_gen_free(old);
}

static void journal_clear(struct dp_ctx *ctx);

/* ---- the standby FIBs ------------------------------------------------------- */

static void *standby_main(void *arg)
{
	struct dp_ctx *ctx = arg;
	struct fwd_err err;

	if (ctx->replay.n) {
		/* The retired generation's FIBs, which no worker reads any more
		 * (after the grace period), get the delta the live ones got. */
		ctx->built_rc = dp_fibs_apply(&ctx->built, ctx->build_from, &ctx->replay);
		if (ctx->built_rc) {
			DP_LOG(NOTICE,
			       "the retired FIBs refused the delta's replay (%s); "
			       "building the standby whole",
			       strerror(-ctx->built_rc));
			dp_fibs_free(&ctx->built);
		} else {
			return NULL;
		}
	}
	/* Reads only the table, which the published generation owns and
	 * which cannot be retired before this thread is joined (every
	 * publish and delta joins it first). */
	ctx->built_rc = dp_fibs_build(ctx->build_from, &ctx->built, &err);
	if (ctx->built_rc)
		DP_LOG(ERR, "standby FIBs not built: %s; the next delta builds its FIBs whole",
		       err.reason);
	return NULL;
}

/* Wait for the builder; its FIBs become the standby when they mirror the
 * published generation (they always do: nothing is published meanwhile
 * without this join). */
static void standby_join(struct dp_ctx *ctx)
{
	if (!ctx->building)
		return;
	pthread_join(ctx->builder, NULL);
	ctx->building = 0;
	if (ctx->built_rc == 0 && ctx->pub.gen && ctx->build_from == ctx->pub.gen->table) {
		dp_fibs_free(&ctx->standby);
		ctx->standby = ctx->built;
		ctx->standby_ok = 1;
	} else {
		dp_fibs_free(&ctx->built);
	}
	memset(&ctx->built, 0, sizeof(ctx->built));
	fwd_delta_clear(&ctx->replay);
}

static void standby_drop(struct dp_ctx *ctx)
{
	standby_join(ctx);
	dp_fibs_free(&ctx->standby);
	ctx->standby_ok = 0;
}

/* Make the standby of the published generation in the background: from
 * @recycled (FIBs that mirror the generation before it) with the delta
 * @replay (taken over) when given, else built whole from its table. */
static void standby_start(struct dp_ctx *ctx, struct dp_fibs *recycled, struct fwd_delta *replay)
{
	standby_drop(ctx);
	if (recycled && replay && recycled->fib4) {
		ctx->built = *recycled;
		ctx->replay = *replay;
		memset(recycled, 0, sizeof(*recycled));
		memset(replay, 0, sizeof(*replay));
	}
	if (ctx->pub.gen == NULL) {
		dp_fibs_free(&ctx->built);
		fwd_delta_clear(&ctx->replay);
		return;
	}
	ctx->build_from = ctx->pub.gen->table;
	ctx->built_rc = -EAGAIN;
	if (pthread_create(&ctx->builder, NULL, standby_main, ctx) != 0) {
		DP_LOG(WARNING, "cannot start the standby FIB builder; the next delta builds its "
				"FIBs whole");
		dp_fibs_free(&ctx->built);
		fwd_delta_clear(&ctx->replay);
		return;
	}
	pthread_setname_np(ctx->builder, "rfwd-standby");
	ctx->building = 1;
}

void dp_ctx_standby_stop(struct dp_ctx *ctx)
{
	standby_drop(ctx);
	dp_fibs_free(&ctx->recycled);
	journal_clear(ctx);
}

/* ---- the journal of deltas since the document ---------------------------------- */

static void journal_clear(struct dp_ctx *ctx)
{
	for (uint32_t i = 0; i < ctx->journal.n; i++)
		free(ctx->journal.rec[i]);
	free(ctx->journal.rec);
	free(ctx->journal.len);
	free(ctx->journal.id);
	free(ctx->journal.hash);
	memset(&ctx->journal, 0, sizeof(ctx->journal));
}

static int journal_add(struct dp_ctx *ctx, const uint8_t *packed, size_t len, uint64_t id,
		       uint64_t hash)
{
	struct dp_journal *j = &ctx->journal;
	uint8_t *copy = malloc(len ? len : 1);

	if (copy == NULL)
		return -ENOMEM;
	if (j->n == j->cap) {
		uint32_t cap = j->cap ? j->cap * 2 : 16;
		uint8_t **rec = realloc(j->rec, sizeof(*rec) * cap);
		size_t *lens = rec ? realloc(j->len, sizeof(*lens) * cap) : NULL;
		uint64_t *ids = lens ? realloc(j->id, sizeof(*ids) * cap) : NULL;
		uint64_t *hashes = ids ? realloc(j->hash, sizeof(*hashes) * cap) : NULL;

		/* Each realloc that succeeded is kept (the old block is gone). */
		if (rec)
			j->rec = rec;
		if (lens)
			j->len = lens;
		if (ids)
			j->id = ids;
		if (hashes == NULL) {
			free(copy);
			return -ENOMEM;
		}
		j->hash = hashes;
		j->cap = cap;
	}
	memcpy(copy, packed, len);
	j->rec[j->n] = copy;
	j->len[j->n] = len;
	j->id[j->n] = id;
	j->hash[j->n++] = hash;
	j->bytes += len;
	return 0;
}

void dp_ctx_poll_links(struct dp_ctx *ctx)
{
	uint64_t now = fwd_mono_ns();
	int changed = 0;

	if (now - ctx->links_polled_ns < 500000000u)
		return;
	ctx->links_polled_ns = now;
	for (uint16_t i = 0; i < ctx->ports.nports; i++) {
		uint8_t *flag = &ctx->pub.port_down[ctx->ports.port_id[i]];
		uint8_t down = (uint8_t)(dp_port_link(&ctx->ports, i) == FWD_PORT_LINK_DOWN);

		uint64_t *up = &ctx->port_up_ns[ctx->ports.port_id[i]];

		/* stored on a change only: workers read the line */
		if (__atomic_load_n(flag, __ATOMIC_RELAXED) != down) {
			__atomic_store_n(flag, down, __ATOMIC_RELAXED);
			changed = 1;
			/* Up again: held out of its groups for
			 * group_port_up_ms, so a flapping port does not move
			 * its flows back and forth (down acts at once). */
			*up = down ? 0 : now;
		}
		if (!down && *up && now - *up >= (uint64_t)ctx->node.group_port_up_ms * 1000000u) {
			*up = 0;
			changed = 1;
		}
	}
	/* This thread publishes too, so pub.gen is read plainly. */
	if ((changed || ctx->groups_behind) && ctx->pub.gen != NULL)
		groups_follow_ports(ctx, ctx->pub.gen, ctx->pub.gen);
}

/* The journal is folded into a document of the running generation once it
 * holds more than the document itself and at least node.delta_journal_bytes:
 * a restart replays at most that much, and memory and disk stay bounded
 * under endless churn (a BGP feed). */
void dp_ctx_fold_journal(struct dp_ctx *ctx)
{
	const struct dp_gen *g = ctx->pub.gen;
	uint64_t t0 = rte_get_tsc_cycles();
	json_t *m;
	size_t len = 0;
	char *doc;

	if (g == NULL || ctx->journal.bytes < ctx->node.delta_journal_bytes ||
	    ctx->journal.bytes < ctx->doc_len)
		return;
	m = ctl_model(g->table);
	doc = m ? ctl_model_dump(m, &len) : NULL; /* as regiond writes a model */
	json_decref(m);
	if (doc == NULL) {
		DP_LOG(WARNING, "out of memory folding %u deltas into a document; kept as they are",
		       ctx->journal.n);
		return;
	}
	DP_LOG(INFO,
	       "generation %llu: %u deltas (%.1f MiB) folded into its document (%.1f MiB) in "
	       "%.0f ms",
	       (unsigned long long)g->id, ctx->journal.n, (double)ctx->journal.bytes / 1048576.0,
	       (double)len / 1048576.0,
	       (double)(rte_get_tsc_cycles() - t0) * 1000.0 / (double)rte_get_tsc_hz());
	free(ctx->doc);
	ctx->doc = doc;
	ctx->doc_len = len;
	/* The document is the generation's own now, named by its hash (not
	 * the document's): OP_TABLE says so, and so does the saved header. */
	ctx->doc_gen_hash = g->hash;
	ctx->doc_gen_id = g->id;
	journal_clear(ctx);
}

static void journal_pop(struct dp_ctx *ctx)
{
	struct dp_journal *j = &ctx->journal;

	j->n--;
	j->bytes -= j->len[j->n];
	free(j->rec[j->n]);
}

/* A push regiond stopped waiting for (it answered "nothing changed") must
 * not be published: checked on arrival (a stopped or busy regionfwd reads
 * it late) and again just before the swap (building may take long). */
static int expired(uint64_t deadline_ns, struct fwd_err *err)
{
	uint64_t now = fwd_mono_ns();

	if (deadline_ns == 0 || now <= deadline_ns)
		return 0;
	fwd_err_fail(err, FWD_R_PUSH_EXPIRED, NULL, 0, "",
		     "the push arrived or finished %.1f s after its deadline: not published",
		     (double)(now - deadline_ns) / 1e9);
	return 1;
}

/* A save's failure @why, in status (save_error) and logged with @then once
 * a cause: regionfwd.c's loop retries every 2 s. */
static void save_failed(struct dp_ctx *ctx, const char *why, const char *then)
{
	if (strcmp(why, ctx->save_error) != 0)
		DP_LOG(ERR, "%s%s", why, then);
	snprintf(ctx->save_error, sizeof(ctx->save_error), "%s", why);
}

/* Bring the saved file (dp_saved.h) to generation @gen_id: the chain's
 * document @doc (@doc_hash names it) and the first @njournal journal
 * records. The document once per chain, then each delta appended: a small
 * change costs a small write, not the whole table. @return 0 saved; 1 the
 * file is not regionfwd's and was left alone; -errno failed. Each failure
 * is said once a cause (status: save_error) and retried by regionfwd.c's
 * loop. */
static int save_chain(struct dp_ctx *ctx, uint64_t gen_id, const struct dp_pusher *by,
		      uint64_t doc_hash, uint64_t doc_id, const char *doc, size_t doc_len,
		      uint32_t njournal)
{
	char why[sizeof(ctx->save_error)];
	int rc = 0;

	/* Another controller's no-op push of the same table takes it over:
	 * the header names the new one, so the document is written again. */
	if (ctx->saved_doc_hash != doc_hash || ctx->saved_controller != by->controller ||
	    ctx->saved_deltas > njournal) {
		struct fwd_err ferr = {0};

		ctx->saved_doc_hash = 0;
		ctx->saved_deltas = 0;
		/* A file regionfwd did not write (an operator's --table named
		 * as pushed_table by a typo) is never replaced: the push runs,
		 * unsaved, and says so until the file is moved away. */
		if (dp_saved_foreign(ctx->saved_path, &ferr)) {
			/* Whole, with the path, and what a restart would run:
			 * regiond raises it as its alarm as it is (it once read
			 * "... give pu; a restart ... an older table"). */
			snprintf(why, sizeof(why),
				 "cannot save generation %llu to %.200s: %.300s; a restart of "
				 "regionfwd "
				 "would start on --table",
				 (unsigned long long)gen_id, ctx->saved_path, ferr.reason);
			save_failed(ctx, why, "");
			ctx->saved_hash = 0;
			return 1;
		}
		rc = dp_saved_write(ctx->saved_path, doc_id, doc_hash, by->name, by->controller,
				    doc, doc_len);
		if (rc == 0) {
			ctx->saved_doc_hash = doc_hash;
			ctx->saved_controller = by->controller;
			ctx->journal_fresh = 1;
		}
	}
	if (rc == 0 && ctx->saved_deltas < njournal) {
		uint32_t k = ctx->saved_deltas;

		/* Written whole into an empty journal: a file put back where
		 * the directory stood (an old .deltas restored) would have
		 * had these appended after its stale records. */
		if (ctx->journal_fresh && k == 0)
			rc = dp_saved_journal_cut(ctx->saved_path, 0);
	}
	if (rc == 0 && ctx->saved_deltas < njournal) {
		uint32_t k = ctx->saved_deltas;

		rc = dp_saved_append(ctx->saved_path, ctx->journal.id + k, ctx->journal.hash + k,
				     ctx->journal.rec + k, ctx->journal.len + k, njournal - k);
		if (rc == 0) {
			ctx->saved_deltas = njournal;
			ctx->journal_fresh = 0;
		}
	}
	if (rc) {
		int n = snprintf(why, sizeof(why), "cannot save generation %llu to %.120s: %s",
				 (unsigned long long)gen_id, ctx->saved_path,
				 dp_saved_strerror(rc));

		if (ctx->saved_refused_id && n > 0 && (size_t)n < sizeof(why))
			snprintf(why + n, sizeof(why) - (size_t)n,
				 "; the file may still hold generation %llu, a push that was "
				 "refused, which a restart of regionfwd would start on",
				 (unsigned long long)ctx->saved_refused_id);
		save_failed(
			ctx, why,
			ctx->saved_refused_id
				? " until regiond pushes again (retrying)"
				: "; a restart of regionfwd would start on an older table until "
				  "regiond pushes again (retrying)");
		/* Written whole next time: a failed append may have left a
		 * torn record, which a restart stops reading at. Not when the
		 * append wrote nothing (its .deltas not a file of its own):
		 * the whole save replaces a link or a FIFO there, but a
		 * directory stays, and the table was saved again every 2 s. */
		if (rc != DP_SAVED_NOT_REGULAR || !dp_saved_journal_is_dir(ctx->saved_path))
			ctx->saved_doc_hash = 0;
		else { /* whatever journal there was is gone: all of it, once it can be */
			ctx->saved_deltas = 0;
			ctx->journal_fresh = 1;
		}
		ctx->saved_hash = 0;
		return rc;
	}
	if (ctx->save_error[0])
		DP_LOG(NOTICE, "generation %llu saved to %s: a restart resumes it again",
		       (unsigned long long)gen_id, ctx->saved_path);
	ctx->save_error[0] = '\0';
	ctx->saved_refused_id = 0;
	return 0;
}

/* A push is saved before it is published, not after. A save that hangs (a
 * stalled disk) past the pusher's deadline then meets the deadline check
 * before the swap, and the table regiond answered as refused never runs;
 * saved after the swap, it ran for the hang's length while regiond said
 * "nothing changed". The file written for a push then refused may name a
 * table that never ran: it goes back to the running generation, or away
 * when that generation was not pushed (a restart then starts on --table,
 * which is what runs). A delta's record alone appended is cut off again
 * (@journal_len: the journal's length before it; -1 when the save wrote
 * more), not the whole chain written again on the disk that just stalled.
 * @saved is save_chain's, SAVE_NONE when no save was tried. */
#define SAVE_NONE 2
static void save_refused(struct dp_ctx *ctx, int saved, uint64_t refused_id,
			 const char *error_before, long long journal_len, uint64_t running_hash)
{
	if (saved == SAVE_NONE)
		return;
	if (saved == 1) { /* nothing written (a file not regionfwd's) */
		memcpy(ctx->save_error, error_before, sizeof(ctx->save_error));
		return;
	}
	if (journal_len >= 0 && dp_saved_journal_cut(ctx->saved_path, journal_len) == 0) {
		ctx->saved_doc_hash = ctx->doc_gen_hash;
		ctx->saved_deltas = ctx->journal.n;
		ctx->saved_hash = running_hash;
		memcpy(ctx->save_error, error_before, sizeof(ctx->save_error));
		return;
	}
	ctx->saved_refused_id = refused_id;
	ctx->saved_hash = 0;
	ctx->saved_doc_hash = 0;
	ctx->saved_deltas = 0;
	dp_ctx_save_retry(ctx);
}

static int apply_doc(struct dp_ctx *ctx, const char *buf, size_t len, const char *name, uint64_t id,
		     uint64_t gen_hash, const struct fwd_hs_dbs *content_db, uint64_t deadline_ns,
		     const struct dp_pusher *save_as, struct fwd_stages *stages,
		     struct fwd_err *err)
{
	int saved = SAVE_NONE;
	uint64_t hash = gen_hash ? gen_hash : fwd_hash64(buf, len), t0 = rte_get_tsc_cycles();
	char times[512], error_before[sizeof(ctx->save_error)];
	struct fwd_table *t;
	struct dp_gen *g;
	char *copy;

	fwd_stage("hash");
	if (ctx->pub.gen && ctx->pub.gen->hash == hash)
		return 1;
	if (expired(deadline_ns, err)) {
		DP_LOG(WARNING, "push from %s refused: %s", name, err->reason);
		return -ETIMEDOUT;
	}
	t = fwd_table_parse(buf, len, name, -1, err);
	if (t == NULL)
		return -EINVAL;
	if (id == 0)
		id = ctx->next_gen_id;
	/* The standby mirrors the running generation, not this one. It stays
	 * while the new FIBs are built and goes after the swap, released in
	 * the background with the retired generation's (dp_fib_free): the
	 * build does not wait for their unmapping, and it builds into the
	 * memory of a pair freed before (dp_fib.h), so memory stays at the
	 * steady state (live FIBs, standby, a kept pair). A refused or late
	 * table leaves the standby as it was. */
	standby_join(ctx);
	fwd_stage("wait for the standby");
	g = dp_gen_build(t, id, hash, &ctx->node, &ctx->ports, ctx->nworkers, content_db, err);
	if (g == NULL)
		return -EINVAL;
	/* Before the save and the swap, so a generation never runs without
	 * the document OP_TABLE answers with, and nothing can fail between
	 * the save and the swap but the deadline. */
	if ((copy = malloc(len + 1)) == NULL) {
		fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		dp_gen_free(g);
		return -ENOMEM;
	}
	memcpy(copy, buf, len);
	copy[len] = '\0';
	/* Saved before it is published (save_refused says why). */
	memcpy(error_before, ctx->save_error, sizeof(error_before));
	if (save_as && ctx->saved_path[0] && !expired(deadline_ns, err)) {
		saved = save_chain(ctx, g->id, save_as, hash, g->id, buf, len, 0);
		fwd_stage("save");
	}
	if (expired(deadline_ns, err)) {
		DP_LOG(WARNING, "push from %s refused: %s", name, err->reason);
		dp_gen_free(g);
		free(copy);
		save_refused(ctx, saved, id, error_before, -1, 0);
		return -ETIMEDOUT;
	}
	if (id >= ctx->next_gen_id && id < UINT64_MAX)
		ctx->next_gen_id = id + 1;
	g->seq = ++ctx->gen_seq;
	fwd_stage("copy document");
	dp_ctx_publish(ctx, g);
	standby_drop(ctx);
	dp_fibs_free(&ctx->recycled);
	free(ctx->doc);
	ctx->doc = copy;
	ctx->doc_len = len;
	ctx->doc_gen_hash = hash;
	ctx->doc_gen_id = g->id;
	journal_clear(ctx);
	if (saved == 0)
		ctx->saved_hash = hash;
	standby_start(ctx, NULL, NULL);
	fwd_stage("publish + retire");
	DP_LOG(INFO,
	       "generation %llu (%016llx) from %s: %u IPv4 + %u IPv6 prefixes, FIBs %.1f MiB, "
	       "built and published in %.1f ms",
	       (unsigned long long)g->id, (unsigned long long)hash, name, g->table->nprefix4,
	       g->table->nprefix6, (double)g->fib_bytes / 1048576.0,
	       (double)(rte_get_tsc_cycles() - t0) * 1000.0 / (double)rte_get_tsc_hz());
	DP_LOG(INFO, "generation %llu: %s", (unsigned long long)g->id,
	       fwd_stages_format(stages, times, sizeof(times)));
	if (g->content)
		DP_LOG(INFO,
		       "generation %llu: %u content rules, databases %.1f KiB (%s), scratch %.1f "
		       "KiB",
		       (unsigned long long)g->id, g->table->ncontent,
		       (double)g->content->db_bytes / 1024.0,
		       g->content->compiled_here	? "compiled here"
		       : fwd_content_patterns(g->table) ? "shipped"
							: "no patterns",
		       (double)g->content->scratch_bytes / 1024.0);
	if (g->content && g->content->names)
		DP_LOG(INFO,
		       "generation %llu: name sets: %u names, %.1f MiB (%.1f B a name), built in "
		       "%.1f ms",
		       (unsigned long long)g->id, g->content->names,
		       (double)g->content->names_bytes / 1048576.0,
		       (double)g->content->names_bytes / g->content->names,
		       g->content->names_build_s * 1e3);
	return 0;
}

/* Every stage of a table's way in is timed (fwd_stages.h) and logged with
 * the generation: parse, validate, build, publish. */
int dp_ctx_apply(struct dp_ctx *ctx, const char *buf, size_t len, const char *name, uint64_t id,
		 uint64_t gen_hash, const struct fwd_hs_dbs *content_db, uint64_t deadline_ns,
		 const struct dp_pusher *save_as, struct fwd_err *err)
{
	struct fwd_stages stages;
	int rc;

	fwd_stages_begin(&stages);
	rc = apply_doc(ctx, buf, len, name, id, gen_hash, content_db, deadline_ns, save_as, &stages,
		       err);
	fwd_stages_end(&stages);
	return rc;
}

int dp_ctx_apply_delta(struct dp_ctx *ctx, const uint8_t *packed, size_t len, const char *name,
		       uint64_t id, uint64_t base_hash, uint64_t hash, uint64_t deadline_ns,
		       const struct dp_pusher *save_as, struct fwd_err *err)
{
	uint64_t t0 = rte_get_tsc_cycles();
	int saved = SAVE_NONE;
	long long journal_len = -1; /* save_refused's */
	char error_before[sizeof(ctx->save_error)];
	struct dp_gen *cur = ctx->pub.gen, *g;
	struct fwd_delta d = {0}, eff = {0};
	struct fwd_delta_stats st;
	struct fwd_table *t = NULL;
	struct dp_fibs f = {0};
	const char *path = "standby";
	int rc;

	if (cur == NULL || cur->hash != base_hash)
		return fwd_err_fail(err, FWD_R_DELTA_BASE_MISMATCH, NULL, 0, "base_hash",
				    "the delta applies to generation %016llx, but %016llx runs; "
				    "push the generation whole",
				    (unsigned long long)base_hash,
				    (unsigned long long)(cur ? cur->hash : 0));
	if (hash == 0) /* the sender leaves it to us (the reply says it) */
		hash = fwd_delta_hash(base_hash, packed, len);
	else if (fwd_delta_hash(base_hash, packed, len) != hash)
		return fwd_err_fail(err, FWD_R_BAD_REQUEST, NULL, 0, "hash",
				    "the hash does not name these changes on this base");
	if (expired(deadline_ns, err)) {
		DP_LOG(WARNING, "delta from %s refused: %s", name, err->reason);
		return -ETIMEDOUT;
	}
	if ((rc = fwd_delta_unpack(packed, len, &d, err)))
		return rc;
	/* The same checks as regiond's: both sides hold the same table. */
	rc = fwd_delta_apply(cur->table, &d, &t, &eff, &st, err);
	uint64_t t_valid = rte_get_tsc_cycles(), t_fib;
	fwd_delta_clear(&d);
	if (rc)
		goto out;
	if (t == NULL) {
		rc = fwd_err_fail(
			err, FWD_R_BAD_REQUEST, NULL, 0, "changes",
			"the delta changes nothing; a delta carries only effective changes");
		goto out;
	}
	standby_join(ctx);
	if (ctx->standby_ok) {
		f = ctx->standby;
		memset(&ctx->standby, 0, sizeof(ctx->standby));
		ctx->standby_ok = 0;
		if ((rc = dp_fibs_apply(&f, t, &eff)) != 0) {
			/* Out of memory for groups: FIBs built whole, anew. */
			DP_LOG(NOTICE, "standby FIBs refused the delta (%s); building them whole",
			       strerror(-rc));
			dp_fibs_free(&f);
		}
	}
	if (f.fib4 == NULL) {
		path = "built whole";
		if ((rc = dp_fibs_build(t, &f, err)) != 0)
			goto out;
	}
	t_fib = rte_get_tsc_cycles();
	if (expired(deadline_ns, err)) {
		DP_LOG(WARNING, "delta from %s refused: %s", name, err->reason);
		rc = -ETIMEDOUT;
		goto refused;
	}
	if (id == 0)
		id = ctx->next_gen_id;
	if (journal_add(ctx, packed, len, id, hash) != 0) {
		rc = fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		goto refused;
	}
	/* Saved before it is published, as a whole push (save_refused), and
	 * before dp_gen_derive, which takes the running generation's parts
	 * over: past it there is no way back. */
	memcpy(error_before, ctx->save_error, sizeof(error_before));
	if (save_as && ctx->saved_path[0]) {
		if (ctx->saved_hash == cur->hash && ctx->saved_doc_hash == ctx->doc_gen_hash &&
		    ctx->saved_controller == save_as->controller &&
		    ctx->saved_deltas + 1 == ctx->journal.n)
			journal_len = dp_saved_journal_len(ctx->saved_path);
		saved = save_chain(ctx, id, save_as, ctx->doc_gen_hash, ctx->doc_gen_id, ctx->doc,
				   ctx->doc_len, ctx->journal.n);
	}
	uint64_t t_saved = rte_get_tsc_cycles();

	if (expired(deadline_ns, err)) {
		DP_LOG(WARNING, "delta from %s refused: %s", name, err->reason);
		rc = -ETIMEDOUT;
		goto refused_journaled;
	}
	if ((g = dp_gen_derive(cur, t, &f, id, hash)) == NULL) {
		rc = fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		goto refused_journaled;
	}
	t = NULL; /* the generation's now */
	if (saved == 0)
		ctx->saved_hash = hash;
	if (g->id >= ctx->next_gen_id && g->id < UINT64_MAX)
		ctx->next_gen_id = g->id + 1;
	g->seq = ++ctx->gen_seq;
	dp_ctx_publish(ctx, g);
	uint64_t t_pub = rte_get_tsc_cycles();

	/* The journal is folded, when due, by the control loop once this is
	 * answered (dp_ctx_fold_journal). */
	/* The retired generation's FIBs: the same delta, then the standby.
	 * They mirrored the base; applied, they mirror @g. In the background:
	 * the answer does not wait for it, the next delta does. */
	standby_start(ctx, &ctx->recycled, &eff);
	double ms = 1000.0 / (double)rte_get_tsc_hz();

	DP_LOG(INFO,
	       "generation %llu (%016llx) from %s: delta +%u -%u IPv4, +%u -%u IPv6 (FIBs %s), "
	       "%u IPv4 + %u IPv6 prefixes, published in %.2f ms (validate %.2f, FIBs %.2f, "
	       "save %.2f, swap %.2f)",
	       (unsigned long long)g->id, (unsigned long long)hash, name, st.added4, st.removed4,
	       st.added6, st.removed6, path, g->table->nprefix4, g->table->nprefix6,
	       (double)(t_pub - t0) * ms, (double)(t_valid - t0) * ms,
	       (double)(t_fib - t_valid) * ms, (double)(t_saved - t_fib) * ms,
	       (double)(t_pub - t_saved) * ms);
	rc = 0;
	goto out;
refused_journaled:
	journal_pop(ctx);
	save_refused(ctx, saved, id, error_before, journal_len, cur->hash);
refused:
	/* @f mirrors no generation: the running one keeps its FIBs, and the
	 * standby is built again. */
	dp_fibs_free(&f);
	standby_start(ctx, NULL, NULL);
out:
	fwd_table_free(t);
	fwd_delta_clear(&eff);
	return rc;
}

void dp_ctx_save_pushed(struct dp_ctx *ctx, const struct dp_pusher *pushed_by)
{
	const struct dp_gen *g = ctx->pub.gen;

	if (ctx->saved_path[0] == '\0' || g == NULL || ctx->doc == NULL ||
	    (ctx->saved_hash == g->hash && ctx->saved_controller == pushed_by->controller))
		return;
	if (save_chain(ctx, g->id, pushed_by, ctx->doc_gen_hash, ctx->doc_gen_id, ctx->doc,
		       ctx->doc_len, ctx->journal.n) == 0)
		ctx->saved_hash = g->hash;
}

void dp_ctx_save_retry(struct dp_ctx *ctx)
{
	char why[sizeof(ctx->save_error)];
	int rc;

	if (ctx->managed_by[0]) {
		const struct dp_pusher by = {ctx->managed_by, ctx->controller};

		dp_ctx_save_pushed(ctx, &by);
		return;
	}
	if (ctx->saved_refused_id == 0)
		return;
	/* What runs came from --table and is not saved: the file of the
	 * refused push goes, and a restart starts on --table too. */
	if ((rc = dp_saved_remove(ctx->saved_path)) >= 0) {
		if (ctx->save_error[0])
			DP_LOG(NOTICE, "%s removed: a restart starts on --table again",
			       ctx->saved_path);
		ctx->save_error[0] = '\0';
		ctx->saved_refused_id = 0;
		return;
	}
	snprintf(why, sizeof(why),
		 "cannot remove %.120s, which may hold generation %llu, a push that was refused: "
		 "%s; a restart of regionfwd would start on it",
		 ctx->saved_path, (unsigned long long)ctx->saved_refused_id, strerror(-rc));
	save_failed(ctx, why, " (retrying)");
}

int dp_ctx_apply_file(struct dp_ctx *ctx, const char *path, int written, struct fwd_err *err)
{
	char *buf;
	size_t len;
	int rc = fwd_read_file(path, &buf, &len, err);

	if (rc)
		return rc;
	/* Files the table names (name sets) go into the document itself, so
	 * the generation's hash covers them and the saved table restarts
	 * without them (fwd_embed.h). */
	{
		const char *slash = strrchr(path, '/');
		char dir[PATH_MAX], *emb;
		size_t elen;

		snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path + 1) : 0, path);
		if ((rc = fwd_embed_names(buf, len, path, dir, NULL, &emb, &elen, err))) {
			free(buf);
			return rc;
		}
		if (emb && written && (rc = fwd_table_written_tags(buf, len, path, err))) {
			free(emb);
			free(buf);
			return rc;
		}
		if (emb) {
			free(buf);
			buf = emb;
			len = elen;
		}
	}
	if (written) {
		/* A text that does not load is left to dp_ctx_apply() to refuse
		 * in its words. */
		struct fwd_err ignore = {0};
		struct fwd_table *t = fwd_table_parse(buf, len, path, -1, &ignore);

		rc = t ? fwd_table_check_written(t, err) : 0;
		fwd_table_free(t);
		if (rc) {
			free(buf);
			return rc;
		}
	}
	rc = dp_ctx_apply(ctx, buf, len, path, 0, 0, NULL, 0, NULL, err);
	free(buf);
	return rc;
}

/* The devices' own counters, as the PMDs count them (rx_nombuf: pool
 * empty, imissed: RX ring full, oerrors), and their links. */
static int port_stats(const struct dp_ctx *ctx, struct fwd_report *r)
{
	for (uint16_t i = 0; i < ctx->node.nports && i < ctx->ports.nports; i++) {
		struct fwd_report_row *row;
		struct dp_port_health h;

		dp_port_health(&ctx->ports, i, &h);
		if (!h.has_stats)
			continue;
		if ((row = fwd_report_row(r, FWD_RS_PORTS, ctx->node.ports[i].name)) == NULL)
			return -ENOMEM;
		fwd_report_set_attr(row, FWD_ATTR_PORT_LINK, fwd_port_link_name(h.link));
		row->v[FWD_RV_IPACKETS] = h.stats.ipackets;
		row->v[FWD_RV_OPACKETS] = h.stats.opackets;
		row->v[FWD_RV_IMISSED] = h.stats.imissed;
		row->v[FWD_RV_IERRORS] = h.stats.ierrors;
		row->v[FWD_RV_OERRORS] = h.stats.oerrors;
		row->v[FWD_RV_RX_NOMBUF] = h.stats.rx_nombuf;
		row->v[FWD_RV_SPEED_MBPS] = h.speed_mbps;
	}
	return 0;
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

/* What generation @g is and holds (the control thread owns the published
 * generation; other threads call this under ctx->lock). */
static void gen_info(const struct dp_gen *g, struct fwd_report_gen *out)
{
	const struct fwd_table *t = g->table;

	memset(out, 0, sizeof(*out));
	out->id = g->id;
	out->hash = g->hash;
	out->created_unix_ns = (int64_t)g->created_unix_ns;
	snprintf(out->source, sizeof(out->source), "%s", t->source);
	out->regions = t->nregions - 1u;
	out->services = t->nservices - 1u;
	out->links = t->nlinks;
	out->policies = t->npolicies - 1u;
	out->prefixes_v4 = t->nprefix4;
	out->prefixes_v6 = t->nprefix6;
	if (g->content) {
		out->has_content = 1;
		out->content_rules = t->ncontent;
		out->database_bytes = g->content->db_bytes;
		out->scratch_bytes = g->content->scratch_bytes;
		out->compiled_here = g->content->compiled_here;
	}
}

void dp_ctx_totals(struct dp_ctx *ctx, struct dp_ctx_totals *t)
{
	struct dp_counters sum;

	memset(t, 0, sizeof(*t));
	sum_workers(ctx, &sum);
	t->rx = sum.rx;
	t->rx_bytes = sum.rx_bytes;
	t->tx = sum.tx;
	t->tx_bytes = sum.tx_bytes;
	for (int i = 0; i < FWD_DROP_MAX; i++)
		t->dropped += sum.drop[i];
	pthread_mutex_lock(&ctx->lock);
	gen_info(ctx->pub.gen, &t->gen);
	pthread_mutex_unlock(&ctx->lock);
}

/* The running generation's names for the rows its table holds: a link's
 * port and state, a policy's action and target, a content rule's field,
 * action and target. Rows of names no longer in the table keep none. */
static int describe_rows(struct fwd_report *r, const struct fwd_table *t)
{
	struct fwd_report_row *row;
	char key[80];

	for (uint16_t i = 0; i < t->nlinks; i++) {
		if ((row = fwd_report_row(r, FWD_RS_LINKS, t->links[i].name)) == NULL)
			return -ENOMEM;
		fwd_report_set_attr(row, FWD_ATTR_LINK_PORT, t->links[i].port);
		fwd_report_set_attr(row, FWD_ATTR_LINK_STATE, fwd_link_state_name(&t->links[i]));
	}
	for (uint32_t i = 0; i < t->npolicies; i++) {
		const struct fwd_policy *p = &t->policies[i];

		fwd_table_policy_key(t, i, key, sizeof(key));
		if ((row = fwd_report_row(r, FWD_RS_POLICIES, key)) == NULL)
			return -ENOMEM;
		fwd_report_set_attr(row, 0,
				    p->action == FWD_ACT_DROP
					    ? FWD_WORD_NAME(POLICY_ACTION, DROP)
					    : FWD_WORD_NAME(POLICY_ACTION, STEER));
		fwd_report_set_attr(row, 1, fwd_table_policy_target(t, p));
	}
	for (uint32_t i = 0; i < t->ncontent; i++) {
		const struct fwd_content_rule *cr = &t->content[i];
		int to = cr->action == FWD_CA_MIRROR || cr->action == FWD_CA_STEER;

		if ((row = fwd_report_row(r, FWD_RS_CONTENT, cr->name)) == NULL)
			return -ENOMEM;
		fwd_report_set_attr(row, 0, fwd_content_field_name(cr->field));
		fwd_report_set_attr(row, 1, fwd_content_action_name(cr->action));
		fwd_report_set_attr(row, 2,
				    !to				       ? NULL
				    : cr->target_kind == FWD_ACT_GROUP ? t->groups[cr->target].name
								       : t->links[cr->target].name);
	}
	return 0;
}

/* The running generation's top names per name-set rule (not folded over
 * generations: a sketch of what this set matches now). */
static int top_names(struct fwd_report *r, const struct dp_gen *g)
{
	struct fwd_report_top top[DP_CONTENT_TOP_K];

	for (uint32_t i = 0; g->content && i < g->table->ncontent; i++) {
		struct fwd_report_row *row;
		uint32_t n = dp_content_top_names(g->content, i, top, DP_CONTENT_TOP_K);

		if (n == 0)
			continue;
		if ((row = fwd_report_row(r, FWD_RS_CONTENT, g->table->content[i].name)) == NULL ||
		    fwd_report_set_top(row, top, n))
			return -ENOMEM;
	}
	return 0;
}

struct fwd_report *dp_ctx_report(struct dp_ctx *ctx)
{
	struct dp_counters sum;
	struct fwd_report *r;
	const struct dp_gen *g;
	const struct fwd_table *t;
	int rc;

	sum_workers(ctx, &sum);
	/* when the counters were read, as near to it as can be */
	const uint64_t started = __atomic_load_n(&ctx->started_ns, __ATOMIC_RELAXED),
		       now_ns = fwd_mono_ns(), uptime_ns = now_ns > started ? now_ns - started : 0;

	pthread_mutex_lock(&ctx->lock);
	/* The totals of retired generations, plus the one in its grace period
	 * and the running one: folded into a copy, the totals stay as they are. */
	r = fwd_report_clone(ctx->totals);
	g = ctx->pub.gen;
	t = g->table;
	/* A retiring generation that handed its counters over to @g (a
	 * delta) is @g's counters: added once. */
	rc = r == NULL ||
	     (ctx->retiring && !ctx->retiring->handed_over && dp_fold_gen(r, ctx->retiring)) ||
	     dp_fold_gen(r, g) || describe_rows(r, t) || top_names(r, g);
	if (!rc)
		gen_info(g, &r->gen);
	pthread_mutex_unlock(&ctx->lock);
	if (rc || port_stats(ctx, r)) {
		fwd_report_free(r);
		return NULL;
	}
	r->workers = ctx->nworkers;
	r->instance = ctx->instance;
	r->uptime_ns = ctx->instance ? uptime_ns : 0;
	r->packets.rx = sum.rx;
	r->packets.rx_bytes = sum.rx_bytes;
	r->packets.tx = sum.tx;
	r->packets.tx_bytes = sum.tx_bytes;
	memcpy(r->drops, sum.drop, sizeof(r->drops));
	memcpy(r->events, sum.evt, sizeof(r->events));
	for (int i = 0; i < FWD_DROP_MAX; i++)
		r->packets.dropped += sum.drop[i];
	if (ctx->pool) {
		r->has_mbufs = 1;
		r->mbuf_pool = ctx->pool->size;
		r->mbuf_in_use = rte_mempool_in_use_count(ctx->pool);
	}
	return r;
}

static void print_rows(FILE *out, const char *title, const struct fwd_report *r,
		       enum fwd_report_sec s)
{
	fprintf(out, "\n%-24s %14s %16s\n", title, "packets", "bytes");
	for (uint32_t i = 0; i < r->sec[s].n; i++)
		fprintf(out, "  %-22s %14" PRIu64 " %16" PRIu64 "\n", r->sec[s].rows[i].name,
			r->sec[s].rows[i].v[FWD_RV_PACKETS], r->sec[s].rows[i].v[FWD_RV_BYTES]);
}

/* An attribute for a table: its value, or @absent when the row has none. */
static const char *attr(const struct fwd_report_row *row, int a, const char *absent)
{
	return row->attr_state[a] == FWD_RA_SET ? row->attr[a] : absent;
}

void dp_report_print(const struct fwd_report *r, FILE *out)
{
	const struct fwd_report_section *sec;

	fprintf(out, "regionfwd: generation %" PRIu64 " from %s, %u workers\n", r->gen.id,
		r->gen.source, r->workers);
	fprintf(out,
		"  rx %" PRIu64 "  tx %" PRIu64 "  dropped %" PRIu64 "  (rx = tx + dropped: %s)\n",
		r->packets.rx, r->packets.tx, r->packets.dropped,
		r->packets.rx == r->packets.tx + r->packets.dropped ? "holds" : "BROKEN");

	fprintf(out, "\n%-24s %-12s %-6s %14s %16s\n", "link", "port", "state", "packets", "bytes");
	sec = &r->sec[FWD_RS_LINKS];
	for (uint32_t i = 0; i < sec->n; i++)
		fprintf(out, "  %-22s %-12s %-6s %14" PRIu64 " %16" PRIu64 "\n", sec->rows[i].name,
			attr(&sec->rows[i], 0, "-"), attr(&sec->rows[i], 1, "gone"),
			sec->rows[i].v[FWD_RV_PACKETS], sec->rows[i].v[FWD_RV_BYTES]);
	fprintf(out, "\n%-24s %14s %14s %10s %10s %10s\n", "port", "ipackets", "opackets",
		"imissed", "rx_nombuf", "oerrors");
	sec = &r->sec[FWD_RS_PORTS];
	for (uint32_t i = 0; i < sec->n; i++) {
		const uint64_t *v = sec->rows[i].v;

		fprintf(out,
			"  %-22s %14" PRIu64 " %14" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64
			"\n",
			sec->rows[i].name, v[FWD_RV_IPACKETS], v[FWD_RV_OPACKETS],
			v[FWD_RV_IMISSED], v[FWD_RV_RX_NOMBUF], v[FWD_RV_OERRORS]);
	}
	print_rows(out, "region", r, FWD_RS_REGIONS);
	print_rows(out, "service", r, FWD_RS_SERVICES);

	fprintf(out, "\n%-24s %-8s %-20s %14s\n", "policy (region/service)", "action", "target",
		"packets");
	sec = &r->sec[FWD_RS_POLICIES];
	for (uint32_t i = 0; i < sec->n; i++)
		fprintf(out, "  %-22s %-8s %-20s %14" PRIu64 "\n", sec->rows[i].name,
			attr(&sec->rows[i], 0, "-"), attr(&sec->rows[i], 1, "(gone)"),
			sec->rows[i].v[FWD_RV_PACKETS]);
	sec = &r->sec[FWD_RS_CONTENT];
	if (sec->n) {
		fprintf(out, "\n%-24s %-10s %-7s %-14s %12s %12s\n", "content rule", "field",
			"action", "to", "matches", "flow_pkts");
		for (uint32_t i = 0; i < sec->n; i++)
			fprintf(out, "  %-22s %-10s %-7s %-14s %12" PRIu64 " %12" PRIu64 "\n",
				sec->rows[i].name, attr(&sec->rows[i], 0, "-"),
				attr(&sec->rows[i], 1, "(gone)"), attr(&sec->rows[i], 2, "-"),
				sec->rows[i].v[FWD_RV_MATCHES],
				sec->rows[i].v[FWD_RV_FLOW_PACKETS]);
	}
	fprintf(out, "\n%-24s %14s\n", "drop reason", "packets");
	for (int i = 0; i < FWD_DROP_MAX; i++)
		if (r->drops[i])
			fprintf(out, "  %-22s %14" PRIu64 "\n", fwd_drop_names[i], r->drops[i]);
	fprintf(out, "\n%-24s %14s\n", "event", "count");
	for (int i = 0; i < FWD_EVT_MAX; i++)
		if (r->events[i])
			fprintf(out, "  %-22s %14" PRIu64 "\n", fwd_evt_names[i], r->events[i]);
	fflush(out);
}

/* ---- telemetry ------------------------------------------------------------ */

static struct dp_ctx *tel_ctx; /* the telemetry API has no user argument */
/* Held by every telemetry command while it reads tel_ctx, and by
 * dp_telemetry_stop() to take it away: DPDK 22.11 cannot unregister a
 * command, and its thread runs until rte_eal_cleanup(), after the context
 * is freed. */
static pthread_mutex_t tel_lock = PTHREAD_MUTEX_INITIALIZER;

/* DPDK 22.11 telemetry refuses dict keys outside [A-Za-z0-9_/] (silently,
 * for the caller of the command); table names may also hold '-' and '.',
 * which become '_' here. The JSON model (--stats-json, the API) keeps the
 * exact names. Returns whether the name was changed. */
static int tel_key(const char *name, char *buf, size_t len)
{
	int changed = 0;
	size_t i;

	for (i = 0; name[i] && i + 1 < len; i++) {
		buf[i] = isalnum((unsigned char)name[i]) || name[i] == '/' ? name[i] : '_';
		changed |= buf[i] != name[i];
	}
	buf[i] = '\0';
	return changed;
}

/* The telemetry keys of a section's first @n rows, all different: 'a-b',
 * 'a.b' and 'a_b' all map to 'a_b', and a dict with one key three times
 * reads as one entry in every JSON client (dpdk-telemetry.py too), the
 * other counts lost without a word. A name that is a key as it is keeps
 * it; a changed one that meets a key already taken gets the first free
 * '_2', '_3', ... in the report's order. */
typedef char tel_key_t[RTE_TEL_MAX_STRING_LEN];

static int tel_key_taken(tel_key_t *keys, const int *set, uint32_t n, const char *k)
{
	for (uint32_t i = 0; i < n; i++)
		if (set[i] && strcmp(keys[i], k) == 0)
			return 1;
	return 0;
}

static void tel_keys(const struct fwd_report_section *sec, uint32_t n, tel_key_t *keys)
{
	int changed[RTE_TEL_MAX_DICT_ENTRIES], set[RTE_TEL_MAX_DICT_ENTRIES];
	char base[RTE_TEL_MAX_STRING_LEN];

	for (uint32_t i = 0; i < n; i++) {
		changed[i] = tel_key(sec->rows[i].name, keys[i], sizeof(keys[i]));
		set[i] = !changed[i];
	}
	for (uint32_t i = 0; i < n; i++) {
		if (!changed[i])
			continue;
		snprintf(base, sizeof(base), "%s", keys[i]);
		for (unsigned k = 2; tel_key_taken(keys, set, n, keys[i]); k++)
			snprintf(keys[i], sizeof(keys[i]), "%.100s_%u", base, k);
		set[i] = 1;
	}
}

/* One telemetry dict from the typed report: a named section by its first
 * counter (packets, or matches), or a fixed group (telemetry dicts nest one
 * level at most). */
enum tel_group { TEL_PACKETS = FWD_RS_MAX, TEL_DROPS, TEL_EVENTS, TEL_GENERATION };

static int tel_section(int group, struct rte_tel_data *d)
{
	struct fwd_report *r;

	pthread_mutex_lock(&tel_lock);
	r = tel_ctx ? dp_ctx_report(tel_ctx) : NULL;
	pthread_mutex_unlock(&tel_lock);

	if (r == NULL)
		return -ENOMEM;
	rte_tel_data_start_dict(d);
	if (group < FWD_RS_MAX) {
		const struct fwd_report_section *sec = &r->sec[group];
		/* A dict holds RTE_TEL_MAX_DICT_ENTRIES: the rest is left out. */
		uint32_t n = RTE_MIN(sec->n, (uint32_t)RTE_TEL_MAX_DICT_ENTRIES);
		tel_key_t *keys = calloc(n ? n : 1, sizeof(*keys));

		if (keys == NULL) {
			fwd_report_free(r);
			return -ENOMEM;
		}
		tel_keys(sec, n, keys);
		for (uint32_t i = 0; i < n; i++)
			rte_tel_data_add_dict_u64(d, keys[i], sec->rows[i].v[0]);
		free(keys);
	} else if (group == TEL_DROPS) {
		for (int i = 0; i < FWD_DROP_MAX; i++)
			rte_tel_data_add_dict_u64(d, fwd_drop_names[i], r->drops[i]);
	} else if (group == TEL_EVENTS) {
		for (int i = 0; i < FWD_EVT_MAX; i++)
			rte_tel_data_add_dict_u64(d, fwd_evt_names[i], r->events[i]);
	} else {
		/* packets and generation: the report's own JSON objects, flattened
		 * (numbers and strings; the nested content summary is left out), so
		 * their keys are spelled only by the report's writer. */
		json_t *j = fwd_report_json(r), *v;
		const char *key;

		json_object_foreach(
			json_object_get(j, group == TEL_PACKETS ? "packets" : "generation"), key,
			v) {
			if (json_is_integer(v))
				rte_tel_data_add_dict_u64(d, key, (uint64_t)json_integer_value(v));
			else if (json_is_string(v))
				rte_tel_data_add_dict_string(d, key, json_string_value(v));
		}
		json_decref(j);
	}
	fwd_report_free(r);
	return 0;
}

#define TEL_CMD(fn, section)                                                                       \
	static int fn(const char *cmd __rte_unused, const char *params __rte_unused,               \
		      struct rte_tel_data *d)                                                      \
	{                                                                                          \
		return tel_section(section, d);                                                    \
	}
TEL_CMD(tel_packets, TEL_PACKETS)
TEL_CMD(tel_drops, TEL_DROPS)
TEL_CMD(tel_events, TEL_EVENTS)
TEL_CMD(tel_links, FWD_RS_LINKS)
TEL_CMD(tel_regions, FWD_RS_REGIONS)
TEL_CMD(tel_services, FWD_RS_SERVICES)
TEL_CMD(tel_policies, FWD_RS_POLICIES)
TEL_CMD(tel_generation, TEL_GENERATION)
TEL_CMD(tel_content, FWD_RS_CONTENT)
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
		{"/regionfwd/events", tel_events,
		 "fragment, mirror, generation, content and capture events"},
		{"/regionfwd/links", tel_links, "packets transmitted per link"},
		{"/regionfwd/regions", tel_regions, "packets per source region"},
		{"/regionfwd/services", tel_services, "packets per service"},
		{"/regionfwd/policies", tel_policies, "packets per policy (region/service)"},
		{"/regionfwd/generation", tel_generation, "the running table generation"},
		{"/regionfwd/content_rules", tel_content, "packets matched per content rule"},
	};
	int rc;

	pthread_mutex_lock(&tel_lock);
	tel_ctx = ctx;
	pthread_mutex_unlock(&tel_lock);
	for (size_t i = 0; i < RTE_DIM(cmds); i++) {
		rc = rte_telemetry_register_cmd(cmds[i].cmd, cmds[i].fn, cmds[i].help);
		if (rc)
			return rc;
	}
	return 0;
}

void dp_telemetry_stop(void)
{
	pthread_mutex_lock(&tel_lock);
	tel_ctx = NULL;
	pthread_mutex_unlock(&tel_lock);
}
