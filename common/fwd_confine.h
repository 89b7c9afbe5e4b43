/*
 * fwd_confine.h - read a file a table document names (a content rule's
 * `names_file`) only from where that document may reach.
 *
 * The document is often written by someone else (another team's
 * automation, a colleague) and applied by an operator, maybe as root: were
 * its path followed anywhere, `names_file: /etc/shadow` would copy what the
 * operator can read into the table, which everyone who may read the API
 * sees. So the path is relative, has no '..' component, and resolves
 * beneath the document's own directory; or, absolute, beneath a directory
 * the operator named on the command line (regionctl --names-dir), which a
 * document cannot give itself. The file is a regular file (a FIFO would
 * hang the reader, a device has no end and opening one can have effects)
 * of at most FWD_DOC_MAX_BYTES, readable by others (mode o+r): the
 * directory alone confines little when the document lies next to secrets
 * (/etc/regionfwd/table.yaml beside credentials/) or in '/' or a home
 * directory, and a file its owner keeps private is no list for everyone.
 *
 * Nothing is opened for reading before its type and mode are known: the
 * path is opened with O_PATH (which opens nothing), checked with fstat,
 * then reopened for reading through /proc/self/fd (the same inode). The
 * O_PATH open cannot leave the tree: openat2(RESOLVE_BENEATH) on Linux >=
 * 5.6 (symlinks must then be relative and stay inside); where the kernel
 * lacks it (or a seccomp filter hides it), a walk of one O_PATH|O_NOFOLLOW
 * open per component, each relative to the one before, which refuses every
 * symlink (where one leads cannot be checked there without a race).
 */
#ifndef FWD_CONFINE_H
#define FWD_CONFINE_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_err.h"

struct fwd_confine {
	const char *dir; /* the document's directory: "" (the working one) or ending in '/' */
	const char *trusted; /* NULL, or an absolute directory the operator allowed */
	/* Where a refusal is reported: the document, the field's line and its
	 * path (content_rules[N].names_file). */
	const char *doc;
	uint32_t line;
	const char *field;
};

/**
 * Read @name (as the document wrote it) into a NUL-terminated malloc'd
 * buffer. @return 0; or -errno with @err naming the field: refused (an
 * absolute path outside @trusted, a '..', out of the tree, a symlink
 * without openat2, not a regular file, not readable by others, too large)
 * or unreadable (cannot be opened or read: "'PATH': cannot open: ..."),
 * either way with the document and the field's line as the place, the
 * path as the document wrote it. The file's content is never in @err.
 */
int fwd_read_confined(const struct fwd_confine *w, const char *name, char **buf, size_t *len,
		      struct fwd_err *err);

/** Tests only: nonzero takes the path without openat2(), as on an older kernel. */
extern int fwd_confine_no_openat2;

#endif /* FWD_CONFINE_H */
