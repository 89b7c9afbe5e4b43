"""regiond's state directory under faults (issue 16, findings 1, 2 and 4): a
change is durable before regionfwd runs it, a full disk refuses the change
and changes nothing, any corruption of the state directory stops regiond
with the file and reason named and never touches live policy, and a change
interrupted mid-apply is resolved by what regionfwd runs, and commit-confirm
reverts at its deadline even when the disk refuses to record it."""
import contextlib
import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from ctlclient import Ctl  # noqa: E402
from preload import preload_shim  # noqa: E402
from test_e2e import DEMO, REGIOND, REGIONCTL, SG_LOCAL, Box, demo_variant, wait_for  # noqa: E402


def dp_generation(box):
    """What regionfwd itself runs, asked on its own socket."""
    c = Ctl(box.fwd_sock)
    try:
        return c.call("status")["generation"]
    finally:
        c.close()


@contextlib.contextmanager
def box_on_tmpfs(tmp_path, name, size, regiond_args=(), wrapper=()):
    """A Box whose state directory is a tmpfs of @size (to fill up or to
    remount read-only), regiond started through @wrapper; stopped,
    remounted writable and unmounted after."""
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(state)], check=True)
    b = None
    try:
        b = Box(tmp_path, name, regiond_args=regiond_args, wrapper=wrapper)
        yield b, state
    finally:
        if b:
            b.stop()
        subprocess.run(["mount", "-o", "remount,rw", str(state)])
        subprocess.run(["umount", str(state)])


def fill_but(state, room, chunk=4096):
    """Fill the tmpfs at @state with a file "filler" until it refuses, then
    give back @room bytes."""
    with open(state / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * chunk)
        except OSError:
            pass
    os.truncate(state / "filler", os.path.getsize(state / "filler") - room)


def regiond_once(box):
    """Start regiond on the box's state and return (exit status, output)
    when it stops by itself within 20 s (None when it keeps running)."""
    p = subprocess.Popen([REGIOND, "--dataplane", box.fwd_sock, "--api-socket", box.api, "--state-dir",
                          box.state, "--table", DEMO], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=20)
        return p.returncode, out
    except subprocess.TimeoutExpired:
        p.terminate()
        out, _ = p.communicate(timeout=30)
        return None, out


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_full_disk_refuses_the_change_and_changes_nothing(tmp_path):
    with box_on_tmpfs(tmp_path, "st-full", "512k", regiond_args=("--keep", "2")) as (b, state):
        for n in range(3):  # history at --keep: the next apply prunes
            rc, _, err = b.ctl("apply", demo_variant(tmp_path, f"v{n}.yaml", "ingress table",
                                                    f"ingress table v{n}"))
            assert rc == 0, err
        gen, before = b.gen(), dp_generation(b)
        docs = sorted(os.listdir(state))
        # The disk fills up but for one page: room for the new document,
        # none for the history that must name it (the case that once ran a
        # change that was answered 'persist_failed').
        fill_but(state, 4096)
        new = demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)
        rc, out, err = b.ctl("apply", new)
        assert rc == 4 and "persist_failed" in err and "nothing changed" in err, (rc, out, err)
        assert "history.json" in err, err  # the document was written, its record was not
        assert dp_generation(b) == before  # regionfwd never ran it
        assert b.gen() == gen and sorted(set(os.listdir(state)) - {"filler"}) == docs  # nothing pruned
        b.rd.terminate()
        b.rd.wait(30)
        os.unlink(state / "filler")
        b.start_regiond(("--keep", "2"))  # starts as it was
        assert b.gen() == gen and dp_generation(b) == before
        rc, out, err = b.ctl("apply", new)  # and takes the change now, with a fresh id
        assert rc == 0 and f"generation {gen + 1}" in out, err
        assert dp_generation(b)["id"] == gen + 1



HOLD_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A disk that stalls under one file: an fsync of a file whose path holds
 * HOLD_PATH waits while HOLD_FLAG exists (60 s at most). */
int fsync(int fd)
{
	static int (*real)(int);
	const char *flag = getenv("HOLD_FLAG"), *what = getenv("HOLD_PATH");
	char link[64], path[4096];
	ssize_t n;

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (flag && what && n > 0) {
		path[n] = '\0';
		for (int i = 0; i < 1200 && strstr(path, what) && access(flag, F_OK) == 0; i++)
			usleep(50000);
	}
	return real(fd);
}
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_a_table_seed_the_disk_refuses_does_not_stop_regiond(tmp_path):
    """An empty state directory on a full disk, regiond started with
    --table (as the guides start it): the seed's record was refused and
    regiond exited, "--table refused: cannot write .../gen-1.doc", the
    operator left without an API (a probe of disk faults). A disk's
    refusal is not the validator's: regiond starts as without --table,
    says why, raises the alarm of an adoption the disk refuses, and takes
    on what regionfwd runs once there is room."""
    with box_on_tmpfs(tmp_path, "st-seedfull", "1m") as (b, state):
        b.rd.terminate()
        b.rd.wait(30)
        for f in os.listdir(state):
            os.unlink(state / f)
        fill_but(state, 0)
        b.start_regiond()
        log = open(tmp_path / "regiond.log").read()
        assert f"--table {DEMO} not applied: " in log and "No space left on device" in log, log[-3000:]
        assert f"once the disk takes it (room, or writable again), regionctl apply {DEMO}" in log, log[-3000:]
        s = wait_for(lambda: (lambda st: st if "cannot adopt" in (st["alarm"] or "") else None)(b.status()),
                     what="the adoption's alarm")
        rc, out, err = b.ctl("status")  # the operator is not locked out: told, degraded
        assert rc == 1 and s["alarm"].split(":")[0] in out, (out, err)
        os.unlink(state / "filler")
        runs = dp_generation(b)
        wait_for(lambda: b.status()["alarm"] is None, what="the alarm cleared")
        s = b.status()
        assert s["generation"]["id"] == runs["id"] and s["generation"]["hash"] == runs["hash"], (s, runs)


