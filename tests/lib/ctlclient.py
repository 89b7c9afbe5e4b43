"""Client of regionfwd's control socket (dataplane/dp_ctl.h) for the tests."""
import json
import socket
import struct


class Ctl:
    def __init__(self, path, timeout=120):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)

    def raw(self, payload: bytes):
        self.s.sendall(struct.pack(">I", len(payload)) + payload)
        return self.read()

    def read(self):
        hdr = self._recv(4)
        (n,) = struct.unpack(">I", hdr)
        return json.loads(self._recv(n))

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def call(self, op, **kw):
        return self.raw(json.dumps({"v": 1, "op": op, **kw}).encode())

    def close(self):
        self.s.close()
