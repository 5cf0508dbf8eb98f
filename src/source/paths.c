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

#include "../core/clock.h"
#include "../core/fs.h"
#include "../core/log.h"
#include "../core/spawn.h"
#include "../core/xalloc.h"
#include "../stage/set.h"
#include "../stage/sink.h"
#include "pathlist.h"
#include "source.h"

#define PROGRESS_EVERY_MS 250

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
static int collect_paths(const struct source_cfg *cfg, struct strvec *out, sc_err *err)
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
static bool already_covered(const struct strvec *paths, size_t i)
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

/* ---- archiving ---------------------------------------------------------- */

struct walk {
    const struct source_cfg *cfg;
    json_t *entry;
    sc_err *err;
    struct sink sink;
    bool sink_open;
    bool abandoned;       /* stop writing: the archive is being thrown away */
    struct archive *out;  /* the pax writer */
    struct archive *disk; /* the tree reader */
    struct archive_entry_linkresolver *links;
    dev_t staging_dev; /* the staging dir, never archived into itself */
    ino_t staging_ino;
    uint64_t entries, bytes;
    long long last_progress;
};

/* libarchive's error text, which can be missing. */
static const char *reason(struct archive *a)
{
    const char *s = archive_error_string(a);
    return s ? s : "unknown error";
}

/* A problem that does not stop the archive: in the manifest and the log. */
static void warn(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct walk *w, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    source_warn(w->entry, "%s", text);
    log_warn("paths %s: %s", w->cfg->name, text);
}

/* libarchive's write callback: every byte of the archive goes through the
 * sink, which hashes it as it writes. */
static la_ssize_t write_to_sink(struct archive *a, void *ctx, const void *buf, size_t len)
{
    struct walk *w = ctx;
    if (w->abandoned)
        return -1;
    if (sink_write(&w->sink, buf, len, w->err) != 0) {
        w->abandoned = true;
        archive_set_error(a, EIO, "%s", w->err->msg);
        return -1;
    }
    return (la_ssize_t)len;
}

/* The writer failed: the sink's error when it was the cause (exit 5),
 * else libarchive's. */
static int fail_write(struct walk *w, const char *path)
{
    if (w->err->code != SC_OK)
        return w->err->code;
    return sc_fail(w->err, SC_ESTAGING, "paths %s: %s: cannot write the archive: %s", w->cfg->name,
                   path, reason(w->out));
}

static int fail_read(struct walk *w, const char *path)
{
    int e = archive_errno(w->disk);
    if (e > 0 && strstr(reason(w->disk), strerror(e)) == NULL)
        return sc_fail(w->err, SC_ESOURCE, "paths %s: %s: %s: %s", w->cfg->name, path,
                       reason(w->disk), strerror(e));
    return sc_fail(w->err, SC_ESOURCE, "paths %s: %s: %s", w->cfg->name, path, reason(w->disk));
}

static void show_progress(struct walk *w)
{
    if (!log_progress_enabled())
        return;
    long long t = now_ms();
    if (t - w->last_progress < PROGRESS_EVERY_MS)
        return;
    w->last_progress = t;
    log_progress("paths %s: %llu entries, %.1f MB", w->cfg->name, (unsigned long long)w->entries,
                 (double)w->bytes / (1024.0 * 1024.0));
}

