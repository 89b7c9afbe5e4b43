#include "dp_frag.h"

#define LAYOUT DP_AGED_LAYOUT(struct dp_frag_entry)
DP_AGED_CHECK(struct dp_frag_entry);

uint64_t dp_frag_mem_size(uint32_t entries)
{
	return dp_aged_mem_size(entries, sizeof(struct dp_frag_entry));
}

void dp_frag_init(struct dp_frag_table *ft, void *mem, uint32_t entries, uint64_t timeout)
{
	dp_aged_init(&ft->t, mem, entries, timeout);
}

static inline uint32_t key_hash(const struct dp_frag_key *k)
{
	return dp_aged_hash(0x9747b28cu, (uint32_t)k->family << 8 | k->proto, k->id, k->src, k->dst,
			    sizeof(*k));
}

const struct dp_frag_entry *dp_frag_lookup(const struct dp_frag_table *ft,
					   const struct dp_frag_key *k, uint64_t now)
{
	return dp_aged_lookup(&ft->t, LAYOUT, key_hash(k), k, now, 0);
}

int dp_frag_insert(struct dp_frag_table *ft, const struct dp_frag_key *k, uint64_t gen,
		   const struct fwd_decision *d, uint64_t link_key, uint64_t mirror_key,
		   uint8_t proto, uint16_t dport, uint8_t scoped, uint64_t now)
{
	const struct dp_frag_entry *old = dp_frag_lookup(ft, k, now);
	int evicted;
	struct dp_frag_entry *e;

	/* A first fragment again under a live key: the same one sent again
	 * refreshes its entry. One that says otherwise (another port, another
	 * link) is not the same datagram's, or the sender's fragmentation is
	 * broken: which one the later fragments belong to cannot be told, and
	 * a spoofed second first fragment must not lead a protected datagram's
	 * rest out of region (a red team did, with one to https). The rest
	 * is dropped as frag_invalid, with no copy, until the entry ages out:
	 * a timeout after the disagreement, not refreshed by the first
	 * fragments that come after it (a sender whose IPv4 ids never change
	 * sends one every datagram, and kept its datagrams' rest dropped for as
	 * long as it sent: a probe); a third agreeing with either changes
	 * nothing.
	 *
	 * Under a newer generation, one of the same protocol and port that is
	 * given another link (the link went down, the policy changed) is the
	 * same service decided again, not a disagreement: it replaces the
	 * entry, so that a steady stream follows the new decision at once
	 * rather than losing its later fragments for a timeout after every
	 * apply. Not when content rules read either (@scoped): then its
	 * payload decided too, and a spoofed first fragment with a harmless one
	 * would lead the rest of a datagram a rule dropped or mirrored for
	 * inspection past the rule (a review). The later fragments are held to
	 * every residency rule of their region whatever their first fragment
	 * said (dp_worker.c decide_slow), so nothing leads them out of region. */
	if (old != NULL && old->d.drop == 1 + FWD_DROP_FRAG_INVALID)
		return 0;
	if (old != NULL && (old->proto != proto || old->dport != dport ||
			    ((old->gen == gen || old->scoped || scoped) &&
			     (old->link_key != link_key || old->mirror_key != mirror_key ||
			      old->d.drop != d->drop)))) {
		e = dp_aged_insert(&ft->t, LAYOUT, key_hash(k), k, now, &evicted);
		e->d.drop = 1 + FWD_DROP_FRAG_INVALID;
		e->d.link = e->d.mirror = FWD_LINK_NONE;
		e->link_key = e->mirror_key = 0;
		return evicted;
	}
	e = dp_aged_insert(&ft->t, LAYOUT, key_hash(k), k, now, &evicted);
	e->gen = gen;
	e->link_key = link_key;
	e->mirror_key = mirror_key;
	e->d = *d;
	e->proto = proto;
	e->dport = dport;
	e->scoped = scoped;
	return evicted;
}
