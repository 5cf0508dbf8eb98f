#!/usr/bin/env bash
# A restic REST server on loopback for the tests: `rclone serve restic`
# (Debian's rclone) over a local directory.
#
#   scripts/test-rest.sh start DIR    start (or restart on the same port)
#   scripts/test-rest.sh stop DIR     SIGTERM, then SIGKILL after 5 s
#   scripts/test-rest.sh kill DIR     SIGKILL at once (a crashed backend)
#
# DIR gets data/ (each repository is a directory under it: rest:URL/NAME/
# is DIR/data/NAME), log, pid, port and url (rest:http://127.0.0.1:PORT).
# The port is chosen by the kernel the first time and kept for restarts.
set -euo pipefail

SERVER_NAME=test-rest
# shellcheck source=scripts/test-server-lib.sh
. "$(dirname "$0")/test-server-lib.sh"

start() {
    local dir=$1
    command -v rclone >/dev/null || {
        echo "test-rest: rclone not found (scripts/install-deps.sh installs it)" >&2
        return 1
    }
    mkdir -p "$dir/data"
    if is_running "$dir"; then
        echo "test-rest: already running (pid $(cat "$dir/pid"))" >&2
        return 0
    fi
    : >"$dir/log"
    # No rclone.conf is needed to serve a local path; /dev/null keeps any
    # user's config (and its remotes) out of the test.
    RCLONE_CONFIG=/dev/null setsid rclone serve restic --addr "127.0.0.1:$(saved_port "$dir")" \
        "$dir/data" >>"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    wait_port "$dir" 's#.*http://127\.0\.0\.1:\([0-9][0-9]*\)/.*#\1#p' || return 1
    echo "rest:http://127.0.0.1:$(cat "$dir/port")" >"$dir/url"
    cat "$dir/url"
}

server_main "$@"
