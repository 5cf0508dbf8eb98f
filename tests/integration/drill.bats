#!/usr/bin/env bats
# drill: the latest snapshot restored into scratch targets and compared with
# its manifest; passes on a good repository, exit 7 on a tampered one, and
# records the outcome in state.json and the JSON report. Nothing live moves.

load restore_helpers

setup_file() {
    template_repo_make
}

setup() {
    sc_setup
    template_repo_use
}

teardown() {
    sc_teardown
    if [ -n "${MY_DIR:-}" ]; then
        "$SC_ROOT/scripts/test-mariadb.sh" stop "$MY_DIR" || true
        rm -rf "$MY_DIR"
    fi
}

live_state() {
    {
        b2sum "$DB"
        find "$CFGDIR" -type f -exec b2sum {} + | LC_ALL=C sort
    } | b2sum
}

# Run a drill with --json; REPORT is the report file.
drill() {
    run --separate-stderr sc --json drill "$@"
    echo "$stderr"
    printf '%s' "$output" >"$T/report.json"
    REPORT="$T/report.json"
}

@test "drill passes on a good encrypted snapshot, records last_drill, leaves nothing behind" {
    use_encryption
    run_ok
    local live
    live="$(live_state)"
    drill --identity "$ID"
    [ "$status" -eq 0 ]
    [ "$(pyjson "$REPORT" 'j["status"]')" = success ]
    [ "$(pyjson "$REPORT" 'j["drill"]["snapshot"]')" = "$SNAP" ]
    [ "$(pyjson "$REPORT" 'j["drill"]["set"]')" = "${SET##*/}" ]
    [ "$(pyjson "$REPORT" '[(s["name"], s["status"]) for s in j["drill"]["sources"]]')" = \
        '[["app", "ok"], ["etc", "ok"]]' ]
    # what was compared: every table's rows, the archive's entries
    [ "$(pyjson "$REPORT" 'j["drill"]["sources"][0]["rows_total"]')" = \
        "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["rows_total"]')" ]
    [ "$(pyjson "$REPORT" 'j["drill"]["sources"][1]["entries"]')" = \
        "$(pyjson "$SET/MANIFEST.json" 'j["sources"][1]["entries"]')" ]
    # state.json keeps the same record
    [ "$(pyjson "$STAGING/state.json" 'j["last_drill"]["status"]')" = success ]
    [ "$(pyjson "$STAGING/state.json" 'j["last_drill"]["snapshot"]')" = "$SNAP" ]
    [ "$(pyjson "$STAGING/state.json" 'j["last_drill"]["exit_code"]')" = 0 ]
    # scratch space gone, live data untouched
    refute compgen -G "$STAGING/.drill-*"
    [ "$(live_state)" = "$live" ]

    # the human output names each source, and the recovery time
    run --separate-stderr sc drill --identity "$ID"
    [ "$status" -eq 0 ]
    [[ "$output" == *"sqlite app: ok"* ]]
    [[ "$output" == *"recovery time: "*" s ("*" s to read the snapshot back and verify it)"* ]]
    [[ "$output" == *"drill passed"* ]]
}

@test "drill fails with exit 7 when the snapshot holds a set damaged on the staging disk" {
    use_encryption
    staging_keys "identity = keys/id"
    run_ok
    # bit rot (or a hand) on the staging disk after stage, then shipped
    stage_ok
    flip_byte "$SET/sqlite/app.db.enc"
    restic_ship "$SET"
    drill
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"sqlite/app.db.enc"* ]]
    [ "$(pyjson "$REPORT" 'j["drill"]["status"]')" = failure ]
    [ "$(pyjson "$STAGING/state.json" 'j["last_drill"]["status"]')" = failure ]
    [ "$(pyjson "$STAGING/state.json" 'j["last_drill"]["exit_code"]')" = 7 ]
    [[ "$(pyjson "$STAGING/state.json" 'j["last_drill"]["error"]')" == *"app.db.enc"* ]]
    refute compgen -G "$STAGING/.drill-*"
    # the older, sound snapshot still passes
    drill --snapshot "${SNAP:0:8}"
    [ "$status" -eq 0 ]
}

@test "drill catches a consistent forgery: checksums agree, the restored rows do not" {
    run_ok
    # a manifest that lies about a table, with B2SUMS rewritten to match
    stage_ok
    forge_set "$SET" '[s for s in m["sources"] if s["name"] == "app"][0]["tables"]["whitelist"] += 1'
    b2sum_check "$SET"
    restic_ship "$SET"
    run --separate-stderr sc verify --snapshot latest
    [ "$status" -eq 0 ] # every checksum agrees
    drill
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"table whitelist has 123 rows, the manifest says 124"* ]]
    [ "$(pyjson "$REPORT" '[s["status"] for s in j["drill"]["sources"]]')" = '["failed", "ok"]' ]
    [[ "$(pyjson "$REPORT" 'j["drill"]["sources"][0]["error"]')" == *whitelist* ]]
}

