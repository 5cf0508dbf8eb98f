/* Steps more than one command needs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/fs.h"
#include "../core/hooks.h"
#include "../core/lock.h"
#include "../core/log.h"
#include "../core/spawn.h"
#include "../core/state.h"
#include "../source/source.h"
#include "../stage/set.h"
#include "cmd.h"

int cmd_lock(struct ctx *c, int *fd, sc_err *err)
{
    if (fs_mkdir_p(c->cfg.staging.dir, 0700, err) != 0)
        return err->code;
    return lock_take(c->cfg.staging.dir, fd, err);
}

int cmd_parse_opts(int argc, char **argv, const struct cmd_opt *opts, sc_err *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const struct cmd_opt *o = NULL;
        const char *value = NULL;
        for (const struct cmd_opt *p = opts; p && p->name; p++) {
            size_t n = strlen(p->name);
            if (strncmp(a, "--", 2) == 0 && strncmp(a + 2, p->name, n) == 0 &&
                (a[2 + n] == '\0' || a[2 + n] == '=')) {
                o = p;
                value = a[2 + n] == '=' ? a + 3 + n : NULL;
            }
        }
        if (o == NULL)
            return sc_fail(err, SC_EUSAGE, "unknown option '%s' (see stagecoach --help)", a);
        if (value == NULL) {
            if (i + 1 >= argc)
                return sc_fail(err, SC_EUSAGE, "--%s needs a value", o->name);
            value = argv[++i];
        }
        *o->value = value;
    }
    return 0;
}

/* A configured hook, in the plan where it would run. */
static void print_hook(const struct config *cfg, enum hook_point p)
{
    if (cfg->hooks.cmd[p] == NULL)
        return;
    printf("  hook %s: %s (a failure %s)\n", hook_name(p), cfg->hooks.cmd[p],
           hook_policy_fails(cfg, p) ? "fails the run" : "only warns");
}

static void print_stage_plan(const struct config *cfg)
{
    printf("stage into %s/sets/<new id> (keep %ld local sets)\n", cfg->staging.dir,
           cfg->staging.keep);
    print_hook(cfg, HOOK_BEFORE_STAGE);
    for (size_t i = 0; i < cfg->nsources; i++) {
        const struct source_cfg *s = &cfg->sources[i];
        const struct source_ops *ops = source_of(s);
        if (ops->plan)
            ops->plan(s, stdout);
        else
            printf("  %s %s -> %s/%s\n", s->kind, s->name, s->kind, s->name);
    }
    if (cfg->staging.encrypt)
        printf("  every file encrypted (%s), stored as NAME.enc\n",
               cfg->staging.key_file ? "symmetric key_file" : "sealed to recipient");
    print_hook(cfg, HOOK_AFTER_STAGE);
}

static void print_ship_plan(const struct config *cfg, const char *which)
{
    printf("ship %s with restic (%s) to %s\n", which,
           cfg->restic.binary ? cfg->restic.binary : "restic",
           cfg->restic.repository_file ? cfg->restic.repository_file : "the configured repository");
    print_hook(cfg, HOOK_BEFORE_SHIP);
    printf("  tags: stagecoach");
    for (size_t i = 0; i < cfg->restic.tags.n; i++)
        printf(", %s", cfg->restic.tags.v[i]);
    printf(", set-<id>\n  then verify the snapshot (files, sizes, B2SUMS)\n");
    print_hook(cfg, HOOK_AFTER_SHIP);
}

/* --dry-run: say what would happen, touch nothing. ship_which: the set the
 * ship command would ship, or NULL for a run (the set it stages). */
void print_plan(struct ctx *c, bool stage, bool ship, const char *ship_which)
{
    const struct config *cfg = &c->cfg;
    printf("dry run: nothing is written\n");
    if (stage)
        print_stage_plan(cfg);
    if (ship)
        print_ship_plan(cfg, ship_which ? ship_which : "the new set");
    if (cfg->hooks.cmd[HOOK_ON_SUCCESS] != NULL || cfg->hooks.cmd[HOOK_ON_FAILURE] != NULL)
        printf("at the end\n");
    print_hook(cfg, HOOK_ON_SUCCESS);
    print_hook(cfg, HOOK_ON_FAILURE);
}

