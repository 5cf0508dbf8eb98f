/* The one path for bytes into a set: write + BLAKE2b-512 in one pass. */
#ifndef SC_SINK_H
#define SC_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>
#include "../core/err.h"

struct set;

struct sink {
    struct set *set;
    char *relpath;
    char *path;
    int fd;
    uint64_t bytes;
    crypto_generichash_state h;
};

/* Create relpath (0600) inside the set being built. */
int sink_open(struct sink *k, struct set *set, const char *relpath, sc_err *err);
int sink_write(struct sink *k, const void *buf, size_t len, sc_err *err);
/* fsync, close, record in the manifest. */
int sink_close(struct sink *k, sc_err *err);
/* Close and unlink after a failure. */
void sink_abort(struct sink *k);

#endif
