/*
 * regiond - the control-plane daemon: holds the desired table, validates,
 * pushes it to regionfwd, keeps its history, serves the API (docs/api.md).
 *
 *   regiond --dataplane SOCK [--api-socket SOCK] [--state-dir DIR] [--table FILE]
 *           [--listen HOST:PORT --token-file FILE] [--keep N] [--max-body BYTES]
 *
 * The main thread keeps regionfwd in sync (it pushes the current generation
 * when regionfwd restarted or runs something else) and runs the commit-confirm
 * timer; the API threads serve requests. All of them take one mutex around
 * the state. Only main() exits.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_api.h"
#include "ctl_confirm.h"
#include "ctl_dp.h"
#include "ctl_state.h"
#include "fwd_doc.h"
#include "ctl_content.h"
#ifdef REGIOND_BPF
#include "ctl_filter.h"

static json_t *filter_status(void *arg, const struct fwd_table *t)
{
	return ctl_filter_status(arg, t);
}

static int filter_detach(void *arg)
{
	return ctl_filter_detach(arg);
}
#endif

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: regiond --dataplane SOCK [options]\n"
		"  --dataplane SOCK   regionfwd's control socket (node config control_socket)\n"
		"  --api-socket SOCK  where the API listens (default /run/regiond/api.sock)\n"
		"  --state-dir DIR    history and the last good table (default /var/lib/regiond)\n"
		"  --table FILE       first table when the state directory is empty\n"
		"  --listen HOST:PORT also serve the API on TCP; writes then need --token-file\n"
		"  --token-file FILE  bearer token for TCP writes (first line of the file)\n"
		"  --keep N           generations kept for rollback (default 20)\n"
		"  --max-body BYTES   largest request body (default 268435456)\n"
		"  --xdp-iface IF     attach the XDP filter to IF (repeat for more)\n"
		"  --xdp-mode M       auto (native, else generic: reported), native or generic\n"
		"  --bpf-pin-dir DIR  where the filter is pinned (default /sys/fs/bpf/regiond)\n"
		"  --xdp-max-prefixes N, --xdp-max-groups N   filter capacity (default 131072, 32768)\n");
}

static char *read_token(const char *path)
{
	struct fwd_err e = {0};
	char *buf;
	size_t len;

	if (fwd_read_file(path, &buf, &len, &e))
		return NULL;
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) < 16) {
		free(buf);
		errno = EINVAL;
		return NULL;
	}
	return buf;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dataplane", required_argument, NULL, 'd'},
		{"api-socket", required_argument, NULL, 'a'},
		{"state-dir", required_argument, NULL, 's'},
		{"table", required_argument, NULL, 't'},
		{"listen", required_argument, NULL, 'l'},
		{"token-file", required_argument, NULL, 'k'},
		{"keep", required_argument, NULL, 'n'},
		{"max-body", required_argument, NULL, 'm'},
		{"xdp-iface", required_argument, NULL, 'x'},
		{"xdp-mode", required_argument, NULL, 'X'},
		{"bpf-pin-dir", required_argument, NULL, 'P'},
		{"xdp-max-prefixes", required_argument, NULL, 'p'},
		{"xdp-max-groups", required_argument, NULL, 'g'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
#ifdef REGIOND_BPF
	struct ctl_filter_conf fconf = {.mode = CTL_XDP_AUTO, .pin_dir = "/sys/fs/bpf/regiond",
					.sizes = {.max_prefixes = 131072, .max_groups = 32768}};
	struct ctl_filter *filter = NULL;
#endif
	const char *dp_path = NULL, *table = NULL, *state_dir = "/var/lib/regiond", *token_file = NULL;
	struct ctl_api_conf conf = {.unix_path = "/run/regiond/api.sock", .max_body = 256u << 20};
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	unsigned long keep = 20;
	struct ctl_state st;
	struct fwd_err e;
	struct ctl_api *api = NULL;
	int rc = 1;
	struct ctl_dp *dp;
	char *token = NULL, *end;
	int c, in_sync = -1;
	int64_t started = (int64_t)time(NULL), last_sync = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dp_path = optarg; break;
		case 'a': conf.unix_path = optarg; break;
		case 's': state_dir = optarg; break;
		case 't': table = optarg; break;
		case 'l': conf.tcp_listen = optarg; break;
		case 'k': token_file = optarg; break;
		case 'n':
			keep = strtoul(optarg, &end, 10);
			if (*end || keep < 2 || keep > 10000) {
				fprintf(stderr, "regiond: --keep takes 2..10000\n");
				return 2;
			}
			break;
		case 'm':
			conf.max_body = strtoull(optarg, &end, 10);
			if (*end || conf.max_body < 1024) {
				fprintf(stderr, "regiond: --max-body takes bytes >= 1024\n");
				return 2;
			}
			break;
#ifdef REGIOND_BPF
		case 'x':
			if (fconf.nifaces == CTL_FILTER_MAX_IFACES) {
				fprintf(stderr, "regiond: at most %d --xdp-iface\n", CTL_FILTER_MAX_IFACES);
				return 2;
			}
			fconf.ifaces[fconf.nifaces++] = optarg;
			break;
		case 'X':
			if (!strcmp(optarg, "auto"))
				fconf.mode = CTL_XDP_AUTO;
			else if (!strcmp(optarg, "native"))
				fconf.mode = CTL_XDP_NATIVE;
			else if (!strcmp(optarg, "generic"))
				fconf.mode = CTL_XDP_GENERIC;
			else {
				fprintf(stderr, "regiond: --xdp-mode takes auto, native or generic\n");
				return 2;
			}
			break;
		case 'P': fconf.pin_dir = optarg; break;
		case 'p':
		case 'g': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || v < 16 || v > 16u << 20) {
				fprintf(stderr, "regiond: --xdp-max-* takes 16..16777216\n");
				return 2;
			}
			*(c == 'p' ? &fconf.sizes.max_prefixes : &fconf.sizes.max_groups) = (uint32_t)v;
			break;
		}
#else
		case 'x': case 'X': case 'P': case 'p': case 'g':
			fprintf(stderr, "regiond: built without libbpf: no XDP filters\n");
			return 2;
#endif
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (dp_path == NULL || optind < argc) {
		usage(stderr);
		return 2;
	}
	if (conf.tcp_listen) {
		if (token_file == NULL || (token = read_token(token_file)) == NULL) {
			fprintf(stderr, "regiond: --listen needs --token-file with a token of 16+ characters\n");
			return 2;
		}
		conf.token = token;
	}
	/* Content rules must compile (in a limited child) before a table is
	 * taken; the databases travel with the push. */
	ctl_state_extra_validate = ctl_content_validate;
	ctl_state_content_dbs = ctl_content_dbs;
	dp = ctl_dp_create(dp_path);
	if (dp == NULL || ctl_state_open(&st, state_dir, (unsigned)keep, dp, &e)) {
		fprintf(stderr, "regiond: %s\n", dp ? e.reason : strerror(errno));
		ctl_dp_free(dp);
		free(token);
		return 1;
	}
	if (ctl_state_current(&st) == NULL && table) {
		struct fwd_err fe = {0};
		char *buf;
		size_t len;

		if (fwd_read_file(table, &buf, &len, &fe)) {
			fprintf(stderr, "regiond: %s: %s\n", table, fe.reason);
			goto out;
		}
		/* Recorded, then pushed by the sync loop as soon as regionfwd answers. */
		if (ctl_state_apply(&st, buf, len, "regiond", "initial table", -1, 0, &e) < 0) {
			char b[1024];

			fprintf(stderr, "regiond: %s refused: %s\n", table, fwd_err_str(&e, b, sizeof(b)));
			free(buf);
			goto out;
		}
		free(buf);
	}
	{
		char dir[256];

		snprintf(dir, sizeof(dir), "%s", conf.unix_path);
		if (strrchr(dir, '/') && strrchr(dir, '/') != dir) {
			*strrchr(dir, '/') = '\0';
			if (access(dir, F_OK) != 0 && mkdir(dir, 0750) < 0 && errno != EEXIST)
				fprintf(stderr, "regiond: cannot create %s: %s\n", dir, strerror(errno));
		}
	}
