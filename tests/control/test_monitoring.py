"""Monitoring end to end: Debian's real Prometheus scrapes a live regiond's
/metrics over TCP with a read token, with regionfwd forwarding and an XDP
filter attached to a veth of the test's own.

- the scrape is up and every family docs/api.md promises is there, with the
  label values the alerts and the dashboard select;
- `promtool check metrics` passes on the scrape (no lint warning), with
  regionfwd up and with regionfwd down, when regiond still exports all it
  knows on its own;
- `promtool check rules` passes on docs/monitoring/regionfwd-alerts.yml, and
  Prometheus evaluates every rule without error;
- docs/monitoring/regionfwd-dashboard.json names only series that exist,
  and each of its queries runs in Prometheus and returns data.

capture_overflow is the one name written ahead of its counter (the capture
feature adds it to common/fwd_counters.def): until that line exists it is
skipped, and said so.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import netns  # noqa: E402
from test_e2e import DEMO, REGIOND, ROOT, Box, wait_for  # noqa: E402

PROMETHEUS, PROMTOOL = shutil.which("prometheus"), shutil.which("promtool")
ALERTS = os.path.join(ROOT, "docs", "monitoring", "regionfwd-alerts.yml")
DASHBOARD = os.path.join(ROOT, "docs", "monitoring", "regionfwd-dashboard.json")
API_MD = os.path.join(ROOT, "docs", "api.md")

pytestmark = [
    pytest.mark.skipif(PROMETHEUS is None or PROMTOOL is None,
                       reason="Debian's prometheus package (prometheus, promtool) is not installed: "
                              "scripts/deps installs it"),
    pytest.mark.skipif(not netns.available() or not os.path.exists(REGIOND),
                       reason="needs root, iproute2 and regiond"),
]

FILTERS = """
filters:
  default: pass
  rules:
    - {name: deny-lab, action: drop, prefixes: [10.9.0.0/16]}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def documented_families():
    """Every metric family the /metrics section of docs/api.md names."""
    text = open(API_MD).read()
    sec = text[text.index("### `GET /metrics`"):text.index("## Examples with curl")]
    return set(re.findall(r"`((?:regiond|regionfwd)_[a-z_]+)`", sec))


def promql_names(expr):
    """Metric names in a PromQL expression: our prefixes, plus `up`."""
    names = set(re.findall(r"\b((?:regiond|regionfwd)_[a-z_]+)\b", expr))
    if re.search(r"\bup\{", expr):
        names.add("up")
    return names


def promql_selectors(expr):
    """(metric, label, value) of every equality matcher in the expression."""
    out = []
    for name, body in re.findall(r"\b((?:regiond|regionfwd)_[a-z_]+)\{([^}]*)\}", expr):
        for label, value in re.findall(r'(\w+)="([^"]*)"', body):
            out.append((name, label, value))
    return out


def parse_scrape(text):
    """{family: [labels dict, ...]} of a Prometheus text exposition."""
    fams = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        assert m, line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        fams.setdefault(m.group(1), []).append(labels)
    return fams


class Prometheus:
    def __init__(self, tmp, target, token_file):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = tmp / "prometheus.yml"
        cfg.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{ALERTS}]
scrape_configs:
  - job_name: regiond
    authorization: {{credentials_file: {token_file}}}
    static_configs: [{{targets: ["{target}"]}}]
