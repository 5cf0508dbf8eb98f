/* run: stage + ship + retention + a check when due; once, or every [run]
 * interval (--continuous, or [run] mode = continuous). */
#include <stdio.h>
#include <string.h>

#include "../pipeline/plan.h"
#include "../pipeline/run.h"
#include "cmd.h"

static int cmd_run(struct ctx *c, int argc, char **argv, sc_err *err)
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

const struct command command_run = {
    .name = "run",
    .run = cmd_run,
    .usage = "run [--continuous|--once]",
    .summary = "stage + ship + retention + check when due: a whole backup",
    .help = "A whole backup: stage, ship and verify, ship any set an earlier run could not,\n"
            "retention after the verified ship, restic check when [check] every says it is\n"
            "due; state.json, metrics and the on_success/on_failure hooks at the end.",
    .options = "  --continuous      run again every [run] interval (SIGHUP reloads the config,\n"
               "                    SIGTERM ends the loop); also [run] mode = continuous\n"
               "  --once            one run, whatever [run] mode says",
    .example = "stagecoach run\n"
               "stagecoach --json run > /var/log/stagecoach-last.json",
    .needs_config = true,
};
