"""The rollout store and driver (control/ctl_rollout_store.c,
ctl_rollout_driver.c) against a real 3-member etcd cluster, with simulated
nodes: Python threads that report under nodes/N on their own lease and follow
their pin or the desired table the way the node agent does. Driven through
tests/unit/rollout_probe.c. What the real nodes add (regionfwd, regiond's
apply path) is tests/control/test_fleet_rollout.py's.

Covers: a rollout through canary and waves to promotion; a gate failure that
reverts the canary while the others never moved; two concurrent creates (one
wins, the loser wrote nothing); an operator's abort; the leader killed
mid-rollout (another driver takes over and completes it); an etcd member
killed mid-rollout; garbage in rollout/active (reported, nothing written)."""
import base64
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import etcdlab  # noqa: E402
from waitfor import wait_for  # noqa: E402

REGIOND = os.environ.get("REGIOND", "build/control/regiond")
PROBE = os.environ.get("ROLLOUT_PROBE") or os.path.join(
    os.path.dirname(os.path.abspath(REGIOND)), "..", "tests", "unit", "rollout_probe")

pytestmark = [
    pytest.mark.skipif(not etcdlab.available(), reason="needs etcd and etcdctl (etcd-server, etcd-client)"),
    pytest.mark.skipif(not os.path.exists(PROBE), reason="rollout_probe not built"),
]

OLD_DOC = b"version: 1\n# old\n"
NEW_DOC = b"version: 1\n# new\n"


def fnv64(data: bytes, h=1469598103934665603):
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


OLD, NEW = fnv64(OLD_DOC), fnv64(NEW_DOC)


class SimNode(threading.Thread):
    """A node as the rollout sees it: follows pins/N, else desired, and
    reports every 200 ms on its own lease. `bad` tables make it drop or
    refuse; `up` False revokes its lease (the node vanishes at once). A
    lease lost otherwise (expired, revoked by someone else) is replaced by
    a new one, as the node agent does, so the node reports again.

    The lease outlives a hung call: each call waits CALL_TIMEOUT per
    member, so even one that tries all three members (a member killed, a
    leader being elected) ends before the lease would expire. A report
    that vanished for that reason would be a test artefact, not a lost
    node, and a canary's loss aborts the rollout."""

    LEASE_S = 8
    CALL_TIMEOUT = 1.5

    def __init__(self, cluster, fac, name, labels=None):
        super().__init__(daemon=True)
        self.c, self.fac, self.name = cluster, fac, name
        self.labels = labels or {}
        self.running = OLD
        self.up = True
        self.refuse = set()  # tables it cannot apply
        self.stuck = set()  # tables it never gets to run (applying, no error)
        self.drops_on = {}  # table -> extra no_link_up drops per second
        self.drops = 0.0
        self.quit = False
        self.applied = []  # every table it switched to, in order
        self.lease = 0

    def key(self, rest):
        return etcdlab.fac_prefix(self.fac) + rest

    def grant(self):
        self.lease = int(self.c.call("/v3/lease/grant", {"TTL": self.LEASE_S},
                                     timeout=self.CALL_TIMEOUT)["ID"])

    def keep(self):
        """Renew the lease before each call, so a call that hangs costs
        the lease at most one call's wait, never several. etcd answers a
        keepalive of a lease it no longer has with TTL 0 (absent in the
        gateway's JSON), not an error: then a new lease is granted, for
        the puts that follow (with the dead one etcd refuses them)."""
        r = self.c.call("/v3/lease/keepalive", {"ID": str(self.lease)}, timeout=self.CALL_TIMEOUT)
        if "result" not in r:  # a stream error (a leader being elected): retried
            raise RuntimeError("keepalive: %s" % r)
        if int(r["result"].get("TTL", 0)) <= 0:
            self.grant()

    def target(self):
        pin = self.c.get_json(self.key("pins/" + self.name), timeout=self.CALL_TIMEOUT)
        if pin:
            return pin["table"], "pin"
        self.keep()
        d = self.c.get_json(self.key("desired"), timeout=self.CALL_TIMEOUT)
        return (d["table"] if d else None), "desired"

    def report(self, target, source, err):
        now = int(time.time() * 1000)
        rep = {"schema": 1, "node": self.name, "facility": self.fac, "labels": self.labels,
               "version": "sim",
               "state": "failed" if err else "applying" if target in self.stuck else "in_sync",
               "target": {"table": target, "source": source, "rollout": None, "revision": 0},
               "running": {"generation": len(self.applied), "table": self.running, "hash": self.running},
               "in_sync": not err and target == self.running, "stale": False,
               "apply_error": {"table": target, "reason": "invalid_table", "message": "sim"} if err else None,
               "health": {"code": 0, "links_down": [], "alarm": ""},
               "counters": {"rx": 1000, "tx": 1000, "drops": int(self.drops),
                            "drop_reasons": {"no_link_up": int(self.drops)}},
               "updated_at": now}
        self.keep()
        self.c.put(self.key("nodes/" + self.name), rep, lease=self.lease, timeout=self.CALL_TIMEOUT)

    def run(self):
        last = time.time()
        while not self.quit:
            try:
                if not self.up:
                    if self.lease:
                        self.c.call("/v3/lease/revoke", {"ID": str(self.lease)},
                                    timeout=self.CALL_TIMEOUT)
                    self.lease = 0
                    time.sleep(0.2)
                    last = time.time()
                    continue
                if not self.lease:
                    self.grant()
                self.keep()
                target, source = self.target()
                err = target in self.refuse
                if target and not err and target not in self.stuck and target != self.running:
                    self.running = target
                    self.applied.append(target)
                now = time.time()
                self.drops += (now - last) * (10 + self.drops_on.get(self.running, 0))
                last = now
                self.report(target, source, err)
            except Exception:  # a killed member mid-call: try again
                pass
            time.sleep(0.2)


