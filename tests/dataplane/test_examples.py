"""The shipped examples work as the README says: both node configs check
against their tables, and the lab box (TAP ports) forwards a frame from
its ingress TAP to the right link's TAP with the link's VLAN tag.

The lab box runs inside a network namespace of the test's own, so its TAP
interfaces (and the frames on them) never touch the root namespace."""
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import netns  # noqa: E402
from dprun import ROOT, eal_args, regionfwd_bin  # noqa: E402

EX = os.path.join(ROOT, "docs", "examples")


def check_node(node, table):
    return subprocess.run([regionfwd_bin(), "--check-node", os.path.join(EX, node),
                           "--table", os.path.join(EX, table)], capture_output=True, text=True)


@pytest.mark.parametrize("node,table", [("node-lab.yaml", "demo-table.yaml"),
                                        ("node-two-nic.yaml", "two-nic-table.yaml")])
def test_example_node_and_table_agree(node, table):
    r = check_node(node, table)
    assert r.returncode == 0, r.stderr
    assert "every link of" in r.stdout
    t = subprocess.run([regionfwd_bin(), "--check-table", os.path.join(EX, table)],
                       capture_output=True, text=True)
    assert t.returncode == 0, t.stderr


def test_a_yaml_reader_error_names_its_line(tmp_path):
    """libyaml's reader errors (a NUL, a control character) carry a byte
    offset, no mark: --check-table said line 1 wherever one was (a probe)."""
    bad = tmp_path / "t.yaml"
    bad.write_bytes(open(os.path.join(EX, "demo-table.yaml"), "rb").read().replace(
        b"  singapore:", b"  singa\0pore:", 1))
    line = next(n for n, ln in enumerate(open(os.path.join(EX, "demo-table.yaml")), 1) if ln.startswith("  singapore:"))
    t = subprocess.run([regionfwd_bin(), "--check-table", str(bad)], capture_output=True, text=True)
    assert t.returncode == 1 and t.stderr.startswith(f"{bad}:{line}: YAML syntax: "), (line, t.stderr)


def test_check_node_names_a_missing_port():
    r = check_node("node-two-nic.yaml", "demo-table.yaml")
    assert r.returncode == 1
    # at the table's line, as every other table error (it had none)
    line = next(n for n, ln in enumerate(open(os.path.join(EX, "demo-table.yaml")), 1) if "port: local0" in ln)
    assert f"demo-table.yaml:{line}: links.local.port: no port 'local0' in node config" in r.stderr, r.stderr
    assert "(ports: edge0, uplink0)" in r.stderr


