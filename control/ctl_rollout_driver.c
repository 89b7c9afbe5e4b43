#include "ctl_rollout_driver.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_metrics.h"
#include "ctl_rollout.h"
#include "ctl_rollout_store.h"
#include "fwd_log.h"
#include "fwd_clock.h"

/* Each node's last two distinct reports, for the rates. */
struct seen {
	struct ctl_rollout_node cur, prev;
	bool has_prev, present;
};

struct ctl_rdriver {
	struct ctl_rdriver_conf conf;
	struct ctl_etcd *e;
	pthread_t thread;
	pthread_mutex_t lock; /* guards stop and the status below */
	pthread_cond_t wake;
	bool stop;
	bool joined; /* ctl_rdriver_stop() waited for the thread */
	/* status */
	bool leader, paused;
	char leader_node[CTL_ROLLOUT_NAME_MAX + 1];
	char last_error[400];
	char rollout[CTL_ROLLOUT_ID_MAX + 1];
	char state[16]; /* the active rollout's, as last stepped; "" when none */
	uint64_t steps, commits;
	int stray_pins; /* as the leader last saw them; -1: not looked yet */
	bool pins_truncated; /* more pins than it reads (CTL_ROLLOUT_NODES_MAX) */
	uint64_t unpinned; /* stray pins it deleted */
	/* the thread's own */
	int64_t lease, leader_create;
	uint64_t lease_renewed; /* monotonic ms of the last successful keepalive */
	/* The lease and key's create revision of a leadership given up
	 * unsure (etcd out of reach, keep_lease): resume() takes them up
	 * again when etcd still holds both. 0: none. */
	int64_t gone_lease, gone_create;
	struct fwd_steady clock; /* the rollout's times: fwd_steady_ms() */
	struct ctl_rollout *r;
	struct ctl_rollout_node *reports;
	struct seen *seen;
	unsigned n_seen;
	/* The stray pins seen, and since when (monotonic ms): the grace of
	 * conf.unpin_after_s runs from the leader's first sight, on its own
	 * clock (not a record's time, which is etcd's and hostile). */
	struct ctl_rstore_pin *pins;
	struct stray {
		uint64_t key_hash; /* the whole key's: keys no node name included */
		int64_t mod_revision;
		uint64_t since;
		int warned; /* the reason last logged for a failed unpin, 0 none */
	} * strays;
	unsigned n_strays;
	uint64_t pins_at; /* monotonic ms of the next look at the pins */
	struct ctl_rstore_pinset pinset; /* the active record's id, cached */
	/* The record's phase times on this driver's clock (rebase): the
	 * record's mod_revision after our last commit, the last other one
	 * seen and the shift taken for it. */
	int64_t own_mod, seen_mod, shift;
	/* When (this driver's clock) the record was last written as far as
	 * it knows: its own commit, or its first sight of another's. The
	 * record is written again every beat_ms while its phase waits. */
	uint64_t written_at;
	uint64_t beat_ms;
	/* Time etcd was out of this driver's reach does not count towards a
	 * phase's timeouts: the nodes report through etcd, and a sync_timeout
	 * that ran on while etcd was down aborted a rollout blaming a node
	 * that had applied the table at once (its report could not be
	 * written, nor read). All on the rollout's clock (fwd_steady_ms):
	 * ok_at, the last etcd call that was answered; out/out_from, etcd
	 * out of reach (a call went unanswered) since the answer before;
	 * out_ms, the outages' length since the last look, each less an
	 * ordinary round; looked_mod, the record's revision at the last look
	 * (read or committed); credit, the time taken off the phase, applied
	 * to the record read at looked_mod until a commit of ours carries it
	 * (another's write supersedes it: that leader was watching). */
	uint64_t ok_at, out_from, out_ms, credit;
	int64_t looked_mod;
	bool out;
	/* why the pins could not be read, as last logged (whole: a cut copy
	 * would never compare equal, and be logged every look) */
	char pins_error[sizeof(((struct fwd_err *)0)->reason)];
	bool pins_truncated_said;
};

#define PINS_EVERY_MS 3000 /* the leader's look at the pins */
/* Unpins one look makes at most (each is four round trips to etcd): the
 * rest wait for the next look, so the thread that keeps the leader's lease
 * never spends a lease on them (512 pins at 5 ms would take 10 s). */
#define PINS_UNPIN_PER_LOOK 16

static void set_error(struct ctl_rdriver *d, const struct fwd_err *err, bool paused)
{
	char buf[400];

	fwd_err_str(err, buf, sizeof(buf));
	/* Out of reach, not refused: a lapsed lease or a failed compare is
	 * etcd answering. The outage began after the last answer. (These
	 * fields are the thread's own: only it calls set_error.) */
	if (err->reason_code == FWD_R_ETCD_UNAVAILABLE && !d->out) {
		d->out = true;
		d->out_from = d->ok_at ? d->ok_at : (uint64_t)fwd_steady_ms(&d->clock);
	}
	pthread_mutex_lock(&d->lock);
	if (strcmp(d->last_error, buf) != 0)
		fwd_log(FWD_LOG_WARNING, "fleet rollout driver (%s): %s%s", d->conf.facility, buf,
			paused ? "; paused" : "");
	snprintf(d->last_error, sizeof(d->last_error), "%s", buf);
	d->paused = paused;
	pthread_mutex_unlock(&d->lock);
}

