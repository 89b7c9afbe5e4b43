/*
 * regionfwd - the DPDK fast path.
 *
 *   regionfwd [EAL options] -- --node NODE.yaml --table TABLE.yaml
 *             [--idle-exit MS] [--stats-json FILE] [--start-on pushed|table]
 *   regionfwd --check-table TABLE.yaml     (validate only, no DPDK)
 *
 * The main lcore is the control thread: it builds generations, reloads the
 * table on SIGHUP (hitless), prints counters on SIGUSR1 and at exit, and
 * serves telemetry. Worker lcores forward (dp_worker.c). Only main() exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "dp_cap.h"
#include "dp_ctl.h"
#include "dp_ctx.h"
#include "dp_fib.h"
#include "dp_log.h"
#include "dp_saved.h"
#include "fwd_clock.h"
#include "fwd_hs.h"
#include "fwd_residency.h"
#include "fwd_table.h"

RTE_LOG_REGISTER_DEFAULT(dp_logtype, INFO);

static volatile sig_atomic_t sig_quit, sig_usr1, sig_hup;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		sig_usr1 = 1;
	else if (sig == SIGHUP)
		sig_hup = 1;
	else
		sig_quit = 1;
}

/* --start-on: which table regionfwd runs from its start until a push. */
enum start_on {
	START_ON_PUSHED, /* the last pushed table (node pushed_table) if sound, else --table */
	START_ON_TABLE, /* --table; the saved pushed table is removed */
	START_ON_FILE_ONLY, /* --table, the save path untouched: it holds a file not ours */
};

/* --idle-exit's bound: a year. */
#define IDLE_EXIT_MAX_MS 31536000000ULL

struct app_opts {
	const char *node_path, *table_path, *stats_json;
	uint64_t idle_exit_ms;
	enum start_on start_on;
};

/* A start that fails once the table is built: the standby builder thread
 * (dp_ctx.h) may still be building FIBs from the table, and rte_exit()'s
 * cleanup must not release what it reads under it (a SIGSEGV seen at
 * -m 256 when the FIBs were in EAL memory): stop it first. */
static void start_failed(struct dp_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void start_failed(struct dp_ctx *ctx, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dp_ctx_standby_stop(ctx);
	rte_exit(EXIT_FAILURE, "%s", msg);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: regionfwd [EAL options] -- --node FILE --table FILE [options]\n"
		     "       regionfwd --check-table FILE\n"
		     "       regionfwd --check-node FILE [--table FILE]\n"
		     "\n"
		     "  --node FILE        node config: ports, workers, pool sizes "
		     "(docs/operations.md)\n"
		     "  --table FILE       table document, YAML or JSON (docs/table-format.md)\n"
		     "  --idle-exit MS     stop once no packet has arrived for MS milliseconds,\n"
		     "                     1..31536000000 (a year); the window restarts after a\n"
		     "                     stall of this process\n"
		     "  --stats-json FILE  write the final counters as JSON to FILE\n"
		     "  --start-on pushed|table\n"
		     "                     which table to run from the start until regiond\n"
		     "                     pushes: 'pushed' (default) the last table pushed\n"
		     "                     (saved at the node's pushed_table, hash-checked),\n"
		     "                     --table when there is none; 'table' always --table\n"
		     "  --log stderr|journal|syslog\n"
		     "                     where DPDK's whole log goes (stderr timestamped, with\n"
		     "                     the level); default: DPDK's own (stderr and syslog)\n"
		     "  --check-table FILE validate a table document and exit (0 valid, 1 not,\n"
		     "                     2 a usage error)\n"
		     "  --check-node FILE  validate a node config and exit (0 valid, 1 not); with\n"
		     "                     --table, also that every link's port is in it\n"
		     "  --help-node        the node config's fields, their defaults and meaning\n"
		     "\n"
		     "Signals: SIGHUP reloads --table hitlessly (refused once a controller\n"
		     "pushed the running table), SIGUSR1 prints counters,\n"
		     "SIGINT/SIGTERM stop. Telemetry: /regionfwd/... (dpdk-telemetry.py).\n");
}

static int check_table(const char *path)
{
	struct fwd_err err = {0};
	struct fwd_table *t = fwd_table_load(path, &err);
	struct fwd_class *c = t ? fwd_class_build(t) : NULL;
	char buf[1024];

	const struct fwd_hs_limits lim = FWD_HS_DEFAULT_LIMITS;
	struct fwd_hs_dbs dbs = {0};

	/* The content rules' patterns compiled as a push compiles them, so
	 * that "valid" here means the table would be taken. */
	if (t == NULL || c == NULL || fwd_table_check_written(t, &err) ||
	    fwd_residency_check(t, c, &err) ||
	    (fwd_content_patterns(t) && fwd_hs_build(t, &lim, &dbs, &err))) {
		if (t && c == NULL)
			fwd_err_set(&err, path, 0, "", "out of memory");
		fprintf(stderr, "%s\n", fwd_err_str(&err, buf, sizeof(buf)));
		fwd_class_free(c);
		fwd_table_free(t);
		return 1;
	}
	fwd_hs_free(&dbs);
	fwd_class_free(c);
	printf("%s: valid: %u regions, %u services, %u links, %u link groups, %u policies, "
	       "%u IPv4 and %u IPv6 prefixes, %u residency rules, %u content rules, %u filter "
	       "rules\n",
	       path, t->nregions - 1, t->nservices - 1, t->nlinks, t->ngroups, t->npolicies - 1,
	       t->nprefix4, t->nprefix6, t->nresidency, t->ncontent, (unsigned)t->filters.nrules);
	fwd_table_free(t);
	return 0;
}

