/* The page store of a [sqlite NAME] source with layout = pages:
 *
 *   <staging>/pagestore/<name>/packs/<id>.pack   immutable page packs
 *   <staging>/pagestore/<name>/index.sqlite      page hash -> pack, offset
 *   <staging>/pagestore/<name>/sealed-<key id>/  the same for [staging]
 *       encrypt: packs/<id>.pack.enc, each sealed once to that key
 *
 * A pack is written once, as .tmp-<id>.pack, fsynced and renamed; only then
 * are its pages committed to the index. The index is a cache of what the
 * packs hold: a pack a crash left unindexed is indexed again from its
 * bytes, rows of a pack that is gone are dropped, and a damaged index is
 * rebuilt from all the packs. Everything here runs under the run lock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/fs.h"
#include "../../core/log.h"
#include "../../core/xalloc.h"
#include "../../stage/hashfile.h"
#include "../../stage/hashpipe.h"
#include "../../stage/set.h"
#include "pages.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS packs(id BLOB PRIMARY KEY, bytes INTEGER NOT NULL,"
    " blake2b TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS pages(hash BLOB PRIMARY KEY, pack BLOB NOT NULL,"
    " offset INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS pages_by_pack ON pages(pack);"
    /* repack.c: which page slots of a pack each set uses, and the pages of
     * retired packs until the next stage has written them again */
    "CREATE TABLE IF NOT EXISTS uses(set_id TEXT NOT NULL, pack BLOB NOT NULL,"
    " page_size INTEGER NOT NULL, slots BLOB NOT NULL, PRIMARY KEY(set_id, pack)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS uses_by_pack ON uses(pack);"
    "CREATE TABLE IF NOT EXISTS retired(hash BLOB PRIMARY KEY) WITHOUT ROWID;"
    /* a sealed pack's pages: packs has its stored (encrypted) bytes */
    "CREATE TABLE IF NOT EXISTS plain(id BLOB PRIMARY KEY, bytes INTEGER NOT NULL,"
    " blake2b TEXT NOT NULL) WITHOUT ROWID;";

int pagestore_index_fail(struct pagestore *ps, sc_err *err, const char *what)
{
    return sc_fail(err, SC_ESTAGING, "sqlite %s: page store index %s/index.sqlite: %s: %s",
                   ps->name, ps->dir, what, ps->index ? sqlite3_errmsg(ps->index) : "not open");
}

int pagestore_run(struct pagestore *ps, const char *sql, const void *blob, int blob_len,
                  const char *text, sc_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ps->index, sql, -1, &st, NULL) != SQLITE_OK)
        return pagestore_index_fail(ps, err, sql);
    int i = 1;
    if (text != NULL)
        sqlite3_bind_text(st, i++, text, -1, SQLITE_STATIC);
    if (blob != NULL)
        sqlite3_bind_blob(st, i, blob, blob_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : pagestore_index_fail(ps, err, sql);
}

static int exec(struct pagestore *ps, const char *sql, sc_err *err)
{
    if (sqlite3_exec(ps->index, sql, NULL, NULL, NULL) != SQLITE_OK)
        return pagestore_index_fail(ps, err, sql);
    return 0;
}

char *pagestore_pack_path(const struct pagestore *ps, const unsigned char id[PACK_ID_BYTES])
{
    return pack_path_as(ps->packs, id, ps->suffix);
}

/* ---- the index ------------------------------------------------------------ */

/* quick_check says ok. */
static bool index_sound(sqlite3 *db)
{
    sqlite3_stmt *st;
    bool ok = false;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        ok = v != NULL && strcmp((const char *)v, "ok") == 0;
    }
    sqlite3_finalize(st);
    return ok && sqlite3_exec(db, schema, NULL, NULL, NULL) == SQLITE_OK;
}

/* The index, created when missing; a damaged one is removed and starts
 * empty (reconcile then indexes every pack). */
