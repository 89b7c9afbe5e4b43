#include "ctl_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fwd_names.h"
#include "fwd_clock.h"

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

void ctl_metrics_family(FILE *f, const char *name, const char *help, const char *type)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void ctl_metrics_sample(FILE *f, const char *name, double v, ...)
{
	va_list ap;
	const char *k;
	int n = 0;

	fputs(name, f);
	va_start(ap, v);
	while ((k = va_arg(ap, const char *)) != NULL) {
		fprintf(f, "%s%s=\"", n++ ? "," : "{", k);
		prom_label(f, va_arg(ap, const char *));
		fputc('"', f);
	}
	va_end(ap);
	if (n)
		fputc('}', f);
	/* Integers as integers (counters stay exact up to 2^53). */
	if (isinf(v))
		fputs(v > 0 ? " +Inf\n" : " -Inf\n", f);
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		fprintf(f, " %.0f\n", v);
	else
		fprintf(f, " %.17g\n", v);
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
	 "TCP packets that took a content rule's flow verdict (a drop unscanned, others after a "
	 "scan that matched no drop).",
	 "rule", FWD_RS_CONTENT, FWD_RV_FLOW_PACKETS},
	{"regionfwd_port_received_packets_total", "Packets the port's device received (ipackets).",
	 "port", FWD_RS_PORTS, FWD_RV_IPACKETS},
	{"regionfwd_port_sent_packets_total", "Packets the port's device sent (opackets).", "port",
	 FWD_RS_PORTS, FWD_RV_OPACKETS},
	{"regionfwd_port_missed_packets_total",
	 "Packets the device dropped because its RX ring was full (imissed).", "port", FWD_RS_PORTS,
	 FWD_RV_IMISSED},
	{"regionfwd_port_receive_errors_total", "Erroneous packets received (ierrors).", "port",
	 FWD_RS_PORTS, FWD_RV_IERRORS},
	{"regionfwd_port_transmit_errors_total", "Packets the device failed to send (oerrors).",
	 "port", FWD_RS_PORTS, FWD_RV_OERRORS},
	{"regionfwd_port_rx_nombuf_total",
	 "Receive attempts that found the mbuf pool empty (rx_nombuf).", "port", FWD_RS_PORTS,
	 FWD_RV_RX_NOMBUF},
};

static double now_s(void)
{
	return (double)fwd_wall_ns() / 1e9;
}

static const char *attr(const struct fwd_report_row *row, int a)
{
	return row->attr_state[a] == FWD_RA_SET ? row->attr[a] : NULL;
}

