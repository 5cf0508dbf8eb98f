#!/usr/bin/env bats
# Retention and checks against the real restic on local repositories:
# forget really deletes (and only this host's, this tool's snapshots), only
# after a verified ship; check rotates its data subsets and records them;
# stale locks are removed, live ones waited for.

load helpers
load offsite_helpers

setup_file() {
    template_repo_make
}

setup() {
    sc_setup
    template_repo_use
}

teardown() {
    sc_teardown
}

# `stagecoach run` must succeed; SNAP is the snapshot it printed.
run_ok() {
    sc_expect 0 "$@" run
    SNAP="$(printf '%s\n' "$output" | sed -n 's/^snapshot \([0-9a-f]\{64\}\)$/\1/p')"
    [ -n "$SNAP" ]
}

@test "keep_last = 2: after four runs the two newest snapshots remain, data is pruned, foreign snapshots stay" {
    conf_set retention keep_last 2
    conf_set staging keep 1
    # Not this tool's (no tag stagecoach), and this tool's but without the
    # configured tag: retention must touch neither.
    printf 'foreign\n' >"$T/foreign.txt"
    rst backup --host "$HOSTNAME_CONF" "$T/foreign.txt" >/dev/null
    rst backup --host "$HOSTNAME_CONF" --tag stagecoach "$T/foreign.txt" >/dev/null
    local sets=() snaps=()
    for i in 1 2 3 4; do
        run_ok
        sets+=("$(sc_sets | tail -n 1)")
        snaps+=("$SNAP")
    done
    echo "sets: ${sets[*]}"
    # restic's own view: exactly the two newest runs, plus the two foreign ones
    local f
    f="$(snaps_json --tag "stagecoach,$TAG_CONF")"
    [ "$(pyjson "$f" 'sorted(s["id"] for s in j)')" = \
        "$(python3 -c 'import json,sys; print(json.dumps(sorted(sys.argv[1:])))' "${snaps[2]}" "${snaps[3]}")" ]
    [ "$(snap_sets "$f")" = "[\"${sets[2]}\", \"${sets[3]}\"]" ]
    f="$(snaps_json)"
    [ "$(pyjson "$f" 'len(j)')" = 4 ]
    # the forgotten snapshots are gone from the repository's files (asking
    # restic for them would make it retry for most of a minute), and what
    # prune left is sound
    [ ! -e "$REPO/snapshots/${snaps[0]}" ]
    [ ! -e "$REPO/snapshots/${snaps[1]}" ]
    [ -e "$REPO/snapshots/${snaps[3]}" ]
    rst check >/dev/null
    # state: retention ran, nothing pending, two snapshots counted
    [ "$(pyjson "$STAGING/state.json" 'j["retention"]["last"]["status"]')" = success ]
    [ "$(pyjson "$STAGING/state.json" 'j["retention"]["prune_pending"]')" = false ]
    [ "$(pyjson "$STAGING/state.json" 'j["repository"]["snapshots"]')" = 2 ]
    # local sets: [staging] keep = 1
    [ "$(sc_sets)" = "${sets[3]}" ]
}

@test "run --json reports what retention forgot and kept" {
    conf_set retention keep_last 1
    run_ok
    local first=$SNAP
    sc_expect 0 --json run
    printf '%s' "$output" >"$T/report.json"
    local second
    second="$(pyjson "$T/report.json" 'j["snapshot"]["id"]')"
    [ "$(pyjson "$T/report.json" '[s["id"] for s in j["retention"]["removed"]]')" = "[\"$first\"]" ]
    [ "$(pyjson "$T/report.json" 'j["retention"]["kept"]')" = "[\"$second\"]" ]
    [ "$(pyjson "$T/report.json" 'j["retention"]["policy"]')" = '{"keep_last": 1}' ]
    [ "$(pyjson "$T/report.json" 'j["retention"]["pruned"]')" = true ]
    [ "$(pyjson "$(snaps_json)" '[s["id"] for s in j]')" = "[\"$second\"]" ]
}

