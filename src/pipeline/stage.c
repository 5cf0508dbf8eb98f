#include "stage.h"

#include <stdlib.h>

#include "../core/log.h"
#include "../core/spawn.h"
#include "../source/source.h"
#include "../stage/crypto.h"
#include "../stage/set.h"

static int stage_sources(struct ctx *c, struct set *set, sc_err *err)
{
    for (size_t i = 0; i < c->cfg.nsources; i++) {
        const struct source_cfg *src = &c->cfg.sources[i];
        if (sc_stop_requested)
            return sc_fail(err, SC_EINTR, "interrupted; the partial set was removed");
        log_info("staging %s %s", src->kind, src->name);
        json_t *entry = set_begin_source(set, src->name, src->kind);
        int rc = source_of(src)->stage(src, set, entry, err);
        if (rc == 0 && sc_stop_requested)
            rc = sc_fail(err, SC_EINTR, "interrupted; the partial set was removed");
        if (rc != 0)
            return rc;
    }
    return 0;
}

int stage_new_set(struct ctx *c, char **set_id, sc_err *err)
{
    *set_id = NULL;
    if (staging_prepare(c->cfg.staging.dir, err) != 0)
        return err->code;
    /* [staging] encrypt: the key is read before anything is written. */
    struct crypto_key *key = NULL;
    if (crypto_staging_key(&c->cfg, &key, err) != 0)
        return err->code;
    struct set set;
    if (set_create(&set, c->cfg.staging.dir, err) != 0) {
        crypto_key_free(key);
        set_discard(&set);
        return err->code;
    }
    set_use_key(&set, key);
    int rc = stage_sources(c, &set, err);
    if (rc == 0)
        rc = set_publish(&set, err);
    if (rc == 0 && sc_stop_requested)
        log_warn("interrupted after set %s was published; it is complete", set.id);
    if (rc == 0) {
        *set_id = xstrdup(set.id);
        if (c->report) {
            json_object_set_new(c->report, "set", json_string(set.id));
            json_object_set_new(c->report, "set_path", json_string(set.finaldir));
            json_object_set(c->report, "manifest", set.manifest);
        }
        log_info("staged set %s", set.finaldir);
    }
    set_discard(&set);
    return rc;
}
