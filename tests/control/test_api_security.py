"""regiond's API against strangers (issue 16, finding 5): token files with
open modes are refused; over TCP every request needs a token and a body is
never read before its credentials and announced length are checked; a flood
of slow connections from one address does not shut out an authenticated
client nor the unix socket. Traffic stays on loopback."""
import json
import re
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from test_e2e import DEMO, REGIOND, REGIONCTL, SG_LOCAL, Box, demo_variant, wait_for  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token_file(path, text, mode=0o600):
    path.write_text(text + "\n")
    path.chmod(mode)
    return str(path)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_open_token_file_refused(tmp_path):
    for mode in (0o666, 0o640, 0o604):
        tok = token_file(tmp_path / "token", "s3cret-token-0123456789", mode)
        p = subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket",
                            str(tmp_path / "api.sock"), "--state-dir", str(tmp_path / "state"),
                            "--listen", f"127.0.0.1:{free_port()}", "--token-file", tok],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (mode, p.stderr)
        assert f"--token-file {tok}: mode {mode:04o}" in p.stderr and "chmod 600" in p.stderr, p.stderr


def test_a_start_that_cannot_listen_writes_no_state(tmp_path):
    """regiond refused at its API socket or --listen port (in use) had
    already seeded its empty state directory with --table and logged it
    as applied; the next start, finding that seed, took it for another
    regiond's table and held back (a probe). Where the API will listen is
    checked before the state is touched."""
    tok = token_file(tmp_path / "token", "s3cret-token-0123456789")
    busy_tcp = socket.socket()
    busy_tcp.bind(("127.0.0.1", 0))
    busy_tcp.listen(1)
    busy_unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    busy_unix.bind(str(tmp_path / "busy.sock"))
    busy_unix.listen(1)
    try:
        for case, api, listen, said in (
                ("port", str(tmp_path / "api.sock"), f"127.0.0.1:{busy_tcp.getsockname()[1]}",
                 f"--listen 127.0.0.1:{busy_tcp.getsockname()[1]}: Address already in use"),
                ("socket", str(tmp_path / "busy.sock"), f"127.0.0.1:{free_port()}",
                 f"API socket {tmp_path / 'busy.sock'}: a running process listens on it")):
            state = tmp_path / f"state-{case}"
            p = subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket", api,
                                "--state-dir", str(state), "--table", DEMO, "--listen", listen,
                                "--token-file", tok], capture_output=True, text=True, timeout=60)
            assert p.returncode == 1 and said in p.stderr, (case, p.stderr[-2000:])
            assert "applied" not in p.stderr, (case, p.stderr[-2000:])
            assert not state.exists() or not any(state.iterdir()), (case, sorted(os.listdir(state)))
    finally:
        busy_tcp.close()
        busy_unix.close()


