/*
 * fwd_table.c - document -> struct fwd_table, with complete validation.
 * Every refusal names the line (YAML) and the field path.
 *
 * Here: the machinery every section uses (the name index, the error and
 * field helpers), the table of sections and the walk over it, and the
 * public functions on a table. Each section is validated in its own
 * fwd_table_<section>.c; fwd_table_int.h is what they share.
 */
#include "fwd_table.h"

#include "fwd_hash.h"
#include "fwd_names.h"
#include "fwd_stages.h"
#include "fwd_table_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t name_hash(const char *s)
{
	return (uint32_t)fwd_hash64(s, strlen(s));
}

int tv_nidx_build(struct nidx *x, const char (*names)[FWD_NAME_MAX], uint32_t n)
{
	uint32_t cap = 16;

	while (cap < n * 2)
		cap <<= 1;
	x->slot = calloc(cap, sizeof(*x->slot));
	if (x->slot == NULL)
		return -ENOMEM;
	x->mask = cap - 1;
	x->names = names;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = name_hash(names[i]) & x->mask;

		while (x->slot[h])
			h = (h + 1) & x->mask;
		x->slot[h] = i + 1;
	}
	return 0;
}

int tv_nidx_find(const struct nidx *x, const char *name)
{
	uint32_t h = name_hash(name) & x->mask;

	while (x->slot[h]) {
		if (strcmp(x->names[x->slot[h] - 1], name) == 0)
			return (int)x->slot[h] - 1;
		h = (h + 1) & x->mask;
	}
	return -ENOENT;
}

int tv_nidx_build_copy(struct nidx *x, const char *first, size_t stride, uint32_t n)
{
	x->copy = calloc(n ? n : 1, FWD_NAME_MAX);
	if (x->copy == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		memcpy(x->copy[i], first + i * stride, FWD_NAME_MAX);
	return tv_nidx_build(x, (const char(*)[FWD_NAME_MAX])x->copy, n);
}

static void nidx_free(struct nidx *x)
{
	free(x->slot);
	x->slot = NULL;
	free(x->copy);
	x->copy = NULL;
}

int tv_fail(struct vctx *c, const struct fwd_node *n, const char *path, const char *fmt, ...)
{
	char reason[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return fwd_err_set(c->err, c->file, n ? n->line : 0, path, "%s", reason);
}

int tv_fail_limit(struct vctx *c, const struct fwd_node *n, const char *path, uint32_t max,
		  const char *what)
{
	const struct fwd_node *e = n->child;
	char p[400];

	/* A table past a limit was most often generated: the entry where it
	 * went over tells its author which input overflowed, and its line is
	 * where an editor should jump (a section's line can be far above). */
	for (uint32_t i = 0; e != NULL && i < max; i++)
		e = e->next;
	if (e == NULL)
		return tv_fail(c, n, path, "more than %u %s", max, what);
	if (n->type == FWD_NODE_MAP)
		snprintf(p, sizeof(p), "%s.%s", path, e->key);
	else
		snprintf(p, sizeof(p), "%s[%u]", path, max);
	return tv_fail(c, e, p, "more than %u %s: this is the first past the limit", max, what);
}

static const char *type_name(const struct fwd_node *n)
{
	static const char *const names[] = {"null", "scalar", "list", "map"};

	return names[n->type];
}

int tv_want(struct vctx *c, const struct fwd_node *n, const char *path, int type)
{
	static const char *const what[] = {"null", "a value", "a list", "a map"};

	if (n->type == type)
		return 0;
	return tv_fail(c, n, path, "expected %s, got %s", what[type], type_name(n));
}

/* Refuse unknown fields: a typo ('nexthop_mac') must not silently become a
 * default. The fields of scope @sc are the FWD_KEY lines of fwd_schema.def. */
int tv_check_keys(struct vctx *c, const struct fwd_node *map, const char *path, enum fwd_scope sc)
{
	unsigned nallowed;
	const char *const *allowed = fwd_schema_keys(sc, &nallowed);

	for (const struct fwd_node *k = map->child; k; k = k->next) {
		int ok = 0;
		char list[256] = "";
		size_t n = 0;

		for (unsigned i = 0; i < nallowed; i++) {
			if (strcmp(k->key, allowed[i]) == 0)
				ok = 1;
			if (n < sizeof(list))
				n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
						      i ? ", " : "", allowed[i]);
		}
		if (!ok) {
			char p[320];

			snprintf(p, sizeof(p), "%s%s%s", path, path[0] ? "." : "", k->key);
			return tv_fail(c, k, p, "unknown field '%s' (expected one of: %s)", k->key,
				       list);
		}
	}
	return 0;
}

/* The words of scope @sc as a list for a message: "'up' or 'down'" (quote
 * "'", last " or "), "tcp, udp, ..., icmpv6" (quote "", last ", "). */
const char *tv_word_list(enum fwd_scope sc, const char *quote, const char *last, char *buf,
			 size_t len)
{
	unsigned n;
	const char *const *w = fwd_schema_keys(sc, &n);
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < n && off < len; i++) {
		const char *sep = i == 0 ? "" : i + 1 < n ? ", " : last;

		off += (size_t)snprintf(buf + off, len - off, "%s%s%s%s", sep, quote, w[i], quote);
	}
	return buf;
}

