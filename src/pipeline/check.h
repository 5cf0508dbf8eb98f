/* `restic check` on a cadence ([check] every), reading a rotating part
 * of the data ([check] read_data_subset).
 *
 * "k/n" means n subsets, starting with k: each successful check reads the
 * next one (k, k+1, ..., n, 1, ...), so n checks read every pack once. The
 * position is kept in state.json; it moves only when a check passes, so a
 * failed subset is read again. A percentage ("5%") is passed as it is:
 * restic picks a random part each time.
 *
 * state.json "check": {"last": {started, finished, status, subset, error,
 * damaged}, "last_success": time, "rotation": {"n", "next"}}. Calls
 * src/restic/; used by ship.h, record.h, plan.h and run.h. */
#ifndef SC_PIPELINE_CHECK_H
#define SC_PIPELINE_CHECK_H

#include <stdbool.h>
#include <jansson.h>
#include "ctx.h"

/* restic check, recorded in state.json; with only_if_due, only when
 * [check] every says it is due. *out (owned) is the report's "check". */
int check_run(struct ctx *c, bool only_if_due, json_t **out, sc_err *err);
/* The subset to read now ("k/n" from the rotation, a percentage as it is,
 * NULL for none; owned), and its position for check_rotation_advance. */
char *check_subset_now(const char *configured, json_t *check_state, int *pos, int *n);
void check_rotation_advance(json_t *check_state, int pos, int n);
/* When the next check is due: epoch seconds; 0: now; -1: never. */
long long check_next_due(long every_s, json_t *check_state);

#endif
