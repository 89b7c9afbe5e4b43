"""Run regionfwd on net_pcap vdevs for a test and collect what came out."""
import json
import os
import re
import signal
import socket
import subprocess
import time

from scapy.all import rdpcap, wrpcap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def regionfwd_bin():
    path = os.environ.get("REGIONFWD")
    if not path:
        path = os.path.join(ROOT, "build", "dataplane", "regionfwd")
    return path


def eal_args(prefix, lcores="0,1", mem=1024):
    return ["-l", lcores, "--no-huge", "-m", str(mem), "--no-pci", "--file-prefix", prefix,
            "--log-level", "pmd.net.pcap:warning", "--log-level", "lib.eal:warning"]


FANOUT_CLASH = "could not set PACKET_FANOUT on AF_PACKET socket"


def start_regionfwd(argv, log_path, up, timeout=30, tries=3):
    """Popen regionfwd (@argv) logging to @log_path and wait for up() or
    its exit. DPDK 22.11's net_af_packet names its PACKET_FANOUT group
    (pid ^ ifindex) & 0xffff: when that equals the group of another socket
    in the network namespace (another regionfwd of a concurrent test, on
    another veth), the kernel refuses the join (EINVAL) and the device is
    not probed. A new process has a new pid, so that start alone is tried
    again. Returns the process: up, or dead (or slow) for another reason,
    which the caller's own wait reports with the log."""
    for attempt in range(tries):
        start = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        p = subprocess.Popen(argv, stdout=open(log_path, "a"), stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline and p.poll() is None and not up():
            time.sleep(0.05)
        if p.poll() is None or attempt == tries - 1:
            return p
        with open(log_path, errors="replace") as f:
            f.seek(start)
            if FANOUT_CLASH not in f.read():
                return p
    return p


# Every node the tests run naps when its queues are empty (node
# idle_sleep_us, docs/operations.md): a test's regionfwd that waits, for a
# push, a signal, a frame on a veth, the end of its --idle-exit window,
# then leaves its core to the tests beside it, where a busy poll would take
# a whole one of two cores for as long as it runs. The nap is short enough
# (a millisecond) for any test's wait; test_idle_naps.py covers the nap.
NAP = "idle_sleep_us: 1000\n"

# And a pool of 4095 mbufs, not the node's default 32767, and a capture
# pool of 511 copies, not 4095: regionfwd writes every mbuf's header at
# start and DPDK zeroes each pool when it is freed at exit, and with
# --no-huge each 2,304-byte mbuf takes a 4 KiB page of its own, so the
# pools' page faults were most of a start's CPU, over hundreds of starts a
# stage (measured under ASan, perf stat, 6 starts each: 792 ms of CPU a
# start with 8191 and 4095, 544 ms with 4095 and 511; 0.64 s with the
# node's defaults before that). No test's traffic holds more in flight:
# the pcaps preloaded by infinite_rx hold at most 576 frames (test_e2e's
# Box with the name sets' hellos), a TAP's RX ring 1024; a test that needs
# another pool sets mbufs or capture_mbufs itself (the capture tests,
# whose steady traffic is copied at full speed, keep the node's 4095).
POOL = "mbufs: 4095\n"
CAPTURE_POOL = "capture_mbufs: 511\n"


def with_test_defaults(node_text):
    """@node_text (the node config, or a part of it) with NAP, POOL and
    CAPTURE_POOL, unless it sets idle_sleep_us, mbufs or capture_mbufs
    itself (a key twice is refused)."""
    out = node_text.rstrip("\n") + "\n"
    if "idle_sleep_us" not in node_text:
        out += NAP
    if not re.search(r"^\s*mbufs\s*:", node_text, re.M):
        out += POOL
    if not re.search(r"^\s*capture_mbufs\s*:", node_text, re.M):
        out += CAPTURE_POOL
    return out


def write_node(path, in_pcap, out_dir, out_ports, extra=""):
    """Node config: one pcap ingress, one pcap writer per output port."""
    lines = ["ports:",
             f'  in0: {{device: "net_pcap_in0,rx_pcap={in_pcap}", ingress: true}}']
    for i, name in enumerate(out_ports):
        lines.append(f'  {name}: {{device: "net_pcap_out{i},tx_pcap={out_dir}/{name}.pcap"}}')
    with open(path, "w") as f:
        f.write(with_test_defaults("\n".join(lines) + "\n" + extra))


class Run:
    def __init__(self, rc, stdout, stderr, stats, outputs):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr
        self.stats = stats          # the --stats-json document
        self.outputs = outputs      # port name -> list of scapy packets

    def drops(self):
        return {k: v for k, v in self.stats["drops"].items() if v}


# --idle-exit's window: long enough that a process left unscheduled on a
# loaded machine (300 ms seen in CI) is not taken for the end of the pcap.
IDLE_MS = 1000


def run_pcap(tmp_path, table, packets, out_ports, prefix, extra_node="", idle_ms=IDLE_MS,
             timeout=60, mem=1024):
    """Forward `packets` once through regionfwd and return a Run."""
    in_pcap = os.path.join(tmp_path, "in.pcap")
    wrpcap(in_pcap, packets, linktype=1)  # DLT_EN10MB even if the first is raw bytes
    node = os.path.join(tmp_path, "node.yaml")
    write_node(node, in_pcap, tmp_path, out_ports, extra_node)
    stats_path = os.path.join(tmp_path, "stats.json")
    cmd = [regionfwd_bin()] + eal_args(prefix, mem=mem) + [
        "--", "--node", node, "--table", table, "--idle-exit", str(idle_ms),
        "--stats-json", stats_path]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    stats = None
    if p.returncode == 0:
        with open(stats_path) as f:
            stats = json.load(f)
    outputs = {}
    for name in out_ports:
        path = os.path.join(tmp_path, f"{name}.pcap")
        outputs[name] = list(rdpcap(path)) if os.path.exists(path) and os.path.getsize(path) > 24 else []
    return Run(p.returncode, p.stdout, p.stderr, stats, outputs)


class Daemon:
    """regionfwd running in the background (telemetry, signals)."""

    def __init__(self, tmp_path, table, in_pcap, out_ports, prefix, infinite=True):
        self.prefix = prefix
        node = os.path.join(tmp_path, "node.yaml")
        rx = f"rx_pcap={in_pcap}" + (",infinite_rx=1" if infinite else "")
        lines = ["ports:", f'  in0: {{device: "net_pcap_in0,{rx}", ingress: true}}']
        for i, name in enumerate(out_ports):
            # No tx_pcap: transmitted packets are freed by the PMD (a sink).
            lines.append(f'  {name}: {{device: "net_null_out{i}"}}')
        with open(node, "w") as f:
            f.write("\n".join(lines) + "\n" + NAP)
        self.table = table
        self.out = open(os.path.join(tmp_path, "daemon.out"), "w+")
        cmd = [regionfwd_bin()] + eal_args(prefix) + ["--", "--node", node, "--table", table]
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT, text=True)
        self.sock = None

    def telemetry(self, command, wait=15.0):
        path = f"/var/run/dpdk/{self.prefix}/dpdk_telemetry.v2"
        deadline = time.time() + wait
        while self.sock is None:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(path)
                json.loads(s.recv(16384).decode())  # greeting
                self.sock = s
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.1)
        self.sock.send(command.encode())
        return json.loads(self.sock.recv(1 << 20).decode())[command.split(",")[0]]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.sock:
            self.sock.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.seek(0)
        return self.out.read()


