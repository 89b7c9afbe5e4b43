/*
 * fwd_class.h - the compiled classifier: everything after the source-prefix
 * lookup, as flat arrays the fast path reads with one access each.
 *
 *   (proto, dport)            -> service   port_svc[svc_key[proto] + dport] (one table)
 *   (region, service)         -> policy    matrix[region * nservices + service]
 *   policy                    -> action    policies[policy] (link state folded in)
 *   (group, 5-tuple hash)     -> link      slots[group][hash >> 20]
 *
 * Policy precedence (region, service) > (region, any) > (any, service) >
 * default is resolved when the matrix is built, so the fast path never
 * searches. Group slots are filled by weighted rendezvous hashing of
 * (link name, slot) in integer arithmetic: the same table gives the same
 * slots on every box, and a weight change, a link going down or a member
 * removed moves only the slots that must move.
 *
 * DPDK-free: the unit tests, the fast path and the control plane's explain
 * all use this module. Built once per generation; immutable afterwards but
 * for the group slots, which fwd_class_ports_out() refills when a member's
 * port goes down or comes back (the dataplane's control thread only).
 */
#ifndef FWD_CLASS_H
#define FWD_CLASS_H

#include <stdint.h>

#include "fwd_defs.h"
#include "fwd_pktops.h"
#include "fwd_table.h"

struct fwd_class_policy {
	uint8_t action; /* FWD_ACT_*, with a down link already turned into DROP */
	uint8_t drop; /* when action is DROP: enum fwd_drop (POLICY or NO_LINK) */
	uint16_t link; /* FWD_ACT_LINK */
	uint16_t group; /* FWD_ACT_GROUP */
	uint16_t mirror; /* link, or FWD_LINK_NONE (also when the mirror link is down) */
};

struct fwd_class {
	uint16_t nregions, nservices, nlinks, ngroups;
	uint32_t npolicies;
	/* TCP, UDP and SCTP by port (3 x 65536 entries), then one entry per
	 * port-less protocol (256). svc_key[proto] holds the base index in its
	 * low 32 bits and the port mask (0xffff, or 0 for port-less protocols)
	 * in its high 32 bits: the lookup is one load, an and and an add. */
	uint16_t *port_svc;
	uint64_t *svc_key; /* 256 entries */
	uint16_t *matrix; /* nregions x nservices -> policy id */
	struct fwd_class_policy *policies;
	uint16_t (*slots)[FWD_GROUP_SLOTS]; /* per group: link id or FWD_LINK_NONE */
	/* Per link: the @out of the last fwd_class_ports_out() (all
	 * FWD_PORT_IN as built); fwd_class_member_out() says which groups
	 * leave it out. */
	uint8_t *link_out;
};

/* What the classifier decided for one packet. */
struct fwd_decision {
	uint32_t cell; /* region * nservices + service: the policy matrix index */
	uint16_t region, service, policy;
	uint16_t link; /* FWD_LINK_NONE when dropped */
	uint16_t mirror; /* FWD_LINK_NONE when no mirror */
	uint8_t drop; /* 0, or 1 + enum fwd_drop */
};

/**
 * Compile a validated table.
 * @return the classifier, or NULL with errno = ENOMEM
 */
struct fwd_class *fwd_class_build(const struct fwd_table *t);
void fwd_class_free(struct fwd_class *c);

/* What fwd_class_ports_out() is told of a link's port: in, held (up
 * again, not yet for long: FWD_PORT_HELD and up, the lower the longer it
 * has been up) or down. */
enum {
	FWD_PORT_IN = 0,
	FWD_PORT_HELD = 1,
	FWD_PORT_DOWN = 255,
};

/**
 * Take the links whose port is down or held out of their groups, and let
 * those whose port is in again back: each group with a member whose @out
 * changed is filled again as if its left-out members were down in @t (so
 * only their flows move, to the members rendezvous hashing ranks next),
 * and each slot that differs is stored whole while workers read it. Of
 * the members that may take slots, those whose port is in carry, or when
 * none is, those held longest; when every one's port is down the group
 * keeps its table's slots. Only one thread may call it for @c; @t is the
 * table @c was built from (or one with the same links and groups).
 * @param out    per link of @t: FWD_PORT_IN, a held rank or FWD_PORT_DOWN
 * @param moved  slots that changed
 * @return 0, or -ENOMEM with the slots and link_out unchanged
 */
int fwd_class_ports_out(struct fwd_class *c, const struct fwd_table *t, const uint8_t *out,
			uint32_t *moved);

/**
 * Whether member @i of @group is out of the group for its port's sake at
 * the last fwd_class_ports_out(): it can take slots by the table and the
 * group leaves it out (see there: not when the group has no other member
 * that can take its slots).
 */
int fwd_class_member_out(const struct fwd_class *c, const struct fwd_table *t, uint16_t group,
			 uint16_t i);

