/*
 * fwd_embed.h - make a table document self-contained before it leaves the
 * host it was written on: every content rule's `names_file: PATH` (beneath
 * the document's directory: fwd_confine.h) is replaced by the embedded form
 * `{path, hash, text}` (the file's text and its fwd_hash64), so regiond,
 * regionfwd, the generation history and a restart from the saved table all
 * see the same names, and a changed file is a different document, hence a
 * different generation.
 *
 * A document without such a path is returned as it is (no copy). One with
 * them is rewritten as compact JSON (scalars as strings, which the
 * validator reads as it reads YAML scalars); the lines of the original are
 * lost for its other fields (regionctl finds a refusal's field in the file
 * as written: fwd_node_line_of), the lines of each names file are not (the
 * embedded text keeps them).
 */
#ifndef FWD_EMBED_H
#define FWD_EMBED_H

#include <stddef.h>

#include "fwd_err.h"

/**
 * @param dir  directory a relative path starts from ("" or ending in '/')
 * @param trusted  NULL, or a directory the operator allowed absolute paths
 *                 beneath (fwd_confine.h: the only other place a names file
 *                 may be read from)
 * @return 0 with *@out NULL (nothing to embed) or a malloc'd document of
 *         *@outlen bytes; or -errno with @err naming the rule's field (an
 *         unreadable file, text that is not UTF-8, a document that does not
 *         parse)
 */
int fwd_embed_names(const char *buf, size_t len, const char *name, const char *dir,
		    const char *trusted, char **out, size_t *outlen, struct fwd_err *err);

#endif /* FWD_EMBED_H */
