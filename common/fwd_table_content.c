/*
 * fwd_table_content.c - the content_rules section: Hyperscan patterns on
 * payloads, SNI, Host and DNS names, and name sets given inline or as a
 * file (docs/content-rules.md).
 */
#include "fwd_table_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_confine.h"
#include "fwd_log.h"
#include "fwd_doc.h"
#include "fwd_residency.h"
#include "fwd_hash.h"
#include "fwd_nameset.h"

/* ---- name sets -------------------------------------------------------------------- */

/* Append a normalised name to the rule's list ("*." kept in front of a suffix). */
static int names_add(struct fwd_content_rule *cr, size_t *cap, const char *norm, size_t len,
		     enum fwd_ns_kind kind)
{
	size_t need = cr->names_len + len + 3;

	if (need > *cap) {
		size_t c = *cap ? *cap * 2 : 4096;
		char *p;

		while (c < need)
			c *= 2;
		if ((p = realloc(cr->names, c)) == NULL)
			return -ENOMEM;
		cr->names = p;
		*cap = c;
	}
	if (kind == FWD_NS_SUFFIX) {
		memcpy(cr->names + cr->names_len, "*.", 2);
		cr->names_len += 2;
	}
	memcpy(cr->names + cr->names_len, norm, len + 1);
	cr->names_len += len + 1;
	cr->nnames++;
	return 0;
}

/* The rule being parsed is the table's last: its names plus the others'. */
static int names_total_ok(struct vctx *c, const struct fwd_node *n, const char *path)
{
	uint64_t total = c->names_total + c->t->content[c->t->ncontent - 1].nnames;

	if (total > FWD_MAX_NAMES)
		return tv_fail(c, n, path, "more than %u names in the table's name sets",
			       FWD_MAX_NAMES);
	return 0;
}

static int parse_names_inline(struct vctx *c, const struct fwd_node *n, const char *path,
			      struct fwd_content_rule *cr, size_t *cap)
{
	char p[340], norm[FWD_NS_NAME_MAX + 1];
	uint32_t k = 0;
	int rc;

	if ((rc = tv_want(c, n, path, FWD_NODE_SEQ)))
		return rc;
	if (n->count == 0)
		return tv_fail(c, n, path, "an empty list of names");
	for (const struct fwd_node *e = n->child; e; e = e->next, k++) {
		enum fwd_ns_kind kind;
		const char *s, *why;
		int len;

		snprintf(p, sizeof(p), "%s[%u]", path, k);
		if ((rc = tv_get_scalar(c, e, p, &s)))
			return rc;
		if ((len = fwd_name_normalize(s, strlen(s), norm, &kind, &why)) < 0)
			return tv_fail(c, e, p, "'%.80s': %s", s, why);
		if ((rc = names_add(cr, cap, norm, (size_t)len, kind)))
			return rc;
	}
	return names_total_ok(c, n, path);
}

/* A names file: one name a line; '#' starts a comment; blank lines and
 * surrounding blanks ignored. A refusal is placed where every refusal of
 * the document is, its name and @docline (the names_file field's), then
 * names @name as the document wrote it (its control characters escaped:
 * it is a path a document gave) and the file's line, and says why, but
 * never quotes the line: a file that is not a list of names (a key, a
 * password file) must not leak through the refusal. */
static int parse_names_text(struct vctx *c, const char *text, size_t len, const char *name,
			    uint32_t docline, const char *path, struct fwd_content_rule *cr,
			    size_t *cap)
{
	char norm[FWD_NS_NAME_MAX + 1], file[PATH_MAX];
	uint32_t line = 0;
	int rc;

	fwd_escape_controls(name, file, sizeof(file));

	for (size_t at = 0; at < len;) {
		const char *b = text + at, *nl = memchr(b, '\n', len - at);
		size_t n = nl ? (size_t)(nl - b) : len - at;
		const char *hash = memchr(b, '#', n), *why;
		enum fwd_ns_kind kind;
		int l;

		at += n + 1;
		line++;
		if (hash)
			n = (size_t)(hash - b);
		while (n && (b[0] == ' ' || b[0] == '\t'))
			b++, n--;
		while (n && (b[n - 1] == ' ' || b[n - 1] == '\t' || b[n - 1] == '\r'))
			n--;
		if (n == 0)
			continue;
		if ((l = fwd_name_normalize(b, n, norm, &kind, &why)) < 0)
			return fwd_err_set(
				c->err, c->file, docline, path,
				"'%.200s' line %u is not a name (%zu bytes, not shown): %s", file,
				line, n, why);
		if ((rc = names_add(cr, cap, norm, (size_t)l, kind)))
			return rc;
		if (cr->nnames > FWD_MAX_NAMES)
			return fwd_err_set(
				c->err, c->file, docline, path,
				"'%.200s' line %u: more than %u names in the table's name "
				"sets",
				file, line, FWD_MAX_NAMES);
	}
	return 0;
}

