/* [postgresql NAME]: one database in one consistent snapshot, written into
 * postgresql/<NAME>/ in the set through its sinks:
 *
 *   pre-data.sql    pg_dump --section=pre-data --snapshot=ID (types,
 *                   tables, functions, views, ...: PostgreSQL's own DDL)
 *   data/<n>.copy   the rows of one table, or of one key range of it, in
 *                   COPY text format, in key order (copy.c)
 *   post-data.sql   pg_dump --section=post-data --snapshot=ID (indexes,
 *                   constraints, triggers, rules, policies, ...)
 *   load.sql        a psql script that loads all of it in order: psql
 *                   -v ON_ERROR_STOP=1 -f load.sql restores with the stock
 *                   client alone
 *
 * Consistency. The main connection opens a REPEATABLE READ, READ ONLY
 * transaction and exports its snapshot (pg_export_snapshot); every worker
 * connection imports it (SET TRANSACTION SNAPSHOT) and so does pg_dump
 * (--snapshot), so the schema and every row are of one instant, recorded
 * with the WAL position of that instant. The main connection also takes
 * ACCESS SHARE locks on every table it dumps (as pg_dump does) and keeps
 * them to the end: a TRUNCATE or a rewriting ALTER, which the snapshot
 * would not hide, waits for the dump instead of emptying a table under it.
 * Writers are never blocked.
 *
 * Order of work: plan (catalogs, key ranges) on the main connection; the
 * workers start reading ranges; meanwhile the main thread runs pg_dump for
 * pre-data and post-data, then closes the data files in order as the
 * workers finish them (par.c). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clock.h"
#include "../../core/fs.h"
#include "../../core/log.h"
#include "../../core/spawn.h"
#include "../../stage/set.h"
#include "../source.h"
#include "postgresql.h"

#define O(field) offsetof(struct source_cfg, field)
/* Tables per LOCK TABLE statement. */
#define LOCK_BATCH 500
/* pg_dump of the schema: bounded, generously (it waits for locks at most
 * PG_LOCK_TIMEOUT_S). */
#define PG_DUMP_TIMEOUT_S 3600L

/* ---- keys and validation -------------------------------------------------- */

static const char *check_sslmode(const char *value)
{
    static const char *const modes[] = {"disable", "allow",     "prefer",
                                        "require", "verify-ca", "verify-full"};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(value, modes[i]) == 0)
            return NULL;
    return "expected disable, allow, prefer, require, verify-ca or verify-full";
}

static const struct cfg_key pg_keys[] = {
    {"database", CFG_LIST, O(databases), false, NULL},
    {"host", CFG_STR, O(host), false, NULL},
    {"port", CFG_INT, O(port), false, NULL},
    {"user", CFG_STR, O(user), false, NULL},
    {"password_file", CFG_PATH, O(password_file), false, NULL},
    {"passfile", CFG_PATH, O(passfile), false, NULL},
    {"sslmode", CFG_STR, O(sslmode), false, check_sslmode},
    {"sslrootcert", CFG_PATH, O(sslrootcert), false, NULL},
    {"connect_timeout", CFG_DURATION, O(connect_timeout_s), false, NULL},
    {"threads", CFG_INT, O(threads), false, NULL},
    {"exclude_table", CFG_LIST, O(exclude_tables), false, NULL},
    {"bin_dir", CFG_PATH, O(bin_dir), false, NULL},
    {NULL, 0, 0, false, NULL},
};

