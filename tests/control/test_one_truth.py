"""One source of truth (issue 16, finding 7): once regiond pushed the
running table, SIGHUP does not make regionfwd reload its file (which
regiond would overwrite a second later: two truths flapping), it is
refused and said; a regiond whose state directory is empty (or seeded
from --table at this start) or older than what regionfwd runs adopts
that table (records it, with its id) instead of overwriting it, and says
so; when it cannot adopt it, it does not overwrite it either: one alarm
until it can or an operator applies a table. And regionfwd restarted
resumes the generation regiond pushed (saved by regionfwd, hash-checked),
not its stale --table file."""
import json
import os
import shutil
import subprocess
import signal
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from test_e2e import DEMO, REGIOND, REGIONCTL, SG_LOCAL, Box, demo_variant, wait_for  # noqa: E402
from dprun import eal_args, regionfwd_bin  # noqa: E402
from ctlclient import Ctl  # noqa: E402
from httpfake import api_request  # noqa: E402
from preload import preload_shim  # noqa: E402
from test_state import box_on_tmpfs, dp_generation  # noqa: E402


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


def history(b):
    rc, h, err = b.ctl("history", json_out=True)
    assert rc == 0, err
    return h["history"]


def test_an_empty_regiond_adopts_a_pushed_table(tmp_path):
    b = Box(tmp_path, "adopt")
    try:
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))
        assert rc == 0, err
        running = dp_generation(b)
        assert running["id"] == 2
        b.rd.terminate()
        b.rd.wait(30)
        shutil.rmtree(b.state)  # a new regiond: empty state, seeded from --table
        b.start_regiond()
        s = wait_for(lambda: (lambda st: st if st["dataplane"]["in_sync"] else None)(b.status()),
                     timeout=20, what="the running table adopted")
        # regiond took regionfwd's table as its own, with its id: nothing
        # was pushed over it, the box's generation id did not go back.
        assert s["generation"]["id"] == running["id"] and s["generation"]["hash"] == running["hash"], s
        assert s["alarm"] is None, s
        assert dp_generation(b) == running
        top = history(b)[0]
        assert top["id"] == running["id"] and "adopted" in top["comment"], top
        assert top["by"] == "regiond (adopted from regionfwd)", top
        # The --table seed of the empty state never ran: it is not in the
        # history, so a plain rollback does not run it (it once did, a
        # table this box never forwarded on, its batches and links lost).
        assert [g["id"] for g in history(b)] == [running["id"]], history(b)
        rc, out, err = b.ctl("rollback")
        assert rc == 1 and "there is no previous generation" in err, (out, err)
        assert "the seed, which never ran, is dropped from the history" in open(tmp_path / "regiond.log").read()
        rc, out, _ = b.ctl("status")
        assert rc == 0, out
        rc, doc, _ = b.ctl("show", "table", json_out=True)
        e = b.http("POST", "/v1/explain", {"src": "8.130.0.1", "dst": "1.1.1.1", "proto": "udp", "dport": 443})[1]
        assert e["link"] == "local", e  # the adopted table is the one regiond explains
        log = open(tmp_path / "regiond.log").read()
        assert log.count("adopted what regionfwd runs") == 1, log
        time.sleep(2)  # the main loop ran again: adopted once, nothing pushed
        assert dp_generation(b) == running
        # The next change takes the next id after the adopted one.
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "v.yaml", "ingress table", "ingress table v"))
        assert rc == 0 and f"generation {running['id'] + 1}" in out, (out, err)
        assert dp_generation(b)["id"] == running["id"] + 1
    finally:
        b.stop()


def test_an_empty_regiond_adopts_deltas_on_regionfwds_own_table(tmp_path):
    """regionfwd starts on its --table; regiond, seeded from the same file,
    takes it over with a no-op push and then sends only prefix batches (the
    BGP feed's ordinary day). Those generations keep the file as their
    source, and a regiond restarted on an empty (or restored) state took
    them for regionfwd's own start-up table: it pushed its seed over them,
    every acknowledged batch gone, healthy and without a word. It adopts
    them, as it adopts any table a regiond pushed."""
    b = Box(tmp_path, "adopt-deltas")
    try:
        wait_for(lambda: b.status()["dataplane"]["status"]["managed_by"] == "regiond", timeout=20,
                 what="regiond takes the running table over")
        for net in ("10.201.0.0/16", "10.202.0.0/16"):
            code, r = b.http("POST", "/v1/prefixes", {"changes": [{"region": "india", "add": [net]}]})
            assert code == 200 and not r["noop"], r
        running = dp_generation(b)
        assert running["id"] == 3 and running["source"] != "regiond", running  # the file's name
        b.rd.terminate()
        b.rd.wait(30)
        shutil.rmtree(b.state)  # the documented recovery: a new, empty state directory
        b.start_regiond()
        s = wait_for(lambda: (lambda st: st if st["dataplane"]["in_sync"] else None)(b.status()),
                     timeout=20, what="regiond in sync")
        assert dp_generation(b)["hash"] == running["hash"], dp_generation(b)
        assert s["generation"]["hash"] == running["hash"] and s["alarm"] is None, s
        e = b.http("POST", "/v1/explain", {"src": "10.202.0.1", "dst": "1.1.1.1", "proto": "udp", "dport": 53})[1]
        assert e["region"] == "india", e
    finally:
        b.stop()


