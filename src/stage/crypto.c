/* Key files and the stagecoach-enc/1 file format. docs/encryption.md is the
 * reference for both; the layout constants below must stay in step with it. */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "../core/fs.h"
#include "../core/log.h"
#include "../core/xalloc.h"

/* ---- layout (docs/encryption.md, "File format") ----------------------- */

/* PNG-style: readable tag, then CR LF and ^Z, which text-mode transfers mangle. */
static const unsigned char MAGIC[8] = {'S', 'C', 'E', 'N', 'C', '\r', '\n', 0x1a};
#define FORMAT_VERSION 1
/* magic 8, version 1, mode 1, reserved 2, chunk size 4, key id 8 */
#define FIXED_BYTES 24
#define NAME_MAX_BYTES 4096
#define FILE_KEY_BYTES crypto_secretstream_xchacha20poly1305_KEYBYTES
#define STREAM_HEADER_BYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define CHUNK_OVERHEAD crypto_secretstream_xchacha20poly1305_ABYTES
#define SEALED_KEY_BYTES (crypto_box_SEALBYTES + FILE_KEY_BYTES)
#define WRAPPED_KEY_BYTES (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + FILE_KEY_BYTES)
#define WRAPPED_MAX (SEALED_KEY_BYTES > WRAPPED_KEY_BYTES ? SEALED_KEY_BYTES : WRAPPED_KEY_BYTES)
#define HEADER_MAX (FIXED_BYTES + 2 + NAME_MAX_BYTES + 2 + WRAPPED_MAX + STREAM_HEADER_BYTES)
/* A reader accepts these chunk sizes; writers use CRYPTO_CHUNK. The bound
 * keeps a hostile header from asking for a huge buffer. */
#define CHUNK_MIN 1024u
#define CHUNK_MAX (16u << 20)

/* Key files are small text files. */
#define KEYFILE_MAX 4096
#define KEYFILE_LINES 32
#define PASSPHRASE_MAX 1024
#define SALT_BYTES crypto_pwhash_SALTBYTES
#define PROTECTED_SK_BYTES                                                                         \
    (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + crypto_box_SECRETKEYBYTES)
/* Bounds on the Argon2id cost a key file may ask for. */
#define OPSLIMIT_MAX 64ULL
#define MEMLIMIT_MAX ((size_t)4 << 30)

static const char PUBLIC_HEADER[] = "stagecoach public key";
static const char SECRET_HEADER[] = "stagecoach secret key";
static const char SYMMETRIC_HEADER[] = "stagecoach symmetric key";
#define KEYFILE_VERSION 1

/* ---- small helpers ------------------------------------------------------ */

static int init_sodium(sc_err *err)
{
    if (sodium_init() < 0)
        return sc_fail(err, SC_EFAIL, "libsodium cannot be initialised");
    return 0;
}

static void put_be16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* read(2) until len bytes or end of file: the count read, or -1. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

const char *crypto_mode_name(enum crypto_mode mode)
{
    return mode == CRYPTO_SEALED ? "x25519-sealed" : "symmetric";
}

/* ---- keys in memory ----------------------------------------------------- */

static struct crypto_key *key_new(enum crypto_mode mode)
{
    struct crypto_key *k = sodium_malloc(sizeof *k);
    if (k == NULL) {
        fprintf(stderr, "stagecoach: out of memory\n");
        exit(SC_EFAIL);
    }
    memset(k, 0, sizeof *k);
    k->mode = mode;
    return k;
}

void crypto_key_free(struct crypto_key *key)
{
    if (key != NULL)
        sodium_free(key); /* zeroes it first */
}

/* The id names a key without revealing it: BLAKE2b of a domain string and
 * the public key (or the symmetric key), cut to 8 bytes. */
static void compute_key_id(struct crypto_key *k)
{
    static const char sealed_ctx[] = "stagecoach key id 1 x25519";
    static const char sym_ctx[] = "stagecoach key id 1 symmetric";
    crypto_generichash_state h;
    unsigned char full[16];
    crypto_generichash_init(&h, NULL, 0, sizeof full);
    if (k->mode == CRYPTO_SEALED) {
        crypto_generichash_update(&h, (const unsigned char *)sealed_ctx, sizeof sealed_ctx);
        crypto_generichash_update(&h, k->pk, sizeof k->pk);
    } else {
        crypto_generichash_update(&h, (const unsigned char *)sym_ctx, sizeof sym_ctx);
        crypto_generichash_update(&h, k->sym, sizeof k->sym);
    }
    crypto_generichash_final(&h, full, sizeof full);
    memcpy(k->id, full, sizeof k->id);
}

void crypto_key_id_hex(const struct crypto_key *key, char out[CRYPTO_KEY_ID_HEX])
{
    sodium_bin2hex(out, CRYPTO_KEY_ID_HEX, key->id, sizeof key->id);
}

static void id_hex_of(const unsigned char id[CRYPTO_KEY_ID_BYTES], char out[CRYPTO_KEY_ID_HEX])
{
    sodium_bin2hex(out, CRYPTO_KEY_ID_HEX, id, CRYPTO_KEY_ID_BYTES);
}

/* ---- passphrases ---------------------------------------------------------- */

/* A passphrase in guarded memory. */
struct passphrase {
    char *text;
    size_t len;
};

static void passphrase_free(struct passphrase *p)
{
    if (p->text)
        sodium_free(p->text);
    p->text = NULL;
    p->len = 0;
}

static void passphrase_alloc(struct passphrase *p)
{
    p->text = sodium_malloc(PASSPHRASE_MAX + 2);
    if (p->text == NULL) {
        fprintf(stderr, "stagecoach: out of memory\n");
        exit(SC_EFAIL);
    }
    p->len = 0;
}

