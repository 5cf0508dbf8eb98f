#!/usr/bin/env bats
# Hostile input: SQLite files that are truncated, random, corrupt in ways
# only integrity_check sees, or not files at all; configuration files that
# are malformed (the corpus in tests/configs/bad, which config.bats runs);
# and paths sources full of hostile names: newlines, invalid UTF-8, control
# characters, "..", trees deeper than PATH_MAX, symbolic link loops and
# links out of the tree, FIFOs. Each: no crash, no hang, no escape, the
# documented exit code and one clear message; nothing half-made published.

load helpers

BAD_DIR="$BATS_TEST_DIRNAME/../configs/bad"

setup() {
    sc_setup
    H="$T/hostile"
    mkdir -p "$H"
}

teardown() {
    sc_teardown
}

# stage must fail with exit $1, one error line naming $2; nothing published.
# (timeout only turns a hang into a failure: SIGTERM after 10 s)
stage_fails() {
    local code=$1 what=$2 before
    before="$(sc_sets)"
    run --separate-stderr timeout 10 "$SC" -c "$CONF" stage
    echo "exit $status: $stderr"
    [ "$status" -eq "$code" ]
    [[ "$stderr" == *"$what"* ]]
    [ "$(grep -c '] ERROR ' <<<"$stderr")" -eq 1 ]
    [ -z "$output" ]
    [ "$(sc_sets)" = "$before" ]
    refute sc_tmp_left
}

# ---- SQLite --------------------------------------------------------------

# A rollback-journal database (one file) to damage.
one_file_db() {
    sqlite3 "$DB" 'PRAGMA journal_mode=DELETE;' >/dev/null
    [ ! -e "$DB-wal" ]
}

@test "a truncated SQLite file: exit 4 naming it" {
    one_file_db
    local size
    size=$(stat -c %s "$DB")
    truncate -s $((size / 2)) "$DB"
    stage_fails 4 "$DB"
    [[ "$stderr" == *"truncated or corrupt"* || "$stderr" == *malformed* ]]
    # a file cut inside its 100-byte header too
    truncate -s 60 "$DB"
    stage_fails 4 "$DB"
}

@test "random bytes where the database should be: exit 4 naming it" {
    rm -f "$DB" "$DB-wal" "$DB-shm"
    head -c 200000 /dev/urandom >"$DB"
    stage_fails 4 "$DB"
    [[ "$stderr" == *"not a SQLite database"* ]]
    # the SQLite magic followed by garbage
    { printf 'SQLite format 3\0'; head -c 200000 /dev/urandom; } >"$DB"
    stage_fails 4 "$DB"
}

@test "a table page overwritten with garbage: the copy's quick_check fails, exit 4" {
    one_file_db
    local page root
    page=$(sqlite3 "$DB" 'PRAGMA page_size')
    root=$(sqlite3 "$DB" "SELECT rootpage FROM sqlite_master WHERE name = 'torrents'")
    # the table's root is an interior page: scribble over its cell pointers
    dd if=/dev/urandom of="$DB" bs=1 seek=$(((root - 1) * page + 12)) count=200 conv=notrunc status=none
    [ "$(sqlite3 "$DB" 'PRAGMA quick_check' 2>&1)" != ok ]
    stage_fails 4 "sqlite app"
}

