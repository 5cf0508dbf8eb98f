#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 4, 0))) static int fail_v(sc_err *e, int code, const char *suffix,
                                                        const char *fmt, va_list ap)
{
    if (e == NULL || e->code != SC_OK)
        return e ? e->code : code;
    e->code = code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    if (suffix != NULL) {
        size_t used = strlen(e->msg);
        snprintf(e->msg + used, sizeof e->msg - used, ": %s", suffix);
    }
    return code;
}

int sc_fail(sc_err *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fail_v(e, code, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

int sc_fail_errno(sc_err *e, int code, const char *fmt, ...)
{
    const char *why = strerror(errno); /* before anything else can change errno */
    va_list ap;
    va_start(ap, fmt);
    int rc = fail_v(e, code, why, fmt, ap);
    va_end(ap);
    return rc;
}

const char *sc_exit_name(int code)
{
    switch (code) {
    case SC_OK:
        return "ok";
    case SC_EUSAGE:
        return "usage";
    case SC_ECONFIG:
        return "config";
    case SC_ESOURCE:
        return "source";
    case SC_ESTAGING:
        return "staging";
    case SC_ERESTIC:
        return "restic";
    case SC_EVERIFY:
        return "verify";
    case SC_ELOCKED:
        return "locked";
    case SC_EINTR:
        return "interrupted";
    default:
        return "failure";
    }
}
