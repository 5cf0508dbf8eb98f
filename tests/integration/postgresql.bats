#!/usr/bin/env bats
# [postgresql NAME] against a real PostgreSQL server started by
# scripts/test-postgres.sh (its own cluster, a unix socket in its directory,
# 127.0.0.1 on a free port). Covers Chinook and every type and kind of name
# the issue lists, round trips through stagecoach's restore and through
# psql alone (load.sql), consistency under a concurrent writer with 1 and 4
# connections, byte-identical dumps, the least-privilege role under the
# process sampler, every fault of the issue (one exit code, one ERROR line,
# no set, no connection left reading, the next run works), restore into a
# non-empty database, appended rows leaving earlier files byte-identical,
# drill and doctor.
#
# Roles: app owns the test databases (and restores them: it may create
# databases and owns the objects); sc is the backup role (pg_read_all_data
# and BYPASSRLS, nothing else); scnorls lacks BYPASSRLS; scmini reads only
# what it was granted. Passwords are random and never on an argv.

load restore_helpers # helpers, and forge_set

PG_SCRIPT="$SC_ROOT/scripts/test-postgres.sh"
CHINOOK="$SC_ROOT/../shared/fixtures/chinook/Chinook_PostgreSql.sql"
[ -f "$CHINOOK" ] || CHINOOK=/work/shared/fixtures/chinook/Chinook_PostgreSql.sql