/** Per member of @group: fwd_class_member_out(), into @out. */
void fwd_class_group_out(const struct fwd_class *c, const struct fwd_table *t, uint16_t group,
			 uint8_t out[FWD_MAX_GROUP_MEMBERS]);

/** Index of TCP/UDP/SCTP in port_svc, or -1. */
static inline int fwd_class_port_index(uint8_t proto)
{
	return proto == FWD_PROTO_TCP	 ? 0
	       : proto == FWD_PROTO_UDP	 ? 1
	       : proto == FWD_PROTO_SCTP ? 2
					 : -1;
}

static inline uint16_t fwd_class_service(const struct fwd_class *c, uint8_t proto, uint16_t dport)
{
	uint64_t k = c->svc_key[proto];

	return c->port_svc[(uint32_t)k + (dport & (uint32_t)(k >> 32))];
}

/* fwd_class_service() when the caller knows @proto is TCP, UDP or SCTP (the
 * fast path's plain bursts): their port mask is all ones, so it is left out. */
static inline uint16_t fwd_class_service_ports(const struct fwd_class *c, uint8_t proto,
					       uint16_t dport)
{
	return c->port_svc[(uint32_t)c->svc_key[proto] + dport];
}

/* The policy matrix (and counter cell) index of (region, service). */
static inline uint32_t fwd_class_cell(const struct fwd_class *c, uint16_t region, uint16_t service)
{
	return (uint32_t)region * c->nservices + service;
}

/* The link group @group gives the flow whose fwd_flow_hash() is @hash:
 * its slot's link, or FWD_LINK_NONE when the slot has none. */
static inline uint16_t fwd_class_slot(const struct fwd_class *c, uint16_t group, uint32_t hash)
{
	/* Relaxed: fwd_class_ports_out() may store the slot meanwhile; the
	 * load reads it whole (the same mov as a plain load on x86-64). */
	return __atomic_load_n(&c->slots[group][hash >> (32 - FWD_GROUP_SLOTS_LOG2)],
			       __ATOMIC_RELAXED);
}

/* The tail of a decision once service and policy are known; @hash is used
 * only when the policy steers to a group. */
static inline void fwd_class_finish(const struct fwd_class *c, uint16_t region, uint16_t service,
				    uint32_t cell, uint16_t pid, uint32_t hash,
				    struct fwd_decision *d)
{
	const struct fwd_class_policy *p = &c->policies[pid];

	d->cell = cell;
	d->region = region;
	d->service = service;
	d->policy = pid;
	d->mirror = p->mirror;
	d->drop = 0;
	if (p->action == FWD_ACT_LINK) {
		d->link = p->link;
	} else if (p->action == FWD_ACT_GROUP) {
		d->link = fwd_class_slot(c, p->group, hash);
		if (d->link == FWD_LINK_NONE)
			d->drop = 1 + FWD_DROP_NO_LINK;
	} else {
		d->link = FWD_LINK_NONE;
		d->drop = (uint8_t)(1 + p->drop);
	}
}

/**
 * Decide a packet whose source region is known.
 * @param hash  fwd_flow_hash() of the packet (only used for groups)
 */
static inline void fwd_class_decide(const struct fwd_class *c, uint16_t region, uint8_t proto,
				    uint16_t dport, uint32_t hash, struct fwd_decision *d)
{
	uint16_t service = fwd_class_service(c, proto, dport);
	uint32_t cell = fwd_class_cell(c, region, service);

	fwd_class_finish(c, region, service, cell, c->matrix[cell], hash, d);
}

/**
 * fwd_class_finish() for a parsed packet whose service, cell and policy are
 * known (the fast path looks those up for a whole burst first): the 5-tuple
 * hash is computed only when the policy steers to a group, the one case
 * that needs it.
 */
static inline void fwd_class_finish_pkt(const struct fwd_class *c, uint16_t region,
					uint16_t service, uint32_t cell, uint16_t pid,
					const struct fwd_pkt *pkt, struct fwd_decision *d)
{
	fwd_class_finish(c, region, service, cell, pid,
			 c->policies[pid].action == FWD_ACT_GROUP ? fwd_flow_hash(pkt) : 0, d);
}

/** fwd_class_decide() for a parsed packet. */
static inline void fwd_class_decide_pkt(const struct fwd_class *c, uint16_t region,
					const struct fwd_pkt *pkt, struct fwd_decision *d)
{
	uint16_t service = fwd_class_service(c, pkt->proto, pkt->dport);
	uint32_t cell = fwd_class_cell(c, region, service);

	fwd_class_finish_pkt(c, region, service, cell, c->matrix[cell], pkt, d);
}

/**
 * Rendezvous score input for (link name, slot), exposed for tests: the
 * fixed-point -log2(u) of the slot's uniform draw. Larger weight / cost wins.
 */
uint64_t fwd_class_hrw_cost(const char *link_name, uint32_t slot);

#endif /* FWD_CLASS_H */
