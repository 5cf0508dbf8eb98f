/* [mysql NAME]: a consistent logical dump of MySQL/MariaDB databases,
 * in-process over libmariadb (never mysqldump), written through the sink to
 * mysql/<NAME>/dump.sql in the set, loadable by the stock client.
 *
 * Consistency. Three connections:
 *   - metadata: lists, SHOW CREATE ..., column and key lookups;
 *   - data: REPEATABLE READ + START TRANSACTION WITH CONSISTENT SNAPSHOT;
 *     every row is read in that one snapshot, streamed with use_result
 *     (which ties up its connection, hence the separate metadata one);
 *   - lock (only when some selected table is not transactional: MyISAM,
 *     Aria, MEMORY, ...): BACKUP STAGE START + BLOCK_COMMIT on MariaDB >=
 *     10.4, else FLUSH TABLES WITH READ LOCK. While it holds, the data
 *     connection starts its snapshot and reads the non-transactional
 *     tables, into a spool file; then the lock is released and the
 *     transactional tables are read from the snapshot with nobody blocked.
 *     That is mydumper's scheme: all tables show one instant. Writers wait
 *     only while the non-transactional tables are read. When the account
 *     may not lock (no RELOAD) or the lock cannot be had within
 *     MY_LOCK_WAIT_TIMEOUT_S, those tables are read without it and each is
 *     named in the manifest's warnings.
 * After each table, ROLLBACK TO SAVEPOINT releases its metadata lock, so
 * DDL on tables already dumped is not held up (as mysqldump does).
 * The binlog position (and GTID) of the snapshot is recorded when binary
 * logging is on; MariaDB gives it without a lock (binlog_snapshot_*).
 *
 * The file: a header of session SETs, then per database CREATE DATABASE IF
 * NOT EXISTS, USE, sequences, tables (DROP/CREATE, rows, triggers), view
 * stand-ins, routines, events; then the real views of every database; then
 * a footer restoring the session. */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../core/clock.h"
#include "../../core/log.h"
#include "../../core/spawn.h"
#include "../../core/xalloc.h"
#include "../../stage/set.h"
#include "mysql.h"
#include "../source.h"

#define O(field) offsetof(struct source_cfg, field)

/* ---- keys and validation ------------------------------------------------ */

static const char *check_definer(const char *value)
{
    return strcmp(value, "keep") == 0 || strcmp(value, "strip") == 0 ? NULL
                                                                     : "expected keep or strip";
}

static const char *check_snapshot_lock(const char *value)
{
    return strcmp(value, "auto") == 0 || strcmp(value, "backup_stage") == 0 ||
                   strcmp(value, "ftwrl") == 0
               ? NULL
               : "expected auto, backup_stage or ftwrl";
}

static const char *check_yes_no(const char *value)
{
    return strcmp(value, "yes") == 0 || strcmp(value, "no") == 0 ? NULL : "expected yes or no";
}

static const char *check_pattern(const char *value)
{
    return strchr(value, '.') != NULL ? NULL : "expected a pattern database.table (e.g. app.*)";
}

static const struct cfg_key mysql_keys[] = {
    {"option_file", CFG_PATH, O(option_file), false, NULL},
    {"group", CFG_STR, O(group), false, NULL},
    {"host", CFG_STR, O(host), false, NULL},
    {"port", CFG_INT, O(port), false, NULL},
    {"socket", CFG_PATH, O(socket), false, NULL},
    {"user", CFG_STR, O(user), false, NULL},
    {"password_file", CFG_PATH, O(password_file), false, NULL},
    {"database", CFG_LIST, O(databases), false, NULL},
    {"include_tables", CFG_LIST, O(include_tables), false, check_pattern},
    {"exclude_tables", CFG_LIST, O(exclude_tables), false, check_pattern},
    {"ssl_ca", CFG_PATH, O(ssl_ca), false, NULL},
    {"ssl_cert", CFG_PATH, O(ssl_cert), false, NULL},
    {"ssl_key", CFG_PATH, O(ssl_key), false, NULL},
    {"ssl_verify", CFG_BOOL, O(ssl_verify), false, NULL},
    {"connect_timeout", CFG_DURATION, O(connect_timeout_s), false, NULL},
    {"read_timeout", CFG_DURATION, O(read_timeout_s), false, NULL},
    {"write_timeout", CFG_DURATION, O(write_timeout_s), false, NULL},
    {"definer", CFG_STR, O(definer), false, check_definer},
    {"max_insert_bytes", CFG_INT, O(max_insert_bytes), false, NULL},
    {"threads", CFG_INT, O(threads), false, NULL},
    {"snapshot_lock", CFG_STR, O(snapshot_lock), false, check_snapshot_lock},
    {"restore_binlog", CFG_STR, O(restore_binlog), false, check_yes_no},
    {NULL, 0, 0, false, NULL},
};

