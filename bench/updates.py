#!/usr/bin/python3
"""g. Table updates at routing scale (issue 19): incremental generations on a
1M IPv4 + 200k IPv6 table, in regionfwd through its control socket while
traffic flows, and end to end through regiond's POST /v1/prefixes.

Printed, never asserted:
  - whole replacement of the table (validate + build + swap, and the standby
    FIBs built after it in the background);
  - a 10k-prefix delta (10,000 prefixes change region: 20,000 change records,
    their removal and their add): from the call to its answer, which comes
    after the grace period, i.e. once every worker runs the new generation;
  - sustained churn: back-to-back deltas of a given batch size for a given
    time, prefix updates per second;
  - loss and misroutes, counted exactly: regions come in classes of twins
    (r1, r6, r11 ... steer to link k0; r2, r7 ... to k1), churn moves
    prefixes only between twins, so every source address keeps its link
    through every generation; the pcap is replayed in order (infinite_rx),
    so after rx packets each packet of it was received rx // N (+1 for the
    first rx % N) times, and each link must hold exactly the packets whose
    source's longest match steers there;
  - memory: regionfwd's VmRSS before and after, and its peak (VmHWM).

Run alone: bench/updates.py [--batch 10000] [--churn-s 10]; bench/run runs it
as section g.
"""
import argparse
import ipaddress
import json
import os
import random
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
OUT = os.path.join(BUILD, "bench")
REGIONFWD = os.path.join(BUILD, "dataplane", "regionfwd")
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

