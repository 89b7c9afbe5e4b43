/*
 * fwd_table_links.c - the links and link_groups sections: links first,
 * then groups of them, in one namespace.
 */
#include "fwd_table_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
			return -EINVAL;
		char hex[3] = {s[0], s[1], 0};

		mac[i] = (uint8_t)strtoul(hex, NULL, 16);
		s += 2;
		if (i < 5) {
			if (*s != ':' && *s != '-')
				return -EINVAL;
			s++;
		}
	}
	return *s ? -EINVAL : 0;
}

int tv_parse_tags(struct vctx *c, const struct fwd_node *n, const char *path,
		  char tags[FWD_MAX_TAGS][FWD_NAME_MAX], uint8_t *ntags)
{
	char p[340];
	int rc;

	if ((rc = tv_want(c, n, path, FWD_NODE_SEQ)))
		return rc;
	if (n->count > FWD_MAX_TAGS)
		return tv_fail_limit(c, n, path, FWD_MAX_TAGS, "tags");
	*ntags = 0;
	for (const struct fwd_node *e = n->child; e; e = e->next) {
		snprintf(p, sizeof(p), "%s[%u]", path, *ntags);
		if ((rc = tv_get_name(c, e, p, "tag", tags[*ntags])))
			return rc;
		/* as a rule's services or regions listed twice: a typo, or a
		 * copy that meant another tag */
		for (uint8_t k = 0; k < *ntags; k++)
			if (strcmp(tags[k], tags[*ntags]) == 0)
				return tv_fail(c, e, p, "tag '%s' is listed twice (also at [%u])",
					       tags[k], k);
		(*ntags)++;
	}
	return 0;
}

/* Whether @a and @b carry the same tags, in any order (each is listed once). */
static int same_tags(const struct fwd_link *a, const struct fwd_link *b)
{
	if (a->ntags != b->ntags)
		return 0;
	for (uint8_t i = 0; i < a->ntags; i++) {
		uint8_t k = 0;

		while (k < b->ntags && strcmp(a->tags[i], b->tags[k]) != 0)
			k++;
		if (k == b->ntags)
			return 0;
	}
	return 1;
}

/* @l's tags as "tagged a, b", or "untagged" (a tag may be named "none"). */
static const char *tag_list(const struct fwd_link *l, char *out, size_t len)
{
	size_t n = 0;

	snprintf(out, len, "untagged");
	for (uint8_t i = 0; i < l->ntags && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ", " : "tagged ", l->tags[i]);
	return out;
}

