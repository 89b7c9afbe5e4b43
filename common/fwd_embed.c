#define _GNU_SOURCE /* memmem */
#include "fwd_embed.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fwd_confine.h"
#include "fwd_log.h"
#include "fwd_doc.h"
#include "fwd_hash.h"
#include "fwd_names.h"

/* The names_file scalar of content rule @rule, or NULL. */
static const struct fwd_node *names_file_path(const struct fwd_node *rule)
{
	const struct fwd_node *f;

	if (rule->type != FWD_NODE_MAP)
		return NULL;
	f = fwd_node_get(rule, FWD_KEY_NAME(CONTENT, NAMES_FILE));
	return f && f->type == FWD_NODE_SCALAR ? f : NULL;
}

static json_t *embedded(const struct fwd_node *n, uint32_t i, const struct fwd_confine *where,
			struct fwd_err *err)
{
	char full[PATH_MAX], path[96], hash[17], *text = NULL;
	struct fwd_confine w = *where;
	size_t len;
	json_t *o, *t;

	snprintf(path, sizeof(path), "%s[%u].%s", FWD_KEY_NAME(DOC, CONTENT_RULES), i,
		 FWD_KEY_NAME(CONTENT, NAMES_FILE));
	w.line = n->line;
	w.field = path;
	if (fwd_read_confined(&w, n->str, &text, &len, err))
		return NULL;
	/* For errors only: the path as the document gave it (after the
	 * document's name and line, as every refusal of a names file), its
	 * control characters escaped. */
	fwd_escape_controls(n->str, full, sizeof(full));
	{ /* a NUL would end the text where the reader stops: refused here, by line */
		const char *nul = memchr(text, '\0', len);

		if (nul) {
			uint32_t line = 1;

			for (const char *c = text; c < nul; c++)
				line += *c == '\n';
			free(text);
			fwd_err_set(err, w.doc, w.line, path,
				    "'%.200s' line %u: a NUL byte in a names file", full, line);
			return NULL;
		}
	}
	snprintf(hash, sizeof(hash), "%016" PRIx64, fwd_hash64(text, len));
	t = json_stringn(text, len);
	free(text);
	if (t == NULL) {
		fwd_err_set(err, w.doc, w.line, path,
			    "'%.200s': not UTF-8 text (a names file holds ASCII names)", full);
		return NULL;
	}
	o = json_pack("{s:s, s:s, s:o}", FWD_KEY_NAME(NAMES_FILE, PATH), n->str,
		      FWD_KEY_NAME(NAMES_FILE, HASH), hash, FWD_KEY_NAME(NAMES_FILE, TEXT), t);
	if (o == NULL)
		fwd_err_set(err, NULL, 0, path, "out of memory");
	return o;
}

/* @n as JSON; the names_file paths of content rules replaced (@rules: @n is
 * the content_rules list). Depth is bounded by the document's own limit. */
static json_t *to_json(const struct fwd_node *n, int rules, const struct fwd_confine *where,
		       struct fwd_err *err)
{
	json_t *j, *v;
	uint32_t i = 0;

	switch (n->type) {
	case FWD_NODE_NULL:
		return json_null();
	case FWD_NODE_SCALAR:
		return json_string(n->str);
	case FWD_NODE_SEQ:
		j = json_array();
		for (const struct fwd_node *c = n->child; c && j; c = c->next, i++) {
			const struct fwd_node *nf = rules ? names_file_path(c) : NULL;

			if (nf) { /* this rule's fields, names_file embedded */
				v = json_object();
				for (const struct fwd_node *k = c->child; k && v; k = k->next) {
					json_t *x = k == nf ? embedded(k, i, where, err)
							    : to_json(k, 0, where, err);

					if (x == NULL || json_object_set_new(v, k->key, x)) {
						json_decref(v);
						v = NULL;
					}
				}
			} else {
				v = to_json(c, 0, where, err);
			}
			if (v == NULL || json_array_append_new(j, v)) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	default:
		j = json_object();
		for (const struct fwd_node *c = n->child; c && j; c = c->next) {
			int r = rules == -1 &&
				strcmp(c->key, FWD_KEY_NAME(DOC, CONTENT_RULES)) == 0;

			if ((v = to_json(c, r, where, err)) == NULL ||
			    json_object_set_new(j, c->key, v)) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	}
}

int fwd_embed_names(const char *buf, size_t len, const char *name, const char *dir,
		    const char *trusted, char **out, size_t *outlen, struct fwd_err *err)
{
	const struct fwd_confine where = {.dir = dir, .trusted = trusted, .doc = name};
	const char *key = FWD_KEY_NAME(CONTENT, NAMES_FILE);
	const struct fwd_node *root, *rules;
	struct fwd_doc *doc;
	int need = 0;
	json_t *j;

	*out = NULL;
	*outlen = 0;
	/* Most tables name no file: not parsed twice for that. */
	if (memmem(buf, len, key, strlen(key)) == NULL)
		return 0;
	if ((doc = fwd_doc_parse(buf, len, name, -1, err)) == NULL)
		return -EINVAL;
	root = fwd_doc_root(doc);
	rules = root->type == FWD_NODE_MAP ? fwd_node_get(root, FWD_KEY_NAME(DOC, CONTENT_RULES))
					   : NULL;
	for (const struct fwd_node *r = rules && rules->type == FWD_NODE_SEQ ? rules->child : NULL;
	     r && !need; r = r->next)
		need = names_file_path(r) != NULL;
	if (!need) {
		fwd_doc_free(doc);
		return 0;
	}
	j = to_json(root, -1, &where, err);
	fwd_doc_free(doc);
	if (j == NULL) {
		if (err->file[0] == '\0')
			snprintf(err->file, sizeof(err->file), "%s", name);
		return -EINVAL;
	}
	*out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (*out == NULL)
		return fwd_err_set(err, name, 0, NULL, "out of memory"), -ENOMEM;
	*outlen = strlen(*out);
	return 0;
}