static int pg_validate(const struct source_cfg *src, struct config_problems *probs,
                       const char *file)
{
    char section[128];
    snprintf(section, sizeof section, "postgresql %s", src->name);
    int bad = 0;
    if (src->databases.n != 1) {
        config_problem(probs, file, src->line, section, "database",
                       src->databases.n == 0
                           ? "missing: name the database to back up"
                           : "one database per section (a snapshot covers one database): add a "
                             "[postgresql NAME] section for each");
        bad = 1;
    }
    if (src->password_file != NULL && src->passfile != NULL) {
        config_problem(probs, file, src->line, section, "passfile",
                       "set either password_file (the password alone) or passfile (.pgpass "
                       "format), not both");
        bad = 1;
    }
    if (src->port < 0 || src->port > 65535) {
        config_problem(probs, file, src->line, section, "port", "must be between 1 and 65535");
        bad = 1;
    }
    if (src->threads < 0 || src->threads > PG_MAX_THREADS) {
        config_problem(probs, file, src->line, section, "threads", "must be between 1 and %d",
                       PG_MAX_THREADS);
        bad = 1;
    }
    if (src->host != NULL && *src->host == '\0') {
        config_problem(probs, file, src->line, section, "host", "empty");
        bad = 1;
    }
    return bad;
}

/* ---- one dump ---------------------------------------------------------------- */

/* One data file: a range of a table. */
struct pg_file {
    struct pg_table *t;
    size_t range;
    char *relpath; /* postgresql/<NAME>/data/<n>.copy */
    struct sink sink;
    bool open; /* written by a worker, not yet closed by the main thread */
    long long rows;
};

struct dump {
    const struct source_cfg *cfg;
    struct pg_settings st;
    struct set *set;
    json_t *entry;
    sc_err *err;
    char *password;
    char *passfile; /* the private one for pg_dump, while it runs */
    struct pg_tool pg_dump;
    PGconn *main;
    int server_num;
    char *server_version;
    bool in_recovery;
    char *snapshot, *lsn;
    struct pg_plan plan;
    char *dir; /* postgresql/<NAME> */
    struct pg_file *files;
    size_t nfiles;
    struct pg_pool pool;
    bool pool_ready;
    atomic_llong progress;
    size_t files_done;
    struct sink post;
    bool post_open;
    unsigned threads;
    long long rows_total;
    long long t0;
};

static int interrupted(struct dump *d)
{
    return sc_fail(d->err, SC_EINTR, "postgresql %s: interrupted", d->cfg->name);
}

/* What every connection of a dump reads with: text that loads back the
 * same in any session (ISO dates, UTC, every float digit, hex bytea), the
 * database's own encoding (as pg_dump writes), no timeout cutting a long
 * COPY short, row security off (a table it would filter fails instead of
 * dumping only some rows), no JIT for the big COPY queries, and the
 * catalog first on the search path. */
static int session_setup(struct dump *d, PGconn *c)
{
    const char *server = PQparameterStatus(c, "server_encoding");
    char *enc = pg_literal(server ? server : "UTF8");
    char *sql = xasprintf(
        "SET client_encoding = %s; SET DateStyle = ISO; SET IntervalStyle = postgres; "
        "SET extra_float_digits = 3; SET TimeZone = 'UTC'; SET bytea_output = 'hex'; "
        "SET standard_conforming_strings = on; SET statement_timeout = 0; SET lock_timeout = 0; "
        "SET idle_in_transaction_session_timeout = 0; SET row_security = off; "
        "SET client_min_messages = warning; SET search_path = pg_catalog; SET jit = off",
        enc);
    int rc = pg_exec(c, d->cfg, sql, d->err);
    free(sql);
    free(enc);
    return rc;
}

static int connect_main(struct dump *d)
{
    int rc = pg_connect(d->cfg, d->password, NULL, "snapshot", &d->main, d->err);
    if (rc != 0)
        return rc;
    d->server_num = PQserverVersion(d->main);
    const char *v = PQparameterStatus(d->main, "server_version");
    d->server_version = xstrdup(v ? v : "?");
    if (d->server_num < PG_MIN_SERVER)
        return sc_fail(d->err, SC_ESOURCE,
                       "postgresql %s: server %s is too old: PostgreSQL 10 or newer is needed",
                       d->cfg->name, d->server_version);
    /* pg_dump refuses a newer server, and its DDL would not be complete */
    if (d->pg_dump.major < d->server_num / 10000)
        return sc_fail(d->err, SC_ESOURCE,
                       "postgresql %s: %s is version %s, older than the server (%s): install "
                       "the PostgreSQL %d client programs (or newer) and set bin_dir to them",
                       d->cfg->name, d->pg_dump.path, d->pg_dump.version, d->server_version,
                       d->server_num / 10000);
    return session_setup(d, d->main);
}