/* names_file: a path (the document was read from a file: relative to its
 * directory) or the embedded form {path, hash, text} regionctl sends. */
static int parse_names_file(struct vctx *c, const struct fwd_node *n, const char *path,
			    struct fwd_content_rule *cr, size_t *cap)
{
	char full[PATH_MAX], p[340];
	const char *s, *file, *text;
	const struct fwd_node *f;
	char *buf = NULL;
	size_t len;
	int rc;

	if (n->type == FWD_NODE_MAP) {
		if ((rc = tv_check_keys(c, n, path, FWD_SC_NAMES_FILE)))
			return rc;
		for (int k = 0; k < 3; k++) {
			const char *const keys[3] = {KEY(NAMES_FILE, PATH), KEY(NAMES_FILE, HASH),
						     KEY(NAMES_FILE, TEXT)};
			const char *kn = keys[k];

			snprintf(p, sizeof(p), "%s.%s", path, kn);
			if ((f = fwd_node_get(n, kn)) == NULL)
				return tv_fail(c, n, p, "missing field '%s'", kn);
			if ((rc = tv_get_scalar(c, f, p, &s)))
				return rc;
		}
		file = fwd_node_get(n, KEY(NAMES_FILE, PATH))->str;
		text = fwd_node_get(n, KEY(NAMES_FILE, TEXT))->str;
		len = strlen(text);
		cr->names_hash = fwd_hash64(text, len);
		s = fwd_node_get(n, KEY(NAMES_FILE, HASH))->str;
		snprintf(full, sizeof(full), "%016" PRIx64, cr->names_hash);
		if (strcmp(s, full) != 0) {
			snprintf(p, sizeof(p), "%s.%s", path, KEY(NAMES_FILE, HASH));
			return tv_fail(c, fwd_node_get(n, KEY(NAMES_FILE, HASH)), p,
				       "hash '%.20s' is not the text's (%s): the embedded file was "
				       "altered",
				       s, full);
		}
		/* A bad line is named by the file and line, and the field the
		 * document's author wrote (names_file), not the embedded form's
		 * .text, which regionctl made: the refusal reads the same as
		 * regionfwd --check-table's on the file itself. */
		if ((rc = parse_names_text(c, text, len, file, n->line, path, cr, cap)))
			return rc;
		return names_total_ok(c, n, path);
	}
	if ((rc = tv_get_scalar(c, n, path, &s)))
		return rc;
	if (c->dir == NULL)
		return tv_fail(c, n, path,
			       "names_file '%.80s' cannot be read here: this document came as "
			       "text; send it with regionctl apply FILE, which embeds the file",
			       fwd_escape_controls(s, full, sizeof(full)));
	{
		const struct fwd_confine w = {
			.dir = c->dir, .doc = c->file, .line = n->line, .field = path};

		if ((rc = fwd_read_confined(&w, s, &buf, &len, c->err)))
			return rc;
	}
	cr->names_hash = fwd_hash64(buf, len);
	rc = parse_names_text(c, buf, len, s, n->line, path, cr, cap);
	free(buf);
	return rc ? rc : names_total_ok(c, n, path);
}

/* ---- patterns on lowercased names ----------------------------------------------- */

/* @p past an opening '{' at @p[0]: the byte after the matching '}', or the
 * end; for \x{4A}, \p{Lu}, \N{U+41}, \o{101}, \g{name}, \k{name}. */
static const char *past_brace(const char *p)
{
	const char *e = strchr(p, '}');

	return e ? e + 1 : p + strlen(p);
}

/* Past the character class opening at @p ('['): a ']' first (after an
 * optional '^') is a member, escapes and POSIX classes ([:alpha:]) inside
 * are skipped whole. */
static const char *past_class(const char *p)
{
	p++;
	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	while (*p && *p != ']') {
		if (p[0] == '\\' && p[1]) {
			p += 2;
			if (p[-1] == 'x' || p[-1] == 'p' || p[-1] == 'P' || p[-1] == 'N' ||
			    p[-1] == 'o')
				p = *p == '{' ? past_brace(p) : p;
		} else if (p[0] == '[' && p[1] == ':') {
			const char *e = strstr(p + 2, ":]");

			p = e ? e + 2 : p + 1;
		} else {
			p++;
		}
	}
	return *p ? p + 1 : p;
}

