/* restore --apply and drill for [postgresql NAME]: a staged dump back into
 * a database of the configured server, as load.sql would do it with the
 * stock client, but the rows in parallel:
 *
 *   1. the target (--into NAME, else the dumped database's name) is made
 *      with CREATE DATABASE ... TEMPLATE template0 and the dumped database's
 *      encoding and locale; one that exists and holds objects is refused
 *      unless force, which drops it first; an empty one is used as it is;
 *   2. pre-data.sql through the stock psql (ON_ERROR_STOP: it may hold psql
 *      meta-commands, such as pg_dump's \restrict);
 *   3. the data files with COPY ... FROM STDIN over `threads` connections
 *      at once, each file's row count checked against the manifest;
 *   4. the sequences' values (setval), then post-data.sql through psql
 *      (indexes, constraints, triggers, ...);
 *   5. every table's rows counted and compared with the manifest (exit 7
 *      on a difference).
 *
 * A database this restore created is dropped again when it fails, so a
 * failed restore leaves nothing half-loaded behind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clock.h"
#include "../../core/fs.h"
#include "../../core/log.h"
#include "../../core/spawn.h"
#include "postgresql.h"

#define PSQL_TIMEOUT_S (24L * 3600)

struct load_file {
    char *path;
    const char *qname;
    char *columns;
    long long rows;
};

struct loader {
    const struct source_cfg *cfg;
    json_t *entry;
    char *srcdir; /* <setdir>/postgresql/<NAME> */
    const char *setdir;
    const char *target;
    char *password, *passfile;
    struct pg_tool psql;
    PGconn *admin, *db;
    bool created;
    struct load_file *files;
    size_t nfiles;
    struct strvec qnames;
    unsigned threads;
    long long rows;
    sc_err *err;
};

/* ---- the request ------------------------------------------------------------ */

static bool safe_relpath(const char *p)
{
    return p != NULL && *p != '\0' && p[0] != '/' && strstr(p, "..") == NULL;
}

static int check_request(const struct source_cfg *src, json_t *entry, const char *into,
                         const char **target, sc_err *err)
{
    const char *db = json_string_value(json_object_get(entry, "database"));
    const char *pre = json_string_value(json_object_get(entry, "pre_data"));
    const char *post = json_string_value(json_object_get(entry, "post_data"));
    if (db == NULL || !safe_relpath(pre) || !safe_relpath(post) ||
        !json_is_array(json_object_get(entry, "data")))
        return sc_fail(err, SC_EFAIL, "postgresql %s: the manifest entry does not describe a dump",
                       src->name);
    *target = into ? into : db;
    size_t n = strlen(*target);
    if (n == 0 || n > PG_NAME_MAX)
        return sc_fail(err, SC_EUSAGE, "postgresql %s: '%s' is not a database name (1 to %d bytes)",
                       src->name, *target, PG_NAME_MAX);
    return 0;
}

/* The data files of the manifest, with their tables and columns. */
static int collect_files(struct loader *l)
{
    json_t *data = json_object_get(l->entry, "data"), *t;
    size_t i;
    json_array_foreach(data, i, t)
    {
        const char *schema = json_string_value(json_object_get(t, "schema"));
        const char *name = json_string_value(json_object_get(t, "table"));
        json_t *cols = json_object_get(t, "columns"), *files = json_object_get(t, "files");
        if (schema == NULL || name == NULL || !json_is_array(cols) || !json_is_array(files))
            return sc_fail(l->err, SC_EFAIL, "postgresql %s: a table of the manifest is incomplete",
                           l->cfg->name);
        char *q = pg_qualified(schema, name);
        strvec_push(&l->qnames, q);
        free(q);
        const char *qname = l->qnames.v[l->qnames.n - 1];
        size_t k;
        json_t *f;
        json_array_foreach(files, k, f)
        {
            const char *rel = json_string_value(json_object_get(f, "file"));
            if (!safe_relpath(rel))
                return sc_fail(l->err, SC_EFAIL, "postgresql %s: a data file of %s.%s is unnamed",
                               l->cfg->name, schema, name);
            l->files = xrealloc(l->files, (l->nfiles + 1) * sizeof *l->files);
            struct load_file *lf = &l->files[l->nfiles++];
            lf->path = path_join(l->srcdir, rel);
            lf->qname = qname;
            lf->rows = json_integer_value(json_object_get(f, "rows"));
            size_t len = 1, c;
            json_t *col;
            json_array_foreach(cols, c, col) len += 2 * strlen(json_string_value(col)) + 4;
            lf->columns = xmalloc(len);
            char *o = lf->columns;
            *o = '\0';
            json_array_foreach(cols, c, col)
            {
                char *id = pg_ident(json_string_value(col));
                o += sprintf(o, "%s%s", c ? ", " : "", id);
                free(id);
            }
        }
    }
    return 0;
}

