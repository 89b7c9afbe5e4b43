/*
 * fwd_doc.h - read a YAML or JSON document into one tree of nodes that
 * remembers each node's line, so validators name the line and the field.
 *
 * YAML is read with libyaml, JSON with jansson; both are refused when they
 * carry what a configuration never needs and an attacker loves: aliases and
 * anchors (YAML bombs), several documents in one stream, duplicate keys,
 * nesting deeper than FWD_DOC_MAX_DEPTH, or more than FWD_DOC_MAX_NODES.
 * Scalars are kept as text; the validator decides what type a field is, so
 * YAML 1.1 surprises (`no` as false, `010` as octal) never happen.
 *
 * The tree is immutable and owned by the fwd_doc; fwd_doc_free() frees all.
 */
#ifndef FWD_DOC_H
#define FWD_DOC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "fwd_err.h"
#include "fwd_hash.h"

#define FWD_DOC_MAX_DEPTH 32
#define FWD_DOC_MAX_NODES 50000000u
#define FWD_DOC_MAX_BYTES (1024u * 1024u * 1024u)

enum fwd_node_type {
	FWD_NODE_NULL, /* YAML ~, null or empty; JSON null */
	FWD_NODE_SCALAR, /* string, number or boolean, as text */
	FWD_NODE_SEQ,
	FWD_NODE_MAP,
};

struct fwd_node {
	const char *key; /* key when this node is a map value, else NULL */
	const char *str; /* scalar text; "" for other types */
	struct fwd_node *child; /* first item / first value of a SEQ or MAP */
	struct fwd_node *next; /* next sibling */
	uint32_t line; /* 1-based, 0 for JSON */
	uint32_t count; /* items (SEQ) or keys (MAP) */
	uint8_t type; /* enum fwd_node_type */
	uint8_t quoted; /* scalar was a quoted string */
};

struct fwd_doc;

/**
 * Parse a document held in memory.
 * @param name  name used in errors (a file name, "request", ...)
 * @param json  1: JSON, 0: YAML, -1: JSON when the first non-blank byte is
 *              '{' or '[', YAML otherwise
 * @return the document, or NULL with @err filled
 */
struct fwd_doc *fwd_doc_parse(const char *buf, size_t len, const char *name, int json,
			      struct fwd_err *err);

/* JSON goes through the fast reader first (fwd_json.h), jansson for what it
 * declines. 0 here sends every JSON document the old way, through jansson's
 * tree alone: for the tests that compare the two ways. */
extern int fwd_doc_json_fast;

/** Read and parse a file; JSON when it ends in .json or starts with '{'. */
struct fwd_doc *fwd_doc_load(const char *path, struct fwd_err *err);

/**
 * Read a whole regular file (at most FWD_DOC_MAX_BYTES) into a NUL-terminated
 * malloc'd buffer. @return 0, or -errno with @err filled
 */
int fwd_read_file(const char *path, char **buf, size_t *len, struct fwd_err *err);

/** fwd_read_file() of an open descriptor (read from its current offset);
 *  @path names it in @err. The caller closes @fd. */
int fwd_read_fd(int fd, const char *path, char **buf, size_t *len, struct fwd_err *err);

/**
 * Write @dir/@name atomically and durably from @n parts: a hidden temporary
 * file written and fsync'd, renamed over @name, then the directory fsync'd,
 * so a crash at any instant leaves the old file or the new one, never a mix.
 * A new file is created 0640 (less the umask); one replacing a regular file
 * keeps that file's mode, so an operator's chmod survives the next write.
 * @return 0 or -errno (nothing changed: the temporary file is removed)
 */
int fwd_write_atomic(const char *dir, const char *name, const struct iovec *parts, int n);

/** fwd_write_atomic() creating a new file with @mode (less the umask). */
int fwd_write_atomic_mode(const char *dir, const char *name, const struct iovec *parts, int n,
			  mode_t mode);

const struct fwd_node *fwd_doc_root(const struct fwd_doc *doc);
const char *fwd_doc_name(const struct fwd_doc *doc);

/** The document's first YAML tag other than !!str ("tag:yaml.org,2002:binary",
 *  "!foo"), and its line in *@line; NULL (line 0) when it has none. Read as
 *  if it were not there; a table being written is refused for it
 *  (fwd_table_check_written). */
const char *fwd_doc_tag(const struct fwd_doc *doc, uint32_t *line);
void fwd_doc_free(struct fwd_doc *doc);

/** Value of @key in a MAP node, or NULL. */
const struct fwd_node *fwd_node_get(const struct fwd_node *map, const char *key);

/** The line of the node an error's field path names ("links.to-br.port",
 *  "content_rules[1].services[0]") below @root, or of the deepest node of
 *  it that is there; 0 when none is (or the document is JSON). For a
 *  refusal of a document the reader never saw as written (regionctl's
 *  embedded names files make it compact JSON), said at the line of the one
 *  they wrote. */
uint32_t fwd_node_line_of(const struct fwd_node *root, const char *path);

#endif /* FWD_DOC_H */
