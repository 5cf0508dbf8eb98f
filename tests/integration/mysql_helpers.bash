# MySQL/MariaDB fixtures and helpers shared by mysql.bats and
# mysql_restore.bats: two private servers (SRC, the live one with binary
# logging, and DST, an empty one), the accounts, the fixtures (every column
# type, 20000 random floats, Chinook, chunked tables) and the comparisons
# (checksums, definitions of objects).
#
#   load helpers; load mysql_helpers
#   setup_file() { mysql_servers_start; }  teardown_file() { mysql_servers_stop; }

MARIADB_SCRIPT="$SC_ROOT/scripts/test-mariadb.sh"
CHINOOK="$SC_ROOT/../shared/fixtures/chinook/Chinook_MySql.sql"
[ -f "$CHINOOK" ] || CHINOOK=/work/shared/fixtures/chinook/Chinook_MySql.sql
SC_PASSWORD='sc-Pa55-w0rd-!x'

# Start SRC and DST, create the accounts, load Chinook and the type fixtures
# into SRC.
mysql_servers_start() {
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || skip "mariadbd not installed"
    # Short paths: a unix socket path is limited to 107 bytes.
    SRC_DIR="$(mktemp -d /tmp/scmy-src.XXXXXX)"
    DST_DIR="$(mktemp -d /tmp/scmy-dst.XXXXXX)"
    export SRC_DIR DST_DIR
    "$MARIADB_SCRIPT" start "$SRC_DIR"
    "$MARIADB_SCRIPT" start "$DST_DIR"
    my_src <<SQL
CREATE USER 'sc'@'localhost' IDENTIFIED BY '$SC_PASSWORD';
GRANT ALL ON *.* TO 'sc'@'localhost';
CREATE USER 'sc'@'127.0.0.1' IDENTIFIED BY '$SC_PASSWORD';
GRANT ALL ON *.* TO 'sc'@'127.0.0.1';
-- only SELECT and SHOW VIEW on one database: triggers, routines and events
-- are hidden from it
CREATE USER 'mini'@'localhost' IDENTIFIED BY '$SC_PASSWORD';
GRANT SELECT, SHOW VIEW ON sc_types.* TO 'mini'@'localhost';
-- what a dump needs, without RELOAD (so no lock window)
CREATE USER 'noreload'@'localhost' IDENTIFIED BY '$SC_PASSWORD';
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON *.* TO 'noreload'@'localhost';
SQL
    my_src <"$CHINOOK"
    types_sql | my_src
    floats_sql | my_src
}

mysql_servers_stop() {
    "$MARIADB_SCRIPT" stop "$SRC_DIR" || true
    "$MARIADB_SCRIPT" stop "$DST_DIR" || true
    rm -rf "$SRC_DIR" "$DST_DIR"
}

# ---- helpers ------------------------------------------------------------------

my_src() { mariadb --no-defaults --default-character-set=utf8mb4 -S "$SRC_DIR/sock" -uroot "$@"; }
my_dst() { mariadb --no-defaults --default-character-set=utf8mb4 -S "$DST_DIR/sock" -uroot "$@"; }

# The config: [staging], one [mysql db] section with the given extra lines,
# [restic] (required by validation even for stage).
write_conf() {
    {
        printf '[staging]\ndir = staging\n\n[mysql db]\nsocket = %s\nuser = sc\n' "$SRC_DIR/sock"
        printf 'password_file = my.pass\n'
        printf '%s\n' "$@"
        printf '\n[restic]\nrepository = %s\npassword_file = restic.pass\n' "$REPO"
    } >"$CONF"
}

# Stage (helpers.bash); DUMP is the dump's place in the set.
stage_dump_ok() {
    stage_ok "$@" || return 1
    DUMP="$SET/mysql/db/dump.sql"
}

manifest() {
    pyjson "$SET/MANIFEST.json" "[s for s in j['sources'] if s['name'] == 'db'][0]$1"
}

# Base tables of a database, one a line.
tables_of() {
    my_src -N -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$1' AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME"
}

# CHECKSUM TABLE ... EXTENDED and COUNT(*) of every table of db on one server.
fingerprint() {
    local server=$1 db=$2 t q
    while IFS= read -r t; do
        q="\`$db\`.\`${t//\`/\`\`}\`"
        printf '%s\t%s\t%s\n' "$t" \
            "$($server -N -e "CHECKSUM TABLE $q EXTENDED" | cut -f2)" \
            "$($server -N -e "SELECT COUNT(*) FROM $q")"
    done < <(tables_of "$db")
}

