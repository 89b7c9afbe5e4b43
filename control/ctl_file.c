#include "ctl_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int ctl_file_open(const char *path, unsigned flags, struct stat *st, char *why, size_t whylen)
{
	struct stat seen;
	int fd = 0, wait = 0;

	if (path) {
		/* A named FIFO is opened as a shell's '<' opens it, waiting for
		 * its writer (a first open without waiting, then another, could
		 * miss a writer that came and went in between and wait for
		 * ever); anything else without waiting, so that no device
		 * blocks the open. The name is only looked at: what is checked
		 * is what was opened. */
		wait = (flags & CTL_FILE_PIPE) && stat(path, &seen) == 0 && S_ISFIFO(seen.st_mode);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (wait ? 0 : O_NONBLOCK));
		if (fd < 0) {
			snprintf(why, whylen, "%s", strerror(errno));
			return -1;
		}
	}
	if (fstat(fd, st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		goto fail;
	}
	if (S_ISREG(st->st_mode) ||
	    ((flags & CTL_FILE_DEVNULL) && S_ISCHR(st->st_mode) && st->st_rdev == makedev(1, 3)) ||
	    (path == NULL && isatty(fd)))
		return fd;
	if (S_ISFIFO(st->st_mode) && (flags & CTL_FILE_PIPE)) {
		if (path == NULL ||
		    (wait && st->st_dev == seen.st_dev && st->st_ino == seen.st_ino))
			return fd;
		snprintf(why, whylen, "replaced while it was being opened");
		goto fail;
	}
	if (S_ISDIR(st->st_mode))
		snprintf(why, whylen, "%s", strerror(EISDIR));
	else
		snprintf(why, whylen, "%s",
			 flags & CTL_FILE_PIPE ? "not a regular file or a pipe"
					       : "not a regular file");
fail:
	if (fd > 0)
		close(fd);
	return -1;
}

/* Up to @max bytes of @fd, and one more to tell that there were more.
 * @return their number, or -1 (errno says). */
static ssize_t read_most(int fd, char *buf, size_t max)
{
	size_t got = 0;

	while (got <= max) {
		ssize_t r = read(fd, buf + got, max + 1 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

char *ctl_file_read_from(const char *path, unsigned flags, int secret, const char *what,
			 size_t *lenp, char *why, size_t whylen)
{
	mode_t shared = secret ? (S_IRWXG | S_IRWXO) : what ? (S_IWGRP | S_IWOTH) : 0;
	struct stat sb;
	const char *nul;
	char *buf = NULL;
	size_t max = CTL_FILE_MAX_BYTES;
	ssize_t len;
	int fd;

	/* A named FIFO with a loose mode is refused before its open waits for
	 * a writer that may never come: the operator hears why at once. The
	 * check after the open below stays the one that counts. */
	if (path && (flags & CTL_FILE_PIPE) && stat(path, &sb) == 0 && S_ISFIFO(sb.st_mode) &&
	    (sb.st_mode & shared))
		fd = -1;
	else if ((fd = ctl_file_open(path, flags, &sb, why, whylen)) < 0)
		return NULL;
	if ((S_ISREG(sb.st_mode) || S_ISFIFO(sb.st_mode)) && (sb.st_mode & shared)) {
		snprintf(why, whylen, "mode %04o lets its group or others %s; chmod %s it",
			 (unsigned)(sb.st_mode & 07777),
			 secret ? (what ? what : "read or change it") : what,
			 secret ? "600" : "644");
		goto out;
	}
	/* A regular file's size is known; a pipe's is not, and the bound
	 * holds while reading it. */
	if (S_ISREG(sb.st_mode)) {
		if ((unsigned long long)sb.st_size > CTL_FILE_MAX_BYTES) {
			snprintf(why, whylen, "larger than %u bytes", CTL_FILE_MAX_BYTES);
			goto out;
		}
		max = (size_t)sb.st_size;
	}
	if ((buf = malloc(max + 2)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	if ((len = read_most(fd, buf, max)) < 0 || (size_t)len > max) {
		/* A regular file that grew past its size while read (being
		 * written) would be taken cut short: a token or a key half
		 * there. */
		if (len < 0)
			snprintf(why, whylen, "cannot read: %s", strerror(errno));
		else if (S_ISREG(sb.st_mode))
			snprintf(why, whylen, "changed while it was read; try again");
		else
			snprintf(why, whylen, "larger than %u bytes", CTL_FILE_MAX_BYTES);
		goto bad;
	}
	buf[len] = '\0';
	if ((nul = memchr(buf, '\0', (size_t)len)) != NULL) {
		unsigned line = 1;

		for (const char *p = buf; p < nul; p++)
			line += *p == '\n';
		snprintf(why, whylen, "line %u holds a NUL byte", line);
		goto bad;
	}
	if (lenp)
		*lenp = (size_t)len;
	goto out;
bad:
	explicit_bzero(buf, max + 2);
	free(buf);
	buf = NULL;
out:
	if (fd > 0)
		close(fd);
	return buf;
}

char *ctl_file_read(const char *path, int secret, const char *what, size_t *lenp, char *why,
		    size_t whylen)
{
	return ctl_file_read_from(path, 0, secret, what, lenp, why, whylen);
}
