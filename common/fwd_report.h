/*
 * fwd_report.h - the counter report as one typed structure: what regionfwd
 * counts, as its --stats-json, its telemetry, regiond's /v1/counters and
 * /metrics and regionctl's counters show it.
 *
 * regionfwd builds it from its counters (dataplane/dp_fold.c); everything
 * else reads it through this structure. Its JSON form (the model of
 * docs/operations.md "Counters" and GET /v1/counters) is written by
 * fwd_report_json() and read back by fwd_report_from_json(): the one writer
 * and the one reader of that model, so no consumer looks counters up by
 * string key. Named sections (links, regions, services, policies, content
 * rules, ports) are rows described once in a table in fwd_report.c: their
 * JSON key, attributes and counters.
 */
#ifndef FWD_REPORT_H
#define FWD_REPORT_H

#include <stdint.h>

#include <jansson.h>

#include "fwd_defs.h"
#include "fwd_err.h"

enum fwd_report_sec {
	FWD_RS_LINKS, /* attrs port, state; packets, bytes (as sent) */
	FWD_RS_REGIONS, /* packets, bytes (as received) */
	FWD_RS_SERVICES, /* packets, bytes */
	FWD_RS_POLICIES, /* "region/service"; attrs action, target; packets */
	FWD_RS_CONTENT, /* attrs field, action, to; matches, flow_packets */
	FWD_RS_PORTS, /* attr link; ipackets, opackets, imissed, ierrors, oerrors, rx_nombuf,
			 speed_mbps */
	FWD_RS_MAX
};

#define FWD_REPORT_ATTRS 3
#define FWD_REPORT_VALUES 7

/* Counter slots by section, for readers that want names, not indexes. */
enum {
	FWD_RV_PACKETS = 0,
	FWD_RV_BYTES = 1,
	FWD_RV_MATCHES = 0,
	FWD_RV_FLOW_PACKETS = 1,
	FWD_RV_IPACKETS = 0,
	FWD_RV_OPACKETS = 1,
	FWD_RV_IMISSED = 2,
	FWD_RV_IERRORS = 3,
	FWD_RV_OERRORS = 4,
	FWD_RV_RX_NOMBUF = 5,
	FWD_RV_SPEED_MBPS = 6, /* a port's link speed, 0 unknown: a gauge */
};

/* A port's link as its device reports it: the "link" attribute of a row of
 * "ports" and the status's ports and links. */
enum fwd_port_link {
	FWD_PORT_LINK_UNKNOWN = 0,
	FWD_PORT_LINK_DOWN = 1,
	FWD_PORT_LINK_UP = 2,
	FWD_PORT_LINK_MAX
};

/** "unknown", "down", "up"; NULL out of range. */
const char *fwd_port_link_name(enum fwd_port_link l);

/** The state named @name, or FWD_PORT_LINK_UNKNOWN. */
enum fwd_port_link fwd_port_link_by_name(const char *name);

/* Attributes by section. */
enum {
	FWD_ATTR_LINK_PORT = 0,
	FWD_ATTR_LINK_STATE = 1,
	FWD_ATTR_PORT_LINK = 0,
};

enum fwd_report_attr_state {
	FWD_RA_ABSENT = 0, /* the row's object lacks it (e.g. a link no longer in the table) */
	FWD_RA_NULL = 1, /* JSON null (a content rule that steers nowhere) */
	FWD_RA_SET = 2,
};

/* A name a name-set rule matched most, and how often (an estimate: a
 * fixed-size heavy-hitters sketch per worker, docs/content-rules.md). */
#define FWD_REPORT_TOP_MAX 16
struct fwd_report_top {
	char name[256]; /* the set's entry as written: "example.com" or "*.example.com" */
	uint64_t count;
};

struct fwd_report_row {
	char name[80];
	char attr[FWD_REPORT_ATTRS][80];
	uint8_t attr_state[FWD_REPORT_ATTRS];
	uint64_t v[FWD_REPORT_VALUES];
	struct fwd_report_top *top; /* content rows of name sets: "top_names", most first */
	uint32_t ntop;
};

