"""Scale (issue 20): 50 regiond in --fleet-validate-only mode (no regionfwd:
each fetches, validates completely and reports every target) against a real
3-member etcd cluster. Every node reports a new desired table, and every node
reports a refused one; how long it takes is printed, never asserted
(bench/run section h measures it). FLEET_SCALE_NODES=N changes the count."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import etcdlab  # noqa: E402
import fleetnodes  # noqa: E402

# 10 under the sanitizers (scripts/test's second stage, docs/testing.md):
# 50 ASan regiond show no memory error 10 do not.
SANITIZED = os.environ.get("SANITIZE", "none") not in ("", "none")
N = int(os.environ.get("FLEET_SCALE_NODES", "10" if SANITIZED else "50"))

pytestmark = pytest.mark.skipif(not etcdlab.available(),
                                reason="needs etcd and etcdctl (etcd-server, etcd-client)")


def test_fifty_validate_only_nodes_report_every_change(tmp_path):
    with etcdlab.Cluster(tmp_path / "etcd", name="fleetscale") as c:
        doc = open(fleetnodes.DEMO).read()
        h0 = etcdlab.publish_table(c, "scale", doc)
        etcdlab.set_desired(c, "scale", h0)
        sims = fleetnodes.SimNodes(tmp_path / "nodes", c, "scale", N)
        try:
            fleetnodes.wait_reported(c, "scale", sims.names, h0, real=False, timeout=120)
            h1 = etcdlab.publish_table(c, "scale", doc.replace("Mumbai", "Mumbai, scale"))
            last, per = fleetnodes.propagation(c, "scale", sims.names, h1, real=False, timeout=120)
            assert sorted(per) == sorted(sims.names)
            print("\n%d validate-only nodes: the last reported the change %.3f s after the write" % (N, last))
            reps = etcdlab.node_reports(c, "scale")
            assert len(reps) == N and all(r["running"]["table"] == h1 for r in reps.values())
            # a refused table: every node says so, and keeps what it validated
            bad = etcdlab.publish_table(c, "scale", doc.replace("8.128.0.0/13", "8.128.0.1/13"))
            etcdlab.set_desired(c, "scale", bad)

            def all_refuse():
                reps = etcdlab.node_reports(c, "scale")
                return len(reps) == N and all(
                    r["state"] == "failed" and (r["apply_error"] or {}).get("reason") == "invalid_table" and
                    r["running"]["table"] == h1 for r in reps.values())

            fleetnodes._wait(all_refuse, 120, "every node refuses the invalid table")
            # validation is complete: residency too (India's sync data to Singapore)
            bad = etcdlab.publish_table(c, "scale", doc.replace(
                "{region: india, service: sync, action: steer, to: local}",
                "{region: india, service: sync, action: steer, to: to-sg}"))
            etcdlab.set_desired(c, "scale", bad)
            fleetnodes._wait(lambda: all(r["apply_error"] and r["apply_error"]["reason"] == "residency_violation"
                                         for r in etcdlab.node_reports(c, "scale").values()),
                             120, "every node refuses the residency violation")
            assert all(sims.alive())
            # SIGTERM: every one exits 0 (under ASan: no leak, no error)
            assert sims.stop() == [0] * N
        finally:
            sims.stop()
