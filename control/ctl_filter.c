#define _GNU_SOURCE /* struct ucred (SO_PEERCRED) */
#include "ctl_filter.h"
#include "fwd_log.h"

#include "fwd_names.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "ctl_metrics.h"
#include "fwd_filter.h"
#include "fwd_hash.h"
#include "fwd_clock.h"

/* One configured interface's state, at its slot in ctl_filter_conf.ifaces. */
struct filter_iface {
	char mode[96];
	/* An interface found without our program (removed and created again,
	 * its program detached by hand): said once, re-attached when it can. */
	int lost;
	uint32_t lost_to; /* the other program's id, when lost to one */
	/* The ifindex each interface was claimed by (ctl_filter_claim's at
	 * start), and the claim of a later one: an interface created again
	 * has another ifindex, and a second regiond given it (by an altname,
	 * say) could claim it, adopt our program and rewrite its rules. */
	unsigned claimed_idx;
	/* The ifindex whose claim another process holds (said once, tried
	 * again every second), 0 when none: status "claimed" false. */
	unsigned refused_idx;
	char attach_why[384]; /* the last failed attach's, said once */
	int64_t readopt_ms; /* CLOCK_MONOTONIC of the last try to adopt lost_to */
	int reclaim_fd;
	/* A detach that found an interface out of this network namespace
	 * (moved, renamed): our program may still run there. It is taken off
	 * when the interface is back; the pins stay until then. */
	int pending_detach;
};

struct ctl_filter {
	struct ctl_filter_conf conf;
	struct ctl_bpf *bpf;
	int adopted;
	struct filter_iface ifaces[CTL_FILTER_MAX_IFACES];
	/* A drop capture is open: set by its open (under the state lock),
	 * cleared by its close (outside it); a second open is refused. */
	int capturing;
	/* The program a capture still reads after a re-adoption (readopt())
	 * replaced f->bpf: freed by that capture's close. Both fields are
	 * read and written under names_lock, which the capture's close
	 * (outside the state lock) and the sync (inside it) both take. */
	struct ctl_bpf *retired;
	/* `regionctl filter detach` ran: the interfaces are left unfiltered
	 * on purpose, and nothing attaches again until a restart. */
	int detached;
	/* The generation this regiond last wrote into the maps, or found there
	 * at start: another value there was written by someone else (a second
	 * regiond that adopted the program), and re-applying over it every
	 * second would be a fight, each side's rules in turn. */
	uint32_t wrote_gen;
	int foreign_writer;
	/* What the live half holds, by section_sum(), once this regiond wrote
	 * it (live_known): a generation whose filters are the same moves only
	 * the generation number. Rewriting both halves for every generation
	 * (every feed batch: up to 10 a second) reset every rate limiter's
	 * state (a review: 11x a rule's rate under route churn) and cost
	 * seconds at a million prefixes. */
	uint64_t live_sum;
	int live_known;
	struct rule_ids *ids;
	/* The ids' names: written by an apply (under the state lock), read by
	 * a capture's reader, which runs without it; also capturing and
	 * retired, above. */
	pthread_mutex_t names_lock;
};

/*
 * Rule ids by name. The program counts each rule's hits under its rule id
 * (flt_rule_stats, one array for both halves); the ids were the rules'
 * positions in the table, so a table that inserted, removed or reordered
 * rules moved every count to whatever rule took the position (found by a
 * hostile probe: a new rule at the top showed the hits of the one it pushed
 * down, which read 0). regiond now gives ids by name: a rule keeps its id
 * (and counts) as long as it is in the table; a new name takes an id that
 * neither half uses, its counts zeroed before the flip that makes it live.
 * An id given up (its rule removed) is not handed out again by the next
 * update, while the half it lives in may still be finishing packets, and
 * new names take ids round the array, so they are reused as late as can be.
 * Each rule in the kernel carries a hash of its name (fwd_flt_rule.tag),
 * which is how a restarted regiond finds the ids again.
 *
 * Per id, its last names and from which generation on (newest first): what
 * names the rule of a drop a capture read, for the generation that decided
 * it, whatever changed since. "" means the id was free from then on.
 */
#define ID_HIST 3
struct id_hist {
	char name[FWD_NAME_MAX];
	uint32_t from;
};

struct rule_ids {
	struct id_hist h[FWD_FLT_MAX_RULES][ID_HIST];
	uint8_t busy[FWD_FLT_MAX_RULES]; /* the running half uses it, for a name unknown */
	uint16_t index[2 * FWD_FLT_MAX_RULES]; /* by name_tag(): id + 1, 0 empty */
	uint16_t cursor; /* where the next new name's id is looked for */
	int bound; /* found from the kernel (ctl_filter_bind) */
};

static uint32_t name_tag(const char *n)
{
	uint32_t h = 2166136261u;

	for (; *n; n++)
		h = (h ^ (uint8_t)*n) * 16777619u;
	return h ? h : 1;
}

static void ids_index(struct rule_ids *x)
{
	const uint32_t mask = 2 * FWD_FLT_MAX_RULES - 1;

	memset(x->index, 0, sizeof(x->index));
	for (uint32_t s = 0; s < FWD_FLT_MAX_RULES; s++) {
		uint32_t i;

		if (!x->h[s][0].name[0])
			continue;
		for (i = name_tag(x->h[s][0].name) & mask; x->index[i]; i = (i + 1) & mask)
			;
		x->index[i] = (uint16_t)(s + 1);
	}
}

/* The id @name holds in the running half, or -1. */
static int id_of(const struct rule_ids *x, const char *name)
{
	const uint32_t mask = 2 * FWD_FLT_MAX_RULES - 1;

	for (uint32_t i = name_tag(name) & mask; x->index[i]; i = (i + 1) & mask)
		if (!strcmp(x->h[x->index[i] - 1][0].name, name))
			return x->index[i] - 1;
	return -1;
}

static void id_push(struct rule_ids *x, uint32_t s, const char *name, uint32_t gen)
{
	if (!strcmp(x->h[s][0].name, name))
		return;
	memmove(&x->h[s][1], &x->h[s][0], sizeof(x->h[s][0]) * (ID_HIST - 1));
	snprintf(x->h[s][0].name, sizeof(x->h[s][0].name), "%s", name);
	x->h[s][0].from = gen;
}

/* The name id @s had in generation @gen, or NULL. A free entry defers to
 * the name before it: the program reads the generation after the half,
 * so a packet decided by the old half while the flip lands is labelled
 * with the new generation (an id is never reused by the very next one). */
static const char *id_name(const struct rule_ids *x, uint32_t s, uint32_t gen)
{
	for (int k = 0; s < FWD_FLT_MAX_RULES && k < ID_HIST; k++) {
		if (x->h[s][k].from > gen)
			continue;
		if (x->h[s][k].name[0])
			return x->h[s][k].name;
		return k + 1 < ID_HIST && x->h[s][k + 1].name[0] ? x->h[s][k + 1].name : NULL;
	}
	return NULL;
}

void ctl_filter_bind(struct ctl_filter *f, const struct fwd_table *t, uint64_t gen)
{
	struct rule_ids *x = f->ids;
	uint32_t *tags = calloc(FWD_FLT_MAX_RULES, sizeof(*tags)), kgen = ctl_filter_generation(f);
	int any = 0, top = -1;

	x->bound = 1;
	if (tags == NULL || ctl_bpf_active_tags(f->bpf, tags)) {
		free(tags);
		return;
	}
	pthread_mutex_lock(&f->names_lock);
	for (uint32_t s = 0; s < FWD_FLT_MAX_RULES; s++)
		if (tags[s])
			x->busy[s] = 1, any = 1, top = (int)s;
	for (uint16_t r = 0; t && r < t->filters.nrules; r++) {
		const char *n = t->filters.rules[r].name;
		int s = -1;

		if (any) {
			uint32_t tag = name_tag(n);

			for (uint32_t k = 0; k < FWD_FLT_MAX_RULES && s != -2; k++)
				if (tags[k] == tag)
					s = s == -1 ? (int)k
						    : -2; /* two names, one hash: neither */
		} else if (kgen && kgen == (uint32_t)gen) {
			s = r; /* an earlier regiond's filter: its ids were the positions */
			top = r > top ? r : top;
		}
		if (s >= 0) {
			id_push(x, (uint32_t)s, n, 0);
			x->busy[s] = 0;
		}
	}
	x->cursor = (uint16_t)((top + 1) % FWD_FLT_MAX_RULES);
	ids_index(x);
	pthread_mutex_unlock(&f->names_lock);
	free(tags);
}

