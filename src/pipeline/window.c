#include "window.h"

#include "../core/hooks.h"
#include "../core/log.h"
#include "../core/spawn.h"
#include "ship.h"
#include "stage.h"

/* A hook's failure after an earlier failure is logged, not returned: the
 * first cause is the one the exit code and report describe. */
static int merge_hook_failure(int rc, int hook_rc, const sc_err *hook_err, sc_err *err)
{
    if (hook_rc == 0)
        return rc;
    if (rc == 0) {
        *err = *hook_err;
        return hook_rc;
    }
    log_error("%s", hook_err->msg);
    return rc;
}

int window_stage(struct ctx *c, char **set_id, sc_err *err)
{
    *set_id = NULL;
    struct hook_info info = {.command = c->command, .status = "running"};
    int rc = hook_run(&c->cfg, HOOK_BEFORE_STAGE, &info, err);
    if (rc == 0)
        rc = stage_new_set(c, set_id, err);
    info.set = *set_id;
    info.status = rc ? "failure" : "success";
    info.exit_code = rc;
    info.error = rc ? err->msg : NULL;
    sc_err herr = {0};
    return merge_hook_failure(rc, hook_run(&c->cfg, HOOK_AFTER_STAGE, &info, &herr), &herr, err);
}

int window_ship(struct ctx *c, const char *set_id, sc_err *err)
{
    struct hook_info info = {.command = c->command, .set = set_id, .status = "running"};
    int rc = hook_run(&c->cfg, HOOK_BEFORE_SHIP, &info, err);
    if (rc != 0)
        return rc;
    if (sc_stop_requested)
        return sc_fail(err, SC_EINTR, "interrupted before shipping");
    rc = ship_one(c, set_id, err);
    info.snapshot = c->snapshot[0] ? c->snapshot : NULL;
    info.status = rc ? "failure" : "success";
    info.exit_code = rc;
    info.error = rc ? err->msg : NULL;
    sc_err herr = {0};
    return merge_hook_failure(rc, hook_run(&c->cfg, HOOK_AFTER_SHIP, &info, &herr), &herr, err);
}

void window_final_hooks(struct ctx *c, const char *set_id, int rc, const sc_err *err)
{
    struct hook_info info = {.command = c->command,
                             .set = set_id,
                             .snapshot = c->snapshot[0] ? c->snapshot : NULL,
                             .status = rc ? "failure" : "success",
                             .exit_code = rc,
                             .error = rc ? err->msg : NULL};
    sc_err herr = {0};
    if (hook_run(&c->cfg, rc ? HOOK_ON_FAILURE : HOOK_ON_SUCCESS, &info, &herr) != 0)
        log_error("%s", herr.msg);
}
