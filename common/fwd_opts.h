/*
 * fwd_opts.h - a program's command-line options described once, as a
 * table of descriptors (the way xdp-tools' params describe theirs): from
 * it come getopt_long's table, the defaults (parsed like the command line,
 * so --help never names a default that is not in force), the value checks
 * and the option lines of --help. regiond and regionfwd-gen use it;
 * regionctl's commands have their own table (subcommands, positionals).
 *
 * Each descriptor names a member of the program's options struct by
 * offset; its kind says the member's type.
 */
#ifndef FWD_OPTS_H
#define FWD_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fwd_err.h"

enum fwd_opt_kind {
	FWD_OPT_STR, /* const char *: the argument as is */
	FWD_OPT_UINT, /* uint64_t in min..max, else the 'refused' message */
	FWD_OPT_U32, /* uint32_t in min..max (max 0: UINT32_MAX), else 'refused' */
	FWD_OPT_REAL, /* a finite double in min..max (max 0: no bound), else 'refused' */
	FWD_OPT_LIST, /* struct fwd_opt_list: appended, at most max times */
	FWD_OPT_CHOICE, /* uint64_t: the index of the argument in choices[] */
	FWD_OPT_MAC, /* uint8_t[6]: a MAC address */
	FWD_OPT_FLAG, /* int: takes no argument, sets 1 */
	FWD_OPT_HELP, /* --help: parsing stops and says so */
};

#define FWD_OPT_LIST_MAX 16

struct fwd_opt_list {
	const char *v[FWD_OPT_LIST_MAX];
	unsigned n;
};

struct fwd_opt {
	const char *name; /* without the leading "--" */
	const char *arg; /* the argument's name in --help; NULL: takes none */
	const char *def; /* the default, as it would be given; NULL: none */
	const char *help; /* one line; --help adds "(default DEF)" */
	enum fwd_opt_kind kind;
	size_t off; /* the member it sets */
	uint64_t min, max; /* FWD_OPT_UINT, _U32, _REAL: the range; FWD_OPT_LIST: how many */
	const char *const *choices; /* FWD_OPT_CHOICE: NULL-terminated */
	const char *refused; /* FWD_OPT_UINT, FWD_OPT_CHOICE: the message for a bad value */
	unsigned required : 1; /* the program refuses to start without it */
	unsigned mark : 1; /* the program's own (regiond: needs libbpf; gen: a mode option) */
	unsigned once : 1; /* FWD_OPT_FLAG: given twice is refused as other options are */
};

/** Set what @d sets in @o from @arg. @return 0, or -EINVAL with @e. */
int fwd_opt_set(const struct fwd_opt *d, void *o, const char *arg, struct fwd_err *e);

enum fwd_opts_result {
	FWD_OPTS_OK = 0,
	FWD_OPTS_HELP = 1, /* --help was given: print it, exit 0 */
	FWD_OPTS_ERROR = -1, /* @e says why: print it, exit 2 */
};

/**
 * The defaults of @t (n entries, at most 64), then @argv, into @o; a
 * required option missing is an error. An option given twice (but a list,
 * or a flag without 'once') is an error too when @repeated is NULL; else
 * its last value is taken and its bit set in @repeated, for the program to
 * say (a systemd unit's own option repeated in its ARGS once worked, and
 * an upgrade must not stop the daemon for it).
 * Numbers are decimal digits first, nothing after: "", " 5", "+5", "5k",
 * "nan" and "inf" are refused, naming the option. @given (optional) gets a bit per
 * option the command line gave.
 */
enum fwd_opts_result fwd_opts_parse(const struct fwd_opt *t, size_t n, int argc, char **argv,
				    void *o, uint64_t *given, uint64_t *repeated,
				    struct fwd_err *e);

/** A TCP port in decimal, 1..65535 and nothing else (getaddrinfo() takes
 *  "84010" and wraps it to 18474), or -1. */
int fwd_parse_port(const char *s);

struct addrinfo;

/** A TCP listening address, "ADDR:PORT" or "[V6ADDR]:PORT": a numeric
 *  address (no name to resolve) and a port as fwd_parse_port() reads it.
 *  The address into @ai when it is not NULL (freeaddrinfo() it): the
 *  option's check at start and the socket regiond binds read it alike.
 *  @return 0, or -1. */
int fwd_parse_listen(const char *s, struct addrinfo **ai);

/** The options' lines of --help: "  --name ARG   help (default DEF)". */
void fwd_opts_print(FILE *out, const struct fwd_opt *t, size_t n);

#endif /* FWD_OPTS_H */