def test_state_files_damaged_while_regiond_runs_are_written_again(tmp_path):
    """A probe of disk faults: history.json removed or made a directory, a
    listed generation's file cut short or changed in place, while regiond ran: health stayed
    healthy (every change refused persist_failed, or nothing said at all)
    until the next start stopped on it. regiond holds all of it in memory:
    it checks the files every second, writes again what is damaged and
    says so; what it cannot write is the state directory's alarm."""
    import pathlib
    b = Box(tmp_path, "st-damage")
    try:
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "v.yaml", *SG_LOCAL))
        assert rc == 0, (out, err)
        state = pathlib.Path(b.state)
        hist = (state / "history.json").read_bytes()
        for _ in range(100):  # regiond may write it again between the two
            try:
                os.unlink(state / "history.json")
                os.mkdir(state / "history.json")
                break
            except (FileExistsError, FileNotFoundError):
                pass
        s = wait_for(lambda: (lambda st: st if st["alarm"] else None)(b.status()), what="the alarm")
        assert "history.json was replaced by a directory while regiond runs and cannot be written again " \
               "(a directory is in the way): a restart of regiond would stop on it; move the directory away" \
               in s["alarm"], s["alarm"]
        rc, out, _ = b.ctl("status")
        assert rc == 1, out  # degraded, not healthy
        os.rmdir(state / "history.json")
        wait_for(lambda: b.status()["alarm"] is None, what="history.json written again")
        assert json.loads((state / "history.json").read_bytes()) == json.loads(hist)
        for name, damage in (("gen-1.doc", lambda p: p.write_bytes(p.read_bytes()[:10])),
                             ("gen-2.doc", lambda p: p.unlink())):
            path = state / name
            data = path.read_bytes()
            damage(path)
            wait_for(lambda: path.exists() and path.read_bytes() == data, what=f"{name} written again")
        for line in ("gen-1.doc (generation 1) was cut short while regiond runs: written again",
                     "gen-2.doc (generation 2) was removed while regiond runs: written again"):
            wait_for(lambda: line in open(tmp_path / "regiond.log").read(), what=line)
        # Bytes changed in place, size and links kept: once found only by
        # the next start's hash check, which then stopped. Read back and
        # compared a MiB a tick, written again.
        path = state / "gen-2.doc"
        data = path.read_bytes()
        at = len(data) // 2
        with open(path, "r+b") as f:
            f.seek(at)
            f.write(b"#" if data[at:at + 1] != b"#" else b"x")
        wait_for(lambda: path.read_bytes() == data, what="gen-2.doc written again")
        wait_for(lambda: f"gen-2.doc (generation 2) was changed while regiond runs (its size kept; bytes "
                         f"from {at} differ): written again" in open(tmp_path / "regiond.log").read(),
                 what="the change said")
        # history.json so changed (size kept): once found only by the next
        # start, which stopped on it. Its next_id's last digit another.
        path = state / "history.json"
        data = path.read_bytes()
        at = data.index(b'"next_id": ') + len(b'"next_id": ')
        while data[at + 1:at + 2].isdigit():
            at += 1
        changed = data[:at] + (b"7" if data[at:at + 1] != b"7" else b"8") + data[at + 1:]
        assert len(changed) == len(data) and changed != data
        with open(path, "r+b") as f:
            f.write(changed)
        wait_for(lambda: path.read_bytes() == data, what="history.json written again")
        wait_for(lambda: "history.json was changed (its size kept) while regiond runs: written again"
                 in open(tmp_path / "regiond.log").read(), what="the history's change said")
        gen = b.gen()
        b.rd.terminate()
        b.rd.wait(30)
        b.start_regiond()  # it starts: nothing a restart reads is damaged
        assert b.gen() == gen
    finally:
        b.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_a_crash_after_a_refused_change_leaves_a_state_that_starts(tmp_path):
    """A change refused 'persist_failed' once its document was written (its
    history was not) once kept its id spent in memory only: history.json
    still said next_id N. The next change then wrote gen-(N+1).doc, and a
    regiond killed before that change's history was written left a file
    that is neither the disk's next id nor in the history: corrupt, regiond
    would not start again. The refused id was never pushed: it is reused."""
    flag = tmp_path / "hold"
    hold = ["env", f"LD_PRELOAD={preload_shim(tmp_path, 'hold', HOLD_SHIM)}", f"HOLD_FLAG={flag}",
            "HOLD_PATH=/.history.json."]
    with box_on_tmpfs(tmp_path, "st-reuse", "512k", wrapper=hold) as (b, state):
        gen, before = b.gen(), dp_generation(b)
        fill_but(state, 4096)  # one page left
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "v1.yaml", "ingress table", "ingress table v1"))
        assert rc == 4 and "persist_failed" in err and "history.json" in err, (rc, out, err)
        os.unlink(state / "filler")
        # The next change stops in its write-ahead record: the fsync of
        # history.json's temporary file waits while the flag is there.
        flag.touch()
        docs = set(os.listdir(state))
        apply = subprocess.Popen([REGIONCTL, "-s", b.api, "apply",
                                  demo_variant(tmp_path, "v2.yaml", "ingress table", "ingress table v2")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: {f for f in os.listdir(state) if f.startswith("gen-")} - docs
                     and [f for f in os.listdir(state) if f.startswith(".history.json.")], timeout=30,
                     what="the change's document written, its record being written")
            b.rd.kill()  # regiond dies between its document and its record
            b.rd.wait(30)
        finally:
            flag.unlink()
            apply.wait(30)
        # Its record's temporary file stays, as a crash leaves it.
        b.start_regiond()  # starts: the leftover carries the disk's next id
        assert b.gen() == gen and dp_generation(b) == before
        assert b.status()["alarm"] is None
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "v3.yaml", "ingress table", "ingress table v3"))
        assert rc == 0 and f"generation {gen + 1}" in out, (out, err)
        assert dp_generation(b)["id"] == gen + 1


