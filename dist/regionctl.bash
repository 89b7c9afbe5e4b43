# bash completion for regionctl: commands, subcommands, options and the
# values of those that take a fixed set as 'regionctl --help' and 'regionctl
# COMMAND --help' list them (so they follow the binary's own command table),
# and the live names of regions, services, links and generations from the
# running regiond, asked through the same -s/--url/--token-file the line
# already has.

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

# The options of a help text (stdin), as "-s --url ...": all of them, or with
# 'value' only those that take one ("  --name ARG", ARG in capitals).
_regionctl_opts_of() {
    if [ "$1" = value ]; then
        sed -n 's/^  \(-[a-z], \)\{0,1\}\(-\{1,2\}[a-z-]*\) [A-Z].*/\2/p'
    else
        sed -n 's/^  \(-[a-z]\)\{0,1\}[, ]*\(--[a-z-]*\)\{0,1\}.*/\1 \2/p'
    fi
}

# The values option $1 takes when they are a fixed set: the "ARG: a, b, c"
# lines under it in the help text (stdin).
_regionctl_choices_of() {
    awk -v opt="$1" '
        index($0, "  " opt " ") == 1 { on = 1; next }
        on == 1 && /^ +[A-Z]+: / { sub(/^ +[A-Z]+: /, ""); gsub(/,/, ""); print; on = 2; next }
        on == 2 && /^      / { gsub(/,/, ""); print; next }
        { on = 0 }'
}

_regionctl() {
    local cur prev words cword
    _init_completion || return
    local prog=${words[0]} i w cmd="" sub="" npos=0 given=" " help vopts

    # Options that take a value, from the help texts: the global ones, then
    # the command's once it is known (a fixed list once missed capture's and
    # top's, and counted their values as arguments).
    help=$("$prog" --help 2>/dev/null)
    vopts=" $(_regionctl_opts_of value <<<"$help" | tr '\n' ' ')"
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case "$w" in
            -*)
                given+="$w "
                [[ $vopts == *" $w "* ]] && ((i++))
                ;;
            *)
                if [ -z "$cmd" ]; then
                    cmd=$w
                elif [ -z "$sub" ] && [[ $cmd == show || $cmd == filter || $cmd == help || $cmd == prefixes || $cmd == fleet || $cmd == link ]]; then
                    sub=$w
                else
                    ((npos++))
                    continue
                fi
                help=$("$prog" $cmd $sub --help 2>/dev/null)
                vopts+="$(_regionctl_opts_of value <<<"$help" | tr '\n' ' ') "
                ;;
        esac
    done

    if [[ $prev == -* && $vopts == *" $prev "* ]]; then
        case "$prev" in
            -s | --token-file | --ca | --cert | --key | -w)
                _filedir
                ;;
            --names-dir)
                _filedir -d
                ;;
            --url)
                COMPREPLY=($(compgen -W "http://" -- "$cur"))
                compopt -o nospace
                ;;
            --region | --service | --link)
                COMPREPLY=($(compgen -W "$(_regionctl_live show "${prev#--}"s)" -- "$cur"))
                ;;
            *)
                # a fixed set (top --sort, capture --reason), else free text
                COMPREPLY=($(compgen -W "$(_regionctl_choices_of "$prev" <<<"$help")" -- "$cur"))
                ;;
        esac
        return
    fi

    if [[ $cur == -* ]]; then
        # The global options as 'regionctl --help' lists them (a fixed
        # list once left out --ca, --cert, --key and --names-dir), then the
        # command's; none already given (each is taken once), and neither
        # of -s and --url once the other is (one place to talk to).
        local opts o left=""
        opts="$("$prog" --help 2>/dev/null | sed -n '/^global options/,/^$/p' | _regionctl_opts_of)"
        [ -n "$cmd" ] && opts+=" $(sed -n '/^options:/,/^$/p' <<<"$help" | _regionctl_opts_of)"
        [[ $given == *" -s "* ]] && given+="--url "
        [[ $given == *" --url "* ]] && given+="-s "
        for o in $opts; do
            [[ $given == *" $o "* ]] || left+="$o "
        done
        COMPREPLY=($(compgen -W "$left" -- "$cur"))
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
