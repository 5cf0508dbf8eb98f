#!/usr/bin/env bats
# Off-site repositories end to end: the real binary and the real restic
# against a real S3 API (npm s3rver over TLS, scripts/test-s3.sh) and a
# real REST server (rclone serve restic, scripts/test-rest.sh), both on
# loopback, started and stopped here.

load helpers
load offsite_helpers

setup_file() {
    template_repo_make
    S3DIR="$BATS_FILE_TMPDIR/s3"
    RESTDIR="$BATS_FILE_TMPDIR/rest"
    "$SC_ROOT/scripts/test-s3.sh" start "$S3DIR" >/dev/null
    "$SC_ROOT/scripts/test-rest.sh" start "$RESTDIR" >/dev/null
    export S3DIR RESTDIR
}

teardown_file() {
    "$SC_ROOT/scripts/test-s3.sh" stop "$S3DIR" || true
    "$SC_ROOT/scripts/test-rest.sh" stop "$RESTDIR" || true
}

setup() {
    sc_setup
    # each test has its own place in the servers
    NAME="t$BATS_TEST_NUMBER-$RANDOM"
    S3URL="$(cat "$S3DIR/url")/$NAME"
    RESTURL="$(cat "$RESTDIR/url")/$NAME/"
}

teardown() {
    sc_teardown
    # a test that crashed the S3 server must not leave the next one without
    "$SC_ROOT/scripts/test-s3.sh" start "$S3DIR" >/dev/null 2>&1 || true
}

# The [restic] section for the S3 server: credentials in a private env
# file, the server's certificate as cacert, every call logged.
use_s3() {
    cp "$S3DIR/env" "$T/s3.env"
    chmod 600 "$T/s3.env"
    conf_set restic repository "$S3URL"
    conf_set restic env_file s3.env
    conf_set restic cacert "$S3DIR/cert.pem"
    off_wrap_restic
}

# restic by hand on the test's S3 repository.
rst_s3() {
    AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER RESTIC_REPOSITORY="$S3URL" \
        RESTIC_PASSWORD_FILE="$PASS" restic --no-cache -q --cacert "$S3DIR/cert.pem" "$@"
}

rst_rest() {
    RESTIC_REPOSITORY="$RESTURL" RESTIC_PASSWORD_FILE="$PASS" restic --no-cache -q "$@"
}

# The fast-key template, uploaded to the test's place in the S3 server
# (rclone; AWS_CA_BUNDLE from a caller's environment would override its
# --ca-cert and fail).
s3_from_template() {
    cp "$TEMPLATE_PASS" "$PASS"
    chmod 600 "$PASS"
    local port
    port="$(cat "$S3DIR/port")"
    env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null RCLONE_CONFIG_S3_TYPE=s3 \
        RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ENDPOINT="https://127.0.0.1:$port" \
        RCLONE_CONFIG_S3_ACCESS_KEY_ID=S3RVER RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=S3RVER \
        rclone --ca-cert "$S3DIR/cert.pem" copy "$TEMPLATE_REPO" "s3:stagecoach/$NAME"
}

run_ok() {
    sc_expect 0 "$@" run
    SNAP="$(printf '%s\n' "$output" | sed -n 's/^snapshot \([0-9a-f]\{64\}\)$/\1/p')"
    [ -n "$SNAP" ]
}

@test "S3 over TLS: init = yes creates the repository once, runs ship verified snapshots, verify reads them back" {
    use_s3
    run_ok
    local first=$SNAP id
    rst_s3 cat config >"$T/config.json"
    id="$(pyjson "$T/config.json" 'j["id"]')"
    run_ok
    local second=$SNAP
    # init ran once; the second run found the repository (same id)
    [ "$(calls_with init)" = 1 ]
    rst_s3 cat config >"$T/config.json"
    [ "$(pyjson "$T/config.json" 'j["id"]')" = "$id" ]
    # restic lists both snapshots, with our host and tags
    rst_s3 snapshots --json >"$T/snaps.json"
    [ "$(pyjson "$T/snaps.json" 'sorted(s["id"] for s in j)')" = \
        "$(python3 -c 'import json,sys; print(json.dumps(sorted(sys.argv[1:])))' "$first" "$second")" ]
    [ "$(pyjson "$T/snaps.json" 'sorted(set(s["hostname"] for s in j))')" = "[\"$HOSTNAME_CONF\"]" ]
    # every file of a snapshot restored from S3 into scratch and re-hashed
    sc_expect 0 verify --snapshot latest
    [[ "$output" == *"${second:0:8}: ok"* ]]
    sc_expect 0 verify --snapshot "$first"
    [[ "$output" == *"${first:0:8}: ok"* ]]
    # and the bytes are the staged ones
    local set
    set="$STAGING/sets/$(sc_sets | tail -n 1)"
    rst_s3 dump "$second" "$set/sqlite/app.db" | cmp - "$set/sqlite/app.db"
    # the credentials reached restic through its environment, nowhere else
    grep -qx 'env: AWS_ACCESS_KEY_ID=S3RVER' "$CALLS"
    refute grep -q '^argv:.*S3RVER' "$CALLS"
    [[ "$output$stderr" != *S3RVER* ]]
    [ -z "${AWS_ACCESS_KEY_ID:-}" ]
}

