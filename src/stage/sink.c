#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fs.h"
#include "../core/xalloc.h"
#include "set.h"

/* Bytes as they are stored: written and hashed (ciphertext when encrypted). */
static int store(void *ctx, const void *buf, size_t len, sc_err *err)
{
    struct sink *k = ctx;
    if (fs_write_all(k->fd, buf, len) != 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot write %s", k->path);
#ifndef SC_BENCH_NO_HASH
    crypto_generichash_update(&k->h, buf, len);
#endif
    /* SC_BENCH_NO_HASH: only for the second binary of `make bench`
     * (scripts/bench), which measures what hashing costs; its manifests
     * hold the hash of no bytes and never verify. Never set it elsewhere. */
    k->bytes += len;
    return 0;
}

static int start_encryption(struct sink *k, const struct crypto_key *key, const char *relpath,
                            sc_err *err)
{
    k->plain_relpath = xstrdup(relpath);
    crypto_generichash_init(&k->plain_h, NULL, 0, crypto_generichash_BYTES_MAX);
    k->enc = xcalloc(1, sizeof *k->enc);
    return crypto_writer_open(k->enc, key, relpath, store, k, err);
}

int sink_open(struct sink *k, struct set *set, const char *relpath, sc_err *err)
{
    memset(k, 0, sizeof *k);
    k->fd = -1;
    const struct crypto_key *key = set_key(set);
    char *stored = key ? xasprintf("%s%s", relpath, CRYPTO_SUFFIX) : xstrdup(relpath);
    k->path = set_file_path(set, stored, err);
    if (k->path == NULL) {
        free(stored);
        return err->code;
    }
    k->fd = open(k->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (k->fd < 0) {
        int rc = sc_fail_errno(err, SC_ESTAGING, "cannot create %s", k->path);
        free(k->path);
        free(stored);
        k->path = NULL;
        return rc;
    }
    k->set = set;
    k->relpath = stored;
    crypto_generichash_init(&k->h, NULL, 0, crypto_generichash_BYTES_MAX);
    if (key != NULL && start_encryption(k, key, relpath, err) != 0) {
        sink_abort(k);
        return err->code;
    }
    return 0;
}

int sink_write(struct sink *k, const void *buf, size_t len, sc_err *err)
{
    if (k->enc == NULL)
        return store(k, buf, len, err);
    crypto_generichash_update(&k->plain_h, buf, len);
    k->plain_bytes += len;
    return crypto_writer_write(k->enc, buf, len, err);
}

static void sink_release(struct sink *k)
{
    if (k->enc != NULL) {
        crypto_writer_free(k->enc);
        free(k->enc);
    }
    free(k->path);
    free(k->relpath);
    free(k->plain_relpath);
    k->path = k->relpath = k->plain_relpath = NULL;
    k->enc = NULL;
    k->fd = -1;
}

static void final_hex(crypto_generichash_state *h, char hex[129])
{
    unsigned char digest[crypto_generichash_BYTES_MAX];
    crypto_generichash_final(h, digest, sizeof digest);
    sodium_bin2hex(hex, 129, digest, sizeof digest);
}

int sink_close(struct sink *k, sc_err *err)
{
    if (k->enc != NULL && crypto_writer_finish(k->enc, err) != 0) {
        sink_abort(k);
        return err->code;
    }
    if (fsync(k->fd) != 0) {
        int rc = sc_fail_errno(err, SC_ESTAGING, "cannot fsync %s", k->path);
        sink_abort(k);
        return rc;
    }
    if (close(k->fd) != 0) {
        k->fd = -1;
        int rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", k->path);
        sink_abort(k);
        return rc;
    }
    char hex[129], plain_hex[129];
    final_hex(&k->h, hex);
    if (k->enc != NULL) {
        final_hex(&k->plain_h, plain_hex);
        set_record_sealed_file(k->set, k->relpath, k->bytes, hex, k->plain_relpath, k->plain_bytes,
                               plain_hex);
    } else {
        set_record_file(k->set, k->relpath, k->bytes, hex);
    }
    sink_release(k);
    return 0;
}

void sink_abort(struct sink *k)
{
    if (k->fd >= 0)
        close(k->fd);
    if (k->path != NULL)
        unlink(k->path);
    sink_release(k);
}