/* Ids for the rules of @fl: @ids per position, @fresh where new. */
static void ids_assign(struct rule_ids *x, const struct fwd_filters *fl, uint16_t *ids,
		       uint8_t *fresh)
{
	uint8_t taken[FWD_FLT_MAX_RULES] = {0};

	for (uint16_t r = 0; r < fl->nrules; r++) {
		int s = id_of(x, fl->rules[r].name);

		fresh[r] = s < 0;
		if (s >= 0)
			ids[r] = (uint16_t)s, taken[s] = 1;
	}
	for (int pass = 0; pass < 2; pass++)
		for (uint16_t r = 0; r < fl->nrules; r++) {
			uint32_t s = x->cursor, n = 0;

			if (fresh[r] != 1)
				continue;
			/* Pass 0: an id neither half uses. Pass 1 (the old and the new
			 * table name more than 4,096 rules): one a removed rule had,
			 * whose last packets may then count for the new one. */
			for (; n < FWD_FLT_MAX_RULES; n++, s = (s + 1) % FWD_FLT_MAX_RULES)
				if (!taken[s] &&
				    (pass == 1 || (!x->h[s][0].name[0] && !x->busy[s])))
					break;
			if (n == FWD_FLT_MAX_RULES)
				continue;
			ids[r] = (uint16_t)s;
			taken[s] = 1;
			fresh[r] = 2;
			x->cursor = (uint16_t)((s + 1) % FWD_FLT_MAX_RULES);
		}
}

/* After the flip: the running half holds @fl's rules under @ids. */
static void ids_commit(struct rule_ids *x, const struct fwd_filters *fl, const uint16_t *ids,
		       uint32_t gen)
{
	uint8_t live[FWD_FLT_MAX_RULES] = {0};

	for (uint16_t r = 0; r < fl->nrules; r++) {
		id_push(x, ids[r], fl->rules[r].name, gen);
		live[ids[r]] = 1;
	}
	for (uint32_t s = 0; s < FWD_FLT_MAX_RULES; s++) {
		if (!live[s] && x->h[s][0].name[0])
			id_push(x, s, "", gen);
		x->busy[s] = 0;
	}
	ids_index(x);
}

/* The image's rule ids (positions) to @ids, each rule tagged with its name. */
static int image_ids(struct fwd_flt_image *img, const struct fwd_filters *fl, const uint16_t *ids)
{
	struct fwd_flt_rule *pos = malloc(sizeof(*pos) * (fl->nrules ? fl->nrules : 1));

	if (pos == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < img->nprefix; i++)
		img->prefix_rule[i] = ids[img->prefix_rule[i]];
	for (uint32_t k = 0; k < 3 * 65536; k++)
		if (img->ports[k])
			img->ports[k] = (uint16_t)(ids[img->ports[k] - 1] + 1);
	memcpy(pos, img->rules, sizeof(*pos) * fl->nrules);
	memset(img->rules, 0, sizeof(img->rules));
	for (uint16_t r = 0; r < fl->nrules; r++) {
		img->rules[ids[r]] = pos[r];
		img->rules[ids[r]].tag = name_tag(fl->rules[r].name);
	}
	img->nrules = FWD_FLT_MAX_RULES;
	free(pos);
	return 0;
}

static const char *const counter_names[FWD_FLT_CNT_MAX] = {
#define X(id, name, help) [FWD_FLT_CNT_##id] = name,
	FWD_FLT_COUNTERS(X)
#undef X
};

static const char *const counter_help[FWD_FLT_CNT_MAX] = {
#define X(id, name, help) [FWD_FLT_CNT_##id] = help,
	FWD_FLT_COUNTERS(X)
#undef X
};

/*
 * One regiond per interface. A second regiond on the same interface (a
 * fresh state directory, another --bpf-pin-dir) took the running filter
 * for the fast path's AF_XDP program, adopted it, and then rewrote the
 * first one's rules, or detached it (a hostile probe). Each interface is
 * claimed by binding abstract unix sockets named after it, by name and by
 * ifindex (a renamed interface, or one given by an altname, is the same
 * device): abstract names live in the network namespace, as interfaces
 * do, and die with the process, so a regiond killed by SIGKILL leaves no
 * stale claim. The names carry no permission: a process that binds one
 * first keeps regiond from starting (a refusal, never a change of policy),
 * and the refusal says whose it is.
 */
struct ctl_filter_claims {
	unsigned n;
	int fd[3 * CTL_FILTER_MAX_IFACES];
	unsigned idx[CTL_FILTER_MAX_IFACES]; /* the ifindex claimed, per interface */
};

/* Claim @name for @ifname: the socket, or -1 with @err. With @probe, a
 * claim held by another is asked whose it is (a connection the holder never
 * accepts: a retry every second without it, or the holder's backlog fills
 * and every later refusal says "its pid not known"). */
static int claim_name(const char *ifname, const char *name, int probe, struct fwd_err *err)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int n = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "regiond-xdp/%s", name);
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		fwd_err_set(err, "", 0, "xdp", "cannot claim %s: socket: %s", ifname,
			    strerror(errno));
		return -1;
	}
	/* listening, so that a refused regiond can ask whose claim it is */
	if (bind(fd, (struct sockaddr *)&a, alen) == 0 && listen(fd, 8) == 0)
		return fd;
	if (errno == EADDRINUSE) {
		struct ucred who = {0};
		socklen_t wl = sizeof(who);
		char holder[96] = "its pid not known";
		/* Never waits: the holder accepts nothing, and a blocking
		 * connect to a full backlog would hang this start. */
		int c = probe ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0) : -1;

		if (c >= 0 && connect(c, (struct sockaddr *)&a, alen) == 0 &&
		    getsockopt(c, SOL_SOCKET, SO_PEERCRED, &who, &wl) == 0 && who.pid > 0)
			snprintf(holder, sizeof(holder),
				 who.uid == geteuid() ? "pid %d" : "pid %d, uid %u: not regiond's?",
				 (int)who.pid, (unsigned)who.uid);
		if (c >= 0)
			close(c);
		fwd_err_set(err, "", 0, "xdp",
			    "another regiond (%s) manages the XDP filter on %s: one regiond "
			    "per interface (stop that one, or leave --xdp-iface %s out here)",
			    holder, ifname, ifname);
	} else {
		fwd_err_set(err, "", 0, "xdp", "cannot claim %s: %s", ifname, strerror(errno));
	}
	close(fd);
	return -1;
}

