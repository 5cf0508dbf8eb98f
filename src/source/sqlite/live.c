/* The live database: checked before SQLite opens it, opened read-only
 * (never created), and read in one transaction that every backup step
 * reuses (sqlite.c says why). */
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

/* ---- the live database -------------------------------------------------- */

/* Look at the file before SQLite does: a missing file must never be created,
 * and "not a database" reads better from its first bytes than from the
 * first query. (Opening and closing a plain fd here is safe: SQLite holds no
 * POSIX lock on the file yet.) */
int sq_check_source_file(struct job *j)
{
    const char *name = j->cfg->name;
    /* O_NONBLOCK: a FIFO in the database's place must not hang the open;
     * the S_ISREG check below refuses it. */
    int fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return sc_fail_errno(j->err, SC_ESOURCE, "sqlite %s: %s", name, j->path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = sc_fail_errno(j->err, SC_ESOURCE, "sqlite %s: %s", name, j->path);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sc_fail(j->err, SC_ESOURCE, "sqlite %s: %s: not a regular file", name, j->path);
    }
    char header[SQLITE_HEADER_SIZE];
    ssize_t n;
    do
        n = pread(fd, header, sizeof header, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int rc = sc_fail_errno(j->err, SC_ESOURCE, "sqlite %s: cannot read %s", name, j->path);
        close(fd);
        return rc;
    }
    close(fd);
    if (n == 0) {
        /* SQLite treats a zero-byte file as an empty database. Allowed, but
         * stated: it is more often a wrong path than a real database. */
        source_warn(j->entry, "%s is an empty file (0 bytes): staged as an empty database",
                    j->path);
        log_warn("sqlite %s: %s is an empty file (0 bytes)", name, j->path);
        return 0;
    }
    size_t cmp = (size_t)n < sizeof SQLITE_MAGIC ? (size_t)n : sizeof SQLITE_MAGIC;
    if (memcmp(header, SQLITE_MAGIC, cmp) != 0)
        return sc_fail(j->err, SC_ESOURCE, "sqlite %s: %s: not a SQLite database", name, j->path);
    if (n < SQLITE_HEADER_SIZE)
        return sc_fail(j->err, SC_ESOURCE,
                       "sqlite %s: %s: file is truncated or corrupt (%zd bytes, shorter than the "
                       "SQLite header)",
                       name, j->path, n);
    /* Bytes 18 and 19: file format write/read versions, 2 for WAL. */
    j->header_wal = header[18] == 2 && header[19] == 2;
    return 0;
}

/* A path as the path part of a file: URI: every byte but unreserved ones
 * and '/' percent-encoded ('?', '#' and '%' would otherwise mean more). */
char *sq_uri_escape_path(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path);
    char *out = xmalloc(3 * n + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("/-._~", *p) != NULL) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* Busy handler: short fixed sleeps (the default handler's growing sleeps
 * keep losing the race to a busy writer), giving up at busy_timeout_ms or at
 * once when a stop was requested, so Ctrl-C never waits out the timeout. */
static int busy_wait(void *arg, int count)
{
    struct job *j = arg;
    if (count == 0)
        j->busy_deadline_ms = now_ms() + j->cfg->busy_timeout_ms;
    if (sc_stop_requested || now_ms() >= j->busy_deadline_ms)
        return 0;
    sqlite3_sleep(BUSY_SLEEP_MS);
    return 1;
}

/* Open the live database read-only: SQLite must never create or change
 * it. Returns an SQLite result code. */
