/* Private to the [sqlite NAME] source (src/source/sqlite/): a consistent
 * copy of a live SQLite database through the Online Backup API, checked,
 * counted and hashed into the set, and its restore.
 *
 *   sqlite.c   keys, validation, the stage's order of steps, the ops table
 *   live.c     the live database: opened read-only, one read transaction
 *   copy.c     the copy in the set: backup steps, progress, write-out
 *   clone.c    the copy as a reflink of a rollback-journal database (FICLONE)
 *   check.c    quick_check/integrity_check and row counts, on a thread
 *   db.c       small things every part does with a connection; failures
 *   restore.c  restore --apply: check the copy, replace the target atomically
 *   doctor.c   doctor's pre-flight check of the source
 *   pages.c, pagemap.c, pagestore.c: layout = pages, see pages.h
 * Calls src/core/ and the set (src/stage/set.h); called only through
 * source_sqlite (src/source/source.h). */
#ifndef SC_SOURCE_SQLITE_H
#define SC_SOURCE_SQLITE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <jansson.h>
#include "../../core/err.h"
#include "../source.h"

struct set;

/* Every SQLite file starts with these 16 bytes, in a 100-byte header. */
#define SQLITE_MAGIC "SQLite format 3"
#define SQLITE_HEADER_SIZE 100

/* How long to sleep between retries of a busy step (ms). */
#define BUSY_SLEEP_MS 20
/* How often to redraw the progress line (ms). */
#define PROGRESS_EVERY_MS 250
/* SQLite VM instructions between two looks at sc_stop_requested. */
#define STOP_CHECK_OPS 100000

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
    int live_fd;                /* ours, on the live file, for FICLONE: see sq_clone_live */
    bool cloned;                /* the copy is a reflink of the live file (clone.c) */
    bool as_pages;              /* staged as a page map and packs (sq_layout_pages) */
    long long snapshot_start_ms, lock_ms; /* when the read transaction began; how long */
};

/* ---- db.c: what every part does with a connection ------------------------ */
int sq_stop_requested(void *unused); /* progress handler: stop on SIGINT/SIGTERM */
bool sq_is_busy(int rc);
int sq_exec(sqlite3 *db, const char *sql);
/* A PRAGMA's one value, as text or as a number; an SQLite result code. */
int sq_pragma_text(sqlite3 *db, const char *sql, char *out, size_t n);
int sq_pragma_int(sqlite3 *db, const char *sql, long long *out);
/* Failures, worded for the usual causes: about the live database (exit 4),
 * about the copy in the set (exit 5, or 4 for content problems). */
int sq_fail_interrupted(struct job *j);
int sq_fail_source(struct job *j, sqlite3 *db, int rc, const char *what);
int sq_fail_copy(struct job *j, int rc, const char *what);
/* Whether a failed backup step came from the destination's side. */
bool sq_is_copy_error(int rc);

/* ---- live.c: the live database, read-only, in one read transaction -------- */
int sq_check_source_file(struct job *j);
int sq_begin_snapshot(struct job *j);
int sq_read_source_facts(struct job *j);
void sq_close_source(struct job *j);
int sq_check_no_writer_appeared(struct job *j);
/* A path as the path part of a file: URI (owned). */
char *sq_uri_escape_path(const char *path);

/* ---- copy.c: the copy in the set, through the Online Backup API ----------- */
int sq_open_destination(struct job *j, int flags);
int sq_write_unsynced(struct job *j, bool no_journal);
int sq_create_destination(struct job *j);
int sq_close_destination(struct job *j);
int sq_copy_pages(struct job *j);
int sq_make_self_contained(struct job *j);

/* ---- clone.c: the copy as a reflink (rollback journal only) -------------- */
int sq_clone_live(struct job *j);
/* Whether an FICLONE errno means "no reflink between these two files". */
bool sq_clone_unsupported(int e);

/* ---- check.c: the copy's integrity check and row counts ------------------- */
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
void sq_checker_start(struct checker *c, const struct job *j);
int sq_checker_join(struct checker *c, struct job *j);
int sq_check_no_sidecars(struct job *j);
/* Every ordinary table's name (not SQLite's own, not virtual ones), sorted. */
extern const char sq_ordinary_tables_sql[];
int sq_count_table(struct job *j, const char *table, long long *rows);
void sq_one_line_problem(char *out, size_t n, const char *text);

/* ---- doctor.c ----------------------------------------------------------- */
void sq_doctor(const struct source_cfg *s, struct probe *p);

/* ---- restore.c ----------------------------------------------------------- */
int sq_restore(const struct source_cfg *src, const char *setdir, json_t *entry, const char *into,
               bool force, sc_err *err);
/* The checks of a restored copy on its own: integrity_check, and every
 * table's rows against the manifest entry. Exit 7. */
int sq_check_copy(const char *name, const char *copy, json_t *entry, sc_err *err);

/* ---- pages.c, pagemap.c: layout = pages (pages.h) ------------------------- */
bool sq_layout_pages(const struct source_cfg *src, uint64_t db_bytes);
/* layout = auto's threshold: [sqlite NAME] pages_from_mib, else 1024. */
long sq_pages_from_mib(const struct source_cfg *src);
/* The copy j->dst_path into the page store, its map and packs into the set. */
int sq_pages_add(struct job *j, sc_err *err);
/* Rebuild into/sqlite/<name>.db from the map and packs in dir (a verified
 * plaintext set; into may be dir), and check it against entry (the
 * database's size and BLAKE2b, integrity_check, row counts). Exit 7 naming
 * the file at fault. Nothing to do for a source staged as a file. */
int sq_pages_unpack(const char *dir, const char *into, json_t *entry, sc_err *err);
/* The key sq_pages_unpack sets in the (in-memory) entry to the path of the
 * database it rebuilt and checked, so restore --apply does not check the
 * same file twice; it removes the key from every entry it is given first. */
#define SQ_REBUILT_CHECKED "rebuilt_and_checked"
/* After local retention: drop the packs no kept set holds. */
int sq_pages_upkeep(const struct source_cfg *src, const char *staging, json_t *report, sc_err *err);

#endif
