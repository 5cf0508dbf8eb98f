/* stagecoach-enc/1 and key files: round trips of every size around the chunk
 * boundary in both modes; truncation, flipped bytes, reordered chunks,
 * appended data, swapped files and wrong keys all detected; header and key
 * file versions checked; keygen's files, permissions and refusals; and an
 * encrypted set end to end (sink, set_add_file, verify, unpack). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/fs.h"
#include "../../src/core/xalloc.h"
#include "../../src/stage/crypto.h"
#include "../../src/stage/manifest.h"
#include "../../src/stage/set.h"
#include "../../src/stage/hashfile.h"
#include "../../src/stage/sink.h"

/* Offsets of the header fields (docs/encryption.md). */
#define OFF_VERSION 8
#define OFF_MODE 9
#define OFF_RESERVED 10
#define OFF_CHUNK 12
#define OFF_KEY_ID 16
#define OFF_NAME_LEN 24
#define CHUNK_BYTES (CRYPTO_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES)

static char *dir; /* this run's temporary directory */
static struct crypto_key *sealed_id, *sealed_pub, *other_id, *sym_key;

/* Argon2id at its minimum cost: the format is the same, the tests fast. */
static const struct crypto_keygen_opts cheap = {.opslimit = crypto_pwhash_OPSLIMIT_MIN,
                                                .memlimit = crypto_pwhash_MEMLIMIT_MIN};

static char *tmp_path(const char *name)
{
    return path_join(dir, name);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    sc_err err = {0};
    unlink(path);
    assert_int_equal(fs_write_atomic(path, text, strlen(text), mode, &err), 0);
}

static void make_pair(const char *name, struct crypto_key **id, struct crypto_key **pub)
{
    char *out = tmp_path(name), *pubpath = xasprintf("%s.pub", out);
    char hex[CRYPTO_KEY_ID_HEX];
    sc_err err = {0};
    assert_int_equal(crypto_keygen(out, &cheap, hex, &err), 0);
    assert_int_equal(crypto_load_identity(out, NULL, id, &err), 0);
    if (pub)
        assert_int_equal(crypto_load_recipient(pubpath, pub, &err), 0);
    free(pubpath);
    free(out);
}

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    if ((dir = tu_mkdtemp("crypto")) == NULL)
        return -1;
    make_pair("main", &sealed_id, &sealed_pub);
    make_pair("other", &other_id, NULL);
    struct crypto_keygen_opts o = cheap;
    o.symmetric = true;
    char hex[CRYPTO_KEY_ID_HEX], *sym = tmp_path("sym");
    sc_err err = {0};
    if (crypto_keygen(sym, &o, hex, &err) != 0 || crypto_load_symmetric(sym, &sym_key, &err) != 0)
        return -1;
    free(sym);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    crypto_key_free(sealed_id);
    crypto_key_free(sealed_pub);
    crypto_key_free(other_id);
    crypto_key_free(sym_key);
    tu_rmdir(dir);
    return 0;
}

/* ---- in-memory files ---------------------------------------------------------- */

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static int to_buf(void *ctx, const void *data, size_t len, sc_err *err)
{
    (void)err;
    struct buf *b = ctx;
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2 + 64;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

/* Encrypt data (written in pieces of step bytes) as name. */
static struct buf encrypt(const struct crypto_key *k, const char *name, const unsigned char *data,
                          size_t len, size_t step)
{
    struct buf out = {0};
    struct crypto_writer w;
    sc_err err = {0};
    assert_int_equal(crypto_writer_open(&w, k, name, to_buf, &out, &err), 0);
    for (size_t off = 0; off < len; off += step)
        assert_int_equal(
            crypto_writer_write(&w, data + off, len - off < step ? len - off : step, &err), 0);
    assert_int_equal(crypto_writer_finish(&w, &err), 0);
    crypto_writer_free(&w);
    return out;
}

/* Decrypt bytes through a real file descriptor. */
static int decrypt(const struct crypto_key *k, const char *name, const unsigned char *data,
                   size_t len, struct buf *plain, struct crypto_plain *info, sc_err *err)
{
    char *path = tmp_path("cipher.bin");
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, data, len), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    int rc = crypto_decrypt_fd(fd, "cipher.bin", name, k, plain ? to_buf : NULL, plain, info, err);
    close(fd);
    unlink(path);
    free(path);
    return rc;
}

