/* The [mysql NAME] source's pure parts, no server needed: the statement
 * splitter of restore (quotes, comments, DELIMITER, chunk boundaries), the
 * DEFINER stripper, the delimiter choice, value encoding, table selection
 * and the config keys. (test_mysql_server.c runs against a real server.) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/config.h"
#include "../../src/core/fs.h"
#include "../../src/core/xalloc.h"
#include "../../src/source/mysql/mysql.h"
#include "../../src/source/source.h"

/* ---- splitter ------------------------------------------------------------ */

struct collected {
    struct strvec stmts;
    long lines[64];
    int stop_after; /* fail (return 9) after this many, 0: never */
};

static int collect(void *ctx, const char *sql, size_t len, long line)
{
    struct collected *c = ctx;
    assert_int_equal(strlen(sql), len); /* NUL-terminated at len */
    if (c->stmts.n < 64)
        c->lines[c->stmts.n] = line;
    strvec_push(&c->stmts, sql);
    if (c->stop_after > 0 && (int)c->stmts.n >= c->stop_after)
        return 9;
    return 0;
}

/* Split text whole, then byte by byte: both must give the same statements. */
static void split(const char *text, struct collected *c)
{
    struct my_splitter s;
    memset(c, 0, sizeof *c);
    my_split_init(&s, 1 << 20, collect, c);
    assert_int_equal(my_split_feed(&s, text, strlen(text)), 0);
    assert_int_equal(my_split_finish(&s), 0);
    my_split_free(&s);

    struct collected one = {0};
    my_split_init(&s, 1 << 20, collect, &one);
    for (const char *p = text; *p; p++)
        assert_int_equal(my_split_feed(&s, p, 1), 0);
    assert_int_equal(my_split_finish(&s), 0);
    my_split_free(&s);
    assert_int_equal(one.stmts.n, c->stmts.n);
    for (size_t i = 0; i < one.stmts.n; i++) {
        assert_string_equal(one.stmts.v[i], c->stmts.v[i]);
        assert_int_equal(one.lines[i], c->lines[i]);
    }
    strvec_free(&one.stmts);
}

static void test_split_simple(void **state)
{
    (void)state;
    struct collected c;
    split("SELECT 1;\nSELECT 2;\n\n  SELECT 3 ;  \n", &c);
    assert_int_equal(c.stmts.n, 3);
    assert_string_equal(c.stmts.v[0], "SELECT 1");
    assert_string_equal(c.stmts.v[1], "SELECT 2");
    assert_string_equal(c.stmts.v[2], "SELECT 3");
    assert_int_equal(c.lines[0], 1);
    assert_int_equal(c.lines[2], 4);
    strvec_free(&c.stmts);
}

static void test_split_quotes(void **state)
{
    (void)state;
    struct collected c;
    split("INSERT INTO `t;x` VALUES ('a;b', \"c;d\", 'it\\'s;', 'dou''bled;', '\\\\');\n"
          "SELECT `back``tick;`;",
          &c);
    assert_int_equal(c.stmts.n, 2);
    assert_string_equal(c.stmts.v[0], "INSERT INTO `t;x` VALUES ('a;b', \"c;d\", 'it\\'s;', "
                                      "'dou''bled;', '\\\\')");
    assert_string_equal(c.stmts.v[1], "SELECT `back``tick;`");
    strvec_free(&c.stmts);
}

static void test_split_multiline_string(void **state)
{
    (void)state;
    struct collected c;
    split("INSERT INTO t VALUES ('line1\nline2;\nline3');\nSELECT 2;", &c);
    assert_int_equal(c.stmts.n, 2);
    assert_string_equal(c.stmts.v[0], "INSERT INTO t VALUES ('line1\nline2;\nline3')");
    assert_int_equal(c.lines[1], 4);
    strvec_free(&c.stmts);
}

static void test_split_comments(void **state)
{
    (void)state;
    struct collected c;
    split("-- a comment; with a semicolon\n"
          "# another; one\n"
          "/* block; comment */\n"
          "SELECT 1; -- trailing; comment\n"
          "SELECT /* ; */ 2;\n"
          "SELECT 1--1;\n"
          "SELECT 3 -- x\n;\n"
          "/*!40101 SET NAMES utf8mb4 */;\n"
          "/*M!100100 SET @a = 1 */;\n"
          "--\n"
          "-- Table `x`\n"
          "--\n"
          "DROP TABLE x;",
          &c);
    assert_int_equal(c.stmts.n, 7);
    assert_string_equal(c.stmts.v[0], "SELECT 1");
    assert_string_equal(c.stmts.v[1], "SELECT /* ; */ 2");
    assert_string_equal(c.stmts.v[2], "SELECT 1--1");
    assert_string_equal(c.stmts.v[3], "SELECT 3 -- x");
    assert_string_equal(c.stmts.v[4], "/*!40101 SET NAMES utf8mb4 */");
    assert_string_equal(c.stmts.v[5], "/*M!100100 SET @a = 1 */");
    assert_string_equal(c.stmts.v[6], "DROP TABLE x");
    assert_int_equal(c.lines[0], 4);
    assert_int_equal(c.lines[6], 14);
    strvec_free(&c.stmts);
}

