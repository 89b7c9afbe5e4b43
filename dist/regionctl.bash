# bash completion for regionctl: commands, subcommands and options as
# 'regionctl --help' and 'regionctl COMMAND --help' list them (so they follow
# the binary's own command table), and the live names of regions, services,
# links and generations from the running regiond, asked through the same
# -s/--url/--token-file the line already has.

# The global options typed so far on the line, to reach the same regiond.
_regionctl_globals() {
    local i w
    _regionctl_g=()
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        w=${COMP_WORDS[i]}
        case "$w" in
            -s | --url | --token-file | --ca | --cert | --key | --timeout) _regionctl_g+=("$w" "${COMP_WORDS[i + 1]}") ;;
        esac
    done
}

# The first column of a live listing ("show regions", "history"), without
# its header line and link groups.
_regionctl_live() {
    _regionctl_globals
    timeout 3 "${COMP_WORDS[0]}" "${_regionctl_g[@]}" "$@" 2>/dev/null |
        awk 'NR > 1 && $1 != "group" { print $1 }'
}

_regionctl() {
    local cur prev words cword
    _init_completion || return
    local prog=${words[0]} i w cmd="" sub="" npos=0

    case "$prev" in
        -s | --token-file | --ca | --cert | --key)
            _filedir
            return
            ;;
        --names-dir)
            _filedir -d
            return
            ;;
        --url)
            COMPREPLY=($(compgen -W "http://" -- "$cur"))
            compopt -o nospace
            return
            ;;
        --payload | --payload-hex | --sni | --host | --qname | --comment | --confirm-timeout | \
            --author | --expected-generation | --canary | --canary-label | --bake | --wave | \
            --sync-timeout | --max-drop-pps | --max-drop-pct | --max-health | --wait-timeout | --timeout)
            return
            ;;
    esac
    # The command and subcommand so far, and how many arguments follow them.
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case "$w" in
            -s | --url | --token-file | --ca | --cert | --key | --names-dir | --timeout) ((i++)) ;;
            --payload | --payload-hex | --sni | --host | --qname | --comment | --confirm-timeout | \
                --author | --expected-generation | --canary | --canary-label | --bake | --wave | \
                --sync-timeout | --max-drop-pps | --max-drop-pct | --max-health | --wait-timeout) ((i++)) ;;
            -*) ;;
            *)
                if [ -z "$cmd" ]; then
                    cmd=$w
                elif [ -z "$sub" ] && [[ $cmd == show || $cmd == filter || $cmd == help || $cmd == prefixes || $cmd == fleet || $cmd == link ]]; then
                    sub=$w
                else
                    ((npos++))
                fi
                ;;
        esac
    done

    if [[ $cur == -* ]]; then
        # The global options as 'regionctl --help' lists them (a fixed
        # list once left out --ca, --cert, --key and --names-dir).
        local opts="$("$prog" --help 2>/dev/null | sed -n '/^global options/,/^$/s/^  \(-[a-z]\)\{0,1\}[, ]*\(--[a-z-]*\)\{0,1\}.*/\1 \2/p')"
        if [ -n "$cmd" ]; then
            opts+=" $("$prog" $cmd $sub --help 2>/dev/null | sed -n 's/^  \(--[a-z-]*\).*/\1/p')"
        fi
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "$("$prog" --help 2>/dev/null |
            sed -n '/^commands:/,/^$/s/^  \([a-z]*\).*/\1/p' | sort -u)" -- "$cur"))
        return
    fi
    case "$cmd" in
        show | filter | help | prefixes | fleet | link)
            if [ -z "$sub" ]; then
                if [ "$cmd" = help ]; then
                    COMPREPLY=($(compgen -W "$("$prog" --help 2>/dev/null |
                        sed -n '/^commands:/,/^$/s/^  \([a-z]*\).*/\1/p' | sort -u)" -- "$cur"))
                else
                    COMPREPLY=($(compgen -W "$("$prog" "$cmd" --help 2>/dev/null |
                        sed -n '/^subcommands:/,/^$/s/^  \([a-z]*\) .*/\1/p')" -- "$cur"))
                fi
                return
            fi
            # prefixes add|remove|list REGION, then add|remove's FILE
            if [ "$cmd" = prefixes ]; then
                if [ $npos -eq 0 ]; then
                    COMPREPLY=($(compgen -W "$(_regionctl_live show regions)" -- "$cur"))
                elif [ $npos -eq 1 ] && [ "$sub" != list ]; then
                    _filedir
                fi
                return
            fi
            # link down|up|drain|weight LINK
            if [ "$cmd" = link ]; then
                [ $npos -eq 0 ] && COMPREPLY=($(compgen -W "$(_regionctl_live show links)" -- "$cur"))
                return
            fi
            # fleet apply FILE
            if [ "$cmd" = fleet ]; then
                [ "$sub" = apply ] && [ $npos -eq 0 ] && _filedir '@(yaml|yml|json)'
                return
            fi
            if [ "$cmd" = show ] && [ $npos -eq 0 ]; then
                case "$sub" in
                    regions | services | links)
                        COMPREPLY=($(compgen -W "$(_regionctl_live show "$sub")" -- "$cur"))
                        ;;
                esac
            fi
            ;;
        rollback)
            [ $npos -eq 0 ] && COMPREPLY=($(compgen -W "$(_regionctl_live history)" -- "$cur"))
            ;;
        validate | diff | apply)
            [ $npos -eq 0 ] && _filedir '@(yaml|yml|json)'
            ;;
        explain)
            [ $npos -eq 2 ] && COMPREPLY=($(compgen -W "tcp udp sctp icmp icmpv6" -- "$cur"))
            ;;
    esac
}
complete -F _regionctl regionctl
