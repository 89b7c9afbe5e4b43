#define _GNU_SOURCE /* pipe2 */
#include "ctl_feed.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctl_bird.h"
#include "ctl_confirm.h"
#include "ctl_metrics.h"
#include "ctl_owned.h"
#include "ctl_ownset.h"
#include "fwd_log.h"
#include "fwd_clock.h"
#include "fwd_table.h"

/* The netlink receive buffer: a routing daemon installing a full table
 * sends hundreds of thousands of messages while the feed may be busy
 * applying a batch; past this the kernel drops them (ENOBUFS) and the feed
 * resyncs with a dump. */
#define FEED_RCVBUF (64 << 20)
#define FEED_RECV_BUF (1 << 18)
/* Changes per delta: a batch larger than this (a whole table at start)
 * goes in several, each a write of its own, so reads and other writers
 * get their turn in between. */
#define FEED_MAX_BATCH 262144
/* A routing daemon that came back relearns its routes over a few seconds:
 * until then what the feed added and no longer sees is kept, not removed.
 * The wait lasts until the learned prefixes have not grown past their
 * peak for this long, at most FEED_SETTLE_MAX_MS and what is left of the
 * hold time: a fixed 5 s withdrew, then re-added, 55,000 of 100,000
 * still-announced prefixes when a BIRD on a slow link took 12 s to relearn
 * them (a hostile probe). Growth past the peak, not any route event: a
 * full table's routine churn would otherwise keep every removal back for
 * the whole hold (a review). */
#define FEED_SETTLE_MS 5000
#define FEED_SETTLE_MAX_MS 60000
/* A dump that verifies what notifications cannot tell (a delete of one of
 * several routes for a prefix, a unicast route replaced by a blackhole,
 * routes the kernel flushes with a link or address without RTM_DELROUTE)
 * runs at most this often, however many ask for it: until then the
 * prefixes concerned stay as they were. */
#define FEED_VERIFY_MS 1000
/* And a full dump this often whatever happened: what no notification
 * reports is found within this time (docs/bgp-feed.md). */
#define FEED_RESYNC_MS (300 * 1000)
/* Tries of a batch while regionfwd does not answer, whatever the sync says. */
#define FEED_DP_AWAY_RETRY_MS (30 * 1000)
/* A loss whose cause keeps changing (a session flapping listed before one
 * steadily down; a BIRD crash-looping between "No such file" and
 * "Connection refused") logs a cause it has not named during this loss at
 * most this often, and the few it named not again: each 1 s poll once
 * logged the alternation. */
#define FEED_CAUSE_LOG_MS (30 * 1000)
#define FEED_CAUSES_SEEN 4
#define FEED_OVER_LOG_MS (30 * 1000) /* overflow lines, at most this often */
#define FEED_LISTED 32 /* shadowed prefixes listed in GET /v1/feed */
#define FEED_LISTED_SUMMARY 8 /* and in GET /v1/status */
#define ALARM_PREFIX "bgp feed: "

enum feed_state { FS_DOWN, FS_UP, FS_HOLDING, FS_WITHDRAWN };
static const char *const state_names[] = {"down", "up", "holding", "withdrawn"};

struct ctl_feed {
	struct ctl_feed_conf c;
	char bird_socket[108], state_dir[256];
	struct ctl_state *st;
	struct ctl_rib *rib;
	struct ctl_owned *owned;
	pthread_t thread;
	int started;
	atomic_int stop;
	int wake[2]; /* ctl_feed_free wakes the thread's poll */

	/* The thread's own (no lock): */
	struct mnl_socket *nl; /* subscribed to route changes */
	char *buf; /* FEED_RECV_BUF */
	char nl_error[160];
	int synced; /* the RIB is a dump plus every change since */
	int dumping; /* route_cb reads a dump, not notifications */
	int verify; /* a notification left the tables' content unknown: dump */
	int64_t next_verify, next_resync; /* CLOCK_MONOTONIC ms */
	int dump_intr; /* the kernel says the dump was inconsistent */
	int overflowed; /* a route was refused past max_prefixes since the last dump */
	/* The overflow is logged once per episode: from the first refusal
	 * until the learned set drops below 90 % of the max (over_said), and
	 * at most every FEED_OVER_LOG_MS across episodes. Keyed on the first
	 * refused prefix, it was logged again at each dump (every resync)
	 * that refused another one first. */
	int over_said;
	int64_t over_log_ms; /* CLOCK_MONOTONIC ms, 0: never */
	int bird_ok; /* BIRD answered and every BGP session is established */
	char bird_error[200];
	struct ctl_bird_session sessions[CTL_BIRD_MAX_SESSIONS];
	int nsessions; /* listed: every one down among them, up to 32 */
	int total_sessions; /* every BGP session BIRD reports */
	unsigned down_sessions; /* of them, not established */
	int64_t bird_at; /* CLOCK_MONOTONIC ms of the last answer (or attempt) */
	enum feed_state state;
	int64_t lost_ms; /* when the feed was lost (or regiond started) */
	int64_t state_since; /* unix seconds */
	int64_t settle_until; /* ms: removals wait until then (FEED_SETTLE_MS) */
	int64_t settle_cap; /* ms: ... and never past this (FEED_SETTLE_MAX_MS, the hold) */
	uint64_t settle_peak; /* the most prefixes learned since the feed was back */
	/* Back from a hold and not yet compared in full (set when it comes
	 * back, cleared at the comparison): a loss meanwhile continues the
	 * hold. settle_until alone left a window between its passing and
	 * the tick that compares (a review). */
	int settling_after_loss;
	int resync_on_recovery; /* lost since the last dump: dump again when back */
	int need_full; /* compare every prefix, not only changed ones */
	int withdraw_done;
	int snap_due; /* a batch ran: refresh the status snapshot now */
	uint64_t gen_seen; /* regiond's generation the feed last reconciled with */
	int64_t retry_ms; /* after a failed apply: not before this */
	/* The last apply failed because regionfwd did not answer: the next
	 * waits until regiond's sync (every second) hears it again, or
	 * FEED_DP_AWAY_RETRY_MS after dp_away_since. Each try writes the
	 * additions ahead to feed-owned and the pending record, then undoes
	 * them: a regionfwd down for an hour cost 3600 of each. */
	int dp_away;
	int64_t dp_away_since;
	char why[256]; /* why the feed is not up */
	/* What makes it not up (cause_of) at the last look: a change of
	 * cause while it is not up is logged, not the info BIRD updates each
	 * second for the same session; the causes already named during this
	 * loss (the state change's, the lines' since) are not named again,
	 * and a line is logged at most every FEED_CAUSE_LOG_MS, with how many
	 * changes it sums up. */
	char cause_now[256];
	char causes_seen[FEED_CAUSES_SEEN][256];
	unsigned ncauses_seen, cause_changes;
	int64_t cause_line_ms; /* CLOCK_MONOTONIC ms, 0: none yet */
	char last_error[512];
	uint64_t resyncs, batches, events;
	uint64_t batches_failed; /* batches not applied as a whole (retried) */
	uint64_t withdrawals; /* RTM_DELROUTE since the last batch while up */
	/* Losses of an up feed, and holds that ran out. A hold lasts
	 * --feed-hold seconds, often less than an operator's (or a test's)
	 * look takes: what a past loss did stays readable here, not only in
	 * the log. The loss at start (nothing followed yet) is not one. */
	uint64_t losses, hold_expiries;
	struct {
		int open; /* this loss goes on: not up again yet */
		int64_t time; /* unix seconds when it began (0: none yet) */
		int64_t withdrawn_after_ms, up_after_ms; /* -1: not (yet) */
		char reason[256];
	} loss;
	/* The owned prefixes the running table lacks while a commit-confirm
	 * generation awaits confirmation (confirm_json), and what it was
	 * counted for: counted again only when one of them changed. A walk
	 * of every owned prefix under the state lock at each snapshot (four
	 * a second) took hundreds of ms at 1M owned prefixes, stalling the
	 * API, the revert timer and the confirm itself (a review). */
	struct {
		uint64_t confirm_gen, gen, owned_version, n;
		const struct fwd_table *table;
	} cw;
	/* The conflicting prefixes listed, and the RIB's conflict version
	 * they were listed at (+1; 0: none yet): listed again only when it
	 * changed. A walk of every slot (2M at 1M prefixes) at each snapshot,
	 * four a second, while a few prefixes conflicted (a review). */
	struct {
		uint64_t version;
		struct ctl_rib_pfx p[FEED_LISTED];
		uint16_t mask[FEED_LISTED];
		unsigned holder[FEED_LISTED], n;
		uint8_t refused[FEED_LISTED];
	} cf;
	/* The same for the shadowed prefixes (ctl_rib_shadow_version): they
	 * were walked for at each snapshot while any was shadowed. */
	struct {
		uint64_t version;
		struct ctl_rib_pfx p[FEED_LISTED];
		unsigned region[FEED_LISTED], n;
	} sh;
	int64_t orphans; /* recorded prefixes of regions no longer followed */
	struct ctl_ownset *orphan_set; /* which, at start only (named in the log) */
	struct {
		int64_t time;
		uint32_t changes, added, removed, refused, applies;
		int64_t duration_ms, generation;
	} last;

	/* The status snapshot, refreshed by the thread, read by the API. */
	pthread_mutex_t snap_lock;
	json_t *snap;
};

int ctl_feed_conf_table(struct ctl_feed_conf *c, const char *arg, struct fwd_err *e)
{
	const char *eq = strchr(arg, '=');
	char name[FWD_NAME_MAX], *end;
	unsigned long long t;

	if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof(name))
		return fwd_err_set(e, NULL, 0, "--feed-table",
				   "--feed-table takes REGION=TABLE (india=101), not '%s'", arg);
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = '\0';
	if (fwd_name_check(name) || strcmp(name, "unknown") == 0 || strcmp(name, "any") == 0)
		return fwd_err_set(e, NULL, 0, "--feed-table",
				   "--feed-table %s: '%s' is not a region's name", arg, name);
	errno = 0;
	t = strtoull(eq + 1, &end, 10);
	if (errno || *end || end == eq + 1 || t == 0 || t > UINT32_MAX || (t >= 253 && t <= 255))
		return fwd_err_set(e, NULL, 0, "--feed-table",
				   "--feed-table %s: the table is a number 1..4294967295 other "
				   "than 253 (default), 254 (main) and 255 (local)",
				   arg);
	/* Which of the two is given twice, and where else. */
	for (unsigned i = 0; i < c->ntables; i++) {
		if (strcmp(c->region[i], name) == 0)
			return fwd_err_set(
				e, NULL, 0, "--feed-table",
				"--feed-table %s: region '%s' is given twice (tables %" PRIu32
				" and %llu): one table per region",
				arg, name, c->table[i], t);
		if (c->table[i] == t)
			return fwd_err_set(
				e, NULL, 0, "--feed-table",
				"--feed-table %s: table %llu is given for both %s and %s: "
				"one region per table",
				arg, t, c->region[i], name);
	}
	if (c->ntables == CTL_RIB_MAX_REGIONS)
		return fwd_err_set(e, NULL, 0, "--feed-table", "at most %d --feed-table",
				   CTL_RIB_MAX_REGIONS);
	snprintf(c->region[c->ntables], sizeof(c->region[0]), "%s", name);
	c->table[c->ntables++] = (uint32_t)t;
	return 0;
}

