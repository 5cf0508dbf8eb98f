/* The sink: bytes written to a file in the set being built and hashed in
 * the same pass. The recorded BLAKE2b-512 must equal libsodium's one-shot
 * hash of the same bytes and coreutils' b2sum of the file. */
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
#include "../../src/stage/set.h"
#include "../../src/stage/hashfile.h"
#include "../../src/stage/manifest.h"
#include "../../src/stage/sink.h"

static char *staging;

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    if ((staging = tu_mkdtemp("sink")) == NULL)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_rmdir(staging);
    return 0;
}

/* A fresh set being built, in its own staging directory. */
static int set_setup(void **state)
{
    static int n;
    char *dir = xasprintf("%s/staging-%d", staging, n++);
    sc_err err = {0};
    struct set *s = xcalloc(1, sizeof *s);
    if (staging_prepare(dir, &err) != 0 || set_create(s, dir, &err) != 0) {
        fprintf(stderr, "cannot make a set in %s: %s\n", dir, err.msg);
        free(dir);
        free(s);
        return -1;
    }
    free(dir);
    *state = s;
    return 0;
}

static int set_teardown(void **state)
{
    struct set *s = *state;
    set_discard(s);
    free(s);
    return 0;
}

static void oneshot_hex(const unsigned char *data, size_t len, char hex[129])
{
    unsigned char d[crypto_generichash_BYTES_MAX];
    crypto_generichash(d, sizeof d, data, len, NULL, 0);
    sodium_bin2hex(hex, 129, d, sizeof d);
}

/* b2sum FILE, the hash part. */
static void b2sum_hex(const char *path, char hex[129])
{
    char *cmd = xasprintf("b2sum '%s'", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[4096] = "";
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    free(cmd);
    assert_true(strlen(line) > 128);
    memcpy(hex, line, 128);
    hex[128] = '\0';
}

/* The manifest entry recorded for relpath, or NULL. */
static json_t *recorded(struct set *s, const char *relpath)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(s->manifest, "files"), i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "path")), relpath) == 0)
            return f;
    }
    return NULL;
}

static unsigned char *random_bytes(size_t n)
{
    unsigned char *b = xmalloc(n ? n : 1);
    randombytes_buf(b, n);
    return b;
}

/* Write data through a sink in chunks of the given sizes (cycled), close it,
 * and check everything the sink promises. */
static void write_and_check(struct set *s, const char *relpath, const unsigned char *data,
                            size_t len, const size_t *chunks, size_t nchunks)
{
    struct sink k;
    sc_err err = {0};
    assert_int_equal(sink_open(&k, s, relpath, &err), 0);
    size_t off = 0, c = 0;
    while (off < len) {
        size_t n = chunks[c++ % nchunks];
        if (n > len - off)
            n = len - off;
        assert_int_equal(sink_write(&k, data + off, n, &err), 0);
        off += n;
    }
    assert_int_equal(sink_write(&k, data, 0, &err), 0); /* an empty write changes nothing */
    assert_int_equal(sink_close(&k, &err), 0);

    char *path = path_join(s->tmpdir, relpath);
    /* the file holds exactly the bytes */
    char *back;
    size_t blen;
    assert_int_equal(fs_read_file(path, len + 1, &back, &blen, SC_ESTAGING, &err), 0);
    assert_int_equal(blen, len);
    assert_memory_equal(back, data, len);
    free(back);
    /* private */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    /* the recorded size and hash */
    json_t *f = recorded(s, relpath);
    assert_non_null(f);
    assert_int_equal(json_integer_value(json_object_get(f, "bytes")), len);
    const char *rec = json_string_value(json_object_get(f, "blake2b"));
    assert_non_null(rec);
    char want[129], coreutils[129], whole[129];
    oneshot_hex(data, len, want);
    assert_string_equal(rec, want);
    b2sum_hex(path, coreutils);
    assert_string_equal(rec, coreutils);
    /* and hash_file, which verification uses, agrees */
    uint64_t hbytes = 0;
    assert_int_equal(hash_file(path, whole, &hbytes, &err), 0);
    assert_string_equal(whole, want);
    assert_int_equal(hbytes, len);
    free(path);
}

static void test_small(void **state)
{
    struct set *s = *state;
    const unsigned char text[] = "hello, stagecoach\n";
    const size_t chunks[] = {1000};
    write_and_check(s, "paths/hello.txt", text, sizeof text - 1, chunks, 1);
}

static void test_empty(void **state)
{
    struct set *s = *state;
    const size_t chunks[] = {1};
    write_and_check(s, "empty.bin", (const unsigned char *)"", 0, chunks, 1);
}

static void test_chunked_large(void **state)
{
    struct set *s = *state;
    /* larger than any buffer, in odd chunk sizes that straddle BLAKE2b's
     * 128-byte blocks */
    size_t len = 3 * 1024 * 1024 + 77;
    unsigned char *data = random_bytes(len);
    const size_t chunks[] = {1, 127, 128, 129, 4096, 65537, 1 << 20};
    write_and_check(s, "sqlite/big.db", data, len, chunks, sizeof chunks / sizeof chunks[0]);
    free(data);
}

/* Exactly two of the hash thread's buffers: the last one handed over full
 * by the write itself, nothing partial left for the close. */
static void test_exact_hashpipe_buffers(void **state)
{
    struct set *s = *state;
    size_t len = 2 * HASHPIPE_BUF;
    unsigned char *data = random_bytes(len);
    const size_t chunks[] = {HASHPIPE_BUF / 2};
    write_and_check(s, "exact.bin", data, len, chunks, 1);
    free(data);
}

/* An abort while the hash thread has full buffers to work through must
 * neither hang nor leave anything behind. */