def run_node(tmp_path, table, node_text, prefix, lcores="0,1", lcores_map=None, mem=1024,
             idle_ms=IDLE_MS, timeout=120):
    """Run regionfwd with a node config given as text; return (proc, stats)."""
    node = os.path.join(tmp_path, "node.yaml")
    with open(node, "w") as f:
        f.write(with_test_defaults(node_text))
    stats_path = os.path.join(tmp_path, "stats.json")
    eal = eal_args(prefix, lcores, mem)
    if lcores_map:
        eal[0:2] = ["--lcores", lcores_map]
    cmd = [regionfwd_bin()] + eal + ["--", "--node", node, "--table", table,
                                     "--idle-exit", str(idle_ms), "--stats-json", stats_path]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    stats = None
    if p.returncode == 0:
        with open(stats_path) as f:
            stats = json.load(f)
    return p, stats


def read_pcaps(*paths):
    out = []
    for path in paths:
        if os.path.exists(path) and os.path.getsize(path) > 24:
            out += list(rdpcap(path))
    return out


def wait_started(proc, log, timeout=60):
    """Until regionfwd, writing to the file @log, says its workers poll
    (its signal handlers are set too); AssertionError if it died first or
    after @timeout seconds."""
    deadline = time.time() + timeout
    while "forwarding with" not in log.read_text():
        assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)


