#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    /* "/" + "etc/x" is "/etc/x", not "//etc/x" (messages show these). */
    while (la > 0 && a[la - 1] == '/')
        la--;
    while (*b == '/')
        b++;
    return xasprintf("%.*s/%s", (int)la, a, b);
}

int fs_mkdir_p(const char *path, mode_t mode, sc_err *err)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            rc = sc_fail_errno(err, SC_ESTAGING, "cannot create directory %s", p);
            break;
        }
        *s = saved;
        if (saved == '\0')
            break;
    }
    free(p);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    return (rc != 0 && errno != ENOENT) ? -1 : 0;
}

int fs_rm_rf(const char *path)
{
    if (!fs_exists(path))
        return 0;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int fs_fsync_dir(const char *path, sc_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sc_fail_errno(err, SC_ESTAGING, "cannot open directory %s", path);
    int rc = 0;
    if (fsync(fd) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot fsync directory %s", path);
    close(fd);
    return rc;
}

int fs_read_file(const char *path, size_t max, char **buf, size_t *len, int code, sc_err *err)
{
    *buf = NULL;
    *len = 0;
    /* O_NONBLOCK: a FIFO must not hang the open; only regular files are read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return sc_fail_errno(err, code, "cannot read %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sc_fail(err, code, "cannot read %s: not a regular file", path);
    }
    size_t cap = 4096, n = 0;
    char *b = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                close(fd);
                free(b);
                return sc_fail(err, code, "%s: larger than %zu bytes", path, max);
            }
            cap = cap * 2 > max ? max : cap * 2;
            b = xrealloc(b, cap + 1);
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int rc = sc_fail_errno(err, code, "cannot read %s", path);
            close(fd);
            free(b);
            return rc;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

int fs_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, sc_err *err)
{
    char *tmp = xasprintf("%s.tmp-XXXXXX", path);
    char *dir = dir_of(path);
    int rc = 0;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot create %s", tmp);
        goto out;
    }
    if (fchmod(fd, mode) != 0 || fs_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", path);
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0) {
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", path);
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot rename %s", tmp);
        unlink(tmp);
        goto out;
    }
    rc = fs_fsync_dir(dir, err);
out:
    free(tmp);
    free(dir);
    return rc;
}

bool fs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int fs_check_private(const char *path, const char *what, sc_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return sc_fail_errno(err, SC_ECONFIG, "%s %s", what, path);
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return sc_fail(err, SC_ECONFIG,
                       "%s %s is accessible by group or others (mode %04o); chmod 600 it", what,
                       path, (unsigned)(st.st_mode & 07777));
    return 0;
}

/* nftw has no context argument: the sum of the one walk in progress. */
static unsigned long long tree_sum;

static int add_file_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        tree_sum += (unsigned long long)st->st_size;
    return 0;
}

int fs_check_private_key(const char *path, const char *kind, const char *name, const char *key,
                         sc_err *err)
{
    if (path == NULL)
        return 0;
    char what[300];
    snprintf(what, sizeof what, "%s %s: %s", kind, name, key);
    return fs_check_private(path, what, err);
}

/* A password file is one line; anything longer is not a password file. */
#define SECRET_LINE_MAX 4096

int fs_read_secret_line(const char *path, const char *what, char **out, sc_err *err)
{
    *out = NULL;
    char *buf;
    size_t len;
    if (fs_read_file(path, SECRET_LINE_MAX, &buf, &len, SC_ECONFIG, err) != 0)
        return err->code;
    /* One line: the trailing newline an editor adds is not part of it. */
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    if (len == 0 || strlen(buf) != len || strchr(buf, '\n') != NULL) {
        fs_free_secret(buf);
        return sc_fail(err, SC_ECONFIG, "%s %s must hold the password on one line", what, path);
    }
    *out = buf;
    return 0;
}

void fs_free_secret(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

unsigned long long fs_tree_bytes(const char *path)
{
    tree_sum = 0;
    if (nftw(path, add_file_size, 16, FTW_PHYS) != 0)
        return 0;
    return tree_sum;
}
