#!/usr/bin/env bats
# [sqlite NAME] layout = pages (docs/sqlite-pages.md): the staged copy kept
# as immutable page packs plus a page map, so that the second run's restic
# upload is about the pages that changed, not the whole file. Real SQLite,
# real restic; every snapshot restores on its own, the format's faults are
# exit 7 naming the file, local retention drops packs no kept set holds.

load restore_helpers

setup_file() {
    template_repo_make
}

setup() {
    sc_setup
    template_repo_use
    rm -f "$DB" "$DB-wal" "$DB-shm"
    make_tracker "$DB" 150000
    layout pages
}

teardown() {
    sc_teardown
    if [ -n "${BIND:-}" ]; then
        umount "$BIND" 2>/dev/null || true
    fi
}

# A tracker-shaped database: torrents with a random unique 20-byte
# info_hash (its index spreads over the whole file), N rows (~9 MB at 150k).
make_tracker() {
    local db=$1 n=$2
    mkdir -p "${db%/*}"
    sqlite3 "$db" >/dev/null <<SQL
PRAGMA journal_mode=WAL;
CREATE TABLE torrents (id INTEGER PRIMARY KEY, info_hash BLOB UNIQUE NOT NULL, completed INTEGER NOT NULL DEFAULT 0);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $n)
INSERT INTO torrents (info_hash, completed) SELECT randomblob(20), 0 FROM n;
SQL
}

# A tracker's day: the hot 3% of torrents completed once more, 0.05% new
# ones (random keys: index pages all over the file).
tracker_day() {
    sqlite3 -cmd ".timeout 20000" "$1" "UPDATE torrents SET completed = completed + 1 WHERE id <= 4500;
        INSERT INTO torrents (info_hash) SELECT randomblob(20) FROM torrents LIMIT 75;"
}

# layout = file | pages for [sqlite app].
layout() {
    sed -i "/^\[sqlite app\]\$/a layout = $1" "$CONF"
}

# The database's rows as text (its content, whatever its pages look like).
content_of() {
    sqlite3 "$1" .dump | b2sum | cut -d' ' -f1
}

# sc --json run; REPORT its report, SET its set, SNAP its snapshot, ADDED
# restic's data_added.
run_json() {
    run --separate-stderr sc --json run
    if [ "$status" -ne 0 ]; then
        echo "run failed ($status): $stderr" >&2
        return 1
    fi
    REPORT="$T/report-$RANDOM.json"
    printf '%s' "$output" >"$REPORT"
    SET="$(pyjson "$REPORT" 'j["set_path"]')"
    SNAP="$(pyjson "$REPORT" 'j["snapshot"]["id"]')"
    ADDED="$(pyjson "$REPORT" 'j["snapshot"]["data_added"]')"
}

# Packs in the page store, and packs some set holds, one name a line.
store_packs() {
    (cd "$STAGING/pagestore/app/packs" && ls -1 | LC_ALL=C sort)
}
set_packs() {
    (cd "$STAGING/sets" && ls -1 -- */sqlite/app.packs | grep '\.pack$' | LC_ALL=C sort -u)
}

# The set at $SET replaced by a copy of itself: new inodes, so that a test
# may damage its packs without touching the page store's (hard links).
unlink_set() {
    cp -a "$SET" "$SET.copy"
    rm -rf "$SET"
    mv "$SET.copy" "$SET"
}

first_pack() {
    (cd "$SET" && ls -1 sqlite/app.packs/*.pack | head -n 1)
}

# restore --set of the (damaged) set fails with exit 7 naming $1.
restore_fails_naming() {
    run --separate-stderr sc restore --set "${SET##*/}" --to "$T/bad-$RANDOM"
    echo "status $status: $stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"$1"* ]]
}

