"""Raw HTTP over unix sockets, both sides, for the tests: the request
side of the fake servers they put in regiond's place (read one request
whole, as a server must before it answers: a client still sending when the
answer and the close come may see a reset instead of the answer), and a
client that reads a response until the close."""
import json
import re
import socket
import threading


def read_request(c):
    """The head and the body (as much as its Content-Length announces) of
    one request on the connected socket @c; None when the client closed
    before the head was whole."""
    req = b""
    while b"\r\n\r\n" not in req:
        got = c.recv(65536)
        if not got:
            return None
        req += got
    head, _, body = req.partition(b"\r\n\r\n")
    n = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")]
    while n and len(body) < n[0]:
        got = c.recv(65536)
        if not got:
            break
        body += got
    return head, body


def unix_exchange(path, request, timeout=30):
    """Send @request (bytes) on a new connection to the unix socket @path
    and read until the server closes: the whole response, bytes."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(request)
        resp = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return resp
            resp += chunk
    finally:
        s.close()


def api_request(path, method, url, body=None, raw=None, headers=(), timeout=60):
    """One HTTP/1.1 request on regiond's API socket @path: @body as JSON
    (or the bytes @raw), extra @headers ("Name: value"). Returns (status,
    the parsed JSON, or the text when it is not JSON); a connection closed
    or reset with no HTTP answer (regiond stopping, killed) raises
    ConnectionResetError, an OSError as a refused or timed-out connect is."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    hdr = f"{method} {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(data)}\r\n"
    for h in headers:
        hdr += h + "\r\n"
    resp = b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(hdr.encode() + b"\r\n" + data)
        while True:
            # A reset after the answer (regiond closing on a body it did
            # not read, a refused upload) keeps what came before it.
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            resp += chunk
    head, sep, body_b = resp.partition(b"\r\n\r\n")
    if not sep or not re.match(rb"HTTP/1\.[01] \d{3}", head):
        raise ConnectionResetError(f"no HTTP answer: {resp[:80]!r}")
    length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    if method != "HEAD" and length and len(body_b) < int(length.group(1)):
        # cut short (reset, killed): not an answer a test may take as one
        raise ConnectionResetError(f"answer cut short: {len(body_b)} of {int(length.group(1))} bytes")
    code = int(head.split()[1])
    try:
        return code, json.loads(body_b)
    except ValueError:
        return code, body_b.decode(errors="replace")


def scripted_regiond(path, answer, sock=None, wrap=None, request=False):
    """A regiond on the unix socket @path (or the listening @sock; each
    connection through @wrap, as TLS) that reads each request whole and
    hands the connection to @answer(conn) (with @request, to
    @answer(conn, head, body): a script that answers by route), then
    closes it; returns the listening socket (close it to stop)."""
    srv = sock or socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if sock is None:
        srv.bind(path)
    srv.listen(8)

    def one(c):
        if wrap:
            try:
                c = wrap(c)
            except OSError:
                return
        with c:
            req = read_request(c)
            if req is None:
                return
            try:
                answer(c, *req) if request else answer(c)
            except OSError:
                pass

    return serve_each(srv, one)


def serve_each(srv, one):
    """Accept on the listening @srv until it is closed, each connection
    handed to @one(conn) on a thread of its own; returns @srv."""
    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv
