"""Fleet rollouts (docs/fleet.md, "Rollouts and gates") with a real 3-member
etcd cluster (tests/lib/etcdlab.py) and three real regionfwd + regiond nodes
whose ingress is a veth fed with a steady flow of packets from every region.
regionctl fleet ... drives them, as an operator would.

- a rollout with one canary (by label) reaches all three, in waves;
- a table that makes the canary's drop rate jump (its policies drop the
  traffic of four regions) aborts after the canary: the canary returns to
  the previous table, the others never ran the bad one;
- a table the canary's regionfwd refuses (a port it lacks) aborts on the
  apply_error gate: nothing changed anywhere;
- a table that takes a link down aborts on the link_down gate, and with
  --no-link-gate the same table is not stopped by it;
- a member of the etcd cluster killed mid-rollout: the rollout completes;
- the regiond that leads the rollouts SIGKILLed mid-rollout: another takes
  the leader key and completes it (the dead one's node is skipped, then
  follows the new desired table when it comes back);
- two concurrent fleet apply: exactly one wins, the other gets 409
  rollout_in_progress and nothing of it is in etcd; then the operator aborts
  the winner;
- a table that breaks residency is refused before anything reaches etcd.

Short bakes and report intervals keep it near a minute; no timing is asserted.
Much of the same, with simulated nodes and a killed leader, is
test_rollout_driver.py's.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import etcdlab  # noqa: E402
import netns  # noqa: E402
from dprun import CAPTURE_POOL, NAP, POOL, eal_args, regionfwd_bin, start_regionfwd  # noqa: E402
from httpfake import api_request, unix_exchange  # noqa: E402
from test_e2e import DEMO, REGIOND, REGIONCTL, wait_for  # noqa: E402

from scapy.all import IP, UDP, Ether, Raw  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not etcdlab.available(), reason="needs etcd and etcdctl (etcd-server, etcd-client)"),
    pytest.mark.skipif(not netns.available(), reason="needs root and ip(8) for network namespaces"),
]

FAC = "fr-roll"
PORTS = ["local0", "sg0", "usw0", "usw1", "br0"]
TX_NS = "fleetroll-tx"
FLEET_ARGS = ["--fleet-lease", "3", "--fleet-report-ms", "300", "--fleet-timeout-ms", "700",
              "--fleet-unpin-after", "2"]
DEMO_TEXT = open(DEMO).read()


def variant(old, new):
    assert old in DEMO_TEXT
    return DEMO_TEXT.replace(old, new)


# A harmless change per rollout (its hash differs); and the bad one: the
# traffic of four regions dropped by policy (policy_drop jumps).
GOOD = [variant('"ingress table, Mumbai facility (demo)"', '"ingress table, rollout %d"' % i) for i in range(4)]
BAD = variant("  - {region: singapore, service: any, action: steer, to: to-sg}\n"
              "  - {region: oregon, service: any, action: steer, to: us-west}\n"
              "  - {region: california, service: any, action: steer, to: us-west}\n"
              "  - {region: brazil, service: any, action: steer, to: to-br}\n",
              "  - {region: singapore, service: any, action: drop}\n"
              "  - {region: oregon, service: any, action: drop}\n"
              "  - {region: california, service: any, action: drop}\n"
              "  - {region: brazil, service: any, action: drop}\n")
# The Brazil link taken down (admin state): the link_down gate.
LINK_DOWN = variant("""    next_hop_mac: "02:00:00:00:04:01"
    vlan: 410""", """    next_hop_mac: "02:00:00:00:04:01"
    state: down
    vlan: 410""")
# A link on a port the nodes' regionfwd lacks: valid for regiond, refused by
# regionfwd (dataplane_refused): the apply_error gate.
NO_PORT = variant("""link_groups:""", """  to-mars:
    port: mars0
    next_hop_mac: "02:00:00:00:05:01"
    tags: [br]

link_groups:""")
# India's personal data (sync) sent to Singapore: a residency violation.
RESIDENT = variant("  - {region: india, service: sync, action: steer, to: local}",
                   "  - {region: india, service: sync, action: steer, to: to-sg}")


def frames():
    srcs = ["103.21.9.9", "8.130.0.1", "35.161.0.1", "13.57.0.1", "18.229.0.1", "2.2.2.2"]
    return [bytes(Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
                  IP(src=srcs[i % len(srcs)], dst="198.51.100.1") /
                  UDP(sport=1000 + i, dport=(53, 443, 123)[i % 3]) / Raw(b"r" * 16)) for i in range(60)]


SENDER = r"""
import socket, sys, time, json
frames = [bytes.fromhex(x) for x in json.load(sys.stdin)]
socks = []
for name in sys.argv[1:]:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((name, 0))
    socks.append(s)
