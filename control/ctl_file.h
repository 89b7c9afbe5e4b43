/*
 * ctl_file.h - the small text files regiond and regionctl are given by
 * path (tokens, PEM certificates, keys and CAs, --tls-writers, passwords):
 * read whole, or refused with the reason before anything uses them, so
 * that /dev/zero, a FIFO or a huge file is named at once rather than read
 * for ever, waited on, or read by GnuTLS or libcurl behind our back.
 */
#ifndef CTL_FILE_H
#define CTL_FILE_H

#include <stddef.h>

/* The largest such file: a CA bundle as Debian ships it
 * (/etc/ssl/certs/ca-certificates.crt) is about 220 KB. */
#define CTL_FILE_MAX_BYTES (1024u * 1024u)

/**
 * The text of file @path. It is opened without waiting (O_NONBLOCK: a
 * FIFO is refused, not waited on for a writer) and checked on the open
 * descriptor: a regular file (not a device such as /dev/zero, a FIFO or a
 * directory), of at most CTL_FILE_MAX_BYTES, without a NUL byte (text cut
 * at a NUL would silently lose the rest of the file). A symbolic link is
 * followed: certificates are often links (certbot's live/ directory).
 *
 * A @secret (a token, a key) that its group or others may read or write is
 * refused: anyone who can read it holds the credential. Otherwise, with
 * @what (what the file decides, e.g. "change whom it trusts"), a file its
 * group or others may write is refused; @what NULL: any mode.
 *
 * @return the text, NUL-terminated and malloc'd (its length in @len unless
 * NULL), or NULL with the reason in @why (without the option or the path:
 * the caller names them)
 */
char *ctl_file_read(const char *path, int secret, const char *what, size_t *len, char *why,
		    size_t whylen);

#endif /* CTL_FILE_H */
