/* Rows in and out with COPY, in PostgreSQL's text format (one row a line,
 * what pg_dump writes and psql's \copy reads).
 *
 * Out: COPY (SELECT <columns> FROM ONLY <table> <range> ORDER BY <key>) TO
 * STDOUT, so that the same rows give the same bytes however the table is
 * stored (VACUUM and updates move rows physically); a table without a key
 * is copied as it is stored. Rows arrive one CopyData message each; they
 * are gathered into 1 MiB and handed to the sink (hash, encryption), and
 * counted twice: as messages, each of which must end its line, and by the
 * server's "COPY n". Waiting for the server is done in slices, so that a
 * stop (SIGINT, another worker's failure) cancels the COPY at once.
 *
 * In: COPY <table> (<columns>) FROM STDIN, the file in 1 MiB pieces; the
 * server's count must be the file's lines. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "postgresql.h"

#define COPY_BUFFER ((size_t)1024 * 1024)
#define SLICE_MS 200

char *pg_copy_query(const struct pg_table *t, size_t i)
{
    if (t->order_by == NULL && t->filter == NULL)
        return *t->columns ? xasprintf("COPY %s (%s) TO STDOUT", t->qname, t->columns)
                           : xasprintf("COPY %s TO STDOUT", t->qname);
    char *where = t->filter != NULL ? xasprintf(" %s", t->filter)
                  : t->range_col    ? pg_range_where(&t->ranges, i, t->range_col)
                                    : xstrdup("");
    char *sql = xasprintf("COPY (SELECT %s FROM ONLY %s%s%s%s) TO STDOUT", t->columns, t->qname,
                          where, t->order_by ? " ORDER BY " : "", t->order_by ? t->order_by : "");
    free(where);
    return sql;
}

struct outbuf {
    char *p;
    size_t len;
    struct sink *sink;
    sc_err *err;
};

static int flush_out(struct outbuf *b)
{
    int rc = b->len ? sink_write(b->sink, b->p, b->len, b->err) : 0;
    b->len = 0;
    return rc;
}

static int put_row(struct outbuf *b, const char *row, size_t n)
{
    if (b->len + n > COPY_BUFFER && flush_out(b) != 0)
        return -1;
    if (n > COPY_BUFFER) /* one big row: straight through */
        return sink_write(b->sink, row, n, b->err) != 0 ? -1 : 0;
    memcpy(b->p + b->len, row, n);
    b->len += n;
    return 0;
}

/* The rows of the COPY in progress into b, until the end of the data (0)
 * or a failure (-1: the sink's, in err; a row cut short, *broken; else the
 * server's or the connection's, in the COPY's result). A stop cancels the
 * COPY on the server (*cancelled), which then ends it with an error. */
static int stream_rows(struct pg_copy_out *j, struct outbuf *b, bool *cancelled, bool *broken)
{
    long long counted = 0;
    int rc = 0;
    for (;;) {
        char *row = NULL;
        int n = PQgetCopyData(j->conn, &row, 1);
        if (n > 0) {
            *broken = row[n - 1] != '\n';
            rc = *broken ? -1 : put_row(b, row, (size_t)n);
            PQfreemem(row);
            if (rc != 0)
                break;
            j->rows++;
            if (++counted == 4096 && j->progress != NULL) {
                atomic_fetch_add(j->progress, counted);
                counted = 0;
            }
            continue;
        }
        if (n == -1)
            break;
        if (n == -2) {
            rc = -1;
            break;
        }
        if (!*cancelled && pg_stopping(j->cancel)) {
            pg_cancel(j->conn);
            *cancelled = true;
        }
        pg_wait_socket(j->conn, false, SLICE_MS);
        if (PQconsumeInput(j->conn) == 0) {
            rc = -1;
            break;
        }
    }
    if (j->progress != NULL)
        atomic_fetch_add(j->progress, counted);
    return rc;
}

