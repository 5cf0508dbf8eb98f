#!/usr/bin/env bats
# Faults of the world around a run (issue 8, §3): the SQLite file deleted,
# replaced or exclusively locked; restic missing; the repository deleted;
# the MySQL server stopped mid-dump. Each: the documented exit code, one
# clear message, nothing lost (earlier sets still verify, a staged set is
# kept for the next run), and the next run recovers.
#
# Covered elsewhere: the S3 server killed mid-upload (offsite.bats), the
# MySQL server SIGKILLed mid-dump (mysql.bats), SIGKILL of stagecoach at
# every moment (crash.bats), a full disk (diskfull.bats).

load helpers

setup() {
    sc_setup
}

teardown() {
    sc_teardown
    if [ -n "${MY_DIR:-}" ]; then
        "$SC_ROOT/scripts/test-mariadb.sh" stop "$MY_DIR" || true
        rm -rf "$MY_DIR"
    fi
}

# The repository, made by restic, its key re-wrapped with cheap scrypt
# parameters (tests/helpers/restic_fastkey.py): every restic call then opens
# it in milliseconds (without python3's cryptography it is only slower).
fast_repo() {
    rst init >/dev/null
    python3 "$SC_ROOT/tests/helpers/restic_fastkey.py" "$REPO" "$PASS" || [ $? -eq 3 ]
}

sets() {
    find "$STAGING/sets" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | LC_ALL=C sort
}

# Every published set verifies.
all_sets_verify() {
    local s
    for s in $(sets); do
        run --separate-stderr sc verify --set "$s"
        if [ "$status" -ne 0 ]; then
            echo "verify --set $s: exit $status: $stderr" >&2
            return 1
        fi
    done
}

# The ERROR lines of the last `run --separate-stderr`: exactly one.
one_error_line() {
    local n
    n=$(grep -c '] ERROR ' <<<"$stderr" || true)
    if [ "$n" -ne 1 ]; then
        echo "expected one ERROR line, got $n: $stderr" >&2
        return 1
    fi
}

# Snapshots in the repository made from set $1.
snapshots_of() {
    rst snapshots --json --tag "set-$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

@test "the SQLite file deleted: exit 4 naming it, no set, earlier sets intact; put back, the next run succeeds" {
    fast_repo
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    local first
    first=$(sets)
    mv "$DB" "$T/app.db.away"
    rm -f "$DB-wal" "$DB-shm"
    run --separate-stderr sc run
    echo "$stderr"
    [ "$status" -eq 4 ]
    one_error_line
    [[ "$stderr" == *"$DB"* ]]
    [ ! -e "$DB" ] # not created by the attempt
    [ "$(sets)" = "$first" ]
    refute sc_tmp_left
    all_sets_verify
    [ "$(pyjson "$STAGING/state.json" 'j["last_run"]["exit_code"]')" = 4 ]

    mv "$T/app.db.away" "$DB"
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    [ "$(sets | wc -l)" -eq 2 ]
    all_sets_verify
}

@test "the SQLite file replaced while it is copied: the set holds one whole database, old or new" {
    fast_repo
    # big enough that the copy and its integrity_check take a moment
    sqlite3 "$DB" >/dev/null <<'SQL'
CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
INSERT INTO blobs (body) SELECT randomblob(100) FROM n;
SQL
    sed -i 's|^path = db/app.db$|path = db/app.db\ncheck = integrity|' "$CONF"
    # the replacement: the same schema, other row counts
    cp "$DB" "$T/new.db"
    sqlite3 "$T/new.db" 'DELETE FROM blobs WHERE id > 100; DELETE FROM torrents WHERE id > 7;'
    sc stage >"$T/out" 2>"$T/err" &
    local pid=$! i
    sc_track "$pid"
    for ((i = 0; i < 600; i++)); do
        compgen -G "$STAGING/.tmp-*/sqlite" >/dev/null && break
        sleep 0.01
    done
    mv "$T/new.db" "$DB" # rename(2) over it, as a deploy would
    local rc=0
    wait "$pid" || rc=$?
    cat "$T/err"
    [ "$rc" -eq 0 ]
    local s
    s=$(sets)
    all_sets_verify
    # the manifest's counts are those of one of the two databases, and the
    # staged copy has exactly them
    local blobs torrents
    blobs=$(sqlite3 "$STAGING/sets/$s/sqlite/app.db" 'SELECT count(*) FROM blobs')
    torrents=$(sqlite3 "$STAGING/sets/$s/sqlite/app.db" 'SELECT count(*) FROM torrents')
    echo "staged: blobs=$blobs torrents=$torrents"
    [[ "$blobs/$torrents" == "60000/1234" || "$blobs/$torrents" == "100/7" ]]
    [ "$(sqlite3 "$STAGING/sets/$s/sqlite/app.db" 'PRAGMA integrity_check')" = ok ]
    [ "$(pyjson "$STAGING/sets/$s/MANIFEST.json" \
        '[s for s in j["sources"] if s["name"] == "app"][0]["tables"]["torrents"]')" = "$torrents" ]
    [ "$(pyjson "$STAGING/sets/$s/MANIFEST.json" \
        '[s for s in j["sources"] if s["name"] == "app"][0]["tables"]["blobs"]')" = "$blobs" ]
    # and the next run stages the new one
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    s=$(sets | tail -n 1)
    [ "$(sqlite3 "$STAGING/sets/$s/sqlite/app.db" 'SELECT count(*) FROM torrents')" -eq 7 ]
}

@test "the SQLite file exclusively locked past busy_timeout_ms: exit 4, one message, no set; unlocked, the next run succeeds" {
    fast_repo
    sqlite3 "$DB" 'PRAGMA journal_mode=DELETE' >/dev/null
    sed -i 's|^path = db/app.db$|path = db/app.db\nbusy_timeout_ms = 1500|' "$CONF"
    grep -qx 'busy_timeout_ms = 1500' "$CONF"
    python3 - "$DB" "$T/locked" "$T/release" <<'PY' 3>&- &
import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
for _ in range(1200):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.05)
c.execute("COMMIT")
PY
    local holder=$!
    sc_track "$holder"
    sc_wait_for_file "$T/locked"
    run --separate-stderr sc run
    echo "$stderr"
    [ "$status" -eq 4 ]
    one_error_line
    [[ "$stderr" == *"sqlite app"* ]]
    [[ "$stderr" == *lock* || "$stderr" == *busy* ]]
    [ -z "$(sets)" ]
    refute sc_tmp_left
    [ ! -d "$REPO/snapshots" ] || [ -z "$(ls -A "$REPO/snapshots")" ]

    touch "$T/release"
    wait "$holder"
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    [ "$(sets | wc -l)" -eq 1 ]
    all_sets_verify
}