/* --- the table the feed reconciles with: regiond's current one --- */

static int tb_region_id(void *arg, const char *name)
{
	struct ctl_feed *f = arg;
	int id = f->st->table ? fwd_table_region_id(f->st->table, name) : -ENOENT;

	return id > 0 ? id : -ENOENT; /* 0 is 'unknown': never a feed's */
}

static int tb_held_by(void *arg, const struct ctl_rib_pfx *p)
{
	return ctl_ownset_held_by(((struct ctl_feed *)arg)->st->table, p);
}

static int64_t tb_apply(void *arg, const struct fwd_delta *d, struct fwd_err *e)
{
	struct ctl_feed *f = arg;
	struct ctl_state *st = f->st;
	struct fwd_delta_stats stats;
	char who[sizeof(st->who)];
	int64_t gen;

	snprintf(who, sizeof(who), "%s", st->who);
	snprintf(st->who, sizeof(st->who), "regiond (bgp feed)");
	/* A change clears the TABLE alarm only: the feed's own slot stays
	 * until what it is about ends. The generation records that its
	 * additions are the feed's (a rollback to it knows them). */
	st->delta_feed = 1;
	gen = ctl_state_apply_delta(st, d, "regiond", "bgp feed", -1, &stats, e);
	st->delta_feed = 0;
	snprintf(st->who, sizeof(st->who), "%s", who);
	return gen;
}

/* The table's own checks of @d against the current table, applying
 * nothing (ctl_rib_table.check): a retry of a refused prefix that is
 * refused again writes nothing ahead. The extensions' checks are left to
 * the apply, which a check that passes goes on to. */
static int tb_check(void *arg, const struct fwd_delta *d, struct fwd_err *e)
{
	struct ctl_feed *f = arg;
	struct fwd_table *t = NULL;

	if (f->st->table == NULL)
		return 0; /* the apply says so */
	if (fwd_delta_apply(f->st->table, d, &t, NULL, NULL, e))
		return -1;
	fwd_table_free(t);
	return 0;
}

static int tb_record(void *arg, const struct ctl_rib_pfx *p, const char *region, int owned)
{
	return ctl_owned_record(((struct ctl_feed *)arg)->owned, p, region, owned);
}

static int tb_commit(void *arg, struct fwd_err *e)
{
	return ctl_owned_commit(((struct ctl_feed *)arg)->owned, e);
}

/* --- netlink --- */

static int region_of_table(const struct ctl_feed *f, uint32_t table)
{
	for (unsigned i = 0; i < f->c.ntables; i++)
		if (f->c.table[i] == table)
			return (int)i;
	return -1;
}

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, RTA_MAX) < 0)
		return MNL_CB_OK; /* a newer kernel's attribute */
	tb[type] = a;
	return MNL_CB_OK;
}

/* A link, address or nexthop event: the kernel removes the IPv4 routes
 * through a device that goes down or away, or through an address or a
 * nexthop object that goes, without an RTM_DELROUTE for each; a dump
 * tells which are left. */
static void link_event(struct ctl_feed *f, const struct nlmsghdr *nlh)
{
	struct ctl_rib_stats s;

	if (nlh->nlmsg_type == RTM_NEWLINK) {
		const struct ifinfomsg *ifi;

		if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifi)))
			return;
		ifi = mnl_nlmsg_get_payload(nlh);
		if ((ifi->ifi_flags & IFF_UP) || !(ifi->ifi_change & IFF_UP))
			return; /* up, or no change of up: no route removed */
	}
	ctl_rib_stats(f->rib, &s);
	if (s.learned)
		f->verify = 1;
}

/* One RTM_NEWROUTE / RTM_DELROUTE, from a dump or a notification (or a
 * link, address or nexthop event). Anything that is not a unicast route
 * of a followed table is ignored; a message too short for what it claims
 * is ignored too (the kernel's, so never seen in practice, but never read
 * past). */
static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ctl_feed *f = data;
	const struct nlattr *tb[RTA_MAX + 1] = {0};
	const struct rtmsg *rm;
	struct ctl_rib_pfx p = {0};
	uint32_t table;
	int region, rc;

	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
		f->dump_intr = 1;
	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
	case RTM_DELADDR:
	case RTM_DELNEXTHOP:
		if (!f->dumping)
			link_event(f, nlh);
		return MNL_CB_OK;
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		break;
	default:
		return MNL_CB_OK;
	}
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*rm)))
		return MNL_CB_OK;
	rm = mnl_nlmsg_get_payload(nlh);
	if ((rm->rtm_family != AF_INET && rm->rtm_family != AF_INET6) ||
	    (rm->rtm_flags & RTM_F_CLONED))
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*rm), attr_cb, tb) < 0)
		return MNL_CB_OK;
	table = rm->rtm_table;
	if (tb[RTA_TABLE] && mnl_attr_get_payload_len(tb[RTA_TABLE]) == 4)
		table = mnl_attr_get_u32(tb[RTA_TABLE]);
	if ((region = region_of_table(f, table)) < 0)
		return MNL_CB_OK;
	p.family = rm->rtm_family == AF_INET ? 4 : 6;
	p.len = rm->rtm_dst_len;
	if (p.len > (p.family == 4 ? 32 : 128))
		return MNL_CB_OK;
	if (tb[RTA_DST]) {
		if (mnl_attr_get_payload_len(tb[RTA_DST]) != (p.family == 4 ? 4u : 16u))
			return MNL_CB_OK;
		memcpy(p.addr, mnl_attr_get_payload(tb[RTA_DST]), p.family == 4 ? 4 : 16);
	}
	/* Host bits zero, as the table wants them (the kernel keeps them so). */
	for (unsigned b = 0; b < 16; b++) {
		unsigned keep = p.len >= (b + 1) * 8 ? 8 : p.len > b * 8 ? p.len - b * 8 : 0;

		p.addr[b] &= (uint8_t)(0xff00u >> keep);
	}
	if (rm->rtm_type != RTN_UNICAST) {
		/* Not a prefix (blackhole, unreachable, prohibit ...). But one
		 * that replaced a unicast route (ip route replace blackhole)
		 * took that route out of the table, and says so only by its
		 * type: whether a unicast route for the prefix is left, a dump
		 * tells. */
		if (nlh->nlmsg_type == RTM_NEWROUTE && !f->dumping &&
		    ctl_rib_learned_in(f->rib, &p, (unsigned)region))
			f->verify = 1;
		return MNL_CB_OK;
	}
	f->events++;
	if (nlh->nlmsg_type == RTM_DELROUTE) {
		f->withdrawals++;
		if (ctl_rib_forget(f->rib, &p, (unsigned)region) > 0)
			f->verify = 1; /* another route for it may be left */
		return MNL_CB_OK;
	}
	rc = ctl_rib_learn(f->rib, &p, (unsigned)region);
	if (rc == -ENOSPC)
		f->overflowed = 1;
	/* Known already, and not a replacement of its route: a second route
	 * for the prefix (another metric, appended), or several nexthops
	 * that go one by one (IPv6). Its deletes are then verified. */
	if ((rc == 0 && !(nlh->nlmsg_flags & NLM_F_REPLACE)) ||
	    (tb[RTA_MULTIPATH] && rm->rtm_family == AF_INET6)) /* IPv4: one route, one delete */
		ctl_rib_more_routes(f->rib, &p);
	return MNL_CB_OK;
}

static void close_nl(struct ctl_feed *f, const char *why)
{
	if (f->nl)
		mnl_socket_close(f->nl);
	f->nl = NULL;
	f->synced = 0;
	snprintf(f->nl_error, sizeof(f->nl_error), "%s", why);
}

static int open_nl(struct ctl_feed *f)
{
	int size = FEED_RCVBUF, fd;

	f->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	/* Routes, and the link and address events that flush routes without
	 * a notification for each (route_cb). */
	if (f->nl == NULL || mnl_socket_bind(f->nl,
					     RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE | RTMGRP_LINK |
						     RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
					     MNL_SOCKET_AUTOPID) < 0) {
		char why[160];

		snprintf(why, sizeof(why), "netlink: %s", strerror(errno));
		close_nl(f, why);
		return -1;
	}
	fd = mnl_socket_get_fd(f->nl);
	{
		/* Nexthop objects (a group past the 32 bits of bind): a kernel
		 * without them refuses, and has none to delete. */
		int grp = RTNLGRP_NEXTHOP;

		setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp));
	}
	/* As root past rmem_max; else as large as the system allows. Lost
	 * messages are reported (ENOBUFS, NETLINK_NO_ENOBUFS stays off): the
	 * feed then dumps again rather than guess. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	f->nl_error[0] = '\0';
	return 0;
}

/* Dump the routes of @family on a socket of its own, so the notifications
 * that arrive meanwhile wait on the subscribed socket and are applied after
 * the dump, in order: what the RIB ends with is what the kernel has. */
static int dump_family(struct ctl_feed *f, int family)
{
	struct mnl_socket *s = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	struct timeval tv = {.tv_sec = 10};
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct rtmsg *rm;
	unsigned seq = (unsigned)time(NULL), portid;
	int rc = 0;

	if (s == NULL)
		return -errno;
	if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		goto out;
	}
	setsockopt(mnl_socket_get_fd(s), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	portid = mnl_socket_get_portid(s);
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	rm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rm));
	rm->rtm_family = (unsigned char)family;
	if (mnl_socket_sendto(s, nlh, nlh->nlmsg_len) < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(s, f->buf, FEED_RECV_BUF);
		int r;

		if (n < 0) {
			rc = -errno;
			break;
		}
		r = mnl_cb_run(f->buf, (size_t)n, seq, portid, route_cb, f);
		if (r == MNL_CB_STOP)
			break;
		if (r < 0) {
			rc = -errno;
			break;
		}
	}
