/* The [sqlite NAME] source against real databases: rollback and WAL, live
 * writers, garbage, missing files, a full disk. Each test stages into a real
 * set in a fresh temporary staging directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/core/fs.h"
#include "../../src/core/log.h"
#include "../../src/core/spawn.h"
#include "../../src/core/xalloc.h"
#include "../../src/source/source.h"
#include "../../src/source/sqlite/pages.h"
#include "../../src/source/sqlite/sqlite.h"
#include "../../src/stage/set.h"

static char base[1024];        /* this test's temporary directory */
static char staging[PATH_MAX]; /* base/staging */
static char dbpath[PATH_MAX];  /* base/live.db */

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof base, "%s/sc-sqlite-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(staging, sizeof staging, "%s/staging", base);
    snprintf(dbpath, sizeof dbpath, "%s/live.db", base);
    sc_err err = {0};
    return staging_prepare(staging, &err);
}

static int teardown(void **state)
{
    (void)state;
    return fs_rm_rf(base);
}

/* ---- helpers ------------------------------------------------------------ */

static void sql(sqlite3 *db, const char *text)
{
    char *msg = NULL;
    if (sqlite3_exec(db, text, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", text, msg ? msg : "?");
}

static long long query_int(sqlite3 *db, const char *text)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, text, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* A database with `rows` rows in t, 3 in a table whose name needs quoting,
 * and an empty table. Returns the open connection (so a WAL stays). */
static sqlite3 *make_db(const char *path, bool wal, int rows)
{
    sqlite3 *db = open_db(path);
    if (wal) {
        sql(db, "PRAGMA journal_mode=WAL");
        sql(db, "PRAGMA wal_autocheckpoint=0"); /* keep the rows in the -wal */
    }
    sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
            "CREATE TABLE \"we\"\"ird name\"(x);"
            "CREATE TABLE empty(x);"
            "CREATE INDEX t_v ON t(v);"
            "INSERT INTO \"we\"\"ird name\" VALUES (1), (2), (3);");
    sql(db, "BEGIN");
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES (?)", -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < rows; i++) {
        char v[64];
        snprintf(v, sizeof v, "row %d with some padding to fill pages", i);
        sqlite3_bind_text(st, 1, v, -1, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sql(db, "COMMIT");
    return db;
}

static struct source_cfg sqlite_cfg(const char *path)
{
    struct source_cfg c = {0};
    c.kind = (char *)"sqlite";
    c.name = (char *)"tracker";
    c.def = &source_sqlite.cfg;
    c.path = (char *)path;
    c.check = CHECK_QUICK;
    c.busy_timeout_ms = 5000;
    c.step_pages = 1024;
    return c;
}

static long long entry_int(json_t *entry, const char *key)
{
    json_t *v = json_object_get(entry, key);
    assert_true(json_is_integer(v));
    return (long long)json_integer_value(v);
}

static const char *entry_str(json_t *entry, const char *key)
{
    json_t *v = json_object_get(entry, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* The staged copy: one file, rollback journal, the same rows. */
static void check_copy(const char *setdir, long long rows)
{
    char *copy = xasprintf("%s/sqlite/tracker.db", setdir);
    char *side[3] = {xasprintf("%s-wal", copy), xasprintf("%s-shm", copy),
                     xasprintf("%s-journal", copy)};
    for (int i = 0; i < 3; i++) {
        assert_false(fs_exists(side[i]));
        free(side[i]);
    }
    struct stat st;
    assert_int_equal(stat(copy, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(copy, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(query_int(db, "SELECT count(*) FROM t"), rows);
    assert_int_equal(query_int(db, "SELECT count(*) FROM \"we\"\"ird name\""), 3);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "delete");
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(copy);
}

static void check_entry(json_t *e, long long rows, const char *mode)
{
    assert_string_equal(entry_str(e, "consistency"), "online-backup-api");
    assert_string_equal(entry_str(e, "source_path"), dbpath);
    assert_string_equal(entry_str(e, "journal_mode"), mode);
    assert_string_equal(entry_str(e, "check"), "quick_check");
    assert_string_equal(entry_str(e, "check_result"), "ok");
    assert_true(entry_int(e, "page_size") > 0);
    assert_true(entry_int(e, "pages") > 1);
    json_t *tables = json_object_get(e, "tables");
    assert_int_equal(json_object_size(tables), 3);
    assert_int_equal(json_integer_value(json_object_get(tables, "t")), rows);
    assert_int_equal(json_integer_value(json_object_get(tables, "we\"ird name")), 3);
    assert_int_equal(json_integer_value(json_object_get(tables, "empty")), 0);
    assert_int_equal(entry_int(e, "rows_total"), rows + 3);
    json_t *files = json_object_get(e, "files");
    assert_int_equal(json_array_size(files), 1);
    assert_string_equal(json_string_value(json_array_get(files, 0)), "sqlite/tracker.db");
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, data, len), 0);
    assert_int_equal(close(fd), 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_rollback_database(void **state)
{
    (void)state;
    sqlite3_close(make_db(dbpath, false, 5000));
    struct source_cfg c = sqlite_cfg(dbpath);
    c.step_pages = 7; /* many steps */
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), 0);
    check_entry(e, 5000, "delete");
    check_copy(setdir, 5000);
    json_decref(e);
    free(setdir);
}

static void test_wal_database_with_open_writer(void **state)
{
    (void)state;
    sqlite3 *writer = make_db(dbpath, true, 3000);
    /* The rows are still in the -wal only: the copy must include them. */
    char *wal = xasprintf("%s-wal", dbpath);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    assert_true(st.st_size > 0);
    free(wal);
    struct source_cfg c = sqlite_cfg(dbpath);
    c.step_pages = 3;
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), 0);
    check_entry(e, 3000, "wal");
    check_copy(setdir, 3000);
    /* The writer goes on untroubled. */
    sql(writer, "INSERT INTO t(v) VALUES ('after')");
    assert_int_equal(query_int(writer, "SELECT count(*) FROM t"), 3001);
    sqlite3_close(writer);
    json_decref(e);
    free(setdir);
}

static void test_integrity_check_level(void **state)
{
    (void)state;
    sqlite3_close(make_db(dbpath, false, 100));
    struct source_cfg c = sqlite_cfg(dbpath);
    c.check = CHECK_INTEGRITY;
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), 0);
    assert_string_equal(entry_str(e, "check"), "integrity_check");
    json_decref(e);
    free(setdir);
}