/* The transaction every connection shares: its snapshot id and the WAL
 * position when it was taken. */
static int start_snapshot(struct dump *d)
{
    int rc = pg_exec(d->main, d->cfg,
                     "BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", d->err);
    PGresult *r = NULL;
    if (rc == 0)
        rc = pg_query(d->main, d->cfg,
                      "SELECT pg_catalog.pg_export_snapshot(), CASE WHEN "
                      "pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() "
                      "ELSE pg_catalog.pg_current_wal_lsn() END::text, "
                      "pg_catalog.pg_is_in_recovery()",
                      &r, d->err);
    if (rc == 0 && PQntuples(r) == 1) {
        d->snapshot = xstrdup(PQgetvalue(r, 0, 0));
        d->lsn = PQgetisnull(r, 0, 1) ? NULL : xstrdup(PQgetvalue(r, 0, 1));
        d->in_recovery = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    } else if (rc == 0) {
        rc = sc_fail(d->err, SC_ESOURCE, "postgresql %s: no snapshot was exported", d->cfg->name);
    }
    PQclear(r);
    return rc;
}

/* ACCESS SHARE on every table dumped, held to the end (pg_dump's lock). */
static int lock_tables(struct dump *d)
{
    char *set = xasprintf("SET lock_timeout = '%ds'", PG_LOCK_TIMEOUT_S);
    int rc = pg_exec(d->main, d->cfg, set, d->err);
    free(set);
    for (size_t i = 0; rc == 0 && i < d->plan.ntables; i += LOCK_BATCH) {
        size_t end = i + LOCK_BATCH < d->plan.ntables ? i + LOCK_BATCH : d->plan.ntables;
        size_t len = 64;
        for (size_t k = i; k < end; k++)
            len += strlen(d->plan.tables[k].qname) + 2;
        char *sql = xmalloc(len), *o = sql;
        o += sprintf(o, "LOCK TABLE ONLY ");
        for (size_t k = i; k < end; k++)
            o += sprintf(o, "%s%s", k > i ? ", " : "", d->plan.tables[k].qname);
        sprintf(o, " IN ACCESS SHARE MODE");
        rc = pg_exec(d->main, d->cfg, sql, d->err);
        free(sql);
    }
    if (rc == 0)
        rc = pg_exec(d->main, d->cfg, "SET lock_timeout = 0", d->err);
    return rc;
}

/* ---- reading rows ------------------------------------------------------------- */

static void plan_files(struct dump *d)
{
    d->nfiles = d->plan.nranges;
    d->files = xcalloc(d->nfiles + 1, sizeof *d->files);
    for (size_t i = 0; i < d->plan.ntables; i++) {
        struct pg_table *t = &d->plan.tables[i];
        for (size_t k = 0; k < t->ranges.n; k++) {
            size_t n = t->first_file + k;
            struct pg_file *f = &d->files[n];
            f->t = t;
            f->range = k;
            f->relpath = xasprintf("%s/%s/%04zu.copy", d->dir, PG_DATA_DIR, n + 1);
        }
    }
}

