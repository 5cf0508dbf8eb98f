/* Building, publishing, listing and verifying staging sets. The promise is
 * all or nothing: a set lives in .tmp-<id> until every byte is fsynced and
 * MANIFEST.json and B2SUMS describe it, then one rename publishes it. */
#include "set.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/clock.h"
#include "../core/fs.h"
#include "../core/log.h"
#include "../core/spawn.h"
#include "../core/xalloc.h"
#include "hashfile.h"

/* Now in UTC: compact for set ids (20261126T030000Z), ISO 8601 for humans. */
static void utc_now(char *buf, size_t n, bool compact)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (compact)
        strftime(buf, n, "%Y%m%dT%H%M%SZ", &tm);
    else
        strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A set id: 20261126T030000Z, optionally followed by -N. */
static bool is_set_id(const char *s)
{
    if (strlen(s) < 16)
        return false;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        bool ok = (i == 8) ? c == 'T' : (i == 15) ? c == 'Z' : (c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    if (s[16] == '\0')
        return true;
    if (s[16] != '-' || s[17] == '\0')
        return false;
    for (const char *p = s + 17; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

/* An exclusive flock on a scratch directory: its descriptor, -2 when
 * another process holds it, -1 when it cannot be opened. */
static int take_scratch_hold(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return errno == EWOULDBLOCK ? -2 : -1;
    }
    return fd;
}

int staging_prepare(const char *staging, sc_err *err)
{
    if (fs_mkdir_p(staging, 0700, err) != 0)
        return err->code;
    /* Private whatever the umask or whoever created it first. */
    if (chmod(staging, 0700) != 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot chmod %s", staging);
    char *sets = path_join(staging, "sets");
    int rc = fs_mkdir_p(sets, 0700, err);
    free(sets);
    if (rc != 0)
        return rc;
    DIR *d = opendir(staging);
    if (d == NULL)
        return sc_fail_errno(err, SC_ESTAGING, "cannot list %s", staging);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        /* .tmp-*: a set being built (only under the run lock, so any one
         * found here is a leftover); .verify-*: a snapshot read back;
         * .drill-*: a restore drill's scratch space. */
        bool scratch =
            strncmp(e->d_name, ".verify-", 8) == 0 || strncmp(e->d_name, ".drill-", 7) == 0;
        if (strncmp(e->d_name, ".tmp-", 5) != 0 && !scratch)
            continue;
        char *p = path_join(staging, e->d_name);
        /* verify --snapshot runs without the run lock: its scratch space
         * is held with an flock while it lives, and left alone then. */
        int held = scratch ? take_scratch_hold(p) : -1;
        if (held != -2) {
            log_info("removing %s, left by an interrupted run", p);
            if (fs_rm_rf(p) != 0)
                rc = sc_fail_errno(err, SC_ESTAGING, "cannot remove %s", p);
        }
        if (held >= 0)
            close(held);
        free(p);
    }
    closedir(d);
    return rc;
}

int scratch_create(const char *parent, const char *prefix, char **dir, int *fd, sc_err *err)
{
    *dir = NULL;
    *fd = -1;
    if (fs_mkdir_p(parent, 0700, err) != 0)
        return err->code;
    char *name = xasprintf("%sXXXXXX", prefix);
    char *tmpl = path_join(parent, name);
    free(name);
    if (mkdtemp(tmpl) == NULL) {
        int rc = sc_fail_errno(err, SC_ESTAGING, "cannot create %s", tmpl);
        free(tmpl);
        return rc;
    }
    /* Held from now on; a staging_prepare that removed it in the instant
     * before shows up as another inode at the path. */
    int h = take_scratch_hold(tmpl);
    struct stat a, b;
    if (h < 0 || fstat(h, &a) != 0 || stat(tmpl, &b) != 0 || a.st_ino != b.st_ino ||
        a.st_dev != b.st_dev) {
        int rc = sc_fail(err, SC_ESTAGING, "cannot hold scratch directory %s", tmpl);
        if (h >= 0)
            close(h);
        free(tmpl);
        return rc;
    }
    *dir = tmpl;
    *fd = h;
    return 0;
}

void scratch_remove(const char *dir, int fd)
{
    if (dir != NULL && fs_rm_rf(dir) != 0)
        log_warn("cannot remove %s: %s", dir, strerror(errno));
    if (fd >= 0)
        close(fd);
}

int set_create(struct set *s, const char *staging, sc_err *err)
{
    memset(s, 0, sizeof *s);
    /* libsodium picks its fastest BLAKE2b and ChaCha20 code here; without
     * it every hash runs the portable code. */
    if (sodium_init() < 0)
        return sc_fail(err, SC_EFAIL, "libsodium cannot be initialised");
    char base[20];
    utc_now(base, sizeof base, true);
    s->staging = xstrdup(staging);
    for (int n = 0; n < 100; n++) {
        if (n == 0)
            snprintf(s->id, sizeof s->id, "%s", base);
        else
            snprintf(s->id, sizeof s->id, "%s-%d", base, n);
        free(s->tmpdir);
        free(s->finaldir);
        char *tmpname = xasprintf(".tmp-%s", s->id);
        char *setsdir = path_join(staging, "sets");
        s->tmpdir = path_join(staging, tmpname);
        s->finaldir = path_join(setsdir, s->id);
        free(tmpname);
        free(setsdir);
        if (fs_exists(s->finaldir))
            continue;
        if (mkdir(s->tmpdir, 0700) == 0)
            break;
        if (errno != EEXIST)
            return sc_fail_errno(err, SC_ESTAGING, "cannot create %s", s->tmpdir);
    }
    char started[32], host[256] = "";
    utc_now(started, sizeof started, false);
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "unknown");
    s->manifest = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:[], s:[]}", "format", MANIFEST_FORMAT,
                            "tool", "stagecoach " SC_VERSION, "set", s->id, "host", host, "started",
                            started, "encrypted", 0, "sources", "files");
    return 0;
}

