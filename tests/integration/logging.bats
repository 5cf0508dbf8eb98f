#!/usr/bin/env bats
# Log lines on stderr ("[YYYY-MM-DD HH:MM:SS] LEVEL message"), -q / -v,
# progress lines on a terminal only, and the copy sent to syslog(3).

load helpers

setup() {
    sc_setup
}

teardown() {
    sc_teardown
}

LINE_RE='^\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\] (ERROR|WARN|INFO|DEBUG) .'

# Every line of $1 is a log line.
all_log_lines() {
    local line n=0
    while IFS= read -r line; do
        n=$((n + 1))
        if ! [[ "$line" =~ $LINE_RE ]]; then
            echo "not a log line: '$line'" >&2
            return 1
        fi
    done <<<"$1"
    [ "$n" -gt 0 ]
}

@test "stage: every stderr line is [date time] LEVEL message, no progress without a terminal" {
    run --separate-stderr sc -v stage
    echo "$stderr"
    [ "$status" -eq 0 ]
    all_log_lines "$stderr"
    [[ "$stderr" == *"] INFO staged set $STAGING/sets/"* ]]
    # not a terminal: no carriage return, no escape sequence, no progress text
    refute grep -q $'\r' <<<"$stderr"
    refute grep -q $'\033' <<<"$stderr"
    refute grep -q 'checking and hashing the copy' <<<"$stderr"
}

@test "time stamps are local time as TZ says" {
    local tz
    for tz in UTC0 XYZ-12 ABC+9:30; do
        local before after stamp
        before="$(TZ=$tz date '+%Y-%m-%d %H:%M:%S')"
        TZ=$tz run --separate-stderr sc stage
        after="$(TZ=$tz date '+%Y-%m-%d %H:%M:%S')"
        [ "$status" -eq 0 ]
        stamp="$(head -n 1 <<<"$stderr" | sed -n 's/^\[\([^]]*\)\].*/\1/p')"
        echo "$tz: $before <= $stamp <= $after"
        [[ ! "$stamp" < "$before" ]]
        [[ ! "$stamp" > "$after" ]]
    done
}

@test "-q keeps only errors; a failure is one ERROR line; -v adds DEBUG" {
    run --separate-stderr sc -q stage
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    run --separate-stderr sc doctor
    refute grep -q '] DEBUG ' <<<"$stderr"
    run --separate-stderr sc -v doctor
    all_log_lines "$stderr"
    [[ "$stderr" == *"] DEBUG running restic version"* ]]
    rm "$DB"
    run --separate-stderr sc -q stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    all_log_lines "$stderr"
    [ "$(grep -c . <<<"$stderr")" -eq 1 ]
    [[ "$stderr" == *"] ERROR sqlite app: "* ]]
}

@test "usage errors keep the plain 'stagecoach: ' form" {
    run --separate-stderr "$SC" no-such-command
    [ "$status" -eq 2 ]
    [[ "$stderr" == "stagecoach: unknown command 'no-such-command'"* ]]
}

@test "on a terminal: progress lines with \\r, and log lines never share a line with them" {
    command -v script >/dev/null || skip "script (util-linux) is not installed"
    # script gives the command a pty; its output (both streams) lands in the file
    script -qec "$(printf '%q ' "$SC" -c "$CONF" stage) 2>&1" /dev/null >"$T/tty.out" </dev/null
    cat -v "$T/tty.out"
    grep -q $'\r\033\\[2Ksqlite app: checking and hashing the copy' "$T/tty.out"
    # strip every "\r ESC[2K" (which clears the line) and what it cleared:
    # each log line must start a line of its own
    local n=0 line
    while IFS= read -r line; do
        line="${line%$'\r'}" # the pty's own CR of CRLF
        line="${line##*$'\033'[2K}"
        case "$line" in
        *"] INFO "*)
            [[ "$line" =~ $LINE_RE ]] || { echo "interleaved: '$line'" | cat -v; return 1; }
            n=$((n + 1))
            ;;
        esac
    done <"$T/tty.out"
    [ "$n" -ge 3 ]
    # -q: no progress either
    script -qec "$(printf '%q ' "$SC" -q -c "$CONF" stage) 2>&1" /dev/null >"$T/tty-q.out" </dev/null
    refute grep -q 'checking and hashing the copy' "$T/tty-q.out"
}

# A syslog of our own: a mount namespace where /dev is a fresh tmpfs (with
# the device nodes stagecoach needs bound in) and /dev/log is a datagram
# socket of a small python3 listener that writes each message to a file.
# Runs "$@" (a stagecoach command line) there, then stops the listener once
# it has written every message.
with_private_syslog() {
    cat >"$T/listen.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        d = s.recv(65536)
        if d == b"--end--":  # datagrams arrive in order: all before it are written
            break
        f.write(d.replace(b"\n", b" ") + b"\n")
EOF
    : >"$T/syslog.out"
    # shellcheck disable=SC2016
    unshare -m bash -c '
        set -e
        T=$1; shift
        mkdir -p "$T/realdev"
        mount --make-rprivate /
        mount --rbind /dev "$T/realdev"
        mount -t tmpfs -o mode=755 tmpfs /dev
        for x in null zero full random urandom tty; do
            touch "/dev/$x"
            mount --bind "$T/realdev/$x" "/dev/$x"
        done
        ln -s /proc/self/fd /dev/fd
        python3 "$T/listen.py" /dev/log "$T/syslog.out" &
        p=$!
        while [ ! -S /dev/log ]; do sleep 0.05; done
        rc=0
        "$@" >"$T/cmd.out" 2>"$T/cmd.err" || rc=$?
        python3 -c "import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b\"--end--\", \"/dev/log\")"
        wait "$p"
        exit "$rc"
    ' sh "$T" "$@"
}