# A random word; never on any argv.
pw_word() {
    head -c 15 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

setup_file() {
    command -v pg_dump >/dev/null || skip "pg_dump not installed"
    # Short: a unix socket path is limited to 107 bytes.
    PG_DIR="$(mktemp -d /tmp/scpg.XXXXXX)"
    export PG_DIR
    "$PG_SCRIPT" start "$PG_DIR" 3>&-
    PG_PORT="$(cat "$PG_DIR/port")"
    export PG_PORT
    # passwords with the characters a .pgpass line must escape
    (umask 077 && printf 'sc:%s\\x\n' "$(pw_word)" >"$PG_DIR.sc.pass")
    (umask 077 && printf 'app%s\n' "$(pw_word)" >"$PG_DIR.app.pass")
    (umask 077 && printf 'min%s\n' "$(pw_word)" >"$PG_DIR.min.pass")
    local scpw apppw minpw
    scpw="$(cat "$PG_DIR.sc.pass")"
    apppw="$(cat "$PG_DIR.app.pass")"
    minpw="$(cat "$PG_DIR.min.pass")"
    su_psql -d postgres <<SQL
CREATE ROLE app LOGIN CREATEDB PASSWORD '$apppw';
CREATE ROLE sc LOGIN BYPASSRLS PASSWORD '${scpw//\'/\'\'}' IN ROLE pg_read_all_data;
CREATE ROLE scnorls LOGIN PASSWORD '$minpw' IN ROLE pg_read_all_data;
CREATE ROLE scmini LOGIN PASSWORD '$minpw';
CREATE DATABASE chinook OWNER app;
CREATE DATABASE sc_types OWNER app;
SQL
    sed -e '/^DROP DATABASE/d' -e '/^CREATE DATABASE/d' -e '/^\\c /d' "$CHINOOK" |
        app_psql -d chinook >/dev/null
    chinook_extras | app_psql -d chinook >/dev/null
    types_sql | app_psql -d sc_types >/dev/null
}

teardown_file() {
    "$PG_SCRIPT" stop "$PG_DIR" || true
    rm -rf "$PG_DIR" "$PG_DIR".*.pass
}

setup() {
    sc_setup
    cp "$PG_DIR.sc.pass" "$T/sc.pass"
    cp "$PG_DIR.app.pass" "$T/app.pass"
    cp "$PG_DIR.min.pass" "$T/min.pass"
    chmod 600 "$T"/*.pass
    SCPW="$(cat "$T/sc.pass")"
    write_conf "database = chinook"
}

teardown() {
    sc_teardown
    if [ -n "${KILL_DIR:-}" ]; then
        "$PG_SCRIPT" stop "$KILL_DIR" || true
        rm -rf "$KILL_DIR"
    fi
}

# ---- helpers ------------------------------------------------------------------

# psql as the superuser over the socket, stopping at the first error.
su_psql() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres "$@"
}

# psql as the databases' owner (as the superuser, then SET ROLE: no password needed).
app_psql() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres -c 'SET ROLE app' -f - "$@"
}

# Values as a dump would print them.
PG_TEXT_OPTIONS='-c TimeZone=UTC -c extra_float_digits=3 -c DateStyle=ISO -c IntervalStyle=postgres'

# One value (the last statement's): pgv DB SQL.
pgv() {
    local db=$1
    shift
    PGOPTIONS=$PG_TEXT_OPTIONS psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" \
        -U postgres -d "$db" -c "$*"
}

# The config: [staging], [postgresql db] with the given extra lines (the
# database among them), [restic]. The backup role sc, over the socket.
write_conf() {
    {
        printf '[staging]\ndir = staging\n\n[postgresql db]\nhost = %s\nport = %s\n' "$PG_DIR" "$PG_PORT"
        printf 'user = sc\npassword_file = sc.pass\n'
        printf '%s\n' "$@"
        printf '\n[restic]\nrepository = %s\npassword_file = restic.pass\ninit = yes\n' "$REPO"
    } >"$CONF"
}

# stagecoach as the owner, for restores (environment overrides, as an
# operator would do it).
sc_as_app() {
    STAGECOACH_POSTGRESQL_DB_USER=app STAGECOACH_POSTGRESQL_DB_PASSWORD_FILE="$T/app.pass" sc "$@"
}

# Stage (helpers.bash); DUMPDIR is the dump's place in the set.
stage_dump_ok() {
    stage_ok "$@" || return 1
    DUMPDIR="$SET/postgresql/db"
}

manifest() {
    pyjson "$SET/MANIFEST.json" "[s for s in j['sources'] if s['name'] == 'db'][0]$1"
}

# The data file(s) of schema.table, as the manifest maps them, one a line.
files_of() {
    pyjson "$SET/MANIFEST.json" "'\\n'.join(f['file'] for s in j['sources'] if s['name'] == 'db' for t in s['data'] if (t['schema'], t['table']) == (a[0], a[1]) for f in t['files'])" "$1" "$2"
}

# Every table's (and materialized view's) rows as text, sorted, hashed: one
# line per relation. The session prints values as a dump would read them.
rows_of() {
    local db=$1 rel
    PGOPTIONS=$PG_TEXT_OPTIONS psql -X -A -t -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "$db" -c "
        SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
        ORDER BY 1" | while IFS= read -r rel; do
        printf '%s %s\n' "$rel" "$(PGOPTIONS=$PG_TEXT_OPTIONS psql -X -A -t -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "$db" -c \
            "SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text COLLATE \"C\"), '')) FROM ONLY $rel x")"
    done
}

# Definitions of everything else: views, functions, triggers, indexes,
# constraints, policies, sequences' values, types, comments.
objects_of() {
    psql -X -A -t -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "$1" <<'SQL'
SELECT 'view ' || schemaname || '.' || viewname || ': ' || definition FROM pg_views WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
UNION ALL SELECT 'matview ' || schemaname || '.' || matviewname || ': ' || definition FROM pg_matviews
UNION ALL SELECT 'function ' || p.oid::regprocedure::text || ': ' || pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p') AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE NOT t.tgisinternal
UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
UNION ALL SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
UNION ALL SELECT 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ': ' || coalesce(qual, '') FROM pg_policies
UNION ALL SELECT 'rls ' || oid::regclass::text FROM pg_class WHERE relrowsecurity
UNION ALL SELECT 'sequence ' || schemaname || '.' || sequencename || ' = ' || coalesce(last_value::text, 'unset') FROM pg_sequences
UNION ALL SELECT 'type ' || t.oid::regtype::text || ' ' || t.typtype::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND t.typrelid = 0 AND t.typcategory <> 'A' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
UNION ALL SELECT 'comment ' || obj_description(c.oid, 'pg_class') FROM pg_class c WHERE obj_description(c.oid, 'pg_class') IS NOT NULL
UNION ALL SELECT 'extension ' || extname FROM pg_extension
UNION ALL SELECT 'owner ' || c.oid::regclass::text || ' ' || pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
ORDER BY 1
SQL
}

# Both databases hold the same rows and objects.
same_databases() {
    rows_of "$1" >"$T/a.rows"
    rows_of "$2" >"$T/b.rows"
    diff "$T/a.rows" "$T/b.rows"
    objects_of "$1" >"$T/a.obj"
    objects_of "$2" >"$T/b.obj"
    diff "$T/a.obj" "$T/b.obj"
    [ "$(wc -l <"$T/a.rows")" -ge 1 ]
}

# The test server's major version (15 on Debian 12).
server_major() {
    echo $(($(pgv postgres 'SHOW server_version_num') / 10000))
}

drop_db() {
    su_psql -d postgres -c "DROP DATABASE IF EXISTS \"$1\""
}

# Connections of stagecoach (and of its pg_dump) still on the server.
our_connections() {
    pgv postgres "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'stagecoach%'"
}

# Wait (at most ~30 s) until a data file of the set being built exceeds
# $1 bytes; prints its size.
wait_data_bytes() {
    local want=$1 i f size=0
    for ((i = 0; i < 1500; i++)); do
        size=0
        for f in "$STAGING"/.tmp-*/postgresql/db/data/*.copy; do
            [ -f "$f" ] || continue
            size=$((size + $(stat -c %s "$f" 2>/dev/null || echo 0)))
        done
        [ "$size" -gt "$want" ] && break
        sleep 0.02
    done
    echo "$size"
}

# The faults' common end: exactly one ERROR line, no set, nothing left.
failed_cleanly() {
    local errfile=$1
    cat "$errfile"
    [ "$(grep -c '] ERROR ' "$errfile")" -eq 1 ]
    [ -z "$(sc_sets)" ]
    refute sc_tmp_left
    refute compgen -G "$STAGING/.tmp-*/.pgpass-*"
}

# ---- fixtures -----------------------------------------------------------------

# A view, a function, a trigger and a sequence next to Chinook's tables.
chinook_extras() {
    cat <<'SQL'
CREATE VIEW track_minutes AS SELECT track_id, name, milliseconds / 60000.0 AS minutes FROM track;
CREATE VIEW long_tracks AS SELECT * FROM track_minutes WHERE minutes > 10;
CREATE FUNCTION invoice_total(i integer) RETURNS numeric LANGUAGE sql STABLE
  AS $$ SELECT sum(unit_price * quantity) FROM invoice_line WHERE invoice_id = i $$;
CREATE TABLE audit (id bigserial PRIMARY KEY, what text NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION log_genre() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit (what) VALUES ('genre ' || NEW.name); RETURN NEW; END $$;
CREATE TRIGGER genre_audit AFTER INSERT ON genre FOR EACH ROW EXECUTE FUNCTION log_genre();
INSERT INTO genre VALUES (26, 'Stagecoach Test Genre');
CREATE SEQUENCE ticket_seq START 1000 INCREMENT 7;
SELECT nextval('ticket_seq'), nextval('ticket_seq');
COMMENT ON TABLE track IS 'every track, with its album';
SQL
}

# Every type and kind of name of the issue, written in a session that is
# not in UTC.
types_sql() {
    cat <<'SQL'
SET TimeZone = 'Asia/Kolkata';
CREATE EXTENSION citext;
CREATE SCHEMA "Mixed Schema";
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'it''s complicated');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a integer, b text);
CREATE TABLE types (
  id integer PRIMARY KEY,
  b bytea, n numeric(60,20), n40 numeric, f8 double precision, f4 real,
  ts timestamp, tstz timestamptz, d date, t time, ttz timetz, iv interval,
  a1 integer[], a2 text[], j json, jb jsonb, u uuid, ip inet, net cidr, mac macaddr,
  m mood, p posint, c pair, r int4range, tr tstzrange, bo boolean, bits bit varying(20),
  x xml, pt point, ci citext, ch char(5));
INSERT INTO types VALUES
 (1, '\x00ff27225c0a0d09', 12345678901234567890123456789012345678.12345678901234567890,
  1234567890123456789012345678901234567890, 'Infinity', '-Infinity',
  '2024-02-29 12:34:56.789012', '2024-03-31 02:30:00 Europe/Berlin', '0001-01-01', '23:59:59.999999', '04:05:06+05:30',
  '1 year 2 mons 3 days 04:05:06.789', '{1,NULL,3}', '{{"a","b"},{NULL,"d\"q"}}',
  '{"b": 1,  "a": [1, 2], "a": "dup"}', '{"z": {"y": [1, 2.50, null, "ü😀"]}, "a": ""}',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '2001:db8::/32', '08:00:2b:01:02:03',
  'it''s complicated', 42, ROW(1, 'one, "quoted"'), '[1,10)', '[2024-01-01 00:00+00,2024-06-01 00:00+02)',
  true, B'10101', '<a x="1">t&amp;</a>', '(1.5,-2.25)', 'MiXeD', 'ab'),
 (2, '\x', -0.00000000000000000001, -99999999999999999999999999999999999999.9999999999, 'NaN', 'NaN',
  '294276-12-31 23:59:59.999999', '-infinity', 'infinity', '00:00', '00:00:00-12', '-1 day +02:00:00.000001',
  '[0:1]={5,6}', '{}', '[]', '{}', '00000000-0000-0000-0000-000000000000', '::1', '10.0.0.0/8', 'ff:ff:ff:ff:ff:ff',
  'sad', 1, ROW(NULL, NULL), 'empty', '(,)', false, B'', '<empty/>', '(0,0)', '', ''),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, decode(repeat('00ff', 5000), 'hex'), 0, 1e-40, -0.0, 1.17549435e-38::real,
  '1970-01-01 00:00:00', '1999-12-31 23:59:59.5+14', '2000-02-29', '12:00', '12:00+00', '0',
  '{-2147483648,2147483647}', '{"tab\there","new\nline","back\\slash","\\."}', '"string"', '"s"',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '0.0.0.0', '0.0.0.0/0', '00:00:00:00:00:00',
  'happy', 2147483647, ROW(-1, ''), '(-10,-5]', 'empty', NULL, B'11111111111111111111', NULL, NULL, 'ß', 'x');
INSERT INTO types (id, f8, f4, n40) VALUES (5, 4.9406564584124654e-324, 1.4e-45, 0.1), (6, 0.1, 0.1, 1e40),
 (7, 1.7976931348623157e308, 3.4028235e38, -1), (8, 2.2250738585072014e-308, -0.0, 3.14159265358979323846264338327950288419716939937510);

