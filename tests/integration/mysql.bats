#!/usr/bin/env bats
# [mysql NAME] against real MariaDB servers started by scripts/test-mariadb.sh:
# SRC (the live server, binary log on) and DST (an empty one that the dumps
# are loaded into with the stock `mariadb` client). Covers every column type,
# Chinook, views using views, triggers, routines, events, consistency under a
# concurrent writer, the lock window for MyISAM/Aria, identical bytes for an
# unchanged database, and the failures (wrong password, no server, server
# killed mid-dump).

load helpers
load mysql_helpers

setup_file() {
    mysql_servers_start
}

teardown_file() {
    mysql_servers_stop
}

setup() {
    sc_setup
    printf '%s\n' "$SC_PASSWORD" >"$T/my.pass"
    chmod 600 "$T/my.pass"
    write_conf "database = sc_types"
}

teardown() {
    sc_teardown
    if [ -n "${KILL_DIR:-}" ]; then
        "$MARIADB_SCRIPT" stop "$KILL_DIR" || true
        rm -rf "$KILL_DIR"
    fi
}

# ---- tests --------------------------------------------------------------------

@test "every type round-trips: the stock client loads the dump and every checksum matches" {
    stage_dump_ok
    [ -f "$DUMP" ]
    [ "$(sc_tree "$SET")" = "$(printf '%s\n' B2SUMS MANIFEST.json mysql/db/dump.sql)" ]
    b2sum_check "$SET"
    # valid UTF-8 (binary is hex) and no raw NUL
    iconv -f UTF-8 -t UTF-8 "$DUMP" >/dev/null
    [ "$(tr -cd '\000' <"$DUMP" | wc -c)" -eq 0 ]
    load_into_dst sc_types
    fingerprint my_src sc_types >"$T/src.fp"
    fingerprint my_dst sc_types >"$T/dst.fp"
    cat "$T/src.fp"
    diff "$T/src.fp" "$T/dst.fp"
    [ "$(wc -l <"$T/src.fp")" -ge 20 ]
    # the checksums are stable on the source (so equality above means something)
    fingerprint my_src sc_types | diff "$T/src.fp" -
    # views, routines, triggers and the event exist again, defined the same
    objects_of my_src sc_types >"$T/src.obj"
    objects_of my_dst sc_types >"$T/dst.obj"
    cat "$T/src.obj"
    diff "$T/src.obj" "$T/dst.obj"
    [ "$(grep -c '' "$T/src.obj")" -ge 7 ]
    # trigger order survives (FOLLOWS is not in SHOW CREATE TRIGGER)
    [ "$(my_dst -N -e "SELECT GROUP_CONCAT(TRIGGER_NAME ORDER BY ACTION_ORDER) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'sc_types'")" = "a_child_bi,a_child_bi2" ]
    # the sequence continues where it was
    [ "$(my_dst -N -e 'SELECT NEXTVAL(sc_types.seq1)')" = "$(my_src -N -e 'SELECT NEXTVAL(sc_types.seq1)')" ]
    # the database keeps its charset and collation
    [ "$(my_dst -N -e "SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, ' ', DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'sc_types'")" = "utf8mb4 utf8mb4_unicode_ci" ]
    # the views work after the load (a view over a view)
    [ "$(my_dst -N -e 'SELECT COUNT(*) FROM sc_types.a_top')" = "$(my_src -N -e 'SELECT COUNT(*) FROM sc_types.a_top')" ]
    # invisible and generated columns: values kept, computed ones recomputed
    [ "$(my_dst -N -e 'SELECT GROUP_CONCAT(CONCAT_WS(":", id, a, v, p, h) ORDER BY id) FROM sc_types.gen')" = "1:10:20:x10:1,2:2,3:-4:-8:x-4" ]
}

