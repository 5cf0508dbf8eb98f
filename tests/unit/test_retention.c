/* Unit tests for retention (src/restic/forget.c) and the check cadence
 * (src/cmd/check.c): the forget flags built from [retention], forget's
 * JSON as restic 0.14 prints it, keep_within validation, the k/n subset
 * rotation, and when a check is due. forget itself runs against a stand-in
 * restic that records its argv. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/cmd/cmd.h"
#include "../../src/core/fs.h"
#include "../../src/restic/restic.h"

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("'%s' does not contain '%s'", (hay), (needle));                               \
    } while (0)

static char *make_tmpdir(void)
{
    char *dir = xstrdup("/tmp/sc-test-retention-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static char *write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char *path = path_join(dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
    return path;
}

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
    char *dir = make_tmpdir();
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
    char *bin = write_file(dir, "restic", script, 0700);
    free(script);
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.restic.repository = path_join(dir, "repo");
    cfg.restic.password_file = write_file(dir, "pass", "pw\n", 0600);
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
    fs_rm_rf(dir);
    free(dir);
}

/* ---- check cadence ---- */

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
        cmocka_unit_test(test_retention_args),
        cmocka_unit_test(test_within_ok),
        cmocka_unit_test(test_forget_parse_014_with_prune_text),
        cmocka_unit_test(test_forget_parse_null_remove_and_groups),
        cmocka_unit_test(test_forget_parse_rejects),
        cmocka_unit_test(test_forget_argv),
        cmocka_unit_test(test_subset_rotation_covers_all),
        cmocka_unit_test(test_subset_other_forms),
        cmocka_unit_test(test_next_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