def probe(cluster, *args, timeout=60, endpoints=None, **extra):
    env = dict(os.environ, ETCD_ENDPOINTS=endpoints or cluster.endpoints(), ETCD_TIMEOUT_MS="1000")
    env.update(extra)
    p = subprocess.run([PROBE, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    return p.returncode, lines[-1] if lines else None, p.stderr


def driver(cluster, fac, node, seconds=120, lease=3, endpoints=None, **extra):
    env = dict(os.environ, ETCD_ENDPOINTS=endpoints or cluster.endpoints(), ETCD_TIMEOUT_MS="1000", **extra)
    return subprocess.Popen([PROBE, "drive", fac, node, str(seconds), str(lease)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    # A clean stop (and, in a sanitizer build, no leak report).
    assert p.returncode == 0, (p.returncode, err[-3000:])
    return out, err


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = etcdlab.Cluster(tmp_path_factory.mktemp("etcd"), name="frroll")
    yield c
    c.close()


@pytest.fixture
def fac(cluster, request, tmp_path):
    """A facility of three simulated nodes running OLD (desired)."""
    f = "fr-" + request.node.name.replace("_", "-")[5:30].strip("-")
    pre = etcdlab.fac_prefix(f)
    cluster.put(pre + "desired", {"schema": 1, "facility": f, "table": OLD, "rollout": None, "updated_at": 0})
    nodes = [SimNode(cluster, f, "n1"), SimNode(cluster, f, "n2"), SimNode(cluster, f, "n3", {"role": "canary"})]
    for n in nodes:
        n.start()
    wait_for(lambda: len(cluster.get(pre + "nodes/", prefix=True)) == 3, what="3 nodes report")
    doc = tmp_path / "new.yaml"
    doc.write_bytes(NEW_DOC)
    yield f, nodes, str(doc)
    for n in nodes:
        n.quit = True
    for n in nodes:
        n.join(5)


def history(cluster, f):
    h = cluster.get(etcdlab.fac_prefix(f) + "rollout/history/", prefix=True)
    return [json.loads(v) for v in h.values()]


def finished(cluster, f, timeout=90):
    return wait_for(lambda: history(cluster, f), timeout=timeout, what="rollout finished")[0]


def test_canary_then_waves(cluster, fac):
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    rc, out, err = probe(cluster, "create", f, doc, '{"canary_label": "role=canary", "canary": 0, "bake_s": 1, "wave": 1, "sync_timeout_s": 10}')
    assert rc == 0, (out, err)
    assert out["rollout"]["table"] == NEW and out["rollout"]["previous"] == OLD
    # The table is in etcd, checkable by its manifest.
    m = cluster.get_json(pre + "tables/%s/manifest" % NEW)
    assert m["len"] == len(NEW_DOC) and m["chunks"] == 1
    assert cluster.get(pre + "tables/%s/chunk/000000" % NEW) == NEW_DOC
    d = driver(cluster, f, "drv-a")
    try:
        # The canary (n3, by label) moves first, alone.
        wait_for(lambda: nodes[2].running == NEW, what="canary on NEW")
        assert nodes[0].running == OLD and nodes[1].running == OLD
        rec = finished(cluster, f)
    finally:
        out, err = stop(d)
    assert rec["state"] == "completed", rec
    assert [n.running for n in nodes] == [NEW] * 3
    assert cluster.get_json(pre + "desired")["table"] == NEW
    assert cluster.get(pre + "pins/", prefix=True) == {}
    assert cluster.get(pre + "rollout/active") is None
    # n3 (wave 0), then n1, then n2: each node changed once.
    assert {n["name"]: n["wave"] for n in rec["nodes"]} == {"n3": 0, "n1": 1, "n2": 2}
    assert all(n.applied == [NEW] for n in nodes)
    assert rec["writes"] >= 5
    status = json.loads(out.strip().splitlines()[-1])
    assert status["leader"] is True and status["commits"] >= 4


def test_gate_failure_reverts_canary_only(cluster, fac):
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    nodes[0].drops_on[NEW] = 5000  # n1, the canary by count, drops on NEW
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 4, "wave": 2, "sync_timeout_s": 10}')
    assert rc == 0, (out, err)
    d = driver(cluster, f, "drv-a")
    try:
        rec = finished(cluster, f)
    finally:
        stop(d)
    assert rec["state"] == "aborted"
    assert rec["abort"]["gate"] == "drop_rate" and rec["abort"]["node"] == "n1", rec["abort"]
    assert "no_link_up" in rec["abort"]["reason"]
    wait_for(lambda: nodes[0].running == OLD, what="canary back on OLD")
    assert nodes[0].applied == [NEW, OLD]
    # The others never moved, desired never changed, no pin is left.
    assert nodes[1].applied == [] and nodes[2].applied == []
    assert cluster.get_json(pre + "desired")["table"] == OLD
    assert cluster.get(pre + "pins/", prefix=True) == {}
    assert {n["name"]: n["status"] for n in rec["nodes"]} == {"n1": "reverted", "n2": "waiting", "n3": "waiting"}


def test_apply_error_gate(cluster, fac):
    f, nodes, doc = fac
    nodes[0].refuse.add(NEW)
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 1, "sync_timeout_s": 10}')
    assert rc == 0, (out, err)
    d = driver(cluster, f, "drv-a")
    try:
        rec = finished(cluster, f)
    finally:
        stop(d)
    assert rec["state"] == "aborted" and rec["abort"]["gate"] == "apply_error", rec["abort"]
    assert all(n.applied == [] for n in nodes)


def test_concurrent_creates_one_wins(cluster, fac, tmp_path):
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    other = tmp_path / "other.yaml"
    other.write_bytes(b"version: 1\n# other\n")
    other_hash = fnv64(other.read_bytes())
    rev0 = cluster.revision()
    procs = [subprocess.Popen([PROBE, "create", f, p], env=dict(os.environ, ETCD_ENDPOINTS=cluster.endpoints()),
                              stdout=subprocess.PIPE, text=True) for p in (doc, str(other))]
    outs = [json.loads(p.communicate(timeout=30)[0].strip()) for p in procs]
    wins = [o for o in outs if "rollout" in o]
    losses = [o for o in outs if "code" in o]
    assert len(wins) == 1 and len(losses) == 1, outs
    assert losses[0]["code"] == "rollout_in_progress"
    won = wins[0]["rollout"]["table"]
    lost = other_hash if won == NEW else NEW
    # Nothing of the loser is in etcd.
    assert cluster.get(pre + "tables/%s/" % lost, prefix=True) == {}
    assert json.loads(cluster.get(pre + "rollout/active"))["table"] == won
    assert cluster.revision() > rev0
    # And again, with one active: refused, nothing written.
    rc, out, _ = probe(cluster, "create", f, str(other) if won == NEW else doc)
    assert rc == 1 and out["code"] == "rollout_in_progress"
    assert cluster.get(pre + "tables/%s/" % lost, prefix=True) == {}
    cluster.delete(pre + "rollout/active")


def test_operator_abort(cluster, fac):
    f, nodes, doc = fac
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 60, "sync_timeout_s": 10}')
    assert rc == 0
    d = driver(cluster, f, "drv-a")
    try:
        wait_for(lambda: nodes[0].running == NEW, what="canary on NEW")
        rc, out, err = probe(cluster, "abort", f)
        assert rc == 0 and out["rollout"]["abort_requested"] is True, (out, err)
        rec = finished(cluster, f)
    finally:
        stop(d)
    assert rec["state"] == "aborted" and rec["abort"]["gate"] == "operator"
    wait_for(lambda: nodes[0].running == OLD, what="canary back")
    rc, out, _ = probe(cluster, "abort", f)
    assert rc == 1 and out["code"] == "no_rollout"


def test_leader_killed_mid_rollout(cluster, fac):
    """The leader dies during the bake (SIGKILL: its lease must expire);
    a second driver takes the leader key and completes the rollout."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 3, "wave": 1, "sync_timeout_s": 20}')
    assert rc == 0
    a = driver(cluster, f, "drv-a")
    wait_for(lambda: (cluster.get_json(pre + "rollout/leader") or {}).get("node") == "drv-a", what="a leads")
    b = driver(cluster, f, "drv-b")
    try:
        wait_for(lambda: nodes[0].running == NEW, what="canary on NEW")
        a.kill()
        a.communicate(timeout=10)
        wait_for(lambda: (cluster.get_json(pre + "rollout/leader") or {}).get("node") == "drv-b",
                 timeout=20, what="b takes over")
        rec = finished(cluster, f)
    finally:
        out, _ = stop(b)
        if a.poll() is None:
            a.kill()
    assert rec["state"] == "completed", rec
    assert [n.running for n in nodes] == [NEW] * 3
    assert all(n.applied == [NEW] for n in nodes)
    assert json.loads(out.strip().splitlines()[-1])["leader"] is True


def test_leader_key_deleted_mid_rollout(cluster, fac):
    """The leader key deleted by hand during the bake (found by a hostile
    probe): the leader's commit then fails its leader compare, and it used
    to retry at once for ever (hundreds of transactions a second, the
    rollout stuck baking) while believing it led; with a second driver,
    two claimed to lead. Now the driver that lost its key stops leading,
    one driver leads again, and the rollout completes."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 3, "wave": 1, "sync_timeout_s": 20}')
    assert rc == 0
    a = driver(cluster, f, "drv-a")
    wait_for(lambda: (cluster.get_json(pre + "rollout/leader") or {}).get("node") == "drv-a", what="a leads")
    b = driver(cluster, f, "drv-b")
    outs = {}
    holder = None
    try:
        wait_for(lambda: nodes[0].running == NEW, what="canary on NEW")
        cluster.delete(pre + "rollout/leader")
        rec = finished(cluster, f, timeout=60)
        holder = leader_of(cluster, f)
    finally:
        # The follower stopped (and gone) first: a leader's stop revokes
        # its lease, and a follower still running, even one already told
        # to stop but in the middle of a campaign, would take the key in
        # its place and also end claiming to lead (CI saw that once).
        procs = {"drv-a": a, "drv-b": b}
        for name in sorted(procs, key=lambda n: n == holder):
            outs[name] = stop(procs[name])[0]
    assert rec["state"] == "completed", rec
    assert [n.running for n in nodes] == [NEW] * 3
    assert holder in ("drv-a", "drv-b"), holder
    leaders = {n: json.loads(o.strip().splitlines()[-1])["leader"] for n, o in outs.items()}
    # The one etcd names leads; the other (the deposed one included) knows
    # it does not.
    assert leaders == {holder: True, ({"drv-a", "drv-b"} - {holder}).pop(): False}, (leaders, outs)


def test_a_put_over_the_leader_key_stops_its_commits(cluster, fac):
    """A put over the leader key on another lease (by hand, or a writer
    that should not) keeps the key's create_revision. The leader's commits
    compare the key's lease too: none passes after the put, and the first
    that fails ends its leading. Compared on the create_revision alone, it
    went on driving the rollout beside the key's new holder until its next
    keepalive (a third of its lease: 20 s here, far past the window
    watched). Once that lease is revoked (its key goes with it), the driver
    leads again and the rollout completes."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 2, "wave": 1, "sync_timeout_s": 20}')
    assert rc == 0, (out, err)
    d = driver(cluster, f, "drv-a", lease=60)
    other = None
    try:
        wait_for(lambda: nodes[0].running == NEW, what="canary on NEW")
        other = int(cluster.call("/v3/lease/grant", {"TTL": 60})["ID"])
        cluster.put(pre + "rollout/leader", json.dumps({"schema": 1, "node": "intruder", "since": 0}), lease=other)
        held = cluster.get_json(pre + "rollout/active")
        time.sleep(2 + 4)  # the canary seen in sync, its bake: commits the old code made
        now = cluster.get_json(pre + "rollout/active")
        assert (now["writes"], now["state"]) == (held["writes"], held["state"]), (held, now)
        assert [n.running for n in nodes] == [NEW, OLD, OLD]
        cluster.call("/v3/lease/revoke", {"ID": str(other)})
        other = None
        rec = finished(cluster, f, timeout=60)
    finally:
        if other:
            cluster.call("/v3/lease/revoke", {"ID": str(other)})
        out, err = stop(d)
    assert rec["state"] == "completed", rec
    assert [n.running for n in nodes] == [NEW] * 3
    # Deposed by its first failed commit, normally within the window
    # (replaced); one that only came after the revoke finds the key gone.
    assert re.search(r"no longer the leader: the leader key was (replaced \(created at revision \d+ "
                     r"on lease [0-9a-f]+, ours|deleted)", err), err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["leader"] is True, out


def leader_of(cluster, f):
    return (cluster.get_json(etcdlab.fac_prefix(f) + "rollout/leader") or {}).get("node")


def churn(cluster, f, done, leads=3.5, rounds=20):
    """Keep the rollout's leadership changing until @done() holds: a
    driver leads for @leads s, then is stopped (SIGTERM: its lease is
    revoked) and one started meanwhile takes over. Each leadership is
    far shorter than the phase the test watches, as with a lease that
    keeps lapsing or a regiond in a restart loop. Returns (@done()'s
    value, or None when @rounds leaderships passed without it; the
    number of takeovers; the driver leading last, still running)."""
    cur = driver(cluster, f, "drv-0")
    wait_for(lambda: leader_of(cluster, f) == "drv-0", what="drv-0 leads")
    takeovers = 0
    try:
        for i in range(1, rounds + 1):
            nxt = driver(cluster, f, "drv-%d" % i)
            time.sleep(leads)
            got = done()
            if got:
                stop(nxt)
                return got, takeovers, cur
            stop(cur)
            cur = nxt
            wait_for(lambda: leader_of(cluster, f) == "drv-%d" % i, timeout=20, what="drv-%d leads" % i)
            takeovers += 1
        return None, takeovers, cur
    except BaseException:
        stop(cur)
        raise


def test_a_bake_ends_though_its_leader_keeps_changing(cluster, fac):
    """The leader wrote the record only when the rollout moved, so in a
    bake its updated_at was the bake's start, and each new leader counted
    the bake from its takeover: a leadership that kept changing every few
    seconds held a 12 s bake for ever. The leader now writes the record
    again every third of its lease while a phase waits, and a takeover
    keeps what had passed of the bake: the canary's bake ends while the
    leadership still changes, after several takeovers in it."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 12, "wave": 2, "sync_timeout_s": 30}')
    assert rc == 0, (out, err)
    baking = []  # the leaders seen while the canary baked

    def past_the_bake():
        rec = cluster.get_json(pre + "rollout/active")
        if rec is None:
            return "finished"
        if rec["state"] == "baking" and rec["wave"] == 0:
            baking.append(leader_of(cluster, f))
        return rec["wave"] >= 1 and "wave %d" % rec["wave"]

    got, takeovers, last = churn(cluster, f, past_the_bake)
    try:
        assert got, "the canary still bakes after %d takeovers: %s" % (takeovers, cluster.get_json(pre + "rollout/active"))
        # leaders took turns in the bake
        assert len(set(baking)) >= 2, baking
        rec = finished(cluster, f)
    finally:
        stop(last)
    assert rec["state"] == "completed", rec
    assert [n.running for n in nodes] == [NEW] * 3
    assert all(n.applied == [NEW] for n in nodes)


def test_a_sync_timeout_fires_though_its_leader_keeps_changing(cluster, fac):
    """The same for a wave's sync: the canary never runs the table (it is
    applying, no error), and its sync_timeout gate, counted from each
    takeover, never fired while the leadership kept changing. It fires
    now, the canary is reverted and the others never moved."""
    f, nodes, doc = fac
    nodes[0].stuck.add(NEW)  # n1, the canary by count
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 1, "wave": 2, "sync_timeout_s": 10}')
    assert rc == 0, (out, err)
    got, takeovers, last = churn(cluster, f, lambda: history(cluster, f))
    try:
        assert got, "still syncing after %d takeovers: %s" % (
            takeovers, cluster.get_json(etcdlab.fac_prefix(f) + "rollout/active"))
        assert takeovers >= 2, takeovers
    finally:
        stop(last)
    rec = got[0]
    assert rec["state"] == "aborted" and rec["abort"]["gate"] == "sync_timeout", rec
    assert rec["abort"]["node"] == "n1", rec["abort"]
    assert all(n.applied == [] for n in nodes)
    assert cluster.get_json(etcdlab.fac_prefix(f) + "desired")["table"] == OLD


