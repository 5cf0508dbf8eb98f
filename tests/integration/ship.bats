#!/usr/bin/env bats
# ship / run: the real restic 0.14+ against a local repository. Every
# assertion reads the repository back with restic itself.

load helpers

setup_file() {
    template_repo_make
}

setup() {
    sc_setup
}

teardown() {
    sc_teardown
}

# Run `stagecoach run`; SNAP is the snapshot id it printed, SET the set's dir.
run_ok() {
    run --separate-stderr sc "$@" run
    if [ "$status" -ne 0 ]; then
        echo "run failed ($status): $stderr" >&2
        return 1
    fi
    SNAP="$(printf '%s\n' "$output" | sed -n 's/^snapshot \([0-9a-f]\{64\}\)$/\1/p')"
    [ -n "$SNAP" ] || { echo "no snapshot id in: $output" >&2; return 1; }
    SET="$STAGING/sets/$(sc_sets | tail -n 1)"
}

@test "run: init = yes creates the repository and ships a tagged, verified snapshot" {
    [ ! -e "$REPO" ]
    # An operator's shell may carry other restic settings: stagecoach must use
    # its own configuration, not these.
    export RESTIC_REPOSITORY="$T/some-other-repo" RESTIC_PASSWORD=wrong
    run_ok
    unset RESTIC_REPOSITORY RESTIC_PASSWORD
    [ -f "$REPO/config" ]
    [ ! -e "$T/some-other-repo" ]

    # the snapshot, as restic lists it
    rst snapshots --json >"$T/snaps.json"
    [ "$(pyjson "$T/snaps.json" 'len(j)')" = 1 ]
    [ "$(pyjson "$T/snaps.json" 'j[0]["id"]')" = "$SNAP" ]
    local id="${SET##*/}"
    [ "$(pyjson "$T/snaps.json" 'sorted(j[0]["tags"])')" = \
        "$(python3 -c 'import json,sys; print(json.dumps(sorted(sys.argv[1:])))' stagecoach "$TAG_CONF" "set-$id")" ]
    [ "$(pyjson "$T/snaps.json" 'j[0]["hostname"]')" = "$HOSTNAME_CONF" ]
    [ "$(pyjson "$T/snaps.json" 'j[0]["paths"]')" = "[\"$SET\"]" ]

    # every file of the manifest is in the snapshot with the manifest's size
    rst ls --json "$SNAP" >"$T/ls.jsonl"
    python3 - "$SET" "$T/ls.jsonl" <<'PY'
import json, sys
setdir, lsfile = sys.argv[1], sys.argv[2]
nodes = {}
for line in open(lsfile):
    line = line.strip()
    if not line:
        continue
    n = json.loads(line)
    if n.get("type") == "file":
        nodes[n["path"]] = n["size"]
m = json.load(open(setdir + "/MANIFEST.json"))
assert len(m["files"]) >= 2, m["files"]
for f in m["files"]:
    p = setdir + "/" + f["path"]
    assert p in nodes, "missing from snapshot: " + p
    assert nodes[p] == f["bytes"], (p, nodes[p], f["bytes"])
import os
for name in ("MANIFEST.json", "B2SUMS"):
    p = setdir + "/" + name
    assert nodes.get(p) == os.path.getsize(p), p
PY
    # B2SUMS read back from the repository equals the local one, byte for byte
    rst dump "$SNAP" "$SET/B2SUMS" >"$T/B2SUMS.remote"
    cmp "$SET/B2SUMS" "$T/B2SUMS.remote"
    rst dump "$SNAP" "$SET/sqlite/app.db" | cmp - "$SET/sqlite/app.db"

    # state.json records the set's snapshot, and the run
    [ "$(pyjson "$STAGING/state.json" 'j["sets"][a[0]]["snapshot"]' "$id")" = "$SNAP" ]
    [ "$(pyjson "$STAGING/state.json" 'j["last_run"]["status"]')" = success ]
    [ "$(stat -c %a "$STAGING/state.json")" = 600 ]

    # stagecoach snapshots lists it with its tags
    run --separate-stderr sc snapshots
    [ "$status" -eq 0 ]
    echo "$output"
    [[ "$output" == *"${SNAP:0:8}"* ]]
    [[ "$output" == *"set-$id"* ]]
    [[ "$output" == *"$HOSTNAME_CONF"* ]]

    # and verify --snapshot reads it back and re-checks every file
    run --separate-stderr sc verify --snapshot latest
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$output" == *"${SNAP:0:8}"* ]]
    # it cleaned its scratch space
    refute compgen -G "$STAGING/.verify-*"
}

