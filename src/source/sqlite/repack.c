/* Repacking a page store ([sqlite NAME] repack_threshold, docs/sqlite-pages.md).
 *
 * A pack stays as long as a kept set links it, and a new set links every
 * pack one of its pages is in: a pack of which the database still uses one
 * page keeps all its other pages alive, locally and in the repository. So
 * each stage records which page slots of which packs its set uses (table
 * uses: one bitmap per set and pack). Upkeep ORs the bitmaps of the kept
 * sets; a pack of which more than repack_threshold percent of the pages no
 * kept set uses is retired: its pages leave the lookup (table pages) for
 * the table retired, so the next stage writes the pages the database still
 * has into a new pack (one upload of them, counted as pages_repacked), and
 * the old pack goes with the last set that links it. One transaction: a
 * crash leaves the index as before or as after. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/fs.h"
#include "../../core/log.h"
#include "../../core/xalloc.h"
#include "../../stage/set.h"
#include "pages.h"

/* ---- what a stage uses ------------------------------------------------------ */

void pack_uses_init(struct pack_uses *u, uint32_t page_size)
{
    memset(u, 0, sizeof *u);
    u->page_size = page_size;
    u->slot_bytes = (size_t)((PACK_MAX_BYTES / page_size + 7) / 8);
}

void pack_uses_note(struct pack_uses *u, const unsigned char id[PACK_ID_BYTES], uint64_t offset)
{
    struct pack_use *use = NULL;
    /* consecutive pages mostly share a pack: look at the last ones first */
    for (size_t i = u->n; i > 0 && use == NULL; i--)
        if (memcmp(u->v[i - 1].id, id, PACK_ID_BYTES) == 0)
            use = &u->v[i - 1];
    if (use == NULL) {
        u->v = xrealloc(u->v, (u->n + 1) * sizeof *u->v);
        use = &u->v[u->n++];
        memcpy(use->id, id, PACK_ID_BYTES);
        use->slots = xcalloc(1, u->slot_bytes);
    }
    uint64_t slot = offset / u->page_size;
    if (slot / 8 < u->slot_bytes)
        use->slots[slot / 8] |= (unsigned char)(1u << (slot % 8));
}

void pack_uses_free(struct pack_uses *u)
{
    for (size_t i = 0; i < u->n; i++)
        free(u->v[i].slots);
    free(u->v);
    memset(u, 0, sizeof *u);
}

int pagestore_record_uses(struct pagestore *ps, const char *set_id, const struct pack_uses *u,
                          long long *repacked, sc_err *err)
{
    static const char add[] =
        "INSERT OR REPLACE INTO uses(set_id, pack, page_size, slots) VALUES (?, ?, ?, ?)";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ps->index, add, -1, &st, NULL) != SQLITE_OK)
        return pagestore_index_fail(ps, err, add);
    int rc = 0;
    for (size_t i = 0; i < u->n && rc == 0; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, set_id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, u->v[i].id, PACK_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, u->page_size);
        sqlite3_bind_blob(st, 4, u->v[i].slots, (int)u->slot_bytes, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = pagestore_index_fail(ps, err, add);
    }
    sqlite3_finalize(st);
    /* Retired pages written again this run are in pages once more: those
     * are what repacking cost. The rest the database no longer has. */
    static const char count[] =
        "SELECT count(*) FROM retired WHERE hash IN (SELECT hash FROM pages)";
    *repacked = 0;
    if (rc != 0)
        return rc;
    if (sqlite3_prepare_v2(ps->index, count, -1, &st, NULL) != SQLITE_OK)
        return pagestore_index_fail(ps, err, count);
    if (sqlite3_step(st) == SQLITE_ROW)
        *repacked = sqlite3_column_int64(st, 0);
    else
        rc = pagestore_index_fail(ps, err, count);
    sqlite3_finalize(st);
    if (rc == 0)
        rc = pagestore_run(ps, "DELETE FROM retired", NULL, 0, NULL, err);
    return rc;
}