/* etcd answered: an outage, if one was on, ends here. Each counts less an
 * ordinary round (poll_ms), so a leader whose every round meets one
 * unanswered call still moves its phases on, only slower. */
static void answered(struct ctl_rdriver *d)
{
	uint64_t now = (uint64_t)fwd_steady_ms(&d->clock);

	if (d->out && now > d->out_from + d->conf.poll_ms)
		d->out_ms += now - d->out_from - d->conf.poll_ms;
	d->out = false;
	d->ok_at = now;
}

/* Sleep up to @ms unless stopped; returns true when stopping. */
static bool nap(struct ctl_rdriver *d, uint64_t ms)
{
	struct timespec ts = fwd_mono_after_ms((int64_t)ms);
	bool stop;

	pthread_mutex_lock(&d->lock);
	if (!d->stop)
		pthread_cond_timedwait(&d->wake, &d->lock, &ts);
	stop = d->stop;
	pthread_mutex_unlock(&d->lock);
	return stop;
}

static bool stopping(struct ctl_rdriver *d)
{
	bool stop;

	pthread_mutex_lock(&d->lock);
	stop = d->stop;
	pthread_mutex_unlock(&d->lock);
	return stop;
}

static void lose_leadership(struct ctl_rdriver *d, const char *why)
{
	if (d->leader_create)
		fwd_log(FWD_LOG_INFO, "fleet rollout driver (%s): no longer the leader: %s",
			d->conf.facility, why);
	d->leader_create = 0;
	d->lease = 0;
	d->n_strays = 0; /* the next leader's grace starts from its own sight */
	d->pins_error[0] = '\0';
	d->pins_truncated_said = false;
	pthread_mutex_lock(&d->lock);
	d->leader = false;
	d->stray_pins = -1;
	pthread_mutex_unlock(&d->lock);
}

/* Lets a remembered lease go, and with it the old key if it still holds it. */
static void forget_gone(struct ctl_rdriver *d)
{
	struct fwd_err err;

	ctl_etcd_lease_revoke(d->e, d->gone_lease, &err);
	d->gone_lease = d->gone_create = 0;
}

/* A leader that gave up unsure in an outage (keep_lease) may find etcd
 * still holds its lease and key when it answers again: etcd extends every
 * lease by its TTL when its cluster comes back, so the old key outlives
 * the outage by a whole lease, and a fresh campaign would wait it out with
 * nobody leading. When the lease is alive and the key is the one this
 * driver created (the same create revision: a key deleted and made again
 * gets a new one, so no other regiond held it in between), it leads again
 * on them. Returns 1 when it leads again, 0 when the campaign is to go on
 * (the lease, if alive, kept for it), -1 when etcd did not answer (the
 * old lease still remembered) or refused the lease or the key's read some
 * other way than "expired" (the lease let go). */
static int resume(struct ctl_rdriver *d)
{
	struct ctl_etcd_range rg = {0};
	struct fwd_err err = {0};
	char key[160];
	int rc;

	rc = ctl_etcd_lease_keepalive(d->e, d->gone_lease, NULL, &err);
	if (rc && rc != -ENOENT) {
		set_error(d, &err, true);
		/* Refused some other way (a login, an answer that is not etcd's):
		 * renewing it on and on would keep the old key alive for good,
		 * holding every other regiond off. Let it go. */
		if (err.reason_code != FWD_R_ETCD_UNAVAILABLE)
			forget_gone(d);
		return -1;
	}
	if (rc) {
		/* Answered, and gone (expired): a campaign afresh, as usual.
		 * Said only when this driver led on it: a campaigner's lease
		 * lapsing (it never acted as leader on it) is nothing to tell. */
		answered(d);
		if (d->gone_create)
			fwd_log(FWD_LOG_INFO,
				"fleet rollout driver (%s): its lease lapsed in the outage: "
				"campaigns afresh",
				d->conf.facility);
		d->gone_lease = d->gone_create = 0;
		return 0;
	}
	answered(d);
	d->lease = d->gone_lease;
	d->lease_renewed = (uint64_t)fwd_mono_ms();
	d->gone_lease = 0;
	ctl_rstore_key(key, sizeof(key), d->conf.facility, "rollout/leader");
	if (ctl_etcd_range(d->e, key, 0, 0, 1, &rg, &err)) {
		set_error(d, &err, true);
		/* Unsure again: looked at afresh next time; refused (the key
		 * cannot be read): let the lease, and the key if it holds it,
		 * go, as above. */
		d->gone_lease = d->lease;
		d->lease = 0;
		if (err.reason_code != FWD_R_ETCD_UNAVAILABLE)
			forget_gone(d);
		return -1;
	}
	answered(d);
	if (rg.count != 1 || rg.kvs[0].create_revision != d->gone_create ||
	    rg.kvs[0].lease != d->lease) {
		ctl_etcd_range_free(&rg);
		d->gone_create = 0;
		return 0;
	}
	ctl_etcd_range_free(&rg);
	d->leader_create = d->gone_create;
	d->gone_create = 0;
	pthread_mutex_lock(&d->lock);
	d->paused = false;
	d->leader = true;
	snprintf(d->leader_node, sizeof(d->leader_node), "%s", d->conf.node);
	pthread_mutex_unlock(&d->lock);
	fwd_log(FWD_LOG_INFO,
		"fleet rollout driver (%s): %s leads the rollouts again: etcd kept its "
		"lease and leader key (created at revision %lld) through the outage",
		d->conf.facility, d->conf.node, (long long)d->leader_create);
	return 1;
}

