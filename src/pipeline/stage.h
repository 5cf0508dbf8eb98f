/* Phase 1: every configured source into a new set through its kind's
 * stage op, published atomically (src/stage/set.h), or nothing at all.
 * Calls src/source/ and src/stage/; used by window.h. */
#ifndef SC_PIPELINE_STAGE_H
#define SC_PIPELINE_STAGE_H

#include "ctx.h"

/* Stage a new set; on success *set_id (owned) names it, and the report
 * gets the set, its path and its manifest. Holds no lock: the caller does. */
int stage_new_set(struct ctx *c, char **set_id, sc_err *err);

#endif
