"""regionctl capture, end to end: regionfwd on net_pcap (infinite traffic from
five regions, three services) and net_null ports, regiond, regionctl as the
client. Every file is read back by tshark, and every packet's comment must
carry the verdict regionfwd's own explain gives for that packet; the XDP
filter's drops come through a veth pair in a namespace of the test's own.
"""
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import netns  # noqa: E402
from scapy.all import ICMP, IP, UDP, Ether, IPOption_NOP, IPv6, IPv6ExtHdrHopByHop, Raw, rdpcap  # noqa: E402
from test_e2e import DEMO, REGIOND, REGIONCTL, Box, wait_for  # noqa: E402
from unixproxy import UnixProxy  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None or not os.path.exists(REGIOND),
                                reason="needs tshark and regiond")

# The node's own capture pool (4095 copies in flight), not the tests'
# smaller default (dprun.CAPTURE_POOL): these captures copy steady traffic
# at full speed and count what was written against what was sent.
CAPTURE_NODE = "capture_mbufs: 4095\n"
FIELDS = ["frame.comment", "frame.time_epoch", "ip.src", "ip.dst", "ip.proto", "udp.srcport", "udp.dstport"]


@pytest.fixture
def box(tmp_path, request):
    b = Box(tmp_path, "cap-" + request.node.name[5:17], steady=True, node_extra=CAPTURE_NODE)
    yield b
    b.stop()


