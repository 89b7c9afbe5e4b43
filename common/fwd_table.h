/*
 * fwd_table.h - the table document as a validated, self-contained model.
 *
 * A table document (docs/table-format.md) names regions with their IPv4 and
 * IPv6 prefixes, services with their protocol/port ranges, links, weighted
 * link groups, policies, a default action and residency rules. This module
 * turns a YAML/JSON document into struct fwd_table, refusing it whole with a
 * fwd_err naming file, line and field if anything is wrong. A table that
 * comes out of here is complete and consistent: every name it references
 * exists, no prefix appears twice, no port range of a protocol overlaps,
 * policies are unique per (region, service), and everything fits the limits
 * of fwd_defs.h. Consumers (the fast path's generation builder, the control
 * plane) never re-check; they only map port names to devices.
 *
 * Ids: region 0 is 'unknown', service 0 is 'other', policy 0 is the default.
 * The table is immutable after load; free it with fwd_table_free().
 */
#ifndef FWD_TABLE_H
#define FWD_TABLE_H

#include <stdint.h>

#include "fwd_defs.h"
#include "fwd_doc.h"
#include "fwd_err.h"
#include "fwd_names.h"

struct fwd_prefix4 {
	uint32_t addr; /* host order, host bits zero */
	uint8_t len;
	uint16_t region;
	uint32_t line;
};

struct fwd_prefix6 {
	uint8_t addr[16]; /* network order, host bits zero */
	uint8_t len;
	uint16_t region;
	uint32_t line;
};

/* A service entry: a port range of TCP, UDP or SCTP, or a whole protocol
 * (lo = 0, hi = 65535) for protocols without ports. */
struct fwd_svc_range {
	uint8_t proto;
	uint16_t lo, hi;
	uint16_t service;
	uint32_t line;
};

struct fwd_link {
	char name[FWD_NAME_MAX];
	char port[FWD_NAME_MAX]; /* port name from the node config */
	uint8_t next_hop_mac[6];
	uint16_t vlan; /* 0: untagged */
	uint8_t up; /* admin state up or drain: carries what is steered to it */
	uint8_t drained; /* admin state drain: up, but takes no slot of a link group */
	uint8_t ntags;
	char tags[FWD_MAX_TAGS][FWD_NAME_MAX];
	/* The document line of 'port' (0: JSON, or built, not read): a port the
	 * node config lacks is found when regionfwd loads the table, and said
	 * there at this line. */
	uint32_t port_line;
	uint32_t desc; /* description: fwd_table_desc(); last, off the fields the fast path reads */
};

struct fwd_group_member {
	uint16_t link;
	uint32_t weight; /* 0: drained, takes no flows */
};

struct fwd_group {
	char name[FWD_NAME_MAX];
	uint16_t nmembers;
	uint32_t desc; /* description: fwd_table_desc() */
	struct fwd_group_member members[FWD_MAX_GROUP_MEMBERS];
};

struct fwd_policy {
	uint16_t region; /* region id or FWD_ANY */
	uint16_t service; /* service id or FWD_ANY */
	uint8_t action; /* enum fwd_action */
	uint16_t target; /* link id (LINK) or group id (GROUP) */
	uint16_t mirror; /* link id or FWD_LINK_NONE */
	uint32_t line;
	uint32_t desc; /* description: fwd_table_desc(). The fast path reads the
			* compiled struct fwd_class_policy, never this one */
};

struct fwd_residency {
	char name[FWD_NAME_MAX];
	uint16_t region;
	uint16_t nservices;
	uint16_t *services; /* service ids; FWD_ANY alone means every service */
	uint8_t ntags;
	char tags[FWD_MAX_TAGS][FWD_NAME_MAX];
	uint32_t desc; /* description: fwd_table_desc() */
};

/* The XDP filter section (docs/filters.md). Prefixes carry the rule id in
 * their 'region' field and port ranges in their 'service' field. */
struct fwd_filter_rule {
	char name[FWD_NAME_MAX];
	uint8_t action; /* enum fwd_flt_action */
	uint32_t rate_pps, burst; /* action rate */
	uint32_t line;
	uint32_t desc; /* description: fwd_table_desc() */
};

struct fwd_filters {
	uint8_t present;
	uint8_t default_action, non_ip_action, malformed_action;
	uint8_t redirect; /* admitted IP traffic to AF_XDP sockets instead of the kernel */
	uint16_t nrules;
	uint32_t desc; /* the section's description: fwd_table_desc() */
	struct fwd_filter_rule *rules;
	uint32_t nprefix4, nprefix6, nranges;
	struct fwd_prefix4 *prefix4;
	struct fwd_prefix6 *prefix6;
	struct fwd_svc_range *ranges;
};

/* Content rules (docs/content-rules.md): a Hyperscan pattern or a set of
 * names (fwd_nameset.h) on a payload field, scoped to services and
 * optionally regions. */