/* A worker's job: one range into its own data file. */
static int read_range(void *ctx, PGconn *conn, size_t idx, const atomic_int *cancel, sc_err *err)
{
    struct dump *d = ctx;
    struct pg_file *f = &d->files[idx];
    if (sink_open(&f->sink, d->set, f->relpath, err) != 0)
        return err->code;
    f->open = true;
    struct pg_copy_out j = {.cfg = d->cfg,
                            .conn = conn,
                            .table = f->t,
                            .range = f->range,
                            .sink = &f->sink,
                            .cancel = cancel,
                            .progress = &d->progress,
                            .err = err};
    int rc = pg_copy_to_sink(&j);
    f->rows = j.rows;
    if (rc != 0) {
        sink_abort(&f->sink);
        f->open = false;
    }
    return rc;
}

static int connect_worker(struct dump *d, PGconn **c)
{
    int rc = pg_connect(d->cfg, d->password, NULL, "worker", c, d->err);
    if (rc == 0)
        rc = session_setup(d, *c);
    if (rc == 0)
        rc = pg_exec(*c, d->cfg, "BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                     d->err);
    if (rc == 0) {
        char *lit = pg_literal(d->snapshot);
        char *sql = xasprintf("SET TRANSACTION SNAPSHOT %s", lit);
        rc = pg_exec(*c, d->cfg, sql, d->err);
        free(sql);
        free(lit);
    }
    return rc;
}

static void progress_tick(void *ctx)
{
    struct dump *d = ctx;
    if (!log_progress_enabled())
        return;
    long long rows = (long long)atomic_load(&d->progress);
    if (d->plan.estimated_rows > rows)
        log_progress("postgresql %s: %lld of ~%lld rows, %zu of %zu files", d->cfg->name, rows,
                     d->plan.estimated_rows, d->files_done, d->nfiles);
    else
        log_progress("postgresql %s: %lld rows, %zu of %zu files", d->cfg->name, rows,
                     d->files_done, d->nfiles);
}

static int start_workers(struct dump *d)
{
    d->threads = d->st.threads;
    if (d->threads > d->nfiles)
        d->threads = d->nfiles > 0 ? (unsigned)d->nfiles : 1;
    char *label = xasprintf("postgresql %s", d->cfg->name);
    pg_pool_init(&d->pool, label, d->nfiles, 2 * (size_t)d->threads, read_range, d);
    d->pool.tick = progress_tick;
    d->pool_ready = true;
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < d->threads && d->nfiles > 0; i++) {
        PGconn *c = NULL;
        rc = connect_worker(d, &c);
        if (c != NULL)
            pg_pool_add_conn(&d->pool, c);
    }
    if (rc == 0)
        rc = pg_pool_start(&d->pool, d->err);
    return rc;
}

/* The data files as the workers finish them, in order. */
static int take_files(struct dump *d)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < d->nfiles; i++) {
        struct pg_file *f = &d->files[i];
        rc = pg_pool_wait(&d->pool, i, d->err);
        if (rc != 0)
            break;
        f->open = false;
        rc = sink_close(&f->sink, d->err);
        f->t->rows += f->rows;
        d->rows_total += f->rows;
        d->files_done++;
        progress_tick(d);
    }
    log_progress_done();
    return rc;
}

/* ---- the schema: pg_dump --------------------------------------------------------- */

static int run_pg_dump(struct dump *d, const char *section, struct sink *out)
{
    struct strvec argv = {0};
    strvec_push(&argv, d->pg_dump.path);
    strvec_push(&argv, "--format=plain");
    strvec_pushf(&argv, "--section=%s", section);
    strvec_pushf(&argv, "--snapshot=%s", d->snapshot);
    strvec_pushf(&argv, "--encoding=%s", d->plan.encoding);
    strvec_pushf(&argv, "--lock-wait-timeout=%ds", PG_LOCK_TIMEOUT_S);
    strvec_push(&argv, "--no-password");
    for (size_t i = 0; i < d->plan.excluded.n; i++)
        strvec_pushf(&argv, "--exclude-table=%s", d->plan.excluded.v[i]);
    char *ci = pg_conninfo(d->cfg, NULL, "stagecoach pg_dump");
    strvec_pushf(&argv, "--dbname=%s", ci);
    free(ci);
    char *what = xasprintf("pg_dump --section=%s", section);
    struct pg_child ch = {.cfg = d->cfg,
                          .what = what,
                          .passfile = d->passfile,
                          .argv = argv.v,
                          .out = out,
                          .timeout_s = PG_DUMP_TIMEOUT_S};
    int rc = pg_child_run(&ch, d->err);
    free(what);
    strvec_free(&argv);
    return rc;
}

