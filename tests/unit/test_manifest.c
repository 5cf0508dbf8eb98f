/* manifest_parse, b2sums_parse, manifest_path_ok and set_verify: good
 * input, every malformed case, traversal, NUL bytes, duplicates. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/fs.h"
#include "../../src/core/xalloc.h"
#include "../../src/stage/manifest.h"
#include "../../src/stage/set.h"
#include "../../src/stage/hashfile.h"
#include "../../src/stage/sink.h"

#define H1                                                                                         \
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"                             \
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H2                                                                                         \
    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"                             \
    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

/* ---- manifest_parse ---------------------------------------------------- */

static int parse_manifest(const char *text, json_t **m, sc_err *err)
{
    memset(err, 0, sizeof *err);
    return manifest_parse(text, strlen(text), m, err);
}

/* A manifest whose one file entry is the given JSON text. */
static char *manifest_with_entry(const char *entry)
{
    return xasprintf("{\"format\": \"stagecoach-set/1\", \"set\": \"20261126T030000Z\", "
                     "\"files\": [%s]}",
                     entry);
}

static void expect_manifest_rejected(const char *text)
{
    json_t *m = (json_t *)1;
    sc_err err;
    int rc = parse_manifest(text, &m, &err);
    if (rc != SC_EVERIFY)
        fail_msg("accepted (rc %d): %s", rc, text);
    assert_null(m);
    assert_int_equal(err.code, SC_EVERIFY);
    assert_true(strlen(err.msg) > 0);
}

static void expect_entry_rejected(const char *entry)
{
    char *text = manifest_with_entry(entry);
    expect_manifest_rejected(text);
    free(text);
}

static void test_manifest_good(void **state)
{
    (void)state;
    const char *text =
        "{\"format\": \"stagecoach-set/1\", \"set\": \"20261126T030000Z\",\n"
        " \"sources\": [{\"name\": \"app\", \"kind\": \"sqlite\"}],\n"
        " \"files\": [\n"
        "  {\"path\": \"sqlite/app.db\", \"bytes\": 4096, \"blake2b\": \"" H1 "\"},\n"
        "  {\"path\": \"paths/etc.tar\", \"bytes\": 0, \"blake2b\": \"" H2 "\"}\n"
        " ]}\n";
    json_t *m = NULL;
    sc_err err;
    assert_int_equal(parse_manifest(text, &m, &err), 0);
    assert_non_null(m);
    json_t *files = json_object_get(m, "files");
    assert_int_equal(json_array_size(files), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(files, 0), "path")),
                        "sqlite/app.db");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(files, 0), "bytes")), 4096);
    json_decref(m);

    /* an empty set is well-formed */
    assert_int_equal(parse_manifest("{\"format\":\"stagecoach-set/1\",\"files\":[]}", &m, &err), 0);
    json_decref(m);
}

static void test_manifest_malformed(void **state)
{
    (void)state;
    expect_manifest_rejected("");
    expect_manifest_rejected("not json");
    expect_manifest_rejected("{\"format\": \"stagecoach-set/1\", \"files\": [");
    expect_manifest_rejected("[]");
    expect_manifest_rejected("\"stagecoach-set/1\"");
    expect_manifest_rejected("{\"files\": []}");
    expect_manifest_rejected("{\"format\": \"stagecoach-set/2\", \"files\": []}");
    expect_manifest_rejected("{\"format\": 1, \"files\": []}");
    expect_manifest_rejected("{\"format\": \"stagecoach-set/1\"}");
    expect_manifest_rejected("{\"format\": \"stagecoach-set/1\", \"files\": {}}");
    expect_manifest_rejected("{\"format\": \"stagecoach-set/1\", \"files\": null}");
    /* text after the document */
    expect_manifest_rejected("{\"format\": \"stagecoach-set/1\", \"files\": []} trailing");
    /* a key twice */
    expect_manifest_rejected("{\"format\": \"stagecoach-set/1\", \"format\": \"stagecoach-set/1\", "
                             "\"files\": []}");
}