enum fwd_content_field {
	FWD_CF_PAYLOAD = FWD_SCHEMA_POS(CONTENT_FIELD, PAYLOAD),
	FWD_CF_TLS_SNI = FWD_SCHEMA_POS(CONTENT_FIELD, TLS_SNI),
	FWD_CF_HTTP_HOST = FWD_SCHEMA_POS(CONTENT_FIELD, HTTP_HOST),
	FWD_CF_DNS_QNAME = FWD_SCHEMA_POS(CONTENT_FIELD, DNS_QNAME),
};
enum fwd_content_action {
	FWD_CA_COUNT = FWD_SCHEMA_POS(CONTENT_ACTION, COUNT),
	FWD_CA_DROP = FWD_SCHEMA_POS(CONTENT_ACTION, DROP),
	FWD_CA_MIRROR = FWD_SCHEMA_POS(CONTENT_ACTION, MIRROR),
	FWD_CA_STEER = FWD_SCHEMA_POS(CONTENT_ACTION, STEER),
};
/* The four fields and four actions are indexed 0..3 (arrays elsewhere size by this). */
#define FWD_CONTENT_FIELDS (FWD_SCHEMA_END_CONTENT_FIELD - FWD_SCHEMA_BEGIN_CONTENT_FIELD)
#define FWD_CONTENT_ACTIONS (FWD_SCHEMA_END_CONTENT_ACTION - FWD_SCHEMA_BEGIN_CONTENT_ACTION)

/** Name of content field @f ("tls_sni") and content action @a ("steer"). */
#define fwd_content_field_name(f) (fwd_schema_names[FWD_SCHEMA_BEGIN_CONTENT_FIELD + (f)])
#define fwd_content_action_name(a) (fwd_schema_names[FWD_SCHEMA_BEGIN_CONTENT_ACTION + (a)])

#define FWD_MAX_CONTENT_RULES 20000
#define FWD_MAX_PATTERN 4096
#define FWD_MAX_NAMES (16u << 20) /* names in all of a table's name sets */

struct fwd_content_rule {
	char name[FWD_NAME_MAX];
	char *pattern; /* NUL-terminated, owned by the table; NULL for a name set or unreadable */
	char *names; /* a name set: normalised names, NUL-terminated one after the
		      * other, "*." in front of a suffix; NULL for a pattern */
	size_t names_len; /* bytes of names */
	uint32_t nnames; /* names listed (inline and from names_file) */
	uint64_t names_hash; /* fwd_hash64 of the names_file text, 0 without one */
	uint8_t field, action, literal, caseless;
	/* unreadable: true instead of a pattern or a set (fail closed): the
	 * rule matches a packet whose name of @field is there but cannot be
	 * read (fwd_extract.h's TRUNCATED, MALFORMED, TOO_LONG) */
	uint8_t unreadable;
	uint16_t target_kind; /* FWD_ACT_LINK / FWD_ACT_GROUP for mirror/steer */
	uint16_t target;
	uint16_t nservices, nregions; /* nregions 0: every region */
	uint16_t *services, *regions;
	uint32_t line;
	uint32_t desc; /* description: fwd_table_desc() */
};

/* The longest description, in bytes (UTF-8), of the table and of each thing in it. */
#define FWD_DESC_MAX 4096

struct fwd_table {
	char source[128]; /* file name or "request" */
	char description[FWD_DESC_MAX + 1]; /* the table's own */
	uint16_t nregions; /* including 'unknown' at 0 */
	uint16_t nservices; /* including 'other' at 0 */
	uint16_t nlinks, ngroups;
	uint32_t npolicies; /* including the default at 0 */
	uint32_t nranges, nprefix4, nprefix6;
	uint16_t nresidency;
	/* "residency:" with no value (null): its line + 1 (1 for JSON, which
	 * has no lines); 0: not so. Read as no rules; refused when written
	 * (fwd_table_check_written). */
	uint32_t residency_null_line;
	/* The document's first YAML tag but !!str (fwd_doc_tag) and its line;
	 * line 0: none. Ignored when read; refused when written. */
	char yaml_tag[64];
	uint32_t yaml_tag_line;
	char (*region_names)[FWD_NAME_MAX];
	char (*service_names)[FWD_NAME_MAX];
	struct fwd_svc_range *ranges;
	struct fwd_prefix4 *prefix4;
	struct fwd_prefix6 *prefix6;
	struct fwd_link *links;
	struct fwd_group *groups;
	struct fwd_policy *policies;
	struct fwd_residency *residency;
	struct fwd_filters filters;
	uint32_t ncontent;
	struct fwd_content_rule *content;
	/* The descriptions of everything but the table: NUL-terminated strings
	 * one after the other, owned by the table. A thing's 'desc' is the
	 * offset of its own; offset 0 is the empty string, no description
	 * (descs is NULL while there is none at all). */
	char *descs;
	size_t descs_len;
	uint32_t *region_desc; /* per region id, nregions of them */
	/* Per residency rule, for the fast path's later IP fragments
	 * (fwd_residency_frag_may_carry): the regions the rule holds (its own,
	 * and every region with a prefix nested in one of its region's) and the
	 * links it allows, as bitmaps (fwd_residency_rows_fill). NULL until
	 * filled: every rule then holds every region. A delta copies it and sets
	 * the pairs it adds; a removal clears none (more rules, never fewer). */
	uint64_t *rule_rows;
};

