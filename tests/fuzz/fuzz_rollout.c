/*
 * Fuzz target: what the rollout driver reads from etcd (control/ctl_rollout.c):
 * the same bytes as a rollout record and as a node report. Properties: a
 * record that parses writes out JSON that parses again into the same JSON
 * (nothing it accepts is lost or changed by a round trip); stepping it
 * against a facility of three nodes neither crashes nor writes a record that
 * no longer parses; a report that parses has valid names and bounded lists.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_rollout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void roundtrip(const struct ctl_rollout *r, struct ctl_rollout *tmp)
{
	struct fwd_err err;
	json_t *a = ctl_rollout_to_json(r), *b;
	char *text;

	if (a == NULL)
		abort();
	text = json_dumps(a, JSON_COMPACT);
	if (text == NULL || ctl_rollout_parse(text, strlen(text), tmp, &err) != 0)
		abort();
	b = ctl_rollout_to_json(tmp);
	if (!json_equal(a, b))
		abort();
	json_decref(a);
	json_decref(b);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct ctl_rollout r, tmp;
	static struct ctl_rollout_node nodes[3], prev[3];
	static struct ctl_rollout_actions act;
	struct ctl_rollout_node n;
	struct fwd_err err;

	if (ctl_rollout_node_parse((const char *)data, len, &n, &err) == 0) {
		if (n.n_labels > CTL_ROLLOUT_LABELS_MAX || n.n_drops > CTL_ROLLOUT_REASONS_MAX ||
		    n.n_links_down > CTL_ROLLOUT_LINKS_READ || !n.name[0])
			abort();
	}
	if (ctl_rollout_parse((const char *)data, len, &r, &err) != 0)
		return 0;
	roundtrip(&r, &tmp);
	for (int i = 0; i < 3; i++) {
		memset(&nodes[i], 0, sizeof(nodes[i]));
		snprintf(nodes[i].name, sizeof(nodes[i].name), "n%d", i + 1);
		snprintf(nodes[i].running, sizeof(nodes[i].running), "%s",
			 i == 0 ? r.table : r.previous);
		snprintf(nodes[i].target, sizeof(nodes[i].target), "%s", nodes[i].running);
		nodes[i].in_sync = true;
		nodes[i].updated_at = r.since + 5000;
		prev[i] = nodes[i];
		prev[i].updated_at = r.since + 4000;
		nodes[i].prev = &prev[i];
	}
	if (ctl_rollout_step(&r, nodes, 3, r.since + 100000, &act) == 0)
		roundtrip(&r, &tmp);
	return 0;
}
