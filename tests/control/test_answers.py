"""regionctl's read commands against answers that are not the API's: a
'200 {}' of another service behind --url, a proxy, a daemon that is not
what it should be. Each once printed what it made of them as if regiond
had said it: a status block of zeros, 'valid' for validate, an empty
history, a table of nothing; 'show table' crashed. Every read now checks
the answer's shape against what it shows (control/regionctl.c,
ans_routes), names the first field that is missing or of another type on
one line, prints nothing on stdout and exits 3 as for any answer that is
not regiond's (status: 2), with -j alike."""
import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_api_tls import ctl, pki  # noqa: E402,F401
from test_log import fake_regiond, regionctl  # noqa: E402
from httpfake import scripted_regiond  # noqa: E402


def ok(body):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(body), body)


# Every read command, and the route whose answer it shows.
READS = [
    (["status"], "GET /v1/status"),
    (["show", "regions"], "GET /v1/table"),
    (["show", "services"], "GET /v1/table"),
    (["show", "links"], "GET /v1/table"),
    (["show", "links", "to-sg"], "GET /v1/table"),
    (["show", "policies"], "GET /v1/table"),
    (["show", "table"], "GET /v1/table"),
    (["prefixes", "list", "india"], "GET /v1/table"),
    (["history"], "GET /v1/history"),
    (["explain", "1.1.1.1", "2.2.2.2", "icmp"], "POST /v1/explain"),
    (["filter", "status"], "GET /v1/filters"),
    (["fleet", "status"], "GET /v1/fleet/nodes"),
    (["fleet", "rollout"], "GET /v1/fleet/rollouts/active"),
    (["fleet", "history"], "GET /v1/fleet/rollouts"),
    (["validate", "DOC"], "POST /v1/validate"),
    (["diff", "DOC"], "POST /v1/validate"),
]

# JSON that is no answer of the API: empty, another shape, wrong types.
NOT_ANSWERS = {
    "empty": b"{}",
    "list": b"[]",
    "wrong-types": json.dumps({"generation": "7", "model": 5, "history": {}, "health": [], "dataplane": 1,
                               "nodes": 3, "rollouts": {}, "rollout": 1, "valid": 1, "program_id": -1,
                               "facility": 7}).encode(),
    "nested": b'{"history": [[[[[[[[[[]]]]]]]]]], "generation": [[[[[{}]]]]]}',
}


@pytest.mark.parametrize("answer", sorted(NOT_ANSWERS))
@pytest.mark.parametrize("args,route", READS, ids=[" ".join(a) for a, _ in READS])
def test_a_read_answered_with_something_else_shows_nothing(tmp_path, args, route, answer):
    doc = tmp_path / "t.yaml"
    doc.write_text("version: 1\n")
    args = [str(doc) if a == "DOC" else a for a in args]
    path = str(tmp_path / "api.sock")
    srv = fake_regiond(path, *ok(NOT_ANSWERS[answer]))
    try:
        for j in ([], ["-j"]):
            p = subprocess.run([regionctl(), "-s", path] + j + args, capture_output=True, text=True,
                               timeout=30)
            want = 2 if args == ["status"] else 3
            assert p.returncode == want, (j, p.returncode, p.stdout, p.stderr)
            assert p.stdout == "", (j, p.stdout)
            lines = p.stderr.splitlines()
            assert len(lines) == 1, p.stderr
            assert f"regionctl: regiond at {path} answered {route} with what is not the API's answer: " \
                in lines[0], lines[0]
    finally:
        srv.close()


STATUS = {"regiond": {"version": "0.1.0", "uptime_s": 42},
          "generation": {"id": 3, "hash": "47ed00825c42844c", "time": 1795945723, "author": "alice",
                         "comment": "brazil grows"},
          "dataplane": {"connected": True, "in_sync": True, "report_age_ms": 412,
                        "status": {"generation": {"id": 3, "hash": "47ed00825c42844c"}, "workers": 1,
                                   "packets": {"rx": 123, "tx": 120, "dropped": 3},
                                   "ports": [{"name": "in0", "link": "up", "speed_mbps": 25000,
                                              "duplex": "full",
                                              "stats": {"ipackets": 1843200, "opackets": 0, "imissed": 0,
                                                        "ierrors": 0, "oerrors": 0, "rx_nombuf": 0}}],
                                   "links": [{"name": "to-sg", "port": "sg0", "admin": "up", "oper": "up"}],
                                   "mbufs": {"pool": 32767, "in_use": 1843}}},
          "confirm": None, "alarm": None, "filters": None, "feed": None,
          "health": {"state": "healthy", "exit": 0, "reason": "regionfwd runs the current generation"}}


def spoil(doc, path, value):
    """@doc (a deep copy) with the field at @path ("a.b[0].c") set to
    @value, or deleted for ...."""
    doc = json.loads(json.dumps(doc))
    keys = [int(k) if k.isdigit() else k for k in path.replace("[", ".").replace("]", "").split(".")]
    o = doc
    for k in keys[:-1]:
        o = o[k]
    if value is ...:
        del o[keys[-1]]
    else:
        o[keys[-1]] = value
    return doc


# (what is wrong, the field named and why): one field at a time in an
# otherwise whole status; each once printed as a zero, "-" or a negative.
STATUS_SPOILED = [
    ("health.exit", "0", "health.exit: expected an integer, got a string"),
    ("health", ..., "health: missing, expected an object"),
    ("generation.id", -4, "generation.id: expected an integer >= 0, got -4"),
    ("dataplane.in_sync", "yes", "dataplane.in_sync: expected true or false, got a string"),
    ("dataplane.status.packets.rx", 1.5, "dataplane.status.packets.rx: expected an integer >= 0, got 1.5"),
    ("dataplane.status.ports[0].stats.imissed", -1,
     "dataplane.status.ports[0].stats.imissed: expected an integer >= 0, got -1"),
    ("dataplane.status.links[0].admin", None, "dataplane.status.links[0].admin: null, expected a string"),
    ("dataplane.status.mbufs.in_use", "many", "dataplane.status.mbufs.in_use: expected an integer >= 0, got a string"),
    ("alarm", 7, "alarm: expected a string, got 7"),
    ("fleet", {"node": "n1", "facility": "f", "state": "in_sync", "connected": "yes", "target": None},
     "fleet.connected: expected true or false, got a string"),
    ("fleet", {"node": "n1", "facility": "f", "state": "in_sync", "connected": True,
               "target": {"table": "a12d0c2282ec0d00", "revision": "7"}},
     "fleet.target.revision: expected an integer, got a string"),
    # the feed's fields regionctl status prints (each once unchecked)
    ("feed", {"state": "up", "tables": [{"region": "india", "table": 101, "learned_v4": 0, "learned_v6": 0,
                                         "in_table": "no"}]},
     "feed.tables[0].in_table: expected true or false, got a string"),
    ("feed", {"state": "up", "conflicting_prefixes": [{"prefix": "10.0.0.0/8", "regions": "india",
                                                       "held_by": "india"}]},
     "feed.conflicting_prefixes[0].regions: expected a list, got a string"),
    ("feed", {"state": "up", "conflicting_prefixes": [{"prefix": "10.0.0.0/8", "regions": ["india", 3],
                                                       "held_by": "india"}]},
     "feed.conflicting_prefixes[0].regions[1]: expected a string, got 3"),
    ("feed", {"state": "up", "overflow_prefixes": [{"prefix": 7, "region": "india"}]},
     "feed.overflow_prefixes[0].prefix: expected a string, got 7"),
    ("feed", {"state": "up", "confirm_wait": "generation 12 awaits confirmation"},
     "feed.confirm_wait: expected an object, got a string"),
    ("feed", {"state": "up", "confirm_wait": {"generation": 12, "text": None}},
     "feed.confirm_wait.text: null, expected a string"),
]