CORRUPTIONS = [
    # (name, change to the state directory, file the error names, words in it)
    ("generations emptied", lambda h, d: h.update(generations=[]), "gen-1.doc", "not in history.json"),
    ("next_id below the ids", lambda h, d: h.update(next_id=1), "history.json", "next_id"),
    ("a hash changed", lambda h, d: h["generations"][0].update(hash="0" * 16), "gen-1.doc", "hash"),
    ("a record without an id", lambda h, d: h["generations"][0].pop("id"), "history.json", "generations[0]"),
    ("ids out of order", lambda h, d: h["generations"].reverse(), "history.json", "ids only grow"),
    ("not JSON", None, "history.json", ""),
    # json_load_file() waited on it for ever: no log, no API socket
    ("history a FIFO", "fifo", "history.json", "not a regular file"),
    # taken for a fresh directory: gen-1.doc, the leftover of a first apply
    # killed before its record, was deleted before the stranger stopped it
    ("history.json lost", "lost", "gen-2.doc", "there is no history.json"),
    # also taken for a fresh directory (access() follows the link)
    ("history a dangling symlink", "dangling", "history.json", "cannot open"),
    ("a document edited", "doc", "gen-1.doc", "hash"),
    # said "missing or does not match its hash": which, and why, unsaid
    ("a document a directory", "docdir", "gen-1.doc", "not a regular file"),
    ("a stranger document", "stranger", "gen-7.doc", "not in history.json"),
    ("confirm reverts to a missing generation",
     lambda h, d: h.update(confirm={"generation": 2, "revert_to": 9, "deadline": 0}), "history.json",
     "confirm.revert_to"),
    ("confirm of a future generation",
     lambda h, d: h.update(confirm={"generation": 5, "revert_to": 1, "deadline": 0}), "history.json",
     "confirm.generation"),
    ("confirm without a deadline", lambda h, d: h.update(confirm={"generation": 2, "revert_to": 1}),
     "history.json", "deadline"),
    # the identity regiond pushes with: strtoull took a sign or spaces
    ("state_id signed", lambda h, d: h.update(state_id="-" + h["state_id"][1:]), "history.json", "state_id"),
    ("state_id zero", lambda h, d: h.update(state_id="0" * 16), "history.json", "state_id"),
    ("state_id a number", lambda h, d: h.update(state_id=12), "history.json", "state_id"),
    # what regionfwd was last seen running of this regiond's (foreign_took_over)
    ("ran signed", lambda h, d: h.update(ran="-" + "0" * 14 + "1"), "history.json", "ran"),
    ("ran zero", lambda h, d: h.update(ran="0" * 16), "history.json", "ran"),
    ("ran cut", lambda h, d: h.update(ran="abc"), "history.json", "ran"),
    # ids past 2^63 went out as negative numbers (FWD_GEN_ID_MAX)
    ("next_id past the largest id", lambda h, d: h.update(next_id=2**53 + 1), "history.json", "next_id"),
]


def test_the_state_directory_keeps_its_identity(tmp_path):
    """regiond pushes with its state directory's identity (state_id): made
    once, kept across restarts, and given to a history an older regiond
    wrote (without one) at the next start, written at once."""
    b = Box(tmp_path, "st-id")
    try:
        sid = b.status()["state_id"]
        assert len(sid) == 16 and int(sid, 16) != 0
        hist = os.path.join(b.state, "history.json")
        assert json.load(open(hist))["state_id"] == sid
        b.rd.terminate()
        b.rd.wait(30)
        b.start_regiond()
        assert b.status()["state_id"] == sid
        b.rd.terminate()
        b.rd.wait(30)
        h = json.load(open(hist))
        del h["state_id"], h["ran"]  # as a regiond before it wrote the history
        json.dump(h, open(hist, "w"))
        # regionfwd runs another table of its own: regiond pushes its own.
        b.fwd.terminate()
        b.fwd.wait(30)
        b.start_fwd(table=demo_variant(tmp_path, "other.yaml", "ingress table", "ingress table other"),
                    extra=("--start-on", "table"))
        b.start_regiond()
        new = b.status()["state_id"]
        assert new != sid and json.load(open(hist))["state_id"] == new
        assert wait_for(lambda: b.status()["dataplane"]["in_sync"], timeout=20, what="in sync")
        assert b.status()["alarm"] is None
        # Made for an older history, the identity is marked new until
        # regionfwd runs this regiond's push, and that is written down: a
        # restart must not judge another regiond's tables by ids alone again.
        wait_for(lambda: "state_id_new" not in json.load(open(hist)), timeout=10, what="state_id_new cleared")
        assert json.load(open(hist))["state_id"] == new
        # And what runs, pushed by this regiond's main loop rather than by a
        # change, is written down as seen running ("ran"): a restart holds
        # back from another regiond's table in its place.
        assert json.load(open(hist))["ran"] == b.status()["generation"]["hash"]
        # Lost alone (a history written before it), it is written again at
        # the first look that finds regionfwd running this regiond's table.
        b.rd.terminate()
        b.rd.wait(30)
        h = json.load(open(hist))
        ran = h.pop("ran")
        json.dump(h, open(hist, "w"))
        b.start_regiond()
        wait_for(lambda: json.load(open(hist)).get("ran") == ran, timeout=10, what="ran written again")
    finally:
        b.stop()


def test_the_last_generation_id_is_the_last(tmp_path):
    """Generation ids end at 2^53 - 1, the largest integer every JSON reader
    holds exactly. A next_id edited to just below 2^63 was taken; three
    changes later an id went out as a negative number, regionfwd ran it,
    the client got a 500 that was not JSON, and regiond would not start
    again. The last id is handed out, then every change is refused."""
    b = Box(tmp_path, "st-lastid")
    try:
        b.rd.terminate()
        b.rd.wait(30)
        hist = os.path.join(b.state, "history.json")
        h = json.load(open(hist))
        h["next_id"] = 2**53 - 1
        json.dump(h, open(hist, "w"))
        b.start_regiond()
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "v1.yaml", "ingress table", "ingress table v1"))
        assert rc == 0 and f"generation {2**53 - 1}" in out, (out, err)
        assert dp_generation(b)["id"] == 2**53 - 1
        before = dp_generation(b)
        code, r = b.http("PUT", "/v1/table", {"expected_generation": 2**53 - 1, "document": open(demo_variant(
            tmp_path, "v2.yaml", "ingress table", "ingress table v2")).read()})
        assert code == 500 and r["error"]["code"] == "internal", r
        assert "generation ids are used up" in r["error"]["reason"], r
        assert dp_generation(b) == before and b.status()["generation"]["id"] == 2**53 - 1
        b.rd.terminate()
        b.rd.wait(30)
        b.start_regiond()  # and it starts again
        assert b.status()["generation"]["id"] == 2**53 - 1
    finally:
        b.stop()