-- quoted mixed-case schema, table and column names, and reserved words
CREATE TABLE "Mixed Schema"."Order" ("Select" integer PRIMARY KEY, "from" text, "Group By" text, "we""ird" text, "naïve ü" int);
INSERT INTO "Mixed Schema"."Order" VALUES (1, 'a', 'b', 'c"d', 7), (2, NULL, '', 'x''y', NULL);
CREATE TABLE "select" ("table" text, "Column" int);
INSERT INTO "select" VALUES ('x', 1), ('x', 1), (NULL, NULL), ('x', 1), ('', 0);
CREATE TABLE "CamelCase" (id bigint PRIMARY KEY, "Value" text);
INSERT INTO "CamelCase" SELECT g, 'v' || g FROM generate_series(-5, 5) g;

-- no primary key: physical order, duplicate rows kept
CREATE TABLE nopk (a int, b text);
INSERT INTO nopk VALUES (2, 'x'), (1, 'y'), (2, 'x'), (NULL, NULL), (2, 'x');
-- a unique index over NOT NULL columns instead of a primary key
CREATE TABLE uniq (a int NOT NULL, b text, UNIQUE (a));
INSERT INTO uniq VALUES (3, 'c'), (1, 'a'), (2, 'b');

-- text: 1 MB, empty vs NULL, COPY's own markers and escapes
CREATE TABLE texts (id int PRIMARY KEY, t text);
INSERT INTO texts VALUES (1, repeat('0123456789abcdef', 65536)), (2, ''), (3, NULL), (4, '\.'),
 (5, E'a\tb\nc\\.\r\n'), (6, E'\\.\n'), (7, E'back\\slash\\'), (8, E'\\N'), (9, 'N'), (10, E'\u00e9\u4e2d\U0001F600');

-- generated and identity columns
CREATE TABLE gen (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a int, twice int GENERATED ALWAYS AS (a * 2) STORED);
INSERT INTO gen (a) VALUES (1), (2), (NULL);
CREATE TABLE ident (id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 100) PRIMARY KEY, v text);
INSERT INTO ident (v) VALUES ('first'), ('second');
INSERT INTO ident VALUES (5, 'explicit');

-- a partitioned table
CREATE TABLE meas (id int, logdate date NOT NULL, v int, PRIMARY KEY (id, logdate)) PARTITION BY RANGE (logdate);
CREATE TABLE meas_2023 PARTITION OF meas FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE meas_2024 PARTITION OF meas FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE meas_other PARTITION OF meas DEFAULT;
INSERT INTO meas SELECT g, date '2023-06-01' + g * 7, g FROM generate_series(1, 100) g;

-- inheritance: each table's own rows (COPY reads ONLY the table)
CREATE TABLE parent_t (id int PRIMARY KEY, v text);
CREATE TABLE child_t (extra int) INHERITS (parent_t);
INSERT INTO parent_t VALUES (1, 'parent');
INSERT INTO child_t VALUES (2, 'child', 7);

-- a foreign key whose child sorts first, a materialized view, a policy
CREATE TABLE z_parent (id int PRIMARY KEY, name text);
CREATE TABLE a_child (id int PRIMARY KEY, pid int REFERENCES z_parent (id) ON DELETE CASCADE);
INSERT INTO z_parent VALUES (1, 'one'), (2, 'two');
INSERT INTO a_child VALUES (10, 1), (11, 2), (12, NULL);
CREATE MATERIALIZED VIEW mood_counts AS SELECT m, count(*) AS n FROM types GROUP BY m;
CREATE UNIQUE INDEX ON mood_counts (m);
CREATE TABLE secret (id int PRIMARY KEY, owner name NOT NULL DEFAULT current_user, v text);
ALTER TABLE secret ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON secret USING (owner = current_user);
INSERT INTO secret VALUES (1, 'app', 'mine'), (2, 'someone', 'theirs');
CREATE INDEX texts_lower ON texts (lower(left(t, 100)));
CREATE TABLE empty_t (id int PRIMARY KEY);
CREATE TABLE no_columns ();
INSERT INTO no_columns DEFAULT VALUES;
INSERT INTO no_columns DEFAULT VALUES;
SQL
}

# ---- tests --------------------------------------------------------------------

@test "Chinook round-trips through restore --apply: rows as text, views, functions, triggers, sequences" {
    stage_dump_ok
    b2sum_check "$SET"
    [ "$(manifest '["tables"]["public"]["track"]')" = 3503 ]
    drop_db chinook_r
    run --separate-stderr sc_as_app restore --set latest --to "$T/r" --apply --source db --into chinook_r
    echo "$output $stderr"
    [ "$status" -eq 0 ]
    [[ "$output" == *'put back postgresql db: database "chinook_r"'*"counts verified"* ]]
    same_databases chinook chinook_r
    grep -q '^view public.long_tracks' "$T/a.obj"
    grep -q '^trigger CREATE TRIGGER genre_audit' "$T/a.obj"
    grep -q '^sequence public.ticket_seq = 1007$' "$T/a.obj"
    grep -q '^function invoice_total' "$T/a.obj"
    # the restored copy works as one: the trigger fires, the sequence goes on
    [ "$(pgv chinook_r "SELECT nextval('ticket_seq')")" = 1014 ]
    pgv chinook_r "SET ROLE app; INSERT INTO genre VALUES (99, 'x')" >/dev/null
    [ "$(pgv chinook_r "SELECT what FROM audit ORDER BY id DESC LIMIT 1")" = "genre x" ]
    drop_db chinook_r
}

