/* The one path for bytes into a set: write + BLAKE2b-512 in one pass, and
 * when the set is encrypted, encryption in the same pass: the plaintext is
 * hashed, encrypted chunk by chunk (stagecoach-enc/1) and the stored bytes
 * hashed as they are written to <relpath>.enc. Memory use is bounded by the
 * chunk size, whatever the size of the file. */
#ifndef SC_SINK_H
#define SC_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>
#include "../core/err.h"
#include "crypto.h"
#include "hashpipe.h"

struct set;

struct sink {
    struct set *set;
    char *relpath; /* as stored: <name> or <name>.enc */
    char *path;
    int fd;
    uint64_t bytes;    /* stored bytes */
    struct hashpipe h; /* of the stored bytes, on its own thread */
    /* Encrypted sets only (enc != NULL): */
    struct crypto_writer *enc;
    char *plain_relpath;
    uint64_t plain_bytes;
    struct hashpipe plain_h;
};

/* Create relpath (0600) inside the set being built; relpath.enc when the
 * set is encrypted. */
int sink_open(struct sink *k, struct set *set, const char *relpath, sc_err *err);
int sink_write(struct sink *k, const void *buf, size_t len, sc_err *err);
/* Finish the encryption, fsync, close, record in the manifest. */
int sink_close(struct sink *k, sc_err *err);
/* Close and unlink after a failure. */
void sink_abort(struct sink *k);

/* Take in a file some other writer finished (e.g. SQLite): hash it, fsync
 * it, chmod 0600, record it. In an encrypted set it is encrypted through a
 * sink into relpath.enc instead, and the plaintext unlinked at once, also
 * on failure: the plaintext never outlives staging. */
int set_add_file(struct set *s, const char *relpath, sc_err *err);
#endif
