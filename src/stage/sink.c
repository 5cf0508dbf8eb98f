#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fs.h"
#include "../core/xalloc.h"
#include "set.h"

int sink_open(struct sink *k, struct set *set, const char *relpath, sc_err *err)
{
    memset(k, 0, sizeof *k);
    k->fd = -1;
    k->path = set_file_path(set, relpath, err);
    if (k->path == NULL)
        return err->code;
    k->fd = open(k->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (k->fd < 0) {
        int rc = sc_fail_errno(err, SC_ESTAGING, "cannot create %s", k->path);
        free(k->path);
        k->path = NULL;
        return rc;
    }
    k->set = set;
    k->relpath = xstrdup(relpath);
    crypto_generichash_init(&k->h, NULL, 0, crypto_generichash_BYTES_MAX);
    return 0;
}

int sink_write(struct sink *k, const void *buf, size_t len, sc_err *err)
{
    if (fs_write_all(k->fd, buf, len) != 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot write %s", k->path);
    crypto_generichash_update(&k->h, buf, len);
    k->bytes += len;
    return 0;
}

static void sink_release(struct sink *k)
{
    free(k->path);
    free(k->relpath);
    k->path = k->relpath = NULL;
    k->fd = -1;
}

int sink_close(struct sink *k, sc_err *err)
{
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
    unsigned char digest[crypto_generichash_BYTES_MAX];
    char hex[crypto_generichash_BYTES_MAX * 2 + 1];
    crypto_generichash_final(&k->h, digest, sizeof digest);
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    set_record_file(k->set, k->relpath, k->bytes, hex);
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
