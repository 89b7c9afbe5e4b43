"""Incremental generations in regionfwd (OP_DELTA, docs/architecture.md):
deltas under traffic lose and misroute nothing and keep counting; the live
FIBs after any number of deltas (which alternate between two copies) give
every address the region a longest-prefix match over the same prefixes
gives; refusals change nothing; a restart resumes the last delta from the
saved document and its journal, and a torn journal stops at its last whole
record."""
import ipaddress
import os
import random
import re
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from dprun import Served, pcap_in_null_out  # noqa: E402

from scapy.all import IP, UDP, Ether, Raw, wrpcap  # noqa: E402


class Fwd(Served):
    """regionfwd with a control socket, fed forever from a pcap (or nothing)."""

    def __init__(self, tmp, prefix, table, pcap=None, log="fwd.log", extra_node="", args=()):
        self.pcap = pcap
        super().__init__(tmp, prefix, pcap_in_null_out(pcap), table, extra_node, log, args)

    def hash(self):
        return int(self.ctl.call("status")["generation"]["hash"], 16)


def traffic(tmp, srcs, n=1024):
    pcap = str(tmp / "in.pcap")
    wrpcap(pcap, [Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") /
                  IP(src=srcs[i % len(srcs)], dst="192.0.2.1") / UDP(sport=1000 + i, dport=53) /
                  Raw(b"x" * 10) for i in range(n)])
    return pcap


SWAP_DOC = """regions:
  r1a: {prefixes: [10.1.0.0/16]}
  r1b: {prefixes: []}
  r2a: {prefixes: [10.2.0.0/16]}
  r2b: {prefixes: []}
links:
  a1: {port: out0, next_hop_mac: '02:00:00:00:00:01'}
  b1: {port: out1, next_hop_mac: '02:00:00:00:00:02'}
  a2: {port: out0, next_hop_mac: '02:00:00:00:00:03'}
  b2: {port: out1, next_hop_mac: '02:00:00:00:00:04'}
  trap: {port: out0, next_hop_mac: '02:00:00:00:00:05'}
policies:
  - {region: r1a, service: any, action: steer, to: a1}
  - {region: r1b, service: any, action: steer, to: b1}
  - {region: r2a, service: any, action: steer, to: a2}
  - {region: r2b, service: any, action: steer, to: b2}
default: {action: steer, to: trap}
"""


def test_hundreds_of_deltas_under_traffic(tmp_path):
    """Source 10.1.0.1 and 10.2.0.1 alternate packet by packet; every delta
    moves each /16 to its region's twin (a move: removal and add in one
    batch), which steers to the other link of its pair. After rx packets,
    a1+b1 must hold exactly ceil(rx/2) and a2+b2 floor(rx/2): no packet
    lost, none misrouted to the other pair or the trap, and the counters
    of the regions (carried over, not folded) add up to rx."""
    table = tmp_path / "t.yaml"
    table.write_text(SWAP_DOC)
    f = Fwd(tmp_path, "dl-swap", table, traffic(tmp_path, ["10.1.0.1", "10.2.0.1"]))
    deltas = 300
    try:
        h = f.hash()
        for n in range(deltas):
            a, b = (1, 2) if n % 2 == 0 else (2, 1)  # r1a=1 r1b=2 r2a=3 r2b=4
            r = f.ctl.call("delta", base_hash=h, generation=n + 2, changes=[
                ("remove", a, "10.1.0.0/16"), ("add", b, "10.1.0.0/16"),
                ("remove", a + 2, "10.2.0.0/16"), ("add", b + 2, "10.2.0.0/16")])
            assert r["ok"] and r["generation"] == n + 2, r
            h = int(r["hash"], 16)
        time.sleep(0.2)
        c = f.ctl.call("counters")
    finally:
        log = f.stop()
    assert f.p.returncode == 0, log
    assert "rx = tx + dropped: holds" in log
    pk = {m.group(1): int(m.group(2)) for m in re.finditer(r"^  (a1|b1|a2|b2|trap)\s+\S+\s+\S+\s+(\d+)", log, re.M)}
    rx, tx, dropped = map(int, re.search(r"rx (\d+)  tx (\d+)  dropped (\d+)", log).groups())
    assert rx > 10000 and dropped == 0 and rx == tx
    assert pk["a1"] + pk["b1"] == (rx + 1) // 2
    assert pk["a2"] + pk["b2"] == rx // 2
    assert pk["trap"] == 0
    assert min(pk["a1"], pk["b1"], pk["a2"], pk["b2"]) > 0
    assert re.search(r"^  generation_swaps\s+(\d+)$", log, re.M).group(1) == str(deltas + 1)
    # Counted once, whether the generation that counted was retired by a
    # delta or not: at exit the regions add up to what was received (while
    # traffic flows, a read may fall between a burst's two counters).
    region_pk = {m.group(1): int(m.group(2)) for m in
                 re.finditer(r"^  (r1a|r1b|r2a|r2b|unknown)\s+(\d+)\s+\d+$", log, re.M)}
    assert sum(region_pk.values()) == rx, (region_pk, rx)
    assert region_pk["r1a"] + region_pk["r1b"] == (rx + 1) // 2
    assert region_pk.get("unknown", 0) == 0
    assert c["regions"]["r1a"]["packets"] > 0