def test_unknown_history_keys_are_named_at_start(tmp_path):
    """A history.json with keys this regiond does not read (a newer one's,
    after a downgrade, or a misspelling) starts, and the keys are named once,
    not taken without a word."""
    b = Box(tmp_path, "st-keys")
    try:
        assert b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))[0] == 0
        before = dp_generation(b)
        b.rd.terminate()
        b.rd.wait(30)
        hist = os.path.join(b.state, "history.json")
        h = json.load(open(hist))
        h["fleet_epoch"] = 7
        h["generations"][1]["coment"] = "misspelt"
        json.dump(h, open(hist, "w"))
        b.start_regiond()
        assert wait_for(lambda: b.status()["dataplane"]["in_sync"], timeout=20, what="in sync")
        assert dp_generation(b) == before and b.status()["alarm"] is None
        log = open(tmp_path / "regiond.log").read()
        assert "2 keys this regiond does not know (fleet_epoch, generations[1].coment)" in log, log
        assert "history.json" in log
    finally:
        b.stop()


@pytest.mark.parametrize("name,change,names,words", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_corrupt_state_stops_regiond_and_changes_nothing(tmp_path, name, change, names, words):
    b = Box(tmp_path, "st-corrupt")
    try:
        rc, _, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))
        assert rc == 0, err
        before = dp_generation(b)
        b.rd.terminate()
        b.rd.wait(30)
        hist = os.path.join(b.state, "history.json")
        if change is None:
            with open(hist, "w") as f:
                f.write('{"next_id": 3, "generations": [')
        elif change == "fifo":
            os.unlink(hist)
            os.mkfifo(hist)
        elif change == "lost":
            os.unlink(hist)
        elif change == "dangling":
            os.unlink(hist)
            os.symlink(os.path.join(b.state, "gone.json"), hist)
        elif change == "docdir":
            os.rename(os.path.join(b.state, "gen-1.doc"), os.path.join(b.state, "gen-1.saved"))
            os.mkdir(os.path.join(b.state, "gen-1.doc"))
        elif change == "doc":
            with open(os.path.join(b.state, "gen-1.doc"), "a") as f:
                f.write("\n# edited\n")
        elif change == "stranger":
            with open(os.path.join(b.state, "gen-7.doc"), "w") as f:
                f.write(open(DEMO).read())
        else:
            h = json.load(open(hist))
            change(h, b.state)
            json.dump(h, open(hist, "w"))
        rc, out = regiond_once(b)
        assert rc not in (None, 0), out
        assert names in out and words in out, out
        assert dp_generation(b) == before  # live policy untouched
        assert all(os.path.exists(os.path.join(b.state, f"gen-{i}.doc")) for i in (1, 2))  # nothing deleted
    finally:
        b.stop()


def test_a_cleanup_cut_by_a_crash_does_not_stop_regiond(tmp_path):
    """Files of a generation the history no longer names (retention's
    oldest, a refused change's) are deleted once that history is durable: a
    crash between the two left the file, and the next start refused it as a
    stranger ("the state directory was edited or mixed up"), the control
    plane down until it was removed by hand (a soak that SIGKILLed regiond
    at every step found it). An id below next_id is such a leftover: it is
    removed; one the history never handed out still stops the start."""
    b = Box(tmp_path, "st-cut", regiond_args=("--keep", "2"))
    try:
        for k in range(3):
            rc, _, err = b.ctl("apply", demo_variant(tmp_path, f"v{k}.yaml", "ingress table", f"ingress table {k}"))
            assert rc == 0, err
        listed = [g["id"] for g in b.ctl("history", json_out=True)[1]["history"]]
        assert 1 not in listed and not os.path.exists(os.path.join(b.state, "gen-1.doc")), listed
        before = dp_generation(b)
        b.rd.terminate()
        b.rd.wait(30)
        # What the crash leaves: the pruned generation's file, after a
        # history without it was written.
        with open(os.path.join(b.state, "gen-1.doc"), "w") as f:
            f.write(open(DEMO).read())
        b.start_regiond()
        s = wait_for(lambda: (lambda st: st if st["dataplane"]["in_sync"] else None)(b.status()),
                     timeout=20, what="regiond starts and is in sync")
        assert s["generation"]["id"] == before["id"] and dp_generation(b) == before, s
        assert not os.path.exists(os.path.join(b.state, "gen-1.doc"))
        assert "generation 1 is no longer in the history (a cleanup a crash cut short): removed" in \
            open(tmp_path / "regiond.log").read()
        b.rd.terminate()
        b.rd.wait(30)
        # An id this history never handed out still stops the start, and
        # so does another directory's history: nothing deleted by either.
        with open(os.path.join(b.state, "gen-9.doc"), "w") as f:
            f.write(open(DEMO).read())
        rc, out = regiond_once(b)
        assert rc not in (None, 0) and "generation 9 is not in history.json" in out, out
        os.unlink(os.path.join(b.state, "gen-9.doc"))
        hist = os.path.join(b.state, "history.json")
        h = json.load(open(hist))
        theirs = [g["id"] for g in h["generations"]]
        h["next_id"] += 40
        for g in h["generations"]:  # another box's ids, past every file here
            g["id"] += 40
        json.dump(h, open(hist, "w"))
        ours = sorted(f for f in os.listdir(b.state) if f.startswith("gen-"))
        rc, out = regiond_once(b)
        assert rc not in (None, 0), out
        assert sorted(f for f in os.listdir(b.state) if f.startswith("gen-")) == ours, (theirs, out)
        assert dp_generation(b) == before  # live policy untouched
    finally:
        b.stop()


