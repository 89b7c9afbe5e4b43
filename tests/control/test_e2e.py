"""End to end: regionfwd on vdevs + regiond + regionctl as the client.

One test per class of bad input (each asserting that nothing changed), the
routing team's flows (apply, patch, validate/diff, rollback, history,
confirm-timeout), and failures: regiond SIGKILLed during traffic and during
an apply, regionfwd restarted.
"""
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from dprun import ROOT, eal_args, regionfwd_bin, with_test_defaults  # noqa: E402
from httpfake import api_request, unix_exchange  # noqa: E402
from waitfor import wait_for  # noqa: E402,F401 (imported from here by other modules)

from scapy.all import IP, TCP, UDP, Ether, Raw, wrpcap  # noqa: E402

DEMO = os.path.join(ROOT, "docs", "examples", "demo-table.yaml")
BUILD = os.path.dirname(os.path.dirname(regionfwd_bin()))
REGIOND = os.environ.get("REGIOND", os.path.join(BUILD, "control", "regiond"))
REGIONCTL = os.environ.get("REGIONCTL", os.path.join(BUILD, "control", "regionctl"))
PORTS = ["local0", "sg0", "usw0", "usw1", "br0"]


class Box:
    """regionfwd + regiond in a temporary directory."""

    def __init__(self, tmp, name, regiond_args=(), wrapper=(), extra_packets=(), node_extra="", fwd_wrapper=(),
                 fwd_sock=None, steady=False):
        self.tmp = tmp
        self.wrapper = list(wrapper)
        self.fwd_wrapper = list(fwd_wrapper)
        self.name = name
        self.fwd_sock = fwd_sock or str(tmp / "fwd.sock")
        self.api = str(tmp / "api.sock")
        self.state = str(tmp / "state")
        pcap = str(tmp / "in.pcap")
        srcs = ["103.21.9.9", "8.130.0.1", "35.161.0.1", "18.229.0.1", "2.2.2.2"]
        wrpcap(pcap, [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
                      IP(src=srcs[i % 5], dst="198.51.100.1") / UDP(sport=1000 + i, dport=(53, 443, 7001)[i % 3]) /
                      Raw(b"p" * 10) for i in range(512)] + list(extra_packets))
        node = tmp / "node.yaml"
        node.write_text("ports:\n"
                        f'  in0: {{device: "net_pcap_in0,rx_pcap={pcap}{",infinite_rx=1" if steady else ""}", ingress: true}}\n' +
                        "".join(f"  {p}: {{device: net_null_{p}}}\n" for p in PORTS) +
                        with_test_defaults(f"control_socket: {self.fwd_sock}\n" + node_extra))
        self.node = str(node)
        self.fwd = None
        self.rd = None
        self.start_fwd()
        try:
            self.start_regiond(regiond_args)
        except BaseException:
            self.stop()  # never leave a regionfwd behind
            raise

    def start_fwd(self, table=DEMO, extra=()):
        self.fwd_log = open(self.tmp / "fwd.log", "a+")
        self.fwd = subprocess.Popen(self.fwd_wrapper + [regionfwd_bin()] + eal_args(f"e2e-{self.name}") + [
            "--", "--node", self.node, "--table", table, *extra], stdout=self.fwd_log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.fwd_sock) and self.fwd.poll() is None, what="regionfwd up")

    def start_regiond(self, extra=()):
        self.rd_log = open(self.tmp / "regiond.log", "a+")
        self.rd = subprocess.Popen(self.wrapper + [REGIOND, "--dataplane", self.fwd_sock, "--api-socket", self.api,
                                    "--state-dir", self.state, "--table", DEMO, *extra],
                                   stdout=self.rd_log, stderr=subprocess.STDOUT)
        # Up when its API answers with a dataplane report (status is read
        # from regiond's view; its main loop asks regionfwd once a second),
        # whatever the health it reports (ok, degraded, unreachable).
        wait_for(lambda: (lambda r: r[0] == 200 and isinstance(r[1], dict) and
                          r[1]["dataplane"]["report_age_ms"] is not None)(self.http("GET", "/v1/status")),
                 timeout=120 if self.wrapper else 30, what="regiond up")

    def ctl(self, *args, json_out=False):
        p = subprocess.run([REGIONCTL, "-s", self.api] + (["-j"] if json_out else []) + list(args),
                           capture_output=True, text=True, timeout=120)
        # 'status' answers with its model also when it exits 1 (degraded)
        # or 2 (regionfwd unreachable): its exit code is the health.
        out = json.loads(p.stdout) if json_out and p.stdout.startswith("{") else p.stdout
        return p.returncode, out, p.stderr

    def status(self):
        """regiond's status model, what `regionctl -j status` prints, read
        from the API socket itself: the tests poll it (every wait for a
        generation, a link, a report), and under ASan each regionctl run is
        ~0.05 s of CPU against ~0.01 s released; these polls were 60 % of
        test_e2e.py's regionctl runs. regionctl's own status (text, -j,
        exit codes) keeps its tests (test_status_show_explain, test_answers.py)."""
        code, s = self.http("GET", "/v1/status")
        assert code == 200 and isinstance(s, dict), (code, s)
        return s

    def gen(self):
        return self.status()["generation"]["id"]

    def http(self, method, path, body=None, raw=None, headers=()):
        """A raw HTTP request on the API socket: (status, parsed JSON or text)."""
        return api_request(self.api, method, path, body, raw, headers)

    def fwd_counters(self):
        return self.http("GET", "/v1/counters")[1]

    def stop(self):
        for p in (self.rd, self.fwd):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()


def _box(tmp_path, request, **kw):
    b = Box(tmp_path, request.node.name[:20].replace("[", "_"), **kw)
    yield b
    b.stop()


@pytest.fixture
def box(tmp_path, request):
    yield from _box(tmp_path, request)


@pytest.fixture
def steady_box(tmp_path, request):
    """A Box whose traffic never stops, for a test that needs packets after
    its start (counters that move, a capture, drops a change causes)."""
    yield from _box(tmp_path, request, steady=True)


def demo_variant(tmp_path, name, old, new):
    text = open(DEMO).read()
    assert old in text
    p = tmp_path / name
    p.write_text(text.replace(old, new))
    return str(p)


SG_LOCAL = ("{region: singapore, service: any, action: steer, to: to-sg}",
            "{region: singapore, service: any, action: steer, to: local}")


def test_status_show_explain(box):
    s = box.status()
    assert s["generation"]["id"] == 1 and s["dataplane"]["in_sync"]
    assert s["dataplane"]["status"]["generation"]["hash"] == s["generation"]["hash"]
    rc, out, _ = box.ctl("status")
    assert rc == 0 and "generation   1" in out and "runs it" in out
    # Every link with its admin and operational state, every port with its
    # link and counters, the mbuf pool.
    st = s["dataplane"]["status"]
    assert {l["name"]: (l["port"], l["admin"], l["oper"]) for l in st["links"]}["to-sg"] == ("sg0", "up", "up")
    ports = {p["name"]: p for p in st["ports"]}
    assert set(ports) == {"in0", *PORTS} and ports["in0"]["link"] == "up"
    assert set(ports["in0"]["stats"]) == {"ipackets", "opackets", "imissed", "ierrors", "oerrors", "rx_nombuf"}
    assert 0 <= st["mbufs"]["in_use"] <= st["mbufs"]["pool"] and s["filters"] is None
    assert re.search(r"^to-sg +sg0 +up +up$", out, re.M), out
    assert re.search(r"^in0 +up +\d+ Mb/s full +\d+ +0 +0 +0 +0 +0$", out, re.M), out
    assert re.search(r"^mbufs +\d+ of \d+ in use", out, re.M), out
    rc, out, _ = box.ctl("show", "links")
    assert rc == 0 and "to-sg" in out and "sg0" in out and "group us-west" in out
    rc, out, _ = box.ctl("show", "regions", json_out=True)
    assert rc == 0 and "2401:4900::/32" in out["regions"]["india"]["prefixes"] and list(out) == ["regions"]
    rc, out, _ = box.ctl("show", "policies")
    assert rc == 0 and "(default)" in out
    # -j holds what the text shows: the groups of show links, the default of show policies
    rc, t, _ = box.ctl("show", "table", json_out=True)
    rc, out, _ = box.ctl("show", "links", json_out=True)
    assert rc == 0 and out == {"links": t["links"], "link_groups": t["link_groups"]}, out
    assert "us-west" in out["link_groups"]
    rc, out, _ = box.ctl("show", "policies", json_out=True)
    assert rc == 0 and out == {"policies": t["policies"], "default": t["default"]}, out
    rc, out, _ = box.ctl("explain", "103.21.130.1", "198.51.100.1", "tcp", "7005")
    assert rc == 0 and "region      india (matched 103.21.128.0/17)" in out
    assert "policy      india/sync: steer local" in out and "leaves on   link local, port local0" in out
    rc, out, _ = box.ctl("explain", "35.161.0.1", "198.51.100.1", "udp", "1234", "443", json_out=True)
    assert rc == 0 and out["group"] == "us-west" and out["link"] in ("to-us-west-a", "to-us-west-b")
    rc, out, err = box.ctl("explain", "nonsense", "1.1.1.1", "tcp", "80")
    assert rc == 1 and "'src' must be an IPv4 or IPv6 address" in err
    # An IPv4-mapped source: regionfwd drops such a packet (it once took the
    # default, out of India's residency); explain says so at the field.
    rc, out, err = box.ctl("explain", "::ffff:103.21.130.1", "2001:db8::1", "tcp", "7005", json_out=True)
    assert rc == 1 and out["error"]["path"] == "src" and "ipv6_mapped_source" in out["error"]["reason"], out
    assert "for an IPv4 source give 103.21.130.1" in err, err
    # with an IPv4 destination too (that said "one family", not what to give)
    rc, out, err = box.ctl("explain", "::ffff:103.21.130.1", "198.51.100.1", "tcp", "7005", json_out=True)
    assert rc == 1 and "for an IPv4 source give 103.21.130.1" in out["error"]["reason"], out
    # An address no router forwards, from or to: the parser drops the
    # packet before any table is asked, and explain says so (a spoofed
    # 127.0.0.1 was steered as a region's).
    for src, dst, why in (("127.0.0.1", "198.51.100.1", "martian_source"),
                          ("fe80::1", "2001:db8::1", "martian_source"),
                          ("103.21.130.1", "224.0.0.251", "martian_destination")):
        rc, out, err = box.ctl("explain", src, dst, "tcp", "443", json_out=True)
        assert rc == 0 and out["drop_reason"] == why and out["action"] == "drop", (out, err)
        assert [out[k] for k in ("region", "prefix", "service", "policy", "link", "content")] == [None] * 6, out
        rc, text, err = box.ctl("explain", src, dst, "tcp", "443")
        assert rc == 0 and f"dropped     {why} (" in text and "before any table is asked" in text, text
    # The hint of a mapped source does not offer what is dropped too.
    rc, out, err = box.ctl("explain", "::ffff:127.0.0.1", "2001:db8::1", "tcp", "443", json_out=True)
    assert rc == 1 and "which no router forwards from either (martian_source)" in out["error"]["reason"], out
    # A numeric PROTO goes to the API as a number (every one was refused as
    # not a protocol word), and a protocol without ports needs none.
    rc, out, err = box.ctl("explain", "103.21.130.1", "198.51.100.1", "6", "7005", json_out=True)
    assert rc == 0 and out["service"] == "sync" and out["region"] == "india", err
    rc, out, err = box.ctl("explain", "103.21.130.1", "198.51.100.1", "47", "0", json_out=True)
    assert rc == 0 and out["region"] == "india" and out["service"] not in ("sync", "ping"), err
    for proto in ("icmp", "1"):
        rc, out, err = box.ctl("explain", "103.21.130.1", "198.51.100.1", proto, json_out=True)
        assert rc == 0 and out["service"] == "ping", err
    rc, out, err = box.ctl("explain", "103.21.130.1", "198.51.100.1", "47")
    assert rc == 0 and "region      india" in out, err
    # a number past 255 is regionctl's usage error (nothing sent); a word
    # regiond does not know is its refusal
    rc, out, err = box.ctl("explain", "103.21.130.1", "198.51.100.1", "256")
    assert rc == 2 and "PROTO '256' is not a protocol" in err, err
    rc, out, err = box.ctl("explain", "103.21.130.1", "198.51.100.1", "xyz")
    assert rc == 1 and "'proto' must be" in err
    rc, out, _ = box.ctl("show", "nothing")
    assert rc == 2
    # With -j an error regiond answers is the API's JSON on stdout too (a
    # script read an empty stdout and had to parse the text on stderr).
    rc, out, err = box.ctl("explain", "103.21.130.1", "198.51.100.1", "xyz", json_out=True)
    assert rc == 1 and out["error"]["code"] == "bad_request" and out["error"]["path"] == "proto", (out, err)
    assert "'proto' must be" in err
    rc, out, err = box.ctl("rollback", "99", json_out=True)
    assert rc == 1 and out == {"error": {"code": "unknown_generation", "file": "", "line": 0, "path": "generation",
                                         "reason": "that generation is not in the history"}}, (out, err)
    bad = box.tmp / "bad.yaml"
    bad.write_text("version: 1\nregions:\n  india:\n    prefixes: [1.2.3.0/33]\n")
    rc, out, err = box.ctl("validate", str(bad), json_out=True)
    assert rc == 1 and out["valid"] is False and out["error"]["line"] == 4, (out, err)
    assert out["error"]["path"] == "regions.india.prefixes[0]" and "bad.yaml:4:" in err, (out, err)


def test_diff_says_what_of_an_entry_changed(box, tmp_path):
    """A changed link, group, service or policy was a line with its name
    alone ("~ links to-sg"): now each field that differs, before -> after."""
    doc = open(DEMO).read()
    new = doc.replace("to: to-sg", "to: local", 1)
    new = re.sub(r"members: \{to-us-west-a: \d+, to-us-west-b: \d+\}",
                 "members: {to-us-west-a: 1, to-us-west-b: 9}", new)
    new = new.replace("https: [tcp/443", "https: [tcp/9443", 1)
    i = new.index("  to-br:")
    new = new[:i] + new[i:].replace("tags: [br]", "tags: [br]\n    state: drain", 1)
    path = tmp_path / "n.yaml"
    path.write_text(new)
    rc, out, err = box.ctl("diff", str(path))
    assert rc == 0, err
    for line in ('~ services https: ["tcp/443","udp/443"] -> ["tcp/9443","udp/443"]\n',
                 "~ link_groups us-west: members.to-us-west-a 3 -> 1, members.to-us-west-b 1 -> 9\n",
                 "~ links to-br: state up -> drain\n",
                 "~ policies singapore/any: to to-sg -> local\n"):
        assert line in out, (line, out)
    rc, j, _ = box.ctl("diff", str(path), json_out=True)
    ch = {c["name"]: c for c in j["diff"]["links"]["changed"]}
    assert ch["to-br"]["before"]["state"] == "up" and ch["to-br"]["after"]["state"] == "drain", ch
    # Long values that differ past their first 40 bytes: each side is cut
    # around where they differ (they once printed the same on both sides),
    # and a string with a control character is quoted, escaped.
    longer = doc.replace("https: [tcp/443, udp/443]",
                         "https: [tcp/443, udp/443, tcp/9443, tcp/10443, tcp/11443, tcp/13443]", 1)
    (tmp_path / "l1.yaml").write_text(longer)
    rc, _, err = box.ctl("apply", str(tmp_path / "l1.yaml"))
    assert rc == 0, err
    (tmp_path / "l2.yaml").write_text(longer.replace("tcp/13443]", "tcp/12443]", 1).replace(
        "to: to-sg", 'to: to-sg, description: "two\\nlines"', 1))
    rc, out, err = box.ctl("diff", str(tmp_path / "l2.yaml"))
    assert rc == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("~ services https: "))
    before, after = line[len("~ services https: "):].split(" -> ")
    assert before != after and "13443" in before and "12443" in after, line
    assert '~ policies singapore/any: description (none) -> "two\\nlines"' in out, out


