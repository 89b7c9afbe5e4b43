"""Random table documents and packets for differential testing.

Tables: overlapping IPv4 and IPv6 prefixes of every length (nested, adjacent,
/0 and host routes), services with port ranges and port-less protocols,
links up and down with and without VLANs, weighted groups (drained members,
members down), policies at every precedence level with mirrors, a default,
and residency rules that the table may or may not break. Packets: sources at
prefix edges and just outside them, every protocol kind, ports at range edges.
All deterministic for a seed.
"""
import ipaddress
import random

PROTOS = ["tcp", "udp", "sctp"]


def _prefix(rng, v6):
    if v6:
        plen = rng.choice([0, 16, 32, 33, 47, 48, 56, 63, 64, 65, 96, 120, 127, 128, rng.randrange(0, 129)])
        base = int(ipaddress.IPv6Address("2001:db8::")) | rng.getrandbits(96) if plen >= 32 else rng.getrandbits(128)
        net = ipaddress.IPv6Network((base, plen), strict=False)
    else:
        plen = rng.choice([0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, rng.randrange(0, 33)])
        base = (10 << 24) | rng.getrandbits(24) if plen >= 8 and rng.random() < 0.7 else rng.getrandbits(32)
        net = ipaddress.IPv4Network((base, plen), strict=False)
    return net


def _nested(rng, net):
    """A prefix inside @net (more specific), or @net itself at full length."""
    if net.prefixlen == net.max_prefixlen:
        return net
    plen = rng.randrange(net.prefixlen + 1, net.max_prefixlen + 1)
    off = rng.getrandbits(net.max_prefixlen - net.prefixlen) if net.max_prefixlen > net.prefixlen else 0
    base = int(net.network_address) | off
    return ipaddress.ip_network((base, plen), strict=False)


def random_table(seed, max_regions=8):
    rng = random.Random(seed)
    nreg = rng.randrange(1, max_regions + 1)
    regions = {f"r{i}": {"prefixes": []} for i in range(nreg)}
    seen = set()
    pool = []
    for _ in range(rng.randrange(4, 60)):
        v6 = rng.random() < 0.4
        net = _nested(rng, rng.choice(pool)) if pool and rng.random() < 0.5 else _prefix(rng, v6)
        if net in seen:
            continue
        seen.add(net)
        pool.append(net)
        regions[rng.choice(list(regions))]["prefixes"].append(str(net))
    for r in list(regions):
        if not regions[r]["prefixes"]:
            del regions[r]
    if not regions:
        regions["r0"] = {"prefixes": ["10.0.0.0/8"]}
    # Services: non-overlapping ranges per protocol, plus port-less protocols.
    services = {}
    used = {p: [] for p in PROTOS}
    for i in range(rng.randrange(1, 7)):
        entries = []
        for _ in range(rng.randrange(1, 4)):
            kind = rng.random()
            if kind < 0.15:
                e = rng.choice(["icmp", "icmpv6", "47", "50"])
                if any(e in v for v in services.values()) or e in entries:
                    continue
                entries.append(e)
                continue
            proto = rng.choice(PROTOS + ["any"])
            lo = rng.choice([1, 53, 80, 443, 1000, 8000, 65535, rng.randrange(1, 65536)])
            hi = min(65535, lo + rng.choice([0, 0, 1, 10, 1000]))
            protos = PROTOS if proto == "any" else [proto]
            if any(not (hi < a or lo > b) for p in protos for a, b in used[p]):
                continue
            for p in protos:
                used[p].append((lo, hi))
            entries.append(f"{proto}/{lo}" if lo == hi else f"{proto}/{lo}-{hi}")
        if entries:
            services[f"s{i}"] = entries
    links = {}
    for i in range(rng.randrange(2, 7)):
        l = {"port": rng.choice(["out0", "out1"]), "next_hop_mac": "02:00:00:00:01:%02x" % i}
        if rng.random() < 0.3:
            l["vlan"] = rng.randrange(1, 4095)
        r = rng.random()
        if r < 0.2:
            l["state"] = "down"
        elif r < 0.3:
            l["state"] = "drain"
        if rng.random() < 0.6:
            l["tags"] = rng.sample(["in", "sg", "us", "br"], rng.randrange(1, 3))
        links[f"l{i}"] = l
    groups = {}
    for i in range(rng.randrange(0, 3)):
        members = {m: rng.choice([0, 1, 1, 2, 3, 10]) for m in rng.sample(list(links), rng.randrange(1, len(links) + 1))}
        if not any(members.values()):
            members[next(iter(members))] = 1  # an all-drained group is refused (tested elsewhere)
        groups[f"g{i}"] = {"members": members}
    targets = list(links) + list(groups)

    def action():
        a = {"action": "drop"} if rng.random() < 0.2 else {"action": "steer", "to": rng.choice(targets)}
        if rng.random() < 0.15:
            # not the link it steers to: refused (each packet twice on it)
            others = [l for l in links if l != a.get("to")]
            if others:
                a["mirror"] = rng.choice(others)
        return a

    policies, keys = [], set()
    rnames, snames = list(regions) + ["unknown"], list(services) + ["other"]
    for _ in range(rng.randrange(0, 14)):
        k = (rng.choice(rnames + ["any"]), rng.choice(snames + ["any"]))
        if k in keys or k == ("any", "any"):
            continue
        keys.add(k)
        policies.append({"region": k[0], "service": k[1], **action()})
    doc = {"version": 1, "regions": regions, "services": services, "links": links,
           "policies": policies, "default": action()}
    if groups:
        doc["link_groups"] = groups
    if rng.random() < 0.3:
        doc["residency"] = [{"name": f"keep{i}", "region": rng.choice(list(regions)),
                             "services": rng.choice([["any"], rng.sample(snames, 1)]),
                             "allowed_tags": rng.sample(["in", "sg", "us", "br"], rng.randrange(1, 3))}
                            for i in range(rng.randrange(1, 3))]
    return doc


