"""TLS and client certificates on regiond's TCP API (issue 16): HTTPS only on
the --listen port, credentials (token, client certificate) checked from the
headers before any body is read, a client certificate's subject recorded as
who made a change, clear start errors for bad key and certificate files, and
regionctl refusing a server it cannot verify. The CA and every certificate
are made here with openssl; traffic stays on loopback."""
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import http.client

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from test_e2e import REGIOND, REGIONCTL, Box, SG_LOCAL, demo_variant  # noqa: E402
from test_api_security import free_port, token_file  # noqa: E402
from memcap import capped  # noqa: E402
from latewriter import write_later  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")

WRITE_TOKEN = "tls-write-token-0123456789"
READ_TOKEN = "tls-read-token-0123456789"
WRITER = "CN=automation,O=Example Corp"  # RFC 4514: the most specific part first
READER = "CN=dashboard,O=Example Corp"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_cert(d, name, subj, ca="ca", ext=""):
    """A P-256 key (mode 0600) and a certificate for it signed by @ca."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", subj, cwd=d)
    (d / f"{name}.ext").write_text(ext + "\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=d)
    os.chmod(d / f"{name}.key", 0o600)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Two CAs; regiond's certificate (127.0.0.1 only); clients of the first CA
    (a writer, a reader) and an impostor with the writer's name from the other."""
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/O=Example Corp/CN={ca}", cwd=d)
    make_cert(d, "server", "/CN=regiond", ext="subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    make_cert(d, "writer", "/O=Example Corp/CN=automation", ext="extendedKeyUsage=clientAuth")
    make_cert(d, "reader", "/O=Example Corp/CN=dashboard", ext="extendedKeyUsage=clientAuth")
    make_cert(d, "impostor", "/O=Example Corp/CN=automation", ca="other-ca", ext="extendedKeyUsage=clientAuth")
    # What the operator writes into --tls-writers is what openssl prints.
    p = subprocess.run(["openssl", "x509", "-in", "writer.pem", "-noout", "-subject", "-nameopt", "RFC2253"],
                       cwd=d, capture_output=True, text=True, check=True)
    assert p.stdout.strip() == f"subject={WRITER}", p.stdout
    (d / "writers").write_text(f"# who may write\n{WRITER}\n")
    return d


def tls_args(pki, client_ca=True):
    a = ["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key")]
    if client_ca:
        a += ["--tls-client-ca", str(pki / "ca.pem"), "--tls-writers", str(pki / "writers")]
    return a


