"""The malformed-packet corpus (tests/data/malformed.pcap, made by
tests/data/make-malformed) through regionfwd: no crash, each frame ends in
exactly the documented outcome (forwarded, or one drop reason), and every
frame is accounted (rx = tx + sum(drops)). The same corpus runs through the
XDP program in tests/bpf/test_xdp_filter.c."""
import collections
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from dprun import run_pcap  # noqa: E402

from scapy.all import rdpcap  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
TABLE = """
regions: {all4: {prefixes: [0.0.0.0/0]}, all6: {prefixes: ["::/0"]}}
links: {l: {port: out0, next_hop_mac: "02:00:00:00:00:01"}}
default: {action: steer, to: l}
"""


def test_every_class_has_its_documented_outcome(tmp_path):
    manifest = json.load(open(os.path.join(DATA, "malformed.json")))
    frames = rdpcap(os.path.join(DATA, "malformed.pcap"))
    assert len(frames) == len(manifest)
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    # jumbo frames arrive in chained mbufs: headers in the first segment
    run = run_pcap(str(tmp_path), str(table), frames, ["out0"], "malformed")
    assert run.rc == 0, run.stderr
    st = run.stats
    want = collections.Counter(m["fastpath"] for m in manifest)
    got = collections.Counter({k: v for k, v in st["drops"].items() if v})
    got["tx"] = st["packets"]["tx"]
    assert st["packets"]["rx"] == len(frames)
    assert st["packets"]["rx"] == st["packets"]["tx"] + st["packets"]["dropped"]
    assert got == want, {k: (got.get(k, 0), want.get(k, 0)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
    assert len(run.outputs["out0"]) == want["tx"]


def test_each_class_alone(tmp_path):
    """Frame by frame where the outcome does not depend on earlier frames
    (fragments do): the exact reason for each frame, not just the totals."""
    manifest = json.load(open(os.path.join(DATA, "malformed.json")))
    frames = rdpcap(os.path.join(DATA, "malformed.pcap"))
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    # One frame per class (the truncation classes have one frame per length;
    # their totals are checked above). Malformed frames cannot carry a tag, so
    # each run holds frames of distinct expected outcomes: the counters then
    # say which frame got which.
    seen, picks = set(), []
    for i, m in enumerate(manifest):
        if "fragment" not in m["class"] and m["class"] not in seen:
            seen.add(m["class"])
            picks.append(i)
    by_outcome = collections.defaultdict(list)
    for i in picks:
        by_outcome[manifest[i]["fastpath"]].append(i)
    batch = [by_outcome[k].pop(0) for k in sorted(by_outcome) if by_outcome[k]]
    while batch:
        run = run_pcap(str(tmp_path), str(table), [frames[i] for i in batch], ["out0"], "malformed-one")
        assert run.rc == 0, run.stderr
        got = collections.Counter({k: v for k, v in run.stats["drops"].items() if v})
        got["tx"] = run.stats["packets"]["tx"]
        want = collections.Counter(manifest[i]["fastpath"] for i in batch)
        assert +got == want, [(manifest[i]["class"], manifest[i]["fastpath"]) for i in batch]
        batch = [by_outcome[k].pop(0) for k in sorted(by_outcome) if by_outcome[k]]


def test_jumbo_with_mtu(tmp_path):
    """With `mtu: 9000` in the node config the mbufs hold a jumbo frame whole,
    and it is forwarded (with the default 1500 it is too_big)."""
    manifest = json.load(open(os.path.join(DATA, "malformed.json")))
    frames = rdpcap(os.path.join(DATA, "malformed.pcap"))
    jumbo = [frames[i] for i, m in enumerate(manifest) if "jumbo" in m["class"]]
    table = tmp_path / "t.yaml"
    table.write_text(TABLE)
    run = run_pcap(str(tmp_path), str(table), jumbo, ["out0"], "malformed-jumbo", extra_node="mtu: 9000\n")
    assert run.rc == 0, run.stderr
    assert run.stats["packets"]["tx"] == len(jumbo) == 1
    assert len(run.outputs["out0"]) == 1 and len(run.outputs["out0"][0]) == 9014
