/*
 * regiond - the control-plane daemon: holds the desired table, validates,
 * pushes it to regionfwd, keeps its history, serves the API (docs/api.md).
 *
 *   regiond --dataplane SOCK [--api-socket SOCK] [--state-dir DIR] [--table FILE]
 *           [--listen ADDR:PORT --token-file FILE] [--keep N] [--max-body BYTES]
 *           [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE [--tls-writers FILE]]]
 *           [--dataplane-timeout MS] [--content-compile-cpu S]
 *           [--xdp-iface IF ...] [--log stderr|journal|syslog] [--log-level L]
 *           [--feed-table REGION=TABLE ... [--feed-bird-socket PATH] [--feed-hold S]]
 *           [--fleet-endpoints URL[,URL...] --fleet-node N --fleet-facility F
 *            [--fleet-label K=V ...] [--fleet-ca FILE --fleet-cert FILE --fleet-key FILE]
 *            [--fleet-user U --fleet-password-file FILE] [--fleet-validate-only]]
 *           (every option: options[] below, or regiond --help)
 *
 * The main thread keeps regionfwd in sync (it pushes the current generation
 * when regionfwd restarted or runs something else) and runs the commit-confirm
 * timer; the API threads serve requests; with --fleet-*, the fleet agent's
 * thread (ctl_fleet.h) applies the facility's table from etcd. All of them
 * take one mutex around the state. Only main() exits.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_api.h"
#include "fwd_log.h"
#include "fwd_clock.h"
#include "ctl_confirm.h"
#include "ctl_dp.h"
#include "ctl_file.h"
#include "ctl_state.h"
#include "ctl_tls.h"
#include "fwd_opts.h"
#include "fwd_unixsock.h"
#include "fwd_doc.h"
#include "fwd_embed.h"
#include "ctl_content.h"
#include "ctl_feed.h"
#include "ctl_fleet.h"
#include "ctl_rollout_driver.h"
#ifdef REGIOND_BPF
#include "ctl_filter.h"
#endif

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	/* which, for the stop's log line (shut_down); atomic: the API's
	 * threads read it (ctl_api.c stop_signalled) */
	__atomic_store_n(&quit, sig, __ATOMIC_RELAXED);
}

/* SIGHUP and SIGUSR1, which regionfwd takes (reload its --table, print
 * its counters), once ended regiond at once and without a word; under
 * systemd, which counts SIGHUP's end as clean, Restart=on-failure left it
 * down (kill -HUP sent to both, by an operator or a logrotate habit).
 * regiond has nothing to reload or reopen: they are logged, and it goes on. */
static volatile sig_atomic_t nudged;

static void on_nudge(int sig)
{
	nudged = sig;
}

static void said_nudge(void)
{
	int sig = nudged;

	if (sig == 0)
		return;
	nudged = 0;
	fwd_log(FWD_LOG_NOTICE,
		"%s ignored: regiond has nothing to reload or reopen (its table changes through "
		"its API, regionctl apply; it logs to stderr, the journal or syslog); "
		"regionctl status and counters say what runs",
		sig == SIGHUP ? "SIGHUP" : "SIGUSR1");
}

#ifdef REGIOND_BPF
#define XDP_MAX_IFACES CTL_FILTER_MAX_IFACES
#else
#define XDP_MAX_IFACES 8 /* the options are refused anyway */
#endif

/* What the command line sets. The values start as the option table's
 * defaults, parsed like the command line, so --help cannot name a default
 * that is not the one in force. */
struct regiond_opts {
	const char *dataplane, *api_socket, *state_dir, *table, *listen, *token_file,
		*read_token_file;
	const char *tls_cert, *tls_key, *tls_client_ca, *tls_writers;
	uint64_t keep, max_body, max_buffered, min_body_rate, dp_timeout_ms, content_cpu_s;
	struct fwd_opt_list xdp_ifaces;
	uint64_t xdp_mode; /* index in xdp_modes[] */
	const char *bpf_pin_dir;
	uint64_t xdp_max_prefixes, xdp_max_groups;
	uint64_t log_target, log_level; /* indexes in fwd_log_targets[], fwd_log_levels[] */
	struct fwd_opt_list feed_tables; /* REGION=TABLE: the routing feed (ctl_feed.h) */
	uint64_t feed_hold_s, feed_batch_ms, feed_max_prefixes;
	const char *feed_bird_socket;
	/* --fleet-*: the fleet agent (ctl_fleet.h, docs/fleet.md) */
	const char *fleet_endpoints, *fleet_node, *fleet_facility;
	struct fwd_opt_list fleet_labels;
	const char *fleet_ca, *fleet_cert, *fleet_key, *fleet_user, *fleet_password_file;
	uint64_t fleet_lease_s, fleet_report_ms, fleet_timeout_ms, fleet_unpin_after_s,
		fleet_stuck_after_s;
	int fleet_validate_only;
	int check_dataplane;
};

/* Index = enum ctl_xdp_mode. */
static const char *const xdp_modes[] = {"auto", "native", "generic", NULL};
#ifdef REGIOND_BPF
_Static_assert(CTL_XDP_AUTO == 0 && CTL_XDP_NATIVE == 1 && CTL_XDP_GENERIC == 2,
	       "xdp_modes[] is indexed by enum ctl_xdp_mode");
#endif

#define AT(m) offsetof(struct regiond_opts, m)

/* Every option, once: getopt_long's table, --help, the defaults and the
 * value checks all come from here, in this order. */
