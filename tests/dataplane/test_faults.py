"""Faults under load (issue 7): an egress device that keeps what it is sent
(TX ring full), a forwarding loop that exhausts the mbuf pool and its
recovery, and a link going down and up. Each test prints what was lost and
how long recovery took; each asserts that every packet received is accounted
(rx = tx + sum(drops)), that nothing accepted was lost, and that regionfwd
keeps answering its control socket throughout. Timings are reported, never
asserted."""
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import netns  # noqa: E402
from dprun import Served, run_pcap  # noqa: E402

from scapy.all import IP, UDP, Dot1Q, Ether, Raw, rdpcap, wrpcap  # noqa: E402

TABLE = """
regions: {{r: {{prefixes: [10.1.0.0/16]}}}}
services: {{a: [udp/53], b: [udp/54]}}
links:
  stuck: {{port: {a_port}, next_hop_mac: "02:00:00:00:00:01"}}
  ok:    {{port: null0, next_hop_mac: "02:00:00:00:00:02"}}
policies:
  - {{region: r, service: a, action: {a_action}}}
  - {{region: r, service: b, action: steer, to: ok}}
default: {{action: drop}}
description: "{desc}"
"""


def pcap(tmp, n=512):
    path = str(tmp / "in.pcap")
    wrpcap(path, [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
                  IP(src="10.1.0.%d" % (i % 200 + 1), dst="198.51.100.1") / UDP(sport=1000 + i, dport=53 + i % 2) /
                  Raw(b"x" * 20) for i in range(n)])
    return path


class Fwd(Served):
    def __init__(self, tmp, prefix, ports, table, extra="", wrapper=()):
        t = tmp / "t0.yaml"
        t.write_text(table)
        super().__init__(tmp, prefix, ports, t, extra, wrapper=wrapper)

    def counters(self):
        c = self.ctl.call("counters")
        assert c["ok"], c
        pk = c["packets"]
        assert pk["rx"] == pk["tx"] + pk["dropped"], pk  # every packet accounted, at every read
        return c

    def wait(self, cond, timeout=20.0, step=0.01):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            c = self.counters()
            if cond(c):
                return time.monotonic() - t0, c
            time.sleep(step)
        raise AssertionError(f"condition not met in {timeout}s: {self.counters()}")


def test_tx_ring_full_on_a_stuck_device(tmp_path):
    """Link 'stuck' sits on a net_ring nobody drains: it takes 1023 frames,
    then refuses. Every refused frame is a tx_full drop, the other link
    carries its traffic undisturbed, the pool holds exactly what the ring
    holds (no leak), and steering the traffic to a working link recovers."""
    f = Fwd(tmp_path, "fault-txfull", [("in0", f'{{device: "net_pcap_in0,rx_pcap={pcap(tmp_path)},infinite_rx=1", ingress: true}}'),
                                        ("ring", '{device: "net_ring_stuck"}'), ("null0", '{device: "net_null_n0"}')],
            TABLE.format(a_port="ring", a_action="steer, to: stuck", desc="stuck"))
    try:
        _, c = f.wait(lambda c: c["drops"]["tx_full"] > 100000)
        held = c["ports"]["ring"]["opackets"]
        assert held == 1023 and c["links"]["stuck"]["packets"] == 1023
        assert c["links"]["ok"]["packets"] > 100000  # the other link is not held back
        # mbufs in use: the ring's 1023 + the pcap's 512 preloaded frames + at
        # most a burst in flight and the per-lcore caches.
        assert 1023 + 512 <= c["mbufs"]["in_use"] <= 1023 + 512 + 2 * 256 + 64, c["mbufs"]
        before = c["links"]["ok"]["packets"]
        t0 = time.monotonic()
        r = f.ctl.call("push", document=TABLE.format(a_port="ring", a_action="steer, to: ok", desc="moved"))
        assert r["ok"], r
        push_s = time.monotonic() - t0
        rec, c2 = f.wait(lambda c: c["links"]["ok"]["packets"] > before + 100000)
        drops_before = c2["drops"]["tx_full"]
        time.sleep(0.3)
        c3 = f.counters()
        assert c3["drops"]["tx_full"] == drops_before  # nothing refused any more
        print(f"\ntx ring full: {drops_before} frames refused (tx_full), 1023 held by the device, "
              f"0 lost unaccounted; push {push_s * 1000:.1f} ms, traffic on the new link within "
              f"{rec * 1000:.1f} ms of the push returning")
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert "rx = tx + dropped: holds" in log


