/*
 * test_counters_read - dp_counters_read(), the one reader of a worker's
 * counters (dp_worker.c): a copy consistent across fields while the worker
 * accounts bursts.
 *   - quiet counters: an exact copy;
 *   - a worker that accounts bursts without pause (a writer thread that
 *     raises rx, tx and a drop together inside each open/close): every
 *     copy has rx == tx + drop, however little time the writer leaves
 *     between its bursts (a bound on the reader's tries, with a copy field
 *     by field after it, once gave sums a burst off under load).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <rte_log.h>

#include "dp_log.h"
#include "dp_worker.h"

RTE_LOG_REGISTER_DEFAULT(dp_logtype, WARNING); /* dp_log.h's logtype */

static void test_quiet_counters_are_copied_exactly(void **state)
{
	struct dp_counters c, out;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.seq = 42;
	c.rx = 7;
	c.tx_bytes = 1u << 20;
	c.drop[FWD_DROP_MAX - 1] = 3;
	c.evt[0] = 9;
	memset(&out, 0xa5, sizeof(out));
	dp_counters_read(&c, &out);
	assert_memory_equal(&c, &out, sizeof(c));
}

struct busy {
	struct dp_counters c;
	int stop;
};

/* As the worker does (cnt_open/cnt_close): odd, the fields, even. */
static void *busy_worker(void *arg)
{
	struct busy *b = arg;

	while (!__atomic_load_n(&b->stop, __ATOMIC_RELAXED)) {
		__atomic_store_n(&b->c.seq, b->c.seq + 1, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		__atomic_store_n(&b->c.rx, b->c.rx + 3, __ATOMIC_RELAXED);
		__atomic_store_n(&b->c.tx, b->c.tx + 2, __ATOMIC_RELAXED);
		__atomic_store_n(&b->c.drop[0], b->c.drop[0] + 1, __ATOMIC_RELAXED);
		__atomic_store_n(&b->c.seq, b->c.seq + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void test_copies_agree_while_bursts_are_accounted(void **state)
{
	static struct busy b;
	pthread_t t;
	uint64_t last = 0;

	(void)state;
	memset(&b, 0, sizeof(b));
	assert_int_equal(pthread_create(&t, NULL, busy_worker, &b), 0);
	for (unsigned i = 0; i < 20000; i++) {
		struct dp_counters out;

		dp_counters_read(&b.c, &out);
		assert_true(out.seq % 2 == 0);
		assert_true(out.rx == out.tx + out.drop[0]);
		assert_true(out.rx >= last); /* never a copy older than the last */
		last = out.rx;
	}
	__atomic_store_n(&b.stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quiet_counters_are_copied_exactly),
		cmocka_unit_test(test_copies_agree_while_bursts_are_accounted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