# Definitions of views, routines, triggers and events (SHOW CREATE's text).
objects_of() {
    local server=$1 db=$2 kind name col
    $server -N -e "
        SELECT 'VIEW', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '$db'
        UNION ALL SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '$db'
        UNION ALL SELECT 'TRIGGER', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '$db'
        UNION ALL SELECT 'EVENT', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '$db'
        ORDER BY 1, 2" |
        while IFS=$'\t' read -r kind name; do
            case $kind in
            VIEW) col=2 ;; TRIGGER) col=3 ;; EVENT) col=4 ;; *) col=3 ;;
            esac
            printf '%s %s: ' "$kind" "$name"
            $server -N -e "SHOW CREATE $kind \`$db\`.\`$name\`" | cut -f"$col"
        done
}

# Load a dump into DST with the stock client, the databases dropped first.
load_into_dst() {
    local db
    for db in "$@"; do my_dst -e "DROP DATABASE IF EXISTS \`$db\`"; done
    my_dst <"$DUMP"
}

# ---- fixtures -----------------------------------------------------------------

# Every type of the issue, in a session whose time zone is not UTC.
types_sql() {
    cat <<'SQL'
CREATE DATABASE sc_types CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE sc_types;
SET time_zone = '+05:30';
SET sql_mode = 'NO_ENGINE_SUBSTITUTION';

CREATE TABLE ints (
  id INT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
  mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, bu BIGINT UNSIGNED, z INT(6) ZEROFILL, bo BOOLEAN,
  b1 BIT(1), b5 BIT(5), b64 BIT(64));
INSERT INTO ints VALUES
 (1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, 0, 0, b'0', b'00000', 0),
 (2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615, 42, 1, b'1', b'10101', 0xFFFFFFFFFFFFFFFF),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 0, 1, -1, 2, -3, 4, -5, 6, -7, 8, 9, 0, b'0', b'11111', 0x0000000000000001);

CREATE TABLE nums (
  id INT PRIMARY KEY,
  dec1 DECIMAL(65,30), dec2 DECIMAL(10,2) UNSIGNED, dec3 DECIMAL(5,0),
  f FLOAT, d DOUBLE, fp FLOAT(7,3), dp DOUBLE(20,10));
INSERT INTO nums VALUES
 (1, 12345678901234567890123456789012345.123456789012345678901234567890, 99999999.99, -99999, 3.402823466e38, 1.7976931348623157e308, 9999.999, 1234567890.0123456789),
 (2, -0.000000000000000000000000000001, 0, 0, -3.402823466e38, -1.7976931348623157e308, -9999.999, -0.0000000001),
 (3, 0, 0.01, 1, 1.175494351e-38, 2.2250738585072014e-308, 0.001, 0),
 (4, 1, 1, 1, 1.401298464e-45, 4.9406564584124654e-324, 1, 1),
 (5, NULL, NULL, NULL, 0.1, 0.1, NULL, NULL),
 (6, 2, 2, 2, 16777217, 9007199254740993, 2, 2),
 (7, 3, 3, 3, 1e0/3e0, 1e0/3e0, 3, 3),
 (8, 4, 4, 4, -0.5, 1e-300, 4, 4),
 (9, 5, 5, 5, 123456.789, 0.30000000000000004, 5, 5);

CREATE TABLE times (
  id INT PRIMARY KEY,
  d DATE, t TIME, t6 TIME(6), dt DATETIME, dt6 DATETIME(6),
  ts TIMESTAMP NULL DEFAULT NULL, ts6 TIMESTAMP(6) NULL DEFAULT NULL, y YEAR);
