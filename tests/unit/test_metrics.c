/* Unit tests for src/core/metrics.c and src/core/report.c: the textfile
 * derived from state.json (a failed run is never a success; what is
 * unknown is left out rather than made up; labels escaped), the atomic
 * write, and the report envelope. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/fs.h"
#include "../../src/core/metrics.h"
#include "../../src/core/report.h"
#include "../../src/core/xalloc.h"

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (j == NULL)
        fail_msg("bad test JSON: %s", je.text);
    return j;
}

static const struct metrics_extra extra = {
    .host = "tracker-1", .next_check_due = 1795852931, .local_sets = 3, .unshipped_sets = 1};

static void test_successful_run(void **state)
{
    (void)state;
    json_t *st = load(
        "{\"last_run\": {\"status\": \"success\", \"exit_code\": 0, \"finished\": "
        "\"2026-11-27T08:02:24Z\", \"stats\": {\"duration_s\": 5.5, \"staged_bytes\": 18432, "
        "\"added_bytes\": 5769, \"shipped_sets\": 1, \"sources\": [{\"name\": \"app\", "
        "\"bytes\": 8192, \"files\": 1, \"rows\": 2}, {\"name\": \"etc\", \"bytes\": 10240, "
        "\"files\": 1}]}}, \"last_success\": \"2026-11-27T08:02:24Z\", "
        "\"check\": {\"last\": {\"status\": \"success\", \"finished\": \"2026-11-27T08:02:11Z\"}, "
        "\"last_success\": \"2026-11-27T08:02:11Z\"}, \"repository\": {\"snapshots\": 2}}");
    char *m = metrics_render(st, &extra);
    assert_contains(m, "\nstagecoach_last_run_success 1\n");
    assert_contains(m, "\nstagecoach_last_success_timestamp_seconds 1795766544\n");
    assert_contains(m, "\nstagecoach_last_run_timestamp_seconds 1795766544\n");
    assert_contains(m, "\nstagecoach_last_run_duration_seconds 5.5\n");
    assert_contains(m, "\nstagecoach_last_run_staged_bytes 18432\n");
    assert_contains(m, "\nstagecoach_last_run_added_bytes 5769\n");
    assert_contains(m, "\nstagecoach_source_staged_bytes{source=\"app\"} 8192\n");
    assert_contains(m, "\nstagecoach_source_staged_bytes{source=\"etc\"} 10240\n");
    assert_contains(m, "\nstagecoach_source_rows{source=\"app\"} 2\n");
    assert_lacks(m, "stagecoach_source_rows{source=\"etc\"}"); /* a tar has no rows */
    assert_contains(m, "\nstagecoach_snapshots 2\n");
    assert_contains(m, "\nstagecoach_last_check_success 1\n");
    assert_contains(m, "\nstagecoach_next_check_timestamp_seconds 1795852931\n");
    assert_contains(m, "\nstagecoach_unshipped_sets 1\n");
    assert_contains(m, "stagecoach_info{version=\"" SC_VERSION "\",host=\"tracker-1\"} 1\n");
    /* every sample has its HELP and TYPE */
    assert_contains(m, "# TYPE stagecoach_last_run_success gauge\n");
    assert_contains(m, "# HELP stagecoach_source_rows ");
    free(m);
    json_decref(st);
}

static void test_failed_run_never_success(void **state)
{
    (void)state;
    /* failed now, succeeded earlier: success 0, the earlier timestamp kept */
    json_t *st = load("{\"last_run\": {\"status\": \"failure\", \"exit_code\": 6, \"finished\": "
                      "\"2026-11-28T08:00:00Z\"}, \"last_success\": \"2026-11-27T08:02:24Z\", "
                      "\"check\": {\"last\": {\"status\": \"failure\"}}}");
    char *m = metrics_render(st, &extra);
    assert_contains(m, "\nstagecoach_last_run_success 0\n");
    assert_contains(m, "\nstagecoach_last_run_exit_code 6\n");
    assert_contains(m, "\nstagecoach_last_success_timestamp_seconds 1795766544\n");
    assert_contains(m, "\nstagecoach_last_check_success 0\n");
    assert_contains(m, "\nstagecoach_last_check_success_timestamp_seconds 0\n");
    /* no stats: no made-up durations or bytes */
    assert_lacks(m, "stagecoach_last_run_duration_seconds");
    assert_lacks(m, "stagecoach_source_");
    free(m);
    json_decref(st);
}

