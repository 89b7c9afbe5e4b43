"""regionctl's help and usage errors, without a regiond.

The commands come from 'regionctl --help' itself, so a command added to the
table is covered here without touching this file; KNOWN only makes sure none
disappears. Help must never run the command: a unix socket that nobody
answers records whether regionctl tried to connect.
"""
import json
import os
import re
import socket
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from memcap import capped  # noqa: E402
from latewriter import write_later  # noqa: E402

BUILD = os.path.join(os.path.dirname(__file__), "..", "..", "build")
# The binary itself, also under ASan (REGIONCTL may be a wrapper without
# LeakSanitizer, tests/lib/regionctl-noleaks): the CLI's own tests check leaks.
REGIONCTL = os.environ.get("REGIONCTL_BIN") or os.environ.get("REGIONCTL", os.path.join(BUILD, "control", "regionctl"))

KNOWN = ["status", "show regions", "show services", "show links", "show policies", "show table",
         "explain", "counters", "drops", "validate", "diff", "apply", "confirm", "rollback", "history",
         "filter status", "filter detach", "prefixes add", "prefixes remove", "prefixes list", "help"]


def ctl(*args, env=None):
    return subprocess.run([REGIONCTL, *args], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, **(env or {})))


def listed_commands():
    """The names in the 'commands:' block of the top-level help, e.g. 'show links'."""
    p = ctl("--help")
    assert p.returncode == 0 and "\ncommands:\n" in p.stdout, (p.stdout, p.stderr)
    block = p.stdout.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    return [re.split(r"\s{2,}", line.strip())[0] for line in block.splitlines()]


COMMANDS = listed_commands()
PARENTS = sorted({c.split()[0] for c in COMMANDS if " " in c})


