#!/usr/bin/env bats
# stage: phase 1 against a real SQLite database and a real config tree.

load helpers

setup() {
    sc_setup
}

teardown() {
    sc_teardown
}

# Tables of a SQLite file (not SQLite's own), one a line, sorted.
tables_of() {
    sqlite3 "$1" "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name"
}

count_of() {
    sqlite3 "$1" "SELECT count(*) FROM \"$2\""
}

# Every table's manifest row count equals count(*) on the source and on the copy.
assert_counts_match() {
    local src=$1 copy=$2 name=$3 t want got
    [ -n "$(tables_of "$src")" ]
    while IFS= read -r t; do
        want="$(count_of "$src" "$t")"
        got="$(pyjson "$SET/MANIFEST.json" \
            '[s for s in j["sources"] if s["name"] == a[0]][0]["tables"][a[1]]' "$name" "$t")"
        echo "table $t: source $want, manifest $got"
        [ "$got" = "$want" ]
        [ "$(count_of "$copy" "$t")" = "$want" ]
    done < <(tables_of "$src")
    # and the manifest lists no table the source does not have
    diff <(tables_of "$src") \
        <(pyjson "$SET/MANIFEST.json" \
            '"\n".join(sorted([s for s in j["sources"] if s["name"] == a[0]][0]["tables"]))' "$name")
}

@test "stage prints the new set's path and publishes a complete set" {
    stage_ok
    # exactly one line on stdout: the set's path under STAGING/sets
    [ "${#lines[@]}" -eq 1 ]
    [[ "$SET" == "$STAGING/sets/"* ]]
    [ -d "$SET" ]
    [ "$(sc_sets)" = "${SET##*/}" ]
    # exactly the files of the layout, nothing else
    [ "$(sc_tree "$SET")" = "$(printf '%s\n' B2SUMS MANIFEST.json paths/etc.tar sqlite/app.db)" ]
    run -0 pyjson "$SET/MANIFEST.json" 'j["format"]'
    [ "$output" = "stagecoach-set/1" ]
    run -0 pyjson "$SET/MANIFEST.json" 'j["set"]'
    [ "$output" = "${SET##*/}" ]
    refute sc_tmp_left
}

@test "b2sum -c B2SUMS verifies the set with coreutils alone" {
    stage_ok
    cd "$SET"
    run -0 b2sum -c B2SUMS
    [[ "$output" == *"sqlite/app.db: OK"* ]]
    [[ "$output" == *"paths/etc.tar: OK"* ]]
    [[ "$output" == *"MANIFEST.json: OK"* ]]
    # B2SUMS covers every file but itself, and agrees with the manifest
    [ "$(awk '{print $2}' B2SUMS | LC_ALL=C sort)" = "$(sc_tree . | grep -vx B2SUMS)" ]
    local f
    for f in sqlite/app.db paths/etc.tar; do
        want="$(b2sum "$f" | cut -d' ' -f1)"
        [ "$(pyjson MANIFEST.json '[x for x in j["files"] if x["path"] == a[0]][0]["blake2b"]' "$f")" = "$want" ]
        [ "$(pyjson MANIFEST.json '[x for x in j["files"] if x["path"] == a[0]][0]["bytes"]' "$f")" = "$(stat -c %s "$f")" ]
    done
}

@test "staging dir is 0700 and every file 0600, even with umask 000" {
    umask 000
    stage_ok
    [ "$(stat -c %a "$STAGING")" = 700 ]
    [ "$(stat -c %a "$STAGING/sets")" = 700 ]
    local bad
    bad="$(find "$STAGING" -type d ! -perm 0700 -printf '%m %p\n')"
    [ -z "$bad" ] || { echo "directories not 0700: $bad"; false; }
    bad="$(find "$STAGING" -type f ! -perm 0600 -printf '%m %p\n')"
    [ -z "$bad" ] || { echo "files not 0600: $bad"; false; }
    [ -n "$(find "$SET" -type f)" ]
}