/* One section into a new file of the set; left open in *k when keep_open. */
static int dump_section(struct dump *d, const char *section, const char *file, struct sink *k,
                        bool keep_open, bool *open)
{
    char *path = xasprintf("%s/%s", d->dir, file);
    int rc = sink_open(k, d->set, path, d->err);
    free(path);
    if (rc != 0)
        return rc;
    *open = true;
    rc = run_pg_dump(d, section, k);
    if (rc == 0 && !keep_open) {
        *open = false;
        rc = sink_close(k, d->err);
    }
    return rc;
}

static int dump_schema(struct dump *d)
{
    if (d->password != NULL &&
        pg_passfile_write(d->set->tmpdir, d->password, &d->passfile, d->err) != 0)
        return d->err->code;
    struct sink pre;
    bool pre_open = false;
    int rc = dump_section(d, "pre-data", PG_PRE_DATA, &pre, false, &pre_open);
    if (pre_open)
        sink_abort(&pre);
    /* post-data.sql is closed after the data files, so that the manifest
     * lists the files in the order they load */
    if (rc == 0)
        rc = dump_section(d, "post-data", PG_POST_DATA, &d->post, true, &d->post_open);
    pg_passfile_remove(&d->passfile);
    return rc;
}

/* ---- load.sql ----------------------------------------------------------------------- */

static void add_copy_lines(struct dump *d, struct strvec *lines)
{
    size_t skip = strlen(d->dir) + 1; /* paths relative to postgresql/<NAME>/ */
    for (size_t i = 0; i < d->nfiles; i++) {
        const struct pg_file *f = &d->files[i];
        if (*f->t->columns)
            strvec_pushf(lines, "\\copy %s (%s) FROM '%s'", f->t->qname, f->t->columns,
                         f->relpath + skip);
        else
            strvec_pushf(lines, "\\copy %s FROM '%s'", f->t->qname, f->relpath + skip);
    }
}

/* The createdb command of a database like the dumped one (owned). */
static char *createdb_command(const struct dump *d)
{
    const struct pg_plan *p = &d->plan;
    char *icu = p->icu_locale != NULL && strcmp(p->locale_provider, "i") == 0
                    ? xasprintf(" --locale-provider=icu --icu-locale=%s", p->icu_locale)
                    : xstrdup("");
    char *cmd = xasprintf("createdb -T template0 -E %s --lc-collate=%s --lc-ctype=%s%s NEWDB",
                          p->encoding, p->collate, p->ctype, icu);
    free(icu);
    return cmd;
}