@pytest.fixture
def listener(tmp_path):
    """A unix socket that accepts nothing: any connection regionctl makes waits in its backlog."""
    path = str(tmp_path / "api.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    s.setblocking(False)
    yield path, s
    s.close()


def connected(s):
    try:
        conn, _ = s.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_listing_has_every_known_command():
    assert set(KNOWN) <= set(COMMANDS), set(KNOWN) - set(COMMANDS)
    assert len(COMMANDS) == len(set(COMMANDS))


@pytest.mark.parametrize("spelling", [["--help"], ["-h"], ["help"], [], ["-j", "--help"]])
def test_top_level_help(spelling):
    p = ctl(*spelling)
    if spelling:
        assert p.returncode == 0 and p.stdout.startswith("usage: regionctl "), p
    else:  # no command at all: the same listing, as a usage error
        assert p.returncode == 2 and p.stderr.startswith("usage: regionctl ") and p.stdout == ""
    out = p.stdout or p.stderr
    for opt in ("-s SOCK", "--url", "--token-file", "-j, --json"):
        assert opt in out


@pytest.mark.parametrize("cmd", COMMANDS + PARENTS)
def test_command_help(cmd):
    words = cmd.split()
    p = ctl(*words, "--help")
    assert p.returncode == 0 and p.stderr == "", p
    assert re.match(rf"usage: regionctl {re.escape(cmd)}(\s|$)", p.stdout), p.stdout
    assert ctl(*words, "-h").stdout == p.stdout
    assert ctl("help", *words).stdout == p.stdout
    assert ctl("--help", *words).stdout == p.stdout


@pytest.mark.parametrize("parent", PARENTS)
def test_parent_help_lists_its_subcommands(parent):
    out = ctl(parent, "--help").stdout
    subs = [c.split()[1] for c in COMMANDS if c.split()[0] == parent]
    assert f"usage: regionctl {parent} {'|'.join(subs)}\n" in out
    for s in subs:
        assert re.search(rf"^  {s}\s", out, re.M), out


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_never_runs_the_command(cmd, listener, tmp_path):
    path, s = listener
    table = tmp_path / "t.yaml"
    table.write_text("not: a table\n")
    # Arguments that would be valid (or at least reach regiond) without --help.
    args = {"explain": ["1.1.1.1", "2.2.2.2", "tcp", "80"], "validate": [str(table)], "diff": [str(table)],
            "apply": [str(table)], "rollback": ["1"], "prefixes add": ["india", str(table)],
            "prefixes remove": ["india", "-"], "prefixes list": ["india"]}.get(cmd, [])
    for where in ("after", "before", "middle"):
        line = {"after": [*cmd.split(), *args, "--help"], "before": ["--help", *cmd.split(), *args],
                "middle": [*cmd.split(), "--help", *args]}[where]
        p = ctl("-s", path, *line)
        assert p.returncode == 0 and p.stdout.startswith(f"usage: regionctl {cmd}"), (where, p)
        assert not connected(s), f"'{' '.join(line)}' contacted regiond"


@pytest.mark.parametrize("cmd", ["rollback", "apply", "validate", "diff"])
def test_help_with_no_regiond(cmd):
    for line in ([cmd, "--help"], [cmd, "-h"], [cmd, "--help", "--no-such-option", "x", "y", "z"]):
        p = ctl("-s", "/nonexistent.sock", *line)
        assert p.returncode == 0 and p.stdout.startswith(f"usage: regionctl {cmd}"), p
        assert "cannot open" not in p.stderr and "not a generation" not in p.stderr


def test_listener_sees_a_real_command(listener):
    """The check above means something: a command that is run does connect."""
    path, s = listener
    p = subprocess.Popen([REGIONCTL, "-s", path, "status"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        s.setblocking(True)
        s.settimeout(10)
        conn, _ = s.accept()
        conn.close()
        assert p.wait(timeout=10) == 2  # status: health, 2 unreachable
    finally:
        p.kill()
        p.wait()


def test_global_options_after_the_command(listener):
    path, s = listener
    p = subprocess.Popen([REGIONCTL, "status", "-j", "-s", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        s.setblocking(True)
        s.settimeout(10)
        conn, _ = s.accept()
        conn.close()
        p.wait(timeout=10)
    finally:
        p.kill()
        p.wait()


def usage_error(args, *words):
    p = ctl("-s", "/nonexistent.sock", *args)
    assert p.returncode == 2, p
    assert p.stdout == "", p
    first = p.stderr.splitlines()[0]
    for w in words:
        assert w in first, (w, p.stderr)
    return p.stderr


@pytest.mark.parametrize("word", ["nosuch", "statu", "--frob"])
def test_unknown_command_or_global_option(word):
    err = usage_error([word], f"'{word}'")
    assert "See 'regionctl --help'." in err
    assert "unknown command" in err or "unknown option" in err


def test_help_of_unknown_command():
    assert "See 'regionctl --help'." in usage_error(["help", "nosuch"], "'nosuch'", "unknown command")
    usage_error(["nosuch", "--help"], "'nosuch'", "unknown command")
    usage_error(["show", "nosuch", "--help"], "regionctl show:", "'nosuch'", "unknown subcommand")


@pytest.mark.parametrize("cmd", COMMANDS + PARENTS)
def test_unknown_option(cmd):
    err = usage_error([*cmd.split(), "--no-such-option"], f"regionctl {cmd}:", "'--no-such-option'",
                      "unknown option")
    assert f"See 'regionctl {cmd} --help'." in err


@pytest.mark.parametrize("cmd", COMMANDS)
def test_too_many_arguments(cmd):
    extra = [f"extra{i}" for i in range(8)]
    if cmd == "help":
        extra = ["show", "links", "extra0"]
    err = usage_error([*cmd.split(), *extra], f"regionctl {cmd}", "'extra")
    assert "unexpected" in err


@pytest.mark.parametrize("parent", PARENTS)
def test_missing_or_unknown_subcommand(parent):
    err = usage_error([parent], f"regionctl {parent}:", "missing subcommand")
    assert f"See 'regionctl {parent} --help'." in err
    usage_error([parent, "nothing"], f"regionctl {parent}:", "'nothing'", "unknown subcommand")


@pytest.mark.parametrize("args,words", [
    (["validate"], ["regionctl validate:", "missing argument FILE"]),
    (["diff"], ["regionctl diff:", "missing argument FILE"]),
    (["apply"], ["regionctl apply:", "missing argument FILE"]),
    (["apply", "--comment", "c"], ["regionctl apply:", "missing argument FILE"]),
    # required here though the API takes port 0: said as a rule, not a guess
    (["explain", "1.1.1.1", "2.2.2.2", "tcp"], ["regionctl explain:", "missing argument DPORT",
                                                "tcp, udp and sctp (6, 17, 132) need one"]),
    (["explain", "1.1.1.1", "2.2.2.2", "17"], ["regionctl explain:", "missing argument DPORT"]),
    (["explain", "1.1.1.1", "2.2.2.2"], ["regionctl explain:", "missing argument PROTO"]),
    (["explain", "1.1.1.1"], ["regionctl explain:", "missing argument DST"]),
    (["explain", "1.1.1.1", "2.2.2.2", "tcp", "1", "2", "3"], ["regionctl explain:", "'3'"]),
    (["rollback", "1", "2"], ["regionctl rollback:", "'2'"]),
    (["status", "extra"], ["regionctl status:", "'extra'"]),
    (["show", "links", "to-sg", "extra"], ["regionctl show links:", "'extra'"]),
    (["show", "policies", "extra"], ["regionctl show policies:", "'extra'"]),
    (["filter", "status", "extra"], ["regionctl filter status:", "'extra'"]),
    (["prefixes", "add", "india"], ["regionctl prefixes add:", "missing argument FILE"]),
    (["prefixes", "remove"], ["regionctl prefixes remove:", "missing argument REGION"]),
    (["prefixes", "list", "india", "x"], ["regionctl prefixes list:", "'x'"]),
])
def test_wrong_argument_count(args, words):
    usage_error(args, *words)


@pytest.mark.parametrize("args,words", [
    (["explain", "1.1.1.1", "2.2.2.2", "tcp", "80", "--sni"], ["'--sni' needs a value"]),
    (["apply", "t.yaml", "--comment"], ["'--comment' needs a value"]),
    (["-s"], ["'-s' needs a value"]),
    (["explain", "1.1.1.1", "2.2.2.2", "tcp", "99999"], ["'99999' is not a port (0..65535)"]),
    # PROTO as a number once went to regiond and came back 400 (exit 1)
    (["explain", "1.1.1.1", "2.2.2.2", "256", "1", "2"], ["PROTO '256' is not a protocol"]),
    (["explain", "1.1.1.1", "2.2.2.2", "+6", "1", "2"], ["PROTO '+6' is not a protocol", "decimal digits alone"]),
    (["rollback", "x"], ["'x' is not a generation"]),
    (["apply", "t.yaml", "--confirm-timeout", "2s"], ["--confirm-timeout takes seconds", "'2s'"]),
    (["apply", "t.yaml", "--confirm-timeout", "90000"], ["--confirm-timeout takes seconds", "'90000'"]),
    (["prefixes", "add", "india", "-", "--expected-generation", "-1"], ["--expected-generation", "'-1'"]),
    (["prefixes", "add", "no/such", "-"], ["'no/such' is not a region name"]),
])
def test_bad_values_are_usage_errors(args, words):
    usage_error(args, *words)


@pytest.mark.parametrize("args,shown", [
    (["\x1b[2Jx"], b"\\x1b"),
    (["show", "\x1b[2Jx"], b"\\x1b"),
    (["--timeout", "\x1b]0;owned\x07", "status"], b"\\x1b"),
    (["-s", "/nonexistent\x1b[31m.sock", "show", "links"], b"\\x1b"),
    # C1: U+009B is CSI (bytes c2 9b); a lone 0x9b (not UTF-8) is CSI to
    # a terminal in an 8-bit mode.
    (["\u009b2Jx"], b"\\xc2\\x9b2Jx"),
    (["show", "\u009d0;owned\u009c"], b"\\xc2\\x9d0;owned\\xc2\\x9c"),
    (["show", os.fsdecode(b"x\x9b2J")], b"x\\x9b2J"),
])
def test_arguments_echoed_in_errors_show_control_characters_escaped(args, shown):
    """regionctl's errors echo its arguments (a script may pass words it
    did not write): on the terminal, a control character (C0, DEL, C1) or
    a byte that is not UTF-8 is \\xNN, never a raw escape that clears the
    screen or retitles the window."""
    p = subprocess.run([REGIONCTL, *args], capture_output=True, timeout=30)
    assert p.returncode in (2, 3) and p.stderr, p
    assert not any(b < 0x20 and b not in b"\n\t" or b == 0x7f for b in p.stderr), p.stderr
    text = p.stderr.decode("utf-8")  # raises on a byte that is not UTF-8
    assert not any(0x80 <= ord(c) <= 0x9f for c in text), p.stderr
    assert shown in p.stderr, p.stderr


@pytest.mark.parametrize("args,shown", [
    (["link", "down", "a\nb"], b"'a\\x0ab' is not a link name"),
    (["fo\no"], b"unknown command 'fo\\x0ao'"),
    (["--timeout", "1\n2", "status"], b"not '1\\x0a2'"),
    (["rollback", "1\t2"], b"'1\\x092' is not a generation"),
    (["prefixes", "add", "re\ngion", "/dev/null"], b"'re\\x0agion' is not a region name"),
])
def test_a_newline_in_an_argument_does_not_split_its_error(args, shown):
    """A word with a newline or a tab, quoted in a usage error, is shown
    as \\xNN: its error stays one line, then the line naming the help, so
    a log or a script reading the first line gets the whole error."""
    p = subprocess.run([REGIONCTL, "-s", "/nonexistent.sock", *args], capture_output=True,
                       timeout=30)
    assert p.returncode == 2, p
    lines = p.stderr.split(b"\n")
    assert len(lines) == 3 and lines[2] == b"" and lines[1].startswith(b"See '"), p.stderr
    assert shown in lines[0], p.stderr


@pytest.mark.parametrize("url,why", [
    ("http://127.0.0.1:99999", "the URL's port '99999' is not in 1..65535"),
    ("http://127.0.0.1:0", "the URL's port '0' is not in 1..65535"),
    ("http://127.0.0.1:", "the URL's port '' is not in 1..65535"),
    ("http://127.0.0.1", "the URL has no :PORT"),
    ("http://:8080", "the URL has no host"),
    ("https://[::1]", "the URL has no :PORT"),
    ("http://[::1]8080", "the URL has '8080' after its host, not :PORT"),
    ("ftp://127.0.0.1:8080", ""),
])
def test_malformed_url_is_a_usage_error(url, why):
    """A URL that cannot be one exited 3, "cannot reach regiond", which a
    script takes for "try again"; it is the command line's fault: 2."""
    err = usage_error(["--url", url, "history"], "--url takes http://HOST:PORT or https://HOST:PORT",
                      f"'{url}'", why)
    assert "See 'regionctl --help'." in err and "cannot reach" not in err, err


def test_url_with_a_path_is_a_usage_error_and_connects_nowhere():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        s.setblocking(False)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        err = usage_error(["--url", url, "history"], "--url takes", f"'{url}'", "the URL has a path (/v1)")
        assert "cannot reach" not in err, err
        assert not connected(s)


def test_missing_file_is_still_exit_2(tmp_path):
    missing = str(tmp_path / "missing.yaml")
    for cmd in ("validate", "diff", "apply"):
        p = ctl("-s", "/nonexistent.sock", cmd, missing)
        assert p.returncode == 2 and "missing.yaml" in p.stderr, p
    p = ctl("-s", "/nonexistent.sock", "prefixes", "add", "india", missing)
    assert p.returncode == 2 and "missing.yaml" in p.stderr, p


def test_token_file_errors_name_the_option_and_the_file(listener, tmp_path):
    """A token file that cannot be read, or whose first line is empty (it
    would only read as unauthorized), is said with --token-file and its path
    before anything is sent (it was "cannot open: ..." alone)."""
    sock, s = listener
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    named = tmp_path / "named.token"
    named.write_text("oncall oncall-secret-0123456789\n")
    spaced = tmp_path / "spaced.token"
    spaced.write_text("oncall-secret-0123456789 \n")
    control = tmp_path / "control.token"
    control.write_text("oncall-secret\r0123456789\r\n")
    # A regular file that reads longer than its size (procfs's are 0
    # bytes; one being written grows) was taken cut short at that size.
    for path, said in ((str(tmp_path / "missing.token"), "No such file"),
                       (str(empty), "its first line is empty"),
                       # regiond takes no token with a space or a control
                       # byte: sent, it would only be 401 (a CR cut it)
                       (str(named), "its first line is two words (a line NAME TOKEN of regiond's file?)"),
                       (str(spaced), "its first line is a token and a space or tab after it"),
                       (str(control), "its first line is not a token (a control character)"),
                       ("/proc/self/status", "changed while it was read")):
        p = ctl("--url", "http://127.0.0.1:1", "--token-file", path, "history")
        assert p.returncode == 2 and f"--token-file {path}: {said}" in p.stderr, p


def test_unreachable_is_exit_3():
    # status answers with health instead: 2 unreachable (monitoring plugins' CRITICAL)
    p = ctl("-s", "/nonexistent.sock", "status")
    assert p.returncode == 2 and "cannot reach regiond" in p.stderr, p
    for line in (["show", "links"], ["-j", "history"], ["rollback"], ["filter", "status"]):
        p = ctl("-s", "/nonexistent.sock", *line)
        assert p.returncode == 3 and "cannot reach regiond" in p.stderr, (line, p)


@pytest.mark.parametrize("cmd", ["validate", "diff", "apply"])
def test_a_document_that_is_not_utf8_is_refused_before_sending(cmd, listener, tmp_path):
    """A JSON body cannot carry it: regionctl names the line and byte and
    exits 1, refused as an invalid table is, without contacting regiond (it
    once sent nothing and exited 0, which automation reads as applied; then
    2, a usage error, which a script gating on validate takes for its own
    mistake)."""
    path, s = listener
    doc = tmp_path / "t.yaml"
    doc.write_bytes(b"regions:\n  in: {prefixes: [10.0.0.0/8], description: 't\xe9st'}\n")
    p = ctl("-s", path, cmd, str(doc))
    assert p.returncode == 1, p
    assert f"{doc}:2: not UTF-8 text (byte 0xe9 at column 47)" in p.stderr, p.stderr
    assert not connected(s)


def test_prefix_files_that_are_not_text_lines(listener, tmp_path):
    """A file that cannot be read is the command line's fault (2); what a
    file holds is the input's: a NUL byte, like a bad line, is refused with
    exit 1 and nothing sent (it once exited 2, a usage error)."""
    path, s = listener
    d = tmp_path / "dir"
    d.mkdir()
    p = ctl("-s", path, "prefixes", "add", "in", str(d))
    assert p.returncode == 2 and f"{d}: Is a directory" in p.stderr, p
    f = tmp_path / "nul.txt"
    f.write_bytes(b"10.0.0.0/8\n\x001.2.3.0/24\n")
    p = ctl("-s", path, "prefixes", "add", "in", str(f))
    assert p.returncode == 1 and f"{f}:2: a NUL byte in the line" in p.stderr, p
    assert "nothing was sent. See 'regionctl prefixes add --help'." in p.stderr, p
    assert not connected(s)


def test_prefix_files_that_never_end(listener, tmp_path):
    """/dev/zero was read into memory without limit (1 GB), then said as
    "no prefixes in /dev/zero" (a read failure taken for the end). A file
    that is neither a regular file nor a pipe is refused (2); a line longer
    than 4096 bytes, or a file larger than regiond takes in one batch
    (256 MiB), is the input's fault (1), nothing sent."""
    path, s = listener
    p = subprocess.run([REGIONCTL, "-s", path, "prefixes", "add", "in", "/dev/zero"], capture_output=True,
                       text=True, timeout=30, preexec_fn=capped)
    assert p.returncode == 2 and "regionctl: /dev/zero: not a regular file or a pipe" in p.stderr, p
    with open("/dev/zero", "rb") as zero:
        p = subprocess.run([REGIONCTL, "-s", path, "prefixes", "add", "in", "-"], stdin=zero,
                           capture_output=True, text=True, timeout=30, preexec_fn=capped)
    assert p.returncode == 2 and "regionctl: stdin: not a regular file or a pipe" in p.stderr, p
    long = tmp_path / "long.txt"
    long.write_text("10.0.0.0/8\n# " + "x" * 5000 + "\n")
    p = ctl("-s", path, "prefixes", "add", "in", str(long))
    assert p.returncode == 1 and f"regionctl: {long}:2: a line longer than 4096 bytes" in p.stderr, p
    p = subprocess.run([REGIONCTL, "-s", path, "prefixes", "add", "in", "-"], input="1" * 100000,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "regionctl: stdin:1: a line longer than 4096 bytes" in p.stderr, p
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(300 << 20)
    p = ctl("-s", path, "prefixes", "add", "in", str(big))
    assert p.returncode == 1 and f"regionctl: {big}: larger than 268435456 bytes" in p.stderr, p
    assert "split it into files of fewer lines, each sent as a batch of its own" in p.stderr, p
    assert "nothing was sent. See 'regionctl prefixes add --help'." in p.stderr, p
    assert not connected(s)


def test_a_prefix_fifo_waits_for_its_writer(listener, tmp_path):
    """A named FIFO whose writer had not opened it yet read as empty ("no
    prefixes in pf.fifo: nothing to add", exit 1): it was opened without
    waiting and read at once. It is waited on, as a shell's '<' does, and
    its prefixes sent."""
    path, s = listener
    fifo = tmp_path / "pf.fifo"
    os.mkfifo(fifo)
    t = write_later(fifo, b"10.0.0.0/8\n")
    p = ctl("-s", path, "--timeout", "1", "prefixes", "add", "in", str(fifo))
    t.join(5)
    assert "no prefixes" not in p.stderr, p
    assert p.returncode == 5 and "no answer from regiond" in p.stderr, p
    assert connected(s)


def test_dev_null_is_an_empty_prefix_file(listener, tmp_path):
    """`prefixes add R - < /dev/null` was refused as "not a regular file or
    a pipe" (exit 2): /dev/null reads as an empty file, which has no prefix
    (exit 1). Other devices stay refused."""
    path, s = listener
    for name, stdin in (("stdin", "/dev/null"), ("/dev/null", None)):
        with open(stdin or "/dev/null", "rb") as f:
            p = subprocess.run([REGIONCTL, "-s", path, "prefixes", "add", "in", "-" if stdin else name],
                               stdin=f, capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and f"regionctl: no prefixes in {name}: nothing to add" in p.stderr, p
    for dev in ("/dev/zero", "/dev/full"):
        p = ctl("-s", path, "prefixes", "add", "in", dev)
        assert p.returncode == 2 and f"regionctl: {dev}: not a regular file or a pipe" in p.stderr, p
    assert not connected(s)


@pytest.mark.parametrize("text", ["", "\n\n", "# AS64500, nothing yet\n  # still nothing\n\n"])
@pytest.mark.parametrize("sub", ["add", "remove"])
def test_prefix_file_without_prefixes_is_refused(sub, text, listener, tmp_path):
    """An empty file, or one of comments and blank lines only, adds
    nothing: refused as the input's fault (exit 1), not as usage (2)."""
    path, s = listener
    f = tmp_path / "none.txt"
    f.write_text(text)
    p = ctl("-s", path, "prefixes", sub, "in", str(f))
    assert p.returncode == 1, p
    assert f"regionctl: no prefixes in {f}: nothing to {sub}" in p.stderr, p
    assert f"nothing was sent. See 'regionctl prefixes {sub} --help'." in p.stderr, p
    p = subprocess.run([REGIONCTL, "-s", path, "prefixes", sub, "in", "-"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1 and f"no prefixes in stdin: nothing to {sub}" in p.stderr, p
    assert not connected(s)


@pytest.mark.parametrize("line,words", [
    (["rollback", "99999999999999999999"], "'99999999999999999999' is not a generation"),
    (["rollback", ""], "'' is not a generation"),
    (["explain", "10.0.0.1", "10.0.0.2", "tcp", ""], "'' is not a port"),
])
def test_numbers_out_of_range_are_usage_errors(line, words, listener):
    """strtoll() saturates: an overflowing generation was sent as
    9223372036854775807 and came back 404; an empty port was port 0."""
    path, s = listener
    p = ctl("-s", path, *line)
    assert p.returncode == 2 and words in p.stderr, p
    assert not connected(s)


NUMBER_READERS = [
    (["explain", "10.0.0.1", "10.0.0.2", "{}", "1", "2"], "is not a protocol"),
    (["explain", "10.0.0.1", "10.0.0.2", "{}"], "is not a protocol"),
    (["explain", "10.0.0.1", "10.0.0.2", "tcp", "{}"], "is not a port"),
    (["explain", "10.0.0.1", "10.0.0.2", "tcp", "{}", "443"], "is not a port"),
    (["top", "--count", "{}"], "--count takes"),
    (["counters", "--interval", "{}"], "--interval takes"),
    (["apply", "t.yaml", "--confirm-timeout", "{}"], "--confirm-timeout takes"),
    (["link", "weight", "to-sg", "{}"], "a weight is"),
    (["rollback", "{}"], "is not a generation"),
    (["confirm", "{}"], "is not a generation"),
    (["prefixes", "add", "india", "-", "--expected-generation", "{}"], "--expected-generation takes"),
    (["capture", "--count", "{}"], "--count takes"),
    (["capture", "--duration", "{}"], "--duration takes"),
    (["fleet", "apply", "t.yaml", "--wave", "{}"], "--wave takes"),
    (["fleet", "apply", "t.yaml", "--wait", "--wait-timeout", "{}"], "--wait-timeout takes"),
    (["--timeout", "{}", "status"], "--timeout takes"),
]


def test_plain_numbers_still_read():
    """The one reader takes what the operator means: leading zeros, ".5" and
    "1." for an interval (each refused only by the unreachable socket: 3)."""
    for line in (["counters", "--rate", "--interval", ".5"], ["counters", "--rate", "--interval", "1."],
                 ["counters", "--rate", "--interval", "0.25"], ["explain", "10.0.0.1", "10.0.0.2", "tcp", "0443"],
                 ["explain", "10.0.0.1", "10.0.0.2", "06", "1", "2"], ["explain", "10.0.0.1", "10.0.0.2", "47"],
                 ["rollback", "007"], ["top", "--count", "1"],
                 ["counters", "--rate", "--interval", "3600.000"],
                 ["counters", "--rate", "--interval", "0003600"],
                 ["counters", "--rate", "--interval", "0.1"]):
        p = ctl("-s", "/nonexistent.sock", *line)
        assert p.returncode == 3 and "cannot reach regiond" in p.stderr, (line, p)
    # The window as written, not as a double rounds it: both of these
    # once read as in range.
    for bad in ("..5", "1..", ".", "1.2.3", "3600.0000000000001", "0.09999999999999999999",
                "3600.1", ".09", "0.0"):
        p = ctl("-s", "/nonexistent.sock", "counters", "--rate", "--interval", bad)
        assert p.returncode == 2 and "--interval takes" in p.stderr, (bad, p)


@pytest.mark.parametrize("form", ["+5", " 5", "5 ", "0x5", "+0", "\t5", "5e0"])
@pytest.mark.parametrize("args,words", NUMBER_READERS, ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_every_number_is_digits_alone(args, words, form, listener):
    """regionctl's number readers differed: "+5" and " 5" were a port, a
    weight, a generation or a count in some places and usage errors in
    others, and strtod took "0x5" and "5e0" as an interval. One reader now:
    digits only, the same refusal everywhere, nothing sent."""
    path, s = listener
    line = [a.replace("{}", form) for a in args]
    p = ctl("-s", path, *line) if line[0] != "--timeout" else ctl(*line[:2], "-s", path, *line[2:])
    assert p.returncode == 2 and words in p.stderr, p
    assert not connected(s)


@pytest.mark.parametrize("args,option", [
    (["capture", "--count", "1", "--region", b"bra\xe9il"], "--region"),
    (["capture", "--count", "1", "--filter", b"udp port 53 and host \xe9"], "--filter"),
    (["link", "up", "to-sg", "--comment", b"caf\xe9"], "--comment"),
    (["explain", "8.130.0.1", "198.51.100.1", "tcp", "1", "7001", "--payload", b"\x90\x90\xcc"], "--payload"),
    # fleet apply's own options once went out of the request in silence:
    # a rollout with no canary label, no author.
    (["fleet", "apply", "t.yaml", "--canary", "1", "--canary-label", b"k=\xff"], "--canary-label"),
    (["fleet", "apply", "t.yaml", "--author", b"\xff"], "--author"),
    (["--url", b"http://\xff:1", "history"], "--url"),
])
def test_an_option_sent_as_text_must_be_utf8(args, option):
    """A value that goes into the request as a JSON string and is not UTF-8
    was left out without a word: a capture's --region then took every
    region's packets, explain's --payload judged no payload, a comment and
    author were recorded as the defaults (a probe). Refused, naming it."""
    p = subprocess.run([REGIONCTL, "-s", "/nonexistent.sock", *args], capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2 and p.stdout == b"", (p.returncode, err)
    assert f"option '{option}': its value is not UTF-8 text" in err, err
    assert ("--payload-hex" in err) == (option == "--payload"), err


def test_double_dash_ends_the_options():
    """A name a table allows may begin with '-': 'link down -sg' was an
    unknown option and '--' was refused everywhere. After '--', '-h' is a
    name too: it once printed the help and exited 0, nothing done."""
    for name in ("-sg", "-h", "--help"):
        p = ctl("-s", "/nonexistent.sock", "link", "down", "--", name)
        assert p.returncode == 3 and "cannot reach regiond" in p.stderr, p  # parsed, then no regiond
    # '--' as an option's value ends nothing: the --help after it is help
    # (a review: it was dropped, and the table applied).
    p = ctl("-s", "/nonexistent.sock", "apply", "t.yaml", "--comment", "--", "--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: regionctl apply FILE"), p
    usage_error(["link", "down", "-sg"], "unknown option '-sg'")


@pytest.mark.parametrize("args", [
    ["explain", b"\xff\xfe", "1.2.3.4", "tcp", "80"],
    ["explain", "8.130.0.1", b"1.2.3.\xff", "tcp", "80"],
    ["link", "down", b"to-\xe9"],
    ["fleet", "unpin", b"\xff"],
    ["prefixes", "list", b"ind\xe9a"],
])
def test_an_argument_sent_as_text_must_be_utf8(args):
    """A name, an address or a protocol that is not UTF-8 made no request
    body at all: regiond answered "a JSON object body is required" (exit 1)
    for what is the command line's fault. A usage error, nothing sent."""
    p = subprocess.run([REGIONCTL, "-s", "/nonexistent.sock", *args], capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2 and p.stdout == b"", (p.returncode, err)
    assert "is not UTF-8 text" in err and "\\x" in err, err


@pytest.mark.parametrize("args,option", [
    (["-s", "/a.sock", "-s", "/b.sock", "history"], "-s"),
    (["link", "down", "to-sg", "--comment", "one", "--comment", "two"], "--comment"),
    (["top", "--count", "1", "--count", "2"], "--count"),
    (["explain", "8.130.0.1", "1.2.3.4", "tcp", "80", "--payload", "a", "--payload", "b"], "--payload"),
])
def test_an_option_given_twice_is_refused(args, option):
    """Which one counts? The last once won in silence (-s /wrong -s right,
    two comments with the second recorded)."""
    usage_error(args, f"option '{option}' given twice")


@pytest.mark.parametrize("args,said", [
    (["--timeout", "status"], "missing command (option '--timeout' took 'status' as its value)"),
    (["-s", "history"], "missing command (option '-s' took 'history' as its value)"),
    (["--timeout", "5"], "missing command"),
])
def test_a_missing_command_is_named(args, said):
    """An option that took the command as its value left a bare listing,
    nothing naming what was wrong."""
    p = ctl(*args)
    assert p.returncode == 2 and p.stdout == "" and p.stderr.startswith(f"regionctl: {said}\n"), p


def test_a_nul_byte_in_a_table_is_said_at_its_line(tmp_path):
    """regiond's JSON reader refused it naming its own flag and the
    request's byte: said at the file's line, nothing sent."""
    doc = tmp_path / "nul.yaml"
    doc.write_bytes(b"version: 1\n# a\0b\nregions: {}\n")
    p = ctl("-s", "/nonexistent.sock", "validate", str(doc))
    assert p.returncode == 1 and f"{doc}:2: a NUL byte" in p.stderr, p
    # With -j the refusal is on stdout as regiond's would be (it once left
    # stdout empty); validate's says "valid": false, apply's does not.
    for cmd, valid in (("validate", {"valid": False}), ("apply", {})):
        p = ctl("-s", "/nonexistent.sock", "-j", cmd, str(doc))
        assert p.returncode == 1 and json.loads(p.stdout) == {
            "error": {"code": "invalid_table", "file": str(doc), "line": 2, "path": "",
                      "reason": "a NUL byte: a table document is text"}, **valid}, p
    doc.write_bytes(b"version: 1\nregions: {a\xff: {}}\n")
    p = ctl("-s", "/nonexistent.sock", "-j", "diff", str(doc))
    assert p.returncode == 1 and json.loads(p.stdout)["error"]["line"] == 2, p
    # A prefix file's line of other bytes: said as \xNN, not as '?'.
    pf = tmp_path / "p.txt"
    pf.write_bytes(b"10.0.0.0/8\n\xff\xfe/8\n")
    p = ctl("-s", "/nonexistent.sock", "prefixes", "add", "in", str(pf))
    assert p.returncode == 1 and f"{pf}:2: not a prefix (not UTF-8 text): \\xff\\xfe/8" in p.stderr, p
    p = ctl("-s", "/nonexistent.sock", "-j", "prefixes", "add", "in", str(pf))
    assert p.returncode == 1 and json.loads(p.stdout)["error"] == {
        "code": "invalid_delta", "file": str(pf), "line": 2, "path": "",
        "reason": "not a prefix (not UTF-8 text)"}, p


@pytest.mark.parametrize("args,env,words", [
    (["-s", "", "history"], {}, "-s is empty"),
    (["history"], {"REGIOND_SOCKET": ""}, "$REGIOND_SOCKET is empty"),
    (["-s", "/x.sock", "--url", "http://127.0.0.1:1", "history"], {}, "-s and --url name two places"),
    (["--url", "http://127.0.0.1:1", "-s", "/x.sock", "history"], {}, "-s and --url name two places"),
    (["--url", "http://u:p@127.0.0.1:1", "history"], {}, "user@ in a URL is not a credential"),
    (["--url", "http://::1:18471", "history"], {}, "an IPv6 address goes in [] ([::1]:PORT)"),
])
def test_where_regiond_is_must_be_one_place(args, env, words):
    """Each was 'cannot reach regiond' (exit 3, retried by scripts), or
    --url silently won over -s: usage errors, nothing tried."""
    p = subprocess.run([REGIONCTL, *args], capture_output=True, text=True, timeout=30,
                       env={**os.environ, **env})
    assert p.returncode == 2 and words in p.stderr and "cannot reach" not in p.stderr, p


def test_a_prefix_file_opening_with_a_bom_is_read(tmp_path):
    """An editor's UTF-8 byte order mark read as part of the first prefix,
    refused as "'\\ufeff10.0.0.0' is not a valid IPv4 address" with the mark
    invisible; table documents take it. The file is read (here: then
    regiond is not reached), and a mark inside still refused."""
    f = tmp_path / "bom.txt"
    f.write_bytes(b"\xef\xbb\xbf10.0.0.0/8\n")
    p = ctl("-s", "/nonexistent.sock", "prefixes", "add", "india", str(f))
    assert p.returncode == 3 and "cannot reach regiond" in p.stderr, p
    f.write_bytes(b"10.0.0.0/8\n\xef\xbb\xbf11.0.0.0/8\n")
    p = ctl("-s", "/nonexistent.sock", "prefixes", "add", "india", str(f))
    assert p.returncode == 1 and f"{f}:2:" in p.stderr, p


@pytest.mark.parametrize("cmd", [c for c in COMMANDS if c != "help"])
def test_a_socket_path_too_long_is_a_usage_error(cmd, tmp_path):
    """-s with a path past sun_path's 108 bytes was "cannot reach regiond
    ... File name too long", exit 3 (status: 2), which a script retries:
    it is the command line's fault, said naming -s and the limit, exit 2,
    for every command, before anything is read or sent."""
    table = tmp_path / "t.yaml"
    table.write_text("version: 1\n")
    args = {"explain": ["1.1.1.1", "2.2.2.2", "tcp", "80"], "validate": [str(table)], "diff": [str(table)],
            "apply": [str(table)], "rollback": ["1"], "confirm": ["1"], "prefixes add": ["india", str(table)],
            "prefixes remove": ["india", str(table)], "prefixes list": ["india"], "link down": ["to-sg"],
            "link up": ["to-sg"], "link drain": ["to-sg"], "link weight": ["to-sg", "3"],
            "fleet apply": [str(table)], "fleet unpin": ["n0"], "capture": ["--count", "1"],
            "top": ["--count", "1"]}.get(cmd, [])
    long = "/tmp/" + "s" * 110
    for line, env, said in ((["-s", long, *cmd.split(), *args], {}, "-s takes a socket path under 108 bytes"),
                            ([*cmd.split(), *args], {"REGIOND_SOCKET": long},
                             "$REGIOND_SOCKET takes a socket path under 108 bytes")):
        p = ctl(*line, env=env)
        assert p.returncode == 2 and p.stdout == "", (line, p)
        assert said in p.stderr and "not 115" in p.stderr, (line, p.stderr)
