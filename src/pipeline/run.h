/* The flows the commands that change things run, each under the run lock:
 * a whole run (stage, ship, the sets an earlier run could not ship,
 * retention, a check when due, the records), once or every [run] interval
 * (SIGHUP reloads the configuration, SIGTERM ends the loop); or one phase
 * alone (stage, ship), a check, or retention. The top of src/pipeline/:
 * calls window.h, ship.h, retention.h, check.h and record.h; used by the
 * stage, ship, run, check and forget commands. */
#ifndef SC_PIPELINE_RUN_H
#define SC_PIPELINE_RUN_H

#include <jansson.h>
#include "ctx.h"

/* stage + ship + unshipped sets + retention + check when due, recorded.
 * The lock is held for the run only, so that in continuous mode other
 * commands (status, verify, a manual stage) can run between runs. */
int run_once(struct ctx *c, sc_err *err);
/* run_once every [run] interval until a signal; a failed run is reported
 * and the loop goes on; a stop request ends it with exit 130. */
int run_continuously(struct ctx *c, sc_err *err);
/* Phase 1 in its hooks; *set_id (owned) names the new set. */
int run_stage(struct ctx *c, char **set_id, sc_err *err);
/* Phase 2 for the set which (an id or "latest"), then retention and the
 * check when due; the report gets "shipped". */
int run_ship(struct ctx *c, const char *which, sc_err *err);
/* restic check now; *result (owned) is the report's "check". */
int run_check(struct ctx *c, json_t **result, sc_err *err);
/* Retention on demand, after checking that the newest snapshot was
 * verified (with --dry-run: what would go, no lock, nothing removed);
 * *result (owned) is the report's "retention". */
int run_forget(struct ctx *c, json_t **result, sc_err *err);

#endif