def https(port, pki, method, path, body=None, cert=None, token=None, host="127.0.0.1"):
    """One request with python's own TLS client: (status, parsed JSON)."""
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    c = http.client.HTTPSConnection(host, port, context=ctx, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


def tls_head_only(port, pki, head, cert=None):
    """Send a request's head and a few bytes of a 200 MB body over TLS; return
    the status line, which must come before the body does."""
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(head.encode() + b"Content-Type: application/json\r\nContent-Length: 200000000\r\n\r\n"
                      + b'{"document": "')
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\r\n", 1)[0].decode()


def ctl(port, pki, *args, ca="ca", cert=None, token=None, host="127.0.0.1"):
    line = [REGIONCTL, "--url", f"https://{host}:{port}"]
    if ca:
        line += ["--ca", str(pki / f"{ca}.pem")]
    if cert:
        line += ["--cert", str(pki / f"{cert}.pem"), "--key", str(pki / f"{cert}.key")]
    if token:
        line += ["--token-file", token]
    return subprocess.run(line + list(args), capture_output=True, text=True, timeout=60)


def plain_http_fails(port):
    """A plain HTTP request to the TLS port gets no HTTP answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            data = b""
    return not data.startswith(b"HTTP/")


def test_https_with_tokens(tmp_path, pki):
    """TLS without client certificates: tokens as on plain TCP, over HTTPS only."""
    tok = token_file(tmp_path / "token", WRITE_TOKEN)
    rtok = token_file(tmp_path / "read-token", READ_TOKEN)
    port = free_port()
    b = Box(tmp_path, "tls-token", regiond_args=("--listen", f"127.0.0.1:{port}", "--token-file", tok,
                                                 "--read-token-file", rtok, *tls_args(pki, client_ca=False)))
    try:
        p = ctl(port, pki, "status", token=tok)
        assert p.returncode == 0 and "generation   1" in p.stdout, p.stderr
        code, s = https(port, pki, "GET", "/v1/status", token=READ_TOKEN)
        assert code == 200 and s["generation"]["id"] == 1
        code, e = https(port, pki, "POST", "/v1/confirm", {}, token=READ_TOKEN)
        assert code == 403 and e["error"]["code"] == "forbidden"
        # Missing or wrong token: 401 from the headers, the 200 MB body never sent.
        for auth in ("", "Authorization: Bearer wrong-token-0123456789\r\n"):
            line = tls_head_only(port, pki, f"PUT /v1/table HTTP/1.1\r\nHost: x\r\n{auth}")
            assert line.startswith("HTTP/1.1 401"), line
        assert https(port, pki, "GET", "/v1/status")[0] == 401
        # The port speaks TLS only; regionctl says what to try.
        assert plain_http_fails(port)
        p = subprocess.run([REGIONCTL, "--url", f"http://127.0.0.1:{port}", "--token-file", tok, "status"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and "use https://" in p.stderr, p  # status: 2 unreachable
        # A change over HTTPS with the token is recorded as the token's.
        new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
        p = ctl(port, pki, "apply", new, "--comment", "over https", token=tok)
        assert p.returncode == 0 and "generation 2" in p.stdout, p.stderr
        h = json.loads(ctl(port, pki, "-j", "history", token=rtok).stdout)["history"]
        assert re.fullmatch(r"write token from 127\.0\.0\.1 port \d+", h[0]["by"]), h[0]
        assert "(HTTPS)" in (tmp_path / "regiond.log").read_text()
    finally:
        b.stop()


def test_regionctl_refuses_a_server_it_cannot_verify(tmp_path, pki):
    tok = token_file(tmp_path / "token", WRITE_TOKEN)
    port = free_port()
    b = Box(tmp_path, "tls-verify", regiond_args=("--listen", f"127.0.0.1:{port}", "--token-file", tok,
                                                  *tls_args(pki, client_ca=False)))
    try:
        # Signed by another CA than --ca names.
        p = ctl(port, pki, "status", ca="other-ca", token=tok)
        assert p.returncode == 2 and p.stdout == "", p  # status: 2 unreachable
        assert "regiond's certificate does not verify" in p.stderr and "issuer is unknown" in p.stderr, p.stderr
        assert "other-ca.pem" in p.stderr, p.stderr
        # No --ca: the system's trust store does not know this CA either.
        p = ctl(port, pki, "status", ca=None, token=tok)
        assert p.returncode == 2 and "does not verify" in p.stderr and "--ca" in p.stderr, p.stderr
        # The right CA, but the name asked for is not the certificate's.
        p = ctl(port, pki, "status", token=tok, host="localhost")
        assert p.returncode == 2 and "does not match" in p.stderr, p.stderr
        # Other commands say "unreachable" with 3, as for a regiond that is not there.
        p = ctl(port, pki, "history", token=tok, host="localhost")
        assert p.returncode == 3 and "does not match" in p.stderr, p.stderr
        # A --ca that is no certificate is the command line's fault: usage.
        p2 = subprocess.run([REGIONCTL, "--url", f"https://127.0.0.1:{port}", "--ca", str(tmp_path / "nothing.pem"),
                             "status"], capture_output=True, text=True, timeout=60)
        assert p2.returncode == 2 and "nothing.pem" in p2.stderr, p2
        # TLS options without https:// are refused, not ignored.
        p = subprocess.run([REGIONCTL, "--url", f"http://127.0.0.1:{port}", "--ca", str(pki / "ca.pem"), "status"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and "https://" in p.stderr, p
    finally:
        b.stop()


def test_client_certificates(tmp_path, pki):
    tok = token_file(tmp_path / "token", WRITE_TOKEN)
    port = free_port()
    b = Box(tmp_path, "tls-client", regiond_args=("--listen", f"127.0.0.1:{port}", "--token-file", tok,
                                                  *tls_args(pki)))
    try:
        # No client certificate: refused, whatever the token, before the body.
        p = ctl(port, pki, "status", token=tok)  # 3: health unknown (1 would read as degraded)
        assert p.returncode == 3 and "unauthorized (401)" in p.stderr and "client certificate" in p.stderr, p
        line = tls_head_only(port, pki, f"PUT /v1/table HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WRITE_TOKEN}\r\n")
        assert line.startswith("HTTP/1.1 401"), line
        # One from another CA (python sends it; GnuTLS would not even offer it).
        code, e = https(port, pki, "GET", "/v1/status", cert="impostor")
        assert code == 401 and "does not verify" in e["error"]["reason"], e
        # A server certificate is not a client certificate (its key purpose).
        code, e = https(port, pki, "GET", "/v1/status", cert="server")
        assert code == 401, e
        # A verified certificate reads; a wrong token next to it is refused
        # before the body, not ignored.
        code, s = https(port, pki, "GET", "/v1/status", cert="reader")
        assert code == 200 and s["generation"]["id"] == 1
        p = ctl(port, pki, "status", cert="reader")
        assert p.returncode == 0 and "generation   1" in p.stdout, p.stderr
        line = tls_head_only(port, pki, "PUT /v1/table HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-0123456789"
                             "abcdef\r\n", cert="reader")
        assert line.startswith("HTTP/1.1 401"), line
        # A subject not in --tls-writers may not write: 403, before the body.
        line = tls_head_only(port, pki, "PUT /v1/table HTTP/1.1\r\nHost: x\r\n", cert="reader")
        assert line.startswith("HTTP/1.1 403"), line
        new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
        p = ctl(port, pki, "apply", new, cert="reader")
        assert p.returncode == 1 and "forbidden (403)" in p.stderr and READER in p.stderr, p
        assert b.gen() == 1
        # The listed subject writes, and the history says so.
        p = ctl(port, pki, "apply", new, "--comment", "by certificate", "--author", "bot", cert="writer")
        assert p.returncode == 0 and "generation 2" in p.stdout, p.stderr
        # The write token turns a reading certificate into a writer (second factor).
        code, r = https(port, pki, "POST", "/v1/rollback", {"comment": "token and cert"}, cert="reader",
                        token=WRITE_TOKEN)
        assert code == 200 and r["generation"]["id"] == 3, r
        p = ctl(port, pki, "history", cert="reader")
        assert p.returncode == 0, p.stderr
        assert re.search(rf"\[by client certificate {WRITER} from 127\.0\.0\.1 port \d+\]", p.stdout), p.stdout
        h = json.loads(ctl(port, pki, "-j", "history", cert="reader").stdout)["history"]
        assert (h[1]["author"], h[1]["comment"]) == ("bot", "by certificate")
        assert re.fullmatch(rf"client certificate {WRITER} from 127\.0\.0\.1 port \d+", h[1]["by"]), h[1]
        assert re.fullmatch(rf"write token with client certificate {READER} from 127\.0\.0\.1 port \d+",
                            h[0]["by"]), h[0]
        log = (tmp_path / "regiond.log").read_text()
        assert "(HTTPS, client certificates required)" in log
        assert re.search(rf"generation 2 \([0-9a-f]+\) applied by client certificate {WRITER} from 127\.0\.0\.1 "
                         r"port \d+ \(PUT /v1/table\), author 'bot': by certificate", log), log
        assert plain_http_fails(port)
    finally:
        b.stop()


def regiond_start_error(tmp_path, *args):
    """regiond's exit status and stderr when it refuses to start (no regionfwd needed)."""
    p = subprocess.run([REGIOND, "--dataplane", str(tmp_path / "none.sock"), "--api-socket", str(tmp_path / "api.sock"),
                        "--state-dir", str(tmp_path / "state"), "--listen", f"127.0.0.1:{free_port()}", *args],
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr


def test_bad_key_and_certificate_files_stop_regiond(tmp_path, pki):
    tok = token_file(tmp_path / "token", WRITE_TOKEN)
    cert, key = str(pki / "server.pem"), str(pki / "server.key")
    # A key its group or others may read.
    open_key = tmp_path / "open.key"
    shutil.copy(key, open_key)
    for mode in (0o644, 0o640, 0o604):
        open_key.chmod(mode)
        rc, err = regiond_start_error(tmp_path, "--token-file", tok, "--tls-cert", cert, "--tls-key", str(open_key))
        assert rc == 2 and f"--tls-key {open_key}: mode {mode:04o}" in err and "chmod 600" in err, err
    # The key of another certificate.
    rc, err = regiond_start_error(tmp_path, "--token-file", tok, "--tls-cert", cert, "--tls-key",
                                  str(pki / "writer.key"))
    assert rc == 2 and "does not match" in err and str(pki / "writer.key") in err and cert in err, err
    # Not PEM: a key where the certificate goes, a certificate where the key goes.
    rc, err = regiond_start_error(tmp_path, "--token-file", tok, "--tls-cert", key, "--tls-key", key)
    assert rc == 2 and f"--tls-cert {key}: no PEM certificate" in err, err
    not_a_key = tmp_path / "cert-as.key"
    shutil.copy(cert, not_a_key)
    not_a_key.chmod(0o600)
    rc, err = regiond_start_error(tmp_path, "--token-file", tok, "--tls-cert", cert, "--tls-key", str(not_a_key))
    assert rc == 2 and f"--tls-key {not_a_key}: no unencrypted PEM private key" in err, err
    rc, err = regiond_start_error(tmp_path, "--token-file", tok, "--tls-cert", cert, "--tls-key", key,
                                  "--tls-client-ca", tok)
    assert rc == 2 and f"--tls-client-ca {tok}: no PEM certificate" in err, err
    # Missing files, and options that only make sense together.
    rc, err = regiond_start_error(tmp_path, "--token-file", tok, "--tls-cert", cert, "--tls-key",
                                  str(tmp_path / "missing.key"))
    assert rc == 2 and "missing.key: No such file" in err, err
    rc, err = regiond_start_error(tmp_path, "--token-file", tok, "--tls-cert", cert)
    assert rc == 2 and "--tls-cert and --tls-key go together" in err, err
    rc, err = regiond_start_error(tmp_path, "--token-file", tok, "--tls-cert", cert, "--tls-key", key,
                                  "--tls-writers", str(pki / "writers"))
    assert rc == 2 and "--tls-writers needs --tls-client-ca" in err, err
    rc, err = regiond_start_error(tmp_path, "--tls-cert", cert, "--tls-key", key)
    assert rc == 2 and "--listen needs --token-file" in err, err
    # A writers file in OpenSSL's slash form would never match: said at start.
    slash = tmp_path / "slash-writers"
    slash.write_text("/O=Example Corp/CN=automation\n")
    rc, err = regiond_start_error(tmp_path, *tls_args(pki)[:6], "--tls-writers", str(slash))
    assert rc == 2 and "line 1" in err and "RFC2253" in err, err
    open_writers = tmp_path / "open-writers"
    open_writers.write_text(WRITER + "\n")
    open_writers.chmod(0o666)
    rc, err = regiond_start_error(tmp_path, *tls_args(pki)[:6], "--tls-writers", str(open_writers))
    assert rc == 2 and f"--tls-writers {open_writers}: mode 0666" in err, err


def test_a_tls_peer_that_stops_reading_does_not_hold_regionctl(tmp_path, pki):
    """A peer that completes the TLS handshake, then reads nothing (a hung
    regiond behind its TLS port, a stuck proxy): regionctl's send times out
    (SO_SNDTIMEO, --timeout), which GnuTLS reports as GNUTLS_E_AGAIN.
    regionctl took that for "try again" and spun at full CPU for ever; it
    now gives up within --timeout: exit 5, a write whose outcome is unknown,
    with the reason."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    # No TLS 1.3 session tickets: regionctl would leave them unread, and
    # its close would then reset the connection, discarding what it sent.
    ctx.num_tickets = 0
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive buffer (accepted sockets inherit it): the peer's window
    # fills after some kilobytes, not megabytes.
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    held, done = [], threading.Event()

    def serve():
        try:
            c, _ = srv.accept()
            held.append(ctx.wrap_socket(c, server_side=True))  # the handshake, then silence
        except (OSError, ssl.SSLError):
            pass
        done.wait(90)

    threading.Thread(target=serve, daemon=True).start()
    # 1,000,000 prefixes: some 17 MB of request body (JSON), several times
    # what loopback's socket buffers take (~2.5 MB).
    big = tmp_path / "big.txt"
    big.write_text("".join(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32\n" for i in range(1000000)))
    try:
        start = time.monotonic()
        p = ctl(port, pki, "--timeout", "2", "prefixes", "add", "india", str(big))
        took = time.monotonic() - start
        assert held, ("regionctl never completed the handshake", p.returncode, p.stderr)
        assert p.returncode == 5, (p.returncode, p.stderr)
        assert "may or may not have been applied" in p.stderr, p.stderr
        assert took < 30, took  # ctl()'s own bound is 60 s; the spin never ended
        # It was the send that gave up, not a wait for an answer after the
        # whole body went out: what reached this end is less than the body
        # (2.8 MB of 17 when written).
        got = 0
        held[0].settimeout(10)
        try:
            while True:
                b = held[0].recv(1 << 20)
                if not b:
                    break
                got += len(b)
        except (OSError, ssl.SSLError):
            pass  # regionctl ended without a close_notify: the end
        assert 0 < got < big.stat().st_size, got
    finally:
        done.set()
        for s in held:
            s.close()
        srv.close()


def test_regionctl_refuses_tls_files_that_are_not_small_pem_files(tmp_path, pki):
    """--ca, --cert and --key are read by regionctl itself (ctl_file_read) and
    checked before any connection: /dev/zero was read without limit by
    GnuTLS (4.6 GB), a huge file was read whole. Each is now refused naming
    the option, the file and why, exit 2; a mismatched pair is said as
    regiond says it ("--key K and --cert C")."""
    big = tmp_path / "big.pem"
    with open(big, "wb") as f:
        f.truncate(2 << 20)
    nul = tmp_path / "nul.pem"
    nul.write_bytes((pki / "ca.pem").read_bytes().replace(b"\n", b"\n\x00", 1))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    garbage.chmod(0o600)  # a key's mode, to be read as one
    key = tmp_path / "writer.key"
    shutil.copy(pki / "writer.key", key)
    key.chmod(0o600)
    open_key = tmp_path / "open.key"
    shutil.copy(key, open_key)
    open_key.chmod(0o644)
    cert = str(pki / "writer.pem")
    port = free_port()  # nothing listens: every refusal comes first
    for args, said in (
            (["--ca", "/dev/zero"], "--ca /dev/zero: not a regular file or a pipe"),
            (["--ca", "/dev/null"], "--ca /dev/null: not a regular file or a pipe"),
            (["--ca", str(tmp_path)], f"--ca {tmp_path}: Is a directory"),
            (["--ca", str(big)], f"--ca {big}: larger than 1048576 bytes"),
            (["--ca", str(nul)], f"--ca {nul}: line 2 holds a NUL byte"),
            (["--ca", str(garbage)], f"--ca {garbage}: no PEM certificate"),
            (["--ca", str(tmp_path / "missing.pem")], f"--ca {tmp_path / 'missing.pem'}: No such file"),
            (["--cert", "/dev/zero", "--key", str(key)], "--cert /dev/zero: not a regular file"),
            (["--cert", cert, "--key", str(open_key)], f"--key {open_key}: mode 0644"),
            (["--cert", str(garbage), "--key", str(key)], f"--cert {garbage}: no PEM certificate"),
            (["--cert", cert, "--key", str(garbage)], f"--key {garbage}: no unencrypted PEM private key"),
            (["--cert", cert, "--key", str(pki / "server.key")],
             f"--key {pki / 'server.key'} and --cert {cert}: the key does not match"),
    ):
        p = subprocess.run([REGIONCTL, "--url", f"https://127.0.0.1:{port}", *args, "history"],
                           capture_output=True, text=True, timeout=30, preexec_fn=capped)
        assert p.returncode == 2 and f"regionctl: {said}" in p.stderr, (args, p)
        assert "cannot reach" not in p.stderr, (args, p)


def test_regionctl_reads_tls_files_from_pipes(tmp_path, pki):
    """`--ca <(vault read ...)` (a pipe as /dev/fd/N), `--ca /dev/stdin` and
    a named FIFO were refused as "not a regular file" once regionctl read
    them itself: they are read again, to the same 1 MiB bound (counted while
    reading, as a pipe has no size) and checked as files are. A FIFO waits
    for its writer; a key FIFO others may read is refused for its mode,
    before any writer comes."""
    port = free_port()  # nothing listens: reaching for it means the files passed
    url = ["--url", f"https://127.0.0.1:{port}"]
    ca = (pki / "ca.pem").read_bytes()
    key = tmp_path / "writer.key"
    shutil.copy(pki / "writer.key", key)
    key.chmod(0o600)

    def run(args, pipe=None, **kw):
        if pipe is None:
            return subprocess.run([REGIONCTL, *url, *args, "history"], capture_output=True, text=True,
                                  timeout=30, **kw)
        r, w = os.pipe()
        write_later(w, pipe, 0)
        try:
            p = subprocess.Popen([REGIONCTL, *url, *[a.replace("PIPE", f"/dev/fd/{r}") for a in args],
                                  "history"], pass_fds=(r,), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        finally:
            os.close(r)
        out, err = p.communicate(timeout=30)
        return subprocess.CompletedProcess(p.args, p.returncode, out, err)

    p = run(["--ca", "PIPE"], pipe=ca)
    assert "cannot reach" in p.stderr, p
    p = run(["--ca", "/dev/stdin"], input=ca.decode())
    assert "cannot reach" in p.stderr, p
    p = run(["--ca", str(pki / "ca.pem"), "--cert", str(pki / "writer.pem"), "--key", "PIPE"],
            pipe=key.read_bytes())
    assert "cannot reach" in p.stderr, p
    fifo = tmp_path / "ca.fifo"
    os.mkfifo(fifo)
    t = write_later(fifo, ca)
    p = run(["--ca", str(fifo)])
    t.join(5)
    assert "cannot reach" in p.stderr, p
    for data, said in ((b"a" * (2 << 20), "larger than 1048576 bytes"),
                       (ca.replace(b"\n", b"\n\x00", 1), "line 2 holds a NUL byte"),
                       (b"not a certificate\n", "no PEM certificate")):
        p = run(["--ca", "PIPE"], pipe=data)
        assert p.returncode == 2 and re.search(rf"regionctl: --ca /dev/fd/\d+: {said}", p.stderr), p
    # Refused for its mode before waiting for a writer: none ever comes
    # here, and the open used to wait for one for ever.
    open_key = tmp_path / "key.fifo"
    os.mkfifo(open_key)
    open_key.chmod(0o644)
    p = run(["--ca", str(pki / "ca.pem"), "--cert", str(pki / "writer.pem"), "--key", str(open_key)])
    assert p.returncode == 2 and f"regionctl: --key {open_key}: mode 0644" in p.stderr, p


def test_a_nul_byte_in_a_token_or_writers_file_stops_regiond(tmp_path, pki):
    """Text after a NUL byte was silently dropped: `alice TOKEN\\0\\nbob TOKEN2`
    started regiond with alice's token only (bob got 401, nothing logged),
    and `CN=a\\0\\nnoequals` passed though `noequals` alone is refused. Such a
    file now stops regiond, naming it and the line."""
    tok = tmp_path / "token"
    tok.write_bytes(b"alice alice-token-0123456789\x00\nbob bob-token-0123456789\n")
    tok.chmod(0o600)
    rc, err = regiond_start_error(tmp_path, "--token-file", str(tok))
    assert rc == 2 and f"--token-file {tok}: line 1 holds a NUL byte" in err, err
    good = token_file(tmp_path / "good-token", WRITE_TOKEN)
    rc, err = regiond_start_error(tmp_path, "--token-file", good, "--read-token-file", str(tok))
    assert rc == 2 and f"--read-token-file {tok}: line 1 holds a NUL byte" in err, err
    writers = tmp_path / "writers"
    writers.write_bytes(b"# who may write\nCN=a\x00\nnoequals\n")
    rc, err = regiond_start_error(tmp_path, "--token-file", good, *tls_args(pki)[:6], "--tls-writers",
                                  str(writers))
    assert rc == 2 and f"--tls-writers {writers}: line 2 holds a NUL byte" in err, err
    # The API's own files, as before but for the device and the FIFO.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for opt, path in (("--tls-cert", "/dev/zero"), ("--tls-client-ca", str(fifo))):
        args = dict(zip(tls_args(pki)[:6:2], tls_args(pki)[1:6:2]))
        args[opt] = path
        rc, err = regiond_start_error(tmp_path, "--token-file", good, *[x for kv in args.items() for x in kv])
        assert rc == 2 and f"{opt} {path}: not a regular file" in err, err
