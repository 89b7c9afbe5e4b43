/* dp_log.h - the fast path's log type; DP_LOG(ERR, "...") */
#ifndef DP_LOG_H
#define DP_LOG_H

#include <rte_log.h>

extern int dp_logtype;
#define DP_LOG(level, fmt, ...)                                                                    \
	rte_log(RTE_LOG_##level, dp_logtype, "regionfwd: " fmt "\n", ##__VA_ARGS__)

#endif /* DP_LOG_H */
