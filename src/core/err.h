/* Error classification: every failure carries one exit code of design §6 and
 * one human message. The first failure recorded wins, so a cleanup step that
 * fails after the real cause does not hide it. */
#ifndef SC_ERR_H
#define SC_ERR_H

#include <stdarg.h>

enum sc_exit {
    SC_OK = 0,
    SC_EFAIL = 1,    /* failure of another kind */
    SC_EUSAGE = 2,   /* bad command line */
    SC_ECONFIG = 3,  /* configuration invalid */
    SC_ESOURCE = 4,  /* a source failed */
    SC_ESTAGING = 5, /* staging I/O failed */
    SC_ERESTIC = 6,  /* restic or the repository failed */
    SC_EVERIFY = 7,  /* verification failed */
    SC_ELOCKED = 8,  /* another run holds the lock */
    SC_EINTR = 130,  /* interrupted */
};

typedef struct sc_err {
    int code;
    char msg[1024];
} sc_err;

/* Record a failure (unless one is recorded already) and return its code. */
int sc_fail(sc_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Same, appending ": strerror(errno)". */
int sc_fail_errno(sc_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A short name for an exit code, for reports ("source", "staging", ...). */
const char *sc_exit_name(int code);

#endif
