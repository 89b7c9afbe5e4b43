"""The etcd client (control/ctl_etcd.c) against a real 3-member etcd cluster
(tests/lib/etcdlab.py) and against fake endpoints that answer garbage,
too much, or nothing: every call ends within its timeout with an error,
never a crash. Driven through tests/unit/etcd_probe.c, one JSON line per
result."""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import etcdlab  # noqa: E402

REGIOND = os.environ.get("REGIOND", "build/control/regiond")
PROBE = os.environ.get("ETCD_PROBE") or os.path.join(
    os.path.dirname(os.path.abspath(REGIOND)), "..", "tests", "unit", "etcd_probe")

pytestmark = [
    pytest.mark.skipif(not etcdlab.available(), reason="needs etcd and etcdctl (etcd-server, etcd-client)"),
    pytest.mark.skipif(not os.path.exists(PROBE), reason="etcd_probe not built"),
]


def probe(endpoints, *args, timeout=30, **env):
    # 5 s a request, as the harness's own calls: on a loaded machine an
    # election or a slow fsync can hold a put past 1 s, and the client's
    # retry of a create or cas that did commit fails its compare.
    e = dict(os.environ, ETCD_ENDPOINTS=endpoints, ETCD_TIMEOUT_MS=str(env.pop("timeout_ms", 5000)))
    e.update({k: str(v) for k, v in env.items()})
    t0 = time.monotonic()
    p = subprocess.run([PROBE, *map(str, args)], capture_output=True, text=True, env=e, timeout=timeout)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    assert p.returncode in (0, 1, 3), (p.returncode, p.stdout, p.stderr)
    return p.returncode, lines, time.monotonic() - t0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = etcdlab.Cluster(tmp_path_factory.mktemp("etcd"), name="fnclient")
    yield c
    c.close()


def test_put_range_prefix_delete(cluster):
    ep = cluster.endpoints()
    rc, out, _ = probe(ep, "put", "/t/a/1", "one")
    assert rc == 0
    rev1 = out[0]["revision"]
    rc, out, _ = probe(ep, "put", "/t/a/2", "two")
    probe(ep, "put", "/t/b", "other")
    rc, out, _ = probe(ep, "get", "/t/a/", "prefix")
    assert rc == 0
    assert [(kv["key"], kv["value"]) for kv in out[0]["kvs"]] == [("/t/a/1", "one"), ("/t/a/2", "two")]
    # what it was at an earlier revision
    rc, out, _ = probe(ep, "get", "/t/a/", "prefix", rev1)
    assert [kv["key"] for kv in out[0]["kvs"]] == ["/t/a/1"]
    rc, out, _ = probe(ep, "get", "/t/none")
    assert rc == 0 and out[0]["kvs"] == []
    rc, out, _ = probe(ep, "del", "/t/a/", "prefix")
    assert rc == 0 and out[0]["deleted"] == 2
    assert cluster.get("/t/b") == b"other"


def test_binary_and_odd_keys_roundtrip(cluster):
    ep = cluster.endpoints()
    val = "x" * 1000 + "é\"\\{}"
    probe(ep, "put", "/t/odd key é", val)
    rc, out, _ = probe(ep, "get", "/t/odd key é")
    assert out[0]["kvs"][0]["value"] == val
    assert cluster.get("/t/odd key é") == val.encode()


def test_txn_create_only_once(cluster):
    ep = cluster.endpoints()
    rc, out, _ = probe(ep, "create", "/t/rollout/active", "first")
    assert rc == 0 and out[0]["succeeded"] == 1
    rc, out, _ = probe(ep, "create", "/t/rollout/active", "second")
    assert rc == 0 and out[0]["succeeded"] == 0
    # the failure branch read what won
    assert out[0]["kvs"][0]["value"] == "first"
    mod = out[0]["kvs"][0]["mod_revision"]
    rc, out, _ = probe(ep, "cas", "/t/rollout/active", mod - 1, "stale")
    assert out[0]["succeeded"] == 0
    rc, out, _ = probe(ep, "cas", "/t/rollout/active", mod, "next")
    assert out[0]["succeeded"] == 1
    assert cluster.get("/t/rollout/active") == b"next"


def test_txn_compares_the_lease(cluster):
    """A put compared on the lease its key is on: the rollout leader's
    commits, so that a put over its key on another lease (which keeps the
    key's create_revision) stops them at once."""
    ep = cluster.endpoints()
    leases = [probe(ep, "lease", 30)[1][0]["id"] for _ in range(2)]
    probe(ep, "put", "/t/leader", "a", leases[0])
    rc, out, _ = probe(ep, "leasecas", "/t/leader", leases[1], "b")
    assert rc == 0 and out[0]["succeeded"] == 0
    assert out[0]["kvs"][0]["lease"] == leases[0]
    rc, out, _ = probe(ep, "leasecas", "/t/leader", leases[0], "c")
    assert rc == 0 and out[0]["succeeded"] == 1
    assert cluster.get("/t/leader") == b"c"
    # A key on no lease compares as lease 0.
    probe(ep, "put", "/t/unleased", "u")
    assert probe(ep, "leasecas", "/t/unleased", leases[0], "x")[1][0]["succeeded"] == 0
    assert probe(ep, "leasecas", "/t/unleased", 0, "y")[1][0]["succeeded"] == 1
    for lid in leases:
        probe(ep, "revoke", lid)


