/* The copy in the set: written by the Online Backup API from the read
 * transaction live.c opened, without SQLite's syncs, its write-out started
 * after every step; then made one self-contained file. */
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

/* ---- the copy ----------------------------------------------------------- */

int sq_open_destination(struct job *j, int flags)
{
    int rc = sqlite3_open_v2(j->dst_path, &j->dst, flags, NULL);
    if (rc != SQLITE_OK)
        return sq_fail_copy(j, rc, "cannot open");
    sqlite3_extended_result_codes(j->dst, 1);
    sqlite3_progress_handler(j->dst, STOP_CHECK_OPS, sq_stop_requested, NULL);
    return 0;
}

/* The copy is a new file in a set that any failure throws away, and
 * set_add_file fsyncs it before the set can be published: SQLite's own
 * syncs would make the disk write 1 GB before the check and the hash may
 * start (make bench: the copy took 1.4 s with them, 0.8 s without), and a
 * journal would protect nothing. no_journal is for the copy itself: a
 * journal_mode other than WAL is not stored in the file. */
int sq_write_unsynced(struct job *j, bool no_journal)
{
    char mode[16];
    int rc = sq_exec(j->dst, "PRAGMA synchronous=OFF");
    if (rc == SQLITE_OK && no_journal)
        rc = sq_pragma_text(j->dst, "PRAGMA journal_mode=OFF", mode, sizeof mode);
    if (rc != SQLITE_OK)
        return sq_fail_copy(j, rc, "cannot set up the copy");
    return 0;
}

/* The copy is created by us with mode 0600 before SQLite opens it (an empty
 * file is an empty database): private whatever the umask, and O_EXCL makes
 * sure nothing was there. A rollback-journal database is cloned into it
 * when the file system can (clone.c); then there are no pages to copy. */
int sq_create_destination(struct job *j)
{
    j->dst_path = set_file_path(j->set, j->relpath, j->err);
    if (j->dst_path == NULL)
        return j->err->code;
    j->dst_fd = open(j->dst_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (j->dst_fd < 0)
        return sc_fail_errno(j->err, SC_ESTAGING, "sqlite %s: cannot create %s", j->cfg->name,
                             j->dst_path);
    int rc = sq_clone_live(j);
    if (rc != 0 || j->cloned)
        return rc;
    rc = sq_open_destination(j, SQLITE_OPEN_READWRITE);
    if (rc == 0)
        rc = sq_write_unsynced(j, true);
    return rc;
}

int sq_close_destination(struct job *j)
{
    if (j->dst == NULL)
        return 0;
    int rc = sqlite3_close(j->dst);
    if (rc != SQLITE_OK) {
        rc = sq_fail_copy(j, rc, "cannot close");
        sqlite3_close_v2(j->dst); /* frees it once its statements are gone */
    }
    j->dst = NULL;
    return rc;
}

/* The copy is written without syncs (write_unsynced); left to itself the
 * kernel would hold all of it in memory and the final fsync would write it
 * while the hash waits. Starting the write-out after every step lets the
 * disk work on the other core during the copy (make bench: the hash and
 * fsync after the copy 1.8 s -> 1.2 s, docs/performance.md). Advisory: the
 * fsync in set_add_file reports what fails. Not for an encrypted set nor
 * for layout = pages: the copy is deleted once encrypted or packed, and
 * need never reach the disk (written out, it also made the page store's
 * first fsync wait for all of it: ext4 data=ordered, +0.18 s on 190 MB).
 * The fd is our own, opened before SQLite's and closed after SQLite closed
 * the copy: closing an fd drops every POSIX lock of the process on the
 * file, SQLite's included. */
static void start_write_out(const struct job *j)
{
    if (j->dst_fd >= 0 && set_key(j->set) == NULL && !j->as_pages)
        (void)sync_file_range(j->dst_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

static void show_progress(struct job *j, sqlite3_backup *b, long long *last)
{
    if (!log_progress_enabled())
        return;
    long long t = now_ms();
    if (t - *last < PROGRESS_EVERY_MS)
        return;
    *last = t;
    int total = sqlite3_backup_pagecount(b);
    int done = total - sqlite3_backup_remaining(b);
    double mb = (double)j->page_size / (1024.0 * 1024.0);
    log_progress("sqlite %s: %d/%d pages (%.1f/%.1f MB)", j->cfg->name, done, total, done * mb,
                 total * mb);
}

/* Step through the pages. BUSY/LOCKED are not fatal for backup_step (the
 * snapshot we hold should prevent them, but a lock on the destination or a
 * source in the middle of recovery can still answer BUSY): retry them for at
 * most busy_timeout_ms in a row. */
static int step_pages(struct job *j, sqlite3_backup *b)
{
    long long busy_since = 0, last_progress = 0;
    for (;;) {
        if (sc_stop_requested)
            return SQLITE_INTERRUPT;
        int rc = sqlite3_backup_step(b, (int)j->cfg->step_pages);
        show_progress(j, b, &last_progress);
        if (rc == SQLITE_DONE)
            return SQLITE_OK;
        if (rc == SQLITE_OK) {
            busy_since = 0;
            start_write_out(j);
            continue;
        }
        if (!sq_is_busy(rc))
            return rc;
        if (busy_since == 0)
            busy_since = now_ms();
        else if (now_ms() - busy_since > j->cfg->busy_timeout_ms)
            return rc;
        sqlite3_sleep(BUSY_SLEEP_MS);
    }
}

int sq_copy_pages(struct job *j)
{
    sqlite3_backup *b = sqlite3_backup_init(j->dst, "main", j->src, "main");
    if (b == NULL)
        return sq_fail_copy(j, sqlite3_extended_errcode(j->dst), "cannot start the backup");
    int rc = step_pages(j, b);
    /* finish exactly once: it ends the destination's write transaction
     * (rolling it back after a failure) and frees b. */
    int frc = sqlite3_backup_finish(b);
    log_progress_done();
    if (rc == SQLITE_OK)
        rc = frc;
    if (rc == SQLITE_OK)
        return 0;
    if ((rc & 0xff) == SQLITE_INTERRUPT)
        return sq_fail_interrupted(j);
    if (sq_is_copy_error(rc))
        return sq_fail_copy(j, rc, "cannot write the copy");
    return sq_fail_source(j, j->dst, rc, "cannot copy the pages");
}

/* A copy of a WAL database opens in WAL mode (page 1 is copied as it is).
 * Back to a rollback journal, so the staged copy is one file that needs no
 * -wal or -shm next to it. */
int sq_make_self_contained(struct job *j)
{
    char mode[16];
    int rc = sq_pragma_text(j->dst, "PRAGMA journal_mode", mode, sizeof mode);
    if (rc != SQLITE_OK)
        return sq_fail_copy(j, rc, "cannot read the copy");
    if (strcmp(mode, "wal") != 0)
        return 0;
    rc = sq_pragma_text(j->dst, "PRAGMA journal_mode=DELETE", mode, sizeof mode);
    if (rc != SQLITE_OK)
        return sq_fail_copy(j, rc, "cannot leave WAL mode");
    if (strcmp(mode, "delete") != 0)
        return sc_fail(j->err, SC_ESTAGING, "sqlite %s: %s: still in %s mode after switching",
                       j->cfg->name, j->dst_path, mode);
    return 0;
}
