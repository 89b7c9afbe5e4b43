"""regiond's log: every line timestamped with its level, and each change to
policy (applied, refused, rolled back, confirmed, reverted) logged exactly
once with generation, author, client and request. --log journal and syslog
need a journald or syslogd, which the test machines do not run; their
choice is checked, their delivery is not."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from test_e2e import DEMO, REGIOND, box  # noqa: E402,F401
from httpfake import scripted_regiond  # noqa: E402

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (err|warning|notice|info|debug) regiond: ")


def log_of(box):
    box.rd_log.flush()
    return open(box.tmp / "regiond.log").read()


def test_each_change_logged_once(box, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(open(DEMO).read().replace("to: to-sg", "to: nowhere"))
    good = tmp_path / "good.yaml"
    good.write_text(open(DEMO).read().replace("to: to-sg", "to: local"))
    env = dict(os.environ, USER="alice")
    ctl = [os.environ.get("REGIONCTL", os.path.join(os.path.dirname(REGIOND), "regionctl")), "-s", box.api]
    assert subprocess.run(ctl + ["apply", str(bad)], env=env, capture_output=True).returncode != 0
    assert subprocess.run(ctl + ["apply", str(good), "--comment", "serve sg here"], env=env,
                          capture_output=True).returncode == 0
    assert subprocess.run(ctl + ["rollback"], env=env, capture_output=True).returncode == 0
    log = log_of(box)
    for line in log.splitlines():
        assert LINE.match(line), line
    refused = [ln for ln in log.splitlines() if "change refused" in ln]
    assert len(refused) == 1, log
    assert re.search(r" warning regiond: change refused, generation 1 stays: uid \d+ pid \d+ on the unix socket \(PUT /v1/table\), "
                     r"author 'alice': .*nowhere", refused[0]), refused[0]
    applied = [ln for ln in log.splitlines() if " applied by uid " in ln]  # generation 1 is regiond's seed
    assert len(applied) == 1 and re.search(
        r" notice regiond: generation 2 \([0-9a-f]{16}\) applied by uid \d+ pid \d+ on the unix socket \(PUT /v1/table\), "
        r"author 'alice': serve sg here$", applied[0]), applied
    rolled = [ln for ln in log.splitlines() if " rolled back by " in ln]
    assert len(rolled) == 1 and "generation 3 (" in rolled[0] and "(POST /v1/rollback)" in rolled[0] \
        and "rollback to generation 1" in rolled[0], rolled


def test_log_options(tmp_path):
    p = subprocess.run([REGIOND, "--dataplane", "/nonexistent.sock", "--log", "console"], capture_output=True,
                       text=True)
    assert p.returncode == 2 and "--log takes stderr, journal or syslog" in p.stderr, p
    p = subprocess.run([REGIOND, "--dataplane", "/nonexistent.sock", "--log-level", "loud"], capture_output=True,
                       text=True)
    assert p.returncode == 2 and "--log-level takes err, warning, notice, info or debug" in p.stderr, p


def test_a_line_cannot_be_forged_through_a_refusal(box, tmp_path):
    """What a client sends ends up in the log (a refusal names the table's
    own words): control characters there are written as \\xNN, so a
    newline cannot start a forged line and an escape cannot reach a
    terminal."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(open(DEMO).read().replace(
        "to: to-sg", 'to: "no\\ewhere\\n2026-12-01T00:00:00.000Z notice regiond: FAKE"', 1))
    ctl = [os.environ.get("REGIONCTL", os.path.join(os.path.dirname(REGIOND), "regionctl")), "-s", box.api]
    p = subprocess.run(ctl + ["apply", str(bad)], capture_output=True, text=True)
    assert p.returncode != 0, p
    log = log_of(box)
    for line in log.splitlines():
        assert LINE.match(line), line
    assert "\x1b" not in log
    refused = [ln for ln in log.splitlines() if "change refused" in ln]
    assert len(refused) == 1 and "no\\x1bwhere\\x0a2026-12-01T00:00:00.000Z notice regiond: FAKE" in refused[0], refused


