#define _GNU_SOURCE /* sigabbrev_np */
#include "fwd_hs.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hs.h>

#include "fwd_doc.h"
#include "fwd_log.h"
#include "fwd_names.h"
#include "fwd_clock.h"

/* A literal as a regex: every byte as \xHH, so nothing in it is special. */
/* A literal as an expression: letters, digits and '_' as they are (no
 * PCRE meaning in any flag), every other byte as \xNN. Escaping every byte
 * made a 4,096-byte literal 16 KiB, past Hyperscan's pattern length limit,
 * although the document allows it; mostly alphanumeric literals now stay
 * their own length. */
static char *escape_literal(const char *s)
{
	size_t n = strlen(s), o_len = 0;
	char *o = malloc(n * 4 + 1);

	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_')
			o[o_len++] = (char)c;
		else
			o_len += (size_t)snprintf(o + o_len, 5, "\\x%02x", c);
	}
	o[o_len] = '\0';
	return o;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * The parent's reads of the child's answer are watched: fork() in a
 * threaded process copies locks another thread held at that instant (an
 * allocator's, a sanitizer runtime's) into a child where no thread will
 * ever release them, so a child can hang asleep before it compiles
 * anything. RLIMIT_CPU does not end a child that uses no CPU, so without a
 * watch the writer waiting here, and with it every change of regiond, would
 * hang with it. A compiling child is always running; one found asleep with
 * its CPU time unchanged across STUCK_TICKS polls of a second, with nothing
 * written, is stuck, not busy: it is killed and the build retried once in
 * a fresh child. A child past the wall-clock deadline (the CPU limit three
 * times over plus slack, for a loaded machine) is killed as too expensive.
 */
#define STUCK_TICKS 2

struct child_watch {
	pid_t pid;
	int64_t deadline_ms;
	unsigned long long last_cpu;
	int quiet_ticks;
	int stuck; /* set when the child was found stuck */
	int timed_out; /* set when the deadline passed */
};

/* The child's scheduler state and CPU ticks (utime + stime) from
 * /proc/PID/stat; 0 when they cannot be read. */
static int child_sample(pid_t pid, char *state, unsigned long long *cpu)
{
	char path[32], buf[512], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* The command name may hold spaces and parentheses: fields start
	 * after the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
				state, &ut, &st) != 3)
		return -1;
	*cpu = ut + st;
	return 0;
}

/* Wait until @fd is readable, watching the child. 0, or -1 with
 * w->stuck or w->timed_out set. */
static int child_wait(int fd, struct child_watch *w)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = w->deadline_ms - fwd_mono_ms();
		int r;
		char state = 'R';
		unsigned long long cpu = 0;

		if (left <= 0) {
			w->timed_out = 1;
			return -1;
		}
		r = poll(&pfd, 1, left < 1000 ? (int)left : 1000);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (r < 0 || child_sample(w->pid, &state, &cpu))
			continue;
		if ((state == 'S' || state == 'D') && cpu == w->last_cpu) {
			if (++w->quiet_ticks >= STUCK_TICKS) {
				w->stuck = 1;
				return -1;
			}
		} else {
			w->quiet_ticks = 0;
		}
		w->last_cpu = cpu;
	}
}