/* Prefixes are read by a fast path for their common shapes and sorted by a
 * radix sort; 0 here reads every one the general way and sorts with qsort(),
 * as before: for the tests that compare the two. */
extern int fwd_table_fast;

/**
 * Validate a parsed document into a table.
 * @return the table, or NULL with @err naming the first problem
 */
struct fwd_table *fwd_table_from_doc(const struct fwd_doc *doc, struct fwd_err *err);

/** Read, parse and validate a file (YAML, or JSON by extension/content). */
struct fwd_table *fwd_table_load(const char *path, struct fwd_err *err);

/** Parse and validate a document in memory (json: 1, 0, -1 = detect). */
struct fwd_table *fwd_table_parse(const char *buf, size_t len, const char *name, int json,
				  struct fwd_err *err);

void fwd_table_free(struct fwd_table *t);

/**
 * The checks of a table being *written* (regiond's validation of a new
 * document, --check-table, SIGHUP), not of one loaded: a table stored
 * before these checks must still load, run and be replaced.
 *
 * - A YAML tag but !!str (!!binary, !!python/object, !foo): read as if it
 *   were not there, which its writer did not mean (a walkthrough).
 * - "residency:" with no value: every rule commented out left it null,
 *   which read as no section, the table's protection gone by an edit that
 *   looks like a pause (a walkthrough); "residency: []" says none.
 * - A link's tags say where its wire goes, and residency trusts them: two
 *   links leaving by the same port to the same next hop and VLAN are one
 *   wire, and with other tags one of them is wrong (a rule could allow the
 *   wire under one name what it refuses under the other). Same tags, in
 *   any order: an alias, and fine.
 *
 * @return 0, or -EINVAL with @e ("residency"; "links.NAME" at the later
 * link, the line of its port).
 */
int fwd_table_check_written(const struct fwd_table *t, struct fwd_err *e);

/** The YAML tag refusal of fwd_table_check_written(), for @tag (as libyaml
 *  names it) at @file:@line. @return -EINVAL */
int fwd_table_refuse_tag(const char *file, uint32_t line, const char *tag, struct fwd_err *e);

/**
 * The tag check of fwd_table_check_written() on a document's own text, for
 * a caller about to embed its names files (fwd_embed.h): the embedded form
 * is JSON, which keeps no YAML tag (one once went through SIGHUP that way:
 * a review). A text that does not parse is left to the caller's parse.
 * @return 0, or -EINVAL with @e at the tag's line
 */
int fwd_table_written_tags(const char *buf, size_t len, const char *name, struct fwd_err *e);

/** The top-level field (FWD_F_DOC_*) of the @i-th section in the order fwd_table_from_doc()
 *  validates them, FWD_SCHEMA_MAX past the last: lets the tests see that every field of
 *  the DOC scope of fwd_schema.def is some section's, once. */
enum fwd_schema fwd_table_section(unsigned i);

/** Lookups by name; return the id or -ENOENT. 'unknown'/'other' included. */
int fwd_table_region_id(const struct fwd_table *t, const char *name);
int fwd_table_service_id(const struct fwd_table *t, const char *name);
int fwd_table_link_id(const struct fwd_table *t, const char *name);
int fwd_table_group_id(const struct fwd_table *t, const char *name);

/** The description at offset @off of @t's pool (a thing's 'desc'); "" for none. */
const char *fwd_table_desc(const struct fwd_table *t, uint32_t off);

/** Name of a policy's target ("drop", a link or a group). */
const char *fwd_table_policy_target(const struct fwd_table *t, const struct fwd_policy *p);

/** Link @l's admin state as the document spells it: "up", "down" or "drain". */
const char *fwd_link_state_name(const struct fwd_link *l);

/** 0 when @s is a valid name (regions, services, links, groups, tags: 1..31
 *  characters of A-Z a-z 0-9 _ - .); -ENAMETOOLONG when empty or too long,
 *  -EINVAL for another character. */
int fwd_name_check(const char *s);

/** @s as an error message shows a name that may not be one: printable
 *  ASCII as it is, every other byte as \xNN (a zero-width space in a
 *  link's name was echoed raw, and the error read "'to-sg' is not a link
 *  name": a walkthrough), cut at 60 bytes of @s with "...". @return @buf. */
const char *fwd_name_shown(const char *s, char *buf, size_t len);

/** "region/service" of policy @pid ("any" for wildcards), or "default". */
const char *fwd_table_policy_key(const struct fwd_table *t, uint32_t pid, char *buf, size_t len);

/** 1 when link @l carries one of the tags residency rule @r allows. */
int fwd_link_allowed(const struct fwd_link *l, const struct fwd_residency *r);

/** Number of protocol word @name of fwd_schema.def ("tcp" -> 6), -ENOENT for any other
 *  string and for "any" (which stands for tcp, udp and sctp). */
int fwd_proto_by_name(const char *name);

/** Protocol name for a service entry ("tcp", "icmp", "47"...), into @buf. */
const char *fwd_proto_name(uint8_t proto, char *buf, size_t len);

#endif /* FWD_TABLE_H */
