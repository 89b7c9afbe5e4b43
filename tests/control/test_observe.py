"""Seeing what the box does (issue 17, item 1): rates over a window from
two reads of the counter report in counters, drops and show links (also
in -j); drops sorted by count; regionctl top as plain text frames when
stdout is not a terminal and as JSON lines with -j; bad arguments refused
as usage errors."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from scapy.all import ARP, IP, UDP, Ether, Raw  # noqa: E402
from test_e2e import DEMO, Box  # noqa: E402

MAC = dict(src="02:99:00:00:00:01", dst="02:99:00:00:00:02")
# Fewer of each than the 1 in 5 policy drops of the Box's traffic, and
# fewer non-IP frames than truncated ones: three reasons, three counts.
EXTRA = ([Ether(**MAC) / ARP()] * 20 +
         [Ether(**MAC) / IP(src="103.21.9.9", dst="198.51.100.1", len=200) / UDP(dport=53) / Raw(b"x")] * 50)


def box_with_drops(tmp_path, name):
    return Box(tmp_path, name, extra_packets=EXTRA, steady=True)


def si(v):
    """'1.23M' -> 1230000.0"""
    m = re.fullmatch(r"([0-9.]+)([kMGTP]?)", v)
    return float(m.group(1)) * 1000 ** " kMGTP".index(m.group(2) or " ")


def test_rates_in_counters_drops_and_links(tmp_path):
    b = box_with_drops(tmp_path, "rates")
    try:
        rc, out, err = b.ctl("counters", "--rate")
        # The window is what was measured: 1.0 s asked, a little more when
        # the machine is loaded (1.1 seen under ASan).
        assert rc == 0 and re.search(r"rates over [1-4]\.\d s: rx ", out) and "pkts/s" in out, (out, err)
        links = out.split("\nlinks")[1].split("\n\n")[0].splitlines()[1:]
        assert links and all(len(line.split()) == 4 for line in links), links  # name, packets, pkts/s, bits/s

        # 2 s: what a worker counts between two of the reader's reads (its
        # thread preempted in between, on a loaded machine) stays small
        # against the window.
        rc, r, err = b.ctl("counters", "--interval", "2", json_out=True)
        assert rc == 0, err
        rates = r["rates"]
        assert 0.4 < rates["interval_s"] < 5 and rates["reset"] is False
        assert rates["packets"]["rx_packets_per_s"] > 0
        # One window, one pair of reads: the links' rates add up to tx's
        # (within what workers count between reading two of their counters).
        by_link = sum(v["packets_per_s"] for v in rates["links"].values())
        assert abs(by_link - rates["packets"]["tx_packets_per_s"]) <= 0.03 * by_link, rates
        assert all("bits_per_s" in v for v in rates["regions"].values())
        # A port's link speed is a level, not a count: no rate (it was
        # speed_mbps_per_s, always 0).
        assert rates["ports"] and all("ipackets_per_s" in v and "speed_mbps_per_s" not in v
                                      for v in rates["ports"].values()), rates["ports"]

        # drops: the most frequent first, with a rate column when asked.
        rc, out, err = b.ctl("drops")
        rows = [line.split() for line in out.splitlines() if line.startswith("  ")]
        counts = [int(r[1]) for r in rows]
        assert len(rows) >= 3 and counts == sorted(counts, reverse=True), out
        assert [r[0] for r in rows[:3]] == ["policy_drop", "ipv4_truncated", "non_ip"], out
        rc, out, err = b.ctl("drops", "--rate")
        assert rc == 0 and re.match(r"rates over [0-9.]+ s$", out.splitlines()[0]), out
        assert "pkts/s" in out.splitlines()[2], out
        rc, d, err = b.ctl("drops", "--rate", json_out=True)
        assert d["drops"]["policy_drop"] > 0 and d["rates"]["drops"]["policy_drop"] > 0, d
        # Rates are rounded to 0.01 and the window to the millisecond, and
        # printed so: 17 significant digits showed 0.1 as
        # 0.10000000000000001.
        for args in (("drops", "--rate"), ("counters", "--rate"), ("show", "links", "--rate")):
            rc, text, err = b.ctl("-j", *args)
            reals = re.findall(r'"([a-z0-9_]+)": (-?[0-9]+\.[0-9]+(?:e[-+]?[0-9]+)?)', text)
            assert rc == 0 and reals, (args, text)
            for key, v in reals:
                assert "e" not in v and len(v.split(".")[1]) <= (3 if key == "interval_s" else 2), \
                    (args, key, v)

        rc, out, err = b.ctl("show", "links", "--rate")
        assert rc == 0 and re.match(r"rates over [0-9.]+ s$", out.splitlines()[0]), out
        assert "PKTS/S" in out.splitlines()[1] and "BITS/S" in out.splitlines()[1], out
        rc, l, err = b.ctl("show", "links", "--rate", json_out=True)
        assert set(l["links"]) == set(l["rates"]) and l["rates"]["local"]["packets_per_s"] > 0, l
        assert set(l) == {"links", "link_groups", "rates", "interval_s", "reset"}, l
        assert l["reset"] is False, l
        # With NAME: that link's rates alone, as its section (every link's
        # rates were printed once).
        rc, l, err = b.ctl("show", "links", "local", "--rate", json_out=True)
        assert rc == 0 and set(l["links"]) == set(l["rates"]) == {"local"}, l

        for args, said in ((("counters", "--interval", "0"), "--interval takes seconds 0.1..3600"),
                           (("drops", "--interval", "x"), "--interval takes seconds"),
                           (("show", "links", "--interval", "-1"), "--interval takes seconds")):
            rc, out, err = b.ctl(*args)
            assert rc == 2 and said in err, (args, rc, err)
    finally:
        b.stop()


def test_rates_know_a_restart_and_time_the_reports(tmp_path):
    """Rates were told from two reads' deltas over regionctl's own clock: a
    regionfwd killed and restarted 1 s into an 8 s window, whose new run
    had counted past the old one's first read, read as 119 pkts/s for 300,
    "reset": false; and a regiond slow to answer one read doubled a rate (a
    probe). The report now says which run counted (instance) and when
    (uptime_ns): a restart is said wherever rates are, over the new run's
    uptime, and the window is the time between the two reports."""
    import subprocess
    import time
    from test_e2e import REGIONCTL
    b = box_with_drops(tmp_path, "restart")
    try:
        first = b.fwd_counters()
        assert re.fullmatch(r"[0-9a-f]{16}", first["instance"]) and first["uptime_ns"] > 0, first
        again = b.fwd_counters()
        assert again["instance"] == first["instance"] and again["uptime_ns"] > first["uptime_ns"]
        reads = [subprocess.Popen([REGIONCTL, "-s", b.api, *args, "--interval", "10"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for args in (("-j", "counters"), ("drops",), ("show", "links"))]
        time.sleep(1)
        b.fwd.kill()
        b.fwd.wait(30)
        t0 = time.monotonic()
        b.start_fwd()
        outs = [p.communicate(timeout=120) for p in reads]
        up = time.monotonic() - t0
        assert all(p.returncode == 0 for p in reads), outs
        r = json.loads(outs[0][0])["rates"]
        # over the new run's uptime: not the 10 s asked, of which 1 s was the old run's
        assert r["reset"] is True and r["interval_s"] <= min(up + 0.5, 9.5), (r["interval_s"], up)
        assert r["packets"]["rx_packets_per_s"] > 0, r
        assert "(regionfwd restarted in the window: since its start)" in outs[1][0], outs[1]
        assert "(regionfwd restarted in the window: since its start)" in outs[2][0], outs[2]
        assert b.fwd_counters()["instance"] != first["instance"]
    finally:
        b.stop()


def test_top_plain_text_and_json_lines(tmp_path):
    b = box_with_drops(tmp_path, "top")
    try:
        rc, out, err = b.ctl("top", "--count", "2", "--interval", "0.3")
        assert rc == 0, err
        frames = [f for f in out.split("regionfwd top")[1:]]
        assert len(frames) == 2, out
        for f in frames:
            assert "health healthy" in f and "every 0.3 s" in f, f
            for title in ("LINKS", "REGIONS", "SERVICES", "POLICIES", "DROP REASONS"):
                assert "\n" + title in f, (title, f)
            links = f.split("\nLINKS")[1].split("\n\n")[0].splitlines()[1:]
            rates = [si(line.split()[2]) for line in links]
            assert len(rates) == 5 and rates == sorted(rates, reverse=True), links  # by rate
            drops = f.split("\nDROP REASONS")[1].split("\n\n")[0]
            assert "policy_drop" in drops and "non_ip" in drops
        # --sort name --filter: only matching rows, alphabetically
        rc, out, err = b.ctl("top", "--count", "1", "--interval", "0.2", "--sort", "name", "--filter", "to-")
        links = out.split("\nLINKS")[1].split("\n\n")[0].splitlines()[1:]
        names = [line.split()[0] for line in links if not line.startswith("  (")]
        assert names == ["to-br", "to-sg", "to-us-west-a", "to-us-west-b"], links
        assert "(4 of 5 shown: filter 'to-')" in out
        # -j: one JSON object a line
        rc, out, err = b.ctl("-j", "top", "--count", "2", "--interval", "0.2")
        lines = out.strip().splitlines()
        assert rc == 0 and len(lines) == 2, out
        for line in lines:
            o = json.loads(line)
            assert o["health"]["state"] == "healthy" and o["generation"]["id"] == 1, o
            assert o["rates"]["packets"]["rx_packets_per_s"] > 0 and o["counters"]["packets"]["rx"] > 0, o
        # Names whole (they were cut at 30 characters: two links that
        # differ in their last one read the same, a policy lost its
        # service; a probe), the columns still in line.
        long_sg, long_br = "to-southeast-backbone-link-0001", "to-southeast-backbone-link-0002"
        doc = tmp_path / "long.yaml"
        region = "singapore-southeast-asia-region"  # 31
        doc.write_text(open(DEMO).read().replace("to-sg", long_sg).replace("to-br", long_br)
                       .replace("singapore", region))
        rc, _, err = b.ctl("apply", str(doc))
        assert rc == 0, err
        rc, out, err = b.ctl("top", "--count", "1", "--interval", "0.2", "--sort", "name")
        assert rc == 0, err
        links = out.split("\nLINKS")[1].split("\n\n")[0].splitlines()
        names = [line.split()[0] for line in links[1:]]
        assert long_sg in names and long_br in names, links
        assert len({line.index(" up ") for line in links[1:] if " up " in line}) == 1, links
        policies = out.split("\nPOLICIES")[1].split("\n\n")[0]
        assert region + "/any " in policies, policies
        for args, said in ((("top", "--count", "0"), "--count takes"),
                           (("top", "--sort", "speed"), "--sort takes rate, total or name"),
                           (("top", "--interval", "7200"), "--interval takes seconds")):
            rc, out, err = b.ctl(*args)
            assert rc == 2 and said in err, (args, rc, err)
    finally:
        b.stop()
    # nothing to show: says so at once, exit 3 (unreachable)
    rc, out, err = b.ctl("top", "--count", "1")
    assert rc == 3 and "cannot reach regiond" in err, (rc, err)


def test_top_rates_after_regiond_was_away_cover_the_whole_gap(tmp_path):
    """top keeps running while regiond restarts. Its first frame after the
    gap divided all the packets counted since its last good read by one
    interval only: regiond away 3 s under a 0.3 s interval showed ten
    times the real rate, a spike that never happened. The rate is over the
    time since the last read that worked, and interval_s says so."""
    import subprocess
    import time
    from test_e2e import REGIONCTL  # noqa: E402
    b = Box(tmp_path, "topgap")
    try:
        top = subprocess.Popen([REGIONCTL, "-s", b.api, "-j", "top", "--interval", "0.3", "--count", "30"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = top.stdout.readline()
        assert first.startswith("{"), (first, top.stderr.read() if top.poll() is not None else "")
        b.rd.terminate()
        b.rd.wait(30)
        time.sleep(3)  # regiond away: top retries, the counters move on
        b.start_regiond()
        out, err = top.communicate(timeout=120)
        frames = [json.loads(first)] + [json.loads(line) for line in out.splitlines()]
        assert "retrying every 0.3 s" in err, err
        gaps = [(a, z) for a, z in zip(frames, frames[1:]) if z["time"] - a["time"] >= 3]
        assert gaps, [f["time"] for f in frames]
        for a, z in gaps:
            # "time" is whole seconds: the window is at least the gap less 1 s
            assert z["rates"]["interval_s"] >= z["time"] - a["time"] - 1.01, (a["time"], z["time"], z["rates"])
    finally:
        b.stop()


def test_top_count_ending_on_a_failed_read_exits_with_its_code(tmp_path):
    """`top -j --count N` counts a read that failed as a frame, and exited 0
    when the last one had failed: a script sampling rates got fewer lines
    than it asked for, or none, and success. It now exits with that read's
    code (3: regiond away), after the frames it did show."""
    import subprocess
    from test_e2e import REGIONCTL  # noqa: E402
    b = Box(tmp_path, "topcount")
    try:
        top = subprocess.Popen([REGIONCTL, "-s", b.api, "-j", "top", "--interval", "2", "--count", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = top.stdout.readline()
        assert first.startswith("{"), first
        b.rd.terminate()  # the second read, 2 s later, finds no regiond
        b.rd.wait(30)
        out, err = top.communicate(timeout=60)
        assert out == "", out
        assert top.returncode == 3 and "cannot reach regiond" in err, (top.returncode, err)
    finally:
        b.stop()


class TopOnAPty:
    """`regionctl top` on a pseudo-terminal of 250 x 30 (TERM=xterm), up once
    its first frame is drawn: what it drew so far in .out, keys sent with .key(), stopped in .close()."""

    def __init__(self, b, *args):
        import fcntl
        import pty
        import struct
        import termios
        from test_e2e import REGIONCTL  # noqa: E402
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ["TERM"] = "xterm"
            os.execv(REGIONCTL, [REGIONCTL, "-s", b.api, "top", *args])
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 250, 0, 0))
        self.out = bytearray()
        self.read_until(lambda: b"LINKS" in self.out)  # its first frame
        assert b"LINKS" in self.out, bytes(self.out[-500:])

    def read_until(self, cond, timeout=30):
        import select
        import time
        end = time.time() + timeout
        while time.time() < end and not cond():
            if select.select([self.fd], [], [], 0.1)[0]:
                try:
                    self.out.extend(os.read(self.fd, 65536))
                except OSError:
                    return

    def key(self, k):
        os.write(self.fd, k)

    def wait_exit(self, timeout=20):
        """Its exit code, or None when it is still running after @timeout s."""
        import time
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.read_until(lambda: False, 0.2)
            done, st = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.pid = None
                return os.waitstatus_to_exitcode(st)
        return None

    def close(self):
        import signal
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = None


def test_top_on_a_terminal_says_why_on_its_status_line(tmp_path):
    """On a terminal, a read that failed while top ran (regionfwd stopped)
    had regionctl's error line written to the terminal over the ncurses
    screen, at the cursor on the last row, scrolling the screen by a line
    under curses' feet, while the status line said "regiond did not
    answer", which was not the case. The reason is now caught and shown on
    the status line, and nothing else is written over the screen. The
    frame left on screen says it is old: its title kept saying "health
    healthy" (a walkthrough's find)."""
    b = Box(tmp_path, "topterm")
    top = None
    try:
        top = TopOnAPty(b, "--interval", "0.3")
        mark = len(top.out)
        b.fwd.terminate()
        b.fwd.wait(30)
        top.read_until(lambda: b"retrying every" in top.out[mark:])
        after = bytes(top.out[mark:])
        assert b"dataplane_unavailable (503)" in after and b"retrying every 0.3 s" in after, after[-800:]
        assert b"regionctl: " not in after, after[-800:]  # nothing written over the screen
        top.read_until(lambda: b"NO ANSWER: the figures below are from " in top.out[mark:])
        after = bytes(top.out[mark:])
        # (curses writes only what changed on the title: "unknown" over "healthy")
        assert b"NO ANSWER: the figures below are from " in after and b"unknown" in after, after[-800:]
        top.key(b"q")
        assert top.wait_exit() == 0
    finally:
        if top:
            top.close()
        b.stop()