struct ctl_filter_claims *ctl_filter_claim(const char *const *ifaces, unsigned n,
					   struct fwd_err *err)
{
	struct ctl_filter_claims *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		fwd_err_set(err, "", 0, "xdp", "out of memory");
		return NULL;
	}
	for (unsigned i = 0; i < n && i < CTL_FILTER_MAX_IFACES; i++) {
		unsigned idx = if_nametoindex(ifaces[i]);
		char byindex[24], primary[IF_NAMESIZE];

		if (idx == 0) {
			fwd_err_set(err, "", 0, "xdp", "no interface '%s' (--xdp-iface)",
				    ifaces[i]);
			goto fail;
		}
		for (unsigned j = 0; j < i; j++)
			if (if_nametoindex(ifaces[j]) == idx) {
				/* else the second claim by index named this very
				 * regiond as "another regiond" */
				fwd_err_set(
					err, "", 0, "xdp",
					"--xdp-iface %s and %s are the same interface "
					"(ifindex %u: a name and its altname, say): give it once",
					ifaces[j], ifaces[i], idx);
				goto fail;
			}
		snprintf(byindex, sizeof(byindex), "if%u", idx);
		if ((c->fd[c->n] = claim_name(ifaces[i], ifaces[i], 1, err)) < 0)
			goto fail;
		c->n++;
		/* Given by an altname: its primary name too, which the regiond
		 * that named it so holds for as long as it runs. Its ifindex
		 * claim is of the interface as it was: created again, the new
		 * one was free for the second or so before the first claims it
		 * again, and a second regiond started then got in (a probe). */
		if (if_indextoname(idx, primary) && strcmp(primary, ifaces[i]) != 0) {
			if ((c->fd[c->n] = claim_name(ifaces[i], primary, 1, err)) < 0)
				goto fail;
			c->n++;
		}
		if ((c->fd[c->n] = claim_name(ifaces[i], byindex, 1, err)) < 0)
			goto fail;
		c->n++;
		c->idx[i] = idx;
	}
	return c;
fail:
	ctl_filter_release(c);
	return NULL;
}

/* The interfaces running regionds claim: their abstract sockets in this
 * network namespace's /proc/net/unix ("@regiond-xdp/ifN"), read once a
 * look rather than bound or connected (a bind would be a claim; a
 * connection sits in the holder's backlog, which it never accepts).
 * @claimed[i] is set for each of the @m interfaces of @att claimed.
 * @return 0, or -1 when the file cannot be read (nothing is known). */
static int read_claims(const struct ctl_xdp_att *att, int m, unsigned *claimed)
{
	char line[512];
	FILE *f = fopen("/proc/net/unix", "re");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		const char *at = strstr(line, " @regiond-xdp/if");
		char *end;
		unsigned long idx;

		if (at == NULL)
			continue;
		idx = strtoul(at + strlen(" @regiond-xdp/if"), &end, 10);
		if (*end != '\n' && *end != '\0')
			continue;
		for (int i = 0; i < m; i++)
			if (att[i].ifindex == idx)
				claimed[i] = 1;
	}
	fclose(f);
	return 0;
}

int ctl_filter_unmanaged(const char *pin_dir, uint32_t *id, int *afxdp, char *out, size_t len)
{
	enum { CAP = 1024 };
	struct ctl_xdp_att *att;
	unsigned *claimed;
	uint32_t pinned = ctl_bpf_pinned_id(pin_dir), want, gen = 0;
	size_t at = 0;
	int m, n = 0, attached = 0, afx = 0;

	want = pinned ? pinned : *id;
	if (want == 0) {
		*id = 0;
		return 0;
	}
	att = calloc(CAP, sizeof(*att));
	claimed = calloc(CAP, sizeof(*claimed));
	m = att && claimed ? ctl_bpf_xdp_attached(att, CAP) : -ENOMEM;
	if (m > CAP)
		m = CAP;
	/* Not looked: nothing is known, and nothing said changes (a failed
	 * look once cleared the alarm and forgot the program: a review). */
	if (m < 0 || read_claims(att, m, claimed) < 0) {
		free(att);
		free(claimed);
		return -1;
	}
	out[0] = '\0';
	for (int i = 0; i < m; i++) {
		struct fwd_err e;
		struct ctl_bpf *b;

		if (att[i].prog_id != want)
			continue;
		attached = 1; /* claimed or not: followed while it is anywhere */
		if (claimed[i] || at >= len)
			continue;
		if (n == 0 && (b = ctl_bpf_open_attached(att[i].name, &e)) != NULL) {
			gen = ctl_bpf_generation(b);
			afx = !ctl_bpf_loaded_by_regiond(b);
			ctl_bpf_free(b);
		}
		at += (size_t)snprintf(out + at, len - at, "%s%s", n ? ", " : "", att[i].name);
		n++;
	}
	free(att);
	free(claimed);
	*id = attached ? want : pinned; /* gone from every interface: the pin, if any */
	*afxdp = afx;
	if (n && at < len)
		snprintf(out + at, len - at, " (program %" PRIu32 ", generation %" PRIu32 ")", want,
			 gen);
	return n;
}

void ctl_filter_release(struct ctl_filter_claims *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < c->n; i++)
		close(c->fd[i]);
	free(c);
}

/* All or nothing: a start that fails leaves every interface as it found
 * it (found by a hostile probe: a second --xdp-iface that did not exist, or
 * ran another program, left the first one with a freshly loaded filter that
 * passed everything, and a regiond that had exited). Every interface is
 * checked before anything is loaded or attached; an attach that fails still
 * (the interface went away meanwhile, native mode refused) takes back what
 * this start attached, and the pins this start made. A filter found
 * attached (adopted from an earlier regiond's pins, or the fast path's) is
 * never taken off: it enforces the table that regiond left, and removing it
 * would open the box because a restart failed. */
struct ctl_filter *ctl_filter_start(const struct ctl_filter_conf *conf, struct fwd_err *err)
{
	struct ctl_filter *f = calloc(1, sizeof(*f));
	struct ctl_bpf_prev prev[CTL_FILTER_MAX_IFACES];
	unsigned checked = 0, attached = 0;
	int pinned = 0;

