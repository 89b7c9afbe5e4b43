"""Client of regionfwd's control socket (dataplane/dp_ctl.h) for the tests.

It speaks the typed channel (common/fwd_msg.h, common/fwd_ctl.proto): a
16-byte header, then a protobuf message. fwd_ctl.proto is compiled with
protoc at first use, so the tests always use the messages of the tree they
test. call() keeps the tests' dict interface: {"ok": True, ...reply} or
{"ok": False, "error": {...}}; explain() and push() build typed requests the
way regiond does.
"""
import importlib
import ipaddress
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAGIC, VERSION, HDR = 0x52465743, 2, struct.Struct(">IHHHHI")
REPLY, ERROR = 0x1, 0x2
FIELDS = ["payload", "tls_sni", "http_host", "dns_qname"]  # enum fwd_content_field order
PROTOS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58}

_pb = None


def pb():
    """The generated fwd_ctl_pb2 module (compiled once per process)."""
    global _pb
    if _pb is None:
        out = tempfile.mkdtemp(prefix="fwd-ctl-pb-")
        subprocess.run(["protoc", "--proto_path=" + os.path.join(ROOT, "common"), "--python_out=" + out,
                        os.path.join(ROOT, "common", "fwd_ctl.proto")], check=True)
        sys.path.insert(0, out)
        _pb = importlib.import_module("fwd_ctl_pb2")
    return _pb


def op_of(name):
    return pb().Op.Value("OP_" + name.upper())


def frame(op, body: bytes, flags=0, version=VERSION, magic=MAGIC, reserved=0, length=None):
    """A frame, with every header field overridable for malformed-input tests."""
    return HDR.pack(magic, version, op, flags, reserved, len(body) if length is None else length) + body


REPLIES = {"push": "PushReply", "delta": "PushReply", "status": "StatusReply", "counters": "CounterReport", "explain": "ExplainReply",
           "table": "TableReply"}


def _generation(g):
    return {"id": g.id, "hash": f"{g.hash:016x}", "source": g.source, "created_unix_ns": g.created_unix_ns,
            "regions": g.regions, "services": g.services, "links": g.links, "policies": g.policies,
            "prefixes_v4": g.prefixes_v4, "prefixes_v6": g.prefixes_v6}


def to_dict(opname, msg):
    """A reply message in the shape the tests (and the API) use."""
    if opname in ("push", "delta"):
        return {"generation": msg.generation, "hash": f"{msg.hash:016x}", "noop": msg.noop}
    if opname == "status":
        p = msg.packets
        return {"generation": _generation(msg.generation), "workers": msg.workers,
                "packets": {"rx": p.rx, "rx_bytes": p.rx_bytes, "tx": p.tx, "tx_bytes": p.tx_bytes,
                            "dropped": p.dropped},
                "ports": [{"name": x.name, "device": x.device, "ingress": x.ingress, "port_id": x.port_id,
                           "mac": x.mac} for x in msg.ports],
                "managed_by": msg.managed_by, "save_error": msg.save_error,
                "controller": f"{msg.controller:016x}" if msg.controller else None}
    if opname == "table":
        return {"generation": _generation(msg.generation), "document": msg.document, "managed_by": msg.managed_by,
                "deltas": list(msg.deltas), "document_hash": f"{msg.document_hash:016x}",
                "controller": f"{msg.controller:016x}" if msg.controller else None}
    return json.loads(msg.json)  # counters, explain: JSON models inside the typed reply


def explain_request(src, dst, proto, sport=0, dport=0, payload=None, payload_hex=None, **given):
    """An ExplainRequest as regiond builds it from POST /v1/explain."""
    m = pb().ExplainRequest()
    m.src = ipaddress.ip_address(src).packed
    m.dst = ipaddress.ip_address(dst).packed
    m.proto = PROTOS[proto] if isinstance(proto, str) else proto
    m.sport, m.dport = sport, dport
    if payload is not None or payload_hex is not None:
        m.has_payload = True
        m.payload = payload.encode() if payload is not None else bytes.fromhex(payload_hex)
    m.given.extend([given.pop(f, "").lower() if f != "payload" else "" for f in FIELDS])
    assert not given, f"unknown explain fields {given}"
    return m


def push_request(document, generation=0, name="test", content_db=None, generation_hash=0, deadline_mono_ns=0,
                 controller=0):
    """content_db: None, or {"rules_hash": int, "dbs": {field: bytes}}."""
    m = pb().PushRequest(document=document.encode() if isinstance(document, str) else document,
                         generation=generation, name=name, generation_hash=generation_hash,
                         deadline_mono_ns=deadline_mono_ns, controller=controller)
    if content_db is not None:
        m.has_content = True
        m.content_rules_hash = content_db["rules_hash"]
        dbs = content_db.get("dbs", {})
        m.content_db.extend([dbs.get(f, b"") for f in content_db.get("fields", FIELDS)])
    return m


def fnv64(data: bytes, h=1469598103934665603):
    """common/fwd_hash.h's fwd_hash64_update."""
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def pack_changes(changes):
    """fwd_delta_pack() of [(kind "add"|"remove", region id, "prefix"), ...] as given
    (the caller sends effective changes in fwd_delta_apply's order)."""
    out = b""
    for kind, region, prefix in changes:
        net = ipaddress.ip_network(prefix)
        addr = net.network_address.packed.ljust(16, b"\0")
        out += bytes([1 if kind == "add" else 2, net.version, net.prefixlen, 0,
                      region >> 8, region & 0xFF, 0, 0]) + addr
    return out


def delta_hash(base, packed):
    """fwd_delta_hash(base, packed)."""
    return fnv64(packed, fnv64(base.to_bytes(8, "little")))


def delta_request(base_hash, changes, generation=0, name="test", hash=None, packed=None, controller=0):
    packed = pack_changes(changes) if packed is None else packed
    return pb().DeltaRequest(generation=generation, base_hash=base_hash, name=name, changes=packed,
                             hash=delta_hash(base_hash, packed) if hash is None else hash,
                             controller=controller)


class Ctl:
    def __init__(self, path, timeout=120):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def read(self, opname=None):
        magic, version, op, flags, reserved, n = HDR.unpack(self._recv(HDR.size))
        assert (magic, version, reserved) == (MAGIC, VERSION, 0) and flags & REPLY, (magic, version, flags)
        body = self._recv(n)
        if flags & ERROR:
            e = pb().Error.FromString(body)
            return {"ok": False, "error": {"code": e.code, "file": e.file, "line": e.line, "path": e.path,
                                           "reason": e.reason}}
        name = opname or pb().Op.Name(op)[3:].lower()
        return {"ok": True, **to_dict(name, getattr(pb(), REPLIES[name]).FromString(body))}

    def raw(self, data: bytes, opname=None):
        """Send bytes as they are (a frame or garbage) and read one reply."""
        self.s.sendall(data)
        return self.read(opname)

    def send(self, opname, msg):
        return self.raw(frame(op_of(opname), msg.SerializeToString()), opname)

    def call(self, op, **kw):
        if op == "push":
            return self.send(op, push_request(**kw))
        if op == "explain":
            return self.send(op, explain_request(**kw))
        if op == "delta":
            return self.send(op, delta_request(**kw))
        assert not kw, kw
        return self.send(op, pb().Empty())

    def close(self):
        self.s.close()