void set_use_key(struct set *s, struct crypto_key *key)
{
    crypto_key_free(s->key);
    s->key = key;
    if (key == NULL)
        return;
    char id[CRYPTO_KEY_ID_HEX];
    crypto_key_id_hex(key, id);
    json_object_set_new(s->manifest, "encrypted", json_true());
    json_object_set_new(s->manifest, "encryption",
                        json_pack("{s:s, s:s, s:s, s:i, s:s}", "format", CRYPTO_FORMAT, "mode",
                                  crypto_mode_name(key->mode), "key_id", id, "chunk_bytes",
                                  (int)CRYPTO_CHUNK, "suffix", CRYPTO_SUFFIX));
}

const struct crypto_key *set_key(const struct set *s)
{
    return s->key;
}

json_t *set_begin_source(struct set *s, const char *name, const char *kind)
{
    json_t *entry =
        json_pack("{s:s, s:s, s:[], s:[]}", "name", name, "kind", kind, "warnings", "files");
    json_array_append_new(json_object_get(s->manifest, "sources"), entry);
    s->cur_entry = entry;
    return entry;
}

char *set_file_path(struct set *s, const char *relpath, sc_err *err)
{
    char *path = path_join(s->tmpdir, relpath);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    int rc = fs_mkdir_p(path, 0700, err);
    *slash = '/';
    if (rc != 0) {
        free(path);
        return NULL;
    }
    return path;
}

static json_t *file_entry(struct set *s, const char *relpath, uint64_t bytes, const char *b2hex)
{
    json_t *f = json_pack(
        "{s:s, s:I, s:s, s:s?}", "path", relpath, "bytes", (json_int_t)bytes, "blake2b", b2hex,
        "source", s->cur_entry ? json_string_value(json_object_get(s->cur_entry, "name")) : NULL);
    json_array_append_new(json_object_get(s->manifest, "files"), f);
    if (s->cur_entry)
        json_array_append_new(json_object_get(s->cur_entry, "files"), json_string(relpath));
    return f;
}

void set_record_file(struct set *s, const char *relpath, uint64_t bytes, const char *b2hex)
{
    file_entry(s, relpath, bytes, b2hex);
}

void set_record_sealed_file(struct set *s, const char *relpath, uint64_t bytes, const char *b2hex,
                            const char *plain_relpath, uint64_t plain_bytes,
                            const char *plain_b2hex)
{
    json_t *f = file_entry(s, relpath, bytes, b2hex);
    json_object_set_new(f, "plaintext",
                        json_pack("{s:s, s:I, s:s}", "path", plain_relpath, "bytes",
                                  (json_int_t)plain_bytes, "blake2b", plain_b2hex));
}

/* Write a small file into the set through write+fsync, 0600. */
static int write_set_file(struct set *s, const char *name, const char *data, size_t len,
                          sc_err *err)
{
    char *path = path_join(s->tmpdir, name);
    int rc = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || fs_write_all(fd, data, len) != 0 || fsync(fd) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", path);
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", path);
    free(path);
    return rc;
}

