"""regiond when the wall clock is stepped (an operator, NTP after a long
outage, a VM restored from a snapshot). A hostile probe found the main
loop paced by the wall clock: set back 30 s, it stopped asking regionfwd
for 30 s and status called a healthy regionfwd unreachable (503 on
/v1/health, which a load balancer acts on). The commit-confirm revert was
due by the wall clock too: a step forward reverted a change before its
time. Both now run on the monotonic clock.

The step is made by a small LD_PRELOAD library built here with the C
compiler the build uses: time(), gettimeofday() and clock_gettime() of
CLOCK_REALTIME (and its variants) read an offset from a file; the
monotonic clock is left alone, as a real step leaves it."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import etcdlab  # noqa: E402
from test_e2e import DEMO, REGIOND, REGIONCTL, SG_LOCAL, Box, demo_variant, wait_for  # noqa: E402

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long offset(void)
{
	const char *p = getenv("CLOCK_STEP_FILE");
	FILE *f = p ? fopen(p, "r") : NULL;
	long s = 0;

	if (f) {
		if (fscanf(f, "%ld", &s) != 1)
			s = 0;
		fclose(f);
	}
	return s;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	int rc;

	if (!real)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	rc = real(id, ts);
	if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		ts->tv_sec += offset();
	return rc;
}

time_t time(time_t *t)
{
	struct timespec ts;
	time_t now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = ts.tv_sec;
	if (t)
		*t = now;
	return now;
}

int gettimeofday(struct timeval *tv, void *tz)
{
	struct timespec ts;

	(void)tz;
	clock_gettime(CLOCK_REALTIME, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}
"""

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler for the clock shim")


def shim(tmp_path):
    """The LD_PRELOAD wrapper and the file that holds the step (seconds)."""
    src = tmp_path / "clockstep.c"
    src.write_text(SHIM)
    lib = tmp_path / "clockstep.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(src), "-ldl"], check=True)
    step = tmp_path / "step"
    step.write_text("0\n")
    # Under ASan the runtime must come first: the shim goes after it.
    pre = str(lib)
    if os.environ.get("SANITIZE", "none") not in ("", "none"):
        asan = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
        pre = asan + ":" + pre
    return ["env", f"LD_PRELOAD={pre}", f"CLOCK_STEP_FILE={step}"], step


@pytest.fixture
def stepped(tmp_path):
    wrapper, step = shim(tmp_path)
    b = Box(tmp_path, "clock", wrapper=wrapper)
    yield b, step
    b.stop()


def test_wall_clock_set_back_does_not_make_regionfwd_unreachable(stepped):
    b, step = stepped
    rc, out, err = b.ctl("status")
    assert rc == 0, (out, err)
    step.write_text("-60\n")
    # Past the 10 s after which an unanswering regionfwd is unreachable.
    time.sleep(13)
    rc, out, err = b.ctl("status")
    assert rc == 0 and "unreachable" not in out, (rc, out, err)
    rc, st, _ = b.ctl("status", json_out=True)
    assert st["dataplane"]["report_age_ms"] < 10000, st["dataplane"]


def test_wall_clock_set_forward_does_not_revert_an_unconfirmed_change(stepped, tmp_path):
    b, step = stepped
    rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL),
                         "--confirm-timeout", "600")
    assert rc == 0 and b.gen() == 2, (rc, out, err)
    step.write_text("3600\n")
    # A few of the confirm timer's ticks (200 ms each) with the wall clock
    # an hour past the deadline: the change stays until its 600 s run out.
    time.sleep(3)
    assert b.gen() == 2, b.ctl("history")
    # What is left is said on regiond's monotonic clock, not a wall clock's
    # difference (an hour past the deadline it read -3000 s).
    rc, st, _ = b.ctl("status", json_out=True)
    assert 500 < st["confirm"]["reverts_in_s"] <= 600, st["confirm"]
    rc, out, _ = b.ctl("status")
    left = int(out.split(" reverts to 1 in ")[1].split()[0])
    assert 500 < left <= 600, out
    rc, out, err = b.ctl("confirm")
    assert rc == 0 and b.gen() == 2, (rc, out, err)


