#!/usr/bin/env bats
# Least privilege (design §2 "private by default"): a run as an unprivileged
# system user that owns only what it needs (its staging directory, a copy
# of the database, its password file, its repository) works; whatever its
# umask (000 here), the staging directory and everything under it is 0700
# for directories and 0600 for files; what that user cannot read makes the
# run fail with exit 4 naming it, never a crash or a silent gap.

load helpers

setup() {
    sc_setup
    if [ "$(id -u)" -ne 0 ]; then
        skip "needs root to create a user"
    fi
    command -v useradd >/dev/null && command -v setpriv >/dev/null ||
        skip "needs useradd and setpriv"
    SCUSER="scpriv$$$RANDOM"
    SCUSER=${SCUSER:0:31}
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --user-group "$SCUSER"
    USER_MADE=1
    # A world-traversable tree outside the test's private temp dir.
    W="$(mktemp -d /tmp/scpriv.XXXXXX)"
    chmod 755 "$W"
    mkdir -p "$W/bin" "$W/home" "$W/db" "$W/etc/sub" "$W/repo" "$W/staging"
    cp "$SC" "$W/bin/stagecoach"
    chmod 755 "$W/bin/stagecoach"
    cp "$DB" "$W/db/app.db"
    printf 'APP_SETTING=1\n' >"$W/etc/app.env"
    printf 'nested\n' >"$W/etc/sub/nested.conf"
    cp "$PASS" "$W/restic.pass"
    # another user's private file, and a directory only root may enter
    printf 'root only\n' >"$W/root-secret.txt"
    chmod 600 "$W/root-secret.txt"
    mkdir -m 700 "$W/root-dir"
    printf 'inside\n' >"$W/root-dir/inside.txt"
    # what the user owns; the staging directory as a careless admin made it
    chown -R "$SCUSER:$SCUSER" "$W/home" "$W/db" "$W/etc" "$W/repo" "$W/staging" "$W/restic.pass"
    chmod 777 "$W/staging"
    chmod 600 "$W/restic.pass"
    PCONF="$W/stagecoach.conf"
    write_pconf
}

teardown() {
    sc_teardown
    if [ "${USER_MADE:-0}" -eq 1 ]; then
        pkill -KILL -u "$SCUSER" 2>/dev/null || true
        userdel "$SCUSER" 2>/dev/null || true
        getent group "$SCUSER" >/dev/null && groupdel "$SCUSER" 2>/dev/null || true
    fi
    [ -n "${W:-}" ] && rm -rf "$W"
}

# $@: extra lines for the [paths etc] section.
write_pconf() {
    cat >"$PCONF" <<EOF
[staging]
dir = $W/staging

[sqlite app]
path = $W/db/app.db

[paths etc]
path = $W/etc
$(printf '%s\n' "$@")

[restic]
repository = $W/repo
password_file = $W/restic.pass
host = $HOSTNAME_CONF
init = yes
EOF
    chmod 644 "$PCONF"
}

# stagecoach as the user, with umask 000, in a clean environment.
as_user() {
    setpriv --reuid="$SCUSER" --regid="$SCUSER" --init-groups \
        env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$W/home" XDG_CACHE_HOME="$W/home/.cache" \
        sh -c 'umask 000 && exec "$@"' sh "$W/bin/stagecoach" -c "$PCONF" "$@"
}

# Every entry under $1: directories 0700, files 0600, owned by the user.
all_private() {
    local bad
    bad="$(find "$1" \( -type d ! -perm 0700 \) -o \( -type f ! -perm 0600 \) -o ! -user "$SCUSER" \
        -printf '%M %u %p\n')"
    if [ -n "$bad" ]; then
        echo "not private or not the user's: $bad" >&2
        return 1
    fi
}

@test "a run as an unprivileged user, umask 000: it works; staging 0700, every file 0600" {
    # the user really is unprivileged here
    refute setpriv --reuid="$SCUSER" --regid="$SCUSER" --init-groups cat "$W/root-secret.txt"
    run --separate-stderr as_user run
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$output" == snapshot* ]]
    # the staging directory was 0777: made private; and all it holds
    [ "$(stat -c %a "$W/staging")" = 700 ]
    all_private "$W/staging"
    local n
    n=$(find "$W/staging" -type f | wc -l)
    echo "$n files under staging, all 0600"
    [ "$n" -ge 5 ] # lock, state.json, MANIFEST.json, B2SUMS, the copies
    # the set is complete and is the user's data
    run --separate-stderr as_user verify --set latest
    [ "$status" -eq 0 ]
    run --separate-stderr as_user verify --snapshot latest
    [ "$status" -eq 0 ]
    local set
    set="$(find "$W/staging/sets" -mindepth 1 -maxdepth 1 -type d | tail -n 1)"
    [ "$(sqlite3 "$set/sqlite/app.db" 'SELECT count(*) FROM torrents')" -eq 1234 ]
    tar -tf "$set/paths/etc.tar" | grep -q "etc/sub/nested.conf$"
    # restic kept its repository private too (whatever the umask)
    [ -z "$(find "$W/repo" -mindepth 1 -perm /077 -printf '%M %p\n')" ]
    # another local user (nobody) can read nothing of the staging area
    refute setpriv --reuid=nobody --regid=nogroup --clear-groups ls "$W/staging/sets"
    refute setpriv --reuid=nobody --regid=nogroup --clear-groups cat "$set/MANIFEST.json"
}

@test "another user's 0600 file listed in a paths source: exit 4 naming it, nothing published" {
    write_pconf "path = $W/root-secret.txt"
    run --separate-stderr as_user stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"$W/root-secret.txt"* ]]
    [[ "$stderr" == *"ermission denied"* ]]
    [ -z "$(ls -A "$W/staging/sets" 2>/dev/null)" ]
    [ -z "$(find "$W/staging" -maxdepth 1 -name '.tmp-*')" ]
    # nor does its content show anywhere the user can see
    refute grep -rq "root only" "$W/staging"
}

@test "a directory the user cannot enter, listed or inside a listed tree: exit 4 naming it" {
    # listed itself
    write_pconf "path = $W/root-dir"
    run --separate-stderr as_user stage
    echo "listed: $status: $stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"$W/root-dir"* ]]
    # inside a listed tree: the tree would be silently incomplete otherwise
    mv "$W/root-dir" "$W/etc/root-dir"
    write_pconf
    run --separate-stderr as_user stage
    echo "inside: $status: $stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"$W/etc/root-dir"* ]]
    [ -z "$(ls -A "$W/staging/sets" 2>/dev/null)" ]
    [ -z "$(find "$W/staging" -maxdepth 1 -name '.tmp-*')" ]
}

@test "a database the user cannot read: exit 4 naming it; a staging directory it cannot write: exit 5 naming it" {
    chown root:root "$W/db/app.db"
    chmod 600 "$W/db/app.db"
    run --separate-stderr as_user stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"$W/db/app.db"* ]]
    chown "$SCUSER:$SCUSER" "$W/db/app.db"
    # staging owned by root, 0755: the user cannot create anything there
    chown root:root "$W/staging"
    chmod 755 "$W/staging"
    run --separate-stderr as_user stage
    echo "$stderr"
    [ "$status" -eq 5 ]
    [[ "$stderr" == *"$W/staging"* ]]
    [ -z "$(ls -A "$W/staging/sets")" ]
}