@pytest.mark.parametrize("runs_it", [True, False])
def test_interrupted_apply_is_resolved_by_what_regionfwd_runs(tmp_path, runs_it):
    """A pending record (regiond killed between its write-ahead record and
    its commit) becomes current if regionfwd runs it, and is dropped if not."""
    b = Box(tmp_path, f"st-pending-{int(runs_it)}")
    try:
        b.rd.terminate()
        b.rd.wait(30)
        doc = open(demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)).read()
        if runs_it:  # regionfwd got the push before regiond died
            c = Ctl(b.fwd_sock)
            assert c.call("push", document=doc, generation=2, name="regiond")["ok"]
            c.close()
        hist = os.path.join(b.state, "history.json")
        h = json.load(open(hist))
        fnv = 1469598103934665603  # regiond's FNV-1a (common/fwd_hash.h)
        for byte in doc.encode():
            fnv = ((fnv ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
        h["pending"] = {"id": 2, "time": 0, "hash": f"{fnv:016x}", "author": "t", "comment": "c",
                        "file": "gen-2.doc"}
        h["next_id"] = 3
        with open(os.path.join(b.state, "gen-2.doc"), "w") as f:
            f.write(doc)
        json.dump(h, open(hist, "w"))
        b.start_regiond()
        wait_for(lambda: json.load(open(hist))["pending"] is None, what="regiond resolves the pending change")
        s = wait_for(lambda: (lambda st: st if st["dataplane"]["in_sync"] else None)(b.status()),
                     what="regiond in sync")
        assert s["generation"]["id"] == (2 if runs_it else 1)
        assert dp_generation(b)["id"] == (2 if runs_it else 1)
        assert os.path.exists(os.path.join(b.state, "gen-2.doc")) == runs_it
        assert json.load(open(hist))["pending"] is None
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "v.yaml", "ingress table", "ingress table v"))
        assert rc == 0 and "generation 3" in out, err  # ids never reused
    finally:
        b.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_a_state_disk_nearly_full_is_said_before_a_change_fails(tmp_path):
    """A full state disk was learnt of from a refused change only (the
    operator in an incident, persist_failed). Now regiond says it ahead:
    an alarm once the filesystem has less free than the next change may
    need (twice the largest table held, and 256 KiB), one log line (the
    free bytes move, the sentence does not), health degraded, the figures
    in status and /metrics; cleared once there is room."""
    with box_on_tmpfs(tmp_path, "st-low", "4m") as (b, state):
        s = b.status()
        assert s["alarm"] is None and s["state_disk"]["free_bytes"] > s["state_disk"]["need_bytes"], s
        doc = max(os.path.getsize(state / f) for f in os.listdir(state) if f.endswith(".doc"))
        assert s["state_disk"]["need_bytes"] == 2 * doc + 256 * 1024, (s, doc)
        # A prefix batch (the feed's, automation's) is a delta: the next
        # may be as large, and retention's checkpoint holds the whole table
        # (a review: a table grown by deltas once left the mark at twice
        # the seed, and a batch of the same size was refused unwarned).
        pfx = [f"10.{i // 256}.{i % 256}.0/24" for i in range(4000)]
        code, r = b.http("POST", "/v1/prefixes", {"changes": [{"region": "india", "add": pfx}]})
        assert code == 200, r
        delta = max(os.path.getsize(state / f) for f in os.listdir(state) if f.endswith(".delta"))
        need = wait_for(lambda: (lambda n: n if n > 2 * doc + 256 * 1024 else None)(
            b.status()["state_disk"]["need_bytes"]), timeout=20, what="the mark grown by the delta")
        assert need >= 2 * doc + 256 * 1024 + 2 * delta, (need, doc, delta)
        fill_but(state, 128 * 1024, chunk=65536)  # room for one small change, less than the mark
        s = wait_for(lambda: (lambda st: st if st["alarm"] else None)(b.status()), timeout=20,
                     what="the alarm")
        assert "filesystem is nearly full" in s["alarm"] and str(state) in s["alarm"], s
        assert "may be refused (persist_failed)" in s["alarm"], s
        assert s["state_disk"]["free_bytes"] < s["state_disk"]["need_bytes"], s
        rc, out, _ = b.ctl("status")
        assert rc == 1 and "nearly full" in out, out  # degraded
        code, metrics = b.http("GET", "/metrics")
        assert code == 200 and "regiond_state_free_bytes " in metrics, metrics
        assert f"regiond_state_need_bytes {s['state_disk']['need_bytes']}" in metrics, metrics
        # a change still fits (the alarm is a warning, not a refusal)
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "v.yaml", "ingress table", "ingress table v"))
        assert rc == 0, (out, err)
        time.sleep(3)  # free bytes moved: the sentence did not
        assert len(alarm_lines(b, "nearly full")) == 1, alarm_lines(b)
        # nothing free at all: "full", the change "will be" refused ("nearly
        # full" with 0 bytes free read as a warning, a walkthrough)
        os.unlink(state / "filler")
        fill_but(state, 0)
        s = wait_for(lambda: (lambda st: st if "is full" in (st["alarm"] or "") else None)(b.status()),
                     timeout=20, what="the full alarm")
        assert "will be refused (persist_failed)" in s["alarm"] and s["state_disk"]["free_bytes"] == 0, s
        os.unlink(state / "filler")
        wait_for(lambda: b.status()["alarm"] is None, timeout=20, what="the alarm cleared")
        assert "alarm cleared (was: the state directory" in open(b.tmp / "regiond.log").read()
        rc, out, _ = b.ctl("status")
        assert rc == 0, out


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a ramfs")
def test_a_state_disk_without_a_size_is_no_alarm(tmp_path):
    """ramfs reports no size (0 blocks, 0 free): it read as "nearly full",
    degraded for ever on a box whose writes all worked (a review)."""
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "ramfs", "ramfs", str(state)], check=True)
    b = None
    try:
        b = Box(tmp_path, "st-ramfs")
        time.sleep(2.5)  # two checks of the disk
        s = b.status()
        assert s["alarm"] is None and s["state_disk"] is None, s
        rc, out, _ = b.ctl("status")
        assert rc == 0, out
    finally:
        if b:
            b.stop()
        subprocess.run(["umount", str(state)])


