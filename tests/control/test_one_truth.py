"""One source of truth (issue 16, finding 7): once regiond pushed the
running table, SIGHUP does not make regionfwd reload its file (which
regiond would overwrite a second later: two truths flapping), it is
refused and said; and a regiond started on an empty state directory does
not overwrite a table another regiond pushed with its --table default, it
says so until an operator applies a table."""
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from test_e2e import SG_LOCAL, Box, demo_variant, wait_for  # noqa: E402
from test_state import dp_generation  # noqa: E402


def test_sighup_on_a_managed_regionfwd_is_refused(tmp_path):
    b = Box(tmp_path, "sighup")
    try:
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))
        assert rc == 0, err
        before = dp_generation(b)
        assert before["id"] == 2
        os.kill(b.fwd.pid, signal.SIGHUP)
        wait_for(lambda: "SIGHUP refused" in open(tmp_path / "fwd.log").read(), timeout=20,
                 what="regionfwd refuses the reload")
        log = open(tmp_path / "fwd.log").read()
        assert "pushed by regiond" in log and "regionctl apply" in log, log
        assert dp_generation(b) == before  # still regiond's generation, nothing reloaded
        s = b.status()
        assert s["generation"]["id"] == 2 and s["dataplane"]["in_sync"], s
        assert "generation 3" not in log  # no file generation appeared in between
    finally:
        b.stop()


def test_sighup_is_refused_even_when_regiond_never_had_to_push(tmp_path):
    """regionfwd's --table has regiond's content, so no table ever had to be
    pushed: regiond still claims it (one no-op push) and SIGHUP is refused."""
    b = Box(tmp_path, "sighup-same")
    try:
        wait_for(lambda: b.status()["dataplane"]["status"]["managed_by"] == "regiond", timeout=20,
                 what="regiond claims the running table")
        before = dp_generation(b)
        assert before["id"] == 1
        os.kill(b.fwd.pid, signal.SIGHUP)
        wait_for(lambda: "SIGHUP refused" in open(tmp_path / "fwd.log").read(), timeout=20,
                 what="regionfwd refuses the reload")
        assert dp_generation(b) == before
    finally:
        b.stop()


def test_an_empty_regiond_does_not_overwrite_a_pushed_table(tmp_path):
    b = Box(tmp_path, "adopt")
    try:
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))
        assert rc == 0, err
        running = dp_generation(b)
        b.rd.terminate()
        b.rd.wait(30)
        shutil.rmtree(b.state)  # a new regiond: empty state, seeded from --table
        b.start_regiond()
        wait_for(lambda: b.status()["alarm"], timeout=20, what="the disagreement reported")
        s = b.status()
        assert "not overwritten" in s["alarm"] and f"generation {running['id']}" in s["alarm"], s
        assert not s["dataplane"]["in_sync"] and s["generation"]["id"] == 1, s
        rc, out, _ = b.ctl("status")
        assert rc == 1 and "ALARM" in out, out  # degraded, and it says why
        time.sleep(2)  # the main loop ran again: still not overwritten
        assert dp_generation(b) == running
        log = open(tmp_path / "regiond.log").read()
        assert log.count("not overwritten") == 1, log  # one line, not one a second
        # An operator decides: the applied table runs and the alarm clears.
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "v.yaml", "ingress table", "ingress table v"))
        assert rc == 0 and "generation 2" in out, err
        s = b.status()
        assert s["alarm"] is None and s["dataplane"]["in_sync"], s
        assert dp_generation(b)["hash"] == s["generation"]["hash"]
    finally:
        b.stop()
