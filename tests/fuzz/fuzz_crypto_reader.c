/* libFuzzer target: the stagecoach-enc/1 reader (src/stage/crypto.c,
 * crypto_decrypt_fd): header parsing, key unwrapping and the chunk stream.
 * An encrypted file comes back from a repository or a disk someone else
 * may write to, so the reader must reject anything damaged with exit 7 (or
 * exit 1 for a key it was not made for) and never misbehave.
 *
 * Two fixed keys are baked in, a sealed (X25519) pair and a symmetric key,
 * so inputs made with them get past the header and into the stream. Each
 * input is read with both, and with the sealed public key alone (which must
 * refuse). When a read succeeds, the plaintext handed out must be exactly
 * what the reader reports (size and BLAKE2b-512).
 *
 * Seeds: SC_FUZZ_SEEDS=DIR ./fuzz_crypto_reader writes real files made by
 * crypto_writer with these keys, plus one with 1 KiB chunks built here
 * from docs/encryption.md, to DIR and exits (tests/fuzz/corpus/crypto_reader). */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../src/stage/crypto.h"

static const unsigned char SEALED_SECRET[32] = {
    0x1f, 0x6e, 0x2a, 0x93, 0x44, 0x0b, 0xc7, 0x5d, 0x81, 0x3e, 0x09, 0xf2, 0x60, 0xaa, 0x17, 0xd4,
    0x35, 0x9c, 0x72, 0x0e, 0xe1, 0x48, 0xb6, 0x2f, 0x53, 0x8a, 0xc0, 0x1d, 0x67, 0xf9, 0x24, 0x7b};
static const unsigned char SYMMETRIC_SECRET[32] = {
    0xa2, 0x19, 0x5c, 0xe7, 0x30, 0x8f, 0x46, 0xdb, 0x0c, 0x71, 0xb8, 0x25, 0x9e, 0x63, 0x14, 0xfa,
    0x4d, 0x02, 0xc9, 0x86, 0x3b, 0xe0, 0x57, 0x1a, 0xbd, 0x68, 0x91, 0x2c, 0xf5, 0x0a, 0x7e, 0x43};
#define NAME "db/app.db"

static struct crypto_key *sealed, *symmetric, *public_only;
static int fd = -1;

/* ---- seeds ---------------------------------------------------------------- */

static int write_fd(void *ctx, const void *buf, size_t len, sc_err *err)
{
    if (write(*(int *)ctx, buf, len) != (ssize_t)len)
        return sc_fail(err, SC_ESTAGING, "write failed");
    return 0;
}

static void seed_writer(const char *dir, const char *file, const struct crypto_key *key,
                        const char *name, size_t plain_len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) {
        perror(path);
        exit(1);
    }
    unsigned char *plain = malloc(plain_len + 1);
    for (size_t i = 0; i < plain_len; i++)
        plain[i] = (unsigned char)("stagecoach\n"[i % 11]);
    struct crypto_writer w;
    sc_err err = {0};
    if (crypto_writer_open(&w, key, name, write_fd, &out, &err) != 0 ||
        crypto_writer_write(&w, plain, plain_len, &err) != 0 ||
        crypto_writer_finish(&w, &err) != 0) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        exit(1);
    }
    crypto_writer_free(&w);
    free(plain);
    close(out);
}

