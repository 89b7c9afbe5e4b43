/*
 * fwd_defs.h - definitions shared by the fast path, the control plane, the
 * BPF programs and the tests: limits, reserved ids and the outcome enums.
 *
 * Only fixed-width types and no libc, so that a BPF program can include it.
 * Limits are #ifndef so a build may override them; the table validator
 * refuses documents that exceed them, so the fast path never meets a table
 * it cannot hold.
 */
#ifndef FWD_DEFS_H
#define FWD_DEFS_H

#include "fwd_types.h"

#define FWD_BURST 32 /* packets per RX burst and per processing stage */

/* The largest generation id: 2^53 - 1, the largest integer every JSON
 * reader holds exactly (RFC 8259 section 6). regiond hands out no id past
 * it and regionfwd runs none: an id past 2^63 once went out as a negative
 * number in every status, which regiond then refused at its next start. */
#define FWD_GEN_ID_MAX ((UINT64_C(1) << 53) - 1)

#ifndef FWD_MAX_VLAN
#define FWD_MAX_VLAN 2 /* 802.1Q, and QinQ (802.1ad outer + 802.1Q inner) */
#endif
#ifndef FWD_MAX_IPV6_EXT
#define FWD_MAX_IPV6_EXT 8 /* extension headers walked before giving up */
#endif

/* Table limits (checked by the validator). */
#define FWD_NAME_MAX 32 /* names: 1..31 chars of [A-Za-z0-9_.-] */
#define FWD_MAX_REGIONS 4000 /* plus the built-in 'unknown' */
#define FWD_MAX_SERVICES 4000 /* plus the built-in 'other' */
#define FWD_MAX_LINKS 1024
#define FWD_MAX_GROUPS 1024
#define FWD_MAX_GROUP_MEMBERS 64
#define FWD_MAX_POLICIES 65000
#define FWD_MAX_TAGS 16 /* residency tags per link */
#define FWD_MAX_PREFIX4 4000000
#define FWD_MAX_PREFIX6 1000000
#define FWD_MAX_RESIDENCY 1024

/* Reserved ids. Region 0 is 'unknown' (no prefix matched), service 0 is
 * 'other' (no port matched), policy 0 is the document's default. */
#define FWD_REGION_UNKNOWN 0
#define FWD_SERVICE_OTHER 0
#define FWD_POLICY_DEFAULT 0
#define FWD_ANY 0xffffu /* wildcard region/service in a policy */
#define FWD_LINK_NONE 0xffffu /* no usable link: the packet is dropped */

/* Link groups map a flow hash onto this many slots; each slot holds a link
 * chosen by weighted rendezvous hashing (see fwd_class.c). */
#define FWD_GROUP_SLOTS_LOG2 12
#define FWD_GROUP_SLOTS (1u << FWD_GROUP_SLOTS_LOG2)

/* regionfwd ends a capture that no read (OP_CAPTURE_READ) came for in this
 * long: its regiond went away. regiond counts on it too, to know when a
 * capture whose client stopped reading is over at regionfwd. */
#define FWD_CAPTURE_LEASE_MS 10000

enum fwd_drop {
#define FWD_DROP(id, name, help) FWD_DROP_##id,
#include "fwd_counters.def"
#undef FWD_DROP
	FWD_DROP_MAX
};

enum fwd_evt {
#define FWD_EVT(id, name, help) FWD_EVT_##id,
#include "fwd_counters.def"
#undef FWD_EVT
	FWD_EVT_MAX
};

/* The names of the table document (fwd_schema.def). enum fwd_schema numbers
 * every name; a scope's names are contiguous, from FWD_SCHEMA_BEGIN_<SC> to
 * before FWD_SCHEMA_END_<SC> (markers that take no number of their own). */
enum fwd_scope {
#define FWD_SCOPE(sc, what) FWD_SC_##sc,
#include "fwd_schema.def"
	FWD_SC_MAX
};

enum fwd_schema {
#define FWD_SCOPE(sc, what)                                                                        \
	FWD_SCHEMA_BEGIN_##sc, FWD_SCHEMA_BEGIN_##sc##_ = FWD_SCHEMA_BEGIN_##sc - 1,
#define FWD_KEY(sc, id, name) FWD_F_##sc##_##id,
#define FWD_WORD(sc, id, name) FWD_V_##sc##_##id,
#define FWD_SCOPE_END(sc) FWD_SCHEMA_END_##sc, FWD_SCHEMA_END_##sc##_ = FWD_SCHEMA_END_##sc - 1,
#include "fwd_schema.def"
	FWD_SCHEMA_MAX
};

/* Index of word ID within its scope: FWD_SCHEMA_POS(CONTENT_FIELD, TLS_SNI) is 1. */
#define FWD_SCHEMA_POS(sc, id) (FWD_V_##sc##_##id - FWD_SCHEMA_BEGIN_##sc)

/* Parse result: 0 is success, otherwise 1 + enum fwd_drop. Keeping "ok" as 0
 * lets the hot path test one register. */
#define FWD_OK 0
#define FWD_ERR(id) (1 + FWD_DROP_##id)
#define FWD_ERR_TO_DROP(e) ((enum fwd_drop)((e)-1))

enum fwd_frag {
	FWD_FRAG_NONE = 0, /* not a fragment (or an IPv6 atomic fragment) */
	FWD_FRAG_FIRST = 1, /* offset 0, more fragments follow: carries the ports */
	FWD_FRAG_LATER = 2, /* offset > 0: no L4 header, takes the first's decision */
};

enum fwd_action {
	FWD_ACT_DROP = 0,
	FWD_ACT_LINK = 1, /* steer to one link */
	FWD_ACT_GROUP = 2, /* steer to a link group by consistent hash */
};

/* IP protocol numbers the classifier knows by name. */
#define FWD_PROTO_ICMP 1
#define FWD_PROTO_TCP 6
#define FWD_PROTO_UDP 17
#define FWD_PROTO_ICMPV6 58
#define FWD_PROTO_SCTP 132

#endif /* FWD_DEFS_H */
