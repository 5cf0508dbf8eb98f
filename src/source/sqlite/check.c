/* The copy's check (quick_check or integrity_check) and every table's
 * row count, on a thread of their own beside the hash. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/clock.h"
#include "../../core/fs.h"
#include "../../core/log.h"
#include "../../core/spawn.h"
#include "../../core/thread.h"
#include "../../core/xalloc.h"
#include "../../stage/set.h"
#include "sqlite.h"

/* The first problem an integrity check reports, on one line: SQLite puts
 * "*** in database main ***" and a newline before it. */
void sq_one_line_problem(char *out, size_t n, const char *text)
{
    static const char prefix[] = "*** in database main ***";
    if (strncmp(text, prefix, sizeof prefix - 1) == 0)
        text += sizeof prefix - 1;
    while (*text == '\n' || *text == ' ')
        text++;
    snprintf(out, n, "%s", text);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* quick_check / integrity_check answer one row "ok", or one row per problem. */
static int check_copy(struct job *j)
{
    bool full = j->cfg->check == CHECK_INTEGRITY;
    const char *pragma = full ? "integrity_check" : "quick_check";
    const char *sql = full ? "PRAGMA integrity_check" : "PRAGMA quick_check";
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->dst, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail_copy(j, rc, pragma);
    char first[512] = "";
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        sq_one_line_problem(first, sizeof first, v ? (const char *)v : "(null)");
        rc = strcmp(first, "ok") == 0 ? sqlite3_step(st) : SQLITE_ROW;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return sc_fail(j->err, SC_ESOURCE, "sqlite %s: %s: %s failed on the copy: %s", j->cfg->name,
                       j->path, pragma, first);
    if (rc != SQLITE_DONE || strcmp(first, "ok") != 0)
        return sq_fail_copy(j, rc, pragma);
    json_object_set_new(j->entry, "check", json_string(pragma));
    json_object_set_new(j->entry, "check_result", json_string("ok"));
    return 0;
}

int sq_count_table(struct job *j, const char *table, long long *rows)
{
    /* %w doubles the quotes inside: any table name is a safe identifier. */
    char *sql = sqlite3_mprintf("SELECT count(*) FROM \"%w\"", table);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->dst, sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *rows = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
    }
    return rc;
}

/* Rows of every ordinary table. SQLite's own tables (sqlite_sequence, ...)
 * are left out, and so are virtual tables: counting one needs its module,
 * and their rows live in shadow tables that are counted anyway. */
const char sq_ordinary_tables_sql[] =
    "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_' "
    "AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name";

static int count_rows(struct job *j)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->dst, sq_ordinary_tables_sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail_copy(j, rc, "cannot list the tables of the copy");
    json_t *tables = json_object();
    long long total = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        long long rows = 0;
        if (name == NULL)
            continue;
        if ((rc = sq_count_table(j, name, &rows)) != SQLITE_OK)
            break;
        total += rows;
        if (json_object_set_new(tables, name, json_integer(rows)) != 0)
            source_warn(j->entry,
                        "a table name is not valid UTF-8; its %lld rows are counted in "
                        "rows_total only",
                        rows);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(tables);
        return sq_fail_copy(j, rc, "cannot count the rows of the copy");
    }
    json_object_set_new(j->entry, "tables", tables);
    json_object_set_new(j->entry, "rows_total", json_integer(total));
    return 0;
}

/* After the last close nothing may be left next to the copy: the set must
 * hold exactly the files its manifest lists. */
int sq_check_no_sidecars(struct job *j)
{
    static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char *p = xasprintf("%s%s", j->dst_path, suffixes[i]);
        bool there = fs_exists(p);
        free(p);
        if (there)
            return sc_fail(j->err, SC_ESTAGING, "sqlite %s: %s%s was left behind in the set",
                           j->cfg->name, j->dst_path, suffixes[i]);
    }
    return 0;
}

static int check_and_count(struct job *j)
{
    int rc = check_copy(j);
    if (rc == 0)
        rc = count_rows(j);
    return rc;
}

static void *checker_main(void *arg)
{
    struct checker *c = arg;
    c->rc = check_and_count(&c->job);
    return NULL;
}

void sq_checker_start(struct checker *c, const struct job *j)
{
    memset(c, 0, sizeof *c);
    c->job = *j;
    c->job.entry = json_object();
    c->job.err = &c->err;
    /* Without a thread the check runs in checker_join, after the hash. */
    c->threaded = thread_start_quiet(&c->tid, checker_main, c) == 0;
}

/* Wait for the check; its findings go into the real entry (warnings
 * appended to those already there) and its failure into the job's error. */
int sq_checker_join(struct checker *c, struct job *j)
{
    if (c->threaded)
        pthread_join(c->tid, NULL);
    else
        c->rc = check_and_count(&c->job);
    const char *key;
    json_t *value;
    json_object_foreach(c->job.entry, key, value)
    {
        if (strcmp(key, "warnings") != 0) {
            json_object_set(j->entry, key, value);
            continue;
        }
        size_t i;
        json_t *w;
        json_array_foreach(value, i, w) source_warn(j->entry, "%s", json_string_value(w));
    }
    json_decref(c->job.entry);
    if (c->rc != 0)
        *j->err = c->err;
    return c->rc;
}
