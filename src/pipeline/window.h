/* The maintenance window and the other hooks around the two phases:
 * before_stage, stage, after_stage (always, it restarts the service);
 * before_ship, ship, after_ship; on_success or on_failure at the end.
 * Calls src/core/hooks.h, stage.h and ship.h; used by run.h. */
#ifndef SC_PIPELINE_WINDOW_H
#define SC_PIPELINE_WINDOW_H

#include "ctx.h"

/* before_stage, stage a new set, after_stage (whatever happened before
 * it). *set_id (owned) is the new set. */
int window_stage(struct ctx *c, char **set_id, sc_err *err);
/* before_ship, ship and verify set_id, after_ship (when shipping was tried). */
int window_ship(struct ctx *c, const char *set_id, sc_err *err);
/* on_success or on_failure, told how the command ended. */
void window_final_hooks(struct ctx *c, const char *set_id, int rc, const sc_err *err);

#endif