out:
	mnl_socket_close(s);
	return rc;
}

/* Read and drop every notification waiting on the subscribed socket. */
static void drain_nl(struct ctl_feed *f)
{
	for (int i = 0; f->nl && i < 1 << 16; i++) {
		ssize_t n = mnl_socket_recvfrom(f->nl, f->buf, FEED_RECV_BUF);

		if (n < 0 && errno != ENOBUFS && errno != EINTR)
			return; /* EAGAIN: none left; an error: read_nl() says it */
	}
}

/* A fresh dump of every followed table: the RIB becomes what the kernel
 * has. Nothing is applied meanwhile (this thread applies). */
/* Learn the tables afresh from a dump. The RIB marks what changed, so the
 * next batch applies the difference as one delta; with @full (start, lost
 * messages, recovery) every prefix is compared as well, else (a
 * verification, the periodic dump) nothing else is retried. */
static void resync(struct ctl_feed *f, int full)
{
	f->dumping = 1;
	for (int attempt = 0; attempt < 3; attempt++) {
		int rc;

		/* Notifications already queued tell of changes the dump will
		 * show: replayed on top of it they would be applied twice (a
		 * delete of one of two routes, queued, then replayed on a dump
		 * that saw one route, withdrew a prefix the kernel still has).
		 * Dropped first; a change during the dump interrupts it
		 * (NLM_F_DUMP_INTR) and the dump is taken again. */
		drain_nl(f);
		ctl_rib_forget_all(f->rib);
		f->dump_intr = 0;
		f->overflowed = 0;
		rc = dump_family(f, AF_INET);
		if (rc == 0)
			rc = dump_family(f, AF_INET6);
		if (rc == 0 && !f->dump_intr) {
			if (ctl_rib_relearned(f->rib))
				full = 1; /* changes not marked: compare everything */
			f->dumping = 0;
			f->synced = 1;
			f->verify = 0;
			f->next_resync = fwd_mono_ms() + FEED_RESYNC_MS;
			f->resyncs++;
			f->need_full = f->need_full || full;
			f->resync_on_recovery = 0;
			f->nl_error[0] = '\0';
			return;
		}
		snprintf(f->nl_error, sizeof(f->nl_error), "netlink dump: %s",
			 rc ? strerror(-rc) : "interrupted by changes");
	}
	/* Not synced: the feed counts as lost and the next loop tries again.
	 * The RIB stays relearning, each prefix keeping the region that held
	 * it before the first try (a partial dump taken as the truth would
	 * move a prefix two regions' tables hold to the lowest one); the
	 * dump that succeeds then compares everything. */
	f->need_full = 1;
	f->dumping = 0;
	f->synced = 0;
}

/* Every notification waiting, for at most @budget_ms (a flood must not
 * hold off the batches). */
static void read_nl(struct ctl_feed *f, int64_t budget_ms)
{
	int64_t end = fwd_mono_ms() + budget_ms;

	while (f->nl) {
		ssize_t n = mnl_socket_recvfrom(f->nl, f->buf, FEED_RECV_BUF);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (errno == ENOBUFS) {
				/* Messages were lost: what the RIB holds is unknown.
				 * They may have been a dropped session's withdrawals
				 * (a flood of them is what overflows the socket), so
				 * they count as one: the batch after the dump asks
				 * BIRD first, as for a withdrawal read (tick()). */
				fwd_log(FWD_LOG_WARNING,
					"bgp feed: netlink messages lost (ENOBUFS): resyncing");
				f->synced = 0;
				f->withdrawals++;
				continue;
			}
			char why[160];

			snprintf(why, sizeof(why), "netlink: %s", strerror(errno));
			fwd_log(FWD_LOG_ERR, "bgp feed: %s", why);
			close_nl(f, why);
			return;
		}
		if (f->synced)
			mnl_cb_run(f->buf, (size_t)n, 0, 0, route_cb, f);
		if (fwd_mono_ms() >= end)
			return;
	}
}

/* --- session state --- */

static void poll_bird(struct ctl_feed *f)
{
	char why[200] = "";
	unsigned down = 0;
	int n = ctl_bird_sessions(f->bird_socket, 2000, f->sessions, CTL_BIRD_MAX_SESSIONS, &down,
				  why, sizeof(why));

	f->bird_at = fwd_mono_ms();
	if (n < 0) {
		f->nsessions = f->total_sessions = 0;
		f->down_sessions = 0;
		f->bird_ok = 0;
		snprintf(f->bird_error, sizeof(f->bird_error), "%s", why);
		return;
	}
	/* Every session is judged, also past those listed: one down among
	 * hundreds is a loss like one among two. */
	f->nsessions = n < CTL_BIRD_MAX_SESSIONS ? n : CTL_BIRD_MAX_SESSIONS;
	f->total_sessions = n;
	f->down_sessions = down;
	f->bird_ok = n > 0 && down == 0;
	f->bird_error[0] = '\0';
	if (n == 0)
		snprintf(f->bird_error, sizeof(f->bird_error), "BIRD has no BGP protocol");
	for (int i = 0; i < f->nsessions; i++)
		if (!f->sessions[i].up) {
			char more[64] = "";

			if (down > 1)
				snprintf(more, sizeof(more),
					 "; %u of %d sessions are not established", down, n);
			/* BIRD gives no info for a protocol that is disabled
			 * (`disabled;`, birdc disable): no empty parentheses. */
			snprintf(f->bird_error, sizeof(f->bird_error),
				 "BGP session %s is %s%s%s%s%s", f->sessions[i].name,
				 f->sessions[i].state, f->sessions[i].info[0] ? " (" : "",
				 f->sessions[i].info, f->sessions[i].info[0] ? ")" : "", more);
			break;
		}
	if (down && f->bird_error[0] == '\0') /* never: those down are listed first */
		snprintf(f->bird_error, sizeof(f->bird_error),
			 "%u BGP sessions are not established", down);
}

/* --- state --- */

/* What makes the feed not up, as a cause the log names once: the netlink
 * socket, the first session down (not its info, which BIRD updates as it
 * retries: Connect, Active, the socket's error), or BIRD's reply. Empty
 * while the feed only resyncs (a dump at start or after a loss). */
static void cause_of(const struct ctl_feed *f, char *buf, size_t len)
{
	if (!f->nl) {
		snprintf(buf, len, "netlink");
		return;
	}
	if (f->c.bird_socket && !f->bird_ok) {
		for (int i = 0; i < f->nsessions; i++)
			if (!f->sessions[i].up) {
				snprintf(buf, len, "session %s", f->sessions[i].name);
				return;
			}
		snprintf(buf, len, "bird %s", f->bird_error);
		return;
	}
	if (!f->synced && f->nl_error[0]) {
		snprintf(buf, len, "dump %s", f->nl_error);
		return;
	}
	buf[0] = '\0';
}

/* Whether this loss's log named @cause already; @add: it does now (the
 * oldest of FEED_CAUSES_SEEN is forgotten). */
static int cause_seen(struct ctl_feed *f, const char *cause, int add)
{
	for (unsigned i = 0; i < f->ncauses_seen && i < FEED_CAUSES_SEEN; i++)
		if (strcmp(f->causes_seen[i], cause) == 0)
			return 1;
	if (add)
		snprintf(f->causes_seen[f->ncauses_seen++ % FEED_CAUSES_SEEN],
			 sizeof(f->causes_seen[0]), "%s", cause);
	return 0;
}

static void set_state(struct ctl_feed *f, enum feed_state s, const char *why)
{
	if (f->state == s)
		return;
	fwd_log(s == FS_UP ? FWD_LOG_NOTICE : FWD_LOG_WARNING, "bgp feed: %s -> %s%s%s",
		state_names[f->state], state_names[s], why[0] ? ": " : "", why);
	f->state = s;
	f->state_since = (int64_t)time(NULL);
	if (s == FS_UP) {
		f->cause_now[0] = '\0';
		f->ncauses_seen = 0;
		f->cause_changes = 0;
		f->cause_line_ms = 0; /* a new loss's first change waits for no old line */
	} else {
		cause_of(f, f->cause_now, sizeof(f->cause_now));
		if (f->cause_now[0])
			cause_seen(f, f->cause_now, 1); /* the line above named it */
	}
}

/* Not up, for a cause this loss's log has not named: said now, or once
 * FEED_CAUSE_LOG_MS has passed since the last such line. A feed down from
 * its start (a --feed-bird-socket that does not exist, a BIRD not
 * running) once logged nothing until its hold ran out, and a loss whose
 * cause changed (a session back, another down) nothing until the
 * withdrawal; then one whose cause alternated logged at each poll. */
static void log_cause(struct ctl_feed *f, int64_t now)
{
	char cause[sizeof(f->cause_now)], changes[64] = "";
	struct ctl_rib_stats s;
	const char *what;
	int64_t left = (int64_t)f->c.hold_s * 1000 - (now - f->lost_ms);

	cause_of(f, cause, sizeof(cause));
	if (f->state == FS_UP || cause[0] == '\0')
		return;
	if (strcmp(cause, f->cause_now) != 0) {
		snprintf(f->cause_now, sizeof(f->cause_now), "%s", cause);
		f->cause_changes++;
	}
	/* Named already, or too soon: a new cause that stays is named when
	 * the wait is over. */
	if (cause_seen(f, cause, 0) ||
	    (f->cause_line_ms && now - f->cause_line_ms < FEED_CAUSE_LOG_MS))
		return;
	cause_seen(f, cause, 1);
	f->cause_line_ms = now;
	if (f->cause_changes > 1)
		snprintf(changes, sizeof(changes), " (%u changes of cause since the last line)",
			 f->cause_changes);
	f->cause_changes = 0;
	ctl_rib_stats(f->rib, &s);
	/* At start (held from feed-owned, or nothing to hold) it is not a
	 * loss yet: "not up yet". With nothing owned nothing is withdrawn:
	 * "withdrawn in 90 s" at a start with an empty feed-owned misled. */
	what = f->loss.open		  ? "still lost, now"
	       : f->state == FS_WITHDRAWN ? "not up"
					  : "not up yet";
	if (f->state == FS_WITHDRAWN || s.owned == 0)
		fwd_log(FWD_LOG_WARNING, "bgp feed: %s: %s%s", what, f->why, changes);
	else
		fwd_log(FWD_LOG_WARNING,
			"bgp feed: %s: %s%s; the learned prefixes are withdrawn in %" PRId64
			" s if it stays so",
			what, f->why, changes, (left > 0 ? left : 0) / 1000);
}

