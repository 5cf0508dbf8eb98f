#!/usr/bin/env bats
# Crash safety (design §2, "all or nothing"): `stagecoach run` is SIGKILLed
# at many moments of staging and shipping. After every kill: nothing
# half-built is listed (sets/, status), every local set verifies, the next
# run succeeds, leaves no .tmp-* and ships the newest set, and every
# snapshot in the repository is of a published set (never a .tmp-*). At the
# end every snapshot the repository holds is restored and re-hashed
# (`verify --snapshot`), every local set verifies again, and the repository
# passes `restic check --read-data`.
#
# The kills come from tests/helpers/crashkill.c: it starts the run in a
# process group of its own, waits for a moment (the run started, a .tmp-*
# set appeared, a set was published, restic started a given subcommand),
# waits a delay, and SIGKILLs either stagecoach alone (its restic lives on
# as an orphan, as after an OOM kill) or the whole group (stagecoach and
# restic together, as a power cut would: restic leaves a stale lock).

load helpers

setup() {
    sc_setup
    CRASHKILL="$(sc_helper crashkill)"
    # Big enough that staging (online backup + integrity_check + hashing)
    # lasts a while, so that kills land inside it.
    sqlite3 "$DB" >/dev/null <<'SQL'
CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL, tag TEXT NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
INSERT INTO blobs (body, tag) SELECT randomblob(100), hex(randomblob(20)) FROM n;
CREATE INDEX blobs_tag ON blobs(tag);
SQL
    sed -i 's|^path = db/app.db$|path = db/app.db\ncheck = integrity|' "$CONF"
    grep -q '^check = integrity$' "$CONF"
    PGIDS=()
    VERIFIED_SETS=" "
}

teardown() {
    stop_orphans
    sc_teardown
}

# The repository, created by restic itself, its key re-wrapped with cheap
# scrypt parameters (tests/helpers/restic_fastkey.py): each restic command
# then opens it in milliseconds instead of half a second, and a run takes
# about a second. Without python3's cryptography the test is only slower.
fast_repo() {
    rst init >/dev/null
    python3 "$SC_ROOT/tests/helpers/restic_fastkey.py" "$REPO" "$PASS" || [ $? -eq 3 ]
}

# Kill one run: WHEN DELAY_MS GROUP(0|1). Sets KILL_LINE.
kill_run() {
    local when=$1 delay=$2 group=$3 g=()
    [ "$group" -eq 1 ] && g=(-g)
    KILL_LINE="$("$CRASHKILL" "${g[@]}" -w "$when" -d "$delay" -s "$STAGING" -t 60 \
        -o "$T/killed-runs.log" -- "$SC" -c "$CONF" run)"
    local pgid=${KILL_LINE#*pgid=}
    PGIDS+=("${pgid%% *}")
    [[ "$KILL_LINE" == killed* || "$KILL_LINE" == finished* ]]
}

# Stop what a killed run left behind (an orphaned restic), once the next
# run has proved it can work beside it: the processes of the killed runs'
# groups, and only restic or stagecoach ones (never a process that reused
# a number).
stop_orphans() {
    local g p
    for g in "${PGIDS[@]}"; do
        for p in $(pgrep -g "$g" || true); do
            case "$(cat "/proc/$p/comm" 2>/dev/null)" in
            restic | stagecoach) kill -KILL "$p" 2>/dev/null || true ;;
            esac
        done
    done
    PGIDS=()
}

# When the last kill left an orphaned restic (stagecoach alone was
# killed), the run lock stays held while it works: a run started meanwhile
# stops with exit 8 and says why (it may also find the orphan just gone).
# Then wait (at most 60 s) for the orphan to end by itself.
wait_for_orphan() {
    local g=${PGIDS[-1]} k
    pgrep -g "$g" -x restic >/dev/null || return 0
    run --separate-stderr sc run
    if [ "$status" -eq 8 ]; then
        if [[ "$stderr" != *"still held by a restic that stagecoach pid"* ]]; then
            echo "exit 8 without naming the orphaned restic: $stderr" >&2
            return 1
        fi
    elif [ "$status" -ne 0 ]; then
        echo "a run beside an orphaned restic: exit $status: $stderr" >&2
        return 1
    fi
    for ((k = 0; k < 1200; k++)); do
        pgrep -g "$g" -x restic >/dev/null || return 0
        sleep 0.05
    done
    echo "the orphaned restic of '$KILL_LINE' did not end within 60 s" >&2
    return 1
}

