/* The archive of a [paths NAME] source: a pax tar written by libarchive
 * straight through the set's sink, so it is hashed (and sealed) as it is
 * written; entries named as GNU tar names them (paths.c says how). */
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

#define PROGRESS_EVERY_MS 250
#include "../source.h"

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
const char *pa_reason(struct archive *a)
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
                   path, pa_reason(w->out));
}

static int fail_read(struct walk *w, const char *path)
{
    int e = archive_errno(w->disk);
    if (e > 0 && strstr(pa_reason(w->disk), strerror(e)) == NULL)
        return sc_fail(w->err, SC_ESOURCE, "paths %s: %s: %s: %s", w->cfg->name, path,
                       pa_reason(w->disk), strerror(e));
    return sc_fail(w->err, SC_ESOURCE, "paths %s: %s: %s", w->cfg->name, path, pa_reason(w->disk));
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
        log_debug("paths %s: %s", w->cfg->name, pa_reason(w->out));
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
        warn(w, "%s: %s", path, pa_reason(w->out));
    } else if (r == ARCHIVE_FAILED) {
        rc = sc_fail(w->err, SC_ESOURCE, "paths %s: %s: cannot archive it: %s", w->cfg->name, path,
                     pa_reason(w->out));
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
                 pa_reason(w->disk));
        } else if (r == ARCHIVE_FAILED && archive_errno(w->disk) == ENOENT) {
            /* Deleted between the directory listing and its lstat (an
             * editor's temporary file): nothing to keep, as with tar. */
            warn(w, "%s", pa_reason(w->disk));
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
        if (pa_already_covered(paths, i))
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

int paths_stage(const struct source_cfg *src, struct set *set, json_t *entry, sc_err *err)
{
    struct walk w = {.cfg = src, .entry = entry, .err = err};
    struct strvec paths = {0};
    char *relpath = xasprintf("paths/%s.tar", src->name);
    json_t *missing = json_array();
    int rc = pa_collect_paths(src, &paths, err);
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
