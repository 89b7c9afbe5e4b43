/*
 * Rollout tests (control/ctl_rollout.c): options and their errors, node
 * reports and rollout records as hostile input, and the state machine run
 * against a simulated facility whose nodes follow their pins and desired
 * table as the node agent does: canary by count and by label, waves, each
 * gate failing (and the revert), nodes vanishing, nodes already on the
 * table, an empty facility, an operator's abort.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctl_rollout.h"

#define OLD "00000000000000aa"
#define NEW "00000000000000bb"

/* ---- a simulated facility ---------------------------------------------- */

struct snode {
	bool up; /* reports (its lease lives) */
	char pin[17];
	struct ctl_rollout_node rep, prev;
	bool has_prev;
	bool refuses_new; /* NEW does not validate on it */
	bool never_syncs; /* NEW hangs in applying */
	double drop_pps_new; /* no_link_up drops while it runs NEW */
	double drop_pps; /* ... and always */
	double acc; /* fractional drops carried over */
	bool link_down_on_new, health_bad_on_new;
	unsigned always_down; /* links spare00.. down all along */
	unsigned
		new_down_name; /* on NEW: 0 "to-sg" goes down, 1 "aaa", 2 "zz" while spare00 comes up */
};

struct sim {
	struct ctl_rollout *r;
	char desired[17];
	unsigned n;
	struct snode nodes[8];
	uint64_t now;
	unsigned pins_written; /* pin writes, to check nothing else moved */
};

static void sim_add(struct sim *s, const char *name, const char *label)
{
	struct snode *n = &s->nodes[s->n++];

	memset(n, 0, sizeof(*n));
	n->up = true;
	snprintf(n->rep.name, sizeof(n->rep.name), "%s", name);
	if (label) {
		n->rep.n_labels = 1;
		snprintf(n->rep.labels[0].key, sizeof(n->rep.labels[0].key), "role");
		snprintf(n->rep.labels[0].value, sizeof(n->rep.labels[0].value), "%s", label);
	}
	snprintf(n->rep.running, sizeof(n->rep.running), "%s", s->desired);
	snprintf(n->rep.target, sizeof(n->rep.target), "%s", s->desired);
	n->rep.in_sync = true;
	n->rep.state = CTL_NODE_IN_SYNC;
	n->rep.updated_at = s->now;
}

static void roundtrip(const struct ctl_rollout *r);

static struct snode *sim_node(struct sim *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (strcmp(s->nodes[i].rep.name, name) == 0)
			return &s->nodes[i];
	fail_msg("no node %s", name);
	return NULL;
}

/* One report interval: every node follows its target and counts drops. */
static void sim_tick(struct sim *s, uint64_t ms)
{
	s->now += ms;
	for (unsigned i = 0; i < s->n; i++) {
		struct snode *n = &s->nodes[i];
		struct ctl_rollout_node *r = &n->rep;
		const char *target = n->pin[0] ? n->pin : s->desired;
		bool on_new;
		double add;

		if (!n->up)
			continue;
		n->prev = n->rep;
		n->has_prev = true;
		snprintf(r->target, sizeof(r->target), "%s", target);
		r->apply_error = false;
		if (strcmp(target, NEW) == 0 && n->refuses_new) {
			r->state = CTL_NODE_FAILED;
			r->apply_error = true;
			snprintf(r->error_table, sizeof(r->error_table), "%s", NEW);
			snprintf(r->error_reason, sizeof(r->error_reason), "invalid_table");
			r->in_sync = false;
		} else if (strcmp(target, NEW) == 0 && n->never_syncs) {
			r->state = CTL_NODE_APPLYING;
			r->in_sync = false;
		} else {
			snprintf(r->running, sizeof(r->running), "%s", target);
			r->state = CTL_NODE_IN_SYNC;
			r->in_sync = true;
		}
		on_new = strcmp(r->running, NEW) == 0;
		r->health = on_new && n->health_bad_on_new ? 2 : 0;
		/* As the parser keeps them: the count, and the first names in
		 * name order ("aaa" < "spare.." < "to-sg"). */
		r->n_links_down = 0;
		if (on_new && n->link_down_on_new && n->new_down_name == 1)
			snprintf(r->links_down[r->n_links_down++], sizeof(r->links_down[0]), "aaa");
		for (unsigned k = 0; k < n->always_down; k++) {
			if (k == 0 && on_new && n->link_down_on_new && n->new_down_name == 2)
				continue; /* spare00 comes up */
			if (r->n_links_down < CTL_ROLLOUT_LINKS_MAX)
				snprintf(r->links_down[r->n_links_down], sizeof(r->links_down[0]),
					 "spare%02u", k);
			r->n_links_down++;
		}
		if (on_new && n->link_down_on_new && n->new_down_name != 1) {
			if (r->n_links_down < CTL_ROLLOUT_LINKS_MAX)
				snprintf(r->links_down[r->n_links_down], sizeof(r->links_down[0]),
					 n->new_down_name ? "zz" : "to-sg");
			r->n_links_down++;
		}
		add = (n->drop_pps + (on_new ? n->drop_pps_new : 0)) * (double)ms / 1000.0 + n->acc;
		if (r->n_drops == 0) {
			r->n_drops = 1;
			snprintf(r->drops[0].reason, sizeof(r->drops[0].reason), "no_link_up");
		}
		r->drops[0].count += (uint64_t)add;
		n->acc = add - (double)(uint64_t)add;
		r->updated_at = s->now;
	}
}

/* Step the rollout once with what is up, and carry out its writes. */
static struct ctl_rollout_actions sim_step(struct sim *s)
{
	struct ctl_rollout_node reps[8];
	struct ctl_rollout_actions act;
	size_t k = 0;