def test_c1_controls_and_separators_never_reach_the_log_raw(box):
    """C1 controls are control characters too: U+009B is CSI, which a
    terminal acts on as it does on ESC [. An author or comment holding one,
    or U+2028/U+2029 (which break a line for many log readers), is refused;
    the refusal's line shows the author's bytes as \\xNN. A refused batch's
    author is cut to fit at a character's start, never inside one. Text in
    other languages is logged and kept in the history as it is."""
    doc = open(DEMO).read().replace("to: to-sg", "to: local")
    code, r = box.http("PUT", "/v1/table", {"document": doc, "expected_generation": 1,
                                           "author": "evil\u009b31m", "comment": "x"})
    assert code == 400 and r["error"]["path"] == "author", r
    code, r = box.http("PUT", "/v1/table", {"document": doc, "expected_generation": 1,
                                           "author": "bob", "comment": "x\u2028y"})
    assert code == 400 and r["error"]["path"] == "comment", r
    code, r = box.http("POST", "/v1/prefixes", {"author": "\u00e9" * 40, "changes": [
        {"region": "india", "add": ["10.8.0.0/16"]}]})
    assert code == 400 and r["error"]["path"] == "author", r
    code, r = box.http("PUT", "/v1/table", {"document": doc, "expected_generation": 1,
                                           "author": "Jos\u00e9", "comment": "\u6f22\u5b57"})
    assert code == 200, r
    box.rd_log.flush()
    raw = (box.tmp / "regiond.log").read_bytes()
    assert b"\xc2\x9b" not in raw and b"\xe2\x80\xa8" not in raw, raw
    log = raw.decode("utf-8")  # no byte cut from its character
    for line in log.splitlines():
        assert LINE.match(line), line
    refused = [ln for ln in log.splitlines() if "change refused" in ln]
    assert len(refused) == 3, refused
    assert refused[0].endswith("(PUT /v1/table), author 'evil\\xc2\\x9b31m': 'author' must be one line of "
                               "text: U+009B at offset 4 is a control character"), refused[0]
    assert refused[1].endswith("(PUT /v1/table), author 'bob': 'comment' must be one line of text: U+2028 "
                               "at offset 1 is a line separator"), refused[1]
    assert f"(POST /v1/prefixes), author '{chr(0xe9) * 31}': " in refused[2], refused[2]
    applied = [ln for ln in log.splitlines() if " applied by uid " in ln]
    assert len(applied) == 1 and applied[0].endswith("author 'Jos\u00e9': \u6f22\u5b57"), applied
    rc, out, err = box.ctl("history")
    assert rc == 0 and "Jos\u00e9" in out and "\u6f22\u5b57" in out, (out, err)


def fake_regiond(path, head, body):
    """A regiond on @path that reads every request (its head and the body
    its Content-Length announces) and answers it with @head and @body, or
    closes it unanswered when both are b""; returns the listening socket
    (close it to stop)."""
    return scripted_regiond(path, lambda c: c.sendall(head + body))


def regionctl():
    return os.environ.get("REGIONCTL", os.path.join(os.path.dirname(REGIOND), "regionctl"))