static void update_state(struct ctl_feed *f, int64_t now)
{
	uint64_t hold = (uint64_t)f->c.hold_s * 1000;
	int ok = f->nl && f->synced && (!f->c.bird_socket || f->bird_ok);

	if (!f->nl)
		snprintf(f->why, sizeof(f->why), "%s", f->nl_error);
	else if (f->c.bird_socket && !f->bird_ok)
		snprintf(f->why, sizeof(f->why), "%s", f->bird_error);
	else if (!f->synced)
		snprintf(f->why, sizeof(f->why), "%s",
			 f->nl_error[0] ? f->nl_error : "resyncing with a dump");
	else
		f->why[0] = '\0';
	if (ok && f->resync_on_recovery) {
		/* Back: what the kernel has now, by a fresh dump, before
		 * anything is compared. */
		resync(f, 1);
		ok = f->synced;
	}
	if (ok) {
		if (f->state != FS_UP) {
			int after_loss = f->loss.open;

			if (f->loss.open) {
				f->loss.up_after_ms = now - f->lost_ms;
				f->loss.open = 0;
			}
			int64_t left =
				f->state == FS_HOLDING ? (int64_t)hold - (now - f->lost_ms) : 0;

			f->settle_until = now + (left < FEED_SETTLE_MS ? (left > 0 ? left : 0)
								       : FEED_SETTLE_MS);
			f->settle_cap = now + (left < FEED_SETTLE_MAX_MS ? (left > 0 ? left : 0)
									 : FEED_SETTLE_MAX_MS);
			f->settle_peak = 0;
			f->need_full = 1;
			f->withdraw_done = 0;
			/* Only a session's loss is continued by a loss while it
			 * settles (a flapping session, held once). The hold at
			 * start is regiond's own absence: a session lost while
			 * the feed relearns after a restart once got only what
			 * was left of that hold (0.7 of 2 s in a test; of 90 s,
			 * what a 60 s relearn left), and withdrew early. */
			f->settling_after_loss = f->state == FS_HOLDING && after_loss;
			set_state(f, FS_UP, "");
		}
		return;
	}
	if (f->state == FS_UP) {
		/* Lost again while it still settles after the last loss (it
		 * has not compared everything since: a session flapping
		 * faster than that) is the same loss: its hold runs on. A
		 * new hold at each flap once kept a withdrawn prefix, and
		 * the feed out of withdrawn, for as long as the flapping
		 * went on (a hostile probe). */
		if (!f->settling_after_loss) {
			f->lost_ms = now;
			f->losses++;
			f->loss.time = (int64_t)time(NULL);
			f->loss.withdrawn_after_ms = -1;
			snprintf(f->loss.reason, sizeof(f->loss.reason), "%s", f->why);
		}
		/* A new loss, or a flap while settling continuing the last
		 * one (only a recorded loss is continued): either way it goes
		 * on until the feed is up again. */
		f->loss.open = 1;
		f->loss.up_after_ms = -1;
		f->settling_after_loss = 0;
		f->resync_on_recovery = 1;
		set_state(f, FS_HOLDING, f->why);
	}
	if ((f->state == FS_HOLDING || f->state == FS_DOWN) &&
	    (uint64_t)(now - f->lost_ms) >= hold) {
		f->need_full = 1;
		f->hold_expiries++;
		if (f->loss.open)
			f->loss.withdrawn_after_ms = now - f->lost_ms;
		set_state(f, FS_WITHDRAWN, f->why);
	}
	log_cause(f, now);
}

/* The feed's alarm in its own slot (under the state lock): raised while
 * what it says holds, beside any other owner's, cleared by the feed. */
static void feed_alarm(struct ctl_feed *f, const char *text)
{
	if (text)
		ctl_state_alarm(f->st, CTL_ALARM_FEED, ALARM_PREFIX "%s", text);
	else
		ctl_state_alarm(f->st, CTL_ALARM_FEED, NULL);
}

static void alarms(struct ctl_feed *f)
{
	struct ctl_rib_stats s;
	char text[640];

	ctl_rib_stats(f->rib, &s);
	if (f->state == FS_WITHDRAWN)
		snprintf(text, sizeof(text),
			 "lost for over %u s (%s): the learned prefixes are withdrawn", f->c.hold_s,
			 f->why);
	else if (f->overflowed)
		snprintf(text, sizeof(text),
			 "more than --feed-max-prefixes %" PRIu64 " routes: %" PRIu64
			 " refused so far, the rest of the feed applies",
			 f->c.max_prefixes, s.overflow);
	else if (ctl_owned_trouble(f->owned))
		/* Once a warning in the log only, health healthy. */
		snprintf(text, sizeof(text),
			 "the record of the prefixes it added is not written (%.300s): batches "
			 "that change them wait until it is; a restart of regiond reads what was "
			 "last written there, or stops if that is not a file",
			 ctl_owned_trouble(f->owned));
	else
		text[0] = '\0';
	pthread_mutex_lock(f->st->lock);
	feed_alarm(f, text[0] ? text : NULL);
	pthread_mutex_unlock(f->st->lock);
}

/* --- batches --- */

struct adopt_ctx {
	struct ctl_feed *f;
	unsigned n;
	int rc;
};

static int adopt_one(void *arg, const struct ctl_rib_pfx *p, const char *region)
{
	struct adopt_ctx *a = arg;
	struct ctl_feed *f = a->f;
	int idx = -1, was, id;

	for (unsigned i = 0; i < f->c.ntables; i++)
		if (strcmp(f->c.region[i], region) == 0)
			idx = (int)i;
	/* A region --feed-table no longer names: static, as at start. */
	if (idx < 0 || (was = ctl_rib_owner(f->rib, p)) == idx)
		return 0;
	id = tb_region_id(f, region);
	if (id <= 0 || tb_held_by(f, p) != id)
		return 0;
	/* Owned in another region now: the table holds it where the feed had
	 * it then, so the next batch moves it where it is learned now. */
	if (was >= 0 && (a->rc = ctl_owned_record(f->owned, p, f->c.region[was], 0)))
		return a->rc;
	if ((a->rc = ctl_owned_record(f->owned, p, region, 1)) ||
	    (a->rc = ctl_rib_own(f->rib, p, idx)))
		return a->rc;
	a->n++;
	return 0;
}

static int put_owned(void *arg, const struct ctl_rib_pfx *p, const char *region)
{
	return ctl_ownset_put(arg, p, region);
}

/* Whether a document generation was made after generation @seen, the last
 * the feed compared (or it cannot tell: @seen is no longer listed). Not
 * only the current one's kind: a change of prefixes (a delta) made on top
 * of a rollback before the feed's next batch hid the rollback, and what
 * the feed had added to the generation rolled back to stayed static for
 * ever. The current delta's set, derived along the chain, holds it. */
static int document_since(const struct ctl_state *st, uint64_t seen)
{
	for (unsigned i = st->nhist; i-- > 0;) {
		if (st->hist[i].id <= seen)
			return 0;
		if (st->hist[i].kind == CTL_GEN_DOCUMENT)
			return 1;
	}
	return 1;
}

/* A generation the feed did not make is current (under the write lock).
 * A document (a full PUT, a rollback, an automatic revert) may hold
 * prefixes the feed had added to the generation it goes back to and does
 * not own now: the feed's again, recorded before anything compares them,
 * so that the routing daemon's routes decide (a withdrawn one goes, with
 * the usual hold and settling) where they once came back as static
 * prefixes for ever. A delta adds none (the feed's own are its own).
 * First time, a history from an older regiond that does not say what the
 * feed had added: the feed says what it owns now. @return 0, or -1 with
 * @e (the record): tried again with the batch. */
static int adopt(struct ctl_feed *f, const struct ctl_gen *cur, struct fwd_err *e)
{
	struct adopt_ctx a = {.f = f};
	struct ctl_ownset *s = NULL;
	struct fwd_err oe = {0};
	int rc;

	if (f->gen_seen && !document_since(f->st, f->gen_seen))
		return 0;
	rc = ctl_state_owned(f->st, cur, &s, &oe);
	if (rc < 0) {
		fwd_log(FWD_LOG_WARNING,
			"bgp feed: which prefixes of generation %" PRIu64
			" the feed had added cannot be read (%s): those it does not own now stay "
			"static",
			cur->id, oe.reason);
		return 0;
	}
	if (rc > 0) {
		uint64_t id = cur->id;

		if ((s = ctl_ownset_new()) == NULL || ctl_rib_foreach_owned(f->rib, put_owned, s) ||
		    ctl_state_own_bootstrap(f->st, s, &oe))
			fwd_log(FWD_LOG_WARNING,
				"bgp feed: the history (an older regiond's) does not say which "
				"prefixes the feed had added, and generation %" PRIu64
				" cannot record it: %s",
				id, oe.reason[0] ? oe.reason : "out of memory");
		else
			fwd_log(FWD_LOG_NOTICE,
				"bgp feed: the history (an older regiond's) does not say which "
				"prefixes the feed had added: generation %" PRIu64
				" records the %zu it owns now; a rollback to an older one brings "
				"back those it had added then as static prefixes",
				id, ctl_ownset_count(s));
		ctl_ownset_free(s);
		return 0;
	}
	ctl_ownset_foreach(s, adopt_one, &a);
	ctl_ownset_free(s);
	if (a.rc)
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory"), -1;
	if (a.n == 0)
		return 0;
	if (ctl_owned_commit(f->owned, e))
		return -1;
	fwd_log(FWD_LOG_NOTICE,
		"bgp feed: %u prefixes of generation %" PRIu64
		" are the feed's again (it had added them to the table rolled back to): the "
		"routing daemon's routes decide whether they stay",
		a.n, cur->id);
	return 0;
}

