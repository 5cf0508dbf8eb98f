/* doctor's check of a [sqlite NAME] source: the file is a SQLite database
 * that opens read-only, without creating anything next to it (no -wal or
 * -shm: a WAL database that no one has open is read with immutable=1); for a
 * rollback journal, whether the copy will be a reflink, or else how long
 * writers will wait for it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/fs.h"
#include "../../core/state.h"
#include "../../core/xalloc.h"
#include "sqlite.h"

/* The copy rate assumed when no earlier run measured one: the backup API's
 * ~1 GB/s (docs/performance.md). Above WAIT_WARN_MS of held writers, doctor
 * recommends WAL mode. */
#define DEFAULT_COPY_MB_PER_S 1000.0
#define WAIT_WARN_MS 5000.0

/* The 100-byte header: "SQLite format 3\0", and the file format bytes
 * (offsets 18, 19) that say 2 for WAL. */
static int sqlite_header(const char *path, bool *wal, char *why, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, n, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    unsigned char h[100];
    ssize_t got = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, h, sizeof h) : -2;
    close(fd);
    if (got == -2) {
        snprintf(why, n, "%s is not a regular file", path);
        return -1;
    }
    if (got < 0) {
        snprintf(why, n, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (got < (ssize_t)sizeof h || memcmp(h, "SQLite format 3", 16) != 0) {
        snprintf(why, n, "%s is not a SQLite database (no SQLite header)", path);
        return -1;
    }
    *wal = h[18] == 2 || h[19] == 2;
    return 0;
}

/* The staging directory, or its nearest existing parent (where it will be
 * created; a set's files are on that file system then). Owned. */
static char *existing_dir(const char *path)
{
    char *dir = xstrdup(path);
    struct stat st;
    while (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        char *slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir) {
            free(dir);
            return xstrdup(slash == dir ? "/" : ".");
        }
        *slash = '\0';
    }
    return dir;
}

/* Would sq_clone_live clone the database into the staging directory? Tried
 * for real, on the first block of the file, into an O_TMPFILE file: an inode
 * with no name that disappears at close, so nothing is left, and doctor still
 * creates no file anyone can see (statfs could tell the file system type,
 * not whether reflink=1 or whether the two share one file system). FICLONE
 * takes no SQLite lock; the kernel holds the file's own lock for the one
 * block. 1: yes; 0: no, why says; -1: cannot tell, why says. */
