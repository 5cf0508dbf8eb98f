/* The [mysql NAME] source's stage and restore ops against a real MariaDB
 * server that this test starts (scripts/test-mariadb.sh, a temporary
 * datadir and socket) and stops. Skipped when mariadbd is not installed.
 * Run under valgrind to check that a dump and a restore leak nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/fs.h"
#include "../../src/core/spawn.h"
#include "../../src/core/xalloc.h"
#include "../../src/source/mysql/mysql.h"
#include "../../src/source/source.h"
#include "../../src/stage/set.h"

static char dir[64];           /* the server's directory (short: socket path) */
static char sock[128];         /* its socket */
static char staging[PATH_MAX]; /* dir/staging */
static bool have_server;

static void run_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_int_equal(system(cmd), 0);
}

/* SQL through the stock client, as root over the socket. */
static void sql(const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/in.sql", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    run_sh("mariadb --no-defaults --default-character-set=utf8mb4 -S %s -uroot < %s", sock, path);
}

static int group_setup(void **state)
{
    (void)state;
    if (access("scripts/test-mariadb.sh", X_OK) != 0 ||
        (access("/usr/sbin/mariadbd", X_OK) != 0 && system("command -v mariadbd >/dev/null")))
        return 0;
    snprintf(dir, sizeof dir, "/tmp/scmy-unit-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(sock, sizeof sock, "%s/sock", dir);
    snprintf(staging, sizeof staging, "%s/staging", dir);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "scripts/test-mariadb.sh start %s >/dev/null", dir);
    have_server = system(cmd) == 0;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (dir[0] == '\0')
        return 0;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "scripts/test-mariadb.sh stop %s", dir);
    int rc = system(cmd);
    fs_rm_rf(dir);
    return rc == 0 ? 0 : -1;
}

/* Without a server each test skips itself: a skip() here, in the setup,
 * is a failed setup to cmocka 1.1.7 (Debian 13), a skip to 1.1.5. */
static int setup(void **state)
{
    (void)state;
    if (!have_server)
        return 0;
    sc_err err = {0};
    fs_rm_rf(staging);
    sc_stop_requested = 0;
    return staging_prepare(staging, &err);
}

static void need_server(void)
{
    if (!have_server)
        skip();
}

static void cfg_init(struct source_cfg *cfg, const char *db)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = "mysql";
    cfg->name = "db";
    cfg->def = &source_mysql.cfg;
    cfg->socket = sock;
    cfg->user = "root"; /* unix_socket authentication: the test runs as root */
    if (db != NULL)
        strvec_push(&cfg->databases, db);
}

/* Stage one source into a published set; returns its manifest entry (a
 * new reference) and the set's directory (owned). */
static int stage(const struct source_cfg *cfg, json_t **entry, char **setdir, sc_err *err)
{
    struct set set;
    *entry = NULL;
    *setdir = NULL;
    int rc = set_create(&set, staging, err);
    if (rc == 0) {
        json_t *e = set_begin_source(&set, cfg->name, cfg->kind);
        rc = source_mysql.stage(cfg, &set, e, err);
        if (rc == 0)
            rc = set_publish(&set, err);
        if (rc == 0) {
            *entry = json_incref(e);
            *setdir = xstrdup(set.finaldir);
        }
    }
    set_discard(&set);
    return rc;
}

static char *query1(const char *q)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "mariadb --no-defaults --default-character-set=utf8mb4 -S %s -uroot -N -e \"%s\"",
             sock, q);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[4096] = "";
    if (fgets(line, sizeof line, p) == NULL)
        line[0] = '\0';
    assert_int_equal(pclose(p), 0);
    line[strcspn(line, "\n")] = '\0';
    return xstrdup(line);
}

static void assert_same_checksum(const char *a, const char *b)
{
    char qa[256], qb[256];
    snprintf(qa, sizeof qa, "CHECKSUM TABLE %s EXTENDED", a);
    snprintf(qb, sizeof qb, "CHECKSUM TABLE %s EXTENDED", b);
    char *x = query1(qa), *y = query1(qb);
    assert_non_null(strchr(x, '\t'));
    assert_string_equal(strchr(x, '\t'), strchr(y, '\t'));
    free(x);
    free(y);
}

