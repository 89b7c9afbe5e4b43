#include "fwd_names.h"

const char *const fwd_drop_names[FWD_DROP_MAX] = {
#define FWD_DROP(id, name, help) [FWD_DROP_##id] = name,
#include "fwd_counters.def"
#undef FWD_DROP
};

const char *const fwd_drop_help[FWD_DROP_MAX] = {
#define FWD_DROP(id, name, help) [FWD_DROP_##id] = help,
#include "fwd_counters.def"
#undef FWD_DROP
};

const char *const fwd_evt_names[FWD_EVT_MAX] = {
#define FWD_EVT(id, name, help) [FWD_EVT_##id] = name,
#include "fwd_counters.def"
#undef FWD_EVT
};

const char *const fwd_evt_help[FWD_EVT_MAX] = {
#define FWD_EVT(id, name, help) [FWD_EVT_##id] = help,
#include "fwd_counters.def"
#undef FWD_EVT
};
