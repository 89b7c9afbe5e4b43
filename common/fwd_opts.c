#include "fwd_opts.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#define OPT_VAL0 256 /* getopt_long's value for t[i] is OPT_VAL0 + i */

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 255)
			return -EINVAL;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

/* A whole number in decimal digits and nothing else: strtoull alone takes
 * "" as 0 and " 20", "+20", "-1" (wrapped) and "7junk" as numbers. */
static int parse_whole(const char *s, unsigned long long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return *end || errno ? -EINVAL : 0;
}

/* A finite decimal number, digits first ("1.5", "2e3"): strtod alone takes
 * "", "nan", "inf", " 1", "1junk" and "0x1p3" (atof even "abc", as 0). */
static int parse_real(const char *s, double *v)
{
	char *end;

	if (((*s < '0' || *s > '9') && *s != '.') || s[strspn(s, "0123456789.eE+-")])
		return -EINVAL; /* hexadecimal ("0x1p3") too */
	errno = 0;
	*v = strtod(s, &end);
	return *end || errno || !isfinite(*v) ? -EINVAL : 0;
}

static int refuse(const struct fwd_opt *d, const char *arg, struct fwd_err *e)
{
	if (d->refused)
		return fwd_err_fail(e, FWD_R_INVALID, NULL, 0, d->name, "%s (given \"%.40s\")",
				    d->refused, arg);
	return fwd_err_fail(e, FWD_R_INVALID, NULL, 0, d->name,
			    "--%s: \"%.40s\" is not a number in range", d->name, arg);
}

int fwd_opt_set(const struct fwd_opt *d, void *o, const char *arg, struct fwd_err *e)
{
	void *at = (char *)o + d->off;

	switch (d->kind) {
	case FWD_OPT_STR:
		*(const char **)at = arg;
		return 0;
	case FWD_OPT_UINT: {
		unsigned long long v;

		if (parse_whole(arg, &v) || v < d->min || v > d->max)
			return refuse(d, arg, e);
		*(uint64_t *)at = v;
		return 0;
	}
	case FWD_OPT_U32: {
		unsigned long long v;

		if (parse_whole(arg, &v) || v < d->min || v > (d->max ? d->max : UINT32_MAX))
			return refuse(d, arg, e);
		*(uint32_t *)at = (uint32_t)v;
		return 0;
	}
	case FWD_OPT_REAL: {
		double v;

		if (parse_real(arg, &v) || v < (double)d->min || (d->max && v > (double)d->max))
			return refuse(d, arg, e);
		*(double *)at = v;
		return 0;
	}
	case FWD_OPT_LIST: {
		struct fwd_opt_list *l = at;

		if (l->n >= d->max || l->n >= FWD_OPT_LIST_MAX)
			return fwd_err_fail(e, FWD_R_INVALID, NULL, 0, d->name, "at most %llu --%s",
					    (unsigned long long)d->max, d->name);
		/* The same value twice is a slip, never a second thing: an
		 * --xdp-iface given twice was attached twice, listed twice,
		 * and its detach said "not attached". */
		for (size_t k = 0; k < l->n; k++)
			if (strcmp(l->v[k], arg) == 0)
				return fwd_err_fail(e, FWD_R_INVALID, NULL, 0, d->name,
						    "--%s %s given twice", d->name, arg);
		l->v[l->n++] = arg;
		return 0;
	}
	case FWD_OPT_CHOICE:
		for (uint64_t i = 0; d->choices[i]; i++)
			if (strcmp(arg, d->choices[i]) == 0) {
				*(uint64_t *)at = i;
				return 0;
			}
		return fwd_err_fail(e, FWD_R_INVALID, NULL, 0, d->name, "%s",
				    d->refused ? d->refused : "not one of the choices");
	case FWD_OPT_MAC:
		if (parse_mac(arg, at))
			return fwd_err_fail(e, FWD_R_INVALID, NULL, 0, d->name,
					    "--%s: not a MAC address: %s", d->name, arg);
		return 0;
	case FWD_OPT_FLAG:
		*(int *)at = 1;
		return 0;
	case FWD_OPT_HELP:
		return 0;
	}
	return 0;
}