	if (f == NULL || conf->nifaces > CTL_FILTER_MAX_IFACES) {
		/* regiond's --xdp-iface takes at most as many: a caller's bug */
		fwd_err_set(err, "", 0, "filters",
			    f == NULL ? "out of memory" : "more than %d XDP filter interfaces",
			    CTL_FILTER_MAX_IFACES);
		free(f);
		return NULL;
	}
	f->conf = *conf;
	f->capturing = 0;
	for (unsigned i = 0; i < CTL_FILTER_MAX_IFACES; i++) {
		f->ifaces[i].reclaim_fd = -1;
		/* the claim's own: a fresh look could see an interface created
		 * again since, whose ifindex no one has claimed */
		f->ifaces[i].claimed_idx = i >= conf->nifaces ? 0
					   : conf->claims     ? conf->claims->idx[i]
							      : if_nametoindex(conf->ifaces[i]);
	}
	f->ids = calloc(1, sizeof(*f->ids));
	if (f->ids == NULL) {
		fwd_err_set(err, "", 0, "filters", "out of memory");
		free(f);
		return NULL;
	}
	pthread_mutex_init(&f->names_lock, NULL);
	for (; checked < conf->nifaces; checked++)
		if (ctl_bpf_check(conf->ifaces[checked], &prev[checked], err))
			goto fail;
	{
		/* The filter DPDK's net_af_xdp attached (xdp_prog=) comes first: it
		 * owns the XSKMAP, and regiond only manages its rules. Otherwise our
		 * own pinned filter, or a new one. */
		char pin[512], mode[32];
		struct fwd_err ignore = {0};

		snprintf(pin, sizeof(pin), "%s/prog", conf->pin_dir);
		if (conf->nifaces && access(pin, F_OK) != 0 &&
		    ctl_bpf_query(conf->ifaces[0], mode, sizeof(mode)) &&
		    (f->bpf = ctl_bpf_open_attached(conf->ifaces[0], &ignore)) != NULL)
			f->adopted = 2;
		/* A regiond's program whose pins are gone (a bpffs that died
		 * with a mount namespace, a hand's rm): it was taken for the
		 * fast path's, and never attached again to an interface created
		 * again (a probe). It is ours: pinned again and adopted. */
		if (f->adopted == 2 && ctl_bpf_loaded_by_regiond(f->bpf)) {
			if (ctl_bpf_repin(f->bpf, conf->pin_dir, err))
				goto fail;
			f->adopted = 1;
			fwd_log(FWD_LOG_NOTICE,
				"XDP filter: the program on %s is a regiond's whose pins are gone "
				"(a bpffs mounted in a mount namespace that ended?): pinned again "
				"in %s",
				conf->ifaces[0], conf->pin_dir);
		}
	}
	if (f->bpf == NULL) {
		f->bpf = ctl_bpf_open_pinned(&conf->sizes, conf->pin_dir, &f->adopted, err);
		pinned = f->bpf != NULL && !f->adopted; /* loaded and pinned by this start */
	}
	if (f->bpf == NULL)
		goto fail;
	/* The fast path's program redirects to its port's sockets (its
	 * XSKMAP, by RX queue): attached to a second interface too, it would
	 * send what it admits there to another device's sockets, which the
	 * kernel refuses (a review). One interface, then. */
	if (f->adopted == 2 && conf->nifaces > 1) {
		fwd_err_set(err, "", 0, "filters",
			    "the XDP filter on %s is the fast path's AF_XDP program, which "
			    "redirects to %s's sockets alone: it cannot filter %s too (what it "
			    "admitted there would be lost); give regiond --xdp-iface %s alone",
			    conf->ifaces[0], conf->ifaces[0], conf->ifaces[1], conf->ifaces[0]);
		goto fail;
	}
	/* A capture flag a previous regiond left set (it stopped mid-capture)
	 * would have the program copy drops nobody reads. */
	ctl_bpf_capture(f->bpf, 0);
	f->wrote_gen = ctl_bpf_generation(f->bpf);
	for (; attached < conf->nifaces; attached++) {
		/* The fast path's program is in the mode its port chose. */
		if (ctl_bpf_attach(f->bpf, conf->ifaces[attached],
				   f->adopted == 2 ? CTL_XDP_AUTO : conf->mode,
				   f->ifaces[attached].mode, sizeof(f->ifaces[attached].mode), err))
			goto fail;
		fwd_log(FWD_LOG_NOTICE, "XDP filter %s %s in %s mode (program id %u)",
			f->adopted == 2 ? "adopted from the fast path's AF_XDP port on"
			: f->adopted	? "adopted on"
					: "attached to",
			conf->ifaces[attached], f->ifaces[attached].mode, ctl_bpf_prog_id(f->bpf));
	}
	for (unsigned i = 0; i < checked; i++)
		ctl_bpf_prev_close(&prev[i]);
	return f;
fail:
	for (unsigned i = 0; i < checked; i++) {
		if (i < attached && f->bpf && prev[i].id != ctl_bpf_prog_id(f->bpf)) {
			char mode[32];
			uint32_t before = prev[i].id;

			ctl_bpf_restore(f->bpf, conf->ifaces[i], &prev[i]);
			if (ctl_bpf_query(conf->ifaces[i], mode, sizeof(mode)) == before)
				fwd_log(FWD_LOG_NOTICE,
					"XDP filter taken off %s again: the start failed",
					conf->ifaces[i]);
			else
				fwd_log(FWD_LOG_WARNING,
					"XDP filter: %s could not be put back as it was",
					conf->ifaces[i]);
		}
		ctl_bpf_prev_close(&prev[i]);
	}
	if (pinned)
		ctl_bpf_unpin_made(f->bpf, conf->pin_dir);
	ctl_filter_free(f);
	return NULL;
}

/* The section as the program gets it: rules, prefixes, ports and
 * policies, with each rule's id; not its lines or descriptions, which an
 * edit elsewhere in the document moves. */
static uint64_t section_sum(const struct fwd_filters *fl, const uint16_t *ids)
{
	uint64_t h = fwd_hash64_update(FWD_HASH64_SEED, "filters", 7);
	const uint8_t pol[] = {fl->present, fl->default_action, fl->non_ip_action,
			       fwd_flt_malformed_policy(fl), fl->redirect};

	h = fwd_hash64_update(h, pol, sizeof(pol));
	h = fwd_hash64_update(h, &fl->nrules, sizeof(fl->nrules));
	for (uint16_t r = 0; r < fl->nrules; r++) {
		const struct fwd_filter_rule *x = &fl->rules[r];

		h = fwd_hash64_update(h, x->name, strlen(x->name) + 1);
		h = fwd_hash64_update(h, &x->action, sizeof(x->action));
		h = fwd_hash64_update(h, &x->rate_pps, sizeof(x->rate_pps));
		h = fwd_hash64_update(h, &x->burst, sizeof(x->burst));
		h = fwd_hash64_update(h, &ids[r], sizeof(ids[r]));
	}
	h = fwd_hash64_update(h, &fl->nprefix4, sizeof(fl->nprefix4));
	for (uint32_t i = 0; i < fl->nprefix4; i++) {
		h = fwd_hash64_update(h, &fl->prefix4[i].addr, sizeof(fl->prefix4[i].addr));
		h = fwd_hash64_update(h, &fl->prefix4[i].len, sizeof(fl->prefix4[i].len));
		h = fwd_hash64_update(h, &fl->prefix4[i].region, sizeof(fl->prefix4[i].region));
	}
	h = fwd_hash64_update(h, &fl->nprefix6, sizeof(fl->nprefix6));
	for (uint32_t i = 0; i < fl->nprefix6; i++) {
		h = fwd_hash64_update(h, fl->prefix6[i].addr, sizeof(fl->prefix6[i].addr));
		h = fwd_hash64_update(h, &fl->prefix6[i].len, sizeof(fl->prefix6[i].len));
		h = fwd_hash64_update(h, &fl->prefix6[i].region, sizeof(fl->prefix6[i].region));
	}
	h = fwd_hash64_update(h, &fl->nranges, sizeof(fl->nranges));
	for (uint32_t i = 0; i < fl->nranges; i++) {
		const struct fwd_svc_range *x = &fl->ranges[i];

		h = fwd_hash64_update(h, &x->proto, sizeof(x->proto));
		h = fwd_hash64_update(h, &x->lo, sizeof(x->lo));
		h = fwd_hash64_update(h, &x->hi, sizeof(x->hi));
		h = fwd_hash64_update(h, &x->service, sizeof(x->service));
	}
	return h;
}

int ctl_filter_apply(void *arg, const struct fwd_table *t, uint64_t gen, struct fwd_err *e)
{
	struct ctl_filter *f = arg;
	const struct fwd_filters *fl = &t->filters;
	struct fwd_err fe = {0};
	struct fwd_flt_image *img = fwd_flt_compile_table(fl, &fe);
	uint16_t *ids = NULL;
	uint8_t *fresh = NULL;
	uint64_t sum;
	int rc;

	if (img == NULL) {
		fwd_err_fail(e, FWD_R_INVALID_FILTERS, NULL, 0, fe.path, "%s", fe.reason);
		return -EINVAL;
	}
	if (!f->ids->bound)
		ctl_filter_bind(f, NULL, 0);
	ids = calloc(fl->nrules ? fl->nrules : 1, sizeof(*ids));
	fresh = calloc(fl->nrules ? fl->nrules : 1, 1);
	if (ids == NULL || fresh == NULL) {
		rc = -ENOMEM;
		snprintf(fe.reason, sizeof(fe.reason), "out of memory");
		goto out;
	}
	ids_assign(f->ids, fl, ids, fresh);
	sum = section_sum(fl, ids);
	/* The live half holds this section already (this regiond wrote it,
	 * nobody since): the generation alone, in place; the rate limiters
	 * keep their state. */
	if (f->live_known && f->live_sum == sum && !f->foreign_writer &&
	    ctl_filter_generation(f) == f->wrote_gen &&
	    ctl_bpf_set_generation(f->bpf, (uint32_t)gen, &fe) == 0) {
		pthread_mutex_lock(&f->names_lock);
		ids_commit(f->ids, fl, ids, (uint32_t)gen);
		pthread_mutex_unlock(&f->names_lock);
		f->wrote_gen = (uint32_t)gen;
		rc = 0;
		goto out;
	}
	if ((rc = image_ids(img, fl, ids))) {
		snprintf(fe.reason, sizeof(fe.reason), "out of memory");
		goto out;
	}
	/* A name new to its id starts from 0, before the flip makes it live. */
	for (uint16_t r = 0; r < fl->nrules; r++)
		if (fresh[r])
			ctl_bpf_rule_stats_reset(f->bpf, ids[r]);
	rc = ctl_bpf_apply(f->bpf, img, fl->present ? fl->default_action : FWD_FLT_PASS,
			   fl->present ? fl->non_ip_action : FWD_FLT_PASS,
			   fwd_flt_malformed_policy(fl), fl->redirect, (uint32_t)gen, &fe);
	if (rc == 0) {
		pthread_mutex_lock(&f->names_lock);
		ids_commit(f->ids, fl, ids, (uint32_t)gen);
		pthread_mutex_unlock(&f->names_lock);
		f->wrote_gen = (uint32_t)gen;
		f->foreign_writer = 0;
		f->live_sum = sum;
		f->live_known = 1;
	}
out:
	fwd_flt_image_free(img);
	free(ids);
	free(fresh);
	if (rc)
		fwd_err_fail(e, FWD_R_FILTER_REFUSED, NULL, 0, FWD_KEY_NAME(DOC, FILTERS), "%s",
			     fe.reason);
	return rc;
}