/* What regiond knows on its own: rendered whether regionfwd answers or not. */
static void regiond_series(FILE *f, const struct ctl_metrics_in *in)
{
	static const char *const health[] = {"healthy", "degraded", "unreachable"};
	const struct ctl_state *st = in->st;
	const struct ctl_gen *cur = ctl_state_current(st);
	const struct fwd_report *r = in->r;

	ctl_metrics_family(f, "regiond_start_time_seconds",
			   "When regiond started, in seconds since the epoch.", "gauge");
	ctl_metrics_sample(f, "regiond_start_time_seconds", (double)in->started, NULL);
	ctl_metrics_family(f, "regiond_api_credentials_refused_total",
			   "API requests refused for their credentials: 401 none or no valid "
			   "one, 403 one that may not do what was asked.",
			   "counter");
	ctl_metrics_sample(f, "regiond_api_credentials_refused_total", (double)in->refused_401,
			   "status", "401", NULL);
	ctl_metrics_sample(f, "regiond_api_credentials_refused_total", (double)in->refused_403,
			   "status", "403", NULL);
	ctl_metrics_family(f, "regiond_generation", "Generation id regiond holds as current.",
			   "gauge");
	ctl_metrics_sample(f, "regiond_generation", cur ? (double)cur->id : 0, NULL);
	if (cur) {
		ctl_metrics_family(f, "regiond_generation_age_seconds",
				   "Time since regiond's current generation was made.", "gauge");
		ctl_metrics_sample(f, "regiond_generation_age_seconds", now_s() - (double)cur->time,
				   NULL);
	}
	ctl_metrics_family(f, "regiond_dataplane_up",
			   "1 when regionfwd answered this scrape's counter request.", "gauge");
	ctl_metrics_sample(f, "regiond_dataplane_up", r != NULL, NULL);
	ctl_metrics_family(f, "regiond_dataplane_in_sync",
			   "1 when regionfwd runs regiond's current generation, pushed by it.",
			   "gauge");
	/* As status's in_sync: the same table pushed by another regiond
	 * (dp_foreign, the main loop's last report) is not this one's. */
	ctl_metrics_sample(f, "regiond_dataplane_in_sync",
			   cur && r && !in->st->dp_foreign && ctl_state_runs(in->st, r->gen.hash),
			   NULL);
	ctl_metrics_family(f, "regiond_dataplane_report_age_seconds",
			   "Age of regionfwd's last answer to regiond's main loop (asked every "
			   "second; +Inf before the first).",
			   "gauge");
	ctl_metrics_sample(f, "regiond_dataplane_report_age_seconds",
			   in->report_age_ms < 0 ? INFINITY : (double)in->report_age_ms / 1e3,
			   NULL);
	ctl_metrics_family(f, "regiond_alarm",
			   "1 while regiond raises an alarm (regionctl status says which).",
			   "gauge");
	ctl_metrics_sample(f, "regiond_alarm", st->alarm[0] != '\0', NULL);
	if (st->disk_known) {
		ctl_metrics_family(f, "regiond_state_free_bytes",
				   "Free bytes on the state directory's filesystem (regiond's "
				   "main loop reads it every second).",
				   "gauge");
		ctl_metrics_sample(f, "regiond_state_free_bytes", (double)st->disk_free, NULL);
		ctl_metrics_family(f, "regiond_state_need_bytes",
				   "What the next change may need there: twice the current "
				   "table (or largest document), the largest delta and 256 KiB; "
				   "below it, an alarm.",
				   "gauge");
		ctl_metrics_sample(f, "regiond_state_need_bytes", (double)st->disk_need, NULL);
	}
	ctl_metrics_family(f, "regiond_confirm_pending",
			   "1 while a change awaits confirmation (commit-confirm).", "gauge");
	ctl_metrics_sample(f, "regiond_confirm_pending", st->confirm_gen != 0, NULL);
	ctl_metrics_family(f, "regiond_health",
			   "The box's health as regionctl status exits with it: 1 for the "
			   "current state.",
			   "gauge");
	for (int i = 0; i < 3; i++)
		ctl_metrics_sample(f, "regiond_health", in->health == i, "state", health[i], NULL);
	for (unsigned i = 0; i < st->next; i++)
		if (st->ext[i].metrics)
			st->ext[i].metrics(st->ext[i].arg, st->table, f);
}

/* Links' admin state (the running table's) and operational state (their
 * port's link), ports' links and speeds, the mbuf pool: gauges. */
