"""Dataplane tests: regionfwd --no-huge on net_pcap vdevs.

Every output frame is checked against an independent reference classifier
(tests/lib/refclass.py): right link (next-hop MAC), right port, port source
MAC, VLAN as the link says, TTL/hop limit decremented, IPv4 checksum valid,
payload untouched. Every input is accounted: rx = tx + sum(drops), with the
drop reasons the reference expects.
"""
import collections
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from dprun import Daemon, regionfwd_bin, run_pcap  # noqa: E402
from refclass import Decision, RefTable, martian  # noqa: E402
from waitfor import wait_for  # noqa: E402

from scapy.all import (ARP, IP, TCP, UDP, Dot1Q, Ether, IPv6,  # noqa: E402
                       IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, Raw, fragment, fragment6, raw)

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "..", "data", "dp-table.yaml")
REF = RefTable(TABLE)
OUT_PORTS = ["out0", "out1"]
# net_pcap gives its port N the MAC 02:70:63:61:70:N ("pcap"); in0 is port 0.
PORT_MAC = {"out0": "02:70:63:61:70:01", "out1": "02:70:63:61:70:02"}
MAC_TO_LINK = {l["next_hop_mac"]: n for n, l in REF.links.items()}
IN_SRC_MAC = "02:99:00:00:00:01"


def tag(i):
    return b"RFWD%08d" % i


def tag_of(pkt):
    data = raw(pkt)
    at = data.find(b"RFWD")
    return int(data[at + 4:at + 12]) if at >= 0 else None


def v4(src, proto, dport, i, ttl=64, dst="198.51.100.7", vlans=()):
    l4 = TCP(sport=40000 + i % 1000, dport=dport) if proto == 6 else UDP(sport=40000 + i % 1000, dport=dport)
    return l2(vlans, 0x0800) / IP(src=src, dst=dst, ttl=ttl) / l4 / Raw(tag(i))


def v6(src, proto, dport, i, hlim=64, dst="2001:db8:ff::7", vlans=()):
    l4 = TCP(sport=40000 + i % 1000, dport=dport) if proto == 6 else UDP(sport=40000 + i % 1000, dport=dport)
    return l2(vlans, 0x86dd) / IPv6(src=src, dst=dst, hlim=hlim) / l4 / Raw(tag(i))


def l2(vlans, etype):
    p = Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02")
    for v in vlans:
        p = p / Dot1Q(vlan=v)
    return p


