"""A stand-in for regionfwd's control socket (common/fwd_msg.h framing):
a listener that answers each request as told, for what asks regionfwd
whether it answers (regiond --check-dataplane, the preflight)."""
import socket
import struct

from httpfake import serve_each

MAGIC, VERSION, REPLY, ERROR = 0x52465743, 2, 0x1, 0x2
OP_STATUS = 2


def frame(op, flags, body=b""):
    return struct.pack(">IHHHHI", MAGIC, VERSION, op, flags, 0, len(body)) + body


def error_body(code, reason):
    """A protobuf Error: two length-delimited strings, fields 1 and 5."""
    c, r = code.encode(), reason.encode()
    return bytes([0x0a, len(c)]) + c + bytes([0x2a, len(r)]) + r


def read_frame(c):
    """The header and body of one request on @c; None when it closed first."""
    data = b""
    while len(data) < 16:
        got = c.recv(16 - len(data))
        if not got:
            return None
        data += got
    n = struct.unpack(">I", data[12:16])[0]
    body = b""
    while len(body) < n:
        got = c.recv(n - len(body))
        if not got:
            return None
        body += got
    return data, body


# How the fake answers a request: a status reply (an empty StatusReply is
# a whole one), nothing at all (a stopped or hung regionfwd, another
# program on the path), bytes that are not the channel's framing, or
# regionfwd's refusal.
ANSWERS = {
    "status": lambda req: frame(OP_STATUS, REPLY),
    "silent": lambda req: None,
    "garbage": lambda req: b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
    "other-op": lambda req: frame(5, REPLY),
    # regionfwd's Error (fwd_ctl.proto: code = 1, reason = 5): it answered
    # and refused (an older or newer regionfwd without the op, say).
    "refused": lambda req: frame(OP_STATUS, REPLY | ERROR, error_body("unknown_op", "no such op")),
}


def fake_regionfwd(path, answer="status", sock=None):
    """A regionfwd's control socket at @path (or the bound @sock, listened
    on here) answering each request by ANSWERS[@answer]; returns the
    listening socket (close it to stop)."""
    srv = sock or socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if sock is None:
        srv.bind(path)
    srv.listen(8)
    held = []

    def one(c):
        req = read_frame(c)
        out = ANSWERS[answer](req) if req else None
        if out is None:
            held.append(c)  # kept open, unanswered
            return
        with c:
            c.sendall(out)

    return serve_each(srv, one)
