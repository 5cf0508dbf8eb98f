/* Threads that leave signals to the main thread. */
#ifndef SC_THREAD_H
#define SC_THREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* pthread_create with every signal blocked in the new thread: SIGINT,
 * SIGTERM and SIGALRM then always reach the main thread and interrupt what
 * it waits in (a read, a child, a lock). Returns pthread_create's result. */
int thread_start_quiet(pthread_t *tid, void *(*fn)(void *), void *arg);

/* The lock and the two conditions of a pool of worker threads (the MySQL
 * dump and load, the PostgreSQL dump and load): `work` wakes the workers (a
 * job is there, or they must stop), `done` wakes the thread that waits for
 * them. ready: initialised, so there is something to destroy. */
struct pool_sync {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    bool ready;
};
/* 0, or -1 when the lock or a condition could not be made (then nothing is
 * left to destroy). */
int pool_sync_init(struct pool_sync *s);
/* Under the lock: set *cancel and wake every worker, so each one sees it
 * when it next looks. Nothing when s was never initialised. */
void pool_sync_cancel(struct pool_sync *s, atomic_int *cancel);
void pool_sync_destroy(struct pool_sync *s);

/* Jobs handed out to the workers in order, at most `window` ahead of the
 * one that uses their results, in the same order (taken): that bounds what
 * waits in spools or memory. Every field under the pool's lock. */
struct pool_order {
    size_t next, taken, window;
};
/* In a worker, with s->mu held: wait until the next of njobs may be handed
 * out. false when *cancel is set or no job is left; else *idx is the job
 * the worker runs. */
bool pool_order_next(struct pool_sync *s, struct pool_order *o, size_t njobs,
                     const atomic_int *cancel, size_t *idx);

#endif
