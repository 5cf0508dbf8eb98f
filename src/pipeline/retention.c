#include "retention.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/fs.h"
#include "../core/log.h"
#include "../core/state.h"
#include "../restic/restic.h"
#include "../source/source.h"
#include "../stage/set.h"

/* What sources keep outside the sets (sqlite's page store) and no kept
 * set needs any more goes with the sets: {source name: what went}. A
 * failure is a warning: the sets are pruned, and the next run tries again. */
static json_t *upkeep_sources(struct ctx *c)
{
    json_t *out = json_object();
    for (size_t i = 0; i < c->cfg.nsources; i++) {
        const struct source_cfg *s = &c->cfg.sources[i];
        if (source_of(s)->upkeep == NULL)
            continue;
        json_t *r = json_object();
        sc_err e = {0};
        if (source_of(s)->upkeep(s, c->cfg.staging.dir, r, &e) != 0) {
            log_warn("%s %s: upkeep failed: %s", s->kind, s->name, e.msg);
            json_object_set_new(r, "error", json_string(e.msg));
        }
        if (json_object_size(r) > 0)
            json_object_set(out, s->name, r);
        json_decref(r);
    }
    return out;
}

int retention_prune_local_sets(struct ctx *c, sc_err *err)
{
    char **ids;
    size_t n;
    json_t *state;
    if (set_list(c->cfg.staging.dir, &ids, &n, err) != 0)
        return err->code;
    if (state_load(c->cfg.staging.dir, &state, err) != 0) {
        set_list_free(ids, n);
        return err->code;
    }
    size_t keep = (size_t)c->cfg.staging.keep;
    for (size_t i = 0; n > keep && i < n - keep; i++) {
        /* A set not shipped yet is the only copy of that backup: keep it. */
        if (state_set_snapshot(state, ids[i]) == NULL)
            continue;
        char *sets = path_join(c->cfg.staging.dir, "sets");
        char *dir = path_join(sets, ids[i]);
        log_info("removing local set %s (shipped, beyond keep = %zu)", ids[i], keep);
        if (fs_rm_rf(dir) != 0)
            log_warn("cannot remove %s", dir);
        free(dir);
        free(sets);
    }
    json_decref(state);
    set_list_free(ids, n);
    json_t *upkeep = upkeep_sources(c);
    if (c->report && json_object_size(upkeep) > 0)
        json_object_set(c->report, "upkeep", upkeep);
    json_decref(upkeep);
    return 0;
}

static json_t *policy_json(const struct config *cfg)
{
    json_t *p = json_object();
    const long v[] = {cfg->retention.keep_last,    cfg->retention.keep_hourly,
                      cfg->retention.keep_daily,   cfg->retention.keep_weekly,
                      cfg->retention.keep_monthly, cfg->retention.keep_yearly};
    static const char *const k[] = {"keep_last",   "keep_hourly",  "keep_daily",
                                    "keep_weekly", "keep_monthly", "keep_yearly"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] > 0)
            json_object_set_new(p, k[i], json_integer(v[i]));
    if (cfg->retention.keep_within)
        json_object_set_new(p, "keep_within", json_string(cfg->retention.keep_within));
    return p;
}

/* The set a snapshot was made from (its set-<id> tag), or NULL. */
static const char *set_of(json_t *snap)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(snap, "tags"), i, t)
    {
        const char *s = json_string_value(t);
        if (s && strncmp(s, "set-", 4) == 0)
            return s + 4;
    }
    return NULL;
}

static json_t *snapshot_brief(json_t *snap)
{
    return json_pack("{s:O?, s:O?, s:O?, s:s?}", "id", json_object_get(snap, "id"), "short_id",
                     json_object_get(snap, "short_id"), "time", json_object_get(snap, "time"),
                     "set", set_of(snap));
}

/* forget, then prune when something was forgotten or an earlier prune did
 * not finish. The pending prune is written down before it starts. */
static int forget_remote(struct ctx *c, json_t *state, bool dry_run, json_t *out, sc_err *err)
{
    struct restic r;
    struct restic_forget_result f = {0};
    json_t *ret = state_section(state, "retention");
    int rc = restic_open_reported(&r, &c->cfg, c->report, err);
    if (rc == 0)
        rc = restic_forget(&r, dry_run, &f, err);
    if (rc == 0) {
        json_t *removed = json_array(), *kept = json_array();
        size_t i;
        json_t *s;
        json_array_foreach(f.remove, i, s) json_array_append_new(removed, snapshot_brief(s));
        json_array_foreach(f.keep, i, s) json_array_append(kept, json_object_get(s, "id"));
        json_object_set_new(out, dry_run ? "would_remove" : "removed", removed);
        json_object_set_new(out, "kept", kept);
        log_info("retention: %s %zu snapshot%s, %zu kept", dry_run ? "would forget" : "forgot",
                 json_array_size(f.remove), json_array_size(f.remove) == 1 ? "" : "s",
                 json_array_size(f.keep));
        if (!dry_run)
            state_note_snapshots(state, json_array_size(f.keep));
    }
    bool prune =
        rc == 0 && !dry_run &&
        (json_array_size(f.remove) > 0 || json_is_true(json_object_get(ret, "prune_pending")));
    if (prune) {
        json_object_set_new(ret, "prune_pending", json_true());
        rc = state_save(c->cfg.staging.dir, state, err);
    }
    if (prune && rc == 0) {
        log_info("pruning data no snapshot needs any more");
        rc = restic_prune(&r, err);
        if (rc == 0)
            json_object_set_new(ret, "prune_pending", json_false());
    }
    json_object_set_new(out, "pruned", json_boolean(prune && rc == 0));
    restic_forget_result_free(&f);
    restic_close(&r);
    return rc;
}

