#!/usr/bin/env bats
# The run lock, and verification of a set that was damaged after staging.

load helpers

setup() {
    sc_setup
}

teardown() {
    sc_teardown
}

# Hold STAGING/lock with util-linux flock from another process until killed.
# The subshell execs sleep, which keeps the locked descriptor, so killing
# that one pid releases the lock.
hold_lock() {
    mkdir -p "$STAGING"
    (
        exec 9>>"$STAGING/lock"
        flock -w 30 9 || exit 1 # waits out our own probes below
        exec sleep 60
    ) >/dev/null 2>&1 3>&- &
    HOLDER=$!
    sc_track "$HOLDER"
    # wait until the lock is really held
    local i
    for ((i = 0; i < 600; i++)); do
        flock -n "$STAGING/lock" true || return 0
        sleep 0.05
    done
    echo "the lock was never taken" >&2
    return 1
}

@test "another process holds STAGING/lock: stage exits 8 at once, touching nothing" {
    hold_lock
    # `timeout` only turns a hang (a blocking lock) into a failure
    run --separate-stderr timeout 20 "$SC" -c "$CONF" stage
    echo "$stderr"
    [ "$status" -eq 8 ]
    [[ "$stderr" == *"$STAGING/lock"* ]]
    [ -z "$output" ]
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
    run --separate-stderr timeout 20 "$SC" -c "$CONF" run
    [ "$status" -eq 8 ]
    [ ! -e "$REPO" ]

    # once the holder is gone, the lock file left behind does not block
    kill "$HOLDER"
    wait "$HOLDER" || true
    [ -e "$STAGING/lock" ]
    stage_ok
    [ "$(sc_sets | wc -l)" -eq 1 ]
}

@test "verify --set latest on an intact set: exit 0" {
    stage_ok
    run --separate-stderr sc verify --set latest
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$output" == *"${SET##*/}"*ok* ]]
    run --separate-stderr sc verify --set "${SET##*/}"
    [ "$status" -eq 0 ]
    run --separate-stderr sc verify
    [ "$status" -eq 0 ]
}

@test "one flipped byte in sqlite/app.db: verify exit 7 naming the file" {
    stage_ok
    flip_byte "$SET/sqlite/app.db" 5000
    run --separate-stderr sc verify --set latest
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"sqlite/app.db"* ]]
    [[ "$stderr" != *"paths/etc.tar"* ]]
    # coreutils agrees
    refute b2sum_check "$SET"
}

@test "a flipped byte in the tar, same size: exit 7 naming it" {
    stage_ok
    flip_byte "$SET/paths/etc.tar" 700
    run --separate-stderr sc verify --set latest
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"paths/etc.tar"* ]]
}

@test "an extra file dropped into the set: exit 7 naming it" {
    stage_ok
    echo "not from stagecoach" >"$SET/sqlite/extra.db"
    run --separate-stderr sc verify --set latest
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"sqlite/extra.db"* ]]
}

@test "an extra file at the top of the set: exit 7" {
    stage_ok
    echo x >"$SET/README"
    run --separate-stderr sc verify --set latest
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"README"* ]]
}

@test "a deleted file: exit 7 naming it" {
    stage_ok
    rm "$SET/paths/etc.tar"
    run --separate-stderr sc verify --set latest
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"paths/etc.tar"* ]]
}

@test "a truncated file: exit 7 naming it" {
    stage_ok
    truncate -s 4096 "$SET/sqlite/app.db"
    run --separate-stderr sc verify --set latest
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"sqlite/app.db"* ]]
}

@test "a tampered MANIFEST.json: exit 7" {
    stage_ok
    # change a recorded row count, keep it valid JSON
    python3 - "$SET/MANIFEST.json" <<'PY'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
m["sources"][0]["rows_total"] = m["sources"][0].get("rows_total", 0) + 1
open(p, "w").write(json.dumps(m, indent=2) + "\n")
PY
    run --separate-stderr sc verify --set latest
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"MANIFEST.json"* ]]
}