def test_unreadable_report_aborts_the_rollout(cluster, fac):
    """A report the rollout cannot read (here a label value with a space)
    used to leave its node out of the plan: it took the table at promotion
    without a gate. Now the rollout aborts before anything is pinned."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    cluster.put(pre + "nodes/n9", {"schema": 1, "node": "n9", "labels": {"desc": "rack 5"}})
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 1, "wave": 1, "sync_timeout_s": 5}')
    assert rc == 0, (out, err)
    d = driver(cluster, f, "drv-a")
    try:
        rec = finished(cluster, f)
    finally:
        stop(d)
        cluster.delete(pre + "nodes/n9")
    assert rec["state"] == "aborted", rec
    assert rec["abort"]["gate"] == "unreadable_report" and rec["abort"]["node"] == "n9", rec["abort"]
    assert "labels" in rec["abort"]["reason"]
    assert [n.running for n in nodes] == [OLD] * 3
    assert cluster.get_json(pre + "desired")["table"] == OLD


def test_forged_table_copy_is_written_again(cluster, fac):
    """A manifest for the table's hash with chunks that are not the table
    (forged or damaged): the create used to trust it, and every node then
    refused the rollout's table (hash_mismatch). The create writes the
    table again, and the rollout completes."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    # chunks that are not the table; then the right chunks under a manifest
    # whose format every node refuses
    for chunk, fmt in ((b"x" * len(NEW_DOC), "yaml"), (NEW_DOC, "xml")):
        cluster.put(pre + "tables/%s/manifest" % NEW, {"schema": 1, "hash": NEW, "len": len(NEW_DOC),
                                                       "chunks": 1, "format": fmt})
        cluster.put(pre + "tables/%s/chunk/000000" % NEW, chunk)
        rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 1, "wave": 2, "sync_timeout_s": 10}')
        assert rc == 0, (out, err)
        assert cluster.get(pre + "tables/%s/chunk/000000" % NEW) == NEW_DOC
        assert cluster.get_json(pre + "tables/%s/manifest" % NEW)["format"] == "yaml"
        if fmt == "yaml":
            probe(cluster, "abort", f)
            cluster.delete(pre + "rollout/active")
            cluster.delete(pre + "rollout/history/", prefix=True)
    d = driver(cluster, f, "drv-a")
    try:
        rec = finished(cluster, f)
    finally:
        stop(d)
    assert rec["state"] == "completed", rec
    assert [n.running for n in nodes] == [NEW] * 3