int pg_copy_to_sink(struct pg_copy_out *j)
{
    char *sql = pg_copy_query(j->table, j->range);
    bool cancelled = false;
    PGresult *r = pg_run(j->conn, sql, j->cancel, &cancelled);
    free(sql);
    const char *label = j->table->label;
    if (r == NULL || PQresultStatus(r) != PGRES_COPY_OUT) {
        int rc = pg_fail(j->err, j->cfg, j->conn, r, cancelled, "reading %s", label);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    struct outbuf b = {.p = xmalloc(COPY_BUFFER), .sink = j->sink, .err = j->err};
    bool broken = false;
    j->rows = 0;
    int got = stream_rows(j, &b, &cancelled, &broken);
    int rc = got == 0 ? flush_out(&b) : 0;
    free(b.p);
    /* The COPY still streams after our own failure: the caller closes the
     * connection, which ends it. */
    if (got != 0 && j->err->code != 0)
        return j->err->code;
    if (broken)
        return sc_fail(j->err, SC_ESOURCE, "postgresql %s: reading %s: a row did not end its line",
                       j->cfg->name, label);
    /* The COPY's own result: its row count, or why it ended. */
    r = pg_await(j->conn, NULL, NULL);
    if (rc == 0 && (got != 0 || r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK))
        rc = pg_fail(j->err, j->cfg, j->conn, r, cancelled, "reading %s", label);
    if (rc == 0 && strtoll(PQcmdTuples(r), NULL, 10) != j->rows)
        rc = sc_fail(j->err, SC_ESOURCE,
                     "postgresql %s: reading %s: the server counted %s rows, %lld arrived",
                     j->cfg->name, label, PQcmdTuples(r), j->rows);
    PQclear(r);
    return rc;
}

/* ---- loading ----------------------------------------------------------------------------- */

static long long count_lines(const char *p, size_t n)
{
    long long lines = 0;
    for (const char *q = p; (q = memchr(q, '\n', n - (size_t)(q - p))) != NULL; q++)
        lines++;
    return lines;
}

/* Send the file's bytes; 1 when stopped, -1 on a failure. */
static int send_file(struct pg_copy_in *j, int fd, long long *lines)
{
    char *buf = xmalloc(COPY_BUFFER);
    int rc = 0;
    for (;;) {
        if (pg_stopping(j->cancel)) {
            rc = 1;
            break;
        }
        ssize_t n = read(fd, buf, COPY_BUFFER);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sc_fail_errno(j->err, SC_ESTAGING, "postgresql %s: cannot read %s", j->cfg->name,
                               j->path);
            break;
        }
        if (n == 0)
            break;
        *lines += count_lines(buf, (size_t)n);
        if (PQputCopyData(j->conn, buf, (int)n) != 1) {
            rc = -1;
            break;
        }
    }
    free(buf);
    return rc;
}

int pg_copy_from_file(struct pg_copy_in *j)
{
    int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sc_fail_errno(j->err, SC_ESTAGING, "postgresql %s: cannot read %s", j->cfg->name,
                             j->path);
    char *sql = *j->columns ? xasprintf("COPY %s (%s) FROM STDIN", j->qname, j->columns)
                            : xasprintf("COPY %s FROM STDIN", j->qname);
    bool stopped = false;
    PGresult *r = pg_run(j->conn, sql, j->cancel, &stopped);
    free(sql);
    if (r == NULL || PQresultStatus(r) != PGRES_COPY_IN) {
        int rc = pg_fail(j->err, j->cfg, j->conn, r, stopped, "loading %s", j->qname);
        PQclear(r);
        close(fd);
        return rc;
    }
    PQclear(r);
    long long lines = 0;
    int sent = send_file(j, fd, &lines);
    close(fd);
    int rc = sent > 0 || sent < 0 ? j->err->code : 0;
    /* ending the COPY with a message aborts it on the server */
    if (PQputCopyEnd(j->conn, sent == 0 ? NULL : "stagecoach stopped the load") != 1 && rc == 0)
        rc = pg_fail(j->err, j->cfg, j->conn, NULL, false, "loading %s", j->qname);
    r = pg_await(j->conn, j->cancel, &stopped);
    if (rc == 0 && (sent != 0 || r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK))
        rc = pg_fail(j->err, j->cfg, j->conn, r, stopped || sent > 0, "loading %s from %s",
                     j->qname, j->path);
    j->rows = rc == 0 ? strtoll(PQcmdTuples(r), NULL, 10) : 0;
    PQclear(r);
    if (rc == 0 && j->rows != lines)
        rc = sc_fail(j->err, SC_EVERIFY,
                     "postgresql %s: loading %s: the server took %lld rows of the %lld lines of %s",
                     j->cfg->name, j->qname, j->rows, lines, j->path);
    return rc;
}