def test_apply_diff_patch_rollback_history(box, tmp_path):
    new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
    rc, out, _ = box.ctl("diff", new)
    # What changed of the entry, not its name alone (it once said no more).
    assert rc == 0 and "~ policies singapore/any: to to-sg -> local\n" in out, out
    assert "singapore            https            link to-sg" in out and "-> link local" in out
    rc, out, _ = box.ctl("validate", new)
    assert rc == 0 and "valid" in out
    rc, out, err = box.ctl("apply", new, "--comment", "move sg home", "--author", "alice")
    assert rc == 0 and "generation 2" in out, err
    rc, out, _ = box.ctl("apply", new)
    assert rc == 0 and "no change" in out
    e = box.http("POST", "/v1/explain", {"src": "8.130.0.1", "dst": "1.1.1.1", "proto": "udp", "dport": 443})[1]
    assert e["generation"] == 2 and e["link"] == "local"
    # An IPv6 probe whose protocol is an extension header's number was
    # refused by regionfwd with no field named.
    for proto in (0, 43, 51, 60):
        code, r = box.http("POST", "/v1/explain", {"src": "2401:4900::1", "dst": "2001:db8::1", "proto": proto})
        assert code == 400 and r["error"]["path"] == "proto" and "extension header" in r["error"]["reason"], r
    code, e = box.http("POST", "/v1/explain", {"src": "103.21.9.9", "dst": "1.1.1.1", "proto": 51})
    assert code == 200, e  # IPv4 has no chain: AH is a protocol there

    # A PATCH that changes nothing makes no generation (it once made one,
    # pushed to regionfwd: its document is the model as JSON, not the YAML
    # bytes the no-op test compared), after the same precondition.
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 2, "changes": [
        {"op": "set_link_state", "link": "to-br", "state": "up"},
        {"op": "add_prefixes", "region": "brazil", "prefixes": []}]})
    assert code == 200 and r["changed"] is False and r["generation"]["id"] == 2, r
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 1, "changes": [
        {"op": "set_link_state", "link": "to-br", "state": "up"}]})
    assert code == 409 and r["error"]["code"] == "stale_generation", r
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 2, "comment": "brazil grows", "changes": [
        {"op": "add_prefixes", "region": "brazil", "prefixes": ["177.0.0.0/8", "2800:3f0::/32"]},
        {"op": "set_weight", "group": "us-west", "link": "to-us-west-b", "weight": 0},
        {"op": "set_link_state", "link": "to-br", "state": "down"}]})
    assert code == 200 and r["generation"]["id"] == 3, r
    e = box.http("POST", "/v1/explain", {"src": "177.1.1.1", "dst": "1.1.1.1", "proto": "tcp", "dport": 80})[1]
    assert (e["region"], e["drop_reason"]) == ("brazil", "no_link_up")
    e = box.http("POST", "/v1/explain", {"src": "35.161.0.9", "dst": "1.1.1.1", "proto": "tcp", "dport": 80})[1]
    assert e["link"] == "to-us-west-a"  # b drained to weight 0
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 3, "changes": [
        {"op": "remove_prefixes", "region": "brazil", "prefixes": ["177.0.0.0/8"]},
        {"op": "remove_policy", "region": "any", "service": "ntp"},
        {"op": "add_policy", "policy": {"region": "oregon", "service": "dns", "action": "drop"}}]})
    assert code == 200 and r["generation"]["id"] == 4, r
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 4, "changes": [
        {"op": "remove_prefixes", "region": "brazil", "prefixes": ["177.0.0.0/8"]}]})
    assert code == 422 and r["error"]["reason"] == "prefix 177.0.0.0/8 is not in region 'brazil'"
    # A malformed body is said before a stale generation (an unknown op
    # with a stale one answered 409 stale_generation: a probe).
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 1, "changes": [{"op": "frobnicate"}]})
    assert code == 400 and r["error"]["code"] == "bad_request" and r["error"]["path"] == "changes[0]", r
    # The same no-op on a generation a PATCH made, and a rollback to the
    # current generation.
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 4, "changes": [
        {"op": "set_link_state", "link": "to-br", "state": "down"}]})
    assert code == 200 and r["changed"] is False and r["generation"]["id"] == 4, r
    code, r = box.http("POST", "/v1/rollback", {"generation": 4})
    assert code == 200 and r["changed"] is False and r["generation"]["id"] == 4, r
    # A prefix removed and added again in one PATCH, and prefixes added in
    # another order than the table's: the same table, no new generation
    # (the prefix came back last in the model's list, and made one: a probe).
    code, t4 = box.http("GET", "/v1/table")
    br = t4["model"]["regions"]["brazil"]["prefixes"]
    assert len(br) >= 2, br
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 4, "changes": [
        {"op": "remove_prefixes", "region": "brazil", "prefixes": br},
        {"op": "add_prefixes", "region": "brazil", "prefixes": list(reversed(br))}]})
    assert code == 200 and r["changed"] is False and r["generation"]["id"] == 4, r

    rc, out, _ = box.ctl("rollback")
    assert rc == 0 and "generation 5" in out
    # Who and why, as the other changes take them (it took neither, and
    # recorded 'api').
    rc, out, _ = box.ctl("rollback", "1", "--comment", "back to the demo", "--author", "carol")
    assert rc == 0 and "generation 6" in out
    st = box.status()
    assert st["generation"]["hash"] == st["dataplane"]["status"]["generation"]["hash"]
    rc, h, _ = box.ctl("history", json_out=True)
    assert [g["id"] for g in h["history"]] == [6, 5, 4, 3, 2, 1]
    assert h["history"][0]["comment"] == "rollback to generation 1: back to the demo"
    assert h["history"][0]["author"] == "carol", h["history"][0]
    assert h["history"][4]["author"] == "alice" and h["history"][4]["comment"] == "move sg home"
    assert h["history"][0]["hash"] == h["history"][5]["hash"]
    rc, out, _ = box.ctl("rollback", "99")
    assert rc == 1
    rc, out, _ = box.ctl("history")
    assert rc == 0 and "rollback to generation 1" in out
    # --expected-generation, as apply and link take it: a rollback meant
    # to undo generation 5 that meets generation 6 changes nothing (it
    # undid whatever was current: a hostile probe); the default is the
    # generation current when regionctl starts.
    rc, _, err = box.ctl("rollback", "--expected-generation", "5")
    assert rc == 1 and "stale_generation" in err, err
    assert box.status()["generation"]["id"] == 6
    rc, _, err = box.ctl("rollback", "--expected-generation", "x")
    assert rc == 2 and "--expected-generation takes" in err, err
    rc, out, err = box.ctl("rollback", "5", "--expected-generation", "6")
    assert rc == 0 and "generation 7" in out, (out, err)


# A description at every level the format has one (the demo has the table's
# and two regions'), each as the document puts it.
DESCRIBED = [
    ("  singapore:\n    prefixes:", '  singapore:\n    description: "users in Singapore"\n    prefixes:'),
    ("    port: local0\n", '    port: local0\n    description: "this facility"\n'),
    ("    members: {to-us-west-a: 3, to-us-west-b: 1}\n",
     '    members: {to-us-west-a: 3, to-us-west-b: 1}\n    description: "Oregon, 3:1"\n'),
    ("{region: brazil, service: any, action: steer, to: to-br}",
     '{region: brazil, service: any, action: steer, to: to-br, description: "Brazil at home"}'),
    ("default: {action: drop}", 'default: {action: drop, description: "fail closed"}'),
    ("    allowed_tags: [in]\n", '    allowed_tags: [in]\n    description: "DPDP Act"\n'),
    ("    action: count\n", '    action: count\n    description: "the regional zone\'s share"\n'),
]
DESCRIBED_FILTERS = ('filters:\n  description: "the edge"\n  rules:\n'
                     '    - {name: bogons, action: drop, prefixes: [0.0.0.0/8], description: "no bogons"}\n')
DESCRIPTIONS = {
    "": "ingress table, Mumbai facility (demo)",
    "regions.india": "users in India: personal data must stay in India (DPDP Act)",
    "regions.india-partner": "a partner network inside an India block, steered separately",
    "regions.singapore": "users in Singapore",
    "links.local": "this facility",
    "link_groups.us-west": "Oregon, 3:1",
    "policies.brazil/any": "Brazil at home",
    "default": "fail closed",
    "residency.india-personal-data": "DPDP Act",
    "filters": "the edge",
    "filters.rules.bogons": "no bogons",
    "content_rules.zone-example-in": "the regional zone's share",
}


def descriptions(doc):
    """Every description of a table document (a dict), by where it is."""
    out = {}

    def take(path, o):
        if isinstance(o, dict) and "description" in o:
            out[path] = o["description"]
    take("", doc)
    for sec in ("regions", "links", "link_groups"):
        for k, v in (doc.get(sec) or {}).items():
            take(f"{sec}.{k}", v)
    for p in doc.get("policies") or []:
        take(f"policies.{p['region']}/{p['service']}", p)
    take("default", doc.get("default"))
    for sec in ("residency", "content_rules"):
        for r in doc.get(sec) or []:
            take(f"{sec}.{r['name']}", r)
    take("filters", doc.get("filters"))
    for r in (doc.get("filters") or {}).get("rules") or []:
        take(f"filters.rules.{r['name']}", r)
    return out


def test_descriptions_survive_patch_and_history(box, tmp_path):
    """A PATCH applies the model as the new document: every description of
    the table (of a region, link, link group, policy, the default, a
    residency rule, the filters, a filter rule, a content rule) is in the
    model, so 'regionctl link down' keeps them all. It once kept the
    table's own alone. 'prefixes list REGION -j' shows the region's."""
    text = open(DEMO).read()
    for old, new in DESCRIBED:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text += DESCRIBED_FILTERS
    doc = tmp_path / "described.yaml"
    doc.write_text(text)
    rc, out, err = box.ctl("apply", str(doc))
    assert rc == 0 and "generation 2" in out, err
    code, t = box.http("GET", "/v1/table")
    assert code == 200 and descriptions(t["model"]) == DESCRIPTIONS, t["model"]

    rc, out, err = box.ctl("link", "down", "to-br")
    assert rc == 0 and "generation 3" in out, (out, err)
    code, t = box.http("GET", "/v1/table")
    assert t["generation"]["id"] == 3 and t["model"]["links"]["to-br"]["state"] == "down"
    assert descriptions(t["model"]) == DESCRIPTIONS, t["model"]
    # The stored document of the PATCHed generation is the model as JSON.
    assert descriptions(json.loads(t["document"])) == DESCRIPTIONS
    rc, out, _ = box.ctl("show", "table")
    assert rc == 0 and out.count('"description"') == len(DESCRIPTIONS), out
    # One line, ending as a file does (the shell's prompt once followed
    # it on its line), saved and applied again byte for byte: no change.
    assert out.endswith("}\n") and out.count("\n") == 1 and out == t["document"], out[-40:]
    saved = tmp_path / "saved.json"
    saved.write_text(out)
    rc, o2, err = box.ctl("apply", str(saved))
    assert rc == 0 and box.http("GET", "/v1/table")[1]["generation"]["id"] == 3, (o2, err)
    # The same text without its newline (as models were written before)
    # is the same document: no new generation.
    code, r = box.http("PUT", "/v1/table", {"document": out[:-1], "expected_generation": 3})
    assert code == 200 and r["changed"] is False and r["generation"]["id"] == 3, r
    # A PATCH that changes nothing still makes no generation.
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 3, "changes": [
        {"op": "set_link_state", "link": "to-br", "state": "down"}]})
    assert code == 200 and r["changed"] is False and r["generation"]["id"] == 3, r

    rc, out, err = box.ctl("prefixes", "list", "singapore", "-j")
    assert rc == 0 and json.loads(out) == {"prefixes": ["8.128.0.0/13", "2406:da18::/32"],
                                           "description": "users in Singapore"}, (out, err)
    rc, out, err = box.ctl("prefixes", "list", "oregon", "-j")
    assert rc == 0 and "description" not in json.loads(out), out
    rc, out, err = box.ctl("prefixes", "list", "singapore")
    assert rc == 0 and out == "8.128.0.0/13\n2406:da18::/32\n", out
    # ... and a rollback to the PUT generation, and forward again by PATCH.
    rc, out, err = box.ctl("rollback", "2")
    assert rc == 0 and "generation 4" in out, err
    rc, out, err = box.ctl("link", "drain", "local")
    assert rc == 0 and "generation 5" in out, (out, err)
    code, t = box.http("GET", "/v1/table")
    assert descriptions(json.loads(t["document"])) == DESCRIPTIONS
    # A description alone changed: the region is listed as changed, for it.
    doc.write_text(text.replace('"users in Singapore"', '"people in Singapore"'))
    rc, out, err = box.ctl("diff", str(doc))
    assert rc == 0 and "~ regions singapore: +0 -0 prefixes, description\n" in out, (out, err)
    # A policy a PATCH adds keeps its description; one too long is refused,
    # naming the change, and changes nothing.
    pol = {"region": "oregon", "service": "dns", "action": "drop", "description": "x" * 4097}
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 5, "changes": [
        {"op": "add_policy", "policy": pol}]})
    assert code == 422 and r["error"]["path"] == "changes[0].policy.description", r
    assert r["error"]["reason"] == "a description is at most 4096 bytes, not 4097", r
    assert box.gen() == 5
    pol["description"] = "no DNS to Oregon"
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 5, "changes": [
        {"op": "add_policy", "policy": pol}]})
    assert code == 200 and r["generation"]["id"] == 6, r
    code, t = box.http("GET", "/v1/table")
    assert descriptions(t["model"]) == {**DESCRIPTIONS, "policies.oregon/dns": "no DNS to Oregon"}


def assert_unchanged(box, gen=1):
    s = box.status()
    assert s["generation"]["id"] == gen
    assert s["dataplane"]["status"]["generation"]["hash"] == s["generation"]["hash"]
    rc, h, _ = box.ctl("history", json_out=True)
    assert len(h["history"]) == gen