static int open_index(struct pagestore *ps, sc_err *err)
{
    char *path = path_join(ps->dir, "index.sqlite");
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc =
            sqlite3_open_v2(path, &ps->index, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_extended_result_codes(ps->index, 1);
            if (index_sound(ps->index))
                break;
        }
        log_warn("sqlite %s: page store index %s is damaged: rebuilding it from the packs",
                 ps->name, path);
        sqlite3_close_v2(ps->index);
        ps->index = NULL;
        char *journal = xasprintf("%s-journal", path);
        unlink(path);
        unlink(journal);
        free(journal);
    }
    free(path);
    if (ps->index == NULL)
        return sc_fail(err, SC_ESTAGING, "sqlite %s: cannot create the page store index in %s",
                       ps->name, ps->dir);
    return 0;
}

static int prepare(struct pagestore *ps, sc_err *err)
{
    static const struct {
        size_t off;
        const char *sql;
    } stmts[] = {
        {offsetof(struct pagestore, find), "SELECT pack, offset FROM pages WHERE hash = ?"},
        {offsetof(struct pagestore, add_page),
         "INSERT OR IGNORE INTO pages(hash, pack, offset) VALUES (?, ?, ?)"},
        {offsetof(struct pagestore, add_pack),
         "INSERT OR REPLACE INTO packs(id, bytes, blake2b) VALUES (?, ?, ?)"},
        {offsetof(struct pagestore, pack_info), "SELECT bytes, blake2b FROM packs WHERE id = ?"},
        {offsetof(struct pagestore, add_plain),
         "INSERT OR REPLACE INTO plain(id, bytes, blake2b) VALUES (?, ?, ?)"},
        {offsetof(struct pagestore, plain_info), "SELECT bytes, blake2b FROM plain WHERE id = ?"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        sqlite3_stmt **st = (sqlite3_stmt **)((char *)ps + stmts[i].off);
        if (sqlite3_prepare_v2(ps->index, stmts[i].sql, -1, st, NULL) != SQLITE_OK)
            return pagestore_index_fail(ps, err, stmts[i].sql);
    }
    return 0;
}

int pagestore_find(struct pagestore *ps, const unsigned char hash[PAGE_HASH_BYTES],
                   unsigned char pack[PACK_ID_BYTES], uint64_t *offset, sc_err *err)
{
    sqlite3_reset(ps->find);
    sqlite3_bind_blob(ps->find, 1, hash, PAGE_HASH_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(ps->find);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW || sqlite3_column_bytes(ps->find, 0) != PACK_ID_BYTES) {
        pagestore_index_fail(ps, err, "lookup");
        return -1;
    }
    memcpy(pack, sqlite3_column_blob(ps->find, 0), PACK_ID_BYTES);
    *offset = (uint64_t)sqlite3_column_int64(ps->find, 1);
    return 1;
}

int pagestore_add_page(struct pagestore *ps, const unsigned char hash[PAGE_HASH_BYTES],
                       const unsigned char pack[PACK_ID_BYTES], uint64_t offset, sc_err *err)
{
    sqlite3_reset(ps->add_page);
    sqlite3_bind_blob(ps->add_page, 1, hash, PAGE_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(ps->add_page, 2, pack, PACK_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(ps->add_page, 3, (sqlite3_int64)offset);
    if (sqlite3_step(ps->add_page) != SQLITE_DONE)
        return pagestore_index_fail(ps, err, "adding a page");
    return 0;
}

static int add_facts(struct pagestore *ps, sqlite3_stmt *st, const unsigned char id[PACK_ID_BYTES],
                     const struct pack_facts *f, sc_err *err)
{
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, id, PACK_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)f->bytes);
    sqlite3_bind_text(st, 3, f->blake2b, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return pagestore_index_fail(ps, err, "adding a pack");
    return 0;
}

int pagestore_add_pack(struct pagestore *ps, const unsigned char id[PACK_ID_BYTES],
                       const struct pack_facts *stored, const struct pack_facts *plain, sc_err *err)
{
    int rc = add_facts(ps, ps->add_pack, id, stored, err);
    if (rc == 0 && ps->sealed)
        rc = add_facts(ps, ps->add_plain, id, plain, err);
    return rc;
}

static int read_facts(struct pagestore *ps, sqlite3_stmt *st, const unsigned char id[PACK_ID_BYTES],
                      struct pack_facts *f, sc_err *err)
{
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, id, PACK_ID_BYTES, SQLITE_STATIC);
    const unsigned char *h = NULL;
    if (sqlite3_step(st) == SQLITE_ROW)
        h = sqlite3_column_text(st, 1);
    if (h == NULL || strlen((const char *)h) != 128)
        return pagestore_index_fail(ps, err, "a pack it does not know");
    f->bytes = (uint64_t)sqlite3_column_int64(st, 0);
    memcpy(f->blake2b, h, 129);
    return 0;
}

int pagestore_pack_info(struct pagestore *ps, const unsigned char id[PACK_ID_BYTES],
                        struct pack_facts *stored, struct pack_facts *plain, sc_err *err)
{
    int rc = read_facts(ps, ps->pack_info, id, stored, err);
    if (rc == 0 && plain != NULL && ps->sealed)
        rc = read_facts(ps, ps->plain_info, id, plain, err);
    else if (rc == 0 && plain != NULL)
        *plain = *stored;
    return rc;
}

int pagestore_begin(struct pagestore *ps, sc_err *err)
{
    return exec(ps, "BEGIN IMMEDIATE", err);
}

int pagestore_commit(struct pagestore *ps, sc_err *err)
{
    return exec(ps, "COMMIT", err);
}

void pagestore_rollback(struct pagestore *ps)
{
    if (ps->index != NULL && !sqlite3_get_autocommit(ps->index))
        (void)sqlite3_exec(ps->index, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- reconciling the index with the packs ---------------------------------- */

static int drop_pack_rows(struct pagestore *ps, const unsigned char id[PACK_ID_BYTES], sc_err *err)
{
    static const char *const sql[] = {
        "DELETE FROM pages WHERE pack = ?", "DELETE FROM uses WHERE pack = ?",
        "DELETE FROM plain WHERE id = ?", "DELETE FROM packs WHERE id = ?"};
    int rc = 0;
    for (size_t i = 0; i < sizeof sql / sizeof sql[0] && rc == 0; i++)
        rc = pagestore_run(ps, sql[i], id, PACK_ID_BYTES, NULL, err);
    return rc;
}

/* Rows of packs whose file is gone or has another size. */
static int drop_missing_packs(struct pagestore *ps, sc_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ps->index, "SELECT id, bytes FROM packs", -1, &st, NULL) != SQLITE_OK)
        return pagestore_index_fail(ps, err, "listing packs");
    struct {
        unsigned char id[PACK_ID_BYTES];
    } *gone = NULL;
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != PACK_ID_BYTES)
            continue;
        const unsigned char *id = sqlite3_column_blob(st, 0);
        char *path = pagestore_pack_path(ps, id);
        struct stat sb;
        if (stat(path, &sb) != 0 || (uint64_t)sb.st_size != (uint64_t)sqlite3_column_int64(st, 1)) {
            gone = xrealloc(gone, (n + 1) * sizeof *gone);
            memcpy(gone[n++].id, id, PACK_ID_BYTES);
        }
        free(path);
    }
    sqlite3_finalize(st);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = drop_pack_rows(ps, gone[i].id, err);
    if (n > 0)
        log_warn("sqlite %s: %zu pack(s) in the page store index are gone: forgotten", ps->name, n);
    free(gone);
    return rc;
}

