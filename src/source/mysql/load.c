/* Parallel restore of a dump that carries a load index (the manifest entry's
 * load_index, written by mysql.c: where the session header, each
 * database's and table's DDL, each key range's INSERTs, the objects and the
 * footer start in the file).
 *
 * The main thread walks the index in file order on the control connection:
 * the header's SETs run on every connection (so each sees the session the
 * stock client would: utf8mb4, UTC, no unique or foreign key checks), the
 * DDL runs at once, and every key range of rows becomes a job. `threads`
 * worker connections take the jobs in order, each range in transactions of
 * COMMIT_BYTES, so that ranges of one table, and different tables, load at
 * the same time. An InnoDB table's secondary keys are left out of its
 * CREATE TABLE and added by one ALTER TABLE after its last range is in
 * (a sorted build instead of row-by-row insertion, as myloader
 * --innodb-optimize-keys does), unless foreign keys involve the table.
 * Triggers, views, routines, events and the footer run last, on the control
 * connection, in the dump's order: nothing fires during the load and every
 * object sees all its tables.
 *
 * The first failure of any connection stops the load: the workers'
 * connections are killed on the server (KILL CONNECTION from the control
 * connection, so that no statement runs on after us, and then waited for
 * while the server rolls their transactions back), the threads joined, and
 * that failure is reported; the target keeps what was committed, as a
 * serial load that failed would. SIGINT/SIGTERM do the same (exit 130).
 * Workers never log; progress lines come from the main thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/clock.h"
#include "../../core/log.h"
#include "../../core/spawn.h"
#include "../../core/thread.h"
#include "../../core/xalloc.h"
#include "mysql.h"

/* A worker commits after this many bytes of INSERTs (and after each key
 * range): one commit per statement, as the stock client does, costs a log
 * flush every MiB. */
#define COMMIT_BYTES ((size_t)16 * 1024 * 1024)
/* The biggest table section the foreign key scan reads (a CREATE TABLE). */
#define TABLE_SECTION_MAX ((uint64_t)16 * 1024 * 1024)
#define WAIT_MS 250
/* How long a failed restore waits for the server to end its killed
 * connections (rolling back their open transactions). */
#define KILL_WAIT_MS 60000

enum part_kind { P_SESSION, P_DDL, P_TABLE, P_ROWS, P_POST, P_FOOTER };

static const char *const part_names[] = {"session", "ddl", "table", "rows", "post", "footer"};

/* One section of the index. */
struct part {
    enum part_kind kind;
    uint64_t off, len;
    const char *db, *table; /* borrowed from the index */
    struct table *t;        /* P_TABLE, P_ROWS */
};

struct table {
    const char *db, *name;
    char *alter;      /* its deferred secondary keys, or NULL */
    bool referenced;  /* a foreign key points at it: its keys stay */
    size_t pending;   /* key ranges queued or loading */
    bool closed;      /* every range of it is queued */
    bool keys_queued; /* the ALTER is a job */
};

enum job_kind { JOB_ROWS, JOB_KEYS };
struct job {
    enum job_kind kind;
    struct table *t;
    uint64_t off, len;
};

struct worker {
    struct pool *p;
    MYSQL *m;
    unsigned long id; /* the server's thread id, for KILL */
    char *db;         /* selected on m (owned) */
    size_t since_commit;
    bool in_trx;
    const struct job *job;
    pthread_t tid;
    bool started;
    sc_err err;
};

struct pool {
    struct my_loader *l;
    struct part *parts;
    size_t nparts;
    struct table *tables;
    size_t ntables;
    struct worker w[MY_MAX_THREADS];
    size_t nworkers;
    struct job *jobs;
    size_t njobs, next, running, rows_jobs_left, keys_running;
    bool walked; /* the main thread queued every range */
    struct pool_sync sync;
    atomic_int cancel;
    bool failed;
    sc_err first; /* the first failure of a worker */
    struct strvec session;
};

/* ---- the index ------------------------------------------------------------ */

static bool kind_of(const char *name, enum part_kind *k)
{
    for (size_t i = 0; name != NULL && i < sizeof part_names / sizeof part_names[0]; i++)
        if (strcmp(name, part_names[i]) == 0) {
            *k = (enum part_kind)i;
            return true;
        }
    return false;
}

