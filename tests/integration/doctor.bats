#!/usr/bin/env bats
# doctor: pre-flight checks against the real restic, a real repository and
# real sources. Each assertion names the check line, not only the exit code.

load helpers

setup_file() {
    template_repo_make
}

setup() {
    sc_setup
    template_repo_use
}

teardown() {
    sc_teardown
    if [ -n "${MY_DIR:-}" ]; then
        "$SC_ROOT/scripts/test-mariadb.sh" stop "$MY_DIR" || true
        rm -rf "$MY_DIR"
    fi
}

# The line of check $1 in $output ("STATUS NAME: message").
check_line() {
    printf '%s\n' "$output" | grep -E "^(OK|WARN|FAIL) +$1: "
}

# Every file under $T (but restic's cache) with size, mode and mtime, and
# every directory's name. Not compared here: directory mtimes (the healthy
# test checks repo/locks' own: no lock taken) and the -shm file a
# reader of a WAL database maps (readers write their marks there).
tree_state() {
    find "$T" -path "$T/cache" -prune -o \( -type f ! -name '*-shm' -printf '%p %s %m %T@\n' \) \
        -o -printf '%p\n' | LC_ALL=C sort
}

@test "a healthy setup: every check OK, exit 0, and nothing changed" {
    run -0 --separate-stderr sc stage
    tree_state >"$T/state.before"
    local locks_before
    locks_before=$(stat -c %y "$REPO/locks")
    run --separate-stderr sc doctor
    echo "$output"
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$(check_line 'secret restic password_file')" == "OK "* ]]
    [[ "$(check_line restic)" =~ ^OK\ +restic:\ restic\ [0-9]+\.[0-9]+\.[0-9]+ ]]
    # which restic: its version and where it was found on PATH
    [[ "$(check_line restic)" == *"$(restic version | cut -d' ' -f2) ($(command -v restic))" ]]
    [[ "$(check_line repository)" == "OK "*"password accepted"* ]]
    [[ "$(check_line 'sqlite app')" == "OK "*"opens read-only"*"WAL journal"* ]]
    [[ "$(check_line 'paths etc')" == "OK "*"1 path readable"* ]]
    [[ "$(check_line staging)" == "OK "*"mode 0700"* ]]
    [[ "$(check_line disk)" == "OK "*"latest set $(sc_sets | tail -n 1)"* ]]
    refute grep -Eq '^(WARN|FAIL) ' <<<"$output"
    [[ "$output" == *"doctor: 7 OK, 0 WARN, 0 FAIL"* ]]
    [ -z "$stderr" ]
    # dry by nature: no file added, removed or touched (no -wal, no lock)
    tree_state >"$T/state.after"
    diff <(grep -v '/state\.' "$T/state.before") <(grep -v '/state\.' "$T/state.after")
    # not even a lock taken and removed again in the repository
    [ "$(stat -c %y "$REPO/locks")" = "$locks_before" ]
}

@test "a WAL database without -wal and -shm files: read without creating them" {
    [ "$(od -An -j18 -N2 -tu1 "$DB" | tr -s ' ')" = ' 2 2' ]  # the header says WAL
    [ ! -e "$DB-wal" ]
    [ ! -e "$DB-shm" ]
    run --separate-stderr sc doctor
    [ "$status" -eq 0 ]
    [[ "$(check_line 'sqlite app')" == "OK "*"5 tables, WAL journal"* ]]
    [ ! -e "$DB-wal" ]
    [ ! -e "$DB-shm" ]
}

@test "--json: the same checks as a report" {
    run -0 --separate-stderr sc stage
    run --separate-stderr sc --json doctor
    [ "$status" -eq 0 ]
    printf '%s\n' "$output" >"$T/report.json"
    [ "$(pyjson "$T/report.json" 'j["command"]')" = doctor ]
    [ "$(pyjson "$T/report.json" 'j["status"]')" = success ]
    [ "$(pyjson "$T/report.json" '" ".join(c["check"] for c in j["checks"])')" = \
        "secret restic password_file restic repository sqlite app paths etc staging disk" ]
    [ "$(pyjson "$T/report.json" 'sorted(set(c["status"] for c in j["checks"]))')" = '["ok"]' ]
    [ "$(pyjson "$T/report.json" 'j["summary"]')" = '{"ok": 7, "warn": 0, "fail": 0}' ]
}