	for (unsigned i = 0; i < s->n; i++)
		if (s->nodes[i].up) {
			reps[k] = s->nodes[i].rep;
			reps[k++].prev = s->nodes[i].has_prev ? &s->nodes[i].prev : NULL;
		}
	assert_int_equal(ctl_rollout_step(s->r, reps, k, s->now, &act), 0);
	for (unsigned i = 0; i < s->r->n_nodes; i++) {
		struct snode *n = sim_node(s, s->r->nodes[i].name);

		switch (act.pin[i]) {
		case CTL_PIN_KEEP:
			continue;
		case CTL_PIN_TABLE:
			snprintf(n->pin, sizeof(n->pin), "%s", s->r->table);
			break;
		case CTL_PIN_PREVIOUS:
			snprintf(n->pin, sizeof(n->pin), "%s", s->r->previous);
			break;
		case CTL_PIN_DELETE:
			n->pin[0] = '\0';
			break;
		}
		s->pins_written++;
	}
	if (act.promote)
		snprintf(s->desired, sizeof(s->desired), "%s", s->r->table);
	return act;
}

/* Tick and step until the rollout finishes (or @max_ticks pass). */
static void sim_run(struct sim *s, unsigned max_ticks)
{
	for (unsigned t = 0; t < max_ticks; t++) {
		struct ctl_rollout_actions act;

		sim_tick(s, 1000);
		act = sim_step(s);
		if (act.finish)
			return;
	}
	fail_msg("rollout still %s after %u ticks", ctl_rollout_state_name(s->r->state), max_ticks);
}

static struct sim *sim_new(const struct ctl_rollout_opts *o)
{
	struct sim *s = calloc(1, sizeof(*s));
	struct fwd_err err = {0};

	s->r = calloc(1, sizeof(*s->r));
	s->now = 1700000000000ull;
	snprintf(s->desired, sizeof(s->desired), OLD);
	assert_int_equal(ctl_rollout_init(s->r, "r-1", "fra1", NEW, OLD, o, "test", s->now, &err),
			 0);
	return s;
}

static void sim_free(struct sim *s)
{
	free(s->r);
	free(s);
}

static struct ctl_rollout_opts opts(unsigned canary, unsigned wave, unsigned bake)
{
	struct ctl_rollout_opts o;

	ctl_rollout_opts_default(&o);
	o.canary = canary;
	o.wave = wave;
	o.bake_s = bake;
	o.sync_timeout_s = 10;
	return o;
}

static const struct ctl_rollout_rnode *rnode(const struct sim *s, const char *name)
{
	for (unsigned i = 0; i < s->r->n_nodes; i++)
		if (strcmp(s->r->nodes[i].name, name) == 0)
			return &s->r->nodes[i];
	fail_msg("no plan node %s", name);
	return NULL;
}

/* ---- options ----------------------------------------------------------- */

