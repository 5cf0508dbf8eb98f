/* run: stage + ship + local retention, under one lock. */
#include <stdio.h>
#include <stdlib.h>

#include "../core/lock.h"
#include "../core/log.h"
#include "cmd.h"

int cmd_run(struct ctx *c, int argc, char **argv, sc_err *err)
{
    if (cmd_parse_opts(argc, argv, NULL, err) != 0)
        return err->code;
    if (c->dry_run) {
        print_plan(c, true);
        return 0;
    }
    int fd;
    if (cmd_lock(c, &fd, err) != 0)
        return err->code;
    char started[32];
    utc_timestamp(started, sizeof started);
    char *id = NULL;
    /* Downtime, if hooks stop the service, is the stage phase only. */
    int rc = stage_in_window(c, &id, err);
    if (rc == 0)
        rc = ship_with_hooks(c, id, err);
    /* Retention only after a verified ship (design §2). */
    if (rc == 0)
        rc = prune_local_sets(c, err);
    record_run(c, "run", started, id, rc, err);
    run_final_hooks(c, id, rc, err);
    free(id);
    lock_release(fd);
    return rc;
}