static int write_b2sums(struct set *s, sc_err *err)
{
    char hex[129];
    char *mpath = path_join(s->tmpdir, MANIFEST_NAME);
    int rc = hash_file(mpath, hex, NULL, err);
    free(mpath);
    if (rc != 0)
        return rc;
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    size_t i;
    json_t *f;
    json_t *files = json_object_get(s->manifest, "files");
    json_array_foreach(files, i, f)
    {
        const char *p = json_string_value(json_object_get(f, "path"));
        const char *h = json_string_value(json_object_get(f, "blake2b"));
        size_t need = strlen(p) + strlen(h) + 4;
        if (len + need >= cap) {
            cap = (len + need) * 2;
            buf = xrealloc(buf, cap);
        }
        len += (size_t)snprintf(buf + len, cap - len, "%s  %s\n", h, p);
    }
    char *line = xasprintf("%s  %s\n", hex, MANIFEST_NAME);
    buf = xrealloc(buf, len + strlen(line) + 1);
    memcpy(buf + len, line, strlen(line) + 1);
    len += strlen(line);
    free(line);
    rc = write_set_file(s, B2SUMS_NAME, buf, len, err);
    free(buf);
    return rc;
}

static int sync_subdirs(struct set *s, sc_err *err)
{
    DIR *d = opendir(s->tmpdir);
    if (d == NULL)
        return sc_fail_errno(err, SC_ESTAGING, "cannot list %s", s->tmpdir);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || e->d_type != DT_DIR)
            continue;
        char *p = path_join(s->tmpdir, e->d_name);
        rc = fs_fsync_dir(p, err);
        free(p);
    }
    closedir(d);
    return rc ? rc : fs_fsync_dir(s->tmpdir, err);
}

int set_publish(struct set *s, sc_err *err)
{
    char finished[32];
    utc_now(finished, sizeof finished, false);
    json_object_set_new(s->manifest, "finished", json_string(finished));
    char *text = json_dumps(s->manifest, JSON_INDENT(2));
    if (text == NULL)
        return sc_fail(err, SC_ESTAGING, "cannot serialise the manifest");
    size_t tlen = strlen(text);
    text = xrealloc(text, tlen + 2);
    text[tlen++] = '\n';
    text[tlen] = '\0';
    int rc = write_set_file(s, MANIFEST_NAME, text, tlen, err);
    free(text);
    if (rc == 0)
        rc = write_b2sums(s, err);
    if (rc == 0)
        rc = sync_subdirs(s, err);
    if (rc != 0)
        return rc;
    if (rename(s->tmpdir, s->finaldir) != 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot publish %s", s->finaldir);
    s->published = true;
    char *sets = path_join(s->staging, "sets");
    rc = fs_fsync_dir(sets, err);
    free(sets);
    return rc;
}

void set_discard(struct set *s)
{
    if (!s->published && s->tmpdir != NULL && fs_rm_rf(s->tmpdir) != 0)
        log_warn("cannot remove %s: %s", s->tmpdir, strerror(errno));
    set_free(s);
}

void set_free(struct set *s)
{
    free(s->staging);
    free(s->tmpdir);
    free(s->finaldir);
    json_decref(s->manifest);
    crypto_key_free(s->key);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int set_list(const char *staging, char ***ids, size_t *n, sc_err *err)
{
    *ids = NULL;
    *n = 0;
    char *sets = path_join(staging, "sets");
    DIR *d = opendir(sets);
    if (d == NULL) {
        int rc = errno == ENOENT ? 0 : sc_fail_errno(err, SC_ESTAGING, "cannot list %s", sets);
        free(sets);
        return rc;
    }
    free(sets);
    struct dirent *e;
    size_t cap = 0;
    while ((e = readdir(d)) != NULL) {
        if (!is_set_id(e->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *ids = xrealloc(*ids, cap * sizeof **ids);
        }
        (*ids)[(*n)++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (*n > 1)
        qsort(*ids, *n, sizeof **ids, cmp_str);
    return 0;
}

void set_list_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

int set_resolve(const char *staging, const char *which, char **dir, char **id, sc_err *err)
{
    *dir = NULL;
    if (id)
        *id = NULL;
    char **ids;
    size_t n;
    if (set_list(staging, &ids, &n, err) != 0)
        return err->code;
    const char *found = NULL;
    if (which == NULL || strcmp(which, "latest") == 0)
        found = n ? ids[n - 1] : NULL;
    else
        for (size_t i = 0; i < n; i++)
            if (strcmp(ids[i], which) == 0)
                found = ids[i];
    int rc = 0;
    if (found == NULL) {
        rc = sc_fail(err, SC_EFAIL, "no staging set %s in %s/sets", which ? which : "latest",
                     staging);
    } else {
        char *sets = path_join(staging, "sets");
        *dir = path_join(sets, found);
        free(sets);
        if (id)
            *id = xstrdup(found);
    }
    set_list_free(ids, n);
    return rc;
}
