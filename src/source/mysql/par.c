/* Parallel reading: worker threads, one connection each, all inside the
 * one snapshot (mysql.c starts their transactions while the lock holds).
 *
 * The chunks of every table to read (key ranges, rows.c) form one
 * list in the order of the dump file. Workers take them in that order, each
 * writing its chunk's INSERTs into an unlinked 0600 spool file in the set's
 * tmpdir; the main thread takes them in the same order, copies each into the
 * dump (the sink: the only writer of the file and its hash) and closes it.
 * At most `window` chunks are handed out and not yet taken, which bounds the
 * disk the spools use. Workers never log, spawn or touch the sink; each chunk
 * has its own sc_err. The first failure cancels every worker (they check a
 * flag between rows) and is the one reported; signals are blocked in the
 * workers so that SIGINT/SIGTERM reach the main thread, which waits with a
 * timeout and watches sc_stop_requested. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../core/clock.h"
#include "../../core/spawn.h"
#include "../../core/thread.h"
#include "../../core/xalloc.h"
#include "mysql.h"

enum { JOB_WAITING, JOB_RUNNING, JOB_DONE, JOB_FAILED };

/* Open an unlinked spool file in tmpdir. */
static int spool_open(struct my_pool *p, size_t idx, int *fd, sc_err *err)
{
    char *path = xasprintf("%s/.mysql-chunk-%s-%zu", p->tmpdir, p->cfg->name, idx);
    *fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = 0;
    if (*fd < 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "mysql %s: cannot create %s", p->cfg->name, path);
    else
        unlink(path);
    free(path);
    return rc;
}

/* Read one chunk on conn into its spool, through o (the worker's buffer,
 * kept from chunk to chunk so that memory stays flat). */
static int run_job(struct my_pool *p, MYSQL *conn, struct my_out *o, struct my_job *job, size_t idx)
{
    struct my_table *t = job->table;
    int rc = spool_open(p, idx, &job->fd, &job->err);
    if (rc != 0)
        return rc;
    char *sql = my_chunk_select(&t->rows_plan, &t->chunks, job->chunk);
    char *label = my_qualified(t->db, t->name);
    my_out_reuse_fd(o, job->fd, &job->err);
    o->published = &job->published;
    struct my_rows_job j = {.cfg = p->cfg,
                            .data = conn,
                            .plan = &t->rows_plan,
                            .select_sql = sql,
                            .quiet = true,
                            .cancel = &p->cancel,
                            .label = label,
                            .max_insert = p->max_insert,
                            .out = o,
                            .err = &job->err};
    rc = my_rows_dump(&j);
    if (rc == 0)
        rc = my_out_flush(o);
    /* Let go of the table's metadata lock, as the single connection does. */
    if (rc == 0)
        rc = my_release_table(conn, p->cfg, label, &job->err);
    job->len = my_out_pos(o);
    job->rows = j.rows;
    job->max_stmt = j.max_stmt;
    o->published = NULL;
    free(label);
    free(sql);
    return rc;
}

static void *worker(void *arg)
{
    struct my_worker *wa = arg;
    struct my_pool *p = wa->pool;
    if (mysql_thread_init() != 0) {
        pthread_mutex_lock(&p->sync.mu);
        if (!p->failed) {
            p->failed = true;
            p->thread_failure = true;
        }
        atomic_store(&p->cancel, 1);
        pthread_cond_broadcast(&p->sync.done);
        pthread_mutex_unlock(&p->sync.mu);
        return NULL;
    }
    struct my_out o;
    my_out_init_fd(&o, -1, "a chunk spool", NULL);
    pthread_mutex_lock(&p->sync.mu);
    for (;;) {
        size_t idx;
        if (!pool_order_next(&p->sync, &p->order, p->njobs, &p->cancel, &idx))
            break;
        struct my_job *job = &p->jobs[idx];
        job->state = JOB_RUNNING;
        pthread_mutex_unlock(&p->sync.mu);
        int rc = run_job(p, wa->conn, &o, job, idx);
        pthread_mutex_lock(&p->sync.mu);
        job->state = rc == 0 ? JOB_DONE : JOB_FAILED;
        if (rc != 0 && !p->failed) {
            p->failed = true;
            p->failed_job = idx;
        }
        if (rc != 0)
            atomic_store(&p->cancel, 1);
        pthread_cond_broadcast(&p->sync.done);
        if (rc != 0)
            pthread_cond_broadcast(&p->sync.work);
    }
    pthread_mutex_unlock(&p->sync.mu);
    my_out_free(&o);
    mysql_thread_end();
    return NULL;
}

void my_pool_init(struct my_pool *p, const struct source_cfg *cfg, const char *tmpdir,
                  size_t max_insert)
{
    memset(p, 0, sizeof *p);
    p->cfg = cfg;
    p->tmpdir = tmpdir;
    p->max_insert = max_insert;
    atomic_init(&p->cancel, 0);
}

