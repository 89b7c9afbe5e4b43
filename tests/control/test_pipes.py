"""regionctl in shell pipelines and scripts: its output on a full disk or to
a reader that went away. A command whose output is lost says so and exits
4, never 0 (`regionctl show table > backup.yaml` on a full disk once exited
0 with the file empty); a live command (capture without --count, top) ends
when its output cannot be written, instead of printing into nothing for
ever while holding the one capture slot; a reader gone ends it by SIGPIPE,
silent, as it ends any command of a shell."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from test_e2e import box  # noqa: E402,F401
from test_log import fake_regiond, pcapng_block, regionctl  # noqa: E402

import struct  # noqa: E402

HISTORY = {"history": [{"id": 7, "time": 1796000000, "hash": "00112233aabbccdd",
                        "author": "alice", "comment": "a change", "by": "uid 0"}]}


def test_output_on_a_full_disk_is_an_error(tmp_path):
    """stdout on /dev/full: text (through the escaping stream), JSON and
    help alike say why, exit 4."""
    path = str(tmp_path / "api.sock")
    body = json.dumps(HISTORY).encode()
    srv = fake_regiond(path, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                       b"Connection: close\r\n\r\n" % len(body), body)
    try:
        for args in (["history"], ["-j", "history"], ["--help"], ["apply", "--help"]):
            with open("/dev/full", "w") as full:
                p = subprocess.run([regionctl(), "-s", path] + args, stdout=full,
                                   stderr=subprocess.PIPE, text=True, timeout=30)
            assert p.returncode == 4, (args, p.returncode, p.stderr)
            assert p.stderr == "regionctl: cannot write to stdout: No space left on device\n", (args, p.stderr)
            # and the same command to a file that takes it exits 0
            p = subprocess.run([regionctl(), "-s", path] + args, capture_output=True, text=True,
                               timeout=30)
            assert p.returncode == 0 and p.stdout and not p.stderr, (args, p)
            # A closed stdout (`>&-`) alike: it once exited 0, its output
            # written into /dev/null.
            p = subprocess.run([regionctl(), "-s", path] + args, preexec_fn=lambda: os.close(1),
                               stderr=subprocess.PIPE, text=True, timeout=30)
            assert p.returncode == 4, (args, p.returncode, p.stderr)
            assert p.stderr == "regionctl: cannot write to stdout: it was closed\n", (args, p.stderr)
    finally:
        srv.close()


def endless_capture(path):
    """A fake regiond that streams a capture for as long as its client
    reads: a packet every 10 ms. Returns (listening socket, an Event set
    once the client's connection is closed)."""
    ip = bytes.fromhex("4500001c0001000040110000") + bytes([10, 0, 0, 1, 10, 0, 0, 2])
    frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + struct.pack(">HHHH", 1234, 53, 8, 0)
    ts = 1796000000 * 10**9
    epb = pcapng_block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xffffffff, len(frame), len(frame)) +
                       frame + b"\0" * (-len(frame) % 4))
    start = (pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) +
             pcapng_block(1, struct.pack("<HHI", 1, 0, 65535)))
    closed = threading.Event()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)

    def chunk(b):
        return b"%x\r\n%s\r\n" % (len(b), b)

    def serve():
        c, _ = srv.accept()
        with c:
            req = b""
            while b"\r\n\r\n" not in req:
                req += c.recv(4096)
            try:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-pcapng\r\n"
                          b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunk(start))
                while True:
                    c.sendall(chunk(epb * 4))
                    time.sleep(0.01)
            except OSError:
                closed.set()

    threading.Thread(target=serve, daemon=True).start()
    return srv, closed


