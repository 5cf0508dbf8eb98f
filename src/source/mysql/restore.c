/* restore --apply for [mysql NAME]: load a staged dump into the configured
 * server, in-process, statement by statement as the file streams by (never
 * the whole file in memory: a splitter holds one statement).
 *
 * A dump whose manifest entry carries a load index (mysql.c) is loaded by
 * `threads` connections at once (load.c); an older one, or one whose index
 * does not fit the file, by this connection alone, from the first statement
 * to the last, as the stock client does.
 *
 * The dump's own statements set the session up (utf8mb4, UTC, no foreign
 * key checks) exactly as they do for the stock client. With `into`, the
 * dump's CREATE DATABASE and USE statements (ours, at known places) are
 * pointed at the other name: a restore drill next to the live database.
 * A target that already holds tables, views, routines or events is refused
 * unless force, which drops it first so the result is the dump and nothing
 * else. Afterwards every table's row count is compared with the manifest. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../core/clock.h"
#include "../../core/fs.h"
#include "../../core/log.h"
#include "../../core/spawn.h"
#include "../../core/xalloc.h"
#include "mysql.h"

#define READ_CHUNK ((size_t)1024 * 1024)
#define PROGRESS_EVERY_MS 250

/* ---- retargeting --------------------------------------------------------- */

/* Parse a `quoted` identifier at p: its unquoted name (owned) and length. */
char *my_parse_ident(const char *p, size_t *used)
{
    if (*p != '`')
        return NULL;
    size_t n = strlen(p);
    char *name = xmalloc(n), *o = name;
    for (size_t i = 1; i < n; i++) {
        if (p[i] == '`' && p[i + 1] == '`') {
            *o++ = '`';
            i++;
        } else if (p[i] == '`') {
            *o = '\0';
            *used = i + 1;
            return name;
        } else {
            *o++ = p[i];
        }
    }
    free(name);
    return NULL;
}

/* "CREATE DATABASE IF NOT EXISTS `db` ..." and "USE `db`" name the dumped
 * database: with into, the other name instead. NULL: leave sql as it is. */
static char *retarget(struct my_loader *l, const char *sql, int *rc)
{
    static const char *const heads[] = {"CREATE DATABASE IF NOT EXISTS ", "USE "};
    *rc = 0;
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        size_t hn = strlen(heads[i]), used = 0;
        if (strncmp(sql, heads[i], hn) != 0)
            continue;
        char *name = my_parse_ident(sql + hn, &used);
        if (name == NULL || strcmp(name, l->from_db) != 0) {
            *rc = sc_fail(l->err, SC_ESOURCE,
                          "mysql %s: %s: the dump names another database than %s: %.120s",
                          l->cfg->name, l->path, l->from_db, sql);
            free(name);
            return NULL;
        }
        free(name);
        char *id = my_ident(l->into);
        char *out = xasprintf("%s%s%s", heads[i], id, sql + hn + used);
        free(id);
        return out;
    }
    return NULL;
}

const char *my_target_db(const struct my_loader *l, const char *db)
{
    return l->into != NULL ? l->into : db;
}

/* ---- progress ------------------------------------------------------------ */

/* "1m05s", "42s": an ETA in words. */
static void format_seconds(double s, char *out, size_t n)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, n, "%lds", t);
}

void my_restore_progress(struct my_loader *l, const char *phase)
{
    long long t = now_ms();
    if (t - l->progress_ms < PROGRESS_EVERY_MS || !log_progress_enabled())
        return;
    l->progress_ms = t;
    long long done = atomic_load(&l->rows_done);
    double secs = (double)(t - l->started_ms) / 1000.0;
    double rate = secs > 0.5 ? (double)done / secs : 0;
    if (phase != NULL) {
        log_progress("mysql %s: restoring: %lld of %lld rows, %s", l->cfg->name, done,
                     l->rows_total, phase);
        return;
    }
    char eta[32] = "";
    if (rate > 0 && l->rows_total > done)
        format_seconds((double)(l->rows_total - done) / rate, eta, sizeof eta);
    log_progress("mysql %s: restoring: %lld of %lld rows (%.0f%%), %.0f rows/s%s%s%s", l->cfg->name,
                 done, l->rows_total,
                 l->rows_total > 0 ? 100.0 * (double)done / (double)l->rows_total : 100.0, rate,
                 *eta ? ", " : "", eta, *eta ? " left" : "");
}