/* ---- the target database -------------------------------------------------------- */

static int connect_admin(struct loader *l)
{
    sc_err first = {0};
    /* the maintenance database, else template1 (always there) */
    if (pg_connect(l->cfg, l->password, "postgres", "restore", &l->admin, &first) == 0)
        return 0;
    sc_err second = {0};
    if (pg_connect(l->cfg, l->password, "template1", "restore", &l->admin, &second) == 0)
        return 0;
    return sc_fail(l->err, first.code, "%s", first.msg);
}

static int target_exists(struct loader *l, bool *exists)
{
    char *lit = pg_literal(l->target);
    char *sql = xasprintf("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", lit);
    char *v = NULL;
    int rc = pg_query_value(l->admin, l->cfg, sql, &v, l->err);
    *exists = v != NULL;
    free(v);
    free(sql);
    free(lit);
    return rc;
}

/* Schemas (but public), relations, functions, types and extensions (but
 * plpgsql) in the target. */
static int count_objects(struct loader *l, long long *n)
{
    static const char sql[] =
        "SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c JOIN "
        "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname <> "
        "'information_schema' AND n.nspname !~ '^pg_') + "
        "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON "
        "n.oid = p.pronamespace WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_') + "
        "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON "
        "n.oid = t.typnamespace WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' "
        "AND t.typrelid = 0 AND t.typcategory <> 'A') + "
        "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_namespace WHERE nspname <> "
        "'information_schema' AND nspname !~ '^pg_' AND nspname <> 'public') + "
        "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql')";
    PGconn *c = NULL;
    int rc = pg_connect(l->cfg, l->password, l->target, "restore", &c, l->err);
    char *v = NULL;
    if (rc == 0)
        rc = pg_query_value(c, l->cfg, sql, &v, l->err);
    *n = v ? strtoll(v, NULL, 10) : 0;
    free(v);
    pg_close(&c);
    return rc;
}

static int drop_database(PGconn *admin, const struct source_cfg *cfg, const char *name, sc_err *err)
{
    char *id = pg_ident(name);
    char *sql = xasprintf("DROP DATABASE IF EXISTS %s", id);
    int rc = pg_exec(admin, cfg, sql, err);
    free(sql);
    free(id);
    return rc;
}

/* The locale clauses of CREATE DATABASE for what the dump recorded. */
static char *locale_clauses(struct loader *l)
{
    static const struct {
        const char *code, *clause;
    } providers[] = {{"i", " LOCALE_PROVIDER icu ICU_LOCALE "},
                     {"b", " LOCALE_PROVIDER builtin BUILTIN_LOCALE "}};
    const char *collate = json_string_value(json_object_get(l->entry, "collate"));
    const char *ctype = json_string_value(json_object_get(l->entry, "ctype"));
    const char *provider = json_string_value(json_object_get(l->entry, "locale_provider"));
    const char *locale = json_string_value(json_object_get(l->entry, "icu_locale"));
    struct strvec parts = {0};
    char *q;
    if (collate != NULL) {
        q = pg_literal(collate);
        strvec_pushf(&parts, " LC_COLLATE %s", q);
        free(q);
    }
    if (ctype != NULL) {
        q = pg_literal(ctype);
        strvec_pushf(&parts, " LC_CTYPE %s", q);
        free(q);
    }
    for (size_t i = 0; provider && locale && i < sizeof providers / sizeof providers[0]; i++) {
        if (strcmp(provider, providers[i].code) != 0)
            continue;
        q = pg_literal(locale);
        strvec_pushf(&parts, "%s%s", providers[i].clause, q);
        free(q);
    }
    char *out = xstrdup("");
    for (size_t i = 0; i < parts.n; i++) {
        char *joined = xasprintf("%s%s", out, parts.v[i]);
        free(out);
        out = joined;
    }
    strvec_free(&parts);
    return out;
}