static void test_split_delimiter(void **state)
{
    (void)state;
    struct collected c;
    split("SET @a = 1;\n"
          "DELIMITER ;;\n"
          "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT ';;'; END\n"
          ";;\n"
          "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @b = 2 ;;\n"
          "DELIMITER $$\n"
          "CREATE FUNCTION f() RETURNS INT RETURN 1$$\n"
          "delimiter ;\n"
          "SELECT 3;\n",
          &c);
    assert_int_equal(c.stmts.n, 5);
    assert_string_equal(c.stmts.v[0], "SET @a = 1");
    assert_string_equal(c.stmts.v[1], "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT ';;'; END");
    assert_string_equal(c.stmts.v[2],
                        "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @b = 2");
    assert_string_equal(c.stmts.v[3], "CREATE FUNCTION f() RETURNS INT RETURN 1");
    assert_string_equal(c.stmts.v[4], "SELECT 3");
    assert_int_equal(c.lines[1], 3);
    strvec_free(&c.stmts);
}

static void test_split_empty_and_last(void **state)
{
    (void)state;
    struct collected c;
    split(";\n ; ;\nSELECT 1;;\nSELECT 2", &c);
    assert_int_equal(c.stmts.n, 2);
    assert_string_equal(c.stmts.v[0], "SELECT 1");
    assert_string_equal(c.stmts.v[1], "SELECT 2");
    strvec_free(&c.stmts);
    split("-- only a comment\n", &c);
    assert_int_equal(c.stmts.n, 0);
    strvec_free(&c.stmts);
}

static int split_result(const char *text, size_t max, char *error, size_t n)
{
    struct collected c = {0};
    struct my_splitter s;
    my_split_init(&s, max, collect, &c);
    int rc = my_split_feed(&s, text, strlen(text));
    if (rc == 0)
        rc = my_split_finish(&s);
    snprintf(error, n, "%s", s.error);
    my_split_free(&s);
    strvec_free(&c.stmts);
    return rc;
}

static void test_split_errors(void **state)
{
    (void)state;
    char error[160];
    assert_int_equal(
        split_result("SELECT 1;\nINSERT INTO t VALUES ('trunc", 1 << 20, error, sizeof error), -1);
    assert_non_null(strstr(error, "line 2"));
    assert_non_null(strstr(error, "quoted string"));
    assert_int_equal(split_result("SELECT /* open", 1 << 20, error, sizeof error), -1);
    assert_non_null(strstr(error, "comment"));
    char *big = xmalloc(300001);
    memset(big, 'x', 300000);
    big[300000] = '\0';
    assert_int_equal(split_result(big, 200000, error, sizeof error), -1);
    assert_non_null(strstr(error, "longer than"));
    free(big);
    assert_int_equal(split_result("DELIMITER\nSELECT 1;", 1 << 20, error, sizeof error), 0);
}

static void test_split_callback_stops(void **state)
{
    (void)state;
    struct collected c = {.stop_after = 2};
    struct my_splitter s;
    my_split_init(&s, 1 << 20, collect, &c);
    assert_int_equal(my_split_feed(&s, "A;B;C;D;", 8), 9);
    assert_int_equal(c.stmts.n, 2);
    my_split_free(&s);
    strvec_free(&c.stmts);
}

/* Random texts of the bytes the splitter cares about (quotes, backslashes,
 * comment starts, delimiters, newlines): fed whole, byte by byte and in
 * random pieces, they give the same statements and lines. The long runs
 * copied in one go (quoted strings, code past a statement's first line)
 * must end exactly where the byte-wise state machine would. */
