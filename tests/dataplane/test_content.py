"""Content rules in the fast path (docs/content-rules.md): generated TLS,
HTTP, DNS and raw-payload traffic through regionfwd on net_pcap, every
packet's fate and every rule's counters compared with an independent
reference (tests/lib/refcontent.py, Python `re`); TCP flow verdicts; explain
with an SNI, a Host, a qname or a payload; hostile content_db pushes;
generation swaps while content traffic flows."""
import collections
import os
import random
import re
import struct
import subprocess
import sys
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from ctlclient import explain_request  # noqa: E402
from dprun import regionfwd_bin, run_pcap  # noqa: E402
from refcontent import RefContent, client_hello, dns_query, http_request  # noqa: E402

from scapy.all import IP, SCTP, TCP, UDP, Ether, IPv6, Raw, wrpcap  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from test_control import Fwd  # noqa: E402

TABLE = """
version: 1
regions:
  india:  {prefixes: [10.1.0.0/16, "2001:db8:1::/48"]}
  brazil: {prefixes: [10.2.0.0/16]}
services:
  https: [tcp/443]
  web:   [tcp/80]
  dns:   [udp/53]
  sync:  [tcp/9000]
  bulk:  [udp/7000]
links:
  local:    {port: out0, next_hop_mac: "02:00:00:00:00:01"}
  resolver: {port: out0, next_hop_mac: "02:00:00:00:00:03"}
  ids:      {port: out1, next_hop_mac: "02:00:00:00:00:04"}
default: {action: steer, to: local}
content_rules:
  - {name: sni-drop, field: tls_sni, pattern: '(^|\\.)telemetry\\.example\\.com$', caseless: true, services: [https], action: drop}
  - {name: sni-mirror, field: tls_sni, pattern: '^api[0-9]+\\.corp\\.example$', services: [https], regions: [india], action: mirror, to: ids}
  - {name: sni-count, field: tls_sni, pattern: 'example', services: [https], action: count}
  - {name: host-count, field: http_host, pattern: 'shop\\.example\\.(com|in)$', services: [web], action: count}
  - {name: host-drop, field: http_host, pattern: evil.example, literal: true, services: [web], action: drop}
  - {name: dns-steer, field: dns_qname, pattern: '\\.in\\.example\\.com$', services: [dns], action: steer, to: resolver}
  - {name: dns-count, field: dns_qname, pattern: example, literal: true, services: [dns], action: count}
  - {name: sig-drop, field: payload, pattern: '\\x90{8}\\xcc', services: [sync], action: drop}
  - {name: sql-mirror, field: payload, pattern: 'select\\s.*\\sfrom', caseless: true, services: [sync, web], regions: [brazil], action: mirror, to: ids}
"""

MAC_LINK = {"02:00:00:00:00:01": "local", "02:00:00:00:00:03": "resolver", "02:00:00:00:00:04": "ids"}
SRC_MAC, DST_MAC = "02:99:00:00:00:01", "02:99:00:00:00:02"
REGION_SRCS = {"india": ["10.1.{}.{}", "2001:db8:1::{:x}:{:x}"], "brazil": ["10.2.{}.{}"],
               "unknown": ["192.0.2.{}"]}
SNIS = ["telemetry.example.com", "x.telemetry.example.com", "TELEMETRY.Example.com",
        "nottelemetry.example.com", "api12.corp.example", "api.corp.example", "www.example.org",
        "plain.net"]
HOSTS = ["shop.example.com", "shop.example.in:8080", "evil.example", "www.evil.example.net",
         "benign.org", "SHOP.EXAMPLE.COM"]
QNAMES = ["a.in.example.com", "in.example.com", "example.org", "foo.bar", "deep.sub.in.example.com"]
SERVICE_PORT = {"https": ("tcp", 443), "web": ("tcp", 80), "dns": ("udp", 53), "sync": ("tcp", 9000),
                "bulk": ("udp", 7000), "other": ("tcp", 22)}


def tag(i):
    return b"RFWD%08d" % i


def src_addr(rng, region):
    f = rng.choice(REGION_SRCS[region])
    if ":" in f:
        return f.format(rng.randrange(1, 65535), rng.randrange(1, 65535))
    return f.format(*[rng.randrange(1, 255) for _ in range(f.count("{}"))])


def gen_traffic(seed, nflows):
    """Flows of 1-3 packets; returns [(scapy packet, meta)] in send order."""
    rng = random.Random(seed)
    out = []
    for fl in range(nflows):
        region = rng.choice(["india", "india", "brazil", "unknown"])
        service = rng.choice(["https", "https", "web", "web", "dns", "sync", "sync", "bulk", "other"])
        proto, dport = SERVICE_PORT[service]
        src = src_addr(rng, region)
        sport = 10000 + fl
        names = {}
        if service == "https":
            sni = rng.choice(SNIS)
            first = client_hello(sni, pad_ext=rng.random() < 0.5)
            names["tls_sni"] = sni.lower()
        elif service == "web":
            host = rng.choice(HOSTS)
            first = http_request(host, "/q?" + rng.choice(["x=1", "SELECT id FROM t", "a"]))
            names["http_host"] = host.split(":")[0].lower()
        elif service == "dns":
            qn = rng.choice(QNAMES)
            first = dns_query(qn, fl & 0xffff)
            names["dns_qname"] = qn.lower()
        else:
            body = bytes(rng.randrange(0, 256) for _ in range(rng.randrange(1, 60)))
            pick = rng.random()
            if pick < 0.2:
                body += b"\x90" * 8 + b"\xcc"
            elif pick < 0.4:
                body += b"Select name\nFROM users"
            first = body
        npk = 1 if proto == "udp" else rng.choice([1, 2, 3])
        for k in range(npk):
            i = len(out)
            payload = (first if k == 0 else bytes(rng.randrange(0, 256) for _ in range(20))) + tag(i)
            if k and payload[0] == 0x16:  # a later segment that would start a TLS record: no name in it
                payload = b"\x17" + payload[1:]
            ip = IPv6(src=src, dst="2001:db8:ff::1") if ":" in src else IP(src=src, dst="198.51.100.1")
            l4 = TCP(sport=sport, dport=dport, flags="PA", seq=1000 + k * 100) if proto == "tcp" else \
                UDP(sport=sport, dport=dport)
            pkt = Ether(src=SRC_MAC, dst=DST_MAC) / ip / l4 / Raw(payload)
            meta = dict(region=region, service=service, proto=proto, payload=payload,
                        flow=(src, sport, dport, proto), names=names if k == 0 else {})
            out.append((pkt, meta))
    return out


def expected(rules, traffic, names_dir=None):
    ref = RefContent(rules, names_dir)
    exp = []
    for _, m in traffic:
        r = ref.decide(m["region"], m["service"], m["proto"], m["flow"], m["payload"], m["names"])
        link, mirror, dropped = ("local", None, False)
        if r is not None:
            if r.action == "drop":
                link, dropped = None, True
            elif r.action == "mirror":
                mirror = r.to
            elif r.action == "steer":
                link = r.to
        exp.append((link, mirror, dropped))
    scanned = sum(1 for _, m in traffic if ref.scoped(m["region"], m["service"]))
    return exp, ref, scanned


def tag_of(pkt):
    m = re.search(rb"RFWD(\d{8})", bytes(pkt))
    return int(m.group(1)) if m else None


CHECK_HEAD = """services: {https: [tcp/443], dns: [udp/53]}
links: {l1: {port: p0, next_hop_mac: "02:00:00:00:00:01"}}
content_rules:
"""


def check_table(tmp_path, rules):
    """regionfwd --check-table on a document of @rules (lines of
    content_rules, the first on line 4): (exit status, stdout, stderr)."""
    p = tmp_path / "t.yaml"
    p.write_text(CHECK_HEAD + "".join(f"  - {r}\n" for r in rules))
    r = subprocess.run([regionfwd_bin(), "--check-table", str(p)], capture_output=True, text=True,
                       timeout=120)
    return r.returncode, r.stdout, r.stderr


