/*
 * core_clock - how fast the core it runs on executes, two ways:
 *   ghz   the effective clock, from a chain of dependent additions (one
 *         cycle each on every x86-64 core DPDK supports);
 *   wide  additions per ns from eight independent chains, which need the
 *         core's full issue width: a busy sibling hyperthread (another VM's,
 *         under a hypervisor) takes from this figure, not from ghz.
 *
 * A VM's core can run slower for minutes at a time, and code that runs at
 * high IPC loses more in such a spell than code that waits on memory.
 * bench/run prints both figures for the worker core before and after each
 * throughput input, so a ratio taken in such a spell can be told apart.
 *
 * Usage: taskset -c CORE core_clock [milliseconds per figure, default 100]
 * Prints: {"ghz": 3.31, "wide": 19.80, "ms": 100}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 64 dependent additions: 64 cycles, whatever the loop around them costs
 * (its increment and branch run beside the chain). */
static uint64_t chain64(uint64_t x)
{
#if defined(__x86_64__)
	__asm__ volatile(".rept 64\n\tadd $1, %0\n\t.endr" : "+r"(x));
#else
	for (int i = 0; i < 64; i++)
		__asm__ volatile("" : "+r"(x)), x += 1;
#endif
	return x;
}

/* 64 additions in eight independent chains of eight. */
static void wide64(uint64_t v[8])
{
#if defined(__x86_64__)
	__asm__ volatile(".rept 8\n\tadd $1, %0\n\tadd $1, %1\n\tadd $1, %2\n\tadd $1, %3\n\t"
			 "add $1, %4\n\tadd $1, %5\n\tadd $1, %6\n\tadd $1, %7\n\t.endr"
			 : "+r"(v[0]), "+r"(v[1]), "+r"(v[2]), "+r"(v[3]), "+r"(v[4]), "+r"(v[5]),
			   "+r"(v[6]), "+r"(v[7]));
#else
	for (int i = 0; i < 64; i++)
		__asm__ volatile("" : "+r"(v[i & 7])), v[i & 7] += 1;
#endif
}

/* Additions per ns over at least @ms milliseconds. */
static double rate(double ms, int wide)
{
	uint64_t x = 0, v[8] = {0}, rounds = 0;
	double t0 = now_s(), t;

	do {
		for (int i = 0; i < 10000; i++) {
			if (wide)
				wide64(v);
			else
				x = chain64(x);
		}
		rounds += 10000;
		t = now_s() - t0;
	} while (t < ms / 1000.0);
	/* The asm is volatile: the additions run although x and v are unused. */
	return (double)rounds * 64 / t / 1e9;
}

int main(int argc, char **argv)
{
	double ms = argc > 1 ? strtod(argv[1], NULL) : 100.0;
	double ghz, wide;

	if (!(ms >= 1.0 && ms <= 10000.0)) {
		fprintf(stderr, "usage: core_clock [milliseconds per figure, 1..10000]\n");
		return 2;
	}
	ghz = rate(ms, 0);
	wide = rate(ms, 1);
	printf("{\"ghz\": %.2f, \"wide\": %.2f, \"ms\": %.0f}\n", ghz, wide, ms);
	return 0;
}
