/* The paths-file parser (pure: bytes in, list out), reading a paths file,
 * and the [paths NAME] source that archives the listed paths into a pax
 * tar through a sink. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/core/fs.h"
#include "../../src/core/log.h"
#include "../../src/core/spawn.h"
#include "../../src/core/xalloc.h"
#include "../../src/source/paths/pathlist.h"
#include "../../src/source/source.h"
#include "../../src/stage/set.h"
#include "../../src/stage/hashfile.h"
#include "../../src/stage/sink.h"
#include "../../src/stage/manifest.h"

/* ---- the parser ----------------------------------------------------------- */

/* Parse text (explicit length, so NULs can be tested) and compare with the
 * expected paths, NULL-terminated. */
static void expect_paths(const char *data, size_t len, const char *const *want)
{
    struct strvec out = {0};
    sc_err err = {0};
    if (pathlist_parse(data, len, &out, "paths.txt", &err) != 0)
        fail_msg("parse failed: %s", err.msg);
    size_t n = 0;
    for (; want[n]; n++) {
        if (n >= out.n)
            fail_msg("only %zu paths, expected '%s' next", out.n, want[n]);
        assert_string_equal(out.v[n], want[n]);
    }
    assert_int_equal(out.n, n);
    strvec_free(&out);
}

#define EXPECT(text, ...)                                                                          \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__, NULL};                                           \
        expect_paths(text, sizeof(text) - 1, want_);                                               \
    } while (0)

#define EXPECT_NONE(text)                                                                          \
    do {                                                                                           \
        const char *const want_[] = {NULL};                                                        \
        expect_paths(text, sizeof(text) - 1, want_);                                               \
    } while (0)

static void test_one_path_a_line(void **state)
{
    (void)state;
    EXPECT("/data/.env\n/data/docker-compose.yml\n", "/data/.env", "/data/docker-compose.yml");
}

static void test_comments(void **state)
{
    (void)state;
    EXPECT("# header\n/a\n   # indented comment\n\t#tab comment\n/b\n", "/a", "/b");
}

static void test_hash_inside_a_path_is_not_a_comment(void **state)
{
    (void)state;
    /* No inline comments, as in the POC: both are literal paths. */
    EXPECT("/data/file#1.txt\n/data/x # note\n", "/data/file#1.txt", "/data/x # note");
}

static void test_blank_lines(void **state)
{
    (void)state;
    EXPECT("\n\n/a\n   \n\t\n\n/b\n\n", "/a", "/b");
}

static void test_whitespace_trimmed(void **state)
{
    (void)state;
    EXPECT("  /a  \n\t/b\t\n \t /c \t \n", "/a", "/b", "/c");
}

static void test_crlf(void **state)
{
    (void)state;
    EXPECT("/a\r\n/b\r\n\r\n# c\r\n/c", "/a", "/b", "/c");
}

static void test_spaces_inside_kept(void **state)
{
    (void)state;
    /* The POC's xargs collapsed inner runs of spaces and failed on quotes. */
    EXPECT("/data/my file.txt\n  /x  y  \n/it's \"quoted\"\n", "/data/my file.txt", "/x  y",
           "/it's \"quoted\"");
}

static void test_no_trailing_newline(void **state)
{
    (void)state;
    EXPECT("/a\n/b", "/a", "/b");
    EXPECT("/only", "/only");
}

static void test_empty_file(void **state)
{
    (void)state;
    EXPECT_NONE("");
    EXPECT_NONE("\n");
    EXPECT_NONE("# only comments\n\n   # and blanks\n");
}

static void test_byte_order_mark_ignored(void **state)
{
    (void)state;
    EXPECT("\xEF\xBB\xBF/a\n/b\n", "/a", "/b");
}

static void test_nul_byte_rejected(void **state)
{
    (void)state;
    static const char data[] = "/a\n# fine\n/b\0c\n/d\n";
    struct strvec out = {0};
    strvec_push(&out, "/kept");
    sc_err err = {0};
    assert_int_equal(pathlist_parse(data, sizeof data - 1, &out, "list.txt", &err), SC_ESOURCE);
    assert_int_equal(err.code, SC_ESOURCE);
    assert_non_null(strstr(err.msg, "list.txt: line 3"));
    assert_non_null(strstr(err.msg, "NUL"));
    /* A failure leaves what the caller had, and nothing more. */
    assert_int_equal(out.n, 1);
    assert_string_equal(out.v[0], "/kept");
    strvec_free(&out);
}