static int create_database(struct loader *l)
{
    const char *enc = json_string_value(json_object_get(l->entry, "encoding"));
    char *id = pg_ident(l->target), *e = pg_literal(enc ? enc : "UTF8");
    char *loc = locale_clauses(l);
    char *sql = xasprintf("CREATE DATABASE %s TEMPLATE template0 ENCODING %s%s", id, e, loc);
    int rc = pg_exec(l->admin, l->cfg, sql, l->err);
    l->created = rc == 0;
    free(sql);
    free(loc);
    free(e);
    free(id);
    return rc;
}

static int prepare_target(struct loader *l, bool force)
{
    bool exists;
    int rc = target_exists(l, &exists);
    if (rc != 0)
        return rc;
    if (exists) {
        long long n;
        rc = count_objects(l, &n);
        if (rc != 0 || n == 0)
            return rc; /* empty: load into it as it is */
        if (!force)
            return sc_fail(l->err, SC_EFAIL,
                           "postgresql %s: database \"%s\" is not empty (%lld objects); restore "
                           "into another name (--into), or use --force to replace it",
                           l->cfg->name, l->target, n);
        log_warn("postgresql %s: dropping database \"%s\" (%lld objects) to replace it (--force)",
                 l->cfg->name, l->target, n);
        rc = drop_database(l->admin, l->cfg, l->target, l->err);
        if (rc != 0)
            return rc;
    }
    return create_database(l);
}

/* ---- loading ------------------------------------------------------------------------ */

/* file: as the manifest names it, relative to the set. */
static int run_psql(struct loader *l, const char *file)
{
    char *path = path_join(l->setdir, file);
    char *ci = pg_conninfo(l->cfg, l->target, "stagecoach psql");
    char *dbarg = xasprintf("--dbname=%s", ci);
    char *filearg = xasprintf("--file=%s", path);
    char *argv[] = {
        l->psql.path, "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1",
        dbarg,        filearg,       NULL};
    const char *base = strrchr(file, '/');
    char *what = xasprintf("psql -f %s", base ? base + 1 : file);
    struct pg_child ch = {.cfg = l->cfg,
                          .what = what,
                          .passfile = l->passfile,
                          .argv = argv,
                          .out = NULL,
                          .timeout_s = PSQL_TIMEOUT_S};
    int rc = pg_child_run(&ch, l->err);
    free(what);
    free(filearg);
    free(dbarg);
    free(ci);
    free(path);
    return rc;
}

static int load_one(void *ctx, PGconn *conn, size_t idx, const atomic_int *cancel, sc_err *err)
{
    struct loader *l = ctx;
    const struct load_file *f = &l->files[idx];
    struct pg_copy_in j = {.cfg = l->cfg,
                           .conn = conn,
                           .path = f->path,
                           .qname = f->qname,
                           .columns = f->columns,
                           .cancel = cancel,
                           .err = err};
    int rc = pg_copy_from_file(&j);
    if (rc == 0 && j.rows != f->rows)
        rc = sc_fail(err, SC_EVERIFY,
                     "postgresql %s: %s loaded %lld rows into %s, the manifest recorded %lld",
                     l->cfg->name, f->path, j.rows, f->qname, f->rows);
    return rc;
}