static void reconcile(struct ctl_feed *f, enum ctl_rib_mode mode, int64_t now)
{
	const struct ctl_rib_table tb = {
		.arg = f,
		.region_id = tb_region_id,
		.held_by = tb_held_by,
		.apply = tb_apply,
		.record = tb_record,
		.commit = tb_commit,
		.check = tb_check,
	};
	struct ctl_rib_batch b;
	struct ctl_rib_stats s;
	struct fwd_err e = {0};
	const struct ctl_gen *cur;
	char gen[48];
	int64_t t0;
	int full, rc, seen;

	ctl_rib_stats(f->rib, &s);
	pthread_mutex_lock(f->st->lock);
	cur = ctl_state_current(f->st);
	full = f->need_full || (cur && cur->id != f->gen_seen);
	/* dp_report_ms is when regionfwd last answered the sync's status call. */
	if (f->dp_away && ((f->st->dp_report != NULL && f->st->dp_report_ms > f->dp_away_since) ||
			   now >= f->dp_away_since + FEED_DP_AWAY_RETRY_MS))
		f->dp_away = 0;
	/* Not before regiond first heard regionfwd at this start: whether it
	 * holds back is not known yet (ctl_state_delta_ready would refuse the
	 * batch, logged as a failure at every start). */
	seen = f->st->dp_seen;
	pthread_mutex_unlock(f->st->lock);
	if (cur == NULL || (!full && s.pending == 0) || now < f->retry_ms || f->dp_away || !seen)
		return;
	t0 = fwd_mono_ms();
	ctl_state_write_begin(f->st);
	cur = ctl_state_current(f->st);
	full = f->need_full || (cur && cur->id != f->gen_seen);
	/* Nothing is compared while the table refuses every change (a
	 * generation unsaved or pending, a commit-confirm): each retry would
	 * write the additions ahead to feed-owned and undo them, and a
	 * comparison with a table a pending generation is about to replace
	 * would disown the prefixes that generation adds (at start: they
	 * would then stay in the table as static ones). */
	if (ctl_state_delta_ready(f->st, &e) ||
	    (cur && cur->id != f->gen_seen && adopt(f, cur, &e))) {
		memset(&b, 0, sizeof(b));
		b.failed = 1;
		rc = -1;
	} else {
		rc = ctl_rib_reconcile(f->rib, &tb, mode, full, FEED_MAX_BATCH, &b, &e);
		cur = ctl_state_current(f->st);
		if (cur)
			f->gen_seen = cur->id;
	}
	ctl_state_write_end(f->st);
	if (rc == 0 || !b.failed)
		f->need_full = 0;
	if (rc) {
		char buf[512];

		/* Not a change's fault (regionfwd away, a confirm pending, the
		 * disk): all of it is tried again in a second, logged once. */
		fwd_err_str(&e, buf, sizeof(buf));
		if (strcmp(buf, f->last_error) != 0)
			fwd_log(FWD_LOG_WARNING,
				"bgp feed: batch not applied (retried every second%s): %s",
				e.reason_code == FWD_R_DATAPLANE_UNAVAILABLE
					? ", or once regionfwd answers again"
					: "",
				buf);
		snprintf(f->last_error, sizeof(f->last_error), "%s", buf);
		f->batches_failed++;
		f->retry_ms = fwd_mono_ms() + 1000;
		if (e.reason_code == FWD_R_DATAPLANE_UNAVAILABLE) {
			f->dp_away = 1;
			f->dp_away_since = fwd_mono_ms();
		}
		f->need_full = f->need_full || full;
	} else {
		f->last_error[0] = '\0';
	}
	if (rc == 0 && b.left == 0 && mode == CTL_RIB_WITHDRAW)
		f->withdraw_done = 1;
	if (b.refused_new) {
		/* Each refusal once, when it begins or its reason changes (the
		 * first few of a batch; the status keeps the last
		 * CTL_RIB_MAX_REASONS, one per prefix). A standing one retried
		 * at each full comparison once logged again every time. */
		unsigned n =
			b.refused_new < CTL_RIB_BATCH_NEWS ? b.refused_new : CTL_RIB_BATCH_NEWS;

		for (unsigned i = 0; i < n; i++) {
			char p[64];

			fwd_log(FWD_LOG_WARNING, "bgp feed: %s for region %s refused: %s",
				ctl_rib_pfx_str(&b.news[i].p, p, sizeof(p)), b.news[i].region,
				b.news[i].reason);
		}
		if (b.refused_new > n)
			fwd_log(FWD_LOG_WARNING,
				"bgp feed: and %u more prefixes refused (regionctl status lists "
				"the last %d)",
				b.refused_new - n, CTL_RIB_MAX_REASONS);
	}
	if (b.applies == 0)
		return;
	f->snap_due = 1; /* GET /v1/feed shows a batch as soon as it ran */
	f->batches++;
	f->last.time = (int64_t)time(NULL);
	f->last.changes = b.added + b.removed + b.refused;
	f->last.added = b.added;
	f->last.removed = b.removed;
	f->last.refused = b.refused;
	f->last.applies = b.applies;
	f->last.duration_ms = fwd_mono_ms() - t0;
	f->last.generation = b.generation;
	/* A batch that applied nothing (all refused) made no generation:
	 * there is no generation 0 to name. */
	if (b.generation > 0)
		snprintf(gen, sizeof(gen), "generation %" PRId64, b.generation);
	else
		snprintf(gen, sizeof(gen), "no new generation");
	fwd_log(b.refused ? FWD_LOG_WARNING : FWD_LOG_INFO,
		"bgp feed: batch: %u added, %u removed, %u refused in %" PRId64
		" ms (%u applies), %s%s",
		b.added, b.removed, b.refused, f->last.duration_ms, b.applies, gen,
		mode == CTL_RIB_WITHDRAW ? " (withdrawn: the feed was lost past its hold)" : "");
}

/* The prefixes refused past --feed-max-prefixes, named (the first few):
 * the count alone did not say which routes regiond does not follow. Once
 * per overflow episode (f->over_said). */
static void log_overflow(struct ctl_feed *f, int64_t now)
{
	struct ctl_rib_pfx p[CTL_RIB_OVER_NAMED];
	unsigned reg[CTL_RIB_OVER_NAMED], n;
	uint64_t since;
	char list[CTL_RIB_OVER_NAMED * 80] = "", b[64], more[96] = "";
	size_t at = 0;

	n = ctl_rib_overflowed(f->rib, p, reg, CTL_RIB_OVER_NAMED, &since);
	if (n == 0 || f->over_said || (f->over_log_ms && now - f->over_log_ms < FEED_OVER_LOG_MS))
		return;
	f->over_said = 1;
	f->over_log_ms = now;
	for (unsigned i = 0; i < n && at < sizeof(list); i++)
		at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s (%s)", i ? ", " : "",
				       ctl_rib_pfx_str(&p[i], b, sizeof(b)), f->c.region[reg[i]]);
	/* The count is of route messages, not prefixes (a prefix's second
	 * route, or its route announced again, counts again): said so, since
	 * "and N more" read as N more prefixes. Distinct prefixes would need
	 * a set of what is refused, which the bound is there to not keep. */
	if (since > n)
		snprintf(more, sizeof(more), "; %" PRIu64 " route messages refused so far", since);
	fwd_log(FWD_LOG_WARNING,
		"bgp feed: more than --feed-max-prefixes %" PRIu64 ": refused %s%s (not followed "
		"until the learned prefixes drop below 90 %% of it; GET /v1/feed: "
		"overflow_prefixes)",
		f->c.max_prefixes, list, more);
}

static void tick(struct ctl_feed *f, int64_t now)
{
	struct ctl_rib_stats s;
	struct fwd_err e;
	int rc;

	ctl_rib_stats(f->rib, &s);
	if (f->state == FS_UP && f->c.bird_socket && s.pending && f->withdrawals) {
		/* A withdrawal is applied only once BIRD, asked after it came,
		 * says the sessions are up: a session that just dropped has its
		 * routes withdrawn by BIRD before the next poll would tell.
		 * Announcements alone need no such check (BIRD, busy exporting a
		 * full table, answers slowly). */
		poll_bird(f);
		update_state(f, now);
	}
	if (f->state == FS_UP)
		f->withdrawals = 0;
	if (f->state == FS_UP) {
		int settling;

		/* More prefixes than ever since it was back: still relearning. */
		if (now < f->settle_until && s.learned > f->settle_peak) {
			int64_t until = now + FEED_SETTLE_MS;

			f->settle_peak = s.learned;
			if (until > f->settle_cap)
				until = f->settle_cap;
			if (until > f->settle_until)
				f->settle_until = until;
		}
		settling = now < f->settle_until;

		if (!settling && f->settle_until) {
			f->settle_until = 0;
			f->need_full = 1; /* what was kept while settling, compared now */
		}
		reconcile(f, settling ? CTL_RIB_KEEP : CTL_RIB_FOLLOW, now);
		if (!settling)
			f->settling_after_loss = 0; /* compared: a loss now is a new one */
	} else {
		/* Held: nothing learned meanwhile is applied. But a change of
		 * the table (a full PUT carries the static prefixes only) must
		 * not take out what the feed holds: put back as it was. And a
		 * rollback's prefixes that are the feed's (adopt) are held too,
		 * or withdrawn with the rest. */
		const struct ctl_gen *cur;
		int changed;

		pthread_mutex_lock(f->st->lock);
		cur = ctl_state_current(f->st);
		changed = cur && cur->id != f->gen_seen;
		pthread_mutex_unlock(f->st->lock);
		if (f->state == FS_WITHDRAWN && (!f->withdraw_done || f->need_full || changed)) {
			f->need_full = 1;
			reconcile(f, CTL_RIB_WITHDRAW, now);
		} else if ((f->state == FS_HOLDING || f->state == FS_DOWN) &&
			   (changed || (f->need_full && (f->state == FS_HOLDING || s.owned)))) {
			reconcile(f, CTL_RIB_HOLD, now);
		}
	}
	if (f->overflowed)
		log_overflow(f, now);
	/* The episode ends once the learned set is well under the max: an
	 * overflow after it is logged again (the rate limit aside). */
	if (f->over_said && f->synced && s.learned < f->c.max_prefixes - f->c.max_prefixes / 10)
		f->over_said = 0;
	/* Space again after an overflow: the refused routes are only in the
	 * kernel now, so dump again to learn them. */
	if (f->overflowed && s.learned < f->c.max_prefixes - f->c.max_prefixes / 10 && f->synced) {
		fwd_log(FWD_LOG_NOTICE, "bgp feed: below --feed-max-prefixes again: resyncing");
		f->synced = 0;
	}
	ctl_rib_stats(f->rib, &s);
	rc = ctl_owned_compact(f->owned, f->rib, s.owned, now, &e);
	if (rc < 0)
		fwd_log(FWD_LOG_WARNING, "bgp feed: %s", e.reason);
	else if (rc > 0)
		fwd_log(FWD_LOG_NOTICE,
			"bgp feed: the record of owned prefixes is rewritten again");
	alarms(f);
}