static json_t *js(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

static void test_opts(void **state)
{
	struct ctl_rollout_opts o;
	struct fwd_err err = {0};
	json_t *j;

	(void)state;
	ctl_rollout_opts_default(&o);
	assert_int_equal(o.canary, 1);
	assert_int_equal(o.bake_s, 60);
	assert_true(o.link_gate);

	j = js("{\"canary\": 2, \"bake_s\": 5, \"wave\": 3, \"canary_label\": \"role=canary\"}");
	assert_int_equal(ctl_rollout_opts_from_json(&o, j, &err), 0);
	assert_int_equal(o.canary, 2);
	assert_string_equal(o.canary_label, "role=canary");
	json_decref(j);

	j = js("{\"bake\": 5}");
	assert_int_equal(ctl_rollout_opts_from_json(&o, j, &err), -EINVAL);
	assert_string_equal(err.path, "options.bake");
	assert_string_equal(err.reason, "unknown option");
	json_decref(j);

	j = js("{\"wave\": 0}");
	assert_int_equal(ctl_rollout_opts_from_json(&o, j, &err), -EINVAL);
	assert_string_equal(err.path, "options.wave");
	json_decref(j);

	/* A wave's pins are one etcd transaction: at most 100. */
	j = js("{\"wave\": 101}");
	assert_int_equal(ctl_rollout_opts_from_json(&o, j, &err), -EINVAL);
	assert_string_equal(err.path, "options.wave");
	assert_string_equal(err.reason, "must be an integer from 1 to 100");
	json_decref(j);

	j = js("{\"max_health\": \"1\"}");
	assert_int_equal(ctl_rollout_opts_from_json(&o, j, &err), -EINVAL);
	assert_string_equal(err.path, "options.max_health");
	json_decref(j);

	j = js("{\"canary_label\": \"role\"}");
	assert_int_equal(ctl_rollout_opts_from_json(&o, j, &err), -EINVAL);
	assert_string_equal(err.path, "options.canary_label");
	json_decref(j);

	ctl_rollout_opts_default(&o);
	j = js("{\"canary\": 0}");
	assert_int_equal(ctl_rollout_opts_from_json(&o, j, &err), -EINVAL);
	assert_string_equal(err.path, "options.canary");
	json_decref(j);

	j = js("{\"canary\": 0, \"canary_label\": \"dc=b\"}");
	assert_int_equal(ctl_rollout_opts_from_json(&o, j, &err), 0);
	json_decref(j);
}

/* ---- node reports ------------------------------------------------------ */

#define REPORT(extra)                                                                              \
	"{\"schema\":1,\"node\":\"n1\",\"facility\":\"fra1\",\"labels\":{\"role\":\"canary\"},"    \
	"\"version\":\"x\",\"state\":\"in_sync\",\"target\":{\"table\":\"" NEW "\","               \
	"\"source\":\"pin\",\"rollout\":\"r-1\",\"revision\":9},\"running\":{\"generation\":3,"    \
	"\"table\":\"" NEW "\",\"hash\":\"" NEW "\"},\"in_sync\":true,\"stale\":false,"            \
	"\"apply_error\":null,\"health\":{\"code\":0,\"links_down\":[],\"alarm\":\"\"},"           \
	"\"counters\":{\"rx\":10,\"tx\":8,\"drops\":2,\"drop_reasons\":{\"no_link_up\":2}}," extra \
	"\"updated_at\":1700000000000}"

static int parse(const char *text, struct ctl_rollout_node *n, struct fwd_err *err)
{
	return ctl_rollout_node_parse(text, strlen(text), n, err);
}

static void test_report_parse(void **state)
{
	struct ctl_rollout_node n;
	struct fwd_err err = {0};
	char buf[4096];

	(void)state;
	assert_int_equal(parse(REPORT(""), &n, &err), 0);
	assert_string_equal(n.name, "n1");
	assert_string_equal(n.running, NEW);
	assert_true(n.in_sync);
	assert_int_equal(n.n_drops, 1);
	assert_int_equal(n.drops[0].count, 2);
	assert_string_equal(n.labels[0].value, "canary");

	/* A newer schema is refused, never guessed at. */
	snprintf(buf, sizeof(buf), "%s", REPORT(""));
	memcpy(strstr(buf, "\"schema\":1"), "\"schema\":2", 10);
	assert_int_equal(parse(buf, &n, &err), -EINVAL);
	assert_string_equal(err.path, "schema");
	assert_non_null(strstr(err.reason, "newer"));

	/* 20 links down, listed in any order: read, counted, the first 16 by
	 * name kept; a link named twice is refused. */
	{
		char links[1024] = "";
		size_t off = 0;

		for (int i = 19; i >= 0; i--)
			off += (size_t)snprintf(links + off, sizeof(links) - off, "%s\"l%02d\"",
						i == 19 ? "" : ",", i);
		snprintf(buf, sizeof(buf), "%s", REPORT(""));
		{
			char *at = strstr(buf, "\"links_down\":[]");
			char tail[4096];

			snprintf(tail, sizeof(tail), "%s", at + strlen("\"links_down\":[]"));
			snprintf(at, sizeof(buf) - (size_t)(at - buf), "\"links_down\":[%s]%s",
				 links, tail);
		}
		assert_int_equal(parse(buf, &n, &err), 0);
		assert_int_equal(n.n_links_down, 20);
		assert_string_equal(n.links_down[0], "l00");
		assert_string_equal(n.links_down[CTL_ROLLOUT_LINKS_MAX - 1], "l15");
		memcpy(strstr(buf, "\"l00\""), "\"l01\"", 5);
		assert_int_equal(parse(buf, &n, &err), -EINVAL);
		assert_non_null(strstr(err.reason, "twice"));
	}

	assert_int_equal(parse("[1,2]", &n, &err), -EINVAL);
	assert_int_equal(parse("{\"schema\":1,", &n, &err), -EINVAL);
	assert_int_equal(parse("", &n, &err), -EINVAL);

	snprintf(buf, sizeof(buf), "%s", REPORT(""));
	memcpy(strstr(buf, "\"table\":\"" NEW), "\"table\":\"00000000000000BB", 25);
	assert_int_equal(parse(buf, &n, &err), -EINVAL);
	assert_string_equal(err.path, "target.table");

	snprintf(buf, sizeof(buf), "%s", REPORT(""));
	memcpy(strstr(buf, "\"node\":\"n1\""), "\"node\":\"N1\"", 11);
	assert_int_equal(parse(buf, &n, &err), -EINVAL);
	assert_string_equal(err.path, "node");

	snprintf(buf, sizeof(buf), "%s", REPORT(""));
	memcpy(strstr(buf, "\"code\":0"), "\"code\":7", 8);
	assert_int_equal(parse(buf, &n, &err), -EINVAL);
	assert_string_equal(err.path, "health.code");

	snprintf(buf, sizeof(buf), "%s", REPORT(""));
	memcpy(strstr(buf, "\"no_link_up\":2"), "\"no_link_up\":-", 14);
	assert_int_equal(parse(buf, &n, &err), -EINVAL);

	snprintf(buf, sizeof(buf), "%s", REPORT(""));
	memcpy(strstr(buf, "\"in_sync\":true"), "\"in_sync\":1   ", 14);
	assert_int_equal(parse(buf, &n, &err), -EINVAL);
	assert_string_equal(err.path, "in_sync");

	/* Fields it does not use may come and go (the node's side may grow). */
	assert_int_equal(parse(REPORT("\"future_field\":{\"x\":1},"), &n, &err), 0);

	/* A huge report is refused before it is parsed. */
	{
		size_t len = 100000;
		char *big = malloc(len + 1);

		memset(big, ' ', len);
		big[0] = '{';
		big[len - 1] = '}';
		big[len] = '\0';
		assert_int_equal(parse(big, &n, &err), -EINVAL);
		free(big);
	}
}

static void test_drop_rate(void **state)
{
	struct ctl_rollout_node a = {0}, b = {0};

	(void)state;
	a.updated_at = 1000;
	b.updated_at = 3000;
	a.n_drops = b.n_drops = 1;
	strcpy(a.drops[0].reason, "tx_full");
	strcpy(b.drops[0].reason, "tx_full");
	a.drops[0].count = 100;
	b.drops[0].count = 300;
	assert_true(ctl_rollout_drop_rate(&a, &b, "tx_full") == 100.0);
	assert_true(ctl_rollout_drop_rate(&a, &b, "no_link_up") == 0.0);
	assert_true(ctl_rollout_drop_rate(NULL, &b, "tx_full") < 0);
	b.drops[0].count = 5; /* restarted */
	assert_true(ctl_rollout_drop_rate(&a, &b, "tx_full") < 0);
}

/* ---- the state machine ------------------------------------------------- */

static void three(struct sim *s)
{
	sim_add(s, "n1", NULL);
	sim_add(s, "n2", NULL);
	sim_add(s, "n3", "canary");
}

static void test_canary_by_count(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 3);
	struct sim *s = sim_new(&o);
	struct ctl_rollout_actions act;

	(void)state;
	three(s);
	/* No rates before two reports: it waits and writes nothing. */
	act = sim_step(s);
	assert_false(act.write);
	assert_int_equal(s->r->state, CTL_RO_PENDING);

	sim_tick(s, 1000);
	act = sim_step(s);
	assert_true(act.write);
	assert_int_equal(s->r->state, CTL_RO_SYNCING);
	assert_int_equal(s->r->n_waves, 3);
	assert_int_equal(rnode(s, "n1")->wave, 0);
	assert_int_equal(rnode(s, "n2")->wave, 1);
	assert_int_equal(rnode(s, "n3")->wave, 2);
	assert_string_equal(sim_node(s, "n1")->pin, NEW);
	assert_string_equal(sim_node(s, "n2")->pin, "");
	assert_string_equal(sim_node(s, "n3")->pin, "");

	sim_tick(s, 1000);
	sim_step(s);
	assert_int_equal(s->r->state, CTL_RO_BAKING);
	assert_int_equal(rnode(s, "n1")->status, CTL_RN_SYNCED);
	/* Baking: nothing moves before the bake time. */
	sim_tick(s, 1000);
	act = sim_step(s);
	assert_false(act.write);
	assert_true(act.wake_at > s->now);
	assert_string_equal(sim_node(s, "n2")->pin, "");

	sim_run(s, 60);
	assert_int_equal(s->r->state, CTL_RO_COMPLETED);
	assert_string_equal(s->desired, NEW);
	for (unsigned i = 0; i < s->n; i++)
		assert_string_equal(s->nodes[i].pin, "");
	assert_int_equal(rnode(s, "n3")->status, CTL_RN_DONE);
	assert_false(rnode(s, "n3")->pinned);
	sim_free(s);
}

