"""Name-set content rules in the fast path (docs/content-rules.md, issue 21):
generated sets of exact names and suffixes, inline and from a names file,
and generated TLS, HTTP and DNS traffic (members, names under suffixes,
apexes of suffix-only entries, case, trailing dots, near misses) through
regionfwd on net_pcap; every packet's fate and every rule's counters
compared with the reference (tests/lib/refcontent.py: string comparison of
suffixes, no hashing). TCP flows keep their verdict (flow pinning). Explain
names the entry that matched; a names file with a bad line is refused with
its file and line; a 1M-name set swapped under traffic loses nothing."""
import json
import os
import random
import re
import sys
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from dprun import run_pcap  # noqa: E402
from refcontent import client_hello, dns_query, http_request  # noqa: E402

from scapy.all import IP, TCP, UDP, Ether, IPv6, Raw, wrpcap  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from test_content import MAC_LINK, SRC_MAC, DST_MAC, expected, tag, tag_of, src_addr  # noqa: E402
from test_control import Fwd  # noqa: E402

HEAD = """
version: 1
regions:
  india:  {prefixes: [10.1.0.0/16, "2001:db8:1::/48"]}
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
"""


def rand_label(rng, n=None):
    n = n or rng.randrange(1, 9)
    return "".join(rng.choice("abcdefgh-_0123") for _ in range(n)).strip("-") or "a"


def rand_name(rng, labels=None):
    labels = labels or rng.randrange(2, 4)
    return ".".join(rand_label(rng) for _ in range(labels - 1)) + "." + rng.choice(["com", "in", "example"])


