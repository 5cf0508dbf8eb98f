#include "ship.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/fs.h"
#include "../core/log.h"
#include "../core/report.h"
#include "../core/spawn.h"
#include "../core/state.h"
#include "../restic/restic.h"
#include "../stage/manifest.h"
#include "../stage/set.h"
#include "check.h"
#include "record.h"
#include "retention.h"

static bool has_tag(json_t *snap, const char *tag)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(snap, "tags"), i, t)
    {
        if (json_is_string(t) && strcmp(json_string_value(t), tag) == 0)
            return true;
    }
    return false;
}

/* Every file of the set is in the snapshot with the size the manifest says. */
static int check_listing(json_t *nodes, const char *setdir, json_t *manifest, sc_err *err)
{
    json_t *sizes = json_object();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *type = json_string_value(json_object_get(n, "type"));
        const char *path = json_string_value(json_object_get(n, "path"));
        if (type && path && strcmp(type, "file") == 0)
            json_object_set(sizes, path, json_object_get(n, "size"));
    }
    int rc = 0;
    json_t *f;
    json_array_foreach(json_object_get(manifest, "files"), i, f)
    {
        const char *rel = json_string_value(json_object_get(f, "path"));
        char *abs = path_join(setdir, rel);
        json_t *size = json_object_get(sizes, abs);
        json_int_t want = json_integer_value(json_object_get(f, "bytes"));
        if (size == NULL)
            rc = sc_fail(err, SC_EVERIFY, "snapshot is missing %s", rel);
        else if (json_integer_value(size) != want)
            rc = sc_fail(err, SC_EVERIFY, "snapshot has %s with %lld bytes, manifest says %lld",
                         rel, (long long)json_integer_value(size), (long long)want);
        free(abs);
        if (rc != 0)
            break;
    }
    static const char *const fixed[] = {MANIFEST_NAME, B2SUMS_NAME};
    for (size_t k = 0; rc == 0 && k < 2; k++) {
        char *abs = path_join(setdir, fixed[k]);
        if (json_object_get(sizes, abs) == NULL)
            rc = sc_fail(err, SC_EVERIFY, "snapshot is missing %s", fixed[k]);
        free(abs);
    }
    json_decref(sizes);
    return rc;
}

/* B2SUMS read back from the repository equals the local one, byte for byte. */
static int check_b2sums(struct restic *r, const char *snap, const char *setdir, sc_err *err)
{
    char *local_path = path_join(setdir, B2SUMS_NAME);
    char *local = NULL, *remote = NULL;
    size_t llen = 0, rlen = 0;
    int rc = fs_read_file(local_path, 64u << 20, &local, &llen, SC_ESTAGING, err);
    if (rc == 0)
        rc = restic_dump(r, snap, local_path, 64u << 20, &remote, &rlen, err);
    if (rc == 0 && (llen != rlen || memcmp(local, remote, llen) != 0))
        rc = sc_fail(err, SC_EVERIFY, "B2SUMS in snapshot %.8s differs from %s", snap, local_path);
    free(local);
    free(remote);
    free(local_path);
    return rc;
}

static int verify_snapshot(struct restic *r, const struct restic_backup_result *b,
                           const char *set_id, const char *setdir, sc_err *err)
{
    json_t *snap = NULL, *nodes = NULL, *manifest = NULL, *b2 = NULL;
    char tag[64];
    snprintf(tag, sizeof tag, "set-%s", set_id);
    int rc = restic_find_snapshot(r, b->snapshot_id, &snap, err);
    if (rc == 0 && (!has_tag(snap, "stagecoach") || !has_tag(snap, tag)))
        rc = sc_fail(err, SC_EVERIFY, "snapshot %.8s lacks its tags (stagecoach, %s)",
                     b->snapshot_id, tag);
    const char *host = rc == 0 ? json_string_value(json_object_get(snap, "hostname")) : NULL;
    if (rc == 0 && r->cfg->restic.host && (host == NULL || strcmp(host, r->cfg->restic.host) != 0))
        rc = sc_fail(err, SC_EVERIFY, "snapshot %.8s has host %s, expected %s", b->snapshot_id,
                     host ? host : "(none)", r->cfg->restic.host);
    if (rc == 0)
        rc = manifest_read(setdir, &manifest, &b2, err);
    if (rc == 0)
        rc = restic_ls(r, b->snapshot_id, &nodes, err);
    if (rc == 0)
        rc = check_listing(nodes, setdir, manifest, err);
    if (rc == 0)
        rc = check_b2sums(r, b->snapshot_id, setdir, err);
    json_decref(snap);
    json_decref(nodes);
    json_decref(manifest);
    json_decref(b2);
    return rc;
}

