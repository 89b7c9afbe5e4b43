/*
 * fwd_clock.h - the project's clock readings, in one place.
 *
 * Monotonic time (CLOCK_MONOTONIC) for ages, deadlines and timeouts: it
 * never jumps when an operator or NTP sets the clock. Wall time
 * (CLOCK_REALTIME) only where a time is shown, stored or compared with
 * another box's. Condition variables waited on with a deadline are made
 * with fwd_cond_init_mono(), so that their deadline is monotonic too (on a
 * default one, a clock set back an hour made a 1 s nap an hour long).
 * Not for the fast path: workers read the TSC.
 */
#ifndef FWD_CLOCK_H
#define FWD_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/** Clock @id in ns. */
static inline uint64_t fwd_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/** CLOCK_MONOTONIC in ns. */
static inline uint64_t fwd_mono_ns(void)
{
	return fwd_clock_ns(CLOCK_MONOTONIC);
}

/** CLOCK_MONOTONIC in ms. */
static inline int64_t fwd_mono_ms(void)
{
	return (int64_t)(fwd_mono_ns() / 1000000u);
}

/** CLOCK_REALTIME in ns since the Unix epoch. */
static inline uint64_t fwd_wall_ns(void)
{
	return fwd_clock_ns(CLOCK_REALTIME);
}

/** CLOCK_REALTIME in ms since the Unix epoch. */
static inline int64_t fwd_wall_ms(void)
{
	return (int64_t)(fwd_wall_ns() / 1000000u);
}

/** Initialise @cv to time its waits on CLOCK_MONOTONIC. @return 0 or an errno. */
static inline int fwd_cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	int rc = pthread_condattr_init(&a);

	if (rc == 0)
		rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
	return rc;
}

/** The CLOCK_MONOTONIC instant @ms (>= 0) from now, as the deadline of a
 *  pthread_cond_timedwait() on a condition variable of fwd_cond_init_mono(). */
static inline struct timespec fwd_mono_after_ms(int64_t ms)
{
	uint64_t at = fwd_mono_ns() + (uint64_t)(ms > 0 ? ms : 0) * 1000000u;

	return (struct timespec){.tv_sec = (time_t)(at / 1000000000u),
				 .tv_nsec = (long)(at % 1000000000u)};
}

/**
 * A wall clock that does not follow steps: the wall time when it was
 * anchored, advanced on the monotonic clock. For times whose differences
 * must be true durations although they are stored as wall times and read
 * by other boxes (a fleet report's updated_at, over which a rollout's drop
 * rates are taken; the rollout leader's phases): a node's clock stepped an
 * hour mid-bake once diluted a canary's drop rate over that hour, and a
 * leader's ended a 300 s bake at once. It shows a step only once
 * anchored again (regiond's restart).
 */
struct fwd_steady {
	int64_t wall0, mono0;
};

static inline void fwd_steady_init(struct fwd_steady *s)
{
	s->wall0 = fwd_wall_ms();
	s->mono0 = fwd_mono_ms();
}

static inline int64_t fwd_steady_ms(const struct fwd_steady *s)
{
	return s->wall0 + (fwd_mono_ms() - s->mono0);
}

#endif /* FWD_CLOCK_H */
