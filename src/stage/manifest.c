#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fs.h"
#include "../core/log.h"
#include "../core/spawn.h"
#include "../core/xalloc.h"
#include "crypto.h"
#include "hashfile.h"
#include "hashpipe.h"
#include "set.h"

#define MANIFEST_MAX (64u << 20)

int manifest_path_ok(const char *p)
{
    size_t len = strlen(p);
    if (len == 0 || p[0] == '/' || p[len - 1] == '/' || len > 4096)
        return 0;
    for (const char *s = p; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\\')
            return 0;
    /* no "." or ".." component */
    const char *c = p;
    while (*c) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        c += n;
        if (*c == '/')
            c++;
    }
    return 1;
}

static int is_hex128(const char *s)
{
    if (strlen(s) != 128)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

/* Names the set itself uses; no file entry may take them. */
static int reserved_name(const char *p)
{
    return strcmp(p, MANIFEST_NAME) == 0 || strcmp(p, B2SUMS_NAME) == 0;
}

bool manifest_encrypted(json_t *manifest)
{
    return json_is_true(json_object_get(manifest, "encrypted"));
}

json_t *manifest_plaintext(json_t *file)
{
    json_t *plain = json_object_get(file, "plaintext");
    return plain ? plain : file;
}

/* An encrypted file's "plaintext": {path, bytes, blake2b}, stored as
 * path + ".enc". The rule keeps a forged manifest from naming, say,
 * MANIFEST.json as the place to decrypt into. */
static int plaintext_ok(json_t *f, const char *stored)
{
    json_t *plain = json_object_get(f, "plaintext");
    const char *p = json_string_value(json_object_get(plain, "path"));
    const char *h = json_string_value(json_object_get(plain, "blake2b"));
    json_t *b = json_object_get(plain, "bytes");
    size_t n = p ? strlen(p) : 0, sn = strlen(stored), xn = strlen(CRYPTO_SUFFIX);
    return json_is_object(plain) && p != NULL && manifest_path_ok(p) && !reserved_name(p) &&
           h != NULL && is_hex128(h) && json_is_integer(b) && json_integer_value(b) >= 0 &&
           sn == n + xn && strncmp(stored, p, n) == 0 && strcmp(stored + n, CRYPTO_SUFFIX) == 0;
}

int manifest_parse(const char *data, size_t len, json_t **out, sc_err *err)
{
    *out = NULL;
    json_error_t je;
    json_t *m = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (m == NULL)
        return sc_fail(err, SC_EVERIFY, "MANIFEST.json: line %d: %s", je.line, je.text);
    const char *format = json_string_value(json_object_get(m, "format"));
    json_t *files = json_object_get(m, "files");
    int rc = 0;
    if (!json_is_object(m) || format == NULL || strcmp(format, MANIFEST_FORMAT) != 0)
        rc = sc_fail(err, SC_EVERIFY, "MANIFEST.json: not a %s manifest", MANIFEST_FORMAT);
    else if (!json_is_array(files))
        rc = sc_fail(err, SC_EVERIFY, "MANIFEST.json: no \"files\" list");
    size_t i;
    json_t *f;
    json_t *seen = json_object();
    json_array_foreach(files, i, f)
    {
        if (rc != 0)
            break;
        const char *p = json_string_value(json_object_get(f, "path"));
        const char *h = json_string_value(json_object_get(f, "blake2b"));
        json_t *b = json_object_get(f, "bytes");
        bool sealed = json_object_get(f, "plaintext") != NULL;
        if (p == NULL || !manifest_path_ok(p) || reserved_name(p) || h == NULL || !is_hex128(h) ||
            !json_is_integer(b) || json_integer_value(b) < 0 || (sealed && !plaintext_ok(f, p)))
            rc = sc_fail(err, SC_EVERIFY, "MANIFEST.json: file entry %zu is malformed", i);
        else if (sealed != manifest_encrypted(m))
            rc = sc_fail(err, SC_EVERIFY, "MANIFEST.json: %s is %s in a set that is %s", p,
                         sealed ? "encrypted" : "not encrypted",
                         sealed ? "not encrypted" : "encrypted");
        else if (json_object_get(seen, p) != NULL)
            rc = sc_fail(err, SC_EVERIFY, "MANIFEST.json: %s listed twice", p);
        else
            json_object_set_new(seen, p, json_true());
    }
    json_decref(seen);
    if (rc != 0) {
        json_decref(m);
        return rc;
    }
    *out = m;
    return 0;
}

int b2sums_parse(const char *data, size_t len, json_t **out, sc_err *err)
{
    *out = NULL;
    json_t *map = json_object();
    size_t pos = 0, lineno = 0;
    int rc = 0;
    while (pos < len && rc == 0) {
        lineno++;
        const char *line = data + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        char *l = xstrndup(line, n);
        if (strlen(l) != n || n < 131 || l[128] != ' ' || l[129] != ' ') {
            rc = sc_fail(err, SC_EVERIFY, "B2SUMS: line %zu is not '<hash>  <file>'", lineno);
        } else {
            l[128] = '\0';
            const char *p = l + 130;
            if (!is_hex128(l) || !manifest_path_ok(p))
                rc = sc_fail(err, SC_EVERIFY, "B2SUMS: line %zu is malformed", lineno);
            else if (json_object_get(map, p) != NULL)
                rc = sc_fail(err, SC_EVERIFY, "B2SUMS: %s listed twice", p);
            else
                json_object_set_new(map, p, json_string(l));
        }
        free(l);
    }
    if (rc != 0) {
        json_decref(map);
        return rc;
    }
    *out = map;
    return 0;
}

int manifest_read(const char *dir, json_t **manifest, json_t **b2map, sc_err *err)
{
    *manifest = *b2map = NULL;
    char *mp = path_join(dir, MANIFEST_NAME);
    char *bp = path_join(dir, B2SUMS_NAME);
    char *mtext = NULL, *btext = NULL;
    size_t mlen, blen;
    int rc = fs_read_file(mp, MANIFEST_MAX, &mtext, &mlen, SC_EVERIFY, err);
    if (rc == 0)
        rc = fs_read_file(bp, MANIFEST_MAX, &btext, &blen, SC_EVERIFY, err);
    if (rc == 0)
        rc = manifest_parse(mtext, mlen, manifest, err);
    if (rc == 0)
        rc = b2sums_parse(btext, blen, b2map, err);
    if (rc != 0) {
        json_decref(*manifest);
        *manifest = NULL;
    }
    free(mtext);
    free(btext);
    free(mp);
    free(bp);
    return rc;
}

/* Compare one file on disk with its expected hash (and size when known). */
static int check_file(const char *dir, const char *rel, const char *want, json_int_t bytes,
                      sc_err *err)
{
    char *path = path_join(dir, rel);
    char hex[129];
    uint64_t got = 0;
    sc_err e = {0};
    int rc = 0;
    struct stat st;
    if (!fs_exists(path))
        rc = sc_fail(err, SC_EVERIFY, "%s: missing", rel);
    /* The size first: a file of the wrong size needs no minutes of hashing. */
    else if (bytes >= 0 && stat(path, &st) == 0 && st.st_size != (off_t)bytes)
        rc = sc_fail(err, SC_EVERIFY, "%s: size %lld, manifest says %lld", rel,
                     (long long)st.st_size, (long long)bytes);
    else if (hash_file(path, hex, &got, &e) != 0)
        rc = sc_fail(err, e.code == SC_EINTR ? SC_EINTR : SC_EVERIFY, "%s: %s", rel, e.msg);
    else if (bytes >= 0 && (json_int_t)got != bytes)
        rc = sc_fail(err, SC_EVERIFY, "%s: size %llu, manifest says %lld", rel,
                     (unsigned long long)got, (long long)bytes);
    else if (strcmp(hex, want) != 0)
        rc = sc_fail(err, SC_EVERIFY, "%s: checksum mismatch", rel);
    if (rc != 0)
        log_error("verify: %s", e.code ? e.msg : err->msg);
    free(path);
    return rc;
}

/* nftw has no user pointer: the walk state lives here for its duration. */
static struct {
    size_t base_len;
    json_t *known;
    struct strvec *extra;
} walk;

static int note_extra(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_D || flag == FTW_DP)
        return 0;
    const char *rel = path + walk.base_len + 1;
    if (json_object_get(walk.known, rel) == NULL)
        strvec_push(walk.extra, rel);
    return 0;
}