@test "load.sql restores with the stock psql alone, the same as stagecoach's restore" {
    stage_dump_ok
    drop_db chinook_psql
    su_psql -d postgres -c 'CREATE DATABASE chinook_psql OWNER app TEMPLATE template0'
    (cd "$DUMPDIR" && PGPASSFILE=/dev/null psql -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" \
        -U postgres -c 'SET ROLE app' -f load.sql -d chinook_psql >/dev/null)
    same_databases chinook chinook_psql
    drop_db chinook_psql
    # the manifest's load_command, as it stands, from the set's directory
    local cmd
    cmd="$(manifest '["load_command"]')"
    echo "$cmd"
    [[ "$cmd" == "createdb -T template0 -E UTF8 --lc-collate=C.UTF-8 --lc-ctype=C.UTF-8 NEWDB && cd postgresql/db && psql -X -v ON_ERROR_STOP=1 -d NEWDB -f load.sql" ]]
    (cd "$SET" && PGHOST=$PG_DIR PGPORT=$PG_PORT PGUSER=postgres sh -c "${cmd//NEWDB/chinook_psql}" >/dev/null)
    same_databases chinook chinook_psql
    [ "$(pgv chinook_psql 'SHOW lc_collate')" = C.UTF-8 ]
    drop_db chinook_psql
}

@test "every type and kind of name round-trips, through restore and through psql alone" {
    write_conf "database = sc_types"
    stage_dump_ok
    # valid UTF-8 (bytea is hex) and no raw NUL
    cat "$DUMPDIR"/data/*.copy | iconv -f UTF-8 -t UTF-8 >/dev/null
    [ "$(cat "$DUMPDIR"/data/*.copy | tr -cd '\000' | wc -c)" -eq 0 ]
    drop_db types_r
    run --separate-stderr sc_as_app restore --set latest --to "$T/r" --apply --source db --into types_r
    echo "$stderr"
    [ "$status" -eq 0 ]
    same_databases sc_types types_r
    cat "$T/a.rows"
    [ "$(wc -l <"$T/a.rows")" -ge 18 ]
    # spot checks of what a lossy dump would get wrong
    [ "$(pgv types_r "SELECT f8::text || ' ' || f4::text FROM types WHERE id = 2")" = "NaN NaN" ]
    [ "$(pgv types_r "SELECT f8::text FROM types WHERE id = 5")" = "5e-324" ]
    [ "$(pgv types_r "SELECT n40::text FROM types WHERE id = 1")" = "1234567890123456789012345678901234567890" ]
    [ "$(pgv types_r "SELECT tstz::text FROM types WHERE id = 1")" = "2024-03-31 01:30:00+00" ]
    [ "$(pgv types_r "SELECT j::text FROM types WHERE id = 1")" = '{"b": 1,  "a": [1, 2], "a": "dup"}' ]
    [ "$(pgv types_r "SELECT array_lower(a1, 1) FROM types WHERE id = 2")" = 0 ]
    [ "$(pgv types_r "SELECT length(t) FROM texts WHERE id = 1")" = 1048576 ]
    [ "$(pgv types_r "SELECT count(*) FROM texts WHERE t = ''")" = 1 ]
    [ "$(pgv types_r "SELECT count(*) FROM texts WHERE t IS NULL")" = 1 ]
    [ "$(pgv types_r "SELECT t FROM texts WHERE id = 4")" = '\.' ]
    [ "$(pgv types_r "SELECT count(*) FROM nopk WHERE a = 2")" = 3 ]
    [ "$(pgv types_r "SELECT count(*) FROM no_columns")" = 2 ]
    [ "$(pgv types_r "SELECT twice FROM gen WHERE a = 2")" = 4 ]
    [ "$(pgv types_r "SELECT count(*) FROM ONLY parent_t")" = 1 ]
    [ "$(pgv types_r "SELECT n FROM mood_counts WHERE m = 'sad'")" = 1 ]
    # identity columns continue where they were
    pgv types_r "SET ROLE app; INSERT INTO gen (a) VALUES (9)" >/dev/null
    [ "$(pgv types_r "SELECT max(id) FROM gen")" = 4 ]
    # the partitions' rows went to the partitions, and the parent holds none of its own
    [ "$(pgv types_r "SELECT count(*) FROM meas_2024")" = "$(pgv sc_types "SELECT count(*) FROM meas_2024")" ]
    # the same through psql alone
    drop_db types_psql
    su_psql -d postgres -c 'CREATE DATABASE types_psql OWNER app TEMPLATE template0'
    (cd "$DUMPDIR" && psql -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres \
        -c 'SET ROLE app' -f load.sql -d types_psql >/dev/null)
    same_databases sc_types types_psql
    drop_db types_r
    drop_db types_psql
}

@test "the manifest states method, snapshot, WAL position, rows per table and warnings" {
    write_conf "database = sc_types"
    stage_dump_ok
    [ "$(manifest '["kind"]')" = postgresql ]
    [ "$(manifest '["consistency"]')" = exported-snapshot ]
    local major
    major=$(server_major)
    [[ "$(manifest '["method"]')" == *"pg_dump $major"*"COPY over libpq"*"2 connections sharing one exported snapshot"* ]]
    [[ "$(manifest '["server_version"]')" == "$major".* ]]
    [ "$(manifest '["server_version"]')" = "$(pgv postgres 'SHOW server_version')" ]
    [[ "$(manifest '["snapshot"]')" =~ ^[0-9A-F]+-[0-9A-F]+-[0-9]+$ ]]
    [[ "$(manifest '["wal_lsn"]')" =~ ^[0-9A-F]+/[0-9A-F]+$ ]]
    [ "$(manifest '["database"]')" = sc_types ]
    [ "$(manifest '["encoding"]')" = UTF8 ]
    [ "$(manifest '["threads"]')" = 2 ]
    # rows per table: every table, equal to count(*) on the server
    local schema table n
    while IFS='|' read -r schema table; do
        n=$(pgv sc_types "SELECT count(*) FROM ONLY \"${schema//\"/\"\"}\".\"${table//\"/\"\"}\"")
        printf '%s|%s|%s\n' "$schema" "$table" "$n"
    done < <(pgv sc_types "SELECT n.nspname || '|' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1") >"$T/counts"
    [ "$(wc -l <"$T/counts")" -ge 18 ]
    diff "$T/counts" <(pyjson "$SET/MANIFEST.json" "'\\n'.join(sorted('%s|%s|%d' % (sc, t, n) for s in j['sources'] for sc, ts in s['tables'].items() for t, n in ts.items()))")
    [ "$(manifest '["tables"]["public"]["meas_2023"]')" -gt 0 ]
    [ "$(manifest '["tables"]["public"].get("meas", "absent")')" = absent ] # the parent holds no rows
    # the tables without a key are named, and only those
    run -0 manifest '["warnings"]'
    echo "$output"
    [[ "$output" == *"public.nopk has no primary key"* ]]
    [[ "$output" == *'public.select has no primary key'* ]]
    [[ "$output" == *"public.no_columns has no primary key"* ]]
    [[ "$output" != *"public.uniq"* ]]
    [[ "$output" != *"public.types"* ]]
    [ "$(manifest '["files"][0]')" = postgresql/db/pre-data.sql ]
    [ "$(manifest '["files"][-2]')" = postgresql/db/post-data.sql ]
    [ "$(manifest '["files"][-1]')" = postgresql/db/load.sql ]
    [ "$(sc_tree "$SET" | grep -c '^postgresql/db/data/[0-9]*\.copy$')" = "$(manifest '["ranges"]')" ]
    # load.sql names every data file, in the manifest's order
    diff <(sed -n "s|^\\\\copy .* FROM '\\(.*\\)'$|\\1|p" "$DUMPDIR/load.sql") \
        <(pyjson "$SET/MANIFEST.json" "'\\n'.join(f['file'] for s in j['sources'] for t in s['data'] for f in t['files'])")
    # the schema: pg_dump's, of both sections
    grep -q 'CREATE TABLE "Mixed Schema"."Order"' "$DUMPDIR/pre-data.sql"
    grep -q 'CREATE POLICY own_rows' "$DUMPDIR/post-data.sql"
    ! grep -q 'COPY public' "$DUMPDIR/pre-data.sql" "$DUMPDIR/post-data.sql"
}

# A writer that moves money between accounts in short transactions, each
# also recording the move in a ledger: the balances always sum to zero,
# and each account's balance is what its ledger rows say.
start_writer() {
    su_psql -d postgres -c 'DROP DATABASE IF EXISTS bank' -c 'CREATE DATABASE bank OWNER app'
    app_psql -d bank <<'SQL'
CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL);
INSERT INTO acct SELECT g, 0 FROM generate_series(1, 100) g;
CREATE TABLE ledger (id bigserial PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount int NOT NULL, note text);
-- history: balanced moves from 0 to 0, enough rows for several key ranges
INSERT INTO ledger (src, dst, amount, note) SELECT 1 + g % 100, 1 + g % 100, 5, repeat('h', 100) FROM generate_series(1, 220000) g;
SQL
    python3 -c '
import random
random.seed(5)
for i in range(60000):
    a, b, amt = random.randint(1, 100), random.randint(1, 100), random.randint(1, 50)
    print("BEGIN; UPDATE acct SET bal = bal - %d WHERE id = %d; INSERT INTO ledger (src, dst, amount, note) VALUES (%d, %d, %d, %r); UPDATE acct SET bal = bal + %d WHERE id = %d; COMMIT;" % (amt, a, a, b, amt, "move %d" % i, amt, b))
' >"$T/writer.sql"
    psql -X -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -d bank -f "$T/writer.sql" >/dev/null 2>&1 &
    WRITER=$!
    sc_track "$WRITER"
    local i
    for ((i = 0; i < 200; i++)); do
        [ "$(pgv bank 'SELECT count(*) FROM ledger')" -gt 220100 ] && break
        sleep 0.05
    done
}

# The restored bank is consistent: the sum is zero, every balance matches the ledger.
bank_consistent() {
    local db=$1
    [ "$(pgv "$db" 'SELECT sum(bal) FROM acct')" = 0 ]
    [ "$(pgv "$db" 'SELECT count(*) FROM acct a LEFT JOIN (SELECT id, sum(delta) AS s FROM (SELECT dst AS id, amount AS delta FROM ledger UNION ALL SELECT src, -amount FROM ledger) x GROUP BY id) l USING (id) WHERE a.bal <> coalesce(l.s, 0)')" = 0 ]
}

@test "a concurrent writer: restored with threads = 1 and 4, the money sums to zero and balances match the ledger" {
    start_writer
    local n
    for n in 1 4; do
        local before after
        before=$(pgv bank 'SELECT count(*) FROM ledger')
        write_conf "database = bank" "threads = $n"
        stage_dump_ok
        after=$(pgv bank 'SELECT count(*) FROM ledger')
        echo "threads=$n: ledger $before rows before, $after after; dumped $(manifest '["tables"]["public"]["ledger"]')"
        [ "$(manifest '["threads"]')" = "$n" ]
        [ "$(manifest '["ranges"]')" -gt 4 ] # the ledger is read in several ranges
        [ "$after" -gt "$before" ]           # the writer really wrote during the dump
        [ "$(manifest '["tables"]["public"]["ledger"]')" -ge "$before" ]
        [ "$(manifest '["tables"]["public"]["ledger"]')" -le "$after" ]
        drop_db "bank_r$n"
        run --separate-stderr sc_as_app restore --set "${SET##*/}" --to "$T/r$n" --apply --source db --into "bank_r$n"
        echo "$stderr"
        [ "$status" -eq 0 ]
        bank_consistent "bank_r$n"
        sleep 1 # a new set id
    done
    kill "$WRITER" 2>/dev/null || true
    wait "$WRITER" 2>/dev/null || true
    drop_db bank_r1
    drop_db bank_r4
}

