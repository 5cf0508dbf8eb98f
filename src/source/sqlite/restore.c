/* restore --apply of a staged SQLite copy.
 *
 * The restored copy is checked first (integrity_check, and every table's
 * rows against the manifest). It is then copied next to the target, fsynced
 * and renamed over it, so the target is at every moment the old database or
 * the new one, never a part of either. The old file is kept as
 * <target>.pre-restore-<UTC time> through a hard link made before the
 * rename, and its -wal, -shm and -journal move with it: the new database
 * must never meet the old one's WAL, and the kept file stays openable. */
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

struct restore {
    const struct source_cfg *cfg;
    json_t *entry;
    sc_err *err;
    char *copy;   /* the verified plaintext in the restore directory */
    char *target; /* the database file to replace or create */
    char *kept;   /* <target>.pre-restore-<time>, once the old file is kept */
    char *tmp;    /* the new file before its rename */
    bool target_exists;
    struct stat target_st;
    size_t sidecars_moved;
};

static const char *const restore_sidecars[] = {"-wal", "-shm", "-journal"};
#define NSIDECARS (sizeof restore_sidecars / sizeof restore_sidecars[0])
#define RESTORE_COPY_CHUNK (1 << 20)

/* integrity_check, every row of it: "ok" alone, or the first problem. */
static int restored_integrity(struct restore *r, sqlite3 *db)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
    char first[512] = "";
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        sq_one_line_problem(first, sizeof first, v ? (const char *)v : "(null)");
        rc = strcmp(first, "ok") == 0 ? sqlite3_step(st) : SQLITE_ROW;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE && strcmp(first, "ok") == 0)
        return 0;
    if ((rc & 0xff) == SQLITE_INTERRUPT)
        return sc_fail(r->err, SC_EINTR, "sqlite %s: interrupted", r->cfg->name);
    return sc_fail(r->err, SC_EVERIFY,
                   "sqlite %s: %s: integrity_check failed on the restored copy: %s", r->cfg->name,
                   r->copy, rc == SQLITE_ROW ? first : sqlite3_errmsg(db));
}

/* Every ordinary table of the copy has the manifest's row count, and the
 * manifest names no table the copy lacks. */
static int restored_counts(struct restore *r, sqlite3 *db)
{
    json_t *want = json_object_get(r->entry, "tables");
    if (!json_is_object(want))
        return sc_fail(r->err, SC_EVERIFY, "sqlite %s: the manifest has no table counts",
                       r->cfg->name);
    struct job j = {.cfg = r->cfg, .dst = db, .err = r->err};
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sq_ordinary_tables_sql, -1, &st, NULL);
    size_t seen = 0;
    int bad = 0;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        if ((rc = sqlite3_step(st)) != SQLITE_ROW)
            break;
        const char *name = (const char *)sqlite3_column_text(st, 0);
        long long rows = 0;
        json_t *w = name ? json_object_get(want, name) : NULL;
        if (name == NULL || (rc = sq_count_table(&j, name, &rows)) != SQLITE_OK)
            break;
        rc = SQLITE_ROW;
        seen += w != NULL;
        if (w == NULL)
            bad = sc_fail(r->err, SC_EVERIFY, "sqlite %s: table %s is not in the manifest",
                          r->cfg->name, name);
        else if (json_integer_value(w) != rows)
            bad = sc_fail(r->err, SC_EVERIFY,
                          "sqlite %s: table %s has %lld rows, the manifest says %lld", r->cfg->name,
                          name, rows, (long long)json_integer_value(w));
        if (bad)
            break;
    }
    sqlite3_finalize(st);
    if (bad)
        return bad;
    if (rc != SQLITE_DONE)
        return sc_fail(r->err, SC_EVERIFY, "sqlite %s: cannot count the rows of %s: %s",
                       r->cfg->name, r->copy, sqlite3_errmsg(db));
    if (seen != json_object_size(want))
        return sc_fail(r->err, SC_EVERIFY,
                       "sqlite %s: the restored copy lacks %zu table(s) the manifest lists",
                       r->cfg->name, json_object_size(want) - seen);
    return 0;
}

