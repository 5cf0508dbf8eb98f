/* Threads that leave signals to the main thread. */
#ifndef SC_THREAD_H
#define SC_THREAD_H

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread: SIGINT,
 * SIGTERM and SIGALRM then always reach the main thread and interrupt what
 * it waits in (a read, a child, a lock). Returns pthread_create's result. */
int thread_start_quiet(pthread_t *tid, void *(*fn)(void *), void *arg);

#endif
