/* Running restic: `restic [--cacert F] SUBCOMMAND ...` through spawn_run,
 * with our environment and a deadline, and the retries that make a backup
 * from cron survive what passes by itself:
 *
 * - A lock held by someone else (restic exit 11, or 0.14's "repository is
 *   already locked"): plain `restic unlock` first, which removes only stale
 *   locks (older than 30 minutes, or made on this host by a process that is
 *   gone), then wait and try again, within r->retry.lock_wait_s. Never
 *   `unlock --remove-all`: a live lock belongs to a running restic.
 * - A transient backend failure (connection refused or reset, timeouts,
 *   HTTP 5xx): up to r->retry.tries attempts with a growing pause.
 *
 * All attempts of one call share one deadline, the call's timeout, so a
 * retry never makes a call longer than [restic] timeout allows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/lock.h"
#include "../core/log.h"
#include "internal.h"

#define UNLOCK_TIMEOUT_S 120L

void rx_argv_start(const struct restic *r, struct strvec *argv, const char *subcommand)
{
    strvec_push(argv, r->binary);
    if (r->cfg->restic.cacert) {
        strvec_push(argv, "--cacert");
        strvec_push(argv, r->cfg->restic.cacert);
    }
    strvec_push(argv, subcommand);
}

char *rx_join(const char *first, char *const *rest, size_t n, char sep)
{
    size_t len = strlen(first) + 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(rest[i]) + 1;
    char *out = xmalloc(len);
    size_t o = strlen(first);
    memcpy(out, first, o);
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(rest[i]);
        out[o++] = sep;
        memcpy(out + o, rest[i], k);
        o += k;
    }
    out[o] = '\0';
    return out;
}

static void log_argv(const struct strvec *argv)
{
    if (log_get_level() < LOG_VERBOSE)
        return;
    char *line = rx_join(argv->v[0], argv->v + 1, argv->n - 1, ' ');
    log_debug("running %s", line); /* argv carries no secret by construction */
    free(line);
}

int rx_sleep_ms(long ms)
{
    long long end = now_ms() + ms;
    for (;;) {
        if (sc_stop_requested)
            return -1;
        long long left = end - now_ms();
        if (left <= 0)
            return 0;
        long slice = left < 100 ? (long)left : 100; /* notice a stop within 0.1 s */
        struct timespec ts = {.tv_sec = 0, .tv_nsec = slice * 1000000L};
        if (nanosleep(&ts, NULL) != 0 && errno != EINTR)
            return 0;
    }
}

/* One attempt with timeout_s. `total_s` is the call's whole timeout, for
 * the message. */
static int run_once(struct restic *r, const char *what, const struct strvec *argv,
                    struct spawn_opts *o, long total_s, struct spawn_result *res, sc_err *err)
{
    o->argv = argv->v;
    o->env = r->env.v;
    o->stdout_fd = -1;
    /* restic holds the run lock with us: if we are killed, the next run
     * waits for this restic (exit 8) instead of racing it. */
    int lock_fd = lock_held_fd();
    o->keep_fd = lock_fd > 2 ? lock_fd : 0;
    log_argv(argv);
    if (spawn_run(o, res, SC_ERESTIC, err) != 0) {
        spawn_result_free(res);
        return err->code ? err->code : SC_ERESTIC;
    }
    int rc = 0;
    if (res->interrupted)
        rc = sc_fail(err, SC_EINTR, "interrupted while restic %s was running", what);
    else if (res->timed_out) {
        /* restic 0.17+ retries a failing backend itself: say what failed */
        char *why = rx_retry_reason(res->err);
        rc = sc_fail(err, SC_ERESTIC, "restic %s timed out after %ld s%s%s", what, total_s,
                     why ? " while retrying a backend error: " : "", why ? why : "");
        free(why);
    }
    if (rc != 0)
        spawn_result_free(res);
    return rc;
}

/* `restic unlock`: removes stale locks only. Its result is only logged:
 * when it fails, waiting for the lock is all that is left anyway. */
