/* verify: re-hash a local set, or read a snapshot back from restic into a
 * private scratch directory and check every file against its manifest.
 * For an encrypted set, with an identity (--identity, or [staging] identity
 * or key_file), every file is also decrypted and its plaintext checked;
 * nothing decrypted is written anywhere, except for a source stored in
 * another shape (sqlite layout = pages): its set is unpacked into private
 * scratch space beside the sets (0700, removed after), where the database
 * is rebuilt and checked, also for a plain set. Calls fetch.h and src/stage/;
 * used by the verify command. */
#ifndef SC_PIPELINE_VERIFY_H
#define SC_PIPELINE_VERIFY_H

#include "ctx.h"

struct verify_opts {
    const char *set, *snapshot, *identity, *passphrase_file;
};

/* The local set o->set (or the latest); "set ID: ok" without --json. */
int verify_local_set(struct ctx *c, const struct verify_opts *o, sc_err *err);
/* The snapshot o->snapshot, read back; "snapshot ID: ok" without --json. */
int verify_remote_snapshot(struct ctx *c, const struct verify_opts *o, sc_err *err);

#endif
