/*
 * dp_ctx.h - the process: node config, ports, pool, workers, the published
 * generation, and the control-thread side of generations and counters.
 *
 * Ownership: the control thread (main lcore) owns every field except what
 * workers write in their own struct dp_lcore. Workers read ctx->pub (the
 * generation with acquire, the quit flag, the RCU variable) through their
 * lcore's pointer; nothing else. The telemetry thread reads counters under
 * ctx->lock, which the control thread also takes while it retires a
 * generation; workers never take it.
 */
#ifndef DP_CTX_H
#define DP_CTX_H

#include <pthread.h>
#include <stdio.h>

#include <jansson.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include "dp_gen.h"
#include "dp_node.h"
#include "dp_port.h"
#include "dp_worker.h"
#include "fwd_report.h"

/* Who pushes a table over the control socket: its name (logs, the
 * generation's source, managed_by) and its controller's identity (0: not
 * said). Saved with the table. */
struct dp_pusher {
	const char *name;
	uint64_t controller;
};

struct dp_ctx {
	struct dp_node node;
	struct dp_ports ports;
	struct rte_mempool *pool;
	struct dp_pub pub; /* what workers read: generation, quit, RCU (dp_worker.h) */
	struct dp_gen *retiring; /* unpublished, in its grace period; readers still count it */
	pthread_mutex_t lock; /* control thread vs telemetry readers */
	struct fwd_report *totals; /* counters of retired generations, by name (dp_fold.h) */
	/* This run's random id and CLOCK_MONOTONIC start, said with every
	 * report (fwd_report.instance, .uptime_ns) */
	uint64_t instance, started_ns;
	uint64_t links_polled_ns; /* dp_ctx_poll_links() */
	/* 1 when the published generation's groups could not follow the
	 * ports (out of memory): tried again at every poll */
	uint8_t groups_behind;
	/* Per port id: when its link came up again (CLOCK_MONOTONIC ns), while
	 * its links are still held out of their groups (group_port_up_ms);
	 * 0 otherwise. */
	uint64_t port_up_ns[RTE_MAX_ETHPORTS];
	uint16_t nworkers;
	struct dp_lcore *workers[DP_MAX_WORKERS];
	struct dp_cap *cap; /* packet capture (dp_cap.h); control thread only */
	uint64_t next_gen_id;
	uint64_t gen_seq; /* last dp_gen.seq given (control thread) */
	/* Who pushed the running table over the control socket ("" while it
	 * came from --table): then SIGHUP does not reload the file, which
	 * would silently replace what that controller manages. */
	char managed_by[128];
	/* And its controller's identity (PushRequest.controller: a regiond's
	 * state directory), 0 when it did not say or --table runs: two
	 * regionds on one regionfwd tell each other apart by it. */
	uint64_t controller;
	/* The running generation's document as it was given (OP_TABLE: a
	 * regiond with empty or older state adopts it); control thread only. */
	char *doc;
	size_t doc_len;
	/* node.pushed_table resolved, and the hash of the generation it
	 * holds (0: not written by this process): a push is saved once, not
	 * per no-op. */
	char saved_path[256];
	uint64_t saved_hash;
	/* The last save's failure, "" once one succeeds (status: save_error);
	 * control thread only, as the saves are. */
	char save_error[640];
	/* The saved file may hold this generation, a push saved and then
	 * refused, until it is written back to what runs (0: no). */
	uint64_t saved_refused_id;
	/* Incremental generations (dp_ctx_apply_delta). The standby FIBs
	 * mirror the published generation's prefixes when standby_ok: a delta
	 * is applied to them, they go live in the derived generation, and
	 * the retired generation's FIBs, once no worker sees them, get the
	 * same delta and become the standby. After a whole generation the
	 * standby is built anew by a thread of its own (builder), off the
	 * control thread, while the new generation already forwards. */
	struct dp_fibs standby;
	int standby_ok;
	struct dp_fibs recycled; /* the retired generation's FIBs, before their replay */
	pthread_t builder;
	int building; /* builder runs (joined by the control thread only) */
	const struct fwd_table *build_from; /* the builder's input: pub.gen's table */
	struct dp_fibs built; /* the builder's output (and input, with replay) */
	struct fwd_delta replay; /* the delta to replay onto built, or none: build whole */
	int built_rc;
	/* The deltas applied since the running chain's document (ctx->doc):
	 * OP_TABLE answers with both, and the saved journal holds them. */
	struct dp_journal {
		uint8_t **rec;
		size_t *len;
		uint64_t *id, *hash; /* the generation each made */
		uint32_t n, cap;
		size_t bytes;
	} journal;
	/* The running chain's document's generation (id and identity hash)
	 * and how many journal records the saved file holds (dp_saved.h). */
	uint64_t doc_gen_id, doc_gen_hash;
	uint64_t saved_doc_hash; /* the document the saved file holds (0: none written) */
	uint64_t saved_controller; /* the controller its header names */
	uint32_t saved_deltas; /* and how many journal records follow it */
	/* The journal is to hold only what is appended from record 0 on: cut
	 * to nothing first (a document was saved, or a directory stood at
	 * PATH.deltas, where an old journal may be put back). */
	int journal_fresh;
};

/**
 * Publish @g and retire the previous generation: one release store, then an
 * RCU grace period, then a running capture's copies are drained (they name
 * the old generation), the old generation's counters are folded into the
 * totals and it is freed. Called by the control thread only.
 */
