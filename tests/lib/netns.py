"""Network namespaces and veth pairs for tests that need kernel interfaces.

Traffic stays inside what the test made: one end of each veth pair sits in
the root namespace (for DPDK's net_af_packet / net_af_xdp or an XDP
program), the other in a namespace of the test's own, where scapy sends and
tcpdump captures. No addresses, no routes: frames go nowhere else.

Commands enter a namespace with nsenter --net (util-linux), not `ip netns
exec` / `ip -n`: those also make / a slave mount and remount /sys, which
fails where / is not a mount point (a chroot, some containers), while a
network namespace is all these tests need.
"""
import os
import select
import shutil
import subprocess


def available():
    return os.geteuid() == 0 and shutil.which("ip") is not None


def sh(cmd, timeout=300):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True, timeout=timeout)


def readline_within(pipe, seconds=60):
    """A line from a child's text pipe, or AssertionError after @seconds:
    a child that never speaks must not hang the suite."""
    ready, _, _ = select.select([pipe], [], [], seconds)
    assert ready, f"no line within {seconds} s"
    return pipe.readline()


def scapy_code(iface, script):
    """Python that runs scapy code @script with IFACE set to @iface."""
    return f"IFACE = {iface!r}\nfrom scapy.all import *\n{script}\n"


def in_ns(ns):
    """argv prefix that runs a command in network namespace `ns` (made by
    `ip netns add`)."""
    return ["nsenter", f"--net=/run/netns/{ns}"]


class VethLab:
    """with VethLab("name", [("a0", "a1"), ...]) as lab: ... lab.run_in_ns("cmd")"""

    def __init__(self, ns, pairs):
        self.ns, self.pairs = ns, pairs

    def __enter__(self):
        self._cleanup()
        sh(f"ip netns add {self.ns}")
        for outer, inner in self.pairs:
            sh(f"ip link add {outer} type veth peer name {inner} netns {self.ns}")
            sh(f"ip link set {outer} up && nsenter --net=/run/netns/{self.ns} ip link set {inner} up")
            sh(f"ip link set {outer} promisc on")
            # No IPv6 autoconfiguration chatter in the captures.
            sh(f"sysctl -qw net.ipv6.conf.{outer}.disable_ipv6=1")
            sh(f"nsenter --net=/run/netns/{self.ns} sysctl -qw net.ipv6.conf.{inner}.disable_ipv6=1")
        return self

    def run_in_ns(self, cmd, timeout=300):
        return sh(f"nsenter --net=/run/netns/{self.ns} {cmd}", timeout)

    def popen_in_ns(self, argv, **kw):
        return subprocess.Popen(in_ns(self.ns) + argv, **kw)

    def send(self, iface, script):
        """Run scapy code in the namespace; `iface` is available as IFACE."""
        return subprocess.run(in_ns(self.ns) + ["/usr/bin/python3", "-c", scapy_code(iface, script)],
                              check=True, capture_output=True, text=True, timeout=300)

    def armed_sender(self, iface, script):
        """send(), with scapy imported before: returns go(), which runs
        @script at once (importing scapy takes a second or more on a loaded
        machine, more than a short capture window can absorb). go.proc is
        the sender, to kill if go() is never called."""
        arm = "import sys\nprint('ready', flush=True)\nsys.stdin.readline()\n"
        p = self.popen_in_ns(["/usr/bin/python3", "-c", scapy_code(iface, arm + script)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert readline_within(p.stdout) == "ready\n"
        except BaseException:
            p.kill()
            raise

        def go():
            p.stdin.write("go\n")
            p.stdin.flush()
            assert p.wait(60) == 0
        go.proc = p
        return go

    def kernel_dropped(self, outer, inner, tcpdump_stderr=""):
        """Frames the kernel dropped past a DPDK port on veth @outer: the
        pair's own drops (outer's tx_dropped: the peer's backlog was full;
        inner's rx_dropped, read in the namespace, whose /proc/net/dev is
        its own where sysfs shows the root's) and a stopped tcpdump's "N
        packets dropped by kernel" in @tcpdump_stderr. A capture behind a
        port regionfwd counted as sent may miss these under the suite's
        load and no more: regionfwd may lose none."""
        import re
        said = re.search(r"(\d+) packets? dropped by kernel", tcpdump_stderr or "")
        rx_drop = [line.split(":", 1)[1].split()[3]
                   for line in self.run_in_ns("cat /proc/net/dev").stdout.splitlines()
                   if line.strip().startswith(inner + ":")]
        with open(f"/sys/class/net/{outer}/statistics/tx_dropped") as f:
            tx_drop = int(f.read())
        return tx_drop + int(rx_drop[0] if rx_drop else 0) + (int(said.group(1)) if said else 0)

    def _cleanup(self):
        subprocess.run(f"ip netns del {self.ns}", shell=True, capture_output=True)
        for outer, _ in self.pairs:
            subprocess.run(f"ip link del {outer}", shell=True, capture_output=True)

    def __exit__(self, *exc):
        self._cleanup()
        return False
