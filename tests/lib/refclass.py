"""Reference classifier for the tests, written independently of the C code.

It reads the same table document with PyYAML and decides with Python's
ipaddress module: longest prefix match by brute force, services by scanning
their entries, policy precedence (region, service) > (region, any) >
(any, service) > default spelled out literally. It does not compute
link-group hashing; for a group it returns every usable member.
"""
import ipaddress

import yaml

PROTO = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58}


class Decision:
    def __init__(self, region, service, policy, links, drop):
        self.region = region      # region name
        self.service = service    # service name
        self.policy = policy      # "region/service" or "default"
        self.links = links        # set of link names that are acceptable
        self.drop = drop          # drop reason name or None

    def __repr__(self):
        return (f"Decision(region={self.region}, service={self.service}, "
                f"policy={self.policy}, links={sorted(self.links)}, drop={self.drop})")


_MARTIAN = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3",
    "::/127", "fe80::/10", "ff00::/8", "::ffff:0:0/96")]


def martian(addr):
    """An address no router forwards to or from (RFC 1812 5.3.7, RFC 3927,
    RFC 4291): regionfwd's parser drops a packet carrying one
    (martian_destination, else martian_source; a source mapped from IPv4
    is ipv6_mapped_source, before both)."""
    a = ipaddress.ip_address(addr)
    return any(a.version == n.version and a in n for n in _MARTIAN)


class RefTable:
    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        d = self.doc
        self.prefixes = []
        for name, r in (d.get("regions") or {}).items():
            for p in (r or {}).get("prefixes") or []:
                self.prefixes.append((ipaddress.ip_network(p), name))
        self.services = []
        for name, entries in (d.get("services") or {}).items():
            for e in entries:
                proto, _, ports = str(e).partition("/")
                protos = [6, 17, 132] if proto == "any" else [PROTO.get(proto, None)]
                if protos == [None]:
                    protos = [int(proto)]
                lo, _, hi = ports.partition("-")
                lo = int(lo) if lo else 0
                hi = int(hi) if hi else (lo if ports else 65535)
                for pr in protos:
                    self.services.append((pr, lo, hi, name))
        self.links = d.get("links") or {}
        self.groups = d.get("link_groups") or {}
        self.policies = {}
        for p in d.get("policies") or []:
            self.policies[(p["region"], p["service"])] = p
        self.default = d.get("default") or {"action": "drop"}

    def region_of(self, addr):
        a = ipaddress.ip_address(addr)
        best = None
        for net, name in self.prefixes:
            if net.version == a.version and a in net:
                if best is None or net.prefixlen > best[0].prefixlen:
                    best = (net, name)
        return best[1] if best else "unknown"

    def service_of(self, proto, dport):
        for pr, lo, hi, name in self.services:
            if pr == proto and (proto not in (6, 17, 132) or lo <= dport <= hi):
                return name
        return "other"

    def policy_for(self, region, service):
        for key in ((region, service), (region, "any"), ("any", service)):
            if key in self.policies:
                return "/".join(key), self.policies[key]
        return "default", self.default

    def link_up(self, name):
        """Carries what is steered to it: state up or drain."""
        return (self.links[name].get("state", "up")) != "down"

    def in_groups(self, name):
        """Takes slots in its link groups: state up only (drain takes none)."""
        return (self.links[name].get("state", "up")) == "up"

    def decide(self, src, proto, dport):
        region = self.region_of(src)
        service = self.service_of(proto, dport)
        key, pol = self.policy_for(region, service)
        if pol["action"] == "drop":
            return Decision(region, service, key, set(), "policy_drop")
        to = pol["to"]
        if to in self.links:
            links = {to} if self.link_up(to) else set()
        else:
            members = self.groups[to]["members"]
            links = {m for m, w in members.items() if w > 0 and self.in_groups(m)}
        return Decision(region, service, key, links, None if links else "no_link_up")


# ---- exact link choice in groups, and the whole decision -----------------------------
# The flow hash (CRC32C over the 5-tuple's bytes, MurmurHash3's finalizer) and the
# weighted rendezvous slot table are specified in common/fwd_pktops.h and
# common/fwd_class.c; this is a separate implementation from that description,
# in Python integers, so a drift in either shows up as a differential failure.

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
SLOTS_LOG2 = 12


def _crc32c(crc, data):
    """CRC32C (reflected 0x82F63B78, no inversion), bit by bit."""
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc


def _final(h, n):
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    return h ^ (h >> 16)


def flow_hash(src, dst, proto, sport, dport):
    """common/fwd_pktops.h's fwd_flow_hash(), from its definition on bytes."""
    s, d = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    words = len(s) // 4
    h = 0x5EED0001
    for i in range(words):
        h = _crc32c(h, s[4 * i:4 * i + 4] + d[4 * i:4 * i + 4])
    h = _crc32c(h, ((sport << 16) | dport).to_bytes(4, "little"))
    h = _crc32c(h, proto.to_bytes(4, "little"))
    return _final(h, words * 8 + 8)


