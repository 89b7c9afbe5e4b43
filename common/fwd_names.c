#include "fwd_names.h"

#include <string.h>

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

const char *const fwd_schema_names[FWD_SCHEMA_MAX] = {
#define FWD_KEY(sc, id, name) [FWD_F_##sc##_##id] = name,
#define FWD_WORD(sc, id, name) [FWD_V_##sc##_##id] = name,
#include "fwd_schema.def"
};

const struct fwd_scope_info fwd_scopes[FWD_SC_MAX] = {
#define FWD_SCOPE(sc, what_)                                                                       \
	[FWD_SC_##sc] = {.name = #sc,                                                              \
			 .what = what_,                                                            \
			 .begin = FWD_SCHEMA_BEGIN_##sc,                                           \
			 .end = FWD_SCHEMA_END_##sc},
#include "fwd_schema.def"
};

enum fwd_scope fwd_schema_scope(enum fwd_schema id)
{
	for (unsigned sc = 0; sc < FWD_SC_MAX; sc++)
		if ((unsigned)id >= fwd_scopes[sc].begin && (unsigned)id < fwd_scopes[sc].end)
			return (enum fwd_scope)sc;
	return FWD_SC_MAX;
}

int fwd_schema_lookup(enum fwd_scope sc, const char *name)
{
	if ((unsigned)sc >= FWD_SC_MAX || name == NULL)
		return -1;
	for (unsigned i = fwd_scopes[sc].begin; i < fwd_scopes[sc].end; i++)
		if (strcmp(fwd_schema_names[i], name) == 0)
			return (int)i;
	return -1;
}

int fwd_schema_index(enum fwd_scope sc, const char *name)
{
	int id = fwd_schema_lookup(sc, name);

	return id < 0 ? -1 : id - (int)fwd_scopes[sc].begin;
}