static void test_manifest_bad_entries(void **state)
{
    (void)state;
    expect_entry_rejected("1");
    expect_entry_rejected("\"sqlite/app.db\"");
    expect_entry_rejected("{}");
    /* path */
    expect_entry_rejected("{\"bytes\": 1, \"blake2b\": \"" H1 "\"}");
    expect_entry_rejected("{\"path\": 5, \"bytes\": 1, \"blake2b\": \"" H1 "\"}");
    expect_entry_rejected("{\"path\": \"\", \"bytes\": 1, \"blake2b\": \"" H1 "\"}");
    /* hash */
    expect_entry_rejected("{\"path\": \"a\", \"bytes\": 1}");
    expect_entry_rejected("{\"path\": \"a\", \"bytes\": 1, \"blake2b\": \"abc\"}");
    expect_entry_rejected("{\"path\": \"a\", \"bytes\": 1, \"blake2b\": \"" H1 "0\"}");
    expect_entry_rejected("{\"path\": \"a\", \"bytes\": 1, \"blake2b\": \"" H1 "\"}" /* ok */
                          ", {\"path\": \"b\", \"bytes\": 1, \"blake2b\": 7}");
    char upper[] = H1;
    upper[10] = 'A';
    char *e = xasprintf("{\"path\": \"a\", \"bytes\": 1, \"blake2b\": \"%s\"}", upper);
    expect_entry_rejected(e);
    free(e);
    char nonhex[] = H1;
    nonhex[127] = 'g';
    e = xasprintf("{\"path\": \"a\", \"bytes\": 1, \"blake2b\": \"%s\"}", nonhex);
    expect_entry_rejected(e);
    free(e);
    /* bytes */
    expect_entry_rejected("{\"path\": \"a\", \"blake2b\": \"" H1 "\"}");
    expect_entry_rejected("{\"path\": \"a\", \"bytes\": -1, \"blake2b\": \"" H1 "\"}");
    expect_entry_rejected("{\"path\": \"a\", \"bytes\": \"12\", \"blake2b\": \"" H1 "\"}");
    expect_entry_rejected("{\"path\": \"a\", \"bytes\": 1.5, \"blake2b\": \"" H1 "\"}");
    expect_entry_rejected("{\"path\": \"a\", \"bytes\": null, \"blake2b\": \"" H1 "\"}");
}

static void test_manifest_traversal(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "../x",         "../../etc/passwd",
        "a/../../x",    "a/..",
        "..",           "/etc/passwd",
        "/x",           "./x",
        "a/./b",        ".",
        "a//b",         "a/",
        "a\\\\..\\\\b", "a\\nb",
        "a\\rb",        "sqlite/../../../root/.ssh/authorized_keys",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char *e = xasprintf("{\"path\": \"%s\", \"bytes\": 1, \"blake2b\": \"" H1 "\"}", paths[i]);
        expect_entry_rejected(e);
        free(e);
    }
}

static void test_manifest_nul(void **state)
{
    (void)state;
    /* an escaped NUL inside a path */
    expect_entry_rejected("{\"path\": \"sqlite/app.db\\u0000../../x\", \"bytes\": 1, "
                          "\"blake2b\": \"" H1 "\"}");
    /* a raw NUL byte inside the data: after the document, and inside a string */
    static const char doc[] = "{\"format\": \"stagecoach-set/1\", \"files\": []}";
    char buf[sizeof doc + 8];
    memcpy(buf, doc, sizeof doc - 1);
    buf[sizeof doc - 1] = '\0';
    memcpy(buf + sizeof doc, "junk", 4);
    json_t *m = (json_t *)1;
    sc_err err = {0};
    assert_int_equal(manifest_parse(buf, sizeof doc + 4, &m, &err), SC_EVERIFY);
    assert_null(m);

    static const char in_string[] = "{\"format\": \"stagecoach-set/1\", \"set\": \"a\0b\", "
                                    "\"files\": []}";
    memset(&err, 0, sizeof err);
    m = (json_t *)1;
    assert_int_equal(manifest_parse(in_string, sizeof in_string - 1, &m, &err), SC_EVERIFY);
    assert_null(m);
}

/* The same file listed twice: which hash is right? Refuse the manifest. */
static void test_manifest_duplicate_entries(void **state)
{
    (void)state;
    expect_entry_rejected("{\"path\": \"sqlite/app.db\", \"bytes\": 1, \"blake2b\": \"" H1 "\"}, "
                          "{\"path\": \"sqlite/app.db\", \"bytes\": 1, \"blake2b\": \"" H2 "\"}");
}

/* ---- b2sums_parse ------------------------------------------------------ */

static int parse_b2(const char *data, size_t len, json_t **map, sc_err *err)
{
    memset(err, 0, sizeof *err);
    return b2sums_parse(data, len, map, err);
}

static void expect_b2_rejected_len(const char *data, size_t len)
{
    json_t *map = (json_t *)1;
    sc_err err;
    int rc = parse_b2(data, len, &map, &err);
    if (rc != SC_EVERIFY)
        fail_msg("B2SUMS accepted (rc %d): %.*s", rc, (int)len, data);
    assert_null(map);
    assert_int_equal(err.code, SC_EVERIFY);
}

static void expect_b2_rejected(const char *data)
{
    expect_b2_rejected_len(data, strlen(data));
}

