"""A BGP lab for regiond's routing feed (docs/bgp-feed.md), shared by
tests/control/test_bgp_feed.py and bench/run: two network namespaces made
here, a BIRD 2 "peer" announcing static routes with communities to a BIRD 2
"router" whose filters map (65000,101) to kernel table 101 (india) and
(65000,102) to 102 (singapore); table 103 (brazil) is left to `ip route`.
regiond runs in the router's namespace with --feed-table for all three,
next to regionfwd on virtual devices (test_e2e.Box).

Traffic stays between the two namespaces (10.99.0.0/30, fd99::/64); the
routes are never used to forward anything.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "control"))
import netns  # noqa: E402
from test_e2e import Box, wait_for  # noqa: E402

PEER_NS, RTR_NS = "bgpf-peer", "bgpf-rtr"
RTR_CONF = """
router id 10.99.0.2;
protocol device {}
ipv4 table t101; ipv4 table t102; ipv6 table t101v6; ipv6 table t102v6;
protocol kernel k101 { ipv4 { table t101; export all; import none; }; kernel table 101; }
protocol kernel k102 { ipv4 { table t102; export all; import none; }; kernel table 102; }
protocol kernel k101v6 { ipv6 { table t101v6; export all; import none; }; kernel table 101; }
protocol kernel k102v6 { ipv6 { table t102v6; export all; import none; }; kernel table 102; }
# The community names the region: one pipe per region's table.
protocol pipe p101 { table master4; peer table t101; import none; export where (65000,101) ~ bgp_community; }
protocol pipe p102 { table master4; peer table t102; import none; export where (65000,102) ~ bgp_community; }
protocol pipe p101v6 { table master6; peer table t101v6; import none; export where (65000,101) ~ bgp_community; }
protocol pipe p102v6 { table master6; peer table t102v6; import none; export where (65000,102) ~ bgp_community; }
protocol bgp peer1 {
  local 10.99.0.2 as 65000; neighbor 10.99.0.1 as 65001;
  hold time 3; connect retry time 1; error wait time 1, 2;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
"""

PEER_HEAD = """
router id 10.99.0.1;
protocol device {}
protocol bgp up1 {
  local 10.99.0.1 as 65001; neighbor 10.99.0.2 as 65000;
  hold time 3; connect retry time 1; error wait time 1, 2;
  ipv4 { import none; export all; };
  ipv6 { import none; export all; next hop address fd99::1; };
}
"""


class Lab:
    """The two namespaces, both BIRDs and the box (regionfwd + regiond)."""

    def __init__(self, tmp, regiond_args, name="bgpf"):
        self.tmp = tmp
        self.routes = {}  # prefix -> community's second half (101, 102)
        self.birds = []
        # What started is stopped if the lab does not come up: both BIRDs
        # once ran on for good after the box's regionfwd failed to start.
        try:
            self._start(regiond_args, name)
        except BaseException:
            self.stop()
            raise

    def _start(self, regiond_args, name):
        tmp = self.tmp
        self._clean()
        sh = netns.sh
        sh(f"ip netns add {PEER_NS} && ip netns add {RTR_NS}")
        sh(f"ip link add bgpf0 netns {PEER_NS} type veth peer name bgpf1 netns {RTR_NS}")
        for ns, dev, a4, a6 in ((PEER_NS, "bgpf0", "10.99.0.1/30", "fd99::1/64"),
                                (RTR_NS, "bgpf1", "10.99.0.2/30", "fd99::2/64")):
            sh(f"nsenter --net=/run/netns/{ns} sh -c 'ip link set lo up && ip addr add {a4} dev {dev} && "
               f"ip addr add {a6} dev {dev} nodad && ip link set {dev} up'")
        self.rtr_ctl = str(tmp / "rtr.ctl")
        self.peer_ctl = str(tmp / "peer.ctl")
        (tmp / "rtr.conf").write_text(RTR_CONF)
        self.write_peer()
        self.start_bird(RTR_NS, tmp / "rtr.conf", self.rtr_ctl)
        self.start_bird(PEER_NS, tmp / "peer.conf", self.peer_ctl)
        self.regiond_args = ("--feed-table", "india=101", "--feed-table", "singapore=102", "--feed-table",
                             "brazil=103", "--feed-bird-socket", self.rtr_ctl, *regiond_args)
        self.box = Box(tmp, name, wrapper=netns.in_ns(RTR_NS), regiond_args=self.regiond_args)

    def start_bird(self, ns, conf, ctl):
        subprocess.run(netns.in_ns(ns) + ["bird", "-c", str(conf), "-s", ctl, "-P", ctl + ".pid"],
                       check=True, capture_output=True, text=True)
        self.birds.append(ctl + ".pid")
        wait_for(lambda: os.path.exists(ctl), what=f"BIRD's socket {ctl}")

    def write_peer(self):
        lines = [PEER_HEAD, "protocol static s4 { ipv4;"]
        v6 = []
        for p, c in self.routes.items():
            line = f"  route {p} blackhole {{ bgp_community.add((65000,{c})); }};"
            (v6 if ":" in p else lines).append(line)
        lines.append("}")
        lines += ["protocol static s6 { ipv6;"] + v6 + ["}"]
        (self.tmp / "peer.conf").write_text("\n".join(lines) + "\n")

    def announce(self, routes):
        self.routes.update(routes)
        self.reconfigure()

    def withdraw(self, prefixes):
        for p in prefixes:
            self.routes.pop(p, None)
        self.reconfigure()

    def reconfigure(self):
        self.write_peer()
        self.birdc(self.peer_ctl, "configure")

    def birdc(self, ctl, *cmd):
        p = subprocess.run(["birdc", "-s", ctl, *cmd], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    def feed(self):
        """GET /v1/feed: the feed's own snapshot, fresher than the status
        view (which the main loop rebuilds every 200 ms)."""
        code, body = self.box.http("GET", "/v1/feed")
        assert code == 200, body
        return body

    def region_prefixes(self):
        code, body = self.box.http("GET", "/v1/table")
        assert code == 200, body
        return {name: set(r.get("prefixes", [])) for name, r in body["model"]["regions"].items()}

    def held_by(self, prefix):
        for region, pfx in self.region_prefixes().items():
            if prefix in pfx:
                return region
        return None

    def restart_regiond(self, between=None):
        """Stop regiond, run @between while it is down, start it again on
        its state directory."""
        self.box.rd.terminate()
        self.box.rd.wait(30)
        if between:
            between()
        self.box.start_regiond(self.regiond_args)

    def rss_kb(self):
        with open(f"/proc/{self.box.rd.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _clean(self):
        for ns in (PEER_NS, RTR_NS):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def stop(self):
        if getattr(self, "box", None):
            self.box.stop()
        for pid in self.birds:
            try:
                os.kill(int(open(pid).read()), 15)
            except (OSError, ValueError):
                pass
        self._clean()