static void test_abort_with_buffers_in_flight(void **state)
{
    struct set *s = *state;
    struct sink k;
    sc_err err = {0};
    size_t len = 5 * HASHPIPE_BUF + 3;
    unsigned char *data = random_bytes(len);
    assert_int_equal(sink_open(&k, s, "inflight.bin", &err), 0);
    assert_int_equal(sink_write(&k, data, len, &err), 0);
    char *path = path_join(s->tmpdir, "inflight.bin");
    sink_abort(&k);
    assert_false(fs_exists(path));
    assert_null(recorded(s, "inflight.bin"));
    free(path);
    free(data);
}

static void test_private_with_umask_000(void **state)
{
    struct set *s = *state;
    mode_t old = umask(0);
    unsigned char *data = random_bytes(1000);
    const size_t chunks[] = {300};
    write_and_check(s, "deep/er/dir/file.bin", data, 1000, chunks, 1);
    umask(old);
    /* the directories the sink made are private too */
    char *dir = path_join(s->tmpdir, "deep/er/dir");
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    free(dir);
    free(data);
}

static void test_several_files_in_order(void **state)
{
    struct set *s = *state;
    const size_t chunks[] = {10};
    write_and_check(s, "a.bin", (const unsigned char *)"aaaa", 4, chunks, 1);
    write_and_check(s, "b.bin", (const unsigned char *)"bbbbbbbb", 8, chunks, 1);
    json_t *files = json_object_get(s->manifest, "files");
    assert_int_equal(json_array_size(files), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(files, 0), "path")),
                        "a.bin");
    assert_string_equal(json_string_value(json_object_get(json_array_get(files, 1), "path")),
                        "b.bin");
}

static void test_abort_removes_the_file(void **state)
{
    struct set *s = *state;
    struct sink k;
    sc_err err = {0};
    assert_int_equal(sink_open(&k, s, "paths/partial.tar", &err), 0);
    unsigned char *data = random_bytes(100000);
    assert_int_equal(sink_write(&k, data, 100000, &err), 0);
    char *path = path_join(s->tmpdir, "paths/partial.tar");
    assert_true(fs_exists(path));
    sink_abort(&k);
    assert_false(fs_exists(path));
    /* nothing was recorded */
    assert_null(recorded(s, "paths/partial.tar"));
    assert_int_equal(json_array_size(json_object_get(s->manifest, "files")), 0);
    /* the name is free again */
    assert_int_equal(sink_open(&k, s, "paths/partial.tar", &err), 0);
    assert_int_equal(sink_close(&k, &err), 0);
    assert_non_null(recorded(s, "paths/partial.tar"));
    free(path);
    free(data);
}

static void test_abort_right_after_open(void **state)
{
    struct set *s = *state;
    struct sink k;
    sc_err err = {0};
    assert_int_equal(sink_open(&k, s, "x.bin", &err), 0);
    sink_abort(&k);
    char *path = path_join(s->tmpdir, "x.bin");
    assert_false(fs_exists(path));
    free(path);
}

static void test_open_refuses_an_existing_file(void **state)
{
    struct set *s = *state;
    struct sink k;
    sc_err err = {0};
    assert_int_equal(sink_open(&k, s, "dup.bin", &err), 0);
    assert_int_equal(sink_write(&k, "first", 5, &err), 0);
    assert_int_equal(sink_close(&k, &err), 0);
    struct sink k2;
    assert_int_equal(sink_open(&k2, s, "dup.bin", &err), SC_ESTAGING);
    assert_non_null(strstr(err.msg, "dup.bin"));
    /* the first file is untouched */
    char *path = path_join(s->tmpdir, "dup.bin");
    char *back;
    size_t len;
    sc_err e2 = {0};
    assert_int_equal(fs_read_file(path, 100, &back, &len, SC_ESTAGING, &e2), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(back, "first", 5);
    free(back);
    free(path);
}

static void test_published_set_passes_b2sum_and_verify(void **state)
{
    struct set *s = *state;
    set_begin_source(s, "etc", "paths");
    unsigned char *data = random_bytes(200000);
    const size_t chunks[] = {4099};
    write_and_check(s, "paths/etc.tar", data, 200000, chunks, 1);
    free(data);
    sc_err err = {0};
    assert_int_equal(set_publish(s, &err), 0);
    assert_true(s->published);
    assert_int_equal(set_verify(s->finaldir, &err), 0);
    char *cmd = xasprintf("cd '%s' && b2sum -c --quiet B2SUMS", s->finaldir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    /* the file entry names its source */
    json_t *f = recorded(s, "paths/etc.tar");
    assert_string_equal(json_string_value(json_object_get(f, "source")), "etc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_small, set_setup, set_teardown),
        cmocka_unit_test_setup_teardown(test_empty, set_setup, set_teardown),
        cmocka_unit_test_setup_teardown(test_chunked_large, set_setup, set_teardown),
        cmocka_unit_test_setup_teardown(test_exact_hashpipe_buffers, set_setup, set_teardown),
        cmocka_unit_test_setup_teardown(test_abort_with_buffers_in_flight, set_setup, set_teardown),
        cmocka_unit_test_setup_teardown(test_private_with_umask_000, set_setup, set_teardown),
        cmocka_unit_test_setup_teardown(test_several_files_in_order, set_setup, set_teardown),
        cmocka_unit_test_setup_teardown(test_abort_removes_the_file, set_setup, set_teardown),
        cmocka_unit_test_setup_teardown(test_abort_right_after_open, set_setup, set_teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_an_existing_file, set_setup,
                                        set_teardown),
        cmocka_unit_test_setup_teardown(test_published_set_passes_b2sum_and_verify, set_setup,
                                        set_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
