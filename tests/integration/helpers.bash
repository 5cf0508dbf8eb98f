# Shared setup for the integration tests: the real binary against a real
# SQLite database, a real config tree and a real local restic repository,
# all inside the test's own temporary directory.
#
#   load helpers          (in each .bats file)
#   sc_setup              (in setup(): builds $T with everything below)
#
# Variables after sc_setup:
#   SC     the stagecoach binary       T      the test's directory
#   CONF   $T/stagecoach.conf          STAGING $T/staging (dir = staging)
#   DB     $T/db/app.db (WAL)          CFGDIR $T/etc/app (the [paths etc] tree)
#   PASS   $T/restic.pass (0600)       REPO   $T/repo (absent until `init = yes` runs)
#   HOSTNAME_CONF, TAG_CONF: the [restic] host and tag written to the config

bats_require_minimum_version 1.5.0

SC_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
# SC_BIN (as `make sanitize` passes it), or the normal build.
SC="${SC_BIN:-$SC_ROOT/build/stagecoach}"
SC_HELPERS_DIR="${SC_HELPERS_DIR:-$SC_ROOT/build/tests/helpers}"

# SC_RESTIC=/path/to/restic (make integration-restic018): the suites run
# against that restic instead of the one on PATH. It is written as
# [restic] binary into the configs sc_write_conf makes, and it comes first
# on PATH, so the tests' own restic calls (rst, by-hand checks, wrappers
# that exec restic) use the same version. Its name must be restic (the
# crash tests find restic processes by name).
if [ -n "${SC_RESTIC:-}" ]; then
    if [ "${SC_RESTIC##*/}" != restic ] || ! "$SC_RESTIC" version >/dev/null; then
        echo "SC_RESTIC=$SC_RESTIC: not a restic binary named restic" >&2
        return 1
    fi
    case ":$PATH:" in
    *":${SC_RESTIC%/*}:"*) ;;
    *) PATH="${SC_RESTIC%/*}:$PATH" ;;
    esac
fi

# stagecoach treats every STAGECOACH_* variable as a setting (an unknown one
# is a config error), so none may leak from the caller into the tests.
sc_clean_env() {
    local v
    for v in $(compgen -e); do
        case "$v" in
        STAGECOACH_* | RESTIC_*) unset "$v" ;;
        esac
    done
}
sc_clean_env

# The path of a helper program from tests/helpers/NAME.c; built on the fly
# (into this run's temp dir) when make did not build it.
sc_helper() {
    local name=$1
    if [ -x "$SC_HELPERS_DIR/$name" ] && [ "$SC_HELPERS_DIR/$name" -nt "$SC_ROOT/tests/helpers/$name.c" ]; then
        echo "$SC_HELPERS_DIR/$name"
        return
    fi
    local out="$BATS_RUN_TMPDIR/helpers/$name"
    if [ ! -x "$out" ]; then
        mkdir -p "${out%/*}"
        # shellcheck disable=SC2046
        cc -std=c11 -O2 -o "$out.$$" "$SC_ROOT/tests/helpers/$name.c" \
            $(pkg-config --cflags --libs sqlite3) >&2 && mv "$out.$$" "$out"
    fi
    echo "$out"
}

sc_require_binary() {
    if [ ! -x "$SC" ]; then
        echo "stagecoach binary not found at $SC (run make first)" >&2
        return 1
    fi
}

# A SQLite database with a few tables and known row counts, in WAL mode.
sc_make_db() {
    local db=$1
    mkdir -p "${db%/*}"
    sqlite3 "$db" >/dev/null <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE torrents (id INTEGER PRIMARY KEY, info_hash TEXT UNIQUE NOT NULL, completed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE whitelist (id INTEGER PRIMARY KEY, info_hash TEXT UNIQUE NOT NULL);
CREATE TABLE "keys with space" (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, valid_until INTEGER);
CREATE TABLE empty_table (x);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1234)
INSERT INTO torrents (info_hash, completed) SELECT printf('%040x', i * 2654435761), i % 97 FROM n;
INSERT INTO whitelist (info_hash) SELECT info_hash FROM torrents WHERE id % 10 = 0;
INSERT INTO "keys with space" (key, valid_until) VALUES ('k1', 1893456000), ('k2', NULL), ('k3', 7);
CREATE INDEX torrents_completed ON torrents(completed);
SQL
}

# The config tree: a .env, a file with spaces in its name, a subdirectory, a
# symlink (relative), and a file that is private (0600).
sc_make_config_tree() {
    local d=$1
    mkdir -p "$d/sub dir/deeper"
    printf 'TRACKER_TOKEN=not-really-secret\nDB_DRIVER=sqlite3\n' >"$d/.env"
    printf '[core]\nlisten = "0.0.0.0:6969"\n' >"$d/tracker config.toml"
    printf 'nested file\n' >"$d/sub dir/nested.txt"
    head -c 3000 /dev/urandom >"$d/sub dir/deeper/blob.bin"
    ln -s "tracker config.toml" "$d/current.toml"
    printf 'private\n' >"$d/private.key"
    chmod 600 "$d/private.key"
}

