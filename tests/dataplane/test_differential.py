"""Differential testing (issue 7): random tables and random packets, every
packet's decision from regionfwd -- through a real pcap run and through
explain -- equal to the independent Python reference (tests/lib/refclass.py:
brute-force longest prefix, literal precedence, its own flow hash and
weighted-rendezvous slots, its own residency check).

Normal suite: DIFF_TABLES tables (default 16) x DIFF_PACKETS packets (default
250) -- about 4,000 packets each way. `scripts/test --long` raises both
(millions of decisions). Every other table gets 300 extra one-prefix regions,
so decisions are also compared with a policy matrix and counter cells too big
for L1, as the bulk classification stage meets them in production. A mismatch is shrunk to a minimal table and printed as a
reproducer (YAML + the packet)."""
import ipaddress
import os
import random
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from dprun import regionfwd_bin, run_pcap  # noqa: E402
from gentable import random_packets, random_table  # noqa: E402
from refclass import ExactTable, flow_hash  # noqa: E402

from scapy.all import IP, SCTP, TCP, UDP, Dot1Q, Ether, IPv6, Raw, wrpcap  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from test_control import Fwd  # noqa: E402

# The sanitizer stage looks for memory errors, which a few tables show as
# well as many: it runs 6 (scripts/test's second stage, docs/testing.md).
SANITIZED = os.environ.get("SANITIZE", "none") not in ("", "none")
NTABLES = int(os.environ.get("DIFF_TABLES", "6" if SANITIZED else "16"))
NPACKETS = int(os.environ.get("DIFF_PACKETS", "250"))
SEED = int(os.environ.get("DIFF_SEED", "1000"))
SRC_MAC, DST_MAC = "02:99:00:00:00:01", "02:99:00:00:00:02"
PROTO_NAME = {6: "tcp", 17: "udp", 132: "sctp", 1: "icmp", 58: "icmpv6"}


def frame(i, src, dst, proto, sport, dport, ttl=64):
    ip = IPv6(src=src, dst=dst, nh=proto, hlim=ttl) if ":" in src else IP(src=src, dst=dst, proto=proto, ttl=ttl)
    if proto == 6:
        l4 = TCP(sport=sport, dport=dport)
    elif proto == 17:
        l4 = UDP(sport=sport, dport=dport)
    elif proto == 132:
        l4 = SCTP(sport=sport, dport=dport)
    else:
        l4 = Raw(b"\x08\x00\x00\x00")  # ICMP-ish header bytes; ports stay 0
    return Ether(src=SRC_MAC, dst=DST_MAC) / ip / l4 / Raw(b"DIFF%08d" % i)


def tag_of(pkt):
    b = bytes(pkt)
    k = b.rfind(b"DIFF")
    return int(b[k + 4:k + 12]) if k >= 0 else None


def explain_args(src, dst, proto, sport, dport):
    return dict(src=src, dst=dst, proto=proto, sport=sport, dport=dport)


def ref_explain(ref, pkt):
    link, mirror, drop, d = ref.decide_exact(*pkt)
    return {"region": d.region, "service": d.service, "policy": d.policy, "link": link,
            "mirror": mirror, "drop_reason": drop}


def got_explain(r):
    return {k: r[k] for k in ("region", "service", "policy", "link", "mirror", "drop_reason")}


def shrink(f, doc, pkt, path):
    """Greedy: drop list items and map entries while the table stays valid and
    regionfwd still disagrees with the reference on @pkt."""
    def disagrees(d):
        with open(path, "w") as fh:
            yaml.safe_dump(d, fh)
        ref = ExactTable(path)
        if ref.residency_violation():
            return False
        r = f.ctl.call("push", document=open(path).read())
        if not r["ok"]:
            return False
        e = f.ctl.call("explain", **explain_args(*pkt))
        return e["ok"] and got_explain(e) != ref_explain(ref, pkt)

    changed = True
    while changed:
        changed = False
        for sec in ("policies", "regions", "services", "links", "link_groups", "residency"):
            items = doc.get(sec)
            keys = list(range(len(items) - 1, -1, -1)) if isinstance(items, list) else list(items or {})
            for k in keys:
                trial = yaml.safe_load(yaml.safe_dump(doc))
                del trial[sec][k]
                if disagrees(trial):
                    doc, changed = trial, True
        for name, r in list(doc["regions"].items()):
            for p in list(r["prefixes"]):
                if len(doc["regions"][name]["prefixes"]) == 1:
                    break
                trial = yaml.safe_load(yaml.safe_dump(doc))
                trial["regions"][name]["prefixes"].remove(p)
                if disagrees(trial):
                    doc, changed = trial, True
    return doc