/* Local sets beyond [staging] keep, never one that is not shipped (the
 * rule lives in retention_prune_local_sets); reports which went. */
static int prune_local(struct ctx *c, bool dry_run, json_t *out, sc_err *err)
{
    char **before, **after;
    size_t nb, na;
    if (set_list(c->cfg.staging.dir, &before, &nb, err) != 0)
        return err->code;
    int rc = 0;
    json_t *gone = json_array();
    if (dry_run) {
        json_t *state = NULL;
        rc = state_load(c->cfg.staging.dir, &state, err);
        size_t keep = (size_t)c->cfg.staging.keep;
        for (size_t i = 0; rc == 0 && nb > keep && i < nb - keep; i++)
            if (state_set_snapshot(state, before[i]) != NULL)
                json_array_append_new(gone, json_string(before[i]));
        json_decref(state);
    } else {
        rc = retention_prune_local_sets(c, err);
        if (rc == 0 && set_list(c->cfg.staging.dir, &after, &na, err) == 0) {
            for (size_t i = 0, j = 0; i < nb; i++) {
                while (j < na && strcmp(after[j], before[i]) < 0)
                    j++;
                if (j >= na || strcmp(after[j], before[i]) != 0)
                    json_array_append_new(gone, json_string(before[i]));
            }
            set_list_free(after, na);
        } else if (rc == 0) {
            rc = err->code;
        }
    }
    json_object_set_new(out, dry_run ? "local_sets_would_remove" : "local_sets_removed", gone);
    set_list_free(before, nb);
    return rc;
}

int retention_run(struct ctx *c, bool dry_run, json_t **out, sc_err *err)
{
    *out = json_object();
    json_t *state;
    if (state_load(c->cfg.staging.dir, &state, err) != 0)
        return err->code;
    struct strvec probe = {0};
    bool policy = restic_retention_args(&c->cfg, &probe);
    strvec_free(&probe);
    json_object_set_new(*out, "policy", policy_json(&c->cfg));
    int rc = 0;
    if (policy) {
        rc = forget_remote(c, state, dry_run, *out, err);
    } else {
        json_object_set_new(*out, "skipped", json_string("no keep_* set in [retention]"));
        log_debug("retention: no keep_* set in [retention]; no snapshot is forgotten");
    }
    if (!dry_run) {
        char now[32];
        utc_timestamp(now, sizeof now);
        json_t *ret = state_section(state, "retention");
        json_object_set_new(ret, "last",
                            json_pack("{s:s, s:s, s:s?}", "finished", now, "status",
                                      rc == 0 ? "success" : "failure", "error",
                                      rc == 0 ? NULL : err->msg));
        sc_err save_err = {0};
        if (state_save(c->cfg.staging.dir, state, &save_err) != 0 && rc == 0)
            rc = sc_fail(err, save_err.code, "%s", save_err.msg);
    }
    json_decref(state);
    if (rc == 0)
        rc = prune_local(c, dry_run, *out, err);
    json_object_set_new(*out, "status", json_string(rc == 0 ? "success" : "failure"));
    return rc;
}

/* The promise for the forget command: the newest snapshot under retention
 * was verified by this stagecoach. No snapshot at all is fine. */
int retention_newest_verified(struct ctx *c, sc_err *err)
{
    struct restic r;
    json_t *list = NULL, *state = NULL;
    int rc = restic_open_reported(&r, &c->cfg, c->report, err);
    if (rc == 0)
        rc = restic_own_snapshots(&r, &list, err);
    if (rc == 0)
        rc = state_load(c->cfg.staging.dir, &state, err);
    json_t *newest = NULL, *s;
    size_t i;
    json_array_foreach(list, i, s)
    {
        if (newest == NULL || restic_snapshot_newer(s, newest))
            newest = s;
    }
    const char *id = json_string_value(json_object_get(newest, "id"));
    bool verified = false;
    const char *set;
    json_t *entry;
    json_object_foreach(json_object_get(state, "sets"), set, entry)
    {
        const char *snap = json_string_value(json_object_get(entry, "snapshot"));
        if (id && snap && strcmp(snap, id) == 0)
            verified = true;
    }
    if (rc == 0 && newest != NULL && !verified)
        rc = sc_fail(err, SC_EVERIFY,
                     "the newest snapshot, %.8s, was not verified by this stagecoach (state.json "
                     "knows no set shipped as it): retention waits for a verified ship "
                     "(`stagecoach run`)",
                     id ? id : "?");
    json_decref(list);
    json_decref(state);
    restic_close(&r);
    return rc;
}
