"""The fleet node (issue 20, docs/fleet.md): three real regionfwd + regiond
nodes on virtual devices follow their facility's desired table in a real
3-member etcd cluster (tests/lib/etcdlab.py).

- the nodes converge on a desired table, and report it under their lease;
- a desired key with an invalid document, another facility or a future
  schema is refused by every node, reported, and changes nothing;
- a member killed (quorum kept) changes nothing, a later change arrives;
- the whole cluster stopped: forwarding goes on, the local API answers;
  restarted: the nodes converge, a change made at once is not missed;
- a node whose regiond sits in a network namespace reaching etcd over a
  veth is partitioned (link down): it goes on forwarding, its report
  vanishes with its lease, it comes back stale and converges;
- an etcd endpoint answering garbage or hanging neither crashes regiond
  nor blocks its API;
- the same packets through the three nodes on one generation come out the
  same, byte for byte, on every link;
- TLS with client certificates and a role per facility: facility a's
  identity cannot write facility b's keys.

Short leases and report intervals keep it to about a minute; no timing is
asserted.
"""
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import etcdlab  # noqa: E402
from memcap import capped  # noqa: E402
import netns  # noqa: E402
from dprun import CAPTURE_POOL, NAP, POOL, eal_args, regionfwd_bin, start_regionfwd  # noqa: E402
from httpfake import api_request  # noqa: E402
from test_e2e import DEMO, REGIOND, REGIONCTL, wait_for  # noqa: E402
from test_etcd_client import Fake  # noqa: E402

from scapy.all import IP, UDP, Ether, Raw, rdpcap  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not etcdlab.available(), reason="needs etcd and etcdctl (etcd-server, etcd-client)"),
    pytest.mark.skipif(not netns.available(), reason="needs root and ip(8) for network namespaces"),
]

FAC = "fra"
PORTS = ["local0", "sg0", "usw0", "usw1", "br0"]
TX_NS = "fleetnode-tx"  # where the test packets are sent from
PART_NS = "fleetnode-part"  # where node 2's regiond runs
PART_OUTER, PART_INNER = "fleetnodepo", "fleetnodepi"
PART_HOST, PART_NODE_ADDR = "10.201.0.1", "10.201.0.2"
# --fleet-stuck-after 30: past every window a test watches a slow apply for
# without the alarm (18 s at most), short enough to see it come.
STUCK_S = 30
FLEET_ARGS = ["--fleet-lease", "3", "--fleet-report-ms", "300", "--fleet-timeout-ms", "700",
              "--fleet-stuck-after", str(STUCK_S)]
# How long a node's regionfwd and regiond may take to come up: an ASan build
# of regionfwd beside three other meson tests once took over 30 s.
START_S = 30 if os.environ.get("SANITIZE", "none") in ("", "none") else 120


def sources():
    """Packets from every region (and none) to a service each: the same
    list to every node."""
    srcs = ["103.21.9.9", "8.130.0.1", "35.161.0.1", "35.162.7.7", "18.229.0.1", "2.2.2.2"]
    return [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
            IP(src=srcs[i % len(srcs)], dst="198.51.100.1") /
            UDP(sport=1000 + i, dport=(53, 443, 7001)[i % 3]) / Raw(b"f" * 16) for i in range(120)]


class Node:
    """regionfwd (ingress on a veth, every link into a pcap) and regiond in
    fleet mode; regiond optionally inside network namespace @ns."""

    def __init__(self, tmp, i, endpoints, ns=None, label="canary"):
        self.i = i
        self.name = "n%d" % i
        self.tmp = tmp
        self.ns = ns
        self.fwd_sock = str(tmp / "fwd.sock")
        self.api = str(tmp / "api.sock")
        self.out = tmp / "out"
        self.out.mkdir()
        self.iface = "fleetnode%do" % i
        node = tmp / "node.yaml"
        node.write_text("ports:\n"
                        f"  in0: {{device: 'net_af_packet{i},iface={self.iface}', ingress: true}}\n" +
                        "".join(f"  {p}: {{device: 'net_pcap_fn{i}{p},tx_pcap={self.out}/{p}.pcap'}}\n"
                                for p in PORTS) +
                        f"control_socket: {self.fwd_sock}\n" + NAP + POOL + CAPTURE_POOL)
        self.rd = None
        self.fwd = start_regionfwd([regionfwd_bin()] + eal_args(f"fleetnode{i}") +
                                   ["--", "--node", str(node), "--table", DEMO], str(tmp / "fwd.log"),
                                   lambda: os.path.exists(self.fwd_sock), timeout=START_S)
        try:
            self.started(lambda: os.path.exists(self.fwd_sock), "regionfwd", "fwd.log")
            argv = ([] if ns is None else netns.in_ns(ns)) + [
                REGIOND, "--dataplane", self.fwd_sock, "--api-socket", self.api,
                "--state-dir", str(tmp / "state"), "--table", DEMO,
                "--fleet-endpoints", endpoints, "--fleet-node", self.name, "--fleet-facility", FAC,
                "--fleet-label", "role=" + label, *FLEET_ARGS]
            self.rd = subprocess.Popen(argv, stdout=open(tmp / "regiond.log", "a"), stderr=subprocess.STDOUT)
            self.started(lambda: self.http("GET", "/v1/fleet")[0] == 200, "regiond", "regiond.log")
        except BaseException:
            self.stop()  # a node that did not come up leaves nothing running
            raise

    def started(self, up, what, log):
        """Wait for @up; else fail with the process's log. An ASan build of
        regionfwd beside three other meson tests once took over 30 s."""
        try:
            wait_for(up, timeout=START_S, what=f"{what} {self.i} up")
        except AssertionError as e:
            tail = open(self.tmp / log, errors="replace").read()[-3000:]
            raise AssertionError(f"{e}; its log:\n{tail}") from None

    def http(self, method, path, timeout=10):
        return api_request(self.api, method, path, timeout=timeout)

    def fleet(self):
        return self.http("GET", "/v1/fleet")[1]

    def status(self):
        return self.http("GET", "/v1/status")[1]

    def log(self):
        return (self.tmp / "regiond.log").read_text()

    def outputs(self):
        """{port: [frame bytes]} of what regionfwd wrote so far."""
        out = {}
        for p in PORTS:
            f = self.out / f"{p}.pcap"
            try:
                out[p] = [bytes(x) for x in rdpcap(str(f))] if f.stat().st_size > 24 else []
            except (OSError, EOFError):
                out[p] = []
        return out

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
        self.lab = netns.VethLab(TX_NS, [("fleetnode%do" % i, "fleetnode%di" % i) for i in range(3)])
        self.lab.__enter__()
        self.part = netns.VethLab(PART_NS, [(PART_OUTER, PART_INNER)])
        self.part.__enter__()
        netns.sh(f"ip addr add {PART_HOST}/30 dev {PART_OUTER}")
        self.part.run_in_ns(f"ip addr add {PART_NODE_ADDR}/30 dev {PART_INNER}")
        self.part.run_in_ns("ip link set lo up")
        self.cluster = etcdlab.Cluster(tmp / "etcd", name="fleetnode", listen_hosts=[PART_HOST])
        self.tables = {}
        self.h0 = self.publish("demo", open(DEMO, "rb").read())
        etcdlab.set_desired(self.cluster, FAC, self.h0)
        self.current = self.h0
        self.nodes = []
        try:
            for i in range(3):
                d = tmp / ("node%d" % i)
                d.mkdir()
                if i == 2:
                    ep = self.cluster.endpoints(host=PART_HOST)
                    self.nodes.append(Node(d, i, ep, ns=PART_NS, label="rest"))
                else:
                    self.nodes.append(Node(d, i, self.cluster.endpoints(), label="canary" if i == 0 else "rest"))
        except BaseException:
            # The fixture never gets this Fleet to close: the nodes that
            # came up (busy-polling regionfwds) once ran on through the
            # rest of the suite, slowing every other test.
            self.close()
            raise

    def publish(self, name, doc, chunk=etcdlab.CHUNK):
        h = etcdlab.publish_table(self.cluster, FAC, doc, chunk=chunk)
        self.tables[name] = h
        return h

    def variant(self, name, old, new, chunk=etcdlab.CHUNK):
        text = open(DEMO).read()
        assert old in text
        return self.publish(name, text.replace(old, new).encode(), chunk=chunk)

    def reports(self):
        return etcdlab.node_reports(self.cluster, FAC)

    def converged(self, h, nodes=None):
        """Every node reports running @h in sync."""
        want = [n.name for n in (nodes or self.nodes)]
        r = self.reports()
        return all(n in r and r[n]["in_sync"] and r[n]["running"]["table"] == h and
                   (r[n]["target"] or {}).get("table") == h for n in want)

    def wait_converged(self, h, timeout=45, nodes=None):
        wait_for(lambda: self.converged(h, nodes), timeout=timeout, what="nodes run %s" % h)

    def close(self):
        for n in self.nodes:
            n.stop()
        self.cluster.close()
        self.part.__exit__(None, None, None)
        self.lab.__exit__(None, None, None)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    try:
        yield f
    finally:
        f.close()


