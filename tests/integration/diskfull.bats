#!/usr/bin/env bats
# Staging on a full file system: a 4 MiB tmpfs. A stage that does not fit
# fails with exit 5 and a message naming the path, removes its partial set,
# leaves the earlier sets intact (they still verify), and once space is
# freed the next stage succeeds. The after_stage hook (the one that
# restarts a stopped service) runs on that failure too.

load helpers

setup() {
    sc_setup
    if [ "$(id -u)" -ne 0 ]; then
        skip "needs root to mount a tmpfs"
    fi
    SMALL="$T/small"
    mkdir -p "$SMALL"
    if ! mount -t tmpfs -o size=4m,mode=0755 tmpfs "$SMALL"; then
        skip "cannot mount a tmpfs here"
    fi
    MOUNTED=1
    STAGING="$SMALL/staging"
    sed -i "s|^dir = staging$|dir = $STAGING|" "$CONF"
    grep -q "^dir = $STAGING\$" "$CONF"
}

teardown() {
    sc_teardown
    if [ "${MOUNTED:-0}" -eq 1 ]; then
        umount "$SMALL" || umount -l "$SMALL"
    fi
}

# Bytes free on the tmpfs.
free_bytes() {
    local a s
    read -r a s < <(stat -f -c '%a %S' "$SMALL")
    echo $((a * s))
}

# Fill the tmpfs so that about $1 bytes stay free (tmpfs counts 4 KiB pages).
leave_free() {
    rm -f "$SMALL/filler"
    local want=$1 have
    have=$(free_bytes)
    if [ "$have" -gt "$want" ]; then
        fallocate -l $((have - want)) "$SMALL/filler"
    fi
}

# Grow the database with incompressible rows: about $1 KiB more.
grow_db() {
    sqlite3 "$DB" "CREATE TABLE IF NOT EXISTS ballast (b BLOB);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
        INSERT INTO ballast SELECT randomblob(1000) FROM n;"
}

# The earlier set is intact: verify (hashes), b2sum -c, and its copy of the
# database holds the rows it held.
earlier_set_intact() {
    local id=${1##*/}
    run --separate-stderr sc verify --set "$id"
    [ "$status" -eq 0 ]
    b2sum_check "$1"
    [ "$(sqlite3 "$1/sqlite/app.db" 'SELECT count(*) FROM torrents')" -eq 1234 ]
}

@test "the database copy does not fit: exit 5 naming the path, partial set removed, earlier set intact; freeing space lets the next stage succeed" {
    stage_ok
    local first=$SET
    # a database larger than the space left
    grow_db 4500
    local dbsize
    dbsize=$(stat -c %s "$DB")
    [ "$dbsize" -gt "$(free_bytes)" ]
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 5 ]
    # one clear line that names where it could not write, and why
    [[ "$stderr" == *"$STAGING/"* ]]
    [[ "$stderr" == *"full"* || "$stderr" == *"No space left"* ]]
    [ "$(grep -c '] ERROR ' <<<"$stderr")" -eq 1 ]
    [ -z "$output" ]
    refute sc_tmp_left
    [ "$(sc_sets)" = "${first##*/}" ]
    earlier_set_intact "$first"
    # --json says the same thing
    run --separate-stderr sc --json stage
    [ "$status" -eq 5 ]
    echo "$output" >"$T/report.json"
    [ "$(pyjson "$T/report.json" 'j["exit_code"]')" -eq 5 ]
    [[ "$(pyjson "$T/report.json" 'j["error"]')" == *"$STAGING/"* ]]
    refute sc_tmp_left
    # the read-only commands still work on the full disk
    run --separate-stderr sc status
    [ "$status" -eq 0 ]
    [[ "$output" == *"${first##*/}"* ]]

    # free space (a bigger tmpfs): the next stage succeeds and has the rows
    mount -o remount,size=16m "$SMALL"
    stage_ok
    [ "$SET" != "$first" ]
    run --separate-stderr sc verify --set latest
    [ "$status" -eq 0 ]
    [ "$(sqlite3 "$SET/sqlite/app.db" 'SELECT count(*) FROM ballast')" -eq 4500 ]
    earlier_set_intact "$first"
}

@test "the paths archive does not fit: exit 5 naming the archive, partial set removed, earlier set intact" {
    stage_ok
    local first=$SET
    head -c 5000000 /dev/urandom >"$CFGDIR/big.bin"
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 5 ]
    [[ "$stderr" == *"$STAGING/"*"paths/etc.tar"* ]]
    [[ "$stderr" == *"No space left"* ]]
    refute sc_tmp_left
    [ "$(sc_sets)" = "${first##*/}" ]
    earlier_set_intact "$first"
    rm "$CFGDIR/big.bin"
    stage_ok
    [ "$(sc_sets | wc -l)" -eq 2 ]
}

