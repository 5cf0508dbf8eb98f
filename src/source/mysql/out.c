/* The dump's writer: values arrive a few bytes at a time, so they are
 * gathered into a buffer and handed on in large writes: to the sink (write
 * and BLAKE2b in one pass) for the dump file, or to a plain descriptor for
 * the spool (tables read under the lock, copied into the dump later). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/fs.h"
#include "../../core/xalloc.h"
#include "mysql.h"

#define OUT_BUFFER ((size_t)1024 * 1024)

static void init(struct my_out *o, sc_err *err)
{
    o->buf = xmalloc(OUT_BUFFER);
    o->cap = OUT_BUFFER;
    o->len = 0;
    o->flushed = 0;
    o->err = err;
    o->published = NULL;
}

void my_out_init_sink(struct my_out *o, struct sink *k, sc_err *err)
{
    init(o, err);
    o->sink = k;
    o->fd = -1;
    o->what = k->path;
}

void my_out_init_fd(struct my_out *o, int fd, const char *what, sc_err *err)
{
    init(o, err);
    o->sink = NULL;
    o->fd = fd;
    o->what = what;
}

void my_out_reuse_fd(struct my_out *o, int fd, sc_err *err)
{
    o->fd = fd;
    o->err = err;
    o->len = 0;
    o->flushed = 0;
    o->published = NULL;
}

static int put(struct my_out *o, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (o->sink != NULL) {
        if (sink_write(o->sink, p, n, o->err) != 0)
            return o->err->code;
    } else if (fs_write_all(o->fd, p, n) != 0) {
        return sc_fail_errno(o->err, SC_ESTAGING, "cannot write %s", o->what);
    }
    o->flushed += n;
    if (o->published != NULL)
        atomic_store_explicit(o->published, o->flushed, memory_order_release);
    return 0;
}

int my_out_flush(struct my_out *o)
{
    int rc = put(o, o->buf, o->len);
    o->len = 0;
    return rc;
}

int my_out_write(struct my_out *o, const void *p, size_t n)
{
    if (o->len + n > o->cap) {
        if (my_out_flush(o) != 0)
            return o->err->code;
        /* A big piece (a long row) goes straight through. */
        if (n >= o->cap)
            return put(o, p, n);
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

int my_out_puts(struct my_out *o, const char *s)
{
    return my_out_write(o, s, strlen(s));
}

int my_out_printf(struct my_out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fputs("stagecoach: out of memory\n", stderr);
        exit(1);
    }
    int rc = my_out_write(o, s, (size_t)n);
    free(s);
    return rc;
}

uint64_t my_out_pos(const struct my_out *o)
{
    return o->flushed + o->len;
}

int my_out_copy_from(struct my_out *o, int fd, uint64_t off, uint64_t len)
{
    if (my_out_flush(o) != 0)
        return o->err->code;
    while (len > 0) {
        size_t want = len < o->cap ? (size_t)len : o->cap;
        ssize_t r = pread(fd, o->buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO; /* the spool is shorter than what we wrote to it */
            return sc_fail_errno(o->err, SC_ESTAGING, "cannot read back the spooled rows");
        }
        if (put(o, o->buf, (size_t)r) != 0)
            return o->err->code;
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return 0;
}

void my_out_free(struct my_out *o)
{
    free(o->buf);
    o->buf = NULL;
    o->len = o->cap = 0;
}