@pytest.mark.parametrize("args,said", [
    (["--fleet-node", "a"], "need --fleet-endpoints"),
    (["--fleet-endpoints", "ftp://x:1", "--fleet-node", "a", "--fleet-facility", "f"], "--fleet-endpoints"),
    (["--fleet-endpoints", "http://127.0.0.1:1", "--fleet-node", "A", "--fleet-facility", "f"], "--fleet-node"),
    (["--fleet-endpoints", "http://127.0.0.1:1", "--fleet-node", "a", "--fleet-facility", "f" * 33],
     "--fleet-facility"),
    (["--fleet-endpoints", "http://127.0.0.1:1", "--fleet-node", "a", "--fleet-facility", "f",
      "--fleet-label", "no-equals"], "--fleet-label"),
    # labels a rollout could not read (it used to plan around such a node)
    (["--fleet-endpoints", "http://127.0.0.1:1", "--fleet-node", "a", "--fleet-facility", "f",
      "--fleet-label", "desc=rack 5"], "--fleet-label 'desc=rack 5' is not KEY=VALUE"),
    (["--fleet-endpoints", "http://127.0.0.1:1", "--fleet-node", "a", "--fleet-facility", "f",
      "--fleet-label", "Role=canary"], "--fleet-label 'Role=canary' is not KEY=VALUE"),
    (["--fleet-endpoints", "http://127.0.0.1:1", "--fleet-node", "a", "--fleet-facility", "f",
      "--fleet-cert", "/x.pem"], "go together"),
    (["--fleet-endpoints", "http://127.0.0.1:1", "--fleet-node", "a", "--fleet-facility", "f",
      "--feed-table", "india=101"], "do not go together"),
    (["--fleet-endpoints", "http://127.0.0.1:1", "--fleet-node", "a", "--fleet-facility", "f",
      "--fleet-user", "u", "--fleet-password-file", "/nonexistent-fleetnode"], "--fleet-password-file"),
], ids=["no-endpoints", "endpoint", "node", "facility", "label", "label-space", "label-upper",
        "cert-alone", "feed", "password"])
def test_bad_fleet_options_refused_before_anything(tmp_path, args, said):
    p = subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket",
                        str(tmp_path / "api.sock"), "--state-dir", str(tmp_path / "st"), *args],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and said in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "st")  # nothing started


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_bad_fleet_tls_files_refused_before_anything(tmp_path):
    """--fleet-ca, --fleet-cert and --fleet-key are checked at start as the
    API's --tls-* files are. They went to libcurl as paths: --fleet-ca
    /dev/zero was read at run time (2.4 GB), and a garbage CA started
    regiond, said only later as the fleet "paused"."""
    pki = etcdlab.Pki(str(tmp_path / "pki"))
    cert, key = pki.client("fleet-fa")
    os.chmod(key, 0o600)
    other_cert, _ = pki.client("fleet-fb")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    garbage.chmod(0o600)
    big = tmp_path / "big.pem"
    with open(big, "wb") as f:
        f.truncate(2 << 20)
    base = ["--fleet-endpoints", "https://127.0.0.1:1", "--fleet-node", "a", "--fleet-facility", "f"]
    for args, said in (
            (["--fleet-ca", "/dev/zero"], "--fleet-ca /dev/zero: not a regular file"),
            (["--fleet-ca", str(fifo)], f"--fleet-ca {fifo}: not a regular file"),
            (["--fleet-ca", str(big)], f"--fleet-ca {big}: larger than 1048576 bytes"),
            (["--fleet-ca", str(garbage)], f"--fleet-ca {garbage}: no PEM certificate"),
            (["--fleet-ca", pki.ca, "--fleet-cert", "/dev/zero", "--fleet-key", key],
             "--fleet-cert /dev/zero: not a regular file"),
            (["--fleet-cert", str(garbage), "--fleet-key", key], f"--fleet-cert {garbage}: no PEM certificate"),
            (["--fleet-cert", cert, "--fleet-key", str(fifo)], f"--fleet-key {fifo}: not a regular file"),
            (["--fleet-cert", cert, "--fleet-key", str(garbage)],
             f"--fleet-key {garbage}: no unencrypted PEM private key"),
            (["--fleet-cert", other_cert, "--fleet-key", key],
             f"--fleet-key {key} and --fleet-cert {other_cert}: the key does not match"),
    ):
        st = tmp_path / "st"
        p = subprocess.run([REGIOND, "--fleet-validate-only", "--api-socket", str(tmp_path / "api.sock"),
                            "--state-dir", str(st), *base, *args],
                           capture_output=True, text=True, timeout=30, preexec_fn=capped)
        assert p.returncode == 2 and said in p.stderr, (args, p.stderr)
        assert not os.path.exists(st), args  # nothing started