def test_ports_out_of_range_are_refused_not_wrapped(tmp_path):
    """getaddrinfo() takes "84010" and wraps it to 18474: regiond listened
    there and regionctl sent a token there. Both refuse such a port now,
    and regionctl a URL path it would have dropped."""
    tok = token_file(tmp_path / "token", "s3cret-token-0123456789")
    p = subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket",
                        str(tmp_path / "api.sock"), "--state-dir", str(tmp_path / "state"),
                        "--listen", "127.0.0.1:84010", "--token-file", tok],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "--listen 127.0.0.1:84010: not a numeric address and a port in 1..65535" \
        in p.stderr, p.stderr
    for url, words in (("http://127.0.0.1:84009", "the URL's port '84009' is not in 1..65535"),
                       ("http://127.0.0.1:0", "the URL's port '0' is not in 1..65535"),
                       ("http://127.0.0.1:8409/v1", "the URL has a path (/v1)")):
        p = subprocess.run([REGIONCTL, "--url", url, "--token-file", tok, "history"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and words in p.stderr, (url, p.stderr)  # usage, not unreachable


def raw_request(port, head, body=b"", src="127.0.0.1", wait=10):
    """Send a request's head (and some body), return the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait, source_address=(src, 0)) as s:
        s.sendall(head.encode() + body)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode()


def test_credentials_and_length_checked_before_the_body(tmp_path):
    tok = token_file(tmp_path / "token", "s3cret-token-0123456789")
    port = free_port()
    b = Box(tmp_path, "sec-body", regiond_args=("--max-body", "1048576", "--listen", f"127.0.0.1:{port}",
                                                "--token-file", tok))
    try:
        before = rss_kib(b.rd.pid)
        # Strangers announcing 200 MB each: answered 401 from the headers,
        # while the body has not been sent.
        for _ in range(8):
            line = raw_request(port, "PUT /v1/table HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                     "Content-Length: 200000000\r\n\r\n", b"{\"document\": \"")
            assert line.startswith("HTTP/1.1 401"), line
        # Reads too, on TCP.
        assert raw_request(port, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n").startswith("HTTP/1.1 401")
        # The right token with a length over --max-body: 413 before the body.
        line = raw_request(port, "PUT /v1/table HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                                 "s3cret-token-0123456789\r\nContent-Length: 5000000\r\n\r\n")
        assert line.startswith("HTTP/1.1 413"), line
        assert rss_kib(b.rd.pid) - before < 16 * 1024
        assert b.gen() == 1
    finally:
        b.stop()


def exchange(port, data, wait=5):
    """Send @data on one connection; return what came back and whether
    regiond closed the connection (False: still open after @wait s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return got, True
                got += chunk
        except socket.timeout:
            return got, False


def test_ambiguous_body_length_is_refused_and_the_connection_closed(tmp_path):
    """Two Content-Length headers: libmicrohttpd took the first (0) and
    answered the 58-byte "body" as a second request, the history, which a
    proxy that honours the last Content-Length never saw (request
    smuggling). RFC 9112 section 6.3: 400, and the connection closed."""
    tok = token_file(tmp_path / "token", "s3cret-token-0123456789")
    port = free_port()
    b = Box(tmp_path, "sec-smuggle", regiond_args=("--listen", f"127.0.0.1:{port}", "--token-file", tok))
    auth = b"Authorization: Bearer s3cret-token-0123456789\r\n"
    inner = b"GET /v1/history HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
    head = b"POST /v1/validate HTTP/1.1\r\nHost: x\r\n" + auth
    try:
        for framing, body in ((b"Content-Length: 0\r\nContent-Length: %d\r\n" % len(inner), inner),
                              (b"Content-Length: %d\r\nContent-Length: 0\r\n" % len(inner), inner),
                              (b"Content-Length: 0\r\nContent-Length: x\r\n", inner),
                              (b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n" + inner),
                              (b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", b"0\r\n\r\n" + inner),
                              (b"Transfer-Encoding: gzip\r\n", inner),
                              # Whitespace before the colon, and folded lines (obs-fold):
                              # libmicrohttpd 0.9.75 read no length in each (a name
                              # "Content-Length ", or a fold glued to a name) and ran the
                              # body as the next request, a rollback in a probe's case.
                              (b"Content-Length : %d\r\n" % len(inner), inner),
                              (b"Content-Length\t: %d\r\n" % len(inner), inner),
                              (b"Content-Length: 0\r\n %d\r\n" % len(inner), inner),
                              (b"Content-Length: 0\r\n\t%d\r\n" % len(inner), inner),
                              (b"X-Pad: a\r\n Content-Length: %d\r\n" % len(inner), inner),
                              (b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n" + inner)):
            got, closed = exchange(port, head + framing + b"\r\n" + body)
            text = got.decode(errors="replace")
            assert closed, (framing, text)
            assert text.count("HTTP/1.1 ") == 1 and text.startswith("HTTP/1.1 400 "), (framing, text)
            resp_head, resp_body = text.split("\r\n\r\n", 1)
            assert "\r\nConnection: close" in resp_head, (framing, resp_head)
            assert json.loads(resp_body)["error"]["code"] == "bad_request", (framing, resp_body)
            assert "history" not in resp_body, (framing, text)
        # One length said twice is one length: a pipelined second request is answered.
        got, _ = exchange(port, head + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + inner, wait=2)
        assert got.count(b"HTTP/1.1 400 ") == 1 and b"HTTP/1.1 200 OK" in got and b'"history"' in got, got
        assert b.gen() == 1
    finally:
        b.stop()


def test_a_nul_byte_in_the_url_matches_no_endpoint(tmp_path):
    """The route was a strcmp on the decoded URL, which ends at a NUL:
    'PUT /v1/table%00.old' applied a table and 'GET /v1/status%00x'
    answered the status. A NUL in the path, raw or %00, is no endpoint
    (404 not_found, as an unknown path), on either socket, and a stranger
    on TCP still gets 401 first."""
    tok = token_file(tmp_path / "token", "s3cret-token-0123456789")
    port = free_port()
    b = Box(tmp_path, "sec-nul", regiond_args=("--listen", f"127.0.0.1:{port}", "--token-file", tok))
    auth = "Authorization: Bearer s3cret-token-0123456789\r\n"
    try:
        doc = b.http("GET", "/v1/table")[1]["document"]
        for method, path, body in (("GET", "/v1/status%00x", None), ("GET", "/v1/status\0x", None),
                                   ("GET", "/v1/status%00", None), ("GET", "/v1/history?\0", None),
                                   ("PUT", "/v1/table%00.old", {"document": doc}),
                                   ("PUT", "/v1/table\0.old", {"document": doc}),
                                   ("POST", "/v1/rollback%00", {"generation": 1})):
            code, r = b.http(method, path, body)
            assert code == 404 and r["error"]["code"] == "not_found" and "NUL" in r["error"]["reason"], \
                (method, path, r)
            head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
            assert raw_request(port, head + auth + "\r\n").startswith("HTTP/1.1 404 "), (method, path)
            assert raw_request(port, head + "\r\n").startswith("HTTP/1.1 401 "), (method, path)
        # The same paths without the NUL, and a %00 in the query (not read), still answer.
        assert b.http("GET", "/v1/status")[0] == 200
        assert b.http("GET", "/v1/history?x=%00")[0] == 200
        assert b.gen() == 1
    finally:
        b.stop()


def test_status_without_the_right_token_exits_unknown(tmp_path):
    """regionctl status exits with the box's health (0, 1, 2), and a
    credential refused is none of them: it once exited 1, which a
    monitoring check reads as degraded, for a healthy box. It is 3, the
    monitoring-plugin convention's unknown; other commands keep 1."""
    tok = token_file(tmp_path / "token", "s3cret-token-0123456789")
    wrong = token_file(tmp_path / "wrong", "not-the-token-0123456789")
    port = free_port()
    b = Box(tmp_path, "sec-status", regiond_args=("--listen", f"127.0.0.1:{port}", "--token-file", tok))
    url = ["--url", f"http://127.0.0.1:{port}"]
    try:
        def ctl(*args):
            return subprocess.run([REGIONCTL, *args], capture_output=True, text=True, timeout=30)

        for cred in ([], ["--token-file", wrong]):
            for js in ([], ["-j"]):
                p = ctl(*url, *cred, *js, "status")
                assert p.returncode == 3 and "unauthorized (401)" in p.stderr, (cred, js, p)
                # -j: the API's error on stdout too (docs/regionctl.md), never a status model
                assert (json.loads(p.stdout)["error"]["code"] == "unauthorized") if js else p.stdout == "", p
            p = ctl(*url, *cred, "history")
            assert p.returncode == 1 and "unauthorized (401)" in p.stderr, (cred, p)
            # without a credential it says which option gives one (it
            # spoke of the HTTP header alone); a wrong one is not "none"
            assert ("(regionctl sent none: give --token-file F" in p.stderr) == (cred == []), (cred, p)
        p = ctl(*url, "--token-file", tok, "status")
        assert p.returncode == 0 and "generation   1" in p.stdout, p
    finally:
        b.stop()


def test_authorization_headers_are_read_as_rfc_9110_says(tmp_path):
    """A probe's findings: with two Authorization headers only the first
    was read, so a wrong second token was ignored without a word and the
    write went through; 'bearer' in lower case was refused although the
    scheme is case-insensitive; a 401 named no scheme (WWW-Authenticate);
    a wrong token was answered as if none had been given."""
    good, bad = "s3cret-token-0123456789", "not-the-token-0123456789"
    tok = token_file(tmp_path / "token", good)
    port = free_port()
    b = Box(tmp_path, "sec-auth", regiond_args=("--listen", f"127.0.0.1:{port}", "--token-file", tok))

    def get(*auth):
        got, _ = exchange(port, ("GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
                                 "".join(f"Authorization: {a}\r\n" for a in auth) + "\r\n").encode())
        head, _, body = got.decode(errors="replace").partition("\r\n\r\n")
        return head, body

    try:
        for auth in ((f"Bearer {good}", f"Bearer {bad}"), (f"Bearer {bad}", f"Bearer {good}"),
                     (f"Bearer {good}", f"Bearer {good}")):
            head, body = get(*auth)
            assert head.startswith("HTTP/1.1 401 ") and "more than one Authorization header" in body, (auth, body)
        for scheme in ("bearer", "BEARER", "Bearer"):
            head, body = get(f"{scheme} {good}")
            assert head.startswith("HTTP/1.1 200 "), (scheme, head)
        # RFC 6750: "Bearer" 1*SP token; RFC 9110 5.5: a field value's
        # trailing whitespace is none of it. Both were refused 401.
        for auth in (f"Bearer  {good}", f"Bearer {good} ", f"Bearer {good}\t", f"bearer   {good}  "):
            head, body = get(auth)
            assert head.startswith("HTTP/1.1 200 "), (auth, head, body)
        for auth in (f"Bearer{good}", f"Bearer {good}x", f"Bearer {good[:-1]}", f"Bearer {good} x",
                     f"Bearer\t{good}"):
            head, body = get(auth)
            assert head.startswith("HTTP/1.1 401 "), (auth, head)
        head, body = get(f"Bearer {bad}")
        assert head.startswith("HTTP/1.1 401 ") and "holds no valid token" in body, body
        assert '\r\nWWW-Authenticate: Bearer realm="regiond"' in head, head
        head, body = get()
        assert "requests over TCP need 'Authorization: Bearer TOKEN'" in body, body
        # A compressed body was read as it is (and refused as a document it
        # is not, or taken when it happened to parse): it is refused.
        for enc in ("gzip", "deflate", "br"):
            got, closed = exchange(port, (f"POST /v1/validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {good}\r\n"
                                          f"Content-Encoding: {enc}\r\nContent-Length: 2\r\n\r\n{{}}").encode())
            assert got.startswith(b"HTTP/1.1 400 ") and b"Content-Encoding other than identity" in got and closed, got
        got, _ = exchange(port, (f"POST /v1/validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {good}\r\n"
                                 "Content-Encoding: identity\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}").encode())
        assert b"Content-Encoding" not in got, got
        got, _ = exchange(port, (f"POST /v1/validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {good}\r\n"
                                 "Content-Encoding: identity\r\nContent-Encoding: gzip\r\n"
                                 "Content-Length: 2\r\n\r\n{}").encode())
        assert got.startswith(b"HTTP/1.1 400 ") and b"Content-Encoding other than identity" in got, got
        # A client's own header that holds a framing header's name is not
        # a folded line: taken.
        got, _ = exchange(port, (f"GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {good}\r\n"
                                 "X-Upload-Content-Length: 5\r\nX-Original-Transfer-Encoding: gzip\r\n"
                                 "Connection: close\r\n\r\n").encode())
        assert got.startswith(b"HTTP/1.1 200 "), got
        assert '\r\nWWW-Authenticate: Bearer realm="regiond"' in head, head
        assert b.gen() == 1
    finally:
        b.stop()


def test_a_body_past_its_share_is_too_large_not_retried(tmp_path):
    """A body within --max-body but past what its client's class may ever
    hold of --max-buffered was answered 503 uploads_full, "try again",
    which no retry could satisfy. It is 413 body_too_large, naming the
    share; the unix socket keeps --max-body."""
    kib = 1024
    tok = token_file(tmp_path / "token", "s3cret-token-0123456789")
    rtok = token_file(tmp_path / "rtoken", "read-only-token-0123456789")
    port = free_port()
    # --max-buffered = --max-body = 1 MiB: TCP 512 KiB, read-only 256 KiB.
    b = Box(tmp_path, "sec-cap", regiond_args=("--max-body", str(1024 * kib), "--max-buffered", str(1024 * kib),
                                               "--listen", f"127.0.0.1:{port}", "--token-file", tok,
                                               "--read-token-file", rtok))
    try:
        for bearer, method, n, words in (
                ("read-only-token-0123456789", "POST /v1/validate", 400 * kib,
                 b"request body larger than 262144 bytes (what read-only credentials may send"),
                ("s3cret-token-0123456789", "PUT /v1/table", 700 * kib,
                 b"request body larger than 524288 bytes (what TCP clients may send")):
            line = raw_request(port, f"{method} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\n"
                                     f"Content-Length: {n}\r\n\r\n")
            assert line.startswith("HTTP/1.1 413"), (method, line)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(f"{method} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\n"
                          f"Content-Length: {n}\r\n\r\n".encode())
                data = b""
                while b"}" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                assert b'"body_too_large"' in data and words in data, data
        # Without a length (chunked): a body a little past the share is
        # read, dropped and answered 413 when it ends; one that keeps coming
        # was read for ever, unanswered. Past as much again (and 1 MiB) its
        # connection is closed.
        head = ("PUT /v1/table HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token-0123456789\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        chunk = b"%x\r\n%s\r\n" % (64 * kib, b" " * (64 * kib))
        got, closed = exchange(port, head + chunk * 10 + b"0\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 413") and b'"body_too_large"' in got, got
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(head)
            sent, cut = 0, False
            while sent < 64 * 1024 * kib:
                try:
                    s.sendall(chunk)
                except OSError:
                    cut = True
                    break
                sent += len(chunk)
            # (what the sockets' buffers took counts in sent)
            assert cut and sent < 16 * 1024 * kib, sent
        said = re.search(r"a chunked body past its size limit kept coming \((\d+) bytes dropped\)",
                         open(tmp_path / "regiond.log").read())
        assert said and int(said.group(1)) <= 512 * kib + 1024 * kib + 64 * kib, said
        # The unix socket may send up to --max-body: this one is read (and
        # refused for what it says, not for its size).
        code, r = b.http("POST", "/v1/validate", raw=b"{" + b" " * (900 * kib) + b"}")
        assert code == 400 and r["error"]["code"] == "bad_request", r
    finally:
        b.stop()


def test_unread_table_answers_share_one_copy(tmp_path):
    """GET /v1/table's answer was made for every request, under the state
    lock: 120 read clients that did not read it held 120 copies (regiond
    at 1.3 GB for a 200k-prefix table) and held writes off for minutes.
    It is made once per generation and sent from that one copy."""
    b = Box(tmp_path, "sec-table")
    socks = []
    try:
        extra = "".join(f"      - 10.{i >> 8}.{i & 255}.0/24\n" for i in range(60000))
        doc = open(DEMO).read().replace("      - 49.36.0.0/14\n", "      - 49.36.0.0/14\n" + extra, 1)
        got, r = b.http("PUT", "/v1/table", {"document": doc, "expected_generation": 1})
        assert got == 200 and b.gen() == 2, r
        got, whole = b.http("GET", "/v1/table")
        assert got == 200 and whole["generation"]["id"] == 2 and "10.234.95.0/24" in whole["document"]
        size = len(json.dumps(whole))
        assert size > 2 * 1024 * 1024, size
        before = rss_kib(b.rd.pid)
        for _ in range(40):  # each asks for the table and reads nothing
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(b.api)
            s.sendall(b"GET /v1/table HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        time.sleep(2)
        grown = rss_kib(b.rd.pid) - before
        # One copy (the cache's) and change; 40 would be 40 times the size.
        assert grown * 1024 < 4 * size, (grown, size)
        # A write still goes through, and the next read has the new generation.
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))
        assert rc == 0 and b.gen() == 3, (rc, out, err)
        got, r = b.http("GET", "/v1/table")
        assert got == 200 and r["generation"]["id"] == 3 and "10.234.95.0/24" not in r["document"], r["generation"]
        # The readers still get whole answers of the generation they asked for.
        s = socks.pop()
        s.settimeout(30)
        data = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                n = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
                if len(body) >= n:
                    break
        assert json.loads(body)["generation"]["id"] == 2
    finally:
        for s in socks:
            s.close()
        b.stop()


def test_slow_connection_flood_does_not_shut_out(tmp_path):
    tok = token_file(tmp_path / "token", "s3cret-token-0123456789")
    port = free_port()
    b = Box(tmp_path, "sec-flood", regiond_args=("--listen", f"127.0.0.1:{port}", "--token-file", tok))
    flood = []
    try:
        # 300 connections from another loopback address, each sending half a
        # request head and then a byte now and then (a slowloris).
        for _ in range(300):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=("127.0.0.2", 0))
                s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
                flood.append(s)
            except OSError:
                pass  # refused past the per-address limit: that is the point
        for _round in range(3):
            for s in flood:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass
            p = subprocess.run([REGIONCTL, "--url", f"http://127.0.0.1:{port}", "--token-file", tok, "status"],
                               capture_output=True, text=True, timeout=30)
            assert p.returncode == 0 and "generation   1" in p.stdout, p.stderr
            rc, out, err = b.ctl("status")  # the unix socket
            assert rc == 0 and "generation   1" in out, err
            time.sleep(0.5)
    finally:
        for s in flood:
            s.close()
        b.stop()


def test_trickled_request_heads_cannot_shut_out_the_unix_socket(tmp_path):
    """70 local clients sending a request head a byte a second filled the
    API's 64 connections for as long as they kept trickling (the idle
    timeout never fired), and every status and write timed out. A head
    must now be in within 10 s; the trickling connections are closed and
    the operator gets through while they still try."""
    b = Box(tmp_path, "sec-head")
    flood = []
    try:
        for _ in range(70):
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(2)
                s.connect(b.api)
                s.sendall(b"G")
                flood.append(s)
            except OSError:
                pass
        # The head deadline is 10 s; the bound here is for a loaded machine
        # (it once passed 30 s under load): the trickling clients keep
        # trying throughout, and the operator must get through.
        served, closed, start = False, 0, time.time()
        while time.time() - start < 90 and not served:
            for s in flood:
                try:
                    s.sendall(b"E")
                except OSError:
                    pass
            p = subprocess.run([REGIONCTL, "-s", b.api, "status"], capture_output=True, text=True,
                               timeout=60)
            served = p.returncode == 0 and "generation   1" in p.stdout
            time.sleep(1)
        assert served, "the operator never got through the trickling clients"
        for s in flood:
            s.settimeout(0.2)
            try:
                closed += s.recv(1) == b""
            except (ConnectionResetError, BrokenPipeError):
                closed += 1
            except socket.timeout:
                pass
        assert closed >= 60, closed
    finally:
        for s in flood:
            s.close()
        b.stop()


def test_clients_that_never_read_their_answers_cannot_shut_out_the_unix_socket(tmp_path):
    """70 local clients each sending 50 pipelined requests and never
    reading an answer held the API's 64 connections for libmicrohttpd's
    60 s idle timeout (a writer blocked on a unix socket; nothing else
    ends it): `regionctl status` timed out, and a confirm sent in time
    was answered after the revert (a probe). An answer not taken for 10 s
    now ends its connection; the operator gets through while they sit."""
    b = Box(tmp_path, "sec-noread")
    flood = []
    try:
        for _ in range(70):
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(2)
                s.connect(b.api)
                s.sendall(b"GET /v1/table HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
                flood.append(s)
            except OSError:
                pass
        start = time.time()
        try:
            p = subprocess.run([REGIONCTL, "-s", b.api, "status"], capture_output=True, text=True,
                               timeout=50)
            served = p.returncode == 0 and "generation   1" in p.stdout
        except subprocess.TimeoutExpired:
            served = False
        # 10 s and a retry's worth; 60 s and more before
        assert served and time.time() - start < 40, "the operator never got through the non-readers"
        # What was sent, then the end: regiond closed them (each within 10 s
        # of its answer stalling; passes over them until 40 s are over).
        ended, left, until = 0, list(flood), time.time() + 40
        while left and time.time() < until:
            for s in list(left):
                s.settimeout(0.2)
                try:
                    while s.recv(65536):
                        pass
                except (ConnectionResetError, BrokenPipeError):
                    pass
                except socket.timeout:
                    continue
                ended += 1
                left.remove(s)
        assert ended >= 60, ended
    finally:
        for s in flood:
            s.close()
        b.stop()


def test_a_flood_of_refused_requests_is_not_logged_line_by_line(tmp_path):
    """Each request libmicrohttpd refuses itself (a 431 for a 40 KB head)
    was an err line: 3,218 unauthenticated requests wrote 3,218 lines in
    5 s, and filled the small disk the state directory shared with the
    log (a probe). At most 20 of its lines each 10 s; the rest counted
    and said."""
    tok = token_file(tmp_path / "token", "s3cret-token-0123456789")
    port = free_port()
    b = Box(tmp_path, "sec-logflood", regiond_args=("--listen", f"127.0.0.1:{port}", "--token-file", tok))
    try:
        head = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n"
        start = time.monotonic()
        for _ in range(300):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                try:
                    c.sendall(head)
                    c.recv(4096)
                except OSError:
                    pass
        wait_for(lambda: "libmicrohttpd messages in" in open(tmp_path / "regiond.log").read(), timeout=30,
                 what="the held-back count said")
        log = open(tmp_path / "regiond.log").read()
        windows = int((time.monotonic() - start) // 10) + 2  # each 10 s one began, and the last
        assert log.count("API on 127.0.0.1") <= 20 * windows, log[-3000:]
        held = sum(int(n) for n in re.findall(r"API: (\d+) more libmicrohttpd messages in", log))
        assert held + log.count("API on 127.0.0.1") >= 300, log[-3000:]
        assert b.ctl("status")[0] == 0
    finally:
        b.stop()


def test_refused_credentials_are_logged_and_counted(tmp_path):
    """3,000 wrong tokens in a row left no log line and no metric (a
    probe). The first refusal of each 10 s is logged with its address and
    reason, the rest of those 10 s as one line; every one is counted in
    regiond_api_credentials_refused_total by status."""
    tok = token_file(tmp_path / "token", "s3cret-token-0123456789")
    rtok = token_file(tmp_path / "rtoken", "read-token-0123456789ab")
    port = free_port()
    b = Box(tmp_path, "sec-authlog", regiond_args=("--listen", f"127.0.0.1:{port}", "--token-file", tok,
                                                   "--read-token-file", rtok))
    try:
        for i in range(40):
            assert raw_request(port, "GET /v1/status HTTP/1.1\r\nHost: x\r\n"
                                     "Authorization: Bearer wrong-token-0123456789\r\n\r\n").startswith("HTTP/1.1 401")
        for i in range(3):
            assert raw_request(port, "POST /v1/rollback HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                     "Authorization: Bearer read-token-0123456789ab\r\n\r\n", b"{}"
                               ).startswith("HTTP/1.1 403")
        st, text = b.http("GET", "/metrics")
        assert st == 200
        assert 'regiond_api_credentials_refused_total{status="401"} 40' in text, text
        assert 'regiond_api_credentials_refused_total{status="403"} 3' in text, text
        wait_for(lambda: "more requests refused for their credentials" in open(tmp_path / "regiond.log").read(),
                 timeout=30, what="the window's count said")
        log = open(tmp_path / "regiond.log").read()
        assert "API: request refused (401) from 127.0.0.1 port " in log, log[-3000:]
        assert "the Authorization header holds no valid token" in log, log[-3000:]
        # One line a window (10 s): the requests above fit in one unless a
        # loaded machine spreads them over more; every one is in a line.
        firsts = log.count("API: request refused (")
        more = [tuple(map(int, m)) for m in re.findall(
            r"API: (\d+) more requests refused for their credentials in \d+ s \((\d+) without a valid one, "
            r"(\d+) not allowed\); the last from 127\.0\.0\.1 port ", log)]
        assert firsts + sum(m[0] for m in more) == 43, log[-3000:]
        assert all(m[0] == m[1] + m[2] for m in more), more
        assert firsts <= len(more) + 1, log[-3000:]
    finally:
        b.stop()


def test_trickled_request_bodies_cannot_shut_out_the_unix_socket(tmp_path):
    """70 local clients sending a whole PUT head and then its body a byte a
    second held the API's 64 connections for as long as they kept trickling
    (the head deadline ends with the head, and each byte reset the idle
    timeout): regionctl status waited for ever. A body must average 256 KiB/s
    after 10 s; the trickling connections are closed, said once in the log,
    the operator gets through and nothing changed."""
    b = Box(tmp_path, "sec-body")
    flood, stop = [], threading.Event()
    try:
        for _ in range(70):
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(2)
                s.connect(b.api)
                s.sendall(b"PUT /v1/table HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nregions:")
                flood.append(s)
            except OSError:
                pass

        def trickle():
            while not stop.wait(1):
                for s in flood:
                    try:
                        s.sendall(b" ")
                    except OSError:
                        pass
        threading.Thread(target=trickle, daemon=True).start()
        start = time.time()
        try:
            p = subprocess.run([REGIONCTL, "-s", b.api, "status"], capture_output=True, text=True,
                               timeout=40)
            served = p.returncode == 0 and "generation   1" in p.stdout
        except subprocess.TimeoutExpired:
            served = False
        assert served and time.time() - start < 20, "the operator never got through the trickling bodies"
        stop.set()
        closed = 0
        for s in flood:
            s.settimeout(0.2)
            try:
                closed += s.recv(1) in (b"", None)
            except (ConnectionResetError, BrokenPipeError):
                closed += 1
            except socket.timeout:
                pass
        assert closed >= 60, closed
        assert b.gen() == 1
        time.sleep(1)
        log = open(tmp_path / "regiond.log").read()
        assert "whose request body arrived at under 262144 bytes/s" in log, log
    finally:
        stop.set()
        for s in flood:
            s.close()
        b.stop()


def test_min_body_rate_sets_the_bound(tmp_path):
    """--min-body-rate moves the bound a body must keep (a slow link lowers
    it); here raised to 1 MiB/s, a body sent at about 100 KiB/s is cut once
    the 10 s have passed, with the rate in the log, and nothing changed."""
    b = Box(tmp_path, "sec-rate", regiond_args=("--min-body-rate", "1048576"))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(5)
        s.connect(b.api)
        s.sendall(b"PUT /v1/table HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        start, cut = time.time(), False
        while time.time() - start < 40:
            try:
                s.sendall(b"#" * 10240)
            except OSError:
                cut = True
                break
            time.sleep(0.1)
        assert cut, "a body under --min-body-rate kept its connection"
        assert time.time() - start > 9, "cut before the 10 s of grace"
        assert b.gen() == 1
        wait_for(lambda: "under 1048576 bytes/s" in open(tmp_path / "regiond.log").read(), timeout=15,
                 what="the log line")
        p = subprocess.run([REGIOND, "--min-body-rate", "100"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "--min-body-rate takes bytes a second >= 1024" in p.stderr, p
    finally:
        s.close()
        b.stop()


def test_named_tokens_are_recorded_by_name(tmp_path):
    """Token files hold one token a line, each optionally named: a write
    is recorded (history `by`, the log) under its token's name, a read
    token cannot write, and malformed files stop regiond naming the line."""
    from test_e2e import SG_LOCAL, demo_variant  # noqa: E402
    tok = token_file(tmp_path / "tokens", "# automation and the on-call engineer\n"
                     "routing-automation auto-secret-0123456789\n\noncall oncall-secret-0123456789")
    # a CRLF file reads as its LF twin (on either side)
    rtok = token_file(tmp_path / "read-tokens", "grafana grafana-secret-0123456789\r\n"
                      "plain-read-secret-0123456789\r")
    port = free_port()
    b = Box(tmp_path, "sec-named", regiond_args=("--listen", f"127.0.0.1:{port}", "--token-file", tok,
                                                 "--read-token-file", rtok))
    url = ["--url", f"http://127.0.0.1:{port}"]

    def ctl_with(secret, *args):
        f = token_file(tmp_path / "client-token", secret)
        return subprocess.run([REGIONCTL, *url, "--token-file", f, *args], capture_output=True, text=True,
                              timeout=60)
    try:
        p = ctl_with("oncall-secret-0123456789", "apply", demo_variant(tmp_path, "sg.yaml", *SG_LOCAL))
        assert p.returncode == 0, p.stderr
        for secret in ("grafana-secret-0123456789", "plain-read-secret-0123456789"):
            assert ctl_with(secret, "-j", "history").returncode == 0
            p = ctl_with(secret, "rollback")
            assert p.returncode == 1 and "may read, not write" in p.stderr, p.stderr
        p = ctl_with("auto-secret-0123456789\r", "rollback")
        assert p.returncode == 0, p.stderr
        import json
        h = json.loads(ctl_with("grafana-secret-0123456789", "-j", "history").stdout)["history"]
        assert h[0]["by"].startswith("write token 'routing-automation' from 127.0.0.1 port"), h[0]
        assert h[1]["by"].startswith("write token 'oncall' from 127.0.0.1 port"), h[1]
        assert "applied by write token 'oncall'" in open(tmp_path / "regiond.log").read()
        assert ctl_with("wrong-secret-0123456789", "-j", "history").returncode == 1
    finally:
        b.stop()
    for text, said in (("bad/name secret-0123456789abc", "tokens:1: a token's name is 1..32"),
                       ("name short", "tokens:1: a token of 16+ characters"),
                       # a CR inside a line cut the token there, a control
                       # byte went into the compare: neither is a token
                       ("a secret-0123456789abc\rtail", "tokens:1: a token of 16+ characters, without "
                        "spaces or control characters"),
                       ("# x\nsecret-0123\x01456789abc", "tokens:2: a token of 16+ characters"),
                       ("a secret-0123456789abc\nb secret-0123456789abc", "tokens:2: this token is given twice"),
                       ("a secret-0123456789abc\na other-0123456789abcd", "tokens:2: the name 'a' is given twice"),
                       ("# only a comment", "no token in it")):
        f = token_file(tmp_path / "tokens", text)
        p = subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket",
                            str(tmp_path / "api2.sock"), "--state-dir", str(tmp_path / "state2"),
                            "--listen", f"127.0.0.1:{free_port()}", "--token-file", f],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and said in p.stderr, (text, p.stderr)
    # The same token as a write and a read token.
    f = token_file(tmp_path / "tokens", "same-secret-0123456789")
    r = token_file(tmp_path / "rtokens", "same-secret-0123456789")
    p = subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket",
                        str(tmp_path / "api2.sock"), "--state-dir", str(tmp_path / "state2"),
                        "--listen", f"127.0.0.1:{free_port()}", "--token-file", f, "--read-token-file", r],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "given twice" in p.stderr, p.stderr


def stalled_uploads(port_or_path, head, n, size):
    """@n connections that each send @head and then 90 % of a @size body and
    stall; returns (sockets, answers: None for one still buffered)."""
    socks, answers = [], []
    for _ in range(n):
        if isinstance(port_or_path, int):
            s = socket.create_connection(("127.0.0.1", port_or_path), timeout=5)
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(port_or_path)
        s.sendall(head)
        try:
            s.sendall(b" " * (size * 9 // 10))
        except OSError:
            pass  # answered and closed before its body
        socks.append(s)
    time.sleep(0.5)
    for s in socks:
        s.settimeout(0.5)
        try:
            answers.append(s.recv(4096))
        except socket.timeout:
            answers.append(None)
    return socks, answers


def test_readers_and_tcp_clients_cannot_fill_the_bound_for_writers(tmp_path):
    """Two validate bodies of 256 MiB on a read token once filled
    --max-buffered, and every write was refused 503 uploads_full, on the
    unix socket too, for as long as they trickled. Read-only credentials
    now hold at most half of what TCP clients may, and TCP clients leave
    one --max-body to the unix socket."""
    mib = 1 << 20
    tok = token_file(tmp_path / "token", "s3cret-token-0123456789")
    rtok = token_file(tmp_path / "rtoken", "read-only-token-0123456789")
    port = free_port()
    # --max-buffered 4 MiB: TCP 3 MiB, read-only 1.5 MiB, the unix socket's 1 MiB kept.
    b = Box(tmp_path, "sec-shares", regiond_args=("--max-body", str(mib), "--max-buffered", str(4 * mib),
                                                  "--listen", f"127.0.0.1:{port}", "--token-file", tok,
                                                  "--read-token-file", rtok))
    socks = []
    url = ["--url", f"http://127.0.0.1:{port}"]
    try:
        # Bodies of --max-body each: four of them filled the whole bound.
        head = (b"POST /v1/validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer read-only-token-0123456789\r\n"
                b"Content-Length: %d\r\n\r\n" % mib)
        s, answers = stalled_uploads(port, head, 6, mib)
        socks += s
        # One is held whole; a second grows until it would pass 1.5 MiB (its
        # 503 comes when its body ends); the rest are refused from their
        # heads once regiond has read the first bodies (how many, depends on
        # the machine's load: under ASan none was refused that early once).
        refused = [a for a in answers if a]
        assert all(a.startswith(b"HTTP/1.1 503") and b'"uploads_full"' in a and
                   b"read-only credentials 1572864" in a for a in refused), answers
        # A writer on TCP still gets through, and so does the unix socket.
        p = subprocess.run([REGIONCTL, *url, "--token-file", tok, "apply",
                            demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and b.gen() == 2, p
        # Writers on TCP filling their share: the unix socket keeps its own.
        head = (b"PUT /v1/table HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token-0123456789\r\n"
                b"Content-Length: %d\r\n\r\n" % mib)
        s, answers = stalled_uploads(port, head, 4, mib)
        socks += s
        refused = [a for a in answers if a]  # with the reader's 1 MiB: 3 MiB of TCP
        assert all(b"TCP clients 3145728" in a for a in refused), answers
        rc, out, err = b.ctl("rollback", "1")
        assert rc == 0 and b.gen() == 3, (rc, out, err)
    finally:
        for s in socks:
            s.close()
        b.stop()


def test_uploads_in_flight_share_one_bound(tmp_path):
    """Each API connection could buffer --max-body (256 MiB) and there are
    64 of them: regiond could be made to hold 16 GiB. The bodies in flight
    now share --max-buffered: a request whose body would pass it is refused
    503 uploads_full (before its body when its length says so, else as it
    grows), one log line a second; regiond's memory stays bounded, status
    answers, and once the uploads end a write gets through."""
    mib = 1 << 20
    b = Box(tmp_path, "sec-buffered", regiond_args=("--max-body", str(mib), "--max-buffered", str(2 * mib)))
    slow = []
    try:
        before = rss_kib(b.rd.pid)
        head = b"PUT /v1/table HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
        answers = []
        for _ in range(20):  # each sends 900 KB of its 1 MB and stalls
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(b.api)
            s.sendall(head)
            try:
                s.sendall(b" " * 900000)
            except OSError:
                pass  # answered and closed before its body: the point
            slow.append(s)
        time.sleep(0.5)
        for s in slow:
            s.settimeout(0.5)
            try:
                answers.append(s.recv(4096))
            except socket.timeout:
                answers.append(None)  # still buffered, waiting for the rest
        held = [a for a in answers if a is None]
        refused = [a for a in answers if a and a.startswith(b"HTTP/1.1 503")]
        assert len(held) == 2 and len(refused) == 18, answers
        assert all(b'"uploads_full"' in a and b"--max-buffered (2097152 bytes;" in a for a in refused), refused[0]
        # A body without a length is refused as it grows past the bound.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(b.api)
            s.sendall(b"PUT /v1/table HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(4):
                s.sendall(b"%x\r\n%s\r\n" % (100000, b" " * 100000))
            s.sendall(b"0\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 503"), "a chunked body past the bound"
        assert rss_kib(b.rd.pid) - before < 12 * 1024, (before, rss_kib(b.rd.pid))
        rc, out, err = b.ctl("status")
        assert rc == 0 and "generation   1" in out, (rc, out, err)
        log = open(tmp_path / "regiond.log").read()
        assert "request bodies in flight would pass --max-buffered 2097152 bytes" in log, log
        assert log.count("would pass --max-buffered") <= 3, log
        # The stalled uploads end: what they held is free again.
        for s in slow:
            s.close()
        slow = []
        time.sleep(0.5)
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))
        assert rc == 0 and b.gen() == 2, (rc, out, err)
    finally:
        for s in slow:
            s.close()
        b.stop()


def test_max_buffered_below_max_body_is_refused(tmp_path):
    p = subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket",
                        str(tmp_path / "api.sock"), "--state-dir", str(tmp_path / "state"),
                        "--max-body", "1048576", "--max-buffered", "1000000"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p
    assert "--max-buffered 1000000 is below --max-body 1048576" in p.stderr, p.stderr


def expensive_rules(n):
    """A demo table with @n payload rules whose database Hyperscan cannot
    build within the compile's 30 s of CPU (found by a hostile probe)."""
    rules = "".join(f"  - {{name: q{i}, field: payload, pattern: 'q{i}[^z]{{1000,3000}}z[^y]{{1000,3000}}y', "
                    f"services: [sync], action: count}}\n" for i in range(n))
    return open(DEMO).read() + rules


def test_a_long_compile_of_a_read_holds_no_one_back(tmp_path):
    """POST /v1/validate compiled the document's content rules holding the
    state lock: for the compile's 30 s the main loop (regionfwd's sync,
    health, the XDP filter's re-attach) and every write waited, and status
    said regionfwd unreachable. A reader may send such a table. The compile
    now runs before the lock: while it runs, status is healthy and an apply
    goes through; the validate still ends with pattern_too_expensive (and
    regionctl waits for it), and so does its repetition. The compile's CPU
    limit is --content-compile-cpu's 10 s here (the refusal names it), not
    the default 30: the wait is the same, a third as long."""
    tok = token_file(tmp_path / "token", "writer-token-0123456789")
    rtok = token_file(tmp_path / "rtoken", "reader-token-0123456789")
    port = free_port()
    doc = tmp_path / "expensive.yaml"
    doc.write_text(expensive_rules(1000))
    b = Box(tmp_path, "sec-compile", regiond_args=["--listen", f"127.0.0.1:{port}", "--token-file", tok,
                                                   "--read-token-file", rtok,
                                                   "--content-compile-cpu", "10"])
    reader = [REGIONCTL, "--url", f"http://127.0.0.1:{port}", "--token-file", rtok, "validate", str(doc)]
    try:
        answer = {}

        def validate():
            answer["p"] = subprocess.run(reader, capture_output=True, text=True, timeout=400)
        t = threading.Thread(target=validate)
        t.start()
        # The compile starts once regiond has read the body; a moment
        # later (not a bound on anything) the others ask.
        time.sleep(3)
        assert t.is_alive(), answer
        rc, out, err = b.ctl("status")
        still_compiling = t.is_alive()
        assert rc == 0 and "unreachable" not in out, (rc, out, err)
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))
        assert rc == 0 and b.gen() == 2, (rc, out, err)
        # Both answered while the compile ran: they did not wait for it.
        assert still_compiling and t.is_alive(), "status or the apply waited for the compile (or it ended first)"
        t.join(400)
        p = answer["p"]
        assert p.returncode == 1 and "pattern_too_expensive" in p.stderr + p.stdout, \
            (p.returncode, p.stdout, p.stderr)
        # Refused by the CPU limit, or, on a starved machine, by the
        # wall-clock one derived from it (3 x 10 + 5 s): either names it.
        assert "exceeded its CPU limit (10 s)" in p.stderr + p.stdout or "within 35 s" in p.stderr + p.stdout, \
            (p.stdout, p.stderr)
        again = subprocess.run(reader, capture_output=True, text=True, timeout=400)
        assert (again.returncode, again.stdout, again.stderr) == (p.returncode, p.stdout, p.stderr)
    finally:
        b.stop()


def test_a_table_past_max_body_is_said_as_regiond_answers_it(tmp_path):
    """regiond answers a body past --max-body from its Content-Length (413
    body_too_large) and closes the connection; regionctl, still sending,
    met a broken pipe and said regiond unreachable (exit 3: a script
    retries that for ever). It reads the answer that came: exit 1."""
    b = Box(tmp_path, "sec-bigdoc", regiond_args=("--max-body", "1048576"))
    try:
        big = tmp_path / "big.yaml"
        with open(DEMO) as src:
            big.write_text(src.read() + "".join(f"# {'x' * 100} {i}\n" for i in range(40000)))
        for cmd in ("validate", "apply"):
            rc, out, err = b.ctl(cmd, str(big))
            assert rc == 1 and "body_too_large (413)" in err, (cmd, rc, err)
            assert "cannot reach" not in err, err
        assert b.gen() == 1
    finally:
        b.stop()


def test_a_content_length_past_64_bits_is_the_librarys_413(tmp_path):
    """A Content-Length past 2^64 - 1 is refused by libmicrohttpd 0.9.75
    itself while it parses the head, before any callback of regiond's
    but the request line's: 413 with its HTML page, no JSON code, and its
    status line and headers sent twice (a minimal libmicrohttpd program
    does the same). Up to 2^64 - 1 regiond answers, 413 body_too_large.
    docs/api.md says so (Errors)."""
    api = str(tmp_path / "api.sock")
    rd = subprocess.Popen([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket", api,
                           "--state-dir", str(tmp_path / "state")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def send(length):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(api)
            s.sendall(f"POST /v1/validate HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}".encode())
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return got.decode(errors="replace")
                got += chunk

    def up():
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(api)
            return True
        except OSError:
            return False

    try:
        wait_for(up, what="regiond's API socket")
        for length in ("18446744073709551615", "9223372036854775808"):
            got = send(length)
            head, _, body = got.partition("\r\n\r\n")
            assert head.startswith("HTTP/1.1 413 ") and got.count("HTTP/1.1 ") == 1, got
            assert json.loads(body)["error"]["code"] == "body_too_large", got
        for length in ("18446744073709551616", "99999999999999999999", "1" * 25):
            got = send(length)
            assert got.startswith("HTTP/1.1 413 ") and got.count("HTTP/1.1 413 ") == 2, got
            assert "<html>" in got and '"code"' not in got, got
    finally:
        rd.terminate()
        rd.wait(30)