def test_a_deadline_read_at_a_restart_follows_the_wall_clock_set_right(stepped, tmp_path):
    """A commit-confirm deadline read from disk at a restart has no other
    reference than the wall clock. Fixed then, a clock two hours slow at
    the restart (a box up before NTP) kept that error after it was set
    right: the revert two hours late, a confirm after confirm_by taken (a
    hostile probe). It follows the clock now: due once the clock, set
    right, passes confirm_by."""
    b, step = stepped
    rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL),
                         "--confirm-timeout", "8")
    assert rc == 0 and b.gen() == 2, (rc, out, err)
    step.write_text("-7200\n")
    b.rd.kill()
    b.rd.wait(30)
    b.start_regiond()
    rc, st, _ = b.ctl("status", json_out=True)
    assert st["confirm"]["reverts_in_s"] > 7000, st["confirm"]  # by the slow clock
    # the coming revert is said at start (a walkthrough: nothing was)
    assert re.search(r"generation 2 awaits confirmation, as when regiond stopped: it reverts to "
                     r"generation 1 in \d+ s unless confirmed", open(b.tmp / "regiond.log").read())
    step.write_text("0\n")  # set right
    wait_for(lambda: b.gen() == 3, timeout=30, what="the revert, once the clock passes confirm_by")
    rc, h, _ = b.ctl("history", json_out=True)
    assert h["history"][0]["comment"].startswith("automatic revert: generation 2"), h["history"][0]
    rc, _, err = b.ctl("confirm", "2")
    assert rc == 1 and "nothing_to_confirm" in err, err


@pytest.mark.skipif(not etcdlab.available(), reason="needs etcd and etcdctl (etcd-server, etcd-client)")
def test_a_stepped_clock_neither_ends_a_bake_nor_dilutes_a_rate(tmp_path):
    """A fleet regiond (validate-only: its own node and the rollout's
    leader) whose clock is set an hour forward while its canary bakes: the
    leader ended a 300 s bake at once, and the node's report time (over
    which drop rates are taken) jumped the hour, diluting a canary's rate
    to nothing (a hostile probe). Both now run on a step-free clock."""
    wrapper, step = shim(tmp_path)
    fac = "clk"
    with etcdlab.Cluster(tmp_path / "etcd", members=1, name="clockstep") as c:
        h0 = etcdlab.publish_table(c, fac, open(DEMO, "rb").read())
        etcdlab.set_desired(c, fac, h0)
        api = str(tmp_path / "api.sock")
        rd = subprocess.Popen(wrapper + [REGIOND, "--fleet-validate-only", "--api-socket", api,
                                         "--state-dir", str(tmp_path / "st"), "--fleet-endpoints", c.endpoints(),
                                         "--fleet-node", "n0", "--fleet-facility", fac, "--fleet-lease", "3",
                                         "--fleet-report-ms", "300", "--fleet-timeout-ms", "2000"],
                              stdout=open(tmp_path / "rd.log", "w"), stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: etcdlab.node_reports(c, fac).get("n0", {}).get("in_sync") is True, timeout=60,
                     what="the node validated its table")
            doc = tmp_path / "next.yaml"
            doc.write_text(open(DEMO).read().replace('"ingress table, Mumbai facility (demo)"',
                                                     '"ingress table, clock step"'))
            p = subprocess.run([REGIONCTL, "-s", api, "fleet", "apply", str(doc), "--canary", "1",
                                "--bake", "300", "--sync-timeout", "30"], capture_output=True, text=True,
                               timeout=120)
            assert p.returncode == 0, (p.stdout, p.stderr)
            active = etcdlab.fac_prefix(fac) + "rollout/active"
            wait_for(lambda: c.get_json(active)["state"] == "baking", timeout=60, what="the canary bakes")
            u0 = etcdlab.node_reports(c, fac)["n0"]["updated_at"]
            step.write_text("3600\n")
            # Long enough for the leader's steps and several reports.
            time.sleep(4)
            rec = c.get_json(active)
            assert rec is not None and rec["state"] == "baking" and rec["wave"] == 0, rec
            u1 = etcdlab.node_reports(c, fac)["n0"]["updated_at"]
            assert 0 < u1 - u0 < 60000, (u0, u1)
            p = subprocess.run([REGIONCTL, "-s", api, "fleet", "abort"], capture_output=True, text=True,
                               timeout=60)
            assert p.returncode == 0, p.stderr
        finally:
            rd.terminate()
            assert rd.wait(30) == 0, open(tmp_path / "rd.log").read()[-2000:]