/* regionfwd --check-node NODE [--table TABLE]: the node config checked as
 * at start, and with a table the link-to-port check every generation build
 * makes, all without EAL: an example or a new box's config can be checked
 * before anything is bound or allocated. */
static unsigned count_ingress(const struct dp_node *n)
{
	unsigned c = 0;

	for (uint16_t i = 0; i < n->nports; i++)
		c += n->ports[i].ingress;
	return c;
}

static int check_node(const char *node_path, const char *table_path)
{
	static struct dp_node node;
	struct fwd_err err = {0};
	struct fwd_table *t = NULL;
	char buf[1024];
	int rc = 1;

	if (dp_node_load(node_path, &node, &err))
		goto out;
	if (table_path != NULL) {
		if ((t = fwd_table_load(table_path, &err)) == NULL)
			goto out;
		for (uint16_t i = 0; i < t->nlinks; i++)
			if (dp_node_link_port(&node, t, i, &err) < 0)
				goto out;
	}
	printf("%s: valid: %u ports (%u ingress)", node_path, node.nports, count_ingress(&node));
	if (t != NULL)
		printf(", every link of %s has its port", table_path);
	printf("\n");
	{
		/* The start's warning (dp_ports_open) for one worker, the least
		 * it can be: the check once said valid and the start then warned
		 * (a new user's walkthrough). More workers hold more. */
		uint64_t held = (uint64_t)node.nports * ((uint64_t)node.rx_desc + node.tx_desc) +
				node.mbuf_cache + 4u * FWD_BURST;

		if (held > node.mbufs)
			fprintf(stderr,
				"%s: warning: a pool of %u mbufs is smaller than the %llu that "
				"rings and caches hold with one worker (more with more workers, "
				"less "
				"where a port receives nothing): raise 'mbufs' or expect rx drops "
				"(imissed)\n",
				node_path, node.mbufs, (unsigned long long)held);
	}
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "%s\n", fwd_err_str(&err, buf, sizeof(buf)));
	fwd_table_free(t);
	return rc;
}

/*
 * regionfwd --check-table FILE | --check-node FILE [--table FILE]: the whole
 * command line is the check, parsed strictly. An argument it does not take
 * was once ignored ("--check-table a.yaml b.yaml" said a.yaml is valid, as
 * if b.yaml were too) and a check without its FILE fell through to EAL,
 * which printed its whole usage: both are a one-line error naming the
 * option, exit 2. -1: not a check, start as the fast path.
 */
static int check_mode(int argc, char **argv)
{
	const char *mode = NULL, *file = NULL, *table = NULL;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--check-table") == 0 || strcmp(argv[i], "--check-node") == 0)
			mode = mode ? mode : argv[i];
	if (mode == NULL)
		return -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = strcmp(a, mode) == 0 ? &file
				    : strcmp(mode, "--check-node") == 0 && strcmp(a, "--table") == 0
					    ? &table
					    : NULL;

		if (slot == NULL) {
			fprintf(stderr, "regionfwd: %s: unexpected argument '%s'\n", mode, a);
			return 2;
		}
		if (*slot != NULL) {
			fprintf(stderr, "regionfwd: %s given twice\n", a);
			return 2;
		}
		/* an option where its FILE should be is a FILE forgotten, not
		 * a file called "--table" */
		if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
			fprintf(stderr, "regionfwd: %s takes a FILE (%s)\n", a,
				slot == &table ? "the table to check the node's links against"
				: strcmp(mode, "--check-table") == 0
					? "the table document to validate"
					: "the node config to validate");
			return 2;
		}
		*slot = argv[++i];
	}
	return strcmp(mode, "--check-table") == 0 ? check_table(file) : check_node(file, table);
}

/* The --log value main() took before EAL started, for parse_app_args() to
 * check that it saw the same one. */
static const char *log_early;