static int check_restored_copy(struct restore *r)
{
    if (!fs_exists(r->copy))
        return sc_fail(r->err, SC_EVERIFY, "sqlite %s: %s is missing from the restored set",
                       r->cfg->name, r->copy);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(r->copy, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        rc = sc_fail(r->err, SC_EVERIFY, "sqlite %s: %s: %s", r->cfg->name, r->copy,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return rc;
    }
    sqlite3_progress_handler(db, STOP_CHECK_OPS, sq_stop_requested, NULL);
    log_progress("sqlite %s: checking the restored copy", r->cfg->name);
    rc = restored_integrity(r, db);
    if (rc == 0)
        rc = restored_counts(r, db);
    log_progress_done();
    sqlite3_close(db);
    return rc;
}

int sq_check_copy(const char *name, const char *copy, json_t *entry, sc_err *err)
{
    struct source_cfg cfg = {.name = (char *)name};
    struct restore r = {.cfg = &cfg, .entry = entry, .err = err, .copy = (char *)copy};
    return check_restored_copy(&r);
}

/* The configured path, or --into: a file, or a directory to put it in. */
static char *restore_target(const struct source_cfg *src, const char *into)
{
    if (into == NULL)
        return xstrdup(src->path);
    struct stat st;
    if (stat(into, &st) == 0 && S_ISDIR(st.st_mode)) {
        const char *base = strrchr(src->path, '/');
        return path_join(into, base ? base + 1 : src->path);
    }
    return xstrdup(into);
}

/* A writer that holds a lock would go on writing to the old file after the
 * rename, and its work would be lost. An idle connection holds no lock and
 * cannot be seen from here: docs/restore.md says to stop the service first.
 * Other errors (a corrupt or foreign file) do not matter: it is replaced.
 * The probe must not change the old file: no checkpoint when it closes, so
 * a WAL left by a crashed writer is kept, with the file, as it was. */
static int check_not_in_use(struct restore *r)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(r->target, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    if (rc == SQLITE_OK)
        rc = sq_exec(db, "BEGIN IMMEDIATE");
    bool busy = sq_is_busy(rc);
    if (rc == SQLITE_OK && sq_exec(db, "ROLLBACK") != SQLITE_OK)
        log_debug("sqlite %s: %s", r->cfg->name, sqlite3_errmsg(db));
    sqlite3_close_v2(db);
    if (busy)
        return sc_fail(r->err, SC_ESOURCE,
                       "sqlite %s: %s is in use (another process holds a lock): stop the "
                       "service first",
                       r->cfg->name, r->target);
    return 0;
}

static int check_target(struct restore *r, bool force)
{
    if (lstat(r->target, &r->target_st) != 0) {
        if (errno != ENOENT)
            return sc_fail_errno(r->err, SC_ESTAGING, "sqlite %s: %s", r->cfg->name, r->target);
        char *dir = xstrdup(r->target), *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        struct stat st;
        int rc = 0;
        if (slash && dir[0] && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
            rc = sc_fail(r->err, SC_EUSAGE, "sqlite %s: directory %s does not exist", r->cfg->name,
                         dir);
        free(dir);
        return rc;
    }
    if (!S_ISREG(r->target_st.st_mode))
        return sc_fail(r->err, SC_EUSAGE, "sqlite %s: %s is not a regular file", r->cfg->name,
                       r->target);
    r->target_exists = true;
    if (!force)
        return sc_fail(r->err, SC_EUSAGE,
                       "sqlite %s: %s exists; --force replaces it (the old file is kept as "
                       "%s.pre-restore-<time>)",
                       r->cfg->name, r->target, r->target);
    return check_not_in_use(r);
}

static int copy_fd(struct restore *r, int in, int out)
{
    unsigned char *buf = xmalloc(RESTORE_COPY_CHUNK);
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, RESTORE_COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = sc_fail_errno(r->err, SC_ESTAGING, "cannot read %s", r->copy);
        if (n <= 0)
            break;
        if (fs_write_all(out, buf, (size_t)n) != 0) {
            rc = sc_fail_errno(r->err, SC_ESTAGING, "cannot write %s", r->tmp);
            break;
        }
        if (sc_stop_requested) {
            rc = sc_fail(r->err, SC_EINTR, "sqlite %s: interrupted", r->cfg->name);
            break;
        }
    }
    free(buf);
    return rc;
}

/* The new file takes the old one's mode and owner, so the service can
 * open it; a new target stays 0600. */
static void match_old_file(struct restore *r, int fd)
{
    if (!r->target_exists)
        return;
    if (fchmod(fd, r->target_st.st_mode & 07777) != 0)
        log_warn("sqlite %s: cannot set the mode of %s: %s", r->cfg->name, r->target,
                 strerror(errno));
    if ((r->target_st.st_uid != geteuid() || r->target_st.st_gid != getegid()) &&
        fchown(fd, r->target_st.st_uid, r->target_st.st_gid) != 0)
        log_warn("sqlite %s: cannot give %s its old owner %u:%u: %s", r->cfg->name, r->target,
                 (unsigned)r->target_st.st_uid, (unsigned)r->target_st.st_gid, strerror(errno));
}

/* The new database, complete and fsynced, under a temporary name next to
 * the target (same file system, so the rename is atomic). */
static int write_new_file(struct restore *r)
{
    r->tmp = xasprintf("%s.restore-XXXXXX", r->target);
    int out = mkostemp(r->tmp, O_CLOEXEC);
    if (out < 0) {
        int rc =
            sc_fail_errno(r->err, SC_ESTAGING, "sqlite %s: cannot create %s", r->cfg->name, r->tmp);
        free(r->tmp);
        r->tmp = NULL;
        return rc;
    }
    int in = open(r->copy, O_RDONLY | O_CLOEXEC);
    int rc = in < 0 ? sc_fail_errno(r->err, SC_ESTAGING, "cannot read %s", r->copy)
                    : copy_fd(r, in, out);
    if (in >= 0)
        close(in);
    if (rc == 0)
        match_old_file(r, out);
    if (rc == 0 && fsync(out) != 0)
        rc = sc_fail_errno(r->err, SC_ESTAGING, "cannot fsync %s", r->tmp);
    if (close(out) != 0 && rc == 0)
        rc = sc_fail_errno(r->err, SC_ESTAGING, "cannot write %s", r->tmp);
    return rc;
}

/* The staged copy was switched to a rollback journal to be one file; a
 * database that was in WAL mode goes back to WAL mode (it is recorded in
 * the file, and the service may rely on it). SQLite removes the -wal and
 * -shm it makes on the last close; the file is then fsynced again. */
static int restore_journal_mode(struct restore *r)
{
    const char *mode = json_string_value(json_object_get(r->entry, "journal_mode"));
    if (mode == NULL || strcmp(mode, "wal") != 0 || r->tmp == NULL)
        return 0;
    sqlite3 *db = NULL;
    char got[16] = "";
    int rc = sqlite3_open_v2(r->tmp, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sq_pragma_text(db, "PRAGMA journal_mode=WAL", got, sizeof got);
    if (rc == SQLITE_OK && strcmp(got, "wal") != 0)
        rc = SQLITE_ERROR;
    int crc = sqlite3_close(db);
    if (rc != SQLITE_OK || crc != SQLITE_OK)
        return sc_fail(r->err, SC_ESTAGING, "sqlite %s: %s: cannot switch back to WAL mode: %s",
                       r->cfg->name, r->tmp, sqlite3_errstr(rc != SQLITE_OK ? rc : crc));
    int fd = open(r->tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        rc = sc_fail_errno(r->err, SC_ESTAGING, "cannot fsync %s", r->tmp);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* <target>.pre-restore-<UTC time>[-N], a name not taken yet. */
static char *kept_name(const char *target)
{
    char stamp[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    char *name = xasprintf("%s.pre-restore-%s", target, stamp);
    for (int n = 2; fs_exists(name) && n < 1000; n++) {
        free(name);
        name = xasprintf("%s.pre-restore-%s-%d", target, stamp, n);
    }
    return name;
}

/* Put the sidecars moved so far back (after a failure). */
static void unmove_sidecars(struct restore *r)
{
    size_t n = sizeof restore_sidecars / sizeof restore_sidecars[0];
    for (size_t i = 0; i < r->sidecars_moved && i < n; i++) {
        char *from = xasprintf("%s%s", r->kept, restore_sidecars[i]);
        char *to = xasprintf("%s%s", r->target, restore_sidecars[i]);
        if (fs_exists(from) && rename(from, to) != 0)
            log_warn("cannot move %s back to %s: %s", from, to, strerror(errno));
        free(from);
        free(to);
    }
    r->sidecars_moved = 0;
}

/* A second name for the old file (the target keeps pointing at it until
 * the rename), and its -wal, -shm and -journal moved to match. */
static int keep_old_file(struct restore *r)
{
    r->kept = kept_name(r->target);
    if (link(r->target, r->kept) != 0)
        return sc_fail_errno(r->err, SC_ESTAGING, "sqlite %s: cannot keep the old file as %s",
                             r->cfg->name, r->kept);
    for (size_t i = 0; i < NSIDECARS; i++) {
        char *from = xasprintf("%s%s", r->target, restore_sidecars[i]);
        char *to = xasprintf("%s%s", r->kept, restore_sidecars[i]);
        int rc = 0;
        if (fs_exists(from) && rename(from, to) != 0)
            rc = sc_fail_errno(r->err, SC_ESTAGING, "sqlite %s: cannot move %s aside", r->cfg->name,
                               from);
        free(from);
        free(to);
        if (rc != 0)
            return rc;
        r->sidecars_moved = i + 1;
    }
    return 0;
}

static int install_new_file(struct restore *r)
{
    int rc = write_new_file(r);
    if (rc == 0)
        rc = restore_journal_mode(r);
    if (rc == 0 && r->target_exists)
        rc = keep_old_file(r);
    if (rc == 0 && rename(r->tmp, r->target) != 0)
        rc = sc_fail_errno(r->err, SC_ESTAGING, "sqlite %s: cannot rename %s to %s", r->cfg->name,
                           r->tmp, r->target);
    if (rc != 0) {
        /* The target still is the old file: undo what was moved. */
        unmove_sidecars(r);
        if (r->kept != NULL && fs_exists(r->kept) && unlink(r->kept) != 0)
            log_warn("cannot remove %s: %s", r->kept, strerror(errno));
        if (r->tmp != NULL)
            unlink(r->tmp);
        return rc;
    }
    char *dir = xstrdup(r->target), *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    rc = fs_fsync_dir(slash ? dir : ".", r->err);
    free(dir);
    return rc;
}

int sq_restore(const struct source_cfg *src, const char *setdir, json_t *entry, const char *into,
               bool force, sc_err *err)
{
    struct restore r = {.cfg = src, .entry = entry, .err = err};
    char *rel = xasprintf("sqlite/%s.db", src->name);
    r.copy = path_join(setdir, rel);
    r.target = restore_target(src, into);
    /* layout = pages: sq_pages_unpack rebuilt this file and ran the same checks */
    const char *checked = json_string_value(json_object_get(entry, SQ_REBUILT_CHECKED));
    int rc = checked != NULL && strcmp(checked, r.copy) == 0 ? 0 : check_restored_copy(&r);
    if (rc == 0)
        rc = check_target(&r, force);
    if (rc == 0)
        rc = install_new_file(&r);
    if (rc == 0 && r.kept)
        log_info("sqlite %s: restored %s; the old file is kept as %s", src->name, r.target, r.kept);
    else if (rc == 0)
        log_info("sqlite %s: restored %s (mode 0600: give it the owner and mode the service "
                 "needs)",
                 src->name, r.target);
    if (rc == 0) {
        json_object_set_new(entry, "restored_to", json_string(r.target));
        if (r.kept)
            json_object_set_new(entry, "kept_old_as", json_string(r.kept));
    }
    free(rel);
    free(r.copy);
    free(r.target);
    free(r.kept);
    free(r.tmp);
    return rc;
}