def test_top_goes_on_while_a_filter_is_typed(tmp_path):
    """'/' opened a prompt that read the filter with a blocking getnstr():
    the view stopped refreshing for as long as it stayed open (old rates
    shown as live), Esc did not cancel it and Ctrl-C did not stop top. The
    filter is now typed a key at a time between frames."""
    import time
    b = box_with_drops(tmp_path, "topfilter")
    top = None
    try:
        top = TopOnAPty(b, "--interval", "0.3")
        top.key(b"/lo")
        top.read_until(lambda: b"filter (Enter sets, Esc cancels): lo" in top.out)
        time.sleep(0.5)
        top.read_until(lambda: False, 0.5)
        mark = len(top.out)
        top.read_until(lambda: False, 2)  # the rates move: frames go on being drawn
        assert len(top.out) - mark > 100, bytes(top.out[mark:])
        top.key(b"cal\r")  # "local": only rows holding it
        top.read_until(lambda: b"shown: filter 'local')" in top.out, 5)
        assert b"shown: filter 'local')" in top.out, bytes(top.out[-800:])
        top.key(b"/x\x1b")  # Esc: the filter stays "local"
        top.read_until(lambda: False, 1.5)
        assert b"filter 'x')" not in top.out and b"filter 'localx')" not in top.out
        top.key(b"/")
        top.read_until(lambda: False, 0.5)
        top.key(b"\x03")  # Ctrl-C with the prompt open stops top
        assert top.wait_exit(10) == 0
    finally:
        if top:
            top.close()
        b.stop()