def tshark(path):
    """Every packet of a pcapng file as a dict of FIELDS; tshark must read
    the file whole, without a complaint."""
    p = subprocess.run(["tshark", "-r", path, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"] +
                       sum((["-e", f] for f in FIELDS), []), capture_output=True, text=True, timeout=60)
    err = "\n".join(line for line in p.stderr.splitlines() if "Running as user" not in line)
    assert p.returncode == 0 and err.strip() == "", err
    return [dict(zip(FIELDS, line.split("\t"))) for line in p.stdout.splitlines()]


def packet_count(path):
    """How many packets a pcapng file holds, read whole by capinfos (no
    dissection: a fast capture writes a million packets, which tshark takes
    half a minute to dissect)."""
    p = subprocess.run(["capinfos", "-M", "-c", "-T", "-r", path], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr.strip() == "", p.stderr
    name, count = p.stdout.strip().split("\t")
    return int(count)


def verdict(comment):
    """'regionfwd drop reason=policy_drop gen=1 ...' -> {"source", "fate", key: value}."""
    words = comment.split()
    v = {"source": words[0], "fate": words[1]}
    v.update(w.split("=", 1) for w in words[2:] if "=" in w)
    return v


def capture(box, *args, timeout=60):
    p = subprocess.run([REGIONCTL, "-s", box.api, "capture", *args], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def events(box):
    return box.fwd_counters()["events"]


def test_verdicts_match_explain(box, tmp_path):
    f = str(tmp_path / "all.pcapng")
    rc, out, err = capture(box, "-w", f, "--count", "60")
    assert rc == 0, err
    # The summary: on stdout with -w FILE (stderr when stdout carries packets).
    assert "capture: 60 packets written to " + f in out and "end=count reached" in out, out
    pkts = tshark(f)
    assert len(pkts) == 60
    now = time.time()
    explained = {}
    fates = set()
    for p in pkts:
        v = verdict(p["frame.comment"])
        assert v["source"] == "regionfwd" and v["in"] == "in0", p
        # Stamped by regionfwd when it copied the packet: a moment ago.
        assert now - 60 < float(p["frame.time_epoch"]) <= now + 1, p
        key = (p["ip.src"], p["ip.dst"], int(p["udp.srcport"]), int(p["udp.dstport"]))
        if key not in explained:
            code, explained[key] = box.http("POST", "/v1/explain", {
                "src": key[0], "dst": key[1], "proto": "udp", "sport": key[2], "dport": key[3]})
            assert code == 200, explained[key]
        x = explained[key]
        assert int(v["gen"]) == x["generation"]
        assert (v["region"], v["service"], v["policy"]) == (x["region"], x["service"], x["policy"]), (v, x)
        if x["drop_reason"]:
            assert v["fate"] == "drop" and v["reason"] == x["drop_reason"] and "link" not in v, (v, x)
        else:
            assert v["fate"] == "forward" and v["link"] == x["link"], (v, x)
        fates.add(v["fate"])
    # The traffic has both: unknown sources are dropped by policy.
    assert fates == {"forward", "drop"}
    assert events(box)["captured"] >= 60

    # Without -w: one line per packet, the verdict after the addresses; -j:
    # one JSON object per packet, then the summary.
    rc, out, err = capture(box, "--count", "3", "--region", "india")
    assert rc == 0 and len(out.splitlines()) == 3, err
    assert all(" udp 103.21.9.9:" in line and "region=india" in line for line in out.splitlines()), out
    rc, out, err = capture(box, "--count", "2", "-j")
    lines = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and len(lines) == 3 and lines[-1]["summary"] == "capture" and lines[-1]["packets"] == 2
    assert lines[0]["verdict"]["source"] == "regionfwd" and lines[0]["proto"] == "udp"


def test_packets_without_ports_are_shown_without_them(tmp_path):
    """A later fragment's and an ICMP message's lines read `udp A:0 > B:0`
    and `-j` gave "sport": 0, ports the header does not have (a probe):
    shown without ports now, as the guide says."""
    extra = [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
             IP(src="103.21.9.9", dst="198.51.100.1", proto=17, frag=4, id=77) / Raw(b"f" * 16),
             Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
             IP(src="103.21.9.9", dst="198.51.100.1") / ICMP()]
    b = Box(tmp_path, "cap-noports", steady=True, node_extra=CAPTURE_NODE, extra_packets=extra)
    try:
        for flt, proto in (("ip[6:2] & 0x1fff != 0", "udp"), ("icmp", "icmp")):
            rc, out, err = capture(b, "--count", "2", "--duration", "20", "--filter", flt)
            assert rc == 0 and len(out.splitlines()) == 2, (out, err)
            assert all(re.search(r" %s 103\.21\.9\.9 > 198\.51\.100\.1 len \d+  regionfwd " % proto, line)
                       for line in out.splitlines()), out
            rc, out, err = capture(b, "--count", "2", "--duration", "20", "--filter", flt, "-j")
            lines = [json.loads(line) for line in out.splitlines()][:-1]
            assert rc == 0 and len(lines) == 2, (out, err)
            assert all("sport" not in x and "dport" not in x and x["src"] == "103.21.9.9" for x in lines), out
        # A whole UDP packet keeps its ports.
        rc, out, err = capture(b, "--count", "1", "--duration", "20", "--filter", "udp and ip[6:2] & 0x3fff == 0")
        assert rc == 0 and re.search(r" udp [\d.]+:\d+ > 198\.51\.100\.1:\d+ len", out), (out, err)
    finally:
        b.stop()


def test_a_packet_dropped_for_its_ttl_names_no_mirror(tmp_path):
    """A steered packet whose TTL would expire is dropped, not copied; its
    capture verdict named the policy's mirror all the same (a probe). A
    packet forwarded by the same policy names it."""
    extra = [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
             IP(src="18.229.0.1", dst="198.51.100.1", ttl=1) / UDP(sport=5, dport=9) / Raw(b"t" * 10)]
    b = Box(tmp_path, "cap-ttl", steady=True, node_extra=CAPTURE_NODE, extra_packets=extra)
    try:
        doc = tmp_path / "mirror.yaml"
        doc.write_text(open(DEMO).read().replace("{region: brazil, service: any, action: steer, to: to-br}",
                                                 "{region: brazil, service: any, action: steer, to: to-br, "
                                                 "mirror: local}"))
        rc, _, err = b.ctl("apply", str(doc))
        assert rc == 0, err
        rc, out, err = capture(b, "--count", "1", "--duration", "20", "--filter", "ip[8] = 1")
        assert rc == 0 and "reason=ttl_expired" in out and "region=brazil" in out, (out, err)
        assert "mirror=" not in out, out
        rc, out, err = capture(b, "--count", "1", "--duration", "20", "--filter", "ip[8] > 1 and src 18.229.0.1")
        assert rc == 0 and "link=to-br" in out and "mirror=local" in out, (out, err)
    finally:
        b.stop()


def test_criteria(box, tmp_path):
    def run(name, *args):
        f = str(tmp_path / f"{name}.pcapng")
        rc, _, err = capture(box, "-w", f, "--count", "20", *args)
        assert rc == 0, err
        pkts = tshark(f)
        assert len(pkts) == 20, (name, err)
        return pkts, [verdict(p["frame.comment"]) for p in pkts]

    _, vs = run("drops", "--drops-only")
    assert all(v["fate"] == "drop" and v["region"] == "unknown" for v in vs)
    _, vs = run("reason", "--reason", "policy_drop")
    assert all(v["fate"] == "drop" and v["reason"] == "policy_drop" for v in vs)
    pk, vs = run("region", "--region", "oregon")
    assert all(v["region"] == "oregon" for v in vs) and all(p["ip.src"] == "35.161.0.1" for p in pk)
    _, vs = run("link", "--link", "to-us-west-b")
    assert all(v["fate"] == "forward" and v["link"] == "to-us-west-b" for v in vs)
    _, vs = run("service", "--service", "dns", "--region", "brazil")
    assert all(v["service"] == "dns" and v["region"] == "brazil" for v in vs)
    pk, vs = run("filter", "--filter", "udp port 53")
    assert all(p["udp.dstport"] == "53" for p in pk) and {v["service"] for v in vs} == {"dns"}
    pk, vs = run("both", "--drops-only", "--filter", "udp dst port 443")
    assert all(p["udp.dstport"] == "443" and v["policy"] == "unknown/https" for p, v in zip(pk, vs))


def test_bad_input(box, tmp_path):
    before = events(box)["captured"]
    for args, code, text in [
            (["--filter", "udp port"], 1, "invalid_capture (422): filter: 'udp port': can't parse filter expression"),
            (["--filter", "tcp and and"], 1, "invalid_capture"),
            # libpcap takes it, DPDK's converter does not: said as such (it
            # read "Operation not permitted", like a permission missing)
            (["--filter", "ip protochain 6"], 1, "compiles to classic BPF that DPDK's converter does not take"),
            (["--count", "ten"], 2, "--count takes a whole number in 1..10000000, not 'ten'"),
            (["--count", "0"], 2, "--count takes a whole number"),
            (["--duration", "86401"], 2, "--duration takes a whole number in 1..86400"),
            (["--region", "mars"], 1, "no region 'mars' in the running table (generation 1)"),
            (["--service", "gopher"], 1, "no service 'gopher'"),
            (["--link", "to-mars"], 1, "no link 'to-mars'"),
            (["--reason", "bad_luck"], 1, "'bad_luck' is not a drop reason"),
            (["--region"], 2, "option '--region' needs a value"),
            (["--frobnicate"], 2, "unknown option '--frobnicate'")]:
        rc, out, err = capture(box, "--count", "1", *args) if "--count" not in args else capture(box, *args)
        assert rc == code and text in err, (args, rc, err)
    # A file that cannot be written fails before regiond is asked.
    rc, _, err = capture(box, "-w", str(tmp_path / "no" / "such" / "dir.pcapng"), "--count", "1")
    assert rc == 2 and "cannot write" in err and "No such file or directory" in err
    rc, _, err = capture(box, "-w", str(tmp_path), "--count", "1")
    assert rc == 2 and "Is a directory" in err
    # A refused capture leaves no empty file behind, nor an existing one changed.
    rc, _, err = capture(box, "-w", str(tmp_path / "new.pcapng"), "--region", "mars")
    assert rc == 1 and not (tmp_path / "new.pcapng").exists()
    (tmp_path / "old.pcapng").write_bytes(b"keep me")
    rc, _, err = capture(box, "-w", str(tmp_path / "old.pcapng"), "--link", "nowhere")
    assert rc == 1 and (tmp_path / "old.pcapng").read_bytes() == b"keep me"
    assert events(box)["captured"] == before
    # The API checks the same, and more shapes than regionctl can send.
    for body, field in [({"count": "ten"}, "count"), ({"count": 0}, "count"), ({"duration_s": -1}, "duration_s"),
                        ({"drops_only": 1}, "drops_only"), ({"colour": "red"}, "colour"),
                        ({"filter": "x" * 2000}, "filter"), ({"region": ""}, "region")]:
        code, r = box.http("POST", "/v1/capture", body)
        assert code == 400 and r["error"]["code"] == "bad_request" and r["error"]["path"] == field, (body, r)
    code, r = box.http("POST", "/v1/capture", raw=b"[1, 2]")
    assert code == 400 and r["error"]["code"] == "bad_request"


def test_one_at_a_time_and_interrupt(box, tmp_path):
    first = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "--duration", "600", "--filter", "host 192.0.2.99",
                              "-w", str(tmp_path / "quiet.pcapng")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        wait_for(lambda: "capture 1 started" in open(tmp_path / "fwd.log").read(), what="capture 1 running")
        rc, _, err = capture(box, "--count", "1")
        assert rc == 1 and "capture_busy (409)" in err and "one at a time" in err, err
        # it names how to stop the one that runs (it said "stop it" with no way)
        assert "stop it (regionctl capture --stop 1)" in err, err
        code, r = box.http("POST", "/v1/capture", {"count": 1})
        assert code == 409 and r["error"]["code"] == "capture_busy"
        # A stop names its capture (the stream's Capture-Id): another id,
        # or a body that is not {"capture": N}, stops nothing.
        code, r = box.http("POST", "/v1/capture/stop", {"capture": 99})
        assert code == 404 and r["error"]["code"] == "no_capture", r
        for body in ({}, {"capture": "1"}, {"capture": 0}, {"capture": 1, "x": 1}):
            code, r = box.http("POST", "/v1/capture/stop", body)
            assert code == 400 and r["error"]["path"] == "capture", (body, r)
        assert first.poll() is None
        # another client stops it (600 s, no Ctrl-C to give): its own
        # client gets the end and the statistics
        rc, out, err = capture(box, "--stop", "1", "--count", "1")
        assert rc == 2 and "--stop takes no other capture option (--count)" in err, err
        rc, out, err = capture(box, "--stop", "1")
        assert rc == 0 and "capture 1: stopping" in out, (out, err)
    finally:
        assert first.wait(30) == 0
    out = first.stdout.read()
    assert "capture: 0 packets" in out and "end=stopped" in out, out
    # A capture of everything says so in the log, not a line ending in a colon
    rc, _, err = capture(box, "--duration", "1", "-w", str(tmp_path / "all.pcapng"))
    assert rc == 0, err
    started = [line for line in open(tmp_path / "fwd.log") if "capture 2 started" in line]
    assert len(started) == 1 and started[0].rstrip().endswith(": every packet"), started
    assert tshark(str(tmp_path / "quiet.pcapng")) == []

    # Ctrl-C: regionctl asks regiond to stop the capture, whose stream then
    # ends with its statistics, what was lost included, as tcpdump's does
    # (it once ended without them); tshark reads the file whole.
    f = str(tmp_path / "cut.pcapng")
    p = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "-w", f], stdout=subprocess.PIPE, text=True)
    wait_for(lambda: os.path.exists(f) and os.path.getsize(f) > 10000, what="a capture under way")
    p.send_signal(signal.SIGINT)
    assert p.wait(30) == 0
    out = p.stdout.read()
    assert "(stopped at Ctrl-C)" in out, out
    assert re.search(r"regionfwd capture 3: captured=\d+ lost=\d+ .*end=stopped", out), out
    n = int(out.split("capture: ")[1].split()[0])
    assert n > 0 and len(tshark(f)) == n
    wait_for(lambda: re.search(r"capture 3 for .* ended: .*end=stopped", open(tmp_path / "fwd.log").read()),
             what="capture 3 ended")
    assert "capture 3: stopped by " in open(box.tmp / "regiond.log").read()
    # A second Ctrl-C does not wait for them: the connection is closed, the
    # file ends at its last whole block, and regiond stops the capture (the
    # next one is not refused).
    f = str(tmp_path / "cut2.pcapng")
    p = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "-w", f], stdout=subprocess.PIPE, text=True)
    wait_for(lambda: os.path.exists(f) and os.path.getsize(f) > 10000, what="a capture under way")
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGINT)
    assert p.wait(30) == 0
    out = p.stdout.read()
    assert "(interrupted)" in out or "(stopped at Ctrl-C)" in out, out
    n = int(out.split("capture: ")[1].split()[0])
    assert n > 0 and len(tshark(f)) == n
    wait_for(lambda: re.search(r"capture 4 for .* ended: .*end=stopped", open(tmp_path / "fwd.log").read()),
             what="capture 4 ended")
    # regiond frees its one slot when the interrupted stream's connection
    # is closed, a moment after regionfwd ended the capture: the next one
    # may be refused (capture_busy, as above) until then, never after.
    tries = []
    wait_for(lambda: tries.append(capture(box, "--count", "1")) or
             not (tries[-1][0] == 1 and "capture_busy (409)" in tries[-1][2]), timeout=30,
             what="a capture after the interrupted one")
    assert tries[-1][0] == 0, tries


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_a_full_disk_keeps_only_whole_packets(box, tmp_path):
    """A capture to a disk that fills up: the file ended in the middle of a
    packet (tshark: cut short) and the count said one more packet than it
    held (a hostile probe). The file is cut back to its last whole block,
    which tshark reads, and the count is of the packets in it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
    try:
        f = str(disk / "c.pcapng")
        rc, out, err = capture(box, "--count", "100000", "-w", f)
        assert rc == 4 and "No space left on device" in err, (rc, out, err)
        n = int((out + err).split("capture: ")[1].split()[0])
        assert n > 0 and len(tshark(f)) == n, (n, out, err)
        assert "the file keeps the %d whole packets before it" % n in err, err
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_overflow_counted(tmp_path):
    # A small ring and pool, traffic at full speed (net_pcap infinite_rx):
    # the workers copy faster than the writer drains, and never wait.
    box = Box(tmp_path, "cap-overflow", steady=True, node_extra="capture_ring: 64\ncapture_mbufs: 256\n")
    try:
        f = str(tmp_path / "fast.pcapng")
        rc, out, err = capture(box, "-w", f, "--duration", "2")
        assert rc == 0, err
        stats = [line for line in out.splitlines() if "regionfwd capture" in line][0]
        lost = int(stats.split("lost=")[1].split()[0])
        captured = int(stats.split("captured=")[1].split()[0])
        assert lost > 0 and captured > 0, stats
        assert packet_count(f) == captured
        ev = events(box)
        assert ev["capture_overflow"] >= lost - int(stats.split("writer buffer full ")[1].split(")")[0])
        assert ev["captured"] >= captured
        # rx = tx + drops still holds: a capture changes no packet's fate.
        c = box.fwd_counters()
        assert c["packets"]["rx"] == c["packets"]["tx"] + c["packets"]["dropped"]
        rc, out, _ = box.ctl("counters")
        assert rc == 0 and "capture_overflow" in out
    finally:
        box.stop()


XDP_TABLE = """
filters:
  default: pass
  rules:
    - {name: deny-lab, action: drop, prefixes: [10.9.0.0/16]}
