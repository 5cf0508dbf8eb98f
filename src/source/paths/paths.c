/* [paths NAME]: configuration files and directories, archived as they are
 * (no snapshot: "file-copy") into paths/<NAME>.tar, a pax archive written by
 * libarchive straight through a sink, so it is hashed as it is written.
 *
 * Entries are named like GNU tar names them: the absolute path without its
 * leading '/', so `tar -tf` shows opt/torrust/.env and `tar -xf -C DIR`
 * puts it under DIR. Symbolic links are stored as links, never followed;
 * modes, owners (ids and names), mtimes, xattrs and ACLs are kept. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../core/clock.h"
#include "../../core/fs.h"
#include "../../core/log.h"
#include "../../core/spawn.h"
#include "../../core/xalloc.h"
#include "../../stage/set.h"
#include "../../stage/sink.h"
#include "pathlist.h"
#include "paths.h"
#include "../source.h"

static const struct cfg_key paths_keys[] = {
    {"path", CFG_PATH_LIST, offsetof(struct source_cfg, paths), false, NULL},
    {"from_file", CFG_PATH, offsetof(struct source_cfg, from_file), false, NULL},
    {"missing_ok", CFG_BOOL, offsetof(struct source_cfg, missing_ok), false, NULL},
    {NULL, 0, 0, false, NULL},
};

/* A path as written, made canonical without touching the disk, the way
 * restic and Go's filepath.Clean do it: no empty or "." components, ".."
 * removes the component before it, no trailing '/'. Archive names then
 * never climb out of the restore directory. NULL when it is relative. */
static char *normalise_path(const char *in)
{
    if (in[0] != '/')
        return NULL;
    char *out = xmalloc(strlen(in) + 2);
    size_t o = 0;
    for (const char *p = in; *p;) {
        while (*p == '/')
            p++;
        const char *start = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - start);
        if (n == 0 || (n == 1 && start[0] == '.'))
            continue;
        if (n == 2 && start[0] == '.' && start[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the '/' before the component removed */
            continue;
        }
        out[o++] = '/';
        memcpy(out + o, start, n);
        o += n;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return out;
}

static int paths_validate(const struct source_cfg *src, struct config_problems *probs,
                          const char *file)
{
    char section[128];
    snprintf(section, sizeof section, "paths %s", src->name);
    int bad = 0;
    if (src->paths.n == 0 && src->from_file == NULL) {
        config_problem(probs, file, src->line, section, NULL,
                       "needs at least one `path =` or a `from_file =`");
        bad = 1;
    }
    for (size_t i = 0; i < src->paths.n; i++) {
        char *norm = normalise_path(src->paths.v[i]);
        if (norm == NULL) {
            config_problem(probs, file, src->line, section, "path", "'%s' must be an absolute path",
                           src->paths.v[i]);
            bad = 1;
        }
        free(norm);
    }
    return bad;
}

/* ---- which paths -------------------------------------------------------- */

/* A line of from_file that is relative is taken relative to the file's own
 * directory, as the config file's relative paths are to the config's. */
static char *resolve_listed(const char *from_file, const char *path)
{
    if (path[0] == '/')
        return xstrdup(path);
    const char *slash = strrchr(from_file, '/');
    char *dir = slash ? xstrndup(from_file, (size_t)(slash - from_file) + (slash == from_file))
                      : xstrdup(".");
    char *joined = path_join(dir, path);
    free(dir);
    return joined;
}

/* The configured paths, then those of from_file, each made canonical. */
int pa_collect_paths(const struct source_cfg *cfg, struct strvec *out, sc_err *err)
{
    struct strvec raw = {0};
    for (size_t i = 0; i < cfg->paths.n; i++)
        strvec_push(&raw, cfg->paths.v[i]);
    size_t configured = raw.n;
    int rc = 0;
    if (cfg->from_file != NULL) {
        sc_err why = {0};
        if (pathlist_read_file(cfg->from_file, &raw, &why) != 0)
            rc = sc_fail(err, why.code, "paths %s: from_file: %s", cfg->name, why.msg);
    }
    for (size_t i = 0; rc == 0 && i < raw.n; i++) {
        char *full = i < configured ? xstrdup(raw.v[i]) : resolve_listed(cfg->from_file, raw.v[i]);
        char *norm = normalise_path(full);
        free(full);
        if (norm == NULL) {
            rc = sc_fail(err, SC_ESOURCE, "paths %s: '%s' must be an absolute path", cfg->name,
                         raw.v[i]);
            break;
        }
        strvec_push(out, norm);
        free(norm);
    }
    if (rc == 0 && out->n == 0)
        rc = sc_fail(err, SC_ESOURCE, "paths %s: %s lists no paths", cfg->name, cfg->from_file);
    strvec_free(&raw);
    return rc;
}

static bool is_real_dir(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* True when archiving dir already archives path: dir is a lexical ancestor
 * of path and every directory from dir down to path's parent is a real
 * directory (a symlink on the way is stored as a link, not descended). */
static bool inside_tree(const char *path, const char *dir)
{
    size_t n = strcmp(dir, "/") == 0 ? 0 : strlen(dir);
    if (strcmp(path, dir) == 0 || strncmp(path, dir, n) != 0 || path[n] != '/')
        return false;
    /* Check each parent of path, up to and including dir. */
    char *walk = xstrdup(path);
    bool ok = true;
    char *slash;
    while (ok && (slash = strrchr(walk, '/')) != NULL && (size_t)(slash - walk) >= n) {
        *slash = '\0';
        ok = is_real_dir(walk[0] ? walk : "/");
    }
    free(walk);
    return ok;
}

/* Archive each tree once: the same path twice, or a path inside another
 * listed directory, would otherwise be stored twice. */
bool pa_already_covered(const struct strvec *paths, size_t i)
{
    for (size_t k = 0; k < paths->n; k++) {
        if (k == i)
            continue;
        if (k < i && strcmp(paths->v[k], paths->v[i]) == 0)
            return true;
        if (inside_tree(paths->v[i], paths->v[k]))
            return true;
    }
    return false;
}

static void paths_plan(const struct source_cfg *s, FILE *out)
{
    fprintf(out, "  paths %s -> paths/%s\n", s->name, s->name);
    for (size_t j = 0; j < s->paths.n; j++)
        fprintf(out, "    path %s\n", s->paths.v[j]);
    if (s->from_file)
        fprintf(out, "    paths listed in %s\n", s->from_file);
}

const struct source_ops source_paths = {
    .cfg = {.kind = "paths", .keys = paths_keys, .validate = paths_validate},
    .drill_target = TARGET_DIR,
    .plan = paths_plan,
    .stage = paths_stage,
    .restore = paths_restore,
    .doctor = paths_doctor,
};