# First the tests with nodes of their own, before the three real nodes
# (and their busy-polling regionfwd) start.

@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_tls_role_per_facility(tmp_path):
    with etcdlab.Cluster(tmp_path / "etcd", tls=True, auth=True, facilities=["fa", "fb"],
                         name="fleetnodetls") as c:
        h = etcdlab.publish_table(c, "fa", open(DEMO, "rb").read(), user="fleet-fa")
        etcdlab.set_desired(c, "fa", h, user="fleet-fa")
        pw = tmp_path / "pw"
        pw.write_text(c.password("fleet-fa") + "\n")
        pw.chmod(0o600)
        cert, key = c.pki.client("fleet-fa")
        os.chmod(key, 0o600)
        procs = []
        try:
            for fac in ("fa", "fb"):
                api = str(tmp_path / f"api-{fac}.sock")
                procs.append(subprocess.Popen(
                    [REGIOND, "--fleet-validate-only", "--api-socket", api,
                     "--state-dir", str(tmp_path / f"st-{fac}"), "--fleet-endpoints", c.endpoints(),
                     "--fleet-node", "x1", "--fleet-facility", fac, "--fleet-ca", c.pki.ca,
                     "--fleet-cert", cert, "--fleet-key", key, "--fleet-user", "fleet-fa",
                     # 30 s: a lease of 3, then of 10, lapsed in fresh checks'
                     # sanitizer stages while bcrypt logins timed out ("requested
                     # lease not found"); what this test checks is the roles
                     "--fleet-password-file", str(pw), "--fleet-lease", "30",
                     # a login checks a password with bcrypt: slow on a loaded VM
                     # (3 s timed out there, with four suites beside it)
                     "--fleet-timeout-ms", "10000"],
                    stdout=open(tmp_path / f"rd-{fac}.log", "w"), stderr=subprocess.STDOUT))
            # a's identity runs a node of facility a: its report is there
            node_a = Node.__new__(Node)
            node_a.api = str(tmp_path / "api-fa.sock")
            try:
                # the mode is its state from the first report; in_sync once it validated the table
                wait_for(lambda: etcdlab.node_reports(c, "fa").get("x1", {}).get("in_sync") is True,
                         timeout=120, what="a's node reports")
            except AssertionError:
                raise AssertionError("a's node does not report: %s" % node_a.fleet())
            rep = etcdlab.node_reports(c, "fa")["x1"]
            assert rep["state"] == "validate_only" and rep["running"]["table"] == h
            # ... and cannot write facility b's keys: no report, the reason said
            node = Node.__new__(Node)
            node.api = str(tmp_path / "api-fb.sock")
            wait_for(lambda: "permission denied" in (node.fleet().get("last_error") or ""),
                     timeout=20, what="b's keys refused to a's identity")
            assert etcdlab.node_reports(c, "fb") == {}
            # regionctl status says it: etcd answers, and refuses
            st = subprocess.run([REGIONCTL, "-s", node.api, "status"], capture_output=True, text=True,
                                timeout=60).stdout
            assert "fleet        node x1 of fb: " in st and "etcd connected" in st, st
            assert "last etcd error " in st and "permission denied" in st, st
            assert all(p.poll() is None for p in procs)
            # Each refusal said once a minute, however they alternate: the
            # report's txn and the watch's range took turns, and with one
            # remembered both were logged twice a second. Counted over 5 s
            # (the wait above may pass a minute, after which a refusal is
            # said again, rightly). A validate-only node forwards nothing,
            # and does not say it forwards on.
            def refusals():
                return collections.Counter(ln.split("fleet: etcd: ", 1)[1]
                                           for ln in (tmp_path / "rd-fb.log").read_text().splitlines()
                                           if "fleet: etcd: " in ln)
            before = refusals()
            assert any("permission denied" in t for t in before), before
            assert not any("forwarding goes on" in t for t in before), before
            time.sleep(5)
            since = refusals() - before
            assert max(since.values(), default=0) <= 1, since
        finally:
            for p in procs:
                p.terminate()
            # A hang detector: a stop waits for the etcd step under way and
            # the lease's revoke, each of logins and calls bounded by
            # --fleet-timeout-ms per endpoint; under ASan beside four other
            # suites that passed 20 s once (10 s a call here: three
            # endpoints, a step and a revoke, 60 s at worst each).
            try:
                for p in procs:
                    p.wait(150)
            finally:
                for p in procs:  # never left running past the test (one ran on for an hour)
                    if p.poll() is None:
                        p.kill()
                        p.wait()


@pytest.mark.parametrize("mode", ["garbage", "hang"])
def test_bad_etcd_endpoint_cannot_crash_or_block_regiond(tmp_path, mode):
    f = Fake(mode)
    rd = None
    try:
        api = str(tmp_path / "api.sock")
        rd = subprocess.Popen([REGIOND, "--fleet-validate-only", "--api-socket", api,
                               "--state-dir", str(tmp_path / "st"), "--fleet-endpoints", f.url,
                               "--fleet-node", "bad", "--fleet-facility", FAC, *FLEET_ARGS],
                              stdout=open(tmp_path / "rd.log", "w"), stderr=subprocess.STDOUT)
        node = Node.__new__(Node)
        node.api = api
        wait_for(lambda: node.http("GET", "/v1/fleet")[0] == 200, what="regiond up")
        wait_for(lambda: node.fleet()["last_error"], timeout=10, what="the fake is noticed")
        for _ in range(10):
            assert node.http("GET", "/v1/status", timeout=5)[0] == 200
            v = node.fleet()
            assert not v["connected"] and v["state"] != "in_sync"
            time.sleep(0.2)
        # regionctl status says it too: it used to show nothing of the fleet,
        # so a node that took no change for hours looked as any other.
        p = subprocess.run([REGIONCTL, "-s", api, "status"], capture_output=True, text=True, timeout=60)
        assert "fleet        node bad of fra: " in p.stdout, p.stdout
        assert "etcd UNREACHABLE: no fleet change reaches this node" in p.stdout, p.stdout
        assert "last etcd error " in p.stdout, p.stdout
        assert rd.poll() is None
    finally:
        if rd and rd.poll() is None:
            rd.terminate()
            rd.wait(20)
        f.close()
    assert rd.returncode == 0