HOSTNAME_CONF=stagecoach-test-host
TAG_CONF=integration

# Write $CONF. Relative paths in it are relative to $T (the config's dir).
sc_write_conf() {
    cat >"$CONF" <<EOF
; integration test configuration (tests/integration/helpers.bash)
[staging]
dir = staging
keep = 3

[sqlite app]
path = db/app.db

[paths etc]
path = $T/etc/app

[restic]
repository = $REPO
password_file = restic.pass
host = $HOSTNAME_CONF
tag = $TAG_CONF
init = yes
EOF
    if [ -n "${SC_RESTIC:-}" ]; then
        echo "binary = $SC_RESTIC" >>"$CONF"
    fi
}

sc_setup() {
    sc_require_binary
    T="$BATS_TEST_TMPDIR/t"
    mkdir -p "$T"
    T="$(cd "$T" && pwd -P)" # restic records canonical paths
    CONF="$T/stagecoach.conf"
    STAGING="$T/staging"
    DB="$T/db/app.db"
    CFGDIR="$T/etc/app"
    PASS="$T/restic.pass"
    REPO="$T/repo"
    sc_make_db "$DB"
    sc_make_config_tree "$CFGDIR"
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PASS")
    chmod 600 "$PASS"
    sc_write_conf
    # restic's cache stays inside the test too.
    export XDG_CACHE_HOME="$T/cache"
    SC_PIDS=()
}

# Stop every background process a test started (sc_track records them).
# A process that outlives SIGTERM by 5 s gets SIGKILL: a test that failed
# half-way must not hang in its teardown (restic 0.18 blocked reading a FIFO
# does not end on SIGTERM).
sc_teardown() {
    local p i
    for p in "${SC_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${SC_PIDS[@]}"; do
        for ((i = 0; i < 100; i++)); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    SC_PIDS=()
}

# Remember a background pid for sc_teardown.
sc_track() {
    SC_PIDS+=("$1")
}

# Wait (at most ~30 s) until a file exists; fail otherwise.
sc_wait_for_file() {
    local f=$1 i
    for ((i = 0; i < 600; i++)); do
        [ -e "$f" ] && return 0
        sleep 0.05
    done
    echo "timed out waiting for $f" >&2
    return 1
}

# The minor version of the restic the tests run (restic 0.MINOR.PATCH), for
# the few checks where restic's own behaviour differs between versions.
restic_minor() {
    restic version | sed -n 's/^restic 0\.\([0-9]*\)\..*/\1/p'
}

# The binary with the test's config.
sc() {
    "$SC" -c "$CONF" "$@"
}

# restic on the test's repository, as an operator would run it by hand.
rst() {
    RESTIC_REPOSITORY="$REPO" RESTIC_PASSWORD_FILE="$PASS" restic --no-cache -q "$@"
}

# The secrets sampler (tests/helpers/procscan.c, path in $PROCSCAN) over
# every process's cmdline and environ, looking for the "NAME VALUE" lines of
# $T/needles every 2 ms, from scan_start to scan_stop (which prints what it
# saw, also in $T/scan.out). A teardown touches $T/scan.stop if SCAN_PID is set.
scan_start() {
    rm -f "$T/scan.out" "$T/scan.stop"
    "$PROCSCAN" -n "$T/needles" -o "$T/scan.out" -s "$T/scan.stop" -t 300 -i 2000 &
    SCAN_PID=$!
    sc_track "$SCAN_PID"
    sc_wait_for_file "$T/scan.out" || true
    sleep 0.05 # a first full scan
}

scan_stop() {
    touch "$T/scan.stop"
    wait "$SCAN_PID"
    SCAN_PID=""
    cat "$T/scan.out"
}

# The last line of $output (stage prints the set path there).
last_line() {
    printf '%s\n' "$output" | tail -n 1
}

# Evaluate a Python expression over JSON read from a file: j is the parsed
# document, a is the list of extra arguments. Prints the result (str as is,
# others as JSON).
pyjson() {
    local file=$1 expr=$2
    shift 2
    python3 - "$file" "$expr" "$@" <<'PY'
import json, sys
with open(sys.argv[1], 'rb') as f:
    j = json.load(f)
a = sys.argv[3:]
r = eval(sys.argv[2])
print(r if isinstance(r, str) else json.dumps(r))
PY
}

# Files of a directory tree, relative, sorted, one a line.
sc_tree() {
    (cd "$1" && find . -mindepth 1 \( -type f -o -type l \) -printf '%P\n' | LC_ALL=C sort)
}

# Published set ids (names under $STAGING/sets), sorted.
sc_sets() {
    [ -d "$STAGING/sets" ] || return 0
    (cd "$STAGING/sets" && find . -mindepth 1 -maxdepth 1 -type d -printf '%P\n' | LC_ALL=C sort)
}

# Any .tmp-* left in the staging directory?
sc_tmp_left() {
    [ -d "$STAGING" ] || return 1
    compgen -G "$STAGING/.tmp-*" >/dev/null
}

