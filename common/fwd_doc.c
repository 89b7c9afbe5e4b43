/*
 * fwd_doc.c - YAML (libyaml event API) and JSON (jansson) into fwd_node trees.
 * Nodes and strings live in a bump arena freed in one go.
 */
#include "fwd_doc.h"
#include "fwd_json.h"
#include "fwd_stages.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* Chunks grow from ARENA_FIRST, doubling, to ARENA_CHUNK: most documents
 * parsed are small (API requests, a probe's question, a test's table), and
 * a 1 MiB first chunk was an mmap and munmap per parse (glibc serves such
 * sizes by mmap), 2 minutes of system time in a sanitizer build's unit
 * tests. A 1M-prefix table still ends in 1 MiB chunks after six. */
#define ARENA_FIRST (16u << 10)
#define ARENA_CHUNK (1u << 20)

struct arena_chunk {
	struct arena_chunk *prev;
	size_t used, size;
	char data[];
};

struct fwd_doc {
	char name[128];
	struct fwd_node *root;
	struct arena_chunk *chunks;
	uint32_t nodes;
	/* The first YAML tag other than !!str, and its line (fwd_doc_tag). */
	char tag[64];
	uint32_t tag_line;
};

/* A node's YAML tag noted, when it is the first other than !!str (which
 * says what every scalar here is anyway: text). */
static void note_tag(struct fwd_doc *doc, const unsigned char *tag, uint32_t line)
{
	if (tag == NULL || doc->tag_line || strcmp((const char *)tag, "tag:yaml.org,2002:str") == 0)
		return;
	snprintf(doc->tag, sizeof(doc->tag), "%s", (const char *)tag);
	doc->tag_line = line ? line : 1;
}

static void *arena_alloc(struct fwd_doc *doc, size_t n)
{
	struct arena_chunk *c = doc->chunks;

	n = (n + 7) & ~(size_t)7;
	if (c == NULL || c->used + n > c->size) {
		size_t grow = c == NULL		      ? ARENA_FIRST
			      : c->size < ARENA_CHUNK ? c->size * 2
						      : ARENA_CHUNK;
		size_t size = n > grow ? n : grow;

		c = malloc(sizeof(*c) + size);
		if (c == NULL)
			return NULL;
		c->prev = doc->chunks;
		c->used = 0;
		c->size = size;
		doc->chunks = c;
	}
	c->used += n;
	return c->data + c->used - n;
}