void my_pool_add_conn(struct my_pool *p, MYSQL *conn)
{
    if (p->nconns < MY_MAX_THREADS)
        p->conns[p->nconns++] = conn;
    else
        my_close(&conn);
}

void my_pool_add_table(struct my_pool *p, struct my_table *t)
{
    size_t n = t->chunks.n > 0 ? t->chunks.n : 1;
    p->jobs = xrealloc(p->jobs, (p->njobs + n) * sizeof *p->jobs);
    for (size_t i = 0; i < n; i++) {
        struct my_job *job = &p->jobs[p->njobs++];
        memset(job, 0, sizeof *job);
        job->table = t;
        job->chunk = i;
        job->fd = -1;
        atomic_init(&job->published, 0);
    }
}

int my_pool_start(struct my_pool *p, sc_err *err)
{
    if (pool_sync_init(&p->sync) != 0)
        return sc_fail(err, SC_ESOURCE, "mysql %s: cannot set up the worker threads", p->cfg->name);
    p->order.window = 2 * p->nconns;
    p->tids = xcalloc(p->nconns, sizeof *p->tids);
    p->args = xcalloc(p->nconns, sizeof *p->args);
    int rc = 0;
    for (size_t i = 0; i < p->nconns; i++) {
        struct my_worker *wa = &p->args[i];
        wa->pool = p;
        wa->conn = p->conns[i];
        /* Every signal goes to the main thread. */
        int e = thread_start_quiet(&p->tids[i], worker, wa);
        if (e != 0) {
            errno = e;
            rc = sc_fail_errno(err, SC_ESOURCE, "mysql %s: cannot start a worker thread",
                               p->cfg->name);
            break;
        }
        p->nthreads++;
    }
    return rc;
}

int my_pool_take(struct my_pool *p, struct my_table *t, struct my_out *out, long long *rows,
                 size_t *max_stmt, sc_err *err)
{
    size_t idx = p->order.taken;
    if (idx >= p->njobs || p->jobs[idx].table != t)
        return sc_fail(err, SC_ESOURCE, "mysql %s: internal error: chunks out of order",
                       p->cfg->name);
    struct my_job *job = &p->jobs[idx];
    /* Follow the chunk as its worker writes it: what is in the spool goes
     * into the dump (and its hash) while the rest is still being read. */
    uint64_t copied = 0;
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&p->sync.mu);
        uint64_t avail = atomic_load_explicit(&job->published, memory_order_acquire);
        while (job->state != JOB_DONE && !p->failed && !sc_stop_requested && avail == copied) {
            struct timespec ts;
            clock_deadline_in(&ts, job->state == JOB_RUNNING ? 2 : 100);
            pthread_cond_timedwait(&p->sync.done, &p->sync.mu, &ts);
            avail = atomic_load_explicit(&job->published, memory_order_acquire);
        }
        bool done = job->state == JOB_DONE, failed = p->failed;
        pthread_mutex_unlock(&p->sync.mu);
        if (sc_stop_requested)
            return sc_fail(err, SC_EINTR, "mysql %s: interrupted", p->cfg->name);
        if (failed) {
            /* the first failure, as its worker worded it */
            if (p->thread_failure)
                return sc_fail(err, SC_ESOURCE, "mysql %s: a worker thread could not start",
                               p->cfg->name);
            const sc_err *first = &p->jobs[p->failed_job].err;
            return sc_fail(err, first->code, "%s", first->msg);
        }
        if (done)
            avail = job->len;
        if (avail > copied) {
            rc = my_out_copy_from(out, job->fd, copied, avail - copied);
            if (rc != 0)
                return rc;
            copied = avail;
        }
        if (done)
            break;
    }
    close(job->fd);
    job->fd = -1;
    *rows += job->rows;
    if (job->max_stmt > *max_stmt)
        *max_stmt = job->max_stmt;
    pthread_mutex_lock(&p->sync.mu);
    p->order.taken++;
    pthread_cond_broadcast(&p->sync.work);
    pthread_mutex_unlock(&p->sync.mu);
    return rc;
}

void my_pool_stop(struct my_pool *p)
{
    pool_sync_cancel(&p->sync, &p->cancel);
    for (size_t i = 0; i < p->nthreads; i++)
        pthread_join(p->tids[i], NULL);
    p->nthreads = 0;
    for (size_t i = 0; i < p->njobs; i++)
        if (p->jobs[i].fd >= 0)
            close(p->jobs[i].fd);
    for (size_t i = 0; i < p->nconns; i++)
        my_close(&p->conns[i]);
    pool_sync_destroy(&p->sync);
    free(p->jobs);
    free(p->tids);
    free(p->args);
    p->jobs = NULL;
    p->tids = NULL;
    p->args = NULL;
    p->njobs = p->nconns = 0;
}