@test "REST server: run, retention and a check over rest:, verify --snapshot restores every file" {
    template_repo_use "$RESTDIR/data/$NAME"
    conf_set restic repository "$RESTURL"
    conf_set retention keep_last 2
    conf_set check read_data_subset 1/2
    local snaps=()
    for i in 1 2 3; do
        run_ok
        snaps+=("$SNAP")
    done
    rst_rest snapshots --json >"$T/snaps.json"
    [ "$(pyjson "$T/snaps.json" 'sorted(s["id"] for s in j)')" = \
        "$(python3 -c 'import json,sys; print(json.dumps(sorted(sys.argv[1:])))' "${snaps[1]}" "${snaps[2]}")" ]
    [ "$(pyjson "$STAGING/state.json" 'j["check"]["last"]["subset"]')" = 1/2 ]
    [ "$(pyjson "$STAGING/state.json" 'j["check"]["last"]["status"]')" = success ]
    sc_expect 0 verify --snapshot latest
    [[ "$output" == *"${snaps[2]:0:8}: ok"* ]]
}

@test "S3: the backend dies mid-upload: exit 6, the set kept; back up, the next run ships it and clears the stale lock" {
    s3_from_template
    use_s3
    conf_set restic timeout 10s
    conf_set retention keep_last 5
    # 20 MB that does not compress, in 4 MiB packs uploaded at 4 MiB/s: the
    # upload takes seconds, and the server dies after the first pack.
    head -c 20000000 /dev/urandom >"$CFGDIR/big.bin"
    printf 'RESTIC_PACK_SIZE=4\n' >>"$T/s3.env"
    touch "$T/slow"
    sc run >"$T/run1.out" 2>"$T/run1.err" &
    local pid=$!
    sc_track "$pid"
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q "Stored object \"$NAME/data/" "$S3DIR/log" && break
        sleep 0.05
    done
    grep -q "Stored object \"$NAME/data/" "$S3DIR/log"
    "$SC_ROOT/scripts/test-s3.sh" kill "$S3DIR"
    local rc=0
    wait "$pid" || rc=$?
    cat "$T/run1.err"
    [ "$rc" -eq 6 ]
    grep -q '] ERROR restic backup' "$T/run1.err"
    # the set stays, unshipped; the run is recorded as failed
    local first
    first="$(sc_sets)"
    [ "$(printf '%s\n' "$first" | wc -l)" -eq 1 ]
    [ "$(pyjson "$STAGING/state.json" 'j["sets"].get(a[0])' "$first")" = null ]
    [ "$(pyjson "$STAGING/state.json" 'j["last_run"]["exit_code"]')" = 6 ]
    # the killed restic left its lock in the bucket
    [ -n "$(find "$S3DIR/data/stagecoach/$NAME/locks" -name '*._S3rver_object' 2>/dev/null)" ]

    # The backend comes back (same address). The next run ships its own set
    # and the one left behind; forget's exclusive lock meets the stale lock,
    # which `restic unlock` removes (its restic is gone).
    "$SC_ROOT/scripts/test-s3.sh" start "$S3DIR" >/dev/null
    rm "$T/slow"
    conf_del restic timeout
    run_ok
    cat <<<"$stderr"
    local second
    second="$(sc_sets | tail -n 1)"
    [[ "$stderr" == *"set $first was staged but never shipped"* ]]
    [[ "$stderr" == *"removing stale locks"* ]]
    [ "$(calls_with unlock)" -ge 1 ]
    refute grep -q -- '--remove-all' "$CALLS"
    rst_s3 snapshots --json >"$T/snaps.json"
    [ "$(snap_sets "$T/snaps.json")" = "[\"$first\", \"$second\"]" ]
    # the late set keeps its place in time: the moment it was staged
    [ "$(pyjson "$T/snaps.json" '[s["time"][:19] for s in j if "set-" + a[0] in s["tags"]][0]' "$first")" = \
        "$(python3 -c 'import sys,datetime as d; t=d.datetime.strptime(sys.argv[1],"%Y%m%dT%H%M%SZ").replace(tzinfo=d.timezone.utc); print(t.astimezone().strftime("%Y-%m-%dT%H:%M:%S"))' "$first")" ]
    [ -n "$(pyjson "$STAGING/state.json" 'j["sets"][a[0]]["snapshot"]' "$first")" ]
    [ -z "$(find "$S3DIR/data/stagecoach/$NAME/locks" -name '*._S3rver_object' 2>/dev/null)" ]
    # both read back from S3 intact
    sc_expect 0 verify --snapshot "$(pyjson "$STAGING/state.json" 'j["sets"][a[0]]["snapshot"]' "$first")"
}

