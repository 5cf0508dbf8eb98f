#include "hashfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/log.h"
#include "../core/spawn.h"
#include "../core/xalloc.h"
#include "hashpipe.h"

/* Reads of 1 MiB: as fast as bigger ones from the page cache, and small
 * enough to look for a stop request often. */
#define HASH_READ_SIZE ((size_t)1 << 20)

/* How often a long hash redraws its progress line (ms). */
#define HASH_PROGRESS_EVERY_MS 250

/* The last two parts of a path: sqlite/app.db, not the whole .tmp-<id>
 * path, on a progress line. */
static const char *short_name(const char *path)
{
    const char *last = strrchr(path, '/');
    if (last == NULL || last == path)
        return path;
    const char *p = last;
    while (p > path && p[-1] != '/')
        p--;
    return p;
}

static void show_hash_progress(const char *path, uint64_t done, uint64_t size, long long *last)
{
    long long t = now_ms();
    if (t - *last < HASH_PROGRESS_EVERY_MS)
        return;
    *last = t;
    log_progress("hashing %s: %.0f/%.0f MB", short_name(path), (double)done / 1e6,
                 (double)size / 1e6);
}

/* The hash of the pieces: inline when nothing else is done with them; on a
 * hash pipe's thread when out has work of its own (a restore writing the
 * file, layout = pages hashing every page), so both run at once: make
 * bench, layout = pages stage (docs/performance.md). */
struct piece_hash {
    bool piped;
    crypto_generichash_state h;
    struct hashpipe pipe;
};

static void piece_hash_start(struct piece_hash *ph, bool piped)
{
    ph->piped = piped;
    if (piped)
        hashpipe_start(&ph->pipe);
    else
        crypto_generichash_init(&ph->h, NULL, 0, crypto_generichash_BYTES_MAX);
}

static void piece_hash_update(struct piece_hash *ph, const void *buf, size_t len)
{
    if (ph->piped)
        hashpipe_update(&ph->pipe, buf, len);
    else
        crypto_generichash_update(&ph->h, buf, len);
}

static void piece_hash_finish(struct piece_hash *ph, char hex[129])
{
    if (ph->piped)
        hashpipe_finish(&ph->pipe, hex);
    else
        blake2b_final_hex(&ph->h, hex);
}

int hash_fd_to(int fd, const char *path, int read_code, crypto_out_fn out, void *ctx, char hex[129],
               uint64_t *bytes, sc_err *err)
{
    struct piece_hash h;
    piece_hash_start(&h, out != NULL);
    unsigned char *buf = xmalloc(HASH_READ_SIZE);
    struct stat st;
    uint64_t size = fstat(fd, &st) == 0 && st.st_size > 0 ? (uint64_t)st.st_size : 0;
    bool progress = log_progress_enabled() && size > 0;
    long long last_progress = now_ms();
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        if (sc_stop_requested) {
            rc = sc_fail(err, SC_EINTR, "interrupted while hashing %s", path);
            break;
        }
        ssize_t r = read(fd, buf, HASH_READ_SIZE);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = sc_fail_errno(err, read_code, "cannot read %s", path);
            break;
        }
        if (r == 0)
            break;
        piece_hash_update(&h, buf, (size_t)r);
        total += (uint64_t)r;
        if (out != NULL && (rc = out(ctx, buf, (size_t)r, err)) != 0)
            break;
        if (progress)
            show_hash_progress(path, total, size, &last_progress);
    }
    if (progress)
        log_progress_done();
    free(buf);
    char digest_hex[129];
    piece_hash_finish(&h, digest_hex);
    if (rc != 0)
        return rc;
    memcpy(hex, digest_hex, sizeof digest_hex);
    if (bytes)
        *bytes = total;
    return 0;
}

int hash_file(const char *path, char hex[129], uint64_t *bytes, sc_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sc_fail_errno(err, SC_EVERIFY, "cannot read %s", path);
    int rc = hash_fd_to(fd, path, SC_EVERIFY, NULL, NULL, hex, bytes, err);
    close(fd);
    return rc;
}