static char *arena_strdup(struct fwd_doc *doc, const char *s, size_t len)
{
	char *d = arena_alloc(doc, len + 1);

	if (d) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

static struct fwd_node *node_new(struct fwd_doc *doc, int type, uint32_t line, struct fwd_err *err)
{
	struct fwd_node *n;

	if (++doc->nodes > FWD_DOC_MAX_NODES) {
		fwd_err_set(err, doc->name, line, NULL, "document has more than %u nodes",
			    FWD_DOC_MAX_NODES);
		return NULL;
	}
	n = arena_alloc(doc, sizeof(*n));
	if (n == NULL) {
		fwd_err_set(err, doc->name, line, NULL, "out of memory");
		return NULL;
	}
	memset(n, 0, sizeof(*n));
	n->type = (uint8_t)type;
	n->line = line;
	n->str = "";
	return n;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The path of @target beneath @n, from @buf[@at] on ("regions",
 * "content_rules[2]"): 1 when it is there. For an error only: a walk of the
 * tree built so far (a map is linked into its parent before its keys). */
static int path_to(const struct fwd_node *n, const struct fwd_node *target, char *buf, size_t len,
		   size_t at)
{
	uint32_t i = 0;

	if (n == target)
		return 1;
	for (const struct fwd_node *c = n->child; c; c = c->next, i++) {
		int w = n->type == FWD_NODE_MAP
				? snprintf(buf + at, len - at, "%s%s", at ? "." : "", c->key)
				: snprintf(buf + at, len - at, "[%u]", i);

		if (w > 0 && at + (size_t)w < len && path_to(c, target, buf, len, at + (size_t)w))
			return 1;
	}
	buf[at] = '\0';
	return 0;
}

/* Duplicate keys are refused: a document where `links.sg1` appears twice has
 * no single meaning, and libyaml does not check it. Sorting keeps it
 * O(n log n) for large maps. The error's path is the key's whole path, as
 * every other error's is (`regions.brazil`, not `brazil`). */
static int check_dup_keys(struct fwd_doc *doc, const struct fwd_node *map, struct fwd_err *err)
{
	const char **keys;
	const struct fwd_node *c;
	uint32_t i = 0;
	int rc = 0;

	if (map->count < 2)
		return 0;
	keys = malloc(sizeof(*keys) * map->count);
	if (keys == NULL)
		return fwd_err_set(err, doc->name, map->line, NULL, "out of memory");
	for (c = map->child; c; c = c->next)
		keys[i++] = c->key;
	qsort(keys, i, sizeof(*keys), key_cmp);
	for (uint32_t j = 1; j < i; j++) {
		if (strcmp(keys[j - 1], keys[j]) == 0) {
			const struct fwd_node *dup = NULL;
			char where[200] = "", path[320];
			int seen = 0;

			for (c = map->child; c; c = c->next)
				if (strcmp(c->key, keys[j]) == 0 && seen++ == 1)
					dup = c;
			if (doc->root)
				path_to(doc->root, map, where, sizeof(where), 0);
			snprintf(path, sizeof(path), "%s%s%s", where, where[0] ? "." : "", keys[j]);
			rc = fwd_err_set(err, doc->name, dup ? dup->line : map->line, path,
					 "duplicate key '%s'", keys[j]);
			break;
		}
	}
	free(keys);
	return rc;
}

/* ---- YAML ---------------------------------------------------------------- */

struct yframe {
	struct fwd_node *node, *last;
	const char *pending_key; /* MAP: key read, value not yet */
};

static void yattach(struct yframe *f, struct fwd_node *n)
{
	if (f->node->type == FWD_NODE_MAP) {
		n->key = f->pending_key;
		f->pending_key = NULL;
	}
	if (f->last)
		f->last->next = n;
	else
		f->node->child = n;
	f->last = n;
	f->node->count++;
}

static int scalar_is_null(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static int parse_yaml(struct fwd_doc *doc, const char *buf, size_t len, struct fwd_err *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct yframe stack[FWD_DOC_MAX_DEPTH + 1];
	int depth = -1, docs = 0, rc = 0, done = 0;

	if (!yaml_parser_initialize(&parser))
		return fwd_err_set(err, doc->name, 0, NULL, "cannot initialise the YAML parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

	while (!done && rc == 0) {
		uint32_t line;
		struct fwd_node *n = NULL;

		if (!yaml_parser_parse(&parser, &ev)) {
			uint32_t at = (uint32_t)parser.problem_mark.line + 1;

			/* libyaml's reader errors (a NUL, a control character, bad
			 * UTF-8) have no mark, only a byte offset: each was said at
			 * line 1 wherever it was (a probe). */
			if (parser.error == YAML_READER_ERROR) {
				size_t off =
					parser.problem_offset < len ? parser.problem_offset : len;

				at = 1;
				for (size_t i = 0; i < off; i++)
					at += buf[i] == '\n';
			}
			rc = fwd_err_set(err, doc->name, at, NULL, "YAML syntax: %s%s%s",
					 parser.problem ? parser.problem : "error",
					 parser.context ? " " : "",
					 parser.context ? parser.context : "");
			break;
		}
		line = (uint32_t)ev.start_mark.line + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1)
				rc = fwd_err_set(err, doc->name, line, NULL,
						 "more than one YAML document in the stream");
			break;
		case YAML_ALIAS_EVENT:
			rc = fwd_err_set(err, doc->name, line, NULL,
					 "YAML aliases are not accepted; write the value out");
			break;
		case YAML_SCALAR_EVENT:
			if (ev.data.scalar.anchor) {
				rc = fwd_err_set(err, doc->name, line, NULL,
						 "YAML anchors are not accepted");
				break;
			}
			note_tag(doc, ev.data.scalar.tag, line);
			if (depth >= 0 && stack[depth].node->type == FWD_NODE_MAP &&
			    stack[depth].pending_key == NULL) {
				stack[depth].pending_key =
					arena_strdup(doc, (const char *)ev.data.scalar.value,
						     ev.data.scalar.length);
				if (stack[depth].pending_key == NULL)
					rc = fwd_err_set(err, doc->name, line, NULL,
							 "out of memory");
				else if (strlen(stack[depth].pending_key) != ev.data.scalar.length)
					/* Cut at the NUL, "in\0evil" would name region 'in'. */
					rc = fwd_err_set(err, doc->name, line, NULL,
							 "NUL byte inside a key");
				break;
			}
			n = node_new(doc, scalar_is_null(&ev) ? FWD_NODE_NULL : FWD_NODE_SCALAR,
				     line, err);
			if (n == NULL) {
				rc = -ENOMEM;
				break;
			}
			if (n->type == FWD_NODE_SCALAR) {
				n->str = arena_strdup(doc, (const char *)ev.data.scalar.value,
						      ev.data.scalar.length);
				if (n->str == NULL) {
					rc = fwd_err_set(err, doc->name, line, NULL,
							 "out of memory");
					break;
				}
				if (strlen(n->str) != ev.data.scalar.length) {
					rc = fwd_err_set(err, doc->name, line, NULL,
							 "NUL byte inside a scalar");
					break;
				}
				n->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
			}
			if (depth < 0)
				doc->root = n;
			else
				yattach(&stack[depth], n);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			int is_map = ev.type == YAML_MAPPING_START_EVENT;
			const void *anchor = is_map ? (const void *)ev.data.mapping_start.anchor
						    : (const void *)ev.data.sequence_start.anchor;

			if (anchor) {
				rc = fwd_err_set(err, doc->name, line, NULL,
						 "YAML anchors are not accepted");
				break;
			}
			note_tag(doc,
				 is_map ? ev.data.mapping_start.tag : ev.data.sequence_start.tag,
				 line);
			if (depth >= 0 && stack[depth].node->type == FWD_NODE_MAP &&
			    stack[depth].pending_key == NULL) {
				rc = fwd_err_set(err, doc->name, line, NULL,
						 "a map key must be a plain scalar");
				break;
			}
			if (depth + 1 >= FWD_DOC_MAX_DEPTH) {
				rc = fwd_err_set(err, doc->name, line, NULL,
						 "nesting deeper than %d levels",
						 FWD_DOC_MAX_DEPTH);
				break;
			}
			n = node_new(doc, is_map ? FWD_NODE_MAP : FWD_NODE_SEQ, line, err);
			if (n == NULL) {
				rc = -ENOMEM;
				break;
			}
			if (depth < 0)
				doc->root = n;
			else
				yattach(&stack[depth], n);
			depth++;
			stack[depth].node = n;
			stack[depth].last = NULL;
			stack[depth].pending_key = NULL;
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (stack[depth].node->type == FWD_NODE_MAP)
				rc = check_dup_keys(doc, stack[depth].node, err);
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (rc == 0 && doc->root == NULL)
		rc = fwd_err_set(err, doc->name, 1, NULL, "empty document");
	return rc;
}

/* ---- JSON ---------------------------------------------------------------- */

static void node_append(struct fwd_node *parent, struct fwd_node **last, struct fwd_node *c)
{
	if (*last)
		(*last)->next = c;
	else
		parent->child = c;
	*last = c;
	parent->count++;
}

static struct fwd_node *json_convert(struct fwd_doc *doc, json_t *j, int depth, struct fwd_err *err)
{
	struct fwd_node *n, *last = NULL;
	char num[64];

	if (depth > FWD_DOC_MAX_DEPTH) {
		fwd_err_set(err, doc->name, 0, NULL, "nesting deeper than %d levels",
			    FWD_DOC_MAX_DEPTH);
		return NULL;
	}
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;

		n = node_new(doc, FWD_NODE_MAP, 0, err);
		if (n == NULL)
			return NULL;
		json_object_foreach(j, k, v) {
			struct fwd_node *c = json_convert(doc, v, depth + 1, err);

			if (c == NULL)
				return NULL;
			c->key = arena_strdup(doc, k, strlen(k));
			if (c->key == NULL)
				return NULL;
			node_append(n, &last, c);
		}
		return n;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;

		n = node_new(doc, FWD_NODE_SEQ, 0, err);
		if (n == NULL)
			return NULL;
		json_array_foreach(j, i, v) {
			struct fwd_node *c = json_convert(doc, v, depth + 1, err);

			if (c == NULL)
				return NULL;
			node_append(n, &last, c);
		}
		return n;
	}
	case JSON_NULL:
		return node_new(doc, FWD_NODE_NULL, 0, err);
	default:
		n = node_new(doc, FWD_NODE_SCALAR, 0, err);
		if (n == NULL)
			return NULL;
		if (json_is_string(j)) {
			n->str = arena_strdup(doc, json_string_value(j), json_string_length(j));
			n->quoted = 1;
			if (n->str && strlen(n->str) != json_string_length(j)) {
				fwd_err_set(err, doc->name, 0, NULL, "NUL byte inside a string");
				return NULL;
			}
		} else {
			if (json_is_integer(j))
				snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
					 json_integer_value(j));
			else if (json_is_real(j)) {
				snprintf(num, sizeof(num) - 2, "%.17g", json_real_value(j));
				/* 1.0 and 1e0 print as "1": keep them a real, as
				 * YAML's 1.0 is, so no integer field takes one. */
				if (strpbrk(num, ".eEin") == NULL)
					strcat(num, ".0");
			} else
				snprintf(num, sizeof(num), "%s",
					 json_is_true(j) ? "true" : "false");
			n->str = arena_strdup(doc, num, strlen(num));
		}
		return n->str ? n : NULL;
	}
}

/* The fast reader's sink (fwd_json.h): nodes straight into the arena, as
 * json_convert() makes them from jansson's tree. Anything json_convert()
 * would refuse (too many nodes, too deep, out of memory) and duplicate keys
 * decline the document: parse_json() then takes jansson's way, which says
 * what is wrong in its own words. */
struct jsink {
	struct fwd_doc *doc;
	struct fwd_err scratch; /* node_new()'s message, unused: jansson's way says it */
	struct fwd_node *open[FWD_DOC_MAX_DEPTH + 1], *last[FWD_DOC_MAX_DEPTH + 1];
	unsigned depth;
};

static int jsink_value(void *arg, const struct fwd_json_value *v)
{
	static const uint8_t type[] = {
		[FWD_JSON_OBJECT] = FWD_NODE_MAP,    [FWD_JSON_ARRAY] = FWD_NODE_SEQ,
		[FWD_JSON_STRING] = FWD_NODE_SCALAR, [FWD_JSON_INTEGER] = FWD_NODE_SCALAR,
		[FWD_JSON_TRUE] = FWD_NODE_SCALAR,   [FWD_JSON_FALSE] = FWD_NODE_SCALAR,
		[FWD_JSON_NULL] = FWD_NODE_NULL,
	};
	struct jsink *s = arg;
	struct fwd_node *n = node_new(s->doc, type[v->kind], 0, &s->scratch);

	if (n == NULL)
		return FWD_JSON_DECLINED;
	switch (v->kind) {
	case FWD_JSON_STRING:
		n->str = arena_strdup(s->doc, v->str, v->len);
		n->quoted = 1;
		break;
	case FWD_JSON_INTEGER: /* as "%lld" prints it: the text, but "-0" */
		n->str = v->integer == 0 ? "0" : arena_strdup(s->doc, v->str, v->len);
		break;
	case FWD_JSON_TRUE:
		n->str = "true";
		break;
	case FWD_JSON_FALSE:
		n->str = "false";
		break;
	default:
		break;
	}
	if (n->str == NULL)
		return FWD_JSON_DECLINED;
	if (s->depth == 0) {
		s->doc->root = n;
	} else {
		if (v->key && (n->key = arena_strdup(s->doc, v->key, v->key_len)) == NULL)
			return FWD_JSON_DECLINED;
		node_append(s->open[s->depth - 1], &s->last[s->depth - 1], n);
	}
	if (n->type == FWD_NODE_MAP || n->type == FWD_NODE_SEQ) {
		s->open[s->depth] = n;
		s->last[s->depth] = NULL;
		s->depth++;
	}
	return 0;
}

static int jsink_end(void *arg)
{
	struct jsink *s = arg;
	const struct fwd_node *n = s->open[--s->depth];

	/* jansson refuses duplicate keys (JSON_REJECT_DUPLICATES): so does
	 * its way, with its message. */
	return n->type == FWD_NODE_MAP && check_dup_keys(s->doc, n, &s->scratch) ? FWD_JSON_DECLINED
										 : 0;
}

static void doc_reset(struct fwd_doc *doc)
{
	struct arena_chunk *c, *prev;

	for (c = doc->chunks; c; c = prev) {
		prev = c->prev;
		free(c);
	}
	doc->chunks = NULL;
	doc->root = NULL;
	doc->nodes = 0;
}

static int parse_json_jansson(struct fwd_doc *doc, const char *buf, size_t len, size_t at,
			      struct fwd_err *err);

int fwd_doc_json_fast = 1;

/* The fast reader first; what it declines, jansson. */
static int parse_json(struct fwd_doc *doc, const char *buf, size_t len, struct fwd_err *err)
{
	static const struct fwd_json_sink sink = {jsink_value, jsink_end};
	struct jsink *s = fwd_doc_json_fast ? malloc(sizeof(*s)) : NULL;
	size_t at = 0;
	int rc;

	if (s != NULL) {
		s->doc = doc;
		s->depth = 0;
		s->scratch.reason[0] = '\0';
		rc = fwd_json_read_at(buf, len, FWD_DOC_MAX_DEPTH, 1, &sink, s, &at);
		/* Past the node bound the document is refused as it is:
		 * jansson would build all of it first, with no bound (5 GB for
		 * a 120 MB array: a probe). */
		if (rc != 0 && doc->nodes > FWD_DOC_MAX_NODES) {
			*err = s->scratch;
			free(s);
			doc_reset(doc);
			return -E2BIG;
		}
		free(s);
		if (rc == 0)
			return 0;
		doc_reset(doc);
	}
	return parse_json_jansson(doc, buf, len, at, err);
}

static int parse_json_jansson(struct fwd_doc *doc, const char *buf, size_t len, size_t at,
			      struct fwd_err *err)
{
	json_error_t jerr;
	json_t *j =
		fwd_json_slow_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, at, &jerr);

	char said[JSON_ERROR_TEXT_LENGTH + 64];

	if (j == NULL)
		return fwd_err_set(err, doc->name, jerr.line > 0 ? (uint32_t)jerr.line : 0, NULL,
				   "JSON syntax: %s (column %d)",
				   fwd_json_error_text(&jerr, said, sizeof(said)), jerr.column);
	doc->root = json_convert(doc, j, 0, err);
	json_decref(j);
	return doc->root ? 0 : -EINVAL;
}