POOL_DOC = """regions:
  r1: {prefixes: [10.0.0.0/8]}
  r2: {prefixes: ["2001:db8::/32"]}
  r3: {prefixes: []}
  r4: {prefixes: []}
links:
  a: {port: out0, next_hop_mac: '02:00:00:00:00:01'}
default: {action: steer, to: a}
"""


def lpm(held, addr):
    best = None
    for net, region in held.items():
        if net.version == addr.version and addr in net and (best is None or net.prefixlen > best[0].prefixlen):
            best = (net, region)
    return best[1] if best else "unknown"


def test_random_deltas_match_a_longest_prefix_match(tmp_path):
    """Random deltas over a pool of nested IPv4 and IPv6 prefixes. The live
    FIBs alternate between the two copies (the standby gets each delta,
    the retired copy gets it again after the grace period), so a copy that
    missed or doubled a change would show within two deltas: after each
    one, explain (which reads the live FIB) must give every probed address
    the region of its longest match over what the regions hold."""
    rnd = random.Random(1919)
    table = tmp_path / "t.yaml"
    table.write_text(POOL_DOC)
    names = {1: "r1", 2: "r2", 3: "r3", 4: "r4"}
    pool = set()
    while len(pool) < 300:
        if rnd.random() < 0.7:
            plen = rnd.choice([12, 16, 20, 24, 25, 28, 32])
            a = ipaddress.ip_address("10.0.0.0") + rnd.randrange(0, 1 << 20) * 16
            pool.add(ipaddress.ip_network(f"{a}/{plen}", strict=False))
        else:
            plen = rnd.choice([40, 48, 56, 64, 127, 128])
            a = ipaddress.ip_address("2001:db8::") + (rnd.randrange(0, 1 << 24) << 80)
            pool.add(ipaddress.ip_network(f"{a}/{plen}", strict=False))
    pool = sorted(pool, key=lambda n: (n.version, n.network_address, n.prefixlen))
    held = {ipaddress.ip_network("10.0.0.0/8"): "r1", ipaddress.ip_network("2001:db8::/32"): "r2"}
    ids = {v: k for k, v in names.items()}
    f = Fwd(tmp_path, "dl-rand", table)
    try:
        h = f.hash()
        for rnd_no in range(40):
            changes = []
            for net in rnd.sample(pool, rnd.randrange(1, 30)):
                if net in held and rnd.random() < 0.3:
                    to = rnd.choice([r for r in names.values() if r != held[net]])
                    changes += [("remove", ids[held[net]], str(net)), ("add", ids[to], str(net))]
                    held[net] = to
                elif net in held:
                    changes.append(("remove", ids[held.pop(net)], str(net)))
                else:
                    held[net] = rnd.choice(list(names.values()))
                    changes.append(("add", ids[held[net]], str(net)))
            # The effective order fwd_delta_apply sends: IPv4 first, by
            # address and length, a move's removal before its add.
            changes.sort(key=lambda c: (ipaddress.ip_network(c[2]).version,
                                        ipaddress.ip_network(c[2]).network_address,
                                        ipaddress.ip_network(c[2]).prefixlen, c[0] != "remove"))
            r = f.ctl.call("delta", base_hash=h, changes=changes)
            assert r["ok"], (rnd_no, r)
            h = int(r["hash"], 16)
            for net in rnd.sample(pool, 12):
                for addr in (net.network_address, net.broadcast_address,
                             net.network_address + (net.num_addresses // 2)):
                    e = f.ctl.call("explain", src=str(addr), dst="192.0.2.1" if addr.version == 4 else "2001:db8:ffff::1",
                                   proto="udp", dport=53)
                    assert e["ok"] and e["region"] == lpm(held, addr), (rnd_no, str(addr), e.get("region"))
        st = f.ctl.call("status")["generation"]
        assert st["prefixes_v4"] + st["prefixes_v6"] == len(held)
    finally:
        log = f.stop()
    assert "built whole" not in log  # every delta went through the standby copy


def test_refused_deltas_change_nothing(tmp_path):
    table = tmp_path / "t.yaml"
    table.write_text(POOL_DOC)
    f = Fwd(tmp_path, "dl-bad", table)
    try:
        h = f.hash()
        cases = [
            (dict(base_hash=h ^ 1, changes=[("add", 3, "11.0.0.0/8")]), "delta_base_mismatch", "base_hash"),
            (dict(base_hash=h, changes=[("add", 3, "11.0.0.0/8")], hash=12345), "bad_request", "hash"),
            (dict(base_hash=h, changes=[("add", 3, "10.0.0.0/8")]), "invalid_delta", "changes[0]"),
            (dict(base_hash=h, changes=[("remove", 3, "12.0.0.0/8")]), "invalid_delta", "changes[0]"),
            (dict(base_hash=h, changes=[("add", 9, "12.0.0.0/8")]), "invalid_delta", "changes[0]"),
            (dict(base_hash=h, changes=[("add", 3, "12.0.0.0/8"), ("add", 4, "12.0.0.0/8")]),
             "invalid_delta", "changes[1]"),
            (dict(base_hash=h, changes=[], packed=b"\x01\x04\x08" + b"\0" * 20), "invalid_delta", "changes"),
            (dict(base_hash=h, changes=[], packed=b"\x01\x04\x08\0\0\x01\0\0\x0c\x01" + b"\0" * 14),
             "invalid_delta", "changes"),  # host bits
            (dict(base_hash=h, changes=[("add", 1, "10.0.0.0/8")]), "bad_request", "changes"),  # a no-op
        ]
        for kw, code, path in cases:
            r = f.ctl.call("delta", **kw)
            assert not r["ok"] and r["error"]["code"] == code and r["error"]["path"] == path, (kw, r)
            assert f.hash() == h
        e = f.ctl.call("explain", src="12.0.0.1", dst="192.0.2.1", proto="udp", dport=53)
        assert e["region"] == "unknown"
    finally:
        f.stop()


def test_a_chain_is_one_controllers(tmp_path):
    """Who pushed what runs is a controller's identity (a regiond's state
    directory), not only a name every regiond shares: status and table say
    it, the save keeps it across a restart, another controller's delta is
    refused even on the same base (its sender pushes whole, in the open),
    and another controller's push of the same table takes it over."""
    table = tmp_path / "t.yaml"
    table.write_text(POOL_DOC)
    a, b = 0x1111222233334444, 0x5555666677778888
    f = Fwd(tmp_path, "dl-ctrl", table)
    try:
        assert f.ctl.call("status")["controller"] is None  # --table: nobody's
        doc = POOL_DOC + "description: pushed\n"
        r = f.ctl.call("push", document=doc, name="regiond", generation=5, controller=a)
        assert r["ok"] and not r["noop"], r
        h = int(r["hash"], 16)
        assert f.ctl.call("status")["controller"] == f"{a:016x}"
        assert f.ctl.call("table")["controller"] == f"{a:016x}"
        for who in (b, 0):
            r = f.ctl.call("delta", base_hash=h, changes=[("add", 3, "11.0.0.0/8")], name="regiond",
                           generation=6, controller=who)
            assert not r["ok"] and r["error"]["code"] == "delta_base_mismatch", r
            assert r["error"]["path"] == "controller" and f"{a:016x}" in r["error"]["reason"], r
            assert f.hash() == h
        r = f.ctl.call("delta", base_hash=h, changes=[("add", 3, "11.0.0.0/8")], name="regiond",
                       generation=6, controller=a)
        assert r["ok"], r
        h = int(r["hash"], 16)
    finally:
        f.stop()
    saved = tmp_path / "ctl.sock.pushed"
    assert f'"controller":"{a:016x}"' in saved.read_text().split("\n")[0]
    f = Fwd(tmp_path, "dl-ctrl", table, log="fwd2.log")
    try:
        st = f.ctl.call("status")
        assert st["generation"]["id"] == 6 and st["controller"] == f"{a:016x}", st
        # Another controller pushes what runs, the same table: a no-op that
        # takes it over, the save rewritten to name it.
        doc2 = POOL_DOC + "description: second\n"
        assert f.ctl.call("push", document=doc2, name="regiond", generation=7, controller=a)["ok"]
        r = f.ctl.call("push", document=doc2, name="regiond", generation=7, controller=b)
        assert r["ok"] and r["noop"], r
        assert f.ctl.call("status")["controller"] == f"{b:016x}"
        assert f'"controller":"{b:016x}"' in saved.read_text().split("\n")[0]
    finally:
        f.stop()
    f = Fwd(tmp_path, "dl-ctrl", table, log="fwd3.log")
    try:
        st = f.ctl.call("status")
        assert st["generation"]["id"] == 7 and st["controller"] == f"{b:016x}", st
    finally:
        f.stop()


def push_then_deltas(f, adds):
    """POOL_DOC pushed as generation 10, then one delta a prefix of @adds
    ((region, net), ...) as 11, 12, ...: the deltas' chain hashes."""
    r = f.ctl.call("push", document=POOL_DOC + "description: pushed\n", name="regiond", generation=10)
    assert r["ok"], r
    h, hashes = int(r["hash"], 16), []
    for n, (region, net) in enumerate(adds):
        r = f.ctl.call("delta", base_hash=h, changes=[("add", region, net)], name="regiond", generation=11 + n)
        assert r["ok"], r
        h = int(r["hash"], 16)
        hashes.append(h)
    return hashes


def test_a_damaged_journal_record_is_said_apart_from_a_torn_one(tmp_path):
    """A record whole but damaged (a flipped byte) was said as "not a whole
    record (a torn write?)", and the start line called the older generation
    it ran "last pushed" (a probe): acknowledged changes were lost to that
    start without a word that said so."""
    table = tmp_path / "t.yaml"
    table.write_text(POOL_DOC)
    f = Fwd(tmp_path, "dl-damaged", table)
    try:
        push_then_deltas(f, [(3, "11.0.0.0/8"), (4, "12.0.0.0/8")])
    finally:
        f.stop()
    journal = tmp_path / "ctl.sock.pushed.deltas"
    good = journal.read_bytes()

    def start_on(data, log):
        """The log of a regionfwd started on the journal @data: on the
        document alone (generation 10), its records not applied."""
        journal.write_bytes(bytes(data))
        f = Fwd(tmp_path, "dl-damaged", table, log=log)
        try:
            gen = f.ctl.call("status")["generation"]["id"]
        finally:
            text = f.stop()
        assert gen == 10, text[-3000:]
        return text

    data = bytearray(good)
    data[5] ^= 0xff  # inside the first record's generation id: its checksum no longer matches
    log = start_on(data, "fwd2.log")
    assert re.search(r"ctl\.sock\.pushed\.deltas: record 1 is damaged \(its checksum or mark does not match\): "
                     r"it and the \d+ bytes after it are not applied, so this start runs an older table than was "
                     r"last pushed, until regiond pushes again", log), log[-3000:]
    assert "torn" not in log
    assert "starting on generation 10, the last whole part of what was pushed by regiond" in log, log[-3000:]
    # A damaged length, past the bytes left, reads like a record cut short;
    # a whole record after it tells it apart.
    data = bytearray(good)
    data[23] = 0x7f  # the first record's length, now ~2 GiB
    log = start_on(data, "fwd3.log")
    assert "record 1 is damaged" in log and "torn" not in log, log[-3000:]


def test_restart_resumes_the_last_delta_and_stops_at_a_torn_record(tmp_path):
    table = tmp_path / "t.yaml"
    table.write_text(POOL_DOC)
    f = Fwd(tmp_path, "dl-restart", table)
    try:
        hashes = push_then_deltas(f, [(3, "11.0.0.0/8"), (4, "12.0.0.0/8"), (3, "2001:db9::/32")])
        t = f.ctl.call("table")
        assert len(t["deltas"]) == 3 and b"description: pushed" in t["document"]
    finally:
        f.stop()
    journal = tmp_path / "ctl.sock.pushed.deltas"
    assert journal.exists()
    f = Fwd(tmp_path, "dl-restart", table, log="fwd2.log")
    try:
        st = f.ctl.call("status")
        assert st["generation"]["id"] == 13 and int(st["generation"]["hash"], 16) == hashes[-1]
        assert st["managed_by"] == "regiond"
        e = f.ctl.call("explain", src="2001:db9::1", dst="2001:db8::1", proto="udp", dport=53)
        assert e["region"] == "r3"
    finally:
        f.stop()
    # A torn last record (a crash in the middle of its write): the
    # generation before it runs, and the log says why.
    data = journal.read_bytes()
    journal.write_bytes(data[:-5])
    f = Fwd(tmp_path, "dl-restart", table, log="fwd3.log")
    try:
        st = f.ctl.call("status")
        assert st["generation"]["id"] == 12 and int(st["generation"]["hash"], 16) == hashes[1]
        e = f.ctl.call("explain", src="2001:db9::1", dst="2001:db8::1", proto="udp", dport=53)
        assert e["region"] == "unknown"
        # The next delta rewrites the saved state whole: a restart then
        # resumes it, not the torn file.
        r = f.ctl.call("delta", base_hash=hashes[1], changes=[("add", 4, "13.0.0.0/8")], name="regiond",
                       generation=20)
        assert r["ok"], r
        last = int(r["hash"], 16)
    finally:
        log = f.stop()
    assert "not a whole record" in log
    # a torn last record was never published: no changes lost, and the
    # start line says the last push (it once said "the last whole part")
    assert "starting on generation 12, last pushed by regiond" in log, log[-3000:]
    f = Fwd(tmp_path, "dl-restart", table, log="fwd4.log")
    try:
        st = f.ctl.call("status")
        assert st["generation"]["id"] == 20 and int(st["generation"]["hash"], 16) == last
    finally:
        log = f.stop()
    assert "would not start regionfwd" not in log
    # --table is what a start without the save runs (after a reboot):
    # broken or gone, it is said at this start, not found at the next boot
    table.write_text(POOL_DOC + "links: {}\n")
    f = Fwd(tmp_path, "dl-restart", table, log="fwd5.log")
    try:
        assert f.ctl.call("status")["generation"]["id"] == 20
    finally:
        log = f.stop()
    assert re.search(r"--table \S*t\.yaml would not start regionfwd without the saved table "
                     r"\(\S*t\.yaml:\d+: links", log), log[-2000:]
    # and a link on a port this node lacks, which a build refuses
    table.write_text(POOL_DOC.replace("port: out0", "port: out9"))
    f = Fwd(tmp_path, "dl-restart", table, log="fwd6.log")
    try:
        assert f.ctl.call("status")["generation"]["id"] == 20
    finally:
        log = f.stop()
    assert "would not start regionfwd without the saved table" in log and "no port 'out9'" in log, log[-2000:]


def test_a_journal_that_is_not_a_file_is_never_written_through(tmp_path):
    """A probe's find: the journal was opened as any path is. A FIFO put at
    PATH.deltas hung regionfwd's control thread in the open (a writer
    waits for a reader): every push after it waited out regiond's
    deadline. A symbolic link there was followed: the records went into
    the file it named, or created a dangling link's target. Now neither is
    written through: the delta runs, its save is said to have failed
    (save_error), and the retry writes the whole table, which replaces
    the FIFO or the link; a restart resumes the delta."""
    table = tmp_path / "t.yaml"
    table.write_text(POOL_DOC)
    journal = tmp_path / "ctl.sock.pushed.deltas"
    victim = tmp_path / "victim"
    victim.write_bytes(b"not regionfwd's\n")
    f = Fwd(tmp_path, "dl-notfile", table)
    try:
        r = f.ctl.call("push", document=POOL_DOC + "description: pushed\n", name="regiond", generation=10)
        assert r["ok"], r
        h = int(r["hash"], 16)
        r = f.ctl.call("delta", base_hash=h, changes=[("add", 3, "11.0.0.0/8")], name="regiond", generation=11)
        assert r["ok"], r
        h = int(r["hash"], 16)
        assert journal.is_file()
        f.ctl.s.settimeout(20)  # a hang is a failure here, not a long wait
        for n, (kind, net) in enumerate([("fifo", "12.0.0.0/8"), ("link", "13.0.0.0/8"),
                                         ("dangling", "14.0.0.0/8")]):
            journal.unlink()
            if kind == "fifo":
                os.mkfifo(journal)
            else:
                os.symlink(victim if kind == "link" else tmp_path / "created-through-a-link", journal)
            r = f.ctl.call("delta", base_hash=h, changes=[("add", 3, net)], name="regiond", generation=12 + n)
            assert r["ok"], (kind, r)
            h = int(r["hash"], 16)
            st = f.ctl.call("status")
            assert st["generation"]["id"] == 12 + n, (kind, st["generation"])
            # Said, unless the retry (every 2 s) already mended it.
            assert (st["save_error"] == "" and journal.is_file() and not journal.is_symlink()) or \
                "deltas is not a regular file" in st["save_error"], (kind, st["save_error"])
            deadline = time.time() + 30
            while f.ctl.call("status")["save_error"] and time.time() < deadline:
                time.sleep(0.2)
            assert f.ctl.call("status")["save_error"] == "", kind
            assert not journal.is_symlink() and (not journal.exists() or journal.is_file()), kind
        assert victim.read_bytes() == b"not regionfwd's\n"
        assert not (tmp_path / "created-through-a-link").exists()
        # A directory there stays (a rename cannot replace it): said, and
        # the table is not saved again every 2 s (it once was, for good).
        saved = tmp_path / "ctl.sock.pushed"
        journal.unlink()
        journal.mkdir()
        r = f.ctl.call("delta", base_hash=h, changes=[("add", 3, "15.0.0.0/8")], name="regiond", generation=15)
        assert r["ok"], r
        h = int(r["hash"], 16)
        wait_for_save = time.time() + 10
        while "deltas is not a regular file" not in f.ctl.call("status")["save_error"]:
            assert time.time() < wait_for_save, f.ctl.call("status")["save_error"]
            time.sleep(0.2)
        ino = saved.stat().st_ino
        time.sleep(5)  # two retries and more
        assert saved.stat().st_ino == ino
        assert "deltas is not a regular file" in f.ctl.call("status")["save_error"]
        journal.rmdir()
        deadline = time.time() + 30
        while f.ctl.call("status")["save_error"] and time.time() < deadline:
            time.sleep(0.2)
        assert f.ctl.call("status")["save_error"] == ""
    finally:
        f.stop()
    f = Fwd(tmp_path, "dl-notfile", table, log="fwd2.log")
    try:
        st = f.ctl.call("status")
        assert st["generation"]["id"] == 15 and int(st["generation"]["hash"], 16) == h, st["generation"]
        e = f.ctl.call("explain", src="15.1.1.1", dst="10.0.0.1", proto="udp", dport=53)
        assert e["region"] == "r3", e
    finally:
        f.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_start_on_table_says_a_save_it_cannot_remove(tmp_path):
    """--start-on table removes the saved push, else a later plain restart
    would go back to it. On a read-only disk the removal failed without a
    word (a probe): the next restart started on the save. Now it is said
    at start and in status's save_error (regiond's alarm)."""
    import subprocess
    table = tmp_path / "t.yaml"
    table.write_text(POOL_DOC)
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    node = f"pushed_table: {disk}/saved\n"
    try:
        f = Fwd(tmp_path, "dl-starton", table, extra_node=node)
        try:
            r = f.ctl.call("push", document=POOL_DOC + "description: pushed\n", name="regiond", generation=10)
            assert r["ok"], r
        finally:
            f.stop()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        f = Fwd(tmp_path, "dl-starton", table, extra_node=node, log="fwd2.log", args=("--start-on", "table"))
        try:
            st = f.ctl.call("status")
            assert st["generation"]["source"] != "regiond" and st["generation"]["id"] != 10, st["generation"]
            want = (f"--start-on table could not remove the saved pushed table {disk}/saved or its .deltas "
                    "(Read-only file system)")
            assert st["save_error"].startswith(want), st["save_error"]
            assert f"would start on the table saved there, not on {table}" in st["save_error"]
        finally:
            log = f.stop()
        assert want in log, log
        # Nothing saved is nothing to remove, also on a read-only disk
        # (unlink fails EROFS before it looks at the name: once a false
        # alarm that stayed).
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        for p in disk.iterdir():
            p.unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        f = Fwd(tmp_path, "dl-starton", table, extra_node=node, log="fwd3.log", args=("--start-on", "table"))
        try:
            assert f.ctl.call("status")["save_error"] == ""
        finally:
            f.stop()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)])
        subprocess.run(["umount", str(disk)], check=True)


