/* The page map's format (docs/sqlite-pages.md) and reassembly of a
 * database from a map and its packs.
 *
 * The map is fixed-width and deterministic: a 128-byte header, then one
 * 40-byte entry per page in page order. A page that did not change keeps
 * its entry byte for byte, so restic finds the unchanged regions of the map
 * too. Integers are little-endian. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/config.h"
#include "../../core/fs.h"
#include "../../core/log.h"
#include "../../core/spawn.h"
#include "../../core/xalloc.h"
#include "../../stage/hashpipe.h"
#include "pages.h"
#include "sqlite.h"

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* magic[8] page_size:u32 entry_bytes:u32 pages:u64 db_header[100] zero[4] */
void pagemap_encode_header(const struct pagemap_header *h, unsigned char out[PAGEMAP_HEADER_BYTES])
{
    memset(out, 0, PAGEMAP_HEADER_BYTES);
    for (size_t i = 0; i < PAGEMAP_MAGIC_LEN; i++) /* no NUL in the file */
        out[i] = (unsigned char)PAGEMAP_MAGIC[i];
    put_u32(out + 8, h->page_size);
    put_u32(out + 12, PAGEMAP_ENTRY_BYTES);
    put_u64(out + 16, h->pages);
    memcpy(out + 24, h->db_header, DB_HEADER_BYTES);
}

static bool page_size_ok(uint32_t n)
{
    return n >= 512 && n <= 65536 && (n & (n - 1)) == 0;
}

const char *pagemap_decode_header(const unsigned char *in, size_t len, struct pagemap_header *h)
{
    if (len < PAGEMAP_HEADER_BYTES)
        return "truncated header";
    if (memcmp(in, PAGEMAP_MAGIC, PAGEMAP_MAGIC_LEN) != 0)
        return "not a stagecoach page map";
    if (get_u32(in + 12) != PAGEMAP_ENTRY_BYTES)
        return "unknown entry size";
    h->page_size = get_u32(in + 8);
    if (!page_size_ok(h->page_size))
        return "bad page size";
    h->pages = get_u64(in + 16);
    if (h->pages > ((uint64_t)1 << 32))
        return "too many pages";
    memcpy(h->db_header, in + 24, DB_HEADER_BYTES);
    return NULL;
}

/* pack[16] offset:u64 hash[16] */
void pagemap_encode_entry(const struct pagemap_entry *e, unsigned char out[PAGEMAP_ENTRY_BYTES])
{
    memcpy(out, e->pack, PACK_ID_BYTES);
    put_u64(out + PACK_ID_BYTES, e->offset);
    memcpy(out + PACK_ID_BYTES + 8, e->hash, PAGEMAP_HASH_BYTES);
}

void pagemap_decode_entry(const unsigned char in[PAGEMAP_ENTRY_BYTES], struct pagemap_entry *e)
{
    memcpy(e->pack, in, PACK_ID_BYTES);
    e->offset = get_u64(in + PACK_ID_BYTES);
    memcpy(e->hash, in + PACK_ID_BYTES + 8, PAGEMAP_HASH_BYTES);
}

void page_hash(const void *page, size_t len, unsigned char out[PAGE_HASH_BYTES])
{
    crypto_generichash(out, PAGE_HASH_BYTES, page, len, NULL, 0);
}

void pack_id_hex(const unsigned char id[PACK_ID_BYTES], char out[PACK_ID_HEX])
{
    sodium_bin2hex(out, PACK_ID_HEX, id, PACK_ID_BYTES);
}

char *pack_path_as(const char *dir, const unsigned char id[PACK_ID_BYTES], const char *suffix)
{
    char hex[PACK_ID_HEX];
    pack_id_hex(id, hex);
    return xasprintf("%s/%s%s", dir, hex, suffix);
}

char *pack_path(const char *dir, const unsigned char id[PACK_ID_BYTES])
{
    return pack_path_as(dir, id, PACK_SUFFIX);
}

