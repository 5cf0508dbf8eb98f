/* ship [--set ID|latest]: phase 2 only, then retention and a check when due. */
#include "../pipeline/plan.h"
#include "../pipeline/run.h"
#include "cmd.h"

static int cmd_ship(struct ctx *c, int argc, char **argv, sc_err *err)
{
    const char *which = "latest";
    const struct opt opts[] = {{"set", &which}, {NULL, NULL}};
    if (opts_parse(argc, argv, opts, err) != 0)
        return err->code;
    if (c->dry_run) {
        plan_print(c, false, true, which);
        plan_print_offsite(c);
        return 0;
    }
    return run_ship(c, which, err);
}

const struct command command_ship = {
    .name = "ship",
    .run = cmd_ship,
    .usage = "ship [--set ID|latest]",
    .summary = "phase 2 only: back a set up with restic and verify the snapshot",
    .help = "Backs an existing set up with restic (tags, host), verifies the new snapshot\n"
            "against the set's manifest (every file and its size, B2SUMS read back), then\n"
            "applies retention and runs restic check when it is due.",
    .options = "  --set ID|latest   the set to ship (default: latest)",
    .example = "stagecoach ship\n"
               "stagecoach --json ship --set 20261126T030000Z",
    .needs_config = true,
};
