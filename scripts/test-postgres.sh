#!/usr/bin/env bash
# A private PostgreSQL server for the tests: its own cluster (initdb) under
# DIR, a unix socket in DIR and 127.0.0.1 on a free port, started and
# stopped with pg_ctl. Never touches a system cluster.
#
#   scripts/test-postgres.sh start DIR   # DIR is the socket directory, DIR/port the port (kept on restart)
#   scripts/test-postgres.sh stop DIR    # a fast shutdown (the cluster stays until rm -rf DIR)
#   scripts/test-postgres.sh kill DIR    # SIGKILL to the postmaster and every backend (a crash)
#   scripts/test-postgres.sh env DIR     # shell assignments: SOCKDIR, PORT, PIDFILE, BINDIR
#
# The superuser `postgres` logs in without a password over the socket only
# (trust on a directory only its owner and root can enter); every other
# role needs its password (scram-sha-256), over the socket and over TCP.
# Run as root (as CI does), the server runs as the `postgres` user, since
# initdb and postgres refuse to run as root: DIR is then owned by it.
# PG_BINDIR chooses the server's binaries (default: the newest
# /usr/lib/postgresql/*/bin, else pg_ctl in PATH).
# DIR must be short: a unix socket path is limited to 107 bytes.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|kill|env DIR" >&2
    exit 2
fi

bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        echo "$PG_BINDIR"
        return
    fi
    local d
    d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/pg_ctl" ]; then
        echo "$d"
    elif command -v pg_ctl >/dev/null; then
        dirname "$(command -v pg_ctl)"
    else
        echo "test-postgres: no PostgreSQL server found (scripts/install-deps.sh installs it)" >&2
        exit 1
    fi
}

BIN=$(bindir)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Run a server program as the cluster's owner: root hands it to `postgres`.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

close_inherited_fds() {
    local fd
    for fd in "/proc/$$/fd/"*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] 2>/dev/null || continue
        eval "exec $fd>&-" 2>/dev/null || true
    done
}

init_cluster() {
    [ -f "$dir/data/PG_VERSION" ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || {
            echo "test-postgres: running as root needs the postgres user (the postgresql package makes it)" >&2
            exit 1
        }
        chown postgres: "$dir"
    fi
    chmod 700 "$dir"
    as_owner "$BIN/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    # The superuser only over the socket; everyone else with a password.
    as_owner tee "$dir/data/pg_hba.conf" >/dev/null <<'EOF'
local all postgres trust
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
EOF
    as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF
# test server (scripts/test-postgres.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
unix_socket_permissions = 0700
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
max_connections = 60
max_wal_size = 1GB
log_min_messages = warning
log_line_prefix = '%m [%p] %a '
EOF
}

start() {
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    if [ ${#dir} -gt 90 ]; then
        echo "test-postgres: $dir is too long for a socket path" >&2
        exit 2
    fi
    init_cluster
    # already running (a second start, e.g. after a crashed caller): keep it
    if [ -f "$dir/data/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        return 0
    fi
    # a restart keeps the port, so that configurations still point at it
    local port
    if [ -s "$dir/port" ]; then port=$(cat "$dir/port"); else port=$(free_port); fi
    echo "$port" >"$dir/port"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/port"
    # Descriptors other than 0-2 are closed: a test runner (bats) waits for
    # every holder of its pipes, and the server outlives this script.
    close_inherited_fds
    as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "-p $port" start \
        </dev/null >"$dir/pg_ctl.log" 2>&1 || {
        cat "$dir/pg_ctl.log" "$dir/server.log" >&2 || true
        exit 1
    }
}

postmaster_pid() {
    [ -f "$dir/data/postmaster.pid" ] && head -n 1 "$dir/data/postmaster.pid"
}

stop() {
    [ -f "$dir/data/postmaster.pid" ] || return 0
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || {
        local pid
        pid=$(postmaster_pid || true)
        if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    }
}

# A crash: SIGKILL to the postmaster and to every process it started
# (found by their parent pid, never by name).
crash() {
    local pid child
    pid=$(postmaster_pid || true)
    [ -n "$pid" ] || return 0
    kill -STOP "$pid" 2>/dev/null || true # no new backend while we go
    for child in $(ps -o pid= --ppid "$pid"); do
        kill -KILL "$child" 2>/dev/null || true
    done
    kill -KILL "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    rm -f "$dir/data/postmaster.pid"
}

case "$cmd" in
start) start ;;
stop) stop ;;
kill) crash ;;
env)
    echo "SOCKDIR=$dir"
    echo "PORT=$(cat "$dir/port" 2>/dev/null || echo 0)"
    echo "PIDFILE=$dir/data/postmaster.pid"
    echo "BINDIR=$BIN"
    ;;
*)
    echo "usage: $0 start|stop|kill|env DIR" >&2
    exit 2
    ;;
esac
