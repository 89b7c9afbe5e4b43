#include "ctl_exit.h"

/* Sized by the reason list; a reason without a row is caught by
 * tests/unit/test_reasons.c (0 would read as success). */
static const unsigned char reason_exit[FWD_R_MAX] = {
	[FWD_R_INVALID] = CTL_EXIT_REFUSED,
	[FWD_R_BAD_REQUEST] = CTL_EXIT_REFUSED,
	[FWD_R_UNAUTHORIZED] = CTL_EXIT_REFUSED,
	[FWD_R_NOT_FOUND] = CTL_EXIT_REFUSED,
	[FWD_R_NO_FILTERS] = CTL_EXIT_REFUSED,
	[FWD_R_UNKNOWN_GENERATION] = CTL_EXIT_REFUSED,
	[FWD_R_NO_TABLE] = CTL_EXIT_REFUSED,
	[FWD_R_STALE_GENERATION] = CTL_EXIT_REFUSED,
	[FWD_R_CONFIRM_PENDING] = CTL_EXIT_REFUSED,
	[FWD_R_NOTHING_TO_CONFIRM] = CTL_EXIT_REFUSED,
	[FWD_R_BODY_TOO_LARGE] = CTL_EXIT_REFUSED,
	[FWD_R_INVALID_TABLE] = CTL_EXIT_REFUSED,
	[FWD_R_RESIDENCY_VIOLATION] = CTL_EXIT_REFUSED,
	[FWD_R_INVALID_PATTERN] = CTL_EXIT_REFUSED,
	[FWD_R_PATTERN_TOO_EXPENSIVE] = CTL_EXIT_REFUSED,
	[FWD_R_INVALID_CHANGE] = CTL_EXIT_REFUSED,
	[FWD_R_INVALID_FILTERS] = CTL_EXIT_REFUSED,
	[FWD_R_DATAPLANE_REFUSED] = CTL_EXIT_REFUSED,
	[FWD_R_FILTER_REFUSED] = CTL_EXIT_REFUSED,
	[FWD_R_DATAPLANE_UNAVAILABLE] = CTL_EXIT_UNREACHABLE,
	[FWD_R_PERSIST_FAILED] = CTL_EXIT_FAILED,
	[FWD_R_STATE_DIR] = CTL_EXIT_FAILED,
	[FWD_R_STATE_CORRUPT] = CTL_EXIT_FAILED,
	[FWD_R_UNKNOWN_OP] = CTL_EXIT_FAILED,
	[FWD_R_UNSUPPORTED_VERSION] = CTL_EXIT_FAILED,
	[FWD_R_INTERNAL] = CTL_EXIT_FAILED,
};

enum ctl_exit ctl_exit_code(enum fwd_reason r)
{
	return (unsigned)r < FWD_R_MAX && reason_exit[r] ? (enum ctl_exit)reason_exit[r]
							 : CTL_EXIT_FAILED;
}

enum ctl_exit ctl_exit_code_of(const char *code, int status)
{
	int r = fwd_reason_from_name(code);

	if (r >= 0)
		return ctl_exit_code((enum fwd_reason)r);
	return status >= 500 ? CTL_EXIT_FAILED : CTL_EXIT_REFUSED;
}
