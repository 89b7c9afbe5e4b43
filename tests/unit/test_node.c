/*
 * Node config tests (dataplane/dp_node.c): every field parsed into its
 * member, the defaults, and one case per class of invalid input asserting
 * the exact error a user sees (file, line, field, reason) — regionfwd
 * prints these at start and for --check-node, and the dataplane tests
 * grep for them. The field table itself is checked for sanity: every
 * default in range, every range fitting its member.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "dp_node.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_node.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/node.yaml", dir);
	unlink(path);
	return rmdir(dir);
}

/* Load @text as a node config; on error, @msg gets the error without the
 * file name (it starts at the ':' before the line). */
static int load(const char *text, struct dp_node *n, char *msg, size_t len)
{
	char path[128], buf[1024];
	struct fwd_err err;
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/node.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	memset(&err, 0, sizeof(err));
	rc = dp_node_load(path, n, &err);
	msg[0] = '\0';
	if (rc) {
		fwd_err_str(&err, buf, sizeof(buf));
		assert_memory_equal(buf, path, strlen(path));
		snprintf(msg, len, "%s", buf + strlen(path));
	}
	return rc;
}

#define PORTS "ports:\n  in0: {device: net_null0, ingress: true}\n"

static void test_every_field(void **state)
{
	struct dp_node n;
	char msg[1024];

	(void)state;
	if (load("description: a lab box\n"
		 "ports:\n"
		 "  in0: {device: net_null0, ingress: true, description: users}\n"
		 "  out0: {device: 'net_tap0,iface=rfw-out'}\n"
		 "workers: [3, 1, 2]\n"
		 "mbufs: 8191\nmbuf_cache: 0\nmtu: 9000\nrx_desc: 512\ntx_desc: 2048\n"
		 "frag_entries: 64\nfrag_timeout_ms: 120000\ngroup_port_up_ms: 0\n"
		 "content_flow_entries: 1024\ncontent_flow_timeout_ms: 3600000\n"
		 "idle_sleep_us: 10000\n"
		 "control_socket: /run/rfw.sock\ncontrol_group: regiond\n",
		 &n, msg, sizeof(msg)))
		fail_msg("%s", msg);
	assert_int_equal(n.nports, 2);
	assert_string_equal(n.ports[0].name, "in0");
	assert_string_equal(n.ports[0].device, "net_null0");
	assert_int_equal(n.ports[0].ingress, 1);
	assert_string_equal(n.ports[1].name, "out0");
	assert_string_equal(n.ports[1].device, "net_tap0,iface=rfw-out");
	assert_int_equal(n.ports[1].ingress, 0);
	assert_int_equal(n.nworkers, 3);
	assert_int_equal(n.workers[0], 3);
	assert_int_equal(n.workers[2], 2);
	assert_int_equal(n.mbufs, 8191);
	assert_int_equal(n.mbuf_cache, 0);
	assert_int_equal(n.mtu, 9000);
	assert_int_equal(n.rx_desc, 512);
	assert_int_equal(n.tx_desc, 2048);
	assert_int_equal(n.frag_entries, 64);
	assert_int_equal(n.frag_timeout_ms, 120000);
	assert_int_equal(n.group_port_up_ms, 0);
	assert_int_equal(n.content_flow_entries, 1024);
	assert_int_equal(n.content_flow_timeout_ms, 3600000);
	assert_int_equal(n.idle_sleep_us, 10000);
	assert_string_equal(n.control_socket, "/run/rfw.sock");
	assert_string_equal(n.control_group, "regiond");
	assert_string_equal(n.source + strlen(dir), "/node.yaml");
}

/* The defaults as documented in docs/operations.md; a file with only ports
 * gets exactly these. */