while True:
    for s in socks:
        for f in frames:
            try:
                s.send(f)
            except OSError:
                pass
    time.sleep(0.1)
"""


class Node:
    def __init__(self, tmp, i, endpoints, label):
        self.i, self.name, self.tmp = i, "n%d" % i, tmp
        self.fwd_sock = str(tmp / "fwd.sock")
        self.api = str(tmp / "api.sock")
        self.iface = "fr%do" % i
        node = tmp / "node.yaml"
        node.write_text("ports:\n"
                        f"  in0: {{device: 'net_af_packet{i},iface={self.iface}', ingress: true}}\n" +
                        "".join(f"  {p}: {{device: 'net_null_fr{i}{p}'}}\n" for p in PORTS) +
                        f"control_socket: {self.fwd_sock}\n" + NAP + POOL + CAPTURE_POOL)
        self.fwd = start_regionfwd([regionfwd_bin()] + eal_args(f"fleetroll{i}") +
                                   ["--", "--node", str(node), "--table", DEMO], str(tmp / "fwd.log"),
                                   lambda: os.path.exists(self.fwd_sock))
        wait_for(lambda: os.path.exists(self.fwd_sock), what="regionfwd %d up" % i)
        self.rd_argv = [REGIOND, "--dataplane", self.fwd_sock, "--api-socket", self.api,
                        "--state-dir", str(tmp / "state"), "--table", DEMO,
                        "--fleet-endpoints", endpoints, "--fleet-node", self.name, "--fleet-facility", FAC,
                        "--fleet-label", "role=" + label, *FLEET_ARGS]
        self.start_regiond()

    def start_regiond(self):
        if os.path.exists(self.api):
            os.unlink(self.api)
        self.rd = subprocess.Popen(self.rd_argv, stdout=open(self.tmp / "regiond.log", "a"),
                                   stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.api), what="regiond %d up" % self.i)

    def ctl(self, *args, json_out=False, timeout=120):
        p = subprocess.run([REGIONCTL, "-s", self.api] + (["-j"] if json_out else []) + list(map(str, args)),
                           capture_output=True, text=True, timeout=timeout)
        out = json.loads(p.stdout) if json_out and p.stdout.strip().startswith("{") else p.stdout
        return p.returncode, out, p.stderr

    def ctl_bg(self, *args):
        return subprocess.Popen([REGIONCTL, "-s", self.api] + list(map(str, args)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def get(self, path):
        """GET @path on the API socket: (status, body text)."""
        resp = unix_exchange(self.api, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head, _, body = resp.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode()

    def generations(self):
        """Every table hash this node's regiond has run, oldest first."""
        rc, h, err = self.ctl("history", json_out=True)
        assert rc == 0, err
        return [g.get("hash") for g in reversed(h["history"])]

    def log(self):
        return (self.tmp / "regiond.log").read_text()

    def stop(self):
        for p in (self.rd, self.fwd):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class Fleet:
    def __init__(self, tmp):
        self.tmp = tmp
        self.lab = netns.VethLab(TX_NS, [("fr%do" % i, "fr%di" % i) for i in range(3)])
        self.lab.__enter__()
        self.cluster = etcdlab.Cluster(tmp / "etcd", name="fleetroll")
        self.h0 = etcdlab.publish_table(self.cluster, FAC, DEMO_TEXT.encode())
        etcdlab.set_desired(self.cluster, FAC, self.h0)
        self.nodes = []
        self.sender = None
        for i in range(3):
            d = tmp / ("node%d" % i)
            d.mkdir()
            self.nodes.append(Node(d, i, self.cluster.endpoints(), "canary" if i == 1 else "rest"))
        self.wait_converged(self.h0)
        self.sender = self.lab.popen_in_ns(["python3", "-c", SENDER] + ["fr%di" % i for i in range(3)],
                                           stdin=subprocess.PIPE, text=True)
        self.sender.stdin.write(json.dumps([f.hex() for f in frames()]))
        self.sender.stdin.close()

    def key(self, rest):
        return etcdlab.fac_prefix(FAC) + rest

    def reports(self):
        return etcdlab.node_reports(self.cluster, FAC)

    def converged(self, h):
        r = self.reports()
        return all(n.name in r and r[n.name]["in_sync"] and r[n.name]["running"]["table"] == h
                   for n in self.nodes)

    def wait_converged(self, h, timeout=40):
        wait_for(lambda: self.converged(h), timeout=timeout, what="nodes run %s" % h)

    def history(self):
        return {json.loads(v)["id"]: json.loads(v)
                for v in self.cluster.get(self.key("rollout/history/"), prefix=True).values()}

    def close(self):
        if self.sender:
            self.sender.kill()
            self.sender.wait()
        for n in self.nodes:
            n.stop()
        self.cluster.close()
        self.lab.__exit__(None, None, None)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("fleetroll"))
    yield f
    f.close()


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_canary_then_waves(fleet, tmp_path):
    n = fleet.nodes
    doc = write(tmp_path, "good.yaml", GOOD[0])
    h = etcdlab.table_hash(GOOD[0].encode())
    rc, out, err = n[0].ctl("fleet", "apply", doc, "--canary-label", "role=canary", "--bake", 2,
                            "--wave", 1, "--sync-timeout", 30, "--max-drop-pps", 50, "--wait")
    assert rc == 0, (out, err, n[0].log()[-3000:])
    assert "completed" in out
    fleet.wait_converged(h)
    rec = [r for r in fleet.history().values() if r["table"] == h][0]
    assert rec["state"] == "completed" and rec["previous"] == fleet.h0
    # n1 (role=canary) alone first, then n0, then n2.
    assert {x["name"]: x["wave"] for x in rec["nodes"]} == {"n1": 0, "n0": 1, "n2": 2}
    assert fleet.cluster.get_json(fleet.key("desired"))["table"] == h
    assert fleet.cluster.get(fleet.key("pins/"), prefix=True) == {}
    # Every node ran it once, through its own apply path.
    for node in n:
        assert node.generations()[-1] == h, (node.name, [(g["id"], g["hash"], g["comment"]) for g in node.ctl("history", json_out=True)[1]["history"]], fleet.reports()[node.name]["running"])
    # -j: the API's model; the fleet view shows the three.
    rc, hist, _ = n[2].ctl("fleet", "history", json_out=True)
    assert rc == 0 and hist["rollouts"][0]["id"] == rec["id"]
    rc, nodes, _ = n[2].ctl("fleet", "status", json_out=True)
    assert rc == 0 and sorted(x["node"] for x in nodes["nodes"]) == ["n0", "n1", "n2"]
    rc, _, err = n[2].ctl("fleet", "rollout")
    assert rc == 1 and "no_rollout" in err
    # One leader in the fleet, seen in /metrics and GET /v1/fleet.
    leaders = [node.name for node in n
               if 'regiond_fleet_rollout_leader{facility="fr-roll"} 1' in node.get("/metrics")[1]]
    assert len(leaders) == 1, leaders
    views = [json.loads(node.get("/v1/fleet")[1])["rollouts"] for node in n]
    assert [v["leader"] for v in views].count(True) == 1
    assert all(v["leader_node"] == leaders[0] for v in views), views
    text = n[0].get("/metrics")[1]
    assert 'regiond_fleet_rollout_commits_total{facility="fr-roll"}' in text
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert "regiond_fleet_rollout" not in p.stdout + p.stderr, p.stdout + p.stderr