static void test_canary_by_label_and_waves(void **state)
{
	struct ctl_rollout_opts o = opts(0, 2, 2);
	struct sim *s;

	(void)state;
	strcpy(o.canary_label, "role=canary");
	s = sim_new(&o);
	three(s);
	sim_add(s, "n4", NULL);
	sim_add(s, "n5", NULL);
	sim_tick(s, 1000);
	sim_step(s);
	assert_int_equal(rnode(s, "n3")->wave, 0);
	assert_int_equal(rnode(s, "n1")->wave, 1);
	assert_int_equal(rnode(s, "n2")->wave, 1);
	assert_int_equal(rnode(s, "n4")->wave, 2);
	assert_int_equal(rnode(s, "n5")->wave, 2);
	assert_int_equal(s->r->n_waves, 3);
	assert_string_equal(sim_node(s, "n3")->pin, NEW);
	assert_string_equal(sim_node(s, "n1")->pin, "");
	sim_run(s, 60);
	assert_int_equal(s->r->state, CTL_RO_COMPLETED);
	sim_free(s);
}

static void test_no_canary_label(void **state)
{
	struct ctl_rollout_opts o = opts(0, 1, 2);
	struct sim *s;
	struct ctl_rollout_actions act;

	(void)state;
	strcpy(o.canary_label, "role=nobody");
	s = sim_new(&o);
	three(s);
	sim_tick(s, 1000);
	act = sim_step(s);
	assert_true(act.finish);
	assert_int_equal(s->r->state, CTL_RO_ABORTED);
	assert_string_equal(s->r->abort_gate, "no_canary");
	assert_int_equal(s->pins_written, 0);
	sim_free(s);
}

/* Run to a gate failure; the canary (n1) goes back to OLD, others never move. */
static void expect_abort_after_canary(struct sim *s, const char *gate)
{
	sim_run(s, 60);
	assert_int_equal(s->r->state, CTL_RO_ABORTED);
	assert_string_equal(s->r->abort_gate, gate);
	assert_string_equal(s->r->abort_node, "n1");
	assert_string_equal(s->desired, OLD);
	assert_int_equal(rnode(s, "n1")->status, CTL_RN_REVERTED);
	assert_string_equal(sim_node(s, "n1")->pin, "");
	assert_string_equal(sim_node(s, "n1")->rep.running, OLD);
	assert_int_equal(rnode(s, "n2")->status, CTL_RN_WAITING);
	assert_int_equal(rnode(s, "n3")->status, CTL_RN_WAITING);
	assert_string_equal(sim_node(s, "n2")->rep.running, OLD);
	/* pin NEW, pin OLD, delete: n1's three and nothing else */
	assert_int_equal(s->pins_written, 3);
}

static void test_gate_apply_error(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 3);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	sim_node(s, "n1")->refuses_new = true;
	expect_abort_after_canary(s, "apply_error");
	assert_non_null(strstr(s->r->abort_reason, "invalid_table"));
	sim_free(s);
}

static void test_gate_sync_timeout(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 3);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	sim_node(s, "n1")->never_syncs = true;
	expect_abort_after_canary(s, "sync_timeout");
	sim_free(s);
}

/* The sync timeout is for a node that is stuck, not for a leader that
 * looks late (a slow round, a takeover): a node whose report says it runs
 * the table in sync when the leader next looks is synced, whatever the
 * clock says by then. */
