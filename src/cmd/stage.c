/* stage: phase 1 only; prints the new set's path. */
#include <stdio.h>
#include <stdlib.h>

#include "../pipeline/plan.h"
#include "../pipeline/run.h"
#include "cmd.h"

int cmd_stage(struct ctx *c, int argc, char **argv, sc_err *err)
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
