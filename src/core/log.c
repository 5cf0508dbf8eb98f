#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_level level = LOG_NORMAL;
static int progress_shown;
static bool to_syslog;

void log_set_level(enum log_level l)
{
    level = l;
}

enum log_level log_get_level(void)
{
    return level;
}

bool log_progress_enabled(void)
{
    return level >= LOG_NORMAL && isatty(STDERR_FILENO);
}

int log_facility_parse(const char *name)
{
    static const struct {
        const char *name;
        int facility;
    } facilities[] = {
        {"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"local0", LOG_LOCAL0},
        {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
        {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},
        {"local7", LOG_LOCAL7},
    };
    for (size_t i = 0; name && i < sizeof facilities / sizeof facilities[0]; i++)
        if (strcmp(name, facilities[i].name) == 0)
            return facilities[i].facility;
    return -1;
}

void log_syslog(bool on, const char *facility)
{
    if (to_syslog)
        closelog();
    to_syslog = false;
    if (!on)
        return;
    int f = log_facility_parse(facility ? facility : "daemon");
    openlog("stagecoach", LOG_PID, f < 0 ? LOG_DAEMON : f);
    to_syslog = true;
}

/* "[2026-11-27 03:00:00] " in local time; empty if the clock fails. */
static void stamp(char *buf, size_t n)
{
    static bool tz_read;
    if (!tz_read) {
        tzset();
        tz_read = true;
    }
    time_t now = time(NULL);
    struct tm tm;
    buf[0] = '\0';
    if (localtime_r(&now, &tm) != NULL && strftime(buf, n, "[%Y-%m-%d %H:%M:%S] ", &tm) == 0)
        buf[0] = '\0';
}

/* The whole line is formatted first and written with one call, so that
 * another process writing to the same stderr cannot split it. */
__attribute__((format(printf, 3, 0))) static void emit(const char *name, int prio, const char *fmt,
                                                       va_list ap)
{
    char small[1024];
    char *msg = small;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if ((size_t)n >= sizeof small) {
        /* A long message keeps its reason: never cut it short. */
        msg = malloc((size_t)n + 1);
        if (msg == NULL || vsnprintf(msg, (size_t)n + 1, fmt, ap2) < 0) {
            free(msg);
            msg = small;
        }
    }
    va_end(ap2);
    char when[40];
    stamp(when, sizeof when);
    /* stderr's lock keeps "clear the progress line, write ours" together
     * when several threads log (and guards progress_shown). */
    flockfile(stderr);
    log_progress_done();
    fprintf(stderr, "%s%s %s\n", when, name, msg);
    fflush(stderr);
    funlockfile(stderr);
    if (to_syslog)
        syslog(prio, "%s", msg);
    if (msg != small)
        free(msg);
}

#define LOG_FN(fn, min, name, prio)                                                                \
    void fn(const char *fmt, ...)                                                                  \
    {                                                                                              \
        if (level < (min))                                                                         \
            return;                                                                                \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        emit(name, prio, fmt, ap);                                                                 \
        va_end(ap);                                                                                \
    }

/* Errors show even with -q: quiet silences chatter, never failures. */
LOG_FN(log_error, LOG_QUIET, "ERROR", LOG_ERR)
LOG_FN(log_warn, LOG_NORMAL, "WARN", LOG_WARNING)
LOG_FN(log_info, LOG_NORMAL, "INFO", LOG_INFO)
LOG_FN(log_debug, LOG_VERBOSE, "DEBUG", LOG_DEBUG)

void log_progress(const char *fmt, ...)
{
    if (!log_progress_enabled())
        return;
    va_list ap;
    va_start(ap, fmt);
    flockfile(stderr);
    fputs("\r\033[2K", stderr);
    vfprintf(stderr, fmt, ap);
    fflush(stderr);
    progress_shown = 1;
    funlockfile(stderr);
    va_end(ap);
}

void log_progress_done(void)
{
    flockfile(stderr); /* recursive: emit holds it already */
    if (progress_shown) {
        progress_shown = 0;
        fputs("\r\033[2K", stderr);
        fflush(stderr);
    }
    funlockfile(stderr);
}
