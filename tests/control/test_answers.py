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

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_log import fake_regiond, regionctl  # noqa: E402


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
]


@pytest.mark.parametrize("field,value,said", STATUS_SPOILED, ids=[f for f, _, _ in STATUS_SPOILED])
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
