#!/usr/bin/env bats
# A rollback-journal SQLite database cloned with FICLONE inside the read
# transaction (src/source/sqlite/clone.c), on a real XFS with reflink=1 made
# in a loop file of the test's own temp dir; the backup API where the file
# systems cannot share extents (ext4, another file system than the
# database's); WAL databases keep the backup API. Needs root, a loop device
# and mkfs.xfs (scripts/install-deps.sh installs xfsprogs); skipped with the
# reason otherwise.
#
# Under tests/helpers/sqlite_writer (a == b == count(*) FROM log in every
# committed state) the copy must be one committed state, whichever way it
# was made.

load restore_helpers

setup() {
    sc_setup
    WRITER="$(sc_helper sqlite_writer)"
    [ -x "$WRITER" ]
    LOOPS=()
    MOUNTS=()
}

teardown() {
    # the writer first: it holds files on the mounts
    sc_teardown
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" || umount -l "${MOUNTS[i]}" || true
    done
    for i in "${LOOPS[@]}"; do
        losetup -d "$i" || true
    done
}

# Make a TYPE (xfs: with reflink=1; ext4) file system in a loop file of this
# test and mount it at DIR; skip the test with the reason when this machine
# cannot.
fs_mount() {
    local type=$1 dir=$2 img="$BATS_TEST_TMPDIR/$1.img" dev
    [ "$(id -u)" -eq 0 ] || skip "loop mounts need root"
    case "$type" in
    xfs)
        command -v mkfs.xfs >/dev/null || skip "no mkfs.xfs (apt-get install xfsprogs)"
        truncate -s 320M "$img"
        mkfs.xfs -q -m reflink=1 "$img"
        ;;
    ext4)
        truncate -s 64M "$img"
        mkfs.ext4 -q -F "$img"
        ;;
    esac
    dev="$(losetup --find --show "$img" 2>/dev/null)" || skip "no loop device available"
    LOOPS+=("$dev")
    mkdir -p "$dir"
    mount -t "$type" "$dev" "$dir" || skip "cannot mount a $type loop device here"
    MOUNTS+=("$dir")
}