/* Read and check the index against the file: NULL, or why it cannot be
 * used (the load is then serial). */
static const char *read_index(struct pool *p, json_t *index)
{
    struct my_loader *l = p->l;
    json_t *secs = json_object_get(index, "sections");
    if (!json_is_object(index))
        return "none";
    if (json_integer_value(json_object_get(index, "format")) != MY_LOAD_INDEX_FORMAT)
        return "an unknown format";
    if ((uint64_t)json_integer_value(json_object_get(index, "bytes")) != l->bytes)
        return "another size than the file";
    size_t n = json_array_size(secs);
    if (n == 0)
        return "no sections";
    p->parts = xcalloc(n, sizeof *p->parts);
    p->tables = xcalloc(n, sizeof *p->tables);
    struct table *cur = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(secs, i), *next = json_array_get(secs, i + 1);
        struct part *pt = &p->parts[i];
        json_int_t at = json_integer_value(json_object_get(s, "at"));
        json_int_t end =
            next ? json_integer_value(json_object_get(next, "at")) : (json_int_t)l->bytes;
        if (!kind_of(json_string_value(json_object_get(s, "kind")), &pt->kind) || at < 0 ||
            end < at || (uint64_t)end > l->bytes || (i == 0 && at != 0))
            return "a section out of order or of an unknown kind";
        pt->off = (uint64_t)at;
        pt->len = (uint64_t)(end - at);
        pt->db = json_string_value(json_object_get(s, "db"));
        pt->table = json_string_value(json_object_get(s, "table"));
        bool needs_db =
            pt->kind == P_DDL || pt->kind == P_TABLE || pt->kind == P_ROWS || pt->kind == P_POST;
        if (needs_db && pt->db == NULL)
            return "a section without its database";
        if (pt->kind == P_TABLE) {
            if (pt->table == NULL)
                return "a table section without its table";
            cur = &p->tables[p->ntables++];
            cur->db = pt->db;
            cur->name = pt->table;
        }
        if (pt->kind == P_ROWS &&
            (cur == NULL || pt->table == NULL || strcmp(cur->name, pt->table) != 0 ||
             strcmp(cur->db, pt->db) != 0))
            return "rows apart from their table";
        if ((pt->kind == P_SESSION) != (i == 0))
            return "no session header first";
        if (pt->kind == P_TABLE || pt->kind == P_ROWS)
            pt->t = cur;
        if (pt->kind != P_TABLE && pt->kind != P_ROWS)
            cur = NULL;
    }
    return NULL;
}

/* ---- foreign keys: which tables keep their keys ------------------------- */

struct fk_scan {
    struct pool *p;
    const char *db; /* of the table section */
};

static struct table *find_table(struct pool *p, const char *db, const char *name)
{
    for (size_t i = 0; i < p->ntables; i++)
        if (strcmp(p->tables[i].db, db) == 0 && strcmp(p->tables[i].name, name) == 0)
            return &p->tables[i];
    return NULL;
}

/* Mark every table a REFERENCES clause of this CREATE TABLE names: InnoDB
 * refuses a foreign key to columns without an index, even with
 * foreign_key_checks off, so a referenced table's keys must exist first. */
static int fk_statement(void *ctx, const char *sql, size_t len, long line)
{
    (void)len;
    (void)line;
    struct fk_scan *f = ctx;
    if (strncmp(sql, "CREATE TABLE ", 13) != 0)
        return 0;
    for (const char *r = strstr(sql, ") REFERENCES "); r != NULL;
         r = strstr(r + 1, ") REFERENCES ")) {
        size_t used = 0, used2 = 0;
        char *a = my_parse_ident(r + 13, &used), *b = NULL;
        if (a != NULL && r[13 + used] == '.')
            b = my_parse_ident(r + 13 + used + 1, &used2);
        struct table *t = a == NULL   ? NULL
                          : b != NULL ? find_table(f->p, a, b)
                                      : find_table(f->p, f->db, a);
        if (t != NULL)
            t->referenced = true;
        free(a);
        free(b);
    }
    return 0;
}