static int write_load_script(struct dump *d)
{
    struct strvec lines = {0};
    strvec_pushf(&lines,
                 "-- stagecoach %s: loads [postgresql %s], database %s (PostgreSQL %s) as of "
                 "snapshot %s",
                 SC_VERSION, d->cfg->name, pg_database(d->cfg), d->server_version, d->snapshot);
    strvec_push(&lines, "-- Into a new, empty database, from the directory of this file:");
    char *createdb = createdb_command(d);
    strvec_pushf(&lines, "--   %s", createdb);
    free(createdb);
    strvec_push(&lines, "--   psql -X -v ON_ERROR_STOP=1 -d NEWDB -f load.sql");
    strvec_push(&lines, "\\set ON_ERROR_STOP on");
    strvec_pushf(&lines, "\\i %s", PG_PRE_DATA);
    add_copy_lines(d, &lines);
    for (size_t i = 0; i < d->plan.nseqs; i++) {
        const struct pg_sequence *s = &d->plan.seqs[i];
        char *lit = pg_literal(s->qname);
        strvec_pushf(&lines, "SELECT pg_catalog.setval(%s, %s, %s);", lit, s->last_value,
                     s->is_called ? "true" : "false");
        free(lit);
    }
    strvec_pushf(&lines, "\\i %s", PG_POST_DATA);
    char *path = xasprintf("%s/%s", d->dir, PG_LOAD);
    struct sink k;
    int rc = sink_open(&k, d->set, path, d->err);
    free(path);
    for (size_t i = 0; rc == 0 && i < lines.n; i++) {
        rc = sink_write(&k, lines.v[i], strlen(lines.v[i]), d->err);
        if (rc == 0)
            rc = sink_write(&k, "\n", 1, d->err);
        if (rc != 0)
            sink_abort(&k);
    }
    if (rc == 0)
        rc = sink_close(&k, d->err);
    strvec_free(&lines);
    return rc;
}

/* ---- the manifest entry ------------------------------------------------------------- */

static json_t *range_bound(const struct pg_table *t, size_t i)
{
    if (t->range_col == NULL || t->ranges.n <= 1 || i == 0 || i >= t->ranges.n)
        return json_null();
    return json_integer(t->ranges.lo[i]);
}

static json_t *describe_data(struct dump *d)
{
    json_t *data = json_array();
    size_t skip = strlen(d->dir) + 1;
    for (size_t i = 0; i < d->plan.ntables; i++) {
        const struct pg_table *t = &d->plan.tables[i];
        json_t *files = json_array();
        for (size_t k = 0; k < t->ranges.n; k++) {
            const struct pg_file *f = &d->files[t->first_file + k];
            json_array_append_new(files,
                                  json_pack("{s:s, s:I, s:o, s:o}", "file", f->relpath + skip,
                                            "rows", (json_int_t)f->rows, "from", range_bound(t, k),
                                            "to", range_bound(t, k + 1)));
        }
        json_t *o = json_pack("{s:s, s:s, s:O, s:s?, s:o}", "schema", t->schema, "table", t->name,
                              "columns", t->column_list, "order", t->order_what, "files", files);
        if (t->range_col != NULL)
            json_object_set_new(o, "range_key", json_string(t->range_col));
        json_array_append_new(data, o);
    }
    return data;
}

static void describe_warnings(struct dump *d)
{
    for (size_t i = 0; i < d->plan.physical.n; i++)
        source_warn(d->entry,
                    "%s has no primary key (nor a unique index over NOT NULL columns): its rows "
                    "are in physical order, which updates and VACUUM change",
                    d->plan.physical.v[i]);
    for (size_t i = 0; i < d->plan.unlogged_skipped.n; i++)
        source_warn(d->entry, "%s is unlogged: a standby cannot read its rows, none were dumped",
                    d->plan.unlogged_skipped.v[i]);
    if (d->plan.large_objects > 0)
        source_warn(d->entry,
                    "the database holds %lld large object%s: their contents are not dumped "
                    "(pre-data.sql makes them again, empty)",
                    d->plan.large_objects, d->plan.large_objects == 1 ? "" : "s");
    if (d->plan.ntables == 0)
        source_warn(d->entry, "the database holds no table to dump");
}

