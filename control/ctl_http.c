#include "ctl_http.h"

/* The one place a reason becomes an HTTP status (docs/api.md lists them).
 * Sized by the reason list: a reason added to fwd_reasons.def without a
 * status here is caught by the unit test of this table (0 is no status). */
static const unsigned short reason_http[FWD_R_MAX] = {
	[FWD_R_INVALID] = 400,
	[FWD_R_BAD_REQUEST] = 400,
	[FWD_R_UNAUTHORIZED] = 401,
	[FWD_R_FORBIDDEN] = 403,
	[FWD_R_NOT_FOUND] = 404,
	[FWD_R_NO_FILTERS] = 404,
	[FWD_R_UNKNOWN_GENERATION] = 404,
	[FWD_R_NO_TABLE] = 404,
	[FWD_R_STALE_GENERATION] = 409,
	[FWD_R_CONFIRM_PENDING] = 409,
	[FWD_R_HELD_BACK] = 409,
	[FWD_R_NOTHING_TO_CONFIRM] = 409,
	[FWD_R_BODY_TOO_LARGE] = 413,
	[FWD_R_UPLOADS_FULL] = 503, /* regiond's, for now: the request may come again */
	[FWD_R_INVALID_TABLE] = 422,
	[FWD_R_RESIDENCY_VIOLATION] = 422,
	[FWD_R_INVALID_PATTERN] = 422,
	[FWD_R_PATTERN_TOO_EXPENSIVE] = 422,
	[FWD_R_INVALID_CHANGE] = 422,
	[FWD_R_INVALID_DELTA] = 422,
	[FWD_R_DELTA_BASE_MISMATCH] = 502,
	[FWD_R_INVALID_FILTERS] = 422,
	[FWD_R_FILTER_REFUSED] = 422,
	[FWD_R_DATAPLANE_REFUSED] = 422,
	[FWD_R_DATAPLANE_UNAVAILABLE] = 503,
	[FWD_R_PUSH_EXPIRED] = 503,
	[FWD_R_DATAPLANE_BROKEN] = 502,
	[FWD_R_PERSIST_FAILED] = 500,
	[FWD_R_STATE_DIR] = 500,
	[FWD_R_STATE_CORRUPT] = 500,
	[FWD_R_UNKNOWN_OP] = 502,
	[FWD_R_UNSUPPORTED_VERSION] = 502,
	[FWD_R_INVALID_CAPTURE] = 422,
	[FWD_R_CAPTURE_BUSY] = 409,
	[FWD_R_NO_CAPTURE] = 404,
	[FWD_R_ETCD_UNAVAILABLE] = 503,
	[FWD_R_ETCD_ERROR] = 502,
	[FWD_R_ETCD_COMPACTED] = 502,
	[FWD_R_FLEET_MANAGED] = 409,
	[FWD_R_INVALID_FLEET_KEY] = 422,
	[FWD_R_UNSUPPORTED_SCHEMA] = 422,
	[FWD_R_FACILITY_MISMATCH] = 422,
	[FWD_R_HASH_MISMATCH] = 422,
	[FWD_R_ROLLOUT_IN_PROGRESS] = 409,
	[FWD_R_NO_ROLLOUT] = 404,
	[FWD_R_NO_PIN] = 404,
	[FWD_R_NOT_FLEET] = 404,
	[FWD_R_ROLLOUT_ABORTED] = 409,
	[FWD_R_INTERNAL] = 500,
	[FWD_R_STOPPING] = 503, /* nothing changed: try again once regiond is back */
};

int ctl_http_status(enum fwd_reason r)
{
	return (unsigned)r < FWD_R_MAX && reason_http[r] ? reason_http[r] : 500;
}
