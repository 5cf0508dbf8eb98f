#!/usr/bin/env bats
# The ready-made hook programs in restic-hooks/, run for real with stand-ins
# for docker, systemctl and curl on PATH (no Docker engine or systemd runs on
# these machines; the stand-ins record how they were called).

setup() {
    HOOKS="$BATS_TEST_DIRNAME/../../restic-hooks"
    BIN="$BATS_TEST_TMPDIR/bin"
    CALLS="$BATS_TEST_TMPDIR/calls"
    mkdir -p "$BIN"
    : > "$CALLS"
    for tool in docker systemctl curl; do
        cat > "$BIN/$tool" <<STUB
#!/bin/sh
printf '%s' "$tool" >> "$CALLS"
for a in "\$@"; do printf ' [%s]' "\$a" >> "$CALLS"; done
printf '\n' >> "$CALLS"
case "$tool" in curl) sed 's/^/  stdin: /' >> "$CALLS" ;; esac
exit \${STUB_EXIT:-0}
STUB
        chmod +x "$BIN/$tool"
    done
    export PATH="$BIN:$PATH"
}

@test "every hook program answers --help and is shellcheck-clean" {
    for h in compose-service systemd-unit healthchecks-ping notify; do
        run "$HOOKS/$h" --help
        [ "$status" -eq 0 ]
        [[ "$output" == usage:* ]]
    done
    if command -v shellcheck >/dev/null; then
        shellcheck -s sh "$HOOKS"/*
    fi
}

@test "compose-service stop and start call docker compose with the service" {
    COMPOSE_STOP_TIMEOUT=12 run "$HOOKS/compose-service" stop tracker
    [ "$status" -eq 0 ]
    run "$HOOKS/compose-service" start tracker
    [ "$status" -eq 0 ]
    [ "$(sed -n 1p "$CALLS")" = "docker [compose] [stop] [--timeout] [12] [tracker]" ]
    [ "$(sed -n 2p "$CALLS")" = "docker [compose] [start] [tracker]" ]
}

@test "compose-service: a failing docker fails the hook; bad usage is exit 2" {
    STUB_EXIT=1 run "$HOOKS/compose-service" stop tracker
    [ "$status" -eq 1 ]
    run "$HOOKS/compose-service" restart tracker
    [ "$status" -eq 2 ]
    run "$HOOKS/compose-service" stop
    [ "$status" -eq 2 ]
}

@test "systemd-unit start checks the unit is active" {
    run "$HOOKS/systemd-unit" start "torrust tracker.service"
    [ "$status" -eq 0 ]
    [ "$(sed -n 1p "$CALLS")" = "systemctl [start] [--] [torrust tracker.service]" ]
    [ "$(sed -n 2p "$CALLS")" = "systemctl [is-active] [--quiet] [--] [torrust tracker.service]" ]
    STUB_EXIT=3 run "$HOOKS/systemd-unit" stop x.service
    [ "$status" -eq 3 ]
}

@test "healthchecks-ping: the URL reaches curl on stdin, never argv" {
    printf 'https://hc.example/ping/0123-secret-uuid\n' > "$BATS_TEST_TMPDIR/url"
    HEALTHCHECKS_URL_FILE="$BATS_TEST_TMPDIR/url" STAGECOACH_ERROR="disk full" \
        run "$HOOKS/healthchecks-ping" fail
    [ "$status" -eq 0 ]
    grep -q 'stdin: url = "https://hc.example/ping/0123-secret-uuid/fail"' "$CALLS"
    grep -q '\[--max-time\] \[10\]' "$CALLS"
    grep -q '\[--data-raw\] \[disk full\]' "$CALLS"
    [ -z "$(grep '^curl' "$CALLS" | grep secret-uuid)" ]
    HEALTHCHECKS_URL=https://hc.example/ping/x run "$HOOKS/healthchecks-ping" start
    grep -q 'stdin: url = "https://hc.example/ping/x/start"' "$CALLS"
    run env -u HEALTHCHECKS_URL "$HOOKS/healthchecks-ping" success
    [ "$status" -eq 2 ]
}

@test "notify builds its message from the run and posts json when asked" {
    NOTIFY_URL=https://hooks.example/T1 NOTIFY_FORMAT=json STAGECOACH_STATUS=failure \
        STAGECOACH_COMMAND=run STAGECOACH_ERROR='restic said "no"' run "$HOOKS/notify"
    [ "$status" -eq 0 ]
    grep -q 'stdin: url = "https://hooks.example/T1"' "$CALLS"
    grep -q 'failure: restic said \\"no\\"' "$CALLS"
    grep -q 'Content-Type: application/json' "$CALLS"
}
