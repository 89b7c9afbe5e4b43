# bash completion for regionfwd: its own options as 'regionfwd --help' lists
# them (a fixed list once missed --start-on and --log), after '--' and, for
# the modes (--check-*, --help-*), before it; a few common EAL options
# before it; the values of an option whose help names them ("--start-on
# pushed|table"), files where a file is expected.

# 'regionfwd --help's option lines as "NAME ARG" ("-" for none).
_regionfwd_opts() {
    "$1" --help 2>/dev/null | awk '/^  --/ {
        arg = ($2 ~ /^[A-Z]+$/ || $2 ~ /\|/) ? $2 : "-"
        print $1, arg }'
}

_regionfwd() {
    local cur prev words cword
    _init_completion || return
    local i app=0 opts name arg mode="" own=""
    for ((i = 1; i < cword; i++)); do
        [ "${words[i]}" = -- ] && app=1
    done
    opts=$(_regionfwd_opts "${words[0]}")
    case "$prev" in
        --node | --check-node | --table | --check-table)
            _filedir '@(yaml|yml|json)'
            return
            ;;
        --stats-json)
            _filedir json
            return
            ;;
        --file-prefix | -l | --lcores | --main-lcore | -n | -m | -a | --allow | --vdev | --log-level)
            return
            ;;
    esac
    while read -r name arg; do
        if [ "$name" = "$prev" ] && [ "$arg" != - ]; then
            # pushed|table: the values; MS, FILE...: nothing to offer
            [[ $arg == *"|"* ]] && COMPREPLY=($(compgen -W "${arg//|/ }" -- "$cur"))
            return
        fi
        case "$name" in
            --check-* | --help-*) mode+=" $name" ;;
            *) own+=" $name" ;;
        esac
    done <<<"$opts"
    if [ $app -eq 1 ]; then
        COMPREPLY=($(compgen -W "$own -h --help" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$mode --table -h --help -l --lcores --main-lcore
            -n -m -a --allow --vdev --no-huge --no-pci --file-prefix --log-level --" -- "$cur"))
    fi
}
complete -F _regionfwd regionfwd
