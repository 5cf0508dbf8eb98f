/* Sealed staging (docs/encryption.md): key files and the stagecoach-enc/1
 * file format.
 *
 * Every encrypted file carries its own random file key. In sealed mode the
 * file key is sealed to an X25519 public key (crypto_box_seal), so a
 * staging host that holds only the public key cannot read what it wrote
 * before; in symmetric mode it is wrapped with a 32-byte key file
 * (crypto_secretbox). The data follows as crypto_secretstream_xchacha20poly1305
 * chunks of CRYPTO_CHUNK plaintext bytes, the last one tagged FINAL, so a
 * truncated, reordered or altered file fails to decrypt. The header (with the
 * file's name in the set) is authenticated with the first chunk, so two
 * files swapped in a set are caught too. Memory use is two chunk buffers. */
#ifndef SC_CRYPTO_H
#define SC_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sodium.h>
#include "../core/config.h"
#include "../core/err.h"

#define CRYPTO_SUFFIX ".enc"
#define CRYPTO_FORMAT "stagecoach-enc/1"
#define CRYPTO_CHUNK 65536u
#define CRYPTO_KEY_ID_BYTES 8
#define CRYPTO_KEY_ID_HEX (2 * CRYPTO_KEY_ID_BYTES + 1)

enum crypto_mode { CRYPTO_SEALED = 1, CRYPTO_SYMMETRIC = 2 };

/* A key, in guarded memory (sodium_malloc: locked, zeroed when freed).
 * Sealed: pk always, sk only in an identity. Symmetric: sym. */
struct crypto_key {
    enum crypto_mode mode;
    bool can_decrypt;
    unsigned char id[CRYPTO_KEY_ID_BYTES];
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    unsigned char sk[crypto_box_SECRETKEYBYTES];
    unsigned char sym[crypto_secretbox_KEYBYTES];
};

/* ---- key files ---------------------------------------------------------- */

struct crypto_keygen_opts {
    bool symmetric;              /* one key file instead of a pair */
    const char *passphrase_file; /* protect the secret key (Argon2id); NULL: not protected */
    bool ask_passphrase;         /* read the passphrase from the terminal instead */
    unsigned long long opslimit; /* Argon2id cost; 0: crypto_pwhash_OPSLIMIT_MODERATE */
    size_t memlimit;             /* 0: crypto_pwhash_MEMLIMIT_MODERATE */
};

/* Write a new key: out (0600; never overwritten) and, for a pair, out.pub.
 * id_hex receives the key id. */
int crypto_keygen(const char *out, const struct crypto_keygen_opts *o,
                  char id_hex[CRYPTO_KEY_ID_HEX], sc_err *err);
/* A public key file (FILE.pub): what staging encrypts to. Exit 3. */
int crypto_load_recipient(const char *path, struct crypto_key **key, sc_err *err);
/* A symmetric key file: the text form keygen --symmetric writes, or exactly
 * 32 raw bytes. Must be private (0600). Exit 3. */
int crypto_load_symmetric(const char *path, struct crypto_key **key, sc_err *err);
/* What decrypts: a secret key file (passphrase from passphrase_file, else
 * asked on the terminal when there is one) or a symmetric key file. */
int crypto_load_identity(const char *path, const char *passphrase_file, struct crypto_key **key,
                         sc_err *err);
void crypto_key_free(struct crypto_key *key);
/* A key that decrypts from its 32 secret bytes (the X25519 secret key, or
 * the symmetric key); NULL if it is not valid. For tests and fuzzing: real
 * keys come from key files. */
struct crypto_key *crypto_key_from_secret(enum crypto_mode mode,
                                          const unsigned char secret[crypto_box_SECRETKEYBYTES]);
void crypto_key_id_hex(const struct crypto_key *key, char out[CRYPTO_KEY_ID_HEX]);
const char *crypto_mode_name(enum crypto_mode mode);

/* The key staging encrypts with, from [staging]: NULL when encrypt = no. */
int crypto_staging_key(const struct config *cfg, struct crypto_key **key, sc_err *err);

/* ---- the file format ------------------------------------------------------ */

/* Where the ciphertext goes: write len bytes or fail with err set. */
typedef int (*crypto_out_fn)(void *ctx, const void *buf, size_t len, sc_err *err);

struct crypto_writer {
    crypto_secretstream_xchacha20poly1305_state st;
    unsigned char *plain; /* one chunk of plaintext being filled */
    size_t fill;
    unsigned char *cipher; /* one encrypted chunk */
    unsigned char *header; /* authenticated with the first chunk */
    size_t header_len;
    uint64_t chunks;
    crypto_out_fn out;
    void *ctx;
};

/* Start a file: a fresh file key, the header written through out. name is
 * the plaintext's path in the set (e.g. sqlite/app.db), bound to the file. */
int crypto_writer_open(struct crypto_writer *w, const struct crypto_key *key, const char *name,
                       crypto_out_fn out, void *ctx, sc_err *err);
int crypto_writer_write(struct crypto_writer *w, const void *buf, size_t len, sc_err *err);
/* The last chunk, tagged FINAL. */
int crypto_writer_finish(struct crypto_writer *w, sc_err *err);
/* Release buffers and wipe the stream state (also after a failure). */
void crypto_writer_free(struct crypto_writer *w);

/* What decryption saw: the plaintext's size and BLAKE2b-512. */
struct crypto_plain {
    uint64_t bytes;
    char blake2b[129];
};

/* Decrypt the file open at fd. display names it in messages; name, when not
 * NULL, is the plaintext path the file must carry. Plaintext goes to out
 * (NULL: only hashed). Exit 7 for a damaged or tampered file, 1 for a key
 * that is not the one the file was encrypted for. */
int crypto_decrypt_fd(int fd, const char *display, const char *name, const struct crypto_key *key,
                      crypto_out_fn out, void *ctx, struct crypto_plain *plain, sc_err *err);

#endif
