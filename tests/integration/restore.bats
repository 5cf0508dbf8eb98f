#!/usr/bin/env bats
# restore: from the repository (--snapshot) or local staging (--set) into a
# directory, byte for byte, changing nothing live; --apply for SQLite (atomic
# replacement keeping the old file) and config paths (secure extraction);
# hostile archives refused without writing anything.

load restore_helpers

setup_file() {
    template_repo_make
}

setup() {
    sc_setup
}

teardown() {
    sc_teardown
}

# The content of the live places, to prove a restore left them alone.
live_state() {
    {
        b2sum "$DB"
        (cd "$CFGDIR" && find . -printf '%y %m %p %l\n' | LC_ALL=C sort)
        find "$CFGDIR" -type f -exec b2sum {} + | LC_ALL=C sort
    } | b2sum
}

# .dump of a database as it is, WAL included, without checkpointing it
# (sqlite3 on the file itself would fold the WAL in when it closes).
peek_dump() {
    local peek="$T/peek-$RANDOM.db"
    cp "$1" "$peek"
    [ ! -e "$1-wal" ] || cp "$1-wal" "$peek-wal"
    sqlite3 "$peek" .dump
    rm -f "$peek" "$peek-wal" "$peek-shm"
}

# The config tree restored under $1 equals the live one: names, types,
# modes, link targets and contents.
same_tree() {
    diff <(cd "$CFGDIR" && find . -printf '%y %m %P %l\n' | LC_ALL=C sort) \
        <(cd "$1$CFGDIR" && find . -printf '%y %m %P %l\n' | LC_ALL=C sort)
    diff -r --no-dereference "$CFGDIR" "$1$CFGDIR"
}

@test "restore --snapshot (encrypted): byte-identical plaintext, 0600 files, nothing live touched" {
    template_repo_use
    use_encryption
    run_ok
    local live
    live="$(live_state)"
    run --separate-stderr sc --json restore --snapshot latest --to "$T/out" --identity "$ID"
    echo "$stderr"
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/r.json"
    [ "$(pyjson "$T/r.json" 'j["snapshot"]')" = "$SNAP" ]
    [ "$(pyjson "$T/r.json" 'j["set"]')" = "${SET##*/}" ]
    [ "$(pyjson "$T/r.json" 'j["encrypted"]')" = true ]
    # the layout, private
    [ "$(sc_tree "$T/out")" = "$(printf '%s\n' B2SUMS MANIFEST.json paths/etc.tar sqlite/app.db)" ]
    [ "$(stat -c %a "$T/out")" = 700 ]
    [ "$(modes_of "$T/out" | grep -v '^d 700 ' | grep -vc '^f 600 ')" -eq 0 ]
    # MANIFEST.json is the set's own; B2SUMS checks the plaintext with coreutils
    cmp "$T/out/MANIFEST.json" "$SET/MANIFEST.json"
    b2sum_check "$T/out"
    # the database is the live one, row for row
    diff <(sqlite3 "$T/out/sqlite/app.db" .dump) <(sqlite3 "$DB" .dump)
    [ "$(sqlite3 "$T/out/sqlite/app.db" 'PRAGMA integrity_check')" = ok ]
    # the archive holds the config tree byte for byte
    mkdir "$T/x" && tar -xpf "$T/out/paths/etc.tar" -C "$T/x"
    same_tree "$T/x"
    # nothing live changed, and the scratch copy is gone
    [ "$(live_state)" = "$live" ]
    refute compgen -G "$T/out/.fetch-*"
}

@test "restore --snapshot (plain): the fetched files are moved into place, not copied again; byte-identical, 0600 whatever mode the snapshot holds" {
    template_repo_use
    stage_ok
    # a snapshot whose database file is world-readable (made by hand)
    chmod 644 "$SET/sqlite/app.db"
    restic_ship "$SET"
    run --separate-stderr sc -v restore --snapshot latest --to "$T/out"
    echo "$stderr"
    [ "$status" -eq 0 ]
    # each file renamed out of the fetched copy, none written a second time
    [[ "$stderr" == *"moved sqlite/app.db"* ]]
    [[ "$stderr" == *"moved paths/etc.tar"* ]]
    [[ "$stderr" != *"unpacked "* ]]
    [ "$(sc_tree "$T/out")" = "$(printf '%s\n' B2SUMS MANIFEST.json paths/etc.tar sqlite/app.db)" ]
    [ "$(modes_of "$T/out" | grep -v '^d 700 ' | grep -vc '^f 600 ')" -eq 0 ]
    cmp "$T/out/sqlite/app.db" "$SET/sqlite/app.db"
    cmp "$T/out/paths/etc.tar" "$SET/paths/etc.tar"
    b2sum_check "$T/out"
    diff <(sqlite3 "$T/out/sqlite/app.db" .dump) <(sqlite3 "$DB" .dump)
    refute compgen -G "$T/out/.fetch-*"
}