@test "MANIFEST.json and B2SUMS both rewritten to drop a file: still exit 7 (the file is extra)" {
    stage_ok
    python3 - "$SET" <<'PY'
import hashlib, json, sys
d = sys.argv[1]
m = json.load(open(d + "/MANIFEST.json"))
m["files"] = [f for f in m["files"] if f["path"] != "paths/etc.tar"]
text = json.dumps(m, indent=2) + "\n"
open(d + "/MANIFEST.json", "w").write(text)
lines = [l for l in open(d + "/B2SUMS") if not l.rstrip("\n").endswith("  paths/etc.tar") and not l.rstrip("\n").endswith("  MANIFEST.json")]
lines.append(hashlib.blake2b(text.encode()).hexdigest() + "  MANIFEST.json\n")
open(d + "/B2SUMS", "w").write("".join(lines))
PY
    (cd "$SET" && b2sum -c --quiet B2SUMS)
    run --separate-stderr sc verify --set latest
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"paths/etc.tar"* ]]
}

@test "a B2SUMS that disagrees with the manifest: exit 7" {
    stage_ok
    python3 - "$SET/B2SUMS" <<'PY2'
import hashlib, sys
p = sys.argv[1]
out = []
for l in open(p):
    if l.rstrip("\n").endswith("  sqlite/app.db"):
        l = hashlib.blake2b(b"something else").hexdigest() + "  sqlite/app.db\n"
    out.append(l)
open(p, "w").write("".join(out))
PY2
    refute b2sum_check "$SET"
    run --separate-stderr sc verify --set latest
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"sqlite/app.db"* ]]
}

@test "verify --set nosuch: exit 1" {
    stage_ok
    run --separate-stderr sc verify --set nosuch
    echo "$stderr"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *nosuch* ]]
}

@test "verify with no set at all: exit 1" {
    run --separate-stderr sc verify --set latest
    [ "$status" -eq 1 ]
}

@test "SIGINT while the source database is locked: exit 130, partial set removed" {
    # a rollback-journal database held under an exclusive lock by another process
    sqlite3 "$DB" 'PRAGMA journal_mode=DELETE' >/dev/null
    sed -i 's|^path = db/app.db$|path = db/app.db\nbusy_timeout_ms = 15000|' "$CONF"
    grep -qx 'busy_timeout_ms = 15000' "$CONF"
    python3 - "$DB" "$T/locked" <<'PY' 3>&- &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(120)
PY
    sc_track $!
    sc_wait_for_file "$T/locked"

    "$SC" -c "$CONF" stage >"$T/stage.out" 2>"$T/stage.err" 3>&- &
    local pid=$!
    sc_track "$pid"
    # the set being built exists: stage is waiting for the database
    local i
    for ((i = 0; i < 600; i++)); do
        sc_tmp_left && break
        sleep 0.05
    done
    sc_tmp_left
    kill -INT "$pid"
    local rc=0
    wait "$pid" || rc=$?
    cat "$T/stage.err"
    # design §6: 130 = interrupted, partial work removed (not 4 after the
    # busy timeout ran out)
    [ "$rc" -eq 130 ]
    refute sc_tmp_left
    [ -z "$(sc_sets)" ]
}

@test "verify: a file of the wrong size fails at once, without hashing it" {
    stage_ok
    # a sparse 64 GB file in the copy's place: minutes of BLAKE2b if hashed
    truncate -s 64G "$SET/sqlite/app.db"
    run --separate-stderr timeout 60 "$SC" -c "$CONF" verify --set "$(basename "$SET")"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"sqlite/app.db: size 68719476736, manifest says "* ]]
}

@test "SIGINT while verify hashes a big file: exit 130 at once, not a checksum verdict" {
    stage_ok
    # A sparse 64 GB file in the copy's place, and a manifest that says so:
    # verify must hash all of it, for minutes.
    fake_big_file "$SET" sqlite/app.db 64G
    "$SC" -c "$CONF" verify --set "$(basename "$SET")" >"$T/verify.out" 2>"$T/verify.err" 3>&- &
    local pid=$!
    sc_track "$pid"
    sleep 1
    kill -INT "$pid"
    local rc=0
    wait "$pid" || rc=$?
    cat "$T/verify.err"
    [ "$rc" -eq 130 ]
    # stopped inside the hash (before, it hashed all 64 GB, then said exit 7)
    grep -q 'interrupted while hashing' "$T/verify.err"
    refute grep -q 'checksum mismatch' "$T/verify.err"
}