def test_pool_exhaustion_and_recovery(tmp_path):
    """A forwarding loop: 'stuck' is a net_ring that loops its TX ring back to
    its RX ring, and regionfwd polls it. Service a circulates until its TTL
    runs out while new frames keep coming: the ring and the pool fill, and
    the pcap port receives only what the loop frees (net_pcap does not count
    the frames it could not allocate for). Pushing a table that drops
    service a drains the loop: mbufs in use fall back to the baseline, the
    ring falls silent while the pcap port keeps receiving (its rates before
    and after are printed, not compared)."""
    f = Fwd(tmp_path, "fault-pool", [("in0", f'{{device: "net_pcap_in0,rx_pcap={pcap(tmp_path)},infinite_rx=1", ingress: true}}'),
                                      ("ring", '{device: "net_ring_loop", ingress: true}'),
                                      ("null0", '{device: "net_null_n0"}')],
            TABLE.format(a_port="ring", a_action="steer, to: stuck", desc="loop"), extra="mbufs: 1024\nmbuf_cache: 0\n")
    try:
        _, c = f.wait(lambda c: c["mbufs"]["in_use"] >= c["mbufs"]["pool"] - 32 and c["drops"]["ttl_expired"] > 100000)
        exhausted = c["mbufs"]
        t_rate = time.monotonic()
        rx0 = c["ports"]["in0"]["ipackets"]
        time.sleep(0.5)
        c = f.counters()
        slow = (c["ports"]["in0"]["ipackets"] - rx0) / (time.monotonic() - t_rate)
        assert f.ctl.call("explain", src="10.1.0.1", dst="1.1.1.1", proto="udp", dport=54)["link"] == "ok"
        r = f.ctl.call("push", document=TABLE.format(a_port="ring", a_action="drop", desc="drain"))
        assert r["ok"], r
        # Baseline: the pcap's 512 preloaded frames plus a burst or two in flight.
        rec, c2 = f.wait(lambda c: c["mbufs"]["in_use"] <= 512 + 64)
        t_rate, rx = time.monotonic(), c2["ports"]["in0"]["ipackets"]
        # Progress, not a rate: a loaded runner once held regionfwd's worker
        # for the whole of a 0.3 s window (in0 did not move at all), and in
        # CI the starved rate was 0.77x the recovered one. Rates are printed,
        # never compared (this module asserts no timing).
        _, c3 = f.wait(lambda c: c["ports"]["in0"]["ipackets"] > rx + 10000)
        fast = (c3["ports"]["in0"]["ipackets"] - rx) / (time.monotonic() - t_rate)
        assert c3["mbufs"]["in_use"] <= 512 + 64
        # The loop is gone, not merely slower: while the worker takes another
        # 10,000 frames from the pcap port (hundreds of bursts, the ring
        # polled between them), nothing comes back from the ring and nothing
        # more expires. (c2 may still have seen the ring's last few frames:
        # the worker has taken 10,000 more since.)
        _, c4 = f.wait(lambda c: c["ports"]["in0"]["ipackets"] > c3["ports"]["in0"]["ipackets"] + 10000)
        assert c4["ports"]["ring"]["ipackets"] == c3["ports"]["ring"]["ipackets"], (c3["ports"], c4["ports"])
        assert c4["drops"]["ttl_expired"] == c3["drops"]["ttl_expired"]
        assert c4["mbufs"]["in_use"] <= 512 + 64
        print(f"\npool exhaustion: {exhausted['in_use']}/{exhausted['pool']} mbufs in use, ingress starved to "
              f"{slow / 1e6:.2f} Mpps, {c3['drops']['ttl_expired']} looped frames expired, "
              f"{c3['drops']['tx_full']} refused by the full ring, every one counted; back to "
              f"{c3['mbufs']['in_use']} in use {rec * 1000:.1f} ms after the push returned, ingress at "
              f"{fast / 1e6:.2f} Mpps")
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert "rx = tx + dropped: holds" in log


