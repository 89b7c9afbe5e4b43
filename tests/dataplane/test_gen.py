"""regionfwd-gen, the load-test generator (docs/load-testing.md): its
traffic covers the table (every region's prefixes at their edges, service
port edges, IPv4 and IPv6, IMIX sizes), and in a live loop through
regionfwd over veth pairs every link receives exactly what the table says
it should, with a measured latency."""
import ipaddress
import json
import os
import signal
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import netns  # noqa: E402
from dprun import eal_args, regionfwd_bin, start_regionfwd, wait_started  # noqa: E402
from refclass import ExactTable, martian  # noqa: E402

from scapy.all import IP, SCTP, TCP, UDP, Dot1Q, Ether, IPv6, Raw, rdpcap, wrpcap  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# The generator's counting is the same code in both builds; these runs of it
# (big FIBs, a port down, partial bursts, links alike) take the sanitizer
# stage a minute of two busy cores for no check of memory the others do not
# make: the live loop, the wrong-link loop, crafted frames back (VLANs, LLDP,
# no stamp), the low rates and the interrupted run stay in both.
release_only = pytest.mark.skipif(os.environ.get("SANITIZE", "none") not in ("", "none"),
                                  reason="release build only: the same counting runs under ASan in the others")
DEMO = os.path.join(HERE, "..", "..", "docs", "examples", "demo-table.yaml")


def gen_bin():
    return os.path.join(os.path.dirname(regionfwd_bin()), "regionfwd-gen")


