/* Staging with layout = pages: the checked copy in the set is read once,
 * page by page; each page is hashed (BLAKE2b-256) and looked up in the
 * source's page store. Pages the store lacks go into new packs; the set gets
 * the page map (sqlite/<name>.pagemap) and a hard link to every pack the
 * map names (sqlite/<name>.packs/<id>.pack), and the copy itself goes. The
 * whole file's BLAKE2b-512 is computed in the same pass for the manifest.
 * An encrypted set uses the store sealed to its key: its packs are sealed
 * once, when written (<id>.pack.enc), and linked as they are; the map goes
 * through the set's sink, which encrypts it. */
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
#include "../../stage/set.h"
#include "../../stage/sink.h"
#include "pages.h"
#include "sqlite.h"

#define MAP_BATCH 1024 /* entries written to the map at a time */

struct packing {
    struct job *j;
    const struct crypto_key *key; /* the set's, NULL when not encrypted */
    struct pagestore ps;
    struct pack_writer w;
    bool writing;
    struct sink map;
    unsigned char *entries; /* MAP_BATCH encoded entries */
    size_t nentries;
    unsigned char *page; /* a page split over two reads */
    size_t fill;
    uint32_t page_size;
    struct pack_uses uses; /* the packs the map names, and which of their pages */
    long long pages_new, pages_reused, packs_new, pages_repacked;
};

/* layout = auto: where the upload saved outweighs the stage time added
 * (docs/sqlite-pages.md, "Which layout"). */
#define PAGES_FROM_MIB_DEFAULT 1024

long sq_pages_from_mib(const struct source_cfg *src)
{
    return src->pages_from_mib > 0 ? src->pages_from_mib : PAGES_FROM_MIB_DEFAULT;
}

bool sq_layout_pages(const struct source_cfg *src, uint64_t db_bytes)
{
    if (src->layout == NULL || strcmp(src->layout, "auto") == 0)
        return db_bytes >= (uint64_t)sq_pages_from_mib(src) << 20;
    return strcmp(src->layout, "pages") == 0;
}

static int finish_pack(struct packing *p, sc_err *err)
{
    struct pack_facts stored, plain;
    p->writing = false;
    int rc = pack_writer_finish(&p->w, &p->ps, &stored, &plain, err);
    if (rc == 0)
        rc = pagestore_add_pack(&p->ps, p->w.id, &stored, &plain, err);
    p->packs_new += rc == 0;
    return rc;
}

/* A page the store lacks: into the current pack (a new one when full). */
static int store_page(struct packing *p, const unsigned char *page,
                      const unsigned char hash[PAGE_HASH_BYTES], struct pagemap_entry *e,
                      sc_err *err)
{
    if (p->writing && p->w.bytes + p->page_size > PACK_MAX_BYTES && finish_pack(p, err) != 0)
        return err->code;
    if (!p->writing) {
        if (pack_writer_open(&p->w, &p->ps, p->key, err) != 0)
            return err->code;
        p->writing = true;
    }
    memcpy(e->pack, p->w.id, PACK_ID_BYTES);
    e->offset = p->w.bytes;
    p->pages_new++;
    if (pack_writer_add(&p->w, page, p->page_size, err) != 0)
        return err->code;
    return pagestore_add_page(&p->ps, hash, e->pack, e->offset, err);
}

static int flush_entries(struct packing *p, sc_err *err)
{
    int rc = sink_write(&p->map, p->entries, p->nentries * PAGEMAP_ENTRY_BYTES, err);
    p->nentries = 0;
    return rc;
}

static int add_page(struct packing *p, const unsigned char *page, sc_err *err)
{
    unsigned char hash[PAGE_HASH_BYTES];
    struct pagemap_entry e;
    page_hash(page, p->page_size, hash);
    memcpy(e.hash, hash, PAGEMAP_HASH_BYTES);
    int found = pagestore_find(&p->ps, hash, e.pack, &e.offset, err);
    if (found < 0)
        return err->code;
    if (found)
        p->pages_reused++;
    else if (store_page(p, page, hash, &e, err) != 0)
        return err->code;
    pack_uses_note(&p->uses, e.pack, e.offset);
    pagemap_encode_entry(&e, p->entries + p->nentries * PAGEMAP_ENTRY_BYTES);
    if (++p->nentries == MAP_BATCH)
        return flush_entries(p, err);
    return 0;
}