/* --- status --- */

static json_t *pfx_json(const struct ctl_rib_pfx *p)
{
	char b[64];

	return json_string(ctl_rib_pfx_str(p, b, sizeof(b)));
}

/* Seconds as JSON, null for "not (yet)" (-1). */
static json_t *secs_or_null(int64_t ms)
{
	return ms < 0 ? json_null() : json_real((double)ms / 1000.0);
}

/* The last loss (null before the first): what a hold did stays readable
 * after the hold, which is often shorter than a look takes. */
static json_t *loss_json(const struct ctl_feed *f)
{
	if (f->loss.time == 0)
		return json_null();
	return json_pack("{s:I, s:s, s:o, s:o}", "time", (json_int_t)f->loss.time, "reason",
			 f->loss.reason, "withdrawn_after_s",
			 secs_or_null(f->loss.withdrawn_after_ms), "up_after_s",
			 secs_or_null(f->loss.up_after_ms));
}

struct out_ctx {
	const struct fwd_table *t;
	uint64_t n;
};

static int count_out(void *arg, const struct ctl_rib_pfx *p, const char *region)
{
	struct out_ctx *o = arg;
	int id = fwd_table_region_id(o->t, region);

	o->n += id <= 0 || ctl_ownset_held_by(o->t, p) != id;
	return 0;
}

/* While a commit-confirm generation awaits confirmation the feed applies
 * nothing, and that generation (a PUT carries the static prefixes only)
 * lacks what the feed owns: its prefixes are out of forwarding until the
 * confirm or the revert, while owned and pending said all was well (a
 * tester's report). NULL when no confirmation is awaited. Walks what the
 * feed owns only then, and only when the confirm generation, the current
 * one or the owned set changed since the last count (f->cw). */
static json_t *confirm_json(struct ctl_feed *f)
{
	struct out_ctx o = {0};
	const struct ctl_gen *cur;
	uint64_t gen, ov = ctl_rib_owned_version(f->rib);
	int64_t left;
	char text[320];

	pthread_mutex_lock(f->st->lock);
	gen = f->st->confirm_gen;
	left = gen ? ctl_confirm_left_s(f->st) : 0;
	cur = ctl_state_current(f->st);
	o.t = f->st->table;
	if (gen && o.t &&
	    (gen != f->cw.confirm_gen || !cur || cur->id != f->cw.gen || o.t != f->cw.table ||
	     ov != f->cw.owned_version)) {
		ctl_rib_foreach_owned(f->rib, count_out, &o);
		f->cw.confirm_gen = gen;
		f->cw.gen = cur ? cur->id : 0;
		f->cw.table = o.t;
		f->cw.owned_version = ov;
		f->cw.n = o.n;
	} else if (gen && o.t) {
		o.n = f->cw.n;
	}
	pthread_mutex_unlock(f->st->lock);
	if (gen == 0)
		return json_null();
	if (o.n)
		snprintf(text, sizeof(text),
			 "generation %" PRIu64 " awaits confirmation: the %" PRIu64
			 " learned prefixes it lacks are not in the running table until it is "
			 "confirmed (the feed's next batch adds them) or reverted (in %" PRId64
			 " s)",
			 gen, o.n, left);
	else
		snprintf(text, sizeof(text),
			 "generation %" PRIu64
			 " awaits confirmation: the feed applies nothing until "
			 "it is confirmed or reverted (in %" PRId64 " s)",
			 gen, left);
	return json_pack("{s:I, s:I, s:I, s:s}", "generation", (json_int_t)gen, "reverts_in_s",
			 (json_int_t)left, "owned_not_in_table", (json_int_t)o.n, "text", text);
}

static json_t *build_status(struct ctl_feed *f, int64_t now)
{
	struct ctl_rib_refusal ref[CTL_RIB_MAX_REASONS];
	struct ctl_rib_pfx cf[FEED_LISTED], ov[CTL_RIB_OVER_NAMED];
	unsigned cfh[FEED_LISTED], ovr[CTL_RIB_OVER_NAMED], nref, ncf, nov;
	uint16_t cfm[FEED_LISTED];
	uint8_t cfr[FEED_LISTED];
	int in_table[CTL_RIB_MAX_REGIONS];
	struct ctl_rib_stats s;
	json_t *j, *tables = json_array(), *refusals = json_array(), *shadowed = json_array(),
		   *conflicting = json_array(), *over = json_array(), *bird = json_null();

	ctl_rib_stats(f->rib, &s);
	/* Whether regiond's table has each region (null without a table): a
	 * mistyped --feed-table region shows before its routes are refused. */
	pthread_mutex_lock(f->st->lock);
	for (unsigned i = 0; i < f->c.ntables; i++)
		in_table[i] = f->st->table == NULL
				      ? -1
				      : fwd_table_region_id(f->st->table, f->c.region[i]) > 0;
	pthread_mutex_unlock(f->st->lock);
	for (unsigned i = 0; i < f->c.ntables; i++)
		json_array_append_new(
			tables,
			json_pack("{s:s, s:I, s:I, s:I, s:o}", "region", f->c.region[i], "table",
				  (json_int_t)f->c.table[i], "learned_v4",
				  (json_int_t)s.learned4[i], "learned_v6",
				  (json_int_t)s.learned6[i], "in_table",
				  in_table[i] < 0 ? json_null() : json_boolean(in_table[i])));
	nref = ctl_rib_refusals(f->rib, ref, CTL_RIB_MAX_REASONS);
	for (unsigned i = 0; i < nref; i++)
		json_array_append_new(refusals, json_pack("{s:o, s:s, s:s, s:I}", "prefix",
							  pfx_json(&ref[i].p), "region",
							  ref[i].region, "reason", ref[i].reason,
							  "time", (json_int_t)ref[i].when));
	/* Which prefixes, in which regions' tables: "conflicting 1" alone
	 * named neither the prefix nor the regions. */
	if (f->cf.version != ctl_rib_conflict_version(f->rib) + 1) {
		f->cf.n = ctl_rib_conflicting(f->rib, f->cf.p, f->cf.mask, f->cf.holder,
					      f->cf.refused, FEED_LISTED);
		f->cf.version = ctl_rib_conflict_version(f->rib) + 1;
	}
	ncf = f->cf.n;
	memcpy(cf, f->cf.p, ncf * sizeof(cf[0]));
	memcpy(cfm, f->cf.mask, ncf * sizeof(cfm[0]));
	memcpy(cfh, f->cf.holder, ncf * sizeof(cfh[0]));
	memcpy(cfr, f->cf.refused, ncf * sizeof(cfr[0]));
	for (unsigned i = 0; i < ncf; i++) {
		json_t *rs = json_array();

		for (unsigned k = 0; k < f->c.ntables; k++)
			if (cfm[i] & (1u << k))
				json_array_append_new(rs, json_string(f->c.region[k]));
		/* refused: the holder's route is in no table (the refusals
		 * say why); "held by" alone read as if the table had it */
		json_array_append_new(conflicting,
				      json_pack("{s:o, s:o, s:s, s:b}", "prefix", pfx_json(&cf[i]),
						"regions", rs, "held_by", f->c.region[cfh[i]],
						"refused", cfr[i]));
	}
	nov = ctl_rib_overflowed(f->rib, ov, ovr, CTL_RIB_OVER_NAMED, NULL);
	for (unsigned i = 0; i < nov; i++)
		json_array_append_new(over, json_pack("{s:o, s:s}", "prefix", pfx_json(&ov[i]),
						      "region", f->c.region[ovr[i]]));
	if (f->sh.version != ctl_rib_shadow_version(f->rib) + 1) {
		f->sh.n = ctl_rib_shadowed(f->rib, f->sh.p, f->sh.region, FEED_LISTED);
		f->sh.version = ctl_rib_shadow_version(f->rib) + 1;
	}
	for (unsigned i = 0; i < f->sh.n; i++)
		json_array_append_new(shadowed,
				      json_pack("{s:o, s:s}", "prefix", pfx_json(&f->sh.p[i]),
						"region", f->c.region[f->sh.region[i]]));
	if (f->c.bird_socket) {
		json_t *ss = json_array();

		for (int i = 0; i < f->nsessions; i++)
			json_array_append_new(
				ss, json_pack("{s:s, s:s, s:s, s:b}", "name", f->sessions[i].name,
					      "state", f->sessions[i].state, "info",
					      f->sessions[i].info, "up", f->sessions[i].up));
		bird = json_pack("{s:s, s:b, s:o, s:I, s:I, s:I, s:s?}", "socket", f->bird_socket,
				 "reachable", f->bird_error[0] == '\0' || f->nsessions > 0,
				 "sessions", ss, "sessions_total", (json_int_t)f->total_sessions,
				 "sessions_down", (json_int_t)f->down_sessions, "sessions_unlisted",
				 (json_int_t)(f->total_sessions - f->nsessions), "error",
				 f->bird_error[0] ? f->bird_error : NULL);
	}
	j = json_pack("{s:s, s:I, s:s?, s:I, s:o, s:s?, s:o, s:o}", "state", state_names[f->state],
		      "since", (json_int_t)f->state_since, "reason", f->why[0] ? f->why : NULL,
		      "hold_s", (json_int_t)f->c.hold_s, "netlink",
		      json_pack("{s:b, s:b, s:I, s:s?}", "open", f->nl != NULL, "synced", f->synced,
				"events", (json_int_t)f->events, "error",
				f->nl_error[0] ? f->nl_error : NULL),
		      "last_error", f->last_error[0] ? f->last_error : NULL, "bird", bird, "tables",
		      tables);
	if (j == NULL)
		return NULL;
	if (f->state == FS_HOLDING || (f->state == FS_DOWN && s.owned)) {
		int64_t left = (int64_t)f->c.hold_s * 1000 - (now - f->lost_ms);

		json_object_set_new(j, "hold_left_s", json_real(left > 0 ? left / 1000.0 : 0));
	}
	json_object_set_new(j, "learned", json_integer((json_int_t)s.learned));
	json_object_set_new(j, "owned", json_integer((json_int_t)s.owned));
	json_object_set_new(j, "shadowed", json_integer((json_int_t)s.shadowed));
	json_object_set_new(j, "shadowed_prefixes", shadowed);
	json_object_set_new(j, "conflicting", json_integer((json_int_t)s.conflicting));
	json_object_set_new(j, "conflicting_prefixes", conflicting);
	json_object_set_new(j, "refused", json_integer((json_int_t)s.refused));
	json_object_set_new(j, "refusals", refusals);
	json_object_set_new(j, "overflow", json_integer((json_int_t)s.overflow));
	json_object_set_new(j, "overflow_prefixes", over);
	json_object_set_new(j, "max_prefixes", json_integer((json_int_t)f->c.max_prefixes));
	json_object_set_new(j, "pending", json_integer((json_int_t)s.pending));
	json_object_set_new(j, "batch_ms", json_integer((json_int_t)f->c.batch_ms));
	json_object_set_new(j, "batches", json_integer((json_int_t)f->batches));
	json_object_set_new(j, "batches_failed", json_integer((json_int_t)f->batches_failed));
	json_object_set_new(j, "resyncs", json_integer((json_int_t)f->resyncs));
	json_object_set_new(j, "losses", json_integer((json_int_t)f->losses));
	json_object_set_new(j, "hold_expiries", json_integer((json_int_t)f->hold_expiries));
	json_object_set_new(j, "last_loss", loss_json(f));
	json_object_set_new(j, "confirm_wait", confirm_json(f));
	json_object_set_new(j, "last_batch",
			    f->last.time ? json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
						     "time", (json_int_t)f->last.time, "changes",
						     (json_int_t)f->last.changes, "added",
						     (json_int_t)f->last.added, "removed",
						     (json_int_t)f->last.removed, "refused",
						     (json_int_t)f->last.refused, "applies",
						     (json_int_t)f->last.applies, "duration_ms",
						     (json_int_t)f->last.duration_ms, "generation",
						     (json_int_t)f->last.generation)
					 : json_null());
	return j;
}