int set_verify(const char *dir, sc_err *err)
{
    json_t *m, *b2;
    if (manifest_read(dir, &m, &b2, err) != 0)
        return err->code;
    int rc = 0;
    sc_err first = {0};
    json_t *mh = json_object_get(b2, MANIFEST_NAME);
    if (mh == NULL)
        rc = sc_fail(&first, SC_EVERIFY, "B2SUMS does not list %s", MANIFEST_NAME);
    else if (check_file(dir, MANIFEST_NAME, json_string_value(mh), -1, &first) != 0)
        rc = SC_EVERIFY;
    json_t *known = json_pack("{s:b, s:b}", MANIFEST_NAME, 1, B2SUMS_NAME, 1);
    size_t i, nfiles = 0;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        const char *p = json_string_value(json_object_get(f, "path"));
        const char *h = json_string_value(json_object_get(f, "blake2b"));
        json_object_set_new(known, p, json_true());
        nfiles++;
        const char *bh = json_string_value(json_object_get(b2, p));
        if (bh == NULL || strcmp(bh, h) != 0) {
            sc_fail(&first, SC_EVERIFY, "%s: B2SUMS and MANIFEST.json disagree", p);
            log_error("verify: %s: B2SUMS and MANIFEST.json disagree", p);
            rc = SC_EVERIFY;
        }
        if (check_file(dir, p, h, json_integer_value(json_object_get(f, "bytes")), &first))
            rc = SC_EVERIFY;
        if (first.code == SC_EINTR)
            break;
    }
    const char *key;
    json_t *v;
    json_object_foreach(b2, key, v)
    {
        if (json_object_get(known, key) == NULL) {
            sc_fail(&first, SC_EVERIFY, "%s: in B2SUMS but not in MANIFEST.json", key);
            rc = SC_EVERIFY;
        }
    }
    struct strvec extra = {0};
    walk.base_len = strlen(dir);
    walk.known = known;
    walk.extra = &extra;
    if (nftw(dir, note_extra, 16, FTW_PHYS) != 0)
        rc = sc_fail_errno(&first, SC_EVERIFY, "cannot walk %s", dir);
    for (size_t j = 0; j < extra.n; j++) {
        sc_fail(&first, SC_EVERIFY, "%s: not listed in the manifest", extra.v[j]);
        log_error("verify: %s: not listed in the manifest", extra.v[j]);
        rc = SC_EVERIFY;
    }
    strvec_free(&extra);
    json_decref(known);
    json_decref(m);
    json_decref(b2);
    if (rc != 0)
        return sc_fail(err, first.code ? first.code : rc, "%s", first.msg);
    log_debug("verified %zu files in %s", nfiles, dir);
    return 0;
}