int tv_get_scalar(struct vctx *c, const struct fwd_node *n, const char *path, const char **out)
{
	*out = "";
	if (n->type != FWD_NODE_SCALAR)
		return tv_fail(c, n, path, "expected a value, got %s", type_name(n));
	*out = n->str;
	return 0;
}

int tv_get_uint(struct vctx *c, const struct fwd_node *n, const char *path, uint64_t min,
		uint64_t max, uint64_t *out)
{
	const char *s;
	char *end;
	unsigned long long v;
	int rc = tv_get_scalar(c, n, path, &s);

	if (rc)
		return rc;
	/* A whole number below 0 or past 64 bits is one, out of range: a
	 * weight of -1 was "not a whole number" (a probe). */
	if ((s[0] == '-' && s[1] && strspn(s + 1, "0123456789") == strlen(s + 1) &&
	     strspn(s + 1, "0") != strlen(s + 1)) ||
	    (isdigit((unsigned char)s[0]) && strspn(s, "0123456789") == strlen(s) &&
	     (errno = 0, strtoull(s, NULL, 10), errno == ERANGE)))
		return tv_fail(c, n, path, "'%.40s' is out of range %llu..%llu", s,
			       (unsigned long long)min, (unsigned long long)max);
	if (!isdigit((unsigned char)s[0]))
		return tv_fail(c, n, path, "'%s' is not a whole number", s);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno)
		return tv_fail(c, n, path, "'%s' is not a whole number", s);
	if (v < min || v > max)
		return tv_fail(c, n, path, "%llu is out of range %llu..%llu", v,
			       (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

int tv_get_name(struct vctx *c, const struct fwd_node *n, const char *path, const char *what,
		char out[FWD_NAME_MAX])
{
	const char *s;
	size_t len;
	int rc = tv_get_scalar(c, n, path, &s);

	if (rc)
		return rc;
	len = strlen(s);
	if ((rc = fwd_name_check(s)) == -ENAMETOOLONG)
		return tv_fail(c, n, path, "%s name must be 1..%d characters", what,
			       FWD_NAME_MAX - 1);
	if (rc) {
		char shown[256];

		return tv_fail(c, n, path,
			       "%s name '%s' may only use letters, digits, '_', '-', '.'", what,
			       fwd_name_shown(s, shown, sizeof(shown)));
	}
	memcpy(out, s, len + 1);
	return 0;
}

/* A description, of the table or of a thing in it: text of at most
 * FWD_DESC_MAX bytes, lines and tabs allowed (a YAML block of prose is what
 * people write; documents that ran before must still load), any other
 * control character refused (C0, DEL, C1, U+2028/U+2029, the bidirectional
 * controls: they would reach
 * a terminal through `show table -j` or a script's output). The table's
 * own was once cut short to 255 bytes without a word, and the others were
 * not read at all; now each is kept whole or refused, naming the field. */
int tv_check_desc(struct vctx *c, const struct fwd_node *n, const char *path, const char **out)
{
	char why[160];
	size_t len;
	int rc = tv_get_scalar(c, n, path, out);

	if (rc)
		return rc;
	len = strlen(*out);
	if (len > FWD_DESC_MAX)
		return tv_fail(c, n, path, "a description is at most %d bytes, not %zu",
			       FWD_DESC_MAX, len);
	if (fwd_prose_check(*out, len, fwd_schema_name(FWD_F_DOC_DESCRIPTION), why, sizeof(why)))
		return tv_fail(c, n, path, "%s", why);
	return 0;
}

int tv_get_desc(struct vctx *c, const struct fwd_node *map, const char *base, enum fwd_schema field,
		uint32_t *out)
{
	struct fwd_table *t = c->t;
	const char *const key = fwd_schema_name(field);
	const struct fwd_node *n = map && map->type == FWD_NODE_MAP ? fwd_node_get(map, key) : NULL;
	char path[360];
	const char *s;
	size_t len, need;
	int rc;

	*out = 0;
	if (n == NULL || n->type == FWD_NODE_NULL)
		return 0;
	snprintf(path, sizeof(path), "%s%s%s", base, base[0] ? "." : "", key);
	if ((rc = tv_check_desc(c, n, path, &s)))
		return rc;
	if ((len = strlen(s)) == 0)
		return 0;
	need = (t->descs_len ? t->descs_len : 1) + len + 1;
	if (need > UINT32_MAX)
		return tv_fail(c, n, path, "too many descriptions");
	if (need > c->descs_cap) {
		size_t cap = c->descs_cap ? c->descs_cap : 256;
		char *p;

		while (cap < need)
			cap *= 2;
		if ((p = realloc(t->descs, cap)) == NULL)
			return -ENOMEM;
		t->descs = p;
		c->descs_cap = cap;
	}
	if (t->descs_len == 0)
		t->descs[t->descs_len++] = '\0'; /* offset 0: no description */
	memcpy(t->descs + t->descs_len, s, len + 1);
	*out = (uint32_t)t->descs_len;
	t->descs_len += len + 1;
	return 0;
}

/* A section that maps names to entries (regions, services, links, groups):
 * absent or null is empty (returns 1), otherwise a map of at most @max keys. */
int tv_section_map(struct vctx *c, const struct fwd_node *n, const char *name, uint32_t max,
		   const char *what)
{
	int rc;

	if (n == NULL || n->type == FWD_NODE_NULL)
		return 1;
	if ((rc = tv_want(c, n, name, FWD_NODE_MAP)))
		return rc;
	if (n->count > max)
		return tv_fail_limit(c, n, name, max, what);
	return 0;
}

/* One entry of such a section: its key is a valid name (copied to @out),
 * and, unless @keys is FWD_SC_MAX, its value is a map with only the fields
 * of that scope. */
int tv_section_entry(struct vctx *c, const struct fwd_node *e, const char *section,
		     const char *what, enum fwd_scope keys, char out[FWD_NAME_MAX], char *path,
		     size_t pathlen)
{
	struct fwd_node keynode = *e;
	int rc;

	snprintf(path, pathlen, "%s.%s", section, e->key);
	keynode.type = FWD_NODE_SCALAR;
	keynode.str = e->key;
	if ((rc = tv_get_name(c, &keynode, path, what, out)))
		return rc;
	if (keys != FWD_SC_MAX &&
	    ((rc = tv_want(c, e, path, FWD_NODE_MAP)) || (rc = tv_check_keys(c, e, path, keys))))
		return rc;
	return 0;
}

/* ---- top level ------------------------------------------------------------------ */

static int parse_version(struct vctx *c, const struct fwd_node *f)
{
	uint64_t v;

	return f ? tv_get_uint(c, f, KEY(DOC, VERSION), 1, 1, &v) : 0;
}

static int parse_description(struct vctx *c, const struct fwd_node *f)
{
	const char *s;
	int rc;

	if (f == NULL)
		return 0;
	if ((rc = tv_check_desc(c, f, KEY(DOC, DESCRIPTION), &s)))
		return rc;
	memcpy(c->t->description, s, strlen(s) + 1);
	return 0;
}

/* The document's sections in the order they are validated, which decides
 * which of several problems is reported (see struct fwd_section). What has
 * to come first: the names a section resolves (links before groups, all
 * four kinds before policies), and the residency rules before the content
 * rules checked against them; the rest is the order documents have always
 * been refused in. Every field of the DOC scope of fwd_schema.def has
 * exactly one entry (test_table.c checks). */
static const struct fwd_section sections[] = {
	/* field                  parse               index              resolves */
	{FWD_F_DOC_VERSION, parse_version, NULL, 0},
	{FWD_F_DOC_DESCRIPTION, parse_description, NULL, 0},
	{FWD_F_DOC_REGIONS, tv_parse_regions, tv_index_regions, 0},
	{FWD_F_DOC_SERVICES, tv_parse_services, tv_index_services, 0},
	{FWD_F_DOC_LINKS, tv_parse_links, tv_index_links, 0},
	{FWD_F_DOC_LINK_GROUPS, tv_parse_groups, tv_index_groups, 1},
	{FWD_F_DOC_POLICIES, tv_parse_policies, NULL, 1},
	{FWD_F_DOC_DEFAULT, NULL, NULL, 0}, /* by policies */
	{FWD_F_DOC_RESIDENCY, tv_parse_residency, NULL, 1},
	{FWD_F_DOC_FILTERS, tv_parse_filters, NULL, 0},
	{FWD_F_DOC_CONTENT_RULES, tv_parse_content, NULL, 1},
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

enum fwd_schema fwd_table_section(unsigned i)
{
	return i < NSECTIONS ? sections[i].key : FWD_SCHEMA_MAX;
}

static void names_free(struct names *nm)
{
	nidx_free(&nm->regions);
	nidx_free(&nm->services);
	nidx_free(&nm->links);
	nidx_free(&nm->groups);
}

/* @dir: the directory of the document's file, where a names_file path
 * starts; NULL for a document that came as text. */
static struct fwd_table *from_doc(const struct fwd_doc *doc, const char *dir, struct fwd_err *err)
{
	const struct fwd_node *root = fwd_doc_root(doc);
	struct fwd_table *t = calloc(1, sizeof(*t));
	struct vctx c = {.file = fwd_doc_name(doc), .err = err, .t = t, .root = root, .dir = dir};
	size_t indexed = 0; /* sections[0 .. indexed - 1] have had their index built */
	int rc;

	if (t == NULL) {
		fwd_err_set(err, c.file, 0, NULL, "out of memory");
		return NULL;
	}
	snprintf(t->source, sizeof(t->source), "%s", c.file);
	{
		const char *tag = fwd_doc_tag(doc, &t->yaml_tag_line);

		if (tag)
			snprintf(t->yaml_tag, sizeof(t->yaml_tag), "%s", tag);
	}
	if ((rc = tv_want(&c, root, "", FWD_NODE_MAP)) ||
	    (rc = tv_check_keys(&c, root, "", FWD_SC_DOC)))
		goto fail;
	for (size_t i = 0; i < NSECTIONS; i++) {
		const struct fwd_section *s = &sections[i];

		if (s->parse == NULL)
			continue;
		for (; s->resolves && indexed < i; indexed++)
			if (sections[indexed].index && (rc = sections[indexed].index(&c)))
				goto fail;
		if ((rc = s->parse(&c, fwd_node_get(root, fwd_schema_name(s->key)))))
			goto fail;
	}
	names_free(&c.nm);
	fwd_stage("other sections");
	return t;
fail:
	if (rc == -ENOMEM && err && err->reason[0] == '\0')
		fwd_err_set(err, c.file, 0, NULL, "out of memory");
	names_free(&c.nm);
	fwd_table_free(t);
	return NULL;
}

struct fwd_table *fwd_table_from_doc(const struct fwd_doc *doc, struct fwd_err *err)
{
	return from_doc(doc, NULL, err);
}

struct fwd_table *fwd_table_load(const char *path, struct fwd_err *err)
{
	struct fwd_doc *doc = fwd_doc_load(path, err);
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	struct fwd_table *t;

	if (doc == NULL)
		return NULL;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path + 1) : 0, path);
	t = from_doc(doc, dir, err);
	fwd_doc_free(doc);
	return t;
}

struct fwd_table *fwd_table_parse(const char *buf, size_t len, const char *name, int json,
				  struct fwd_err *err)
{
	struct fwd_doc *doc = fwd_doc_parse(buf, len, name, json, err);
	struct fwd_table *t;

	if (doc == NULL)
		return NULL;
	t = fwd_table_from_doc(doc, err);
	fwd_doc_free(doc);
	fwd_stage("free document");
	return t;
}

void fwd_table_free(struct fwd_table *t)
{
	if (t == NULL)
		return;
	for (uint16_t i = 0; i < t->nresidency; i++)
		free(t->residency[i].services);
	free(t->residency);
	for (uint32_t i = 0; i < t->ncontent; i++) {
		free(t->content[i].pattern);
		free(t->content[i].names);
		free(t->content[i].services);
		free(t->content[i].regions);
	}
	free(t->content);
	free(t->filters.rules);
	free(t->filters.prefix4);
	free(t->filters.prefix6);
	free(t->filters.ranges);
	free(t->policies);
	free(t->groups);
	free(t->links);
	free(t->prefix6);
	free(t->prefix4);
	free(t->ranges);
	free(t->service_names);
	free(t->region_names);
	free(t->region_desc);
	free(t->descs);
	free(t->rule_rows);
	free(t);
}

static int find_name(const char (*names)[FWD_NAME_MAX], size_t stride, uint32_t n, const char *s)
{
	const char *base = (const char *)names;

	for (uint32_t i = 0; i < n; i++)
		if (strcmp(base + i * stride, s) == 0)
			return (int)i;
	return -ENOENT;
}

int fwd_table_region_id(const struct fwd_table *t, const char *name)
{
	return find_name(t->region_names, FWD_NAME_MAX, t->nregions, name);
}

int fwd_table_service_id(const struct fwd_table *t, const char *name)
{
	return find_name(t->service_names, FWD_NAME_MAX, t->nservices, name);
}

int fwd_table_link_id(const struct fwd_table *t, const char *name)
{
	return t->nlinks ? find_name((const char(*)[FWD_NAME_MAX])t->links[0].name,
				     sizeof(struct fwd_link), t->nlinks, name)
			 : -ENOENT;
}

int fwd_table_group_id(const struct fwd_table *t, const char *name)
{
	return t->ngroups ? find_name((const char(*)[FWD_NAME_MAX])t->groups[0].name,
				      sizeof(struct fwd_group), t->ngroups, name)
			  : -ENOENT;
}

const char *fwd_table_desc(const struct fwd_table *t, uint32_t off)
{
	return t->descs && off < t->descs_len ? t->descs + off : "";
}

const char *fwd_table_policy_target(const struct fwd_table *t, const struct fwd_policy *p)
{
	switch (p->action) {
	case FWD_ACT_LINK:
		return t->links[p->target].name;
	case FWD_ACT_GROUP:
		return t->groups[p->target].name;
	default:
		return WORD(POLICY_ACTION, DROP);
	}
}

const char *fwd_link_state_name(const struct fwd_link *l)
{
	return !l->up	    ? WORD(LINK_STATE, DOWN)
	       : l->drained ? WORD(LINK_STATE, DRAIN)
			    : WORD(LINK_STATE, UP);
}

int fwd_name_check(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= FWD_NAME_MAX)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return -EINVAL;
	return 0;
}