static int load_session(struct loader *l, PGconn *c)
{
    const char *enc = json_string_value(json_object_get(l->entry, "encoding"));
    char *e = pg_literal(enc ? enc : "UTF8");
    char *sql = xasprintf("SET client_encoding = %s; SET DateStyle = ISO; SET IntervalStyle = "
                          "postgres; SET standard_conforming_strings = on; SET statement_timeout "
                          "= 0; SET row_security = off; SET synchronous_commit = off; SET "
                          "search_path = pg_catalog",
                          e);
    int rc = pg_exec(c, l->cfg, sql, l->err);
    free(sql);
    free(e);
    return rc;
}

static int load_data(struct loader *l)
{
    struct pg_settings st;
    pg_settings_of(l->cfg, &st);
    l->threads = st.threads;
    if (l->threads > l->nfiles)
        l->threads = l->nfiles > 0 ? (unsigned)l->nfiles : 1;
    char *label = xasprintf("postgresql %s", l->cfg->name);
    struct pg_pool pool;
    pg_pool_init(&pool, label, l->nfiles, 0, load_one, l);
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < l->threads && l->nfiles > 0; i++) {
        PGconn *c = NULL;
        rc = pg_connect(l->cfg, l->password, l->target, "load", &c, l->err);
        if (rc == 0)
            rc = load_session(l, c);
        if (c != NULL)
            pg_pool_add_conn(&pool, c);
    }
    if (rc == 0)
        rc = pg_pool_start(&pool, l->err);
    for (size_t i = 0; rc == 0 && i < l->nfiles; i++)
        rc = pg_pool_wait(&pool, i, l->err);
    pg_pool_stop(&pool);
    free(label);
    return rc;
}

static int set_sequences(struct loader *l)
{
    json_t *seqs = json_object_get(l->entry, "sequences"), *s;
    size_t i;
    int rc = 0;
    json_array_foreach(seqs, i, s)
    {
        const char *q = json_string_value(json_object_get(s, "qname"));
        const char *v = json_string_value(json_object_get(s, "last_value"));
        if (q == NULL || v == NULL || strspn(v, "-0123456789") != strlen(v))
            return sc_fail(l->err, SC_EFAIL,
                           "postgresql %s: a sequence of the manifest is "
                           "incomplete",
                           l->cfg->name);
        char *lit = pg_literal(q);
        char *sql = xasprintf("SELECT pg_catalog.setval(%s, %s, %s)", lit, v,
                              json_is_true(json_object_get(s, "is_called")) ? "true" : "false");
        rc = pg_exec(l->db, l->cfg, sql, l->err);
        free(sql);
        free(lit);
        if (rc != 0)
            break;
    }
    return rc;
}