static json_t *backup_json(const char *set_id, const struct restic_backup_result *b)
{
    return json_pack("{s:s, s:{s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:b}}", "set", set_id, "snapshot",
                     "id", b->snapshot_id, "short_id", b->short_id, "data_added",
                     (json_int_t)b->data_added, "files_new", (json_int_t)b->files_new,
                     "files_changed", (json_int_t)b->files_changed, "total_bytes_processed",
                     (json_int_t)b->total_bytes_processed, "duration_s", b->duration_s, "verified",
                     1);
}

int ship_set(struct ctx *c, const char *set_id, json_t **shipped, sc_err *err)
{
    *shipped = NULL;
    char *rel_dir = NULL;
    if (set_resolve(c->cfg.staging.dir, set_id, &rel_dir, NULL, err) != 0)
        return err->code;
    /* restic records the absolute path it was given; make it canonical. */
    char setdir[PATH_MAX];
    if (realpath(rel_dir, setdir) == NULL) {
        int rc = sc_fail_errno(err, SC_ESTAGING, "cannot resolve %s", rel_dir);
        free(rel_dir);
        return rc;
    }
    free(rel_dir);
    struct restic r;
    struct restic_backup_result b;
    memset(&b, 0, sizeof b);
    memset(&r, 0, sizeof r);
    json_t *state = NULL;
    /* A set damaged on the staging disk since it was staged must not ship
     * as "verified": the snapshot checks compare against these files. */
    int rc = set_verify(setdir, err);
    if (rc == 0)
        rc = restic_open_reported(&r, &c->cfg, c->report, err);
    if (rc == 0)
        rc = restic_ensure_repo(&r, c->cfg.restic.init, err);
    if (rc == 0) {
        log_info("shipping set %s with restic %d.%d.%d", set_id, r.major, r.minor, r.patch);
        rc = restic_backup(&r, setdir, set_id, &b, err);
    }
    if (rc == 0) {
        log_info("snapshot %s: %llu bytes added; verifying", b.short_id,
                 (unsigned long long)b.data_added);
        rc = verify_snapshot(&r, &b, set_id, setdir, err);
    }
    if (rc == 0)
        rc = state_load(c->cfg.staging.dir, &state, err);
    if (rc == 0) {
        state_set_shipped(state, set_id, b.snapshot_id);
        rc = state_save(c->cfg.staging.dir, state, err);
    }
    if (rc == 0) {
        log_info("snapshot %s verified", b.short_id);
        *shipped = backup_json(set_id, &b);
    }
    json_decref(state);
    restic_close(&r);
    return rc;
}

int ship_one(struct ctx *c, const char *set_id, sc_err *err)
{
    json_t *shipped = NULL;
    int rc = ship_set(c, set_id, &shipped, err);
    if (rc != 0)
        return rc;
    json_t *snap = json_object_get(shipped, "snapshot");
    const char *id = json_string_value(json_object_get(snap, "id"));
    snprintf(c->snapshot, sizeof c->snapshot, "%s", id);
    if (c->report) {
        json_object_set(c->report, "set", json_object_get(shipped, "set"));
        json_object_set(c->report, "snapshot", snap);
    }
    if (c->shipped)
        json_array_append(c->shipped, shipped);
    if (!c->json)
        printf("snapshot %s\n", id);
    json_decref(shipped);
    return 0;
}

int ship_pending(struct ctx *c, const char *newest, sc_err *err)
{
    char **ids;
    size_t n;
    json_t *state = NULL;
    if (set_list(c->cfg.staging.dir, &ids, &n, err) != 0)
        return err->code;
    int rc = state_load(c->cfg.staging.dir, &state, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        /* Set ids are UTC times: older sorts first. */
        if (strcmp(ids[i], newest) >= 0 || state_set_snapshot(state, ids[i]) != NULL)
            continue;
        if (sc_stop_requested) {
            rc = sc_fail(err, SC_EINTR, "interrupted before shipping set %s", ids[i]);
            break;
        }
        log_info("set %s was staged but never shipped: shipping it now", ids[i]);
        json_t *shipped = NULL;
        rc = ship_set(c, ids[i], &shipped, err);
        if (rc == 0 && c->shipped)
            json_array_append(c->shipped, shipped);
        json_decref(shipped);
    }
    json_decref(state);
    set_list_free(ids, n);
    return rc;
}

int ship_after(struct ctx *c, sc_err *err)
{
    json_t *retention = NULL, *check = NULL;
    int rc = retention_run(c, false, &retention, err);
    report_set(c->report, "retention", retention);
    if (rc == 0) {
        rc = check_run(c, true, &check, err);
        report_set(c->report, "check", check);
    }
    struct strvec probe = {0};
    bool policy = restic_retention_args(&c->cfg, &probe);
    strvec_free(&probe);
    if (rc == 0 && !policy && c->cfg.run.metrics_file)
        record_snapshot_count(c);
    return rc;
}
