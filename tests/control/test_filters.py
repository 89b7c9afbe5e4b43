"""XDP filters managed by regiond, end to end with real traffic: scapy sends
into a veth pair whose root-namespace end carries the filter; tcpdump on that
end sees exactly what the filter passed (AF_PACKET taps run after XDP)."""
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import netns  # noqa: E402
from preload import preload_shim  # noqa: E402
from test_e2e import DEMO, REGIOND, Box, wait_for  # noqa: E402

from scapy.all import IP, rdpcap  # noqa: E402

pytestmark = pytest.mark.skipif(not netns.available() or not os.path.exists(REGIOND),
                                reason="needs root, iproute2 and regiond")

FILTERS = """
filters:
  default: pass
  rules:
    - {{name: deny-lab, action: drop, prefixes: [10.9.0.0/16{extra}]}}
    - {{name: allow-ops, action: pass, prefixes: [10.9.7.0/24]}}
    - {{name: no-telnet, action: drop, services: [tcp/23]}}
"""

SEND = """
import sys
pk = []
for i in range(N):
    src = ("10.8.%d.%d" if i % 2 == 0 else "10.9.%d.%d") % (i // 250 % 250, 1 + i % 250)
    pk.append(Ether(dst="02:00:00:00:00:99")/IP(src=src, dst="192.0.2.1", id=i % 65536)/UDP(sport=7, dport=9)/Raw(b"x"))
sendp(pk, iface=IFACE, verbose=False, inter=INTER)
"""


def table(tmp_path, name, extra=""):
    p = tmp_path / name
    p.write_text(open(DEMO).read() + FILTERS.format(extra=extra))
    return str(p)


# Sends are paced (INTER): a veth's XDP receive ring holds 256 frames, and a
# tight burst can overflow it in the kernel before the filter runs.