def probe_addresses():
    """First and last address of every prefix and the neighbours outside it."""
    out = set()
    for net, _ in REF.prefixes:
        first, last = int(net.network_address), int(net.broadcast_address)
        top = (1 << net.max_prefixlen) - 1
        for a in (first, last, first - 1, last + 1, (first + last) // 2):
            if 0 <= a <= top:
                out.add(str(ipaddress.ip_address(a) if net.version == 4
                            else ipaddress.IPv6Address(a)))
    return sorted(out, key=lambda s: (":" in s, s))


def build_probe_traffic():
    pkts, expect = [], []
    services = [(6, 443), (17, 53), (17, 61000), (6, 22)]
    i = 0
    for addr in probe_addresses():
        for proto, dport in services:
            vlans = [(), (30,), (7, 30)][i % 3]
            p = (v6 if ":" in addr else v4)(addr, proto, dport, i, vlans=vlans)
            pkts.append(p)
            # The edges of the space (0.0.0.0, 255.255.255.255, ::) are
            # sources no router forwards from: dropped before any table.
            expect.append(Decision(None, None, None, set(), "martian_source") if martian(addr)
                          else REF.decide(addr, proto, dport))
            i += 1
    return pkts, expect


def check_frame(out_pkt, in_pkt, port):
    """Everything about one forwarded frame except which link it took."""
    assert out_pkt[Ether].src == PORT_MAC[port]
    link = MAC_TO_LINK[out_pkt[Ether].dst]
    assert REF.links[link]["port"] == port
    vlan = REF.links[link].get("vlan")
    if vlan:
        assert out_pkt.haslayer(Dot1Q) and out_pkt[Dot1Q].vlan == vlan
        assert not out_pkt[Dot1Q].payload.haslayer(Dot1Q)
    else:
        assert not out_pkt.haslayer(Dot1Q)
    if in_pkt.haslayer(IP):
        o, i = out_pkt[IP], in_pkt[IP]
        assert o.ttl == i.ttl - 1
        recomputed = IP(raw(o))
        del recomputed.chksum
        assert IP(raw(recomputed)).chksum == o.chksum, "IPv4 checksum not valid"
        assert raw(o.payload) == raw(i.payload)
    else:
        o, i = out_pkt[IPv6], in_pkt[IPv6]
        assert o.hlim == i.hlim - 1
        assert raw(o.payload) == raw(i.payload)
        assert (o.src, o.dst) == (i.src, i.dst)
    return link


def test_lpm_edges_policies_and_rewrite(tmp_path):
    pkts, expect = build_probe_traffic()
    run = run_pcap(str(tmp_path), TABLE, pkts, OUT_PORTS, "dp-lpm")
    assert run.rc == 0, run.stderr
    by_tag = {}
    for port, frames in run.outputs.items():
        for f in frames:
            t = tag_of(f)
            assert t not in by_tag, "a packet left twice"
            by_tag[t] = (port, f)
    links = collections.Counter()
    link_bytes = collections.Counter()  # frames as they left (after the L2 rewrite)
    regions = collections.Counter()
    drops = collections.Counter()
    for i, (p, e) in enumerate(zip(pkts, expect)):
        if e.region:
            regions[e.region] += 1
        if e.drop:
            assert i not in by_tag, f"packet {i} {e} should have been dropped"
            drops[e.drop] += 1
            continue
        assert i in by_tag, f"packet {i} {e} missing"
        port, f = by_tag[i]
        link = check_frame(f, p, port)
        assert link in e.links, f"packet {i}: left on {link}, expected {e}"
        links[link] += 1
        link_bytes[link] += len(raw(f))
    s = run.stats
    assert s["packets"]["rx"] == len(pkts)
    assert s["packets"]["tx"] == len(by_tag)
    assert s["packets"]["tx_bytes"] == sum(len(raw(f)) for _, f in by_tag.values())
    assert s["packets"]["rx"] == s["packets"]["tx"] + s["packets"]["dropped"]
    assert run.drops() == dict(drops)
    for name in REF.links:
        # Many links share a port, so one TX burst mixes links: each must
        # get exactly its own packets and bytes.
        assert s["links"][name]["packets"] == links[name], name
        assert s["links"][name]["bytes"] == link_bytes[name], name
    for name, n in regions.items():
        assert s["regions"][name]["packets"] == n, name
    assert "rx = tx + dropped: holds" in run.stdout


def test_malformed_and_ttl_counted(tmp_path):
    good = v4("10.9.9.9", 6, 443, 1)
    cases = [
        (Raw(raw(good)[:10]), "runt"),
        (Ether(src=IN_SRC_MAC) / ARP(), "non_ip"),
        (Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / IP(dst="198.51.100.1", src="10.9.9.9") / UDP(dport=53), "vlan_too_deep"),
        (Raw(raw(good)[:14 + 12]), "ipv4_truncated"),
        (Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / IP(dst="198.51.100.1", src="10.9.9.9", chksum=0x1234) / UDP(dport=53), "ipv4_bad_checksum"),
        (Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / IP(dst="198.51.100.1", src="10.9.9.9", ihl=4) / UDP(dport=53), "ipv4_bad_header"),
        (Raw(raw(Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / IP(dst="198.51.100.1", src="10.9.9.9") / TCP(dport=443))[:14 + 20 + 10]), "ipv4_truncated"),
        (Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / IP(dst="198.51.100.1", src="10.9.9.9", proto=6) / Raw(b"\x00" * 8), "l4_truncated"),
        (Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / IPv6(dst="2001:db8:ffff::1", src="2001:db8::1", version=5) / UDP(dport=53), "ipv6_bad_header"),
        (v6("::ffff:10.9.9.9", 6, 443, 7), "ipv6_mapped_source"),  # 10.9.9.9 as IPv4 is r8's
        (v4("127.0.0.1", 6, 443, 8), "martian_source"),  # in world's 0.0.0.0/0, never forwarded
        (v6("fe80::1", 6, 443, 9), "martian_source"),
        (Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / IPv6(dst="2001:db8:ffff::1", src="2001:db8::1") / (IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt()) / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / UDP(dport=53), "ipv6_ext_chain"),
        (Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / IP(dst="198.51.100.1", src="10.9.9.9", flags="MF", frag=0) / UDP(dport=53) / Raw(b"x" * 5), "frag_invalid"),
        (Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / IP(dst="198.51.100.1", src="10.9.9.9", frag=100, id=77) / Raw(b"x" * 16), "frag_no_first"),
        (v4("10.9.9.9", 6, 443, 2, ttl=1), "ttl_expired"),
        (v6("2001:db8::5", 17, 53, 3, hlim=1), "ttl_expired"),
        (v4("10.9.9.9", 17, 53, 4), "policy_drop"),  # r8/dns: drop
        (v4("203.0.113.9", 6, 443, 5), None),  # world: forwarded
        (v4("10.1.2.200", 6, 443, 6, ttl=2), None),  # forwarded with TTL 1
    ]
    run = run_pcap(str(tmp_path), TABLE, [c[0] for c in cases], OUT_PORTS, "dp-bad")
    assert run.rc == 0, run.stderr
    want = collections.Counter(r for _, r in cases if r)
    assert run.drops() == dict(want)
    s = run.stats["packets"]
    assert s["rx"] == len(cases) and s["tx"] == 2 and s["rx"] == s["tx"] + s["dropped"]
    out = [f for frames in run.outputs.values() for f in frames]
    assert sorted(f[IP].ttl for f in out) == [1, 63]


def test_fragments_follow_first(tmp_path):
    pkts = []
    # A group-steered datagram: all fragments must leave on one link.
    big = Ether(src=IN_SRC_MAC) / IP(src="192.0.2.10", dst="198.51.100.1", id=4242) / UDP(sport=5, dport=61000) / Raw(b"A" * 3000)
    frags4 = fragment(big[IP], fragsize=800)
    pkts += [Ether(src=IN_SRC_MAC) / f for f in frags4]
    big6 = IPv6(src="2001:db8:9::10", dst="2001:db8:ff::1") / IPv6ExtHdrFragment(id=0xabcdef) / UDP(sport=6, dport=61000) / Raw(b"B" * 3000)
    frags6 = fragment6(big6, 1280)
    pkts += [Ether(src=IN_SRC_MAC) / f for f in frags6]
    # A datagram whose policy drops: every fragment dropped as policy_drop.
    drop = IP(src="10.9.9.9", dst="198.51.100.1", id=99) / UDP(dport=53) / Raw(b"C" * 2000)
    drop_frags = fragment(drop, fragsize=800)
    pkts += [Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / f for f in drop_frags]
    # Later fragments whose first never came.
    orphan = fragment(IP(dst="198.51.100.1", src="192.0.2.11", id=7) / UDP(dport=61000) / Raw(b"D" * 2000), fragsize=800)[1:]
    pkts += [Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / f for f in orphan]
    # A first fragment dropped as ttl_expired leaves nothing to follow, as
    # one dropped too_big: its later fragment went out (a probe).
    expired = fragment(IP(src="192.0.2.12", dst="198.51.100.1", id=8, ttl=1) / UDP(dport=61000) /
                       Raw(b"E" * 1200), fragsize=800)
    expired[1].ttl = 64
    pkts += [Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / f for f in expired]
    # ... but one a policy drops, TTL 1 or not, takes its later fragments
    # with it (policy_drop), as any dropped first fragment does.
    dropped = fragment(IP(src="10.9.9.9", dst="198.51.100.1", id=98, ttl=1) / UDP(dport=53) /
                       Raw(b"F" * 1200), fragsize=800)
    dropped[1].ttl = 64
    pkts += [Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02") / f for f in dropped]
    run = run_pcap(str(tmp_path), TABLE, pkts, OUT_PORTS, "dp-frag")
    assert run.rc == 0, run.stderr
    out = [f for frames in run.outputs.values() for f in frames]
    v4_out = [f for f in out if f.haslayer(IP)]
    v6_out = [f for f in out if f.haslayer(IPv6)]
    assert len(v4_out) == len(frags4) and len(v6_out) == len(frags6)
    assert len({f[Ether].dst for f in v4_out}) == 1
    assert len({f[Ether].dst for f in v6_out}) == 1
    assert MAC_TO_LINK[v4_out[0][Ether].dst] in ("ga", "gb")
    assert run.drops() == {"policy_drop": len(drop_frags) + 2, "frag_no_first": len(orphan) + 1, "ttl_expired": 1}
    ev = run.stats["events"]
    assert ev["frag_first"] == 4
    assert ev["frag_followed"] == len(frags4) - 1 + len(frags6) - 1 + len(drop_frags) - 1 + 1


FRAG_RESIDENCY_TABLE = """regions:
  in: {prefixes: [10.0.0.0/8, "2001:db8::/32"]}
  mid: {prefixes: [10.1.0.0/16, "2001:db8:1::/48"]}
  sg: {prefixes: [11.0.0.0/8, "2001:db9::/32"]}
services: {sync: [udp/7000-7010], web: [udp/80]}
links:
  local: {port: local0, next_hop_mac: "02:00:00:00:01:01", tags: [in]}
  to-sg: {port: sg0, next_hop_mac: "02:00:00:00:02:01", tags: [sg]}
  tap: {port: tap0, next_hop_mac: "02:00:00:00:03:01", tags: [sg]}
policies:
  - {region: in, service: sync, action: steer, to: local}
  - {region: in, service: web, action: steer, to: to-sg, mirror: tap}
  - {region: mid, service: sync, action: steer, to: local}
default: {action: steer, to: to-sg}
residency:
  - {name: keep-sync, region: in, services: [sync], allowed_tags: [in]}
"""


def frag_pair(fam, src, ident, dport, mark):
    """A UDP datagram to @dport in two fragments, (first, later): 8 bytes
    after the UDP header in the first, 16 bytes of @mark in the later."""
    udp = raw(UDP(sport=5000, dport=dport, len=8 + 8 + 16)) + b"f" * 8
    e = Ether(src=IN_SRC_MAC, dst="02:99:00:00:00:02")
    if fam == 4:
        dst = "192.0.2.1"
        return (e / IP(src=src, dst=dst, id=ident, flags="MF", proto=17) / Raw(udp),
                e / IP(src=src, dst=dst, id=ident, frag=2, proto=17) / Raw(mark * 16))
    dst = "2001:db8:ff::1"
    return (e / IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=ident) / Raw(udp),
            e / IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(nh=17, offset=2, m=0, id=ident) / Raw(mark * 16))


def test_a_later_fragment_keeps_to_its_regions_rules(tmp_path):
    """A later fragment takes its first fragment's decision by a key that
    another datagram can share: an IPv4 id used again, or a spoofed first
    fragment. A web datagram's first fragment (to-sg, copied to tap) once
    led a sync datagram's later fragment, sent before its own first, out to
    sg. A later fragment of a region a rule holds (its own rule, or one of
    a protected region it is nested in) now leaves, or is copied, only on a
    link every such rule allows; elsewhere it is dropped (frag_residency).
    Regions no rule holds are not touched."""
    table = tmp_path / "t.yaml"
    table.write_text(FRAG_RESIDENCY_TABLE)
    pkts = []
    for fam, (src_in, src_in2, src_mid, src_sg) in (
            (4, ("10.5.5.5", "10.5.5.6", "10.1.0.5", "11.0.0.5")),
            (6, ("2001:db8::5", "2001:db8::6", "2001:db8:1::5", "2001:db9::5"))):
        web_first, web_later = frag_pair(fam, src_in, 4242, 80, b"w")
        sync_first, sync_later = frag_pair(fam, src_in, 4242, 7001, b"S")
        # the same id used again: the web datagram whole, then the sync
        # datagram's later fragment before its first
        pkts += [web_first, web_later, sync_later, sync_first]
        # a spoofed web first fragment ahead of a sync datagram
        web_first, _ = frag_pair(fam, src_in2, 77, 80, b"w")
        sync_first, sync_later = frag_pair(fam, src_in2, 77, 7002, b"S")
        pkts += [web_first, sync_later, sync_first]
        # mid lies inside in's prefixes: in's rule holds its fragments too
        pkts += list(frag_pair(fam, src_mid, 5, 80, b"m"))
        # sg: no rule holds it, its fragments follow as before
        pkts += list(frag_pair(fam, src_sg, 6, 80, b"g"))
    run = run_pcap(str(tmp_path), str(table), pkts, ["local0", "sg0", "tap0"], "dp-fragres")
    assert run.rc == 0, run.stderr
    out = run.outputs

    def marks(port):
        """f for a first fragment, else its later fragment's mark."""
        return sorted(next(m for m in "fSwmg" if (m * (8 if m == "f" else 16)).encode() in bytes(f))
                      for f in out[port])
    # per family: the first fragments of the web datagrams of in (two),
    # mid and sg, and sg's later fragment; tap the copies of in's web firsts
    assert marks("sg0") == sorted(["f", "f", "f", "f", "g"] * 2), [bytes(f) for f in out["sg0"]]
    assert marks("tap0") == ["f"] * 4
    assert marks("local0") == ["f"] * 4  # the sync first fragments, after their later ones
    # per family: in's web later fragment and two sync later fragments, mid's
    assert run.drops() == {"frag_residency": 8}, run.drops()


def group_run(tmp_path, prefix):
    tmp_path.mkdir()
    pkts = [v4(f"192.0.2.{1 + i % 250}", 17, 61000 + i % 4000, i) for i in range(2000)]
    pkts += [v6(f"2001:db8:9::{i:x}", 6, 443, 2000 + i) for i in range(500)]
    run = run_pcap(str(tmp_path), TABLE, pkts, OUT_PORTS, prefix)
    assert run.rc == 0, run.stderr
    return {tag_of(f): MAC_TO_LINK[f[Ether].dst] for fr in run.outputs.values() for f in fr}


def test_group_consistent_and_weighted(tmp_path):
    a = group_run(tmp_path / "a", "dp-grp-a")
    b = group_run(tmp_path / "b", "dp-grp-b")
    assert len(a) == 2500
    assert a == b, "the same flows must pick the same links on every run"
    share = collections.Counter(a.values())
    assert set(share) == {"ga", "gb"}, "a down member must never be picked"
    assert 0.18 < share["ga"] / 2500 < 0.32  # weights 1:3


def test_bad_table_refused_at_start(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(open(TABLE).read().replace("10.1.2.128/25", "10.1.2.129/25"))
    run = run_pcap(str(tmp_path), str(bad), [v4("10.0.0.1", 6, 443, 1)], OUT_PORTS, "dp-badtab")
    assert run.rc != 0
    assert "table refused: " in run.stderr
    assert "regions.r25.prefixes[0]: host bits set in '10.1.2.129/25' (did you mean 10.1.2.128/25?)" in run.stderr
    assert run.outputs["out0"] == [] and run.outputs["out1"] == []


def test_residency_violation_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(open(TABLE).read() + (
        "residency:\n"
        "  - {name: r8-stays, region: r8, services: [web], allowed_tags: [r8-only]}\n"))
    p = subprocess.run([regionfwd_bin(), "--check-table", str(bad)], capture_output=True, text=True)
    want = ("policies[1]: breaks residency rule 'r8-stays': region 'r8' service 'web' "
            "steers to link 'l-r8' (no tags; allowed: r8-only)")
    assert p.returncode == 1 and want in p.stderr
    run = run_pcap(str(tmp_path), str(bad), [v4("10.0.0.1", 6, 443, 1)], OUT_PORTS, "dp-resid")
    assert run.rc != 0 and want in run.stderr


def test_link_on_unknown_port_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(open(TABLE).read().replace("l-r8:    {port: out0", "l-r8:    {port: out7"))
    run = run_pcap(str(tmp_path), str(bad), [v4("10.0.0.1", 6, 443, 1)], OUT_PORTS, "dp-badport")
    assert run.rc != 0
    assert "links.l-r8.port: no port 'out7' in node config" in run.stderr
    assert "(ports: in0, out0, out1)" in run.stderr


def test_bad_node_config_refused(tmp_path):
    node = tmp_path / "node.yaml"
    node.write_text("ports:\n  in0: {device: net_null0, ingres: true}\n")
    p = subprocess.run([regionfwd_bin(), "-l", "0,1", "--no-huge", "-m", "512", "--no-pci",
                        "--file-prefix", "dp-badnode", "--", "--node", str(node), "--table", TABLE],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "node config refused: " in p.stderr
    assert "unknown field 'ingres'" in p.stderr


def test_check_table_mode():
    p = subprocess.run([regionfwd_bin(), "--check-table", TABLE], capture_output=True, text=True)
    assert p.returncode == 0 and "valid: 13 regions, 3 services, 16 links" in p.stdout
    p = subprocess.run([regionfwd_bin(), "--check-table", "/nonexistent.yaml"], capture_output=True, text=True)
    assert p.returncode == 1 and "/nonexistent.yaml: cannot open: No such file or directory" in p.stderr


def test_telemetry_signals_and_hitless_reload(tmp_path):
    from scapy.all import wrpcap
    in_pcap = str(tmp_path / "loop.pcap")
    pkts, _ = build_probe_traffic()
    wrpcap(in_pcap, pkts[:256])
    table = tmp_path / "table.yaml"
    shutil.copy(TABLE, table)
    d = Daemon(str(tmp_path), str(table), in_pcap, OUT_PORTS, "dp-tel")
    try:
        # The telemetry socket opens with EAL, before regionfwd registers
        # its commands: those answer null until then.
        wait_for(lambda: (d.telemetry("/regionfwd/packets") or {}).get("rx", 0) > 10000)
        # Under load, every read is a consistent burst boundary.
        for _ in range(20):
            p = d.telemetry("/regionfwd/packets")
            assert p["rx"] == p["tx"] + p["dropped"]
        assert d.telemetry("/regionfwd/generation")["id"] == 1
        assert d.telemetry("/regionfwd/links")["l_r8"] > 0  # '-' is '_' in telemetry keys
        assert "policy_drop" in d.telemetry("/regionfwd/drops")

        # dpdk-telemetry.py, the tool operators already have, reads them too.
        tool = subprocess.run(["dpdk-telemetry.py", "-f", "dp-tel"], input="/regionfwd/packets\n",
                              capture_output=True, text=True, timeout=20)
        assert tool.returncode == 0 and '"/regionfwd/packets": {"rx": ' in tool.stdout, tool.stdout

        # SIGHUP with a changed table: generation 2, l-r8 down, nothing lost.
        table.write_text(open(TABLE).read().replace(
            'l-r8:    {port: out0, next_hop_mac: "02:00:00:00:00:02"}',
            'l-r8:    {port: out0, next_hop_mac: "02:00:00:00:00:02", state: down}'))
        d.signal(signal.SIGHUP)
        wait_for(lambda: d.telemetry("/regionfwd/generation")["id"] == 2)
        before = d.telemetry("/regionfwd/drops")["no_link_up"]
        wait_for(lambda: d.telemetry("/regionfwd/drops")["no_link_up"] > before)
        p = d.telemetry("/regionfwd/packets")
        assert p["rx"] == p["tx"] + p["dropped"]

        # A file edited into one wire under two names with other tags is
        # refused as --check-table refuses it (a table being written).
        table.write_text(open(TABLE).read().replace(
            'l-r16:   {port: out0, next_hop_mac: "02:00:00:00:00:03"}',
            'l-r16:   {port: out0, next_hop_mac: "02:00:00:00:00:02", tags: [x]}'))
        d.signal(signal.SIGHUP)
        wait_for(lambda: "link 'l-r16' leaves by the same port 'out0', next hop and VLAN as link 'l-r8'"
                 in open(d.out.name).read())
        assert d.telemetry("/regionfwd/generation")["id"] == 2

        # A YAML tag in a file whose names_file is embedded (as JSON, which
        # keeps no tag) is refused as in one without (a review).
        (tmp_path / "names.txt").write_text("metrics.example.org\n")
        table.write_text(open(TABLE).read() + "description: !!binary aGk=\n"
                         "content_rules:\n  - {name: nm, field: tls_sni, names_file: names.txt, action: drop}\n")
        d.signal(signal.SIGHUP)
        wait_for(lambda: "YAML tag '!!binary' is not read" in open(d.out.name).read())
        assert d.telemetry("/regionfwd/generation")["id"] == 2

        # A broken table on SIGHUP is refused; forwarding goes on unchanged.
        table.write_text("regions: [\n")
        d.signal(signal.SIGHUP)
        wait_for(lambda: open(d.out.name).read().count("reload refused: ") == 3)
        assert d.telemetry("/regionfwd/generation")["id"] == 2
        rx = d.telemetry("/regionfwd/packets")["rx"]
        wait_for(lambda: d.telemetry("/regionfwd/packets")["rx"] > rx)
        d.signal(signal.SIGUSR1)
        # Its report before SIGTERM: a main loop that wakes to both quits
        # first (the exit report follows anyway).
        wait_for(lambda: open(d.out.name).read().count("rx = tx + dropped: holds") == 1)
    finally:
        log = d.stop()
    assert d.proc.returncode == 0, log
    assert "; still forwarding on generation 2" in log and "reload refused: " in log
    assert "YAML syntax" in log
    assert log.count("rx = tx + dropped: holds") == 2  # SIGUSR1 and exit
    assert "BROKEN" not in log


def test_telemetry_keys_of_names_that_map_alike_stay_apart(tmp_path):
    """Telemetry keys hold no '-' or '.', so 'a-b', 'a.b' and 'a_b' were all
    'a_b' in /regionfwd/regions: three entries with one key, which every
    JSON client (dpdk-telemetry.py too) reads as one, two regions' counts
    lost without a word. A name that is a key as it is keeps it ('a_b',
    'a_b_2' here); a changed one that meets a taken key gets the first free
    _2, _3, ...: each count is there once."""
    from scapy.all import wrpcap
    names = {"a-b": (10, 1), "a.b": (11, 2), "a_b": (12, 3), "a_b_2": (13, 4), "a--b": (14, 5)}
    doc = {"version": 1,
           "regions": {n: {"prefixes": [f"10.{o}.0.0/16"]} for n, (o, _) in names.items()},
           "links": {"l.x": {"port": "out0", "next_hop_mac": "02:00:00:00:00:0a"},
                     "l-x": {"port": "out0", "next_hop_mac": "02:00:00:00:00:0b"}},
           "policies": [{"region": "a-b", "service": "any", "action": "steer", "to": "l.x"},
                        {"region": "a.b", "service": "any", "action": "steer", "to": "l-x"}],
           "default": {"action": "drop"}}
    table = tmp_path / "t.json"
    table.write_text(json.dumps(doc))
    pkts = [v4(f"10.{o}.0.1", 17, 53, i) for n, (o, k) in names.items() for i in range(k)]
    in_pcap = str(tmp_path / "once.pcap")
    wrpcap(in_pcap, pkts)
    d = Daemon(str(tmp_path), str(table), in_pcap, OUT_PORTS, "dp-telkeys", infinite=False)
    try:
        wait_for(lambda: (d.telemetry("/regionfwd/packets") or {}).get("rx", 0) == len(pkts))

        def pairs(cmd):
            d.sock.send(cmd.encode())
            return json.loads(d.sock.recv(1 << 20).decode(), object_pairs_hook=list)[0][1]

        regions = pairs("/regionfwd/regions")
        keys = [k for k, _ in regions]
        assert len(keys) == len(set(keys)), regions
        assert sorted(v for k, v in regions if k != "unknown") == [1, 2, 3, 4, 5], regions
        assert dict(regions)["a_b"] == 3 and dict(regions)["a_b_2"] == 4, regions
        links = pairs("/regionfwd/links")
        assert sorted(k for k, _ in links) == ["l_x", "l_x_2"], links
        assert sorted(v for _, v in links) == [1, 2], links
        policies = pairs("/regionfwd/policies")
        assert len({k for k, _ in policies}) == len(policies), policies
    finally:
        log = d.stop()
    assert d.proc.returncode == 0, log


@pytest.mark.parametrize("nregions,nservices", [(5, 4), (30, 20), (260, 260)])
def test_region_service_policy_counters(tmp_path, nregions, nservices):
    """Region, service and policy counters, packets and bytes, in both ways
    the fast path counts them: per (region, service) cell, summed by the
    reader, for tables of up to 65,536 cells (5 x 4 and 30 x 20 here), and
    directly for larger ones (260 x 260 = 67,600 cells). Policies at every precedence
    level, a drop, and traffic that matches no region or service."""
    regions = {f"r{i}": {"prefixes": [f"10.{i // 256}.{i % 256}.0/24"]} for i in range(nregions)}
    services = {f"s{j}": [f"udp/{1000 + j}"] for j in range(nservices)}
    doc = {"version": 1, "regions": regions, "services": services,
           "links": {"a": {"port": "out0", "next_hop_mac": "02:00:00:00:00:0a"},
                     "b": {"port": "out0", "next_hop_mac": "02:00:00:00:00:0b"}},
           "policies": [{"region": "r1", "service": "s1", "action": "steer", "to": "a"},
                        {"region": "r1", "service": "any", "action": "steer", "to": "b"},
                        {"region": "any", "service": "s2", "action": "steer", "to": "a"},
                        {"region": "r3", "service": "s3", "action": "drop"}],
           "default": {"action": "steer", "to": "b"}}
    table = tmp_path / "t.json"
    table.write_text(json.dumps(doc))

    def policy(r, s):
        if r == "r1" and s == "s1":
            return "r1/s1"
        if r == "r3" and s == "s3":
            return "r3/s3"
        if r == "r1":
            return "r1/any"
        if s == "s2":
            return "any/s2"
        return "default"

    pkts, want = [], collections.defaultdict(collections.Counter)
    rng = random.Random(nregions)
    for i in range(300):
        ri = rng.choice([0, 1, 2, 3, nregions - 1, None])
        sj = rng.choice([0, 1, 2, 3, nservices - 1, None])
        src = f"10.{ri // 256}.{ri % 256}.9" if ri is not None else "192.0.2.9"
        dport = 1000 + sj if sj is not None else 9
        p = Ether(dst="02:00:00:00:00:99") / IP(src=src, dst="198.51.100.1") / \
            UDP(sport=4000 + i, dport=dport) / Raw(b"x" * rng.randrange(0, 200))
        pkts.append(p)
        r = f"r{ri}" if ri is not None else "unknown"
        s = f"s{sj}" if sj is not None else "other"
        for kind, name in (("regions", r), ("services", s), ("policies", policy(r, s))):
            want[kind][(name, "packets")] += 1
            if kind != "policies":
                want[kind][(name, "bytes")] += len(p)
    run = run_pcap(str(tmp_path), str(table), pkts, ["out0"], f"dp-cnt{nregions}", mem=1536)
    assert run.rc == 0, run.stderr
    s = run.stats
    for kind in ("regions", "services", "policies"):
        got = collections.Counter()
        for name, c in s[kind].items():
            for field in ("packets", "bytes"):
                if c.get(field):
                    got[(name, field)] = c[field]
        assert got == want[kind], kind
    assert s["packets"]["dropped"] == want["policies"][("r3/s3", "packets")]


@pytest.mark.parametrize("run_len", [0, 1, 5])
def test_link_counters_per_tx_burst(tmp_path, run_len):
    """Link and tx counters for the two ways a sent TX burst is accounted:
    one link for the whole burst (summed at once; run_len 0: every packet
    on link a) and mixed links (run_len 1: alternating a/b, 5: runs of
    five). Packets and bytes per link must match the frames captured."""
    doc = {"version": 1,
           "regions": {"r": {"prefixes": ["10.0.0.0/8"]}},
           "services": {"s": ["udp/1000"]},
           "links": {"a": {"port": "out0", "next_hop_mac": "02:00:00:00:00:0a"},
                     "b": {"port": "out0", "next_hop_mac": "02:00:00:00:00:0b", "vlan": 7}},
           "policies": [{"region": "r", "service": "s", "action": "steer", "to": "b"}],
           "default": {"action": "steer", "to": "a"}}
    table = tmp_path / "t.json"
    table.write_text(json.dumps(doc))
    rng = random.Random(run_len)
    pkts = []
    for i in range(200):
        to_b = run_len and (i // run_len) % 2 == 1
        p = Ether(dst="02:00:00:00:00:99") / IP(src="10.1.2.3", dst="198.51.100.1") / \
            UDP(sport=4000 + i, dport=1000 if to_b else 2000) / Raw(b"y" * rng.randrange(0, 300))
        pkts.append(p)
    run = run_pcap(str(tmp_path), str(table), pkts, ["out0"], f"dp-lnk{run_len}")
    assert run.rc == 0, run.stderr
    want = collections.Counter()
    for f in run.outputs["out0"]:
        link = "b" if f.haslayer(Dot1Q) else "a"
        want[(link, "packets")] += 1
        want[(link, "bytes")] += len(raw(f))
    assert sum(v for (_, k), v in want.items() if k == "packets") == len(pkts)
    s = run.stats
    for link in ("a", "b"):
        assert s["links"][link]["packets"] == want[(link, "packets")], link
        assert s["links"][link]["bytes"] == want[(link, "bytes")], link
    assert s["packets"]["tx"] == len(pkts)
    assert s["packets"]["tx_bytes"] == sum(len(raw(f)) for f in run.outputs["out0"])
