"""bash completion (dist/regionctl.bash, dist/regionfwd.bash) against a
live regiond: commands and options from regionctl's own help, names of
regions, services, links and generations from the running table. Also
'show links NAME', the argument those names complete."""
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_e2e import REGIONCTL, box  # noqa: E402,F401
from dprun import ROOT  # noqa: E402

HELPERS = "/usr/share/bash-completion/bash_completion"
pytestmark = pytest.mark.skipif(not os.path.exists(HELPERS) or shutil.which("bash") is None,
                                reason="needs bash-completion")


def complete(script, func, words, env=None):
    """The candidates bash would offer with the cursor at the end of the
    last word of @words (an empty last word: a new word)."""
    line = " ".join(words)
    prog = f"""
source {HELPERS}
source {os.path.join(ROOT, 'dist', script)}
complete -p {os.path.basename(words[0])} >/dev/null || exit 9
COMP_WORDS=({' '.join(f"'{w}'" for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE='{line}'
COMP_POINT={len(line)}
{func} {words[0]} '{words[-1]}' '{words[-2] if len(words) > 1 else ''}'
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    p = subprocess.run(["bash", "--norc", "-c", prog], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **(env or {})))
    assert p.returncode == 0, p.stderr
    return sorted(w for w in p.stdout.split("\n") if w)


def ctl_words(box, *words):
    # 'regionctl' on the line as an operator types it, found on PATH.
    return ["regionctl", "-s", box.api, *words]


def path_env():
    # the directory of the binary (REGIONCTL may be tests/lib/regionctl-noleaks)
    binary = os.environ.get("REGIONCTL_BIN") or REGIONCTL
    return {"PATH": os.path.dirname(os.path.abspath(binary)) + os.pathsep + os.environ["PATH"]}


def test_completion_is_registered():
    for script, prog in (("regionctl.bash", "regionctl"), ("regionfwd.bash", "regionfwd")):
        p = subprocess.run(["bash", "--norc", "-c", f"source {HELPERS}; source {ROOT}/dist/{script}; complete -p {prog}"],
                           capture_output=True, text=True)
        assert p.returncode == 0 and f"-F _{prog} {prog}" in p.stdout, p


def test_commands_and_options_without_regiond():
    env = path_env()
    cmds = complete("regionctl.bash", "_regionctl", ["regionctl", ""], env)
    for c in ("status", "show", "explain", "apply", "rollback", "history", "filter", "help"):
        assert c in cmds, cmds
    assert complete("regionctl.bash", "_regionctl", ["regionctl", "show", ""], env) == [
        "links", "policies", "regions", "services", "table"]
    assert complete("regionctl.bash", "_regionctl", ["regionctl", "filter", "st"], env) == ["status"]
    # link's subcommands, and every global option 'regionctl --help' lists
    # (a fixed list once left link and --ca, --cert, --key, --names-dir out)
    assert complete("regionctl.bash", "_regionctl", ["regionctl", "link", ""], env) == [
        "down", "drain", "up", "weight"]
    glob = complete("regionctl.bash", "_regionctl", ["regionctl", "--"], env)
    for o in ("--url", "--token-file", "--ca", "--cert", "--key", "--names-dir", "--timeout", "--json", "--help"):
        assert o in glob, glob
    assert complete("regionctl.bash", "_regionctl", ["regionctl", "prefixes", ""], env) == [
        "add", "list", "remove"]
    assert "--expected-generation" in complete("regionctl.bash", "_regionctl",
                                               ["regionctl", "prefixes", "add", "india", "f", "--"], env)
    opts = complete("regionctl.bash", "_regionctl", ["regionctl", "apply", "t.yaml", "--"], env)
    assert "--confirm-timeout" in opts and "--comment" in opts and "--help" in opts, opts
    assert complete("regionctl.bash", "_regionctl", ["regionctl", "explain", "1.1.1.1", "2.2.2.2", "s"], env) == [
        "sctp"]
    # No regiond: live names are simply none, quickly.
    assert complete("regionctl.bash", "_regionctl", ["regionctl", "-s", "/nonexistent.sock", "show", "links", ""],
                    env) == []
    fenv, _ = fwd_env()  # its options come from 'regionfwd --help'
    assert "--node" in complete("regionfwd.bash", "_regionfwd", ["regionfwd", "-l", "0", "--", "--n"], fenv)
    assert "--check-table" in complete("regionfwd.bash", "_regionfwd", ["regionfwd", "--check-t"], fenv)


def test_live_names(box, tmp_path):
    env = path_env()
    assert complete("regionctl.bash", "_regionctl", ctl_words(box, "show", "regions", ""), env) == [
        "brazil", "california", "india", "india-partner", "oregon", "singapore"]
    assert complete("regionctl.bash", "_regionctl", ctl_words(box, "show", "links", "to-us"), env) == [
        "to-us-west-a", "to-us-west-b"]
    assert "sync" in complete("regionctl.bash", "_regionctl", ctl_words(box, "show", "services", ""), env)
    assert complete("regionctl.bash", "_regionctl", ctl_words(box, "prefixes", "add", "ind"), env) == [
        "india", "india-partner"]
    assert complete("regionctl.bash", "_regionctl", ctl_words(box, "link", "down", "to-us"), env) == [
        "to-us-west-a", "to-us-west-b"]
    # capture's criteria name the running table's regions, services, links
    assert complete("regionctl.bash", "_regionctl", ctl_words(box, "capture", "--region", "ind"), env) == [
        "india", "india-partner"]
    assert complete("regionctl.bash", "_regionctl", ctl_words(box, "capture", "--link", "to-us"), env) == [
        "to-us-west-a", "to-us-west-b"]
    assert "sync" in complete("regionctl.bash", "_regionctl", ctl_words(box, "capture", "--service", ""), env)
    # A second generation, then rollback offers both.
    t = tmp_path / "t2.yaml"
    t.write_text(open(os.path.join(ROOT, "docs", "examples", "demo-table.yaml")).read().replace(
        "to: to-sg", "to: local"))
    rc, out, err = box.ctl("apply", str(t))
    assert rc == 0, err
    assert complete("regionctl.bash", "_regionctl", ctl_words(box, "rollback", ""), env) == ["1", "2"]
    # The names complete what 'show links NAME' takes.
    rc, out, err = box.ctl("show", "links", "to-br")
    assert rc == 0 and out.splitlines()[1].startswith("to-br ") and len(out.splitlines()) == 2, out
    rc, out, err = box.ctl("show", "regions", "nowhere")
    assert rc == 1 and "no region 'nowhere'" in err, (out, err)


def help_options(*args, binary=None):
    """(option, its ARG or None, its choices or None) of a --help's option
    lines, read as the completion must read them."""
    out = subprocess.run([binary or REGIONCTL, *args, "--help"], capture_output=True, text=True).stdout
    opts, last, listing = [], None, False
    for line in out.splitlines():
        m = re.match(r"^  (?:-[a-z], )?(-{1,2}[a-z-]+)(?: ([A-Z]+|[a-z|]+\|[a-z|]+))?(?:\s|$)", line)
        if m:
            opts.append([m.group(1), m.group(2), m.group(2).split("|") if m.group(2) and "|" in m.group(2)
                         else None])
            last, listing = opts[-1], False
            continue
        c = re.match(r"^ {6,}(?:([A-Z]+): )?(.*)$", line)
        if last and c and ((c.group(1) and c.group(1) == last[1]) or (listing and not c.group(1))):
            last[2] = (last[2] or []) + c.group(2).replace(",", " ").split()
            listing = True
            continue
        if not c:
            last, listing = None, False
    return opts


def fwd_env():
    env = path_env()
    fwd = os.environ.get("REGIONFWD") or os.path.join(os.path.dirname(os.path.dirname(REGIONCTL)), "dataplane",
                                                      "regionfwd")
    env["PATH"] = os.path.dirname(os.path.abspath(fwd)) + os.pathsep + env["PATH"]
    return env, fwd


def test_regionfwd_completion_follows_its_help():
    """The option list was fixed in the script and drifted: --start-on and
    --log missing after '--', --help-node never offered, and the values of
    --start-on and --log not offered. Every option 'regionfwd --help' lists
    is now offered where it goes, and every value it names."""
    env, fwd = fwd_env()
    opts = help_options(binary=fwd)
    names = {o for o, _, _ in opts}
    assert {"--node", "--table", "--start-on", "--log", "--help-node", "--check-table"} <= names, opts
    after = complete("regionfwd.bash", "_regionfwd", ["regionfwd", "-l", "0", "--", "--"], env)
    before = complete("regionfwd.bash", "_regionfwd", ["regionfwd", "--"], env)
    for o in names:
        mode = o.startswith(("--check-", "--help-"))
        assert o in (before if mode else after), (o, before, after)
    for o, _, choices in opts:
        if choices:
            assert complete("regionfwd.bash", "_regionfwd", ["regionfwd", "-l", "0", "--", o, ""], env) == \
                sorted(choices), o
    assert complete("regionfwd.bash", "_regionfwd", ["regionfwd", "--", "--start-on", ""], env) == ["pushed", "table"]
    assert complete("regionfwd.bash", "_regionfwd", ["regionfwd", "--", "--log", ""], env) == [
        "journal", "stderr", "syslog"]
    assert complete("regionfwd.bash", "_regionfwd", ["regionfwd", "--", "--idle-exit", ""], env) == []


def test_regionctl_option_values_follow_its_help():
    """top --sort and capture --reason offered nothing: every option whose
    help lists its values ("KEY: rate, total, name") now offers them, and
    every command's options are offered after it."""
    env = path_env()
    p = subprocess.run([REGIONCTL, "--help"], capture_output=True, text=True)
    block = p.stdout.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    commands = [re.split(r"\s{2,}", line.strip())[0].split() for line in block.splitlines()]
    seen = 0
    for cmd in commands:
        if cmd == ["help"]:
            continue
        offered = complete("regionctl.bash", "_regionctl", ["regionctl", *cmd, "--"], env)
        for o, _, choices in help_options(*cmd):
            if o.startswith("--"):
                assert o in offered, (cmd, o, offered)
            if choices:
                seen += 1
                assert complete("regionctl.bash", "_regionctl", ["regionctl", *cmd, o, ""], env) == \
                    sorted(set(choices)), (cmd, o)
    assert seen >= 2
    assert complete("regionctl.bash", "_regionctl", ["regionctl", "top", "--sort", ""], env) == [
        "name", "rate", "total"]
    reasons = complete("regionctl.bash", "_regionctl", ["regionctl", "capture", "--reason", ""], env)
    assert "policy_drop" in reasons and "martian_source" in reasons and len(reasons) >= 20, reasons
    assert complete("regionctl.bash", "_regionctl", ["regionctl", "capture", "--reason", "martian_d"], env) == [
        "martian_destination"]
    # a value is no argument: the REGION after it is still completed as one
    assert complete("regionctl.bash", "_regionctl", ["regionctl", "capture", "--count", "5", "--r"], env) == [
        "--reason", "--region"]


def test_one_place_to_talk_to_is_offered():
    """After -s SOCK, --url was still offered (and -s again): the two are
    refused together, and each is taken once."""
    env = path_env()
    after_s = complete("regionctl.bash", "_regionctl", ["regionctl", "-s", "/x.sock", "--"], env)
    assert "--url" not in after_s and "-s" not in after_s and "--timeout" in after_s, after_s
    after_url = complete("regionctl.bash", "_regionctl", ["regionctl", "--url", "http://h:1", "status", "-"], env)
    assert "-s" not in after_url and "--url" not in after_url and "--token-file" in after_url, after_url
    assert complete("regionctl.bash", "_regionctl", ["regionctl", "-s", "/nonexistent.sock", "capture", "--region",
                                                     ""], env) == []