static void test_sync_seen_late_is_not_a_timeout(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 3);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	while (s->r->state == CTL_RO_PENDING) {
		sim_tick(s, 1000);
		sim_step(s);
	}
	assert_int_equal(s->r->state, CTL_RO_SYNCING);
	assert_int_equal(rnode(s, "n1")->status, CTL_RN_PINNED);
	/* The leader does not look for 15 s (sync_timeout_s is 10); the
	 * canary follows its pin meanwhile. */
	for (int i = 0; i < 15; i++)
		sim_tick(s, 1000);
	assert_true(sim_node(s, "n1")->rep.in_sync);
	assert_string_equal(sim_node(s, "n1")->rep.running, NEW);
	sim_step(s);
	assert_int_equal(s->r->state, CTL_RO_BAKING);
	assert_int_equal(rnode(s, "n1")->status, CTL_RN_SYNCED);
	sim_run(s, 60);
	assert_int_equal(s->r->state, CTL_RO_COMPLETED);
	assert_string_equal(s->desired, NEW);

	/* A node still not in sync when the leader looks late is timed out. */
	sim_free(s);
	s = sim_new(&o);
	three(s);
	sim_node(s, "n1")->never_syncs = true;
	while (s->r->state == CTL_RO_PENDING) {
		sim_tick(s, 1000);
		sim_step(s);
	}
	for (int i = 0; i < 15; i++)
		sim_tick(s, 1000);
	sim_step(s);
	assert_int_equal(s->r->state, CTL_RO_ABORTING);
	assert_string_equal(s->r->abort_gate, "sync_timeout");
	sim_free(s);
}

static void test_gate_link_down(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 5);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	sim_node(s, "n1")->link_down_on_new = true;
	expect_abort_after_canary(s, "link_down");
	assert_non_null(strstr(s->r->abort_reason, "to-sg"));
	sim_free(s);
}

/* More links down than a report keeps names of (found by a hostile probe:
 * 17 were refused as "too many links", and the node looked lost): still
 * read, and gated on the count and the first names. */
static void test_gate_link_down_many(void **state)
{
	for (unsigned name = 0; name < 3; name++) {
		struct ctl_rollout_opts o = opts(1, 1, 5);
		struct sim *s = sim_new(&o);

		(void)state;
		three(s);
		for (unsigned i = 0; i < s->n; i++)
			s->nodes[i].always_down = CTL_ROLLOUT_LINKS_MAX + 4;
		sim_node(s, "n1")->link_down_on_new = true;
		sim_node(s, "n1")->new_down_name = name;
		expect_abort_after_canary(s, "link_down");
		/* 2: as many down as before, one up and one down past the kept
		 * names of the report: seen by the one up among the baseline's */
		assert_non_null(
			strstr(s->r->abort_reason,
			       name == 1   ? "link aaa went down"
			       : name == 2 ? "20 links are down, 20 before the wave (1 of them up"
					   : "21 links are down, 20 before"));
		sim_free(s);
	}
	{
		/* The same links down all along: no gate fails. */
		struct ctl_rollout_opts o = opts(1, 1, 2);
		struct sim *s = sim_new(&o);

		three(s);
		for (unsigned i = 0; i < s->n; i++)
			s->nodes[i].always_down = CTL_ROLLOUT_LINKS_MAX + 4;
		sim_run(s, 60);
		assert_int_equal(s->r->state, CTL_RO_COMPLETED);
		sim_free(s);
	}
}

static void test_gate_link_off(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 3);
	struct sim *s;

	(void)state;
	o.link_gate = false;
	s = sim_new(&o);
	three(s);
	sim_node(s, "n1")->link_down_on_new = true;
	sim_run(s, 60);
	assert_int_equal(s->r->state, CTL_RO_COMPLETED);
	sim_free(s);
}

static void test_gate_health(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 5);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	sim_node(s, "n1")->health_bad_on_new = true;
	expect_abort_after_canary(s, "health");
	sim_free(s);
}

static void test_gate_drop_rate(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 10);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	sim_node(s, "n1")->drop_pps = 50;
	sim_node(s, "n1")->drop_pps_new = 500;
	expect_abort_after_canary(s, "drop_rate");
	assert_non_null(strstr(s->r->abort_reason, "no_link_up"));
	sim_free(s);
}

/* A busy box: drops before the wave, no more after: the gate holds. */
static void test_drop_rate_steady(void **state)
{
	struct ctl_rollout_opts o = opts(1, 2, 5);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	for (unsigned i = 0; i < 3; i++)
		s->nodes[i].drop_pps = 5000;
	sim_node(s, "n2")->drop_pps_new = 150; /* +150/s of 5000: noise, not a jump */
	sim_run(s, 60);
	assert_int_equal(s->r->state, CTL_RO_COMPLETED);
	assert_int_equal(rnode(s, "n1")->base_rates[0].count, 5000);
	sim_free(s);
}

/* A failure in the second wave reverts the canary and the wave. */
static void test_gate_second_wave(void **state)
{
	struct ctl_rollout_opts o = opts(1, 2, 3);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	sim_node(s, "n3")->drop_pps_new = 1000;
	sim_run(s, 60);
	assert_int_equal(s->r->state, CTL_RO_ABORTED);
	assert_string_equal(s->r->abort_gate, "drop_rate");
	assert_string_equal(s->r->abort_node, "n3");
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(s->r->nodes[i].status, CTL_RN_REVERTED);
		assert_string_equal(s->nodes[i].rep.running, OLD);
		assert_string_equal(s->nodes[i].pin, "");
	}
	sim_free(s);
}

static void test_operator_abort(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 30);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	sim_tick(s, 1000);
	sim_step(s);
	sim_tick(s, 1000);
	sim_step(s);
	assert_int_equal(s->r->state, CTL_RO_BAKING);
	s->r->abort_requested = true;
	sim_run(s, 20);
	assert_int_equal(s->r->state, CTL_RO_ABORTED);
	assert_string_equal(s->r->abort_gate, "operator");
	assert_int_equal(rnode(s, "n1")->status, CTL_RN_REVERTED);
	assert_string_equal(s->desired, OLD);
	sim_free(s);
}

