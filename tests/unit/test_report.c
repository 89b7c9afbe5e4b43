/*
 * The typed counter report (common/fwd_report.c): rows found by name in
 * first-seen order across index growth, clones independent of their
 * source, the JSON model written and read back to the same report, and a
 * report that is not the model refused with the field named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fwd_names.h"
#include "fwd_report.h"

static struct fwd_report *sample(void)
{
	struct fwd_report *r = fwd_report_new();
	struct fwd_report_row *row;

	assert_non_null(r);
	r->gen.id = 7;
	r->gen.hash = 0x47ed00825c42844cull;
	snprintf(r->gen.source, sizeof(r->gen.source), "t.yaml");
	r->gen.regions = 3;
	r->gen.has_content = 1;
	r->gen.content_rules = 2;
	r->workers = 2;
	r->packets.rx = 100;
	r->packets.tx = 90;
	r->packets.dropped = 10;
	r->drops[FWD_DROP_POLICY] = 10;
	r->events[0] = 4;
	row = fwd_report_row(r, FWD_RS_LINKS, "to-sg");
	row->v[FWD_RV_PACKETS] = 90;
	row->v[FWD_RV_BYTES] = 9000;
	fwd_report_set_attr(row, 0, "sg0");
	fwd_report_set_attr(row, 1, "up");
	fwd_report_row(r, FWD_RS_LINKS, "old-link")->v[FWD_RV_PACKETS] =
		5; /* gone: no attributes */
	row = fwd_report_row(r, FWD_RS_CONTENT, "sni-count");
	fwd_report_set_attr(row, 0, "tls_sni");
	fwd_report_set_attr(row, 1, "count");
	fwd_report_set_attr(row, 2, NULL); /* steers nowhere: JSON null */
	row->v[FWD_RV_MATCHES] = 3;
	fwd_report_row(r, FWD_RS_PORTS, "in0")->v[FWD_RV_IMISSED] = 2;
	r->has_mbufs = 1;
	r->mbuf_pool = 1023;
	return r;
}

static void test_rows_by_name(void **state)
{
	struct fwd_report *r = fwd_report_new(), *c;
	char name[32];

	(void)state;
	for (int i = 0; i < 5000; i++) { /* past several index growths */
		snprintf(name, sizeof(name), "region-%d", i);
		fwd_report_row(r, FWD_RS_REGIONS, name)->v[FWD_RV_PACKETS] += (uint64_t)i;
	}
	fwd_report_row(r, FWD_RS_REGIONS, "region-17")->v[FWD_RV_PACKETS] += 1000;
	assert_int_equal(r->sec[FWD_RS_REGIONS].n, 5000);
	assert_string_equal(r->sec[FWD_RS_REGIONS].rows[4321].name,
			    "region-4321"); /* first-seen order */
	assert_int_equal(fwd_report_find(r, FWD_RS_REGIONS, "region-17")->v[FWD_RV_PACKETS], 1017);
	assert_null(fwd_report_find(r, FWD_RS_REGIONS, "region-5000"));
	assert_null(fwd_report_find(r, FWD_RS_SERVICES, "region-17")); /* sections are apart */
	c = fwd_report_clone(r);
	fwd_report_row(c, FWD_RS_REGIONS, "region-17")->v[FWD_RV_PACKETS] = 0;
	fwd_report_row(c, FWD_RS_REGIONS, "new");
	assert_int_equal(fwd_report_find(r, FWD_RS_REGIONS, "region-17")->v[FWD_RV_PACKETS], 1017);
	assert_null(fwd_report_find(r, FWD_RS_REGIONS, "new"));
	assert_non_null(fwd_report_find(c, FWD_RS_REGIONS, "region-4999"));
	fwd_report_free(c);
	fwd_report_free(r);
}

static void test_json_round_trip(void **state)
{
	struct fwd_report *r = sample(), *back;
	struct fwd_err e;
	json_t *j = fwd_report_json(r), *j2, *l;
	char *a, *b;

	(void)state;
	/* The model's shape, as docs/operations.md and the API give it. */
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "generation"), "hash")),
		"47ed00825c42844c");
	l = json_object_get(json_object_get(j, "links"), "to-sg");
	assert_string_equal(json_string_value(json_object_get(l, "port")), "sg0");
	assert_null(
		json_object_get(json_object_get(json_object_get(j, "links"), "old-link"), "state"));
	assert_true(json_is_null(json_object_get(
		json_object_get(json_object_get(j, "content_rules"), "sni-count"), "to")));
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(j, "drops"), "policy_drop")),
		10);
	back = fwd_report_from_json(j, &e);
	assert_non_null(back);
	j2 = fwd_report_json(back);
	a = json_dumps(j, JSON_SORT_KEYS);
	b = json_dumps(j2, JSON_SORT_KEYS);
	assert_string_equal(a, b);
	free(a);
	free(b);
	json_decref(j2);
	json_decref(j);
	fwd_report_free(back);
	fwd_report_free(r);
}

