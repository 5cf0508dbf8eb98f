#!/usr/bin/env bash
# A real S3 API on loopback for the tests: npm s3rver 3.7.1 over TLS.
#
#   scripts/test-s3.sh start DIR [BUCKET]   start (or restart on the same port)
#   scripts/test-s3.sh stop DIR             SIGTERM, then SIGKILL after 5 s
#   scripts/test-s3.sh kill DIR             SIGKILL at once (a crashed backend)
#
# TLS, not plain HTTP: over http:// restic (minio-go) signs uploads with
# streaming SigV4 (aws-chunked bodies), which s3rver 3.7.1 stores with the
# chunk framing in them: init "succeeds" and the repository is corrupt
# (tech-facts §5). Over https:// minio-go sends UNSIGNED-PAYLOAD bodies.
#
# DIR gets: key.pem, cert.pem (self-signed for 127.0.0.1, 2 days), data/,
# log, pid, port, url (s3:https://127.0.0.1:PORT/BUCKET) and env
# (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY = S3RVER, 0600: the only
# credentials s3rver accepts for signed requests). The port is picked by
# s3rver (-p 0) the first time and kept for restarts, so a repository URL
# stays valid when the "backend comes back".
set -euo pipefail

find_s3rver() {
    local c
    for c in "${S3RVER:-}" "${SC_TEST_PREFIX:-/opt/stagecoach-test}/node_modules/.bin/s3rver" \
        "$(dirname "$0")/../tests/node_modules/.bin/s3rver" "$(command -v s3rver || true)"; do
        if [ -n "$c" ] && [ -x "$c" ]; then
            echo "$c"
            return 0
        fi
    done
    echo "test-s3: s3rver not found (scripts/install-deps.sh installs it)" >&2
    return 1
}

make_cert() {
    local dir=$1
    [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ] && return 0
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >/dev/null 2>&1
    chmod 600 "$dir/key.pem"
}

is_running() {
    local dir=$1
    [ -s "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

start() {
    local dir=$1 bucket=${2:-stagecoach}
    local bin port
    bin="$(find_s3rver)"
    mkdir -p "$dir/data"
    if is_running "$dir"; then
        echo "test-s3: already running (pid $(cat "$dir/pid"))" >&2
        return 0
    fi
    make_cert "$dir"
    port=0
    [ -s "$dir/port" ] && port="$(cat "$dir/port")"
    : >"$dir/log"
    # setsid: the server outlives nothing but is killed by pid, not by name.
    setsid "$bin" -d "$dir/data" -a 127.0.0.1 -p "$port" --key "$dir/key.pem" \
        --cert "$dir/cert.pem" --configure-bucket "$bucket" >>"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    local i
    for ((i = 0; i < 200; i++)); do
        port="$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$dir/log" | tail -n 1)"
        [ -n "$port" ] && break
        if ! is_running "$dir"; then
            echo "test-s3: s3rver exited:" >&2
            cat "$dir/log" >&2
            return 1
        fi
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "test-s3: s3rver did not start within 20 s" >&2
        cat "$dir/log" >&2
        return 1
    fi
    echo "$port" >"$dir/port"
    echo "s3:https://127.0.0.1:$port/$bucket" >"$dir/url"
    (umask 077 && printf 'AWS_ACCESS_KEY_ID=S3RVER\nAWS_SECRET_ACCESS_KEY=S3RVER\n' >"$dir/env")
    cat "$dir/url"
}

stop() {
    local dir=$1 sig=${2:-TERM}
    is_running "$dir" || { rm -f "$dir/pid"; return 0; }
    local pid i
    pid="$(cat "$dir/pid")"
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
}

case "${1:-}" in
start) start "${2:?DIR}" "${3:-}" ;;
stop) stop "${2:?DIR}" TERM ;;
kill) stop "${2:?DIR}" KILL ;;
*)
    echo "usage: $0 start|stop|kill DIR [BUCKET]" >&2
    exit 2
    ;;
esac