@test "a backend that refuses connections: three attempts (0.17+: restic's own, until [restic] probe_timeout), then exit 6 naming the error; the set is kept" {
    # nothing listens on the REST server's port once it is stopped; use a
    # port of our own that nothing listens on instead
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    conf_set restic repository "rest:http://127.0.0.1:$port/nothing/"
    off_wrap_restic
    if [ "$(restic_minor)" -ge 17 ]; then
        # restic retries the backend itself, for up to 15 minutes: one call,
        # stopped by [restic] probe_timeout (the default [restic] timeout is
        # 6 h), and the error it kept retrying is named
        conf_set restic probe_timeout 5s
        sc_expect 6 run
        [[ "$stderr" == *"restic cat config timed out after 5 s while retrying a backend error: "*"connection refused"* ]]
        [[ "$stderr" != *"attempt 2 of"* ]]
        [ "$(grep -c '^argv:.* cat config' "$CALLS")" = 1 ]
    else
        sc_expect 6 run
        [[ "$stderr" == *"backend error"*"connection refused"* ]]
        [[ "$stderr" == *"attempt 2 of 3"* ]]
        [[ "$stderr" == *"attempt 3 of 3"* ]]
        [ "$(grep -c '^argv:.* cat config' "$CALLS")" = 3 ]
    fi
    [ "$(sc_sets | wc -l)" = 1 ]
    [ "$(pyjson "$STAGING/state.json" 'j["last_run"]["exit_code"]')" = 6 ]
}

@test "a wrong password on a REST repository: exit 6 at once, one clear line, no retry" {
    template_repo_use "$RESTDIR/data/$NAME"
    conf_set restic repository "$RESTURL"
    printf 'not-the-password\n' >"$T/wrong.pass"
    chmod 600 "$T/wrong.pass"
    conf_set restic password_file wrong.pass
    off_wrap_restic
    sc_expect 6 -q run
    [ "$(printf '%s\n' "$stderr" | grep -c .)" -eq 1 ]
    [[ "${stderr,,}" == *"wrong password"* ]]
    [ "$(grep -c '^argv:.* cat config' "$CALLS")" = 1 ]
    [ "$(calls_with unlock)" = 0 ]
}

@test "rclone: repositories pass through to restic, their remote defined in env_file only" {
    template_repo_use "$T/remote/repo"
    # the rclone remote exists only in the env file restic gets
    (umask 077 && printf 'RCLONE_CONFIG=/dev/null\nRCLONE_CONFIG_SCREMOTE_TYPE=local\n' >"$T/rclone.env")
    conf_set restic repository "rclone:scremote:$T/remote/repo"
    conf_set restic env_file rclone.env
    conf_set retention keep_last 1
    run_ok
    local first=$SNAP
    run_ok
    RESTIC_REPOSITORY="$T/remote/repo" RESTIC_PASSWORD_FILE="$PASS" restic --no-cache -q \
        snapshots --json >"$T/snaps.json"
    [ "$(pyjson "$T/snaps.json" '[s["id"] for s in j]')" = "[\"$SNAP\"]" ]
    [ "$first" != "$SNAP" ]
    sc_expect 0 verify --snapshot latest
    [[ "$output" == *"${SNAP:0:8}: ok"* ]]
}