static int setup_archives(struct walk *w)
{
    w->out = archive_write_new();
    w->disk = archive_read_disk_new();
    w->links = archive_entry_linkresolver_new();
    if (w->out == NULL || w->disk == NULL || w->links == NULL)
        return sc_fail(w->err, SC_EFAIL, "paths %s: out of memory", w->cfg->name);
    /* pax restricted: plain ustar headers unless an entry needs more (long
     * names, xattrs, ACLs, big ids); no atime/ctime records, so an unchanged
     * tree gives the same bytes on every run. */
    if (archive_write_set_format_pax_restricted(w->out) != ARCHIVE_OK)
        return fail_write(w, "(archive)");
    /* xattrs as SCHILY.xattr only (GNU tar and libarchive both read it):
     * the default adds LIBARCHIVE.xattr copies that GNU tar warns about. */
    if (archive_write_set_format_option(w->out, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK)
        log_debug("paths %s: %s", w->cfg->name, reason(w->out));
    if (archive_write_open2(w->out, w, NULL, write_to_sink, NULL, NULL) != ARCHIVE_OK)
        return fail_write(w, "(archive)");
    archive_entry_linkresolver_set_strategy(w->links, archive_format(w->out));
    /* Symlinks are stored as links, never followed. Sparse maps are not
     * read, so file data comes as one contiguous stream (holes as zeros). */
    if (archive_read_disk_set_symlink_physical(w->disk) != ARCHIVE_OK ||
        archive_read_disk_set_standard_lookup(w->disk) != ARCHIVE_OK ||
        archive_read_disk_set_behavior(w->disk, ARCHIVE_READDISK_NO_SPARSE) != ARCHIVE_OK)
        return fail_read(w, "(reader)");
    return 0;
}

/* Copy one file's data; the header already promised archive_entry_size
 * bytes, so a file that changes under us is cut or padded, and said. */
static int copy_data(struct walk *w, struct archive_entry *e, const char *path)
{
    uint64_t expected = (uint64_t)archive_entry_size(e), written = 0;
    bool grew = false;
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t offset;
        int r = archive_read_data_block(w->disk, &buf, &size, &offset);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return fail_read(w, path);
        if (sc_stop_requested)
            return sc_fail(w->err, SC_EINTR, "paths %s: interrupted", w->cfg->name);
        if (size > expected - written) {
            size = (size_t)(expected - written);
            grew = true;
        }
        if (size > 0 && archive_write_data(w->out, buf, size) < 0)
            return fail_write(w, path);
        written += size;
        w->bytes += size;
        show_progress(w);
    }
    if (grew)
        warn(w, "%s: grew while being read; only its size at the start was stored", path);
    if (written < expected)
        warn(w, "%s: shrank while being read; padded with zeros", path);
    return 0;
}

/* The entry is the staging directory (a listed tree contains it). */
static bool is_staging_dir(struct walk *w, struct archive_entry *e)
{
    return archive_entry_filetype(e) == AE_IFDIR && archive_entry_dev(e) == w->staging_dev &&
           (ino_t)archive_entry_ino64(e) == w->staging_ino;
}

static int write_entry(struct walk *w, struct archive_entry *e)
{
    /* Keep our own copy: renaming the entry frees the string libarchive
     * handed out. */
    char *path = xstrdup(archive_entry_pathname(e));
    int rc = 0;
    if (archive_entry_filetype(e) == AE_IFSOCK) {
        warn(w, "%s: a socket; skipped (tar cannot store sockets)", path);
        goto out;
    }
    const char *name = path;
    while (*name == '/')
        name++;
    archive_entry_copy_pathname(e, *name ? name : ".");
    /* Tar strategy: the first of several hard links carries the data, the
     * others become link entries to it (nothing is ever deferred). */
    struct archive_entry *spare = NULL;
    archive_entry_linkify(w->links, &e, &spare);
    if (e == NULL || spare != NULL) {
        rc = sc_fail(w->err, SC_EFAIL, "paths %s: %s: unexpected hard link handling", w->cfg->name,
                     path);
        goto out;
    }
    int r = archive_write_header(w->out, e);
    if (r == ARCHIVE_WARN) {
        warn(w, "%s: %s", path, reason(w->out));
    } else if (r == ARCHIVE_FAILED) {
        rc = sc_fail(w->err, SC_ESOURCE, "paths %s: %s: cannot archive it: %s", w->cfg->name, path,
                     reason(w->out));
        goto out;
    } else if (r != ARCHIVE_OK) {
        rc = fail_write(w, path);
        goto out;
    }
    w->entries++;
    if (archive_entry_filetype(e) == AE_IFREG && archive_entry_hardlink(e) == NULL &&
        archive_entry_size(e) > 0)
        rc = copy_data(w, e, path);
    if (rc == 0 && archive_write_finish_entry(w->out) != ARCHIVE_OK)
        rc = fail_write(w, path);
out:
    free(path);
    return rc;
}