static void test_b2sums_good(void **state)
{
    (void)state;
    const char *text =
        H1 "  sqlite/app.db\n" H2 "  paths/etc with spaces.tar\n" H1 "  MANIFEST.json\n";
    json_t *map = NULL;
    sc_err err;
    assert_int_equal(parse_b2(text, strlen(text), &map, &err), 0);
    assert_int_equal(json_object_size(map), 3);
    assert_string_equal(json_string_value(json_object_get(map, "sqlite/app.db")), H1);
    assert_string_equal(json_string_value(json_object_get(map, "paths/etc with spaces.tar")), H2);
    json_decref(map);

    /* the last line needs no newline */
    const char *no_nl = H1 "  a\n" H2 "  b";
    assert_int_equal(parse_b2(no_nl, strlen(no_nl), &map, &err), 0);
    assert_int_equal(json_object_size(map), 2);
    assert_string_equal(json_string_value(json_object_get(map, "b")), H2);
    json_decref(map);

    /* a path may itself contain two spaces: only the first separator counts */
    const char *spaces = H1 "  a  b\n";
    assert_int_equal(parse_b2(spaces, strlen(spaces), &map, &err), 0);
    assert_non_null(json_object_get(map, "a  b"));
    json_decref(map);

    /* empty input: an empty map (set_verify then misses MANIFEST.json) */
    assert_int_equal(parse_b2("", 0, &map, &err), 0);
    assert_int_equal(json_object_size(map), 0);
    json_decref(map);
}

static void test_b2sums_malformed(void **state)
{
    (void)state;
    expect_b2_rejected("\n");
    expect_b2_rejected(H1 "  a\n\n" H2 "  b\n"); /* a blank line */
    expect_b2_rejected(H1 " a\n");               /* one space */
    expect_b2_rejected(H1 "\ta\n");              /* a tab */
    expect_b2_rejected(H1 " *a\n");              /* b2sum --binary */
    expect_b2_rejected(H1 "  \n");               /* no file name */
    expect_b2_rejected(H1 "\n");
    expect_b2_rejected("abc  a\n");
    expect_b2_rejected(H1 "0  a\n");         /* 129 hex digits */
    expect_b2_rejected("\\" H1 "  a\\nb\n"); /* b2sum's escaped form */
    expect_b2_rejected(H1 "  a\r\n");        /* CRLF: the name would end in CR */
    char upper[] = H1 "  a\n";
    upper[0] = 'A';
    expect_b2_rejected(upper);
    char nonhex[] = H1 "  a\n";
    nonhex[5] = 'z';
    expect_b2_rejected(nonhex);
    expect_b2_rejected(
        "random text that is long enough to pass any length check, and then some "
        "more text to be sure that it is longer than 131 characters in total......\n");
}

static void test_b2sums_traversal(void **state)
{
    (void)state;
    expect_b2_rejected(H1 "  ../x\n");
    expect_b2_rejected(H1 "  a/../../x\n");
    expect_b2_rejected(H1 "  /etc/passwd\n");
    expect_b2_rejected(H1 "  ./a\n");
    expect_b2_rejected(H1 "  a//b\n");
    expect_b2_rejected(H1 "  a\\b\n");
    expect_b2_rejected(H1 "  ok\n" H1 "  ..\n");
}

static void test_b2sums_nul(void **state)
{
    (void)state;
    static const char nul_in_name[] = H1 "  sqlite/app.db\0../../x\n";
    expect_b2_rejected_len(nul_in_name, sizeof nul_in_name - 1);
    static const char nul_in_hash[] = "0123\0" H1 "  a\n";
    expect_b2_rejected_len(nul_in_hash, sizeof nul_in_hash - 1);
    static const char nul_line[] = H1 "  a\n\0\n";
    expect_b2_rejected_len(nul_line, sizeof nul_line - 1);
}

static void test_b2sums_duplicates(void **state)
{
    (void)state;
    expect_b2_rejected(H1 "  a\n" H2 "  a\n");
    expect_b2_rejected(H1 "  a\n" H1 "  a\n");
}

/* ---- manifest_path_ok -------------------------------------------------- */

static void test_path_ok(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a", "sqlite/app.db", "paths/etc.tar", "a/b/c", "..a", "a..", "a/..b/c", ".hidden", "a b",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!manifest_path_ok(good[i]))
            fail_msg("manifest_path_ok(\"%s\") rejected", good[i]);
    static const char *const bad[] = {
        "",    "/",   "/a",   "..", "../a", "a/..", "a/../b", ".",
        "./a", "a/.", "a//b", "a/", "a\nb", "a\rb", "a\\b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (manifest_path_ok(bad[i]))
            fail_msg("manifest_path_ok(\"%s\") accepted", bad[i]);
    char *longp = xmalloc(5000);
    memset(longp, 'a', 4999);
    longp[4999] = '\0';
    assert_false(manifest_path_ok(longp));
    free(longp);
}

/* ---- set_verify on a hand-made set ------------------------------------- */

static char *tmpdir;

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    if ((tmpdir = tu_mkdtemp("manifest")) == NULL)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_rmdir(tmpdir);
    return 0;
}