static const char fixture[] =
    "DROP DATABASE IF EXISTS u1; CREATE DATABASE u1 CHARACTER SET utf8mb4;\n"
    "USE u1;\n"
    "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(50), b BLOB, f FLOAT, d DOUBLE);\n"
    "INSERT INTO t VALUES (1, 'a''b\\\\\\\\c\\\\n\\\\0z', 0x00FF0A27, 3.402823466e38, 0.1),\n"
    " (2, '', '', 1.401298464e-45, 4.9406564584124654e-324), (3, NULL, NULL, NULL, NULL),\n"
    " (4, '😀 ü', REPEAT(0xAB, 9000), -0.5, 1e300);\n"
    "INSERT INTO t SELECT seq, REPEAT('x', seq % 50), NULL, seq / 7, seq / 3 FROM seq_5_to_3000;\n"
    "CREATE TABLE m (id INT PRIMARY KEY, v INT) ENGINE=MyISAM;\n"
    "INSERT INTO m VALUES (1, 1), (2, 2);\n"
    "CREATE VIEW v AS SELECT id, s FROM t WHERE id < 3;\n"
    "CREATE TRIGGER tr BEFORE INSERT ON m FOR EACH ROW SET NEW.v = NEW.v + 1;\n"
    "CREATE PROCEDURE p() SELECT COUNT(*) FROM t;\n";

static void test_stage_and_restore_into(void **state)
{
    (void)state;
    need_server();
    sql(fixture);
    struct source_cfg cfg;
    cfg_init(&cfg, "u1");
    cfg.max_insert_bytes = 4096;
    sc_err err = {0};
    json_t *entry;
    char *setdir;
    assert_int_equal(stage(&cfg, &entry, &setdir, &err), 0);
    assert_string_equal(json_string_value(json_object_get(entry, "consistency")),
                        "single-transaction+backup-stage");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(entry, "tables"), "u1"), "t")),
                     3000);
    assert_int_equal(json_integer_value(json_object_get(entry, "rows_total")), 3002);

    sql("DROP DATABASE IF EXISTS u1_copy;");
    assert_int_equal(source_mysql.restore(&cfg, setdir, entry, "u1_copy", false, &err), 0);
    assert_same_checksum("u1.t", "u1_copy.t");
    assert_same_checksum("u1.m", "u1_copy.m");
    char *n = query1("SELECT COUNT(*) FROM u1_copy.v");
    assert_string_equal(n, "2");
    free(n);
    n = query1("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'u1_copy'");
    assert_string_equal(n, "1");
    free(n);
    assert_non_null(strstr(json_string_value(json_object_get(entry, "restored_to")), "u1_copy"));

    /* not empty now: refused, then replaced with force */
    sc_err err2 = {0};
    assert_int_equal(source_mysql.restore(&cfg, setdir, entry, "u1_copy", false, &err2), SC_EFAIL);
    assert_non_null(strstr(err2.msg, "not empty"));
    sc_err err3 = {0};
    assert_int_equal(source_mysql.restore(&cfg, setdir, entry, "u1_copy", true, &err3), 0);
    assert_same_checksum("u1.t", "u1_copy.t");

    /* a manifest whose counts differ from what loads: exit 7 */
    json_object_set_new(json_object_get(json_object_get(entry, "tables"), "u1"), "t",
                        json_integer(2999));
    sc_err err4 = {0};
    assert_int_equal(source_mysql.restore(&cfg, setdir, entry, "u1_copy", true, &err4), SC_EVERIFY);
    assert_non_null(strstr(err4.msg, "3000 rows"));

    /* --into needs a dump of one database */
    json_array_append_new(json_object_get(entry, "databases"), json_string("other"));
    sc_err err5 = {0};
    assert_int_equal(source_mysql.restore(&cfg, setdir, entry, "x", false, &err5), SC_EUSAGE);

    sql("DROP DATABASE u1_copy;");
    json_decref(entry);
    free(setdir);
    strvec_free(&cfg.databases);
}