void dp_ctx_publish(struct dp_ctx *ctx, struct dp_gen *g);

/**
 * Validate a table document held in memory, build a generation and publish
 * it (control thread only). A document whose content hash is the running
 * generation's is a no-op.
 * @param id          generation id to give it; 0 takes the next local id
 * @param content_db  compiled content rules shipped with the document, or
 *                    NULL to compile them here (tables read from a file)
 * @param deadline_ns  CLOCK_MONOTONIC ns after which the table must not be
 *                    published (-ETIMEDOUT, push_expired); 0: none
 * @param save_as     the pusher (name, controller), to save the table to saved_path as its
 *                    push before it is published (checked against the
 *                    deadline after the save: a hung save never publishes
 *                    a table the pusher gave up on); NULL: not saved
 * @return 0 published, 1 no-op, or -errno with @err filled (nothing changed;
 *         the saved file names the running generation again)
 */
int dp_ctx_apply(struct dp_ctx *ctx, const char *buf, size_t len, const char *name, uint64_t id,
		 uint64_t gen_hash, const struct fwd_hs_dbs *content_db, uint64_t deadline_ns,
		 const struct dp_pusher *save_as, struct fwd_err *err);

/**
 * Apply a delta (common/fwd_delta.h) to the published generation, which
 * must be @base_hash (else -ESTALE, delta_base_mismatch): validated with
 * fwd_delta_apply() like regiond did, applied to the standby FIBs and
 * published as generation @id with hash @hash, which must be
 * fwd_delta_hash(@base_hash, @packed) (0: computed here). Nothing but the FIBs and the table
 * is rebuilt; counters carry on. Its journal record is saved before it is
 * published when @save_as names the pusher, as dp_ctx_apply() saves a
 * document. Control thread only.
 * @return 0 published, or -errno with @err filled (nothing changed)
 */
int dp_ctx_apply_delta(struct dp_ctx *ctx, const uint8_t *packed, size_t len, const char *name,
		       uint64_t id, uint64_t base_hash, uint64_t hash, uint64_t deadline_ns,
		       const struct dp_pusher *save_as, struct fwd_err *err);

/** At exit: wait for the standby builder, free the standby FIBs and the
 *  journal of deltas. */
void dp_ctx_standby_stop(struct dp_ctx *ctx);

/**
 * Save the running generation, which @pushed_by pushed, to saved_path
 * (dp_saved.h) unless the file already holds it; a failure is logged (the
 * generation runs regardless: regiond holds the durable copy).
 */
void dp_ctx_save_pushed(struct dp_ctx *ctx, const struct dp_pusher *pushed_by);

/**
 * Try again what a failed save left undone (regionfwd.c's loop, while
 * save_error is set): the running generation's save when a controller
 * pushed it, else the removal of a file saved for a push then refused.
 */
void dp_ctx_save_retry(struct dp_ctx *ctx);

/**
 * Fold the deltas' journal into a document of the running generation once
 * it holds more than that document and node.delta_journal_bytes (a restart
 * then replays at most that much). Called by regionfwd.c's loop after each
 * control poll, not by the delta that crosses the bound: the fold takes
 * about a second per million prefixes, and that delta's answer must not
 * wait for it (past the pusher's deadline, a published delta would be
 * answered too late and taken back). Cheap when nothing is due.
 */
void dp_ctx_fold_journal(struct dp_ctx *ctx);

/**
 * Twice a second at most, each started port's link state into
 * ctx->pub.port_down, for the workers' drop reason (dp_worker.h), and on a
 * change the published generation's link groups follow it: a member whose
 * port is down takes no slot until it is up again (fwd_class_ports_out,
 * docs/operations.md "Link groups and ports"). Called by regionfwd.c's
 * loop; cheap when nothing is due.
 */
void dp_ctx_poll_links(struct dp_ctx *ctx);

/** dp_ctx_apply() on a file (its own hash as identity). @written: a file
 *  someone wrote (SIGHUP's): the checks of a table being written too
 *  (fwd_table_check_written), made on the very bytes applied (checked on
 *  one read and applied from another, a rename between the two ran a table
 *  the check refused: a probe). */
int dp_ctx_apply_file(struct dp_ctx *ctx, const char *path, int written, struct fwd_err *err);

/* What the status op and the report share: packet totals over every worker
 * and what the running generation holds. */
struct dp_ctx_totals {
	uint64_t rx, rx_bytes, tx, tx_bytes, dropped;
	struct fwd_report_gen gen;
};

/** Fill @t (sums every worker; consistent per worker). */
void dp_ctx_totals(struct dp_ctx *ctx, struct dp_ctx_totals *t);

/**
 * The counters and the running generation as one typed report (its JSON is
 * the model regiond's API serves: fwd_report_json). Sums every worker;
 * consistent per worker. @return the report (fwd_report_free), or NULL on
 * allocation failure
 */
struct fwd_report *dp_ctx_report(struct dp_ctx *ctx);

/** Print the report as aligned tables. */
void dp_report_print(const struct fwd_report *report, FILE *out);

/** Register the /regionfwd/... telemetry commands (one ctx per process). */
int dp_telemetry_register(struct dp_ctx *ctx);

/** From here on, telemetry commands answer nothing (before the context's
 *  workers and generations are freed; returns once none is reading it). */
void dp_telemetry_stop(void);

#endif /* DP_CTX_H */