"""

SEND = """
pk = [Ether(dst="02:00:00:00:00:99")/IP(src="10.%d.0.%d" % (8 + i % 2, 1 + i), dst="192.0.2.1")/UDP(sport=7, dport=9)/Raw(b"x" * 20)
      for i in range(40)]
sendp(pk, iface=IFACE, verbose=False, inter=0.001)
"""


def capture_running(tmp_path, n, pcapng):
    """Capture @n started in regionfwd (and with it the XDP side, which
    regiond starts before it answers) and its stream reached the file."""
    wait_for(lambda: f"capture {n} started" in open(tmp_path / "fwd.log").read() and
             os.path.exists(pcapng) and os.path.getsize(pcapng) > 0, what=f"capture {n} running")


@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_xdp_drops(tmp_path):
    pin = f"/sys/fs/bpf/rfwd-cap-{os.getpid()}"
    with netns.VethLab("rfwd-cap-xdp", [("xca0", "xca1")]) as lab:
        box = Box(tmp_path, "cap-xdp", steady=True, node_extra=CAPTURE_NODE, regiond_args=("--xdp-iface", "xca0", "--bpf-pin-dir", pin,
                                                      "--xdp-max-prefixes", "4096", "--xdp-max-groups", "1024"))
        go = None
        try:
            t = tmp_path / "xdp.yaml"
            t.write_text(open(DEMO).read() + XDP_TABLE)
            rc, _, err = box.ctl("apply", str(t))
            assert rc == 0, err
            f = str(tmp_path / "xdp.pcapng")
            go = lab.armed_sender("xca1", SEND)
            cap = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "--drops-only", "--duration", "4",
                                    "--filter", "not host 2.2.2.2", "-w", f], stdout=subprocess.PIPE, text=True)
            capture_running(tmp_path, 1, f)
            go()
            assert cap.wait(30) == 0
            err = cap.stdout.read()
            pkts = tshark(f)
            # The filter applies to the XDP drops too; regionfwd's only
            # drops here (2.2.2.2) are filtered out.
            assert len(pkts) == 20, err
            for p in pkts:
                v = verdict(p["frame.comment"])
                assert (v["source"], v["fate"], v["rule"], v["why"], v["in"]) == \
                    ("xdp", "drop", "deny-lab", "rule", "xca0"), p
                assert v["gen"] == "2" and ipaddress.ip_address(p["ip.src"]) in ipaddress.ip_network("10.9.0.0/16")
            assert "xdp capture: captured=20 written=20 lost=0" in err, err
            rc, st, _ = box.ctl("filter", "status", json_out=True)
            assert st["counters"]["captured"] == 20 and st["counters"]["capture_lost"] == 0
            # --no-xdp (or any regionfwd-only criterion) leaves them out.
            f2 = str(tmp_path / "noxdp.pcapng")
            go = lab.armed_sender("xca1", SEND)
            cap = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "--drops-only", "--no-xdp", "--duration", "3",
                                    "--filter", "not host 2.2.2.2", "-w", f2], stdout=subprocess.PIPE, text=True)
            capture_running(tmp_path, 2, f2)
            go()
            assert cap.wait(30) == 0
            assert tshark(f2) == []
            # With regionfwd's drops too, both sources in one file. Of
            # regionfwd's drops (2.2.2.2, a million in 3 s) the filter keeps
            # one flow's: the file stays small enough to dissect.
            f3 = str(tmp_path / "both.pcapng")
            go = lab.armed_sender("xca1", SEND)
            cap = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "--drops-only", "--duration", "3",
                                    "--filter", "net 10.9.0.0/16 or (host 2.2.2.2 and udp src port 1004)",
                                    "-w", f3], stdout=subprocess.PIPE, text=True)
            capture_running(tmp_path, 3, f3)
            go()
            assert cap.wait(30) == 0
            srcs = {verdict(p["frame.comment"])["source"] for p in tshark(f3)}
            assert srcs == {"regionfwd", "xdp"}, srcs
        finally:
            if go is not None and go.proc.poll() is None:  # failed before go(): never sends later
                go.proc.kill()
            box.stop()
            subprocess.run(["rm", "-rf", pin])


def test_over_tcp_needs_a_write_credential(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, text in (("write.tok", "w-s3cret-token-0123456789"), ("read.tok", "r-s3cret-token-0123456789")):
        (tmp_path / name).write_text(text + "\n")
        (tmp_path / name).chmod(0o600)
    box = Box(tmp_path, "cap-tcp", steady=True, node_extra=CAPTURE_NODE, regiond_args=("--listen", f"127.0.0.1:{port}",
                                                 "--token-file", str(tmp_path / "write.tok"),
                                                 "--read-token-file", str(tmp_path / "read.tok")))
    try:
        url = ["--url", f"http://127.0.0.1:{port}"]
        # Packet contents are more than a read token may see.
        p = subprocess.run([REGIONCTL, *url, "--token-file", str(tmp_path / "read.tok"), "capture", "--count", "1"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and "forbidden (403)" in p.stderr, p.stderr
        f = str(tmp_path / "tcp.pcapng")
        p = subprocess.run([REGIONCTL, *url, "--token-file", str(tmp_path / "write.tok"), "capture", "--count", "25",
                            "-w", f], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        pkts = tshark(f)
        assert len(pkts) == 25 and all(verdict(x["frame.comment"])["source"] == "regionfwd" for x in pkts)
    finally:
        box.stop()


def test_stalled_client_frees_the_slot(box):
    """A client that stops reading but keeps its connection (`regionctl
    capture -w - | less`, left open) must not keep the one capture slot:
    once the capture's duration and a grace have passed, or regionfwd ended
    it for want of reads, regiond closes that connection and the next
    capture runs."""
    for n, body in ((1, {"duration_s": 2}), (3, {})):  # capture 2 is the probe's
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(60)
            s.connect(box.api)
            data = json.dumps(body).encode()
            s.sendall(b"POST /v1/capture HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
            got = b""
            while b"\r\n\r\n" not in got or len(got) < got.index(b"\r\n\r\n") + 100:
                chunk = s.recv(4096)
                assert chunk, got
                got += chunk
            assert got.startswith(b"HTTP/1.1 200"), got[:200]
            wait_for(lambda: f"capture {n} started" in open(box.tmp / "fwd.log").read(), what=f"capture {n}")
            # From here on nothing is read: the traffic (no filter, full
            # speed) fills the socket's buffers in a moment.
            wait_for(lambda: capture(box, "--count", "1")[0] == 0, timeout=90,
                     what=f"a capture while capture {n}'s client stalls")
            # regiond closed the stalled connection: what it holds drains
            # to its end.
            closed = False
            try:
                while s.recv(1 << 20):
                    pass
                closed = True
            except ConnectionResetError:
                closed = True
            assert closed
        finally:
            s.close()


GRACE_S = 10  # CTL_CAPTURE_GRACE_MS
DRAIN_BYTES = 64 * 1024  # CTL_CAPTURE_DRAIN_BYTES
LEASE_S = 10  # FWD_CAPTURE_LEASE_MS: regionfwd ends a capture not read for this long
CHUNK = 4 * 1024 * 1024  # DP_CAP_BUF_MAX: the most one read of regionfwd hands over
HOLD_MAX = 16 * 1024 * 1024  # CTL_CAPTURE_HOLD_MAX
SOCKET_BUFFERS = 512 * 1024  # what the sockets between regiond and the test take at once


def test_slow_steady_reader_gets_the_whole_file(box, tmp_path):
    """A client slower than the capture but steady (a big capture over a
    slow link) takes longer than the grace to drain what the capture left:
    it keeps its connection while it takes at least DRAIN_BYTES a grace, and
    gets the whole file, every packet and the end."""
    n, rate = 12000, 128 * 1024  # about 2.4 MB at 128 KiB/s: far past the grace
    path = tmp_path / "slow.pcapng"
    p = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "--count", str(n), "-w", "-"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    total, t0 = 0, time.monotonic()
    try:
        with open(path, "wb") as f:
            while True:
                chunk = p.stdout.read1(8192)
                if not chunk:
                    break
                f.write(chunk)
                total += len(chunk)
                ahead = total / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode()
    assert rc == 0 and f"capture: {n} packets written" in err, (rc, total, err)
    assert packet_count(str(path)) == n
    assert "end=count reached" in err, err
    # What the test means: even less what the socket's buffers took at
    # once (some 0.5 MB), draining took longer than the grace.
    assert (total - 512 * 1024) / rate > GRACE_S + 2, total


def slow_running_capture(box, path, rate, run_s, on_tick=None):
    """regionctl capture -w - of a running capture, read at `rate` until
    SIGINT at `run_s` (on_tick(elapsed, total) may return a new rate, None:
    no pacing), then to its end. (rc, stderr, bytes at SIGINT, bytes in all,
    whether it was interrupted, when the stream ended)."""
    p = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "-w", "-"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    total, t0, interrupted, ended, at_int = 0, time.monotonic(), False, None, None
    try:
        with open(path, "wb") as f:
            while True:
                chunk = p.stdout.read1(8192)
                if not chunk:
                    ended = time.monotonic() - t0
                    break
                f.write(chunk)
                total += len(chunk)
                now = time.monotonic() - t0
                if on_tick:
                    rate = on_tick(now, total)
                if not interrupted and run_s is not None and now >= run_s:
                    p.send_signal(signal.SIGINT)
                    interrupted, at_int = True, total
                ahead = total / rate - now if rate else 0
                if ahead > 0 and not interrupted:
                    time.sleep(ahead)
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return rc, p.stderr.read().decode(), at_int, total, interrupted, ended


def test_slow_steady_reader_of_a_running_capture(box, tmp_path):
    """While a capture runs, regiond reads regionfwd only once the client
    took what it holds, and regionfwd ends a capture not read for 10 s: a
    client at 256 KiB/s would take 16 s over one 4 MiB chunk (cut some 11 s
    in before). It keeps the capture (regiond reads ahead for a client that
    keeps taking), until its Ctrl-C, with a file read whole.

    Ctrl-C at 16 s: past where it was cut, and before the hold cap can trip
    whatever this box's speed. A read-ahead comes at most every half lease
    (5 s) and adds at most one chunk, and the cap stops the capture only
    once 16 MiB are held before one, that is four chunks on top of each
    other: not before the fifth read, 20 s in."""
    rate, run_s = 256 * 1024, 16
    assert run_s < (HOLD_MAX // CHUNK) * LEASE_S / 2
    rc, err, at_int, total, interrupted, ended = slow_running_capture(
        box, tmp_path / "running.pcapng", rate, run_s)
    assert interrupted, f"the stream ended after {ended:.1f} s, {total} bytes: {err}"
    assert rc == 0 and "(stopped at Ctrl-C)" in err and "end=stopped" in err, (rc, err)
    assert packet_count(str(tmp_path / "running.pcapng")) > 0
    # What the test means: the capture kept the client busy at its rate for
    # longer than a lease past what the sockets hold, so without reading
    # ahead regionfwd's lease would have run out under it. A box too slow to
    # capture faster than the client reads would pass without the scenario.
    assert (at_int - SOCKET_BUFFERS) / rate > LEASE_S + 2, \
        f"{at_int} bytes in {run_s} s: the capture did not outpace a {rate} B/s client"
    log = open(box.tmp / "regiond.log").read()
    assert "takes less than the capture makes" not in log, log[-2000:]


def test_regionfwd_lost_with_nothing_held_ends_the_file_whole(box, tmp_path):
    """regionfwd goes away while the client has taken all it handed over
    (a client as fast as the capture): the stream was aborted, regionctl
    exit 3 "cut short", where with bytes held (the test below) the same
    loss ended the file whole, exit 0. Which one an operator got depended
    on the client's speed. Now both end whole, regiond's statistics block
    saying why."""
    path = tmp_path / "gone.pcapng"
    p = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "-w", str(path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: path.exists() and path.stat().st_size > 4096, timeout=30, what="the stream's first packets")
        box.fwd.kill()
        box.fwd.wait()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0 and "cut short" not in err and "end=regionfwd failed" in out + err, (p.returncode, out, err)
    assert packet_count(str(path)) > 0
    blocks = pcapng_blocks(str(path))
    assert any("end=regionfwd failed" in c for c in isb_comments(blocks)), isb_comments(blocks)
    log = open(box.tmp / "regiond.log").read()
    if re.search(r"capture \d+ ended: regionfwd failed \(.*\) while \d+ bytes were held", log):
        pytest.skip("regiond held bytes at the kill: the next test's case, not this one's")
    assert re.search(r"capture \d+ ended: regionfwd failed \(.*\) with nothing held for the client; the file "
                     r"ends there", log), log[-2000:]


def test_regionfwd_lost_while_held_keeps_the_file(box, tmp_path):
    """regionfwd goes away (here SIGKILL; a lapsed lease or a restart alike)
    while regiond holds megabytes the slow client has not taken: the read
    ahead fails, and what was held is still sent, the capture ending there
    with regiond's statistics block saying why; the file is whole and
    regionctl exits 0. (It was the stream aborted, the held bytes lost.)"""
    rate, kill_at = 256 * 1024, 7.0  # after the first read-ahead (5 s): some 6 MiB held
    state = {"killed": None, "after": 0}

    def tick(now, total):
        if state["killed"] is None and now >= kill_at:
            box.fwd.kill()
            box.fwd.wait()
            state["killed"] = total
        if state["killed"] is not None:
            state["after"] = total - state["killed"]
            # the next read-ahead (within 5 s) fails: then as fast as it comes
            return None if now >= kill_at + 6 else rate
        return rate

    path = tmp_path / "lost.pcapng"
    rc, err, _, total, _, ended = slow_running_capture(box, path, rate, None, on_tick=tick)
    assert state["killed"] is not None, f"the stream ended after {ended:.1f} s, {total} bytes: {err}"
    assert rc == 0 and "end=regionfwd failed" in err, (rc, err)
    assert packet_count(str(path)) > 0
    log = open(box.tmp / "regiond.log").read()
    m = re.search(r"regionfwd failed \(.*\) while (\d+) bytes were held for the client; they are sent", log)
    # A box too slow to capture faster than the client reads holds nothing
    # by the kill: the sanitizer stage, beside six other groups (once, in a
    # fresh check). That ends the same way (the next test); the release
    # stage runs this one too, where the capture outpaces the client.
    if m is None and os.environ.get("SANITIZE", "none") not in ("", "none"):
        assert re.search(r"regionfwd failed \(.*\) with nothing held for the client", log), log[-2000:]
        return
    assert m, log[-2000:]
    # What regiond held when the read-ahead failed all came after the kill,
    # and the file is whole blocks, with regiond's statistics block saying
    # why it ended (written behind the held bytes). Not a fixed size: how much
    # regionfwd had captured by the read-ahead depends on the load (the
    # sanitizer stage once held 0.9 MiB where 1.5 was assumed).
    held = int(m.group(1))
    assert 0 < held <= state["after"], (held, state)
    blocks = pcapng_blocks(str(path))
    assert any("end=regionfwd failed" in c for c in isb_comments(blocks)), isb_comments(blocks)


def pcapng_blocks(path):
    """Every block of a pcapng file as (type, body), its framing checked
    whole: each block's two lengths agree and the last one ends the file."""
    data = open(path, "rb").read()
    assert data[:4] == b"\x0a\x0d\x0d\x0a" and data[8:12] == b"\x4d\x3c\x2b\x1a", data[:16]
    blocks, off = [], 0
    while off < len(data):
        assert off + 12 <= len(data), f"a partial block at {off} of {len(data)}"
        btype, blen = struct.unpack_from("<II", data, off)
        assert blen >= 12 and blen % 4 == 0 and off + blen <= len(data), (off, btype, blen, len(data))
        assert struct.unpack_from("<I", data, off + blen - 4)[0] == blen, (off, btype, blen)
        blocks.append((btype, data[off + 8:off + blen - 4]))
        off += blen
    return blocks


