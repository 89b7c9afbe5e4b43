"""Every binary and each of its modes answers --help (and -h) on stdout
with exit 0, before anything else: no EAL start, no hugepages, no file
opened, no daemon contacted. regionctl's subcommands have their own test
(tests/control/test_regionctl_help.py)."""
import os
import subprocess

import pytest

BUILD = os.environ.get("BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
BIN = {
    "regionfwd": os.path.join(BUILD, "dataplane", "regionfwd"),
    "regionfwd-gen": os.path.join(BUILD, "dataplane", "regionfwd-gen"),
    "regiond": os.path.join(BUILD, "control", "regiond"),
    "regionctl": os.path.join(BUILD, "control", "regionctl"),
}

CASES = [
    ("regionfwd", [], "usage: regionfwd "),
    ("regionfwd", ["--check-table"], "usage: regionfwd "),
    ("regionfwd", ["--check-node"], "usage: regionfwd "),
    ("regionfwd", ["--check-node", "/nonexistent.yaml", "--table"], "usage: regionfwd "),
    ("regionfwd", ["-l", "0", "--no-huge", "--"], "usage: regionfwd "),
    ("regionfwd-gen", [], "usage: regionfwd-gen "),
    ("regionfwd-gen", ["-l", "0", "--"], "usage: regionfwd-gen "),
    ("regionfwd-gen", ["--", "--table", "/nonexistent.yaml", "--pcap"], "usage: regionfwd-gen "),
    ("regiond", [], "usage: regiond "),
    ("regiond", ["--dataplane", "/nonexistent.sock"], "usage: regiond "),
    ("regionctl", [], "usage: regionctl "),
    ("regionctl", ["validate"], "usage: regionctl validate"),
    ("regionctl", ["rollback"], "usage: regionctl rollback"),
]


@pytest.mark.parametrize("prog,before,start", CASES, ids=[" ".join([c[0]] + c[1]) for c in CASES])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(prog, before, start, flag):
    if not os.path.exists(BIN[prog]):
        pytest.skip(f"{prog} not built")
    p = subprocess.run([BIN[prog], *before, flag], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p
    assert p.stdout.startswith(start), p.stdout
    assert "EAL:" not in p.stdout + p.stderr, p
    assert "cannot open" not in p.stderr and "not a generation" not in p.stderr, p


def test_gen_help_lists_its_options_not_eal():
    p = subprocess.run([BIN["regionfwd-gen"], "--help"], capture_output=True, text=True, timeout=30)
    for opt in ("--table T", "--tx DEV", "--pcap FILE", "--rate PPS", "--json"):
        assert opt in p.stdout, p.stdout
    assert "EAL common options" not in p.stdout


def test_regiond_usage_error_is_one_line():
    """A bad option printed its reason and then the whole usage (fifty
    lines), which pushed the reason off an operator's screen."""
    if not os.path.exists(BIN["regiond"]):
        pytest.skip("regiond not built")
    p = subprocess.run([BIN["regiond"], "--keep", "+20"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p
    assert p.stderr.count("\n") == 1 and "--keep takes 2..10000" in p.stderr, p.stderr
    assert "(see 'regiond --help')" in p.stderr and "usage:" not in p.stderr + p.stdout, p
