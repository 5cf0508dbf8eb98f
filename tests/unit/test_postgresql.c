/* The [postgresql NAME] source's pure parts, no server needed: key range
 * planning, the COPY queries, quoting (identifiers, literals, connection
 * strings), the passfile line and file, client versions, stderr
 * classification, exclude_table patterns, the password file and the
 * config keys. (tests/integration/postgresql.bats runs a real server.) */
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
#include "../../src/source/postgresql/postgresql.h"
#include "../../src/source/source.h"

/* got (owned) is want; freed. */
static void is(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* ---- ranges ------------------------------------------------------------------ */

static void test_range_small_and_empty(void **state)
{
    (void)state;
    struct pg_ranges r;
    pg_range_plan(1, 3503, PG_RANGE_KEYS, PG_MAX_RANGES, &r);
    assert_int_equal(r.n, 1); /* no multiple of 50000 in (1, 3503] */
    pg_ranges_free(&r);
    pg_range_plan(7, 7, PG_RANGE_KEYS, PG_MAX_RANGES, &r);
    assert_int_equal(r.n, 1);
    pg_ranges_free(&r);
    pg_range_plan(10, 5, PG_RANGE_KEYS, PG_MAX_RANGES, &r); /* nonsense: one range */
    assert_int_equal(r.n, 1);
    pg_ranges_free(&r);
    pg_range_single(&r);
    assert_int_equal(r.n, 1);
    is(pg_range_where(&r, 0, "\"id\""), "");
    pg_ranges_free(&r);
}

static void test_range_bounds_are_multiples(void **state)
{
    (void)state;
    struct pg_ranges r;
    pg_range_plan(1, 200000, 50000, 1000, &r);
    /* bounds 50000, 100000, 150000, 200000: five ranges, the last open */
    assert_int_equal(r.n, 5);
    for (size_t i = 1; i < r.n; i++)
        assert_int_equal(r.lo[i], (long long)i * 50000);
    is(pg_range_where(&r, 0, "\"id\""), " WHERE \"id\" < 50000");
    is(pg_range_where(&r, 2, "\"id\""), " WHERE \"id\" >= 100000 AND \"id\" < 150000");
    is(pg_range_where(&r, 4, "\"id\""), " WHERE \"id\" >= 200000");
    pg_ranges_free(&r);
    /* exactly on a multiple: the bound is the minimum's own range start */
    pg_range_plan(50000, 99999, 50000, 1000, &r);
    assert_int_equal(r.n, 1);
    pg_ranges_free(&r);
    pg_range_plan(49999, 50000, 50000, 1000, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.lo[1], 50000);
    pg_ranges_free(&r);
}

static void test_range_negative_keys(void **state)
{
    (void)state;
    struct pg_ranges r;
    pg_range_plan(-120000, 30000, 50000, 1000, &r);
    /* multiples in (-120000, 30000]: -100000, -50000, 0 */
    assert_int_equal(r.n, 4);
    assert_int_equal(r.lo[1], -100000);
    assert_int_equal(r.lo[2], -50000);
    assert_int_equal(r.lo[3], 0);
    pg_ranges_free(&r);
    pg_range_plan(-3, -1, 2, 1000, &r); /* multiples of 2 in (-3, -1]: -2 */
    assert_int_equal(r.n, 2);
    assert_int_equal(r.lo[1], -2);
    pg_ranges_free(&r);
}

/* Appended keys past MAX keep every earlier bound: the files of the ranges
 * before the last one keep their bytes. */
static void test_range_append_stable(void **state)
{
    (void)state;
    struct pg_ranges a, b;
    pg_range_plan(1, 1000000, PG_RANGE_KEYS, PG_MAX_RANGES, &a);
    pg_range_plan(1, 1010000, PG_RANGE_KEYS, PG_MAX_RANGES, &b);
    assert_int_equal(a.n, 21);
    assert_true(b.n >= a.n);
    for (size_t i = 1; i < a.n; i++)
        assert_int_equal(a.lo[i], b.lo[i]);
    pg_ranges_free(&a);
    pg_ranges_free(&b);
    /* the same for a purged start: only the first range changes */
    pg_range_plan(1, 1000000, PG_RANGE_KEYS, PG_MAX_RANGES, &a);
    pg_range_plan(120001, 1000000, PG_RANGE_KEYS, PG_MAX_RANGES, &b);
    assert_int_equal(b.n, a.n - 2);
    for (size_t i = 1; i < b.n; i++)
        assert_int_equal(b.lo[i], a.lo[i + 2]);
    pg_ranges_free(&a);
    pg_ranges_free(&b);
}

static void test_range_step_doubles(void **state)
{
    (void)state;
    struct pg_ranges r;
    /* 100M keys: 2001 ranges of 50000, 1001 of 100000: ranges of 200000 */
    pg_range_plan(1, 100000000, 50000, 1000, &r);
    assert_int_equal(r.n, 501);
    assert_int_equal(r.lo[1], 200000);
    assert_int_equal(r.lo[2], 400000);
    assert_int_equal(r.lo[500], 100000000);
    pg_ranges_free(&r);
    /* the whole bigint space: no overflow, a handful of ranges, increasing */
    pg_range_plan(LLONG_MIN, LLONG_MAX, 50000, 1000, &r);
    assert_true(r.n >= 2 && r.n <= 1000);
    for (size_t i = 2; i < r.n; i++)
        assert_true(r.lo[i] > r.lo[i - 1]);
    assert_true(r.lo[1] > LLONG_MIN);
    pg_ranges_free(&r);
    pg_range_plan(LLONG_MAX - 10, LLONG_MAX, 50000, 1000, &r);
    assert_true(r.n <= 2);
    pg_ranges_free(&r);
}

/* ---- COPY queries ------------------------------------------------------------ */

static void test_copy_query(void **state)
{
    (void)state;
    struct pg_table t;
    memset(&t, 0, sizeof t);
    t.qname = "\"public\".\"t\"";
    t.columns = "\"id\", \"v\"";
    pg_range_single(&t.ranges);
    /* no key: the table as it is stored */
    is(pg_copy_query(&t, 0), "COPY \"public\".\"t\" (\"id\", \"v\") TO STDOUT");
    t.columns = "";
    is(pg_copy_query(&t, 0), "COPY \"public\".\"t\" TO STDOUT");
    t.columns = "\"id\", \"v\"";
    /* a key: in its order, ONLY the table (no inheritance children) */
    t.order_by = "\"id\"";
    is(pg_copy_query(&t, 0),
       "COPY (SELECT \"id\", \"v\" FROM ONLY \"public\".\"t\" ORDER BY \"id\") "
       "TO STDOUT");
    pg_ranges_free(&t.ranges);
    t.range_col = "\"id\"";
    pg_range_plan(1, 120000, 50000, 1000, &t.ranges);
    is(pg_copy_query(&t, 1),
       "COPY (SELECT \"id\", \"v\" FROM ONLY \"public\".\"t\" WHERE \"id\" >= "
       "50000 AND \"id\" < 100000 ORDER BY \"id\") TO STDOUT");
    /* an extension's configuration table: its condition, no ranges */
    t.filter = "WHERE NOT system";
    is(pg_copy_query(&t, 0),
       "COPY (SELECT \"id\", \"v\" FROM ONLY \"public\".\"t\" WHERE NOT system "
       "ORDER BY \"id\") TO STDOUT");
    pg_ranges_free(&t.ranges);
}

/* ---- quoting ------------------------------------------------------------------- */

static void test_quoting(void **state)
{
    (void)state;
    is(pg_ident("we\"ird Name"), "\"we\"\"ird Name\"");
    is(pg_qualified("Mixed Schema", "select"), "\"Mixed Schema\".\"select\"");
    is(pg_literal("it's \\ a"), "'it''s \\ a'"); /* standard_conforming_strings: \ is plain */
    is(pg_literal(""), "''");
    is(pg_conninfo_quote("/tmp/a b'c\\d"), "'/tmp/a b\\'c\\\\d'");
}

static void test_conninfo(void **state)
{
    (void)state;
    struct source_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.name = "db";
    cfg.host = "/run/postgresql";
    cfg.port = 5433;
    cfg.user = "back up";
    cfg.sslmode = "verify-full";
    cfg.password_file = "/etc/sc/pg.pass";
    char *dbs[] = {"app=1", NULL};
    cfg.databases.v = dbs;
    cfg.databases.n = 1;
    char *ci = pg_conninfo(&cfg, NULL, "stagecoach pg_dump");
    assert_string_equal(ci, "host='/run/postgresql' port='5433' user='back up' dbname='app=1' "
                            "sslmode='verify-full' connect_timeout='10' "
                            "application_name='stagecoach pg_dump'");
    /* the password file is never named in it, let alone its content */
    assert_null(strstr(ci, "pass"));
    free(ci);
    ci = pg_conninfo(&cfg, "other", "x");
    assert_non_null(strstr(ci, "dbname='other'"));
    free(ci);
}

/* ---- the passfile ------------------------------------------------------------------ */

static void test_passfile_line(void **state)
{
    (void)state;
    is(pg_passfile_line("plain"), "*:*:*:*:plain\n");
    /* ':' and '\' are the two characters the .pgpass format escapes */
    is(pg_passfile_line("a:b\\c:"), "*:*:*:*:a\\:b\\\\c\\:\n");
    is(pg_passfile_line("sp ace*#'\""), "*:*:*:*:sp ace*#'\"\n");
}

static void test_passfile_write(void **state)
{
    (void)state;
    char dir[] = "/tmp/sc-pg-passfile-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = NULL;
    sc_err err = {0};
    assert_int_equal(pg_passfile_write(dir, "s3:cret", &path, &err), 0);
    assert_non_null(path);
    assert_int_equal(strncmp(path, dir, strlen(dir)), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *buf;
    size_t len;
    assert_int_equal(fs_read_file(path, 4096, &buf, &len, SC_EFAIL, &err), 0);
    assert_string_equal(buf, "*:*:*:*:s3\\:cret\n");
    free(buf);
    char *copy = xstrdup(path);
    pg_passfile_remove(&path);
    assert_null(path);
    assert_false(fs_exists(copy));
    free(copy);
    pg_passfile_remove(&path); /* twice: nothing */
    /* a directory that is not there: a staging error, nothing made */
    sc_err e2 = {0};
    assert_int_equal(pg_passfile_write("/nonexistent/dir", "x", &path, &e2), SC_ESTAGING);
    assert_null(path);
    rmdir(dir);
}

/* ---- clients ---------------------------------------------------------------------- */

static void test_tool_version(void **state)
{
    (void)state;
    int major, num;
    char *v = NULL;
    assert_int_equal(pg_parse_tool_version("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n",
                                           &major, &num, &v),
                     0);
    assert_int_equal(major, 15);
    assert_int_equal(num, 150018);
    assert_string_equal(v, "15.18 (Debian 15.18-0+deb12u1)");
    free(v);
    assert_int_equal(pg_parse_tool_version("psql (PostgreSQL) 9.6.24\n", &major, &num, NULL), 0);
    assert_int_equal(major, 9);
    assert_int_equal(num, 90624);
    assert_int_equal(pg_parse_tool_version("pg_dump (PostgreSQL) 17devel", &major, &num, NULL), 0);
    assert_int_equal(major, 17);
    assert_int_equal(pg_parse_tool_version("pg_dump (PostgreSQL) 16.2", &major, &num, NULL), 0);
    assert_int_equal(num, 160002);
    assert_int_equal(pg_parse_tool_version("mysqldump  Ver 10.19", &major, &num, NULL), -1);
    assert_int_equal(pg_parse_tool_version("pg_dump (PostgreSQL) x", &major, &num, NULL), -1);
    assert_int_equal(pg_parse_tool_version("", &major, &num, NULL), -1);
}

static void test_stderr_reason(void **state)
{
    (void)state;
    is(pg_stderr_reason(
           "pg_dump: warning: something\n"
           "pg_dump: error: query failed: ERROR:  permission denied for table secret\n"
           "pg_dump: detail: Query was: LOCK TABLE public.secret IN ACCESS SHARE MODE\n"),
       "pg_dump: error: query failed: ERROR:  permission denied for table "
       "secret pg_dump: detail: Query was: LOCK TABLE public.secret IN "
       "ACCESS SHARE MODE");
    is(pg_stderr_reason("psql:/r/pre-data.sql:36: ERROR:  must be member of role \"app\"\n"),
       "psql:/r/pre-data.sql:36: ERROR:  must be member of role \"app\"");
    /* no error line: the last line said something */
    is(pg_stderr_reason("first\nKilled\n"), "Killed");
    is(pg_stderr_reason(""), "no message");
}

/* ---- selection -------------------------------------------------------------------- */

static void test_excluded(void **state)
{
    (void)state;
    struct source_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    char *pats[] = {"public.sessions", "audit.*", "tmp_*", NULL};
    cfg.exclude_tables.v = pats;
    cfg.exclude_tables.n = 3;
    assert_true(pg_table_excluded(&cfg, "public", "sessions"));
    assert_false(pg_table_excluded(&cfg, "other", "sessions"));
    assert_true(pg_table_excluded(&cfg, "audit", "anything"));
    /* without a dot: the table's name in any schema */
    assert_true(pg_table_excluded(&cfg, "x", "tmp_1"));
    assert_false(pg_table_excluded(&cfg, "tmp_schema", "t"));
    assert_false(pg_table_excluded(&cfg, "public", "torrents"));
}

/* ---- config ------------------------------------------------------------------------- */

static void test_config_keys(void **state)
{
    (void)state;
    struct config cfg;
    struct config_problems probs = {0};
    int rc = tu_load_config("[postgresql tracker]\n"
                            "host = /run/postgresql\nport = 5433\nuser = backup\n"
                            "password_file = /etc/sc/pg.pass\ndatabase = torrust_tracker\n"
                            "sslmode = verify-full\nsslrootcert = /etc/sc/ca.pem\n"
                            "connect_timeout = 5s\nthreads = 4\n"
                            "exclude_table = public.sessions\nexclude_table = *.tmp\n"
                            "bin_dir = /usr/lib/postgresql/16/bin\n"
                            "[restic]\nrepository = /r\npassword_file = /p\n",
                            &cfg, &probs);
    for (size_t i = 0; i < probs.msgs.n; i++)
        fprintf(stderr, "%s\n", probs.msgs.v[i]);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.nsources, 1);
    const struct source_cfg *s = &cfg.sources[0];
    assert_string_equal(s->kind, "postgresql");
    assert_string_equal(s->host, "/run/postgresql");
    assert_int_equal(s->port, 5433);
    assert_string_equal(pg_database(s), "torrust_tracker");
    assert_string_equal(s->sslmode, "verify-full");
    assert_int_equal(s->connect_timeout_s, 5);
    assert_int_equal(s->threads, 4);
    assert_int_equal(s->exclude_tables.n, 2);
    assert_string_equal(s->bin_dir, "/usr/lib/postgresql/16/bin");
    struct pg_settings st;
    pg_settings_of(s, &st);
    assert_int_equal(st.threads, 4);
    assert_int_equal(st.connect_s, 5);
    assert_int_equal(source_find("postgresql")->db_name_max, 63);
    assert_int_equal(source_find("postgresql")->drill_target, TARGET_DATABASE);
    config_free(&cfg);
    config_problems_free(&probs);
}

static void test_config_problems(void **state)
{
    (void)state;
    struct config cfg;
    struct config_problems probs = {0};
    int rc = tu_load_config("[postgresql a]\nhost = /run/postgresql\n"
                            "[postgresql b]\ndatabase = x\ndatabase = y\nsslmode = sometimes\n"
                            "threads = 17\nport = 70000\npassword_file = /p\npassfile = /q\n"
                            "socket = /s\n"
                            "[restic]\nrepository = /r\npassword_file = /p\n",
                            &cfg, &probs);
    assert_int_equal(rc, SC_ECONFIG);
    assert_true(tu_has_problem(&probs, "[postgresql a] database: missing"));
    assert_true(tu_has_problem(&probs, "database: one database per section"));
    assert_true(tu_has_problem(&probs, "sslmode: expected disable, allow, prefer"));
    assert_true(tu_has_problem(&probs, "threads: must be between 1 and 16"));
    assert_true(tu_has_problem(&probs, "port: must be between 1 and 65535"));
    assert_true(tu_has_problem(&probs, "passfile: set either password_file"));
    assert_true(tu_has_problem(&probs, "socket: unknown key"));
    config_free(&cfg);
    config_problems_free(&probs);
}

/* A password file: one line, CRLF and ':' kept apart; readable by others,
 * or empty, it is refused (exit 3) without its content in the message. */
static void test_password_file(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("pg-pass");
    struct source_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.name = "t";
    cfg.password_file = tu_write_file(dir, "pass", "s3:cret\r\n", 0600);
    sc_err err = {0};
    char *pw = NULL;
    assert_int_equal(pg_check_files(&cfg, &err), 0);
    assert_int_equal(pg_read_password(&cfg, &pw, &err), 0);
    assert_string_equal(pw, "s3:cret");
    pg_free_password(pw);
    assert_int_equal(chmod(cfg.password_file, 0640), 0);
    assert_int_equal(pg_check_files(&cfg, &err), SC_ECONFIG);
    assert_contains(err.msg, "postgresql t: password_file");
    assert_lacks(err.msg, "s3:cret");
    free(tu_write_file(dir, "pass", "two\nlines\n", 0600));
    sc_err err2 = {0};
    assert_int_equal(pg_read_password(&cfg, &pw, &err2), SC_ECONFIG);
    assert_contains(err2.msg, "must hold the password on one line");
    assert_null(pw);
    /* no password_file: no password (peer or trust authentication) */
    free(cfg.password_file);
    cfg.password_file = NULL;
    assert_int_equal(pg_read_password(&cfg, &pw, &err2), 0);
    assert_null(pw);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_small_and_empty),
        cmocka_unit_test(test_range_bounds_are_multiples),
        cmocka_unit_test(test_range_negative_keys),
        cmocka_unit_test(test_range_append_stable),
        cmocka_unit_test(test_range_step_doubles),
        cmocka_unit_test(test_copy_query),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_conninfo),
        cmocka_unit_test(test_passfile_line),
        cmocka_unit_test(test_passfile_write),
        cmocka_unit_test(test_tool_version),
        cmocka_unit_test(test_stderr_reason),
        cmocka_unit_test(test_excluded),
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_config_problems),
        cmocka_unit_test(test_password_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
