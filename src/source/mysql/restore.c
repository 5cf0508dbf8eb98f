/* restore --apply for [mysql NAME]: load a staged dump into the configured
 * server, in-process, statement by statement as the file streams by (never
 * the whole file in memory: the splitter holds one statement).
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
#include <time.h>
#include <unistd.h>

#include "../../core/fs.h"
#include "../../core/log.h"
#include "../../core/spawn.h"
#include "../../core/xalloc.h"
#include "mysql.h"

#define READ_CHUNK ((size_t)1024 * 1024)

struct loader {
    const struct source_cfg *cfg;
    MYSQL *m;
    const char *into;    /* NULL: the names in the dump */
    const char *from_db; /* the dump's one database, when into */
    const char *path;
    long long statements;
    sc_err *err;
};

/* ---- retargeting --------------------------------------------------------- */

/* Parse a `quoted` identifier at p: its unquoted name (owned) and length. */
static char *parse_ident(const char *p, size_t *used)
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
static char *retarget(struct loader *l, const char *sql, int *rc)
{
    static const char *const heads[] = {"CREATE DATABASE IF NOT EXISTS ", "USE "};
    *rc = 0;
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        size_t hn = strlen(heads[i]), used = 0;
        if (strncmp(sql, heads[i], hn) != 0)
            continue;
        char *name = parse_ident(sql + hn, &used);
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

/* ---- running statements -------------------------------------------------- */

static int drain(struct loader *l, long line)
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

static int run_statement(void *ctx, const char *sql, size_t len, long line)
{
    struct loader *l = ctx;
    int rc = 0;
    char *changed = l->into ? retarget(l, sql, &rc) : NULL;
    if (rc != 0)
        return rc;
    const char *q = changed ? changed : sql;
    size_t qn = changed ? strlen(changed) : len;
    if (mysql_real_query(l->m, q, (unsigned long)qn) != 0)
        rc = my_fail(l->m, l->cfg, l->err, "%s line %ld: %.80s", l->path, line, q);
    else
        rc = drain(l, line);
    free(changed);
    l->statements++;
    if (rc == 0 && sc_stop_requested)
        rc = sc_fail(l->err, SC_EINTR, "mysql %s: restore interrupted at %s line %ld", l->cfg->name,
                     l->path, line);
    return rc;
}

static int load_file(struct loader *l)
{
    int fd = open(l->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sc_fail_errno(l->err, SC_ESTAGING, "mysql %s: cannot read %s", l->cfg->name,
                             l->path);
    struct my_splitter s;
    my_split_init(&s, MY_MAX_PACKET, run_statement, l);
    char *buf = xmalloc(READ_CHUNK);
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sc_fail_errno(l->err, SC_ESTAGING, "mysql %s: cannot read %s", l->cfg->name,
                               l->path);
            break;
        }
        rc = n == 0 ? my_split_finish(&s) : my_split_feed(&s, buf, (size_t)n);
        if (rc != 0 || n == 0)
            break;
    }
    if (rc == -1)
        rc = sc_fail(l->err, SC_ESOURCE, "mysql %s: %s: %s", l->cfg->name, l->path, s.error);
    my_split_free(&s);
    free(buf);
    close(fd);
    return rc;
}

/* ---- targets ------------------------------------------------------------- */

/* How many tables, views, routines and events db holds (-1: no such db). */
static int count_objects(struct loader *l, const char *db, long long *n)
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

static int prepare_target(struct loader *l, const char *db, bool force)
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
static int verify_counts(struct loader *l, json_t *entry, long long *rows)
{
    json_t *tables = json_object_get(entry, "tables"), *counts;
    const char *db;
    *rows = 0;
    json_object_foreach(tables, db, counts)
    {
        const char *table;
        json_t *want;
        const char *target = l->into ? l->into : db;
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

/* "restored_to" for the restore report: where the data went. */
static void describe_target(struct loader *l, json_t *entry, long long rows)
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

static int prepare_targets(struct loader *l, json_t *entry, bool force)
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

static int session(struct loader *l)
{
    struct my_settings st;
    my_settings_of(l->cfg, &st);
    char *sql =
        xasprintf("SET SESSION net_read_timeout = %u, SESSION wait_timeout = 2147483", st.write_s);
    int rc = my_exec(l->m, l->cfg, sql, l->err);
    free(sql);
    if (rc == 0 && strstr(mysql_get_server_info(l->m), "MariaDB") != NULL)
        rc = my_exec(l->m, l->cfg, "SET SESSION max_statement_time = 0", l->err);
    return rc;
}

int my_restore(const struct source_cfg *src, const char *setdir, json_t *entry, const char *into,
               bool force, sc_err *err)
{
    const char *file;
    if (check_request(src, entry, into, &file, err) != 0)
        return err->code;
    struct loader l = {.cfg = src, .into = into, .err = err};
    if (into != NULL)
        l.from_db = json_string_value(json_array_get(json_object_get(entry, "databases"), 0));
    char *path = path_join(setdir, file);
    l.path = path;
    char *pw = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = my_check_files(src, err);
    if (rc == 0)
        rc = my_read_password(src, &pw, err);
    if (rc == 0)
        rc = my_connect(src, pw, "restore", &l.m, err);
    my_free_password(pw);
    if (rc == 0)
        rc = session(&l);
    if (rc == 0)
        rc = prepare_targets(&l, entry, force);
    if (rc == 0)
        rc = load_file(&l);
    long long rows = 0;
    if (rc == 0)
        rc = verify_counts(&l, entry, &rows);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0)
        describe_target(&l, entry, rows);
    if (rc == 0)
        log_info("mysql %s: restored %s%s: %lld statements, %lld rows, counts match the manifest, "
                 "%.1f s",
                 src->name, into ? "into " : "", into ? into : "the dumped databases", l.statements,
                 rows, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    my_close(&l.m);
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
