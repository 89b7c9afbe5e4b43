/*
 * ctl_etcd.h - a small synchronous etcd v3 client over etcd's documented
 * JSON gateway (/v3/kv/range|put|deleterange|txn, /v3/lease/grant|keepalive|revoke, /v3/watch,
 * /v3/auth/authenticate), with libcurl. Debian 12's etcd is 3.4; its
 * gateway serves /v3/ (tested against it by
 * tests/control/test_etcd_client.py).
 *
 * Invariants:
 * - Every call is bounded: a connection, a request and its reply take at
 *   most conf.timeout_ms per endpoint tried, and a reply larger than
 *   conf.max_reply bytes is an error (FWD_R_ETCD_ERROR), never an allocation
 *   that grows with what the peer sends. A hung endpoint, a closed socket or
 *   a reply that is not the gateway's JSON is an error, never a crash.
 * - Endpoints are tried in order from the one that last answered: a
 *   transport failure, a timeout or etcd's "unavailable" moves on to the next
 *   one, so losing one member of a quorate cluster is invisible to callers.
 * - Keys and values are bytes (the gateway's base64 is hidden here); keys
 *   given as C strings.
 * - With a user, the client authenticates on the first call and again when
 *   etcd says the token expired (once per call).
 * - A handle is used by one thread at a time (no locking inside); a watch
 *   is its own connection, created from and used alongside its client.
 *
 * Errors: 0 or a positive count on success, a negative errno with @err
 * filled otherwise: FWD_R_ETCD_UNAVAILABLE (no endpoint answered in time),
 * FWD_R_ETCD_ERROR (etcd refused: the message is etcd's; or garbage, or a
 * reply over the bound), FWD_R_ETCD_COMPACTED (the revision is gone).
 */
#ifndef CTL_ETCD_H
#define CTL_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_err.h"

struct ctl_etcd;
struct ctl_etcd_watch;

struct ctl_etcd_conf {
	/* "http://127.0.0.1:2379,https://10.0.0.2:2379": 1..8 URLs */
	const char *endpoints;
	unsigned timeout_ms; /* per call and endpoint; 0: 2000 */
	size_t max_reply; /* largest reply accepted; 0: 8 MiB */
	const char *ca_file; /* TLS: the CA that signs the members; NULL: system */
	const char *cert_file; /* TLS client certificate (and key), or NULL */
	const char *key_file;
	const char *user; /* etcd auth, or NULL */
	const char *password;
};

/** One key as etcd stores it. key and value are NUL-terminated copies (the
 *  terminator is not counted in the lengths) owned by their range/event. */
struct ctl_etcd_kv {
	char *key;
	size_t key_len;
	char *value;
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease;
};

/** A range's result: the store's revision at the read, and the keys. */
struct ctl_etcd_range {
	int64_t revision;
	size_t count; /* keys in kvs */
	int more; /* the limit cut the result short */
	struct ctl_etcd_kv *kvs;
};

enum {
	CTL_ETCD_PREFIX = 1u << 0, /* every key starting with @key */
	CTL_ETCD_KEYS_ONLY = 1u << 1, /* range: no values */
};

/**
 * Create a client; no connection is made yet.
 * @return the handle, or NULL with @err filled (FWD_R_INVALID: an endpoint
 *         that is not http(s)://host:port, too many of them).
 */
struct ctl_etcd *ctl_etcd_create(const struct ctl_etcd_conf *conf, struct fwd_err *err);

/** Free @e (NULL-safe). Watches created from it must be freed first. */
void ctl_etcd_free(struct ctl_etcd *e);

/** The endpoint that answered last (or will be tried first). */
const char *ctl_etcd_endpoint(const struct ctl_etcd *e);

/**
 * Read @key (or every key under it with CTL_ETCD_PREFIX) at @revision
 * (0: the latest), at most @limit keys (0: no limit but max_reply).
 * @out is filled on success and must be released by ctl_etcd_range_free().
 * @return 0, or a negative errno (FWD_R_ETCD_COMPACTED for a revision gone).
 */
int ctl_etcd_range(struct ctl_etcd *e, const char *key, unsigned flags, int64_t revision,
		   size_t limit, struct ctl_etcd_range *out, struct fwd_err *err);

/** Release what a range or a txn result holds (NULL-safe, idempotent). */
void ctl_etcd_range_free(struct ctl_etcd_range *r);

/**
 * Put @key = @value (@len bytes), attached to @lease (0: none).
 * @revision: when not NULL, the store's revision after the put.
 */
int ctl_etcd_put(struct ctl_etcd *e, const char *key, const void *value, size_t len, int64_t lease,
		 int64_t *revision, struct fwd_err *err);

/** Delete @key (or the keys under it with CTL_ETCD_PREFIX).
 *  @return the number of keys deleted (>= 0), or a negative errno. */
int ctl_etcd_delete(struct ctl_etcd *e, const char *key, unsigned flags, int64_t *revision,
		    struct fwd_err *err);

/* A transaction's compares and operations. */
enum ctl_etcd_cmp_target {
	CTL_ETCD_CMP_CREATE, /* create_revision (0: the key does not exist) */
	CTL_ETCD_CMP_MOD, /* mod_revision */
	CTL_ETCD_CMP_VERSION, /* version (0: the key does not exist) */
	CTL_ETCD_CMP_VALUE, /* value bytes */
	CTL_ETCD_CMP_LEASE, /* the lease the key is on (0: none, or no key) */
};