@test "restore --set restores from local staging without restic" {
    use_encryption
    stage_ok
    # no repository, no restic: it must not be needed
    sed -i -e '/^binary = /d' -e 's|^init = yes|init = yes\nbinary = /nonexistent/restic|' "$CONF"
    run --separate-stderr sc restore --set "${SET##*/}" --to "$T/out" --identity "$ID"
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$output" == *"restored set ${SET##*/} into $T/out"* ]]
    diff <(sqlite3 "$T/out/sqlite/app.db" .dump) <(sqlite3 "$DB" .dump)
    b2sum_check "$T/out"
    [ ! -e "$REPO" ]
}

@test "restore: usage errors, a missing identity and a wrong one; no plaintext left on failure" {
    use_encryption
    stage_ok
    run --separate-stderr sc restore --set latest
    [ "$status" -eq 2 ]
    run --separate-stderr sc restore --to "$T/out"
    [ "$status" -eq 2 ]
    run --separate-stderr sc restore --set latest --snapshot latest --to "$T/out"
    [ "$status" -eq 2 ]
    run --separate-stderr sc restore --set latest --to "$T/out" --force
    [ "$status" -eq 2 ]
    mkdir -p "$T/busy" && touch "$T/busy/x"
    run --separate-stderr sc restore --set latest --to "$T/busy" --identity "$ID"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"not empty"* ]]
    # no identity: says which key it needs
    run --separate-stderr sc restore --set latest --to "$T/out"
    echo "$stderr"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--identity"* ]]
    [[ "$stderr" == *"$(sed -n 's/^id: //p' "$ID.pub")"* ]]
    [ -z "$(sc_tree "$T/out")" ]
    # the wrong identity
    "$SC" keygen --out "$T/other" >/dev/null 2>&1
    run --separate-stderr sc restore --set latest --to "$T/out2" --identity "$T/other"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"wrong identity"* ]]
    [ -z "$(sc_tree "$T/out2")" ]
    # a damaged set: exit 7, and nothing decrypted is left behind
    flip_byte "$SET/sqlite/app.db.enc"
    run --separate-stderr sc restore --set latest --to "$T/out3" --identity "$ID"
    [ "$status" -eq 7 ]
    [ -z "$(sc_tree "$T/out3")" ]
}

@test "restore --apply: SQLite replaced atomically, old file and its WAL kept as .pre-restore-<time>" {
    use_encryption
    stage_ok
    local staged_dump
    staged_dump="$(sqlite3 "$DB" .dump)"
    # after the backup, the live database moves on, and a writer dies
    # leaving its WAL behind (changes only the WAL holds)
    sqlite3 "$DB" "DELETE FROM whitelist; INSERT INTO torrents (info_hash) VALUES ('after-backup')"
    python3 - "$DB" <<'PY'
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("INSERT INTO torrents (info_hash) VALUES ('only-in-the-wal')")
os._exit(0)  # no close, no checkpoint: -wal and -shm stay
PY
    [ -s "$DB-wal" ]
    chmod 640 "$DB"
    local live_dump live_files
    live_dump="$(peek_dump "$DB")"
    [[ "$live_dump" == *only-in-the-wal* ]]
    live_files="$(cat "$DB" "$DB-wal" | b2sum)"

    # without --force the live file is refused, untouched (its WAL too)
    run --separate-stderr sc restore --set latest --to "$T/r1" --identity "$ID" --apply --source app
    echo "$stderr"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--force"* ]]
    [ "$(cat "$DB" "$DB-wal" | b2sum)" = "$live_files" ]

    run --separate-stderr sc --json restore --set latest --to "$T/r2" --identity "$ID" --apply --source app --force
    echo "$stderr"
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/r.json"
    [ "$(pyjson "$T/r.json" 'j["applied"][0]["restored_to"]')" = "$DB" ]
    # the live path now holds the backup, in WAL mode as it was, with its old mode
    [ "$(sqlite3 "$DB" .dump)" = "$staged_dump" ]
    [ "$(sqlite3 "$DB" 'PRAGMA journal_mode')" = wal ]
    [ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ]
    [ "$(stat -c %a "$DB")" = 640 ]
    # the old file is kept, unchanged, with its WAL beside it: nothing of it is lost
    local kept
    kept="$(compgen -G "$DB.pre-restore-*" | grep -v -- '-wal$\|-shm$\|-journal$')"
    [[ "$kept" =~ \.pre-restore-[0-9]{8}T[0-9]{6}Z$ ]]
    [ "$(cat "$kept" "$kept-wal" | b2sum)" = "$live_files" ]
    [ "$(peek_dump "$kept")" = "$live_dump" ]
    # and the new database has no WAL of the old one next to it
    [ ! -e "$DB-wal" ] || [ "$(stat -c %s "$DB-wal")" -eq 0 ]
    # no temporary left next to it
    refute compgen -G "$DB.restore-*"
}

