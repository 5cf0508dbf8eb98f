#include "drill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/clock.h"
#include "../core/fs.h"
#include "../core/lock.h"
#include "../core/log.h"
#include "../core/state.h"
#include "../source/source.h"
#include "../stage/crypto.h"
#include "../stage/manifest.h"
#include "../stage/set.h"
#include "fetch.h"

/* Everything one drill needs; result becomes state.json's last_drill. */
struct drill {
    struct ctx *c;
    const char *which, *identity, *passphrase_file;
    char *scratch;  /* STAGING/.drill-XXXXXX, removed at the end */
    int scratch_fd; /* holds it (scratch_create) */
    char *plain;    /* the verified plaintext set */
    char *targets;  /* scratch targets of file kinds */
    char short_id[9];
    json_t *result;      /* becomes last_drill */
    long long started;   /* ms: the recovery time objective runs from here */
    long long recovered; /* ms: the last source back and checked */
};

/* <db>_drill_<snapshot id>: the dump's one database, else the source name;
 * at most max bytes (the kind's longest database name). */
static char *database_target(const struct drill *d, json_t *entry, const char *name, size_t max)
{
    json_t *dbs = json_object_get(entry, "databases");
    const char *db = json_array_size(dbs) == 1 ? json_string_value(json_array_get(dbs, 0)) : NULL;
    char *t = xasprintf("%s_drill_%s", db ? db : name, d->short_id);
    if (strlen(t) > max) {
        /* keep the suffix, which makes the name the drill's own */
        size_t keep = max - strlen("_drill_") - strlen(d->short_id);
        char *shorter = xasprintf("%.*s_drill_%s", (int)keep, db ? db : name, d->short_id);
        free(t);
        t = shorter;
    }
    return t;
}

static char *scratch_target(const struct drill *d, const struct source_ops *ops, json_t *entry,
                            const char *name)
{
    char *leaf;
    char *t;
    switch (ops->drill_target) {
    case TARGET_FILE:
        leaf = xasprintf("%s.db", name);
        t = path_join(d->targets, leaf);
        free(leaf);
        return t;
    case TARGET_DIR:
        leaf = xasprintf("paths-%s", name);
        t = path_join(d->targets, leaf);
        free(leaf);
        return t;
    case TARGET_DATABASE:
        break;
    }
    return database_target(d, entry, name, ops->db_name_max);
}

/* What was compared, for the report: rows, tables, entries. */
static void describe_checks(json_t *r, json_t *entry)
{
    static const char *const keys[] = {"rows_total", "entries"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(entry, keys[i]);
        if (json_is_integer(v))
            json_object_set(r, keys[i], v);
    }
    /* {table: rows} for SQLite; {database: {table: rows}} for MySQL */
    json_t *tables = json_object_get(entry, "tables");
    const char *key;
    json_t *v;
    json_int_t n = 0;
    json_object_foreach(tables, key, v)
    {
        n += json_is_object(v) ? (json_int_t)json_object_size(v) : 1;
    }
    if (json_is_object(tables))
        json_object_set_new(r, "tables", json_integer(n));
}

static void skip_source(json_t *r, const char *why)
{
    json_object_set_new(r, "status", json_string("skipped"));
    json_object_set_new(r, "reason", json_string(why));
    log_warn("drill: %s %s skipped: %s", json_string_value(json_object_get(r, "kind")),
             json_string_value(json_object_get(r, "name")), why);
}

/* A database target is not in the scratch directory: drop it now. */
static void discard_target(const struct source_cfg *src, const char *target, json_t *r)
{
    sc_err e = {0};
    if (source_of(src)->discard == NULL) {
        log_warn("drill: %s %s: scratch target %s was left behind: remove it by hand", src->kind,
                 src->name, target);
        json_object_set_new(r, "left_behind", json_string(target));
    } else if (source_of(src)->discard(src, target, &e) != 0) {
        log_warn("drill: %s %s: cannot remove scratch target %s: %s", src->kind, src->name, target,
                 e.msg);
        json_object_set_new(r, "left_behind", json_string(target));
    }
}

/* Restore one source into its scratch target; the op compares it with the
 * manifest. Returns 0 or the failure's exit code (first kept in err). */
static int drill_source(struct drill *d, json_t *entry, sc_err *err)
{
    const char *name = json_string_value(json_object_get(entry, "name"));
    const char *kind = json_string_value(json_object_get(entry, "kind"));
    if (name == NULL || kind == NULL)
        return sc_fail(err, SC_EVERIFY, "MANIFEST.json: a source without name or kind");
    json_t *r = json_pack("{s:s, s:s}", "name", name, "kind", kind);
    json_array_append_new(json_object_get(d->result, "sources"), r);
    const struct source_cfg *src = NULL;
    for (size_t i = 0; i < d->c->cfg.nsources && src == NULL; i++)
        if (strcmp(d->c->cfg.sources[i].name, name) == 0 &&
            strcmp(d->c->cfg.sources[i].kind, kind) == 0)
            src = &d->c->cfg.sources[i];
    if (src == NULL) {
        skip_source(r, "not in the configuration");
        return 0;
    }
    if (source_of(src)->restore == NULL) {
        skip_source(r, "this version cannot restore this kind");
        return 0;
    }
    const struct source_ops *ops = source_of(src);
    char *target = scratch_target(d, ops, entry, name);
    json_object_set_new(r, "target", json_string(target));
    sc_err e = {0};
    log_info("drill: restoring %s %s into %s", kind, name, target);
    long long t0 = now_ms();
    /* force: a scratch target left by a crashed drill is ours to replace */
    int rc = ops->restore(src, d->plain, entry, target, true, &e);
    d->recovered = now_ms();
    json_object_set_new(r, "seconds", json_real((double)(d->recovered - t0) / 1000.0));
    if (json_is_object(json_object_get(entry, "restore")))
        json_object_set(r, "restore", json_object_get(entry, "restore"));
    if (ops->drill_target == TARGET_DATABASE)
        discard_target(src, target, r);
    json_object_set_new(r, "status", json_string(rc == 0 ? "ok" : "failed"));
    if (rc == 0)
        describe_checks(r, entry);
    else
        json_object_set_new(r, "error", json_string(e.msg));
    free(target);
    return rc == 0 ? 0 : sc_fail(err, e.code ? e.code : rc, "%s", e.msg);
}