static void unlock_stale(struct restic *r, long timeout_s)
{
    struct strvec argv = {0};
    rx_argv_start(r, &argv, "unlock");
    struct spawn_opts o = {.timeout_s = timeout_s, .on_stdout_line = rx_debug_line};
    struct spawn_result res;
    sc_err e = {0};
    if (run_once(r, "unlock", &argv, &o, timeout_s, &res, &e) != 0) {
        log_warn("restic unlock: %s", e.msg);
    } else {
        if (res.exit_code != 0) {
            sc_err why = {0};
            rx_fail_from("unlock", &res, &why);
            log_warn("%s", why.msg);
        }
        spawn_result_free(&res);
    }
    strvec_free(&argv);
}

/* Where one call stands in its retries. */
struct retry_state {
    long long deadline; /* monotonic ms; 0: no timeout */
    int transient;      /* transient failures so far */
    long lock_waited_ms;
    long lock_next_ms; /* the next pause while a lock is held */
};

static long remaining_s(const struct retry_state *st)
{
    if (st->deadline == 0)
        return 0;
    long long left = st->deadline - now_ms();
    return left <= 0 ? 1 : (long)((left + 999) / 1000); /* 0 would mean "none" */
}

/* What to do after a failed attempt. */
struct retry_plan {
    long pause_ms; /* -1: do not try again */
    bool unlock;   /* run `restic unlock` first (the lock may be stale) */
    char *why;     /* the warning to show when trying again (owned) */
};

/* A held lock: the first retry comes at once (after unlock: the lock may
 * have been stale), then pauses double up to lock_poll_max_ms, until the
 * lock budget is spent. */
static void plan_lock(struct restic *r, const char *what, const struct strvec *lines,
                      struct retry_state *st, struct retry_plan *p)
{
    long budget = r->retry.lock_wait_s * 1000;
    if (st->lock_waited_ms >= budget)
        return;
    long pause = st->lock_next_ms;
    if (pause > budget - st->lock_waited_ms)
        pause = budget - st->lock_waited_ms;
    st->lock_waited_ms += pause;
    st->lock_next_ms = st->lock_next_ms == 0 ? r->retry.lock_poll_ms : st->lock_next_ms * 2;
    if (st->lock_next_ms > r->retry.lock_poll_max_ms)
        st->lock_next_ms = r->retry.lock_poll_max_ms;
    char *holder = rx_lock_holder(lines);
    p->pause_ms = pause;
    p->unlock = true;
    char when[32] = "";
    if (pause > 0)
        snprintf(when, sizeof when, " in %ld s", (pause + 999) / 1000);
    p->why = xasprintf("restic %s: the repository is locked (%s); removing stale locks, trying "
                       "again%s",
                       what, holder ? holder : "no details", when);
    free(holder);
}

/* A transient backend failure: up to r->retry.tries attempts. */
static void plan_transient(struct restic *r, const char *what, const char *line,
                           struct retry_state *st, struct retry_plan *p)
{
    st->transient++;
    if (st->transient >= r->retry.tries)
        return;
    size_t i = (size_t)st->transient - 1;
    size_t nb = sizeof r->retry.backoff_ms / sizeof r->retry.backoff_ms[0];
    p->pause_ms = r->retry.backoff_ms[i < nb ? i : nb - 1];
    if (line && strncmp(line, "Fatal: ", 7) == 0)
        line += 7;
    char *safe = rx_redact(line ? line : "backend error");
    p->why = xasprintf("restic %s: %s; attempt %d of %d in %ld s", what, safe, st->transient + 1,
                       r->retry.tries, (p->pause_ms + 999) / 1000);
    free(safe);
}

/* Whether and when to try the failed call again. Never past the deadline:
 * a retry must not make a call longer than its timeout. */
static void plan_retry(struct restic *r, const char *what, const struct spawn_result *res,
                       struct retry_state *st, struct retry_plan *p)
{
    *p = (struct retry_plan){.pause_ms = -1};
    struct strvec lines = {0};
    rx_clean_lines(res->err, &lines);
    const char *line;
    enum rx_failure kind = rx_failure_kind(what, res->exit_code, &lines, &line);
    if (kind == RX_LOCKED)
        plan_lock(r, what, &lines, st, p);
    else if (kind == RX_BACKEND && rx_transient(&lines))
        plan_transient(r, what, line, st, p);
    strvec_free(&lines);
    if (p->pause_ms >= 0 && st->deadline != 0 && now_ms() + p->pause_ms >= st->deadline)
        p->pause_ms = -1;
}