static void split_pieces(const char *text, size_t len, unsigned seed, struct collected *c)
{
    struct my_splitter s;
    memset(c, 0, sizeof *c);
    my_split_init(&s, 1 << 20, collect, c);
    size_t i = 0;
    int rc = 0;
    while (rc == 0 && i < len) {
        size_t n = seed == 0 ? len : 1 + (size_t)rand_r(&seed) % 7;
        if (n > len - i)
            n = len - i;
        rc = my_split_feed(&s, text + i, n);
        i += n;
    }
    if (rc == 0)
        rc = my_split_finish(&s);
    c->stop_after = rc == 0 ? 0 : -1; /* the outcome, compared below */
    my_split_free(&s);
}

static void test_split_random_texts_in_pieces(void **state)
{
    (void)state;
    static const char *const atoms[] = {"'",
                                        "\"",
                                        "`",
                                        "\\",
                                        "\\'",
                                        "--",
                                        "-- ",
                                        "#",
                                        "/*",
                                        "*/",
                                        "/*!",
                                        ";",
                                        ";;",
                                        "\n",
                                        " ",
                                        "x",
                                        "-",
                                        "/",
                                        "\n(1,",
                                        "DELIMITER ;;\n",
                                        "DELIMITER ;\n"};
    unsigned seed = 20261203;
    char text[512];
    for (int round = 0; round < 4000; round++) {
        size_t len = 0;
        int natoms = 1 + rand_r(&seed) % 40;
        for (int k = 0; k < natoms; k++) {
            const char *a = atoms[(size_t)rand_r(&seed) % (sizeof atoms / sizeof atoms[0])];
            size_t n = strlen(a);
            if (len + n >= sizeof text)
                break;
            memcpy(text + len, a, n);
            len += n;
        }
        text[len] = '\0';
        struct collected whole, bytes, pieces;
        split_pieces(text, len, 0, &whole);
        /* byte by byte: pieces of one */
        struct my_splitter s;
        memset(&bytes, 0, sizeof bytes);
        my_split_init(&s, 1 << 20, collect, &bytes);
        int rc = 0;
        for (size_t i = 0; rc == 0 && i < len; i++)
            rc = my_split_feed(&s, text + i, 1);
        if (rc == 0)
            rc = my_split_finish(&s);
        bytes.stop_after = rc == 0 ? 0 : -1;
        my_split_free(&s);
        split_pieces(text, len, seed | 1, &pieces);
        const struct collected *other[] = {&bytes, &pieces};
        for (size_t o = 0; o < 2; o++) {
            if (other[o]->stop_after != whole.stop_after || other[o]->stmts.n != whole.stmts.n)
                fail_msg("round %d: %zu vs %zu statements for: %s", round, other[o]->stmts.n,
                         whole.stmts.n, text);
            for (size_t i = 0; i < whole.stmts.n; i++) {
                assert_string_equal(other[o]->stmts.v[i], whole.stmts.v[i]);
                if (i < 64)
                    assert_int_equal(other[o]->lines[i], whole.lines[i]);
            }
        }
        strvec_free(&whole.stmts);
        strvec_free(&bytes.stmts);
        strvec_free(&pieces.stmts);
    }
}

/* ---- deferred secondary keys --------------------------------------------- */

static void defer(const char *create, const char *want_table, const char *want_alter)
{
    char *t, *a;
    bool ok = my_defer_keys(create, &t, &a);
    if (want_table == NULL) {
        assert_false(ok);
        assert_null(t);
        assert_null(a);
        return;
    }
    assert_true(ok);
    assert_string_equal(t, want_table);
    assert_string_equal(a, want_alter);
    free(t);
    free(a);
}

