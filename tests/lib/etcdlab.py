"""A real etcd cluster for the fleet tests and bench/run (docs/fleet.md):
N members (3 by default) of Debian's etcd on loopback ports picked free,
each with a temporary data directory, a backend quota and fast heartbeat
and election timers, so a lost member is noticed in about a second.

Optional, as in production (docs/fleet.md, "etcd setup"):
- tls=True: a CA, a server certificate for 127.0.0.1 and client
  certificates made with openssl; clients must present one
  (--client-cert-auth).
- auth=True: etcd's own auth with a root user and, for each facility F in
  `facilities`, a user and role "fleet-F" that may read and write
  /regionfwd/v1/fac/F/ only. Users log in with a password (a token), also
  over TLS: etcd 3.4's JSON gateway refuses (HTTP 400) a client certificate
  that carries a CN when auth is on, because the CN cannot cross the
  gateway as the user. So client certificates here have no CN (they prove
  "a fleet client of this CA"), and the role comes from the user's password
  login (docs/fleet.md, "etcd setup").

Members can be killed (SIGKILL), stopped and started again one by one or
all together; everything started is stopped and removed on close(), at exit
and when a test fails (use it as a context manager or a pytest fixture).

    with etcdlab.Cluster(tmp_path) as c:
        c.put("/k", "v"); c.get("/k")
        c.kill(0); ...; c.start(0)
"""
import atexit
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ETCD = os.environ.get("ETCD", "etcd")
ETCDCTL = os.environ.get("ETCDCTL", "etcdctl")
ROOT_PASSWORD = "fleet-root-pw"


def available():
    return shutil.which(ETCD) is not None and shutil.which(ETCDCTL) is not None


def free_ports(n):
    """n distinct loopback TCP ports free now (held open until all are
    picked, so none is picked twice)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def fac_prefix(facility):
    return "/regionfwd/v1/fac/%s/" % facility


def _b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and client
    certificates by CN, all in @d."""

    def __init__(self, d):
        self.d = d
        os.makedirs(d, exist_ok=True)
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=fleet-test-ca", cwd=d)
        self.ca = os.path.join(d, "ca.pem")
        self.server_cert, self.server_key = self._issue(
            "server", "etcd", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "extendedKeyUsage=serverAuth,clientAuth\n")
        self.clients = {}

    def _issue(self, name, cn, ext, org="regionfwd-fleet"):
        d = self.d
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr",
                 "-subj", "/O=%s" % org + ("/CN=" + cn if cn else ""), cwd=d)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", name + ".pem", "-days", "2",
                 "-extfile", name + ".ext", cwd=d)
        return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")

    def client(self, name):
        """(cert, key) of a client certificate for @name: no CN (see above),
        the name in O= only."""
        if name not in self.clients:
            self.clients[name] = self._issue("client-" + name, None,
                                             "extendedKeyUsage=clientAuth\n", org=name)
        return self.clients[name]


class Member:
    def __init__(self, name, client_port, peer_port, data_dir, log_path):
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None