/* ---- plaintext: decrypting and unpacking a verified set -------------------- */

/* Where plaintext goes while a file is unpacked. */
struct plain_out {
    int fd;
    const char *path;
};

static int write_plain(void *ctx, const void *buf, size_t len, sc_err *err)
{
    struct plain_out *o = ctx;
    if (fs_write_all(o->fd, buf, len) != 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot write %s", o->path);
    return 0;
}

/* Read one file of the set (decrypting it when it is encrypted), send its
 * plaintext to out, and compare the plaintext with the manifest. */
static int read_plaintext(const char *dir, json_t *f, const struct crypto_key *key,
                          crypto_out_fn out, void *ctx, sc_err *err)
{
    const char *stored = json_string_value(json_object_get(f, "path"));
    json_t *plain = manifest_plaintext(f);
    const char *name = json_string_value(json_object_get(plain, "path"));
    const char *want = json_string_value(json_object_get(plain, "blake2b"));
    json_int_t bytes = json_integer_value(json_object_get(plain, "bytes"));
    char *path = path_join(dir, stored);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return sc_fail_errno(err, SC_EVERIFY, "%s: cannot read it", stored);
    struct crypto_plain got;
    int rc = plain == f ? hash_fd_to(fd, stored, SC_EVERIFY, out, ctx, got.blake2b, &got.bytes, err)
                        : crypto_decrypt_fd(fd, stored, name, key, out, ctx, &got, err);
    close(fd);
    if (rc == 0 && (json_int_t)got.bytes != bytes)
        rc = sc_fail(err, SC_EVERIFY, "%s: plaintext is %llu bytes, manifest says %lld", stored,
                     (unsigned long long)got.bytes, (long long)bytes);
    else if (rc == 0 && strcmp(got.blake2b, want) != 0)
        rc = sc_fail(err, SC_EVERIFY, "%s: plaintext checksum mismatch", stored);
    return rc;
}

int set_verify_plaintext(const char *dir, const struct crypto_key *key, sc_err *err)
{
    json_t *m, *b2;
    if (manifest_read(dir, &m, &b2, err) != 0)
        return err->code;
    int rc = 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        if (json_object_get(f, "plaintext") == NULL)
            continue;
        sc_err e = {0};
        int frc = read_plaintext(dir, f, key, NULL, NULL, &e);
        if (frc != 0) {
            log_error("verify: %s", e.msg);
            sc_fail(err, frc, "%s", e.msg);
            /* Keep going on damage, to list every bad file; a wrong key
             * fails the same way for all of them. */
            rc = rc ? rc : frc;
            if (frc != SC_EVERIFY)
                break;
        }
    }
    json_decref(m);
    json_decref(b2);
    return rc;
}