/* ---- upkeep: retiring mostly unused packs ------------------------------------ */

struct judged {
    unsigned char id[PACK_ID_BYTES];
    long long slots, live, page_size;
};

/* The kept sets into the temporary table kept; usage of other sets goes. */
static int forget_other_sets(struct pagestore *ps, char **ids, size_t n, sc_err *err)
{
    int rc = pagestore_run(ps, "CREATE TEMP TABLE IF NOT EXISTS kept(set_id TEXT PRIMARY KEY)",
                           NULL, 0, NULL, err);
    if (rc == 0)
        rc = pagestore_run(ps, "DELETE FROM kept", NULL, 0, NULL, err);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = pagestore_run(ps, "INSERT OR IGNORE INTO kept(set_id) VALUES (?)", NULL, 0, ids[i],
                           err);
    if (rc == 0)
        rc = pagestore_run(ps, "DELETE FROM uses WHERE set_id NOT IN (SELECT set_id FROM kept)",
                           NULL, 0, NULL, err);
    return rc;
}

/* Whether a set's packs directory holds a pack of this store (a source's
 * sets may hold plain packs and packs sealed to one key or another). */
static bool holds_store_pack(const struct pagestore *ps, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    bool held = false;
    struct dirent *e;
    while (!held && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *path = path_join(ps->packs, e->d_name);
        held = fs_exists(path);
        free(path);
    }
    closedir(d);
    return held;
}

/* A kept set that holds packs of this store but recorded no usage (staged
 * by a stagecoach before repacking, or its rows lost with a rebuilt
 * index): without it a pack's use is unknown. NULL when there is none. */
static const char *unrecorded_set(struct pagestore *ps, const char *staging, const char *name,
                                  char **ids, size_t n)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ps->index, "SELECT 1 FROM uses WHERE set_id = ? LIMIT 1", -1, &st,
                           NULL) != SQLITE_OK)
        return NULL; /* judging the packs fails on the same index */
    char *sets = path_join(staging, "sets");
    char *rel = packs_reldir(name);
    const char *missing = NULL;
    for (size_t i = 0; i < n && missing == NULL; i++) {
        char *set = path_join(sets, ids[i]);
        char *dir = path_join(set, rel);
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW && holds_store_pack(ps, dir))
            missing = ids[i];
        free(dir);
        free(set);
    }
    free(rel);
    free(sets);
    sqlite3_finalize(st);
    return missing;
}

static long long popcount_bytes(const unsigned char *b, size_t len)
{
    long long n = 0;
    for (size_t i = 0; i < len; i++)
        n += __builtin_popcount(b[i]);
    return n;
}

/* How many of the pack's page slots some kept set uses. */
static int judge_pack(struct pagestore *ps, sqlite3_stmt *uses, struct judged *j, sc_err *err)
{
    unsigned char *all = NULL;
    size_t all_len = 0;
    sqlite3_reset(uses);
    sqlite3_bind_blob(uses, 1, j->id, PACK_ID_BYTES, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(uses)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(uses, 1);
        const unsigned char *bits = sqlite3_column_blob(uses, 1);
        j->page_size = sqlite3_column_int64(uses, 0);
        if (len > all_len) {
            all = xrealloc(all, len);
            memset(all + all_len, 0, len - all_len);
            all_len = len;
        }
        for (size_t i = 0; i < len && bits != NULL; i++)
            all[i] |= bits[i];
    }
    j->live = popcount_bytes(all, all_len);
    free(all);
    return rc == SQLITE_DONE ? 0 : pagestore_index_fail(ps, err, "reading uses");
}

