# scripts/lib.sh - sourced by the scripts: say which step failed, and show a
# quiet step's output when it fails. Not executable on its own.

# On any failing command, name the script, the line and the command, so no
# script ever exits non-zero without a word (set -e alone is silent).
rfw_on_error() {
    local rc=$? line=$1 cmd=$2
    # A function returning its failure (quietly) has said what failed; its
    # caller's line follows and names the step.
    case "$cmd" in return*) return 0 ;; esac
    echo "$(basename "$0"): FAILED (exit $rc) at line $line: $cmd" >&2
}
trap 'rfw_on_error "$LINENO" "$BASH_COMMAND"' ERR
set -o errtrace

# quietly LOG DESCRIPTION COMMAND...: run COMMAND with its output in LOG; on
# success print nothing, on failure print DESCRIPTION, the errors (ninja's
# FAILED blocks when there are any, else the log's last 60 lines) and the
# log's path, and return the command's status.
quietly() {
    local log=$1 what=$2 rc=0
    shift 2
    mkdir -p "$(dirname "$log")"
    "$@" >"$log" 2>&1 || rc=$?
    [ $rc -eq 0 ] && return 0
    {
        echo "$(basename "$0"): $what failed (exit $rc); its errors:"
        if grep -q '^FAILED: ' "$log"; then
            # Each failed ninja edge up to the next progress line.
            awk '/^FAILED: /{p=1} /^\[[0-9]+\/[0-9]+\] /{p=0} p' "$log" | head -n 200
        else
            tail -n 60 "$log"
        fi
        echo "$(basename "$0"): full output in $log"
    } >&2
    return $rc
}