struct indexing {
    struct pagestore *ps;
    const unsigned char *id;
    uint32_t page_size;
    uint64_t offset;
    unsigned char *carry; /* a page split over two reads */
    size_t fill;
};

static int index_piece(void *ctx, const void *buf, size_t len, sc_err *err)
{
    struct indexing *x = ctx;
    const unsigned char *p = buf;
    while (len > 0) {
        size_t take = x->page_size - x->fill < len ? x->page_size - x->fill : len;
        memcpy(x->carry + x->fill, p, take);
        x->fill += take;
        p += take;
        len -= take;
        if (x->fill < x->page_size)
            break;
        unsigned char h[PAGE_HASH_BYTES];
        page_hash(x->carry, x->page_size, h);
        if (pagestore_add_page(x->ps, h, x->id, x->offset, err) != 0)
            return err->code;
        x->offset += x->page_size;
        x->fill = 0;
    }
    return 0;
}

/* A pack the index does not know (a crash came between its rename and the
 * commit of its pages, or the index was rebuilt): its pages from its bytes. */
static int index_pack(struct pagestore *ps, const char *path, const unsigned char id[PACK_ID_BYTES],
                      uint32_t page_size, sc_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || sb.st_size % page_size != 0) {
        log_warn("sqlite %s: %s is not a pack of %u-byte pages: not used", ps->name, path,
                 page_size);
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot read %s", path);
    struct indexing x = {.ps = ps, .id = id, .page_size = page_size, .carry = xmalloc(page_size)};
    struct pack_facts f = {0};
    int rc = hash_fd_to(fd, path, SC_ESTAGING, index_piece, &x, f.blake2b, &f.bytes, err);
    close(fd);
    free(x.carry);
    if (rc == 0)
        rc = pagestore_add_pack(ps, id, &f, &f, err);
    if (rc == 0)
        log_info("sqlite %s: indexed pack %s again", ps->name, path);
    return rc;
}