INSERT INTO times VALUES
 (1, '1000-01-01', '-838:59:59', '-838:59:59.000000', '1000-01-01 00:00:00', '1000-01-01 00:00:00.000000', '1970-01-01 05:30:01', '1970-01-01 05:30:01.000001', 1901),
 (2, '9999-12-31', '838:59:59', '838:59:59.000000', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999', '2038-01-19 08:44:07', '2038-01-19 08:44:07.999999', 2155),
 (3, '0000-00-00', '00:00:00', '00:00:00.000001', '0000-00-00 00:00:00', '2024-02-29 12:34:56.789012', '2024-03-31 02:30:00', '2024-10-27 02:30:00.5', 0),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE texts (
  id INT PRIMARY KEY,
  u VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  l VARCHAR(100) CHARACTER SET latin1,
  a VARCHAR(100) CHARACTER SET ascii,
  c CHAR(10), t TEXT, lt LONGTEXT,
  e ENUM('a', 'b', 'c d', 'é'), s SET('x', 'y', 'z'),
  j JSON);
INSERT INTO texts VALUES
 (1, 'emoji 😀🎉 and 中文 and Ελληνικά', 'Ærøskøbing © ½ ÿ', 'plain', 'char', 'naïve café', 'long', 'a', 'x,z', '{"a": [1, 2.5, {"b": null}], "ü": "😀", "s": "q\\"uote"}'),
 (2, '', '', '', '', '', '', 'c d', '', '[]'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 'a''b\\c\nd\re\tf\0g\Zh"i', 'x''y\\z', 'semi;colon -- not a comment', '  pad', '/* not a comment */ # nor this', 'line1\nline2\n', 'é', 'y', 'null'),
 (5, 'DELIMITER ;;', ';;', '$$', 'x', REPEAT('ab', 40000), REPEAT('ü', 300000), 'b', 'x,y,z', '{"k": "v"}');

CREATE TABLE bins (
  id INT PRIMARY KEY,
  b BINARY(4), vb VARBINARY(20), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
  txt_bin VARCHAR(10) CHARACTER SET binary);
INSERT INTO bins VALUES
 (1, 0x00FF27, 0x005C27220A0D1A, 0x00, 0xFFFEFD00010203, 0x27, 0x5C, 0x00),
 (2, '', '', '', '', '', '', ''),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 'abcd', 'text as bytes', 'x', REPEAT(0x00FF, 30000), RANDOM_BYTES(1024), REPEAT(0xAB00CD, 700000), 'ok');

CREATE TABLE geo (
  id INT PRIMARY KEY,
  p POINT NOT NULL, g GEOMETRY, ls LINESTRING, poly POLYGON,
  SPATIAL INDEX (p));
INSERT INTO geo VALUES
 (1, ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POINT(-71.064544 42.28787)', 4326),
     ST_GeomFromText('LINESTRING(0 0, 1 1, 2 3)'), ST_GeomFromText('POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))')),
 (2, ST_GeomFromText('POINT(0 0)'), NULL, NULL, NULL);

CREATE TABLE gen (
  id INT PRIMARY KEY,
  a INT,
  v INT AS (a * 2) VIRTUAL,
  p VARCHAR(20) AS (CONCAT('x', a)) PERSISTENT,
  h INT INVISIBLE DEFAULT 7,
  INDEX (v));
INSERT INTO gen (id, a, h) VALUES (1, 10, 1), (2, NULL, 2), (3, -4, NULL);

CREATE TABLE nets (id INT PRIMARY KEY, ip INET6, ip4 INET4, u UUID);
INSERT INTO nets VALUES (1, '::1', '127.0.0.1', '123e4567-e89b-12d3-a456-426655440000'),
 (2, '2001:db8::ff00:42:8329', '10.0.0.255', '00000000-0000-0000-0000-000000000000'), (3, NULL, NULL, NULL);

CREATE TABLE parts (id INT, y INT, v VARCHAR(10), PRIMARY KEY (id, y))
  PARTITION BY RANGE (y) (PARTITION p0 VALUES LESS THAN (2000), PARTITION p1 VALUES LESS THAN MAXVALUE);
INSERT INTO parts VALUES (1, 1999, 'old'), (2, 2024, 'new'), (3, 2000, 'edge');

-- child sorts before parent: the load must not check foreign keys
CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(10)) ENGINE=InnoDB;
CREATE TABLE a_child (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE);
INSERT INTO parent VALUES (1, 'one'), (2, 'two');
INSERT INTO a_child VALUES (10, 1), (11, 2), (12, NULL);

-- reserved word, backtick, non-ASCII identifiers
CREATE TABLE `select` (`from` INT PRIMARY KEY, `we``ird` VARCHAR(10), `größe` INT, `key` INT);
INSERT INTO `select` VALUES (1, 'a`b', 180, 7);
CREATE TABLE `tab``le` (`id` INT PRIMARY KEY);
INSERT INTO `tab``le` VALUES (1), (2);
CREATE TABLE `ñandú ü` (`ñ` INT PRIMARY KEY);
INSERT INTO `ñandú ü` VALUES (5);

-- no primary key: natural order, duplicates kept
CREATE TABLE nopk (a INT, b VARCHAR(10));
INSERT INTO nopk VALUES (2, 'x'), (1, 'y'), (2, 'x'), (NULL, NULL);
-- a unique NOT NULL key instead of a primary key
CREATE TABLE uniq (a INT NOT NULL, b INT, UNIQUE KEY ua (a));
INSERT INTO uniq VALUES (3, 1), (1, 2), (2, 3);