static const struct fwd_opt options[] = {
	{.name = "dataplane",
	 .arg = "SOCK",
	 .kind = FWD_OPT_STR,
	 .off = AT(dataplane),
	 .help = "regionfwd's control socket (node config control_socket); required "
		 "but with --fleet-validate-only"},
	{.name = "api-socket",
	 .arg = "SOCK",
	 .def = "/run/regiond/api.sock",
	 .kind = FWD_OPT_STR,
	 .off = AT(api_socket),
	 .help = "where the API listens"},
	{.name = "state-dir",
	 .arg = "DIR",
	 .def = "/var/lib/regiond",
	 .kind = FWD_OPT_STR,
	 .off = AT(state_dir),
	 .help = "history and the last good table"},
	{.name = "table",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(table),
	 .help = "first table when the state directory is empty"},
	{.name = "listen",
	 .arg = "ADDR:PORT",
	 .kind = FWD_OPT_STR,
	 .off = AT(listen),
	 .help = "also serve the API on TCP (a numeric ADDR:PORT or [V6ADDR]:PORT); every "
		 "request there needs a credential"},
	{.name = "token-file",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(token_file),
	 .help = "bearer tokens for TCP reads and writes ([NAME ]TOKEN a line; mode 0600)"},
	{.name = "read-token-file",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(read_token_file),
	 .help = "bearer tokens for TCP reads only ([NAME ]TOKEN a line; mode 0600)"},
	{.name = "tls-cert",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(tls_cert),
	 .help = "serve --listen over TLS only: the server certificate (PEM, chain after it)"},
	{.name = "tls-key",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(tls_key),
	 .help = "--tls-cert's private key (PEM, unencrypted; mode 0600 or stricter)"},
	{.name = "tls-client-ca",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(tls_client_ca),
	 .help = "TCP clients need a certificate issued by these CAs (PEM); it may read"},
	{.name = "tls-writers",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(tls_writers),
	 .help = "client certificate subjects that may write too, one a line (CN=..,O=..)"},
	{.name = "keep",
	 .arg = "N",
	 .def = "20",
	 .kind = FWD_OPT_UINT,
	 .off = AT(keep),
	 .min = 2,
	 .max = 10000,
	 .refused = "--keep takes 2..10000",
	 .help = "generations kept for rollback"},
	{.name = "dataplane-timeout",
	 .arg = "MS",
	 .def = "120000",
	 .kind = FWD_OPT_UINT,
	 .off = AT(dp_timeout_ms),
	 .min = 1000,
	 .max = 3600000,
	 .refused = "--dataplane-timeout takes 1000..3600000 (milliseconds)",
	 .help = "how long a push waits for regionfwd; it refuses the table past that"},
	{.name = "content-compile-cpu",
	 .arg = "S",
	 .def = "30",
	 .kind = FWD_OPT_UINT,
	 .off = AT(content_cpu_s),
	 .min = 1,
	 .max = 3600,
	 .refused = "--content-compile-cpu takes 1..3600 (seconds)",
	 .help = "CPU time a table's content rules may take to compile; past it they are "
		 "refused (pattern_too_expensive)"},
	{.name = "max-body",
	 .arg = "BYTES",
	 .def = "268435456",
	 .kind = FWD_OPT_UINT,
	 .off = AT(max_body),
	 .min = 1024,
	 .max = UINT64_MAX,
	 .refused = "--max-body takes bytes >= 1024",
	 .help = "largest request body"},
	{.name = "max-buffered",
	 .arg = "BYTES",
	 .def = "0",
	 .kind = FWD_OPT_UINT,
	 .off = AT(max_buffered),
	 .min = 0,
	 .max = UINT64_MAX,
	 .refused = "--max-buffered takes bytes (0: twice --max-body)",
	 .help = "request bodies held at once, all together (0: twice --max-body)"},
	{.name = "min-body-rate",
	 .arg = "BYTES",
	 .def = "262144",
	 .kind = FWD_OPT_UINT,
	 .off = AT(min_body_rate),
	 .min = 1024,
	 .max = UINT64_MAX,
	 .refused = "--min-body-rate takes bytes a second >= 1024",
	 .help = "bytes a second a request body must average after 10 s, else its "
		 "connection is closed (a slow link: lower it)"},
	{.name = "xdp-iface",
	 .arg = "IF",
	 .kind = FWD_OPT_LIST,
	 .off = AT(xdp_ifaces),
	 .max = XDP_MAX_IFACES,
	 .mark = 1, /* needs libbpf */
	 .help = "attach the XDP filter to IF (repeat for more)"},
	{.name = "xdp-mode",
	 .arg = "M",
	 .def = "auto",
	 .kind = FWD_OPT_CHOICE,
	 .off = AT(xdp_mode),
	 .choices = xdp_modes,
	 .refused = "--xdp-mode takes auto, native or generic",
	 .mark = 1, /* needs libbpf */
	 .help = "auto (native, else generic: reported), native or generic"},
	{.name = "bpf-pin-dir",
	 .arg = "DIR",
	 .def = "/sys/fs/bpf/regiond",
	 .kind = FWD_OPT_STR,
	 .off = AT(bpf_pin_dir),
	 .mark = 1, /* needs libbpf; without --xdp-iface, where an earlier filter is looked for */
	 .help = "where the filter is pinned (without --xdp-iface: where a filter an earlier "
		 "regiond left is looked for)"},
	{.name = "xdp-max-prefixes",
	 .arg = "N",
	 .def = "131072",
	 .kind = FWD_OPT_UINT,
	 .off = AT(xdp_max_prefixes),
	 .min = 16,
	 .max = 16u << 20,
	 .refused = "--xdp-max-prefixes takes 16..16777216",
	 .mark = 1, /* needs libbpf */
	 .help = "filter capacity: prefixes, 16..16777216"},
	{.name = "xdp-max-groups",
	 .arg = "N",
	 .def = "32768",
	 .kind = FWD_OPT_UINT,
	 .off = AT(xdp_max_groups),
	 .min = 16,
	 /* Both halves' groups of 256 entries are indexed in 32 bits, in the
	 * loader and the program: 2 * N * 256 < 2^32 (16777216 made a map of
	 * 0 entries, a review). 16 GiB of groups. */
	 .max = (8u << 20) - 1,
	 .refused = "--xdp-max-groups takes 16..8388607",
	 .mark = 1, /* needs libbpf */
	 .help = "filter capacity: IPv4 256-entry groups, 16..8388607"},
	{.name = "log",
	 .arg = "TO",
	 .def = "stderr",
	 .kind = FWD_OPT_CHOICE,
	 .off = AT(log_target),
	 .choices = fwd_log_targets,
	 .refused = "--log takes stderr, journal or syslog",
	 .help = "stderr (timestamped), journal (with fields) or syslog"},
	{.name = "log-level",
	 .arg = "L",
	 .def = "info",
	 .kind = FWD_OPT_CHOICE,
	 .off = AT(log_level),
	 .choices = fwd_log_levels,
	 .refused = "--log-level takes err, warning, notice, info or debug",
	 .help = "the least severe level logged: err, warning, notice, info, debug"},
	{.name = "feed-table",
	 .arg = "REGION=TABLE",
	 .kind = FWD_OPT_LIST,
	 .off = AT(feed_tables),
	 .max = CTL_RIB_MAX_REGIONS,
	 .help = "learn REGION's prefixes from kernel routing table TABLE (repeat; "
		 "docs/bgp-feed.md)"},
	{.name = "feed-bird-socket",
	 .arg = "PATH",
	 .kind = FWD_OPT_STR,
	 .off = AT(feed_bird_socket),
	 .help = "BIRD's control socket: the feed is lost while a BGP session is down"},
	{.name = "feed-hold",
	 .arg = "S",
	 .def = "90",
	 .kind = FWD_OPT_UINT,
	 .off = AT(feed_hold_s),
	 .min = 0,
	 .max = 86400,
	 .refused = "--feed-hold takes 0..86400 (seconds)",
	 .help = "a lost feed's prefixes are kept this long, then withdrawn"},
	{.name = "feed-batch-ms",
	 .arg = "MS",
	 .def = "100",
	 .kind = FWD_OPT_UINT,
	 .off = AT(feed_batch_ms),
	 .min = 10,
	 .max = 60000,
	 .refused = "--feed-batch-ms takes 10..60000",
	 .help = "route changes are coalesced and applied as one delta this often"},
	{.name = "feed-max-prefixes",
	 .arg = "N",
	 .def = "2000000",
	 .kind = FWD_OPT_UINT,
	 .off = AT(feed_max_prefixes),
	 .min = 1,
	 .max = 16u << 20,
	 .refused = "--feed-max-prefixes takes 1..16777216",
	 .help = "learned prefixes at most; routes past it are refused, with an alarm"},
	{.name = "fleet-endpoints",
	 .arg = "URL[,URL]",
	 .kind = FWD_OPT_STR,
	 .off = AT(fleet_endpoints),
	 .help = "fleet mode: etcd's client URLs (http:// or https://); docs/fleet.md"},
	{.name = "fleet-node",
	 .arg = "N",
	 .kind = FWD_OPT_STR,
	 .off = AT(fleet_node),
	 .help = "fleet mode: this node's name (1..64 of a-z 0-9 -)"},
	{.name = "fleet-facility",
	 .arg = "F",
	 .kind = FWD_OPT_STR,
	 .off = AT(fleet_facility),
	 .help = "fleet mode: this node's facility (1..32 of a-z 0-9 -)"},
	{.name = "fleet-label",
	 .arg = "K=V",
	 .kind = FWD_OPT_LIST,
	 .off = AT(fleet_labels),
	 .max = CTL_FLEET_MAX_LABELS,
	 .help = "fleet mode: a label in the node's report, for rollouts (repeat)"},
	{.name = "fleet-ca",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(fleet_ca),
	 .help = "fleet mode: the CA that signs etcd's certificates (PEM)"},
	{.name = "fleet-cert",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(fleet_cert),
	 .help = "fleet mode: the client certificate etcd asks for (PEM, no CN: docs/fleet.md)"},
	{.name = "fleet-key",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(fleet_key),
	 .help = "fleet mode: --fleet-cert's key (PEM; mode 0600 or stricter)"},
	{.name = "fleet-user",
	 .arg = "U",
	 .kind = FWD_OPT_STR,
	 .off = AT(fleet_user),
	 .help = "fleet mode: etcd user (its role may write its facility's keys only)"},
	{.name = "fleet-password-file",
	 .arg = "FILE",
	 .kind = FWD_OPT_STR,
	 .off = AT(fleet_password_file),
	 .help = "fleet mode: --fleet-user's password, first line (mode 0600 or stricter)"},
	{.name = "fleet-lease",
	 .arg = "S",
	 .def = "10",
	 .kind = FWD_OPT_UINT,
	 .off = AT(fleet_lease_s),
	 .min = 2,
	 .max = 3600,
	 .refused = "--fleet-lease takes 2..3600 (seconds)",
	 .help = "fleet mode: the node's report lives this long without etcd hearing from it"},
	{.name = "fleet-report-ms",
	 .arg = "MS",
	 .def = "2000",
	 .kind = FWD_OPT_UINT,
	 .off = AT(fleet_report_ms),
	 .min = 100,
	 .max = 600000,
	 .refused = "--fleet-report-ms takes 100..600000",
	 .help = "fleet mode: the node's report is rewritten at least this often (counters)"},
	{.name = "fleet-timeout-ms",
	 .arg = "MS",
	 .def = "2000",
	 .kind = FWD_OPT_UINT,
	 .off = AT(fleet_timeout_ms),
	 .min = 100,
	 .max = 60000,
	 .refused = "--fleet-timeout-ms takes 100..60000",
	 .help = "fleet mode: one etcd call waits at most this long per endpoint"},
	{.name = "fleet-unpin-after",
	 .arg = "S",
	 .def = "60",
	 .kind = FWD_OPT_UINT,
	 .off = AT(fleet_unpin_after_s),
	 .min = 0,
	 .max = 86400,
	 .refused = "--fleet-unpin-after takes 0..86400 (seconds)",
	 .help = "fleet mode: the leader deletes a pin left by a finished rollout after S "
		 "seconds (0: never; other stray pins are only reported)"},
	{.name = "fleet-stuck-after",
	 .arg = "S",
	 .def = "3600",
	 .kind = FWD_OPT_UINT,
	 .off = AT(fleet_stuck_after_s),
	 .min = 1,
	 .max = 86400,
	 .refused = "--fleet-stuck-after takes 1..86400 (seconds)",
	 .help = "fleet mode: a node still applying one target after S seconds raises its "
		 "fleet alarm (health degraded); below the rollouts' --sync-timeout a wave "
		 "node would raise it mid-rollout"},
	{.name = "fleet-validate-only",
	 .kind = FWD_OPT_FLAG,
	 .off = AT(fleet_validate_only),
	 .help = "fleet mode without regionfwd: validate and report each target, apply "
		 "nothing (the scale-test mode)"},
	{.name = "check-dataplane",
	 .kind = FWD_OPT_FLAG,
	 .off = AT(check_dataplane),
	 .help = "only say whether regionfwd answers a status on --dataplane's socket "
		 "(exit 0) or not (1), and exit (regionfwd-preflight's probe)"},
	{.name = "help", .kind = FWD_OPT_HELP, .help = "this help"},
};