/* ---- running statements on the control connection -------------------- */

static int drain(struct my_loader *l, long line)
{
    do {
        if (mysql_field_count(l->m) > 0) {
            MYSQL_RES *res = mysql_store_result(l->m);
            if (res == NULL)
                return my_fail(l->m, l->cfg, l->err, "%s line %ld", l->path, line);
            mysql_free_result(res);
        }
    } while (mysql_more_results(l->m) && mysql_next_result(l->m) == 0);
    if (mysql_errno(l->m) != 0)
        return my_fail(l->m, l->cfg, l->err, "%s line %ld", l->path, line);
    return 0;
}

int my_load_statement(void *ctx, const char *sql, size_t len, long line)
{
    struct my_loader *l = ctx;
    int rc = 0;
    char *changed = l->into ? retarget(l, sql, &rc) : NULL;
    if (rc != 0)
        return rc;
    const char *q = changed ? changed : sql;
    size_t qn = changed ? strlen(changed) : len;
    if (mysql_real_query(l->m, q, (unsigned long)qn) != 0) {
        rc = my_fail(l->m, l->cfg, l->err, "%s line %ld: %.80s", l->path, line, q);
    } else {
        if (strncmp(q, "INSERT INTO ", 12) == 0)
            atomic_fetch_add(&l->rows_done, (long long)mysql_affected_rows(l->m));
        rc = drain(l, line);
    }
    free(changed);
    l->statements++;
    if (rc == 0 && sc_stop_requested)
        rc = sc_fail(l->err, SC_EINTR, "mysql %s: restore interrupted at %s line %ld", l->cfg->name,
                     l->path, line);
    if (rc == 0)
        my_restore_progress(l, NULL);
    return rc;
}

int my_split_range(int fd, const char *path, const char *name, uint64_t off, uint64_t len,
                   my_stmt_fn fn, void *ctx, sc_err *err)
{
    struct my_splitter s;
    my_split_init(&s, MY_MAX_PACKET, fn, ctx);
    char *buf = xmalloc(READ_CHUNK);
    int rc = 0;
    for (;;) {
        size_t want = len < READ_CHUNK ? (size_t)len : READ_CHUNK;
        ssize_t n = want > 0 ? pread(fd, buf, want, (off_t)off) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sc_fail_errno(err, SC_ESTAGING, "mysql %s: cannot read %s", name, path);
            break;
        }
        off += (uint64_t)n;
        len -= (uint64_t)n;
        rc = n == 0 ? my_split_finish(&s) : my_split_feed(&s, buf, (size_t)n);
        if (rc != 0 || n == 0)
            break;
    }
    if (rc == -1)
        rc = sc_fail(err, SC_ESOURCE, "mysql %s: %s: %s", name, path, s.error);
    my_split_free(&s);
    free(buf);
    return rc;
}

/* An old set, or an index that does not fit: the file from first to last
 * statement, as the stock client loads it. */
static int load_serial(struct my_loader *l)
{
    return my_split_range(l->fd, l->path, l->cfg->name, 0, UINT64_MAX, my_load_statement, l,
                          l->err);
}

/* ---- targets ------------------------------------------------------------- */

/* How many tables, views, routines and events db holds (-1: no such db). */
static int count_objects(struct my_loader *l, const char *db, long long *n)
{
    char *lit = my_string(l->m, db);
    char *sql = xasprintf(
        "SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s), "
        "(SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s) + "
        "(SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s) + "
        "(SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s)",
        lit, lit, lit, lit);
    MYSQL_RES *res;
    int rc = my_query(l->m, l->cfg, sql, &res, l->err);
    free(sql);
    free(lit);
    if (rc != 0)
        return rc;
    MYSQL_ROW row = mysql_fetch_row(res);
    bool exists = row != NULL && row[0] != NULL && strcmp(row[0], "0") != 0;
    *n = exists && row[1] ? strtoll(row[1], NULL, 10) : -1;
    mysql_free_result(res);
    return 0;
}

