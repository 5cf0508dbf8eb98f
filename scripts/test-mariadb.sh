#!/usr/bin/env bash
# A private MariaDB server for the tests: its own datadir, socket and port
# under DIR, binary logging on (so binlog positions are recorded), stopped
# and removed again afterwards. Never touches a system server.
#
#   scripts/test-mariadb.sh start DIR   # prints nothing; DIR/sock is the socket
#   scripts/test-mariadb.sh stop DIR    # stops it (the datadir stays until rm -rf DIR)
#   scripts/test-mariadb.sh env DIR     # prints shell assignments: SOCK, PORT, PIDFILE
#
# The server listens on DIR/sock and on 127.0.0.1:PORT (a free port chosen at
# start, written to DIR/port), with TLS (DIR/tls/ca.pem signed the server's
# certificate for 127.0.0.1; DIR/tls/other-ca.pem did not). root logs in
# through the socket as the OS user root (unix_socket auth), as CI runs.
# DIR must be short: a unix socket path is limited to 107 bytes.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|env DIR" >&2
    exit 2
fi

mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
[ -x "$mariadbd" ] || mariadbd=/usr/sbin/mariadbd

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Wait until the server answers on its socket, or died, or ~60 s passed.
wait_ready() {
    local i
    for ((i = 0; i < 600; i++)); do
        if mariadb --no-defaults -S "$dir/sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$(cat "$dir/pid.start" 2>/dev/null || echo 0)" 2>/dev/null; then
            echo "test-mariadb: mariadbd exited during start-up; its log:" >&2
            tail -n 30 "$dir/error.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    echo "test-mariadb: mariadbd did not answer within 60 s" >&2
    return 1
}

close_inherited_fds() {
    local fd
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] 2>/dev/null || continue
        eval "exec $fd>&-" 2>/dev/null || true
    done
}

# A CA and a server certificate for 127.0.0.1 and localhost, so TLS (and
# its verification) can be tested: DIR/tls/ca.pem, server.pem, server.key.
make_tls() {
    local t=$dir/tls
    [ -f "$t/server.pem" ] && return 0
    mkdir -p "$t"
    (
        cd "$t"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=stagecoach test CA" \
            -keyout ca.key -out ca.pem
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr
        printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\n' >ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile ext.cnf -out server.pem
        # a second CA that signed nothing here: verification against it fails
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=another CA" \
            -keyout other-ca.key -out other-ca.pem
        chmod 600 ./*.key
    ) >"$dir/tls.log" 2>&1 || {
        cat "$dir/tls.log" >&2
        exit 1
    }
}

install_db() {
    mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$dir/data" \
        --tmpdir="$dir/tmp" --auth-root-authentication-method=socket --skip-test-db \
        >"$dir/install.log" 2>&1
}

start() {
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    if [ ${#dir} -gt 90 ]; then
        echo "test-mariadb: $dir is too long for a socket path" >&2
        exit 2
    fi
    # A private tmpdir: servers of suites running side by side (CI runs
    # three) otherwise share /tmp for their #sql-temptable-* files, and one
    # bootstrap was seen failing on a temporary table it could not remove.
    mkdir -p "$dir/tmp"
    if [ ! -d "$dir/data/mysql" ]; then
        install_db || {
            echo "test-mariadb: bootstrap failed once; again on a fresh datadir" >&2
            rm -rf "$dir/data" "$dir/tmp"
            mkdir -p "$dir/tmp"
            install_db || {
                cat "$dir/install.log" >&2
                exit 1
            }
        }
    fi
    make_tls
    local port
    port=$(free_port)
    echo "$port" >"$dir/port"
    # --no-defaults: nothing from /etc/mysql. --user: CI runs as root.
    # Descriptors other than 0-2 are closed: a test runner (bats) waits for
    # every holder of its pipes, and the server outlives this script.
    close_inherited_fds
    "$mariadbd" --no-defaults --user="$(id -un)" --datadir="$dir/data" \
        --socket="$dir/sock" --pid-file="$dir/mariadbd.pid" --tmpdir="$dir/tmp" \
        --port="$port" --bind-address=127.0.0.1 \
        --log-bin="$dir/data/binlog" --server-id=1 --binlog-format=ROW \
        --log-error="$dir/error.log" \
        --innodb-buffer-pool-size=128M --innodb-log-file-size=64M \
        --max-allowed-packet=64M \
        --ssl-ca="$dir/tls/ca.pem" --ssl-cert="$dir/tls/server.pem" --ssl-key="$dir/tls/server.key" \
        </dev/null >>"$dir/error.log" 2>&1 &
    echo $! >"$dir/pid.start"
    wait_ready
}

stop() {
    [ -d "$dir" ] || return 0
    local pid=""
    [ -f "$dir/mariadbd.pid" ] && pid=$(cat "$dir/mariadbd.pid")
    [ -z "$pid" ] && [ -f "$dir/pid.start" ] && pid=$(cat "$dir/pid.start")
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

case "$cmd" in
start) start ;;
stop) stop ;;
env)
    echo "SOCK=$dir/sock"
    echo "PORT=$(cat "$dir/port" 2>/dev/null || echo 0)"
    echo "PIDFILE=$dir/mariadbd.pid"
    ;;
*)
    echo "usage: $0 start|stop|env DIR" >&2
    exit 2
    ;;
esac