#undef AT

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: regiond --dataplane SOCK [options]\n"
		     "       regiond --fleet-validate-only --fleet-endpoints URL --fleet-node N "
		     "--fleet-facility F [options]\n"
		     "       regiond --check-dataplane --dataplane SOCK\n");
	fwd_opts_print(out, options, NOPTIONS);
}

/* Set what option @d sets from @arg. @return 0, or 2 (the exit status)
 * after saying why. */

/* --check-dataplane's bound on regionfwd's answer: a status is answered
 * in milliseconds; the preflight asks again until its own wait is over. */
#define CHECK_DATAPLANE_MS 5000

/* --check-dataplane: whether regionfwd answers on its control socket
 * @sock. A socket file alone says nothing: one regionfwd left when killed
 * (kill -9, the OOM killer) refuses every connection, and the units'
 * preflight once took it for a running regionfwd. Nor does a socket that
 * accepts: a stopped (SIGSTOP) or hung regionfwd, or another program on
 * the path, accepts and never answers, and passed. So it asks for a
 * status, the cheapest request of the channel, and wants its reply, a
 * StatusReply framed as regionfwd frames one, within CHECK_DATAPLANE_MS.
 * @return the exit status: 0, 1 (said why), 2 without --dataplane. */
static int check_dataplane(const char *sock)
{
	Regionfwd__Ctl__Empty req = REGIONFWD__CTL__EMPTY__INIT;
	ProtobufCMessage *reply = NULL;
	struct ctl_dp *dp;
	struct fwd_err e = {0};
	int rc;

	if (sock == NULL) {
		fwd_log(FWD_LOG_ERR, "--check-dataplane needs --dataplane SOCK");
		return 2;
	}
	rc = fwd_unix_probe(sock);
	if (rc != 0) {
		struct stat sb;
		/* connect() to what is not a socket is "refused" too: a path
		 * given wrong read as a regionfwd down (a walkthrough). */
		int not_sock = rc == -ECONNREFUSED && stat(sock, &sb) == 0 && !S_ISSOCK(sb.st_mode);

		fprintf(stderr, "regiond: regionfwd's control socket %s: %s\n", sock,
			not_sock ? (S_ISDIR(sb.st_mode) ? "is a directory, not a socket"
							: "is not a socket (a file)")
			: rc == -ECONNREFUSED ? "nothing accepts on it"
					      : strerror(-rc));
		return 1;
	}
	if ((dp = ctl_dp_create(sock)) == NULL) {
		fprintf(stderr, "regiond: regionfwd's control socket %s: %s\n", sock,
			strerror(errno));
		return 1;
	}
	rc = ctl_dp_call(dp, REGIONFWD__CTL__OP__OP_STATUS, &req.base, &reply, CHECK_DATAPLANE_MS,
			 &e);
	ctl_dp_free(dp);
	if (rc == 0) {
		protobuf_c_message_free_unpacked(reply, NULL);
		return 0;
	}
	/* Said without ": " inside: the preflight quotes what follows the
	 * last one. */
	if (e.reason_code != FWD_R_DATAPLANE_UNAVAILABLE)
		fprintf(stderr,
			"regiond: regionfwd's control socket %s: regionfwd refused a status "
			"request (%s)\n",
			sock, fwd_reason_name(e.reason_code));
	else if (strstr(e.reason, "timed out"))
		fprintf(stderr,
			"regiond: regionfwd's control socket %s: it accepts, but no status "
			"reply came within %d s (a stopped or hung regionfwd, or not regionfwd)\n",
			sock, CHECK_DATAPLANE_MS / 1000);
	else {
		/* ctl_dp_call's "... (broken reply)", "... (Connection reset
		 * by peer)": what is in the parentheses */
		const char *in = strrchr(e.reason, '(');
		char what[sizeof(e.reason)];

		snprintf(what, sizeof(what), "%s", in ? in + 1 : e.reason);
		what[strcspn(what, ")")] = '\0';
		fprintf(stderr,
			"regiond: regionfwd's control socket %s: it accepts, but gave no status "
			"reply (%s)\n",
			sock,
			strcmp(what, "broken reply") == 0 ? "what came is not regionfwd's framing"
							  : what);
	}
	return 1;
}

/* The string values' own form, checked with the numbers' (exit 2): a
 * --listen that is no address, or a socket path sun_path cannot hold, was
 * found only when regiond went to bind or connect, and exited 1 as if the
 * start had failed, not the command line (and a --feed-bird-socket past
 * sun_path was once cut to 107 bytes in silence). @return 0 or 2 (said). */
static int check_values(const struct regiond_opts *o)
{
	static const struct {
		const char *name;
		size_t off;
	} sockets[] = {{"--dataplane", offsetof(struct regiond_opts, dataplane)},
		       {"--api-socket", offsetof(struct regiond_opts, api_socket)},
		       {"--feed-bird-socket", offsetof(struct regiond_opts, feed_bird_socket)}};
	const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);

	if (o->listen && fwd_parse_listen(o->listen, NULL)) {
		fwd_log(FWD_LOG_ERR,
			"--listen %s: not a numeric address and a port in 1..65535 (ADDR:PORT "
			"or [V6ADDR]:PORT, decimal digits) (see 'regiond --help')",
			o->listen);
		return 2;
	}
	for (size_t i = 0; i < sizeof(sockets) / sizeof(sockets[0]); i++) {
		const char *path = *(const char *const *)((const char *)o + sockets[i].off);

		if (path && strlen(path) >= max) {
			fwd_log(FWD_LOG_ERR,
				"%s %s: a path under %zu bytes (a socket's limit), not %zu",
				sockets[i].name, path, max, strlen(path));
			return 2;
		}
	}
	return 0;
}

/* The command line into @o. @return -1 to go on, else the exit status: 0
 * after --help, 2 for a usage error (said, with the usage). */