-- not transactional
CREATE TABLE legacy (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM;
INSERT INTO legacy VALUES (1, 'myisam'), (2, 'rows');
CREATE TABLE aria_t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=Aria;
INSERT INTO aria_t VALUES (1, 'aria');
CREATE TABLE empty_t (id INT PRIMARY KEY);

CREATE SEQUENCE seq1 START WITH 100 INCREMENT BY 5;
SELECT NEXTVAL(seq1), NEXTVAL(seq1);

-- a view that uses a view that sorts after it
CREATE VIEW z_base AS SELECT id, u, e FROM texts WHERE id < 5;
CREATE VIEW a_top AS SELECT z_base.id, z_base.e, ints.bi FROM z_base JOIN ints ON ints.id = z_base.id;

DELIMITER ;;
CREATE TRIGGER a_child_bi BEFORE INSERT ON a_child FOR EACH ROW
BEGIN
  IF NEW.pid IS NULL THEN SET NEW.pid = 1; END IF;
  SET @last_child = NEW.id; -- a comment; with a semicolon
END ;;
CREATE TRIGGER a_child_bi2 BEFORE INSERT ON a_child FOR EACH ROW FOLLOWS a_child_bi SET @second = 'x;y' ;;
CREATE PROCEDURE p_count(OUT n INT)
BEGIN
  SELECT COUNT(*) INTO n FROM ints;
  SELECT 'a;b' AS s;
END ;;
CREATE FUNCTION f_add(a INT, b INT) RETURNS INT DETERMINISTIC RETURN a + b ;;
CREATE EVENT ev_tidy ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE
DO BEGIN DELETE FROM nopk WHERE a < 0; END ;;
DELIMITER ;
SQL
}

# 20000 random FLOAT and DOUBLE bit patterns: the text the dump writes must
# give back the same bits.
floats_sql() {
    python3 - <<'PY'
import math, random, struct
random.seed(7)
rows = []
for i in range(20000):
    while True:
        d = struct.unpack('<d', struct.pack('<Q', random.getrandbits(64)))[0]
        if math.isfinite(d):
            break
    while True:
        f = struct.unpack('<f', struct.pack('<I', random.getrandbits(32)))[0]
        if math.isfinite(f):
            break
    rows.append("(%d,%r,%r)" % (i, d, f))
print("USE sc_types;")
print("CREATE TABLE floats (id INT PRIMARY KEY, d DOUBLE, f FLOAT);")
for k in range(0, len(rows), 2000):
    print("INSERT INTO floats VALUES " + ",".join(rows[k:k + 2000]) + ";")
PY
}

# Tables read in several key ranges (signed, unsigned) and one that is not.
chunks_sql() {
    cat <<'SQL'
CREATE DATABASE IF NOT EXISTS sc_chunks;
USE sc_chunks;
DROP TABLE IF EXISTS s, u, k;
CREATE TABLE s (id BIGINT PRIMARY KEY, v VARCHAR(40), b BLOB, d DECIMAL(12,3), t DATETIME(3));
INSERT INTO s SELECT (CAST(seq AS SIGNED) - 70000) * 3, CONCAT('v''', seq), UNHEX(MD5(seq)), seq / 7, '2001-02-03 04:05:06.789' + INTERVAL seq SECOND FROM seq_1_to_140000;
CREATE TABLE u (id BIGINT UNSIGNED PRIMARY KEY, v INT);
INSERT INTO u SELECT 18446744073709551615 - seq * 2, seq FROM seq_0_to_99999;
CREATE TABLE k (a INT, b INT, v TEXT, PRIMARY KEY (a, b));
INSERT INTO k SELECT seq % 1000, seq, REPEAT('k', seq % 50) FROM seq_1_to_120000;
SQL
}

# A table big enough that a parallel dump of it is caught in the middle.
kill_table() {
    my_src <<'SQL'
CREATE DATABASE IF NOT EXISTS sc_kill;
USE sc_kill;
CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY, pad VARCHAR(300));
INSERT IGNORE INTO t SELECT seq, REPEAT(CHAR(65 + seq % 26), 300) FROM seq_1_to_1000000;
SQL
}


# The server id of a connection of user sc whose statement is LIKE $2 on
# server $1 (my_src, my_dst), waiting up to ~15 s for one ("" if none came).
running_query() {
    local server=$1 like=$2 i id=""
    for ((i = 0; i < 1500; i++)); do
        id=$($server -N -e "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'sc' AND INFO LIKE '$like' LIMIT 1")
        [ -n "$id" ] && break
        sleep 0.01
    done
    echo "$id"
}