static int prepare_target(struct my_loader *l, const char *db, bool force)
{
    long long n;
    int rc = count_objects(l, db, &n);
    if (rc != 0 || n <= 0)
        return rc;
    char *id = my_ident(db);
    if (!force) {
        rc = sc_fail(l->err, SC_EFAIL,
                     "mysql %s: database %s is not empty (%lld tables, views, routines or "
                     "events); restore into another name, or use --force to replace it",
                     l->cfg->name, id, n);
    } else {
        log_warn("mysql %s: dropping database %s (%lld objects) to replace it (--force)",
                 l->cfg->name, id, n);
        char *sql = xasprintf("DROP DATABASE %s", id);
        rc = my_exec(l->m, l->cfg, sql, l->err);
        free(sql);
    }
    free(id);
    return rc;
}

/* Rows per table after the load must be the rows the dump recorded. */
static int verify_counts(struct my_loader *l, json_t *entry, long long *rows)
{
    json_t *tables = json_object_get(entry, "tables"), *counts;
    const char *db;
    *rows = 0;
    json_object_foreach(tables, db, counts)
    {
        const char *table;
        json_t *want;
        const char *target = my_target_db(l, db);
        json_object_foreach(counts, table, want)
        {
            char *q = my_qualified(target, table);
            char *sql = xasprintf("SELECT COUNT(*) FROM %s", q), *got = NULL;
            int rc = my_query_value(l->m, l->cfg, sql, &got, l->err);
            long long n = got ? strtoll(got, NULL, 10) : -1;
            if (rc == 0 && n != json_integer_value(want))
                rc = sc_fail(l->err, SC_EVERIFY,
                             "mysql %s: restored %s has %lld rows, the dump recorded %lld",
                             l->cfg->name, q, n, (long long)json_integer_value(want));
            *rows += n;
            free(got);
            free(sql);
            free(q);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* ---- the operation -------------------------------------------------------- */

/* "restored_to" for the restore report: where the data went; "restore":
 * how (method, connections, deferred keys) and how long it took. */
static void describe_target(struct my_loader *l, json_t *entry, long long rows, double secs)
{
    char *names = NULL;
    if (l->into != NULL) {
        names = my_ident(l->into);
    } else {
        size_t i;
        json_t *db;
        json_array_foreach(json_object_get(entry, "databases"), i, db)
        {
            char *id = my_ident(json_string_value(db));
            char *joined = names ? xasprintf("%s, %s", names, id) : xstrdup(id);
            free(names);
            free(id);
            names = joined;
        }
    }
    char *text = xasprintf("database %s on %s (%lld rows, counts verified)", names ? names : "-",
                           mysql_get_host_info(l->m), rows);
    json_object_set_new(entry, "restored_to", json_string(text));
    json_object_set_new(entry, "restore",
                        json_pack("{s:s, s:i, s:I, s:I, s:f}", "method",
                                  l->connections > 0 ? "parallel" : "serial", "connections",
                                  l->connections > 0 ? l->connections : 1, "rows", (json_int_t)rows,
                                  "deferred_keys", (json_int_t)l->deferred_keys, "seconds", secs));
    free(text);
    free(names);
}

static int check_request(const struct source_cfg *src, json_t *entry, const char *into,
                         const char **file, sc_err *err)
{
    *file = json_string_value(json_object_get(entry, "dump_file"));
    json_t *dbs = json_object_get(entry, "databases");
    if (*file == NULL || strstr(*file, "..") != NULL || !json_is_array(dbs))
        return sc_fail(err, SC_EFAIL, "mysql %s: the manifest entry names no dump file", src->name);
    if (into == NULL)
        return 0;
    if (json_array_size(dbs) != 1)
        return sc_fail(err, SC_EUSAGE,
                       "mysql %s: --into needs a dump of one database; this one holds %zu",
                       src->name, json_array_size(dbs));
    size_t n = strlen(into);
    if (n == 0 || n > 64 || into[n - 1] == ' ')
        return sc_fail(err, SC_EUSAGE, "mysql %s: --into '%s' is not a database name", src->name,
                       into);
    return 0;
}

static int prepare_targets(struct my_loader *l, json_t *entry, bool force)
{
    if (l->into != NULL)
        return prepare_target(l, l->into, force);
    size_t i;
    json_t *db;
    json_array_foreach(json_object_get(entry, "databases"), i, db)
    {
        int rc = prepare_target(l, json_string_value(db), force);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int my_restore_session(MYSQL *m, const struct source_cfg *cfg, sc_err *err)
{
    struct my_settings st;
    my_settings_of(cfg, &st);
    char *sql =
        xasprintf("SET SESSION net_read_timeout = %u, SESSION wait_timeout = 2147483", st.write_s);
    int rc = my_exec(m, cfg, sql, err);
    free(sql);
    if (rc == 0 && strstr(mysql_get_server_info(m), "MariaDB") != NULL)
        rc = my_exec(m, cfg, "SET SESSION max_statement_time = 0", err);
    /* restore_binlog = no: the load stays out of the binary log (replicas
     * do not see it), as myloader's default; it needs SUPER or BINLOG
     * ADMIN, and a refusal fails the restore rather than logging anyway. */
    if (rc == 0 && cfg->restore_binlog != NULL && strcmp(cfg->restore_binlog, "no") == 0 &&
        mysql_query(m, "SET SESSION sql_log_bin = 0") != 0)
        rc = my_fail(m, cfg, err,
                     "restore_binlog = no: SET SESSION sql_log_bin = 0 (the account needs SUPER or "
                     "BINLOG ADMIN)");
    return rc;
}

static int open_dump(struct my_loader *l)
{
    l->fd = open(l->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (l->fd < 0 || fstat(l->fd, &st) != 0)
        return sc_fail_errno(l->err, SC_ESTAGING, "mysql %s: cannot read %s", l->cfg->name,
                             l->path);
    l->bytes = (uint64_t)st.st_size;
    return 0;
}

/* The parallel load when the set has a usable index, else the serial one. */
static int load(struct my_loader *l, json_t *entry, const char *password)
{
    struct my_settings st;
    my_settings_of(l->cfg, &st);
    int rc = my_load_parallel(l, json_object_get(entry, "load_index"), password, st.threads);
    if (rc != MY_LOAD_NO_INDEX)
        return rc;
    log_info("mysql %s: the set has no load index for %s (made by an older version?): loading "
             "it with one connection",
             l->cfg->name, l->path);
    return load_serial(l);
}

int my_restore(const struct source_cfg *src, const char *setdir, json_t *entry, const char *into,
               bool force, sc_err *err)
{
    const char *file;
    if (check_request(src, entry, into, &file, err) != 0)
        return err->code;
    struct my_loader l = {.cfg = src, .into = into, .err = err, .fd = -1};
    atomic_init(&l.rows_done, 0);
    l.rows_total = json_integer_value(json_object_get(entry, "rows_total"));
    if (into != NULL)
        l.from_db = json_string_value(json_array_get(json_object_get(entry, "databases"), 0));
    char *path = path_join(setdir, file);
    l.path = path;
    char *pw = NULL;
    l.started_ms = now_ms();
    int rc = my_check_files(src, err);
    if (rc == 0)
        rc = open_dump(&l);
    if (rc == 0)
        rc = my_read_password(src, &pw, err);
    if (rc == 0)
        rc = my_connect(src, pw, "restore", &l.m, err);
    if (rc == 0)
        rc = my_restore_session(l.m, src, err);
    if (rc == 0)
        rc = prepare_targets(&l, entry, force);
    if (rc == 0)
        rc = load(&l, entry, pw);
    my_free_password(pw);
    log_progress_done();
    long long rows = 0;
    if (rc == 0)
        rc = verify_counts(&l, entry, &rows);
    double secs = (double)(now_ms() - l.started_ms) / 1000.0;
    if (rc == 0)
        describe_target(&l, entry, rows, secs);
    if (rc == 0)
        log_info("mysql %s: restored %s%s: %lld rows (%s, %u connection%s), counts match the "
                 "manifest, %.1f s",
                 src->name, into ? "into " : "", into ? into : "the dumped databases", rows,
                 l.connections > 0 ? "in parallel" : "serially",
                 l.connections > 0 ? l.connections : 1, l.connections > 1 ? "s" : "", secs);
    my_close(&l.m);
    if (l.fd >= 0)
        close(l.fd);
    free(path);
    return rc;
}

int my_discard(const struct source_cfg *src, const char *into, sc_err *err)
{
    char *pw = NULL;
    MYSQL *m = NULL;
    int rc = my_check_files(src, err);
    if (rc == 0)
        rc = my_read_password(src, &pw, err);
    if (rc == 0)
        rc = my_connect(src, pw, "drop the drill database", &m, err);
    my_free_password(pw);
    if (rc == 0) {
        char *id = my_ident(into);
        char *sql = xasprintf("DROP DATABASE IF EXISTS %s", id);
        rc = my_exec(m, src, sql, err);
        free(sql);
        free(id);
    }
    my_close(&m);
    return rc;
}