static void test_nul_in_comment_rejected(void **state)
{
    (void)state;
    static const char data[] = "# a\0b\n/a\n";
    struct strvec out = {0};
    sc_err err = {0};
    assert_int_equal(pathlist_parse(data, sizeof data - 1, &out, "l", &err), SC_ESOURCE);
    assert_non_null(strstr(err.msg, "line 1"));
    assert_int_equal(out.n, 0);
}

static void test_very_long_lines(void **state)
{
    (void)state;
    /* The longest path accepted, then one byte more (line 2). */
    size_t len = PATHLIST_MAX_PATH;
    char *data = xmalloc(2 * (len + 2) + 1);
    data[0] = '/';
    memset(data + 1, 'a', len - 1);
    data[len] = '\n';
    struct strvec out = {0};
    sc_err err = {0};
    assert_int_equal(pathlist_parse(data, len + 1, &out, "l", &err), 0);
    assert_int_equal(out.n, 1);
    assert_int_equal(strlen(out.v[0]), len);
    memcpy(data + len + 1, data, len);
    data[2 * len + 1] = 'b';
    data[2 * len + 2] = '\n';
    assert_int_equal(pathlist_parse(data, 2 * len + 3, &out, "l", &err), SC_ESOURCE);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_int_equal(out.n, 1);
    strvec_free(&out);
    free(data);

    /* A long comment is only a comment. */
    size_t clen = 200000;
    char *comment = xmalloc(clen + 8);
    memset(comment, 'x', clen);
    comment[0] = '#';
    memcpy(comment + clen, "\n/z\n", 5);
    assert_int_equal(pathlist_parse(comment, clen + 4, &out, "l", &err), 0);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.v[0], "/z");
    strvec_free(&out);
    free(comment);
}

/* ---- reading the file --------------------------------------------------- */

static char base[1024];
static char staging[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(base, sizeof base, "%s/sc-paths-XXXXXX", tmp);
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(staging, sizeof staging, "%s/staging", base);
    sc_err err = {0};
    return staging_prepare(staging, &err);
}

static int teardown(void **state)
{
    (void)state;
    return fs_rm_rf(base);
}

static char *write_file(const char *dir, const char *name, const char *text)
{
    char *path = path_join(dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, 0640), 0); /* whatever the umask */
    assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
    assert_int_equal(close(fd), 0);
    return path;
}

static void test_read_file(void **state)
{
    (void)state;
    char *list = write_file(base, "paths.txt", "# config\n/etc/hostname\r\n\n /data/a b \n");
    struct strvec out = {0};
    sc_err err = {0};
    assert_int_equal(pathlist_read_file(list, &out, &err), 0);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.v[0], "/etc/hostname");
    assert_string_equal(out.v[1], "/data/a b");
    strvec_free(&out);
    free(list);
}

static void test_read_missing_file(void **state)
{
    (void)state;
    char *list = path_join(base, "nope.txt");
    struct strvec out = {0};
    sc_err err = {0};
    assert_int_equal(pathlist_read_file(list, &out, &err), SC_ESOURCE);
    assert_non_null(strstr(err.msg, list));
    assert_non_null(strstr(err.msg, "No such file"));
    free(list);
}

static void test_read_too_large_file(void **state)
{
    (void)state;
    char *list = path_join(base, "big.txt");
    int fd = open(list, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, PATHLIST_MAX_FILE + 1), 0);
    close(fd);
    struct strvec out = {0};
    sc_err err = {0};
    assert_int_equal(pathlist_read_file(list, &out, &err), SC_ESOURCE);
    assert_non_null(strstr(err.msg, list));
    free(list);
}

/* ---- the paths source ----------------------------------------------------- */

static struct source_cfg paths_cfg(void)
{
    struct source_cfg c = {0};
    c.kind = (char *)"paths";
    c.name = (char *)"config";
    c.def = &source_paths.cfg;
    return c;
}

/* The archive's entries as "name" (files, dirs), "name -> target"
 * (symlinks) or "name => target" (hard links), one a line, plus the total of
 * the file data. */
