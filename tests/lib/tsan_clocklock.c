/*
 * LD_PRELOAD for a ThreadSanitizer run of regiond (docs/testing.md): GCC
 * 12's libtsan does not intercept pthread_mutex_clocklock, so it misses the
 * acquisition and reports the unlock as one of an unlocked mutex. This
 * routes the call through pthread_mutex_timedlock, which it intercepts,
 * with the deadline moved to CLOCK_REALTIME (a clock step during the wait
 * only lengthens or shortens one bounded wait of a test run).
 *
 *   gcc -shared -fPIC -O2 -o build-tsan/libclocklock.so tests/lib/tsan_clocklock.c
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>

int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock, const struct timespec *deadline);

int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock, const struct timespec *deadline)
{
	struct timespec on_clock, real, at;
	long long left;

	if (clock == CLOCK_REALTIME)
		return pthread_mutex_timedlock(m, deadline);
	clock_gettime(clock, &on_clock);
	clock_gettime(CLOCK_REALTIME, &real);
	left = (deadline->tv_sec - on_clock.tv_sec) * 1000000000LL +
	       (deadline->tv_nsec - on_clock.tv_nsec);
	if (left < 0)
		left = 0;
	left += real.tv_nsec;
	at.tv_sec = real.tv_sec + (time_t)(left / 1000000000LL);
	at.tv_nsec = (long)(left % 1000000000LL);
	return pthread_mutex_timedlock(m, &at);
}
