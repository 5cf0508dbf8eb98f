#!/usr/bin/env bats
# Bash completion (completions/stagecoach.bash), sourced and driven as bash
# drives it (COMP_WORDS, COMP_CWORD, then COMPREPLY): commands, each
# command's options (checked against the usage lines of --help, so the two
# cannot drift apart), file and directory arguments, and ids from real data:
# set ids from a staged set under the staging dir of the -c FILE on the
# line, snapshot ids from a real repository, source names.

load helpers

COMPLETION="$SC_ROOT/completions/stagecoach.bash"

setup() {
    sc_setup
    # shellcheck source=../../completions/stagecoach.bash
    source "$COMPLETION"
}

# Complete the words given (the last one is the word being completed);
# COMPREPLY's words in $reply, one a line, sorted.
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _stagecoach
    reply="$(printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort)"
}

# Is each word in $reply?
offers() {
    local w
    for w in "$@"; do
        grep -qxF -- "$w" <<<"$reply" || { echo "'$w' not offered; got: $reply" >&2; return 1; }
    done
}

@test "it registers itself for stagecoach" {
    [[ "$(complete -p stagecoach)" == "complete -F _stagecoach stagecoach" ]]
}

@test "the commands, as --help lists them; prefixes narrow them" {
    complete_words stagecoach ""
    local cmds
    cmds="$("$SC" --help | sed -n '/^commands:/,/^$/s/^  \([a-z]\+\).*/\1/p' | LC_ALL=C sort)"
    [ "$(wc -l <<<"$cmds")" -ge 13 ]
    [ "$reply" = "$cmds" ]
    complete_words stagecoach s
    [ "$reply" = "$(printf 'snapshots\nstage\nship\nstatus\n' | LC_ALL=C sort)" ]
    # after global options and -c's file, still the commands
    complete_words stagecoach -v -c /etc/x.conf --json re
    [ "$reply" = restore ]
    complete_words stagecoach --config=/etc/x.conf dr
    [ "$reply" = drill ]
    complete_words stagecoach --dr
    [ "$reply" = --dry-run ]
}

@test "the options of restore, and of every command as its --help names them" {
    complete_words stagecoach restore --
    offers --snapshot --set --to --identity --passphrase-file --apply --source --into --force --json
    refute offers --symmetric
    complete_words stagecoach -c x.conf restore --ap
    [ "$reply" = --apply ]
    complete_words stagecoach keygen --
    offers --out --symmetric --passphrase-file --ask-passphrase
    complete_words stagecoach run --
    offers --continuous --once
    # every --option of a command's options (COMMAND --help) is offered for it
    local cmd opts
    while read -r cmd; do
        opts="$("$SC" "$cmd" --help | sed -n '/^usage:/,/^$/p; /^options:/,/^$/p' | grep -o -- '--[a-z-]\+' | sort -u)"
        complete_words stagecoach "$cmd" --
        # shellcheck disable=SC2086
        offers $opts
    done < <("$SC" --help | sed -n '/^commands:/,/^$/s/^  \([a-z]\+\).*/\1/p')
    complete_words stagecoach config ""
    [ "$reply" = "$(printf 'check\nshow\n')" ]
}

@test "set ids from a real staged set, in the staging dir of the -c FILE on the line" {
    run --separate-stderr sc stage
    [ "$status" -eq 0 ]
    local id
    id="$(basename "$(last_line)")"
    [ -d "$STAGING/sets/$id" ]
    complete_words "$SC" -c "$CONF" ship --set ""
    [ "$reply" = "$(printf '%s\nlatest\n' "$id" | LC_ALL=C sort)" ]
    complete_words "$SC" -c "$CONF" restore --to /tmp/r --set "${id:0:4}"
    [ "$reply" = "$id" ]
    # --set=ID, as bash splits it at '='
    complete_words "$SC" --config "$CONF" verify --set = ""
    offers "$id" latest
    # another config, another staging dir: its own (no) sets
    sed 's|^dir = staging$|dir = other-staging|' "$CONF" >"$T/other.conf"
    mkdir -p "$T/other-staging/sets/20990101T000000Z"
    complete_words "$SC" -c "$T/other.conf" ship --set ""
    [ "$reply" = "$(printf '20990101T000000Z\nlatest\n')" ]
    # a config that does not load: nothing offered, nothing printed
    complete_words "$SC" -c "$T/nope.conf" ship --set ""
    [ -z "$reply" ]
}

@test "snapshot ids from a real repository; source names; files and directories" {
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    local short
    rst snapshots --json >"$T/snaps.json"
    short="$(pyjson "$T/snaps.json" 'j[0]["short_id"]')"
    [ -n "$short" ]
    complete_words "$SC" -c "$CONF" verify --snapshot ""
    [ "$reply" = "$(printf '%s\nlatest\n' "$short" | LC_ALL=C sort)" ]
    complete_words "$SC" -c "$CONF" restore --snapshot "${short:0:3}"
    [ "$reply" = "$short" ]

    complete_words "$SC" -c "$CONF" restore --snapshot latest --apply --source ""
    [ "$reply" = "$(printf 'app\netc\n')" ]

    mkdir -p "$T/dirs/alpha" "$T/dirs/beta"
    touch "$T/dirs/afile"
    complete_words "$SC" restore --to "$T/dirs/a"
    [ "$reply" = "$T/dirs/alpha" ]
    complete_words "$SC" -c "$T/dirs/a"
    [ "$reply" = "$(printf '%s\n%s\n' "$T/dirs/afile" "$T/dirs/alpha")" ]
}
