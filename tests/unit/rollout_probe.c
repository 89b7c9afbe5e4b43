/*
 * rollout_probe - runs the rollout store and driver (control/ctl_rollout_store.c,
 * ctl_rollout_driver.c) for tests/control/test_rollout_driver.py against a
 * real etcd cluster, with simulated nodes written by the test. One command
 * per run; its result or error is one JSON line on stdout.
 *
 * Environment: ETCD_ENDPOINTS (required), ETCD_TIMEOUT_MS, ETCD_USER,
 * ETCD_PASSWORD, ETCD_MAX_REPLY (the client's reply bound: a small one
 * stands for many megabytes of hostile values in a test).
 *
 *   create FACILITY FILE [OPTIONS_JSON]   a rollout of FILE (no validation here)
 *   abort FACILITY                        ask the active rollout to abort
 *   drive FACILITY NODE SECONDS [LEASE_S] run a driver until SECONDS or SIGTERM,
 *                                         then print its status (UNPIN_AFTER_S:
 *                                         its grace for a finished rollout's pin)
 *   pins FACILITY                         the pins, each with its owner (PINS_MAX:
 *                                         how many at most)
 *   unpin FACILITY NODE                   delete a pin the active rollout does not own
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl_rollout_driver.h"
#include "ctl_rollout_store.h"
#include "fwd_log.h"
#include "fwd_doc.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int print_err(int rc, const struct fwd_err *err)
{
	char buf[700];
	json_t *j =
		json_pack("{s:i, s:s, s:s}", "rc", rc, "code", fwd_reason_name(err->reason_code),
			  "message", fwd_err_str(err, buf, sizeof(buf)));

	json_dumpf(j, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(j);
	return 1;
}

static void print(json_t *j)
{
	json_dumpf(j, stdout, JSON_COMPACT);
	putchar('\n');
	fflush(stdout);
	json_decref(j);
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct ctl_etcd_conf conf = {.endpoints = getenv("ETCD_ENDPOINTS")};
	struct fwd_err err = {0};
	struct ctl_etcd *e;
	int rc = 0;

	if (argc < 3 || conf.endpoints == NULL) {
		fprintf(stderr, "usage: ETCD_ENDPOINTS=... rollout_probe "
				"create|abort|history|drive|pins|nodes|unpin ...\n");
		return 2;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	conf.user = getenv("ETCD_USER");
	conf.password = getenv("ETCD_PASSWORD");
	if (getenv("ETCD_TIMEOUT_MS"))
		conf.timeout_ms = (unsigned)atoi(getenv("ETCD_TIMEOUT_MS"));
	if (getenv("ETCD_MAX_REPLY"))
		conf.max_reply = (size_t)atol(getenv("ETCD_MAX_REPLY"));
	e = ctl_etcd_create(&conf, &err);
	if (e == NULL)
		return print_err(-EINVAL, &err);
	if (strcmp(argv[1], "create") == 0 && argc >= 4) {
		struct ctl_rollout *r = malloc(sizeof(*r));
		struct ctl_rollout_opts o;
		char *doc;
		size_t len;

		ctl_rollout_opts_default(&o);
		if (argc >= 5) {
			json_t *j = json_loads(argv[4], 0, NULL);

			rc = ctl_rollout_opts_from_json(&o, j, &err);
			json_decref(j);
			if (rc) {
				free(r);
				ctl_etcd_free(e);
				return print_err(rc, &err);
			}
		}
		if (fwd_read_file(argv[3], &doc, &len, &err)) {
			free(r);
			ctl_etcd_free(e);
			return print_err(-EIO, &err);
		}
		srandom((unsigned)getpid());
		rc = ctl_rstore_create(e, argv[2], doc, len, &o, "probe", wall_ms(), r, &err);
		if (rc)
			print_err(rc, &err);
		else
			print(json_pack("{s:o}", "rollout", ctl_rollout_to_json(r)));
		free(doc);
		free(r);
	} else if (strcmp(argv[1], "abort") == 0) {
		struct ctl_rollout *r = malloc(sizeof(*r));

		rc = ctl_rstore_abort(e, argv[2], r, &err);
		if (rc)
			print_err(rc, &err);
		else
			print(json_pack("{s:o}", "rollout", ctl_rollout_to_json(r)));
		free(r);
	} else if (strcmp(argv[1], "history") == 0) {
		json_t *h = ctl_rstore_history(e, argv[2], 100, &err);

		if (h == NULL)
			rc = print_err(-EIO, &err);
		else
			print(json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(h),
					"rollouts", h));
	} else if (strcmp(argv[1], "drive") == 0 && argc >= 5) {
		struct ctl_rdriver_conf dc = {.etcd = conf, .facility = argv[2], .node = argv[3]};
		struct ctl_rdriver *d;
		double secs = atof(argv[4]);
		struct timespec t0, t;

		if (argc >= 6)
			dc.lease_s = (unsigned)atoi(argv[5]);
		dc.poll_ms = 200;
		dc.unpin_after_s =
			getenv("UNPIN_AFTER_S") ? (unsigned)atoi(getenv("UNPIN_AFTER_S")) : 60;
		d = ctl_rdriver_start(&dc, &err);
		if (d == NULL) {
			ctl_etcd_free(e);
			return print_err(-EINVAL, &err);
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			usleep(50 * 1000);
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while (!stop &&
			 (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 <
				 secs);
		/* Stopped first: an unpin or a commit under way when the
		 * time is up (or SIGTERM came) is in the status printed. */
		ctl_rdriver_stop(d);
		print(ctl_rdriver_status(d));
		ctl_rdriver_free(d);
	} else if (strcmp(argv[1], "pins") == 0) {
		struct ctl_rstore_pin *pins = calloc(CTL_ROLLOUT_NODES_MAX, sizeof(*pins));
		struct ctl_rstore_pinset set = {0};
		size_t max = getenv("PINS_MAX") ? (size_t)atol(getenv("PINS_MAX"))
						: CTL_ROLLOUT_NODES_MAX;
		int n = pins ? ctl_rstore_pins(e, argv[2], pins,
					       max < CTL_ROLLOUT_NODES_MAX ? max
									   : CTL_ROLLOUT_NODES_MAX,
					       &set, &err)
			     : -ENOMEM;

		if (n < 0) {
			rc = print_err(n, &err);
		} else {
			json_t *a = json_array();

			for (int i = 0; i < n && i < CTL_ROLLOUT_NODES_MAX; i++)
				json_array_append_new(a, ctl_rstore_pin_json(&pins[i]));
			print(json_pack("{s:s?, s:o, s:b, s:b}", "active",
					set.active[0] ? set.active : NULL, "pins", a, "truncated",
					set.truncated, "values_alone", set.values_alone));
		}
		free(pins);
	} else if (strcmp(argv[1], "nodes") == 0) {
		struct ctl_rollout_node *nodes = calloc(CTL_ROLLOUT_NODES_MAX, sizeof(*nodes));
		json_t *view = NULL;
		int n = nodes ? ctl_rstore_nodes(e, argv[2], nodes, CTL_ROLLOUT_NODES_MAX, &view,
						 &err)
			      : -ENOMEM;

		if (n < 0) {
			rc = print_err(n, &err);
		} else {
			json_t *a = json_array();

			for (int i = 0; i < n; i++)
				json_array_append_new(a, json_pack("{s:s, s:b, s:s}", "name",
								   nodes[i].name, "unreadable",
								   nodes[i].unreadable, "why",
								   nodes[i].unreadable_why));
			print(json_pack("{s:o, s:o}", "nodes", a, "view", view));
		}
		free(nodes);
	} else if (strcmp(argv[1], "unpin") == 0 && argc >= 4) {
		struct ctl_rstore_pin p;

		rc = ctl_rstore_unpin(e, argv[2], argv[3], 0, false, NULL, NULL, &p, &err);
		if (rc)
			print_err(rc, &err);
		else
			print(json_pack("{s:o}", "unpinned", ctl_rstore_pin_json(&p)));
	} else {
		fprintf(stderr, "rollout_probe: unknown command %s\n", argv[1]);
		rc = 2;
	}
	ctl_etcd_free(e);
	return rc ? 1 : 0;
}
