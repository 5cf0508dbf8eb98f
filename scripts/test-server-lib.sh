# shellcheck shell=bash
# What scripts/test-rest.sh and scripts/test-s3.sh share: a test server
# under DIR (pid, port, log, url), started in a session of its own, found
# and stopped by its pid (never by name), restarted on the port it had.
# The including script sets SERVER_NAME and defines start DIR [ARG].

is_running() {
    local dir=$1
    [ -s "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

# The port of an earlier start (kept so a repository URL stays valid when
# the "backend comes back"), else 0: the kernel picks one.
saved_port() {
    local dir=$1
    if [ -s "$dir/port" ]; then cat "$dir/port"; else echo 0; fi
}

# After the caller launched the server with its pid in DIR/pid: wait (at
# most 20 s) for the port it announces in DIR/log, found by the sed
# expression, and record it in DIR/port.
wait_port() {
    local dir=$1 expr=$2 port i
    for ((i = 0; i < 200; i++)); do
        port="$(sed -n "$expr" "$dir/log" | tail -n 1)"
        if [ -n "$port" ]; then
            echo "$port" >"$dir/port"
            return 0
        fi
        if ! is_running "$dir"; then
            echo "$SERVER_NAME: the server exited:" >&2
            cat "$dir/log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "$SERVER_NAME: the server did not start within 20 s" >&2
    cat "$dir/log" >&2
    return 1
}

# SIG (TERM: a clean stop; KILL: a crashed backend), then SIGKILL after 5 s.
stop() {
    local dir=$1 sig=${2:-TERM}
    is_running "$dir" || {
        rm -f "$dir/pid"
        return 0
    }
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

# start DIR [ARG] | stop DIR | kill DIR
server_main() {
    case "${1:-}" in
    start) start "${2:?DIR}" "${3:-}" ;;
    stop) stop "${2:?DIR}" TERM ;;
    kill) stop "${2:?DIR}" KILL ;;
    *)
        echo "usage: $0 start|stop|kill DIR${SERVER_USAGE_ARG:-}" >&2
        exit 2
        ;;
    esac
}
