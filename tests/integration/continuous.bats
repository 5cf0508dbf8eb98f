#!/usr/bin/env bats
# Continuous mode (the POC's BACKUP_MODE=continuous), SIGHUP reload, SIGTERM,
# and the whole run's [run] timeout.

load helpers

setup() {
    sc_setup
    printf '\n[run]\ninterval = 1s\n' >>"$CONF"
}

teardown() { sc_teardown; }

# Wait (at most ~60 s) until N snapshots were shipped (state.json lists them).
wait_shipped() {
    local n=$1 i
    for ((i = 0; i < 600; i++)); do
        if [ -f "$STAGING/state.json" ] &&
            [ "$(pyjson "$STAGING/state.json" 'len(j.get("sets", {}))')" -ge "$n" ]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

@test "run --continuous repeats until SIGTERM, which ends it with 130 and nothing partial" {
    "$SC" -c "$CONF" run --continuous 2>"$T/err" &
    pid=$!
    sc_track $pid
    wait_shipped 2
    kill -TERM $pid
    rc=0
    wait $pid || rc=$?
    [ "$rc" -eq 130 ]
    refute sc_tmp_left
    [ "$(rst snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -ge 2 ]
    for s in $(sc_sets); do sc verify --set "$s"; done
    grep -q "continuous mode" "$T/err"
}

@test "[run] mode = continuous is the same as --continuous; --once overrides it" {
    sed -i 's/^interval = 1s/interval = 1s\nmode = continuous/' "$CONF"
    run timeout 60 "$SC" -c "$CONF" run --once
    [ "$status" -eq 0 ]
    [ "$(sc_sets | wc -l)" -eq 1 ]
}

@test "SIGHUP reloads the configuration between runs; a bad one is refused and the loop goes on" {
    "$SC" -c "$CONF" run --continuous 2>"$T/err" &
    pid=$!
    sc_track $pid
    wait_shipped 1
    # A bad edit first: reported, old config kept.
    cp "$CONF" "$T/good.conf"
    printf 'bogus_key = 1\n' >>"$CONF"
    kill -HUP $pid
    sleep 1.5
    grep -q "configuration not reloaded" "$T/err"
    # Then a good edit: a new tag on the following snapshots.
    sed "s/^tag = .*/tag = reloaded/" "$T/good.conf" >"$CONF"
    kill -HUP $pid
    for ((i = 0; i < 600; i++)); do
        rst snapshots --json --tag reloaded >"$T/s.json"
        [ "$(pyjson "$T/s.json" 'len(j)')" -ge 1 ] && break
        sleep 0.1
    done
    kill -TERM $pid
    wait $pid || true
    [ "$(pyjson "$T/s.json" 'len(j)')" -ge 1 ]
    grep -q "configuration reloaded" "$T/err"
}

@test "[run] timeout stops a hung run with a clear error; the start hook still runs" {
    cat >>"$CONF" <<EOF
timeout = 2s

[hooks]
before_stage = /bin/sleep 60
after_stage = /bin/sh -c 'echo started >"$T/started"'
EOF
    run timeout 60 "$SC" -c "$CONF" run
    [ "$status" -eq 1 ]
    [[ "$output" == *"longer than [run] timeout = 2s"* ]]
    [ -f "$T/started" ]
    [ -z "$(sc_sets)" ]
}