def test_fleet_status_says_each_reports_age(tmp_path):
    """A report stays in the fleet view while its node's lease is kept,
    written or not (a node applying for long, a fleet thread hung beside a
    live keepalive), and fleet status showed one written an hour ago as
    a live one. Each report now has its age, and one older than three
    report intervals (at least 10 s) is marked stale, in -j and the
    table, with a line under it."""
    with etcdlab.Cluster(tmp_path / "etcd", members=1, name="reportage") as c:
        fac = "age"
        h0 = etcdlab.publish_table(c, fac, open(DEMO, "rb").read())
        etcdlab.set_desired(c, fac, h0)
        api = str(tmp_path / "api.sock")
        rd = subprocess.Popen([REGIOND, "--fleet-validate-only", "--api-socket", api, "--state-dir",
                               str(tmp_path / "st"), "--fleet-endpoints", c.endpoints(), "--fleet-node", "n0",
                               "--fleet-facility", fac, "--fleet-lease", "3", "--fleet-report-ms", "300",
                               "--fleet-timeout-ms", "2000"],
                              stdout=open(tmp_path / "rd.log", "w"), stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: etcdlab.node_reports(c, fac).get("n0", {}).get("in_sync") is True, timeout=60,
                     what="n0 validated its table")
            # n9 last wrote its report an hour ago; its lease is kept alive
            ghost = dict(etcdlab.node_reports(c, fac)["n0"], node="n9",
                         updated_at=int(time.time() * 1000) - 3600 * 1000)
            lease = int(c.call("/v3/lease/grant", {"TTL": 600})["ID"])
            c.put(etcdlab.fac_prefix(fac) + "nodes/n9", ghost, lease=lease)
            p = subprocess.run([REGIONCTL, "-s", api, "-j", "fleet", "status"], capture_output=True, text=True,
                               timeout=60)
            assert p.returncode == 0, p.stderr
            st = json.loads(p.stdout)
            nodes = {n["node"]: n for n in st["nodes"]}
            # 3 x 300 ms is less than the floor
            assert st["report_stale_after_ms"] == 10000, st
            assert nodes["n0"]["report_stale"] is False and nodes["n0"]["age_ms"] < 10000, nodes["n0"]
            assert nodes["n9"]["report_stale"] is True and nodes["n9"]["age_ms"] >= 3600 * 1000, nodes["n9"]
            p = subprocess.run([REGIONCTL, "-s", api, "fleet", "status"], capture_output=True, text=True,
                               timeout=60)
            assert p.returncode == 0, p.stderr
            lines = {ln.split()[0]: ln for ln in p.stdout.splitlines() if ln.startswith("n")}
            assert " AGE " in p.stdout.splitlines()[1], p.stdout
            assert " 60m! " in lines["n9"] and "!" not in lines["n0"], p.stdout
            assert "stale report of n9: written 60m ago, past 10s without a new one" in p.stdout, p.stdout
            assert "stale report of n0" not in p.stdout, p.stdout
        finally:
            rd.terminate()
            assert rd.wait(30) == 0, open(tmp_path / "rd.log").read()[-2000:]


def test_a_validate_only_node_says_the_same_health_as_its_report(tmp_path):
    """A validate-only node has no regionfwd by design. Its fleet report
    said health 0 while its own status, /v1/health and regionctl status
    said regionfwd unreachable (503, exit 2); and the report kept saying 0
    with its stray-pin alarm raised. Now both follow one rule: healthy,
    degraded by an alarm."""
    pin = "/sys/fs/bpf/rfwd-test-vohealth"
    subprocess.run(["rm", "-rf", pin])
    with etcdlab.Cluster(tmp_path / "etcd", members=1, name="vohealth") as c, \
            netns.VethLab("rfwd-test-voh", [("xvo0", "xvo1")]):
        fac = "voh"
        h0 = etcdlab.publish_table(c, fac, open(DEMO, "rb").read())
        etcdlab.set_desired(c, fac, h0)
        api = str(tmp_path / "api.sock")
        rd = subprocess.Popen([REGIOND, "--fleet-validate-only", "--api-socket", api, "--state-dir",
                               str(tmp_path / "st"), "--fleet-endpoints", c.endpoints(), "--fleet-node", "v0",
                               "--fleet-facility", fac, "--fleet-lease", "3", "--fleet-report-ms", "300",
                               "--fleet-timeout-ms", "2000", "--xdp-iface", "xvo0", "--bpf-pin-dir", pin],
                              stdout=open(tmp_path / "rd.log", "w"), stderr=subprocess.STDOUT)
        node = Node.__new__(Node)
        node.api = api

        def status():
            p = subprocess.run([REGIONCTL, "-s", api, "status"], capture_output=True, text=True, timeout=60)
            return p.returncode, p.stdout

        try:
            wait_for(lambda: etcdlab.node_reports(c, fac).get("v0", {}).get("in_sync") is True, timeout=60,
                     what="v0 validated its table")
            rep = etcdlab.node_reports(c, fac)["v0"]
            assert rep["health"] == {"code": 0, "links_down": [], "alarm": ""}, rep
            code, health = node.http("GET", "/v1/health")
            assert code == 200 and health["state"] == "healthy" and health["exit"] == 0, health
            assert "validate only" in health["reason"], health
            rc, out = status()
            assert rc == 0, out
            assert "dataplane    none: validate only" in out and "UNREACHABLE" not in out, out
            assert "health       healthy: validate only" in out, out
            # a pin of a rollout nobody runs: the alarm degrades both alike
            etcdlab.set_pin(c, fac, "v0", h0, rollout="r-1-dead")
            wait_for(lambda: etcdlab.node_reports(c, fac)["v0"]["health"]["code"] == 1, timeout=30,
                     what="the stray pin in v0's report health")
            rep = etcdlab.node_reports(c, fac)["v0"]
            assert "no active rollout owns" in rep["health"]["alarm"], rep
            code, health = node.http("GET", "/v1/health")
            assert code == 503 and health["state"] == "degraded", health
            assert health["reason"] == rep["health"]["alarm"], (health, rep)
            rc, out = status()
            assert rc == 1 and "health       degraded: fleet: pinned to table" in out, out
            # a pin it cannot read is said as one, not as an operator's pin to "-"
            c.put(etcdlab.fac_prefix(fac) + "pins/v0", b"garbage")
            wait_for(lambda: "pinned, but the pin cannot be read: " in status()[1], timeout=30,
                     what="the unreadable pin in the status")
            assert "by an operator" not in status()[1]
            c.delete(etcdlab.fac_prefix(fac) + "pins/v0")
            wait_for(lambda: etcdlab.node_reports(c, fac)["v0"]["health"]["code"] == 0, timeout=30,
                     what="the alarm cleared from v0's report")
            assert node.http("GET", "/v1/health")[0] == 200
            assert status()[0] == 0
            # an --xdp-iface that lost the filter: the report says degraded
            # as the status does (its health model lacked the filters)
            subprocess.run(["ip", "link", "del", "xvo0"], check=True)
            wait_for(lambda: etcdlab.node_reports(c, fac)["v0"]["health"]["code"] == 1, timeout=30,
                     what="the lost filter in v0's report health")
            code, health = node.http("GET", "/v1/health")
            assert code == 503 and "XDP filter" in health["reason"], health
        finally:
            rd.terminate()
            assert rd.wait(30) == 0, open(tmp_path / "rd.log").read()[-2000:]
            subprocess.run(["rm", "-rf", pin])