@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_link_down_under_load(tmp_path):
    """The egress veth goes down while traffic flows, then up again. While it
    is down the kernel refuses frames: each is counted (tx_full), none is
    lost unaccounted; when it comes back, forwarding resumes by itself."""
    with netns.VethLab("rfwd-fault", [("rff0", "rff1")]) as lab:
        f = Fwd(tmp_path, "fault-link", [("in0", f'{{device: "net_pcap_in0,rx_pcap={pcap(tmp_path)},infinite_rx=1", ingress: true}}'),
                                          ("veth", '{device: "net_af_packet0,iface=rff0"}'),
                                          ("null0", '{device: "net_null_n0"}')],
                TABLE.format(a_port="veth", a_action="steer, to: stuck", desc="veth"))
        try:
            _, c = f.wait(lambda c: c["links"]["stuck"]["packets"] > 20000)
            netns.sh("ip link set rff0 down")
            t_down = time.monotonic()
            _, c = f.wait(lambda c: c["drops"]["tx_full"] > 20000)
            sent_down = c["links"]["stuck"]["packets"]
            time.sleep(0.3)
            c = f.counters()
            stalled = c["links"]["stuck"]["packets"] - sent_down
            netns.sh("ip link set rff0 up")
            t_up = time.monotonic()
            rec, c2 = f.wait(lambda c: c["links"]["stuck"]["packets"] > sent_down + stalled + 1000, timeout=30)
            print(f"\nlink down for {(t_up - t_down) * 1000:.0f} ms: {c2['drops']['tx_full']} frames refused "
                  f"(tx_full), {stalled} taken while down (kernel ring), forwarding again "
                  f"{rec * 1000:.0f} ms after the link came up; other link carried "
                  f"{c2['links']['ok']['packets']} throughout")
            assert c2["links"]["ok"]["packets"] > 0
        finally:
            log = f.stop()
        assert f.p.returncode == 0, log
        assert "rx = tx + dropped: holds" in log


@pytest.mark.skipif(not netns.available() or not os.path.exists("/dev/net/tun"),
                    reason="needs root, iproute2 and /dev/net/tun")
def test_a_port_that_reports_its_link_down_counts_port_down(tmp_path):
    """A link whose port reports its link down (a TAP set down here; a
    pulled cable on a NIC) lost what was steered to it as tx_full, "egress
    queue full": congestion, for a cable (a probe). While the port reports
    its link down, what it does not take is port_down; tx_full stays for a
    port that is up and full; forwarding resumes when it is up again. The
    TAP lives in a namespace of the test's own (regionfwd runs there)."""
    ns = "rfwd-pdown"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    netns.sh(f"ip netns add {ns}")
    f = None
    try:
        f = Fwd(tmp_path, "fault-pdown", [("in0", f'{{device: "net_pcap_in0,rx_pcap={pcap(tmp_path)},infinite_rx=1", ingress: true}}'),
                                           ("tap", '{device: "net_tap_pd0,iface=rfwpd0"}'),
                                           ("null0", '{device: "net_null_n0"}')],
                TABLE.format(a_port="tap", a_action="steer, to: stuck", desc="tap"),
                wrapper=netns.in_ns(ns))  # not `ip netns exec`: netns.py says why
        _, c = f.wait(lambda c: c["links"]["stuck"]["packets"] > 1000)
        netns.sh(" ".join(netns.in_ns(ns)) + " ip link set rfwpd0 down")
        _, c = f.wait(lambda c: c["drops"]["port_down"] > 10000)
        full = c["drops"]["tx_full"]
        _, c = f.wait(lambda c: c["drops"]["port_down"] > 20000)
        assert c["drops"]["tx_full"] == full, c["drops"]  # the port is down: none of it "full"
        assert c["links"]["ok"]["packets"] > 0
        r = f.ctl.call("explain", src="10.1.0.1", dst="198.51.100.1", proto="udp", dport=53)
        assert r["link"] == "stuck" and r["port_down"] is True and r["drop_reason"] == "port_down", r
        assert r["group_ports_down"] is None, r
        netns.sh(" ".join(netns.in_ns(ns)) + " ip link set rfwpd0 up")
        sent = c["links"]["stuck"]["packets"]
        _, c = f.wait(lambda c: c["links"]["stuck"]["packets"] > sent + 1000, timeout=30)
    finally:
        log = f.stop() if f else ""
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert f.p.returncode == 0, log
    assert "rx = tx + dropped: holds" in log


GROUP_TABLE = """
regions: {r: {prefixes: [10.1.0.0/16]}}
services: {a: [udp/53], b: [udp/54]}
links:
  ta: {port: tapa, next_hop_mac: "02:00:00:00:00:01"}
  tb: {port: tapb, next_hop_mac: "02:00:00:00:00:02"}
  ok: {port: null0, next_hop_mac: "02:00:00:00:00:03"}
link_groups: {g: {members: {ta: 1, tb: 1}}}
policies:
  - {region: r, service: a, action: steer, to: g}
  - {region: r, service: b, action: steer, to: ok}
default: {action: drop}
"""


def explain_flow(f, i):
    """explain of the input's i-th flow (pcap() above)."""
    r = f.ctl.call("explain", src="10.1.0.%d" % (i % 200 + 1), dst="198.51.100.1",
                   proto="udp", sport=1000 + i, dport=53 + i % 2)
    assert r["ok"], r
    return r


