"""Fleet nodes for the scale test and bench/run section h (docs/fleet.md):

- SimNodes: N regiond in --fleet-validate-only mode (no regionfwd), each
  with its own state directory and API socket: every node fetches and
  validates each target completely and reports it, applying nothing;
- RealNode: regionfwd on net_null ports (fed by a short pcap) plus regiond
  in fleet mode, a box that really applies what etcd says;
- propagation(): the time from a desired-state write to every node
  reporting it, read from etcd's own watch stream (each report seen as it
  lands, none missed).
"""
import json
import os
import shutil
import subprocess
import time

import etcdlab
from dprun import CAPTURE_POOL, NAP, POOL, ROOT, eal_args, regionfwd_bin

BUILD = os.path.dirname(os.path.dirname(regionfwd_bin()))
REGIOND = os.environ.get("REGIOND", os.path.join(BUILD, "control", "regiond"))
DEMO = os.path.join(ROOT, "docs", "examples", "demo-table.yaml")
PORTS = ["local0", "sg0", "usw0", "usw1", "br0"]


def _wait(fn, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if fn():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise RuntimeError("%s not met in %s s" % (what, timeout))


class SimNodes:
    """@n validate-only regiond, nodes PREFIX0..PREFIX{n-1} of @facility."""

    def __init__(self, tmp, cluster, facility, n, prefix="sim", report_ms=5000, lease_s=10,
                 extra=()):
        self.tmp = str(tmp)
        self.names = ["%s%d" % (prefix, i) for i in range(n)]
        self.procs = []
        os.makedirs(self.tmp, exist_ok=True)
        try:
            for name in self.names:
                d = os.path.join(self.tmp, name)
                os.makedirs(d, exist_ok=True)
                self.procs.append(subprocess.Popen(
                    [REGIOND, "--fleet-validate-only", "--api-socket", os.path.join(d, "api.sock"),
                     "--state-dir", os.path.join(d, "state"), "--fleet-endpoints", cluster.endpoints(),
                     "--fleet-node", name, "--fleet-facility", facility,
                     "--fleet-report-ms", str(report_ms), "--fleet-lease", str(lease_s),
                     "--fleet-label", "sim=1", "--log-level", "warning", *extra],
                    stdout=open(os.path.join(d, "regiond.log"), "w"), stderr=subprocess.STDOUT))
        except BaseException:
            self.stop()
            raise

    def alive(self):
        return [p.poll() is None for p in self.procs]

    def rss_kib(self):
        total = 0
        for p in self.procs:
            try:
                for line in open("/proc/%d/status" % p.pid):
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def stop(self):
        """Stop them all; returns their exit statuses."""
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return [p.returncode for p in self.procs]


class RealNode:
    """regionfwd (net_null links, a short pcap in) + regiond in fleet mode."""

    def __init__(self, tmp, name, cluster, facility, report_ms=2000, lease_s=10):
        from scapy.all import IP, UDP, Ether, Raw, wrpcap
        self.tmp = str(tmp)
        self.name = name
        os.makedirs(self.tmp, exist_ok=True)
        self.fwd_sock = os.path.join(self.tmp, "fwd.sock")
        self.api = os.path.join(self.tmp, "api.sock")
        pcap = os.path.join(self.tmp, "in.pcap")
        wrpcap(pcap, [Ether() / IP(src="8.130.0.1", dst="198.51.100.1") / UDP(dport=53) / Raw(b"x" * 8)])
        node = os.path.join(self.tmp, "node.yaml")
        with open(node, "w") as f:
            f.write("ports:\n  in0: {device: 'net_pcap_%sin,rx_pcap=%s', ingress: true}\n" % (name, pcap) +
                    "".join("  %s: {device: net_null_%s%s}\n" % (p, name, p) for p in PORTS) +
                    "control_socket: %s\n" % self.fwd_sock + NAP + POOL + CAPTURE_POOL)
        self.fwd = subprocess.Popen([regionfwd_bin()] + eal_args("fleetbench-" + name) +
                                    ["--", "--node", node, "--table", DEMO],
                                    stdout=open(os.path.join(self.tmp, "fwd.log"), "w"),
                                    stderr=subprocess.STDOUT)
        self.rd = None
        try:
            _wait(lambda: os.path.exists(self.fwd_sock), 60, "regionfwd up")
            self.rd = subprocess.Popen(
                [REGIOND, "--dataplane", self.fwd_sock, "--api-socket", self.api,
                 "--state-dir", os.path.join(self.tmp, "state"), "--table", DEMO,
                 "--fleet-endpoints", cluster.endpoints(), "--fleet-node", name,
                 "--fleet-facility", facility, "--fleet-report-ms", str(report_ms),
                 "--fleet-lease", str(lease_s), "--log-level", "warning"],
                stdout=open(os.path.join(self.tmp, "regiond.log"), "w"), stderr=subprocess.STDOUT)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for p in (self.rd, self.fwd):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def reported(rep, h, real):
    """A node's report says it runs (real) or validated (validate-only) @h."""
    return (rep.get("target") or {}).get("table") == h and rep.get("in_sync") and \
        (rep.get("running") or {}).get("table") == h and \
        (rep.get("state") == ("in_sync" if real else "validate_only"))


def wait_reported(cluster, facility, names, h, real, timeout=60):
    _wait(lambda: all(n in r and reported(r[n], h, real)
                      for r in [etcdlab.node_reports(cluster, facility)] for n in names),
          timeout, "every node reports %s" % h)


def propagation(cluster, facility, names, h, real, timeout=60):
    """Write desired = @h and return (seconds until the last of @names
    reports it, {node: seconds}), both measured from just before the write.
    Each report is taken from etcd's watch stream as it lands."""
    key = etcdlab.fac_prefix(facility) + "nodes/"
    start = cluster.revision() + 1
    t0 = time.monotonic()
    etcdlab.set_desired(cluster, facility, h)
    got = {}
    pending = set(names)

    def until(v):
        if v is None:
            return False
        rep = json.loads(v)
        if rep["node"] in pending and reported(rep, h, real):
            got[rep["node"]] = time.monotonic() - t0
            pending.discard(rep["node"])
        return not pending

    cluster.watch(key, start, until, prefix=True, timeout=timeout)
    return max(got.values()), got


ETCD_COUNTERS = {
    "puts": "etcd_mvcc_put_total",
    "txns": "etcd_mvcc_txn_total",
    "ranges": "etcd_mvcc_range_total",
    "deletes": "etcd_mvcc_delete_total",
    "watch_events_sent": "etcd_debugging_mvcc_events_total",
    "client_bytes_in": "etcd_network_client_grpc_received_bytes_total",
    "client_bytes_out": "etcd_network_client_grpc_sent_bytes_total",
}


def etcd_load(cluster):
    """What the members have served so far, summed over the members that
    run (each write is applied by every member: puts are taken from one,
    the leader's view of the cluster's writes; the rest are per member)."""
    alive = [i for i in range(len(cluster.members)) if cluster.running(i)]
    ms = [cluster.metrics(i) for i in alive]
    out = {}
    for k, name in ETCD_COUNTERS.items():
        if k in ("puts", "txns", "deletes"):
            out[k] = max(m.get(name, 0.0) for m in ms)
        else:
            out[k] = sum(m.get(name, 0.0) for m in ms)
    return out


def have_etcd():
    return etcdlab.available() and shutil.which("openssl") is not None