static bool pack_known(struct pagestore *ps, const unsigned char id[PACK_ID_BYTES])
{
    struct pack_facts f;
    sc_err e = {0};
    return pagestore_pack_info(ps, id, &f, NULL, &e) == 0;
}

/* A sealed pack the index does not know (a crash came between its rename
 * and the commit of its pages, or the index was rebuilt): staging may hold
 * only the public key, so its pages cannot be read back. With no set
 * linking it, it goes; a set's link keeps it (unused) until that set goes. */
static int forget_sealed_pack(struct pagestore *ps, const char *path, sc_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot stat %s", path);
    if (sb.st_nlink > 1) {
        log_warn("sqlite %s: %s is not in the page store index: its pages are not reused", ps->name,
                 path);
        return 0;
    }
    log_info("removing %s, sealed by an interrupted run", path);
    if (unlink(path) != 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot remove %s", path);
    return 0;
}

/* <id><suffix> from its file name; -1 for anything else. */
static int pack_name_id(const struct pagestore *ps, const char *leaf,
                        unsigned char id[PACK_ID_BYTES])
{
    size_t n = strlen(leaf), s = strlen(ps->suffix);
    if (n != PACK_ID_HEX - 1 + s || strcmp(leaf + n - s, ps->suffix) != 0)
        return -1;
    char hex[PACK_ID_HEX];
    memcpy(hex, leaf, PACK_ID_HEX - 1);
    hex[PACK_ID_HEX - 1] = '\0';
    return pack_id_parse(hex, id);
}

/* Temporary packs of a crashed run go; unknown packs are indexed. */
static int scan_packs(struct pagestore *ps, uint32_t page_size, sc_err *err)
{
    DIR *d = opendir(ps->packs);
    if (d == NULL)
        return sc_fail_errno(err, SC_ESTAGING, "cannot list %s", ps->packs);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        unsigned char id[PACK_ID_BYTES];
        char *path = path_join(ps->packs, e->d_name);
        if (strncmp(e->d_name, ".tmp-", 5) == 0) {
            log_info("removing %s, left by an interrupted run", path);
            if (unlink(path) != 0)
                rc = sc_fail_errno(err, SC_ESTAGING, "cannot remove %s", path);
        } else if (pack_name_id(ps, e->d_name, id) == 0 && !pack_known(ps, id)) {
            if (ps->sealed)
                rc = forget_sealed_pack(ps, path, err);
            else if (page_size > 0)
                rc = index_pack(ps, path, id, page_size, err);
        }
        free(path);
    }
    closedir(d);
    return rc;
}

