#include "ctl_explain.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "fwd_extract.h"
#include "fwd_filter.h"
#include "fwd_parse.h"

/* One address into @out; its length (4 or 16), or 0 when it is not one. */
static size_t parse_addr(json_t *v, uint8_t out[16])
{
	const char *s = json_string_value(v);

	memset(out, 0, 16);
	if (s == NULL)
		return 0;
	if (inet_pton(AF_INET, s, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, out) == 1)
		return 16;
	return 0;
}

static int parse_port(json_t *b, const char *key, uint32_t *out, struct fwd_err *e)
{
	json_t *v = json_object_get(b, key);

	*out = 0;
	if (v == NULL)
		return 0;
	/* "80" is not a port: said as a type, not as a range it is in. */
	if (!json_is_integer(v))
		return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, key,
				    "'%s' must be an integer 0..65535", key);
	if (json_integer_value(v) < 0 || json_integer_value(v) > 65535)
		return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, key, "'%s' must be 0..65535",
				    key);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

_Static_assert((int)FWD_X_SNI == (int)FWD_CF_TLS_SNI && (int)FWD_X_HOST == (int)FWD_CF_HTTP_HOST &&
		       (int)FWD_X_QNAME == (int)FWD_CF_DNS_QNAME,
	       "fwd_extract_given() takes the content field's index");

/* What a given name must be, by content field: said when it is not. */
static const char *const given_rule[FWD_CONTENT_FIELDS] = {
	[FWD_CF_TLS_SNI] = "printable ASCII without spaces, at most 255 bytes",
	[FWD_CF_HTTP_HOST] = "a host's characters, an optional port, at most 255 bytes",
	[FWD_CF_DNS_QNAME] = "labels of 1..63 printable ASCII bytes joined by dots",
};

/* payload (text) or payload_hex, and the extracted names by content field
 * (tls_sni, http_host, dns_qname), lowercased as the extractors give them. */
static int content_args(json_t *b, struct ctl_explain *x, struct fwd_err *e)
{
	json_t *text = json_object_get(b, "payload"), *hex = json_object_get(b, "payload_hex");
	int rc;

	if (text && hex)
		return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "payload",
				    "give 'payload' or 'payload_hex', not both");
	if (text) {
		if (!json_is_string(text) || json_string_length(text) > CTL_EXPLAIN_MAX_PAYLOAD)
			return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "payload",
					    "'payload' must be a string of at most 9216 bytes");
		memcpy(x->payload, json_string_value(text), json_string_length(text));
		x->req.payload.len = json_string_length(text);
		x->req.has_payload = 1;
	} else if (hex) {
		const char *h = json_string_value(hex);
		size_t n = json_string_length(hex);

		if (!json_is_string(hex) || n % 2 || n / 2 > CTL_EXPLAIN_MAX_PAYLOAD)
			return fwd_err_fail(
				e, FWD_R_BAD_REQUEST, NULL, 0, "payload_hex",
				"'payload_hex' must be an even number of hex digits, at most "
				"9216 bytes");
		for (size_t i = 0; i < n; i += 2) {
			int hi = hexval(h[i]), lo = hexval(h[i + 1]);

			if (hi < 0 || lo < 0)
				return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "payload_hex",
						    "'payload_hex' holds a non-hex digit");
			x->payload[i / 2] = (uint8_t)(hi << 4 | lo);
		}
		x->req.payload.len = n / 2;
		x->req.has_payload = 1;
	}
	x->req.payload.data = x->payload;
	for (int f = 0; f < FWD_CONTENT_FIELDS; f++) {
		const char *key = fwd_content_field_name(f);
		json_t *v = json_object_get(b, key);
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		char pn[16];

		x->given[f][0] = '\0';
		x->given_ptr[f] = x->given[f];
		if (f == FWD_CF_PAYLOAD || v == NULL) /* the payload came above */
			continue;
		if (s == NULL || n == 0 || n >= sizeof(x->given[f]) || strlen(s) != n)
			return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, key,
					    "must be a name of 1..255 bytes");
		/* As the field's extractor reads it from a packet (lowercased,
		 * one trailing dot dropped, a Host's port too): explain once
		 * matched "example.in." where the fast path read example.in. */
		/* No packet of the protocol carries it: a match would explain
		 * what the fast path never does (a probe: --qname on sctp). */
		if (!fwd_extract_carried(f, x->req.proto))
			return fwd_err_fail(
				e, FWD_R_BAD_REQUEST, NULL, 0, key,
				"no %s packet carries a %s the rules see: %s",
				fwd_proto_name((uint8_t)x->req.proto, pn, sizeof(pn)), key,
				f == FWD_CF_DNS_QNAME ? "DNS names are read over UDP and TCP"
						      : "TLS and HTTP names are read over TCP");
		rc = fwd_extract_given(f, s, n, x->given[f], sizeof(x->given[f]));
		if (rc < 0)
			return fwd_err_fail(
				e, FWD_R_BAD_REQUEST, NULL, 0, key,
				"not a name this field's extractor reads from a packet (%s: %s); "
				"a packet carrying it is unreadable to the rules: explain it with "
				"its payload (payload_hex)",
				fwd_extract_error_name(rc), given_rule[f]);
	}
	x->req.n_given = FWD_CONTENT_FIELDS;
	x->req.given = x->given_ptr;
	return 0;
}

