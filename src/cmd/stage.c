/* stage: phase 1 only; prints the new set's path. */
#include <stdio.h>
#include <stdlib.h>

#include "../pipeline/plan.h"
#include "../pipeline/run.h"
#include "cmd.h"

static int cmd_stage(struct ctx *c, int argc, char **argv, sc_err *err)
{
    if (opts_parse(argc, argv, NULL, err) != 0)
        return err->code;
    if (c->dry_run) {
        plan_print(c, true, false, NULL);
        return 0;
    }
    char *id = NULL;
    int rc = run_stage(c, &id, err);
    if (rc == 0 && !c->json)
        printf("%s/sets/%s\n", c->cfg.staging.dir, id);
    free(id);
    return rc;
}

const struct command command_stage = {
    .name = "stage",
    .run = cmd_stage,
    .usage = "stage",
    .summary = "phase 1 only: stage every source into a new set; prints its path",
    .help = "Stages every configured source into a new set under [staging] dir, inside the\n"
            "maintenance-window hooks (before_stage, after_stage): SQLite through the\n"
            "Online Backup API, MySQL/MariaDB as one consistent dump, config paths as a\n"
            "tar archive; every file checksummed into MANIFEST.json and B2SUMS, the set\n"
            "published atomically. Nothing is shipped.",
    .options = NULL,
    .example = "stagecoach -c /etc/stagecoach/stagecoach.conf stage\n"
               "cd \"$(stagecoach stage)\" && b2sum -c B2SUMS",
    .needs_config = true,
};
