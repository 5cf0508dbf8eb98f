/* drill: a restore rehearsal that touches nothing live. The latest snapshot
 * (or another) is read back from the repository into STAGING/.drill-*,
 * verified and decrypted, and every source is restored into a scratch
 * target through its kind's restore op, which checks it against the
 * manifest: a SQLite copy in the scratch directory (integrity_check, rows of
 * every table), the paths archive extracted there (entry count), a database
 * dump loaded into <db>_drill_<id> (rows of every table) and dropped again.
 * The outcome goes to state.json (last_drill); exit 7 when anything differs
 * from the manifest. Calls fetch.h, src/source/ and src/stage/; used by the
 * drill command. */
#ifndef SC_PIPELINE_DRILL_H
#define SC_PIPELINE_DRILL_H

#include <jansson.h>
#include "ctx.h"

struct drill_opts {
    const char *which; /* snapshot id or "latest" (NULL: latest) */
    const char *identity, *passphrase_file;
};

/* Run a drill under the lock; *result (owned) is what state.json's
 * last_drill now holds: {started, finished, snapshot, set, status,
 * exit_code, error, seconds, fetch_seconds, rto_seconds (from the start to
 * the last source back and checked: the recovery time objective measured),
 * sources: [{name, kind, target, status, seconds, ...}]}. */
int drill_run(struct ctx *c, const struct drill_opts *o, json_t **result, sc_err *err);

#endif