/* The request's own fields; the content fields' names (payload, tls_sni,
 * ...) come from fwd_schema.def. */
static const char *const fields[] = {"src", "dst", "proto", "sport", "dport", "payload_hex"};

static int known_field(const char *k)
{
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcmp(k, fields[i]) == 0)
			return 1;
	for (int f = 0; f < FWD_CONTENT_FIELDS; f++)
		if (strcmp(k, fwd_content_field_name(f)) == 0)
			return 1;
	return 0;
}

int ctl_explain_parse(json_t *b, struct ctl_explain *x, struct fwd_err *e)
{
	static const char proto_words[] = "'proto' must be tcp, udp, sctp, icmp, icmpv6 or 0..255";
	json_t *proto = json_object_get(b, "proto"), *v;
	const char *k;
	size_t sl, dl;
	int rc;

	json_object_foreach(b, k, v)
		if (!known_field(k))
			return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, k,
					    "unknown field '%.100s'", k);
	regionfwd__ctl__explain_request__init(&x->req);
	sl = parse_addr(json_object_get(b, "src"), x->src);
	if (sl == 0)
		return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "src",
				    "'src' must be an IPv4 or IPv6 address");
	dl = parse_addr(json_object_get(b, "dst"), x->dst);
	if (dl == 0)
		return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "dst",
				    "'dst' must be an IPv4 or IPv6 address");
	/* regionfwd drops such a packet before any table is asked: say so
	 * here, naming the field, not as a probe that "does not parse". */
	if (sl == 16 && fwd_ipv6_src_mapped(x->src))
		return fwd_err_fail(
			e, FWD_R_BAD_REQUEST, NULL, 0, "src",
			"'%.64s' is an IPv4-mapped address, which no packet carries as "
			"its source: regionfwd drops such packets (ipv6_mapped_source); "
			"for an IPv4 source give %u.%u.%u.%u%s",
			json_string_value(json_object_get(b, "src")), x->src[12], x->src[13],
			x->src[14], x->src[15],
			/* a probe's find: the hint once named 127.0.0.1 as if usable */
			fwd_martian4(x->src + 12)
				? ", which no router forwards from either (martian_source)"
				: "");
	/* after the mapped source: with an IPv4 destination, "one family"
	 * hid the hint that says what to give (a walkthrough) */
	if (sl != dl)
		return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "dst",
				    "'src' and 'dst' must be of one family");
	x->req.src = (ProtobufCBinaryData){.len = sl, .data = x->src};
	x->req.dst = (ProtobufCBinaryData){.len = dl, .data = x->dst};
	if (json_is_integer(proto) && json_integer_value(proto) >= 0 &&
	    json_integer_value(proto) <= 255) {
		x->req.proto = (uint32_t)json_integer_value(proto);
	} else if (json_is_string(proto)) {
		int n = fwd_proto_by_name(json_string_value(proto)); /* a PROTO word, not 'any' */

		if (n < 0)
			return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "proto", "%s",
					    proto_words);
		x->req.proto = (uint32_t)n;
	} else {
		return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "proto", "%s", proto_words);
	}
	/* An IPv6 packet names these only as the headers before its
	 * protocol; a probe with one cannot be built, and regionfwd would say
	 * only that it does not parse. */
	if (sl == 16 && fwd_ipv6_is_ext((uint8_t)x->req.proto))
		return fwd_err_fail(e, FWD_R_BAD_REQUEST, NULL, 0, "proto",
				    "'proto' %u is an IPv6 extension header, never a packet's "
				    "protocol: give the protocol after the chain",
				    (unsigned)x->req.proto);
	if ((rc = parse_port(b, "sport", &x->req.sport, e)) ||
	    (rc = parse_port(b, "dport", &x->req.dport, e)))
		return rc;
	return content_args(b, x, e);
}

/* Whether the interface @i of the filter status @fs enforces generation
 * @gen now: our program on it, running that generation (what status and
 * health read). NULL when it does, else why not. */
