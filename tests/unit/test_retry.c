/* Unit tests for the retries of src/restic/call.c, against a stand-in
 * restic (a shell script) that fails a given number of times in a given
 * way: a lock held by someone else (unlock, then wait), a transient backend
 * failure (bounded attempts with pauses), a permanent one (no retry), the
 * call's deadline, and a retried call's output not counted twice. The
 * pauses are shortened through r.retry; the rules are the real ones. */
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
#include <time.h>
#include <unistd.h>

#include "../../src/core/fs.h"
#include "../../src/restic/restic.h"

static const char locked_text[] =
    "unable to create lock in backend: repository is already locked exclusively by PID 4242 on "
    "other-host by root (UID 0, GID 0)\n"
    "lock was created at 2026-11-27 07:12:46 (3.2s ago)\n"
    "storage ID 8b1dc3c5\n"
    "the `unlock` command can be used to remove stale locks\n";
static const char refused_text[] =
    "Fatal: unable to open config file: Stat: Get \"https://127.0.0.1:1/b/?location=\": dial tcp "
    "127.0.0.1:1: connect: connection refused\n"
    "Is there a repository at the following location?\n"
    "s3:https://127.0.0.1:1/b\n";
static const char denied_text[] = "Fatal: unable to open config file: Stat: Access Denied.\n"
                                  "Is there a repository at the following location?\n"
                                  "s3:https://127.0.0.1:1/b\n";

struct fixture {
    char *dir, *bin, *log, *failtext;
    struct config cfg;
    struct restic r;
};

/* A restic that fails `snapshots` and `ls` the first `fails` times with
 * the text in FAILTEXT, logging each call's argv. */