static int make_dirs(struct drill *d, sc_err *err)
{
    d->plain = path_join(d->scratch, "plain");
    d->targets = path_join(d->scratch, "targets");
    if (fs_mkdir_p(d->plain, 0700, err) != 0 || fs_mkdir_p(d->targets, 0700, err) != 0)
        return err->code;
    return 0;
}

static int drill_steps(struct drill *d, sc_err *err)
{
    struct ctx *c = d->c;
    struct fetched f = {0};
    struct crypto_key *key = NULL;
    json_t *m = NULL;
    int rc = scratch_create(c->cfg.staging.dir, ".drill-", &d->scratch, &d->scratch_fd, err);
    if (rc == 0)
        rc = make_dirs(d, err);
    if (rc == 0)
        rc = fetch_snapshot(c, d->which, d->scratch, "fetched-", &f, err);
    if (f.snapshot[0]) {
        snprintf(d->short_id, sizeof d->short_id, "%.8s", f.snapshot);
        json_object_set_new(d->result, "snapshot", json_string(f.snapshot));
    }
    if (rc == 0)
        rc = fetch_set_key(c, f.setdir, d->identity, d->passphrase_file, &key, err);
    if (rc == 0)
        rc = set_unpack_fetched(f.setdir, d->plain, key, &m, err);
    if (rc == 0)
        rc = fetch_unpack_sources(d->plain, d->plain, m, err);
    /* reading the snapshot back, verifying and decrypting it */
    json_object_set_new(d->result, "fetch_seconds",
                        json_real((double)(now_ms() - d->started) / 1000.0));
    crypto_key_free(key);
    fetched_free(&f);
    if (m != NULL)
        json_object_set(d->result, "set", json_object_get(m, "set"));
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(m, "sources"), i, entry)
    {
        /* every source is tried, so the report lists them all */
        int src_rc = drill_source(d, entry, err);
        if (rc == 0)
            rc = src_rc;
    }
    json_decref(m);
    return rc;
}

/* The recovery time objective this drill measured: from its start to the
 * last source restored and checked (the scratch clean-up not included). */
static void finish_result(json_t *result, int rc, const sc_err *err, const struct drill *d)
{
    if (rc == 0 && d->recovered > 0)
        json_object_set_new(result, "rto_seconds",
                            json_real((double)(d->recovered - d->started) / 1000.0));
    json_object_set_new(result, "seconds", json_real((double)(now_ms() - d->started) / 1000.0));
    char finished[32];
    utc_timestamp(finished, sizeof finished);
    json_object_set_new(result, "finished", json_string(finished));
    json_object_set_new(result, "status", json_string(rc == 0 ? "success" : "failure"));
    json_object_set_new(result, "exit_code", json_integer(rc));
    json_object_set_new(result, "error", rc ? json_string(err->msg) : json_null());
}

/* state.json: last_drill, for status and for monitoring. Needs the lock. */
static void record_drill(struct ctx *c, json_t *result)
{
    sc_err e = {0};
    json_t *state;
    if (state_load(c->cfg.staging.dir, &state, &e) != 0) {
        log_warn("cannot record the drill: %s", e.msg);
        return;
    }
    json_object_set(state, "last_drill", result);
    if (state_save(c->cfg.staging.dir, state, &e) != 0)
        log_warn("cannot record the drill: %s", e.msg);
    json_decref(state);
}

int drill_run(struct ctx *c, const struct drill_opts *o, json_t **result, sc_err *err)
{
    struct drill d = {.c = c,
                      .which = o->which ? o->which : "latest",
                      .identity = o->identity,
                      .passphrase_file = o->passphrase_file,
                      .scratch_fd = -1};
    *result = NULL;
    int fd;
    if (ctx_lock(c, &fd, err) != 0)
        return err->code;
    char started[32];
    utc_timestamp(started, sizeof started);
    d.result = json_pack("{s:s, s:[]}", "started", started, "sources");
    d.started = now_ms();
    int rc = drill_steps(&d, err);
    finish_result(d.result, rc, err, &d);
    record_drill(c, d.result);
    if (d.scratch != NULL)
        scratch_remove(d.scratch, d.scratch_fd);
    free(d.scratch);
    free(d.plain);
    free(d.targets);
    *result = d.result;
    lock_release(fd);
    return rc;
}
