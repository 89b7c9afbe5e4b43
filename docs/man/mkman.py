#!/usr/bin/env python3
"""Make a man page from its scdoc template and the binaries' own --help.

The option and command texts of the man pages are not written twice: a
template line '@HELP PROG ARGS...@' becomes the output of 'PROG ARGS
--help' (the descriptor tables in the code print it), '@COMMANDS PROG@' one
section per command that 'PROG --help' lists, each with its --help, and
'@RUN PROG ARGS...@' the output of 'PROG ARGS' (regionfwd --help-node).
The result goes through scdoc into the roff page.

    mkman.py --scdoc SCDOC --bin NAME=PATH... TEMPLATE OUTPUT
"""
import argparse
import os
import re
import subprocess
import sys


def run(bins, words):
    prog, *args = words
    # In a sanitizer build (scripts/test's stage 2) a leak report at exit
    # would fail the build of a page; the text is what matters here.
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    p = subprocess.run([bins[prog], *args], capture_output=True, text=True, timeout=60, env=env)
    if p.returncode != 0:
        sys.exit(f"mkman: '{' '.join(words)}' exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def literal(text):
    # scdoc still reads backslashes inside a literal block.
    body = text.rstrip("\n").replace("\\", "\\\\")
    return "```\n" + body + "\n```\n"


def commands(bins, prog):
    """The command names in the 'commands:' block of PROG --help."""
    out = run(bins, [prog, "--help"])
    block = out.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    return [re.split(r"\s{2,}", line.strip())[0] for line in block.splitlines()]


def expand(line, bins):
    m = re.fullmatch(r"@(HELP|COMMANDS|RUN) ([^@]+)@", line.strip())
    if not m:
        return line
    kind, words = m.group(1), m.group(2).split()
    if kind == "HELP":
        return literal(run(bins, words + ["--help"]))
    if kind == "RUN":
        return literal(run(bins, words))
    out = []
    for cmd in commands(bins, words[0]):
        if cmd == "help":
            continue
        out.append(f"## {words[0]} {cmd}\n\n" + literal(run(bins, [words[0], *cmd.split(), "--help"])))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scdoc", required=True)
    ap.add_argument("--bin", action="append", default=[])
    ap.add_argument("template")
    ap.add_argument("output")
    a = ap.parse_args()
    bins = dict(b.split("=", 1) for b in a.bin)
    with open(a.template) as f:
        src = "".join(expand(line, bins) for line in f)
    p = subprocess.run([a.scdoc], input=src, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"mkman: scdoc refused {a.template}: {p.stderr.strip()}")
    with open(a.output, "w") as f:
        f.write(p.stdout)


if __name__ == "__main__":
    main()
