/*
 * fwd_names.h - names and help texts of the counters in fwd_counters.def,
 * and the names of the table document in fwd_schema.def, expanded from the
 * same lists as the enums so they cannot drift.
 */
#ifndef FWD_NAMES_H
#define FWD_NAMES_H

#include "fwd_defs.h"

extern const char *const fwd_drop_names[FWD_DROP_MAX];
extern const char *const fwd_drop_help[FWD_DROP_MAX];
extern const char *const fwd_evt_names[FWD_EVT_MAX];
extern const char *const fwd_evt_help[FWD_EVT_MAX];

/* ---- the table document's names (fwd_schema.def) ---- */

extern const char *const fwd_schema_names[FWD_SCHEMA_MAX];

struct fwd_scope_info {
	const char *name; /* "LINK" */
	const char *what; /* "a link: links.<name>" */
	uint16_t begin, end; /* its names are fwd_schema_names[begin .. end - 1] */
};

extern const struct fwd_scope_info fwd_scopes[FWD_SC_MAX];

/** The name of @id ("next_hop_mac" for FWD_F_LINK_NEXT_HOP_MAC), NULL out of range. */
static inline const char *fwd_schema_name(enum fwd_schema id)
{
	return (unsigned)id < FWD_SCHEMA_MAX ? fwd_schema_names[id] : (const char *)0;
}

/** Shorthands: FWD_KEY_NAME(LINK, PORT) is "port", FWD_WORD_NAME(LINK_STATE, UP) is "up".
 *  Wrappers must paste too, not pass ids on: AF_XDP and TRUE may be macros. */
#define FWD_KEY_NAME(sc, id) (fwd_schema_names[FWD_F_##sc##_##id])
#define FWD_WORD_NAME(sc, id) (fwd_schema_names[FWD_V_##sc##_##id])

/** The scope @id belongs to, or FWD_SC_MAX out of range. */
enum fwd_scope fwd_schema_scope(enum fwd_schema id);

/** The id of @name within scope @sc, or -1 when @sc has no such name. */
int fwd_schema_lookup(enum fwd_scope sc, const char *name);

/** Like fwd_schema_lookup(), but the index within the scope (0 = its first name), or -1. */
int fwd_schema_index(enum fwd_scope sc, const char *name);

/** Scope @sc's names in .def order; *@n gets their number. */
static inline const char *const *fwd_schema_keys(enum fwd_scope sc, unsigned *n)
{
	*n = (unsigned)(fwd_scopes[sc].end - fwd_scopes[sc].begin);
	return &fwd_schema_names[fwd_scopes[sc].begin];
}

#endif /* FWD_NAMES_H */
