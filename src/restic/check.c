/* `restic check`: the repository's structure, and with a subset some of its
 * data read back and decrypted (tech-facts §2). check takes an exclusive
 * lock, so it waits (rx_run) while a backup of another host runs; its
 * output is text on every version we support (JSON only from 0.18). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "internal.h"

void restic_check_result_free(struct restic_check_result *c)
{
    free(c->problem);
    c->problem = NULL;
}

/* What check prints on stdout: phases and progress. On a terminal they
 * show as a progress line; at -v as log lines. */
static void check_line(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    if (len == 0)
        return;
    if (log_progress_enabled())
        log_progress("restic check: %.*s", (int)len, line);
    rx_debug_line(NULL, line, len);
}

/* The first line of a failed check that names a problem (restic prints
 * them on stderr before "Fatal: repository contains errors"); owned. */
char *rx_check_problem(const char *stderr_text)
{
    struct strvec lines = {0};
    rx_clean_lines(stderr_text, &lines);
    char *found = NULL;
    for (size_t i = 0; i < lines.n && found == NULL; i++) {
        const char *l = lines.v[i];
        if (strncmp(l, "Fatal: ", 7) == 0 || strncmp(l, "using temporary cache", 21) == 0)
            continue;
        /* "error for tree 1a2b3c4d:" announces the detail on the next line */
        size_t n = strlen(l);
        const char *next = i + 1 < lines.n ? lines.v[i + 1] : "";
        next += strspn(next, " \t");
        char *joined = n > 0 && l[n - 1] == ':' && *next && strncmp(next, "Fatal: ", 7) != 0
                           ? xasprintf("%s %s", l, next)
                           : xstrdup(l);
        found = rx_redact(joined);
        free(joined);
    }
    strvec_free(&lines);
    return found;
}

bool rx_check_damaged(const char *stderr_text)
{
    return stderr_text && strstr(stderr_text, "repository contains errors") != NULL;
}

int restic_check(struct restic *r, const char *subset, struct restic_check_result *out, sc_err *err)
{
    memset(out, 0, sizeof *out);
    struct strvec argv = {0};
    rx_argv_start(r, &argv, "check");
    if (subset)
        strvec_pushf(&argv, "--read-data-subset=%s", subset);
    struct spawn_opts o = {.on_stdout_line = check_line};
    struct spawn_result res;
    int rc = rx_run(r, "check", &argv, &o, NULL, &res, err);
    strvec_free(&argv);
    log_progress_done();
    if (rc != 0)
        return rc;
    if (res.exit_code == 0) {
        out->ok = true;
    } else if (rx_check_damaged(res.err)) {
        /* The repository answered, and what it holds is damaged. */
        out->damaged = true;
        out->problem = rx_check_problem(res.err);
        rc = sc_fail(err, SC_ERESTIC, "restic check found errors in the repository%s%s",
                     out->problem ? ": " : "", out->problem ? out->problem : "");
    } else {
        rc = rx_fail_from("check", &res, err);
    }
    spawn_result_free(&res);
    return rc;
}