/* Try to become the leader: the key on our lease, created only if absent. */
static void campaign(struct ctl_rdriver *d)
{
	struct ctl_etcd_txn_result res = {0};
	struct fwd_err err = {0};
	char key[160], *value;
	json_t *who = NULL;
	int rc;

	if (d->lease == 0 && d->gone_lease && resume(d) != 0)
		return;
	if (d->lease == 0) {
		rc = ctl_etcd_lease_grant(d->e, d->conf.lease_s, &d->lease, &err);
		if (rc) {
			set_error(d, &err, true);
			d->lease = 0;
			return;
		}
		d->lease_renewed = (uint64_t)fwd_mono_ms();
		answered(d);
	} else if ((uint64_t)fwd_mono_ms() - d->lease_renewed >= d->conf.lease_s * 1000u / 3) {
		if (ctl_etcd_lease_keepalive(d->e, d->lease, NULL, &err)) {
			/* A new one next time; unsure, this one is remembered: a
			 * create of ours whose answer was lost may have left the
			 * key on it, which resume() then finds (its create
			 * revision is not 0) and the campaign takes as ours. */
			if (err.reason_code == FWD_R_ETCD_UNAVAILABLE) {
				d->gone_lease = d->lease;
				d->gone_create = 0;
			}
			d->lease = 0;
			set_error(d, &err, true);
			return;
		}
		d->lease_renewed = (uint64_t)fwd_mono_ms();
		answered(d);
	}
	ctl_rstore_key(key, sizeof(key), d->conf.facility, "rollout/leader");
	who = json_pack("{s:i, s:s, s:I}", "schema", CTL_ROLLOUT_SCHEMA, "node", d->conf.node,
			"since", (json_int_t)fwd_steady_ms(&d->clock));
	value = who ? json_dumps(who, JSON_COMPACT) : NULL;
	json_decref(who);
	who = NULL;
	{
		struct ctl_etcd_cmp cmp = {
			.key = key, .target = CTL_ETCD_CMP_CREATE, .result = CTL_ETCD_EQUAL};
		struct ctl_etcd_op put = {.type = CTL_ETCD_OP_PUT,
					  .key = key,
					  .value = value,
					  .value_len = value ? strlen(value) : 0,
					  .lease = d->lease},
				   get = {.type = CTL_ETCD_OP_RANGE, .key = key};

		rc = value ? ctl_etcd_txn(d->e, &cmp, 1, &put, 1, &get, 1, &res, &err) : -ENOMEM;
	}
	free(value);
	if (rc) {
		set_error(d, &err, true);
		goto out;
	}
	answered(d);
	if (res.range.count)
		who = json_loadb(res.range.kvs[0].value, res.range.kvs[0].value_len, 0, NULL);
	/* Our create applied by a member that did not answer, and failed its
	 * compare on the retry: the key on our own lease is ours. Taken as a
	 * loss, the driver kept renewing that lease and nobody led. */
	if (!res.succeeded && res.range.count == 1 && res.range.kvs[0].lease == d->lease) {
		res.succeeded = true;
		res.revision = res.range.kvs[0].create_revision;
	}
	pthread_mutex_lock(&d->lock);
	d->paused = false;
	d->leader = res.succeeded;
	snprintf(d->leader_node, sizeof(d->leader_node), "%s",
		 res.succeeded ? d->conf.node
		 : json_is_string(json_object_get(who, "node"))
			 ? json_string_value(json_object_get(who, "node"))
			 : "?");
	fwd_utf8_clean(d->leader_node);
	pthread_mutex_unlock(&d->lock);
	if (res.succeeded) {
		d->leader_create = res.revision;
		fwd_log(FWD_LOG_INFO, "fleet rollout driver (%s): %s leads the rollouts",
			d->conf.facility, d->conf.node);
	}
out:
	json_decref(who);
	ctl_etcd_range_free(&res.range);
}

/* Whether the leader key is still the one this driver created. A live
 * lease is not enough: the key can be deleted by hand (or by a compromised
 * writer) and then created by another regiond, and a driver that only
 * renews its lease would go on believing it leads, and retry commits that
 * can never pass its leader compare. Gone or another's: leadership is
 * dropped, and the campaign starts over. An etcd error keeps it (unsure:
 * the lease's own check decides). */
static bool still_leader(struct ctl_rdriver *d)
{
	struct ctl_etcd_range rg = {0};
	struct fwd_err err = {0};
	char key[160], why[160];

	ctl_rstore_key(key, sizeof(key), d->conf.facility, "rollout/leader");
	if (ctl_etcd_range(d->e, key, 0, 0, 1, &rg, &err)) {
		set_error(d, &err, true);
		return d->leader_create != 0;
	}
	answered(d);
	/* The lease too: a put over the key on our lease id (by hand, or a
	 * writer that should not) keeps its create_revision, and two
	 * regionds would both find it theirs. */
	if (rg.count == 1 && rg.kvs[0].create_revision == d->leader_create &&
	    rg.kvs[0].lease == d->lease) {
		ctl_etcd_range_free(&rg);
		return true;
	}
	if (rg.count)
		snprintf(why, sizeof(why),
			 "the leader key was replaced (created at revision %lld on lease %llx, "
			 "ours %lld on lease %llx)",
			 (long long)rg.kvs[0].create_revision, (unsigned long long)rg.kvs[0].lease,
			 (long long)d->leader_create, (unsigned long long)d->lease);
	else
		snprintf(why, sizeof(why),
			 "the leader key was deleted (ours was created at revision %lld)",
			 (long long)d->leader_create);
	ctl_etcd_range_free(&rg);
	lose_leadership(d, why);
	return false;
}