@test "pages: the second run uploads about the changed pages; each snapshot restores its own content" {
    run_json
    local set1=$SET snap1=$SNAP content1 size
    content1="$(content_of "$DB")"
    # the set: the map and the packs, no database file; B2SUMS covers them
    [ -f "$set1/sqlite/app.pagemap" ]
    [ ! -e "$set1/sqlite/app.db" ]
    compgen -G "$set1/sqlite/app.packs/*.pack" >/dev/null
    b2sum_check "$set1"
    [ "$(pyjson "$set1/MANIFEST.json" 'j["sources"][0]["layout"]')" = pages ]
    # a pack in the set is the store's own file (a hard link), written once
    local p
    p="$(cd "$set1" && ls sqlite/app.packs | head -n 1)"
    [ "$(stat -c %i "$set1/sqlite/app.packs/$p")" = "$(stat -c %i "$STAGING/pagestore/app/packs/$p")" ]

    tracker_day "$DB"
    run_json
    local content2
    content2="$(content_of "$DB")"
    [ "$content1" != "$content2" ]
    b2sum_check "$SET"
    size="$(stat -c %s "$DB")"
    echo "second run: data_added $ADDED of a $size-byte database"
    [ "$ADDED" -le $((size / 10)) ]
    # the manifest's database checksum is the staged database's
    [ "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["pagestore"]["pages_reused"] > 0')" = true ]

    # each snapshot restores to the database's content at its time
    sc restore --snapshot "$snap1" --to "$T/r1"
    sc restore --snapshot "$SNAP" --to "$T/r2"
    [ "$(content_of "$T/r1/sqlite/app.db")" = "$content1" ]
    [ "$(content_of "$T/r2/sqlite/app.db")" = "$content2" ]
    [ "$(sqlite3 "$T/r2/sqlite/app.db" 'PRAGMA integrity_check')" = ok ]
    [ "$(b2sum <"$T/r2/sqlite/app.db" | cut -d' ' -f1)" = \
        "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["database"]["blake2b"]')" ]
    b2sum_check "$T/r2"

    # forget the older snapshot and prune: the newer stands alone
    rst forget "$snap1" --prune >/dev/null
    rm -rf "$T/r2"
    sc restore --snapshot "$SNAP" --to "$T/r2"
    [ "$(content_of "$T/r2/sqlite/app.db")" = "$content2" ]
    run --separate-stderr sc verify --snapshot "$SNAP"
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"rebuilt sqlite/app.db from its page map"* ]]
    run --separate-stderr sc drill
    echo "$stderr"
    [ "$status" -eq 0 ]
}

@test "pages: restore --apply puts the rebuilt database back" {
    run_json
    local content
    content="$(content_of "$DB")"
    sqlite3 "$DB" "DELETE FROM torrents WHERE id > 100"
    run --separate-stderr sc restore --set latest --to "$T/out" --apply --source app --force
    [ "$status" -eq 0 ]
    [[ "$output" == *"sqlite/app.db (rebuilt, checked against the manifest's database checksum)"* ]]
    [ "$(content_of "$DB")" = "$content" ]
}

@test "layout = file (control): the second run uploads most of the file again" {
    sed -i '/^layout = pages$/d' "$CONF"
    layout file
    run_json
    tracker_day "$DB"
    run_json
    local size
    size="$(stat -c %s "$DB")"
    echo "layout = file: second run data_added $ADDED of a $size-byte database"
    [ "$ADDED" -ge $((size / 2)) ]
}

@test "pages: a truncated map is exit 7 naming it (as shipped, and forged consistent)" {
    stage_ok
    unlink_set
    local map="$SET/sqlite/app.pagemap"
    truncate -s -40 "$map"
    restore_fails_naming sqlite/app.pagemap
    forge_set "$SET" 'put_file("sqlite/app.pagemap", setdir + "/sqlite/app.pagemap")'
    restore_fails_naming "sqlite/app.pagemap: truncated"
}

@test "pages: a truncated pack is exit 7 naming it" {
    stage_ok
    unlink_set
    local pack
    pack="$(first_pack)"
    truncate -s -4096 "$SET/$pack"
    restore_fails_naming "$pack"
    forge_set "$SET" "put_file('$pack', setdir + '/$pack')"
    restore_fails_naming "$pack: truncated"
    # the store's pack is untouched
    b2sum_check "$STAGING/sets/$(sc_sets | tail -n 1)"
}

@test "pages: a pack missing is exit 7 naming it" {
    stage_ok
    unlink_set
    local pack
    pack="$(first_pack)"
    rm "$SET/$pack"
    restore_fails_naming "$pack"
    forge_set "$SET" "m['files'] = [f for f in m['files'] if f['path'] != '$pack']"
    restore_fails_naming "$pack: pack missing"
}