@pytest.mark.parametrize("args,words", [
    (["--duration", "nan"], '--duration takes seconds, 0.001 to 31536000 (given "nan")'),
    (["--duration", "1e-300"], '--duration takes seconds, 0.001 to 31536000 (given "1e-300")'),
    (["--duration", "inf"], "--duration takes seconds"),
    (["--duration", "1e10"], "--duration takes seconds"),
    (["--duration", "0"], "--duration takes seconds"),
    (["--rate", "nan"], "--rate takes packets a second"),
    (["--rate", "abc"], "--rate takes packets a second"),
    (["--rate", "1e-300"], "--rate takes packets a second"),
    (["--rate", "0.5"], "--rate takes packets a second"),
    (["--flows", "4294967297"], '--flows takes 1..1048576 (given "4294967297")'),
    (["--flows", "-4294967295"], "--flows takes 1..1048576"),
    (["--flows", "7junk"], "--flows takes 1..1048576"),
    (["--size", "64abc"], '--size takes 64..1518 or imix (given "64abc")'),
    (["--size", "4294967360"], "--size takes 64..1518 or imix"),
    (["--size", "60"], '--size takes 64..1518 or imix (given "60")'),
    (["--size", "63"], '--size takes 64..1518 or imix (given "63")'),
    (["--size", "1519"], '--size takes 64..1518 or imix (given "1519")'),
    (["--table", DEMO], "--table given twice"),
    (["--json", "--json"], "--json given twice"),
    (["--run-id", "16777216"], "--run-id takes 0..16777215"),
    # --pcap writes a file and sends nothing: what only a run takes is refused.
    (["--tx", "net_null0"], "--tx and --pcap: give one"),
    (["--rate", "100"], "--rate does not apply with --pcap"),
    (["--duration", "5"], "--duration does not apply with --pcap"),
    (["--rx", "net_null1"], "--rx does not apply with --pcap"),
    (["--json"], "--json does not apply with --pcap"),
    (["--link-wait", "1"], "--link-wait does not apply with --pcap"),
    (["--link-wait", "601"], '--link-wait takes seconds, 0 to 600 (given "601")'),
    (["--link-wait", "-1"], "--link-wait takes seconds, 0 to 600"),
])
def test_bad_numbers_are_refused_naming_the_option(tmp_path, args, words):
    """--duration nan never stopped and inf sent nothing with exit 0; --rate
    abc was 'as fast as possible' and 1e-300 overflowed the spacing of
    bursts; --flows 4294967297 was 1 and 7junk 7; --size 64abc was 64, and
    60 was taken where the doc says 64..1518; a second --table went unsaid,
    and --json --json was taken where the doc says each option but --rx is
    given once; and one message named four options."""
    p = subprocess.run([gen_bin()] + eal_args("gen-args", "0", 512) + [
        "--", "--table", DEMO, "--pcap", str(tmp_path / "g.pcap"), *args],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and words in p.stdout + p.stderr, p.stdout + p.stderr
    assert not os.path.exists(tmp_path / "g.pcap")


def test_pcap_covers_the_table(tmp_path):
    out = tmp_path / "gen.pcap"
    p = subprocess.run([gen_bin()] + eal_args("gen-pcap", "0", 512) + [
        "--", "--table", DEMO, "--pcap", str(out), "--flows", "840", "--size", "imix"],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # its two drop rules are not modelled, and said so
    assert "note: 2 content rules of the table drop, steer or mirror" in p.stderr, p.stderr
    frames = rdpcap(str(out))
    assert len(frames) == 840
    ref = ExactTable(DEMO)
    regions = {ref.region_of(f[IP].src if IP in f else f[IPv6].src) for f in frames}
    assert regions >= {"india", "india-partner", "singapore", "oregon", "california", "brazil"}
    assert any(IPv6 in f for f in frames) and any(IP in f for f in frames)
    sizes = {len(f) for f in frames}
    assert 1514 in sizes and 566 in sizes  # IMIX: 1518 and 570 on the wire, FCS excluded
    ports = {f[L4].dport for f in frames for L4 in (TCP, UDP, SCTP) if L4 in f}
    assert {443, 53, 123, 7000, 7010, 8443} <= ports  # service entries and range edges
    # The network address and the last address of prefixes both appear.
    srcs = {f[IP].src for f in frames if IP in f}
    assert "103.21.0.0" in srcs or "103.21.255.255" in srcs


def test_no_source_no_router_forwards_from(tmp_path):
    """regionfwd drops a source no router forwards from (martian_source):
    the edges of 0.0.0.0/0 and ::/0 and all of 224.0.0.0/4 were sent from
    (the generator stopped: "flow 0 does not parse"). An address inside
    instead, the next prefix for one that holds only those, and a table of
    only those is refused, saying why."""
    table, out = tmp_path / "t.yaml", tmp_path / "gen.pcap"

    def gen(regions, services="", flows=()):
        """regionfwd-gen --pcap on a table of @regions steered to one link."""
        table.write_text(f"version: 1\nregions:\n{regions}{services}"
                         'links:\n  l: {port: out0, next_hop_mac: "02:00:00:00:00:01"}\n'
                         "default: {action: steer, to: l}\n")
        return subprocess.run([gen_bin()] + eal_args("gen-martian", "0", 512) + [
            "--", "--table", str(table), "--pcap", str(out), *flows],
            capture_output=True, text=True, timeout=60)

    p = gen('  world: {prefixes: [0.0.0.0/0, "::/0"]}\n  mc: {prefixes: [224.0.0.0/4]}\n'
            "  r8: {prefixes: [10.0.0.0/8]}\n", flows=("--flows", "60"))
    assert p.returncode == 0, p.stderr
    srcs = [f[IP].src if IP in f else f[IPv6].src for f in rdpcap(str(out))]
    assert len(srcs) == 60 and not [a for a in srcs if martian(a)], srcs
    assert any(a.startswith("10.") for a in srcs) and any(":" in a for a in srcs), srcs
    # Half of 192.0.0.0/2 is 224.0.0.0/3: once 16 misses in a row (the
    # LCG's low bit came in runs) took it for all martian, at flow 632; and
    # 5/8 of fe00::/7 is martian. Each alone, then together, with a
    # port-less service whose number is an IPv6 extension header's (AH:
    # sent as UDP, as every port-less service is; a rewrite of this loop
    # once lost that, and the generator stopped on its own frames).
    for prefixes in ("[192.0.0.0/2]", '["fe00::/7"]', '[192.0.0.0/2, "fe00::/7"]'):
        p = gen(f"  a: {{prefixes: {prefixes}}}\n", "services:\n  ah: [51]\n  web: [tcp/443]\n")
        assert p.returncode == 0, (prefixes, p.stderr)
        frames = rdpcap(str(out))
        srcs = [f[IP].src if IP in f else f[IPv6].src for f in frames]
        assert len(srcs) == 4096 and not [a for a in srcs if martian(a)], srcs
        assert any("." in a for a in srcs) == ("192" in prefixes), prefixes
        assert any(":" in a for a in srcs) == ("fe00" in prefixes), prefixes
        if prefixes == "[192.0.0.0/2]":
            assert "192.0.0.0" in srcs  # the network address, an edge that is ordinary
        assert {("udp" if UDP in f else "tcp" if TCP in f else "other") for f in frames} == {"udp", "tcp"}
    p = gen('  mc: {prefixes: [224.0.0.0/4, "fe80::/10"]}\n', flows=("--flows", "60"))
    assert p.returncode != 0 and "every prefix of the table lies where no router forwards from" in p.stderr, \
        p.stderr


def test_sctp_ranges_get_sctp_frames(tmp_path):
    """SCTP entries (and the SCTP third of any/...) were sent as UDP to a
    random port, so an sctp range was never reached. They are SCTP now, at
    the range's lo, hi and a port inside, and regionfwd's parser reads
    their ports as it does on the wire."""
    table = tmp_path / "t.yaml"
    table.write_text("regions: {a: {prefixes: [10.1.0.0/16, '2001:db8:1::/48']}}\n"
                     "services: {sig: [sctp/2905-2910], dns: [any/53]}\n"
                     "links: {la: {port: out0, next_hop_mac: '02:00:00:00:00:0a'}}\n"
                     "policies: [{region: a, service: any, action: steer, to: la}]\n")
    out = tmp_path / "g.pcap"
    p = subprocess.run([gen_bin()] + eal_args("gen-sctp", "0", 512) + [
        "--", "--table", str(table), "--pcap", str(out), "--flows", "48"],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    frames = rdpcap(str(out))
    sctp = sorted({f[SCTP].dport for f in frames if SCTP in f})
    assert {2905, 2910, 53} <= set(sctp) and any(2905 < port < 2910 for port in sctp), sctp
    assert {TCP, UDP} <= {type(f.payload.payload) for f in frames}, "tcp/53 and udp/53 too"
    assert any(SCTP in f and IPv6 in f for f in frames) and any(SCTP in f and IP in f for f in frames)
    for f in (f for f in frames if SCTP in f):  # a common header, then the 24-byte stamp
        assert f[SCTP].tag == 1 and int.from_bytes(bytes(f[SCTP].payload)[:8], "little") == MAGIC, f.show(dump=True)


@pytest.mark.parametrize("nranges", [3, 8, 16])
def test_every_port_range_gets_lo_hi_and_inside(tmp_path, nranges):
    """Range i % n took lo or hi by `i & 4`: with 8 ranges (any multiple of
    8) half of them only ever had lo and half only hi, and no range had a
    port inside. Each range now has its lo, its hi and a port between."""
    ranges = [("tcp" if k % 2 else "udp", 1000 * (k + 1), 1000 * (k + 1) + 10) for k in range(nranges)]
    table = tmp_path / "t.yaml"
    table.write_text("regions: {a: {prefixes: [10.1.0.0/16, '2001:db8:1::/48']}}\n"
                     "services: {" + ", ".join(f"s{k}: [{p}/{lo}-{hi}]" for k, (p, lo, hi) in enumerate(ranges)) + "}\n"
                     "links: {la: {port: out0, next_hop_mac: '02:00:00:00:00:0a'}}\n"
                     "policies: [{region: a, service: any, action: steer, to: la}]\n")
    out = tmp_path / "g.pcap"
    p = subprocess.run([gen_bin()] + eal_args("gen-ranges", "0", 512) + [
        "--", "--table", str(table), "--pcap", str(out), "--flows", str(3 * nranges)],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    sent = {("tcp", f[TCP].dport) if TCP in f else ("udp", f[UDP].dport) for f in rdpcap(str(out))}
    for proto, lo, hi in ranges:
        got = sorted(port for pr, port in sent if pr == proto and lo <= port <= hi)
        assert got[0] == lo and got[-1] == hi and any(lo < port < hi for port in got), (proto, lo, hi, got)


def null_run(tmp_path, table, *args, mem=1024, rate="100000", duration="0.5"):
    """The generator sending on a net_null port (which takes every frame and
    returns none) for half a second: its JSON result, whose 'expected'
    counts say which link the generator means each frame sent for."""
    p = subprocess.run([gen_bin()] + eal_args("gen-null", "0", mem) + [
        "--vdev", "net_null0", "--", "--table", str(table), "--tx", "net_null0",
        "--rate", rate, "--duration", duration, "--json", *args],
        capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def groups_table(path):
    """A table whose FIBs need more than 65,535 groups of 256 entries each:
    70,000 IPv4 /25s and 14,000 IPv6 /64s, each in a /24 of its own (one
    group a /25, five a /64). All of region a, steered to la; an address no
    prefix holds would go to lb."""
    v4 = [f"{ipaddress.IPv4Address((11 << 24) + (i << 8))}/25" for i in range(70000)]
    v6 = [f"{ipaddress.IPv6Address(((0x200000 + i) << 104) | (0xab << 64))}/64" for i in range(14000)]
    path.write_text(json.dumps({
        "regions": {"a": {"prefixes": v4 + v6}},
        "links": {"la": {"port": "out0", "next_hop_mac": "02:00:00:00:00:0a"},
                  "lb": {"port": "out0", "next_hop_mac": "02:00:00:00:00:0b"}},
        "policies": [{"region": "a", "service": "any", "action": "steer", "to": "la"},
                     {"region": "unknown", "service": "any", "action": "steer", "to": "lb"}]}))
    return path


@release_only
def test_tables_past_65535_fib_groups_keep_every_prefix(tmp_path):
    """The generator's rte_fib and rte_fib6 had room for 65,535 groups
    whatever the table, and their adds went unchecked: past that, prefixes
    were left out without a word and their flows counted for the link of
    addresses no prefix holds (a 1M + 200k table: 'k0 expected 10611
    received 0'). Every frame here is region a's, for la."""
    r = null_run(tmp_path, groups_table(tmp_path / "g.json"), "--flows", "30000")
    assert r["sent"] >= 30000 and r["expected_drops"] == 0, r
    assert set(r["links"]) == {"la"} and r["links"]["la"]["expected"] == r["sent"], r
    # net_null returns nothing: a link that received nothing has no latency
    # (its p99 read 2 ns, the first bucket's bound, and its minimum 0).
    la = r["links"]["la"]
    assert la["received"] == 0 and la["loss_pct"] == 100, r
    assert [la[k] for k in ("lat_avg_ns", "lat_p99_ns_max", "lat_min_ns", "lat_max_ns")] == [None] * 4, r


def test_fibs_larger_than_the_eal_memory_say_so(tmp_path):
    """The FIBs are DPDK memory: too little of it was a bare 'cannot create
    the FIBs'. It says it is memory, how much, and what to give the EAL."""
    table = groups_table(tmp_path / "g.json")
    p = subprocess.run([gen_bin()] + eal_args("gen-mem", "0", 128) + [
        "--", "--table", str(table), "--pcap", str(tmp_path / "g.pcap")],
        capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "not enough DPDK memory" in out and "MiB" in out, out
    assert str(table) in out and "give the EAL more memory (-m or --socket-mem" in out, out
    assert not os.path.exists(tmp_path / "g.pcap")


MAGIC = 0x52464e47454e3031  # the generator's stamp: "RFNGEN01", then a sequence and a TSC

VLAN_TABLE = ("regions: {a: {prefixes: [10.1.0.0/16]}}\n"
              "links: {la: {port: out0, next_hop_mac: '02:00:00:00:00:0a'},\n"
              "        lb: {port: out0, next_hop_mac: '02:00:00:00:00:0a', vlan: 10},\n"
              "        lc: {port: out0, next_hop_mac: '02:00:00:00:00:0a', vlan: 20},\n"
              "        ld: {port: out0, next_hop_mac: '02:00:00:00:00:0d', vlan: 10},\n"
              "        le: {port: out1, next_hop_mac: '02:00:00:00:00:0a', vlan: 10}}\n"
              "policies: [{region: a, service: any, action: steer, to: la}]\n")


def run_with_frames_back(tmp_path, table, frames, flows):
    """The generator, run id 0, sending @flows flows on net_null as fast as
    it can for 0.2 s and receiving @frames from a pcap (at its first
    receive, after a first burst of 32 has gone out): (process, result)."""
    wrpcap(str(tmp_path / "back.pcap"), frames)
    p = subprocess.run([gen_bin()] + eal_args("gen-back", "0", 512) + [
        "--vdev", "net_null0", "--vdev", f"net_pcap0,rx_pcap={tmp_path / 'back.pcap'}",
        "--", "--table", str(table), "--tx", "net_null0", "--rx", "net_pcap0",
        "--rate", "0", "--duration", "0.2", "--flows", str(flows), "--run-id", "0", "--json"],
        capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p, json.loads(p.stdout.strip().splitlines()[-1])


def test_links_are_told_apart_by_mac_and_vlan(tmp_path):
    """What came back was matched to a link by destination MAC alone, the
    last link with it winning: links to one router that differ by VLAN
    (la untagged, lb VLAN 10, lc VLAN 20) all counted as one. Frames as
    regionfwd writes them, with the generator's stamp, are read from a
    pcap: each counts for the link of its MAC and tag; a tag no link has,
    two tags (regionfwd writes one at most) or a MAC no link has are not
    ours. Links no frame can tell apart (lb, le) are said at start."""
    table = tmp_path / "t.yaml"
    table.write_text(VLAN_TABLE)

    def frame(mac, *tags):
        f = Ether(dst=mac, src="02:00:00:00:00:01")
        for i, vid in enumerate(tags):
            f = f / Dot1Q(vlan=vid, type=0x8100 if i + 1 < len(tags) else 0x0800)
        if len(tags) == 2:
            f.type = 0x88a8
        seq[0] += 1
        return f / IP(src="10.1.0.1", dst="198.51.100.1") / UDP(sport=1024, dport=53) / \
            Raw(struct.pack("<QQQ", MAGIC, run << 40 | seq[0] - 1, 0))
    a, d = "02:00:00:00:00:0a", "02:00:00:00:00:0d"
    # The --run-id below, each frame its own sequence number (0..29, all sent
    # by the first receive: 32 a burst at --rate 0), every flow to la.
    run, seq = 0, [0]
    frames = ([frame(a) for _ in range(3)] + [frame(a, 10) for _ in range(5)] +
              [frame(a, 20) for _ in range(7)] + [frame(d, 10) for _ in range(11)] +
              [frame(a, 30) for _ in range(2)] + [frame(a, 10, 10)] + [frame("02:00:00:00:00:0f")])
    seq[0] = 0
    frames += [frame(a)]  # a second copy of la's first frame: a duplicate
    run = 1  # an earlier run's frame: stale, counted nowhere else
    frames += [frame(a)]
    # Not the generator's: LLDP, and a frame of its flow without the stamp.
    frames += [Ether(dst="01:80:c2:00:00:0e", src="02:00:00:00:00:01", type=0x88cc) / Raw(b"\x02\x07" + bytes(20)),
               Ether(dst=a, src="02:00:00:00:00:01") / IP(src="10.1.0.1", dst="198.51.100.1") / UDP(dport=53)]
    p, r = run_with_frames_back(tmp_path, table, frames, 30)
    # Counted by the link each came back on: la's as received (the table
    # sends flow 0 there), the others' as misrouted, and so unexpected with
    # the four on no link.
    came = {name: (s["received"], s["misrouted"]) for name, s in r["links"].items() if s["received"] or s["misrouted"]}
    assert came == {"la": (3, 0), "lb": (0, 5), "lc": (0, 7), "ld": (0, 11)}, r
    assert r["unexpected"] == 4 + 5 + 7 + 11 + 1 and r["duplicates"] == 1, r
    assert r["stale"] == 1 and r["foreign"] == 2 and r["run_id"] == 0, r
    # The frames' TSC stamp is 0: their latency is the TSC's whole count,
    # past the 2^64 / 1e9 cycles where it once wrapped (8.8 s at 2.1 GHz,
    # always less than 9 s), and the p99 bucket's bound not past the max.
    la = r["links"]["la"]
    assert la["lat_min_ns"] > 9e9 and la["lat_p99_ns_max"] <= la["lat_max_ns"], la
    assert ("links 'lb' and 'le' look the same on the wire (next hop 02:00:00:00:00:0a, VLAN 10): "
            "what comes back for either is counted for 'lb'") in p.stderr, p.stderr


LIVE_TABLE = ("regions: {a: {prefixes: [10.1.0.0/16, '2001:db8:1::/48']}, b: {prefixes: [10.2.0.0/16]}}\n"
              "services: {web: [tcp/80], dns: [udp/53], sig: [sctp/2905]}\n"
              "links: {la: {port: out0, next_hop_mac: '02:00:00:00:00:0a'},\n"
              "        lb: {port: out0, next_hop_mac: '02:00:00:00:00:0b'}}\n"
              "policies: [{region: a, service: any, action: steer, to: la},\n"
              "           {region: b, service: web, action: steer, to: lb},\n"
              "           {region: b, service: dns, action: drop}]\n"
              "default: {action: drop}\n")

# Rings of 16,384 frames, 1.6 s at 10 kpps (the PMD's default is 512, 51 ms):
# on a loaded machine a process can go unscheduled for hundreds of
# milliseconds (601 ms seen in CI, when rings of 4,096 lost 312 frames), and
# the host's ring then overflows before regionfwd or the generator reads it.
# DPDK 22.11's af_packet PMD does not report those drops (no imissed), so
# the rings must hold any stall: 32 MiB of kernel memory each.
RING = ",framecnt=16384"


def live_loop(tmp_path, gen_tx_ring, rate, fwd_table=LIVE_TABLE, gen_table=LIVE_TABLE, stderr=None):
    """gen --veth--> regionfwd --veth--> gen for 3 s at @rate frames a
    second; the generator's transmit port has @gen_tx_ring as its ring
    devargs, regionfwd runs @fwd_table, the generator @gen_table.
    Returns the generator's JSON result (its stderr appended to the list
    @stderr when given)."""
    # Under a sanitizer the same 30,000 frames go at half the rate for
    # twice as long, so the rings hold 3.3 s: a fresh check's sanitizer
    # stage (five groups of tests beside this one on two cores) once
    # stalled regionfwd or the generator about 2 s, and the 1.6 s rings
    # lost 17 % of a link (a SIGSTOP of 2 s loses 12 % at 10,000 a second).
    duration = 3
    if sanitized() and gen_tx_ring == RING:
        rate, duration = rate // 2, 6
    table = tmp_path / "t.yaml"
    table.write_text(gen_table)
    fwd_path = tmp_path / "fwd.yaml"
    fwd_path.write_text(fwd_table)
    with netns.VethLab("rfwd-gen", [("rgi0", "rgi1"), ("rgo0", "rgo1")]) as lab:
        node = tmp_path / "node.yaml"
        node.write_text(f"ports:\n  in0: {{device: 'net_af_packet0,iface=rgi0{RING}', ingress: true}}\n"
                        f"  out0: {{device: 'net_af_packet1,iface=rgo0{RING}'}}\n")
        log = tmp_path / "fwd.log"
        fwd = start_regionfwd([regionfwd_bin()] + eal_args("gen-fwd") + [
            "--", "--node", str(node), "--table", str(fwd_path)], str(log),
            lambda: "forwarding with" in log.read_text())
        try:
            # Its workers poll once it says so; a fixed sleep was too short
            # on a loaded machine (the generator's first packets were lost).
            wait_started(fwd, log)
            p = lab.run_in_ns(timeout=120, cmd=" ".join([gen_bin()] + eal_args("gen-live", "0", 512) + [
                "--vdev", "net_af_packet0,iface=rgi1" + gen_tx_ring, "--vdev", "net_af_packet1,iface=rgo1" + RING,
                "--", "--table", str(table), "--tx", "net_af_packet0", "--rx", "net_af_packet1",
                "--rate", str(rate), "--duration", str(duration), "--flows", "300", "--json"]))
        finally:
            fwd.terminate()
            fwd.wait(30)
    if stderr is not None:
        stderr.append(p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def assert_exact_receipt(r, min_sent, sanitized_loss=0.01):
    assert_receipt_within_allowance(r, min_sent, sanitized_loss)
    assert r["expected_drops"] > 0 and r["unexpected"] == 0


def sanitized():
    return os.environ.get("SANITIZE", "none") not in ("", "none")


def assert_receipt_within_allowance(r, min_sent, sanitized_loss=0.01):
    assert r["sent"] >= min_sent, r
    links = r["links"]
    assert set(links) == {"la", "lb"}
    # Exact receipt in the release build. A sanitizer build runs every
    # process several times slower on this 2-core machine, and the veth
    # AF_PACKET rings (the host's, not regionfwd's) then overflow under the
    # generator's bursts: up to 1 % may go missing there (@sanitized_loss).
    # Every link's figures and the sender's lag in full: a tuple's repr is
    # cut by pytest, and a failure once named neither.
    said = f"sent {r['sent']}, max_lag_ms {r.get('max_lag_ms')}; " + "; ".join(
        f"{n}: expected {v['expected']} received {v['received']}" for n, v in links.items())
    for name, s in links.items():
        lost = s["expected"] - s["received"]
        assert s["expected"] > 1000 and 0 <= lost <= (s["expected"] * sanitized_loss if sanitized() else 0), \
            f"{name} lost {lost}: {said}"
        assert 0 < s["lat_min_ns"] <= s["lat_avg_ns"] <= s["lat_max_ns"]


@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_live_loop_through_regionfwd(tmp_path):
    """gen --veth--> regionfwd --veth--> gen: per link, received == expected."""
    assert_exact_receipt(live_loop(tmp_path, RING, 10000), 25000)


@release_only
@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_live_loop_counts_partial_bursts_by_flow(tmp_path):
    """A transmit ring of 16 frames takes at most half of each 32-frame
    burst. The refused frames go first in the next burst, and each link's
    expected count follows the flows that went out: per link, received ==
    expected still (the count once drifted to other links' flows)."""
    # 32,000 a second: bursts of 32 (below it they are of rate / 1000).
    r = live_loop(tmp_path, ",framecnt=16", 32000)
    assert_exact_receipt(r, 10000)
    # The ring did refuse part of the bursts: the rate was 32,000 frames a
    # second for 3 s, about half went out.
    assert r["sent"] < 0.75 * 96000, r


# regionfwd's table where the generator's has a -> la, b web -> lb, b dns
# dropped: every link swapped, and b's dns forwarded.
SWAPPED_TABLE = LIVE_TABLE.replace("steer, to: la}", "steer, to: LB}").replace(
    "steer, to: lb}", "steer, to: la}").replace("to: LB}", "to: lb}").replace(
    "{region: b, service: dns, action: drop}", "{region: b, service: dns, action: steer, to: la}")


@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_live_loop_catches_every_frame_on_the_wrong_link(tmp_path):
    """A forwarder that sent every region's traffic out the other link, and
    forwarded what the table drops, passed: each link's count matched what
    the other's flows were expected to make, and frames were matched to a
    link by MAC alone. Each frame is now matched to the flow it was sent as:
    nothing counts as received, all of it as unexpected (misrouted on the
    link it came on), the dropped flows' frames included."""
    assert "to: lb}, {region: b" not in SWAPPED_TABLE and SWAPPED_TABLE.count("to: la}") == 2
    r = live_loop(tmp_path, RING, 10000, fwd_table=SWAPPED_TABLE)
    links = r["links"]
    assert r["sent"] >= 25000 and all(s["received"] == 0 for s in links.values()), r
    assert r["unexpected"] == sum(s["misrouted"] for s in links.values()), r
    # b's dns frames, which the generator's table drops, came back too, and
    # are told apart from the misrouted ones; b's sctp, dropped by both
    # tables, did not.
    assert 0 < r["forwarded_drops"] < r["expected_drops"], r
    misrouted = sum(s["expected"] for s in links.values()) + r["forwarded_drops"]
    if os.environ.get("SANITIZE", "none") in ("", "none"):
        assert r["unexpected"] == misrouted, r
    else:
        # A sanitizer build, several times slower beside the other groups
        # on 2 cores, lost up to 23 % of this loop's frames in the veth
        # AF_PACKET rings (CI, 2026-12); what came back is still all caught.
        assert 0.25 * misrouted <= r["unexpected"] <= misrouted, r
    assert r["stale"] == 0 and r["foreign"] == 0, r


# b's web steered to lb with a copy to la, b's dns dropped with a copy to lb.
MIRROR_TABLE = LIVE_TABLE.replace("{region: b, service: web, action: steer, to: lb}",
                                  "{region: b, service: web, action: steer, to: lb, mirror: la}").replace(
    "{region: b, service: dns, action: drop}", "{region: b, service: dns, action: drop, mirror: lb}")


@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_mirror_copies_are_expected_and_counted_apart(tmp_path):
    """A policy's mirror copies were not in the generator's model: each
    came back as a second copy (a duplicate, or the original after it,
    its link's frame lost) or, for a dropped flow, as a forwarded drop.
    They are expected on the mirror link now, and counted there apart."""
    assert MIRROR_TABLE.count("mirror:") == 2
    err = []
    r = live_loop(tmp_path, RING, 10000, fwd_table=MIRROR_TABLE, gen_table=MIRROR_TABLE, stderr=err)
    # The copies add a fifth to what comes back: a sanitizer build lost
    # 3 % of a link's frames in this loop (a fresh check); the counting is
    # what is tested here, exact in the release build.
    assert_exact_receipt(r, 25000, sanitized_loss=0.25)
    la, lb = r["links"]["la"], r["links"]["lb"]
    # la: a's own frames, and b web's copies; lb: b web, and b dns's copies
    assert la["mirror_expected"] == lb["expected"] > 1000 and 1000 < lb["mirror_expected"] < r["expected_drops"], r
    for s in (la, lb):
        lost = s["mirror_expected"] - s["mirrored"]
        assert 0 <= lost <= (s["mirror_expected"] * 0.25 if sanitized() else 0), r
    assert r["duplicates"] == 0 and r["forwarded_drops"] == 0, r
    assert "content rule" not in err[0], err[0]


@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_a_copy_on_another_link_first_takes_nothing_from_the_right_one(tmp_path):
    """A frame's number was marked as come by its first copy wherever it
    came: regionfwd mirrors b's web to la before it sends the frame to lb,
    so every one of them on lb counted as a duplicate and lb as all lost.
    A generator told nothing of the mirror now counts lb whole and the
    copies on la as misrouted; the copies of b's dropped dns as forwarded
    drops (so they are: a copy left)."""
    r = live_loop(tmp_path, RING, 10000, fwd_table=MIRROR_TABLE)
    # A number taken by the copy on la would lose lb every frame; a
    # sanitizer build lost 3 % of la's own in a fresh check, and 32 % in
    # another (the veth rings under seven test groups on two cores): the
    # bound under a sanitizer is half, far from the all of a link lost.
    assert_receipt_within_allowance(r, 25000, sanitized_loss=0.5)
    la, lb = r["links"]["la"], r["links"]["lb"]
    assert r["duplicates"] == 0 and la["mirror_expected"] == lb["mirror_expected"] == 0, r
    assert 0 < la["misrouted"] <= lb["expected"] and 0 < lb["misrouted"] < r["expected_drops"], r
    assert r["forwarded_drops"] == lb["misrouted"] and r["unexpected"] == la["misrouted"] + lb["misrouted"], r
    if not sanitized():
        assert la["misrouted"] == lb["expected"], r


@pytest.mark.parametrize("args,words", [
    (["--tx", "net_null0", "--rx", "net_null0"], "--rx net_null0 is the --tx port"),
    (["--tx", "net_null0,x=" + "y" * 600], "--tx takes at most 511 characters (given 612)"),
    (["--tx", "net_null0", "--rx", "net_null1,x=" + "y" * 600], "--rx takes at most 511 characters"),
])
def test_bad_ports_are_refused_before_the_table_is_built(tmp_path, args, words):
    """--rx given the --tx port failed in the port setup, after the table and
    the flows were built (minutes, at a million prefixes), with exit 1;
    devargs longer than the node's 511 characters were cut and probed so."""
    p = subprocess.run([gen_bin()] + eal_args("gen-ports", "0", 512) + ["--", "--table", DEMO, *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and words in p.stdout + p.stderr, p.stdout + p.stderr
    assert "content rule" not in p.stderr  # said once the table is loaded: it was not


@release_only
@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_a_send_port_that_is_down_is_said(tmp_path):
    """A send port whose link was down (here: no carrier) took a ring's
    worth of frames and called them sent, every link then 100 % lost,
    nothing said about the generator's own port: a warning now, naming it,
    after the --link-wait a NIC may take to bring its link up (9 s by
    default; half a second here)."""
    with netns.VethLab("rfwd-gdn", [("rgd0", "rgd1")]) as lab:
        # rgd1 up, its peer down: no carrier (libpcap refuses an interface
        # that is down at its open; the af_packet PMD takes it either way).
        subprocess.run(["ip", "link", "set", "rgd0", "down"], check=True)
        lab.run_in_ns("ip link set lo up")
        # net_pcap names both directions' interfaces: the send side's is
        # tx_iface (the first "iface=" in the devargs was rx_iface's, up).
        for vdev in ("net_af_packet0,iface=rgd1", "net_pcap0,rx_iface=lo,tx_iface=rgd1"):
            name = vdev.split(",")[0]
            p = subprocess.run(netns.in_ns("rfwd-gdn") + [gen_bin()] + eal_args("gen-down", "0", 512) + [
                "--vdev", vdev, "--", "--table", DEMO, "--tx", name,
                "--rate", "1000", "--duration", "0.2", "--link-wait", "0.5", "--json"],
                capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, p.stdout + p.stderr
            assert f"warning: the send port (--tx {name}) is down" in p.stderr, (vdev, p.stderr)


SAME_WIRE_TABLE = ("regions: {a: {prefixes: [10.1.0.0/16]}, b: {prefixes: [10.2.0.0/16]}}\n"
                   "links: {la: {port: out0, next_hop_mac: '02:00:00:00:00:0a'},\n"
                   "        lb: {port: out1, next_hop_mac: '02:00:00:00:00:0a'}}\n"
                   "policies: [{region: a, service: any, action: steer, to: la},\n"
                   "           {region: b, service: any, action: steer, to: lb}]\n")


@release_only
def test_links_alike_on_the_wire_count_for_the_first(tmp_path):
    """Two links with one next-hop MAC and tag cannot be told apart by what
    comes back: the generator says so and counts both for the first. Frames
    of lb's flows, forwarded right, were then called misrouted. The return
    traffic is the generator's own --pcap (run id 0 unless given: the same
    table gives the same file) as a forwarder would send it back."""
    table = tmp_path / "t.yaml"
    table.write_text(SAME_WIRE_TABLE)
    out = tmp_path / "g.pcap"
    p = subprocess.run([gen_bin()] + eal_args("gen-same", "0", 512) + [
        "--", "--table", str(table), "--pcap", str(out), "--flows", "12"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "(run id 0)" in p.stdout, p.stdout + p.stderr
    back = [Ether(dst="02:00:00:00:00:0a", src="02:00:00:00:00:01") / f[Ether].payload for f in rdpcap(str(out))]
    assert {f[IP].src.split(".")[1] for f in back} == {"1", "2"}  # flows of both links
    p, r = run_with_frames_back(tmp_path, table, back, 12)
    la = r["links"]["la"]
    assert la["received"] == 12 and la["misrouted"] == 0 and r["unexpected"] == 0, r
    assert "links 'la' and 'lb' look the same on the wire" in p.stderr, p.stderr


def test_low_rates_send_what_they_say(tmp_path):
    """Bursts were of 32 frames at any rate: --rate 1 --duration 2 sent 32.
    The run now sends rate x duration frames, in bursts of rate / 1000. A
    run of a millisecond whose window closed before its first burst (its
    clock started before the setup's last steps) sent none."""
    for rate, duration, want in (("1", "2", 2), ("5", "1", 5), ("100", "0.5", 50), ("1000", "0.001", 1)):
        r = null_run(tmp_path, DEMO, rate=rate, duration=duration)
        assert r["sent"] == want and r["interrupted"] is False, (rate, duration, r)


def start_null_run(tmp_path, prefix, rate, duration):
    """regionfwd-gen on net_null with --json, started and sending: (the
    process, its stderr's path). Its start under ASan on a loaded machine
    took over 3 s, and a signal before its handlers are set kills it with no
    result; the run says when it begins."""
    err_path = tmp_path / "err"
    p = subprocess.Popen([gen_bin()] + eal_args(prefix, "0", 1024) + [
        "--vdev", "net_null0", "--", "--table", DEMO, "--tx", "net_null0",
        "--rate", rate, "--duration", duration, "--json"],
        stdout=subprocess.PIPE, stderr=open(err_path, "w"), text=True)
    deadline = time.time() + 120
    while "sending for" not in err_path.read_text() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    return p, err_path


def test_an_interrupted_run_says_so(tmp_path):
    """A SIGINT ended the run early with exit 0 and a result that looked
    whole: now "interrupted": true and the shell's status for the signal."""
    p, err_path = start_null_run(tmp_path, "gen-int", "10000", "60")
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    err = err_path.read_text()
    assert "regionfwd-gen: run " in err and out.strip(), (p.returncode, out, err)
    r = json.loads(out.strip().splitlines()[-1])
    assert p.returncode == 130 and r["interrupted"] is True and 0 < r["sent"] < 600000, (p.returncode, r, err)


def test_a_stalled_generator_catches_up_and_says_how_far_behind(tmp_path):
    """A generator not scheduled for a while (here SIGSTOP for 0.4 s) sends
    the bursts due meanwhile back to back: the run is still rate x duration
    frames. How far it fell behind is reported (max_lag_ms, and a line in
    the text), so a no-drop search can refuse a trial whose sender stalled;
    a cap on the catching up sent a third of the frames in a loaded run."""
    p, _ = start_null_run(tmp_path, "gen-lag", "2000", "3")
    time.sleep(0.3)
    p.send_signal(signal.SIGSTOP)
    time.sleep(0.4)
    p.send_signal(signal.SIGCONT)
    out, _ = p.communicate(timeout=60)
    r = json.loads(out.strip().splitlines()[-1])
    assert p.returncode == 0 and r["sent"] == 6000, (p.returncode, r)
    assert r["max_lag_ms"] >= 350, r


@pytest.mark.parametrize("args,words", [
    (["--only", "z"], "--only 'z': 'z': sections are a..h"),
    (["--only", "a,"], "--only 'a,': '': sections are a..h"),
    (["--sizes", "10K"], "--sizes '10K': '10K': each of 10k, 100k, 1M once"),
    (["--sizes", "10k,"], "--sizes '10k,': '':"),
    (["--sizes", "10k,10k"], "a size twice"),
    (["--sizes", "1M+200k"], "'1M+200k':"),
    (["--quick", "--pairs", "3"], "--quick sets --pairs itself"),
    (["--quick", "--pair", "3"], "unrecognized arguments: --pair 3"),
    (["--pairs", "0"], "--pairs and --rs-runs take 1 or more"),
    (["--rs-runs", "0"], "--pairs and --rs-runs take 1 or more"),
])
def test_bench_run_refuses_what_it_cannot_run(args, words):
    """bench/run --only z ran nothing and printed a table with exit 0, an
    unknown size was dropped unsaid, --quick overrode --pairs (or --pair)
    unsaid, --rs-runs 0 failed after building the 1M table: each is a usage
    error now, before anything is built or run (a section that fails or is
    skipped makes the run exit 1, docs/benchmarks.md)."""
    p = subprocess.run([sys.executable, os.path.join(HERE, "..", "..", "bench", "run"), *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and words in p.stderr and "building" not in p.stderr, p.stderr