static int mysql_validate(const struct source_cfg *src, struct config_problems *probs,
                          const char *file)
{
    char section[128];
    snprintf(section, sizeof section, "mysql %s", src->name);
    int bad = 0;
    if (src->option_file == NULL && src->user == NULL) {
        config_problem(probs, file, src->line, section, "user",
                       "missing: set user (with password_file) or option_file");
        bad = 1;
    }
    if (src->group != NULL && src->option_file == NULL) {
        config_problem(probs, file, src->line, section, "group",
                       "only means something with option_file");
        bad = 1;
    }
    if (src->port > 65535) {
        config_problem(probs, file, src->line, section, "port", "must be at most 65535");
        bad = 1;
    }
    if ((src->ssl_cert == NULL) != (src->ssl_key == NULL)) {
        config_problem(probs, file, src->line, section, src->ssl_cert ? "ssl_key" : "ssl_cert",
                       "ssl_cert and ssl_key go together");
        bad = 1;
    }
    if (src->max_insert_bytes != 0 && (src->max_insert_bytes < MY_MIN_MAX_INSERT_BYTES ||
                                       src->max_insert_bytes > MY_MAX_MAX_INSERT_BYTES)) {
        config_problem(probs, file, src->line, section, "max_insert_bytes",
                       "must be between %ld and %ld", MY_MIN_MAX_INSERT_BYTES,
                       MY_MAX_MAX_INSERT_BYTES);
        bad = 1;
    }
    if (src->threads < 0 || src->threads > MY_MAX_THREADS) {
        config_problem(probs, file, src->line, section, "threads", "must be between 1 and %d",
                       MY_MAX_THREADS);
        bad = 1;
    }
    return bad;
}

/* ---- one dump ------------------------------------------------------------ */

enum lock_kind { LOCK_NONE, LOCK_BACKUP_STAGE, LOCK_FTWRL };

struct dump {
    const struct source_cfg *cfg;
    struct my_settings st;
    struct set *set;
    json_t *entry;
    sc_err *err;
    char *password;
    MYSQL *meta, *data, *lock;
    const char *server; /* version text, owned by the metadata connection */
    bool mariadb;
    struct my_plan plan;
    enum lock_kind lock_kind;
    long long lock_started_ms, lock_ms;
    size_t nontrans; /* selected tables that are not transactional */
    int spool_fd;
    struct my_out spool;
    char *relpath;
    struct sink sink;
    bool sink_open;
    struct my_out out;
    struct my_writer w;
    size_t max_stmt;
    long long rows_total;
    size_t ntables;
    unsigned threads;   /* connections that read rows: 1, or the pool's */
    bool want_parallel; /* the lock is (also) for the workers' snapshots */
    char *single_why;   /* why threads > 1 was not used (owned), or NULL */
    struct my_pool pool;
    size_t nchunks;
    json_t *sections; /* the load index: where each part of the file starts */
    uint64_t dump_bytes;
};

static int interrupted(struct dump *d)
{
    return sc_fail(d->err, SC_EINTR, "mysql %s: interrupted", d->cfg->name);
}

/* ---- the load index ------------------------------------------------------ */

/* A new part of the file starts here (docs/mysql.md, "The load index"):
 * "session" (the header's SETs), "ddl" (databases, sequences), "table" (one
 * table's DROP and CREATE), "rows" (one key range's INSERTs), "post"
 * (triggers, views, routines, events), "footer". A part that is empty
 * (nothing was written since the last one began) is replaced; one of the
 * same kind and database as the part before continues it. Only positions
 * in the dump file itself count: rows spooled first are marked when they
 * are copied in. */
static json_t *section(struct dump *d, const char *kind, const char *db, const char *table)
{
    json_int_t at = (json_int_t)my_out_pos(&d->out);
    size_t n = json_array_size(d->sections);
    json_t *last = n ? json_array_get(d->sections, n - 1) : NULL;
    if (last != NULL && json_integer_value(json_object_get(last, "at")) == at) {
        json_array_remove(d->sections, n - 1);
        last = --n ? json_array_get(d->sections, n - 1) : NULL;
    }
    const char *lkind = json_string_value(json_object_get(last, "kind"));
    const char *ldb = json_string_value(json_object_get(last, "db"));
    if (last != NULL && strcmp(kind, "rows") != 0 && strcmp(kind, "table") != 0 &&
        strcmp(lkind, kind) == 0 && (db == NULL) == (ldb == NULL) &&
        (db == NULL || strcmp(db, ldb) == 0))
        return last;
    json_t *sec = json_pack("{s:I, s:s}", "at", at, "kind", kind);
    if (db != NULL)
        json_object_set_new(sec, "db", json_string(db));
    if (table != NULL)
        json_object_set_new(sec, "table", json_string(table));
    json_array_append_new(d->sections, sec);
    return sec;
}

/* A rows part ends: the rows it holds, for progress. */
static void section_rows(json_t *sec, long long rows)
{
    json_object_set_new(sec, "rows", json_integer(rows));
}

