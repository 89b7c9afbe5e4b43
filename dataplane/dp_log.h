/* dp_log.h - the fast path's log type, DP_LOG(ERR, "..."), and where DPDK's log goes */
#ifndef DP_LOG_H
#define DP_LOG_H

#include <rte_log.h>

extern int dp_logtype;
#define DP_LOG(level, fmt, ...)                                                                    \
	rte_log(RTE_LOG_##level, dp_logtype, "regionfwd: " fmt "\n", ##__VA_ARGS__)

/**
 * Send DPDK's whole log (EAL's, the PMDs', DP_LOG's) through fwd_log to
 * @target ("stderr": timestamped with the level; "journal"; "syslog"), each
 * line at the level rte_log prints it at. Call before rte_eal_init, so
 * EAL's lines go there too; levels filtering stays rte_log's (--log-level).
 * @return 0, -EINVAL for an unknown target, -ENOTSUP for the journal in a
 * build without libsystemd
 */
int dp_log_redirect(const char *target);

/**
 * Without --log: DPDK's default (stderr and syslog, lines as DPDK prints
 * them) but with control characters other than newline and tab as \xNN.
 * Call before rte_eal_init. @return 0 or -errno
 */
int dp_log_plain(void);

#endif /* DP_LOG_H */