@test "threads = 1 and threads = 4 write byte-identical dumps of the same data" {
    if [ "$(pgv bank 'SELECT count(*) FROM acct' 2>/dev/null)" != 100 ]; then
        start_writer
        kill "$WRITER" 2>/dev/null || true
        wait "$WRITER" 2>/dev/null || true
    fi
    write_conf "database = bank" "threads = 1"
    stage_dump_ok
    local one=$DUMPDIR
    sleep 1
    write_conf "database = bank" "threads = 4"
    stage_dump_ok
    [ "$(manifest '["threads"]')" = 4 ]
    diff -r "$one/data" "$DUMPDIR/data"
    # load.sql too, but for its first line (the snapshot's id)
    diff <(tail -n +2 "$one/load.sql") <(tail -n +2 "$DUMPDIR/load.sql")
    # pg_dump's files differ only in the random key of its \restrict lines
    # (a defence against a server that injects psql commands: it must not be guessable)
    local f
    for f in pre-data.sql post-data.sql; do
        diff <(grep -v '^\\\(un\)\?restrict ' "$one/$f") <(grep -v '^\\\(un\)\?restrict ' "$DUMPDIR/$f")
    done
    [ "$(ls "$one/data" | wc -l)" -gt 4 ]
}

@test "appending 1% of rows leaves every earlier data file byte-identical" {
    su_psql -d postgres -c 'DROP DATABASE IF EXISTS grow' -c 'CREATE DATABASE grow OWNER app'
    app_psql -d grow <<'SQL'
CREATE TABLE events (id bigint PRIMARY KEY, payload bytea, note text, doc jsonb, amount numeric(12,2), at timestamptz);
INSERT INTO events SELECT g, sha256(g::text::bytea), 'event ' || g, jsonb_build_object('n', g), g / 7.0, timestamptz '2024-01-01' + g * interval '1 second'
  FROM generate_series(1, 200000) g;
CREATE UNIQUE INDEX events_note ON events (note);
CREATE TABLE small (id int PRIMARY KEY, v text);
INSERT INTO small VALUES (1, 'a'), (2, 'b');
SQL
    write_conf "database = grow"
    stage_dump_ok
    local old=$SET
    local -a before
    mapfile -t before < <(files_of public events)
    echo "${#before[@]} files before"
    [ "${#before[@]}" -ge 4 ]
    app_psql -d grow -c "INSERT INTO events SELECT g, sha256(g::text::bytea), 'event ' || g, '{}', 0, now() FROM generate_series(200001, 202000) g"
    sleep 1
    stage_dump_ok
    local -a after
    mapfile -t after < <(files_of public events)
    # every range but the open-ended last one: the same bytes
    local i last=$((${#before[@]} - 1))
    for ((i = 0; i < last; i++)); do
        cmp "$old/postgresql/db/${before[$i]}" "$DUMPDIR/${after[$i]}"
    done
    # the last one starts with what it held before
    local n
    n=$(stat -c %s "$old/postgresql/db/${before[$last]}")
    cmp -n "$n" "$old/postgresql/db/${before[$last]}" "$DUMPDIR/${after[$last]}"
    [ "$(stat -c %s "$DUMPDIR/${after[$last]}")" -gt "$n" ]
    [ "$(manifest '["tables"]["public"]["events"]')" = 202000 ]
    # the other table's file too
    cmp "$old/postgresql/db/$(pyjson "$old/MANIFEST.json" "[f['file'] for t in j['sources'][0]['data'] if t['table'] == 'small' for f in t['files']][0]")" \
        "$DUMPDIR/$(files_of public small)"
    drop_db grow
}

@test "restore into a database that holds objects is refused without --force; --force replaces it" {
    write_conf "database = chinook"
    stage_dump_ok
    drop_db chinook_f
    run --separate-stderr sc_as_app restore --set latest --to "$T/r1" --apply --source db --into chinook_f
    [ "$status" -eq 0 ]
    # a second time: the target is not empty
    app_psql -d chinook_f -c "INSERT INTO genre VALUES (500, 'only in the target')"
    run --separate-stderr sc_as_app restore --set latest --to "$T/r2" --apply --source db --into chinook_f
    echo "$stderr"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *'database "chinook_f" is not empty'*"--force"* ]]
    [ "$(grep -c '] ERROR ' <<<"$stderr")" -eq 1 ]
    [ "$(pgv chinook_f "SELECT count(*) FROM genre WHERE genre_id = 500")" = 1 ] # untouched
    run --separate-stderr sc_as_app restore --set latest --to "$T/r3" --apply --source db --into chinook_f --force
    echo "$stderr"
    [ "$status" -eq 0 ]
    [ "$(pgv chinook_f "SELECT count(*) FROM genre WHERE genre_id = 500")" = 0 ]
    same_databases chinook chinook_f
    # an empty database that exists is loaded into as it is
    drop_db chinook_f
    su_psql -d postgres -c 'CREATE DATABASE chinook_f OWNER app'
    run --separate-stderr sc_as_app restore --set latest --to "$T/r4" --apply --source db --into chinook_f
    [ "$status" -eq 0 ]
    [ "$(pgv chinook_f "SELECT count(*) FROM track")" = 3503 ]
    drop_db chinook_f
}

@test "a restore that fails half-way drops the database it created (and says why once)" {
    write_conf "database = chinook"
    stage_dump_ok
    drop_db chinook_h
    # the backup role may not create databases: the restore fails at once
    run --separate-stderr sc restore --set latest --to "$T/r1" --apply --source db --into chinook_h
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"permission denied to create database"* ]]
    # it may, but the objects belong to app: pre-data.sql fails, the new database goes again
    su_psql -d postgres -c 'ALTER ROLE sc CREATEDB'
    run --separate-stderr sc restore --set latest --to "$T/r2" --apply --source db --into chinook_h
    su_psql -d postgres -c 'ALTER ROLE sc NOCREATEDB'
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'psql -f pre-data.sql failed'*'must be'*'member of role "app"'* ]]
    [ "$(grep -c '] ERROR ' <<<"$stderr")" -eq 1 ]
    [ -z "$(pgv postgres "SELECT datname FROM pg_database WHERE datname = 'chinook_h'")" ]
    refute compgen -G "$T/r2/.pgpass-*"
}