static int parse_options(int argc, char **argv, struct regiond_opts *o)
{
	struct fwd_err e = {0};
	uint64_t given = 0, repeated = 0;

	switch (fwd_opts_parse(options, NOPTIONS, argc, argv, o, &given, &repeated, &e)) {
	case FWD_OPTS_HELP:
		usage(stdout);
		return 0;
	case FWD_OPTS_ERROR:
		/* The reason, and where the rest is: fifty lines of usage after
		 * it pushed the one line that matters off an operator's screen. */
		fwd_log(FWD_LOG_ERR, "%s (see 'regiond --help')", e.reason);
		return 2;
	case FWD_OPTS_OK:
		break;
	}
	/* The units give --dataplane, --state-dir, --api-socket and --log
	 * before $REGIOND_ARGS, where an operator may have given them again:
	 * that worked (the last wins) and an upgrade must not stop regiond
	 * for it, but it is said. */
	for (size_t i = 0; i < NOPTIONS; i++)
		if (repeated & (1ull << i))
			fwd_log(FWD_LOG_WARNING, "--%s given more than once: the last one is used",
				options[i].name);
	if (check_values(o))
		return 2;
	if (o->check_dataplane)
		return check_dataplane(o->dataplane);
	/* Each connection may buffer --max-body: without a bound on them
	 * all, 64 connections could hold 64 times it. */
	if (o->max_buffered == 0)
		o->max_buffered = o->max_body > UINT64_MAX / 2 ? UINT64_MAX : o->max_body * 2;
	if (o->max_buffered < o->max_body) {
		fwd_log(FWD_LOG_ERR,
			"--max-buffered %" PRIu64 " is below --max-body %" PRIu64
			": a body of the largest size allowed could never be taken",
			o->max_buffered, o->max_body);
		return 2;
	}
#ifndef REGIOND_BPF
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].mark && (given & (1ull << i))) {
			fwd_log(FWD_LOG_ERR, "built without libbpf: no XDP filters");
			return 2;
		}
#else
	/* Without an interface there is no filter for them to act on: a
	 * --xdp-mode native meant for one was silently ignored. */
	if (o->xdp_ifaces.n == 0)
		for (size_t i = 0; i < NOPTIONS; i++)
			if (options[i].mark &&
			    options[i].off != offsetof(struct regiond_opts, bpf_pin_dir) &&
			    (given & (1ull << i))) {
				fwd_log(FWD_LOG_ERR,
					"--%s acts on the XDP filter, which --xdp-iface attaches: "
					"give --xdp-iface IF, or leave --%s out",
					options[i].name, options[i].name);
				return 2;
			}
#endif
	return -1;
}

/* The daemon's parts, set up in order by main() and taken down by
 * shut_down() from whatever point it reached. */
#define MAX_TOKENS 64 /* bearer tokens, write and read together */

struct regiond {
	struct regiond_opts o;
	int64_t started;
	char *token; /* --token-file's text, with --listen */
	char *read_token; /* --read-token-file's text, optional */
	struct ctl_token tokens[MAX_TOKENS]; /* pointing into the two texts */
	unsigned ntokens;
	char *tls_cert, *tls_key, *tls_ca; /* the PEM files' text, with --tls-cert */
	char *writers_text; /* --tls-writers, split into writers[] in place */
	const char **writers; /* NULL-terminated */
	struct ctl_dp *dp;
	struct ctl_state st;
	int state_open;
	pthread_mutex_t lock;
	struct ctl_api_conf conf;
	struct ctl_api *api;
#ifdef REGIOND_BPF
	struct ctl_filter *filter;
	struct ctl_filter_claims *xdp_claims; /* the --xdp-iface interfaces, ours */
	/* Without --xdp-iface: the filter left attached that no regiond
	 * updates (look_for_unmanaged): its program, how many looks in a row
	 * found it, and what the last look found, said by say_unmanaged. */
	uint32_t unmanaged_id;
	unsigned unmanaged_seen;
	int unmanaged_afxdp;
	char unmanaged[CTL_ALARM_LEN - 320];
#endif
	struct ctl_feed_conf feed_conf; /* --feed-*, checked at start */
	struct ctl_feed *feed;
	struct ctl_fleet_conf fleet_conf; /* --fleet-*, checked at start */
	char *fleet_password; /* --fleet-password-file's first line */
	struct ctl_fleet *fleet;
	struct ctl_rdriver_conf rollout_conf; /* the rollout driver's, from --fleet-* */
	struct ctl_rdriver *rollouts;
};

/* The text of option @opt's file @path, or NULL with the reason said
 * (naming the option and the file): not a regular file, too large, a NUL
 * byte in it (ctl_file_read). A @secret (a token, a key) that its group or
 * others may read or write is refused: anyone who can read it holds the
 * credential. Any other file (@what it decides) is refused when they may
 * change it. */
static char *read_conf_file(const char *opt, const char *path, int secret, const char *what)
{
	char why[256], *buf = ctl_file_read(path, secret, what, NULL, why, sizeof(why));

	if (buf == NULL)
		fwd_log(FWD_LOG_ERR, "%s %s: %s", opt, path, why);
	return buf;
}

/* A name a token is recorded under: 1..32 of [A-Za-z0-9._-]. */
static int token_name_ok(const char *n, size_t len)
{
	if (len == 0 || len > 32)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && !strchr("._-", n[i]))
			return 0;
	return 1;
}

/* The tokens of token file @path (option @opt), each `NAME TOKEN` or a
 * lone `TOKEN` a line, blank lines and '#' comments skipped, appended to
 * d->tokens with @write; the file's text is kept in @text (the tokens point
 * into it). @return 0 or 2 (said, with the line). */
static int read_tokens(struct regiond *d, const char *opt, const char *path, int write, char **text)
{
	char *line, *next;
	unsigned lineno = 0, before = d->ntokens;

	if ((*text = read_conf_file(opt, path, 1, "read or change the token")) == NULL)
		return 2;
	for (line = *text; line; line = next) {
		char *sp, *secret = line, why[160];
		const char *name = "";

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		/* a CRLF file's CR; one elsewhere is a control character, refused
		 * below, not the token's end (regionctl reads its file alike) */
		if (*line && line[strlen(line) - 1] == '\r')
			line[strlen(line) - 1] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if ((sp = strpbrk(line, " \t")) != NULL) {
			if (!token_name_ok(line, (size_t)(sp - line))) {
				fwd_log(FWD_LOG_ERR,
					"%s %s:%u: a token's name is 1..32 of A-Z a-z 0-9 "
					". _ "
					"-, then one space and the token",
					opt, path, lineno);
				return 2;
			}
			*sp = '\0';
			name = line;
			secret = sp + 1 + strspn(sp + 1, " \t");
		}
		/* it goes in an HTTP header: no space, no control character
		 * (fwd_text_check: C0, DEL, C1 and the like, as regionctl) */
		if (strlen(secret) < 16 || strchr(secret, ' ') ||
		    fwd_text_check(secret, strlen(secret), "token", why, sizeof(why))) {
			fwd_log(FWD_LOG_ERR,
				"%s %s:%u: a token of 16+ characters, without spaces or "
				"control characters, is needed",
				opt, path, lineno);
			return 2;
		}
		if (d->ntokens == MAX_TOKENS) {
			fwd_log(FWD_LOG_ERR, "%s %s:%u: more than %d tokens", opt, path, lineno,
				MAX_TOKENS);
			return 2;
		}
		for (unsigned i = 0; i < d->ntokens; i++) {
			if (strcmp(d->tokens[i].secret, secret) == 0) {
				fwd_log(FWD_LOG_ERR,
					"%s %s:%u: this token is given twice (every token "
					"must differ, between the write and read files too)",
					opt, path, lineno);
				return 2;
			}
			if (name[0] && strcmp(d->tokens[i].name, name) == 0) {
				fwd_log(FWD_LOG_ERR, "%s %s:%u: the name '%s' is given twice", opt,
					path, lineno, name);
				return 2;
			}
		}
		d->tokens[d->ntokens++] = (struct ctl_token){name, secret, write};
	}
	if (d->ntokens == before) {
		fwd_log(FWD_LOG_ERR, "%s %s: no token in it", opt, path);
		return 2;
	}
	return 0;
}

/* TCP needs a credential for every request: refuse --listen without a
 * usable token, unless client certificates (--tls-client-ca) stand in for
 * it; the read-only tokens are optional. @return 0 or 2 (said). */