/* hash_fd_to hands on the file in pieces: cut them into pages. */
static int take_piece(void *ctx, const void *buf, size_t len, sc_err *err)
{
    struct packing *p = ctx;
    const unsigned char *b = buf;
    while (len > 0) {
        if (p->fill == 0 && len >= p->page_size) {
            if (add_page(p, b, err) != 0)
                return err->code;
            b += p->page_size;
            len -= p->page_size;
            continue;
        }
        size_t take = p->page_size - p->fill < len ? p->page_size - p->fill : len;
        memcpy(p->page + p->fill, b, take);
        p->fill += take;
        b += take;
        len -= take;
        if (p->fill == p->page_size) {
            p->fill = 0;
            if (add_page(p, p->page, err) != 0)
                return err->code;
        }
    }
    return 0;
}

static int write_map_header(struct packing *p, int fd, uint64_t size, sc_err *err)
{
    struct pagemap_header h = {.page_size = p->page_size, .pages = size / p->page_size};
    if (pread(fd, h.db_header, DB_HEADER_BYTES, 0) != DB_HEADER_BYTES)
        return sc_fail_errno(err, SC_ESTAGING, "cannot read %s", p->j->dst_path);
    unsigned char buf[PAGEMAP_HEADER_BYTES];
    pagemap_encode_header(&h, buf);
    return sink_write(&p->map, buf, sizeof buf, err);
}