@test "pages: a page altered is exit 7: its hash in the map, or the whole database's" {
    stage_ok
    unlink_set
    local pack
    pack="$(first_pack)"
    # a byte of the second page of the pack, with the pack's checksums forged
    flip_byte "$SET/$pack" 5000
    forge_set "$SET" "put_file('$pack', setdir + '/$pack')"
    restore_fails_naming "$pack: hash mismatch (page"
    # verify --set rebuilds the database too, so it catches what B2SUMS cannot
    run --separate-stderr sc verify --set "${SET##*/}"
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"$pack: hash mismatch (page"* ]]
    # now the map's page hash forged too: only the database's checksum is left
    python3 - "$SET" "$pack" <<'PY'
import hashlib, os, sys
setdir, pack = sys.argv[1], sys.argv[2]
packid = bytes.fromhex(os.path.basename(pack)[:-5])
data = open(os.path.join(setdir, pack), "rb").read()
mp = os.path.join(setdir, "sqlite/app.pagemap")
m = bytearray(open(mp, "rb").read())
page_size = int.from_bytes(m[8:12], "little")
for at in range(128, len(m), 40):
    if m[at:at + 16] == packid and int.from_bytes(m[at + 16:at + 24], "little") == page_size:
        page = data[page_size:2 * page_size]
        m[at + 24:at + 40] = hashlib.blake2b(page, digest_size=32).digest()[:16]
open(mp, "wb").write(m)
PY
    forge_set "$SET" 'put_file("sqlite/app.pagemap", setdir + "/sqlite/app.pagemap")'
    restore_fails_naming "rebuilt from sqlite/app.pagemap: checksum mismatch"
}

@test "pages: local retention drops the packs no kept set holds" {
    sed -i 's/^keep = 3$/keep = 1/' "$CONF"
    run_json
    sqlite3 "$DB" "UPDATE torrents SET completed = completed + 1 WHERE id <= 4500"
    run_json
    local second
    second="$(pyjson "$SET/MANIFEST.json" '[f["path"].split("/")[-1] for f in j["files"]]')"
    # the same rows again: every page the second run packed is replaced
    sqlite3 "$DB" "UPDATE torrents SET completed = completed + 1 WHERE id <= 4500"
    run_json
    [ "$(sc_sets | wc -l)" -eq 1 ]
    [ "$(pyjson "$REPORT" 'j["upkeep"]["app"]["packs_dropped"]')" -ge 1 ]
    # the store holds exactly the packs the kept set holds
    [ "$(store_packs)" = "$(set_packs)" ]
    b2sum_check "$SET"
    sc restore --set latest --to "$T/out"
    [ "$(content_of "$T/out/sqlite/app.db")" = "$(content_of "$DB")" ]
}

# repack_threshold = N for [sqlite app].
repack_threshold() {
    sed -i "/^\[sqlite app\]\$/a repack_threshold = $1" "$CONF"
}

@test "pages: a pack mostly unused by the kept sets is retired; the next run repacks its live pages, then it goes" {
    sed -i 's/^keep = 3$/keep = 1/' "$CONF"
    repack_threshold 1
    run_json
    local first_pack
    first_pack="$(store_packs)"
    [ "$(printf '%s\n' "$first_pack" | wc -l)" -eq 1 ]
    tracker_day "$DB"
    run_json
    # the first set is gone; the one kept uses only part of the first pack
    [ "$(pyjson "$REPORT" 'j["upkeep"]["app"]["repack"]["packs_retired"]')" -eq 1 ]
    local live
    live="$(pyjson "$REPORT" 'j["upkeep"]["app"]["repack"]["pages_live"]')"
    [ "$live" -gt 0 ]
    # the kept set still links the retired pack and restores
    [ -e "$SET/sqlite/app.packs/$first_pack" ]
    # the database unchanged: this run writes exactly the retired pack's
    # live pages again (the cost of repacking), and links it no more
    run_json
    [ "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["pagestore"]["pages_repacked"]')" -eq "$live" ]
    [ "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["pagestore"]["pages_new"]')" -eq "$live" ]
    [ ! -e "$SET/sqlite/app.packs/$first_pack" ]
    # its last set pruned, the retired pack left the store
    [ "$(pyjson "$REPORT" 'j["upkeep"]["app"]["packs_dropped"]')" -ge 1 ]
    ! store_packs | grep -qx "$first_pack"
    [ "$(store_packs)" = "$(set_packs)" ]
    b2sum_check "$SET"
    sc restore --snapshot "$SNAP" --to "$T/out"
    [ "$(content_of "$T/out/sqlite/app.db")" = "$(content_of "$DB")" ]
}

