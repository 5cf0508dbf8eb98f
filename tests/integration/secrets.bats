#!/usr/bin/env bats
# Secrets stay secret (design §2). While runs execute, every process's
# /proc/PID/cmdline and /proc/PID/environ is sampled every 2 ms
# (tests/helpers/procscan.c) for distinctive random secrets:
#
#   restic password (password_file)   nowhere, ever (restic reads the file)
#   MySQL password (password_file)    nowhere, ever (read in-process)
#   repository URL credential         only in restic's own environment
#   env_file secret (AWS_SECRET_...)  only in restic's own environment, and
#                                     it must be there (restic needs it)
#   an inherited MYSQL_PWD / RESTIC_PASSWORD
#                                     only in stagecoach's own environment:
#                                     never handed to restic or a hook
#
# and no argv ever holds any of them. Logs (-v), --json reports, state,
# status, config show and error messages hold none of them either. A
# password file or env_file readable by group or others is refused (exit 3).
#
# The secrets never reach an argv of the test itself: they are generated
# into shell variables and written with builtins and here-documents.

load helpers

MARIADB_SCRIPT="$SC_ROOT/scripts/test-mariadb.sh"
REST_SCRIPT="$SC_ROOT/scripts/test-rest.sh"

setup_file() {
    # A REST server (rclone serve restic) for a repository URL with a
    # credential in it, and a MariaDB server with a password-protected user.
    SEC_DIR="$(mktemp -d /tmp/scsec.XXXXXX)"
    export SEC_DIR
    if command -v rclone >/dev/null; then
        "$REST_SCRIPT" start "$SEC_DIR/rest" >/dev/null 3>&-
    fi
    if command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; then
        "$MARIADB_SCRIPT" start "$SEC_DIR/my" 3>&-
        # the password goes to the client on stdin, never on its argv
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"$SEC_DIR/my.pass")
        local pw
        pw="$(cat "$SEC_DIR/my.pass")"
        mariadb --no-defaults -S "$SEC_DIR/my/sock" -uroot <<SQL
CREATE DATABASE secdb;
CREATE TABLE secdb.t (id INT PRIMARY KEY, v VARCHAR(20));
INSERT INTO secdb.t VALUES (1, 'one'), (2, 'two');
CREATE USER 'scsec'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL ON secdb.* TO 'scsec'@'localhost';
GRANT RELOAD ON *.* TO 'scsec'@'localhost';
SQL
    fi
}

teardown_file() {
    [ -d "$SEC_DIR/rest" ] && "$REST_SCRIPT" stop "$SEC_DIR/rest" || true
    [ -d "$SEC_DIR/my" ] && "$MARIADB_SCRIPT" stop "$SEC_DIR/my" || true
    rm -rf "$SEC_DIR"
}