int prune_local_sets(struct ctx *c, sc_err *err)
{
    char **ids;
    size_t n;
    json_t *state;
    if (set_list(c->cfg.staging.dir, &ids, &n, err) != 0)
        return err->code;
    if (state_load(c->cfg.staging.dir, &state, err) != 0) {
        set_list_free(ids, n);
        return err->code;
    }
    size_t keep = (size_t)c->cfg.staging.keep;
    for (size_t i = 0; n > keep && i < n - keep; i++) {
        /* A set not shipped yet is the only copy of that backup: keep it. */
        if (state_set_snapshot(state, ids[i]) == NULL)
            continue;
        char *sets = path_join(c->cfg.staging.dir, "sets");
        char *dir = path_join(sets, ids[i]);
        log_info("removing local set %s (shipped, beyond keep = %zu)", ids[i], keep);
        if (fs_rm_rf(dir) != 0)
            log_warn("cannot remove %s", dir);
        free(dir);
        free(sets);
    }
    json_decref(state);
    set_list_free(ids, n);
    return 0;
}

void record_run(struct ctx *c, const char *command, const char *started, const char *set_id, int rc,
                const sc_err *err)
{
    sc_err e = {0};
    json_t *state;
    if (state_load(c->cfg.staging.dir, &state, &e) != 0) {
        log_warn("cannot record the run: %s", e.msg);
        return;
    }
    char finished[32];
    utc_timestamp(finished, sizeof finished);
    json_object_set_new(state, "last_run",
                        json_pack("{s:s, s:s, s:s, s:s, s:i, s:s?, s:s?}", "command", command,
                                  "started", started, "finished", finished, "status",
                                  rc == 0 ? "success" : "failure", "exit_code", rc, "error",
                                  rc ? err->msg : NULL, "set", set_id));
    if (rc == 0)
        json_object_set_new(state, "last_success", json_string(finished));
    if (state_save(c->cfg.staging.dir, state, &e) != 0)
        log_warn("cannot record the run: %s", e.msg);
    json_decref(state);
}

void utc_timestamp(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

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

int stage_in_window(struct ctx *c, char **set_id, sc_err *err)
{
    *set_id = NULL;
    struct hook_info info = {.command = c->command, .status = "running"};
    int rc = hook_run(&c->cfg, HOOK_BEFORE_STAGE, &info, err);
    if (rc == 0)
        rc = do_stage(c, set_id, err);
    info.set = *set_id;
    info.status = rc ? "failure" : "success";
    info.exit_code = rc;
    info.error = rc ? err->msg : NULL;
    sc_err herr = {0};
    return merge_hook_failure(rc, hook_run(&c->cfg, HOOK_AFTER_STAGE, &info, &herr), &herr, err);
}

int ship_with_hooks(struct ctx *c, const char *set_id, sc_err *err)
{
    struct hook_info info = {.command = c->command, .set = set_id, .status = "running"};
    int rc = hook_run(&c->cfg, HOOK_BEFORE_SHIP, &info, err);
    if (rc != 0)
        return rc;
    if (sc_stop_requested)
        return sc_fail(err, SC_EINTR, "interrupted before shipping");
    rc = do_ship(c, set_id, err);
    info.snapshot = c->snapshot[0] ? c->snapshot : NULL;
    info.status = rc ? "failure" : "success";
    info.exit_code = rc;
    info.error = rc ? err->msg : NULL;
    sc_err herr = {0};
    return merge_hook_failure(rc, hook_run(&c->cfg, HOOK_AFTER_SHIP, &info, &herr), &herr, err);
}

void run_final_hooks(struct ctx *c, const char *set_id, int rc, const sc_err *err)
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