def test_a_no_op_change_makes_the_seed_the_operators_table(tmp_path):
    """A regiond seeded from its --table at this start takes a table another
    regiond pushed as its own when it first reaches regionfwd (the seed was
    nobody's choice). A change the operator makes before then counts as
    choosing the seed, also one that changes nothing (a PATCH to what the
    table says): regiond then pushes its table and adopts nothing. The
    no-op once answered changed:false without marking that choice."""
    b = Box(tmp_path, "noop-seed")
    rd = None
    try:
        wait_for(lambda: b.status()["dataplane"]["status"]["managed_by"] == "regiond", timeout=20,
                 what="regiond claims the running table")
        other = dp_generation(b)
        assert other["id"] == 1  # the other regiond's generation 1: the demo table
        b.rd.terminate()
        b.rd.wait(30)
        b.fwd.terminate()
        b.fwd.wait(30)
        shutil.rmtree(b.state)
        # A regiond with another --table, seeded while regionfwd is away.
        seed = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
        rd_log = open(tmp_path / "regiond2.log", "a+")
        rd = subprocess.Popen([REGIOND, "--dataplane", b.fwd_sock, "--api-socket", b.api, "--state-dir",
                               b.state, "--table", seed], stdout=rd_log, stderr=subprocess.STDOUT)
        wait_for(lambda: isinstance(b.ctl("status", json_out=True)[1], dict), timeout=30, what="regiond up")
        code, r = b.http("PATCH", "/v1/table", {"expected_generation": 1, "changes": [
            {"op": "set_link_state", "link": "to-br", "state": "up"}]})
        assert code == 200 and r["changed"] is False and r["generation"]["id"] == 1, r
        mine = r["generation"]["hash"]
        assert mine != other["hash"]
        b.start_fwd()  # resumes the other regiond's push, generation 1
        s = wait_for(lambda: (lambda st: st if st["dataplane"]["in_sync"] else None)(b.status()),
                     timeout=30, what="regionfwd runs regiond's table")
        assert s["generation"]["id"] == 1 and s["generation"]["hash"] == mine, s
        assert dp_generation(b)["hash"] == mine
        rd_log.flush()
        assert "adopted what regionfwd runs" not in open(tmp_path / "regiond2.log").read()
        e = b.http("POST", "/v1/explain", {"src": "8.130.0.1", "dst": "1.1.1.1", "proto": "udp", "dport": 443})[1]
        assert e["link"] == "local", e  # the seed's policy, not the other table's
    finally:
        if rd is not None and rd.poll() is None:
            rd.terminate()
            rd.wait(30)
        b.stop()


@pytest.mark.parametrize("pre_upgrade", [False, True], ids=["backup", "pre-upgrade"])
def test_an_older_state_adopts_what_regionfwd_runs(tmp_path, pre_upgrade):
    """A state directory restored from a backup (older than what regionfwd
    runs) does not take the box back: the newer running table is adopted.
    Also a backup from before state_id (its history without one): its new
    identity is not the one regionfwd knows, so tables are judged by ids
    alone until it is in step (it once held back, taking its own former
    push for another regiond's)."""
    b = Box(tmp_path, "older")
    try:
        assert b.ctl("apply", demo_variant(tmp_path, "v1.yaml", "ingress table", "ingress table v1"))[0] == 0
        b.rd.terminate()
        b.rd.wait(30)
        backup = str(tmp_path / "backup")
        shutil.copytree(b.state, backup)  # at generation 2
        b.start_regiond()
        assert b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))[0] == 0
        running = dp_generation(b)
        assert running["id"] == 3
        b.rd.terminate()
        b.rd.wait(30)
        shutil.rmtree(b.state)
        shutil.copytree(backup, b.state)  # the backup comes back: generation 2
        hist = os.path.join(b.state, "history.json")
        if pre_upgrade:
            h = json.load(open(hist))
            del h["state_id"], h["ran"]
            json.dump(h, open(hist, "w"))
        b.start_regiond()
        s = wait_for(lambda: (lambda st: st if st["dataplane"]["in_sync"] else None)(b.status()),
                     timeout=20, what="the newer running table adopted")
        assert s["generation"]["id"] == 3 and s["generation"]["hash"] == running["hash"], s
        assert s["alarm"] is None, s
        assert dp_generation(b) == running
        assert [g["id"] for g in history(b)][:2] == [3, 2]
        if pre_upgrade:
            # regionfwd names the box's regiond of before (its identity):
            # claimed with one push, then the new identity is in step.
            wait_for(lambda: "state_id_new" not in json.load(open(hist)), timeout=10,
                     what="state_id_new cleared")
            assert json.load(open(hist))["state_id"] == s["state_id"]
        assert fwd_status(b)["controller"] == s["state_id"], fwd_status(b)
        # What it adopted runs: written down as seen running, so that a
        # restart still knows another regiond's table in its place replaced it.
        wait_for(lambda: json.load(open(hist)).get("ran") == running["hash"], timeout=10,
                 what="the adopted generation written down as seen running")
        # And it stays its own: the identity cleared while regionfwd named
        # the former one held this regiond back from its own table a second
        # later.
        time.sleep(2)
        s = b.status()
        assert s["alarm"] is None and s["dataplane"]["in_sync"], s
        assert dp_generation(b) == running
    finally:
        b.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_a_table_that_cannot_be_adopted_is_not_overwritten(tmp_path):
    """The state directory is older and read-only: the running table cannot
    be recorded, so regiond does not take it, and does not push its own
    over it either: one alarm, status degraded, until the disk takes it."""
    with box_on_tmpfs(tmp_path, "noadopt", "4m") as (b, state):
        b.rd.terminate()
        b.rd.wait(30)
        backup = str(tmp_path / "backup")
        shutil.copytree(b.state, backup)  # generation 1
        b.start_regiond()
        assert b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))[0] == 0
        running = dp_generation(b)
        b.rd.terminate()
        b.rd.wait(30)
        for f in os.listdir(state):
            os.unlink(state / f)
        for f in os.listdir(backup):
            shutil.copy(os.path.join(backup, f), state / f)
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        b.start_regiond()
        wait_for(lambda: b.status()["alarm"], timeout=20, what="the refusal reported")
        s = b.status()
        assert "cannot adopt" in s["alarm"] and "not overwritten" in s["alarm"], s
        assert s["generation"]["id"] == 1 and not s["dataplane"]["in_sync"], s
        rc, out, _ = b.ctl("status")
        assert rc == 1 and "ALARM" in out and "health       degraded: regionfwd runs" in out, out
        code, h = b.http("GET", "/v1/health")
        assert code == 503 and h["state"] == "degraded" and "cannot adopt" in h["reason"], (code, h)
        time.sleep(3)
        assert dp_generation(b) == running  # not overwritten
        log = open(tmp_path / "regiond.log").read()
        assert log.count("cannot adopt") == 1, log  # one line, not one per retry
        subprocess.run(["mount", "-o", "remount,rw", str(state)], check=True)
        s = wait_for(lambda: (lambda st: st if st["dataplane"]["in_sync"] else None)(b.status()),
                     timeout=20, what="adopted once the disk takes it")
        assert s["generation"]["hash"] == running["hash"] and s["alarm"] is None, s
        assert dp_generation(b) == running


def fwd_log(b):
    b.fwd_log.flush()
    return open(b.tmp / "fwd.log").read()