static int load_token(struct regiond *d)
{
	if (d->o.listen == NULL)
		return 0;
	if (d->o.token_file == NULL && d->o.tls_client_ca == NULL) {
		fwd_log(FWD_LOG_ERR, "--listen needs --token-file (or TLS with --tls-client-ca)");
		return 2;
	}
	if (d->o.token_file && read_tokens(d, "--token-file", d->o.token_file, 1, &d->token))
		return 2;
	if (d->o.read_token_file &&
	    read_tokens(d, "--read-token-file", d->o.read_token_file, 0, &d->read_token))
		return 2;
	return 0;
}

/* --tls-writers: one certificate subject a line, as RFC 4514 writes it;
 * blank lines and '#' comments skipped. @return 0 or 2 (said). */
static int load_writers(struct regiond *d)
{
	const char *path = d->o.tls_writers;
	size_t n = 0, lineno = 0;
	char *line, *next;

	if ((d->writers_text = read_conf_file("--tls-writers", path, 0, "change who may write")) ==
	    NULL)
		return 2;
	for (const char *p = d->writers_text; *p; p++)
		n += *p == '\n';
	if ((d->writers = calloc(n + 2, sizeof(*d->writers))) == NULL) {
		fwd_log(FWD_LOG_ERR, "out of memory");
		return 2;
	}
	n = 0;
	for (line = d->writers_text; line; line = next) {
		size_t len;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		line += strspn(line, " \t");
		len = strlen(line);
		while (len && strchr(" \t\r", line[len - 1]))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		/* What OpenSSL prints by default: the same name, another form,
		 * that would never match. Said, rather than never matching. */
		if (line[0] == '/' || strncmp(line, "subject=", 8) == 0 || !strchr(line, '=')) {
			fwd_log(FWD_LOG_ERR,
				"--tls-writers %s line %zu: '%s' is not an RFC 4514 "
				"subject; "
				"write it as 'openssl x509 -noout -subject -nameopt RFC2253' "
				"prints it, "
				"without 'subject=' (e.g. CN=automation,O=Example)",
				path, lineno, line);
			return 2;
		}
		d->writers[n++] = line;
	}
	return 0;
}

/* --tls-cert, --tls-key and --tls-client-ca read and checked with GnuTLS
 * before anything starts, so a bad file is named (not "cannot listen");
 * then --tls-writers. @return 0 or 2 (said). */
static int load_tls(struct regiond *d)
{
	const struct regiond_opts *o = &d->o;
	char why[512], warn[256], line[1024];
	enum ctl_tls_bad bad;

	if (!o->tls_cert != !o->tls_key) {
		fwd_log(FWD_LOG_ERR, "--tls-cert and --tls-key go together");
		return 2;
	}
	if (o->tls_cert && o->listen == NULL) {
		fwd_log(FWD_LOG_ERR, "--tls-cert serves the TCP API: it needs --listen");
		return 2;
	}
	if (o->tls_client_ca && o->tls_cert == NULL) {
		fwd_log(FWD_LOG_ERR, "--tls-client-ca needs TLS: --tls-cert and --tls-key");
		return 2;
	}
	if (o->tls_writers && o->tls_client_ca == NULL) {
		fwd_log(FWD_LOG_ERR, "--tls-writers needs --tls-client-ca");
		return 2;
	}
	if (o->tls_cert == NULL)
		return 0;
	if ((d->tls_cert = read_conf_file("--tls-cert", o->tls_cert, 0, "change it")) == NULL ||
	    (d->tls_key = read_conf_file("--tls-key", o->tls_key, 1, "read or change the key")) ==
		    NULL ||
	    (o->tls_client_ca && (d->tls_ca = read_conf_file("--tls-client-ca", o->tls_client_ca, 0,
							     "change whom it trusts")) == NULL))
		return 2;
	if ((bad = ctl_tls_check(d->tls_cert, d->tls_key, d->tls_ca, why, sizeof(why), warn,
				 sizeof(warn))) != CTL_TLS_OK) {
		const struct ctl_tls_files names = {.cert_opt = "--tls-cert",
						    .cert = o->tls_cert,
						    .key_opt = "--tls-key",
						    .key = o->tls_key,
						    .ca_opt = "--tls-client-ca",
						    .ca = o->tls_client_ca};

		ctl_tls_refused(bad, &names, why, line, sizeof(line));
		fwd_log(FWD_LOG_ERR, "%s", line);
		return 2;
	}
	if (warn[0])
		fwd_log(FWD_LOG_ERR, "warning: %s", warn);
	return o->tls_writers ? load_writers(d) : 0;
}

/* An empty state directory starts from --table: recorded now, pushed by
 * the main loop as soon as regionfwd answers. @return 0 or -1 (said). */
static int seed_table(struct regiond *d)
{
	const char *table = d->o.table;
	const struct ctl_gen *cur = ctl_state_current(&d->st);
	struct fwd_err fe = {0}, e = {0};
	char *buf;
	size_t len;

	if (cur != NULL && table != NULL)
		/* Said: an operator who edits the file and starts regiond
		 * again expects it to run (a walkthrough of the README, run
		 * twice, was told "no change" by its apply and nothing else).
		 * Not "what runs": regionfwd's own generation may be adopted
		 * (ctl_state_sync), and in fleet mode etcd decides. */
		fwd_log(FWD_LOG_NOTICE,
			"--table %s not used: the state directory %s has a history (generation "
			"%" PRIu64 " last); --table seeds an empty one only%s",
			table, d->o.state_dir, cur->id,
			d->o.fleet_endpoints ? " (fleet mode: the facility's desired table runs)"
					     : " (regionctl apply FILE changes the table)");
	if (cur != NULL || table == NULL)
		return 0;
	if (fwd_read_file(table, &buf, &len, &fe)) {
		fwd_log(FWD_LOG_ERR, "%s: %s", table, fe.reason);
		return -1;
	}
	{ /* the names files it names go into the recorded document (fwd_embed.h) */
		const char *slash = strrchr(table, '/');
		char dir[PATH_MAX], *emb, b[1024];
		size_t elen;

		snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - table + 1) : 0, table);
		if (fwd_embed_names(buf, len, table, dir, NULL, &emb, &elen, &fe) ||
		    (emb && fwd_table_written_tags(buf, len, table, &fe))) {
			fwd_log(FWD_LOG_ERR, "--table refused: %s", fwd_err_str(&fe, b, sizeof(b)));
			free(emb);
			free(buf);
			return -1;
		}
		if (emb) {
			free(buf);
			buf = emb;
			len = elen;
		}
	}
	/* A table someone wrote, as an apply of it is: the checks of a written
	 * table too (a null residency section, a YAML tag were seeded without a
	 * word: a probe). */
	d->st.write_kind = CTL_WRITE_DOCUMENT;
	int64_t seeded = ctl_state_apply(&d->st, buf, len, "regiond", "initial table", -1, 0, &e);

	d->st.write_kind = CTL_WRITE_OWN;
	if (seeded < 0) {
		char b[1024];

		/* The validator names the API's field, "document"; here the
		 * document is the file, and its line is the file's line. */
		if (strcmp(e.file, "document") == 0)
			snprintf(e.file, sizeof(e.file), "%s", table);
		free(buf);
		if (e.reason_code == FWD_R_PERSIST_FAILED) {
			/* The disk refused it, not the validator: a full or
			 * read-only state directory once stopped regiond here,
			 * the operator left with no API. It starts as on an
			 * empty state directory without --table: regionfwd's
			 * generation adopted once the disk takes the record,
			 * an alarm until then. */
			fwd_log(FWD_LOG_ERR,
				"--table %s not applied: %s; regiond starts without it, as on an "
				"empty state directory without --table (what regionfwd runs is "
				"taken on once the disk takes its record; an alarm says so until "
				"then): once the disk takes it (room, or writable again), "
				"regionctl "
				"apply %s",
				table, e.reason, table);
			return 0;
		}
		fwd_log(FWD_LOG_ERR, "--table refused: %s", fwd_err_str(&e, b, sizeof(b)));
		return -1;
	}
	free(buf);
	d->st.seeded = 1; /* ctl_state_sync will not overwrite another regiond's table */
	return 0;
}

/* The connection to regionfwd and the state directory (history, current
 * generation), seeded from --table when empty. @return 0 or -1 (said). */