/* Session settings every connection of a dump needs. wait_timeout: the
 * metadata connection idles while a big table streams. net_write_timeout:
 * how long the server waits for us when the staging disk stalls (60 s by
 * default, after which it drops a streaming query: tech-facts §9). */
static int session_setup(struct dump *d, MYSQL *m)
{
    char *sql = xasprintf("SET SESSION sql_mode = '', SESSION time_zone = '+00:00', "
                          "SESSION sql_quote_show_create = 1, SESSION wait_timeout = 2147483, "
                          "SESSION net_write_timeout = %u, SESSION net_read_timeout = %u",
                          d->st.write_s, d->st.write_s);
    int rc = my_exec(m, d->cfg, sql, d->err);
    free(sql);
    /* A server-wide max_statement_time must not cut a long SELECT. */
    if (rc == 0 && d->mariadb)
        rc = my_exec(m, d->cfg, "SET SESSION max_statement_time = 0", d->err);
    return rc;
}

static int connect_meta(struct dump *d)
{
    int rc = my_connect(d->cfg, d->password, "metadata", &d->meta, d->err);
    if (rc != 0)
        return rc;
    d->server = mysql_get_server_info(d->meta);
    d->mariadb = strstr(d->server, "MariaDB") != NULL;
    return session_setup(d, d->meta);
}

/* ---- the lock window ---------------------------------------------------- */

/* Give up the lock connection, naming why in the warnings. */
static void lock_unavailable(struct dump *d, const char *why)
{
    if (d->nontrans > 0) {
        source_warn(d->entry,
                    "could not lock the non-transactional tables (%s): they were read without a "
                    "lock, outside the snapshot",
                    why);
        log_warn("mysql %s: could not lock the non-transactional tables (%s)", d->cfg->name, why);
    }
    if (d->want_parallel) {
        free(d->single_why);
        d->single_why = xasprintf("connections can share one snapshot only under a lock (%s)", why);
        log_info("mysql %s: reading with one connection: %s", d->cfg->name, d->single_why);
    }
    my_close(&d->lock);
    d->lock_kind = LOCK_NONE;
}

/* One lock statement; a server error (no RELOAD, lock wait timeout) means
 * "no lock, warn", a connection error is fatal. */
static int lock_exec(struct dump *d, const char *sql, bool *refused)
{
    *refused = false;
    if (mysql_query(d->lock, sql) == 0)
        return 0;
    if (!my_server_error(d->lock))
        return my_fail(d->lock, d->cfg, d->err, "%s", sql);
    char why[600];
    snprintf(why, sizeof why, "%s: %s", sql, mysql_error(d->lock));
    lock_unavailable(d, why);
    *refused = true;
    return 0;
}

static bool lock_chosen(const struct dump *d, const char *kind)
{
    return d->cfg->snapshot_lock != NULL && strcmp(d->cfg->snapshot_lock, kind) == 0;
}

/* The lock of the snapshot window. BACKUP STAGE exists from MariaDB 10.4.1
 * and only waits for commits; FTWRL (MySQL, older MariaDB) also waits for
 * running queries while it blocks every writer. Both need RELOAD.
 * snapshot_lock = backup_stage never falls back to FTWRL (on a server
 * without BACKUP STAGE the lock is then refused: one connection, warnings);
 * ftwrl takes the MySQL path on MariaDB too. */
static bool use_backup_stage(const struct dump *d)
{
    if (lock_chosen(d, "ftwrl"))
        return false;
    return lock_chosen(d, "backup_stage") ||
           (d->mariadb && mysql_get_server_version(d->meta) >= 100401);
}

static int take_lock(struct dump *d, bool parallel)
{
    bool stages = use_backup_stage(d);
    int rc = my_connect(d->cfg, d->password, "lock", &d->lock, d->err);
    if (rc != 0)
        return rc;
    char *sql = xasprintf("SET SESSION lock_wait_timeout = %d", MY_LOCK_WAIT_TIMEOUT_S);
    rc = my_exec(d->lock, d->cfg, sql, d->err);
    free(sql);
    if (rc != 0)
        return rc;
    bool refused;
    if (stages) {
        d->lock_kind = LOCK_BACKUP_STAGE;
        rc = lock_exec(d, "BACKUP STAGE START", &refused);
        if (rc == 0 && !refused)
            rc = lock_exec(d, "BACKUP STAGE BLOCK_COMMIT", &refused);
    } else {
        d->lock_kind = LOCK_FTWRL;
        rc = lock_exec(d, "FLUSH TABLES WITH READ LOCK", &refused);
    }
    if (rc == 0 && d->lock != NULL) {
        d->lock_started_ms = now_ms();
        log_info("mysql %s: %s held while %u connection(s) start their snapshot and %zu "
                 "non-transactional table(s) are read",
                 d->cfg->name, stages ? "BACKUP STAGE BLOCK_COMMIT" : "FLUSH TABLES WITH READ LOCK",
                 parallel ? d->st.threads + 1 : 1, d->nontrans);
    }
    return rc;
}

