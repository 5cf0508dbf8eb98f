/* The copy of a rollback-journal database as a reflink: inside the read
 * transaction live.c opened, the live file is cloned into the set with
 * ioctl(FICLONE) (XFS with reflink=1, btrfs), which shares its extents
 * instead of copying them: milliseconds per GB instead of ~1 s, and in
 * rollback mode a writer waits for exactly that long (the backup API makes it
 * wait for the whole copy).
 *
 * Why the clone is the database as of the transaction: our SHARED lock
 * stops every writer before it writes the file (a writer needs EXCLUSIVE for
 * that, also to spill its cache), and SQLite took the lock only after finding
 * no hot journal (a read-only connection cannot roll one back and fails with
 * READONLY_ROLLBACK: begin_read reports it, as without cloning). FICLONE
 * writes the source's dirty pages back before it shares the extents, so the
 * clone is what a read sees. WAL databases never come here: their last
 * commits live in the -wal file, and the backup API does not hold their
 * writers anyway. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/log.h"
#include "sqlite.h"

/* FICLONE's answers for "these two files cannot share extents here": another
 * file system (EXDEV), one without reflinks (EOPNOTSUPP: ext4, tmpfs; EINVAL:
 * XFS without reflink=1, unaligned ranges; ENOTTY, ENOSYS: no such ioctl),
 * a file the file system will not clone (EBADF: e.g. a special file).
 * Anything else (ENOSPC, EIO, EPERM) is a real failure of the staging side. */
bool sq_clone_unsupported(int e)
{
    return e == EXDEV || e == EOPNOTSUPP || e == ENOTSUP || e == EINVAL || e == ENOTTY ||
           e == ENOSYS || e == EBADF;
}

/* Whether this database may be cloned: rollback journal, read through
 * SQLite's locks (an immutable read takes none), not empty, not turned off. */
static bool clone_applies(const struct job *j)
{
    if (j->cfg->clone != NULL && strcmp(j->cfg->clone, "never") == 0)
        return false;
    return !j->header_wal && !j->immutable && strcmp(j->journal_mode, "wal") != 0 && j->pages > 0;
}

/* The clone holds the whole file; the database is page_count pages (what
 * the backup API would have copied). Bytes past them (a file that was never
 * truncated) are cut; fewer bytes than the header claims is not a copy we
 * trust: the backup API copies it instead (returns 1). */
static int fit_to_pages(struct job *j)
{
    struct stat st;
    off_t want = (off_t)(j->pages * j->page_size);
    if (fstat(j->dst_fd, &st) != 0)
        return sc_fail_errno(j->err, SC_ESTAGING, "sqlite %s: %s", j->cfg->name, j->dst_path);
    if (st.st_size == want)
        return 0;
    if (st.st_size > want && ftruncate(j->dst_fd, want) == 0)
        return 0;
    if (st.st_size > want)
        return sc_fail_errno(j->err, SC_ESTAGING, "sqlite %s: cannot truncate %s", j->cfg->name,
                             j->dst_path);
    log_debug("sqlite %s: %s holds %lld bytes, fewer than its %lld pages: not cloned", j->cfg->name,
              j->path, (long long)st.st_size, j->pages);
    if (ftruncate(j->dst_fd, 0) != 0)
        return sc_fail_errno(j->err, SC_ESTAGING, "sqlite %s: cannot truncate %s", j->cfg->name,
                             j->dst_path);
    return 1;
}

/* Called with the read transaction open and the empty copy created
 * (j->dst_fd), before SQLite opens the copy. On success j->cloned says
 * whether the copy is made; when it is not, the caller copies the pages.
 * The live file's fd stays open until sq_close_source, after SQLite let go
 * of the file: closing it earlier would drop SQLite's POSIX locks, ours
 * included (they belong to the process, not to the fd). */
int sq_clone_live(struct job *j)
{
    if (!clone_applies(j))
        return 0;
    j->live_fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (j->live_fd < 0)
        return sc_fail_errno(j->err, SC_ESOURCE, "sqlite %s: %s", j->cfg->name, j->path);
    if (ioctl(j->dst_fd, FICLONE, j->live_fd) != 0) {
        if (!sq_clone_unsupported(errno))
            return sc_fail_errno(j->err, SC_ESTAGING, "sqlite %s: cannot clone %s into %s",
                                 j->cfg->name, j->path, j->dst_path);
        log_debug("sqlite %s: no reflink from %s into %s (%s): copying through the backup API",
                  j->cfg->name, j->path, j->dst_path, strerror(errno));
        return 0;
    }
    int rc = fit_to_pages(j);
    if (rc == 1)
        return 0;
    j->cloned = rc == 0;
    return rc;
}