static void test_empty_state(void **state)
{
    (void)state;
    json_t *st = json_object();
    struct metrics_extra x = {.host = "h", .next_check_due = -1};
    char *m = metrics_render(st, &x);
    assert_contains(m, "\nstagecoach_last_success_timestamp_seconds 0\n");
    assert_lacks(m, "stagecoach_last_run_success");
    assert_lacks(m, "stagecoach_last_check_success ");
    assert_lacks(m, "stagecoach_next_check_timestamp_seconds");
    assert_lacks(m, "stagecoach_snapshots");
    free(m);
    json_decref(st);
}

static void test_label_escaping(void **state)
{
    (void)state;
    json_t *st = load("{\"last_run\": {\"status\": \"success\", \"stats\": {\"sources\": "
                      "[{\"name\": \"a\\\"b\\\\c\\nd\", \"bytes\": 1}]}}}");
    struct metrics_extra x = {.host = "h\"1", .next_check_due = 0};
    char *m = metrics_render(st, &x);
    assert_contains(m, "stagecoach_source_staged_bytes{source=\"a\\\"b\\\\c\\nd\"} 1\n");
    assert_contains(m, "host=\"h\\\"1\"");
    free(m);
    json_decref(st);
}

static void test_write_atomic_readable(void **state)
{
    (void)state;
    char dir[] = "/tmp/sc-test-metrics-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = path_join(dir, "stagecoach.prom");
    json_t *st = json_object();
    sc_err e = {0};
    mode_t old = umask(077); /* as stagecoach runs */
    assert_int_equal(metrics_write(path, st, &extra, &e), 0);
    umask(old);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644); /* the exporter runs as another user */
    /* a directory that does not exist: an error naming it, not a crash */
    char *bad = path_join(dir, "nope/x.prom");
    assert_int_not_equal(metrics_write(bad, st, &extra, &e), 0);
    assert_contains(e.msg, "nope");
    free(bad);
    json_decref(st);
    free(path);
    fs_rm_rf(dir);
}

static void test_report_envelope(void **state)
{
    (void)state;
    json_t *r = json_object();
    report_set(r, "snapshot", json_string("abc"));
    report_set(NULL, "dropped", json_string("x")); /* no report: nothing leaks */
    sc_err e = {0};
    report_finish(r, "run", 0, &e, "2026-11-27T08:00:00Z", 1.5);
    assert_string_equal(json_string_value(json_object_get(r, "schema")), "stagecoach-report/1");
    assert_string_equal(json_string_value(json_object_get(r, "status")), "success");
    assert_true(json_is_null(json_object_get(r, "error")));
    assert_string_equal(json_string_value(json_object_get(r, "snapshot")), "abc");
    sc_fail(&e, 6, "restic backup: backend error");
    report_finish(r, "run", 6, &e, "2026-11-27T08:00:00Z", 2);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "failure");
    assert_int_equal(json_integer_value(json_object_get(r, "exit_code")), 6);
    assert_string_equal(json_string_value(json_object_get(r, "error_kind")), "restic");
    assert_string_equal(json_string_value(json_object_get(r, "error")),
                        "restic backup: backend error");
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_successful_run),
        cmocka_unit_test(test_failed_run_never_success),
        cmocka_unit_test(test_empty_state),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_write_atomic_readable),
        cmocka_unit_test(test_report_envelope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
