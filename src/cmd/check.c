/* check: `restic check` now, with the configured subset rotation
 * (src/pipeline/check.h). */
#include <stdio.h>

#include "../pipeline/plan.h"
#include "../pipeline/run.h"
#include "cmd.h"

int cmd_check(struct ctx *c, int argc, char **argv, sc_err *err)
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