static const char *not_enforced(const json_t *fs, const json_t *i, uint64_t gen, char *why,
				size_t len)
{
	const char *name = json_string_value(json_object_get(i, "interface"));
	json_int_t id = json_integer_value(json_object_get(i, "program_id"));
	json_int_t fgen = json_integer_value(json_object_get(fs, "generation"));

	if (json_is_true(json_object_get(i, "ours")) && (uint64_t)fgen == (uint32_t)gen)
		return NULL;
	if (json_is_true(json_object_get(i, "ours")))
		snprintf(why, len, "it runs generation %lld, not %llu", (long long)fgen,
			 (unsigned long long)gen);
	else if (id)
		snprintf(why, len, "it runs another XDP program (id %lld)", (long long)id);
	else if (json_is_true(json_object_get(fs, "detached")))
		snprintf(why, len, "detached (regionctl filter detach)");
	else if (name && if_nametoindex(name) == 0)
		snprintf(why, len, "no such interface");
	else
		snprintf(why, len, "it carries no XDP program");
	return why;
}

/* What the XDP program leaves to the kernel also in AF_XDP mode
 * (bpf/xdp_filter.bpf.c): a destination no router forwards, an IPv6
 * link-scoped source. */
static int kernel_bound(const struct ctl_explain *x)
{
	return x->req.src.len == 4 ? fwd_martian4(x->dst)
				   : fwd_martian6(x->dst) || fwd_src6_link_scoped(x->src);
}

json_t *ctl_explain_xdp(const struct ctl_explain *x, const struct fwd_table *t, const json_t *fs,
			uint64_t gen)
{
	const json_t *ifaces = json_object_get(fs, "interfaces");
	json_t *off = json_array();
	char why[96];
	const struct fwd_filters *f = &t->filters;
	int family = x->req.src.len == 4 ? 4 : 6, ports;
	struct fwd_flt_verdict v;
	char match[INET6_ADDRSTRLEN + 8] = "", addr[INET6_ADDRSTRLEN];
	json_t *on = json_array(), *o;
	const json_t *i;
	size_t k;

	ports = x->req.proto == FWD_PROTO_TCP || x->req.proto == FWD_PROTO_UDP ||
		x->req.proto == FWD_PROTO_SCTP;
	fwd_flt_decide(f, family, x->req.src.data, (uint8_t)x->req.proto, ports,
		       (uint16_t)x->req.dport, &v);
	if (v.by == FWD_FLT_BY_PREFIX) {
		inet_ntop(family == 4 ? AF_INET : AF_INET6, v.prefix, addr, sizeof(addr));
		snprintf(match, sizeof(match), "%s/%u", addr, v.len);
	} else if (v.by == FWD_FLT_BY_SERVICE) {
		snprintf(
			match, sizeof(match), "%s/%u%s%.0u",
			fwd_schema_names[FWD_SCHEMA_BEGIN_PROTO +
					 (x->req.proto == FWD_PROTO_TCP ? FWD_SCHEMA_POS(PROTO, TCP)
					  : x->req.proto == FWD_PROTO_UDP
						  ? FWD_SCHEMA_POS(PROTO, UDP)
						  : FWD_SCHEMA_POS(PROTO, SCTP))],
			v.lo, v.hi != v.lo ? "-" : "", v.hi != v.lo ? v.hi : 0u);
	}
	json_array_foreach(ifaces, k, i) {
		if (!json_is_string(json_object_get(i, "interface")))
			continue;
		if (not_enforced(fs, i, gen, why, sizeof(why)) == NULL)
			json_array_append(on, json_object_get(i, "interface"));
		else
			json_array_append_new(off, json_pack("{s:O, s:s}", "interface",
							     json_object_get(i, "interface"), "why",
							     why));
	}
	o = json_pack("{s:b, s:s, s:s?, s:s, s:s?, s:s, s:o, s:o}", "section", f->present != 0,
		      "verdict", fwd_schema_names[FWD_SCHEMA_BEGIN_FILTER_ACTION + v.action],
		      "rule", v.rule >= 0 ? f->rules[v.rule].name : NULL, "by",
		      !f->present		   ? "no filters section"
		      : v.by == FWD_FLT_BY_PREFIX  ? "source prefix"
		      : v.by == FWD_FLT_BY_SERVICE ? "service"
						   : "default",
		      "match", match[0] ? match : NULL, "redirect",
		      f->present && f->redirect && !kernel_bound(x) ? "af_xdp" : "kernel",
		      "enforced_on", on, "not_enforced_on", off);
	/* What AF_XDP mode leaves to the kernel never reaches regionfwd: the
	 * rest of the answer is then what it would do (a review: "dropped
	 * martian_destination" read as the fate of an mDNS packet the host
	 * took). */
	if (o)
		json_object_set_new(o, "to_host_stack",
				    json_boolean(f->present && f->redirect &&
						 v.action != FWD_FLT_DROP && kernel_bound(x)));
	if (o && v.rule >= 0 && v.action == FWD_FLT_RATE) {
		json_object_set_new(o, "rate_pps", json_integer(f->rules[v.rule].rate_pps));
		json_object_set_new(o, "burst", json_integer(f->rules[v.rule].burst));
	}
	return o;
}