static void test_operator_abort_pending(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 30);
	struct sim *s = sim_new(&o);
	struct ctl_rollout_actions act;

	(void)state;
	three(s);
	s->r->abort_requested = true;
	act = sim_step(s);
	assert_true(act.finish);
	assert_int_equal(s->r->state, CTL_RO_ABORTED);
	assert_int_equal(s->pins_written, 0);
	roundtrip(s->r); /* a finished record without waves reads back */
	sim_free(s);
}

/* The canary vanishes mid-bake: no evidence, abort; its pin is deleted. */
static void test_canary_vanishes(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 10);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	sim_tick(s, 1000);
	sim_step(s);
	sim_tick(s, 1000);
	sim_step(s);
	assert_int_equal(s->r->state, CTL_RO_BAKING);
	sim_node(s, "n1")->up = false;
	sim_run(s, 20);
	assert_int_equal(s->r->state, CTL_RO_ABORTED);
	assert_string_equal(s->r->abort_gate, "node_lost");
	assert_int_equal(rnode(s, "n1")->status, CTL_RN_LOST);
	assert_string_equal(sim_node(s, "n1")->pin, "");
	sim_free(s);
}

/* A node whose report cannot be read (found by a hostile probe: a label
 * regiond took and the parser refused, or more links down than a report
 * holds) was planned around as if absent, and took the table at promotion
 * without a gate. Before the plan: aborted, nothing pinned; mid-wave: the
 * wave reverts. */
static void test_unreadable_report_aborts(void **state)
{
	for (int when = 0; when < 3; when++) {
		struct ctl_rollout_opts o = opts(1, 1, 10);
		struct sim *s = sim_new(&o);
		struct snode *bad;

		(void)state;
		three(s);
		sim_add(s, "n4", NULL);
		bad = sim_node(s, "n4");
		if (when == 1) {
			sim_tick(s, 1000);
			sim_step(s);
			sim_tick(s, 1000);
			sim_step(s);
			assert_int_equal(s->r->state, CTL_RO_BAKING);
		}
		bad->rep.unreadable = true;
		snprintf(bad->rep.unreadable_why, sizeof(bad->rep.unreadable_why),
			 "labels.desc: labels are key: value");
		if (when == 2) /* a key that names no node (nodes/N1.old): no name */
			bad->rep.name[0] = '\0';
		sim_run(s, 20);
		assert_int_equal(s->r->state, CTL_RO_ABORTED);
		assert_string_equal(s->r->abort_gate, "unreadable_report");
		assert_string_equal(s->r->abort_node, when == 2 ? "" : "n4");
		roundtrip(s->r); /* the history record reads back */
		assert_non_null(strstr(s->r->abort_reason, "labels.desc"));
		assert_string_equal(s->desired, OLD); /* never promoted */
		for (unsigned i = 0; i < s->n; i++)
			if (s->nodes[i].rep.name[0] && strcmp(s->nodes[i].rep.name, "n4") != 0)
				assert_string_equal(s->nodes[i].rep.running, OLD);
		sim_free(s);
	}
}

/* A phase that began a day ahead (a forged record) is refused by the step,
 * not waited for silently. */
static void test_future_phase_refused(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 10);
	struct sim *s = sim_new(&o);
	struct ctl_rollout_node rep[1];
	struct ctl_rollout_actions act;

	(void)state;
	three(s);
	rep[0] = s->nodes[0].rep;
	s->r->since = s->now + 86400000ull;
	assert_int_equal(ctl_rollout_step(s->r, rep, 1, s->now, &act), -EINVAL);
	s->r->abort_requested = true; /* the operator's abort goes on */
	assert_int_equal(ctl_rollout_step(s->r, rep, 1, s->now, &act), 0);
	assert_int_equal(s->r->state, CTL_RO_ABORTED);
	sim_free(s);
	s = sim_new(&o);
	three(s);
	s->r->since = s->now + 1000; /* a clock a second off is fine */
	assert_int_equal(ctl_rollout_step(s->r, rep, 1, s->now, &act), 0);
	sim_free(s);
}

static void test_label_rule(void **state)
{
	static const char *const good[] = {"role=canary", "rack.id=A-5_b", "k=v.1"};
	static const char *const bad[] = {"desc=rack 5", "Role=x", "=x",	"role",
					  "empty=",	 "k=v\"",  "k=\xc3\xa9"};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(ctl_rollout_label_ok(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(ctl_rollout_label_ok(bad[i]));
}

/* A node of a later wave vanishes: it is skipped, the rollout completes. */
static void test_wave_node_vanishes(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 2);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	sim_node(s, "n2")->never_syncs = true; /* so it is caught pinned */
	sim_tick(s, 1000);
	sim_step(s);
	for (unsigned t = 0; t < 20 && rnode(s, "n2")->status != CTL_RN_PINNED; t++) {
		sim_tick(s, 1000);
		sim_step(s);
	}
	assert_int_equal(rnode(s, "n2")->status, CTL_RN_PINNED);
	sim_node(s, "n2")->up = false;
	sim_run(s, 30);
	assert_int_equal(s->r->state, CTL_RO_COMPLETED);
	assert_int_equal(rnode(s, "n2")->status, CTL_RN_LOST);
	/* Its pin went with the promotion: back, it follows desired. */
	assert_string_equal(sim_node(s, "n2")->pin, "");
	assert_int_equal(rnode(s, "n3")->status, CTL_RN_DONE);
	sim_free(s);
}

/* A new leader resumes from the record alone: it has no earlier reports,
 * so it waits for rates before it starts the next wave, then goes on. */
static void test_takeover_resume(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 3);
	struct sim *s = sim_new(&o);
	struct ctl_rollout_actions act;
	struct fwd_err err = {0};
	json_t *j;
	char *text;

	(void)state;
	three(s);
	sim_tick(s, 1000);
	sim_step(s);
	sim_tick(s, 1000);
	sim_step(s);
	assert_int_equal(s->r->state, CTL_RO_BAKING);
	j = ctl_rollout_to_json(s->r);
	text = json_dumps(j, JSON_COMPACT);
	memset(s->r, 0xa5, sizeof(*s->r)); /* the old leader's memory is gone */
	assert_int_equal(ctl_rollout_parse(text, strlen(text), s->r, &err), 0);
	free(text);
	json_decref(j);
	for (unsigned i = 0; i < s->n; i++)
		s->nodes[i].has_prev = false;
	s->now += 5000; /* the bake is over */
	act = sim_step(s);
	assert_false(act.write);
	assert_int_equal(s->r->state, CTL_RO_BAKING);
	assert_string_equal(sim_node(s, "n2")->pin, "");
	sim_run(s, 60);
	assert_int_equal(s->r->state, CTL_RO_COMPLETED);
	assert_string_equal(s->desired, NEW);
	sim_free(s);
}