/* Rows per table after the load must be the rows the dump recorded. */
static int verify_counts(struct loader *l)
{
    json_t *tables = json_object_get(l->entry, "tables"), *counts;
    const char *schema;
    l->rows = 0;
    json_object_foreach(tables, schema, counts)
    {
        const char *table;
        json_t *want;
        json_object_foreach(counts, table, want)
        {
            char *q = pg_qualified(schema, table);
            char *sql = xasprintf("SELECT pg_catalog.count(*) FROM ONLY %s", q), *got = NULL;
            int rc = pg_query_value(l->db, l->cfg, sql, &got, l->err);
            long long n = got ? strtoll(got, NULL, 10) : -1;
            if (rc == 0 && n != json_integer_value(want))
                rc = sc_fail(l->err, SC_EVERIFY,
                             "postgresql %s: restored %s.%s has %lld rows, the dump recorded %lld",
                             l->cfg->name, schema, table, n, (long long)json_integer_value(want));
            l->rows += n;
            free(got);
            free(sql);
            free(q);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static void describe_target(struct loader *l)
{
    char where[300];
    pg_describe_target(l->cfg, where, sizeof where);
    char *text =
        xasprintf("database \"%s\" on %s (%lld rows, counts verified)", l->target, where, l->rows);
    json_object_set_new(l->entry, "restored_to", json_string(text));
    free(text);
}

static int load_all(struct loader *l, bool force)
{
    int rc = pg_check_files(l->cfg, l->err);
    if (rc == 0)
        rc = pg_read_password(l->cfg, &l->password, l->err);
    if (rc == 0)
        rc = collect_files(l);
    if (rc == 0)
        rc = pg_tool_find(l->cfg, "psql", &l->psql, l->err);
    if (rc == 0)
        rc = connect_admin(l);
    if (rc == 0)
        rc = prepare_target(l, force);
    if (rc == 0)
        rc = pg_connect(l->cfg, l->password, l->target, "restore", &l->db, l->err);
    if (rc == 0 && l->password != NULL)
        rc = pg_passfile_write(l->setdir, l->password, &l->passfile, l->err);
    long long t0 = now_ms(), t1 = t0, t2 = t0, t3 = t0;
    if (rc == 0)
        rc = run_psql(l, json_string_value(json_object_get(l->entry, "pre_data")));
    if (rc == 0) {
        t1 = now_ms();
        rc = load_data(l);
    }
    if (rc == 0)
        rc = set_sequences(l);
    if (rc == 0) {
        t2 = now_ms();
        rc = run_psql(l, json_string_value(json_object_get(l->entry, "post_data")));
    }
    pg_passfile_remove(&l->passfile);
    if (rc == 0) {
        t3 = now_ms();
        rc = verify_counts(l);
    }
    if (rc == 0)
        log_debug("postgresql %s: pre-data %.1f s, rows %.1f s, post-data %.1f s, counts %.1f s",
                  l->cfg->name, (double)(t1 - t0) / 1000.0, (double)(t2 - t1) / 1000.0,
                  (double)(t3 - t2) / 1000.0, (double)(now_ms() - t3) / 1000.0);
    return rc;
}

int pg_restore(const struct source_cfg *src, const char *setdir, json_t *entry, const char *into,
               bool force, sc_err *err)
{
    const char *target = NULL;
    if (check_request(src, entry, into, &target, err) != 0)
        return err->code;
    char *rel = xasprintf("postgresql/%s", src->name);
    struct loader l = {.cfg = src,
                       .entry = entry,
                       .setdir = setdir,
                       .srcdir = path_join(setdir, rel),
                       .target = target,
                       .err = err};
    free(rel);
    long long t0 = now_ms();
    int rc = load_all(&l, force);
    pg_close(&l.db);
    if (rc != 0 && l.created && l.admin != NULL) {
        sc_err ignored = {0};
        if (drop_database(l.admin, src, target, &ignored) != 0)
            log_warn("postgresql %s: could not drop the half-restored database \"%s\": %s",
                     src->name, target, ignored.msg);
    }
    if (rc == 0) {
        describe_target(&l);
        log_info("postgresql %s: restored into \"%s\": %zu files over %u connection%s, %lld rows, "
                 "counts match the manifest, %.1f s",
                 src->name, target, l.nfiles, l.threads, l.threads == 1 ? "" : "s", l.rows,
                 (double)(now_ms() - t0) / 1000.0);
    }
    pg_close(&l.admin);
    pg_free_password(l.password);
    pg_tool_free(&l.psql);
    for (size_t i = 0; i < l.nfiles; i++) {
        free(l.files[i].path);
        free(l.files[i].columns);
    }
    free(l.files);
    strvec_free(&l.qnames);
    free(l.srcdir);
    return rc;
}

int pg_discard(const struct source_cfg *src, const char *into, sc_err *err)
{
    struct loader l = {.cfg = src, .target = into, .err = err};
    int rc = pg_check_files(src, err);
    if (rc == 0)
        rc = pg_read_password(src, &l.password, err);
    if (rc == 0)
        rc = connect_admin(&l);
    if (rc == 0)
        rc = drop_database(l.admin, src, into, err);
    pg_close(&l.admin);
    pg_free_password(l.password);
    return rc;
}
