/*
 * Fuzz target: one frame through the fast path's pure-C stages -- the shared
 * parser, the payload locator, the flow hash, the classifier on a fixed
 * table, the fragment table, and the content extractors on the payload.
 * Checks the parser's contract beyond "no crash": on success every offset it
 * reports lies inside the frame, and exactly one drop reason otherwise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp_frag.h"
#include "fwd_class.h"
#include "fwd_extract.h"
#include "fwd_parse.h"
#include "fwd_pktops.h"

static const char table_doc[] = "regions: {a: {prefixes: [10.0.0.0/8, 10.1.0.0/16, "
				"'2001:db8::/32']}, b: {prefixes: [0.0.0.0/0, '::/0']}}\n"
				"services: {web: [tcp/80, tcp/443], dns: [any/53], ping: [icmp, "
				"icmpv6], hi: [udp/60000-65535]}\n"
				"links: {l1: {port: p0, next_hop_mac: '02:00:00:00:00:01'}, l2: "
				"{port: p0, next_hop_mac: '02:00:00:00:00:02'}}\n"
				"link_groups: {g: {members: {l1: 1, l2: 3}}}\n"
				"policies: [{region: a, service: any, action: steer, to: g}, "
				"{region: b, service: dns, action: drop}]\n"
				"default: {action: steer, to: l1}\n";

static struct fwd_table *table; /* kept for the process: reachable, not leaked */
static struct fwd_class *cls;
static struct dp_frag_table frag;
static void *frag_mem;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct fwd_err err;

	(void)argc;
	(void)argv;
	table = fwd_table_parse(table_doc, sizeof(table_doc) - 1, "fuzz", 0, &err);
	if (table == NULL || (cls = fwd_class_build(table)) == NULL)
		abort();
	frag_mem = calloc(1, dp_frag_mem_size(256));
	dp_frag_init(&frag, frag_mem, 256, 1000);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static uint64_t now;
	struct fwd_pkt p;
	struct fwd_decision d;
	const uint8_t *pl;
	uint32_t plen;
	uint8_t flags;
	char name[FWD_X_NAME_MAX];
	int rc = fwd_parse(data, data + len, &p);

	if (rc != FWD_OK) {
		if (FWD_ERR_TO_DROP(rc) < 0 || FWD_ERR_TO_DROP(rc) >= FWD_DROP_MAX)
			abort(); /* one valid drop reason */
		return 0;
	}
	if ((size_t)p.l2_len + p.l3_len > len || (p.family != 4 && p.family != 6))
		abort();
	if (fwd_l4_payload(data, data + len, &p, &pl, &plen, &flags) == 0 &&
	    (pl < data || pl + plen > data + len))
		abort();
	fwd_class_decide_pkt(cls, (uint16_t)(p.src[0] % cls->nregions), &p, &d);
	if (d.region >= cls->nregions || d.service >= cls->nservices ||
	    d.policy >= cls->npolicies || (!d.drop && d.link >= cls->nlinks))
		abort();
	if (p.frag != FWD_FRAG_NONE) {
		struct dp_frag_key k;

		dp_frag_key_of(&p, &k);
		if (p.frag == FWD_FRAG_FIRST)
			dp_frag_insert(&frag, &k, 1, &d, 0, 0, 0, 0, 0, ++now);
		else
			dp_frag_lookup(&frag, &k, ++now);
	}
	if (fwd_l4_payload(data, data + len, &p, &pl, &plen, &flags) == 0) {
		fwd_extract_sni(pl, plen, name, sizeof(name));
		fwd_extract_http_host(pl, plen, name, sizeof(name));
		fwd_extract_dns_qname(pl, plen, name, sizeof(name));
	}
	return 0;
}