enum ctl_etcd_cmp_result {
	CTL_ETCD_EQUAL,
	CTL_ETCD_NOT_EQUAL,
	CTL_ETCD_GREATER,
	CTL_ETCD_LESS,
};

struct ctl_etcd_cmp {
	const char *key;
	enum ctl_etcd_cmp_target target;
	enum ctl_etcd_cmp_result result;
	int64_t number; /* CREATE, MOD, VERSION, LEASE */
	const void *value; /* VALUE */
	size_t value_len;
};

enum ctl_etcd_op_type {
	CTL_ETCD_OP_RANGE,
	CTL_ETCD_OP_PUT,
	CTL_ETCD_OP_DELETE,
};

struct ctl_etcd_op {
	enum ctl_etcd_op_type type;
	const char *key;
	unsigned flags; /* CTL_ETCD_PREFIX for RANGE and DELETE */
	const void *value; /* PUT */
	size_t value_len;
	int64_t lease; /* PUT */
};

struct ctl_etcd_txn_result {
	int succeeded; /* 1: the compares held and @success ran; 0: @failure ran */
	int64_t revision; /* the store's revision after the txn */
	/* The keys read by the first RANGE op of the branch that ran (empty
	 * when it had none): typically "read what beat me" on failure. */
	struct ctl_etcd_range range;
};

/**
 * Run a transaction: if all @cmp hold, the @success ops, else the @failure
 * ops, atomically. @res is filled on success (release res->range with
 * ctl_etcd_range_free()). A compare that fails is not an error: it is
 * res->succeeded == 0.
 */
int ctl_etcd_txn(struct ctl_etcd *e, const struct ctl_etcd_cmp *cmp, size_t ncmp,
		 const struct ctl_etcd_op *success, size_t nsuccess,
		 const struct ctl_etcd_op *failure, size_t nfailure,
		 struct ctl_etcd_txn_result *res, struct fwd_err *err);

/** Grant a lease of @ttl_s seconds; its id in @id. */
int ctl_etcd_lease_grant(struct ctl_etcd *e, unsigned ttl_s, int64_t *id, struct fwd_err *err);

/** Renew lease @id once. @ttl_s (optional): its remaining TTL.
 *  @return 0, -ENOENT (FWD_R_ETCD_ERROR) when the lease has expired or is
 *  unknown (attach the keys to a new one), or another negative errno. */
int ctl_etcd_lease_keepalive(struct ctl_etcd *e, int64_t id, int64_t *ttl_s, struct fwd_err *err);

/** Revoke lease @id (its keys are deleted). Unknown lease: 0. */
int ctl_etcd_lease_revoke(struct ctl_etcd *e, int64_t id, struct fwd_err *err);

/* One change seen by a watch. */
enum ctl_etcd_event_type {
	CTL_ETCD_EV_PUT,
	CTL_ETCD_EV_DELETE,
};

struct ctl_etcd_event {
	enum ctl_etcd_event_type type;
	struct ctl_etcd_kv kv; /* DELETE: key and mod_revision only */
};

/** Called with the events of one revision batch, in revision order. Return
 *  0 to go on, a negative errno to stop ctl_etcd_watch_poll() with it. */
typedef int (*ctl_etcd_watch_cb)(void *arg, const struct ctl_etcd_event *ev, size_t n);

/**
 * Watch @key (or the keys under it with CTL_ETCD_PREFIX) from
 * @start_revision (usually the revision of the range that read the state,
 * plus 1). No connection is made until the first poll.
 * @return the watch, or NULL with @err filled.
 */
struct ctl_etcd_watch *ctl_etcd_watch_create(struct ctl_etcd *e, const char *key, unsigned flags,
					     int64_t start_revision, struct fwd_err *err);

/**
 * Wait up to @wait_ms for changes and hand them to @cb. When the stream
 * breaks (a member dies, the network goes), the next poll reconnects, to the
 * next endpoint if needed, from the last revision delivered + 1: no change is
 * missed and none is replayed.
 * @return the number of events delivered (>= 0), or a negative errno:
 *   FWD_R_ETCD_COMPACTED: the next revision to deliver has been compacted;
 *     the caller reads the state again and calls ctl_etcd_watch_reset();
 *   FWD_R_ETCD_UNAVAILABLE / FWD_R_ETCD_ERROR: no stream now; the next poll
 *     tries again (the caller paces it);
 *   or @cb's error.
 */
int ctl_etcd_watch_poll(struct ctl_etcd_watch *w, unsigned wait_ms, ctl_etcd_watch_cb cb, void *arg,
			struct fwd_err *err);

/** The endpoint the watch's stream uses (or will open on). */
const char *ctl_etcd_watch_endpoint(const struct ctl_etcd_watch *w);

/** The next revision the watch delivers (the last delivered + 1). */
int64_t ctl_etcd_watch_next(const struct ctl_etcd_watch *w);

/** Drop the stream and start again from @start_revision (after a re-read),
 *  on the endpoint that answered the client last. */
void ctl_etcd_watch_reset(struct ctl_etcd_watch *w, int64_t start_revision);

/** Close and free @w (NULL-safe). */
void ctl_etcd_watch_free(struct ctl_etcd_watch *w);

#endif /* CTL_ETCD_H */