@test "restic missing from PATH: exit 6, the restic line names it" {
    mkdir -p "$T/emptybin"
    run --separate-stderr env PATH="$T/emptybin" "$SC" -c "$CONF" doctor
    echo "$output"
    echo "$stderr"
    [ "$status" -eq 6 ]
    [[ "$(check_line restic)" == "FAIL "*"restic not found"*"[restic] binary"* ]]
    [[ "$(check_line repository)" == "FAIL "*"not checked"* ]]
    # the other checks still ran
    [[ "$(check_line 'sqlite app')" == "OK "* ]]
    [[ "$stderr" == *"] ERROR doctor: 2 checks failed; first: restic: restic not found"* ]]
}

@test "wrong repository password: exit 6 on the repository line" {
    (umask 077 && echo not-the-password >"$PASS")
    run --separate-stderr sc doctor
    echo "$output"
    [ "$status" -eq 6 ]
    [[ "$(check_line restic)" == "OK "* ]]
    [[ "$(check_line repository)" == "FAIL "*"wrong password"* ]]
    [[ "$output" != *not-the-password* ]]
}

@test "a missing repository: FAIL with init = no, WARN with init = yes; never created" {
    rm -rf "$REPO"
    run --separate-stderr sc doctor
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$(check_line repository)" == "WARN "*"the next run creates it (init = yes)"* ]]
    [ ! -e "$REPO" ]
    sed -i 's/^init = yes/init = no/' "$CONF"
    run --separate-stderr sc doctor
    [ "$status" -eq 6 ]
    [[ "$(check_line repository)" == "FAIL "*"repository not found"* ]]
    [ ! -e "$REPO" ]
}

@test "SQLite path missing: exit 4 on the sqlite line" {
    sed -i 's|^path = db/app.db|path = db/missing.db|' "$CONF"
    run --separate-stderr sc doctor
    echo "$output"
    [ "$status" -eq 4 ]
    [[ "$(check_line 'sqlite app')" == "FAIL "*"missing.db"*"No such file"* ]]
    [ ! -e "$T/db/missing.db" ]
}

@test "a file that is not a SQLite database: exit 4" {
    printf 'not a database at all, but long enough to have a header: %0100d\n' 0 >"$DB"
    run --separate-stderr sc doctor
    [ "$status" -eq 4 ]
    [[ "$(check_line 'sqlite app')" == "FAIL "*"not a SQLite database"* ]]
}

@test "an unreadable path of a [paths] source: exit 4 naming it" {
    sed -i "s|^path = $T/etc/app\$|path = $T/etc/app\npath = $T/etc/gone|" "$CONF"
    run --separate-stderr sc doctor
    echo "$output"
    [ "$status" -eq 4 ]
    [[ "$(check_line 'paths etc')" == "FAIL "*"1 of 2 paths not readable, first $T/etc/gone: No such file"* ]]
}

@test "a world-readable password file: exit 3 on its secret line" {
    chmod 644 "$PASS"
    run --separate-stderr sc doctor
    echo "$output"
    [ "$status" -eq 3 ]
    [[ "$(check_line 'secret restic password_file')" == "FAIL "*"accessible by group or others (mode 0644); chmod 600 it"* ]]
    # restic itself still answers; the repository is not opened with it
    [[ "$(check_line restic)" == "OK "* ]]
    [[ "$(check_line repository)" == "FAIL "* ]]
}

@test "staging dir with mode 0755: a warning, exit 0; a missing one: a warning, not created" {
    run --separate-stderr sc doctor
    [ "$status" -eq 0 ]
    [[ "$(check_line staging)" == "WARN "*"does not exist yet"* ]]
    [ ! -e "$STAGING" ]
    mkdir -m 0755 "$STAGING"
    run --separate-stderr sc doctor
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$(check_line staging)" == "WARN "*"mode 0755"*"chmod 700 $STAGING"* ]]
}

@test "a staging path that is a file: exit 5" {
    touch "$STAGING"
    run --separate-stderr sc doctor
    [ "$status" -eq 5 ]
    [[ "$(check_line staging)" == "FAIL "*"not a directory"* ]]
}