@test "two hosts share a repository: each one's retention keeps to its own snapshots" {
    conf_set retention keep_last 1
    cp "$CONF" "$T/a.conf"
    conf_set restic host host-b
    conf_set retention keep_last 2
    conf_set staging dir staging-b
    cp "$CONF" "$T/b.conf"
    local a=() b=()
    CONF="$T/a.conf" run_ok
    a+=("$SNAP")
    # B has no snapshot yet: its forget finds nothing of its own (restic 0.14
    # prints nothing at all then) and leaves A's alone
    CONF="$T/b.conf" sc_expect 0 forget
    [[ "$output" == *"0 snapshots forgotten, 0 kept"* ]]
    [ "$(pyjson "$(snaps_json)" '[s["id"] for s in j]')" = "[\"${a[0]}\"]" ]
    for i in 1 2 3; do
        CONF="$T/b.conf" run_ok
        b+=("$SNAP")
    done
    CONF="$T/a.conf" run_ok
    a+=("$SNAP")
    # host A: only its newest; host B: its two newest, untouched by A's runs
    [ "$(pyjson "$(snaps_json --host "$HOSTNAME_CONF")" '[s["id"] for s in j]')" = "[\"${a[1]}\"]" ]
    [ "$(pyjson "$(snaps_json --host host-b)" 'sorted(s["id"] for s in j)')" = \
        "$(python3 -c 'import json,sys; print(json.dumps(sorted(sys.argv[1:])))' "${b[1]}" "${b[2]}")" ]
    # A's forget command, with an even stricter policy, still leaves B alone
    CONF="$T/a.conf" sc_expect 0 forget
    [ "$(pyjson "$(snaps_json --host host-b)" 'len(j)')" = 2 ]
    [ "$(pyjson "$(snaps_json --host "$HOSTNAME_CONF")" 'len(j)')" = 1 ]
    # each host's forget sent only its own filter to restic
    off_wrap_restic
    cp "$CONF" "$T/b.conf"
    CONF="$T/b.conf" sc_expect 0 forget
    grep -q -- "--tag=stagecoach,$TAG_CONF --host=host-b --group-by=host --keep-last=2" "$CALLS"
}

@test "forget waits for a verified ship: an unverified newest snapshot blocks it, a verified run unblocks it" {
    conf_set retention keep_last 5
    run_ok
    run_ok
    local verified=$SNAP
    # A snapshot that looks like ours but that no stagecoach verified.
    mkdir -p "$T/fake"
    printf 'x\n' >"$T/fake/x"
    rst backup --host "$HOSTNAME_CONF" --tag stagecoach --tag "$TAG_CONF" "$T/fake" >/dev/null
    conf_set retention keep_last 1
    sc_expect 7 forget
    [[ "$stderr" == *"not verified"* ]]
    [ "$(pyjson "$(snaps_json)" 'len(j)')" = 3 ]
    # the preview says what would go, and changes nothing
    sc_expect 0 --dry-run forget
    [[ "$output" == *"would forget snapshot $verified"* ]]
    [ "$(pyjson "$(snaps_json)" 'len(j)')" = 3 ]
    # a verified run is the newest again: retention goes ahead
    run_ok
    [ "$(pyjson "$(snaps_json)" '[s["id"] for s in j]')" = "[\"$SNAP\"]" ]
}

@test "a ship that fails forgets nothing" {
    conf_set retention keep_last 1
    run_ok
    local kept=$SNAP
    off_wrap_restic
    # the wrapper fails every backup, as a broken upload would
    sed -i 's|^exec restic "\$@"$|case " $* " in *" backup "*) echo "Fatal: unable to save snapshot: disk quota exceeded" >\&2; exit 1;; esac\nexec restic "$@"|' "$T/restic-wrap"
    sc_expect 6 run
    [[ "$stderr" == *"disk quota exceeded"* ]]
    [ "$(calls_with forget)" = 0 ]
    [ "$(calls_with check)" = 0 ]
    [ "$(pyjson "$(snaps_json)" '[s["id"] for s in j]')" = "[\"$kept\"]" ]
    # the set is kept, unshipped
    [ "$(sc_sets | wc -l)" = 2 ]
    [ "$(pyjson "$STAGING/state.json" 'j["sets"].get(a[0])' "$(sc_sets | tail -n 1)")" = null ]
}

