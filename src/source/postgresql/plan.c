/* What a dump of one database covers, read from the catalogs inside the
 * snapshot (so it is the same instant as the rows and pg_dump's schema).
 *
 * Tables: every ordinary table (relkind 'r', partitions included: their
 * rows live there, a partitioned parent has none) outside the system
 * schemas, but not those exclude_table names, nor those an extension owns
 * (CREATE EXTENSION makes them again), except its configuration tables
 * (pg_extension_config_dump), whose rows are dumped with the extension's
 * condition, as pg_dump does. Temporary tables are skipped, and unlogged
 * ones on a standby (their rows cannot be read there).
 *
 * Each table's rows are read in the order of its primary key, else of a
 * unique index over NOT NULL columns (no predicate, no expression), else
 * physically (named in the warnings); a key of one integer column is split
 * into ranges (ranges.c). Generated columns are left out: the server
 * computes them again on load.
 *
 * Sequences: their values (last_value, is_called), as pg_dump's data
 * section would set them, except those owned by an excluded table. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/spawn.h"
#include "postgresql.h"

/* The tables query: columns in this order. */
enum {
    T_OID,
    T_SCHEMA,
    T_NAME,
    T_PERSISTENCE,
    T_MEMBER,
    T_CONFIG,
    T_CONDITION,
    T_READABLE,
    T_RLS_BLOCKED,
    T_RELTUPLES,
};

static const char tables_sql[] =
    "SELECT c.oid, n.nspname, c.relname, c.relpersistence, "
    "EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = "
    "'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e'), "
    "EXISTS (SELECT 1 FROM pg_catalog.pg_extension x WHERE c.oid = ANY (x.extconfig)), "
    "(SELECT x.extcondition[pg_catalog.array_position(x.extconfig, c.oid)] "
    " FROM pg_catalog.pg_extension x WHERE c.oid = ANY (x.extconfig) LIMIT 1), "
    "pg_catalog.has_table_privilege(c.oid, 'SELECT'), "
    "c.relrowsecurity AND NOT (SELECT r.rolsuper OR r.rolbypassrls FROM pg_catalog.pg_roles r "
    " WHERE r.rolname = current_user) "
    " AND (c.relforcerowsecurity OR NOT pg_catalog.pg_has_role(c.relowner, 'USAGE')), "
    "c.reltuples::bigint "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND c.relpersistence <> 't' "
    "AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' "
    "ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"";

static bool is_true(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && strcmp(PQgetvalue(r, row, col), "t") == 0;
}

bool pg_table_excluded(const struct source_cfg *cfg, const char *schema, const char *table)
{
    char *full = xasprintf("%s.%s", schema, table);
    bool hit = false;
    for (size_t i = 0; i < cfg->exclude_tables.n && !hit; i++) {
        const char *pat = cfg->exclude_tables.v[i];
        hit = fnmatch(pat, strchr(pat, '.') ? full : table, 0) == 0;
    }
    free(full);
    return hit;
}

/* An extension's own table (not one of its configuration tables). */
static bool extension_owned(const PGresult *r, int row)
{
    return is_true(r, row, T_MEMBER) && !is_true(r, row, T_CONFIG);
}

/* The tables (schema.name) the role cannot read: no SELECT, or row
 * security that it may not bypass (reading with row_security = off then
 * fails rather than return only some rows). Returns how many tables the
 * dump covers. */
static size_t collect_unreadable(const struct source_cfg *cfg, const PGresult *r,
                                 struct strvec *bad)
{
    size_t covered = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *schema = PQgetvalue(r, i, T_SCHEMA), *name = PQgetvalue(r, i, T_NAME);
        if (extension_owned(r, i) || pg_table_excluded(cfg, schema, name))
            continue;
        covered++;
        if (!is_true(r, i, T_READABLE))
            strvec_pushf(bad, "%s.%s", schema, name);
        else if (is_true(r, i, T_RLS_BLOCKED))
            strvec_pushf(bad, "%s.%s (row security)", schema, name);
    }
    return covered;
}

int pg_unreadable_tables(PGconn *c, const struct source_cfg *cfg, struct strvec *bad,
                         size_t *ntables, sc_err *err)
{
    PGresult *r;
    if (pg_query(c, cfg, tables_sql, &r, err) != 0)
        return err->code;
    *ntables = collect_unreadable(cfg, r, bad);
    PQclear(r);
    return 0;
}