static int open_state(struct regiond *d)
{
	struct fwd_err e;

	/* Content rules must compile (in a limited child) before a table is
	 * taken, stored ones included; the databases travel with the push. */
	struct ctl_ext content = ctl_content_ext();

	ctl_content_set_cpu_seconds((unsigned)d->o.content_cpu_s);
	ctl_state_add_ext(&d->st, &content);
	/* --fleet-validate-only: no regionfwd; the handle is never used to push. */
	d->dp = ctl_dp_create(d->o.dataplane ? d->o.dataplane : "");
	if (d->dp == NULL ||
	    ctl_state_open(&d->st, d->o.state_dir, (unsigned)d->o.keep, d->dp, &e)) {
		char b[1024];

		/* The file, line and field: a corrupt state directory names what to look at. */
		fwd_log(FWD_LOG_ERR, "%s", d->dp ? fwd_err_str(&e, b, sizeof(b)) : strerror(errno));
		return -1;
	}
	d->state_open = 1;
	d->st.lock = &d->lock;
	d->st.dp_timeout_ms = (int)d->o.dp_timeout_ms;
	return seed_table(d);
}

#ifdef REGIOND_BPF
/* Attach (or adopt) the XDP filter on the --xdp-iface interfaces, bring it
 * to the current generation, and hook it into every later change.
 * @return 0 or -1 (said) */
static int start_filters(struct regiond *d)
{
	struct ctl_filter_conf fconf = {
		.mode = (enum ctl_xdp_mode)d->o.xdp_mode,
		.pin_dir = d->o.bpf_pin_dir,
		.sizes = {.max_prefixes = (uint32_t)d->o.xdp_max_prefixes,
			  .max_groups = (uint32_t)d->o.xdp_max_groups},
		.claims = d->xdp_claims,
	};
	const struct ctl_gen *cur = ctl_state_current(&d->st);
	struct fwd_err fe = {0}, e;

	if (d->o.xdp_ifaces.n == 0)
		return 0;
	for (unsigned i = 0; i < d->o.xdp_ifaces.n; i++)
		fconf.ifaces[fconf.nifaces++] = d->o.xdp_ifaces.v[i];
	d->filter = ctl_filter_start(&fconf, &fe);
	if (d->filter == NULL) {
		fwd_log(FWD_LOG_ERR, "XDP filter: %s", fe.reason);
		return -1;
	}
	ctl_filter_bind(d->filter, cur ? d->st.table : NULL, cur ? cur->id : 0);
	struct ctl_ext filters = ctl_filter_ext(d->filter);

	ctl_state_add_ext(&d->st, &filters);
	/* A seed (an empty state directory's --table) is not forced on the
	 * filter either: ctl_state_sync decides whether it may run at all. */
	if (cur && !d->st.seeded && ctl_filter_generation(d->filter) != cur->id &&
	    ctl_filter_apply(d->filter, d->st.table, cur->id, &e)) {
		fwd_log(FWD_LOG_ERR, "XDP filter refused generation %" PRIu64 ": %s", cur->id,
			e.reason);
		return -1;
	}
	return 0;
}
#endif

/* --feed-* checked before anything starts, so a bad one is named and
 * nothing is touched. @return 0 or 2 (said). */
static int load_feed_conf(struct regiond *d)
{
	struct fwd_err e = {0};

	d->feed_conf = (struct ctl_feed_conf){
		.hold_s = (unsigned)d->o.feed_hold_s,
		.batch_ms = (unsigned)d->o.feed_batch_ms,
		.max_prefixes = d->o.feed_max_prefixes,
		.bird_socket = d->o.feed_bird_socket,
		.state_dir = d->o.state_dir,
	};
	if (d->o.feed_tables.n == 0 && d->o.feed_bird_socket) {
		fwd_log(FWD_LOG_ERR, "--feed-bird-socket needs --feed-table");
		return 2;
	}
	for (unsigned i = 0; i < d->o.feed_tables.n; i++)
		if (ctl_feed_conf_table(&d->feed_conf, d->o.feed_tables.v[i], &e)) {
			fwd_log(FWD_LOG_ERR, "%s", e.reason);
			return 2;
		}
	return 0;
}

/* Follow the routing daemon's kernel tables (--feed-table), when asked:
 * off by default. @return 0 or -1 (said) */