def test_history_is_read_in_bounds_and_pruned(cluster, fac):
    """History records of a big facility are 100 KiB and more, and were
    never pruned: one range of them all went past the client's 8 MiB reply
    bound, and `fleet history` and `fleet apply --wait` failed for good.
    Now the history is read record by record up to a byte budget, and the
    oldest records beyond 200 go when a rollout finishes."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f) + "rollout/history/"
    for i in range(30):  # 30 x 300 KB: 9 MB, the oldest ids
        cluster.put(pre + "r-%013d-%04x" % (1000 + i, i), b'"' + b"x" * 300000 + b'"')
    rc, out, err = probe(cluster, "history", f)
    assert rc == 0, (out, err)
    assert 1 <= out["count"] < 30 and out["rollouts"][0]["error"]["code"] == "invalid", out["count"]
    for i in range(180):
        cluster.put(pre + "r-%013d-%04x" % (2000 + i, i), b"{}")
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 1, "wave": 2, "sync_timeout_s": 10}')
    assert rc == 0, (out, err)
    rid = out["rollout"]["id"]
    d = driver(cluster, f, "drv-a")
    try:
        wait_for(lambda: cluster.get(pre + rid) is not None, what="rollout finished")
    finally:
        stop(d)
    keys = sorted(cluster.get(pre, prefix=True))
    assert len(keys) == 200 and keys[-1] == pre + rid, len(keys)
    assert keys[0] == pre + "r-%013d-%04x" % (1011, 11)  # 211 records: the 11 oldest went
    rc, out, err = probe(cluster, "history", f)
    assert rc == 0 and out["rollouts"][0]["id"] == rid and out["rollouts"][0]["state"] == "completed"


def test_member_killed_mid_rollout(cluster, fac):
    f, nodes, doc = fac
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 2, "wave": 2, "sync_timeout_s": 20}')
    assert rc == 0
    d = driver(cluster, f, "drv-a")
    try:
        wait_for(lambda: nodes[0].running == NEW, what="canary on NEW")
        cluster.kill(0)
        rec = finished(cluster, f)
    finally:
        stop(d)
        cluster.start(0)
    assert rec["state"] == "completed", rec
    assert [n.running for n in nodes] == [NEW] * 3


def test_node_vanishes(cluster, fac):
    """A node of the second wave disappears (its lease expires): skipped,
    the rollout completes; back, it follows desired (the new table)."""
    f, nodes, doc = fac
    nodes[2].up = False
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 1, "wave": 1, "sync_timeout_s": 20}')
    assert rc == 0
    # It is in the plan only if it still reports when the rollout starts.
    d = driver(cluster, f, "drv-a")
    try:
        rec = finished(cluster, f)
    finally:
        stop(d)
    assert rec["state"] == "completed"
    st = {n["name"]: n["status"] for n in rec["nodes"]}
    assert st["n1"] == "done" and st["n2"] == "done"
    assert st.get("n3") in (None, "lost"), st
    nodes[2].up = True
    wait_for(lambda: nodes[2].running == NEW, what="n3 back, on desired")


def lease_of(cluster, key):
    """The lease @key is held on (0: none), or None if there is no @key."""
    r = cluster.call("/v3/kv/range", {"key": etcdlab._b64(key)})
    kvs = r.get("kvs", [])
    return int(kvs[0].get("lease", 0)) if kvs else None


def test_sim_node_replaces_a_lost_lease(cluster, fac):
    """A node's lease revoked behind its back (as if it had expired): its
    keepalive answers TTL 0, it takes a new lease and reports again."""
    f, nodes, doc = fac
    key = etcdlab.fac_prefix(f) + "nodes/n2"
    old = lease_of(cluster, key)
    assert old and old == nodes[1].lease
    cluster.call("/v3/lease/revoke", {"ID": str(old)})

    def renewed():
        lease = lease_of(cluster, key)
        return lease if lease not in (None, 0, old) else None

    new = wait_for(renewed, timeout=10, what="n2 reports on a new lease")
    assert nodes[1].lease == new
    assert cluster.get_json(key)["node"] == "n2"


def test_garbage_active_is_reported(cluster, fac):
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    cluster.put(pre + "rollout/active", '{"schema": 9, "id": "x"}')
    rev = cluster.revision()
    d = driver(cluster, f, "drv-a", seconds=3)
    out, err = d.communicate(timeout=30)
    st = json.loads(out.strip().splitlines()[-1])
    assert st["paused"] is True and "newer" in st["last_error"], st
    # Nothing but the leader key and node reports were written.
    assert cluster.get(pre + "pins/", prefix=True) == {}
    assert cluster.get_json(pre + "desired")["table"] == OLD
    assert all(n.applied == [] for n in nodes)
    rc, out, _ = probe(cluster, "abort", f)
    assert rc == 1 and out["code"] == "unsupported_schema", out
    assert cluster.revision() >= rev
    cluster.delete(pre + "rollout/active")


def test_large_table_in_chunks(cluster, fac, tmp_path):
    """A table over one etcd request (768 KiB): chunks and manifest first,
    then the record; the chunks add up to the document."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    big = b"version: 1\n" + b"# padding padding padding padding padding padding padding\n" * 20000
    assert len(big) > 1100000
    p = tmp_path / "big.yaml"
    p.write_bytes(big)
    rc, out, err = probe(cluster, "create", f, str(p))
    assert rc == 0, (out, err)
    h = fnv64(big)
    m = cluster.get_json(pre + "tables/%s/manifest" % h)
    assert m["len"] == len(big) and m["chunks"] == 3 and m["format"] == "yaml"
    chunks = cluster.get(pre + "tables/%s/chunk/" % h, prefix=True)
    assert b"".join(chunks[k] for k in sorted(chunks)) == big
    # Busy: a second one is refused before its (large) table is written.
    p2 = tmp_path / "big2.yaml"
    p2.write_bytes(big + b"# 2\n")
    rc, out, _ = probe(cluster, "create", f, str(p2))
    assert rc == 1 and out["code"] == "rollout_in_progress"
    assert cluster.get(pre + "tables/%s/" % fnv64(big + b"# 2\n"), prefix=True) == {}
    cluster.delete(pre + "rollout/active")


