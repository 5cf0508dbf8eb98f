#!/usr/bin/env bats
# The examples are real: their configurations pass `config check`, and the
# systemd units are accepted by systemd-analyze where it is available.

load helpers

@test "every example configuration passes config check" {
    for f in "$SC_ROOT"/examples/*.conf; do
        run "$SC" -c "$f" config check
        echo "$f: $output"
        [ "$status" -eq 0 ]
    done
}

@test "the example paths file parses as a paths list" {
    run grep -c '^/' "$SC_ROOT/examples/paths.txt"
    [ "$output" -ge 2 ]
}

@test "the systemd units verify" {
    command -v systemd-analyze >/dev/null || skip "no systemd-analyze"
    d="$BATS_TEST_TMPDIR/units"
    mkdir -p "$d"
    sed "s|/usr/local/bin/stagecoach|$SC|" "$SC_ROOT/examples/stagecoach.service" >"$d/stagecoach.service"
    cp "$SC_ROOT/examples/stagecoach.timer" "$d/"
    run systemd-analyze verify "$d/stagecoach.service" "$d/stagecoach.timer"
    echo "$output"
    [ "$status" -eq 0 ]
}