@test "run --json: one JSON object on stdout with status success and the snapshot id" {
    template_repo_use
    run --separate-stderr sc --json run
    echo "$stderr"
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/report.json"
    # exactly one JSON document, nothing else on stdout
    python3 -c 'import json,sys; d=json.JSONDecoder(); s=open(sys.argv[1]).read().strip(); o,i=d.raw_decode(s); assert i==len(s), "trailing text"; assert isinstance(o, dict)' "$T/report.json"
    [ "$(pyjson "$T/report.json" 'j["status"]')" = success ]
    [ "$(pyjson "$T/report.json" 'j["exit_code"]')" = 0 ]
    [ "$(pyjson "$T/report.json" 'j["command"]')" = run ]
    local snap
    snap="$(pyjson "$T/report.json" 'j["snapshot"]["id"]')"
    [[ "$snap" =~ ^[0-9a-f]{64}$ ]]
    [ "$(pyjson "$T/report.json" 'j["snapshot"]["verified"]')" = true ]
    [ "$(pyjson "$T/report.json" 'j["set"]')" = "$(sc_sets | tail -n 1)" ]
    rst snapshots --json >"$T/snaps.json"
    [ "$(pyjson "$T/snaps.json" '[s["id"] for s in j]')" = "[\"$snap\"]" ]
}

@test "the reports of run and check name the restic that ran: its version and its path" {
    template_repo_use
    local version path
    version="$(restic version | sed -n 's/^restic \([0-9]*\.[0-9]*\.[0-9]*\) .*/\1/p')"
    [ -n "$version" ]
    # [restic] binary when the config sets it (make integration-restic018),
    # else the restic found on PATH
    path="$(sed -n 's/^binary = //p' "$CONF")"
    [ -n "$path" ] || path="$(command -v restic)"
    run -0 --separate-stderr sc --json run
    printf '%s' "$output" >"$T/run.json"
    [ "$(pyjson "$T/run.json" 'j["restic"]')" = "{\"version\": \"$version\", \"path\": \"$path\"}" ]
    run -0 --separate-stderr sc --json check
    printf '%s' "$output" >"$T/check.json"
    [ "$(pyjson "$T/check.json" 'j["restic"]["version"]')" = "$version" ]
    [ "$(pyjson "$T/check.json" 'j["restic"]["path"]')" = "$path" ]
    # and the log of a run names the version
    run -0 --separate-stderr sc run
    [[ "$stderr" == *"INFO shipping set "*" with restic $version"* ]]
}

@test "run --json on failure: one JSON object with status failure and the exit code" {
    template_repo_use
    sed -i "s|^repository = .*|repository = $T/nothing-here|; s|^init = yes|init = no|" "$CONF"
    run --separate-stderr sc --json run
    [ "$status" -eq 6 ]
    printf '%s' "$output" >"$T/report.json"
    [ "$(pyjson "$T/report.json" 'j["status"]')" = failure ]
    [ "$(pyjson "$T/report.json" 'j["exit_code"]')" = 6 ]
    [ -n "$(pyjson "$T/report.json" 'j["error"]')" ]
}

@test "--dry-run run touches nothing: no staging dir, no repository" {
    run --separate-stderr sc --dry-run run
    echo "$output"
    [ "$status" -eq 0 ]
    [ ! -e "$STAGING" ]
    [ ! -e "$REPO" ]
    [[ "$output" == *"app"* ]]
    # nothing else appeared next to the config either
    [ "$(cd "$T" && ls -A | grep -vx cache | LC_ALL=C sort | tr '\n' ' ')" = "db etc restic.pass stagecoach.conf " ]
}

@test "keep = 2: three runs leave the two newest local sets, three snapshots" {
    template_repo_use
    sed -i 's/^keep = .*/keep = 2/' "$CONF"
    local all=()
    run_ok
    all+=("${SET##*/}")
    run_ok
    all+=("${SET##*/}")
    run_ok
    all+=("${SET##*/}")
    echo "sets made: ${all[*]}; left: $(sc_sets | tr '\n' ' ')"
    [ "$(sc_sets | wc -l)" -eq 2 ]
    [ "$(sc_sets | tr '\n' ' ')" = "${all[1]} ${all[2]} " ]
    rst snapshots --json >"$T/snaps.json"
    [ "$(pyjson "$T/snaps.json" 'len(j)')" = 3 ]
    # every set made, the pruned one included, is in the repository
    local id
    for id in "${all[@]}"; do
        [ "$(pyjson "$T/snaps.json" 'len([s for s in j if "set-" + a[0] in s["tags"]])' "$id")" = 1 ]
    done
}