/* Archive one listed path and, for a directory, everything below it. */
static int archive_tree(struct walk *w, const char *root)
{
    if (archive_read_disk_open(w->disk, root) != ARCHIVE_OK)
        return fail_read(w, root);
    int rc = 0;
    struct archive_entry *e = archive_entry_new();
    for (;;) {
        if (sc_stop_requested) {
            rc = sc_fail(w->err, SC_EINTR, "paths %s: interrupted", w->cfg->name);
            break;
        }
        archive_entry_clear(e);
        int r = archive_read_next_header2(w->disk, e);
        if (r == ARCHIVE_EOF)
            break;
        if (r == ARCHIVE_WARN) {
            warn(w, "%s: %s", archive_entry_pathname(e) ? archive_entry_pathname(e) : root,
                 reason(w->disk));
        } else if (r == ARCHIVE_FAILED && archive_errno(w->disk) == ENOENT) {
            /* Deleted between the directory listing and its lstat (an
             * editor's temporary file): nothing to keep, as with tar. */
            warn(w, "%s", reason(w->disk));
            continue;
        } else if (r != ARCHIVE_OK) {
            rc = fail_read(w, archive_entry_pathname(e) ? archive_entry_pathname(e) : root);
            break;
        }
        if (is_staging_dir(w, e)) {
            warn(w, "%s: the staging directory; skipped", archive_entry_pathname(e));
            continue;
        }
        /* Directories are walked; links to them are not (physical mode). */
        if (archive_read_disk_can_descend(w->disk) &&
            archive_read_disk_descend(w->disk) != ARCHIVE_OK) {
            rc = fail_read(w, archive_entry_pathname(e));
            break;
        }
        if ((rc = write_entry(w, e)) != 0)
            break;
        show_progress(w);
    }
    archive_entry_free(e);
    archive_read_close(w->disk);
    return rc;
}

/* Look at a listed path before walking it: missing is an error unless
 * missing_ok; a symlink is worth a word, since only the link is kept. */
static int archive_listed(struct walk *w, const char *path, json_t *missing)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if ((errno == ENOENT || errno == ENOTDIR) && w->cfg->missing_ok) {
            warn(w, "%s: %s (missing_ok)", path, strerror(errno));
            json_array_append_new(missing, json_string(path));
            return 0;
        }
        return sc_fail_errno(w->err, SC_ESOURCE, "paths %s: %s", w->cfg->name, path);
    }
    if (S_ISLNK(st.st_mode))
        warn(w, "%s is a symbolic link: stored as a link, its target is not included", path);
    return archive_tree(w, path);
}

static void remember_staging_dir(struct walk *w, struct set *set)
{
    struct stat st;
    if (set->staging != NULL && stat(set->staging, &st) == 0) {
        w->staging_dev = st.st_dev;
        w->staging_ino = st.st_ino;
    }
}

static int archive_all(struct walk *w, const struct strvec *paths, json_t *missing)
{
    int rc = setup_archives(w);
    for (size_t i = 0; rc == 0 && i < paths->n; i++) {
        if (already_covered(paths, i))
            continue;
        rc = archive_listed(w, paths->v[i], missing);
    }
    if (rc == 0 && archive_write_close(w->out) != ARCHIVE_OK)
        rc = fail_write(w, "(end of archive)");
    log_progress_done();
    return rc;
}

static void free_walk(struct walk *w)
{
    /* Freeing an unclosed writer writes the end of the archive: not into a
     * sink that failed or is being thrown away. */
    w->abandoned = true;
    if (w->out)
        archive_write_free(w->out);
    if (w->disk)
        archive_read_free(w->disk);
    if (w->links)
        archive_entry_linkresolver_free(w->links);
}