static void health_series(FILE *f, const struct fwd_report *r)
{
	const struct fwd_report_section *links = &r->sec[FWD_RS_LINKS];
	const struct fwd_report_section *ports = &r->sec[FWD_RS_PORTS];
	unsigned nstates;
	const char *const *states = fwd_schema_keys(FWD_SC_LINK_STATE, &nstates);

	ctl_metrics_family(f, "regionfwd_link_admin_state",
			   "A link's admin state in the running table: 1 for its state (up, "
			   "down, drain).",
			   "gauge");
	for (uint32_t i = 0; i < links->n; i++) {
		const char *state = attr(&links->rows[i], FWD_ATTR_LINK_STATE);

		for (unsigned k = 0; state && k < nstates; k++)
			ctl_metrics_sample(f, "regionfwd_link_admin_state",
					   strcmp(state, states[k]) == 0, "link",
					   links->rows[i].name, "state", states[k], NULL);
	}
	ctl_metrics_family(f, "regionfwd_link_oper_up",
			   "1 when the link's port has its link up, 0 when down.", "gauge");
	for (uint32_t i = 0; i < links->n; i++) {
		const char *port = attr(&links->rows[i], FWD_ATTR_LINK_PORT);
		const struct fwd_report_row *p =
			port ? fwd_report_find(r, FWD_RS_PORTS, port) : NULL;
		enum fwd_port_link l = p ? fwd_port_link_by_name(attr(p, FWD_ATTR_PORT_LINK))
					 : FWD_PORT_LINK_UNKNOWN;

		if (l != FWD_PORT_LINK_UNKNOWN)
			ctl_metrics_sample(f, "regionfwd_link_oper_up", l == FWD_PORT_LINK_UP,
					   "link", links->rows[i].name, "port", port, NULL);
	}
	ctl_metrics_family(f, "regionfwd_port_up", "1 when the port's link is up, 0 when down.",
			   "gauge");
	for (uint32_t i = 0; i < ports->n; i++) {
		enum fwd_port_link l =
			fwd_port_link_by_name(attr(&ports->rows[i], FWD_ATTR_PORT_LINK));

		if (l != FWD_PORT_LINK_UNKNOWN)
			ctl_metrics_sample(f, "regionfwd_port_up", l == FWD_PORT_LINK_UP, "port",
					   ports->rows[i].name, NULL);
	}
	ctl_metrics_family(f, "regionfwd_port_speed_bytes_per_second",
			   "The port's link speed (absent when the device does not say).", "gauge");
	for (uint32_t i = 0; i < ports->n; i++)
		if (ports->rows[i].v[FWD_RV_SPEED_MBPS])
			ctl_metrics_sample(f, "regionfwd_port_speed_bytes_per_second",
					   (double)ports->rows[i].v[FWD_RV_SPEED_MBPS] * 1e6 / 8,
					   "port", ports->rows[i].name, NULL);
	if (r->has_mbufs) {
		ctl_metrics_family(f, "regionfwd_mbuf_pool_size", "Mbufs in the pool.", "gauge");
		ctl_metrics_sample(f, "regionfwd_mbuf_pool_size", (double)r->mbuf_pool, NULL);
		ctl_metrics_family(f, "regionfwd_mbuf_pool_in_use",
				   "Mbufs in use: held by devices' rings, workers or in flight.",
				   "gauge");
		ctl_metrics_sample(f, "regionfwd_mbuf_pool_in_use", (double)r->mbuf_in_use, NULL);
	}
}

static void regionfwd_series(FILE *f, const struct fwd_report *r)
{
	ctl_metrics_family(f, "regionfwd_generation", "Generation id regionfwd runs.", "gauge");
	ctl_metrics_sample(f, "regionfwd_generation", (double)r->gen.id, NULL);
	ctl_metrics_family(f, "regionfwd_generation_age_seconds",
			   "Time since regionfwd built the generation it runs.", "gauge");
	ctl_metrics_sample(f, "regionfwd_generation_age_seconds",
			   now_s() - (double)r->gen.created_unix_ns / 1e9, NULL);
	ctl_metrics_family(f, "regionfwd_packets_total", "Packets by outcome.", "counter");
	ctl_metrics_sample(f, "regionfwd_packets_total", (double)r->packets.rx, "dir", "rx", NULL);
	ctl_metrics_sample(f, "regionfwd_packets_total", (double)r->packets.tx, "dir", "tx", NULL);
	ctl_metrics_family(f, "regionfwd_bytes_total", "Bytes received and sent.", "counter");
	ctl_metrics_sample(f, "regionfwd_bytes_total", (double)r->packets.rx_bytes, "dir", "rx",
			   NULL);
	ctl_metrics_sample(f, "regionfwd_bytes_total", (double)r->packets.tx_bytes, "dir", "tx",
			   NULL);
	ctl_metrics_family(f, "regionfwd_drops_total", "Packets dropped, by reason.", "counter");
	for (int i = 0; i < FWD_DROP_MAX; i++)
		ctl_metrics_sample(f, "regionfwd_drops_total", (double)r->drops[i], "reason",
				   fwd_drop_names[i], NULL);
	for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++) {
		const struct fwd_report_section *sec = &r->sec[families[k].sec];

		ctl_metrics_family(f, families[k].name, families[k].help, "counter");
		for (uint32_t i = 0; i < sec->n; i++)
			ctl_metrics_sample(f, families[k].name,
					   (double)sec->rows[i].v[families[k].value],
					   families[k].label, sec->rows[i].name, NULL);
	}
	ctl_metrics_family(f, "regionfwd_events_total",
			   "Fragment, mirror, generation, content and capture events.", "counter");
	for (int i = 0; i < FWD_EVT_MAX; i++)
		ctl_metrics_sample(f, "regionfwd_events_total", (double)r->events[i], "event",
				   fwd_evt_names[i], NULL);
	health_series(f, r);
}

char *ctl_metrics_render(const struct ctl_metrics_in *in)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	regiond_series(f, in);
	if (in->r != NULL)
		regionfwd_series(f, in->r);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