def test_regionfwd_restart_resumes_the_pushed_generation(tmp_path):
    """regionfwd saves what regiond pushed and starts on it again, hash-checked,
    instead of its --table file: no packet is forwarded on a stale table."""
    b = Box(tmp_path, "resume")
    try:
        assert b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))[0] == 0
        running = dp_generation(b)
        saved = tmp_path / "fwd.sock.pushed"  # the control socket's path + .pushed
        assert saved.exists()
        b.rd.terminate()  # no regiond to re-push: what runs is regionfwd's own choice
        b.rd.wait(30)
        b.fwd.terminate()
        b.fwd.wait(30)
        b.start_fwd()  # --table is the demo table (Singapore goes to-sg)
        g = dp_generation(b)
        assert g == {**running, "created_unix_ns": g["created_unix_ns"]}, (g, running)
        assert "starting on generation 2, last pushed by regiond" in fwd_log(b)
        c = Ctl(b.fwd_sock)
        try:
            assert c.call("status")["managed_by"] == "regiond"
            e = c.call("explain", src="8.130.0.1", dst="1.1.1.1", proto=17, dport=443)
        finally:
            c.close()
        assert e["link"] == "local", e
        # Still managed: SIGHUP stays refused.
        b.fwd.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP refused" in fwd_log(b), what="SIGHUP refused")

        # A torn or edited save is refused by its hash, named, and not run.
        b.fwd.terminate()
        b.fwd.wait(30)
        raw = saved.read_bytes()
        saved.write_bytes(raw.replace(b"local", b"to-sg", 1))
        b.start_fwd()
        assert dp_generation(b)["source"].endswith("demo-table.yaml")
        log = fwd_log(b)
        assert "saved pushed table refused" in log and "does not match its recorded hash" in log, log
        # --start-on table: the file, and the save is removed (a later
        # restart must not go back to an older pushed table).
        b.fwd.terminate()
        b.fwd.wait(30)
        saved.write_bytes(raw)
        b.start_fwd(extra=("--start-on", "table"))
        assert dp_generation(b)["source"].endswith("demo-table.yaml")
        assert not saved.exists()
    finally:
        b.stop()


def test_a_regiond_without_any_table_adopts_the_file_table(tmp_path):
    """No state and no --table: regiond takes what regionfwd runs (its own
    --table file) as generation 1 rather than having nothing to serve."""
    b = Box(tmp_path, "notable")
    try:
        b.rd.terminate()
        b.rd.wait(30)
        shutil.rmtree(b.state)
        running = dp_generation(b)
        b.rd = subprocess.Popen([REGIOND, "--dataplane", b.fwd_sock, "--api-socket", b.api,
                                 "--state-dir", b.state], stdout=b.rd_log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(b.api), what="regiond's API")
        s = wait_for(lambda: (lambda st: st if st["dataplane"]["in_sync"] else None)(b.status()),
                     timeout=20, what="the file table adopted")
        assert s["generation"]["hash"] == running["hash"] and s["generation"]["id"] == running["id"], s
        # ... and claimed: regionfwd now refuses SIGHUP reloads of its file.
        c = Ctl(b.fwd_sock)
        try:
            wait_for(lambda: c.call("status")["managed_by"] == "regiond", what="claimed")
        finally:
            c.close()
    finally:
        b.stop()


def test_a_push_answered_as_refused_is_not_adopted_after_a_restart(tmp_path):
    """regionfwd saved a push and died before answering it: regiond told its
    client "nothing changed". regionfwd restarts on its save, a generation a
    regiond pushed with an id above regiond's current one; regiond once took
    that for a newer state's table and adopted it, so the refused change ran
    and was recorded. The id is one regiond spent itself (below its next_id):
    it pushes its current generation over it instead, and says why."""
    b = Box(tmp_path, "spent", regiond_args=("--dataplane-timeout", "2000"))
    try:
        first = dp_generation(b)
        new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
        os.kill(b.fwd.pid, signal.SIGSTOP)  # the push gets no answer ...
        try:
            rc, out, err = b.ctl("apply", new)
            assert rc == 3 and "nothing changed" in err, (rc, out, err)
            b.rd.terminate()
            b.rd.wait(30)
        finally:
            b.fwd.kill()  # ... and regionfwd dies
            b.fwd.wait(30)
            os.unlink(b.fwd_sock)  # its socket stays behind: wait for the new one
        # What a regionfwd killed after saving that push and before its
        # answer starts on: generation 2 (regiond's spent id), saved as
        # pushed by regiond (made here by a push on its socket, as regiond
        # sent it).
        b.start_fwd()
        c = Ctl(b.fwd_sock)
        try:
            assert c.call("push", document=open(new).read(), generation=2, name="regiond")["ok"]
        finally:
            c.close()
        b.fwd.kill()
        b.fwd.wait(30)
        os.unlink(b.fwd_sock)
        b.start_fwd()
        assert dp_generation(b)["id"] == 2 and "starting on generation 2" in fwd_log(b)
        b.start_regiond(("--dataplane-timeout", "2000"))
        wait_for(lambda: dp_generation(b)["hash"] == first["hash"], timeout=20,
                 what="regiond's current generation pushed back")
        s = b.status()
        assert s["generation"]["id"] == 1 and s["dataplane"]["in_sync"], s
        assert [g["id"] for g in b.ctl("history", json_out=True)[1]["history"]] == [1]
        log = open(tmp_path / "regiond.log").read()
        assert "adopted" not in log, log
        assert "a change this regiond answered was not made" in log, log
        rc, out, err = b.ctl("apply", new)  # the change is made when asked again
        assert rc == 0 and "generation 3" in out, (rc, out, err)
    finally:
        b.stop()