static int reflink_works(const char *db, const char *staging, char *why, size_t n)
{
    char *dir = existing_dir(staging);
    int src = open(db, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    int tmp = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    struct stat st;
    int ok = -1;
    if (src < 0 || tmp < 0 || fstat(src, &st) != 0) {
        snprintf(why, n, "cannot test a clone into %s: %s", dir, strerror(errno));
    } else {
        /* A whole block, or the whole of a smaller file (length 0: to EOF). */
        struct file_clone_range r = {
            .src_fd = src,
            .src_length = st.st_size >= st.st_blksize ? (unsigned long long)st.st_blksize : 0};
        int e = ioctl(tmp, FICLONERANGE, &r) == 0 ? 0 : errno;
        ok = e == 0 ? 1 : sq_clone_unsupported(e) ? 0 : -1;
        if (e == EXDEV)
            snprintf(why, n, "%s is on another file system than the database", dir);
        else if (ok == 0)
            snprintf(why, n, "the file system of %s cannot share extents (%s)", dir, strerror(e));
        else if (ok == -1)
            snprintf(why, n, "cannot test a clone into %s: %s", dir, strerror(e));
    }
    if (src >= 0)
        close(src);
    if (tmp >= 0)
        close(tmp);
    free(dir);
    return ok;
}

/* The backup API's rate on this database in the last run that used it
 * (state.json: last_run.stats.sources[]), in MB/s; 0 when there is none. */
static double last_copy_rate(const char *staging, const char *name)
{
    json_t *state = NULL;
    sc_err err = {0};
    double rate = 0;
    if (staging == NULL || state_load(staging, &state, &err) != 0)
        return 0;
    json_t *sources =
        json_object_get(json_object_get(json_object_get(state, "last_run"), "stats"), "sources");
    size_t i;
    json_t *src;
    json_array_foreach(sources, i, src)
    {
        const char *n = json_string_value(json_object_get(src, "name"));
        const char *m = json_string_value(json_object_get(src, "copy_method"));
        json_int_t bytes = json_integer_value(json_object_get(src, "bytes"));
        json_int_t ms = json_integer_value(json_object_get(src, "lock_ms"));
        if (n && m && strcmp(n, name) == 0 && strcmp(m, "backup_api") == 0 && bytes > 0 && ms > 0)
            rate = (double)bytes / (1024.0 * 1024.0) / ((double)ms / 1000.0);
    }
    json_decref(state);
    return rate;
}

/* A rollback-journal database holds its writers while it is copied: say
 * whether the copy will be a reflink (milliseconds) or the backup API, and
 * then for how long writers will wait. */
static void doctor_writer_wait(const struct source_cfg *s, struct probe *p)
{
    char why[1200];
    int works = -1;
    if (s->clone != NULL && strcmp(s->clone, "never") == 0)
        snprintf(why, sizeof why, "clone = never");
    else if (p->staging == NULL)
        snprintf(why, sizeof why, "no staging directory to test a clone into");
    else
        works = reflink_works(s->path, p->staging, why, sizeof why);
    if (works == 1) {
        probe_report(p, PROBE_OK, 0,
                     "sqlite %s copy: reflink clone into %s works: writers wait only for the clone "
                     "(milliseconds)",
                     s->name, p->staging);
        return;
    }
    struct stat st;
    double mb = stat(s->path, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0;
    double rate = last_copy_rate(p->staging, s->name);
    bool measured = rate > 0;
    if (!measured)
        rate = DEFAULT_COPY_MB_PER_S;
    double wait_ms = mb / rate * 1000.0;
    bool long_wait = wait_ms > WAIT_WARN_MS;
    probe_report(p, long_wait ? PROBE_WARN : PROBE_OK, 0,
                 "sqlite %s copy: backup API, no reflink (%s): writers wait about %.1f s for each "
                 "copy (%.0f MB at %.1f MB/s, %s)%s",
                 s->name, why, wait_ms / 1000.0, mb, rate,
                 measured ? "the last run's rate" : "an assumed rate",
                 long_wait ? "; switch the database to WAL mode (PRAGMA journal_mode=WAL) so that "
                             "writers carry on during the copy"
                           : "");
}

void sq_doctor(const struct source_cfg *s, struct probe *p)
{
    char why[1200];
    bool wal = false;
    if (sqlite_header(s->path, &wal, why, sizeof why) != 0) {
        probe_report(p, PROBE_FAIL, SC_ESOURCE, "sqlite %s: %s", s->name, why);
        return;
    }
    /* A reader of a WAL database creates -wal and -shm when they are
     * missing: with neither there, nothing is in the log, and the file
     * alone is read as it is (immutable=1: no lock, no side files). */
    char *walf = xasprintf("%s-wal", s->path);
    char *shmf = xasprintf("%s-shm", s->path);
    bool immutable = wal && (!fs_exists(walf) || !fs_exists(shmf));
    free(walf);
    free(shmf);
    sqlite3 *db = NULL;
    int rc;
    if (immutable) {
        char *escaped = sq_uri_escape_path(s->path);
        char *uri = xasprintf("file:%s?immutable=1", escaped);
        rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
        free(uri);
        free(escaped);
    } else {
        rc = sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY, NULL);
    }
    sqlite3_stmt *st = NULL;
    long long tables = -1;
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, s->busy_timeout_ms > 0 ? (int)s->busy_timeout_ms : 5000);
        rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'", -1,
                                &st, NULL);
    }
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        tables = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK)
        probe_report(p, PROBE_FAIL, SC_ESOURCE, "sqlite %s: %s: cannot read it: %s", s->name,
                     s->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    else
        probe_report(p, PROBE_OK, 0, "sqlite %s: %s opens read-only, %lld table%s, %s journal",
                     s->name, s->path, tables, tables == 1 ? "" : "s", wal ? "WAL" : "rollback");
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc == SQLITE_OK && !wal)
        doctor_writer_wait(s, p);
}
