#!/usr/bin/env bats
# The key promise of the SQLite source: staging a database while another
# process commits to it as fast as it can gives a copy that is one consistent
# state of the database (all of a transaction or none of it), complete, and
# sound; and the writer carries on afterwards.
#
# tests/helpers/sqlite_writer keeps  c.a == c.b == count(*) FROM log  true in
# every committed state. The database is padded with a few MB first, and the
# backup copies 16 pages a step, so the copy takes many steps while the
# writer commits between them: a torn copy (pages of different states) breaks
# the equality.

load helpers

setup() {
    sc_setup
    WRITER="$(sc_helper sqlite_writer)"
    [ -x "$WRITER" ]
}

teardown() {
    sc_teardown
}

concurrent_stage() {
    local mode=$1 db="$T/busy.db"
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
    # a few MB: many steps of 16 pages
    [ "$(sqlite3 "$db" 'PRAGMA page_count')" -gt 1500 ]
    # this test's config stages only the busy database, 16 pages a step
    sed -i "s|^path = db/app.db\$|path = busy.db\nstep_pages = 16\ncheck = integrity|" "$CONF"
    grep -qx 'step_pages = 16' "$CONF"

    local ready="$T/writer.ready"
    "$WRITER" "$db" 300 "$mode" "$ready" >"$T/writer.out" 2>"$T/writer.err" 3>&- &
    local wpid=$!
    sc_track "$wpid"
    sc_wait_for_file "$ready"

    # (timeout only turns a hang into a failure: a backup that restarts on
    # every commit of the writer never finishes)
    run --separate-stderr timeout 120 "$SC" -c "$CONF" stage
    echo "stage: status $status; $stderr"
    [ "$status" -eq 0 ]
    local set copy
    set="$(last_line)"
    copy="$set/sqlite/app.db"
    [ -f "$copy" ]

    # The copy is one committed state of the database, taken while the
    # writer was busy, complete and sound.
    copy_is_one_commit "$copy"
    local a=$COPY_A
    [ ! -e "$copy-wal" ]
    # the manifest counted the copy it shipped
    [ "$(pyjson "$set/MANIFEST.json" 'j["sources"][0]["tables"]["log"]')" = "$a" ]
    [ "$(pyjson "$set/MANIFEST.json" 'j["sources"][0]["tables"]["c"]')" = 1 ]
    (cd "$set" && b2sum -c --quiet B2SUMS)

    # The writer carries on after the stage (no lock was left behind): wait
    # until it has committed past the copied state (it reports its commits
    # in the ready file; a == commits), then stop it.
    local i live=0
    for ((i = 0; i < 600; i++)); do
        live="$(cat "$ready")"
        [ "$live" -gt "$a" ] && break
        sleep 0.05
    done
    echo "writer at $live commits after the stage"
    [ "$live" -gt "$a" ]
    kill -TERM "$wpid"
    wait "$wpid"
    local commits
    commits="$(cat "$T/writer.out")"
    echo "writer: $commits commits; $(cat "$T/writer.err")"
    # the live database agrees with the writer: nothing was lost or torn there either
    [ "$(sqlite3 "$db" 'SELECT a FROM c')" = "$commits" ]
    [ "$(sqlite3 "$db" 'SELECT b FROM c')" = "$commits" ]
    [ "$(sqlite3 "$db" 'SELECT count(*) FROM log')" = "$commits" ]
    [ "$a" -lt "$commits" ]
}

@test "staging while a writer commits (WAL): the copy is consistent and complete" {
    concurrent_stage wal
}

@test "staging while a writer commits (rollback journal): the copy is consistent and complete" {
    concurrent_stage delete
}