static int release_lock(struct dump *d)
{
    if (d->lock == NULL)
        return 0;
    const char *sql = d->lock_kind == LOCK_BACKUP_STAGE ? "BACKUP STAGE END" : "UNLOCK TABLES";
    int rc = my_exec(d->lock, d->cfg, sql, d->err);
    d->lock_ms = now_ms() - d->lock_started_ms;
    /* Closing ends the lock too, whatever happened above. */
    my_close(&d->lock);
    return rc;
}

/* ---- the snapshot -------------------------------------------------------- */

static int start_snapshot(struct dump *d, MYSQL *m)
{
    int rc = my_exec(m, d->cfg, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", d->err);
    if (rc == 0)
        rc = my_exec(m, d->cfg, "START TRANSACTION WITH CONSISTENT SNAPSHOT", d->err);
    if (rc == 0)
        rc = my_exec(m, d->cfg, "SAVEPOINT stagecoach", d->err);
    return rc;
}

/* SHOW STATUS / SHOW MASTER STATUS rows into the binlog object. */
static int binlog_mariadb(struct dump *d, json_t *binlog)
{
    MYSQL_RES *res;
    if (my_query(d->data, d->cfg, "SHOW STATUS LIKE 'binlog_snapshot_%'", &res, d->err) != 0)
        return d->err->code;
    char *file = NULL, *pos = NULL;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        if (row[0] && row[1] && strcmp(row[0], "Binlog_snapshot_file") == 0)
            file = xstrdup(row[1]);
        else if (row[0] && row[1] && strcmp(row[0], "Binlog_snapshot_position") == 0)
            pos = xstrdup(row[1]);
    }
    mysql_free_result(res);
    int rc = 0;
    if (file != NULL && pos != NULL && *file != '\0') {
        json_object_set_new(binlog, "file", json_string(file));
        json_object_set_new(binlog, "position", json_integer(strtoll(pos, NULL, 10)));
        char *lit = my_string(d->data, file);
        char *sql = xasprintf("SELECT BINLOG_GTID_POS(%s, %lld)", lit, strtoll(pos, NULL, 10));
        char *gtid = NULL;
        rc = my_query_value(d->data, d->cfg, sql, &gtid, d->err);
        if (rc == 0)
            json_object_set_new(binlog, "gtid", json_string(gtid ? gtid : ""));
        free(gtid);
        free(sql);
        free(lit);
    }
    free(file);
    free(pos);
    return rc;
}

static int binlog_mysql(struct dump *d, json_t *binlog)
{
    /* MySQL has no snapshot position: SHOW MASTER STATUS is exact only
     * while FLUSH TABLES WITH READ LOCK holds. */
    if (d->lock == NULL || d->lock_kind != LOCK_FTWRL) {
        source_warn(d->entry, "binary log position not recorded: MySQL reports it exactly only "
                              "under FLUSH TABLES WITH READ LOCK");
        return 0;
    }
    MYSQL_RES *res;
    if (my_query(d->lock, d->cfg, "SHOW MASTER STATUS", &res, d->err) != 0)
        return d->err->code;
    MYSQL_ROW row = mysql_fetch_row(res);
    unsigned n = mysql_num_fields(res);
    if (row != NULL && row[0] && row[1]) {
        json_object_set_new(binlog, "file", json_string(row[0]));
        json_object_set_new(binlog, "position", json_integer(strtoll(row[1], NULL, 10)));
        if (n > 4 && row[4])
            json_object_set_new(binlog, "gtid", json_string(row[4]));
    }
    mysql_free_result(res);
    return 0;
}

static int record_binlog(struct dump *d)
{
    char *on = NULL;
    int rc = my_query_value(d->data, d->cfg, "SELECT @@log_bin", &on, d->err);
    bool logging = rc == 0 && on != NULL && strcmp(on, "1") == 0;
    free(on);
    if (rc != 0 || !logging)
        return rc;
    json_t *binlog = json_object();
    rc = d->mariadb ? binlog_mariadb(d, binlog) : binlog_mysql(d, binlog);
    if (rc == 0 && json_object_size(binlog) > 0)
        json_object_set_new(d->entry, "binlog", binlog);
    else
        json_decref(binlog);
    return rc;
}

/* ---- rows ---------------------------------------------------------------- */

/* Columns, order and key ranges of every table, before the snapshot (the
 * lock window stays short). */
static int plan_rows(struct dump *d)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < d->plan.ntables; i++) {
        struct my_table *t = &d->plan.tables[i];
        if (t->kind != MY_TABLE)
            continue;
        if (sc_stop_requested)
            return interrupted(d);
        rc = my_rows_plan(d->meta, d->cfg, t->db, t->name, &t->rows_plan, d->err);
        if (rc == 0)
            rc = my_chunks_of(d->meta, d->cfg, &t->rows_plan, &t->chunks, d->err);
        t->planned = rc == 0;
        d->nchunks += t->chunks.n;
    }
    return rc;
}

