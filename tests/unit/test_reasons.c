/*
 * The error model: every reason of fwd_reasons.def has a name that maps
 * back to it, an errno, an HTTP status (ctl_http.c) and a regionctl exit code
 * (ctl_exit.c) that agree with each other; fwd_err_fail/fwd_err_set return
 * the reason's errno and fill every field.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* The tables are static: test them where they live. */
#include "../../control/ctl_exit.c"
#include "../../control/ctl_http.c"

static void test_every_reason_is_mapped(void **state)
{
	(void)state;
	for (int r = 0; r < FWD_R_MAX; r++) {
		const char *name = fwd_reason_name((enum fwd_reason)r);
		int http = reason_http[r], ex = reason_exit[r];

		print_message("%-24s http %d exit %d errno %d\n", name, http, ex,
			      fwd_reason_errno((enum fwd_reason)r));
		assert_true(name[0] != '\0');
		assert_int_equal(fwd_reason_from_name(name), r);
		assert_true(fwd_reason_errno((enum fwd_reason)r) > 0);
		assert_true(http >= 400 && http <= 599); /* 0: a reason without a status */
		assert_int_equal(ctl_http_status((enum fwd_reason)r), http);
		assert_true(ex == CTL_EXIT_REFUSED || ex == CTL_EXIT_UNREACHABLE ||
			    ex == CTL_EXIT_FAILED);
		assert_int_equal(ctl_exit_code((enum fwd_reason)r), ex);
		/* The two mappings agree: the client's fault is refused, an
		 * absent dataplane unreachable, any other server fault failed. */
		if (http < 500)
			assert_int_equal(ex, CTL_EXIT_REFUSED);
		else if (http == 503)
			assert_int_equal(ex, CTL_EXIT_UNREACHABLE);
		else
			assert_int_equal(ex, CTL_EXIT_FAILED);
	}
}

static void test_names_are_unique(void **state)
{
	(void)state;
	for (int a = 0; a < FWD_R_MAX; a++)
		for (int b = a + 1; b < FWD_R_MAX; b++)
			assert_string_not_equal(fwd_reason_name((enum fwd_reason)a),
						fwd_reason_name((enum fwd_reason)b));
}

static void test_known_pairs(void **state)
{
	(void)state;
	/* What docs/api.md and docs/regionctl.md promise. */
	assert_int_equal(ctl_http_status(FWD_R_BAD_REQUEST), 400);
	assert_int_equal(ctl_http_status(FWD_R_UNAUTHORIZED), 401);
	assert_int_equal(ctl_http_status(FWD_R_UNKNOWN_GENERATION), 404);
	assert_int_equal(ctl_http_status(FWD_R_STALE_GENERATION), 409);
	assert_int_equal(ctl_http_status(FWD_R_BODY_TOO_LARGE), 413);
	assert_int_equal(ctl_http_status(FWD_R_RESIDENCY_VIOLATION), 422);
	assert_int_equal(ctl_http_status(FWD_R_PERSIST_FAILED), 500);
	assert_int_equal(ctl_http_status(FWD_R_DATAPLANE_UNAVAILABLE), 503);
	assert_int_equal(ctl_exit_code(FWD_R_INVALID_TABLE), 1);
	assert_int_equal(ctl_exit_code(FWD_R_DATAPLANE_UNAVAILABLE), 3);
	assert_int_equal(ctl_exit_code(FWD_R_PERSIST_FAILED), 4);
	/* Out of range and unknown codes never read as success. */
	assert_int_equal(ctl_http_status((enum fwd_reason)FWD_R_MAX), 500);
	assert_int_equal(ctl_exit_code((enum fwd_reason)FWD_R_MAX), CTL_EXIT_FAILED);
	assert_int_equal(ctl_exit_code_of("no_such_code", 409), CTL_EXIT_REFUSED);
	assert_int_equal(ctl_exit_code_of("no_such_code", 502), CTL_EXIT_FAILED);
	assert_int_equal(ctl_exit_code_of(NULL, 500), CTL_EXIT_FAILED);
	assert_int_equal(ctl_exit_code_of("stale_generation", 500), CTL_EXIT_REFUSED);
	assert_int_equal(fwd_reason_from_name("INVALID_TABLE"), -1);
	assert_string_equal(fwd_reason_name((enum fwd_reason) - 1), "invalid");
}

static void test_err_fail_fills_and_returns_errno(void **state)
{
	struct fwd_err e;
	char b[600];

	(void)state;
	memset(&e, 0x55, sizeof(e));
	assert_int_equal(fwd_err_fail(&e, FWD_R_STALE_GENERATION, "t.yaml", 7,
				      "expected_generation", "is %d", 3),
			 -ESTALE);
	assert_int_equal(e.reason_code, FWD_R_STALE_GENERATION);
	assert_string_equal(fwd_err_str(&e, b, sizeof(b)), "t.yaml:7: expected_generation: is 3");
	assert_int_equal(fwd_err_fail(NULL, FWD_R_PERSIST_FAILED, NULL, 0, NULL, "x"), -EIO);
	assert_int_equal(fwd_err_set(&e, NULL, 0, NULL, "bad \xff byte"), -EINVAL);
	assert_int_equal(e.reason_code, FWD_R_INVALID);
	assert_string_equal(e.reason, "bad ? byte"); /* hostile bytes made valid UTF-8 */
	assert_string_equal(e.file, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_reason_is_mapped),
		cmocka_unit_test(test_names_are_unique),
		cmocka_unit_test(test_known_pairs),
		cmocka_unit_test(test_err_fail_fills_and_returns_errno),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