def gen_of(node):
    return node.status()["generation"]["id"]


def settled_gens(fleet):
    """Every node's generation once its status shows the table the fleet
    runs (status is republished by regiond's main loop, a tick after an
    apply that the node's report already names)."""
    wait_for(lambda: all(n.status()["generation"]["hash"] == fleet.current for n in fleet.nodes),
             timeout=20, what="status shows %s" % fleet.current)
    return [gen_of(n) for n in fleet.nodes]


def test_nodes_converge_and_report(fleet):
    fleet.wait_converged(fleet.h0)
    r = fleet.reports()
    assert sorted(r) == ["n0", "n1", "n2"]
    for name, rep in r.items():
        assert rep["schema"] == 1 and rep["facility"] == FAC and rep["node"] == name
        assert rep["state"] == "in_sync" and rep["stale"] is False and rep["apply_error"] is None
        assert rep["target"]["source"] == "desired"
        assert rep["running"]["hash"] == fleet.h0  # what regionfwd itself runs
        assert rep["labels"]["role"] in ("canary", "rest")
        assert set(rep["counters"]) == {"rx", "tx", "drops", "drop_reasons"}
        assert rep["health"]["code"] == 0
    # in chunks of 1000 bytes: a table of several chunks, put back together
    h1 = fleet.variant("sg-local", "{region: singapore, service: any, action: steer, to: to-sg}",
                       "{region: singapore, service: any, action: steer, to: local}", chunk=1000)
    assert len(fleet.cluster.get(etcdlab.fac_prefix(FAC) + "tables/%s/chunk/" % h1, prefix=True)) > 2
    etcdlab.set_desired(fleet.cluster, FAC, h1, rollout="r-1")
    fleet.current = h1  # what the next tests expect, even if this one fails
    fleet.wait_converged(h1)
    for n in fleet.nodes:
        st = n.status()
        # what moved it, when it did: the node's history and log
        assert st["generation"]["hash"] == h1 and st["generation"]["author"] == "fleet", (
            n.name, st["generation"], n.http("GET", "/v1/history")[1], n.log()[-6000:])
        assert "rollout r-1" in st["generation"]["comment"]
        assert st["dataplane"]["in_sync"]
        v = n.fleet()
        assert v["enabled"] and v["connected"] and v["state"] == "in_sync" and v["target"]["table"] == h1
        # status's fleet part moved with the node's report, not a tick later
        assert "fleet" in st and st["fleet"]["node"] == n.name and st["fleet"]["state"] == "in_sync"
        # GET /v1/fleet carries the report last written (api.md); status's summary does not
        assert v["report"]["node"] == n.name and v["report"]["running"]["table"] == h1, v
        assert "report" not in st["fleet"]
        m = n.http("GET", "/metrics")[1]
        assert "regiond_fleet_in_sync 1" in m and 'regiond_fleet_state{state="in_sync"} 1' in m
    fleet.current = h1


def test_local_table_writes_are_refused(fleet):
    n = fleet.nodes[0]
    before = settled_gens(fleet)[0]
    for method, path in (("PUT", "/v1/table"), ("PATCH", "/v1/table"), ("POST", "/v1/prefixes"),
                         ("POST", "/v1/rollback"), ("POST", "/v1/confirm")):
        code, body = n.http(method, path)
        assert code == 409 and body["error"]["code"] == "fleet_managed", (method, path, body)
    # reads and explain stay
    assert n.http("GET", "/v1/table")[0] == 200
    assert n.http("GET", "/v1/counters")[0] == 200
    assert gen_of(n) == before


def huge_manifest(f):
    """A manifest whose chunk count is past 64 bits: jansson cannot read it
    (it was called "not a JSON object"; a hostile probe)."""
    doc = open(DEMO, "rb").read().replace(b"Mumbai", b"Mumbax")
    h = etcdlab.table_hash(doc)
    base = etcdlab.fac_prefix(FAC) + "tables/%s/" % h
    f.cluster.put(base + "chunk/000000", doc)
    f.cluster.put(base + "manifest", {"schema": 1, "hash": h, "len": len(doc), "chunks": 2 ** 63,
                                      "format": "yaml"})
    return h


# What the refusal's message says, where it matters.
MESSAGES = {"invalid_fleet_key": "the manifest is not JSON: too big integer"}

BAD = [
    ("invalid_table", lambda f: f.publish("invalid", open(DEMO).read().replace(
        "prefixes: [8.128.0.0/13, 2406:da18::/32]", "prefixes: [8.128.0.1/13]").encode()), {}),
    ("residency_violation", lambda f: f.variant("sync-to-sg", "{region: india, service: sync, action: steer, to: local}",
                                                "{region: india, service: sync, action: steer, to: to-sg}"), {}),
    ("facility_mismatch", lambda f: f.current, {"name": "ams"}),
    ("unsupported_schema", lambda f: f.current, {"schema": 2}),
    ("hash_mismatch", None, {}),
    ("invalid_fleet_key", huge_manifest, {}),
    # one wire under two names with other tags: refused as a PUT refuses
    # it (a desired table put into etcd is a document someone wrote)
    ("invalid_table", lambda f: f.variant("one-wire", "  to-br:\n",
                                          "  sg-alias:\n    port: sg0\n    next_hop_mac: \"02:00:00:00:02:01\"\n"
                                          "    vlan: 210\n    tags: [in]\n  to-br:\n"), {}),
]
BAD_IDS = [b[0] for b in BAD[:-1]] + ["one_wire"]


