/* check: `restic check` now, with the configured subset rotation
 * (src/pipeline/check.h). */
#include <stdio.h>

#include "../pipeline/plan.h"
#include "../pipeline/run.h"
#include "cmd.h"

static int cmd_check(struct ctx *c, int argc, char **argv, sc_err *err)
{
    if (opts_parse(argc, argv, NULL, err) != 0)
        return err->code;
    if (c->dry_run) {
        plan_print_check(c);
        return 0;
    }
    json_t *result = NULL;
    int rc = run_check(c, &result, err);
    const char *subset = json_string_value(json_object_get(result, "subset"));
    if (c->report)
        json_object_set(c->report, "check", result);
    else if (rc == 0)
        printf("check: ok%s%s\n", subset ? ", data subset " : "", subset ? subset : "");
    json_decref(result);
    return rc;
}

const struct command command_check = {
    .name = "check",
    .run = cmd_check,
    .usage = "check",
    .summary = "restic check now, reading the next data subset of the rotation",
    .help = "Runs restic check now, with --read-data-subset k/n when [check]\n"
            "read_data_subset is set (k rotates, so n checks read every pack once), and\n"
            "records it in state.json; `run` does the same when [check] every says so.",
    .options = NULL,
    .example = "stagecoach check\n"
               "stagecoach --dry-run check",
    .needs_config = true,
};