def test_lease_keepalive_revoke(cluster):
    ep = cluster.endpoints()
    rc, out, _ = probe(ep, "lease", 5)
    assert rc == 0 and 0 < out[0]["ttl"] <= 5
    lid = out[0]["id"]
    probe(ep, "put", "/t/leased", "v", lid)
    rc, out, _ = probe(ep, "get", "/t/leased")
    assert out[0]["kvs"][0]["lease"] == lid
    rc, out, _ = probe(ep, "revoke", lid)
    assert rc == 0
    assert cluster.get("/t/leased") is None
    rc, out, _ = probe(ep, "keepalive", lid)
    assert rc == 1 and out[0]["code"] == "etcd_error" and "expired" in out[0]["message"]


def test_dead_endpoint_first_fails_over(cluster):
    dead = "http://127.0.0.1:%d" % etcdlab.free_ports(1)[0]
    rc, out, _ = probe(dead + "," + cluster.endpoints(), "put", "/t/fo", "1")
    assert rc == 0
    assert out[-1]["endpoint"] != dead


def test_all_dead_is_unavailable_within_timeout():
    ports = etcdlab.free_ports(2)
    # ends (the probe's own timeout is a liveness bound, not a measure)
    rc, out, _ = probe(",".join("http://127.0.0.1:%d" % p for p in ports), "get", "/x", timeout=20)
    assert rc == 1 and out[0]["code"] == "etcd_unavailable"


def test_bad_endpoints_refused():
    for bad in ("", "ftp://x:1", "http://host", "http://h:1/path", ",".join(["http://a:1"] * 9)):
        rc, out, _ = probe(bad, "get", "/x")
        assert rc == 1 and out[0]["error"] == "create" and out[0]["code"] == "invalid", bad


def test_watch_resumes_after_member_killed(cluster):
    """The watch runs on member 0; it is killed mid-stream and changes go on
    through the others: the watch moves over and sees every change exactly
    once, in order."""
    ep = cluster.endpoints()
    start = cluster.put("/t/w/0", "0") + 1
    p = subprocess.Popen([PROBE, "watch", "/t/w/", str(start), "6", "prefix"], stdout=subprocess.PIPE,
                         text=True, env=dict(os.environ, ETCD_ENDPOINTS=ep, ETCD_TIMEOUT_MS="1000"))
    try:
        assert json.loads(p.stdout.readline()) == {"watching": True}
        for i in (1, 2, 3):
            cluster.put("/t/w/%d" % i, str(i))
        seen = [json.loads(p.stdout.readline()) for _ in range(3)]
        cluster.kill(0)
        for i in (4, 5, 6):
            cluster.put("/t/w/%d" % i, str(i))
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        cluster.start(0)
    lines = seen + [json.loads(x) for x in out.splitlines()]
    events = [x for x in lines if "key" in x]
    assert [e["key"] for e in events] == ["/t/w/%d" % i for i in range(1, 7)]
    revs = [e["mod_revision"] for e in events]
    assert revs == sorted(set(revs))
    assert p.returncode == 0


def test_watch_compacted_is_reported(cluster):
    ep = cluster.endpoints()
    first = cluster.put("/t/c", "1")
    cluster.put("/t/c", "2")
    cluster.compact()
    rc, out, _ = probe(ep, "watch", "/t/c", first, 1)
    assert rc == 3
    assert out[-1]["code"] == "etcd_compacted"