@pytest.mark.skipif(not etcdlab.available(), reason="needs etcd and etcdctl (etcd-server, etcd-client)")
def test_a_leader_whose_clock_is_ahead_does_not_cut_a_bake_short(tmp_path):
    """The record's phase times are its writer's clock. A regiond whose
    clock was 7 minutes ahead took the lead mid-bake and read the 300 s
    bake another leader had begun seconds before as long over: it went on
    to the next wave at once (a hostile probe; a minute ahead, a syncing
    wave's sync_timeout gate would abort it as soon). A record another
    wrote is moved to the reader's clock, what had passed of its phase
    kept."""
    wrapper, step = shim(tmp_path)
    step.write_text("420\n")  # 7 minutes ahead: within the skew a record may have
    fac = "skew"
    with etcdlab.Cluster(tmp_path / "etcd", members=1, name="clockskew") as c:
        h0 = etcdlab.publish_table(c, fac, open(DEMO, "rb").read())
        etcdlab.set_desired(c, fac, h0)
        procs = {}

        def start(name, label, pre=()):
            d = tmp_path / name
            d.mkdir()
            procs[name] = subprocess.Popen(
                list(pre) + [REGIOND, "--fleet-validate-only", "--api-socket", str(d / "api.sock"),
                             "--state-dir", str(d / "st"), "--fleet-endpoints", c.endpoints(),
                             "--fleet-node", name, "--fleet-facility", fac, "--fleet-lease", "3",
                             "--fleet-report-ms", "300", "--fleet-timeout-ms", "2000",
                             "--fleet-label", "role=" + label],
                stdout=open(d / "rd.log", "w"), stderr=subprocess.STDOUT)
            wait_for(lambda: etcdlab.node_reports(c, fac).get(name, {}).get("in_sync") is True, timeout=60,
                     what=f"{name} validated its table")

        leader = etcdlab.fac_prefix(fac) + "rollout/leader"
        active = etcdlab.fac_prefix(fac) + "rollout/active"
        try:
            start("n0", "rest")  # the leader, on the right clock
            wait_for(lambda: (c.get_json(leader) or {}).get("node") == "n0", what="n0 leads")
            start("n1", "canary", wrapper)  # both others ahead: either may lead next
            start("n2", "rest", wrapper)
            doc = tmp_path / "next.yaml"
            doc.write_text(open(DEMO).read().replace('"ingress table, Mumbai facility (demo)"',
                                                     '"ingress table, clock skew"'))
            api = str(tmp_path / "n0" / "api.sock")
            p = subprocess.run([REGIONCTL, "-s", api, "fleet", "apply", str(doc), "--canary-label", "role=canary",
                                "--bake", "300", "--wave", "2", "--sync-timeout", "60"],
                               capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, (p.stdout, p.stderr)
            wait_for(lambda: c.get_json(active)["state"] == "baking", timeout=60, what="the canary bakes")
            procs["n0"].terminate()
            procs["n0"].wait(30)
            wait_for(lambda: (c.get_json(leader) or {}).get("node") in ("n1", "n2"), timeout=30,
                     what="another leads")
            api2 = str(tmp_path / c.get_json(leader)["node"] / "api.sock")

            def steps():
                r = subprocess.run([REGIONCTL, "-s", api2, "-j", "fleet", "rollout"], capture_output=True,
                                   text=True, timeout=60)
                return json.loads(r.stdout)["driver"]["steps"] if r.returncode == 0 else 0

            wait_for(lambda: steps() >= 5, timeout=30, what="the new leader stepped the rollout")
            rec = c.get_json(active)
            assert rec is not None and rec["state"] == "baking" and rec["wave"] == 0, rec
            p = subprocess.run([REGIONCTL, "-s", api2, "fleet", "abort"], capture_output=True, text=True,
                               timeout=60)
            assert p.returncode == 0, p.stderr
        finally:
            for name, rd in procs.items():
                if rd.poll() is None:
                    rd.terminate()
                    rd.wait(30)