@test "pages: under the default repack_threshold (30%) a pack a few percent unused stays in use" {
    sed -i 's/^keep = 3$/keep = 1/' "$CONF"
    run_json
    tracker_day "$DB"
    run_json
    [ "$(pyjson "$REPORT" 'j["upkeep"]["app"]["repack"]["threshold_percent"]')" -eq 30 ]
    [ "$(pyjson "$REPORT" 'j["upkeep"]["app"]["repack"]["packs_retired"]')" -eq 0 ]
    run_json
    [ "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["pagestore"]["pages_new"]')" -eq 0 ]
}

@test "pages: no repacking while a kept set has no record of the pages it uses" {
    sed -i 's/^keep = 3$/keep = 1/' "$CONF"
    repack_threshold 1
    run_json
    # as a set staged by an older stagecoach: its usage unknown
    sqlite3 "$STAGING/pagestore/app/index.sqlite" "DELETE FROM uses"
    tracker_day "$DB"
    sed -i 's/^keep = 1$/keep = 2/' "$CONF"
    run_json
    [[ "$(pyjson "$REPORT" 'j["upkeep"]["app"]["repack"]["skipped"]')" == *"has no record"* ]]
    [ "$(sqlite3 "$STAGING/pagestore/app/index.sqlite" 'SELECT count(*) FROM retired')" -eq 0 ]
}

@test "pages: SIGKILL at every unlink and fsync of an upkeep (drop, retire): the next run recovers, every set verifies" {
    strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here (ptrace not permitted)"
    repack_threshold 1
    run_json
    tracker_day "$DB"
    run_json
    tracker_day "$DB"
    run_json
    # three shipped sets; forget keeps one: upkeep drops packs and retires
    sed -i 's/^keep = 3$/keep = 1/' "$CONF"
    local n st killed=0
    for n in $(seq 1 60); do
        st=0
        # LeakSanitizer cannot run under ptrace (make sanitize): leaks off here
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -qq -o /dev/null -e trace=unlink,unlinkat,fsync,fdatasync \
            -e inject=unlink,unlinkat,fsync,fdatasync:signal=KILL:when="$n" \
            "$SC" -c "$CONF" forget >>"$T/killed.log" 2>&1 || st=$?
        echo "kill at syscall $n: status $st"
        [ "$st" -eq 0 ] && break
        [ "$st" -eq 137 ] || { tail -n 20 "$T/killed.log"; false; }
        killed=$((killed + 1))
    done
    [ "$st" -eq 0 ]
    [ "$killed" -ge 3 ]
    # nothing half-done in the store: the index knows exactly its packs,
    # and the store holds at most the packs of kept sets
    refute compgen -G "$STAGING/pagestore/app/packs/.tmp-*"
    [ "$(sqlite3 "$STAGING/pagestore/app/index.sqlite" 'PRAGMA integrity_check')" = ok ]
    [ "$(sqlite3 "$STAGING/pagestore/app/index.sqlite" 'SELECT count(*) FROM packs')" -eq \
        "$(store_packs | wc -l)" ]
    [ "$(store_packs)" = "$(set_packs)" ]
    local id
    for id in $(sc_sets); do
        b2sum_check "$STAGING/sets/$id"
    done
    # the next run stages and ships; its set restores the live content
    run_json
    b2sum_check "$SET"
    sc restore --snapshot "$SNAP" --to "$T/out"
    [ "$(content_of "$T/out/sqlite/app.db")" = "$(content_of "$DB")" ]
}

