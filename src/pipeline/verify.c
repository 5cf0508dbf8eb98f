#include "verify.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "../core/log.h"
#include "../stage/crypto.h"
#include "../stage/manifest.h"
#include "../stage/set.h"
#include "fetch.h"

/* A set with a source stored in another shape (sqlite layout = pages) is
 * rebuilt and the result checked, into private scratch space beside the
 * sets (0700, removed after; the set itself is never written). A plain set
 * is rebuilt straight from its own files (m, its verified manifest), so
 * the scratch space holds only the rebuilt database; an encrypted one is
 * unpacked with the key first, which checks every plaintext on the way. */
static int rebuild_in_scratch(struct ctx *c, const char *dir, json_t *m,
                              const struct crypto_key *key, sc_err *err)
{
    char *scratch = NULL;
    int fd = -1;
    json_t *plain = NULL;
    int rc = scratch_create(c->cfg.staging.dir, ".verify-", &scratch, &fd, err);
    if (rc == 0 && key == NULL)
        rc = fetch_unpack_sources(dir, scratch, m, err);
    else if (rc == 0 && (rc = set_unpack(dir, scratch, key, &plain, err)) == 0)
        rc = fetch_unpack_sources(scratch, scratch, plain, err);
    json_decref(plain);
    if (scratch != NULL)
        scratch_remove(scratch, fd);
    free(scratch);
    return rc;
}

/* The stored files are verified; now the plaintext, when there is a key,
 * and what a source stores in another shape. in_place: dir is a scratch
 * copy of the set (a fetched snapshot) that may be rebuilt where it is. */
static int verify_contents(struct ctx *c, const struct verify_opts *o, const char *dir,
                           bool in_place, bool *checked, sc_err *err)
{
    json_t *m, *b2;
    *checked = false;
    if (manifest_read(dir, &m, &b2, err) != 0)
        return err->code;
    bool encrypted = manifest_encrypted(m), reshaped = fetch_needs_unpack(m);
    struct crypto_key *key = NULL;
    int rc = encrypted ? fetch_reading_key(c, o->identity, o->passphrase_file, &key, err) : 0;
    if (rc == 0 && encrypted && key == NULL) {
        log_info("the set is encrypted: its plaintext was not checked (give --identity FILE)");
    } else if (rc == 0 && reshaped && in_place && !encrypted) {
        rc = fetch_unpack_sources(dir, dir, m, err);
    } else if (rc == 0 && reshaped) {
        rc = rebuild_in_scratch(c, dir, m, key, err);
        *checked = rc == 0 && encrypted;
    } else if (rc == 0 && encrypted) {
        rc = set_verify_plaintext(dir, key, err);
        *checked = rc == 0;
    }
    crypto_key_free(key);
    json_decref(m);
    json_decref(b2);
    return rc;
}

/* Stored files, then plaintext: the one verification of a set in dir. */
static int verify_dir(struct ctx *c, const struct verify_opts *o, const char *dir, bool in_place,
                      sc_err *err)
{
    bool checked = false;
    int rc = set_verify(dir, err);
    if (rc == 0)
        rc = verify_contents(c, o, dir, in_place, &checked, err);
    if (c->report)
        json_object_set_new(c->report, "plaintext_checked", json_boolean(checked));
    return rc;
}

int verify_local_set(struct ctx *c, const struct verify_opts *o, sc_err *err)
{
    char *dir = NULL, *id = NULL;
    int rc = set_resolve(c->cfg.staging.dir, o->set ? o->set : "latest", &dir, &id, err);
    if (rc == 0)
        rc = verify_dir(c, o, dir, false, err);
    if (rc == 0) {
        log_info("set %s verified", id);
        if (!c->json)
            printf("set %s: ok\n", id);
    }
    if (c->report && id)
        json_object_set_new(c->report, "set", json_string(id));
    free(dir);
    free(id);
    return rc;
}

int verify_remote_snapshot(struct ctx *c, const struct verify_opts *o, sc_err *err)
{
    struct fetched f;
    /* Private scratch space beside the sets: same disk, 0700, and removed
     * at start-up should a crash leave it. */
    int rc = fetch_snapshot(c, o->snapshot, c->cfg.staging.dir, ".verify-", &f, err);
    if (rc == 0)
        rc = verify_dir(c, o, f.setdir, true, err);
    if (rc == 0) {
        log_info("snapshot %.8s verified", f.snapshot);
        if (!c->json)
            printf("snapshot %.8s: ok\n", f.snapshot);
    }
    if (c->report && f.snapshot[0])
        json_object_set_new(c->report, "snapshot", json_string(f.snapshot));
    fetched_free(&f);
    return rc;
}