def test_explain_covers_the_xdp_stage_and_says_drop_once(tmp_path):
    """explain starts where the packet does: the XDP filter's verdict on the
    table's filters section (here not attached anywhere: said), then the
    fast path's; a drop policy reads 'drop', not 'drop drop'."""
    from test_e2e import DEMO  # noqa: E402
    t = tmp_path / "f.yaml"
    t.write_text(open(DEMO).read() + "filters:\n  default: pass\n  rules:\n"
                 "    - {name: deny-unknown, action: drop, prefixes: [2.2.2.0/24, '2001:db8:dead::/48']}\n"
                 "    - {name: slow-dns, action: rate, rate_pps: 100, burst: 200, prefixes: [2.2.3.0/24]}\n"
                 "    - {name: no-telnet, action: drop, services: [tcp/23]}\n")
    b = Box(tmp_path, "xdpx")
    try:
        rc, out, err = b.ctl("apply", str(t))
        assert rc == 0, err
        rc, e, err = b.ctl("explain", "2.2.2.5", "1.1.1.1", "udp", "1000", "53", json_out=True)
        assert rc == 0 and e["xdp"] == {"section": True, "verdict": "drop", "rule": "deny-unknown",
                                        "by": "source prefix", "match": "2.2.2.0/24", "redirect": "kernel",
                                        "enforced_on": [], "not_enforced_on": [], "to_host_stack": False}, e["xdp"]
        rc, out, err = b.ctl("explain", "2.2.2.5", "1.1.1.1", "udp", "1000", "53")
        assert "xdp filter  drop by rule deny-unknown (source prefix 2.2.2.0/24); regiond attaches " \
               "the filter nowhere (no --xdp-iface)" in out, out
        assert out.index("xdp filter") < out.index("region ")
        policy = [line for line in out.splitlines() if line.startswith("policy")][0]
        assert "drop drop" not in policy, policy
        rc, e, _ = b.ctl("explain", "2001:db8:dead:1::1", "2001:db8::1", "udp", "53", json_out=True)
        assert (e["xdp"]["verdict"], e["xdp"]["match"]) == ("drop", "2001:db8:dead::/48"), e["xdp"]
        rc, e, _ = b.ctl("explain", "2.2.3.9", "1.1.1.1", "udp", "53", json_out=True)
        assert (e["xdp"]["verdict"], e["xdp"]["rate_pps"], e["xdp"]["burst"]) == ("rate", 100, 200), e["xdp"]
        rc, e, _ = b.ctl("explain", "8.130.0.1", "1.1.1.1", "tcp", "23", json_out=True)
        assert (e["xdp"]["rule"], e["xdp"]["by"], e["xdp"]["match"]) == ("no-telnet", "service", "tcp/23")
        rc, e, _ = b.ctl("explain", "8.130.0.1", "1.1.1.1", "udp", "23", json_out=True)
        assert (e["xdp"]["verdict"], e["xdp"]["by"], e["xdp"]["rule"]) == ("pass", "default", None)
    finally:
        b.stop()