/* One rule's hits, by its name's id (0 for a rule the filter does not
 * hold yet: a table newer than what it runs). */
static void rule_stats(struct ctl_filter *f, const char *name, struct fwd_flt_rule_stats *st)
{
	int s;

	if (!f->ids->bound)
		ctl_filter_bind(f, NULL, 0);
	s = id_of(f->ids, name);
	memset(st, 0, sizeof(*st));
	if (s >= 0)
		ctl_bpf_rule_stats(f->bpf, (uint16_t)s, st);
}

/* Before anything changes (validate, diff, and a write before its push):
 * a table whose filter the loaded maps cannot hold is refused here, where
 * it used to reach regionfwd first and be put back after (the fast path
 * ran the refused generation for a moment). The same words as the apply's
 * refusal. */
static int filter_validate(void *arg, const struct fwd_table *t, struct fwd_err *e)
{
	struct ctl_filter *f = arg;
	struct fwd_err fe = {0};
	struct fwd_flt_image *img = fwd_flt_compile_table(&t->filters, &fe);
	uint32_t pfx, grp;
	int rc = 0;

	if (img == NULL)
		return fwd_err_fail(e, FWD_R_INVALID_FILTERS, NULL, 0, fe.path, "%s", fe.reason);
	ctl_bpf_capacity(f->bpf, &pfx, &grp);
	if (img->ngroups > grp || img->nprefix > pfx)
		rc = fwd_err_fail(e, FWD_R_FILTER_REFUSED, NULL, 0, FWD_KEY_NAME(DOC, FILTERS),
				  "the filter needs %u prefixes and %u IPv4 groups; it was loaded "
				  "for %u and %u (--xdp-max-prefixes, --xdp-max-groups)",
				  img->nprefix, img->ngroups, pfx, grp);
	fwd_flt_image_free(img);
	return rc;
}

uint32_t ctl_filter_generation(const struct ctl_filter *f)
{
	return ctl_bpf_generation(f->bpf);
}

static int detach_pending(const struct ctl_filter *f);

json_t *ctl_filter_status(struct ctl_filter *f, const struct fwd_table *t)
{
	json_t *ifs = json_array(), *cnt = json_object(), *rules = json_object();
	uint64_t c[FWD_FLT_CNT_MAX];

	for (unsigned i = 0; i < f->conf.nifaces; i++) {
		char mode[32];
		uint32_t id = ctl_bpf_query(f->conf.ifaces[i], mode, sizeof(mode));

		/* claimed: false while another process holds the claim of the
		 * interface's ifindex (a second regiond could adopt the filter) */
		json_array_append_new(ifs, json_pack("{s:s, s:s, s:s, s:I, s:b, s:b}", "interface",
						     f->conf.ifaces[i], "mode", mode, "attached_as",
						     id ? f->ifaces[i].mode : "none", "program_id",
						     (json_int_t)id, "ours",
						     id == ctl_bpf_prog_id(f->bpf), "claimed",
						     f->ifaces[i].refused_idx == 0));
	}
	ctl_bpf_counters(f->bpf, c);
	for (int i = 0; i < FWD_FLT_CNT_MAX; i++)
		json_object_set_new(cnt, counter_names[i], json_integer((json_int_t)c[i]));
	for (uint16_t r = 0; t && r < t->filters.nrules; r++) {
		struct fwd_flt_rule_stats st;

		rule_stats(f, t->filters.rules[r].name, &st);
		json_object_set_new(rules, t->filters.rules[r].name,
				    json_pack("{s:s, s:I, s:I}", "action",
					      /* enum fwd_flt_action indexes the .def's words */
					      fwd_schema_names[FWD_SCHEMA_BEGIN_FILTER_ACTION +
							       t->filters.rules[r].action],
					      "packets", (json_int_t)st.packets, "bytes",
					      (json_int_t)st.bytes));
	}
	return json_pack("{s:I, s:I, s:b, s:b, s:b, s:b, s:s, s:s, s:o, s:o, s:o}", "program_id",
			 (json_int_t)ctl_bpf_prog_id(f->bpf), "generation",
			 (json_int_t)ctl_bpf_generation(f->bpf), "adopted", f->adopted != 0,
			 "detached", f->detached != 0, "detach_pending", detach_pending(f),
			 "foreign_writer", f->foreign_writer != 0, "owner",
			 f->adopted == 2 ? "net_af_xdp" : "regiond", "pin_dir", f->conf.pin_dir,
			 "interfaces", ifs, "counters", cnt, "rules", rules);
}

/* Whether a detach still waits for an interface to come back. */
static int detach_pending(const struct ctl_filter *f)
{
	for (unsigned i = 0; i < f->conf.nifaces; i++)
		if (f->ifaces[i].pending_detach)
			return 1;
	return 0;
}

/* Take our program off interface @i wherever it is in this namespace: the
 * device its name gives and, after a rename, the one its claimed ifindex
 * still is (a name that no longer resolves is not an interface gone). 1
 * when neither is here, else 0 (-ENOENT when ours was on neither). */
static int detach_here(struct ctl_filter *f, unsigned i, int *rc)
{
	const uint32_t ours = ctl_bpf_prog_id(f->bpf);
	char renamed[IF_NAMESIZE];
	const char *by_name = if_nametoindex(f->conf.ifaces[i]) ? f->conf.ifaces[i] : NULL;
	const char *by_idx = f->ifaces[i].claimed_idx &&
					     if_indextoname(f->ifaces[i].claimed_idx, renamed) &&
					     strcmp(renamed, f->conf.ifaces[i]) != 0
				     ? renamed
				     : NULL;
	int done = 0;

	if (by_name == NULL && by_idx == NULL)
		return 1;
	for (int k = 0; k < 2; k++) {
		const char *ifn = k ? by_idx : by_name;
		char mode[32];

		if (ifn && ctl_bpf_query(ifn, mode, sizeof(mode)) == ours &&
		    ctl_bpf_detach(f->bpf, ifn) == 0)
			done = 1;
	}
	if (!done && *rc == 0)
		*rc = -ENOENT;
	return 0;
}