static int scan_foreign_keys(struct pool *p)
{
    struct my_loader *l = p->l;
    for (size_t i = 0; i < p->nparts; i++) {
        const struct part *pt = &p->parts[i];
        if (pt->kind != P_TABLE || pt->len > TABLE_SECTION_MAX)
            continue;
        struct fk_scan f = {.p = p, .db = pt->db};
        int rc = my_split_range(l->fd, l->path, l->cfg->name, pt->off, pt->len, fk_statement, &f,
                                l->err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- deferred keys ------------------------------------------------------- */

/* A definition line of SHOW CREATE TABLE: 1 defer it, 0 keep it, -1 the
 * table keeps all its keys (a foreign key, a line not understood). */
static int classify_line(const char *d)
{
    if ((strncmp(d, "KEY ", 4) == 0 || strncmp(d, "UNIQUE KEY ", 11) == 0))
        return strstr(d, " USING HASH") == NULL ? 1 : 0;
    static const char *const kept[] = {"`",      "PRIMARY KEY ", "FULLTEXT KEY ", "SPATIAL KEY ",
                                       "CHECK ", "PERIOD FOR "};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (strncmp(d, kept[i], strlen(kept[i])) == 0)
            return 0;
    if (strncmp(d, "CONSTRAINT ", 11) == 0)
        return strstr(d, " FOREIGN KEY ") == NULL ? 0 : -1;
    return -1;
}

static void join(char **out, const char *sep, const char *piece)
{
    char *s = *out ? xasprintf("%s%s%s", *out, sep, piece) : xstrdup(piece);
    free(*out);
    *out = s;
}

bool my_defer_keys(const char *create, char **table_sql, char **alter_sql)
{
    *table_sql = *alter_sql = NULL;
    static const char head[] = "CREATE TABLE ";
    size_t used = 0;
    char *name = strncmp(create, head, sizeof head - 1) == 0
                     ? my_parse_ident(create + sizeof head - 1, &used)
                     : NULL;
    if (name == NULL)
        return false;
    free(name);
    const char *ident_end = create + sizeof head - 1 + used, *p = ident_end;
    if (strncmp(p, " (\n", 3) != 0)
        return false;
    p += 3;
    char *kept = NULL, *deferred = NULL;
    const char *options = NULL;
    bool ok = true;
    while (ok && *p != '\0') {
        if (*p == ')') {
            options = p;
            break;
        }
        const char *eol = strchr(p, '\n');
        if (eol == NULL || eol - p < 3 || strncmp(p, "  ", 2) != 0) {
            ok = false;
            break;
        }
        size_t n = (size_t)(eol - p) - 2;
        if (p[2 + n - 1] == ',')
            n--;
        char *def = xstrndup(p + 2, n);
        int c = classify_line(def);
        if (c < 0)
            ok = false;
        else if (c == 1)
            join(&deferred, ", ADD ", def);
        else
            join(&kept, ",\n  ", def);
        free(def);
        p = eol + 1;
    }
    /* Without a primary key, InnoDB clusters the rows by the first unique
     * NOT NULL key: adding that one later would rebuild the table. */
    ok = ok && options != NULL && kept != NULL && deferred != NULL &&
         strstr(kept, "PRIMARY KEY ") != NULL && strstr(options, "ENGINE=InnoDB") != NULL &&
         strstr(options, "PARTITION BY") == NULL &&
         strstr(options, "WITH SYSTEM VERSIONING") == NULL;
    if (ok) {
        int ilen = (int)(ident_end - create);
        *table_sql = xasprintf("%.*s (\n  %s\n%s", ilen, create, kept, options);
        *alter_sql = xasprintf("ALTER TABLE %.*s ADD %s", ilen - (int)(sizeof head - 1),
                               create + sizeof head - 1, deferred);
    }
    free(kept);
    free(deferred);
    return ok;
}

/* ---- the control connection's parts ------------------------------------- */

struct table_ctx {
    struct pool *p;
    struct table *t;
};

/* A table section: its CREATE TABLE without the keys to build later. */
static int table_statement(void *ctx, const char *sql, size_t len, long line)
{
    struct table_ctx *tc = ctx;
    char *create = NULL;
    if (!tc->t->referenced && strncmp(sql, "CREATE TABLE ", 13) == 0 &&
        my_defer_keys(sql, &create, &tc->t->alter))
        tc->p->l->deferred_keys++;
    int rc = create != NULL ? my_load_statement(tc->p->l, create, strlen(create), line)
                            : my_load_statement(tc->p->l, sql, len, line);
    free(create);
    return rc;
}

/* The header: run here, and kept to run on every worker. */
static int session_statement(void *ctx, const char *sql, size_t len, long line)
{
    struct pool *p = ctx;
    strvec_push(&p->session, sql);
    return my_load_statement(p->l, sql, len, line);
}

static int run_part(struct pool *p, const struct part *pt, my_stmt_fn fn, void *ctx)
{
    struct my_loader *l = p->l;
    return my_split_range(l->fd, l->path, l->cfg->name, pt->off, pt->len, fn, ctx, l->err);
}

/* USE the part's database (pointed at into), then its statements. */
static int run_post(struct pool *p, const struct part *pt)
{
    int rc = 0;
    if (pt->db != NULL) {
        char *id = my_ident(pt->db);
        char *use = xasprintf("USE %s", id);
        rc = my_load_statement(p->l, use, strlen(use), 0);
        free(use);
        free(id);
    }
    return rc == 0 ? run_part(p, pt, my_load_statement, p->l) : rc;
}

/* ---- workers -------------------------------------------------------------- */

static int worker_fail(struct worker *w, const char *what)
{
    return my_fail(w->m, w->p->l->cfg, &w->err, "%s", what);
}

static int use_db(struct worker *w, const char *db)
{
    const char *target = my_target_db(w->p->l, db);
    if (w->db != NULL && strcmp(w->db, target) == 0)
        return 0;
    if (mysql_select_db(w->m, target) != 0) {
        char *what = xasprintf("USE %s", target);
        int rc = worker_fail(w, what);
        free(what);
        return rc;
    }
    free(w->db);
    w->db = xstrdup(target);
    return 0;
}

static int query(struct worker *w, const char *sql, size_t len, const char *what)
{
    if (mysql_real_query(w->m, sql, (unsigned long)len) != 0)
        return worker_fail(w, what);
    if (mysql_field_count(w->m) > 0) {
        MYSQL_RES *res = mysql_store_result(w->m);
        if (res != NULL)
            mysql_free_result(res);
    }
    return mysql_errno(w->m) != 0 ? worker_fail(w, what) : 0;
}

static int commit(struct worker *w)
{
    w->since_commit = 0;
    if (!w->in_trx)
        return 0;
    w->in_trx = false;
    return query(w, "COMMIT", 6, "COMMIT");
}

static int rows_statement(void *ctx, const char *sql, size_t len, long line)
{
    struct worker *w = ctx;
    struct my_loader *l = w->p->l;
    const struct job *j = w->job;
    if (atomic_load_explicit(&w->p->cancel, memory_order_relaxed))
        return sc_fail(&w->err, SC_ESOURCE, "mysql %s: stopped (another connection failed)",
                       l->cfg->name);
    char *label = my_qualified(j->t->db, j->t->name);
    int rc = 0;
    if (strncmp(sql, "INSERT INTO ", 12) != 0)
        rc = sc_fail(&w->err, SC_ESOURCE,
                     "mysql %s: %s: the load index does not match the dump (byte %llu: %.60s)",
                     l->cfg->name, l->path, (unsigned long long)j->off, sql);
    if (rc == 0 && !w->in_trx) {
        rc = query(w, "START TRANSACTION", 17, "START TRANSACTION");
        w->in_trx = rc == 0;
    }
    if (rc == 0) {
        char *what = xasprintf("loading %s (line %ld of its rows from byte %llu of %s)", label,
                               line, (unsigned long long)j->off, l->path);
        rc = query(w, sql, len, what);
        free(what);
    }
    if (rc == 0) {
        atomic_fetch_add(&l->rows_done, (long long)mysql_affected_rows(w->m));
        w->since_commit += len;
        if (w->since_commit >= COMMIT_BYTES)
            rc = commit(w);
    }
    free(label);
    return rc;
}

static int run_job(struct worker *w, const struct job *j)
{
    struct my_loader *l = w->p->l;
    int rc = use_db(w, j->t->db);
    w->job = j;
    if (rc == 0 && j->kind == JOB_ROWS) {
        rc = my_split_range(l->fd, l->path, l->cfg->name, j->off, j->len, rows_statement, w,
                            &w->err);
        if (rc == 0)
            rc = commit(w);
    } else if (rc == 0) {
        char *label = my_qualified(j->t->db, j->t->name);
        char *what = xasprintf("building the secondary keys of %s", label);
        rc = query(w, j->t->alter, strlen(j->t->alter), what);
        free(what);
        free(label);
    }
    w->job = NULL;
    return rc;
}

/* Under the lock: the ALTER of a table whose ranges are all in. */
static void queue_keys_if_ready(struct pool *p, struct table *t)
{
    if (t->closed && t->pending == 0 && t->alter != NULL && !t->keys_queued) {
        t->keys_queued = true;
        p->jobs[p->njobs++] = (struct job){.kind = JOB_KEYS, .t = t};
        pthread_cond_broadcast(&p->sync.work);
    }
}

static bool finished(const struct pool *p)
{
    return p->walked && p->next == p->njobs && p->running == 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->p;
    pthread_mutex_lock(&p->sync.mu);
    for (;;) {
        while (!atomic_load(&p->cancel) && p->next == p->njobs && !finished(p))
            pthread_cond_wait(&p->sync.work, &p->sync.mu);
        if (atomic_load(&p->cancel) || finished(p))
            break;
        struct job *j = &p->jobs[p->next++];
        p->running++;
        if (j->kind == JOB_KEYS)
            p->keys_running++;
        pthread_mutex_unlock(&p->sync.mu);
        int rc = run_job(w, j);
        pthread_mutex_lock(&p->sync.mu);
        p->running--;
        if (j->kind == JOB_KEYS)
            p->keys_running--;
        if (rc != 0 && !p->failed) {
            p->failed = true;
            p->first = w->err;
        }
        if (rc != 0)
            atomic_store(&p->cancel, 1);
        if (rc == 0 && j->kind == JOB_ROWS) {
            j->t->pending--;
            p->rows_jobs_left--;
            queue_keys_if_ready(p, j->t);
        }
        pthread_cond_broadcast(&p->sync.work);
        pthread_cond_broadcast(&p->sync.done);
    }
    pthread_cond_broadcast(&p->sync.done);
    pthread_mutex_unlock(&p->sync.mu);
    return NULL;
}

/* ---- the pool ------------------------------------------------------------- */

static int connect_workers(struct pool *p, const char *password, unsigned threads)
{
    struct my_loader *l = p->l;
    for (unsigned i = 0; i < threads && i < MY_MAX_THREADS; i++) {
        struct worker *w = &p->w[p->nworkers];
        w->p = p;
        int rc = my_connect(l->cfg, password, "restore worker", &w->m, l->err);
        if (rc == 0)
            rc = my_restore_session(w->m, l->cfg, l->err);
        if (rc != 0)
            return rc;
        w->id = mysql_thread_id(w->m);
        p->nworkers++;
    }
    return 0;
}

/* The header's SETs on every worker, before any row. */
static int worker_sessions(struct pool *p)
{
    for (size_t i = 0; i < p->nworkers; i++)
        for (size_t k = 0; k < p->session.n; k++)
            if (query(&p->w[i], p->session.v[k], strlen(p->session.v[k]), p->session.v[k]) != 0)
                return sc_fail(p->l->err, p->w[i].err.code, "%s", p->w[i].err.msg);
    return 0;
}

static int start_workers(struct pool *p)
{
    if (pool_sync_init(&p->sync) != 0)
        return sc_fail(p->l->err, SC_ESOURCE, "mysql %s: cannot set up the restore threads",
                       p->l->cfg->name);
    for (size_t i = 0; i < p->nworkers; i++) {
        int e = thread_start_quiet(&p->w[i].tid, worker_main, &p->w[i]);
        if (e != 0) {
            errno = e;
            return sc_fail_errno(p->l->err, SC_ESOURCE, "mysql %s: cannot start a restore thread",
                                 p->l->cfg->name);
        }
        p->w[i].started = true;
    }
    return 0;
}

/* KILL CONNECTION returns before the server is done with a connection (it
 * rolls the open transaction back first): wait, up to KILL_WAIT_MS, until
 * the killed ones are gone from the process list, so that nothing of this
 * restore runs on after it returns. */
static void wait_killed(struct pool *p)
{
    MYSQL *m = p->l->m;
    if (m == NULL || p->nworkers == 0)
        return;
    char sql[64 + 21 * MY_MAX_THREADS];
    int n = snprintf(sql, sizeof sql,
                     "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (");
    for (size_t i = 0; i < p->nworkers && n > 0 && (size_t)n < sizeof sql; i++)
        n += snprintf(sql + n, sizeof sql - (size_t)n, "%s%lu", i ? "," : "", p->w[i].id);
    if (n <= 0 || (size_t)n + 2 > sizeof sql)
        return;
    memcpy(sql + n, ")", 2);
    for (long long until = now_ms() + KILL_WAIT_MS;;) {
        bool gone = false;
        if (mysql_query(m, sql) != 0)
            return; /* the server went away too: nothing runs there */
        MYSQL_RES *res = mysql_store_result(m);
        MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
        gone = row != NULL && row[0] != NULL && strcmp(row[0], "0") == 0;
        if (res != NULL)
            mysql_free_result(res);
        if (gone)
            return;
        if (now_ms() >= until) {
            log_warn("mysql %s: the server is still ending the restore's connections",
                     p->l->cfg->name);
            return;
        }
        struct timespec pause = {0, 50 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

/* Cancel: every worker's connection is killed on the server, so that no
 * statement of ours runs on (a long ALTER included), then joined. */
static void stop_workers(struct pool *p, bool kill)
{
    pool_sync_cancel(&p->sync, &p->cancel);
    for (size_t i = 0; kill && i < p->nworkers; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "KILL CONNECTION %lu", p->w[i].id);
        /* Whatever the answer (the connection may be gone already), the
         * join below waits for the thread. */
        if (p->l->m != NULL && p->w[i].m != NULL && mysql_query(p->l->m, sql) != 0)
            log_debug("mysql %s: %s: %s", p->l->cfg->name, sql, mysql_error(p->l->m));
    }
    for (size_t i = 0; i < p->nworkers; i++) {
        if (p->w[i].started)
            pthread_join(p->w[i].tid, NULL);
        p->w[i].started = false;
    }
    if (kill)
        wait_killed(p);
}

static void free_pool(struct pool *p)
{
    for (size_t i = 0; i < p->nworkers; i++) {
        my_close(&p->w[i].m);
        free(p->w[i].db);
    }
    pool_sync_destroy(&p->sync);
    for (size_t i = 0; i < p->ntables; i++)
        free(p->tables[i].alter);
    free(p->tables);
    free(p->parts);
    free(p->jobs);
    strvec_free(&p->session);
}

/* Under the lock: the walk has passed t's last range. */
static void close_table(struct pool *p, struct table *t)
{
    if (t == NULL)
        return;
    t->closed = true;
    queue_keys_if_ready(p, t);
}

/* A failure of a worker, or a stop request: the walk stops. */
static int check_stop(struct pool *p)
{
    pthread_mutex_lock(&p->sync.mu);
    bool failed = p->failed;
    pthread_mutex_unlock(&p->sync.mu);
    if (failed)
        return sc_fail(p->l->err, p->first.code, "%s", p->first.msg);
    if (sc_stop_requested)
        return sc_fail(p->l->err, SC_EINTR, "mysql %s: restore interrupted", p->l->cfg->name);
    return 0;
}

/* The index in file order: DDL now, rows to the workers, objects later. */
static int walk(struct pool *p)
{
    struct table *open = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < p->nparts; i++) {
        struct part *pt = &p->parts[i];
        if (open != NULL && pt->t != open) {
            pthread_mutex_lock(&p->sync.mu);
            close_table(p, open);
            pthread_mutex_unlock(&p->sync.mu);
            open = NULL;
        }
        switch (pt->kind) {
        case P_SESSION:
            rc = run_part(p, pt, session_statement, p);
            if (rc == 0)
                rc = worker_sessions(p);
            if (rc == 0)
                rc = start_workers(p);
            break;
        case P_DDL:
            rc = run_part(p, pt, my_load_statement, p->l);
            break;
        case P_TABLE: {
            struct table_ctx tc = {.p = p, .t = pt->t};
            rc = run_part(p, pt, table_statement, &tc);
            open = pt->t;
            break;
        }
        case P_ROWS:
            if (pt->len == 0)
                break;
            pthread_mutex_lock(&p->sync.mu);
            p->jobs[p->njobs++] =
                (struct job){.kind = JOB_ROWS, .t = pt->t, .off = pt->off, .len = pt->len};
            pt->t->pending++;
            p->rows_jobs_left++;
            pthread_cond_broadcast(&p->sync.work);
            pthread_mutex_unlock(&p->sync.mu);
            break;
        case P_POST:
        case P_FOOTER:
            break; /* after the rows */
        }
        if (rc == 0 && p->sync.ready)
            rc = check_stop(p);
    }
    if (p->sync.ready) {
        pthread_mutex_lock(&p->sync.mu);
        close_table(p, open);
        p->walked = true;
        pthread_cond_broadcast(&p->sync.work);
        pthread_mutex_unlock(&p->sync.mu);
    }
    return rc;
}

/* Until every job is done, a worker failed, or a stop was requested. */
static int wait_jobs(struct pool *p)
{
    bool rows_in = false;
    for (;;) {
        pthread_mutex_lock(&p->sync.mu);
        struct timespec ts;
        clock_deadline_in(&ts, WAIT_MS);
        if (!p->failed && !finished(p))
            pthread_cond_timedwait(&p->sync.done, &p->sync.mu, &ts);
        bool failed = p->failed, done = finished(p);
        size_t keys = p->rows_jobs_left == 0 ? p->keys_running : 0;
        bool all_rows = p->rows_jobs_left == 0;
        pthread_mutex_unlock(&p->sync.mu);
        if (failed || sc_stop_requested)
            return check_stop(p);
        /* phase times for the log (-v) and the bench's notes */
        if (all_rows && !rows_in)
            log_debug("mysql %s: every row in after %.1f s", p->l->cfg->name,
                      (double)(now_ms() - p->l->started_ms) / 1000.0);
        rows_in = rows_in || all_rows;
        if (done) {
            log_debug("mysql %s: secondary keys of %lld table(s) built after %.1f s",
                      p->l->cfg->name, p->l->deferred_keys,
                      (double)(now_ms() - p->l->started_ms) / 1000.0);
            return 0;
        }
        char phase[64];
        snprintf(phase, sizeof phase, "building the secondary keys of %zu table%s", keys,
                 keys == 1 ? "" : "s");
        my_restore_progress(p->l, keys > 0 ? phase : NULL);
    }
}

/* Triggers, views, routines, events and the footer, in the dump's order. */
static int run_objects(struct pool *p)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < p->nparts; i++) {
        const struct part *pt = &p->parts[i];
        if (pt->kind == P_POST || pt->kind == P_FOOTER)
            rc = run_post(p, pt);
    }
    return rc;
}

int my_load_parallel(struct my_loader *l, json_t *index, const char *password, unsigned threads)
{
    struct pool p = {.l = l};
    atomic_init(&p.cancel, 0);
    const char *why = read_index(&p, index);
    if (why != NULL) {
        if (index != NULL)
            log_warn("mysql %s: the load index of %s is not usable (%s): loading it with one "
                     "connection",
                     l->cfg->name, l->path, why);
        else
            log_info("mysql %s: %s has no load index (made by an older version): loading it "
                     "with one connection",
                     l->cfg->name, l->path);
        free_pool(&p);
        return MY_LOAD_NO_INDEX;
    }
    p.nparts = json_array_size(json_object_get(index, "sections"));
    p.jobs = xcalloc(p.nparts + p.ntables, sizeof *p.jobs);
    int rc = scan_foreign_keys(&p);
    if (rc == 0)
        rc = connect_workers(&p, password, threads);
    l->connections = (unsigned)p.nworkers;
    if (rc == 0)
        rc = walk(&p);
    if (rc == 0)
        rc = wait_jobs(&p);
    stop_workers(&p, rc != 0);
    if (rc == 0)
        rc = check_stop(&p);
    log_progress_done();
    if (rc == 0)
        rc = run_objects(&p);
    if (rc == 0)
        log_debug("mysql %s: objects and footer done after %.1f s", l->cfg->name,
                  (double)(now_ms() - l->started_ms) / 1000.0);
    free_pool(&p);
    return rc;
}