@test "a consistent forgery (a data file without its last row, every checksum agreeing): exit 7, the database dropped" {
    stage_dump_ok
    forge_set "$SET" '
rel = "postgresql/db/" + [f["file"] for s in m["sources"] for t in s["data"] if t["table"] == "genre" for f in t["files"]][0]
p = os.path.join(setdir, rel)
rows = open(p, "rb").read().splitlines(keepends=True)
open(p, "wb").write(b"".join(rows[:-1]))
put_file(rel, p)'
    b2sum_check "$SET"
    drop_db chinook_x
    run --separate-stderr sc_as_app restore --set latest --to "$T/r" --apply --source db --into chinook_x
    echo "$stderr"
    [ "$status" -eq 7 ]
    [[ "$stderr" == *'loaded 25 rows into "public"."genre", the manifest recorded 26'* ]]
    [ "$(grep -c '] ERROR ' <<<"$stderr")" -eq 1 ]
    [ -z "$(pgv postgres "SELECT datname FROM pg_database WHERE datname = 'chinook_x'")" ]
}

@test "the backup role's password is never on an argv or in an environment (sampled every 2 ms), nor left in a file" {
    PROCSCAN="$(sc_helper procscan)"
    printf 'SCPW %s\n' "$SCPW" >"$T/needles"
    printf 'APPPW %s\n' "$(cat "$T/app.pass")" >>"$T/needles"
    chmod 600 "$T/needles"
    # over TCP this time: host and port, a password the server asks for
    write_conf "database = sc_types"
    sed -i "s|^host = .*|host = 127.0.0.1|" "$CONF"
    "$PROCSCAN" -n "$T/needles" -o "$T/scan.out" -s "$T/scan.stop" -t 300 -i 2000 &
    local scan=$!
    sc_track "$scan"
    sc_wait_for_file "$T/scan.out"
    sleep 0.05
    stage_dump_ok -v
    drop_db types_s
    run --separate-stderr sc_as_app -v restore --set latest --to "$T/r" --apply --source db --into types_s
    local restore_status=$status restore_err=$stderr
    touch "$T/scan.stop"
    wait "$scan"
    cat "$T/scan.out"
    [ "$restore_status" -eq 0 ] || { echo "$restore_err"; false; }
    # the sampler saw pg_dump and psql run, and no password anywhere
    grep -q '^seen argv0=pg_dump$' "$T/scan.out"
    grep -q '^seen argv0=psql$' "$T/scan.out"
    grep -q '^seen argv0=stagecoach$' "$T/scan.out"
    [ -z "$(grep '^hit ' "$T/scan.out")" ]
    # nor in the logs, the set, the restore, or a passfile left behind
    [[ "$stderr" != *"$SCPW"* ]]
    [[ "$restore_err" != *"$(cat "$T/app.pass")"* ]]
    [ -z "$(grep -rlF -- "$SCPW" "$STAGING" "$T/r")" ]
    refute compgen -G "$STAGING/sets/*/.pgpass-*"
    refute compgen -G "$T/r/.pgpass-*"
    [ "$(pgv types_s 'SELECT count(*) FROM texts')" = 10 ]
    drop_db types_s
}

@test "a passfile (.pgpass format) works instead of password_file" {
    printf '*:*:*:sc:%s\n' "$(sed -e 's/\\/\\\\/g' -e 's/:/\\:/g' "$T/sc.pass")" >"$T/pgpass"
    chmod 600 "$T/pgpass"
    write_conf "database = chinook"
    sed -i 's|^password_file = sc.pass$|passfile = pgpass|' "$CONF"
    stage_dump_ok
    [ "$(manifest '["tables"]["public"]["genre"]')" = 26 ]
    chmod 644 "$T/pgpass"
    run --separate-stderr sc stage
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"passfile"*"chmod 600"* ]]
}

@test "a wrong password: exit 4, the server's reason, one ERROR line, no set; the password never shown" {
    printf 'Wr0ng-Secret-Value\n' >"$T/sc.pass"
    run --separate-stderr sc stage
    printf '%s\n' "$stderr" >"$T/err"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'password authentication failed for user "sc"'* ]]
    [[ "$stderr" == *"password_file"* ]]
    [[ "$stderr$output" != *Wr0ng-Secret-Value* ]]
    failed_cleanly "$T/err"
    run sc --json stage
    [ "$status" -eq 4 ]
    [[ "$output" != *Wr0ng-Secret-Value* ]]
    # the right one again: the next run works
    cp "$PG_DIR.sc.pass" "$T/sc.pass"
    stage_dump_ok
}

@test "no server: exit 4 quickly for a socket directory without a server and for a closed port" {
    mkdir -p "$T/nosock"
    write_conf "database = chinook"
    sed -i "s|^host = .*|host = $T/nosock|" "$CONF"
    run --separate-stderr sc stage
    printf '%s\n' "$stderr" >"$T/err"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"cannot connect"*"socket $T/nosock"*"is the server running"* ]]
    failed_cleanly "$T/err"
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    write_conf "database = chinook" "connect_timeout = 3s"
    sed -i -e "s|^host = .*|host = 127.0.0.1|" -e "s|^port = .*|port = $port|" "$CONF"
    SECONDS=0
    run --separate-stderr sc stage
    [ "$status" -eq 4 ]
    [ "$SECONDS" -le 20 ] # a bound that catches a hang, not a speed claim
    [[ "$stderr" == *"127.0.0.1:$port"* ]]
    [ -z "$(sc_sets)" ]
}

