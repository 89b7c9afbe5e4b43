"""regionfwd --log: DPDK's whole log (EAL's lines too, since it is taken
before EAL starts) through the one log module, each line timestamped with
its level; an unknown target refused before anything starts."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from dprun import ROOT, regionfwd_bin  # noqa: E402

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (err|warning|notice|info|debug) regionfwd: ")


def test_log_stderr_timestamps_every_line(tmp_path):
    # Not eal_args(): its --log-level lib.eal:warning would hide EAL's info lines.
    args = ["-l", "0", "--no-huge", "-m", "256", "--no-pci", "--file-prefix", "logtest"]
    p = subprocess.run([regionfwd_bin()] + args + [
        "--", "--log", "stderr", "--node", str(tmp_path / "none.yaml"), "--table",
        os.path.join(ROOT, "docs", "examples", "demo-table.yaml")], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    lines = p.stderr.splitlines()
    assert lines and all(LINE.match(ln) for ln in lines), p.stderr
    assert any(" info regionfwd: EAL: " in ln for ln in lines), p.stderr
    assert any(re.search(r" err regionfwd: .*node config refused: .*none.yaml", ln) for ln in lines), p.stderr


def test_log_unknown_target():
    p = subprocess.run([regionfwd_bin(), "-l", "0", "--", "--log", "console"], capture_output=True, text=True)
    assert p.returncode == 2 and "--log console: takes stderr, journal or syslog" in p.stderr, p
    assert "EAL" not in p.stderr


def test_without_log_control_characters_are_escaped(tmp_path):
    """Without --log, DPDK's default stays (its lines on stderr, unprefixed),
    but a control character from outside (here a node path an operator's
    script built badly) reaches the terminal as \\xNN, never raw."""
    node = str(tmp_path / "no\x1b[2Jde\x07.yaml")
    args = ["-l", "0", "--no-huge", "-m", "256", "--no-pci", "--file-prefix", "logplain"]
    p = subprocess.run([regionfwd_bin()] + args + [
        "--", "--node", node, "--table",
        os.path.join(ROOT, "docs", "examples", "demo-table.yaml")], capture_output=True, timeout=120)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode != 0
    assert b"\x1b" not in p.stderr and b"\x07" not in p.stderr, err
    assert "no\\x1b[2Jde\\x07.yaml" in err, err
    # DPDK's own format, not --log stderr's timestamped one.
    assert any(ln.startswith("EAL: ") for ln in err.splitlines()), err
    assert not any(LINE.match(ln) for ln in err.splitlines()), err
