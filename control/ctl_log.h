/*
 * ctl_log.h - regiond's one log. Every line has a level (syslog's
 * priorities) and goes to one target chosen at start (--log): stderr, with
 * a UTC timestamp and the level in front; the journal (sd_journal_send),
 * with PRIORITY and, for changes, structured fields; or syslog. Lines
 * below the chosen level (--log-level) are dropped.
 *
 * Changes to policy go through ctl_log_change(): each applied, refused,
 * reverted, rolled back or confirmed change is logged exactly once, at the
 * point that decided it, with the generation, the author the request
 * named, the authenticated client, the request and the reason (journal
 * fields EVENT, GENERATION, AUTHOR, CLIENT, REQUEST, REASON).
 *
 * Not thread-safe to open; ctl_log() and ctl_log_change() may be called
 * from any thread once it is open (each line is one write or one call).
 */
#ifndef CTL_LOG_H
#define CTL_LOG_H

#include <stdint.h>

enum ctl_log_level {
	CTL_LOG_ERR = 3,
	CTL_LOG_WARNING = 4,
	CTL_LOG_NOTICE = 5,
	CTL_LOG_INFO = 6,
	CTL_LOG_DEBUG = 7,
};

/* The names --log and --log-level take, NULL-terminated. */
extern const char *const ctl_log_targets[];
extern const char *const ctl_log_levels[]; /* index + 3 is the level */

/**
 * Log as @ident to target @target (an index in ctl_log_targets) at
 * @level and above. Before it is called, lines go to stderr at info.
 * @return 0, or -ENOTSUP when the journal is asked for and regiond was
 * built without libsystemd
 */
int ctl_log_open(const char *ident, unsigned target, int level);

/** One line at @level. */
void ctl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One change to policy, as ctl_log_change() records it. */
struct ctl_log_change {
	const char *event; /* "applied", "refused", "reverted", "rolled back", "confirmed" */
	uint64_t generation; /* the new one; for "refused", the one that stays */
	uint64_t hash; /* the new generation's content hash; 0 when none */
	const char *author; /* as the request named it; may be NULL */
	const char *client; /* the authenticated client, or "regiond" */
	const char *request; /* "PUT /v1/table", ...; may be NULL */
	const char *reason; /* the comment, or why it was refused; may be NULL */
};

/** The change @c, once, at notice (refused: warning). */
void ctl_log_change(const struct ctl_log_change *c);

void ctl_log_close(void);

#endif /* CTL_LOG_H */