static void describe(struct dump *d)
{
    json_t *e = d->entry;
    const char *db = pg_database(d->cfg);
    json_object_set_new(e, "consistency", json_string("exported-snapshot"));
    char *method =
        xasprintf("schema by pg_dump %s (--snapshot, pre-data and post-data); rows by COPY over "
                  "libpq (in-process), %u connection%s sharing one exported snapshot "
                  "(REPEATABLE READ, READ ONLY), tables locked ACCESS SHARE",
                  d->pg_dump.version, d->threads, d->threads == 1 ? "" : "s");
    json_object_set_new(e, "method", json_string(method));
    free(method);
    json_object_set_new(e, "threads", json_integer(d->threads));
    json_object_set_new(e, "ranges", json_integer((json_int_t)d->nfiles));
    json_object_set_new(e, "server_version", json_string(d->server_version));
    json_object_set_new(e, "pg_dump_version", json_string(d->pg_dump.version));
    json_object_set_new(e, "snapshot", json_string(d->snapshot));
    json_object_set_new(e, "wal_lsn", d->lsn ? json_string(d->lsn) : json_null());
    json_object_set_new(e, "in_recovery", json_boolean(d->in_recovery));
    json_object_set_new(e, "database", json_string(db));
    json_object_set_new(e, "databases", json_pack("[s]", db));
    json_object_set_new(e, "encoding", json_string(d->plan.encoding));
    json_object_set_new(e, "collate", json_string(d->plan.collate));
    json_object_set_new(e, "ctype", json_string(d->plan.ctype));
    json_object_set_new(e, "locale_provider", json_string(d->plan.locale_provider));
    if (d->plan.icu_locale != NULL)
        json_object_set_new(e, "icu_locale", json_string(d->plan.icu_locale));
    char *pre = xasprintf("%s/%s", d->dir, PG_PRE_DATA),
         *post = xasprintf("%s/%s", d->dir, PG_POST_DATA);
    char *load = xasprintf("%s/%s", d->dir, PG_LOAD);
    json_object_set_new(e, "pre_data", json_string(pre));
    json_object_set_new(e, "post_data", json_string(post));
    json_object_set_new(e, "load_file", json_string(load));
    char *createdb = createdb_command(d);
    char *cmd = xasprintf("%s && cd %s && psql -X -v ON_ERROR_STOP=1 -d NEWDB -f %s", createdb,
                          d->dir, PG_LOAD);
    free(createdb);
    json_object_set_new(e, "load_command", json_string(cmd));
    free(cmd);
    free(pre);
    free(post);
    free(load);
    json_object_set_new(e, "data", describe_data(d));
    json_t *tables = json_object();
    for (size_t i = 0; i < d->plan.ntables; i++) {
        const struct pg_table *t = &d->plan.tables[i];
        json_t *schema = json_object_get(tables, t->schema);
        if (schema == NULL) {
            schema = json_object();
            json_object_set_new(tables, t->schema, schema);
        }
        json_object_set_new(schema, t->name, json_integer(t->rows));
    }
    json_object_set_new(e, "tables", tables);
    json_object_set_new(e, "rows_total", json_integer(d->rows_total));
    json_t *seqs = json_array();
    for (size_t i = 0; i < d->plan.nseqs; i++) {
        const struct pg_sequence *s = &d->plan.seqs[i];
        json_array_append_new(seqs,
                              json_pack("{s:s, s:s, s:s, s:b}", "name", s->label, "qname", s->qname,
                                        "last_value", s->last_value, "is_called", s->is_called));
    }
    json_object_set_new(e, "sequences", seqs);
    json_t *excluded = json_array();
    for (size_t i = 0; i < d->plan.excluded.n; i++)
        json_array_append_new(excluded, json_string(d->plan.excluded.v[i]));
    json_object_set_new(e, "excluded", excluded);
    json_object_set_new(e, "large_objects", json_integer(d->plan.large_objects));
    describe_warnings(d);
    if (json_object_get(e, "warnings") == NULL)
        json_object_set_new(e, "warnings", json_array());
}

/* ---- the operation ------------------------------------------------------------------ */

static void cleanup(struct dump *d)
{
    if (d->pool_ready) {
        pg_pool_stop(&d->pool);
        free((char *)d->pool.label);
    }
    for (size_t i = 0; i < d->nfiles; i++) {
        if (d->files[i].open)
            sink_abort(&d->files[i].sink);
        free(d->files[i].relpath);
    }
    free(d->files);
    if (d->post_open)
        sink_abort(&d->post);
    pg_passfile_remove(&d->passfile);
    pg_close(&d->main);
    pg_free_password(d->password);
    pg_tool_free(&d->pg_dump);
    pg_plan_free(&d->plan);
    free(d->server_version);
    free(d->snapshot);
    free(d->lsn);
    free(d->dir);
}