def test_drop_gate_aborts_after_canary(fleet, tmp_path):
    n = fleet.nodes
    prev = fleet.cluster.get_json(fleet.key("desired"))["table"]
    fleet.wait_converged(prev)
    bad = etcdlab.table_hash(BAD.encode())
    doc = write(tmp_path, "bad.yaml", BAD)
    before = [node.generations() for node in n]
    # The canary by count is n0 (the first by name).
    rc, out, err = n[2].ctl("fleet", "apply", doc, "--canary", 1, "--bake", 8, "--wave", 2,
                            "--sync-timeout", 30, "--max-drop-pps", 50, "--wait")
    assert rc == 1, (out, err)
    assert "rollout_aborted" in err
    rec = [r for r in fleet.history().values() if r["table"] == bad][0]
    assert rec["state"] == "aborted", rec
    assert rec["abort"]["gate"] == "drop_rate" and rec["abort"]["node"] == "n0", rec["abort"]
    assert "policy_drop" in rec["abort"]["reason"]
    assert {x["name"]: x["status"] for x in rec["nodes"]} == {"n0": "reverted", "n1": "waiting", "n2": "waiting"}
    # The canary ran the bad table, then the previous one again.
    fleet.wait_converged(prev)
    g0 = n[0].generations()
    assert bad in g0[len(before[0]):] and g0[-1] == prev
    # The others never moved.
    assert n[1].generations() == before[1] and n[2].generations() == before[2]
    assert fleet.cluster.get_json(fleet.key("desired"))["table"] == prev
    assert fleet.cluster.get(fleet.key("pins/"), prefix=True) == {}


