/* doctor's check of a [sqlite NAME] source: the file is a SQLite database
 * that opens read-only, without creating anything next to it (no -wal or
 * -shm: a WAL database that no one has open is read with immutable=1). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/fs.h"
#include "../../core/xalloc.h"
#include "sqlite.h"

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
}