const char *fwd_name_shown(const char *s, char *buf, size_t len)
{
	size_t at = 0, i;

	if (len == 0)
		return buf;
	for (i = 0; s[i] && i < 60 && at + 5 < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			buf[at++] = (char)ch;
		else
			at += (size_t)snprintf(buf + at, len - at, "\\x%02x", ch);
	}
	if (s[i] && at + 4 < len) {
		memcpy(buf + at, "...", 3);
		at += 3;
	}
	buf[at < len ? at : len - 1] = '\0';
	return buf;
}

int fwd_proto_by_name(const char *name)
{
	int proto;

	if (fwd_schema_lookup(FWD_SC_PROTO, name) < 0 ||
	    tv_proto_from_name(name, strlen(name), &proto))
		return -ENOENT;
	return proto < 0 ? -ENOENT : proto;
}

const char *fwd_proto_name(uint8_t proto, char *buf, size_t len)
{
	switch (proto) {
	case FWD_PROTO_TCP:
		return snprintf(buf, len, "%s", WORD(PROTO, TCP)), buf;
	case FWD_PROTO_UDP:
		return snprintf(buf, len, "%s", WORD(PROTO, UDP)), buf;
	case FWD_PROTO_SCTP:
		return snprintf(buf, len, "%s", WORD(PROTO, SCTP)), buf;
	case FWD_PROTO_ICMP:
		return snprintf(buf, len, "%s", WORD(PROTO, ICMP)), buf;
	case FWD_PROTO_ICMPV6:
		return snprintf(buf, len, "%s", WORD(PROTO, ICMPV6)), buf;
	default:
		return snprintf(buf, len, "%u", proto), buf;
	}
}

int fwd_link_allowed(const struct fwd_link *l, const struct fwd_residency *r)
{
	for (uint8_t i = 0; i < l->ntags; i++)
		for (uint8_t j = 0; j < r->ntags; j++)
			if (strcmp(l->tags[i], r->tags[j]) == 0)
				return 1;
	return 0;
}

const char *fwd_table_policy_key(const struct fwd_table *t, uint32_t pid, char *buf, size_t len)
{
	const struct fwd_policy *p = &t->policies[pid];

	if (pid == FWD_POLICY_DEFAULT)
		snprintf(buf, len, "%s", KEY(DOC, DEFAULT));
	else
		snprintf(buf, len, "%s/%s",
			 p->region == FWD_ANY ? WORD(BUILTIN, ANY) : t->region_names[p->region],
			 p->service == FWD_ANY ? WORD(BUILTIN, ANY) : t->service_names[p->service]);
	return buf;
}