def flow_on(f, link):
    """A flow of the input that group g gives to @link now: its index."""
    for i in range(0, 512, 2):  # service a: dport 53
        if explain_flow(f, i)["link"] == link:
            return i
    raise AssertionError(f"no flow of the input on {link}")


def drops(c):
    return sum(c["drops"].values())


def settled(f, idle_link, timeout=20):
    """Two counter reads 1 s apart over which nothing was dropped and
    @idle_link sent nothing: the refill has happened. Both reads."""
    t0 = time.monotonic()
    while True:
        c1 = f.counters()
        time.sleep(1.0)
        c2 = f.counters()
        if drops(c2) == drops(c1) and c2["links"][idle_link]["packets"] == c1["links"][idle_link]["packets"]:
            return c1, c2
        assert time.monotonic() - t0 < timeout, (c1["drops"], c2["drops"], c1["links"], c2["links"])


@pytest.mark.skipif(not netns.available() or not os.path.exists("/dev/net/tun"),
                    reason="needs root, iproute2 and /dev/net/tun")
def test_a_group_member_whose_port_is_down_leaves_the_group(tmp_path):
    """A link group of two links on two TAPs: while one TAP reports its link
    down, its flows go to the other member (once lost as port_down until
    the port was up again or the link taken down by hand): nothing more is
    dropped or given to it, explain says where the flow goes and which
    member is left out; when the port is up again it stays out for
    group_port_up_ms, then the flows come back to it."""
    ns = "rfwd-gdown"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    netns.sh(f"ip netns add {ns}")
    in_ns = " ".join(netns.in_ns(ns))
    f = None
    try:
        f = Fwd(tmp_path, "fault-gdown", [("in0", f'{{device: "net_pcap_in0,rx_pcap={pcap(tmp_path)},infinite_rx=1", ingress: true}}'),
                                           ("tapa", '{device: "net_tap_ga,iface=rfwga"}'),
                                           ("tapb", '{device: "net_tap_gb,iface=rfwgb"}'),
                                           ("null0", '{device: "net_null_n0"}')],
                GROUP_TABLE, extra="group_port_up_ms: 4000\n", wrapper=netns.in_ns(ns))
        _, c = f.wait(lambda c: c["links"]["ta"]["packets"] > 1000 and c["links"]["tb"]["packets"] > 1000)
        on_a = flow_on(f, "ta")
        r = explain_flow(f, on_a)
        assert r["port_down"] is False and r["group_ports_down"] == [] and r["drop_reason"] is None, r
        netns.sh(f"{in_ns} ip link set rfwga down")
        # Within the control thread's look at the ports (0.5 s) and a
        # burst's drain, ta is given nothing more and nothing is dropped:
        # its flows leave on tb.
        c1, c2 = settled(f, "ta")
        rx = c2["packets"]["rx"] - c1["packets"]["rx"]
        tb = c2["links"]["tb"]["packets"] - c1["links"]["tb"]["packets"]
        ok = c2["links"]["ok"]["packets"] - c1["links"]["ok"]["packets"]
        # Service a is half the input; the link counters are summed apart
        # from rx, a burst or so later (nothing is dropped: settled()).
        assert rx > 2000 and abs(tb + ok - rx) <= 4096 and tb > ok / 2, (rx, tb, ok)
        moved = explain_flow(f, on_a)
        assert moved["link"] == "tb" and moved["port_down"] is False, moved
        assert moved["group_ports_down"] == ["ta"] and moved["drop_reason"] is None, moved
        netns.sh(f"{in_ns} ip link set rfwga up")
        # Up, but not for group_port_up_ms yet: still out of the group.
        held = explain_flow(f, on_a)
        assert held["link"] == "tb" and held["group_ports_down"] == ["ta"], held
        # The other member's port goes down meanwhile: the held one, whose
        # port is up, carries the group at once (it once kept out while the
        # group's flows dropped as port_down: a probe).
        pd = f.counters()["drops"]["port_down"]
        netns.sh(f"{in_ns} ip link set rfwgb down")
        c1, c2 = settled(f, "tb")
        assert c2["links"]["ta"]["packets"] - c1["links"]["ta"]["packets"] > 1000
        # Not only once ta's hold is over: what the NIC refused before the
        # look at the ports is tx_full; port_down would be all of tb's share
        # until then (millions).
        assert c2["drops"]["port_down"] - pd < 100000, (pd, c2["drops"])
        r = explain_flow(f, on_a)
        assert r["link"] == "ta" and r["group_ports_down"] == ["tb"] and r["drop_reason"] is None, r
        netns.sh(f"{in_ns} ip link set rfwgb up")
        # tb waits for its own hold, also while ta's lasts (ta, up longer,
        # carries): it once took the table's slots at once, left when ta's
        # hold ended and came back when its own did (a review).
        t0 = time.monotonic()
        while "link 'tb' is back in its link groups ('g'): its port has reported its link up" not in f.text():
            assert time.monotonic() - t0 < 30, f.text()
            time.sleep(0.2)
        sent = f.counters()["links"]["tb"]["packets"]
        _, c = f.wait(lambda c: c["links"]["tb"]["packets"] > sent + 1000, timeout=30)
        back = explain_flow(f, on_a)
        assert back["link"] == "ta" and back["group_ports_down"] == [], back
    finally:
        log = f.stop() if f else ""
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert f.p.returncode == 0, log
    assert "rx = tx + dropped: holds" in log
    assert "link 'ta' leaves its link groups ('g'): its port 'tapa' reports its link down" in log, log
    assert "link 'ta' is back in its link groups ('g'): its port is up, not yet for group_port_up_ms, " \
        "and no member up for longer can take its flows" in log, log
    assert log.count("link 'tb' is back in its link groups") == 1, log
    assert "link 'tb' leaves its link groups ('g'): its port 'tapb' reports its link down" in log, log
    assert "link 'tb' is back in its link groups ('g'): its port has reported its link up for " \
        "group_port_up_ms" in log, log