/* Keep the leader's lease; false when leadership is gone or unsure. */
static bool keep_lease(struct ctl_rdriver *d)
{
	struct fwd_err err = {0};
	uint64_t now = (uint64_t)fwd_mono_ms();

	if (now - d->lease_renewed < d->conf.lease_s * 1000u / 3)
		return true;
	if (ctl_etcd_lease_keepalive(d->e, d->lease, NULL, &err) == 0) {
		d->lease_renewed = now;
		answered(d);
		return still_leader(d);
	}
	set_error(d, &err, true);
	/* Unsure whether etcd still holds the lease: once it may have lapsed
	 * another regiond may lead, so this one stops, remembering the lease
	 * and key for resume(). A refusal (expired) is sure: forgotten. */
	if (err.reason_code != FWD_R_ETCD_UNAVAILABLE) {
		lose_leadership(d, err.reason);
	} else if (now - d->lease_renewed >= d->conf.lease_s * 1000u * 2 / 3) {
		int64_t lease = d->lease, create = d->leader_create;

		lose_leadership(d, err.reason);
		d->gone_lease = lease;
		d->gone_create = create;
	}
	return d->leader_create != 0;
}

/* The reports of now, each with its previous one from our memory. */
static int read_nodes(struct ctl_rdriver *d, struct fwd_err *err)
{
	int n = ctl_rstore_nodes(d->e, d->conf.facility, d->reports, CTL_ROLLOUT_NODES_MAX, NULL,
				 err);

	if (n < 0)
		return n;
	for (unsigned k = 0; k < d->n_seen; k++)
		d->seen[k].present = false;
	for (int i = 0; i < n; i++) {
		struct ctl_rollout_node *rep = &d->reports[i];
		struct seen *s = NULL;

		/* An unreadable report has no time or counters: kept out of
		 * the memory of rates, so a node that recovers starts over. */
		if (rep->unreadable) {
			rep->prev = NULL;
			continue;
		}

		for (unsigned k = 0; k < d->n_seen && !s; k++)
			if (strcmp(d->seen[k].cur.name, rep->name) == 0)
				s = &d->seen[k];
		if (s == NULL && d->n_seen < CTL_ROLLOUT_NODES_MAX) {
			s = &d->seen[d->n_seen++];
			memset(s, 0, sizeof(*s));
			s->cur = *rep;
		} else if (s && rep->updated_at != s->cur.updated_at) {
			s->prev = s->cur;
			s->has_prev = true;
			s->cur = *rep;
		}
		if (s) {
			s->present = true;
			rep->prev = s->has_prev ? &s->prev : NULL;
		}
	}
	/* Forget nodes that went away: back, they start over. */
	for (unsigned k = 0; k < d->n_seen;)
		if (!d->seen[k].present)
			d->seen[k] = d->seen[--d->n_seen];
		else
			k++;
	/* The seen array moved: point again. */
	for (int i = 0; i < n; i++)
		for (unsigned k = 0; k < d->n_seen && !d->reports[i].unreadable; k++)
			if (strcmp(d->seen[k].cur.name, d->reports[i].name) == 0)
				d->reports[i].prev = d->seen[k].has_prev ? &d->seen[k].prev : NULL;
	return n;
}

/* A record's phase began at "since" on the clock of the regiond that wrote
 * it: another leader's (a takeover), a restarted one's, or the API's that
 * created it. Regionds' clocks differ (one set wrong, or not synced yet:
 * a record up to CTL_ROLLOUT_SKEW_MS ahead is taken), and read as ours, a
 * takeover by a leader 7 minutes ahead ended a 300 s bake at once, and one
 * a minute ahead would abort a syncing wave by its sync_timeout gate (a
 * hostile probe). A record another wrote is moved to this clock once, at
 * first sight of its revision: what had passed of its phase when it was
 * written (its updated_at - since, both its writer's) has passed on ours
 * then. One ahead of us by more than the skew is left as it is: the step
 * refuses it as from the future. */
static void rebase(struct ctl_rdriver *d, int64_t mod, uint64_t now)
{
	struct ctl_rollout *r = d->r;

	if (mod == d->own_mod)
		return; /* our own commit: our clock */
	if (mod != d->seen_mod) {
		uint64_t passed = r->updated_at > r->since ? r->updated_at - r->since : 0;

		d->seen_mod = mod;
		d->shift = r->since > now + CTL_ROLLOUT_SKEW_MS || passed > now
				   ? 0
				   : (int64_t)(now - passed) - (int64_t)r->since;
		d->written_at = now;
	}
	r->since = (uint64_t)((int64_t)r->since + d->shift);
}

/* A phase whose clock ran while etcd was out of reach gets that time back:
 * the outages since this driver's last look, when nobody wrote the record
 * meanwhile (a leader that did was watching, and rebase() takes its word).
 * Only the phases that wait on reports are moved (the rates, a wave's sync
 * and bake, a revert), never past now, and never a record from the future
 * (the step refuses it, and a credit must not make it acceptable). Time
 * etcd answered counts, whether or not anyone led: the nodes could report.
 * @return true when a credit of a second or more was newly taken: it is
 * logged and written at once (a takeover then starts from it too); a
 * smaller one goes with the next write. */