# The busy database of concurrent.bats at $1 in journal mode $2, padded to a
# few MB, and the config staging it (checked in full) into staging dir $3.
busy_db() {
    local db=$1 mode=$2 staging=$3
    mkdir -p "${db%/*}"
    sqlite3 "$db" >/dev/null <<SQL
PRAGMA journal_mode=$mode;
CREATE TABLE c(id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);
INSERT INTO c VALUES (1, 0, 0);
CREATE TABLE log(id INTEGER PRIMARY KEY, a INTEGER, pad BLOB);
CREATE TABLE filler(id INTEGER PRIMARY KEY, x BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
INSERT INTO filler(x) SELECT randomblob(3000) FROM n;
SQL
    [ "$(sqlite3 "$db" 'PRAGMA journal_mode')" = "$mode" ]
    sed -i -e "s|^path = db/app.db\$|path = $db\ncheck = integrity|" \
        -e "s|^dir = staging\$|dir = $staging|" "$CONF"
    grep -qx "path = $db" "$CONF"
    grep -qx "dir = $staging" "$CONF"
    BUSY=$db
    STAGING=$staging
}

writer_start() {
    READY="$T/writer.ready"
    "$WRITER" "$BUSY" 300 "$1" "$READY" >"$T/writer.out" 2>"$T/writer.err" 3>&- &
    WPID=$!
    sc_track "$WPID"
    sc_wait_for_file "$READY"
}

# Stage under the writer; the copy is one committed state of the database,
# complete and sound, and the set verifies with coreutils. Sets SET, COPY, A.
stage_consistent() {
    # (timeout only turns a hang into a failure)
    run --separate-stderr timeout 120 "$SC" -c "$CONF" -v stage
    echo "stage: status $status; $stderr"
    [ "$status" -eq 0 ]
    SET="$(last_line)"
    COPY="$SET/sqlite/app.db"
    [ -f "$COPY" ]
    copy_is_one_commit "$COPY"
    A=$COPY_A
    [ "$(manifest_app 'e["tables"]["log"]')" = "$A" ]
    [ "$(manifest_app 'e["check_result"]')" = ok ]
    (cd "$SET" && b2sum -c --quiet B2SUMS)
    # nothing beside the copy in the set
    [ "$(ls "$SET/sqlite")" = app.db ]
}

# A field of the app source's manifest entry (python, the entry is e).
manifest_app() {
    pyjson "$SET/MANIFEST.json" "(lambda e: $1)([s for s in j['sources'] if s['name'] == 'app'][0])"
}

# Stop the writer after it committed past the copy; the live database holds
# every commit, and the copy's log is exactly the first A rows of the live
# one (the same rows, as text): the copy is a state the live database went
# through.
writer_stop_and_compare() {
    local i live=0
    for ((i = 0; i < 600; i++)); do
        live="$(cat "$READY")"
        [ "$live" -gt "$A" ] && break
        sleep 0.05
    done
    [ "$live" -gt "$A" ]
    kill -TERM "$WPID"
    wait "$WPID"
    local commits
    commits="$(cat "$T/writer.out")"
    [ "$(sqlite3 "$BUSY" 'SELECT a FROM c')" = "$commits" ]
    [ "$(sqlite3 "$BUSY" 'SELECT count(*) FROM log')" = "$commits" ]
    diff <(sqlite3 "$COPY" 'SELECT id, a, hex(pad) FROM log ORDER BY id') \
        <(sqlite3 "$BUSY" "SELECT id, a, hex(pad) FROM log WHERE a <= $A ORDER BY id")
    diff <(sqlite3 "$COPY" 'SELECT id, hex(x) FROM filler ORDER BY id') \
        <(sqlite3 "$BUSY" 'SELECT id, hex(x) FROM filler ORDER BY id')
}

@test "XFS reflink=1, rollback journal under a writer: cloned, consistent, restores the same" {
    fs_mount xfs "$T/xfs"
    busy_db "$T/xfs/db/busy.db" delete "$T/xfs/staging"
    writer_start delete
    stage_consistent
    [ "$(manifest_app 'e["copy_method"]')" = reflink ]
    [ "$(manifest_app 'e["consistency"]')" = read-lock-reflink ]
    [ "$(manifest_app 'e["journal_mode"]')" = delete ]
    [ "$(manifest_app 'e["lock_ms"] >= 0')" = true ]
    [[ "$stderr" == *"read transaction held "*" ms (reflink)"* ]]
    # really a clone: its extents are shared with the live file's
    filefrag -v "$COPY" | grep -q shared
    writer_stop_and_compare
    # restore round trip: the restored file is the staged copy, row for row
    run --separate-stderr sc restore --set latest --to "$T/out"
    echo "$stderr"
    [ "$status" -eq 0 ]
    diff <(sqlite3 "$T/out/sqlite/app.db" .dump) <(sqlite3 "$COPY" .dump)
    [ "$(sqlite3 "$T/out/sqlite/app.db" 'SELECT a = b FROM c')" = 1 ]
    cmp "$T/out/sqlite/app.db" "$COPY"
}

@test "XFS reflink=1, encrypted set: the clone is sealed, no plaintext left, restores the same" {
    fs_mount xfs "$T/xfs"
    busy_db "$T/xfs/db/busy.db" delete "$T/xfs/staging"
    use_encryption
    stage_ok
    [ "$(manifest_app 'e["copy_method"]')" = reflink ]
    [ "$(ls "$SET/sqlite")" = app.db.enc ]
    (cd "$SET" && b2sum -c --quiet B2SUMS)
    run --separate-stderr sc restore --set latest --to "$T/out" --identity "$ID"
    echo "$stderr"
    [ "$status" -eq 0 ]
    # no writer here: the restored copy is the live database, row for row
    diff <(sqlite3 "$T/out/sqlite/app.db" .dump) <(sqlite3 "$BUSY" .dump)
    [ "$(sqlite3 "$T/out/sqlite/app.db" 'PRAGMA integrity_check')" = ok ]
}

@test "XFS reflink=1, a hot journal: refused as before (exit 4, no set); after a writer rolled it back, cloned" {
    fs_mount xfs "$T/xfs"
    busy_db "$T/xfs/db/busy.db" delete "$T/xfs/staging"
    sqlite3 "$BUSY" 'SELECT id, hex(x) FROM filler ORDER BY id' >"$T/filler.before"
    # a writer killed in the middle of a transaction that spilled to the
    # file: the database holds half of it, its -journal the way back
    python3 - "$BUSY" <<'PY' || true
import os, signal, sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA cache_size=10")
c.execute("BEGIN")
c.execute("UPDATE filler SET x = randomblob(3000)")
os.kill(os.getpid(), signal.SIGKILL)
PY
    [ -s "$BUSY-journal" ]
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"hot journal"* ]]
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
    # a writer (sqlite3) rolls it back; then the clone is the state before
    [ "$(sqlite3 "$BUSY" 'PRAGMA integrity_check')" = ok ]
    stage_ok
    [ "$(manifest_app 'e["copy_method"]')" = reflink ]
    diff "$T/filler.before" <(sqlite3 "$SET/sqlite/app.db" 'SELECT id, hex(x) FROM filler ORDER BY id')
}

@test "clone = never on XFS: the backup API, consistent" {
    fs_mount xfs "$T/xfs"
    busy_db "$T/xfs/db/busy.db" delete "$T/xfs/staging"
    sed -i "s|^check = integrity\$|check = integrity\nclone = never|" "$CONF"
    grep -qx 'clone = never' "$CONF"
    writer_start delete
    stage_consistent
    [ "$(manifest_app 'e["copy_method"]')" = backup_api ]
    [ "$(manifest_app 'e["consistency"]')" = online-backup-api ]
    writer_stop_and_compare
}

@test "clone: a value other than auto or never is a config error (exit 3)" {
    sed -i "s|^path = db/app.db\$|path = db/app.db\nclone = always|" "$CONF"
    run --separate-stderr sc config check
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"clone"*"expected auto or never"* ]]
}