static void check_defaults(const struct dp_node *n)
{
	assert_int_equal(n->nworkers, 0);
	assert_int_equal(n->mbufs, 32767);
	assert_int_equal(n->mbuf_cache, 256);
	assert_int_equal(n->mtu, 1500);
	assert_int_equal(n->rx_desc, 1024);
	assert_int_equal(n->tx_desc, 1024);
	assert_int_equal(n->frag_entries, 4096);
	assert_int_equal(n->frag_timeout_ms, 2000);
	assert_int_equal(n->group_port_up_ms, 2000);
	assert_int_equal(n->content_flow_entries, 65536);
	assert_int_equal(n->content_flow_timeout_ms, 30000);
	assert_int_equal(n->idle_sleep_us, 0); /* busy polling unless asked */
	assert_string_equal(n->control_socket, "");
	assert_string_equal(n->control_group, "");
}

static void test_defaults(void **state)
{
	struct dp_node n;
	char msg[1024];

	(void)state;
	memset(&n, 0xa5, sizeof(n));
	dp_node_defaults(&n);
	assert_int_equal(n.nports, 0);
	check_defaults(&n);
	memset(&n, 0xa5, sizeof(n));
	if (load(PORTS, &n, msg, sizeof(msg)))
		fail_msg("%s", msg);
	assert_int_equal(n.nports, 1);
	check_defaults(&n);
}