/* The first line of a private file. Never from argv or the environment:
 * both are visible to other processes. */
static int passphrase_from_file(const char *path, struct passphrase *p, sc_err *err)
{
    int rc = fs_check_private(path, "passphrase file", err);
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sc_fail_errno(err, SC_ECONFIG, "cannot read passphrase file %s", path);
    passphrase_alloc(p);
    ssize_t n = read_full(fd, p->text, PASSPHRASE_MAX + 1);
    close(fd);
    if (n < 0) {
        passphrase_free(p);
        return sc_fail_errno(err, SC_ECONFIG, "cannot read passphrase file %s", path);
    }
    if (n > PASSPHRASE_MAX) {
        passphrase_free(p);
        return sc_fail(err, SC_ECONFIG, "passphrase file %s: longer than %d bytes", path,
                       PASSPHRASE_MAX);
    }
    p->text[n] = '\0';
    p->len = strcspn(p->text, "\r\n");
    p->text[p->len] = '\0';
    if (p->len == 0) {
        passphrase_free(p);
        return sc_fail(err, SC_ECONFIG, "passphrase file %s: the first line is empty", path);
    }
    return 0;
}

/* Read one line from the terminal with echo off. */
static int read_tty_line(int tty, const char *prompt, struct passphrase *p, sc_err *err)
{
    struct termios old, quiet;
    if (tcgetattr(tty, &old) != 0)
        return sc_fail_errno(err, SC_EUSAGE, "cannot read a passphrase from the terminal");
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    if (tcsetattr(tty, TCSAFLUSH, &quiet) != 0)
        return sc_fail_errno(err, SC_EUSAGE, "cannot turn terminal echo off");
    int rc = 0;
    if (fs_write_all(tty, prompt, strlen(prompt)) != 0)
        rc = sc_fail_errno(err, SC_EUSAGE, "cannot write to the terminal");
    passphrase_alloc(p);
    size_t n = 0;
    while (rc == 0) {
        char c;
        ssize_t r = read(tty, &c, 1);
        if (r < 0)
            rc = sc_fail_errno(err, SC_EUSAGE, "no passphrase read");
        else if (r == 0 || c == '\n')
            break;
        else if (n < PASSPHRASE_MAX)
            p->text[n++] = c;
        else
            rc = sc_fail(err, SC_EUSAGE, "passphrase longer than %d bytes", PASSPHRASE_MAX);
    }
    if (tcsetattr(tty, TCSAFLUSH, &old) != 0 && rc == 0)
        rc = sc_fail_errno(err, SC_EUSAGE, "cannot restore terminal echo");
    p->text[n] = '\0';
    p->len = n;
    if (rc == 0 && n == 0)
        rc = sc_fail(err, SC_EUSAGE, "empty passphrase");
    if (rc != 0)
        passphrase_free(p);
    return rc;
}

static int passphrase_from_tty(const char *what, bool confirm, struct passphrase *p, sc_err *err)
{
    int tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty < 0)
        return sc_fail(err, SC_EUSAGE,
                       "%s is protected by a passphrase and there is no terminal to ask it on: "
                       "give --passphrase-file FILE (or [staging] passphrase_file)",
                       what);
    char *prompt = xasprintf("passphrase for %s: ", what);
    int rc = read_tty_line(tty, prompt, p, err);
    free(prompt);
    if (rc == 0 && confirm) {
        struct passphrase again = {0};
        rc = read_tty_line(tty, "the same passphrase again: ", &again, err);
        if (rc == 0 && (again.len != p->len || sodium_memcmp(again.text, p->text, p->len) != 0))
            rc = sc_fail(err, SC_EUSAGE, "the two passphrases differ");
        passphrase_free(&again);
        if (rc != 0)
            passphrase_free(p);
    }
    close(tty);
    return rc;
}

