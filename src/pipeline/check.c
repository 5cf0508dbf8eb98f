#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/log.h"
#include "../core/state.h"
#include "../core/xalloc.h"
#include "../restic/restic.h"

char *check_subset_now(const char *configured, json_t *check_state, int *pos, int *n)
{
    *pos = *n = 0;
    if (configured == NULL)
        return NULL;
    int k, total;
    char tail;
    if (sscanf(configured, "%d/%d%c", &k, &total, &tail) != 2 || total < 1 || k < 1 || k > total)
        return xstrdup(configured); /* a percentage: as it is */
    json_t *rot = json_object_get(check_state, "rotation");
    json_int_t next = json_integer_value(json_object_get(rot, "next"));
    /* A rotation kept for another n does not apply: start again at k. */
    if (json_integer_value(json_object_get(rot, "n")) == total && next >= 1 && next <= total)
        k = (int)next;
    *pos = k;
    *n = total;
    return xasprintf("%d/%d", k, total);
}

void check_rotation_advance(json_t *check_state, int pos, int n)
{
    if (n < 1)
        return;
    json_object_set_new(check_state, "rotation",
                        json_pack("{s:i, s:i}", "n", n, "next", pos % n + 1));
}

long long check_next_due(long every_s, json_t *check_state)
{
    if (every_s <= 0)
        return -1;
    const char *status =
        json_string_value(json_object_get(json_object_get(check_state, "last"), "status"));
    long long ok = parse_utc(json_string_value(json_object_get(check_state, "last_success")));
    /* Never passed, or the last one failed: check again at the next chance. */
    if (ok < 0 || (status && strcmp(status, "success") != 0))
        return 0;
    return ok + every_s;
}

static json_t *due_json(long long due)
{
    if (due < 0)
        return json_null();
    char buf[32];
    format_utc(due, buf, sizeof buf);
    return json_string(buf);
}

/* Run restic check and record the outcome in state (already loaded). */
static int run_check(struct ctx *c, json_t *cs, const char *subset, json_t *out, sc_err *err)
{
    char started[32], finished[32];
    utc_timestamp(started, sizeof started);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct restic r;
    struct restic_check_result res = {0};
    int rc = restic_open_reported(&r, &c->cfg, c->report, err);
    if (rc == 0) {
        log_info("checking the repository%s%s", subset ? ", reading data subset " : "",
                 subset ? subset : "");
        rc = restic_check(&r, subset, &res, err);
    }
    restic_close(&r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    utc_timestamp(finished, sizeof finished);
    json_t *last = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:b}", "started", started, "finished",
                             finished, "status", rc == 0 ? "success" : "failure", "subset", subset,
                             "error", rc == 0 ? NULL : err->msg, "damaged", res.damaged);
    json_object_set(cs, "last", last);
    if (rc == 0)
        json_object_set_new(cs, "last_success", json_string(finished));
    json_object_update(out, last);
    json_decref(last);
    json_object_set_new(
        out, "duration_s",
        json_real((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9));
    if (rc == 0)
        log_info("repository check passed%s%s%s", subset ? " (data subset " : "",
                 subset ? subset : "", subset ? ")" : "");
    restic_check_result_free(&res);
    return rc;
}

int check_run(struct ctx *c, bool only_if_due, json_t **out, sc_err *err)
{
    *out = json_object();
    json_t *state;
    if (state_load(c->cfg.staging.dir, &state, err) != 0)
        return err->code;
    json_t *cs = state_section(state, "check");
    long long due = check_next_due(c->cfg.check.every_s, cs);
    long long now = (long long)time(NULL);
    if (only_if_due && (due < 0 || due > now)) {
        json_object_set_new(*out, "status", json_string("skipped"));
        json_object_set_new(*out, "next_due", due_json(due));
        log_debug("repository check not due (%s)", due < 0 ? "[check] every = 0" : "see status");
        json_decref(state);
        return 0;
    }
    int pos, n;
    char *subset = check_subset_now(c->cfg.check.read_data_subset, cs, &pos, &n);
    int rc = run_check(c, cs, subset, *out, err);
    if (rc == 0)
        check_rotation_advance(cs, pos, n);
    json_object_set_new(*out, "next_due", due_json(check_next_due(c->cfg.check.every_s, cs)));
    /* The outcome must be kept even when the check failed. */
    sc_err save_err = {0};
    if (state_save(c->cfg.staging.dir, state, &save_err) != 0) {
        log_error("cannot record the check: %s", save_err.msg);
        if (rc == 0)
            rc = sc_fail(err, save_err.code, "%s", save_err.msg);
    }
    free(subset);
    json_decref(state);
    return rc;
}
