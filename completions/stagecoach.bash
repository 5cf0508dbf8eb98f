# bash completion for stagecoach(1): commands, their options, set ids (the
# directories under the configured staging dir's sets/), snapshot ids
# (`stagecoach --json snapshots`) and source names. The staging dir and the
# sources come from `stagecoach config show`, run with the -c FILE already
# on the command line, so they are those the command will use.
# Installed as $(PREFIX)/share/bash-completion/completions/stagecoach.

_stagecoach_commands="stage ship run verify restore drill snapshots check forget status doctor config keygen"
_stagecoach_global_opts="-c --config --json -v --verbose -q --quiet --dry-run --version --help -h"

# The options of one command (src/cmd/*.c).
_stagecoach_command_opts() {
    case $1 in
    ship) echo "--set" ;;
    run) echo "--continuous --once" ;;
    verify) echo "--set --snapshot --identity --passphrase-file" ;;
    restore) echo "--snapshot --set --to --identity --passphrase-file --apply --source --into --force" ;;
    drill) echo "--snapshot --identity --passphrase-file" ;;
    keygen) echo "--out --symmetric --passphrase-file --ask-passphrase" ;;
    esac
}

# The program being completed and its -c FILE, as an array in
# _stagecoach_argv (the binary first), for the helpers below.
_stagecoach_prog_argv() {
    local prog=${COMP_WORDS[0]} i j w
    [[ $prog == \~/* ]] && prog=$HOME/${prog#\~/}
    _stagecoach_argv=("$prog")
    for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
        -c | --config)
            # "--config=FILE" usually reaches us as --config, "=", FILE
            j=$((i + 1))
            [ "${COMP_WORDS[j]:-}" = "=" ] && j=$((j + 1))
            w=${COMP_WORDS[j]:-}
            i=$j
            [ "$j" -eq "$COMP_CWORD" ] && continue
            ;;
        --config=*) w=${w#--config=} ;;
        --) break ;;
        *) continue ;;
        esac
        [[ $w == \~/* ]] && w=$HOME/${w#\~/}
        [ -n "$w" ] && _stagecoach_argv+=(-c "$w")
    done
}

# Run the program quietly, bounded in time (it may wait on a repository).
_stagecoach_call() {
    local t=
    command -v timeout >/dev/null 2>&1 && t="timeout 15"
    $t "${_stagecoach_argv[@]}" -q "$@" 2>/dev/null </dev/null
}

# `config show`'s [staging] dir.
_stagecoach_staging_dir() {
    _stagecoach_call config show | awk '
        /^\[/ { section = $0; next }
        section == "[staging]" && /^dir = / { sub(/^dir = /, ""); print; exit }'
}

_stagecoach_set_ids() {
    local dir d
    dir=$(_stagecoach_staging_dir)
    [ -n "$dir" ] || return 0
    echo latest
    for d in "$dir"/sets/*/; do
        [ -d "$d" ] || continue
        d=${d%/}
        echo "${d##*/}"
    done
}

_stagecoach_snapshot_ids() {
    echo latest
    _stagecoach_call --json snapshots | sed -n 's/^ *"short_id": *"\([0-9a-f]*\)".*/\1/p'
}

# Source names: the [KIND NAME] sections of `config show`.
_stagecoach_sources() {
    _stagecoach_call config show | sed -n 's/^\[[a-z]* \([^]]*\)\]$/\1/p'
}

_stagecoach() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]:-}
    # "--opt=VALUE": COMP_WORDBREAKS splits it into --opt, "=", VALUE
    if [ "$prev" = "=" ] && [ "$COMP_CWORD" -ge 2 ]; then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    elif [ "$cur" = "=" ]; then
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        cur=
    fi
    COMPREPLY=()

    # the command: the first word that is neither an option nor -c's file
    local i w cmd='' cmd_at=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
        -c | --config)
            i=$((i + 1))
            [ "${COMP_WORDS[i]:-}" = "=" ] && i=$((i + 1))
            ;;
        -*) ;;
        =) ;;
        *)
            cmd=$w
            cmd_at=$i
            break
            ;;
        esac
    done

    case $prev in
    -c | --config | --identity | --passphrase-file | --out)
        compopt -o filenames 2>/dev/null || true
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
        ;;
    --to)
        compopt -o filenames 2>/dev/null || true
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        return 0
        ;;
    --set | --snapshot | --source)
        _stagecoach_prog_argv
        local lister=_stagecoach_set_ids
        [ "$prev" = --snapshot ] && lister=_stagecoach_snapshot_ids
        [ "$prev" = --source ] && lister=_stagecoach_sources
        mapfile -t COMPREPLY < <(compgen -W "$($lister)" -- "$cur")
        return 0
        ;;
    --into)
        return 0
        ;;
    esac

    if [ -z "$cmd" ]; then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$_stagecoach_global_opts" -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$_stagecoach_commands" -- "$cur")
        fi
        return 0
    fi
    if [ "$cmd" = config ] && [ "$COMP_CWORD" -eq $((cmd_at + 1)) ] && [[ $cur != -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "check show" -- "$cur")
        return 0
    fi
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_stagecoach_command_opts "$cmd") $_stagecoach_global_opts" -- "$cur")
    fi
    return 0
}

complete -F _stagecoach stagecoach