/* The key that protects a secret key, from the passphrase and the salt. */
static int derive_protection_key(const struct passphrase *p, const unsigned char *salt,
                                 unsigned long long ops, size_t mem,
                                 unsigned char out[crypto_secretbox_KEYBYTES], sc_err *err)
{
    if (p->text == NULL) /* not reached: the analyzer cannot see that sc_fail never returns 0 */
        return SC_EFAIL;
    if (crypto_pwhash(out, crypto_secretbox_KEYBYTES, p->text, p->len, salt, ops, mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return sc_fail(err, SC_EFAIL,
                       "cannot derive a key from the passphrase (Argon2id needs %zu MiB of "
                       "memory)",
                       mem >> 20);
    return 0;
}

/* ---- key file text -------------------------------------------------------- */

/* Append "name: base64(bin)\n". */
static void put_b64_line(char *buf, size_t cap, size_t *len, const char *name,
                         const unsigned char *bin, size_t n)
{
    char b64[sodium_base64_ENCODED_LEN(256, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, bin, n, sodium_base64_VARIANT_ORIGINAL);
    *len += (size_t)snprintf(buf + *len, cap - *len, "%s: %s\n", name, b64);
    sodium_memzero(b64, sizeof b64);
}

/* A new file with exactly this content and mode; never replaces one. */
static int write_new_file(const char *path, const char *text, size_t len, mode_t mode, sc_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return sc_fail(err, SC_EFAIL, "%s exists: keygen never overwrites a key", path);
    if (fd < 0)
        return sc_fail_errno(err, SC_EFAIL, "cannot create %s", path);
    int rc = 0;
    if (fchmod(fd, mode) != 0 || fs_write_all(fd, text, len) != 0 || fsync(fd) != 0)
        rc = sc_fail_errno(err, SC_EFAIL, "cannot write %s", path);
    if (close(fd) != 0 && rc == 0)
        rc = sc_fail_errno(err, SC_EFAIL, "cannot write %s", path);
    if (rc != 0)
        unlink(path);
    return rc;
}

/* A key file split into lines in place: the header's kind and version,
 * then "name: value" fields. */
struct keyfile {
    char text[KEYFILE_MAX + 1];
    size_t len;
    char *lines[KEYFILE_LINES];
    size_t nlines;
};

static int keyfile_read(const char *path, struct keyfile *kf, sc_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sc_fail_errno(err, SC_ECONFIG, "cannot read key file %s", path);
    ssize_t n = read_full(fd, kf->text, KEYFILE_MAX + 1);
    close(fd);
    if (n < 0)
        return sc_fail_errno(err, SC_ECONFIG, "cannot read key file %s", path);
    if (n > KEYFILE_MAX)
        return sc_fail(err, SC_ECONFIG, "%s: not a stagecoach key file (too large)", path);
    kf->len = (size_t)n;
    kf->text[n] = '\0';
    return 0;
}

static void keyfile_wipe(struct keyfile *kf)
{
    sodium_memzero(kf, sizeof *kf);
}

/* Split into lines; false when the text holds a NUL (binary). */
static bool keyfile_split(struct keyfile *kf)
{
    if (strlen(kf->text) != kf->len)
        return false;
    kf->nlines = 0;
    char *p = kf->text;
    while (*p && kf->nlines < KEYFILE_LINES) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        size_t n = strlen(p);
        if (n > 0 && p[n - 1] == '\r')
            p[n - 1] = '\0';
        kf->lines[kf->nlines++] = p;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return kf->nlines > 0;
}

/* "stagecoach KIND key N" with the header given: the version, or -1. */
static int keyfile_version(const struct keyfile *kf, const char *header)
{
    size_t hn = strlen(header);
    const char *l = kf->lines[0];
    if (strncmp(l, header, hn) != 0 || l[hn] != ' ')
        return -1;
    char *end;
    long v = strtol(l + hn + 1, &end, 10);
    return (*end == '\0' && v > 0 && v < 1000) ? (int)v : -1;
}

static const char *keyfile_field(const struct keyfile *kf, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 1; i < kf->nlines; i++)
        if (strncmp(kf->lines[i], name, n) == 0 && kf->lines[i][n] == ':' &&
            kf->lines[i][n + 1] == ' ')
            return kf->lines[i] + n + 2;
    return NULL;
}

/* A base64 field of exactly n bytes. */
static int keyfile_bytes(const struct keyfile *kf, const char *path, const char *name,
                         unsigned char *out, size_t n, sc_err *err)
{
    const char *v = keyfile_field(kf, name);
    size_t got = 0;
    const char *end = NULL;
    if (v == NULL)
        return sc_fail(err, SC_ECONFIG, "%s: no '%s:' line", path, name);
    if (sodium_base642bin(out, n, v, strlen(v), NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) !=
            0 ||
        got != n || *end != '\0')
        return sc_fail(err, SC_ECONFIG, "%s: '%s:' is not %zu bytes of base64", path, name, n);
    return 0;
}

/* The recorded id must be the key's: catches a damaged or hand-edited file. */
static int keyfile_check_id(const struct keyfile *kf, const char *path, const struct crypto_key *k,
                            sc_err *err)
{
    char want[CRYPTO_KEY_ID_HEX];
    crypto_key_id_hex(k, want);
    const char *id = keyfile_field(kf, "id");
    if (id != NULL && strcmp(id, want) != 0)
        return sc_fail(err, SC_ECONFIG, "%s: the key does not match its id %s (damaged file?)",
                       path, id);
    return 0;
}

/* Which kind of key file this is, or an error that says what it is not. */
enum keyfile_kind { KF_PUBLIC, KF_SECRET, KF_SYMMETRIC, KF_RAW32 };

static int keyfile_kind(struct keyfile *kf, const char *path, enum keyfile_kind *kind, sc_err *err)
{
    static const char tag[] = "stagecoach ";
    bool text = kf->len >= sizeof tag - 1 && memcmp(kf->text, tag, sizeof tag - 1) == 0;
    if (kf->len == crypto_secretbox_KEYBYTES && !text) {
        *kind = KF_RAW32; /* 32 random bytes, e.g. head -c 32 /dev/urandom */
        return 0;
    }
    if (!text || !keyfile_split(kf))
        return sc_fail(err, SC_ECONFIG, "%s: not a stagecoach key file", path);
    static const struct {
        const char *header;
        enum keyfile_kind kind;
    } kinds[] = {
        {PUBLIC_HEADER, KF_PUBLIC}, {SECRET_HEADER, KF_SECRET}, {SYMMETRIC_HEADER, KF_SYMMETRIC}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        int v = keyfile_version(kf, kinds[i].header);
        if (v < 0)
            continue;
        if (v != KEYFILE_VERSION)
            return sc_fail(err, SC_ECONFIG,
                           "%s: key file version %d; this stagecoach reads version %d", path, v,
                           KEYFILE_VERSION);
        *kind = kinds[i].kind;
        return 0;
    }
    return sc_fail(err, SC_ECONFIG, "%s: not a stagecoach key file (unknown first line)", path);
}

/* ---- writing keys ----------------------------------------------------------- */

/* A key file that holds one key: its header and version, a comment line
 * that says what it is for, the key id, then the key as a base64 line. */
static size_t format_one_key(char *buf, size_t cap, const struct crypto_key *k, const char *header,
                             const char *comment, const char *field, const unsigned char *key,
                             size_t keylen)
{
    char id[CRYPTO_KEY_ID_HEX];
    crypto_key_id_hex(k, id);
    size_t len =
        (size_t)snprintf(buf, cap, "%s %d\n# %s\nid: %s\n", header, KEYFILE_VERSION, comment, id);
    put_b64_line(buf, cap, &len, field, key, keylen);
    return len;
}

static size_t format_public(char *buf, size_t cap, const struct crypto_key *k)
{
    return format_one_key(buf, cap, k, PUBLIC_HEADER,
                          "staging recipient: [staging] encrypt = yes, recipient = this file",
                          "x25519", k->pk, sizeof k->pk);
}

static size_t format_symmetric(char *buf, size_t cap, const struct crypto_key *k)
{
    return format_one_key(buf, cap, k, SYMMETRIC_HEADER,
                          "[staging] key_file: encrypts and decrypts every set; keep it secret "
                          "and keep a copy off this host",
                          "key", k->sym, sizeof k->sym);
}

/* The secret key as text; with a passphrase, the key sealed under an
 * Argon2id-derived key (parameters and salt recorded for reading it back). */
static int format_secret(char *buf, size_t cap, size_t *len, const struct crypto_key *k,
                         const struct passphrase *pass, unsigned long long ops, size_t mem,
                         sc_err *err)
{
    char id[CRYPTO_KEY_ID_HEX];
    crypto_key_id_hex(k, id);
    *len = (size_t)snprintf(buf, cap,
                            "%s %d\n# decrypts every set sealed to key id %s; keep it off the "
                            "staging host\nid: %s\n",
                            SECRET_HEADER, KEYFILE_VERSION, id, id);
    if (pass == NULL) {
        put_b64_line(buf, cap, len, "x25519", k->sk, sizeof k->sk);
        return 0;
    }
    unsigned char salt[SALT_BYTES], pkey[crypto_secretbox_KEYBYTES];
    unsigned char sealed[PROTECTED_SK_BYTES];
    randombytes_buf(salt, sizeof salt);
    if (derive_protection_key(pass, salt, ops, mem, pkey, err) != 0)
        return err->code;
    randombytes_buf(sealed, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(sealed + crypto_secretbox_NONCEBYTES, k->sk, sizeof k->sk, sealed, pkey);
    sodium_memzero(pkey, sizeof pkey);
    char salt64[sodium_base64_ENCODED_LEN(SALT_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(salt64, sizeof salt64, salt, sizeof salt, sodium_base64_VARIANT_ORIGINAL);
    *len += (size_t)snprintf(buf + *len, cap - *len, "argon2id: ops=%llu mem=%zu salt=%s\n", ops,
                             mem, salt64);
    put_b64_line(buf, cap, len, "x25519-sealed", sealed, sizeof sealed);
    return 0;
}

static int keygen_passphrase(const char *out, const struct crypto_keygen_opts *o,
                             struct passphrase *pass, bool *have, sc_err *err)
{
    *have = false;
    if (o->passphrase_file == NULL && !o->ask_passphrase)
        return 0;
    if (o->symmetric)
        return sc_fail(err, SC_EUSAGE,
                       "a symmetric key is read unattended by stage: it takes no passphrase");
    int rc = o->passphrase_file ? passphrase_from_file(o->passphrase_file, pass, err)
                                : passphrase_from_tty(out, true, pass, err);
    *have = rc == 0;
    return rc;
}

int crypto_keygen(const char *out, const struct crypto_keygen_opts *o,
                  char id_hex[CRYPTO_KEY_ID_HEX], sc_err *err)
{
    if (init_sodium(err) != 0)
        return err->code;
    char *pub = xasprintf("%s.pub", out);
    int rc = 0;
    if (fs_exists(out))
        rc = sc_fail(err, SC_EFAIL, "%s exists: keygen never overwrites a key", out);
    else if (!o->symmetric && fs_exists(pub))
        rc = sc_fail(err, SC_EFAIL, "%s exists: keygen never overwrites a key", pub);
    struct passphrase pass = {0};
    bool protect = false;
    if (rc == 0)
        rc = keygen_passphrase(out, o, &pass, &protect, err);
    struct crypto_key *k = key_new(o->symmetric ? CRYPTO_SYMMETRIC : CRYPTO_SEALED);
    if (o->symmetric)
        crypto_secretbox_keygen(k->sym);
    else
        crypto_box_keypair(k->pk, k->sk);
    compute_key_id(k);
    char text[KEYFILE_MAX];
    size_t len = 0;
    unsigned long long ops = o->opslimit ? o->opslimit : crypto_pwhash_OPSLIMIT_MODERATE;
    size_t mem = o->memlimit ? o->memlimit : crypto_pwhash_MEMLIMIT_MODERATE;
    if (rc == 0 && o->symmetric)
        len = format_symmetric(text, sizeof text, k);
    else if (rc == 0)
        rc = format_secret(text, sizeof text, &len, k, protect ? &pass : NULL, ops, mem, err);
    if (rc == 0)
        rc = write_new_file(out, text, len, 0600, err);
    sodium_memzero(text, sizeof text);
    if (rc == 0 && !o->symmetric) {
        len = format_public(text, sizeof text, k);
        rc = write_new_file(pub, text, len, 0644, err);
        if (rc != 0)
            unlink(out); /* a secret key without its public half helps no one */
    }
    if (rc == 0)
        crypto_key_id_hex(k, id_hex);
    passphrase_free(&pass);
    crypto_key_free(k);
    free(pub);
    return rc;
}

/* ---- reading keys ----------------------------------------------------------- */

static int load_public(struct keyfile *kf, const char *path, struct crypto_key **key, sc_err *err)
{
    struct crypto_key *k = key_new(CRYPTO_SEALED);
    int rc = keyfile_bytes(kf, path, "x25519", k->pk, sizeof k->pk, err);
    if (rc == 0) {
        compute_key_id(k);
        rc = keyfile_check_id(kf, path, k, err);
    }
    if (rc != 0) {
        crypto_key_free(k);
        return rc;
    }
    *key = k;
    return 0;
}

/* A key that decrypts, read from a key file (rc: how reading its bytes
 * went): its id must be the one the file names. k is freed on failure. */
static int finish_identity(const struct keyfile *kf, const char *path, struct crypto_key *k, int rc,
                           struct crypto_key **key, sc_err *err)
{
    if (rc == 0) {
        compute_key_id(k);
        rc = keyfile_check_id(kf, path, k, err);
    }
    if (rc != 0) {
        crypto_key_free(k);
        return rc;
    }
    k->can_decrypt = true;
    *key = k;
    return 0;
}

static int load_symmetric_text(struct keyfile *kf, const char *path, struct crypto_key **key,
                               sc_err *err)
{
    struct crypto_key *k = key_new(CRYPTO_SYMMETRIC);
    int rc = keyfile_bytes(kf, path, "key", k->sym, sizeof k->sym, err);
    return finish_identity(kf, path, k, rc, key, err);
}

static struct crypto_key *symmetric_from_raw(const struct keyfile *kf)
{
    struct crypto_key *k = key_new(CRYPTO_SYMMETRIC);
    memcpy(k->sym, kf->text, sizeof k->sym);
    compute_key_id(k);
    k->can_decrypt = true;
    return k;
}

/* "ops=N mem=N salt=B64" */
static int parse_argon2id(const struct keyfile *kf, const char *path, unsigned long long *ops,
                          size_t *mem, unsigned char salt[SALT_BYTES], sc_err *err)
{
    const char *v = keyfile_field(kf, "argon2id");
    char salt64[64];
    size_t got = 0;
    const char *end = NULL;
    if (v == NULL || sscanf(v, "ops=%llu mem=%zu salt=%63s", ops, mem, salt64) != 3 ||
        sodium_base642bin(salt, SALT_BYTES, salt64, strlen(salt64), NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != SALT_BYTES || *end != '\0')
        return sc_fail(err, SC_ECONFIG, "%s: the 'argon2id:' line is malformed", path);
    if (*ops < crypto_pwhash_OPSLIMIT_MIN || *ops > OPSLIMIT_MAX ||
        *mem < crypto_pwhash_MEMLIMIT_MIN || *mem > MEMLIMIT_MAX)
        return sc_fail(err, SC_ECONFIG, "%s: Argon2id parameters out of range", path);
    return 0;
}

static int unprotect_secret(const struct keyfile *kf, const char *path, const char *passfile,
                            struct crypto_key *k, sc_err *err)
{
    unsigned long long ops = 0; /* set: the analyzer cannot see that sc_fail never returns 0 */
    size_t mem = 0;
    unsigned char salt[SALT_BYTES] = {0}, sealed[PROTECTED_SK_BYTES];
    unsigned char pkey[crypto_secretbox_KEYBYTES];
    int rc = parse_argon2id(kf, path, &ops, &mem, salt, err);
    if (rc == 0)
        rc = keyfile_bytes(kf, path, "x25519-sealed", sealed, sizeof sealed, err);
    struct passphrase pass = {0};
    if (rc == 0)
        rc = passfile ? passphrase_from_file(passfile, &pass, err)
                      : passphrase_from_tty(path, false, &pass, err);
    if (rc == 0)
        rc = derive_protection_key(&pass, salt, ops, mem, pkey, err);
    passphrase_free(&pass);
    if (rc == 0 &&
        crypto_secretbox_open_easy(k->sk, sealed + crypto_secretbox_NONCEBYTES,
                                   sizeof sealed - crypto_secretbox_NONCEBYTES, sealed, pkey) != 0)
        rc = sc_fail(err, SC_ECONFIG, "%s: wrong passphrase (or a damaged key file)", path);
    sodium_memzero(pkey, sizeof pkey);
    return rc;
}

static int load_secret(struct keyfile *kf, const char *path, const char *passfile,
                       struct crypto_key **key, sc_err *err)
{
    struct crypto_key *k = key_new(CRYPTO_SEALED);
    int rc = keyfile_field(kf, "argon2id") != NULL
                 ? unprotect_secret(kf, path, passfile, k, err)
                 : keyfile_bytes(kf, path, "x25519", k->sk, sizeof k->sk, err);
    if (rc == 0 && crypto_scalarmult_base(k->pk, k->sk) != 0)
        rc = sc_fail(err, SC_ECONFIG, "%s: not a valid X25519 secret key", path);
    return finish_identity(kf, path, k, rc, key, err);
}

/* Read a key file into locked memory and tell its kind. private_what
 * names the file in the error when it must be private (a secret); NULL
 * for a public key. On success *out is the caller's to keyfile_close. */
static int keyfile_open(const char *path, const char *private_what, struct keyfile **out,
                        enum keyfile_kind *kind, sc_err *err)
{
    *out = NULL;
    int rc = init_sodium(err);
    if (rc == 0 && private_what != NULL)
        rc = fs_check_private(path, private_what, err);
    if (rc != 0)
        return rc;
    struct keyfile *kf = sodium_malloc(sizeof *kf);
    if (kf == NULL) {
        sc_fail(err, SC_EFAIL, "out of memory");
        return SC_EFAIL; /* never 0, which the callers' analysis needs to see */
    }
    *kind = KF_PUBLIC;
    rc = keyfile_read(path, kf, err);
    if (rc == 0)
        rc = keyfile_kind(kf, path, kind, err);
    if (rc != 0) {
        keyfile_wipe(kf);
        sodium_free(kf);
        return rc;
    }
    *out = kf;
    return 0;
}

static void keyfile_close(struct keyfile *kf)
{
    if (kf == NULL)
        return;
    keyfile_wipe(kf);
    sodium_free(kf);
}

int crypto_load_recipient(const char *path, struct crypto_key **key, sc_err *err)
{
    *key = NULL;
    struct keyfile *kf;
    enum keyfile_kind kind = KF_PUBLIC;
    int rc = keyfile_open(path, NULL, &kf, &kind, err);
    if (rc != 0)
        return rc;
    if (kind != KF_PUBLIC)
        rc = sc_fail(err, SC_ECONFIG,
                     "%s: not a public key; recipient = names the .pub file that keygen wrote "
                     "(the secret key stays off the staging host)",
                     path);
    if (rc == 0)
        rc = load_public(kf, path, key, err);
    keyfile_close(kf);
    return rc;
}

int crypto_load_symmetric(const char *path, struct crypto_key **key, sc_err *err)
{
    *key = NULL;
    struct keyfile *kf;
    enum keyfile_kind kind = KF_PUBLIC;
    int rc = keyfile_open(path, "key file", &kf, &kind, err);
    if (rc != 0)
        return rc;
    if (kind == KF_RAW32)
        *key = symmetric_from_raw(kf);
    else if (kind == KF_SYMMETRIC)
        rc = load_symmetric_text(kf, path, key, err);
    else
        rc = sc_fail(err, SC_ECONFIG,
                     "%s: not a symmetric key (keygen --symmetric writes one; 32 random bytes "
                     "also do)",
                     path);
    keyfile_close(kf);
    return rc;
}

int crypto_load_identity(const char *path, const char *passphrase_file, struct crypto_key **key,
                         sc_err *err)
{
    *key = NULL;
    struct keyfile *kf;
    enum keyfile_kind kind = KF_PUBLIC;
    int rc = keyfile_open(path, "identity", &kf, &kind, err);
    if (rc != 0)
        return rc;
    switch (kind) {
    case KF_PUBLIC:
        rc = sc_fail(err, SC_ECONFIG,
                     "%s is a public key: it cannot decrypt; give the secret key file "
                     "(keygen --out FILE wrote FILE and FILE.pub)",
                     path);
        break;
    case KF_SECRET:
        rc = load_secret(kf, path, passphrase_file, key, err);
        break;
    case KF_SYMMETRIC:
        rc = load_symmetric_text(kf, path, key, err);
        break;
    case KF_RAW32:
        *key = symmetric_from_raw(kf);
        break;
    }
    keyfile_close(kf);
    return rc;
}

struct crypto_key *crypto_key_from_secret(enum crypto_mode mode,
                                          const unsigned char secret[crypto_box_SECRETKEYBYTES])
{
    if (sodium_init() < 0)
        return NULL;
    struct crypto_key *k = key_new(mode);
    if (mode == CRYPTO_SEALED) {
        memcpy(k->sk, secret, sizeof k->sk);
        if (crypto_scalarmult_base(k->pk, k->sk) != 0) {
            crypto_key_free(k);
            return NULL;
        }
    } else {
        memcpy(k->sym, secret, sizeof k->sym);
    }
    compute_key_id(k);
    k->can_decrypt = true;
    return k;
}

int crypto_staging_key(const struct config *cfg, struct crypto_key **key, sc_err *err)
{
    *key = NULL;
    if (!cfg->staging.encrypt)
        return 0;
    if (cfg->staging.key_file)
        return crypto_load_symmetric(cfg->staging.key_file, key, err);
    if (cfg->staging.recipient)
        return crypto_load_recipient(cfg->staging.recipient, key, err);
    return sc_fail(err, SC_ECONFIG, "[staging] encrypt = yes needs recipient or key_file");
}

/* ---- the file key ------------------------------------------------------- */

static size_t wrapped_len(enum crypto_mode mode)
{
    return mode == CRYPTO_SEALED ? SEALED_KEY_BYTES : WRAPPED_KEY_BYTES;
}

static void wrap_file_key(const struct crypto_key *k, const unsigned char *file_key,
                          unsigned char *out)
{
    if (k->mode == CRYPTO_SEALED) {
        crypto_box_seal(out, file_key, FILE_KEY_BYTES, k->pk);
        return;
    }
    randombytes_buf(out, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, file_key, FILE_KEY_BYTES, out, k->sym);
}

static int unwrap_file_key(const struct crypto_key *k, const unsigned char *in,
                           unsigned char *file_key)
{
    if (k->mode == CRYPTO_SEALED)
        return crypto_box_seal_open(file_key, in, SEALED_KEY_BYTES, k->pk, k->sk);
    return crypto_secretbox_open_easy(file_key, in + crypto_secretbox_NONCEBYTES,
                                      WRAPPED_KEY_BYTES - crypto_secretbox_NONCEBYTES, in, k->sym);
}

/* ---- writing a file ------------------------------------------------------ */

/* magic | version | mode | reserved | chunk | key id | name | wrapped key | stream header */
static size_t encode_header(unsigned char *h, const struct crypto_key *k, const char *name,
                            size_t name_len, const unsigned char *wrapped,
                            const unsigned char *stream_header)
{
    size_t wlen = wrapped_len(k->mode), o = 0;
    memcpy(h, MAGIC, sizeof MAGIC);
    o += sizeof MAGIC;
    h[o++] = FORMAT_VERSION;
    h[o++] = (unsigned char)k->mode;
    put_be16(h + o, 0);
    o += 2;
    put_be32(h + o, CRYPTO_CHUNK);
    o += 4;
    memcpy(h + o, k->id, CRYPTO_KEY_ID_BYTES);
    o += CRYPTO_KEY_ID_BYTES;
    put_be16(h + o, (uint32_t)name_len);
    o += 2;
    memcpy(h + o, name, name_len);
    o += name_len;
    put_be16(h + o, (uint32_t)wlen);
    o += 2;
    memcpy(h + o, wrapped, wlen);
    o += wlen;
    memcpy(h + o, stream_header, STREAM_HEADER_BYTES);
    return o + STREAM_HEADER_BYTES;
}

int crypto_writer_open(struct crypto_writer *w, const struct crypto_key *key, const char *name,
                       crypto_out_fn out, void *ctx, sc_err *err)
{
    memset(w, 0, sizeof *w);
    size_t name_len = strlen(name);
    if (name_len == 0 || name_len > NAME_MAX_BYTES)
        return sc_fail(err, SC_ESTAGING, "%s: name too long to encrypt", name);
    unsigned char file_key[FILE_KEY_BYTES], wrapped[WRAPPED_MAX];
    unsigned char stream_header[STREAM_HEADER_BYTES];
    crypto_secretstream_xchacha20poly1305_keygen(file_key);
    wrap_file_key(key, file_key, wrapped);
    crypto_secretstream_xchacha20poly1305_init_push(&w->st, stream_header, file_key);
    sodium_memzero(file_key, sizeof file_key);
    w->header = xmalloc(HEADER_MAX);
    w->header_len = encode_header(w->header, key, name, name_len, wrapped, stream_header);
    w->plain = xmalloc(CRYPTO_CHUNK);
    w->cipher = xmalloc(CRYPTO_CHUNK + CHUNK_OVERHEAD);
    w->out = out;
    w->ctx = ctx;
    return out(ctx, w->header, w->header_len, err);
}

/* Encrypt len bytes (at most a chunk) as the next chunk. The first chunk
 * authenticates the whole header as additional data. */
static int push_chunk(struct crypto_writer *w, const unsigned char *m, size_t len,
                      unsigned char tag, sc_err *err)
{
    unsigned long long clen = 0;
    const unsigned char *ad = w->chunks == 0 ? w->header : NULL;
    size_t adlen = w->chunks == 0 ? w->header_len : 0;
    if (crypto_secretstream_xchacha20poly1305_push(&w->st, w->cipher, &clen, m, len, ad, adlen,
                                                   tag) != 0)
        return sc_fail(err, SC_ESTAGING, "encryption failed");
    w->chunks++;
    return w->out(w->ctx, w->cipher, (size_t)clen, err);
}

int crypto_writer_write(struct crypto_writer *w, const void *buf, size_t len, sc_err *err)
{
    const unsigned char *p = buf;
    while (len > 0) {
        /* Whole chunks straight from the caller's buffer: no copy. */
        if (w->fill == 0 && len >= CRYPTO_CHUNK) {
            int rc = push_chunk(w, p, CRYPTO_CHUNK,
                                crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, err);
            if (rc != 0)
                return rc;
            p += CRYPTO_CHUNK;
            len -= CRYPTO_CHUNK;
            continue;
        }
        size_t n = CRYPTO_CHUNK - w->fill < len ? CRYPTO_CHUNK - w->fill : len;
        memcpy(w->plain + w->fill, p, n);
        w->fill += n;
        p += n;
        len -= n;
        if (w->fill == CRYPTO_CHUNK) {
            int rc = push_chunk(w, w->plain, w->fill,
                                crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, err);
            w->fill = 0;
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int crypto_writer_finish(struct crypto_writer *w, sc_err *err)
{
    int rc = push_chunk(w, w->plain, w->fill, crypto_secretstream_xchacha20poly1305_TAG_FINAL, err);
    w->fill = 0;
    return rc;
}

void crypto_writer_free(struct crypto_writer *w)
{
    if (w->plain)
        sodium_memzero(w->plain, CRYPTO_CHUNK);
    free(w->plain);
    free(w->cipher);
    free(w->header);
    sodium_memzero(&w->st, sizeof w->st);
    w->plain = w->cipher = w->header = NULL;
}

/* ---- reading a file ----------------------------------------------------- */

struct reader {
    int fd;
    const char *display;
    const struct crypto_key *key;
    sc_err *err;
    unsigned char header[HEADER_MAX];
    size_t header_len;
    uint32_t chunk;
    crypto_secretstream_xchacha20poly1305_state st;
};

static int damaged(struct reader *r, const char *what)
{
    return sc_fail(r->err, SC_EVERIFY, "%s: %s", r->display, what);
}

/* Append n header bytes from the file. */
static int take(struct reader *r, size_t n, const char *what)
{
    ssize_t got = read_full(r->fd, r->header + r->header_len, n);
    if (got < 0)
        return sc_fail_errno(r->err, SC_EVERIFY, "cannot read %s", r->display);
    if ((size_t)got != n)
        return damaged(r, what);
    r->header_len += n;
    return 0;
}

static int check_fixed_header(struct reader *r)
{
    const unsigned char *h = r->header;
    if (memcmp(h, MAGIC, sizeof MAGIC) != 0)
        return damaged(r, "not a stagecoach encrypted file (bad magic)");
    if (h[8] != FORMAT_VERSION)
        return sc_fail(r->err, SC_EVERIFY,
                       "%s: encrypted with format version %u; this stagecoach reads version %d",
                       r->display, h[8], FORMAT_VERSION);
    if (h[9] != CRYPTO_SEALED && h[9] != CRYPTO_SYMMETRIC)
        return damaged(r, "unknown encryption mode in the header");
    if (get_be16(h + 10) != 0)
        return damaged(r, "reserved header bytes are not zero");
    r->chunk = get_be32(h + 12);
    if (r->chunk < CHUNK_MIN || r->chunk > CHUNK_MAX)
        return damaged(r, "chunk size out of range in the header");
    char file_id[CRYPTO_KEY_ID_HEX], have_id[CRYPTO_KEY_ID_HEX];
    id_hex_of(h + 16, file_id);
    crypto_key_id_hex(r->key, have_id);
    if (h[9] != r->key->mode || memcmp(h + 16, r->key->id, CRYPTO_KEY_ID_BYTES) != 0)
        return sc_fail(r->err, SC_EFAIL,
                       "%s is encrypted for %s key %s; the identity given is %s key %s (wrong "
                       "identity?)",
                       r->display, crypto_mode_name((enum crypto_mode)h[9]), file_id,
                       crypto_mode_name(r->key->mode), have_id);
    if (!r->key->can_decrypt)
        return sc_fail(r->err, SC_EFAIL, "%s: a public key cannot decrypt; give the secret key",
                       r->display);
    return 0;
}

/* The name the file carries must be the one it is stored under: two files
 * swapped in a set (and their manifest lines with them) are caught here. */
static int read_name(struct reader *r, const char *want)
{
    int rc = take(r, 2, "truncated header");
    uint32_t n = rc == 0 ? get_be16(r->header + r->header_len - 2) : 0;
    if (rc == 0 && (n == 0 || n > NAME_MAX_BYTES))
        rc = damaged(r, "bad name length in the header");
    if (rc == 0)
        rc = take(r, n, "truncated header");
    if (rc != 0)
        return rc;
    const char *name = (const char *)r->header + r->header_len - n;
    if (want != NULL && (strlen(want) != n || memcmp(name, want, n) != 0))
        return sc_fail(r->err, SC_EVERIFY, "%s: holds %.*s, not %s (files swapped?)", r->display,
                       (int)n, name, want);
    return 0;
}

static int open_stream(struct reader *r)
{
    size_t want = wrapped_len(r->key->mode);
    int rc = take(r, 2, "truncated header");
    if (rc == 0 && get_be16(r->header + r->header_len - 2) != want)
        rc = damaged(r, "bad wrapped-key length in the header");
    if (rc == 0)
        rc = take(r, want + STREAM_HEADER_BYTES, "truncated header");
    if (rc != 0)
        return rc;
    const unsigned char *wrapped = r->header + r->header_len - want - STREAM_HEADER_BYTES;
    unsigned char file_key[FILE_KEY_BYTES];
    if (unwrap_file_key(r->key, wrapped, file_key) != 0)
        return damaged(r, "cannot open the file key (damaged or altered header)");
    rc = crypto_secretstream_xchacha20poly1305_init_pull(&r->st, wrapped + want, file_key);
    sodium_memzero(file_key, sizeof file_key);
    return rc == 0 ? 0 : damaged(r, "bad stream header");
}

/* Chunks until the FINAL one, which must end the file. */
static int pull_chunks(struct reader *r, crypto_out_fn out, void *ctx, struct crypto_plain *plain)
{
    size_t clen_max = (size_t)r->chunk + CHUNK_OVERHEAD;
    unsigned char *c = xmalloc(clen_max), *m = xmalloc(r->chunk);
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, crypto_generichash_BYTES_MAX);
    uint64_t index = 0, total = 0;
    bool final = false;
    int rc = 0;
    while (rc == 0) {
        ssize_t got = read_full(r->fd, c, clen_max);
        if (got < 0) {
            rc = sc_fail_errno(r->err, SC_EVERIFY, "cannot read %s", r->display);
            break;
        }
        if (final) {
            if (got > 0)
                rc = damaged(r, "data after the final chunk");
            break;
        }
        if (got == 0) {
            rc = damaged(r, "truncated (the final chunk is missing)");
            break;
        }
        unsigned long long mlen = 0;
        unsigned char tag = 0;
        const unsigned char *ad = index == 0 ? r->header : NULL;
        size_t adlen = index == 0 ? r->header_len : 0;
        if (got < (ssize_t)CHUNK_OVERHEAD ||
            crypto_secretstream_xchacha20poly1305_pull(&r->st, m, &mlen, &tag, c, (size_t)got, ad,
                                                       adlen) != 0) {
            char what[128];
            snprintf(what, sizeof what,
                     "chunk %llu fails authentication (altered, truncated or reordered)",
                     (unsigned long long)index);
            rc = damaged(r, what);
            break;
        }
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
            final = true;
        else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
            rc = damaged(r, "unexpected chunk tag");
        else if ((size_t)got != clen_max)
            rc = damaged(r, "short chunk before the end (truncated)");
        crypto_generichash_update(&h, m, (size_t)mlen);
        total += mlen;
        if (rc == 0 && out != NULL && mlen > 0)
            rc = out(ctx, m, (size_t)mlen, r->err);
        index++;
    }
    unsigned char digest[crypto_generichash_BYTES_MAX];
    crypto_generichash_final(&h, digest, sizeof digest);
    if (plain != NULL) {
        sodium_bin2hex(plain->blake2b, sizeof plain->blake2b, digest, sizeof digest);
        plain->bytes = total;
    }
    sodium_memzero(m, r->chunk);
    free(m);
    free(c);
    return rc;
}

int crypto_decrypt_fd(int fd, const char *display, const char *name, const struct crypto_key *key,
                      crypto_out_fn out, void *ctx, struct crypto_plain *plain, sc_err *err)
{
    if (init_sodium(err) != 0)
        return err->code;
    struct reader *r = sodium_malloc(sizeof *r);
    if (r == NULL)
        return sc_fail(err, SC_EFAIL, "out of memory");
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->display = display;
    r->key = key;
    r->err = err;
    int rc = take(r, FIXED_BYTES, "not a stagecoach encrypted file (too short)");
    if (rc == 0)
        rc = check_fixed_header(r);
    if (rc == 0)
        rc = read_name(r, name);
    if (rc == 0)
        rc = open_stream(r);
    if (rc == 0)
        rc = pull_chunks(r, out, ctx, plain);
    sodium_free(r);
    return rc;
}