class Fake:
    """A TCP server on loopback that answers every connection with @mode:
    'garbage' (HTTP 200, not JSON), 'huge' (an endless body), 'hang'
    (reads, never answers), 'close' (closes at once), 'badjson' (HTTP 200
    JSON of the wrong shape); and etcd's gateway errors of a member out
    of reach: 'closing' (HTTP 408, gRPC canceled: a member shutting down),
    'deadline' (HTTP 504, gRPC deadline exceeded), 'noleader' (HTTP 503,
    gRPC unavailable), 'stream' (a streaming call's error, nested, as the
    gateway answers a lease keepalive: HTTP 200, gRPC unavailable)."""

    GATEWAY = {
        "closing": (408, "Request Timeout", 1, "grpc: the client connection is closing"),
        "deadline": (504, "Gateway Timeout", 4, "context deadline exceeded"),
        "noleader": (503, "Service Unavailable", 14, "etcdserver: no leader"),
        "stream": (200, "OK", 14, "etcdserver: server stopped"),
    }

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stop = False
        self.conns = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, c):
        try:
            c.settimeout(1)
            try:
                c.recv(65536)
            except OSError:
                pass
            if self.mode == "garbage":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n\x00\xff{not json}")
            elif self.mode == "badjson":
                body = b'{"header":{"revision":"abc"},"kvs":"nope","ID":[1]}\n'
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            elif self.mode in self.GATEWAY:
                http, text, code, msg = self.GATEWAY[self.mode]
                if self.mode == "stream":
                    body = json.dumps({"error": {"grpc_code": code, "http_code": 503, "message": msg,
                                                 "http_status": "Service Unavailable"}}).encode()
                else:
                    body = json.dumps({"error": msg, "code": code, "message": msg}).encode()
                c.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                          % (http, text.encode(), len(body), body))
            elif self.mode == "huge":
                c.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
                chunk = b"{" * 65536
                while not self.stop:
                    c.sendall(chunk)
            elif self.mode == "hang":
                while not self.stop:
                    time.sleep(0.1)
            c.close()
        except OSError:
            pass

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.mark.parametrize("mode", ["garbage", "badjson", "huge", "hang", "close"])
def test_fake_endpoint_is_an_error_within_timeout(mode):
    f = Fake(mode)
    try:
        for cmd in (["get", "/x"], ["put", "/x", "1"], ["lease", "5"], ["create", "/x", "1"]):
            # it ends with an error: a hang would trip the probe's timeout
            rc, out, _ = probe(f.url, *cmd, timeout=20, timeout_ms=800, ETCD_MAX_REPLY=1 << 20)
            assert rc == 1, (mode, cmd, out)
            assert out[0]["code"] in ("etcd_error", "etcd_unavailable"), out
    finally:
        f.close()


@pytest.mark.parametrize("mode", ["closing", "deadline", "noleader", "stream"])
def test_member_out_of_reach_is_unavailable(mode):
    """A member that answers, but only that it cannot serve (shutting
    down, a deadline passed, no leader), is out of reach, not a refusal:
    callers pause and keep what they hold (a rollout leader its lease for
    two thirds of it) instead of treating it as etcd's verdict."""
    f = Fake(mode)
    try:
        for cmd in (["get", "/x"], ["put", "/x", "1"], ["lease", "5"], ["create", "/x", "1"],
                    ["keepalive", "7587"]):
            rc, out, _ = probe(f.url, *cmd, timeout=20, timeout_ms=800)
            assert rc == 1, (mode, cmd, out)
            assert out[0]["code"] == "etcd_unavailable", out
            assert Fake.GATEWAY[mode][3] in out[0]["message"], out
    finally:
        f.close()


@pytest.mark.parametrize("mode", ["garbage", "hang", "huge", "closing", "deadline", "noleader", "stream"])
def test_fake_endpoint_first_then_real_one(mode, cluster):
    f = Fake(mode)
    try:
        rc, out, _ = probe(f.url + "," + cluster.endpoints(), "put", "/t/after-fake", mode, timeout=20,
                              timeout_ms=800, ETCD_MAX_REPLY=1 << 20)
        assert rc == 0, out
        assert cluster.get("/t/after-fake") == mode.encode()
    finally:
        f.close()


def test_watch_on_hung_endpoint_moves_on(cluster):
    f = Fake("hang")
    start = cluster.put("/t/hw", "0") + 1
    p = subprocess.Popen([PROBE, "watch", "/t/hw", str(start), "1"], stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, ETCD_ENDPOINTS=f.url + "," + cluster.endpoints(),
                                  ETCD_TIMEOUT_MS="800"))
    try:
        assert json.loads(p.stdout.readline()) == {"watching": True}
        cluster.put("/t/hw", "1")
        out, _ = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
        f.close()
    lines = [json.loads(x) for x in out.splitlines()]
    assert any(x.get("code") == "etcd_unavailable" for x in lines)
    assert [x["value"] for x in lines if "key" in x] == ["1"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_tls_and_role_per_facility(tmp_path):
    with etcdlab.Cluster(tmp_path, tls=True, auth=True, facilities=["a", "b"], name="fnclienttls") as c:
        cert, key = c.pki.client("fleet-a")
        env = dict(ETCD_CA=c.pki.ca, ETCD_CERT=cert, ETCD_KEY=key, ETCD_USER="fleet-a",
                   ETCD_PASSWORD=c.password("fleet-a"))
        rc, out, _ = probe(c.endpoints(), "put", "/regionfwd/v1/fac/a/desired", "mine", **env)
        assert rc == 0, out
        rc, out, _ = probe(c.endpoints(), "put", "/regionfwd/v1/fac/b/desired", "theirs", **env)
        assert rc == 1 and out[0]["code"] == "etcd_error" and "permission denied" in out[0]["message"]
        assert c.get("/regionfwd/v1/fac/b/desired") is None
        # a wrong password, and no client certificate, are refused
        rc, out, _ = probe(c.endpoints(), "get", "/regionfwd/v1/fac/a/desired",
                           **dict(env, ETCD_PASSWORD="wrong"))
        assert rc == 1
        rc, out, _ = probe(c.endpoints(), "get", "/regionfwd/v1/fac/a/desired", ETCD_CA=c.pki.ca,
                           ETCD_USER="fleet-a", ETCD_PASSWORD=c.password("fleet-a"))
        assert rc == 1