@test "ext4, rollback journal under a writer: falls back to the backup API, consistent" {
    fs_mount ext4 "$T/ext4"
    busy_db "$T/ext4/db/busy.db" delete "$T/ext4/staging"
    writer_start delete
    stage_consistent
    [ "$(manifest_app 'e["copy_method"]')" = backup_api ]
    [ "$(manifest_app 'e["consistency"]')" = online-backup-api ]
    [ "$(manifest_app 'e["journal_mode"]')" = delete ]
    [ "$(manifest_app 'e["lock_ms"] >= 0')" = true ]
    [[ "$stderr" == *"no reflink from "*"copying through the backup API"* ]]
    writer_stop_and_compare
}

@test "staging on another file system than the database (EXDEV): the backup API, consistent" {
    fs_mount xfs "$T/xfs"
    # the database on XFS, the staging directory on the test's own file system
    busy_db "$T/xfs/db/busy.db" delete "$T/staging"
    [ "$(stat -c %d "$T/xfs")" != "$(stat -c %d "$T")" ]
    writer_start delete
    stage_consistent
    [ "$(manifest_app 'e["copy_method"]')" = backup_api ]
    [[ "$stderr" == *"no reflink from "*"Invalid cross-device link"* ]]
    writer_stop_and_compare
}

@test "XFS reflink=1, WAL under a writer: today's backup API path, consistent" {
    fs_mount xfs "$T/xfs"
    busy_db "$T/xfs/db/busy.db" wal "$T/xfs/staging"
    writer_start wal
    stage_consistent
    [ "$(manifest_app 'e["copy_method"]')" = backup_api ]
    [ "$(manifest_app 'e["consistency"]')" = online-backup-api ]
    [ "$(manifest_app 'e["journal_mode"]')" = wal ]
    # writers of a WAL database are not held: no lock_ms
    [ "$(manifest_app '"lock_ms" in e')" = false ]
    [ ! -e "$SET/sqlite/app.db-wal" ]
    writer_stop_and_compare
}

# The line of check $1 in $output ("STATUS NAME: message").
check_line() {
    printf '%s\n' "$output" | grep -E "^(OK|WARN|FAIL) +$1: "
}

# doctor's lines; tree of the mount before and after: doctor leaves nothing.
doctor_on() {
    local dir=$1
    find "$dir" -printf '%p %s\n' | LC_ALL=C sort >"$T/tree.before"
    run --separate-stderr sc doctor
    echo "$output"
    find "$dir" -printf '%p %s\n' | LC_ALL=C sort >"$T/tree.after"
    diff "$T/tree.before" "$T/tree.after"
}

@test "doctor on XFS reflink=1: the rollback-journal copy will be a reflink" {
    fs_mount xfs "$T/xfs"
    busy_db "$T/xfs/db/busy.db" delete "$T/xfs/staging"
    mkdir -m 700 "$T/xfs/staging"
    doctor_on "$T/xfs"
    [[ "$(check_line 'sqlite app')" == "OK "*"rollback journal"* ]]
    [[ "$(check_line 'sqlite app copy')" == "OK "*"reflink clone into $T/xfs/staging works"* ]]
    # a staging directory not made yet: tested in its parent, on the same file system
    rmdir "$T/xfs/staging"
    doctor_on "$T/xfs"
    [[ "$(check_line 'sqlite app copy')" == "OK "*"reflink clone into $T/xfs/staging works"* ]]
}

@test "doctor on ext4: the backup API, how long writers wait, WAL recommended above 5 s" {
    fs_mount ext4 "$T/ext4"
    busy_db "$T/ext4/db/busy.db" delete "$T/ext4/staging"
    mkdir -m 700 "$T/ext4/staging"
    doctor_on "$T/ext4"
    [[ "$(check_line 'sqlite app copy')" == "OK "*"backup API, no reflink (the file system of $T/ext4/staging cannot share extents"*"writers wait about 0.0 s"*"an assumed rate)" ]]
    # the last run's rate (state.json) decides: 1 MB in 10 s makes these 6 MB a ~60 s wait
    cat >"$T/ext4/staging/state.json" <<'EOF'
{"version": 1, "sets": {}, "last_run": {"stats": {"sources": [
 {"name": "app", "kind": "sqlite", "bytes": 1048576, "files": 1, "lock_ms": 10000, "copy_method": "backup_api"}]}}}
EOF
    doctor_on "$T/ext4"
    [[ "$(check_line 'sqlite app copy')" == "WARN "*"writers wait about 5"?"."?" s for each copy ("*" MB at 0.1 MB/s, the last run's rate); switch the database to WAL mode"* ]]
    # a WAL database holds no writers: no such line
    sqlite3 "$T/ext4/db/busy.db" 'PRAGMA journal_mode=WAL' >/dev/null
    doctor_on "$T/ext4"
    [[ "$(check_line 'sqlite app')" == "OK "*"WAL journal"* ]]
    refute check_line 'sqlite app copy'
}
