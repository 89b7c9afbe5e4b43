"""Reference for content rules, written apart from the C code: message
builders (TLS ClientHello, HTTP/1.1 request, DNS query) and rule evaluation
with Python's `re` over the same payloads and field values.

Semantics mirrored from docs/content-rules.md:
- a packet is scanned when its (region, service) is in some rule's scope;
- names (SNI, Host, qname) are matched lowercased; `literal` is a substring;
  `caseless` ignores ASCII case; patterns are searched (unanchored) with
  DOTALL, as Hyperscan does with HS_FLAG_DOTALL;
- verdict: drop > steer > mirror > count, first rule in document order
  among equals; every matching rule counts a match;
- a TCP flow that got a drop verdict drops its later packets unscanned; one
  that got another verdict keeps it for its later packets, which are still
  scanned: a later packet that matches a drop rule is dropped, and the flow
  is decided as dropped from then on;
- name sets (`names`, `names_file`): a name, lowercased and without one
  trailing dot, matches an exact entry equal to it, or a `*.` entry whose
  name it ends with after a dot; a name with an empty label matches nothing.
  Entries are validated by `ref_normalize` (labels 1..63, names 1..253,
  [a-z0-9-_], ASCII only).
"""
import os
import re
import struct

FIELDS = ("payload", "tls_sni", "http_host", "dns_qname")
RANK = {"drop": 3, "steer": 2, "mirror": 1, "count": 0}


def client_hello(sni, pad_ext=True):
    name = sni.encode()
    sni_body = struct.pack(">HBH", len(name) + 3, 0, len(name)) + name
    exts = b""
    if pad_ext:  # a supported_groups extension before server_name
        exts += struct.pack(">HH", 0x000A, 4) + b"\x00\x02\x00\x1d"
    exts += struct.pack(">HH", 0x0000, len(sni_body)) + sni_body
    body = (b"\x03\x03" + bytes(range(32)) + b"\x00" + struct.pack(">H", 2) + b"\x13\x01" +
            b"\x01\x00" + struct.pack(">H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def http_request(host, path="/"):
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n").encode()


def dns_query(qname, qid=0x1234):
    q = b"".join(bytes([len(l)]) + l.encode() for l in qname.split(".") if l) + b"\x00"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", 1, 1)


NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def ref_normalize(entry):
    """(kind, name) with kind 'exact' or 'suffix', or raise ValueError(why)."""
    s = entry[:-1] if entry.endswith(".") else entry
    kind = "exact"
    if s.startswith("*."):
        kind, s = "suffix", s[2:]
    if not s:
        raise ValueError("empty name")
    if len(s) > 253:
        raise ValueError("name longer than 253 bytes")
    for label in s.split("."):
        if not label:
            raise ValueError("empty label")
        if len(label) > 63:
            raise ValueError("label longer than 63 bytes")
        for ch in label.lower():
            if ord(ch) >= 0x80:
                raise ValueError("non-ASCII name")
            if ch not in NAME_CHARS:
                raise ValueError("bad character")
    return kind, s.lower()


def parse_names_text(text):
    """Entries of a names file: one a line, '#' comments, blanks ignored."""
    out = []
    for line in text.split("\n"):
        line = line.split("#", 1)[0].strip(" \t\r")
        if line:
            out.append(ref_normalize(line))
    return out


def set_match(name, exact, suffix):
    """The longest entry of the set `name` (as extracted) matches, as the set
    lists it ("a.b" or "*.b"), or None. Written independently of the C hash
    table: string comparison of every dot-separated suffix."""
    n = name.lower()
    if n.endswith("."):
        n = n[:-1]
    # a packet may carry up to 255 bytes (the extractors' bound), more than
    # an entry has: such a name still matches a "*." entry
    if not n or len(n) > 255 or "" in n.split("."):
        return None
    if n in exact:
        return n
    for i, ch in enumerate(n):
        if ch == "." and n[i + 1:] in suffix:
            return "*." + n[i + 1:]
    return None


def name_in_set(name, exact, suffix):
    """Does `name` match the set?"""
    return set_match(name, exact, suffix) is not None


class Rule:
    def __init__(self, d, index, names_dir=None):
        self.index = index
        self.name = d["name"]
        self.field = d["field"]
        self.action = d["action"]
        self.to = d.get("to")
        self.services = set(d["services"])
        self.regions = set(d["regions"]) if d.get("regions") else None
        self.rx = None
        if "pattern" not in d:
            entries = [ref_normalize(e) for e in d.get("names", [])]
            if d.get("names_file"):
                with open(os.path.join(names_dir or ".", d["names_file"])) as f:
                    entries += parse_names_text(f.read())
            self.exact = {n for k, n in entries if k == "exact"}
            self.suffix = {n for k, n in entries if k == "suffix"}
            self.entry_hits = {}  # the longest entry matched -> packets (top names)
            return
        pat = d["pattern"]
        flags = re.DOTALL | (re.IGNORECASE if d.get("caseless") else 0)
        if d.get("literal"):
            pat = re.escape(pat)
        self.rx = re.compile(pat.encode("latin-1"), flags)

    def match(self, data):
        if self.rx is None:
            e = set_match(data.decode("latin-1"), self.exact, self.suffix)
            if e is not None:
                self.entry_hits[e] = self.entry_hits.get(e, 0) + 1
            return e is not None
        return self.rx.search(data) is not None

    def in_scope(self, region, service):
        return service in self.services and (self.regions is None or region in self.regions)


class RefContent:
    def __init__(self, rules, names_dir=None):
        self.rules = [Rule(d, i, names_dir) for i, d in enumerate(rules)]
        self.flows = {}  # TCP 5-tuple -> rule index
        self.matches = {r.name: 0 for r in self.rules}
        self.flow_packets = {r.name: 0 for r in self.rules}
        self.unscanned = 0  # packets of dropped flows, followed without a scan

    def scoped(self, region, service):
        return any(r.in_scope(region, service) for r in self.rules)

    def decide(self, region, service, proto, flow, payload, names):
        """Return the deciding Rule or None. `names`: field -> extracted value
        (None when the extractor finds nothing); `flow`: 5-tuple for TCP."""
        if not self.scoped(region, service):
            return None
        pinned = None
        if proto == "tcp" and flow in self.flows:
            pinned = self.rules[self.flows[flow]]
            if pinned.action == "drop":
                self.flow_packets[pinned.name] += 1
                self.unscanned += 1
                return pinned
        best = None
        for r in self.rules:
            if not r.in_scope(region, service):
                continue
            data = payload if r.field == "payload" else names.get(r.field)
            if data is None or len(data) == 0:
                continue
            if isinstance(data, str):
                data = data.lower().encode()
            if r.match(data):
                self.matches[r.name] += 1
                if best is None or RANK[r.action] > RANK[best.action]:
                    best = r
        if pinned is not None and (best is None or best.action != "drop"):
            self.flow_packets[pinned.name] += 1
            return pinned
        if best is not None and proto == "tcp":
            self.flows[flow] = best.index
        return best