static bool give_credit(struct ctl_rdriver *d, int64_t mod, uint64_t now)
{
	struct ctl_rollout *r = d->r;
	bool timed = r->state == CTL_RO_PENDING || r->state == CTL_RO_SYNCING ||
		     r->state == CTL_RO_BAKING || r->state == CTL_RO_ABORTING;
	bool fresh = false;

	if (mod != d->looked_mod || r->since > now) {
		d->credit = 0;
	} else if (d->out_ms && timed) {
		d->credit += d->out_ms;
		fresh = d->out_ms >= 1000;
		if (fresh)
			fwd_log(FWD_LOG_INFO,
				"fleet rollout %s (%s): etcd was out of reach for %.1f s: the %s "
				"phase's clock is moved on by as much (no node could report "
				"meanwhile)",
				r->id, r->facility, (double)d->out_ms / 1000.0,
				ctl_rollout_state_name(r->state));
	}
	d->out_ms = 0;
	d->looked_mod = mod;
	if (d->credit && timed)
		r->since = r->since + d->credit < now ? r->since + d->credit : now;
	return fresh;
}

/* The record written as the leader's step or beat, compared on its
 * mod_revision (*@mod: the one read, then the one written) and the
 * leader key. @return 0 written; 1 not, the round
 * ends (*@wait 0 when someone else wrote while this is still the leader:
 * an abort, read again at once; a leader key no longer ours stops the
 * leading and campaigns; any other failure is the driver's error). */