def pcap_count(path, keep=lambda f: True):
    """The frames @keep accepts in the pcap a running tcpdump writes (0
    while its first record is being written)."""
    try:  # tcpdump may be writing a record as it is read
        return len([f for f in read_pcaps(path) if keep(f)])
    except Exception:
        return 0


def wait_pcap(path, n, keep=lambda f: True, timeout=30):
    """Until the pcap a running tcpdump writes holds @n frames that @keep
    accepts, or @timeout seconds; what it holds is asserted afterwards by
    the caller."""
    deadline = time.time() + timeout
    while pcap_count(path, keep) < n and time.time() < deadline:
        time.sleep(0.2)


def wait_pcap_kicked(path, n, keep, kick, kicks=5):
    """wait_pcap() for frames regionfwd sends on a net_af_packet port, then,
    while fewer than @n are there, kick() (send a frame of the test's own,
    one @keep does not accept, that regionfwd sends on the same port) and
    wait again. DPDK 22.11's net_af_packet counts a burst as sent when the
    kernel's kick of its TX ring says EAGAIN or ENOBUFS (under load) and
    leaves what was not sent in the ring until the next transmit on the
    port: a quiet link's last frames wait for the next frame
    (docs/operations.md). CI-loaded runs once captured 49 of 50 after 30 s,
    and 91 of 100. Frames of their own send the rest: none may be lost,
    only held."""
    wait_pcap(path, n, keep)
    for _ in range(kicks):
        if pcap_count(path, keep) >= n:
            break
        kick()
        wait_pcap(path, n, keep, timeout=10)


class Served:
    """regionfwd running with a control socket until stop(): the node's
    ports given as (name, YAML flow mapping) pairs, its log in a file under
    tmp, `ctl` a connected tests/lib/ctlclient.Ctl."""

    def __init__(self, tmp, prefix, ports, table, extra_node="", log="fwd.log", args=(), wrapper=()):
        from ctlclient import Ctl
        self.tmp, self.prefix, self.table = tmp, prefix, table
        self.sock = str(tmp / "ctl.sock")
        node = tmp / "node.yaml"
        node.write_text("ports:\n" + "".join(f"  {n}: {d}\n" for n, d in ports) +
                        with_test_defaults(f"control_socket: {self.sock}\n" + extra_node))
        open(tmp / log, "w").close()
        self.p = start_regionfwd(list(wrapper) + [regionfwd_bin()] + eal_args(prefix) + [
            "--", "--node", str(node), "--table", str(table), *args], str(tmp / log),
            lambda: os.path.exists(self.sock))
        self.log = open(tmp / log, "a+")
        deadline = time.time() + 30
        while True:
            try:
                self.ctl = Ctl(self.sock)
                break
            except OSError:
                assert self.p.poll() is None and time.time() < deadline, self.text()
                time.sleep(0.1)

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.ctl.close()
        self.p.terminate()
        self.p.wait(30)
        return self.text()


def pcap_in_null_out(pcap):
    """Ports of a node fed forever from @pcap (or nothing when None), out0
    and out1 to net_null."""
    rx = f"net_pcap_in0,rx_pcap={pcap},infinite_rx=1" if pcap else "net_null_i0,no-rx=1"
    return [("in0", f'{{device: "{rx}", ingress: true}}'),
            ("out0", "{device: net_null_o0}"), ("out1", "{device: net_null_o1}")]
