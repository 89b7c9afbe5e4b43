"""regionfwd's control socket: push, status, counters, explain; hostile
requests; and hundreds of generation swaps under traffic with no packet lost
or misrouted."""
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import netns  # noqa: E402
import ctlclient  # noqa: E402
from ctlclient import Ctl, frame, op_of  # noqa: E402
from preload import preload_shim  # noqa: E402
from dprun import (CAPTURE_POOL, NAP, POOL, Served, eal_args, pcap_in_null_out, read_pcaps, regionfwd_bin, start_regionfwd,  # noqa: E402
                   wait_pcap)

from scapy.all import IP, UDP, Ether, Raw, rdpcap, wrpcap  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "..", "data", "dp-table.yaml")


class Fwd(Served):
    """regionfwd with a control socket, fed forever from a pcap, output to net_null."""

    def __init__(self, tmp, prefix, pcap, table=TABLE, extra_node=""):
        super().__init__(tmp, prefix, pcap_in_null_out(pcap), table, extra_node)


def traffic(tmp, srcs, n=1024):
    pcap = str(tmp / "in.pcap")
    wrpcap(pcap, [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
                  IP(src=srcs[i % len(srcs)], dst="192.0.2.1") / UDP(sport=1000 + i, dport=53 + i % 2) /
                  Raw(b"x" * 10) for i in range(n)])
    return pcap


def test_push_status_explain_and_bad_requests(tmp_path):
    f = Fwd(tmp_path, "ctl-basic", traffic(tmp_path, ["10.9.0.1"]))
    try:
        st = f.ctl.call("status")
        assert st["ok"] and st["generation"]["id"] == 1 and st["workers"] == 1
        assert [p["name"] for p in st["ports"]] == ["in0", "out0", "out1"]
        doc = open(TABLE).read()
        # The same document: no-op, generation unchanged.
        r = f.ctl.call("push", document=doc, generation=7, name="same.yaml")
        assert r == {**r, "ok": True, "generation": 1, "noop": True}
        # A changed document becomes generation 7.
        doc2 = doc.replace("{region: r8,  service: any, action: steer, to: l-r8}",
                           "{region: r8,  service: any, action: steer, to: l-r16}")
        r = f.ctl.call("push", document=doc2, generation=7, name="changed.yaml")
        assert r["ok"] and r["generation"] == 7 and not r["noop"]
        e = f.ctl.call("explain", src="10.9.0.1", dst="192.0.2.1", proto="udp", sport=5, dport=80)
        assert e == {**e, "ok": True, "generation": 7, "region": "r8", "prefix": "10.0.0.0/8",
                     "service": "other", "policy": "r8/any", "action": "steer", "link": "l-r16",
                     "port": "out0", "drop_reason": None}
        e = f.ctl.call("explain", src="2001:db8:1:2::1", dst="2001:db8::9", proto="tcp", dport=443)
        assert (e["region"], e["prefix"], e["service"], e["link"]) == ("v6e", "2001:db8:1:2::1/128", "web", "l-v6e")
        e = f.ctl.call("explain", src="10.1.2.3", dst="192.0.2.1", proto="udp", dport=53)
        assert (e["region"], e["policy"], e["action"], e["drop_reason"]) == ("r24", "r24/any", "steer", None)
        e = f.ctl.call("explain", src="10.9.9.9", dst="192.0.2.1", proto="tcp", dport=53)
        assert (e["policy"], e["action"], e["link"], e["drop_reason"]) == ("r8/dns", "drop", None, "policy_drop")
        e = f.ctl.call("explain", src="192.0.2.77", dst="192.0.2.1", proto="udp", sport=1, dport=61000)
        assert e["group"] == "g" and e["link"] in ("ga", "gb")

        # Refusals change nothing and name the problem.
        bad = doc2.replace("10.1.2.128/25", "10.1.2.129/25")
        r = f.ctl.call("push", document=bad, generation=8, name="bad.yaml")
        assert not r["ok"] and r["error"]["code"] == "invalid_table"
        assert r["error"]["file"] == "bad.yaml" and r["error"]["path"] == "regions.r25.prefixes[0]"
        assert r["error"]["line"] == 11 and "host bits set" in r["error"]["reason"]
        resid = doc2 + "residency:\n  - {name: keep, region: r8, services: [any], allowed_tags: [x]}\n"
        r = f.ctl.call("push", document=resid, generation=8)
        assert not r["ok"] and "breaks residency rule 'keep'" in r["error"]["reason"]
        # An id past 2^53 - 1 (every JSON reader's exact integers): past
        # 2^63 it went out as a negative number in every status.
        r = f.ctl.call("push", document=doc, generation=2**53, name="far.yaml")
        assert not r["ok"] and r["error"]["code"] == "bad_request" and r["error"]["path"] == "generation", r
        assert f.ctl.call("status")["generation"]["id"] == 7
        # Malformed frames and requests: each refused with its reason, the
        # connection closed after a header it cannot trust, nothing changed.
        pb = ctlclient.pb()
        v1_json = struct.pack(">I", 40) + b'{"v": 1, "op": "status", "pad": "xxxxxx"}'
        ok_explain = ctlclient.explain_request("10.0.0.1", "10.0.0.2", "udp", dport=53)
        cases = [
            (v1_json, "unsupported_version", "magic"),               # a version-1 (JSON) client
            (frame(op_of("status"), b"", version=1), "unsupported_version", "version"),
            (frame(99, b""), "unknown_op", "op"),
            (frame(op_of("status"), b"", flags=0x4), "bad_request", "flags"),
            (frame(op_of("status"), b"", flags=ctlclient.REPLY), "bad_request", "flags"),  # a reply as a request
            (frame(op_of("status"), b"", reserved=7), "bad_request", "flags"),
            (frame(op_of("status"), b"", length=0x7FFFFFF0), "body_too_large", "length"),
            (frame(op_of("push"), b"\xff\xff\xff\xff"), "bad_request", "push"),  # not a PushRequest
            (frame(op_of("push"), pb.PushRequest(name="x").SerializeToString()), "bad_request", "document"),
            (frame(op_of("push"), pb.PushRequest(document=b"x", name="").SerializeToString()), "bad_request", "name"),
            # The name goes into log lines and the save: no control characters.
            (frame(op_of("push"), pb.PushRequest(document=doc.encode(), name="a\x1b[31m").SerializeToString()),
             "bad_request", "name"),
            (frame(op_of("delta"), pb.DeltaRequest(changes=b"x", name="a\nforged line").SerializeToString()),
             "bad_request", "name"),
            (frame(op_of("push"), pb.PushRequest(document=b"x", name="n", has_content=True,
                                                 content_db=[b""] * 5).SerializeToString()), "bad_request", "content_db"),
        ]
        for field, value in (("dst", bytes(16)), ("src", b"\x01\x02\x03"), ("proto", 300), ("dport", 70000),
                             ("payload", b"x" * 9217), ("given", ["a" * 300, "", "", ""]),
                             ("raw_given", None)):
            m = pb.ExplainRequest()
            m.CopyFrom(ok_explain)
            if field == "raw_given":
                # protobuf's Python side refuses bad UTF-8 in a string, so
                # the name is spliced into the wire form by hand (field 8).
                body = m.SerializeToString() + b"\x42\x03a\xffb"
                cases.append((frame(op_of("explain"), body), "bad_request", None))
                continue
            if field == "given":
                del m.given[:]
                m.given.extend(value)
            else:
                setattr(m, field, value)
            cases.append((frame(op_of("explain"), m.SerializeToString()), "bad_request", None))
        for req, code, path in cases:
            c = Ctl(f.sock)
            r = c.raw(req, "status")
            c.close()
            assert not r["ok"] and r["error"]["code"] == code, (req[:24], r)
            assert path is None or r["error"]["path"] == path, (req[:24], r)
        assert f.ctl.call("status")["generation"]["id"] == 7
        # A half frame closes only that connection.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(f.sock)
        s.sendall(frame(op_of("push"), b"", length=100)[:16] + b"\x0a\x05")
        s.close()
        c = f.ctl.call("counters")
        assert c["ok"] and c["packets"]["rx"] > 0 and c["generation"]["id"] == 7
        assert c["packets"]["rx"] == c["packets"]["tx"] + c["packets"]["dropped"]
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert not os.path.exists(f.sock)


