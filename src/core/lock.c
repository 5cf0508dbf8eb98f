/* The run lock: flock(2) on STAGING/lock.
 *
 * An flock belongs to the open file, not to the process: it is free only
 * once every descriptor of that file is closed. restic children inherit
 * the lock's descriptor (lock_held_fd, spawn_opts.keep_fd), so a
 * stagecoach killed with SIGKILL (OOM killer, kill -9) leaves the lock
 * held by the restic it was running until that restic ends too. The next
 * run then stops with exit 8 instead of running a second restic beside the
 * orphan (two `restic init` at once leave a repository with two keys and
 * a config only one of them opens). */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fs.h"

static int held_fd = -1;

/* Exit 8: who holds path. The pid in the file is the run that took it; when
 * that process is gone, a child it started (restic) holds it still. */
static int busy(int f, const char *path, sc_err *err)
{
    char pid[32] = "";
    ssize_t n = pread(f, pid, sizeof pid - 1, 0);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    char *end = NULL;
    long p = strtol(pid, &end, 10);
    if (*pid && end && *end == '\0' && p > 0 && kill((pid_t)p, 0) != 0 && errno == ESRCH)
        return sc_fail(err, SC_ELOCKED,
                       "%s is still held by a restic that stagecoach pid %s started before it "
                       "was killed; runs start again once that restic has ended (`fuser -v %s` "
                       "shows it)",
                       path, pid, path);
    return sc_fail(err, SC_ELOCKED, "another stagecoach run holds %s%s%s%s", path,
                   *pid ? " (pid " : "", pid, *pid ? ")" : "");
}

int lock_take(const char *staging, int *fd, sc_err *err)
{
    *fd = -1;
    char *path = path_join(staging, "lock");
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f >= 0 && f < 3) { /* fds 0-2 closed by our parent: keep it above them */
        int moved = fcntl(f, F_DUPFD_CLOEXEC, 3);
        close(f);
        f = moved;
    }
    if (f < 0) {
        int rc = sc_fail_errno(err, SC_ESTAGING, "cannot open lock file %s", path);
        free(path);
        return rc;
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int rc;
        if (errno == EWOULDBLOCK)
            rc = busy(f, path, err);
        else
            rc = sc_fail_errno(err, SC_ESTAGING, "cannot lock %s", path);
        close(f);
        free(path);
        return rc;
    }
    /* The pid is only for the message above; the lock itself is the flock. */
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
        int rc = sc_fail_errno(err, SC_ESTAGING, "cannot write lock file %s", path);
        close(f);
        free(path);
        return rc;
    }
    free(path);
    *fd = f;
    held_fd = f;
    return 0;
}

int lock_held_fd(void)
{
    return held_fd;
}

void lock_release(int fd)
{
    if (fd >= 0) {
        if (fd == held_fd)
            held_fd = -1;
        close(fd);
    }
}