/* Every pack still in the lookup, with how much of it kept sets use. */
static int judge_packs(struct pagestore *ps, struct judged **out, size_t *n, sc_err *err)
{
    static const char list[] = "SELECT id, bytes FROM packs"
                               " WHERE EXISTS (SELECT 1 FROM pages WHERE pages.pack = packs.id)";
    static const char by_pack[] = "SELECT page_size, slots FROM uses WHERE pack = ?";
    sqlite3_stmt *st, *uses;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(ps->index, list, -1, &st, NULL) != SQLITE_OK)
        return pagestore_index_fail(ps, err, list);
    if (sqlite3_prepare_v2(ps->index, by_pack, -1, &uses, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return pagestore_index_fail(ps, err, by_pack);
    }
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != PACK_ID_BYTES)
            continue;
        struct judged j = {.page_size = 0};
        memcpy(j.id, sqlite3_column_blob(st, 0), PACK_ID_BYTES);
        rc = judge_pack(ps, uses, &j, err);
        /* no kept set uses it: upkeep drops it once nothing links it */
        if (rc != 0 || j.page_size <= 0)
            continue;
        j.slots = sqlite3_column_int64(st, 1) / j.page_size;
        *out = xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = j;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = pagestore_index_fail(ps, err, list);
    sqlite3_finalize(uses);
    sqlite3_finalize(st);
    return rc;
}

static int retire_pack(struct pagestore *ps, const unsigned char id[PACK_ID_BYTES], sc_err *err)
{
    int rc = pagestore_run(
        ps, "INSERT OR IGNORE INTO retired(hash) SELECT hash FROM pages WHERE pack = ?", id,
        PACK_ID_BYTES, NULL, err);
    if (rc == 0)
        rc = pagestore_run(ps, "DELETE FROM pages WHERE pack = ?", id, PACK_ID_BYTES, NULL, err);
    return rc;
}

static int retire_mostly_unused(struct pagestore *ps, long threshold, json_t *report, sc_err *err)
{
    struct judged *v;
    size_t n;
    int rc = judge_packs(ps, &v, &n, err);
    long long retired = 0, live = 0, bytes = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        long long dead = v[i].slots - v[i].live;
        if (dead <= 0 || dead * 100 <= threshold * v[i].slots)
            continue;
        rc = retire_pack(ps, v[i].id, err);
        retired++;
        live += v[i].live;
        bytes += v[i].live * v[i].page_size;
    }
    free(v);
    json_object_set_new(report, "repack",
                        json_pack("{s:I, s:I, s:I, s:I}", "threshold_percent",
                                  (json_int_t)threshold, "packs_retired", (json_int_t)retired,
                                  "pages_live", (json_int_t)live, "bytes_live", (json_int_t)bytes));
    if (rc == 0 && retired > 0)
        log_info("sqlite %s: page store: %lld pack(s) more than %ld%% unused retired; the next run "
                 "writes their %lld live pages (%.1f MB) into a new pack",
                 ps->name, retired, threshold, live, (double)bytes / 1e6);
    return rc;
}

int pagestore_repack(struct pagestore *ps, const char *staging, long threshold, json_t *report,
                     sc_err *err)
{
    char **ids;
    size_t n;
    if (set_list(staging, &ids, &n, err) != 0)
        return err->code;
    int rc = pagestore_begin(ps, err);
    if (rc == 0)
        rc = forget_other_sets(ps, ids, n, err);
    const char *missing = rc == 0 ? unrecorded_set(ps, staging, ps->name, ids, n) : NULL;
    if (rc == 0 && missing != NULL) {
        log_info("sqlite %s: page store: no repacking while set %s is kept (it has no record of "
                 "the pages it uses)",
                 ps->name, missing);
        char *why = xasprintf("set %s has no record of the pages it uses", missing);
        json_object_set_new(report, "repack", json_pack("{s:s}", "skipped", why));
        free(why);
    } else if (rc == 0) {
        rc = retire_mostly_unused(ps, threshold, report, err);
    }
    if (rc == 0)
        rc = pagestore_commit(ps, err);
    else
        pagestore_rollback(ps);
    set_list_free(ids, n);
    return rc;
}
