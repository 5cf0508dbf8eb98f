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
 * which is the price of a consistent copy there (tech-facts §6). Where the
 * file system shares extents (XFS reflink=1, btrfs), a rollback-journal
 * database is cloned inside that transaction instead (clone.c): writers
 * then wait for the clone only, milliseconds.
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
#include "../../stage/sink.h"
#include "sqlite.h"

/* A step of 0 pages copies nothing and would never finish. */
static const char *check_positive(const char *value)
{
    return (isdigit((unsigned char)value[0]) && strtol(value, NULL, 10) < 1) ? "must be at least 1"
                                                                             : NULL;
}

static const char *check_layout(const char *value)
{
    return strcmp(value, "file") == 0 || strcmp(value, "pages") == 0 || strcmp(value, "auto") == 0
               ? NULL
               : "expected file, pages or auto";
}

static const char *check_percent(const char *value)
{
    char *end;
    long v = strtol(value, &end, 10);
    return end != value && *end == '\0' && v >= 0 && v <= 100 ? NULL
                                                              : "expected a percentage, 0 to 100";
}

/* MiB, up to 16 TiB (so that the size in bytes cannot overflow). */
static const char *check_mib(const char *value)
{
    char *end;
    long v = strtol(value, &end, 10);
    return end != value && *end == '\0' && v >= 1 && v <= (16L << 20)
               ? NULL
               : "expected a size in MiB, 1 to 16777216";
}

static const char *check_clone(const char *value)
{
    return strcmp(value, "auto") == 0 || strcmp(value, "never") == 0 ? NULL
                                                                     : "expected auto or never";
}