static char *list_tar(const char *setdir, uint64_t *data_bytes)
{
    char *tar = xasprintf("%s/paths/config.tar", setdir);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_filename(a, tar, 10240), ARCHIVE_OK);
    size_t cap = 4096, len = 0;
    char *out = xcalloc(1, cap);
    *data_bytes = 0;
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        char line[PATH_MAX * 2 + 8];
        if (archive_entry_symlink(e))
            snprintf(line, sizeof line, "%s -> %s\n", archive_entry_pathname(e),
                     archive_entry_symlink(e));
        else if (archive_entry_hardlink(e))
            snprintf(line, sizeof line, "%s => %s\n", archive_entry_pathname(e),
                     archive_entry_hardlink(e));
        else
            snprintf(line, sizeof line, "%s\n", archive_entry_pathname(e));
        if (len + strlen(line) + 1 > cap) {
            cap = 2 * (len + strlen(line) + 1);
            out = xrealloc(out, cap);
        }
        memcpy(out + len, line, strlen(line) + 1);
        len += strlen(line);
        if (archive_entry_filetype(e) == AE_IFREG && archive_entry_hardlink(e) == NULL)
            *data_bytes += (uint64_t)archive_entry_size(e);
    }
    archive_read_free(a);
    free(tar);
    return out;
}

/* Entry name of an absolute path: without its leading '/'. */
static char *entry_name(const char *dir, const char *name)
{
    char *p = name ? path_join(dir, name) : xstrdup(dir);
    char *n = xstrdup(p + 1);
    free(p);
    return n;
}

static void assert_listed(const char *listing, const char *dir, const char *name,
                          const char *suffix)
{
    char *n = entry_name(dir, name);
    char *line = xasprintf("%s%s\n", n, suffix);
    if (strstr(listing, line) == NULL)
        fail_msg("'%s' not in the archive:\n%s", line, listing);
    free(line);
    free(n);
}

/* base/tree: a hidden file, a name with spaces, a subdirectory, a symlink
 * and a hard link. */
static char *make_tree(void)
{
    char *tree = path_join(base, "tree");
    assert_int_equal(mkdir(tree, 0750), 0);
    free(write_file(tree, ".env", "SECRET=1\n"));
    free(write_file(tree, "a file.txt", "hello world\n"));
    char *sub = path_join(tree, "sub");
    assert_int_equal(mkdir(sub, 0700), 0);
    char *deep = write_file(sub, "deep.conf", "x = 1\n");
    char *sym = path_join(tree, "link");
    assert_int_equal(symlink("sub/deep.conf", sym), 0);
    char *hard = path_join(tree, "hard.conf");
    assert_int_equal(link(deep, hard), 0);
    free(sub);
    free(deep);
    free(sym);
    free(hard);
    return tree;
}

static void test_archive_a_tree(void **state)
{
    (void)state;
    char *tree = make_tree();
    struct source_cfg c = paths_cfg();
    strvec_push(&c.paths, tree);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    if (tu_stage_one(staging, &c, &setdir, &e, &err) != 0)
        fail_msg("stage: %s", err.msg);
    uint64_t bytes;
    char *listing = list_tar(setdir, &bytes);
    assert_listed(listing, tree, NULL, "/"); /* directories end in '/', as GNU tar's do */
    assert_listed(listing, tree, ".env", "");
    assert_listed(listing, tree, "a file.txt", "");
    assert_listed(listing, tree, "sub", "/");
    assert_listed(listing, tree, "link", " -> sub/deep.conf");
    /* One of the two names carries the data, the other links to it. */
    char *deep = entry_name(tree, "sub/deep.conf"), *hard = entry_name(tree, "hard.conf");
    char *l1 = xasprintf("%s => %s\n", deep, hard), *l2 = xasprintf("%s => %s\n", hard, deep);
    assert_true(strstr(listing, l1) != NULL || strstr(listing, l2) != NULL);
    free(deep);
    free(hard);
    free(l1);
    free(l2);
    assert_null(strstr(listing, "\n/")); /* no absolute names */
    assert_false(listing[0] == '/');

    assert_string_equal(json_string_value(json_object_get(e, "consistency")), "file-copy");
    assert_string_equal(json_string_value(json_object_get(e, "archive")), "paths/config.tar");
    assert_string_equal(json_string_value(json_object_get(e, "format")), "pax");
    assert_int_equal(json_integer_value(json_object_get(e, "entries")), 7);
    assert_int_equal(json_integer_value(json_object_get(e, "bytes")), 9 + 12 + 6);
    assert_int_equal(bytes, 9 + 12 + 6);
    json_t *paths = json_object_get(e, "paths");
    assert_int_equal(json_array_size(paths), 1);
    assert_string_equal(json_string_value(json_array_get(paths, 0)), tree);
    assert_null(json_object_get(e, "missing"));
    assert_int_equal(json_array_size(json_object_get(e, "warnings")), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(e, "files"), 0)),
                        "paths/config.tar");

    free(listing);
    json_decref(e);
    free(setdir);
    strvec_free(&c.paths);
    free(tree);
}