@pytest.mark.parametrize("reason,table,kw", BAD, ids=BAD_IDS)
def test_bad_desired_is_refused_by_every_node(fleet, reason, table, kw):
    gens = settled_gens(fleet)
    if table is None:
        # chunks that do not add up to the manifest's hash
        doc = open(DEMO, "rb").read().replace(b"Mumbai", b"Mumbay")
        h = etcdlab.table_hash(doc)
        base = etcdlab.fac_prefix(FAC) + "tables/%s/" % h
        fleet.cluster.put(base + "chunk/000000", doc.replace(b"Mumbay", b"Mumbaj"))
        fleet.cluster.put(base + "manifest", {"schema": 1, "hash": h, "len": len(doc), "chunks": 1,
                                              "format": "yaml"})
    else:
        h = table(fleet)
    etcdlab.set_desired(fleet.cluster, FAC, h, **kw)
    wait_for(lambda: all(r["state"] == "failed" and r["apply_error"]["reason"] == reason
                         for r in fleet.reports().values()) and len(fleet.reports()) == 3,
             timeout=20, what="every node refuses with " + reason)
    for n, g in zip(fleet.nodes, gens):
        rep = fleet.reports()[n.name]
        assert rep["running"]["table"] == fleet.current and not rep["in_sync"]
        assert gen_of(n) == g  # nothing changed
        assert n.fleet()["apply_error"]["reason"] == reason
        assert MESSAGES.get(reason, "") in rep["apply_error"]["message"], rep["apply_error"]
        # where in the table, beside the message (it was in the log only: a probe)
        if reason in ("invalid_table", "residency_violation"):
            at = rep["apply_error"]["at"]
            assert at and at.startswith("document:") and ("regions." in at or "policies" in at or
                                                          "links.sg-alias" in at), rep
            assert n.fleet()["apply_error"]["at"] == at
    # back to the good table: converges again
    etcdlab.set_desired(fleet.cluster, FAC, fleet.current)
    fleet.wait_converged(fleet.current)


def test_a_table_published_after_desired_is_applied(fleet):
    """Desired naming a table whose keys are not in etcd yet is refused at
    once, with the alarm (a mistyped hash must be loud), and applied when
    the table is published, without desired being written again: it was
    refused until someone rewrote desired."""
    gens = settled_gens(fleet)
    doc = open(DEMO, "rb").read().replace(b"Mumbai", b"Mumbaa")
    h = etcdlab.table_hash(doc)
    etcdlab.set_desired(fleet.cluster, FAC, h)
    wait_for(lambda: len(fleet.reports()) == 3 and all(
        r["state"] == "failed" and r["apply_error"]["reason"] == "invalid_fleet_key" and
        "has no manifest" in r["apply_error"]["message"] for r in fleet.reports().values()),
        timeout=20, what="every node refuses a table not published")
    for n, g in zip(fleet.nodes, gens):
        assert gen_of(n) == g  # nothing changed
        assert n.http("GET", "/v1/health")[0] == 503  # the alarm, at once
    rev = fleet.cluster.get(etcdlab.fac_prefix(FAC) + "desired")
    assert fleet.publish("late", doc) == h
    fleet.wait_converged(h, timeout=30)
    # desired itself was not touched
    assert fleet.cluster.get(etcdlab.fac_prefix(FAC) + "desired") == rev
    for n in fleet.nodes:
        assert n.http("GET", "/v1/health")[0] == 200
    etcdlab.set_desired(fleet.cluster, FAC, fleet.current)
    fleet.wait_converged(fleet.current)


def test_compaction_under_a_fetch_is_tried_again(fleet):
    """A node reads a table's chunks at its manifest's revision; etcd
    compacting that revision away meanwhile is a failure that passes (the
    next try reads at a fresh revision), not a refusal of the table for
    good (found by a hostile probe: the node stayed 'failed' with
    etcd_compacted after the compactions stopped)."""
    import threading
    settled_gens(fleet)
    # 64-byte chunks: a fetch of ~55 reads, so compactions land inside it
    h = fleet.variant("compacted", 'description: "ingress table, Mumbai facility (demo)"',
                      'description: "ingress table, Mumbai facility (compacted)"', chunk=64)
    stop = threading.Event()

    def compact_on():
        while not stop.is_set():
            fleet.cluster.put("/compaction-probe", str(time.time()))
            fleet.cluster.compact()

    t = threading.Thread(target=compact_on)
    t.start()
    try:
        etcdlab.set_desired(fleet.cluster, FAC, h, rollout="r-compact")
        time.sleep(4)
    finally:
        stop.set()
        t.join()
    fleet.current = h
    fleet.wait_converged(h, timeout=30)


def test_member_killed_changes_nothing(fleet):
    c = fleet.cluster
    gens = settled_gens(fleet)
    c.kill(0)  # the first endpoint of every node
    try:
        time.sleep(1.5)
        # the reports go on through the others (a report may lapse while a
        # new leader is elected: waited for), and nothing was applied
        fleet.wait_converged(fleet.current, timeout=20)
        assert [gen_of(n) for n in fleet.nodes] == gens
        h2 = fleet.variant("br-local", "{region: brazil, service: any, action: steer, to: to-br}",
                           "{region: brazil, service: any, action: steer, to: local}")
        etcdlab.set_desired(c, FAC, h2)
        fleet.current = h2
        fleet.wait_converged(h2)
    finally:
        c.start(0)


def test_member_hanging_under_the_watches(fleet):
    """The member node 0's watches stream from is stopped (SIGSTOP: its TCP
    sessions stay up, nothing comes): the agent's check finds the missed
    change and reads again elsewhere; every node converges."""
    c = fleet.cluster
    ep = fleet.nodes[0].fleet()["watch_endpoint"]
    i = next(i for i in range(3) if c.url(i).rsplit(":", 1)[1] == ep.rsplit(":", 1)[1])
    c.members[i].proc.send_signal(signal.SIGSTOP)
    try:
        h = fleet.variant("or-local", "{region: oregon, service: any, action: steer, to: us-west}",
                          "{region: oregon, service: any, action: steer, to: local}")
        etcdlab.set_desired(c, FAC, h)
        fleet.current = h
        fleet.wait_converged(h, timeout=60)
        assert fleet.nodes[0].fleet()["watch_endpoint"] != ep
    finally:
        c.members[i].proc.send_signal(signal.SIGCONT)
    assert "missed a change" in fleet.nodes[0].log()


def counters(node):
    return node.http("GET", "/v1/counters")[1]["packets"]["rx"]


def test_cluster_stopped_forwarding_goes_on_and_restart_converges(fleet):
    c = fleet.cluster
    n0 = fleet.nodes[0]
    c.stop_all()
    try:
        wait_for(lambda: not n0.fleet()["connected"], timeout=15, what="node sees etcd gone")
        rx = counters(n0)
        fleet.lab.send("fleetnode0i", "sendp([Ether()/IP(src='8.130.0.1', dst='198.51.100.1')/UDP(dport=53)]*20,"
                               " iface=IFACE, verbose=0)")
        wait_for(lambda: counters(n0) >= rx + 20, timeout=10, what="forwarding goes on")
        for n in fleet.nodes:
            code, st = n.http("GET", "/v1/status", timeout=5)
            assert code == 200 and st["generation"]["hash"] == fleet.current
            assert n.http("GET", "/v1/fleet", timeout=5)[0] == 200
            assert n.rd.poll() is None
    finally:
        c.start_all()
    # a change made at once, before the nodes are back, is not missed
    h3 = fleet.variant("ca-local", "{region: california, service: any, action: steer, to: us-west}",
                       "{region: california, service: any, action: steer, to: local}")
    etcdlab.set_desired(c, FAC, h3)
    fleet.current = h3
    fleet.wait_converged(h3, timeout=60)