static void setup_fake(struct fixture *fx, const char *text, int fails)
{
    fx->dir = xstrdup("/tmp/sc-test-retry-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->log = path_join(fx->dir, "log");
    fx->failtext = path_join(fx->dir, "failtext");
    sc_err e = {0};
    assert_int_equal(fs_write_atomic(fx->failtext, text, strlen(text), 0600, &e), 0);
    char *script = xasprintf(
        "#!/bin/sh\n"
        "d='%s'\n"
        "case \"$1\" in\n"
        "version) echo 'restic 0.14.0 compiled with go1.19.8 on linux/amd64'; exit 0;;\n"
        "unlock) echo \"$*\" >>\"$d/log\"; echo 'successfully removed locks'; exit 0;;\n"
        "esac\n"
        "echo \"$1\" >>\"$d/log\"\n"
        "n=$(cat \"$d/count\" 2>/dev/null || echo 0); n=$((n+1)); echo $n >\"$d/count\"\n"
        "if [ \"$1\" = ls ]; then echo '{\"struct_type\":\"node\",\"type\":\"file\","
        "\"path\":\"/attempt'$n'\",\"size\":1}'; fi\n"
        "if [ $n -le %d ]; then cat \"$d/failtext\" >&2; exit 1; fi\n"
        "case \"$1\" in\n"
        "snapshots) echo '[]';;\n"
        "ls) echo "
        "'{\"struct_type\":\"node\",\"type\":\"file\",\"path\":\"/second\",\"size\":2}';;\n"
        "esac\n",
        fx->dir, fails);
    char *bin = path_join(fx->dir, "restic");
    assert_int_equal(fs_write_atomic(bin, script, strlen(script), 0700, &e), 0);
    free(script);
    fx->bin = bin;
    memset(&fx->cfg, 0, sizeof fx->cfg);
    fx->cfg.restic.repository = xstrdup("s3:https://127.0.0.1:1/b");
    fx->cfg.restic.password_file = path_join(fx->dir, "pass");
    assert_int_equal(fs_write_atomic(fx->cfg.restic.password_file, "pw\n", 3, 0600, &e), 0);
    fx->cfg.restic.binary = xstrdup(bin);
    fx->cfg.restic.host = xstrdup("unit-host");
    fx->cfg.restic.timeout_s = 60;
    assert_int_equal(restic_open(&fx->r, &fx->cfg, &e), 0);
    fx->r.retry = (struct restic_retry){.tries = 3,
                                        .backoff_ms = {10, 20},
                                        .lock_wait_s = 1,
                                        .lock_poll_ms = 10,
                                        .lock_poll_max_ms = 80};
}

static void teardown_fake(struct fixture *fx)
{
    restic_close(&fx->r);
    free(fx->cfg.restic.repository);
    free(fx->cfg.restic.password_file);
    free(fx->cfg.restic.binary);
    free(fx->cfg.restic.host);
    fs_rm_rf(fx->dir);
    free(fx->dir);
    free(fx->bin);
    free(fx->log);
    free(fx->failtext);
}

/* The call log as one string (owned). */
static char *calls(struct fixture *fx)
{
    char *text = NULL;
    size_t len = 0;
    sc_err e = {0};
    if (!fs_exists(fx->log))
        return xstrdup("");
    assert_int_equal(fs_read_file(fx->log, 1 << 16, &text, &len, SC_EFAIL, &e), 0);
    return text;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_lock_unlock_then_retry(void **state)
{
    (void)state;
    struct fixture fx;
    setup_fake(&fx, locked_text, 2);
    json_t *list = NULL;
    sc_err e = {0};
    assert_int_equal(restic_snapshots(&fx.r, false, &list, &e), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    char *log = calls(&fx);
    /* each held lock: plain unlock (stale ones only), then again */
    assert_string_equal(log, "snapshots\nunlock\nsnapshots\nunlock\nsnapshots\n");
    free(log);
    teardown_fake(&fx);
}

static void test_lock_held_too_long(void **state)
{
    (void)state;
    struct fixture fx;
    setup_fake(&fx, locked_text, 1000);
    json_t *list = NULL;
    sc_err e = {0};
    double t0 = now_s();
    assert_int_equal(restic_snapshots(&fx.r, false, &list, &e), SC_ERESTIC);
    double took = now_s() - t0;
    assert_null(list);
    assert_contains(e.msg, "locked by another process");
    assert_contains(e.msg, "PID 4242 on other-host");
    /* waited about lock_wait_s (1 s), not forever */
    assert_true(took >= 0.9);
    assert_true(took < 10);
    char *log = calls(&fx);
    assert_null(strstr(log, "--remove-all"));
    assert_contains(log, "unlock\n");
    free(log);
    teardown_fake(&fx);
}

static void test_transient_then_success(void **state)
{
    (void)state;
    struct fixture fx;
    setup_fake(&fx, refused_text, 2);
    json_t *list = NULL;
    sc_err e = {0};
    assert_int_equal(restic_snapshots(&fx.r, false, &list, &e), 0);
    json_decref(list);
    char *log = calls(&fx);
    assert_string_equal(log, "snapshots\nsnapshots\nsnapshots\n"); /* no unlock */
    free(log);
    teardown_fake(&fx);
}

static void test_transient_gives_up_after_three(void **state)
{
    (void)state;
    struct fixture fx;
    setup_fake(&fx, refused_text, 1000);
    json_t *list = NULL;
    sc_err e = {0};
    assert_int_equal(restic_snapshots(&fx.r, false, &list, &e), SC_ERESTIC);
    assert_contains(e.msg, "backend error");
    assert_contains(e.msg, "connection refused");
    char *log = calls(&fx);
    assert_string_equal(log, "snapshots\nsnapshots\nsnapshots\n");
    free(log);
    teardown_fake(&fx);
}

static void test_permanent_not_retried(void **state)
{
    (void)state;
    struct fixture fx;
    setup_fake(&fx, denied_text, 1000);
    json_t *list = NULL;
    sc_err e = {0};
    assert_int_equal(restic_snapshots(&fx.r, false, &list, &e), SC_ERESTIC);
    assert_contains(e.msg, "Access Denied");
    char *log = calls(&fx);
    assert_string_equal(log, "snapshots\n");
    free(log);
    teardown_fake(&fx);
}

static void test_retry_within_deadline(void **state)
{
    (void)state;
    struct fixture fx;
    setup_fake(&fx, refused_text, 1000);
    /* a pause that would end after the call's timeout: no second attempt */
    fx.cfg.restic.timeout_s = 1;
    fx.r.retry.backoff_ms[0] = 5000;
    json_t *list = NULL;
    sc_err e = {0};
    double t0 = now_s();
    assert_int_equal(restic_snapshots(&fx.r, false, &list, &e), SC_ERESTIC);
    assert_true(now_s() - t0 < 3);
    char *log = calls(&fx);
    assert_string_equal(log, "snapshots\n");
    free(log);
    teardown_fake(&fx);
}

static void test_retried_output_not_doubled(void **state)
{
    (void)state;
    struct fixture fx;
    setup_fake(&fx, refused_text, 1);
    json_t *nodes = NULL;
    sc_err e = {0};
    assert_int_equal(restic_ls(&fx.r, "abcdef12", &nodes, &e), 0);
    /* the failed attempt's node is forgotten: the second attempt's two */
    assert_int_equal(json_array_size(nodes), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(nodes, 0), "path")),
                        "/attempt2");
    json_decref(nodes);
    teardown_fake(&fx);
}

/* restic 0.17+ retries a failing backend itself for up to 15 minutes: one
 * attempt of ours, and when [restic] timeout stops it, the message says
 * what restic was retrying (credentials in the URL hidden). */
static void test_restic_018_retries_itself(void **state)
{
    (void)state;
    struct fixture fx;
    setup_fake(&fx, refused_text, 0); /* for its config; its restic is replaced */
    restic_close(&fx.r);
    char *script = xasprintf(
        "#!/bin/sh\n"
        "case \"$1\" in\n"
        "version) echo 'restic 0.18.0 compiled with go1.24.4 on linux/amd64'; exit 0;;\n"
        "esac\n"
        "echo \"$1\" >>'%s'\n"
        "for d in 1.1s 2.3s; do echo \"Stat(<config/>) returned error, retrying after $d: Head "
        "\\\"http://key:secret@127.0.0.1:1/x/config\\\": dial tcp 127.0.0.1:1: connect: "
        "connection refused\" >&2; done\n"
        "exec sleep 30\n",
        fx.log);
    sc_err e = {0};
    assert_int_equal(fs_write_atomic(fx.bin, script, strlen(script), 0700, &e), 0);
    free(script);
    fx.cfg.restic.timeout_s = 1;
    assert_int_equal(restic_open(&fx.r, &fx.cfg, &e), 0);
    assert_int_equal(fx.r.retry.tries, 1);
    json_t *list = NULL;
    double t0 = now_s();
    assert_int_equal(restic_snapshots(&fx.r, false, &list, &e), SC_ERESTIC);
    assert_true(now_s() - t0 < 10);
    assert_contains(e.msg, "restic snapshots timed out after 1 s while retrying a backend error: "
                           "Stat(<config/>): Head \"http://***@127.0.0.1:1/x/config\": dial tcp "
                           "127.0.0.1:1: connect: connection refused");
    char *log = calls(&fx);
    assert_string_equal(log, "snapshots\n");
    free(log);
    teardown_fake(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_unlock_then_retry),
        cmocka_unit_test(test_lock_held_too_long),
        cmocka_unit_test(test_transient_then_success),
        cmocka_unit_test(test_transient_gives_up_after_three),
        cmocka_unit_test(test_permanent_not_retried),
        cmocka_unit_test(test_retry_within_deadline),
        cmocka_unit_test(test_retried_output_not_doubled),
        cmocka_unit_test(test_restic_018_retries_itself),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