static const struct cfg_key sqlite_keys[] = {
    {"path", CFG_PATH, offsetof(struct source_cfg, path), false, NULL},
    {"check", CFG_CHECK_LEVEL, offsetof(struct source_cfg, check), false, NULL},
    {"busy_timeout_ms", CFG_INT, offsetof(struct source_cfg, busy_timeout_ms), false, NULL},
    {"step_pages", CFG_INT, offsetof(struct source_cfg, step_pages), false, check_positive},
    {"clone", CFG_STR, offsetof(struct source_cfg, clone), false, check_clone},
    {"layout", CFG_STR, offsetof(struct source_cfg, layout), false, check_layout},
    {"repack_threshold", CFG_INT, offsetof(struct source_cfg, repack_threshold), false,
     check_percent},
    {"pages_from_mib", CFG_INT, offsetof(struct source_cfg, pages_from_mib), false, check_mib},
    {NULL, 0, 0, false, NULL},
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

/* Reopen the finished copy the way a restore would and make it
 * self-contained; then check it and count its rows while it is hashed into
 * the set. A failed check fails the stage even when the hash succeeded (the
 * set is then thrown away); it is the error reported, being about the data. */
static int verify_and_add(struct job *j)
{
    int rc = sq_open_destination(j, SQLITE_OPEN_READWRITE);
    if (rc == 0)
        rc = sq_write_unsynced(j, false);
    if (rc == 0)
        rc = sq_make_self_contained(j);
    if (rc == 0) {
        /* Both passes read the whole copy: minutes on a big database. */
        log_progress("sqlite %s: checking and hashing the copy", j->cfg->name);
        struct checker c;
        sq_checker_start(&c, j);
        sc_err add_err = {0};
        int arc =
            j->as_pages ? sq_pages_add(j, &add_err) : set_add_file(j->set, j->relpath, &add_err);
        rc = sq_checker_join(&c, j);
        log_progress_done();
        if (rc == 0 && arc != 0) {
            *j->err = add_err;
            rc = arc;
        }
    }
    int crc = sq_close_destination(j);
    if (rc == 0)
        rc = crc;
    if (rc == 0)
        rc = sq_check_no_sidecars(j);
    /* layout = pages: the set holds the map and packs, not the copy */
    if (rc == 0 && j->as_pages && unlink(j->dst_path) != 0)
        rc = sc_fail_errno(j->err, SC_ESTAGING, "cannot remove %s", j->dst_path);
    return rc;
}

static void describe(struct job *j)
{
    json_t *e = j->entry;
    /* A clone is made consistent by the read lock alone (clone.c). */
    json_object_set_new(e, "consistency",
                        json_string(j->cloned ? "read-lock-reflink" : "online-backup-api"));
    json_object_set_new(e, "copy_method", json_string(j->cloned ? "reflink" : "backup_api"));
    json_object_set_new(e, "source_path", json_string(j->path));
    json_object_set_new(e, "journal_mode", json_string(j->journal_mode));
    json_object_set_new(e, "page_size", json_integer(j->page_size));
    json_object_set_new(e, "pages", json_integer(j->pages));
    /* How long writers waited for us: only a rollback journal holds them. */
    if (strcmp(j->journal_mode, "wal") != 0)
        json_object_set_new(e, "lock_ms", json_integer(j->lock_ms));
}

static int snapshot_and_copy(struct job *j)
{
    int rc = sq_check_source_file(j);
    if (rc == 0)
        rc = sq_begin_snapshot(j);
    if (rc == 0)
        rc = sq_read_source_facts(j);
    if (rc == 0)
        j->as_pages = sq_layout_pages(j->cfg, (uint64_t)(j->pages * j->page_size));
    if (rc == 0)
        rc = sq_create_destination(j);
    if (rc == 0 && !j->cloned)
        rc = sq_copy_pages(j);
    sq_close_source(j);
    if (rc == 0)
        rc = sq_check_no_writer_appeared(j);
    int crc = sq_close_destination(j);
    if (j->dst_fd >= 0 && close(j->dst_fd) != 0 && crc == 0)
        crc = sc_fail_errno(j->err, SC_ESTAGING, "sqlite %s: %s", j->cfg->name, j->dst_path);
    j->dst_fd = -1;
    return rc ? rc : crc;
}

static int sqlite_stage(const struct source_cfg *src, struct set *set, json_t *entry, sc_err *err)
{
    struct job j = {
        .cfg = src, .path = src->path, .set = set, .entry = entry, .err = err, .dst_fd = -1};
    j.live_fd = -1;
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

/* Why the layout is what it is: auto decides by the file's size now. */
static void plan_layout(const struct source_cfg *s, bool pages, FILE *out)
{
    if (s->layout != NULL && strcmp(s->layout, "auto") != 0)
        fprintf(out, "layout = %s", s->layout);
    else
        fprintf(out, "layout = auto: %s, pages from %ld MiB", pages ? "pages" : "file",
                sq_pages_from_mib(s));
}

static void sqlite_plan(const struct source_cfg *s, FILE *out)
{
    bool may_clone = s->clone == NULL || strcmp(s->clone, "auto") == 0;
    struct stat st;
    bool pages = sq_layout_pages(s, stat(s->path, &st) == 0 ? (uint64_t)st.st_size : 0);
    if (pages)
        fprintf(out, "  sqlite %s: %s -> sqlite/%s.pagemap + sqlite/%s.packs/ (", s->name, s->path,
                s->name, s->name);
    else
        fprintf(out, "  sqlite %s: %s -> sqlite/%s.db (", s->name, s->path, s->name);
    plan_layout(s, pages, out);
    if (pages)
        fprintf(out, ", store <staging>/pagestore/%s", s->name);
    fprintf(out, "; online backup API%s, %s check)\n",
            may_clone ? ", or a reflink of a rollback journal" : "",
            s->check == CHECK_INTEGRITY ? "integrity" : "quick");
}

const struct source_ops source_sqlite = {
    .cfg = {.kind = "sqlite", .keys = sqlite_keys, .validate = sqlite_validate},
    .drill_target = TARGET_FILE,
    .plan = sqlite_plan,
    .stage = sqlite_stage,
    .restore = sq_restore,
    .unpack = sq_pages_unpack,
    .upkeep = sq_pages_upkeep,
    .doctor = sq_doctor,
};