int pack_id_parse(const char *hex, unsigned char id[PACK_ID_BYTES])
{
    size_t got = 0;
    if (strlen(hex) != PACK_ID_HEX - 1)
        return -1;
    for (const char *p = hex; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return -1;
    if (sodium_hex2bin(id, PACK_ID_BYTES, hex, PACK_ID_HEX - 1, NULL, &got, NULL) != 0 ||
        got != PACK_ID_BYTES)
        return -1;
    return 0;
}

char *pagemap_relpath(const char *name)
{
    return xasprintf("sqlite/%s.pagemap", name);
}

char *packs_reldir(const char *name)
{
    return xasprintf("sqlite/%s.packs", name);
}

/* ---- reassembly ----------------------------------------------------------- */

/* Open packs, a few at a time: consecutive pages mostly share one. */
#define OPEN_PACKS 16

struct open_pack {
    unsigned char id[PACK_ID_BYTES];
    int fd;
};

struct reassembly {
    const char *name;
    char *dir;      /* the set */
    char *map_rel;  /* sqlite/<name>.pagemap */
    char *pack_rel; /* sqlite/<name>.packs */
    char *out;      /* sqlite/<name>.db.part */
    int map_fd, out_fd;
    struct pagemap_header h;
    struct open_pack open[OPEN_PACKS];
    size_t next_slot;
    unsigned char *page;
    crypto_generichash_state whole;
    sc_err *err;
};

/* The pack's fd, opened on first use; -1 with err set (exit 7: missing). */
static int pack_fd(struct reassembly *r, const unsigned char id[PACK_ID_BYTES])
{
    for (size_t i = 0; i < OPEN_PACKS; i++)
        if (r->open[i].fd >= 0 && memcmp(r->open[i].id, id, PACK_ID_BYTES) == 0)
            return r->open[i].fd;
    char *rel = pack_path(r->pack_rel, id);
    char *path = path_join(r->dir, rel);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        sc_fail(r->err, SC_EVERIFY, "sqlite %s: %s: %s", r->name, rel,
                errno == ENOENT ? "pack missing" : strerror(errno));
    free(path);
    free(rel);
    if (fd < 0)
        return -1;
    struct open_pack *slot = &r->open[r->next_slot];
    r->next_slot = (r->next_slot + 1) % OPEN_PACKS;
    if (slot->fd >= 0)
        close(slot->fd);
    memcpy(slot->id, id, PACK_ID_BYTES);
    slot->fd = fd;
    return fd;
}

/* Why a page cannot be used: NULL when it was read whole and its hash is
 * the map's. */
static const char *page_problem(ssize_t got, const struct reassembly *r,
                                const struct pagemap_entry *e)
{
    if (got < 0)
        return strerror(errno);
    if (got != (ssize_t)r->h.page_size)
        return "truncated";
    unsigned char hash[PAGE_HASH_BYTES];
    page_hash(r->page, r->h.page_size, hash);
    return memcmp(hash, e->hash, PAGEMAP_HASH_BYTES) == 0 ? NULL : "hash mismatch";
}

/* One page from its pack into the database being rebuilt, checked. */
static int copy_page(struct reassembly *r, uint64_t n, const struct pagemap_entry *e)
{
    int fd = pack_fd(r, e->pack);
    if (fd < 0)
        return r->err->code;
    ssize_t got = pread(fd, r->page, r->h.page_size, (off_t)e->offset);
    const char *why = page_problem(got, r, e);
    if (why != NULL) {
        char *rel = pack_path(r->pack_rel, e->pack);
        int rc =
            sc_fail(r->err, SC_EVERIFY, "sqlite %s: %s: %s (page %llu at offset %llu)", r->name,
                    rel, why, (unsigned long long)n + 1, (unsigned long long)e->offset);
        free(rel);
        return rc;
    }
    /* the map's copy of the database header is the first page's */
    if (n == 0 && memcmp(r->page, r->h.db_header, DB_HEADER_BYTES) != 0)
        return sc_fail(r->err, SC_EVERIFY,
                       "sqlite %s: %s: its database header is not the first page's", r->name,
                       r->map_rel);
    crypto_generichash_update(&r->whole, r->page, r->h.page_size);
    if (fs_write_all(r->out_fd, r->page, r->h.page_size) != 0)
        return sc_fail_errno(r->err, SC_ESTAGING, "cannot write %s", r->out);
    return 0;
}

/* The map's header, and its size against the page count it states. */
static int read_map_header(struct reassembly *r)
{
    unsigned char buf[PAGEMAP_HEADER_BYTES];
    ssize_t got = pread(r->map_fd, buf, sizeof buf, 0);
    const char *why = got < 0 ? strerror(errno) : pagemap_decode_header(buf, (size_t)got, &r->h);
    if (why != NULL)
        return sc_fail(r->err, SC_EVERIFY, "sqlite %s: %s: %s", r->name, r->map_rel, why);
    struct stat st;
    uint64_t want = PAGEMAP_HEADER_BYTES + r->h.pages * PAGEMAP_ENTRY_BYTES;
    if (fstat(r->map_fd, &st) != 0 || (uint64_t)st.st_size != want)
        return sc_fail(r->err, SC_EVERIFY, "sqlite %s: %s: %s (%lld bytes for %llu pages)", r->name,
                       r->map_rel,
                       (uint64_t)st.st_size < want ? "truncated" : "longer than its pages",
                       (long long)st.st_size, (unsigned long long)r->h.pages);
    return 0;
}

/* Every page, in order; entries read 1024 at a time. */
static int copy_pages(struct reassembly *r)
{
    enum { BATCH = 1024 };
    unsigned char *buf = xmalloc((size_t)BATCH * PAGEMAP_ENTRY_BYTES);
    int rc = 0;
    for (uint64_t n = 0; n < r->h.pages && rc == 0; n += BATCH) {
        uint64_t k = r->h.pages - n < BATCH ? r->h.pages - n : BATCH;
        size_t len = (size_t)k * PAGEMAP_ENTRY_BYTES;
        off_t at = (off_t)(PAGEMAP_HEADER_BYTES + n * PAGEMAP_ENTRY_BYTES);
        if (pread(r->map_fd, buf, len, at) != (ssize_t)len) {
            rc = sc_fail(r->err, SC_EVERIFY, "sqlite %s: %s: truncated", r->name, r->map_rel);
            break;
        }
        for (uint64_t i = 0; i < k && rc == 0; i++) {
            struct pagemap_entry e;
            pagemap_decode_entry(buf + i * PAGEMAP_ENTRY_BYTES, &e);
            rc = copy_page(r, n + i, &e);
        }
        if (rc == 0 && sc_stop_requested)
            rc = sc_fail(r->err, SC_EINTR, "sqlite %s: interrupted", r->name);
    }
    free(buf);
    return rc;
}

/* The rebuilt file is the database the manifest describes. */
static int check_whole(struct reassembly *r, json_t *entry)
{
    json_t *db = json_object_get(entry, "database");
    const char *want = json_string_value(json_object_get(db, "blake2b"));
    json_int_t bytes = json_integer_value(json_object_get(db, "bytes"));
    char hex[129];
    blake2b_final_hex(&r->whole, hex);
    if (want == NULL)
        return sc_fail(r->err, SC_EVERIFY, "sqlite %s: the manifest has no database checksum",
                       r->name);
    if ((json_int_t)r->h.pages * (json_int_t)r->h.page_size != bytes)
        return sc_fail(
            r->err, SC_EVERIFY, "sqlite %s: %s: %llu pages of %u bytes, manifest says %lld bytes",
            r->name, r->map_rel, (unsigned long long)r->h.pages, r->h.page_size, (long long)bytes);
    if (strcmp(hex, want) != 0)
        return sc_fail(r->err, SC_EVERIFY,
                       "sqlite %s: the database rebuilt from %s: checksum mismatch", r->name,
                       r->map_rel);
    return 0;
}

static void reassembly_free(struct reassembly *r)
{
    for (size_t i = 0; i < OPEN_PACKS; i++)
        if (r->open[i].fd >= 0)
            close(r->open[i].fd);
    if (r->map_fd >= 0)
        close(r->map_fd);
    if (r->out_fd >= 0)
        close(r->out_fd);
    free(r->dir);
    free(r->map_rel);
    free(r->pack_rel);
    free(r->out);
    free(r->page);
}

static int open_files(struct reassembly *r)
{
    char *map = path_join(r->dir, r->map_rel);
    r->map_fd = open(map, O_RDONLY | O_CLOEXEC);
    free(map);
    if (r->map_fd < 0)
        return sc_fail(r->err, SC_EVERIFY, "sqlite %s: %s: %s", r->name, r->map_rel,
                       errno == ENOENT ? "missing" : strerror(errno));
    int rc = read_map_header(r);
    if (rc != 0)
        return rc;
    r->out_fd = open(r->out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (r->out_fd < 0)
        return sc_fail_errno(r->err, SC_ESTAGING, "cannot create %s", r->out);
    r->page = xmalloc(r->h.page_size);
    return 0;
}

static int rebuild(struct reassembly *r, json_t *entry, const char *final)
{
    int rc = open_files(r);
    if (rc == 0)
        rc = copy_pages(r);
    if (rc == 0)
        rc = check_whole(r, entry);
    if (rc == 0 && fsync(r->out_fd) != 0)
        rc = sc_fail_errno(r->err, SC_ESTAGING, "cannot fsync %s", r->out);
    if (rc == 0 && rename(r->out, final) != 0)
        rc = sc_fail_errno(r->err, SC_ESTAGING, "cannot rename %s", r->out);
    if (rc != 0 && r->out_fd >= 0)
        unlink(r->out);
    return rc;
}

int sq_pages_unpack(const char *dir, const char *into, json_t *entry, sc_err *err)
{
    const char *layout = json_string_value(json_object_get(entry, "layout"));
    const char *name = json_string_value(json_object_get(entry, "name"));
    /* only this function says a copy was checked: never a manifest */
    json_object_del(entry, SQ_REBUILT_CHECKED);
    if (layout == NULL || strcmp(layout, "pages") != 0)
        return 0;
    if (name == NULL || !config_source_name_ok(name))
        return sc_fail(err, SC_EVERIFY, "MANIFEST.json: a source without a valid name");
    struct reassembly r = {.name = name, .map_fd = -1, .out_fd = -1, .err = err};
    for (size_t i = 0; i < OPEN_PACKS; i++)
        r.open[i].fd = -1;
    r.dir = xstrdup(dir);
    r.map_rel = pagemap_relpath(name);
    r.pack_rel = packs_reldir(name);
    char *db_rel = xasprintf("sqlite/%s.db", name);
    char *final = path_join(into, db_rel);
    char *final_dir = path_join(into, "sqlite");
    r.out = xasprintf("%s.part", final);
    crypto_generichash_init(&r.whole, NULL, 0, crypto_generichash_BYTES_MAX);
    log_progress("sqlite %s: rebuilding the database from its pages", name);
    int rc = fs_mkdir_p(final_dir, 0700, err);
    if (rc == 0)
        rc = rebuild(&r, entry, final);
    free(final_dir);
    log_progress_done();
    reassembly_free(&r);
    if (rc == 0) {
        log_info("sqlite %s: rebuilt %s from its page map", name, db_rel);
        rc = sq_check_copy(name, final, entry, err);
    }
    if (rc == 0)
        json_object_set_new(entry, SQ_REBUILT_CHECKED, json_string(final));
    free(db_rel);
    free(final);
    return rc;
}