class Capture:
    def __init__(self, iface, path):
        self.path = path
        self.p = subprocess.Popen(["tcpdump", "-U", "-n", "-i", iface, "-w", path, "ip and udp dst port 9"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)

    def stop(self):
        time.sleep(0.5)
        self.p.send_signal(signal.SIGINT)
        self.p.wait(10)
        return [p for p in rdpcap(self.path) if p.haslayer(IP)] if os.path.getsize(self.path) > 24 else []


def sources(pkts):
    """(allowed 10.8/16, denied 10.9/16) seen, not counting 10.9.7/24, which
    the more specific allow-ops rule passes (counted in sources.ops)."""
    a = sum(1 for p in pkts if p[IP].src.startswith("10.8."))
    d = sum(1 for p in pkts if p[IP].src.startswith("10.9.") and not p[IP].src.startswith("10.9.7."))
    sources.ops = sum(1 for p in pkts if p[IP].src.startswith("10.9.7."))
    return a, d


def test_filter_lifecycle(tmp_path):
    pin = f"/sys/fs/bpf/rfwd-test-{os.getpid()}"
    with netns.VethLab("rfwd-test-xdp", [("xfa0", "xfa1")]) as lab:
        box = Box(tmp_path, "xdp", regiond_args=("--xdp-iface", "xfa0", "--bpf-pin-dir", pin,
                                                  "--xdp-max-prefixes", "4096", "--xdp-max-groups", "1024"))
        try:
            rc, st, _ = box.ctl("filter", "status", json_out=True)
            assert rc == 0 and st["interfaces"][0]["mode"] == "native" and st["interfaces"][0]["ours"]
            prog = st["program_id"]
            # No filters section yet: everything passes (the filter's own
            # counters are exact; a capture can lose packets, so it is only
            # used to prove that nothing denied got through).
            lab.send("xfa1", "N = 200\nINTER = 0.0005\n" + SEND)
            # A veth runs its XDP program in its own NAPI poll, which a
            # loaded machine can defer: wait for the count, then compare.
            wait_for(lambda: box.ctl("filter", "status", json_out=True)[1]["counters"]["default"] >= 200,
                     what="the filter's counts")
            st = box.ctl("filter", "status", json_out=True)[1]
            assert (st["counters"]["default"], st["counters"]["pass"], st["counters"]["drop"]) == (200, 200, 0)

            rc, out, err = box.ctl("apply", table(tmp_path, "f1.yaml"))
            assert rc == 0, err
            cap = Capture("xfa0", str(tmp_path / "c1.pcap"))
            lab.send("xfa1", "N = 200\nINTER = 0.0005\n" + SEND)
            wait_for(lambda: (lambda s: s["counters"]["default"] >= 300 and
                              s.get("rules", {}).get("deny-lab", {}).get("packets", 0) >= 100)(
                         box.ctl("filter", "status", json_out=True)[1]), what="the filter's counts")
            assert sources(cap.stop())[1] == 0
            rc, st, _ = box.ctl("filter", "status", json_out=True)
            assert st["generation"] == box.gen() == 2
            assert st["rules"]["deny-lab"]["packets"] == 100 and st["rules"]["deny-lab"]["action"] == "drop"
            assert st["counters"]["default"] == 300
            rc, out, _ = box.ctl("filter", "status")
            assert "deny-lab" in out and "native" in out
            # explain covers the XDP stage, as the filter decides (issue 17, 3)
            for args, verdict, rule, match in ((("10.9.3.3", "192.0.2.1", "udp", "9"), "drop", "deny-lab", "10.9.0.0/16"),
                                               (("10.9.7.5", "192.0.2.1", "udp", "9"), "pass", "allow-ops", "10.9.7.0/24"),
                                               (("10.8.1.1", "192.0.2.1", "tcp", "23"), "drop", "no-telnet", "tcp/23"),
                                               (("10.8.1.1", "192.0.2.1", "udp", "9"), "pass", None, None)):
                rc, e, err = box.ctl("explain", *args, json_out=True)
                x = e["xdp"]
                assert rc == 0 and (x["verdict"], x["rule"], x["match"]) == (verdict, rule, match), (args, x)
                assert x["enforced_on"] == ["xfa0"], x
            rc, out, _ = box.ctl("explain", "10.9.3.3", "192.0.2.1", "udp", "9")
            assert "xdp filter  drop by rule deny-lab (source prefix 10.9.0.0/16) on xfa0" in out, out
            assert "it never reaches regionfwd" in out, out
            # A source no router forwards from: the filter decides it like
            # any other (explain once refused it, the XDP stage unsaid), and
            # regionfwd's parser drops what the filter passes.
            rc, e, err = box.ctl("explain", "127.0.0.1", "192.0.2.1", "tcp", "23", json_out=True)
            assert rc == 0 and (e["xdp"]["verdict"], e["xdp"]["rule"]) == ("drop", "no-telnet"), (e, err)
            assert e["drop_reason"] == "martian_source" and e["region"] is None and e["link"] is None, e
            rc, out, err = box.ctl("explain", "169.254.1.1", "192.0.2.1", "udp", "9")
            assert rc == 0 and "xdp filter  pass" in out and \
                "dropped     martian_source (source no router forwards from" in out and "region" not in out, \
                (out, err)

            # Updates while traffic flows: A (10.8/16) is allowed and D
            # (10.9/16) denied by every generation; only other prefixes change.
            before = box.ctl("filter", "status", json_out=True)[1]
            cap = Capture("xfa0", str(tmp_path / "c2.pcap"))
            sender = lab.popen_in_ns(["/usr/bin/python3", "-c",
                                      "IFACE = 'xfa1'\nN = 3000\nINTER = 0.0007\nfrom scapy.all import *\n" + SEND])
            for n in range(4):
                extra = "".join(f", 10.{20 + k}.0.0/16" for k in range(n + 1))
                rc, _, err = box.ctl("apply", table(tmp_path, f"u{n}.yaml", extra))
                assert rc == 0, err
                time.sleep(0.3)
            assert sender.wait(60) == 0

            def decided_all(s):
                return s["counters"]["default"] + sum(s["rules"][r]["packets"] for r in ("deny-lab", "allow-ops"))
            wait_for(lambda: decided_all(box.ctl("filter", "status", json_out=True)[1]) - decided_all(before) >= 3000,
                     what="the filter's counts")
            seen = sources(cap.stop())
            after = box.ctl("filter", "status", json_out=True)[1]

            def delta(section, key, field=None):
                a, b = after[section][key], before[section][key]
                return (a[field] - b[field]) if field else a - b
            # The filter's own counters are exact: it decided on all 3,000
            # packets, passed every allowed one and dropped every denied one.
            decided = (delta("counters", "default"), delta("rules", "deny-lab", "packets"),
                       delta("rules", "allow-ops", "packets"))
            assert decided == (1500, 1375, 125), decided
            # What reached the interface's stack: never a denied packet.
            assert seen[1] == 0 and sources.ops <= 125
            assert box.status()["generation"]["id"] == 6

            # regiond killed: the filter keeps filtering; a new regiond adopts it
            # (and its counters, which kept counting meanwhile).
            box.rd.send_signal(signal.SIGKILL)
            box.rd.wait()
            cap = Capture("xfa0", str(tmp_path / "c3.pcap"))
            lab.send("xfa1", "N = 100\nINTER = 0.0005\n" + SEND)
            assert sources(cap.stop())[1] == 0
            box.start_regiond(("--xdp-iface", "xfa0", "--bpf-pin-dir", pin))
            rc, st, _ = box.ctl("filter", "status", json_out=True)
            assert st["adopted"] and st["program_id"] == prog and st["generation"] == 6
            assert st["rules"]["deny-lab"]["packets"] - after["rules"]["deny-lab"]["packets"] == 50
            assert st["counters"]["default"] - after["counters"]["default"] == 50
            assert "XDP filter adopted on xfa0" in open(tmp_path / "regiond.log").read()

            # A table the filter cannot take is refused whole, regionfwd included.
            many = ", ".join(f"'2001:db8::/{33 + k}'" for k in range(40))
            bad = tmp_path / "bad.yaml"
            bad.write_text(open(DEMO).read() + FILTERS.format(extra=", " + many))
            rc, _, err = box.ctl("apply", str(bad))
            assert rc == 1 and "distinct lengths" in err
            assert box.gen() == 6

            # Valid, but beyond what the filter was loaded for (4,096 prefixes):
            # refused before the push (regionfwd used to run it for a moment
            # and be put back), by validate too, and no generation id is spent.
            fwd_before = box.status()["dataplane"]["status"]["generation"]["id"]
            big = ", ".join(f"10.{100 + k // 256}.{k % 256}.0/24" for k in range(4200))
            bigt = tmp_path / "big.yaml"
            bigt.write_text(open(DEMO).read() + FILTERS.format(extra=", " + big))
            rc, _, err = box.ctl("validate", str(bigt))
            assert rc == 1 and "filter_refused" in err and "it was loaded for 4096" in err, err
            rc, _, err = box.ctl("apply", str(bigt))
            assert rc == 1 and "filter_refused" in err and "it was loaded for 4096" in err, err
            s = box.status()
            assert s["generation"]["id"] == 6
            assert s["dataplane"]["status"]["generation"]["id"] == fwd_before  # never pushed
            assert s["dataplane"]["status"]["generation"]["hash"] == s["generation"]["hash"]
            rc, st, _ = box.ctl("filter", "status", json_out=True)
            assert st["generation"] == 6

            rc, out, _ = box.ctl("filter", "detach")
            assert rc == 0 and "detached" in out
            assert "prog/xdp" not in subprocess.run(["ip", "link", "show", "xfa0"], capture_output=True, text=True).stdout
            # the text says detached on purpose, not NOT ATTACHED as for an interface gone
            rc, out, _ = box.ctl("filter", "status")
            assert "(detached by regionctl filter detach)" in out and "NOT ATTACHED" not in out, out
            rc, out, _ = box.ctl("status")
            assert "detached by regionctl filter detach" in out and "NOT ATTACHED" not in out, out
            # the box's protection off is logged, with who took it off
            assert re.search(r"XDP filter detached by uid \d+ pid \d+ on the unix socket: the "
                             r"interfaces run unfiltered", open(tmp_path / "regiond.log").read())
        finally:
            box.stop()
            subprocess.run(["rm", "-rf", pin])


def test_pins_without_bpffs(tmp_path):
    """A root where nothing is mounted on /sys/fs/bpf (no systemd: a
    container, a minimal chroot, a rescue boot): regiond mounts bpffs there
    itself and filters. It never mounts over another mount, never pins into the
    shared bpffs root, and refuses a pin directory elsewhere that is not on
    bpffs, naming it, before anything is attached."""
    def in_own_mounts(setup):
        # --propagation private fails in a chroot (its / is no mount point,
        # as in CI's bare root): /sys alone is made private, all that changes
        return ["unshare", "--mount", "--propagation", "unchanged", "sh", "-c",
                "mount --make-rprivate /sys && " + setup + ' && exec "$@"', "sh"]
    bare = in_own_mounts("while umount /sys/fs/bpf 2>/dev/null; do :; done; "
                         "[ \"$(stat -f -c %T /sys/fs/bpf)\" = sysfs ]")
    with netns.VethLab("rfwd-test-bpffs", [("xfb0", "xfb1")]) as lab:
        box = Box(tmp_path, "bpffs", wrapper=bare,
                  regiond_args=("--xdp-iface", "xfb0", "--bpf-pin-dir", "/sys/fs/bpf/rfwd-bpffs/"))
        try:
            log = open(tmp_path / "regiond.log").read()
            assert "XDP filter: mounted bpffs on /sys/fs/bpf to pin into" in log
            rc, st, _ = box.ctl("filter", "status", json_out=True)
            assert rc == 0 and st["interfaces"][0]["ours"]
            lab.send("xfb1", "N = 100\nINTER = 0.0005\n" + SEND)
            st = box.ctl("filter", "status", json_out=True)[1]
            assert (st["counters"]["default"], st["counters"]["pass"]) == (100, 100)
            rc, out, _ = box.ctl("filter", "detach")
            assert rc == 0 and "detached" in out
        finally:
            box.stop()

        def refused(pin_dir, wrapper=()):
            p = subprocess.run([*wrapper, REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket",
                                str(tmp_path / "api2.sock"), "--state-dir", str(tmp_path / "state2"),
                                "--table", DEMO, "--xdp-iface", "xfb0", "--bpf-pin-dir", pin_dir],
                               capture_output=True, text=True, timeout=120)
            assert p.returncode == 1, p.stderr
            assert "prog/xdp" not in subprocess.run(["ip", "link", "show", "xfb0"], capture_output=True,
                                                    text=True).stdout
            return p.stderr
        # another mount on /sys/fs/bpf (here a tmpfs) is not mounted over
        err = refused("/sys/fs/bpf/rfwd-bpffs", in_own_mounts("mount -t tmpfs rfwd-not-bpf /sys/fs/bpf"))
        assert "/sys/fs/bpf holds a mount that is not bpffs" in err and "not mounting over it" in err, err
        # the shared root, by any spelling, is not regiond's to pin into
        for d in ("/sys/fs/bpf", "/sys/fs//bpf/"):
            assert "is the shared bpffs root" in refused(d)
        # anywhere else: what to mount, on the pin directory itself
        bad = tmp_path / "pins"
        err = refused(str(bad))
        assert f"{bad} is not on a bpf filesystem" in err and f"mkdir -p {bad} && mount -t bpf bpf {bad}" in err, err
        assert not bad.exists()  # refused before the mkdir that used to come first


def test_foreign_pins_are_refused_not_adopted(tmp_path):
    """Pins are adopted by name; a map of another layout pinned under a
    filter map's name (another program, an older layout, a hand) made the
    kernel write past regiond's buffer when it read the counters: a heap
    overflow and an abort at every start (found by a hostile probe). Now the
    pins are checked against the filter's own object first, and a mismatch
    stops regiond with what to do."""
    with filter_box(tmp_path, "foreign", ("xfc0", "xfc1")) as (lab, box, pin):
        box.rd.send_signal(signal.SIGKILL)
        box.rd.wait()
        counters = os.path.join(pin, "flt_counters")
        info = subprocess.run(["bpftool", "-j", "map", "show", "pinned", counters],
                              capture_output=True, text=True, check=True).stdout
        import json
        entries = json.loads(info)["max_entries"]
        os.unlink(counters)
        subprocess.run(["bpftool", "map", "create", counters, "type", "percpu_array", "key", "4",
                        "value", "4096", "entries", str(entries), "name", "flt_counters"], check=True)
        p = subprocess.run([REGIOND, "--dataplane", box.fwd_sock, "--api-socket", str(tmp_path / "api2.sock"),
                            "--state-dir", box.state, "--xdp-iface", "xfc0", "--bpf-pin-dir", pin],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 1, (p.returncode, p.stderr[-2000:])  # not SIGABRT (-6)
        assert "is not this regiond's: flt_counters" in p.stderr and "value 4096" in p.stderr, p.stderr


def test_pins_of_another_tool_are_never_removed(tmp_path):
    """A pin under one of the filter's names that regiond did not make
    (a map, or another program as "prog") stops the start, named, and is
    left where it was: a failed start unlinked another tool's flt_cfg and
    removed its directory, and the next start went on silently; another
    program pinned as "prog" was called a filter of ours missing its maps."""
    pin = "/sys/fs/bpf/rfwd-test-others"
    subprocess.run(["rm", "-rf", pin])
    os.makedirs(pin)
    cfg, other = os.path.join(pin, "flt_cfg"), os.path.join(pin, "someone_else")

    def start():
        return subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket",
                               str(tmp_path / "api.sock"), "--state-dir", str(tmp_path / "state"),
                               "--table", DEMO, "--xdp-iface", "xfo0", "--bpf-pin-dir", pin],
                              capture_output=True, text=True, timeout=120)
    try:
        with netns.VethLab("rfwd-test-others", [("xfo0", "xfo1")]):
            for path in (cfg, other):
                subprocess.run(["bpftool", "map", "create", path, "type", "array", "key", "4", "value", "4",
                                "entries", "1", "name", "someone"], check=True)
            p = start()
            assert p.returncode == 1, p.stderr[-2000:]
            assert f"{cfg} is there" in p.stderr and "not regiond's to replace or remove" in p.stderr, p.stderr
            assert os.path.exists(cfg) and os.path.exists(other), os.listdir(pin)
            assert sorted(os.listdir(pin)) == ["flt_cfg", "someone_else"], os.listdir(pin)
            assert xdp_prog("xfo0") == 0
            # another tool's program pinned as "prog": named as such
            os.unlink(cfg)
            os.unlink(other)
            src, obj = tmp_path / "pass.c", tmp_path / "pass.o"
            src.write_text(PASS_C)
            arch = subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip()
            subprocess.run(["clang", "-O2", "-target", "bpf", f"-I/usr/include/{arch}-linux-gnu", "-c", str(src),
                            "-o", str(obj)], check=True)
            subprocess.run(["bpftool", "prog", "load", str(obj), os.path.join(pin, "prog"), "type", "xdp"],
                           check=True)
            p = start()
            assert p.returncode == 1, p.stderr[-2000:]
            assert "is not this regiond's filter" in p.stderr and "but '" in p.stderr, p.stderr
            assert "incomplete" not in p.stderr, p.stderr
            assert os.listdir(pin) == ["prog"], os.listdir(pin)
    finally:
        subprocess.run(["rm", "-rf", pin])


