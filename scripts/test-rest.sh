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

is_running() {
    local dir=$1
    [ -s "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

start() {
    local dir=$1 port
    command -v rclone >/dev/null || {
        echo "test-rest: rclone not found (scripts/install-deps.sh installs it)" >&2
        return 1
    }
    mkdir -p "$dir/data"
    if is_running "$dir"; then
        echo "test-rest: already running (pid $(cat "$dir/pid"))" >&2
        return 0
    fi
    port=0
    [ -s "$dir/port" ] && port="$(cat "$dir/port")"
    : >"$dir/log"
    # No rclone.conf is needed to serve a local path; /dev/null keeps any
    # user's config (and its remotes) out of the test.
    RCLONE_CONFIG=/dev/null setsid rclone serve restic --addr "127.0.0.1:$port" \
        "$dir/data" >>"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    local i
    for ((i = 0; i < 200; i++)); do
        port="$(sed -n 's#.*http://127\.0\.0\.1:\([0-9][0-9]*\)/.*#\1#p' "$dir/log" | tail -n 1)"
        [ -n "$port" ] && break
        if ! is_running "$dir"; then
            echo "test-rest: rclone exited:" >&2
            cat "$dir/log" >&2
            return 1
        fi
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "test-rest: rclone did not start within 20 s" >&2
        cat "$dir/log" >&2
        return 1
    fi
    echo "$port" >"$dir/port"
    echo "rest:http://127.0.0.1:$port" >"$dir/url"
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
start) start "${2:?DIR}" ;;
stop) stop "${2:?DIR}" TERM ;;
kill) stop "${2:?DIR}" KILL ;;
*)
    echo "usage: $0 start|stop|kill DIR" >&2
    exit 2
    ;;
esac