def check_pcap(tmp_path, path, doc, seed, pkts, expect, which, ttl1, tag="", ordered=False):
    """Forward pkts[i] for i in @which through regionfwd (those in @ttl1 with
    TTL or hop limit 1) and compare every output and drop with the reference.
    @ordered: every port also sends in arrival order (no mirror copies)."""
    frames = [frame(i, *pkts[i], ttl=1 if i in ttl1 else 64) for i in which]
    run = run_pcap(str(tmp_path), path, frames, ["out0", "out1"], f"diff-{seed}-{len(ttl1)}{tag}")
    assert run.rc == 0, (seed, run.stderr)
    assert run.stats["events"]["mirror_fail"] == 0, (seed, run.stats["events"])
    mac_link = {l["next_hop_mac"]: n for n, l in doc["links"].items()}
    got = {}
    sizes = {}  # (tag, link) -> bytes of the frame as it left
    for port in ("out0", "out1"):
        if ordered:
            tags = [tag_of(pk) for pk in run.outputs[port]]
            assert tags == sorted(tags), (seed, port, "sent out of arrival order", tags)
        for pk in run.outputs[port]:
            link = mac_link[pk[Ether].dst]
            vlan = doc["links"][link].get("vlan")
            assert (pk[Dot1Q].vlan if Dot1Q in pk else None) == vlan, (seed, link)
            assert doc["links"][link]["port"] == port, (seed, link, port)
            if IP in pk:
                # Forwarded with TTL - 1 and a checksum that still verifies;
                # a mirror copy of a dropped packet leaves as it came.
                sent_ttl = 1 if tag_of(pk) in ttl1 else 64
                dropped = expect[tag_of(pk)][2] is not None
                assert pk[IP].ttl == sent_ttl - (not dropped), (seed, link, pk[IP].ttl)
                fresh = pk[IP].copy()
                del fresh.chksum  # scapy computes it again from the header
                assert IP(bytes(fresh)).chksum == pk[IP].chksum, (seed, link)
                assert (ipaddress.ip_address(pk[IP].src), ipaddress.ip_address(pk[IP].dst)) == \
                    tuple(ipaddress.ip_address(a) for a in pkts[tag_of(pk)][:2]), (seed, link)
            elif IPv6 in pk:
                sent_ttl = 1 if tag_of(pk) in ttl1 else 64
                dropped = expect[tag_of(pk)][2] is not None
                assert pk[IPv6].hlim == sent_ttl - (not dropped), (seed, link, pk[IPv6].hlim)
                # The addresses as sent: bytes 10-11 of an IPv6 header, inside
                # the source, are where IPv4 keeps its checksum.
                assert (ipaddress.ip_address(pk[IPv6].src), ipaddress.ip_address(pk[IPv6].dst)) == \
                    tuple(ipaddress.ip_address(a) for a in pkts[tag_of(pk)][:2]), (seed, link)
            got.setdefault(tag_of(pk), []).append(link)
            sizes[(tag_of(pk), link)] = len(bytes(pk))
    drops = {}
    for i in which:
        link, mirror, drop, d = expect[i]
        if i in ttl1 and not drop:
            # Decided, counted, then dropped before any copy leaves.
            link, mirror, drop = None, None, "ttl_expired"
        want = sorted(x for x in (link, mirror) if x)
        if sorted(got.get(i, [])) != want:
            pytest.fail(f"pcap run, table seed {seed}, packet {pkts[i]}{' TTL 1' if i in ttl1 else ''}: "
                        f"regionfwd sent it to {sorted(got.get(i, []))}, the reference says {want} ({d})\n"
                        f"reproduce: DIFF_SEED={seed} DIFF_TABLES=1, table {path}")
        if drop:
            drops[drop] = drops.get(drop, 0) + 1
    assert run.drops() == drops, (seed, run.drops(), drops)
    # The counters: every packet decided (TTL or hop limit 1 included) counts
    # to its region; each link counts the packets it sent and their bytes as
    # they left (a mirror copy is an event, not the link's traffic).
    regions, links = {}, {}
    for i in which:
        link, _mirror, drop, d = expect[i]
        if d is None:
            continue  # dropped by the parser, for an address: no region asked
        regions[d.region] = regions.get(d.region, 0) + 1
        if drop is None and i not in ttl1:
            n, b = links.get(link, (0, 0))
            links[link] = (n + 1, b + sizes[(i, link)])
    got_regions = {n: c["packets"] for n, c in run.stats["regions"].items() if c.get("packets")}
    assert got_regions == regions, (seed, got_regions, regions)
    got_links = {n: (c["packets"], c["bytes"]) for n, c in run.stats["links"].items() if c.get("packets")}
    assert got_links == links, (seed, got_links, links)


