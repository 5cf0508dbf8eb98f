/* Hooks: word splitting like a shell (without one), the environment a hook
 * sees, and the failure policy. Real programs run: /bin/sh scripts written
 * to a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/fs.h"
#include "../../src/core/hooks.h"
#include "../../src/core/words.h"

static void assert_words(const char *cmd, const char *const *want, size_t n)
{
    struct strvec v = {0};
    assert_null(words_split(cmd, &v));
    assert_int_equal(v.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(v.v[i], want[i]);
    strvec_free(&v);
}

static void test_split(void **state)
{
    (void)state;
    const char *const a[] = {"/usr/bin/ping", "fail"};
    assert_words("/usr/bin/ping fail", a, 2);
    const char *const b[] = {"svc", "stop", "my tracker"};
    assert_words("  svc\tstop 'my tracker'  ", b, 3);
    const char *const c[] = {"echo", "a \"b\" $HOME `x` \\"};
    assert_words("echo \"a \\\"b\\\" \\$HOME \\`x\\` \\\\\"", c, 2);
    const char *const d[] = {"x", ""};
    assert_words("x ''", d, 2);
    const char *const e[] = {"a b", "c;d", "$(id)"};
    assert_words("a\\ b c;d '$(id)'", e, 3);
    const char *const f[] = {"ab'c"};
    assert_words("a\"b\"\\'c", f, 1);
    assert_words("", NULL, 0);
}

static void test_split_errors(void **state)
{
    (void)state;
    struct strvec v = {0};
    assert_non_null(words_split("echo 'open", &v));
    strvec_free(&v);
    assert_non_null(words_split("echo \"open", &v));
    strvec_free(&v);
    assert_non_null(words_split("echo \\", &v));
    strvec_free(&v);
}

static char dir[] = "/tmp/test_hooks.XXXXXX";

static char *script(const char *name, const char *body)
{
    char *path = path_join(dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(path, 0700);
    return path;
}

static char *read_text(const char *name)
{
    char *path = path_join(dir, name), *buf;
    size_t len;
    sc_err e = {0};
    assert_int_equal(fs_read_file(path, 1 << 20, &buf, &len, 1, &e), 0);
    free(path);
    return buf;
}

static void test_env_and_secrets(void **state)
{
    (void)state;
    setenv("MYSQL_PASSWORD", "hunter2", 1);
    setenv("STAGECOACH_RESTIC_REPOSITORY", "rest:https://u:secret@h/", 1);
    char *out = path_join(dir, "env.out");
    char *body = xasprintf("env > '%s'", out);
    char *s = script("envdump", body);
    struct config cfg = {0};
    cfg.hooks.timeout_s = 10;
    cfg.hooks.cmd[HOOK_AFTER_SHIP] = s;
    struct hook_info info = {"run", "20261127T000000Z", "abcd1234", "success", 0, NULL};
    sc_err e = {0};
    assert_int_equal(hook_run(&cfg, HOOK_AFTER_SHIP, &info, &e), 0);
    char *env = read_text("env.out");
    assert_non_null(strstr(env, "STAGECOACH_COMMAND=run\n"));
    assert_non_null(strstr(env, "STAGECOACH_SET=20261127T000000Z\n"));
    assert_non_null(strstr(env, "STAGECOACH_SNAPSHOT=abcd1234\n"));
    assert_non_null(strstr(env, "STAGECOACH_STATUS=success\n"));
    assert_non_null(strstr(env, "STAGECOACH_EXIT_CODE=0\n"));
    assert_null(strstr(env, "hunter2"));
    assert_null(strstr(env, "secret"));
    unsetenv("MYSQL_PASSWORD");
    unsetenv("STAGECOACH_RESTIC_REPOSITORY");
    free(env);
    free(body);
    free(out);
    free(s);
}

static void test_policy(void **state)
{
    (void)state;
    char *s = script("fails", "exit 3");
    struct config cfg = {0};
    cfg.hooks.timeout_s = 10;
    cfg.hooks.cmd[HOOK_BEFORE_STAGE] = s;
    cfg.hooks.cmd[HOOK_ON_FAILURE] = s;
    struct hook_info info = {"run", NULL, NULL, NULL, 0, NULL};
    sc_err e = {0};
    /* before_stage fails by default: the run must not go on */
    assert_int_equal(hook_run(&cfg, HOOK_BEFORE_STAGE, &info, &e), SC_EFAIL);
    assert_non_null(strstr(e.msg, "before_stage"));
    assert_non_null(strstr(e.msg, "exit 3"));
    /* a notification only warns */
    sc_err e2 = {0};
    assert_int_equal(hook_run(&cfg, HOOK_ON_FAILURE, &info, &e2), 0);
    /* an explicit policy wins */
    cfg.hooks.on_error[HOOK_BEFORE_STAGE] = "warn";
    sc_err e3 = {0};
    assert_int_equal(hook_run(&cfg, HOOK_BEFORE_STAGE, &info, &e3), 0);
    free(s);
}

static void test_timeout_and_missing(void **state)
{
    (void)state;
    char *s = script("hangs", "exec sleep 30");
    struct config cfg = {0};
    cfg.hooks.timeout_s = 1;
    cfg.hooks.cmd[HOOK_BEFORE_SHIP] = s;
    struct hook_info info = {"run", NULL, NULL, NULL, 0, NULL};
    sc_err e = {0};
    assert_int_equal(hook_run(&cfg, HOOK_BEFORE_SHIP, &info, &e), SC_EFAIL);
    assert_non_null(strstr(e.msg, "timed out"));
    cfg.hooks.cmd[HOOK_BEFORE_SHIP] = "/nonexistent/hook arg";
    sc_err e2 = {0};
    assert_int_equal(hook_run(&cfg, HOOK_BEFORE_SHIP, &info, &e2), SC_EFAIL);
    free(s);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return fs_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_errors),
        cmocka_unit_test(test_env_and_secrets),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_timeout_and_missing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
