#!/usr/bin/env bats
# Hooks and the maintenance window: stop hook, staging, start hook, and only
# then the upload; the start hook runs even when staging fails.

load helpers

setup() {
    sc_setup
    LOG="$T/events"
    : >"$LOG"
    # A hook that records its name, what it was told, and whether a set is published yet.
    cat >"$T/hook" <<SH
#!/bin/sh
sets=\$(ls "$STAGING/sets" 2>/dev/null | wc -l)
echo "\$1 sets=\$sets status=\$STAGECOACH_STATUS set=\$STAGECOACH_SET snap=\$STAGECOACH_SNAPSHOT code=\$STAGECOACH_EXIT_CODE cmd=\$STAGECOACH_COMMAND" >>"$LOG"
[ -z "\$HOOK_FAILS" ] || [ "\$HOOK_FAILS" != "\$1" ] || exit 7
exit 0
SH
    # restic, wrapped so the log shows when the upload starts.
    cat >"$T/restic-wrap" <<SH
#!/bin/sh
case "\$1" in backup) echo "restic-backup" >>"$LOG" ;; esac
exec restic "\$@"
SH
    chmod +x "$T/hook" "$T/restic-wrap"
    cat >>"$CONF" <<EOF
binary = $T/restic-wrap

[hooks]
before_stage = $T/hook stop
after_stage = $T/hook start
before_ship = $T/hook before_ship
after_ship = $T/hook after_ship
on_success = $T/hook success
on_failure = $T/hook failure
timeout = 20s
EOF
}

teardown() { sc_teardown; }

event() { sed -n "${1}p" "$LOG"; }

@test "the maintenance window: stop, stage, start, and only then the upload" {
    run sc run
    [ "$status" -eq 0 ]
    cat "$LOG"
    [[ "$(event 1)" == "stop sets=0 status=running set= snap= code=0 cmd=run" ]]
    set=$(sc_sets)
    [[ "$(event 2)" == "start sets=1 status=success set=$set "* ]]
    [[ "$(event 3)" == "before_ship sets=1 "* ]]
    [ "$(event 4)" = "restic-backup" ]
    rst snapshots --json >"$T/snaps.json"
    snap=$(pyjson "$T/snaps.json" 'j[0]["id"]')
    [[ "$(event 5)" == "after_ship sets=1 status=success set=$set snap=$snap code=0"* ]]
    [[ "$(event 6)" == "success sets=1 status=success set=$set snap=$snap code=0 cmd=run" ]]
    [ "$(wc -l <"$LOG")" -eq 6 ]
}

@test "staging fails: the start hook still runs, nothing is uploaded, on_failure is told why" {
    rm "$DB"
    run sc run
    [ "$status" -eq 4 ]
    cat "$LOG"
    [[ "$(event 1)" == "stop "* ]]
    [[ "$(event 2)" == "start sets=0 status=failure set= snap= code=4 cmd=run" ]]
    [[ "$(event 3)" == "failure sets=0 status=failure "*"code=4 cmd=run" ]]
    [ "$(wc -l <"$LOG")" -eq 3 ]
    refute grep -q restic-backup "$LOG"
}

@test "a failing before_stage aborts before staging and still runs after_stage" {
    HOOK_FAILS=stop run sc run
    [ "$status" -eq 1 ]
    [[ "$output" == *"hook before_stage failed: exit 7"* ]]
    [ -z "$(sc_sets)" ]
    [[ "$(event 2)" == "start sets=0 status=failure "* ]]
    [[ "$(event 3)" == "failure "* ]]
}

@test "a failing after_stage fails the run before the upload" {
    HOOK_FAILS=start run sc run
    [ "$status" -eq 1 ]
    [[ "$output" == *"hook after_stage failed"* ]]
    refute grep -q restic-backup "$LOG"
}

