/*
 * ctl_exit.h - the one place where a reason (fwd_reasons.def) becomes the
 * exit status of a CLI (regionctl). docs/regionctl.md lists the codes:
 *   0 done, 1 refused (the request or document: nothing changed),
 *   2 usage, 3 unreachable (regiond, or regionfwd behind it),
 *   4 failed (regiond could not carry it out: its disk, memory, a kernel or
 *     protocol fault; nothing changed).
 */
#ifndef CTL_EXIT_H
#define CTL_EXIT_H

#include "fwd_err.h"

enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_REFUSED = 1,
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_UNREACHABLE = 3,
	CTL_EXIT_FAILED = 4,
	/* A write whose request went out whole and got no answer (a regiond
	 * that hung past --timeout, or died): it may have been carried out.
	 * Not 3, which a script may retry as "nothing changed". */
	CTL_EXIT_UNKNOWN = 5,
};

/** The exit status for @r. */
enum ctl_exit ctl_exit_code(enum fwd_reason r);

/** The exit status for an error @code from the API (a name in
 *  fwd_reasons.def); a code this build does not know (a newer regiond) by
 *  its HTTP @status: 5xx failed, else refused. */
enum ctl_exit ctl_exit_code_of(const char *code, int status);

#endif /* CTL_EXIT_H */
