/* Unit tests for retention in the repository (src/restic/forget.c): the
 * forget flags built from [retention], forget's JSON as restic 0.14 prints
 * it, keep_within validation. forget itself runs against a stand-in restic
 * that records its argv. (The check cadence: test_pipeline_check.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/config.h"
#include "../../src/core/fs.h"
#include "../../src/restic/restic.h"

/* argv joined with spaces (owned). */
static char *joined(const struct strvec *v)
{
    size_t len = 1;
    for (size_t i = 0; i < v->n; i++)
        len += strlen(v->v[i]) + 1;
    char *s = xmalloc(len);
    s[0] = '\0';
    for (size_t i = 0; i < v->n; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, v->v[i]);
    }
    return s;
}

/* ---- [retention] -> forget flags ---- */

static void test_retention_args(void **state)
{
    (void)state;
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct strvec v = {0};
    assert_false(restic_retention_args(&cfg, &v)); /* no policy: forget nothing */
    assert_int_equal(v.n, 0);

    cfg.retention.keep_last = 3;
    cfg.retention.keep_daily = 7;
    cfg.retention.keep_weekly = 4;
    cfg.retention.keep_monthly = 12;
    cfg.retention.keep_yearly = 2;
    cfg.retention.keep_hourly = 24;
    cfg.retention.keep_within = xstrdup("1y2m");
    assert_true(restic_retention_args(&cfg, &v));
    char *s = joined(&v);
    assert_string_equal(s, "--keep-last=3 --keep-hourly=24 --keep-daily=7 --keep-weekly=4 "
                           "--keep-monthly=12 --keep-yearly=2 --keep-within=1y2m");
    free(s);
    strvec_free(&v);
    free(cfg.retention.keep_within);
}

static void test_within_ok(void **state)
{
    (void)state;
    assert_true(restic_duration_ok("7d"));
    assert_true(restic_duration_ok("1y5m7d2h"));
    assert_true(restic_duration_ok("48h"));
    assert_false(restic_duration_ok(""));
    assert_false(restic_duration_ok("2w")); /* weeks: an error since restic 0.14 */
    assert_false(restic_duration_ok("7"));
    assert_false(restic_duration_ok("d"));
    assert_false(restic_duration_ok("7d7d"));
    assert_false(restic_duration_ok("-1d"));
    assert_false(restic_duration_ok("7 d"));
}

/* ---- forget's output ---- */

/* restic 0.14 `forget --json --prune`: the JSON line, then prune's text. */
static const char forget_014[] =
    "[{\"tags\":null,\"host\":\"h1\",\"paths\":null,"
    "\"keep\":[{\"time\":\"2026-11-27T07:54:06.44Z\",\"paths\":[\"/s/sets/b\"],\"hostname\":\"h1\","
    "\"tags\":[\"stagecoach\",\"set-b\"],\"id\":\""
    "bbbb"
    "\",\"short_id\":\"bbbb\"}],"
    "\"remove\":[{\"time\":\"2026-11-27T07:54:04.97Z\",\"paths\":[\"/s/sets/a\"],"
    "\"hostname\":\"h1\",\"tags\":[\"stagecoach\",\"set-a\"],\"id\":\"aaaa\",\"short_id\":\"aaaa\"}"
    "],"
    "\"reasons\":[{\"snapshot\":{\"time\":\"2026-11-27T07:54:06.44Z\"},\"matches\":[\"last "
    "snapshot\"],\"counters\":{\"last\":1}}]}]\n"
    "1 snapshots have been removed, running prune\n"
    "loading indexes...\n"
    "[0:00] 100.00%  3 / 3 packs processed\n";

static void test_forget_parse_014_with_prune_text(void **state)
{
    (void)state;
    struct restic_forget_result f;
    sc_err e = {0};
    assert_int_equal(restic_forget_parse(forget_014, strlen(forget_014), &f, &e), 0);
    assert_int_equal(json_array_size(f.keep), 1);
    assert_int_equal(json_array_size(f.remove), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(f.remove, 0), "id")),
                        "aaaa");
    restic_forget_result_free(&f);
}