static int commit(struct ctl_rdriver *d, struct ctl_rollout_actions *act, int64_t *mod,
		  uint64_t now, uint64_t *wait)
{
	struct fwd_err err = {0};
	struct ctl_rstore_leader leader = {.create_revision = d->leader_create, .lease = d->lease};
	int rc = ctl_rstore_commit(d->e, d->r, mod, &leader, act, &err);

	if (rc == -ESTALE) {
		if (still_leader(d))
			*wait = 0;
		return 1;
	}
	if (rc) {
		set_error(d, &err, true);
		return 1;
	}
	answered(d);
	d->own_mod = *mod;
	d->written_at = now;
	/* The record now holds the phase's start with any credit in it. */
	d->looked_mod = *mod;
	d->credit = 0;
	pthread_mutex_lock(&d->lock);
	d->commits++;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* One round as the leader: returns how long to wait before the next. */
static uint64_t drive(struct ctl_rdriver *d)
{
	struct ctl_rollout_actions *act = calloc(1, sizeof(*act));
	struct fwd_err err = {0};
	uint64_t wait = d->conf.poll_ms, now;
	bool credited;
	int64_t mod;
	int n, rc;

	if (act == NULL)
		return wait;
	rc = ctl_rstore_active(d->e, d->conf.facility, d->r, &mod, &err);
	if (rc == 0 || rc == -ENOENT)
		answered(d);
	if (rc == -ENOENT) {
		pthread_mutex_lock(&d->lock);
		d->rollout[0] = '\0';
		d->state[0] = '\0';
		d->paused = false;
		pthread_mutex_unlock(&d->lock);
		goto out;
	}
	if (rc) {
		/* Garbage in rollout/active is reported, never acted on. */
		set_error(d, &err, true);
		goto out;
	}
	n = read_nodes(d, &err);
	if (n < 0) {
		set_error(d, &err, true);
		goto out;
	}
	answered(d);
	/* Step-free: a leader's clock set forward an hour ended a 300 s bake
	 * at once; set back, the record's phase seemed to start in the
	 * future (a hostile probe). */
	now = (uint64_t)fwd_steady_ms(&d->clock);
	rebase(d, mod, now);
	credited = give_credit(d, mod, now);
	if (ctl_rollout_step(d->r, d->reports, (size_t)n, now, act)) {
		fwd_err_fail(&err, FWD_R_INVALID_FLEET_KEY, NULL, 0, "rollout/active",
			     "does not hold together");
		set_error(d, &err, true);
		goto out;
	}
	pthread_mutex_lock(&d->lock);
	d->steps++;
	d->paused = false;
	snprintf(d->rollout, sizeof(d->rollout), "%s", d->r->id);
	snprintf(d->state, sizeof(d->state), "%s", ctl_rollout_state_name(d->r->state));
	pthread_mutex_unlock(&d->lock);
	/* A phase that waits (the rates before the plan, a wave's sync, its
	 * bake, a revert) changes nothing in the record for its whole
	 * length, and a record written only when the rollout moved kept
	 * its phase's start as its updated_at: a new leader counted the
	 * phase from its takeover (rebase), so a leadership that kept
	 * changing (a lease that kept lapsing, a regiond in a restart
	 * loop) held a rollout in its bake for ever and its sync_timeout
	 * never came. Written again every beat, its updated_at says how
	 * much of the phase had passed: a takeover waits again at most a
	 * beat and the takeover itself. A beat is the record's own
	 * transaction, compared on its mod_revision and the leader key as
	 * any step, so an operator's abort in between is read, not lost. */
	if (!act->write && !act->finish && (credited || now - d->written_at >= d->beat_ms) &&
	    (d->r->state == CTL_RO_PENDING || d->r->state == CTL_RO_SYNCING ||
	     d->r->state == CTL_RO_BAKING || d->r->state == CTL_RO_ABORTING)) {
		d->r->updated_at = now;
		if (commit(d, act, &mod, now, &wait))
			goto out;
	}
	if (act->write) {
		if (commit(d, act, &mod, now, &wait))
			goto out;
		fwd_log(FWD_LOG_INFO, "fleet rollout %s (%s): %s, wave %d of %d%s%s%s", d->r->id,
			d->r->facility, ctl_rollout_state_name(d->r->state), d->r->wave + 1,
			d->r->n_waves, d->r->abort_gate[0] ? ", gate " : "", d->r->abort_gate,
			act->promote ? ", promoted" : "");
		if (act->finish) {
			/* The history stays bounded: the oldest records go. A
			 * failure here only leaves them for the next finish. */
			struct fwd_err pe = {0};
			int pruned = ctl_rstore_prune_history(d->e, d->conf.facility,
							      CTL_RSTORE_HISTORY_KEEP, &pe);

			if (pruned > 0)
				fwd_log(FWD_LOG_INFO,
					"fleet rollout history (%s): %d oldest records deleted, "
					"%d kept",
					d->conf.facility, pruned, CTL_RSTORE_HISTORY_KEEP);
			else if (pruned < 0)
				fwd_log(FWD_LOG_WARNING,
					"fleet rollout history (%s): cannot prune: %s",
					d->conf.facility, pe.reason);
		}
		wait = act->finish ? d->conf.poll_ms : 0;
	}
	if (!act->write && act->wake_at > now && act->wake_at - now < wait)
		wait = act->wake_at - now;
out:
	free(act);
	return wait;
}

/* The leader's look at the pins: a stray one is logged when first seen and
 * counted; one of a finished rollout is deleted once seen for
 * conf.unpin_after_s, at most PINS_UNPIN_PER_LOOK a look, the lease kept
 * between. Pins an operator wrote ("rollout": null), naming a rollout etcd
 * does not know, or unreadable are left: they may be meant, and the node's
 * report (and alarm, for a rollout's) says so (docs/fleet.md, "Pins nobody
 * owns"). Each failure is logged once per cause, never every look. */
static void look_at_pins(struct ctl_rdriver *d)
{
	struct fwd_err err = {0};
	struct stray *kept;
	unsigned n_kept = 0, unpins = 0;
	int n, strays = 0;
	uint64_t now = (uint64_t)fwd_mono_ms();

	if (d->leader_create == 0 || now < d->pins_at)
		return;
	d->pins_at = now + PINS_EVERY_MS;
	n = ctl_rstore_pins(d->e, d->conf.facility, d->pins, CTL_ROLLOUT_NODES_MAX, &d->pinset,
			    &err);
	if (n < 0) {
		/* Not a pause: the rollout's own reads say whether etcd is
		 * there. Said once per cause: the look comes every 3 s. */
		if (strcmp(d->pins_error, err.reason) != 0)
			fwd_log(FWD_LOG_WARNING,
				"fleet (%s): cannot read the pins (stray ones are neither "
				"counted nor deleted meanwhile): %s",
				d->conf.facility, err.reason);
		snprintf(d->pins_error, sizeof(d->pins_error), "%s", err.reason);
		return;
	}
	if (d->pins_error[0])
		fwd_log(FWD_LOG_INFO, "fleet (%s): the pins can be read again", d->conf.facility);
	d->pins_error[0] = '\0';
	if (d->pinset.truncated && !d->pins_truncated_said)
		fwd_log(FWD_LOG_WARNING,
			"fleet (%s): more than %d pins under pins/: only the first %d are looked "
			"at",
			d->conf.facility, CTL_ROLLOUT_NODES_MAX, CTL_ROLLOUT_NODES_MAX);
	d->pins_truncated_said = d->pinset.truncated;
	kept = calloc(CTL_ROLLOUT_NODES_MAX, sizeof(*kept));
	if (kept == NULL)
		return;
	for (int i = 0; i < n; i++) {
		const struct ctl_rstore_pin *p = &d->pins[i];
		struct stray *s = NULL;
		struct ctl_rstore_pin gone;

		if (!ctl_rstore_pin_stray(p))
			continue;
		strays++;
		for (unsigned k = 0; k < d->n_strays && !s; k++)
			if (d->strays[k].key_hash == p->key_hash &&
			    d->strays[k].mod_revision == p->mod_revision)
				s = &d->strays[k];
		if (s == NULL) {
			fwd_log(FWD_LOG_WARNING,
				"fleet (%s): node %s is pinned to table %s by %s%s%s%s, which no "
				"active rollout owns (%s pin)%s",
				d->conf.facility, p->node[0] ? p->node : "?",
				p->table[0] ? p->table : "?", p->rollout[0] ? "rollout " : "hand",
				p->rollout[0] ? p->rollout : "", p->why[0] ? ": " : "", p->why,
				ctl_pin_owner_name(p->owner),
				p->owner == CTL_PIN_OWNER_FINISHED && d->conf.unpin_after_s
					? ": deleted if it stays"
				: p->node[0] ? ": left; regionctl fleet unpin removes it"
					     : ": left; etcdctl del removes it");
			s = &kept[n_kept];
			s->key_hash = p->key_hash;
			s->mod_revision = p->mod_revision;
			s->since = now;
		} else {
			kept[n_kept] = *s;
			s = &kept[n_kept];
		}
		n_kept++;
		if (p->owner != CTL_PIN_OWNER_FINISHED || !p->node[0] ||
		    d->conf.unpin_after_s == 0 || now - s->since < d->conf.unpin_after_s * 1000ull)
			continue;
		/* Bounded, and only while this driver still leads: the rest
		 * are deleted by a later look (or by the next leader). */
		if (unpins >= PINS_UNPIN_PER_LOOK || !keep_lease(d) || d->leader_create == 0)
			continue;
		unpins++;
		struct ctl_rstore_leader leader = {.create_revision = d->leader_create,
						   .lease = d->lease};
		if (ctl_rstore_unpin(d->e, d->conf.facility, p->node, p->mod_revision, true,
				     &leader, &d->pinset, &gone, &err) == 0) {
			fwd_log(FWD_LOG_NOTICE,
				"fleet (%s): deleted the pin of node %s (table %s of rollout %s, "
				"finished): it follows desired again",
				d->conf.facility, gone.node, gone.table, gone.rollout);
			n_kept--;
			strays--;
			pthread_mutex_lock(&d->lock);
			d->unpinned++;
			pthread_mutex_unlock(&d->lock);
		} else if (err.reason_code == FWD_R_STALE_GENERATION) {
			/* A compare that failed is no error: the pin or the
			 * rollout changed, and is looked at again next time;
			 * or the leader key is no longer ours, which ends the
			 * leading here as a step's failed commit does. */
			still_leader(d);
		} else if (s->warned != (int)err.reason_code) {
			/* Another failure is said once for this pin and cause,
			 * then retried quietly. */
			fwd_log(FWD_LOG_WARNING, "fleet (%s): cannot delete the pin of node %s: %s",
				d->conf.facility, p->node, err.reason);
			s->warned = (int)err.reason_code;
		}
	}
	if (d->leader_create == 0) {
		/* Lost on the way (keep_lease): what was seen is the next
		 * leader's to see again, from its own sight. */
		free(kept);
		return;
	}
	free(d->strays);
	d->strays = kept;
	d->n_strays = n_kept;
	pthread_mutex_lock(&d->lock);
	d->stray_pins = strays;
	d->pins_truncated = d->pinset.truncated;
	pthread_mutex_unlock(&d->lock);
}

static void *run(void *arg)
{
	struct ctl_rdriver *d = arg;

	for (;;) {
		uint64_t wait = d->conf.poll_ms;

		bool campaigned = d->leader_create == 0;

		if (campaigned)
			campaign(d);
		/* Told to stop during the campaign (the regiond is shutting
		 * down): no step is driven on a leadership won on the way out;
		 * the lease, and with it the key, is revoked below, and the
		 * status read after the stop does not say it led (it never
		 * acted as the leader). */
		if (stopping(d)) {
			if (campaigned && d->leader_create) {
				fwd_log(FWD_LOG_INFO,
					"fleet rollout driver (%s): won the leadership while "
					"stopping: gives it up at once",
					d->conf.facility);
				pthread_mutex_lock(&d->lock);
				d->leader = false;
				d->leader_node[0] = '\0'; /* not us, and no other known */
				pthread_mutex_unlock(&d->lock);
			}
			break;
		}
		if (d->leader_create && keep_lease(d)) {
			wait = drive(d);
			/* drive() may have lost the leadership (a commit's
			 * compare): only the leader looks at the pins. */
			if (d->leader_create)
				look_at_pins(d);
		}
		/* A follower looks for a vacancy at a third of the lease (its
		 * own keepalive's pace), at least every second: a fleet of 50
		 * followers costs etcd a few reads a second, and a takeover
		 * comes within 4/3 of the lease. */
		if (d->leader_create == 0)
			wait = d->conf.lease_s * 1000u / 3 > 1000 ? d->conf.lease_s * 1000u / 3
								  : 1000;
		if (nap(d, wait))
			break;
	}
	if (d->lease) {
		struct fwd_err err;

		ctl_etcd_lease_revoke(d->e, d->lease, &err);
	}
	/* A leadership given up unsure: its key may still be on that lease,
	 * and would hold the next leader off for a whole lease. */
	if (d->gone_lease) {
		struct fwd_err err;

		ctl_etcd_lease_revoke(d->e, d->gone_lease, &err);
	}
	return NULL;
}

struct ctl_rdriver *ctl_rdriver_start(const struct ctl_rdriver_conf *conf, struct fwd_err *err)
{
	struct ctl_rdriver *d = calloc(1, sizeof(*d));

	if (d == NULL)
		goto nomem;
	d->conf = *conf;
	if (d->conf.lease_s == 0)
		d->conf.lease_s = 10;
	if (d->conf.lease_s < 3)
		d->conf.lease_s = 3;
	if (d->conf.poll_ms == 0)
		d->conf.poll_ms = 500;
	/* The record's beat: a third of the lease, as the leader's keepalive
	 * (18 writes a minute at the default lease; the leader already reads
	 * the record and every report each poll), at least a second. */
	d->beat_ms = d->conf.lease_s * 1000u / 3 > 1000 ? d->conf.lease_s * 1000u / 3 : 1000;
	d->r = malloc(sizeof(*d->r));
	d->reports = calloc(CTL_ROLLOUT_NODES_MAX, sizeof(*d->reports));
	d->seen = calloc(CTL_ROLLOUT_NODES_MAX, sizeof(*d->seen));
	d->pins = calloc(CTL_ROLLOUT_NODES_MAX, sizeof(*d->pins));
	d->stray_pins = -1;
	if (d->r == NULL || d->reports == NULL || d->seen == NULL || d->pins == NULL)
		goto nomem;
	d->e = ctl_etcd_create(&d->conf.etcd, err);
	if (d->e == NULL)
		goto fail;
	pthread_mutex_init(&d->lock, NULL);
	fwd_cond_init_mono(&d->wake);
	fwd_steady_init(&d->clock);
	if (pthread_create(&d->thread, NULL, run, d) != 0) {
		ctl_etcd_free(d->e);
		goto nomem;
	}
	return d;
nomem:
	fwd_err_fail(err, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
fail:
	if (d) {
		free(d->r);
		free(d->reports);
		free(d->seen);
		free(d->pins);
	}
	free(d);
	return NULL;
}

void ctl_rdriver_stop(struct ctl_rdriver *d)
{
	if (d == NULL || d->joined)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	/* The thread sees stop in its nap and after a campaign: it finishes
	 * the pass it is in (its campaign or step, and up to
	 * PINS_UNPIN_PER_LOOK unpins) and counts each outcome before it
	 * quits, so the status read after this says all it did. */
	pthread_join(d->thread, NULL);
	d->joined = true;
}

void ctl_rdriver_free(struct ctl_rdriver *d)
{
	if (d == NULL)
		return;
	ctl_rdriver_stop(d);
	ctl_etcd_free(d->e);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->wake);
	free(d->r);
	free(d->reports);
	free(d->seen);
	free(d->pins);
	free(d->strays);
	free(d);
}

int64_t ctl_rdriver_now_ms(const struct ctl_rdriver *d)
{
	return fwd_steady_ms(&d->clock);
}

json_t *ctl_rdriver_status(struct ctl_rdriver *d)
{
	json_t *j;

	pthread_mutex_lock(&d->lock);
	j = json_pack("{s:b, s:s, s:b, s:s, s:I, s:I, s:o, s:o, s:o, s:b, s:I}", "leader",
		      d->leader, "leader_node", d->leader_node, "paused", d->paused, "last_error",
		      d->last_error, "steps", (json_int_t)d->steps, "commits",
		      (json_int_t)d->commits, "rollout",
		      d->rollout[0] ? json_string(d->rollout) : json_null(), "state",
		      d->state[0] ? json_string(d->state) : json_null(), "stray_pins",
		      d->leader && d->stray_pins >= 0 ? json_integer(d->stray_pins) : json_null(),
		      "pins_truncated", d->leader && d->pins_truncated, "unpinned",
		      (json_int_t)d->unpinned);
	pthread_mutex_unlock(&d->lock);
	return j;
}

static json_t *ext_status(void *arg, const struct fwd_table *t)
{
	(void)t;
	return ctl_rdriver_status(arg);
}

static void ext_metrics(void *arg, const struct fwd_table *t, FILE *out)
{
	struct ctl_rdriver *d = arg;

	(void)t;
	pthread_mutex_lock(&d->lock);
	ctl_metrics_family(out, "regiond_fleet_rollout_leader",
			   "1 when this regiond holds its facility's rollout/leader key", "gauge");
	ctl_metrics_sample(out, "regiond_fleet_rollout_leader", d->leader, "facility",
			   d->conf.facility, NULL);
	ctl_metrics_family(out, "regiond_fleet_rollout_paused",
			   "1 when the rollout driver cannot reach etcd or read the rollout "
			   "(it writes nothing meanwhile)",
			   "gauge");
	ctl_metrics_sample(out, "regiond_fleet_rollout_paused", d->paused, "facility",
			   d->conf.facility, NULL);
	ctl_metrics_family(out, "regiond_fleet_rollout_active",
			   "1 with the state of the rollout this leader drives", "gauge");
	if (d->leader && d->state[0])
		ctl_metrics_sample(out, "regiond_fleet_rollout_active", 1, "facility",
				   d->conf.facility, "state", d->state, NULL);
	ctl_metrics_family(out, "regiond_fleet_stray_pins",
			   "pins no active rollout owns, as the leader last saw them", "gauge");
	if (d->leader && d->stray_pins >= 0)
		ctl_metrics_sample(out, "regiond_fleet_stray_pins", d->stray_pins, "facility",
				   d->conf.facility, NULL);
	ctl_metrics_family(out, "regiond_fleet_unpinned_total",
			   "stray pins of finished rollouts this regiond deleted as the leader",
			   "counter");
	ctl_metrics_sample(out, "regiond_fleet_unpinned_total", (double)d->unpinned, "facility",
			   d->conf.facility, NULL);
	ctl_metrics_family(out, "regiond_fleet_rollout_steps_total",
			   "rollout steps this driver ran as the leader", "counter");
	ctl_metrics_sample(out, "regiond_fleet_rollout_steps_total", (double)d->steps, "facility",
			   d->conf.facility, NULL);
	ctl_metrics_family(out, "regiond_fleet_rollout_commits_total",
			   "rollout steps this driver committed to etcd (one transaction each)",
			   "counter");
	ctl_metrics_sample(out, "regiond_fleet_rollout_commits_total", (double)d->commits,
			   "facility", d->conf.facility, NULL);
	pthread_mutex_unlock(&d->lock);
}

struct ctl_ext ctl_rdriver_ext(struct ctl_rdriver *d)
{
	return (struct ctl_ext){
		.name = "rollouts", .arg = d, .status = ext_status, .metrics = ext_metrics};
}
