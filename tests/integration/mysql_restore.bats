#!/usr/bin/env bats
# restore --apply of [mysql NAME] dumps, against real MariaDB servers: SRC
# (staged from) and DST (restored into, with the stock client for the serial
# reference and with stagecoach). A parallel restore (load index, worker
# connections, secondary keys built after the rows, objects last) must give
# exactly what a serial load gives: every table's CHECKSUM TABLE ... EXTENDED
# and row count, SHOW CREATE TABLE, information_schema.STATISTICS, and every
# view, routine, trigger and event. Failures in a worker (a duplicate key, a
# killed connection, SIGINT) end with one error and no connection left.

load restore_helpers
load mysql_helpers

setup_file() {
    mysql_servers_start
    my_dst <<SQL
CREATE USER 'sc'@'localhost' IDENTIFIED BY '$SC_PASSWORD';
GRANT ALL ON *.* TO 'sc'@'localhost';
SQL
    chunks_sql | my_src
    keys_sql | my_src
}

teardown_file() {
    mysql_servers_stop
}

setup() {
    sc_setup
    printf '%s\n' "$SC_PASSWORD" >"$T/my.pass"
    chmod 600 "$T/my.pass"
}

teardown() {
    sc_teardown
}

# ---- helpers ------------------------------------------------------------------

# Tables with secondary keys (unique on a random BINARY(20), composite,
# prefix with a comment) read in several key ranges; a trigger that would
# add rows to a log if it fired during the load; a view over both.
keys_sql() {
    cat <<'SQL'
CREATE DATABASE IF NOT EXISTS sc_keys;
USE sc_keys;
CREATE TABLE w (id BIGINT PRIMARY KEY, h BINARY(20) NOT NULL, n INT, v VARCHAR(200), d DOUBLE,
  j JSON, UNIQUE KEY uh (h), KEY kn (n, id), KEY kv (v(10)) COMMENT 'a prefix key') ENGINE=InnoDB;
INSERT INTO w SELECT seq, UNHEX(SHA1(seq)), seq % 1000, CONCAT('row ', seq, ' ', REPEAT('v', seq % 150)),
  RAND(seq) * 1e6, JSON_OBJECT('id', seq, 'md5', MD5(seq)) FROM seq_1_to_250000;
CREATE TABLE wlog (id INT AUTO_INCREMENT PRIMARY KEY, wid BIGINT, KEY (wid)) ENGINE=InnoDB;
INSERT INTO wlog (wid) VALUES (1), (2);
CREATE TRIGGER w_ai AFTER INSERT ON w FOR EACH ROW INSERT INTO wlog (wid) VALUES (NEW.id);
CREATE VIEW wv AS SELECT w.id, w.n, wlog.id AS lid FROM w JOIN wlog ON wlog.wid = w.id;
SQL
}

# The config with restores going to DST: the same [mysql db] source
# (staging directory, name), DST's socket. $@: more lines for the source.
dst_conf() {
    write_conf "$@"
    sed -i "s|^socket = .*|socket = $DST_DIR/sock|" "$CONF"
}

# Everything the comparison covers, for one database on one server: rows
# (CHECKSUM TABLE EXTENDED, COUNT), definitions (SHOW CREATE TABLE), keys
# (information_schema.STATISTICS but cardinality) and objects.
db_state() {
    local server=$1 db=$2 t q
    fingerprint "$server" "$db"
    while IFS= read -r t; do
        q="\`$db\`.\`${t//\`/\`\`}\`"
        $server -N -e "SHOW CREATE TABLE $q" | cut -f2-
    done < <(tables_of "$db")
    $server -N -e "SELECT TABLE_NAME, NON_UNIQUE, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, COLLATION,
        SUB_PART, NULLABLE, INDEX_TYPE, COMMENT, INDEX_COMMENT, IGNORED FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = '$db' ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
    objects_of "$server" "$db"
}

drop_on_dst() {
    local db
    for db in "$@"; do my_dst -e "DROP DATABASE IF EXISTS \`$db\`"; done
}

# The connections of user sc on DST (a restore's must all be gone).
sc_connections() {
    my_dst -N -e "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'sc'"
}

# ---- tests --------------------------------------------------------------------