CLASSES = 5


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def vm(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0  # MiB
    return 0.0


def make_doc(path):
    """gen-table's realistic 1M + 200k prefixes in 50 regions; links k0..k4
    by class, a trap for what no region holds."""
    cache = path + ".src"
    if not os.path.exists(cache):
        subprocess.run([os.path.join(ROOT, "scripts", "gen-table"), "--v4", "1000000", "--v6", "200000",
                        "--regions", "50", "--out", cache], check=True, capture_output=True)
    d = json.load(open(cache))
    names = list(d["regions"])
    d["links"] = {f"k{c}": {"port": "out0", "next_hop_mac": f"02:00:00:00:01:{c:02x}"} for c in range(CLASSES)}
    d["links"]["trap"] = {"port": "out0", "next_hop_mac": "02:00:00:00:01:ff"}
    d["policies"] = [{"region": n, "service": "any", "action": "steer", "to": f"k{i % CLASSES}"}
                     for i, n in enumerate(names)]
    d["default"] = {"action": "steer", "to": "trap"}
    d.pop("residency", None)
    return d, names


class Lpm:
    """Longest match over the table: one dict per length."""

    def __init__(self, d, names):
        self.by_len = {}
        for i, n in enumerate(names):
            for p in d["regions"][n]["prefixes"]:
                net = ipaddress.ip_network(p)
                self.by_len.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = i

    def region(self, addr):
        a = ipaddress.ip_address(addr)
        bits = 32 if a.version == 4 else 128
        for plen in range(bits, -1, -1):
            t = self.by_len.get((a.version, plen))
            if t is None:
                continue
            key = int(a) >> (bits - plen) << (bits - plen) if plen else 0
            if key in t:
                return t[key]
        return None


def run(batch=10000, churn_s=5.0, rounds=5):
    from ctlclient import Ctl
    from scapy.all import IP, IPv6, UDP, Ether, Raw, wrpcap
    os.makedirs(OUT, exist_ok=True)
    d, names = make_doc(os.path.join(OUT, "table-1M200k.json"))
    holder = {}  # prefix text -> region index
    for i, n in enumerate(names):
        for p in d["regions"][n]["prefixes"]:
            holder[p] = i
    allp = list(holder)
    nets = [ipaddress.ip_network(p) for p in allp]
    key = [(4 if n.version == 4 else 6, int(n.network_address), n.prefixlen) for n in nets]
    raw = [n.network_address.packed.ljust(16, b"\0") for n in nets]
    del nets
    rnd = random.Random(19)
    lpm = Lpm(d, names)
    # Sources: mostly inside prefixes churn will move, some elsewhere.
    pkts, expect = [], []
    for k in range(1024):
        net = ipaddress.ip_network(rnd.choice(allp))
        a = net.network_address + rnd.randrange(net.num_addresses)
        r = lpm.region(a)
        expect.append("trap" if r is None else f"k{r % CLASSES}")
        l3 = (IP(src=str(a), dst="192.0.2.1") if a.version == 4 else IPv6(src=str(a), dst="2001:db8::1"))
        pkts.append(Ether(src="02:99:00:00:00:01", dst="02:99:00:00:00:02") / l3 / UDP(sport=1000 + k, dport=53) /
                    Raw(b"x" * 10))
    pcap = os.path.join(OUT, "updates-in.pcap")
    wrpcap(pcap, pkts)
    sock, stats = os.path.join(OUT, "updates.sock"), os.path.join(OUT, "updates-stats.json")
    for f in (sock + ".pushed", sock + ".pushed.deltas", stats):
        if os.path.exists(f):
            os.unlink(f)
    node = os.path.join(OUT, "node-updates.yaml")
    open(node, "w").write(f'ports:\n  in0: {{device: "net_pcap_in0,rx_pcap={pcap},infinite_rx=1", ingress: true}}\n'
                          f'  out0: {{device: "net_null_o0,no-rx=1"}}\ncontrol_socket: {sock}\nmbufs: 32767\n')
    # regionfwd starts on the table itself, so every packet is classified
    # by it or by a generation with the same outcome for every address; the
    # whole replacement pushes the same prefixes under another description.
    start = os.path.join(OUT, "table-1M200k-start.json")
    json.dump(d, open(start, "w"))
    cmd = [REGIONFWD, "-l", "0,1", "--no-huge", "-m", "4000", "--no-pci", "--file-prefix", "bench-upd",
           "--log-level", "lib.eal:warning", "--log-level", "pmd.net.pcap:warning",
           "--", "--node", node, "--table", start, "--stats-json", stats]
    logf = open(os.path.join(OUT, "updates-regionfwd.log"), "w+")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
    res = {"command": " ".join(cmd), "prefixes_v4": 1000000, "prefixes_v6": 200000}
    try:
        deadline = time.time() + 300
        while True:
            try:
                ctl = Ctl(sock, timeout=600)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("regionfwd did not start")
                time.sleep(0.2)
        res["rss_before_mib"] = vm(proc.pid, "VmRSS")
        d["description"] = "pushed whole by bench/updates.py"
        doc = json.dumps(d)
        t0 = time.monotonic()
        r = ctl.call("push", document=doc, name="bench")
        res["whole_replacement_s"] = time.monotonic() - t0
        assert r["ok"], r
        h = int(r["hash"], 16)
        res["rss_after_push_mib"] = vm(proc.pid, "VmRSS")

        def moves(n):
            """n prefixes to a twin region (same class, another region), packed
            as fwd_delta_pack() in fwd_delta_apply()'s order."""
            recs = []
            for k in sorted(rnd.sample(range(len(allp)), n), key=lambda k: key[k]):
                p = allp[k]
                i = holder[p]
                j = (i + CLASSES) % len(names)
                holder[p] = j
                fam, plen, addr = key[k][0], key[k][2], raw[k]
                recs.append(bytes((2, fam, plen, 0, (i + 1) >> 8, (i + 1) & 255, 0, 0)) + addr)
                recs.append(bytes((1, fam, plen, 0, (j + 1) >> 8, (j + 1) & 255, 0, 0)) + addr)
            return b"".join(recs)

        def send(packed):
            """The delta, with hash 0: regionfwd names it (fwd_delta_hash) in
            its answer; FNV over megabytes in Python would time Python."""
            nonlocal h
            t = time.monotonic()
            r = ctl.call("delta", base_hash=h, changes=[], packed=packed, hash=0, name="bench")
            dt = time.monotonic() - t
            assert r["ok"], r
            h = int(r["hash"], 16)
            return dt

        # The first delta waits for the standby FIBs, which a thread builds
        # after a whole replacement: timed apart.
        res["standby_ready_s"] = send(moves(1))
        res["rss_steady_mib"] = vm(proc.pid, "VmRSS")
        times = [send(moves(10000)) for _ in range(rounds)]
        res["delta10k_ms_median"] = statistics.median(times) * 1e3
        res["delta10k_ms_min"], res["delta10k_ms_max"] = min(times) * 1e3, max(times) * 1e3
        # Sustained churn: packing is done ahead, so only the channel and
        # regionfwd are timed.
        ready = [moves(batch) for _ in range(max(2, int(churn_s * 300000 / batch) + 2))]
        n, t0 = 0, time.monotonic()
        for packed in ready:
            send(packed)
            n += batch
            if time.monotonic() - t0 >= churn_s:
                break
        el = time.monotonic() - t0
        res.update({"churn_batch": batch, "churn_s": el, "churn_prefixes": n,
                    "churn_updates_per_s": n / el})
        res["rss_end_mib"] = vm(proc.pid, "VmRSS")
        res["peak_rss_mib"] = vm(proc.pid, "VmHWM")
        ctl.close()
    finally:
        proc.terminate()
        proc.wait(120)
    s = json.load(open(stats))
    rx, tx, dropped = s["packets"]["rx"], s["packets"]["tx"], s["packets"]["dropped"]
    want = {}
    for i, link in enumerate(expect):
        want[link] = want.get(link, 0) + rx // len(expect) + (1 if i < rx % len(expect) else 0)
    got = {k: v["packets"] for k, v in s["links"].items()}
    res.update({"packets": rx, "lost": rx - tx - dropped, "dropped": dropped,
                "misrouted": sum(abs(got.get(k, 0) - want.get(k, 0)) for k in set(got) | set(want)) // 2})
    logf.seek(0)
    fib = [l for l in logf.read().splitlines() if "FIBs" in l and "1000000 IPv4" in l and "built and published" in l]
    if fib:
        res["fib_log"] = fib[-1].split(": ", 1)[1]
    return res


def e2e(rounds=5):
    """regiond + regionfwd (no traffic) on the same table: POST /v1/prefixes of
    10k moves, from the request to regiond's answer (regiond answers once
    regionfwd runs the generation and the history is durable)."""
    import http.client
    import socket
    d, names = make_doc(os.path.join(OUT, "table-1M200k.json"))
    w = os.path.join(OUT, "updates-e2e")
    subprocess.run(["rm", "-rf", w], check=True)
    os.makedirs(w)
    start = os.path.join(w, "t.json")
    json.dump(d, open(start, "w"))
    open(os.path.join(w, "node.yaml"), "w").write(
        f'ports:\n  in0: {{device: "net_null_i0,no-rx=1", ingress: true}}\n  out0: {{device: net_null_o0}}\n'
        f"control_socket: {w}/dp.sock\n")
    fwd = subprocess.Popen([REGIONFWD, "-l", "0,1", "--no-huge", "-m", "6000", "--no-pci", "--file-prefix", "bench-e2e",
                            "--", "--node", os.path.join(w, "node.yaml"), "--table", start],
                           stdout=open(os.path.join(w, "regionfwd.log"), "w"), stderr=subprocess.STDOUT)
    rd = None
    try:
        deadline = time.time() + 300
        while not os.path.exists(os.path.join(w, "dp.sock")):
            if time.time() > deadline or fwd.poll() is not None:
                raise RuntimeError("regionfwd did not start")
            time.sleep(0.2)
        rd = subprocess.Popen([os.path.join(BUILD, "control", "regiond"), "--dataplane", os.path.join(w, "dp.sock"),
                               "--api-socket", os.path.join(w, "api.sock"), "--state-dir", os.path.join(w, "state"),
                               "--table", start], stdout=open(os.path.join(w, "regiond.log"), "w"),
                              stderr=subprocess.STDOUT)

        class C(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(os.path.join(w, "api.sock"))

        def req(method, path, body=None):
            c = C("localhost", timeout=600)
            c.request(method, path, body=body)
            r = c.getresponse()
            return r.status, r.read()

        while True:
            try:
                st, b = req("GET", "/v1/status")
                if st == 200 and json.loads(b).get("dataplane", {}).get("in_sync"):
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("regiond never in sync")
            time.sleep(0.5)
        rnd = random.Random(7)
        holder = {p: i for i, n in enumerate(names) for p in d["regions"][n]["prefixes"]}
        allp = list(holder)
        times = []
        for _ in range(rounds + 1):
            ch = {}
            for p in rnd.sample(allp, 10000):
                i = holder[p]
                j = (i + CLASSES) % len(names)
                holder[p] = j
                ch.setdefault(names[i], {}).setdefault("remove", []).append(p)
                ch.setdefault(names[j], {}).setdefault("add", []).append(p)
            # Serialized first: the client's own JSON encoding is not timed.
            body = json.dumps({"changes": [dict(region=r, **v) for r, v in ch.items()]}).encode()
            t = time.monotonic()
            st, b = req("POST", "/v1/prefixes", body)
            times.append(time.monotonic() - t)
            assert st == 200, b
        times = times[1:]  # the first waits for the standby FIBs
        return {"e2e_delta10k_ms_median": statistics.median(times) * 1e3,
                "e2e_delta10k_ms_min": min(times) * 1e3, "e2e_delta10k_ms_max": max(times) * 1e3}
    finally:
        if rd:
            rd.terminate()
            rd.wait(60)
        fwd.terminate()
        fwd.wait(120)


def markdown(r):
    L = ["### g. Table updates at routing scale (1M IPv4 + 200k IPv6, regionfwd's control socket, traffic flowing)\n",
         "| measure | value |", "|---|---:|",
         f"| whole replacement: validate + build + swap | {r['whole_replacement_s']:.2f} s |",
         f"| standby FIBs ready after it (background thread) | {r['standby_ready_s']:.2f} s |",
         f"| 10k-prefix delta (20k changes), call to answer, every worker on it | "
         f"{r['delta10k_ms_median']:.1f} ms ({r['delta10k_ms_min']:.1f}-{r['delta10k_ms_max']:.1f}) |",
         f"| sustained churn, batches of {r['churn_batch']} | {r['churn_updates_per_s']:,.0f} prefix updates/s "
         f"({r['churn_prefixes']:,} in {r['churn_s']:.1f} s) |",
         f"| packets during the run / lost / misrouted / dropped | {r['packets']:,} / {r['lost']} / {r['misrouted']} / "
         f"{r['dropped']} |",
         f"| regionfwd VmRSS: before / after the push / steady (with standby) / end | {r['rss_before_mib']:.0f} / "
         f"{r['rss_after_push_mib']:.0f} / {r['rss_steady_mib']:.0f} / {r['rss_end_mib']:.0f} MiB |",
         f"| regionfwd peak (VmHWM) | {r['peak_rss_mib']:.0f} MiB |"]
    if "e2e_delta10k_ms_median" in r:
        L.append(f"| end to end through regiond: 10k-prefix delta, POST /v1/prefixes to its answer (no traffic) | "
                 f"{r['e2e_delta10k_ms_median']:.1f} ms ({r['e2e_delta10k_ms_min']:.1f}-{r['e2e_delta10k_ms_max']:.1f}) |")
    if "fib_log" in r:
        L.append(f"\nregionfwd's log of the whole replacement: `{r['fib_log']}`")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--churn-s", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    r = run(a.batch, a.churn_s, a.rounds)
    r.update(e2e(a.rounds))
    json.dump(r, open(os.path.join(OUT, "updates.json"), "w"), indent=1)
    print(markdown(r))