static void put_be(unsigned char *p, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

/* A symmetric file with 1 KiB chunks (writers use 64 KiB; readers accept
 * 1 KiB to 16 MiB), so small inputs reach the chunk-to-chunk logic. */
static void seed_small_chunks(const char *dir)
{
    enum { CHUNK = 1024, CHUNKS = 3 };
    unsigned char h[512], file_key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    static const unsigned char magic[8] = {'S', 'C', 'E', 'N', 'C', '\r', '\n', 0x1a};
    static const unsigned char name[] = {'d', 'b', '/', 'a', 'p', 'p', '.', 'd', 'b'};
    size_t o = 0;
    memcpy(h, magic, sizeof magic);
    o = sizeof magic;
    h[o++] = 1;
    h[o++] = CRYPTO_SYMMETRIC;
    put_be(h + o, 0, 2);
    o += 2;
    put_be(h + o, CHUNK, 4);
    o += 4;
    memcpy(h + o, symmetric->id, CRYPTO_KEY_ID_BYTES);
    o += CRYPTO_KEY_ID_BYTES;
    put_be(h + o, (uint32_t)sizeof name, 2);
    o += 2;
    memcpy(h + o, name, sizeof name); /* NAME, as the header stores it: no NUL */
    o += sizeof name;
    size_t wlen = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + sizeof file_key;
    put_be(h + o, (uint32_t)wlen, 2);
    o += 2;
    crypto_secretstream_xchacha20poly1305_keygen(file_key);
    randombytes_buf(h + o, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(h + o + crypto_secretbox_NONCEBYTES, file_key, sizeof file_key, h + o,
                          symmetric->sym);
    o += wlen;
    crypto_secretstream_xchacha20poly1305_state st;
    crypto_secretstream_xchacha20poly1305_init_push(&st, h + o, file_key);
    o += crypto_secretstream_xchacha20poly1305_HEADERBYTES;

    char path[4096];
    snprintf(path, sizeof path, "%s/symmetric-1k-chunks.enc", dir);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || write(out, h, o) != (ssize_t)o) {
        perror(path);
        exit(1);
    }
    unsigned char m[CHUNK], c[CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES];
    memset(m, 'x', sizeof m);
    for (int i = 0; i < CHUNKS; i++) {
        bool last = i == CHUNKS - 1;
        unsigned long long clen;
        crypto_secretstream_xchacha20poly1305_push(
            &st, c, &clen, m, last ? 100 : CHUNK, i == 0 ? h : NULL, i == 0 ? o : 0,
            last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                 : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
        if (write(out, c, clen) != (ssize_t)clen) {
            perror(path);
            exit(1);
        }
    }
    close(out);
}

static void write_seeds(const char *dir)
{
    seed_writer(dir, "sealed-empty.enc", sealed, "sqlite/app.db", 0);
    seed_writer(dir, "sealed-small.enc", sealed, "files/etc/hosts", 200);
    seed_writer(dir, "symmetric-small.enc", symmetric, NAME, 3000);
    seed_small_chunks(dir);
}

/* ---- the target ----------------------------------------------------------- */

struct sink {
    crypto_generichash_state h;
    uint64_t bytes;
};

static int sink_out(void *ctx, const void *buf, size_t len, sc_err *err)
{
    (void)err;
    struct sink *s = ctx;
    crypto_generichash_update(&s->h, buf, len);
    s->bytes += len;
    return 0;
}

static void read_with(const struct crypto_key *key, const char *name)
{
    if (lseek(fd, 0, SEEK_SET) != 0)
        abort();
    struct sink s = {.bytes = 0};
    crypto_generichash_init(&s.h, NULL, 0, crypto_generichash_BYTES_MAX);
    struct crypto_plain plain;
    memset(&plain, 0, sizeof plain);
    sc_err err = {0};
    int rc = crypto_decrypt_fd(fd, "fuzz.enc", name, key, sink_out, &s, &plain, &err);
    if (rc != err.code || (rc != 0 && err.msg[0] == '\0'))
        __builtin_trap();
    if (rc != 0 && rc != SC_EVERIFY && rc != SC_EFAIL)
        __builtin_trap();
    if (rc == 0 && !key->can_decrypt)
        __builtin_trap();
    unsigned char digest[crypto_generichash_BYTES_MAX];
    char hex[2 * sizeof digest + 1];
    crypto_generichash_final(&s.h, digest, sizeof digest);
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    if (rc == 0 && (plain.bytes != s.bytes || strcmp(plain.blake2b, hex) != 0))
        __builtin_trap();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    sealed = crypto_key_from_secret(CRYPTO_SEALED, SEALED_SECRET);
    symmetric = crypto_key_from_secret(CRYPTO_SYMMETRIC, SYMMETRIC_SECRET);
    public_only = crypto_key_from_secret(CRYPTO_SEALED, SEALED_SECRET);
    if (sealed == NULL || symmetric == NULL || public_only == NULL)
        abort();
    public_only->can_decrypt = false;
    const char *seeds = getenv("SC_FUZZ_SEEDS");
    if (seeds != NULL) {
        write_seeds(seeds);
        exit(0);
    }
    fd = memfd_create("fuzz_crypto_reader", 0);
    if (fd < 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    read_with(sealed, NULL);
    read_with(symmetric, NAME);
    read_with(public_only, NULL);
    return 0;
}