# Only published sets are listed; each one verifies (hashing, and b2sum -c
# with coreutils alone). A set already verified is checked again by the
# final pass only.
check_local() {
    local s
    for s in $(find "$STAGING/sets" -mindepth 1 -maxdepth 1 -printf '%f\n'); do
        if ! [[ "$s" =~ ^[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$ ]]; then
            echo "sets/ lists '$s'" >&2
            return 1
        fi
        [[ "$VERIFIED_SETS" == *" $s "* ]] && continue
        run --separate-stderr sc verify --set "$s"
        if [ "$status" -ne 0 ]; then
            echo "verify --set $s: exit $status: $stderr" >&2
            return 1
        fi
        b2sum_check "$STAGING/sets/$s"
        VERIFIED_SETS+="$s "
    done
    run --separate-stderr sc status
    if [ "$status" -ne 0 ] || [[ "$output" == *.tmp* ]] || [[ "$output" == *.verify* ]]; then
        echo "status ($status) lists something unpublished: $output $stderr" >&2
        return 1
    fi
}

# Every snapshot in the repository is of a published set (its one path is
# STAGING/sets/<id>, never a .tmp-*). Lists their ids in $T/snap-ids.
check_snapshot_paths() {
    rst snapshots --no-lock --json >"$T/snaps.json"
    pyjson "$T/snaps.json" '"\n".join(s["id"] + " " + " ".join(s["paths"]) for s in j)' >"$T/snaps.txt"
    local id path
    while IFS=' ' read -r id path; do
        if ! [[ "$path" =~ ^"$STAGING"/sets/[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$ ]]; then
            echo "snapshot $id is of $path" >&2
            return 1
        fi
    done <"$T/snaps.txt"
    cut -d' ' -f1 "$T/snaps.txt" >"$T/snap-ids"
}

# Every snapshot verifies: restored by `stagecoach verify --snapshot` and
# re-hashed against its own MANIFEST/B2SUMS. Four at a time (verifies do
# not disturb each other; only a run starting meanwhile would).
verify_all_snapshots() {
    check_snapshot_paths
    local rc=0
    xargs -P 4 -n 1 "$SC" -c "$CONF" -q verify --snapshot <"$T/snap-ids" >"$T/verify.out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$T/verify.out" >&2
        return 1
    fi
    [ "$(grep -c ': ok$' "$T/verify.out")" -eq "$(wc -l <"$T/snap-ids")" ]
}

# The run after a kill: succeeds, removes what the kill left, ships and
# verifies a new set (the newest set has a snapshot in status).
recover() {
    run --separate-stderr sc run
    if [ "$status" -ne 0 ]; then
        echo "the run after '$KILL_LINE' failed: exit $status: $stderr" >&2
        return 1
    fi
    if sc_tmp_left; then
        echo "a .tmp-* survived the run after '$KILL_LINE'" >&2
        return 1
    fi
    run --separate-stderr sc --json status
    local latest shipped
    latest="$(sc_sets | tail -n 1)"
    echo "$output" >"$T/status.json"
    shipped="$(pyjson "$T/status.json" '[s.get("snapshot") or "" for s in j["sets"] if s["id"] == a[0]][0]' "$latest")"
    if [ -z "$shipped" ]; then
        echo "the newest set $latest has no snapshot after the run: $output" >&2
        return 1
    fi
}

@test "SIGKILL at 21 moments of staging and shipping: every next run succeeds, nothing half-built is listed or shipped, everything verifies" {
    fast_repo
    # A first run (it also checks the new repository), then a second one:
    # its duration spreads the timed kill points below.
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    local t0 t1
    t0=$(date +%s%N)
    run --separate-stderr sc run
    t1=$(date +%s%N)
    [ "$status" -eq 0 ]
    local dur_ms=$(((t1 - t0) / 1000000))
    echo "one run: $dur_ms ms"

    # WHEN:DELAY_MS. Moments of the run's life (crashkill.c), then moments
    # spread over a whole run's duration.
    local plan=(
        start:0
        tmp:0 tmp:10 tmp:30 tmp:60
        set:0
        restic:cat:0
        restic:backup:0 restic:backup:60 restic:backup:150 restic:backup:250
        restic:snapshots:0 restic:snapshots:80
        restic:ls:0 restic:dump:0 restic:dump:100
    )
    local k
    for k in 1 2 3 4 5; do
        plan+=("start:$((dur_ms * k / 7))")
    done

    # (not `i`: bats 1.8's `run --flags` sets a global i)
    local n=0 p when delay killed=0 killed_at_once=0 staging=0 shipping=0 finished=0 report=()
    for p in "${plan[@]}"; do
        when=${p%:*}
        delay=${p##*:}
        # even kills: stagecoach and its restic; odd: stagecoach alone
        kill_run "$when" "$delay" $(((n + 1) % 2))
        report+=("$KILL_LINE")
        if [[ "$KILL_LINE" == killed* ]]; then
            killed=$((killed + 1))
            if [ "$delay" -eq 0 ]; then killed_at_once=$((killed_at_once + 1)); fi
        fi
        case "$KILL_LINE" in
        *tmp=1*) staging=$((staging + 1)) ;;
        *restic=-*) ;;
        killed*) shipping=$((shipping + 1)) ;;
        finished*) finished=$((finished + 1)) ;;
        esac
        # Right after the kill, before anything cleans up.
        check_local
        # An orphaned restic still holds the run lock: runs wait for it.
        wait_for_orphan
        # The next run, beside whatever the kill left (a .tmp-*, a stale
        # restic lock).
        recover
        stop_orphans
        check_local
        check_snapshot_paths
        n=$((n + 1))
    done
    printf '%s\n' "${report[@]}"
    echo "kill points: ${#plan[@]}, runs killed: $killed; during staging (a .tmp-* set" \
        "existed): $staging; while restic ran: $shipping; run had already finished: $finished"

    # A kill at the very moment of an event (delay 0) always hits: all 8.
    # One DELAY_MS after an event or into the run may come after the run
    # ended when that part was faster than measured (a loaded CI machine saw
    # 2 of the 13 miss): nearly all must still hit.
    [ "$killed_at_once" -eq 8 ]
    [ "$killed" -ge $((${#plan[@]} - 3)) ]
    # the plan really hit both phases
    [ "$staging" -ge 3 ]
    [ "$shipping" -ge 5 ]

    # A final pass: every local set again, every snapshot in the
    # repository restored and re-hashed, and restic reads back every pack.
    VERIFIED_SETS=" "
    check_local
    t0=$(date +%s%N)
    verify_all_snapshots
    t1=$(date +%s%N)
    local nsnaps
    nsnaps=$(wc -l <"$T/snap-ids")
    echo "snapshots in the repository: $nsnaps, all verified ($(((t1 - t0) / 1000000)) ms);" \
        "local sets: $(sc_sets | wc -l), all verified"
    # every recovery run shipped one
    [ "$nsnaps" -ge $((${#plan[@]} + 1)) ]
    # the repository itself is sound once the stale locks are gone. Every
    # run of this test has ended: all locks left are stale, but plain
    # `unlock` keeps one whose PID a live process took over meanwhile (the
    # PIDs wrap within this test under load; seen in CI: a 2-minute-old lock
    # of a killed restic whose PID was in use again).
    rst unlock --remove-all
    run env RESTIC_REPOSITORY="$REPO" RESTIC_PASSWORD_FILE="$PASS" restic --no-cache check --read-data
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"no errors were found"* ]]
}

@test "SIGKILL of stagecoach and restic while restic creates the repository (init = yes): the next run succeeds" {
    # The real key derivation here: restic init calibrates it (seconds),
    # then writes the key and the config.
    kill_run restic:init 0 1
    echo "$KILL_LINE"
    [[ "$KILL_LINE" == killed*restic=init* ]]
    check_local
    recover
    verify_all_snapshots
}

@test "SIGKILL of stagecoach alone while its restic creates the repository: the orphaned init does not break the next run" {
    # The orphan inherited the run lock's descriptor (spawn_opts.keep_fd):
    # the lock stays held until it has ended too, so the next run does not
    # start a second restic init beside it; once it is gone, runs succeed
    # and the repository is sound (one key decrypts its config).
    rm -rf "$REPO"
    kill_run restic:init 0 0
    echo "$KILL_LINE"
    [[ "$KILL_LINE" == killed*restic=init* ]]
    pgrep -g "${PGIDS[0]}" -x restic # the orphan runs
    run --separate-stderr sc run
    echo "next run: $status $stderr"
    [ "$status" -eq 8 ]
    [[ "$stderr" == *"still held by a restic that stagecoach pid"*"was killed"* ]]
    # wait (bounded) for the orphaned restic to end by itself
    local g=${PGIDS[0]} k
    for ((k = 0; k < 600; k++)); do
        kill -0 -- "-$g" 2>/dev/null || break
        sleep 0.05
    done
    refute kill -0 -- "-$g" 2>/dev/null # it ended by itself
    stop_orphans
    recover
    verify_all_snapshots
    run env RESTIC_REPOSITORY="$REPO" RESTIC_PASSWORD_FILE="$PASS" restic --no-cache check
    echo "$output"
    [ "$status" -eq 0 ]
    # one key: no second init ran beside the orphan
    [ "$(find "$REPO/keys" -type f | wc -l)" -eq 1 ]
}

@test "SIGKILL during verify --snapshot: its scratch copy is never listed and the next run removes it" {
    fast_repo
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    local snap
    snap="$(sc_sets | tail -n 1)"
    KILL_LINE="$("$CRASHKILL" -g -w restic:restore -d 30 -s "$STAGING" -o "$T/killed-runs.log" \
        -- "$SC" -c "$CONF" verify --snapshot latest)"
    echo "$KILL_LINE"
    [[ "$KILL_LINE" == killed*restic=restore* ]]
    compgen -G "$STAGING/.verify-*" >/dev/null # it was left behind
    check_local
    run --separate-stderr sc verify --set latest
    [ "$status" -eq 0 ]
    [[ "$output" == *"$snap"*ok* ]]
    recover
    refute compgen -G "$STAGING/.verify-*"
    verify_all_snapshots
}

@test "a verify --snapshot in progress is not disturbed by a run that starts meanwhile" {
    fast_repo
    # a database big enough that the restore lasts a moment
    sqlite3 "$DB" "INSERT INTO blobs (body, tag) SELECT randomblob(100), hex(randomblob(20)) FROM blobs;"
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    sc verify --snapshot latest >"$T/verify.out" 2>&1 &
    local vp=$! k
    sc_track "$vp"
    # once the restore has written the database into the scratch directory
    for ((k = 0; k < 2000; k++)); do
        [ -n "$(find "$STAGING" -path '*/.verify-*' -name '*.db' 2>/dev/null)" ] && break
        sleep 0.005
    done
    # the verify is in the middle of its restore when the run starts
    kill -0 "$vp"
    compgen -G "$STAGING/.verify-*" >/dev/null
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    local vs=0
    wait "$vp" || vs=$?
    cat "$T/verify.out"
    [ "$vs" -eq 0 ]
    [[ "$(cat "$T/verify.out")" == *ok* ]]
}