static unsigned char *random_data(size_t n)
{
    unsigned char *d = xmalloc(n ? n : 1);
    randombytes_buf(d, n);
    return d;
}

static void hex_of(const unsigned char *d, size_t n, char hex[129])
{
    unsigned char h[crypto_generichash_BYTES_MAX];
    crypto_generichash(h, sizeof h, d, n, NULL, 0);
    sodium_bin2hex(hex, 129, h, sizeof h);
}

/* The header's length for a file named name (to find the first chunk). */
static size_t header_len(const struct buf *b)
{
    size_t name_len = (size_t)b->p[OFF_NAME_LEN] << 8 | b->p[OFF_NAME_LEN + 1];
    size_t at = OFF_NAME_LEN + 2 + name_len;
    size_t wlen = (size_t)b->p[at] << 8 | b->p[at + 1];
    return at + 2 + wlen + crypto_secretstream_xchacha20poly1305_HEADERBYTES;
}

/* ---- round trips ---------------------------------------------------------------- */

static void round_trip(const struct crypto_key *enc, const struct crypto_key *dec, size_t len,
                       size_t step)
{
    unsigned char *data = random_data(len);
    struct buf c = encrypt(enc, "sqlite/app.db", data, len, step);
    /* header + full chunks + the final chunk (possibly empty) */
    size_t chunks = len / CRYPTO_CHUNK + 1;
    assert_int_equal(c.len,
                     header_len(&c) + len + chunks * crypto_secretstream_xchacha20poly1305_ABYTES);
    struct buf p = {0};
    struct crypto_plain info;
    sc_err err = {0};
    assert_int_equal(decrypt(dec, "sqlite/app.db", c.p, c.len, &p, &info, &err), 0);
    assert_int_equal(p.len, len);
    if (len)
        assert_memory_equal(p.p, data, len);
    char want[129];
    hex_of(data, len, want);
    assert_string_equal(info.blake2b, want);
    assert_int_equal(info.bytes, len);
    free(p.p);
    free(c.p);
    free(data);
}

static void test_round_trip_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {0,
                                   1,
                                   100,
                                   CRYPTO_CHUNK - 1,
                                   CRYPTO_CHUNK,
                                   CRYPTO_CHUNK + 1,
                                   2 * CRYPTO_CHUNK,
                                   3 * CRYPTO_CHUNK + 17};
    static const size_t steps[] = {1000, CRYPTO_CHUNK, 3 * CRYPTO_CHUNK + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizeof steps / sizeof steps[0]; j++) {
            round_trip(sealed_pub, sealed_id, sizes[i], steps[j]);
            round_trip(sym_key, sym_key, sizes[i], steps[j]);
        }
}

/* The same plaintext twice gives different files: a fresh key per file. */
static void test_fresh_file_key(void **state)
{
    (void)state;
    unsigned char data[100] = {0};
    struct buf a = encrypt(sealed_pub, "x", data, sizeof data, 100);
    struct buf b = encrypt(sealed_pub, "x", data, sizeof data, 100);
    assert_int_equal(a.len, b.len);
    assert_memory_not_equal(a.p + OFF_NAME_LEN, b.p + OFF_NAME_LEN, a.len - OFF_NAME_LEN);
    free(a.p);
    free(b.p);
}

/* ---- damage ------------------------------------------------------------------------ */

static void expect_damage(const struct crypto_key *k, const unsigned char *data, size_t len,
                          const char *phrase)
{
    sc_err err = {0};
    struct buf p = {0};
    assert_int_equal(decrypt(k, "sqlite/app.db", data, len, &p, NULL, &err), SC_EVERIFY);
    if (phrase && strstr(err.msg, phrase) == NULL)
        fail_msg("expected '%s' in: %s", phrase, err.msg);
    free(p.p);
}

