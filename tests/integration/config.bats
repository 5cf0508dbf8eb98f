#!/usr/bin/env bats
# config check / config show, environment overrides, the global command line.

load helpers

BAD_DIR="$BATS_TEST_DIRNAME/../configs/bad"

setup() {
    sc_setup
}

teardown() {
    sc_teardown
}

@test "config check on a good config: exit 0, and it touches nothing" {
    rm -f "$DB" "$DB-wal" "$DB-shm" # config check does not look at the sources
    run --separate-stderr sc config check
    echo "$output $stderr"
    [ "$status" -eq 0 ]
    [[ "$output" == *"ok"* ]]
    [ ! -e "$STAGING" ]
    [ ! -e "$REPO" ]
    [ ! -e "$DB" ]
}

@test "config check on every file in tests/configs/bad: exit 3 naming the file, the line and the key" {
    local f n=0 failed=() want_lines want_name alts ok line
    for f in "$BAD_DIR"/*.conf; do
        n=$((n + 1))
        f="$(cd "${f%/*}" && pwd)/${f##*/}"
        want_lines="$(sed -n 's/^; expect-line: *//p' "$f")"
        want_name="$(sed -n 's/^; expect-name: *//p' "$f")"
        run --separate-stderr "$SC" -c "$f" config check
        if [ "$status" -ne 3 ]; then
            failed+=("${f##*/}: exit $status, expected 3")
            continue
        fi
        # one of the problem lines is "[DATE TIME] ERROR FILE:LINE: ..." with
        # LINE one of the expected lines, and names the key (or section)
        alts="${want_lines//,/|}"
        ok=0
        while IFS= read -r line; do
            if [[ "$line" =~ ^\[[0-9-]{10}\ [0-9:]{8}\]\ ERROR\ "$f":($alts):\  ]] &&
                [[ "$line" == *"$want_name"* ]]; then
                ok=1
            fi
        done <<<"$stderr"
        if [ "$ok" -ne 1 ]; then
            failed+=("${f##*/}: no problem line at $f:{$want_lines} naming '$want_name'; got: $stderr")
        fi
    done
    echo "checked $n bad configs"
    [ "$n" -ge 12 ]
    if [ "${#failed[@]}" -gt 0 ]; then
        printf 'FAILED: %s\n\n' "${failed[@]}"
        false
    fi
}

@test "config check lists every problem of a file at once" {
    cat >"$T/many.conf" <<EOF
[staging]
dir = staging
keep = many
[sqlite app]
path = db/app.db
check = maybe
[restic]
repository = $REPO
password_file = restic.pass
init = perhaps
EOF
    run --separate-stderr "$SC" -c "$T/many.conf" config check
    echo "$stderr"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"$T/many.conf:3: "*keep* ]]
    [[ "$stderr" == *"$T/many.conf:6: "*check* ]]
    [[ "$stderr" == *"$T/many.conf:10: "*init* ]]
}

@test "a command other than config with a bad config: exit 3 before touching anything" {
    sed -i 's/^keep = .*/keep = lots/' "$CONF"
    run --separate-stderr sc stage
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"$CONF:"*keep* ]]
    [ ! -e "$STAGING" ]
}

@test "config show prints the effective config with relative paths resolved" {
    run --separate-stderr sc config show
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"[staging]"* ]]
    [[ "$output" == *"dir = $T/staging"* ]]
    [[ "$output" == *"[sqlite app]"* ]]
    [[ "$output" == *"path = $T/db/app.db"* ]]
    [[ "$output" == *"[paths etc]"* ]]
    [[ "$output" == *"path = $T/etc/app"* ]]
    [[ "$output" == *"password_file = $T/restic.pass"* ]]
    [[ "$output" == *"host = $HOSTNAME_CONF"* ]]
    [[ "$output" == *"tag = $TAG_CONF"* ]]
    [[ "$output" == *"keep = 3"* ]]
    # the file's content (the password) is not shown, only its path
    [[ "$output" != *"$(cat "$PASS")"* ]]
}

@test "config show redacts credentials in a repository URL" {
    sed -i 's|^repository = .*|repository = rest:https://backupuser:Sup3rS3cret@backup.example.com:8000/tracker/|' "$CONF"
    run --separate-stderr sc config show
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" != *"Sup3rS3cret"* ]]
    [[ "$stderr" != *"Sup3rS3cret"* ]]
    [[ "$output" == *"backup.example.com:8000/tracker/"* ]]
    # also when the URL comes from the environment
    STAGECOACH_RESTIC_REPOSITORY='rest:https://u:EnvS3cret@host.example/' run --separate-stderr sc config show
    [ "$status" -eq 0 ]
    [[ "$output" != *"EnvS3cret"* ]]
    [[ "$output" == *"host.example/"* ]]
    # and in a problem message about it
    sed -i 's|^init = yes|init = yes\nrepository_file = repo.txt|' "$CONF"
    run --separate-stderr sc config check
    [ "$status" -eq 3 ]
    [[ "$stderr" != *"Sup3rS3cret"* ]]
}