def test_regionctl_text_never_carries_a_daemons_controls_raw(tmp_path):
    """regionctl's text quotes what regiond answers: an author or comment
    saved before regiond refused such characters, or a daemon that is not
    what it should be. A fake regiond answers with ESC, CSI (U+009B), a line
    separator: the text shows each of their bytes as \\xNN,
    other languages as they are; -j gives the strings as the API holds them."""
    import json
    path = str(tmp_path / "api.sock")
    history = {"history": [{"id": 7, "time": 1796000000, "hash": "00112233aabbccdd",
                            "author": "evil\x1b[2J\u009b31m", "comment": "a\u2028b Jos\u00e9 \u6f22",
                            "by": "x\u2029y"}]}
    body = json.dumps(history).encode()
    srv = fake_regiond(path, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                       b"Connection: close\r\n\r\n" % len(body), body)
    ctl = regionctl()
    try:
        p = subprocess.run([ctl, "-s", path, "history"], capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        out = p.stdout
        for raw in (b"\x1b", b"\xc2\x9b", b"\xe2\x80\xa8", b"\xe2\x80\xa9"):
            assert raw not in out, out
        assert b"evil\\x1b[2J\\xc2\\x9b31m" in out, out
        assert "a\\xe2\\x80\\xa8b Jos\u00e9 \u6f22".encode() in out, out
        assert b"[by x\\xe2\\x80\\xa9y]" in out, out
        p = subprocess.run([ctl, "-s", path, "-j", "history"], capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout) == history
    finally:
        srv.close()


def pcapng_block(btype, body):
    import struct
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def pcapng_comment(text):
    import struct
    raw = text.encode()
    return struct.pack("<HH", 1, len(raw)) + raw + b"\0" * (-len(raw) % 4) + struct.pack("<HH", 0, 0)


def test_regionctl_capture_text_never_carries_a_daemons_controls_raw(tmp_path):
    """capture's text (a line a packet, the summary with the statistics
    blocks' comments) quotes the pcapng regiond streams: a fake regiond puts
    ESC, CSI and a line separator in a packet's comment and in the
    statistics comment. The text escapes them; -w - writes the pcapng
    byte for byte (it is not text); -j keeps the strings."""
    import json
    import struct
    path = str(tmp_path / "api.sock")
    ip = bytearray(bytes.fromhex("4500001c000100004011") + b"\0\0" + bytes([10, 0, 0, 1, 10, 0, 0, 2]))
    total = sum(struct.unpack(">10H", ip))
    total = (total & 0xffff) + (total >> 16)
    ip[10:12] = struct.pack(">H", ~total & 0xffff)
    frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + bytes(ip) + struct.pack(">HHHH", 1234, 53, 8, 0)
    ts = 1796000000 * 10**9
    stream = (pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) +
              pcapng_block(1, struct.pack("<HHI", 1, 0, 65535) +
                           struct.pack("<HHB", 9, 1, 9) + b"\0\0\0" + struct.pack("<HH", 0, 0)) +
              pcapng_block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xffffffff, len(frame), len(frame)) +
                           frame + b"\0" * (-len(frame) % 4) +
                           pcapng_comment("rx fwd link=evil\x1b[2J\u009b31m x\u2028y")) +
              pcapng_block(5, struct.pack("<III", 0, ts >> 32, ts & 0xffffffff) +
                           pcapng_comment("lost 0\x1b]0;owned\x07 \u2029end")))
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(stream), stream)
    srv = fake_regiond(path, b"HTTP/1.1 200 OK\r\nContent-Type: application/x-pcapng\r\n"
                       b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", chunked)
    ctl = regionctl()
    raws = (b"\x1b", b"\x07", b"\xc2\x9b", b"\xe2\x80\xa8", b"\xe2\x80\xa9")
    try:
        p = subprocess.run([ctl, "-s", path, "capture", "--count", "1"], capture_output=True,
                           timeout=30)
        assert p.returncode == 0, p.stderr
        for raw in raws:
            assert raw not in p.stdout, p.stdout
            assert raw not in p.stderr, p.stderr
        assert b"udp 10.0.0.1:1234 > 10.0.0.2:53 len 42" in p.stdout, p.stdout
        assert b"link=evil\\x1b[2J\\xc2\\x9b31m x\\xe2\\x80\\xa8y" in p.stdout, p.stdout
        assert b"capture: 1 packets" in p.stderr, p.stderr
        assert b"lost 0\\x1b]0;owned\\x07 \\xe2\\x80\\xa9end" in p.stderr, p.stderr

        p = subprocess.run([ctl, "-s", path, "capture", "--count", "1", "-w", "-"],
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert p.stdout == stream
        for raw in raws:
            assert raw not in p.stderr, p.stderr

        p = subprocess.run([ctl, "-s", path, "-j", "capture", "--count", "1"],
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        lines = [json.loads(x) for x in p.stdout.split(b"\n") if x]
        assert lines[0]["comment"] == "rx fwd link=evil\x1b[2J\u009b31m x\u2028y", lines
    finally:
        srv.close()


def test_a_change_without_an_author_or_a_comment_says_so(box):
    """A write refused before its author was read was logged "author ''",
    and an API change without a comment ended its line with "author 'api': "
    and nothing after. Now: "no author", and no colon with nothing after.
    A write refused after its body was read, naming no author, is the API's
    as an accepted one is (it was once "no author" too)."""
    doc = open(DEMO).read().replace("to: to-sg", "to: local")
    assert box.http("PUT", "/v1/table", raw=b"{")[0] == 400
    assert box.http("PUT", "/v1/table", {"document": doc + "\nbogus: 1\n"})[0] == 400
    assert box.http("POST", "/v1/prefixes", {"changes": [{"region": "nowhere", "add": ["10.9.0.0/16"]}]})[0] == 422
    assert box.http("POST", "/v1/prefixes", raw=b'{"changes": [')[0] == 400
    code, r = box.http("PUT", "/v1/table", {"document": doc, "expected_generation": 1})
    assert code == 200, r
    log = log_of(box).splitlines()
    refused = [ln for ln in log if "change refused" in ln]
    assert len(refused) == 4, refused
    assert re.search(r"\(PUT /v1/table\), no author: \S", refused[0]), refused
    assert re.search(r"\(PUT /v1/table\), author 'api': \S", refused[1]), refused
    assert re.search(r"\(POST /v1/prefixes\), author 'api': \S", refused[2]), refused
    assert re.search(r"\(POST /v1/prefixes\), no author: \S", refused[3]), refused
    applied = [ln for ln in log if " applied by uid " in ln]
    assert len(applied) == 1 and applied[0].endswith("(PUT /v1/table), author 'api'"), applied
    assert not any("author ''" in ln or ln.endswith(": ") for ln in log), log