@test "restore --apply --into: SQLite to another path; config paths under a directory, modes kept" {
    use_encryption
    stage_ok
    local live
    live="$(live_state)"
    run --separate-stderr sc restore --set latest --to "$T/r1" --identity "$ID" --apply --source app --into "$T/copy.db"
    echo "$stderr"
    [ "$status" -eq 0 ]
    diff <(sqlite3 "$T/copy.db" .dump) <(sqlite3 "$DB" .dump)
    [ "$(stat -c %a "$T/copy.db")" = 600 ]

    run --separate-stderr sc restore --set latest --to "$T/r2" --identity "$ID" --apply --source etc --into "$T/tree"
    echo "$stderr"
    [ "$status" -eq 0 ]
    same_tree "$T/tree"
    [ "$(stat -c %a "$T/tree$CFGDIR/private.key")" = 600 ]
    [ -L "$T/tree$CFGDIR/current.toml" ]
    [ "$(live_state)" = "$live" ]

    # again into the same directory: existing files need --force
    run --separate-stderr sc restore --set latest --to "$T/r3" --identity "$ID" --apply --source etc --into "$T/tree"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--force"* ]]
    echo changed >"$T/tree$CFGDIR/.env"
    run --separate-stderr sc restore --set latest --to "$T/r4" --identity "$ID" --apply --source etc --into "$T/tree" --force
    [ "$status" -eq 0 ]
    same_tree "$T/tree"

    # --into with several sources needs --source; an unknown source is named
    run --separate-stderr sc restore --set latest --to "$T/r5" --identity "$ID" --apply --into "$T/x"
    [ "$status" -eq 2 ]
    run --separate-stderr sc restore --set latest --to "$T/r6" --identity "$ID" --apply --source nosuch
    [ "$status" -eq 2 ]
    [[ "$stderr" == *nosuch* ]]
}

@test "restore --apply puts config paths back in their original places" {
    stage_ok
    echo "broken by hand" >"$CFGDIR/.env"
    rm "$CFGDIR/sub dir/nested.txt"
    run --separate-stderr sc restore --set latest --to "$T/r" --apply --source etc --force
    echo "$stderr"
    [ "$status" -eq 0 ]
    [ "$(cat "$CFGDIR/.env")" = "$(printf 'TRACKER_TOKEN=not-really-secret\nDB_DRIVER=sqlite3')" ]
    [ "$(cat "$CFGDIR/sub dir/nested.txt")" = "nested file" ]
    [ "$(stat -c %a "$CFGDIR/private.key")" = 600 ]
}

@test "a source of the set that is not configured: --apply says so (exit 3); the files stay in DIR" {
    stage_ok
    sed -i '/^\[sqlite app\]$/,/^$/d' "$CONF"
    run --separate-stderr sc restore --set latest --to "$T/r" --apply --source app
    echo "$stderr"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"not in the configuration"* ]]
    [ -e "$T/r/sqlite/app.db" ]
}

# A plain set whose paths/etc.tar is replaced by a hostile archive, with a
# manifest and B2SUMS that agree (as a forger with write access would make).
hostile_set() {
    rm -rf "$STAGING"
    stage_ok
    make_tar "$T/hostile.tar" "$1"
    forge_set "$SET" 'put_file("paths/etc.tar", os.environ["HOSTILE"])'
}

# restore --apply of the hostile archive into $T/into: refused (exit 7) and
# not one file written, inside or outside.
assert_refused() {
    local why=$1
    run --separate-stderr sc restore --set latest --to "$T/r-$RANDOM" --apply --source etc --into "$T/into" --force
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"$why"* ]]
    [ -z "$(sc_tree "$T/into")" ]
}

@test "hostile archives are refused before anything is written: .., absolute, through a symlink" {
    export HOSTILE="$T/hostile.tar"
    mkdir -p "$T/outside" "$T/into"

    hostile_set '[("ok.txt", "file", "fine"), ("../escape", "file", "pwned")]'
    b2sum_check "$SET"
    assert_refused "'..' component"
    [ ! -e "$T/escape" ]

    hostile_set '[("ok.txt", "file", "fine"), ("'"$T"'/outside/abs", "file", "pwned")]'
    assert_refused "absolute path"
    [ ! -e "$T/outside/abs" ]

    hostile_set '[("link", "symlink", "'"$T"'/outside"), ("link/file", "file", "pwned")]'
    assert_refused "symbolic link"
    [ -z "$(ls -A "$T/outside")" ]

    # a hard link to a file outside
    echo "target" >"$T/outside/victim"
    hostile_set '[("hl", "hardlink", "'"$T"'/outside/victim"), ("hl2", "hardlink", "../outside/victim")]'
    assert_refused "absolute path"
    [ "$(cat "$T/outside/victim")" = target ]
    rm "$T/outside/victim"

    # a symlink already on disk in the target directory
    hostile_set '[("etc", "dir", None), ("etc/app.conf", "file", "pwned")]'
    ln -s "$T/outside" "$T/into/etc"
    run --separate-stderr sc restore --set latest --to "$T/r-disk" --apply --source etc --into "$T/into" --force
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"symbolic link etc on disk"* ]]
    [ -z "$(ls -A "$T/outside")" ]
}
