/* Small things every part of the SQLite source does with a connection:
 * statements, pragmas, busy and stop tests, and the wording of failures. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/clock.h"
#include "../../core/fs.h"
#include "../../core/log.h"
#include "../../core/spawn.h"
#include "../../core/thread.h"
#include "../../core/xalloc.h"
#include "../../stage/set.h"
#include "sqlite.h"

/* Progress handler: a long query (integrity_check of a big copy, counting a
 * big table) ends with SQLITE_INTERRUPT when a stop was requested. */
int sq_stop_requested(void *unused)
{
    (void)unused;
    return sc_stop_requested != 0;
}

bool sq_is_busy(int rc)
{
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* ---- failures ---------------------------------------------------------- */

int sq_fail_interrupted(struct job *j)
{
    return sc_fail(j->err, SC_EINTR, "sqlite %s: interrupted", j->cfg->name);
}

/* SQLite's message for rc: the connection's own when it is about rc (it
 * names the detail), else the generic text of the code. */
static const char *why(sqlite3 *db, int rc)
{
    if (db != NULL && (sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff))
        return sqlite3_errmsg(db);
    return sqlite3_errstr(rc);
}

/* Why a read-only connection could not read: the usual causes, worded. */
static const char *read_only_hint(int rc)
{
    switch (rc) {
    case SQLITE_READONLY_ROLLBACK:
        return "it has a hot journal that only a writer can roll back: let the application "
               "(or sqlite3) open it once";
    case SQLITE_READONLY_RECOVERY:
        return "its WAL needs recovery that only a writer can run: let the application (or "
               "sqlite3) open it once";
    default:
        /* A read-only connection to a WAL database still needs the -shm
         * file: it must exist and be writable, or the directory must let
         * SQLite create it. */
        return "a WAL database needs its -shm file to exist and be writable, or its directory "
               "to be writable";
    }
}

/* A failure about the live database or what was read from it: exit 4,
 * worded for the usual causes. */
int sq_fail_source(struct job *j, sqlite3 *db, int rc, const char *what)
{
    const char *name = j->cfg->name, *msg = why(db, rc);
    switch (rc & 0xff) {
    case SQLITE_INTERRUPT:
        return sq_fail_interrupted(j);
    case SQLITE_NOTADB:
        return sc_fail(j->err, SC_ESOURCE, "sqlite %s: %s: not a SQLite database (%s)", name,
                       j->path, msg);
    case SQLITE_CORRUPT:
        return sc_fail(j->err, SC_ESOURCE, "sqlite %s: %s: file is truncated or corrupt (%s)", name,
                       j->path, msg);
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
        return sc_fail(j->err, SC_ESOURCE, "sqlite %s: %s: cannot read it (%s); %s", name, j->path,
                       msg, read_only_hint(rc));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        if (sc_stop_requested)
            return sq_fail_interrupted(j);
        return sc_fail(j->err, SC_ESOURCE,
                       "sqlite %s: %s: still locked after %ld ms (%s); raise busy_timeout_ms", name,
                       j->path, j->cfg->busy_timeout_ms, msg);
    default:
        return sc_fail(j->err, SC_ESOURCE, "sqlite %s: %s: %s: %s", name, j->path, what, msg);
    }
}

/* A failure writing or reading the copy in the set: exit 5 (disk full, I/O
 * error, permissions), except for content problems, which came from the
 * source. */
int sq_fail_copy(struct job *j, int rc, const char *what)
{
    switch (rc & 0xff) {
    case SQLITE_INTERRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return sq_fail_source(j, j->dst, rc, what);
    default:
        break;
    }
    /* For I/O errors the system's reason (ENOSPC, EFBIG, EIO) says more. */
    int sys = j->dst ? sqlite3_system_errno(j->dst) : 0;
    if (sys != 0 && ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_FULL))
        return sc_fail(j->err, SC_ESTAGING, "sqlite %s: %s: %s: %s (%s)", j->cfg->name, j->dst_path,
                       what, why(j->dst, rc), strerror(sys));
    return sc_fail(j->err, SC_ESTAGING, "sqlite %s: %s: %s: %s", j->cfg->name, j->dst_path, what,
                   why(j->dst, rc));
}

/* A failed backup step may come from either side. The source connection is
 * read-only and its files are open already, so only the destination can be
 * full, read-only, unable to open its journal, or fail to write. */
bool sq_is_copy_error(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
        return true;
    default:
        break;
    }
    switch (rc) {
    case SQLITE_IOERR_WRITE:
    case SQLITE_IOERR_FSYNC:
    case SQLITE_IOERR_DIR_FSYNC:
    case SQLITE_IOERR_TRUNCATE:
    case SQLITE_IOERR_DELETE:
    case SQLITE_IOERR_CLOSE:
        return true;
    default:
        return false;
    }
}

int sq_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Run a PRAGMA that returns one value; copy it as text. */
int sq_pragma_text(sqlite3 *db, const char *sql, char *out, size_t n)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        snprintf(out, n, "%s", v ? (const char *)v : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_ERROR; /* a PRAGMA that answers nothing */
    }
    sqlite3_finalize(st);
    return rc;
}

int sq_pragma_int(sqlite3 *db, const char *sql, long long *out)
{
    char text[32];
    int rc = sq_pragma_text(db, sql, text, sizeof text);
    if (rc == SQLITE_OK)
        *out = strtoll(text, NULL, 10);
    return rc;
}