@test "a database that does not exist: exit 4 naming it" {
    write_conf "database = no_such_db"
    run --separate-stderr sc stage
    printf '%s\n' "$stderr" >"$T/err"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *'database "no_such_db" does not exist'* ]]
    failed_cleanly "$T/err"
}

@test "tables the role cannot read: exit 4 naming them (no SELECT; row security without BYPASSRLS)" {
    su_psql -d chinook <<'SQL'
GRANT CONNECT ON DATABASE chinook TO scmini;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO scmini;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO scmini;
REVOKE SELECT ON public.invoice, public.invoice_line FROM scmini;
SQL
    write_conf "database = chinook"
    sed -i -e 's|^user = sc$|user = scmini|' -e 's|^password_file = sc.pass$|password_file = min.pass|' "$CONF"
    run --separate-stderr sc stage
    printf '%s\n' "$stderr" >"$T/err"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"cannot read 2 tables: public.invoice, public.invoice_line"*"pg_read_all_data"* ]]
    failed_cleanly "$T/err"
    [ "$(our_connections)" = 0 ]
    # excluded, the rest is dumped
    write_conf "database = chinook" "exclude_table = public.invoice*"
    sed -i -e 's|^user = sc$|user = scmini|' -e 's|^password_file = sc.pass$|password_file = min.pass|' "$CONF"
    stage_dump_ok
    [ "$(manifest '["excluded"]')" = '["\"public\".\"invoice\"", "\"public\".\"invoice_line\""]' ]
    ! grep -q 'CREATE TABLE public.invoice ' "$DUMPDIR/pre-data.sql"
    grep -q 'CREATE TABLE public.track ' "$DUMPDIR/pre-data.sql"
    # row security: pg_read_all_data alone does not bypass it
    write_conf "database = sc_types"
    sed -i -e 's|^user = sc$|user = scnorls|' -e 's|^password_file = sc.pass$|password_file = min.pass|' "$CONF"
    run --separate-stderr sc stage
    echo "$stderr"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"cannot read 1 table: public.secret (row security)"*"BYPASSRLS"* ]]
}

@test "pg_dump missing or older than the server: exit 4 saying what to install" {
    mkdir -p "$T/nobin"
    write_conf "database = chinook" "bin_dir = $T/nobin"
    run --separate-stderr sc stage
    printf '%s\n' "$stderr" >"$T/err"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"pg_dump not found in bin_dir ($T/nobin)"* ]]
    failed_cleanly "$T/err"
    # a pg_dump of an older major version (a stand-in that says so)
    mkdir -p "$T/oldbin"
    printf '#!/bin/sh\necho "pg_dump (PostgreSQL) 11.22"\n' >"$T/oldbin/pg_dump"
    chmod 755 "$T/oldbin/pg_dump"
    write_conf "database = chinook" "bin_dir = $T/oldbin"
    run --separate-stderr sc stage
    printf '%s\n' "$stderr" >"$T/err"
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"version 11.22, older than the server ($(server_major)."*"install the PostgreSQL $(server_major) client programs"* ]]
    failed_cleanly "$T/err"
    [ "$(our_connections)" = 0 ]
    # not in PATH at all
    write_conf "database = chinook"
    run --separate-stderr env PATH="$T/nobin" "$SC" -c "$CONF" stage
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"pg_dump not found in PATH"* ]]
}

# A database big enough that a dump of it is caught in the middle.
big_db() {
    local db=$1
    shift
    "$@" -d postgres -c "CREATE DATABASE $db OWNER app"
    "$@" -d "$db" <<'SQL'
SET ROLE app;
CREATE TABLE t (id int PRIMARY KEY, pad text);
INSERT INTO t SELECT g, repeat(chr(65 + g % 26), 300) FROM generate_series(1, 600000) g;
SQL
    # the test servers commit asynchronously: make the rows survive a crash
    "$@" -d "$db" -c CHECKPOINT
}

@test "SIGINT mid-dump: exit 130, one ERROR line, no set, no connection left reading; the next run works" {
    su_psql -d postgres -c 'DROP DATABASE IF EXISTS big'
    big_db big su_psql
    write_conf "database = big" "threads = 4"
    "$SC" -c "$CONF" stage >"$T/out" 2>"$T/err" & # the binary itself: $! is its pid
    local pid=$! size
    sc_track "$pid"
    size=$(wait_data_bytes 20000000)
    echo "data files had $size bytes at SIGINT"
    [ "$size" -gt 20000000 ]
    kill -INT "$pid"
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 130 ]
    grep -q 'interrupted' "$T/err"
    failed_cleanly "$T/err"
    [ "$(our_connections)" = 0 ]
    write_conf "database = big"
    stage_dump_ok
    [ "$(manifest '["tables"]["public"]["t"]')" = 600000 ]
}

@test "a worker's connection terminated mid-dump: exit 4 naming the table, no set, nothing left reading" {
    pgv big 'SELECT 1' >/dev/null 2>&1 || big_db big su_psql
    write_conf "database = big" "threads = 4"
    sc stage >"$T/out" 2>"$T/err" &
    local pid=$! i victim=""
    sc_track "$pid"
    for ((i = 0; i < 1500; i++)); do
        victim=$(pgv postgres "SELECT pid FROM pg_stat_activity WHERE application_name = 'stagecoach' AND query LIKE 'COPY (SELECT%' LIMIT 1")
        [ -z "$victim" ] || break
        sleep 0.01
    done
    echo "terminating backend $victim"
    [ -n "$victim" ]
    pgv postgres "SELECT pg_terminate_backend($victim)" >/dev/null
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 4 ]
    grep -q 'reading public.t' "$T/err"
    failed_cleanly "$T/err"
    [ "$(our_connections)" = 0 ]
}