@test "drill on a corrupted repository fails and records it" {
    run_ok
    # damage every data pack of the repository
    local p
    for p in $(find "$REPO/data" -type f); do
        chmod u+w "$p"
        flip_byte "$p" 200
    done
    drill
    echo "status $status"
    # restic refuses the damaged data (exit 6); classified as verification
    # (exit 7) once restic's "ciphertext verification failed" is mapped so
    [ "$status" -eq 6 ] || [ "$status" -eq 7 ]
    [ "$(pyjson "$STAGING/state.json" 'j["last_drill"]["status"]')" = failure ]
    refute compgen -G "$STAGING/.drill-*"
}

@test "drill without the identity an encrypted snapshot needs: exit 2, recorded; no snapshot: exit 6" {
    drill
    [ "$status" -eq 6 ]
    [ "$(pyjson "$STAGING/state.json" 'j["last_drill"]["exit_code"]')" = 6 ]
    use_encryption
    run_ok
    drill
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--identity"* ]]
    [ "$(pyjson "$STAGING/state.json" 'j["last_drill"]["exit_code"]')" = 2 ]
}

@test "drill with a MySQL source: loaded into <db>_drill_<id>, counted against the manifest" {
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || skip "mariadbd not installed"
    MY_DIR="$(mktemp -d /tmp/scdrill.XXXXXX)" # short: a socket path has 107 bytes
    "$SC_ROOT/scripts/test-mariadb.sh" start "$MY_DIR"
    my() { mariadb --no-defaults -S "$MY_DIR/sock" -uroot "$@"; }
    my <<'SQL'
CREATE DATABASE tracker;
CREATE TABLE tracker.torrents (id INT PRIMARY KEY, info_hash CHAR(40));
INSERT INTO tracker.torrents VALUES (1, 'a'), (2, 'b'), (3, 'c');
CREATE TABLE tracker.keys_ (id INT PRIMARY KEY);
INSERT INTO tracker.keys_ VALUES (7);
CREATE USER 'sc'@'localhost' IDENTIFIED BY 'drill-Pa55';
GRANT ALL ON *.* TO 'sc'@'localhost';
SQL
    (umask 077 && printf 'drill-Pa55\n' >"$T/my.pass")
    printf '\n[mysql tracker]\nsocket = %s\nuser = sc\npassword_file = my.pass\ndatabase = tracker\n' \
        "$MY_DIR/sock" >>"$CONF"
    use_encryption
    run_ok
    drill --identity "$ID"
    [ "$status" -eq 0 ]
    local short="${SNAP:0:8}" mysql='[s for s in j["drill"]["sources"] if s["kind"] == "mysql"][0]'
    [ "$(pyjson "$REPORT" "$mysql[\"status\"]")" = ok ]
    [ "$(pyjson "$REPORT" "$mysql[\"target\"]")" = "tracker_drill_$short" ]
    [ "$(pyjson "$REPORT" "$mysql[\"rows_total\"]")" = 4 ]
    # loaded by the parallel path, and timed: the recovery time objective
    # (start to the last source back and checked) is recorded and shown
    [ "$(pyjson "$REPORT" "$mysql[\"restore\"][\"method\"]")" = parallel ]
    python3 - "$REPORT" "$STAGING/state.json" <<'PY2'
import json, sys
d = json.load(open(sys.argv[1]))["drill"]
assert 0 < d["fetch_seconds"] <= d["rto_seconds"] <= d["seconds"], d
assert sum(s["seconds"] for s in d["sources"]) <= d["rto_seconds"], d
assert json.load(open(sys.argv[2]))["last_drill"]["rto_seconds"] == d["rto_seconds"]
PY2
    run -0 sc status
    [[ "$output" == *"last drill:   "*", success, recovery time "*" s"* ]]
    run -0 sc --json status
    [ "$(pyjson <(echo "$output") 'j["last_drill"]["status"]')" = success ]
    # the live database is untouched
    [ "$(my -N -e 'SELECT COUNT(*) FROM tracker.torrents')" = 3 ]
    # the scratch database is dropped, or reported as left behind (a kind
    # without a discard step) and then really there
    local left
    left="$(pyjson "$REPORT" "$mysql.get(\"left_behind\", \"\")")"
    if [ -z "$left" ]; then
        [ -z "$(my -N -e "SHOW DATABASES LIKE 'tracker\\_drill\\_%'")" ]
    else
        [ "$left" = "tracker_drill_$short" ]
        [ "$(my -N -e "SELECT COUNT(*) FROM tracker_drill_$short.torrents")" = 3 ]
        [[ "$stderr" == *"left behind"* ]]
    fi
}