@test "check: k/n rotates through every subset, kept in state.json; run checks only when due" {
    conf_set check every 7d
    conf_set check read_data_subset 2/3
    off_wrap_restic
    run_ok
    [ "$(calls_with --read-data-subset=2/3)" = 1 ]
    [ "$(pyjson "$STAGING/state.json" 'j["check"]["last"]["subset"]')" = 2/3 ]
    [ "$(pyjson "$STAGING/state.json" 'j["check"]["rotation"]')" = '{"n": 3, "next": 3}' ]
    local checked
    checked="$(pyjson "$STAGING/state.json" 'j["check"]["last_success"]')"
    # not due again for 7 days: the next run does not check
    sc_expect 0 --json run
    printf '%s' "$output" >"$T/report.json"
    [ "$(pyjson "$T/report.json" 'j["check"]["status"]')" = skipped ]
    [ "$(grep -c '^argv:.* check' "$CALLS")" = 1 ]
    # the check command checks now, each time the next subset
    local want
    for want in 3/3 1/3 2/3; do
        sc_expect 0 check
        [[ "$output" == *"data subset $want"* ]]
        [ "$(calls_with "--read-data-subset=$want")" -ge 1 ]
    done
    [ "$(calls_with --read-data-subset=2/3)" = 2 ]
    [ "$(pyjson "$STAGING/state.json" 'j["check"]["rotation"]["next"]')" = 3 ]
    # status: last check and next due = last success + 7 days
    sc_expect 0 --json status
    printf '%s' "$output" >"$T/status.json"
    checked="$(pyjson "$STAGING/state.json" 'j["check"]["last_success"]')"
    want="$(python3 -c 'import sys,datetime as d; t=d.datetime.strptime(sys.argv[1],"%Y-%m-%dT%H:%M:%SZ")+d.timedelta(days=7); print(t.strftime("%Y-%m-%dT%H:%M:%SZ"))' "$checked")"
    [ "$(pyjson "$T/status.json" 'j["next_check_due"]')" = "$want" ]
    [ "$(pyjson "$T/status.json" 'j["last_check"]["subset"]')" = 2/3 ]
}

@test "check finds damage: exit 6, recorded as failed, the subset not advanced, due again" {
    conf_set check read_data_subset 1/1
    conf_set check every 30d
    run_ok
    # flip a byte in the middle of every data pack
    local pack
    for pack in $(find "$REPO/data" -type f); do
        chmod u+w "$pack"
        flip_byte "$pack"
    done
    sc_expect 6 check
    [[ "$stderr" == *"found errors in the repository"* ]]
    [ "$(pyjson "$STAGING/state.json" 'j["check"]["last"]["status"]')" = failure ]
    [ "$(pyjson "$STAGING/state.json" 'j["check"]["last"]["damaged"]')" = true ]
    [ "$(pyjson "$STAGING/state.json" 'j["check"]["rotation"]["next"]')" = 1 ]
    sc_expect 0 --json status
    printf '%s' "$output" >"$T/status.json"
    [ "$(pyjson "$T/status.json" 'j["next_check_due"]')" = now ]
    [ "$(pyjson "$T/status.json" 'j["last_check"]["status"]')" = failure ]
}

# The repository's locks all belong to restic process PID, and there is one
# at least. (By pid, not by file name: a restic may rewrite its lock under a
# new name while it runs.)
locks_only_of() {
    local pid=$1 id n=0
    for id in $(rst list locks --no-lock); do
        rst --no-lock cat lock "$id" >"$T/lock.json"
        [ "$(pyjson "$T/lock.json" 'j["pid"]')" = "$pid" ]
        n=$((n + 1))
    done
    echo "$n lock(s) of pid $pid"
    [ "$n" -ge 1 ]
}

@test "locks: a live restic's lock is waited for and left alone; a killed restic's stale lock is removed" {
    conf_set restic timeout 5s
    # A restic that holds a (non-exclusive) lock while it waits for stdin:
    # a FIFO this shell keeps open, so that no other process is needed.
    mkfifo "$T/stdin.fifo"
    exec 8<>"$T/stdin.fifo"
    RESTIC_REPOSITORY="$REPO" RESTIC_PASSWORD_FILE="$PASS" restic --no-cache backup --stdin \
        <&8 >/dev/null 2>&1 &
    local holder=$!
    sc_track "$holder"
    local i
    for ((i = 0; i < 200; i++)); do
        [ -n "$(ls -A "$REPO/locks")" ] && break
        sleep 0.05
    done
    locks_only_of "$holder"
    # check needs an exclusive lock: it waits, within the timeout, then fails
    sc_expect 6 check
    [[ "$stderr" == *"locked"* ]]
    locks_only_of "$holder"
    kill -0 "$holder"
    # the holder dies without cleaning up (SIGKILL): its lock is stale now
    kill -KILL "$holder"
    wait "$holder" 2>/dev/null || true
    exec 8>&-
    locks_only_of "$holder"
    sc_expect 0 check
    [[ "$stderr" == *"removing stale locks"* ]]
    [ -z "$(ls -A "$REPO/locks")" ]
    [ "$(pyjson "$STAGING/state.json" 'j["check"]["last"]["status"]')" = success ]
}