def test_check_table_names_file_refusals_name_the_document(tmp_path):
    """Every refusal of a names file is placed at the document's line, the
    names file's path (as written) and its line after: a missing file said
    only "DIR/lists/nope.txt: content_rules[0].names_file: cannot open"."""
    doc = tmp_path / "t.yaml"
    rc, out, err = check_table(tmp_path, ["{name: n, field: dns_qname, names_file: lists/nope.txt, "
                                          "services: [dns], action: count}"])
    assert rc == 1 and err == (f"{doc}:4: content_rules[0].names_file: 'lists/nope.txt': cannot open: "
                               "No such file or directory\n"), err
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "bad.txt").write_text("ok.example\nnot a name\n")
    (tmp_path / "lists" / "bad.txt").chmod(0o644)
    rc, out, err = check_table(tmp_path, ["{name: n, field: dns_qname, names_file: lists/bad.txt, "
                                          "services: [dns], action: count}"])
    assert rc == 1 and err == (f"{doc}:4: content_rules[0].names_file: 'lists/bad.txt' line 2 is not a name "
                               "(10 bytes, not shown): a name holds letters, digits, '-', '_' and dots "
                               "only\n"), err
    os.mkfifo(tmp_path / "lists" / "fifo")
    rc, out, err = check_table(tmp_path, ["{name: n, field: dns_qname, names_file: lists/fifo, "
                                          "services: [dns], action: count}"])
    assert rc == 1 and err == (f"{doc}:4: content_rules[0].names_file: names_file 'lists/fifo' refused: "
                               "a FIFO, not a regular file\n"), err


def test_check_table_counts_content_rules(tmp_path):
    """--check-table's summary counts the content rules with the rest (it
    left them out: a table of rules only read as if it had none)."""
    doc = tmp_path / "t.yaml"
    rc, out, err = check_table(tmp_path, ["{name: a, field: tls_sni, pattern: 'x\\.example', services: [https], "
                                          "action: drop}",
                                          "{name: b, field: dns_qname, names: [y.example], services: [dns], "
                                          "action: count}"])
    assert rc == 0 and out == (f"{doc}: valid: 0 regions, 2 services, 1 links, 0 link groups, 0 policies, "
                               "0 IPv4 and 0 IPv6 prefixes, 0 residency rules, 2 content rules, 0 filter rules\n"), (out, err)


def test_content_rules_match_the_reference(tmp_path):
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    rules = yaml.safe_load(TABLE)["content_rules"]
    traffic = gen_traffic(7, 700)
    exp, ref, scanned = expected(rules, traffic)
    run = run_pcap(str(tmp_path), str(table), [p for p, _ in traffic], ["out0", "out1"], "content-ref")
    assert run.rc == 0, run.stderr
    fwd = {}
    for pkt in run.outputs["out0"]:
        fwd[tag_of(pkt)] = MAC_LINK[pkt[Ether].dst]
    mirrored = {}
    for pkt in run.outputs["out1"]:
        mirrored[tag_of(pkt)] = MAC_LINK[pkt[Ether].dst]
    problems = []
    for i, (link, mirror, dropped) in enumerate(exp):
        got = (fwd.get(i), mirrored.get(i), i not in fwd)
        if got != (link, mirror, dropped):
            m = traffic[i][1]
            problems.append(f"packet {i} {m['region']}/{m['service']} names={m['names']} "
                            f"payload={m['payload'][:60]!r}: expected {(link, mirror, dropped)}, got {got}")
    assert not problems, "\n".join(problems[:10])
    st = run.stats
    for name in ref.matches:
        c = st["content_rules"][name]
        assert (c["matches"], c["flow_packets"]) == (ref.matches[name], ref.flow_packets[name]), name
    ndrop = sum(1 for e in exp if e[2])
    assert st["drops"]["content_drop"] == ndrop and ndrop > 20
    assert st["packets"]["rx"] == len(traffic) == st["packets"]["tx"] + st["packets"]["dropped"]
    flow_hits = sum(ref.flow_packets.values())
    assert flow_hits > 20
    assert st["events"]["content_flow_followed"] == flow_hits
    assert st["events"]["content_scanned"] == scanned - ref.unscanned
    assert 0 < ref.unscanned < flow_hits  # both kinds of decided flows are in this traffic
    assert st["events"]["mirror_tx"] == len(mirrored) > 10
    assert st["events"]["content_scan_error"] == 0 and st["events"]["content_bad_tcp"] == 0
    assert st["events"]["content_unreadable"] == 0  # every name here is whole
    # every rule did something in this traffic, so none of the checks above is vacuous
    assert all(ref.matches[n] > 0 for n in ref.matches), ref.matches


def test_a_decided_flow_still_meets_drop_rules(tmp_path):
    """A TCP flow decided by a count or mirror rule keeps that verdict, but
    its later packets are still scanned for a drop: a second request on a
    keep-alive connection, or a signature after a harmless first segment,
    was forwarded unscanned (a hostile probe). A drop then decides the rest
    of the flow; a flow decided as dropped is followed unscanned."""
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    flows = [  # (src, service, [payload per packet]), expected fate per packet
        ("10.1.0.9", "web", [http_request("shop.example.com"), http_request("evil.example"), b"after"],
         [("local", None), None, None]),
        ("10.2.0.9", "sync", [b"SELECT a FROM b", b"\x90" * 8 + b"\xcc", b"after"],
         [("local", "ids"), None, None]),
        ("10.2.0.10", "sync", [b"SELECT a FROM b", b"hello", b"\x90" * 8 + b"\xcc"],
         [("local", "ids"), ("local", "ids"), None]),
        ("10.1.0.11", "web", [http_request("evil.example"), http_request("shop.example.com")],
         [None, None]),
    ]
    pkts, want = [], []
    for f, (src, svc, bodies, fates) in enumerate(flows):
        proto, dport = SERVICE_PORT[svc]
        for k, body in enumerate(bodies):
            i = len(pkts)
            pkts.append(Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=src, dst="198.51.100.1") /
                        TCP(sport=42000 + f, dport=dport, flags="PA", seq=1000 + 100 * k) / Raw(body + tag(i)))
            want.append(fates[k])
    run = run_pcap(str(tmp_path), str(table), pkts, ["out0", "out1"], "content-keepalive")
    assert run.rc == 0, run.stderr
    fwd = {tag_of(p): MAC_LINK[p[Ether].dst] for p in run.outputs["out0"]}
    mir = {tag_of(p): MAC_LINK[p[Ether].dst] for p in run.outputs["out1"]}
    got = [(fwd[i], mir.get(i)) if i in fwd else None for i in range(len(pkts))]
    assert got == want
    st = run.stats
    assert st["drops"]["content_drop"] == sum(1 for w in want if w is None)
    c = st["content_rules"]
    assert c["host-drop"]["matches"] == 2 and c["sig-drop"]["matches"] == 2, c
    # followed: the count's and mirrors' later packets, and the drops' after them
    assert c["host-count"]["flow_packets"] == 0 and c["sql-mirror"]["flow_packets"] == 1, c
    assert c["host-drop"]["flow_packets"] == 2 and c["sig-drop"]["flow_packets"] == 1, c
    # scanned: all but the three that followed a drop unscanned
    assert st["events"]["content_scanned"] == len(pkts) - 3, st["events"]
    # decided: each flow once, a flow decided again as dropped included
    assert st["events"]["content_flow_decided"] == len(flows), st["events"]


def test_unscoped_traffic_is_not_scanned(tmp_path):
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    pkts = [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.1.0.9", dst="198.51.100.1") /
            UDP(sport=1000 + i, dport=7000) / Raw(b"\x90" * 8 + b"\xcc telemetry.example.com") for i in range(300)]
    run = run_pcap(str(tmp_path), str(table), pkts, ["out0", "out1"], "content-unscoped")
    assert run.rc == 0, run.stderr
    assert run.stats["events"]["content_scanned"] == 0
    assert len(run.outputs["out0"]) == 300
    assert all(c["matches"] == 0 for c in run.stats["content_rules"].values())


def test_flow_table_size_and_evictions(tmp_path):
    """64 flow entries: 400 dropped flows evict each other, and a flow whose
    verdict was evicted is scanned again (its data packet then passes,
    because only the ClientHello carries the SNI) -- counted, never wrong."""
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    pkts = []
    for f in range(400):
        base = Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.2.0.9", dst="198.51.100.1")
        pkts.append(base / TCP(sport=20000 + f, dport=443, flags="PA") / Raw(client_hello("telemetry.example.com")))
    for f in range(400):
        base = Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.2.0.9", dst="198.51.100.1")
        pkts.append(base / TCP(sport=20000 + f, dport=443, flags="PA") / Raw(b"data" + tag(f)))
    run = run_pcap(str(tmp_path), str(table), pkts, ["out0", "out1"], "content-evict",
                   extra_node="content_flow_entries: 64\n")
    assert run.rc == 0, run.stderr
    ev = run.stats["events"]
    assert ev["content_flow_decided"] == 400
    assert ev["content_flow_evicted"] >= 400 - 64
    followed = ev["content_flow_followed"]
    assert 0 < followed <= 64
    assert run.stats["drops"]["content_drop"] == 400 + followed
    assert len(run.outputs["out0"]) == 400 - followed