#ifdef REGIOND_BPF
	if (fconf.nifaces) {
		struct fwd_err fe = {0};
		const struct ctl_gen *cur = ctl_state_current(&st);

		filter = ctl_filter_start(&fconf, &fe);
		if (filter == NULL) {
			fprintf(stderr, "regiond: XDP filter: %s\n", fe.reason);
			goto out;
		}
		st.hook = ctl_filter_apply;
		st.hook_arg = filter;
		if (cur && ctl_filter_generation(filter) != cur->id &&
		    ctl_filter_apply(filter, st.table, cur->id, &e)) {
			fprintf(stderr, "regiond: XDP filter refused generation %" PRIu64 ": %s\n", cur->id,
				e.reason);
			goto out;
		}
		conf.filters = (struct ctl_api_filters){filter_status, filter_detach, filter};
	}
#endif
	api = ctl_api_start(&conf, &st, &lock, started);
	if (api == NULL)
		goto out;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "regiond: API on %s%s%s, dataplane %s, state %s, generation %" PRIu64 "\n",
		conf.unix_path, conf.tcp_listen ? " and " : "", conf.tcp_listen ? conf.tcp_listen : "",
		dp_path, state_dir, ctl_state_current(&st) ? ctl_state_current(&st)->id : 0);

	while (!quit) {
		int64_t now = (int64_t)time(NULL);

		usleep(200000);
		pthread_mutex_lock(&lock);
		ctl_confirm_tick(&st);
		if (now - last_sync >= 1) {
			int s = ctl_state_sync(&st);

			if (s != in_sync)
				fprintf(stderr, "regiond: regionfwd %s\n",
					s ? "runs the current generation" : "is unreachable or out of sync");
			in_sync = s;
			last_sync = now;
#ifdef REGIOND_BPF
			if (filter && ctl_state_current(&st) &&
			    ctl_filter_generation(filter) != ctl_state_current(&st)->id)
				ctl_filter_apply(filter, st.table, ctl_state_current(&st)->id, &e);
#endif
		}
		pthread_mutex_unlock(&lock);
	}
	rc = 0;
out:
	ctl_api_stop(api);
#ifdef REGIOND_BPF
	ctl_filter_free(filter); /* stays attached and pinned: a restart adopts it */
#endif
	ctl_state_close(&st);
	ctl_content_cleanup();
	ctl_dp_free(dp);
	free(token);
	return rc;
}