@test "policy warn: a failing on_success only warns" {
    printf 'on_success_on_error = warn\n' >>"$CONF"
    HOOK_FAILS=success run sc run
    [ "$status" -eq 0 ]
    [[ "$output" == *"WARN hook on_success failed: exit 7 (policy: warn)"* ]]
}

@test "a hung hook is stopped at [hooks] timeout" {
    sed -i "s|^before_stage = .*|before_stage = /bin/sleep 60|; s|^timeout = 20s|timeout = 1s|" "$CONF"
    run sc stage
    [ "$status" -eq 1 ]
    [[ "$output" == *"hook before_stage failed: timed out after 1 s"* ]]
}

@test "a hook's words reach it as an argv: quotes group, nothing is expanded" {
    cat >"$T/args" <<SH
#!/bin/sh
for a in "\$@"; do printf '[%s]' "\$a"; done >"$T/argv"
SH
    chmod +x "$T/args"
    printf '%s\n' "before_stage = $T/args 'two words' \"\$HOME\" ';' \$(id)" >"$T/line"
    sed -i "/^before_stage = /d" "$CONF"
    cat "$T/line" >>"$CONF"
    run sc stage
    [ "$status" -eq 0 ]
    [ "$(cat "$T/argv")" = '[two words][$HOME][;][$(id)]' ]
}

@test "hooks never see secrets in their environment" {
    cat >"$T/envdump" <<SH
#!/bin/sh
env >"$T/hookenv"
SH
    chmod +x "$T/envdump"
    sed -i "s|^before_stage = .*|before_stage = $T/envdump|" "$CONF"
    MYSQL_PASSWORD=hunter2-xyzzy RESTIC_PASSWORD=plugh-xyzzy run sc stage
    [ "$status" -eq 0 ]
    refute grep -q xyzzy "$T/hookenv"
    grep -q '^STAGECOACH_COMMAND=stage$' "$T/hookenv"
}

@test "SIGTERM during the window: partial work removed, the start hook still runs, exit 130" {
    # The stop hook sends SIGTERM to stagecoach itself, as an operator would.
    cat >"$T/stop-and-term" <<SH
#!/bin/sh
echo "stop" >>"$LOG"
kill -TERM \$PPID
SH
    chmod +x "$T/stop-and-term"
    sed -i "s|^before_stage = .*|before_stage = $T/stop-and-term|" "$CONF"
    run sc run
    [ "$status" -eq 130 ]
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
    [ "$(event 1)" = "stop" ]
    [[ "$(event 2)" == "start sets=0 status=failure "*"code=130 cmd=run" ]]
    refute grep -q restic-backup "$LOG"
}

@test "--dry-run lists every hook where it would run, with its policy, and runs none" {
    sed -i "s|^on_success = .*|&\non_success_on_error = fail|" "$CONF"
    run --separate-stderr sc --dry-run run
    echo "$output"
    [ "$status" -eq 0 ]
    [ ! -s "$LOG" ]
    # in the order of a run; the plan lines around them stay
    printf '%s\n' "$output" | grep -E '^  hook |^(stage|ship|at the end)' >"$T/plan"
    cat >"$T/want" <<EOF2
stage into $STAGING/sets/<new id> (keep 3 local sets)
  hook before_stage: $T/hook stop (a failure fails the run)
  hook after_stage: $T/hook start (a failure fails the run)
ship the new set with restic ($T/restic-wrap) to the configured repository
  hook before_ship: $T/hook before_ship (a failure fails the run)
  hook after_ship: $T/hook after_ship (a failure only warns)
at the end
  hook on_success: $T/hook success (a failure fails the run)
  hook on_failure: $T/hook failure (a failure only warns)
EOF2
    diff "$T/want" "$T/plan"
    # stage alone: its own hooks and the final ones, no ship
    run --separate-stderr sc --dry-run stage
    [ "$status" -eq 0 ]
    [[ "$output" == *"hook before_stage"* && "$output" == *"hook on_failure"* ]]
    [[ "$output" != *"before_ship"* ]]
    [ ! -s "$LOG" ]
}
