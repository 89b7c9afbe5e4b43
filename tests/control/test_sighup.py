"""One source of truth (issue 16, finding 7, SIGHUP): once regiond pushed
the running table, SIGHUP does not make regionfwd reload its file (which
regiond would overwrite a second later: two truths flapping); it is
refused and said in regionfwd's log."""
import os
import signal
import sys

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
