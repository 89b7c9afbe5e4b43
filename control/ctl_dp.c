#include "ctl_dp.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct ctl_dp {
	char path[108];
	int fd;
};

struct ctl_dp *ctl_dp_create(const char *path)
{
	struct ctl_dp *dp;

	if (strlen(path) >= sizeof(dp->path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	dp = calloc(1, sizeof(*dp));
	if (dp == NULL)
		return NULL;
	strcpy(dp->path, path);
	dp->fd = -1;
	return dp;
}

void ctl_dp_free(struct ctl_dp *dp)
{
	if (dp == NULL)
		return;
	if (dp->fd >= 0)
		close(dp->fd);
	free(dp);
}

int ctl_dp_connected(const struct ctl_dp *dp)
{
	return dp->fd >= 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int64_t left = deadline - now_ms();
	int rc;

	if (left <= 0)
		return -ETIMEDOUT;
	rc = poll(&p, 1, (int)left);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	return rc == 0 ? -ETIMEDOUT : 0;
}

static int xfer(struct ctl_dp *dp, char *buf, size_t len, int out, int64_t deadline)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;
		int rc = wait_fd(dp->fd, out ? POLLOUT : POLLIN, deadline);

		if (rc)
			return rc;
		n = out ? send(dp->fd, buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT)
			: recv(dp->fd, buf + done, len - done, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

static int dp_connect(struct ctl_dp *dp)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	strcpy(sa.sun_path, dp->path);
	dp->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (dp->fd < 0)
		return -errno;
	if (connect(dp->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = -errno;

		close(dp->fd);
		dp->fd = -1;
		return rc;
	}
	return 0;
}

json_t *ctl_dp_call(struct ctl_dp *dp, const char *op, json_t *args, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	json_t *req = json_pack("{s:i, s:s}", "v", 1, "op", op), *resp = NULL;
	char *body = NULL, hdr[4];
	size_t n;
	int rc = 0;

	if (req == NULL)
		return NULL;
	if (args)
		json_object_update(req, args);
	if (dp->fd < 0 && (rc = dp_connect(dp)))
		goto out;
	n = json_dumpb(req, NULL, 0, JSON_COMPACT);
	body = malloc(n + 4);
	if (body == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	json_dumpb(req, body + 4, n, JSON_COMPACT);
	body[0] = (char)(n >> 24);
	body[1] = (char)(n >> 16);
	body[2] = (char)(n >> 8);
	body[3] = (char)n;
	if ((rc = xfer(dp, body, n + 4, 1, deadline)) || (rc = xfer(dp, hdr, 4, 0, deadline)))
		goto out;
	free(body);
	n = (size_t)(uint8_t)hdr[0] << 24 | (size_t)(uint8_t)hdr[1] << 16 |
	    (size_t)(uint8_t)hdr[2] << 8 | (uint8_t)hdr[3];
	body = malloc(n ? n : 1);
	if (body == NULL || n == 0 || n > (1u << 30)) {
		rc = -EPROTO;
		goto out;
	}
	if ((rc = xfer(dp, body, n, 0, deadline)))
		goto out;
	resp = json_loadb(body, n, 0, NULL);
	if (resp == NULL || !json_is_object(resp))
		rc = -EPROTO;
out:
	free(body);
	json_decref(req);
	if (rc) {
		json_decref(resp);
		resp = NULL;
		if (dp->fd >= 0) {
			close(dp->fd);
			dp->fd = -1;
		}
		errno = -rc;
	}
	return resp;
}