# Flip one byte of a file at an offset (default: the middle).
flip_byte() {
    local f=$1 off=${2:-}
    python3 - "$f" "$off" <<'PY'
import os, sys
p, off = sys.argv[1], sys.argv[2]
size = os.path.getsize(p)
off = int(off) if off else size // 2
with open(p, 'r+b') as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
PY
}

# Fail when the command succeeds. (A bare `! cmd` does not fail a bats test:
# errexit ignores negated commands.)
refute() {
    if "$@"; then
        echo "expected to fail, but succeeded: $*" >&2
        return 1
    fi
    return 0
}

# b2sum -c B2SUMS inside a set directory, quietly.
b2sum_check() {
    (cd "$1" && b2sum -c --quiet B2SUMS >/dev/null 2>&1)
}

# Put a sparse file of SIZE (truncate's units: 64G) in the place of the set's
# file REL, and make MANIFEST.json and B2SUMS agree on its size: a verify
# must then hash all of it (minutes for 64G, no disk used) to find its hash
# wrong. For tests of what happens during a long hash.
fake_big_file() {
    local set=$1 rel=$2 size=$3
    truncate -s "$size" "$set/$rel"
    python3 - "$set" "$rel" "$(stat -c %s "$set/$rel")" <<'PY'
import json, subprocess, sys
d, rel, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = json.load(open(d + "/MANIFEST.json"))
for f in m["files"]:
    if f["path"] == rel:
        f["bytes"] = size
open(d + "/MANIFEST.json", "w").write(json.dumps(m))
h = subprocess.run(["b2sum", d + "/MANIFEST.json"], capture_output=True, text=True, check=True).stdout.split()[0]
lines = [l for l in open(d + "/B2SUMS") if not l.endswith("  MANIFEST.json\n")]
open(d + "/B2SUMS", "w").write("".join(lines) + h + "  MANIFEST.json\n")
PY
}

# Stage; SET is the published set's directory (stage's last line). On a
# failure, says so with stage's stderr and returns 1. Suites that need more
# (the dump's path) wrap it.
stage_ok() {
    run --separate-stderr sc stage "$@"
    if [ "$status" -ne 0 ]; then
        echo "stage failed ($status): $stderr" >&2
        return 1
    fi
    SET="$(last_line)"
}

# COPY of tests/helpers/sqlite_writer's database is one committed state: a
# = b = the rows of log in every commit, the writer had committed 20 before
# it was taken, the padding (1500 filler rows) is all there, the file is
# sound and in rollback mode. Sets COPY_A to the commits it holds.
copy_is_one_commit() {
    local copy=$1 b n
    COPY_A="$(sqlite3 "$copy" 'SELECT a FROM c WHERE id = 1')"
    b="$(sqlite3 "$copy" 'SELECT b FROM c WHERE id = 1')"
    n="$(sqlite3 "$copy" 'SELECT count(*) FROM log')"
    echo "copy: a=$COPY_A b=$b log=$n"
    [ "$COPY_A" = "$b" ]
    [ "$n" = "$COPY_A" ]
    [ "$COPY_A" -ge 20 ]
    [ "$(sqlite3 "$copy" 'SELECT max(a) FROM log')" = "$COPY_A" ]
    [ "$(sqlite3 "$copy" 'SELECT count(*) FROM filler')" = 1500 ]
    [ "$(sqlite3 "$copy" 'PRAGMA integrity_check')" = ok ]
    [ "$(sqlite3 "$copy" 'PRAGMA journal_mode')" = delete ]
}

# One restic repository made once per .bats file, in setup_file:
# TEMPLATE_REPO, TEMPLATE_PASS. restic derives its key with scrypt tuned to
# ~0.5 s at init and pays that on every command (a run makes about six), so
# the key is re-wrapped with cheap parameters (tests/helpers/restic_fastkey.py):
# the same repository format, only the password-to-key step is faster.
template_repo_make() {
    TEMPLATE_REPO="$BATS_FILE_TMPDIR/template-repo"
    TEMPLATE_PASS="$BATS_FILE_TMPDIR/template.pass"
    (umask 077 && printf 'template-%s\n' "$RANDOM$RANDOM$RANDOM" >"$TEMPLATE_PASS")
    RESTIC_PASSWORD_FILE="$TEMPLATE_PASS" XDG_CACHE_HOME="$BATS_FILE_TMPDIR/cache" \
        restic --no-cache -q -r "$TEMPLATE_REPO" init >/dev/null
    python3 "$SC_ROOT/tests/helpers/restic_fastkey.py" "$TEMPLATE_REPO" "$TEMPLATE_PASS" ||
        [ $? -eq 3 ]
    export TEMPLATE_REPO TEMPLATE_PASS
}

# A copy of the template repository at DIR (default $REPO); $PASS its password.
template_repo_use() {
    local dir=${1:-$REPO}
    mkdir -p "${dir%/*}"
    cp -a "$TEMPLATE_REPO" "$dir"
    cp "$TEMPLATE_PASS" "$PASS"
    chmod 600 "$PASS"
}
