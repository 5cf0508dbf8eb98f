/* The check cadence (src/pipeline/check.c): the k/n subset rotation and
 * when the next check is due, with state.json's "check" object as input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "../../src/core/state.h"
#include "../../src/pipeline/check.h"

static void test_subset_rotation_covers_all(void **state)
{
    (void)state;
    json_t *cs = json_object();
    int pos, n;
    /* 1/4 to start with, then 2/4, 3/4, 4/4 and round again */
    static const char *const want[] = {"1/4", "2/4", "3/4", "4/4", "1/4", "2/4"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *s = check_subset_now("1/4", cs, &pos, &n);
        assert_string_equal(s, want[i]);
        assert_int_equal(n, 4);
        check_rotation_advance(cs, pos, n);
        free(s);
    }
    /* a failed check does not advance: the same subset again */
    char *s = check_subset_now("1/4", cs, &pos, &n);
    char *again = check_subset_now("1/4", cs, &pos, &n);
    assert_string_equal(s, again);
    free(s);
    free(again);
    /* another n: the old position does not apply */
    s = check_subset_now("5/12", cs, &pos, &n);
    assert_string_equal(s, "5/12");
    free(s);
    json_decref(cs);
}

static void test_subset_other_forms(void **state)
{
    (void)state;
    int pos, n;
    assert_null(check_subset_now(NULL, NULL, &pos, &n));
    char *s = check_subset_now("5%", NULL, &pos, &n);
    assert_string_equal(s, "5%");
    assert_int_equal(n, 0);
    free(s);
    s = check_subset_now("2.5%", NULL, &pos, &n);
    assert_string_equal(s, "2.5%");
    free(s);
    /* a rotation position out of range is ignored */
    json_t *cs = json_pack("{s:{s:i, s:i}}", "rotation", "n", 3, "next", 9);
    s = check_subset_now("2/3", cs, &pos, &n);
    assert_string_equal(s, "2/3");
    free(s);
    json_decref(cs);
}

static void test_next_due(void **state)
{
    (void)state;
    json_t *cs = json_object();
    assert_int_equal(check_next_due(0, cs), -1);    /* every = 0: never by itself */
    assert_int_equal(check_next_due(86400, cs), 0); /* never checked: now */
    json_object_set_new(cs, "last_success", json_string("2026-11-27T00:00:00Z"));
    json_object_set_new(cs, "last", json_pack("{s:s}", "status", "success"));
    long long t = parse_utc("2026-11-27T00:00:00Z");
    assert_true(t > 0);
    assert_int_equal(check_next_due(7 * 86400, cs), t + 7 * 86400);
    /* the last one failed: due again at once */
    json_object_set_new(cs, "last", json_pack("{s:s}", "status", "failure"));
    assert_int_equal(check_next_due(7 * 86400, cs), 0);
    json_decref(cs);

    char buf[32];
    format_utc(t, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-27T00:00:00Z");
    assert_int_equal(parse_utc("2026-11-27 00:00:00"), -1);
    assert_int_equal(parse_utc(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subset_rotation_covers_all),
        cmocka_unit_test(test_subset_other_forms),
        cmocka_unit_test(test_next_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