static void test_database_without_tables(void **state)
{
    (void)state;
    sqlite3 *db = open_db(dbpath);
    sql(db, "PRAGMA user_version = 7");
    sqlite3_close(db);
    struct source_cfg c = sqlite_cfg(dbpath);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), 0);
    assert_int_equal(json_object_size(json_object_get(e, "tables")), 0);
    assert_int_equal(entry_int(e, "rows_total"), 0);
    json_decref(e);
    free(setdir);
}

static void test_zero_byte_file_is_an_empty_database(void **state)
{
    (void)state;
    write_file(dbpath, "", 0);
    struct source_cfg c = sqlite_cfg(dbpath);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), 0);
    assert_int_equal(entry_int(e, "rows_total"), 0);
    assert_int_equal(json_array_size(json_object_get(e, "warnings")), 1);
    json_decref(e);
    free(setdir);
}

static void expect_source_failure(const char *needle)
{
    struct source_cfg c = sqlite_cfg(dbpath);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), SC_ESOURCE);
    assert_int_equal(err.code, SC_ESOURCE);
    if (strstr(err.msg, needle) == NULL || strstr(err.msg, dbpath) == NULL)
        fail_msg("message without '%s' or the path: %s", needle, err.msg);
    assert_null(strchr(err.msg, '\n')); /* one line for humans and the report */
    assert_null(setdir);
}

