"""The whole box: regionfwd receives on net_af_xdp from a veth pair, DPDK's
PMD loads regionfwd's XDP filter (xdp_filter: true, xdp_object), regiond adopts that program
and installs the table's filters, and only admitted traffic reaches the fast
path; non-IP frames stay with the kernel."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import netns  # noqa: E402
from dprun import NAP, eal_args, read_pcaps, regionfwd_bin  # noqa: E402
from test_e2e import BUILD, REGIOND, REGIONCTL, wait_for  # noqa: E402

from scapy.all import IP  # noqa: E402

OBJ = os.path.join(BUILD, "bpf", "xdp_filter.bpf.o")
pytestmark = pytest.mark.skipif(not netns.available() or not os.path.exists(OBJ) or not os.path.exists(REGIOND),
                                reason="needs root, iproute2, the BPF object and regiond")

TABLE = """
regions: {lab: {prefixes: [10.0.0.0/8]}}
links: {out: {port: out0, next_hop_mac: "02:00:00:00:00:0a"}}
policies: [{region: lab, service: any, action: steer, to: out}]
filters:
  redirect: af_xdp
  rules:
    - {name: deny-lab9, action: drop, prefixes: [10.9.0.0/16]}
"""


def filter_status(api):
    p = subprocess.run([REGIONCTL, "-s", api, "-j", "filter", "status"], capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else None


def send_and_count(lab, iface, api, arp=0, martian=0):
    """100 UDP packets into @iface, half of them from the denied 10.9/16,
    @arp ARP frames and @martian frames no router forwards, in turn DHCP
    discovers to 255.255.255.255 from an admitted source and datagrams to
    ordinary destinations from the link-local fe80::7 (both the kernel's)
    and from 169.254.7.7 (the fast path's, which drops them); the filter's
    status once it counted them all."""
    # Paced: a veth's XDP receive ring holds 256 frames; a tight burst
    # can overflow it before any program runs.
    lab.send(iface, "sendp([Ether(dst='02:00:00:00:00:99')/IP(src='10.%d.1.%d' % (8 + i % 2, i), "
                    "dst='192.0.2.1')/UDP(sport=7, dport=9)/Raw(b'axdp') for i in range(100)], "
                    "iface=IFACE, verbose=False, inter=0.0005)\n"
                    f"sendp([Ether(dst='ff:ff:ff:ff:ff:ff')/ARP(pdst='10.8.0.1') for i in range({arp})], "
                    "iface=IFACE, verbose=False)\n"
                    "sendp([[Ether(dst='ff:ff:ff:ff:ff:ff')/IP(src='10.8.7.7', dst='255.255.255.255')/"
                    "UDP(sport=68, dport=67), Ether(dst='02:00:00:00:00:99')/IPv6(src='fe80::7', "
                    "dst='2001:db8::1')/UDP(sport=7, dport=9), Ether(dst='02:00:00:00:00:99')/"
                    f"IP(src='169.254.7.7', dst='192.0.2.1')/UDP(sport=7, dport=9)][i % 3] for i in range({martian})], "
                    "iface=IFACE, verbose=False)")
    # A veth runs its XDP program in its own NAPI poll, which a loaded
    # machine can defer: wait for the counts, then read.
    wait_for(lambda: (lambda s: s and s["counters"]["to_afxdp"] >= 50 + martian // 3 and
                      s["counters"]["non_ip"] >= arp and
                      s["counters"]["pass"] >= 50 + arp + martian and
                      s["rules"]["deny-lab9"]["packets"] >= 50)(filter_status(api)), what="the filter's counts")
    time.sleep(0.5)  # regionfwd forwards what the socket got
    return filter_status(api)


def test_af_xdp_receives_only_admitted_traffic(tmp_path):
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    sock, api = str(tmp_path / "fwd.sock"), str(tmp_path / "api.sock")
    with netns.VethLab("rfwd-test-axdp", [("xpa0", "xpa1")]) as lab:
        node = tmp_path / "node.yaml"
        node.write_text("ports:\n"
                        "  in0: {device: 'net_af_xdp0,iface=xpa0', ingress: true, xdp_filter: true}\n"
                        f"  out0: {{device: 'net_pcap_o0,tx_pcap={tmp_path}/out.pcap'}}\n"
                        f"xdp_object: {OBJ}\n"
                        f"control_socket: {sock}\nmbufs: 8191\n" + NAP)
        fwd = subprocess.Popen([regionfwd_bin()] + eal_args("e2e-axdp", mem=512) + [
            "--", "--node", str(node), "--table", str(table), "--stats-json", str(tmp_path / "s.json")],
            stdout=open(tmp_path / "fwd.log", "w"), stderr=subprocess.STDOUT)
        rd = None
        try:
            wait_for(lambda: os.path.exists(sock), what="regionfwd up")
            rd = subprocess.Popen([REGIOND, "--dataplane", sock, "--api-socket", api, "--state-dir",
                                   str(tmp_path / "state"), "--table", str(table), "--xdp-iface", "xpa0",
                                   "--bpf-pin-dir", f"/sys/fs/bpf/rfwd-axdp-{os.getpid()}"],
                                  stdout=open(tmp_path / "regiond.log", "w"), stderr=subprocess.STDOUT)

            st = wait_for(lambda: (lambda s: s if s and s["generation"] == 1 else None)(filter_status(api)),
                          what="filters installed")
            assert st["owner"] == "net_af_xdp" and st["adopted"]
            # not "after a restart": there was none (a docs walk)
            text = subprocess.run([REGIONCTL, "-s", api, "filter", "status"], capture_output=True, text=True).stdout
            assert text.startswith(f"program {st['program_id']}, generation 1 "
                                   "(adopted from the fast path's AF_XDP port)\n"), text
            st = send_and_count(lab, "xpa1", api, arp=5, martian=6)
            # explain says where each of those went, as the program did
            for args, redirect, drop in ((("10.8.1.1", "192.0.2.1", "udp", "9"), "af_xdp", None),
                                         (("10.8.7.7", "255.255.255.255", "udp", "67"), "kernel",
                                          "martian_destination"),
                                         (("fe80::7", "2001:db8::1", "udp", "9"), "kernel", "martian_source"),
                                         (("169.254.7.7", "192.0.2.1", "udp", "9"), "af_xdp", "martian_source")):
                p = subprocess.run([REGIONCTL, "-s", api, "-j", "explain", *args], capture_output=True, text=True)
                e = json.loads(p.stdout) if p.returncode == 0 else p.stderr
                assert e["xdp"]["redirect"] == redirect and e["drop_reason"] == drop, (args, e)
                # ... and what it leaves to the kernel never reaches regionfwd
                assert e["xdp"]["to_host_stack"] == (redirect == "kernel"), (args, e)
            text = subprocess.run([REGIONCTL, "-s", api, "explain", "fe80::7", "2001:db8::1", "udp", "9"],
                                  capture_output=True, text=True).stdout
            assert "left to the host's stack there (AF_XDP mode leaves it the kernel's): it never " \
                "reaches regionfwd; if it did:\ndropped     martian_source (" in text, text
        finally:
            if rd:
                rd.send_signal(signal.SIGTERM)
                rd.wait(20)
            fwd.send_signal(signal.SIGTERM)
            fwd.wait(30)
            subprocess.run(["rm", "-rf", f"/sys/fs/bpf/rfwd-axdp-{os.getpid()}"])
    assert fwd.returncode == 0, open(tmp_path / "fwd.log").read()
    s = json.load(open(tmp_path / "s.json"))
    # The filter decided on everything, exactly: 50 denied, 50 and the 2
    # from 169.254.7.7 sent to the fast path's socket, 5 ARP frames, the 2
    # broadcasts and the 2 from fe80::7 to the kernel (the fast path drops
    # a destination or a source no router forwards: the broadcasts went
    # there, and the host's neighbour discovery with them; the kernel would
    # forward one from 169.254/16 by its own routes).
    assert st["rules"]["deny-lab9"]["packets"] == 50
    assert st["counters"]["to_afxdp"] == 52 and st["counters"]["non_ip"] == 5
    assert st["counters"]["pass"] == 61, st["counters"]
    # regionfwd received only admitted IP packets (all of them unless the
    # AF_XDP ring itself overflowed), forwarded every one but the martian
    # sources, which it counted, and no denied one.
    out = read_pcaps(str(tmp_path / "out.pcap"))
    assert all(p[IP].src.startswith("10.8.") for p in out)
    assert s["packets"]["tx"] == len(out) >= 45 and s["drops"]["martian_source"] <= 2, s
    assert s["packets"]["rx"] == s["packets"]["tx"] + s["drops"]["martian_source"], s["packets"]


def test_the_fast_paths_program_filters_its_own_interface_alone(tmp_path):
    """regiond adopted the fast path's AF_XDP program from the first
    --xdp-iface and attached that same program to the second one too,
    where what it admitted went to the first device's sockets, which the
    kernel refuses (a review): every admitted packet of the second
    interface lost. Refused at start, naming both, the second interface
    left as it was."""
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    sock, api = str(tmp_path / "fwd.sock"), str(tmp_path / "api.sock")
    pin = f"/sys/fs/bpf/rfwd-axdp2-{os.getpid()}"
    with netns.VethLab("rfwd-test-axdp2", [("xpb0", "xpb1"), ("xpc0", "xpc1")]):
        node = tmp_path / "node.yaml"
        node.write_text("ports:\n"
                        "  in0: {device: 'net_af_xdp1,iface=xpb0', ingress: true, xdp_filter: true}\n"
                        f"  out0: {{device: 'net_pcap_o1,tx_pcap={tmp_path}/out.pcap'}}\n"
                        f"xdp_object: {OBJ}\n"
                        f"control_socket: {sock}\nmbufs: 8191\n" + NAP)
        fwd = subprocess.Popen([regionfwd_bin()] + eal_args("e2e-axdp2", mem=512) + [
            "--", "--node", str(node), "--table", str(table)],
            stdout=open(tmp_path / "fwd.log", "w"), stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: os.path.exists(sock), what="regionfwd up")
            p = subprocess.run([REGIOND, "--dataplane", sock, "--api-socket", api, "--state-dir",
                                str(tmp_path / "state"), "--xdp-iface", "xpb0", "--xdp-iface", "xpc0",
                                "--bpf-pin-dir", pin], capture_output=True, text=True, timeout=120)
            assert p.returncode == 1, p.stderr[-2000:]
            assert "the XDP filter on xpb0 is the fast path's AF_XDP program, which redirects to xpb0's " \
                   "sockets alone: it cannot filter xpc0 too" in p.stderr, p.stderr[-2000:]
            assert "give regiond --xdp-iface xpb0 alone" in p.stderr, p.stderr[-2000:]
            q = subprocess.run(["ip", "-j", "link", "show", "xpc0"], capture_output=True, text=True)
            assert "xdp" not in json.loads(q.stdout)[0], q.stdout
        finally:
            fwd.send_signal(signal.SIGTERM)
            fwd.wait(30)
            subprocess.run(["rm", "-rf", pin])
    assert fwd.returncode == 0, open(tmp_path / "fwd.log").read()


def test_a_restarted_fast_paths_new_program_gets_the_rules(tmp_path):
    """regionfwd restarted in AF_XDP mode: its port attaches a new copy of
    the filter, with no rules and no redirect, so everything went to the
    kernel and regionfwd received nothing on the port until an operator
    restarted regiond. regiond now adopts the new copy by itself and writes
    the current generation into it: the denied prefix is dropped in XDP
    again and the admitted traffic reaches the restarted fast path."""
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    sock, api = str(tmp_path / "fwd.sock"), str(tmp_path / "api.sock")
    pin = f"/sys/fs/bpf/rfwd-axdp3-{os.getpid()}"
    with netns.VethLab("rfwd-test-axdp3", [("xpd0", "xpd1")]) as lab:
        node = tmp_path / "node.yaml"
        node.write_text("ports:\n"
                        "  in0: {device: 'net_af_xdp2,iface=xpd0', ingress: true, xdp_filter: true}\n"
                        f"  out0: {{device: 'net_pcap_o2,tx_pcap={tmp_path}/out.pcap'}}\n"
                        f"xdp_object: {OBJ}\n"
                        f"control_socket: {sock}\nmbufs: 8191\n" + NAP)

        def start_fwd(log):
            return subprocess.Popen([regionfwd_bin()] + eal_args("e2e-axdp3", mem=512) + [
                "--", "--node", str(node), "--table", str(table), "--stats-json", str(tmp_path / "s.json")],
                stdout=open(tmp_path / log, "w"), stderr=subprocess.STDOUT)

        fwd, rd = start_fwd("fwd1.log"), None
        try:
            wait_for(lambda: os.path.exists(sock), what="regionfwd up")
            rd = subprocess.Popen([REGIOND, "--dataplane", sock, "--api-socket", api, "--state-dir",
                                   str(tmp_path / "state"), "--table", str(table), "--xdp-iface", "xpd0",
                                   "--bpf-pin-dir", pin],
                                  stdout=open(tmp_path / "regiond.log", "w"), stderr=subprocess.STDOUT)
            first = wait_for(lambda: (lambda s: s if s and s["generation"] == 1 else None)(filter_status(api)),
                             what="filters installed")["program_id"]
            fwd.send_signal(signal.SIGTERM)
            assert fwd.wait(30) == 0, open(tmp_path / "fwd1.log").read()[-3000:]
            assert not os.path.exists(sock)  # removed by regionfwd at exit
            fwd = start_fwd("fwd2.log")
            # Adopted and written, by the regiond that ran all along.
            st = wait_for(lambda: (lambda s: s if s and s["program_id"] not in (0, first) and
                                   s["generation"] == 1 and s["interfaces"][0]["ours"] else None)(filter_status(api)),
                          what="the new program adopted with the rules")
            assert st["owner"] == "net_af_xdp"
            st = send_and_count(lab, "xpd1", api)
        finally:
            if rd:
                rd.send_signal(signal.SIGTERM)
                rd.wait(20)
            fwd.send_signal(signal.SIGTERM)
            fwd.wait(30)
            subprocess.run(["rm", "-rf", pin])
    assert fwd.returncode == 0, open(tmp_path / "fwd2.log").read()[-3000:]
    assert "XDP filter: adopted the program the fast path's AF_XDP port attached to xpd0" in \
        open(tmp_path / "regiond.log").read()
    # The new program's counts: exactly the 100 sent since it came.
    assert st["rules"]["deny-lab9"]["packets"] == 50 and st["counters"]["to_afxdp"] == 50, st
    s = json.load(open(tmp_path / "s.json"))
    out = read_pcaps(str(tmp_path / "out.pcap"))
    assert all(p[IP].src.startswith("10.8.") for p in out)
    assert s["packets"]["rx"] == s["packets"]["tx"] == len(out) >= 45, s["packets"]
