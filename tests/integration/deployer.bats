#!/usr/bin/env bats
# The Torrust deployer's backup container, switched to stagecoach: no
# stagecoach config, /etc/backup/backup.conf in the deployer's format, its
# compose mounts (docs/torrust.md):
#
#   ./storage/backup/etc  -> /etc/backup    (ro: backup.conf, backup-paths.txt)
#   ./storage             -> /data/storage  (ro)
#   ./storage/backup      -> /backups       (the staging directory)
#
# The default paths themselves are exercised, without touching the
# machine's /etc: each stagecoach runs chrooted into a root of its own, made
# in a private mount namespace (unshare -m): the machine's directories bound
# in, a copy of /etc (without any /etc/stagecoach/stagecoach.conf), and the
# mounts above. Needs root and unshare; skipped otherwise. A SQLite case, a
# MySQL case against a private MariaDB (scripts/test-mariadb.sh) sampled by
# tests/helpers/procscan for the password, and the refusals.

load helpers

MARIADB_SCRIPT="$SC_ROOT/scripts/test-mariadb.sh"

setup_file() {
    [ "$(id -u)" -eq 0 ] || skip "needs root: a private mount namespace over /etc/backup, /data, /backups"
    command -v unshare >/dev/null || skip "unshare (util-linux) not installed"
    unshare -m --propagation private true 2>/dev/null ||
        skip "unshare -m is not permitted here (no CAP_SYS_ADMIN): cannot mount over /etc/backup, /data, /backups"
    DEP_DIR="$(mktemp -d /tmp/scdep.XXXXXX)"
    export DEP_DIR
    # The container's /etc: the machine's, less any stagecoach config (its
    # presence would win over backup.conf) and any /etc/backup.
    cp -a /etc "$DEP_DIR/etc"
    rm -rf "$DEP_DIR/etc/stagecoach" "$DEP_DIR/etc/backup"
    mkdir "$DEP_DIR/etc/backup" "$DEP_DIR/root"
    write_ns_script >"$DEP_DIR/ns.sh"
    if command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; then
        "$MARIADB_SCRIPT" start "$DEP_DIR/my" 3>&-
        (umask 077 && printf 'dp-%s $x"y %s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
            "$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$DEP_DIR/my.pass")
        local pw
        pw="$(cat "$DEP_DIR/my.pass")"
        # the password reaches the server on stdin, never on an argv
        mariadb --no-defaults -S "$DEP_DIR/my/sock" -uroot <<SQL
CREATE DATABASE torrust_tracker;
CREATE TABLE torrust_tracker.torrents (id INT PRIMARY KEY, info_hash CHAR(40) NOT NULL UNIQUE, completed INT NOT NULL);
CREATE TABLE torrust_tracker.whitelist (id INT PRIMARY KEY AUTO_INCREMENT, info_hash CHAR(40) NOT NULL);
CREATE TABLE torrust_tracker.\`keys\` (id INT PRIMARY KEY, \`key\` VARCHAR(32) NOT NULL, valid_until BIGINT NULL);
INSERT INTO torrust_tracker.torrents SELECT seq, LPAD(HEX(seq * 2654435761), 40, '0'), seq % 97 FROM torrust_tracker.seq_1_to_2500;
INSERT INTO torrust_tracker.whitelist (info_hash) SELECT info_hash FROM torrust_tracker.torrents WHERE id % 10 = 0;
INSERT INTO torrust_tracker.\`keys\` VALUES (1, 'k1', 1893456000), (2, 'k2 ''quoted''', NULL);
CREATE USER 'tracker'@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL ON *.* TO 'tracker'@'127.0.0.1';
SQL
    fi
}

teardown_file() {
    [ -n "${DEP_DIR:-}" ] || return 0
    [ -d "$DEP_DIR/my" ] && "$MARIADB_SCRIPT" stop "$DEP_DIR/my" || true
    rm -rf "$DEP_DIR"
}

# The namespace's set-up, run by unshare -m in a private namespace: a root
# on a tmpfs, the machine's top-level directories bound in (not /etc), the
# /etc copy, then the deployer's mounts; then chroot into it and run the
# command. Arguments: DEP_DIR, the deployment directory, the command.
write_ns_script() {
    cat <<'EOF'
#!/bin/bash
set -euo pipefail
DEP_DIR=$1 deploy=$2
shift 2
root=$DEP_DIR/root
mount -t tmpfs -o mode=0755 stagecoach-test-root "$root"
for e in /*; do
    n=${e#/}
    case $n in etc | data | backups | proc | sys | dev | lost+found) continue ;; esac
    if [ -L "$e" ]; then
        ln -s "$(readlink "$e")" "$root/$n"
    elif [ -d "$e" ]; then
        mkdir "$root/$n"
        mount --bind "$e" "$root/$n"
    fi
done
for n in proc sys dev; do
    mkdir "$root/$n"
    mount --rbind "/$n" "$root/$n"
done
mkdir "$root/etc" "$root/data" "$root/data/storage" "$root/backups"
mount --bind "$DEP_DIR/etc" "$root/etc"
mount --bind "$deploy/storage/backup/etc" "$root/etc/backup"
mount -o remount,bind,ro "$root/etc/backup"
mount --bind "$deploy/storage" "$root/data/storage"
mount -o remount,bind,ro "$root/data/storage"
mount --bind "$deploy/storage/backup" "$root/backups"
exec chroot "$root" "$@"
EOF
}

setup() {
    sc_setup
    PROCSCAN="$(sc_helper procscan)"
    D="$T/deploy" # the deployment directory (/opt/torrust on a real host)
    mkdir -p "$D/storage/tracker/etc" "$D/storage/tracker/lib/database" \
        "$D/storage/prometheus/etc" "$D/storage/backup/etc"
    printf '[core]\nlisten = "0.0.0.0:6969"\n' >"$D/storage/tracker/etc/tracker.toml"
    printf 'scrape_configs: []\n' >"$D/storage/prometheus/etc/prometheus.yml"
    TRACKER_DB="$D/storage/tracker/lib/database/sqlite3.db"
    sc_make_db "$TRACKER_DB"
    cat >"$D/storage/backup/etc/backup-paths.txt" <<'EOF'
# Paths to back up (the deployer's backup-paths.txt)
/data/storage/tracker/etc
/data/storage/prometheus/etc/prometheus.yml
EOF
    cp "$PASS" "$D/storage/backup/etc/restic.pass"
    chmod 600 "$D/storage/backup/etc/restic.pass"
    BACKUPS="$D/storage/backup"
}

teardown() {
    [ -n "${SCAN_PID:-}" ] && touch "$T/scan.stop"
    sc_teardown
}

# backup.conf (mode $1), the rest of it on stdin after the common lines.
write_backup_conf() {
    local mode=$1 f="$D/storage/backup/etc/backup.conf"
    {
        printf '# Backup configuration (Torrust deployer format)\n'
        printf 'BACKUP_RETENTION_DAYS=7\n'
        printf 'BACKUP_PATHS_FILE=/etc/backup/backup-paths.txt\n'
        printf 'RESTIC_REPOSITORY=%s\n' "$REPO"
        printf 'RESTIC_PASSWORD_FILE=/etc/backup/restic.pass\n'
        cat
    } >"$f"
    chmod "$mode" "$f"
}

# stagecoach in the deployer's container: no -c, a clean environment (but
# for the sanitizers' options, when `make sanitize` runs this).
in_container() {
    local -a keep=()
    local v
    for v in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; do
        [ -n "${!v:-}" ] && keep+=("$v=${!v}")
    done
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="$T" \
        XDG_CACHE_HOME="$T/cache" STAGECOACH_RESTIC_INIT=yes STAGECOACH_RESTIC_HOST=tracker-1 \
        "${keep[@]}" unshare -m --propagation private bash "$DEP_DIR/ns.sh" "$DEP_DIR" "$D" "$@"
}

the_set() {
    local id
    id="$(cd "$BACKUPS/sets" && ls)"
    [ "$(printf '%s\n' "$id" | wc -l)" -eq 1 ]
    echo "$BACKUPS/sets/$id"
}

need_mysql() {
    [ -s "$DEP_DIR/my.pass" ] || skip "mariadbd not installed"
}

@test "the deployer's container on SQLite: /etc/backup/backup.conf, /data/storage read-only, the set in /backups" {
    write_backup_conf 644 <<'EOF'
DB_TYPE=sqlite
DB_PATH=/data/storage/tracker/lib/database/sqlite3.db
EOF
    # what the file amounts to, from the default path
    run --separate-stderr in_container "$SC" config show
    echo "$output$stderr"
    [ "$status" -eq 0 ]
    [[ "$output" == *"from /etc/backup/backup.conf"* ]]
    [[ "$output" == *"dir = /backups"* ]]
    [[ "$output" == *"keep_within = 7d"* ]]
    [[ "$output" == *"[sqlite tracker]"*"path = /data/storage/tracker/lib/database/sqlite3.db"* ]]
    [[ "$output" == *"[paths config]"*"from_file = /etc/backup/backup-paths.txt"* ]]
    # /data/storage really is read-only in there
    run in_container sh -c 'echo x >/data/storage/probe'
    [ "$status" -ne 0 ]
    [ ! -e "$D/storage/probe" ]

    run --separate-stderr in_container "$SC" run
    echo "$stderr"
    [ "$status" -eq 0 ]
    local set
    set="$(the_set)"
    # coreutils alone verifies it; rows and config files as they were
    b2sum_check "$set"
    [ "$(sqlite3 "$set/sqlite/tracker.db" 'SELECT count(*) FROM torrents')" -eq 1234 ]
    diff <(sqlite3 "$TRACKER_DB" .dump) <(sqlite3 "$set/sqlite/tracker.db" .dump)
    mkdir "$T/x"
    tar -xf "$set/paths/config.tar" -C "$T/x"
    cmp "$T/x/data/storage/tracker/etc/tracker.toml" "$D/storage/tracker/etc/tracker.toml"
    cmp "$T/x/data/storage/prometheus/etc/prometheus.yml" "$D/storage/prometheus/etc/prometheus.yml"
    # the backup.conf next to the output is not the set's business
    [ -f "$BACKUPS/etc/backup.conf" ]
    [ -f "$BACKUPS/state.json" ]
    # shipped, as tracker-1, and stagecoach reads its snapshots back
    rst snapshots --json >"$T/snaps.json"
    [ "$(pyjson "$T/snaps.json" 'j[0]["hostname"]')" = tracker-1 ]
    run --separate-stderr in_container "$SC" verify --snapshot latest
    echo "$stderr"
    [ "$status" -eq 0 ]
}

@test "the deployer's container on MySQL: DB_PASSWORD never on an argv or in any environment, sampled every 2 ms" {
    need_mysql
    local pw port
    pw="$(cat "$DEP_DIR/my.pass")"
    port="$(cat "$DEP_DIR/my/port")"
    # single quotes: the password's $ and " are literal, as in bash
    write_backup_conf 600 <<EOF
DB_TYPE=mysql
DB_HOST=127.0.0.1
DB_PORT=$port
DB_USER=tracker
DB_PASSWORD='$pw'
DB_NAME=torrust_tracker
EOF
    printf 'MYPASS %s\n' "$pw" >"$T/needles"
    scan_start
    run --separate-stderr in_container "$SC" -v --json run
    scan_stop
    echo "$stderr"
    [ "$status" -eq 0 ]
    # nowhere: no argv, no environment (stagecoach's, restic's or any other)
    [ -z "$(grep '^hit ' "$T/scan.out")" ]
    grep -q '^seen argv0=stagecoach$' "$T/scan.out"
    grep -q '^seen argv0=restic$' "$T/scan.out"
    # nor in the log, the report, the staging directory
    [[ "$output$stderr" != *"$pw"* ]]
    [ -z "$(grep -rlF -- "$pw" "$BACKUPS/sets" "$BACKUPS/state.json")" ]

    local set
    set="$(the_set)"
    b2sum_check "$set"
    my() { mariadb --no-defaults -S "$DEP_DIR/my/sock" -uroot -N "$@"; }
    local t
    for t in torrents whitelist keys; do
        [ "$(pyjson "$set/MANIFEST.json" "[s for s in j['sources'] if s['name'] == 'tracker'][0]['tables']['torrust_tracker'][a[0]]" "$t")" = \
            "$(my -e "SELECT COUNT(*) FROM torrust_tracker.\`$t\`")" ]
    done
    # loaded back under another name, every row is the same
    run --separate-stderr in_container "$SC" restore --set latest --to "$T/restore" --apply \
        --source tracker --into tracker_copy
    echo "$stderr"
    [ "$status" -eq 0 ]
    for t in torrents whitelist keys; do
        diff <(my -e "SELECT * FROM torrust_tracker.\`$t\` ORDER BY id") \
            <(my -e "SELECT * FROM tracker_copy.\`$t\` ORDER BY id")
    done
    [ "$(my -e 'SELECT COUNT(*) FROM tracker_copy.torrents')" -eq 2500 ]
    my -e 'DROP DATABASE tracker_copy'

    # config show: a password, redacted
    run --separate-stderr in_container "$SC" config show
    [ "$status" -eq 0 ]
    [[ "$output" == *"[mysql tracker]"*"host = 127.0.0.1"*"port = $port"*"; password = <redacted>"* ]]
    [[ "$output$stderr" != *"$pw"* ]]
}

@test "backup.conf with DB_PASSWORD readable by others: exit 3 saying so, nothing staged" {
    write_backup_conf 644 <<'EOF'
DB_TYPE=mysql
DB_HOST=127.0.0.1
DB_PORT=9
DB_USER=tracker
DB_PASSWORD='Pw-not-to-be-shown-7'
DB_NAME=torrust_tracker
EOF
    run --separate-stderr in_container "$SC" run
    echo "$stderr"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"/etc/backup/backup.conf is accessible by group or others (mode 0644); chmod 600 it"* ]]
    [[ "$output$stderr" != *Pw-not-to-be-shown-7* ]]
    [ ! -d "$BACKUPS/sets" ] || [ -z "$(ls "$BACKUPS/sets")" ]
}

@test "backup.conf refusals: an unknown DB_TYPE is named, missing MySQL variables listed, shell syntax refused" {
    write_backup_conf 600 <<'EOF'
DB_TYPE=postgres
EOF
    run --separate-stderr in_container "$SC" config check
    echo "$stderr"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"/etc/backup/backup.conf:6: DB_TYPE: unknown database type 'postgres' (expected mysql, sqlite or none)"* ]]

    write_backup_conf 600 <<'EOF'
DB_TYPE=mysql
DB_HOST=mysql
DB_USER=tracker
EOF
    run --separate-stderr in_container "$SC" run
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"DB_TYPE=mysql: missing required variables: DB_PORT DB_PASSWORD DB_NAME"* ]]

    # never run by a shell: a command substitution is refused, not run
    write_backup_conf 600 <<'EOF'
DB_TYPE=sqlite
DB_PATH=$(touch /backups/pwned)
EOF
    run --separate-stderr in_container "$SC" run
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"backup.conf:7: DB_PATH: \$ or \` would be expanded by a shell"* ]]
    [ ! -e "$BACKUPS/pwned" ]
    [ ! -d "$BACKUPS/sets" ] || [ -z "$(ls "$BACKUPS/sets")" ]
}

@test "\$CONFIG_FILE names another backup.conf; a missing one is exit 3 naming it" {
    write_backup_conf 600 <<'EOF'
DB_TYPE=none
EOF
    cp "$D/storage/backup/etc/backup.conf" "$D/storage/backup/etc/other.conf"
    run --separate-stderr in_container env CONFIG_FILE=/etc/backup/other.conf "$SC" config show
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    [[ "$output" == *"from /etc/backup/other.conf"* ]]
    run --separate-stderr in_container env CONFIG_FILE=/etc/backup/nope.conf "$SC" stage
    echo "$stderr"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"/etc/backup/nope.conf"*"CONFIG_FILE"* ]]
}