def test_one_regiond_per_interface(tmp_path):
    """A second regiond on an interface another regiond filters (a fresh
    state directory, another --bpf-pin-dir or the same) adopted the
    running filter as the fast path's AF_XDP program, and could rewrite
    its rules or detach it. It is refused, naming the first one's pid, also
    when it names the interface by an altname, and before its state is
    touched; a regiond on another interface with the same pin directory
    is refused too (it adopted the first one's program and maps); refused
    starts never wait on the first one; the claim dies with the process,
    so a restart after a SIGKILL starts."""
    pin, pin2 = "/sys/fs/bpf/rfwd-test-one", "/sys/fs/bpf/rfwd-test-one2"
    for p in (pin, pin2):
        subprocess.run(["rm", "-rf", p])
    with netns.VethLab("rfwd-test-one", [("xfq0", "xfq1"), ("xfq2", "xfq3")]):
        box = Box(tmp_path, "one", regiond_args=("--xdp-iface", "xfq0", "--bpf-pin-dir", pin))
        second = None
        try:
            prog = xdp_prog("xfq0")
            assert prog != 0

            def start(pin_dir, n, iface="xfq0"):
                return subprocess.Popen([REGIOND, "--dataplane", box.fwd_sock, "--api-socket",
                                         str(tmp_path / f"api{n}.sock"), "--state-dir", str(tmp_path / f"st{n}"),
                                         "--xdp-iface", iface, "--bpf-pin-dir", pin_dir],
                                        stdout=open(tmp_path / f"rd{n}.log", "w"), stderr=subprocess.STDOUT)
            subprocess.run(["ip", "link", "property", "add", "dev", "xfq0", "altname", "xfqalt"], check=True)
            for n, (p, iface) in enumerate([(pin2, "xfq0"), (pin, "xfq0"), (pin2, "xfqalt"), (pin2, "xfq0")]):
                second = start(p, n, iface)
                assert second.wait(120) == 1, (tmp_path / f"rd{n}.log").read_text()
                log = (tmp_path / f"rd{n}.log").read_text()
                assert f"another regiond (pid {box.rd.pid}) manages the XDP filter on {iface}" in log or \
                    "(its pid not known) manages the XDP filter" in log, log
                assert "adopted" not in log and "applied" not in log, log
                assert not os.path.exists(tmp_path / f"st{n}"), log
                assert xdp_prog("xfq0") == prog
            assert not os.path.exists(pin2)
            # another interface, the same pin directory: refused, its pins untouched
            second = start(pin, 7, "xfq2")
            assert second.wait(120) == 1, (tmp_path / "rd7.log").read_text()
            log = (tmp_path / "rd7.log").read_text()
            assert f"another regiond uses the pin directory {pin}" in log, log
            # before its state is touched too (it once seeded an empty one)
            assert "applied" not in log and not os.path.exists(tmp_path / "st7"), log
            assert xdp_prog("xfq2") == 0 and xdp_prog("xfq0") == prog
            assert os.path.exists(os.path.join(pin, "prog"))
            box.rd.send_signal(signal.SIGKILL)
            box.rd.wait()
            second = start(pin, 9)
            wait_for(lambda: "XDP filter adopted on xfq0" in (tmp_path / "rd9.log").read_text(), timeout=60,
                     what="a restart after SIGKILL claims the interface")
            assert second.poll() is None and xdp_prog("xfq0") == prog
        finally:
            put_back(second, box, ifaces=("xfq0",), pins=(pin, pin2))


def test_interface_created_again_is_filtered_again(tmp_path):
    """An --xdp-iface deleted and created again comes back without the
    filter, and the kernel says nothing: its traffic went unfiltered while
    status said healthy (found by a hostile probe). Now health says so while
    it lacks the filter, and regiond attaches it again; a detach on purpose
    is left alone."""
    with filter_box(tmp_path, "readd", ("xfd0", "xfd1")) as (lab, box, pin):
        prog = box.ctl("filter", "status", json_out=True)[1]["program_id"]
        subprocess.run(["ip", "link", "del", "xfd0"], check=True)
        wait_for(lambda: box.status()["health"]["state"] == "degraded", timeout=20,
                 what="health says the interface lacks the filter")
        assert "XDP filter" in box.status()["health"]["reason"]
        # said as gone, not as "carries no program": there is no interface
        wait_for(lambda: "XDP filter: xfd0 is gone (no such interface)" in
                 open(tmp_path / "regiond.log").read(), timeout=20, what="the log says xfd0 is gone")
        subprocess.run(f"ip link add xfd0 type veth peer name xfd1 netns {lab.ns} && ip link set xfd0 up",
                       shell=True, check=True)
        wait_for(lambda: (lambda i: i["ours"] and i["program_id"] == prog)(
            box.ctl("filter", "status", json_out=True)[1]["interfaces"][0]), timeout=20,
            what="the filter attached again")
        wait_for(lambda: box.status()["health"]["state"] == "healthy", timeout=20, what="healthy again")
        log = open(tmp_path / "regiond.log").read()
        assert "xfd0 carries no program" not in log and "attached again to xfd0" in log, log[-3000:]
        rc, out, _ = box.ctl("filter", "detach")
        assert rc == 0
        time.sleep(3)  # a detach on purpose: nothing attaches it again
        assert "prog/xdp" not in subprocess.run(["ip", "link", "show", "xfd0"], capture_output=True,
                                                text=True).stdout
        assert box.status()["health"]["state"] == "healthy"


PASS_C = """#include <linux/bpf.h>
__attribute__((section("xdp"), used)) int foreign_pass(struct xdp_md *c) { return XDP_PASS; }
char _license[] __attribute__((section("license"), used)) = "GPL";
"""


