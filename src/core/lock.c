#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fs.h"

int lock_take(const char *staging, int *fd, sc_err *err)
{
    *fd = -1;
    char *path = path_join(staging, "lock");
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) {
        int rc = sc_fail_errno(err, SC_ESTAGING, "cannot open lock file %s", path);
        free(path);
        return rc;
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int rc;
        if (errno == EWOULDBLOCK) {
            char pid[32] = "";
            ssize_t n = pread(f, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            rc = sc_fail(err, SC_ELOCKED, "another stagecoach run holds %s%s%s%s", path,
                         *pid ? " (pid " : "", pid, *pid ? ")" : "");
        } else {
            rc = sc_fail_errno(err, SC_ESTAGING, "cannot lock %s", path);
        }
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
    return 0;
}

void lock_release(int fd)
{
    if (fd >= 0)
        close(fd);
}
