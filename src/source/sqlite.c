/* [sqlite NAME]: a consistent copy of a live SQLite database through the
 * Online Backup API, written to sqlite/<NAME>.db in the set.
 *
 * Consistency without restarts: a backup step copies pages under a read
 * transaction of its own, and a write by any other connection between two
 * steps makes the next step start again from page 1; under a busy tracker
 * that never finishes (the 17 GB case of the research). We therefore open a
 * read transaction on the source connection first; backup_step then reuses
 * it, so every step reads one snapshot and nothing restarts. In WAL mode
 * writers carry on meanwhile; in rollback mode their commits wait for us,
 * which is the price of a consistent copy there (tech-facts §6).
 *
 * The copy is then switched out of WAL mode so that it is one
 * self-contained file, checked (quick_check or integrity_check), its tables
 * counted, and hashed into the manifest.
 *
 * The live file is opened read-only and never created. A WAL database
 * that no one has open, in a directory we cannot write (the POC's :ro
 * mount), is read with immutable=1; see immutable_fallback_applies. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/fs.h"
#include "../core/log.h"
#include "../core/spawn.h"
#include "../core/thread.h"
#include "../core/xalloc.h"
#include "../stage/set.h"
#include "source.h"

/* Every SQLite file starts with these 16 bytes, in a 100-byte header. */
#define SQLITE_MAGIC "SQLite format 3"
#define SQLITE_HEADER_SIZE 100

/* How long to sleep between retries of a busy step (ms). */
#define BUSY_SLEEP_MS 20
/* How often to redraw the progress line (ms). */
#define PROGRESS_EVERY_MS 250
/* SQLite VM instructions between two looks at sc_stop_requested. */
#define STOP_CHECK_OPS 100000

/* A step of 0 pages copies nothing and would never finish. */
static const char *check_positive(const char *value)
{
    return (isdigit((unsigned char)value[0]) && strtol(value, NULL, 10) < 1) ? "must be at least 1"
                                                                             : NULL;
}

static const struct cfg_key sqlite_keys[] = {
    {"path", CFG_PATH, offsetof(struct source_cfg, path), false, NULL},
    {"check", CFG_CHECK_LEVEL, offsetof(struct source_cfg, check), false, NULL},
    {"busy_timeout_ms", CFG_INT, offsetof(struct source_cfg, busy_timeout_ms), false, NULL},
    {"step_pages", CFG_INT, offsetof(struct source_cfg, step_pages), false, check_positive},
    {NULL, 0, 0, false, NULL},
};

/* Everything one staging of one database needs. */
struct job {
    const struct source_cfg *cfg;
    const char *path; /* the live database */
    struct set *set;
    json_t *entry;
    sc_err *err;
    char *relpath;  /* sqlite/<name>.db */
    char *dst_path; /* its absolute path in the set being built */
    int dst_fd;     /* ours, on the copy, during the copy: see start_write_out */
    sqlite3 *src, *dst;
    bool in_snapshot; /* the read transaction on src is open */
    bool header_wal;  /* the file's header says WAL mode */
    bool immutable;   /* read with immutable=1 (see immutable_fallback_applies) */
    long long page_size, pages;
    char journal_mode[16];
    long long busy_deadline_ms; /* when the current lock wait gives up */
};

static int sqlite_validate(const struct source_cfg *src, struct config_problems *probs,
                           const char *file)
{
    char section[128];
    snprintf(section, sizeof section, "sqlite %s", src->name);
    int bad = 0;
    if (src->path == NULL) {
        config_problem(probs, file, src->line, section, "path",
                       "missing: the database file to back up");
        bad = 1;
    }
    /* A step of 0 pages copies nothing and would never finish. */
    if (src->step_pages < 1) {
        config_problem(probs, file, src->line, section, "step_pages", "must be at least 1");
        bad = 1;
    }
    return bad;
}

/* Progress handler: a long query (integrity_check of a big copy, counting a
 * big table) ends with SQLITE_INTERRUPT when a stop was requested. */