int ctl_filter_detach(struct ctl_filter *f)
{
	/* A second detach while one waits: the operator gives up on the
	 * interfaces still away (deleted ones never come back). */
	const int again = f->detached && detach_pending(f);
	int rc = 0;

	f->detached = 1;
	for (unsigned i = 0; i < f->conf.nifaces; i++) {
		/* Not in this network namespace (moved away; a rename is
		 * followed by ifindex): our program may still run on it there.
		 * Answered "detached" with the pins removed, the box stayed
		 * filtered there and came back so (a probe); now it is said,
		 * and finish_detach() takes the program off once it is back. */
		if (detach_here(f, i, &rc)) {
			if (again) {
				fwd_log(FWD_LOG_WARNING,
					"XDP filter: detached without %s, "
					"still not in this network namespace: "
					"if it runs the program there, take it off by hand "
					"(ip link set dev %s xdp off)",
					f->conf.ifaces[i], f->conf.ifaces[i]);
				f->ifaces[i].pending_detach = 0;
			} else {
				f->ifaces[i].pending_detach = 1;
			}
		} else {
			f->ifaces[i].pending_detach = 0;
		}
	}
	if (detach_pending(f))
		return -EINPROGRESS; /* the pins stay until it is done */
	if (f->adopted != 2)
		ctl_bpf_unpin(f->conf.pin_dir);
	return again ? 0 : rc;
}

/* A detach that waited for interfaces: each one back takes our program
 * off; the pins go when none is left to wait for. */
static void finish_detach(struct ctl_filter *f)
{
	if (!detach_pending(f))
		return;
	for (unsigned i = 0; i < f->conf.nifaces; i++) {
		int rc = 0;

		if (!f->ifaces[i].pending_detach || detach_here(f, i, &rc))
			continue;
		if (rc == 0)
			fwd_log(FWD_LOG_NOTICE,
				"XDP filter taken off %s, back in this network namespace: the "
				"detach is done there",
				f->conf.ifaces[i]);
		f->ifaces[i].pending_detach = 0;
	}
	if (!detach_pending(f) && f->adopted != 2)
		ctl_bpf_unpin(f->conf.pin_dir);
}

/* Claim interface @i by its ifindex now, when it is not the one claimed:
 * 0, or -1 with the refusal logged once per ifindex (another regiond holds
 * it; @ours_there: our program is on it, which that one could adopt). */
static int reclaim(struct ctl_filter *f, unsigned i, unsigned idx, int ours_there)
{
	struct fwd_err e = {0};
	char byindex[24];
	int fd;

	if (idx == f->ifaces[i].claimed_idx) {
		/* back on the ifindex this regiond holds (moved away and back)
		 * after another one was refused: nothing is held by another */
		if (f->ifaces[i].refused_idx != 0)
			fwd_log(FWD_LOG_NOTICE,
				"XDP filter: %s (ifindex %u) is the one this regiond claimed",
				f->conf.ifaces[i], idx);
		f->ifaces[i].refused_idx = 0;
		return 0;
	}
	snprintf(byindex, sizeof(byindex), "if%u", idx);
	fd = claim_name(f->conf.ifaces[i], byindex, f->ifaces[i].refused_idx != idx, &e);
	if (fd < 0) {
		if (f->ifaces[i].refused_idx != idx)
			fwd_log(FWD_LOG_WARNING,
				ours_there
					? "XDP filter: %s has a new ifindex (%u) this regiond "
					  "cannot claim: %s; that one could adopt the filter and "
					  "rewrite its rules"
					: "XDP filter: %s is back (ifindex %u), not attached "
					  "again: %s",
				f->conf.ifaces[i], idx, e.reason);
		f->ifaces[i].refused_idx = idx;
		return -1;
	}
	if (f->ifaces[i].refused_idx != 0)
		fwd_log(FWD_LOG_NOTICE, "XDP filter: %s (ifindex %u) claimed by this regiond now",
			f->conf.ifaces[i], idx);
	if (f->ifaces[i].reclaim_fd >= 0)
		close(f->ifaces[i].reclaim_fd);
	f->ifaces[i].reclaim_fd = fd;
	f->ifaces[i].claimed_idx = idx;
	f->ifaces[i].refused_idx = 0;
	return 0;
}

void ctl_filter_free(struct ctl_filter *f)
{
	if (f == NULL)
		return;
	ctl_bpf_free(f->bpf);
	ctl_bpf_free(f->retired);
	for (unsigned i = 0; i < CTL_FILTER_MAX_IFACES; i++)
		if (f->ifaces[i].reclaim_fd >= 0)
			close(f->ifaces[i].reclaim_fd);
	pthread_mutex_destroy(&f->names_lock);
	free(f->ids);
	free(f);
}

/* The fast path's AF_XDP port attached program @there on interface @i:
 * regionfwd restarted, and its new copy of the filter holds no rules and
 * redirects nothing (everything went to the kernel, regionfwd received
 * nothing on the port, until an operator restarted regiond). Adopted in
 * place of the old one, whose sockets are gone: the next sync writes the
 * current generation into it whole. 0, or -1 when @there is not the fast
 * path's filter (left alone, as any other program). */
static int readopt(struct ctl_filter *f, unsigned i, uint32_t there, const char *mode)
{
	const char *ifn = f->conf.ifaces[i];
	struct fwd_err e = {0};
	struct ctl_bpf *fresh = ctl_bpf_open_attached(ifn, &e), *old = f->bpf;
	int capturing;

	/* Another regiond's program (loaded, not the port's), or one that
	 * replaced @there meanwhile: not this regiond's to write. */
	if (fresh == NULL || ctl_bpf_loaded_by_regiond(fresh) || ctl_bpf_prog_id(fresh) != there) {
		if (fresh == NULL && f->ifaces[i].lost_to != there)
			fwd_log(FWD_LOG_WARNING, "XDP filter: %s: cannot adopt program id %u: %s",
				ifn, there, e.reason);
		ctl_bpf_free(fresh);
		return -1;
	}
	f->bpf = fresh;
	/* Written whole by the next sync (live_known 0), its generation
	 * whatever the port's copy starts with: not another writer's. */
	f->wrote_gen = ctl_bpf_generation(fresh);
	f->foreign_writer = 0;
	f->live_known = 0;
	ctl_bpf_capture(fresh, 0);
	/* A capture reads the old program's ring buffer without the state
	 * lock: the old handle stays for its close to free. */
	pthread_mutex_lock(&f->names_lock);
	/* Only the capture's own: after a second re-adoption within one
	 * capture, retired holds the one it reads, and the copy between is
	 * nobody's. */
	capturing = f->capturing;
	if (f->capturing && f->retired == NULL) {
		f->retired = old;
		old = NULL;
	}
	pthread_mutex_unlock(&f->names_lock);
	ctl_bpf_free(old);
	snprintf(f->ifaces[i].mode, sizeof(f->ifaces[i].mode), "%s", mode);
	f->ifaces[i].lost = 0;
	f->ifaces[i].lost_to = 0;
	fwd_log(FWD_LOG_NOTICE,
		"XDP filter: adopted the program the fast path's AF_XDP port attached to %s "
		"(id %u, %s mode; regionfwd restarted): writing the current generation into it%s",
		ifn, there, mode,
		capturing ? "; the capture running reads the old one's drops only" : "");
	return 0;
}

/* Every configured interface carries our program, unless the operator
 * detached it: an interface deleted and created again (a veth, a VF
 * re-created, a bond rebuilt) comes back without it, and the kernel says
 * nothing; its traffic would go unfiltered while status said applied
 * (found by a hostile probe). Re-attached when it exists again; status
 * and health say so until then. Another program there is left alone. */