static void test_defer_keys(void **state)
{
    (void)state;
    /* the bench's second shape: the unique key on a random BINARY(20) */
    defer("CREATE TABLE `shape` (\n"
          "  `id` bigint(20) NOT NULL,\n"
          "  `h` binary(20) NOT NULL,\n"
          "  `j` longtext NOT NULL CHECK (json_valid(`j`)),\n"
          "  PRIMARY KEY (`id`),\n"
          "  UNIQUE KEY `uh` (`h`)\n"
          ") ENGINE=InnoDB DEFAULT CHARSET=latin1",
          "CREATE TABLE `shape` (\n"
          "  `id` bigint(20) NOT NULL,\n"
          "  `h` binary(20) NOT NULL,\n"
          "  `j` longtext NOT NULL CHECK (json_valid(`j`)),\n"
          "  PRIMARY KEY (`id`)\n"
          ") ENGINE=InnoDB DEFAULT CHARSET=latin1",
          "ALTER TABLE `shape` ADD UNIQUE KEY `uh` (`h`)");
    /* several, in their order; kept ones around them; a quoted name */
    defer("CREATE TABLE `we``ird` (\n"
          "  `a` int(11) NOT NULL,\n"
          "  `b` varchar(10) DEFAULT 'x,\\ny' COMMENT 'l1\\nl2',\n"
          "  `p` point NOT NULL,\n"
          "  PRIMARY KEY (`a`),\n"
          "  UNIQUE KEY `ub` (`b`),\n"
          "  KEY `kb` (`b`(3),`a`) COMMENT 'k,x',\n"
          "  SPATIAL KEY `p` (`p`),\n"
          "  KEY `ig` (`a`) IGNORED,\n"
          "  CONSTRAINT `c` CHECK (`a` > 0)\n"
          ") ENGINE=InnoDB AUTO_INCREMENT=5",
          "CREATE TABLE `we``ird` (\n"
          "  `a` int(11) NOT NULL,\n"
          "  `b` varchar(10) DEFAULT 'x,\\ny' COMMENT 'l1\\nl2',\n"
          "  `p` point NOT NULL,\n"
          "  PRIMARY KEY (`a`),\n"
          "  SPATIAL KEY `p` (`p`),\n"
          "  CONSTRAINT `c` CHECK (`a` > 0)\n"
          ") ENGINE=InnoDB AUTO_INCREMENT=5",
          "ALTER TABLE `we``ird` ADD UNIQUE KEY `ub` (`b`), ADD KEY `kb` (`b`(3),`a`) COMMENT "
          "'k,x', ADD KEY `ig` (`a`) IGNORED");
    static const char base[] = "CREATE TABLE `t` (\n"
                               "  `a` int(11) NOT NULL,\n"
                               "  PRIMARY KEY (`a`),\n"
                               "  KEY `k` (`a`)\n";
    char *sql;
    /* left alone: other engines, partitions, versioning */
    static const char *const options[] = {") ENGINE=MyISAM",
                                          ") ENGINE=InnoDB\n PARTITION BY HASH (`a`)\nPARTITIONS 2",
                                          ") ENGINE=InnoDB WITH SYSTEM VERSIONING"};
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        sql = xasprintf("%s%s", base, options[i]);
        defer(sql, NULL, NULL);
        free(sql);
    }
    /* foreign keys; no primary key; only a hash key; a line not understood;
     * not a CREATE TABLE */
    defer("CREATE TABLE `c` (\n  `a` int(11) NOT NULL,\n  `p` int(11),\n  PRIMARY KEY (`a`),\n"
          "  KEY `p` (`p`),\n  CONSTRAINT `f` FOREIGN KEY (`p`) REFERENCES `t` (`a`)\n"
          ") ENGINE=InnoDB",
          NULL, NULL);
    defer("CREATE TABLE `u` (\n  `a` int(11) NOT NULL,\n  UNIQUE KEY `a` (`a`)\n) ENGINE=InnoDB",
          NULL, NULL);
    defer("CREATE TABLE `h` (\n  `a` int(11) NOT NULL,\n  `b` blob,\n  PRIMARY KEY (`a`),\n"
          "  UNIQUE KEY `b` (`b`) USING HASH\n) ENGINE=InnoDB",
          NULL, NULL);
    defer("CREATE TABLE `t` (\n  `a` int(11) NOT NULL,\n  PRIMARY KEY (`a`),\n  KEY `k` (`a`),\n"
          "something else\n) ENGINE=InnoDB",
          NULL, NULL);
    defer("CREATE SEQUENCE `s` (\n  `a` int\n) ENGINE=InnoDB", NULL, NULL);
    defer("CREATE TABLE `t` (`a` int) ENGINE=InnoDB", NULL, NULL);
}

/* ---- DEFINER and delimiter ------------------------------------------------ */

static void strip(const char *in, const char *want)
{
    char *s = xstrdup(in);
    bool ok = my_strip_definer(s);
    if (want == NULL) {
        assert_false(ok);
        assert_string_equal(s, in);
    } else {
        assert_true(ok);
        assert_string_equal(s, want);
    }
    free(s);
}

static void test_strip_definer(void **state)
{
    (void)state;
    strip("CREATE DEFINER=`root`@`localhost` TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a=1",
          "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a=1");
    strip("CREATE ALGORITHM=UNDEFINED DEFINER=`app`@`%` SQL SECURITY DEFINER VIEW `v` AS select 1",
          "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1");
    strip("CREATE DEFINER=`we``ird`@`10.0.0.%` PROCEDURE `p`() SELECT 1",
          "CREATE PROCEDURE `p`() SELECT 1");
    strip("CREATE DEFINER=`role_x` EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1",
          "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1");
    strip("CREATE OR REPLACE DEFINER=CURRENT_USER FUNCTION f() RETURNS INT RETURN 1",
          "CREATE OR REPLACE FUNCTION f() RETURNS INT RETURN 1");
    strip("CREATE DEFINER='u'@'h' PROCEDURE p() SELECT 1", "CREATE PROCEDURE p() SELECT 1");
    strip("CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a=1", NULL);
    strip("CREATE DEFINER=`unterminated@`h` PROCEDURE", NULL);
    strip("SELECT 1", NULL);
}

