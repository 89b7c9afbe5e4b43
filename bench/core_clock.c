/*
 * core_clock - how fast the core it runs on executes, measured so that it
 * holds on Intel and AMD alike:
 *   ghz   the effective clock, from a chain of dependent register-register
 *         additions (add r64, r64: one cycle of latency on every x86-64
 *         core DPDK supports, and the addend is a value loaded at run time,
 *         so no renamer can fold it);
 *   ghz_mul  the same from a chain of dependent 64-bit multiplications
 *         (imul r64, r64: three cycles on Intel since Nehalem and on AMD
 *         since Zen), a cross-check on a different unit; the two agree
 *         within a few per cent when the measure holds;
 *   wide  additions per ns from eight independent register-register chains,
 *         which need the core's full issue width: a busy sibling hyperthread
 *         (another VM's, under a hypervisor) takes from this figure, not
 *         from ghz;
 *   cpuinfo_mhz  what /proc/cpuinfo says for this CPU (under a hypervisor
 *         usually the nominal or TSC clock, not the current one), or 0.
 *
 * The first version chained `add $1, reg`. A core that executes additions
 * of small immediates at register rename (Intel's Golden Cove generation
 * and later do) runs several such "dependent" additions per cycle, so on
 * an Intel Xeon it printed 20.48 "GHz": about six per cycle. Register
 * operands whose value the core cannot know before execution keep the
 * chain a chain; the imul chain checks it from another unit, and "ok" is
 * false when the two disagree by more than 15 % or the clock is outside
 * 0.3-7 GHz (then the figures say nothing about the clock).
 *
 * A VM's core can run slower for minutes at a time, and code that runs at
 * high IPC loses more in such a spell than code that waits on memory.
 * bench/run prints ghz and wide for the worker core before and after each
 * throughput input, so a ratio taken in such a spell can be told apart.
 *
 * Usage: taskset -c CORE core_clock [milliseconds per figure, default 100]
 * Prints: {"ghz": 3.31, "ghz_mul": 3.30, "wide": 13.20, "cpuinfo_mhz": 2596,
 *          "ok": true, "ms": 100}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The addend: read through a volatile, so it is a run-time value and the
 * compiler emits register operands. */
static volatile uint64_t one_v = 1, three_v = 3;

/* 64 dependent additions of a register: 64 cycles, whatever the loop around
 * them costs (its increment and branch run beside the chain). */
static uint64_t chain_add(uint64_t x, uint64_t k)
{
#if defined(__x86_64__)
	__asm__ volatile(".rept 64\n\tadd %1, %0\n\t.endr" : "+r"(x) : "r"(k));
#else
	for (int i = 0; i < 64; i++)
		__asm__ volatile("" : "+r"(x)), x += k;
#endif
	return x;
}

/* 64 dependent multiplications: 192 cycles at three cycles each. */
static uint64_t chain_mul(uint64_t x, uint64_t k)
{
#if defined(__x86_64__)
	__asm__ volatile(".rept 64\n\timul %1, %0\n\t.endr" : "+r"(x) : "r"(k));
#else
	for (int i = 0; i < 64; i++)
		__asm__ volatile("" : "+r"(x)), x *= k;
#endif
	return x;
}

/* 64 additions in eight independent chains of eight. */
static void wide64(uint64_t v[8], uint64_t k)
{
#if defined(__x86_64__)
	__asm__ volatile(".rept 8\n\tadd %8, %0\n\tadd %8, %1\n\tadd %8, %2\n\tadd %8, %3\n\t"
			 "add %8, %4\n\tadd %8, %5\n\tadd %8, %6\n\tadd %8, %7\n\t.endr"
			 : "+r"(v[0]), "+r"(v[1]), "+r"(v[2]), "+r"(v[3]), "+r"(v[4]), "+r"(v[5]),
			   "+r"(v[6]), "+r"(v[7])
			 : "r"(k));
#else
	for (int i = 0; i < 64; i++)
		__asm__ volatile("" : "+r"(v[i & 7])), v[i & 7] += k;
#endif
}

enum kind { ADD, MUL, WIDE };

/* Operations per ns over at least @ms milliseconds. */
static double rate(double ms, enum kind kind)
{
	uint64_t x = 1, v[8] = {0}, rounds = 0, k = kind == MUL ? three_v : one_v;
	double t0 = now_s(), t;

	do {
		for (int i = 0; i < 2000; i++) {
			if (kind == WIDE)
				wide64(v, k);
			else if (kind == MUL)
				x = chain_mul(x, k);
			else
				x = chain_add(x, k);
		}
		rounds += 2000;
		t = now_s() - t0;
	} while (t < ms / 1000.0);
	/* The asm is volatile: the operations run although x and v are unused. */
	return (double)rounds * 64 / t / 1e9;
}

/* "cpu MHz" of the first processor in /proc/cpuinfo, 0 when absent. */
static double cpuinfo_mhz(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	double mhz = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "cpu MHz", 7) == 0) {
			const char *c = strchr(line, ':');

			mhz = c ? strtod(c + 1, NULL) : 0;
			break;
		}
	}
	fclose(f);
	return mhz;
}

int main(int argc, char **argv)
{
	double ms = argc > 1 ? strtod(argv[1], NULL) : 100.0;
	double ghz, ghz_mul, wide;
	int ok;

	if (!(ms >= 1.0 && ms <= 10000.0)) {
		fprintf(stderr, "usage: core_clock [milliseconds per figure, 1..10000]\n");
		return 2;
	}
	ghz = rate(ms, ADD);
	ghz_mul = rate(ms, MUL) * 3; /* three cycles per multiplication */
	wide = rate(ms, WIDE);
	ok = ghz >= 0.3 && ghz <= 7.0 && ghz_mul > 0 && ghz / ghz_mul > 1 / 1.15 &&
	     ghz / ghz_mul < 1.15;
	printf("{\"ghz\": %.2f, \"ghz_mul\": %.2f, \"wide\": %.2f, \"cpuinfo_mhz\": %.0f, "
	       "\"ok\": %s, \"ms\": %.0f}\n",
	       ghz, ghz_mul, wide, cpuinfo_mhz(), ok ? "true" : "false", ms);
	return 0;
}
