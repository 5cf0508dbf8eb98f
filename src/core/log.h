/* Human output on stderr, optionally copied to syslog. Callers never pass
 * secrets here.
 *
 * A line is "[YYYY-MM-DD HH:MM:SS] LEVEL message" (local time, as TZ says;
 * LEVEL is ERROR, WARN, INFO or DEBUG). With syslog on, the same message
 * (without the time stamp: syslog adds its own) also goes to syslog(3) with
 * ident "stagecoach" and the matching priority (LOG_ERR, LOG_WARNING,
 * LOG_INFO, LOG_DEBUG). */
#ifndef SC_LOG_H
#define SC_LOG_H

#include <stdbool.h>

enum log_level { LOG_QUIET = 0, LOG_NORMAL = 1, LOG_VERBOSE = 2 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* True when stderr is a terminal and progress lines make sense. */
bool log_progress_enabled(void);

/* The syslog facility named "daemon", "user" or "local0".."local7", or -1. */
int log_facility_parse(const char *name);
/* Copy every message to syslog with this facility (a name for
 * log_facility_parse; NULL: daemon); on = false stops the copying. */
void log_syslog(bool on, const char *facility);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A progress line that overwrites itself on a TTY ("\r"); nothing otherwise.
 * A log line first clears it, so the two never share a line. Progress
 * never goes to syslog. */
void log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_progress_done(void);

#endif
