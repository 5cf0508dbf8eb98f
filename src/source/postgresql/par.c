/* Worker threads, one libpq connection each: they take jobs (a range of a
 * table to read, a file to load) in order, at most `window` ahead of the
 * main thread, which waits for them in the same order (pg_pool_wait): so
 * the stage can close the data files' sinks, and record them in the
 * manifest, in a stable order whatever finishes first, and the spool of
 * finished-but-unclosed files stays bounded.
 *
 * Workers never log, spawn, or touch the manifest; each job has its own
 * sc_err. The first failure cancels every worker (a flag they look at
 * between rows and while they wait for the server, which cancels their
 * query) and is the one reported. Signals are blocked in the workers
 * (thread_start_quiet), so SIGINT/SIGTERM reach the main thread, which
 * waits with a timeout and looks at sc_stop_requested. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/clock.h"
#include "../../core/spawn.h"
#include "../../core/thread.h"
#include "postgresql.h"

enum { JOB_WAITING, JOB_RUNNING, JOB_DONE, JOB_FAILED };

struct pg_worker_arg {
    struct pg_pool *pool;
    PGconn *conn;
};

void pg_pool_init(struct pg_pool *p, const char *label, size_t njobs, size_t window, pg_job_fn run,
                  void *ctx)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->njobs = njobs;
    p->order.window = window > 0 ? window : njobs;
    p->run = run;
    p->ctx = ctx;
    p->state = xcalloc(njobs + 1, sizeof *p->state);
    p->errs = xcalloc(njobs + 1, sizeof *p->errs);
    atomic_init(&p->cancel, 0);
}

void pg_pool_add_conn(struct pg_pool *p, PGconn *conn)
{
    if (p->nconns < PG_MAX_THREADS)
        p->conns[p->nconns++] = conn;
    else
        PQfinish(conn);
}

static void *worker(void *arg)
{
    struct pg_worker_arg *wa = arg;
    struct pg_pool *p = wa->pool;
    pthread_mutex_lock(&p->sync.mu);
    for (;;) {
        size_t idx;
        if (!pool_order_next(&p->sync, &p->order, p->njobs, &p->cancel, &idx))
            break;
        p->state[idx] = JOB_RUNNING;
        pthread_mutex_unlock(&p->sync.mu);
        int rc = p->run(p->ctx, wa->conn, idx, &p->cancel, &p->errs[idx]);
        pthread_mutex_lock(&p->sync.mu);
        p->state[idx] = rc == 0 ? JOB_DONE : JOB_FAILED;
        if (rc != 0 && !p->failed) {
            p->failed = true;
            p->failed_job = idx;
        }
        if (rc != 0) {
            atomic_store(&p->cancel, 1);
            pthread_cond_broadcast(&p->sync.work);
        }
        pthread_cond_broadcast(&p->sync.done);
    }
    pthread_mutex_unlock(&p->sync.mu);
    return NULL;
}

int pg_pool_start(struct pg_pool *p, sc_err *err)
{
    if (pool_sync_init(&p->sync) != 0)
        return sc_fail(err, SC_ESOURCE, "%s: cannot set up the worker threads", p->label);
    struct pg_worker_arg *wa = xcalloc(p->nconns, sizeof *wa);
    p->args = wa;
    for (size_t i = 0; i < p->nconns; i++) {
        wa[i].pool = p;
        wa[i].conn = p->conns[i];
        int e = thread_start_quiet(&p->tids[i], worker, &wa[i]);
        if (e != 0) {
            errno = e;
            return sc_fail_errno(err, SC_ESOURCE, "%s: cannot start a worker thread", p->label);
        }
        p->nthreads++;
    }
    return 0;
}

int pg_pool_wait(struct pg_pool *p, size_t idx, sc_err *err)
{
    if (idx != p->order.taken || idx >= p->njobs)
        return sc_fail(err, SC_ESOURCE, "%s: internal error: jobs out of order", p->label);
    pthread_mutex_lock(&p->sync.mu);
    while (p->state[idx] != JOB_DONE && !p->failed && !sc_stop_requested) {
        struct timespec ts;
        clock_deadline_in(&ts, 100);
        pthread_cond_timedwait(&p->sync.done, &p->sync.mu, &ts);
        if (p->tick != NULL) {
            pthread_mutex_unlock(&p->sync.mu);
            p->tick(p->ctx);
            pthread_mutex_lock(&p->sync.mu);
        }
    }
    bool failed = p->failed;
    if (!failed && !sc_stop_requested) {
        p->order.taken++;
        pthread_cond_broadcast(&p->sync.work);
    }
    pthread_mutex_unlock(&p->sync.mu);
    if (failed) {
        const sc_err *first = &p->errs[p->failed_job];
        return sc_fail(err, first->code ? first->code : SC_ESOURCE, "%s",
                       first->msg[0] ? first->msg : "a worker failed");
    }
    if (sc_stop_requested)
        return sc_fail(err, SC_EINTR, "%s: interrupted", p->label);
    return 0;
}

void pg_pool_stop(struct pg_pool *p)
{
    pool_sync_cancel(&p->sync, &p->cancel);
    for (size_t i = 0; i < p->nthreads; i++)
        pthread_join(p->tids[i], NULL);
    p->nthreads = 0;
    for (size_t i = 0; i < p->nconns; i++) {
        PQfinish(p->conns[i]);
        p->conns[i] = NULL;
    }
    p->nconns = 0;
    pool_sync_destroy(&p->sync);
    free(p->args);
    free(p->state);
    free(p->errs);
    p->args = NULL;
    p->state = NULL;
    p->errs = NULL;
}