static void test_garbage_file(void **state)
{
    (void)state;
    unsigned char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 2654435761u >> 13);
    write_file(dbpath, junk, sizeof junk);
    expect_source_failure("not a SQLite database");
}

static void test_text_file(void **state)
{
    (void)state;
    write_file(dbpath, "hello\n", 6);
    expect_source_failure("not a SQLite database");
}

static void test_header_only_file(void **state)
{
    (void)state;
    write_file(dbpath, "SQLite format 3\0garbage", 23);
    expect_source_failure("truncated or corrupt");
}

static void test_truncated_database(void **state)
{
    (void)state;
    sqlite3_close(make_db(dbpath, false, 5000));
    struct stat st;
    assert_int_equal(stat(dbpath, &st), 0);
    assert_int_equal(truncate(dbpath, st.st_size / 2), 0);
    expect_source_failure("truncated or corrupt");
}

static void test_corrupt_page(void **state)
{
    (void)state;
    sqlite3_close(make_db(dbpath, false, 5000));
    struct stat st;
    assert_int_equal(stat(dbpath, &st), 0);
    /* Scribble over a page in the middle of the table's b-tree. */
    int fd = open(dbpath, O_WRONLY);
    assert_true(fd >= 0);
    char junk[4096];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(pwrite(fd, junk, sizeof junk, (st.st_size / 8192) * 4096), sizeof junk);
    close(fd);
    expect_source_failure(""); /* quick_check's or SQLite's words, depending on the page */
}

static void test_missing_file_is_not_created(void **state)
{
    (void)state;
    expect_source_failure("No such file or directory");
    assert_false(fs_exists(dbpath));
}

static void test_directory_is_not_a_database(void **state)
{
    (void)state;
    assert_int_equal(mkdir(dbpath, 0700), 0);
    expect_source_failure("not a regular file");
}

static void test_locked_database_times_out(void **state)
{
    (void)state;
    sqlite3 *writer = make_db(dbpath, false, 10);
    sql(writer, "BEGIN EXCLUSIVE");
    struct source_cfg c = sqlite_cfg(dbpath);
    c.busy_timeout_ms = 200;
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), SC_ESOURCE);
    assert_non_null(strstr(err.msg, "locked"));
    sql(writer, "COMMIT");
    sqlite3_close(writer);
}

/* A writer in another process commits pairs of rows that sum to zero, as
 * fast as it can, during a backup of one page per step. The copy must be one
 * snapshot (the sum is zero) and the backup must finish (no restarts). */
static void run_writer(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        _exit(2);
    sqlite3_busy_timeout(db, 10000);
    for (int i = 0; i < 100000; i++) {
        char text[160];
        snprintf(text, sizeof text,
                 "BEGIN IMMEDIATE; INSERT INTO ledger(amount) VALUES (%d); "
                 "INSERT INTO ledger(amount) VALUES (-%d); COMMIT;",
                 i + 1, i + 1);
        if (sqlite3_exec(db, text, NULL, NULL, NULL) != SQLITE_OK)
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        /* A real service leaves gaps; a writer that never does starves
         * every reader of a rollback-mode database (SQLite's busy handler
         * polls). */
        usleep(200);
    }
    sqlite3_close(db);
    _exit(0);
}

static void backup_under_writes(bool wal)
{
    sqlite3 *db = make_db(dbpath, wal, 20000);
    sql(db, "CREATE TABLE ledger(id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)");
    sqlite3_close(db);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        run_writer(dbpath);
    usleep(50000); /* let the writer get going */
    struct source_cfg c = sqlite_cfg(dbpath);
    c.step_pages = 1;
    char *setdir;
    json_t *e;
    sc_err err = {0};
    int rc = tu_stage_one(staging, &c, &setdir, &e, &err);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (rc != 0)
        fail_msg("stage failed: %s", err.msg);
    char *copy = xasprintf("%s/sqlite/tracker.db", setdir);
    sqlite3 *cp = open_db(copy);
    assert_int_equal(query_int(cp, "SELECT coalesce(sum(amount), 0) FROM ledger"), 0);
    assert_int_equal(query_int(cp, "SELECT count(*) FROM ledger") % 2, 0);
    assert_int_equal(query_int(cp, "SELECT count(*) FROM ledger"),
                     json_integer_value(json_object_get(json_object_get(e, "tables"), "ledger")));
    sqlite3_close(cp);
    free(copy);
    json_decref(e);
    free(setdir);
}