/* <staging>/pagestore/<name>: the stores of a source. */
static char *source_dir(const char *staging, const char *name)
{
    char *top = path_join(staging, "pagestore");
    char *dir = path_join(top, name);
    free(top);
    return dir;
}

/* Its plain store, or the sealed one of a key. */
static char *store_dir(const char *staging, const char *name, const char *key_id)
{
    char *dir = source_dir(staging, name);
    if (key_id == NULL)
        return dir;
    char *sealed = xasprintf("%s/%s%s", dir, SEALED_STORE_PREFIX, key_id);
    free(dir);
    return sealed;
}

int pagestore_open(struct pagestore *ps, const char *staging, const char *name, const char *key_id,
                   uint32_t page_size, sc_err *err)
{
    memset(ps, 0, sizeof *ps);
    ps->dir = store_dir(staging, name, key_id);
    ps->packs = path_join(ps->dir, "packs");
    ps->name = xstrdup(name);
    ps->sealed = key_id != NULL;
    ps->suffix = ps->sealed ? PACK_SUFFIX CRYPTO_SUFFIX : PACK_SUFFIX;
    int rc = fs_mkdir_p(ps->packs, 0700, err);
    if (rc == 0)
        rc = open_index(ps, err);
    if (rc == 0)
        rc = prepare(ps, err);
    if (rc == 0)
        rc = pagestore_begin(ps, err);
    if (rc == 0)
        rc = drop_missing_packs(ps, err);
    if (rc == 0)
        rc = scan_packs(ps, page_size, err);
    if (rc == 0)
        rc = pagestore_commit(ps, err);
    if (rc != 0)
        pagestore_close(ps);
    return rc;
}

void pagestore_close(struct pagestore *ps)
{
    pagestore_rollback(ps);
    sqlite3_finalize(ps->find);
    sqlite3_finalize(ps->add_page);
    sqlite3_finalize(ps->add_pack);
    sqlite3_finalize(ps->pack_info);
    sqlite3_finalize(ps->add_plain);
    sqlite3_finalize(ps->plain_info);
    if (ps->index != NULL && sqlite3_close(ps->index) != SQLITE_OK)
        log_warn("sqlite %s: cannot close the page store index", ps->name);
    free(ps->dir);
    free(ps->packs);
    free(ps->name);
    memset(ps, 0, sizeof *ps);
}

/* ---- writing a pack ------------------------------------------------------ */

/* Bytes as they go to the pack file (ciphertext when sealed). */
static int pack_store(void *ctx, const void *buf, size_t len, sc_err *err)
{
    struct pack_writer *w = ctx;
    if (fs_write_all(w->fd, buf, len) != 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot write %s", w->tmp);
    crypto_generichash_update(&w->stored, buf, len);
    w->stored_bytes += len;
    return 0;
}

/* Sealed: bound to the name the pack has in every set that links it. */
static int pack_seal(struct pack_writer *w, const struct pagestore *ps,
                     const struct crypto_key *key, sc_err *err)
{
    char *reldir = packs_reldir(ps->name);
    char *name = pack_path(reldir, w->id);
    w->enc = xcalloc(1, sizeof *w->enc);
    crypto_generichash_init(&w->plain, NULL, 0, crypto_generichash_BYTES_MAX);
    int rc = crypto_writer_open(w->enc, key, name, pack_store, w, err);
    free(name);
    free(reldir);
    return rc;
}

int pack_writer_open(struct pack_writer *w, const struct pagestore *ps,
                     const struct crypto_key *key, sc_err *err)
{
    memset(w, 0, sizeof *w);
    randombytes_buf(w->id, PACK_ID_BYTES);
    char hex[PACK_ID_HEX];
    pack_id_hex(w->id, hex);
    char *leaf = xasprintf(".tmp-%s%s", hex, ps->suffix);
    w->tmp = path_join(ps->packs, leaf);
    free(leaf);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        int rc = sc_fail_errno(err, SC_ESTAGING, "cannot create %s", w->tmp);
        free(w->tmp);
        w->tmp = NULL;
        return rc;
    }
    crypto_generichash_init(&w->stored, NULL, 0, crypto_generichash_BYTES_MAX);
    if (ps->sealed && pack_seal(w, ps, key, err) != 0) {
        pack_writer_abort(w);
        return err->code;
    }
    return 0;
}

