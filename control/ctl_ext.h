/*
 * ctl_ext.h - the one shape of what regiond plugs into its state and API:
 * today the content-rule compiler (ctl_content.c) and the XDP filters
 * (ctl_filter.c), tomorrow a routing feed. Each is a struct ctl_ext of
 * optional operations on its own argument; ctl_state calls them at fixed
 * points of a change, in the order they were added, and the API serves
 * GET /v1/NAME and POST /v1/NAME/detach from the one named so, a summary
 * in GET /v1/status and its series in GET /metrics. Every
 * operation runs with the state lock held.
 */
#ifndef CTL_EXT_H
#define CTL_EXT_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "fwd_err.h"
#include "fwd_table.h"

struct fwd_hs_dbs;

/* A packet an extension dropped, copied for a capture (ctl_capture.h). */
struct ctl_ext_pkt {
	uint64_t ts_ns; /* Unix time */
	const char *ifname; /* where it arrived */
	uint32_t len, caplen; /* the frame's length, bytes of it in data */
	const uint8_t *data;
	const char *comment; /* its verdict: "xdp drop rule=NAME ..." */
};

struct ctl_ext {
	const char *name; /* "content", "filters": also the API path */
	void *arg;
	/* Before anything changes: refuse @t with a reason, or 0. */
	int (*validate)(void *arg, const struct fwd_table *t, struct fwd_err *e);
	/* Without the state lock, before validate: do validate's slow part
	 * (compiling content rules) so that validate, under the lock, finds
	 * it done. May take @state_lock (NULL: none) for short spells.
	 * @writer: for a write (a separate queue from reads, so that reads
	 * cannot hold a write back). @t NULL: the request is over, drop
	 * what this thread prepared. */
	void (*prepare)(void *arg, const struct fwd_table *t, pthread_mutex_t *state_lock,
			int writer);
	/* What to ship with the push of @t (compiled content databases), or NULL. */
	const struct fwd_hs_dbs *(*content_dbs)(void *arg, const struct fwd_table *t);
	/* Once regionfwd runs generation @gen of @t; a refusal puts regionfwd
	 * back on the previous generation and refuses the change. */
	int (*applied)(void *arg, const struct fwd_table *t, uint64_t gen, struct fwd_err *e);
	/* The main loop's tick: converge on generation @gen of @t (e.g. after a
	 * failed apply or a restart). */
	void (*sync)(void *arg, const struct fwd_table *t, uint64_t gen);
	/* GET /v1/NAME and POST /v1/NAME/detach. With @t NULL, status is a
	 * summary for GET /v1/status (no per-rule detail). */
	json_t *(*status)(void *arg, const struct fwd_table *t);
	int (*detach)(void *arg);
	/* Its own families for GET /metrics (ctl_metrics.h's helpers), written
	 * to @out; rendered whether regionfwd answers or not. */
	void (*metrics)(void *arg, const struct fwd_table *t, FILE *out);
	/* Drop capture (POST /v1/capture): start copying what it drops, the
	 * rules of @t naming why; NULL with @e when it cannot. capture_poll
	 * and capture_close run without the state lock, on the capture's
	 * thread only: poll hands each copy made since its last call to @fn
	 * (returns how many, or -errno); close stops copying, hands over what
	 * remains, says how many were copied and lost, and frees the capture. */
	void *(*capture_open)(void *arg, const struct fwd_table *t, struct fwd_err *e);
	int (*capture_poll)(void *cap, void (*fn)(void *fa, const struct ctl_ext_pkt *p), void *fa);
	void (*capture_close)(void *cap, void (*fn)(void *fa, const struct ctl_ext_pkt *p),
			      void *fa, uint64_t *captured, uint64_t *lost);
};

#define CTL_MAX_EXT 6

#endif /* CTL_EXT_H */