@test "a parallel restore equals a serial load: rows, CREATE TABLE, keys and objects of types, Chinook, key ranges" {
    local dbs=(sc_types Chinook sc_chunks sc_keys) db
    write_conf "database = sc_types" "database = Chinook" "database = sc_chunks" "database = sc_keys"
    stage_dump_ok
    [ "$(manifest '["load_index"]["format"]')" = 1 ]
    [ "$(manifest '["load_index"]["bytes"]')" = "$(stat -c %s "$DUMP")" ]
    # the serial reference: the stock client
    drop_on_dst "${dbs[@]}"
    my_dst <"$DUMP"
    for db in "${dbs[@]}"; do db_state my_dst "$db" >"$T/serial.$db"; done
    drop_on_dst "${dbs[@]}"
    # stagecoach with 4 connections
    dst_conf "threads = 4"
    run --separate-stderr sc restore --set latest --to "$T/r1" --apply --source db
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"(in parallel, 4 connections)"* ]]
    for db in "${dbs[@]}"; do
        db_state my_dst "$db" >"$T/parallel.$db"
        diff "$T/serial.$db" "$T/parallel.$db"
        # and the rows are the source's
        diff <(fingerprint my_src "$db") <(fingerprint my_dst "$db")
    done
    # the comparison covers what it should: many tables, keys, objects
    [ "$(grep -c 'UNIQUE KEY `uh`' "$T/parallel.sc_keys")" -eq 1 ]
    [ "$(wc -l <"$T/parallel.sc_types")" -gt 60 ]
    grep -q '^TRIGGER w_ai' "$T/parallel.sc_keys"
    # the trigger did not fire during the load: the log holds what it held
    [ "$(my_dst -N -e 'SELECT COUNT(*) FROM sc_keys.wlog')" = 2 ]
}

@test "the JSON report says how the restore ran and how long it took" {
    write_conf "database = sc_keys"
    stage_dump_ok
    drop_on_dst sc_keys
    dst_conf
    run --separate-stderr sc --json restore --set latest --to "$T/r1" --apply --source db
    echo "$stderr"
    [ "$status" -eq 0 ]
    echo "$output" >"$T/report.json"
    local r="[a for a in j['applied'] if a['name'] == 'db'][0]"
    [ "$(pyjson "$T/report.json" "$r['restore']['method']")" = parallel ]
    [ "$(pyjson "$T/report.json" "$r['restore']['connections']")" = 2 ]
    [ "$(pyjson "$T/report.json" "$r['restore']['rows']")" = 250002 ]
    # w's three secondary keys, one ALTER; wlog's key too
    [ "$(pyjson "$T/report.json" "$r['restore']['deferred_keys']")" = 2 ]
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); a=[x for x in r['applied'] if x['name']=='db'][0]; assert 0 < a['restore']['seconds'] <= a['seconds']" "$T/report.json"
    diff <(db_state my_src sc_keys) <(db_state my_dst sc_keys)
    # threads = 1: one worker beside the control connection, the same result
    drop_on_dst sc_keys
    dst_conf "threads = 1"
    run --separate-stderr sc --json restore --set latest --to "$T/r2" --apply --source db
    [ "$status" -eq 0 ]
    echo "$output" >"$T/report1.json"
    [ "$(pyjson "$T/report1.json" "$r['restore']['connections']")" = 1 ]
    diff <(db_state my_src sc_keys) <(db_state my_dst sc_keys)
}

@test "a set without a load index (an older version's) restores serially, to the same result" {
    write_conf "database = sc_keys" "database = sc_types"
    stage_dump_ok
    forge_set "$SET" "del [s for s in m['sources'] if s['name'] == 'db'][0]['load_index']"
    b2sum_check "$SET"
    drop_on_dst sc_keys sc_types
    dst_conf
    run --separate-stderr sc restore --set latest --to "$T/r1" --apply --source db
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"has no load index"* ]]
    [[ "$stderr" == *"(serially, 1 connection)"* ]]
    db_state my_dst sc_keys >"$T/serial"
    diff <(db_state my_src sc_keys) "$T/serial"
    # and an index that does not fit the file is not used either
    forge_set "$SET" "[s for s in m['sources'] if s['name'] == 'db'][0]['load_index'] = {'format': 1, 'bytes': 5, 'sections': []}"
    drop_on_dst sc_keys sc_types
    run --separate-stderr sc restore --set latest --to "$T/r2" --apply --source db
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"load index"*"is not usable (another size than the file)"* ]]
    diff "$T/serial" <(db_state my_dst sc_keys)
}

@test "a duplicate key in one key range: exit 4, one error naming it, no connection left, the partial target kept" {
    write_conf "database = sc_keys"
    stage_dump_ok
    # the first row of the range from 200000 becomes a second row 1 (the
    # same length: 000001), then the set is made consistent again
    grep -q '^(200000,' "$DUMP"
    sed -i 's/^(200000,/(000001,/' "$DUMP"
    forge_set "$SET" "put_file('mysql/db/dump.sql', '$DUMP')"
    drop_on_dst sc_keys
    dst_conf
    run --separate-stderr sc restore --set latest --to "$T/r1" --apply --source db
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"loading \`sc_keys\`.\`w\`"*"Duplicate entry '1' for key 'PRIMARY'"* ]]
    [ "$(grep -c 'ERROR' <<<"$stderr")" -eq 1 ]
    [ "$(sc_connections)" -eq 0 ]
    # as a serial load that fails: the database stays, with what was loaded
    [ "$(my_dst -N -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sc_keys' AND TABLE_NAME = 'w'")" = 1 ]
    [ "$(my_dst -N -e 'SELECT COUNT(*) FROM sc_keys.w')" -lt 250000 ]
}