def test_apply_error_gate(fleet, tmp_path):
    n = fleet.nodes
    prev = fleet.cluster.get_json(fleet.key("desired"))["table"]
    fleet.wait_converged(prev)
    bad = etcdlab.table_hash(NO_PORT.encode())
    before = [node.generations() for node in n]
    rc, out, err = n[2].ctl("fleet", "apply", write(tmp_path, "noport.yaml", NO_PORT), "--canary", 1,
                            "--bake", 2, "--sync-timeout", 30, "--wait")
    assert rc == 1 and "rollout_aborted" in err, (out, err)
    rec = [r for r in fleet.history().values() if r["table"] == bad][0]
    assert rec["abort"]["gate"] == "apply_error" and rec["abort"]["node"] == "n0", rec["abort"]
    assert "dataplane_refused" in rec["abort"]["reason"], rec["abort"]
    fleet.wait_converged(prev)
    # Refused: no node ran it, not even the canary.
    assert [node.generations() for node in n] == before


def test_link_down_gate(fleet, tmp_path):
    n = fleet.nodes
    prev = fleet.cluster.get_json(fleet.key("desired"))["table"]
    fleet.wait_converged(prev)
    bad = etcdlab.table_hash(LINK_DOWN.encode())
    doc = write(tmp_path, "linkdown.yaml", LINK_DOWN)
    rc, out, err = n[1].ctl("fleet", "apply", doc, "--canary", 1, "--bake", 3, "--wave", 2,
                            "--sync-timeout", 30, "--max-drop-pps", 1000000, "--wait")
    assert rc == 1 and "rollout_aborted" in err, (out, err)
    rec = [r for r in fleet.history().values() if r["table"] == bad][0]
    assert rec["abort"]["gate"] == "link_down" and "to-br" in rec["abort"]["reason"], rec["abort"]
    fleet.wait_converged(prev)
    assert fleet.cluster.get_json(fleet.key("desired"))["table"] == prev
    # The gate off: the same table goes through (and the next test starts from it).
    rc, out, err = n[1].ctl("fleet", "apply", doc, "--canary", 1, "--bake", 1, "--wave", 2,
                            "--sync-timeout", 30, "--max-drop-pps", 1000000, "--no-link-gate", "--wait")
    assert rc == 0, (out, err)
    fleet.wait_converged(bad)


def test_member_killed_mid_rollout(fleet, tmp_path):
    n = fleet.nodes
    doc = write(tmp_path, "good1.yaml", GOOD[1])
    h = etcdlab.table_hash(GOOD[1].encode())
    p = n[0].ctl_bg("fleet", "apply", doc, "--canary", 1, "--bake", 3, "--wave", 2,
                    "--sync-timeout", 30, "--max-drop-pps", 50, "--wait")
    try:
        wait_for(lambda: fleet.reports()["n0"]["running"]["table"] == h, timeout=30, what="canary on the table")
        fleet.cluster.kill(0)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
        fleet.cluster.start(0)
    assert p.returncode == 0, (out, err)
    fleet.wait_converged(h)
    rec = [r for r in fleet.history().values() if r["table"] == h][0]
    assert rec["state"] == "completed"


def test_leader_regiond_killed_mid_rollout(fleet, tmp_path):
    n = fleet.nodes
    doc = write(tmp_path, "good-lead.yaml", GOOD[0] + "# leader test\n")
    h = etcdlab.table_hash((GOOD[0] + "# leader test\n").encode())
    leader = fleet.cluster.get_json(fleet.key("rollout/leader"))["node"]
    dead = [x for x in n if x.name == leader][0]
    asker = [x for x in n if x is not dead][0]
    # The canary is not the leader's node: n1 by label, or n0 when n1 leads.
    canary = ["--canary", 1] if leader == "n1" else ["--canary-label", "role=canary"]
    canary_node = "n0" if leader == "n1" else "n1"
    p = asker.ctl_bg("fleet", "apply", doc, *canary, "--bake", 4, "--wave", 1,
                     "--sync-timeout", 30, "--max-drop-pps", 50, "--wait")
    try:
        wait_for(lambda: (fleet.cluster.get_json(fleet.key("rollout/active")) or {}).get("state") == "baking",
                 timeout=30, what="the canary bakes")
        dead.rd.kill()
        dead.rd.wait()
        wait_for(lambda: (fleet.cluster.get_json(fleet.key("rollout/leader")) or {}).get("node") not in (None, leader),
                 timeout=20, what="another regiond leads")
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
        if dead.rd.poll() is not None:
            dead.start_regiond()
    assert p.returncode == 0, (out, err)
    rec = [r for r in fleet.history().values() if r["table"] == h][0]
    st = {x["name"]: x["status"] for x in rec["nodes"]}
    assert rec["state"] == "completed" and st[canary_node] == "done", rec
    assert st[leader] in ("lost", "done"), st
    # Back, the dead one's node follows desired: the new table.
    fleet.wait_converged(h, timeout=60)