/* hash_fd_to hands the pack on in pieces: into the copy. */
static int to_fd(void *ctx, const void *buf, size_t len, sc_err *err)
{
    const int *fd = ctx;
    if (fs_write_all(*fd, buf, len) != 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot write a copy of a pack");
    return 0;
}

/* Where the set cannot link to the store: the pack's bytes copied as they
 * are (sealed packs stay sealed once), checked against what the store
 * wrote, made durable. */
static int copy_pack(const char *from, const char *to, const struct pack_facts *stored, sc_err *err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot open %s", from);
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = out < 0 ? sc_fail_errno(err, SC_ESTAGING, "cannot create %s", to) : 0;
    struct pack_facts got = {0};
    if (rc == 0)
        rc = hash_fd_to(in, from, SC_ESTAGING, to_fd, &out, got.blake2b, &got.bytes, err);
    if (rc == 0 && (got.bytes != stored->bytes || strcmp(got.blake2b, stored->blake2b) != 0))
        rc = sc_fail(err, SC_ESTAGING, "%s is not what the page store wrote", from);
    if (rc == 0 && fsync(out) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot fsync %s", to);
    if (out >= 0 && close(out) != 0 && rc == 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", to);
    if (rc != 0 && out >= 0)
        unlink(to);
    close(in);
    return rc;
}

/* A second name for the pack in the set (a copy where the file system
 * cannot link), recorded with the facts it was written with. */
static int link_pack(struct packing *p, const char *reldir, const unsigned char id[PACK_ID_BYTES],
                     sc_err *err)
{
    struct pack_facts stored, plain;
    char *rel = pack_path_as(reldir, id, p->ps.suffix);
    char *from = pagestore_pack_path(&p->ps, id);
    char *to = set_file_path(p->j->set, rel, err);
    if (to == NULL) {
        free(rel);
        free(from);
        return err->code ? err->code : SC_ESTAGING;
    }
    int rc = pagestore_pack_info(&p->ps, id, &stored, &plain, err);
    if (rc == 0 && link(from, to) != 0) {
        if (errno == EXDEV || errno == EPERM || errno == EMLINK || errno == ENOTSUP)
            rc = copy_pack(from, to, &stored, err);
        else
            rc = sc_fail_errno(err, SC_ESTAGING, "cannot link %s to %s", from, to);
    }
    if (rc == 0 && p->ps.sealed) {
        char *plain_rel = pack_path(reldir, id);
        set_record_sealed_file(p->j->set, rel, stored.bytes, stored.blake2b, plain_rel, plain.bytes,
                               plain.blake2b);
        free(plain_rel);
    } else if (rc == 0) {
        set_record_file(p->j->set, rel, stored.bytes, stored.blake2b);
    }
    free(rel);
    free(from);
    free(to);
    return rc;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(((const struct pack_use *)a)->id, ((const struct pack_use *)b)->id,
                  PACK_ID_BYTES);
}

/* Every pack the map names, in id order (the manifest is deterministic). */
static int link_packs(struct packing *p, sc_err *err)
{
    char *reldir = packs_reldir(p->j->cfg->name);
    qsort(p->uses.v, p->uses.n, sizeof *p->uses.v, cmp_id);
    int rc = 0;
    for (size_t i = 0; i < p->uses.n && rc == 0; i++)
        rc = link_pack(p, reldir, p->uses.v[i].id, err);
    if (rc == 0 && p->uses.n > 0) {
        char *dir = path_join(p->j->set->tmpdir, reldir);
        rc = fs_fsync_dir(dir, err);
        free(dir);
    }
    free(reldir);
    return rc;
}

static void describe(struct packing *p, uint64_t bytes, const char *hex)
{
    json_t *e = p->j->entry;
    char *db = xasprintf("sqlite/%s.db", p->j->cfg->name);
    json_object_set_new(e, "layout", json_string("pages"));
    json_object_set_new(
        e, "database",
        json_pack("{s:s, s:I, s:s}", "path", db, "bytes", (json_int_t)bytes, "blake2b", hex));
    json_object_set_new(e, "pagestore",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "pages_new",
                                  (json_int_t)p->pages_new, "pages_reused",
                                  (json_int_t)p->pages_reused, "packs", (json_int_t)p->uses.n,
                                  "packs_new", (json_int_t)p->packs_new, "bytes_new",
                                  (json_int_t)(p->pages_new * p->page_size), "pages_repacked",
                                  (json_int_t)p->pages_repacked));
    free(db);
}

/* The copy's pages through the store; the map written as they go. */
static int pack_copy(struct packing *p, int fd, sc_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size % p->page_size != 0 || st.st_size < DB_HEADER_BYTES)
        return sc_fail(err, SC_ESTAGING, "sqlite %s: %s is not a whole number of %u-byte pages",
                       p->j->cfg->name, p->j->dst_path, p->page_size);
    char *map_rel = pagemap_relpath(p->j->cfg->name);
    int rc = sink_open(&p->map, p->j->set, map_rel, err);
    free(map_rel);
    if (rc != 0)
        return rc;
    char hex[129];
    uint64_t bytes = 0;
    rc = write_map_header(p, fd, (uint64_t)st.st_size, err);
    if (rc == 0)
        rc = hash_fd_to(fd, p->j->dst_path, SC_ESTAGING, take_piece, p, hex, &bytes, err);
    if (rc == 0 && p->nentries > 0)
        rc = flush_entries(p, err);
    if (rc == 0 && p->writing)
        rc = finish_pack(p, err);
    if (rc == 0)
        rc = pagestore_record_uses(&p->ps, p->j->set->id, &p->uses, &p->pages_repacked, err);
    if (rc == 0)
        rc = pagestore_commit(&p->ps, err);
    if (rc == 0)
        rc = link_packs(p, err);
    if (rc == 0)
        rc = sink_close(&p->map, err);
    else
        sink_abort(&p->map);
    if (rc == 0)
        describe(p, bytes, hex);
    return rc;
}

int sq_pages_add(struct job *j, sc_err *err)
{
    struct packing p = {.j = j, .key = set_key(j->set), .page_size = (uint32_t)j->page_size};
    char key_id[CRYPTO_KEY_ID_HEX];
    if (p.key != NULL)
        crypto_key_id_hex(p.key, key_id);
    if (j->page_size < 512 || j->page_size > 65536)
        return sc_fail(err, SC_ESTAGING, "sqlite %s: page size %lld", j->cfg->name, j->page_size);
    int fd = open(j->dst_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot open %s", j->dst_path);
    int rc = pagestore_open(&p.ps, j->set->staging, j->cfg->name, p.key ? key_id : NULL,
                            p.page_size, err);
    bool opened = rc == 0; /* on failure pagestore_open closed it */
    if (rc == 0)
        rc = pagestore_begin(&p.ps, err);
    if (rc == 0) {
        p.entries = xmalloc((size_t)MAP_BATCH * PAGEMAP_ENTRY_BYTES);
        p.page = xmalloc(p.page_size);
        pack_uses_init(&p.uses, p.page_size);
        rc = pack_copy(&p, fd, err);
        if (p.writing)
            pack_writer_abort(&p.w);
    }
    if (opened)
        pagestore_close(&p.ps); /* rolls back what a failure left uncommitted */
    close(fd);
    if (rc == 0)
        log_info("sqlite %s: %lld new pages in %lld new pack(s), %lld pages already stored",
                 j->cfg->name, p.pages_new, p.packs_new, p.pages_reused);
    free(p.entries);
    free(p.page);
    pack_uses_free(&p.uses);
    return rc;
}

int sq_pages_upkeep(const struct source_cfg *src, const char *staging, json_t *report, sc_err *err)
{
    return pagestore_upkeep(staging, src->name, src->repack_threshold, report, err);
}