class Cluster:
    def __init__(self, tmp=None, members=3, tls=False, auth=False, facilities=(),
                 quota_bytes=256 << 20, name="fleetlab", listen_hosts=()):
        self._own_tmp = tmp is None
        self.tmp = tempfile.mkdtemp(prefix=name + "-") if tmp is None else str(tmp)
        os.makedirs(self.tmp, exist_ok=True)
        self.name = name
        self.tls = tls
        self.auth = auth
        self.quota = quota_bytes
        self.facilities = list(facilities)
        self.scheme = "https" if tls else "http"
        # Client ports also on these addresses (a veth's, for a node in a
        # network namespace), besides 127.0.0.1.
        self.listen_hosts = list(listen_hosts)
        self.pki = Pki(os.path.join(self.tmp, "pki")) if tls else None
        ports = free_ports(2 * members)
        self.members = []
        for i in range(members):
            mname = "%s%d" % (name, i)
            d = os.path.join(self.tmp, "etcd-" + mname)
            self.members.append(Member(mname, ports[2 * i], ports[2 * i + 1], d + ".data",
                                       d + ".log"))
        self._closed = False
        self._tokens = {}  # (member, user, password) -> token, see _token()
        atexit.register(self.close)
        try:
            self.start_all(first=True)
            if auth:
                self._setup_auth()
        except BaseException:
            self.close()
            raise

    # -- addresses ---------------------------------------------------------

    def url(self, i):
        return "%s://127.0.0.1:%d" % (self.scheme, self.members[i].client_port)

    def endpoints(self, members=None, host="127.0.0.1"):
        """The client URLs, comma-separated (regiond --fleet-endpoints)."""
        idx = range(len(self.members)) if members is None else members
        return ",".join(self.url(i).replace("127.0.0.1", host) for i in idx)

    def _initial_cluster(self):
        return ",".join("%s=http://127.0.0.1:%d" % (m.name, m.peer_port) for m in self.members)

    # -- processes ---------------------------------------------------------

    def _argv(self, m):
        listen = ",".join("%s://%s:%d" % (self.scheme, h, m.client_port)
                          for h in ["127.0.0.1"] + self.listen_hosts)
        argv = [ETCD, "--name", m.name, "--data-dir", m.data_dir,
                "--listen-client-urls", listen,
                "--advertise-client-urls", "%s://127.0.0.1:%d" % (self.scheme, m.client_port),
                "--listen-peer-urls", "http://127.0.0.1:%d" % m.peer_port,
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % m.peer_port,
                "--initial-cluster", self._initial_cluster(),
                "--initial-cluster-token", self.name + "-" + str(os.getpid()),
                "--initial-cluster-state", "new",
                # Fast failure detection for tests: a leader lost is replaced
                # within about a second.
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--quota-backend-bytes", str(self.quota),
                "--snapshot-count", "10000", "--log-level", "warn",
                "--logger", "zap",
                # The cheapest bcrypt etcd allows for the lab's users (their
                # hashes are made at "user add", after the start): each login
                # (every etcdctl --user, every token a node or a test takes)
                # checks a password, and at etcd's default cost of 10 that
                # is 64 times the work, seconds of a core on a loaded CI box,
                # where a node's /v3/auth/authenticate timed out at 3 s.
                # What is tested (who may log in, tokens refused and taken
                # again) does not depend on the cost; production keeps its own.
                "--bcrypt-cost", "4"]
        if self.tls:
            argv += ["--cert-file", self.pki.server_cert, "--key-file", self.pki.server_key,
                     "--trusted-ca-file", self.pki.ca, "--client-cert-auth"]
        return argv

    def start(self, i, wait=True):
        m = self.members[i]
        if m.proc and m.proc.poll() is None:
            return
        log = open(m.log_path, "ab")
        m.proc = subprocess.Popen(self._argv(m), stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        log.close()
        if wait:
            self.wait_member(i)

    def start_all(self, first=False):
        for i in range(len(self.members)):
            self.start(i, wait=False)
        # A member answers /health only once the cluster has a leader.
        for i in range(len(self.members)):
            self.wait_member(i, timeout=30 if first else 20)

    def _signal(self, i, sig, wait=True):
        m = self.members[i]
        if not m.proc or m.proc.poll() is not None:
            return
        m.proc.send_signal(sig)
        if wait:
            try:
                m.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait()

    def kill(self, i):
        """SIGKILL member @i (its data stays; start(i) brings it back)."""
        self._signal(i, signal.SIGKILL)

    def stop(self, i):
        self._signal(i, signal.SIGTERM)

    def stop_all(self):
        for i in range(len(self.members)):
            self._signal(i, signal.SIGTERM, wait=False)
        for m in self.members:
            if m.proc:
                try:
                    m.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait()

    def running(self, i):
        m = self.members[i]
        return m.proc is not None and m.proc.poll() is None

    def pids(self):
        return [m.proc.pid for m in self.members if m.proc and m.proc.poll() is None]

    def wait_member(self, i, timeout=20):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            m = self.members[i]
            if m.proc and m.proc.poll() is not None:
                raise RuntimeError("etcd member %s exited: %s" % (m.name, self.log_tail(i)))
            try:
                h = json.loads(self._http(i, "GET", "/health", None, timeout=1, auth=False))
                if h.get("health") in ("true", True):
                    return
                last = h
            except (OSError, ValueError) as e:
                last = e
            time.sleep(0.1)
        raise RuntimeError("etcd member %d not healthy: %s\n%s" % (i, last, self.log_tail(i)))

    def log_tail(self, i, n=2000):
        try:
            with open(self.members[i].log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def close(self):
        if self._closed:
            return
        self._closed = True
        for m in self.members:
            if m.proc and m.proc.poll() is None:
                m.proc.kill()
                m.proc.wait()
        if self._own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            for m in self.members:
                shutil.rmtree(m.data_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- client ------------------------------------------------------------

    def _ssl_ctx(self, user):
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.pki.ca)
        cert, key = self.pki.client(user or "root")
        ctx.load_cert_chain(cert, key)
        return ctx

    def _token(self, i, user, password, fresh=False):
        """A token of @user at member @i, kept for the next call. etcd checks
        a password with bcrypt at each login (cheap at the lab's cost 4; at
        etcd's default 10, tens of ms of a core, seconds on a loaded CI box):
        a test that polls etcd ten times a second and logs in for each poll
        starves the nodes under test of their own logins
        (seen: a node's /v3/auth/authenticate timing out in CI). @fresh
        logs in again (the token was refused: expired, its member
        restarted, the user's password changed)."""
        k = (i, user, password)
        tok = None if fresh else self._tokens.get(k)
        if tok is None:
            body = json.dumps({"name": user, "password": password}).encode()
            r = self._http(i, "POST", "/v3/auth/authenticate", body, auth=False, user=user)
            tok = json.loads(r)["token"]
            self._tokens[k] = tok
        return tok

    def _http(self, i, method, path, body, timeout=5, auth=True, user=None, password=None):
        u = user or "root"
        pw = password or (ROOT_PASSWORD if u == "root" else self.password(u))
        for fresh in (False, True):
            headers = {"Content-Type": "application/json"}
            if auth and self.auth:
                headers["Authorization"] = self._token(i, u, pw, fresh)
            req = urllib.request.Request(self.url(i) + path, data=body, method=method,
                                         headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=timeout,
                                            context=self._ssl_ctx(user)) as r:
                    return r.read()
            except urllib.error.HTTPError as e:
                # etcd says 401 "invalid auth token" for a token it no
                # longer knows: log in once more, then the error stands.
                if fresh or not (auth and self.auth) or e.code != 401:
                    raise
                self._tokens.pop((i, u, pw), None)

    def _alive(self):
        return [i for i in range(len(self.members)) if self.running(i)]

    # Requests tried again on etcd's 503 (gRPC Unavailable: "request timed
    # out", "leader changed", no leader for a moment). Seen in CI's loaded
    # sanitizer stage: a range read answered 503 once while the members
    # were late on their heartbeats, failing a test whose daemons had done
    # right. A read is repeatable; a put of the same value leaves the same
    # value, though a put that timed out may have been committed after all
    # (then a second revision and watch event: a test counting events sees
    # it, as it would have seen the 503); a delete tried again may count 0
    # deleted (no caller reads the count).
    _RETRY_UNAVAILABLE = ("/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange")

    def call(self, path, req, user=None, password=None, timeout=5):
        """POST @req (a dict) to the gateway @path on the first member that
        answers, waiting @timeout s for each; returns the reply as a dict.
        HTTP errors raise, but while a member answers 503 to a repeatable
        request it is tried again, for 10 s (checked between rounds, so one
        call can take a round's member timeouts more)."""
        body = json.dumps(req).encode()
        give_up = time.monotonic() + 10
        pause = 0.1
        while True:
            unavailable = last = None
            for i in self._alive():
                try:
                    return json.loads(self._http(i, "POST", path, body, timeout=timeout,
                                                 user=user, password=password))
                except urllib.error.HTTPError as e:
                    if e.code != 503 or path not in self._RETRY_UNAVAILABLE:
                        raise
                    unavailable = e
                except OSError as e:
                    last = e
            if unavailable is None:
                raise RuntimeError("no etcd member answered: %s" % last)
            if time.monotonic() > give_up:
                raise unavailable
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def put(self, key, value, user=None, lease=0, timeout=5):
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        req = {"key": _b64(key), "value": _b64(value)}
        if lease:
            req["lease"] = str(lease)
        return int(self.call("/v3/kv/put", req, user=user, timeout=timeout)["header"]["revision"])

    def get(self, key, prefix=False, user=None, timeout=5):
        """The value of @key (bytes) or None; with prefix, {key: value}."""
        req = {"key": _b64(key)}
        if prefix:
            req["range_end"] = _b64(prefix_end(key))
        r = self.call("/v3/kv/range", req, user=user, timeout=timeout)
        kvs = {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", ""))
               for kv in r.get("kvs", [])}
        if prefix:
            return kvs
        return kvs.get(key)

    def get_json(self, key, user=None, timeout=5):
        v = self.get(key, user=user, timeout=timeout)
        return None if v is None else json.loads(v)

    def delete(self, key, prefix=False, user=None):
        req = {"key": _b64(key)}
        if prefix:
            req["range_end"] = _b64(prefix_end(key))
        return int(self.call("/v3/kv/deleterange", req, user=user).get("deleted", 0))

    def watch(self, key, start_revision, until, prefix=False, timeout=30, until_rev=None):
        """Follow @key from @start_revision through the gateway's watch
        stream; returns [(mod_revision, value bytes or None for a delete)]
        up to the first for which until(value) is true, or (@until_rev) the
        first at or past that revision. Every change is seen, also the
        short-lived ones a poll would miss."""
        import http.client
        req = {"key": _b64(key), "start_revision": str(start_revision)}
        if prefix:
            req["range_end"] = _b64(prefix_end(key))
        i = self._alive()[0]
        conn = http.client.HTTPConnection("127.0.0.1", self.members[i].client_port,
                                          timeout=timeout)
        headers = {"Content-Type": "application/json"}
        if self.auth:
            # a fresh login: a refused token shows only inside the stream
            headers["Authorization"] = self._token(i, "root", ROOT_PASSWORD, fresh=True)
        conn.request("POST", "/v3/watch", json.dumps({"create_request": req}), headers)
        resp = conn.getresponse()
        seen = []
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                line = resp.readline()
                if not line:
                    break
                res = json.loads(line).get("result", {})
                for ev in res.get("events", []):
                    kv = ev["kv"]
                    val = base64.b64decode(kv["value"]) if ev.get("type") != "DELETE" else None
                    seen.append((int(kv["mod_revision"]), val))
                    if until(val) or (until_rev is not None and seen[-1][0] >= until_rev):
                        return seen
        finally:
            conn.close()
        raise AssertionError("watch on %s: condition not met in %s s; saw %s" %
                             (key, timeout, seen[-5:]))

    def revision(self):
        return int(self.call("/v3/kv/range", {"key": _b64("\0")})["header"]["revision"])

    def compact(self, revision=None):
        rev = revision or self.revision()
        self.call("/v3/kv/compaction", {"revision": str(rev), "physical": True})
        return rev

    def metrics(self, i=None):
        """etcd's /metrics counters of member @i (the first alive one by
        default) as {name{labels}: float}."""
        i = self._alive()[0] if i is None else i
        text = self._http(i, "GET", "/metrics", None, auth=False).decode()
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, val = line.rpartition(" ")
            try:
                out[name] = float(val)
            except ValueError:
                pass
        return out

    # -- auth --------------------------------------------------------------

    def password(self, user):
        return "pw-" + user

    def etcdctl(self, *args, user="root", check=True):
        """Run etcdctl against the cluster as @user."""
        argv = [ETCDCTL, "--endpoints", self.endpoints(self._alive()), "--dial-timeout", "3s",
                "--command-timeout", "5s"]
        if self.tls:
            cert, key = self.pki.client(user or "root")
            argv += ["--cacert", self.pki.ca, "--cert", cert, "--key", key]
        if self.auth and user:
            pw = ROOT_PASSWORD if user == "root" else self.password(user)
            argv += ["--user", "%s:%s" % (user, pw)]
        env = dict(os.environ, ETCDCTL_API="3")
        return subprocess.run(argv + list(args), check=check, capture_output=True, text=True,
                              env=env, timeout=30)

    def _setup_auth(self):
        ctl = lambda *a: self.etcdctl(*a, user=None)  # noqa: E731 (before auth: no user)
        ctl("user", "add", "root:" + ROOT_PASSWORD)
        ctl("role", "add", "root")
        ctl("user", "grant-role", "root", "root")
        for f in self.facilities:
            self.add_facility_user(f, before_auth=True)
        ctl("auth", "enable")

    def add_facility_user(self, facility, before_auth=False):
        """User and role "fleet-F": read and write /regionfwd/v1/fac/F/ only."""
        u = "fleet-" + facility
        ctl = (lambda *a: self.etcdctl(*a, user=None)) if before_auth else self.etcdctl
        ctl("user", "add", "%s:%s" % (u, self.password(u)))
        ctl("role", "add", u)
        ctl("role", "grant-permission", u, "--prefix=true", "readwrite", fac_prefix(facility))
        ctl("user", "grant-role", u, u)
        return u


def prefix_end(key):
    """etcd's range_end for every key starting with @key."""
    b = bytearray(key.encode() if isinstance(key, str) else key)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\0"


# -- the fleet's key layout (docs/fleet.md), for tests and bench/run ---------

CHUNK = 512 << 10


def table_hash(doc: bytes):
    """H: common/fwd_hash.h's fwd_hash64 of the document's bytes, as regiond
    names a document generation (16 lowercase hex digits)."""
    h = 1469598103934665603
    for b in doc:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def publish_table(cluster, facility, doc, fmt=None, user=None, created_by="etcdlab", chunk=CHUNK):
    """Store @doc (bytes or str) as an immutable fleet table: chunks of
    @chunk bytes (at most 512 KiB) first, the manifest last. Returns H."""
    if isinstance(doc, str):
        doc = doc.encode()
    h = table_hash(doc)
    base = fac_prefix(facility) + "tables/%s/" % h
    chunks = [doc[i:i + chunk] for i in range(0, len(doc), chunk)]
    for i, c in enumerate(chunks):
        cluster.put(base + "chunk/%06d" % i, c, user=user)
    fmt = fmt or ("json" if doc.lstrip()[:1] in (b"{", b"[") else "yaml")
    cluster.put(base + "manifest", {"schema": 1, "hash": h, "len": len(doc), "chunks": len(chunks),
                                    "format": fmt, "created_at": int(time.time()),
                                    "created_by": created_by}, user=user)
    return h


def set_desired(cluster, facility, h, rollout=None, user=None, schema=1, name=None):
    """Point facility @facility at table @h. Returns the etcd revision."""
    return cluster.put(fac_prefix(facility) + "desired",
                       {"schema": schema, "facility": name or facility, "table": h,
                        "rollout": rollout, "updated_at": int(time.time())}, user=user)


def set_pin(cluster, facility, node, h, rollout="test", user=None):
    return cluster.put(fac_prefix(facility) + "pins/" + node,
                       {"schema": 1, "table": h, "rollout": rollout}, user=user)


def node_reports(cluster, facility, user=None):
    """{node: report} of every node of @facility (those whose lease lives)."""
    kvs = cluster.get(fac_prefix(facility) + "nodes/", prefix=True, user=user)
    return {k.rsplit("/", 1)[1]: json.loads(v) for k, v in kvs.items()}
