/*
 * ctl_http.h - the one place where a reason (fwd_reasons.def) becomes an
 * HTTP status of regiond's API. docs/api.md lists the pairs.
 */
#ifndef CTL_HTTP_H
#define CTL_HTTP_H

#include "fwd_err.h"

/** The HTTP status for @r; 500 for a value outside the list. */
int ctl_http_status(enum fwd_reason r);

#endif /* CTL_HTTP_H */