def test_concurrent_applies_then_abort(fleet, tmp_path):
    n = fleet.nodes
    a, b = GOOD[2], GOOD[3]
    ha, hb = etcdlab.table_hash(a.encode()), etcdlab.table_hash(b.encode())
    docs = [write(tmp_path, "a.yaml", a), write(tmp_path, "b.yaml", b)]
    procs = [n[i].ctl_bg("fleet", "apply", docs[i], "--canary", 1, "--bake", 60,
                         "--sync-timeout", 30) for i in (0, 1)]
    res = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in procs]
    wins = [i for i, r in enumerate(res) if r[0] == 0]
    losses = [i for i, r in enumerate(res) if r[0] != 0]
    assert len(wins) == 1 and len(losses) == 1, res
    assert res[losses[0]][0] == 1 and "rollout_in_progress" in res[losses[0]][2]
    won, lost = (ha, hb) if wins[0] == 0 else (hb, ha)
    active = fleet.cluster.get_json(fleet.key("rollout/active"))
    assert active["table"] == won
    assert fleet.cluster.get(fleet.key("tables/%s/" % lost), prefix=True) == {}
    rc, act, err = n[2].ctl("fleet", "rollout", json_out=True)
    assert rc == 0 and act["rollout"]["id"] == active["id"], err
    assert [g["name"] for g in act["gates"]] == ["apply_error", "sync_timeout", "out_of_sync",
                                                 "link_down", "health", "drop_rate"]
    # The operator aborts the winner while its canary bakes.
    wait_for(lambda: fleet.reports()["n0"]["running"]["table"] == won, timeout=30, what="canary on the table")
    rc, out, err = n[2].ctl("fleet", "abort")
    assert rc == 0 and "abort asked" in out, err
    wait_for(lambda: fleet.cluster.get(fleet.key("rollout/active")) is None, timeout=40, what="abort done")
    rec = fleet.history()[active["id"]]
    assert rec["state"] == "aborted" and rec["abort"]["gate"] == "operator"
    prev = fleet.cluster.get_json(fleet.key("desired"))["table"]
    fleet.wait_converged(prev)


def test_residency_violation_refused_before_etcd(fleet, tmp_path):
    n = fleet.nodes
    doc = write(tmp_path, "resident.yaml", RESIDENT)
    h = etcdlab.table_hash(RESIDENT.encode())
    rc, out, err = n[1].ctl("fleet", "apply", doc, "--canary", 1)
    assert rc == 1 and "residency_violation" in err, (out, err)
    assert fleet.cluster.get(fleet.key("tables/%s/" % h), prefix=True) == {}
    assert fleet.cluster.get(fleet.key("rollout/active")) is None
    # Options are checked by regiond, naming the field.
    rc, out, err = n[1].ctl("fleet", "apply", write(tmp_path, "g.yaml", GOOD[0]), "--wave", 0)
    assert rc == 1 and "options.wave" in err, err
    # Single-box regionds have no fleet: a clear refusal, exit 1.
    assert fleet.cluster.get(fleet.key("rollout/active")) is None


STRAY = variant('"ingress table, Mumbai facility (demo)"', '"ingress table, stray pin"')
UNREVERTED = variant('"ingress table, Mumbai facility (demo)"', '"ingress table, unreverted"')


def alarm_of(rep):
    return rep["health"]["alarm"] or ""


def metric(node, name):
    """The value of an unlabelled counter in @node's /metrics."""
    for line in node.get("/metrics")[1].splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("%s not in /metrics" % name)