/* A table's rows on the data connection, chunk after chunk (the same
 * chunks as the workers read: the same bytes whatever `threads` is). */
static int dump_rows(struct dump *d, struct my_table *t, struct my_out *out)
{
    char *label = my_qualified(t->db, t->name);
    int rc = 0;
    t->rows = 0;
    for (size_t i = 0; rc == 0 && i < t->chunks.n; i++) {
        json_t *sec = out == &d->out ? section(d, "rows", t->db, t->name) : NULL;
        char *sql = my_chunk_select(&t->rows_plan, &t->chunks, i);
        struct my_rows_job j = {.cfg = d->cfg,
                                .data = d->data,
                                .plan = &t->rows_plan,
                                .select_sql = sql,
                                .label = label,
                                .max_insert = d->st.max_insert,
                                .out = out,
                                .max_stmt = d->max_stmt,
                                .err = d->err};
        rc = my_rows_dump(&j);
        t->rows += j.rows;
        d->max_stmt = j.max_stmt;
        if (sec != NULL)
            section_rows(sec, j.rows);
        free(sql);
    }
    /* Let go of the table's metadata lock: DDL on it may proceed now. */
    if (rc == 0)
        rc = my_release_table(d->data, d->cfg, label, d->err);
    free(label);
    return rc;
}

/* A table's rows from the workers, chunk by chunk in order. */
static int take_rows(struct dump *d, struct my_table *t, struct my_out *out)
{
    char *label = my_qualified(t->db, t->name);
    int rc = 0;
    t->rows = 0;
    for (size_t i = 0; rc == 0 && i < t->chunks.n; i++) {
        json_t *sec = section(d, "rows", t->db, t->name);
        long long before = t->rows;
        rc = my_pool_take(&d->pool, t, out, &t->rows, &d->max_stmt, d->err);
        section_rows(sec, t->rows - before);
        if (rc == 0 && log_progress_enabled())
            log_progress("mysql %s: %s: %lld rows", d->cfg->name, label, t->rows);
    }
    log_progress_done();
    free(label);
    return rc;
}

/* The worker connections, connected before the lock is taken. */
static int connect_workers(struct dump *d, MYSQL **conns)
{
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < d->st.threads; i++) {
        rc = my_connect(d->cfg, d->password, "worker", &conns[i], d->err);
        if (rc == 0)
            rc = session_setup(d, conns[i]);
    }
    return rc;
}

/* Hand the workers to the pool with every table still to read. */
static int start_workers(struct dump *d, MYSQL **conns)
{
    for (unsigned i = 0; i < d->st.threads; i++) {
        my_pool_add_conn(&d->pool, conns[i]);
        conns[i] = NULL;
    }
    for (size_t i = 0; i < d->plan.ndbs; i++) {
        const struct my_db *db = &d->plan.dbs[i];
        for (size_t k = db->first; k < db->first + db->n; k++) {
            struct my_table *t = &d->plan.tables[k];
            if (t->kind == MY_TABLE && !t->spooled)
                my_pool_add_table(&d->pool, t);
        }
    }
    d->threads = d->st.threads;
    return my_pool_start(&d->pool, d->err);
}

/* Read the non-transactional tables while the lock holds, into a spool
 * file (unlinked at once: nothing is left behind whatever happens). */
static int spool_nontransactional(struct dump *d)
{
    char *path = xasprintf("%s/.mysql-spool-%s", d->set->tmpdir, d->cfg->name);
    d->spool_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = 0;
    if (d->spool_fd < 0)
        rc = sc_fail_errno(d->err, SC_ESTAGING, "mysql %s: cannot create %s", d->cfg->name, path);
    else
        unlink(path);
    free(path);
    if (rc != 0)
        return rc;
    my_out_init_fd(&d->spool, d->spool_fd, "the spool of non-transactional tables", d->err);
    for (size_t i = 0; rc == 0 && i < d->plan.ntables; i++) {
        struct my_table *t = &d->plan.tables[i];
        if (t->kind != MY_TABLE || t->transactional)
            continue;
        if (sc_stop_requested)
            return interrupted(d);
        t->spool_off = my_out_pos(&d->spool);
        rc = dump_rows(d, t, &d->spool);
        t->spool_len = my_out_pos(&d->spool) - t->spool_off;
        t->spooled = true;
    }
    if (rc == 0)
        rc = my_out_flush(&d->spool);
    return rc;
}

static void warn_unlocked(struct dump *d)
{
    for (size_t i = 0; i < d->plan.ntables; i++) {
        const struct my_table *t = &d->plan.tables[i];
        if (t->kind != MY_TABLE || t->transactional)
            continue;
        char *q = my_qualified(t->db, t->name);
        source_warn(d->entry,
                    "%s (%s) is not transactional and was read without a lock: it may not be "
                    "consistent with the other tables",
                    q, t->engine);
        free(q);
    }
}