static void test_pick_delimiter(void **state)
{
    (void)state;
    assert_string_equal(my_pick_delimiter("BEGIN SELECT 1; END"), ";;");
    assert_string_equal(my_pick_delimiter("BEGIN SELECT ';;'; END"), "$$");
    assert_string_equal(my_pick_delimiter(";; $$"), "@@;");
}

/* ---- values --------------------------------------------------------------- */

static MYSQL_FIELD field(enum enum_field_types type, unsigned flags, unsigned charsetnr)
{
    MYSQL_FIELD f;
    memset(&f, 0, sizeof f);
    f.type = type;
    f.flags = flags;
    f.charsetnr = charsetnr;
    return f;
}

static void test_encoding_of(void **state)
{
    (void)state;
    MYSQL_FIELD f = field(MYSQL_TYPE_LONG, NUM_FLAG, 63);
    assert_int_equal(my_encoding_of(&f), ENC_NUMBER);
    f = field(MYSQL_TYPE_NEWDECIMAL, NUM_FLAG, 63);
    assert_int_equal(my_encoding_of(&f), ENC_NUMBER);
    f = field(MYSQL_TYPE_DOUBLE, NUM_FLAG, 63);
    assert_int_equal(my_encoding_of(&f), ENC_NUMBER);
    f = field(MYSQL_TYPE_BLOB, BLOB_FLAG | BINARY_FLAG, 63);
    assert_int_equal(my_encoding_of(&f), ENC_HEX);
    f = field(MYSQL_TYPE_BIT, UNSIGNED_FLAG, 63);
    assert_int_equal(my_encoding_of(&f), ENC_HEX);
    f = field(MYSQL_TYPE_GEOMETRY, BLOB_FLAG, 63);
    assert_int_equal(my_encoding_of(&f), ENC_HEX);
    f = field(MYSQL_TYPE_VAR_STRING, BINARY_FLAG, 63);
    assert_int_equal(my_encoding_of(&f), ENC_HEX);
    /* BINARY_FLAG alone is not binary: utf8mb4_bin text, TIMESTAMP */
    f = field(MYSQL_TYPE_BLOB, BLOB_FLAG | BINARY_FLAG, 46);
    assert_int_equal(my_encoding_of(&f), ENC_TEXT);
    f = field(MYSQL_TYPE_TIMESTAMP, BINARY_FLAG, 63);
    assert_int_equal(my_encoding_of(&f), ENC_TEXT);
    f = field(MYSQL_TYPE_STRING, 0, 45); /* INET6, UUID, ENUM */
    assert_int_equal(my_encoding_of(&f), ENC_TEXT);
}

static void encode(enum my_enc enc, const char *v, size_t n, const char *want, int want_rc)
{
    char *buf = NULL;
    size_t len = 3, cap = 0;
    buf = xmalloc(4);
    cap = 4;
    memcpy(buf, "(1,", 3);
    assert_int_equal(my_encode_value(enc, v, (unsigned long)n, &buf, &len, &cap), want_rc);
    if (want_rc == 0) {
        assert_int_equal(len, 3 + strlen(want));
        assert_memory_equal(buf + 3, want, strlen(want));
    }
    free(buf);
}

static void test_encode_value(void **state)
{
    (void)state;
    encode(ENC_NUMBER, "-9223372036854775808", 20, "-9223372036854775808", 0);
    encode(ENC_NUMBER, "1.7976931348623157e308", 22, "1.7976931348623157e308", 0);
    encode(ENC_NUMBER, "inf", 3, NULL, -1);
    encode(ENC_NUMBER, "1;DROP", 6, NULL, -1);
    encode(ENC_NUMBER, "", 0, NULL, -1);
    encode(ENC_HEX, "\x00\xff\x27\x5c", 4, "0x00FF275C", 0);
    encode(ENC_HEX, "", 0, "''", 0);
}

/* ---- selection and settings ----------------------------------------------- */

