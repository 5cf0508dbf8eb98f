/* restore --apply of a [paths NAME] source.
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
        sc_fail(u->err, SC_EVERIFY, "paths %s: %s: %s", u->cfg->name, u->archive, pa_reason(a));
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
                         pa_reason(a));
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
            return sc_fail(u->err, SC_EVERIFY, "paths %s: %s: %s", u->cfg->name, name,
                           pa_reason(in));
        if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_WARN)
            return sc_fail(u->err, SC_ESTAGING, "paths %s: %s: %s", u->cfg->name, name,
                           pa_reason(out));
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
            return sc_fail(u->err, SC_EVERIFY, "paths %s: %s", u->cfg->name, pa_reason(in));
        char *name = xstrdup(archive_entry_pathname(e));
        int rc = 0;
        r = archive_write_header(out, e);
        if (r < ARCHIVE_WARN)
            rc = sc_fail(u->err, SC_EVERIFY, "paths %s: %s: refused: %s", u->cfg->name, name,
                         pa_reason(out));
        else if (r == ARCHIVE_WARN)
            log_warn("paths %s: %s: %s", u->cfg->name, name, pa_reason(out));
        if (rc == 0 && archive_entry_size(e) > 0)
            rc = copy_entry_data(u, in, out, name);
        if (rc == 0 && archive_write_finish_entry(out) < ARCHIVE_WARN)
            rc = sc_fail(u->err, SC_ESTAGING, "paths %s: %s: %s", u->cfg->name, name,
                         pa_reason(out));
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
        rc = sc_fail(u->err, SC_ESTAGING, "paths %s: %s", u->cfg->name, pa_reason(out));
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

int paths_restore(const struct source_cfg *src, const char *setdir, json_t *entry, const char *into,
                  bool force, sc_err *err)
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