static void keep_attached(struct ctl_filter *f)
{
	const uint32_t ours = ctl_bpf_prog_id(f->bpf);

	/* The fast path's AF_XDP program (adopted == 2) is the port's to
	 * attach: a restarted regionfwd attaches its own, and ours again
	 * there would redirect into the dead sockets' XSKMAP. Its new one is
	 * adopted (readopt()), never attached by regiond. */
	for (unsigned i = 0; !f->detached && i < f->conf.nifaces; i++) {
		const char *ifn = f->conf.ifaces[i];
		char mode[32];
		uint32_t there = ctl_bpf_query(ifn, mode, sizeof(mode));
		/* read once: every decision below sees the same ifindex (0: no
		 * such interface now) */
		const unsigned idx = if_nametoindex(ifn);
		struct fwd_err e = {0};

		if (there == ours) {
			/* back (renamed or moved away and back): say how it runs
			 * again; status said "none" for good, and the log's last
			 * word was "gone" */
			if (f->ifaces[i].lost) {
				snprintf(f->ifaces[i].mode, sizeof(f->ifaces[i].mode), "%s", mode);
				fwd_log(FWD_LOG_NOTICE,
					f->ifaces[i].lost == 1 ? "XDP filter: %s is back, carrying "
								 "the filter in %s mode"
							       : "XDP filter: %s carries the "
								 "filter again, in %s mode",
					ifn, mode);
			}
			/* Its ifindex may be new: moved back, or created again
			 * between the claim and the start (which attached to it
			 * by name). A comparison when it is not. */
			if (idx != 0)
				reclaim(f, i, idx, 1);
			f->ifaces[i].lost = 0;
			continue;
		}
		/* The fast path's port attached a new copy: adopted. A program
		 * that could not be (another's, or an open that failed: out of
		 * descriptors, say) is tried again every 10 s, not each second;
		 * a failure once was for good, and the port took nothing. */
		if (there && f->adopted == 2 && idx != 0 &&
		    !(f->ifaces[i].lost == 3 && f->ifaces[i].lost_to == there &&
		      fwd_mono_ms() - f->ifaces[i].readopt_ms < 10000)) {
			f->ifaces[i].readopt_ms = fwd_mono_ms();
			if (reclaim(f, i, idx, 0) == 0 && readopt(f, i, there, mode) == 0)
				continue;
		}
		/* Said when what it lacks changes: 1 gone, 2 no program, 3 another
		 * one (of id lost_to). A gone interface back with someone else's
		 * program kept saying "gone" (a probe); one back without a
		 * program is attached again at once, which is said below. */
		const int now = there ? 3 : idx == 0 ? 1 : 2;

		if (now == 1 && f->ifaces[i].lost != 1)
			/* not "carries no program": there is no interface to carry one */
			fwd_log(FWD_LOG_WARNING,
				"XDP filter: %s is gone (no such interface): attached again once "
				"it exists; status says so",
				ifn);
		else if ((now == 2 && f->ifaces[i].lost != 2 && f->ifaces[i].lost != 1) ||
			 (now == 3 && (f->ifaces[i].lost != 3 || f->ifaces[i].lost_to != there)))
			fwd_log(FWD_LOG_WARNING, "XDP filter: %s carries %s%.0u: %s", ifn,
				there ? "another program, id " : "no program", there,
				there		  ? "left alone; status says so"
				: f->adopted == 2 ? "the fast path's AF_XDP port attaches it"
						  : "attaching it again");
		f->ifaces[i].lost = now;
		f->ifaces[i].lost_to = there;
		if (now == 1)
			f->ifaces[i].refused_idx = 0; /* gone: no ifindex to hold */
		snprintf(f->ifaces[i].mode, sizeof(f->ifaces[i].mode), "none");
		/* Claimed again whenever it has another ifindex, whoever attaches
		 * it (the fast path's port too): a second regiond given it by an
		 * altname would adopt the program. */
		if (idx != 0 && reclaim(f, i, idx, 0) != 0)
			continue;
		if (there == 0 && f->adopted != 2 && idx != 0) {
			if (ctl_bpf_attach(f->bpf, ifn, f->conf.mode, f->ifaces[i].mode,
					   sizeof(f->ifaces[i].mode), &e) == 0) {
				fwd_log(FWD_LOG_NOTICE,
					"XDP filter attached again to %s in %s mode", ifn,
					f->ifaces[i].mode);
				f->ifaces[i].lost = 0;
				f->ifaces[i].attach_why[0] = '\0';
			} else if (strcmp(f->ifaces[i].attach_why, e.reason) != 0) {
				/* why, once while it stays the same (it was only
				 * libbpf's raw line, every second) */
				fwd_log(FWD_LOG_WARNING,
					"XDP filter: attaching to %s again failed: %s", ifn,
					e.reason);
				snprintf(f->ifaces[i].attach_why, sizeof(f->ifaces[i].attach_why),
					 "%s", e.reason);
			}
		}
	}
}

static void filter_sync(void *arg, const struct fwd_table *t, uint64_t gen)
{
	struct ctl_filter *f = arg;
	struct fwd_err e;
	uint32_t there;

	if (f->detached) {
		finish_detach(f);
		return;
	}
	keep_attached(f);
	there = ctl_filter_generation(f);
	if (there != f->wrote_gen) {
		/* Someone else wrote the maps: not written over every second
		 * (two regionds on one program swapped each other's rules,
		 * both healthy); said, and left to the next change applied. */
		if (!f->foreign_writer)
			fwd_log(FWD_LOG_WARNING,
				"XDP filter: its maps hold generation %u, which this regiond did "
				"not write (it wrote %u): another process writes them (a second "
				"regiond that adopted the program?); not writing over them until "
				"the next change is applied; status says so",
				there, f->wrote_gen);
		f->foreign_writer = 1;
		return;
	}
	/* Behind the current generation (a refused apply, a restart): retry.
	 * Once after a start too: the adopted maps were written by the
	 * regiond before, perhaps an older one whose policies for the
	 * program said less (fwd_flt_malformed_policy). */
	if (there != (uint32_t)gen || !f->live_known)
		ctl_filter_apply(arg, t, gen, &e);
}

static json_t *filter_status(void *arg, const struct fwd_table *t)
{
	return ctl_filter_status(arg, t);
}

static int filter_detach(void *arg)
{
	return ctl_filter_detach(arg);
}

void ctl_filter_metrics(struct ctl_filter *f, const struct fwd_table *t, FILE *out)
{
	uint64_t c[FWD_FLT_CNT_MAX];
	char help[512];
	size_t n = 0;

	ctl_metrics_family(out, "regiond_xdp_generation",
			   "Generation of the rules the XDP filter holds.", "gauge");
	ctl_metrics_sample(out, "regiond_xdp_generation", ctl_bpf_generation(f->bpf), NULL);
	ctl_metrics_family(out, "regiond_xdp_attached",
			   "1 when regiond's XDP program is the one attached to the interface.",
			   "gauge");
	for (unsigned i = 0; i < f->conf.nifaces; i++) {
		char mode[32];
		uint32_t id = ctl_bpf_query(f->conf.ifaces[i], mode, sizeof(mode));

		ctl_metrics_sample(out, "regiond_xdp_attached", id && id == ctl_bpf_prog_id(f->bpf),
				   "interface", f->conf.ifaces[i], NULL);
	}
	/* The counters overlap (a packet counts as a verdict and as what
	 * decided it), so they are one family by name, as filter status shows. */
	for (int i = 0; i < FWD_FLT_CNT_MAX && n < sizeof(help); i++)
		n += (size_t)snprintf(help + n, sizeof(help) - n, "%s%s: %s", i ? "; " : "",
				      counter_names[i], counter_help[i]);
	ctl_metrics_family(out, "regiond_xdp_packets_total", help, "counter");
	ctl_bpf_counters(f->bpf, c);
	for (int i = 0; i < FWD_FLT_CNT_MAX; i++)
		ctl_metrics_sample(out, "regiond_xdp_packets_total", (double)c[i], "counter",
				   counter_names[i], NULL);
	/* Each family's samples together, after its HELP and TYPE: the text
	 * format asks for one group per family, and stricter parsers than
	 * Prometheus's refuse or split an interleaved one. Each rule's stats
	 * read once, so that its packets and bytes are of one read. */
	uint16_t nrules = t ? t->filters.nrules : 0;
	struct fwd_flt_rule_stats *st = calloc(nrules ? nrules : 1, sizeof(*st));

	for (uint16_t r = 0; st && r < nrules; r++)
		rule_stats(f, t->filters.rules[r].name, &st[r]);
	ctl_metrics_family(out, "regiond_xdp_rule_packets_total",
			   "Packets each filter rule decided.", "counter");
	for (uint16_t r = 0; st && r < nrules; r++)
		ctl_metrics_sample(out, "regiond_xdp_rule_packets_total", (double)st[r].packets,
				   "rule", t->filters.rules[r].name, NULL);
	ctl_metrics_family(out, "regiond_xdp_rule_bytes_total", "Bytes each filter rule decided.",
			   "counter");
	for (uint16_t r = 0; st && r < nrules; r++)
		ctl_metrics_sample(out, "regiond_xdp_rule_bytes_total", (double)st[r].bytes, "rule",
				   t->filters.rules[r].name, NULL);
	free(st);
}