BAD_DOCS = [
    ("malformed yaml", ("regions:\n", "regions: [\n"), 422, "invalid_table", "YAML syntax"),
    ("unknown field", ("links:\n", "linkz: {}\nlinks:\n"), 422, "invalid_table", "unknown field 'linkz'"),
    ("bad prefix", ("103.21.0.0/16", "103.21.0.1/16"), 422, "invalid_table", "host bits set in '103.21.0.1/16'"),
    ("overlapping ranges", ("ntp: [udp/123]", "ntp: [udp/100-200, any/53]"), 422, "invalid_table", "overlaps"),
    ("unknown link", ("to: to-br}", "to: to-mars}"), 422, "invalid_table", "unknown link or link group 'to-mars'"),
    ("invalid pattern", ("pattern: '(^|\\.)example\\.in$'", "pattern: '(^|\\.)example\\.in$('"),
     422, "invalid_pattern", "rule 'zone-example-in': Missing close parenthesis"),
    ("residency violation", ("{region: india, service: sync, action: steer, to: local}",
                             "{region: india, service: sync, action: steer, to: to-sg}"),
     422, "residency_violation", "breaks residency rule 'india-personal-data'"),
    # A content rule's mirror of protected traffic, of the protected region
    # (it said invalid_table) and of a region nested in it (it passed).
    ("content rule residency", ("content_rules:\n", "content_rules:\n  - {name: leak, field: payload, "
                                "pattern: abc, services: [sync], regions: [india], action: mirror, to: to-sg}\n"),
     422, "residency_violation", "breaks residency rule 'india-personal-data': mirrors region 'india' traffic "
     "to link 'to-sg' (tags: sg), but the rule allows service 'sync' only on links tagged in"),
    ("nested content rule residency", ("content_rules:\n", "content_rules:\n  - {name: leak, field: payload, "
                                       "pattern: abc, services: [sync], regions: [india-partner], action: "
                                       "mirror, to: to-sg}\n"),
     422, "residency_violation", "but content rule 'leak' of region 'india-partner' mirrors to link 'to-sg'"),
    # unreadable: true (fail closed) is for names, and its action is checked like any other's
    ("unreadable on payload", ("content_rules:\n", "content_rules:\n  - {name: closed, field: payload, "
                               "unreadable: true, services: [sync], action: drop}\n"),
     422, "invalid_table", "unreadable matches a name that cannot be read: tls_sni, http_host or "
     "dns_qname, not payload"),
    ("unreadable residency", ("content_rules:\n", "content_rules:\n  - {name: leak, field: dns_qname, "
                              "unreadable: true, services: [sync], regions: [india], action: mirror, to: to-sg}\n"),
     422, "residency_violation", "breaks residency rule 'india-personal-data': mirrors region 'india' traffic "
     "to link 'to-sg' (tags: sg), but the rule allows service 'sync' only on links tagged in"),
]


@pytest.mark.parametrize("name,change,status,code,reason", BAD_DOCS, ids=[b[0] for b in BAD_DOCS])
def test_bad_documents_change_nothing(box, tmp_path, name, change, status, code, reason):
    doc = open(DEMO).read().replace(*change)
    got, r = box.http("PUT", "/v1/table", {"document": doc, "expected_generation": 1})
    assert got == status and r["error"]["code"] == code and reason in r["error"]["reason"], r
    path = tmp_path / "bad.yaml"
    path.write_text(doc)
    rc, _, err = box.ctl("apply", str(path))
    assert rc == 1 and reason in err
    rc, _, err = box.ctl("validate", str(path))
    assert rc == 1 and reason in err
    if r["error"]["line"]:  # named by its file, as the operator knows it
        assert f"{path}:{r['error']['line']}:" in err and "document:" not in err, err
    assert_unchanged(box)


