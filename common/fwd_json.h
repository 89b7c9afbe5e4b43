/*
 * fwd_json.h - a fast reader for JSON documents, for tables of a million
 * prefixes and the API bodies that carry them.
 *
 * jansson reads a 23 MB table in about a second, most of it building a
 * tree of json_t that is then walked once and thrown away. This reader
 * walks the text once and hands every value to a sink (the table
 * document's node tree in fwd_doc.c, or a json_t tree below), with no
 * allocation of its own but a scratch buffer for strings with escapes.
 *
 * It reads a strict subset of what jansson accepts and *declines* anything
 * else, without a message: the caller then hands the same text to jansson,
 * which either accepts it (the subset was too narrow: slower, same result)
 * or refuses it with its own message. So every refusal, and its wording,
 * stays jansson's. Declined: anything that is not RFC 8259 JSON (trailing
 * text, invalid UTF-8, control characters in strings, lone surrogates),
 * "\u0000", real numbers and integers of more than 18 digits, nesting deeper
 * than the caller's limit, and whatever the sink declines (duplicate keys).
 */
#ifndef FWD_JSON_H
#define FWD_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "fwd_err.h"

enum fwd_json_kind {
	FWD_JSON_OBJECT, /* start of an object: its members follow, then end() */
	FWD_JSON_ARRAY, /* start of an array: its items follow, then end() */
	FWD_JSON_STRING,
	FWD_JSON_INTEGER,
	FWD_JSON_TRUE,
	FWD_JSON_FALSE,
	FWD_JSON_NULL,
};

struct fwd_json_value {
	enum fwd_json_kind kind;
	/* The member's key (decoded, valid UTF-8 without NUL, not terminated)
	 * when the value is an object's member; NULL otherwise. */
	const char *key;
	size_t key_len;
	/* STRING: the decoded bytes (valid UTF-8 without NUL, not terminated);
	 * INTEGER: its text as written (canonical but for "-0"). Valid only
	 * during the call. */
	const char *str;
	size_t len;
	long long integer; /* INTEGER's value */
	unsigned depth; /* 0 for the document's root */
};

/* Return 0 to go on, FWD_JSON_DECLINED to decline the document, or a
 * negative errno to stop with it. */
struct fwd_json_sink {
	int (*value)(void *arg, const struct fwd_json_value *v);
	int (*end)(void *arg); /* the innermost open object or array ends */
};

#define FWD_JSON_DECLINED 1

/**
 * Read @buf as one JSON value (whitespace around it only), handing each
 * value to @sink in document order.
 * @max_depth: values deeper than this (the root is 0) are declined
 * @any_root:  0: a root that is not an object or array is declined
 * @return 0 read completely; FWD_JSON_DECLINED (nothing said why: let jansson
 *         decide); or a sink's negative errno. On anything but 0 the sink has
 *         seen a prefix of the document only.
 */
int fwd_json_read(const char *buf, size_t len, unsigned max_depth, int any_root,
		  const struct fwd_json_sink *sink, void *arg);

/** fwd_json_read(), and where it stopped (a byte offset in @buf) in @at. */
int fwd_json_read_at(const char *buf, size_t len, unsigned max_depth, int any_root,
		     const struct fwd_json_sink *sink, void *arg, size_t *at);

/* The most values a text the fast reader declined may hold for jansson to
 * read it: jansson builds the whole tree, some 100 bytes a value and no
 * bound of its own, to say what is wrong (a 120 MB array of zeros with one
 * thing the fast reader declines took 5 GB of a regiond, from a read-only
 * client's validate: a probe). */
#define FWD_JSON_SLOW_MAX_VALUES 2000000u

/**
 * json_loadb() of @buf, which the fast reader declined at byte @at, in
 * bounds: past FWD_JSON_SLOW_MAX_VALUES values it is not read (NULL, with
 * @error set as jansson sets a refusal, at @at); and a NUL byte is refused
 * where jansson would take it (it skips one between values as a space:
 * {"a":1<NUL>,"b":2} read as both) or refuse at or past it in other words
 * ("end of file expected near end of file" for one after the value): "a
 * NUL byte ..." at its position. A refusal before it is jansson's own.
 */
json_t *fwd_json_slow_loadb(const char *buf, size_t len, size_t flags, size_t at,
			    json_error_t *error);

/**
 * json_loadb() for @flags of JSON_REJECT_DUPLICATES and JSON_DECODE_ANY only,
 * with the same result and the same errors: documents the fast reader takes
 * are built directly (duplicate keys are declined, whatever @flags say),
 * every other one goes to json_loadb(). On success @error, when given, is
 * set as json_loadb() sets it.
 */
json_t *fwd_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);

/**
 * Whether json_loadb(@buf, @len, @flags) would accept the text, without
 * building its tree (a 200,000-prefix batch is read by its own scanner):
 * the fast reader checks it, duplicate keys included, and what it declines
 * goes to json_loadb(), whose refusal lands in @error.
 * @return 0 accepted, -EINVAL refused (@error set), -ENOMEM
 */
int fwd_json_check(const char *buf, size_t len, size_t flags, json_error_t *error);

/**
 * A request body jansson refused (@je), as every API endpoint answers it:
 * 400 bad_request, file "body", jansson's line, path "", the column and
 * byte in the reason, in this project's words where jansson's name its own
 * flags (\u0000).
 * @return -EINVAL
 */
int fwd_json_body_err(struct fwd_err *e, const json_error_t *je);

/** jansson's error text in this project's words where jansson's name its
 *  own flags (\u0000 ... JSON_ALLOW_NUL), into @buf. @return @buf. */
const char *fwd_json_error_text(const json_error_t *je, char *buf, size_t len);

#endif /* FWD_JSON_H */