static int dump_all(struct dump *d)
{
    int rc = pg_check_files(d->cfg, d->err);
    if (rc == 0)
        rc = pg_read_password(d->cfg, &d->password, d->err);
    if (rc == 0)
        rc = pg_tool_find(d->cfg, "pg_dump", &d->pg_dump, d->err);
    if (rc == 0)
        rc = connect_main(d);
    if (rc == 0)
        rc = start_snapshot(d);
    if (rc == 0)
        rc = pg_plan_build(d->main, d->cfg, d->in_recovery, &d->plan, d->err);
    if (rc == 0 && sc_stop_requested)
        rc = interrupted(d);
    if (rc == 0)
        rc = lock_tables(d);
    if (rc == 0) {
        char *data = xasprintf("%s/%s/%s", d->set->tmpdir, d->dir, PG_DATA_DIR);
        rc = fs_mkdir_p(data, 0700, d->err);
        free(data);
    }
    if (rc == 0) {
        plan_files(d);
        rc = start_workers(d);
    }
    if (rc == 0)
        rc = dump_schema(d);
    if (rc == 0)
        rc = take_files(d);
    if (rc == 0) {
        d->post_open = false;
        rc = sink_close(&d->post, d->err);
    }
    if (rc == 0)
        rc = write_load_script(d);
    /* ends the snapshot and releases the locks */
    if (rc == 0)
        rc = pg_exec(d->main, d->cfg, "COMMIT", d->err);
    if (rc == 0 && sc_stop_requested)
        rc = interrupted(d);
    return rc;
}

static int pg_stage(const struct source_cfg *src, struct set *set, json_t *entry, sc_err *err)
{
    struct dump d = {.cfg = src, .set = set, .entry = entry, .err = err, .t0 = now_ms()};
    pg_settings_of(src, &d.st);
    atomic_init(&d.progress, 0);
    d.dir = xasprintf("postgresql/%s", src->name);
    int rc = dump_all(&d);
    if (rc == 0) {
        describe(&d);
        double secs = (double)(now_ms() - d.t0) / 1000.0;
        json_object_set_new(entry, "seconds", json_real(secs));
        log_info("postgresql %s: %lld rows in %zu tables (%zu files), snapshot %s at WAL %s, "
                 "%u connection%s, %.1f s",
                 src->name, d.rows_total, d.plan.ntables, d.nfiles, d.snapshot, d.lsn ? d.lsn : "-",
                 d.threads, d.threads == 1 ? "" : "s", secs);
    }
    cleanup(&d);
    return rc;
}

static void pg_plan_line(const struct source_cfg *s, FILE *out)
{
    char where[300];
    pg_describe_target(s, where, sizeof where);
    struct pg_settings st;
    pg_settings_of(s, &st);
    fprintf(out,
            "  postgresql %s: database %s on %s -> postgresql/%s/ (one exported snapshot: "
            "schema by pg_dump, rows by COPY over %u connection%s)\n",
            s->name, pg_database(s) ? pg_database(s) : "?", where, s->name, st.threads,
            st.threads == 1 ? "" : "s");
}

const struct source_ops source_postgresql = {
    .cfg = {.kind = "postgresql", .keys = pg_keys, .validate = pg_validate},
    .drill_target = TARGET_DATABASE,
    .db_name_max = PG_NAME_MAX,
    .plan = pg_plan_line,
    .stage = pg_stage,
    .restore = pg_restore,
    .discard = pg_discard,
    .doctor = pg_doctor,
    .secrets = pg_doctor_secrets,
};
