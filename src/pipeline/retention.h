/* Retention, in the repository ([retention] keep_*: restic forget, then
 * prune) and on local disk ([staging] keep), only after a verified ship
 * (design §2): a set never shipped is never removed.
 *
 * state.json "retention": {"last": {finished, status, removed, kept,
 * error}, "prune_pending": bool}; "repository": {"snapshots", "counted"}.
 * Calls src/restic/ and src/stage/set.h; used by ship.h and run.h. */
#ifndef SC_PIPELINE_RETENTION_H
#define SC_PIPELINE_RETENTION_H

#include <stdbool.h>
#include <jansson.h>
#include "ctx.h"

/* forget (+ prune) in the repository, then local sets. *out (owned) is
 * the report's "retention". dry_run: what would go, nothing removed. */
int retention_run(struct ctx *c, bool dry_run, json_t **out, sc_err *err);
/* Remove local sets beyond [staging] keep that are already shipped. */
int retention_prune_local_sets(struct ctx *c, sc_err *err);
/* The promise the forget command checks first: the newest snapshot under
 * retention was verified by this stagecoach (none at all is fine). */
int retention_newest_verified(struct ctx *c, sc_err *err);

#endif