static void describe(struct walk *w, const char *relpath, json_t *paths, json_t *missing)
{
    json_t *e = w->entry;
    json_object_set_new(e, "consistency", json_string("file-copy"));
    json_object_set_new(e, "archive", json_string(relpath));
    json_object_set_new(e, "format", json_string("pax"));
    json_object_set_new(e, "entries", json_integer((json_int_t)w->entries));
    json_object_set_new(e, "bytes", json_integer((json_int_t)w->bytes));
    json_object_set_new(e, "paths", paths);
    if (w->cfg->missing_ok)
        json_object_set_new(e, "missing", missing);
    else
        json_decref(missing);
}

static json_t *json_strings(const struct strvec *sv)
{
    json_t *a = json_array();
    for (size_t i = 0; i < sv->n; i++)
        json_array_append_new(a, json_string(sv->v[i]));
    return a;
}

static int paths_stage(const struct source_cfg *src, struct set *set, json_t *entry, sc_err *err)
{
    struct walk w = {.cfg = src, .entry = entry, .err = err};
    struct strvec paths = {0};
    char *relpath = xasprintf("paths/%s.tar", src->name);
    json_t *missing = json_array();
    int rc = collect_paths(src, &paths, err);
    if (rc == 0 && (rc = sink_open(&w.sink, set, relpath, err)) == 0)
        w.sink_open = true;
    if (rc == 0) {
        remember_staging_dir(&w, set);
        rc = archive_all(&w, &paths, missing);
    }
    free_walk(&w);
    if (w.sink_open && rc == 0)
        rc = sink_close(&w.sink, err);
    else if (w.sink_open)
        sink_abort(&w.sink);
    if (rc == 0) {
        if (w.entries == 0)
            warn(&w, "no listed path exists: %s is empty", relpath);
        describe(&w, relpath, json_strings(&paths), missing);
        missing = NULL;
        log_info("paths %s: %llu entries, %llu bytes of file data", src->name,
                 (unsigned long long)w.entries, (unsigned long long)w.bytes);
    }
    json_decref(missing);
    strvec_free(&paths);
    free(relpath);
    return rc;
}

/* ---- restore --apply --------------------------------------------------------
 *
 * The archive is read twice. The first pass writes nothing: it refuses the
 * whole archive when a name is absolute, climbs with "..", or leads through
 * a symbolic link (one an earlier entry makes, or one already on disk), and,
 * without force, when a file would be overwritten. So a hostile archive is
 * refused before its first entry is written, not halfway. The second pass
 * extracts with libarchive's own guards on as well (SECURE_NODOTDOT,
 * SECURE_NOABSOLUTEPATHS, SECURE_SYMLINKS), each file written under a
 * temporary name and renamed (SAFE_WRITES); modes, times, ACLs and xattrs
 * are kept, and owners too when running as root. */

#define EXTRACT_FLAGS                                                                              \
    (ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |                    \
     ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SAFE_WRITES | ARCHIVE_EXTRACT_PERM |        \
     ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_XATTR)

struct unpack {
    const struct source_cfg *cfg;
    sc_err *err;
    char *archive; /* the restored paths/<name>.tar */
    const char *root;
    bool force;
    json_t *links; /* symbolic links the archive makes, by name */
    uint64_t entries, existing;
    char *first_existing;
};

/* Why a name may not be extracted, or NULL. */
static const char *unsafe_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return "an empty name";
    if (name[0] == '/')
        return "an absolute path";
    for (const char *c = name; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return "a '..' component";
        c += n;
        while (*c == '/')
            c++;
    }
    return NULL;
}

/* A directory on the way to name (not name itself, which is replaced, not
 * followed) that is a symbolic link, in the archive or on disk: that
 * directory's name (owned), or NULL. */
static char *through_link(struct unpack *u, const char *name, bool *on_disk)
{
    for (const char *slash = strchr(name, '/'); slash; slash = strchr(slash + 1, '/')) {
        if (slash == name)
            continue;
        char *prefix = xstrndup(name, (size_t)(slash - name));
        char *disk = path_join(u->root, prefix);
        struct stat st;
        *on_disk = json_object_get(u->links, prefix) == NULL;
        bool link = !*on_disk || (lstat(disk, &st) == 0 && S_ISLNK(st.st_mode));
        free(disk);
        if (link)
            return prefix;
        free(prefix);
    }
    return NULL;
}