struct fwd_report_section {
	struct fwd_report_row *rows; /* in first-seen order */
	uint32_t n, cap;
	uint32_t *index; /* open addressing by name hash: row + 1, 0 empty */
	uint32_t index_mask;
};

/* The running generation: what the status op and the report both show. */
struct fwd_report_gen {
	uint64_t id, hash;
	int64_t created_unix_ns;
	char source[128];
	uint32_t regions, services, links, policies;
	uint64_t prefixes_v4, prefixes_v6;
	int has_content;
	uint32_t content_rules;
	uint64_t database_bytes, scratch_bytes;
	int compiled_here;
};

struct fwd_report {
	struct fwd_report_gen gen;
	uint32_t workers;
	struct {
		uint64_t rx, rx_bytes, tx, tx_bytes, dropped;
	} packets;
	uint64_t drops[FWD_DROP_MAX];
	uint64_t events[FWD_EVT_MAX];
	struct fwd_report_section sec[FWD_RS_MAX];
	int has_mbufs;
	uint64_t mbuf_pool, mbuf_in_use;
	/* Which run of regionfwd counted (a random id drawn at its start) and
	 * how long it had run when they were summed (CLOCK_MONOTONIC ns): two
	 * reports' rates are over the time between their sums, not between
	 * two clients' reads of them, and a restart shows even when the new
	 * run has already counted past the old one. 0: not said (an older
	 * regionfwd). */
	uint64_t instance, uptime_ns;
};

/** An empty report (NULL on ENOMEM). */
struct fwd_report *fwd_report_new(void);
void fwd_report_free(struct fwd_report *r);

/** A deep copy of @r (NULL on ENOMEM). */
struct fwd_report *fwd_report_clone(const struct fwd_report *r);

/** The row named @name of section @s, added (zeroed) when missing; NULL on ENOMEM. */
struct fwd_report_row *fwd_report_row(struct fwd_report *r, enum fwd_report_sec s,
				      const char *name);

/** The row named @name, or NULL. */
const struct fwd_report_row *fwd_report_find(const struct fwd_report *r, enum fwd_report_sec s,
					     const char *name);

/** Give @row the top names @top[0..@n) (copied, at most FWD_REPORT_TOP_MAX).
 *  @return 0 or -ENOMEM */
int fwd_report_set_top(struct fwd_report_row *row, const struct fwd_report_top *top, uint32_t n);

/** Set attribute @a of @row to @value (NULL: JSON null). */
void fwd_report_set_attr(struct fwd_report_row *row, int a, const char *value);

/** Section @s's JSON key ("links", ...) and its counters' names (NULL past the last). */
const char *fwd_report_sec_key(enum fwd_report_sec s);
const char *fwd_report_value_name(enum fwd_report_sec s, int v);
const char *fwd_report_attr_name(enum fwd_report_sec s, int a);

/** The generation's part of the model, "generation": {...} (new reference). */
json_t *fwd_report_gen_json(const struct fwd_report_gen *g);

/** The JSON model (new reference; NULL on ENOMEM). */
json_t *fwd_report_json(const struct fwd_report *r);

/**
 * Rates between two reports of the same regionfwd taken @seconds apart
 * (@before first), as JSON: {"interval_s", "reset", "packets": {rx, tx,
 * dropped as packets_per_s, rx and tx bits_per_s}, "drops": {reason:
 * packets_per_s}, "events": {...}, and every section's rows with each
 * counter as NAME_per_s (bytes as bits_per_s)}. A counter that went down
 * (regionfwd restarted) counts from 0 and sets "reset". Rows only in
 * @after count from 0; rows only in @before are left out.
 * @return a new reference, or NULL on ENOMEM or @seconds <= 0
 */
json_t *fwd_report_rates(const struct fwd_report *before, const struct fwd_report *after,
			 double seconds);

/** Read the JSON model back. @return the report, or NULL with @e naming the
 *  field that is not what the model says. Unknown drop reasons, events and
 *  keys (a newer regionfwd) are ignored. */
struct fwd_report *fwd_report_from_json(const json_t *j, struct fwd_err *e);

#endif /* FWD_REPORT_H */
