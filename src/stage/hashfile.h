/* BLAKE2b-512 of a whole file, read once in 1 MiB pieces, optionally
 * handing every piece on (a restore's copy, an encrypting sink). It stops
 * between pieces when SIGINT/SIGTERM asked for it, and shows progress on a
 * terminal: a 17 GB file takes 20 s. Uses src/core/; used by set.c,
 * sink.c and manifest.c (hashing, adopting and verifying files). */
#ifndef SC_HASHFILE_H
#define SC_HASHFILE_H

#include <stdint.h>
#include "../core/err.h"
#include "crypto.h"

/* Hash what fd reads from its current offset to the end, sending each
 * piece to out (NULL: none). display names the file in messages; a read
 * failure is exit read_code. hex: 129 bytes. bytes (may be NULL): how many. */
int hash_fd_to(int fd, const char *display, int read_code, crypto_out_fn out, void *ctx,
               char hex[129], uint64_t *bytes, sc_err *err);
/* The same for a file by name; a file that cannot be opened is exit 7. */
int hash_file(const char *path, char hex[129], uint64_t *bytes, sc_err *err);

#endif