def test_hundreds_of_swaps_under_traffic(tmp_path):
    """Two regions alternate between two links each, generation after
    generation, while the pcap replays forever. The input alternates r1, r2,
    r1, r2 ... so after rx packets, exactly ceil(rx/2) were r1's and
    floor(rx/2) r2's: r1's links must hold exactly the former and r2's the
    latter (no loss, no misroute), and the trap link nothing."""
    doc = ("regions: {{r1: {{prefixes: [10.1.0.0/16]}}, r2: {{prefixes: [10.2.0.0/16]}}}}\n"
           "links:\n"
           "  a1: {{port: out0, next_hop_mac: '02:00:00:00:00:01'}}\n"
           "  b1: {{port: out1, next_hop_mac: '02:00:00:00:00:02'}}\n"
           "  a2: {{port: out0, next_hop_mac: '02:00:00:00:00:03'}}\n"
           "  b2: {{port: out1, next_hop_mac: '02:00:00:00:00:04'}}\n"
           "  trap: {{port: out0, next_hop_mac: '02:00:00:00:00:05'}}\n"
           "policies:\n"
           "  - {{region: r1, service: any, action: steer, to: {l1}}}\n"
           "  - {{region: r2, service: any, action: steer, to: {l2}}}\n"
           "default: {{action: steer, to: trap}}\n"
           "description: 'swap {n}'\n")
    table = tmp_path / "t0.yaml"
    table.write_text(doc.format(l1="a1", l2="a2", n=0))
    f = Fwd(tmp_path, "ctl-swap", traffic(tmp_path, ["10.1.0.1", "10.2.0.1"]), str(table))
    # 100 under the sanitizers: memory errors of a swap show on any swap;
    # the release stage keeps 300 for the races.
    swaps = 100 if os.environ.get("SANITIZE", "none") not in ("", "none") else 300
    try:
        for n in range(1, swaps + 1):
            r = f.ctl.call("push", document=doc.format(l1="ab"[n % 2] + "1", l2="ab"[n % 2] + "2", n=n),
                           generation=n + 1)
            assert r["ok"] and r["generation"] == n + 1, r
        time.sleep(0.2)
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert "rx = tx + dropped: holds" in log
    # Exit report lines: "  a1  out0  up  <packets> <bytes>"
    pk = {m.group(1): int(m.group(2)) for m in re.finditer(r"^  (a1|b1|a2|b2|trap)\s+\S+\s+\S+\s+(\d+)", log, re.M)}
    m = re.search(r"rx (\d+)  tx (\d+)  dropped (\d+)", log)
    rx, tx, dropped = map(int, m.groups())
    assert rx > 100000 and dropped == 0 and rx == tx
    assert pk["a1"] + pk["b1"] == (rx + 1) // 2
    assert pk["a2"] + pk["b2"] == rx // 2
    assert pk["trap"] == 0
    assert min(pk["a1"], pk["b1"], pk["a2"], pk["b2"]) > 0  # both generations carried traffic
    # A publish returns only after a grace period, i.e. after the worker has
    # looped and so loaded the new pointer: it adopts every generation.
    assert re.search(r"^  generation_swaps\s+(\d+)$", log, re.M).group(1) == str(swaps + 1)