@test "layout = auto (the default): file below pages_from_mib, pages from it; --dry-run says which" {
    sed -i '/^layout = pages$/d' "$CONF"
    run --separate-stderr sc --dry-run run
    [ "$status" -eq 0 ]
    [[ "$output" == *"sqlite/app.db (layout = auto: file, pages from 1024 MiB"* ]]
    stage_ok
    [ -f "$SET/sqlite/app.db" ]
    [ ! -e "$SET/sqlite/app.pagemap" ]
    # a 9 MB database from 5 MiB: pages
    sed -i "/^\[sqlite app\]\$/a pages_from_mib = 5" "$CONF"
    run --separate-stderr sc --dry-run run
    [[ "$output" == *"sqlite/app.pagemap + sqlite/app.packs/ (layout = auto: pages, pages from 5 MiB"* ]]
    stage_ok
    [ -f "$SET/sqlite/app.pagemap" ]
    [ ! -e "$SET/sqlite/app.db" ]
    [ "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["layout"]')" = pages ]
    sc restore --set latest --to "$T/out"
    [ "$(content_of "$T/out/sqlite/app.db")" = "$(content_of "$DB")" ]
    # an explicit layout wins over the size
    sed -i '/^pages_from_mib = 5$/a layout = file' "$CONF"
    stage_ok
    [ -f "$SET/sqlite/app.db" ]
}

@test "pages: pages_from_mib and layout are checked" {
    local bad
    for bad in "pages_from_mib = -1" "pages_from_mib = 99999999999" "pages_from_mib = 1G" "layout = page"; do
        cp "$CONF" "$CONF.orig"
        sed -i "/^\[sqlite app\]\$/a $bad" "$CONF"
        run --separate-stderr sc check
        echo "$bad: $status $stderr"
        [ "$status" -eq 3 ]
        [[ "$stderr" == *"${bad%% =*}"* ]]
        mv "$CONF.orig" "$CONF"
    done
}

@test "pages: repack_threshold must be a percentage" {
    repack_threshold 120
    run --separate-stderr sc check
    [ "$status" -eq 3 ]
    [[ "$stderr" == *repack_threshold* ]]
}

@test "pages: an interrupted packing leaves nothing the next run cannot use" {
    stage_ok
    # what a kill -9 leaves: a half-written pack, and a whole pack the
    # index never heard of (renamed, its pages not committed)
    local packs="$STAGING/pagestore/app/packs" pack
    head -c 5000 /dev/urandom >"$packs/.tmp-0123456789abcdef0123456789abcdef.pack"
    pack="$(ls "$packs" | grep -v '^\.tmp' | head -n 1)"
    sqlite3 "$STAGING/pagestore/app/index.sqlite" "DELETE FROM pages; DELETE FROM packs"
    tracker_day "$DB"
    stage_ok
    [ ! -e "$packs/.tmp-0123456789abcdef0123456789abcdef.pack" ]
    # the pack was indexed again and used, not written a second time
    [ -e "$SET/sqlite/app.packs/$pack" ]
    [ "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["pagestore"]["pages_reused"] > 0')" = true ]
    b2sum_check "$SET"
    sc restore --set latest --to "$T/out"
    [ "$(content_of "$T/out/sqlite/app.db")" = "$(content_of "$DB")" ]
}

# stage killed (SIGKILL) at 0, STEP, 2 STEP ... MAX ms after its first
# temporary file appears; at least 3 of them must land.
kill_stages() {
    local crashkill delay line killed=0
    crashkill="$(sc_helper crashkill)"
    for delay in $(seq 0 "$1" "$2"); do
        line="$("$crashkill" -w tmp -d "$delay" -s "$STAGING" -t 60 -o "$T/killed.log" -- "$SC" -c "$CONF" stage)"
        echo "delay $delay: $line"
        [[ "$line" == killed* || "$line" == finished* ]]
        [[ "$line" != killed* ]] || killed=$((killed + 1))
    done
    [ "$killed" -ge 3 ]
}

# Nothing half-written is left in the store at $1, and its index knows
# exactly the packs on its disk.
store_knows_its_packs() {
    refute compgen -G "$1/packs/.tmp-*"
    [ "$(sqlite3 "$1/index.sqlite" 'SELECT count(*) FROM packs')" -eq "$(ls -1 "$1/packs" | wc -l)" ]
}