static struct archive *open_archive(struct unpack *u)
{
    struct archive *a = archive_read_new();
    if (a == NULL) {
        sc_fail(u->err, SC_EFAIL, "paths %s: out of memory", u->cfg->name);
        return NULL;
    }
    if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_open_filename(a, u->archive, 1 << 16) != ARCHIVE_OK) {
        sc_fail(u->err, SC_EVERIFY, "paths %s: %s: %s", u->cfg->name, u->archive, reason(a));
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/* One entry of the first pass. */
static int check_entry(struct unpack *u, struct archive_entry *e)
{
    const char *name = archive_entry_pathname(e);
    const char *hard = archive_entry_hardlink(e);
    const char *why = unsafe_name(name);
    if (why == NULL && hard != NULL)
        why = unsafe_name(hard);
    if (why != NULL)
        return sc_fail(u->err, SC_EVERIFY, "paths %s: refusing the archive: entry '%s' has %s",
                       u->cfg->name, name ? name : "", why);
    bool on_disk = false;
    char *link = through_link(u, name, &on_disk);
    if (link == NULL && hard != NULL)
        link = through_link(u, hard, &on_disk);
    if (link != NULL) {
        int rc = sc_fail(u->err, SC_EVERIFY,
                         "paths %s: refusing the archive: entry '%s' leads through the symbolic "
                         "link %s%s",
                         u->cfg->name, name, link, on_disk ? " on disk" : " the archive makes");
        free(link);
        return rc;
    }
    if (archive_entry_filetype(e) == AE_IFLNK)
        json_object_set_new(u->links, name, json_true());
    if (archive_entry_filetype(e) != AE_IFDIR) {
        char *disk = path_join(u->root, name);
        if (fs_exists(disk) && u->existing++ == 0)
            u->first_existing = xstrdup(disk);
        free(disk);
    }
    u->entries++;
    return 0;
}

static int check_archive(struct unpack *u)
{
    struct archive *a = open_archive(u);
    if (a == NULL)
        return u->err->code;
    int rc = 0;
    struct archive_entry *e;
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = sc_fail(u->err, SC_EVERIFY, "paths %s: %s: %s", u->cfg->name, u->archive,
                         reason(a));
            break;
        }
        if ((rc = check_entry(u, e)) != 0)
            break;
    }
    archive_read_free(a);
    if (rc == 0 && u->existing > 0 && !u->force)
        rc = sc_fail(u->err, SC_EUSAGE,
                     "paths %s: %llu file(s) exist already (first: %s); --force overwrites "
                     "them",
                     u->cfg->name, (unsigned long long)u->existing, u->first_existing);
    return rc;
}

static int copy_entry_data(struct unpack *u, struct archive *in, struct archive *out,
                           const char *name)
{
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t offset;
        int r = archive_read_data_block(in, &buf, &size, &offset);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return sc_fail(u->err, SC_EVERIFY, "paths %s: %s: %s", u->cfg->name, name, reason(in));
        if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_WARN)
            return sc_fail(u->err, SC_ESTAGING, "paths %s: %s: %s", u->cfg->name, name,
                           reason(out));
    }
}

static int extract_entries(struct unpack *u, struct archive *in, struct archive *out,
                           uint64_t *done)
{
    struct archive_entry *e;
    for (;;) {
        if (sc_stop_requested)
            return sc_fail(u->err, SC_EINTR, "paths %s: interrupted", u->cfg->name);
        int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return sc_fail(u->err, SC_EVERIFY, "paths %s: %s", u->cfg->name, reason(in));
        char *name = xstrdup(archive_entry_pathname(e));
        int rc = 0;
        r = archive_write_header(out, e);
        if (r < ARCHIVE_WARN)
            rc = sc_fail(u->err, SC_EVERIFY, "paths %s: %s: refused: %s", u->cfg->name, name,
                         reason(out));
        else if (r == ARCHIVE_WARN)
            log_warn("paths %s: %s: %s", u->cfg->name, name, reason(out));
        if (rc == 0 && archive_entry_size(e) > 0)
            rc = copy_entry_data(u, in, out, name);
        if (rc == 0 && archive_write_finish_entry(out) < ARCHIVE_WARN)
            rc = sc_fail(u->err, SC_ESTAGING, "paths %s: %s: %s", u->cfg->name, name, reason(out));
        free(name);
        if (rc != 0)
            return rc;
        (*done)++;
    }
}

