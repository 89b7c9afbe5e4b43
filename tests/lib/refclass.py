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
            links = {m for m, w in members.items() if w > 0 and self.link_up(m)}
        return Decision(region, service, key, links, None if links else "no_link_up")