static void test_truncation_detected(void **state)
{
    (void)state;
    size_t len = 2 * CRYPTO_CHUNK + 500;
    unsigned char *data = random_data(len);
    struct buf c = encrypt(sealed_pub, "sqlite/app.db", data, len, len);
    size_t h = header_len(&c);
    expect_damage(sealed_id, c.p, 0, "too short");
    expect_damage(sealed_id, c.p, 10, "too short");
    expect_damage(sealed_id, c.p, h - 1, "truncated header");
    expect_damage(sealed_id, c.p, h, "final chunk is missing");
    /* cut at a chunk boundary: every chunk left is sound, FINAL is missing */
    expect_damage(sealed_id, c.p, h + CHUNK_BYTES, "final chunk is missing");
    expect_damage(sealed_id, c.p, h + 2 * CHUNK_BYTES, "final chunk is missing");
    /* cut inside a chunk, and the last byte */
    expect_damage(sealed_id, c.p, h + CHUNK_BYTES + 100, "fails authentication");
    expect_damage(sealed_id, c.p, c.len - 1, "fails authentication");
    free(c.p);
    free(data);
}

static void test_flipped_bytes_detected(void **state)
{
    (void)state;
    size_t len = CRYPTO_CHUNK + 10;
    unsigned char *data = random_data(len);
    struct buf c = encrypt(sealed_pub, "sqlite/app.db", data, len, len);
    size_t h = header_len(&c);
    /* every byte of the header and a few in each chunk */
    for (size_t off = 0; off < c.len; off += off < h ? 1 : 4099) {
        c.p[off] ^= 0x01;
        sc_err err = {0};
        int rc = decrypt(sealed_id, "sqlite/app.db", c.p, c.len, NULL, NULL, &err);
        /* the key id is compared first: a changed id reads as a wrong key */
        if (off >= OFF_KEY_ID && off < OFF_KEY_ID + CRYPTO_KEY_ID_BYTES)
            assert_int_equal(rc, SC_EFAIL);
        else if (rc != SC_EVERIFY)
            fail_msg("a flipped byte at %zu was not detected (rc %d)", off, rc);
        c.p[off] ^= 0x01;
    }
    /* and the file is sound again */
    sc_err err = {0};
    assert_int_equal(decrypt(sealed_id, "sqlite/app.db", c.p, c.len, NULL, NULL, &err), 0);
    free(c.p);
    free(data);
}

static void test_reordered_chunks_detected(void **state)
{
    (void)state;
    size_t len = 3 * CRYPTO_CHUNK + 1;
    unsigned char *data = random_data(len);
    struct buf c = encrypt(sealed_pub, "sqlite/app.db", data, len, len);
    size_t h = header_len(&c);
    unsigned char *tmp = xmalloc(CHUNK_BYTES);
    /* swap chunks 1 and 2 */
    memcpy(tmp, c.p + h + CHUNK_BYTES, CHUNK_BYTES);
    memcpy(c.p + h + CHUNK_BYTES, c.p + h + 2 * CHUNK_BYTES, CHUNK_BYTES);
    memcpy(c.p + h + 2 * CHUNK_BYTES, tmp, CHUNK_BYTES);
    expect_damage(sealed_id, c.p, c.len, "chunk 1 fails authentication");
    free(tmp);
    free(c.p);
    free(data);
}

static void test_appended_data_detected(void **state)
{
    (void)state;
    unsigned char data[10] = "0123456789";
    struct buf c = encrypt(sealed_pub, "sqlite/app.db", data, sizeof data, sizeof data);
    /* Bytes after the (short) final chunk are read as part of it and break
     * its authentication; the reader also refuses anything after a chunk
     * tagged FINAL. */
    to_buf(&c, "x", 1, NULL);
    expect_damage(sealed_id, c.p, c.len, NULL);
    /* and a whole second file appended */
    struct buf d = encrypt(sealed_pub, "sqlite/app.db", data, sizeof data, sizeof data);
    c.len--;
    to_buf(&c, d.p, d.len, NULL);
    expect_damage(sealed_id, c.p, c.len, NULL);
    free(c.p);
    free(d.p);
}