static int stop_requested(void *unused)
{
    (void)unused;
    return sc_stop_requested != 0;
}

static bool is_busy(int rc)
{
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* ---- failures ---------------------------------------------------------- */

static int fail_interrupted(struct job *j)
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
static int fail_source(struct job *j, sqlite3 *db, int rc, const char *what)
{
    const char *name = j->cfg->name, *msg = why(db, rc);
    switch (rc & 0xff) {
    case SQLITE_INTERRUPT:
        return fail_interrupted(j);
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
            return fail_interrupted(j);
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
static int fail_copy(struct job *j, int rc, const char *what)
{
    switch (rc & 0xff) {
    case SQLITE_INTERRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return fail_source(j, j->dst, rc, what);
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
static bool is_copy_error(int rc)
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

/* ---- the live database -------------------------------------------------- */

/* Look at the file before SQLite does: a missing file must never be created,
 * and "not a database" reads better from its first bytes than from the
 * first query. (Opening and closing a plain fd here is safe: SQLite holds no
 * POSIX lock on the file yet.) */
static int check_source_file(struct job *j)
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
static char *uri_escape_path(const char *path)
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
        char *escaped = uri_escape_path(j->path);
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
    sqlite3_progress_handler(j->src, STOP_CHECK_OPS, stop_requested, NULL);
    return SQLITE_OK;
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Open the read transaction every backup step will reuse. BEGIN alone takes
 * no lock; the first read does. The busy handler waits for a lock, but some
 * BUSY results (WAL recovery by another process) bypass it, so retry here
 * too, within the same busy timeout. Returns an SQLite result code. */
static int begin_read(struct job *j)
{
    int rc = exec(j->src, "BEGIN");
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
        if (!is_busy(rc) || now_ms() >= deadline || sc_stop_requested)
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

static void close_source(struct job *j);

static int begin_snapshot(struct job *j)
{
    int rc = open_source(j, false);
    if (rc == SQLITE_OK)
        rc = begin_read(j);
    if (rc != SQLITE_OK && immutable_fallback_applies(j, rc)) {
        close_source(j);
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
        return fail_source(j, j->src, rc, "cannot read");
    return 0;
}

/* After an immutable read: had a writer opened the database meanwhile, its
 * changes could have reached the main file under us. */
static int check_no_writer_appeared(struct job *j)
{
    if (!j->immutable || !wal_files_exist(j))
        return 0;
    return sc_fail(j->err, SC_ESOURCE,
                   "sqlite %s: %s: a writer opened the database during the copy; run again",
                   j->cfg->name, j->path);
}

/* Run a PRAGMA that returns one value; copy it as text. */
static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t n)
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

static int pragma_int(sqlite3 *db, const char *sql, long long *out)
{
    char text[32];
    int rc = pragma_text(db, sql, text, sizeof text);
    if (rc == SQLITE_OK)
        *out = strtoll(text, NULL, 10);
    return rc;
}

/* Inside the snapshot, so page_count is what the backup will copy. */
static int read_source_facts(struct job *j)
{
    int rc = pragma_int(j->src, "PRAGMA page_size", &j->page_size);
    if (rc == SQLITE_OK)
        rc = pragma_int(j->src, "PRAGMA page_count", &j->pages);
    if (rc == SQLITE_OK)
        rc = pragma_text(j->src, "PRAGMA journal_mode", j->journal_mode, sizeof j->journal_mode);
    if (rc != SQLITE_OK)
        return fail_source(j, j->src, rc, "cannot read the database header");
    /* immutable=1 reads the file without its WAL machinery and says
     * "delete"; the database itself is in WAL mode. */
    if (j->immutable && j->header_wal)
        snprintf(j->journal_mode, sizeof j->journal_mode, "wal");
    return 0;
}

/* Release the snapshot and the source: in rollback mode, writers wait for
 * it, so this happens as soon as the pages are copied. */
static void close_source(struct job *j)
{
    if (j->in_snapshot && exec(j->src, "COMMIT") != SQLITE_OK)
        log_debug("sqlite %s: ending the read transaction: %s", j->cfg->name,
                  sqlite3_errmsg(j->src));
    j->in_snapshot = false;
    if (j->src != NULL && sqlite3_close(j->src) != SQLITE_OK)
        log_warn("sqlite %s: closing %s: %s", j->cfg->name, j->path, sqlite3_errmsg(j->src));
    j->src = NULL;
}

/* ---- the copy ----------------------------------------------------------- */

static int open_destination(struct job *j, int flags)
{
    int rc = sqlite3_open_v2(j->dst_path, &j->dst, flags, NULL);
    if (rc != SQLITE_OK)
        return fail_copy(j, rc, "cannot open");
    sqlite3_extended_result_codes(j->dst, 1);
    sqlite3_progress_handler(j->dst, STOP_CHECK_OPS, stop_requested, NULL);
    return 0;
}

/* The copy is a new file in a set that any failure throws away, and
 * set_add_file fsyncs it before the set can be published: SQLite's own
 * syncs would make the disk write 1 GB before the check and the hash may
 * start (make bench: the copy took 1.4 s with them, 0.8 s without), and a
 * journal would protect nothing. no_journal is for the copy itself: a
 * journal_mode other than WAL is not stored in the file. */
static int write_unsynced(struct job *j, bool no_journal)
{
    char mode[16];
    int rc = exec(j->dst, "PRAGMA synchronous=OFF");
    if (rc == SQLITE_OK && no_journal)
        rc = pragma_text(j->dst, "PRAGMA journal_mode=OFF", mode, sizeof mode);
    if (rc != SQLITE_OK)
        return fail_copy(j, rc, "cannot set up the copy");
    return 0;
}

/* The copy is created by us with mode 0600 before SQLite opens it (an empty
 * file is an empty database): private whatever the umask, and O_EXCL makes
 * sure nothing was there. */
static int create_destination(struct job *j)
{
    j->dst_path = set_file_path(j->set, j->relpath, j->err);
    if (j->dst_path == NULL)
        return j->err->code;
    j->dst_fd = open(j->dst_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (j->dst_fd < 0)
        return sc_fail_errno(j->err, SC_ESTAGING, "sqlite %s: cannot create %s", j->cfg->name,
                             j->dst_path);
    int rc = open_destination(j, SQLITE_OPEN_READWRITE);
    if (rc == 0)
        rc = write_unsynced(j, true);
    return rc;
}

static int close_destination(struct job *j)
{
    if (j->dst == NULL)
        return 0;
    int rc = sqlite3_close(j->dst);
    if (rc != SQLITE_OK) {
        rc = fail_copy(j, rc, "cannot close");
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
 * fsync in set_add_file reports what fails. Not for an encrypted set: its
 * plaintext copy is deleted once encrypted, and need never reach the disk.
 * The fd is our own, opened before SQLite's and closed after SQLite closed
 * the copy: closing an fd drops every POSIX lock of the process on the
 * file, SQLite's included. */
static void start_write_out(const struct job *j)
{
    if (j->dst_fd >= 0 && set_key(j->set) == NULL)
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
        if (!is_busy(rc))
            return rc;
        if (busy_since == 0)
            busy_since = now_ms();
        else if (now_ms() - busy_since > j->cfg->busy_timeout_ms)
            return rc;
        sqlite3_sleep(BUSY_SLEEP_MS);
    }
}

static int copy_pages(struct job *j)
{
    sqlite3_backup *b = sqlite3_backup_init(j->dst, "main", j->src, "main");
    if (b == NULL)
        return fail_copy(j, sqlite3_extended_errcode(j->dst), "cannot start the backup");
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
        return fail_interrupted(j);
    if (is_copy_error(rc))
        return fail_copy(j, rc, "cannot write the copy");
    return fail_source(j, j->dst, rc, "cannot copy the pages");
}

/* A copy of a WAL database opens in WAL mode (page 1 is copied as it is).
 * Back to a rollback journal, so the staged copy is one file that needs no
 * -wal or -shm next to it. */
static int make_self_contained(struct job *j)
{
    char mode[16];
    int rc = pragma_text(j->dst, "PRAGMA journal_mode", mode, sizeof mode);
    if (rc != SQLITE_OK)
        return fail_copy(j, rc, "cannot read the copy");
    if (strcmp(mode, "wal") != 0)
        return 0;
    rc = pragma_text(j->dst, "PRAGMA journal_mode=DELETE", mode, sizeof mode);
    if (rc != SQLITE_OK)
        return fail_copy(j, rc, "cannot leave WAL mode");
    if (strcmp(mode, "delete") != 0)
        return sc_fail(j->err, SC_ESTAGING, "sqlite %s: %s: still in %s mode after switching",
                       j->cfg->name, j->dst_path, mode);
    return 0;
}

/* The first problem an integrity check reports, on one line: SQLite puts
 * "*** in database main ***" and a newline before it. */
static void one_line_problem(char *out, size_t n, const char *text)
{
    static const char prefix[] = "*** in database main ***";
    if (strncmp(text, prefix, sizeof prefix - 1) == 0)
        text += sizeof prefix - 1;
    while (*text == '\n' || *text == ' ')
        text++;
    snprintf(out, n, "%s", text);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* quick_check / integrity_check answer one row "ok", or one row per problem. */
static int check_copy(struct job *j)
{
    bool full = j->cfg->check == CHECK_INTEGRITY;
    const char *pragma = full ? "integrity_check" : "quick_check";
    const char *sql = full ? "PRAGMA integrity_check" : "PRAGMA quick_check";
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->dst, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail_copy(j, rc, pragma);
    char first[512] = "";
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        one_line_problem(first, sizeof first, v ? (const char *)v : "(null)");
        rc = strcmp(first, "ok") == 0 ? sqlite3_step(st) : SQLITE_ROW;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return sc_fail(j->err, SC_ESOURCE, "sqlite %s: %s: %s failed on the copy: %s", j->cfg->name,
                       j->path, pragma, first);
    if (rc != SQLITE_DONE || strcmp(first, "ok") != 0)
        return fail_copy(j, rc, pragma);
    json_object_set_new(j->entry, "check", json_string(pragma));
    json_object_set_new(j->entry, "check_result", json_string("ok"));
    return 0;
}

static int count_table(struct job *j, const char *table, long long *rows)
{
    /* %w doubles the quotes inside: any table name is a safe identifier. */
    char *sql = sqlite3_mprintf("SELECT count(*) FROM \"%w\"", table);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->dst, sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *rows = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
    }
    return rc;
}

/* Rows of every ordinary table. SQLite's own tables (sqlite_sequence, ...)
 * are left out, and so are virtual tables: counting one needs its module,
 * and their rows live in shadow tables that are counted anyway. */
static const char ordinary_tables_sql[] =
    "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_' "
    "AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name";

static int count_rows(struct job *j)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->dst, ordinary_tables_sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail_copy(j, rc, "cannot list the tables of the copy");
    json_t *tables = json_object();
    long long total = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        long long rows = 0;
        if (name == NULL)
            continue;
        if ((rc = count_table(j, name, &rows)) != SQLITE_OK)
            break;
        total += rows;
        if (json_object_set_new(tables, name, json_integer(rows)) != 0)
            source_warn(j->entry,
                        "a table name is not valid UTF-8; its %lld rows are counted in "
                        "rows_total only",
                        rows);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(tables);
        return fail_copy(j, rc, "cannot count the rows of the copy");
    }
    json_object_set_new(j->entry, "tables", tables);
    json_object_set_new(j->entry, "rows_total", json_integer(total));
    return 0;
}

/* After the last close nothing may be left next to the copy: the set must
 * hold exactly the files its manifest lists. */
static int check_no_sidecars(struct job *j)
{
    static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char *p = xasprintf("%s%s", j->dst_path, suffixes[i]);
        bool there = fs_exists(p);
        free(p);
        if (there)
            return sc_fail(j->err, SC_ESTAGING, "sqlite %s: %s%s was left behind in the set",
                           j->cfg->name, j->dst_path, suffixes[i]);
    }
    return 0;
}

/* The check and the row counts run on a thread of their own while the main
 * thread hashes (or encrypts) the copy into the set: all three only read
 * the finished file, and the hash, the longest (BLAKE2b at ~800 MB/s), then
 * no longer waits for the check (make bench, 1.1 GB, with the unsynced
 * copy: 3.4 s -> 2.2 s, docs/performance.md). The thread works on a copy
 * of the job with its own manifest entry and error, merged after the join;
 * the copy's SQLite connection is the thread's alone until then. */
struct checker {
    struct job job;
    sc_err err;
    pthread_t tid;
    bool threaded;
    int rc;
};

static int check_and_count(struct job *j)
{
    int rc = check_copy(j);
    if (rc == 0)
        rc = count_rows(j);
    return rc;
}

static void *checker_main(void *arg)
{
    struct checker *c = arg;
    c->rc = check_and_count(&c->job);
    return NULL;
}

static void checker_start(struct checker *c, const struct job *j)
{
    memset(c, 0, sizeof *c);
    c->job = *j;
    c->job.entry = json_object();
    c->job.err = &c->err;
    /* Without a thread the check runs in checker_join, after the hash. */
    c->threaded = thread_start_quiet(&c->tid, checker_main, c) == 0;
}

/* Wait for the check; its findings go into the real entry (warnings
 * appended to those already there) and its failure into the job's error. */
static int checker_join(struct checker *c, struct job *j)
{
    if (c->threaded)
        pthread_join(c->tid, NULL);
    else
        c->rc = check_and_count(&c->job);
    const char *key;
    json_t *value;
    json_object_foreach(c->job.entry, key, value)
    {
        if (strcmp(key, "warnings") != 0) {
            json_object_set(j->entry, key, value);
            continue;
        }
        size_t i;
        json_t *w;
        json_array_foreach(value, i, w) source_warn(j->entry, "%s", json_string_value(w));
    }
    json_decref(c->job.entry);
    if (c->rc != 0)
        *j->err = c->err;
    return c->rc;
}

/* Reopen the finished copy the way a restore would and make it
 * self-contained; then check it and count its rows while it is hashed into
 * the set. A failed check fails the stage even when the hash succeeded (the
 * set is then thrown away); it is the error reported, being about the data. */
static int verify_and_add(struct job *j)
{
    int rc = open_destination(j, SQLITE_OPEN_READWRITE);
    if (rc == 0)
        rc = write_unsynced(j, false);
    if (rc == 0)
        rc = make_self_contained(j);
    if (rc == 0) {
        /* Both passes read the whole copy: minutes on a big database. */
        log_progress("sqlite %s: checking and hashing the copy", j->cfg->name);
        struct checker c;
        checker_start(&c, j);
        sc_err add_err = {0};
        int arc = set_add_file(j->set, j->relpath, &add_err);
        rc = checker_join(&c, j);
        log_progress_done();
        if (rc == 0 && arc != 0) {
            *j->err = add_err;
            rc = arc;
        }
    }
    int crc = close_destination(j);
    if (rc == 0)
        rc = crc;
    if (rc == 0)
        rc = check_no_sidecars(j);
    return rc;
}

static void describe(struct job *j)
{
    json_t *e = j->entry;
    json_object_set_new(e, "consistency", json_string("online-backup-api"));
    json_object_set_new(e, "source_path", json_string(j->path));
    json_object_set_new(e, "journal_mode", json_string(j->journal_mode));
    json_object_set_new(e, "page_size", json_integer(j->page_size));
    json_object_set_new(e, "pages", json_integer(j->pages));
}

static int snapshot_and_copy(struct job *j)
{
    int rc = check_source_file(j);
    if (rc == 0)
        rc = begin_snapshot(j);
    if (rc == 0)
        rc = read_source_facts(j);
    if (rc == 0)
        rc = create_destination(j);
    if (rc == 0)
        rc = copy_pages(j);
    close_source(j);
    if (rc == 0)
        rc = check_no_writer_appeared(j);
    int crc = close_destination(j);
    if (j->dst_fd >= 0 && close(j->dst_fd) != 0 && crc == 0)
        crc = sc_fail_errno(j->err, SC_ESTAGING, "sqlite %s: %s", j->cfg->name, j->dst_path);
    j->dst_fd = -1;
    return rc ? rc : crc;
}

static int sqlite_stage(const struct source_cfg *src, struct set *set, json_t *entry, sc_err *err)
{
    struct job j = {
        .cfg = src, .path = src->path, .set = set, .entry = entry, .err = err, .dst_fd = -1};
    j.relpath = xasprintf("sqlite/%s.db", src->name);
    int rc = snapshot_and_copy(&j);
    if (rc == 0) {
        describe(&j);
        rc = verify_and_add(&j);
    }
    if (rc == 0)
        log_info("sqlite %s: %.1f MB copied (%lld pages), %s ok, %lld rows in %zu tables",
                 src->name, (double)(j.pages * j.page_size) / (1024.0 * 1024.0), j.pages,
                 json_string_value(json_object_get(entry, "check")),
                 (long long)json_integer_value(json_object_get(entry, "rows_total")),
                 json_object_size(json_object_get(entry, "tables")));
    free(j.relpath);
    free(j.dst_path);
    return rc;
}

/* ---- restore --apply --------------------------------------------------------
 *
 * The restored copy is checked first (integrity_check, and every table's
 * rows against the manifest). It is then copied next to the target, fsynced
 * and renamed over it, so the target is at every moment the old database or
 * the new one, never a part of either. The old file is kept as
 * <target>.pre-restore-<UTC time> through a hard link made before the
 * rename, and its -wal, -shm and -journal move with it: the new database
 * must never meet the old one's WAL, and the kept file stays openable. */

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
        one_line_problem(first, sizeof first, v ? (const char *)v : "(null)");
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
    int rc = sqlite3_prepare_v2(db, ordinary_tables_sql, -1, &st, NULL);
    size_t seen = 0;
    int bad = 0;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        if ((rc = sqlite3_step(st)) != SQLITE_ROW)
            break;
        const char *name = (const char *)sqlite3_column_text(st, 0);
        long long rows = 0;
        json_t *w = name ? json_object_get(want, name) : NULL;
        if (name == NULL || (rc = count_table(&j, name, &rows)) != SQLITE_OK)
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
    sqlite3_progress_handler(db, STOP_CHECK_OPS, stop_requested, NULL);
    log_progress("sqlite %s: checking the restored copy", r->cfg->name);
    rc = restored_integrity(r, db);
    if (rc == 0)
        rc = restored_counts(r, db);
    log_progress_done();
    sqlite3_close(db);
    return rc;
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
        rc = exec(db, "BEGIN IMMEDIATE");
    bool busy = is_busy(rc);
    if (rc == SQLITE_OK && exec(db, "ROLLBACK") != SQLITE_OK)
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
        rc = pragma_text(db, "PRAGMA journal_mode=WAL", got, sizeof got);
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

static int sqlite_restore(const struct source_cfg *src, const char *setdir, json_t *entry,
                          const char *into, bool force, sc_err *err)
{
    struct restore r = {.cfg = src, .entry = entry, .err = err};
    char *rel = xasprintf("sqlite/%s.db", src->name);
    r.copy = path_join(setdir, rel);
    r.target = restore_target(src, into);
    int rc = check_restored_copy(&r);
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

const struct source_ops source_sqlite = {
    .kind = "sqlite",
    .keys = sqlite_keys,
    .validate = sqlite_validate,
    .stage = sqlite_stage,
    .restore = sqlite_restore,
};