def test_facility_role_confines_rollouts(tmp_path):
    """etcd's auth with a role per facility: facility a's user creates and
    drives a's rollouts, and can touch nothing of b's."""
    with etcdlab.Cluster(tmp_path / "etcd", name="frauth", auth=True, facilities=("fr-a", "fr-b")) as c:
        ua = {"ETCD_USER": "fleet-fr-a", "ETCD_PASSWORD": c.password("fleet-fr-a")}
        for f in ("fr-a", "fr-b"):
            c.put(etcdlab.fac_prefix(f) + "desired",
                  {"schema": 1, "facility": f, "table": OLD, "rollout": None, "updated_at": 0})
        doc = tmp_path / "new.yaml"
        doc.write_bytes(NEW_DOC)
        rc, out, err = probe(c, "create", "fr-a", str(doc), **ua)
        assert rc == 0, (out, err)
        rc, out, err = probe(c, "create", "fr-b", str(doc), **ua)
        assert rc == 1 and out["code"] == "etcd_error" and "permission denied" in out["message"], out
        assert c.get(etcdlab.fac_prefix("fr-b") + "rollout/active") is None
        assert c.get(etcdlab.fac_prefix("fr-b") + "tables/", prefix=True) == {}
        # a's driver (no node reports: nothing to roll out to) finishes a's rollout ...
        d = driver(c, "fr-a", "drv-a", seconds=4, **ua)
        out, err = d.communicate(timeout=30)
        assert d.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["leader"] is True
        h = c.get(etcdlab.fac_prefix("fr-a") + "rollout/history/", prefix=True)
        assert [json.loads(v)["abort"]["gate"] for v in h.values()] == ["no_nodes"]
        # ... and cannot lead b's.
        d = driver(c, "fr-b", "drv-a", seconds=3, **ua)
        out, err = d.communicate(timeout=30)
        assert d.returncode == 0, err
        st = json.loads(out.strip().splitlines()[-1])
        assert st["leader"] is False and "permission denied" in st["last_error"], st


def test_whole_cluster_stopped_mid_rollout(cluster, fac):
    """etcd gone while the canary bakes: the driver pauses (it says so and
    writes nothing it has not read afresh), then resumes and completes;
    no node is reverted or promoted blind (each changed exactly once)."""
    f, nodes, doc = fac
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 3, "wave": 2, "sync_timeout_s": 30}')
    assert rc == 0
    pre = etcdlab.fac_prefix(f)
    d = driver(cluster, f, "drv-a", lease=10)
    try:
        # The record's own phase, not the node's: a node on NEW may not
        # have been read yet, and the wave still be syncing.
        wait_for(lambda: (cluster.get_json(pre + "rollout/active") or {}).get("state") == "baking",
                 what="the canary's wave baking")
        cluster.stop_all()
        time.sleep(4)
        cluster.start_all()
        rec = finished(cluster, f)
    finally:
        out, err = stop(d)
    assert rec["state"] == "completed", rec
    assert "paused" in err, err[-2000:]
    # The credit is logged for the phase the record is in at the first look
    # after the outage: baking, unless the bake's end was stepped just
    # before the members stopped.
    assert re.search(r"etcd was out of reach for [0-9.]+ s: the (baking|syncing) phase's clock is moved on", err), err[-3000:]
    assert all(n.applied == [NEW] for n in nodes), [n.applied for n in nodes]