static int open_source(struct job *j, bool immutable)
{
    int rc;
    if (immutable) {
        char *escaped = sq_uri_escape_path(j->path);
        char *uri = xasprintf("file:%s?immutable=1", escaped);
        free(escaped);
        rc = sqlite3_open_v2(uri, &j->src, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
        free(uri);
    } else {
        rc = sqlite3_open_v2(j->path, &j->src, SQLITE_OPEN_READONLY, NULL);
    }
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_extended_result_codes(j->src, 1);
    j->busy_deadline_ms = 0;
    sqlite3_busy_handler(j->src, busy_wait, j);
    sqlite3_progress_handler(j->src, STOP_CHECK_OPS, sq_stop_requested, NULL);
    return SQLITE_OK;
}

/* Open the read transaction every backup step will reuse. BEGIN alone takes
 * no lock; the first read does. The busy handler waits for a lock, but some
 * BUSY results (WAL recovery by another process) bypass it, so retry here
 * too, within the same busy timeout. Returns an SQLite result code. */
static int begin_read(struct job *j)
{
    int rc = sq_exec(j->src, "BEGIN");
    if (rc != SQLITE_OK)
        return rc;
    j->in_snapshot = true;
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(j->src, "SELECT 1 FROM sqlite_master LIMIT 1", -1, &st, NULL);
    long long deadline = now_ms() + j->cfg->busy_timeout_ms;
    while (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
            rc = SQLITE_OK;
            break;
        }
        if (!sq_is_busy(rc) || now_ms() >= deadline || sc_stop_requested)
            break;
        sqlite3_reset(st);
        sqlite3_sleep(BUSY_SLEEP_MS);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static bool wal_files_exist(const struct job *j)
{
    char *wal = xasprintf("%s-wal", j->path), *shm = xasprintf("%s-shm", j->path);
    bool there = fs_exists(wal) || fs_exists(shm);
    free(wal);
    free(shm);
    return there;
}

/* A WAL database that no one has open has no -wal or -shm file; on a
 * read-only mount (the POC mounts the deployment :ro) SQLite can then not
 * create the -shm it needs and fails (CANTOPEN on a read-only file system,
 * READONLY_DIRECTORY in a directory we may not write). No -wal also means no
 * writer and nothing un-checkpointed, so the main file alone is the whole
 * database: read it with immutable=1 (no locks, no -shm). A writer that
 * starts meanwhile shows up as a -wal file; snapshot_and_copy checks for it
 * after the copy. */
static bool immutable_fallback_applies(const struct job *j, int rc)
{
    bool no_shm = (rc & 0xff) == SQLITE_CANTOPEN || rc == SQLITE_READONLY_DIRECTORY;
    return no_shm && j->header_wal && !wal_files_exist(j);
}

void sq_close_source(struct job *j);

int sq_begin_snapshot(struct job *j)
{
    long long asked = now_ms();
    int rc = open_source(j, false);
    if (rc == SQLITE_OK)
        rc = begin_read(j);
    if (rc != SQLITE_OK && immutable_fallback_applies(j, rc)) {
        sq_close_source(j);
        rc = open_source(j, true);
        if (rc == SQLITE_OK)
            rc = begin_read(j);
        if (rc == SQLITE_OK) {
            j->immutable = true;
            source_warn(j->entry,
                        "%s: a WAL database no one had open (no -wal or -shm) in a "
                        "directory we cannot write: read as immutable",
                        j->path);
        }
    }
    if (rc != SQLITE_OK)
        return sq_fail_source(j, j->src, rc, "cannot read");
    /* From here on a rollback-journal database's writers wait for us. */
    j->snapshot_start_ms = now_ms();
    log_debug("sqlite %s: read transaction open after %lld ms", j->cfg->name,
              j->snapshot_start_ms - asked);
    return 0;
}

/* After an immutable read: had a writer opened the database meanwhile, its
 * changes could have reached the main file under us. */
int sq_check_no_writer_appeared(struct job *j)
{
    if (!j->immutable || !wal_files_exist(j))
        return 0;
    return sc_fail(j->err, SC_ESOURCE,
                   "sqlite %s: %s: a writer opened the database during the copy; run again",
                   j->cfg->name, j->path);
}

/* Inside the snapshot, so page_count is what the backup will copy. */
int sq_read_source_facts(struct job *j)
{
    int rc = sq_pragma_int(j->src, "PRAGMA page_size", &j->page_size);
    if (rc == SQLITE_OK)
        rc = sq_pragma_int(j->src, "PRAGMA page_count", &j->pages);
    if (rc == SQLITE_OK)
        rc = sq_pragma_text(j->src, "PRAGMA journal_mode", j->journal_mode, sizeof j->journal_mode);
    if (rc != SQLITE_OK)
        return sq_fail_source(j, j->src, rc, "cannot read the database header");
    /* immutable=1 reads the file without its WAL machinery and says
     * "delete"; the database itself is in WAL mode. */
    if (j->immutable && j->header_wal)
        snprintf(j->journal_mode, sizeof j->journal_mode, "wal");
    return 0;
}

/* Release the snapshot and the source: in rollback mode, writers wait for
 * it, so this happens as soon as the pages are copied (or the file cloned).
 * lock_ms is how long that was, from the lock taken to its release. Our own
 * fd on the file (clone.c) is closed only after SQLite let go of it. */
void sq_close_source(struct job *j)
{
    bool held = j->in_snapshot && j->snapshot_start_ms > 0;
    if (j->in_snapshot && sq_exec(j->src, "COMMIT") != SQLITE_OK)
        log_debug("sqlite %s: ending the read transaction: %s", j->cfg->name,
                  sqlite3_errmsg(j->src));
    j->in_snapshot = false;
    if (held) {
        j->lock_ms = now_ms() - j->snapshot_start_ms;
        log_debug("sqlite %s: read transaction held %lld ms (%s)", j->cfg->name, j->lock_ms,
                  j->cloned ? "reflink" : "backup API");
    }
    if (j->src != NULL && sqlite3_close(j->src) != SQLITE_OK)
        log_warn("sqlite %s: closing %s: %s", j->cfg->name, j->path, sqlite3_errmsg(j->src));
    j->src = NULL;
    if (j->live_fd >= 0 && close(j->live_fd) != 0)
        log_debug("sqlite %s: closing %s: %s", j->cfg->name, j->path, strerror(errno));
    j->live_fd = -1;
}