def test_explain_names_the_group_a_content_rule_steers_to(tmp_path):
    """A content rule that steers to a link group: explain's `group` is that
    group (it was the policy's, null here), with the members it leaves out;
    one that steers to a link leaves `group` null."""
    table = tmp_path / "t.yaml"
    table.write_text("""
version: 1
regions: {india: {prefixes: [10.1.0.0/16]}}
services: {dns: [udp/53], web: [tcp/80], bulk: [udp/7000]}
links:
  local: {port: out0, next_hop_mac: "02:00:00:00:00:01"}
  r1:    {port: out0, next_hop_mac: "02:00:00:00:00:02"}
  r2:    {port: out1, next_hop_mac: "02:00:00:00:00:03"}
link_groups: {rg: {members: {r1: 1, r2: 1}}}
policies:
  - {region: india, service: web, action: steer, to: rg}
  - {region: india, service: bulk, action: steer, to: rg}
default: {action: steer, to: local}
content_rules:
  - {name: dns-steer, field: dns_qname, pattern: example, literal: true, services: [dns], action: steer, to: rg}
  - {name: bulk-steer, field: payload, pattern: hello, literal: true, services: [bulk], action: steer, to: local}
""")
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.9.0.1", dst="192.0.2.1") / UDP(dport=9)])
    f = Fwd(tmp_path, "content-explain-group", pcap, str(table))
    try:
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="udp", dport=53,
                       dns_qname="a.example")
        assert r["ok"] and r["content"]["verdict"] == "dns-steer", r
        assert r["group"] == "rg" and r["link"] in ("r1", "r2") and r["group_ports_down"] == [], r
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="udp", dport=7000,
                       payload="hello")
        assert r["content"]["verdict"] == "bulk-steer" and r["link"] == "local", r
        assert r["group"] is None and r["group_ports_down"] is None, r
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=80)
        assert r["group"] == "rg" and r["link"] in ("r1", "r2"), r
    finally:
        f.stop()


def test_explain_with_content(tmp_path):
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.9.0.1", dst="192.0.2.1") / UDP(dport=9)])
    f = Fwd(tmp_path, "content-explain", pcap, str(table))
    try:
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                       tls_sni="Metrics.TELEMETRY.example.com")
        assert r["ok"], r
        c = r["content"]
        assert c["scoped_fields"] == ["tls_sni"] and c["verdict"] == "sni-drop"
        assert c["extracted"]["tls_sni"] == "metrics.telemetry.example.com"
        assert {m["rule"] for m in c["matches"]} == {"sni-drop", "sni-count"}
        assert r["drop_reason"] == "content_drop" and r["link"] is None
        # A whole ClientHello as the payload: the extractor finds the name.
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                       payload_hex=client_hello("api7.corp.example").hex())
        c = r["content"]
        assert c["extracted"]["tls_sni"] == "api7.corp.example" and c["verdict"] == "sni-mirror"
        assert r["mirror"] == "ids" and r["link"] == "local"
        # Same SNI from Brazil: sni-mirror is scoped to India.
        r = f.ctl.call("explain", src="10.2.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                       tls_sni="api7.corp.example")
        assert r["content"]["verdict"] == "sni-count" and r["mirror"] is None
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="udp", dport=53,
                       payload_hex=dns_query("x.in.example.com").hex())
        assert r["content"]["verdict"] == "dns-steer" and r["link"] == "resolver"
        r = f.ctl.call("explain", src="10.2.0.5", dst="198.51.100.1", proto="tcp", dport=9000,
                       payload="xx SELECT a FROM b")
        assert r["content"]["verdict"] == "sql-mirror" and r["mirror"] == "ids"
        assert c["unreadable"] == {}
        # A ClientHello cut by the segment's end: the name is there, unread
        # (a split hello evades name rules; explain and a counter say so).
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                       payload_hex=client_hello("api7.corp.example")[:60].hex())
        c = r["content"]
        assert c["extracted"]["tls_sni"] is None and c["unreadable"] == {"tls_sni": "truncated"}
        assert c["verdict"] is None and r["mirror"] is None and r["link"] == "local"
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=80,
                       payload="GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n")
        assert r["content"]["unreadable"] == {"http_host": "malformed"}
        r = f.ctl.call("explain", src="10.2.0.5", dst="198.51.100.1", proto="udp", dport=7000,
                       payload="SELECT a FROM b")
        assert r["content"] is None  # bulk is in no rule's scope
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=80,
                       payload=http_request("benign.org").decode())
        assert r["content"]["verdict"] is None and r["content"]["extracted"]["http_host"] == "benign.org"
        # A name given is read as the extractor reads it from a packet:
        # one trailing dot dropped (explain kept it, and the anchored
        # sni-drop missed what the fast path drops), a Host's port too.
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                       tls_sni="Metrics.TELEMETRY.example.com.")
        assert r["content"]["extracted"]["tls_sni"] == "metrics.telemetry.example.com", r
        assert r["content"]["verdict"] == "sni-drop" and r["drop_reason"] == "content_drop", r
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=80,
                       http_host="shop.example.in:8080")
        assert r["content"]["extracted"]["http_host"] == "shop.example.in", r
        assert [m["rule"] for m in r["content"]["matches"]] == ["host-count"], r
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="udp", dport=53,
                       dns_qname="x.in.example.com.")
        assert r["content"]["verdict"] == "dns-steer" and r["link"] == "resolver", r
        # The API's argument checks (payload_hex, names) are regiond's now:
        # tests/unit/test_api.c. regionfwd checks the typed request's bounds,
        # and reads a name as regiond does (another client may not).
        for bad in ({"payload": "x" * 9217}, {"tls_sni": "a" * 300}, {"tls_sni": "a b"},
                    {"tls_sni": "a.."}):
            m = explain_request("10.1.0.5", "198.51.100.1", "tcp", dport=443)
            if "payload" in bad:
                m.has_payload, m.payload = True, bad["payload"].encode()
            else:
                m.given[1] = bad["tls_sni"]
            r = f.ctl.send("explain", m)
            assert not r["ok"] and r["error"]["code"] == "bad_request", (bad, r)
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert "compiled here" in log


SCTP_TABLE = """
regions: {india: {prefixes: [10.1.0.0/16]}}
services:
  sc:  [sctp/5050]
  dns: [udp/53, sctp/53]
links: {local: {port: out0, next_hop_mac: "02:00:00:00:00:01"}}
default: {action: steer, to: local}
content_rules:
  - {name: sc-hello, field: payload, pattern: '^HELLO', services: [sc], action: drop}
  - {name: dq, field: dns_qname, names: [evil.example], services: [dns], action: drop}
"""


def test_sctp_payload_and_names_as_explain_says(tmp_path):
    """SCTP's payload starts after its 12-byte common header, as TCP's and
    UDP's after theirs, and a DNS name is read over UDP (and TCP) alone.
    The fast path scanned SCTP from its common header and read DNS names
    out of any protocol, while explain scanned what it was given after the
    header: `explain ... sctp 1 5050 --payload HELLO` said content_drop for
    a packet the fast path forwarded (a probe)."""
    table = tmp_path / "t.yaml"
    table.write_text(SCTP_TABLE)
    s, d = "10.1.0.5", "198.51.100.1"
    pkts = [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=s, dst=d) / SCTP(sport=1, dport=5050) / Raw(b"HELLO" + tag(0)),
            Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=s, dst=d) / SCTP(sport=1, dport=5050) / Raw(b"xHELLO" + tag(1)),
            Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=s, dst=d) / SCTP(sport=1, dport=53) /
            Raw(dns_query("evil.example") + tag(2)),
            Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=s, dst=d) / UDP(sport=1, dport=53) /
            Raw(dns_query("evil.example") + tag(3))]
    run = run_pcap(str(tmp_path), str(table), pkts, ["out0"], "content-sctp")
    assert run.rc == 0, run.stderr
    assert sorted(tag_of(p) for p in run.outputs["out0"]) == [1, 2], run.stats
    assert run.stats["drops"]["content_drop"] == 2, run.stats
    f = Fwd(tmp_path, "content-sctp-explain", None, str(table))
    try:
        r = f.ctl.call("explain", src=s, dst=d, proto="sctp", sport=1, dport=5050, payload="HELLO")
        assert r["content"]["verdict"] == "sc-hello" and r["drop_reason"] == "content_drop", r
        r = f.ctl.call("explain", src=s, dst=d, proto="sctp", sport=1, dport=53,
                       payload_hex=dns_query("evil.example").hex())
        assert r["content"]["verdict"] is None and r["content"]["extracted"]["dns_qname"] is None, r
        # A name given for a protocol that never carries it is refused.
        r = f.ctl.send("explain", explain_request(s, d, "sctp", dport=53, dns_qname="evil.example"))
        assert not r["ok"] and r["error"]["code"] == "bad_request", r
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log