# The store sealed to the key of use_encryption, and its packs.
sealed_store() {
    printf '%s' "$STAGING/pagestore/app/sealed-$(sed -n 's/^id: //p' "$ID.pub")"
}
sealed_packs() {
    (cd "$(sealed_store)/packs" && ls -1 | LC_ALL=C sort)
}
sealed_set_packs() {
    (cd "$STAGING/sets" && ls -1 -- */sqlite/app.packs | grep '\.pack\.enc$' | LC_ALL=C sort -u)
}

@test "pages with [staging] encrypt: packs sealed once and linked; no plaintext; the second run uploads about the changed pages" {
    local marker=stagecoach-known-row-4711
    sqlite3 "$DB" "INSERT INTO torrents (info_hash) VALUES (CAST('$marker' AS BLOB))"
    use_encryption
    run_json
    local set1=$SET snap1=$SNAP content1 size p
    content1="$(content_of "$DB")"
    # the set: the sealed map and sealed packs only; B2SUMS covers them
    [ -f "$set1/sqlite/app.pagemap.enc" ]
    refute compgen -G "$set1/sqlite/app.packs/*.pack"
    compgen -G "$set1/sqlite/app.packs/*.pack.enc" >/dev/null
    b2sum_check "$set1"
    # nothing under STAGING holds the row in the clear (the positive
    # control: a plain pages set does, in its packs, below)
    refute grep -rqa "$marker" "$STAGING"
    # a sealed pack in the set is the store's own file, sealed once
    p="$(cd "$set1" && ls sqlite/app.packs | head -n 1)"
    [ "$(stat -c %i "$set1/sqlite/app.packs/$p")" = "$(stat -c %i "$(sealed_store)/packs/$p")" ]
    [ "$(pyjson "$set1/MANIFEST.json" "[f['plaintext']['path'] for f in j['files'] if f['path'] == 'sqlite/app.packs/$p'][0]")" = \
        "sqlite/app.packs/${p%.enc}" ]

    tracker_day "$DB"
    run_json
    local content2
    content2="$(content_of "$DB")"
    b2sum_check "$SET"
    size="$(stat -c %s "$DB")"
    echo "second run: data_added $ADDED of a $size-byte database"
    [ "$ADDED" -le $((size / 10)) ]
    [ "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["pagestore"]["pages_reused"] > 0')" = true ]

    # each snapshot restores with the identity, to its own content
    sc restore --snapshot "$snap1" --to "$T/r1" --identity "$ID"
    sc restore --snapshot "$SNAP" --to "$T/r2" --identity "$ID"
    [ "$(content_of "$T/r1/sqlite/app.db")" = "$content1" ]
    [ "$(content_of "$T/r2/sqlite/app.db")" = "$content2" ]
    [ "$(b2sum <"$T/r2/sqlite/app.db" | cut -d' ' -f1)" = \
        "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["database"]["blake2b"]')" ]
    # another key is exit 1, and writes no database
    "$SC" keygen --out "$T/keys/other" >/dev/null 2>&1
    run --separate-stderr sc restore --snapshot "$SNAP" --to "$T/r3" --identity "$T/keys/other"
    echo "$stderr"
    [ "$status" -eq 1 ]
    [ ! -e "$T/r3/sqlite/app.db" ]

    # the positive control for the grep above
    rm -rf "$STAGING"
    sed -i '/^encrypt = yes$/d; /^recipient = /d' "$CONF"
    stage_ok
    grep -rqa "$marker" "$STAGING/pagestore/app/packs"
}

@test "pages with [staging] encrypt: verify --set and --snapshot rebuild the database with the identity; nothing decrypted stays" {
    use_encryption
    run_json
    run --separate-stderr sc --json verify --set latest --identity "$ID"
    echo "$stderr"
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/v.json"
    [ "$(pyjson "$T/v.json" 'j["plaintext_checked"]')" = true ]
    [[ "$stderr" == *"rebuilt sqlite/app.db from its page map"* ]]
    run --separate-stderr sc verify --snapshot "$SNAP" --identity "$ID"
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"rebuilt sqlite/app.db from its page map"* ]]
    # without the identity: the stored files only, and it says so
    run --separate-stderr sc verify --set latest
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"plaintext was not checked"* ]]
    # nothing decrypted is left behind
    refute compgen -G "$STAGING/.verify-*"
}