def test_partitioned_node_goes_stale_and_converges(fleet):
    c = fleet.cluster
    n2 = fleet.nodes[2]
    gen = settled_gens(fleet)[2]
    start = c.revision() + 1
    netns.sh(f"ip link set {PART_OUTER} down")
    try:
        # its lease runs out: the fleet view loses it; it forwards on
        wait_for(lambda: "n2" not in fleet.reports(), timeout=20, what="n2's report expires")
        wait_for(lambda: n2.fleet()["stale"], timeout=10, what="n2 knows it is stale")
        assert gen_of(n2) == gen and n2.rd.poll() is None
        h4 = fleet.variant("ntp-drop", "dns: [any/53]", "dns: [any/53]\n  ntp2: [udp/124]")
        etcdlab.set_desired(c, FAC, h4)
        fleet.current = h4
        fleet.wait_converged(h4, nodes=fleet.nodes[:2])
        assert gen_of(n2) == gen
    finally:
        netns.sh(f"ip link set {PART_OUTER} up")
    key = etcdlab.fac_prefix(FAC) + "nodes/n2"
    seen = c.watch(key, start, lambda v: v is not None and json.loads(v)["in_sync"] and
                   json.loads(v)["running"]["table"] == h4, timeout=40)
    reps = [json.loads(v) for _, v in seen if v is not None]
    deleted = [v for _, v in seen if v is None]
    assert deleted, "the report went with the lease"
    assert any(r["stale"] and r["state"] == "stale" for r in reps), reps
    fleet.wait_converged(h4)
    assert not n2.fleet()["stale"]
    fleet.current = h4


def test_same_packets_same_output_on_every_node(fleet):
    h = fleet.current
    fleet.wait_converged(h)
    before = [n.outputs() for n in fleet.nodes]
    pkts = sources()
    import scapy.utils
    pcap = fleet.tmp / "same.pcap"
    scapy.utils.wrpcap(str(pcap), pkts)
    for i in range(3):
        fleet.lab.send("fleetnode%di" % i, f"sendp(rdpcap({str(pcap)!r}), iface=IFACE, verbose=0)")

    def new(i):
        o = fleet.nodes[i].outputs()
        return {p: o[p][len(before[i][p]):] for p in PORTS}

    def settled():
        a = [new(i) for i in range(3)]
        total = [sum(len(v) for v in x.values()) for x in a]
        return total[0] > 0 and total[0] == total[1] == total[2] and a

    outs = wait_for(settled, timeout=20, what="outputs of every node")
    time.sleep(0.5)
    outs = [new(i) for i in range(3)]
    for p in PORTS:
        assert outs[0][p] == outs[1][p] == outs[2][p], p
    # the table sends traffic to more than one link (a meaningful check)
    assert sum(1 for p in PORTS if outs[0][p]) >= 2
    for n in fleet.nodes:
        assert n.status()["generation"]["hash"] == h


def test_slow_apply_raises_no_alarm(fleet):
    """A node that cannot apply its target yet for a reason that may pass
    (here its regionfwd is down, so the push is refused and tried again
    every 2 s; a slow fetch of a large table alike) reports `applying`, not
    in sync, the failure in its apply_error (fleet.md: `failed` is for a
    target refused), and raises no fleet alarm: the alarm degrades health,
    which load balancers read, and comes only after an hour on the same
    target (--fleet-stuck-after, here 30 s). Watched here for six leases
    (18 s), twice what once raised it (three leases), the report kept fresh
    all along. Past --fleet-stuck-after the node is stuck by any measure:
    the alarm comes (health degraded, regiond_fleet_off_target 1), still
    `applying`; once regionfwd runs again the node converges and it goes."""
    c = fleet.cluster
    n0 = fleet.nodes[0]
    fleet.wait_converged(fleet.current)
    h = fleet.variant("slow-apply", "dns: [any/53]", "dns: [any/53]\n  ntp3: [udp/125]")
    args, log_at = n0.fwd.args, len(n0.log())
    n0.fwd.kill()
    n0.fwd.wait()
    try:
        etcdlab.set_desired(c, FAC, h)
        t0 = time.monotonic()
        fleet.wait_converged(h, nodes=fleet.nodes[1:])
        wait_for(lambda: (fleet.reports()["n0"]["apply_error"] or {}).get("table") == h, timeout=20,
                 what="n0 tried the target")
        looks = 0
        while time.monotonic() < t0 + 18:
            r = fleet.reports()["n0"]
            assert r["target"]["table"] == h and not r["in_sync"] and r["state"] == "applying", r
            assert r["apply_error"]["reason"] == "dataplane_unavailable", r["apply_error"]
            assert "not its target" not in (r["health"]["alarm"] or ""), r["health"]
            assert r["updated_at"] / 1000 > time.time() - 5, "n0's report is not kept fresh"
            m = n0.http("GET", "/metrics")[1]
            assert "regiond_fleet_off_target 0" in m, [x for x in m.splitlines() if "off_target" in x]
            assert n0.fleet()["state"] == "applying"
            looks += 1
            time.sleep(1)
        assert looks >= 8, looks  # off its target for longer than three leases
        r = wait_for(lambda: (lambda r: r if "not its target" in (r["health"]["alarm"] or "") else None)(
            fleet.reports()["n0"]), timeout=STUCK_S + 20, what="n0's alarm after --fleet-stuck-after")
        assert time.monotonic() - t0 >= STUCK_S - 1, "the alarm came before --fleet-stuck-after"
        assert r["health"]["alarm"] == ("fleet: runs table %s, not its target %s (desired): still applying "
                                        "after %d s, dataplane_unavailable" % (fleet.current, h, STUCK_S)), r
        assert r["state"] == "applying" and r["health"]["code"] >= 1, r
        assert "regiond_fleet_off_target 1" in n0.http("GET", "/metrics")[1]
    finally:
        n0.fwd = subprocess.Popen(args, stdout=open(n0.tmp / "fwd.log", "a"), stderr=subprocess.STDOUT)
    fleet.wait_converged(h, timeout=60)
    fleet.current = h
    wait_for(lambda: fleet.reports()["n0"]["health"]["alarm"] == "", timeout=10, what="n0's alarm cleared")
    assert n0.log()[log_at:].count("not its target") <= 2, n0.log()[log_at:]  # raised, cleared: once each
    r = fleet.reports()["n0"]
    assert r["state"] == "in_sync" and r["apply_error"] is None and r["health"]["alarm"] == "", r
    assert "regiond_fleet_off_target 0" in n0.http("GET", "/metrics")[1]