@test "syslog = yes: the same messages reach syslog with ident stagecoach and their priority" {
    [ "$(id -u)" -eq 0 ] || skip "needs root (a mount namespace with its own /dev/log)"
    command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
    unshare -m true 2>/dev/null || skip "unshare -m is not permitted here"
    printf '\n[run]\nsyslog = yes\nsyslog_facility = local3\n' >>"$CONF"
    run with_private_syslog "$SC" -c "$CONF" -v stage
    cat "$T/syslog.out"
    [ "$status" -eq 0 ]
    # local3 is facility 19: <19*8 + severity>; info 6 -> 158, debug 7 -> 159
    grep -Eq '^<158>.* stagecoach\[[0-9]+\]: staged set '"$STAGING"'/sets/' "$T/syslog.out"
    # without the time stamp of the stderr line, same text
    local msg
    msg="$(sed -n 's/^\[[^]]*\] INFO \(staged set .*\)$/\1/p' "$T/cmd.err")"
    [ -n "$msg" ]
    grep -Fq "stagecoach[" "$T/syslog.out"
    grep -Fq "]: $msg" "$T/syslog.out"
    refute grep -q '\] INFO' "$T/syslog.out"
    # the same count of messages in both places
    [ "$(grep -c . "$T/syslog.out")" -eq "$(grep -c . "$T/cmd.err")" ]
    run with_private_syslog "$SC" -c "$CONF" -v doctor
    [ "$status" -eq 0 ]
    grep -Eq '^<159>.* stagecoach\[[0-9]+\]: running restic version' "$T/syslog.out"

    # a failure: LOG_ERR (3) -> 155; the default facility daemon (3): 27
    rm "$DB"
    run with_private_syslog "$SC" -c "$CONF" stage
    [ "$status" -eq 4 ]
    grep -Eq '^<155>.* stagecoach\[[0-9]+\]: sqlite app: ' "$T/syslog.out"
    sed -i '/^syslog_facility/d' "$CONF"
    run with_private_syslog "$SC" -c "$CONF" stage
    [ "$status" -eq 4 ]
    grep -Eq '^<27>.* stagecoach\[[0-9]+\]: sqlite app: ' "$T/syslog.out"
}

@test "syslog off (the default): nothing reaches /dev/log" {
    [ "$(id -u)" -eq 0 ] || skip "needs root (a mount namespace with its own /dev/log)"
    command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
    unshare -m true 2>/dev/null || skip "unshare -m is not permitted here"
    run with_private_syslog "$SC" -c "$CONF" -v stage
    [ "$status" -eq 0 ]
    grep -q '] INFO staged set' "$T/cmd.err"
    [ ! -s "$T/syslog.out" ]
}

@test "syslog_facility must be a known facility; STAGECOACH_RUN_SYSLOG works" {
    printf '\n[run]\nsyslog_facility = kern\n' >>"$CONF"
    run --separate-stderr sc config check
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"syslog_facility: expected daemon, user or local0..local7"* ]]
    sed -i 's/^syslog_facility = kern/syslog_facility = local7/' "$CONF"
    STAGECOACH_RUN_SYSLOG=yes run --separate-stderr sc config show
    [ "$status" -eq 0 ]
    [[ "$output" == *"syslog = yes"* ]]
    [[ "$output" == *"syslog_facility = local7"* ]]
}

@test "on a terminal, a long hash shows its progress (verify of a 64 GB file, stopped after 2 s)" {
    command -v script >/dev/null || skip "script (util-linux) is not installed"
    run --separate-stderr "$SC" -c "$CONF" stage
    [ "$status" -eq 0 ]
    local set
    set="$(tail -n 1 <<<"$output")"
    fake_big_file "$set" sqlite/app.db 64G
    script -qec "$(printf '%q ' timeout -s INT 2 "$SC" -c "$CONF" verify --set "$(basename "$set")") 2>&1" \
        /dev/null >"$T/tty.out" </dev/null || true
    cat -v "$T/tty.out"
    grep -Eq $'\r\033\\[2Khashing sqlite/app.db: [0-9]+/68719 MB' "$T/tty.out"
    grep -q 'interrupted while hashing' "$T/tty.out"
    # without a terminal: the same verify, no progress line
    timeout -s INT 2 "$SC" -c "$CONF" verify --set "$(basename "$set")" 2>"$T/plain.err" || true
    grep -q 'interrupted while hashing' "$T/plain.err"
    refute grep -q 'hashing sqlite/app.db:' "$T/plain.err"
}
