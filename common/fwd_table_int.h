/*
 * fwd_table_int.h - the table validator's insides, shared by its files:
 * fwd_table.c (the machinery below and the walk over the sections) and one
 * fwd_table_<section>.c per section of the document. Include it from those
 * files only; everyone else has fwd_table.h.
 *
 * The functions here are global symbols of libfwd_common, so they carry the
 * prefix tv_ (table validator), but they are not an API: their contracts may
 * change with the validator.
 */
#ifndef FWD_TABLE_INT_H
#define FWD_TABLE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_doc.h"
#include "fwd_names.h"
#include "fwd_table.h"

/* The document's names, all from fwd_schema.def: KEY(LINK, PORT) is "port",
 * WORD(LINK_STATE, UP) is "up". */
#define KEY(sc, id) (fwd_schema_names[FWD_F_##sc##_##id])
#define WORD(sc, id) (fwd_schema_names[FWD_V_##sc##_##id])

/* ---- name index ----------------------------------------------------------- */

/* Name -> id index (open addressing) used while validating, so resolving
 * 65,000 policies against 4,000 regions stays linear. */
struct nidx {
	uint32_t mask;
	uint32_t *slot; /* id + 1, 0 = empty */
	const char (*names)[FWD_NAME_MAX];
	char (*copy)[FWD_NAME_MAX]; /* the names, when indexed through a copy; owned */
};

/* The names later sections resolve against: each is built by the section
 * that defines them (struct fwd_section's index). */
struct names {
	struct nidx regions, services, links, groups;
};

int tv_nidx_build(struct nidx *x, const char (*names)[FWD_NAME_MAX], uint32_t n);

/* Index @n names that are not a plain array (the name of a struct fwd_link
 * or fwd_group, @stride bytes apart from @first) through a copy. */
int tv_nidx_build_copy(struct nidx *x, const char *first, size_t stride, uint32_t n);

/** The id of @name, or -ENOENT. */
int tv_nidx_find(const struct nidx *x, const char *name);

/* ---- validation context --------------------------------------------------- */

struct vctx {
	const char *file;
	struct fwd_err *err;
	struct fwd_table *t;
	int filters; /* parsing the filters section: owners are rules, not regions/services */
	const struct fwd_node *root; /* the document's map, for a section that reads two fields */
	struct names nm;
	const char *dir; /* the document file's directory ("" or ending in '/'),
			  * NULL for a document sent as text */
	uint64_t names_total; /* names in the name sets of the rules before this one */
	size_t descs_cap; /* bytes allocated for t->descs */
};

/* ---- helpers (fwd_table.c, each described there) --------------------------
 * An int result is 0, or -EINVAL with c->err set (-ENOMEM where they
 * allocate); tv_section_map also returns 1 for an absent section. */