@contextlib.contextmanager
def filter_box(tmp_path, tag, pair, regiond_args=()):
    """A veth @pair in namespace rfwd-test-@tag (its first end in this
    one) and a Box whose regiond filters that end, pinned at
    /sys/fs/bpf/rfwd-test-@tag (emptied first): (lab, box, pin). Put
    back whatever the test did, a failed start included."""
    pin = f"/sys/fs/bpf/rfwd-test-{tag}"
    subprocess.run(["rm", "-rf", pin])
    with netns.VethLab(f"rfwd-test-{tag}", [pair]) as lab:
        box = None
        try:
            box = Box(tmp_path, tag, regiond_args=("--xdp-iface", pair[0], "--bpf-pin-dir", pin) + tuple(regiond_args))
            yield lab, box, pin
        finally:
            put_back(box, ifaces=(pair[0],), pins=(pin,))


def put_back(*procs, ifaces=(), pins=()):
    """What a test leaves behind, taken away whatever failed: @procs
    stopped (a Box, or a second regiond's Popen), the filter taken off
    @ifaces (quietly: one may be gone), the pin directories @pins removed."""
    for p in procs:
        if p is None:
            continue
        if isinstance(p, Box):
            p.stop()
        elif p.poll() is None:
            p.terminate()
            p.wait(30)
    for i in ifaces:
        subprocess.run(["ip", "link", "set", "dev", i, "xdp", "off"], capture_output=True)
    for d in pins:
        subprocess.run(["rm", "-rf", d])


def foreign_xdp(tmp_path, iface):
    """Attach a program that is not regiond's to @iface: its id."""
    src, obj = tmp_path / "pass.c", tmp_path / "pass.o"
    if not obj.exists():
        src.write_text(PASS_C)
        arch = subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip()
        subprocess.run(["clang", "-O2", "-target", "bpf", f"-I/usr/include/{arch}-linux-gnu", "-c", str(src),
                        "-o", str(obj)], check=True)
    subprocess.run(["ip", "-force", "link", "set", "dev", iface, "xdp", "obj", str(obj), "sec", "xdp"], check=True)
    return xdp_prog(iface)


def xdp_prog(iface):
    """The id of the XDP program on @iface, 0 for none."""
    import json
    out = subprocess.run(["ip", "-j", "link", "show", iface], capture_output=True, text=True, check=True).stdout
    x = json.loads(out)[0].get("xdp", {})
    return x.get("prog", {}).get("id", 0) or next((p["prog"]["id"] for p in x.get("attached", [])), 0)


def test_failed_start_leaves_interfaces_as_found(tmp_path):
    """A start with several --xdp-iface is all or nothing: one that does not
    exist, or runs another program, used to leave the ones before it with a
    freshly loaded filter passing everything (found by a hostile probe). A
    filter adopted from an earlier regiond stays: it enforces its table."""
    pin = "/sys/fs/bpf/rfwd-test-allornot"
    subprocess.run(["rm", "-rf", pin])
    t1 = tmp_path / "t1.yaml"
    t1.write_text(open(DEMO).read() + FILTERS.format(extra="").replace("default: pass", "default: pass\n  malformed: drop"))

    def start(*ifaces):
        args = [a for i in ifaces for a in ("--xdp-iface", i)]
        return subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket",
                               str(tmp_path / "api2.sock"), "--state-dir", str(tmp_path / "state2"),
                               "--table", str(t1), *args, "--bpf-pin-dir", pin],
                              capture_output=True, text=True, timeout=120)
    with netns.VethLab("rfwd-test-allornot", [("xfe0", "xfe1"), ("xfe2", "xfe3")]):
        try:
            p = start("xfe0", "xfenonexist")
            assert p.returncode == 1 and "no interface 'xfenonexist'" in p.stderr, p.stderr
            # said before the state directory is touched: no seed applied
            assert "applied" not in p.stderr and not os.path.exists(tmp_path / "state2"), p.stderr
            assert xdp_prog("xfe0") == 0, p.stderr
            assert not os.path.exists(pin)
            foreign = foreign_xdp(tmp_path, "xfe2")
            p = start("xfe0", "xfe2")
            assert p.returncode == 1 and "already runs XDP program" in p.stderr, p.stderr
            assert xdp_prog("xfe0") == 0 and xdp_prog("xfe2") == foreign, p.stderr
            assert not os.path.exists(pin)
            # the foreign program listed first: nothing is touched either
            p = start("xfe2", "xfe0")
            assert p.returncode == 1 and xdp_prog("xfe0") == 0 and xdp_prog("xfe2") == foreign

            # An earlier regiond's filter, adopted from its pins, enforces its
            # table: a restart that fails leaves it attached and pinned.
            box = Box(tmp_path, "allornot", regiond_args=("--xdp-iface", "xfe0", "--bpf-pin-dir", pin))
            try:
                rc, _, err = box.ctl("apply", str(t1))
                assert rc == 0, err
                prog = xdp_prog("xfe0")
                box.rd.send_signal(signal.SIGKILL)
                box.rd.wait()
                p = subprocess.run([REGIOND, "--dataplane", box.fwd_sock, "--api-socket", str(tmp_path / "api3.sock"),
                                    "--state-dir", box.state, "--xdp-iface", "xfe0", "--xdp-iface", "xfe2",
                                    "--bpf-pin-dir", pin], capture_output=True, text=True, timeout=120)
                assert p.returncode == 1 and "already runs XDP program" in p.stderr, p.stderr
                assert xdp_prog("xfe0") == prog and xdp_prog("xfe2") == foreign
                assert os.path.exists(os.path.join(pin, "prog"))
            finally:
                box.stop()
        finally:
            put_back(ifaces=("xfe0", "xfe2"), pins=(pin,))


ATTACH_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
/* bpf_xdp_attach() refuses the interface named by XDP_FAIL_IFACE, as a
 * driver may refuse a program after every check passed. */