char *pg_join_names(const struct strvec *names, size_t max)
{
    size_t len = 32;
    for (size_t i = 0; i < names->n && i < max; i++)
        len += strlen(names->v[i]) + 2;
    char *out = xmalloc(len), *o = out;
    *o = '\0';
    for (size_t i = 0; i < names->n && i < max; i++)
        o += sprintf(o, "%s%s", i ? ", " : "", names->v[i]);
    if (names->n > max)
        sprintf(o, " and %zu more", names->n - max);
    return out;
}

/* ---- one table ----------------------------------------------------------------- */

static int plan_columns(PGconn *c, const struct source_cfg *cfg, struct pg_table *t, sc_err *err)
{
    char *sql = xasprintf("SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = %u "
                          "AND a.attnum > 0 AND NOT a.attisdropped%s ORDER BY a.attnum",
                          t->oid, PQserverVersion(c) >= 120000 ? " AND a.attgenerated = ''" : "");
    PGresult *r;
    int rc = pg_query(c, cfg, sql, &r, err);
    free(sql);
    if (rc != 0)
        return rc;
    size_t len = 1;
    for (int i = 0; i < PQntuples(r); i++)
        len += 2 * strlen(PQgetvalue(r, i, 0)) + 4;
    t->columns = xmalloc(len);
    t->columns[0] = '\0';
    t->column_list = json_array();
    char *o = t->columns;
    for (int i = 0; i < PQntuples(r); i++) {
        char *id = pg_ident(PQgetvalue(r, i, 0));
        o += sprintf(o, "%s%s", i ? ", " : "", id);
        free(id);
        json_array_append_new(t->column_list, json_string(PQgetvalue(r, i, 0)));
    }
    PQclear(r);
    return 0;
}

/* The key rows are read in: the primary key, else the unique index over
 * NOT NULL columns with the fewest of them. */
static int plan_key(PGconn *c, const struct source_cfg *cfg, struct pg_table *t, sc_err *err)
{
    const char *nkeys = PQserverVersion(c) >= 110000 ? "i.indnkeyatts" : "i.indnatts";
    char *sql = xasprintf(
        "SELECT i.indexrelid, i.indisprimary, ic.relname, a.attname, a.atttypid, a.attnotnull "
        "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
        "CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY "
        "AS k(attnum, ord) "
        "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %u AND i.indisvalid AND i.indisunique AND k.ord <= %s "
        "AND (i.indisprimary OR (i.indpred IS NULL AND i.indexprs IS NULL)) "
        "ORDER BY i.indisprimary DESC, %s, ic.relname COLLATE \"C\", i.indexrelid, k.ord",
        t->oid, nkeys, nkeys);
    PGresult *r;
    int rc = pg_query(c, cfg, sql, &r, err);
    free(sql);
    if (rc != 0)
        return rc;
    int rows = PQntuples(r);
    for (int start = 0; start < rows && t->order_by == NULL;) {
        int end = start;
        bool usable = true;
        while (end < rows && strcmp(PQgetvalue(r, end, 0), PQgetvalue(r, start, 0)) == 0) {
            usable = usable && is_true(r, end, 5);
            end++;
        }
        if (usable) {
            struct strvec cols = {0};
            size_t len = 1;
            for (int i = start; i < end; i++) {
                strvec_push(&cols, PQgetvalue(r, i, 3));
                len += 2 * strlen(PQgetvalue(r, i, 3)) + 4;
            }
            t->order_by = xmalloc(len);
            char *o = t->order_by;
            for (size_t i = 0; i < cols.n; i++) {
                char *id = pg_ident(cols.v[i]);
                o += sprintf(o, "%s%s", i ? ", " : "", id);
                free(id);
            }
            *o = '\0';
            if (is_true(r, start, 1)) {
                t->order_what = xstrdup("primary key");
            } else {
                char *id = pg_ident(PQgetvalue(r, start, 2));
                t->order_what = xasprintf("unique index %s", id);
                free(id);
            }
            /* int2, int4, int8: split into ranges */
            unsigned type = (unsigned)strtoul(PQgetvalue(r, start, 4), NULL, 10);
            if (cols.n == 1 && (type == 20 || type == 21 || type == 23))
                t->range_col = pg_ident(cols.v[0]);
            strvec_free(&cols);
        }
        start = end;
    }
    PQclear(r);
    return 0;
}