@test "a worker's connection killed mid-restore: exit 4 naming the table, no connection left" {
    write_conf "database = sc_keys"
    stage_dump_ok
    drop_on_dst sc_keys
    dst_conf
    sc restore --set latest --to "$T/r1" --apply --source db >"$T/out" 2>"$T/err" &
    local pid=$! id
    sc_track "$pid"
    id=$(running_query my_dst "INSERT INTO %")
    echo "killing connection $id"
    [ -n "$id" ]
    my_dst -e "KILL $id" || true
    local rc=0
    wait "$pid" || rc=$?
    cat "$T/err"
    [ "$rc" -eq 4 ]
    grep -q 'loading `sc_keys`.`w`' "$T/err"
    [ "$(grep -c 'ERROR' "$T/err")" -eq 1 ]
    [ "$(sc_connections)" -eq 0 ]
}

@test "SIGINT during a parallel restore stops every connection: exit 130, none left running" {
    write_conf "database = sc_keys"
    stage_dump_ok
    drop_on_dst sc_keys
    dst_conf "threads = 4"
    "$SC" -c "$CONF" restore --set latest --to "$T/r1" --apply --source db >"$T/out" 2>"$T/err" &
    local pid=$! id
    sc_track "$pid"
    id=$(running_query my_dst "INSERT INTO %")
    # (no load seen: say what the restore printed, it may have ended first)
    [ -n "$id" ] || { cat "$T/err"; false; }
    kill -INT "$pid"
    local rc=0
    wait "$pid" || rc=$?
    cat "$T/err"
    [ "$rc" -eq 130 ]
    grep -q 'interrupted' "$T/err"
    [ "$(sc_connections)" -eq 0 ]
}

# The DST server's binary log position (bytes written to the current log).
dst_binlog_pos() {
    my_dst -N -e 'SHOW MASTER STATUS' | cut -f2
}

@test "restore_binlog = no keeps the load out of the binary log; without the privilege it fails" {
    write_conf "database = sc_keys"
    stage_dump_ok
    local before after
    drop_on_dst sc_keys
    dst_conf
    before=$(dst_binlog_pos)
    run -0 sc restore --set latest --to "$T/r1" --apply --source db
    after=$(dst_binlog_pos)
    echo "binary log: $before -> $after"
    [ $((after - before)) -gt 10000000 ] # the rows, logged as the stock client's are
    drop_on_dst sc_keys
    dst_conf "restore_binlog = no"
    before=$(dst_binlog_pos)
    run --separate-stderr sc restore --set latest --to "$T/r2" --apply --source db
    echo "$stderr"
    [ "$status" -eq 0 ]
    after=$(dst_binlog_pos)
    echo "binary log: $before -> $after"
    [ $((after - before)) -lt 2000 ] # nothing of the load
    diff <(db_state my_src sc_keys) <(db_state my_dst sc_keys)
    # an account without SUPER / BINLOG ADMIN
    my_dst -e "CREATE USER IF NOT EXISTS 'nobin'@'localhost' IDENTIFIED BY '$SC_PASSWORD';
               GRANT ALL ON \`sc\\_keys\`.* TO 'nobin'@'localhost'"
    drop_on_dst sc_keys
    sed -i 's/^user = sc$/user = nobin/' "$CONF"
    run --separate-stderr sc restore --set latest --to "$T/r3" --apply --source db
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"restore_binlog = no"*"SUPER or BINLOG ADMIN"* ]]
}

@test "on a terminal, a restore shows rows loaded of the total, the rate and the time left" {
    write_conf "database = sc_keys"
    stage_dump_ok
    drop_on_dst sc_keys
    dst_conf
    script -qec "$(printf '%q ' "$SC" -c "$CONF" restore --set latest --to "$T/r1" --apply --source db) 2>&1" \
        /dev/null >"$T/tty.out" </dev/null
    cat -v "$T/tty.out" | tail -n 5
    grep -q $'\r''.*mysql db: restoring: [0-9]* of 250002 rows ([0-9]*%), [0-9]* rows/s' "$T/tty.out"
    grep -q 'restored into\|restored the dumped databases' "$T/tty.out"
    # without a terminal, none of it
    drop_on_dst sc_keys
    run --separate-stderr sc restore --set latest --to "$T/r2" --apply --source db
    [ "$status" -eq 0 ]
    [[ "$stderr" != *"restoring:"* ]]
}