# A random word; never on any argv (od and tr see only bytes on stdin).
secret() {
    head -c 15 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

setup() {
    sc_setup
    PROCSCAN="$(sc_helper procscan)"
    RPASS="$(cat "$PASS")"
    URLUSER="scuser$(secret | head -c 8)"
    URLSECRET="urlpw$(secret)"
    ENVSECRET="envpw$(secret)"
    INHERITED="inhpw$(secret)"
    MYPASS=""
    [ -f "$SEC_DIR/my.pass" ] && MYPASS="$(cat "$SEC_DIR/my.pass")"
    # What the hooks are called with: proves the sampler saw them.
    HOOKMARK="hookmark$(secret | head -c 8)"
    {
        printf 'AWS_ACCESS_KEY_ID=scaccess\n'
        printf 'AWS_SECRET_ACCESS_KEY=%s\n' "$ENVSECRET"
    } >"$T/restic.env"
    chmod 600 "$T/restic.env"
    cp "$SEC_DIR/my.pass" "$T/my.pass" 2>/dev/null || printf 'unused\n' >"$T/my.pass"
    chmod 600 "$T/my.pass"
    cat >"$T/hook.sh" <<'EOF'
#!/bin/sh
# a hook that lives long enough to be sampled
sleep 0.3
EOF
    chmod 700 "$T/hook.sh"
    {
        printf 'RPASS %s\n' "$RPASS"
        printf 'URLUSER %s\n' "$URLUSER"
        printf 'URLSECRET %s\n' "$URLSECRET"
        printf 'ENVSECRET %s\n' "$ENVSECRET"
        printf 'INHERITED %s\n' "$INHERITED"
        printf 'HOOKMARK %s\n' "$HOOKMARK"
        [ -n "$MYPASS" ] && printf 'MYPASS %s\n' "$MYPASS"
    } >"$T/needles"
    chmod 600 "$T/needles"
}

teardown() {
    [ -n "${SCAN_PID:-}" ] && touch "$T/scan.stop"
    sc_teardown
}

need_rest() {
    [ -s "$SEC_DIR/rest/url" ] || skip "no REST server (rclone) for a repository URL with a credential"
}

need_mysql() {
    [ -n "$MYPASS" ] || skip "no MariaDB server"
}

# The config of a run with every kind of secret: a MySQL source with a
# password file (when a server is there), a repository URL with a
# credential, an env_file, hooks. $1: the repository URL (default: a new
# repository on the REST server, with the credential).
write_secret_conf() {
    local url=${1:-}
    if [ -z "$url" ]; then
        local base
        base="$(cat "$SEC_DIR/rest/url")"
        url="${base%%://*}://$URLUSER:$URLSECRET@${base#*://}/repo-$BATS_TEST_NUMBER-$RANDOM/"
    fi
    cat >"$CONF" <<EOF
[staging]
dir = staging

[sqlite app]
path = db/app.db

[paths etc]
path = $CFGDIR

[restic]
repository = $url
password_file = restic.pass
env_file = restic.env
host = $HOSTNAME_CONF
init = yes

[hooks]
before_stage = $T/hook.sh before-stage $HOOKMARK
after_stage = $T/hook.sh after-stage
on_success = $T/hook.sh on-success
on_failure = $T/hook.sh on-failure
EOF
    if [ -n "$MYPASS" ]; then
        cat >>"$CONF" <<EOF

[mysql db]
socket = $SEC_DIR/my/sock
user = scsec
password_file = my.pass
database = secdb
EOF
    fi
}

# Hits of a needle, as "where argv0" lines.
hits() {
    sed -n "s/^hit needle=$1 where=\([a-z]*\) pid=[0-9]* argv0=\(.*\)$/\1 \2/p" "$T/scan.out" | sort -u
}

# None of the secrets in the given files (or stdin with -).
no_secret_in() {
    local f v name bad=0
    for f in "$@"; do
        while read -r name v; do
            [ "$name" = HOOKMARK ] && continue
            if grep -qF -- "$v" "$f" 2>/dev/null || { [ "$f" = - ] && grep -qF -- "$v"; }; then
                echo "$name found in $f" >&2
                bad=1
            fi
        done <"$T/needles"
    done
    return $bad
}

# The sampled processes obeyed the rules in this file's header. $1: yes
# (restic ran and must have had the env_file secret), ran (restic ran),
# none (the run failed before restic).
check_scan() {
    local expect_restic=$1
    # never on any argv
    [ -z "$(grep '^hit needle=[A-Z]* where=cmdline' "$T/scan.out" | grep -v 'needle=HOOKMARK')" ]
    # the passwords read from files (and any other needle not named
    # below): nowhere
    [ -z "$(hits RPASS)" ]
    [ -z "$(hits MYPASS)" ]
    [ -z "$(grep '^hit ' "$T/scan.out" |
        grep -vE '^hit needle=(URLSECRET|URLUSER|ENVSECRET|INHERITED|HOOKMARK) ')" ]
    # the URL credential and the env_file secret: restic's environment only
    [ -z "$(hits URLSECRET | grep -v '^environ restic$')" ]
    [ -z "$(hits URLUSER | grep -v '^environ restic$')" ]
    [ -z "$(hits ENVSECRET | grep -v '^environ restic$')" ]
    # an inherited secret: stagecoach's own environment only
    [ -z "$(hits INHERITED | grep -v '^environ stagecoach$')" ]
    # the sampler saw the processes that matter
    grep -q '^seen argv0=stagecoach$' "$T/scan.out"
    [ "$(hits HOOKMARK)" = "cmdline sh" ]
    if [ "$expect_restic" != none ]; then
        grep -q '^seen argv0=restic$' "$T/scan.out"
    fi
    if [ "$expect_restic" = yes ]; then
        # restic did get its backend credentials
        [ "$(hits ENVSECRET)" = "environ restic" ]
    fi
}

# stagecoach with an inherited MYSQL_PWD and RESTIC_PASSWORD (a leftover in
# the operator's shell): in its environment only, not in the test's.
sc_inheriting() {
    MYSQL_PWD="$INHERITED" RESTIC_PASSWORD="$INHERITED" "$SC" -c "$CONF" "$@"
}

# `sc -v --json ARGS` under the sampler, inheriting those.
sampled() {
    scan_start
    run --separate-stderr sc_inheriting -v --json "$@"
    scan_stop
    printf '%s\n' "$output" >"$T/out.json"
    printf '%s\n' "$stderr" >"$T/err.log"
    echo "exit $status; stderr:"
    cat "$T/err.log"
}

@test "a run with every kind of secret, sampled every 2 ms: no secret on any argv, each only where it must be" {
    need_rest
    write_secret_conf
    sampled run
    [ "$status" -eq 0 ]
    check_scan yes
    grep '^scans=' "$T/scan.out"
    # the -v log, the JSON report, the staging directory (manifest, state)
    no_secret_in "$T/out.json" "$T/err.log"
    [ -z "$(grep -rlF -f <(cut -d' ' -f2- "$T/needles") "$STAGING")" ]
    [ "$(pyjson "$T/out.json" 'j["status"]')" = success ]
    # the MySQL dump really happened with that password
    if [ -n "$MYPASS" ]; then
        grep -rq "'two'" "$STAGING"/sets/*/mysql/db/
    fi
    # status, snapshots and config show, too
    run --separate-stderr sc status
    [ "$status" -eq 0 ]
    no_secret_in - <<<"$output $stderr"
    run --separate-stderr sc --json snapshots
    [ "$status" -eq 0 ]
    no_secret_in - <<<"$output $stderr"
    run --separate-stderr sc config show
    [ "$status" -eq 0 ]
    echo "$output"
    no_secret_in - <<<"$output $stderr"
    [[ "$output" == *"@127.0.0.1:"* ]]
    [[ "$output" == *"env_file = $T/restic.env"* ]]
}

@test "failing runs (wrong restic password, backend down, wrong MySQL password): the errors, reports and hooks hold no secret" {
    need_rest
    write_secret_conf
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    local good
    good="$(cat "$PASS")"

    # a wrong restic password: exit 6
    secret >"$PASS"
    printf 'WRONGPASS %s\n' "$(cat "$PASS")" >>"$T/needles"
    sampled run
    [ "$status" -eq 6 ]
    [[ "$stderr" == *"wrong password"* ]]
    check_scan ran
    no_secret_in "$T/out.json" "$T/err.log" "$STAGING/state.json"
    printf '%s\n' "$good" >"$PASS"

    # the backend down (nothing listens on port 9): exit 6, with the URL
    # in the message but not its credential
    write_secret_conf "rest:http://$URLUSER:$URLSECRET@127.0.0.1:9/repo/"
    sampled run
    [ "$status" -eq 6 ]
    [[ "$stderr" == *"127.0.0.1:9"* ]]
    check_scan ran
    no_secret_in "$T/out.json" "$T/err.log" "$STAGING/state.json"

    # MySQL with a wrong password: exit 4
    if [ -n "$MYPASS" ]; then
        write_secret_conf
        secret >"$T/my.pass"
        printf 'WRONGMY %s\n' "$(cat "$T/my.pass")" >>"$T/needles"
        sampled run
        [ "$status" -eq 4 ]
        [[ "$stderr" == *"scsec"* ]]
        check_scan none
        no_secret_in "$T/out.json" "$T/err.log" "$STAGING/state.json"
    fi
}

# $1: file, $2: mode, then the command. Exit 3 naming the file, its content
# in no output, nothing shipped.
refused() {
    local file=$1 mode=$2
    shift 2
    chmod "$mode" "$file"
    run --separate-stderr "$@"
    echo "$file $mode: exit $status: $stderr"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"$file"* ]]
    [[ "$stderr" == *"group or others"* ]]
    no_secret_in - <<<"$output $stderr"
    chmod 600 "$file"
}

@test "a password file or env_file readable by group or others is refused (exit 3), and nothing is shipped" {
    sed -i 's|^password_file = restic.pass$|password_file = restic.pass\nenv_file = restic.env|' "$CONF"
    grep -q '^env_file = restic.env$' "$CONF"
    local mode
    for mode in 640 604; do
        refused "$PASS" "$mode" sc run
        refused "$T/restic.env" "$mode" sc run
        refused "$PASS" "$mode" sc --json ship
    done
    # nothing reached the repository: it was never even created
    [ ! -e "$REPO" ]
    # and with the modes fixed, the same config works (the sets staged by
    # the refused runs are not shipped now: only the new one)
    rm -rf "${STAGING:?}"/sets/*
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    rst snapshots --json >"$T/snaps.json"
    [ "$(pyjson "$T/snaps.json" 'len(j)')" -ge 1 ]
}

@test "a MySQL password file readable by group or others is refused (exit 3) before any connection" {
    # no server is needed to refuse it
    cat >>"$CONF" <<EOF

[mysql db]
host = 127.0.0.1
port = 9
user = nobody
password_file = my.pass
database = secdb
EOF
    secret >"$T/my.pass"
    printf 'MYFILE %s\n' "$(cat "$T/my.pass")" >>"$T/needles"
    local mode
    for mode in 640 604; do
        refused "$T/my.pass" "$mode" sc stage
    done
    [ -z "$(sc_sets)" ]
    # private, the server (none on port 9) is what fails: exit 4, no password
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    no_secret_in - <<<"$output $stderr"
}

@test "a repository URL credential never shows in config show, config check problems or --json reports" {
    sed -i "s|^repository = .*|repository = rest:https://$URLUSER:$URLSECRET@backup.example.invalid:8000/r/|" "$CONF"
    run --separate-stderr sc config show
    [ "$status" -eq 0 ]
    no_secret_in - <<<"$output $stderr"
    [[ "$output" == *"backup.example.invalid:8000/r/"* ]]
    run --separate-stderr sc --json config show
    no_secret_in - <<<"$output $stderr"
    # a problem elsewhere in the same section: the report lists problems
    sed -i 's|^init = yes$|init = perhaps|' "$CONF"
    run --separate-stderr sc --json config check
    [ "$status" -eq 3 ]
    no_secret_in - <<<"$output $stderr"
    # from the environment, in a problem about that very key
    STAGECOACH_RESTIC_REPOSITORY="rest:https://$URLUSER:$URLSECRET@h.invalid/" \
        run --separate-stderr sc --json config check
    [ "$status" -eq 3 ]
    no_secret_in - <<<"$output $stderr"
}
