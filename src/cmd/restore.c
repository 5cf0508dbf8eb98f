/* restore: a set back as plaintext in a directory, from the repository
 * (--snapshot) or from local staging (--set), verified file by file against
 * its manifest; nothing live is touched. With --apply each source is then
 * put back through its kind's restore op (docs/restore.md is the runbook).
 * Also the steps verify and drill share: the reading key, and a snapshot
 * read back into scratch space. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/fs.h"
#include "../core/lock.h"
#include "../core/log.h"
#include "../restic/restic.h"
#include "../source/source.h"
#include "../stage/crypto.h"
#include "../stage/manifest.h"
#include "../stage/set.h"
#include "cmd.h"

struct restore_opts {
    const char *snapshot, *set, *to, *identity, *passphrase_file, *source, *into;
    bool apply, force;
};

/* ---- shared with verify and drill ------------------------------------------ */

bool cmd_take_flag(int *argc, char **argv, const char *name)
{
    bool found = false;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, name) == 0)
            found = true;
        else
            argv[out++] = argv[i];
    }
    argv[out] = NULL;
    *argc = out;
    return found;
}

int cmd_reading_key(struct ctx *c, const char *identity, const char *passphrase_file,
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

int cmd_set_key(struct ctx *c, const char *setdir, const char *identity,
                const char *passphrase_file, struct crypto_key **key, sc_err *err)
{
    json_t *m, *b2;
    *key = NULL;
    if (manifest_read(setdir, &m, &b2, err) != 0)
        return err->code;
    int rc = 0;
    if (manifest_encrypted(m))
        rc = cmd_reading_key(c, identity, passphrase_file, key, err);
    json_decref(m);
    json_decref(b2);
    return rc;
}

int cmd_fetch_snapshot(struct ctx *c, const char *which, const char *parent, const char *prefix,
                       struct fetched *f, sc_err *err)
{
    memset(f, 0, sizeof *f);
    f->scratch_fd = -1;
    struct restic r;
    json_t *snap = NULL;
    int rc = restic_open(&r, &c->cfg, err);
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

void cmd_fetched_free(struct fetched *f)
{
    if (f->scratch != NULL)
        scratch_remove(f->scratch, f->scratch_fd);
    free(f->scratch);
    free(f->setdir);
    memset(f, 0, sizeof *f);
    f->scratch_fd = -1;
}

/* ---- the restore directory ------------------------------------------------- */

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

/* ---- putting sources back -------------------------------------------------- */

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
    int rc = source_of(src)->restore(src, o->to, entry, o->into, o->force, err);
    if (rc == 0)
        json_array_append_new(applied, json_pack("{s:s, s:s, s:s?, s:O?}", "name", name, "kind",
                                                 kind, "into", o->into, "restored_to",
                                                 json_object_get(entry, "restored_to")));
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

/* ---- the command ------------------------------------------------------------ */

static void report_restore(struct ctx *c, const struct restore_opts *o, json_t *manifest,
                           const char *snapshot, json_t *applied)
{
    const char *set = json_string_value(json_object_get(manifest, "set"));
    json_t *files = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(manifest, "files"), i, f)
    {
        json_array_append(files, json_object_get(manifest_plaintext(f), "path"));
    }
    if (c->report) {
        json_object_set_new(c->report, "set", json_string(set ? set : ""));
        json_object_set_new(c->report, "snapshot", snapshot ? json_string(snapshot) : json_null());
        json_object_set_new(c->report, "to", json_string(o->to));
        json_object_set_new(c->report, "encrypted", json_boolean(manifest_encrypted(manifest)));
        json_object_set_new(c->report, "files", files);
        json_object_set(c->report, "applied", applied);
        return;
    }
    printf("restored set %s", set ? set : "?");
    if (snapshot)
        printf(" (snapshot %.8s)", snapshot);
    printf(" into %s, verified against its manifest:\n", o->to);
    json_array_foreach(files, i, f)
    {
        printf("  %s\n", json_string_value(f));
    }
    printf("  MANIFEST.json, B2SUMS (b2sum -c B2SUMS checks the files above)\n");
    json_array_foreach(applied, i, f)
    {
        const char *to = json_string_value(json_object_get(f, "restored_to"));
        printf("put back %s %s%s%s\n", json_string_value(json_object_get(f, "kind")),
               json_string_value(json_object_get(f, "name")), to ? ": " : "", to ? to : "");
    }
    json_decref(files);
}

/* Bring the set (local or fetched) into o->to as verified plaintext. */
static int unpack_into(struct ctx *c, const struct restore_opts *o, const char *setdir,
                       json_t **manifest, sc_err *err)
{
    struct crypto_key *key = NULL;
    int rc = cmd_set_key(c, setdir, o->identity, o->passphrase_file, &key, err);
    if (rc == 0)
        rc = set_unpack(setdir, o->to, key, manifest, err);
    crypto_key_free(key);
    return rc;
}

static int restore_set(struct ctx *c, const struct restore_opts *o, sc_err *err)
{
    struct fetched f = {0};
    char *setdir = NULL;
    json_t *manifest = NULL, *applied = json_array();
    int rc = prepare_destination(o->to, err);
    if (rc == 0 && o->set)
        rc = set_resolve(c->cfg.staging.dir, o->set, &setdir, NULL, err);
    else if (rc == 0)
        rc = cmd_fetch_snapshot(c, o->snapshot, o->to, ".fetch-", &f, err);
    if (rc == 0)
        rc = unpack_into(c, o, setdir ? setdir : f.setdir, &manifest, err);
    char snapshot[sizeof f.snapshot];
    snprintf(snapshot, sizeof snapshot, "%s", f.snapshot);
    cmd_fetched_free(&f); /* the fetched copy is not needed past here */
    if (rc == 0 && o->apply)
        rc = apply_sources(c, o, manifest, applied, err);
    if (manifest != NULL)
        report_restore(c, o, manifest, o->snapshot ? snapshot : NULL, applied);
    json_decref(manifest);
    json_decref(applied);
    free(setdir);
    return rc;
}

static int check_options(const struct restore_opts *o, sc_err *err)
{
    if ((o->snapshot != NULL) == (o->set != NULL))
        return sc_fail(err, SC_EUSAGE, "restore takes --snapshot ID|latest or --set ID|latest");
    if (o->to == NULL)
        return sc_fail(err, SC_EUSAGE, "restore needs --to DIR (a new or empty directory)");
    if (!o->apply && (o->source || o->into || o->force))
        return sc_fail(err, SC_EUSAGE, "--source, --into and --force go with --apply");
    return 0;
}

int cmd_restore(struct ctx *c, int argc, char **argv, sc_err *err)
{
    struct restore_opts o = {0};
    o.apply = cmd_take_flag(&argc, argv, "apply");
    o.force = cmd_take_flag(&argc, argv, "force");
    const struct cmd_opt opts[] = {{"snapshot", &o.snapshot},
                                   {"set", &o.set},
                                   {"to", &o.to},
                                   {"identity", &o.identity},
                                   {"passphrase-file", &o.passphrase_file},
                                   {"source", &o.source},
                                   {"into", &o.into},
                                   {NULL, NULL}};
    if (cmd_parse_opts(argc, argv, opts, err) != 0 || check_options(&o, err) != 0)
        return err->code;
    if (c->dry_run) {
        printf("dry run: would restore %s %s into %s%s\n", o.set ? "set" : "snapshot",
               o.set ? o.set : o.snapshot, o.to, o.apply ? " and put its sources back" : "");
        return 0;
    }
    /* A local set must not be pruned under us, and putting sources back
     * must not race a backup of them. */
    int fd = -1;
    if ((o.set || o.apply) && cmd_lock(c, &fd, err) != 0)
        return err->code;
    int rc = restore_set(c, &o, err);
    if (fd >= 0)
        lock_release(fd);
    return rc;
}
