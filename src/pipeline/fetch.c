#include "fetch.h"

#include <stdlib.h>
#include <string.h>

#include "../core/fs.h"
#include "../core/log.h"
#include "../restic/restic.h"
#include "../source/source.h"
#include "../stage/crypto.h"
#include "../stage/manifest.h"
#include "../stage/set.h"

int fetch_reading_key(struct ctx *c, const char *identity, const char *passphrase_file,
                      struct crypto_key **key, sc_err *err)
{
    *key = NULL;
    const struct config *cfg = &c->cfg;
    const char *pass = passphrase_file ? passphrase_file : cfg->staging.passphrase_file;
    if (identity != NULL)
        return crypto_load_identity(identity, pass, key, err);
    if (cfg->staging.identity != NULL)
        return crypto_load_identity(cfg->staging.identity, pass, key, err);
    if (cfg->staging.key_file != NULL)
        return crypto_load_symmetric(cfg->staging.key_file, key, err);
    return 0;
}

int fetch_set_key(struct ctx *c, const char *setdir, const char *identity,
                  const char *passphrase_file, struct crypto_key **key, sc_err *err)
{
    json_t *m, *b2;
    *key = NULL;
    if (manifest_read(setdir, &m, &b2, err) != 0)
        return err->code;
    int rc = 0;
    if (manifest_encrypted(m))
        rc = fetch_reading_key(c, identity, passphrase_file, key, err);
    json_decref(m);
    json_decref(b2);
    return rc;
}

int fetch_snapshot(struct ctx *c, const char *which, const char *parent, const char *prefix,
                   struct fetched *f, sc_err *err)
{
    memset(f, 0, sizeof *f);
    f->scratch_fd = -1;
    struct restic r;
    json_t *snap = NULL;
    int rc = restic_open_reported(&r, &c->cfg, c->report, err);
    if (rc == 0)
        rc = restic_find_snapshot(&r, which, &snap, err);
    const char *id = rc == 0 ? json_string_value(json_object_get(snap, "id")) : NULL;
    json_t *paths = rc == 0 ? json_object_get(snap, "paths") : NULL;
    const char *setpath = json_string_value(json_array_get(paths, 0));
    if (rc == 0 && (id == NULL || strlen(id) >= sizeof f->snapshot || setpath == NULL ||
                    json_array_size(paths) != 1))
        rc = sc_fail(err, SC_EVERIFY, "snapshot %s is not a stagecoach set", which);
    if (rc == 0)
        rc = scratch_create(parent, prefix, &f->scratch, &f->scratch_fd, err);
    if (rc == 0) {
        snprintf(f->snapshot, sizeof f->snapshot, "%s", id);
        log_info("restoring snapshot %.8s into %s", id, f->scratch);
        rc = restic_restore(&r, id, f->scratch, err);
    }
    if (rc == 0)
        f->setdir = path_join(f->scratch, setpath);
    if (rc == 0 && !fs_exists(f->setdir))
        rc = sc_fail(err, SC_EVERIFY, "snapshot %.8s does not hold %s", id, setpath);
    json_decref(snap);
    restic_close(&r);
    return rc;
}

void fetched_free(struct fetched *f)
{
    if (f->scratch != NULL)
        scratch_remove(f->scratch, f->scratch_fd);
    free(f->scratch);
    free(f->setdir);
    memset(f, 0, sizeof *f);
    f->scratch_fd = -1;
}

int fetch_unpack_sources(const char *dir, const char *into, json_t *manifest, sc_err *err)
{
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(manifest, "sources"), i, entry)
    {
        const char *kind = json_string_value(json_object_get(entry, "kind"));
        const struct source_ops *ops = kind ? source_find(kind) : NULL;
        if (ops != NULL && ops->unpack != NULL && ops->unpack(dir, into, entry, err) != 0)
            return err->code;
    }
    return 0;
}

bool fetch_needs_unpack(json_t *manifest)
{
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(manifest, "sources"), i, entry)
    {
        const char *layout = json_string_value(json_object_get(entry, "layout"));
        if (layout != NULL && strcmp(layout, "file") != 0)
            return true;
    }
    return false;
}