static void put(const char *dir, const char *rel, const char *data, size_t len)
{
    char *p = path_join(dir, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    sc_err err = {0};
    assert_int_equal(fs_mkdir_p(p, 0700, &err), 0);
    *slash = '/';
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(p);
}

static void b2hex(const char *data, size_t len, char hex[129])
{
    unsigned char d[64];
    crypto_generichash(d, sizeof d, (const unsigned char *)data, len, NULL, 0);
    sodium_bin2hex(hex, 129, d, sizeof d);
}

/* A set with two files; returns its directory (owned). */
static char *make_set(const char *name)
{
    char *dir = path_join(tmpdir, name);
    const char *a = "database bytes", *b = "tar bytes\n";
    put(dir, "sqlite/app.db", a, strlen(a));
    put(dir, "paths/etc.tar", b, strlen(b));
    char ha[129], hb[129], hm[129];
    b2hex(a, strlen(a), ha);
    b2hex(b, strlen(b), hb);
    char *m = xasprintf("{\"format\": \"stagecoach-set/1\", \"files\": ["
                        "{\"path\": \"sqlite/app.db\", \"bytes\": %zu, \"blake2b\": \"%s\"},"
                        "{\"path\": \"paths/etc.tar\", \"bytes\": %zu, \"blake2b\": \"%s\"}]}\n",
                        strlen(a), ha, strlen(b), hb);
    put(dir, "MANIFEST.json", m, strlen(m));
    b2hex(m, strlen(m), hm);
    char *sums = xasprintf("%s  sqlite/app.db\n%s  paths/etc.tar\n%s  MANIFEST.json\n", ha, hb, hm);
    put(dir, "B2SUMS", sums, strlen(sums));
    free(m);
    free(sums);
    return dir;
}

static void test_set_verify(void **state)
{
    (void)state;
    sc_err err = {0};
    char *dir = make_set("good");
    assert_int_equal(set_verify(dir, &err), 0);

    /* manifest_read gives both documents */
    json_t *m = NULL, *b2 = NULL;
    assert_int_equal(manifest_read(dir, &m, &b2, &err), 0);
    assert_int_equal(json_array_size(json_object_get(m, "files")), 2);
    assert_int_equal(json_object_size(b2), 3);
    json_decref(m);
    json_decref(b2);

    /* one changed byte, same size */
    put(dir, "sqlite/app.db", "Database bytes", 14);
    memset(&err, 0, sizeof err);
    assert_int_equal(set_verify(dir, &err), SC_EVERIFY);
    assert_non_null(strstr(err.msg, "sqlite/app.db"));
    free(dir);

    /* an extra file */
    dir = make_set("extra");
    put(dir, "sqlite/app.db-journal", "x", 1);
    memset(&err, 0, sizeof err);
    assert_int_equal(set_verify(dir, &err), SC_EVERIFY);
    assert_non_null(strstr(err.msg, "sqlite/app.db-journal"));
    free(dir);

    /* a missing file */
    dir = make_set("missing");
    char *p = path_join(dir, "paths/etc.tar");
    assert_int_equal(unlink(p), 0);
    free(p);
    memset(&err, 0, sizeof err);
    assert_int_equal(set_verify(dir, &err), SC_EVERIFY);
    assert_non_null(strstr(err.msg, "paths/etc.tar"));
    free(dir);

    /* no MANIFEST.json */
    dir = make_set("nomanifest");
    p = path_join(dir, "MANIFEST.json");
    assert_int_equal(unlink(p), 0);
    free(p);
    memset(&err, 0, sizeof err);
    assert_int_equal(set_verify(dir, &err), SC_EVERIFY);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_good),
        cmocka_unit_test(test_manifest_malformed),
        cmocka_unit_test(test_manifest_bad_entries),
        cmocka_unit_test(test_manifest_traversal),
        cmocka_unit_test(test_manifest_nul),
        cmocka_unit_test(test_b2sums_good),
        cmocka_unit_test(test_b2sums_malformed),
        cmocka_unit_test(test_b2sums_traversal),
        cmocka_unit_test(test_b2sums_nul),
        cmocka_unit_test(test_b2sums_duplicates),
        cmocka_unit_test(test_path_ok),
        cmocka_unit_test(test_set_verify),
        /* the same file listed twice: */
        cmocka_unit_test(test_manifest_duplicate_entries),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
