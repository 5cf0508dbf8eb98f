/* Run a program with an argv array (never a shell), with a bounded time,
 * a controlled environment, and captured output. */
#ifndef SC_SPAWN_H
#define SC_SPAWN_H

#include <stdbool.h>
#include <signal.h>
#include <stddef.h>
#include "err.h"

/* Called for each complete line of the child's stdout (without '\n'). */
typedef void (*spawn_line_fn)(void *ctx, const char *line, size_t len);
/* Called with the child's stdout as it arrives, byte for byte. Non-zero
 * stops the child (SIGINT, then SIGKILL after the grace period) and makes
 * spawn_run return -1; the callback records why in an sc_err of its own. */
typedef int (*spawn_data_fn)(void *ctx, const char *data, size_t len);

struct spawn_opts {
    char *const *argv;            /* argv[0] is the program: absolute path or looked up in PATH */
    char *const *env;             /* full environment for the child (NULL: inherit ours) */
    const char *cwd;              /* NULL: ours */
    long timeout_s;               /* 0: none. On expiry SIGINT, then SIGKILL after grace_s */
    long grace_s;                 /* 0: 10 s */
    spawn_line_fn on_stdout_line; /* NULL: collect stdout in the result */
    spawn_data_fn on_stdout_data; /* instead of lines: every byte, unbuffered (e.g. into a sink) */
    void *ctx;
    size_t max_stdout;       /* collect at most this many bytes (0: 64 MiB), then fail */
    int stdout_fd;           /* >= 0: child's stdout goes here instead (e.g. a file) */
    bool stderr_passthrough; /* also copy the child's stderr to ours as it arrives */
    bool ignore_stop;        /* run to the end (or timeout) even after a stop request:
                                e.g. the hook that restarts the service */
    int keep_fd;             /* > 2: reaches the child as its fd 3, the one fd of ours it
                                inherits (the run lock, held until the child is gone too);
                                0: none */
};

struct spawn_result {
    int exit_code; /* exit status, or 128+signal when killed by a signal */
    bool timed_out;
    bool interrupted; /* we were asked to stop (SIGINT/SIGTERM to us) */
    char *out;        /* collected stdout (NUL-terminated), owned */
    size_t out_len;
    char *err; /* the last 64 KiB of stderr (NUL-terminated), owned */
    size_t err_len;
};

/* Returns 0 when the child ran (whatever its exit code), or -1 with err set
 * (code given by the caller's `code`) when it could not be started. */
int spawn_run(const struct spawn_opts *o, struct spawn_result *r, int code, sc_err *err);
void spawn_result_free(struct spawn_result *r);

/* Set by the signal handler in main.c: a stop was requested. spawn_run passes
 * SIGINT on to the child and returns with r->interrupted. */
extern volatile sig_atomic_t sc_stop_requested;
/* Why: a signal (SIGINT/SIGTERM) or the whole run's [run] timeout (SIGALRM). */
enum { STOP_SIGNAL = 1, STOP_TIMEOUT = 2 };
/* Set by SIGHUP: continuous mode reloads the configuration between runs. */
extern volatile sig_atomic_t sc_reload_requested;

#endif
