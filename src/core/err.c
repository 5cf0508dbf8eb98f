#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Put text into msg; a text too long for it keeps its start and its end
 * (where the reason is), with "..." between: a very long path must not hide
 * why it failed. */
static void store_elided(char *msg, size_t size, const char *text)
{
    size_t len = strlen(text);
    if (len < size) {
        memcpy(msg, text, len + 1);
        return;
    }
    size_t head = size / 2 - 2, tail = size - head - 4;
    memcpy(msg, text, head);
    memcpy(msg + head, "...", 3);
    memcpy(msg + head + 3, text + len - tail, tail);
    msg[size - 1] = '\0';
}

__attribute__((format(printf, 4, 0))) static int fail_v(sc_err *e, int code, const char *suffix,
                                                        const char *fmt, va_list ap)
{
    if (e == NULL || e->code != SC_OK)
        return e ? e->code : code;
    e->code = code;
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0) {
        snprintf(e->msg, sizeof e->msg, "(out of memory formatting an error)");
        return code;
    }
    if (suffix != NULL) {
        char *full = NULL;
        if (asprintf(&full, "%s: %s", text, suffix) >= 0) {
            free(text);
            text = full;
        }
    }
    store_elided(e->msg, sizeof e->msg, text);
    free(text);
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
    /* before anything else can change errno; strerror_r (GNU: returns the
     * text) because the MySQL source's worker threads fail through here
     * too, each into an sc_err of its own (nothing else here is shared) */
    char buf[128];
    const char *why = strerror_r(errno, buf, sizeof buf);
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