enum fwd_opts_result fwd_opts_parse(const struct fwd_opt *t, size_t n, int argc, char **argv,
				    void *o, uint64_t *given, uint64_t *repeated, struct fwd_err *e)
{
	struct option lopts[65];
	uint64_t seen = 0, again = 0;
	int c;

	if (n > 64)
		return fwd_err_fail(e, FWD_R_INTERNAL, NULL, 0, "", "too many options"),
		       FWD_OPTS_ERROR;
	memset(lopts, 0, sizeof(lopts));
	for (size_t i = 0; i < n; i++) {
		lopts[i] = (struct option){t[i].name, t[i].arg ? required_argument : no_argument,
					   NULL, OPT_VAL0 + (int)i};
		if (t[i].def && fwd_opt_set(&t[i], o, t[i].def, e))
			return FWD_OPTS_ERROR; /* a default the table itself refuses */
	}
	/* --help or -h anywhere wins over any error around it: someone asking
	 * how to write the line has not written it right yet. */
	for (int i = 1; i < argc; i++)
		for (size_t j = 0; j < n; j++)
			if (t[j].kind == FWD_OPT_HELP &&
			    (strcmp(argv[i], "-h") == 0 || (strncmp(argv[i], "--", 2) == 0 &&
							    strcmp(argv[i] + 2, t[j].name) == 0)))
				return FWD_OPTS_HELP;
	optind = 1;
	opterr = 0; /* the caller says what was wrong, once */
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		const struct fwd_opt *d;

		if (c < OPT_VAL0 || c >= OPT_VAL0 + (int)n) {
			fwd_err_fail(e, FWD_R_INVALID, NULL, 0, "",
				     "unknown option or missing value: %s",
				     optind > 0 && optind <= argc ? argv[optind - 1] : "?");
			return FWD_OPTS_ERROR;
		}
		d = &t[c - OPT_VAL0];
		if (d->kind == FWD_OPT_HELP)
			return FWD_OPTS_HELP;
		/* A second value silently won over the first: refused, as
		 * regionfwd does, or said by the program (@repeated). */
		if (d->kind != FWD_OPT_LIST && (d->kind != FWD_OPT_FLAG || d->once) &&
		    (seen & (1ull << (c - OPT_VAL0)))) {
			if (repeated == NULL) {
				fwd_err_fail(e, FWD_R_INVALID, NULL, 0, d->name, "--%s given twice",
					     d->name);
				return FWD_OPTS_ERROR;
			}
			again |= 1ull << (c - OPT_VAL0);
		}
		if (fwd_opt_set(d, o, optarg, e))
			return FWD_OPTS_ERROR;
		seen |= 1ull << (c - OPT_VAL0);
	}
	if (optind < argc) {
		fwd_err_fail(e, FWD_R_INVALID, NULL, 0, "", "unexpected argument: %s",
			     argv[optind]);
		return FWD_OPTS_ERROR;
	}
	for (size_t i = 0; i < n; i++)
		if (t[i].required && !(seen & (1ull << i))) {
			fwd_err_fail(e, FWD_R_INVALID, NULL, 0, t[i].name, "--%s is required",
				     t[i].name);
			return FWD_OPTS_ERROR;
		}
	if (given)
		*given = seen;
	if (repeated)
		*repeated = again;
	return FWD_OPTS_OK;
}

void fwd_opts_print(FILE *out, const struct fwd_opt *t, size_t n)
{
	int width = 0;

	for (size_t i = 0; i < n; i++) { /* one column for every option's left side */
		int w = 2 + (int)strlen(t[i].name) + (t[i].arg ? 1 + (int)strlen(t[i].arg) : 0) +
			(t[i].kind == FWD_OPT_HELP ? 4 : 0);

		width = w > width ? w : width;
	}
	for (size_t i = 0; i < n; i++) {
		const struct fwd_opt *d = &t[i];
		char left[64];

		snprintf(left, sizeof(left), "%s--%s%s%s", d->kind == FWD_OPT_HELP ? "-h, " : "",
			 d->name, d->arg ? " " : "", d->arg ? d->arg : "");
		fprintf(out, "  %-*s %s", width, left, d->help);
		if (d->def)
			fprintf(out, " (default %s)", d->def);
		fputc('\n', out);
	}
}

int fwd_parse_port(const char *s)
{
	long v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 5)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v >= 1 && v <= 65535 ? (int)v : -1;
}

int fwd_parse_listen(const char *s, struct addrinfo **out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
	const char *colon = strrchr(s, ':');
	char host[128];
	size_t len;

	if (colon == NULL || (len = (size_t)(colon - s)) >= sizeof(host))
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	if (host[0] == '[') { /* [v6]:port */
		if (len < 2 || host[len - 1] != ']')
			return -1;
		memmove(host, host + 1, len - 2);
		host[len - 2] = '\0';
	}
	if (fwd_parse_port(colon + 1) < 0 || getaddrinfo(host, colon + 1, &hints, &ai))
		return -1;
	if (out)
		*out = ai;
	else
		freeaddrinfo(ai);
	return 0;
}
