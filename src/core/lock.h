/* One run at a time: flock(2) on STAGING/lock, released when the process
 * and the restic it started have ended. */
#ifndef SC_LOCK_H
#define SC_LOCK_H

#include "err.h"

/* Take the lock without waiting; exit 8 when another process holds it.
 * Returns the descriptor through *fd (close it to release). */
int lock_take(const char *staging, int *fd, sc_err *err);
void lock_release(int fd);
/* The descriptor of the run lock this process holds, or -1. restic
 * children inherit it (src/restic/call.c), so that the lock stays held
 * while a restic started by a killed run still works. */
int lock_held_fd(void);

#endif