def alarm_lines(b, about=""):
    with open(b.tmp / "regiond.log") as f:
        return [line for line in f if "ALARM" in line and about in line]


@pytest.mark.skipif(os.geteuid() != 0, reason="remounts a tmpfs read-only")
def test_commit_confirm_reverts_on_a_read_only_state_dir(tmp_path):
    """Finding 4: an unconfirmed generation goes at its deadline even when the
    state directory is read-only: regionfwd first, the record once the disk
    takes it; one alarm, not a line per retry; writes wait for the record."""
    with box_on_tmpfs(tmp_path, "st-ro", "4m") as (b, state):
        first = dp_generation(b)
        # 6 s: the read and the remount below come before the revert, under
        # ASan too.
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL),
                             "--confirm-timeout", "6")
        assert rc == 0 and "confirm within" in out, err
        assert dp_generation(b)["hash"] != first["hash"]
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        # regionfwd runs generation 1's table again, under a new id
        wait_for(lambda: dp_generation(b)["hash"] == first["hash"], timeout=20, what="the revert")
        # regiond takes the revert as current once regionfwd's answer is back:
        # a status read in between (seen under load) still shows the confirm.
        wait_for(lambda: (lambda s: s["confirm"] is None and s["dataplane"]["in_sync"])(b.status()),
                 timeout=20, what="regiond's record of the revert")
        s = b.status()
        assert s["confirm"] is None and s["dataplane"]["in_sync"], s
        assert s["generation"]["id"] == 3 and s["generation"]["hash"] == first["hash"], s
        assert "not recorded" in s["alarm"] and "generation 2" in s["alarm"], s
        assert "is on a read-only filesystem: every change is refused" in s["alarm"], s
        rc, out, _ = b.ctl("status")
        assert rc == 1 and "ALARM" in out, out  # degraded
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "v.yaml", "ingress table", "ingress table v"))
        assert rc == 4 and "persist_failed" in err and "not recorded yet" in err, (rc, out, err)
        time.sleep(3)  # retries meanwhile: still one alarm line each
        assert len(alarm_lines(b, "generation 2")) == 1, alarm_lines(b)
        assert len(alarm_lines(b, "read-only filesystem")) == 1, alarm_lines(b)
        h = json.load(open(state / "history.json"))
        assert h["generations"][-1]["id"] == 2 and h["confirm"]["generation"] == 2  # the disk as it was
        subprocess.run(["mount", "-o", "remount,rw", str(state)], check=True)
        wait_for(lambda: b.status()["alarm"] is None, timeout=20, what="the revert recorded")
        h = json.load(open(state / "history.json"))
        assert h["generations"][-1]["id"] == 3 and h["confirm"] is None, h
        assert h["generations"][-1]["comment"].startswith("automatic revert"), h
        # no feed: the revert's record says the feed added none of its
        # prefixes (left out, every later start warned of an older regiond)
        assert h["generations"][-1].get("owned") == "none", h["generations"][-1]
        assert (state / "gen-3.doc").read_text() == (state / "gen-1.doc").read_text()
        rc, out, _ = b.ctl("status")
        assert rc == 0, out  # healthy again
        b.rd.terminate()
        b.rd.wait(30)
        b.start_regiond()  # the recorded state opens cleanly
        assert b.gen() == 3 and dp_generation(b)["hash"] == first["hash"]
        assert "recorded by an older regiond" not in open(tmp_path / "regiond.log").read()
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "v.yaml", "ingress table", "ingress table v"))
        assert rc == 0 and "generation 4" in out, err


@pytest.mark.skipif(os.geteuid() != 0, reason="remounts a tmpfs read-only")
def test_a_restart_across_an_unrecorded_revert_raises_no_false_alarm(tmp_path):
    """A probe's find: with --keep 2, a commit-confirm revert the disk kept
    off the record, then a regiond restart once the disk was writable:
    regiond took on the revert regionfwd runs (pruning the revert's target),
    then its confirm came due and said "generation 2 was not confirmed in
    time but generation 1 to revert to is not in the history: generation 2
    stays live; apply the table you want", for good, while the reverted
    table ran. Another generation current means nothing to revert."""
    with box_on_tmpfs(tmp_path, "st-rvrt", "4m", regiond_args=("--keep", "2")) as (b, state):
        first = dp_generation(b)
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL),
                             "--confirm-timeout", "6")
        assert rc == 0 and "confirm within" in out, err
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        wait_for(lambda: dp_generation(b)["hash"] == first["hash"], timeout=20, what="the revert")
        wait_for(lambda: b.status()["confirm"] is None, timeout=20, what="regiond's revert")
        b.rd.terminate()
        b.rd.wait(30)
        subprocess.run(["mount", "-o", "remount,rw", str(state)], check=True)
        b.start_regiond(("--keep", "2"))
        wait_for(lambda: (lambda st: st["alarm"] is None and st["confirm"] is None and
                          st["generation"]["hash"] == first["hash"])(b.status()),
                 timeout=30, what="the revert taken on, no alarm")
        time.sleep(3)  # the confirm's tick has run meanwhile
        s = b.status()
        assert s["alarm"] is None and s["generation"]["hash"] == first["hash"], s
        assert "stays live" not in open(tmp_path / "regiond.log").read()


def written_ahead_then_read_only(b, state, write):
    """@write() run while regionfwd is stopped, the state disk made
    read-only once its write-ahead record is there (so its commit record
    is refused), regionfwd let go: what @write returned."""
    import signal
    import threading
    done = {}
    b.fwd.send_signal(signal.SIGSTOP)  # the push waits for regionfwd
    t = threading.Thread(target=lambda: done.update(r=write()))
    t.start()
    try:
        wait_for(lambda: json.load(open(state / "history.json")).get("pending"), timeout=20,
                 what="the write-ahead record")
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
    finally:
        b.fwd.send_signal(signal.SIGCONT)
    t.join(60)
    return done["r"]