/* Open the snapshot, with the lock window around it when needed. */
static int snapshot(struct dump *d)
{
    for (size_t i = 0; i < d->plan.ntables; i++) {
        const struct my_table *t = &d->plan.tables[i];
        if (t->kind == MY_TABLE && !t->transactional)
            d->nontrans++;
        if (t->versioned) {
            char *q = my_qualified(t->db, t->name);
            source_warn(d->entry, "%s is system-versioned: only its current rows are dumped", q);
            free(q);
        }
    }
    d->threads = 1;
    bool parallel = d->st.threads > 1;
    int rc = plan_rows(d);
    /* One range in all: nothing to share out, no lock for it. */
    if (d->nchunks <= 1)
        parallel = false;
    /* FTWRL waits for running queries while it blocks every writer; the
     * default does not take it just to read faster (BACKUP STAGE
     * BLOCK_COMMIT only waits for commits). An explicit threads or
     * snapshot_lock = ftwrl does. */
    if (parallel && d->cfg->threads == 0 && !use_backup_stage(d) && !lock_chosen(d, "ftwrl")) {
        parallel = false;
        d->single_why = xstrdup("the shared snapshot would need FLUSH TABLES WITH READ LOCK on "
                                "this server; set threads to allow it");
    }
    MYSQL *conns[MY_MAX_THREADS] = {0};
    if (rc == 0)
        rc = my_connect(d->cfg, d->password, "data", &d->data, d->err);
    if (rc == 0)
        rc = session_setup(d, d->data);
    if (rc == 0 && parallel)
        rc = connect_workers(d, conns);
    d->want_parallel = parallel;
    if (rc == 0 && (d->nontrans > 0 || parallel))
        rc = take_lock(d, parallel);
    parallel = parallel && d->lock != NULL;
    if (rc == 0)
        rc = start_snapshot(d, d->data);
    /* Every worker's snapshot starts while no commit can happen: they all
     * see the same data as the data connection. */
    for (unsigned i = 0; rc == 0 && parallel && i < d->st.threads; i++)
        rc = start_snapshot(d, conns[i]);
    if (rc == 0)
        rc = record_binlog(d);
    if (rc == 0 && d->lock != NULL && d->nontrans > 0)
        rc = spool_nontransactional(d);
    int lrc = release_lock(d);
    if (rc == 0)
        rc = lrc;
    if (rc == 0 && d->nontrans > 0 && d->lock_kind == LOCK_NONE)
        warn_unlocked(d);
    if (rc == 0 && parallel)
        rc = start_workers(d, conns);
    for (unsigned i = 0; i < MY_MAX_THREADS; i++)
        my_close(&conns[i]);
    return rc;
}

/* ---- the file ------------------------------------------------------------ */

static int write_header(struct dump *d)
{
    return my_out_printf(&d->out,
                         "-- stagecoach %s dump of [mysql %s] (server %s)\n"
                         "-- Load with: mariadb < %s (as MANIFEST.json says)\n"
                         "\n"
                         "SET NAMES utf8mb4;\n"
                         "SET @OLD_TIME_ZONE=@@TIME_ZONE, TIME_ZONE='+00:00';\n"
                         "SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0;\n"
                         "SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0;\n"
                         "SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO';\n"
                         "SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0;\n",
                         SC_VERSION, d->cfg->name, d->server, MY_DUMP_FILE);
}

static int write_footer(struct dump *d)
{
    return my_out_puts(&d->out, "\n"
                                "SET TIME_ZONE=@OLD_TIME_ZONE;\n"
                                "SET SQL_MODE=@OLD_SQL_MODE;\n"
                                "SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS;\n"
                                "SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS;\n"
                                "SET SQL_NOTES=@OLD_SQL_NOTES;\n"
                                "-- stagecoach: dump complete\n");
}

static int write_table(struct dump *d, struct my_table *t)
{
    section(d, t->kind == MY_SEQUENCE ? "ddl" : "table", t->db,
            t->kind == MY_SEQUENCE ? NULL : t->name);
    int rc = my_write_table_ddl(&d->w, t);
    if (rc == 0 && t->kind == MY_SEQUENCE)
        return my_write_sequence_value(&d->w, d->data, t);
    if (rc == 0 && t->spooled) {
        section_rows(section(d, "rows", t->db, t->name), t->rows);
        rc = my_out_copy_from(&d->out, d->spool_fd, t->spool_off, t->spool_len);
    } else if (rc == 0 && d->threads > 1)
        rc = take_rows(d, t, &d->out);
    else if (rc == 0)
        rc = dump_rows(d, t, &d->out);
    section(d, "post", t->db, NULL);
    if (rc == 0)
        rc = my_write_triggers(&d->w, t);
    d->rows_total += t->rows;
    d->ntables++;
    return rc;
}

/* One database: sequences first (a DEFAULT NEXT VALUE FOR needs them),
 * then tables, view stand-ins, routines and events. */