# Make an index disagree with its table while every page stays well-formed:
# one key inside the index's only page is changed to a value that sorts in
# the same place but matches no row. quick_check (which does not compare
# indexes with tables) passes; integrity_check does not.
corrupt_index_only() {
    sqlite3 "$DB" >/dev/null <<'SQL'
PRAGMA journal_mode=DELETE;
CREATE TABLE labels (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 99)
INSERT INTO labels (v) SELECT printf('val-%05d', i) FROM n;
CREATE INDEX labels_v ON labels(v);
SQL
    local page root
    page=$(sqlite3 "$DB" 'PRAGMA page_size')
    root=$(sqlite3 "$DB" "SELECT rootpage FROM sqlite_master WHERE name = 'labels_v'")
    python3 - "$DB" "$page" "$root" <<'PY'
import sys
path, page, root = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    f.seek((root - 1) * page)
    data = f.read(page)
    at = data.find(b"val-00050")
    assert at >= 0 and data.count(b"val-00050") == 1, "key not found in the index root page"
    f.seek((root - 1) * page + at)
    f.write(b"val-0005/")  # between val-00049 and val-00051: order kept
PY
    # the damage is what it should be
    [ "$(sqlite3 "$DB" 'PRAGMA quick_check')" = ok ]
    [ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" != ok ]
    [ "$(sqlite3 "$DB" 'SELECT count(*) FROM labels')" -eq 99 ]
}

@test "a database that fails only integrity_check: with check = integrity, exit 4 naming the check" {
    corrupt_index_only
    sed -i 's|^path = db/app.db$|path = db/app.db\ncheck = integrity|' "$CONF"
    grep -q '^check = integrity$' "$CONF"
    stage_fails 4 "sqlite app"
    [[ "$stderr" == *integrity* ]]
    [[ "$stderr" == *labels_v* ]]
    # with the default quick_check the same file passes, and the manifest
    # says which check it passed (the documented trade-off)
    sed -i '/^check = integrity$/d' "$CONF"
    run --separate-stderr sc --json stage
    [ "$status" -eq 0 ]
    echo "$output" >"$T/report.json"
    [ "$(pyjson "$T/report.json" '[s["check"] for s in j["manifest"]["sources"] if s["name"] == "app"][0]')" = quick_check ]
}

@test "the database path is a directory, a device, a dangling link: exit 4 naming it" {
    rm -f "$DB" "$DB-wal" "$DB-shm"
    mkdir "$DB"
    stage_fails 4 "$DB"
    rmdir "$DB"
    ln -s /dev/zero "$DB"
    stage_fails 4 "$DB"
    rm "$DB"
    ln -s nowhere "$DB"
    stage_fails 4 "$DB"
    rm "$DB"
    ln -s "$(basename "$DB")" "$DB" # a link to itself
    stage_fails 4 "$DB"
}

@test "the database path is a FIFO: exit 4 at once, not a hang" {
    rm -f "$DB" "$DB-wal" "$DB-shm"
    mkfifo "$DB"
    stage_fails 4 "$DB"
    [[ "$stderr" == *"not a regular file"* ]]
}

@test "a zero-byte database file: staged as an empty database, with a warning in the manifest" {
    rm -f "$DB" "$DB-wal" "$DB-shm"
    : >"$DB"
    run --separate-stderr sc --json stage
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"empty file"* ]]
    echo "$output" >"$T/report.json"
    [[ "$(pyjson "$T/report.json" '[s["warnings"] for s in j["manifest"]["sources"] if s["name"] == "app"][0]')" == *"empty file"* ]]
}

# ---- configuration -------------------------------------------------------