static const struct {
	const char *name, *text, *error;
} bad_cases[] = {
	{"not a map", "- a\n", ":1: expected a map at the top"},
	{"unknown field", PORTS "mbuf: 1\n", ":3: mbuf: unknown field 'mbuf'"},
	{"unknown before a bad value", "mbufs: 1\nworker: [1]\n" PORTS,
	 ":2: worker: unknown field 'worker'"},
	{"no ports", "mbufs: 4096\n", ": ports: missing field 'ports'"},
	{"ports not a map", "ports: [a]\n", ":1: ports: expected a map of port names"},
	{"ports empty", "ports: {}\n", ":1: ports: expected a map of port names"},
	{"bad port name", "ports:\n  'in 0': {device: x, ingress: true}\n",
	 ":2: ports.in 0: port name may only use letters, digits, '_', '-', '.'"},
	{"port not a map", "ports:\n  in0: net_null0\n",
	 ":2: ports.in0: expected a map with 'device'"},
	{"unknown port field", "ports:\n  in0: {device: net_null0, ingres: true}\n",
	 ":2: ports.in0: unknown field 'ingres' (expected one of: device, ingress, xdp_filter, "
	 "description)"},
	{"no device", "ports:\n  in0: {ingress: true}\n",
	 ":2: ports.in0: missing 'device' (PCI address, ethdev name or vdev devargs)"},
	{"bad ingress", "ports:\n  in0: {device: x, ingress: yes}\n",
	 ":2: ports.in0: ingress must be true or false"},
	{"no ingress", "ports:\n  in0: {device: x}\n", ":2: ports: no port has 'ingress: true'"},
	{"one device twice",
	 "ports:\n  in0: {device: net_null0, ingress: true}\n  out0: {device: "
	 "'net_null0,size=64'}\n",
	 ":3: ports.out0: device 'net_null0' is port 'in0''s already"},
	{"workers not a list", PORTS "workers: 1\n",
	 ":3: workers: expected a list of 1..64 lcore ids"},
	{"workers empty", PORTS "workers: []\n", ":3: workers: expected a list of 1..64 lcore ids"},
	{"worker not a number", PORTS "workers: [a]\n", ":3: workers: expected a whole number"},
	{"worker out of range", PORTS "workers: [1024]\n",
	 ":3: workers: '1024' is out of range 0..1023"},
	{"worker twice", PORTS "workers:\n  - 1\n  - 1\n", ":5: workers: lcore 1 listed twice"},
	{"mbufs too few", PORTS "mbufs: 12\n", ":3: mbufs: '12' is out of range 1024..16777215"},
	{"mbufs negative", PORTS "mbufs: -1\n", ":3: mbufs: expected a whole number"},
	{"mbufs not a number", PORTS "mbufs: many\n", ":3: mbufs: expected a whole number"},
	{"mbufs trailing junk", PORTS "mbufs: 4096k\n",
	 ":3: mbufs: '4096k' is out of range 1024..16777215"},
	{"mbufs huge", PORTS "mbufs: 99999999999999999999999\n",
	 ":3: mbufs: '99999999999999999999999' is out of range 1024..16777215"},
	{"mbufs a list", PORTS "mbufs: [1]\n", ":3: mbufs: expected a whole number"},
	{"mbuf_cache", PORTS "mbuf_cache: 513\n", ":3: mbuf_cache: '513' is out of range 0..512"},
	{"mtu", PORTS "mtu: 67\n", ":3: mtu: '67' is out of range 68..9600"},
	{"rx_desc", PORTS "rx_desc: 16385\n", ":3: rx_desc: '16385' is out of range 64..16384"},
	{"tx_desc", PORTS "tx_desc: 63\n", ":3: tx_desc: '63' is out of range 64..16384"},
	{"frag_entries", PORTS "frag_entries: 16777217\n",
	 ":3: frag_entries: '16777217' is out of range 64..16777216"},
	{"frag_timeout_ms", PORTS "frag_timeout_ms: 0\n",
	 ":3: frag_timeout_ms: '0' is out of range 1..120000"},
	{"content_flow_entries", PORTS "content_flow_entries: 63\n",
	 ":3: content_flow_entries: '63' is out of range 64..16777216"},
	{"content_flow_timeout_ms", PORTS "content_flow_timeout_ms: 3600001\n",
	 ":3: content_flow_timeout_ms: '3600001' is out of range 1..3600000"},
	{"idle_sleep_us too long", PORTS "idle_sleep_us: 10001\n",
	 ":3: idle_sleep_us: '10001' is out of range 0..10000"},
	{"idle_sleep_us negative", PORTS "idle_sleep_us: -1\n",
	 ":3: idle_sleep_us: expected a whole number"},
	{"control_socket too long",
	 PORTS "control_socket: "
	       "/run/0123456789012345678901234567890123456789012345678901234567890123456789"
	       "0123456789012345678901234567890123456789\n",
	 ":3: control_socket: expected a string shorter than 108 bytes"},
	{"control_group a map", PORTS "control_group: {a: b}\n",
	 ":3: control_group: expected a string shorter than 64 bytes"},
	/* '' once meant the default (a walkthrough) */
	{"control_socket empty", PORTS "control_socket: ''\n",
	 ":3: control_socket: empty: leave control_socket out for its default"},
	{"control_group empty", PORTS "control_group: ''\n",
	 ":3: control_group: empty: leave control_group out for its default"},
	/* Several errors: the fields are checked in one fixed order, ports,
	 * workers, then the numbers, then the strings; the first error wins. */
	{"order: ports first", "mbufs: 1\nports: {}\n", ":2: ports: expected a map of port names"},
	{"order: workers before numbers", "mbufs: 1\nworkers: [a]\n" PORTS,
	 ":2: workers: expected a whole number"},
	{"order: mtu before rx_desc", PORTS "rx_desc: 1\nmtu: 1\n",
	 ":4: mtu: '1' is out of range 68..9600"},
	{"order: numbers before strings",
	 PORTS "control_group: {a: b}\ncontent_flow_timeout_ms: 0\n",
	 ":4: content_flow_timeout_ms: '0' is out of range 1..3600000"},
};