@pytest.mark.skipif(os.geteuid() != 0, reason="remounts a tmpfs read-only")
def test_a_change_that_runs_unrecorded_is_said_and_written_later(tmp_path):
    """The disk refusing a change's commit record after its write-ahead (a
    slow push, the disk full or read-only meanwhile): the change runs, so the
    answer is yes, but status used to say healthy while a restart could
    silently drop it (found by a fault probe). Now: an alarm and degraded
    health, no change stacked on it, the record written once the disk
    takes it, and a restart keeps it."""
    with box_on_tmpfs(tmp_path, "st-commit", "4m") as (b, state):
        first = dp_generation(b)
        rc, out, err = written_ahead_then_read_only(
            b, state, lambda: b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)))
        assert rc == 0 and "generation 2" in out, (rc, out, err)  # it runs
        # ... and the answer says it is not on disk yet (answered 200 as
        # any change, a restart of both daemons then dropped it: a probe)
        assert "warning: generation 2 runs, but regiond could not write its record" in err, err
        assert dp_generation(b)["hash"] != first["hash"]
        s = b.status()
        assert "generation 2 runs but its record is not on disk" in (s["alarm"] or ""), s
        rc, out, _ = b.ctl("status")
        assert rc == 1 and "ALARM" in out, out  # degraded
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "v.yaml", "ingress table", "ingress table v"))
        assert rc == 4 and "persist_failed" in err and "not recorded yet" in err, (rc, out, err)
        assert json.load(open(state / "history.json"))["pending"]["id"] == 2  # the disk as it was
        subprocess.run(["mount", "-o", "remount,rw", str(state)], check=True)
        wait_for(lambda: b.status()["alarm"] is None, timeout=20, what="the record written")
        h = json.load(open(state / "history.json"))
        assert h["generations"][-1]["id"] == 2 and h.get("pending") is None, h
        b.rd.terminate()
        b.rd.wait(30)
        b.start_regiond()
        assert b.gen() == 2 and b.status()["generation"]["hash"] == dp_generation(b)["hash"]


@pytest.mark.skipif(os.geteuid() != 0, reason="remounts a tmpfs read-only")
def test_a_prefix_batch_that_runs_unrecorded_is_said(tmp_path):
    """The same for a prefix batch (POST /v1/prefixes), whose answer names
    its generation by number: "saved": false was looked for under
    generation.id and never added, and regionctl said a plain success (a
    probe; a restart of both daemons then dropped the batch)."""
    with box_on_tmpfs(tmp_path, "st-pfx-unsaved", "4m") as (b, state):
        pfx = tmp_path / "p.txt"
        pfx.write_text("203.0.113.0/25\n")
        rc, out, err = written_ahead_then_read_only(b, state, lambda: b.ctl("prefixes", "add", "brazil", str(pfx)))
        assert rc == 0 and "generation 2" in out and "1 added" in out, (rc, out, err)
        assert "warning: generation 2 runs, but regiond could not write its record" in err, err
        subprocess.run(["mount", "-o", "remount,rw", str(state)], check=True)
        wait_for(lambda: b.status()["alarm"] is None, timeout=20, what="the record written")
        # the raw answer too, once the disk refuses again
        code, r = written_ahead_then_read_only(b, state, lambda: b.http("POST", "/v1/prefixes", {"changes": [
            {"region": "brazil", "add": ["203.0.113.128/25"]}]}))
        assert code == 200 and r["generation"] == 3 and r["saved"] is False, (code, r)
        subprocess.run(["mount", "-o", "remount,rw", str(state)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="remounts a tmpfs read-only")
def test_regionfwd_that_cannot_save_what_it_runs_is_said(tmp_path):
    """regionfwd runs a push but cannot save it for a restart (pushed_table
    on a read-only disk): that was in regionfwd's log only, while status
    said healthy (found by a fault probe). Now regiond shows it as an alarm
    (degraded), and regionfwd saves it again once the disk takes it."""
    saved = tmp_path / "saved"
    saved.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(saved)], check=True)
    b = None
    try:
        b = Box(tmp_path, "st-save", node_extra=f"pushed_table: {saved}/pushed\n")
        subprocess.run(["mount", "-o", "remount,ro", str(saved)], check=True)
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL))
        assert rc == 0, err  # it runs
        wait_for(lambda: "regionfwd cannot save generation 2" in (b.status()["alarm"] or ""),
                 timeout=20, what="the alarm")
        rc, out, _ = b.ctl("status")
        assert rc == 1 and "ALARM" in out, out
        subprocess.run(["mount", "-o", "remount,rw", str(saved)], check=True)
        wait_for(lambda: b.status()["alarm"] is None, timeout=20, what="saved once the disk takes it")
        assert "generation 2 saved to" in open(tmp_path / "fwd.log").read()
        assert (saved / "pushed").exists()
    finally:
        if b:
            b.stop()
        subprocess.run(["mount", "-o", "remount,rw", str(saved)])
        subprocess.run(["umount", str(saved)])


@pytest.mark.skipif(os.geteuid() != 0, reason="remounts a tmpfs read-only")
def test_confirm_is_refused_when_it_cannot_be_recorded(tmp_path):
    """A confirmation only memory knows would be undone by a restart: it is
    durable or refused, and the deadline keeps holding."""
    with box_on_tmpfs(tmp_path, "st-ro-confirm", "4m") as (b, state):
        first = dp_generation(b)
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL),
                             "--confirm-timeout", "6")
        assert rc == 0, err
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        rc, out, err = b.ctl("confirm")
        assert rc == 4 and "persist_failed" in err and "still reverts" in err, (rc, out, err)
        assert b.status()["confirm"]["generation"] == 2
        wait_for(lambda: dp_generation(b)["hash"] == first["hash"], timeout=20, what="the revert")


def test_a_spent_confirm_record_is_not_corruption(tmp_path):
    """regiond stopped between recording the automatic revert and clearing
    the confirm record: the record names an older generation; it starts."""
    b = Box(tmp_path, "st-spent")
    try:
        for n in range(2):
            rc, _, err = b.ctl("apply", demo_variant(tmp_path, f"v{n}.yaml", "ingress table",
                                                    f"ingress table v{n}"))
            assert rc == 0, err
        b.rd.terminate()
        b.rd.wait(30)
        hist = os.path.join(b.state, "history.json")
        h = json.load(open(hist))
        h["confirm"] = {"generation": 2, "revert_to": 1, "deadline": 0}
        json.dump(h, open(hist, "w"))
        before = dp_generation(b)
        b.start_regiond()
        assert b.gen() == 3 and dp_generation(b) == before
        assert b.status()["confirm"] is None
    finally:
        b.stop()