def isb_comments(blocks):
    """The comments (option 1) of the interface statistics blocks."""
    out = []
    for btype, body in blocks:
        if btype != 5:
            continue
        off = 12  # interface id, timestamp high and low
        while off + 4 <= len(body):
            code, olen = struct.unpack_from("<HH", body, off)
            if code == 0:
                break
            if code == 1:
                out.append(body[off + 4:off + 4 + olen].decode("utf-8", "replace"))
            off += 4 + (olen + 3) // 4 * 4
    return out


def vm_kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_hold_cap_stops_a_capture_its_client_cannot_keep_up_with(box, tmp_path):
    """While a capture runs, regiond reads ahead for a slow client and holds
    what it has not taken; once it holds HOLD_MAX, the client cannot keep up
    and the capture is stopped (api.md, regionctl.md): regiond logs why, the
    held bytes stay bounded (the cap, the chunk read before it tripped and
    the stopping read: some 24 MiB), and the client still gets a whole file
    ending in regionfwd's statistics block with end=stopped, regionctl
    exiting 0. regiond and regionfwd go on: the next capture runs.

    The client reads at 128 KiB/s (640 KiB a read-ahead, enough to keep the
    lease) while the traffic fills regionfwd's 4 MiB buffer between two
    reads: held grows by some 3.4 MiB every 5 s and the cap trips some 25 s
    in; from then on the client reads as fast as it can."""
    # Under a sanitizer, beside the suite's other groups on two cores,
    # regionfwd may make the capture slower: more time to trip and drain
    # (a fresh check's ASan stage once ran past 50 s).
    slow = os.environ.get("SANITIZE", "none") not in ("", "none")
    rate, trip_by, drain_by = 128 * 1024, 120 if slow else 50, 60 if slow else 20
    log_path = box.tmp / "regiond.log"
    path = tmp_path / "capped.pcapng"
    hwm0 = vm_kib(box.rd.pid, "VmRSS")
    p = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "-w", "-"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    total, t0, tripped, at_trip, ended, looked = 0, time.monotonic(), None, None, None, 0.0
    try:
        with open(path, "wb") as f:
            while True:
                chunk = p.stdout.read1(65536)
                now = time.monotonic() - t0
                if not chunk:
                    ended = now
                    break
                f.write(chunk)
                total += len(chunk)
                if tripped is None and now - looked >= 0.5:
                    looked = now
                    if "takes less than the capture makes" in open(log_path).read():
                        tripped, at_trip = now, total
                if tripped is None:
                    if now > trip_by:
                        break  # the cap never tripped: reported below
                    ahead = total / rate - now
                    if ahead > 0:
                        time.sleep(ahead)
                elif now > tripped + drain_by:
                    break  # the stream did not end once the capture stopped
        if ended is None:
            p.send_signal(signal.SIGINT)
        # Its output read to the end: regionctl, stopped, still writes what
        # it has (it once sat blocked on a full pipe no one read, and the
        # wait timed out instead of the test saying why it stopped).
        _, err_b = p.communicate(timeout=60)
        rc = p.returncode
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = err_b.decode()
    log = open(log_path).read()
    assert tripped is not None, \
        f"no hold cap within {trip_by} s ({total} bytes at {rate} B/s): {err} {log[-1500:]}"
    assert ended is not None, f"the stream went on {drain_by} s after the cap tripped ({total} bytes): {err}"
    assert rc == 0 and "cut short" not in err and "end=stopped" in err, (rc, err)
    # What regiond held when the cap tripped, as it logged it: at least the
    # cap (that is what trips it), at most the cap and one more chunk.
    held = int(re.search(r"\((\d+) bytes held for it\): stopped", log).group(1))
    assert HOLD_MAX <= held < HOLD_MAX + CHUNK, held
    # Everything the client took after the trip was held by regiond then,
    # or came with the stopping read, or sat in the sockets' buffers.
    after = total - at_trip
    assert after <= HOLD_MAX + 2 * CHUNK + SOCKET_BUFFERS, (after, at_trip, total)
    if os.environ.get("SANITIZE", "none") in ("", "none"):
        # and regiond's memory with it: its peak, over what it had before,
        # is the held bytes and a chunk or two in flight, not the capture
        hwm = vm_kib(box.rd.pid, "VmHWM")
        assert (hwm - hwm0) * 1024 < HOLD_MAX + 4 * CHUNK + (16 << 20), (hwm0, hwm)
    # A whole file: every block framed, regionfwd's statistics block last
    # of its own saying why it ended, read whole by capinfos.
    blocks = pcapng_blocks(str(path))
    ends = [c for c in isb_comments(blocks) if c.startswith("regionfwd capture")]
    assert len(ends) == 1 and "end=stopped" in ends[0], ends
    assert packet_count(str(path)) == sum(1 for b in blocks if b[0] == 6) > 0
    assert box.rd.poll() is None and box.fwd.poll() is None
    rc, out, err = capture(box, "--count", "3", "-w", str(tmp_path / "next.pcapng"))
    assert rc == 0 and packet_count(str(tmp_path / "next.pcapng")) == 3, (rc, err)


