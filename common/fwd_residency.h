/*
 * fwd_residency.h - refuse tables that would send a region's protected
 * traffic out of region.
 *
 * A residency rule says: traffic of region R for services S may leave only
 * on links tagged with one of T. The check walks the compiled policy matrix,
 * so it sees exactly what the fast path would do, precedence included: for
 * every (R, s) cell of every rule, the effective policy's link, every member
 * of its group that can carry traffic (weight > 0, up or down: a down link
 * may come back up), and its mirror link must carry an allowed tag. Because
 * every member of such a group is allowed, failover inside the group can
 * only pick allowed links; when none is up the packets are dropped
 * (no_link_up): fail closed.
 */
#ifndef FWD_RESIDENCY_H
#define FWD_RESIDENCY_H

#include "fwd_class.h"
#include "fwd_err.h"
#include "fwd_table.h"

/**
 * @param c  the table's compiled classifier (fwd_class_build(t))
 * @return 0 when every rule holds, -EPERM with @err naming the rule, the
 *         policy (its path and line) and the link that breaks it
 */
int fwd_residency_check(const struct fwd_table *t, const struct fwd_class *c, struct fwd_err *err);

/**
 * Content rule @cr (a mirror or steer) against every residency rule of a
 * region it runs on: -EPERM with @err (FWD_R_RESIDENCY_VIOLATION, at @path
 * and the rule's line) when it would carry protected traffic on a link the
 * rule does not allow. Called by the parser for each rule, and by
 * fwd_residency_check() for the whole table; a region nested in a
 * protected one is fwd_residency_check_pair()'s.
 */
int fwd_residency_check_content(const struct fwd_table *t, const struct fwd_content_rule *cr,
				const char *path, struct fwd_err *err);

/*
 * Nested prefixes. Longest prefix wins, so a prefix of region B inside a
 * prefix of region A takes those addresses from A. When a residency rule
 * protects A, that would carve A's protected users out to B's links: it is
 * allowed only when B's policy for every service the rule protects keeps to
 * the rule's links, and so does every content rule scoped to B that mirrors
 * or steers one of those services. That holds for every protected prefix that covers B's,
 * not only the nearest: a region in between does not lift A's rules.
 * fwd_residency_check() checks every prefix against each of its protected
 * covers (sorted prefixes, one walk); deltas check the pairs they add with
 * fwd_residency_check_pair().
 */

/* How a nested-prefix refusal's reason begins (inner prefix and region,
 * outer prefix and region): the routing feed reads it back
 * (fwd_residency_nested_of) to tell which learned prefix is in the way. */
#define FWD_RESIDENCY_NESTED_HEAD "prefix %s of region '%s' lies inside %s of region '%s'"

/** The prefixes and regions of a reason fwd_residency_check_pair() wrote
 *  (FWD_RESIDENCY_NESTED_HEAD), each buffer of 64 bytes (regions:
 *  FWD_NAME_MAX). @return 0, or -EINVAL when @reason is not one. */
int fwd_residency_nested_of(const char *reason, char inner[64], char inner_region[FWD_NAME_MAX],
			    char outer[64], char outer_region[FWD_NAME_MAX]);

/** 0 when region @inner nested in protected region @outer keeps to @outer's
 *  rules, else -EPERM with @err (FWD_R_RESIDENCY_VIOLATION) naming both
 *  prefixes (text given), the rule, the service and the link. */
int fwd_residency_check_pair(const struct fwd_table *t, const struct fwd_class *c, uint16_t inner,
			     uint16_t outer, const char *inner_pfx, const char *outer_pfx,
			     uint32_t line, const char *path, struct fwd_err *err);

/*
 * The verdicts of fwd_residency_check_pair() for one table and classifier,
 * without its text and memoised per pair. A check of nested prefixes asks
 * for many pairs, and fwd_residency_check_pair() walks every rule of the
 * outer region, every service and every group member for each: a 65 KB
 * table (1,000 regions under a protected 0.0.0.0/0 with 100 rules on all of
 * 1,000 services, a group of 64) took 33 s to validate, one at the limits
 * hours, with regionfwd deaf meanwhile (a hostile probe). Here the rules of
 * an outer region are folded once into the links allowed per service, and a
 * pair costs one policy test per protected service.
 */
struct fwd_res_pairs;

/** For @t and its classifier @c (both outlive it); NULL when out of memory. */
struct fwd_res_pairs *fwd_residency_pairs_create(const struct fwd_table *t,
						 const struct fwd_class *c);