def test_stray_pin_reported_and_unpinned(fleet, tmp_path):
    """A pin no active rollout owns (left behind, or written by hand) holds
    its node off desired: the node's report, health and /metrics say so,
    fleet status lists it, regionctl fleet unpin removes it; the leader
    removes one of a finished rollout by itself and leaves the others."""
    n = fleet.nodes
    prev = fleet.cluster.get_json(fleet.key("desired"))["table"]
    fleet.wait_converged(prev)
    h = etcdlab.publish_table(fleet.cluster, FAC, STRAY.encode())
    etcdlab.set_pin(fleet.cluster, FAC, "n2", h, rollout="r-1-dead")
    wait_for(lambda: (fleet.reports()["n2"].get("pin") or {}).get("stray") is True and
             "no active rollout owns" in alarm_of(fleet.reports()["n2"]),
             timeout=20, what="n2 reports its stray pin")
    rep = fleet.reports()["n2"]
    assert rep["running"]["table"] == h and rep["pin"]["rollout"] == "r-1-dead"
    assert rep["health"]["code"] == 1 and "regionctl fleet unpin n2" in alarm_of(rep)
    assert json.loads(n[2].get("/v1/status")[1])["health"]["state"] == "degraded"
    assert "regiond_fleet_pin_stray 1" in n[2].get("/metrics")[1]
    rc, out, _ = n[0].ctl("fleet", "status")
    assert rc == 0 and "STRAY" in out and "alarm on n2" in out, out
    rc, st, _ = n[0].ctl("fleet", "status", json_out=True)
    assert [(p["node"], p["owner"], p["stray"]) for p in st["pins"]] == [("n2", "unknown", True)]
    # A rollout the history does not know may be meant: the leader leaves it.
    time.sleep(5)
    assert fleet.cluster.get(fleet.key("pins/n2")) is not None
    rc, out, err = n[0].ctl("fleet", "unpin", "n2")
    assert rc == 0 and "deleted" in out, (out, err)
    fleet.wait_converged(prev)
    wait_for(lambda: alarm_of(fleet.reports()["n2"]) == "" and fleet.reports()["n2"]["pin"] is None,
             timeout=10, what="the alarm cleared")
    rc, _, err = n[0].ctl("fleet", "unpin", "n2")
    assert rc == 1 and "no_pin" in err, err
    rc, _, err = n[0].ctl("fleet", "unpin", "N2/../x")
    assert rc == 1 and "bad_request" in err, err
    # a node that is no string is a type error, as every field's (it read
    # "is required")
    code, r = api_request(n[0].api, "POST", "/v1/fleet/unpin", {"node": 5})
    assert code == 400 and r["error"]["path"] == "node" and "must be a string" in r["error"]["reason"], r
    # A pin by hand (rollout null) is an operator's, a box held on purpose:
    # reported (report, fleet status, /metrics), never deleted, and no alarm:
    # its health (which load balancers read) stays ok.
    etcdlab.set_pin(fleet.cluster, FAC, "n1", h, rollout=None)
    wait_for(lambda: fleet.reports()["n1"]["running"]["table"] == h and
             (fleet.reports()["n1"].get("pin") or {}).get("stray") is True, timeout=20,
             what="n1 reports its hand pin")
    rep = fleet.reports()["n1"]
    assert rep["pin"]["rollout"] is None and alarm_of(rep) == "" and rep["health"]["code"] == 0, rep
    assert json.loads(n[1].get("/v1/status")[1])["health"]["state"] == "healthy"
    assert n[1].get("/v1/health")[0] == 200
    assert "regiond_fleet_pin_by_hand 1" in n[1].get("/metrics")[1]
    rc, out, _ = n[0].ctl("fleet", "status")
    assert "(hand)" in out and "operator: STRAY" in out and "alarm on n1" not in out, out
    # One naming a finished rollout: the leader deletes it after its grace.
    hist = fleet.history()
    rid = next(iter(hist)) if hist else "r-1-0000"
    if not hist:
        fleet.cluster.put(fleet.key("rollout/history/" + rid),
                          {"id": rid, "state": "aborted", "table": "0" * 16})
    etcdlab.set_pin(fleet.cluster, FAC, "n2", h, rollout=rid)
    wait_for(lambda: fleet.reports()["n2"]["running"]["table"] == h, timeout=20, what="n2 pinned")
    wait_for(lambda: fleet.cluster.get(fleet.key("pins/n2")) is None, timeout=20,
             what="the leader deletes the finished rollout's pin")
    assert fleet.cluster.get(fleet.key("pins/n1")) is not None
    rc, out, err = n[0].ctl("fleet", "unpin", "n1")
    assert rc == 0, err
    fleet.wait_converged(prev)
    assert any("deleted the pin of node n2" in node.log() for node in n)
    # Values under pins/ past the 8 MiB reply bound together: fleet status
    # still lists the nodes, each such pin unreadable with its reason.
    big = ["zz%d" % i for i in range(6)]
    for k in big:
        fleet.cluster.put(fleet.key("pins/" + k), "x" * 1400000, timeout=30)
    try:
        # Each read of 8.4 MB may outlast the etcd client's bound on a loaded
        # machine: that answer keeps the nodes and says pins_error (as a
        # fault should), and the next look reads the pins.
        def status():
            rc, st, err = n[0].ctl("fleet", "status", json_out=True)
            assert rc == 0 and len(st["nodes"]) == 3, (st, err)
            return st if "pins_error" not in st else None
        st = wait_for(status, timeout=90, what="fleet status with the pins read")
        assert st["pins_truncated"] is False, st
        assert sorted(p["node"] for p in st["pins"] if p["owner"] == "unreadable" and
                      "value" in p["error"]) == big, st["pins"]
    finally:
        fleet.cluster.delete(fleet.key("pins/"), prefix=True)