def test_a_commit_confirm_change_cut_short_by_a_crash_still_reverts(tmp_path):
    """The confirmation of a confirm_timeout_s change was recorded only after
    the change was committed, by a write of its own: regiond killed once
    regionfwd ran the change (its write-ahead record then resolved as
    current at the restart), or between its commit and that write, came
    back with the change current and nothing awaiting confirmation: it
    never reverted. The confirmation is written ahead with the change now."""
    from test_hung_dataplane import PushAnswerEater  # it imports this module

    b = Box(tmp_path, "st-cc-crash")
    proxy = None
    try:
        first = dp_generation(b)
        b.rd.terminate()
        b.rd.wait(30)
        real = b.fwd_sock
        # regionfwd runs the change, regiond never hears so
        proxy = PushAnswerEater(str(tmp_path / "proxy.sock"), real)
        proxy.eat = True
        b.fwd_sock = str(tmp_path / "proxy.sock")
        try:
            b.start_regiond()
        finally:
            b.fwd_sock = real
        apply = subprocess.Popen([REGIONCTL, "-s", b.api, "apply", "--confirm-timeout", "4",
                                  demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: proxy.eaten and dp_generation(b)["id"] == 2, timeout=30,
                     what="regionfwd runs the change")
            h = json.load(open(os.path.join(b.state, "history.json")))
            assert h["pending"]["id"] == 2, h
        finally:
            b.rd.kill()
            b.rd.wait(30)
            apply.wait(30)
        proxy.close()
        # regionfwd out of reach: the change stays undecided, and a confirm
        # of it is refused, not logged as kept (a review)
        rd = subprocess.Popen([REGIOND, "--dataplane", str(tmp_path / "nowhere.sock"), "--api-socket", b.api,
                               "--state-dir", b.state, "--table", DEMO], stdout=b.rd_log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: isinstance(b.ctl("status", json_out=True)[1], dict), what="regiond up, alone")
            code, r = b.http("POST", "/v1/confirm", {})
            assert code == 503 and r["error"]["code"] == "dataplane_unavailable", r
            assert "confirm it then" in r["error"]["reason"], r
        finally:
            rd.terminate()
            rd.wait(30)
        b.start_regiond()
        s = b.status()
        # Still awaiting its confirmation, unless the 4 s ran out during the
        # restarts (the sanitizer stage's load): then it has been reverted
        # already, which only the confirmation written ahead can cause.
        if s["generation"]["id"] == 2:
            assert s["confirm"] and s["confirm"]["generation"] == 2, s
            assert s["confirm"]["revert_to"] == 1, s
        s = wait_for(lambda: (lambda st: st if st["generation"]["id"] == 3 else None)(b.status()), timeout=20,
                     what="the automatic revert")
        assert "not confirmed in time" in s["generation"]["comment"] and s["confirm"] is None, s
        assert dp_generation(b)["hash"] == first["hash"]
    finally:
        if proxy:
            proxy.close()
        b.stop()


def test_a_backup_restored_from_inside_a_confirm_window(tmp_path):
    """A state directory restored from a backup taken while a change awaited
    confirmation, older than what regionfwd runs: regiond took on what
    regionfwd runs, but kept the old confirmation, so until its deadline
    status said that generation would revert and every write was refused
    as confirm_pending (a probe). Another generation current means nothing
    to confirm or revert: dropped at once, and said."""
    import shutil
    b = Box(tmp_path, "st-bak-confirm")
    try:
        rc, out, err = b.ctl("apply", demo_variant(tmp_path, "sg-local.yaml", *SG_LOCAL),
                             "--confirm-timeout", "600")
        assert rc == 0 and "confirm within" in out, (out, err)
        shutil.copytree(b.state, tmp_path / "state.bak", symlinks=True)
        assert b.ctl("confirm", "2")[0] == 0
        rc, out, err = b.ctl("link", "down", "to-br")
        assert rc == 0 and "generation 3" in out, (out, err)
        b.rd.terminate()
        b.rd.wait(30)
        shutil.rmtree(b.state)
        shutil.copytree(tmp_path / "state.bak", b.state, symlinks=True)
        b.start_regiond()
        wait_for(lambda: b.status()["dataplane"]["in_sync"] and b.status()["confirm"] is None, timeout=30,
                 what="what regionfwd runs taken on, the confirmation dropped")
        assert "generation 2 awaited confirmation, but generation 3 runs now: nothing to confirm or revert" \
            in open(tmp_path / "regiond.log").read()
        rc, out, err = b.ctl("link", "up", "to-br")
        assert rc == 0, (out, err)
    finally:
        b.stop()


def test_temporary_files_a_crash_left_are_removed_at_start(tmp_path):
    """A write a crash cut short (kill -9 between writing a document's
    temporary file and renaming it) left ".gen-N.doc.PID.tmp", a whole
    document, for good: nothing removed it, and on a small state disk they
    add up (a probe). Removed at the next start, and said; files of other
    names stay."""
    b = Box(tmp_path, "st-tmp")
    try:
        b.rd.terminate()
        b.rd.wait(30)
        state = tmp_path / "state"
        left = [state / ".gen-9.doc.12345.tmp", state / ".history.json.777.tmp"]
        kept = [state / ".notes", state / "x.tmp", state / ".gen.tmp", state / ".a.b.tmp"]
        for p in left + kept:
            p.write_text("x" * 100)
        b.start_regiond()
        assert not any(p.exists() for p in left) and all(p.exists() for p in kept)
        log = open(tmp_path / "regiond.log").read()
        assert f"{left[0]}: a write a crash cut short left it: removed" in log, log
        assert b.gen() == 1 and b.status()["alarm"] is None
    finally:
        b.stop()