/* A node whose report never moves (no rate can be told) holds the plan
 * back for a sync timeout at most. */
static void test_pending_without_rates(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 3);
	struct sim *s = sim_new(&o);
	struct ctl_rollout_actions act;

	(void)state;
	three(s);
	act = sim_step(s);
	assert_false(act.write);
	s->now += 5000;
	act = sim_step(s); /* no tick: no node has an earlier report */
	assert_false(act.write);
	assert_int_equal(s->r->state, CTL_RO_PENDING);
	s->now += 6000; /* past sync_timeout_s (10) */
	act = sim_step(s);
	assert_true(act.write);
	assert_int_equal(s->r->state, CTL_RO_SYNCING);
	assert_int_equal(rnode(s, "n1")->n_base_rates, 0);
	sim_free(s);
}

static void test_already_on_target(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 2);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	/* n1 was pinned to NEW by hand earlier and runs it. */
	strcpy(sim_node(s, "n1")->pin, NEW);
	sim_tick(s, 1000);
	sim_tick(s, 1000);
	sim_step(s);
	assert_int_equal(rnode(s, "n1")->status, CTL_RN_ALREADY);
	assert_int_equal(rnode(s, "n1")->wave, -1);
	assert_int_equal(rnode(s, "n2")->wave, 0); /* the canary is one that changes */
	sim_run(s, 60);
	assert_int_equal(s->r->state, CTL_RO_COMPLETED);
	sim_free(s);
}

static void test_all_already(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 2);
	struct sim *s = sim_new(&o);
	struct ctl_rollout_actions act;

	(void)state;
	three(s);
	for (unsigned i = 0; i < 3; i++)
		strcpy(s->nodes[i].pin, NEW);
	sim_tick(s, 1000);
	act = sim_step(s);
	assert_true(act.promote);
	assert_true(act.finish);
	assert_int_equal(s->r->state, CTL_RO_COMPLETED);
	roundtrip(s->r); /* a finished record without waves reads back */
	sim_free(s);
}

static void test_empty_facility(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 2);
	struct sim *s = sim_new(&o);
	struct ctl_rollout_actions act;

	(void)state;
	act = sim_step(s);
	assert_true(act.finish);
	assert_false(act.promote);
	assert_int_equal(s->r->state, CTL_RO_ABORTED);
	assert_string_equal(s->r->abort_gate, "no_nodes");
	assert_string_equal(s->desired, OLD);
	roundtrip(s->r); /* a finished record without waves reads back */
	sim_free(s);
}

/* No previous table: an abort cannot pin back; pins go, nodes unreverted. */
static void test_abort_without_previous(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 5);
	struct sim *s = sim_new(&o);
	struct fwd_err err = {0};

	(void)state;
	assert_int_equal(ctl_rollout_init(s->r, "r-2", "fra1", NEW, "", &o, "t", s->now, &err), 0);
	three(s);
	sim_node(s, "n1")->health_bad_on_new = true;
	sim_run(s, 30);
	assert_int_equal(s->r->state, CTL_RO_ABORTED);
	assert_int_equal(rnode(s, "n1")->status, CTL_RN_UNREVERTED);
	assert_string_equal(sim_node(s, "n1")->pin, "");
	sim_free(s);
}

/* ---- the record -------------------------------------------------------- */