@pytest.mark.parametrize("field,value,said", STATUS_SPOILED, ids=[s for _, _, s in STATUS_SPOILED])
def test_status_names_the_field_it_cannot_take(tmp_path, field, value, said):
    """A status whose one field is missing or of another type: the whole
    status is shown (exit 0) until that field is spoiled; then nothing
    but the line naming it, exit 2 (not trusted healthy)."""
    path = str(tmp_path / "api.sock")
    whole = fake_regiond(path, *ok(json.dumps(STATUS).encode()))
    try:
        p = subprocess.run([regionctl(), "-s", path, "status"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and "health       healthy" in p.stdout, (p.returncode, p.stdout, p.stderr)
    finally:
        whole.close()
        os.unlink(path)
    srv = fake_regiond(path, *ok(json.dumps(spoil(STATUS, field, value)).encode()))
    try:
        for j in ([], ["-j"]):
            p = subprocess.run([regionctl(), "-s", path] + j + ["status"], capture_output=True, text=True,
                               timeout=30)
            assert p.returncode == 2 and p.stdout == "", (j, p.returncode, p.stdout, p.stderr)
            assert p.stderr.endswith(f"is not the API's answer: {said}\n"), p.stderr
    finally:
        srv.close()


def test_a_status_without_a_display_field_is_shown(tmp_path):
    """A regiond of another version lacks a field this regionctl only shows
    (one added since, as rx_nombuf was): the status is shown with its
    health's exit code, not called unreachable (a monitor paged for a
    healthy box of a mixed fleet). What health stands on stays required."""
    older = spoil(spoil(STATUS, "dataplane.status.ports[0].stats.rx_nombuf", ...), "generation.comment", ...)
    path = str(tmp_path / "api.sock")
    srv = fake_regiond(path, *ok(json.dumps(older).encode()))
    try:
        p = subprocess.run([regionctl(), "-s", path, "status"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and "health       healthy" in p.stdout, (p.returncode, p.stdout, p.stderr)
    finally:
        srv.close()


def test_history_names_the_entry(tmp_path):
    """history[N].FIELD: an entry whose id is no generation, among good ones."""
    entry = {"id": 7, "time": 1796000000, "hash": "00112233aabbccdd", "author": "a", "comment": "c"}
    body = json.dumps({"history": [entry, dict(entry, id=0), dict(entry, time="x")]}).encode()
    path = str(tmp_path / "api.sock")
    srv = fake_regiond(path, *ok(body))
    try:
        p = subprocess.run([regionctl(), "-s", path, "history"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 3 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
        assert p.stderr.endswith("history[1].id: expected an integer >= 1, got 0\n"), p.stderr
    finally:
        srv.close()


def test_history_columns_hold_with_wide_authors(tmp_path):
    """An author is free text: 'José' (6 bytes, 4 columns) and '山田' (6
    bytes, 4 columns) were padded by bytes, so the comment column moved."""
    authors = ["alice", "José", "山田", "Zoë-李", "x" * 14]
    entry = {"time": 1796000000, "hash": "00112233aabbccdd", "comment": "c"}
    body = json.dumps({"history": [dict(entry, id=i + 1, author=a) for i, a in enumerate(authors)]}).encode()
    path = str(tmp_path / "api.sock")
    srv = fake_regiond(path, *ok(body))
    try:
        p = subprocess.run([regionctl(), "-s", path, "history"], capture_output=True, timeout=30,
                           env=dict(os.environ, LANG="C", LC_ALL="C"))
        assert p.returncode == 0, p
        lines = p.stdout.decode().splitlines()[1:]
        wide = {"山": 2, "田": 2, "李": 2}
        cols = [sum(wide.get(ch, 1) for ch in line[:line.rindex(" c")]) for line in lines]
        # every comment in one column, but after a name wider than it
        assert len(set(cols[:4])) == 1 and cols[4] == cols[0] + 2, (lines, cols)
    finally:
        srv.close()


@pytest.mark.parametrize("body,said", [
    (b'{"history": [{"id": 99999999999999999999}]}', "too big integer"),
    (b'{"history": \xff}', "unable to decode byte 0xff"),
    (b"[" * 5000 + b"]" * 5000, "maximum parsing depth"),
    (b'{"history": []', "'}' expected"),
], ids=["past-int64", "not-utf8", "nested-5000", "cut"])
def test_a_read_answered_with_what_is_not_json_says_why(tmp_path, body, said):
    """A 200 whose body is not JSON (a number past 64 bits, bytes that are
    not UTF-8, nesting past the parser's depth, a body cut short) once said
    only 'regionctl: HTTP 200': now which answer, and the parser's reason."""
    path = str(tmp_path / "api.sock")
    srv = fake_regiond(path, *ok(body))
    try:
        for j in ([], ["-j"]):
            p = subprocess.run([regionctl(), "-s", path] + j + ["history"], capture_output=True, text=True,
                               timeout=30)
            assert p.returncode == 3 and p.stdout == "", (p.returncode, p.stdout, p.stderr)
            assert p.stderr.startswith(f"regionctl: regiond at {path} answered GET /v1/history with HTTP 200 "
                                       "and a body that is not JSON (line "), p.stderr
            assert said in p.stderr, p.stderr
    finally:
        srv.close()


HISTORY = {"history": [{"id": 7, "time": 1796000000, "hash": "00112233aabbccdd", "author": "alice",
                        "comment": "a change", "by": "uid 0"}]}


def sends(data, then_wait=0.0):
    def answer(c):
        c.sendall(data)
        time.sleep(then_wait)
    return answer


def trickle(data, every=0.3):
    def answer(c):
        for i in range(len(data)):
            c.sendall(data[i:i + 1])
            time.sleep(every)
    return answer


H = json.dumps(HISTORY).encode()
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"

# (name, how the fake regiond answers 'history', exit, what stderr says)
FRAMING = [
    # the answer whole, then the connection kept open: it once waited out
    # the bound and said "no answer", exit 3
    ("kept-open", sends(HEAD % len(H) + H, then_wait=20), 0, ""),
    # a Content-Length shorter than what follows: the rest is no part of it
    ("length-shorter", sends(HEAD % len(H) + H + b"garbage"), 0, ""),
    # longer: the body was cut short, even when what came parses
    ("length-longer", sends(HEAD % (len(H) + 100) + H), 3,
     "the answer was cut short (%d bytes of its body, its Content-Length more)" % len(H)),
    ("length-negative", sends(HEAD.replace(b"%d", b"-5") + H), 3,
     "an HTTP answer whose Content-Length is not a length"),
    ("length-past-64-bits", sends(HEAD.replace(b"%d", b"99999999999999999999") + H), 3,
     "an HTTP answer whose Content-Length is not a length"),
    ("length-1TB", sends(HEAD % 10**12 + H), 3,
     "an answer of 1000000000000 bytes, past 64 MiB, the largest GET /v1/history has"),
    # 80 MB without a Content-Length (JSON whitespace, so that the old
    # regionctl took it cheaply): it read answers without end, 100 MB of
    # history entries once took 3.4 GB and 68 s
    ("80MB", sends(HEAD.replace(b"Content-Length: %d\r\n", b"") + b" " * (80 << 20) + H), 3,
     "an answer past 64 MiB, the largest GET /v1/history has"),
    # a status that is no HTTP status: "-2" once read as a write's
    # outcome unknown (exit 5) for a read
    ("status-minus-2", sends(HEAD.replace(b"200 OK", b"-2 X") % len(H) + H), 3, "no HTTP response"),
    ("status-99999", sends(HEAD.replace(b"200 OK", b"99999 X") % len(H) + H), 3, "no HTTP response"),
    # a head that never ends (a byte every 0.3 s, each wait in time): it
    # once held regionctl for ever
    ("head-trickled", trickle(HEAD % len(H)), 3, "no whole answer within 2 s"),
    # a body that trickles: the same
    ("body-trickled", trickle(HEAD % len(H) + H, every=0.02), 3, "no whole answer within 2 s"),
    # nothing at all: the bound, as it always was
    ("silent", sends(b"", then_wait=20), 3, "no answer within 2 s"),
]


@pytest.mark.parametrize("name,answer,rc,said", FRAMING, ids=[f[0] for f in FRAMING])
def test_a_read_takes_only_a_whole_http_answer(tmp_path, name, answer, rc, said):
    path = str(tmp_path / "api.sock")
    srv = scripted_regiond(path, answer)
    try:
        t0 = time.monotonic()
        p = subprocess.run([regionctl(), "-s", path, "--timeout", "2", "history"], capture_output=True,
                           text=True, timeout=60)
        took = time.monotonic() - t0
        assert p.returncode == rc, (p.returncode, p.stdout, p.stderr[:500])
        if rc == 0:
            assert "a change" in p.stdout and not p.stderr, (p.stdout, p.stderr)
        else:
            assert p.stdout == "" and said in p.stderr, p.stderr[:500]
        assert took < 30, took  # bounded: the bound is 2 s, the 80 MB a few
    finally:
        srv.close()


def test_a_write_answered_in_part_is_an_unknown_outcome(tmp_path):
    """A write's answer cut short, by its Content-Length or a head without
    an end, may follow a change that was made: exit 5, never 3."""
    body = json.dumps({"confirmed": 4}).encode()
    for i, answer in enumerate((sends(HEAD % (len(body) + 10) + body),
                                trickle(HEAD % len(body)),
                                sends(HEAD.replace(b"%d", b"-1") + body))):
        path = str(tmp_path / f"api{i}.sock")
        srv = scripted_regiond(path, answer)
        try:
            p = subprocess.run([regionctl(), "-s", path, "--timeout", "2", "confirm"], capture_output=True,
                               text=True, timeout=60)
            assert p.returncode == 5, (i, p.returncode, p.stderr)
            assert "may or may not have been applied" in p.stderr, p.stderr
        finally:
            srv.close()


def test_a_write_refused_with_an_unknown_code_is_an_unknown_outcome(tmp_path):
    """A write answered with an error code this regionctl does not know (a
    newer regiond, a proxy's JSON): exit 1 or 4 said "nothing changed" for a
    change a probe's proxy had let through. Its outcome is not known: 5. A
    read so answered keeps 1 (nothing to have changed)."""
    body = json.dumps({"error": {"code": "brand_new_code", "reason": "?", "file": "", "line": 0,
                                 "path": ""}}).encode()
    # (rollback with its generation given: without, it reads the status first)
    for i, (status, args, rc) in enumerate(((404, ["confirm"], 5),
                                            (503, ["rollback", "--expected-generation", "3"], 5),
                                            (404, ["history"], 1))):
        path = str(tmp_path / f"api{i}.sock")
        head = (b"HTTP/1.1 %d Nope\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n" % (status, len(body)))
        srv = scripted_regiond(path, sends(head + body))
        try:
            p = subprocess.run([regionctl(), "-s", path, "--timeout", "5", *args], capture_output=True,
                               text=True, timeout=60)
            assert p.returncode == rc, (args, p.returncode, p.stderr)
            assert ("may or may not have been applied" in p.stderr) == (rc == 5), p.stderr
        finally:
            srv.close()


def tls_regiond(pki, answer):
    """A TLS server on a free loopback port (python's, OpenSSL: TLS 1.3 with session
    tickets sent once it has read the request) answering with @answer."""
    import socket
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 0))
    return (scripted_regiond(None, answer, sock=tcp, wrap=lambda c: ctx.wrap_socket(c, server_side=True)),
            tcp.getsockname()[1])


def test_an_answer_over_tls_with_session_tickets_is_read(tmp_path, pki):  # noqa: F811
    """GnuTLS answers AGAIN at once for a record without data, such as the
    session tickets an OpenSSL server (a TLS proxy in front of regiond)
    sends after it read the request: regionctl took that for its bound run
    out, 'no answer within 30 s' at once, exit 3 (5 for a write it made)."""
    H = json.dumps(HISTORY).encode()
    C = json.dumps({"confirmed": 4}).encode()

    def answer(c):
        c.sendall((HEAD % len(H) + H) if answer.read else (HEAD % len(C) + C))
        c.unwrap()

    token = tmp_path / "token"
    token.write_text("t\n")
    for read, args, want in ((True, ["history"], "a change"), (False, ["confirm"], "confirmed generation 4")):
        answer.read = read
        srv, port = tls_regiond(pki, answer)
        try:
            p = ctl(port, pki, "--token-file", str(token), *args)
            assert p.returncode == 0 and want in p.stdout, (args, p.returncode, p.stdout, p.stderr)
        finally:
            srv.close()


def test_a_tls_handshake_never_answered_is_bounded(tmp_path, pki):  # noqa: F811
    """A server that takes the connection and never answers the
    ClientHello: --timeout 2 waited GnuTLS's own 40 s, 'TLS handshake
    failed: The operation timed out'; now the bound, said as such."""
    import socket
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(4)
    token = tmp_path / "token"
    token.write_text("t\n")
    try:
        t0 = time.monotonic()
        p = ctl(tcp.getsockname()[1], pki, "--token-file", str(token), "--timeout", "2", "history")
        took = time.monotonic() - t0
        assert p.returncode == 3 and "no answer within 2 s (the TLS handshake)" in p.stderr, p
        assert took < 20, took
    finally:
        tcp.close()


def test_a_write_whose_tls_answer_is_cut_is_an_unknown_outcome(tmp_path, pki):  # noqa: F811
    """Over TLS, an answer without a Content-Length cut without close_notify
    (regiond dying mid-answer, or an attacker's truncation) was refused as
    'TLS: the response was cut short' with exit 3, "nothing changed", for a
    write that went out whole: 5 now, as any write answered in part; a read
    stays 3."""
    def cut(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                  b'{"confirmed": 4}')
        os.close(c.detach())  # the TCP connection closed, without close_notify

    srv, port = tls_regiond(pki, cut)
    token = tmp_path / "token"
    token.write_text("t\n")
    try:
        for args, rc in ((["confirm"], 5), (["history"], 3)):
            p = ctl(port, pki, "--token-file", str(token), *args)
            assert p.returncode == rc, (args, p.returncode, p.stderr)
            assert "TLS: the answer was cut short" in p.stderr, p.stderr
            assert ("may or may not have been applied" in p.stderr) == (rc == 5), p.stderr
    finally:
        srv.close()


def endless(chunk, total):
    def answer(c):
        for _ in range(total // len(chunk)):
            c.sendall(chunk)
    return answer


CAPTURE_HEADS = [
    # a head a byte every 0.3 s: each wait in time, it held capture for ever
    ("head-trickled", trickle(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" * 10)),
    # a head without end: it was kept whole in memory (here 200 MB)
    ("head-endless", endless(b"HTTP/1.1 200 OK\r\nX: " + b"x" * 65536, 200 << 20)),
    # an error whose body never ends (here 200 MB): the same
    ("error-body-endless", endless(b"HTTP/1.1 500 Oops\r\n\r\n" + b" " * 65536, 200 << 20)),
]


@pytest.mark.parametrize("name,answer", CAPTURE_HEADS, ids=[c[0] for c in CAPTURE_HEADS])
def test_a_capture_answer_head_is_bounded(tmp_path, name, answer):
    path = str(tmp_path / "api.sock")
    srv = scripted_regiond(path, answer)
    try:
        p = subprocess.run([regionctl(), "-s", path, "--timeout", "2", "capture", "--count", "1"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 3, (p.returncode, p.stderr[:300])
        assert "answer within 2 s" in p.stderr, p.stderr[:300]
    finally:
        srv.close()


BUSY = json.dumps({"error": {"code": "capture_busy", "message": "a capture runs; one at a time"}}).encode()


def kept_open(data):
    """@data sent, then the connection held open (as a proxy may)."""
    def answer(c):
        c.sendall(data)
        time.sleep(8)
    return answer


CAPTURE_REFUSALS = [
    # its length come: a refusal, though the connection stays open
    ("length, kept open", kept_open(b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
                                    b"Content-Length: %d\r\n\r\n" % len(BUSY) + BUSY)),
    # chunked, as a proxy sends it: once "HTTP 409", exit 3
    ("chunked", kept_open(b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n" +
                          b"%x\r\n" % 10 + BUSY[:10] + b"\r\n" + b"%x\r\n" % (len(BUSY) - 10) + BUSY[10:] +
                          b"\r\n0\r\n\r\n")),
]


@pytest.mark.parametrize("name,answer", CAPTURE_REFUSALS, ids=[c[0] for c in CAPTURE_REFUSALS])
def test_a_capture_refusal_is_read_as_http_frames_it(tmp_path, name, answer):
    """A capture's refusal (409 capture_busy) is read as http() reads an
    answer: to its Content-Length, or its last chunk. Read to the close, it
    waited out the bound on a connection held open ("no whole answer",
    exit 3), and a chunked one was "HTTP 409", exit 3: now the refusal,
    exit 1, named."""
    path = str(tmp_path / "api.sock")
    srv = scripted_regiond(path, answer)
    try:
        p = subprocess.run([regionctl(), "-s", path, "--timeout", "5", "capture", "--count", "1"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and "capture_busy (409)" in p.stderr, (p.returncode, p.stderr[:300])
    finally:
        srv.close()


@pytest.mark.parametrize("status", [b"-2", b"0", b"99999"])
def test_a_capture_answered_with_no_status_is_no_answer(tmp_path, status):
    """A capture's answer whose status no server sends is no HTTP: exit 3,
    as for any read (a "-2" was taken for a status)."""
    path = str(tmp_path / "api.sock")
    srv = scripted_regiond(path, lambda c: c.sendall(b"HTTP/1.1 " + status + b" X\r\nContent-Length: 2\r\n\r\n{}"))
    try:
        p = subprocess.run([regionctl(), "-s", path, "--timeout", "5", "capture", "--count", "1"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 3 and "no HTTP response" in p.stderr, (p.returncode, p.stderr[:300])
    finally:
        srv.close()


@pytest.mark.parametrize("t", [2**62, -2**63, 2**63 - 1])
def test_a_time_no_date_holds_is_shown_as_a_number(tmp_path, t):
    """A time past any four-digit year (2^62 s) made gmtime_r fail and
    strftime print the uninitialised struct tm: a date such as
    '109626219-89981393-00'. It is shown as the number it is."""
    body = json.dumps({"history": [dict(HISTORY["history"][0], time=t)]}).encode()
    path = str(tmp_path / "api.sock")
    srv = fake_regiond(path, *ok(body))
    try:
        p = subprocess.run([regionctl(), "-s", path, "history"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and f"  time {t}  " in p.stdout, (p.returncode, p.stdout, p.stderr)
    finally:
        srv.close()


def pcapng_start():
    import struct
    from test_log import pcapng_block
    return (pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) +
            pcapng_block(1, struct.pack("<HHI", 1, 0, 65535)))


CHUNK_GARBAGE = {
    "size-negative": lambda b: b"-1\r\n" + b + b"\r\n0\r\n\r\n",  # once ULONG_MAX: "cut short"
    "size-past-64-bits": lambda b: b"f" * 20 + b"\r\n" + b + b"\r\n0\r\n\r\n",
    "size-with-junk": lambda b: b"%xzz\r\n" % len(b) + b + b"\r\n0\r\n\r\n",  # once taken as the size, exit 0
    "no-crlf-after-data": lambda b: b"%x\r\n" % len(b) + b + b"XX0\r\n\r\n",  # once "cut short"
}


@pytest.mark.parametrize("name", sorted(CHUNK_GARBAGE))
def test_a_capture_in_chunked_garbage_says_so(tmp_path, name):
    """A capture stream whose chunked framing is garbage is said to be
    that, exit 4 as a stream that is not pcapng; it read as 'the capture
    was cut short: regiond or regionfwd stopped it' (exit 3), or was taken
    (exit 0). An extension after the size is HTTP's and is taken."""
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-pcapng\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n")
    start = pcapng_start()
    for body, rc in ((CHUNK_GARBAGE[name](start), 4),
                     (b"%x;ext=1\r\n" % len(start) + start + b"\r\n0\r\n\r\n", 0)):
        path = str(tmp_path / f"api{rc}.sock")
        srv = fake_regiond(path, head, body)
        try:
            p = subprocess.run([regionctl(), "-s", path, "--timeout", "5", "capture", "--count", "1", "-w",
                                str(tmp_path / "c.pcapng")], capture_output=True, text=True, timeout=60)
            assert p.returncode == rc, (p.returncode, p.stderr)
            assert ("not HTTP chunked framing" in p.stderr) == (rc == 4), p.stderr
        finally:
            srv.close()


def chunks(data, n=7, ext=b""):
    out = b""
    for i in range(0, len(data), n):
        out += b"%x%s\r\n%s\r\n" % (len(data[i:i + n]), ext, data[i:i + n])
    return out


CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"

# (name, the answer to 'history' and to 'confirm' from a body, exit of each)
CHUNKED_ANSWERS = [
    # an HTTP/1.1 server (a proxy before regiond) may send a body chunked:
    # it was 'not JSON', exit 3, and a write carried out exit 5
    ("chunked", lambda b: sends(CHUNKED + chunks(b) + b"0\r\n\r\n"), 0, 0),
    ("with-extensions-trailers", lambda b: sends(CHUNKED + chunks(b, 5, b";x=1") + b"0\r\nX-T: 1\r\n\r\n"), 0, 0),
    ("kept-open", lambda b: sends(CHUNKED + chunks(b) + b"0\r\n\r\n", then_wait=20), 0, 0),
    ("no-last-chunk", lambda b: sends(CHUNKED + chunks(b)), 3, 5),
    ("garbage", lambda b: sends(CHUNKED + b"zz\r\n" + b + b"\r\n0\r\n\r\n"), 3, 5),
]


@pytest.mark.parametrize("name,answer,read_rc,write_rc", CHUNKED_ANSWERS, ids=[c[0] for c in CHUNKED_ANSWERS])
def test_a_chunked_answer_is_read(tmp_path, name, answer, read_rc, write_rc):
    for args, body, rc, want in ((["history"], json.dumps(HISTORY).encode(), read_rc, "a change"),
                                 (["confirm"], b'{"confirmed": 4}', write_rc, "confirmed generation 4")):
        path = str(tmp_path / f"api-{args[0]}.sock")
        srv = scripted_regiond(path, answer(body))
        try:
            p = subprocess.run([regionctl(), "-s", path, "--timeout", "5"] + args, capture_output=True,
                               text=True, timeout=60)
            assert p.returncode == rc, (args, p.returncode, p.stdout, p.stderr)
            assert (want in p.stdout) == (rc == 0), (args, p.stdout)
        finally:
            srv.close()


def fleet_regiond(active):
    """A fleet regiond's script for 'fleet apply --wait': the rollout
    r-1 created, then every GET of the active rollout answered 200 with
    @active (a dict, or bytes as they are), the history empty."""
    def answer(c, head, body):
        line = head.split(b"\r\n")[0]
        if line.startswith(b"POST /v1/fleet/rollouts "):
            data = json.dumps({"rollout": {"id": "r-1", "table": "a12d0c2282ec0d00"}}).encode()
        elif line.startswith(b"GET /v1/fleet/rollouts/active ") and isinstance(active, tuple):
            c.sendall(active[0])  # an answer as it is, head and all
            return
        elif line.startswith(b"GET /v1/fleet/rollouts/active "):
            data = active if isinstance(active, bytes) else json.dumps(active).encode()
        else:
            data = b'{"rollouts": []}'
        c.sendall(HEAD % len(data) + data)
    return answer


ACTIVE = {"rollout": {"id": "r-1", "facility": "fra", "state": "baking", "table": "a12d0c2282ec0d00",
                      "previous": "6aaf560fc2f0b9c4", "created_by": "alice", "created_at": 1796059338260,
                      "wave": 0, "waves": 2, "writes": 3, "options": {}, "abort": None,
                      "nodes": [{"name": "n1", "wave": 0, "status": "synced", "pinned": True}]}}


def test_fleet_apply_wait_is_bounded(tmp_path):
    """A server that answers 200 with the rollout still baking, for ever
    (broken, or not regiond): --wait polled it for ever. It follows a
    rollout --wait-timeout seconds at most (a day by default), then says
    so and exits 5: the rollout was created, its end is unknown here."""
    doc = tmp_path / "t.yaml"
    doc.write_text("version: 1\n")
    path = str(tmp_path / "api.sock")
    srv = scripted_regiond(path, fleet_regiond(ACTIVE), request=True)
    try:
        t0 = time.monotonic()
        p = subprocess.run([regionctl(), "-s", path, "fleet", "apply", str(doc), "--wait", "--wait-timeout", "3"],
                           capture_output=True, text=True, timeout=120)
        assert time.monotonic() - t0 < 60
        assert p.returncode == 5, (p.returncode, p.stdout, p.stderr)
        assert "rollout r-1: baking, wave 1 of 2" in p.stdout, p.stdout
        assert p.stderr == ("regionctl: rollout r-1 is still baking, wave 1 of 2 after 3 s (--wait-timeout)\n"
                            "regionctl: rollout r-1 was created, its outcome is unknown: 'regionctl fleet rollout' "
                            "follows it, 'regionctl fleet history' has its end\n"), p.stderr
        # the option's bounds, and it goes with --wait only
        for args in (["--wait", "--wait-timeout", "0"], ["--wait", "--wait-timeout", "5m"], ["--wait-timeout", "5"]):
            p = subprocess.run([regionctl(), "-s", path, "fleet", "apply", str(doc)] + args, capture_output=True,
                               text=True, timeout=60)
            assert p.returncode == 2 and "--wait-timeout" in p.stderr, (args, p.returncode, p.stderr)
    finally:
        srv.close()


# Interim answers (1xx) before the final one: RFC 9110 15.2, a client reads
# past them. regionctl took the first for the answer: "HTTP 100 and a body
# that is not JSON", exit 3 for a read, 5 for a write that was carried out.
INTERIM = (b"HTTP/1.1 100 Continue\r\n\r\n"
           b"HTTP/1.1 103 Early Hints\r\nLink: </v1/status>; rel=preload\r\n\r\n")


@pytest.mark.parametrize("split", [False, True], ids=["whole", "trickled"])
def test_interim_answers_are_read_past(tmp_path, split):
    for args, body, want in ((["history"], json.dumps(HISTORY).encode(), "a change"),
                             (["confirm"], b'{"confirmed": 4}', "confirmed generation 4")):
        data = INTERIM + HEAD % len(body) + body
        path = str(tmp_path / f"api-{args[0]}.sock")
        srv = scripted_regiond(path, trickle(data, every=0.001) if split else sends(data))
        try:
            p = subprocess.run([regionctl(), "-s", path, "--timeout", "10"] + args, capture_output=True,
                               text=True, timeout=60)
            assert p.returncode == 0 and want in p.stdout and not p.stderr, (args, p.returncode, p.stderr)
        finally:
            srv.close()


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    INTERIM,  # interim answers, then the connection closed
    b"HTTP/1.1 100 Continue\r\n\r\n" * 5000,  # interim heads past 64 KiB in all
], ids=["101", "interim-only", "interim-endless"])
def test_no_final_answer_after_interim_ones_is_no_answer(tmp_path, answer):
    """101 (regionctl never asks to switch protocols), or interim answers
    and no final one: no answer, exit 3 for a read, 5 for a write."""
    path = str(tmp_path / "api.sock")
    srv = scripted_regiond(path, sends(answer))
    try:
        for args, rc in ((["history"], 3), (["confirm"], 5)):
            p = subprocess.run([regionctl(), "-s", path, "--timeout", "10"] + args, capture_output=True,
                               text=True, timeout=60)
            assert p.returncode == rc and p.stdout == "", (args, p.returncode, p.stdout, p.stderr)
            assert "no HTTP response" in p.stderr or "101 Switching Protocols" in p.stderr, p.stderr
            if answer.startswith(b"HTTP/1.1 101"):
                assert "101 Switching Protocols, which regionctl never asks for" in p.stderr, p.stderr
    finally:
        srv.close()


def test_endless_slow_interim_answers_end_at_the_timeout(tmp_path):
    """A server that answers 100 Continue every 0.3 s and never more: the
    command ends at --timeout (a write: exit 5), and says the bytes that
    came (it said "0 bytes came", as if nothing had)."""
    path = str(tmp_path / "api.sock")
    def interim_for_ever(c):
        for _ in range(100):
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # each head whole
            time.sleep(0.3)

    srv = scripted_regiond(path, interim_for_ever)
    try:
        for args, rc in ((["history"], 3), (["confirm"], 5)):
            p = subprocess.run([regionctl(), "-s", path, "--timeout", "2"] + args, capture_output=True,
                               text=True, timeout=60)
            assert p.returncode == rc and p.stdout == "", (args, p.returncode, p.stderr)
            assert "no whole answer within 2 s (" in p.stderr, p.stderr
            assert "(0 bytes came)" not in p.stderr, p.stderr
    finally:
        srv.close()


# What a poll of --wait may be answered with that no regiond says: each
# once read as the rollout still going (polled for ever) or gone.
WAIT_SPOILED = [
    ("state-number", spoil(ACTIVE, "rollout.state", 5), "rollout.state: expected a string, got 5"),
    ("state-unknown", spoil(ACTIVE, "rollout.state", "cooking"), "rollout.state: 'cooking' is no rollout's state"),
    ("wave-past", spoil(ACTIVE, "rollout.wave", 7), "rollout.wave: 7, not a wave of the rollout's 2"),
    ("no-rollout", {}, "rollout: missing, expected an object"),
    ("not-json", b"<html>", "line 1 column 1"),
]

OOM = json.dumps({"error": {"code": "internal", "reason": "out of memory", "path": ""}}).encode()

# What ends a wait that once exited as if nothing had been created: the
# rollout exists, so its outcome is unknown (5), never 3 or 4.
WAIT_CUT = [
    # no HTTP at all: "cannot reach", exit 3
    ("not-http", (b"garbage\r\n\r\n",), "cannot reach regiond at"),
    # an error of the API: its own code (internal: 4, "nothing changed")
    ("error-500", (HEAD.replace(b"200 OK", b"500 Internal Server Error") % len(OOM) + OOM,),
     "internal (500): out of memory"),
    # no longer active, and not in the history either: exit 4
    ("gone", spoil(ACTIVE, "rollout.id", "r-2"), "rollout r-1 is neither active nor in the history"),
]


@pytest.mark.parametrize("name,active,said", WAIT_SPOILED, ids=[w[0] for w in WAIT_SPOILED])
def test_fleet_apply_wait_checks_what_it_polls(tmp_path, name, active, said):
    """Each poll of --wait is checked as a read's answer is, and for a
    state and wave a rollout can have: one that is not the API's ends the
    wait, exit 5 (the rollout exists; how it ends is unknown here)."""
    doc = tmp_path / "t.yaml"
    doc.write_text("version: 1\n")
    path = str(tmp_path / "api.sock")
    srv = scripted_regiond(path, fleet_regiond(active), request=True)
    try:
        p = subprocess.run([regionctl(), "-s", path, "fleet", "apply", str(doc), "--wait", "--wait-timeout", "600"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 5, (p.returncode, p.stdout, p.stderr)
        assert "answered GET /v1/fleet/rollouts/active with what is not the API's answer: " in p.stderr, p.stderr
        assert said in p.stderr and "rollout r-1 was created, its outcome is unknown" in p.stderr, p.stderr
    finally:
        srv.close()


def test_a_capture_reads_past_interim_answers(tmp_path):
    """The capture's head parser, as http(): a 409 after a 100 was 'HTTP
    100', exit 3; a stream after one was not pcapng, exit 4; a 101 is no
    answer."""
    start = pcapng_start()
    cases = [
        (INTERIM + b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
         % len(BUSY) + BUSY, 1, "capture_busy (409)"),
        (INTERIM + b"HTTP/1.1 200 OK\r\nContent-Type: application/x-pcapng\r\nConnection: close\r\n\r\n" + start,
         0, ""),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + start, 3,
         "no HTTP response from regiond (an HTTP 101 Switching Protocols, which regionctl never asks for)"),
    ]
    for i, (answer, rc, said) in enumerate(cases):
        path = str(tmp_path / f"api{i}.sock")
        srv = scripted_regiond(path, sends(answer))
        try:
            p = subprocess.run([regionctl(), "-s", path, "--timeout", "5", "capture", "--count", "1", "-w",
                                str(tmp_path / "c.pcapng")], capture_output=True, text=True, timeout=60)
            assert p.returncode == rc and said in p.stderr, (i, p.returncode, p.stderr)
        finally:
            srv.close()


def routed_regiond(path, routes):
    """A regiond answering each request by its "METHOD /path" from @routes
    (a dict of JSON-able answers, each a 200); 404 for any other."""
    def answer(c, head, body):
        route = b" ".join(head.split(b"\r\n")[0].split(b" ")[:2]).decode()
        if route in routes:
            c.sendall(b"".join(ok(json.dumps(routes[route]).encode())))
        else:
            c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    return scripted_regiond(path, answer, request=True)


GEN = {"id": 4, "hash": "47ed00825c42844c", "time": 1795945723, "author": "alice", "comment": "c"}

# (command, the route of its write, a whole answer, and each field its line
# prints spoiled: the field's path, what it is made, what is said)
WRITES = [
    (["apply", "DEMO"], "PUT /v1/table", {"generation": GEN, "changed": True}, [
        ("generation.hash", 7, "generation.hash: expected a string, got 7"),
        ("changed", "yes", "changed: expected true or false, got a string"),
        ("confirm_by", "soon", "confirm_by: expected an integer, got a string"),
    ]),
    (["link", "down", "to-sg"], "PATCH /v1/table", {"generation": GEN, "changed": True}, [
        ("generation.hash", None, "generation.hash: null, expected a string"),
        ("confirm_within_s", 1.5, "confirm_within_s: expected an integer, got 1.5"),
    ]),
    (["rollback"], "POST /v1/rollback", {"generation": GEN, "changed": True}, [
        ("generation.hash", ..., "generation.hash: missing, expected a string"),
        ("generation.id", 0, "generation.id: expected an integer >= 1, got 0"),
    ]),
    (["confirm"], "POST /v1/confirm", {"confirmed": 4}, [
        ("confirmed", "4", "confirmed: expected an integer >= 1, got a string"),
    ]),
    (["prefixes", "add", "india", "PREFIXES"], "POST /v1/prefixes",
     {"generation": 4, "hash": "47ed00825c42844c", "noop": False, "added": 1, "removed": 0, "unchanged": 0}, [
        ("hash", 5, "hash: expected a string, got 5"),
        ("noop", 0, "noop: expected true or false, got 0"),
        ("added", -1, "added: expected an integer >= 0, got -1"),
        ("removed", "0", "removed: expected an integer >= 0, got a string"),
        ("unchanged", ..., "unchanged: missing, expected an integer >= 0"),
    ]),
    (["filter", "detach"], "POST /v1/filters/detach", {"detached": True}, [
        ("detached", "yes", "detached: expected true or false, got a string"),
    ]),
    (["fleet", "unpin", "n1"], "POST /v1/fleet/unpin",
     {"unpinned": {"node": "n1", "table": "a12d0c2282ec0d00", "rollout": None, "revision": 7, "owner": "hand",
                   "stray": False}}, [
        ("unpinned.node", 7, "unpinned.node: expected a string, got 7"),
        ("unpinned.table", 1, "unpinned.table: expected a string, got 1"),
        ("unpinned.owner", ..., "unpinned.owner: missing, expected a string"),
    ]),
    (["fleet", "abort"], "POST /v1/fleet/rollouts/active/abort",
     {"rollout": {"id": "r-1", "previous": "a12d0c2282ec0d00", "table": "b"}}, [
        ("rollout.id", 1, "rollout.id: expected a string, got 1"),
        ("rollout.previous", [], "rollout.previous: expected a string, got a list"),
    ]),
]


@pytest.mark.parametrize("args,route,whole,spoiled", WRITES, ids=[" ".join(w[0]) for w in WRITES])
def test_a_write_answer_is_checked_field_by_field(tmp_path, args, route, whole, spoiled):
    """Every write's answer is checked against ans_routes for each field its
    line prints, as a read's is: only the outcome was, so a 200 whose hash
    was a number printed '(-)', a detach of "yes" 'not attached', exit 0.
    Now nothing on stdout, the field named, exit 5 (outcome unknown)."""
    from test_e2e import DEMO
    prefixes = tmp_path / "p.txt"
    prefixes.write_text("10.1.0.0/16\n")
    args = [DEMO if a == "DEMO" else str(prefixes) if a == "PREFIXES" else a for a in args]
    for i, (field, value, said) in enumerate([(None, None, None)] + spoiled):
        path = str(tmp_path / f"api{i}.sock")
        answer = whole if field is None else spoil(whole, field, value)
        srv = routed_regiond(path, {"GET /v1/status": STATUS, route: answer})
        try:
            for j in ([], ["-j"]):
                p = subprocess.run([regionctl(), "-s", path] + j + args, capture_output=True, text=True,
                                   timeout=60)
                if field is None:
                    assert p.returncode == 0 and p.stdout and not p.stderr, (j, p.returncode, p.stderr)
                    continue
                assert p.returncode == 5 and p.stdout == "", (field, j, p.returncode, p.stdout, p.stderr)
                assert f"answered the write with HTTP 200 and JSON without the outcome ({said}), not the API's " \
                    "answer; the change may or may not have been applied" in p.stderr, (field, p.stderr)
        finally:
            srv.close()


# Chunk headers no server sends, and the reason both decoders give: the
# whole answer's (http()) and the capture stream's were two decoders that
# disagreed (a bare CR or LF, a long extension), and both read "0x5" as 5.
HOSTILE_CHUNKS = [
    ("0x-prefix", lambda d: b"0x%x\r\n" % len(d) + d + b"\r\n0\r\n\r\n", "a chunk size that is not hexadecimal"),
    ("size-then-junk", lambda d: b"%x junk\r\n" % len(d) + d + b"\r\n0\r\n\r\n",
     "a chunk size that is not hexadecimal"),
    ("bad-hex", lambda d: b"zz\r\n" + d + b"\r\n0\r\n\r\n", "a chunk size that is not hexadecimal"),
    ("empty-size", lambda d: b"\r\n" + d + b"\r\n0\r\n\r\n", "a chunk size that is not hexadecimal"),
    ("overflow", lambda d: b"1" + b"0" * 16 + b"\r\n" + d + b"\r\n0\r\n\r\n", "a chunk size past 64 bits"),
    ("huge", lambda d: b"7fffffffffffffff\r\n" + d, "a chunk of 9223372036854775807 bytes, past the 64 MiB"),
    ("lf-only", lambda d: b"%x\n" % len(d) + d + b"\r\n0\r\n\r\n", "a line ending in LF without CR"),
    ("bare-cr", lambda d: b"%x\rX\r\n" % len(d) + d + b"\r\n0\r\n\r\n", "a CR not followed by LF"),
    ("bare-lf-in-extension", lambda d: b"%x;a\nb\r\n" % len(d) + d + b"\r\n0\r\n\r\n",
     "a line ending in LF without CR"),
    ("nul-in-extension", lambda d: b"%x;a\0b\r\n" % len(d) + d + b"\r\n0\r\n\r\n",
     "a control character (\\x00) in a chunk extension"),
    ("line-past-1024", lambda d: b"%x;" % len(d) + b"x" * 2000 + b"\r\n" + d + b"\r\n0\r\n\r\n",
     "a chunk line past 1024 bytes"),
    ("no-crlf-after-data", lambda d: b"%x\r\n" % len(d) + d + b"XX0\r\n\r\n", "no CRLF after a chunk's data"),
    ("trailer-lf-only", lambda d: b"%x\r\n" % len(d) + d + b"\r\n0\r\nX-T: 1\n\r\n", "a line ending in LF without CR"),
]

# Framing that is HTTP's and taken by both.
GOOD_CHUNKS = [
    ("extension-200-bytes", lambda d: b"%x;x=%s\r\n" % (len(d), b"y" * 200) + d + b"\r\n0\r\n\r\n"),
    ("leading-zeros", lambda d: b"%020x\r\n" % len(d) + d + b"\r\n0\r\n\r\n"),
    ("space-before-extension", lambda d: b"%x ;x=1\r\n" % len(d) + d + b"\r\n0\r\nX-T: 1\r\n\r\n"),
    ("upper-hex", lambda d: b"%X\r\n" % len(d) + d + b"\r\n0\r\n\r\n"),
]

CHUNKED_PCAPNG = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-pcapng\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n")


@pytest.mark.parametrize("name,frame,said", HOSTILE_CHUNKS, ids=[h[0] for h in HOSTILE_CHUNKS])
def test_both_chunked_decoders_refuse_a_hostile_chunk_header_alike(tmp_path, name, frame, said):
    """One chunk-header parser for a whole answer and for a capture's
    stream: the same refusal, with the same reason, from both; a read
    exits 3, a write 5, a capture 4."""
    H = json.dumps(HISTORY).encode()
    for args, body, rc in ((["history"], H, 3), (["confirm"], b'{"confirmed": 4}', 5)):
        path = str(tmp_path / f"api-{args[0]}.sock")
        srv = scripted_regiond(path, sends(CHUNKED + frame(body)))
        try:
            p = subprocess.run([regionctl(), "-s", path, "--timeout", "5"] + args, capture_output=True,
                               text=True, timeout=60)
            assert p.returncode == rc and p.stdout == "", (args, p.returncode, p.stdout, p.stderr)
            assert f"an HTTP answer whose chunked body is not chunked framing ({said}" in p.stderr, p.stderr
        finally:
            srv.close()
    path = str(tmp_path / "api-capture.sock")
    srv = fake_regiond(path, CHUNKED_PCAPNG, frame(pcapng_start()))
    try:
        p = subprocess.run([regionctl(), "-s", path, "--timeout", "5", "capture", "--count", "1", "-w",
                            str(tmp_path / "c.pcapng")], capture_output=True, text=True, timeout=60)
        assert p.returncode == 4, (p.returncode, p.stderr)
        assert f"regiond sent something that is not HTTP chunked framing ({said}" in p.stderr, p.stderr
    finally:
        srv.close()


@pytest.mark.parametrize("name,active,said", WAIT_CUT, ids=[w[0] for w in WAIT_CUT])
def test_fleet_apply_wait_cut_short_is_an_unknown_outcome(tmp_path, name, active, said):
    doc = tmp_path / "t.yaml"
    doc.write_text("version: 1\n")
    path = str(tmp_path / "api.sock")
    srv = scripted_regiond(path, fleet_regiond(active), request=True)
    try:
        p = subprocess.run([regionctl(), "-s", path, "--timeout", "5", "fleet", "apply", str(doc), "--wait"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 5, (p.returncode, p.stdout, p.stderr)
        assert said in p.stderr and "rollout r-1 was created, its outcome is unknown" in p.stderr, p.stderr
    finally:
        srv.close()


@pytest.mark.parametrize("name,frame", GOOD_CHUNKS, ids=[g[0] for g in GOOD_CHUNKS])
def test_both_chunked_decoders_take_http_framing_alike(tmp_path, name, frame):
    H = json.dumps(HISTORY).encode()
    path = str(tmp_path / "api.sock")
    srv = scripted_regiond(path, sends(CHUNKED + frame(H)))
    try:
        p = subprocess.run([regionctl(), "-s", path, "--timeout", "5", "history"], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0 and "a change" in p.stdout, (p.returncode, p.stderr)
    finally:
        srv.close()
    path = str(tmp_path / "api-capture.sock")
    srv = fake_regiond(path, CHUNKED_PCAPNG, frame(pcapng_start()))
    try:
        p = subprocess.run([regionctl(), "-s", path, "--timeout", "5", "capture", "--count", "1", "-w",
                            str(tmp_path / "c.pcapng")], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (p.returncode, p.stderr)
    finally:
        srv.close()


UNAVAILABLE = json.dumps({"error": {"code": "dataplane_unavailable", "file": "", "line": 0, "path": "",
                                    "reason": "regionfwd did not answer"}}).encode()


def error_answer(status, body):
    return lambda c: c.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                               % (status, len(body)) + body)


def test_json_errors_on_stdout_keep_each_commands_shape(tmp_path):
    """With -j an error regiond answers is its JSON on stdout too (a script
    got an empty stdout and text on stderr): indented for a command, one
    line in `top -j` and `capture -j` (one object a line), none with
    `capture -w -` (stdout is the pcapng). `status` exits 3 (unknown) on
    an error regiond answered, whatever the error's own code: a 503
    dataplane_unavailable (code 3) read as "regiond unreachable", 2."""
    path = str(tmp_path / "api.sock")
    srv = scripted_regiond(path, error_answer(503, UNAVAILABLE))
    want = json.loads(UNAVAILABLE)
    try:
        def run(*args):
            return subprocess.run([regionctl(), "-s", path, "--timeout", "5", *args],
                                  capture_output=True, text=True, timeout=60)
        p = run("-j", "counters")
        assert p.returncode == 3 and json.loads(p.stdout) == want and len(p.stdout.splitlines()) > 1, p
        assert "dataplane_unavailable (503)" in p.stderr, p.stderr
        p = run("-j", "top", "--count", "1", "--interval", "0.2")
        assert p.returncode == 3 and p.stdout.count("\n") == 1 and json.loads(p.stdout) == want, p
        p = run("-j", "capture", "--count", "1")
        assert p.returncode == 3 and p.stdout.count("\n") == 1 and json.loads(p.stdout) == want, p
        p = run("-j", "capture", "--count", "1", "-w", "-")
        assert p.returncode == 3 and p.stdout == "" and "dataplane_unavailable (503)" in p.stderr, p
        p = run("counters")
        assert p.returncode == 3 and p.stdout == "", p
        for args in (("status",), ("-j", "status")):
            p = run(*args)
            assert p.returncode == 3 and "dataplane_unavailable (503)" in p.stderr, p
            assert (json.loads(p.stdout) == want) if "-j" in args else p.stdout == "", p
    finally:
        srv.close()


def test_show_links_shows_an_untagged_links_vlan_as_absent(tmp_path):
    """An untagged link has no vlan in the model (-j leaves it out, and the
    table refuses vlan 0), yet the text showed "VLAN 0", a tag to a reader:
    "-" now, as any other absent value; a tagged link keeps its id."""
    table = {"generation": {"id": 3, "hash": "47ed00825c42844c"}, "document": "version: 1\n",
             "model": {"regions": {}, "services": {}, "link_groups": {}, "policies": [], "default": {"action": "drop"},
                       "links": {"plain": {"port": "p0", "next_hop_mac": "02:00:00:00:00:01", "state": "up",
                                           "tags": ["a"]},
                                 "tagged": {"port": "p1", "next_hop_mac": "02:00:00:00:00:02", "vlan": 100,
                                            "state": "up", "tags": ["b"]}}}}
    path = str(tmp_path / "api.sock")
    srv = fake_regiond(path, *ok(json.dumps(table).encode()))
    try:
        p = subprocess.run([regionctl(), "-s", path, "show", "links"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p
        rows = {line.split()[0]: line.split() for line in p.stdout.splitlines()[1:]}
        assert rows["plain"][3] == "-" and rows["tagged"][3] == "100", p.stdout
        p = subprocess.run([regionctl(), "-s", path, "-j", "show", "links"], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, p
        links = json.loads(p.stdout)
        links = links.get("links", links)
        assert "vlan" not in links["plain"] and links["tagged"]["vlan"] == 100, p.stdout
    finally:
        srv.close()


def test_capture_json_gives_the_generation_as_an_integer(tmp_path):
    """capture -j read a packet comment's gen=2 as the string "2", where
    explain, status and history give a generation id as an integer."""
    import struct
    from test_log import pcapng_block, pcapng_comment
    frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x06" + b"\0" * 28  # ARP: no addresses read
    ts = 1796000000 * 10**9
    comments = ["regionfwd forward gen=2 in=in0 region=india service=dns policy=india/any link=local",
                "xdp drop rule=deny-lab why=rule gen=14 in=eth1"]
    stream = pcapng_start() + b"".join(
        pcapng_block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xffffffff, len(frame), len(frame)) + frame +
                     b"\0" * (-len(frame) % 4) + pcapng_comment(c)) for c in comments)
    path = str(tmp_path / "api.sock")
    srv = fake_regiond(path, b"HTTP/1.1 200 OK\r\nContent-Type: application/x-pcapng\r\n"
                       b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                       b"%x\r\n%s\r\n0\r\n\r\n" % (len(stream), stream))
    try:
        p = subprocess.run([regionctl(), "-s", path, "-j", "capture", "--count", "2"], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, p
        lines = [json.loads(x) for x in p.stdout.splitlines()]
        assert [x["verdict"]["gen"] for x in lines[:2]] == [2, 14], lines
        assert lines[0]["verdict"]["region"] == "india" and lines[1]["verdict"]["rule"] == "deny-lab", lines
    finally:
        srv.close()


COUNTERS = {"generation": {"id": 3, "hash": "47ed00825c42844c", "source": "regiond", "created_unix_ns": 1,
                           "regions": 1, "services": 1, "links": 1, "policies": 1, "prefixes_v4": 1,
                           "prefixes_v6": 0},
            "workers": 2, "packets": {"rx": 100, "rx_bytes": 6400, "tx": 90, "tx_bytes": 5760, "dropped": 10},
            "drops": {"policy_drop": 10}, "events": {},
            "links": {"to-sg": {"packets": 90, "bytes": 5760, "port": "sg0", "state": "up"}},
            "regions": {"india": {"packets": 100, "bytes": 6400}},
            "services": {"dns": {"packets": 100, "bytes": 6400}},
            "policies": {"india/dns": {"packets": 90, "action": "steer", "target": "to-sg"}},
            "ports": {"sg0": {"ipackets": 0, "opackets": 90, "imissed": 0, "ierrors": 0, "oerrors": 0,
                              "rx_nombuf": 0, "link": "up", "speed_mbps": 25000}},
            "mbufs": {"pool": 32767, "in_use": 1843}}


def test_top_json_carries_what_the_text_frame_shows(tmp_path):
    """top -j gave totals of rx, tx and dropped only, where the text frame
    shows per link, region, service, policy and drop reason totals, mbufs,
    workers and the generation's age; and interval_s twice, 0.2 at the top
    and 0.2001 in rates. The frame now carries the counter report in the
    API's model (GET /v1/counters) and the asked interval under its own name."""
    path = str(tmp_path / "api.sock")
    status = dict(STATUS, generation=dict(STATUS["generation"], time=int(time.time()) - 30))
    srv = routed_regiond(path, {"GET /v1/counters": COUNTERS, "GET /v1/status": status})
    try:
        p = subprocess.run([regionctl(), "-s", path, "-j", "top", "--count", "1", "--interval", "0.2"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p
        o = json.loads(p.stdout)
        c = o["counters"]
        assert c["links"]["to-sg"] == COUNTERS["links"]["to-sg"], c
        for sec in ("regions", "services", "policies", "packets", "mbufs", "workers"):
            assert c[sec] == COUNTERS[sec], (sec, c[sec])
        assert c["drops"]["policy_drop"] == 10, c["drops"]
        assert c["ports"]["sg0"]["opackets"] == 90 and c["generation"]["id"] == 3, c
        assert o["requested_interval_s"] == 0.2 and "interval_s" not in o, o
        assert o["rates"]["interval_s"] >= 0.2 and o["rates"]["links"]["to-sg"]["packets_per_s"] == 0, o
        assert 29 <= o["generation_age_s"] <= 40 and o["generation"]["id"] == 3, o
        assert o["health"]["state"] == "healthy" and "totals" not in o, o
    finally:
        srv.close()
