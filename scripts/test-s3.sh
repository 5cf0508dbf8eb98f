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

SERVER_NAME=test-s3
SERVER_USAGE_ARG=" [BUCKET]"
# shellcheck source=scripts/test-server-lib.sh
. "$(dirname "$0")/test-server-lib.sh"

start() {
    local dir=$1 bucket=${2:-stagecoach}
    local bin
    bin="$(find_s3rver)"
    mkdir -p "$dir/data"
    if is_running "$dir"; then
        echo "test-s3: already running (pid $(cat "$dir/pid"))" >&2
        return 0
    fi
    make_cert "$dir"
    : >"$dir/log"
    # setsid: the server outlives nothing but is killed by pid, not by name.
    setsid "$bin" -d "$dir/data" -a 127.0.0.1 -p "$(saved_port "$dir")" --key "$dir/key.pem" \
        --cert "$dir/cert.pem" --configure-bucket "$bucket" >>"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    wait_port "$dir" 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' || return 1
    echo "s3:https://127.0.0.1:$(cat "$dir/port")/$bucket" >"$dir/url"
    (umask 077 && printf 'AWS_ACCESS_KEY_ID=S3RVER\nAWS_SECRET_ACCESS_KEY=S3RVER\n' >"$dir/env")
    cat "$dir/url"
}

server_main "$@"