/* Modes, owners and mtimes survive; the archive's bytes do not change
 * between two runs over an unchanged tree (no atime/ctime records). */
static void test_metadata_and_stable_bytes(void **state)
{
    (void)state;
    char *tree = make_tree();
    char *env = path_join(tree, ".env");
    struct timespec times[2] = {{1000000000, 0}, {1234567890, 0}};
    assert_int_equal(utimensat(AT_FDCWD, env, times, 0), 0);
    struct source_cfg c = paths_cfg();
    strvec_push(&c.paths, tree);
    char *set1, *set2;
    json_t *e1, *e2;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &set1, &e1, &err), 0);
    assert_int_equal(tu_stage_one(staging, &c, &set2, &e2, &err), 0);
    char h1[129], h2[129];
    char *t1 = xasprintf("%s/paths/config.tar", set1), *t2 = xasprintf("%s/paths/config.tar", set2);
    assert_int_equal(hash_file(t1, h1, NULL, &err), 0);
    assert_int_equal(hash_file(t2, h2, NULL, &err), 0);
    assert_string_equal(h1, h2);

    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_filename(a, t1, 10240), ARCHIVE_OK);
    struct archive_entry *ae;
    char *want = entry_name(tree, ".env");
    bool seen = false;
    while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
        if (strcmp(archive_entry_pathname(ae), want) != 0)
            continue;
        seen = true;
        assert_int_equal(archive_entry_perm(ae), 0640);
        assert_int_equal(archive_entry_mtime(ae), 1234567890);
        assert_int_equal(archive_entry_uid(ae), getuid());
        assert_non_null(archive_entry_uname(ae));
    }
    assert_true(seen);
    archive_read_free(a);
    free(want);
    free(t1);
    free(t2);
    json_decref(e1);
    json_decref(e2);
    free(set1);
    free(set2);
    free(env);
    strvec_free(&c.paths);
    free(tree);
}

static void test_from_file_with_spaces_and_overlaps(void **state)
{
    (void)state;
    char *tree = make_tree();
    /* The tree twice, a file inside it, and a trailing slash: each entry
     * once in the archive. */
    char *text = xasprintf("# what to keep\n%s/a file.txt\r\n\n  %s/  \n%s\n", tree, tree, tree);
    char *list = write_file(base, "paths.txt", text);
    struct source_cfg c = paths_cfg();
    c.from_file = list;
    strvec_push(&c.paths, tree);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    if (tu_stage_one(staging, &c, &setdir, &e, &err) != 0)
        fail_msg("stage: %s", err.msg);
    assert_int_equal(json_integer_value(json_object_get(e, "entries")), 7);
    assert_int_equal(json_array_size(json_object_get(e, "paths")), 4);
    uint64_t bytes;
    char *listing = list_tar(setdir, &bytes);
    char *name = entry_name(tree, "a file.txt");
    char *first = strstr(listing, name);
    assert_non_null(first);
    assert_null(strstr(first + 1, name));
    free(name);
    free(listing);
    json_decref(e);
    free(setdir);
    strvec_free(&c.paths);
    free(list);
    free(text);
    free(tree);
}

static void test_missing_path_fails(void **state)
{
    (void)state;
    char *missing = path_join(base, "no such dir");
    struct source_cfg c = paths_cfg();
    strvec_push(&c.paths, missing);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), SC_ESOURCE);
    char *want = xasprintf("paths config: %s: No such file or directory", missing);
    assert_string_equal(err.msg, want);
    free(want);
    strvec_free(&c.paths);
    free(missing);
}

static void test_missing_ok(void **state)
{
    (void)state;
    char *missing = path_join(base, "gone.conf");
    char *there = write_file(base, "there.conf", "x\n");
    struct source_cfg c = paths_cfg();
    c.missing_ok = true;
    strvec_push(&c.paths, missing);
    strvec_push(&c.paths, there);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), 0);
    json_t *m = json_object_get(e, "missing");
    assert_int_equal(json_array_size(m), 1);
    assert_string_equal(json_string_value(json_array_get(m, 0)), missing);
    assert_int_equal(json_array_size(json_object_get(e, "warnings")), 1);
    assert_int_equal(json_integer_value(json_object_get(e, "entries")), 1);
    json_decref(e);
    free(setdir);
    strvec_free(&c.paths);
    free(missing);
    free(there);
}