static void roundtrip(const struct ctl_rollout *r)
{
	struct ctl_rollout *back = calloc(1, sizeof(*back));
	struct fwd_err err = {0};
	json_t *a = ctl_rollout_to_json(r), *b;
	char *text;

	assert_non_null(a);
	text = json_dumps(a, JSON_COMPACT);
	if (ctl_rollout_parse(text, strlen(text), back, &err) != 0)
		fail_msg("%s: %s", err.path, err.reason);
	b = ctl_rollout_to_json(back);
	assert_true(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	free(text);
	free(back);
}

static void test_record_roundtrip(void **state)
{
	struct ctl_rollout_opts o = opts(1, 1, 10);
	struct sim *s = sim_new(&o);

	(void)state;
	three(s);
	/* more links down than the record keeps names of: the count survives */
	sim_node(s, "n1")->always_down = CTL_ROLLOUT_LINKS_MAX + 3;
	roundtrip(s->r);
	for (int i = 0; i < 6; i++) {
		sim_tick(s, 1000);
		sim_step(s);
		roundtrip(s->r);
	}
	assert_int_equal(s->r->state, CTL_RO_BAKING);
	assert_int_equal(rnode(s, "n1")->n_base_links, CTL_ROLLOUT_LINKS_MAX + 3);
	sim_node(s, "n1")->drop_pps_new = 900;
	sim_run(s, 30);
	roundtrip(s->r);
	sim_free(s);
}

/* A record edited from the stored form: each must be refused by name. */
static void expect_refused(const char *from, const char *to, const char *path)
{
	struct ctl_rollout_opts o = opts(1, 1, 10);
	struct sim *s = sim_new(&o);
	struct fwd_err err = {0};
	json_t *j;
	char *text, *at, buf[65536];

	three(s);
	sim_tick(s, 1000);
	sim_step(s);
	j = ctl_rollout_to_json(s->r);
	text = json_dumps(j, JSON_COMPACT);
	at = strstr(text, from);
	if (at == NULL)
		fail_msg("%s not in %s", from, text);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	assert_int_equal(ctl_rollout_parse(buf, strlen(buf), s->r, &err), -EINVAL);
	if (strcmp(err.path, path) != 0)
		fail_msg("%s -> %s: path %s (%s), want %s", from, to, err.path, err.reason, path);
	free(text);
	json_decref(j);
	sim_free(s);
}

static void test_record_hostile(void **state)
{
	struct ctl_rollout *r = calloc(1, sizeof(*r));
	struct fwd_err err = {0};

	(void)state;
	expect_refused("\"schema\":1", "\"schema\":2", "schema");
	expect_refused("\"schema\":1", "\"schema\":1,\"extra\":true", "extra");
	expect_refused("\"id\":\"r-1\"", "\"id\":\"R 1\"", "id");
	expect_refused("\"table\":\"" NEW "\"", "\"table\":\"xyz\"", "table");
	expect_refused("\"state\":\"syncing\"", "\"state\":\"dancing\"", "state");
	expect_refused("\"wave\":0", "\"wave\":7", "wave");
	expect_refused("\"name\":\"n2\"", "\"name\":\"n1\"", "nodes[1].name");
	expect_refused("\"name\":\"n2\"", "\"name\":\"../etc\"", "nodes[1].name");
	expect_refused("\"status\":\"pinned\"", "\"status\":\"happy\"", "nodes[0].status");
	expect_refused("\"bake_s\":10", "\"bake_s\":-1", "options.bake_s");
	expect_refused("\"drop_pps\":{}", "\"drop_pps\":{\"a b\":1}", "nodes[0].base.drop_pps.a b");
	expect_refused("\"health\":0", "\"health\":\"0\"", "nodes[0].base.health");
	/* A plan with a wave that holds no node (a forged record with "nodes":
	 * [] was promoted at once). */
	expect_refused("\"name\":\"n2\",\"wave\":1", "\"name\":\"n2\",\"wave\":0", "nodes");
	assert_int_equal(ctl_rollout_parse("null", 4, r, &err), -EINVAL);
	assert_int_equal(ctl_rollout_parse("{", 1, r, &err), -EINVAL);
	free(r);
}

static void test_init_refuses(void **state)
{
	struct ctl_rollout *r = calloc(1, sizeof(*r));
	struct ctl_rollout_opts o = opts(1, 1, 1);
	struct fwd_err err = {0};

	(void)state;
	assert_int_equal(ctl_rollout_init(r, "r-1", "Fra1", NEW, OLD, &o, "t", 1, &err), -EINVAL);
	assert_string_equal(err.path, "facility");
	assert_int_equal(ctl_rollout_init(r, "r-1", "fra1", "abc", OLD, &o, "t", 1, &err), -EINVAL);
	assert_string_equal(err.path, "table");
	assert_int_equal(ctl_rollout_init(r, "", "fra1", NEW, OLD, &o, "t", 1, &err), -EINVAL);
	assert_string_equal(err.path, "id");
	free(r);
}

static void test_gates_listed(void **state)
{
	const struct ctl_rollout_gate_info *g;
	size_t n = ctl_rollout_gates(&g);

	(void)state;
	assert_int_equal(n, 6);
	assert_string_equal(g[0].name, "apply_error");
	assert_string_equal(g[5].name, "drop_rate");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts),
		cmocka_unit_test(test_report_parse),
		cmocka_unit_test(test_drop_rate),
		cmocka_unit_test(test_canary_by_count),
		cmocka_unit_test(test_canary_by_label_and_waves),
		cmocka_unit_test(test_no_canary_label),
		cmocka_unit_test(test_gate_apply_error),
		cmocka_unit_test(test_gate_sync_timeout),
		cmocka_unit_test(test_sync_seen_late_is_not_a_timeout),
		cmocka_unit_test(test_gate_link_down),
		cmocka_unit_test(test_gate_link_down_many),
		cmocka_unit_test(test_gate_link_off),
		cmocka_unit_test(test_gate_health),
		cmocka_unit_test(test_gate_drop_rate),
		cmocka_unit_test(test_drop_rate_steady),
		cmocka_unit_test(test_gate_second_wave),
		cmocka_unit_test(test_operator_abort),
		cmocka_unit_test(test_operator_abort_pending),
		cmocka_unit_test(test_canary_vanishes),
		cmocka_unit_test(test_wave_node_vanishes),
		cmocka_unit_test(test_unreadable_report_aborts),
		cmocka_unit_test(test_label_rule),
		cmocka_unit_test(test_future_phase_refused),
		cmocka_unit_test(test_takeover_resume),
		cmocka_unit_test(test_pending_without_rates),
		cmocka_unit_test(test_already_on_target),
		cmocka_unit_test(test_all_already),
		cmocka_unit_test(test_empty_facility),
		cmocka_unit_test(test_abort_without_previous),
		cmocka_unit_test(test_record_roundtrip),
		cmocka_unit_test(test_record_hostile),
		cmocka_unit_test(test_init_refuses),
		cmocka_unit_test(test_gates_listed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
