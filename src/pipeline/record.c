#include "record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/log.h"
#include "../core/metrics.h"
#include "../core/state.h"
#include "../restic/restic.h"
#include "../stage/manifest.h"
#include "../stage/set.h"
#include "check.h"

void record_run(struct ctx *c, const char *command, const char *started, const char *set_id, int rc,
                const sc_err *err)
{
    sc_err e = {0};
    json_t *state;
    if (state_load(c->cfg.staging.dir, &state, &e) != 0) {
        log_warn("cannot record the run: %s", e.msg);
        return;
    }
    char finished[32];
    utc_timestamp(finished, sizeof finished);
    json_object_set_new(state, "last_run",
                        json_pack("{s:s, s:s, s:s, s:s, s:i, s:s?, s:s?}", "command", command,
                                  "started", started, "finished", finished, "status",
                                  rc == 0 ? "success" : "failure", "exit_code", rc, "error",
                                  rc ? err->msg : NULL, "set", set_id));
    if (rc == 0)
        json_object_set_new(state, "last_success", json_string(finished));
    if (state_save(c->cfg.staging.dir, state, &e) != 0)
        log_warn("cannot record the run: %s", e.msg);
    json_decref(state);
}

/* Without a retention policy nothing counts the snapshots on the way; do it
 * when the metrics file wants the number. */
void record_snapshot_count(struct ctx *c)
{
    struct restic r;
    json_t *list = NULL, *state = NULL;
    sc_err e = {0};
    int rc = restic_open(&r, &c->cfg, &e);
    if (rc == 0)
        rc = restic_own_snapshots(&r, &list, &e);
    if (rc == 0)
        rc = state_load(c->cfg.staging.dir, &state, &e);
    if (rc == 0) {
        state_note_snapshots(state, json_array_size(list));
        rc = state_save(c->cfg.staging.dir, state, &e);
    }
    if (rc != 0)
        log_warn("cannot count the snapshots: %s", e.msg);
    json_decref(list);
    json_decref(state);
    restic_close(&r);
}

/* Per source of the set: name, kind, bytes and files from the manifest,
 * rows where the source counted them. */
static json_t *source_stats(json_t *manifest)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *src, *f;
    json_array_foreach(json_object_get(manifest, "sources"), i, src)
    {
        const char *name = json_string_value(json_object_get(src, "name"));
        if (name == NULL)
            continue;
        json_int_t bytes = 0, files = 0;
        json_array_foreach(json_object_get(manifest, "files"), j, f)
        {
            const char *owner = json_string_value(json_object_get(f, "source"));
            if (owner && strcmp(owner, name) == 0) {
                bytes += json_integer_value(json_object_get(f, "bytes"));
                files++;
            }
        }
        json_t *s = json_pack("{s:s, s:O?, s:I, s:I}", "name", name, "kind",
                              json_object_get(src, "kind"), "bytes", bytes, "files", files);
        json_t *rows = json_object_get(src, "rows_total");
        if (json_is_integer(rows))
            json_object_set(s, "rows", rows);
        /* How long a SQLite copy held writers, and how it was made: doctor
         * predicts the next wait from them (src/source/sqlite/doctor.c). */
        json_t *lock_ms = json_object_get(src, "lock_ms");
        json_t *method = json_object_get(src, "copy_method");
        if (json_is_integer(lock_ms) && json_is_string(method)) {
            json_object_set(s, "lock_ms", lock_ms);
            json_object_set(s, "copy_method", method);
        }
        json_array_append_new(out, s);
    }
    return out;
}

void record_run_stats(struct ctx *c, const char *set_id, double duration_s)
{
    json_t *stats = json_pack("{s:f, s:I, s:I, s:I}", "duration_s", duration_s, "staged_bytes",
                              (json_int_t)0, "added_bytes", (json_int_t)0, "shipped_sets",
                              (json_int_t)json_array_size(c->shipped));
    sc_err e = {0};
    char *dir = NULL;
    json_t *manifest = NULL, *b2 = NULL;
    if (set_id && set_resolve(c->cfg.staging.dir, set_id, &dir, NULL, &e) == 0 &&
        manifest_read(dir, &manifest, &b2, &e) == 0) {
        json_t *sources = source_stats(manifest);
        json_int_t total = 0;
        size_t i;
        json_t *s;
        json_array_foreach(sources, i, s) total += json_integer_value(json_object_get(s, "bytes"));
        json_object_set_new(stats, "staged_bytes", json_integer(total));
        json_object_set_new(stats, "sources", sources);
    }
    json_int_t added = 0;
    size_t i;
    json_t *sh;
    json_array_foreach(c->shipped, i, sh) added +=
        json_integer_value(json_object_get(json_object_get(sh, "snapshot"), "data_added"));
    json_object_set_new(stats, "added_bytes", json_integer(added));
    free(dir);
    json_decref(manifest);
    json_decref(b2);

    json_t *state = NULL;
    memset(&e, 0, sizeof e);
    if (state_load(c->cfg.staging.dir, &state, &e) == 0 &&
        json_is_object(json_object_get(state, "last_run"))) {
        json_object_set(json_object_get(state, "last_run"), "stats", stats);
        if (state_save(c->cfg.staging.dir, state, &e) != 0)
            log_warn("cannot record the run's numbers: %s", e.msg);
    } else if (e.code) {
        log_warn("cannot record the run's numbers: %s", e.msg);
    }
    json_decref(state);
    if (c->report) {
        json_object_set(c->report, "stats", stats);
        json_object_set(c->report, "shipped", c->shipped ? c->shipped : json_null());
    }
    json_decref(stats);
}

void record_metrics(struct ctx *c)
{
    const char *path = c->cfg.run.metrics_file;
    if (path == NULL)
        return;
    sc_err e = {0};
    json_t *state = NULL;
    char **ids = NULL;
    size_t n = 0;
    if (state_load(c->cfg.staging.dir, &state, &e) != 0 ||
        set_list(c->cfg.staging.dir, &ids, &n, &e) != 0) {
        log_warn("metrics not written: %s", e.msg);
        json_decref(state);
        return;
    }
    char host[256];
    if (c->cfg.restic.host)
        snprintf(host, sizeof host, "%s", c->cfg.restic.host);
    else if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    struct metrics_extra x = {
        .host = host,
        .next_check_due = check_next_due(c->cfg.check.every_s, json_object_get(state, "check")),
        .local_sets = n,
    };
    for (size_t i = 0; i < n; i++)
        if (state_set_snapshot(state, ids[i]) == NULL)
            x.unshipped_sets++;
    if (metrics_write(path, state, &x, &e) != 0)
        log_warn("metrics not written: %s", e.msg);
    else
        log_debug("metrics written to %s", path);
    set_list_free(ids, n);
    json_decref(state);
}
