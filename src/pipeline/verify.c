#include "verify.h"

#include <stdio.h>
#include <stdlib.h>

#include "../core/log.h"
#include "../stage/crypto.h"
#include "../stage/manifest.h"
#include "../stage/set.h"
#include "fetch.h"

/* The stored files are verified; now the plaintext, when there is a key. */
static int verify_plaintext(struct ctx *c, const struct verify_opts *o, const char *dir,
                            bool *checked, sc_err *err)
{
    json_t *m, *b2;
    *checked = false;
    if (manifest_read(dir, &m, &b2, err) != 0)
        return err->code;
    bool encrypted = manifest_encrypted(m);
    json_decref(m);
    json_decref(b2);
    if (!encrypted)
        return 0;
    struct crypto_key *key = NULL;
    int rc = fetch_reading_key(c, o->identity, o->passphrase_file, &key, err);
    if (rc == 0 && key == NULL)
        log_info("the set is encrypted: its plaintext was not checked (give --identity FILE)");
    if (rc == 0 && key != NULL) {
        rc = set_verify_plaintext(dir, key, err);
        *checked = rc == 0;
    }
    crypto_key_free(key);
    return rc;
}

/* Stored files, then plaintext: the one verification of a set in dir. */
static int verify_dir(struct ctx *c, const struct verify_opts *o, const char *dir, sc_err *err)
{
    bool checked = false;
    int rc = set_verify(dir, err);
    if (rc == 0)
        rc = verify_plaintext(c, o, dir, &checked, err);
    if (c->report)
        json_object_set_new(c->report, "plaintext_checked", json_boolean(checked));
    return rc;
}

int verify_local_set(struct ctx *c, const struct verify_opts *o, sc_err *err)
{
    char *dir = NULL, *id = NULL;
    int rc = set_resolve(c->cfg.staging.dir, o->set ? o->set : "latest", &dir, &id, err);
    if (rc == 0)
        rc = verify_dir(c, o, dir, err);
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

/* A snapshot's sources stored in another shape (sqlite layout = pages) are
 * rebuilt in its scratch copy and checked. An encrypted set's are not:
 * layout = pages does not encrypt yet. */
static int unpack_fetched(const char *dir, sc_err *err)
{
    json_t *m, *b2;
    if (manifest_read(dir, &m, &b2, err) != 0)
        return err->code;
    int rc = manifest_encrypted(m) ? 0 : fetch_unpack_sources(dir, m, err);
    json_decref(m);
    json_decref(b2);
    return rc;
}

int verify_remote_snapshot(struct ctx *c, const struct verify_opts *o, sc_err *err)
{
    struct fetched f;
    /* Private scratch space beside the sets: same disk, 0700, and removed
     * at start-up should a crash leave it. */
    int rc = fetch_snapshot(c, o->snapshot, c->cfg.staging.dir, ".verify-", &f, err);
    if (rc == 0)
        rc = verify_dir(c, o, f.setdir, err);
    if (rc == 0)
        rc = unpack_fetched(f.setdir, err);
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
