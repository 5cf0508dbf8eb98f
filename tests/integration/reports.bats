#!/usr/bin/env bats
# Reports: the --json report of each command (docs/reports.md), status,
# and the Prometheus textfile ([run] metrics_file), against the real
# restic on a local repository. Every value is compared with what the
# state, the set or restic itself says.

load helpers
load offsite_helpers

setup_file() {
    template_repo_make
}

setup() {
    sc_setup
    template_repo_use
    conf_set run metrics_file metrics.prom
}

teardown() {
    sc_teardown
}

# Epoch seconds of an ISO time "2026-11-27T08:02:24Z".
epoch() {
    python3 -c 'import sys,calendar,time; print(calendar.timegm(time.strptime(sys.argv[1],"%Y-%m-%dT%H:%M:%SZ")))' "$1"
}

@test "metrics after a successful run: every gauge agrees with state.json, the set and restic" {
    conf_set check read_data_subset 1/4
    sc_expect 0 run
    local set="$STAGING/sets/$(sc_sets)"
    [ -f "$T/metrics.prom" ]
    cat "$T/metrics.prom"
    [ "$(stat -c %a "$T/metrics.prom")" = 644 ]
    # written atomically: no temporary file left beside it
    [ "$(ls -A "$T" | grep -c 'metrics')" = 1 ]
    [ "$(metric stagecoach_last_run_success)" = 1 ]
    [ "$(metric stagecoach_last_run_exit_code)" = 0 ]
    [ "$(metric stagecoach_last_success_timestamp_seconds)" = \
        "$(epoch "$(pyjson "$STAGING/state.json" 'j["last_success"]')")" ]
    [ "$(metric stagecoach_last_run_timestamp_seconds)" = \
        "$(epoch "$(pyjson "$STAGING/state.json" 'j["last_run"]["finished"]')")" ]
    python3 -c 'import sys; assert float(sys.argv[1]) > 0' "$(metric stagecoach_last_run_duration_seconds)"
    # bytes staged: the manifest's, in total and per source
    [ "$(metric stagecoach_last_run_staged_bytes)" = \
        "$(pyjson "$set/MANIFEST.json" 'sum(f["bytes"] for f in j["files"])')" ]
    [ "$(metric stagecoach_source_staged_bytes '{source="app"}')" = \
        "$(pyjson "$set/MANIFEST.json" 'sum(f["bytes"] for f in j["files"] if f["source"] == "app")')" ]
    [ "$(metric stagecoach_source_staged_bytes '{source="etc"}')" = \
        "$(pyjson "$set/MANIFEST.json" 'sum(f["bytes"] for f in j["files"] if f["source"] == "etc")')" ]
    [ "$(metric stagecoach_source_rows '{source="app"}')" = \
        "$(pyjson "$set/MANIFEST.json" '[s["rows_total"] for s in j["sources"] if s["name"] == "app"][0]')" ]
    [ "$(metric stagecoach_source_files '{source="etc"}')" = 1 ]
    # bytes added: what restic said it added for the snapshot
    python3 -c 'import sys; assert int(sys.argv[1]) > 0' "$(metric stagecoach_last_run_added_bytes)"
    [ "$(metric stagecoach_last_run_shipped_sets)" = 1 ]
    # snapshots: as restic counts them
    [ "$(metric stagecoach_snapshots)" = "$(pyjson "$(snaps_json)" 'len(j)')" ]
    [ "$(metric stagecoach_local_sets)" = 1 ]
    [ "$(metric stagecoach_unshipped_sets)" = 0 ]
    # the first run checked the repository
    [ "$(metric stagecoach_last_check_success)" = 1 ]
    [ "$(metric stagecoach_next_check_timestamp_seconds)" = \
        "$(($(epoch "$(pyjson "$STAGING/state.json" 'j["check"]["last_success"]')") + 7 * 86400))" ]
    [ "$(metric stagecoach_info "{version=\"$("$SC" --version | cut -d' ' -f2)\",host=\"$HOSTNAME_CONF\"}")" = 1 ]
    # every metric written is documented
    local name
    for name in $(grep -v '^#' "$T/metrics.prom" | sed 's/[{ ].*//' | sort -u); do
        grep -qE "\`$name(\{[^}]*\})?\`" "$SC_ROOT/docs/reports.md" ||
            { echo "undocumented: $name" >&2; return 1; }
    done
}

@test "a failing run sets last_run_success 0 and leaves last_success_timestamp where it was" {
    sc_expect 0 run
    local ok_ts
    ok_ts="$(metric stagecoach_last_success_timestamp_seconds)"
    [ "$(metric stagecoach_last_run_success)" = 1 ]
    # a source that fails: exit 4 while staging
    mv "$DB" "$DB.away"
    sc_expect 4 --json run
    printf '%s' "$output" >"$T/report.json"
    [ "$(pyjson "$T/report.json" 'j["status"]')" = failure ]
    [ "$(metric stagecoach_last_run_success)" = 0 ]
    [ "$(metric stagecoach_last_run_exit_code)" = 4 ]
    [ "$(metric stagecoach_last_success_timestamp_seconds)" = "$ok_ts" ]
    [ "$(pyjson "$STAGING/state.json" 'j["last_run"]["status"]')" = failure ]
    # a repository that fails: exit 6 while shipping; the set waits, counted
    mv "$DB.away" "$DB"
    printf 'wrong\n' >"$T/wrong.pass"
    chmod 600 "$T/wrong.pass"
    conf_set restic password_file wrong.pass
    sc_expect 6 run
    [ "$(metric stagecoach_last_run_success)" = 0 ]
    [ "$(metric stagecoach_last_run_exit_code)" = 6 ]
    [ "$(metric stagecoach_last_success_timestamp_seconds)" = "$ok_ts" ]
    [ "$(metric stagecoach_unshipped_sets)" = 1 ]
    [ "$(metric stagecoach_last_run_shipped_sets)" = 0 ]
    [ "$(metric stagecoach_last_run_added_bytes)" = 0 ]
    # a check that fails is a failure too, in the check gauge
    conf_set restic password_file restic.pass
    for pack in $(find "$REPO/data" -type f); do
        chmod u+w "$pack"
        flip_byte "$pack"
    done
    conf_set check read_data_subset 100%
    sc_expect 6 check
    [ "$(metric stagecoach_last_check_success)" = 0 ]
    [ "$(metric stagecoach_next_check_timestamp_seconds)" = 0 ]
    [ "$(metric stagecoach_last_success_timestamp_seconds)" = "$ok_ts" ]
}

# One JSON document on stdout, nothing else; the envelope's fields.
check_envelope() {
    local file=$1 command=$2 status=$3 code=$4
    python3 - "$file" "$command" "$status" "$code" <<'PY'
import json, sys
path, command, status, code = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
text = open(path).read().strip()
doc, end = json.JSONDecoder().raw_decode(text)
assert end == len(text), "text after the report"
assert doc["schema"] == "stagecoach-report/1", doc["schema"]
assert doc["command"] == command, doc["command"]
assert doc["status"] == status, doc["status"]
assert doc["exit_code"] == code, doc["exit_code"]
assert isinstance(doc["error_kind"], str)
assert (doc["error"] is None) == (code == 0), doc["error"]
assert doc["tool"].startswith("stagecoach ")
assert isinstance(doc["started"], str) and doc["started"].endswith("Z")
assert isinstance(doc["duration_s"], (int, float)) and doc["duration_s"] >= 0
PY
}

@test "--json: one report per command, with the documented envelope and the command's own keys" {
    conf_set retention keep_last 3
    sc_expect 0 --json run
    printf '%s' "$output" >"$T/run.json"
    check_envelope "$T/run.json" run success 0
    local snap
    snap="$(pyjson "$T/run.json" 'j["snapshot"]["id"]')"
    [ "$(pyjson "$T/run.json" '[s["snapshot"]["id"] for s in j["shipped"]]')" = "[\"$snap\"]" ]
    [ "$(pyjson "$T/run.json" 'j["stats"]["staged_bytes"] > 0')" = true ]
    [ "$(pyjson "$T/run.json" 'j["retention"]["kept"]')" = "[\"$snap\"]" ]
    [ "$(pyjson "$T/run.json" 'j["check"]["status"]')" = success ]

    sc_expect 0 --json check
    printf '%s' "$output" >"$T/check.json"
    check_envelope "$T/check.json" check success 0
    [ "$(pyjson "$T/check.json" 'j["check"]["status"]')" = success ]
    [ "$(pyjson "$T/check.json" 'j["check"]["subset"]')" = null ]

    sc_expect 0 --json forget
    printf '%s' "$output" >"$T/forget.json"
    check_envelope "$T/forget.json" forget success 0
    [ "$(pyjson "$T/forget.json" 'j["retention"]["removed"]')" = "[]" ]

    sc_expect 0 --json status
    printf '%s' "$output" >"$T/status.json"
    check_envelope "$T/status.json" status success 0
    [ "$(pyjson "$T/status.json" 'j["last_check"]["status"]')" = success ]
    [ "$(pyjson "$T/status.json" 'j["repository"]["snapshots"]')" = 1 ]

    sc_expect 0 --json snapshots
    printf '%s' "$output" >"$T/snapshots.json"
    check_envelope "$T/snapshots.json" snapshots success 0
    [ "$(pyjson "$T/snapshots.json" '[s["id"] for s in j["snapshots"]]')" = "[\"$snap\"]" ]

    # a command that fails still prints exactly one report
    printf 'wrong\n' >"$T/wrong.pass"
    chmod 600 "$T/wrong.pass"
    conf_set restic password_file wrong.pass
    sc_expect 6 --json check
    printf '%s' "$output" >"$T/fail.json"
    check_envelope "$T/fail.json" check failure 6
    [ "$(pyjson "$T/fail.json" 'j["error_kind"]')" = restic ]
    [[ "$(pyjson "$T/fail.json" 'j["error"]')" == *password* ]]
}

@test "status shows the last run, the last check and when the next check is due" {
    conf_set check every 2d
    sc_expect 0 status
    [[ "$output" == *"last run:  never"* ]]
    [[ "$output" == *"last check:   never"* ]]
    [[ "$output" == *"next check:   due (at the next run)"* ]]
    sc_expect 0 run
    sc_expect 0 status
    echo "$output"
    local finished checked due
    finished="$(pyjson "$STAGING/state.json" 'j["last_run"]["finished"]')"
    checked="$(pyjson "$STAGING/state.json" 'j["check"]["last_success"]')"
    due="$(python3 -c 'import sys,datetime as d; t=d.datetime.strptime(sys.argv[1],"%Y-%m-%dT%H:%M:%SZ")+d.timedelta(days=2); print(t.strftime("%Y-%m-%dT%H:%M:%SZ"))' "$checked")"
    [[ "$output" == *"last run:  run at $finished, success"* ]]
    [[ "$output" == *"last check:   $checked, success"* ]]
    [[ "$output" == *"next check:   $due"* ]]
    [[ "$output" == *"snapshots:    1 of this host"* ]]
}
