/*
 * ctl_bird.h - BGP session state from BIRD 2's control socket, for the
 * routing feed (docs/bgp-feed.md): the feed holds what it learned while a
 * session is down instead of withdrawing it at once.
 *
 * BIRD's control protocol (what birdc speaks): a greeting "0001 BIRD
 * VERSION ready.", then per command a reply of lines "CODE-text" (more
 * follow), " text" (continuing the previous code) and "CODE text" (the last
 * of that code), ended by "0000 "; codes 8000-9999 are errors. "show
 * protocols" answers one 1002 line per protocol: name, protocol, table,
 * state, since, info ("Established", "Active", "Connect" for BGP). A BGP
 * protocol whose state is "up" is an established session.
 */
#ifndef CTL_BIRD_H
#define CTL_BIRD_H

#include <stddef.h>

/* Sessions listed in the status; every session is judged, listed or not. */
#define CTL_BIRD_MAX_SESSIONS 32
/* BIRD's longest symbol, a protocol's or a table's name (SYM_MAX_LEN). */
#define CTL_BIRD_NAME_MAX 64

struct ctl_bird_session {
	char name[CTL_BIRD_NAME_MAX + 1];
	char state[16]; /* BIRD's: up, start, down, flush */
	char info[64]; /* BIRD's: Established, Active, Connect, Idle ... */
	int up; /* state "up": established */
};

/**
 * Parse the reply to "show protocols" (@reply, NUL-terminated, from the
 * first line after the command to the "0000" line).
 * @return the number of BGP protocols found, every one judged: *@down is
 *         how many are not up. At most @max are kept in @out, in the
 *         reply's order, sessions not up before up ones (so a session down
 *         is always listed while fewer than @max are). Or -EPROTO for a
 *         reply that is not BIRD's (a name longer than BIRD allows
 *         included, with @why), or -EINVAL for an error reply (its text in
 *         @why)
 */
int ctl_bird_parse(const char *reply, struct ctl_bird_session *out, unsigned max, unsigned *down,
		   char *why, size_t whylen);

/**
 * Ask BIRD at @path (its control socket) for its BGP sessions, within
 * @timeout_ms in all.
 * @return as ctl_bird_parse, or -errno (unreachable, timed out) with @why
 */
int ctl_bird_sessions(const char *path, int timeout_ms, struct ctl_bird_session *out, unsigned max,
		      unsigned *down, char *why, size_t whylen);

#endif /* CTL_BIRD_H */