def test_the_journal_is_folded_into_a_document_and_resumed(tmp_path):
    """Past delta_journal_bytes (and the document's own size), the deltas are
    folded into a document of the running generation, named by its hash:
    the table op answers with it and no deltas, the saved files hold it, and
    a restart resumes that generation with the prefixes the deltas made."""
    table = tmp_path / "t.yaml"
    table.write_text(POOL_DOC)
    node = "delta_journal_bytes: 4096\n"
    f = Fwd(tmp_path, "dl-fold", table, extra_node=node)
    try:
        r = f.ctl.call("push", document=POOL_DOC + "description: base\n", name="regiond")
        h = int(r["hash"], 16)
        nets = [f"11.{i // 256}.{i % 256}.0/24" for i in range(600)]
        for k in range(0, 600, 100):  # 6 deltas of 100 adds: 2,400 bytes each
            r = f.ctl.call("delta", base_hash=h, changes=[("add", 3, n) for n in nets[k:k + 100]], name="regiond")
            assert r["ok"], r
            h = int(r["hash"], 16)
        t = f.ctl.call("table")
        assert len(t["deltas"]) < 6  # folded on the way
        # The folded document is a model as regiond writes one: compact
        # JSON ending in a newline (regiond adopts it as a generation's text).
        doc = t["document"] if isinstance(t["document"], bytes) else t["document"].encode()
        assert doc.startswith(b"{") and doc.endswith(b"}\n") and doc.count(b"\n") == 1, doc[-40:]
        st = f.ctl.call("status")["generation"]
        assert st["prefixes_v4"] == 601 and int(st["hash"], 16) == h
        gen = st["id"]
    finally:
        log = f.stop()
    assert "folded into its document" in log
    assert b"11.0.0.0/24" in open(tmp_path / "ctl.sock.pushed", "rb").read()
    f = Fwd(tmp_path, "dl-fold", table, log="fwd2.log", extra_node=node)
    try:
        st = f.ctl.call("status")["generation"]
        assert st["id"] == gen and int(st["hash"], 16) == h and st["prefixes_v4"] == 601
        e = f.ctl.call("explain", src="11.2.87.9", dst="192.0.2.1", proto="udp", dport=53)
        assert e["region"] == "r3"
    finally:
        f.stop()