@test "the malformed-config corpus has at least 30 files, each with its expected line and key" {
    local f n=0
    for f in "$BAD_DIR"/*.conf; do
        n=$((n + 1))
        grep -q '^; expect-line: [0-9]' "$f"
        grep -q '^; expect-name: ' "$f"
    done
    echo "$n malformed configs (config.bats checks each: exit 3, FILE:LINE: naming the key)"
    [ "$n" -ge 30 ]
    # and the hostile bytes really are in them
    LC_ALL=C grep -qaP '\x00' "$BAD_DIR"/*nul*.conf
    LC_ALL=C grep -qaP '\xff' "$BAD_DIR"/*invalid-utf8-key*.conf
    [ "$(wc -L <"$BAD_DIR"/29-line-100k.conf)" -ge 100000 ]
}

# ---- paths ---------------------------------------------------------------

# A config with one [paths h] source; $@: its lines.
paths_conf() {
    {
        printf '[staging]\ndir = staging\n\n[paths h]\n'
        printf '%s\n' "$@"
        printf '\n[restic]\nrepository = %s\npassword_file = restic.pass\n' "$REPO"
    } >"$CONF"
}

# The tree of hostile names under $H/d.
hostile_tree() {
    local d="$H/d" k
    mkdir -p "$d"
    printf 'newline\n' >"$d/new"$'\n'"line"
    printf 'latin1\n' >"$d/bad"$'\xff\xfe'"name"
    printf 'utf8\n' >"$d/ünïcødé-名前"
    mkdir "$d/ctl"$'\x01\x1b[31m'"dir"
    printf 'control\n' >"$d/ctl"$'\x01\x1b[31m'"dir/f"$'\t'"tab"
    printf 'dots\n' >"$d/...."
    printf 'dash\n' >"$d/-rf"
    ln -s loop2 "$d/loop1"
    ln -s loop1 "$d/loop2"
    ln -s self "$d/self"
    ln -s /etc/passwd "$d/abs-link"
    ln -s ../../../../../../../../../etc/shadow "$d/rel-escape"
    mkdir "$d/linked-dir-target"
    printf 'reached only through the real directory\n' >"$d/linked-dir-target/only-once"
    ln -s linked-dir-target "$d/dir-link"
    mkfifo "$d/fifo"
    printf 'hard\n' >"$d/hard1"
    ln "$d/hard1" "$d/hard2"
    # deeper than PATH_MAX (4096): 60 levels of 70-byte names
    (
        cd "$d"
        for ((k = 0; k < 60; k++)); do
            mkdir "deep-$(printf 'x%.0s' {1..64})-$k"
            cd "deep-$(printf 'x%.0s' {1..64})-$k"
        done
        printf 'at the bottom\n' >bottom.txt
    )
}

# Compare the archive with the tree on disk, byte for byte: every name,
# type, link target and file content; and no entry escapes its listed path.
# $1: the archive, $2: the listed path (absolute), $3...: names that may be
# missing from the archive (none by default).
archive_matches_tree() {
    python3 - "$@" <<'PY'
import hashlib, os, stat, sys, tarfile
archive, root = sys.argv[1], os.fsencode(sys.argv[2])
prefix = root.lstrip(b"/")

def walk(dirfd, rel, out):
    for name in os.listdir(dirfd):
        name = os.fsencode(name)
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        path = rel + b"/" + name
        if stat.S_ISDIR(st.st_mode):
            out[path] = ("d", None)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dirfd)
            try:
                walk(fd, path, out)
            finally:
                os.close(fd)
        elif stat.S_ISLNK(st.st_mode):
            out[path] = ("l", os.readlink(name, dir_fd=dirfd))
        elif stat.S_ISFIFO(st.st_mode):
            out[path] = ("p", None)
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(name, os.O_RDONLY, dir_fd=dirfd)
            with os.fdopen(fd, "rb") as f:
                out[path] = ("f", hashlib.sha256(f.read()).hexdigest())

disk = {prefix: ("d", None)}
fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
walk(fd, prefix, disk)

arch, hard = {}, {}
with tarfile.open(archive, encoding="utf-8", errors="surrogateescape") as t:
    for m in t:
        name = os.fsencode(m.name).rstrip(b"/")
        parts = name.split(b"/")
        assert not name.startswith(b"/"), "absolute entry %r" % name
        assert b".." not in parts, "entry with .. %r" % name
        assert name == prefix or name.startswith(prefix + b"/"), "entry outside %r: %r" % (prefix, name)
        assert name not in arch, "entry twice: %r" % name
        if m.isdir():
            arch[name] = ("d", None)
        elif m.issym():
            arch[name] = ("l", os.fsencode(m.linkname))
        elif m.isfifo():
            arch[name] = ("p", None)
        elif m.islnk():
            hard[name] = os.fsencode(m.linkname)
        elif m.isfile():
            arch[name] = ("f", hashlib.sha256(t.extractfile(m).read()).hexdigest())
        else:
            raise AssertionError("unexpected entry type %r for %r" % (m.type, name))
for name, target in hard.items():
    arch[name] = arch[target]

missing = set(disk) - set(arch)
extra = set(arch) - set(disk)
differ = [n for n in set(disk) & set(arch) if disk[n] != arch[n]]
if missing or extra or differ:
    print("missing from the archive:", sorted(missing)[:10])
    print("in the archive, not on disk:", sorted(extra)[:10])
    print("different:", sorted(differ)[:10])
    sys.exit(1)
print("archive matches the tree: %d entries" % len(arch))
PY
}

@test "a tree of hostile names (newline, invalid UTF-8, control characters, > PATH_MAX deep, link loops, links out, FIFO): archived exactly, nothing followed, nothing outside" {
    hostile_tree
    paths_conf "path = $H/d"
    # the FIFO must be stored, not read: a read would block forever
    run --separate-stderr timeout 60 "$SC" -c "$CONF" --json stage
    echo "$stderr"
    [ "$status" -eq 0 ]
    local set
    set="$STAGING/sets/$(sc_sets | tail -n 1)"
    b2sum_check "$set"
    archive_matches_tree "$set/paths/h.tar" "$H/d"
    # links were stored, never followed: what they point to is not there
    refute grep -qa '^root:x:0:0' "$set/paths/h.tar"
    # a name in valid UTF-8 is nothing to warn about (stored as it is)
    echo "$output" >"$T/report.json"
    pyjson "$T/report.json" '"\n".join(j["manifest"]["sources"][0]["warnings"])' >"$T/warnings"
    cat "$T/warnings"
    refute grep -q "ünïcødé" "$T/warnings"
    # the whole set, read back through a local restore, matches too
    run --separate-stderr sc verify --set latest
    [ "$status" -eq 0 ]
}

@test "listed paths: '..' is resolved without climbing out, loops and over-long paths fail naming the path, a FIFO is stored, the staging directory is never archived" {
    mkdir -p "$H/d/sub"
    printf 'sibling\n' >"$H/sibling.txt"
    printf 'in d\n' >"$H/d/file"
    ln -s loop2 "$H/d/loop1"
    ln -s loop1 "$H/d/loop2"
    mkfifo "$H/fifo"

    # '..' components: the entry is the resolved path, named without '..'
    paths_conf "path = $H/d/sub/../../sibling.txt"
    run --separate-stderr sc stage
    [ "$status" -eq 0 ]
    [ "$(tar -tf "$(last_line)/paths/h.tar")" = "${H#/}/sibling.txt" ]
    # far more '..' than there are components: clamped at /, never above it
    paths_conf "path = $H/$(printf '../%.0s' {1..40})${H#/}/d/file"
    run --separate-stderr sc stage
    [ "$status" -eq 0 ]
    [ "$(tar -tf "$(last_line)/paths/h.tar")" = "${H#/}/d/file" ]

    # a path through a symbolic link loop: exit 4 naming it
    paths_conf "path = $H/d/loop1/x"
    stage_fails 4 "$H/d/loop1/x"
    # the loop itself: stored as a link, with a warning
    paths_conf "path = $H/d/loop1"
    run --separate-stderr sc stage
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"symbolic link"* ]]
    [ "$(tar -tvf "$(last_line)/paths/h.tar" | cut -c1)" = l ]

    # longer than PATH_MAX: exit 4 naming it (its start, at least) and why
    local long="$H" k
    for ((k = 0; k < 70; k++)); do long="$long/$(printf 'y%.0s' {1..70})"; done
    [ "${#long}" -gt 4096 ]
    paths_conf "path = $long"
    stage_fails 4 "$H/yyyy"
    [[ "$stderr" == *"too long"* ]]

    # a FIFO listed: stored as a FIFO, not opened (that would block)
    paths_conf "path = $H/fifo"
    run --separate-stderr timeout 30 "$SC" -c "$CONF" stage
    [ "$status" -eq 0 ]
    [ "$(tar -tvf "$(last_line)/paths/h.tar" | cut -c1)" = p ]

    # a tree that holds the staging directory: the staging directory is
    # skipped (with a warning), nothing of it is archived
    paths_conf "path = $T"
    run --separate-stderr sc stage
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"the staging directory; skipped"* ]]
    [ -z "$(tar -tf "$(last_line)/paths/h.tar" | grep "^${STAGING#/}")" ]
    tar -tf "$(last_line)/paths/h.tar" | grep -q "^${H#/}/d/file$"
}

@test "a listed path with a newline or invalid UTF-8 in it (from the environment, from from_file): archived under its exact name" {
    local nl="$H/new"$'\n'"line.txt" bad="$H/bad"$'\xff'".txt"
    printf 'nl\n' >"$nl"
    printf 'bad\n' >"$bad"
    paths_conf "path = $H/placeholder"
    # a value with a newline can only come from the environment
    STAGECOACH_PATHS_H_PATH="$nl" run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 0 ]
    [ "$(tar -xOf "$(last_line)/paths/h.tar")" = nl ]
    [ "$(tar -tf "$(last_line)/paths/h.tar" | wc -l)" -eq 1 ]
    # invalid UTF-8 from a from_file line
    printf '%s\n' "$bad" >"$T/list.txt"
    paths_conf "from_file = $T/list.txt"
    run --separate-stderr sc stage
    [ "$status" -eq 0 ]
    [ "$(tar -xOf "$(last_line)/paths/h.tar")" = bad ]
}

@test "a hostile from_file: a NUL byte fails naming the line, a FIFO fails at once instead of hanging" {
    printf '%s\n' "$H" >"$T/list.txt"
    printf '%s\0/etc\n' "$H" >>"$T/list.txt"
    paths_conf "from_file = $T/list.txt"
    stage_fails 4 "$T/list.txt"
    [[ "$stderr" == *"line 2"*NUL* ]]
    # a FIFO where the list should be
    rm "$T/list.txt"
    mkfifo "$T/list.txt"
    stage_fails 4 "$T/list.txt"
}

@test "an archive whose listed path leads through a link it also holds: restore --apply refuses it and writes nothing outside the target" {
    mkdir -p "$H/d" "$H/outside"
    printf 'inner\n' >"$H/outside/inner"
    ln -s ../outside "$H/d/x"
    # the operator lists the tree and, separately, a file behind its link
    paths_conf "path = $H/d" "path = $H/d/x/inner"
    run --separate-stderr sc stage
    [ "$status" -eq 0 ]
    # both are archived as listed: the link, and the file under that name
    tar -tvf "$(last_line)/paths/h.tar" | grep -q "^l.* ${H#/}/d/x -> ../outside$"
    tar -tf "$(last_line)/paths/h.tar" | grep -qx "${H#/}/d/x/inner"
    # restoring it into a target must not write through the link
    mkdir -p "$T/target"
    rm -rf "$H/outside"
    mkdir "$H/outside"
    run --separate-stderr sc restore --set latest --to "$T/restored" --apply --source h --into "$T/target"
    echo "exit $status: $stderr"
    [ -z "$(ls -A "$H/outside")" ]
    [ ! -e "$T/outside" ]
    if [ "$status" -eq 0 ]; then
        # then it must have kept the link a link and the file out of it
        [ -L "$T/target/${H#/}/d/x" ]
    else
        [ "$status" -eq 7 ]
        [[ "$stderr" == *"symbolic link"* ]]
    fi
}