def test_sync_timeout_does_not_run_while_etcd_is_down(cluster, fac):
    """A wave's nodes report through etcd: while it is down none can say it
    is in sync, and that time is not theirs. The canary n1 cannot apply
    NEW until etcd comes back; etcd is down longer than the whole
    sync_timeout. The wave waits out the outage, then syncs and the
    rollout completes; the driver says how long it gave back. Without the
    credit, the first look after the outage aborted it on sync_timeout,
    blaming n1."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    nodes[0].stuck.add(NEW)
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 1, "wave": 2, "sync_timeout_s": 10}')
    assert rc == 0, (out, err)
    # A lease that outlives the outage (two thirds of it unanswered is
    # when the driver would give it up): the driver still leads when etcd is
    # back. One that lapsed would wait out its old key as a follower, a
    # lease, and that wait counts (etcd answered then).
    d = driver(cluster, f, "drv-a", lease=60)
    try:
        wait_for(lambda: cluster.get(pre + "pins/n1") is not None, what="the canary pinned")
        rec = cluster.get_json(pre + "rollout/active")
        assert rec["state"] == "syncing" and rec["wave"] == 0, rec
        cluster.stop_all()
        time.sleep(13)  # longer than the sync_timeout, 10 s
        nodes[0].stuck.discard(NEW)  # n1 applies NEW as soon as it reads its pin
        cluster.start_all()
        rec = finished(cluster, f)
    finally:
        out, err = stop(d)
    assert rec["state"] == "completed", rec
    # A short outage may be logged first (a look between the first member
    # stopping and the last): the whole one is there too.
    credits = [float(x) for x in re.findall(r"etcd was out of reach for ([0-9.]+) s: the syncing phase's clock is moved on", err)]
    assert credits and max(credits) >= 12, err[-3000:]
    assert all(n.applied == [NEW] for n in nodes), [n.applied for n in nodes]


def test_leader_resumes_on_its_lease_after_an_outage(cluster, fac):
    """A leader that gave its leadership up unsure (etcd out of reach for
    two thirds of its lease) finds, when etcd is back, its lease alive
    (etcd extends every lease when its cluster comes back) and the leader
    key the one it created: it leads again on them at once, rather than
    waiting a whole lease for its own old key to lapse with nobody
    leading; and it drives a rollout on that leadership (its commits'
    leader compare holds)."""
    f, nodes, doc = fac
    key = etcdlab.fac_prefix(f) + "rollout/leader"

    def created():
        r = cluster.call("/v3/kv/range", {"key": etcdlab._b64(key)})
        kvs = r.get("kvs", [])
        return (int(kvs[0]["create_revision"]), int(kvs[0].get("lease", 0))) if kvs else None

    d = driver(cluster, f, "drv-a", lease=6)
    try:
        wait_for(lambda: leader_of(cluster, f) == "drv-a", what="drv-a leads")
        before = created()
        cluster.stop_all()
        time.sleep(7)  # past two thirds of the lease: the driver gives up
        cluster.start_all()
        rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 1, "wave": 2, "sync_timeout_s": 30}')
        assert rc == 0, (out, err)
        rec = finished(cluster, f)
        after = created()
    finally:
        out, err = stop(d)
    assert rec["state"] == "completed", rec
    assert "no longer the leader" in err, err[-3000:]
    assert re.search(r"drv-a leads the rollouts again: etcd kept its lease and leader key "
                     r"\(created at revision %d\)" % before[0], err), err[-3000:]
    assert "campaigns afresh" not in err, err[-3000:]
    assert after == before, (before, after)
    assert all(n.applied == [NEW] for n in nodes), [n.applied for n in nodes]


class LyingMember:
    """An HTTP front for one real member: it passes every call on, and
    answers one transaction it passed on (which etcd applied) with
    the gateway's 408 "grpc: the client connection is closing", as a
    member shutting down can. The client then tries the next member, where
    the transaction's compare meets the write already applied."""

    HOLD_S = 40  # under the client's 60 s timeout of the tests that hold

    def __init__(self, upstream, lie_on=None, hold=None):
        """@lie_on(request): whether to lie about this transaction (the
        request's JSON; the first one etcd applied by default), once; one
        whose compares failed (nothing applied) is answered as etcd did.
        @hold(): when given, the lie waits until it is true (at most
        HOLD_S), so that others act on the applied write before its writer
        retries; a member's error while it looks counts as not yet."""
        outer = self
        self.lied = threading.Event()
        lie_on = lie_on or (lambda req: True)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                req = urllib.request.Request(upstream + self.path, data=body, method="POST", headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=5) as r:
                        status, data = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, data = e.code, e.read()
                if (self.path == "/v3/kv/txn" and status == 200 and not outer.lied.is_set()
                        and json.loads(data).get("succeeded") and lie_on(json.loads(body))):
                    if hold:
                        wait_for(hold, timeout=outer.HOLD_S, what="what the lie waits for",
                                 catch=(OSError, ValueError, KeyError, RuntimeError))
                    outer.lied.set()
                    msg = "grpc: the client connection is closing"
                    status, data = 408, json.dumps({"error": msg, "code": 1, "message": msg}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_a_campaign_whose_answer_was_lost_leads(cluster, fac):
    """The leader key created by a member that then answered 408: the retry
    on the next member fails its compare on that key, on the driver's own
    lease. The driver leads (it once took it as another's key, kept that
    lease alive for ever, and nobody led), and drives a rollout."""
    f, nodes, doc = fac
    liar = LyingMember(cluster.url(0))
    d = driver(cluster, f, "drv-a", lease=6, endpoints=liar.url + "," + cluster.endpoints())
    try:
        wait_for(liar.lied.is_set, what="the campaign's transaction answered 408")
        rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 1, "wave": 2}')
        assert rc == 0, (out, err)
        rec = finished(cluster, f, timeout=45)
    finally:
        try:
            out, err = stop(d)
        finally:
            liar.close()
    assert rec["state"] == "completed", rec
    assert "drv-a leads the rollouts" in err, err[-3000:]
    assert json.loads(out.splitlines()[-1])["leader"] is True, out


def test_a_create_whose_answer_was_lost_is_its_own(cluster, fac):
    """The rollout record written by a member that then answered 408: the
    retry's compare meets the record with the id this create gave it, which
    is this create's own, not another rollout in progress."""
    f, nodes, doc = fac
    liar = LyingMember(cluster.url(0))
    try:
        rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1}', endpoints=liar.url + "," + cluster.endpoints())
    finally:
        liar.close()
    assert liar.lied.is_set()
    assert rc == 0, (out, err)
    active = cluster.get_json(etcdlab.fac_prefix(f) + "rollout/active")
    assert out["rollout"]["id"] == active["id"], (out, active)
    rc, out, err = probe(cluster, "abort", f)
    assert rc == 0, (out, err)


def puts_under(req, part):
    """Whether the transaction @req puts, on success, a key holding @part."""
    return any(part in base64.b64decode(op.get("request_put", {}).get("key", "")).decode("utf-8", "replace")
               for op in req.get("success", []))


def test_a_step_whose_answer_was_lost_is_its_own(cluster, fac):
    """The leader's commit of the rollout's end (the record to history)
    applied by a member that then answered 408: the retry's compare meets
    the record the commit wrote, byte for byte. The leader takes it as its
    own step: it logs the end and counts the commit (it once took it for
    another writer's, and the end went unlogged and uncounted)."""
    f, nodes, doc = fac
    liar = LyingMember(cluster.url(0), lie_on=lambda req: puts_under(req, "/rollout/history/"))
    d = driver(cluster, f, "drv-a", lease=6, endpoints=liar.url + "," + cluster.endpoints())
    try:
        wait_for(lambda: leader_of(cluster, f) == "drv-a", what="drv-a leads")
        rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 1, "wave": 2}')
        assert rc == 0, (out, err)
        rec = finished(cluster, f, timeout=60)
        wait_for(liar.lied.is_set, what="the end's commit answered 408")
    finally:
        try:
            out, err = stop(d)
        finally:
            liar.close()
    assert rec["state"] == "completed", rec
    assert re.search(r"fleet rollout %s \(%s\): completed" % (re.escape(rec["id"]), re.escape(f)), err), err[-3000:]
    assert "changed since it was read" not in err, err[-3000:]
    # create's record aside, every write of the record is one of this
    # leader's commits (the lost answer's among them)
    assert json.loads(out.splitlines()[-1])["commits"] == rec["writes"] - 1, (out, rec)