int rx_run(struct restic *r, const char *what, const struct strvec *argv, struct spawn_opts *o,
           rx_reset_fn reset, struct spawn_result *res, sc_err *err)
{
    long total_s = o->timeout_s != 0 ? o->timeout_s : r->cfg->restic.timeout_s;
    struct retry_state st = {.deadline = total_s > 0 ? now_ms() + total_s * 1000 : 0};
    for (;;) {
        o->timeout_s = remaining_s(&st);
        int rc = run_once(r, what, argv, o, total_s, res, err);
        if (rc != 0 || res->exit_code == 0)
            return rc;
        struct retry_plan p;
        plan_retry(r, what, res, &st, &p);
        if (p.pause_ms < 0) {
            free(p.why);
            return 0; /* the caller classifies the last failure */
        }
        spawn_result_free(res);
        log_warn("%s", p.why);
        free(p.why);
        if (p.unlock) {
            long t = remaining_s(&st);
            unlock_stale(r, t > 0 && t < UNLOCK_TIMEOUT_S ? t : UNLOCK_TIMEOUT_S);
        }
        if (rx_sleep_ms(p.pause_ms) != 0)
            return sc_fail(err, SC_EINTR, "interrupted while waiting to retry restic %s", what);
        if (reset)
            reset(o->ctx);
    }
}

int rx_fail_from(const char *what, const struct spawn_result *res, sc_err *err)
{
    if (log_get_level() >= LOG_VERBOSE) {
        struct strvec lines = {0};
        rx_clean_lines(res->err, &lines);
        for (size_t i = 0; i < lines.n; i++) {
            char *safe = rx_redact(lines.v[i]);
            log_debug("restic: %s", safe);
            free(safe);
        }
        strvec_free(&lines);
    }
    return restic_classify(what, res->exit_code, res->err, err);
}

int rx_run_ok(struct restic *r, const char *what, const struct strvec *argv, struct spawn_opts *o,
              rx_reset_fn reset, struct spawn_result *res, sc_err *err)
{
    int rc = rx_run(r, what, argv, o, reset, res, err);
    if (rc == 0 && res->exit_code != 0) {
        rc = rx_fail_from(what, res, err);
        spawn_result_free(res);
    }
    return rc;
}

void rx_debug_line(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    if (len == 0 || log_get_level() < LOG_VERBOSE)
        return;
    /* restic hides a URL's password but not its user name (init prints
     * "created restic repository ... at rest:http://user:***@host/"). */
    char *copy = xstrndup(line, len);
    char *safe = rx_redact(copy);
    log_debug("restic: %s", safe);
    free(safe);
    free(copy);
}

json_t *rx_parse_json(const char *text, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(text, len, 0, &e);
    if (j == NULL) /* 0.14 prints 2^63 for seconds_remaining: read numbers as doubles */
        j = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &e);
    return j;
}

uint64_t rx_get_u64(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d > 0))
            return 0;
        return d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
    }
    return 0;
}

int rx_run_json_array(struct restic *r, const char *what, const struct strvec *argv, json_t **out,
                      sc_err *err)
{
    *out = NULL;
    struct spawn_opts o = {0};
    struct spawn_result res;
    int rc = rx_run_ok(r, what, argv, &o, NULL, &res, err);
    if (rc != 0)
        return rc;
    rc = rx_json_array(what, res.out, res.out_len, out, err);
    spawn_result_free(&res);
    return rc;
}

int rx_json_array(const char *what, const char *text, size_t len, json_t **out, sc_err *err)
{
    *out = NULL;
    json_t *j = rx_parse_json(text, len);
    if (!json_is_array(j)) {
        json_decref(j);
        return sc_fail(err, SC_ERESTIC, "restic %s printed no JSON array", what);
    }
    *out = j;
    return 0;
}

int rx_this_host(const struct restic *r, char *buf, size_t size, sc_err *err)
{
    if (r->cfg->restic.host) {
        snprintf(buf, size, "%s", r->cfg->restic.host);
        return 0;
    }
    if (gethostname(buf, size) != 0)
        return sc_fail_errno(err, SC_EFAIL, "cannot get the host name");
    buf[size - 1] = '\0';
    return 0;
}

char *rx_repo_location(const struct restic *r)
{
    if (r->cfg->restic.repository)
        return rx_redact(r->cfg->restic.repository);
    if (r->cfg->restic.repository_file)
        return xasprintf("the location in %s", r->cfg->restic.repository_file);
    return xstrdup("(no repository configured)");
}
