/* Time for deadlines, timeouts and progress: milliseconds of the monotonic
 * clock (unaffected by changes to the wall clock). */
#ifndef SC_CLOCK_H
#define SC_CLOCK_H

long long now_ms(void);

#endif
