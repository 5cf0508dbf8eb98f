/* forget: retention, in the repository ([retention] keep_*) and on local
 * disk ([staging] keep), only after a verified ship (design §2).
 *
 * `run` and `ship` call do_retention right after they verified the new
 * snapshot. The forget command checks the same promise first: the newest
 * snapshot under retention must be one this stagecoach verified (state.json
 * sets). Otherwise a snapshot that failed verification would count as one
 * of the "last N" and push a good one out.
 *
 * state.json "retention": {"last": {finished, status, removed, kept,
 * error}, "prune_pending": bool}; "repository": {"snapshots", "counted"}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/lock.h"
#include "../core/log.h"
#include "../core/state.h"
#include "../restic/restic.h"
#include "../stage/set.h"
#include "cmd.h"

/* The object under key in state (created when missing; borrowed). */
static json_t *state_section(json_t *state, const char *key)
{
    json_t *o = json_object_get(state, key);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(state, key, o);
    }
    return o;
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

/* Remember what the repository holds now, for status and metrics. */
static void note_snapshot_count(json_t *state, size_t n)
{
    char now[32];
    utc_timestamp(now, sizeof now);
    json_object_set_new(state, "repository",
                        json_pack("{s:I, s:s}", "snapshots", (json_int_t)n, "counted", now));
}

/* forget, then prune when something was forgotten or an earlier prune did
 * not finish. The pending prune is written down before it starts. */
static int forget_remote(struct ctx *c, json_t *state, bool dry_run, json_t *out, sc_err *err)
{
    struct restic r;
    struct restic_forget_result f = {0};
    json_t *ret = state_section(state, "retention");
    int rc = restic_open(&r, &c->cfg, err);
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
            note_snapshot_count(state, json_array_size(f.keep));
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
 * rule lives in prune_local_sets); reports which went. */
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
        rc = prune_local_sets(c, err);
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

int do_retention(struct ctx *c, bool dry_run, json_t **out, sc_err *err)
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
static int newest_is_verified(struct ctx *c, sc_err *err)
{
    struct restic r;
    json_t *list = NULL, *state = NULL;
    int rc = restic_open(&r, &c->cfg, err);
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

/* For people: one line per snapshot and local set that went (or would),
 * then the count. */
static void print_result(json_t *result, bool dry_run)
{
    json_t *removed = json_object_get(result, dry_run ? "would_remove" : "removed");
    json_t *sets =
        json_object_get(result, dry_run ? "local_sets_would_remove" : "local_sets_removed");
    const char *verb = dry_run ? "would forget" : "forgot";
    size_t i;
    json_t *s;
    json_array_foreach(removed, i, s)
    {
        const char *set = json_string_value(json_object_get(s, "set"));
        printf("%s snapshot %s%s%s\n", verb, json_string_value(json_object_get(s, "id")),
               set ? " of set " : "", set ? set : "");
    }
    json_array_foreach(sets, i, s)
        printf("%s local set %s\n", dry_run ? "would remove" : "removed", json_string_value(s));
    if (json_is_string(json_object_get(result, "skipped")))
        printf("repository: %s\n", json_string_value(json_object_get(result, "skipped")));
    else
        printf("repository: %zu snapshot%s %s, %zu kept\n", json_array_size(removed),
               json_array_size(removed) == 1 ? "" : "s",
               dry_run ? "would be forgotten" : "forgotten",
               json_array_size(json_object_get(result, "kept")));
}

int cmd_forget(struct ctx *c, int argc, char **argv, sc_err *err)
{
    if (cmd_parse_opts(argc, argv, NULL, err) != 0)
        return err->code;
    int fd = -1;
    if (!c->dry_run && cmd_lock(c, &fd, err) != 0)
        return err->code;
    int rc = c->dry_run ? 0 : newest_is_verified(c, err);
    json_t *result = NULL;
    if (rc == 0)
        rc = do_retention(c, c->dry_run, &result, err);
    if (c->report && result)
        json_object_set(c->report, "retention", result);
    else if (result && !c->json)
        print_result(result, c->dry_run);
    json_decref(result);
    if (!c->dry_run) {
        write_metrics(c);
        lock_release(fd);
    }
    return rc;
}