def test_an_abort_whose_answer_was_lost_is_done(cluster, fac):
    """An operator's abort written by a member that then answered 408."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1}')
    assert rc == 0, (out, err)
    liar = LyingMember(cluster.url(0))
    try:
        rc, out, err = probe(cluster, "abort", f, endpoints=liar.url + "," + cluster.endpoints())
    finally:
        liar.close()
    assert liar.lied.is_set()
    assert rc == 0, (out, err)
    assert out["rollout"]["abort_requested"] is True, out
    assert cluster.get_json(pre + "rollout/active")["abort_requested"] is True


def test_a_create_answered_after_its_rollout_ended_is_not_made_again(cluster, fac):
    """A create applied by a member that answered only after the rollout
    had been aborted and ended (held, then 408): the retry on the next
    member finds rollout/active free again and desired as it read it (an
    aborted rollout promotes nothing), and would create the rollout a
    second time but for its compare on the history key. It answers with
    the ended record instead, and nothing more is created."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    d = driver(cluster, f, "drv-a")
    liar = LyingMember(cluster.url(0), lie_on=lambda req: puts_under(req, "/rollout/active"),
                       hold=lambda: history(cluster, f))
    create = None
    try:
        wait_for(lambda: leader_of(cluster, f) == "drv-a", what="drv-a leads")
        env = dict(os.environ, ETCD_ENDPOINTS=liar.url + "," + cluster.endpoints(), ETCD_TIMEOUT_MS="60000")
        create = subprocess.Popen([PROBE, "create", f, doc, '{"canary": 1, "bake_s": 30, "wave": 2}'], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: cluster.get(pre + "rollout/active"), what="the rollout is created")
        rc, out, err = probe(cluster, "abort", f)
        assert rc == 0, (out, err)
        out, err = create.communicate(timeout=90)
    finally:
        if create and create.poll() is None:
            create.kill()
            create.communicate()
        try:
            stop(d)
        finally:
            liar.close()
    assert liar.lied.is_set()
    assert create.returncode == 0, (out, err)
    answer = json.loads(out.strip().splitlines()[-1])
    done = history(cluster, f)
    assert len(done) == 1 and done[0]["state"] == "aborted", done
    assert answer["rollout"]["id"] == done[0]["id"] and answer["rollout"]["state"] == "aborted", answer
    assert cluster.get(pre + "rollout/active") is None
    assert [n.running for n in nodes] == [OLD] * 3


def test_an_abort_answered_after_the_leader_acted_on_it_is_done(cluster, fac):
    """An abort applied by a member that answered only after the leader had
    acted on it (held until the rollout is aborting or aborted, then 408):
    the retry's compare fails on a record that is no longer the one it
    wrote. The abort is done, not "already aborting"."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    rc, out, err = probe(cluster, "create", f, doc, '{"canary": 1, "bake_s": 30, "wave": 2}')
    assert rc == 0, (out, err)
    d = driver(cluster, f, "drv-a")

    def acted():
        rec = cluster.get_json(pre + "rollout/active")
        return history(cluster, f) or (rec and rec["state"] in ("aborting", "aborted"))

    liar = LyingMember(cluster.url(0), hold=acted)
    try:
        wait_for(lambda: nodes[0].running == NEW, what="canary on NEW")
        rc, out, err = probe(cluster, "abort", f, endpoints=liar.url + "," + cluster.endpoints(),
                             timeout=90, ETCD_TIMEOUT_MS="60000")
        rec = finished(cluster, f, timeout=60)
    finally:
        try:
            stop(d)
        finally:
            liar.close()
    assert liar.lied.is_set()
    assert rc == 0, (out, err)
    assert out["rollout"]["abort_requested"] is True, out
    assert out["rollout"]["state"] in ("aborting", "aborted"), out
    assert rec["state"] == "aborted" and rec["abort_requested"] is True, rec
    assert [n.running for n in nodes] == [OLD] * 3


def test_an_unpin_whose_answer_was_lost_unpinned(cluster, fac):
    """A pin deleted by a member that then answered 408: the retry's
    compare fails on the pin's absence. The unpin says it unpinned the
    node (it once answered that the node had no pin)."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    etcdlab.set_pin(cluster, f, "n2", NEW, rollout=None)
    liar = LyingMember(cluster.url(0))
    try:
        rc, out, err = probe(cluster, "unpin", f, "n2", endpoints=liar.url + "," + cluster.endpoints())
    finally:
        liar.close()
    assert liar.lied.is_set()
    assert rc == 0, (out, err)
    assert out["unpinned"]["node"] == "n2" and out["unpinned"]["table"] == NEW, out
    assert cluster.get(pre + "pins/n2") is None


def test_stray_pins_owners_unpin_and_sweep(cluster, fac):
    """Pins no active rollout owns: each classified (finished, unknown,
    operator, unreadable); unpin refuses the active rollout's own pin and
    deletes the others; the leader deletes only a finished rollout's, after
    its grace, and leaves the rest (they may be meant)."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    cluster.put(pre + "rollout/history/r-1-0001", {"id": "r-1-0001", "state": "aborted"})
    etcdlab.set_pin(cluster, f, "n1", NEW, rollout="r-1-0001")  # finished
    etcdlab.set_pin(cluster, f, "n2", NEW, rollout=None)  # by hand
    etcdlab.set_pin(cluster, f, "n3", NEW, rollout="r-9-nobody")  # unknown
    cluster.put(pre + "pins/n4", '{"schema": 1, "table": 7}')  # hostile
    rc, out, err = probe(cluster, "pins", f)
    assert rc == 0, err
    owners = {p["node"]: (p["owner"], p["stray"]) for p in out["pins"]}
    assert owners == {"n1": ("finished", True), "n2": ("operator", True),
                      "n3": ("unknown", True), "n4": ("unreadable", True)}, out
    assert out["active"] is None
    d = driver(cluster, f, "d1", seconds=8, UNPIN_AFTER_S="1")
    wait_for(lambda: cluster.get(pre + "pins/n1") is None, timeout=15, what="finished pin deleted")
    out_d, _ = stop(d)
    st = json.loads(out_d.splitlines()[-1])
    assert st["unpinned"] == 1 and st["stray_pins"] == 3, st
    assert all(cluster.get(pre + "pins/" + n) is not None for n in ("n2", "n3", "n4"))
    # The active rollout's own pin is not unpinned behind its back.
    rc, out, err = probe(cluster, "create", f, doc)
    assert rc == 0, (out, err)
    rid = out["rollout"]["id"]
    etcdlab.set_pin(cluster, f, "n3", NEW, rollout=rid)
    rc, out, _ = probe(cluster, "pins", f)
    assert {p["node"]: p["owner"] for p in out["pins"]}["n3"] == "active" and out["active"] == rid
    rc, out, _ = probe(cluster, "unpin", f, "n3")
    assert rc == 1 and out["code"] == "rollout_in_progress" and rid in out["message"], out
    assert cluster.get(pre + "pins/n3") is not None
    for n in ("n2", "n4"):
        rc, out, _ = probe(cluster, "unpin", f, n)
        assert rc == 0 and out["unpinned"]["node"] == n, out
    # A pin of another schema may be the running rollout's own: refused
    # while a rollout is active, unless it names another rollout.
    cluster.put(pre + "pins/n1", {"schema": 2, "table": NEW})
    rc, out, _ = probe(cluster, "unpin", f, "n1")
    assert rc == 1 and out["code"] == "rollout_in_progress" and rid in out["message"], out
    cluster.put(pre + "pins/n1", {"schema": 2, "table": NEW, "rollout": "r-1-0001"})
    rc, out, _ = probe(cluster, "unpin", f, "n1")
    assert rc == 0 and out["unpinned"]["owner"] == "unreadable", out
    rc, out, _ = probe(cluster, "unpin", f, "n2")
    assert rc == 1 and out["code"] == "no_pin", out
    rc, out, _ = probe(cluster, "unpin", f, "../x")
    assert rc == 1 and out["code"] == "bad_request", out
    # A forged active record without a readable id: nothing is called
    # finished or unpinned on a guess.
    cluster.put(pre + "rollout/active", '{"schema": 1, "id": 5}')
    etcdlab.set_pin(cluster, f, "n1", NEW, rollout="r-1-0001")
    rc, out, _ = probe(cluster, "pins", f)
    assert {p["node"]: p["owner"] for p in out["pins"]}["n1"] == "unknown", out
    rc, out, _ = probe(cluster, "unpin", f, "n1")
    assert rc == 1 and out["code"] == "invalid_fleet_key", out
    # One holding "id" twice is as unreadable as for the driver's parser.
    cluster.put(pre + "rollout/active", '{"schema": 1, "id": "r-1-0001", "id": "r-2-0002"}')
    rc, out, _ = probe(cluster, "pins", f)
    assert out["active"] is None and {p["node"]: p["owner"] for p in out["pins"]}["n1"] == "unknown", out
    cluster.delete(pre + "rollout/active")


def test_hostile_reports_read_alone_and_said_unreadable(cluster, fac):
    """Reports under nodes/ whose values together pass the client's reply
    bound (six of 1.4 MB against 8 MiB, found by a hostile probe: fleet
    status failed and every rollout stopped) are read key by key: the
    nodes are listed, each hostile key unreadable with the reason."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    try:
        # Together past the bound (64 KiB here, for 8 MiB), the last
        # alone too.
        for i, size in enumerate((30000, 30000, 70000)):
            cluster.put(pre + "nodes/zz%d" % i, "x" * size)
        rc, out, err = probe(cluster, "nodes", f, ETCD_MAX_REPLY="65536")
        assert rc == 0, (out, err)
        got = {n["name"]: n for n in out["nodes"]}
        assert {"n1", "n2", "n3"} <= set(got) and not any(got[n]["unreadable"] for n in ("n1", "n2", "n3")), out
        assert all(got["zz%d" % i]["unreadable"] for i in range(3)), out
        assert "expected" in got["zz0"]["why"] and got["zz2"]["why"].startswith("value: "), out
        assert sum(1 for v in out["view"] if "error" in v) == 3, out["view"]
    finally:
        for i in range(3):
            cluster.delete(pre + "nodes/zz%d" % i)
    # A well-formed report on no lease (a leftover, or written by hand) was
    # a live node for good, and could be picked as a canary: unreadable.
    ghost = dict(json.loads(cluster.get(pre + "nodes/n1")), node="g1")
    try:
        cluster.put(pre + "nodes/g1", ghost)
        rc, out, err = probe(cluster, "nodes", f)
        assert rc == 0, (out, err)
        g = [n for n in out["nodes"] if n["name"] == "g1"][0]
        assert g["unreadable"] and "on no lease" in g["why"], g
    finally:
        cluster.delete(pre + "nodes/g1")