@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_fragments_follow_across_a_swap(tmp_path):
    """A datagram's first fragment is decided by generation 1 (link a1); the
    table then moves its region to b1; the later fragments must still follow
    the first to a1, and new datagrams go to b1. Real traffic over veth pairs
    in a network namespace of our own. IPv6 fragments: DPDK 22.11's
    net_af_packet asks the kernel to reassemble IPv4 (PACKET_FANOUT_FLAG_DEFRAG),
    so only IPv6 fragments reach the fast path as fragments here."""
    doc = ("regions: {{r1: {{prefixes: [10.1.0.0/16, '2001:db8:1::/48']}}}}\n"
           "links:\n"
           "  a1: {{port: out0, next_hop_mac: '02:00:00:00:00:a1'}}\n"
           "  b1: {{port: out0, next_hop_mac: '02:00:00:00:00:b1'}}\n"
           "policies: [{{region: r1, service: any, action: steer, to: {to}}}]\n")
    table = tmp_path / "t.yaml"
    table.write_text(doc.format(to="a1"))
    sock = str(tmp_path / "ctl.sock")
    frags = ("fr = fragment6(IPv6(src='2001:db8:1::5', dst='2001:db8:ff::1')/IPv6ExtHdrFragment(id=777)/"
             "UDP(sport=5, dport=9)/Raw(b'Z'*2000), 1000)\n")
    send = "sendp([Ether(dst='02:00:00:00:00:99')/p for p in pk], iface=IFACE, verbose=False)"
    with netns.VethLab("rfwd-test-frag", [("rff0", "rff1"), ("rfg0", "rfg1")]) as lab:
        node = tmp_path / "node.yaml"
        node.write_text("ports:\n"
                        "  in0: {device: 'net_af_packet_f0,iface=rff0', ingress: true}\n"
                        "  out0: {device: 'net_af_packet_f1,iface=rfg0'}\n"
                        # Each send starts a scapy process (a second or more on a
                        # loaded machine): the default 2 s could expire the first
                        # fragment's entry before the later ones arrive.
                        "frag_timeout_ms: 30000\n"
                        f"control_socket: {sock}\n" + NAP + POOL + CAPTURE_POOL)
        # --immediate-mode: each frame reaches the file as it comes, not
        # when the kernel's buffer block times out (a second later).
        cap = lab.popen_in_ns(["tcpdump", "--immediate-mode", "-U", "-n", "-i", "rfg1", "-w",
                               str(tmp_path / "cap.pcap"), "ip6 and not icmp6"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        # Send nothing before the capture runs: on a loaded machine tcpdump can
        # take longer to start than regionfwd (this test once lost frames so).
        assert b"listening on" in netns.readline_within(cap.stderr)
        log = tmp_path / "fwd.log"
        proc = start_regionfwd([regionfwd_bin()] + eal_args("ctl-fragswap") + [
            "--", "--node", str(node), "--table", str(table), "--stats-json", str(tmp_path / "s.json")],
            str(log), lambda: os.path.exists(sock))
        try:
            deadline = time.time() + 20
            while not os.path.exists(sock):
                assert time.time() < deadline and proc.poll() is None, log.read_text()[-3000:]
                time.sleep(0.1)
            c = Ctl(sock)

            def until(what, cond):
                # regionfwd's own counters, not fixed sleeps: a loaded
                # machine can leave it unscheduled for a while.
                deadline = time.time() + 30
                while not cond(c.call("counters")):
                    assert time.time() < deadline and proc.poll() is None, what
                    time.sleep(0.05)
            lab.send("rff1", frags + "pk = fr[:1]\n" + send)
            until("the first fragment decided", lambda k: k["events"]["frag_first"] >= 1)
            r = c.call("push", document=doc.format(to="b1"), generation=2)
            assert r["ok"] and r["generation"] == 2, r
            lab.send("rff1", frags + "pk = fr[1:]\n" + send)
            lab.send("rff1", "pk = [IPv6(src='2001:db8:1::6', dst='2001:db8:ff::1')/UDP(dport=9)/Raw(b'new')]\n" + send)
            until("all forwarded", lambda k: k["links"]["a1"]["packets"] + k["links"]["b1"]["packets"] >= 4)
            c.close()
            wait_pcap(str(tmp_path / "cap.pcap"), 4)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            out = log.read_text()
            cap.terminate()
            cap.wait(timeout=10)
    assert proc.returncode == 0, out
    from scapy.all import IPv6, IPv6ExtHdrFragment
    got = read_pcaps(str(tmp_path / "cap.pcap"))
    frags_out = [f for f in got if f.haslayer(IPv6ExtHdrFragment) and f[IPv6ExtHdrFragment].id == 777]
    # regionfwd's own counters are exact; the capture (tcpdump on a veth, which
    # can miss frames on a loaded machine) shows where what it saw went.
    s = json.load(open(tmp_path / "s.json"))
    assert s["links"]["a1"]["packets"] == 3 and s["links"]["b1"]["packets"] == 1, (s["links"], s["drops"], s["events"], s.get("rx"))
    assert s["events"]["frag_across_gen"] == 2 and s["drops"]["frag_no_first"] == 0
    assert frags_out and {f[Ether].dst for f in frags_out} == {"02:00:00:00:00:a1"}
    new = [f for f in got if f.haslayer(IPv6) and f[IPv6].src == "2001:db8:1::6"]
    assert new and all(f[Ether].dst == "02:00:00:00:00:b1" for f in new)



def test_later_fragments_across_a_swap_skip_a_mirror_link_now_down(tmp_path):
    """A first fragment decided with a mirror, then a table that sets the
    mirror link down: later fragments still follow their first fragment's
    link, but a down link carries nothing, mirror copies included (they
    were copied to it, by the link's name alone). One port plays the first
    fragment once, another replays later fragments for ever; one worker
    polls both, so they share its fragment table."""
    doc = ("regions: {{r1: {{prefixes: [10.1.0.0/16]}}}}\n"
           "links:\n"
           "  a1: {{port: out0, next_hop_mac: '02:00:00:00:00:a1'}}\n"
           "  m1: {{port: out1, next_hop_mac: '02:00:00:00:00:e1', state: {state}}}\n"
           "policies: [{{region: r1, service: any, action: steer, to: a1, mirror: m1}}]\n")
    table = tmp_path / "t.yaml"
    table.write_text(doc.format(state="up"))
    e = Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02")
    first, later = str(tmp_path / "first.pcap"), str(tmp_path / "later.pcap")
    wrpcap(first, [e / IP(src="10.1.0.9", dst="192.0.2.1", id=4242, flags="MF", proto=17) /
                   Raw(bytes(UDP(sport=5, dport=9)) + b"f" * 8)])
    wrpcap(later, [e / IP(src="10.1.0.9", dst="192.0.2.1", id=4242, frag=2, proto=17) / Raw(b"L" * 8)])
    ports = [("in0", f'{{device: "net_pcap_in0,rx_pcap={first}", ingress: true}}'),
             ("in1", f'{{device: "net_pcap_in1,rx_pcap={later},infinite_rx=1", ingress: true}}'),
             ("out0", "{device: net_null_o0}"), ("out1", "{device: net_null_o1}")]
    f = Served(tmp_path, "ctl-frag-mirror", ports, table, extra_node="frag_timeout_ms: 60000\n")
    try:
        deadline = time.time() + 30
        while f.ctl.call("counters")["events"]["frag_followed"] == 0:
            assert time.time() < deadline and f.p.poll() is None, f.text()[-3000:]
            time.sleep(0.05)
        assert f.ctl.call("counters")["events"]["mirror_tx"] > 0
        r = f.ctl.call("push", document=doc.format(state="down"), generation=2)
        assert r["ok"] and r["generation"] == 2, r
        before = f.ctl.call("counters")
        time.sleep(0.5)
        after = f.ctl.call("counters")
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    followed = after["events"]["frag_across_gen"] - before["events"]["frag_across_gen"]
    assert followed > 0 and after["drops"]["frag_no_first"] == before["drops"]["frag_no_first"]
    assert after["links"]["a1"]["packets"] > before["links"]["a1"]["packets"]
    assert after["events"]["mirror_tx"] == before["events"]["mirror_tx"], (before["events"], after["events"])

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_control_socket_bounds(tmp_path):
    """Idle clients cannot lock regiond out (the longest idle is closed to
    make room), a client that announces a huge frame and stalls costs no
    memory and loses its connection at the frame deadline, and one that
    trickles a frame is cut off the same way; all the while status answers
    and the generation stays."""
    f = Fwd(tmp_path, "ctl-bounds", traffic(tmp_path, ["10.9.0.1"]),
            extra_node="control_frame_timeout_ms: 1500\ncontrol_idle_timeout_ms: 600000\n")
    idle, stalled = [], []
    try:
        gen = f.ctl.call("status")["generation"]["id"]
        f.ctl.close()
        # Every slot taken by clients that connect and say nothing.
        for _ in range(16):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(f.sock)
            idle.append(s)
        time.sleep(0.3)
        c = Ctl(f.sock, timeout=10)  # as regiond reconnecting: served, an idle one makes room
        assert c.call("status")["generation"]["id"] == gen
        closed = 0
        for s in idle:
            s.settimeout(0.2)
            try:
                closed += s.recv(1) == b""
            except socket.timeout:
                pass
        assert closed >= 1, "no idle connection was closed to make room"
        # Four clients announce 1 GiB pushes and send nothing more.
        before = rss_kib(f.p.pid)
        for _ in range(4):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(f.sock)
            s.sendall(frame(op_of("push"), b"", length=1 << 30) + b"\x0a\x04abcd")
            stalled.append(s)
        time.sleep(0.5)
        assert c.call("status")["ok"]
        grown = rss_kib(f.p.pid) - before
        assert grown < 16 * 1024, f"regionfwd grew {grown} KiB for four stalled announcements"
        # Past the frame deadline their connections are closed.
        time.sleep(2.0)
        for s in stalled:
            s.settimeout(2)
            assert s.recv(1) == b"", "a stalled frame kept its connection past the deadline"
        # A trickling sender is cut off the same way.
        t = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        t.connect(f.sock)
        data = frame(op_of("status"), b"")
        cut = False
        for byte in data[:-1]:
            try:
                t.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            time.sleep(0.25)
        t.settimeout(3)
        try:
            cut = cut or t.recv(1) == b""
        except ConnectionResetError:
            cut = True
        t.close()
        assert cut, "a trickled frame was never cut off"
        assert c.call("status")["generation"]["id"] == gen
        c.close()
        f.ctl = Ctl(f.sock)
    finally:
        for s in idle + stalled:
            s.close()
        log = f.stop()
    assert f.p.returncode == 0, log


def test_trickling_clients_cannot_take_every_slot(tmp_path):
    """Sixteen clients that each send one byte of a header and then a byte
    now and then were all "mid-frame": none could be evicted, so regiond
    was shut out for the whole frame timeout, again and again. A frame
    moving at under 1 MiB/s for over a second now gives its slot to a new
    connection. A small request announcing a large body is refused at its
    header, and a flood of bad frames writes a bounded number of lines."""
    f = Fwd(tmp_path, "ctl-trickle", traffic(tmp_path, ["10.9.0.1"]),
            extra_node="control_frame_timeout_ms: 60000\n")
    slow = []
    try:
        gen = f.ctl.call("status")["generation"]["id"]
        f.ctl.close()
        for _ in range(16):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(f.sock)
            s.sendall(b"R")
            slow.append(s)
        time.sleep(1.5)
        for s in slow:  # still trickling
            try:
                s.sendall(b"F")
            except OSError:
                pass
        c = Ctl(f.sock, timeout=10)  # as regiond reconnecting
        assert c.call("status")["generation"]["id"] == gen
        c.close()
        for s in slow:
            s.close()
        # A burst up front and then a stall: the pace is judged over the
        # last window, not since the first byte (8 MiB in the first second
        # kept the average over 1 MiB/s for 8 s).
        slow = []
        for _ in range(16):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(f.sock)
            s.sendall(frame(op_of("push"), b"", length=64 << 20) + b"\0" * (8 << 20))
            slow.append(s)
        time.sleep(2.5)
        c = Ctl(f.sock, timeout=10)
        assert c.call("status")["generation"]["id"] == gen
        c.close()
        # A status request may not announce more than a small body.
        t = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        t.connect(f.sock)
        t.sendall(frame(op_of("status"), b"", length=200 << 20))
        t.settimeout(5)
        reply = b""
        while True:
            chunk = t.recv(65536)
            if not chunk:
                break
            reply += chunk
        t.close()
        assert b"body_too_large" in reply or b"larger than the 1048576 bytes allowed" in reply, reply
        # A flood of bad frames: at most a few lines a second in the log.
        for _ in range(300):
            b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            b.connect(f.sock)
            b.sendall(b"GET / HTTP/1.1\r\n\r\n")
            b.close()
        time.sleep(1.2)
        f.ctl = Ctl(f.sock)
        assert f.ctl.call("status")["generation"]["id"] == gen
    finally:
        for s in slow:
            s.close()
        log = f.stop()
    assert f.p.returncode == 0, log
    refused = log.count("control: frame refused")
    assert 1 <= refused <= 40, refused
    assert "more lines like the last left out" in log or refused < 300


def test_a_repeated_generation_id_is_a_new_generation(tmp_path):
    """Ids come from outside (regiond, or regionfwd's own count for --table)
    and can repeat for different content. The fast path tells generations
    apart by its own sequence, so a repeat is still a swap: counted, and no
    fragment or flow entry of the old table passes for the new one's."""
    f = Fwd(tmp_path, "ctl-same-id", traffic(tmp_path, ["10.9.0.1"]))
    try:
        st = f.ctl.call("status")
        assert st["generation"]["id"] == 1
        time.sleep(0.3)
        swaps = f.ctl.call("counters")["events"]["generation_swaps"]
        doc = open(TABLE).read().replace("{region: r8,  service: any, action: steer, to: l-r8}",
                                         "{region: r8,  service: any, action: steer, to: l-r16}")
        r = f.ctl.call("push", document=doc, generation=1, name="same-id.yaml")
        assert r["ok"] and r["generation"] == 1 and not r["noop"], r
        assert f.ctl.call("status")["generation"]["hash"] != st["generation"]["hash"]
        deadline = time.time() + 10
        while f.ctl.call("counters")["events"]["generation_swaps"] == swaps:
            assert time.time() < deadline, "the worker never counted the swap to the new table"
            time.sleep(0.1)
        e = f.ctl.call("explain", src="10.9.0.1", dst="192.0.2.1", proto="udp", sport=5, dport=80)
        assert e["link"] == "l-r16"
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log



def counters_until(f, what, cond):
    """The counters of Served @f once cond() holds of them (30 s at most,
    and regionfwd alive meanwhile; @what names the wait)."""
    deadline = time.time() + 30
    while True:
        k = f.ctl.call("counters")
        if cond(k):
            return k
        assert time.time() < deadline and f.p.poll() is None, (what, f.text()[-3000:])
        time.sleep(0.05)


KEEP_IN = "residency: [{name: keep-in, region: in, services: [bulk], allowed_tags: [in]}]\n"
FRAG_SWAPS = {
    # The first fragment left on 'local', in India; the new table gives
    # that name to the Singapore link (out1), India's traffic to 'home'.
    "name_given_to_another_link": (
        "links:\n"
        "  local: {port: out0, next_hop_mac: '02:00:00:00:00:a1', tags: [in]}\n"
        "  to-sg: {port: out1, next_hop_mac: '02:00:00:00:00:b1', tags: [sg]}\n"
        "policies: [{region: in, service: any, action: steer, to: local}]\n" + KEEP_IN,
        "links:\n"
        "  home: {port: out0, next_hop_mac: '02:00:00:00:00:a1', tags: [in]}\n"
        "  local: {port: out1, next_hop_mac: '02:00:00:00:00:b1', tags: [sg]}\n"
        "policies: [{region: in, service: any, action: steer, to: home}]\n" + KEEP_IN),
    # The first fragment left for Singapore before a rule protected the
    # service; the new table has the rule and keeps India's traffic home.
    "rule_added": (
        "links:\n"
        "  local: {port: out0, next_hop_mac: '02:00:00:00:00:a1', tags: [in]}\n"
        "  to-sg: {port: out1, next_hop_mac: '02:00:00:00:00:b1', tags: [sg]}\n"
        "policies: [{region: in, service: any, action: steer, to: to-sg}]\n",
        "links:\n"
        "  local: {port: out0, next_hop_mac: '02:00:00:00:00:a1', tags: [in]}\n"
        "  to-sg: {port: out1, next_hop_mac: '02:00:00:00:00:b1', tags: [sg]}\n"
        "policies: [{region: in, service: any, action: steer, to: local}]\n" + KEEP_IN),
}
# A red team's: the same, where the new table also sends sources of no
# region to Singapore (a default, a policy, a mirror). A later fragment's
# region was not looked up, and as 'unknown' it was held to those sources'
# rules: the protected datagram's rest went on to to-sg, explain said local.
_OLD_SG = FRAG_SWAPS["rule_added"][0]
_NEW_LOCAL = FRAG_SWAPS["rule_added"][1]
FRAG_SWAPS["rule_added_default_to_sg"] = (_OLD_SG, _NEW_LOCAL + "default: {action: steer, to: to-sg}\n")
FRAG_SWAPS["rule_added_unknown_to_sg"] = (_OLD_SG, _NEW_LOCAL.replace(
    "policies: [", "policies: [{region: unknown, service: any, action: steer, to: to-sg}, "))
FRAG_SWAPS["rule_added_unknown_mirrored_to_sg"] = (_OLD_SG, _NEW_LOCAL.replace(
    "policies: [", "policies: [{region: unknown, service: any, action: drop, mirror: to-sg}, "))


@pytest.mark.parametrize("case", sorted(FRAG_SWAPS))
def test_later_fragments_across_a_swap_keep_to_residency(tmp_path, case):
    """A later fragment follows its first fragment's link by name into a
    newer generation; that name must not take protected traffic where the
    newer table's residency rules forbid it (the name now stands for a link
    tagged for another region, or a rule now protects the service): the
    rest of the datagram is dropped (frag_residency), never sent out of region.
    Both tables are valid. One port plays the first fragment once, another
    replays a later fragment for ever; one worker polls both."""
    head = ("regions: {in: {prefixes: [10.1.0.0/16]}}\n"
            "services: {bulk: [udp/9000]}\n")
    old, new = FRAG_SWAPS[case]
    table = tmp_path / "t.yaml"
    table.write_text(head + old)
    e = Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02")
    first, later = str(tmp_path / "first.pcap"), str(tmp_path / "later.pcap")
    wrpcap(first, [e / IP(src="10.1.0.9", dst="192.0.2.1", id=4242, flags="MF", proto=17) /
                   Raw(bytes(UDP(sport=5, dport=9000)) + b"f" * 8)])
    wrpcap(later, [e / IP(src="10.1.0.9", dst="192.0.2.1", id=4242, frag=2, proto=17) / Raw(b"L" * 8)])
    ports = [("in0", f'{{device: "net_pcap_in0,rx_pcap={first}", ingress: true}}'),
             ("in1", f'{{device: "net_pcap_in1,rx_pcap={later},infinite_rx=1", ingress: true}}'),
             ("out0", "{device: net_null_o0}"), ("out1", "{device: net_null_o1}")]
    f = Served(tmp_path, "ctl-frag-res-" + case[:8], ports, table, extra_node="frag_timeout_ms: 60000\n")

    def until(what, cond):
        return counters_until(f, what, cond)

    def sent(k, port):
        return k["ports"][port]["opackets"]
    try:
        until("later fragments followed", lambda k: k["events"]["frag_followed"] > 0)
        r = f.ctl.call("push", document=head + new, generation=2)
        assert r["ok"] and r["generation"] == 2, r
        # Once a later fragment met the new generation, none leaves on out1.
        before = until("a later fragment in the new generation", lambda k: k["events"]["frag_across_gen"] > 0)
        after = until("more of them", lambda k: k["events"]["frag_across_gen"] > before["events"]["frag_across_gen"] + 100)
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert sent(after, "out1") == sent(before, "out1"), (before["ports"], after["ports"])
    assert after["drops"]["frag_residency"] > before["drops"]["frag_residency"], after["drops"]
    assert after["drops"]["no_link_up"] == before["drops"]["no_link_up"], after["drops"]
    assert after["drops"]["frag_no_first"] == before["drops"]["frag_no_first"]


def test_one_ids_stream_follows_a_new_generation_at_once(tmp_path):
    """A sender whose IPv4 ids never change sends every datagram's first
    fragment under one key. After a table change gave its service another
    link, the first fragment under the new generation disagreed with the
    entry the last one left, the entry became frag_invalid, and each first
    fragment after refreshed it: the rest of every datagram was dropped for
    as long as the stream went on (a probe, after a link down and up). The
    same service decided again under a newer generation now replaces the
    entry: the whole datagram leaves on the new link, nothing frag_invalid."""
    head = ("regions: {in: {prefixes: [10.1.0.0/16]}}\n"
            "services: {bulk: [udp/9000]}\n"
            "links:\n"
            "  local: {port: out0, next_hop_mac: '02:00:00:00:00:a1', tags: [in]}\n"
            "  local-b: {port: out1, next_hop_mac: '02:00:00:00:00:b1', tags: [in]}\n" + KEEP_IN)
    table = tmp_path / "t.yaml"
    table.write_text(head + "policies: [{region: in, service: bulk, action: steer, to: local}]\n")
    e = Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02")
    ip = dict(src="10.1.0.9", dst="192.0.2.1", id=4242, proto=17)
    stream = str(tmp_path / "stream.pcap")
    wrpcap(stream, [e / IP(flags="MF", **ip) / Raw(bytes(UDP(sport=5, dport=9000)) + b"f" * 8),
                    e / IP(frag=2, **ip) / Raw(b"L" * 8)])
    ports = [("in0", f'{{device: "net_pcap_in0,rx_pcap={stream},infinite_rx=1", ingress: true}}'),
             ("out0", "{device: net_null_o0}"), ("out1", "{device: net_null_o1}")]
    f = Served(tmp_path, "ctl-frag-oneid", ports, table, extra_node="frag_timeout_ms: 60000\n")

    def until(what, cond):
        return counters_until(f, what, cond)
    try:
        until("the stream followed", lambda k: k["events"]["frag_followed"] > 100)
        r = f.ctl.call("push", document=head + "policies: [{region: in, service: bulk, action: steer, "
                       "to: local-b}]\n", generation=2)
        assert r["ok"] and r["generation"] == 2, r
        before = until("the new link used", lambda k: k["ports"]["out1"]["opackets"] > 0)
        after = until("more of it", lambda k: k["ports"]["out1"]["opackets"] > before["ports"]["out1"]["opackets"] + 1000)
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert after["drops"]["frag_invalid"] == 0, after["drops"]
    # both halves of every datagram: its later fragments follow the new link too
    assert after["links"]["local-b"]["packets"] - before["links"]["local-b"]["packets"] >= 1000
    assert after["events"]["frag_followed"] - before["events"]["frag_followed"] >= 490, after["events"]


# fsync() stalls 12 s once, when the file STALL_MARKER names exists (a disk
# that hangs on the push's save, which is made before the push is answered).
FSYNC_STALL_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

int fsync(int fd)
{
	static int (*real)(int);
	const char *m = getenv("STALL_MARKER");

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	if (m != NULL && unlink(m) == 0)
		sleep(12);
	return real(fd);
}
"""


def capture_call(ctl, opname, msg, reply):
    """A capture request on regionfwd's control socket: ("ok", the reply
    message) or ("error", Error)."""
    ctl.s.sendall(frame(op_of(opname), msg.SerializeToString()))
    _, _, _, flags, _, n = ctlclient.HDR.unpack(ctl._recv(ctlclient.HDR.size))
    body = ctl._recv(n)
    if flags & ctlclient.ERROR:
        return "error", ctlclient.pb().Error.FromString(body)
    return "ok", getattr(ctlclient.pb(), reply).FromString(body)


def test_a_capture_outlives_a_push_longer_than_its_lease(tmp_path):
    """A capture nobody reads for 10 s ends. The control thread busy with
    one push for longer (its save stalled on the disk) kept the reader's
    read queued on the socket, then ended the capture as "not read" before
    taking it: an operator capturing through a table change lost the
    capture. Time the control thread spends away from its poll is now not
    counted against the reader."""
    pb = ctlclient.pb()
    marker = tmp_path / "stall"
    saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "STALL_MARKER")}
    os.environ["LD_PRELOAD"] = preload_shim(tmp_path, "fsync_stall", FSYNC_STALL_SHIM)
    os.environ["STALL_MARKER"] = str(marker)
    try:
        f = Fwd(tmp_path, "ctl-caplease", traffic(tmp_path, ["10.9.0.1"]))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    reader = None
    try:
        reader = Ctl(f.sock)
        how, started = capture_call(reader, "capture_start", pb.CaptureStart(owner="lease test"),
                                    "CaptureStarted")
        assert how == "ok", started
        how, data = capture_call(reader, "capture_read", pb.CaptureRead(id=started.id), "CaptureData")
        assert how == "ok" and not data.done, data
        doc = open(TABLE).read().replace("{region: r8,  service: any, action: steer, to: l-r8}",
                                         "{region: r8,  service: any, action: steer, to: l-r16}")
        marker.write_text("")
        pushed = {}
        pusher = threading.Thread(target=lambda: pushed.update(
            f.ctl.call("push", document=doc, generation=5, name="slow-disk")))
        pusher.start()
        time.sleep(1)  # the push has begun and waits on its save
        # Sent while the control thread is busy: answered once it is back.
        how, data = capture_call(reader, "capture_read", pb.CaptureRead(id=started.id), "CaptureData")
        pusher.join(60)
        assert not marker.exists(), "the push's save did not stall (no fsync seen)"
        assert pushed.get("ok") and pushed["generation"] == 5, pushed
        assert how == "ok" and not data.done, (how, data, f.text())
        how, data = capture_call(reader, "capture_stop", pb.CaptureRead(id=started.id), "CaptureData")
        assert how == "ok" and data.done and data.end != "not read", (how, data)
        assert "not read for" not in f.text()
    finally:
        if reader is not None:
            reader.close()
        f.stop()


def test_an_ended_capture_nobody_reads_lets_the_slot_go(tmp_path):
    """A capture that ended on its count while its reader was gone (a
    regiond killed, or a start answered after regiond gave up on it) held
    the one capture slot until regionfwd restarted: every later capture
    was capture_busy, naming a process long gone. It is let go 10 s after
    its last read, as a running one is."""
    pb = ctlclient.pb()
    f = Fwd(tmp_path, "ctl-capdone", traffic(tmp_path, ["10.9.0.1"]))
    a = b = None
    try:
        a = Ctl(f.sock)
        how, started = capture_call(a, "capture_start", pb.CaptureStart(owner="gone reader", count=1),
                                    "CaptureStarted")
        assert how == "ok", started
        a.close()
        a = None  # its reader is gone; the capture ends on its count
        b = Ctl(f.sock)
        how, err = capture_call(b, "capture_start", pb.CaptureStart(owner="next"), "CaptureStarted")
        assert how == "error" and err.code == "capture_busy", err
        deadline, reasons = time.time() + 30, []
        while True:
            how, got = capture_call(b, "capture_start", pb.CaptureStart(owner="next"), "CaptureStarted")
            if how == "ok" or time.time() > deadline:
                break
            assert got.code == "capture_busy", got
            reasons.append(got.reason)
            time.sleep(1)
        assert how == "ok", (got, f.text())
        assert any("has ended and waits for its reader" in r for r in reasons), reasons
        assert "ended, not read for 10 s; released" in f.text()
        how, data = capture_call(b, "capture_stop", pb.CaptureRead(id=got.id), "CaptureData")
        assert how == "ok" and data.done, data
    finally:
        for c in (a, b):
            if c is not None:
                c.close()
        f.stop()


def test_a_second_first_fragment_cannot_lead_the_rest_of_a_datagram(tmp_path):
    """A first fragment again under the same (source, destination, protocol,
    id), to another port: the fragment table took the newer decision, so a
    spoofed first fragment to an unprotected service led the rest of a
    protected datagram out of region (a red team, with one to https). Two
    first fragments that disagree leave no decision to follow: the rest is
    dropped as frag_invalid, nothing of it on either link."""
    table = tmp_path / "t.yaml"
    table.write_text("regions: {in: {prefixes: [10.1.0.0/16]}}\n"
                     "services: {bulk: [udp/9000], web: [udp/443]}\n"
                     "links:\n"
                     "  local: {port: out0, next_hop_mac: '02:00:00:00:00:a1', tags: [in]}\n"
                     "  to-sg: {port: out1, next_hop_mac: '02:00:00:00:00:b1', tags: [sg]}\n"
                     "policies: [{region: in, service: bulk, action: steer, to: local},\n"
                     "           {region: in, service: web, action: steer, to: to-sg}]\n" + KEEP_IN)
    e = Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02")
    ip = dict(src="10.1.0.9", dst="192.0.2.1", id=4243, proto=17)
    frames = [e / IP(flags="MF", **ip) / Raw(bytes(UDP(sport=5, dport=9000)) + b"f" * 8),  # the datagram's
              e / IP(flags="MF", **ip) / Raw(bytes(UDP(sport=5, dport=443)) + b"s" * 8),   # a spoofed one
              e / IP(frag=2, **ip) / Raw(b"PERSONAL")]                                      # the rest
    pcap, out = str(tmp_path / "in.pcap"), tmp_path / "out"
    wrpcap(pcap, frames)
    out.mkdir()
    ports = [("in0", f'{{device: "net_pcap_in0,rx_pcap={pcap}", ingress: true}}'),
             ("out0", f'{{device: "net_pcap_o0,tx_pcap={out / "local.pcap"}"}}'),
             ("out1", f'{{device: "net_pcap_o1,tx_pcap={out / "sg.pcap"}"}}')]
    f = Served(tmp_path, "ctl-frag-dup", ports, table, extra_node="frag_timeout_ms: 60000\n")
    try:
        deadline = time.time() + 30
        while True:
            k = f.ctl.call("counters")
            if k["packets"]["rx"] >= 3 or time.time() > deadline:
                break
            time.sleep(0.05)
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert k["packets"]["rx"] == 3 and k["drops"]["frag_invalid"] == 1, k["drops"]
    sg = [bytes(x) for x in rdpcap(str(out / "sg.pcap"))]
    local = [bytes(x) for x in rdpcap(str(out / "local.pcap"))]
    assert not any(b"PERSONAL" in x for x in sg + local), (sg, local)
    assert len(local) == 1 and len(sg) == 1, (local, sg)  # each first fragment where its own decision says