def content_hash(rules):
    """fwd_content_hash() (common/fwd_hs.c): 64-bit FNV-1a over each rule's
    field, literal and caseless flags and pattern, in order."""
    fields = ["payload", "tls_sni", "http_host", "dns_qname"]
    h = 1469598103934665603
    for r in rules:
        data = bytes([fields.index(r["field"]), int(r.get("literal", False)), int(r.get("caseless", False)),
                      0xFF]) + r["pattern"].encode() + b"\0"
        for byte in data:
            h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def test_hostile_content_db_changes_nothing(tmp_path):
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.9.0.1", dst="192.0.2.1") / UDP(dport=9)])
    f = Fwd(tmp_path, "content-hostile", pcap, str(table))
    other = TABLE.replace("version: 1", "version: 1\ndescription: other")
    try:
        gen = f.ctl.call("status")["generation"]["id"]
        garbage = os.urandom(3000)
        right = content_hash(yaml.safe_load(other)["content_rules"])
        every = {fld: garbage for fld in ("payload", "tls_sni", "http_host", "dns_qname")}
        cases = [
            # well-formed, but compiled from other rules (the hash says so)
            ({"rules_hash": 0x0011223344556677, "dbs": every}, "content_db.rules_hash"),
            # this table's hash, but a field with rules has no database
            ({"rules_hash": right, "dbs": {"payload": garbage}}, "content_db"),
            # this table's hash, databases that do not deserialize
            ({"rules_hash": right, "dbs": every}, "content_db"),
            # more databases than there are content fields
            ({"rules_hash": right, "dbs": every, "fields": ["payload"] * 5}, "content_db"),
        ]
        for db, path in cases:
            r = f.ctl.call("push", document=other, content_db=db)
            assert not r["ok"] and r["error"]["path"] == path, (db.get("rules_hash"), r)
            assert f.ctl.call("status")["generation"]["id"] == gen
        # A table whose patterns do not compile is refused by regionfwd itself.
        bad = TABLE.replace("pattern: example, literal: true", "pattern: 'ex(ample'")
        r = f.ctl.call("push", document=bad)
        assert not r["ok"] and "Missing close parenthesis" in r["error"]["reason"], r
        assert f.ctl.call("status")["generation"]["id"] == gen
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log


def hs_database(pattern, rule_id):
    """A serialized block-mode Hyperscan database of @pattern reporting
    @rule_id, made with libhs itself, as a client of regionfwd's control
    socket other than regiond could make one."""
    import ctypes

    hs = ctypes.CDLL("libhs.so.5")
    db, err = ctypes.c_void_p(), ctypes.c_void_p()
    exprs = (ctypes.c_char_p * 1)(pattern.encode())
    flags = (ctypes.c_uint * 1)(2 | 8)  # HS_FLAG_DOTALL | HS_FLAG_SINGLEMATCH
    ids = (ctypes.c_uint * 1)(rule_id)
    assert hs.hs_compile_multi(exprs, flags, ids, 1, 1, None, ctypes.byref(db), ctypes.byref(err)) == 0
    out, n = ctypes.c_void_p(), ctypes.c_size_t()
    assert hs.hs_serialize_database(db, ctypes.byref(out), ctypes.byref(n)) == 0
    data = ctypes.string_at(out, n.value)
    ctypes.CDLL(None).free(out)
    hs.hs_free_database(db)
    return data


def test_pushed_database_with_foreign_rule_ids_cannot_crash_the_worker(tmp_path):
    """A push's databases are checked against the table's rules by their
    hash, but the ids a database reports indexed the rules unchecked: a
    hostile probe pushed one reporting id 100000 and the first matching
    packet crashed the worker. An id that is not one of the field's
    pattern rules now fails the scan, counted (content_scan_error); the
    packet keeps its policy decision and regionfwd keeps forwarding."""
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.2.0.1", dst="192.0.2.1") /
                  UDP(sport=4000 + i, dport=7000) / Raw(b"xxEVILxx") for i in range(64)])
    f = Fwd(tmp_path, "content-ids", pcap, str(table))
    # The rules scoped to udp/7000 (bulk): one payload rule, so the payload
    # database is scanned for every packet.
    other = TABLE.replace("version: 1", "version: 1\ndescription: ids").replace(
        "services: [sync], action: drop}", "services: [sync, bulk], action: drop}")
    try:
        right = content_hash(yaml.safe_load(other)["content_rules"])
        sni_rule = 0  # a rule of another field: its id is foreign to the payload database
        for bad_id in (100000, 9, sni_rule):
            db = hs_database("EVIL", bad_id)
            r = f.ctl.call("push", document=other + f"# {bad_id}\n",
                           content_db={"rules_hash": right, "dbs": {fld: db for fld in
                                                                    ("payload", "tls_sni", "http_host", "dns_qname")}})
            assert r["ok"], r
            before = f.ctl.call("counters")
            deadline = time.time() + 30
            while f.ctl.call("counters")["events"]["content_scan_error"] <= before["events"]["content_scan_error"]:
                assert time.time() < deadline, "no scan failed"
                time.sleep(0.1)
            c = f.ctl.call("counters")
            # Still forwarding, the packets on their policy decision (steer).
            assert c["packets"]["tx"] > before["packets"]["tx"] and c["generation"]["id"] == r["generation"], c
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log


def test_swaps_while_content_traffic_flows(tmp_path):
    """The ruleset flips between 'drop telemetry SNI' and 'count it' while
    the pcap replays forever: nothing lost (rx = tx + drops), both verdicts
    seen, every generation adopted."""
    traffic = [p for p, _ in gen_traffic(11, 200)]
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, traffic)
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    f = Fwd(tmp_path, "content-swap", pcap, str(table))
    swaps = 20
    try:
        for n in range(swaps):
            doc = TABLE.replace("action: drop}", "action: count}") if n % 2 == 0 else TABLE
            doc += f"description: 'swap {n}'\n"
            r = f.ctl.call("push", document=doc)
            assert r["ok"], r
            c = f.ctl.call("counters")
            assert c["packets"]["rx"] == c["packets"]["tx"] + c["packets"]["dropped"]
        time.sleep(0.3)
        c = f.ctl.call("counters")
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert "rx = tx + dropped: holds" in log
    assert c["drops"]["content_drop"] > 0 and c["content_rules"]["sni-drop"]["matches"] > 0
    assert re.search(r"^  generation_swaps\s+(\d+)$", log, re.M).group(1) == str(swaps + 1)