static int write_db(struct dump *d, const struct my_db *db)
{
    section(d, "ddl", db->name, NULL);
    int rc = my_write_database(&d->w, db->name);
    if (rc == 0)
        rc = my_check_visibility(&d->w, db->name, d->mariadb);
    struct my_table *t = d->plan.tables + db->first;
    for (size_t i = 0; rc == 0 && i < db->n; i++)
        if (t[i].kind == MY_SEQUENCE)
            rc = write_table(d, &t[i]);
    for (size_t i = 0; rc == 0 && i < db->n; i++) {
        if (sc_stop_requested)
            return interrupted(d);
        if (t[i].kind == MY_TABLE)
            rc = write_table(d, &t[i]);
    }
    section(d, "post", db->name, NULL);
    for (size_t i = 0; rc == 0 && i < db->n; i++)
        if (t[i].kind == MY_VIEW)
            rc = my_write_view_standin(&d->w, &t[i]);
    if (rc == 0)
        rc = my_write_routines(&d->w, db->name);
    if (rc == 0)
        rc = my_write_events(&d->w, db->name);
    return rc;
}

/* The real views, after every table of every database exists. */
static int write_views(struct dump *d, const struct my_db *db)
{
    const struct my_table *t = d->plan.tables + db->first;
    bool any = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < db->n; i++) {
        if (t[i].kind != MY_VIEW)
            continue;
        if (!any) {
            section(d, "post", db->name, NULL);
            char *id = my_ident(db->name);
            rc = my_out_printf(&d->out, "\n--\n-- Views of %s\n--\n\nUSE %s;\n", id, id);
            free(id);
            if (rc == 0 && mysql_select_db(d->meta, db->name) != 0)
                rc = my_fail(d->meta, d->cfg, d->err, "USE %s", db->name);
            any = true;
        }
        if (rc == 0)
            rc = my_write_view(&d->w, &t[i]);
    }
    return rc;
}

static int write_dump(struct dump *d)
{
    d->relpath = xasprintf("mysql/%s/%s", d->cfg->name, MY_DUMP_FILE);
    if (sink_open(&d->sink, d->set, d->relpath, d->err) != 0)
        return d->err->code;
    d->sink_open = true;
    my_out_init_sink(&d->out, &d->sink, d->err);
    d->w = (struct my_writer){.cfg = d->cfg,
                              .meta = d->meta,
                              .out = &d->out,
                              .strip_definer = d->st.strip_definer,
                              .entry = d->entry,
                              .err = d->err};
    section(d, "session", NULL, NULL);
    int rc = write_header(d);
    for (size_t i = 0; rc == 0 && i < d->plan.ndbs; i++)
        rc = write_db(d, &d->plan.dbs[i]);
    for (size_t i = 0; rc == 0 && i < d->plan.ndbs; i++)
        rc = write_views(d, &d->plan.dbs[i]);
    section(d, "footer", NULL, NULL);
    if (rc == 0)
        rc = write_footer(d);
    d->dump_bytes = my_out_pos(&d->out);
    if (rc == 0)
        rc = my_out_flush(&d->out);
    if (rc == 0) {
        d->sink_open = false;
        rc = sink_close(&d->sink, d->err);
    }
    return rc;
}

/* ---- the manifest entry -------------------------------------------------- */

static const char *consistency_of(const struct dump *d)
{
    if (d->nontrans == 0 || d->lock_kind == LOCK_NONE)
        return "single-transaction";
    return d->lock_kind == LOCK_BACKUP_STAGE ? "single-transaction+backup-stage"
                                             : "single-transaction+ftwrl";
}

static char *load_command(const struct dump *d)
{
    /* The stock client refuses statements over its max_allowed_packet
     * (16 MiB); a dump with a bigger row says how much it needs. */
    if (d->max_stmt + 1024 > MY_CLIENT_DEFAULT_PACKET) {
        unsigned long mib = (unsigned long)(d->max_stmt / (1024UL * 1024UL)) + 2;
        return xasprintf("mariadb --max-allowed-packet=%luM < %s", mib, d->relpath);
    }
    return xasprintf("mariadb < %s", d->relpath);
}

