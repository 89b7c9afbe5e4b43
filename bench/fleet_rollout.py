#!/usr/bin/python3
"""h. The fleet's rollouts (docs/fleet.md, "Rollouts and gates"): how long a
rollout takes with a given bake time, and what it costs etcd. A real
3-member etcd cluster (tests/lib/etcdlab.py) on loopback and 3 real nodes
(regionfwd + regiond in fleet mode, tests/lib/fleetnodes.py) reporting every
0.5 s; `regionctl fleet apply --canary 1 --wave 1 --bake B --wait`, so three
waves of one node (the canary, then two), each synced then baked.

Printed, never asserted:
  - duration: from regionctl's start to its exit (the rollout is in the
    history), and from the record's created_at to finished_at; the part
    that is not bake (3 x B) is the cost of the machinery: planning (two
    reports of every node for the rates), each wave's apply and report;
  - etcd writes per rollout: the transactions the rollout made (the record's
    own count, "writes"), and what etcd's /metrics say was written during
    it (puts + txns + deletes) with the nodes' periodic reports (their
    quiescent rate) taken off.

Then the same with 50 validate-only regiond (`--fleet-validate-only`, no
regionfwd, reporting every second): canary 1, waves of 10, bake 2 s, so six
waves; each of these regiond also runs a rollout driver, one of which leads.

Run alone: bench/fleet_rollout.py [--rounds 2] [--bake 5] [--sim 50]; bench/run
runs it in section h.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import etcdlab  # noqa: E402
import fleetnodes  # noqa: E402

FAC = "rollbench"


def regionctl():
    return os.environ.get("REGIONCTL") or os.path.join(
        os.path.dirname(os.path.abspath(fleetnodes.REGIOND)), "regionctl")


def run(rounds=2, bake=5):
    tmp = tempfile.mkdtemp(prefix="fleetrollbench-")
    doc = open(fleetnodes.DEMO).read()
    docs = [doc.replace("Mumbai", "Mumbai, rollout bench %d" % i) for i in range(rounds)]
    out = {"bake_s": bake, "waves": 3, "rounds": []}
    with etcdlab.Cluster(os.path.join(tmp, "etcd"), name="fleetrollbench") as c:
        h0 = etcdlab.publish_table(c, FAC, doc.encode())
        etcdlab.set_desired(c, FAC, h0)
        nodes = []
        try:
            for i in range(3):
                nodes.append(fleetnodes.RealNode(os.path.join(tmp, "real%d" % i), "real%d" % i, c, FAC,
                                                 report_ms=500, lease_s=5))
            fleetnodes.wait_reported(c, FAC, [n.name for n in nodes], h0, True)
            quiet_s = 4.0
            a = fleetnodes.etcd_load(c)
            time.sleep(quiet_s)
            b = fleetnodes.etcd_load(c)
            rate = {k: (b[k] - a[k]) / quiet_s for k in a}
            for i, d in enumerate(docs):
                path = os.path.join(tmp, "t%d.yaml" % i)
                with open(path, "w") as f:
                    f.write(d)
                a = fleetnodes.etcd_load(c)
                t0 = time.monotonic()
                p = subprocess.run([regionctl(), "-s", nodes[0].api, "-j", "fleet", "apply", path,
                                    "--canary", "1", "--wave", "1", "--bake", str(bake),
                                    "--sync-timeout", "60", "--wait"],
                                   capture_output=True, text=True, timeout=600)
                took = time.monotonic() - t0
                b = fleetnodes.etcd_load(c)
                if p.returncode != 0:
                    raise RuntimeError("fleet apply exited %d: %s" % (p.returncode, p.stderr.strip()))
                rec = json.loads(p.stdout)
                writes = sum(max(0.0, (b[k] - a[k]) - rate[k] * took) for k in ("puts", "txns", "deletes"))
                out["rounds"].append({
                    "state": rec["state"], "wall_s": took,
                    "record_s": (rec["finished_at"] - rec["created_at"]) / 1000.0,
                    "rollout_txns": rec["writes"], "etcd_writes": writes,
                    "etcd_writes_raw": sum(b[k] - a[k] for k in ("puts", "txns", "deletes"))})
        finally:
            for n in nodes:
                n.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    r = out["rounds"]
    out["wall_s_median"] = statistics.median(x["wall_s"] for x in r)
    out["record_s_median"] = statistics.median(x["record_s"] for x in r)
    out["overhead_s_median"] = out["record_s_median"] - 3 * bake
    out["rollout_txns_median"] = statistics.median(x["rollout_txns"] for x in r)
    out["etcd_writes_median"] = statistics.median(x["etcd_writes"] for x in r)
    out["etcd_quiescent_writes_per_s"] = sum(rate[k] for k in ("puts", "txns", "deletes"))
    return out


def run_sim(n=50, bake=2, wave=10):
    """One rollout to @n validate-only regiond; the time and etcd's writes."""
    tmp = tempfile.mkdtemp(prefix="fleetrollsim-")
    doc = open(fleetnodes.DEMO).read()
    out = {"nodes": n, "bake_s": bake, "wave": wave}
    with etcdlab.Cluster(os.path.join(tmp, "etcd"), name="fleetrollsim") as c:
        h0 = etcdlab.publish_table(c, FAC, doc.encode())
        etcdlab.set_desired(c, FAC, h0)
        sims = fleetnodes.SimNodes(os.path.join(tmp, "sim"), c, FAC, n, report_ms=1000, lease_s=10)
        try:
            fleetnodes.wait_reported(c, FAC, sims.names, h0, False, timeout=120)
            quiet_s = 5.0
            a = fleetnodes.etcd_load(c)
            time.sleep(quiet_s)
            b = fleetnodes.etcd_load(c)
            rate = {k: (b[k] - a[k]) / quiet_s for k in a}
            path = os.path.join(tmp, "t.yaml")
            with open(path, "w") as f:
                f.write(doc.replace("Mumbai", "Mumbai, rollout to %d" % n))
            api = os.path.join(tmp, "sim", sims.names[0], "api.sock")
            a = fleetnodes.etcd_load(c)
            t0 = time.monotonic()
            p = subprocess.run([regionctl(), "-s", api, "-j", "fleet", "apply", path, "--canary", "1",
                                "--wave", str(wave), "--bake", str(bake), "--sync-timeout", "120",
                                "--wait"], capture_output=True, text=True, timeout=900)
            took = time.monotonic() - t0
            b = fleetnodes.etcd_load(c)
            if p.returncode != 0:
                raise RuntimeError("fleet apply exited %d: %s" % (p.returncode, p.stderr.strip()))
            rec = json.loads(p.stdout)
            out.update({"state": rec["state"], "waves": rec["waves"], "wall_s": took,
                        "record_s": (rec["finished_at"] - rec["created_at"]) / 1000.0,
                        "rollout_txns": rec["writes"],
                        "etcd_writes": sum(max(0.0, (b[k] - a[k]) - rate[k] * took)
                                           for k in ("puts", "txns", "deletes")),
                        "etcd_quiescent_writes_per_s": sum(rate[k] for k in ("puts", "txns", "deletes"))})
            out["not_baking_s"] = out["record_s"] - rec["waves"] * bake
        finally:
            sims.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def show(r):
    print("rollout to 3 real nodes, canary + 2 waves, bake %d s each: %.1f s (regionctl --wait), "
          "%.1f s created to finished, of which %.1f s not baking; %.0f etcd transactions by the "
          "rollout, %.0f etcd writes in all with the nodes' reports taken off (%.1f/s quiescent); "
          "%d rollouts" % (r["bake_s"], r["wall_s_median"], r["record_s_median"], r["overhead_s_median"],
                           r["rollout_txns_median"], r["etcd_writes_median"],
                           r["etcd_quiescent_writes_per_s"], len(r["rounds"])))
    x = r.get("sim")
    if x:
        print("rollout to %d validate-only regiond, canary + waves of %d (%d waves), bake %d s each: "
              "%.1f s created to finished, of which %.1f s not baking; %.0f etcd transactions by the "
              "rollout, %.0f etcd writes in all with the nodes' reports taken off (%.1f/s quiescent)" %
              (x["nodes"], x["wave"], x["waves"], x["bake_s"], x["record_s"], x["not_baking_s"],
               x["rollout_txns"], x["etcd_writes"], x["etcd_quiescent_writes_per_s"]))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bake", type=int, default=5)
    ap.add_argument("--sim", type=int, default=50, help="validate-only regiond (0: none)")
    a = ap.parse_args()
    res = run(a.rounds, a.bake)
    if a.sim:
        res["sim"] = run_sim(a.sim)
    show(res)
    print(json.dumps(res, indent=1))