static void test_consistent_under_writes_wal(void **state)
{
    (void)state;
    backup_under_writes(true);
}

static void test_consistent_under_writes_rollback(void **state)
{
    (void)state;
    backup_under_writes(false);
}

/* A full disk, simulated with RLIMIT_FSIZE in a child process (so that the
 * limit cannot touch the test runner's own output): exit code 5. */
static void test_full_disk_is_a_staging_error(void **state)
{
    (void)state;
    sqlite3_close(make_db(dbpath, false, 20000));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 * 1024, 64 * 1024};
        setrlimit(RLIMIT_FSIZE, &rl);
        struct source_cfg c = sqlite_cfg(dbpath);
        char *setdir;
        json_t *e;
        sc_err err = {0};
        int rc = tu_stage_one(staging, &c, &setdir, &e, &err);
        if (rc != SC_ESTAGING || strstr(err.msg, "tracker.db") == NULL) {
            fprintf(stderr, "rc %d: %s\n", rc, err.msg);
            _exit(1);
        }
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* End a forked child: free what it inherited (valgrind follows children
 * too), then _exit without running the parent's atexit handlers. */
static void child_exit(int code, char *a, char *b) __attribute__((noreturn));
static void child_exit(int code, char *a, char *b)
{
    free(a);
    free(b);
    _exit(code);
}

/* The POC mounts the deployment read-only. A WAL database that nobody has
 * open has no -wal/-shm there, and SQLite cannot create the -shm: the
 * source reads it as immutable instead, and says so. As root this needs a
 * private mount namespace (skipped where there is none); as a user, a
 * directory without write permission. */
