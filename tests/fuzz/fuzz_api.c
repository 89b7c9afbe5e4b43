/*
 * Fuzz target: regiond's API request handling, without HTTP: the first byte
 * picks an endpoint and method, the rest is the body. The state holds a
 * table (so PATCH, rollback and validate have something to work on); the
 * dataplane socket does not exist, so every change that gets through
 * validation is refused with 503 -- and must leave the state as it was.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_api.h"
#include "ctl_dp.h"

static const char table_doc[] =
	"regions: {india: {prefixes: [103.21.0.0/16, '2401:4900::/32']}, sg: {prefixes: "
	"[8.128.0.0/13]}}\n"
	"services: {https: [tcp/443, udp/443], sync: [tcp/7000-7010], dns: [udp/53]}\n"
	"links: {local: {port: p0, next_hop_mac: '02:00:00:00:01:01', tags: [in]},\n"
	"        to-sg: {port: p1, next_hop_mac: '02:00:00:00:02:01', tags: [sg]}}\n"
	"link_groups: {g: {members: {local: 1, to-sg: 1}}}\n"
	"policies: [{region: india, service: any, action: steer, to: local},\n"
	"           {region: sg, service: any, action: steer, to: g}]\n"
	"default: {action: drop}\n"
	"residency: [{name: r, region: india, services: [sync], allowed_tags: [in]}]\n";

static const struct {
	const char *method, *url;
} endpoints[] = {
	{"PUT", "/v1/table"},	  {"PATCH", "/v1/table"},  {"POST", "/v1/validate"},
	{"POST", "/v1/rollback"}, {"POST", "/v1/explain"}, {"POST", "/v1/confirm"},
	{"GET", "/v1/table"},	  {"GET", "/v1/history"},  {"GET", "/v1/status"},
	{"GET", "/metrics"},	  {"DELETE", "/v1/table"}, {"POST", "/v1/filters/detach"},
	{"POST", "/v1/prefixes"}, /* appended: the seeds' first bytes keep their endpoints */
};

static struct ctl_state st;
static struct ctl_api *api;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t gen0;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct ctl_api_conf conf = {.max_body = 1 << 20};
	char dir[] = "/tmp/regiond-fuzz-XXXXXX";
	struct fwd_err e;
	struct ctl_dp *dp = ctl_dp_create("/nonexistent/regionfwd.sock");

	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL || dp == NULL || ctl_state_open(&st, dir, 5, dp, &e) ||
	    ctl_state_apply(&st, table_doc, sizeof(table_doc) - 1, "fuzz", "seed", -1, 0, &e) != 1)
		abort();
	gen0 = ctl_state_current(&st)->id;
	api = ctl_api_new(&conf, &st, &lock, 0);
	return api ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *out = NULL;
	int status;

	if (len == 0)
		return 0;
	status = ctl_api_dispatch(
		api, endpoints[data[0] % (sizeof(endpoints) / sizeof(endpoints[0]))].method,
		endpoints[data[0] % (sizeof(endpoints) / sizeof(endpoints[0]))].url,
		(const char *)data + 1, len - 1, &out);
	if (status < 200 || status > 599 || out == NULL)
		abort();
	free(out);
	/* Without a dataplane nothing can be applied: the state never moves. */
	if (ctl_state_current(&st)->id != gen0)
		abort();
	return 0;
}
