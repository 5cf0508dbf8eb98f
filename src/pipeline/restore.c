#include "restore.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/clock.h"
#include "../core/fs.h"
#include "../core/lock.h"
#include "../core/log.h"
#include "../source/source.h"
#include "../stage/crypto.h"
#include "../stage/manifest.h"
#include "../stage/set.h"
#include "fetch.h"

/* 0 when path is an empty directory; exit 2 when it holds anything. */
static int check_empty(const char *path, sc_err *err)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return sc_fail_errno(err, SC_ESTAGING, "cannot read %s", path);
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    if (!empty)
        return sc_fail(err, SC_EUSAGE, "--to %s is not empty: restore into a new directory", path);
    return 0;
}

/* A new or empty directory: a restore never mixes with other files. */
static int prepare_destination(const char *to, sc_err *err)
{
    struct stat st;
    if (lstat(to, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return sc_fail(err, SC_EUSAGE, "--to %s exists and is not a directory", to);
        return check_empty(to, err);
    }
    if (errno != ENOENT)
        return sc_fail_errno(err, SC_ESTAGING, "cannot use %s", to);
    return fs_mkdir_p(to, 0700, err);
}

static const struct source_cfg *configured_source(struct ctx *c, const char *name, const char *kind)
{
    for (size_t i = 0; i < c->cfg.nsources; i++) {
        const struct source_cfg *s = &c->cfg.sources[i];
        if (strcmp(s->name, name) == 0 && strcmp(s->kind, kind) == 0)
            return s;
    }
    return NULL;
}

static json_t *manifest_source(json_t *manifest, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(manifest, "sources"), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0)
            return e;
    }
    return NULL;
}

static int check_apply_request(const struct restore_opts *o, json_t *manifest, sc_err *err)
{
    size_t n = json_array_size(json_object_get(manifest, "sources"));
    if (o->source && manifest_source(manifest, o->source) == NULL)
        return sc_fail(err, SC_EUSAGE, "the set has no source named %s", o->source);
    if (o->into && !o->source && n != 1)
        return sc_fail(err, SC_EUSAGE, "--into needs --source NAME: the set holds %zu sources", n);
    return 0;
}

/* One source back in place through its kind's restore op. */
static int apply_source(struct ctx *c, const struct restore_opts *o, json_t *entry, json_t *applied,
                        sc_err *err)
{
    const char *name = json_string_value(json_object_get(entry, "name"));
    const char *kind = json_string_value(json_object_get(entry, "kind"));
    if (name == NULL || kind == NULL)
        return sc_fail(err, SC_EVERIFY, "MANIFEST.json: a source without name or kind");
    const struct source_cfg *src = configured_source(c, name, kind);
    if (src == NULL)
        return sc_fail(err, SC_ECONFIG,
                       "%s %s is in the set but not in the configuration: add its [%s %s] "
                       "section to put it back (its files are in %s)",
                       kind, name, kind, name, o->to);
    if (source_of(src)->restore == NULL)
        return sc_fail(err, SC_EFAIL,
                       "%s %s: this version cannot put a %s source back; its files are in %s", kind,
                       name, kind, o->to);
    log_info("putting %s %s back%s%s", kind, name, o->into ? " into " : "", o->into ? o->into : "");
    long long t0 = now_ms();
    int rc = source_of(src)->restore(src, o->to, entry, o->into, o->force, err);
    /* seconds: putting it back; restore: how, when the kind says (MySQL) */
    if (rc == 0)
        json_array_append_new(applied, json_pack("{s:s, s:s, s:s?, s:O?, s:f, s:O?}", "name", name,
                                                 "kind", kind, "into", o->into, "restored_to",
                                                 json_object_get(entry, "restored_to"), "seconds",
                                                 (double)(now_ms() - t0) / 1000.0, "restore",
                                                 json_object_get(entry, "restore")));
    return rc;
}

static int apply_sources(struct ctx *c, const struct restore_opts *o, json_t *manifest,
                         json_t *applied, sc_err *err)
{
    int rc = check_apply_request(o, manifest, err);
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(manifest, "sources"), i, entry)
    {
        if (rc != 0)
            break;
        const char *name = json_string_value(json_object_get(entry, "name"));
        if (o->source && (name == NULL || strcmp(name, o->source) != 0))
            continue;
        rc = apply_source(c, o, entry, applied, err);
    }
    return rc;
}

/* Bring the set (local, or fetched: then its files are moved) into o->to
 * as verified plaintext. */
static int unpack_into(struct ctx *c, const struct restore_opts *o, const char *setdir,
                       bool fetched, json_t **manifest, sc_err *err)
{
    struct crypto_key *key = NULL;
    int rc = fetch_set_key(c, setdir, o->identity, o->passphrase_file, &key, err);
    if (rc == 0 && fetched)
        rc = set_unpack_fetched(setdir, o->to, key, manifest, err);
    else if (rc == 0)
        rc = set_unpack(setdir, o->to, key, manifest, err);
    if (rc == 0)
        rc = fetch_unpack_sources(o->to, o->to, *manifest, err);
    crypto_key_free(key);
    return rc;
}

static int restore_set(struct ctx *c, const struct restore_opts *o, struct restore_result *res,
                       sc_err *err)
{
    struct fetched f = {0};
    char *setdir = NULL;
    json_t *manifest = NULL, *applied = json_array();
    int rc = prepare_destination(o->to, err);
    if (rc == 0 && o->set)
        rc = set_resolve(c->cfg.staging.dir, o->set, &setdir, NULL, err);
    else if (rc == 0)
        rc = fetch_snapshot(c, o->snapshot, o->to, ".fetch-", &f, err);
    if (rc == 0)
        rc = unpack_into(c, o, setdir ? setdir : f.setdir, setdir == NULL, &manifest, err);
    snprintf(res->snapshot, sizeof res->snapshot, "%s", f.snapshot);
    fetched_free(&f); /* the fetched copy is not needed past here */
    if (rc == 0 && o->apply)
        rc = apply_sources(c, o, manifest, applied, err);
    res->manifest = manifest;
    res->applied = applied;
    free(setdir);
    return rc;
}

int restore_run(struct ctx *c, const struct restore_opts *o, struct restore_result *res,
                sc_err *err)
{
    memset(res, 0, sizeof *res);
    /* A local set must not be pruned under us, and putting sources back
     * must not race a backup of them. */
    int fd = -1;
    if ((o->set || o->apply) && ctx_lock(c, &fd, err) != 0)
        return err->code;
    int rc = restore_set(c, o, res, err);
    if (fd >= 0)
        lock_release(fd);
    return rc;
}

void restore_result_free(struct restore_result *res)
{
    json_decref(res->manifest);
    json_decref(res->applied);
    memset(res, 0, sizeof *res);
}