def test_impact_preview_counts_addresses_and_traffic(tmp_path):
    """diff/validate say what a change does to traffic (issue 17, item 3): a
    prefix moved between regions is counted in prefixes and addresses, with
    the link its traffic would change to and how much of the last minute's
    traffic that is; filter and content-rule changes are listed with the
    traffic they saw. What is exact and what is a bound is said."""
    from test_e2e import DEMO, SG_LOCAL, demo_variant, wait_for  # noqa: E402
    b = Box(tmp_path, "impact", steady=True)
    try:
        def validate(path):
            code, r = b.http("POST", "/v1/validate", {"document": open(path).read()})
            assert code == 200 and r["valid"], r
            return r

        # A minute of counters takes a while; until two samples: said.
        first = validate(DEMO)["impact"]["traffic"]
        assert "unknown" in first, first
        wait_for(lambda: "window_s" in validate(DEMO)["impact"]["traffic"], timeout=30,
                 what="two counter samples")

        # Move 8.128.0.0/13 from singapore to brazil: no (region, service)
        # pair changes, but its addresses change link.
        mv = demo_variant(tmp_path, "mv.yaml", "prefixes: [8.128.0.0/13, 2406:da18::/32]",
                          "prefixes: [2406:da18::/32]")
        text = open(mv).read().replace("prefixes: [18.228.0.0/15, 2600:1f1e::/36]",
                                       "prefixes: [18.228.0.0/15, 2600:1f1e::/36, 8.128.0.0/13]")
        open(mv, "w").write(text)
        imp = validate(mv)["impact"]
        assert imp["changes"] == [], imp["changes"]
        (m,) = imp["moves"]
        assert (m["from"], m["to"], m["prefixes"], m["ipv4_addresses"], m["ipv6_addresses"]) == \
               ("singapore", "brazil", 1, 524288, 0), m
        assert {o["service"]: (o["before"], o["after"]) for o in m["outcomes"]}["https"] == \
               ("link to-sg", "link to-br"), m["outcomes"]
        t = imp["traffic"]
        # singapore is one source in five of the Box's traffic
        assert 0.15 < t["changed_share"] < 0.25 and not t["changed_packets_exact"], t
        assert t["changed_packets"] == m["from_region_packets_at_most"] > 0
        rc, out, _ = b.ctl("diff", mv)
        assert "move singapore -> brazil: 1 prefixes, 524288 IPv4 addresses" in out, out
        assert "would change link" in out and "at most" in out, out

        # The same traffic by policy: singapore/any governs every singapore
        # cell and every one changes, so the count is exact.
        imp = validate(demo_variant(tmp_path, "sg.yaml", *SG_LOCAL))["impact"]
        assert imp["moves"] == [] and len(imp["changes"]) == 7, imp["changes"]
        assert all("policy_packets" in c and c["policy"] == "singapore/any" for c in imp["changes"])
        t = imp["traffic"]
        assert t["changed_packets_exact"] and 0.15 < t["changed_share"] < 0.25, t

        # A filters section and a content rule's pattern: listed, with traffic.
        f = tmp_path / "f.yaml"
        f.write_text(open(DEMO).read() + "filters:\n  default: pass\n  rules:\n"
                     "    - {name: deny-unknown, action: drop, prefixes: [2.2.2.0/24]}\n")
        r = validate(str(f))
        assert r["diff"]["filters_section"] == "added", r["diff"]
        assert r["impact"]["filter_rules"] == [{"name": "deny-unknown", "change": "added",
                                                "packets_since_set": None}], r["impact"]
        c = demo_variant(tmp_path, "c.yaml", r"pattern: '(^|\.)example\.in$'", r"pattern: '(^|\.)example\.org$'")
        cr = validate(c)["impact"]["content_rules"]
        assert [(x["name"], x["change"]) for x in cr] == [("zone-example-in", "changed")], cr
        assert cr[0]["scope_packets"] > 0 and cr[0]["matches"] == 0, cr  # dns traffic, no .in names
        rc, out, _ = b.ctl("diff", c)
        assert "~ content rule zone-example-in: its services saw" in out, out
    finally:
        b.stop()
