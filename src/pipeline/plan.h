/* --dry-run: what a command would do, printed, with nothing touched:
 * the stage and ship plans with the hooks where they would run, retention,
 * the check cadence. Calls the source ops' plan lines, src/restic/ (for
 * retention's arguments) and check.h; used by the commands. */
#ifndef SC_PIPELINE_PLAN_H
#define SC_PIPELINE_PLAN_H

#include <stdbool.h>
#include "ctx.h"

/* The stage and/or ship plan; ship_which: the set a ship would ship, or
 * NULL for a run (the set it stages). */
void plan_print(struct ctx *c, bool stage, bool ship, const char *ship_which);
/* After a ship: retention, the check cadence and the metrics file. */
void plan_print_offsite(struct ctx *c);
/* The check command's plan: which data subset would be read. */
void plan_print_check(struct ctx *c);

#endif