def test_a_table_from_standard_input(box):
    """validate, diff and apply took no '-' (a generator's pipe): '-: cannot
    open'. '-' reads standard input, a pipe too, named stdin in errors."""
    doc = open(DEMO).read()
    for cmd in ("validate", "diff"):
        p = subprocess.run([REGIONCTL, "-s", box.api, cmd, "-"], input=doc, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, (cmd, p.stderr)
        # named stdin when valid too (it said "-: valid")
        assert cmd == "diff" or p.stdout == "stdin: valid\n", p.stdout
    # A pipe given by its name (validate <(gen)) is not read: the refusal
    # says to give '-'.
    p = subprocess.run(["bash", "-c", f"{REGIONCTL} -s {box.api} validate <(cat {DEMO})"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "(a pipe: give '-' and the document on standard input)" in p.stderr, p.stderr
    bad = doc.replace("103.21.0.0/16", "103.21.0.1/16")
    line = bad.splitlines().index(next(x for x in bad.splitlines() if "103.21.0.1/16" in x)) + 1
    p = subprocess.run([REGIONCTL, "-s", box.api, "apply", "-"], input=bad, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1 and f"stdin:{line}:" in p.stderr and "host bits set" in p.stderr, p.stderr
    new = doc.replace(*SG_LOCAL)
    p = subprocess.run([REGIONCTL, "-s", box.api, "apply", "-"], input=new, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and "generation 2" in p.stdout, (p.stdout, p.stderr)


def test_fleet_endpoints_in_single_box_mode_answer_not_fleet(box):
    """docs/api.md: every fleet endpoint answers 404 not_fleet without
    --fleet-endpoints. A POST's body was read first, so an empty or bad one
    got 400 naming a field of an endpoint that cannot serve anything here."""
    for method, path, body in (("GET", "/v1/fleet/nodes", None), ("GET", "/v1/fleet/rollouts", None),
                               ("GET", "/v1/fleet/rollouts/active", None),
                               ("POST", "/v1/fleet/rollouts", {}), ("POST", "/v1/fleet/rollouts", {"x": 1}),
                               ("POST", "/v1/fleet/rollouts/active/abort", {}),
                               ("POST", "/v1/fleet/unpin", {}), ("POST", "/v1/fleet/unpin", {"node": 7})):
        code, r = box.http(method, path, body)
        assert code == 404 and r["error"]["code"] == "not_fleet", (method, path, body, r)
    assert_unchanged(box)


def test_a_port_the_node_lacks_is_refused_at_the_links_line(box, tmp_path):
    """regiond cannot know regionfwd's ports; regionfwd refuses a link on a
    port its node lacks, and the answer names the link's line of the
    document sent, as a validation refusal does (it said no line)."""
    doc = open(DEMO).read().replace("    port: sg0\n", "    port: nowhere0\n", 1)
    line = doc.splitlines().index("    port: nowhere0") + 1
    got, r = box.http("PUT", "/v1/table", {"document": doc, "expected_generation": 1})
    assert got == 422 and r["error"]["code"] == "dataplane_refused", r
    assert (r["error"]["file"], r["error"]["line"], r["error"]["path"]) == ("document", line, "links.to-sg.port"), r
    assert "no port 'nowhere0' in node config" in r["error"]["reason"], r
    path = tmp_path / "noport.yaml"
    path.write_text(doc)
    rc, _, err = box.ctl("apply", str(path))
    assert rc == 1 and f"{path}:{line}: links.to-sg.port: regionfwd refused the table: no port 'nowhere0'" in err, err
    # A JSON document has no lines: its file and the field, as the
    # validator says them (a probe: it named no file).
    jpath = tmp_path / "noport.json"
    jpath.write_text(json.dumps(yaml.safe_load(doc), indent=2))
    rc, _, err = box.ctl("apply", str(jpath))
    assert rc == 1 and f"{jpath}: links.to-sg.port: regionfwd refused the table: no port 'nowhere0'" in err, err
    # A document with a names_file travels with the file embedded, as
    # compact JSON without lines: its refusals, regionfwd's and the
    # validator's, were said with no line at all. regionctl says them at
    # the field's line of the file as written.
    (tmp_path / "names.txt").write_text("blocked.example.com\n")
    rule = ("  - name: listed\n    field: tls_sni\n    names_file: names.txt\n"
            "    services: [https]\n    action: drop\n")
    text = doc.replace("content_rules:\n", "content_rules:\n" + rule, 1) if "content_rules:" in doc \
        else doc + "content_rules:\n" + rule
    path.write_text(text)
    line = text.splitlines().index("    port: nowhere0") + 1
    rc, out, err = box.ctl("apply", str(path), json_out=True)
    assert rc == 1 and f"{path}:{line}: links.to-sg.port: regionfwd refused the table" in err, err
    assert (out["error"]["file"], out["error"]["line"]) == ("document", line), out
    text = text.replace("    port: nowhere0", "    port: sg0").replace("    services: [https]\n    action: drop\n",
                                                                     "    services: [nosuch]\n    action: drop\n")
    path.write_text(text)
    line = text.splitlines().index("    services: [nosuch]") + 1
    rc, _, err = box.ctl("validate", str(path))
    assert rc == 1 and f"{path}:{line}: content_rules[" in err and "'nosuch'" in err, err
    assert_unchanged(box)


def test_errors_quoting_a_document_show_control_characters_escaped(box, tmp_path):
    """A reason quotes what the document said; a control character in it
    (a region named with a terminal escape) reaches the operator's terminal
    as \\xNN from regionctl (the API's reason) and from regionfwd's own
    check, never raw."""
    path = tmp_path / "esc.yaml"
    # YAML's own escapes (raw control characters are refused by the
    # parser): ESC, and the C1 CSI (U+009B, bytes c2 9b) shown per byte.
    for esc, raw, shown in (("\\e", "\x1b", "\\x1b"), ("\\x9b", "\x9b", "\\xc2\\x9b")):
        path.write_text(f'version: 1\nregions:\n  "in{esc}[2Jdia": {{prefixes: [10.0.0.0/8]}}\n')
        rc, _, err = box.ctl("validate", str(path))
        assert rc == 1 and raw not in err and f"in{shown}[2Jdia" in err, repr(err)
        assert f"{path}:3: regions.in{shown}[2Jdia: " in err, repr(err)
        p = subprocess.run([regionfwd_bin(), "--check-table", str(path)], capture_output=True, text=True)
        assert p.returncode != 0 and raw not in p.stderr and f"in{shown}[2Jdia" in p.stderr, repr(p.stderr)
    assert_unchanged(box)


def test_bad_requests_change_nothing(box):
    doc = open(DEMO).read().replace(*SG_LOCAL)
    cases = [
        (("PUT", "/v1/table"), dict(raw=b"{not json"), 400, "bad_request"),
        (("PUT", "/v1/table"), dict(body={"document": doc}), 400, "bad_request"),  # no expected_generation
        (("PUT", "/v1/table"), dict(body={"document": doc, "expected_generation": 1, "colour": 1}), 400, "bad_request"),
        (("PUT", "/v1/table"), dict(body={"document": 7, "expected_generation": 1}), 400, "bad_request"),
        # null is not a generation: it once skipped the concurrency check.
        (("PUT", "/v1/table"), dict(body={"document": doc, "expected_generation": None}), 400, "bad_request"),
        (("PATCH", "/v1/table"), dict(body={"expected_generation": None, "changes": [
            {"op": "add_prefixes", "region": "india", "prefixes": ["10.99.0.0/16"]}]}), 400, "bad_request"),
        # An author or comment is one line: a newline once forged a log line.
        (("PUT", "/v1/table"), dict(body={"document": doc, "expected_generation": 1,
                                          "author": "evil\n2026-12-01T00:00:00Z notice regiond: FAKE"}),
         400, "bad_request"),
        (("PUT", "/v1/table"), dict(body={"document": doc, "expected_generation": 1, "comment": "x\x1b[31m"}),
         400, "bad_request"),
        # C1 is control too (U+009B is CSI, as ESC [ is), and the line and
        # paragraph separators break a line as a newline does.
        (("PUT", "/v1/table"), dict(body={"document": doc, "expected_generation": 1, "comment": "a\u009b31m"}),
         400, "bad_request"),
        (("PUT", "/v1/table"), dict(body={"document": doc, "expected_generation": 1, "author": "x\u2028y"}),
         400, "bad_request"),
        (("PUT", "/v1/table"), dict(body={"document": doc, "expected_generation": 1, "comment": "x\u2029y"}),
         400, "bad_request"),
        (("POST", "/v1/prefixes"), dict(body={"comment": "a\u009b31m", "changes": [
            {"region": "india", "add": ["10.99.0.0/16"]}]}), 400, "bad_request"),
        (("PUT", "/v1/table"), dict(body={"document": doc, "expected_generation": 0}), 409, "stale_generation"),
        (("PATCH", "/v1/table"), dict(body={"expected_generation": 1, "changes": [{"op": "explode"}]}), 400, "bad_request"),
        (("PATCH", "/v1/table"), dict(body={"expected_generation": 1, "changes": [{"op": "add_prefixes", "region": "mars", "prefixes": []}]}), 422, "invalid_change"),
        # A policy added without region, then a removal scanning past it: refused, no crash.
        (("PATCH", "/v1/table"), dict(body={"expected_generation": 1, "changes": [
            {"op": "add_policy", "policy": {"service": "https", "action": "drop"}},
            {"op": "remove_policy", "region": "mars", "service": "https"}]}), 422, "invalid_change"),
        (("PATCH", "/v1/table"), dict(body={"expected_generation": 1, "changes": [
            {"op": "add_policy", "policy": {"service": "https", "action": "drop"}}]}), 422, "invalid_table"),
        (("POST", "/v1/rollback"), dict(body={"generation": 42}), 404, "unknown_generation"),
        (("POST", "/v1/confirm"), dict(body={}), 409, "nothing_to_confirm"),
        (("DELETE", "/v1/table"), dict(), 404, "not_found"),
        (("GET", "/v2/anything"), dict(), 404, "not_found"),
    ]
    for (method, path), kw, status, code in cases:
        got, r = box.http(method, path, **kw)
        assert got == status and r["error"]["code"] == code, (method, path, kw, got, r)
    assert_unchanged(box)


def raw_request(path_sock, head):
    """@head sent on the unix socket, read until regiond closes: (status
    line, headers as a dict with lower-case names, body bytes)."""
    resp = unix_exchange(path_sock, head.encode(), timeout=60)
    top, _, body = resp.partition(b"\r\n\r\n")
    lines = top.decode().split("\r\n")
    return lines[0], {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:])}, body


def test_head_answers_as_get_without_a_body(box):
    """HEAD on a GET route (a monitor's `HEAD /metrics`, a load balancer's
    `HEAD /v1/status`) was 404: RFC 9110 9.3.2 wants GET's status and
    headers, and no body. A path or method with no GET stays 404."""
    for path in ("/metrics", "/v1/status", "/v1/health", "/v1/table", "/v1/history", "/v1/counters"):
        req = f" {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        g_line, g_hdr, g_body = raw_request(box.api, "GET" + req)
        h_line, h_hdr, h_body = raw_request(box.api, "HEAD" + req)
        assert h_line == g_line and g_line.split()[1] in ("200", "503"), (path, g_line, h_line)
        assert h_body == b"" and g_body != b"", (path, h_body[:200])
        assert h_hdr.get("content-type") == g_hdr.get("content-type"), (path, h_hdr, g_hdr)
        if path == "/v1/table":  # the same bytes each time: the same length
            assert h_hdr["content-length"] == g_hdr["content-length"] == str(len(g_body)), (h_hdr, g_hdr)
    for path in ("/v1/explain", "/v2/anything"):
        line, _, body = raw_request(box.api, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert line.split()[1] == "404" and body == b"", (path, line, body)



def patch(box, expected, *changes):
    return box.http("PATCH", "/v1/table", {"expected_generation": expected, "changes": list(changes)})


def test_patch_retried_add_prefixes_is_a_noop(box):
    """A PATCH adding a prefix, retried after it succeeded (with the new
    expected_generation), was refused "prefix 181.0.0.0/8 is listed twice":
    a region's prefixes are a set, so the retry leaves the table as it is,
    and that is the documented no-op (as POST /v1/prefixes answers it)."""
    add = {"op": "add_prefixes", "region": "brazil", "prefixes": ["181.0.0.0/8", "2800:3f0::/32"]}
    code, r = patch(box, 1, add)
    assert code == 200 and r["changed"] is True and r["generation"]["id"] == 2, r
    h = box.ctl("history", json_out=True)[1]["history"]
    code, r = patch(box, 2, add)
    assert code == 200 and r["changed"] is False and r["generation"]["id"] == 2, r
    # However the retry spells them, and alongside a change that changes nothing.
    code, r = patch(box, 2, {"op": "set_link_state", "link": "to-br", "state": "up"},
                    {"op": "add_prefixes", "region": "brazil", "prefixes": ["2800:3F0:0::/32", "181.0.0.0/8"]})
    assert code == 200 and r["changed"] is False and r["generation"]["id"] == 2, r
    assert box.ctl("history", json_out=True)[1]["history"] == h
    assert_unchanged(box, 2)
    rc, t, _ = box.ctl("show", "table", json_out=True)
    assert sorted(t["regions"]["brazil"]["prefixes"]) == ["18.228.0.0/15", "181.0.0.0/8", "2600:1f1e::/36",
                                                          "2800:3f0::/32"], t["regions"]["brazil"]


def test_patch_prefix_refusals_name_the_change(box):
    """A prefix another region holds was refused with the path
    "regions.brazil.prefixes" (no index, no change); one listed twice in a
    change too. Each now names changes[i].prefixes[j], and the other
    region, as POST /v1/prefixes does; removing an absent prefix is
    refused as there."""
    cases = [
        ([{"op": "set_link_state", "link": "to-br", "state": "down"},
          {"op": "add_prefixes", "region": "brazil", "prefixes": ["177.0.0.0/8", "8.128.0.0/13"]}],
         "changes[1].prefixes[1]",
         "prefix 8.128.0.0/13 is held by region 'singapore', not 'brazil': remove it there in an earlier "
         "change to move it"),
        ([{"op": "add_prefixes", "region": "brazil", "prefixes": ["177.0.0.0/8", "2406:DA18::/32"]}],
         "changes[0].prefixes[1]",
         "prefix 2406:da18::/32 is held by region 'singapore', not 'brazil': remove it there in an earlier "
         "change to move it"),
        ([{"op": "add_prefixes", "region": "brazil", "prefixes": ["181.0.0.0/8", "177.0.0.0/8", "181.0.0.0/8"]}],
         "changes[0].prefixes[2]", "prefix 181.0.0.0/8 is listed twice in this change (also prefixes[0])"),
        ([{"op": "remove_prefixes", "region": "brazil", "prefixes": ["18.228.0.0/15", "18.228.0.0/15"]}],
         "changes[0].prefixes[1]", "prefix 18.228.0.0/15 is listed twice in this change (also prefixes[0])"),
        ([{"op": "remove_prefixes", "region": "brazil", "prefixes": ["18.228.0.0/15", "177.0.0.0/8"]}],
         "changes[0].prefixes[1]", "prefix 177.0.0.0/8 is not in region 'brazil'"),
        ([{"op": "remove_prefixes", "region": "brazil", "prefixes": ["8.128.0.0/13"]}],
         "changes[0].prefixes[0]", "prefix 8.128.0.0/13 is not in region 'brazil' but in 'singapore'"),
    ]
    for changes, path, reason in cases:
        code, r = patch(box, 1, *changes)
        assert code == 422 and r["error"]["code"] == "invalid_change", (changes, r)
        assert (r["error"]["path"], r["error"]["reason"]) == (path, reason), (changes, r)
    assert_unchanged(box)
    # Removed from its region in an earlier change, a prefix moves.
    code, r = patch(box, 1, {"op": "remove_prefixes", "region": "brazil", "prefixes": ["18.228.0.0/15"]},
                    {"op": "add_prefixes", "region": "oregon", "prefixes": ["18.228.0.0/15"]})
    assert code == 200 and r["changed"] is True and r["generation"]["id"] == 2, r
    e = box.http("POST", "/v1/explain", {"src": "18.229.0.1", "dst": "1.1.1.1", "proto": "tcp", "dport": 80})[1]
    assert e["region"] == "oregon", e


def test_a_stale_writer_hears_stale_generation_before_its_change_is_checked(box):
    """A soak: a client at generation 2 retried the removal of a prefix
    another client had removed since (generation 3): PATCH answered 422
    invalid_change (its changes checked against a table its writer had not
    read), where PUT and POST /v1/prefixes answered 409 stale_generation.
    Every write that takes expected_generation answers a stale one first,
    before its change is validated: PATCH, a prefixes batch naming a
    region that is gone, a rollback to a generation that is not there, a
    PUT of an invalid document. A malformed request is still 400."""
    code, r = box.http("POST", "/v1/prefixes", {"expected_generation": 1,
                                                "changes": [{"region": "brazil", "add": ["10.5.0.0/24"]}]})
    assert code == 200 and r["generation"] == 2, r
    code, r = box.http("POST", "/v1/prefixes", {"expected_generation": 2,
                                                "changes": [{"region": "brazil", "remove": ["10.5.0.0/24"]}]})
    assert code == 200 and r["generation"] == 3, r
    h = box.ctl("history", json_out=True)[1]["history"]
    gone = {"op": "remove_prefixes", "region": "brazil", "prefixes": ["10.5.0.0/24"]}
    stale = [
        ("PATCH", "/v1/table", {"expected_generation": 2, "changes": [gone]}),
        ("PATCH", "/v1/table", {"expected_generation": 2, "changes": [
            {"op": "set_link_state", "link": "to-nowhere", "state": "down"}]}),
        ("POST", "/v1/prefixes", {"expected_generation": 2,
                                  "changes": [{"region": "brazil", "remove": ["10.5.0.0/24"]}]}),
        # expected_generation after the change it refuses: read first all the same
        ("POST", "/v1/prefixes", {"changes": [{"region": "atlantis", "add": ["10.6.0.0/24"]}],
                                  "expected_generation": 2}),
        ("POST", "/v1/rollback", {"expected_generation": 2, "generation": 99}),
        ("PUT", "/v1/table", {"expected_generation": 2,
                              "document": "version: 1\nregions: {x: {prefixes: [10.1.2.3/8]}}\n"}),
    ]
    for method, path, body in stale:
        code, r = box.http(method, path, body)
        assert code == 409 and r["error"]["code"] == "stale_generation", (method, body, r)
        assert r["error"]["path"] == "expected_generation" and r["error"]["reason"] == (
            "the table is at generation 3, not 2; read it again and redo the change"), (method, body, r)
    # At the current generation each is refused for what it is.
    code, r = patch(box, 3, gone)
    assert code == 422 and r["error"]["code"] == "invalid_change", r
    code, r = box.http("POST", "/v1/prefixes", {"changes": [{"region": "atlantis", "add": ["10.6.0.0/24"]}],
                                                "expected_generation": 3})
    assert code == 422 and r["error"]["code"] == "invalid_delta", r
    code, r = box.http("POST", "/v1/rollback", {"expected_generation": 3, "generation": 99})
    assert code == 404 and r["error"]["code"] == "unknown_generation", r
    # Malformed, whatever its generation: 400, the request has no meaning to compare.
    for method, path, body in (("PATCH", "/v1/table", {"expected_generation": 2, "changes": []}),
                               ("POST", "/v1/prefixes", {"expected_generation": 2, "changes": [{"region": 5}]})):
        code, r = box.http(method, path, body)
        assert code == 400 and r["error"]["code"] == "bad_request", (method, body, r)
    assert box.ctl("history", json_out=True)[1]["history"] == h


def test_two_concurrent_writers(box, tmp_path):
    """Both read generation 1; the second to write is refused and must re-read."""
    a = open(DEMO).read().replace(*SG_LOCAL)
    b = open(DEMO).read().replace("{region: any, service: ntp, action: steer, to: local}",
                                  "{region: any, service: ntp, action: drop}")
    procs = [subprocess.Popen([sys.executable, "-c", f"""
import json, socket
body = json.dumps({{"document": {json.dumps(doc)}, "expected_generation": 1}}).encode()
s = socket.socket(socket.AF_UNIX); s.connect({box.api!r})
s.sendall(b"PUT /v1/table HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
r = b""
while True:
    c = s.recv(65536)
    if not c: break
    r += c
print(r.split()[1].decode())
"""], stdout=subprocess.PIPE, text=True) for doc in (a, b)]
    codes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert codes == ["200", "409"]
    s = box.status()
    assert s["generation"]["id"] == 2 and s["dataplane"]["in_sync"]


def test_apply_refuses_an_edit_of_an_older_generation(box, tmp_path):
    """regionctl apply sent the generation current when it started, so an
    edit of generation 1 applied after another client's generation 2
    undid it without a word (a soak of concurrent clients). With
    --expected-generation N, the generation the edit was made from, it is
    refused; N current is applied; a bad N is a usage error."""
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(open(DEMO).read().replace(*SG_LOCAL))
    b.write_text(open(DEMO).read().replace("{region: any, service: ntp, action: steer, to: local}",
                                           "{region: any, service: ntp, action: drop}"))
    base = box.status()["generation"]["id"]
    rc, _, err = box.ctl("apply", str(a))
    assert rc == 0, err
    rc, out, err = box.ctl("apply", str(b), "--expected-generation", str(base))
    assert rc == 1 and "stale_generation" in out + err, out + err
    assert box.status()["generation"]["id"] == base + 1
    rc, out, err = box.ctl("apply", str(b), "--expected-generation", str(base + 1))
    assert rc == 0, out + err
    assert box.status()["generation"]["id"] == base + 2
    rc, out, err = box.ctl("apply", str(a), "--expected-generation", "two")
    assert rc == 2 and "--expected-generation takes a generation >= 0, not 'two'" in err, out + err


def test_oversized_body_and_tcp_token(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token-0123456789\n")
    token.chmod(0o600)
    reader = tmp_path / "read-token"
    reader.write_text("r3ad-only-token-0123456789\n")
    reader.chmod(0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = Box(tmp_path, "tcp", regiond_args=("--max-body", "4096", "--listen", f"127.0.0.1:{port}",
                                           "--token-file", str(token), "--read-token-file", str(reader)))
    try:
        doc = open(DEMO).read()
        code, r = b.http("PUT", "/v1/table", {"document": doc + "#" * 5000, "expected_generation": 1})
        assert code == 413 and r["error"]["code"] == "body_too_large"
        url = f"http://127.0.0.1:{port}"
        p = subprocess.run([REGIONCTL, "--url", url, "status"], capture_output=True, text=True)
        assert p.returncode == 3 and "unauthorized" in p.stderr  # reads need a token on TCP too (3: health unknown)
        p = subprocess.run([REGIONCTL, "--url", url, "--token-file", str(reader), "status"],
                           capture_output=True, text=True)
        assert p.returncode == 0 and "generation   1" in p.stdout, p.stderr
        new = demo_variant(tmp_path, "n.yaml", *SG_LOCAL)
        p = subprocess.run([REGIONCTL, "--url", url, "--token-file", str(reader), "apply", new],
                           capture_output=True, text=True)
        assert p.returncode == 1 and "forbidden (403)" in p.stderr, p.stderr  # the read token only reads
        p = subprocess.run([REGIONCTL, "--url", url, "apply", new], capture_output=True, text=True)
        assert p.returncode == 1 and "unauthorized" in p.stderr
        bad = tmp_path / "bad-token"
        bad.write_text("s3cret-token-0123456788\n")
        bad.chmod(0o600)
        p = subprocess.run([REGIONCTL, "--url", url, "--token-file", str(bad), "apply", new], capture_output=True, text=True)
        assert p.returncode == 1 and "unauthorized" in p.stderr
        assert_unchanged(b)
        p = subprocess.run([REGIONCTL, "--url", url, "--token-file", str(token), "apply", new], capture_output=True, text=True)
        assert p.returncode == 0 and "generation 2" in p.stdout, p.stderr
        by = b.ctl("history", json_out=True)[1]["history"][0]["by"]
        assert by.startswith("write token from 127.0.0.1 port "), by  # who, as authenticated
    finally:
        b.stop()


def test_idle_clients_on_the_dataplane_socket_do_not_lock_regiond_out(box, tmp_path):
    """Issue 16, finding 6: 16 idle connections on regionfwd's control
    socket kept regiond at 503. regionfwd now closes idle connections that
    never sent a request first to make room, and regiond resends on a fresh
    connection when its kept one was closed."""
    idle = []
    try:
        for _ in range(20):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(box.fwd_sock)
            idle.append(s)
        # regiond restarts: it needs a new connection while every slot is taken.
        box.rd.terminate()
        box.rd.wait(30)
        box.start_regiond()
        new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
        rc, out, err = box.ctl("apply", new)
        assert rc == 0 and "generation 2" in out, err
        s = box.status()
        assert s["dataplane"]["in_sync"] and s["dataplane"]["status"]["generation"]["id"] == 2
    finally:
        for s in idle:
            s.close()


def test_confirm_timeout_reverts_and_confirm_keeps(box, tmp_path):
    new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
    rc, _, err = box.ctl("apply", new, "--confirm-timeout", "2s")  # a typo changes nothing
    assert rc == 2 and "--confirm-timeout takes seconds" in err and box.gen() == 1
    # 4 s: the PUT below must come before the revert, under ASan too.
    rc, out, err = box.ctl("apply", new, "--confirm-timeout", "4")
    assert rc == 0 and "confirm within" in out, err
    code, r = box.http("PUT", "/v1/table", {"document": open(DEMO).read(), "expected_generation": 2})
    assert code == 409 and r["error"]["code"] == "confirm_pending"
    wait_for(lambda: box.gen() == 3, timeout=15, what="automatic revert")
    s = box.status()
    assert s["confirm"] is None and s["dataplane"]["in_sync"]
    rc, h, _ = box.ctl("history", json_out=True)
    assert h["history"][0]["comment"] == "automatic revert: generation 2 was not confirmed in time"
    assert h["history"][0]["hash"] == h["history"][2]["hash"]  # back on generation 1's table
    # Who made each change, as authenticated, not as claimed (audit).
    assert h["history"][0]["by"] == "regiond (commit-confirm timer)"
    assert h["history"][1]["by"].startswith(f"uid {os.geteuid()} pid ") and \
        h["history"][1]["by"].endswith("on the unix socket"), h["history"][1]
    rc, out, _ = box.ctl("history")
    assert "[by regiond (commit-confirm timer)]" in out, out
    # A plain rollback now would run the unconfirmed change again, unasked
    # (a walkthrough): refused, the generation to name said; named, it runs.
    rc, out, err = box.ctl("rollback")
    assert rc == 1 and "the previous generation, 2, is the change generation 3 reverted" in err, (rc, out, err)
    assert box.gen() == 3
    code, r = box.http("POST", "/v1/rollback", {})
    assert code == 400 and r["error"]["path"] == "generation", r
    rc, out, err = box.ctl("rollback", "2")
    assert rc == 0 and box.gen() == 4, (rc, out, err)
    rc, out, err = box.ctl("rollback", "3")
    assert rc == 0 and box.gen() == 5, (rc, out, err)
    # Confirmed in time: it stays.
    rc, out, _ = box.ctl("apply", new, "--confirm-timeout", "3")
    assert rc == 0
    rc, out, _ = box.ctl("confirm")
    assert rc == 0 and "confirmed generation 6" in out
    time.sleep(5)  # past the deadline: it reverts after 3 s, by 4.2 s
    assert box.gen() == 6
    log = open(tmp_path / "regiond.log").read()
    assert f"generation 2 ({h['history'][1]['hash']}) applied by uid {os.geteuid()} pid " in log, log
    assert "generation 3" in log and "reverted by regiond (commit-confirm timer)" in log, log
    assert f"generation 6 confirmed by uid {os.geteuid()} pid " in log, log
    # a change whose comment reads like a revert is no revert: a plain
    # rollback of it runs (the comment alone once decided)
    rc, out, err = box.ctl("apply", DEMO, "--comment", "automatic revert: generation 6 was not confirmed in time")
    assert rc == 0 and box.gen() == 7, (out, err)
    rc, out, err = box.ctl("rollback")
    assert rc == 0 and box.gen() == 8, (rc, out, err)



def test_a_group_left_with_nothing_to_carry_is_said(box, tmp_path):
    """Draining or downing every member of a link group blackholes what is
    steered there (no_link_up, fail closed), as weights of 0 would, which
    the validator refuses; drain and down are maintenance, so the change
    runs, and its answer says it (a walkthrough: nothing did)."""
    rc, out, err = box.ctl("link", "drain", "to-us-west-a")
    assert rc == 0 and "warning" not in out, (out, err)
    rc, out, err = box.ctl("link", "down", "to-us-west-b")
    assert rc == 0 and ("warning: link group 'us-west' has no member that can carry traffic (each is "
                        "down, drained or of weight 0): what is steered there (2 policies or content "
                        "rules) is dropped (no_link_up)") in out, (out, err)
    rc, j, err = box.ctl("link", "drain", "to-us-west-b", json_out=True)
    assert rc == 0 and j["groups_carrying_nothing"] == [{"group": "us-west", "users": 2}], (j, err)
    # validate says it of a table too, before it runs
    doc = open(DEMO).read().replace('next_hop_mac: "02:00:00:00:03:01"',
                                    'next_hop_mac: "02:00:00:00:03:01"\n    state: drain')
    doc = doc.replace("to-us-west-b: 1}", "to-us-west-b: 0}")
    code, r = box.http("POST", "/v1/validate", {"document": doc})
    assert code == 200 and r["groups_carrying_nothing"] == [{"group": "us-west", "users": 2}], r
    rc, j, err = box.ctl("link", "up", "to-us-west-b", json_out=True)
    assert rc == 0 and "groups_carrying_nothing" not in j, (j, err)


def test_validate_knows_the_ports_regionfwd_runs(box, tmp_path):
    """validate said "valid" of a table whose link names a port the node
    lacks, which apply then had refused by regionfwd (a walkthrough): with
    regionfwd's report at hand, it refuses it as regionfwd would."""
    bad = demo_variant(tmp_path, "badport.yaml", "port: br0", "port: br9")
    rc, out, err = box.ctl("validate", str(bad))
    assert rc == 1 and "links.to-br.port: no port 'br9' on the node regionfwd runs (ports: " in err, (out, err)
    assert re.search(r"badport\.yaml:\d+: links\.to-br\.port", err), err
    rc, j, err = box.ctl("validate", str(bad), json_out=True)
    assert rc == 1 and j["valid"] is False and j["error"]["path"] == "links.to-br.port", j
    rc, out, err = box.ctl("apply", str(bad))
    assert rc == 1 and "no port 'br9'" in err and box.gen() == 1, (out, err)
    rc, out, err = box.ctl("validate", DEMO)
    assert rc == 0 and "valid" in out, (out, err)


def test_confirm_names_its_generation(box, tmp_path):
    """A hostile-client probe: A's change (2 s) reverted at its deadline, B
    applied one (60 s); A's late `{}` confirm kept B's change, and B's own
    confirm then got 409 and B believed its change reverted. A confirm
    that names its generation confirms that one or nothing, a retried one
    says it was done (also across a restart), and regionctl sends it."""
    doc = open(demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)).read()
    code, r = box.http("PUT", "/v1/table", {"document": doc, "expected_generation": 1, "confirm_timeout_s": 2})
    assert code == 200, r
    a = r["generation"]["id"]
    wait_for(lambda: box.gen() == a + 1, timeout=15, what="automatic revert of A's change")
    code, r = box.http("PUT", "/v1/table", {"document": doc, "expected_generation": a + 1, "confirm_timeout_s": 60})
    assert code == 200, r
    b = r["generation"]["id"]
    # A's late confirm with A's generation: refused, naming both, and B's
    # change still awaits its own confirmation.
    code, r = box.http("POST", "/v1/confirm", {"generation": a})
    assert code == 409 and r["error"]["code"] == "nothing_to_confirm" and r["error"]["path"] == "generation", r
    assert r["error"]["reason"] == (f"generation {b} awaits confirmation, not {a} "
                                    f"({a} was reverted at its deadline, by generation {a + 1})"), r
    assert box.status()["confirm"]["generation"] == b
    code, r = box.http("POST", "/v1/confirm", {"generation": b + 1})
    assert code == 409 and r["error"]["reason"] == (
        f"generation {b} awaits confirmation, not {b + 1} (there is no generation {b + 1} yet)"), r
    # B's confirm with its generation, then a retry whose answer was lost.
    code, r = box.http("POST", "/v1/confirm", {"generation": b})
    assert code == 200 and r == {"confirmed": b}, r
    assert box.status()["confirm"] is None and box.gen() == b
    code, r = box.http("POST", "/v1/confirm", {"generation": b})
    assert code == 200 and r == {"confirmed": b, "already": True}, r
    code, r = box.http("POST", "/v1/confirm", {})  # as before: nothing is pending
    assert code == 409 and r["error"]["code"] == "nothing_to_confirm", r
    rc, out, err = box.ctl("confirm", str(b))
    assert rc == 0 and out == f"generation {b} was already confirmed\n", (out, err)
    rc, out, err = box.ctl("confirm", str(b), json_out=True)
    assert rc == 0 and out == {"confirmed": b, "already": True}, (out, err)
    rc, out, err = box.ctl("confirm", str(a))
    assert rc == 1 and f"no apply awaits confirmation ({a} was reverted at its deadline" in err, (out, err)
    # Remembered across a restart (history.json).
    box.rd.terminate()
    box.rd.wait(30)
    box.start_regiond()
    code, r = box.http("POST", "/v1/confirm", {"generation": b})
    assert code == 200 and r == {"confirmed": b, "already": True}, r
    # regionctl confirm GEN: what apply printed to confirm with.
    other = demo_variant(tmp_path, "ntp-drop.yaml", "{region: any, service: ntp, action: steer, to: local}",
                         "{region: any, service: ntp, action: drop}")
    rc, out, err = box.ctl("apply", other, "--confirm-timeout", "60")
    assert rc == 0 and f"with 'regionctl confirm {b + 1}'" in out, (out, err)
    # A confirm did keep b: said so, even though another change awaits its
    # own confirmation now; one never armed is refused.
    rc, out, err = box.ctl("confirm", str(b))
    assert rc == 0 and out == f"generation {b} was already confirmed\n", (out, err)
    rc, out, err = box.ctl("confirm", "1")
    assert rc == 1 and f"generation {b + 1} awaits confirmation, not 1 (1 does not await confirmation)" in err, \
        (out, err)
    rc, out, err = box.ctl("confirm", str(b + 1))
    assert rc == 0 and out == f"confirmed generation {b + 1}\n", (out, err)
    assert box.status()["confirm"] is None and box.gen() == b + 1


def test_confirm_refuses_a_bad_generation(box, tmp_path):
    """POST /v1/confirm's generation is a positive integer of at most 64
    bits: anything else is 400 naming the field, and confirms nothing."""
    new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
    rc, out, err = box.ctl("apply", new, "--confirm-timeout", "60")
    assert rc == 0, err
    for raw in (b'{"generation": 0}', b'{"generation": -2}', b'{"generation": "2"}', b'{"generation": 2.0}',
                b'{"generation": null}', b'{"generation": true}', b'{"generation": [2]}'):
        code, r = box.http("POST", "/v1/confirm", raw=raw)
        assert code == 400 and r["error"]["code"] == "bad_request" and r["error"]["path"] == "generation", (raw, r)
        assert r["error"]["reason"] == "'generation' must be an integer in 1..9223372036854775807", (raw, r)
    # past signed 64 bits the body is not JSON to regiond's reader: the
    # same answer as on every endpoint (docs/api.md, Errors)
    for raw in (b'{"generation": 9223372036854775808}', b'{"generation": 99999999999999999999}'):
        code, r = box.http("POST", "/v1/confirm", raw=raw)
        assert code == 400 and r["error"]["path"] == "" and r["error"]["file"] == "body", (raw, r)
        assert "too big integer" in r["error"]["reason"], (raw, r)
    assert box.status()["confirm"]["generation"] == 2
    for arg in ("0", "x", "2.0", "99999999999999999999"):
        rc, out, err = box.ctl("confirm", arg)
        assert rc == 2 and f"'{arg}' is not a generation" in err, (arg, err)
    rc, out, err = box.ctl("confirm", "2", "3")
    assert rc == 2, err
    assert box.status()["confirm"]["generation"] == 2


def test_a_confirm_after_the_deadline_is_refused_while_the_revert_waits(tmp_path, request):
    """A soak: regionfwd stopped (or killed) across a commit-confirm
    deadline, so the revert failed and was retried; a confirm sent seconds
    after confirm_by was taken, the change stayed, and the revert's alarm
    stayed up (health degraded, regiond_alarm 1) until some later change.
    confirm_by is the last second a confirmation is taken: after it the
    confirm is refused (409 nothing_to_confirm, nothing changed), and once
    regionfwd answers the revert runs and its alarm clears."""
    b = Box(tmp_path, request.node.name[:20], regiond_args=["--dataplane-timeout", "1000"])
    try:
        doc = open(DEMO).read().replace(*SG_LOCAL)
        # 5 s: regionfwd must be stopped before the deadline, which a
        # loaded machine may delay past a shorter window
        code, r = b.http("PUT", "/v1/table", {"document": doc, "expected_generation": 1, "confirm_timeout_s": 5})
        assert code == 200, r
        g, by = r["generation"]["id"], r["confirm_by"]
        os.kill(b.fwd.pid, signal.SIGSTOP)
        assert time.time() < by, "stopped after the deadline: the machine was too slow for this test"
        wait_for(lambda: "failed" in (b.status()["alarm"] or ""), timeout=30, what="the revert failing")
        assert time.time() >= by + 1
        for body in ({"generation": g}, {}):
            code, c = b.http("POST", "/v1/confirm", body)
            assert code == 409 and c["error"]["code"] == "nothing_to_confirm", (body, c)
            assert c["error"]["reason"] == (
                f"generation {g} was not confirmed in time (by {by}): its revert to generation 1 is "
                "retried every second until regionfwd answers; nothing changed"), (body, c)
        s = b.status()
        assert s["confirm"]["generation"] == g and s["generation"]["id"] == g, s
        os.kill(b.fwd.pid, signal.SIGCONT)
        wait_for(lambda: (lambda s: s["alarm"] is None and s["confirm"] is None and s["dataplane"]["in_sync"] and
                          s["generation"]["id"] > g)(b.status()), timeout=30, what="the revert, its alarm cleared")
        h = b.ctl("history", json_out=True)[1]["history"]
        assert h[0]["comment"] == f"automatic revert: generation {g} was not confirmed in time", h[0]
        assert h[0]["hash"] == h[-1]["hash"]  # generation 1's table again
        code, c = b.http("POST", "/v1/confirm", {"generation": g})
        assert code == 409 and f"{g} was reverted at its deadline, by generation {h[0]['id']}" in \
            c["error"]["reason"], c
        assert b.status()["health"]["state"] == "healthy"
    finally:
        if b.fwd.poll() is None:
            os.kill(b.fwd.pid, signal.SIGCONT)
        b.stop()


def test_link_commands(steady_box, tmp_path):
    """regionctl link down|up|drain|weight: a PATCH of the table, so validated
    (residency included), audited, and commit-confirm capable."""
    box = steady_box
    def links():
        return {l["name"]: l for l in box.status()["dataplane"]["status"]["links"]}

    def link_packets(name):
        return box.fwd_counters()["links"][name]["packets"]

    d0 = box.fwd_counters()["drops"]["no_link_up"]
    rc, out, err = box.ctl("link", "down", "to-sg", "--comment", "sg0 maintenance", "--author", "alice")
    assert rc == 0 and out.startswith("link down to-sg: generation 2 (") and "is running" in out, err
    assert links()["to-sg"]["admin"] == "down" and links()["to-sg"]["oper"] == "up"
    wait_for(lambda: box.fwd_counters()["drops"]["no_link_up"] > d0, what="no_link_up drops")
    rc, h, _ = box.ctl("history", json_out=True)
    assert (h["history"][0]["comment"], h["history"][0]["author"]) == ("sg0 maintenance", "alice")
    assert h["history"][0]["by"].startswith(f"uid {os.geteuid()} pid "), h["history"][0]
    code, m = box.http("GET", "/metrics")
    assert 'regionfwd_link_admin_state{link="to-sg",state="down"} 1' in m
    # drain: the group's flows leave the drained member for the others; its
    # weight is kept for 'link up'.
    rc, out, err = box.ctl("link", "drain", "to-us-west-a")
    assert rc == 0 and "generation 3" in out, err
    time.sleep(0.5)
    a, b = link_packets("to-us-west-a"), link_packets("to-us-west-b")
    wait_for(lambda: link_packets("to-us-west-b") > b, what="traffic on to-us-west-b")
    assert link_packets("to-us-west-a") == a and links()["to-us-west-a"]["admin"] == "drain"
    rc, out, err = box.ctl("link", "up", "to-us-west-a")
    assert rc == 0, err
    wait_for(lambda: link_packets("to-us-west-a") > a, what="traffic on to-us-west-a again")
    rc, lk, _ = box.ctl("show", "links", json_out=True)
    assert lk["links"]["to-us-west-a"]["state"] == "up"
    rc, out, err = box.ctl("link", "weight", "to-us-west-b", "2")
    assert rc == 0 and out.startswith("link weight to-us-west-b 2: generation 5 "), err
    rc, t, _ = box.ctl("show", "table", json_out=True)
    assert t["link_groups"]["us-west"]["members"] == {"to-us-west-a": 3, "to-us-west-b": 2}
    rc, h, _ = box.ctl("history", json_out=True)
    assert h["history"][0]["comment"] == "link to-us-west-b: weight 2"
    # Commit-confirm: not confirmed, it reverts by itself.
    rc, out, err = box.ctl("link", "down", "to-br", "--confirm-timeout", "4")
    # The CLI prints the whole seconds left to the deadline: 4, or 3 when
    # the apply crossed a second (a sanitizer build is several times slower).
    assert rc == 0 and re.search(r"confirm within [34] s", out) and links()["to-br"]["admin"] == "down", err
    wait_for(lambda: box.gen() == 7, timeout=15, what="automatic revert")
    assert links()["to-br"]["admin"] == "up"
    # Bad input: said clearly, nothing changed.
    gen = box.gen()
    for args, code, msg in [
            (("link", "up", "to-mars"), 1, "no link 'to-mars' in the table"),
            (("link", "down", "to mars"), 2, "'to mars' is not a link name"),
            (("link", "drain", "x" * 32), 2, "is not a link name"),
            (("link", "weight", "to-us-west-b", "-1"), 2, "a weight is 0..1000000, not '-1'"),
            (("link", "weight", "to-us-west-b", "1000001"), 2, "a weight is 0..1000000"),
            (("link", "weight", "to-us-west-b", "2x"), 2, "a weight is 0..1000000, not '2x'"),
            (("link", "weight", "local", "3"), 1, "link 'local' is a member of no link group"),
            (("link", "weight", "to-us-west-b", "3", "--group", "eu"), 1, "no link group 'eu'"),
            (("link", "down", "to-sg", "--confirm-timeout", "soon"), 2, "--confirm-timeout takes seconds"),
            (("link", "drain"), 2, "missing argument LINK"),
            (("link", "sideways", "to-sg"), 2, "unknown subcommand 'sideways'"),
            # --expected-generation: once listed here and never read, the
            # change made on whatever was current.
            (("link", "down", "to-sg", "--expected-generation", str(gen - 1)), 1, "stale_generation"),
            (("link", "weight", "to-us-west-b", "3", "--expected-generation", "1"), 1, "stale_generation"),
            (("link", "up", "to-sg", "--expected-generation", "abc"), 2,
             "--expected-generation takes a generation >= 0, not 'abc'"),
            (("link", "drain", "to-sg", "--expected-generation", "-1"), 2, "")]:
        rc, out, err = box.ctl(*args)
        assert rc == code and msg in err, (args, rc, err)
    assert box.gen() == gen
    # A name not in the running table, with -j: the API's error shape on
    # stdout (it once printed nothing there).
    for args, path in ((("show", "links", "to-mars"), "links.to-mars"),
                       (("prefixes", "list", "mars"), "regions.mars")):
        rc, out, err = box.ctl(*args, json_out=True)
        assert rc == 1 and out["error"]["code"] == "invalid" and out["error"]["path"] == path, (out, err)
        assert "in the running table" in out["error"]["reason"] and "in the running table" in err
    # A long name cut inside a character by the message's buffer: still
    # JSON, cut where a character starts (it once printed nothing).
    rc, out, err = box.ctl("show", "links", "\u00e9" * 120, json_out=True)
    assert rc == 1 and out["error"]["code"] == "invalid" and out["error"]["path"].startswith("links.\u00e9"), \
        (out, err)
    # prefixes list checks the name itself, as add and remove do: a usage
    # error, the bytes shown (it once exited 1 where they exited 2)
    rc, out, err = box.ctl("prefixes", "list", "\u00e9" * 120)
    assert rc == 2 and "'" + "\\xc3\\xa9" * 30 + "...' is not a region name" in err, (rc, err)
    rc, out, err = box.ctl("link", "drain", "to-sg", "--expected-generation", str(gen))
    assert rc == 0 and f"generation {gen + 1} " in out, (out, err)
    rc, out, err = box.ctl("link", "down", "to-sg")
    assert rc == 0, err
    gen = box.gen()
    # Residency: a weight that would send India's personal data to Singapore
    # is refused like any table that does.
    pool = demo_variant(tmp_path, "pool.yaml", "    members: {to-us-west-a: 3, to-us-west-b: 1}\n",
                        "    members: {to-us-west-a: 3, to-us-west-b: 1}\n"
                        "  in-pool:\n    members: {local: 1, to-sg: 0}\n")
    pool_text = open(pool).read().replace("{region: india, service: sync, action: steer, to: local}",
                                          "{region: india, service: sync, action: steer, to: in-pool}")
    open(pool, "w").write(pool_text)
    rc, _, err = box.ctl("apply", pool)
    assert rc == 0, err
    gen = box.gen()
    rc, _, err = box.ctl("link", "weight", "to-sg", "1", "--group", "in-pool")
    assert rc == 1 and "residency_violation" in err and "india-personal-data" in err, err
    assert box.gen() == gen


def test_metrics(box):
    wait_for(lambda: box.fwd_counters()["packets"]["rx"] > 0)
    code, text = box.http("GET", "/metrics")
    assert code == 200
    for line in ("regiond_generation 1", "regiond_dataplane_up 1", "regionfwd_generation 1",
                 '# TYPE regionfwd_packets_total counter', 'regionfwd_drops_total{reason="policy_drop"}',
                 'regionfwd_link_packets_total{link="local"}', 'regionfwd_region_packets_total{region="india"}',
                 'regionfwd_service_packets_total{service="https"}', 'regionfwd_region_bytes_total{region="india"}',
                 'regionfwd_policy_packets_total{policy="india/sync"}', "regionfwd_generation_age_seconds "):
        assert line in text, line
    age = float(text.split("\nregionfwd_generation_age_seconds ")[1].split()[0])
    assert age >= 0


def test_regiond_sigkill_during_traffic_and_restart(steady_box):
    box = steady_box
    c1 = box.fwd_counters()
    box.rd.send_signal(signal.SIGKILL)
    box.rd.wait()
    # regionfwd keeps forwarding on its table with nobody in charge.
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(box.fwd_sock)
    time.sleep(1)
    out = subprocess.run([sys.executable, "-c", f"""
import sys; sys.path.insert(0, {os.path.join(ROOT, 'tests', 'lib')!r})
from ctlclient import Ctl
c = Ctl({box.fwd_sock!r}); print(c.call("counters")["packets"]["tx"])"""], capture_output=True, text=True)
    assert int(out.stdout) > c1["packets"]["tx"]
    box.start_regiond()
    s = box.status()
    assert s["generation"]["id"] == 1 and s["dataplane"]["in_sync"]
    assert "initial table" in box.ctl("history")[1]


def test_regiond_sigkill_during_apply(box, tmp_path):
    """Kill regiond while a large table is being validated and pushed: after a
    restart regiond's state is whole (old or new, never half), and regionfwd
    runs exactly regiond's current generation."""
    big = tmp_path / "big.json"
    subprocess.run([os.path.join(ROOT, "scripts", "gen-table"), "--v4", "300000", "--v6", "30000",
                    "--out", str(big)], check=True, capture_output=True)
    doc = json.load(open(big))
    doc["links"] = {"k0": {"port": "local0", "next_hop_mac": "02:00:00:00:00:01"}}
    for n in range(1, 51):
        doc["links"][f"k{n}"] = {"port": PORTS[n % 5], "next_hop_mac": f"02:00:00:00:01:{n:02x}"}
    big.write_text(json.dumps(doc))
    p = subprocess.Popen([REGIONCTL, "-s", box.api, "apply", str(big)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    box.rd.send_signal(signal.SIGKILL)
    box.rd.wait()
    p.communicate(timeout=60)
    box.start_regiond()
    s = wait_for(lambda: (lambda st: st if st["dataplane"]["in_sync"] else None)(box.status()),
                 timeout=60, what="in sync after restart")
    rc, h, _ = box.ctl("history", json_out=True)
    assert [g["id"] for g in h["history"]] in ([1], [2, 1])
    assert s["generation"]["id"] == h["history"][0]["id"]
    assert s["dataplane"]["status"]["generation"]["hash"] == s["generation"]["hash"]
    files = sorted(f for f in os.listdir(box.state) if not f.startswith("."))
    assert files == sorted(["history.json"] + [f"gen-{g['id']}.doc" for g in h["history"]])
    assert box.fwd.poll() is None, "regionfwd must survive its client vanishing mid-request"


def test_regionfwd_restart_gets_current_generation(box, tmp_path):
    new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
    assert box.ctl("apply", new)[0] == 0
    box.fwd.terminate()
    box.fwd.wait(30)
    wait_for(lambda: not box.status()["dataplane"]["in_sync"], what="regiond notices")
    rc, out, _ = box.ctl("status")  # health for monitoring: 2 unreachable
    assert rc == 2 and "UNREACHABLE" in out and "health       unreachable" in out, (rc, out)
    code, h = box.http("GET", "/v1/health")  # the same verdict for probes that read HTTP only
    assert code == 503 and h["state"] == "unreachable" and h["exit"] == 2, (code, h)
    # --start-on table: on the old table from its own file (by default it
    # would resume the pushed one: test_one_truth.py) ...
    box.start_fwd(table=DEMO, extra=("--start-on", "table"))
    s = wait_for(lambda: (lambda st: st if st["dataplane"]["in_sync"] else None)(box.status()),
                 what="regiond re-pushes")  # ... and regiond brings it up to date
    assert s["dataplane"]["status"]["generation"]["id"] == 2
    rc, out, _ = box.ctl("status")
    assert rc == 0 and "runs it" in out, (rc, out)  # healthy again
    assert box.http("GET", "/v1/health") == (200, {"state": "healthy", "exit": 0,
                                                   "reason": "regionfwd runs the current generation"})
    e = box.http("POST", "/v1/explain", {"src": "8.130.0.1", "dst": "1.1.1.1", "proto": "udp", "dport": 443})[1]
    assert e["link"] == "local"


def test_one_wire_with_two_tag_sets_is_refused_when_written_not_when_stored(tmp_path):
    """Two links on one port, next hop and VLAN with other tags are refused
    when a table is written (apply, validate, fleet apply), not where one
    is loaded: a table stored before the check once stopped regiond at
    start and failed every rollback to it (a review of the check). Here
    such a table runs (regionfwd started on it, regiond adopting it), and
    a restart, a link command, a rollback to it all go through."""
    alias = demo_variant(tmp_path, "alias.yaml", "  to-br:\n",
                         "  sg-alias:\n    port: sg0\n    next_hop_mac: \"02:00:00:00:02:01\"\n"
                         "    vlan: 210\n    tags: [in]\n  to-br:\n")
    b = Box(tmp_path, "onewire")
    try:
        b.stop()
        shutil.rmtree(b.state)
        b.start_fwd(table=alias, extra=("--start-on", "table"))  # which removes the saved push
        # no --table: an empty state directory adopts what regionfwd runs
        b.rd = subprocess.Popen([REGIOND, "--dataplane", b.fwd_sock, "--api-socket", b.api, "--state-dir",
                                 b.state], stdout=b.rd_log, stderr=subprocess.STDOUT)
        wait_for(lambda: b.http("GET", "/v1/status")[0] == 200 and b.status()["dataplane"]["in_sync"],
                 what="the stored table adopted")
        assert "sg-alias" in b.http("GET", "/v1/table")[1]["document"]
        b.rd.terminate()
        b.rd.wait(30)
        b.start_regiond()  # loads its stored table whole (its --table is for an empty directory)
        wait_for(lambda: b.status()["dataplane"]["in_sync"], what="regiond back on it")
        one = b.gen()
        want = ("links.sg-alias: link 'sg-alias' leaves by the same port 'sg0', next hop and VLAN as link "
                "'to-sg' (one wire), but is tagged in where 'to-sg' is tagged sg: give both the tags of "
                "where that wire goes")
        # the running document again: valid, as a PUT of it is a no-op
        rc, out, err = b.ctl("validate", alias)
        assert rc == 0, (out, err)
        rc, out, err = b.ctl("link", "down", "to-br")
        assert rc == 0, (out, err)
        rc, out, err = b.ctl("apply", DEMO)
        assert rc == 0, (out, err)
        rc, out, err = b.ctl("validate", alias)
        assert rc == 1 and want in err, (out, err)
        rc, out, err = b.ctl("apply", alias)
        assert rc == 1 and want in err and b.gen() == one + 2, (out, err)
        rc, out, err = b.ctl("rollback", str(one))
        assert rc == 0 and "sg-alias" in b.http("GET", "/v1/table")[1]["document"], (out, err)
        # "residency:" left with no value (every rule commented out) read
        # as no section: refused when written, as the one wire is (a
        # walkthrough); "residency: []" says none, and is a weakening.
        doc = open(DEMO).read()
        start = doc.index("residency:\n")
        null = tmp_path / "null.yaml"
        null.write_text(doc[:start] + "residency:\n" + "".join(
            "#" + line + "\n" for line in doc[start + len("residency:\n"):].split("\n")
            if line.startswith(" ")))
        line = doc[:start].count("\n") + 1
        rc, out, err = b.ctl("validate", str(null))
        assert rc == 1 and (f"null.yaml:{line}: residency: has no value (null: every rule commented out?); "
                            "write 'residency: []'") in err, (out, err)
        rc, out, err = b.ctl("apply", str(null))
        assert rc == 1 and "has no value" in err, (out, err)
        empty = tmp_path / "empty.yaml"
        empty.write_text(null.read_text().replace("residency:\n", "residency: []\n"))
        rc, out, err = b.ctl("validate", str(empty))
        assert rc == 0 and "warning: residency rule 'india-personal-data' of region 'india' removed" in out, \
            (out, err)
    finally:
        b.stop()


def test_content_rules_end_to_end(box, tmp_path):
    """regiond compiles, ships the databases with the push (regionfwd only
    deserializes), a PATCH keeps the rules, explain/counters/metrics show
    them, and a rule set that does not compile changes nothing."""
    doc = open(DEMO).read().replace("pattern: '\\x90{16}\\xcc'", "pattern: '\\x90{12}\\xcc'")
    code, r = box.http("PUT", "/v1/table", {"document": doc, "expected_generation": 1})
    assert code == 200 and r["generation"]["id"] == 2, r
    box.fwd_log.flush()
    log = open(box.tmp / "fwd.log").read()
    assert re.search(r"generation 2: 3 content rules, databases [\d.]+ KiB \(shipped\)", log), log[-2000:]
    rc, out, err = box.ctl("explain", "8.130.0.1", "198.51.100.1", "tcp", "443", "--sni", "Api.Telemetry.Example.IN")
    assert rc == 0, err
    assert "verdict   telemetry-india-only" in out and "dropped     content_drop" in out, out
    rc, e, _ = box.ctl("explain", "103.21.0.1", "198.51.100.1", "tcp", "443", "--sni", "telemetry.example.in",
                       json_out=True)
    assert rc == 0 and e["content"] is None and e["link"] == "local"  # India is outside the rule's scope
    rc, e, _ = box.ctl("explain", "103.21.0.1", "198.51.100.1", "tcp", "7001",
                       "--payload-hex", "41" + "90" * 12 + "cc", json_out=True)
    assert e["content"]["verdict"] == "sync-exploit" and e["drop_reason"] == "content_drop"
    # A ClientHello cut by the segment's end: regionctl says the name was
    # there but unreadable, not that none was found.
    from refcontent import client_hello
    hello = client_hello("api.telemetry.example.in")[:60].hex()
    rc, out, err = box.ctl("explain", "8.130.0.1", "198.51.100.1", "tcp", "443", "--payload-hex", hello)
    assert rc == 0, err
    assert "  tls_sni    (there, but unreadable: truncated)\n" in out, out
    assert "verdict   none: no content rule matched" in out and "dropped" not in out, out
    # PATCH one policy: the content rules are still there afterwards.
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 2, "changes": [
        {"op": "set_link_state", "link": "to-br", "state": "down"}]})
    assert code == 200 and r["generation"]["id"] == 3, r
    code, t = box.http("GET", "/v1/table")
    assert [c["name"] for c in t["model"]["content_rules"]] == ["telemetry-india-only", "zone-example-in", "sync-exploit"]
    rc, c, _ = box.ctl("counters", json_out=True)
    assert set(c["content_rules"]) == {"telemetry-india-only", "zone-example-in", "sync-exploit"}
    assert c["content_rules"]["sync-exploit"]["action"] == "drop"
    rc, out, _ = box.ctl("counters")
    assert re.search(r"^  sync-exploit\s+payload\s+drop\s+-\s+\d+\s+\d+$", out, re.M), out
    code, text = box.http("GET", "/metrics")
    assert 'regionfwd_content_rule_matches_total{rule="zone-example-in"}' in text
    assert 'regionfwd_events_total{event="content_scanned"}' in text
    bad = doc.replace("pattern: '\\x90{12}\\xcc'", "pattern: '\\x90{12}\\xcc('")
    code, r = box.http("PUT", "/v1/table", {"document": bad, "expected_generation": 3})
    assert code == 422 and r["error"]["code"] == "invalid_pattern" and "sync-exploit" in r["error"]["reason"]
    assert box.gen() == 3
    # Failing closed (unreadable: true): the cut hello that passed above is
    # dropped, explain says by which rule and why; regiond ships the rules
    # (no database for the new one) and a PATCH keeps it.
    closed = doc.rstrip("\n") + ("\n  - {name: sni-unreadable, field: tls_sni, unreadable: true, "
                                 "services: [https], regions: [singapore], action: drop}\n")
    code, r = box.http("PUT", "/v1/table", {"document": closed, "expected_generation": 3})
    assert code == 200 and r["generation"]["id"] == 4, r
    box.fwd_log.flush()
    log = open(box.tmp / "fwd.log").read()
    assert re.search(r"generation 4: 4 content rules, databases [\d.]+ KiB \(shipped\)", log), log[-2000:]
    rc, out, err = box.ctl("explain", "8.130.0.1", "198.51.100.1", "tcp", "443", "--payload-hex", hello)
    assert rc == 0, err
    assert "  tls_sni    (there, but unreadable: truncated)\n" in out, out
    assert "  matched   sni-unreadable (tls_sni, drop) as unreadable: truncated\n" in out, out
    assert "verdict   sni-unreadable" in out and "dropped     content_drop" in out, out
    rc, e, _ = box.ctl("explain", "8.130.0.1", "198.51.100.1", "tcp", "443", "--payload-hex",
                       client_hello("www.example.org").hex(), json_out=True)
    assert rc == 0 and e["content"]["verdict"] is None and e["drop_reason"] is None, e
    code, r = box.http("PATCH", "/v1/table", {"expected_generation": 4, "changes": [
        {"op": "set_link_state", "link": "to-br", "state": "down"}]})
    assert code == 200 and r["generation"]["id"] == 5, r
    code, t = box.http("GET", "/v1/table")
    last = t["model"]["content_rules"][-1]
    assert last["name"] == "sni-unreadable" and last["unreadable"] is True and "pattern" not in last, last
    rc, c, _ = box.ctl("counters", json_out=True)
    assert c["content_rules"]["sni-unreadable"]["action"] == "drop"


@pytest.fixture
def box_sni(tmp_path):
    """A Box whose replayed traffic also carries TLS ClientHellos from
    Singapore to https: names under *.track.example.org, and others."""
    from refcontent import client_hello
    hellos = [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") / IP(src="8.130.0.1", dst="198.51.100.1") /
              TCP(sport=30000 + i, dport=443, flags="PA") /
              Raw(client_hello(("a.track.example.org", "b.track.example.org", "a.track.example.org",
                                "other.example.net")[i % 4])) for i in range(64)]
    b = Box(tmp_path, "name-sets", extra_packets=hellos, steady=True)
    yield b
    b.stop()


def test_name_sets_end_to_end(box_sni, tmp_path):
    """A name set from a names file through regionctl apply: regionctl embeds
    the file (the generation holds it, GET /v1/table's model lists the
    names), regionfwd matches it, explain names the entry, counters show
    the rule's top names through the API and regionctl; a bad line is
    refused with the file and line, and a changed file is a new generation."""
    box = box_sni
    (tmp_path / "blocked.txt").write_text("# telemetry endpoints\nmetrics.example.org\n*.track.example.org\n")
    (tmp_path / "blocked.txt").chmod(0o644)  # readable by others, whatever the umask
    doc = open(DEMO).read().replace("content_rules:\n", "content_rules:\n"
                                    "  - {name: blocklist, field: tls_sni, names_file: blocked.txt, "
                                    "services: [https], action: drop}\n", 1)
    table = tmp_path / "names.yaml"
    table.write_text(doc)
    rc, out, err = box.ctl("apply", str(table))
    assert rc == 0, err
    gen = box.gen()
    code, t = box.http("GET", "/v1/table")
    rule = t["model"]["content_rules"][0]
    assert rule["name"] == "blocklist" and rule["names"] == ["metrics.example.org", "*.track.example.org"], rule
    rc, out, err = box.ctl("explain", "8.130.0.1", "198.51.100.1", "tcp", "443", "--sni", "A.Track.Example.ORG")
    assert rc == 0, err
    assert "matched   blocklist (tls_sni, drop) by name *.track.example.org" in out, out
    assert "dropped     content_drop" in out, out
    # the replayed ClientHellos: the rule's top names through the API and regionctl
    wait_for(lambda: box.http("GET", "/v1/counters")[1]["content_rules"]["blocklist"].get("top_names"),
             what="top names")
    code, c = box.http("GET", "/v1/counters")
    top = c["content_rules"]["blocklist"]["top_names"]
    assert [t["name"] for t in top] == ["*.track.example.org"] and top[0]["count"] > 0, top
    assert c["content_rules"]["blocklist"]["matches"] >= top[0]["count"]
    rc, out, _ = box.ctl("counters")
    assert re.search(r"^  blocklist\s+tls_sni\s+drop.*\n    \*\.track\.example\.org\s+\d+$", out, re.M), out
    # the same document with the same file: nothing new; a changed file: a new generation
    rc, out, err = box.ctl("apply", str(table))
    assert rc == 0 and box.gen() == gen, (out, err)
    (tmp_path / "blocked.txt").write_text("metrics.example.org\n*.track.example.org\nnew.example.org\n")
    rc, out, err = box.ctl("apply", str(table))
    assert rc == 0 and box.gen() == gen + 1, (out, err)
    # regionfwd restarted resumes the pushed table it saved, names and all:
    # the file is not needed any more
    (tmp_path / "blocked.txt").unlink()
    box.fwd.terminate()
    box.fwd.wait(30)
    box.start_fwd()
    wait_for(lambda: box.status()["dataplane"]["in_sync"], what="regionfwd back in sync")
    assert box.status()["dataplane"]["status"]["generation"]["id"] == gen + 1
    rc, out, err = box.ctl("explain", "8.130.0.1", "198.51.100.1", "tcp", "443", "--sni", "new.example.org")
    assert rc == 0 and "by name new.example.org" in out, (out, err)
    box.fwd_log.flush()
    log = open(box.tmp / "fwd.log").read()
    assert f"starting on generation {gen + 1}, last pushed by regiond (saved" in log, log[-3000:]
    assert f"generation {gen + 1}: name sets: 3 names" in log, log[-3000:]
    (tmp_path / "blocked.txt").write_text("ok.example.org\n\nbad_name..example.org\n")
    rc, out, err = box.ctl("apply", str(table))
    # the document and its field first, then the names file and its line
    assert rc != 0 and "names_file: 'blocked.txt' line 3 is not a name" in err + out, (out, err)
    assert box.gen() == gen + 1


def test_a_yaml_tag_is_refused_through_an_embedded_names_file(tmp_path):
    """A document with a names_file travels as JSON with the file embedded,
    which keeps no YAML tag: a tagged table went through where the same one
    without a names_file was refused (a review). regionctl and regiond's
    seed check the text as written before embedding it."""
    (tmp_path / "blocked.txt").write_text("metrics.example.org\n")
    (tmp_path / "blocked.txt").chmod(0o644)
    doc = open(DEMO).read().replace("content_rules:\n", "content_rules:\n"
                                    "  - {name: blocklist, field: tls_sni, names_file: blocked.txt, "
                                    "services: [https], action: drop}\n", 1)
    at = doc.index("\ndescription: ") + 1
    line = doc[:at].count("\n") + 1
    table = tmp_path / "tagged.yaml"
    table.write_text(doc[:at] + "description: !!binary aGk=\n" + doc[doc.index("\n", at) + 1:])
    said = f"{table}:{line}: YAML tag '!!binary' is not read (every value is text, typed by its field): remove it"
    p = subprocess.run([REGIONCTL, "-s", str(tmp_path / "none.sock"), "validate", str(table)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and said in p.stderr, p.stderr  # refused before anything is sent
    p = subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket", str(tmp_path / "api.sock"),
                        "--state-dir", str(tmp_path / "st"), "--table", str(table)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and f"--table refused: {said}" in p.stderr, p.stderr


def test_names_file_confined_to_the_document(tmp_path):
    """regionctl reads a names_file only from beneath the document's
    directory (or beneath --names-dir): a document someone else wrote cannot
    make the operator's regionctl send /etc/shadow, a key or another table
    (common/fwd_confine.c). Refused before anything is sent, naming the field
    and the line, never echoing the file; regionctl reaches nothing here
    (no regiond), so an accepted document fails only for want of one. A
    document kept next to credentials (the package's
    /etc/regionfwd/table.yaml beside credentials/) reaches them beneath its
    directory: a file not readable by others is refused. A refusal exits 1,
    as an invalid table does (it was 2, a usage error, which a script gating
    on validate takes for its own mistake); --names-dir itself is a usage
    error."""
    top = tmp_path / "top"
    (top / "doc" / "lists").mkdir(parents=True)
    (top / "doc" / "credentials").mkdir(mode=0o700)
    (top / "trusted").mkdir()
    for path, text, mode in ((top / "secret.txt", "root:$6$secret hash:19000\n", 0o644),
                             (top / "doc" / "lists" / "ok.txt", "a.example\n", 0o644),
                             (top / "trusted" / "ok.txt", "b.example\n", 0o644),
                             (top / "doc" / "credentials" / "etcd-password", "root:$6$secret hash\n", 0o600),
                             (top / "doc" / "server.pem", "root:$6$secret hash\n", 0o640)):
        path.write_text(text)
        path.chmod(mode)  # the mode is a rule: whatever the umask
    os.symlink("../secret.txt", top / "doc" / "out-link")
    os.symlink("lists/ok.txt", top / "doc" / "in-link")
    os.mkfifo(top / "doc" / "fifo")
    none = str(tmp_path / "no-regiond.sock")

    def apply(names_file, *extra):
        doc = open(DEMO).read().replace("content_rules:\n", "content_rules:\n"
                                        f"  - {{name: l, field: tls_sni, names_file: '{names_file}', "
                                        "services: [https], action: drop}\n", 1)
        (top / "doc" / "t.yaml").write_text(doc)
        line = doc[:doc.index("names_file")].count("\n") + 1
        p = subprocess.run([REGIONCTL, "-s", none, *extra, "apply", str(top / "doc" / "t.yaml")],
                           capture_output=True, text=True, timeout=30)
        return p.returncode, p.stderr, line

    for nf, why in ((str(top / "secret.txt"), "an absolute path"), ("/etc/passwd", "an absolute path"),
                    ("../secret.txt", "a '..' component"), ("lists/../../secret.txt", "a '..' component"),
                    ("out-link", "it leads out of the document's directory tree"),
                    ("fifo", "a FIFO, not a regular file"), ("lists", "a directory, not a regular file"),
                    (".", "a directory, not a regular file"),
                    ("credentials/etcd-password", "not readable by others; a names file becomes part of the "
                                                  "table every API reader sees"),
                    ("server.pem", "not readable by others")):
        rc, err, line = apply(nf)
        assert rc == 1 and f"t.yaml:{line}: content_rules[0].names_file: names_file '{nf}' refused: {why}" in err, \
            (nf, rc, err)
        assert "secret hash" not in err and "root:" not in err, err
    # a file that is not there: the document and line first too (it said
    # only "DIR/lists/nope.txt: content_rules[0].names_file: cannot open: ...")
    rc, err, line = apply("lists/nope.txt")
    assert rc == 1 and (f"{top / 'doc' / 't.yaml'}:{line}: content_rules[0].names_file: 'lists/nope.txt': "
                        "cannot open: No such file or directory\n") in err, (rc, err)
    for nf in ("lists/ok.txt", "in-link"):
        rc, err, _ = apply(nf)
        assert rc == 3, (nf, rc, err)  # embedded: only regiond is missing
    # the operator's --names-dir, and only beneath it
    rc, err, _ = apply(str(top / "trusted" / "ok.txt"), "--names-dir", str(top / "trusted"))
    assert rc == 3, err
    rc, err, _ = apply(str(top / "secret.txt"), "--names-dir", str(top / "trusted"))
    assert rc == 1 and "an absolute path" in err, err
    rc, err, _ = apply("lists/ok.txt", "--names-dir", "trusted")
    assert rc == 2 and "--names-dir takes an absolute directory" in err, err
    # absolute but not there: said so (it was "takes an absolute directory")
    rc, err, _ = apply("lists/ok.txt", "--names-dir", str(top / "nowhere"))
    assert rc == 2 and f"--names-dir {top / 'nowhere'}: No such file or directory" in err, err


def test_truncated_and_stalled_uploads_change_nothing(box):
    """A client that promises a large body and sends half, then closes; one
    that sends a broken chunked body: regiond refuses or drops them and the
    table stays as it was."""
    doc = open(DEMO).read()
    body = json.dumps({"document": doc.replace("to-sg}", "local}"), "expected_generation": 1}).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(box.api)
    s.sendall(f"PUT /v1/table HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:len(body) // 2])
    s.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(box.api)
    s.sendall(b"PUT /v1/table HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + body[:100])
    s.settimeout(10)
    try:
        s.recv(4096)
    except OSError:
        pass
    s.close()
    time.sleep(0.5)
    assert_unchanged(box)
    assert box.rd.poll() is None


def test_a_nul_byte_in_a_body_is_refused_as_one(box):
    """A NUL byte between values, which jansson skips as a space (the body
    read as if it were not there), and one after the body, which it called
    "end of file expected near end of file" (a walkthrough): refused as
    what they are, where they are, changing nothing."""
    gen = box.gen()
    for raw, at in ((b'{"generation": 1\0, "dry_run": true}', 16), (b'{"dry_run": true}\0', 17),
                    (b'{"document": "regions: {}"\0}', 26)):
        for path in ("/v1/rollback", "/v1/validate"):
            code, r = box.http("POST", path, raw=raw)
            assert code == 400 and r["error"]["reason"] == (
                f"body is not valid JSON: a NUL byte (JSON has none, in a string or between values) "
                f"(column {at + 1}, byte {at})"), (path, raw, r)
    assert box.gen() == gen


def test_regiond_under_valgrind(tmp_path):
    """regiond under valgrind memcheck through the end-to-end operations
    (apply, PATCH, rollback, validate, explain, counters, metrics, bad
    documents, an invalid pattern, prefix deltas with checkpoints): no
    memory error, nothing definitely or indirectly lost at exit."""
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind not installed")
    if os.environ.get("SANITIZE", "none") != "none":
        pytest.skip("an ASan build cannot run under valgrind (the release build runs this)")
    vlog = tmp_path / "valgrind.log"
    b = Box(tmp_path, "valgrind", steady=True, regiond_args=("--keep", "3"),
            wrapper=["valgrind", "--tool=memcheck", "--leak-check=full",
                                             "--errors-for-leak-kinds=definite,indirect",
                                             # the Hyperscan compile child runs under valgrind too, silently
                                             "--child-silent-after-fork=yes", f"--log-file={vlog}"])
    try:
        new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
        assert b.ctl("diff", new)[0] == 0
        assert b.ctl("apply", new)[0] == 0
        code, r = b.http("PATCH", "/v1/table", {"expected_generation": 2, "changes": [
            {"op": "add_prefixes", "region": "brazil", "prefixes": ["177.0.0.0/8"]},
            {"op": "set_link_state", "link": "to-br", "state": "down"}]})
        assert code == 200, r
        assert b.ctl("rollback")[0] == 0
        assert b.ctl("explain", "8.130.0.1", "1.1.1.1", "tcp", "443", "--sni", "telemetry.example.in")[0] == 0
        assert b.ctl("counters")[0] == 0 and b.ctl("history")[0] == 0
        assert b.http("GET", "/metrics")[0] == 200
        for name, change, status, code, reason in BAD_DOCS:
            got, r = b.http("POST", "/v1/validate", {"document": open(DEMO).read().replace(*change)})
            assert got == status, (name, r)
        assert b.http("POST", "/v1/validate", raw=b"{not json")[0] == 400
        # Prefix deltas: batches (retention under --keep 3 hides and folds
        # them), refused ones, a delta generation's table, rollback to one.
        for i in range(5):
            code, r = b.http("POST", "/v1/prefixes", {"changes": [{"region": "india", "add": [f"10.{i}.0.0/16"]}]})
            assert code == 200, r
        assert b.http("POST", "/v1/prefixes", {"changes": [
            {"region": "india", "add": ["10.9.0.0/16", "8.128.0.0/13"]}]})[0] == 422
        assert b.http("POST", "/v1/prefixes", raw=b'{"changes": [{"region": "india", "add": ["10.9.0.0/16"]}')[0] == 400
        assert b.http("GET", "/v1/table")[0] == 200
        assert b.http("POST", "/v1/rollback", {"generation": b.gen() - 1})[0] == 200
        # Captures: a whole one, a refused one, one its client cuts short.
        cap = [REGIONCTL, "-s", b.api, "capture", "-w"]
        assert subprocess.run(cap + [str(tmp_path / "vg.pcapng"), "--count", "50"], capture_output=True,
                              timeout=120).returncode == 0
        assert b.http("POST", "/v1/capture", {"filter": "udp port"})[0] == 422
        p = subprocess.Popen(cap + [str(tmp_path / "vg2.pcapng")], stdout=subprocess.DEVNULL)
        time.sleep(3)
        p.send_signal(signal.SIGINT)
        assert p.wait(60) == 0
    finally:
        b.rd.terminate()
        rc = b.rd.wait(120)
        b.stop()
    text = vlog.read_text()
    assert rc == 0, text[-3000:]
    assert "ERROR SUMMARY: 0 errors" in text, text[-3000:]
    assert "definitely lost: 0 bytes" in text or "All heap blocks were freed" in text, text[-3000:]


def test_regiond_numbers_are_strict_and_a_repeat_is_said(tmp_path):
    """regiond took --keep "" as 0 and " 20", +20 as 20, and an option given
    twice kept its last value without a word. Numbers are now digits alone,
    refused naming the option and the value; a repeat (a unit's own option
    given again in its ARGS) still takes the last value, and says so."""
    base = [REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket", str(tmp_path / "api.sock"),
            "--state-dir", str(tmp_path / "st")]
    for bad, words in ((["--keep", ""], '--keep takes 2..10000 (given "")'),
                       (["--keep", " 20"], '--keep takes 2..10000 (given " 20")'),
                       (["--keep", "+20"], '--keep takes 2..10000 (given "+20")'),
                       (["--dataplane-timeout", "5000ms"], "--dataplane-timeout takes"),
                       (["--feed-hold", ""], "--feed-hold takes"),
                       (["--content-compile-cpu", "0"], '--content-compile-cpu takes 1..3600 (seconds) (given "0")'),
                       (["--content-compile-cpu", "3601"], "--content-compile-cpu takes"),
                       # 2 * N * 256 map entries in 32 bits: 16777216 made a map of 0
                       (["--xdp-max-groups", "16777216"], '--xdp-max-groups takes 16..8388607'),
                       (["--xdp-max-groups", "8388608"], '--xdp-max-groups takes 16..8388607')):
        p = subprocess.run(base + bad, capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and words in p.stderr, (bad, p.stderr)
        assert not os.path.exists(tmp_path / "st")  # nothing touched
    with open(tmp_path / "rd.log", "w") as log:
        p = subprocess.Popen(base + ["--keep", "5", "--keep", "6"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "--keep given more than once: the last one is used" in open(tmp_path / "rd.log").read(),
                 what="the repeat said")
        assert p.poll() is None  # and regiond runs
    finally:
        p.terminate()
        p.wait(30)


def test_a_refused_seed_table_is_named_by_its_file_and_line(tmp_path):
    """A bad --table for an empty state directory was named "document:4",
    the API's field, not the file whose line 4 it is."""
    bad = tmp_path / "seed.yaml"
    bad.write_text("version: 1\nregions:\n  india:\n    prefixes: [10.0.0.0/8, 300.1.1.1/8]\n")
    p = subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket", str(tmp_path / "api.sock"),
                        "--state-dir", str(tmp_path / "st"), "--table", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, p
    assert f"--table refused: {bad}:4: regions.india.prefixes[1]:" in p.stderr, p.stderr
    assert "document" not in p.stderr, p.stderr
    # A seed is a table someone wrote: a residency section left with no
    # value and a YAML tag, which validate and apply refuse, were seeded
    # without a word (a probe).
    for name, text, said in (("null.yaml", "version: 1\nregions: {india: {prefixes: [10.0.0.0/8]}}\nresidency:\n",
                              ":3: residency: has no value"),
                             ("tag.yaml", "version: 1\nregions: {india: {prefixes: [10.0.0.0/8]}}\n"
                              "description: !!binary aGk=\n", ":3: YAML tag '!!binary' is not read")):
        seed = tmp_path / name
        seed.write_text(text)
        p = subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket",
                            str(tmp_path / "api.sock"), "--state-dir", str(tmp_path / ("st-" + name)), "--table",
                            str(seed)], capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and f"--table refused: {seed}{said}" in p.stderr, p.stderr


def test_a_wrong_socket_says_what_it_is(box, tmp_path):
    """A walkthrough's finds: -s naming a directory said "Connection
    refused", and naming regionfwd's control socket "no HTTP response",
    each without a word on what was wrong with it. (A socket of mode 0660
    that regionctl may not open now names its mode too; the suite runs as
    root, and a checkout in /root is no other user's to run.)"""
    p = subprocess.run([REGIONCTL, "-s", str(tmp_path), "history"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 3 and f"({tmp_path} is not a socket: -s names regiond's API socket" in p.stderr, p
    p = subprocess.run([REGIONCTL, "-s", box.fwd_sock, "history"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 3 and "is it regiond's API socket? regionfwd's control socket" in p.stderr, p


def test_long_names_keep_the_columns(box, tmp_path):
    """A 31-character link, region or service name pushed its row's other
    columns right in show links, show policies and status (a probe)."""
    long_link, long_region = "l" * 31, "r" * 31
    doc = demo_variant(tmp_path, "long.yaml", "  to-br:\n", f"  {long_link}:\n    port: br0\n"
                       "    next_hop_mac: \"02:00:00:00:04:09\"\n    tags: [br]\n  to-br:\n")
    text = open(doc).read().replace("  brazil:\n", f"  {long_region}:\n    prefixes: [203.0.113.0/25]\n  brazil:\n", 1)
    text = text.replace("  - {region: brazil, service: any, action: steer, to: to-br}",
                        f"  - {{region: brazil, service: any, action: steer, to: to-br}}\n"
                        f"  - {{region: {long_region}, service: any, action: steer, to: {long_link}}}")
    open(doc, "w").write(text)
    try:
        rc, out, err = box.ctl("apply", doc)
        assert rc == 0, (out, err)
        for args, header, col in ((("show", "links"), "LINK", "PORT"), (("show", "policies"), "REGION", "SERVICE"),
                                  (("show", "regions"), "REGION", "FIRST PREFIXES")):
            rc, out, err = box.ctl(*args)
            lines = [line for line in out.splitlines() if line.strip()]
            at = lines[0].index(col)
            assert rc == 0 and lines[0].startswith(header), out
            for line in lines[1:]:
                if line.startswith(("group ", "(default)")):
                    continue
                # each row's second column starts where its header does
                assert line[at - 1] == " " and line[at] != " ", (args, line, out)
        rc, out, err = box.ctl("status")
        rows = out.split("\nLINK")[1].split("\n\n")[0].splitlines()
        at = ("LINK" + rows[0]).index("PORT")
        assert all(r[at - 1] == " " and r[at] != " " for r in rows[1:]), out
    finally:
        assert box.ctl("apply", DEMO)[0] == 0


def test_a_whole_table_says_the_link_states_it_changes(box, tmp_path):
    """A link's admin state is a field of the table: an apply or a rollback
    brought a link an operator took down for maintenance back up, and the
    answer said nothing (only diff showed it: a probe). A whole-table write
    now says each link whose state it changes, as validate does, and
    regiond logs it; a link command, which changes it on purpose, does not
    repeat it."""
    rc, out, err = box.ctl("link", "down", "to-sg", "--comment", "maintenance")
    assert rc == 0 and "this table sets" not in out, (out, err)
    # A link down that policies steer to directly: their traffic drops,
    # said as a group left with nothing to carry is (it went unsaid).
    assert "warning: link 'to-sg' is down: what is steered or mirrored to it directly (1 policy or " \
        "content rule) is not sent (a steer drops as no_link_up, a mirror copy is not made)" in out, out
    down = box.gen()
    rc, v, err = box.ctl("validate", DEMO, json_out=True)
    assert rc == 0 and v["link_states_changed"] == [{"link": "to-sg", "from": "down", "to": "up"}], v
    rc, out, err = box.ctl("apply", DEMO)
    assert rc == 0 and "warning: this table sets link 'to-sg' up (it is down now): a link's state is " \
        "the table's" in out, (out, err)
    wait_for(lambda: f"generation {box.gen()} sets link 'to-sg' up (it was down): its state is the table's" in
             open(box.tmp / "regiond.log").read(), what="the log line")
    rc, r, err = box.ctl("rollback", str(down), json_out=True)
    assert rc == 0 and r["link_states_changed"] == [{"link": "to-sg", "from": "up", "to": "down"}], r
    rc, out, err = box.ctl("link", "up", "to-sg")
    assert rc == 0 and "this table sets" not in out and "is down" not in out, (out, err)
    # A drain of a link in no group moves nothing (a probe: it went without
    # a word, where a weight for it is refused).
    rc, j, err = box.ctl("link", "drain", "to-br", json_out=True)
    assert rc == 0 and j["links_drained_alone"] == [{"link": "to-br", "users": 1}], j
    rc, out, err = box.ctl("link", "drain", "local")
    assert rc == 0 and "warning: link 'local' is drained but a member of no link group: a drain only " \
        "moves a group's flows to its other members, so it still carries what is steered or mirrored to it " \
        "directly (6 policies or content rules); 'link down' stops that" in out, out
    rc, v, err = box.ctl("validate", DEMO, json_out=True)
    assert rc == 0 and "links_drained_alone" not in v, v
    rc, out, err = box.ctl("apply", DEMO)
    assert rc == 0 and "warning: this table sets link 'local' up (it is drained now)" in out, out
    # The same table again: nothing changes, nothing said.
    rc, out, err = box.ctl("apply", DEMO)
    assert rc == 0 and "warning" not in out, (out, err)


def test_a_change_that_drops_or_weakens_a_residency_rule_is_said(box, tmp_path):
    """A table is its own rules: one without its residency section passes
    every check, and a fleet's desired table that left it out ran with no
    word anywhere (a hostile probe). Such a change is said, not refused, as
    a handover is: validate and diff warn, the write's answer has
    residency_weakened, and regiond logs it."""
    rule = ("  - name: india-personal-data\n    region: india\n    services: [sync, account]\n"
            "    allowed_tags: [in]\n")
    weaker = demo_variant(tmp_path, "weaker.yaml", "services: [sync, account]\n    allowed_tags: [in]",
                          "services: [sync]\n    allowed_tags: [in, sg]")
    rc, out, err = box.ctl("validate", weaker)
    assert rc == 0 and "warning: residency rule 'india-personal-data' of region 'india' no longer " \
        "protects 'account'; allows links tagged 'sg' too" in out, (out, err)
    none = demo_variant(tmp_path, "none.yaml", "residency:\n" + rule, "")
    rc, out, err = box.ctl("diff", none)
    assert rc == 0 and "~ residency\n  warning: residency rule 'india-personal-data' of region 'india' " \
        "removed: 'sync', 'account' of region 'india' no longer held to its links" in out, (out, err)
    code, r = box.http("PUT", "/v1/table", {"document": open(none).read(), "expected_generation": box.gen()})
    assert code == 200 and r["changed"], r
    assert r["residency_weakened"] == [{"rule": "india-personal-data", "region": "india", "change":
                                        "removed: 'sync', 'account' of region 'india' no longer held to its "
                                        "links"}], r
    wait_for(lambda: "weakens residency rule 'india-personal-data' of region 'india': removed" in
             open(box.tmp / "regiond.log").read(), what="the log line")
    # Back: nothing weakened, nothing said.
    rc, out, err = box.ctl("apply", DEMO)
    assert rc == 0 and "residency rule" not in out, (out, err)
    # A rollback to the table without the rule is the same change: said,
    # not refused (a table is its own rules), and it can be seen before it
    # runs. The help once said such a rollback was refused (a walkthrough).
    without = box.gen() - 1
    rc, out, err = box.ctl("rollback", "--dry-run", str(without))
    assert rc == 0 and out.startswith(f"rollback to generation {without} would change (dry run, "
                                      "nothing changed):\n"), (out, err)
    assert "~ residency\n  warning: residency rule 'india-personal-data' of region 'india' removed" in out, out
    rc, j, err = box.ctl("rollback", "--dry-run", str(without), json_out=True)
    assert rc == 0 and j["valid"] is True and j["rollback_to"] == without, j
    assert [w["rule"] for w in j["residency_weakened"]] == ["india-personal-data"], j
    assert j["runs_already"] is False and box.gen() == without + 1  # nothing ran
    rc, out, err = box.ctl("rollback", "--dry-run", str(without + 1))
    assert rc == 0 and out == f"rollback to generation {without + 1}: no change, it is the one running " \
        "(dry run)\n", (out, err)
    code, r = box.http("POST", "/v1/rollback", {"dry_run": "yes"})
    assert code == 400 and r["error"]["path"] == "dry_run", r
    code, r = box.http("POST", "/v1/rollback", {"dry_run": True, "generation": 99999})
    assert code == 404 and box.gen() == without + 1, r
    rc, out, err = box.ctl("rollback", str(without))
    assert rc == 0 and "warning: residency rule 'india-personal-data' of region 'india' removed" in out, out