static void test_missing_from_file_fails(void **state)
{
    (void)state;
    struct source_cfg c = paths_cfg();
    c.from_file = path_join(base, "paths.txt");
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), SC_ESOURCE);
    assert_non_null(strstr(err.msg, c.from_file));
    free(c.from_file);
}

/* A relative line is relative to the list's own directory; ".." is
 * resolved in the name, so nothing in the archive climbs out. */
static void test_relative_and_dotdot_paths(void **state)
{
    (void)state;
    char *tree = make_tree();
    char *list = write_file(base, "paths.txt", "tree/.env\n");
    struct source_cfg c = paths_cfg();
    c.from_file = list;
    char *dotdot = xasprintf("%s/sub/../a file.txt", tree);
    strvec_push(&c.paths, dotdot);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    if (tu_stage_one(staging, &c, &setdir, &e, &err) != 0)
        fail_msg("stage: %s", err.msg);
    uint64_t bytes;
    char *listing = list_tar(setdir, &bytes);
    assert_listed(listing, tree, ".env", "");
    assert_listed(listing, tree, "a file.txt", "");
    assert_null(strstr(listing, ".."));
    assert_int_equal(json_integer_value(json_object_get(e, "entries")), 2);
    json_t *paths = json_object_get(e, "paths");
    char *want = path_join(tree, "a file.txt");
    assert_string_equal(json_string_value(json_array_get(paths, 0)), want);
    free(want);
    free(listing);
    json_decref(e);
    free(setdir);
    strvec_free(&c.paths);
    free(dotdot);
    free(list);
    free(tree);
}

static void test_empty_from_file_fails(void **state)
{
    (void)state;
    char *list = write_file(base, "paths.txt", "# nothing yet\n");
    struct source_cfg c = paths_cfg();
    c.from_file = list;
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), SC_ESOURCE);
    assert_non_null(strstr(err.msg, "lists no paths"));
    free(list);
}

static void test_symlink_listed_is_stored_as_link(void **state)
{
    (void)state;
    char *target = write_file(base, "real.yml", "services: {}\n");
    char *link = path_join(base, "compose.yml");
    assert_int_equal(symlink("real.yml", link), 0);
    struct source_cfg c = paths_cfg();
    strvec_push(&c.paths, link);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), 0);
    uint64_t bytes;
    char *listing = list_tar(setdir, &bytes);
    assert_listed(listing, link, NULL, " -> real.yml");
    assert_int_equal(bytes, 0);
    assert_int_equal(json_array_size(json_object_get(e, "warnings")), 1);
    free(listing);
    json_decref(e);
    free(setdir);
    strvec_free(&c.paths);
    free(link);
    free(target);
}

static void test_staging_dir_inside_a_listed_tree(void **state)
{
    (void)state;
    /* base holds the staging directory: archiving base must not archive
     * the set being built. */
    free(write_file(base, "keep.conf", "k\n"));
    struct source_cfg c = paths_cfg();
    strvec_push(&c.paths, base);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    if (tu_stage_one(staging, &c, &setdir, &e, &err) != 0)
        fail_msg("stage: %s", err.msg);
    uint64_t bytes;
    char *listing = list_tar(setdir, &bytes);
    assert_listed(listing, base, "keep.conf", "");
    assert_null(strstr(listing, "staging"));
    free(listing);
    json_decref(e);
    free(setdir);
    strvec_free(&c.paths);
}

/* End a forked child: free what it inherited (valgrind follows children
 * too), then _exit without running the parent's atexit handlers. */
static void child_exit(int code, char *a, char *b) __attribute__((noreturn));
static void child_exit(int code, char *a, char *b)
{
    free(a);
    free(b);
    _exit(code);
}

/* In a child process under a 64 KiB file size limit: 0 when staging path
 * fails with exit 5 naming the archive. No cmocka assertions here: a
 * failure would jump back into the parent's runner inside the child. */
static int stage_with_small_file_limit(const char *path)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {64 * 1024, 64 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 2;
    struct source_cfg c = paths_cfg();
    strvec_push(&c.paths, path);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    int rc = tu_stage_one(staging, &c, &setdir, &e, &err);
    strvec_free(&c.paths);
    if (rc != SC_ESTAGING || strstr(err.msg, "config.tar") == NULL) {
        fprintf(stderr, "rc %d: %s\n", rc, err.msg);
        return 1;
    }
    return 0;
}

