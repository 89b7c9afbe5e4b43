#include "ctl_metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fwd_names.h"

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

/* The per-name families, each a section's counter with its label: one
 * table, so a new section or counter is one row here. */
static const struct {
	const char *name, *help, *label;
	enum fwd_report_sec sec;
	int value;
} families[] = {
	{"regionfwd_link_packets_total", "Packets sent per link.", "link", FWD_RS_LINKS,
	 FWD_RV_PACKETS},
	{"regionfwd_link_bytes_total", "Bytes sent per link.", "link", FWD_RS_LINKS, FWD_RV_BYTES},
	{"regionfwd_region_packets_total", "Packets per source region.", "region", FWD_RS_REGIONS,
	 FWD_RV_PACKETS},
	{"regionfwd_region_bytes_total", "Bytes per source region.", "region", FWD_RS_REGIONS,
	 FWD_RV_BYTES},
	{"regionfwd_service_packets_total", "Packets per service.", "service", FWD_RS_SERVICES,
	 FWD_RV_PACKETS},
	{"regionfwd_service_bytes_total", "Bytes per service.", "service", FWD_RS_SERVICES,
	 FWD_RV_BYTES},
	{"regionfwd_policy_packets_total", "Packets per policy (region/service).", "policy",
	 FWD_RS_POLICIES, FWD_RV_PACKETS},
	{"regionfwd_content_rule_matches_total", "Packets whose scan matched a content rule.",
	 "rule", FWD_RS_CONTENT, FWD_RV_MATCHES},
	{"regionfwd_content_rule_flow_packets_total",
	 "TCP packets that took a content rule's flow verdict without a scan.", "rule",
	 FWD_RS_CONTENT, FWD_RV_FLOW_PACKETS},
};

static void family_head(FILE *f, const char *name, const char *help, const char *type)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(FILE *f, const char *name, const char *label, const char *value, uint64_t v)
{
	fprintf(f, "%s{%s=\"", name, label);
	prom_label(f, value);
	fprintf(f, "\"} %" PRIu64 "\n", v);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *ctl_metrics_render(const struct ctl_state *st, const struct fwd_report *r)
{
	const struct ctl_gen *cur = ctl_state_current(st);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	family_head(f, "regiond_generation", "Generation id regiond holds as current.", "gauge");
	fprintf(f, "regiond_generation %" PRIu64 "\n", cur ? cur->id : 0);
	family_head(f, "regiond_dataplane_up", "1 when regionfwd answered.", "gauge");
	fprintf(f, "regiond_dataplane_up %d\n", r != NULL);
	if (r != NULL) {
		family_head(f, "regionfwd_generation", "Generation id regionfwd runs.", "gauge");
		fprintf(f, "regionfwd_generation %" PRIu64 "\n", r->gen.id);
		family_head(f, "regionfwd_generation_age_seconds", "Age of the running generation.",
			    "gauge");
		fprintf(f, "regionfwd_generation_age_seconds %.3f\n",
			now_s() - (double)r->gen.created_unix_ns / 1e9);
		family_head(f, "regionfwd_packets_total", "Packets by outcome.", "counter");
		sample(f, "regionfwd_packets_total", "dir", "rx", r->packets.rx);
		sample(f, "regionfwd_packets_total", "dir", "tx", r->packets.tx);
		family_head(f, "regionfwd_bytes_total", "Bytes received and sent.", "counter");
		sample(f, "regionfwd_bytes_total", "dir", "rx", r->packets.rx_bytes);
		sample(f, "regionfwd_bytes_total", "dir", "tx", r->packets.tx_bytes);
		family_head(f, "regionfwd_drops_total", "Packets dropped, by reason.", "counter");
		for (int i = 0; i < FWD_DROP_MAX; i++)
			sample(f, "regionfwd_drops_total", "reason", fwd_drop_names[i],
			       r->drops[i]);
		for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++) {
			const struct fwd_report_section *sec = &r->sec[families[k].sec];

			family_head(f, families[k].name, families[k].help, "counter");
			for (uint32_t i = 0; i < sec->n; i++)
				sample(f, families[k].name, families[k].label, sec->rows[i].name,
				       sec->rows[i].v[families[k].value]);
		}
		family_head(f, "regionfwd_events_total",
			    "Fragment, mirror, generation and content events.", "counter");
		for (int i = 0; i < FWD_EVT_MAX; i++)
			sample(f, "regionfwd_events_total", "event", fwd_evt_names[i],
			       r->events[i]);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