/* ---- public -------------------------------------------------------------- */

struct fwd_doc *fwd_doc_parse(const char *buf, size_t len, const char *name, int json,
			      struct fwd_err *err)
{
	struct fwd_doc *doc;
	int rc;

	if (len > FWD_DOC_MAX_BYTES) {
		fwd_err_set(err, name, 0, NULL, "document larger than %u bytes", FWD_DOC_MAX_BYTES);
		return NULL;
	}
	doc = calloc(1, sizeof(*doc));
	if (doc == NULL) {
		fwd_err_set(err, name, 0, NULL, "out of memory");
		return NULL;
	}
	snprintf(doc->name, sizeof(doc->name), "%s", name ? name : "");
	/* A UTF-8 byte order mark, which some editors put first: libyaml
	 * takes it, jansson does not (RFC 8259 lets a parser ignore it). A
	 * `.json` file with one was refused by regionfwd and taken by
	 * regiond, which read it as YAML (a probe). Neither sees it now. */
	if (len >= 3 && (uint8_t)buf[0] == 0xef && (uint8_t)buf[1] == 0xbb &&
	    (uint8_t)buf[2] == 0xbf) {
		buf += 3;
		len -= 3;
	}
	if (json < 0) {
		size_t i = 0;

		while (i < len &&
		       (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
			i++;
		json = i < len && (buf[i] == '{' || buf[i] == '[');
	}
	rc = json ? parse_json(doc, buf, len, err) : parse_yaml(doc, buf, len, err);
	fwd_stage(json ? "parse JSON" : "parse YAML");
	if (rc) {
		fwd_doc_free(doc);
		return NULL;
	}
	return doc;
}

int fwd_read_file(const char *path, char **bufp, size_t *lenp, struct fwd_err *err)
{
	/* O_NONBLOCK: a FIFO (or a device) named here must not hang us in
	 * open() waiting for a writer; it is refused below as not a regular
	 * file, and a regular file ignores the flag. */
	int rc, fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		rc = -errno;
		fwd_err_set(err, path, 0, NULL, "cannot open: %s", strerror(errno));
		return rc;
	}
	rc = fwd_read_fd(fd, path, bufp, lenp, err);
	close(fd);
	return rc;
}

int fwd_read_fd(int fd, const char *path, char **bufp, size_t *lenp, struct fwd_err *err)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return fwd_err_set(err, path, 0, NULL, "not a regular file");
	if ((uint64_t)st.st_size > FWD_DOC_MAX_BYTES)
		return fwd_err_set(err, path, 0, NULL, "file larger than %u bytes",
				   FWD_DOC_MAX_BYTES);
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		fwd_err_set(err, path, 0, NULL, "out of memory");
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int rc = fwd_err_set(err, path, 0, NULL, "read failed: %s",
					     r < 0 ? strerror(errno) : "file shrank");

