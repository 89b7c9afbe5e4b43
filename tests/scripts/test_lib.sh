#!/usr/bin/env bash
# scripts/lib.sh: a failing quiet step prints its errors and what failed; a
# passing one prints nothing; a failing plain command names itself. Plain
# 'N passed, N failed' at the end.
set -u
lib=$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { # NAME CONDITION-RESULT DETAIL
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1: $3"; fi
}

# A ninja-like failure: the FAILED block and its compiler error are shown,
# progress lines are not, and the exit status is the command's.
out=$(bash -c '. "$1"; quietly "$2/log" "the build" bash -c "echo \"[1/3] ok.c\"; echo \"FAILED: bad.o\"; echo \"bad.c:1: error: expected expression\"; echo \"[2/3] other.c\"; exit 7"' _ "$lib" "$tmp" 2>&1)
rc=$?
check "exit status kept" $([ $rc -eq 7 ]; echo $?) "rc=$rc"
check "names the step" $(grep -q "the build failed (exit 7)" <<<"$out"; echo $?) "$out"
check "shows the error" $(grep -q "bad.c:1: error: expected expression" <<<"$out"; echo $?) "$out"
check "hides progress" $(! grep -q "other.c" <<<"$out"; echo $?) "$out"
check "names the log" $(grep -q "full output in $tmp/log" <<<"$out"; echo $?) "$out"

# Without FAILED lines, the log's tail is shown.
out=$(bash -c '. "$1"; quietly "$2/log2" "apt-get" bash -c "echo E: Unable to locate package nosuch; exit 100"' _ "$lib" "$tmp" 2>&1)
check "shows the tail" $(grep -q "E: Unable to locate package nosuch" <<<"$out"; echo $?) "$out"

# Success prints nothing.
out=$(bash -c '. "$1"; quietly "$2/log3" "fine" echo hello' _ "$lib" "$tmp" 2>&1)
check "quiet on success" $([ -z "$out" ]; echo $?) "$out"

# A plain failing command under set -e is named with its line.
out=$(bash -c 'set -euo pipefail; . "$1"; true; false; echo unreachable' _ "$lib" 2>&1)
check "names a failing command" $(grep -q "FAILED (exit 1) at line 1: false" <<<"$out"; echo $?) "$out"
check "stops there" $(! grep -q unreachable <<<"$out"; echo $?) "$out"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