def test_malformed_content_through_the_fast_path(tmp_path):
    """Hostile ClientHellos, HTTP requests and DNS queries in scope: every
    truncation of a valid message, oversized inner lengths, DNS compression
    pointers (a loop among them), duplicate Host headers. No crash, nothing
    matches, every packet forwarded by its policy and accounted."""
    table = tmp_path / "t.yaml"
    # count rules that would match the valid names: a malformed message must not
    table.write_text(TABLE.replace("action: drop}", "action: count}").replace("action: mirror, to: ids}", "action: count}"))
    hello = client_hello("telemetry.example.com")
    req = http_request("evil.example")
    q = dns_query("a.in.example.com")
    bodies = []
    bodies += [("https", hello[:n]) for n in range(len(hello))]
    bodies += [("web", req[:n]) for n in range(len(req) - 4)]
    bodies += [("dns", q[:n]) for n in range(len(q) - 5)]  # up to the end of the name
    for off in (3, 5, 6, 43, 44, 48):  # record length, handshake type and length, session, ciphers, compression
        bad = bytearray(hello)
        bad[off] = 0xff
        bodies.append(("https", bytes(bad)))
    bodies.append(("web", b"GET / HTTP/1.1\r\nHost: evil.example\r\nHost: evil.example\r\n\r\n"))
    bodies.append(("web", b"GET / HTTP/1.1\r\nHost: " + b"e" * 300 + b"\r\n\r\n"))
    loop = bytes.fromhex("123401000001000000000000") + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    bodies.append(("dns", loop))
    bodies.append(("dns", bytes.fromhex("123401000001000000000000") + b"\x01a\xc0\x0e\x00\x01\x00\x01"))
    bodies.append(("dns", bytes.fromhex("123401000001000000000000") + b"\x3fabc"))
    pkts = []
    for i, (svc, body) in enumerate(bodies):
        proto, dport = SERVICE_PORT[svc]
        l4 = TCP(sport=30000 + i, dport=dport, flags="PA") if proto == "tcp" else UDP(sport=30000 + i, dport=dport)
        pkts.append(Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.2.3.4", dst="198.51.100.1") / l4 / Raw(body))
    run = run_pcap(str(tmp_path), str(table), pkts, ["out0", "out1"], "content-malformed")
    assert run.rc == 0, run.stderr
    st = run.stats
    assert st["packets"]["rx"] == len(pkts) == st["packets"]["tx"]
    assert st["events"]["content_scanned"] == len(pkts)
    m = {k: v["matches"] for k, v in st["content_rules"].items()}
    # No name comes out of a broken ClientHello or DNS query. An HTTP request
    # cut after its Host line still names its host (headers may continue in
    # the next segment), never before the name is whole.
    for name in ("sni-drop", "sni-mirror", "sni-count", "dns-steer", "dns-count"):
        assert m[name] == 0, (name, m)
    whole = sum(1 for svc, b in bodies[:len(hello) + len(req)] if svc == "web" and b"Host: evil.example\r\n" in b)
    upto = sum(1 for svc, b in bodies[:len(hello) + len(req)] if svc == "web" and b"Host: evil.example" in b)
    assert whole <= m["host-drop"] <= upto, (whole, upto, m)
    # Names there but unreadable are counted: every cut of the ClientHello
    # but the empty one (it starts a handshake record, then ends), the DNS
    # queries cut inside their 12-byte header, the record and handshake
    # lengths set past what holds them, the two Host headers, the 300-byte
    # Host and the three broken questions. An HTTP request cut before its
    # Host line ends may be too (its headers may continue in the next
    # segment); an empty body or a cut method is not.
    floor = (len(hello) - 1) + 12 + 2 + 2 + 3
    nothing = 1 + 1 + 1  # empty hello, empty request, the hello with no ClientHello type (off 5)
    assert floor <= st["events"]["content_unreadable"] <= len(pkts) - nothing, (floor, st["events"])


def test_large_rule_set_compiles_inside_regionfwd(tmp_path):
    """1,000 rules compiled by regionfwd itself (a table from a file). The
    compile child's memory limit once counted the gigabytes of address space
    DPDK had reserved in the parent, so any sizeable rule set was refused as
    'pattern_too_expensive' -- found by bench/run."""
    rules = "".join(f"  - {{name: r{i}, field: tls_sni, pattern: svc{i}.example.com, literal: true, "
                    f"services: [https], action: drop}}\n" for i in range(1000))
    table = tmp_path / "t.yaml"
    table.write_text("services: {https: [tcp/443]}\n"
                     "links: {l: {port: out0, next_hop_mac: '02:00:00:00:00:01'}}\n"
                     "default: {action: steer, to: l}\ncontent_rules:\n" + rules)
    base = Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.2.0.9", dst="198.51.100.1")
    pkts = [base / TCP(sport=2000 + i, dport=443, flags="PA") / Raw(client_hello(f"svc{i * 7}.example.com"))
            for i in range(100)]
    # -m 3072: the parent maps more than the compile child's 2 GiB allowance
    run = run_pcap(str(tmp_path), str(table), pkts, ["out0", "out1"], "content-large", mem=3072)
    assert run.rc == 0, run.stderr
    assert run.stats["drops"]["content_drop"] == 100


def test_a_flow_verdict_across_a_swap_keeps_to_the_rules_scope(tmp_path):
    """A TCP flow pinned to a mirror rule, then a table whose rule of that
    name no longer scopes the flow's region and whose residency rule keeps
    that region's https on links tagged 'in': the flow's packets are no
    longer mirrored (they were, by the rule's name alone: residency broken,
    and explain said no mirror)."""
    doc = """
regions: {india: {prefixes: [10.1.0.0/16]}, brazil: {prefixes: [10.2.0.0/16]}}
services: {https: [tcp/443]}
links:
  local: {port: out0, next_hop_mac: "02:00:00:00:00:01", tags: [in]}
  ids:   {port: out1, next_hop_mac: "02:00:00:00:00:04", tags: [ids]}
default: {action: steer, to: local}
content_rules:
  - {name: tap, field: payload, pattern: HELLO, literal: true, services: [https], action: mirror, to: ids%s}
  - {name: cnt, field: payload, pattern: nothing-matches-this, literal: true, services: [https], action: count}
%s"""
    flow = Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.1.0.7", dst="192.0.2.1") / TCP(sport=4000, dport=443, flags="PA")
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [flow / Raw(b"HELLO there"), flow / Raw(b"the rest of it")])
    table = tmp_path / "t.yaml"
    table.write_text(doc % ("", ""))
    f = Fwd(tmp_path, "content-flow-scope", pcap, str(table))
    try:
        deadline = time.time() + 30
        while f.ctl.call("counters")["events"]["mirror_tx"] == 0:
            assert time.time() < deadline
            time.sleep(0.1)
        r = f.ctl.call("push", document=doc % (", regions: [brazil]",
                                                "residency:\n  - {name: keep, region: india, services: [https], allowed_tags: [in]}\n"))
        assert r["ok"] and not r["noop"], r
        e = f.ctl.call("explain", src="10.1.0.7", dst="192.0.2.1", proto="tcp", sport=4000, dport=443,
                       payload="HELLO there")
        assert (e["region"], e["link"], e["mirror"]) == ("india", "local", None), e
        before = f.ctl.call("counters")
        time.sleep(0.5)
        after = f.ctl.call("counters")
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert after["packets"]["rx"] > before["packets"]["rx"]
    assert after["events"]["mirror_tx"] == before["events"]["mirror_tx"], (before["events"], after["events"])


def test_a_flow_verdict_across_a_swap_follows_what_the_rule_matches(tmp_path):
    """A TCP flow pinned by a count rule, then a table where the rule of that
    name drops something else: the flow is scanned afresh and passes (it was
    dropped, every packet unscanned, by the rule's name alone, while explain
    said it passed). Then a table where that rule drops what it matched:
    every packet of the flow is dropped."""
    doc = """
regions: {india: {prefixes: [10.1.0.0/16]}}
services: {https: [tcp/443]}
links:
  local: {port: out0, next_hop_mac: "02:00:00:00:00:01"}
default: {action: steer, to: local}
content_rules:
  - {name: watch, field: payload, pattern: %s, literal: true, services: [https], action: %s}
"""
    flow = Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.1.0.7", dst="192.0.2.1") / TCP(sport=4000, dport=443, flags="PA")
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [flow / Raw(b"HELLO there"), flow / Raw(b"the rest of it")])
    table = tmp_path / "t.yaml"
    table.write_text(doc % ("HELLO", "count"))
    f = Fwd(tmp_path, "content-flow-key", pcap, str(table))

    def settle():
        before = f.ctl.call("counters")
        time.sleep(0.5)
        return before, f.ctl.call("counters")

    try:
        deadline = time.time() + 30
        while f.ctl.call("counters")["content_rules"]["watch"]["flow_packets"] == 0:
            assert time.time() < deadline
            time.sleep(0.1)
        r = f.ctl.call("push", document=doc % ("GOODBYE", "drop"))
        assert r["ok"] and not r["noop"], r
        e = f.ctl.call("explain", src="10.1.0.7", dst="192.0.2.1", proto="tcp", sport=4000, dport=443,
                       payload="the rest of it")
        assert (e["link"], e["drop_reason"]) == ("local", None), e
        other = settle()
        r = f.ctl.call("push", document=doc % ("HELLO", "drop"))
        assert r["ok"] and not r["noop"], r
        same = settle()
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    before, after = other
    assert after["packets"]["rx"] > before["packets"]["rx"]
    assert after["drops"]["content_drop"] == before["drops"]["content_drop"], (before["drops"], after["drops"])
    before, after = same
    rx = after["packets"]["rx"] - before["packets"]["rx"]
    assert rx > 0 and after["drops"]["content_drop"] - before["drops"]["content_drop"] == rx, (rx, after["drops"])