static int parse_app_args(int argc, char **argv, struct app_opts *o)
{
	static const struct option longopts[] = {
		{"node", required_argument, NULL, 'n'},
		{"table", required_argument, NULL, 't'},
		{"idle-exit", required_argument, NULL, 'i'},
		{"stats-json", required_argument, NULL, 's'},
		{"start-on", required_argument, NULL, 'S'},
		{"log", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned seen = 0;
	int c, li = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, &li)) != -1) {
		char *end;

		/* Given twice, one would be dropped without a word (a stray second
		 * --start-on table would delete the saved pushed table). */
		if (c != '?' && c != 'h') {
			if (seen & 1u << li) {
				fprintf(stderr, "regionfwd: --%s given twice\n", longopts[li].name);
				return -EINVAL;
			}
			seen |= 1u << li;
		}
		switch (c) {
		case 'n':
		case 't':
		case 's':
			*(c == 'n'   ? &o->node_path
			  : c == 't' ? &o->table_path
				     : &o->stats_json) = optarg;
			break;
		case 'S':
			if (strcmp(optarg, "pushed") == 0) {
				o->start_on = START_ON_PUSHED;
			} else if (strcmp(optarg, "table") == 0) {
				o->start_on = START_ON_TABLE;
			} else {
				fprintf(stderr,
					"regionfwd: --start-on takes 'pushed' or 'table', not "
					"'%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'i':
			errno = 0;
			o->idle_exit_ms = strtoull(optarg, &end, 10);
			/* Past a year, rte_get_tsc_hz() / 1000 * MS overflows and the
			 * run stopped after about a second. */
			if (*end || errno || o->idle_exit_ms == 0 || optarg[0] < '0' ||
			    optarg[0] > '9' || o->idle_exit_ms > IDLE_EXIT_MAX_MS) {
				fprintf(stderr,
					"regionfwd: --idle-exit takes milliseconds, 1..%llu (a "
					"year), not '%s'\n",
					IDLE_EXIT_MAX_MS, optarg);
				return -EINVAL;
			}
			break;
		case 'l':
			/* Taken before EAL started (main()); a spelling that
			 * scan did not see (getopt takes --lo for --log) would
			 * be parsed here and never applied. */
			if (log_early == NULL || strcmp(optarg, log_early) != 0) {
				fprintf(stderr, "regionfwd: write --log TO or --log=TO in full: "
						"it is taken before DPDK starts\n");
				return -EINVAL;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "regionfwd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (o->stats_json && o->stats_json[0] == '\0') {
		fprintf(stderr, "regionfwd: --stats-json: an empty path\n");
		return -EINVAL;
	}
	if (o->stats_json) {
		/* Written at exit: say now, not after the whole run, that it cannot
		 * be (its directory missing, or the path a directory). */
		char dir[PATH_MAX], *slash;
		struct stat st;

		snprintf(dir, sizeof(dir), "%s", o->stats_json);
		slash = strrchr(dir, '/');
		if (slash == NULL)
			strcpy(dir, ".");
		else
			slash[slash == dir] = '\0'; /* "/x.json": the root */
		/* An existing file is written in place (/dev/stdout too): it only
		 * needs to be writable; a new one needs its directory. */
		int exists = stat(o->stats_json, &st) == 0;

		if (exists ? S_ISDIR(st.st_mode) || access(o->stats_json, W_OK) != 0
			   : stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
				     access(dir, W_OK) != 0) {
			fprintf(stderr,
				"regionfwd: --stats-json %s: cannot be written (a directory, or "
				"its directory %s missing or not writable)\n",
				o->stats_json, dir);
			return -EINVAL;
		}
	}
	if (o->node_path == NULL || o->table_path == NULL) {
		fprintf(stderr, "regionfwd: --node and --table are required\n");
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static int pick_workers(struct dp_ctx *ctx)
{
	unsigned lc;

	if (ctx->node.nworkers == 0) {
		RTE_LCORE_FOREACH_WORKER(lc) {
			if (ctx->node.nworkers == DP_MAX_WORKERS)
				break;
			ctx->node.workers[ctx->node.nworkers++] = (uint16_t)lc;
		}
	}
	if (ctx->node.nworkers == 0) {
		fprintf(stderr,
			"regionfwd: no worker lcore: give EAL at least two lcores (-l 0,1)\n");
		return -EINVAL;
	}
	for (uint16_t i = 0; i < ctx->node.nworkers; i++) {
		lc = ctx->node.workers[i];
		if (lc >= RTE_MAX_LCORE || !rte_lcore_is_enabled(lc) ||
		    lc == rte_get_main_lcore()) {
			fprintf(stderr,
				"regionfwd: %s: workers: lcore %u is not an enabled worker lcore "
				"(main lcore is %u; see EAL -l)\n",
				ctx->node.source, lc, rte_get_main_lcore());
			return -EINVAL;
		}
	}
	ctx->nworkers = ctx->node.nworkers;
	return 0;
}

/* The workers' state; on failure what could not be had, and the node
 * field that sizes it, in @why. */
static int setup_workers(struct dp_ctx *ctx, char *why, size_t len)
{
	uint64_t frag_bytes = dp_frag_mem_size(ctx->node.frag_entries);
	uint64_t timeout = rte_get_tsc_hz() / 1000 * ctx->node.frag_timeout_ms;
	uint64_t flow_bytes = dp_flow_mem_size(ctx->node.content_flow_entries);
	uint64_t flow_timeout = rte_get_tsc_hz() / 1000 * ctx->node.content_flow_timeout_ms;

	for (uint16_t w = 0; w < ctx->nworkers; w++) {
		unsigned lc = ctx->node.workers[w];
		int socket = (int)rte_lcore_to_socket_id(lc);
		struct dp_lcore *l =
			rte_zmalloc_socket("dp_lcore", sizeof(*l), RTE_CACHE_LINE_SIZE, socket);

		if (l == NULL) {
			snprintf(why, len, "worker %u's state (%zu bytes)", w, sizeof(*l));
			return -ENOMEM;
		}
		ctx->workers[w] = l;
		l->pub = &ctx->pub;
		l->pool = ctx->pool;
		dp_worker_set_mtu(l, ctx->node.mtu);
		l->idle_sleep_us = ctx->node.idle_sleep_us;
		l->lcore_id = lc;
		l->idx = w;
		l->gen_seen = UINT64_MAX;
		l->frag_mem =
			rte_zmalloc_socket("dp_frag", frag_bytes, RTE_CACHE_LINE_SIZE, socket);
		if (l->frag_mem == NULL) {
			snprintf(why, len,
				 "worker %u's fragment table: %" PRIu64
				 " bytes for node frag_entries %u",
				 w, frag_bytes, ctx->node.frag_entries);
			return -ENOMEM;
		}
		dp_frag_init(&l->frag, l->frag_mem, ctx->node.frag_entries, timeout);
		l->flow_mem =
			rte_zmalloc_socket("dp_flow", flow_bytes, RTE_CACHE_LINE_SIZE, socket);
		if (l->flow_mem == NULL) {
			snprintf(why, len,
				 "worker %u's content flow table: %" PRIu64
				 " bytes for node content_flow_entries %u",
				 w, flow_bytes, ctx->node.content_flow_entries);
			return -ENOMEM;
		}
		dp_flow_init(&l->flow, l->flow_mem, ctx->node.content_flow_entries, flow_timeout);
		for (uint16_t p = 0; p < ctx->node.nports; p++) {
			if (!ctx->node.ports[p].ingress)
				continue;
			l->rx[l->nrx].port = ctx->ports.port_id[p];
			l->rx[l->nrx].queue = w;
			l->rx[l->nrx].verdicts = ctx->ports.verdicts[p];
			l->nrx++;
		}
	}
	return 0;
}

/* --idle-exit: every worker's rx count unchanged for idle_ms. The control
 * thread remembers each count and when it last moved, so the workers pay
 * nothing for the option. */
struct idle_watch {
	uint64_t last; /* TSC of the control thread's previous look */
	struct {
		uint64_t rx; /* the worker's rx count when last seen */
		uint64_t since; /* TSC when that count was first seen */
	} w[DP_MAX_WORKERS];
};

static int workers_idle(const struct dp_ctx *ctx, struct idle_watch *iw, uint64_t idle_ms)
{
	uint64_t now = rte_rdtsc(), limit = rte_get_tsc_hz() / 1000 * idle_ms;
	/* It looks every ~10 ms. A gap of a quarter of the window (50 ms at
	 * least, so that a short window still ends) means this thread was not
	 * running (a loaded or paused machine), and neither perhaps were the
	 * workers: the time is not taken as idle, the windows start again. */
	uint64_t gap = RTE_MAX(limit / 4, rte_get_tsc_hz() / 20);
	int stalled = iw->last != 0 && now - iw->last > gap;
	int idle = 1;

	iw->last = now;
	for (uint16_t w = 0; w < ctx->nworkers; w++) {
		struct dp_counters c;

		dp_counters_read(&ctx->workers[w]->cnt, &c);
		if (c.rx != iw->w[w].rx || iw->w[w].since == 0 || stalled) {
			iw->w[w].rx = c.rx;
			iw->w[w].since = now;
		}
		if (now - iw->w[w].since < limit)
			idle = 0;
	}
	return idle;
}

/* --stats-json at exit. A regular file (or none yet) is replaced whole
 * (fwd_write_atomic_mode(): a temporary file beside it, fsync'd, renamed
 * over it), so a reader (a script that polls for it, one that has it open)
 * sees the previous file or the whole new one, never half of it; written in
 * place (truncated, then written) it was half a file for as long as the
 * write took. A symlink's target is replaced, not the link. Anything else
 * (/dev/stdout, a FIFO) is written in place, and so is an existing file in
 * a directory regionfwd may not create files in (the start checks only that
 * the file can be written). 0, or -errno. */
static int stats_json_in_place(const json_t *j, const char *path)
{
	errno = 0;
	if (json_dump_file(j, path, JSON_INDENT(2) | JSON_SORT_KEYS))
		return errno ? -errno : -EIO;
	return 0;
}

static int write_stats_json(const json_t *j, const char *given)
{
	char resolved[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	int exists = stat(given, &st) == 0;
	const char *path = exists && realpath(given, resolved) ? resolved : given;
	const char *slash = strrchr(path, '/');
	struct iovec part;
	char *text;
	int rc;

	if (exists && !S_ISREG(st.st_mode))
		return stats_json_in_place(j, path);
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (text == NULL)
		return -ENOMEM;
	part.iov_base = text;
	part.iov_len = strlen(text);
	rc = fwd_write_atomic_mode(dir, slash ? slash + 1 : path, &part, 1, 0644);
	free(text);
	if ((rc == -EACCES || rc == -EROFS) && exists && access(path, W_OK) == 0)
		return stats_json_in_place(j, path);
	return rc;
}

static void print_report(struct dp_ctx *ctx, FILE *out)
{
	struct fwd_report *r = dp_ctx_report(ctx);

	if (r) {
		dp_report_print(r, out);
		fwd_report_free(r);
	}
}

/* node.pushed_table, or the control socket's path with ".pushed": one per
 * instance, as the socket is, so two regionfwd sharing a directory
 * (/run/regionfwd) never resume each other's table. */
static void saved_path(struct dp_ctx *ctx)
{
	if (ctx->node.pushed_table[0])
		snprintf(ctx->saved_path, sizeof(ctx->saved_path), "%s", ctx->node.pushed_table);
	else
		snprintf(ctx->saved_path, sizeof(ctx->saved_path), "%s.pushed",
			 ctx->node.control_socket);
}

/* The last pushed table, if it is sound and this node can run it: then the
 * generation regiond manages keeps running across a restart of regionfwd,
 * with its id and its controller (SIGHUP stays refused), instead of the
 * --table file, which may be many changes old. @return 0 running it, -1 not
 * (said why, unless there is no saved table). */
static int start_saved(struct dp_ctx *ctx, int *partial)
{
	struct dp_saved sv;
	struct fwd_err err = {0};
	char buf[1024];
	int rc = dp_saved_read(ctx->saved_path, &sv, &err);

	if (rc == -ENOENT)
		return -1;
	if (rc) {
		DP_LOG(ERR, "saved pushed table refused: %s", fwd_err_str(&err, buf, sizeof(buf)));
		return -1;
	}
	rc = dp_ctx_apply(ctx, sv.doc, sv.len, sv.pushed_by, sv.id, sv.gen_hash, NULL, 0, NULL,
			  &err);
	if (rc < 0) {
		DP_LOG(ERR, "saved pushed table %s (generation %llu) refused: %s", ctx->saved_path,
		       (unsigned long long)sv.id, fwd_err_str(&err, buf, sizeof(buf)));
		dp_saved_clear(&sv);
		return -1;
	}
	/* Then the deltas pushed since, each checked like a live one: its
	 * base must be what runs, so a journal of another chain stops here. */
	uint32_t applied = 0;

	for (; applied < sv.ndeltas; applied++) {
		const struct dp_saved_delta *d = &sv.deltas[applied];

		if (dp_ctx_apply_delta(ctx, d->changes, d->len, sv.pushed_by, d->id,
				       ctx->pub.gen->hash, d->hash, 0, NULL, &err) < 0) {
			DP_LOG(ERR,
			       "saved delta %u of %s (generation %llu) refused: %s; starting on "
			       "generation %llu",
			       applied + 1, ctx->saved_path, (unsigned long long)d->id,
			       fwd_err_str(&err, buf, sizeof(buf)),
			       (unsigned long long)ctx->pub.gen->id);
			break;
		}
	}
	if (sv.journal_note[0])
		DP_LOG(WARNING, "%s", sv.journal_note);
	/* what runs is not the last push (a record refused or lost); a torn
	 * last record was never published, and is no such loss */
	*partial = applied < sv.ndeltas || sv.journal_lost;
	snprintf(ctx->managed_by, sizeof(ctx->managed_by), "%s", sv.pushed_by);
	ctx->controller = sv.controller;
	/* What the files hold is what runs, unless part of the journal was
	 * not applied: then the next push writes them whole. They hold it as
	 * the document and its records; a journal folded while it was
	 * replayed made ctx's chain another document, which the next save
	 * writes whole (the records that follow it name that document). */
	if (applied == sv.ndeltas && !sv.journal_note[0]) {
		ctx->saved_hash = ctx->pub.gen->hash;
		if (ctx->journal.n == applied) {
			ctx->saved_doc_hash = ctx->doc_gen_hash;
			ctx->saved_controller = sv.controller;
			ctx->saved_deltas = applied;
		}
	}
	dp_saved_clear(&sv);
	return 0;
}

/* --table while the saved table runs: the file a start without the save
 * would run (a reboot clears the save's default place, /run). It went
 * unread then: a missing or broken file was found at the next boot, when
 * regionfwd would not start (a probe). Loaded and checked for residency
 * and the node's ports now (content patterns not compiled), and said. */
static void check_fallback(const struct dp_node *node, const char *path)
{
	struct fwd_err err = {0};
	struct fwd_table *t = fwd_table_load(path, &err);
	struct fwd_class *c = t ? fwd_class_build(t) : NULL;
	char buf[1024];
	int bad = t == NULL || c == NULL || fwd_residency_check(t, c, &err);

	/* and each link's port, as a build of the table checks it (a review:
	 * a link on a port the node lacks went unsaid) */
	for (uint16_t l = 0; !bad && l < t->nlinks; l++)
		bad = dp_node_link_port(node, t, l, &err) < 0;
	if (bad) {
		if (t && c == NULL)
			fwd_err_set(&err, path, 0, "", "out of memory");
		DP_LOG(WARNING,
		       "--table %s would not start regionfwd without the saved table (%s): a "
		       "restart after a reboot, or with --start-on table, would stop; mend it "
		       "(regionctl show table > FILE writes the running one)",
		       path, fwd_err_str(&err, buf, sizeof(buf)));
	}
	fwd_class_free(c);
	fwd_table_free(t);
}

/* The table to start on (--start-on). @return 0 or -1 (said) */
static int start_table(struct dp_ctx *ctx, const struct app_opts *o)
{
	struct fwd_err err = {0};
	char buf[1024];

	int partial = 0;

	if (o->start_on == START_ON_PUSHED && start_saved(ctx, &partial) == 0) {
		/* Part of the saved changes not applied (said above): what runs
		 * is not the last push, and was said to be (a probe). */
		DP_LOG(NOTICE,
		       "starting on generation %llu, %s %s (saved in %s), not on %s: the table "
		       "is managed there (--start-on table to start on the file)",
		       (unsigned long long)ctx->pub.gen->id,
		       partial ? "the last whole part of what was pushed by" : "last pushed by",
		       ctx->managed_by, ctx->saved_path, o->table_path);
		check_fallback(&ctx->node, o->table_path);
		return 0;
	}
	if (o->start_on == START_ON_TABLE) {
		/* Else a later restart would go back to a table older than the
		 * file the operator chose to run now. */
		int rc = dp_saved_remove(ctx->saved_path);

		if (rc == 1)
			DP_LOG(NOTICE, "--start-on table: removed the saved pushed table %s",
			       ctx->saved_path);
		else if (rc < 0) {
			/* Once silent (a read-only disk): the next plain restart
			 * then started on the save without a word. Said at
			 * start and in status (save_error: regiond's alarm)
			 * until a push replaces the file. */
			snprintf(ctx->save_error, sizeof(ctx->save_error),
				 "--start-on table could not remove the saved pushed table "
				 "%.200s or its .deltas (%s): a restart of regionfwd would "
				 "start on the table saved there, not on %.200s",
				 ctx->saved_path, strerror(-rc), o->table_path);
			DP_LOG(ERR, "%s", ctx->save_error);
		}
	}
	if (dp_ctx_apply_file(ctx, o->table_path, 0, &err) < 0) {
		DP_LOG(ERR, "table refused: %s", fwd_err_str(&err, buf, sizeof(buf)));
		return -1;
	}
	return 0;
}

/* The node config's fields from dp_node_fields[], the table dp_node.c reads
 * them by (regionfwd-node(5) is made from this). */
static void help_node(void)
{
	printf("node config fields (YAML or JSON, one map; unknown fields are refused):\n\n");
	for (unsigned i = 0; i < dp_node_nfields; i++) {
		const struct dp_node_field *d = &dp_node_fields[i];
		char def[32] = "";

		if (d->kind == DP_NODE_UINT)
			snprintf(def, sizeof(def), " (default %llu)", (unsigned long long)d->def);
		printf("  %-25s %s%s\n", d->name, d->help, def);
	}
}

/* Before EAL: the devices given to EAL itself (--vdev, PCI) are probed by
 * rte_eal_init(), and a second regionfwd on a running one's node config
 * (another --file-prefix, as a lab command line makes easy) took a TAP's
 * link down that way. A node config that names its control_socket says
 * which box it is: one a process serves is refused before anything is
 * touched. (The default socket lives in EAL's runtime directory, which
 * --file-prefix changes: another prefix is another box. Errors in the node
 * config are left to its own load, after EAL.) */
static int node_socket_in_use(int argc, char **argv)
{
	const char *path = NULL;
	struct dp_node *node;
	struct fwd_err err;
	int used = 0;

	for (int i = 1, app = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			app = 1;
		else if (app && strcmp(argv[i], "--node") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (app && strncmp(argv[i], "--node=", 7) == 0)
			path = argv[i] + 7;
	}
	if (path == NULL || (node = calloc(1, sizeof(*node))) == NULL)
		return 0;
	if (dp_node_load(path, node, &err) == 0 && node->control_socket[0] &&
	    dp_ctl_in_use(node->control_socket)) {
		fprintf(stderr,
			"regionfwd: control socket %s is in use by a running process: a regionfwd "
			"already runs this node; not touching its ports\n",
			node->control_socket);
		used = 1;
	}
	free(node);
	return used;
}

int main(int argc, char **argv)
{
	struct app_opts opts = {0};
	struct dp_ctx ctx;
	struct fwd_err err = {0};
	struct dp_ctl *ctl = NULL;
	char buf[1024], scarce[200];
	static struct idle_watch idle; /* --idle-exit */
	uint64_t save_tried = 0; /* TSC of the last retry of a failed save */
	int n, rc = 0, log_taken = 0;

	/* --help first: "--check-table --help" asks for help, it does not
	 * name a table called "--help". */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help-node") == 0) {
			help_node();
			return 0;
		}
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
	if ((rc = check_mode(argc, argv)) >= 0)
		return rc;

	/* --log after "--" is ours, but EAL logs before our arguments are
	 * parsed: take it now, once (a second one is refused before the
	 * first is applied). */
	const char *log_to = NULL;

	for (int i = 1, app = 0; i < argc; i++) {
		const char *v = NULL;

		if (strcmp(argv[i], "--") == 0)
			app = 1;
		else if (app && strcmp(argv[i], "--log") == 0 && i + 1 < argc)
			v = argv[++i];
		else if (app && strncmp(argv[i], "--log=", 6) == 0)
			v = argv[i] + 6;
		if (v && log_to) {
			fprintf(stderr, "regionfwd: --log given twice\n");
			return 2;
		}
		if (v)
			log_to = v;
	}
	log_early = log_to;
	if (log_to) {
		int lrc = dp_log_redirect(log_to);

		log_taken = 1;
		if (lrc) {
			fprintf(stderr, "regionfwd: --log %s: %s\n", log_to,
				lrc == -ENOTSUP ? "built without libsystemd (stderr goes to "
						  "the journal under systemd too)"
						: "takes stderr, journal or syslog");
			return 2;
		}
	}
	if (!log_taken && dp_log_plain()) {
		fprintf(stderr, "regionfwd: cannot open the log stream\n");
		return 1;
	}

	/* Our arguments (after "--") checked before EAL starts, on a copy
	 * (getopt reorders what it reads): a mistake in them (--start-on
	 * given twice) once let EAL probe the machine's PCI devices and make
	 * its runtime directory before it was said. */
	{
		int dd = 1, k = 1;
		char **copy;
		struct app_opts dry = {0};

		while (dd < argc && strcmp(argv[dd], "--") != 0)
			dd++;
		if ((copy = calloc((size_t)(argc - dd + 2), sizeof(*copy))) == NULL) {
			fprintf(stderr, "regionfwd: out of memory\n");
			return 1;
		}
		copy[0] = argv[0];
		for (int i = dd + 1; i < argc; i++)
			copy[k++] = argv[i];
		rc = parse_app_args(k, copy, &dry);
		free(copy);
		if (rc)
			return 2; /* said; as every usage error of the three programs */
	}
	if (node_socket_in_use(argc, argv))
		return 1;
	memset(&ctx, 0, sizeof(ctx));
	pthread_mutex_init(&ctx.lock, NULL);
	ctx.next_gen_id = 1;
	ctx.totals = fwd_report_new();
	if (ctx.totals == NULL) {
		fprintf(stderr, "regionfwd: out of memory\n");
		return 1;
	}
	/* This run, told apart from the one before it in counter reports (its
	 * start is set again when the workers are launched). */
	ctx.started_ns = fwd_mono_ns();
	if (getrandom(&ctx.instance, sizeof(ctx.instance), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(ctx.instance))
		ctx.instance = ctx.started_ns ^ (uint64_t)getpid() << 40 ^ (uint64_t)time(NULL);
	ctx.instance |= ctx.instance == 0;

	n = rte_eal_init(argc, argv);
	/* Some of EAL's refusals leave rte_errno 0 (another primary process
	 * on this --file-prefix): "EAL init failed: Success" told the
	 * operator nothing; EAL's own line above it does. */
	if (n < 0)
		rte_exit(EXIT_FAILURE, "EAL init failed%s%s\n",
			 rte_errno ? ": " : " (EAL's lines above say why)",
			 rte_errno ? rte_strerror(rte_errno) : "");
	argc -= n;
	argv += n;
	argv[0] = (char *)"regionfwd";
	/* Early, so a stop during a long start (a 1M-prefix table) still ends
	 * through the normal exit path: ports closed, pcaps flushed. */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN); /* a vanished control client is an error, not our death */
	/* the command line's fault, said above: 2, as every usage error of
	 * the three programs (a start that fails is 1) */
	if (parse_app_args(argc, argv, &opts))
		rte_exit(2, "bad arguments\n");
	if (dp_node_load(opts.node_path, &ctx.node, &err))
		rte_exit(EXIT_FAILURE, "node config refused: %s\n",
			 fwd_err_str(&err, buf, sizeof(buf)));
	if (pick_workers(&ctx))
		rte_exit(EXIT_FAILURE, "cannot start\n");
	if (ctx.node.control_socket[0] == '\0')
		snprintf(ctx.node.control_socket, sizeof(ctx.node.control_socket),
			 "%s/regionfwd.sock", rte_eal_get_runtime_dir());
	/* Before any port is touched: a second regionfwd on a running one's
	 * node config (another --file-prefix) probed its devices -- a TAP's
	 * link went down, an AF_PACKET socket joined its fanout -- and only
	 * then found the control socket taken, leaving the running box
	 * forwarding nothing while it said healthy. */
	if (dp_ctl_in_use(ctx.node.control_socket))
		rte_exit(EXIT_FAILURE,
			 "control socket %s is in use by a running process: a regionfwd already "
			 "runs this node; not touching its ports\n",
			 ctx.node.control_socket);

	/* A frame of the MTU with two VLAN tags and the FCS fits one mbuf, so
	 * headers are never split across segments (multiseg_headers). */
	ctx.pool =
		rte_pktmbuf_pool_create("regionfwd_mbufs", ctx.node.mbufs, ctx.node.mbuf_cache, 0,
					RTE_MAX((unsigned)RTE_MBUF_DEFAULT_BUF_SIZE,
						RTE_PKTMBUF_HEADROOM + ctx.node.mtu + 26u),
					(int)rte_socket_id());
	if (ctx.pool == NULL)
		rte_exit(EXIT_FAILURE, "cannot create a pool of %u mbufs: %s\n", ctx.node.mbufs,
			 rte_strerror(rte_errno));
	if (dp_ports_init(&ctx.node, ctx.nworkers, ctx.pool, &ctx.ports))
		rte_exit(EXIT_FAILURE, "port setup failed (see above)\n");

	ctx.pub.qsv =
		rte_zmalloc("dp_qsv", rte_rcu_qsbr_get_memsize(ctx.nworkers), RTE_CACHE_LINE_SIZE);
	if (ctx.pub.qsv == NULL || rte_rcu_qsbr_init(ctx.pub.qsv, ctx.nworkers))
		rte_exit(EXIT_FAILURE, "cannot set up RCU\n");
	saved_path(&ctx);
	/* Before start_table: --start-on table removes the save, and every
	 * push replaces it. A file regionfwd did not write there is neither
	 * read, removed nor replaced: regionfwd starts on --table and forwards
	 * (a corrupt disk must not stop the fast path), and every push says,
	 * in its status, that it could not be saved (dp_ctx_save_pushed). */
	if (dp_saved_foreign(ctx.saved_path, &err)) {
		char why[1024];

		DP_LOG(ERR, "%s; starting on --table, and saving no push there while it stays",
		       fwd_err_str(&err, why, sizeof(why)));
		opts.start_on = START_ON_FILE_ONLY;
	}
	if (start_table(&ctx, &opts) < 0)
		rte_exit(EXIT_FAILURE, "not starting without a valid table\n");
	if (setup_workers(&ctx, scarce, sizeof(scarce)))
		start_failed(&ctx,
			     "cannot allocate %s: a smaller value, or more memory (EAL -m, "
			     "hugepages)\n",
			     scarce);
	/* The capture's pools and rings, before the workers start: a capture
	 * asked for at an incident must not fail for memory then. */
	ctx.cap = dp_cap_create(&ctx.node, &ctx.ports, ctx.workers, ctx.nworkers,
				rte_pktmbuf_data_room_size(ctx.pool) - RTE_PKTMBUF_HEADROOM);
	if (ctx.cap == NULL)
		start_failed(&ctx,
			     "cannot allocate the capture's %u mbufs and rings of %u: %s (node "
			     "capture_mbufs, capture_ring)\n",
			     ctx.node.capture_mbufs, ctx.node.capture_ring,
			     rte_strerror(errno)); /* errno: DPDK's rte_errno codes too */
	if (dp_telemetry_register(&ctx))
		DP_LOG(WARNING, "telemetry commands not registered");
	ctl = dp_ctl_create(&ctx, ctx.node.control_socket, ctx.node.control_group);
	if (ctl == NULL)
		start_failed(&ctx, "cannot open the control socket %s\n", ctx.node.control_socket);
	DP_LOG(INFO, "control socket %s", ctx.node.control_socket);

	/* Counting starts here, just before the workers do: the rates over a
	 * new run's uptime once counted EAL's, the ports' and the table's
	 * setup too, 18-26 % low (a probe). The devices' counters from here
	 * too, and before a worker sends (a reset after the launch zeroed what
	 * a stuck ring had taken: the suite): what a NIC missed while the table
	 * loaded read as a live loss rate (a review). A PMD without a reset
	 * keeps its own. The store is relaxed: the telemetry thread may read
	 * it meanwhile, for an uptime (a report before it is of setup). */
	/* The ports' links before a worker sends: a link whose port is down
	 * at the start is out of its groups, and what is steered to it counts
	 * as port_down, from the first packet (a probe: thousands sent into a
	 * down port first, as tx_full). */
	dp_ctx_poll_links(&ctx);
	dp_ports_stats_reset(&ctx.ports);
	__atomic_store_n(&ctx.started_ns, fwd_mono_ns(), __ATOMIC_RELAXED);
	for (uint16_t w = 0; w < ctx.nworkers; w++) {
		rc = rte_eal_remote_launch(dp_worker_main, ctx.workers[w],
					   ctx.workers[w]->lcore_id);
		if (rc)
			rte_exit(EXIT_FAILURE, "cannot launch worker on lcore %u\n",
				 ctx.workers[w]->lcore_id);
	}
	DP_LOG(INFO, "forwarding with %u workers on %u ports", ctx.nworkers, ctx.node.nports);
	/* A retired generation's FIBs are freed off this thread from now on:
	 * a push is answered without waiting for DPDK's RIB teardown. */
	dp_fib_background(1);

	while (!sig_quit) {
		dp_ctl_poll(ctl, 10);
		dp_ctx_fold_journal(&ctx);
		dp_ctx_poll_links(&ctx);
		dp_cap_poll(ctx.cap, &ctx.pub);
		if (ctx.save_error[0] &&
		    rte_get_timer_cycles() - save_tried > 2 * rte_get_timer_hz()) {
			/* The push ran but its save failed (a full or read-only
			 * disk): tried again, so a restart resumes it once the disk
			 * takes it, without waiting for the next push. */
			save_tried = rte_get_timer_cycles();
			dp_ctx_save_retry(&ctx);
		}
		if (sig_usr1) {
			sig_usr1 = 0;
			print_report(&ctx, stdout);
		}
		if (sig_hup && ctx.managed_by[0]) {
			/* Two sources of truth would flap: the file's table now,
			 * the controller's again a second later. Refused and said;
			 * a restart of regionfwd returns to the file. */
			sig_hup = 0;
			DP_LOG(WARNING,
			       "SIGHUP refused: generation %llu was pushed by %s, which "
			       "manages the table; change it there (regionctl apply), not in %s",
			       (unsigned long long)ctx.pub.gen->id, ctx.managed_by,
			       opts.table_path);
		}
		if (sig_hup) {
			sig_hup = 0;
			/* a document someone wrote: its written-table checks too */
			rc = dp_ctx_apply_file(&ctx, opts.table_path, 1, &err);
			if (rc < 0)
				DP_LOG(ERR,
				       "reload refused: %s; still forwarding on generation %llu",
				       fwd_err_str(&err, buf, sizeof(buf)),
				       (unsigned long long)ctx.pub.gen->id);
			else if (rc == 1)
				DP_LOG(INFO, "reload: %s is unchanged, still generation %llu",
				       opts.table_path, (unsigned long long)ctx.pub.gen->id);
			rc = 0;
		}
		if (opts.idle_exit_ms && workers_idle(&ctx, &idle, opts.idle_exit_ms))
			break;
	}

	/* Relaxed: workers only need to see it eventually; the lcore wait below
	 * is the synchronisation point. */
	__atomic_store_n(&ctx.pub.quit, 1, __ATOMIC_RELAXED);
	rte_eal_mp_wait_lcore();

	print_report(&ctx, stdout);
	if (opts.stats_json) {
		struct fwd_report *r = dp_ctx_report(&ctx);
		json_t *j = r ? fwd_report_json(r) : NULL;

		int wrc = j == NULL ? -ENOMEM : write_stats_json(j, opts.stats_json);

		if (wrc) {
			DP_LOG(ERR, "cannot write --stats-json %s: %s", opts.stats_json,
			       strerror(-wrc));
			rc = 1;
		}
		json_decref(j);
		fwd_report_free(r);
	}
	/* The telemetry thread lives until rte_eal_cleanup(): no command may
	 * read the ports, workers or generations freed below. */
	dp_telemetry_stop();
	dp_ctl_free(ctl);
	dp_cap_free(ctx.cap); /* the workers have stopped */
	dp_ports_close(&ctx.ports);
	for (uint16_t w = 0; w < ctx.nworkers; w++) {
		if (ctx.workers[w]) {
			rte_free(ctx.workers[w]->frag_mem);
			rte_free(ctx.workers[w]->flow_mem);
		}
		rte_free(ctx.workers[w]);
	}
	dp_ctx_standby_stop(&ctx);
	dp_fib_background(0); /* every release done; what is freed below is freed here */
	dp_gen_free(ctx.pub.gen);
	free(ctx.doc);
	rte_free(ctx.pub.qsv);
	rte_mempool_free(ctx.pool);
	fwd_report_free(ctx.totals);
	rte_eal_cleanup();
	return rc;
}