static void test_table_selected(void **state)
{
    (void)state;
    struct source_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    assert_true(my_table_selected(&cfg, "app", "users"));
    strvec_push(&cfg.include_tables, "app.*");
    strvec_push(&cfg.exclude_tables, "app.tmp_*");
    strvec_push(&cfg.exclude_tables, "*.log");
    assert_true(my_table_selected(&cfg, "app", "users"));
    assert_false(my_table_selected(&cfg, "app", "tmp_x"));
    assert_false(my_table_selected(&cfg, "app", "log"));
    assert_false(my_table_selected(&cfg, "other", "users"));
    strvec_free(&cfg.include_tables);
    strvec_free(&cfg.exclude_tables);
    assert_true(my_engine_transactional("InnoDB"));
    assert_true(my_engine_transactional("innodb"));
    assert_false(my_engine_transactional("MyISAM"));
    assert_false(my_engine_transactional("Aria"));
    assert_false(my_engine_transactional("MEMORY"));
    assert_false(my_engine_transactional(NULL));
}

static void test_settings_defaults(void **state)
{
    (void)state;
    struct source_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    struct my_settings st;
    my_settings_of(&cfg, &st);
    assert_int_equal(st.connect_s, MY_DEFAULT_CONNECT_TIMEOUT_S);
    assert_int_equal(st.read_s, MY_DEFAULT_READ_TIMEOUT_S);
    assert_int_equal(st.max_insert, MY_DEFAULT_MAX_INSERT_BYTES);
    assert_false(st.strip_definer);
    cfg.connect_timeout_s = 3;
    cfg.max_insert_bytes = 8192;
    cfg.definer = "strip";
    my_settings_of(&cfg, &st);
    assert_int_equal(st.connect_s, 3);
    assert_int_equal(st.max_insert, 8192);
    assert_true(st.strip_definer);
    assert_int_equal(st.threads, MY_DEFAULT_THREADS);
    cfg.threads = 4;
    my_settings_of(&cfg, &st);
    assert_int_equal(st.threads, 4);
}

/* ---- chunks: key ranges --------------------------------------------------- */

/* The ranges cover every key: each bound is above the previous one and
 * inside (min, max]; the ranges are as even as the arithmetic allows. */
static void check_ranges(const struct my_chunks *c, bool is_unsigned, const char *min,
                         const char *max)
{
    assert_non_null(c->lo);
    assert_null(c->lo[0]);
    for (size_t i = 1; i < c->n; i++) {
        assert_non_null(c->lo[i]);
        if (is_unsigned) {
            unsigned long long v = strtoull(c->lo[i], NULL, 10);
            assert_true(v > strtoull(min, NULL, 10));
            assert_true(v <= strtoull(max, NULL, 10));
            if (i > 1)
                assert_true(v > strtoull(c->lo[i - 1], NULL, 10));
        } else {
            long long v = strtoll(c->lo[i], NULL, 10);
            assert_true(v > strtoll(min, NULL, 10));
            assert_true(v <= strtoll(max, NULL, 10));
            if (i > 1)
                assert_true(v > strtoll(c->lo[i - 1], NULL, 10));
        }
    }
}

