#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/lock.h"
#include "../core/log.h"
#include "../core/spawn.h"
#include "../source/source.h"
#include "../stage/set.h"
#include "check.h"
#include "record.h"
#include "retention.h"
#include "ship.h"
#include "window.h"

/* One run. The lock is held for the run only, so that in continuous mode
 * other commands (status, verify, a manual stage) can run between runs. */
int run_once(struct ctx *c, sc_err *err)
{
    int fd;
    if (ctx_lock(c, &fd, err) != 0)
        return err->code;
    if (c->cfg.run.timeout_s > 0)
        alarm((unsigned)c->cfg.run.timeout_s);
    char started[32];
    utc_timestamp(started, sizeof started);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *id = NULL;
    c->snapshot[0] = '\0';
    json_decref(c->shipped);
    c->shipped = json_array();
    /* Downtime, if hooks stop the service, is the stage phase only. */
    int rc = window_stage(c, &id, err);
    if (rc == 0)
        rc = window_ship(c, id, err);
    /* Sets an earlier run staged but could not ship (backend down). */
    if (rc == 0)
        rc = ship_pending(c, id, err);
    /* Retention only after a verified ship (design §2); a check when due. */
    if (rc == 0)
        rc = ship_after(c, err);
    alarm(0);
    if (sc_stop_requested == STOP_TIMEOUT) {
        /* Everything stopped as for a signal; say why instead. */
        err->code = 0;
        rc = sc_fail(err, SC_EFAIL, "the run took longer than [run] timeout = %lds; stopped",
                     c->cfg.run.timeout_s);
    }
    record_run(c, "run", started, id, rc, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    record_run_stats(c, id,
                     (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    record_metrics(c); /* after every run, success or failure */
    json_decref(c->shipped);
    c->shipped = NULL;
    window_final_hooks(c, id, rc, err);
    free(id);
    lock_release(fd);
    return rc;
}

/* A password taken from the environment at start (the POC's MYSQL_PASSWORD)
 * is gone from it now: the reloaded source keeps the one in memory. */
static void carry_over_passwords(struct config *old, struct config *fresh)
{
    for (size_t i = 0; i < fresh->nsources; i++)
        for (size_t j = 0; j < old->nsources; j++)
            if (fresh->sources[i].password == NULL && old->sources[j].password != NULL &&
                strcmp(fresh->sources[i].name, old->sources[j].name) == 0) {
                fresh->sources[i].password = old->sources[j].password;
                old->sources[j].password = NULL;
            }
}

/* SIGHUP: read the configuration again; a bad one is reported and the old
 * one kept, so a typo never stops the loop. */
static void reload_config(struct ctx *c)
{
    sc_reload_requested = 0;
    struct config fresh;
    struct config_problems probs = {0};
    sc_err e = {0};
    if (config_load(&fresh, c->config_path, &source_kinds, &probs, &e) != 0) {
        for (size_t i = 0; i < probs.msgs.n; i++)
            log_error("%s", probs.msgs.v[i]);
        log_error("SIGHUP: configuration not reloaded; keeping the previous one");
        config_free(&fresh);
    } else {
        carry_over_passwords(&c->cfg, &fresh);
        config_free(&c->cfg);
        c->cfg = fresh;
        /* A changed [run] syslog or syslog_facility takes effect now too. */
        log_syslog(c->cfg.run.syslog, c->cfg.run.syslog_facility);
        log_info("SIGHUP: configuration reloaded");
    }
    config_problems_free(&probs);
}

/* Sleep until the next run, waking for a stop or a reload request. */
static void wait_interval(long seconds)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += seconds;
    for (;;) {
        if (sc_stop_requested || sc_reload_requested)
            return;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
            return;
        struct timespec slice = {0, 200L * 1000 * 1000};
        nanosleep(&slice, NULL);
    }
}

/* Runs never overlap: one follows the other. A failed run is reported and
 * the loop goes on; a stop request ends it with 130. */
int run_continuously(struct ctx *c, sc_err *err)
{
    log_info("continuous mode: a run every %lds", c->cfg.run.interval_s);
    for (unsigned long n = 1;; n++) {
        sc_err e = {0};
        int rc = run_once(c, &e);
        if (sc_stop_requested == STOP_SIGNAL)
            return sc_fail(err, SC_EINTR, "stopped by a signal after run %lu", n);
        sc_stop_requested = 0; /* a run's timeout ends that run only */
        if (rc != 0)
            log_error("run %lu failed (exit %d): %s", n, rc, e.msg);
        wait_interval(c->cfg.run.interval_s);
        if (sc_stop_requested)
            return sc_fail(err, SC_EINTR, "stopped by a signal after run %lu", n);
        if (sc_reload_requested)
            reload_config(c);
    }
}

int run_stage(struct ctx *c, char **set_id, sc_err *err)
{
    *set_id = NULL;
    int fd;
    if (ctx_lock(c, &fd, err) != 0)
        return err->code;
    int rc = window_stage(c, set_id, err);
    window_final_hooks(c, *set_id, rc, err);
    lock_release(fd);
    return rc;
}

int run_ship(struct ctx *c, const char *which, sc_err *err)
{
    int fd;
    if (ctx_lock(c, &fd, err) != 0)
        return err->code;
    char *dir = NULL, *id = NULL;
    int rc = set_resolve(c->cfg.staging.dir, which, &dir, &id, err);
    json_decref(c->shipped);
    c->shipped = json_array();
    if (rc == 0)
        rc = window_ship(c, id, err);
    /* Retention only after a verified ship (design §2); a check when due. */
    if (rc == 0)
        rc = ship_after(c, err);
    if (c->report)
        json_object_set(c->report, "shipped", c->shipped);
    record_metrics(c);
    window_final_hooks(c, id, rc, err);
    json_decref(c->shipped);
    c->shipped = NULL;
    free(dir);
    free(id);
    lock_release(fd);
    return rc;
}

int run_check(struct ctx *c, json_t **result, sc_err *err)
{
    *result = NULL;
    int fd;
    if (ctx_lock(c, &fd, err) != 0)
        return err->code;
    int rc = check_run(c, false, result, err);
    record_metrics(c);
    lock_release(fd);
    return rc;
}

int run_forget(struct ctx *c, json_t **result, sc_err *err)
{
    *result = NULL;
    int fd = -1;
    if (!c->dry_run && ctx_lock(c, &fd, err) != 0)
        return err->code;
    int rc = c->dry_run ? 0 : retention_newest_verified(c, err);
    if (rc == 0)
        rc = retention_run(c, c->dry_run, result, err);
    if (!c->dry_run) {
        record_metrics(c);
        lock_release(fd);
    }
    return rc;
}