def gen_sets(rng, n):
    """Four sets of n entries (mixed exact and suffix); some names in two sets."""
    sets = []
    shared = [rand_name(rng) for _ in range(n // 10)]
    for _ in range(4):
        s = []
        for i in range(n):
            name = rng.choice(shared) if i < n // 10 else rand_name(rng)
            s.append(("*." + name) if rng.random() < 0.5 else name)
        sets.append(s)
    return sets


def variants(rng, entry):
    """Query names derived from a set entry: the name, under it, case, trailing dot, near misses."""
    name = entry[2:] if entry.startswith("*.") else entry
    return [name, rand_label(rng) + "." + name, rand_label(rng) + "." + rand_label(rng) + "." + name,
            name.upper(), name + ".", "x" + name, name[1:] if len(name) > 3 else name,
            name + ".evil", rand_name(rng)]


def long_under(rng, entry):
    """A name of 254 or 255 bytes under a set entry: longer than any entry may
    be, yet a TLS or HTTP server serves it (a "*." entry once missed it)."""
    name = entry[2:] if entry.startswith("*.") else entry
    want = rng.choice([254, 255])
    labels = []
    left = want - len(name)  # bytes of the labels in front, a dot after each
    while left > 0:
        n = min(63, left - 1)
        if left - (n + 1) == 1:  # one byte left would be an empty label
            n -= 1
        labels.append("".join(rng.choice("abcdefgh0123") for _ in range(n)))
        left -= n + 1
    out = ".".join(labels + [name])
    assert len(out) == want, (len(out), want)
    return out


def server_name(name):
    """The SNI or Host the extractor returns: lowercased, one trailing dot
    gone (nginx and Apache serve "a.example." as a.example)."""
    return name.lower()[:-1] if name.endswith(".") else name.lower()


def gen_traffic(rng, sets, nflows):
    out = []
    sni_pool = [v for e in sets[0] + sets[1] for v in variants(rng, e)]
    host_pool = [v for e in sets[2] for v in variants(rng, e)]
    dns_pool = [v for e in sets[3] + sets[0] for v in variants(rng, e)]
    # names past 253 bytes in TLS and HTTP only: a DNS name on the wire stops
    # at 255 bytes with its length bytes, 253 dotted
    sni_pool += [long_under(rng, e) for e in sets[0][:20] + sets[1][:20]]
    host_pool += [long_under(rng, e) for e in sets[2][:20]]

    def hot(e):  # a name the entry surely matches
        return "hot." + e[2:] if e.startswith("*.") else e
    # a quarter of each pool's draws is one name: a heavy hitter for the top names
    sni_pool += [hot(sets[1][0])] * (len(sni_pool) // 3)
    host_pool += [hot(sets[2][0])] * (len(host_pool) // 3)
    dns_pool += [hot(sets[3][0])] * (len(dns_pool) // 3)
    for fl in range(nflows):
        region = rng.choice(["india", "india", "brazil", "unknown"])
        service = rng.choice(["https", "https", "web", "dns"])
        src = src_addr(rng, region)
        sport = 10000 + fl
        names = {}
        if service == "https":
            proto, dport = "tcp", 443
            sni = rng.choice(sni_pool)
            first = client_hello(sni, pad_ext=rng.random() < 0.5)
            names["tls_sni"] = server_name(sni)
        elif service == "web":
            proto, dport = "tcp", 80
            host = rng.choice(host_pool)
            first = http_request(host + (":8080" if rng.random() < 0.3 else ""))
            names["http_host"] = server_name(host)
        else:
            proto, dport = "udp", 53
            qn = rng.choice(dns_pool)
            first = dns_query(qn, fl & 0xffff)
            # the wire form: dns_query() writes the non-empty labels
            names["dns_qname"] = ".".join(lb for lb in qn.lower().split(".") if lb)
        npk = 1 if proto == "udp" else rng.choice([1, 2, 3])
        for k in range(npk):
            i = len(out)
            payload = (first if k == 0 else bytes(rng.randrange(0, 256) for _ in range(20))) + tag(i)
            ip = IPv6(src=src, dst="2001:db8:ff::1") if ":" in src else IP(src=src, dst="198.51.100.1")
            l4 = TCP(sport=sport, dport=dport, flags="PA", seq=1000 + k * 100) if proto == "tcp" else \
                UDP(sport=sport, dport=dport)
            pkt = Ether(src=SRC_MAC, dst=DST_MAC) / ip / l4 / Raw(payload)
            meta = dict(region=region, service=service, proto=proto, payload=payload,
                        flow=(src, sport, dport, proto), names=names if k == 0 else {})
            out.append((pkt, meta))
    return out


def write_table(tmp_path, sets):
    (tmp_path / "sni-block.txt").write_text(
        "# generated blocklist\n\n" + "\n".join(f"  {e}  # n{i}" if i % 7 == 0 else e
                                                 for i, e in enumerate(sets[0])) + "\n")
    (tmp_path / "sni-block.txt").chmod(0o644)  # readable by others, whatever the umask
    rules = [
        {"name": "sni-block", "field": "tls_sni", "names_file": "sni-block.txt", "names": sets[0][:5],
         "services": ["https"], "action": "drop"},
        {"name": "sni-india", "field": "tls_sni", "names": sets[1], "services": ["https"],
         "regions": ["india"], "action": "mirror", "to": "ids"},
        {"name": "sni-pattern", "field": "tls_sni", "pattern": "\\.in$", "services": ["https"],
         "action": "count"},
        {"name": "host-set", "field": "http_host", "names": sets[2], "services": ["web"],
         "action": "mirror", "to": "ids"},
        {"name": "dns-set", "field": "dns_qname", "names": sets[3], "services": ["dns"],
         "action": "steer", "to": "resolver"},
        {"name": "dns-block", "field": "dns_qname", "names": sets[0][:200], "services": ["dns"],
         "action": "count"},
    ]
    doc = yaml.safe_load(HEAD)
    doc["content_rules"] = rules
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump(doc))
    return table, rules


def test_name_sets_match_the_reference(tmp_path):
    rng = random.Random(21)
    sets = gen_sets(rng, 400)
    table, rules = write_table(tmp_path, sets)
    traffic = gen_traffic(rng, sets, 900)
    exp, ref, _ = expected(rules, traffic, str(tmp_path))
    run = run_pcap(str(tmp_path), str(table), [p for p, _ in traffic], ["out0", "out1"], "namesets-ref")
    assert run.rc == 0, run.stderr
    fwd = {tag_of(p): MAC_LINK[p[Ether].dst] for p in run.outputs["out0"]}
    mirrored = {tag_of(p): MAC_LINK[p[Ether].dst] for p in run.outputs["out1"]}
    problems = []
    for i, (link, mirror, dropped) in enumerate(exp):
        got = (fwd.get(i), mirrored.get(i), i not in fwd)
        if got != (link, mirror, dropped):
            m = traffic[i][1]
            problems.append(f"packet {i} {m['region']}/{m['service']} names={m['names']}: "
                            f"expected {(link, mirror, dropped)}, got {got}")
    assert not problems, "\n".join(problems[:10])
    st = run.stats
    for name in ref.matches:
        c = st["content_rules"][name]
        assert (c["matches"], c["flow_packets"]) == (ref.matches[name], ref.flow_packets[name]), \
            (name, c, ref.matches[name], ref.flow_packets[name])
    # every rule matched, flows were pinned, both outcomes of each kind seen
    assert all(v > 10 for v in ref.matches.values()), ref.matches
    assert sum(ref.flow_packets.values()) > 50
    assert st["drops"]["content_drop"] == sum(1 for e in exp if e[2]) > 50
    assert st["packets"]["rx"] == len(traffic) == st["packets"]["tx"] + st["packets"]["dropped"]
    checked_heavy = 0
    # Top names (one worker: its space-saving sketch of 8): every name it
    # lists was matched, none is undercounted, and a name holding more than
    # 1/8 of the rule's matches is listed.
    for r in ref.rules:
        if r.rx is not None:
            continue
        top = {t["name"]: t["count"] for t in st["content_rules"][r.name].get("top_names", [])}
        assert top and len(top) <= 8, (r.name, top)
        for name, count in top.items():
            assert r.entry_hits.get(name, 0) >= 1 and count >= r.entry_hits[name], (r.name, name, count)
        total = sum(r.entry_hits.values())
        heavy = [name for name, n in r.entry_hits.items() if n * 8 > total]
        for name in heavy:
            assert name in top, (r.name, name, r.entry_hits[name], total, top)
        checked_heavy += len(heavy)
    assert checked_heavy >= 3  # the hot names of sni-india, host-set and dns-set


def test_names_file_bad_line_is_refused(tmp_path):
    (tmp_path / "list.txt").write_text("good.example\n# fine\n\n*.zone.example\nbad name.example\n")
    (tmp_path / "list.txt").chmod(0o644)
    doc = yaml.safe_load(HEAD)
    doc["content_rules"] = [{"name": "r", "field": "dns_qname", "names_file": "list.txt",
                             "services": ["dns"], "action": "count"}]
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump(doc))
    pkt = Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.1.0.1", dst="198.51.100.1") / UDP(dport=53)
    run = run_pcap(str(tmp_path), str(table), [pkt], ["out0"], "namesets-bad")
    assert run.rc != 0
    # the line and why, never its text: a file that is no list must not leak through the refusal
    # the document and the rule's line first, as every refusal, then the file and its line
    assert re.search(r"table refused: \S*t\.yaml(:\d+)?: content_rules\[0\]\.names_file: 'list\.txt' line 5 "
                     r"is not a name \(16 bytes, not shown\)", run.stderr), run.stderr
    assert "bad name" not in run.stderr, run.stderr


def test_explain_names_the_entry(tmp_path):
    doc = yaml.safe_load(HEAD)
    doc["content_rules"] = [
        {"name": "block", "field": "tls_sni", "names": ["evil.example", "*.tracker.example"],
         "services": ["https"], "action": "drop"},
        {"name": "watch", "field": "tls_sni", "names": ["*.example"], "services": ["https"],
         "action": "count"}]
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump(doc))
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.9.0.1", dst="192.0.2.1") / UDP(dport=9)])
    f = Fwd(tmp_path, "namesets-explain", pcap, str(table))
    try:
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                       tls_sni="A.B.Tracker.Example.")
        assert r["ok"], r
        c = r["content"]
        assert c["verdict"] == "block" and r["drop_reason"] == "content_drop"
        assert {(m["rule"], m["name"]) for m in c["matches"]} == {
            ("block", "*.tracker.example"), ("watch", "*.example")}
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                       payload_hex=client_hello("evil.example").hex())
        assert [(m["rule"], m["name"]) for m in r["content"]["matches"]] == [
            ("block", "evil.example"), ("watch", "*.example")]
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="tcp", dport=443,
                       tls_sni="tracker.example")  # the apex of a suffix-only entry
        assert [m["rule"] for m in r["content"]["matches"]] == ["watch"]
        assert r["content"]["verdict"] == "watch" and r["drop_reason"] is None
        # a document sent as text cannot point at a file on this host
        r = f.ctl.call("push", document=yaml.safe_dump(
            dict(doc, content_rules=[dict(doc["content_rules"][0], names_file="/etc/hostname")])))
        assert not r["ok"] and "regionctl apply FILE" in r["error"]["reason"], r
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log