def test_a_pushed_table_path_naming_another_file_is_left_alone(tmp_path):
    """pushed_table set to a file regionfwd did not write (a typo for the
    --table path): every push replaced it with a save, and --start-on table
    deleted it, here the very table regionfwd was to start on. regionfwd now
    leaves such a file alone: it starts on --table and forwards (a disk that
    holds something unexpected must not stop the fast path), says why at
    start, and each push runs unsaved with save_error in its status (which
    regiond raises as an alarm) while the file stays."""
    b = Box(tmp_path, "foreign")
    try:
        b.rd.terminate()
        b.rd.wait(30)
        b.fwd.terminate()
        b.fwd.wait(30)
        table = tmp_path / "table.yaml"
        shutil.copy(DEMO, table)
        node = open(b.node).read()
        with open(b.node, "w") as f:
            f.write(node + f"pushed_table: {table}\n")
        variant = open(demo_variant(tmp_path, "v.yaml", *SG_LOCAL)).read()
        for extra in ((), ("--start-on", "table")):
            log = tmp_path / f"fwd-{len(extra)}.log"
            with open(log, "w") as lf:
                p = subprocess.Popen([regionfwd_bin()] + eal_args("e2e-foreign") + [
                    "--", "--node", b.node, "--table", str(table), *extra], stdout=lf, stderr=subprocess.STDOUT)
            try:
                ctl = wait_for(lambda: try_ctl(b.fwd_sock), timeout=60, what="regionfwd up")
                out = log.read_text()
                assert str(table) in out and "not a table regionfwd saved" in out, out
                assert "starting on --table" in out, out
                st = ctl.call("status")
                assert st["ok"] and st["generation"]["source"] != "regiond", st
                r = ctl.call("push", document=variant, generation=7, name="regiond")
                assert r["ok"], r
                st = ctl.call("status")
                assert st["generation"]["id"] == 7, st  # it runs
                assert "not a table regionfwd saved" in st["save_error"], st
                # Whole (it was cut at 150 bytes, mid-word), with the path,
                # and what a restart would run (regiond's alarm said "an
                # older table" for want of it).
                assert st["save_error"].endswith("give pushed_table a path of its own); a restart of "
                                                 "regionfwd would start on --table"), st["save_error"]
                assert f"cannot save generation 7 to {table}:" in st["save_error"], st["save_error"]
                ctl.close()
                assert table.read_text() == open(DEMO).read(), extra  # neither replaced nor removed
            finally:
                p.terminate()
                p.wait(30)
    finally:
        b.stop()


def try_ctl(path):
    try:
        return Ctl(path, timeout=30)
    except OSError:
        return None


def status(api):
    """regiond's status model on API socket @api (None: no JSON answer)."""
    p = subprocess.run([REGIONCTL, "-s", api, "-j", "status"], capture_output=True, text=True, timeout=60)
    return json.loads(p.stdout) if p.stdout.startswith("{") else None


def held_back(api):
    """regiond's status on @api once it holds back from another regiond's table."""
    return wait_for(lambda: (lambda st: st if st and "another regiond" in (st["alarm"] or "") else None)(
        status(api)), timeout=20, what=f"{api} holding back")


def second_regiond(b, tmp_path, api, *extra):
    """A regiond started by hand beside box @b's, on a state directory and
    API socket (@api) of its own and the same regionfwd."""
    return subprocess.Popen([REGIOND, "--dataplane", b.fwd_sock, "--api-socket", api, "--state-dir",
                             str(tmp_path / "state2"), *extra],
                            stdout=open(tmp_path / "regiond2.log", "a"), stderr=subprocess.STDOUT)