@test "restic missing: exit 6 with one line naming it, the staged set kept; restic back, the next run ships it too" {
    fast_repo
    sed -i "s|^init = yes$|init = yes\nbinary = $T/bin/restic|" "$CONF"
    run --separate-stderr sc run
    echo "$stderr"
    [ "$status" -eq 6 ]
    one_error_line
    [[ "$stderr" == *"restic not found"*"$T/bin/restic"* ]]
    local first
    first=$(sets)
    [ -n "$first" ] # staged before shipping was attempted, and kept
    all_sets_verify
    [ "$(pyjson "$STAGING/state.json" 'j["sets"].get(a[0])' "$first")" = null ]

    mkdir -p "$T/bin"
    ln -s "$(command -v restic)" "$T/bin/restic"
    run --separate-stderr sc run
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"set $first was staged but never shipped"* ]]
    [ "$(snapshots_of "$first")" -eq 1 ]
    [ "$(snapshots_of "$(sets | tail -n 1)")" -eq 1 ]
}

@test "the repository deleted: with init = no exit 6 naming it, the set kept; with init = yes a new one is made and the sets are shipped" {
    fast_repo
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    rm -rf "$REPO"
    sed -i 's|^init = yes$|init = no|' "$CONF"
    run --separate-stderr sc run
    echo "$stderr"
    [ "$status" -eq 6 ]
    one_error_line
    [[ "$stderr" == *"repository not found at $REPO"* ]]
    [ ! -e "$REPO" ] # nothing created behind the operator's back
    local kept
    kept=$(sets | tail -n 1)
    [ "$(sets | wc -l)" -eq 2 ]
    all_sets_verify

    sed -i 's|^init = no$|init = yes|' "$CONF"
    run --separate-stderr sc run
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"created a restic repository at $REPO"* ]]
    [ "$(snapshots_of "$kept")" -eq 1 ]
    [ "$(snapshots_of "$(sets | tail -n 1)")" -eq 1 ]
    run --separate-stderr sc verify --snapshot latest
    [ "$status" -eq 0 ]
}

@test "the MySQL server stopped mid-dump: exit 4, one message, no set; restarted, the next run succeeds" {
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || skip "mariadbd not installed"
    MY_DIR="$(mktemp -d /tmp/scfault-my.XXXXXX)"
    "$SC_ROOT/scripts/test-mariadb.sh" start "$MY_DIR"
    local pw='fault-Pa55'
    mariadb --no-defaults -S "$MY_DIR/sock" -uroot <<SQL
CREATE USER 'sc'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL ON *.* TO 'sc'@'localhost';
CREATE DATABASE big;
USE big;
CREATE TABLE t (id INT PRIMARY KEY, pad VARCHAR(300));
INSERT INTO t SELECT seq, REPEAT(CHAR(65 + seq % 26), 300) FROM seq_1_to_250000;
SQL
    printf '%s\n' "$pw" >"$T/my.pass"
    chmod 600 "$T/my.pass"
    cat >"$CONF" <<EOF
[staging]
dir = staging

[mysql db]
socket = $MY_DIR/sock
user = sc
password_file = my.pass
database = big

[restic]
repository = $REPO
password_file = restic.pass
init = yes
EOF
    sc run >"$T/out" 2>"$T/err" &
    local pid=$! i f size=0
    sc_track "$pid"
    for ((i = 0; i < 1200; i++)); do
        f=$(compgen -G "$STAGING/.tmp-*/mysql/db/dump.sql" | head -n 1 || true)
        if [ -n "$f" ]; then
            size=$(stat -c %s "$f" 2>/dev/null || echo 0)
            [ "$size" -gt 4000000 ] && break
        fi
        sleep 0.02
    done
    echo "dump.sql had $size bytes when the server was stopped"
    [ "$size" -gt 4000000 ]
    "$SC_ROOT/scripts/test-mariadb.sh" stop "$MY_DIR" # a clean shutdown
    local rc=0
    wait "$pid" || rc=$?
    cat "$T/err"
    [ "$rc" -eq 4 ]
    [ "$(grep -c '] ERROR ' "$T/err")" -eq 1 ]
    grep -q 'big' "$T/err"
    [ -z "$(sets)" ]
    refute sc_tmp_left
    [ ! -d "$REPO/snapshots" ] || [ -z "$(ls -A "$REPO/snapshots")" ]

    "$SC_ROOT/scripts/test-mariadb.sh" start "$MY_DIR"
    run --separate-stderr sc run
    echo "$stderr"
    [ "$status" -eq 0 ]
    [ "$(sets | wc -l)" -eq 1 ]
    all_sets_verify
    [ "$(snapshots_of "$(sets)")" -eq 1 ]
}