static double rate_at(const json_t *r, const char *a, const char *b, const char *c)
{
	const json_t *v = json_object_get(json_object_get(r, a), b);

	return json_number_value(c ? json_object_get(v, c) : v);
}

/* Rates between two reads: deltas over the window, bytes as bits, a row
 * new in the second read counted from 0, a counter that went down (a
 * restarted regionfwd) counted from 0 and said. */
static void test_rates(void **state)
{
	struct fwd_report *a = sample(), *b = fwd_report_clone(a);
	struct fwd_report_row *row;
	json_t *r;

	(void)state;
	assert_null(fwd_report_rates(a, b, 0));
	b->packets.rx += 400;
	b->packets.rx_bytes += 40000;
	b->drops[FWD_DROP_POLICY] += 20;
	row = fwd_report_row(b, FWD_RS_LINKS, "to-sg");
	row->v[FWD_RV_PACKETS] += 200;
	row->v[FWD_RV_BYTES] += 30000;
	row = fwd_report_row(b, FWD_RS_LINKS, "local");
	row->v[FWD_RV_PACKETS] = 50;
	r = fwd_report_rates(a, b, 2.0);
	assert_non_null(r);
	assert_true(rate_at(r, "packets", "rx_packets_per_s", NULL) == 200.0);
	assert_true(rate_at(r, "packets", "rx_bits_per_s", NULL) == 160000.0);
	assert_true(rate_at(r, "drops", "policy_drop", NULL) == 10.0);
	assert_true(rate_at(r, "links", "to-sg", "packets_per_s") == 100.0);
	assert_true(rate_at(r, "links", "to-sg", "bits_per_s") == 120000.0);
	assert_true(rate_at(r, "links", "local", "packets_per_s") == 25.0);
	assert_true(json_is_false(json_object_get(r, "reset")));
	json_decref(r);
	/* regionfwd restarted between the reads: its counters start again */
	b->packets.rx = 30;
	r = fwd_report_rates(a, b, 1.0);
	assert_true(rate_at(r, "packets", "rx_packets_per_s", NULL) == 30.0);
	assert_true(json_is_true(json_object_get(r, "reset")));
	json_decref(r);
	fwd_report_free(a);
	fwd_report_free(b);
}

/* Reports that say regionfwd's run and uptime: the window is the time
 * between the two sums, whatever the client's clock says (a regiond paused
 * under one read doubled a rate); another run is a restart even when its
 * counters are already past the first report's (a restart 1 s into an 8 s
 * window went unsaid, 300 pkts/s read as 119: a probe), counted from 0
 * over its uptime. Both survive the JSON model. */
static void test_rates_by_instance_and_uptime(void **state)
{
	struct fwd_report *a = sample(), *b = fwd_report_clone(a), *back;
	struct fwd_err e;
	json_t *r, *j;

	(void)state;
	a->instance = b->instance = 0x1234abcd5678ef01ull;
	a->uptime_ns = 10000000000ull;
	b->uptime_ns = 12000000000ull; /* 2 s later */
	b->packets.rx += 600;
	r = fwd_report_rates(a, b, 4.0); /* the client waited 4 s */
	assert_true(rate_at(r, "packets", "rx_packets_per_s", NULL) == 300.0);
	assert_true(json_number_value(json_object_get(r, "interval_s")) == 2.0);
	assert_true(json_is_false(json_object_get(r, "reset")));
	json_decref(r);
	/* Another run, 7 s up, already past the old run's count. */
	b->instance = 0x77;
	b->uptime_ns = 7000000000ull;
	b->packets.rx = a->packets.rx + 10;
	r = fwd_report_rates(a, b, 8.0);
	assert_true(json_is_true(json_object_get(r, "reset")));
	assert_true(rate_at(r, "packets", "rx_packets_per_s", NULL) ==
		    (double)(int64_t)((double)b->packets.rx / 7.0 * 100.0 + 0.5) / 100.0);
	assert_true(json_number_value(json_object_get(r, "interval_s")) == 7.0);
	json_decref(r);
	/* A regionfwd upgraded in between: the old one said no instance. */
	a->instance = 0;
	r = fwd_report_rates(a, b, 8.0);
	assert_true(json_is_true(json_object_get(r, "reset")));
	json_decref(r);
	/* The model carries both; a bad instance is refused by name. */
	j = fwd_report_json(b);
	assert_string_equal(json_string_value(json_object_get(j, "instance")), "0000000000000077");
	back = fwd_report_from_json(j, &e);
	assert_non_null(back);
	assert_true(back->instance == 0x77 && back->uptime_ns == 7000000000ull);
	fwd_report_free(back);
	json_object_set_new(j, "instance", json_string("77"));
	assert_null(fwd_report_from_json(j, &e));
	assert_string_equal(e.path, "instance");
	json_object_set_new(j, "instance", json_string("0x00000000000077"));
	assert_null(fwd_report_from_json(j, &e));
	json_decref(j);
	fwd_report_free(a);
	fwd_report_free(b);
}