# Stage with config $1 under each amount of free space in "${SIZES[@]}":
# each stage either succeeds (its set verifies; it is then removed to make
# room again) or exits 5 naming the staging path; never a .tmp-* left,
# never a change to the first set ($FIRST). Counts into OK and FULL, the
# failure messages into WHERE.
sweep() {
    local conf=$1 free
    for free in "${SIZES[@]}"; do
        leave_free "$free"
        run --separate-stderr "$SC" -c "$conf" stage
        if [ "$status" -eq 0 ]; then
            OK=$((OK + 1))
            run --separate-stderr "$SC" -c "$conf" verify --set latest
            [ "$status" -eq 0 ]
            local id
            id="$(sc_sets | tail -n 1)"
            b2sum_check "$STAGING/sets/$id"
            rm -rf "${STAGING:?}/sets/$id"
        else
            FULL=$((FULL + 1))
            if [ "$status" -ne 5 ] || [[ "$stderr" != *"$STAGING/"* ]]; then
                echo "free $free: exit $status: $stderr" >&2
                return 1
            fi
            # what could not be written, relative to the set
            WHERE+=("$(sed -n 's|.*/\.tmp-[^/]*/||p' <<<"$stderr" | tail -n 1)")
        fi
        if sc_tmp_left; then
            echo "free $free: a .tmp-* was left" >&2
            return 1
        fi
        [ "$(sc_sets)" = "${FIRST##*/}" ]
        earlier_set_intact "$FIRST"
    done
}

@test "free space swept from none to enough: every stage either succeeds with a set that verifies or exits 5 leaving nothing behind" {
    grow_db 600
    stage_ok
    FIRST=$SET
    OK=0 FULL=0 WHERE=()
    local need k
    need=$(du -sB1 "$SET" | cut -f1)
    echo "a set needs about $need bytes"
    # Amounts of free space across the database copy (SQLite needs more
    # than the copy's size while it works) and the archive.
    SIZES=(0 4096 262144)
    for ((k = need - 32768; k <= need + 98304; k += 4096)); do
        SIZES+=("$k")
    done
    sweep "$CONF"
    # A paths-only set, one page at a time around its size: the archive,
    # then MANIFEST.json, then B2SUMS run out of space.
    head -c 300000 /dev/urandom >"$CFGDIR/blob.bin"
    sed '/^\[sqlite app\]$/,/^$/d' "$CONF" >"$T/paths-only.conf"
    refute grep -q sqlite "$T/paths-only.conf"
    run --separate-stderr "$SC" -c "$T/paths-only.conf" stage
    [ "$status" -eq 0 ]
    need=$(du -sB1 "$(last_line)" | cut -f1)
    rm -rf "$(last_line)"
    SIZES=()
    for ((k = need - 24576; k <= need + 8192; k += 4096)); do
        SIZES+=("$k")
    done
    sweep "$T/paths-only.conf"

    printf '%s\n' "${WHERE[@]}" | sort | uniq -c
    echo "stages: $((OK + FULL)); succeeded: $OK; exit 5: $FULL"
    # the sweep saw both outcomes, and failures at each kind of write
    [ "$OK" -ge 2 ]
    printf '%s\n' "${WHERE[@]}" | grep -q '^sqlite/app.db'
    printf '%s\n' "${WHERE[@]}" | grep -q '^paths/etc.tar'
    printf '%s\n' "${WHERE[@]}" | grep -q '^MANIFEST.json'
    printf '%s\n' "${WHERE[@]}" | grep -q '^B2SUMS'
}

@test "run on a full staging disk: exit 5, nothing shipped, and the after_stage hook (service restart) and on_failure still run" {
    stage_ok
    local first=$SET
    cat >"$T/hook.sh" <<EOF
#!/bin/sh
echo "\$1 status=\$STAGECOACH_STATUS exit=\$STAGECOACH_EXIT_CODE" >>"$T/hooks.log"
EOF
    chmod 700 "$T/hook.sh"
    cat >>"$CONF" <<EOF

[hooks]
before_stage = $T/hook.sh before_stage
after_stage = $T/hook.sh after_stage
on_failure = $T/hook.sh on_failure
EOF
    grow_db 4500
    run --separate-stderr sc run
    echo "$stderr"
    cat "$T/hooks.log" || true
    [ "$status" -eq 5 ]
    [[ "$stderr" == *"$STAGING/"* ]]
    refute sc_tmp_left
    [ ! -e "$REPO" ] # nothing was shipped (the repository was never even created)
    [ "$(sc_sets)" = "${first##*/}" ]
    earlier_set_intact "$first"
    grep -q '^before_stage ' "$T/hooks.log"
    grep -q '^after_stage status=failure exit=5$' "$T/hooks.log"
    grep -q '^on_failure status=failure exit=5$' "$T/hooks.log"
}

@test "verify --set of a pages set without room to rebuild it: exit 5 naming the scratch space, not a failed verification; room for the database alone is enough" {
    sed -i 's|^path = db/app.db$|path = db/app.db\nlayout = pages|' "$CONF"
    grow_db 1000
    stage_ok
    [ -f "$SET/sqlite/app.pagemap" ]
    local dbsize
    dbsize=$(stat -c %s "$DB")
    leave_free $((dbsize / 2))
    run --separate-stderr sc verify --set latest
    echo "$stderr"
    [ "$status" -eq 5 ]
    [[ "$stderr" == *"$STAGING/.verify-"* ]]
    [[ "$stderr" == *"No space left"* ]]
    [ "$(grep -c '] ERROR ' <<<"$stderr")" -eq 1 ]
    [ -z "$(find "$STAGING" -maxdepth 1 -name '.verify-*')" ]
    b2sum_check "$SET"
    # room for the database alone is enough: a plain set is rebuilt from its
    # own packs, not from a copy of them
    leave_free $((dbsize + dbsize / 4))
    run --separate-stderr sc verify --set latest
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"rebuilt sqlite/app.db from its page map"* ]]
    [ -z "$(find "$STAGING" -maxdepth 1 -name '.verify-*')" ]
}