def test_a_capture_whose_reader_goes_away_ends_and_stops(tmp_path):
    """regionctl capture | head -1: once head has exited, regionctl once
    printed into the closed pipe for ever (SIGPIPE ignored for the
    capture's socket), so the capture never ended and every other was
    refused capture_busy. It now ends by SIGPIPE, silent, its connection
    closed (regiond then stops the capture); -j and -w - alike."""
    for i, args in enumerate((["capture"], ["-j", "capture"], ["capture", "-w", "-"])):
        path = str(tmp_path / f"api{i}.sock")
        srv, closed = endless_capture(path)
        try:
            p = subprocess.Popen([regionctl(), "-s", path] + args, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            assert p.stdout.read(1)  # the reader takes a little, then goes away
            p.stdout.close()
            try:
                rc = p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError(f"{args}: regionctl went on capturing into a closed pipe")
            err = p.stderr.read()
            p.stderr.close()
            assert rc == -signal.SIGPIPE, (args, rc, err)
            assert b"Broken pipe" not in err, (args, err)
            assert closed.wait(20), args  # the capture's connection is closed
        finally:
            srv.close()


def test_a_capture_on_a_full_disk_ends_and_says_so(tmp_path):
    """capture > /dev/full, without --count: it once ran for ever, silent,
    holding the capture slot; now it stops at the first line it cannot
    write, says why, exits 4."""
    for i, args in enumerate((["capture"], ["-j", "capture"])):
        path = str(tmp_path / f"api{i}.sock")
        srv, closed = endless_capture(path)
        try:
            with open("/dev/full", "w") as full:
                p = subprocess.run([regionctl(), "-s", path] + args, stdout=full,
                                   stderr=subprocess.PIPE, text=True, timeout=30)
            assert p.returncode == 4, (args, p.returncode, p.stderr)
            assert "regionctl: cannot write to stdout: No space left on device" in p.stderr, p.stderr
            assert closed.wait(20), args
        finally:
            srv.close()


def test_top_on_a_full_disk_ends_and_says_so(box):  # noqa: F811
    """top without --count to /dev/full printed its frames into nothing
    for ever, exit never; now it stops, says why, exits 4. Piped into
    head, it ends by SIGPIPE, silent."""
    for args in (["top", "--interval", "0.2"], ["-j", "top", "--interval", "0.2"]):
        with open("/dev/full", "w") as full:
            try:
                p = subprocess.run([regionctl(), "-s", box.api] + args, stdout=full,
                                   stderr=subprocess.PIPE, text=True, timeout=60)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{args}: top went on printing to a full disk")
        assert p.returncode == 4, (args, p.returncode, p.stderr)
        assert p.stderr == "regionctl: cannot write to stdout: No space left on device\n", p.stderr
        p = subprocess.Popen([regionctl(), "-s", box.api] + args, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        assert p.stdout.readline()
        p.stdout.close()
        rc = p.wait(timeout=60)
        err = p.stderr.read()
        p.stderr.close()
        assert rc == -signal.SIGPIPE and not err, (args, rc, err)


def test_a_write_answered_with_something_else_is_not_a_success(tmp_path):
    """A write sent whole and answered with what is not the API's answer:
    a 200 with {} or [] (another service behind --url) once printed 'no
    change, generation 0 already has this table' and exited 0; a
    connection closed unanswered (a regiond that died mid-write) exited 3,
    'nothing changed', which a script retries. Both are 5 now, outcome
    unknown, as docs/regionctl.md says; a read of such an answer stays 3."""
    prefixes = tmp_path / "p.txt"
    prefixes.write_text("10.1.0.0/16\n")
    writes = [["confirm"], ["rollback", "--expected-generation", "3"], ["prefixes", "add", "india", str(prefixes)]]

    def ok(body):
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n%s" % (len(body), body))

    for i, (answer, read_rc) in enumerate([(ok(b"{}"), None), (ok(b"[]"), None), (ok(b"hello"), 3),
                                           (b"", 3), (b"garbage\r\n\r\n", 3)]):
        path = str(tmp_path / f"api{i}.sock")
        srv = fake_regiond(path, answer, b"")
        try:
            for args in writes:
                for j in ([], ["-j"]):
                    p = subprocess.run([regionctl(), "-s", path] + j + args, capture_output=True, text=True,
                                       timeout=60)
                    assert p.returncode == 5, (answer, args, p.returncode, p.stdout, p.stderr)
                    assert "may or may not have been applied" in p.stderr, (answer, args, p.stderr)
                    assert "no change" not in p.stdout, p.stdout
            if read_rc:
                p = subprocess.run([regionctl(), "-s", path, "history"], capture_output=True, text=True,
                                   timeout=60)
                assert p.returncode == read_rc, (answer, p.returncode, p.stderr)
        finally:
            srv.close()


def test_a_capture_answered_with_something_else_is_not_a_success(tmp_path):
    """A capture answered 200 with what is not pcapng (JSON of another
    service, a word) once said 'capture: 0 packets' and exited 0, as an
    idle box's does."""
    for i, body in enumerate((b"{}", b"hello", b'{"captured": 12}')):
        path = str(tmp_path / f"api{i}.sock")
        srv = fake_regiond(path, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                           b"Connection: close\r\n\r\n%s" % (len(body), body), b"")
        try:
            for args in (["capture", "--count", "1"], ["-j", "capture", "--count", "1"],
                         ["capture", "--count", "1", "-w", str(tmp_path / "c.pcapng")]):
                p = subprocess.run([regionctl(), "-s", path] + args, capture_output=True, text=True, timeout=60)
                assert p.returncode == 4, (body, args, p.returncode, p.stderr)
                assert "regiond sent something that is not pcapng" in p.stderr, p.stderr
                # and its summary, when there is one, does not read as a quiet capture
                if "-j" not in args:
                    assert "capture: 0 packets" not in p.stdout + p.stderr or \
                        "(incomplete: the error above)" in p.stdout + p.stderr, (p.stdout, p.stderr)
        finally:
            srv.close()


def test_a_capture_file_is_created_for_its_owner_alone(tmp_path):
    """capture -w FILE holds the customers' payload: it was created 0644
    (every local user could read it); now 0600, narrowed further by the
    umask, never widened. A file already there keeps its mode."""
    path = str(tmp_path / "api.sock")
    ip = bytes.fromhex("4500001c000100004011f9d7") + bytes([10, 0, 0, 1, 10, 0, 0, 2])
    frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + struct.pack(">HHHH", 1234, 53, 8, 0)
    ts = 1796000000 * 10**9
    stream = (pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) +
              pcapng_block(1, struct.pack("<HHI", 1, 0, 65535)) +
              pcapng_block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xffffffff, len(frame), len(frame)) +
                           frame + b"\0" * (-len(frame) % 4)))
    srv = fake_regiond(path, b"HTTP/1.1 200 OK\r\nContent-Type: application/x-pcapng\r\n"
                       b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                       b"%x\r\n%s\r\n0\r\n\r\n" % (len(stream), stream))
    try:
        for umask, mode in ((0o022, 0o600), (0o000, 0o600), (0o077, 0o600), (0o277, 0o400)):
            f = tmp_path / f"cap-{umask:03o}.pcapng"
            p = subprocess.run([regionctl(), "-s", path, "capture", "--count", "1", "-w", str(f)],
                               capture_output=True, text=True, timeout=30,
                               preexec_fn=lambda u=umask: os.umask(u))
            assert p.returncode == 0, (umask, p.stderr)
            assert f.read_bytes() == stream
            assert f.stat().st_mode & 0o7777 == mode, (umask, oct(f.stat().st_mode))
        f = tmp_path / "kept.pcapng"
        f.write_bytes(b"")
        f.chmod(0o640)
        p = subprocess.run([regionctl(), "-s", path, "capture", "--count", "1", "-w", str(f)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and f.read_bytes() == stream, p.stderr
        assert f.stat().st_mode & 0o7777 == 0o640
    finally:
        srv.close()