static void test_refused_with_the_field(void **state)
{
	static const struct {
		const char *json, *path;
	} bad[] = {
		{"[]", ""},
		{"{\"packets\": {\"rx\": 1, \"tx\": 1}}", "generation"},
		{"{\"generation\": {\"id\": 1}, \"packets\": {\"rx\": -1, \"tx\": 1}}",
		 "packets.rx"},
		{"{\"generation\": {\"id\": 1}, \"packets\": {\"rx\": 1}}", "packets.tx"},
		{"{\"generation\": {\"id\": \"7\"}, \"packets\": {\"rx\": 1, \"tx\": 1}}",
		 "generation.id"},
		{"{\"generation\": {\"id\": 1}, \"packets\": {\"rx\": 1, \"tx\": 1}, \"links\": "
		 "[]}",
		 "links"},
		{"{\"generation\": {\"id\": 1}, \"packets\": {\"rx\": 1, \"tx\": 1}, \"links\": "
		 "{\"a\": {\"packets\": 1.5}}}",
		 "links.a.packets"},
		{"{\"generation\": {\"id\": 1}, \"packets\": {\"rx\": 1, \"tx\": 1}, \"drops\": "
		 "{\"policy_drop\": \"x\"}}",
		 "drops.policy_drop"},
	};
	struct fwd_err e;
	json_t *j;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_loads(bad[i].json, 0, NULL);
		assert_non_null(j);
		memset(&e, 0, sizeof(e));
		assert_null(fwd_report_from_json(j, &e));
		assert_string_equal(e.path, bad[i].path);
		json_decref(j);
	}
	/* Names a newer regionfwd adds are ignored, not refused. */
	j = json_loads("{\"generation\": {\"id\": 1}, \"packets\": {\"rx\": 1, \"tx\": 1}, "
		       "\"drops\": {\"from_the_future\": 3}, \"new_section\": {}}",
		       0, NULL);
	struct fwd_report *r = fwd_report_from_json(j, &e);

	assert_non_null(r);
	fwd_report_free(r);
	json_decref(j);
}

/* A name set's top names: written, read back, cloned apart from the source,
 * and refused when they are not the model. */
static void test_top_names(void **state)
{
	struct fwd_report *r = fwd_report_new(), *back, *c;
	struct fwd_report_top top[2] = {{"*.tracker.example", 40}, {"evil.example", 3}};
	struct fwd_report_row *row = fwd_report_row(r, FWD_RS_CONTENT, "block");
	struct fwd_err e;
	json_t *j, *k;
	char *a, *b;

	(void)state;
	assert_int_equal(fwd_report_set_top(row, top, 2), 0);
	j = fwd_report_json(r);
	a = json_dumps(j, JSON_SORT_KEYS);
	assert_non_null(
		strstr(a, "\"top_names\": [{\"count\": 40, \"name\": \"*.tracker.example\"}"));
	back = fwd_report_from_json(j, &e);
	assert_non_null(back);
	c = fwd_report_clone(back);
	fwd_report_free(back);
	k = fwd_report_json(c);
	b = json_dumps(k, JSON_SORT_KEYS);
	assert_string_equal(a, b);
	json_decref(k);
	free(b);
	/* not the model: refused, naming the row */
	json_object_set_new(json_object_get(json_object_get(j, "content_rules"), "block"),
			    "top_names", json_pack("[{s:i}]", "count", 1));
	assert_null(fwd_report_from_json(j, &e));
	assert_non_null(strstr(e.path, "block"));
	json_decref(j);
	free(a);
	fwd_report_free(c);
	fwd_report_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows_by_name),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_refused_with_the_field),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_rates_by_instance_and_uptime),
		cmocka_unit_test(test_top_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
