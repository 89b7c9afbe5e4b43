# bash completion for regionfwd: its own options after '--' (and the
# --check-* modes), a few common EAL options before it, files where a file
# is expected.
_regionfwd() {
    local cur prev words cword
    _init_completion || return
    local i app=0
    for ((i = 1; i < cword; i++)); do
        [ "${words[i]}" = -- ] && app=1
    done
    case "$prev" in
        --node | --check-node | --table | --check-table)
            _filedir '@(yaml|yml|json)'
            return
            ;;
        --stats-json)
            _filedir json
            return
            ;;
        --file-prefix | --idle-exit | -l | --lcores | --main-lcore | -n | -m | -a | --allow | --vdev | --log-level)
            return
            ;;
    esac
    if [ $app -eq 1 ]; then
        COMPREPLY=($(compgen -W "--node --table --idle-exit --stats-json -h --help" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "--check-table --check-node --table -h --help -l --lcores --main-lcore
            -n -m -a --allow --vdev --no-huge --no-pci --file-prefix --log-level --" -- "$cur"))
    fi
}
complete -F _regionfwd regionfwd
