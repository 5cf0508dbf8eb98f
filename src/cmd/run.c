/* run: stage + ship + retention + a check when due; once, or every [run]
 * interval (--continuous, or [run] mode = continuous). */
#include <stdio.h>
#include <string.h>

#include "../pipeline/plan.h"
#include "../pipeline/run.h"
#include "cmd.h"

int cmd_run(struct ctx *c, int argc, char **argv, sc_err *err)
{
    bool continuous = strcmp(c->cfg.run.mode, "continuous") == 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--continuous") == 0)
            continuous = true;
        else if (strcmp(argv[i], "--once") == 0)
            continuous = false;
        else
            return sc_fail(err, SC_EUSAGE, "unknown option '%s' (run [--continuous|--once])",
                           argv[i]);
    }
    if (c->dry_run) {
        plan_print(c, true, true, NULL);
        plan_print_offsite(c);
        if (continuous)
            printf("then again every %lds (continuous mode)\n", c->cfg.run.interval_s);
        return 0;
    }
    return continuous ? run_continuously(c, err) : run_once(c, err);
}