def test_capture_gives_up_on_a_silent_regiond(box, tmp_path):
    """Once a capture's stream flows, only a silence bounds it
    (regionctl.md): --timeout S of nothing from regiond. A regiond stopped
    mid-capture (here SIGSTOP once bytes have come) ends it after that
    silence: exit 3, "the capture stopped: nothing from regiond within S s",
    what came is in the file. On waking, regiond frees the capture slot."""
    silence_s = 3
    path = tmp_path / "silent.pcapng"
    p = subprocess.Popen([REGIONCTL, "-s", box.api, "--timeout", str(silence_s), "capture", "-w", str(path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped = None
    try:
        wait_for(lambda: path.stat().st_size > 0, timeout=30, what="the stream's first bytes")
        os.kill(box.rd.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        rc = p.wait(timeout=silence_s + 40)
        took = time.monotonic() - stopped
    finally:
        if stopped is not None:
            os.kill(box.rd.pid, signal.SIGCONT)
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    assert rc == 3, (rc, err)
    assert f"regionctl: the capture stopped: nothing from regiond within {silence_s} s" in err, err
    # not sooner than the silence (what the sockets held came at once),
    # and not much later
    assert silence_s - 0.5 <= took < silence_s + 20, (took, err)
    assert path.stat().st_size > 0
    wait_for(lambda: capture(box, "--count", "1")[0] == 0, timeout=60, what="a capture after regiond woke")


def test_ctrl_c_before_regiond_answers_is_said(box, tmp_path):
    """A Ctrl-C before regiond answers (here a stopped regiond) ends the
    command saying so. A review's find: the guard on stdout's writes once
    applied to stderr too, and dropped that line once the signal came, so
    regionctl exited 3 without a word."""
    os.kill(box.rd.pid, signal.SIGSTOP)
    try:
        p = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "-w", "-"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    finally:
        os.kill(box.rd.pid, signal.SIGCONT)
    assert p.returncode == 3 and "interrupted before regiond answered: nothing captured" in err, \
        (p.returncode, err)
    assert out == ""


def test_capture_appended_to_a_file_keeps_what_it_held(box, tmp_path):
    """`regionctl capture -w - >> FILE`: stdout is never emptied (it once
    was, by the truncation meant for -w FILE, wiping what FILE held); the
    capture follows what was there."""
    path = tmp_path / "log.bin"
    path.write_bytes(b"kept\n")
    with open(path, "ab") as f:
        p = subprocess.run([REGIONCTL, "-s", box.api, "capture", "--count", "3", "-w", "-"],
                           stdout=f, stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    data = path.read_bytes()
    assert data.startswith(b"kept\n") and data[5:9] == b"\x0a\x0d\x0d\x0a", data[:16]
    (tmp_path / "cap.pcapng").write_bytes(data[5:])
    assert packet_count(str(tmp_path / "cap.pcapng")) == 3


def test_a_closed_stdout_or_stderr_is_never_another_descriptor(box, tmp_path):
    """A probe's find: with stdout closed (`>&-`) regiond's socket became
    descriptor 1 and the pcapng was written back into regiond's own
    connection (exit 141, nothing said); with stderr closed the capture
    file became descriptor 2 and a message landed inside the pcapng. A
    capture to a closed stdout is refused now, and a closed stderr is
    /dev/null: the file stays whole."""
    p = subprocess.run(["bash", "-c", 'exec "$0" -s "$1" capture --count 4 -w - >&-', REGIONCTL, box.api],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "stdout is closed" in p.stderr, (p.returncode, p.stderr)
    p = subprocess.run(["bash", "-c", 'exec "$0" -s "$1" capture --count 4 >&-', REGIONCTL, box.api],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "stdout is closed" in p.stderr, (p.returncode, p.stderr)
    path = tmp_path / "f.pcapng"
    p = subprocess.run(["bash", "-c", 'exec "$0" -s "$1" capture --count 4 -w "$2" 2>&-', REGIONCTL, box.api,
                        str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and packet_count(str(path)) == 4, (p.returncode, p.stdout)


def test_ctrl_c_ends_json_lines_on_a_terminal_nobody_reads(box):
    """A probe's find: `regionctl -j capture` on a terminal kept glibc's own
    stdout, which the guard on the output does not see: a terminal that
    stopped reading held it past Ctrl-C and SIGTERM, only SIGKILL ended it.
    Now one Ctrl-C ends it within the 10 s a reader is given, the summary
    too (on stdout with -j: it once blocked there once the guard was
    off: where nobody reads, it is given up after 10 s as well)."""
    import pty
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([REGIONCTL, "-s", box.api, "-j", "capture"], stdout=slave, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        try:
            n = len(re.findall(r"capture \d+ started", open(box.tmp / "fwd.log").read()))
            wait_for(lambda: len(re.findall(r"capture \d+ started", open(box.tmp / "fwd.log").read())) > n,
                     what="the capture running")
            time.sleep(3)  # the terminal's buffer fills: nobody reads it
            p.send_signal(signal.SIGINT)
            try:
                p.wait(40)
            except subprocess.TimeoutExpired:
                pytest.fail("regionctl -j capture ignored Ctrl-C on a terminal nobody reads")
            err = p.stderr.read().decode()
            assert p.returncode == 0, (p.returncode, err)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    finally:
        os.close(master)
        os.close(slave)


def test_capture_with_a_duration_waits_past_it_for_a_silent_regiond(box, tmp_path):
    """With --duration D, regiond ends the stream by D s: regionctl's bound
    on a silence is then D s and 30 s (regionctl.md), not D alone, so a
    regiond that is only slow (here stopped for three times D) loses
    nothing; once it runs again the capture ends as asked, exit 0. (Giving
    up after the 32 s is the --timeout test's path: the same wait.)"""
    path = tmp_path / "late.pcapng"
    p = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "--duration", "2", "-w", str(path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped = False
    try:
        wait_for(lambda: path.stat().st_size > 0, timeout=30, what="the stream's first bytes")
        os.kill(box.rd.pid, signal.SIGSTOP)
        stopped = True
        time.sleep(6)
        assert p.poll() is None, p.stderr.read()  # a bound of D alone would have ended it
        os.kill(box.rd.pid, signal.SIGCONT)
        stopped = False
        rc = p.wait(timeout=60)
    finally:
        if stopped:
            os.kill(box.rd.pid, signal.SIGCONT)
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    assert rc == 0, (rc, err)
    assert "nothing from regiond" not in err, err
    assert packet_count(str(path)) > 0


class Trickle(UnixProxy):
    """A proxy in front of regiond's API socket: what regiond sends goes on
    to the client `step` bytes every `gap` s for `slow_s` s from its first
    byte, then as fast as it comes."""

    def __init__(self, path, upstream, step, gap, slow_s):
        self.step, self.gap, self.slow_s = step, gap, slow_s
        super().__init__(path, upstream, backlog=4)

    def downward(self, client, up):
        held, lock, done = bytearray(), threading.Lock(), threading.Event()

        def read():  # regiond's answer, held for the pacing below
            try:
                while True:
                    b = up.recv(1 << 20)
                    if not b:
                        break
                    with lock:
                        held.extend(b)
            except OSError:
                pass
            done.set()

        threading.Thread(target=read, daemon=True).start()
        t0 = None
        while True:
            with lock:
                if t0 is None and held:
                    t0 = time.monotonic()
                slow = t0 is not None and time.monotonic() - t0 < self.slow_s
                n = min(len(held), self.step) if slow else len(held)
                out = bytes(held[:n])
                del held[:n]
                empty = not held
            if out:
                client.sendall(out)
            elif done.is_set() and empty:
                return
            time.sleep(self.gap if slow else 0.01)


def test_capture_slow_but_flowing_is_not_silence(box, tmp_path):
    """The silence bound is on each wait, not on the stream: a capture whose
    bytes come slowly but steadily (here 2 KiB a second for 12 s, through a
    proxy, --timeout 4) is not given up after 4 s: it ends with its count,
    exit 0, the file whole."""
    proxy = Trickle(str(tmp_path / "slow.sock"), box.api, 2048, 1.0, 12)
    path = tmp_path / "slow.pcapng"
    try:
        t0 = time.monotonic()
        p = subprocess.run([REGIONCTL, "-s", str(tmp_path / "slow.sock"), "--timeout", "4", "capture",
                            "--count", "2000", "-w", str(path)], capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t0
    finally:
        proxy.close()
    assert p.returncode == 0 and p.stderr == "", (p.returncode, p.stderr)
    assert "capture: 2000 packets written" in p.stdout and "end=count reached" in p.stdout, p.stdout
    assert packet_count(str(path)) == 2000
    # What the test means: the stream took far longer than the bound.
    assert took > 10, took


def test_trickling_client_loses_the_slot(box):
    """A client that takes a few bytes a second once the capture is over
    (less than DRAIN_BYTES a grace) is no steady reader: its connection is
    closed a grace after the end, the stream cut short, and the next
    capture runs. It reads at 512 KiB/s until regiond has the capture's
    last chunk (megabytes: the traffic fills regionfwd's buffer between two
    reads), so that it is the rule for a capture that is over that cuts it,
    not regionfwd's lease."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stop = threading.Event()
    tail = [b""]

    def trickle():
        try:
            while not stop.is_set():
                chunk = s.recv(200)
                if not chunk:
                    return
                tail[0] = (tail[0] + chunk)[-16:]
                time.sleep(0.25)  # 800 B/s: DRAIN_BYTES would take 80 s
        except OSError:
            return

    try:
        s.settimeout(60)
        s.connect(box.api)
        data = json.dumps({"duration_s": 2}).encode()
        s.sendall(b"POST /v1/capture HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
        head = s.recv(200)
        assert head.startswith(b"HTTP/1.1 200"), head
        t0, total = time.monotonic(), 0
        while "capture 1 ended at regionfwd" not in open(box.tmp / "regiond.log").read():
            assert time.monotonic() < t0 + 30, "capture 1 did not end"
            chunk = s.recv(1 << 16)
            assert chunk, "closed while read at 512 KiB/s"
            total += len(chunk)
            time.sleep(max(0, total / (512 * 1024) - (time.monotonic() - t0)))
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        wait_for(lambda: capture(box, "--count", "1")[0] == 0, timeout=90,
                 what="a capture while capture 1's client trickles")
        stop.set()
        t.join(timeout=30)
        # regiond closed it: what it holds drains, without the stream's end
        rest = tail[0]
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                rest = (rest + chunk)[-16:]
        except ConnectionResetError:
            pass
        assert not rest.endswith(b"0\r\n\r\n"), rest
    finally:
        stop.set()
        s.close()


# Frames unlike the Box's: an IP header with options (24 bytes: an indirect
# load's index, the header length, is not 20) and a payload of other bytes.
ODD = [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
       IP(src="35.161.0.1", dst="198.51.100.1", options=[IPOption_NOP()] * 4) /
       UDP(sport=2000 + i, dport=(53, 443)[i % 2]) / Raw(bytes([0x71 + i % 4]) + b"rstuvwxyz") for i in range(64)]

# Indirect loads (udp[...], tcp[...]: from the IP header's length) of every
# size, absolute ones, and arithmetic on them.
FILTERS = ["udp[8] = 0x70", "udp[8:4] = 0x70707070", "udp[9] = 0x70", "udp[0] = 3", "udp[8:2] = 0x7070",
           "udp[2:2] = 53", "ip[9] = 17", "ether[42:4] = 0x70707070", "udp[8] = 0x71", "udp[9] = 0x72",
           "udp[8:4] = 0x71727374", "udp[8:4] & 0xff00ffff = 0x73007374", "udp[1] & 1 = 1",
           "udp[8] + udp[9] = 0xe0", "udp[8] > 0x72", "ip[0] & 0xf = 6 and udp[8] = 0x74",
           "ip[2:2] - ((ip[0] & 0xf) << 2) = 18", "len > 60", "udp[8:4] = 0"]


def libpcap(expr):
    """libpcap's own verdict on a frame for filter @expr (pcap_offline_filter)."""
    import ctypes
    import ctypes.util

    class Prog(ctypes.Structure):
        _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]

    class Hdr(ctypes.Structure):
        _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long), ("caplen", ctypes.c_uint32),
                    ("len", ctypes.c_uint32)]

    lib = ctypes.CDLL(ctypes.util.find_library("pcap"))
    lib.pcap_open_dead.restype = ctypes.c_void_p
    p = ctypes.c_void_p(lib.pcap_open_dead(1, 65535))  # DLT_EN10MB
    prog = Prog()
    assert lib.pcap_compile(p, ctypes.byref(prog), expr.encode(), 1, ctypes.c_uint32(0xffffffff)) == 0, expr

    def match(frame):
        h = Hdr(0, 0, len(frame), len(frame))
        return lib.pcap_offline_filter(ctypes.byref(prog), ctypes.byref(h), frame) != 0
    return match


def packets(path):
    """Each packet of a pcapng file: (its bytes, its metadata)."""
    from scapy.utils import RawPcapNgReader
    r = RawPcapNgReader(path)
    try:
        return list(r)
    finally:
        r.close()


def frames(path):
    return [data for data, _ in packets(path)]


def test_filters_agree_with_libpcap(tmp_path):
    box = Box(tmp_path, "cap-filters", steady=True, node_extra=CAPTURE_NODE, extra_packets=ODD)
    try:
        traffic = [bytes(p) for p in rdpcap(str(tmp_path / "in.pcap"))]
        assert len({f[14] & 0xf for f in traffic}) == 2  # both header lengths are sent
        for i, expr in enumerate(FILTERS + [f"not ({e})" for e in FILTERS]):
            match = libpcap(expr)
            expected = sum(map(match, traffic))
            f = str(tmp_path / f"f{i}.pcapng")
            rc, out, err = capture(box, "-w", f, "--count", "200", "--duration", "2", "--filter", expr)
            assert rc == 0, (expr, err)
            got = frames(f)
            # None that libpcap refuses, and some when libpcap matches any
            # of the traffic (which loops at full speed: the count is
            # reached at once).
            wrong = [g.hex() for g in got if not match(g)]
            assert wrong == [], (expr, len(got), wrong[:3])
            assert len(got) == (200 if expected else 0), (expr, expected, len(got), out)
    finally:
        box.stop()


@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_xdp_drops_keep_their_rule_names_across_table_changes(tmp_path):
    """A capture outlives table changes: the drops of a generation applied
    while it ran were labelled rule=#ID, the names having been taken once at
    its start (found by a hostile probe). Each drop is named by the rule of
    the generation that decided it."""
    pin = f"/sys/fs/bpf/rfwd-cap-gens-{os.getpid()}"
    tables = [("deny-lab", "    - {name: deny-lab, action: drop, prefixes: [10.9.0.0/16]}\n"),
              ("deny-new", "    - {name: zz-pass, action: pass, prefixes: [10.50.0.0/16]}\n"
                           "    - {name: deny-new, action: drop, prefixes: [10.9.0.0/16]}\n"),
              ("deny-third", "    - {name: deny-third, action: drop, prefixes: [10.9.0.0/16]}\n"
                             "    - {name: deny-new, action: drop, prefixes: [10.66.0.0/16]}\n")]
    with netns.VethLab("rfwd-cap-gens", [("xcg0", "xcg1")]) as lab:
        box = Box(tmp_path, "cap-gens", steady=True, node_extra=CAPTURE_NODE, regiond_args=("--xdp-iface", "xcg0", "--bpf-pin-dir", pin))
        senders = []
        try:
            def apply(i):
                t = tmp_path / f"g{i}.yaml"
                t.write_text(open(DEMO).read() + "\nfilters:\n  default: pass\n  rules:\n" + tables[i][1])
                rc, _, err = box.ctl("apply", str(t))
                assert rc == 0, err
            apply(0)
            gen0 = box.gen()
            senders = [lab.armed_sender("xcg1", SEND) for _ in tables]
            f = str(tmp_path / "gens.pcapng")
            # Ended by its count, the 60 drops the senders make: a window of
            # 10 s once ended before the third generation's frames (one of
            # 20 captured), three applies taking most of it in a loaded
            # sanitizer stage. A frame missing keeps it to its duration.
            cap = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", "--drops-only", "--count", "60",
                                    "--duration", "120", "--filter", "not host 2.2.2.2", "-w", f],
                                   stdout=subprocess.PIPE, text=True)
            capture_running(tmp_path, 1, f)
            for i, go in enumerate(senders):
                if i:
                    apply(i)
                go()
            assert cap.wait(180) == 0
            err = cap.stdout.read()
            seen = {}
            for p in tshark(f):
                v = verdict(p["frame.comment"])
                assert (v["source"], v["why"]) == ("xdp", "rule"), p
                seen[(v["gen"], v["rule"])] = seen.get((v["gen"], v["rule"]), 0) + 1
            want = {(str(gen0 + i), name): 20 for i, (name, _) in enumerate(tables)}
            assert seen == want, (seen, err)
            assert "capture: 60 packets written" in err, err
            # regionfwd's copy was stopped by regiond (end=stopped); the XDP
            # side's block says the count, over both, ended it.
            assert re.search(r"xdp capture: captured=\d+ written=\d+ lost=0 end=count reached", err), err
        finally:
            for go in senders:
                if go.proc.poll() is None:
                    go.proc.kill()
            box.stop()
            subprocess.run(["rm", "-rf", pin])


# Frames the parser drops (non_ip, ipv4_truncated, ipv4_bad_checksum,
# ipv4_bad_header, martian_destination, martian_source), each its own
# bytes, after Box's 512 good ones: 525 frames, so that bursts of 32 take
# them in ever other places as the input loops.
PARSER_DROPS = [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02", type=0x88b5) / Raw(bytes([i]) * 46)
                for i in range(3)] + \
               [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
                IP(src="35.161.0.1", dst="198.51.100.1", len=400 + i) / UDP(sport=3000 + i, dport=53) /
                Raw(b"t" * 10) for i in range(3)] + \
               [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
                IP(src="35.161.0.1", dst="198.51.100.1", chksum=0x1234 + i) / UDP(sport=4000 + i, dport=53) /
                Raw(b"c" * 10) for i in range(2)] + \
               [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
                IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5000, dport=53) / Raw(b"6" * 10),
                Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
                IP(src="35.161.0.2", dst="198.51.100.1", ihl=3) / UDP(sport=6000, dport=53) / Raw(b"h" * 10),
                Ether(src="02:99:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") /
                IP(src="35.161.0.3", dst="255.255.255.255") / UDP(sport=68, dport=67) / Raw(b"d" * 10),
                Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
                IP(src="127.0.0.1", dst="198.51.100.1") / UDP(sport=7000, dport=53) / Raw(b"l" * 10),
                Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
                IPv6(src="fe80::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / UDP(sport=7100, dport=53) /
                Raw(b"k" * 10)]


def test_a_capture_keeps_the_arrival_order(tmp_path):
    """A burst's parser drops were copied in stage 1, ahead of the packets
    before them in the same burst: the file showed a false arrival order
    (its timestamps still rising), which tshark reads as out-of-order or
    retransmitted TCP that never happened."""
    box = Box(tmp_path, "cap-order", steady=True, node_extra=CAPTURE_NODE, extra_packets=PARSER_DROPS)
    try:
        traffic = [bytes(p) for p in rdpcap(str(tmp_path / "in.pcap"))]
        n = len(traffic)
        where = {f: i for i, f in enumerate(traffic)}
        assert n == 512 + len(PARSER_DROPS) == 525 and len(where) == n
        f = str(tmp_path / "all.pcapng")
        rc, out, err = capture(box, "-w", f, "--count", "1500")
        assert rc == 0, err
        recs = [(where[d], (m.tshigh << 32 | m.tslow) * 10**9 // m.tsresol) for d, m in packets(f)]
        got = [i for i, _ in recs]
        assert len(got) == 1500 and {i for i in got if i >= 512} == set(range(512, n)), got
        # Each frame after the one before it in the input's loop. The
        # capture may skip frames (its ring full, counted), even most of a
        # loop, which takes the worker far longer than 5 us (over 450
        # frames); a step back within a burst takes far less.
        back = [k for k in range(1, len(recs)) if 0 <= (got[k - 1] - got[k]) % n < 64 and
                recs[k][1] - recs[k - 1][1] < 5000]
        assert back == [], " | ".join(" ".join(f"{i}@{t % 10**7}" for i, t in recs[k - 20:k + 4])
                                      for k in back[:2])
        assert box.fwd_counters()["drops"]["non_ip"] > 0
        # The lines: a dropped frame with an IP header says its addresses
        # (it read "(not IP)"), an IPv6 address is bracketed before its port.
        rc, out, err = capture(box, "--reason", "ipv4_truncated", "--count", "1")
        assert rc == 0 and re.search(r"udp 35\.161\.0\.1:300[0-2] > 198\.51\.100\.1:53 \(malformed IPv4\) len",
                                     out), (out, err)
        # A header length of 12 bytes: what it puts where the ports would be
        # is the source address (printed as ports 9121 > 2), so no ports.
        rc, out, err = capture(box, "--reason", "ipv4_bad_header", "--count", "1")
        assert rc == 0 and re.search(r"udp 35\.161\.0\.2 > 198\.51\.100\.1 \(malformed IPv4\) len", out), (out, err)
        # A whole packet to a destination no router forwards: not "malformed".
        rc, out, err = capture(box, "--reason", "martian_destination", "--count", "1")
        assert rc == 0 and re.search(r"udp 35\.161\.0\.3:68 > 255\.255\.255\.255:67 len", out), (out, err)
        rc, out, err = capture(box, "--reason", "martian_source", "--filter", "ip", "--count", "1")
        assert rc == 0 and re.search(r"udp 127\.0\.0\.1:7000 > 198\.51\.100\.1:53 len", out), (out, err)
        # ... and behind IPv6 extension headers, the protocol after them
        # (it read "0 fe80::1 > 2001:db8::2", a probe).
        rc, out, err = capture(box, "--reason", "martian_source", "--filter", "ip6", "--count", "1")
        assert rc == 0 and "udp [fe80::1]:7100 > [2001:db8::2]:53 len" in out, (out, err)
        rc, out, err = capture(box, "--reason", "non_ip", "--count", "1")
        assert rc == 0 and "(not IP)" in out, (out, err)
        rc, out, err = capture(box, "--filter", "ip6", "--count", "1")
        assert rc == 0 and "udp [2001:db8::1]:5000 > [2001:db8::2]:53 len" in out, (out, err)
        p = subprocess.run([REGIONCTL, "-s", box.api, "-j", "capture", "--reason", "ipv4_bad_checksum", "--count",
                            "1"], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        j = json.loads(p.stdout.splitlines()[0])
        assert (j["src"], j["dst"], j["proto"], j["dport"]) == ("35.161.0.1", "198.51.100.1", "udp", 53), j
        assert j["sport"] in (4000, 4001), j
    finally:
        box.stop()


@pytest.mark.parametrize("args,signals", [(["-w", "-"], 1), ([], 1), (["-j"], 1), (["-w", "-"], 2), ([], 2)],
                         ids=["pcapng-once", "lines-once", "json-once", "pcapng-twice", "lines-twice"])
def test_ctrl_c_ends_a_capture_blocked_on_its_output(box, tmp_path, args, signals):
    """A probe's find: with stdout a pipe nobody reads (regionctl capture
    -w - | less, left), the writes blocked and retried after every signal:
    Ctrl-C and SIGTERM were both ignored, only SIGKILL ended it. Then a
    signal ended a blocked write at once, which abandoned a reader that was
    still reading, slowly (test_slow_steady_reader_of_a_running_capture).
    Now the first Ctrl-C asks regiond to stop and writes on while the reader
    takes bytes, giving up after 10 s in which it took none; a second one
    ends the write at once. What stood in stdout's buffer is dropped, the
    summary goes to stderr."""
    import time
    p = subprocess.Popen([REGIONCTL, "-s", box.api, "capture", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        n = len(re.findall(r"capture \d+ started", open(box.tmp / "fwd.log").read()))
        wait_for(lambda: len(re.findall(r"capture \d+ started", open(box.tmp / "fwd.log").read())) > n,
                 what="the capture running")
        time.sleep(2)  # the pipe (64 KiB) fills long before
        for i in range(signals):
            if i:
                time.sleep(1)
            p.send_signal(signal.SIGINT)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
            pytest.fail("regionctl ignored Ctrl-C with its stdout blocked")
        err = p.stderr.read().decode()
        said = '"interrupted":true' if args == ["-j"] else "(interrupted)"
        assert p.returncode == 0 and said in err, (p.returncode, err)
        stall = "stdout took nothing for 10 s after the Ctrl-C" in err
        assert stall == (signals == 1), err
        # The first Ctrl-C asked regiond to stop, from the blocked write.
        log = open(box.tmp / "regiond.log").read()
        assert re.search(r"capture \d+: stopped by ", log), log[-2000:]
        if signals == 1:
            return
        gone = wait_for(lambda: [line for line in open(box.tmp / "regiond.log")
                                 if "API on" in line and "Failed to send" in line],
                        what="libmicrohttpd's line for the client gone")
        assert all(" info regiond: " in line for line in gone), gone
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