@pytest.mark.skipif(not netns.available() or not os.path.exists("/dev/net/tun"),
                    reason="needs root, iproute2 and /dev/net/tun")
def test_a_tagged_member_that_takes_a_down_ports_flows_tags_them(tmp_path):
    """A group whose untagged member wins every slot and whose VLAN member
    wins none: the fast path may send the group's packets with 14-byte
    headers, as long as no slot can go to the tagged one. When the
    untagged member's port goes down, the tagged member takes its flows,
    and every frame it sends must carry its 802.1Q tag."""
    ns = "rfwd-gvlan"
    out = str(tmp_path / "v.pcap")
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    netns.sh(f"ip netns add {ns}")
    table = GROUP_TABLE.replace('tb: {port: tapb, next_hop_mac: "02:00:00:00:00:02"}',
                                'tb: {port: vout, next_hop_mac: "02:00:00:00:00:02", vlan: 7}') \
                       .replace("{ta: 1, tb: 1}", "{ta: 1000000, tb: 1}")
    f = None
    try:
        f = Fwd(tmp_path, "fault-gvlan", [("in0", f'{{device: "net_pcap_in0,rx_pcap={pcap(tmp_path)},infinite_rx=1", ingress: true}}'),
                                           ("tapa", '{device: "net_tap_va,iface=rfwva"}'),
                                           ("vout", f'{{device: "net_pcap_vo,tx_pcap={out}"}}'),
                                           ("null0", '{device: "net_null_n0"}')],
                table, wrapper=netns.in_ns(ns))
        _, c = f.wait(lambda c: c["links"]["ta"]["packets"] > 1000)
        assert c["links"]["tb"]["packets"] == 0, c["links"]  # no slot of the group
        netns.sh(" ".join(netns.in_ns(ns)) + " ip link set rfwva down")
        _, c = f.wait(lambda c: c["links"]["tb"]["packets"] > 2000)
    finally:
        log = f.stop() if f else ""
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert f.p.returncode == 0, log
    frames = rdpcap(out)
    assert len(frames) > 2000
    untagged = [p for p in frames if not p.haslayer(Dot1Q) or p[Dot1Q].vlan != 7]
    assert not untagged, untagged[0].summary()