static int start_feed(struct regiond *d)
{
	struct fwd_err e = {0};
	struct ctl_ext x;

	if (d->feed_conf.ntables == 0)
		return 0;
	d->feed = ctl_feed_start(&d->feed_conf, &d->st, &e);
	if (d->feed == NULL) {
		char b[1024];

		fwd_log(FWD_LOG_ERR, "bgp feed: %s", fwd_err_str(&e, b, sizeof(b)));
		return -1;
	}
	x = ctl_feed_ext(d->feed);
	pthread_mutex_lock(&d->lock);
	ctl_state_add_ext(&d->st, &x);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* --fleet-ca, --fleet-cert and --fleet-key read and checked with GnuTLS
 * before anything starts, as the API's --tls-* files are: libcurl reads
 * them again for each connection to etcd, where a device or a FIFO would
 * be read for ever and a bad file only said as "paused" later. @return 0
 * or 2 (said). */
static int check_fleet_tls(const struct regiond_opts *o)
{
	char *ca = NULL, *cert = NULL, *key = NULL, why[512], warn[256], line[1024];
	enum ctl_tls_bad bad;
	int rc = 2;

	if (!o->fleet_ca && !o->fleet_cert)
		return 0;
	if ((o->fleet_ca && (ca = read_conf_file("--fleet-ca", o->fleet_ca, 0,
						 "change whom it trusts")) == NULL) ||
	    (o->fleet_cert &&
	     ((cert = read_conf_file("--fleet-cert", o->fleet_cert, 0, "change it")) == NULL ||
	      (key = read_conf_file("--fleet-key", o->fleet_key, 1, "read or change the key")) ==
		      NULL)))
		goto out;
	/* A validity warning is left to etcd: it names the server's side. */
	if ((bad = ctl_tls_check(cert, key, ca, why, sizeof(why), warn, sizeof(warn))) ==
	    CTL_TLS_OK) {
		rc = 0;
	} else {
		const struct ctl_tls_files names = {.cert_opt = "--fleet-cert",
						    .cert = o->fleet_cert,
						    .key_opt = "--fleet-key",
						    .key = o->fleet_key,
						    .ca_opt = "--fleet-ca",
						    .ca = o->fleet_ca};

		ctl_tls_refused(bad, &names, why, line, sizeof(line));
		fwd_log(FWD_LOG_ERR, "%s", line);
	}
out:
	free(ca);
	free(cert);
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	return rc;
}

/* --fleet-* checked before anything starts (names, labels, endpoints, the
 * password file's mode, the TLS files). Without --fleet-endpoints none may be given: the
 * single-box mode needs no etcd. @return 0 or 2 (said). */
static int load_fleet_conf(struct regiond *d)
{
	const struct regiond_opts *o = &d->o;
	struct fwd_err e = {0};
	struct ctl_fleet_conf *c = &d->fleet_conf;

	if (!o->fleet_endpoints) {
		if (o->fleet_node || o->fleet_facility || o->fleet_labels.n || o->fleet_ca ||
		    o->fleet_cert || o->fleet_key || o->fleet_user || o->fleet_password_file ||
		    o->fleet_validate_only) {
			fwd_log(FWD_LOG_ERR, "--fleet-* options need --fleet-endpoints");
			return 2;
		}
		if (!o->dataplane) {
			fwd_log(FWD_LOG_ERR, "--dataplane is required");
			return 2;
		}
		return 0;
	}
	/* The feed changes the table by deltas the fleet's target does not
	 * have: each would undo the other, over and over. */
	if (o->feed_tables.n) {
		fwd_log(FWD_LOG_ERR, "--feed-table and --fleet-endpoints do not go together: "
				     "in fleet mode the table comes from etcd only");
		return 2;
	}
	if (!o->dataplane && !o->fleet_validate_only) {
		fwd_log(FWD_LOG_ERR, "--dataplane is required (but with --fleet-validate-only)");
		return 2;
	}
	if (o->fleet_password_file) {
		char *nl;

		d->fleet_password = read_conf_file("--fleet-password-file", o->fleet_password_file,
						   1, "read or change the password");
		if (!d->fleet_password)
			return 2;
		nl = strpbrk(d->fleet_password, "\r\n");
		if (nl)
			*nl = '\0';
		if (!d->fleet_password[0]) {
			fwd_log(FWD_LOG_ERR, "--fleet-password-file %s: the first line is empty",
				o->fleet_password_file);
			return 2;
		}
	}
	*c = (struct ctl_fleet_conf){
		.endpoints = o->fleet_endpoints,
		.node = o->fleet_node,
		.facility = o->fleet_facility,
		.ca_file = o->fleet_ca,
		.cert_file = o->fleet_cert,
		.key_file = o->fleet_key,
		.user = o->fleet_user,
		.password = d->fleet_password,
		.lease_s = (unsigned)o->fleet_lease_s,
		.report_ms = (unsigned)o->fleet_report_ms,
		.etcd_timeout_ms = (unsigned)o->fleet_timeout_ms,
		.stuck_after_s = (unsigned)o->fleet_stuck_after_s,
		.validate_only = o->fleet_validate_only,
		.version = CTL_REGIOND_VERSION,
	};
	for (unsigned i = 0; i < o->fleet_labels.n; i++)
		c->labels[c->nlabels++] = o->fleet_labels.v[i];
	if (ctl_fleet_conf_check(c, &e)) {
		fwd_log(FWD_LOG_ERR, "%s", e.reason);
		return 2;
	}
	return check_fleet_tls(o);
}

/* The fleet agent, when --fleet-endpoints is given. @return 0 or -1 (said) */
static int start_fleet(struct regiond *d)
{
	struct fwd_err e = {0};
	struct ctl_ext x;
	int rc;

	if (!d->o.fleet_endpoints)
		return 0;
	d->fleet = ctl_fleet_start(&d->fleet_conf, &d->st, &e);
	if (d->fleet == NULL) {
		char b[1024];

		fwd_log(FWD_LOG_ERR, "fleet: %s", fwd_err_str(&e, b, sizeof(b)));
		return -1;
	}
	x = ctl_fleet_ext(d->fleet);
	pthread_mutex_lock(&d->lock);
	ctl_state_add_ext(&d->st, &x);
	pthread_mutex_unlock(&d->lock);
	/* Every fleet regiond may drive its facility's rollouts: the one that
	 * holds rollout/leader does (ctl_rollout_driver.h). */
	d->rollout_conf = (struct ctl_rdriver_conf){
		.etcd = {.endpoints = d->fleet_conf.endpoints,
			 .timeout_ms = d->fleet_conf.etcd_timeout_ms,
			 .ca_file = d->fleet_conf.ca_file,
			 .cert_file = d->fleet_conf.cert_file,
			 .key_file = d->fleet_conf.key_file,
			 .user = d->fleet_conf.user,
			 .password = d->fleet_conf.password},
		.facility = d->fleet_conf.facility,
		.node = d->fleet_conf.node,
		.lease_s = d->fleet_conf.lease_s,
		.unpin_after_s = (unsigned)d->o.fleet_unpin_after_s,
		.report_ms = d->fleet_conf.report_ms,
	};
	d->rollouts = ctl_rdriver_start(&d->rollout_conf, &e);
	if (d->rollouts == NULL) {
		char b[1024];

		fwd_log(FWD_LOG_ERR, "fleet rollouts: %s", fwd_err_str(&e, b, sizeof(b)));
		return -1;
	}
	d->conf.rollouts = &d->rollout_conf;
	d->conf.rollout_driver = d->rollouts;
	x = ctl_rdriver_ext(d->rollouts);
	pthread_mutex_lock(&d->lock);
	rc = ctl_state_add_ext(&d->st, &x);
	pthread_mutex_unlock(&d->lock);
	if (rc)
		fwd_log(FWD_LOG_ERR, "fleet rollouts: no room for another extension");
	return rc ? -1 : 0;
}

/* The API's configuration from the options (start_api(), and the check
 * before the state is touched). */
static void api_conf(struct regiond *d)
{
	d->conf.unix_path = d->o.api_socket;
	d->conf.tcp_listen = d->o.listen;
	d->conf.tokens = d->tokens;
	d->conf.ntokens = d->ntokens;
	d->conf.tls_cert = d->tls_cert;
	d->conf.tls_key = d->tls_key;
	d->conf.tls_client_ca = d->tls_ca;
	d->conf.tls_writers = d->writers;
	d->conf.max_body = (size_t)d->o.max_body;
	d->conf.max_buffered = d->o.max_buffered > SIZE_MAX ? SIZE_MAX : (size_t)d->o.max_buffered;
	d->conf.min_body_rate = d->o.min_body_rate;
	d->conf.stop_flag = &quit; /* writes refused from the signal on, not the next tick */
}

/* Serve the API on --api-socket (its directory created if missing) and
 * --listen. @return 0 or -1 */
static int start_api(struct regiond *d)
{
	char dir[256];

	api_conf(d);
	snprintf(dir, sizeof(dir), "%s", d->conf.unix_path);
	if (strrchr(dir, '/') && strrchr(dir, '/') != dir) {
		*strrchr(dir, '/') = '\0';
		if (access(dir, F_OK) != 0 && mkdir(dir, 0750) < 0 && errno != EEXIST)
			fwd_log(FWD_LOG_WARNING, "cannot create %s: %s", dir, strerror(errno));
	}
	d->api = ctl_api_start(&d->conf, &d->st, &d->lock, d->started);
	return d->api ? 0 : -1;
}

#ifdef REGIOND_BPF
/* Without --xdp-iface, regiond's filter left attached (on purpose: an
 * earlier regiond's keeps filtering through a restart) is nobody's: it
 * holds packets to the rules of the generation it last had, whatever is
 * applied since, and `filter status` said only "regiond runs without XDP
 * filters". Looked for every 5 s outside the state lock (a netlink dump,
 * /proc/net/unix), and said only when two looks in a row find it: a
 * sibling regiond restarting on its interfaces leaves them unclaimed for
 * a moment, which is no alarm. */
static void look_for_unmanaged(struct regiond *d)
{
	if (d->o.xdp_ifaces.n)
		return;
	uint32_t id = d->unmanaged_id;
	int afxdp = 0, n;
	char found[sizeof(d->unmanaged)];

	n = ctl_filter_unmanaged(d->o.bpf_pin_dir, &id, &afxdp, found, sizeof(found));
	if (n < 0)
		return; /* not looked: what was found stands */
	d->unmanaged_id = id;
	if (n == 0) {
		d->unmanaged_seen = 0;
		return;
	}
	d->unmanaged_seen++;
	d->unmanaged_afxdp = afxdp;
	snprintf(d->unmanaged, sizeof(d->unmanaged), "%s", found);
}

/* The state lock held: the alarm as the last look left it. */
static void say_unmanaged(struct regiond *d)
{
	if (d->unmanaged_seen < 2)
		ctl_state_alarm(&d->st, CTL_ALARM_FILTER, NULL);
	else if (d->unmanaged_afxdp)
		ctl_state_alarm(
			&d->st, CTL_ALARM_FILTER,
			"the fast path's AF_XDP program (the XDP filter) on %s is no running "
			"regiond's, and this regiond (no --xdp-iface) does not update it: it "
			"keeps that generation's rules; give --xdp-iface IF to take it over "
			"(taking it off would cut regionfwd's port there)",
			d->unmanaged);
	else
		ctl_state_alarm(
			&d->st, CTL_ALARM_FILTER,
			"an earlier regiond's XDP filter is still attached to %s, and this "
			"regiond (no --xdp-iface) does not update it: it keeps that "
			"generation's rules; give --xdp-iface IF to take it over, or take it "
			"off (ip link set dev IF xdp off) and remove its pins (rm -r %s)",
			d->unmanaged, d->o.bpf_pin_dir);
}
#endif

/* Until SIGINT or SIGTERM: every 200 ms the commit-confirm timer, every
 * second keep regionfwd (and the XDP filter) on the current generation. */
static void main_loop(struct regiond *d)
{
	const struct ctl_gen *cur;
	int64_t last_sync = INT64_MIN / 2, last_kept = INT64_MIN / 2, last_check = INT64_MIN / 2;
#ifdef REGIOND_BPF
	int64_t last_filter_look = INT64_MIN / 2;
#endif
	int in_sync = -1;
	uint64_t start_id;

	/* Under the lock: the feed and the fleet agent, started before this
	 * loop, may commit already, and a commit reallocates the history
	 * (ThreadSanitizer saw this line read it while the feed did). */
	pthread_mutex_lock(d->st.lock);
	cur = ctl_state_current(&d->st);
	start_id = cur ? cur->id : 0;
	pthread_mutex_unlock(d->st.lock);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	said_nudge(); /* one that came while regiond started */
	fwd_log(FWD_LOG_NOTICE, "API on %s%s%s%s, dataplane %s, state %s, generation %" PRIu64,
		d->conf.unix_path, d->conf.tcp_listen ? " and " : "",
		d->conf.tcp_listen ? d->conf.tcp_listen : "",
		d->conf.tls_client_ca ? " (HTTPS, client certificates required)"
		: d->conf.tls_cert    ? " (HTTPS)"
		: d->conf.tcp_listen  ? " (plain HTTP)"
				      : "",
		d->o.dataplane ? d->o.dataplane : "none (validate only)", d->o.state_dir, start_id);
	while (!__atomic_load_n(&quit, __ATOMIC_RELAXED)) {
		/* Monotonic: paced by the wall clock, a clock set back 30 s
		 * stopped the sync for 30 s, and status called a healthy
		 * regionfwd unreachable (a hostile probe, with faketime). */
		int64_t now = fwd_mono_ms();

		struct statvfs disk;
		int check = now - last_check >= 1000,
		    disk_read = check && ctl_state_stat_disk(&d->st, &disk) == 0; /* unlocked */

#ifdef REGIOND_BPF
		if (now - last_filter_look >= 5000) {
			look_for_unmanaged(d); /* unlocked: see there */
			last_filter_look = now;
		}
#endif
		usleep(200000);
		said_nudge();
		ctl_state_write_begin(&d->st);
		ctl_confirm_tick(&d->st);
		/* its own clock: last_sync stands still without a dataplane
		 * (--fleet-validate-only), which made this run every tick */
		if (check) {
			ctl_state_check_dir(&d->st, disk_read ? &disk : NULL);
#ifdef REGIOND_BPF
			say_unmanaged(d);
#endif
			last_check = now;
		}
		/* --fleet-validate-only runs without regionfwd: nothing to sync. */
		if (now - last_sync >= 1000 && !d->o.fleet_validate_only) {
			int s = ctl_state_sync(&d->st);

			/* Which of the two: an operator reads this line in an
			 * incident, and they call for different things. */
			if (s != in_sync)
				fwd_log(s ? FWD_LOG_NOTICE : FWD_LOG_WARNING, "regionfwd %s",
					s ? "runs the current generation"
					: d->st.dp_report == NULL
						? "is unreachable (no status answer)"
						: "runs another generation than the "
						  "current one (out of sync)");
			in_sync = s;
			last_sync = now;
			cur = ctl_state_current(&d->st);
			/* Held back (a seed meeting another regiond's table): the
			 * filter stays on what it enforces, like regionfwd. */
			for (unsigned i = 0; cur && !d->st.held_back && i < d->st.next; i++)
				if (d->st.ext[i].sync)
					d->st.ext[i].sync(d->st.ext[i].arg, d->st.table, cur->id);
			if (s)
				ctl_state_sample_traffic(&d->st); /* for impact previews */
		}
		ctl_state_write_end(&d->st); /* publishes the API's view */
		if (now - last_kept >= 1000) {
			ctl_api_keep_socket(d->api); /* outside the lock: see ctl_api.h */
			last_kept = now;
		}
	}
}

/* Take down whatever main() set up, in reverse. */
static void shut_down(struct regiond *d)
{
	/* Every extension stays in the state's list until ctl_state_close,
	 * and any write or publish calls them all: so first nothing may
	 * write (the API, then the threads that write: the feed, the fleet
	 * agent), and only then is an extension's memory freed. */
	/* A stop once left no line: the log's last words were whatever came
	 * before, and nobody could tell a stop from a hang. */
	if (__atomic_load_n(&quit, __ATOMIC_RELAXED))
		fwd_log(FWD_LOG_NOTICE, "stopping on %s%s",
			__atomic_load_n(&quit, __ATOMIC_RELAXED) == SIGINT ? "SIGINT" : "SIGTERM",
			d->o.dataplane ? ": regionfwd keeps forwarding on what it runs" : "");
	ctl_api_stop(d->api);
	ctl_feed_stop(d->feed);
	ctl_rdriver_free(d->rollouts); /* after the API: it shows its status */
	ctl_fleet_free(d->fleet); /* after the API: its view is the API's to read */
	ctl_feed_free(d->feed); /* its prefixes stay, recorded: a restart takes them over */
#ifdef REGIOND_BPF
	ctl_filter_free(d->filter); /* stays attached and pinned: a restart adopts it */
	ctl_filter_release(d->xdp_claims);
#endif
	if (d->state_open && d->st.unsaved_id) {
		/* A last try at what runs but is not recorded (a full disk
		 * since freed): nothing writes any more. */
		struct fwd_err e;
		uint64_t id = d->st.unsaved_id;

		if (ctl_state_persist_unsaved(&d->st, &e) == 0)
			fwd_log(FWD_LOG_NOTICE, "generation %" PRIu64 " recorded at stop", id);
		else
			fwd_log(FWD_LOG_ERR,
				"generation %" PRIu64 " runs but is still not recorded at stop "
				"(%s): the next start resolves it by what regionfwd runs",
				id, e.reason);
	}
	if (d->state_open) {
		ctl_state_close(&d->st);
		ctl_content_cleanup();
	}
	ctl_dp_free(d->dp);
	free(d->token);
	free(d->read_token);
	free(d->tls_cert);
	if (d->tls_key) /* a private key: not left in freed memory */
		explicit_bzero(d->tls_key, strlen(d->tls_key));
	free(d->tls_key);
	free(d->tls_ca);
	free(d->writers_text);
	free(d->writers);
	if (d->fleet_password)
		explicit_bzero(d->fleet_password, strlen(d->fleet_password));
	free(d->fleet_password);
}

int main(int argc, char **argv)
{
	struct regiond d = {.started = (int64_t)time(NULL), .lock = PTHREAD_MUTEX_INITIALIZER};
	int rc = parse_options(argc, argv, &d.o);

	if (rc >= 0)
		return rc;
	/* From the start: a state directory of a million prefixes takes
	 * seconds to load. */
	signal(SIGHUP, on_nudge);
	signal(SIGUSR1, on_nudge);
	if (fwd_log_open("regiond", (unsigned)d.o.log_target, FWD_LOG_ERR + (int)d.o.log_level)) {
		fwd_log(FWD_LOG_ERR, "built without libsystemd: --log journal is not there; "
				     "under systemd, --log stderr goes to the journal too");
		return 2;
	}
	if (load_tls(&d) || load_token(&d) || load_feed_conf(&d) || load_fleet_conf(&d)) {
		shut_down(&d);
		return 2;
	}
	rc = 1;
#ifdef REGIOND_BPF
	struct fwd_err claim_err = {0};

	/* The interfaces are claimed (one regiond each), and one that does
	 * not exist is said, before the state is touched: a start that then
	 * stopped once wrote and logged an empty directory's seed as applied. */
	if (d.o.xdp_ifaces.n && (d.xdp_claims = ctl_filter_claim(d.o.xdp_ifaces.v, d.o.xdp_ifaces.n,
								 &claim_err)) == NULL) {
		fwd_log(FWD_LOG_ERR, "XDP filter: %s", claim_err.reason);
		goto out;
	}
	/* So is a pin directory another regiond holds (on other interfaces):
	 * that start too seeded its state before it was refused. */
	if (d.o.xdp_ifaces.n && ctl_bpf_probe_dir(d.o.bpf_pin_dir, &claim_err)) {
		fwd_log(FWD_LOG_ERR, "XDP filter: %s", claim_err.reason);
		goto out;
	}
#endif
	/* Where the API will listen, checked before the state is touched:
	 * a start refused there once wrote and logged an empty directory's
	 * seed as applied, and the next start took it for another regiond's
	 * table (a probe). */
	{
		struct fwd_err api_err = {0};

		api_conf(&d);
		if (ctl_api_preflight(&d.conf, &api_err)) {
			fwd_log(FWD_LOG_ERR, "%s", api_err.reason);
			goto out;
		}
	}
	if (open_state(&d))
		goto out;
#ifdef REGIOND_BPF
	if (start_filters(&d))
		goto out;
#endif
	if (start_feed(&d))
		goto out;
	if (start_fleet(&d))
		goto out;
	if (start_api(&d))
		goto out;
	main_loop(&d);
	rc = 0;
out:
	shut_down(&d);
	return rc;
}