def test_a_long_apply_keeps_the_node_in_the_fleet_view(fleet):
    """A fetch and apply longer than the lease (here the push waits for a
    stopped regionfwd, up to --dataplane-timeout; a routing-scale table's
    push or a fetch of many chunks alike) keeps the node's lease alive: its
    report stays in the fleet view, naming the new target, `applying`, no
    alarm, for four leases (it went after one: the agent's thread, the one
    that kept the lease, waited on the push, and a rollout would have taken
    the node for lost). Once regionfwd runs again the push completes and
    the node converges."""
    c = fleet.cluster
    n0 = fleet.nodes[0]
    fleet.wait_converged(fleet.current)
    h = fleet.variant("long-apply", "dns: [any/53]", "dns: [any/53]\n  ntp4: [udp/126]")
    n0.fwd.send_signal(signal.SIGSTOP)
    try:
        etcdlab.set_desired(c, FAC, h)
        fleet.current = h  # what the next tests expect, even if this one fails
        t0 = time.monotonic()
        fleet.wait_converged(h, nodes=fleet.nodes[1:])
        wait_for(lambda: fleet.reports()["n0"]["target"]["table"] == h, timeout=20,
                 what="n0 reports its new target")
        looks = 0
        while time.monotonic() < t0 + 12:
            r = fleet.reports().get("n0")
            assert r is not None, "n0's report left the fleet view while it applies"
            assert r["target"]["table"] == h and not r["in_sync"] and r["state"] == "applying", r
            assert "not its target" not in (r["health"]["alarm"] or ""), r["health"]
            looks += 1
            time.sleep(0.5)
        assert looks >= 10, looks
        assert n0.fwd.poll() is None
    finally:
        n0.fwd.send_signal(signal.SIGCONT)
    fleet.wait_converged(h, timeout=60)


def test_a_lease_lost_during_an_apply_is_said_and_taken_again(fleet):
    """The keeper of a long apply's lease, cut off from etcd for longer than
    the lease (n2's link down while its push waits for a stopped regionfwd):
    it says it cannot keep the lease, the node's report leaves the fleet view
    with the lease, and once etcd answers again the keeper says the lease
    lapsed (its keepalives failed silently before, and retried only a third
    of the lease later). When the apply ends the node takes a new lease,
    reports again and converges."""
    c = fleet.cluster
    n2 = fleet.nodes[2]
    fleet.wait_converged(fleet.current)
    h = fleet.variant("lapse-apply", "dns: [any/53]", "dns: [any/53]\n  ntp5: [udp/127]")
    seen = len(n2.log())
    n2.fwd.send_signal(signal.SIGSTOP)
    try:
        etcdlab.set_desired(c, FAC, h)
        fleet.current = h
        wait_for(lambda: fleet.reports()["n2"]["target"]["table"] == h, timeout=20,
                 what="n2 reports its new target")
        # That report comes just before the fetch (two small reads); the
        # link must go down while the push waits, not cut the fetch off
        # (a failed fetch ends the try, and its keeper, before any lapse):
        # the change's write-ahead record in n2's state says the fetch is
        # over and the push begun (a fixed 2 s wait once stood here).
        wait_for(lambda: json.load(open(n2.tmp / "state" / "history.json")).get("pending"), timeout=20,
                 what="n2's write-ahead record of the change (its push waits)")
        netns.sh(f"ip link set {PART_OUTER} down")
        try:
            wait_for(lambda: "n2" not in fleet.reports(), timeout=20, what="n2's report expires")
            wait_for(lambda: "fleet: cannot keep the lease" in n2.log()[seen:], timeout=20,
                     what="n2's keeper says it cannot keep the lease")
        finally:
            netns.sh(f"ip link set {PART_OUTER} up")
        wait_for(lambda: "fleet: the lease lapsed during an apply" in n2.log()[seen:], timeout=20,
                 what="n2's keeper says the lease lapsed")
        assert n2.fwd.poll() is None and n2.rd.poll() is None
    finally:
        n2.fwd.send_signal(signal.SIGCONT)
    fleet.wait_converged(h, timeout=60)
    assert fleet.reports()["n2"]["in_sync"]
    # The lapse ended the agent's session: no report was tried on the dead
    # lease (the rollout driver's own lease may have lapsed too: its lines
    # are "fleet rollout driver ...").
    refused = [ln for ln in n2.log()[seen:].splitlines()
               if "fleet: etcd:" in ln and "requested lease not found" in ln]
    assert not refused, refused


def test_a_second_regiond_with_the_same_node_name_is_said(fleet, tmp_path):
    """Two regionds given one --fleet-node overwrote each other's report
    in turn; fleet status listed one node and nothing said so (a hostile
    probe). Each now notices the other's report in place of its own: the
    alarm names the node and the other's lease, health is degraded; it
    goes once the other has stopped."""
    n1 = fleet.nodes[1]
    api = str(tmp_path / "twin.sock")
    twin = subprocess.Popen([REGIOND, "--fleet-validate-only", "--api-socket", api,
                             "--state-dir", str(tmp_path / "st"), "--fleet-endpoints", fleet.cluster.endpoints(),
                             "--fleet-node", "n1", "--fleet-facility", FAC, *FLEET_ARGS],
                            stdout=open(tmp_path / "twin.log", "w"), stderr=subprocess.STDOUT)
    said = "another regiond reports as node n1"
    try:
        wait_for(lambda: said in (n1.status()["alarm"] or ""), timeout=30, what="n1's alarm of its twin")
        assert n1.status()["health"]["exit"] == 1
        other = Node.__new__(Node)
        other.api = api
        wait_for(lambda: said in (other.status()["alarm"] or ""), timeout=30, what="the twin's alarm")
    finally:
        twin.terminate()
        assert twin.wait(30) == 0
    # Gone: the alarm clears within two leases and a little more.
    wait_for(lambda: said not in (n1.status()["alarm"] or ""), timeout=30, what="n1's alarm cleared")
    fleet.wait_converged(fleet.current)


def test_nodes_stop_cleanly(fleet):
    """Last: every regiond exits 0 on SIGTERM (its lease revoked: the
    reports go at once), with nothing from the sanitizers in its log."""
    for n in fleet.nodes:
        n.rd.terminate()
        assert n.rd.wait(30) == 0, n.log()[-2000:]
        assert "Sanitizer" not in n.log() and "runtime error" not in n.log()
    wait_for(lambda: fleet.reports() == {}, timeout=10, what="reports gone with the leases")