def test_a_pattern_turned_name_set_of_the_same_text_is_another_rule(tmp_path):
    """A rule 'watch' counting the pattern 'www.example.com' (unanchored: it
    matches www.example.com.cdn.net), then 'watch' dropping the name set
    ['www.example.com'] (that name only): the flow pinned by the pattern is
    scanned afresh and passes. Keyed by the same bytes, pattern and set
    were one rule, and the flow was dropped unscanned (a review)."""
    doc = """
regions: {india: {prefixes: [10.1.0.0/16]}}
services: {web: [tcp/80]}
links:
  local: {port: out0, next_hop_mac: "02:00:00:00:00:01"}
default: {action: steer, to: local}
content_rules:
  - {name: watch, field: http_host, %s, services: [web], action: %s}
"""
    flow = Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.1.0.7", dst="192.0.2.1") / TCP(sport=4000, dport=80, flags="PA")
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [flow / Raw(http_request("www.example.com.cdn.net")), flow / Raw(b"the rest of it")])
    table = tmp_path / "t.yaml"
    table.write_text(doc % ("pattern: 'www.example.com'", "count"))
    f = Fwd(tmp_path, "content-flow-kind", pcap, str(table))
    try:
        deadline = time.time() + 30
        while f.ctl.call("counters")["content_rules"]["watch"]["flow_packets"] == 0:
            assert time.time() < deadline
            time.sleep(0.1)
        r = f.ctl.call("push", document=doc % ("names: ['www.example.com']", "drop"))
        assert r["ok"] and not r["noop"], r
        before = f.ctl.call("counters")
        time.sleep(0.5)
        after = f.ctl.call("counters")
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert after["packets"]["rx"] > before["packets"]["rx"]
    assert after["drops"]["content_drop"] == before["drops"]["content_drop"], (before["drops"], after["drops"])


HOSTILE_TABLE = """
regions: {india: {prefixes: [10.1.0.0/16]}}
services: {https: [tcp/443], web: [tcp/80], dns: [udp/53]}
links:
  local:    {port: out0, next_hop_mac: "02:00:00:00:00:01"}
  resolver: {port: out0, next_hop_mac: "02:00:00:00:00:03"}
default: {action: steer, to: local}
content_rules:
  - {name: sni-drop, field: tls_sni, pattern: '(^|\\.)evil\\.example$', services: [https], action: drop}
  - {name: host-drop, field: http_host, pattern: '(^|\\.)evil\\.example$', services: [web], action: drop}
  - {name: dns-steer, field: dns_qname, pattern: '(^|\\.)evil\\.example$', services: [dns], action: steer, to: resolver}
"""