/* A file decrypted under another name: two files swapped in a set. */
static void test_swapped_files_detected(void **state)
{
    (void)state;
    unsigned char data[10] = "0123456789";
    struct buf c = encrypt(sealed_pub, "paths/etc.tar", data, sizeof data, sizeof data);
    expect_damage(sealed_id, c.p, c.len, "files swapped");
    /* a name rewritten to match (same length) fails authentication instead */
    memcpy(c.p + OFF_NAME_LEN + 2, "paths/xyz.tar", 13);
    sc_err err = {0};
    assert_int_equal(decrypt(sealed_id, "paths/xyz.tar", c.p, c.len, NULL, NULL, &err), SC_EVERIFY);
    assert_non_null(strstr(err.msg, "chunk 0 fails authentication"));
    free(c.p);
}

static void test_wrong_key_detected(void **state)
{
    (void)state;
    unsigned char data[10] = "0123456789";
    struct buf c = encrypt(sealed_pub, "sqlite/app.db", data, sizeof data, sizeof data);
    sc_err err = {0};
    assert_int_equal(decrypt(other_id, "sqlite/app.db", c.p, c.len, NULL, NULL, &err), SC_EFAIL);
    assert_non_null(strstr(err.msg, "wrong identity"));
    char id[CRYPTO_KEY_ID_HEX];
    crypto_key_id_hex(sealed_id, id);
    assert_non_null(strstr(err.msg, id)); /* it names the key the file wants */
    memset(&err, 0, sizeof err);
    assert_int_equal(decrypt(sym_key, "sqlite/app.db", c.p, c.len, NULL, NULL, &err), SC_EFAIL);
    memset(&err, 0, sizeof err);
    assert_int_equal(decrypt(sealed_pub, "sqlite/app.db", c.p, c.len, NULL, NULL, &err), SC_EFAIL);
    assert_non_null(strstr(err.msg, "public key cannot decrypt"));
    /* another key that claims the same id still cannot open the file key */
    struct crypto_key *forged = sodium_malloc(sizeof *forged);
    memcpy(forged, other_id, sizeof *forged);
    memcpy(forged->id, sealed_id->id, sizeof forged->id);
    memset(&err, 0, sizeof err);
    assert_int_equal(decrypt(forged, "sqlite/app.db", c.p, c.len, NULL, NULL, &err), SC_EVERIFY);
    assert_non_null(strstr(err.msg, "cannot open the file key"));
    sodium_free(forged);
    free(c.p);
}

/* ---- header versions ------------------------------------------------------------ */

static void test_header_versions(void **state)
{
    (void)state;
    unsigned char data[10] = "0123456789";
    struct buf c = encrypt(sym_key, "sqlite/app.db", data, sizeof data, sizeof data);
    /* the documented layout */
    assert_memory_equal(c.p, "SCENC\r\n\x1a", 8);
    assert_int_equal(c.p[OFF_VERSION], 1);
    assert_int_equal(c.p[OFF_MODE], CRYPTO_SYMMETRIC);
    assert_int_equal(c.p[OFF_RESERVED] | c.p[OFF_RESERVED + 1], 0);
    assert_int_equal((uint32_t)c.p[OFF_CHUNK] << 24 | (uint32_t)c.p[OFF_CHUNK + 1] << 16 |
                         (uint32_t)c.p[OFF_CHUNK + 2] << 8 | c.p[OFF_CHUNK + 3],
                     CRYPTO_CHUNK);
    assert_memory_equal(c.p + OFF_KEY_ID, sym_key->id, CRYPTO_KEY_ID_BYTES);
    assert_memory_equal(c.p + OFF_NAME_LEN + 2, "sqlite/app.db", 13);
    /* a newer version is refused by name, not as noise */
    c.p[OFF_VERSION] = 2;
    expect_damage(sym_key, c.p, c.len, "format version 2; this stagecoach reads version 1");
    c.p[OFF_VERSION] = 0;
    expect_damage(sym_key, c.p, c.len, "format version 0");
    c.p[OFF_VERSION] = 1;
    c.p[OFF_MODE] = 7;
    expect_damage(sym_key, c.p, c.len, "unknown encryption mode");
    c.p[OFF_MODE] = CRYPTO_SYMMETRIC;
    c.p[OFF_CHUNK] = 0x7f; /* a huge chunk size: refused before any allocation */
    expect_damage(sym_key, c.p, c.len, "chunk size out of range");
    c.p[OFF_CHUNK] = 0;
    c.p[0] = 'X';
    expect_damage(sym_key, c.p, c.len, "bad magic");
    c.p[0] = 'S';
    sc_err err = {0};
    assert_int_equal(decrypt(sym_key, "sqlite/app.db", c.p, c.len, NULL, NULL, &err), 0);
    free(c.p);
}