def _fnv64(s):
    h = 1469598103934665603
    for b in s.encode():
        h = ((h ^ b) * 1099511628211) & M64
    return h


def _splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def _log2_q32(x):
    k = x.bit_length() - 1
    m = (x << (63 - k)) & M64
    r = k << 32
    for i in range(31, -1, -1):
        sq = m * m
        m = (sq >> 63) & M64
        if sq >> 127:
            r |= 1 << i
            m = (sq >> 64) & M64
    return r


_COST = {}


def hrw_cost(link, slot):
    key = (link, slot)
    c = _COST.get(key)
    if c is None:
        h = _splitmix64(_fnv64(link) ^ _splitmix64(slot))
        x = (h >> 12) + 1
        c = (52 << 32) - _log2_q32(x)
        c = c if c else 1
        _COST[key] = c
    return c


class ExactTable(RefTable):
    """RefTable that also picks the exact group member (flow hash + weighted
    rendezvous slots) and the mirror link: the whole fast-path decision."""

    def __init__(self, path):
        super().__init__(path)
        self._slots = {}

    def slot_member(self, group, slot):
        table = self._slots.get(group)
        if table is None:
            members = [(m, w) for m, w in self.groups[group]["members"].items() if w > 0 and self.in_groups(m)]
            table = []
            for s in range(1 << SLOTS_LOG2):
                best = None
                for m, w in members:
                    c = hrw_cost(m, s)
                    if best is None or w * best[2] > best[1] * c or (w * best[2] == best[1] * c and m < best[0]):
                        best = (m, w, c)
                table.append(best[0] if best else None)
            self._slots[group] = table
        return table[slot]

    def decide_exact(self, src, dst, proto, sport, dport):
        """(link or None, mirror link or None, drop reason or None, Decision);
        a packet the parser drops for an address it carries has no Decision
        (None): it is dropped before any table is asked."""
        if ":" in src and ipaddress.ip_address(src).ipv4_mapped is not None:
            return None, None, "ipv6_mapped_source", None
        if martian(dst):
            return None, None, "martian_destination", None
        if martian(src):
            return None, None, "martian_source", None
        dcs = self.decide(src, proto, dport)
        key, pol = self.policy_for(dcs.region, dcs.service)
        mirror = pol.get("mirror")
        if mirror is not None and not self.link_up(mirror):
            mirror = None
        if pol["action"] == "drop":
            return None, mirror, "policy_drop", dcs
        to = pol["to"]
        if to in self.links:
            link = to if self.link_up(to) else None
        else:
            link = self.slot_member(to, flow_hash(src, dst, proto, sport, dport) >> (32 - SLOTS_LOG2))
        if mirror is not None and mirror == link:
            mirror = None  # no copy on the link the packet leaves by
        return link, mirror, None if link else "no_link_up", dcs

    def _rule_broken_for(self, r, region):
        """True when @region's policies take a service rule @r protects out
        of its allowed links."""
        svc_names = ["other"] + list((self.doc.get("services") or {}).keys())
        services = svc_names if r["services"] == ["any"] else r["services"]
        allowed = set(r["allowed_tags"])
        for s in services:
            _, pol = self.policy_for(region, s)
            links = []
            if pol["action"] != "drop":
                to = pol["to"]
                links += [to] if to in self.links else \
                    [m for m, w in self.groups[to]["members"].items() if w > 0]
            if pol.get("mirror"):
                links.append(pol["mirror"])
            for l in links:
                if not allowed & set(self.links[l].get("tags") or []):
                    return True
        return False

    def residency_refusal(self):
        """(rule name, nested) of the first residency rule the table breaks,
        or None. nested: broken by a prefix of another region inside a
        protected region's prefix, at any depth (a region in between does
        not lift the rules): {the rules it breaks there} instead of a name,
        as which one regionfwd names depends on its walk."""
        rules = self.doc.get("residency") or []
        for r in rules:
            if self._rule_broken_for(r, r["region"]):
                return r["name"], False
        owner = {net: name for net, name in self.prefixes}
        for net, name in sorted(self.prefixes, key=lambda p: (p[0].version, p[0])):
            for length in range(net.prefixlen - 1, -1, -1):
                outer = owner.get(net.supernet(new_prefix=length))
                if outer is None or outer == name:
                    continue
                broken = {r["name"] for r in rules
                          if r["region"] == outer and self._rule_broken_for(r, name)}
                if broken:
                    return broken, True
        return None

    def residency_violation(self):
        """Something true when the table breaks a residency rule, or None."""
        return self.residency_refusal()
