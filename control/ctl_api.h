/*
 * ctl_api.h - regiond's HTTP+JSON API (docs/api.md), served by libmicrohttpd
 * on a unix socket, and on a TCP address only when configured, where every
 * request needs a credential: "Authorization: Bearer TOKEN" or, with a
 * client CA, a client certificate it verifies (docs/operations.md#security).
 * With a certificate and key, TCP is served over TLS only.
 *
 * Every handler is a thin adapter: it parses the request, takes the state
 * lock and calls the ctl_state / ctl_model / dataplane functions that
 * regionctl reaches through the same API. Errors are
 * {"error": {"code", "path", "reason", "file", "line"}} with a 4xx/5xx status;
 * a refused request changes nothing.
 */
#ifndef CTL_API_H
#define CTL_API_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>

#include "ctl_state.h"

/* regiond's version, in GET /v1/status and in its fleet report. */
#define CTL_REGIOND_VERSION "0.1.0"

/* A bearer token for TCP: its secret, the name it is recorded under ("":
 * none given), and whether it may write. */
struct ctl_token {
	const char *name, *secret;
	int write;
};

struct ctl_api_conf {
	const char *unix_path; /* required */
	const char *tcp_listen; /* "HOST:PORT" or NULL */
	/* Required with tcp_listen unless tls_client_ca; kept by the caller. */
	const struct ctl_token *tokens;
	unsigned ntokens;
	size_t max_body;
	/* The bytes all requests in flight may buffer together (>= max_body):
	 * each connection may hold max_body, and 64 of them once could make
	 * regiond hold 16 GiB. A body that would pass it is refused. */
	size_t max_buffered;
	/* Bytes a second a request body must average once CTL_API_HEAD_MS
	 * have passed since its head (0: the default, 256 KiB/s): a client
	 * trickling its body holds its connection no longer than one that
	 * trickles its head. */
	uint64_t min_body_rate;
	/* TLS on tcp_listen, PEM text (checked with ctl_tls_check; kept by the
	 * caller while the API runs). With tls_cert and tls_key, TCP serves
	 * HTTPS only. With tls_client_ca every TCP request needs a client
	 * certificate that verifies against it: such a certificate reads, and
	 * writes when its subject is in tls_writers (NULL-terminated, may be
	 * NULL); a token still grants what it grants, as a second factor. */
	const char *tls_cert, *tls_key, *tls_client_ca;
	const char *const *tls_writers;
	/* Fleet mode: /v1/fleet/rollouts and /v1/fleet/nodes ask this
	 * facility's etcd, and show this driver's status (kept by the caller
	 * while the API runs); NULL in single-box mode (404 not_fleet). */
	const struct ctl_rdriver_conf *rollouts;
	struct ctl_rdriver *rollout_driver;
	/* Set by the caller's SIGTERM handler (NULL: none): once it is set,
	 * every new write is refused 503 stopping, as after ctl_api_stop()
	 * began, without waiting for the caller's loop to notice it. */
	const volatile sig_atomic_t *stop_flag;
};

struct ctl_api;
struct ctl_rdriver;
struct ctl_rdriver_conf;

/**
 * Whether ctl_api_start() could listen where @conf says, asked before
 * anything is written: the API socket's path free (no file but a stale
 * socket there, no process listening on it) and --listen's address one
 * this process can bind. A start that failed there once seeded an empty
 * state directory first (a probe), and the next start, finding that seed,
 * took it for another regiond's table. 0, or -errno with @e.
 */
int ctl_api_preflight(const struct ctl_api_conf *conf, struct fwd_err *e);

struct ctl_api *ctl_api_start(const struct ctl_api_conf *conf, struct ctl_state *st,
			      pthread_mutex_t *lock, int64_t started);
void ctl_api_stop(struct ctl_api *api);

/** The API socket still on its path, or a fresh one bound in its place
 *  when it was taken away (removed, renamed) with the same mode, only where
 *  nothing else is (fwd_unix_keep_check); if it cannot be, an alarm
 *  (CTL_ALARM_API_SOCKET) until it is. Called by regiond's main loop every
 *  second, without the state's write lock (it takes it to set the alarm).
 *  It never waits for a request: the daemon of a socket taken away is
 *  stopped once it holds none (at most CTL_API_RETIRED are kept). */
#define CTL_API_RETIRED 8
void ctl_api_keep_socket(struct ctl_api *api);

/** Rebuild the read view GET /v1/status answers from (generation, confirm,
 *  alarm, regionfwd's last report). Call with the state lock held; the API
 *  calls it after each request it serves under that lock, regiond's main
 *  loop after each tick. */
void ctl_api_publish(struct ctl_api *api);

/** An API that serves no socket: requests come through ctl_api_dispatch() (fuzzer, tests). */
struct ctl_api *ctl_api_new(const struct ctl_api_conf *conf, struct ctl_state *st,
			    pthread_mutex_t *lock, int64_t started);

/**
 * Handle one request as the HTTP layer does, over the unix socket (no token).
 * @param out  the response body (malloc'd, free it)
 * @return the HTTP status
 */
int ctl_api_dispatch(struct ctl_api *api, const char *method, const char *url, const char *body,
		     size_t len, char **out);

/** The box's health from a status model (GET /v1/status's "dataplane",
 *  "alarm", "generation", "filters", "fleet.validate_only"):
 *  {"state", "exit", "reason"}, exit 0 healthy,
 *  1 degraded, 2 unreachable (docs/api.md). Also the fleet report's
 *  health code. NULL on ENOMEM. */
json_t *ctl_api_health(const json_t *status);

#endif /* CTL_API_H */