@test "STAGECOACH_<SECTION>_<KEY> overrides the file" {
    STAGECOACH_RESTIC_HOST=x run --separate-stderr sc config show
    [ "$status" -eq 0 ]
    [[ "$output" == *$'\nhost = x\n'* ]]
    [[ "$output" != *"host = $HOSTNAME_CONF"* ]]
    # a source's key, section name upper-cased
    STAGECOACH_SQLITE_APP_PATH=/srv/other.db run --separate-stderr sc config show
    [ "$status" -eq 0 ]
    [[ "$output" == *"path = /srv/other.db"* ]]
    [[ "$output" != *"path = $T/db/app.db"* ]]
    # typed like the file: a bad boolean is a config error naming the variable
    STAGECOACH_RESTIC_INIT=maybe run --separate-stderr sc config check
    [ "$status" -eq 3 ]
    [[ "$stderr" == *STAGECOACH_RESTIC_INIT* ]]
}

@test "an unknown STAGECOACH_ variable is a config error (exit 3)" {
    STAGECOACH_NOSUCH_KEY=1 run --separate-stderr sc config check
    echo "$stderr"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *STAGECOACH_NOSUCH_KEY* ]]
    STAGECOACH_NOSUCH_KEY=1 run --separate-stderr sc stage
    [ "$status" -eq 3 ]
    [ ! -e "$STAGING" ]
}

@test "-c FILE wins over \$STAGECOACH_CONFIG, which wins over the default" {
    # $STAGECOACH_CONFIG alone
    STAGECOACH_CONFIG="$CONF" run --separate-stderr "$SC" config show
    [ "$status" -eq 0 ]
    [[ "$output" == *"$CONF"* ]]
    [[ "$output" == *"host = $HOSTNAME_CONF"* ]]
    # -c wins over a broken $STAGECOACH_CONFIG
    STAGECOACH_CONFIG="$T/nonexistent.conf" run --separate-stderr "$SC" -c "$CONF" config check
    [ "$status" -eq 0 ]
    # and -c pointing at a missing file fails even with a good $STAGECOACH_CONFIG
    STAGECOACH_CONFIG="$CONF" run --separate-stderr "$SC" -c "$T/nonexistent.conf" config check
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"$T/nonexistent.conf"* ]]
    # --config=FILE is -c too
    run --separate-stderr "$SC" --config="$CONF" config check
    [ "$status" -eq 0 ]
}

@test "a missing config file: exit 3 naming it" {
    run --separate-stderr "$SC" -c "$T/none.conf" stage
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"$T/none.conf"* ]]
}

@test "usage errors: unknown command, unknown option, missing -c argument: exit 2" {
    run --separate-stderr sc frobnicate
    [ "$status" -eq 2 ]
    [[ "$stderr" == *frobnicate* ]]
    run --separate-stderr sc stage --bogus
    [ "$status" -eq 2 ]
    [[ "$stderr" == *--bogus* ]]
    run --separate-stderr sc config
    [ "$status" -eq 2 ]
    run --separate-stderr sc config frobnicate
    [ "$status" -eq 2 ]
    run --separate-stderr sc verify --set latest --snapshot latest
    [ "$status" -eq 2 ]
    run --separate-stderr "$SC"
    [ "$status" -eq 2 ]
    run --separate-stderr "$SC" -c
    [ "$status" -eq 2 ]
    # none of them staged anything
    [ ! -e "$STAGING/sets" ]
}

@test "--version and --help: exit 0" {
    run --separate-stderr "$SC" --version
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^stagecoach\ [0-9]+\.[0-9]+\.[0-9]+ ]]
    run --separate-stderr "$SC" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *usage:* ]]
    [[ "$output" == *"config check"* ]]
}

@test "--help gives every command a line; COMMAND --help its usage, every option it takes, examples" {
    run --separate-stderr "$SC" --help
    [ "$status" -eq 0 ]
    local cmds cmd n=0
    cmds="$(sed -n '/^commands:/,/^$/s/^  \([a-z]\+\) .*/\1/p' <<<"$output")"
    # every command has a one-line description beside its name
    [ "$(sed -n '/^commands:/,/^$/p' <<<"$output" | grep -c '^  [a-z].*  [a-z]')" -eq "$(wc -l <<<"$cmds")" ]
    for cmd in $cmds; do
        n=$((n + 1))
        run --separate-stderr "$SC" "$cmd" --help
        [ "$status" -eq 0 ]
        [[ "${lines[0]}" == "usage: stagecoach $cmd"* ]]
        [[ "$output" == *$'\nexample'* ]]
        [ "$(grep -c "^  stagecoach .*$cmd" <<<"$output")" -ge 1 ]
        # each --option in the usage line is explained under options:
        local opt usage_opts
        usage_opts="$(sed -n '/^usage:/,/^$/p' <<<"$output" | grep -o -- '--[a-z-]\+' | sort -u)"
        for opt in $usage_opts; do
            sed -n '/^options:/,/^$/p' <<<"$output" | grep -q -- "^  $opt"
        done
        # "help COMMAND" says the same, and nothing ran (no config needed)
        [ "$(env -u STAGECOACH_CONFIG "$SC" -c /nonexistent help "$cmd")" = "$output" ]
    done
    [ "$n" -eq 13 ]
    run --separate-stderr "$SC" bogus --help
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"unknown command 'bogus'"* ]]
}