@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_a_group_member_on_an_af_packet_veth_whose_peer_is_down_leaves_the_group(tmp_path):
    """net_af_packet reports its link up whatever its interface does: a
    group member on a veth whose peer was down kept its flows, refused as
    tx_full, for as long as it lasted (a probe). The port's link is its
    kernel interface's too: with the peer down the member leaves its
    group, the status says the port down, and it comes back with the
    peer."""
    with netns.VethLab("rfwd-gafp", [("rfgaf0", "rfgaf1")]) as lab:
        table = GROUP_TABLE.replace("port: tapa", "port: afp").replace("port: tapb", "port: null1")
        f = Fwd(tmp_path, "fault-gafp", [("in0", f'{{device: "net_pcap_in0,rx_pcap={pcap(tmp_path)},infinite_rx=1", ingress: true}}'),
                                          ("afp", '{device: "net_af_packet_gaf,iface=rfgaf0"}'),
                                          ("null1", '{device: "net_null_n1"}'),
                                          ("null0", '{device: "net_null_n0"}')],
                table, extra="group_port_up_ms: 0\n")
        try:
            _, c = f.wait(lambda c: c["links"]["ta"]["packets"] > 1000 and c["links"]["tb"]["packets"] > 1000)
            lab.run_in_ns("ip link set rfgaf1 down")  # rfgaf0: NO-CARRIER
            c1, c2 = settled(f, "ta")
            assert c2["links"]["tb"]["packets"] > c1["links"]["tb"]["packets"] + 1000
            port = c2["ports"]["afp"]
            assert port["link"] == "down", port
            assert explain_flow(f, flow_on(f, "tb"))["group_ports_down"] == ["ta"]
            lab.run_in_ns("ip link set rfgaf1 up")
            sent = c2["links"]["ta"]["packets"]
            _, c = f.wait(lambda c: c["links"]["ta"]["packets"] > sent + 1000, timeout=30)
            # Renamed, the interface is the one the port's socket is bound
            # to: up (by name it read as gone, down for good: a probe).
            netns.sh("ip link set rfgaf0 down && ip link set rfgaf0 name rfgafx && ip link set rfgafx up")
            sent = c["links"]["ta"]["packets"]
            _, c = f.wait(lambda c: c["links"]["ta"]["packets"] > sent + 1000 and
                          c["ports"]["afp"]["link"] == "up", timeout=30)
            # Deleted and made again by its old name, it is another
            # interface, which the socket does not send by: down (by name
            # it read as up while everything given to it was lost).
            netns.sh("ip link del rfgafx && ip link add rfgaf0 type veth peer name rfgaf1 netns rfwd-gafp"
                     " && ip link set rfgaf0 up && nsenter --net=/run/netns/rfwd-gafp ip link set rfgaf1 up")
            c1, c2 = settled(f, "ta")
            assert c2["ports"]["afp"]["link"] == "down", c2["ports"]["afp"]
            assert c2["links"]["tb"]["packets"] > c1["links"]["tb"]["packets"] + 1000
        finally:
            log = f.stop()
    assert f.p.returncode == 0, log
    assert "rx = tx + dropped: holds" in log
    assert "link 'ta' leaves its link groups ('g'): its port 'afp' reports its link down" in log, log


@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_a_group_member_whose_port_is_down_at_the_start_gets_no_flows(tmp_path):
    """A port down when regionfwd starts: its links are out of their groups
    before a worker sends (the first look at the ports once came after the
    launch: thousands of packets refused first, as tx_full)."""
    with netns.VethLab("rfwd-gst", [("rfgst0", "rfgst1")]) as lab:
        lab.run_in_ns("ip link set rfgst1 down")  # rfgst0: NO-CARRIER
        table = GROUP_TABLE.replace("port: tapa", "port: afp").replace("port: tapb", "port: null1")
        f = Fwd(tmp_path, "fault-gst", [("in0", f'{{device: "net_pcap_in0,rx_pcap={pcap(tmp_path)},infinite_rx=1", ingress: true}}'),
                                         ("afp", '{device: "net_af_packet_gst,iface=rfgst0"}'),
                                         ("null1", '{device: "net_null_n1"}'),
                                         ("null0", '{device: "net_null_n0"}')],
                table)
        try:
            _, c = f.wait(lambda c: c["links"]["tb"]["packets"] > 100000)
            assert drops(c) == 0 and c["links"]["ta"]["packets"] == 0, (c["drops"], c["links"])
        finally:
            log = f.stop()
    assert f.p.returncode == 0, log
    assert "link 'ta' leaves its link groups ('g'): its port 'afp' reports its link down" in log, log


def test_a_start_short_of_memory_exits_cleanly(tmp_path):
    """EAL memory too small for the worker state: regionfwd refuses to start
    with exit status 1 and the reason, and does not crash while the standby
    FIB thread it started with the table is still building (it did: SIGSEGV
    from rte_exit's cleanup under that thread). The FIBs live outside EAL
    memory now, so the worker state is made too large for it (a content
    flow table of 4M entries per worker) rather than the memory too small.
    The reason names the node field that sized what could not be had."""
    table = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples", "demo-table.yaml")
    pkt = Ether() / IP(src="8.130.0.1", dst="198.51.100.1") / UDP(dport=53)
    for i in range(3):
        r = run_pcap(str(tmp_path), table, [pkt], ["br0", "local0", "sg0", "usw0", "usw1"],
                     f"faults-lowmem{i}", mem=256, extra_node="content_flow_entries: 4194304\n")
        assert r.rc == 1, (r.rc, r.stderr[-800:])
        assert "Cause: cannot allocate worker 0's content flow table: " in r.stderr, r.stderr[-800:]
        assert " bytes for node content_flow_entries 4194304: a smaller value" in r.stderr, r.stderr[-800:]
    # The capture's pool, made before the workers start: its errno is the
    # pool's (it once read "No such file or directory", a later call's).
    r = run_pcap(str(tmp_path), table, [pkt], ["br0", "local0", "sg0", "usw0", "usw1"],
                 "faults-lowmem-cap", mem=256, extra_node="capture_mbufs: 1048575\n")
    assert r.rc == 1, (r.rc, r.stderr[-800:])
    assert ("Cause: cannot allocate the capture's 1048575 mbufs and rings of 1024: Cannot allocate "
            "memory (node capture_mbufs, capture_ring)") in r.stderr, r.stderr[-800:]


