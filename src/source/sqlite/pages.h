/* [sqlite NAME] layout = pages (docs/sqlite-pages.md): the staged copy is
 * kept as immutable page packs plus a page map, so that restic finds every
 * older pack unchanged and uploads only the pages that changed.
 *
 *   pagemap.c   the map's format (encode, decode) and reassembling the
 *               database from a map and its packs (restore, verify, drill)
 *   pagestore.c the store <staging>/pagestore/<name>/: packs, the index
 *               (page hash -> pack, offset) and its repair, upkeep
 *   pages.c     the stage side: the copy's pages into the store, the map
 *               and links to its packs into the set
 *   repack.c    which page slots of which packs each set uses; retiring
 *               packs mostly no kept set uses (repack_threshold)
 * Private to src/source/sqlite/. */
#ifndef SC_SOURCE_SQLITE_PAGES_H
#define SC_SOURCE_SQLITE_PAGES_H

#include <sodium.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "../../core/err.h"
#include "../../stage/crypto.h"

struct job;
struct set;
struct source_cfg;

/* ---- pagemap.c: the format ------------------------------------------------ */

#define PAGEMAP_MAGIC "SCPGMAP1"
#define PAGEMAP_MAGIC_LEN 8
#define PAGEMAP_HEADER_BYTES 128 /* magic, page size, entry size, pages, db header */
#define PAGEMAP_ENTRY_BYTES 40   /* pack id, offset, page hash */
#define PACK_ID_BYTES 16
#define PACK_ID_HEX (2 * PACK_ID_BYTES + 1)
#define PAGE_HASH_BYTES 32    /* BLAKE2b-256: a page's identity in the store */
#define PAGEMAP_HASH_BYTES 16 /* its first 16 bytes, in the map: a check */
#define PACK_MAX_BYTES ((uint64_t)64 << 20)
#define PACK_SUFFIX ".pack"
#define SEALED_STORE_PREFIX "sealed-" /* <store>/sealed-<key id>/: sealed packs */
#define DB_HEADER_BYTES 100

struct pagemap_header {
    uint32_t page_size;
    uint64_t pages;
    unsigned char db_header[DB_HEADER_BYTES];
};

struct pagemap_entry {
    unsigned char pack[PACK_ID_BYTES];
    uint64_t offset; /* in bytes, in the pack */
    unsigned char hash[PAGEMAP_HASH_BYTES];
};

void pagemap_encode_header(const struct pagemap_header *h, unsigned char out[PAGEMAP_HEADER_BYTES]);
/* NULL when good, else what is wrong with it. */
const char *pagemap_decode_header(const unsigned char *in, size_t len, struct pagemap_header *h);
void pagemap_encode_entry(const struct pagemap_entry *e, unsigned char out[PAGEMAP_ENTRY_BYTES]);
void pagemap_decode_entry(const unsigned char in[PAGEMAP_ENTRY_BYTES], struct pagemap_entry *e);
/* A page's identity (BLAKE2b-256). */
void page_hash(const void *page, size_t len, unsigned char out[PAGE_HASH_BYTES]);
void pack_id_hex(const unsigned char id[PACK_ID_BYTES], char out[PACK_ID_HEX]);
/* dir/<id in hex>.pack: the one way a pack is named (store, set, map). */
char *pack_path(const char *dir, const unsigned char id[PACK_ID_BYTES]);
/* The same with suffix instead of .pack (.pack.enc for a sealed pack). */
char *pack_path_as(const char *dir, const unsigned char id[PACK_ID_BYTES], const char *suffix);
/* 0 when hex is 32 hex digits naming a pack id. */
int pack_id_parse(const char *hex, unsigned char id[PACK_ID_BYTES]);

/* Where the set keeps them: sqlite/<name>.pagemap, sqlite/<name>.packs/. */
char *pagemap_relpath(const char *name);
char *packs_reldir(const char *name);

/* sq_pages_unpack (the reassembly) is declared in sqlite.h. */

/* ---- pagestore.c: the store -------------------------------------------- */

/* A pack's size and BLAKE2b-512, as stored (ciphertext when sealed) or of
 * its pages (plaintext). */
struct pack_facts {
    uint64_t bytes;
    char blake2b[129];
};

/* One store per source and kind: <staging>/pagestore/<name> holds plain
 * packs, <staging>/pagestore/<name>/sealed-<key id> the packs of an
 * encrypted staging, each sealed once (stagecoach-enc/1) to that key. */
struct pagestore {
    char *dir;          /* <staging>/pagestore/<name>[/sealed-<key id>] */
    char *packs;        /* its packs/ */
    char *name;         /* the source, for messages */
    const char *suffix; /* of its pack files: .pack, or .pack.enc when sealed */
    bool sealed;
    sqlite3 *index;
    sqlite3_stmt *find, *add_page, *add_pack, *add_plain, *pack_info, *plain_info;
};

/* Open (create) a store of a source (key_id: NULL for the plain store, else
 * the hex key id of the sealed one) and bring its index in line with the
 * packs on disk: packs a crash left unindexed are indexed (sealed ones
 * cannot be read back without the secret key: removed when no set links
 * them, else left unused), rows of packs that are gone dropped, a damaged
 * index rebuilt from the packs. */