static void test_wrong_password(void **state)
{
    (void)state;
    need_server();
    sql("CREATE USER IF NOT EXISTS 'pw'@'localhost' IDENTIFIED BY 'right-one';");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/pass", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("Wrong-Pa55word\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    struct source_cfg cfg;
    cfg_init(&cfg, NULL);
    cfg.user = "pw";
    cfg.password_file = path;
    sc_err err = {0};
    json_t *entry;
    char *setdir;
    assert_int_equal(stage(&cfg, &entry, &setdir, &err), SC_ESOURCE);
    assert_non_null(strstr(err.msg, "Access denied"));
    assert_null(strstr(err.msg, "Wrong-Pa55word"));
    assert_null(entry);
    unlink(path);
}

static void test_interrupted(void **state)
{
    (void)state;
    need_server();
    sql(fixture);
    struct source_cfg cfg;
    cfg_init(&cfg, "u1");
    sc_stop_requested = 1;
    sc_err err = {0};
    json_t *entry;
    char *setdir;
    assert_int_equal(stage(&cfg, &entry, &setdir, &err), SC_EINTR);
    sc_stop_requested = 0;
    strvec_free(&cfg.databases);
}

/* Our escaping equals mysql_real_escape_string on a utf8mb4 connection,
 * but for '"', which we leave as it is (no escape is needed inside '...'):
 * every byte value, and multibyte UTF-8. */
static void same_escape(MYSQL *m, const char *v, size_t n)
{
    char *lib = xmalloc(2 * n + 1);
    unsigned long libn = mysql_real_escape_string(m, lib, v, (unsigned long)n), k = 0;
    for (unsigned long i = 0; i < libn; i++) {
        if (lib[i] == '\\' && i + 1 < libn && lib[i + 1] == '"')
            i++; /* \" -> " */
        else if (lib[i] == '\\' && i + 1 < libn)
            lib[k++] = lib[i++];
        lib[k++] = lib[i];
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    assert_int_equal(my_encode_value(ENC_TEXT, v, (unsigned long)n, &buf, &len, &cap), 0);
    assert_int_equal(len, k + 2);
    assert_memory_equal(buf + 1, lib, k);
    free(buf);
    free(lib);
}

static void test_encode_text(void **state)
{
    (void)state;
    need_server();
    struct source_cfg cfg;
    cfg_init(&cfg, NULL);
    MYSQL *m;
    sc_err err = {0};
    assert_int_equal(my_connect(&cfg, NULL, "test", &m, &err), 0);
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    same_escape(m, all, sizeof all);
    static const char utf8[] = "a'b\\c\n\r\"\0\x1a\xf0\x9f\x98\x80 \xc3\xbc\xe4\xb8\xad'\\";
    same_escape(m, utf8, sizeof utf8 - 1);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    static const char v[] = "a'b\\c\n\r\"\0\x1a\xf0\x9f\x98\x80";
    assert_int_equal(my_encode_value(ENC_TEXT, v, sizeof v - 1, &buf, &len, &cap), 0);
    static const char want[] = "'a\\'b\\\\c\\n\\r\"\\0\\Z\xf0\x9f\x98\x80'";
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(buf, want, len);
    free(buf);
    /* the word-at-a-time scan: an escape at every position of a word */
    char text[64];
    for (int at = 0; at < 24; at++) {
        memset(text, 'x', sizeof text);
        text[at] = "\n'\\\x1a\r\0\"\x7f"[at % 8];
        text[at + 17] = '\'';
        same_escape(m, text, sizeof text - (size_t)(at % 5));
    }
    char *id = my_ident("we`ird");
    assert_string_equal(id, "`we``ird`");
    free(id);
    my_close(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_stage_and_restore_into, setup),
        cmocka_unit_test_setup(test_wrong_password, setup),
        cmocka_unit_test_setup(test_interrupted, setup),
        cmocka_unit_test_setup(test_encode_text, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
