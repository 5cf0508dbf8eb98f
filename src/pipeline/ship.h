/* Phase 2: restic backs a published set up; the new snapshot is then
 * checked against the set's manifest (tags, host, every file and its
 * size, B2SUMS read back byte for byte) before it counts as shipped in
 * state.json. What follows a verified ship (retention, a check when due)
 * is ship_after. Calls src/restic/, retention.h, check.h, record.h; used
 * by window.h and run.h. */
#ifndef SC_PIPELINE_SHIP_H
#define SC_PIPELINE_SHIP_H

#include <jansson.h>
#include "ctx.h"

/* Ship one set and verify its snapshot; *shipped (owned) describes it:
 * {set, snapshot: {id, short_id, data_added, ...}}. Prints nothing. */
int ship_set(struct ctx *c, const char *set_id, json_t **shipped, sc_err *err);
/* ship_set, then the snapshot into the report, c->snapshot and c->shipped,
 * and "snapshot ID" on stdout without --json. */
int ship_one(struct ctx *c, const char *set_id, sc_err *err);
/* Ship the sets older than newest that are not shipped yet (a run whose
 * upload failed left them), oldest first; appends to c->shipped. */
int ship_pending(struct ctx *c, const char *newest, sc_err *err);
/* After a verified ship: retention, then a check when due; both go into
 * the report. Needs the lock. */
int ship_after(struct ctx *c, sc_err *err);

#endif