def million_names(salt):
    """1,000,000 names (half exact, half suffix entries) as a names file's text."""
    return "".join(f"{'*.' if i & 1 else ''}h{i:x}{salt}.z{i % 997}.example\n" for i in range(1000000))


def embedded(text):
    """names_file as regionctl embeds it (common/fwd_embed.c)."""
    h = 1469598103934665603  # fwd_hash64: FNV-1a with the project's offset basis
    for b in text.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return {"path": "million.txt", "hash": f"{h:016x}", "text": text}


def test_swap_million_name_sets_under_traffic(tmp_path):
    """A 1M-name set is swapped for another 1M-name set while DNS queries
    replay forever: every generation adopted, rx = tx + dropped after each
    swap, and each set's verdict seen (the names in only one set match only
    while that set runs)."""
    texts = [million_names("a"), million_names("b")]
    forms = [embedded(t) for t in texts]
    # the names that differ between the two sets: 'h1a...' only in set a
    qnames = ["h10a.z16.example", "x.h11a.z17.example", "h10b.z16.example", "x.h11b.z17.example",
              "nothing.example"] * 40
    pcap = str(tmp_path / "in.pcap")
    wrpcap(pcap, [Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.1.0.9", dst="198.51.100.1") /
                  UDP(sport=2000 + i, dport=53) / Raw(dns_query(q, i)) for i, q in enumerate(qnames)])
    # the first table from a file: regionfwd embeds it (and its hash) itself
    (tmp_path / "million.txt").write_text(texts[0])
    (tmp_path / "million.txt").chmod(0o644)
    doc = yaml.safe_load(HEAD)
    doc["content_rules"] = [{"name": "million", "field": "dns_qname", "names_file": "million.txt",
                             "services": ["dns"], "action": "drop"}]
    table = tmp_path / "t.json"
    table.write_text(json.dumps(doc))
    f = Fwd(tmp_path, "namesets-swap", pcap, str(table))
    swaps = 4
    drops = []
    try:
        c = f.ctl.call("counters")
        for n in range(swaps):
            d = dict(doc)
            d["content_rules"] = [dict(doc["content_rules"][0],
                                       names_file=forms[(n + 1) % 2])]
            d["description"] = f"swap {n}"
            before = f.ctl.call("counters")
            r = f.ctl.call("push", document=json.dumps(d))
            assert r["ok"], r
            time.sleep(0.5)
            c = f.ctl.call("counters")
            assert c["packets"]["rx"] == c["packets"]["tx"] + c["packets"]["dropped"]
            drops.append(c["drops"]["content_drop"] - before["drops"]["content_drop"])
        time.sleep(0.3)
        r = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="udp", dport=53,
                       dns_qname="x.h11a.z17.example")
        rb = f.ctl.call("explain", src="10.1.0.5", dst="198.51.100.1", proto="udp", dport=53,
                        dns_qname="x.h11b.z17.example")
        c = f.ctl.call("counters")
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert "rx = tx + dropped: holds" in log
    assert all(x > 0 for x in drops), drops
    # every match of this drop rule is a drop; the report reads the drops
    # (per-worker totals) before the rule counters (per generation) while
    # traffic flows, so the matches may be ahead by what passed in between
    m, dr = c["content_rules"]["million"]["matches"], c["drops"]["content_drop"]
    assert dr > 0 and 0 <= m - dr <= m // 100, (m, dr)
    # the running set's top names (this generation's sketch): the two of
    # its names the traffic carries, each counted
    top = c["content_rules"]["million"]["top_names"]
    assert {t["name"] for t in top} == {"h10a.z16.example", "*.h11a.z17.example"}, top
    assert all(t["count"] > 0 for t in top) and sum(t["count"] for t in top) <= m
    # pushed: b, a, b, a; the running set is a's
    assert [m.get("name") for m in r["content"]["matches"]] == ["*.h11a.z17.example"], r
    assert rb["content"]["matches"] == [], rb
    assert re.search(r"^  generation_swaps\s+(\d+)$", log, re.M).group(1) == str(swaps + 1)
