/* restore: a set back as plaintext in a directory, from the repository
 * (--snapshot) or from local staging (--set), verified file by file against
 * its manifest; nothing live is touched. With apply, each source is then put
 * back through its kind's restore op (docs/restore.md is the runbook).
 * Calls fetch.h, src/source/ and src/stage/; used by the restore command. */
#ifndef SC_PIPELINE_RESTORE_H
#define SC_PIPELINE_RESTORE_H

#include <stdbool.h>
#include <jansson.h>
#include "ctx.h"

struct restore_opts {
    const char *snapshot, *set, *to, *identity, *passphrase_file, *source, *into;
    bool apply, force;
};

/* What was restored, for the command to report (owned: restore_result_free). */
struct restore_result {
    json_t *manifest;  /* the set's manifest; NULL when nothing was unpacked */
    json_t *applied;   /* [{name, kind, into, restored_to, seconds, restore}] */
    char snapshot[65]; /* the snapshot read back ("" for a local set) */
};

/* Restore (and with o->apply put back) under the run lock when a local
 * set is read or sources are put back. */
int restore_run(struct ctx *c, const struct restore_opts *o, struct restore_result *res,
                sc_err *err);
void restore_result_free(struct restore_result *res);

#endif