static int read_all(int fd, void *p, size_t n, struct child_watch *w)
{
	char *c = p;

	while (n) {
		ssize_t r;

		if (child_wait(fd, w))
			return -1;
		r = read(fd, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		/* Bytes arrived: the child is alive, whatever it looks like. */
		w->quiet_ticks = 0;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Why the child failed, as it tells the parent: from what failed, never
 * from the wording of Hyperscan's message. */
enum child_failure {
	CHILD_PATTERN_INVALID = 0, /* hs_expression_info refused the rule's pattern */
	CHILD_SET_TOO_EXPENSIVE = 1, /* every pattern parses; building the database failed */
	CHILD_OUT_OF_MEMORY = 2, /* an allocation failed: the memory limit (RLIMIT_AS) */
};

/* The child's exit status when an allocation of its own failed, so the
 * parent can say the memory limit was hit rather than a number. */
#define CHILD_EXIT_NOMEM 3

/* Hyperscan reports every allocation failure of a compile with one static
 * error object of this text (hs_enomem, src/compiler/error.cpp): a
 * pattern is not at fault, the memory limit is. Its "Internal error." is
 * not memory. */
static int out_of_memory(const hs_compile_error_t *e)
{
	return e && e->message && strcmp(e->message, "Unable to allocate memory.") == 0;
}

static void child_fail(int fd, uint8_t kind, uint32_t rule, const char *msg)
{
	uint8_t ok = 0;
	uint32_t mlen = (uint32_t)strlen(msg);

	if (write_all(fd, &ok, 1) || write_all(fd, &kind, 1) || write_all(fd, &rule, 4) ||
	    write_all(fd, &mlen, 4) || write_all(fd, msg, mlen))
		_exit(4);
	_exit(0);
}

/* The child: first parse every pattern on its own (hs_expression_info: the
 * syntax and what Hyperscan supports, cheap), so a refused pattern is named
 * as invalid whatever memory is left; then compile every field's database.
 * When a set fails to compile, the pattern it names is compiled alone: a
 * pattern that fails alone too is invalid (e.g. it matches the empty
 * buffer), otherwise the set costs more than the limits or Hyperscan's own
 * bounds (RLIMIT_AS turns into its "Unable to allocate memory", which it
 * reports against expression 0).
 * Streams back [u8 ok=1][4 x (u64 len, bytes)] or
 * [u8 ok=0][u8 enum child_failure][u32 rule][u32 len][message]. */
/* Tests define it to make a child hang as a fork-copied lock would. */
void fwd_hs_child_hook(void) __attribute__((weak));

static void child(const struct fwd_table *t, int fd)
{
	char *ser[4] = {NULL};
	size_t len[4] = {0};
	uint8_t ok = 1;
	const char **expr = calloc(t->ncontent + 1, sizeof(*expr));
	unsigned *flags = calloc(t->ncontent + 1, sizeof(*flags));
	unsigned *ids = calloc(t->ncontent + 1, sizeof(*ids));

	if (fwd_hs_child_hook)
		fwd_hs_child_hook();
	if (!expr || !flags || !ids)
		_exit(CHILD_EXIT_NOMEM);
	for (uint32_t i = 0; i < t->ncontent; i++) {
		const struct fwd_content_rule *r = &t->content[i];
		const char *e;
		unsigned fl =
			HS_FLAG_SINGLEMATCH | HS_FLAG_DOTALL | (r->caseless ? HS_FLAG_CASELESS : 0);
		hs_expr_info_t *info = NULL;
		hs_compile_error_t *ce = NULL;

		if (r->pattern == NULL)
			continue; /* a name set: fwd_nameset, not Hyperscan */
		e = r->literal ? escape_literal(r->pattern) : r->pattern;
		if (e == NULL)
			_exit(CHILD_EXIT_NOMEM);
		if (hs_expression_info(e, fl, &info, &ce) != HS_SUCCESS)
			child_fail(fd, CHILD_PATTERN_INVALID, i, ce ? ce->message : "refused");
		/* A match that can be zero bytes long matches at a point, not on
		 * text: 'a*' and 'x|' everywhere, '^', '$' and '\b' in every
		 * name or payload that has a start, an end or a word. Hyperscan
		 * refuses only those that match the empty buffer itself (and
		 * reports them against the whole set); '^' alone compiled and
		 * counted every packet of its services (a review). */
		if (info && info->min_width == 0)
			child_fail(fd, CHILD_PATTERN_INVALID, i,
				   "the pattern can match zero bytes (as a*, ^ or \\b alone do), "
				   "which matches every packet: make it consume at least one byte");
		free(info);
		expr[i] = e;
		flags[i] = fl;
	}
	for (int f = 0; f < 4; f++) {
		const char **fexpr = calloc(t->ncontent + 1, sizeof(*fexpr));
		unsigned *fflags = calloc(t->ncontent + 1, sizeof(*fflags));
		unsigned n = 0;
		hs_database_t *db = NULL;
		hs_compile_error_t *ce = NULL;

		if (!fexpr || !fflags)
			_exit(CHILD_EXIT_NOMEM);
		for (uint32_t i = 0; i < t->ncontent; i++) {
			if (t->content[i].field != f || t->content[i].pattern == NULL)
				continue;
			fexpr[n] = expr[i];
			fflags[n] = flags[i];
			ids[n++] = i;
		}
		if (n == 0)
			continue;
		if (hs_compile_multi(fexpr, fflags, ids, n, HS_MODE_BLOCK, NULL, &db, &ce) !=
		    HS_SUCCESS) {
			/* The set ran out of memory: the limit is to blame, not
			 * the expression 0 that Hyperscan's error names. */
			if (out_of_memory(ce))
				child_fail(fd, CHILD_OUT_OF_MEMORY, UINT32_MAX, ce->message);
			int k = ce->expression >= 0 && (unsigned)ce->expression < n ? ce->expression
										    : -1;
			hs_database_t *one = NULL;
			hs_compile_error_t *ce1 = NULL;

			/* The set's compile names a pattern: build that one alone. If
			 * it fails alone too, it is the pattern's fault; if it builds
			 * alone, the set as a whole costs too much. Out of memory
			 * (our RLIMIT_AS) is neither: Hyperscan reports every
			 * allocation failure with one static error object, so a second
			 * failure returning the very object of the first is memory, not
			 * the pattern. */
			if (k >= 0 && hs_compile(fexpr[k], fflags[k], HS_MODE_BLOCK, NULL, &one,
						 &ce1) != HS_SUCCESS) {
				if (out_of_memory(ce1))
					child_fail(fd, CHILD_OUT_OF_MEMORY, ids[k], ce1->message);
				child_fail(fd, CHILD_PATTERN_INVALID, ids[k], ce1->message);
			}
			child_fail(fd, CHILD_SET_TOO_EXPENSIVE, k >= 0 ? ids[k] : UINT32_MAX,
				   ce->message);
		}
		/* It fails only to allocate (HS_NOMEM): the database is ours. */
		if (hs_serialize_database(db, &ser[f], &len[f]) != HS_SUCCESS)
			_exit(CHILD_EXIT_NOMEM);
	}
	if (write_all(fd, &ok, 1))
		_exit(4);
	for (int f = 0; f < 4; f++) {
		uint64_t l = len[f];

		if (write_all(fd, &l, 8) || (l && write_all(fd, ser[f], l)))
			_exit(4);
	}
	_exit(0);
}

uint32_t fwd_content_patterns(const struct fwd_table *t)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < t->ncontent; i++)
		n += t->content[i].pattern != NULL;
	return n;
}

uint64_t fwd_content_hash(const struct fwd_table *t)
{
	uint64_t h = FWD_HASH64_SEED;

	for (uint32_t i = 0; i < t->ncontent; i++) {
		const struct fwd_content_rule *r = &t->content[i];
		uint8_t head[4] = {r->field, r->literal, r->caseless, r->pattern ? 0xff : 0xfe};

		/* A name set adds no pattern (its names are not in the databases),
		 * but its place shifts the ids of the rules after it. */
		h = fwd_hash64_update(h, head, sizeof(head));
		if (r->pattern)
			h = fwd_hash64_update(h, r->pattern, strlen(r->pattern) + 1);
	}
	return h;
}

/* Bytes of address space this process maps now (/proc/self/statm, first field). */
static size_t address_space_now(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;

	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* How a child that gave no answer ended, in words: the operator acts on
 * which limit was hit (regiond's --content-compile-cpu, fewer or simpler
 * patterns), and "signal 24" says neither. SIGXCPU is RLIMIT_CPU's;
 * CHILD_EXIT_NOMEM an allocation refused under RLIMIT_AS; any other end
 * is named as it is, within the limits. */
static void child_end(int status, const struct fwd_hs_limits *lim, char *buf, size_t len)
{
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU) {
		snprintf(buf, len, "compiling the content rules exceeded its CPU limit (%u s)",
			 lim->cpu_seconds);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_EXIT_NOMEM) {
		snprintf(buf, len,
			 "compiling the content rules exceeded its memory limit (%zu MiB)",
			 lim->memory_bytes >> 20);
	} else if (WIFSIGNALED(status)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));
		char name[24];

		if (abbrev)
			snprintf(name, sizeof(name), "SIG%s", abbrev);
		else /* a real-time signal has no abbreviation */
			snprintf(name, sizeof(name), "signal %d", WTERMSIG(status));
		snprintf(buf, len,
			 "the process compiling the content rules (limits %u s CPU, %zu MiB) was "
			 "ended by %s (%s)",
			 lim->cpu_seconds, lim->memory_bytes >> 20, name,
			 strsignal(WTERMSIG(status)));
	} else {
		snprintf(buf, len,
			 "the process compiling the content rules (limits %u s CPU, %zu MiB) ended "
			 "without an answer (exit status %d)",
			 lim->cpu_seconds, lim->memory_bytes >> 20,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
}

/* One child's build; *stuck is set when the child hung asleep (see
 * child_watch) and nothing was decided. */
static int build_once(const struct fwd_table *t, const struct fwd_hs_limits *lim,
		      struct fwd_hs_dbs *out, struct fwd_err *e, int *stuck)
{
	int pfd[2], status = 0, rc = 0;
	uint64_t t0, t1;
	uint8_t ok = 2; /* neither answer: the child died before writing */
	pid_t pid, parent;
	struct child_watch w = {0};

	*stuck = 0;
	memset(out, 0, sizeof(*out));
	out->rules_hash = fwd_content_hash(t);
	if (fwd_content_patterns(t) == 0)
		return 0;
	if (pipe(pfd) < 0) {
		int rc0 = -errno;

		fwd_err_fail(e, FWD_R_INTERNAL, t->source, 0, FWD_KEY_NAME(DOC, CONTENT_RULES),
			     "pipe: %s", strerror(errno));
		return rc0;
	}
	t0 = fwd_mono_ns();
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		fwd_err_fail(e, FWD_R_INTERNAL, t->source, 0, FWD_KEY_NAME(DOC, CONTENT_RULES),
			     "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -EAGAIN;
	}
	if (pid == 0) {
		struct rlimit cpu = {lim->cpu_seconds, lim->cpu_seconds + 1};
		/* The limit is on what compiling adds: a child of regionfwd inherits
		 * the parent's mappings (DPDK reserves gigabytes of address space),
		 * which an absolute limit would count against the compiler. */
		size_t base = address_space_now();
		struct rlimit as = {base + lim->memory_bytes, base + lim->memory_bytes};

		/* The child dies with its parent. Left running by a regiond or a
		 * regionfwd killed mid-compile (SIGKILL, the OOM killer), it held
		 * what it inherited, the state directory's lock and the listening
		 * sockets, for up to its CPU limit: every restart in that time
		 * was refused as a second instance, and systemd's restarts could
		 * run out. Checked after setting it: a parent already gone. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(pfd[0]);
		signal(SIGPIPE, SIG_DFL);
		setrlimit(RLIMIT_CPU, &cpu);
#ifndef __SANITIZE_ADDRESS__
		/* ASan reserves terabytes of address space for its shadow: an
		 * address-space limit would stop it, so sanitizer builds keep only
		 * the CPU limit. */
		setrlimit(RLIMIT_AS, &as);
#else
		(void)as;
#endif
		child(t, pfd[1]);
	}
	close(pfd[1]);
	w.pid = pid;
	w.deadline_ms = fwd_mono_ms() + (int64_t)lim->cpu_seconds * 3000 + 5000;
	w.last_cpu = ~0ull;
	if (read_all(pfd[0], &ok, 1, &w) == 0 && ok == 0) {
		uint32_t rule = UINT32_MAX, mlen = 0;
		uint8_t kind = CHILD_SET_TOO_EXPENSIVE;
		char msg[256] = "";

		if (read_all(pfd[0], &kind, 1, &w) == 0 && read_all(pfd[0], &rule, 4, &w) == 0 &&
		    read_all(pfd[0], &mlen, 4, &w) == 0) {
			if (mlen >= sizeof(msg))
				mlen = sizeof(msg) - 1;
			read_all(pfd[0], msg, mlen, &w);
		}
		if (kind == CHILD_OUT_OF_MEMORY) {
			/* Hyperscan names expression 0 for every allocation that
			 * fails: no rule is to blame, the limit is. */
			rc = fwd_err_fail(e, FWD_R_PATTERN_TOO_EXPENSIVE, t->source, 0,
					  FWD_KEY_NAME(DOC, CONTENT_RULES),
					  "compiling the content rules exceeded its memory limit "
					  "(%zu MiB)",
					  lim->memory_bytes >> 20);
		} else if (kind == CHILD_PATTERN_INVALID && rule < t->ncontent) {
			char path[64];

			snprintf(path, sizeof(path), "%s[%u].%s", FWD_KEY_NAME(DOC, CONTENT_RULES),
				 rule, FWD_KEY_NAME(CONTENT, PATTERN));
			rc = fwd_err_fail(e, FWD_R_INVALID_PATTERN, t->source,
					  t->content[rule].line, path, "rule '%s': %s",
					  t->content[rule].name, msg);
		} else {
			char at[FWD_NAME_MAX + 16] = "";

			if (rule < t->ncontent)
				snprintf(at, sizeof(at), "at rule '%s': ", t->content[rule].name);
			rc = fwd_err_fail(e, FWD_R_PATTERN_TOO_EXPENSIVE, t->source, 0,
					  FWD_KEY_NAME(DOC, CONTENT_RULES),
					  "compiling the content rules exceeded its limits "
					  "(%u s CPU, %zu MiB; %s%s)",
					  lim->cpu_seconds, lim->memory_bytes >> 20, at, msg);
		}
	} else if (ok == 1) {
		for (int f = 0; f < 4 && rc == 0; f++) {
			uint64_t l;

			if (read_all(pfd[0], &l, 8, &w) || l > (1ull << 31)) {
				rc = -EPROTO;
				break;
			}
			if (l == 0)
				continue;
			out->bytes[f] = malloc(l);
			out->len[f] = l;
			if (out->bytes[f] == NULL || read_all(pfd[0], out->bytes[f], l, &w))
				rc = -EPROTO;
		}
	} else {
		rc = -EPROTO;
	}
	close(pfd[0]);
	if (w.stuck || w.timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	t1 = fwd_mono_ns();
	if (w.stuck) {
		fwd_hs_free(out);
		*stuck = 1;
		return fwd_err_fail(e, FWD_R_INTERNAL, t->source, 0,
				    FWD_KEY_NAME(DOC, CONTENT_RULES),
				    "the process compiling the content rules hung before it "
				    "compiled anything (killed)");
	}
	if (w.timed_out) {
		fwd_hs_free(out);
		fwd_err_fail(e, FWD_R_PATTERN_TOO_EXPENSIVE, t->source, 0,
			     FWD_KEY_NAME(DOC, CONTENT_RULES),
			     "compiling the content rules did not finish within %u s (killed)",
			     lim->cpu_seconds * 3 + 5);
		return -E2BIG;
	}
	out->compile_s = (double)(t1 - t0) / 1e9;
	if (rc == -EPROTO || (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))) {
		char why[160];

		child_end(status, lim, why, sizeof(why));
		fwd_err_fail(e, FWD_R_PATTERN_TOO_EXPENSIVE, t->source, 0,
			     FWD_KEY_NAME(DOC, CONTENT_RULES), "%s", why);
		fwd_hs_free(out);
		return -E2BIG;
	}
	if (rc)
		fwd_hs_free(out);
	return rc;
}

int fwd_hs_build(const struct fwd_table *t, const struct fwd_hs_limits *lim, struct fwd_hs_dbs *out,
		 struct fwd_err *e)
{
	int stuck = 0;
	int rc = build_once(t, lim, out, e, &stuck);

	/* A stuck child says nothing of the rules (see child_watch): one
	 * fresh attempt, then the fault is reported as the process's own. */
	if (stuck) {
		fwd_log(FWD_LOG_WARNING, "content rules: the compiling child hung; retrying once");
		if (e)
			memset(e, 0, sizeof(*e));
		rc = build_once(t, lim, out, e, &stuck);
	}
	return rc;
}

int fwd_hs_compile(const struct fwd_table *t, const struct fwd_hs_limits *lim,
		   struct fwd_hs_dbs *out, struct fwd_err *e, const char **code)
{
	struct fwd_err local = {0};
	int rc = fwd_hs_build(t, lim, out, e ? e : &local);

	if (rc && code)
		*code = fwd_reason_name((e ? e : &local)->reason_code);
	return rc;
}

void fwd_hs_free(struct fwd_hs_dbs *dbs)
{
	for (int f = 0; f < 4; f++) {
		free(dbs->bytes[f]);
		dbs->bytes[f] = NULL;
		dbs->len[f] = 0;
	}
}
