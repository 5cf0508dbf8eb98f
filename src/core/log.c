#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static enum log_level level = LOG_NORMAL;
static int progress_shown;

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

__attribute__((format(printf, 2, 0))) static void emit(const char *prefix, const char *fmt,
                                                       va_list ap)
{
    if (progress_shown)
        log_progress_done();
    fprintf(stderr, "stagecoach: %s", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

#define LOG_FN(name, min, prefix)                                                                  \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        if (level < (min))                                                                         \
            return;                                                                                \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        emit(prefix, fmt, ap);                                                                     \
        va_end(ap);                                                                                \
    }

/* Errors show even with -q: quiet silences chatter, never failures. */
LOG_FN(log_error, LOG_QUIET, "error: ")
LOG_FN(log_warn, LOG_NORMAL, "warning: ")
LOG_FN(log_info, LOG_NORMAL, "")
LOG_FN(log_debug, LOG_VERBOSE, "")

void log_progress(const char *fmt, ...)
{
    if (!log_progress_enabled())
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[2K", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    progress_shown = 1;
}

void log_progress_done(void)
{
    if (!progress_shown)
        return;
    progress_shown = 0;
    fputs("\r\033[2K", stderr);
    fflush(stderr);
}