int bpf_xdp_attach(int ifindex, int prog_fd, unsigned flags, const void *opts)
{
	static int (*real)(int, int, unsigned, const void *);
	const char *fail = getenv("XDP_FAIL_IFACE");

	if (fail && (unsigned)ifindex == if_nametoindex(fail))
		return -EBUSY;
	if (real == NULL)
		real = (int (*)(int, int, unsigned, const void *))dlsym(RTLD_NEXT, "bpf_xdp_attach");
	return real(ifindex, prog_fd, flags, opts);
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler for the attach shim")
def test_a_refused_attach_puts_the_earlier_filter_back(tmp_path):
    """A start whose attach to its second interface is refused after every
    check passed (a driver's refusal) takes its new filter off the first
    and puts back the filter that ran there before -- an earlier regiond's,
    whose pins are gone -- in one step: the interface is never left
    without it. The pins the start found stay (it did not make them)."""
    pin1, pin2 = "/sys/fs/bpf/rfwd-test-back1", "/sys/fs/bpf/rfwd-test-back2"
    pre = preload_shim(tmp_path, "attach", ATTACH_SHIM)
    t1 = tmp_path / "t1.yaml"
    t1.write_text(open(DEMO).read() + FILTERS.format(extra=""))

    def regiond(n, pin, *ifaces, env=None):
        args = [a for i in ifaces for a in ("--xdp-iface", i)]
        return subprocess.Popen([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket",
                                 str(tmp_path / f"api{n}.sock"), "--state-dir", str(tmp_path / f"state{n}"),
                                 "--table", str(t1), *args, "--bpf-pin-dir", pin],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for p in (pin1, pin2):
        subprocess.run(["rm", "-rf", p])
    with netns.VethLab("rfwd-test-back", [("xfg0", "xfg1"), ("xfg2", "xfg3")]):
        try:
            first = regiond(1, pin1, "xfg0")
            try:
                wait_for(lambda: os.path.exists(os.path.join(pin1, "prog")) and xdp_prog("xfg0"), 60,
                         "the first regiond's filter on xfg0")
                before = xdp_prog("xfg0")
            finally:
                first.kill()
                first.communicate()
            subprocess.run(["rm", "-rf", pin1], check=True)  # its pins gone
            assert xdp_prog("xfg0") == before
            # Another regiond's filter, pinned under pin2, and taken off
            # xfg2 again: the next start's program, which is not xfg0's.
            second = regiond(2, pin2, "xfg2")
            try:
                wait_for(lambda: os.path.exists(os.path.join(pin2, "prog")) and xdp_prog("xfg2"), 60,
                         "the second regiond's filter on xfg2")
                pinned = xdp_prog("xfg2")
            finally:
                second.kill()
                second.communicate()
            subprocess.run(["ip", "link", "set", "dev", "xfg2", "xdp", "off"], check=True)
            assert pinned != before

            env = dict(os.environ, LD_PRELOAD=pre, XDP_FAIL_IFACE="xfg2")
            third = regiond(3, pin2, "xfg0", "xfg2", env=env)
            out, _ = third.communicate(timeout=120)
            assert third.returncode == 1 and "XDP on xfg2 refused" in out, out[-2000:]
            assert xdp_prog("xfg0") == before, out[-2000:]
            assert xdp_prog("xfg2") == 0
            assert "XDP filter taken off xfg0 again: the start failed" in out, out[-2000:]
            assert os.path.exists(os.path.join(pin2, "prog"))  # not this start's to take
        finally:
            put_back(ifaces=("xfg0", "xfg2"), pins=(pin1, pin2))


def rules_table(tmp_path, name, rules):
    """DEMO with a filters section of @rules, in that order."""
    body = {"deny-lab": "{name: deny-lab, action: drop, prefixes: [10.9.0.0/16]}",
            "allow-ops": "{name: allow-ops, action: pass, prefixes: [10.9.7.0/24]}",
            "no-telnet": "{name: no-telnet, action: drop, services: [tcp/23]}",
            "zz-new": "{name: zz-new, action: drop, prefixes: [10.77.0.0/16]}"}
    p = tmp_path / name
    p.write_text(open(DEMO).read() + "\nfilters:\n  default: pass\n  rules:\n" +
                 "".join(f"    - {body[r]}\n" for r in rules))
    return str(p)


def test_rule_counters_follow_names(tmp_path):
    """Per-rule counters were kept by rule position: a table that put a new
    rule first showed the old first rule's hits under the new name, and 0
    for the rule that had them (found by a hostile probe). They follow the
    rule's name through reorders, insertions, removals, both halves and a
    restart; a rule removed and added again starts from 0."""
    with filter_box(tmp_path, "names", ("xfn0", "xfn1")) as (lab, box, pin):
        def rules():
            return {k: (v["packets"], v["bytes"]) for k, v in
                    box.ctl("filter", "status", json_out=True)[1]["rules"].items()}

        def send(n):  # n / 2 packets from 10.9.0.x: deny-lab's while it exists
            before = box.ctl("filter", "status", json_out=True)[1]["counters"]
            lab.send("xfn1", f"N = {n}\nINTER = 0.0005\n" + SEND)
            wait_for(lambda: (lambda c: c["pass"] + c["drop"] - before["pass"] - before["drop"] >= n)(
                box.ctl("filter", "status", json_out=True)[1]["counters"]), what="the filter's counts")

        def apply(name, order):
            rc, _, err = box.ctl("apply", rules_table(tmp_path, name, order))
            assert rc == 0, err

        apply("a.yaml", ["deny-lab", "allow-ops", "no-telnet"])
        send(14)
        lab0 = rules()["deny-lab"]
        assert lab0[0] == 7 and lab0[1] > 0, rules()
        # a new rule first, deny-lab last: two applies, so both halves
        apply("b.yaml", ["zz-new", "allow-ops", "no-telnet", "deny-lab"])
        assert rules() == {"zz-new": (0, 0), "allow-ops": (0, 0), "no-telnet": (0, 0), "deny-lab": lab0}
        apply("b2.yaml", ["no-telnet", "deny-lab", "zz-new", "allow-ops"])
        assert rules()["deny-lab"] == lab0 and rules()["zz-new"] == (0, 0)
        send(14)
        r = rules()
        assert r["deny-lab"] == (14, 2 * lab0[1]) and r["zz-new"] == (0, 0), r
        _, m = box.http("GET", "/metrics")
        assert 'regiond_xdp_rule_packets_total{rule="zz-new"} 0' in m, m
        assert 'regiond_xdp_rule_packets_total{rule="deny-lab"} 14' in m, m
        # a restart finds the names' counters again
        box.rd.send_signal(signal.SIGKILL)
        box.rd.wait()
        box.start_regiond(("--xdp-iface", "xfn0", "--bpf-pin-dir", pin))
        assert rules() == r
        # removed: gone; added again later: from 0, not another rule's counts
        apply("c.yaml", ["zz-new", "allow-ops"])
        send(14)
        assert rules() == {"zz-new": (0, 0), "allow-ops": (0, 0)}
        apply("d.yaml", ["deny-lab", "zz-new", "allow-ops", "no-telnet"])
        assert rules() == {"deny-lab": (0, 0), "zz-new": (0, 0), "allow-ops": (0, 0), "no-telnet": (0, 0)}
        send(14)
        assert rules()["deny-lab"] == (7, lab0[1]) and rules()["zz-new"] == (0, 0)


def test_explain_says_where_the_filter_is_enforced_now(tmp_path):
    """explain said a packet was dropped in XDP "on" an interface whose
    filter another program had replaced (status: NOT OURS), or that was
    gone (NOT ATTACHED) (found by a hostile probe). enforced_on now holds
    only the interfaces that carry our program at the current generation,
    the truth status reads; the others are named with why."""
    pin = "/sys/fs/bpf/rfwd-test-explain"
    subprocess.run(["rm", "-rf", pin])
    with netns.VethLab("rfwd-test-explain", [("xfx0", "xfx1"), ("xfx2", "xfx3")]):
        box = Box(tmp_path, "explain", regiond_args=("--xdp-iface", "xfx0", "--xdp-iface", "xfx2",
                                                     "--bpf-pin-dir", pin))
        try:
            rc, _, err = box.ctl("apply", table(tmp_path, "f.yaml"))
            assert rc == 0, err
            args = ("10.9.1.1", "192.0.2.1", "udp", "9")

            def explain():
                rc, e, err = box.ctl("explain", *args, json_out=True)
                assert rc == 0, err
                rc, out, err = box.ctl("explain", *args)
                assert rc == 0, err
                return e["xdp"], out
            x, out = explain()
            assert (x["verdict"], x["enforced_on"], x.get("not_enforced_on", [])) == ("drop", ["xfx0", "xfx2"], []), x
            assert "it never reaches regionfwd" in out
            foreign = foreign_xdp(tmp_path, "xfx2")
            x, out = explain()
            assert x["enforced_on"] == ["xfx0"], x
            assert x["not_enforced_on"] == [{"interface": "xfx2",
                                            "why": f"it runs another XDP program (id {foreign})"}], x
            assert "drop by rule deny-lab (source prefix 10.9.0.0/16) on xfx0\n" in out, out
            assert f"not enforced on xfx2: it runs another XDP program (id {foreign})" in out, out
            foreign_xdp(tmp_path, "xfx0")
            x, out = explain()
            assert x["enforced_on"] == [] and [i["interface"] for i in x["not_enforced_on"]] == ["xfx0", "xfx2"], x
            assert " on xfx" not in out.splitlines()[1] and "it never reaches regionfwd" not in out, out
            assert "not enforced on any interface" in out and "the filter would drop it but" in out, out
            subprocess.run(["ip", "link", "del", "xfx0"], check=True)
            wait_for(lambda: "NOT ATTACHED" in box.ctl("status")[1], what="status says NOT ATTACHED")
            x, out = explain()
            assert x["enforced_on"] == [] and x["not_enforced_on"][0] == {"interface": "xfx0",
                                                                          "why": "no such interface"}, x
            assert "xfx0: no such interface" in out and "it never reaches regionfwd" not in out, out
        finally:
            put_back(box, ifaces=("xfx0", "xfx2"), pins=(pin,))


def bpf_map_value(path, key=0):
    """The value bytes of array map @path (a pin) at @key."""
    import json
    out = subprocess.run(["bpftool", "-j", "map", "lookup", "pinned", path, "key",
                          *[str(b) for b in key.to_bytes(4, "little")]],
                         capture_output=True, text=True, check=True).stdout
    return bytes(int(b, 16) for b in json.loads(out)["value"])


def regiond_alone(box, tmp_path, n, *args):
    """Another regiond beside @box's (its own state and API socket), started
    with @args: the process, logging to rd{n}.log."""
    return subprocess.Popen([REGIOND, "--dataplane", box.fwd_sock, "--api-socket", str(tmp_path / f"api{n}.sock"),
                             "--state-dir", str(tmp_path / f"st{n}"), *args],
                            stdout=open(tmp_path / f"rd{n}.log", "w"), stderr=subprocess.STDOUT)


def test_an_interface_created_again_is_claimed_again(tmp_path):
    """An interface is claimed by its ifindex at start; deleted and created
    again it has another, and a second regiond given it by an altname was
    let in: it adopted the first one's program, and the two rewrote each
    other's rules every second, both healthy (a probe). The first now claims
    the new ifindex before it attaches again, and the second is refused.
    Two --xdp-iface naming one device are refused as that, where the second
    claim named regiond itself as "another regiond"."""
    pin, pin2 = "/sys/fs/bpf/rfwd-test-reclaim", "/sys/fs/bpf/rfwd-test-reclaim2"
    for p in (pin, pin2):
        subprocess.run(["rm", "-rf", p])
    with netns.VethLab("rfwd-test-reclaim", [("xfr0", "xfr1")]) as lab:
        box = Box(tmp_path, "reclaim", regiond_args=("--xdp-iface", "xfr0", "--bpf-pin-dir", pin))
        second = None
        try:
            prog = xdp_prog("xfr0")
            # Before the first one sees it back (stopped here: it checks
            # every second), the new ifindex is no one's: the altname's
            # primary name, the first one's claim, keeps the second out.
            box.rd.send_signal(signal.SIGSTOP)
            try:
                subprocess.run(["ip", "link", "del", "xfr0"], check=True)
                subprocess.run(f"ip link add xfr0 type veth peer name xfr1 netns {lab.ns} && ip link set xfr0 up && "
                               "ip link property add dev xfr0 altname xfralt", shell=True, check=True)
                second = regiond_alone(box, tmp_path, 0, "--xdp-iface", "xfralt", "--bpf-pin-dir", pin2)
                assert second.wait(60) == 1, (tmp_path / "rd0.log").read_text()
            finally:
                box.rd.send_signal(signal.SIGCONT)
            log = (tmp_path / "rd0.log").read_text()
            assert f"another regiond (pid {box.rd.pid}) manages the XDP filter on xfralt" in log, log
            wait_for(lambda: xdp_prog("xfr0") == prog, timeout=20, what="the filter attached again")
            second = regiond_alone(box, tmp_path, 1, "--xdp-iface", "xfralt", "--bpf-pin-dir", pin2)
            assert second.wait(120) == 1, (tmp_path / "rd1.log").read_text()
            log = (tmp_path / "rd1.log").read_text()
            assert f"another regiond (pid {box.rd.pid}) manages the XDP filter on xfralt" in log, log
            assert "adopted" not in log and xdp_prog("xfr0") == prog, log
            box.rd.send_signal(signal.SIGTERM)
            box.rd.wait(60)
            second = regiond_alone(box, tmp_path, 2, "--xdp-iface", "xfr0", "--xdp-iface", "xfralt",
                                   "--bpf-pin-dir", pin2)
            assert second.wait(120) == 1, (tmp_path / "rd2.log").read_text()
            log = (tmp_path / "rd2.log").read_text()
            assert "--xdp-iface xfr0 and xfralt are the same interface" in log, log
        finally:
            put_back(second, box, ifaces=("xfr0",), pins=(pin, pin2))


def test_a_claim_held_by_another_is_said_and_taken_once_free(tmp_path):
    """Our program on an interface created again whose new ifindex another
    process has claimed (our program put back there before this regiond
    looked): the refusal was logged as "is back, not attached again" though
    the filter ran there, status and health said nothing, and each second's
    retry connected to the holder to ask its pid, connections it never
    accepts, until its backlog was full. Now: said as what it is, status
    "claimed": false, health degraded, the holder asked once; claimed as
    soon as the holder lets go."""
    import socket
    pin = "/sys/fs/bpf/rfwd-test-held"
    subprocess.run(["rm", "-rf", pin])
    with netns.VethLab("rfwd-test-held", [("xfh0", "xfh1")]) as lab:
        box = Box(tmp_path, "held", regiond_args=("--xdp-iface", "xfh0", "--bpf-pin-dir", pin))
        holder = None
        try:
            prog = xdp_prog("xfh0")
            log = tmp_path / "regiond.log"
            box.rd.send_signal(signal.SIGSTOP)
            try:
                subprocess.run(["ip", "link", "del", "xfh0"], check=True)
                subprocess.run(f"ip link add xfh0 type veth peer name xfh1 netns {lab.ns} && ip link set xfh0 up",
                               shell=True, check=True)
                idx = socket.if_nametoindex("xfh0")
                holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                holder.bind(f"\0regiond-xdp/if{idx}")
                holder.listen(8)
                holder.setblocking(False)
                subprocess.run(["bpftool", "net", "attach", "xdp", "pinned", f"{pin}/prog", "dev", "xfh0"],
                               check=True)
                assert xdp_prog("xfh0") == prog
            finally:
                box.rd.send_signal(signal.SIGCONT)
            said = (f"XDP filter: xfh0 has a new ifindex ({idx}) this regiond cannot claim: another regiond "
                    f"(pid {os.getpid()}) manages the XDP filter on xfh0")
            wait_for(lambda: said in log.read_text(), timeout=20, what="the refused claim said")
            iface = box.ctl("filter", "status", json_out=True)[1]["interfaces"][0]
            assert iface["ours"] and iface["claimed"] is False, iface
            health = box.status()["health"]
            assert health["state"] == "degraded" and "another process holds the claim of --xdp-iface xfh0" in \
                health["reason"], health
            rc, out, _ = box.ctl("filter", "status")
            assert "NOT CLAIMED" in out, out
            time.sleep(3)  # three more tries: none asks the holder again
            asked = 0
            while True:
                try:
                    holder.accept()[0].close()
                    asked += 1
                except BlockingIOError:
                    break
            assert asked == 1, asked
            assert log.read_text().count(said) == 1
            holder.close()
            holder = None
            wait_for(lambda: box.ctl("filter", "status", json_out=True)[1]["interfaces"][0]["claimed"],
                     timeout=20, what="the claim taken once free")
            assert f"XDP filter: xfh0 (ifindex {idx}) claimed by this regiond now" in log.read_text()
            assert box.status()["health"]["state"] == "healthy"
            assert xdp_prog("xfh0") == prog
        finally:
            if holder:
                holder.close()
            put_back(box, ifaces=("xfh0",), pins=(pin,))


def test_maps_written_by_another_are_said_not_fought(tmp_path):
    """Two regionds on one program (one adopted the other's) each found the
    maps' generation not theirs and wrote their own every second: the
    rules on the wire alternated, both said healthy. A regiond now writes
    over a generation it did not write only with the next change applied;
    until then it says so (status filters.foreign_writer, health)."""
    with filter_box(tmp_path, "written", ("xfw0", "xfw1")) as (lab, box, pin):
        rc, _, err = box.ctl("apply", table(tmp_path, "f.yaml"))
        assert rc == 0, err
        gen = box.ctl("filter", "status", json_out=True)[1]["generation"]
        half = bpf_map_value(f"{pin}/flt_cfg")[0] & 1
        v = bpf_map_value(f"{pin}/flt_half", half)
        subprocess.run(["bpftool", "map", "update", "pinned", f"{pin}/flt_half", "key",
                        *[str(b) for b in half.to_bytes(4, "little")], "value",
                        *[str(b) for b in (999).to_bytes(4, "little") + v[4:]]], check=True)
        st = wait_for(lambda: (lambda s: s if s["foreign_writer"] else None)(
            box.ctl("filter", "status", json_out=True)[1]), timeout=20, what="the foreign write said")
        assert st["generation"] == 999
        wait_for(lambda: box.status()["health"]["state"] == "degraded", timeout=20, what="health says it")
        assert "another process" in box.status()["health"]["reason"]
        time.sleep(3)  # not written over
        assert box.ctl("filter", "status", json_out=True)[1]["generation"] == 999
        assert "which this regiond did not write" in open(tmp_path / "regiond.log").read()
        rc, _, err = box.ctl("apply", table(tmp_path, "g.yaml", extra=", 10.99.0.0/16"))
        assert rc == 0, err
        st = box.ctl("filter", "status", json_out=True)[1]
        assert st["generation"] == gen + 1 and not st["foreign_writer"], st
        wait_for(lambda: box.status()["health"]["state"] == "healthy", timeout=20, what="healthy again")


def test_native_mode_refuses_an_adopted_generic_filter(tmp_path):
    """An auto start that fell back to generic mode left the filter there;
    a restart with --xdp-mode native adopted it as it was and said healthy,
    where a fresh native start is refused. Refused now too, the filter left
    attached as found."""
    pin = "/sys/fs/bpf/rfwd-test-native"
    subprocess.run(["rm", "-rf", pin])
    with netns.VethLab("rfwd-test-native", [("xfk0", "xfk1")]) as lab:
        # a peer MTU native XDP on a veth refuses
        subprocess.run(["ip", "link", "set", "xfk0", "mtu", "9000"], check=True)
        lab.run_in_ns("ip link set xfk1 mtu 9000")
        box = Box(tmp_path, "native", regiond_args=("--xdp-iface", "xfk0", "--bpf-pin-dir", pin))
        second = None
        try:
            prog = xdp_prog("xfk0")
            assert box.ctl("filter", "status", json_out=True)[1]["interfaces"][0]["mode"] == "generic"
            box.rd.send_signal(signal.SIGTERM)
            box.rd.wait(60)
            second = regiond_alone(box, tmp_path, 1, "--xdp-iface", "xfk0", "--bpf-pin-dir", pin,
                                   "--xdp-mode", "native")
            assert second.wait(120) == 1, (tmp_path / "rd1.log").read_text()
            log = (tmp_path / "rd1.log").read_text()
            assert "--xdp-mode native, but xfk0 carries the filter in generic mode" in log, log
            # what it advises works without a running regiond (it is the start refused)
            assert "take it off (ip link set dev xfk0 xdpgeneric off)" in log, log
            assert xdp_prog("xfk0") == prog
        finally:
            put_back(second, box, ifaces=("xfk0",), pins=(pin,))


def test_an_interface_away_and_back(tmp_path):
    """Renamed away and back, the interface carried the filter again but
    status said attached_as "none" for good. Moved to another network
    namespace, a detach answered "not attached", removed the pins and left
    the program running there: it came back filtered. Now the detach says
    it waits for the interface, keeps the pins, and takes the program off
    when the interface is back."""
    with filter_box(tmp_path, "away", ("xfv0", "xfv1")) as (lab, box, pin):
        prog = xdp_prog("xfv0")
        mode = box.ctl("filter", "status", json_out=True)[1]["interfaces"][0]["attached_as"]
        subprocess.run(["ip", "link", "set", "xfv0", "name", "xfvz"], check=True)
        wait_for(lambda: "xfv0 is gone" in open(tmp_path / "regiond.log").read(), timeout=20,
                 what="regiond sees the interface gone")
        subprocess.run(["ip", "link", "set", "xfvz", "name", "xfv0"], check=True)
        wait_for(lambda: (lambda i: i["ours"] and i["attached_as"] == mode)(
            box.ctl("filter", "status", json_out=True)[1]["interfaces"][0]), timeout=20,
            what=f"status says attached as {mode} again")
        # and the log says so too: its last word was "gone"
        assert f"XDP filter: xfv0 is back, carrying the filter in {mode} mode" in \
            open(tmp_path / "regiond.log").read()
        subprocess.run(["ip", "link", "set", "xfv0", "netns", lab.ns], check=True)
        rc, out, err = box.ctl("filter", "detach")
        assert rc == 0 and "taken off when it is back" in out, out + err
        assert os.path.exists(f"{pin}/prog")
        st = box.ctl("filter", "status", json_out=True)[1]
        assert st["detached"] and st["detach_pending"], st
        lab.run_in_ns("ip link set xfv0 netns 1")
        subprocess.run(["ip", "link", "set", "xfv0", "up"], check=True)
        wait_for(lambda: not os.path.exists(f"{pin}/prog"), timeout=20, what="the pins removed")
        assert xdp_prog("xfv0") == 0 and prog != 0
        assert "the detach is done there" in open(tmp_path / "regiond.log").read()


def test_an_attach_the_kernel_keeps_refusing_is_said_once(tmp_path):
    """With --xdp-mode native, an interface created again that native XDP
    refuses (a veth whose peer's MTU is too large) was retried every second
    and said only by libbpf's raw stderr line, each time, without the
    kernel's reason anywhere regiond's own. Now regiond says once why, in
    the kernel's words, and libbpf's line goes to its log once."""
    with filter_box(tmp_path, "refused", ("xfu0", "xfu1"), regiond_args=("--xdp-mode", "native")) as (lab, box, pin):
        subprocess.run(["ip", "link", "del", "xfu0"], check=True)
        # Both ends made with their MTU at once: a peer at 1500 for a
        # moment let regiond's next try attach (the kernel refuses
        # only while the peer's MTU is too large), and then refused
        # the peer its 9000 (seen under the sanitizer stage's load).
        subprocess.run(f"ip link add xfu0 mtu 9000 type veth peer name xfu1 mtu 9000 netns {lab.ns} && "
                       "ip link set xfu0 up", shell=True, check=True)
        lab.run_in_ns("ip link set xfu1 up")
        log = tmp_path / "regiond.log"
        wait_for(lambda: "XDP filter: attaching to xfu0 again failed: native XDP on xfu0 refused" in
                 log.read_text(), timeout=20, what="the refusal said")
        time.sleep(3)  # three more tries
        text = log.read_text()
        assert text.count("attaching to xfu0 again failed") == 1, text[-3000:]
        assert "(the kernel: " in text and text.count("Kernel error message") <= 1, text[-3000:]
        assert box.status()["health"]["state"] == "degraded"


def test_a_gone_interface_back_with_another_program_is_said(tmp_path):
    """An --xdp-iface deleted, then created again carrying someone else's
    program: the log's last word stayed "is gone ... attached again once it
    exists" (status and health were right). Now the other program is said."""
    pin = "/sys/fs/bpf/rfwd-test-backother"
    subprocess.run(["rm", "-rf", pin])
    with netns.VethLab("rfwd-test-backother", [("xfo0", "xfo1")]) as lab:
        box = Box(tmp_path, "backother", regiond_args=("--xdp-iface", "xfo0", "--bpf-pin-dir", pin))
        log = tmp_path / "regiond.log"
        try:
            subprocess.run(["ip", "link", "del", "xfo0"], check=True)
            wait_for(lambda: "xfo0 is gone" in log.read_text(), timeout=20, what="the log says gone")
            box.rd.send_signal(signal.SIGSTOP)  # so that it cannot attach ours first
            try:
                subprocess.run(f"ip link add xfo0 type veth peer name xfo1 netns {lab.ns} && ip link set xfo0 up",
                               shell=True, check=True)
                other = foreign_xdp(tmp_path, "xfo0")
            finally:
                box.rd.send_signal(signal.SIGCONT)
            wait_for(lambda: f"XDP filter: xfo0 carries another program, id {other}: left alone" in log.read_text(),
                     timeout=20, what="the other program said")
            assert xdp_prog("xfo0") == other
        finally:
            box.rd.send_signal(signal.SIGCONT)
            put_back(box, ifaces=("xfo0",), pins=(pin,))


def test_a_regionds_filter_whose_pins_are_gone_is_its_own(tmp_path):
    """A regiond whose pins were gone (a bpffs mounted in a mount namespace
    that ended with it: `ip netns exec` gives one) found its own program on
    the interface, took it for the fast path's AF_XDP program, and never
    attached it again to the interface created again: unfiltered until a
    restart. The program now says who loaded it: pinned again, adopted,
    and attached again when the interface comes back."""
    pin = "/sys/fs/bpf/rfwd-test-repin"
    subprocess.run(["rm", "-rf", pin])
    with netns.VethLab("rfwd-test-repin", [("xfp0", "xfp1")]) as lab:
        box = Box(tmp_path, "repin", regiond_args=("--xdp-iface", "xfp0", "--bpf-pin-dir", pin))
        second = None
        try:
            prog = xdp_prog("xfp0")
            box.rd.send_signal(signal.SIGTERM)
            box.rd.wait(60)
            subprocess.run(["rm", "-rf", pin], check=True)
            second = regiond_alone(box, tmp_path, 1, "--xdp-iface", "xfp0", "--bpf-pin-dir", pin)
            log = tmp_path / "rd1.log"
            wait_for(lambda: "whose pins are gone" in log.read_text(), timeout=60, what="the program pinned again")
            assert os.path.exists(f"{pin}/prog") and xdp_prog("xfp0") == prog
            assert "adopted from the fast path's" not in log.read_text()
            subprocess.run(["ip", "link", "del", "xfp0"], check=True)
            subprocess.run(f"ip link add xfp0 type veth peer name xfp1 netns {lab.ns} && ip link set xfp0 up",
                           shell=True, check=True)
            wait_for(lambda: xdp_prog("xfp0") == prog, timeout=20, what="the filter attached again")
        finally:
            put_back(second, box, ifaces=("xfp0",), pins=(pin,))


def test_a_detach_follows_a_rename_and_gives_up_when_asked_again(tmp_path):
    """A renamed interface was taken for one out of the namespace: the
    detach waited for its name to come back while the program ran on it
    under its new name. The rename is followed by ifindex now. And an
    interface that never comes back (deleted, or left in another
    namespace) kept the detach pending for good: a second detach gives up
    on it, removes the pins and says so."""
    pin, pin2 = "/sys/fs/bpf/rfwd-test-detren", "/sys/fs/bpf/rfwd-test-detren2"
    for p in (pin, pin2):
        subprocess.run(["rm", "-rf", p])
    with netns.VethLab("rfwd-test-detren", [("xfy0", "xfy1"), ("xfz0", "xfz1")]) as lab:
        one, two = tmp_path / "one", tmp_path / "two"
        one.mkdir()
        two.mkdir()
        box = Box(one, "detren", regiond_args=("--xdp-iface", "xfy0", "--bpf-pin-dir", pin))
        try:
            assert xdp_prog("xfy0") != 0
            subprocess.run(["ip", "link", "set", "xfy0", "name", "xfyr"], check=True)
            rc, out, err = box.ctl("filter", "detach")
            assert rc == 0 and out.strip() == "detached", out + err
            assert xdp_prog("xfyr") == 0 and not os.path.exists(f"{pin}/prog")
        finally:
            box.stop()
            subprocess.run(["ip", "link", "set", "xfyr", "name", "xfy0"])
            subprocess.run(["rm", "-rf", pin])
        box = Box(two, "detren2", regiond_args=("--xdp-iface", "xfz0", "--bpf-pin-dir", pin2))
        try:
            subprocess.run(["ip", "link", "set", "xfz0", "netns", lab.ns], check=True)
            rc, out, _ = box.ctl("filter", "detach")
            assert rc == 0 and "taken off when it is back" in out, out
            rc, out, err = box.ctl("filter", "detach")
            assert rc == 0 and out.strip() == "detached", out + err
            assert not os.path.exists(f"{pin2}/prog")
            assert "detached without xfz0" in open(two / "regiond.log").read()
        finally:
            box.stop()
            lab.run_in_ns("ip link set xfz0 netns 1")
            subprocess.run(["ip", "link", "set", "dev", "xfz0", "xdp", "off"])
            subprocess.run(["rm", "-rf", pin2])


def test_a_generation_with_the_same_filters_keeps_the_rate_state(tmp_path):
    """Every generation rewrote the filter's other half and flipped to it,
    its rate limiters' state reset: a source past its rate got a whole
    burst again with each generation, and the feed makes one every 100 ms
    under route churn (a review: 11x the rate). A generation whose filters
    section is the one the live half holds now moves only the filter's
    generation number; the limiter goes on where it was."""
    with filter_box(tmp_path, "rate", ("xfr0", "xfr1")) as (lab, box, pin):
        p = tmp_path / "r.yaml"
        p.write_text(open(DEMO).read() + "\nfilters:\n  default: pass\n  rules:\n"
                     "    - {name: slow, action: rate, rate_pps: 1, burst: 20, prefixes: [10.9.0.0/16]}\n")
        rc, _, err = box.ctl("apply", str(p))
        assert rc == 0, err

        def status():
            return box.ctl("filter", "status", json_out=True)[1]

        def send(n):  # n / 2 packets from 10.9/16, the rule's one prefix
            before = status()["counters"]
            lab.send("xfr1", f"N = {n}\nINTER = 0.0005\n" + SEND)
            wait_for(lambda: (lambda c: c["pass"] + c["drop"] - before["pass"] - before["drop"] >= n)(
                status()["counters"]), what="the filter's counts")

        t0 = time.monotonic()
        send(60)
        c1 = status()["counters"]
        assert c1["rate_limited"] >= 10, c1  # 30 from the prefix: a burst of 20 passed
        gen = box.gen()
        feed = tmp_path / "more.txt"
        feed.write_text("10.123.0.0/16\n")
        rc, _, err = box.ctl("prefixes", "add", "india", str(feed))
        assert rc == 0, err
        assert box.gen() == gen + 1
        wait_for(lambda: status()["generation"] == gen + 1, what="the filter at the new generation")
        send(60)
        elapsed = time.monotonic() - t0
        c2 = status()["counters"]
        passed = 30 - (c2["rate_limited"] - c1["rate_limited"])
        # 1 a second since the first burst, not a burst of 20 again
        assert passed <= elapsed + 2, (passed, elapsed, c1, c2)
        assert status()["rules"]["slow"]["packets"] == 60
        # A generation that changes the filters is written whole, as before.
        p.write_text(p.read_text().replace("burst: 20", "burst: 25"))
        rc, _, err = box.ctl("apply", str(p))
        assert rc == 0, err
        wait_for(lambda: status()["generation"] == box.gen(), what="the changed filter written")


def test_a_filter_no_regiond_updates_is_an_alarm(tmp_path):
    """A regiond started without --xdp-iface said nothing of the filter an
    earlier one left attached (on purpose: it filters through a restart):
    that filter kept the rules of its last generation whatever was applied
    after, and `filter status` said only that regiond runs without filters
    (a walkthrough). Now an alarm names the interfaces, the program and its
    generation, and what to do, once two looks 5 s apart found it; it stays
    while the program is attached (its pins removed first: a review), and
    clears once it is off. A filter a running regiond claims is that
    one's, not an alarm. --bpf-pin-dir, where the program is looked for,
    is taken without --xdp-iface for that."""
    import json
    from test_e2e import REGIONCTL
    pin = "/sys/fs/bpf/rfwd-test-leftover"
    subprocess.run(["rm", "-rf", pin])

    def alarm(n):
        p = subprocess.run([REGIONCTL, "-s", str(tmp_path / f"api{n}.sock"), "-j", "status"],
                           capture_output=True, text=True, timeout=60)
        st = json.loads(p.stdout) if p.stdout.startswith("{") else {}
        return st.get("health"), st.get("alarm") or ""

    with netns.VethLab("rfwd-test-leftover", [("xlo0", "xlo1")]):
        box = Box(tmp_path, "leftover", regiond_args=("--xdp-iface", "xlo0", "--bpf-pin-dir", pin))
        second = third = None
        try:
            prog = xdp_prog("xlo0")
            # Beside the regiond that claims it: that one's, no alarm.
            second = regiond_alone(box, tmp_path, 0, "--bpf-pin-dir", pin, "--dataplane",
                                   str(tmp_path / "nobody.sock"))
            wait_for(lambda: alarm(0)[0] is not None, timeout=60, what="the second regiond up")
            time.sleep(11)  # three of its looks
            assert "XDP filter" not in alarm(0)[1], alarm(0)
            put_back(second)
            second = None
            gen = box.status()["generation"]["id"]
            box.rd.send_signal(signal.SIGTERM)
            box.rd.wait(60)
            assert xdp_prog("xlo0") == prog  # still filtering
            third = regiond_alone(box, tmp_path, 1, "--bpf-pin-dir", pin)
            want = (f"an earlier regiond's XDP filter is still attached to xlo0 (program {prog}, generation "
                    f"{gen}), and this regiond (no --xdp-iface) does not update it: it keeps that generation's "
                    "rules; give --xdp-iface IF to take it over, or take it off (ip link set dev IF xdp off) "
                    f"and remove its pins (rm -r {pin})")
            wait_for(lambda: want in alarm(1)[1], timeout=60, what="the alarm")
            assert alarm(1)[0] != "healthy", alarm(1)
            # Its pins removed first: still attached, still said.
            subprocess.run(["rm", "-rf", pin], check=True)
            time.sleep(11)
            assert want in alarm(1)[1], alarm(1)
            subprocess.run(["ip", "link", "set", "dev", "xlo0", "xdp", "off"], check=True)
            wait_for(lambda: "XDP filter" not in alarm(1)[1], timeout=30, what="the alarm cleared")
            log = (tmp_path / "rd1.log").read_text()
            assert "ALARM: an earlier regiond's XDP filter" in log and \
                "alarm cleared (was: an earlier regiond's XDP filter" in log, log
        finally:
            put_back(second, third, box, ifaces=("xlo0",), pins=(pin,))