def test_hostile_pins_bounded_and_left_alone(cluster, fac):
    """Hostile keys under pins/ never fail the others, never become another
    node's name, never make the leader log every look; the sweep deletes at
    most PINS_UNPIN_PER_LOOK (16) pins a look, the rest at the next ones."""
    f, nodes, doc = fac
    pre = etcdlab.fac_prefix(f)
    cluster.put(pre + "rollout/history/r-1-0002", {"id": "r-1-0002", "state": "done"})
    # Values that together pass the client's reply bound (64 KiB here, for
    # 8 MiB and megabytes of values): each is read alone, and one over a
    # pin's 4 KiB is unreadable with the reason.
    for i in range(3):
        cluster.put(pre + "pins/big%d" % i, "x" * 30000)
    cluster.put(pre + "pins/mid", "y" * 5000)
    long_key = "a" * 65
    etcdlab.set_pin(cluster, f, long_key, NEW, rollout="r-1-0002")  # finished, key no name
    etcdlab.set_pin(cluster, f, "N5", NEW, rollout="r-1-0002")  # upper case
    etcdlab.set_pin(cluster, f, "a" * 64, NEW, rollout=None)  # what the long key would cut to
    rc, out, err = probe(cluster, "pins", f, ETCD_MAX_REPLY="65536")
    assert rc == 0, (out, err)
    assert out["values_alone"] is True and out["truncated"] is False, out
    bigs = [p for p in out["pins"] if (p["node"] or "").startswith("big")]
    assert len(bigs) == 3 and all(p["owner"] == "unreadable" and "value" in p["error"] for p in bigs), out
    mid = [p for p in out["pins"] if p["node"] == "mid"][0]
    assert mid["owner"] == "unreadable" and "5000 bytes" in mid["error"], mid
    bad = [p for p in out["pins"] if p["node"] is None]
    assert len(bad) == 2 and all(p["owner"] == "unreadable" and "key" in p["error"] for p in bad), out
    assert [p["owner"] for p in out["pins"] if p["node"] == "a" * 64] == ["operator"], out
    # A value past the reply bound (16 KiB here) does not keep its pin from an unpin:
    # its key alone gives the revision the delete compares.
    rc, out, err = probe(cluster, "unpin", f, "big2", ETCD_MAX_REPLY="16384")
    assert rc == 0 and out["unpinned"]["owner"] == "unreadable", (out, err)
    assert "value" in out["unpinned"]["error"], out
    assert cluster.get(pre + "pins/big2") is None
    # Read with the usual bound, and only the first pins: said truncated.
    rc, out, _ = probe(cluster, "pins", f, PINS_MAX="3")
    assert rc == 0 and len(out["pins"]) == 3 and out["truncated"] is True, out
    # 20 pins of one finished rollout: deleted 16 at a look, then the rest;
    # the keys that name no node and the operator's stay, said once.
    for i in range(20):
        etcdlab.set_pin(cluster, f, "s%02d" % i, NEW, rollout="r-1-0002")
    left = lambda: len([k for k in cluster.get(pre + "pins/", prefix=True)
                        if k.rsplit("/", 1)[1].startswith("s")])
    samples = []
    d = driver(cluster, f, "d1", seconds=30, UNPIN_AFTER_S="1")

    def swept():
        samples.append((time.time(), left()))
        return samples[-1][1] == 0
    wait_for(swept, timeout=25, what="the finished rollout's pins deleted")
    time.sleep(4)  # more looks: nothing said again
    out_d, err_d = stop(d)
    # At most 16 a look. Looks come every 3 s and a look's deletions take
    # milliseconds, so what is left between looks holds for a second or
    # more (a plateau), while counts seen within a look pass at once. From
    # plateau to plateau at most 16 went; some plateau lies between 20 and
    # 0 (not all at once). Not "exactly 16, then 4": a lease lost under
    # load ends a look early, by design.
    plateaus, start = [20], 0
    for i in range(1, len(samples) + 1):
        if i == len(samples) or samples[i][1] != samples[start][1]:
            if samples[i - 1][0] - samples[start][0] >= 1.0 and samples[start][1] != plateaus[-1]:
                plateaus.append(samples[start][1])
            start = i
    if plateaus[-1] != 0:
        plateaus.append(0)
    assert all(a - b <= 16 for a, b in zip(plateaus, plateaus[1:])), (plateaus, samples)
    assert any(0 < v < 20 for v in plateaus), (plateaus, samples)
    st = json.loads(out_d.splitlines()[-1])
    assert st["unpinned"] == 20 and st["pins_truncated"] is False, st
    for k in (long_key, "N5", "a" * 64, "big0", "mid"):
        assert cluster.get(pre + "pins/" + k) is not None, k
    assert "cannot delete" not in err_d, err_d[-2000:]
    # Each stray pin is said once, however many looks (some ten here); once
    # more only if the driver lost its lease under load and led again.
    assert 1 <= err_d.count("pins/N5 ") <= 2 and 1 <= err_d.count("node big0 ") <= 2, err_d[-3000:]
