/*
 * fwd_names.h - names and help texts of the counters in fwd_counters.def,
 * expanded from the same list as the enums so they cannot drift.
 */
#ifndef FWD_NAMES_H
#define FWD_NAMES_H

#include "fwd_defs.h"

extern const char *const fwd_drop_names[FWD_DROP_MAX];
extern const char *const fwd_drop_help[FWD_DROP_MAX];
extern const char *const fwd_evt_names[FWD_EVT_MAX];
extern const char *const fwd_evt_help[FWD_EVT_MAX];

#endif /* FWD_NAMES_H */
