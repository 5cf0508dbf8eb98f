#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fs.h"
#include "../core/spawn.h"
#include "../core/xalloc.h"
#include "hashfile.h"
#include "set.h"

/* The file's pages are handed to the disk every this many bytes, so that
 * the disk writes while the CPU produces and hashes the rest, and the fsync
 * of sink_close finds little left to write (make bench: a 550 MB MySQL dump
 * and a 256 MB file: 0.42 -> 0.32 s, docs/performance.md). */
#define WRITE_BEHIND ((uint64_t)8 << 20)

/* Advisory: starts the write-out and does not wait for it; a failure here
 * changes nothing (sink_close's fsync reports). */
static void write_behind(const struct sink *k, uint64_t before)
{
    uint64_t a = before / WRITE_BEHIND, b = k->bytes / WRITE_BEHIND;
    if (b > a)
        (void)sync_file_range(k->fd, (off_t)(a * WRITE_BEHIND), (off_t)((b - a) * WRITE_BEHIND),
                              SYNC_FILE_RANGE_WRITE);
}

/* Bytes as they are stored: written and hashed (ciphertext when encrypted). */
static int store(void *ctx, const void *buf, size_t len, sc_err *err)
{
    struct sink *k = ctx;
    if (fs_write_all(k->fd, buf, len) != 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot write %s", k->path);
    uint64_t before = k->bytes;
#ifndef SC_BENCH_NO_HASH
    hashpipe_update(&k->h, buf, len);
#endif
    /* SC_BENCH_NO_HASH: only for the second binary of `make bench`
     * (scripts/bench), which measures what hashing costs; its manifests
     * hold the hash of no bytes and never verify. Never set it elsewhere. */
    k->bytes += len;
    write_behind(k, before);
    return 0;
}

static int start_encryption(struct sink *k, const struct crypto_key *key, const char *relpath,
                            sc_err *err)
{
    k->plain_relpath = xstrdup(relpath);
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
    hashpipe_start(&k->h);
    if (key != NULL)
        hashpipe_start(&k->plain_h);
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
    hashpipe_update(&k->plain_h, buf, len);
    k->plain_bytes += len;
    return crypto_writer_write(k->enc, buf, len, err);
}

static void sink_release(struct sink *k)
{
    /* A pipe never started (sink_open zeroes both) or already finished by
     * sink_close has nothing to stop: then these do nothing. */
    hashpipe_discard(&k->h);
    hashpipe_discard(&k->plain_h);
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
    hashpipe_finish(&k->h, hex);
    if (k->enc != NULL) {
        hashpipe_finish(&k->plain_h, plain_hex);
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

/* Stream a finished plaintext file through an encrypting sink. */
static int encrypt_file(struct set *s, const char *relpath, const char *path, sc_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot read %s", path);
    struct sink k;
    int rc = sink_open(&k, s, relpath, err);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    unsigned char *buf = xmalloc((size_t)CRYPTO_CHUNK * 16);
    for (;;) {
        if (sc_stop_requested) {
            rc = sc_fail(err, SC_EINTR, "interrupted while encrypting %s", path);
            break;
        }
        ssize_t r = read(fd, buf, (size_t)CRYPTO_CHUNK * 16);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = sc_fail_errno(err, SC_ESTAGING, "cannot read %s", path);
        if (r <= 0)
            break;
        if ((rc = sink_write(&k, buf, (size_t)r, err)) != 0)
            break;
    }
    sodium_memzero(buf, (size_t)CRYPTO_CHUNK * 16);
    free(buf);
    close(fd);
    if (rc == 0)
        return sink_close(&k, err);
    sink_abort(&k);
    return rc;
}

static int add_file_encrypted(struct set *s, const char *relpath, sc_err *err)
{
    char *path = path_join(s->tmpdir, relpath);
    int rc = encrypt_file(s, relpath, path, err);
    /* Whatever happened, the plaintext goes now (its blocks are freed, not
     * wiped: see docs/encryption.md). */
    if (unlink(path) != 0 && errno != ENOENT && rc == 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot remove the plaintext %s", path);
    free(path);
    return rc;
}

/* A finished file written by someone else (SQLite) becomes part of the set:
 * private, hashed, durable. The write-out to disk is started first and the
 * fsync comes last, so the disk writes while the CPU hashes from the page
 * cache (the hash is of the same bytes the fsync then makes durable; a
 * failed fsync fails the set). */
int set_add_file(struct set *s, const char *relpath, sc_err *err)
{
    if (set_key(s) != NULL)
        return add_file_encrypted(s, relpath, err);
    char *path = path_join(s->tmpdir, relpath);
    char hex[129];
    uint64_t bytes = 0;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fchmod(fd, 0600) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot open %s", path);
    if (rc == 0) {
        /* Advisory: a failure only means the fsync below does it all. */
        (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        rc = hash_fd_to(fd, path, SC_ESTAGING, NULL, NULL, hex, &bytes, err);
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot sync %s", path);
    if (fd >= 0)
        close(fd);
    if (rc == 0)
        set_record_file(s, relpath, bytes, hex);
    free(path);
    return rc;
}
