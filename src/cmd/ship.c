/* ship [--set ID|latest]: phase 2 only, then retention and a check when due. */
#include "../pipeline/plan.h"
#include "../pipeline/run.h"
#include "cmd.h"

int cmd_ship(struct ctx *c, int argc, char **argv, sc_err *err)
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