def pad_regions(doc, n=300):
    """n more regions of one /24 each (in 100.64.0.0/10, skipping prefixes the
    table has). The packets are drawn before padding, so they still aim at the
    table's own prefixes and edges."""
    have = {p for r in doc["regions"].values() for p in r["prefixes"]}
    k = 0
    while n:
        p = f"100.{64 + k // 256}.{k % 256}.0/24"
        k += 1
        if p not in have:
            doc["regions"][f"pad{k}"] = {"prefixes": [p]}
            n -= 1


def test_random_tables_and_packets_match_the_reference(tmp_path):
    f = None
    checked = {"tables": 0, "refused": 0, "refused_nested": 0, "pcap": 0, "explain": 0, "groups": 0, "padded": 0,
               "martian": 0}
    try:
        for t in range(NTABLES):
            seed = SEED + t
            doc = random_table(seed)
            pkts = random_packets(doc, seed, NPACKETS)  # drawn before any padding
            if t % 2:
                pad_regions(doc)
            path = str(tmp_path / f"t{seed}.yaml")
            with open(path, "w") as fh:
                yaml.safe_dump(doc, fh)
            ref = ExactTable(path)
            viol = ref.residency_refusal()
            chk = subprocess.run([regionfwd_bin(), "--check-table", path], capture_output=True, text=True)
            out = chk.stdout + chk.stderr
            if viol and not viol[1]:
                assert chk.returncode != 0 and f"breaks residency rule '{viol[0]}'" in out, (seed, viol, out)
                checked["refused"] += 1
                continue
            if viol:  # a prefix inside a protected region's, at any depth
                assert chk.returncode != 0 and "lies inside" in out and any(
                    f"residency rule '{n}' allows" in out for n in viol[0]), (seed, viol, out)
                checked["refused"] += 1
                checked["refused_nested"] += 1
                continue
            assert chk.returncode == 0, (seed, out)
            checked["tables"] += 1
            checked["padded"] += t % 2
            expect = [ref.decide_exact(*p) for p in pkts]
            checked["groups"] += sum(1 for p in pkts if ref.policy_for(*(lambda d: (d.region, d.service))(
                ref.decide(p[0], p[2], p[4])))[1].get("to") in (doc.get("link_groups") or {}))
            # 1. real pcap runs: all the packets (bursts of every shape), then
            # only the plain IPv4 TCP/UDP ones, whose bursts take the fast
            # path's plain variant (cell links), some with TTL 1.
            check_pcap(tmp_path, path, doc, seed, pkts, expect, range(len(pkts)), set())
            plain = [i for i, p in enumerate(pkts) if ":" not in p[0] and p[2] in (6, 17)]
            check_pcap(tmp_path, path, doc, seed, pkts, expect, plain, set(plain[3::7]))
            # ... and the plain IPv4 and IPv6 TCP/UDP ones together: bursts
            # the fast path takes whole with both families, which one loop
            # forwards in arrival order with the family as data.
            plain46 = [i for i, p in enumerate(pkts) if p[2] in (6, 17)]
            check_pcap(tmp_path, path, doc, seed, pkts, expect, plain46, set(plain46[2::7]), "-46")
            checked["pcap"] += len(pkts) + len(plain) + len(plain46)
            # 2. explain on a long-running regionfwd, the same packets
            if f is None:
                idle = str(tmp_path / "idle.pcap")
                wrpcap(idle, [frame(0, "192.0.2.1", "198.51.100.1", 17, 1, 9)])
                f = Fwd(tmp_path, "diff-explain", idle, path)
            r = f.ctl.call("push", document=open(path).read())
            assert r["ok"], (seed, r)
            for p, (_, _, why, d) in zip(pkts, expect):
                e = f.ctl.call("explain", **explain_args(*p))
                if d is None:
                    # Dropped by the parser for an address, before any table.
                    assert e["ok"] and e["drop_reason"] == why and e["region"] is None and \
                        e["link"] is None and e["flow_hash"] is None, (seed, p, e)
                    checked["martian"] += 1
                    continue
                assert e["ok"], (seed, p, e)
                want = ref_explain(ref, p)
                if got_explain(e) != want or e["flow_hash"] != flow_hash(*p):
                    small = shrink(f, yaml.safe_load(open(path).read()), p, str(tmp_path / "min.yaml"))
                    pytest.fail("explain disagrees with the reference.\nminimal reproducer:\n"
                                f"--- table ---\n{yaml.safe_dump(small)}--- packet ---\n"
                                f"src={p[0]} dst={p[1]} proto={p[2]} sport={p[3]} dport={p[4]}\n"
                                f"regionfwd: {got_explain(e)} flow_hash={e['flow_hash']}\n"
                                f"reference: {want} flow_hash={flow_hash(*p)}")
                checked["explain"] += 1
    finally:
        if f:
            f.stop()
    print(f"differential: {checked}")
    assert checked["tables"] >= NTABLES // 3 and checked["refused"] >= 1 and checked["groups"] > 0 and \
        checked["martian"] > 0, checked