@test "the manifest states method, consistency, counts, binlog position and load command" {
    stage_dump_ok
    [ "$(manifest '["kind"]')" = mysql ]
    [ "$(manifest '["consistency"]')" = "single-transaction+backup-stage" ]
    [[ "$(manifest '["server_version"]')" == *MariaDB* ]]
    [ "$(manifest '["load_command"]')" = "mariadb < mysql/db/dump.sql" ]
    [ "$(manifest '["databases"]')" = '["sc_types"]' ]
    # row counts: every table, equal to COUNT(*) on the source
    local t
    while IFS= read -r t; do
        [ "$(pyjson "$SET/MANIFEST.json" "[s for s in j['sources'] if s['name'] == 'db'][0]['tables']['sc_types'][a[0]]" "$t")" = \
            "$(my_src -N -e "SELECT COUNT(*) FROM sc_types.\`${t//\`/\`\`}\`")" ]
    done < <(tables_of sc_types | grep -vx seq1)
    [ "$(manifest '["tables"]["sc_types"]["floats"]')" = 20000 ]
    [ "$(manifest '["objects"]')" = '{"views": 2, "triggers": 2, "routines": 2, "events": 1}' ]
    # binary logging is on in the test server: file, position and GTID
    [[ "$(manifest '["binlog"]["file"]')" == binlog.* ]]
    [ "$(manifest '["binlog"]["position"]')" -gt 0 ]
    [ -n "$(manifest '["binlog"]["gtid"]')" ]
    # the lock window was short and the MyISAM/Aria tables are not warned about
    run -0 manifest '["lock_seconds"]'
    [ "$(manifest '["warnings"]')" = "[]" ]
    [ "$(manifest '["files"]')" = '["mysql/db/dump.sql"]' ]
    # two connections by default, sharing the snapshot
    [ "$(manifest '["threads"]')" = 2 ]
    [[ "$(manifest '["method"]')" == *"2 connections sharing one snapshot (started under BACKUP STAGE BLOCK_COMMIT)"* ]]
    [ "$(manifest '["chunks"]')" -ge "$(manifest '["tables"]["sc_types"]' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" ]
}

@test "Chinook round-trips through the stock client" {
    write_conf "database = Chinook"
    stage_dump_ok
    load_into_dst Chinook
    fingerprint my_src Chinook >"$T/src.fp"
    fingerprint my_dst Chinook >"$T/dst.fp"
    cat "$T/src.fp"
    diff "$T/src.fp" "$T/dst.fp"
    [ "$(wc -l <"$T/src.fp")" -eq 11 ]
    [ "$(manifest '["tables"]["Chinook"]["Track"]')" = 3503 ]
    local total=0 n
    while IFS=$'\t' read -r _ _ n; do total=$((total + n)); done <"$T/src.fp"
    [ "$(manifest '["rows_total"]')" = "$total" ]
}

@test "an unchanged database dumps to identical bytes" {
    write_conf "database = sc_types" "database = Chinook"
    stage_dump_ok
    local first=$DUMP
    sleep 1 # a new set id
    stage_dump_ok
    [ "$DUMP" != "$first" ]
    cmp "$first" "$DUMP"
}

@test "no database named: every non-system database is dumped" {
    write_conf
    stage_dump_ok
    run -0 manifest '["databases"]'
    [[ "$output" == *'"Chinook"'* ]]
    [[ "$output" == *'"sc_types"'* ]]
    [[ "$output" != *'"mysql"'* ]]
    [[ "$output" != *information_schema* ]]
    [[ "$output" != *performance_schema* ]]
}

@test "include_tables and exclude_tables select tables by db.table pattern" {
    write_conf "database = sc_types" "include_tables = sc_types.n*" "include_tables = sc_types.ints" \
        "exclude_tables = sc_types.nopk"
    stage_dump_ok
    [ "$(manifest '["tables"]["sc_types"]' | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin))))')" = "ints nets nums" ]
    ! grep -q 'CREATE TABLE `nopk`' "$DUMP"
}

@test "definer = strip removes DEFINER from views, triggers, routines and events" {
    write_conf "database = sc_types" "definer = strip"
    stage_dump_ok
    grep -q 'CREATE TRIGGER' "$DUMP"
    ! grep -q 'DEFINER=' "$DUMP"
    write_conf "database = sc_types"
    stage_dump_ok
    [ "$(grep -c 'DEFINER=`root`@`localhost`' "$DUMP")" -ge 7 ]
}

@test "max_insert_bytes bounds every multi-row INSERT (a longer row stands alone)" {
    write_conf "database = sc_types" "max_insert_bytes = 4096"
    stage_dump_ok
    python3 - "$DUMP" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read().decode()
stmts, cur = [], None
for line in data.split('\n'):
    if line.startswith('INSERT INTO '):
        cur = [line]
    elif cur is not None:
        cur.append(line)
    if cur is not None and line.endswith(';') and (line.startswith('(') or line.startswith('INSERT')):
        stmts.append('\n'.join(cur) + '\n')
        cur = None
assert len(stmts) > 10, len(stmts)
for s in stmts:
    rows = s.count('\n(')
    assert len(s.encode()) <= 4096 or rows == 1, (len(s), rows)
print(len(stmts), "statements checked")
PY
    # and it still loads to the same data
    load_into_dst sc_types
    diff <(fingerprint my_src sc_types) <(fingerprint my_dst sc_types)
}

# A dump with threads = 4 while one session commits small transactions that
# each touch c_a, c_z and two accounts: restored, every transaction is all in
# or all out. $@: more lines for the source's config.
consistent_under_writer() {
    my_src <<'SQL'
CREATE DATABASE IF NOT EXISTS sc_busy;
USE sc_busy;
DROP TABLE IF EXISTS c_a, c_m_big, c_z, acct, notes;
CREATE TABLE c_a (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
CREATE TABLE c_z (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
CREATE TABLE acct (id INT PRIMARY KEY, bal BIGINT NOT NULL);
INSERT INTO acct SELECT seq, 1000 FROM seq_1_to_100;
-- sorts between c_a and c_z and takes a while to read
CREATE TABLE c_m_big (id INT PRIMARY KEY, pad VARCHAR(200));
INSERT INTO c_m_big SELECT seq, REPEAT('p', 200) FROM seq_1_to_300000;
-- not transactional: read while the snapshot lock holds
CREATE TABLE notes (id INT PRIMARY KEY, v TEXT) ENGINE=Aria;
INSERT INTO notes SELECT seq, 'n' FROM seq_1_to_500;
SQL
    # One session, many small transactions: a row in c_a and in c_z, and a
    # transfer between two accounts (the sum stays 100000), in each. The
    # client runs directly (not through a function) so that $! is its pid.
    python3 -c '
import random
random.seed(3)
for i in range(150000):
    a, b = random.randint(1, 100), random.randint(1, 100)
    print("START TRANSACTION; INSERT INTO c_a (v) VALUES (%d); UPDATE acct SET bal = bal - 7 WHERE id = %d; "
          "INSERT INTO c_z (v) VALUES (%d); UPDATE acct SET bal = bal + 7 WHERE id = %d; COMMIT;" % (i, a, i, b))
' >"$T/writer.sql"
    mariadb --no-defaults -S "$SRC_DIR/sock" -uroot sc_busy <"$T/writer.sql" &
    local writer=$!
    sc_track "$writer"
    # wait until the writer is busy
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(my_src -N -e 'SELECT COUNT(*) FROM sc_busy.c_z')" -gt 100 ] && break
        sleep 0.05
    done
    local before after
    before=$(my_src -N -e 'SELECT COUNT(*) FROM sc_busy.c_z')
    write_conf "database = sc_busy" "threads = 4" "$@"
    stage_dump_ok
    [ "$(manifest '["threads"]')" = 4 ]
    [ "$(manifest '["chunks"]')" -gt 3 ] # c_m_big is read in several ranges
    after=$(my_src -N -e 'SELECT COUNT(*) FROM sc_busy.c_z')
    kill "$writer" 2>/dev/null || true
    wait "$writer" 2>/dev/null || true
    echo "c_z rows: $before before, $after after the dump"
    [ "$after" -gt "$before" ] # the writer really wrote during the dump
    load_into_dst sc_busy
    local a z sum
    a=$(my_dst -N -e 'SELECT COUNT(*) FROM sc_busy.c_a')
    z=$(my_dst -N -e 'SELECT COUNT(*) FROM sc_busy.c_z')
    sum=$(my_dst -N -e 'SELECT SUM(bal) FROM sc_busy.acct')
    echo "restored: c_a $a, c_z $z, sum $sum"
    [ "$a" -eq "$z" ]
    [ "$a" -ge "$before" ]
    [ "$a" -le "$after" ]
    [ "$sum" -eq 100000 ]
    [ "$(manifest '["tables"]["sc_busy"]["c_a"]')" -eq "$a" ]
    [ "$(manifest '["tables"]["sc_busy"]["notes"]')" -eq 500 ]
    [ "$(my_dst -N -e 'SELECT COUNT(*) FROM sc_busy.notes')" -eq 500 ]
}

@test "consistency: a concurrent writer's transactions are all in or all out" {
    consistent_under_writer
    # MariaDB 10.11: the snapshots start under BACKUP STAGE BLOCK_COMMIT
    [[ "$(manifest '["method"]')" == *"4 connections sharing one snapshot (started under BACKUP STAGE BLOCK_COMMIT)"* ]]
    [ "$(manifest '["consistency"]')" = single-transaction+backup-stage ]
}

@test "snapshot_lock = ftwrl: the MySQL path (FLUSH TABLES WITH READ LOCK) is as consistent, on MariaDB" {
    # MySQL servers and MariaDB < 10.4 get FTWRL; this forces it here, where
    # only MariaDB 10.11 is available, so the path is tested for real
    consistent_under_writer "snapshot_lock = ftwrl"
    [[ "$(manifest '["method"]')" == *"4 connections sharing one snapshot (started under FLUSH TABLES WITH READ LOCK)"* ]]
    [ "$(manifest '["consistency"]')" = single-transaction+ftwrl ]
    [[ "$stderr" == *"FLUSH TABLES WITH READ LOCK held while 5 connection(s) start their snapshot"* ]]
    # the lock was released: a write to the Aria table goes through at once
    timeout 10 mariadb --no-defaults -S "$SRC_DIR/sock" -uroot -e "INSERT INTO sc_busy.notes VALUES (501, 'after')"
    # and only the three values are accepted
    write_conf "database = sc_busy" "snapshot_lock = sometimes"
    run --separate-stderr sc config check
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"snapshot_lock"*"expected auto, backup_stage or ftwrl"* ]]
}

@test "without RELOAD, the non-transactional tables are named in the warnings, and one connection reads" {
    write_conf "database = sc_types" "threads = 4"
    sed -i 's/^user = sc$/user = noreload/' "$CONF"
    stage_dump_ok
    [ "$(manifest '["consistency"]')" = "single-transaction" ]
    # no lock, so no snapshot shared by several connections: one reads all
    [ "$(manifest '["threads"]')" = 1 ]
    run -0 manifest '["method"]'
    echo "$output"
    [[ "$output" == *"one connection: connections can share one snapshot only under a lock"*RELOAD* ]]
    run -0 manifest '["warnings"]'
    echo "$output"
    [[ "$output" == *'`sc_types`.`legacy` (MyISAM) is not transactional'* ]]
    [[ "$output" == *'`sc_types`.`aria_t` (Aria) is not transactional'* ]]
    [[ "$output" == *RELOAD* ]]
    [[ "$output" != *'`ints`'* ]]
    # and the data is complete all the same
    load_into_dst sc_types
    diff <(fingerprint my_src sc_types) <(fingerprint my_dst sc_types)
}

@test "objects the account cannot see are named in the warnings, not silently missing" {
    write_conf "database = sc_types"
    sed -i 's/^user = sc$/user = mini/' "$CONF"
    stage_dump_ok
    run -0 manifest '["warnings"]'
    echo "$output"
    [[ "$output" == *'events of `sc_types` are not in the dump: the account lacks the EVENT privilege'* ]]
    [[ "$output" == *'triggers of `sc_types` may be missing'* ]]
    [[ "$output" == *'routines of `sc_types` that the account did not define may be missing'* ]]
    # the full account sees everything and warns about nothing
    write_conf "database = sc_types"
    stage_dump_ok
    [ "$(manifest '["warnings"]')" = "[]" ]
}

@test "only InnoDB tables and threads = 1: no lock is taken at all" {
    write_conf "database = Chinook" "threads = 1"
    stage_dump_ok
    [ "$(manifest '["threads"]')" = 1 ]
    [ "$(manifest '["method"]')" = "logical SQL dump over libmariadb (in-process), one connection" ]
    [ "$(manifest '["consistency"]')" = "single-transaction" ]
    run -1 manifest '["lock_seconds"]'
    [ "$(manifest '["warnings"]')" = "[]" ]
}

@test "TCP to 127.0.0.1 works as well as the socket" {
    local port
    port=$(cat "$SRC_DIR/port")
    {
        printf '[staging]\ndir = staging\n\n[mysql db]\nhost = 127.0.0.1\nport = %s\nuser = sc\n' "$port"
        printf 'password_file = my.pass\ndatabase = Chinook\n'
        printf '\n[restic]\nrepository = %s\npassword_file = restic.pass\n' "$REPO"
    } >"$CONF"
    stage_dump_ok
    [ "$(manifest '["tables"]["Chinook"]["Track"]')" = 3503 ]
}

@test "TLS: ssl_ca with ssl_verify connects to the right server and refuses the wrong CA" {
    local port
    port=$(cat "$SRC_DIR/port")
    tls_conf() {
        {
            printf '[staging]\ndir = staging\n\n[mysql db]\nhost = 127.0.0.1\nport = %s\n' "$port"
            printf 'user = sc\npassword_file = my.pass\ndatabase = Chinook\nssl_verify = yes\n'
            printf 'ssl_ca = %s\n' "$1"
            printf '\n[restic]\nrepository = %s\npassword_file = restic.pass\n' "$REPO"
        } >"$CONF"
    }
    tls_conf "$SRC_DIR/tls/ca.pem"
    stage_dump_ok
    [[ "$(manifest '["tls"]')" == TLS* ]]
    tls_conf "$SRC_DIR/tls/other-ca.pem"
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"cannot connect"* ]]
    # without TLS options over the socket: plain, and the manifest says so
    write_conf "database = Chinook"
    stage_dump_ok
    [ "$(manifest '["tls"]')" = false ]
}

@test "the Torrust POC's MYSQL_* variables work without a config file" {
    local port
    port=$(cat "$SRC_DIR/port")
    run --separate-stderr env -i PATH="$PATH" HOME="$T" BACKUP_MYSQL_ENABLED=true MYSQL_HOST=127.0.0.1 \
        MYSQL_PORT="$port" MYSQL_DATABASE=Chinook MYSQL_USER=sc MYSQL_PASSWORD="$SC_PASSWORD" \
        RESTIC_REPOSITORY="$REPO" RESTIC_PASSWORD_FILE="$PASS" STAGECOACH_STAGING_DIR="$STAGING" \
        "$SC" stage
    echo "$stderr"
    [ "$status" -eq 0 ]
    SET="$(last_line)"
    [ "$(pyjson "$SET/MANIFEST.json" "[s for s in j['sources'] if s['name'] == 'tracker'][0]['tables']['Chinook']['Track']")" = 3503 ]
    [[ "$stderr" != *"$SC_PASSWORD"* ]]
    ! grep -rq -- "$SC_PASSWORD" "$SET"
}

@test "an option file works instead of user and password_file" {
    printf '[client]\nuser = sc\npassword = %s\nsocket = %s\n' "$SC_PASSWORD" "$SRC_DIR/sock" >"$T/my.cnf"
    chmod 600 "$T/my.cnf"
    printf '[staging]\ndir = staging\n\n[mysql db]\noption_file = my.cnf\ndatabase = Chinook\n\n[restic]\nrepository = %s\npassword_file = restic.pass\n' "$REPO" >"$CONF"
    stage_dump_ok
    [ "$(manifest '["tables"]["Chinook"]["Genre"]')" = 25 ]
    # a group of its own
    printf '[backup]\nuser = sc\npassword = %s\nsocket = %s\n' "$SC_PASSWORD" "$SRC_DIR/sock" >"$T/my.cnf"
    printf '[staging]\ndir = staging\n\n[mysql db]\noption_file = my.cnf\ngroup = backup\ndatabase = Chinook\n\n[restic]\nrepository = %s\npassword_file = restic.pass\n' "$REPO" >"$CONF"
    stage_dump_ok
}

@test "a wrong password: exit 4, the server's reason, and the password is never shown" {
    printf 'Wr0ng-Secret-Value\n' >"$T/my.pass"
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"Access denied for user 'sc'"* ]]
    [[ "$stderr" != *Wr0ng-Secret-Value* ]]
    [[ "$output" != *Wr0ng-Secret-Value* ]]
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
    # nor in the JSON report
    run sc --json stage
    [ "$status" -eq 4 ]
    [[ "$output" != *Wr0ng-Secret-Value* ]]
}

@test "no server: exit 4 quickly, for a missing socket and for a closed port" {
    write_conf "database = x"
    sed -i "s|^socket = .*|socket = $T/no.sock|" "$CONF"
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"cannot connect"* ]]
    [[ "$stderr" == *"$T/no.sock"* ]]
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    {
        printf '[staging]\ndir = staging\n\n[mysql db]\nhost = 127.0.0.1\nport = %s\nuser = sc\n' "$port"
        printf 'password_file = my.pass\nconnect_timeout = 3s\n'
        printf '\n[restic]\nrepository = %s\npassword_file = restic.pass\n' "$REPO"
    } >"$CONF"
    SECONDS=0
    run --separate-stderr sc stage
    [ "$status" -eq 4 ]
    # A bound that catches a hang, not a speed claim: generous for a loaded CI.
    [ "$SECONDS" -le 20 ]
    [[ "$stderr" == *"127.0.0.1:$port"* ]]
    [ -z "$(sc_sets)" ]
}

@test "a server that never answers: exit 4 within connect_timeout" {
    # Accepts TCP connections (the kernel does) but never sends a greeting.
    python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
time.sleep(60)
' >"$T/silent.port" &
    sc_track $!
    sc_wait_for_file "$T/silent.port"
    local port=""
    while [ -z "$port" ]; do port=$(cat "$T/silent.port"); done
    {
        printf '[staging]\ndir = staging\n\n[mysql db]\nhost = 127.0.0.1\nport = %s\nuser = sc\n' "$port"
        printf 'password_file = my.pass\nconnect_timeout = 2s\n'
        printf '\n[restic]\nrepository = %s\npassword_file = restic.pass\n' "$REPO"
    } >"$CONF"
    SECONDS=0
    run --separate-stderr sc stage
    echo "$stderr ($SECONDS s)"
    [ "$status" -eq 4 ]
    # The silent server holds the connection for 60 s: ending well before
    # that is connect_timeout at work (the bound is generous for a loaded CI).
    [ "$SECONDS" -le 20 ]
    [[ "$stderr" == *"127.0.0.1:$port"*handshake* ]]
}

@test "a database that does not exist: exit 4 naming it" {
    write_conf "database = no_such_db"
    run --separate-stderr sc stage
    [ "$status" -eq 4 ]
    [[ "$stderr" == *no_such_db* ]]
    [[ "$stderr" == *"Unknown database"* ]]
}

@test "config: user or option_file required; secrets must be private; values checked" {
    printf '[mysql db]\nsocket = /x\n\n[restic]\nrepository = %s\npassword_file = restic.pass\n' "$REPO" >"$CONF"
    run -3 sc config check
    [[ "$output" == *"[mysql db] user: missing"* ]]
    write_conf "definer = maybe" "include_tables = notable" "max_insert_bytes = 10" "threads = 17"
    run -3 sc config check
    [[ "$output" == *"threads: must be between 1 and 16"* ]]
    [[ "$output" == *"definer: expected keep or strip"* ]]
    [[ "$output" == *"include_tables: expected a pattern database.table"* ]]
    [[ "$output" == *"max_insert_bytes: must be between"* ]]
    write_conf
    chmod 644 "$T/my.pass"
    run --separate-stderr sc stage
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"password_file"*"chmod 600"* ]]
}

# Tables read in several key ranges: signed keys across zero and sparse, an
# unsigned BIGINT key at the top of its range, a composite key (one range).
@test "threads = 1 and threads = 4 write identical dumps that restore to the same data" {
    chunks_sql | my_src
    write_conf "database = sc_types" "database = Chinook" "database = sc_chunks" "threads = 1"
    stage_dump_ok
    [ "$(manifest '["threads"]')" = 1 ]
    local one=$DUMP chunks
    chunks=$(manifest '["chunks"]')
    # s spans 420000 keys, u 200000: several ranges each; k one
    [ "$chunks" -gt 30 ]
    sleep 1 # a new set id
    write_conf "database = sc_types" "database = Chinook" "database = sc_chunks" "threads = 4"
    stage_dump_ok
    [ "$(manifest '["threads"]')" = 4 ]
    [ "$(manifest '["chunks"]')" = "$chunks" ]
    [[ "$(manifest '["method"]')" == *"4 connections sharing one snapshot"* ]]
    [ "$(manifest '["tables"]["sc_chunks"]["s"]')" = 140000 ]
    [ "$(manifest '["tables"]["sc_chunks"]["u"]')" = 100000 ]
    cmp "$one" "$DUMP"
    load_into_dst sc_types Chinook sc_chunks
    local db
    for db in sc_types Chinook sc_chunks; do
        fingerprint my_src "$db" >"$T/src.fp"
        fingerprint my_dst "$db" >"$T/dst.fp"
        cat "$T/src.fp"
        diff "$T/src.fp" "$T/dst.fp"
    done
    # the chunked rows are in key order, as with one connection
    [ "$(grep -c '^INSERT INTO `s`' "$DUMP")" -gt 1 ]
    # rows appended past MAX move no range bound: every statement of the
    # table is written again byte for byte, then the new ones (restic stores
    # only the new end). (MAX was 209997: the old last range, from 200000,
    # now ends at 250000 and holds the same rows.)
    local before=$DUMP
    my_src -e "INSERT INTO sc_chunks.s (id, v) SELECT 300000 + seq, 'new' FROM sc_chunks.seq_1_to_20000"
    sleep 1 # a new set id
    stage_dump_ok
    my_src -e "DELETE FROM sc_chunks.s WHERE id > 300000"
    python3 - "$before" "$DUMP" <<'PY'
import sys
def ranges(path):
    out, cur = [], None
    for line in open(path, encoding='utf-8'):
        if line.startswith('INSERT INTO `s` '):
            cur = [line]
            out.append(cur)
        elif cur is not None:
            cur.append(line)
            if line.endswith(';\n'):
                cur = None
    return [''.join(r) for r in out]
old, new = ranges(sys.argv[1]), ranges(sys.argv[2])
print(len(old), "statements before,", len(new), "after")
assert len(new) > len(old)
assert new[:len(old)] == old
PY
}

@test "a worker's connection killed mid-dump: exit 4, no set, nothing left behind" {
    kill_table
    write_conf "database = sc_kill" "threads = 4"
    sc stage >"$T/out" 2>"$T/err" &
    local pid=$! id
    sc_track "$pid"
    id=$(running_query my_src 'SELECT /*!40001 SQL_NO_CACHE */%')
    echo "killing connection $id"
    [ -n "$id" ]
    my_src -e "KILL $id" || true
    local rc=0
    wait "$pid" || rc=$?
    cat "$T/err"
    [ "$rc" -eq 4 ]
    grep -q 'reading `sc_kill`.`t`' "$T/err"
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
}

@test "SIGINT during a parallel dump stops every worker: exit 130, no set, nothing left behind" {
    kill_table
    write_conf "database = sc_kill" "threads = 4"
    "$SC" -c "$CONF" stage >"$T/out" 2>"$T/err" & # the binary itself: $! is its pid
    local pid=$! id
    sc_track "$pid"
    id=$(running_query my_src 'SELECT /*!40001 SQL_NO_CACHE */%')
    [ -n "$id" ]
    kill -INT "$pid"
    local rc=0
    wait "$pid" || rc=$?
    cat "$T/err"
    [ "$rc" -eq 130 ]
    grep -q interrupted "$T/err"
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
    # no connection of the dump is left reading on the server
    [ -z "$(my_src -N -e "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'sc' AND INFO LIKE 'SELECT /*!40001%'")" ]
    my_src -e 'DROP DATABASE sc_kill'
}

@test "the server killed in the middle of a dump: exit 4 and no set" {
    local dir
    dir="$(mktemp -d /tmp/scmy-kill.XXXXXX)"
    KILL_DIR=$dir # teardown stops it if the test fails early
    "$MARIADB_SCRIPT" start "$dir"
    mariadb --no-defaults --default-character-set=utf8mb4 -S "$dir/sock" -uroot <<SQL
CREATE USER 'sc'@'localhost' IDENTIFIED BY '$SC_PASSWORD';
GRANT ALL ON *.* TO 'sc'@'localhost';
CREATE DATABASE big;
USE big;
CREATE TABLE t (id INT PRIMARY KEY, pad VARCHAR(300));
INSERT INTO t SELECT seq, REPEAT(CHAR(65 + seq % 26), 300) FROM seq_1_to_1500000;
SQL
    write_conf "database = big"
    sed -i "s|^socket = .*|socket = $dir/sock|" "$CONF"
    sc stage >"$T/out" 2>"$T/err" &
    local pid=$! f i size=0
    for ((i = 0; i < 600; i++)); do
        f=$(compgen -G "$STAGING/.tmp-*/mysql/db/dump.sql" | head -n 1 || true)
        if [ -n "$f" ]; then
            size=$(stat -c %s "$f" 2>/dev/null || echo 0)
            [ "$size" -gt 20000000 ] && break
        fi
        sleep 0.02
    done
    echo "dump.sql had $size bytes when the server was killed"
    kill -9 "$(cat "$dir/mariadbd.pid")"
    local rc=0
    wait "$pid" || rc=$?
    cat "$T/err"
    "$MARIADB_SCRIPT" stop "$dir" || true
    rm -rf "$dir"
    [ "$size" -gt 20000000 ]
    [ "$rc" -eq 4 ]
    grep -q 'reading `big`.`t`' "$T/err"
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
}

@test "restore --apply --into loads a set into another database, refusing a non-empty one" {
    write_conf "database = sc_types" "definer = keep"
    stage_dump_ok
    my_src -e 'DROP DATABASE IF EXISTS sc_drill'
    run --separate-stderr sc restore --set latest --to "$T/r1" --apply --source db --into sc_drill
    echo "$output $stderr"
    [ "$status" -eq 0 ]
    [[ "$output" == *'put back mysql db: database `sc_drill`'* ]]
    diff <(fingerprint my_src sc_types | cut -f2-) <(tables_of sc_types | while IFS= read -r t; do
        printf '%s\t%s\n' "$(my_src -N -e "CHECKSUM TABLE \`sc_drill\`.\`${t//\`/\`\`}\` EXTENDED" | cut -f2)" \
            "$(my_src -N -e "SELECT COUNT(*) FROM \`sc_drill\`.\`${t//\`/\`\`}\`")"
    done)
    objects_of my_src sc_types | sed 's/sc_types/DB/g' >"$T/a.obj"
    objects_of my_src sc_drill | sed 's/sc_drill/DB/g' >"$T/b.obj"
    diff "$T/a.obj" "$T/b.obj"
    # a second time: the target is not empty
    run --separate-stderr sc restore --set latest --to "$T/r2" --apply --source db --into sc_drill
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"is not empty"*"--force"* ]]
    run --separate-stderr sc restore --set latest --to "$T/r3" --apply --source db --into sc_drill --force
    [ "$status" -eq 0 ]
    my_src -e 'DROP DATABASE sc_drill'
}

@test "restore --apply without --into puts the databases back under their names" {
    my_src -e 'CREATE DATABASE sc_small; CREATE TABLE sc_small.t (id INT PRIMARY KEY, v BLOB); INSERT INTO sc_small.t VALUES (1, 0x00FF), (2, NULL)'
    write_conf "database = sc_small"
    stage_dump_ok
    local before
    before=$(my_src -N -e 'CHECKSUM TABLE sc_small.t EXTENDED')
    run --separate-stderr sc restore --set latest --to "$T/r1" --apply --source db
    [ "$status" -eq 1 ] # it exists and is not empty
    my_src -e 'DROP DATABASE sc_small'
    run --separate-stderr sc restore --set latest --to "$T/r2" --apply --source db
    echo "$stderr"
    [ "$status" -eq 0 ]
    [ "$(my_src -N -e 'CHECKSUM TABLE sc_small.t EXTENDED')" = "$before" ]
    my_src -e 'DROP DATABASE sc_small'
}
