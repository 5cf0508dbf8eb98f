/* One run at a time: flock(2) on STAGING/lock, released when the process ends. */
#ifndef SC_LOCK_H
#define SC_LOCK_H

#include "err.h"

/* Take the lock without waiting; exit 8 when another process holds it.
 * Returns the descriptor through *fd (close it to release). */
int lock_take(const char *staging, int *fd, sc_err *err);
void lock_release(int fd);

#endif