int tv_parse_links(struct vctx *c, const struct fwd_node *links)
{
	const char *const sec = KEY(DOC, LINKS);
	struct fwd_table *t = c->t;
	char path[320];
	int rc;

	if ((rc = tv_section_map(c, links, sec, FWD_MAX_LINKS, "links")))
		return rc < 0 ? rc : 0;
	t->links = calloc(links->count ? links->count : 1, sizeof(*t->links));
	if (t->links == NULL)
		return -ENOMEM;
	for (const struct fwd_node *l = links->child; l; l = l->next) {
		struct fwd_link *lk = &t->links[t->nlinks];
		const struct fwd_node *f;
		const char *s;
		uint64_t v;

		if ((rc = tv_section_entry(c, l, sec, "link", FWD_SC_LINK, lk->name, path,
					   sizeof(path))) ||
		    (rc = tv_get_desc(c, l, path, FWD_F_LINK_DESCRIPTION, &lk->desc)))
			return rc;
		snprintf(path, sizeof(path), "%s.%s.%s", sec, l->key, KEY(LINK, PORT));
		if ((f = fwd_node_get(l, KEY(LINK, PORT))) == NULL)
			return tv_fail(c, l, path, "missing field '%s'", KEY(LINK, PORT));
		if ((rc = tv_get_name(c, f, path, "port", lk->port)))
			return rc;
		lk->port_line = f->line;
		snprintf(path, sizeof(path), "%s.%s.%s", sec, l->key, KEY(LINK, NEXT_HOP_MAC));
		if ((f = fwd_node_get(l, KEY(LINK, NEXT_HOP_MAC))) == NULL)
			return tv_fail(c, l, path, "missing field '%s'", KEY(LINK, NEXT_HOP_MAC));
		if ((rc = tv_get_scalar(c, f, path, &s)))
			return rc;
		if (parse_mac(s, lk->next_hop_mac))
			return tv_fail(c, f, path, "'%s' is not a MAC address (aa:bb:cc:dd:ee:ff)",
				       s);
		if (lk->next_hop_mac[0] & 1)
			return tv_fail(
				c, f, path,
				"'%s' is a multicast/broadcast address; a next hop is unicast", s);
		if (!(lk->next_hop_mac[0] | lk->next_hop_mac[1] | lk->next_hop_mac[2] |
		      lk->next_hop_mac[3] | lk->next_hop_mac[4] | lk->next_hop_mac[5]))
			return tv_fail(c, f, path, "the all-zero MAC is not a next hop");
		if ((f = fwd_node_get(l, KEY(LINK, VLAN))) != NULL) {
			snprintf(path, sizeof(path), "%s.%s.%s", sec, l->key, KEY(LINK, VLAN));
			if ((rc = tv_get_uint(c, f, path, 1, 4094, &v)))
				return rc;
			lk->vlan = (uint16_t)v;
		}
		if ((f = fwd_node_get(l, KEY(LINK, TAGS))) != NULL) {
			snprintf(path, sizeof(path), "%s.%s.%s", sec, l->key, KEY(LINK, TAGS));
			if ((rc = tv_parse_tags(c, f, path, lk->tags, &lk->ntags)))
				return rc;
		}
		lk->up = 1;
		if ((f = fwd_node_get(l, KEY(LINK, STATE))) != NULL) {
			int w;

			snprintf(path, sizeof(path), "%s.%s.%s", sec, l->key, KEY(LINK, STATE));
			if ((rc = tv_get_scalar(c, f, path, &s)))
				return rc;
			if ((w = fwd_schema_lookup(FWD_SC_LINK_STATE, s)) < 0) {
				char words[64];

				return tv_fail(c, f, path, "%s must be %s, not '%s'",
					       KEY(LINK, STATE),
					       tv_word_list(FWD_SC_LINK_STATE, "'", " or ", words,
							    sizeof(words)),
					       s);
			}
			lk->up = w != FWD_V_LINK_STATE_DOWN;
			lk->drained = w == FWD_V_LINK_STATE_DRAIN;
		}
		t->nlinks++;
	}
	return 0;
}

/* Links are not a plain name array; index them through a copy. */
int tv_index_links(struct vctx *c)
{
	const struct fwd_table *t = c->t;

	return tv_nidx_build_copy(&c->nm.links, t->nlinks ? t->links[0].name : NULL,
				  sizeof(*t->links), t->nlinks);
}

int tv_parse_groups(struct vctx *c, const struct fwd_node *groups)
{
	const char *const sec = KEY(DOC, LINK_GROUPS), *const members = KEY(GROUP, MEMBERS);
	const struct nidx *links = &c->nm.links;
	struct fwd_table *t = c->t;
	char path[320];
	int rc;

	if ((rc = tv_section_map(c, groups, sec, FWD_MAX_GROUPS, "link groups")))
		return rc < 0 ? rc : 0;
	t->groups = calloc(groups->count ? groups->count : 1, sizeof(*t->groups));
	if (t->groups == NULL)
		return -ENOMEM;
	for (const struct fwd_node *g = groups->child; g; g = g->next) {
		struct fwd_group *gr = &t->groups[t->ngroups];
		const struct fwd_node *m;
		uint64_t wsum = 0;

		if ((rc = tv_section_entry(c, g, sec, "link group", FWD_SC_GROUP, gr->name, path,
					   sizeof(path))) ||
		    (rc = tv_get_desc(c, g, path, FWD_F_GROUP_DESCRIPTION, &gr->desc)))
			return rc;
		if (tv_nidx_find(links, g->key) >= 0)
			return tv_fail(c, g, path,
				       "'%s' is already a link name; links and groups share names",
				       g->key);
		snprintf(path, sizeof(path), "%s.%s.%s", sec, g->key, members);
		if ((m = fwd_node_get(g, members)) == NULL)
			return tv_fail(c, g, path, "missing field '%s'", members);
		if ((rc = tv_want(c, m, path, FWD_NODE_MAP)))
			return rc;
		if (m->count == 0)
			return tv_fail(c, m, path, "a group needs 1..%d members",
				       FWD_MAX_GROUP_MEMBERS);
		if (m->count > FWD_MAX_GROUP_MEMBERS)
			return tv_fail_limit(c, m, path, FWD_MAX_GROUP_MEMBERS,
					     "members in a group");
		for (const struct fwd_node *e = m->child; e; e = e->next) {
			int id = tv_nidx_find(links, e->key);
			uint64_t w;

			snprintf(path, sizeof(path), "%s.%s.%s.%s", sec, g->key, members, e->key);
			if (id < 0)
				return tv_fail(c, e, path, "unknown link '%s'", e->key);
			if ((rc = tv_get_uint(c, e, path, 0, 1000000, &w)))
				return rc;
			gr->members[gr->nmembers++] = (struct fwd_group_member){
				.link = (uint16_t)id, .weight = (uint32_t)w};
			wsum += w;
		}
		if (wsum == 0) {
			snprintf(path, sizeof(path), "%s.%s.%s", sec, g->key, members);
			return tv_fail(c, m, path,
				       "every member has weight 0; the group could carry nothing");
		}
		t->ngroups++;
	}
	return 0;
}