/* ---- key files -------------------------------------------------------------------- */

static void test_keygen_files(void **state)
{
    (void)state;
    char *out = tmp_path("kg"), *pub = xasprintf("%s.pub", out);
    char hex[CRYPTO_KEY_ID_HEX];
    sc_err err = {0};
    assert_int_equal(crypto_keygen(out, &cheap, hex, &err), 0);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(pub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    char *text;
    size_t len;
    assert_int_equal(fs_read_file(pub, 4096, &text, &len, SC_EFAIL, &err), 0);
    assert_true(strncmp(text, "stagecoach public key 1\n", 24) == 0);
    assert_non_null(strstr(text, hex));
    free(text);
    assert_int_equal(fs_read_file(out, 4096, &text, &len, SC_EFAIL, &err), 0);
    assert_true(strncmp(text, "stagecoach secret key 1\n", 24) == 0);
    free(text);
    /* the two halves belong together */
    struct crypto_key *id, *rcpt;
    assert_int_equal(crypto_load_identity(out, NULL, &id, &err), 0);
    assert_int_equal(crypto_load_recipient(pub, &rcpt, &err), 0);
    assert_memory_equal(id->pk, rcpt->pk, sizeof id->pk);
    assert_memory_equal(id->id, rcpt->id, sizeof id->id);
    assert_true(id->can_decrypt);
    assert_false(rcpt->can_decrypt);
    /* never overwritten: not the secret key, not the public key alone */
    assert_int_equal(crypto_keygen(out, &cheap, hex, &err), SC_EFAIL);
    assert_non_null(strstr(err.msg, "never overwrites"));
    char *out2 = tmp_path("kg2"), *pub2 = xasprintf("%s.pub", out2);
    write_text(pub2, "x\n", 0644);
    memset(&err, 0, sizeof err);
    assert_int_equal(crypto_keygen(out2, &cheap, hex, &err), SC_EFAIL);
    assert_false(fs_exists(out2));
    /* the halves cannot be mixed up */
    memset(&err, 0, sizeof err);
    struct crypto_key *k = NULL;
    assert_int_equal(crypto_load_identity(pub, NULL, &k, &err), SC_ECONFIG); /* 0644 */
    chmod(pub, 0600);
    memset(&err, 0, sizeof err);
    assert_int_equal(crypto_load_identity(pub, NULL, &k, &err), SC_ECONFIG);
    assert_non_null(strstr(err.msg, "is a public key"));
    memset(&err, 0, sizeof err);
    assert_int_equal(crypto_load_recipient(out, &k, &err), SC_ECONFIG);
    assert_non_null(strstr(err.msg, "not a public key"));
    assert_null(k);
    crypto_key_free(id);
    crypto_key_free(rcpt);
    free(out2);
    free(pub2);
    free(out);
    free(pub);
}

static void test_secret_key_must_be_private(void **state)
{
    (void)state;
    char *out = tmp_path("main");
    chmod(out, 0640);
    struct crypto_key *k = NULL;
    sc_err err = {0};
    assert_int_equal(crypto_load_identity(out, NULL, &k, &err), SC_ECONFIG);
    assert_non_null(strstr(err.msg, "chmod 600"));
    chmod(out, 0600);
    free(out);
}

static void test_passphrase_protection(void **state)
{
    (void)state;
    char *out = tmp_path("prot"), *pass = tmp_path("pass"), *wrong = tmp_path("wrong");
    write_text(pass, "correct horse battery staple\n", 0600);
    write_text(wrong, "incorrect horse\n", 0600);
    struct crypto_keygen_opts o = cheap;
    o.passphrase_file = pass;
    char hex[CRYPTO_KEY_ID_HEX];
    sc_err err = {0};
    assert_int_equal(crypto_keygen(out, &o, hex, &err), 0);
    char *text;
    size_t len;
    assert_int_equal(fs_read_file(out, 4096, &text, &len, SC_EFAIL, &err), 0);
    assert_non_null(strstr(text, "argon2id: ops="));
    assert_null(strstr(text, "\nx25519: ")); /* no clear secret key */
    free(text);
    struct crypto_key *k = NULL;
    assert_int_equal(crypto_load_identity(out, pass, &k, &err), 0);
    /* it decrypts what its public key sealed */
    char *pubpath = xasprintf("%s.pub", out);
    struct crypto_key *pub;
    assert_int_equal(crypto_load_recipient(pubpath, &pub, &err), 0);
    unsigned char data[5] = "hello";
    struct buf c = encrypt(pub, "a", data, 5, 5);
    assert_int_equal(decrypt(k, "a", c.p, c.len, NULL, NULL, &err), 0);
    crypto_key_free(k);
    k = NULL;
    assert_int_equal(crypto_load_identity(out, wrong, &k, &err), SC_ECONFIG);
    assert_non_null(strstr(err.msg, "wrong passphrase"));
    assert_null(k);
    /* a passphrase file others can read is refused */
    chmod(pass, 0644);
    memset(&err, 0, sizeof err);
    assert_int_equal(crypto_load_identity(out, pass, &k, &err), SC_ECONFIG);
    /* a symmetric key takes no passphrase */
    chmod(pass, 0600);
    o.symmetric = true;
    char *sym = tmp_path("sym-prot");
    memset(&err, 0, sizeof err);
    assert_int_equal(crypto_keygen(sym, &o, hex, &err), SC_EUSAGE);
    free(c.p);
    crypto_key_free(pub);
    free(pubpath);
    free(sym);
    free(out);
    free(pass);
    free(wrong);
}

static void test_key_file_versions_and_damage(void **state)
{
    (void)state;
    char *p = tmp_path("v2.pub");
    struct crypto_key *k = NULL;
    sc_err err = {0};
    write_text(p, "stagecoach public key 2\nx25519: AAAA\n", 0644);
    assert_int_equal(crypto_load_recipient(p, &k, &err), SC_ECONFIG);
    assert_non_null(strstr(err.msg, "version 2; this stagecoach reads version 1"));
    write_text(p, "hello\n", 0644);
    memset(&err, 0, sizeof err);
    assert_int_equal(crypto_load_recipient(p, &k, &err), SC_ECONFIG);
    assert_non_null(strstr(err.msg, "not a stagecoach key file"));
    /* a valid key under the wrong id: damaged or hand-edited */
    char *main_pub = tmp_path("main.pub"), *text;
    size_t len;
    assert_int_equal(fs_read_file(main_pub, 4096, &text, &len, SC_EFAIL, &err), 0);
    char *id = strstr(text, "id: ") + 4;
    id[0] = id[0] == '0' ? '1' : '0';
    write_text(p, text, 0644);
    memset(&err, 0, sizeof err);
    assert_int_equal(crypto_load_recipient(p, &k, &err), SC_ECONFIG);
    assert_non_null(strstr(err.msg, "does not match its id"));
    /* a truncated key */
    write_text(p, "stagecoach public key 1\nx25519: AAAA\n", 0644);
    memset(&err, 0, sizeof err);
    assert_int_equal(crypto_load_recipient(p, &k, &err), SC_ECONFIG);
    assert_non_null(strstr(err.msg, "not 32 bytes of base64"));
    assert_null(k);
    free(text);
    free(main_pub);
    free(p);
}

static void test_symmetric_raw_key(void **state)
{
    (void)state;
    char *p = tmp_path("raw32");
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    unlink(p);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_int_equal(fs_write_all(fd, raw, sizeof raw), 0);
    close(fd);
    struct crypto_key *k = NULL, *k2 = NULL;
    sc_err err = {0};
    assert_int_equal(crypto_load_symmetric(p, &k, &err), 0);
    assert_memory_equal(k->sym, raw, sizeof raw);
    /* --identity takes it too */
    assert_int_equal(crypto_load_identity(p, NULL, &k2, &err), 0);
    assert_memory_equal(k->id, k2->id, sizeof k->id);
    /* and refuses it readable by others */
    chmod(p, 0644);
    crypto_key_free(k);
    k = NULL;
    assert_int_equal(crypto_load_symmetric(p, &k, &err), SC_ECONFIG);
    crypto_key_free(k2);
    free(p);
}

/* ---- an encrypted set ------------------------------------------------------------- */

static void test_encrypted_set(void **state)
{
    (void)state;
    char *staging = tmp_path("staging");
    sc_err err = {0};
    struct set s;
    assert_int_equal(staging_prepare(staging, &err), 0);
    assert_int_equal(set_create(&s, staging, &err), 0);
    struct crypto_key *key = NULL;
    char *pubpath = tmp_path("main.pub");
    assert_int_equal(crypto_load_recipient(pubpath, &key, &err), 0);
    set_use_key(&s, key);
    set_begin_source(&s, "etc", "paths");
    size_t len = 3 * CRYPTO_CHUNK / 2;
    unsigned char *data = random_data(len);
    struct sink k;
    assert_int_equal(sink_open(&k, &s, "paths/etc.tar", &err), 0);
    assert_int_equal(sink_write(&k, data, len, &err), 0);
    assert_int_equal(sink_close(&k, &err), 0);
    /* a file another writer made: encrypted, and its plaintext gone */
    set_begin_source(&s, "app", "sqlite");
    char *plain = set_file_path(&s, "sqlite/app.db", &err);
    write_text(plain, "pretend this is a database\n", 0600);
    assert_int_equal(set_add_file(&s, "sqlite/app.db", &err), 0);
    assert_false(fs_exists(plain));
    char *enc = xasprintf("%s.enc", plain);
    assert_true(fs_exists(enc));
    assert_true(manifest_encrypted(s.manifest));
    assert_int_equal(set_publish(&s, &err), 0);
    /* stored hashes, b2sum -c, plaintext hashes, unpack */
    assert_int_equal(set_verify(s.finaldir, &err), 0);
    char *cmd = xasprintf("cd '%s' && b2sum -c --quiet B2SUMS", s.finaldir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    assert_int_equal(set_verify_plaintext(s.finaldir, sealed_id, &err), 0);
    char *to = tmp_path("unpacked");
    assert_int_equal(mkdir(to, 0700), 0);
    json_t *m = NULL;
    assert_int_equal(set_unpack(s.finaldir, to, sealed_id, &m, &err), 0);
    json_decref(m);
    char *tar = path_join(to, "paths/etc.tar"), *back;
    size_t blen;
    assert_int_equal(fs_read_file(tar, len + 1, &back, &blen, SC_EFAIL, &err), 0);
    assert_int_equal(blen, len);
    assert_memory_equal(back, data, len);
    free(back);
    cmd = xasprintf("cd '%s' && b2sum -c --quiet B2SUMS", to);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    /* without the key: refused with the key id; with the wrong one: exit 1 */
    char *to2 = tmp_path("unpacked2");
    assert_int_equal(mkdir(to2, 0700), 0);
    memset(&err, 0, sizeof err);
    assert_int_equal(set_unpack(s.finaldir, to2, NULL, &m, &err), SC_EUSAGE);
    assert_non_null(strstr(err.msg, "--identity"));
    memset(&err, 0, sizeof err);
    assert_int_equal(set_verify_plaintext(s.finaldir, other_id, &err), SC_EFAIL);
    free(to2);
    free(tar);
    free(to);
    free(enc);
    free(plain);
    free(pubpath);
    free(data);
    free(staging);
    set_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_fresh_file_key),
        cmocka_unit_test(test_truncation_detected),
        cmocka_unit_test(test_flipped_bytes_detected),
        cmocka_unit_test(test_reordered_chunks_detected),
        cmocka_unit_test(test_appended_data_detected),
        cmocka_unit_test(test_swapped_files_detected),
        cmocka_unit_test(test_wrong_key_detected),
        cmocka_unit_test(test_header_versions),
        cmocka_unit_test(test_keygen_files),
        cmocka_unit_test(test_secret_key_must_be_private),
        cmocka_unit_test(test_passphrase_protection),
        cmocka_unit_test(test_key_file_versions_and_damage),
        cmocka_unit_test(test_symmetric_raw_key),
        cmocka_unit_test(test_encrypted_set),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