@test "the server killed mid-dump: exit 4, one ERROR line, no set; restarted, the next run works" {
    local dir
    dir="$(mktemp -d /tmp/scpgk.XXXXXX)"
    KILL_DIR=$dir # teardown stops it if the test fails early
    "$PG_SCRIPT" start "$dir" 3>&-
    local port
    port=$(cat "$dir/port")
    kpsql() { psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"; }
    kpsql -d postgres <<SQL
CREATE ROLE app LOGIN;
CREATE ROLE sc LOGIN PASSWORD '${SCPW//\'/\'\'}' IN ROLE pg_read_all_data;
SQL
    big_db big kpsql
    write_conf "database = big"
    sed -i -e "s|^host = .*|host = $dir|" -e "s|^port = .*|port = $port|" "$CONF"
    sc stage >"$T/out" 2>"$T/err" &
    local pid=$! size
    sc_track "$pid"
    size=$(wait_data_bytes 20000000)
    echo "data files had $size bytes when the server was killed"
    "$PG_SCRIPT" kill "$dir"
    local rc=0
    wait "$pid" || rc=$?
    [ "$size" -gt 20000000 ]
    [ "$rc" -eq 4 ]
    # a worker reading rows, or pg_dump running meanwhile, is the first to notice
    grep -Eq 'reading public.t|pg_dump --section=[a-z-]+ failed' "$T/err"
    failed_cleanly "$T/err"
    "$PG_SCRIPT" start "$dir" 3>&-
    stage_dump_ok
    echo "after the restart: $(manifest '["tables"]["public"]["t"]') rows"
    [ "$(manifest '["tables"]["public"]["t"]')" = 600000 ]
}

@test "drill: the latest snapshot loaded into <db>_drill_<id>, counted against the manifest, dropped" {
    write_conf "database = chinook"
    run --separate-stderr sc run
    echo "$stderr"
    [ "$status" -eq 0 ]
    run --separate-stderr sc_as_app --json drill
    echo "$stderr"
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/report.json"
    local src='[s for s in j["drill"]["sources"] if s["kind"] == "postgresql"][0]'
    local snap
    snap="$(pyjson "$T/report.json" 'j["drill"]["snapshot"]')"
    [ "$(pyjson "$T/report.json" "$src[\"status\"]")" = ok ]
    [ "$(pyjson "$T/report.json" "$src[\"target\"]")" = "chinook_drill_${snap:0:8}" ]
    local set
    set="$(pyjson "$T/report.json" 'j["drill"]["set"]')"
    [ "$(pyjson "$T/report.json" "$src[\"rows_total\"]")" = \
        "$(pyjson "$STAGING/sets/$set/MANIFEST.json" 'j["sources"][0]["rows_total"]')" ]
    [ "$(pyjson "$T/report.json" "$src[\"tables\"]")" = 12 ]
    [ "$(pyjson "$T/report.json" "$src.get(\"left_behind\", \"\")")" = "" ]
    [ -z "$(pgv postgres "SELECT datname FROM pg_database WHERE datname LIKE 'chinook\\_drill\\_%'")" ]
    # a database name near PostgreSQL's 63 bytes: the drill's name is cut to fit
    local long=db_with_a_rather_long_name_for_the_drill_to_shorten_x
    drop_db "$long"
    su_psql -d postgres -c "CREATE DATABASE $long OWNER app"
    app_psql -d "$long" -c 'CREATE TABLE t (id int PRIMARY KEY)' -c 'INSERT INTO t VALUES (1), (2)'
    write_conf "database = $long"
    run --separate-stderr sc run
    [ "$status" -eq 0 ]
    run --separate-stderr sc_as_app --json drill
    echo "$stderr"
    [ "$status" -eq 0 ]
    printf '%s' "$output" >"$T/report.json"
    local target
    target="$(pyjson "$T/report.json" "$src[\"target\"]")"
    [ "${#target}" -le 63 ]
    [[ "$target" == *_drill_* ]]
    drop_db "$long"
}

@test "doctor: reachable, versions, privileges and space; FAIL naming unreadable tables or an old pg_dump" {
    write_conf "database = chinook"
    run --separate-stderr sc doctor
    echo "$output"
    [[ "$output" == *"OK   postgresql db: PostgreSQL $(server_major)."*"a snapshot can be exported"* ]]
    [[ "$output" == *"OK   postgresql db pg_dump: "*"not older than the server"* ]]
    [[ "$output" == *"OK   postgresql db psql: "* ]]
    [[ "$output" == *"OK   postgresql db privileges: the role can read every table"* ]]
    [[ "$output" == *"OK   postgresql db space: database is"* ]]
    [[ "$output" == *"OK   secret postgresql db password_file"* ]]
    # doctor changes nothing: no staging directory, no connection left
    [ ! -d "$STAGING/sets" ] || [ -z "$(sc_sets)" ]
    [ "$(our_connections)" = 0 ]
    write_conf "database = chinook"
    sed -i -e 's|^user = sc$|user = scmini|' -e 's|^password_file = sc.pass$|password_file = min.pass|' "$CONF"
    su_psql -d chinook -c 'GRANT CONNECT ON DATABASE chinook TO scmini' \
        -c 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO scmini' \
        -c 'REVOKE SELECT ON public.track FROM scmini'
    run --separate-stderr sc doctor
    echo "$output"
    [ "$status" -eq 4 ] || [ "$status" -eq 6 ]
    [[ "$output" == *"FAIL postgresql db privileges: the role cannot read 1 table: public.track ("* ]]
    mkdir -p "$T/oldbin"
    printf '#!/bin/sh\necho "pg_dump (PostgreSQL) 12.1"\n' >"$T/oldbin/pg_dump"
    chmod 755 "$T/oldbin/pg_dump"
    write_conf "database = chinook" "bin_dir = $T/oldbin"
    run --separate-stderr sc doctor
    echo "$output"
    [[ "$output" == *"FAIL postgresql db pg_dump: "*"version 12.1, older than the server"* ]]
    [[ "$output" == *"WARN postgresql db psql: "*"not found in bin_dir"* ]]
    # the wrong password: FAIL with the server's reason
    write_conf "database = chinook"
    printf 'nope\n' >"$T/sc.pass"
    run --separate-stderr sc --json doctor
    [ "$status" -ne 0 ]
    [[ "$output" == *"password authentication failed"* ]]
    [[ "$output" != *"$SCPW"* ]]
}

@test "config: one database required, values checked, unknown keys refused, secrets private" {
    {
        printf '[postgresql db]\nhost = /x\n\n[restic]\nrepository = %s\npassword_file = restic.pass\n' "$REPO"
    } >"$CONF"
    run -3 sc config check
    [[ "$output" == *"[postgresql db] database: missing"* ]]
    write_conf "database = a" "database = b" "sslmode = sometimes" "threads = 17" "passfile = pgpass" "colour = blue"
    run -3 sc config check
    echo "$output"
    [[ "$output" == *"database: one database per section"* ]]
    [[ "$output" == *"sslmode: expected disable, allow, prefer, require, verify-ca or verify-full"* ]]
    [[ "$output" == *"threads: must be between 1 and 16"* ]]
    [[ "$output" == *"passfile: set either password_file"* ]]
    [[ "$output" == *"colour: unknown key"* ]]
    # environment overrides, as for every section
    write_conf "database = chinook"
    STAGECOACH_POSTGRESQL_DB_THREADS=3 run --separate-stderr sc config show
    [[ "$output" == *"threads = 3"* ]]
    STAGECOACH_POSTGRESQL_DB_SSLMODE=maybe run --separate-stderr sc config check
    [ "$status" -eq 3 ]
    # --dry-run says what the stage would do
    run --separate-stderr sc --dry-run stage
    [[ "$output" == *"postgresql db: database chinook on socket $PG_DIR port $PG_PORT -> postgresql/db/"* ]]
    chmod 644 "$T/sc.pass"
    run --separate-stderr sc stage
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"password_file"*"chmod 600"* ]]
}

@test "an encrypted set: every file sealed through the sink, restored and checked" {
    run -0 "$SC" keygen --symmetric --out "$T/key"
    write_conf "database = chinook"
    sed -i "s|^dir = staging$|dir = staging\nencrypt = yes\nkey_file = $T/key|" "$CONF"
    stage_dump_ok
    [ -f "$DUMPDIR/pre-data.sql.enc" ]
    [ -f "$DUMPDIR/data/0001.copy.enc" ]
    [ -z "$(find "$DUMPDIR" -type f ! -name '*.enc')" ]
    ! grep -rq 'For Those About To Rock' "$SET"
    drop_db chinook_e
    run --separate-stderr sc_as_app restore --set latest --to "$T/r" --apply --source db --into chinook_e
    echo "$stderr"
    [ "$status" -eq 0 ]
    same_databases chinook chinook_e
    drop_db chinook_e
}