/* Parent directories of path (0700), for a file about to be created. */
static int make_parents(const char *path, sc_err *err)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        rc = fs_mkdir_p(dir, 0700, err);
    }
    free(dir);
    return rc;
}

/* One file into to/<plaintext path>: written as .part, checked, fsynced,
 * then renamed, so a file under its final name is always complete. */
static int unpack_file(const char *dir, const char *to, json_t *f, const struct crypto_key *key,
                       sc_err *err)
{
    const char *name = json_string_value(json_object_get(manifest_plaintext(f), "path"));
    char *dst = path_join(to, name);
    char *part = xasprintf("%s.part", dst);
    int rc = make_parents(dst, err);
    struct plain_out o = {.fd = -1, .path = part};
    if (rc == 0) {
        o.fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (o.fd < 0)
            rc = sc_fail_errno(err, SC_ESTAGING, "cannot create %s", part);
    }
    if (rc == 0)
        rc = read_plaintext(dir, f, key, write_plain, &o, err);
    if (rc == 0 && fsync(o.fd) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot fsync %s", part);
    if (o.fd >= 0 && close(o.fd) != 0 && rc == 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", part);
    if (rc == 0 && rename(part, dst) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot rename %s", part);
    if (rc != 0 && o.fd >= 0)
        unlink(part);
    if (rc == 0)
        log_debug("unpacked %s", name);
    free(part);
    free(dst);
    return rc;
}

/* A plain file of a set this run fetched into its own scratch space, and
 * set_verify checked, is renamed into place instead of copied: a restore
 * from a snapshot then writes the data once, not twice. 1 when the file
 * is not a plain regular file there, or another file system holds to:
 * then it is copied, as from any set. */
static int move_file(const char *dir, const char *to, json_t *f, sc_err *err)
{
    if (json_object_get(f, "plaintext") != NULL)
        return 1;
    const char *name = json_string_value(json_object_get(f, "path"));
    char *src = path_join(dir, name), *dst = path_join(to, name);
    struct stat st;
    int rc = lstat(src, &st) == 0 && S_ISREG(st.st_mode) ? make_parents(dst, err) : 1;
    if (rc == 0 && rename(src, dst) != 0)
        rc = errno == EXDEV ? 1 : sc_fail_errno(err, SC_ESTAGING, "cannot move %s to %s", src, dst);
    if (rc == 0) {
        /* private as an unpacked file, whatever mode the snapshot gave it;
         * restic wrote it without fsync: the restored copy must be durable */
        int fd = open(dst, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fchmod(fd, 0600) != 0 || fsync(fd) != 0)
            rc = sc_fail_errno(err, SC_ESTAGING, "cannot fsync %s", dst);
        if (fd >= 0)
            close(fd);
    }
    if (rc == 0)
        log_debug("moved %s", name);
    free(src);
    free(dst);
    return rc;
}

static int write_private(const char *path, const char *data, size_t len, sc_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot create %s", path);
    int rc = 0;
    if (fs_write_all(fd, data, len) != 0 || fsync(fd) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", path);
    if (close(fd) != 0 && rc == 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", path);
    return rc;
}

/* MANIFEST.json as it was, and a B2SUMS of the plaintext: `b2sum -c B2SUMS`
 * checks the restored files with coreutils alone. */
static int write_descriptions(const char *dir, const char *to, json_t *m, sc_err *err)
{
    char *src = path_join(dir, MANIFEST_NAME), *dst = path_join(to, MANIFEST_NAME);
    char *text = NULL, hex[129];
    size_t len = 0;
    int rc = fs_read_file(src, MANIFEST_MAX, &text, &len, SC_EVERIFY, err);
    if (rc == 0)
        rc = write_private(dst, text, len, err);
    if (rc == 0)
        rc = hash_file(dst, hex, NULL, err);
    free(text);
    free(src);
    free(dst);
    if (rc != 0)
        return rc;
    struct strvec lines = {0};
    size_t i, total = 0;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        json_t *plain = manifest_plaintext(f);
        strvec_pushf(&lines, "%s  %s\n", json_string_value(json_object_get(plain, "blake2b")),
                     json_string_value(json_object_get(plain, "path")));
    }
    strvec_pushf(&lines, "%s  %s\n", hex, MANIFEST_NAME);
    for (i = 0; i < lines.n; i++)
        total += strlen(lines.v[i]);
    char *all = xmalloc(total + 1), *o = all;
    for (i = 0; i < lines.n; i++) {
        size_t n = strlen(lines.v[i]);
        memcpy(o, lines.v[i], n);
        o += n;
    }
    char *b2 = path_join(to, B2SUMS_NAME);
    rc = write_private(b2, all, total, err);
    free(b2);
    free(all);
    strvec_free(&lines);
    return rc;
}

static int unpack_set(const char *dir, const char *to, const struct crypto_key *key, bool move,
                      json_t **manifest, sc_err *err)
{
    json_t *m = NULL, *b2 = NULL;
    *manifest = NULL;
    int rc = set_verify(dir, err);
    if (rc == 0)
        rc = manifest_read(dir, &m, &b2, err);
    if (rc == 0 && manifest_encrypted(m) && key == NULL) {
        const char *id =
            json_string_value(json_object_get(json_object_get(m, "encryption"), "key_id"));
        rc = sc_fail(err, SC_EUSAGE,
                     "the set is encrypted (key id %s): give --identity FILE (or [staging] "
                     "identity)",
                     id ? id : "not recorded");
    }
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        if (rc != 0)
            break;
        int moved = move ? move_file(dir, to, f, err) : 1;
        rc = moved == 1 ? unpack_file(dir, to, f, key, err) : moved;
        if (rc != 0)
            break;
        if (sc_stop_requested)
            rc = sc_fail(err, SC_EINTR, "interrupted");
    }
    if (rc == 0)
        rc = write_descriptions(dir, to, m, err);
    if (rc == 0)
        rc = fs_fsync_dir(to, err);
    json_decref(b2);
    if (rc != 0) {
        json_decref(m);
        return rc;
    }
    *manifest = m;
    return 0;
}

int set_unpack(const char *dir, const char *to, const struct crypto_key *key, json_t **manifest,
               sc_err *err)
{
    return unpack_set(dir, to, key, false, manifest, err);
}

int set_unpack_fetched(const char *dir, const char *to, const struct crypto_key *key,
                       json_t **manifest, sc_err *err)
{
    return unpack_set(dir, to, key, true, manifest, err);
}
