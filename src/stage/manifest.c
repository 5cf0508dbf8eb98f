#include "manifest.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fs.h"
#include "../core/log.h"
#include "../core/xalloc.h"
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
        if (p == NULL || !manifest_path_ok(p) || h == NULL || !is_hex128(h) ||
            !json_is_integer(b) || json_integer_value(b) < 0)
            rc = sc_fail(err, SC_EVERIFY, "MANIFEST.json: file entry %zu is malformed", i);
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
    if (!fs_exists(path))
        rc = sc_fail(err, SC_EVERIFY, "%s: missing", rel);
    else if (hash_file(path, hex, &got, &e) != 0)
        rc = sc_fail(err, SC_EVERIFY, "%s: %s", rel, e.msg);
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