int tv_index_groups(struct vctx *c)
{
	const struct fwd_table *t = c->t;

	return tv_nidx_build_copy(&c->nm.groups, t->ngroups ? t->groups[0].name : NULL,
				  sizeof(*t->groups), t->ngroups);
}

int fwd_table_refuse_tag(const char *file, uint32_t line, const char *tag, struct fwd_err *e)
{
	const char *core = "tag:yaml.org,2002:";
	const int short_form = strncmp(tag, core, strlen(core)) == 0;

	fwd_err_fail(e, FWD_R_INVALID_TABLE, file, line, "",
		     "YAML tag '%s%s' is not read (every value is text, typed by its field): "
		     "remove it",
		     short_form ? "!!" : "", short_form ? tag + strlen(core) : tag);
	return -EINVAL;
}

int fwd_table_written_tags(const char *buf, size_t len, const char *name, struct fwd_err *e)
{
	struct fwd_err ignore = {0};
	struct fwd_doc *doc = fwd_doc_parse(buf, len, name, -1, &ignore);
	uint32_t line = 0;
	const char *tag = doc ? fwd_doc_tag(doc, &line) : NULL;
	int rc = tag ? fwd_table_refuse_tag(name, line, tag, e) : 0;

	fwd_doc_free(doc);
	return rc;
}

int fwd_table_check_written(const struct fwd_table *t, struct fwd_err *e)
{
	char path[FWD_NAME_MAX + 16], mine[FWD_MAX_TAGS * (FWD_NAME_MAX + 2)],
		theirs[FWD_MAX_TAGS * (FWD_NAME_MAX + 2)];

	if (t->yaml_tag_line)
		return fwd_table_refuse_tag(t->source, t->yaml_tag_line, t->yaml_tag, e);
	if (t->residency_null_line) {
		fwd_err_fail(e, FWD_R_INVALID_TABLE, t->source, t->residency_null_line - 1,
			     "residency",
			     "has no value (null: every rule commented out?); write 'residency: "
			     "[]' for a table with no residency rules, or leave the section out");
		return -EINVAL;
	}

	for (uint16_t i = 1; i < t->nlinks; i++)
		for (uint16_t k = 0; k < i; k++) {
			const struct fwd_link *lk = &t->links[i], *o = &t->links[k];

			if (strcmp(o->port, lk->port) != 0 || o->vlan != lk->vlan ||
			    memcmp(o->next_hop_mac, lk->next_hop_mac, 6) != 0 || same_tags(o, lk))
				continue;
			snprintf(path, sizeof(path), "links.%s", lk->name);
			fwd_err_fail(e, FWD_R_INVALID_TABLE, t->source, lk->port_line, path,
				     "link '%s' leaves by the same port '%s', next hop and VLAN as "
				     "link '%s' (one wire), but is %s where '%s' is %s: give both "
				     "the tags of where that wire goes",
				     lk->name, lk->port, o->name, tag_list(lk, mine, sizeof(mine)),
				     o->name, tag_list(o, theirs, sizeof(theirs)));
			return -EINVAL;
		}
	return 0;
}