def test_unreverted_node_is_visible_until_it_converges(fleet, tmp_path):
    """A node that could not take the previous table back when its rollout
    aborted is recorded unreverted and its pin deleted: it keeps running the
    table that was rolled back while desired says previous. Its report,
    health and /metrics say so, and it converges once it can."""
    n = fleet.nodes
    prev = fleet.cluster.get_json(fleet.key("desired"))["table"]
    fleet.wait_converged(prev)
    h = etcdlab.table_hash(UNREVERTED.encode())
    p = n[1].ctl_bg("fleet", "apply", write(tmp_path, "u.yaml", UNREVERTED), "--canary", 1,
                    "--bake", 120, "--sync-timeout", 3)
    assert p.wait(60) == 0, p.stderr.read()
    wait_for(lambda: fleet.reports()["n0"]["running"]["table"] == h, timeout=40, what="canary on the table")
    rid = fleet.cluster.get_json(fleet.key("rollout/active"))["id"]
    # The previous table's copy in etcd damaged: n0 cannot fetch it back.
    ck = fleet.key("tables/%s/chunk/000000" % prev)
    saved = fleet.cluster.get(ck)
    fleet.cluster.put(ck, saved.replace(b"Mumbai", b"Mumbaj", 1))
    since = fleet.cluster.revision() + 1
    refusals = metric(n[0], "regiond_fleet_refusals_total")
    try:
        rc, out, err = n[2].ctl("fleet", "abort")
        assert rc == 0, err
        wait_for(lambda: fleet.cluster.get(fleet.key("rollout/active")) is None, timeout=40, what="abort done")
        rec = fleet.history()[rid]
        assert {x["name"]: x["status"] for x in rec["nodes"]}["n0"] == "unreverted", rec["nodes"]
        assert fleet.cluster.get(fleet.key("pins/"), prefix=True) == {}
        # The pin (to previous, refused alike) raised the alarm first; the
        # report says desired once the node has seen the pin go.
        wait_for(lambda: (lambda r: "not its target" in alarm_of(r) and r["target"]["source"] == "desired"
                          and r["state"] == "failed")(fleet.reports()["n0"]), timeout=30,
                 what="n0's alarm, off desired")
        # Every report n0 wrote on its way (the watch sees each one, also
        # those a poll would miss) says one thing: refused means failed, the
        # alarm and health 1. The pin's refusal is not the desired key's:
        # once the pin is gone n0 is applying until it has tried desired.
        # Its second refusal (the pin's, then desired's) is the end.
        wait_for(lambda: metric(n[0], "regiond_fleet_refusals_total") >= refusals + 2, timeout=30,
                 what="n0 refused desired too")
        seen = fleet.cluster.watch(fleet.key("nodes/n0"), since, until=lambda v: False, timeout=30,
                                   until_rev=fleet.cluster.revision())
        for rev, v in seen:
            r = json.loads(v) if v is not None else None
            if r is None or r["running"]["table"] != h or r["target"]["table"] != prev:
                continue
            failed, alarm = r["state"] == "failed", "not its target" in alarm_of(r)
            assert failed == alarm and (not alarm or r["health"]["code"] == 1), \
                (rev, r["state"], r["target"], r["health"], r["apply_error"])
        rep = fleet.reports()["n0"]
        assert rep["running"]["table"] == h and rep["target"]["table"] == prev
        assert rep["target"]["source"] == "desired" and rep["in_sync"] is False
        assert rep["state"] == "failed" and rep["apply_error"]["reason"] == "hash_mismatch"
        assert rep["health"]["code"] == 1 and rep["pin"] is None
        assert "regiond_fleet_off_target 1" in n[0].get("/metrics")[1]
        rc, out, _ = n[1].ctl("fleet", "status")
        assert "alarm on n0: fleet: runs table %s, not its target %s" % (h, prev) in out, out
    finally:
        fleet.cluster.put(ck, saved)
    # Mended, and desired written again: the node converges, the alarm goes.
    etcdlab.set_desired(fleet.cluster, FAC, prev)
    fleet.wait_converged(prev)
    wait_for(lambda: alarm_of(fleet.reports()["n0"]) == "", timeout=10, what="n0's alarm cleared")
    assert "regiond_fleet_off_target 0" in n[0].get("/metrics")[1]


