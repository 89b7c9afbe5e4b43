/*
 * Residency guard tests (common/fwd_residency.c): tables that would carry a
 * region's protected services on a link without an allowed tag are refused,
 * naming the rule and the policy; precedence is honoured (the check sees the
 * policy that really applies), groups and mirrors included.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fwd_residency.h"

#define HEAD                                                                                       \
	"regions: {in: {prefixes: [10.0.0.0/8]}, sg: {prefixes: [11.0.0.0/8]}}\n"                  \
	"services: {sync: [tcp/7000], web: [tcp/443]}\n"                                           \
	"links:\n"                                                                                 \
	"  local: {port: p0, next_hop_mac: '02:00:00:00:00:01', tags: [in]}\n"                     \
	"  local2: {port: p0, next_hop_mac: '02:00:00:00:00:03', tags: [in, dr]}\n"                \
	"  to-sg: {port: p1, next_hop_mac: '02:00:00:00:00:02', tags: [sg]}\n"                     \
	"link_groups:\n"                                                                           \
	"  both: {members: {local: 1, to-sg: 1}}\n"                                                \
	"  india: {members: {local: 1, local2: 1}}\n"                                              \
	"  drained: {members: {local: 1, to-sg: 0}}\n"                                             \
	"residency:\n"                                                                             \
	"  - {name: keep-sync, region: in, services: [sync], allowed_tags: [in]}\n"

static int check(const char *doc, char *msg, size_t len)
{
	struct fwd_err err = {0};
	struct fwd_table *t = fwd_table_parse(doc, strlen(doc), "r.yaml", 0, &err);
	struct fwd_class *c;
	int rc;

	if (t == NULL) {
		fwd_err_str(&err, msg, len);
		return -EINVAL;
	}
	c = fwd_class_build(t);
	rc = fwd_residency_check(t, c, &err);
	msg[0] = '\0';
	if (rc)
		fwd_err_str(&err, msg, len);
	fwd_class_free(c);
	fwd_table_free(t);
	return rc;
}

static void test_allowed(void **state)
{
	char msg[512];

	(void)state;
	assert_int_equal(check(HEAD "policies:\n"
				    "  - {region: in, service: sync, action: steer, to: local}\n"
				    "  - {region: in, service: web, action: steer, to: to-sg}\n"
				    "  - {region: any, service: sync, action: steer, to: to-sg}\n",
			       msg, sizeof(msg)),
			 0);
	/* A group of allowed links, a drained foreign member, a drop: all fine. */
	assert_int_equal(
		check(HEAD "policies:\n  - {region: in, service: sync, action: steer, to: india}\n",
		      msg, sizeof(msg)),
		0);
	assert_int_equal(
		check(HEAD
		      "policies:\n  - {region: in, service: sync, action: steer, to: drained}\n",
		      msg, sizeof(msg)),
		0);
	assert_int_equal(check(HEAD "policies:\n  - {region: in, service: any, action: drop}\n",
			       msg, sizeof(msg)),
			 0);
}

static void test_refused(void **state)
{
	char msg[512];

	(void)state;
	assert_int_equal(
		check(HEAD "policies:\n  - {region: in, service: sync, action: steer, to: to-sg}\n",
		      msg, sizeof(msg)),
		-EPERM);
	assert_string_equal(
		msg, "r.yaml:14: policies[0]: breaks residency rule 'keep-sync': region 'in' "
		     "service 'sync' steers to link 'to-sg' (tags: sg; allowed: in)");
	/* Precedence: (in, any) applies to sync when no (in, sync) policy exists. */
	assert_int_equal(check(HEAD "policies:\n"
				    "  - {region: any, service: sync, action: steer, to: local}\n"
				    "  - {region: in, service: any, action: steer, to: to-sg}\n",
			       msg, sizeof(msg)),
			 -EPERM);
	assert_string_equal(
		msg, "r.yaml:15: policies[1]: breaks residency rule 'keep-sync': region 'in' "
		     "service 'sync' steers to link 'to-sg' (tags: sg; allowed: in)");
	/* The default applies when nothing else does. */
	assert_int_equal(check(HEAD "default: {action: steer, to: to-sg}\n", msg, sizeof(msg)),
			 -EPERM);
	assert_string_equal(msg,
			    "r.yaml:13: default: breaks residency rule 'keep-sync': region 'in' "
			    "service 'sync' steers to link 'to-sg' (tags: sg; allowed: in)");
	/* A group that could fail over out of region. */
	assert_int_equal(
		check(HEAD "policies:\n  - {region: in, service: sync, action: steer, to: both}\n",
		      msg, sizeof(msg)),
		-EPERM);
	assert_string_equal(
		msg,
		"r.yaml:14: policies[0]: breaks residency rule 'keep-sync': region 'in' "
		"service 'sync' steers to group 'both' with link 'to-sg' (tags: sg; allowed: in)");
	/* A copy is data leaving too. */
	assert_int_equal(check(HEAD "policies:\n  - {region: in, service: sync, action: steer, to: "
				    "local, mirror: to-sg}\n",
			       msg, sizeof(msg)),
			 -EPERM);
	assert_string_equal(
		msg, "r.yaml:14: policies[0]: breaks residency rule 'keep-sync': region 'in' "
		     "service 'sync' mirrors to link 'to-sg' (tags: sg; allowed: in)");
}

static void test_any_services(void **state)
{
	char msg[512];
	const char *doc =
		"regions: {in: {prefixes: [10.0.0.0/8]}}\n"
		"services: {web: [tcp/443]}\n"
		"links: {x: {port: p0, next_hop_mac: '02:00:00:00:00:01', tags: [us]}}\n"
		"policies: [{region: in, service: web, action: drop}]\n"
		"default: {action: steer, to: x}\n"
		"residency: [{name: all-in, region: in, services: [any], allowed_tags: [in]}]\n";

	(void)state;
	/* web is dropped, but 'other' traffic of region in takes the default. */
	assert_int_equal(check(doc, msg, sizeof(msg)), -EPERM);
	assert_string_equal(msg, "r.yaml:5: default: breaks residency rule 'all-in': region 'in' "
				 "service 'other' steers to link 'x' (tags: us; allowed: in)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_any_services),
	};

	return cmocka_run_group_tests_name("residency", tests, NULL, NULL);
}
