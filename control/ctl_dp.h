/*
 * ctl_dp.h - regiond's client of regionfwd's control socket (dp_ctl.h):
 * connect, send one request, wait for its response, with a deadline.
 * A failed call closes the connection; the next call reconnects.
 */
#ifndef CTL_DP_H
#define CTL_DP_H

#include <jansson.h>

struct ctl_dp;

/** @return a handle (not yet connected), or NULL with errno */
struct ctl_dp *ctl_dp_create(const char *path);
void ctl_dp_free(struct ctl_dp *dp);

/** 1 when the last call reached regionfwd. */
int ctl_dp_connected(const struct ctl_dp *dp);

/**
 * Send {"v": 1, "op": @op, ...@args} and return the response object (new
 * reference), or NULL when regionfwd is unreachable or the reply is broken
 * (errno set). @args is not consumed.
 */
json_t *ctl_dp_call(struct ctl_dp *dp, const char *op, json_t *args, int timeout_ms);

#endif /* CTL_DP_H */
