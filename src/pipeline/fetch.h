/* The way back shares these: the key that opens an encrypted set, and a
 * snapshot read back by restic into private scratch space. Calls
 * src/restic/ and src/stage/; used by verify.h, restore.h and drill.h. */
#ifndef SC_PIPELINE_FETCH_H
#define SC_PIPELINE_FETCH_H

#include "ctx.h"

struct crypto_key;

/* The key that opens encrypted sets: identity (--identity) when given, else
 * [staging] identity, else [staging] key_file; *key stays NULL when none is
 * configured. The passphrase comes from passphrase_file, else [staging]
 * passphrase_file, else the terminal. */
int fetch_reading_key(struct ctx *c, const char *identity, const char *passphrase_file,
                      struct crypto_key **key, sc_err *err);
/* The same, read only when the set in setdir is encrypted (a plain set
 * never asks for a passphrase). */
int fetch_set_key(struct ctx *c, const char *setdir, const char *identity,
                  const char *passphrase_file, struct crypto_key **key, sc_err *err);
/* A snapshot read back by restic into a private scratch directory made
 * under parent (scratch_create), named prefix + random. */
struct fetched {
    char *scratch;  /* removed by fetched_free */
    int scratch_fd; /* holds it (scratch_create) */
    char *setdir;   /* the set inside it */
    char snapshot[65];
};
int fetch_snapshot(struct ctx *c, const char *which, const char *parent, const char *prefix,
                   struct fetched *f, sc_err *err);
void fetched_free(struct fetched *f);
/* Rebuild from dir (a verified plaintext set) into the directory into (dir
 * itself, or scratch space) what its sources store in another shape
 * (source_ops.unpack, e.g. sqlite layout = pages), and check it. Exit 7
 * naming the file at fault. */
int fetch_unpack_sources(const char *dir, const char *into, json_t *manifest, sc_err *err);
/* Whether a source of the set stores its data in another shape than the
 * file a restore gives back (its manifest entry names a layout other than
 * "file"): then only fetch_unpack_sources checks what a restore would get. */
bool fetch_needs_unpack(json_t *manifest);

#endif