@test "the manifest's row counts equal count(*) on the source" {
    stage_ok
    assert_counts_match "$DB" "$SET/sqlite/app.db" app
    [ "$(pyjson "$SET/MANIFEST.json" '[s for s in j["sources"] if s["name"] == "app"][0]["tables"]["torrents"]')" = 1234 ]
    [ "$(pyjson "$SET/MANIFEST.json" '[s for s in j["sources"] if s["name"] == "app"][0]["consistency"]')" = online-backup-api ]
    # the copy is one self-contained file, and it is sound
    [ "$(sqlite3 "$SET/sqlite/app.db" 'PRAGMA integrity_check')" = ok ]
    [ "$(sqlite3 "$SET/sqlite/app.db" 'PRAGMA journal_mode')" = delete ]
    # same data, not only the same counts
    [ "$(sqlite3 "$DB" 'SELECT group_concat(info_hash || completed) FROM torrents' | b2sum)" = \
        "$(sqlite3 "$SET/sqlite/app.db" 'SELECT group_concat(info_hash || completed) FROM torrents' | b2sum)" ]
}

@test "the tar holds .env, the file with spaces, the subdirectory and the symlink as a link" {
    stage_ok
    run -0 tar -tvf "$SET/paths/etc.tar"
    echo "$output"
    [[ "$output" == *"/.env"* ]]
    [[ "$output" == *"tracker config.toml"* ]]
    [[ "$output" == *"sub dir/nested.txt"* ]]
    # the symlink is stored as a link (type l) to its target, not as a copy
    run -0 grep -E '^l.*current\.toml -> tracker config\.toml$' <<<"$output"

    # extracted, every file has the bytes of the original
    mkdir "$T/x"
    tar -xf "$SET/paths/etc.tar" -C "$T/x"
    local env_copy root
    env_copy="$(find "$T/x" -name .env -type f)"
    [ -n "$env_copy" ]
    root="${env_copy%/.env}"
    local f
    for f in .env "tracker config.toml" "sub dir/nested.txt" "sub dir/deeper/blob.bin" private.key; do
        cmp "$CFGDIR/$f" "$root/$f"
    done
    [ -L "$root/current.toml" ]
    [ "$(readlink "$root/current.toml")" = "tracker config.toml" ]
    # nothing beyond the tree went in
    [ "$(sc_tree "$CFGDIR")" = "$(sc_tree "$root")" ]
}

@test "from_file: comments, blank lines, CRLF and a path with spaces" {
    mkdir -p "$T/more"
    printf 'one\n' >"$T/more/listed one.txt"
    printf 'two\n' >"$T/more/two.txt"
    printf 'not listed\n' >"$T/more/commented.txt"
    printf 'hash\n' >"$T/more/file#1.txt"
    {
        printf '# the files to back up\r\n'
        printf '\r\n'
        printf '   %s   \r\n' "$T/more/listed one.txt"
        printf '\n'
        printf '  # %s\r\n' "$T/more/commented.txt"
        printf '%s\r\n' "$T/more/two.txt"
        printf '\t\n'
        printf '%s' "$T/more/file#1.txt" # last line without a newline
    } >"$T/paths.txt"
    cat >>"$CONF" <<EOF

[paths listed]
from_file = paths.txt
EOF
    stage_ok
    [ -f "$SET/paths/listed.tar" ]
    run -0 tar -tf "$SET/paths/listed.tar"
    echo "$output"
    [[ "$output" == *"more/listed one.txt"* ]]
    [[ "$output" == *"more/two.txt"* ]]
    [[ "$output" == *"more/file#1.txt"* ]]
    [[ "$output" != *"commented.txt"* ]]
    [[ "$output" != *$'\r'* ]]
    # exactly three files, with their bytes
    [ "$(tar -tf "$SET/paths/listed.tar" | grep -cv '/$')" -eq 3 ]
    mkdir "$T/x"
    tar -xf "$SET/paths/listed.tar" -C "$T/x"
    cmp "$T/more/listed one.txt" "$(find "$T/x" -name 'listed one.txt')"
    cmp "$T/more/two.txt" "$(find "$T/x" -name 'two.txt')"
    (cd "$SET" && b2sum -c --quiet B2SUMS)
}

@test "a relative [paths] path resolves against the config file's directory" {
    # docs/configuration.md: "Relative paths are relative to the directory of
    # the config file" (as [sqlite] path = db/app.db already is here).
    sed -i "s|^path = $T/etc/app\$|path = etc/app|" "$CONF"
    grep -qx 'path = etc/app' "$CONF"
    cd /
    stage_ok
    run -0 tar -tf "$SET/paths/etc.tar"
    [[ "$output" == *"etc/app/tracker config.toml"* ]]
    mkdir "$T/x"
    tar -xf "$SET/paths/etc.tar" -C "$T/x"
    cmp "$CFGDIR/.env" "$T/x/${CFGDIR#/}/.env"
}