def test_a_pcap_record_over_64k_is_dropped_not_crashed_on(tmp_path):
    """DPDK 22.11's net_pcap reads a record over 65535 bytes into a chain of
    its length modulo 65536 while pkt_len says the whole; forwarded, the TX
    side read past the chain and regionfwd died (SIGSEGV, hostile probe).
    A frame whose segments do not hold its length is dropped as bad_mbuf
    now, counted, and the rest of the pcap forwards."""
    import json
    import struct
    import subprocess
    from dprun import eal_args, regionfwd_bin, write_node
    table = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples", "demo-table.yaml")
    huge = bytes(Ether(dst="02:00:00:00:00:99")) + b"\0" * (70000 - 14)
    pkt = bytes(Ether() / IP(src="8.130.0.1", dst="198.51.100.1") / UDP(dport=53))
    in_pcap = tmp_path / "in.pcap"
    with open(in_pcap, "wb") as f:  # by hand: scapy would cut the record to its snaplen
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
        for frame in (huge, pkt, huge):
            f.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame)
    node = tmp_path / "node.yaml"
    write_node(str(node), str(in_pcap), str(tmp_path), ["br0", "local0", "sg0", "usw0", "usw1"])
    p = subprocess.run([regionfwd_bin(), *eal_args("faults-huge"), "--", "--node", str(node),
                        "--table", table, "--idle-exit", "500", "--stats-json", str(tmp_path / "s.json")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr[-800:])
    stats = json.load(open(tmp_path / "s.json"))
    assert stats["packets"]["rx"] == 3 and stats["packets"]["tx"] == 1, stats["packets"]
    assert stats["drops"]["bad_mbuf"] == 2, stats["drops"]


MTU_TABLE = """
regions: {r: {prefixes: [10.1.0.0/16, "2001:db8::/32"]}}
services: {dns: [udp/53]}
links: {out: {port: out0, next_hop_mac: "02:00:00:00:00:01"}}
policies: [{region: r, service: dns, action: steer, to: out}]
default: {action: drop}
"""


def test_a_packet_over_the_mtu_is_dropped_not_sent(tmp_path):
    """No port sends an IP packet longer than the node's mtu: a real NIC
    would refuse it or put a giant on the wire. net_pcap reads a 9000-byte
    record into a chain of mbufs (found by a hostile probe: it left an
    MTU-1500 port whole); the mbufs, sized for the mtu with two VLAN tags,
    hold an untagged frame a few bytes over it in one. Each is dropped as
    too_big, counted, whatever its tags or family; at exactly the mtu it
    forwards. With mtu 9000 the same 9000-byte packet forwards."""
    from scapy.all import Dot1Q, IPv6
    table = tmp_path / "t.yaml"
    table.write_text(MTU_TABLE)
    eth = Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02")

    def v4(l3_len, tags=0, tag=0):
        hdr = eth
        for t in range(tags):
            hdr = hdr / Dot1Q(vlan=100 + t)
        return hdr / IP(src="10.1.0.%d" % (tag + 1), dst="198.51.100.1") / UDP(dport=53) / Raw(b"x" * (l3_len - 28))

    def v6(l3_len, tag=0):
        return eth / IPv6(src="2001:db8::%x" % (tag + 1), dst="2001:db8:ffff::1") / UDP(dport=53) / Raw(
            b"x" * (l3_len - 48))

    fits = [v4(1500, tag=1), v4(1500, 1, tag=2), v4(1500, 2, tag=3), v6(1500, tag=4)]
    over = [v4(1501, tag=11), v4(1512, tag=12), v4(1501, 1, tag=13), v4(1501, 2, tag=14), v6(1501, tag=15),
            v4(9000, tag=16), v6(9000, tag=17)]
    r = run_pcap(str(tmp_path), str(table), fits + over, ["out0"], "faults-mtu")
    assert r.rc == 0, r.stderr[-800:]
    assert r.stats["packets"]["rx"] == 11, r.stats["packets"]
    assert r.stats["drops"].get("too_big") == 7, {k: v for k, v in r.stats["drops"].items() if v}
    assert r.stats["packets"]["tx"] == 4, (r.stats["packets"], r.stats["drops"])
    sent = sorted(bytes(f[IP].src if IP in f else f[IPv6].src, "ascii") for f in r.outputs["out0"])
    assert sent == [b"10.1.0.2", b"10.1.0.3", b"10.1.0.4", b"2001:db8::5"], sent
    assert all(len(f) - 14 <= 1500 + 4 for f in r.outputs["out0"])  # the link adds no tag here

    big = tmp_path / "big"
    big.mkdir()
    r = run_pcap(str(big), str(table), [v4(9000, tag=16), v4(9001, tag=17)], ["out0"], "faults-mtu9k",
                 extra_node="mtu: 9000\n")
    assert r.rc == 0, r.stderr[-800:]
    assert r.stats["packets"]["tx"] == 1 and r.stats["drops"].get("too_big") == 1, r.stats
    assert len(r.outputs["out0"]) == 1 and len(r.outputs["out0"][0]) == 9014


def test_stats_json_replaces_the_file_whole(tmp_path):
    """--stats-json truncated its file and wrote it in place at exit: a
    script polling for it, or one that had the last run's open, read half a
    file for as long as the write took (an empty one first). It is now
    written beside the path, fsync'd and renamed over it: a reader holding
    the previous file keeps it whole, the path holds the whole new one, and
    no temporary file is left. A directory gone by the exit is an error
    naming the path, exit 1, no crash; /dev/stdout is still written in
    place."""
    import json
    import signal
    import subprocess
    from dprun import eal_args, regionfwd_bin, wait_started, write_node
    table = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples", "demo-table.yaml")
    in_pcap = tmp_path / "in.pcap"
    wrpcap(str(in_pcap), [Ether() / IP(src="8.130.0.1", dst="198.51.100.1") / UDP(dport=53)] * 5)
    node = tmp_path / "node.yaml"
    write_node(str(node), str(in_pcap), str(tmp_path), ["br0", "local0", "sg0", "usw0", "usw1"])
    out = tmp_path / "out"
    out.mkdir()
    stats = out / "s.json"
    stats.write_text('{"previous": "run"}\n')
    stats.chmod(0o640)
    held = open(stats)

    def run(path, prefix):
        return subprocess.run([regionfwd_bin(), *eal_args(prefix), "--", "--node", str(node),
                               "--table", table, "--idle-exit", "500", "--stats-json", str(path)],
                              capture_output=True, text=True, timeout=60)

    p = run(stats, "faults-sj")
    assert p.returncode == 0, p.stderr[-800:]
    assert json.load(held) == {"previous": "run"}  # the old file, whole, for its reader
    held.close()
    assert json.load(open(stats))["packets"]["rx"] == 5
    assert os.listdir(out) == ["s.json"], os.listdir(out)
    assert stats.stat().st_mode & 0o777 == 0o640

    # Through a symlink: its target is replaced, the link stays a link.
    link = tmp_path / "ln.json"
    link.symlink_to(stats)
    stats.write_text("{}")
    p = run(link, "faults-sj4")
    assert p.returncode == 0, p.stderr[-800:]
    assert link.is_symlink() and json.load(open(stats))["packets"]["rx"] == 5
    assert os.listdir(out) == ["s.json"], os.listdir(out)

    p = run("/dev/stdout", "faults-sj2")
    assert p.returncode == 0 and '"rx": 5' in p.stdout, (p.stdout[-500:], p.stderr[-500:])

    gone = tmp_path / "gone"
    gone.mkdir()
    log = tmp_path / "gone.log"
    with open(log, "w") as lf:
        d = subprocess.Popen([regionfwd_bin(), *eal_args("faults-sj3"), "--", "--node", str(node),
                              "--table", table, "--stats-json", str(gone / "s.json")],
                             stdout=lf, stderr=subprocess.STDOUT)
    try:
        wait_started(d, log)
        gone.rmdir()
        d.send_signal(signal.SIGTERM)
        d.wait(30)
    finally:
        if d.poll() is None:
            d.kill()
            d.wait()
    assert d.returncode == 1, (d.returncode, log.read_text()[-800:])
    assert f"cannot write --stats-json {gone}/s.json: No such file or directory" in log.read_text()