			free(buf);
			return rc;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	*bufp = buf;
	*lenp = got;
	return 0;
}

struct fwd_doc *fwd_doc_load(const char *path, struct fwd_err *err)
{
	struct fwd_doc *doc;
	size_t len, plen = strlen(path);
	char *buf;

	if (fwd_read_file(path, &buf, &len, err))
		return NULL;
	doc = fwd_doc_parse(buf, len, path,
			    plen > 5 && strcmp(path + plen - 5, ".json") == 0 ? 1 : -1, err);
	free(buf);
	return doc;
}

const struct fwd_node *fwd_doc_root(const struct fwd_doc *doc)
{
	return doc->root;
}

const char *fwd_doc_tag(const struct fwd_doc *doc, uint32_t *line)
{
	*line = doc->tag_line;
	return doc->tag_line ? doc->tag : NULL;
}

const char *fwd_doc_name(const struct fwd_doc *doc)
{
	return doc->name;
}

void fwd_doc_free(struct fwd_doc *doc)
{
	struct arena_chunk *c, *prev;

	if (doc == NULL)
		return;
	for (c = doc->chunks; c; c = prev) {
		prev = c->prev;
		free(c);
	}
	free(doc);
}

const struct fwd_node *fwd_node_get(const struct fwd_node *map, const char *key)
{
	const struct fwd_node *c;

	if (map == NULL || map->type != FWD_NODE_MAP)
		return NULL;
	for (c = map->child; c; c = c->next)
		if (strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

/* The rest of @path after one step into @n (a key of a map, "[i]" of a
 * sequence), recursing; the deepest line reached goes into *@line. A key
 * may hold '.' (a name like "to.br"): the longest key that fits is taken. */
static void line_walk(const struct fwd_node *n, const char *path, uint32_t *line, int root)
{
	if (n->line && !root) /* the document's start is no field's line */
		*line = n->line;
	if (*path == '\0')
		return;
	if (n->type == FWD_NODE_SEQ && path[0] == '[') {
		char *end;
		unsigned long i;
		const struct fwd_node *c = n->child;

		errno = 0;
		i = strtoul(path + 1, &end, 10);
		if (errno || end == path + 1 || *end != ']')
			return;
		while (c && i--)
			c = c->next;
		if (c)
			line_walk(c, end[1] == '.' ? end + 2 : end + 1, line, 0);
		return;
	}
	if (n->type != FWD_NODE_MAP)
		return;
	const struct fwd_node *best = NULL;
	size_t bk = 0;

	for (const struct fwd_node *c = n->child; c; c = c->next) {
		size_t k = strlen(c->key);

		if (k > bk && strncmp(path, c->key, k) == 0 &&
		    (path[k] == '\0' || path[k] == '.' || path[k] == '['))
			best = c, bk = k;
	}
	if (best)
		line_walk(best, path[bk] == '.' ? path + bk + 1 : path + bk, line, 0);
}

uint32_t fwd_node_line_of(const struct fwd_node *root, const char *path)
{
	uint32_t line = 0;

	if (root && path)
		line_walk(root, path, &line, 1);
	return line;
}

int fwd_write_atomic(const char *dir, const char *name, const struct iovec *parts, int n)
{
	return fwd_write_atomic_mode(dir, name, parts, n, 0640);
}

int fwd_write_atomic_mode(const char *dir, const char *name, const struct iovec *parts, int n,
			  mode_t mode)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	struct stat st;
	int fd, dfd, rc = 0;

	/* The temporary file is this process's own (two writers of one name,
	 * two regionfwd given one --stats-json, never rename each other's
	 * half-written file into place). One a crash of a process of the
	 * same pid left behind would keep its own mode through O_TRUNC, or be
	 * a FIFO whose open() never returns: it is made anew, taking @mode
	 * less the umask. */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, name, (long)getpid()) >=
		    sizeof(tmp) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst))
		return -ENAMETOOLONG;
	if (unlink(tmp) < 0 && errno != ENOENT)
		return -errno;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	/* The replacement keeps the mode of the regular file it replaces,
	 * exactly (the umask narrows only the mode we choose); a symlink
	 * there is replaced, not followed, so its target lends nothing. */
	if (lstat(dst, &st) == 0 && S_ISREG(st.st_mode) && fchmod(fd, st.st_mode & 07777) < 0)
		rc = -errno;
	for (int i = 0; i < n && rc == 0; i++) {
		const char *p = parts[i].iov_base;
		size_t off = 0;

		while (off < parts[i].iov_len) {
			ssize_t w = write(fd, p + off, parts[i].iov_len - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = -errno;
				break;
			}
			off += (size_t)w;
		}
	}
	/* A full disk may only show at fsync (delayed allocation) or close. */
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, dst) < 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	/* The rename is durable only once the directory is. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}
