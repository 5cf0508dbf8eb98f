#!/usr/bin/env bats
# Torrust POC compatibility: with no config file, the POC container's
# variables configure an equivalent backup (seed research §1.2).

load helpers

poc_env() {
    env -i PATH="$PATH" HOME="$HOME" RESTIC_CACHE_DIR="$BATS_TEST_TMPDIR/cache" \
        "$@"
}

setup() {
    W="$BATS_TEST_TMPDIR/poc"
    mkdir -p "$W/data/etc"
    sqlite3 "$W/tracker.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1),(2),(3);"
    printf 'listen = 6969\n' > "$W/data/etc/tracker.toml"
    printf '# POC paths file\n\n  %s  \r\n' "$W/data/etc" > "$W/paths.txt"
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/pass"
    chmod 600 "$W/pass"
    # The default config path must not exist for the variables to apply.
    [ ! -e /etc/stagecoach/stagecoach.conf ] || skip "a real /etc/stagecoach/stagecoach.conf exists"
}

@test "POC variables map onto sources, restic and run settings" {
    run poc_env BACKUP_MODE=continuous BACKUP_INTERVAL=120 BACKUP_RETENTION_DAYS=9 \
        BACKUP_SQLITE_ENABLED=true SQLITE_DATABASE_PATH="$W/tracker.db" \
        BACKUP_PATHS_FILE="$W/paths.txt" RESTIC_REPOSITORY="$W/repo" \
        RESTIC_PASSWORD_FILE="$W/pass" "$SC" config show
    [ "$status" -eq 0 ]
    [[ "$output" == *"[sqlite tracker]"*"path = $W/tracker.db"* ]]
    [[ "$output" == *"[paths config]"*"from_file = $W/paths.txt"* ]]
    [[ "$output" == *"mode = continuous"* ]]
    [[ "$output" == *"interval = 120s"* ]]
    [[ "$output" == *"keep_within = 9d"* ]]
    [[ "$output" == *"repository = $W/repo"* ]]
}

@test "enabled means exactly \"true\", as in the POC" {
    run poc_env BACKUP_SQLITE_ENABLED=yes SQLITE_DATABASE_PATH="$W/tracker.db" \
        BACKUP_PATHS_FILE="$W/paths.txt" RESTIC_REPOSITORY="$W/repo" \
        RESTIC_PASSWORD_FILE="$W/pass" "$SC" config show
    [ "$status" -eq 0 ]
    [[ "$output" != *"[sqlite tracker]"* ]]
}

@test "a POC container's variables run a real backup end to end" {
    run poc_env BACKUP_SQLITE_ENABLED=true SQLITE_DATABASE_PATH="$W/tracker.db" \
        BACKUP_PATHS_FILE="$W/paths.txt" RESTIC_REPOSITORY="$W/repo" \
        RESTIC_PASSWORD_FILE="$W/pass" STAGECOACH_STAGING_DIR="$W/staging" \
        STAGECOACH_RESTIC_INIT=yes "$SC" run
    [ "$status" -eq 0 ]
    set=$(ls "$W/staging/sets")
    [ "$(sqlite3 "$W/staging/sets/$set/sqlite/tracker.db" 'SELECT count(*) FROM t')" -eq 3 ]
    tar -tf "$W/staging/sets/$set/paths/config.tar" | grep -q 'data/etc/tracker.toml$'
    RESTIC_PASSWORD_FILE="$W/pass" RESTIC_CACHE_DIR="$BATS_TEST_TMPDIR/cache" \
        restic -r "$W/repo" snapshots --json | grep -q "set-$set"
}

@test "a missing POC paths file is an error, not a silent skip" {
    run poc_env BACKUP_SQLITE_ENABLED=true SQLITE_DATABASE_PATH="$W/tracker.db" \
        BACKUP_PATHS_FILE="$W/nope.txt" RESTIC_REPOSITORY="$W/repo" \
        RESTIC_PASSWORD_FILE="$W/pass" STAGECOACH_STAGING_DIR="$W/staging" \
        STAGECOACH_RESTIC_INIT=yes "$SC" stage
    [ "$status" -eq 4 ]
    [[ "$output" == *"nope.txt"* ]]
    [ -z "$(ls "$W/staging/sets" 2>/dev/null)" ]
}

@test "with neither a config file nor POC variables: a clear config error" {
    run poc_env "$SC" stage
    [ "$status" -eq 3 ]
    [[ "$output" == *"/etc/stagecoach/stagecoach.conf"* ]]
}