static void test_chunk_plan(void **state)
{
    (void)state;
    struct my_chunks c;
    /* an empty table, no key, nonsense: one chunk, the whole table */
    my_chunk_plan(NULL, NULL, false, 100, 10, &c);
    assert_int_equal(c.n, 1);
    my_chunks_free(&c);
    my_chunk_plan("5", "x", false, 100, 10, &c);
    assert_int_equal(c.n, 1);
    my_chunks_free(&c);
    my_chunk_plan("9", "3", false, 1, 10, &c); /* max < min */
    assert_int_equal(c.n, 1);
    my_chunks_free(&c);
    my_chunk_plan("-1", "3", true, 1, 10, &c); /* negative unsigned */
    assert_int_equal(c.n, 1);
    my_chunks_free(&c);
    /* no multiple of the width inside: one chunk */
    my_chunk_plan("1", "99", false, 100, 10, &c);
    assert_int_equal(c.n, 1);
    my_chunks_free(&c);
    /* 1..1000 by 100: bounds at the multiples of 100 in (1, 1000] */
    my_chunk_plan("1", "1000", false, 100, 50, &c);
    assert_int_equal(c.n, 11);
    assert_string_equal(c.lo[1], "100");
    assert_string_equal(c.lo[9], "900");
    assert_string_equal(c.lo[10], "1000");
    check_ranges(&c, false, "1", "1000");
    my_chunks_free(&c);
    /* capped at max_chunks: the width doubles */
    my_chunk_plan("1", "1000000", false, 10, 7, &c);
    assert_true(c.n >= 2 && c.n <= 7);
    check_ranges(&c, false, "1", "1000000");
    my_chunks_free(&c);
    /* signed across zero */
    my_chunk_plan("-500", "499", false, 100, 50, &c);
    assert_int_equal(c.n, 10);
    assert_string_equal(c.lo[1], "-400");
    assert_string_equal(c.lo[5], "0");
    check_ranges(&c, false, "-500", "499");
    my_chunks_free(&c);
    /* the extremes of BIGINT and BIGINT UNSIGNED: no overflow */
    my_chunk_plan("-9223372036854775808", "9223372036854775807", false, 1000, 16, &c);
    assert_true(c.n >= 2 && c.n <= 16);
    check_ranges(&c, false, "-9223372036854775808", "9223372036854775807");
    my_chunks_free(&c);
    my_chunk_plan("-9223372036854775808", "9223372036854775807", false, 1000, 2, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.lo[1], "0");
    my_chunks_free(&c);
    my_chunk_plan("0", "18446744073709551615", true, 1000, 16, &c);
    assert_true(c.n >= 2 && c.n <= 16);
    check_ranges(&c, true, "0", "18446744073709551615");
    my_chunks_free(&c);
    my_chunk_plan("18446744073709551600", "18446744073709551615", true, 1, 100, &c);
    assert_int_equal(c.n, 16);
    assert_string_equal(c.lo[15], "18446744073709551615");
    check_ranges(&c, true, "18446744073709551600", "18446744073709551615");
    my_chunks_free(&c);
    /* deterministic: the same inputs, the same bounds */
    struct my_chunks d;
    my_chunk_plan("3", "777777", false, 5000, 1000, &c);
    my_chunk_plan("3", "777777", false, 5000, 1000, &d);
    assert_int_equal(c.n, d.n);
    for (size_t i = 1; i < c.n; i++)
        assert_string_equal(c.lo[i], d.lo[i]);
    my_chunks_free(&d);
    /* stable: rows appended past MAX (or removed below MIN) keep every
     * bound inside, so the dump's earlier ranges keep their bytes */
    my_chunk_plan("3", "785555", false, 5000, 1000, &d);
    assert_true(d.n > c.n);
    for (size_t i = 1; i < c.n; i++)
        assert_string_equal(c.lo[i], d.lo[i]);
    my_chunks_free(&d);
    my_chunk_plan("20000", "777777", false, 5000, 1000, &d);
    assert_int_equal(d.n, c.n - 4); /* 5000 .. 20000 are gone */
    for (size_t i = 1; i < d.n; i++)
        assert_string_equal(d.lo[i], c.lo[i + 4]);
    my_chunks_free(&d);
    my_chunks_free(&c);
}

/* The SELECT of each chunk: open-ended first and last ranges. */
static void test_chunk_select(void **state)
{
    (void)state;
    struct my_rows_plan p = {.select_sql = "SELECT a FROM `d`.`t` ORDER BY `id`",
                             .select_head = "SELECT a FROM `d`.`t`",
                             .order_by = " ORDER BY `id`",
                             .range_col = "`id`"};
    struct my_chunks c;
    my_chunk_plan("1", "299", false, 100, 10, &c);
    assert_int_equal(c.n, 3);
    char *s0 = my_chunk_select(&p, &c, 0), *s1 = my_chunk_select(&p, &c, 1),
         *s2 = my_chunk_select(&p, &c, 2);
    assert_string_equal(s0, "SELECT a FROM `d`.`t` WHERE `id` < 100 ORDER BY `id`");
    assert_string_equal(s1, "SELECT a FROM `d`.`t` WHERE `id` >= 100 AND `id` < 200 ORDER BY `id`");
    assert_string_equal(s2, "SELECT a FROM `d`.`t` WHERE `id` >= 200 ORDER BY `id`");
    free(s0);
    free(s1);
    free(s2);
    my_chunks_free(&c);
    /* one chunk: the plain SELECT */
    my_chunk_plan(NULL, NULL, false, 100, 10, &c);
    s0 = my_chunk_select(&p, &c, 0);
    assert_string_equal(s0, p.select_sql);
    free(s0);
    my_chunks_free(&c);
}

/* ---- config --------------------------------------------------------------- */

