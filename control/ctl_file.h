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
#include <sys/stat.h>

/* The largest such file: a CA bundle as Debian ships it
 * (/etc/ssl/certs/ca-certificates.crt) is about 220 KB. */
#define CTL_FILE_MAX_BYTES (1024u * 1024u)

/* What ctl_file_open() and ctl_file_read_from() take besides a regular
 * file. A daemon takes neither: it must not wait at start. */
#define CTL_FILE_PIPE                                                                              \
	1u /* a pipe: anonymous (<(cmd), /dev/stdin) or a named FIFO,
			    whose open waits for its writer as a shell's '<' does */
#define CTL_FILE_DEVNULL 2u /* /dev/null, which reads as empty */

/**
 * @path opened for reading and checked on the open descriptor (its stat in
 * @st): a regular file, or what @flags allow. @path NULL: standard input
 * (fd 0), which may also be a terminal. Anything else is opened without
 * waiting (O_NONBLOCK), so a device such as /dev/zero or a FIFO not allowed
 * is refused, not read or waited on; a named FIFO allowed is opened waiting
 * for its writer, and must be the file the name showed before (st_dev and
 * st_ino). A symbolic link is followed.
 * @return the descriptor, or -1 with the reason in @why (without the path)
 */
int ctl_file_open(const char *path, unsigned flags, struct stat *st, char *why, size_t whylen);

/**
 * The text of file @path, opened with ctl_file_open(@flags): of at most
 * CTL_FILE_MAX_BYTES (a pipe has no size: the bound holds while reading),
 * without a NUL byte (text cut at a NUL would silently lose the rest of
 * the file). Certificates are often symbolic links (certbot's live/).
 *
 * A @secret (a token, a key) that its group or others may read or write is
 * refused: anyone who can read it holds the credential. Otherwise, with
 * @what (what the file decides, e.g. "change whom it trusts"), a file its
 * group or others may write is refused; @what NULL: any mode. (A named
 * FIFO's mode is checked once its writer has opened it.)
 *
 * @return the text, NUL-terminated and malloc'd (its length in @len unless
 * NULL), or NULL with the reason in @why (without the option or the path:
 * the caller names them)
 */
char *ctl_file_read_from(const char *path, unsigned flags, int secret, const char *what,
			 size_t *len, char *why, size_t whylen);

/** ctl_file_read_from() of a regular file only. */
char *ctl_file_read(const char *path, int secret, const char *what, size_t *len, char *why,
		    size_t whylen);

#endif /* CTL_FILE_H */