static void test_bad(void **state)
{
	struct dp_node n;
	char msg[1024];
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		if (load(bad_cases[i].text, &n, msg, sizeof(msg)) == 0)
			snprintf(msg, sizeof(msg), "(accepted)");
		if (strcmp(msg, bad_cases[i].error) != 0) {
			printf("case '%s':\n  got:      %s\n  expected: %s\n", bad_cases[i].name,
			       msg, bad_cases[i].error);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

static void test_too_many_ports(void **state)
{
	char text[4096], msg[1024];
	size_t off = 0;
	struct dp_node n;

	(void)state;
	off += (size_t)snprintf(text + off, sizeof(text) - off, "ports:\n");
	for (int i = 0; i <= DP_MAX_PORTS; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
					"  p%d: {device: net_null%d, ingress: true}\n", i, i);
	assert_int_not_equal(load(text, &n, msg, sizeof(msg)), 0);
	assert_string_equal(msg, ":2: ports: more than 32 ports");
}

/* xdp_filter: true adds xdp_prog= with xdp_object (or the installed path)
 * to a net_af_xdp device, once the object is known to be readable. */
static void test_xdp_filter(void **state)
{
	struct dp_node n;
	char text[512], msg[1024], want[512];

	(void)state;
	/* Any readable file stands for the object: the config itself. */
	snprintf(text, sizeof(text),
		 "ports:\n  in0: {device: 'net_af_xdp0,iface=eth1', ingress: true, xdp_filter: "
		 "true}\n  out0: {device: net_null0}\nxdp_object: %s/node.yaml\n",
		 dir);
	if (load(text, &n, msg, sizeof(msg)))
		fail_msg("%s", msg);
	snprintf(want, sizeof(want), "net_af_xdp0,iface=eth1,xdp_prog=%s/node.yaml", dir);
	assert_string_equal(n.ports[0].device, want);
	assert_string_equal(n.ports[1].device, "net_null0");
	assert_int_equal(n.ports[0].xdp_filter, 1);

	snprintf(text, sizeof(text),
		 "ports:\n  in0: {device: 'net_af_xdp0,iface=eth1', ingress: true, xdp_filter: "
		 "true}\nxdp_object: %s/none.bpf.o\n",
		 dir);
	assert_int_not_equal(load(text, &n, msg, sizeof(msg)), 0);
	snprintf(want, sizeof(want),
		 ":2: ports.in0.xdp_filter: cannot read the XDP object %s/none.bpf.o: No such file "
		 "or directory (install the package, or name it with xdp_object)",
		 dir);
	assert_string_equal(msg, want);

	assert_int_not_equal(load("ports:\n  in0: {device: net_null0, ingress: true, xdp_filter: "
				  "true}\n",
				  &n, msg, sizeof(msg)),
			     0);
	assert_string_equal(msg, ":2: ports.in0: xdp_filter needs a net_af_xdp device");
	assert_int_not_equal(load("ports:\n  in0: {device: 'net_af_xdp0,iface=e,xdp_prog=/x.o', "
				  "ingress: true, xdp_filter: true}\n",
				  &n, msg, sizeof(msg)),
			     0);
	assert_string_equal(msg, ":2: ports.in0: xdp_filter and xdp_prog= in device: give one");
	assert_int_not_equal(load("ports:\n  in0: {device: net_null0, ingress: true, xdp_filter: "
				  "yes}\n",
				  &n, msg, sizeof(msg)),
			     0);
	assert_string_equal(msg, ":2: ports.in0: xdp_filter must be true or false");
}

/* The table every field comes from: names unique, each range fits its
 * member and holds the default, each kind has what it needs, help is one
 * line. */
static void test_field_table(void **state)
{
	(void)state;
	assert_true(dp_node_nfields > 0);
	for (unsigned i = 0; i < dp_node_nfields; i++) {
		const struct dp_node_field *d = &dp_node_fields[i];

		assert_non_null(d->name);
		for (unsigned j = 0; j < i; j++)
			assert_string_not_equal(d->name, dp_node_fields[j].name);
		assert_non_null(d->help);
		assert_true(d->help[0] != '\0' && strchr(d->help, '\n') == NULL);
		assert_true(strlen(d->help) < 80);
		switch (d->kind) {
		case DP_NODE_UINT:
			assert_true(d->size == 2 || d->size == 4);
			assert_true(d->max < (1ull << (8 * d->size)));
			assert_true(d->min <= d->def && d->def <= d->max);
			assert_true(d->off + d->size <= sizeof(struct dp_node));
			break;
		case DP_NODE_STR:
			assert_true(d->size > 1 && d->off + d->size <= sizeof(struct dp_node));
			break;
		case DP_NODE_CUSTOM:
			assert_non_null(d->parse);
			break;
		case DP_NODE_NOTE:
			break;
		default:
			fail_msg("field %s: unknown kind %d", d->name, d->kind);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_field), cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bad),	    cmocka_unit_test(test_too_many_ports),
		cmocka_unit_test(test_field_table), cmocka_unit_test(test_xdp_filter),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
