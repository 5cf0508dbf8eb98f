#include "thread.h"

#include <signal.h>

int thread_start_quiet(pthread_t *tid, void *(*fn)(void *), void *arg)
{
    /* The new thread inherits the mask in force when it is created. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(tid, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int pool_sync_init(struct pool_sync *s)
{
    if (pthread_mutex_init(&s->mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&s->work, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        return -1;
    }
    if (pthread_cond_init(&s->done, NULL) != 0) {
        pthread_cond_destroy(&s->work);
        pthread_mutex_destroy(&s->mu);
        return -1;
    }
    s->ready = true;
    return 0;
}

void pool_sync_cancel(struct pool_sync *s, atomic_int *cancel)
{
    if (!s->ready)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(cancel, 1);
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
}

void pool_sync_destroy(struct pool_sync *s)
{
    if (!s->ready)
        return;
    pthread_cond_destroy(&s->done);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    s->ready = false;
}

bool pool_order_next(struct pool_sync *s, struct pool_order *o, size_t njobs,
                     const atomic_int *cancel, size_t *idx)
{
    while (!atomic_load(cancel) && o->next < njobs && o->next - o->taken >= o->window)
        pthread_cond_wait(&s->work, &s->mu);
    if (atomic_load(cancel) || o->next >= njobs)
        return false;
    *idx = o->next++;
    return true;
}
