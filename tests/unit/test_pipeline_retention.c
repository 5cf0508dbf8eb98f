/* Local retention (src/pipeline/retention.c) on a real staging directory:
 * the newest [staging] keep sets stay, older shipped ones go, and a set
 * that was never shipped stays whatever its age (it is the only copy of
 * that backup). With no keep_* in [retention] the repository is not
 * touched, so no restic is needed here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/core/fs.h"
#include "../../src/core/state.h"
#include "../../src/pipeline/retention.h"

static const char *const ids[] = {"20261101T030000Z", "20261102T030000Z", "20261103T030000Z",
                                  "20261104T030000Z", "20261105T030000Z"};
#define NIDS (sizeof ids / sizeof ids[0])

struct fixture {
    char *staging;
    struct ctx c;
};

/* Five sets; all shipped but the second. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->staging = xstrdup("/tmp/sc-test-pipeline-retention-XXXXXX");
    assert_non_null(mkdtemp(f->staging));
    json_t *st = NULL;
    sc_err err = {0};
    assert_int_equal(state_load(f->staging, &st, &err), 0);
    for (size_t i = 0; i < NIDS; i++) {
        char *sets = path_join(f->staging, "sets");
        char *dir = path_join(sets, ids[i]);
        assert_int_equal(fs_mkdir_p(dir, 0700, &err), 0);
        char *file = path_join(dir, "MANIFEST.json");
        assert_int_equal(fs_write_atomic(file, "{}", 2, 0600, &err), 0);
        if (i != 1)
            state_set_shipped(st, ids[i], "0123456789abcdef");
        free(file);
        free(dir);
        free(sets);
    }
    assert_int_equal(state_save(f->staging, st, &err), 0);
    json_decref(st);
    f->c.cfg.staging.dir = f->staging;
    f->c.cfg.staging.keep = 2;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fs_rm_rf(f->staging);
    free(f->staging);
    free(f);
    return 0;
}

static bool set_exists(const struct fixture *f, const char *id)
{
    char *sets = path_join(f->staging, "sets");
    char *dir = path_join(sets, id);
    bool there = fs_exists(dir);
    free(dir);
    free(sets);
    return there;
}

static void test_prune_keeps_newest_and_unshipped(void **state)
{
    struct fixture *f = *state;
    sc_err err = {0};
    assert_int_equal(retention_prune_local_sets(&f->c, &err), 0);
    assert_false(set_exists(f, ids[0])); /* old and shipped */
    assert_true(set_exists(f, ids[1]));  /* old but never shipped */
    assert_false(set_exists(f, ids[2]));
    assert_true(set_exists(f, ids[3])); /* the newest two */
    assert_true(set_exists(f, ids[4]));
}

static void test_dry_run_names_and_removes_nothing(void **state)
{
    struct fixture *f = *state;
    sc_err err = {0};
    json_t *out = NULL;
    assert_int_equal(retention_run(&f->c, true, &out, &err), 0);
    json_t *would = json_object_get(out, "local_sets_would_remove");
    assert_int_equal(json_array_size(would), 2);
    assert_string_equal(json_string_value(json_array_get(would, 0)), ids[0]);
    assert_string_equal(json_string_value(json_array_get(would, 1)), ids[2]);
    assert_non_null(json_object_get(out, "skipped")); /* no keep_*: repository untouched */
    for (size_t i = 0; i < NIDS; i++)
        assert_true(set_exists(f, ids[i]));
    json_decref(out);
}

static void test_run_records_and_reports(void **state)
{
    struct fixture *f = *state;
    sc_err err = {0};
    json_t *out = NULL;
    assert_int_equal(retention_run(&f->c, false, &out, &err), 0);
    assert_int_equal(json_array_size(json_object_get(out, "local_sets_removed")), 2);
    assert_string_equal(json_string_value(json_object_get(out, "status")), "success");
    json_t *st = NULL;
    assert_int_equal(state_load(f->staging, &st, &err), 0);
    const char *status = json_string_value(
        json_object_get(json_object_get(json_object_get(st, "retention"), "last"), "status"));
    assert_non_null(status);
    assert_string_equal(status, "success");
    json_decref(st);
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prune_keeps_newest_and_unshipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_names_and_removes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_records_and_reports, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
