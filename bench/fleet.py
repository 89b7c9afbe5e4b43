#!/usr/bin/python3
"""h. The fleet (issue 20, docs/fleet.md): how fast a desired-state write in
etcd reaches the nodes, and what it costs etcd. A real 3-member etcd
cluster (tests/lib/etcdlab.py) on loopback; the nodes:
  - 3 real nodes: regionfwd (net_null links) + regiond in fleet mode, which
    fetch, validate, write ahead and push each table to regionfwd;
  - 50 simulated nodes: regiond --fleet-validate-only (no regionfwd), which
    fetch and validate each table completely and report it.

Printed, never asserted:
  - propagation: from just before the write of /regionfwd/v1/fac/F/desired
    to the last node's report naming the table as running (real) or
    validated (simulated), each report taken from etcd's watch stream as it
    lands; median and min-max over the rounds, alternating two tables;
  - etcd load per change: what etcd's /metrics counters moved during the
    rounds (writes, ranges, watch events sent, gRPC bytes in and out),
    minus the quiescent rate (the nodes' periodic reports) over the same
    time, per change.

Run alone: bench/fleet.py [--rounds 5] [--sim 50]; bench/run runs it as
section h.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import etcdlab  # noqa: E402
import fleetnodes  # noqa: E402


def measure(cluster, facility, names, real, rounds, docs):
    """Propagation times over @rounds changes alternating between @docs, and
    the etcd load per change with the quiescent rate taken off."""
    hs = [etcdlab.publish_table(cluster, facility, d) for d in docs]
    etcdlab.set_desired(cluster, facility, hs[-1])
    fleetnodes.wait_reported(cluster, facility, names, hs[-1], real)
    quiet_s = 4.0
    a = fleetnodes.etcd_load(cluster)
    time.sleep(quiet_s)
    b = fleetnodes.etcd_load(cluster)
    rate = {k: (b[k] - a[k]) / quiet_s for k in a}
    times, t_start = [], time.monotonic()
    a = fleetnodes.etcd_load(cluster)
    for i in range(rounds):
        last, _ = fleetnodes.propagation(cluster, facility, names, hs[i % len(hs)], real)
        times.append(last)
    took = time.monotonic() - t_start
    b = fleetnodes.etcd_load(cluster)
    per = {k: max(0.0, (b[k] - a[k]) - rate[k] * took) / rounds for k in a}
    return {"nodes": len(names), "rounds": rounds, "propagation_s": times,
            "propagation_s_median": statistics.median(times), "min": min(times), "max": max(times),
            "etcd_per_change": per, "etcd_quiescent_per_s": rate}


def run(rounds=5, sim=50):
    tmp = tempfile.mkdtemp(prefix="fleetbench-")
    doc = open(fleetnodes.DEMO).read()
    docs = [doc.replace("Mumbai", "Mumbai, bench %d" % i).encode() for i in range(2)]
    out = {}
    with etcdlab.Cluster(os.path.join(tmp, "etcd"), name="fleetbench") as c:
        reals = []
        try:
            for i in range(3):
                reals.append(fleetnodes.RealNode(os.path.join(tmp, "real%d" % i), "real%d" % i, c, "real"))
            out["real"] = measure(c, "real", [n.name for n in reals], True, rounds, docs)
        finally:
            for n in reals:
                n.stop()
        sims = fleetnodes.SimNodes(os.path.join(tmp, "sim"), c, "sim", sim)
        try:
            out["sim"] = measure(c, "sim", sims.names, False, rounds, docs)
            out["sim"]["regiond_rss_mib_each"] = sims.rss_kib() / 1024 / sim
        finally:
            sims.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def show(r):
    for k, label in (("real", "real nodes (regionfwd + regiond)"), ("sim", "validate-only regiond")):
        x = r.get(k)
        if not x:
            continue
        e = x["etcd_per_change"]
        print("%2d %-34s propagation median %.3f s (%.3f-%.3f, %d changes); per change: "
              "%.0f writes, %.0f ranges, %.0f watch events, %.0f kB in, %.0f kB out" %
              (x["nodes"], label, x["propagation_s_median"], x["min"], x["max"], x["rounds"],
               e["puts"] + e["txns"] + e["deletes"], e["ranges"], e["watch_events_sent"],
               e["client_bytes_in"] / 1000, e["client_bytes_out"] / 1000))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sim", type=int, default=50)
    a = ap.parse_args()
    res = run(a.rounds, a.sim)
    show(res)
    print(json.dumps(res, indent=1))