static void snapshot(struct ctl_feed *f, int64_t now)
{
	json_t *j = build_status(f, now), *old;

	if (j == NULL)
		return;
	pthread_mutex_lock(&f->snap_lock);
	old = f->snap;
	f->snap = j;
	pthread_mutex_unlock(&f->snap_lock);
	json_decref(old);
}

/* --- the thread --- */

static void *feed_main(void *arg)
{
	struct ctl_feed *f = arg;
	int64_t next_tick = 0, next_bird = 0, next_snap = 0, next_nl = 0;

	while (!atomic_load(&f->stop)) {
		struct pollfd pf[2] = {
			{.fd = f->wake[0], .events = POLLIN},
			{.fd = f->nl ? mnl_socket_get_fd(f->nl) : -1, .events = POLLIN}};
		int64_t now = fwd_mono_ms(), wait = next_tick - now;

		poll(pf, 2, wait < 0 ? 0 : wait > f->c.batch_ms ? (int)f->c.batch_ms : (int)wait);
		if (atomic_load(&f->stop))
			break;
		/* An interval's worth at most before the next batch: each
		 * apply is a generation with a large fixed cost (written ahead,
		 * synced, swapped by regionfwd), so while a table streams in,
		 * fewer and larger batches converge sooner. */
		read_nl(f, f->c.batch_ms);
		now = fwd_mono_ms();
		if (f->nl == NULL && now >= next_nl) {
			next_nl = now + 1000;
			if (open_nl(f) == 0)
				fwd_log(FWD_LOG_NOTICE, "bgp feed: netlink socket open again");
		}
		if (f->c.bird_socket && now >= next_bird) {
			poll_bird(f);
			next_bird = now + 1000;
		}
		/* Never synced, messages lost, or room again after an overflow:
		 * a dump, before the state is judged (a failed one is tried
		 * again in a second, the feed counting as lost meanwhile). */
		if (f->nl && !f->synced && now >= next_nl) {
			resync(f, 1);
			if (!f->synced)
				next_nl = now + 1000;
		}
		/* What notifications could not tell (a delete of one of several
		 * routes, a route replaced by a blackhole, a link's routes
		 * flushed), coalesced; and every FEED_RESYNC_MS in any case. */
		if (f->nl && f->synced &&
		    ((f->verify && now >= f->next_verify) || now >= f->next_resync)) {
			f->next_verify = now + FEED_VERIFY_MS;
			resync(f, 0);
			if (!f->synced)
				next_nl = now + 1000;
		}
		now = fwd_mono_ms();
		update_state(f, now);
		if (now >= next_tick) {
			tick(f, now);
			next_tick = now + f->c.batch_ms;
		}
		if (now >= next_snap || f->snap_due) {
			f->snap_due = 0;
			snapshot(f, now);
			next_snap = now + 250;
		}
	}
	return NULL;
}

/* --- the extension --- */

static json_t *ext_status(void *arg, const struct fwd_table *t)
{
	struct ctl_feed *f = arg;
	json_t *j;

	pthread_mutex_lock(&f->snap_lock);
	j = f->snap ? json_deep_copy(f->snap) : json_pack("{s:s}", "state", "down");
	pthread_mutex_unlock(&f->snap_lock);
	if (j && t == NULL) { /* the summary in GET /v1/status: shorter lists */
		json_t *a;

		if ((a = json_object_get(j, "refusals")) != NULL)
			while (json_array_size(a) > FEED_LISTED_SUMMARY)
				json_array_remove(a, FEED_LISTED_SUMMARY);
		if ((a = json_object_get(j, "shadowed_prefixes")) != NULL)
			while (json_array_size(a) > FEED_LISTED_SUMMARY)
				json_array_remove(a, FEED_LISTED_SUMMARY);
		if ((a = json_object_get(j, "conflicting_prefixes")) != NULL)
			while (json_array_size(a) > FEED_LISTED_SUMMARY)
				json_array_remove(a, FEED_LISTED_SUMMARY);
	}
	return j;
}

static void counter(FILE *out, const char *name, const char *help, const char *type, json_t *v)
{
	ctl_metrics_family(out, name, help, type);
	ctl_metrics_sample(out, name, (double)json_integer_value(v), NULL);
}

static void ext_metrics(void *arg, const struct fwd_table *t, FILE *out)
{
	json_t *j = ext_status(arg, t), *v;
	const char *state = json_string_value(json_object_get(j, "state"));
	size_t i;

	(void)t;
	if (j == NULL)
		return;
	ctl_metrics_family(out, "regiond_feed_state", "the routing feed's state (1: this one)",
			   "gauge");
	for (unsigned k = 0; k < sizeof(state_names) / sizeof(state_names[0]); k++)
		ctl_metrics_sample(out, "regiond_feed_state",
				   state && strcmp(state, state_names[k]) == 0, "state",
				   state_names[k], NULL);
	ctl_metrics_family(out, "regiond_feed_hold_remaining_seconds",
			   "seconds before a lost feed's prefixes are withdrawn (0: not holding)",
			   "gauge");
	ctl_metrics_sample(out, "regiond_feed_hold_remaining_seconds",
			   json_number_value(json_object_get(j, "hold_left_s")), NULL);
	ctl_metrics_family(out, "regiond_feed_learned_prefixes",
			   "prefixes learned from the routing daemon's kernel tables", "gauge");
	json_array_foreach(json_object_get(j, "tables"), i, v) {
		const char *r = json_string_value(json_object_get(v, "region"));

		ctl_metrics_sample(out, "regiond_feed_learned_prefixes",
				   (double)json_integer_value(json_object_get(v, "learned_v4")),
				   "region", r, "family", "ipv4", NULL);
		ctl_metrics_sample(out, "regiond_feed_learned_prefixes",
				   (double)json_integer_value(json_object_get(v, "learned_v6")),
				   "region", r, "family", "ipv6", NULL);
	}
	counter(out, "regiond_feed_owned_prefixes", "prefixes the feed added to the table", "gauge",
		json_object_get(j, "owned"));
	/* Owned, yet out of the running table: a commit-confirm generation
	 * that lacks them, until it is confirmed or reverted. */
	v = json_object_get(json_object_get(j, "confirm_wait"), "owned_not_in_table");
	ctl_metrics_family(out, "regiond_feed_owned_not_in_table_prefixes",
			   "prefixes the feed owns that the running table lacks while a "
			   "commit-confirm generation awaits confirmation",
			   "gauge");
	ctl_metrics_sample(out, "regiond_feed_owned_not_in_table_prefixes",
			   (double)(v ? json_integer_value(v) : 0), NULL);
	counter(out, "regiond_feed_shadowed_prefixes",
		"learned prefixes not applied: a static prefix holds them", "gauge",
		json_object_get(j, "shadowed"));
	counter(out, "regiond_feed_conflicting_prefixes",
		"prefixes learned in more than one region's table", "gauge",
		json_object_get(j, "conflicting"));
	counter(out, "regiond_feed_refused_prefixes",
		"learned prefixes the table refused (residency, validation)", "gauge",
		json_object_get(j, "refused"));
	counter(out, "regiond_feed_overflow_total", "routes refused past --feed-max-prefixes",
		"counter", json_object_get(j, "overflow"));
	counter(out, "regiond_feed_batches_total", "batches the feed applied", "counter",
		json_object_get(j, "batches"));
	counter(out, "regiond_feed_batches_failed_total",
		"batches not applied (regionfwd away, a confirm pending, the disk: retried)",
		"counter", json_object_get(j, "batches_failed"));
	counter(out, "regiond_feed_resyncs_total", "netlink dumps the feed made", "counter",
		json_object_get(j, "resyncs"));
	counter(out, "regiond_feed_losses_total",
		"times the feed was lost while up (a BGP session down, BIRD or netlink away)",
		"counter", json_object_get(j, "losses"));
	counter(out, "regiond_feed_hold_expiries_total",
		"holds that ran out: the feed's prefixes withdrawn", "counter",
		json_object_get(j, "hold_expiries"));
	ctl_metrics_family(out, "regiond_feed_session_up",
			   "a BGP session BIRD reports (1: established)", "gauge");
	json_array_foreach(json_object_get(json_object_get(j, "bird"), "sessions"), i, v)
		ctl_metrics_sample(out, "regiond_feed_session_up",
				   json_is_true(json_object_get(v, "up")) ? 1.0 : 0.0, "session",
				   json_string_value(json_object_get(v, "name")), NULL);
	json_decref(j);
}