def pq_client_hello(sni):
    """A ClientHello as browsers send it since 2024: its server_name first, then
    an X25519MLKEM768 key share (1,216 + 32 bytes): ~1.4 KB, past one
    1460-byte segment with the rest of a browser's extensions; here padded
    past 1,600 bytes."""
    name = sni.encode()
    sni_ext = struct.pack(">HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    key = bytes(range(256)) * 4 + bytes(1248 - 1024)
    ks = struct.pack(">HHHHH", 51, len(key) + 6, len(key) + 4, 0x11EC, len(key)) + key
    pad = struct.pack(">HH", 21, 250) + bytes(250)
    exts = sni_ext + ks + pad
    body = (b"\x03\x03" + bytes(32) + b"\x20" + bytes(32) + struct.pack(">H", 2) + b"\x13\x01" +
            b"\x01\x00" + struct.pack(">H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def test_hostile_names_meet_the_rules(tmp_path):
    """What a hostile sender writes so that a server or resolver serves
    evil.example while a rule on '(^|\\.)evil\\.example$' saw another name or
    none (docs/content-rules.md, "Extractors"): a trailing dot, a method
    outside the usual list, empty lines before the request line, an
    absolute-form target of another scheme (with nginx's extra spaces), CONNECT, userinfo in Host, a
    folded Host, "Host :", a ClientHello larger than a segment, a DNS name
    ending in a pointer forward. Each is its own flow; the same forms for
    good.example pass. A request split before its Host is the documented
    limit: it passes, and its first segment is counted unreadable."""
    table = tmp_path / "t.yaml"
    table.write_text(HOSTILE_TABLE)
    http = [b"GET / HTTP/1.1\r\nHost: %s.\r\n\r\n",
            b"XGET / HTTP/1.1\r\nHost: %s\r\n\r\n",
            b"PURGE /x HTTP/1.1\r\nHost: %s\r\n\r\n",
            b"\r\n\r\nGET / HTTP/1.1\r\nHost: %s\r\n\r\n",
            b"GET ws://%s/ HTTP/1.1\r\nHost: other.example\r\n\r\n",
            b"GET   ws://%s/   HTTP/1.1  \r\nHost: other.example\r\n\r\n",
            b"CONNECT %s:443 HTTP/1.1\r\nHost: other.example\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: user@%s\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:\r\n %s\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : %s\r\n\r\n"]
    flows = []  # (service, [payloads], expected fate of every packet: a link, or None: dropped)
    for name, fate in ((b"evil.example", None), (b"good.example", "local")):
        for form in http:
            flows.append(("web", [form % name], fate))
        flows.append(("https", [client_hello(name.decode() + ".")], fate))
        hello = pq_client_hello(name.decode())
        assert len(hello) > 1500
        flows.append(("https", [hello[:1400], hello[1400:]], fate))
        # "www" and a pointer forward, to a name in the additional record
        # (Unbound follows it: www.<name>)
        label = name.split(b".")[0]
        q = (struct.pack(">HHHHHH", 0x77, 0x0100, 1, 0, 0, 1) + b"\x03www\xc0\x16" + b"\x00\x01\x00\x01" +
             bytes([len(label)]) + label + b"\x07example\x00" + b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" +
             bytes(4))
        assert q[22] == len(label)
        flows.append(("dns", [q], "resolver" if fate is None else "local"))
    split = [b"GET / HTTP/1.1\r\n", b"Host: evil.example\r\n\r\n"]
    flows.append(("web", split, "local"))
    pkts, want = [], []
    for i, (svc, bodies, fate) in enumerate(flows):
        proto, dport = SERVICE_PORT[svc]
        seq = 1000
        for body in bodies:
            l4 = (TCP(sport=40000 + i, dport=dport, flags="PA", seq=seq) if proto == "tcp"
                  else UDP(sport=40000 + i, dport=dport))
            seq += len(body)
            pkts.append(Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.1.7.7", dst="198.51.100.1", id=len(pkts)) /
                        l4 / Raw(body))
            want.append(fate)
    run = run_pcap(str(tmp_path), str(table), pkts, ["out0", "out1"], "c10-hostile")
    assert run.rc == 0, run.stderr
    got = {}
    for pkt in run.outputs["out0"]:
        got[pkt[IP].id] = MAC_LINK[pkt[Ether].dst]
    problems = [f"packet {i} ({bytes(pkts[i][Raw].load)[:60]!r}): expected {w}, got {got.get(i)}"
                for i, w in enumerate(want) if got.get(i) != w]
    assert not problems, "\n".join(problems)
    st = run.stats
    m = {k: v["matches"] for k, v in st["content_rules"].items()}
    assert m == {"sni-drop": 2, "host-drop": len(http), "dns-steer": 1}, m
    # the second segment of the big evil hello: dropped by its flow's verdict
    assert st["content_rules"]["sni-drop"]["flow_packets"] == 1
    assert st["drops"]["content_drop"] == len(http) + 3
    # unreadable: the split request's first segment alone (the big hellos'
    # second segments and the split's second start no message)
    assert st["events"]["content_unreadable"] == 1, st["events"]


UNREADABLE_TABLE = """
version: 1
regions:
  india:  {prefixes: [10.1.0.0/16]}
  brazil: {prefixes: [10.2.0.0/16]}
services:
  https: [tcp/443]
  web:   [tcp/80]
  dns:   [udp/53]
links:
  local:    {port: out0, next_hop_mac: "02:00:00:00:00:01"}
  resolver: {port: out0, next_hop_mac: "02:00:00:00:00:03"}
  ids:      {port: out1, next_hop_mac: "02:00:00:00:00:04"}
default: {action: steer, to: local}
content_rules:
  - {name: sni-unread, field: tls_sni, unreadable: true, services: [https], action: drop}
  - {name: host-unread, field: http_host, unreadable: true, services: [web], regions: [india], action: drop}
  - {name: host-count, field: http_host, pattern: 'good\\.example$', services: [web], action: count}
  - {name: dns-unread, field: dns_qname, unreadable: true, services: [dns], action: mirror, to: ids}
"""


# HTTP/2 with prior knowledge: the preface, SETTINGS, HEADERS (:method GET,
# :scheme http, :path /, :authority evil.example as a literal)
H2C_EVIL = bytes.fromhex("505249202a20485454502f322e300d0a0d0a534d0d0a0d0a000000040000000000"
                         "000011010500000001828684010c6576696c2e6578616d706c65")


def test_unreadable_rules_fail_closed(tmp_path):
    """unreadable: true (docs/content-rules.md, "Failing closed"): a name
    that is there but cannot be read (a malformed or cut SNI, two Host
    headers, a DNS pointer loop) meets the rule's action as a pattern's
    match would, flow verdict included; a name that reads, and a payload
    with no such name at all (no TLS, a request without Host), do not. The
    rule set has no pattern but host-count's: the unreadable rules need no
    Hyperscan."""
    table = tmp_path / "t.yaml"
    table.write_text(UNREADABLE_TABLE)
    two_hosts = b"GET / HTTP/1.1\r\nHost: good.example\r\nHost: evil.example\r\n\r\n"
    loop = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    flows = [  # (source, service, [payloads], expected (link or None: dropped, mirror) per packet)
        ("10.1.0.1", "https", [client_hello("evil\x00.example"), b"\x17\x03\x03\x00\x04data"],
         [(None, None), (None, None)]),  # malformed SNI; the flow follows the drop
        ("10.1.0.2", "https", [client_hello("evil.example")[:60]], [(None, None)]),  # cut: truncated
        ("10.1.0.3", "https", [client_hello("good.example"), b"\x17\x03\x03\x00\x04data"],
         [("local", None), ("local", None)]),
        ("10.1.0.4", "https", [b"hello, no TLS here"], [("local", None)]),
        ("10.1.0.5", "web", [two_hosts], [(None, None)]),
        ("10.1.0.6", "web", [http_request("good.example")], [("local", None)]),
        ("10.1.0.7", "web", [b"GET / HTTP/1.0\r\nUser-Agent: t\r\n\r\n"], [("local", None)]),  # no Host
        ("10.2.0.8", "web", [two_hosts], [("local", None)]),  # brazil: outside host-unread's regions
        ("10.1.0.9", "dns", [loop], [("local", "ids")]),
        ("10.1.0.10", "dns", [dns_query("good.example")], [("local", None)]),
        # HTTP/2 with prior knowledge: its :authority is HPACK, read by no rule (it was NONE)
        ("10.1.0.11", "web", [H2C_EVIL], [(None, None)]),
    ]
    pkts, want = [], []
    for f, (src, svc, bodies, fates) in enumerate(flows):
        proto, dport = SERVICE_PORT[svc]
        for k, body in enumerate(bodies):
            l4 = (TCP(sport=43000 + f, dport=dport, flags="PA", seq=1000 + 100 * k) if proto == "tcp"
                  else UDP(sport=43000 + f, dport=dport))
            pkts.append(Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=src, dst="198.51.100.1", id=len(pkts)) /
                        l4 / Raw(body))
            want.append(fates[k])
    run = run_pcap(str(tmp_path), str(table), pkts, ["out0", "out1"], "c10-unread")
    assert run.rc == 0, run.stderr
    fwd = {p[IP].id: MAC_LINK[p[Ether].dst] for p in run.outputs["out0"]}
    mir = {p[IP].id: MAC_LINK[p[Ether].dst] for p in run.outputs["out1"]}
    got = [(fwd.get(i), mir.get(i)) for i in range(len(pkts))]
    problems = [f"packet {i} ({bytes(pkts[i][Raw].load)[:40]!r}): expected {w}, got {g}"
                for i, (w, g) in enumerate(zip(want, got)) if w != g]
    assert not problems, "\n".join(problems)
    st = run.stats
    c = {k: (v["matches"], v["flow_packets"]) for k, v in st["content_rules"].items()}
    # host-count: good.example in the readable request only (two Hosts are read by no pattern)
    assert c == {"sni-unread": (2, 1), "host-unread": (2, 0), "host-count": (1, 0),
                 "dns-unread": (1, 0)}, c
    assert st["drops"]["content_drop"] == 5
    assert st["events"]["mirror_tx"] == 1
    # unreadable is still counted, with a rule or without one (brazil's two Hosts)
    assert st["events"]["content_unreadable"] == 6, st["events"]
    # decided: the four TCP flows the unreadable rules dropped and host-count's; the malformed
    # hello's data followed its drop (good.example's hello matched no rule: no verdict)
    assert st["events"]["content_flow_followed"] == 1 and st["events"]["content_flow_decided"] == 5
    assert st["events"]["content_scan_error"] == 0


def test_unreadable_rules_explained(tmp_path):
    """Explain names the fail-closed rule and why the name was unreadable,
    and applies its action; a readable name and a non-TLS payload meet no
    rule. A table of unreadable rules alone is built without Hyperscan."""
    table = tmp_path / "t.yaml"
    table.write_text(UNREADABLE_TABLE.replace(
        "  - {name: host-count, field: http_host, pattern: 'good\\.example$', services: [web], action: count}\n",
        ""))
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.9.0.1", dst="192.0.2.1") / UDP(dport=9)])
    f = Fwd(tmp_path, "c10-unread-explain", pcap, str(table))
    try:
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                       payload_hex=client_hello("evil\x00.example").hex())
        assert r["ok"], r
        c = r["content"]
        assert c["unreadable"] == {"tls_sni": "malformed"} and c["extracted"]["tls_sni"] is None
        assert c["matches"] == [{"rule": "sni-unread", "field": "tls_sni", "action": "drop",
                                 "unreadable": "malformed"}], c
        assert c["verdict"] == "sni-unread" and r["drop_reason"] == "content_drop" and r["link"] is None
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                       payload_hex=client_hello("evil.example")[:60].hex())
        assert r["content"]["matches"][0]["unreadable"] == "truncated"
        assert r["drop_reason"] == "content_drop"
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=80,
                       payload="GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n")
        assert r["content"]["verdict"] == "host-unread" and r["drop_reason"] == "content_drop"
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=80,
                       payload_hex=H2C_EVIL.hex())
        assert r["content"]["unreadable"] == {"http_host": "unsupported"}, r["content"]
        assert r["content"]["verdict"] == "host-unread" and r["drop_reason"] == "content_drop"
        # brazil: host-unread scopes india only, and no other rule scopes web here
        r = f.ctl.call("explain", src="10.2.0.5", dst="198.51.100.1", proto="tcp", dport=80,
                       payload="GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n")
        assert r["content"] is None and r["link"] == "local" and r["drop_reason"] is None
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="udp", dport=53,
                       payload_hex=(struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01").hex())
        assert r["content"]["verdict"] == "dns-unread" and r["mirror"] == "ids" and r["link"] == "local"
        for payload_hex in (client_hello("good.example").hex(), b"hello, no TLS here".hex()):
            r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                           payload_hex=payload_hex)
            c = r["content"]
            assert c["unreadable"] == {} and c["matches"] == [] and c["verdict"] is None, c
            assert r["drop_reason"] is None and r["link"] == "local"
        # a name given as such is read: no unreadable rule matches it
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                       tls_sni="evil.example")
        assert r["content"]["verdict"] is None
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert re.search(r"generation 1: 3 content rules, databases 0.0 KiB \(no patterns\)", log), log[-2000:]


SEVERAL_TABLE = """
version: 1
regions:
  india:  {prefixes: [10.1.0.0/16]}
  brazil: {prefixes: [10.2.0.0/16]}
services:
  web:    [tcp/80]
  dnstcp: [tcp/53]
links:
  local:    {port: out0, next_hop_mac: "02:00:00:00:00:01"}
  ids:      {port: out1, next_hop_mac: "02:00:00:00:00:04"}
default: {action: steer, to: local}
content_rules:
  - {name: host-drop, field: http_host, pattern: '(^|\\.)evil\\.example$', services: [web], action: drop}
  - {name: host-count, field: http_host, pattern: 'good\\.example$', services: [web], action: count}
  - {name: dns-drop, field: dns_qname, pattern: '(^|\\.)evil\\.example$', services: [dnstcp], action: drop}
  - {name: host-unread, field: http_host, unreadable: true, services: [web], regions: [brazil], action: drop}
"""


def req(host):
    return b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"


def dns_tcp(qname):
    q = dns_query(qname)
    return struct.pack(">H", len(q)) + q


