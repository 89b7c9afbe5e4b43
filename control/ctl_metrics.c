#include "ctl_metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Prometheus label values: escape \, " and newline. */
static void prom_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*s, f);
	}
}

static void prom_family(FILE *f, const char *name, const char *help, const char *type,
			json_t *obj, const char *label, const char *field)
{
	const char *k;
	json_t *v;

	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	json_object_foreach(obj, k, v) {
		json_t *n = field ? json_object_get(v, field) : v;

		fprintf(f, "%s{%s=\"", name, label);
		prom_label(f, k);
		fprintf(f, "\"} %" JSON_INTEGER_FORMAT "\n", json_integer_value(n));
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *ctl_metrics_render(const struct ctl_state *st, json_t *c)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	json_t *pk, *g;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;

	fprintf(f, "# HELP regiond_generation Generation id regiond holds as current.\n"
		   "# TYPE regiond_generation gauge\nregiond_generation %" PRIu64 "\n",
		cur ? cur->id : 0);
	fprintf(f, "# HELP regiond_dataplane_up 1 when regionfwd answered.\n"
		   "# TYPE regiond_dataplane_up gauge\nregiond_dataplane_up %d\n",
		c != NULL);
	if (c != NULL) {
		pk = json_object_get(c, "packets");
		g = json_object_get(c, "generation");
		fprintf(f, "# HELP regionfwd_generation Generation id regionfwd runs.\n"
			   "# TYPE regionfwd_generation gauge\nregionfwd_generation %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(g, "id")));
		fprintf(f, "# HELP regionfwd_generation_age_seconds Age of the running generation.\n"
			   "# TYPE regionfwd_generation_age_seconds gauge\n"
			   "regionfwd_generation_age_seconds %.3f\n",
			now_s() - (double)json_integer_value(json_object_get(g, "created_unix_ns")) / 1e9);
		fprintf(f, "# HELP regionfwd_packets_total Packets by outcome.\n"
			   "# TYPE regionfwd_packets_total counter\n");
		fprintf(f, "regionfwd_packets_total{dir=\"rx\"} %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(pk, "rx")));
		fprintf(f, "regionfwd_packets_total{dir=\"tx\"} %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(pk, "tx")));
		fprintf(f, "# HELP regionfwd_bytes_total Bytes received and sent.\n"
			   "# TYPE regionfwd_bytes_total counter\n");
		fprintf(f, "regionfwd_bytes_total{dir=\"rx\"} %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(pk, "rx_bytes")));
		fprintf(f, "regionfwd_bytes_total{dir=\"tx\"} %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(json_object_get(pk, "tx_bytes")));
		prom_family(f, "regionfwd_drops_total", "Packets dropped, by reason.", "counter",
			    json_object_get(c, "drops"), "reason", NULL);
		prom_family(f, "regionfwd_link_packets_total", "Packets sent per link.", "counter",
			    json_object_get(c, "links"), "link", "packets");
		prom_family(f, "regionfwd_link_bytes_total", "Bytes sent per link.", "counter",
			    json_object_get(c, "links"), "link", "bytes");
		prom_family(f, "regionfwd_region_packets_total", "Packets per source region.", "counter",
			    json_object_get(c, "regions"), "region", "packets");
		prom_family(f, "regionfwd_region_bytes_total", "Bytes per source region.", "counter",
			    json_object_get(c, "regions"), "region", "bytes");
		prom_family(f, "regionfwd_service_packets_total", "Packets per service.", "counter",
			    json_object_get(c, "services"), "service", "packets");
		prom_family(f, "regionfwd_service_bytes_total", "Bytes per service.", "counter",
			    json_object_get(c, "services"), "service", "bytes");
		prom_family(f, "regionfwd_policy_packets_total", "Packets per policy (region/service).",
			    "counter", json_object_get(c, "policies"), "policy", "packets");
		prom_family(f, "regionfwd_events_total", "Fragment, mirror, generation and content events.",
			    "counter", json_object_get(c, "events"), "event", NULL);
		prom_family(f, "regionfwd_content_rule_matches_total",
			    "Packets whose scan matched a content rule.", "counter",
			    json_object_get(c, "content_rules"), "rule", "matches");
		prom_family(f, "regionfwd_content_rule_flow_packets_total",
			    "TCP packets that took a content rule's flow verdict without a scan.", "counter",
			    json_object_get(c, "content_rules"), "rule", "flow_packets");
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