/*
 * The 0-based offset of the first upper-case ASCII letter @p holds as a
 * literal character, or -1. A name field's text is lowercased before it is
 * matched, so without caseless such a letter can never match. Only what is
 * surely a literal counts: letters of escapes (\S, \W, \x{4A}, \p{Lu},
 * \N{..}, \cA), of character classes ([A-Z]), group names ((?<Name>),
 * (?P<Name>), (?'Name')), back references and verbs ((*UTF8)) do not, and
 * a pattern with an inline option group that turns on caseless or
 * extended ((?i), (?x) whose comments hold anything) or a conditional
 * ((?( ) is left alone whole. Inside \Q...\E the
 * letters are literal. @literal: the pattern is plain text (literal: true),
 * every letter literal.
 */
static int literal_upper(const char *pat, int literal)
{
	const char *p = pat;

	if (literal) {
		for (; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				return (int)(p - pat);
		return -1;
	}
	for (const char *q = pat; (q = strstr(q, "(?")) != NULL; q += 2) {
		if (q[2] == '^' || q[2] == '(' || (q[2] >= 'A' && q[2] <= 'Z' && q[2] != 'P'))
			return -1; /* a reset or a conditional: left alone */
		/* Option letters up to ':' or ')': only a caseless one (i) or
		 * an extended one (x: comments may hold anything) leaves the
		 * pattern alone; (?s)Telemetry was left alone whole, and it
		 * can never match a lowercased name. (?P<..>, (?P=..) and
		 * (?P>..) are names, not options: the scan below reads them. */
		if (q[2] == 'P')
			continue;
		for (const char *o = q + 2; isalpha((unsigned char)*o) || *o == '-'; o++) {
			if (*o == '-')
				break; /* what follows turns options off */
			if (*o == 'i' || *o == 'x' || (*o >= 'A' && *o <= 'Z'))
				return -1; /* (?sJ): Hyperscan's parser says what J is */
		}
	}
	while (*p) {
		if (p[0] == '\\') {
			char c = p[1];

			if (c == '\0')
				break;
			p += 2;
			if (c == 'Q') { /* quoted: literal up to \E */
				for (; *p && !(p[0] == '\\' && p[1] == 'E'); p++)
					if (*p >= 'A' && *p <= 'Z')
						return (int)(p - pat);
				p += *p ? 2 : 0;
			} else if ((c == 'x' || c == 'p' || c == 'P' || c == 'N' || c == 'o' ||
				    c == 'g' || c == 'k') &&
				   *p == '{') {
				p = past_brace(p);
			} else if (c == 'k' && (*p == '<' || *p == '\'')) {
				const char *e = strchr(p + 1, *p == '<' ? '>' : '\'');

				p = e ? e + 1 : p + strlen(p);
			} else if ((c == 'p' || c == 'P' || c == 'c') && *p) {
				p++; /* \pL, \cA: one letter of the escape */
			} else if (c == 'x') { /* \x4A: up to two hex digits */
				for (int d = 0; d < 2 && isxdigit((unsigned char)*p); d++)
					p++;
			}
		} else if (p[0] == '[') {
			p = past_class(p);
		} else if (p[0] == '(' && p[1] == '*') { /* a verb: (*UTF8) */
			const char *e = strchr(p, ')');

			p = e ? e + 1 : p + strlen(p);
		} else if (p[0] == '(' && p[1] == '?') {
			const char *e = NULL;

			if (p[2] == '#' || p[2] == '&' ||
			    (p[2] == 'P' && (p[3] == '=' || p[3] == '>')))
				e = strchr(p, ')'); /* a comment, a call or reference by name */
			else if (p[2] == '\'')
				e = strchr(p + 3, '\'');
			else if (p[2] == 'P' && p[3] == '<')
				e = strchr(p + 4, '>');
			else if (p[2] == '<' && p[3] != '=' && p[3] != '!')
				e = strchr(p + 3, '>');
			p = e ? e + 1 : p + 2;
		} else if (*p >= 'A' && *p <= 'Z') {
			return (int)(p - pat);
		} else {
			p++;
		}
	}
	return -1;
}

static int parse_id_list(struct vctx *c, const struct fwd_node *n, const char *path,
			 const struct nidx *x, const char *what, uint16_t **out, uint16_t *count)
{
	char p[340];
	int rc;

	if ((rc = tv_want(c, n, path, FWD_NODE_SEQ)))
		return rc;
	if (n->count == 0 || n->count > 4096)
		return tv_fail(c, n, path, "list 1..4096 %ss", what);
	*out = calloc(n->count, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	*count = 0;
	for (const struct fwd_node *e = n->child; e; e = e->next) {
		const char *s;
		int id;

		snprintf(p, sizeof(p), "%s[%u]", path, *count);
		if ((rc = tv_get_scalar(c, e, p, &s)))
			return rc;
		if ((id = tv_nidx_find(x, s)) < 0)
			return tv_fail(c, e, p, "unknown %s '%s'", what, s);
		/* a slip (two lines meant to differ), not a wider scope */
		for (uint16_t k = 0; k < *count; k++)
			if ((*out)[k] == id)
				return tv_fail(c, e, p, "%s '%s' is listed twice (also at [%u])",
					       what, s, k);
		(*out)[(*count)++] = (uint16_t)id;
	}
	return 0;
}

int tv_parse_content(struct vctx *c, const struct fwd_node *n)
{
	const struct names *nm = &c->nm;
	const char *const sec = KEY(DOC, CONTENT_RULES), *const to_key = KEY(CONTENT, TO);
	struct fwd_table *t = c->t;
	char path[320], words[128];
	int rc, w;

	if (n == NULL || n->type == FWD_NODE_NULL)
		return 0;
	if ((rc = tv_want(c, n, sec, FWD_NODE_SEQ)))
		return rc;
	if (n->count > FWD_MAX_CONTENT_RULES)
		return tv_fail_limit(c, n, sec, FWD_MAX_CONTENT_RULES, "content rules");
	t->content = calloc(n->count ? n->count : 1, sizeof(*t->content));
	if (t->content == NULL)
		return -ENOMEM;
	uint32_t i = 0;
	for (const struct fwd_node *m = n->child; m; m = m->next, i++) {
		struct fwd_content_rule *cr = &t->content[t->ncontent];
		const struct fwd_node *f;
		const char *s;

		snprintf(path, sizeof(path), "%s[%u]", sec, i);
		if ((rc = tv_want(c, m, path, FWD_NODE_MAP)) ||
		    (rc = tv_check_keys(c, m, path, FWD_SC_CONTENT)))
			return rc;
		t->ncontent++; /* owned from here: freed with the table */
		cr->line = m->line;
		if ((rc = tv_get_desc(c, m, path, FWD_F_CONTENT_DESCRIPTION, &cr->desc)))
			return rc;
#define REQ(id)                                                                                    \
	snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(CONTENT, id));                       \
	if ((f = fwd_node_get(m, KEY(CONTENT, id))) == NULL)                                       \
		return tv_fail(c, m, path, "missing field '%s'", KEY(CONTENT, id));
		REQ(NAME);
		if ((rc = tv_get_name(c, f, path, "content rule", cr->name)))
			return rc;
		for (uint32_t j = 0; j + 1 < t->ncontent; j++)
			if (strcmp(t->content[j].name, cr->name) == 0)
				return tv_fail(c, f, path, "content rule '%s' is defined twice",
					       cr->name);
		REQ(FIELD);
		if ((rc = tv_get_scalar(c, f, path, &s)))
			return rc;
		if ((w = fwd_schema_index(FWD_SC_CONTENT_FIELD, s)) < 0)
			return tv_fail(c, f, path, "%s must be %s, not '%s'", KEY(CONTENT, FIELD),
				       tv_word_list(FWD_SC_CONTENT_FIELD, "", " or ", words,
						    sizeof(words)),
				       s);
		cr->field = (uint8_t)w; /* enum fwd_content_field */
		const struct fwd_node *fnames = fwd_node_get(m, KEY(CONTENT, NAMES)),
				      *ffile = fwd_node_get(m, KEY(CONTENT, NAMES_FILE)),
				      *funread = fwd_node_get(m, KEY(CONTENT, UNREADABLE));

		f = fwd_node_get(m, KEY(CONTENT, PATTERN));
		if (funread) {
			/* Fail closed: the rule matches what no pattern or set can
			 * see, a name that is there but unreadable. Only "true"
			 * means anything (a false one would be a rule matching
			 * nothing), and it stands alone: what would a pattern on
			 * an unreadable name match? */
			const char *what = f	    ? KEY(CONTENT, PATTERN)
					   : fnames ? KEY(CONTENT, NAMES)
					   : ffile  ? KEY(CONTENT, NAMES_FILE)
						    : NULL;

			snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(CONTENT, UNREADABLE));
			if ((rc = tv_get_scalar(c, funread, path, &s)))
				return rc;
			if (fwd_schema_lookup(FWD_SC_BOOL, s) != FWD_V_BOOL_TRUE)
				return tv_fail(c, funread, path,
					       "must be true (a rule that matches unreadable "
					       "names; without it, give a pattern or names)");
			if (what)
				return tv_fail(c, funread, path,
					       "a rule has unreadable: true or '%s', not both",
					       what);
			if (cr->field == FWD_CF_PAYLOAD) {
				snprintf(path, sizeof(path), "%s[%u].%s", sec, i,
					 KEY(CONTENT, FIELD));
				return tv_fail(c, fwd_node_get(m, KEY(CONTENT, FIELD)), path,
					       "unreadable matches a name that cannot be read: "
					       "tls_sni, http_host or dns_qname, not payload");
			}
			cr->unreadable = 1;
		}
		snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(CONTENT, PATTERN));
		if (!cr->unreadable && (f != NULL) == (fnames != NULL || ffile != NULL))
			return tv_fail(c, f ? f : m, path,
				       f ? "a rule has a pattern or names/names_file, not both"
					 : "missing field 'pattern' (or 'names' / 'names_file' / "
					   "'unreadable')");
		if (cr->unreadable) {
			/* no pattern, no set: the extractor's result is the match */
		} else if (f) {
			if ((rc = tv_get_scalar(c, f, path, &s)))
				return rc;
			if (s[0] == '\0' || strlen(s) > FWD_MAX_PATTERN)
				return tv_fail(c, f, path, "a pattern is 1..%d bytes",
					       FWD_MAX_PATTERN);
			cr->pattern = strdup(s);
			if (cr->pattern == NULL)
				return -ENOMEM;
		} else {
			size_t cap = 0;

			if (cr->field == FWD_CF_PAYLOAD) {
				snprintf(path, sizeof(path), "%s[%u].%s", sec, i,
					 KEY(CONTENT, FIELD));
				return tv_fail(c, fwd_node_get(m, KEY(CONTENT, FIELD)), path,
					       "names match tls_sni, http_host or dns_qname, not "
					       "payload");
			}
			snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(CONTENT, NAMES));
			if (fnames && (rc = parse_names_inline(c, fnames, path, cr, &cap)))
				return rc;
			snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(CONTENT, NAMES_FILE));
			if (ffile && (rc = parse_names_file(c, ffile, path, cr, &cap)))
				return rc;
			if (cr->names == NULL) /* an empty file */
				return tv_fail(c, ffile, path, "no names in the set");
			c->names_total += cr->nnames;
		}
		for (int k = 0; k < 2; k++) {
			const char *key = k ? KEY(CONTENT, CASELESS) : KEY(CONTENT, LITERAL);

			if ((f = fwd_node_get(m, key)) == NULL)
				continue;
			snprintf(path, sizeof(path), "%s[%u].%s", sec, i, key);
			if (cr->unreadable)
				return tv_fail(c, f, path,
					       "an unreadable rule matches no text: '%s' is for "
					       "patterns",
					       key);
			if (cr->pattern == NULL)
				return tv_fail(c, f, path,
					       "a name set is matched literally and caselessly: "
					       "'%s' is for patterns",
					       key);
			if ((rc = tv_get_scalar(c, f, path, &s)))
				return rc;
			if ((w = fwd_schema_lookup(FWD_SC_BOOL, s)) < 0)
				return tv_fail(c, f, path, "must be %s",
					       tv_word_list(FWD_SC_BOOL, "", " or ", words,
							    sizeof(words)));
			*(k ? &cr->caseless : &cr->literal) = w == FWD_V_BOOL_TRUE;
		}
		if (cr->pattern && cr->field != FWD_CF_PAYLOAD && !cr->caseless &&
		    (w = literal_upper(cr->pattern, cr->literal)) >= 0) {
			snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(CONTENT, PATTERN));
			return tv_fail(
				c, fwd_node_get(m, KEY(CONTENT, PATTERN)), path,
				"the upper-case '%c' at position %d can never match: %s names "
				"are lowercased before they are matched; write it lowercase "
				"or add caseless: true",
				cr->pattern[w], w + 1, fwd_content_field_name(cr->field));
		}
		REQ(SERVICES);
		if ((rc = parse_id_list(c, f, path, &nm->services, "service", &cr->services,
					&cr->nservices)))
			return rc;
		if ((f = fwd_node_get(m, KEY(CONTENT, REGIONS))) != NULL) {
			snprintf(path, sizeof(path), "%s[%u].%s", sec, i, KEY(CONTENT, REGIONS));
			if ((rc = parse_id_list(c, f, path, &nm->regions, "region", &cr->regions,
						&cr->nregions)))
				return rc;
		}
		REQ(ACTION);
		if ((rc = tv_get_scalar(c, f, path, &s)))
			return rc;
		if ((w = fwd_schema_index(FWD_SC_CONTENT_ACTION, s)) < 0)
			return tv_fail(c, f, path, "%s must be %s, not '%s'", KEY(CONTENT, ACTION),
				       tv_word_list(FWD_SC_CONTENT_ACTION, "", " or ", words,
						    sizeof(words)),
				       s);
		cr->action = (uint8_t)w; /* enum fwd_content_action */