int pack_writer_add(struct pack_writer *w, const void *page, size_t len, sc_err *err)
{
    w->bytes += len;
    if (w->enc == NULL)
        return pack_store(w, page, len, err);
    crypto_generichash_update(&w->plain, page, len);
    return crypto_writer_write(w->enc, page, len, err);
}

int pack_writer_finish(struct pack_writer *w, const struct pagestore *ps, struct pack_facts *stored,
                       struct pack_facts *plain, sc_err *err)
{
    int rc = w->enc != NULL ? crypto_writer_finish(w->enc, err) : 0;
    if (rc == 0 && fsync(w->fd) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot fsync %s", w->tmp);
    if (close(w->fd) != 0 && rc == 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", w->tmp);
    w->fd = -1;
    char *final = pagestore_pack_path(ps, w->id);
    if (rc == 0 && rename(w->tmp, final) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot rename %s", w->tmp);
    free(final);
    if (rc == 0)
        rc = fs_fsync_dir(ps->packs, err);
    stored->bytes = w->stored_bytes;
    blake2b_final_hex(&w->stored, stored->blake2b);
    if (w->enc != NULL) {
        plain->bytes = w->bytes;
        blake2b_final_hex(&w->plain, plain->blake2b);
    } else {
        *plain = *stored;
    }
    if (rc != 0) {
        pack_writer_abort(w);
        return rc;
    }
    free(w->tmp); /* renamed: nothing to unlink */
    w->tmp = NULL;
    pack_writer_abort(w); /* frees the rest */
    return 0;
}

void pack_writer_abort(struct pack_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp != NULL)
        unlink(w->tmp);
    free(w->tmp);
    w->tmp = NULL;
    w->fd = -1;
    if (w->enc != NULL) {
        crypto_writer_free(w->enc);
        free(w->enc);
        w->enc = NULL;
    }
}

/* ---- upkeep -------------------------------------------------------------- */

/* {"<id>.pack": true} for every pack some kept set holds (a link or, where
 * links were impossible, a copy: the name says which pack it is). */
static int packs_in_sets(const char *staging, const char *name, json_t *seen, sc_err *err)
{
    char **ids;
    size_t n;
    if (set_list(staging, &ids, &n, err) != 0)
        return err->code;
    char *rel = packs_reldir(name);
    char *sets = path_join(staging, "sets");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *set = path_join(sets, ids[i]);
        char *dir = path_join(set, rel);
        DIR *d = opendir(dir);
        /* a set without this source holds none; any other failure must
         * not pass for "no pack held" */
        if (d == NULL && errno != ENOENT)
            rc = sc_fail_errno(err, SC_ESTAGING, "cannot list %s", dir);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL)
            json_object_set_new(seen, e->d_name, json_true());
        if (d != NULL)
            closedir(d);
        free(set);
        free(dir);
    }
    free(sets);
    free(rel);
    set_list_free(ids, n);
    return rc;
}

/* A pack no kept set holds: out of the index first (committed), then off
 * the disk, so a crash between leaves a pack the next open indexes again. */