static int stage_from_read_only_mount(const char *datadir, const char *rodir)
{
    if (geteuid() != 0) {
        /* A directory we cannot write does as well as a read-only mount. */
        if (chmod(datadir, 0555) != 0)
            return 77;
        rodir = datadir;
    } else if (unshare(CLONE_NEWNS) != 0 ||
               mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
               mount(datadir, rodir, "none", MS_BIND, NULL) != 0 ||
               mount("none", rodir, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) {
        /* The type is ignored for these mounts; "none" keeps valgrind calm. */
        return 77;
    }
    char *path = xasprintf("%s/live.db", rodir);
    struct source_cfg c = sqlite_cfg(path);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    int rc = tu_stage_one(staging, &c, &setdir, &e, &err);
    free(path);
    if (rc != 0) {
        fprintf(stderr, "stage: %s\n", err.msg);
        return 1;
    }
    /* No cmocka assertions in a forked child: a failure would jump back
     * into the parent's test runner inside the child. */
    json_t *t = json_object_get(json_object_get(e, "tables"), "t");
    const char *mode = json_string_value(json_object_get(e, "journal_mode"));
    rc = json_integer_value(t) == 200 && mode != NULL && strcmp(mode, "wal") == 0 &&
                 json_array_size(json_object_get(e, "warnings")) == 1
             ? 0
             : 1;
    if (rc != 0)
        fprintf(stderr, "unexpected entry\n");
    json_decref(e);
    free(setdir);
    return rc;
}

static void test_wal_database_on_read_only_mount(void **state)
{
    (void)state;
    char *datadir = xasprintf("%s/data", base), *rodir = xasprintf("%s/ro", base);
    assert_int_equal(mkdir(datadir, 0700), 0);
    assert_int_equal(mkdir(rodir, 0700), 0);
    snprintf(dbpath, sizeof dbpath, "%s/live.db", datadir);
    sqlite3_close(make_db(dbpath, true, 200));
    char *wal = xasprintf("%s-wal", dbpath);
    assert_false(fs_exists(wal)); /* the last close checkpointed and removed it */
    free(wal);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_exit(stage_from_read_only_mount(datadir, rodir), datadir, rodir);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    chmod(datadir, 0700); /* for teardown, after a non-root run */
    free(datadir);
    free(rodir);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
    char *setdir;
    sc_err err = {0};
    assert_int_equal(set_resolve(staging, "latest", &setdir, NULL, &err), 0);
    check_copy(setdir, 200);
    free(setdir);
}

/* SIGINT/SIGTERM set sc_stop_requested: the copy stops with exit 130. */
static void test_stop_request_interrupts(void **state)
{
    (void)state;
    sqlite3_close(make_db(dbpath, false, 100));
    struct source_cfg c = sqlite_cfg(dbpath);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    sc_stop_requested = 1;
    int rc = tu_stage_one(staging, &c, &setdir, &e, &err);
    sc_stop_requested = 0;
    assert_int_equal(rc, SC_EINTR);
    assert_non_null(strstr(err.msg, "interrupted"));
}

static void test_validate(void **state)
{
    (void)state;
    struct source_cfg c = sqlite_cfg(NULL);
    c.line = 4;
    c.step_pages = 0;
    struct config_problems p = {0};
    assert_int_not_equal(source_sqlite.cfg.validate(&c, &p, "x.conf"), 0);
    assert_int_equal(p.msgs.n, 2);
    assert_non_null(strstr(p.msgs.v[0], "x.conf:4: [sqlite tracker] path"));
    assert_non_null(strstr(p.msgs.v[1], "step_pages"));
    config_problems_free(&p);
    c = sqlite_cfg("/x.db");
    assert_int_equal(source_sqlite.cfg.validate(&c, &p, "x.conf"), 0);
    assert_int_equal(p.msgs.n, 0);
}

/* The page map's header: what is written reads back; every field a
 * reader relies on is checked (docs/sqlite-pages.md). */
static void test_pagemap_header(void **state)
{
    (void)state;
    struct pagemap_header h = {.page_size = 4096, .pages = 123456}, back;
    for (int i = 0; i < DB_HEADER_BYTES; i++)
        h.db_header[i] = (unsigned char)i;
    unsigned char buf[PAGEMAP_HEADER_BYTES];
    pagemap_encode_header(&h, buf);
    assert_memory_equal(buf, "SCPGMAP1", 8);
    assert_int_equal(buf[8] | buf[9] << 8 | buf[10] << 16, 4096); /* little-endian */
    assert_null(pagemap_decode_header(buf, sizeof buf, &back));
    assert_int_equal(back.page_size, 4096);
    assert_int_equal(back.pages, 123456);
    assert_memory_equal(back.db_header, h.db_header, DB_HEADER_BYTES);
    assert_non_null(pagemap_decode_header(buf, sizeof buf - 1, &back)); /* truncated */
    unsigned char bad[PAGEMAP_HEADER_BYTES];
    memcpy(bad, buf, sizeof bad);
    bad[0] = 'X';
    assert_non_null(pagemap_decode_header(bad, sizeof bad, &back));
    memcpy(bad, buf, sizeof bad);
    bad[8] = 0x01; /* 4097: not a power of two */
    assert_non_null(pagemap_decode_header(bad, sizeof bad, &back));
    memcpy(bad, buf, sizeof bad);
    bad[12] = 41; /* another entry size */
    assert_non_null(pagemap_decode_header(bad, sizeof bad, &back));
    /* an entry reads back; pack ids are 32 lowercase hex digits */
    struct pagemap_entry e = {.offset = ((uint64_t)1 << 40) + 7}, e2;
    memset(e.pack, 0xab, PACK_ID_BYTES);
    memset(e.hash, 0x5c, PAGEMAP_HASH_BYTES);
    unsigned char eb[PAGEMAP_ENTRY_BYTES];
    pagemap_encode_entry(&e, eb);
    pagemap_decode_entry(eb, &e2);
    assert_memory_equal(&e2.pack, e.pack, PACK_ID_BYTES);
    assert_true(e2.offset == e.offset);
    assert_memory_equal(e2.hash, e.hash, PAGEMAP_HASH_BYTES);
    char hex[PACK_ID_HEX];
    unsigned char id[PACK_ID_BYTES];
    pack_id_hex(e.pack, hex);
    assert_string_equal(hex, "abababababababababababababababab");
    assert_int_equal(pack_id_parse(hex, id), 0);
    assert_memory_equal(id, e.pack, PACK_ID_BYTES);
    assert_int_not_equal(pack_id_parse("ABABABABABABABABABABABABABABABAB", id), 0);
    assert_int_not_equal(pack_id_parse("../../../etc/passwd", id), 0);
}

static void test_key_table(void **state)
{
    (void)state;
    const char *want[] = {"path",  "check",  "busy_timeout_ms",  "step_pages",
                          "clone", "layout", "repack_threshold", "pages_from_mib"};
    size_t n = 0;
    for (const struct cfg_key *k = source_sqlite.cfg.keys; k->name; k++, n++)
        assert_string_equal(k->name, want[n]);
    assert_int_equal(n, 8);
    /* clone = auto | never, nothing else */
    const struct cfg_key *clone = &source_sqlite.cfg.keys[4];
    assert_null(clone->check("auto"));
    assert_null(clone->check("never"));
    assert_non_null(clone->check("always"));
    /* layout = file | pages | auto, nothing else */
    const struct cfg_key *layout = &source_sqlite.cfg.keys[5];
    assert_null(layout->check("file"));
    assert_null(layout->check("pages"));
    assert_null(layout->check("auto"));
    assert_non_null(layout->check("page"));
    /* repack_threshold: a percentage */
    const struct cfg_key *repack = &source_sqlite.cfg.keys[6];
    assert_null(repack->check("0"));
    assert_null(repack->check("30"));
    assert_null(repack->check("100"));
    assert_non_null(repack->check("101"));
    assert_non_null(repack->check("-1"));
    assert_non_null(repack->check("30%"));
    assert_non_null(repack->check(""));
    /* pages_from_mib: MiB, at least 1, at most 16 TiB */
    const struct cfg_key *from = &source_sqlite.cfg.keys[7];
    assert_null(from->check("1"));
    assert_null(from->check("16777216"));
    assert_non_null(from->check("0"));
    assert_non_null(from->check("16777217"));
    assert_non_null(from->check("1G"));
    /* auto: pages from the threshold (1024 MiB when unset), file below */
    struct source_cfg c = {.layout = NULL};
    assert_false(sq_layout_pages(&c, ((uint64_t)1 << 30) - 1));
    assert_true(sq_layout_pages(&c, (uint64_t)1 << 30));
    c.pages_from_mib = 5;
    assert_true(sq_layout_pages(&c, (uint64_t)5 << 20));
    c.layout = "file";
    assert_false(sq_layout_pages(&c, (uint64_t)5 << 30));
    assert_ptr_equal(source_find("sqlite"), &source_sqlite);
}

int main(void)
{
    log_set_level(LOG_QUIET);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_rollback_database),
        T(test_wal_database_with_open_writer),
        T(test_integrity_check_level),
        T(test_database_without_tables),
        T(test_zero_byte_file_is_an_empty_database),
        T(test_garbage_file),
        T(test_text_file),
        T(test_header_only_file),
        T(test_truncated_database),
        T(test_corrupt_page),
        T(test_missing_file_is_not_created),
        T(test_directory_is_not_a_database),
        T(test_locked_database_times_out),
        T(test_wal_database_on_read_only_mount),
        T(test_consistent_under_writes_wal),
        T(test_consistent_under_writes_rollback),
        T(test_full_disk_is_a_staging_error),
        T(test_stop_request_interrupts),
        T(test_validate),
        T(test_key_table),
        T(test_pagemap_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