static int plan_ranges(PGconn *c, const struct source_cfg *cfg, struct pg_table *t, sc_err *err)
{
    if (t->range_col == NULL || t->filter != NULL) {
        pg_range_single(&t->ranges);
        return 0;
    }
    char *sql = xasprintf("SELECT pg_catalog.min(%s)::text, pg_catalog.max(%s)::text FROM ONLY %s",
                          t->range_col, t->range_col, t->qname);
    PGresult *r;
    int rc = pg_query(c, cfg, sql, &r, err);
    free(sql);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0) || PQgetisnull(r, 0, 1))
        pg_range_single(&t->ranges); /* empty */
    else
        pg_range_plan(strtoll(PQgetvalue(r, 0, 0), NULL, 10),
                      strtoll(PQgetvalue(r, 0, 1), NULL, 10), PG_RANGE_KEYS, PG_MAX_RANGES,
                      &t->ranges);
    PQclear(r);
    return 0;
}

static int plan_table(PGconn *c, const struct source_cfg *cfg, struct pg_plan *p,
                      struct pg_table *t, sc_err *err)
{
    int rc = plan_columns(c, cfg, t, err);
    if (rc == 0)
        rc = plan_key(c, cfg, t, err);
    if (rc == 0)
        rc = plan_ranges(c, cfg, t, err);
    if (rc == 0 && t->order_by == NULL)
        strvec_push(&p->physical, t->label);
    return rc;
}

/* ---- every table -------------------------------------------------------------------- */

/* Refuse, naming them, tables the role cannot read: a dump without them
 * would look complete. */
static int check_readable(const struct source_cfg *cfg, const PGresult *r, sc_err *err)
{
    struct strvec bad = {0};
    (void)collect_unreadable(cfg, r, &bad);
    int rc = 0;
    if (bad.n > 0) {
        char *list = pg_join_names(&bad, 8);
        rc = sc_fail(err, SC_ESOURCE,
                     "postgresql %s: the role cannot read %zu table%s: %s (grant it "
                     "pg_read_all_data, and BYPASSRLS for row security, or exclude_table them)",
                     cfg->name, bad.n, bad.n == 1 ? "" : "s", list);
        free(list);
    }
    strvec_free(&bad);
    return rc;
}

static int list_tables(PGconn *c, const struct source_cfg *cfg, bool in_recovery, struct pg_plan *p,
                       struct strvec *excluded_oids, sc_err *err)
{
    PGresult *r;
    if (pg_query(c, cfg, tables_sql, &r, err) != 0)
        return err->code;
    int rc = check_readable(cfg, r, err);
    int n = PQntuples(r);
    p->tables = xcalloc((size_t)n + 1, sizeof *p->tables);
    for (int i = 0; rc == 0 && i < n; i++) {
        const char *schema = PQgetvalue(r, i, T_SCHEMA), *name = PQgetvalue(r, i, T_NAME);
        if (extension_owned(r, i))
            continue;
        if (pg_table_excluded(cfg, schema, name)) {
            strvec_push(excluded_oids, PQgetvalue(r, i, T_OID));
            char *q = pg_qualified(schema, name);
            strvec_push(&p->excluded, q);
            free(q);
            continue;
        }
        if (in_recovery && strcmp(PQgetvalue(r, i, T_PERSISTENCE), "u") == 0) {
            strvec_pushf(&p->unlogged_skipped, "%s.%s", schema, name);
            continue;
        }
        struct pg_table *t = &p->tables[p->ntables++];
        t->schema = xstrdup(schema);
        t->name = xstrdup(name);
        t->qname = pg_qualified(schema, name);
        t->label = xasprintf("%s.%s", schema, name);
        t->oid = (unsigned)strtoul(PQgetvalue(r, i, T_OID), NULL, 10);
        long long estimate = strtoll(PQgetvalue(r, i, T_RELTUPLES), NULL, 10);
        if (estimate > 0) /* -1: never analyzed */
            p->estimated_rows += estimate;
        if (is_true(r, i, T_CONFIG))
            t->filter =
                xstrdup(PQgetisnull(r, i, T_CONDITION) ? "" : PQgetvalue(r, i, T_CONDITION));
    }
    PQclear(r);
    for (size_t i = 0; rc == 0 && i < p->ntables; i++) {
        if (sc_stop_requested)
            return sc_fail(err, SC_EINTR, "postgresql %s: interrupted", cfg->name);
        rc = plan_table(c, cfg, p, &p->tables[i], err);
        p->tables[i].first_file = p->nranges;
        p->nranges += p->tables[i].ranges.n;
    }
    return rc;
}

/* ---- sequences, large objects, the database ------------------------------------------ */

static bool listed(const struct strvec *v, const char *s)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->v[i], s) == 0)
            return true;
    return false;
}

