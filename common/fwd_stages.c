/*
 * fwd_stages.c - named stage timings of a long operation (fwd_stages.h).
 */
#include "fwd_stages.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static __thread struct fwd_stages *current;

void fwd_stages_begin(struct fwd_stages *st)
{
	memset(st, 0, sizeof(*st));
	st->t0 = st->last = fwd_mono_ns();
	st->outer = current;
	current = st;
}

void fwd_stages_end(struct fwd_stages *st)
{
	if (current == st)
		current = st->outer;
}

void fwd_stage_add(struct fwd_stages *st, const char *name, uint64_t ns)
{
	unsigned i;

	if (st == NULL && (st = current) == NULL)
		return;
	for (i = 0; i < st->n; i++)
		if (strcmp(st->s[i].name, name) == 0)
			break;
	if (i == st->n) {
		if (st->n == FWD_STAGES_MAX)
			i = FWD_STAGES_MAX - 1; /* the last one takes the rest */
		else
			st->s[st->n++].name = name;
	}
	st->s[i].ns += ns;
}

void fwd_stage(const char *name)
{
	struct fwd_stages *st = current;
	uint64_t now;

	if (st == NULL)
		return;
	now = fwd_mono_ns();
	fwd_stage_add(st, name, now - st->last);
	st->last = now;
}

uint64_t fwd_stage_ns(const struct fwd_stages *st, const char *name)
{
	for (unsigned i = 0; i < st->n; i++)
		if (strcmp(st->s[i].name, name) == 0)
			return st->s[i].ns;
	return 0;
}

uint64_t fwd_stages_total_ns(const struct fwd_stages *st)
{
	return fwd_mono_ns() - st->t0;
}

const char *fwd_stages_format(const struct fwd_stages *st, char *buf, size_t len)
{
	size_t off = 0;

	if (len)
		buf[0] = '\0';
	for (unsigned i = 0; i < st->n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s %.1f ms", i ? ", " : "",
					st->s[i].name, (double)st->s[i].ns / 1e6);
	return buf;
}