""")
        self.log = open(tmp / "prometheus.log", "w")
        self.p = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                                   f"--web.listen-address=127.0.0.1:{self.port}"],
                                  stdout=self.log, stderr=subprocess.STDOUT)

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.log.close()


def scrape(port, token):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=20) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def assert_grouped(text):
    """Each family's samples follow its own HELP and TYPE, all together, as
    the text format asks ("all lines for a given metric must be provided as
    one single group"): promtool 2.42 does not check it, stricter parsers
    (OpenMetrics, prometheus_client) refuse or split an interleaved family."""
    current, seen = None, set()
    for line in text.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+)", line)
        if m:
            if m.group(2) != current:
                assert m.group(2) not in seen, f"family {m.group(2)} given twice: {line}"
                seen.add(m.group(2))
                current = m.group(2)
            continue
        if line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            assert name == current, f"{line!r} is not in its family's group (the group open is {current})"


def promtool_metrics(text):
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "" and p.stderr.strip() == "", p.stdout + p.stderr
    assert_grouped(text)


def test_prometheus_scrapes_regiond_and_the_alerts_and_dashboard_hold(tmp_path):
    api_port = free_port()
    write_tok, read_tok = "w" * 8 + os.urandom(8).hex(), "r" * 8 + os.urandom(8).hex()
    for name, tok in (("write.tok", write_tok), ("read.tok", read_tok)):
        (tmp_path / name).write_text(f"{tok}\n")
        os.chmod(tmp_path / name, 0o600)
    pin = f"/sys/fs/bpf/rfwd-mon-{os.getpid()}"
    table = tmp_path / "filtered.yaml"
    table.write_text(open(DEMO).read() + FILTERS)
    with netns.VethLab("rfwd-mon-xdp", [("xmo0", "xmo1")]):
        box = Box(tmp_path, "mon", regiond_args=(
            "--listen", f"127.0.0.1:{api_port}", "--token-file", str(tmp_path / "write.tok"),
            "--read-token-file", str(tmp_path / "read.tok"), "--xdp-iface", "xmo0", "--xdp-mode", "generic",
            "--bpf-pin-dir", pin))
        prom = None
        try:
            rc, _, err = box.ctl("apply", str(table))  # an XDP rule: per-rule series
            assert rc == 0, err
            # status carries the filter's summary (its rules are filter status's).
            f = box.status()["filters"]
            assert f["generation"] == 2 and f["interfaces"][0]["interface"] == "xmo0" and "rules" not in f
            assert set(f["counters"]) >= {"pass", "drop", "rate_limited", "default"}
            rc, out, _ = box.ctl("status")
            assert rc == 0 and re.search(r"^xdp filter   generation 2, program \d+ on xmo0 \(generic\)$", out, re.M), out
            prom = Prometheus(tmp_path, f"127.0.0.1:{api_port}", tmp_path / "read.tok")

            def target_up():
                t = prom.api("targets")["activeTargets"]
                return t and t[0]["health"] == "up" and t

            t = wait_for(target_up, timeout=60, what="Prometheus's scrape of regiond up")
            assert t[0]["labels"]["job"] == "regiond"
            # The targets page says "up" as the scrape ends, a moment before
            # its sample can be queried (seen under ASan load): wait for it.
            up = wait_for(lambda: prom.query('up{job="regiond"}'), timeout=30, what="the up sample")
            assert up[0]["value"][1] == "1"
            # A few scrapes, so that rates have two samples.
            wait_for(lambda: prom.query("count_over_time(regiond_generation[1m]) >= 4"), timeout=30,
                     what="four scrapes")

            # Every documented family is in Prometheus, and in the scrape.
            text = scrape(api_port, read_tok)
            fams = parse_scrape(text)
            stored = {r["metric"]["__name__"] for r in prom.query(
                'count by (__name__) ({__name__=~"regiond_.*|regionfwd_.*"})')}
            want = documented_families()
            assert len(want) > 40, want
            assert want <= set(fams), sorted(want - set(fams))
            assert want <= stored, sorted(want - stored)
            assert set(fams) <= want, f"undocumented in docs/api.md: {sorted(set(fams) - want)}"
            promtool_metrics(text)

            # The alerts and the dashboard name only what exists, and select
            # label values that exist.
            dash = json.load(open(DASHBOARD))
            exprs = [("dashboard: " + p["title"], tg["expr"]) for p in dash["panels"] for tg in p.get("targets", [])]
            exprs += [("dashboard: variable " + v["name"], v["definition"])
                      for v in dash["templating"]["list"] if v.get("definition")]
            rules_text = open(ALERTS).read()
            alert_exprs = [("alert " + m.group(1), m.group(2)) for m in re.finditer(
                r"- alert: (\w+)\n(?:\s+#.*\n)*\s+expr: (\|\n(?:\s{10}.*\n)+|.*\n)", rules_text)]
            assert len(alert_exprs) == rules_text.count("- alert:")
            assert len(exprs) > 20
            names = set(fams) | {"up"}
            for where, expr in exprs + alert_exprs:
                unknown = promql_names(expr) - names
                assert not unknown, f"{where}: {sorted(unknown)} not in the scrape"
                for metric, label, value in promql_selectors(expr):
                    if label == "instance":
                        continue
                    have = {s.get(label) for s in fams[metric]}
                    assert value in have, f"{where}: {metric}{{{label}=\"{value}\"}} not in the scrape ({sorted(have)})"
            # Each of the dashboard's queries runs and finds data.
            for where, expr in exprs:
                q = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
                if q.startswith("label_values("):
                    m = re.match(r"label_values\((\w+), (\w+)\)", q)
                    assert prom.api(f"label/{m.group(2)}/values", **{"match[]": m.group(1)}), where
                    continue
                assert prom.query(q), f"{where}: {q} returns nothing"
            # Prometheus evaluates every rule without error; on a healthy
            # box none but the slow informational ones could fire.
            wait_for(lambda: all(r.get("lastEvaluation", "").startswith("20")
                                 for g in prom.api("rules")["groups"] for r in g["rules"]),
                     timeout=30, what="every rule evaluated")
            rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
            assert len(rules) == len(alert_exprs)
            for r in rules:
                assert r["health"] == "ok" and not r.get("lastError"), r
            firing = {r["name"] for r in rules if r["state"] != "inactive"}
            assert not firing, firing
            p = subprocess.run([PROMTOOL, "check", "rules", ALERTS], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0 and f"SUCCESS: {len(rules)} rules found" in p.stdout, p.stdout + p.stderr

            # A link set down in the table shows in Prometheus.
            rc, _, err = box.ctl("link", "down", "to-br")
            assert rc == 0, err
            wait_for(lambda: prom.query('regionfwd_link_admin_state{link="to-br",state="down"} == 1'),
                     timeout=20, what="to-br down in Prometheus")

            # regionfwd down: regiond still exports all it knows itself.
            box.fwd.terminate()
            box.fwd.wait(30)
            text = scrape(api_port, read_tok)
            fams = parse_scrape(text)
            promtool_metrics(text)
            assert fams["regiond_dataplane_up"] == [{}] and "regiond_dataplane_up 0\n" in text
            own = {f for f in want if f.startswith("regiond_")}
            assert own <= set(fams), sorted(own - set(fams))
            assert not [f for f in fams if f.startswith("regionfwd_")]
            assert sum(len(v) for v in fams.values()) >= 20, text
            wait_for(lambda: prom.query("regiond_dataplane_up == 0"), timeout=20,
                     what="Prometheus sees regionfwd down")
        finally:
            if prom:
                prom.stop()
            box.stop()
            subprocess.run(["rm", "-rf", pin])