@test "stage then ship: ship backs up the latest set, and status shows it" {
    template_repo_use
    run --separate-stderr sc stage
    [ "$status" -eq 0 ]
    local setdir id
    setdir="$(last_line)"
    id="${setdir##*/}"
    run --separate-stderr sc status
    [ "$status" -eq 0 ]
    [[ "$output" == *"$id"*"(not shipped)"* ]]

    run --separate-stderr sc ship --set "$id"
    echo "$stderr"
    [ "$status" -eq 0 ]
    local snap
    snap="$(printf '%s\n' "$output" | sed -n 's/^snapshot \([0-9a-f]\{64\}\)$/\1/p')"
    [ -n "$snap" ]
    rst snapshots --json >"$T/snaps.json"
    [ "$(pyjson "$T/snaps.json" '[s["id"] for s in j if "set-" + a[0] in s["tags"]]' "$id")" = "[\"$snap\"]" ]
    run --separate-stderr sc status
    [[ "$output" == *"$id  $snap"* ]]
}

@test "a wrong password file (the repository exists): exit 6 with one clear line" {
    template_repo_use
    printf 'not-the-password\n' >"$T/wrong.pass"
    chmod 600 "$T/wrong.pass"
    sed -i 's|^password_file = .*|password_file = wrong.pass|' "$CONF"
    # the operator's own restic variables point to the right password: they must not be used
    export RESTIC_PASSWORD_FILE="$PASS" RESTIC_REPOSITORY="$REPO"
    run --separate-stderr sc -q run
    unset RESTIC_PASSWORD_FILE RESTIC_REPOSITORY
    echo "stdout: $output"
    echo "stderr: $stderr"
    [ "$status" -eq 6 ]
    # -q: only the failure, on one line, that says what is wrong
    [ "$(printf '%s\n' "$stderr" | grep -c .)" -eq 1 ]
    [[ "$stderr" =~ ^\[[0-9-]{10}\ [0-9:]{8}\]\ ERROR\  ]]
    [[ "${stderr,,}" == *password* ]]
    [[ "$stderr" != *not-the-password* ]]
    # nothing was shipped: the staged set stays, unshipped
    [ "$(sc_sets | wc -l)" -eq 1 ]
    [ "$(pyjson "$STAGING/state.json" 'j["sets"].get(a[0])' "$(sc_sets)")" = null ]
    [ "$(pyjson "$STAGING/state.json" 'j["last_run"]["exit_code"]')" = 6 ]
    [ "$(rst snapshots --json)" = "[]" ]
}

@test "a repository that does not exist with init = no: exit 6, nothing created" {
    sed -i 's/^init = yes/init = no/' "$CONF"
    run --separate-stderr sc run
    echo "$stderr"
    [ "$status" -eq 6 ]
    [ ! -e "$REPO" ]
    [[ "$stderr" == *"] ERROR "* ]]
    [ "$(printf '%s\n' "$stderr" | grep -c '] ERROR ')" -eq 1 ]
}

@test "restic missing (binary = /nonexistent/restic): exit 6" {
    sed -i -e '/^binary = /d' -e 's|^init = yes|init = yes\nbinary = /nonexistent/restic|' "$CONF"
    grep -qx 'binary = /nonexistent/restic' "$CONF"
    run --separate-stderr sc run
    echo "$stderr"
    [ "$status" -eq 6 ]
    [[ "$stderr" == *"/nonexistent/restic"* ]]
    [ ! -e "$REPO" ]
    run --separate-stderr sc snapshots
    [ "$status" -eq 6 ]
}

@test "a password file readable by others is refused, and nothing is shipped" {
    template_repo_use
    chmod 644 "$PASS"
    run --separate-stderr sc run
    echo "$stderr"
    # docs/configuration.md: the password file must not be readable by group or others
    [ "$status" -eq 3 ] || [ "$status" -eq 6 ]
    [[ "$stderr" == *"$PASS"* ]]
    chmod 600 "$PASS"
    [ "$(rst snapshots --json)" = "[]" ]
}
