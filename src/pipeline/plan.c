#include "plan.h"

#include <stdio.h>
#include <stdlib.h>

#include "../core/hooks.h"
#include "../core/state.h"
#include "../restic/restic.h"
#include "../source/source.h"
#include "check.h"

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
void plan_print(struct ctx *c, bool stage, bool ship, const char *ship_which)
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

void plan_print_offsite(struct ctx *c)
{
    struct strvec keep = {0};
    if (restic_retention_args(&c->cfg, &keep)) {
        printf("  then retention in the repository: restic forget --tag stagecoach");
        for (size_t i = 0; i < c->cfg.restic.tags.n; i++)
            printf(",%s", c->cfg.restic.tags.v[i]);
        printf(" --host %s --group-by host",
               c->cfg.restic.host ? c->cfg.restic.host : "(this host)");
        for (size_t i = 0; i < keep.n; i++)
            printf(" %s", keep.v[i]);
        printf(", then prune\n");
    } else {
        printf("  no retention in the repository (no keep_* in [retention])\n");
    }
    strvec_free(&keep);
    if (c->cfg.check.every_s > 0)
        printf("  restic check every %lds%s%s\n", c->cfg.check.every_s,
               c->cfg.check.read_data_subset ? ", reading data subset " : "",
               c->cfg.check.read_data_subset ? c->cfg.check.read_data_subset : "");
    if (c->cfg.run.metrics_file)
        printf("  metrics to %s\n", c->cfg.run.metrics_file);
}

/* --dry-run: which check would run, and whether it is due. */
void plan_print_check(struct ctx *c)
{
    sc_err e = {0};
    json_t *state = NULL;
    if (state_load(c->cfg.staging.dir, &state, &e) != 0) {
        printf("dry run: cannot read the state: %s\n", e.msg);
        return;
    }
    json_t *cs = json_object_get(state, "check");
    int pos, n;
    char *subset = check_subset_now(c->cfg.check.read_data_subset, cs, &pos, &n);
    printf("dry run: nothing is written\nrestic check%s%s\n", subset ? " --read-data-subset=" : "",
           subset ? subset : "");
    free(subset);
    json_decref(state);
}