def test_a_fleet_table_without_desired_is_never_silent(fleet, tmp_path):
    """A node whose table came from the fleet while the facility names no
    table (etcd lost desired; a first rollout aborted with nothing to pin
    back to) ran it with health 0, state in_sync, no alarm: a hostile probe
    saw a rolled-back table go on dropping four regions' traffic unseen.
    Each such node now says so (alarm, health 1, off_target 1) until a
    table is applied through the fleet again."""
    n = fleet.nodes
    prev = fleet.cluster.get_json(fleet.key("desired"))["table"]
    fleet.wait_converged(prev)
    bad = etcdlab.table_hash(BAD.encode())
    lost = "but the facility has no desired table"
    try:
        fleet.cluster.delete(fleet.key("desired"))
        for node in n:
            wait_for(lambda: lost in alarm_of(fleet.reports()[node.name]), timeout=30,
                     what="%s's alarm for a lost desired" % node.name)
            rep = fleet.reports()[node.name]
            assert rep["health"]["code"] == 1 and rep["target"] is None, rep
            assert rep["running"]["table"] == prev and prev in alarm_of(rep)
            assert "regiond_fleet_off_target 1" in node.get("/metrics")[1]
        # A rollout with nothing to go back to, aborted by its drop gate:
        # the canary keeps the bad table, and says so.
        rc, out, err = n[2].ctl("fleet", "apply", write(tmp_path, "bad.yaml", BAD), "--canary", 1,
                                "--bake", 8, "--wave", 2, "--sync-timeout", 30, "--max-drop-pps", 50,
                                "--wait")
        assert rc == 1 and "rollout_aborted" in err, (out, err)
        rec = [r for r in fleet.history().values() if r["table"] == bad][-1]
        assert rec["previous"] is None and rec["abort"]["node"] == "n0", rec
        assert {x["name"]: x["status"] for x in rec["nodes"]}["n0"] == "unreverted", rec["nodes"]
        wait_for(lambda: (lambda r: r["pin"] is None and r["running"]["table"] == bad
                          and lost in alarm_of(r) and bad in alarm_of(r))(fleet.reports()["n0"]),
                 timeout=30, what="n0's alarm on the bad table")
        assert fleet.reports()["n0"]["health"]["code"] == 1
        rc, out, _ = n[1].ctl("fleet", "status")
        assert "alarm on n0: fleet: runs table %s from the fleet" % bad in out, out
    finally:
        # The fleet's table again: every node converges, the alarms go.
        if fleet.cluster.get(fleet.key("desired")) is None:
            etcdlab.set_desired(fleet.cluster, FAC, prev)
    fleet.wait_converged(prev)
    for node in n:
        wait_for(lambda: alarm_of(fleet.reports()[node.name]) == "", timeout=20,
                 what="%s's alarm cleared" % node.name)
        assert "regiond_fleet_off_target 0" in node.get("/metrics")[1]


def test_an_unreadable_active_record_is_aborted_away(fleet, tmp_path):
    """Half an active record (a torn write, a hand's edit) locked the
    operator out: the leader paused on it, and `fleet abort`, `fleet unpin`
    and `fleet apply` were all refused on it; only etcdctl got out (a
    hostile probe). An abort now deletes it, with the pins rollouts wrote,
    while it is the record it read; an operator's pin by hand stays; the
    pinned nodes follow desired again, and the next rollout may start."""
    n = fleet.nodes
    prev = fleet.cluster.get_json(fleet.key("desired"))["table"]
    fleet.wait_converged(prev)
    h = etcdlab.publish_table(fleet.cluster, FAC, STRAY.encode())
    etcdlab.set_pin(fleet.cluster, FAC, "n2", h, rollout="r-9-half")
    etcdlab.set_pin(fleet.cluster, FAC, "n1", h, rollout=None)
    fleet.cluster.put(fleet.key("rollout/active"), b'{"schema": 1, "id": "r-9-half", "facility": "' +
                      FAC.encode() + b'", "sync')
    wait_for(lambda: fleet.reports()["n2"]["running"]["table"] == h, timeout=20, what="n2 pinned")
    rc, _, err = n[0].ctl("fleet", "apply", write(tmp_path, "g.yaml", GOOD[0]), "--canary", 1)
    assert rc == 1 and "rollout_in_progress" in err, err  # as before: one at a time
    rc, out, err = n[0].ctl("fleet", "abort")
    assert rc == 0 and "rollout/active could not be read (" in out and "deleted, with every pin" in out, \
        (out, err)
    assert fleet.cluster.get(fleet.key("rollout/active")) is None
    assert fleet.cluster.get(fleet.key("pins/n2")) is None
    assert fleet.cluster.get(fleet.key("pins/n1")) is not None  # the operator's own
    fleet.cluster.delete(fleet.key("pins/n1"))
    fleet.wait_converged(prev)
    rc, _, err = n[0].ctl("fleet", "abort")
    assert rc == 1 and "no_rollout" in err, err