@test "low disk space on a small tmpfs: FAIL below 1x the latest set (exit 5), WARN below 1.2x" {
    [ "$(id -u)" -eq 0 ] || skip "needs root (mounts a tmpfs in a private mount namespace)"
    command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
    unshare -m true 2>/dev/null || skip "unshare -m is not permitted here"
    mkdir -m 0700 "$STAGING"
    # A 4 MiB tmpfs as the staging dir; in it a set of $1 bytes.
    doctor_on_tmpfs() {
        # shellcheck disable=SC2016
        unshare -m bash -c '
            set -e
            mount --make-rprivate /
            mount -t tmpfs -o size=4m,mode=0700 tmpfs "$1"
            mkdir -p "$1/sets/20261127T000000Z"
            head -c "$2" /dev/zero >"$1/sets/20261127T000000Z/big"
            "$3" -c "$4" doctor
        ' sh "$STAGING" "$1" "$SC" "$CONF"
    }
    run --separate-stderr doctor_on_tmpfs 3145728
    echo "$output"
    [ "$status" -eq 5 ]
    [[ "$(check_line disk)" == "FAIL "*"less than the latest set 20261127T000000Z"*"3145728 bytes)"* ]]
    run --separate-stderr doctor_on_tmpfs 2000000
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$(check_line disk)" == "WARN "*"less than 1.2 x the latest set 20261127T000000Z"*"2000000 bytes)"* ]]
    # the tmpfs went with the namespace: nothing is left in the real staging dir
    [ -z "$(ls -A "$STAGING")" ]
}

@test "doctor takes no options but the global ones" {
    run --separate-stderr sc doctor --bogus
    [ "$status" -eq 2 ]
}

# ---- MySQL: a private MariaDB server (scripts/test-mariadb.sh) -------------------

my_root() { mariadb --no-defaults -S "$MY_DIR/sock" -uroot "$@"; }

# Replace the config's sources by one [mysql db] section as USER ($1).
mysql_conf() {
    sed -i '/^\[sqlite app\]\|^\[mysql db\]/,/^\[restic\]/{/^\[restic\]/!d}' "$CONF"
    sed -i "s|^\[restic\]|[mysql db]\nsocket = $MY_DIR/sock\nuser = $1\npassword_file = my.pass\ndatabase = ${2:-app}\n\n[restic]|" "$CONF"
}

@test "mysql: connects and reads; an account without RELOAD warns; wrong password or database fail with 4" {
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || skip "mariadbd not installed"
    MY_DIR="$(mktemp -d /tmp/scdoc.XXXXXX)" # short: a socket path is limited to 107 bytes
    "$SC_ROOT/scripts/test-mariadb.sh" start "$MY_DIR"
    local pw='doc-Pa55-w0rd'
    my_root <<SQL
CREATE DATABASE app;
CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB;
CREATE USER 'full'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL ON *.* TO 'full'@'localhost';
CREATE USER 'noreload'@'localhost' IDENTIFIED BY '$pw';
GRANT SELECT, SHOW VIEW, LOCK TABLES ON app.* TO 'noreload'@'localhost';
SQL
    (umask 077 && printf '%s\n' "$pw" >"$T/my.pass")
    mysql_conf full
    cat "$CONF"
    run --separate-stderr sc doctor
    echo "$output"
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$(check_line 'secret mysql db password_file')" == "OK "* ]]
    [[ "$(check_line 'mysql db')" == "OK "*"connects and reads, RELOAD granted"* ]]

    mysql_conf noreload
    run --separate-stderr sc doctor
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$(check_line 'mysql db')" == "WARN "*"lacks RELOAD"*"would not be locked"* ]]

    mysql_conf full nosuchdb
    run --separate-stderr sc doctor
    [ "$status" -eq 4 ]
    [[ "$(check_line 'mysql db')" == "FAIL "*"database 'nosuchdb' does not exist"* ]]

    mysql_conf full
    (umask 077 && echo wrong >"$T/my.pass")
    run --separate-stderr sc doctor
    echo "$output"
    [ "$status" -eq 4 ]
    [[ "$(check_line 'mysql db')" == "FAIL "*"cannot connect"*"Access denied"* ]]
    [[ "$output" != *"$pw"* ]]

    chmod 644 "$T/my.pass"
    run --separate-stderr sc doctor
    [ "$status" -eq 3 ]
    [[ "$(check_line 'secret mysql db password_file')" == "FAIL "*"mode 0644"* ]]
}