@test "pages: plain and sealed stores do not mix; once the plain sets are gone, so are the plain packs" {
    sed -i 's/^keep = 3$/keep = 1/' "$CONF"
    run_json
    [ -n "$(store_packs)" ]
    use_encryption
    run_json
    # every page written again, sealed: no plain pack is linked from a sealed set
    [ "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["pagestore"]["pages_reused"]')" -eq 0 ]
    refute compgen -G "$SET/sqlite/app.packs/*.pack"
    # keep = 1: the plain set went, and the upkeep dropped its packs
    [ -z "$(store_packs)" ]
    [ "$(pyjson "$REPORT" 'j["upkeep"]["app"]["packs_dropped"]')" -ge 1 ]
    [ "$(sealed_packs)" = "$(sealed_set_packs)" ]
    tracker_day "$DB"
    run_json
    [ "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["pagestore"]["pages_reused"] > 0')" = true ]
    [ "$(sealed_packs)" = "$(sealed_set_packs)" ]
    sc restore --set latest --to "$T/out" --identity "$ID"
    [ "$(content_of "$T/out/sqlite/app.db")" = "$(content_of "$DB")" ]
}

@test "pages with [staging] encrypt: a sealed pack the index lost is not reused (no secret key to read it); one no set links goes" {
    use_encryption
    stage_ok
    local store pack
    store="$(sealed_store)"
    pack="$(sealed_packs | head -n 1)"
    # what a kill -9 between a rename and the commit leaves: a sealed pack
    # the index never heard of, linked by no set
    cp "$store/packs/$pack" "$store/packs/0123456789abcdef0123456789abcdef.pack.enc"
    head -c 5000 /dev/urandom >"$store/packs/.tmp-00112233445566778899aabbccddeeff.pack.enc"
    sqlite3 "$store/index.sqlite" "DELETE FROM pages; DELETE FROM packs; DELETE FROM plain"
    stage_ok
    [ ! -e "$store/packs/0123456789abcdef0123456789abcdef.pack.enc" ]
    refute compgen -G "$store/packs/.tmp-*"
    # the first set's packs stay (it links them) but are not used again
    [ -e "$store/packs/$pack" ]
    [ "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["pagestore"]["pages_reused"]')" -eq 0 ]
    [ ! -e "$SET/sqlite/app.packs/$pack" ]
    b2sum_check "$SET"
    sc restore --set latest --to "$T/out" --identity "$ID"
    [ "$(content_of "$T/out/sqlite/app.db")" = "$(content_of "$DB")" ]
}

@test "pages with [staging] encrypt: SIGKILL at moments of a stage: the next stage succeeds, every set verifies with the identity" {
    use_encryption
    stage_ok
    tracker_day "$DB"
    kill_stages 6 96
    stage_ok
    store_knows_its_packs "$(sealed_store)"
    local id content
    content="$(content_of "$DB")"
    for id in $(sc_sets | tail -n 4); do
        b2sum_check "$STAGING/sets/$id"
        rm -rf "$T/out"
        sc verify --set "$id" --identity "$ID" >/dev/null
        sc restore --set "$id" --to "$T/out" --identity "$ID" >/dev/null
    done
    [ "$(content_of "$T/out/sqlite/app.db")" = "$content" ]
}

@test "pages: a manifest whose source name is a path is refused, nothing written outside" {
    stage_ok
    unlink_set
    forge_set "$SET" 'm["sources"][0]["name"] = "../../escape"'
    restore_fails_naming "a source without a valid name"
    refute compgen -G "$T/escape*"
    refute compgen -G "$T/bad-*/../escape*"
}

@test "pages: docs/sqlite-pages.md's snippet reassembles the database without stagecoach" {
    stage_ok
    cp -a "$SET" "$T/hand"
    sed -n '/^```python$/,/^```$/p' "$SC_ROOT/docs/sqlite-pages.md" | sed '1d;$d' >"$T/reassemble.py"
    python3 "$T/reassemble.py" "$T/hand" app
    [ "$(b2sum <"$T/hand/sqlite/app.db" | cut -d' ' -f1)" = \
        "$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["database"]["blake2b"]')" ]
    [ "$(content_of "$T/hand/sqlite/app.db")" = "$(content_of "$DB")" ]
}

