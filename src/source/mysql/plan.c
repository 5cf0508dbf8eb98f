/* What a dump covers: the databases (named, or every one but the server's
 * own) and, in each, the tables, sequences and views that pass
 * include_tables / exclude_tables, in byte order of their names, each with
 * its engine (transactional or not) from information_schema.TABLES. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../core/xalloc.h"
#include "mysql.h"

/* Schemas that belong to the server, never dumped as "all databases". */
static const char *const system_schemas[] = {"information_schema", "performance_schema", "mysql",
                                             "sys"};

/* ---- selection ---------------------------------------------------------- */

bool my_engine_transactional(const char *engine)
{
    static const char *const mvcc[] = {"InnoDB", "XtraDB", "RocksDB", "TokuDB"};
    if (engine == NULL)
        return false;
    for (size_t i = 0; i < sizeof mvcc / sizeof mvcc[0]; i++)
        if (strcasecmp(engine, mvcc[i]) == 0)
            return true;
    return false;
}

static bool matches_any(const struct strvec *patterns, const char *name)
{
    for (size_t i = 0; i < patterns->n; i++)
        if (fnmatch(patterns->v[i], name, 0) == 0)
            return true;
    return false;
}

bool my_table_selected(const struct source_cfg *cfg, const char *db, const char *table)
{
    char *name = xasprintf("%s.%s", db, table);
    bool in = cfg->include_tables.n == 0 || matches_any(&cfg->include_tables, name);
    if (in && matches_any(&cfg->exclude_tables, name))
        in = false;
    free(name);
    return in;
}

static bool is_system_schema(const char *name)
{
    for (size_t i = 0; i < sizeof system_schemas / sizeof system_schemas[0]; i++)
        if (strcmp(name, system_schemas[i]) == 0)
            return true;
    return false;
}

/* ---- the plan ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_table(const void *a, const void *b)
{
    const struct my_table *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static void add_db(struct my_plan *p, const char *name)
{
    for (size_t i = 0; i < p->ndbs; i++)
        if (strcmp(p->dbs[i].name, name) == 0)
            return; /* named twice in the config */
    p->dbs = xrealloc(p->dbs, (p->ndbs + 1) * sizeof *p->dbs);
    p->dbs[p->ndbs++] = (struct my_db){.name = xstrdup(name)};
}

/* Every non-system database, in byte order. */
static int list_all_databases(MYSQL *meta, const struct source_cfg *cfg, struct my_plan *p,
                              sc_err *err)
{
    MYSQL_RES *res;
    if (my_query(meta, cfg, "SHOW DATABASES", &res, err) != 0)
        return err->code;
    struct strvec names = {0};
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL)
        if (row[0] != NULL && !is_system_schema(row[0]))
            strvec_push(&names, row[0]);
    mysql_free_result(res);
    if (names.n > 0)
        qsort(names.v, names.n, sizeof *names.v, cmp_str);
    for (size_t i = 0; i < names.n; i++)
        add_db(p, names.v[i]);
    strvec_free(&names);
    return 0;
}

/* The databases named in the config, each checked to exist. */
static int list_named_databases(MYSQL *meta, const struct source_cfg *cfg, struct my_plan *p,
                                sc_err *err)
{
    for (size_t i = 0; i < cfg->databases.n; i++) {
        char *id = my_ident(cfg->databases.v[i]);
        char *sql = xasprintf("SHOW CREATE DATABASE %s", id);
        MYSQL_RES *res = NULL;
        int rc = my_query(meta, cfg, sql, &res, err);
        free(sql);
        free(id);
        if (rc != 0)
            return rc;
        mysql_free_result(res);
        add_db(p, cfg->databases.v[i]);
    }
    return 0;
}

static void add_table(struct my_plan *p, const char *db, MYSQL_ROW row)
{
    /* TABLE_NAME, TABLE_TYPE, ENGINE */
    struct my_table t = {.db = xstrdup(db), .name = xstrdup(row[0])};
    const char *type = row[1] ? row[1] : "";
    t.kind = strcmp(type, "VIEW") == 0       ? MY_VIEW
             : strcmp(type, "SEQUENCE") == 0 ? MY_SEQUENCE
                                             : MY_TABLE;
    t.versioned = strcmp(type, "SYSTEM VERSIONED") == 0;
    if (t.kind != MY_VIEW) {
        t.engine = xstrdup(row[2] ? row[2] : "unknown");
        t.transactional = my_engine_transactional(row[2]);
    }
    p->tables = xrealloc(p->tables, (p->ntables + 1) * sizeof *p->tables);
    p->tables[p->ntables++] = t;
}

static int list_tables(MYSQL *meta, const struct source_cfg *cfg, struct my_plan *p,
                       struct my_db *d, sc_err *err)
{
    char *lit = my_string(meta, d->name);
    char *sql = xasprintf("SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_SCHEMA FROM "
                          "information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                          lit);
    free(lit);
    MYSQL_RES *res;
    int rc = my_query(meta, cfg, sql, &res, err);
    free(sql);
    if (rc != 0)
        return rc;
    d->first = p->ntables;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        /* The comparison above follows the column's case-insensitive
         * collation; the name must match exactly. */
        if (row[0] == NULL || row[3] == NULL || strcmp(row[3], d->name) != 0)
            continue;
        if (my_table_selected(cfg, d->name, row[0]))
            add_table(p, d->name, row);
    }
    mysql_free_result(res);
    d->n = p->ntables - d->first;
    if (d->n > 1)
        qsort(p->tables + d->first, d->n, sizeof *p->tables, cmp_table);
    return 0;
}

int my_plan_build(MYSQL *meta, const struct source_cfg *cfg, struct my_plan *p, sc_err *err)
{
    memset(p, 0, sizeof *p);
    int rc = cfg->databases.n > 0 ? list_named_databases(meta, cfg, p, err)
                                  : list_all_databases(meta, cfg, p, err);
    for (size_t i = 0; rc == 0 && i < p->ndbs; i++)
        rc = list_tables(meta, cfg, p, &p->dbs[i], err);
    return rc;
}

void my_plan_free(struct my_plan *p)
{
    for (size_t i = 0; i < p->ndbs; i++)
        free(p->dbs[i].name);
    for (size_t i = 0; i < p->ntables; i++) {
        free(p->tables[i].db);
        free(p->tables[i].name);
        free(p->tables[i].engine);
        my_rows_plan_free(&p->tables[i].rows_plan);
        my_chunks_free(&p->tables[i].chunks);
    }
    free(p->dbs);
    free(p->tables);
    memset(p, 0, sizeof *p);
}