static int list_sequences(PGconn *c, const struct source_cfg *cfg, struct pg_plan *p,
                          const struct strvec *excluded_oids, sc_err *err)
{
    static const char sql[] =
        "SELECT n.nspname, c.relname, "
        "(SELECT d.refobjid FROM pg_catalog.pg_depend d WHERE d.classid = "
        " 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.refclassid = "
        " 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i') LIMIT 1), "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = "
        " 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e') "
        " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension x WHERE c.oid = ANY (x.extconfig)) "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'S' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' "
        "ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"";
    PGresult *r;
    if (pg_query(c, cfg, sql, &r, err) != 0)
        return err->code;
    int n = PQntuples(r), rc = 0;
    p->seqs = xcalloc((size_t)n + 1, sizeof *p->seqs);
    for (int i = 0; rc == 0 && i < n; i++) {
        if (is_true(r, i, 3) ||
            (!PQgetisnull(r, i, 2) && listed(excluded_oids, PQgetvalue(r, i, 2))))
            continue;
        struct pg_sequence *s = &p->seqs[p->nseqs++];
        s->qname = pg_qualified(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        s->label = xasprintf("%s.%s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        char *q = xasprintf("SELECT last_value::text, is_called FROM %s", s->qname);
        PGresult *v;
        rc = pg_query(c, cfg, q, &v, err);
        free(q);
        if (rc == 0 && PQntuples(v) == 1) {
            s->last_value = xstrdup(PQgetvalue(v, 0, 0));
            s->is_called = is_true(v, 0, 1);
        } else if (rc == 0) {
            rc = sc_fail(err, SC_ESOURCE, "postgresql %s: sequence %s gave no value", cfg->name,
                         s->label);
        }
        PQclear(v);
    }
    PQclear(r);
    return rc;
}

static int describe_database(PGconn *c, const struct source_cfg *cfg, struct pg_plan *p,
                             sc_err *err)
{
    int v = PQserverVersion(c);
    const char *locale = v >= 170000   ? "d.datlocprovider::text, d.datlocale"
                         : v >= 150000 ? "d.datlocprovider::text, d.daticulocale"
                                       : "'c', NULL";
    char *sql = xasprintf("SELECT pg_catalog.pg_encoding_to_char(d.encoding), d.datcollate, "
                          "d.datctype, %s, (SELECT pg_catalog.count(*) FROM "
                          "pg_catalog.pg_largeobject_metadata) "
                          "FROM pg_catalog.pg_database d WHERE d.datname = "
                          "pg_catalog.current_database()",
                          locale);
    PGresult *r;
    int rc = pg_query(c, cfg, sql, &r, err);
    free(sql);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 1) {
        p->encoding = xstrdup(PQgetvalue(r, 0, 0));
        p->collate = xstrdup(PQgetvalue(r, 0, 1));
        p->ctype = xstrdup(PQgetvalue(r, 0, 2));
        p->locale_provider = xstrdup(PQgetvalue(r, 0, 3));
        p->icu_locale = PQgetisnull(r, 0, 4) ? NULL : xstrdup(PQgetvalue(r, 0, 4));
        p->large_objects = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    } else {
        rc = sc_fail(err, SC_ESOURCE, "postgresql %s: the database is not in pg_database",
                     cfg->name);
    }
    PQclear(r);
    return rc;
}

int pg_plan_build(PGconn *c, const struct source_cfg *cfg, bool in_recovery, struct pg_plan *p,
                  sc_err *err)
{
    memset(p, 0, sizeof *p);
    struct strvec excluded_oids = {0};
    int rc = describe_database(c, cfg, p, err);
    if (rc == 0)
        rc = list_tables(c, cfg, in_recovery, p, &excluded_oids, err);
    if (rc == 0)
        rc = list_sequences(c, cfg, p, &excluded_oids, err);
    strvec_free(&excluded_oids);
    return rc;
}

void pg_plan_free(struct pg_plan *p)
{
    for (size_t i = 0; i < p->ntables; i++) {
        struct pg_table *t = &p->tables[i];
        free(t->schema);
        free(t->name);
        free(t->qname);
        free(t->label);
        free(t->columns);
        json_decref(t->column_list);
        free(t->order_by);
        free(t->order_what);
        free(t->range_col);
        free(t->filter);
        pg_ranges_free(&t->ranges);
    }
    free(p->tables);
    for (size_t i = 0; i < p->nseqs; i++) {
        free(p->seqs[i].qname);
        free(p->seqs[i].label);
        free(p->seqs[i].last_value);
    }
    free(p->seqs);
    strvec_free(&p->excluded);
    strvec_free(&p->physical);
    strvec_free(&p->unlogged_skipped);
    free(p->encoding);
    free(p->collate);
    free(p->ctype);
    free(p->locale_provider);
    free(p->icu_locale);
    memset(p, 0, sizeof *p);
}