@test "pages: two runs under a writer: the second uploads about the changed pages; each snapshot's rebuilt database is one committed state" {
    # tests/helpers/sqlite_writer keeps c.a == c.b == count(*) FROM log in
    # every commit, beside the tracker table
    local writer ready="$T/writer.ready"
    writer="$(sc_helper sqlite_writer)"
    "$writer" "$DB" 0 wal "$ready" >"$T/writer.out" 2>"$T/writer.err" 3>&- &
    sc_track $!
    sc_wait_for_file "$ready"
    run_json
    local snap1=$SNAP size
    tracker_day "$DB"
    run_json
    # the writer appends all the while, so more pages change than in a
    # day alone (how many depends on the machine's speed: 14-25% seen);
    # the upload is still about the changed (new) pages
    local new
    size="$(stat -c %s "$DB")"
    new="$(pyjson "$SET/MANIFEST.json" 'j["sources"][0]["pagestore"]["bytes_new"]')"
    echo "second run under the writer: data_added $ADDED, new pages $new bytes, database $size bytes"
    [ "$ADDED" -le $((2 * new)) ]
    local snap
    for snap in "$snap1" "$SNAP"; do
        rm -rf "$T/r"
        sc restore --snapshot "$snap" --to "$T/r"
        [ "$(sqlite3 "$T/r/sqlite/app.db" 'PRAGMA integrity_check')" = ok ]
        run sqlite3 "$T/r/sqlite/app.db" "SELECT a = b AND b = (SELECT count(*) FROM log) AND a > 0 FROM c"
        echo "snapshot $snap: $output"
        [ "$output" = 1 ]
    done
    [ "$(sqlite3 "$T/r/sqlite/app.db" 'SELECT count(*) FROM torrents')" -eq 150075 ]
}

@test "pages: a manifest cannot say its database was already checked" {
    sed -i '/^layout = pages$/d' "$CONF"
    stage_ok
    sqlite3 "$SET/sqlite/app.db" "DELETE FROM torrents WHERE id > 100"
    forge_set "$SET" "put_file('sqlite/app.db', setdir + '/sqlite/app.db'); m['sources'][0]['rebuilt_and_checked'] = '$T/out/sqlite/app.db'"
    run --separate-stderr sc restore --set latest --to "$T/out" --apply --source app --into "$T/new.db"
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *"table torrents has 100 rows"* ]]
    [ ! -e "$T/new.db" ]
}

@test "pages: SIGKILL at moments of a stage: the next stage succeeds, every set and pack verifies" {
    stage_ok # a store to reuse, so that kills land in lookups and links too
    tracker_day "$DB"
    kill_stages 5 120
    stage_ok
    store_knows_its_packs "$STAGING/pagestore/app"
    # every published set verifies and rebuilds the live content
    local id content
    content="$(content_of "$DB")"
    for id in $(sc_sets | tail -n 4); do
        b2sum_check "$STAGING/sets/$id"
        rm -rf "$T/out"
        sc restore --set "$id" --to "$T/out" >/dev/null
    done
    [ "$(content_of "$T/out/sqlite/app.db")" = "$content" ]
}

@test "pages: a page store the set cannot hard-link to (another mount): packs are copied, and verify and restore" {
    [ "$(id -u)" = 0 ] || skip "needs root for a bind mount"
    stage_ok
    # the store on a mount of its own: link() from it into the set is EXDEV
    BIND="$STAGING/pagestore"
    mount --bind "$BIND" "$BIND" || skip "bind mounts are not possible here"
    tracker_day "$DB"
    stage_ok
    local p
    p="$(first_pack)"
    # a copy, not a second name of the store's file
    [ "$(stat -c %h "$SET/$p")" = 1 ]
    [ "$(stat -c %i "$SET/$p")" != "$(stat -c %i "$STAGING/pagestore/app/packs/${p##*/}")" ]
    b2sum_check "$SET"
    sc restore --set "${SET##*/}" --to "$T/out"
    [ "$(content_of "$T/out/sqlite/app.db")" = "$(content_of "$DB")" ]
}