def test_check_node_refuses_a_bad_node(tmp_path):
    bad = tmp_path / "node.yaml"
    bad.write_text("ports:\n  in0: {device: net_null0, ingress: true}\nmbufs: 12\n")
    r = subprocess.run([regionfwd_bin(), "--check-node", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and "mbufs" in r.stderr, r.stderr


def test_check_node_warns_of_a_pool_the_rings_outgrow(tmp_path):
    """--check-node said valid and the start then warned that the rings
    and caches hold more mbufs than the pool has (a new user's walkthrough):
    the check warns too, for one worker (the least), and stays valid."""
    node = tmp_path / "node.yaml"
    ports = "".join(f"  p{i}: {{device: net_null{i}{', ingress: true' if i == 0 else ''}}}\n" for i in range(6))
    node.write_text("ports:\n" + ports + "mbufs: 4095\n")
    r = subprocess.run([regionfwd_bin(), "--check-node", str(node)], capture_output=True, text=True)
    assert r.returncode == 0 and "valid: 6 ports" in r.stdout, r
    assert "warning: a pool of 4095 mbufs is smaller than the 12672 that rings and caches hold " \
           "with one worker" in r.stderr, r.stderr
    node.write_text("ports:\n" + ports + "mbufs: 16383\n")
    r = subprocess.run([regionfwd_bin(), "--check-node", str(node)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r


def test_the_control_socket_never_replaces_a_file(tmp_path):
    """regionfwd runs as root and once unlink()ed whatever control_socket
    named: a typo there deleted the file. Only a socket (a stopped
    regionfwd's) is replaced now; anything else stops the start, named,
    and stays. (Whether the path is free is the host's business, like the
    group: regionfwd-preflight checks both, --check-node the config.)"""
    victim = tmp_path / "table.yaml"
    victim.write_text("precious\n")
    node = tmp_path / "node.yaml"
    node.write_text("ports:\n  in0: {device: net_null0, ingress: true}\n"
                    "  out0: {device: net_null1}\n" + f"control_socket: {victim}\n")
    table = tmp_path / "t.yaml"
    table.write_text("regions: {a: {prefixes: [10.0.0.0/8]}}\n"
                     "links: {l: {port: out0, next_hop_mac: '02:00:00:00:00:01'}}\n"
                     "default: {action: steer, to: l}\n")
    r = subprocess.run([regionfwd_bin(), *eal_args("chk-sock"), "--", "--node", str(node),
                        "--table", str(table), "--idle-exit", "200"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert (f"control socket {victim}: the path exists and is not a socket; not replacing it"
            in r.stdout + r.stderr), r.stdout + r.stderr
    assert victim.read_text() == "precious\n"


def test_check_table_compiles_the_patterns(tmp_path):
    """--check-table says valid only to what a push would take: a pattern
    Hyperscan refuses is named with its rule, line and reason."""
    text = open(os.path.join(EX, "demo-table.yaml")).read()
    assert "pattern: '(^|\\.)telemetry\\.example\\.in$'" in text
    bad = tmp_path / "t.yaml"
    bad.write_text(text.replace("pattern: '(^|\\.)telemetry\\.example\\.in$'", "pattern: '(?<=a)b'"))
    r = subprocess.run([regionfwd_bin(), "--check-table", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1, r.stdout
    assert "content_rules[0].pattern: rule 'telemetry-india-only': Zero-width assertions" in r.stderr


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "t.yaml"
    os.mkfifo(fifo)
    r = subprocess.run([regionfwd_bin(), "--check-table", str(fifo)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "not a regular file" in r.stderr, r.stderr


CHECK_MISUSE = [
    (["--check-table", "T", "extra"], "regionfwd: --check-table: unexpected argument 'extra'"),
    (["--check-table"], "regionfwd: --check-table takes a FILE (the table document to validate)"),
    (["--check-table", "--table", "T"], "regionfwd: --check-table takes a FILE"),
    (["--check-table", "T", "--check-table", "T"], "regionfwd: --check-table given twice"),
    (["--check-node"], "regionfwd: --check-node takes a FILE (the node config to validate)"),
    (["--check-node", "N", "--table"], "regionfwd: --table takes a FILE"),
    (["--check-node", "N", "--table", "T", "x"], "regionfwd: --check-node: unexpected argument 'x'"),
    (["--check-table", "T", "--check-node", "N"], "unexpected argument '--check-node'"),
]


@pytest.mark.parametrize("args,said", CHECK_MISUSE, ids=[" ".join(c[0]) for c in CHECK_MISUSE])
def test_check_modes_refuse_what_they_do_not_take(args, said):
    """--check-table once ignored an extra argument (so "--check-table
    a.yaml b.yaml" said valid for a.yaml alone) and, without its FILE,
    fell through to EAL, which printed its whole usage text. A check is
    the whole command line: anything else is a one-line error naming the
    option, exit 2 (usage), nothing checked."""
    files = {"T": os.path.join(EX, "demo-table.yaml"), "N": os.path.join(EX, "node-lab.yaml")}
    argv = [files.get(a, a) for a in args]
    r = subprocess.run([regionfwd_bin(), *argv], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert said in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stdout == "" and "EAL" not in r.stderr, r


@pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")
def test_lab_example_forwards_between_taps(tmp_path):
    ns = "rfw-lab-test"
    # The example as shipped, but its control socket in the test's directory.
    node = tmp_path / "node-lab.yaml"
    text = open(os.path.join(EX, "node-lab.yaml")).read()
    assert "control_socket: /run/regionfwd/lab.sock" in text
    node.write_text(text.replace("/run/regionfwd/lab.sock", str(tmp_path / "lab.sock")))
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    proc = None
    try:
        proc = subprocess.Popen(netns.in_ns(ns) + [regionfwd_bin()] + eal_args("rfw-lab-test") +
                                ["--", "--node", str(node), "--table", os.path.join(EX, "demo-table.yaml"),
                                 "--stats-json", str(tmp_path / "stats.json")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while not os.path.exists(tmp_path / "lab.sock"):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.time() < deadline, "regionfwd did not come up"
            time.sleep(0.2)
        # Singapore user to the sync service: steered to link to-sg (port
        # sg0 = TAP rfw-sg, VLAN 210). Sniff there while sending into rfw-in.
        code = """
from scapy.all import *
import subprocess
for i in ("rfw-in", "rfw-sg"):
    subprocess.run(["ip", "link", "set", i, "up"], check=True)
pkt = Ether(dst="02:00:00:00:00:01") / IP(src="8.130.0.1", dst="198.51.100.1") / TCP(sport=40000, dport=7005)
got = []
s = AsyncSniffer(iface="rfw-sg", store=True,
                 lfilter=lambda p: Dot1Q in p and IP in p and p[IP].src == "8.130.0.1")
s.start()
time.sleep(0.5)
for _ in range(5):
    sendp(pkt, iface="rfw-in", verbose=False)
    time.sleep(0.2)
time.sleep(0.5)
s.stop()
for p in s.results:
    print("GOT", p[Dot1Q].vlan, p[Ether].dst, p[IP].ttl)
"""
        r = subprocess.run(netns.in_ns(ns) + ["/usr/bin/python3", "-c", code],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        got = [line.split() for line in r.stdout.splitlines() if line.startswith("GOT")]
        assert got, "no frame reached rfw-sg: " + r.stdout + r.stderr
        for _, vlan, dst, ttl in got:
            assert (vlan, dst, ttl) == ("210", "02:00:00:00:02:01", "63")
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_log_equals_form_is_applied(tmp_path):
    """--log=stderr was parsed and ignored (only --log stderr was taken
    before EAL started): DPDK's lines then came without timestamps."""
    node, table = tmp_path / "node.yaml", tmp_path / "t.yaml"
    node.write_text("ports:\n  in0: {device: 'net_null_li0,no-rx=1', ingress: true}\n"
                    "  out0: {device: 'net_null_lo0,no-rx=1'}\n")
    table.write_text("regions: {r: {prefixes: [10.0.0.0/8]}}\nlinks: {l: {port: out0, "
                     "next_hop_mac: '02:00:00:00:00:01'}}\ndefault: {action: steer, to: l}\n")
    r = subprocess.run([regionfwd_bin(), *eal_args("log-eq", mem=512), "--", "--node", str(node),
                        "--table", str(table), "--log=stderr", "--idle-exit", "200"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # --log's stream: timestamped, with the level (the plain one has neither).
    line = [ln for ln in r.stderr.splitlines() if "forwarding with 1 workers" in ln]
    assert line and re.match(r"\d{4}-\d\d-\d\dT[0-9:.]+Z info regionfwd: ", line[0]), r.stderr


@pytest.mark.parametrize("args,words", [
    (["--table", "a.yaml", "--table", "b.yaml"], "--table given twice"),
    (["--node", "a.yaml", "--node", "b.yaml"], "--node given twice"),
    (["--stats-json", "/tmp/a.json", "--stats-json", "/tmp/b.json"], "--stats-json given twice"),
    (["--idle-exit", "500", "--idle-exit", "600"], "--idle-exit given twice"),
    (["--start-on", "pushed", "--start-on", "table"], "--start-on given twice"),
    (["--log", "stderr", "--log", "stderr"], "--log given twice"),
    (["--log=stderr", "--log=stderr"], "--log given twice"),
    (["--log", "stderr", "--log=syslog"], "--log given twice"),
    # getopt takes --lo for --log, which main() takes before EAL starts:
    # parsed here, never applied.
    (["--lo", "stderr"], "write --log TO or --log=TO in full"),
    (["--idle-exit", "7094901566812"], "--idle-exit takes milliseconds, 1..31536000000"),
    (["--idle-exit", "31536000001"], "--idle-exit takes milliseconds, 1..31536000000"),
    (["--idle-exit", "+500"], "--idle-exit takes milliseconds, 1..31536000000"),
    (["--idle-exit", " 500"], "--idle-exit takes milliseconds, 1..31536000000"),
    (["--start-on", "later"], "--start-on"),
    (["--bogus"], "bogus"),
    (["--stats-json", "/"], "--stats-json /: cannot be written"),
    (["--stats-json", ""], "--stats-json: an empty path"),
    (["--stats-json", "/nonexistent-rfw/s.json"], "its directory /nonexistent-rfw missing"),
])
def test_arguments_refused_before_the_run(args, words):
    """A repeated option kept only its last value, and a --stats-json that
    cannot be written failed only at exit, after the whole run. Each is a
    usage error, exit 2 as the checks' (some were 1, a failed start's),
    said before EAL starts: it once probed the machine's PCI devices and
    made its runtime directory first."""
    runtime = "/var/run/dpdk/args-chk"
    shutil.rmtree(runtime, ignore_errors=True)
    r = subprocess.run([regionfwd_bin(), *eal_args("args-chk", mem=64), "--", *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and words in r.stdout + r.stderr, (r.returncode, r.stdout + r.stderr)
    assert not os.path.exists(runtime) and "EAL:" not in r.stdout + r.stderr, r.stdout + r.stderr