def _addr_near(rng, net):
    size = net.num_addresses
    pick = rng.random()
    base = int(net.network_address)
    if pick < 0.25:
        a = base
    elif pick < 0.5:
        a = base + size - 1
    elif pick < 0.6:
        a = base - 1
    elif pick < 0.7:
        a = base + size
    else:
        a = base + rng.randrange(size)
    a %= 1 << net.max_prefixlen
    return str(ipaddress.ip_address(a) if net.version == 4 else ipaddress.IPv6Address(a))


def random_packets(doc, seed, n):
    """n tuples (src, dst, proto number, sport, dport)."""
    rng = random.Random(seed)
    nets = [ipaddress.ip_network(p) for r in doc["regions"].values() for p in r["prefixes"]]
    ports = [1, 53, 80, 443, 65535]
    for entries in doc["services"].values():
        for e in entries:
            proto, _, pr = e.partition("/")
            if pr:
                lo, _, hi = pr.partition("-")
                hi = hi or lo
                ports += [int(lo), int(hi), max(0, int(lo) - 1), min(65535, int(hi) + 1)]
    out = []
    for _ in range(n):
        if nets and rng.random() < 0.9:
            src = _addr_near(rng, rng.choice(nets))
        else:
            src = str(ipaddress.IPv4Address(rng.getrandbits(32))) if rng.random() < 0.5 else \
                str(ipaddress.IPv6Address(rng.getrandbits(128)))
        v6 = ":" in src
        dst = "2001:db8:ffff::1" if v6 else "198.51.100.1"
        proto = rng.choice([6, 6, 17, 17, 132, 58 if v6 else 1, 47, 50])
        sport = rng.randrange(1, 65536) if proto in (6, 17, 132) else 0
        dport = rng.choice(ports) if proto in (6, 17, 132) else 0
        out.append((src, dst, proto, sport, dport))
    return out
