/* doctor's check of a [paths NAME] source. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/xalloc.h"
#include "../source.h"
#include "paths.h"

/* Is path there (or allowed to be missing) and readable, a directory
 * searchable too? Only the path itself is looked at, not its tree. errno
 * of the failure in *saved; true when it is fine. */
static bool path_readable(const struct source_cfg *s, const char *path, int *saved)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        *saved = errno;
        return (*saved == ENOENT || *saved == ENOTDIR) && s->missing_ok;
    }
    if (!S_ISLNK(st.st_mode) && access(path, S_ISDIR(st.st_mode) ? (R_OK | X_OK) : R_OK) != 0) {
        *saved = errno;
        return false;
    }
    return true;
}

/* Every path the stage would archive: the same list the stage makes. */
void paths_doctor(const struct source_cfg *s, struct probe *p)
{
    struct strvec all = {0};
    sc_err e = {0};
    if (pa_collect_paths(s, &all, &e) != 0) {
        probe_report(p, PROBE_FAIL, e.code, "%s", e.msg);
        strvec_free(&all);
        return;
    }
    size_t bad = 0;
    char first[1200] = "";
    for (size_t i = 0; i < all.n; i++) {
        int saved = 0;
        if (!path_readable(s, all.v[i], &saved) && bad++ == 0)
            snprintf(first, sizeof first, "%s: %s", all.v[i], strerror(saved));
    }
    if (bad > 0)
        probe_report(p, PROBE_FAIL, SC_ESOURCE,
                     "paths %s: %zu of %zu path%s not readable, first %s", s->name, bad, all.n,
                     all.n == 1 ? "" : "s", first);
    else
        probe_report(p, PROBE_OK, 0, "paths %s: %zu path%s readable", s->name, all.n,
                     all.n == 1 ? "" : "s");
    strvec_free(&all);
}