struct ctl_ext ctl_feed_ext(struct ctl_feed *f)
{
	return (struct ctl_ext){
		.name = "feed", .arg = f, .status = ext_status, .metrics = ext_metrics};
}

/* --- start and stop --- */

static int replay_owned(void *arg, const struct ctl_rib_pfx *p, const char *region, int owned)
{
	struct ctl_feed *f = arg;

	for (unsigned i = 0; i < f->c.ntables; i++)
		if (strcmp(f->c.region[i], region) == 0)
			return ctl_rib_own(f->rib, p, owned ? (int)i : -1);
	/* A region --feed-table no longer names: its prefixes stay where the
	 * feed put them, as static ones from now on (said at start, named). */
	f->orphans += owned ? 1 : -1;
	if (f->orphan_set == NULL && (f->orphan_set = ctl_ownset_new()) == NULL)
		return -ENOMEM;
	if (owned)
		return ctl_ownset_put(f->orphan_set, p, region);
	ctl_ownset_del(f->orphan_set, p);
	return 0;
}

/* The prefixes of one region no longer followed, for the log. */
struct orphan_region {
	char region[FWD_NAME_MAX];
	unsigned n;
	char list[320];
};
struct orphan_log {
	struct orphan_region r[8];
	unsigned nr, other; /* other: prefixes of regions past the 8 named */
};

static int orphan_one(void *arg, const struct ctl_rib_pfx *p, const char *region)
{
	struct orphan_log *o = arg;
	struct orphan_region *x = NULL;
	char b[64];
	size_t at;

	for (unsigned i = 0; i < o->nr && x == NULL; i++)
		if (strcmp(o->r[i].region, region) == 0)
			x = &o->r[i];
	if (x == NULL && o->nr == 8) {
		o->other++;
		return 0;
	}
	if (x == NULL) {
		x = &o->r[o->nr++];
		snprintf(x->region, sizeof(x->region), "%s", region);
	}
	if (x->n++ < 5) {
		at = strlen(x->list);
		snprintf(x->list + at, sizeof(x->list) - at, "%s%s", at ? " " : "",
			 ctl_rib_pfx_str(p, b, sizeof(b)));
	}
	return 0;
}

/* At start: what the feed had added to regions --feed-table no longer
 * names and the table still holds there, by region and prefix (the first
 * few): a count alone did not tell the operator what to remove. */
static void log_orphans(struct ctl_feed *f)
{
	struct orphan_log o;
	char text[3072];
	size_t at = 0;
	size_t n;

	memset(&o, 0, sizeof(o));
	if (f->orphan_set == NULL)
		return;
	pthread_mutex_lock(f->st->lock);
	if (f->st->table)
		ctl_ownset_keep_held(f->orphan_set, f->st->table);
	pthread_mutex_unlock(f->st->lock);
	n = ctl_ownset_count(f->orphan_set);
	ctl_ownset_foreach(f->orphan_set, orphan_one, &o);
	ctl_ownset_free(f->orphan_set);
	f->orphan_set = NULL;
	if (n == 0)
		return;
	text[0] = '\0';
	for (unsigned i = 0; i < o.nr && at < sizeof(text); i++) {
		char more[40] = "";

		if (o.r[i].n > 5)
			snprintf(more, sizeof(more), " and %u more", o.r[i].n - 5);
		at += (size_t)snprintf(text + at, sizeof(text) - at, "%s%s: %s%s", i ? "; " : "",
				       o.r[i].region, o.r[i].list, more);
	}
	fwd_log(FWD_LOG_WARNING,
		"bgp feed: %zu prefixes it added to regions that --feed-table no longer names stay "
		"in the table, as static ones: %s%s; remove them with regionctl prefixes remove "
		"REGION FILE if their routes are gone (docs/bgp-feed.md)",
		n, text, o.other ? " and more in other regions" : "");
}

/* At start: each --feed-table region the table does not have, said now
 * (with the table's name for it when only the case differs), not first
 * when its routes come and are refused: a mistyped region (India, mars)
 * was accepted without a word. Not refused: a later table may name it. */
static void warn_missing_regions(struct ctl_feed *f)
{
	pthread_mutex_lock(f->st->lock);
	for (unsigned i = 0; f->st->table && i < f->c.ntables; i++) {
		const struct fwd_table *t = f->st->table;
		char names[512] = "", hint[FWD_NAME_MAX + 32] = "";
		size_t at = 0;

		if (fwd_table_region_id(t, f->c.region[i]) > 0)
			continue;
		for (unsigned k = 1; k < t->nregions && at < sizeof(names); k++) {
			at += (size_t)snprintf(names + at, sizeof(names) - at, "%s%s",
					       k > 1 ? ", " : "", t->region_names[k]);
			if (strcasecmp(t->region_names[k], f->c.region[i]) == 0)
				snprintf(hint, sizeof(hint), " (did you mean '%s'?)",
					 t->region_names[k]);
		}
		fwd_log(FWD_LOG_WARNING,
			"bgp feed: --feed-table %s=%" PRIu32 ": region '%s' is not in the table%s: "
			"the routes of table %" PRIu32 " are refused until a table names it "
			"(the table's regions: %s)",
			f->c.region[i], f->c.table[i], f->c.region[i], hint, f->c.table[i],
			names[0] ? names : "none");
	}
	pthread_mutex_unlock(f->st->lock);
}

struct ctl_feed *ctl_feed_start(const struct ctl_feed_conf *c, struct ctl_state *st,
				struct fwd_err *e)
{
	struct ctl_feed *f = calloc(1, sizeof(*f));
	struct ctl_rib_stats s;

	if (f == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return NULL;
	}
	f->c = *c;
	f->wake[0] = f->wake[1] = -1;
	pthread_mutex_init(&f->snap_lock, NULL);
	if (c->bird_socket) {
		snprintf(f->bird_socket, sizeof(f->bird_socket), "%s", c->bird_socket);
		f->c.bird_socket = f->bird_socket;
	}
	snprintf(f->state_dir, sizeof(f->state_dir), "%s", c->state_dir);
	f->c.state_dir = f->state_dir;
	f->st = st;
	f->rib = ctl_rib_new((const char(*)[FWD_NAME_MAX])c->region, c->ntables, c->max_prefixes);
	f->buf = malloc(FEED_RECV_BUF);
	if (f->rib == NULL || f->buf == NULL || pipe2(f->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		goto fail;
	}
	f->owned = ctl_owned_open(c->state_dir, replay_owned, f, e);
	if (f->owned == NULL)
		goto fail;
	if (open_nl(f)) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "bgp feed: %s", f->nl_error);
		goto fail;
	}
	/* A "+" whose addition a crash kept from applying names a prefix the
	 * table does not hold: not the feed's, before anyone adds it as a
	 * static one (docs/bgp-feed.md, restarts). */
	{
		const struct ctl_rib_table tb = {.arg = f,
						 .region_id = tb_region_id,
						 .held_by = tb_held_by,
						 .record = tb_record};
		unsigned n;

		pthread_mutex_lock(st->lock);
		/* Not while a generation is pending: its prefixes (a batch
		 * written ahead, or one whose commit record the disk refused)
		 * may run in regionfwd and become current at the first sync;
		 * disowned now, they would stay in the table as if static. A
		 * later start, with nothing pending, disowns what is left. */
		n = st->has_pending ? 0 : ctl_rib_disown_unheld(f->rib, &tb);
		pthread_mutex_unlock(st->lock);
		/* Not written (a read-only or full state directory): kept
		 * in memory, and the record's rewrite, pending then, writes
		 * it; regiond starts either way. */
		if (n && ctl_owned_commit(f->owned, e)) {
			char b[1024];

			fwd_log(FWD_LOG_WARNING, "bgp feed: %s", fwd_err_str(e, b, sizeof(b)));
		}
		if (n)
			fwd_log(FWD_LOG_NOTICE,
				"bgp feed: %u recorded prefixes are not in the table (an addition "
				"a crash kept from applying): not the feed's",
				n);
	}
	log_orphans(f);
	warn_missing_regions(f);
	ctl_rib_stats(f->rib, &s);
	/* Until the feed is up, what it added is held as after a loss. */
	f->lost_ms = fwd_mono_ms();
	f->state = s.owned ? FS_HOLDING : FS_DOWN;
	f->state_since = (int64_t)time(NULL);
	snprintf(f->why, sizeof(f->why), "starting");
	fwd_log(FWD_LOG_NOTICE,
		"bgp feed: following %u kernel table(s), hold %u s, batches every %u ms, at most "
		"%" PRIu64 " prefixes%s%s; %" PRIu64 " prefixes added earlier are held",
		c->ntables, c->hold_s, c->batch_ms, c->max_prefixes,
		c->bird_socket ? ", BGP sessions from " : "", c->bird_socket ? c->bird_socket : "",
		s.owned);
	snapshot(f, fwd_mono_ms());
	if (pthread_create(&f->thread, NULL, feed_main, f)) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "cannot start the feed's thread");
		goto fail;
	}
	f->started = 1;
	return f;
fail:
	ctl_feed_free(f);
	return NULL;
}

void ctl_feed_stop(struct ctl_feed *f)
{
	if (f == NULL || !f->started)
		return;
	atomic_store(&f->stop, 1);
	if (write(f->wake[1], "x", 1) < 0) {
		/* the poll wakes within a batch interval anyway */
	}
	pthread_join(f->thread, NULL);
	f->started = 0;
}

void ctl_feed_free(struct ctl_feed *f)
{
	if (f == NULL)
		return;
	ctl_feed_stop(f);
	if (f->nl)
		mnl_socket_close(f->nl);
	if (f->wake[0] >= 0)
		close(f->wake[0]);
	if (f->wake[1] >= 0)
		close(f->wake[1]);
	ctl_owned_close(f->owned);
	ctl_ownset_free(f->orphan_set); /* a start that failed before naming them */
	ctl_rib_free(f->rib);
	free(f->buf);
	json_decref(f->snap);
	pthread_mutex_destroy(&f->snap_lock);
	free(f);
}
