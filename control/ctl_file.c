#include "ctl_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fwd_doc.h" /* fwd_read_fd */
#include "fwd_err.h"

char *ctl_file_read(const char *path, int secret, const char *what, size_t *lenp, char *why,
		    size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	mode_t shared = secret ? (S_IRWXG | S_IRWXO) : what ? (S_IWGRP | S_IWOTH) : 0;
	struct fwd_err e = {0};
	struct stat sb;
	const char *nul;
	char *buf = NULL;
	size_t len = 0;

	if (fd < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return NULL;
	}
	/* Checked on what was opened, not on the name (which may change). */
	if (fstat(fd, &sb) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		goto out;
	}
	if (sb.st_mode & shared) {
		snprintf(why, whylen, "mode %04o lets its group or others %s; chmod %s it",
			 (unsigned)(sb.st_mode & 07777),
			 secret ? (what ? what : "read or change it") : what,
			 secret ? "600" : "644");
		goto out;
	}
	if ((unsigned long long)sb.st_size > CTL_FILE_MAX_BYTES) {
		snprintf(why, whylen, "larger than %u bytes", CTL_FILE_MAX_BYTES);
		goto out;
	}
	if (fwd_read_fd(fd, path, &buf, &len, &e)) {
		snprintf(why, whylen, "%s", e.reason);
		buf = NULL;
		goto out;
	}
	if ((nul = memchr(buf, '\0', len)) != NULL) {
		unsigned line = 1;

		for (const char *p = buf; p < nul; p++)
			line += *p == '\n';
		snprintf(why, whylen, "line %u holds a NUL byte", line);
		explicit_bzero(buf, len);
		free(buf);
		buf = NULL;
		goto out;
	}
	if (lenp)
		*lenp = len;
out:
	close(fd);
	return buf;
}