/** 1 when @inner keeps to every rule of @outer (fwd_residency_check_pair()
 *  returns 0), 0 when it breaks one (ask fwd_residency_check_pair() for the
 *  reason), -ENOMEM. */
int fwd_residency_pair_ok(struct fwd_res_pairs *p, uint16_t inner, uint16_t outer);

void fwd_residency_pairs_free(struct fwd_res_pairs *p);

/**
 * Addresses of protected region @from handed to region @to (a prefix of
 * @from removed or withdrawn, its cover in @to, 'unknown' included; or
 * moved to @to): no rule refuses that, since the table says who the users
 * are (docs/table-format.md, "What a rule does not see"), but an operator
 * must hear of it. 1 with @why ("residency rule 'R' of region 'F' allows
 * service 'S' only on links tagged T, but region 'X' steers to link 'L'
 * (no tags)") when @to's policies or content rules would carry a service
 * that one of @from's rules in @t protects on a link it does not allow;
 * 0 when @to keeps to them all (or @from has none).
 */
int fwd_residency_handover(const struct fwd_table *t, const struct fwd_class *c, uint16_t to,
			   uint16_t from, char *why, size_t len);

/**
 * 1 when link @link may carry traffic of (@region, @service) under table @t:
 * the link the cell's policy steers or mirrors to, or a member of its group
 * that takes flows (these keep to every rule, the table being valid), or any
 * other link that every residency rule protecting @service allows (a rule
 * of another region counts too: @region may lie nested in its prefixes).
 * For a decision carried over from an older generation by link name (a
 * later fragment's), which the new table's rules never saw; 0 when it would
 * carry protected traffic where the table does not let it go.
 */
int fwd_residency_link_may_carry(const struct fwd_table *t, const struct fwd_class *c,
				 uint16_t region, uint16_t service, uint16_t link);

/*
 * Later IP fragments. A later fragment takes its first fragment's decision
 * by a key (addresses, protocol, id) that another datagram can share: an
 * IPv4 id used again within the fragment timeout, or a spoofed first
 * fragment. Its own service is unknown, so it may leave, or be copied, only
 * on a link that every rule holding its source's region allows, whatever
 * service the first fragment had: the region's own rules, and those of each
 * protected region it lies nested in (the table lets such a region in only
 * when it keeps to those rules).
 */

/** Fill @t->rule_rows (once): per rule, the regions it holds and the links
 *  it allows, and per region the links every rule holding it allows.
 *  0, or -ENOMEM with the table unchanged. */
int fwd_residency_rows_fill(struct fwd_table *t);

/** Record in @t->rule_rows (when filled) that region @inner lies nested in
 *  protected region @outer: a delta's new pair, checked. */
void fwd_residency_rows_nest(struct fwd_table *t, uint16_t inner, uint16_t outer);

/** 1 when removing a prefix of @region may leave @t->rule_rows holding too
 *  much: a rule of another region holds it, or it is protected and its
 *  rules hold other regions. A delta that removes such a prefix refills the
 *  rows whole (a walk of the prefixes); removals of other regions' prefixes,
 *  the usual ones, cost nothing here. */
int fwd_residency_rows_stale(const struct fwd_table *t, uint16_t region);

/** The rows filled again from @t's prefixes. 0, or -ENOMEM with the old
 *  rows kept (which hold at least as much: failing closed). */
int fwd_residency_rows_refill(struct fwd_table *t);

/** The 64-bit words of fwd_table.rule_rows. */
size_t fwd_residency_rows_words(const struct fwd_table *t);

/** 1 when a later fragment from a source of region @region may leave, or be
 *  copied, on link @link: every rule that holds @region allows the link
 *  (without rule_rows, every rule). One bit test with the rows. */
int fwd_residency_frag_may_carry(const struct fwd_table *t, uint16_t region, uint16_t link);

/** 1 when a residency rule names region @region. */
int fwd_residency_protects(const struct fwd_table *t, uint16_t region);

/** 1 when prefix @outer/@olen covers @inner/@ilen (16-byte keys, network order). */
int fwd_nest_covers(const uint8_t *outer, uint8_t olen, const uint8_t *inner, uint8_t ilen);

/** "ADDRESS/LEN" of a 16-byte key (@fam 4: the first 4 bytes). */
const char *fwd_nest_str(int fam, const uint8_t *a, uint8_t len, char *buf, size_t n);

#endif /* FWD_RESIDENCY_H */