def test_every_request_and_message_of_a_segment(tmp_path):
    """A segment carrying several HTTP/1.x requests (pipelined) or several
    DNS-over-TCP messages: nginx and resolvers act on each, so each one's
    name meets the rules (docs/content-rules.md, "Extractors"): a second
    request or message for evil.example drops the segment, behind a body
    too; an HTTP/0.9 absolute-form line names its target's host. A rule
    matching two names of a segment counts one match. Past FWD_X_MAX_NAMES
    (16) requests the field is unreadable: an unreadable: true rule drops
    the segment, and without one the 17th request's name is not seen."""
    table = tmp_path / "t.yaml"
    table.write_text(SEVERAL_TABLE)
    post = b"POST /f HTTP/1.1\r\nHost: good.example\r\nContent-Length: 38\r\n\r\n"
    hidden = b"GET / HTTP/1.1\r\nHost: hidden.example\r\n"
    assert len(hidden) == 38
    flows = [  # (source, service, payload, expected fate: a link, or None: dropped)
        ("10.1.0.1", "web", req(b"good.example") + req(b"evil.example"), None),
        ("10.1.0.2", "web", req(b"good.example") + req(b"Good.Example"), "local"),
        ("10.1.0.3", "web", post + hidden + req(b"evil.example"), None),
        ("10.1.0.4", "web", b"GET http://evil.example/\r\n", None),
        ("10.1.0.5", "web", b"GET /\r\n", "local"),
        ("10.1.0.6", "dnstcp", dns_tcp("good.example") + dns_tcp("evil.example"), None),
        ("10.1.0.7", "dnstcp", dns_tcp("good.example") + dns_tcp("good.example"), "local"),
        ("10.2.0.8", "web", req(b"good.example") * 17, None),  # past the bound: unreadable
        ("10.2.0.9", "web", req(b"good.example") * 16, "local"),
        ("10.1.0.10", "web", req(b"good.example") * 16 + req(b"evil.example"), "local"),
    ]
    services = {"web": 80, "dnstcp": 53}
    pkts = [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src=src, dst="198.51.100.1", id=i) /
            TCP(sport=44000 + i, dport=services[svc], flags="PA", seq=1000) / Raw(body)
            for i, (src, svc, body, _) in enumerate(flows)]
    run = run_pcap(str(tmp_path), str(table), pkts, ["out0", "out1"], "c11-several")
    assert run.rc == 0, run.stderr
    got = {p[IP].id: MAC_LINK[p[Ether].dst] for p in run.outputs["out0"]}
    problems = [f"packet {i} ({flows[i][2][:60]!r}): expected {flows[i][3]}, got {got.get(i)}"
                for i in range(len(flows)) if got.get(i) != flows[i][3]]
    assert not problems, "\n".join(problems)
    st = run.stats
    m = {k: v["matches"] for k, v in st["content_rules"].items()}
    # host-count: one match per packet, however many of its requests name good.example
    assert m == {"host-drop": 3, "host-count": 6, "dns-drop": 1, "host-unread": 1}, m
    assert st["drops"]["content_drop"] == 5
    # the two segments past the bound, with an unreadable rule (brazil) and without
    assert st["events"]["content_unreadable"] == 2, st["events"]


def test_explain_lists_matches_in_document_order_with_the_verdict(tmp_path):
    """Past 16 matches explain lists the first 16 in document order and
    the deciding rule: it listed 16 in Hyperscan's order, and the mirror
    that decided (after 20 count rules) was not among them."""
    counts = "".join("  - {name: c%02d, field: payload, pattern: zq, literal: true, services: [sync], "
                     "action: count}\n" % i for i in range(20))
    table = tmp_path / "t.yaml"
    table.write_text(TABLE + counts +
                     "  - {name: m-last, field: payload, pattern: zqz, literal: true, services: [sync], "
                     "regions: [brazil], action: mirror, to: ids}\n")
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.9.0.1", dst="192.0.2.1") / UDP(dport=9)])
    f = Fwd(tmp_path, "content-explain16", pcap, str(table))
    try:
        r = f.ctl.call("explain", src="10.2.0.5", dst="198.51.100.1", proto="tcp", dport=9000,
                       payload="a zqz b")
        assert r["ok"], r
        c = r["content"]
        assert c["matched"] == 21 and c["verdict"] == "m-last", c
        assert [m["rule"] for m in c["matches"]] == ["c%02d" % i for i in range(16)] + ["m-last"], c
        assert r["mirror"] == "ids", r
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log


def test_explain_shows_every_request(tmp_path):
    """Explain runs the fast path's scan: the matches of a later pipelined
    request are listed, and decide; `extracted` is the first request's
    name; a segment past the bound is unreadable as too_many."""
    table = tmp_path / "t.yaml"
    table.write_text(SEVERAL_TABLE)
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.9.0.1", dst="192.0.2.1") / UDP(dport=9)])
    f = Fwd(tmp_path, "c11-several-explain", pcap, str(table))
    try:
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=80,
                       payload_hex=(req(b"good.example") + req(b"evil.example")).hex())
        assert r["ok"], r
        c = r["content"]
        assert c["extracted"]["http_host"] == "good.example"
        # in document order, not the order the requests matched in
        assert [m["rule"] for m in c["matches"]] == ["host-drop", "host-count"], c
        assert c["verdict"] == "host-drop" and r["drop_reason"] == "content_drop"
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=53,
                       payload_hex=(dns_tcp("good.example") + dns_tcp("evil.example")).hex())
        assert r["content"]["verdict"] == "dns-drop" and r["drop_reason"] == "content_drop"
        r = f.ctl.call("explain", src="10.2.0.5", dst="198.51.100.1", proto="tcp", dport=80,
                       payload_hex=(req(b"good.example") * 17).hex())
        c = r["content"]
        assert c["unreadable"] == {"http_host": "too_many"}, c
        assert c["verdict"] == "host-unread" and r["drop_reason"] == "content_drop"
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log


def test_a_mirror_to_the_link_a_packet_leaves_by_makes_no_second_copy(tmp_path):
    """A content rule's mirror to the link the packet's policy steers it to,
    or a policy's mirror to the member of its group a flow hashes to, sent
    each packet out on that link twice (a probe). The packet leaves once, no
    mirror copy is counted, and explain says no mirror; a mirror to another
    link is still made."""
    doc = """
regions: {india: {prefixes: [10.1.0.0/16]}, brazil: {prefixes: [10.2.0.0/16]}}
services: {https: [tcp/443], web: [tcp/80]}
links:
  local: {port: out0, next_hop_mac: "02:00:00:00:00:01"}
  ids:   {port: out1, next_hop_mac: "02:00:00:00:00:04"}
link_groups:
  pool: {members: {local: 1, ids: 1}}
policies:
  - {region: brazil, service: web, action: steer, to: pool, mirror: ids}
default: {action: steer, to: local}
content_rules:
  - {name: tap-local, field: payload, pattern: HELLO, literal: true, services: [https], action: mirror, to: local}
  - {name: tap-ids, field: payload, pattern: OTHER, literal: true, services: [https], action: mirror, to: ids}
"""
    table = tmp_path / "t.yaml"
    table.write_text(doc)
    pkts = []
    for i in range(2):  # the content rule: a mirror to its own link, then to another
        pkts.append(Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.1.0.7", dst="192.0.2.1") /
                    TCP(sport=4000 + i, dport=443, flags="PA") / Raw(b"HELLO" if i == 0 else b"OTHER"))
    flows = [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.2.0.9", dst="192.0.2.1") /
             TCP(sport=5000 + i, dport=80, flags="S") for i in range(40)]
    run = run_pcap(str(tmp_path), str(table), pkts + flows, ["out0", "out1"], "content-mirror-self")
    assert run.rc == 0, run.stderr
    on = {name: collections.Counter(p[Ether].dst for p in run.outputs[name]) for name in ("out0", "out1")}
    # HELLO: once on local, no copy; OTHER: once on local and once on ids.
    hello = [p for p in run.outputs["out0"] if Raw in p and bytes(p[Raw].load).startswith(b"HELLO")]
    assert len(hello) == 1, on
    assert sum(1 for p in run.outputs["out1"] if Raw in p and bytes(p[Raw].load).startswith(b"OTHER")) == 1
    # The group's flows: those hashed to ids leave there once (no copy on
    # ids too); those hashed to local leave on local with one copy on ids.
    sent_ids = sum(1 for p in run.outputs["out1"] if TCP in p and p[TCP].dport == 80)
    sent_local = sum(1 for p in run.outputs["out0"] if TCP in p and p[TCP].dport == 80)
    assert sent_local > 0 and sent_local + sent_ids == 40 + sent_local, (sent_local, sent_ids)
    assert run.stats["events"]["mirror_tx"] == 1 + sent_local, run.stats["events"]