#undef REQ
		f = fwd_node_get(m, to_key);
		snprintf(path, sizeof(path), "%s[%u].%s", sec, i, to_key);
		if (cr->action == FWD_CA_MIRROR || cr->action == FWD_CA_STEER) {
			int id;

			if (f == NULL)
				return tv_fail(c, m, path, "%s '%s' needs '%s'",
					       KEY(CONTENT, ACTION),
					       fwd_content_action_name(cr->action), to_key);
			if ((rc = tv_get_scalar(c, f, path, &s)))
				return rc;
			if ((id = tv_nidx_find(&nm->links, s)) >= 0) {
				cr->target_kind = FWD_ACT_LINK;
			} else if (cr->action == FWD_CA_STEER &&
				   (id = tv_nidx_find(&nm->groups, s)) >= 0) {
				cr->target_kind = FWD_ACT_GROUP;
			} else {
				return tv_fail(c, f, path, "unknown %s '%s'",
					       cr->action == FWD_CA_MIRROR
						       ? "link (mirror takes a link)"
						       : "link or link group",
					       s);
			}
			cr->target = (uint16_t)id;
		} else if (f) {
			return tv_fail(c, f, path, "%s '%s' takes no '%s'", KEY(CONTENT, ACTION),
				       fwd_content_action_name(cr->action), to_key);
		}
		if (cr->action == FWD_CA_STEER) {
			/* A steer decides per packet; on a TCP (or SCTP) flow that would
			 * move a connection between links mid-stream. 'other' is
			 * every port no service names, TCP's too: it has no
			 * ranges to find below, and passed. */
			for (uint16_t k = 0; k < cr->nservices; k++)
				if (cr->services[k] == FWD_SERVICE_OTHER) {
					snprintf(path, sizeof(path), "%s[%u].%s", sec, i,
						 KEY(CONTENT, ACTION));
					return tv_fail(
						c, fwd_node_get(m, KEY(CONTENT, ACTION)), path,
						"steer decides per packet, so its scope must "
						"be UDP only: service 'other' is every "
						"protocol and port no service names, TCP's "
						"too (a TCP flow would change link "
						"mid-stream)");
				}
			for (uint16_t k = 0; k < cr->nservices; k++)
				for (uint32_t r = 0; r < t->nranges; r++)
					if (t->ranges[r].service == cr->services[k] &&
					    t->ranges[r].proto != FWD_PROTO_UDP) {
						char proto[8];

						snprintf(path, sizeof(path), "%s[%u].%s", sec, i,
							 KEY(CONTENT, ACTION));
						fwd_proto_name(t->ranges[r].proto, proto,
							       sizeof(proto));
						return tv_fail(
							c, fwd_node_get(m, KEY(CONTENT, ACTION)),
							path,
							"steer decides per packet, so its scope "
							"must "
							"be UDP only: service '%s' has %s ports (a "
							"%s "
							"flow would change link mid-stream)",
							t->service_names[cr->services[k]], proto,
							proto);
					}
		}
		snprintf(path, sizeof(path), "%s[%u]", sec, i);
		/* A mirror or steer of traffic a residency rule protects may
		 * use only links the rule allows (every carrying member of a
		 * group); fwd_residency_check() checks the whole table again,
		 * nested regions included. */
		if (fwd_residency_check_content(t, cr, path, c->err))
			return -EPERM;
	}
	return 0;
}