@test "a missing path: exit 4 naming it, no set published, no .tmp-* left" {
    # a second path in [paths etc], next to the existing one
    sed -i "s|^path = $T/etc/app\$|&\npath = $T/etc/does-not-exist.conf|" "$CONF"
    grep -qx "path = $T/etc/does-not-exist.conf" "$CONF"
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"$T/etc/does-not-exist.conf"* ]]
    [ -z "$output" ]
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
}

@test "a stale .tmp-* directory is removed by the next stage" {
    mkdir -p "$STAGING/.tmp-20200101T000000Z/sqlite" "$STAGING/.tmp-XYZ"
    echo junk >"$STAGING/.tmp-20200101T000000Z/sqlite/app.db"
    echo junk >"$STAGING/.tmp-XYZ/partial"
    stage_ok
    [ ! -e "$STAGING/.tmp-20200101T000000Z" ]
    [ ! -e "$STAGING/.tmp-XYZ" ]
    refute sc_tmp_left
    [ "$(sc_sets)" = "${SET##*/}" ]
}

@test "the Chinook database stages with the right row count for every table" {
    local fixture=/work/shared/fixtures/chinook/Chinook_Sqlite.sqlite
    [ -f "$fixture" ] || skip "Chinook fixture not present"
    cp "$fixture" "$T/chinook.sqlite"
    chmod 600 "$T/chinook.sqlite"
    cat >>"$CONF" <<EOF

[sqlite chinook]
path = chinook.sqlite
check = integrity
EOF
    stage_ok
    [ -f "$SET/sqlite/chinook.db" ]
    [ "$(tables_of "$T/chinook.sqlite" | wc -l)" -eq 11 ]
    assert_counts_match "$T/chinook.sqlite" "$SET/sqlite/chinook.db" chinook
    [ "$(count_of "$SET/sqlite/chinook.db" Track)" -eq 3503 ]
    # rows_total is the sum
    [ "$(pyjson "$SET/MANIFEST.json" '[s for s in j["sources"] if s["name"] == "chinook"][0]["rows_total"]')" = \
        "$(pyjson "$SET/MANIFEST.json" 'sum([s for s in j["sources"] if s["name"] == "chinook"][0]["tables"].values())')" ]
    [ "$(sqlite3 "$SET/sqlite/chinook.db" 'PRAGMA integrity_check')" = ok ]
    # the same content: a full dump of the copy equals a dump of the source
    [ "$(sqlite3 "$T/chinook.sqlite" .dump | b2sum)" = "$(sqlite3 "$SET/sqlite/chinook.db" .dump | b2sum)" ]
    # the source was not touched
    cmp "$fixture" "$T/chinook.sqlite"
}

@test "a WAL database with un-checkpointed content: the copy has every row" {
    local holder ready="$T/walhold.ready"
    holder="$(sc_helper sqlite_walhold)"
    "$holder" "$DB" 500 "$ready" 3>&- &
    sc_track $!
    sc_wait_for_file "$ready"
    # the rows are only in the WAL: the main file alone does not have them
    [ -s "$DB-wal" ]
    cp "$DB" "$T/main-file-only.db"
    [ "$(sqlite3 "$T/main-file-only.db" "SELECT count(*) FROM sqlite_master WHERE name = 'w'")" = 0 ]

    stage_ok
    [ "$(count_of "$SET/sqlite/app.db" w)" = 500 ]
    [ "$(sqlite3 "$SET/sqlite/app.db" 'SELECT v FROM w WHERE id = 500')" = "row 500" ]
    [ "$(pyjson "$SET/MANIFEST.json" '[s for s in j["sources"] if s["name"] == "app"][0]["tables"]["w"]')" = 500 ]
    [ "$(pyjson "$SET/MANIFEST.json" '[s for s in j["sources"] if s["name"] == "app"][0]["journal_mode"]')" = wal ]
    # self-contained: no -wal/-shm in the set, and not in WAL mode
    [ ! -e "$SET/sqlite/app.db-wal" ]
    [ ! -e "$SET/sqlite/app.db-shm" ]
    [ "$(sqlite3 "$SET/sqlite/app.db" 'PRAGMA journal_mode')" = delete ]
    # the writer's WAL is still there: staging did not checkpoint it away
    [ -s "$DB-wal" ]
}

