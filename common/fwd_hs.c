#include "fwd_hs.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hs.h>

#include "fwd_doc.h"

/* A literal as a regex: every byte as \xHH, so nothing in it is special. */
static char *escape_literal(const char *s)
{
	size_t n = strlen(s);
	char *o = malloc(n * 4 + 1);

	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		snprintf(o + i * 4, 5, "\\x%02x", (unsigned char)s[i]);
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

static int read_all(int fd, void *p, size_t n)
{
	char *c = p;

	while (n) {
		ssize_t r = read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The child: compile every field's database first, then stream back
 * [u8 ok=1][4 x (u64 len, bytes)] or [u8 ok=0][u32 rule][u32 len][message]. */
static void child(const struct fwd_table *t, int fd)
{
	char *ser[4] = {NULL};
	size_t len[4] = {0};
	uint8_t ok = 1;

	for (int f = 0; f < 4; f++) {
		const char **expr = calloc(t->ncontent + 1, sizeof(*expr));
		unsigned *flags = calloc(t->ncontent + 1, sizeof(*flags)), *ids = calloc(t->ncontent + 1, sizeof(*ids));
		unsigned n = 0;
		hs_database_t *db = NULL;
		hs_compile_error_t *ce = NULL;

		if (!expr || !flags || !ids)
			_exit(3);
		for (uint32_t i = 0; i < t->ncontent; i++) {
			const struct fwd_content_rule *r = &t->content[i];

			if (r->field != f)
				continue;
			expr[n] = r->literal ? escape_literal(r->pattern) : r->pattern;
			flags[n] = HS_FLAG_SINGLEMATCH | HS_FLAG_DOTALL | (r->caseless ? HS_FLAG_CASELESS : 0);
			ids[n++] = i;
		}
		if (n == 0)
			continue;
		if (hs_compile_multi(expr, flags, ids, n, HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS) {
			uint32_t rule = ce->expression >= 0 ? ids[ce->expression] : UINT32_MAX;
			uint32_t mlen = (uint32_t)strlen(ce->message);

			ok = 0;
			if (write_all(fd, &ok, 1) || write_all(fd, &rule, 4) || write_all(fd, &mlen, 4) ||
			    write_all(fd, ce->message, mlen))
				_exit(4);
			_exit(0);
		}
		if (hs_serialize_database(db, &ser[f], &len[f]) != HS_SUCCESS)
			_exit(5);
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

uint64_t fwd_content_hash(const struct fwd_table *t)
{
	uint64_t h = 1469598103934665603ull;

	for (uint32_t i = 0; i < t->ncontent; i++) {
		const struct fwd_content_rule *r = &t->content[i];
		uint8_t head[4] = {r->field, r->literal, r->caseless, 0xff};

		h = fwd_hash64_update(h, head, sizeof(head));
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

int fwd_hs_compile(const struct fwd_table *t, const struct fwd_hs_limits *lim, struct fwd_hs_dbs *out,
		   struct fwd_err *e, const char **code)
{
	int pfd[2], status = 0, rc = 0;
	struct timespec t0, t1;
	uint8_t ok = 2; /* neither answer: the child died before writing */
	pid_t pid;

	memset(out, 0, sizeof(*out));
	out->rules_hash = fwd_content_hash(t);
	if (t->ncontent == 0)
		return 0;
	if (pipe(pfd) < 0) {
		int rc0 = -errno;

		*code = "internal";
		fwd_err_set(e, t->source, 0, "content_rules", "pipe: %s", strerror(errno));
		return rc0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		*code = "internal";
		fwd_err_set(e, t->source, 0, "content_rules", "fork: %s", strerror(errno));
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
	if (read_all(pfd[0], &ok, 1) == 0 && ok == 0) {
		uint32_t rule = UINT32_MAX, mlen = 0;
		char msg[256] = "";

		if (read_all(pfd[0], &rule, 4) == 0 && read_all(pfd[0], &mlen, 4) == 0) {
			if (mlen >= sizeof(msg))
				mlen = sizeof(msg) - 1;
			read_all(pfd[0], msg, mlen);
		}
		if (strstr(msg, "allocate memory") || strstr(msg, "Resource limit")) {
			/* Out of the child's memory: the rule set, not one rule, costs too much. */
			*code = "pattern_too_expensive";
			fwd_err_set(e, t->source, 0, "content_rules",
				      "compiling the content rules exceeded its limits (%u s CPU, %zu MiB; %s)",
				      lim->cpu_seconds, lim->memory_bytes >> 20, msg);
			rc = -E2BIG;
		} else if (rule < t->ncontent) {
			char path[64];

			snprintf(path, sizeof(path), "content_rules[%u].pattern", rule);
			*code = strstr(msg, "too large") ? "pattern_too_expensive" : "invalid_pattern";
			fwd_err_set(e, t->source, t->content[rule].line, path, "rule '%s': %s",
				    t->content[rule].name, msg);
			rc = -EINVAL;
		} else {
			*code = "invalid_pattern";
			fwd_err_set(e, t->source, 0, "content_rules", "%s", msg);
			rc = -EINVAL;
		}
	} else if (ok == 1) {
		for (int f = 0; f < 4 && rc == 0; f++) {
			uint64_t l;

			if (read_all(pfd[0], &l, 8) || l > (1ull << 31)) {
				rc = -EPROTO;
				break;
			}
			if (l == 0)
				continue;
			out->bytes[f] = malloc(l);
			out->len[f] = l;
			if (out->bytes[f] == NULL || read_all(pfd[0], out->bytes[f], l))
				rc = -EPROTO;
		}
	} else {
		rc = -EPROTO;
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	out->compile_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (rc == -EPROTO || (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))) {
		*code = "pattern_too_expensive";
		fwd_err_set(e, t->source, 0, "content_rules",
			      "compiling the content rules exceeded its limits (%u s CPU, %zu MiB; %s %d)",
			      lim->cpu_seconds, lim->memory_bytes >> 20,
			      WIFSIGNALED(status) ? "signal" : "exit status",
			      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		fwd_hs_free(out);
		return -E2BIG;
	}
	if (rc)
		fwd_hs_free(out);
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