static void filter_metrics(void *arg, const struct fwd_table *t, FILE *out)
{
	ctl_filter_metrics(arg, t, out);
}

/* A drop capture: the ring buffer's reader. A record's rule is named by
 * its id and generation (the ids' history, struct rule_ids): the name it
 * had in the generation that dropped the packet, also one applied while
 * the capture runs (it used to take the names once, at the start, and
 * label the drops of any later generation "rule=#ID"). */
struct filter_cap {
	struct ctl_filter *f;
	struct ctl_bpf *bpf; /* the program it reads: f->bpf at its open */
	struct ring_buffer *rb;
	int64_t mono_to_real_ns; /* bpf_ktime_get_ns() is CLOCK_MONOTONIC */
	uint64_t c0[FWD_FLT_CNT_MAX]; /* the counters when it opened */
	void (*fn)(void *fa, const struct ctl_ext_pkt *p); /* during a poll */
	void *fa;
};

static const char *const why_names[] = {
	[FWD_FLT_WHY_RULE] = "rule",	       [FWD_FLT_WHY_RATE] = "rate_limited",
	[FWD_FLT_WHY_DEFAULT] = "default",     [FWD_FLT_WHY_NON_IP] = "non_ip",
	[FWD_FLT_WHY_MALFORMED] = "malformed",
};

/* One record of the ring buffer (fwd_filter_kern_user.h) to the capture. */
static int cap_record(void *ctx, void *data, size_t size)
{
	struct filter_cap *c = ctx;
	const struct fwd_flt_cap_rec *r = data;
	char ifname[IF_NAMESIZE], rule[FWD_NAME_MAX + 16] = "", comment[160];
	const char *name;
	struct ctl_ext_pkt p;

	if (size < sizeof(*r) || r->caplen > FWD_FLT_CAP_SNAP)
		return 0;
	if (if_indextoname(r->ifindex, ifname) == NULL)
		snprintf(ifname, sizeof(ifname), "if%u", r->ifindex);
	pthread_mutex_lock(&c->f->names_lock);
	if (r->rule && (name = id_name(c->f->ids, r->rule - 1u, r->generation)))
		snprintf(rule, sizeof(rule), " rule=%s", name);
	else if (r->rule) /* an id whose name regiond no longer knows */
		snprintf(rule, sizeof(rule), " rule=#%u", r->rule - 1);
	pthread_mutex_unlock(&c->f->names_lock);
	snprintf(comment, sizeof(comment), "xdp drop%s why=%s gen=%u in=%s", rule,
		 r->why < sizeof(why_names) / sizeof(why_names[0]) ? why_names[r->why] : "?",
		 r->generation, ifname);
	p = (struct ctl_ext_pkt){.ts_ns = (uint64_t)((int64_t)r->ktime_ns + c->mono_to_real_ns),
				 .ifname = ifname,
				 .len = r->len,
				 .caplen = r->caplen,
				 .data = r->data,
				 .comment = comment};
	c->fn(c->fa, &p);
	return 0;
}

static void drop_record(void *fa, const struct ctl_ext_pkt *p)
{
	(void)fa;
	(void)p;
}

static void *filter_capture_open(void *arg, const struct fwd_table *t, struct fwd_err *e)
{
	struct ctl_filter *f = arg;
	struct filter_cap *c;
	int fd = ctl_bpf_capture_rb_fd(f->bpf);

	if (fd < 0) {
		fwd_err_fail(e, FWD_R_INVALID_CAPTURE, NULL, 0, "xdp",
			     "the XDP filter regiond adopted predates drop capture; restart it "
			     "(filter detach) to capture its drops, or ask for \"xdp\": false");
		return NULL;
	}
	pthread_mutex_lock(&f->names_lock);
	const int busy = f->capturing;
	pthread_mutex_unlock(&f->names_lock);
	if (busy) {
		fwd_err_fail(e, FWD_R_CAPTURE_BUSY, NULL, 0, "xdp",
			     "a capture of the XDP drops runs");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
		return NULL;
	}
	c->f = f;
	c->bpf = f->bpf;
	(void)t;
	c->mono_to_real_ns = (int64_t)(fwd_wall_ns() - fwd_mono_ns());
	ctl_bpf_counters(c->bpf, c->c0);
	c->rb = ring_buffer__new(fd, cap_record, c, NULL);
	if (c->rb == NULL)
		goto nomem;
	/* Anything an earlier capture left in the ring buffer is not ours. */
	c->fn = drop_record;
	if (ring_buffer__consume(c->rb) < 0 || ctl_bpf_capture(c->bpf, 1)) {
		fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "xdp", "cannot start the XDP capture");
		ring_buffer__free(c->rb);
		free(c);
		return NULL;
	}
	pthread_mutex_lock(&f->names_lock);
	f->capturing = 1;
	pthread_mutex_unlock(&f->names_lock);
	return c;
nomem:
	fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "out of memory");
	free(c);
	return NULL;
}

static int filter_capture_poll(void *cap, void (*fn)(void *fa, const struct ctl_ext_pkt *p),
			       void *fa)
{
	struct filter_cap *c = cap;

	c->fn = fn;
	c->fa = fa;
	return ring_buffer__consume(c->rb);
}

static void filter_capture_close(void *cap, void (*fn)(void *fa, const struct ctl_ext_pkt *p),
				 void *fa, uint64_t *captured, uint64_t *lost)
{
	struct filter_cap *c = cap;
	struct ctl_filter *f = c->f;
	struct ctl_bpf *retired;
	uint64_t k[FWD_FLT_CNT_MAX];

	/* its own program's flag and counters, also after a re-adoption */
	ctl_bpf_capture(c->bpf, 0);
	filter_capture_poll(c, fn ? fn : drop_record, fa);
	ctl_bpf_counters(c->bpf, k);
	*captured = k[FWD_FLT_CNT_CAPTURED] - c->c0[FWD_FLT_CNT_CAPTURED];
	*lost = k[FWD_FLT_CNT_CAPTURE_LOST] - c->c0[FWD_FLT_CNT_CAPTURE_LOST];
	ring_buffer__free(c->rb);
	pthread_mutex_lock(&f->names_lock);
	f->capturing = 0;
	retired = f->retired; /* c->bpf, when readopt() replaced it */
	f->retired = NULL;
	pthread_mutex_unlock(&f->names_lock);
	ctl_bpf_free(retired);
	free(c);
}

struct ctl_ext ctl_filter_ext(struct ctl_filter *f)
{
	return (struct ctl_ext){.name = "filters",
				.arg = f,
				.validate = filter_validate,
				.applied = ctl_filter_apply,
				.sync = filter_sync,
				.status = filter_status,
				.detach = filter_detach,
				.metrics = filter_metrics,
				.capture_open = filter_capture_open,
				.capture_poll = filter_capture_poll,
				.capture_close = filter_capture_close};
}
