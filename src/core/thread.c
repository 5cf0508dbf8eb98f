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