/* A full disk, simulated with RLIMIT_FSIZE in a child process (the limit
 * must not touch the runner's own output): exit code 5 naming the archive. */
static void test_full_disk_is_a_staging_error(void **state)
{
    (void)state;
    char *big = path_join(base, "big.bin");
    int fd = open(big, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1024 * 1024), 0);
    close(fd);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_exit(stage_with_small_file_limit(big), big, NULL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    free(big);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* An unreadable file: mode 000 for a user; root reads anything on disk,
 * but not a write-only sysfs attribute. */
static void test_unreadable_file_is_a_source_error(void **state)
{
    (void)state;
    const char *unreadable = "/sys/bus/pci/rescan";
    char *secret = NULL;
    if (geteuid() != 0) {
        secret = write_file(base, "secret", "s\n");
        assert_int_equal(chmod(secret, 0), 0);
        unreadable = secret;
    }
    struct stat st;
    if (stat(unreadable, &st) != 0 || (st.st_mode & 0444) != 0)
        skip(); /* no such attribute here (only as root) */
    struct source_cfg c = paths_cfg();
    strvec_push(&c.paths, unreadable);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    assert_int_equal(tu_stage_one(staging, &c, &setdir, &e, &err), SC_ESOURCE);
    assert_non_null(strstr(err.msg, unreadable));
    assert_non_null(strstr(err.msg, "Permission denied"));
    strvec_free(&c.paths);
    free(secret);
}

/* SIGINT/SIGTERM set sc_stop_requested: the walk stops with exit 130. */
static void test_stop_request_interrupts(void **state)
{
    (void)state;
    char *tree = make_tree();
    struct source_cfg c = paths_cfg();
    strvec_push(&c.paths, tree);
    char *setdir;
    json_t *e;
    sc_err err = {0};
    sc_stop_requested = 1;
    int rc = tu_stage_one(staging, &c, &setdir, &e, &err);
    sc_stop_requested = 0;
    assert_int_equal(rc, SC_EINTR);
    strvec_free(&c.paths);
    free(tree);
}

static void test_validate(void **state)
{
    (void)state;
    struct source_cfg c = paths_cfg();
    c.line = 9;
    struct config_problems p = {0};
    assert_int_not_equal(source_paths.cfg.validate(&c, &p, "s.conf"), 0);
    assert_int_equal(p.msgs.n, 1);
    assert_non_null(strstr(p.msgs.v[0], "s.conf:9: [paths config]"));
    config_problems_free(&p);

    strvec_push(&c.paths, "relative/path");
    strvec_push(&c.paths, "/a/../b");
    strvec_push(&c.paths, "/fine/path");
    assert_int_not_equal(source_paths.cfg.validate(&c, &p, "s.conf"), 0);
    assert_int_equal(p.msgs.n, 1);
    assert_non_null(strstr(p.msgs.v[0], "'relative/path' must be an absolute path"));
    config_problems_free(&p);
    strvec_free(&c.paths);

    c.from_file = (char *)"/etc/stagecoach/paths.txt";
    assert_int_equal(source_paths.cfg.validate(&c, &p, "s.conf"), 0);
    assert_int_equal(p.msgs.n, 0);
}

int main(void)
{
    log_set_level(LOG_QUIET);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_path_a_line),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_hash_inside_a_path_is_not_a_comment),
        cmocka_unit_test(test_blank_lines),
        cmocka_unit_test(test_whitespace_trimmed),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_spaces_inside_kept),
        cmocka_unit_test(test_no_trailing_newline),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_byte_order_mark_ignored),
        cmocka_unit_test(test_nul_byte_rejected),
        cmocka_unit_test(test_nul_in_comment_rejected),
        cmocka_unit_test(test_very_long_lines),
        T(test_read_file),
        T(test_read_missing_file),
        T(test_read_too_large_file),
        T(test_archive_a_tree),
        T(test_metadata_and_stable_bytes),
        T(test_from_file_with_spaces_and_overlaps),
        T(test_missing_path_fails),
        T(test_missing_ok),
        T(test_missing_from_file_fails),
        T(test_relative_and_dotdot_paths),
        T(test_empty_from_file_fails),
        T(test_symlink_listed_is_stored_as_link),
        T(test_staging_dir_inside_a_listed_tree),
        T(test_full_disk_is_a_staging_error),
        T(test_unreadable_file_is_a_source_error),
        T(test_stop_request_interrupts),
        T(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