int pagestore_open(struct pagestore *ps, const char *staging, const char *name, const char *key_id,
                   uint32_t page_size, sc_err *err);
void pagestore_close(struct pagestore *ps);
/* Where a page with this hash is stored: 1 found, 0 not, -1 error. */
int pagestore_find(struct pagestore *ps, const unsigned char hash[PAGE_HASH_BYTES],
                   unsigned char pack[PACK_ID_BYTES], uint64_t *offset, sc_err *err);
int pagestore_begin(struct pagestore *ps, sc_err *err);
int pagestore_commit(struct pagestore *ps, sc_err *err);
void pagestore_rollback(struct pagestore *ps);
int pagestore_add_page(struct pagestore *ps, const unsigned char hash[PAGE_HASH_BYTES],
                       const unsigned char pack[PACK_ID_BYTES], uint64_t offset, sc_err *err);
/* plain: of the pages, for a sealed pack (ignored for a plain one). */
int pagestore_add_pack(struct pagestore *ps, const unsigned char id[PACK_ID_BYTES],
                       const struct pack_facts *stored, const struct pack_facts *plain,
                       sc_err *err);
/* A pack's facts as written (packs never change); plain may be NULL, and
 * for a plain pack is the same as stored. */
int pagestore_pack_info(struct pagestore *ps, const unsigned char id[PACK_ID_BYTES],
                        struct pack_facts *stored, struct pack_facts *plain, sc_err *err);
char *pagestore_pack_path(const struct pagestore *ps, const unsigned char id[PACK_ID_BYTES]);

/* A pack being written: <store>/packs/.tmp-<id><suffix>, then fsync +
 * rename. A sealed pack is encrypted as it is written, bound to its name
 * in a set (sqlite/<name>.packs/<id>.pack), so its bytes are the same in
 * every set that links it. */
struct pack_writer {
    unsigned char id[PACK_ID_BYTES];
    char *tmp;
    int fd;
    uint64_t bytes;                  /* of pages: the next page's offset */
    uint64_t stored_bytes;           /* as written (ciphertext when sealed) */
    crypto_generichash_state stored; /* BLAKE2b-512 of what is written */
    crypto_generichash_state plain;  /* and of the pages, when sealed */
    struct crypto_writer *enc;       /* sealed packs only */
};
/* key: the set's (NULL for a plain store). */
int pack_writer_open(struct pack_writer *w, const struct pagestore *ps,
                     const struct crypto_key *key, sc_err *err);
int pack_writer_add(struct pack_writer *w, const void *page, size_t len, sc_err *err);
/* fsync, rename to <id><suffix>, fsync the directory; the facts of the
 * stored bytes and of the pages. */
int pack_writer_finish(struct pack_writer *w, const struct pagestore *ps, struct pack_facts *stored,
                       struct pack_facts *plain, sc_err *err);
void pack_writer_abort(struct pack_writer *w);

/* Upkeep after local sets were pruned: drop the packs no kept set links,
 * then retire those more than repack_threshold percent unused (repack.c). */
int pagestore_upkeep(const char *staging, const char *name, long repack_threshold, json_t *report,
                     sc_err *err);
/* The index's error, with what was being done. */
int pagestore_index_fail(struct pagestore *ps, sc_err *err, const char *what);
/* One statement, its parameters a text (when not NULL) then a blob (when
 * not NULL), stepped to its end. */
int pagestore_run(struct pagestore *ps, const char *sql, const void *blob, int blob_len,
                  const char *text, sc_err *err);

/* ---- repack.c: which packs a set uses, and retiring mostly unused ones --- */

struct pack_use {
    unsigned char id[PACK_ID_BYTES];
    unsigned char *slots; /* bit n: the page at offset n * page_size is used */
};
struct pack_uses {
    struct pack_use *v; /* the packs a map names */
    size_t n;
    uint32_t page_size;
    size_t slot_bytes; /* bitmap bytes for a pack of PACK_MAX_BYTES */
};
void pack_uses_init(struct pack_uses *u, uint32_t page_size);
/* The map names the page at offset in pack id. */
void pack_uses_note(struct pack_uses *u, const unsigned char id[PACK_ID_BYTES], uint64_t offset);
void pack_uses_free(struct pack_uses *u);
/* In the stage's transaction: what set_id uses; *repacked the retired
 * pages this stage wrote again (the cost of repacking), then retired is
 * emptied. */
int pagestore_record_uses(struct pagestore *ps, const char *set_id, const struct pack_uses *u,
                          long long *repacked, sc_err *err);
/* Upkeep: retire the packs of which more than threshold percent of the
 * pages no kept set uses; report["repack"] says what it did. */
int pagestore_repack(struct pagestore *ps, const char *staging, long threshold, json_t *report,
                     sc_err *err);

/* pages.c (staging: sq_pages_add, sq_layout_pages, sq_pages_upkeep) is
 * declared in sqlite.h, which sqlite.c includes instead of this file. */

#endif