def test_two_regionds_on_one_regionfwd_do_not_take_it_in_turns(tmp_path):
    """Two regionds pointed at one regionfwd, each with a generation 2 of its
    own: each found regionfwd running the other's table under its own id
    and pushed its table back, once a second each, for ever; regionfwd
    flipped between the two tables while both said in sync and healthy.
    The one overwritten says so (alarm, not in sync) and holds back; a
    change applied there takes regionfwd over, and the other then holds
    back in turn (it once adopted it: two regionds both saying healthy);
    its current table applied again takes regionfwd back."""
    import threading

    b = Box(tmp_path, "two-rd")
    api2, rd2 = str(tmp_path / "api2.sock"), None
    try:
        rd2 = second_regiond(b, tmp_path, api2, "--table", DEMO)

        wait_for(lambda: (status(api2) or {}).get("dataplane", {}).get("in_sync"), timeout=30, what="second regiond up")
        # Both write generation 2 while regionfwd is stopped: neither can
        # adopt the other's before its own change is made.
        answers = {}

        def put(api, name, old, new):
            p = subprocess.run([REGIONCTL, "-s", api, "apply", demo_variant(tmp_path, name, old, new)],
                               capture_output=True, text=True, timeout=120)
            answers[api] = (p.returncode, p.stdout + p.stderr)

        os.kill(b.fwd.pid, signal.SIGSTOP)
        try:
            ts = [threading.Thread(target=put, args=(b.api, "a.yaml", *SG_LOCAL)),
                  threading.Thread(target=put, args=(api2, "b.yaml", "ingress table", "ingress table b"))]
            for t in ts:
                t.start()
            # Each regiond writes its generation 2 ahead before it pushes:
            # both are then committed to their own. A fixed second was once
            # too short for the sanitizer build under load: one regiond's
            # push had gone through, and the other adopted it before its
            # own apply came (stale_generation).
            wait_for(lambda: all(os.path.exists(os.path.join(d, "gen-2.doc"))
                                 for d in (b.state, str(tmp_path / "state2"))),
                     timeout=60, what="both applies written ahead")
        finally:
            os.kill(b.fwd.pid, signal.SIGCONT)
        for t in ts:
            t.join()
        assert all(rc == 0 and "generation 2" in out for rc, out in answers.values()), answers
        time.sleep(3)  # each main loop has looked at regionfwd
        seen = set()
        for _ in range(40):
            seen.add(dp_generation(b)["hash"])
            time.sleep(0.1)
        assert len(seen) == 1, f"regionfwd flips between {seen}"
        running = seen.pop()
        views = {api: status(api) for api in (b.api, api2)}
        winner = [api for api, s in views.items() if s["generation"]["hash"] == running]
        loser = [api for api in views if api not in winner]
        assert len(winner) == 1 and len(loser) == 1, views
        w, lo = views[winner[0]], views[loser[0]]
        assert w["dataplane"]["in_sync"] and w["alarm"] is None, w
        assert not lo["dataplane"]["in_sync"] and "another regiond" in lo["alarm"], lo
        assert lo["health"]["state"] == "degraded", lo
        # The operator takes regionfwd over from the one that held back.
        p = subprocess.run([REGIONCTL, "-s", loser[0], "apply", demo_variant(tmp_path, "c.yaml", "ingress table",
                                                                             "ingress table c")],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and "generation 3" in p.stdout, (p.stdout, p.stderr)
        assert "regionfwd taken back: it ran a table this regiond held back from" in p.stdout, p.stdout
        s = wait_for(lambda: (lambda st: st if st and st["dataplane"]["in_sync"] and
                              st["generation"]["id"] == 3 else None)(status(loser[0])),
                     timeout=20, what="the loser in sync on generation 3")
        assert s["alarm"] is None, s
        # The former winner neither adopts it nor pushes back: it says so.
        s = wait_for(lambda: (lambda st: st if st and "another regiond" in (st["alarm"] or "") else None)(
            status(winner[0])), timeout=20, what="the former winner holding back")
        assert not s["dataplane"]["in_sync"] and s["generation"]["hash"] == running, s
        assert s["dataplane"]["status"]["controller"] == views[loser[0]]["state_id"] != s["state_id"], s
        time.sleep(2)
        assert dp_generation(b)["id"] == 3
        # Its operator makes a change that changes nothing (a link already
        # up set up): a no-op PATCH, which takes regionfwd back, and the
        # other holds back.
        p = subprocess.run([REGIONCTL, "-s", winner[0], "link", "up", "to-br"], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, (p.stdout, p.stderr)
        # "no change" to its table, and said taken back: regionfwd's changed.
        assert "no change" in p.stdout and "regionfwd taken back" in p.stdout, p.stdout
        s = wait_for(lambda: (lambda st: st if st and st["dataplane"]["in_sync"] else None)(status(winner[0])),
                     timeout=20, what="taken back")
        assert s["alarm"] is None and dp_generation(b)["hash"] == running, s
        wait_for(lambda: "another regiond" in ((status(loser[0]) or {}).get("alarm") or ""), timeout=20,
                 what="the loser holding back")
    finally:
        if rd2:
            rd2.terminate()
            rd2.wait(30)
        b.stop()


def test_a_second_regiond_started_by_hand_is_told_apart(tmp_path):
    """A regiond started by hand beside the box's, on a state directory and
    API socket of its own and the same regionfwd: their ids do not collide
    (it adopts the box's table, then its change is generation 3). The box's
    regiond once took that for a change it had missed and adopted it, both
    saying healthy. Each regiond pushes with its state directory's identity
    and regionfwd keeps it with the table (across its restart too): the
    box's regiond holds back and says whose table runs, until its operator
    applies a table; a backup of its own state restored is still adopted
    (test_an_older_state_adopts_what_regionfwd_runs)."""
    b = Box(tmp_path, "by-hand")
    api2, rd2 = str(tmp_path / "api2.sock"), None

    try:
        assert b.ctl("apply", demo_variant(tmp_path, "a.yaml", *SG_LOCAL), "--confirm-timeout", "20")[0] == 0
        mine = status(b.api)
        assert mine["confirm"]["generation"] == 2, mine
        assert mine["dataplane"]["status"]["controller"] == mine["state_id"], mine
        assert fwd_status(b)["controller"] == mine["state_id"]
        before = history(b)
        rd2 = second_regiond(b, tmp_path, api2)
        other = wait_for(lambda: (lambda st: st if st and st["dataplane"]["in_sync"] else None)(status(api2)),
                         timeout=30, what="the second regiond adopting the box's table")
        assert other["generation"]["id"] == 2 and other["state_id"] != mine["state_id"], other
        p = subprocess.run([REGIONCTL, "-s", api2, "apply", demo_variant(tmp_path, "b.yaml", "ingress table",
                                                                         "ingress table b")],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and "generation 3" in p.stdout, (p.stdout, p.stderr)
        s = wait_for(lambda: (lambda st: st if st and st["alarm"] else None)(status(b.api)), timeout=20,
                     what="the box's regiond holding back")
        assert "pushed by another regiond (state directory " + other["state_id"] in s["alarm"], s
        assert "two regionds manage this regionfwd?" in s["alarm"], s
        assert not s["dataplane"]["in_sync"] and s["health"]["state"] == "degraded", s
        assert s["generation"]["id"] == 2 and history(b) == before, "adopted the other regiond's change"
        rc, _, _ = b.ctl("status")
        assert rc == 1
        # The commit-confirm revert of its generation 2 falls due meanwhile:
        # it waits, as what this regiond does on its own does while it holds
        # back (pushed, it took regionfwd back with no operator).
        wait_for(lambda: (status(b.api)["confirm"] or {}).get("reverts_in_s", 1) <= 0, timeout=40,
                 what="the revert due")
        time.sleep(2)  # nothing pushed back
        assert dp_generation(b)["id"] == 3 and fwd_status(b)["controller"] == other["state_id"]
        s = status(b.api)
        assert s["confirm"]["generation"] == 2 and s["generation"]["id"] == 2, s
        rc, out, err = b.ctl("confirm")
        assert rc == 0, (out, err)
        # regionfwd restarted resumes the other's table and still says whose.
        b.fwd.terminate()
        b.fwd.wait(30)
        b.start_fwd()
        assert dp_generation(b)["id"] == 3 and fwd_status(b)["controller"] == other["state_id"]
        time.sleep(2)  # both regionds have looked at the restarted regionfwd
        s = status(b.api)
        assert "another regiond" in (s["alarm"] or "") and dp_generation(b)["id"] == 3, s
        # The box's operator takes regionfwd back with its current table:
        # no change to its history, but regionfwd's table changed, and the
        # answer says so.
        rc, out, err = b.ctl("apply", str(tmp_path / "a.yaml"), json_out=True)
        assert rc == 0 and out["changed"] is False and out["taken_back"] is True, (out, err)
        s = wait_for(lambda: (lambda st: st if st and st["dataplane"]["in_sync"] else None)(status(b.api)),
                     timeout=20, what="the box's regiond back in charge")
        assert s["alarm"] is None and s["generation"]["id"] == 2, s
        assert fwd_status(b)["controller"] == mine["state_id"]
        assert "applied again while held back by " in open(tmp_path / "regiond.log").read()
        # The same no-op again, nothing held back: nothing taken back.
        rc, out, err = b.ctl("apply", str(tmp_path / "a.yaml"), json_out=True)
        assert rc == 0 and out["changed"] is False and "taken_back" not in out, (out, err)
        s = wait_for(lambda: (lambda st: st if st and st["alarm"] else None)(status(api2)), timeout=20,
                     what="the second regiond holding back")
        assert "another regiond (state directory " + mine["state_id"] in s["alarm"], s
    finally:
        if rd2:
            rd2.terminate()
            rd2.wait(30)
        b.stop()


def test_a_restarted_regiond_still_holds_back(tmp_path):
    """Each regiond writes down the generation of its own regionfwd was last
    seen running (history.json's "ran"). Another regiond's table in its place
    with an id below this one's next (the other adopted early, this one went
    on) was held back from only while regiond kept that in memory: restarted,
    or down while the other took regionfwd, it pushed its own table over the
    other's once, with no operator, and the other then held back."""
    b = Box(tmp_path, "restarted")
    api2, rd2 = str(tmp_path / "api2.sock"), None

    try:
        assert b.ctl("apply", demo_variant(tmp_path, "a.yaml", *SG_LOCAL))[0] == 0
        rd2 = second_regiond(b, tmp_path, api2)
        other = wait_for(lambda: (lambda st: st if st and st["dataplane"]["in_sync"] else None)(status(api2)),
                         timeout=30, what="the second regiond adopting the box's table")
        assert other["generation"]["id"] == 2, other
        # The box's regiond goes on (generation 3); the other holds back.
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "c.yaml", "ingress table", "ingress table c"))
        assert rc == 0 and "generation 3" in out, (out, err)
        held_back(api2)
        mine = status(b.api)
        hist = json.load(open(os.path.join(b.state, "history.json")))
        assert hist["ran"] == mine["generation"]["hash"], hist
        # The box's regiond is down while the other's operator takes
        # regionfwd (its own generation 3: below the box's next id, 4).
        b.rd.terminate()
        b.rd.wait(30)
        p = subprocess.run([REGIONCTL, "-s", api2, "apply", demo_variant(tmp_path, "b.yaml", "ingress table",
                                                                         "ingress table b")],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and "generation 3" in p.stdout, (p.stdout, p.stderr)
        theirs = dp_generation(b)
        assert fwd_status(b)["controller"] == other["state_id"], fwd_status(b)
        b.start_regiond()
        s = held_back(b.api)
        assert not s["dataplane"]["in_sync"] and s["generation"] == mine["generation"], s
        time.sleep(2)  # its main loop looked again: nothing pushed
        assert dp_generation(b) == theirs and fwd_status(b)["controller"] == other["state_id"]
        # Its operator takes regionfwd back; the other, held back, restarts
        # and stays held back.
        rc, out, err = b.ctl("apply", str(tmp_path / "c.yaml"))
        assert rc == 0, (out, err)
        held_back(api2)
        rd2.terminate()
        rd2.wait(30)
        rd2 = second_regiond(b, tmp_path, api2)
        s = held_back(api2)
        assert s["generation"]["hash"] == theirs["hash"], s
        time.sleep(2)
        assert dp_generation(b)["hash"] == mine["generation"]["hash"]
        assert fwd_status(b)["controller"] == mine["state_id"]
    finally:
        if rd2:
            rd2.terminate()
            rd2.wait(30)
        b.stop()


def test_the_same_table_from_another_regiond_is_not_this_ones(tmp_path):
    """A held-back regiond took regionfwd for its own again when the other
    regiond applied a table with the same content as its current one (a
    hash compared, not who pushed it): in sync by hash, it then pushed its
    commit-confirm revert over the other's table with no operator. A table
    is this regiond's when it runs its content pushed by it. And a regiond
    that adopts another's table (an empty state) pushes it back as its own,
    so regionfwd names it and the other holds back at once."""
    b = Box(tmp_path, "same-table")
    api2, rd2 = str(tmp_path / "api2.sock"), None

    try:
        rd2 = second_regiond(b, tmp_path, api2)
        other = wait_for(lambda: (lambda st: st if st and st["dataplane"]["in_sync"] else None)(status(api2)),
                         timeout=30, what="the second regiond adopting the box's table")
        assert fwd_status(b)["controller"] == other["state_id"], fwd_status(b)
        held_back(b.api)
        t3 = demo_variant(tmp_path, "t3.yaml", *SG_LOCAL)
        p = subprocess.run([REGIONCTL, "-s", api2, "apply", t3, "--confirm-timeout", "12"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, (p.stdout, p.stderr)
        unconfirmed = status(api2)["generation"]["hash"]
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "t4.yaml", "ingress table", "ingress table t4"))
        assert rc == 0, (out, err)
        held_back(api2)
        # The box applies the other's unconfirmed table, the same content.
        rc, out, err = b.ctl("apply", t3)
        assert rc == 0, (out, err)
        mine = b.status()
        assert mine["generation"]["hash"] == unconfirmed and mine["dataplane"]["in_sync"], mine
        s = held_back(api2)
        assert not s["dataplane"]["in_sync"] and s["health"]["state"] == "degraded", s
        assert s["generation"]["hash"] == unconfirmed, s
        # The metric says what status says (it once said 1 here).
        code, text = api_request(api2, "GET", "/metrics")
        assert code == 200 and "\nregiond_dataplane_in_sync 0\n" in text, text[:2000]
        # Its revert falls due: it waits, as everything it does on its own.
        wait_for(lambda: (status(api2)["confirm"] or {}).get("reverts_in_s", 1) <= 0, timeout=40,
                 what="the revert due")
        time.sleep(2)
        assert dp_generation(b)["hash"] == unconfirmed
        assert fwd_status(b)["controller"] == mine["state_id"], fwd_status(b)
        assert b.status()["dataplane"]["in_sync"]
    finally:
        if rd2:
            rd2.terminate()
            rd2.wait(30)
        b.stop()


def test_a_seeded_regiond_whose_seed_ran_is_not_taken_over_silently(tmp_path):
    """A regiond seeded from its --table at this start adopts what runs
    until its seed has run (it was nobody's choice); once it ran, another
    regiond's change in its place is held back from, not adopted (a
    regiond by hand adopting the seed and then changing it once took the
    box's regiond along, both saying healthy)."""
    b = Box(tmp_path, "seed-ran")
    api2, rd2 = str(tmp_path / "api2.sock"), None

    try:
        mine = wait_for(lambda: (lambda st: st if st and st["dataplane"]["status"]["controller"] else None)(
            status(b.api)), timeout=20, what="the seed claimed")
        assert mine["dataplane"]["status"]["controller"] == mine["state_id"], mine
        rd2 = second_regiond(b, tmp_path, api2)
        wait_for(lambda: (status(api2) or {}).get("dataplane", {}).get("in_sync"), timeout=30,
                 what="the second regiond adopting the seed")
        p = subprocess.run([REGIONCTL, "-s", api2, "apply", demo_variant(tmp_path, "b.yaml", "ingress table",
                                                                         "ingress table b")],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and "generation 2" in p.stdout, (p.stdout, p.stderr)
        s = wait_for(lambda: (lambda st: st if st and st["alarm"] else None)(status(b.api)), timeout=20,
                     what="the seeded regiond holding back")
        assert "two regionds manage this regionfwd?" in s["alarm"], s
        assert s["generation"]["id"] == 1 and [g["id"] for g in history(b)] == [1], history(b)
        assert "adopted what regionfwd runs" not in open(tmp_path / "regiond.log").read()
    finally:
        if rd2:
            rd2.terminate()
            rd2.wait(30)
        b.stop()


HANG_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A stalled disk under regionfwd's saved table: an fsync of a file whose
 * path holds ".pushed" waits while SAVE_HANG_FILE exists (at most 60 s),
 * leaves SAVE_HANG_FILE.seen to say it did, and then succeeds; any other
 * such fsync fails with EIO while SAVE_HANG_FILE.fail exists (so a stall
 * can end in a save that went through, and the writes after it fail).
 * @return 0 or -1 */
static int hang(int fd)
{
	const char *flag = getenv("SAVE_HANG_FILE");
	char link[64], path[4096], seen[4200], fail[4200];
	ssize_t n;

	if (flag == NULL)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	if (strstr(path, ".pushed") == NULL)
		return 0;
	if (access(flag, F_OK) == 0) {
		snprintf(seen, sizeof(seen), "%s.seen", flag);
		close(open(seen, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
		for (int i = 0; i < 1200 && access(flag, F_OK) == 0; i++)
			usleep(50000);
		return 0;
	}
	snprintf(fail, sizeof(fail), "%s.fail", flag);
	if (access(fail, F_OK) == 0) {
		errno = EIO;
		return -1;
	}
	return 0;
}

#define STALLED(name)                                                   \
	int name(int fd)                                                \
	{                                                               \
		static int (*real)(int);                                \
		if (!real)                                              \
			real = (int (*)(int))dlsym(RTLD_NEXT, #name);   \
		return hang(fd) ? -1 : real(fd);                        \
	}
STALLED(fsync)
STALLED(fdatasync)

int unlink(const char *p)
{
	static int (*real)(const char *);
	const char *flag = getenv("SAVE_HANG_FILE");
	char fail[4200];

	if (!real)
		real = (int (*)(const char *))dlsym(RTLD_NEXT, "unlink");
	snprintf(fail, sizeof(fail), "%s.fail", flag ? flag : "");
	/* A failing disk: EIO for a file that is there (ENOENT stays). */
	if (flag && strstr(p, ".pushed") && access(fail, F_OK) == 0 && access(p, F_OK) == 0) {
		errno = EIO;
		return -1;
	}
	return real(p);
}
"""


def hang_shim(tmp_path):
    """The LD_PRELOAD wrapper that stalls regionfwd's saves, and its flag."""
    flag = tmp_path / "hang"
    return ["env", f"LD_PRELOAD={preload_shim(tmp_path, 'savehang', HANG_SHIM)}", f"SAVE_HANG_FILE={flag}"], flag


def telemetry_generation(prefix):
    """The generation regionfwd's workers run, from DPDK's telemetry
    thread: it answers while the control thread is stuck in a save."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2")
        s.recv(16384)  # greeting
        s.send(b"/regionfwd/generation")
        return json.loads(s.recv(1 << 20).decode())["/regionfwd/generation"]
    finally:
        s.close()


def saved_header(tmp_path):
    with open(tmp_path / "fwd.sock.pushed") as f:
        return json.loads(f.readline())


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler for the save shim")
@pytest.mark.parametrize("kind", ["push", "delta"])
def test_a_save_hung_past_the_deadline_never_runs_the_refused_table(tmp_path, kind):
    """regionfwd saved a push after publishing it: a save stalled past
    regiond's deadline ran, for the stall's length, the table regiond had
    answered "nothing changed" for (and a delta likewise). It is now saved
    before the swap and checked against the deadline after the save: the
    table never runs, and the saved file names the running generation again,
    so a restart resumes what ran."""
    wrapper, flag = hang_shim(tmp_path)
    name = f"hungsave-{kind}"
    b = Box(tmp_path, name, regiond_args=("--dataplane-timeout", "2000"), fwd_wrapper=wrapper)
    try:
        first = dp_generation(b)
        wait_for(lambda: saved_header(tmp_path)["generation"] == first["id"], what="the first push saved")
        inode = os.stat(tmp_path / "fwd.sock.pushed").st_ino
        flag.write_text("")
        if kind == "push":
            rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))
        else:
            pf = tmp_path / "more.txt"
            pf.write_text("10.1.0.0/16\n")
            rc, out, err = b.ctl("prefixes", "add", "india", str(pf))
        assert rc == 3 and "nothing changed" in err, (rc, out, err)
        assert os.path.exists(f"{flag}.seen"), "the save did not stall: the test missed its case"
        # regiond gave up; the save still hangs. What the workers run:
        for _ in range(10):
            g = telemetry_generation(f"e2e-{name}")
            assert (g["id"], g["hash"]) == (first["id"], first["hash"]), g
            time.sleep(0.1)
        flag.unlink()
        wait_for(lambda: (lambda s: s["dataplane"]["in_sync"] and s["generation"]["id"] == first["id"])(b.status()),
                 what="regiond and regionfwd agree on generation 1")
        assert dp_generation(b)["hash"] == first["hash"]
        log = open(tmp_path / "fwd.log").read()
        assert "after its deadline: not published" in log, log
        # The file names what runs again, and a restart resumes it.
        h = saved_header(tmp_path)
        assert h["generation"] == first["id"], h
        journal = tmp_path / "fwd.sock.pushed.deltas"
        assert not journal.exists() or journal.stat().st_size == 0
        if kind == "delta":  # its record cut off, not the document written again
            assert os.stat(tmp_path / "fwd.sock.pushed").st_ino == inode
        b.fwd.kill()
        b.fwd.wait(30)
        os.unlink(b.fwd_sock)
        b.start_fwd()
        assert dp_generation(b)["hash"] == first["hash"]
        assert "starting on generation 1" in fwd_log(b)
    finally:
        if flag.exists():
            flag.unlink()
        b.stop()


class FwdOnly(Box):
    """regionfwd alone, on its --table: nothing has pushed to it yet."""

    def start_regiond(self, extra=()):
        pass


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler for the save shim")
def test_a_first_push_refused_after_its_save_leaves_no_saved_table(tmp_path):
    """The first push to a regionfwd running its --table, saved and then
    refused for its deadline: the file it left would have made a restart
    start on a table that never ran. It is removed: a restart starts on
    --table, which is what runs, and SIGHUP still reloads the file."""
    wrapper, flag = hang_shim(tmp_path)
    b = FwdOnly(tmp_path, "hungsave-first", fwd_wrapper=wrapper)
    try:
        first = dp_generation(b)
        new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
        flag.write_text("")
        unstall = threading.Timer(3.0, flag.unlink)
        unstall.start()
        c = Ctl(b.fwd_sock)
        try:
            r = c.call("push", document=open(new).read(), generation=7, name="regiond",
                       deadline_mono_ns=time.monotonic_ns() + 1_500_000_000)
            st = c.call("status")
        finally:
            c.close()
            unstall.join()
        assert not r["ok"] and r["error"]["code"] == "push_expired", r
        assert os.path.exists(f"{flag}.seen"), "the save did not stall: the test missed its case"
        assert (st["generation"]["id"], st["generation"]["hash"]) == (first["id"], first["hash"]), st
        assert st["managed_by"] == "", st
        assert not os.path.exists(tmp_path / "fwd.sock.pushed")
        b.fwd.kill()
        b.fwd.wait(30)
        os.unlink(b.fwd_sock)
        b.start_fwd()
        assert dp_generation(b)["hash"] == first["hash"]
        assert "starting on generation" not in fwd_log(b)
    finally:
        if flag.exists():
            flag.unlink()
        b.stop()


def test_a_journal_folded_at_restart_keeps_the_next_delta_saved(tmp_path):
    """A delta is saved before its swap, so a journal folded after one
    (delta_journal_bytes passed) stays in the file as the document and its
    records, and a restart replays and folds it again. The start then took
    the folded document for the file's: the next delta was neither written
    nor said unsaved, and the restart after it went back a generation."""
    b = Box(tmp_path, "fold-restart", node_extra="delta_journal_bytes: 4096\n")

    def restart():
        b.fwd.kill()
        b.fwd.wait(30)
        os.unlink(b.fwd_sock)
        b.start_fwd()

    try:
        big = tmp_path / "big.txt"
        big.write_text("".join(f"10.{i // 256}.{i % 256}.0/24\n" for i in range(3000)))
        rc, out, err = b.ctl("prefixes", "add", "india", str(big))
        assert rc == 0, (out, err)
        # Folded by regionfwd's control loop once the delta is answered.
        wait_for(lambda: "folded into its document" in fwd_log(b), what="regionfwd folds its journal")
        restart()
        assert dp_generation(b)["id"] == 2
        wait_for(lambda: b.status()["dataplane"]["in_sync"], what="regiond in sync after the restart")
        small = tmp_path / "small.txt"
        small.write_text("10.200.0.0/24\n")
        rc, out, err = b.ctl("prefixes", "add", "india", str(small))
        assert rc == 0, (out, err)
        third = dp_generation(b)
        c = Ctl(b.fwd_sock)
        try:
            assert third["id"] == 3 and c.call("status")["save_error"] == ""
        finally:
            c.close()
        restart()
        assert dp_generation(b)["hash"] == third["hash"], fwd_log(b)[-2000:]
        assert "starting on generation 3" in fwd_log(b)
    finally:
        b.stop()


def fwd_status(b):
    c = Ctl(b.fwd_sock)
    try:
        return c.call("status")
    finally:
        c.close()


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler for the save shim")
@pytest.mark.parametrize("managed", [True, False], ids=["pushed-before", "nothing-pushed"])
def test_a_refused_push_whose_file_cannot_be_put_back_is_said_and_retried(tmp_path, managed):
    """A push saved, then refused for its deadline, and the disk fails the
    write back (or the removal, when nothing was pushed before): the file
    names a table that never ran, which a restart would start on. regionfwd
    says so in save_error, naming the refused generation (regiond raises it
    as an alarm), and tries again until the disk takes it."""
    wrapper, flag = hang_shim(tmp_path)
    fail = tmp_path / "hang.fail"
    name = f"putback-{int(managed)}"
    if managed:
        b = Box(tmp_path, name, regiond_args=("--dataplane-timeout", "2000"), fwd_wrapper=wrapper)
    else:
        b = FwdOnly(tmp_path, name, fwd_wrapper=wrapper)
    try:
        first = dp_generation(b)
        if managed:
            wait_for(lambda: saved_header(tmp_path)["generation"] == first["id"], what="the first push saved")
        new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
        flag.write_text("")
        unstall = threading.Timer(3.0, lambda: (fail.write_text(""), flag.unlink()))
        unstall.start()
        try:
            if managed:
                rc, out, err = b.ctl("apply", new)
                assert rc == 3 and "nothing changed" in err, (rc, out, err)
            else:
                c = Ctl(b.fwd_sock)
                try:
                    r = c.call("push", document=open(new).read(), generation=2, name="regiond",
                               deadline_mono_ns=time.monotonic_ns() + 1_500_000_000)
                finally:
                    c.close()
                assert not r["ok"] and r["error"]["code"] == "push_expired", r
        finally:
            unstall.join()
        st = wait_for(lambda: (lambda s: s if s["save_error"] else None)(fwd_status(b)),
                      what="save_error said")
        if managed:
            assert "the file may still hold generation 2, a push that was refused" in st["save_error"], st
        else:
            assert "which may hold generation 2, a push that was refused" in st["save_error"], st
        assert (st["generation"]["id"], st["generation"]["hash"]) == (first["id"], first["hash"]), st
        if managed:  # regiond raises it
            wait_for(lambda: "a push that was refused" in json.dumps(b.status()), what="regiond's alarm")
        fail.unlink()
        wait_for(lambda: fwd_status(b)["save_error"] == "", what="the retry puts the file back")
        if managed:
            assert saved_header(tmp_path)["generation"] == first["id"]
        else:
            assert not os.path.exists(tmp_path / "fwd.sock.pushed")
    finally:
        for f in (flag, fail):
            if f.exists():
                f.unlink()
        b.stop()
