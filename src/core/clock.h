/* Time: milliseconds of the monotonic clock for deadlines, timeouts and
 * progress (unaffected by changes to the wall clock), and the wall clock
 * in UTC for records. */
#ifndef SC_CLOCK_H
#define SC_CLOCK_H

#include <stddef.h>
#include <time.h>

long long now_ms(void);
/* The wall-clock time ms from now, as pthread_cond_timedwait takes it. */
void clock_deadline_in(struct timespec *ts, long ms);
/* Now in UTC as "2026-11-27T07:44:35Z" (buf: at least 21 bytes). */
void utc_timestamp(char *buf, size_t n);

#endif