static void test_config_keys(void **state)
{
    (void)state;
    struct config cfg;
    struct config_problems probs = {0};
    int rc = tu_load_config("[mysql tracker]\n"
                            "host = db.internal\nport = 3307\nuser = backup\n"
                            "password_file = /etc/sc/my.pass\n"
                            "database = torrust_tracker\ndatabase = other\n"
                            "include_tables = torrust_tracker.*\nexclude_tables = *.tmp\n"
                            "ssl_ca = /etc/sc/ca.pem\nssl_verify = yes\n"
                            "connect_timeout = 5s\nread_timeout = 2h\nwrite_timeout = 10m\n"
                            "definer = strip\nmax_insert_bytes = 65536\n"
                            "[restic]\nrepository = /r\npassword_file = /p\n",
                            &cfg, &probs);
    for (size_t i = 0; i < probs.msgs.n; i++)
        fprintf(stderr, "%s\n", probs.msgs.v[i]);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.nsources, 1);
    const struct source_cfg *s = &cfg.sources[0];
    assert_string_equal(s->kind, "mysql");
    assert_string_equal(s->host, "db.internal");
    assert_int_equal(s->port, 3307);
    assert_int_equal(s->databases.n, 2);
    assert_string_equal(s->databases.v[1], "other");
    assert_true(s->ssl_verify);
    assert_int_equal(s->connect_timeout_s, 5);
    assert_int_equal(s->read_timeout_s, 7200);
    assert_int_equal(s->write_timeout_s, 600);
    assert_string_equal(s->definer, "strip");
    assert_int_equal(s->max_insert_bytes, 65536);
    config_free(&cfg);
    config_problems_free(&probs);
}

static void test_config_problems(void **state)
{
    (void)state;
    struct config cfg;
    struct config_problems probs = {0};
    int rc =
        tu_load_config("[mysql a]\nsocket = /run/x.sock\ngroup = g\n"
                       "[mysql b]\nuser = u\ndefiner = drop\ninclude_tables = nodot\n"
                       "max_insert_bytes = 100\nport = 70000\nssl_cert = /c.pem\nthreads = 17\n"
                       "[restic]\nrepository = /r\npassword_file = /p\n",
                       &cfg, &probs);
    assert_int_equal(rc, SC_ECONFIG);
    assert_true(tu_has_problem(&probs, "[mysql a] user: missing"));
    assert_true(tu_has_problem(&probs, "[mysql a] group: only means something with option_file"));
    assert_true(tu_has_problem(&probs, "definer: expected keep or strip"));
    assert_true(tu_has_problem(&probs, "include_tables: expected a pattern database.table"));
    assert_true(tu_has_problem(&probs, "max_insert_bytes: must be between"));
    assert_true(tu_has_problem(&probs, "port: must be at most 65535"));
    assert_true(tu_has_problem(&probs, "threads: must be between 1 and 16"));
    assert_true(tu_has_problem(&probs, "ssl_key: ssl_cert and ssl_key go together"));
    config_free(&cfg);
    config_problems_free(&probs);
}

/* A password file readable by others, or empty, is refused (exit 3). */
static void test_password_file(void **state)
{
    (void)state;
    char path[] = "/tmp/sc-mysql-pass-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, "s3cret\n", 7), 0);
    close(fd);
    struct source_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.name = "t";
    cfg.password_file = path;
    sc_err err = {0};
    char *pw = NULL;
    assert_int_equal(my_check_files(&cfg, &err), 0);
    assert_int_equal(my_read_password(&cfg, &pw, &err), 0);
    assert_string_equal(pw, "s3cret");
    my_free_password(pw);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(my_check_files(&cfg, &err), SC_ECONFIG);
    assert_null(strstr(err.msg, "s3cret"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(truncate(path, 0), 0);
    sc_err err2 = {0};
    assert_int_equal(my_read_password(&cfg, &pw, &err2), SC_ECONFIG);
    assert_null(pw);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_simple),
        cmocka_unit_test(test_split_quotes),
        cmocka_unit_test(test_split_multiline_string),
        cmocka_unit_test(test_split_comments),
        cmocka_unit_test(test_split_delimiter),
        cmocka_unit_test(test_split_empty_and_last),
        cmocka_unit_test(test_split_errors),
        cmocka_unit_test(test_split_callback_stops),
        cmocka_unit_test(test_split_random_texts_in_pieces),
        cmocka_unit_test(test_defer_keys),
        cmocka_unit_test(test_strip_definer),
        cmocka_unit_test(test_pick_delimiter),
        cmocka_unit_test(test_encoding_of),
        cmocka_unit_test(test_encode_value),
        cmocka_unit_test(test_table_selected),
        cmocka_unit_test(test_settings_defaults),
        cmocka_unit_test(test_chunk_plan),
        cmocka_unit_test(test_chunk_select),
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_config_problems),
        cmocka_unit_test(test_password_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