/* The names are relative: libarchive resolves them (and its security
 * checks) from the working directory, so extraction runs in root. */
static int extract_archive(struct unpack *u, uint64_t *done)
{
    int flags = EXTRACT_FLAGS | (geteuid() == 0 ? ARCHIVE_EXTRACT_OWNER : 0);
    struct archive *in = open_archive(u);
    if (in == NULL)
        return u->err->code;
    struct archive *out = archive_write_disk_new();
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (out == NULL || archive_write_disk_set_options(out, flags) != ARCHIVE_OK ||
        archive_write_disk_set_standard_lookup(out) != ARCHIVE_OK)
        rc = sc_fail(u->err, SC_EFAIL, "paths %s: cannot set up extraction", u->cfg->name);
    else if (cwd < 0)
        rc = sc_fail_errno(u->err, SC_EFAIL, "cannot open the working directory");
    else if (chdir(u->root) != 0)
        rc = sc_fail_errno(u->err, SC_ESTAGING, "paths %s: cannot enter %s", u->cfg->name, u->root);
    if (rc == 0)
        rc = extract_entries(u, in, out, done);
    /* close applies directory modes and times, deferred until now */
    if (out != NULL && archive_write_close(out) != ARCHIVE_OK && rc == 0)
        rc = sc_fail(u->err, SC_ESTAGING, "paths %s: %s", u->cfg->name, reason(out));
    if (cwd >= 0 && fchdir(cwd) != 0 && rc == 0)
        rc = sc_fail_errno(u->err, SC_EFAIL, "cannot return to the working directory");
    if (cwd >= 0)
        close(cwd);
    if (out != NULL)
        archive_write_free(out);
    archive_read_free(in);
    return rc;
}

static char *archive_of(const char *setdir, const struct source_cfg *src, json_t *entry)
{
    const char *rel = json_string_value(json_object_get(entry, "archive"));
    if (rel != NULL && unsafe_name(rel) == NULL && strstr(rel, "/../") == NULL)
        return path_join(setdir, rel);
    char *fallback = xasprintf("paths/%s.tar", src->name);
    char *path = path_join(setdir, fallback);
    free(fallback);
    return path;
}

static int paths_restore(const struct source_cfg *src, const char *setdir, json_t *entry,
                         const char *into, bool force, sc_err *err)
{
    struct unpack u = {.cfg = src, .err = err, .root = into ? into : "/", .force = force};
    u.archive = archive_of(setdir, src, entry);
    u.links = json_object();
    int rc = 0;
    if (into != NULL)
        rc = fs_mkdir_p(into, 0700, err);
    if (rc == 0)
        rc = check_archive(&u);
    uint64_t done = 0;
    if (rc == 0)
        rc = extract_archive(&u, &done);
    json_t *want = json_object_get(entry, "entries");
    if (rc == 0 && json_is_integer(want) && (json_int_t)done != json_integer_value(want))
        rc = sc_fail(err, SC_EVERIFY, "paths %s: extracted %llu entries, the manifest says %lld",
                     src->name, (unsigned long long)done, (long long)json_integer_value(want));
    if (rc == 0) {
        log_info("paths %s: %llu entries restored under %s%s", src->name, (unsigned long long)done,
                 u.root, u.existing ? " (existing files overwritten)" : "");
        json_object_set_new(entry, "restored_to", json_string(u.root));
    }
    json_decref(u.links);
    free(u.first_existing);
    free(u.archive);
    return rc;
}

const struct source_ops source_paths = {
    .kind = "paths",
    .keys = paths_keys,
    .validate = paths_validate,
    .stage = paths_stage,
    .restore = paths_restore,
};