static int drop_pack(struct pagestore *ps, const char *path, const unsigned char id[PACK_ID_BYTES],
                     sc_err *err)
{
    int rc = pagestore_begin(ps, err);
    if (rc == 0)
        rc = drop_pack_rows(ps, id, err);
    if (rc == 0)
        rc = pagestore_commit(ps, err);
    if (rc == 0 && unlink(path) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot remove %s", path);
    return rc;
}

static int drop_unreferenced(struct pagestore *ps, json_t *seen, json_t *report, sc_err *err)
{
    DIR *d = opendir(ps->packs);
    if (d == NULL)
        return sc_fail_errno(err, SC_ESTAGING, "cannot list %s", ps->packs);
    int rc = 0;
    json_int_t dropped = 0, bytes = 0, kept = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        unsigned char id[PACK_ID_BYTES];
        if (pack_name_id(ps, e->d_name, id) != 0)
            continue;
        char *path = path_join(ps->packs, e->d_name);
        struct stat sb;
        /* One link: only the store's. A set that holds a copy names it. */
        if (stat(path, &sb) == 0 && sb.st_nlink == 1 && json_object_get(seen, e->d_name) == NULL) {
            rc = drop_pack(ps, path, id, err);
            dropped++;
            bytes += sb.st_size;
        } else {
            kept++;
        }
        free(path);
    }
    closedir(d);
    json_object_set_new(report, "packs_dropped", json_integer(dropped));
    json_object_set_new(report, "bytes_dropped", json_integer(bytes));
    json_object_set_new(report, "packs_kept", json_integer(kept));
    if (dropped > 0)
        log_info("sqlite %s: page store: %lld unreferenced pack(s) removed (%.1f MB)", ps->name,
                 (long long)dropped, (double)bytes / 1e6);
    return rc;
}

/* The counts of a source's stores add up; the rest is the first store's. */
static void report_add(json_t *into, json_t *from)
{
    static const char *const summed[] = {"packs_dropped", "bytes_dropped", "packs_kept",
                                         "packs_retired", "pages_live",    "bytes_live"};
    const char *k;
    json_t *v;
    json_object_foreach(from, k, v)
    {
        json_t *have = json_object_get(into, k);
        if (have == NULL) {
            json_object_set_new(into, k, json_deep_copy(v));
            continue;
        }
        if (json_is_object(have) && json_is_object(v))
            report_add(have, v);
        for (size_t i = 0; i < sizeof summed / sizeof summed[0]; i++)
            if (strcmp(k, summed[i]) == 0 && json_is_integer(have) && json_is_integer(v))
                json_object_set_new(into, k,
                                    json_integer(json_integer_value(have) + json_integer_value(v)));
    }
}

static int upkeep_store(const char *staging, const char *name, const char *key_id,
                        long repack_threshold, json_t *seen, json_t *report, sc_err *err)
{
    struct pagestore ps;
    json_t *mine = json_object();
    int rc = pagestore_open(&ps, staging, name, key_id, 0, err);
    if (rc == 0) {
        rc = drop_unreferenced(&ps, seen, mine, err);
        if (rc == 0)
            rc = pagestore_repack(&ps, staging, repack_threshold, mine, err);
        pagestore_close(&ps);
    }
    report_add(report, mine);
    json_decref(mine);
    return rc;
}

/* The plain store (when there is one), then every sealed one. */
static int upkeep_stores(const char *staging, const char *name, long repack_threshold, json_t *seen,
                         json_t *report, sc_err *err)
{
    char *dir = source_dir(staging, name);
    char *plain = path_join(dir, "packs");
    int rc = 0;
    if (fs_exists(plain))
        rc = upkeep_store(staging, name, NULL, repack_threshold, seen, report, err);
    free(plain);
    DIR *d = rc == 0 ? opendir(dir) : NULL;
    if (d == NULL) {
        if (rc == 0)
            rc = sc_fail_errno(err, SC_ESTAGING, "cannot list %s", dir);
        free(dir);
        return rc;
    }
    size_t prefix = strlen(SEALED_STORE_PREFIX);
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, SEALED_STORE_PREFIX, prefix) == 0 && e->d_name[prefix] != '\0')
            rc = upkeep_store(staging, name, e->d_name + prefix, repack_threshold, seen, report,
                              err);
    closedir(d);
    free(dir);
    return rc;
}

int pagestore_upkeep(const char *staging, const char *name, long repack_threshold, json_t *report,
                     sc_err *err)
{
    char *dir = source_dir(staging, name);
    bool exists = fs_exists(dir);
    free(dir);
    if (!exists)
        return 0;
    json_t *seen = json_object();
    int rc = packs_in_sets(staging, name, seen, err);
    if (rc == 0)
        rc = upkeep_stores(staging, name, repack_threshold, seen, report, err);
    json_decref(seen);
    return rc;
}
