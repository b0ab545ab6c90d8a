# bash completion for archfarm(1) -- installed as
# /usr/share/bash-completion/completions/archfarm.
#
# Commands and flags are read from `archfarm --help` and `archfarm CMD
# --help`, so they cannot drift from the binary; node names and platforms
# come from the inventory (-i on the line, else $ARCHFARM_INVENTORY) through
# `archfarm inventory list`, which reads the file only (no network).

# the inventory named on the command line, as "-i FILE" words
_archfarm_inv_args() {
    local i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        case ${COMP_WORDS[i]} in
        -i | --inventory)
            printf '%s\n' -i "${COMP_WORDS[i + 1]}"
            return
            ;;
        --inventory=*)
            printf '%s\n' -i "${COMP_WORDS[i]#--inventory=}"
            return
            ;;
        esac
    done
}

# "archfarm inventory list" table: NAME ENDPOINT PLATFORMS ...
_archfarm_inventory() {
    local -a inv
    mapfile -t inv < <(_archfarm_inv_args)
    "${COMP_WORDS[0]}" "${inv[@]}" inventory list 2>/dev/null | awk 'NR > 1'
}

_archfarm_nodes() { _archfarm_inventory | awk '{print $1}'; }

_archfarm_platforms() {
    {
        _archfarm_inventory | awk '{n = split($3, p, ","); for (i = 1; i <= n; i++) print p[i]}'
        printf '%s\n' linux/amd64 linux/arm64 linux/arm/v7 linux/arm/v6 linux/386 \
            linux/ppc64le linux/s390x linux/riscv64
    } | sort -u
}

# option lines of `archfarm [CMD] --help`: "  -t, --tag REF   ..." -> -t --tag
_archfarm_flags() {
    "${COMP_WORDS[0]}" "$@" --help 2>/dev/null |
        sed -nE 's/^ {2}(-[A-Za-z0-9], )?(--[a-z][a-z-]*).*/\1 \2/p' | tr -d ',' | tr ' ' '\n' |
        sed '/^$/d'
}

_archfarm_commands() {
    "${COMP_WORDS[0]}" --help 2>/dev/null |
        awk '/^Commands:/ {f = 1; next} /^$/ {f = 0} f && /^  [a-z]/ {print $1}' | sort -u
    echo help
}

_archfarm() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()
    # the command: the first word that is not a global option or its value
    local i cmd='' sub=''
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        -i | --inventory) ((i++)) ;;
        -*) ;;
        *)
            if [[ -z $cmd ]]; then
                cmd=${COMP_WORDS[i]}
            elif [[ -z $sub && ($cmd == inventory || $cmd == imagetools) ]]; then
                sub=${COMP_WORDS[i]}
            fi
            ;;
        esac
    done

    case $prev in
    -i | --inventory | -f | --file | --metadata-file)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
        ;;
    --platform)
        # a comma list: complete the last element
        local head='' last=$cur
        if [[ $cur == *,* ]]; then
            head=${cur%,*},
            last=${cur##*,}
        fi
        mapfile -t COMPREPLY < <(compgen -P "$head" -W "$(_archfarm_platforms)" -- "$last")
        compopt -o nospace 2>/dev/null
        return
        ;;
    --progress)
        mapfile -t COMPREPLY < <(compgen -W "auto plain tty gha json" -- "$cur")
        return
        ;;
    --format)
        mapfile -t COMPREPLY < <(compgen -W "table json text" -- "$cur")
        return
        ;;
    -t | --tag | --build-arg | --target | --insecure-registry | --timeout | --retries | \
        --node-selector | --heartbeat-interval | --liveness | --probe-timeout | --name)
        return
        ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$(_archfarm_flags)" -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$(_archfarm_commands)" -- "$cur")
        fi
        return
    fi
    if [[ $cur == -* ]]; then
        local -a words=("$cmd")
        [[ -n $sub ]] && words+=("$sub")
        mapfile -t COMPREPLY < <(compgen -W "$(_archfarm_flags "${words[@]}")" -- "$cur")
        return
    fi
    case $cmd in
    build)
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        ;;
    inspect)
        mapfile -t COMPREPLY < <(compgen -W "$(_archfarm_nodes)" -- "$cur")
        ;;
    inventory)
        if [[ -z $sub ]]; then
            mapfile -t COMPREPLY < <(compgen -W "check list" -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        fi
        ;;
    imagetools)
        [[ -z $sub ]] && mapfile -t COMPREPLY < <(compgen -W "inspect create" -- "$cur")
        ;;
    keygen)
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        ;;
    esac
}
complete -F _archfarm archfarm