static void describe(struct dump *d)
{
    json_t *e = d->entry;
    json_object_set_new(e, "consistency", json_string(consistency_of(d)));
    char *method =
        d->threads > 1
            ? xasprintf("logical SQL dump over libmariadb (in-process), %u connections sharing one "
                        "snapshot (started under %s)",
                        d->threads,
                        d->lock_kind == LOCK_BACKUP_STAGE ? "BACKUP STAGE BLOCK_COMMIT"
                                                          : "FLUSH TABLES WITH READ LOCK")
        : d->single_why != NULL
            ? xasprintf("logical SQL dump over libmariadb (in-process), one connection: %s",
                        d->single_why)
            : xstrdup("logical SQL dump over libmariadb (in-process), one connection");
    json_object_set_new(e, "method", json_string(method));
    free(method);
    json_object_set_new(e, "threads", json_integer(d->threads));
    json_object_set_new(e, "chunks", json_integer((json_int_t)d->nchunks));
    json_object_set_new(e, "server_version", json_string(d->server));
    const char *cipher = mysql_get_ssl_cipher(d->meta);
    json_object_set_new(e, "tls", cipher ? json_string(cipher) : json_false());
    json_object_set_new(e, "dump_file", json_string(d->relpath));
    char *cmd = load_command(d);
    json_object_set_new(e, "load_command", json_string(cmd));
    free(cmd);
    if (d->max_stmt + 1024 > MY_CLIENT_DEFAULT_PACKET)
        source_warn(e,
                    "the longest statement is %zu bytes: the server's max_allowed_packet must "
                    "be at least that to load it",
                    d->max_stmt);
    json_object_set_new(e, "largest_statement_bytes", json_integer((json_int_t)d->max_stmt));
    if (d->lock_kind != LOCK_NONE)
        json_object_set_new(e, "lock_seconds", json_real((double)d->lock_ms / 1000.0));
    json_t *dbs = json_array(), *tables = json_object();
    for (size_t i = 0; i < d->plan.ndbs; i++) {
        const struct my_db *db = &d->plan.dbs[i];
        json_array_append_new(dbs, json_string(db->name));
        json_t *counts = json_object();
        for (size_t k = db->first; k < db->first + db->n; k++)
            if (d->plan.tables[k].kind == MY_TABLE)
                json_object_set_new(counts, d->plan.tables[k].name,
                                    json_integer(d->plan.tables[k].rows));
        json_object_set_new(tables, db->name, counts);
    }
    json_object_set_new(e, "databases", dbs);
    json_object_set_new(e, "tables", tables);
    json_object_set_new(e, "rows_total", json_integer(d->rows_total));
    json_object_set_new(e, "load_index",
                        json_pack("{s:i, s:I, s:O}", "format", MY_LOAD_INDEX_FORMAT, "bytes",
                                  (json_int_t)d->dump_bytes, "sections", d->sections));
    json_object_set_new(e, "objects",
                        json_pack("{s:I, s:I, s:I, s:I}", "views", (json_int_t)d->w.views,
                                  "triggers", (json_int_t)d->w.triggers, "routines",
                                  (json_int_t)d->w.routines, "events", (json_int_t)d->w.events));
    if (d->plan.ndbs == 0)
        source_warn(e, "the server holds no database to dump (system schemas are skipped)");
}

static void cleanup(struct dump *d)
{
    my_pool_stop(&d->pool);
    free(d->single_why);
    if (d->sink_open)
        sink_abort(&d->sink);
    my_out_free(&d->out);
    my_out_free(&d->spool);
    if (d->spool_fd >= 0)
        close(d->spool_fd);
    my_close(&d->lock);
    my_close(&d->data);
    my_close(&d->meta);
    my_free_password(d->password);
    my_plan_free(&d->plan);
    free(d->relpath);
    json_decref(d->sections);
}

static int mysql_stage(const struct source_cfg *src, struct set *set, json_t *entry, sc_err *err)
{
    struct dump d = {.cfg = src,
                     .set = set,
                     .entry = entry,
                     .err = err,
                     .spool_fd = -1,
                     .sections = json_array()};
    my_settings_of(src, &d.st);
    my_pool_init(&d.pool, src, set->tmpdir, d.st.max_insert);
    long long t0 = now_ms();
    /* Before any thread: the client library's global state. */
    int rc =
        mysql_library_init(0, NULL, NULL) != 0
            ? sc_fail(err, SC_ESOURCE, "mysql %s: cannot initialise the client library", src->name)
            : 0;
    if (rc == 0)
        rc = my_check_files(src, err);
    if (rc == 0)
        rc = my_read_password(src, &d.password, err);
    if (rc == 0)
        rc = connect_meta(&d);
    if (rc == 0)
        rc = my_plan_build(d.meta, src, &d.plan, err);
    if (rc == 0)
        rc = snapshot(&d);
    if (rc == 0)
        rc = write_dump(&d);
    if (rc == 0 && sc_stop_requested)
        rc = interrupted(&d);
    if (rc == 0) {
        describe(&d);
        double secs = (double)(now_ms() - t0) / 1000.0;
        json_object_set_new(entry, "seconds", json_real(secs));
        log_info("mysql %s: %lld rows in %zu tables of %zu database(s), %s, %.1f s", src->name,
                 d.rows_total, d.ntables, d.plan.ndbs, consistency_of(&d), secs);
    }
    cleanup(&d);
    return rc;
}

const struct source_ops source_mysql = {
    .cfg = {.kind = "mysql", .keys = mysql_keys, .validate = mysql_validate},
    .drill_target = TARGET_DATABASE,
    .db_name_max = 64,
    .stage = mysql_stage,
    .restore = my_restore,
    .discard = my_discard,
    .doctor = my_doctor,
    .secrets = my_doctor_secrets,
};