@test "a garbage file as the database: exit 4, nothing published" {
    head -c 65536 /dev/urandom >"$DB"
    rm -f "$DB-wal" "$DB-shm"
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"app"* ]]
    [[ "$stderr" == *"$DB"* ]]
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
}

@test "a text file that starts like SQLite but is truncated: exit 4" {
    printf 'SQLite format 3\0short' >"$DB"
    rm -f "$DB-wal" "$DB-shm"
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
}

@test "a missing database file: exit 4 and the file is not created" {
    rm -f "$DB" "$DB-wal" "$DB-shm"
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"$DB"* ]]
    [ ! -e "$DB" ]
    [ -z "$(sc_sets)" ]
}

@test "two stages in a row publish two sets; --json stage prints one report" {
    stage_ok
    local first="$SET"
    run --separate-stderr sc --json stage
    [ "$status" -eq 0 ]
    [ "$(sc_sets | wc -l)" -eq 2 ]
    printf '%s' "$output" >"$T/report.json"
    [ "$(pyjson "$T/report.json" 'j["status"]')" = success ]
    [ "$(pyjson "$T/report.json" 'j["command"]')" = stage ]
    local id
    id="$(pyjson "$T/report.json" 'j["set"]')"
    [ -d "$STAGING/sets/$id" ]
    [ "$STAGING/sets/$id" != "$first" ]
}

@test "--dry-run stage says what it would do and writes nothing" {
    run --separate-stderr sc --dry-run stage
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"sqlite app"* ]]
    [[ "$output" == *"$DB"* ]]
    [ ! -e "$STAGING" ]
}

@test "page sizes 512 and 65536 in WAL mode: the copy keeps its page size, leaves WAL, passes integrity_check" {
    # the copy is written without a journal or SQLite's syncs; whatever the
    # page size, what lands in the set must be a whole, self-contained database
    local ps
    for ps in 512 65536; do
        rm -f "$DB" "$DB-wal" "$DB-shm"
        sqlite3 "$DB" "PRAGMA page_size=$ps; PRAGMA journal_mode=WAL;
            CREATE TABLE t(x);
            WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000)
            INSERT INTO t SELECT randomblob(300) FROM c;" >/dev/null
        stage_ok
        local copy="$SET/sqlite/app.db"
        [ "$(sqlite3 "$copy" 'PRAGMA page_size')" = "$ps" ]
        [ "$(sqlite3 "$copy" 'PRAGMA journal_mode')" = delete ]
        [ "$(sqlite3 "$copy" 'PRAGMA integrity_check')" = ok ]
        [ "$(sqlite3 "$copy" 'SELECT count(*) FROM t')" = 5000 ]
        # the same content, row for row (the shell's SHA3 of every table)
        [ "$(sqlite3 "$copy" .sha3sum)" = "$(sqlite3 "$DB" .sha3sum)" ]
        (cd "$SET" && b2sum -c --quiet B2SUMS)
        [ -z "$(ls "$SET/sqlite" | grep -v '^app.db$')" ]
    done
}

@test "a table whose name is not valid UTF-8: counted in rows_total, named in the warnings" {
    # the counts are made on the check's thread: its warnings must reach the
    # manifest entry beside the main thread's
    rm -f "$DB" "$DB-wal" "$DB-shm"
    local bad
    bad="bad$(printf '\xff')name"
    sqlite3 "$DB" "CREATE TABLE ok_t(x); INSERT INTO ok_t VALUES (1), (2);
        CREATE TABLE \"$bad\"(x); INSERT INTO \"$bad\" VALUES (1), (2), (3);"
    stage_ok
    local src='[s for s in j["sources"] if s["name"] == "app"][0]'
    [ "$(pyjson "$SET/MANIFEST.json" "$src[\"rows_total\"]")" = 5 ]
    [ "$(pyjson "$SET/MANIFEST.json" "$src[\"tables\"][\"ok_t\"]")" = 2 ]
    [ "$(pyjson "$SET/MANIFEST.json" "$src[\"warnings\"]")" = \
        '["a table name is not valid UTF-8; its 3 rows are counted in rows_total only"]' ]
}