def test_group_cells_in_plain_bursts(tmp_path):
    """Plain bursts send a group cell's packets from the plain-cell loops
    (dp_gen.h cell_link: DP_CELL_GROUP): every packet's link must be the
    reference's slot for its flow, in all-IPv4 bursts and in bursts of both
    families, with TTL or hop limit 1 among them, and each port must send in
    arrival order. A group with a tagged member takes the general path; one
    whose member is down has slots only for the other. The test fails unless
    the untagged group spread its flows over all three of its links in both
    families, so it cannot pass on a lucky hash."""
    rng = random.Random(7)
    doc = {
        "version": 1,
        "regions": {
            "in": {"prefixes": ["10.1.0.0/16", "2001:db8:1::/48"]},
            "sg": {"prefixes": ["10.2.0.0/16", "2001:db8:2::/48"]},
            "br": {"prefixes": ["10.3.0.0/16", "2001:db8:3::/48"]},
        },
        "services": {"https": ["tcp/443", "udp/443"], "dns": ["udp/53"], "sync": ["tcp/7000-7010"]},
        "links": {
            "l0": {"port": "out0", "next_hop_mac": "02:00:00:00:01:00"},
            "l1": {"port": "out1", "next_hop_mac": "02:00:00:00:01:01"},
            "l2": {"port": "out0", "next_hop_mac": "02:00:00:00:01:02"},
            "l3": {"port": "out1", "next_hop_mac": "02:00:00:00:01:03", "vlan": 7},
            "l4": {"port": "out1", "next_hop_mac": "02:00:00:00:01:04", "state": "down"},
        },
        "link_groups": {
            "plain": {"members": {"l0": 1, "l1": 2, "l2": 3}},
            "tagged": {"members": {"l0": 1, "l3": 1}},
            "halfdown": {"members": {"l1": 1, "l4": 1}},
        },
        "policies": [
            {"region": "in", "service": "https", "action": "steer", "to": "plain"},
            {"region": "sg", "service": "https", "action": "steer", "to": "plain"},
            {"region": "in", "service": "dns", "action": "steer", "to": "tagged"},
            {"region": "sg", "service": "dns", "action": "steer", "to": "halfdown"},
            {"region": "br", "service": "any", "action": "steer", "to": "l2"},
        ],
        "default": {"action": "steer", "to": "plain"},
    }
    path = str(tmp_path / "groups.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(doc, fh)
    ref = ExactTable(path)
    assert ref.residency_violation() is None
    pkts = []
    for k in range(600):
        v6 = k % 2
        region = rng.choice([1, 2, 3])
        src = f"2001:db8:{region}::{rng.randrange(1, 65536):x}" if v6 else \
            f"10.{region}.{rng.randrange(256)}.{rng.randrange(256)}"
        dst = "2001:db8:ffff::1" if v6 else "198.51.100.1"
        proto, dport = rng.choice([(6, 443), (17, 443), (17, 53), (6, 7005), (6, 22)])
        pkts.append((src, dst, proto, rng.randrange(1024, 65536), dport))
    expect = [ref.decide_exact(*p) for p in pkts]
    spread = {}
    for p, (link, _mirror, drop, d) in zip(pkts, expect):
        if not drop and ref.policy_for(d.region, d.service)[1].get("to") == "plain":
            spread.setdefault(":" in p[0], set()).add(link)
    assert spread.get(False) == {"l0", "l1", "l2"} and spread.get(True) == {"l0", "l1", "l2"}, spread
    v4 = [i for i, p in enumerate(pkts) if ":" not in p[0]]
    check_pcap(tmp_path, path, doc, 7, pkts, expect, v4, set(v4[3::7]), "-groups4")
    both = list(range(len(pkts)))
    check_pcap(tmp_path, path, doc, 7, pkts, expect, both, set(both[2::7]), "-groups46", ordered=True)
