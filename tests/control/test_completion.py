"""bash completion (dist/regionctl.bash, dist/regionfwd.bash) against a
live regiond: commands and options from regionctl's own help, names of
regions, services, links and generations from the running table. Also
'show links NAME', the argument those names complete."""
import os
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
    assert "--node" in complete("regionfwd.bash", "_regionfwd", ["regionfwd", "-l", "0", "--", "--n"], env)
    assert "--check-table" in complete("regionfwd.bash", "_regionfwd", ["regionfwd", "--check-t"], env)


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