int tv_fail(struct vctx *c, const struct fwd_node *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int tv_want(struct vctx *c, const struct fwd_node *n, const char *path, int type);
/* A list or map @n at @path with more than @max entries: the refusal names
 * the first entry past the limit (its path and line), not the section. */
int tv_fail_limit(struct vctx *c, const struct fwd_node *n, const char *path, uint32_t max,
		  const char *what);

int tv_check_keys(struct vctx *c, const struct fwd_node *map, const char *path, enum fwd_scope sc);

const char *tv_word_list(enum fwd_scope sc, const char *quote, const char *last, char *buf,
			 size_t len);

int tv_get_scalar(struct vctx *c, const struct fwd_node *n, const char *path, const char **out);
int tv_get_uint(struct vctx *c, const struct fwd_node *n, const char *path, uint64_t min,
		uint64_t max, uint64_t *out);
int tv_get_name(struct vctx *c, const struct fwd_node *n, const char *path, const char *what,
		char out[FWD_NAME_MAX]);

/* A description's text at @n (tv_check_desc), or the description field
 * @field (FWD_F_LINK_DESCRIPTION...) of map @map added to the table's pool
 * (tv_get_desc: *@out its offset, 0 when absent, null or empty); @base is
 * the map's path. */
int tv_check_desc(struct vctx *c, const struct fwd_node *n, const char *path, const char **out);
int tv_get_desc(struct vctx *c, const struct fwd_node *map, const char *base, enum fwd_schema field,
		uint32_t *out);

int tv_section_map(struct vctx *c, const struct fwd_node *n, const char *name, uint32_t max,
		   const char *what);

int tv_section_entry(struct vctx *c, const struct fwd_node *e, const char *section,
		     const char *what, enum fwd_scope keys, char out[FWD_NAME_MAX], char *path,
		     size_t pathlen);

/* ---- parsers one section lends another -------------------------------------- */

/* fwd_table_regions.c; the filters section parses its rules' prefixes with them too
 * (c->filters set: owners are rules). */
int tv_parse_prefix(struct vctx *c, const struct fwd_node *n, const char *path, uint16_t region);
int tv_check_dup_prefixes(struct vctx *c);

/* fwd_table_services.c; the filters section parses its rules' ports with them too,
 * and fwd_proto_by_name() reads protocol words with tv_proto_from_name(). */
int tv_proto_from_name(const char *s, size_t len, int *proto);
int tv_parse_svc_entry(struct vctx *c, const struct fwd_node *n, const char *path,
		       uint16_t service);
int tv_check_overlaps(struct vctx *c);

/* fwd_table_links.c; residency rules' allowed_tags too. */
int tv_parse_tags(struct vctx *c, const struct fwd_node *n, const char *path,
		  char tags[FWD_MAX_TAGS][FWD_NAME_MAX], uint8_t *ntags);

/* fwd_table_policies.c; residency rules' region too. */
int tv_resolve_scope(struct vctx *c, const struct nidx *x, const struct fwd_node *m,
		     const char *base, const char *field, const char *builtin, uint16_t *out);

/* ---- the sections ----------------------------------------------------------- */

/*
 * One top-level field of the document. fwd_table_from_doc() walks the
 * table of them (fwd_table.c) in its order, which is the order in which the
 * sections are validated: a document with several problems is refused for
 * the first one in that order, so the order is part of the behaviour.
 */
struct fwd_section {
	enum fwd_schema key; /* FWD_F_DOC_REGIONS ... */
	/* Validates the field's node into c->t. @n is NULL when the field is
	 * absent: a section that has a value then (no regions but 'unknown',
	 * a default that drops) sets it. NULL for a field another section's
	 * parse reads from c->root (default: policies). */
	int (*parse)(struct vctx *c, const struct fwd_node *n);
	/* Indexes the names the section defined into c->nm, for the sections
	 * after it. NULL when it defines none. */
	int (*index)(struct vctx *c);
	/* parse resolves names of earlier sections: the indexes of the sections
	 * before it that are not built yet are built first. Building them when
	 * first needed, rather than after each section, keeps the allocations
	 * (and so what an out-of-memory reports) where they always were. */
	unsigned resolves : 1;
};

int tv_parse_regions(struct vctx *c, const struct fwd_node *regions);
int tv_index_regions(struct vctx *c);
int tv_parse_services(struct vctx *c, const struct fwd_node *services);
int tv_index_services(struct vctx *c);
int tv_parse_links(struct vctx *c, const struct fwd_node *links);
int tv_index_links(struct vctx *c);
int tv_parse_groups(struct vctx *c, const struct fwd_node *groups);
int tv_index_groups(struct vctx *c);
int tv_parse_policies(struct vctx *c, const struct fwd_node *pol);
int tv_parse_residency(struct vctx *c, const struct fwd_node *res);
int tv_parse_filters(struct vctx *c, const struct fwd_node *f);
int tv_parse_content(struct vctx *c, const struct fwd_node *n);

#endif /* FWD_TABLE_INT_H */