static void test_forget_parse_null_remove_and_groups(void **state)
{
    (void)state;
    /* remove: null when nothing goes; several groups add up */
    const char *text = "[{\"keep\":[{\"id\":\"a\"}],\"remove\":null},"
                       "{\"keep\":[{\"id\":\"b\"},{\"id\":\"c\"}],\"remove\":[{\"id\":\"d\"}]}]";
    struct restic_forget_result f;
    sc_err e = {0};
    assert_int_equal(restic_forget_parse(text, strlen(text), &f, &e), 0);
    assert_int_equal(json_array_size(f.keep), 3);
    assert_int_equal(json_array_size(f.remove), 1);
    restic_forget_result_free(&f);
    /* empty repository: [] */
    assert_int_equal(restic_forget_parse("[]\n", 3, &f, &e), 0);
    assert_int_equal(json_array_size(f.keep), 0);
    restic_forget_result_free(&f);
    /* no snapshot matches the filter: restic 0.14 prints nothing */
    assert_int_equal(restic_forget_parse("", 0, &f, &e), 0);
    assert_int_equal(json_array_size(f.remove), 0);
    restic_forget_result_free(&f);
    assert_int_equal(restic_forget_parse("\n", 1, &f, &e), 0);
    restic_forget_result_free(&f);
}

static void test_forget_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Fatal: something\n",           "{\"keep\":[]}",          "[{\"keep\":{}}]",
        "[{\"keep\":[{\"no_id\":1}]}]", "[{\"remove\":[\"x\"]}]", "[\"group\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct restic_forget_result f;
        sc_err e = {0};
        assert_int_equal(restic_forget_parse(bad[i], strlen(bad[i]), &f, &e), SC_ERESTIC);
        assert_null(f.keep);
        assert_null(f.remove);
    }
}

/* ---- forget against a stand-in restic ---- */

static void test_forget_argv(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("retention");
    char *log = path_join(dir, "argv");
    char *script =
        xasprintf("#!/bin/sh\n"
                  "case \"$1\" in\n"
                  "version) echo 'restic 0.14.0 compiled with go1.19.8 on linux/amd64';;\n"
                  "forget) echo \"$*\" >>'%s'; echo '[{\"keep\":[{\"id\":\"k\"}],"
                  "\"remove\":null}]';;\n"
                  "*) exit 1;;\n"
                  "esac\n",
                  log);
    char *bin = tu_write_file(dir, "restic", script, 0700);
    free(script);
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.restic.repository = path_join(dir, "repo");
    cfg.restic.password_file = tu_write_file(dir, "pass", "pw\n", 0600);
    cfg.restic.binary = xstrdup(bin);
    cfg.restic.host = xstrdup("tracker-1");
    strvec_push(&cfg.restic.tags, "torrust");
    strvec_push(&cfg.restic.tags, "prod");
    cfg.restic.timeout_s = 60;

    struct restic r;
    struct restic_forget_result f;
    sc_err e = {0};
    assert_int_equal(restic_open(&r, &cfg, &e), 0);
    /* no policy: a configuration error, and restic is not asked */
    assert_int_equal(restic_forget(&r, false, &f, &e), SC_ECONFIG);
    assert_false(fs_exists(log));

    cfg.retention.keep_last = 2;
    memset(&e, 0, sizeof e);
    assert_int_equal(restic_forget(&r, false, &f, &e), 0);
    assert_int_equal(json_array_size(f.keep), 1);
    restic_forget_result_free(&f);
    assert_int_equal(restic_forget(&r, true, &f, &e), 0);
    restic_forget_result_free(&f);

    cfg.retention.keep_within = xstrdup("2w");
    assert_int_equal(restic_forget(&r, false, &f, &e), SC_ECONFIG);
    assert_contains(e.msg, "keep_within");
    restic_close(&r);

    char *text = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_file(log, 4096, &text, &len, SC_EFAIL, &e), 0);
    /* One group per host, filtered by all our tags (comma = AND) and host. */
    assert_string_equal(text, "forget --json --tag=stagecoach,torrust,prod --host=tracker-1 "
                              "--group-by=host --keep-last=2\n"
                              "forget --json --tag=stagecoach,torrust,prod --host=tracker-1 "
                              "--group-by=host --keep-last=2 --dry-run --no-lock\n");
    free(text);
    free(cfg.retention.keep_within);
    free(cfg.restic.repository);
    free(cfg.restic.password_file);
    free(cfg.restic.binary);
    free(cfg.restic.host);
    strvec_free(&cfg.restic.tags);
    free(bin);
    free(log);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_args),
        cmocka_unit_test(test_within_ok),
        cmocka_unit_test(test_forget_parse_014_with_prune_text),
        cmocka_unit_test(test_forget_parse_null_remove_and_groups),
        cmocka_unit_test(test_forget_parse_rejects),
        cmocka_unit_test(test_forget_argv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
