/* Unit tests for src/core/spawn.c and src/restic/restic.c: error
 * classification (restic 0.14 texts and 0.17+ exit codes), the env file
 * parser, spawn_run (output, timeouts, stop requests, fds), and a round
 * trip against the real restic binary when one is installed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../src/core/fs.h"
#include "../../src/core/spawn.h"
#include "../../src/restic/restic.h"

/* ---- helpers ---- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static sc_err classify(const char *what, int code, const char *text)
{
    sc_err e = {0};
    assert_int_equal(restic_classify(what, code, text, &e), SC_ERESTIC);
    assert_int_equal(e.code, SC_ERESTIC);
    assert_null(strchr(e.msg, '\n'));
    assert_null(strchr(e.msg, '\033'));
    return e;
}

/* ---- restic_classify: texts of restic 0.14.0, as captured ---- */

static void test_classify_wrong_password(void **state)
{
    (void)state;
    sc_err e = classify("backup", 1, "Fatal: wrong password or no key found\n");
    assert_contains(e.msg, "restic backup: wrong password or no key found");
}

static void test_classify_no_repo(void **state)
{
    (void)state;
    sc_err e = classify("cat config", 1,
                        "Fatal: unable to open config file: stat /srv/repo/config: no such file "
                        "or directory\nIs there a repository at the following location?\n"
                        "/srv/repo\n");
    assert_contains(e.msg, "repository does not exist at /srv/repo");
}

static void test_classify_locked(void **state)
{
    (void)state;
    sc_err e = classify("check", 1,
                        "using temporary cache in /tmp/restic-check-cache-1\n"
                        "create exclusive lock for repository\n"
                        "unable to create lock in backend: repository is already locked by PID "
                        "5374 on vm by root (UID 0, GID 0)\n"
                        "lock was created at 2026-11-27 07:12:46 (1.55s ago)\n"
                        "storage ID 8b1dc3c5\n"
                        "the `unlock` command can be used to remove stale locks\n");
    assert_contains(e.msg, "repository is locked by another process");
    assert_contains(e.msg, "PID 5374 on vm by root");
}

static void test_classify_backend_not_missing_repo(void **state)
{
    (void)state;
    /* 0.14 wraps a refused connection in "Is there a repository": it is
     * not a missing repository (and must not lead to init). */
    sc_err e = classify("cat config", 1,
                        "Fatal: unable to open config file: Stat: Get "
                        "\"http://127.0.0.1:1/bucket/?location=\": dial tcp 127.0.0.1:1: "
                        "connect: connection refused\nIs there a repository at the following "
                        "location?\ns3:http://127.0.0.1:1/bucket\n");
    assert_contains(e.msg, "backend error");
    assert_contains(e.msg, "connection refused");
    assert_lacks(e.msg, "does not exist");
}

static void test_classify_redacts_credentials(void **state)
{
    (void)state;
    sc_err e = classify("snapshots", 1,
                        "Fatal: unable to open config file: client.Head: Head "
                        "\"http://user:hunter2@10.0.0.1:8000/config\": dial tcp: no such host\n"
                        "Is there a repository at the following location?\n"
                        "rest:http://user:hunter2@10.0.0.1:8000/\n");
    assert_contains(e.msg, "backend error");
    assert_lacks(e.msg, "hunter2");
    assert_lacks(e.msg, "user:");
    e = classify("snapshots", 10,
                 "Fatal: repository does not exist: unable to open config file\n"
                 "Is there a repository at the following location?\n"
                 "rest:https://key:s3cr3t@host/repo/\n");
    assert_contains(e.msg, "repository does not exist at rest:https://***@host/repo/");
    assert_lacks(e.msg, "s3cr3t");
}

static void test_classify_exit_codes_017(void **state)
{
    (void)state;
    sc_err e = classify("backup", 10, "Fatal: repository does not exist: whatever\n");
    assert_contains(e.msg, "repository does not exist");
    e = classify("forget", 11, "");
    assert_contains(e.msg, "repository is locked by another process");
    e = classify("backup", 12, "Fatal: something new\n");
    assert_contains(e.msg, "wrong password or no key found");
    e = classify("backup", 130, "\033[2Ksignal interrupt received, cleaning up\n");
    assert_contains(e.msg, "restic backup was interrupted");
}

static void test_classify_unreadable_files(void **state)
{
    (void)state;
    sc_err e = classify("backup", 3,
                        "{\"message_type\":\"error\",\"error\":{\"Op\":\"open\",\"Path\":\"d/b\","
                        "\"Err\":13},\"during\":\"archival\",\"item\":\"/srv/set/d/b\"}\n"
                        "Warning: at least one source file could not be read\n");
    assert_contains(e.msg, "could not read /srv/set/d/b");
    assert_contains(e.msg, "incomplete");
    e = classify(
        "backup", 3,
        "{\"message_type\":\"error\",\"error\":{},\"during\":\"archival\",\"item\":\"/a\"}\n"
        "{\"message_type\":\"error\",\"error\":{},\"during\":\"archival\",\"item\":\"/b\"}\n");
    assert_contains(e.msg, "could not read 2 files (first: /a)");
    e = classify("backup", 3, "Warning: at least one source file could not be read\n");
    assert_contains(e.msg, "could not read some source files");
}

static void test_classify_strips_escapes(void **state)
{
    (void)state;
    sc_err e = classify("check", 1,
                        "\033[2K\033[1;31mFatal: repository contains errors\033[0m\r\n"
                        "\033]0;title\007\n");
    assert_string_equal(e.msg, "restic check failed (exit 1): repository contains errors");
    e = classify("prune", 1, "progress \r\033[2Klast words\033[K\n\n");
    assert_string_equal(e.msg, "restic prune failed (exit 1): last words");
}

static void test_classify_stack_trace_and_json(void **state)
{
    (void)state;
    /* 0.14 prints "%+v" of unexpected errors: the message is above the trace. */
    sc_err e = classify("dump", 1,
                        "cannot dump file: path \"/x\" not found in snapshot\n"
                        "main.runDump\n\tgithub.com/restic/restic/cmd/restic/cmd_dump.go:160\n"
                        "runtime.goexit\n\truntime/asm_amd64.s:1594\n");
    assert_string_equal(e.msg,
                        "restic dump failed (exit 1): cannot dump file: path \"/x\" not found "
                        "in snapshot");
    /* 0.18+ with --json: the error is a JSON object. */
    e = classify(
        "snapshots", 1,
        "{\"message_type\":\"exit_error\",\"code\":1,\"message\":\"invalid id\\nmore\"}\n");
    assert_string_equal(e.msg, "restic snapshots failed (exit 1): invalid id");
    e = classify("stats", 2, "");
    assert_string_equal(e.msg, "restic stats failed (exit 2)");
    e = classify("stats", 1, NULL);
    assert_string_equal(e.msg, "restic stats failed (exit 1)");
}

/* ---- env file ---- */

static const char *env_get(const struct strvec *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < env->n; i++)
        if (strncmp(env->v[i], name, n) == 0 && env->v[i][n] == '=')
            return env->v[i] + n + 1;
    return NULL;
}

static void test_env_file_parses(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("restic");
    char *path = tu_write_file(dir, "restic.env",
                               "# backend credentials\n"
                               "\n"
                               "export AWS_ACCESS_KEY_ID=AKIA123\n"
                               "AWS_SECRET_ACCESS_KEY=\"se cret#x\"\n"
                               "B2_ACCOUNT_KEY='sing\"le'\r\n"
                               "  SPACED = value with = sign  \n"
                               "EMPTY=\n"
                               "   # indented comment\n"
                               "LAST=no newline",
                               0600);
    struct strvec env = {0};
    strvec_push(&env, "AWS_ACCESS_KEY_ID=old");
    strvec_push(&env, "HOME=/root");
    sc_err e = {0};
    assert_int_equal(restic_parse_env_file(path, &env, &e), 0);
    assert_string_equal(env_get(&env, "AWS_ACCESS_KEY_ID"), "AKIA123");
    assert_string_equal(env_get(&env, "AWS_SECRET_ACCESS_KEY"), "se cret#x");
    assert_string_equal(env_get(&env, "B2_ACCOUNT_KEY"), "sing\"le");
    assert_string_equal(env_get(&env, "SPACED"), "value with = sign");
    assert_string_equal(env_get(&env, "EMPTY"), "");
    assert_string_equal(env_get(&env, "LAST"), "no newline");
    assert_string_equal(env_get(&env, "HOME"), "/root");
    assert_int_equal(env.n, 7); /* the old AWS_ACCESS_KEY_ID was replaced */
    assert_null(env.v[env.n]);
    strvec_free(&env);
    free(path);
    tu_rmdir(dir);
}

/* A bad line is exit 3 naming file and line, never echoing the content. */
static void expect_env_error(const char *text, mode_t mode, const char *want, const char *secret)
{
    char *dir = tu_tmpdir("restic");
    char *path = tu_write_file(dir, "restic.env", text, mode);
    struct strvec env = {0};
    sc_err e = {0};
    assert_int_equal(restic_parse_env_file(path, &env, &e), SC_ECONFIG);
    assert_int_equal(e.code, SC_ECONFIG);
    assert_contains(e.msg, path);
    assert_contains(e.msg, want);
    if (secret)
        assert_lacks(e.msg, secret);
    strvec_free(&env);
    free(path);
    tu_rmdir(dir);
}

static void test_env_file_errors(void **state)
{
    (void)state;
    expect_env_error("A=1\njust-a-secret-value\n", 0600, "line 2", "secret");
    expect_env_error("A=\"unterminated secret\n", 0600, "line 1", "secret");
    expect_env_error("A='x' trailing-secret\n", 0600, "line 1", "secret");
    expect_env_error("1A=secret\n", 0600, "line 1", "secret");
    expect_env_error("A secret\n", 0600, "line 1", "secret");
    expect_env_error("# ok\nRESTIC_PASSWORD=secret\n", 0600, "RESTIC_PASSWORD", "secret");
    expect_env_error("RESTIC_REPOSITORY=s3:x\n", 0600, "line 1", NULL);
    expect_env_error("A=1\n", 0644, "group or others", NULL);
}

/* ---- spawn_run ---- */

static void test_spawn_output_and_exit(void **state)
{
    (void)state;
    int fds = count_fds();
    char *argv[] = {"/bin/sh", "-c", "echo a; echo b >&2; exit 3", NULL};
    struct spawn_opts o = {.argv = argv, .stdout_fd = -1};
    struct spawn_result r;
    sc_err e = {0};
    assert_int_equal(spawn_run(&o, &r, SC_EFAIL, &e), 0);
    assert_string_equal(r.out, "a\n");
    assert_int_equal(r.out_len, 2);
    assert_string_equal(r.err, "b\n");
    assert_int_equal(r.err_len, 2);
    assert_int_equal(r.exit_code, 3);
    assert_false(r.timed_out);
    assert_false(r.interrupted);
    spawn_result_free(&r);
    assert_int_equal(count_fds(), fds);
}

struct lines {
    struct strvec v;
};

static void collect_line(void *ctx, const char *line, size_t len)
{
    struct lines *l = ctx;
    assert_int_equal(strlen(line), len);
    strvec_pushf(&l->v, "%.*s", (int)len, line);
}

static void test_spawn_lines_env_cwd(void **state)
{
    (void)state;
    char *argv[] = {"/bin/sh", "-c", "printf 'x\\n\\ny %s\\n' \"$FOO\"; pwd; printf tail", NULL};
    char *env[] = {"FOO=bar", NULL};
    struct lines l = {{0}};
    struct spawn_opts o = {.argv = argv,
                           .env = env,
                           .cwd = "/tmp",
                           .on_stdout_line = collect_line,
                           .ctx = &l,
                           .stdout_fd = -1};
    struct spawn_result r;
    sc_err e = {0};
    assert_int_equal(spawn_run(&o, &r, SC_EFAIL, &e), 0);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(l.v.n, 5);
    assert_string_equal(l.v.v[0], "x");
    assert_string_equal(l.v.v[1], "");
    assert_string_equal(l.v.v[2], "y bar");
    assert_string_equal(l.v.v[3], "/tmp");
    assert_string_equal(l.v.v[4], "tail"); /* a last line without '\n' */
    assert_string_equal(r.out, "");
    strvec_free(&l.v);
    spawn_result_free(&r);
}

static void test_spawn_timeout(void **state)
{
    (void)state;
    char *argv[] = {"sleep", "5", NULL};
    struct spawn_opts o = {.argv = argv, .timeout_s = 1, .grace_s = 1, .stdout_fd = -1};
    struct spawn_result r;
    sc_err e = {0};
    double t0 = now_s();
    assert_int_equal(spawn_run(&o, &r, SC_EFAIL, &e), 0);
    double took = now_s() - t0;
    assert_true(r.timed_out);
    assert_int_equal(r.exit_code, 128 + 2); /* SIGINT ended it */
    assert_true(took >= 0.9 && took < 3);
    spawn_result_free(&r);
}

static void test_spawn_timeout_kill(void **state)
{
    (void)state;
    /* A child that ignores SIGINT gets SIGKILL after the grace period. */
    char *argv[] = {"/bin/sh", "-c", "trap '' INT; exec sleep 10", NULL};
    struct spawn_opts o = {.argv = argv, .timeout_s = 1, .grace_s = 1, .stdout_fd = -1};
    struct spawn_result r;
    sc_err e = {0};
    double t0 = now_s();
    assert_int_equal(spawn_run(&o, &r, SC_EFAIL, &e), 0);
    double took = now_s() - t0;
    assert_true(r.timed_out);
    assert_int_equal(r.exit_code, 128 + 9);
    assert_true(took >= 1.9 && took < 4);
    spawn_result_free(&r);
}

static void test_spawn_stop_requested(void **state)
{
    (void)state;
    char *argv[] = {"sleep", "5", NULL};
    struct spawn_opts o = {.argv = argv, .grace_s = 1, .stdout_fd = -1};
    struct spawn_result r;
    sc_err e = {0};
    sc_stop_requested = 1;
    double t0 = now_s();
    int rc = spawn_run(&o, &r, SC_EFAIL, &e);
    sc_stop_requested = 0;
    assert_int_equal(rc, 0);
    assert_true(r.interrupted);
    assert_false(r.timed_out);
    assert_int_equal(r.exit_code, 130);
    assert_true(now_s() - t0 < 2);
    spawn_result_free(&r);
}

/* Under valgrind, posix_spawn cannot report a failed exec (the vfork-style
 * clone it relies on is emulated as a fork): the child exits 127 instead. */
static bool under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "valgrind");
}

static void test_spawn_missing_program(void **state)
{
    (void)state;
    if (under_valgrind())
        skip();
    int fds = count_fds();
    char *argv[] = {"/nonexistent/stagecoach-no-such-program", NULL};
    struct spawn_opts o = {.argv = argv, .stdout_fd = -1};
    struct spawn_result r;
    sc_err e = {0};
    assert_int_equal(spawn_run(&o, &r, SC_ERESTIC, &e), -1);
    assert_int_equal(e.code, SC_ERESTIC);
    assert_contains(e.msg, "cannot run /nonexistent/stagecoach-no-such-program");
    assert_contains(e.msg, "No such file");
    spawn_result_free(&r);
    char *argv2[] = {"stagecoach-no-such-program-in-path", NULL};
    o.argv = argv2;
    sc_err e2 = {0};
    assert_int_equal(spawn_run(&o, &r, SC_EFAIL, &e2), -1);
    assert_int_equal(e2.code, SC_EFAIL);
    spawn_result_free(&r);
    assert_int_equal(count_fds(), fds);
}

static void test_spawn_max_stdout(void **state)
{
    (void)state;
    char *argv[] = {"yes", NULL};
    struct spawn_opts o = {.argv = argv, .max_stdout = 1000, .grace_s = 1, .stdout_fd = -1};
    struct spawn_result r;
    sc_err e = {0};
    assert_int_equal(spawn_run(&o, &r, SC_EFAIL, &e), -1);
    assert_contains(e.msg, "larger than 1000 bytes");
    assert_true(r.out_len <= 1000);
    spawn_result_free(&r);
}

static void test_spawn_stdout_fd_and_stderr_tail(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("restic");
    char *path = path_join(dir, "out");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    /* 100000 bytes of stderr: only the last 64 KiB are kept. */
    char *argv[] = {"/bin/sh", "-c",
                    "echo to-file; head -c 99999 /dev/zero | tr '\\0' x >&2; echo z >&2", NULL};
    struct spawn_opts o = {.argv = argv, .stdout_fd = fd};
    struct spawn_result r;
    sc_err e = {0};
    assert_int_equal(spawn_run(&o, &r, SC_EFAIL, &e), 0);
    assert_int_equal(close(fd), 0);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.out_len, 0);
    assert_int_equal(r.err_len, 65536);
    assert_string_equal(r.err + r.err_len - 3, "xz\n");
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_file(path, 100, &text, &len, SC_EFAIL, &e), 0);
    assert_string_equal(text, "to-file\n");
    free(text);
    spawn_result_free(&r);
    free(path);
    tu_rmdir(dir);
}

static void test_spawn_grandchild_holds_pipe(void **state)
{
    (void)state;
    /* A background grandchild keeps the pipes open: we still return soon
     * after the child itself exits. */
    char *argv[] = {"/bin/sh", "-c", "sleep 4 & echo started", NULL};
    struct spawn_opts o = {.argv = argv, .stdout_fd = -1};
    struct spawn_result r;
    sc_err e = {0};
    double t0 = now_s();
    assert_int_equal(spawn_run(&o, &r, SC_EFAIL, &e), 0);
    assert_true(now_s() - t0 < 3.5);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "started\n");
    spawn_result_free(&r);
}

/* ---- restic_open / commands, with a fake restic (any version) ---- */

static void config_init(struct config *cfg, const char *dir, const char *binary)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->restic.repository = path_join(dir, "repo");
    cfg->restic.password_file = tu_write_file(dir, "pass", "correct horse\n", 0600);
    cfg->restic.binary = binary ? xstrdup(binary) : NULL;
    cfg->restic.host = xstrdup("unit-host");
    cfg->restic.timeout_s = 120;
}

static void config_fini(struct config *cfg)
{
    free(cfg->restic.repository);
    free(cfg->restic.password_file);
    free(cfg->restic.env_file);
    free(cfg->restic.binary);
    free(cfg->restic.host);
    strvec_free(&cfg->restic.tags);
}

/* A shell script standing in for restic 0.17+: version from $1, and the
 * exit code of `cat config` from $2. */
static char *fake_restic(const char *dir, const char *version, int cat_rc)
{
    char *text = xasprintf("#!/bin/sh\n"
                           "case \"$*\" in\n"
                           "version) echo 'restic %s compiled with go1.22 on linux/amd64';;\n"
                           "'cat config'*) echo 'Fatal: repository does not exist' >&2; exit %d;;\n"
                           "env) env;;\n"
                           "*) exit 1;;\n"
                           "esac\n",
                           version, cat_rc);
    char *path = tu_write_file(dir, "restic", text, 0700);
    free(text);
    return path;
}

static void test_restic_open_versions(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("restic");
    char *bin = fake_restic(dir, "0.17.3", 10);
    struct config cfg;
    config_init(&cfg, dir, bin);
    struct restic r;
    sc_err e = {0};
    assert_int_equal(restic_open(&r, &cfg, &e), 0);
    assert_int_equal(r.major, 0);
    assert_int_equal(r.minor, 17);
    assert_int_equal(r.patch, 3);
    assert_true(restic_at_least(&r, 17));
    assert_false(restic_at_least(&r, 18));
    assert_int_equal(r.retry.tries, 1); /* 0.17+ retries the backend itself */
    json_t *d = restic_describe(&r);
    assert_string_equal(json_string_value(json_object_get(d, "version")), "0.17.3");
    assert_string_equal(json_string_value(json_object_get(d, "path")), bin);
    json_decref(d);
    /* exit 10: no repository, and init not allowed */
    assert_int_equal(restic_ensure_repo(&r, false, &e), SC_ERESTIC);
    assert_contains(e.msg, "repository not found at ");
    assert_contains(e.msg, "init = yes");
    restic_close(&r);

    free(bin);
    bin = fake_restic(dir, "0.14.0", 0);
    assert_int_equal(restic_open(&r, &cfg, &e), 0);
    assert_false(restic_at_least(&r, 15));
    assert_int_equal(r.retry.tries, 3);
    restic_close(&r);

    free(bin);
    bin = fake_restic(dir, "0.12.1", 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(restic_open(&r, &cfg, &e), SC_ERESTIC);
    assert_contains(e.msg, "too old");
    restic_close(&r);

    free(cfg.restic.binary);
    cfg.restic.binary = xstrdup("/nonexistent/restic");
    memset(&e, 0, sizeof e);
    assert_int_equal(restic_open(&r, &cfg, &e), SC_ERESTIC);
    assert_contains(e.msg, "restic not found");
    restic_close(&r);

    config_fini(&cfg);
    free(bin);
    tu_rmdir(dir);
}

#define FAKE_ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A restic 0.17 backup: the full id in the summary, a 2^63 number that
 * jansson cannot hold as an integer, exit code from $BACKUP_RC. */
static char *fake_backup_restic(const char *dir, int backup_rc)
{
    char *text =
        xasprintf("#!/bin/sh\n"
                  "case \"$*\" in\n"
                  "version) echo 'restic 0.17.3 compiled with go1.22 on linux/amd64';;\n"
                  "backup*) echo '{\"message_type\":\"status\",\"percent_done\":0.5,"
                  "\"seconds_remaining\":9223372036854775808}'\n"
                  "  echo '{\"message_type\":\"summary\",\"files_new\":2,\"data_added\":1234,"
                  "\"total_bytes_processed\":17,\"total_duration\":1.5,\"seconds_remaining\":"
                  "9223372036854775808,\"snapshot_id\":\"" FAKE_ID "\"}'\n"
                  "  echo '{\"message_type\":\"error\",\"error\":{},\"item\":\"/set/x\"}' >&2\n"
                  "  exit %d;;\n"
                  "snapshots*) echo '[{\"time\":\"2026-01-01T00:00:00Z\",\"id\":\"" FAKE_ID "\","
                  "\"short_id\":\"01234567\"}]';;\n"
                  "*) exit 1;;\n"
                  "esac\n",
                  backup_rc);
    char *path = tu_write_file(dir, "restic", text, 0700);
    free(text);
    return path;
}

static void test_restic_backup_new_versions(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("restic");
    char *bin = fake_backup_restic(dir, 0);
    struct config cfg;
    config_init(&cfg, dir, bin);
    struct restic r;
    struct restic_backup_result b;
    sc_err e = {0};
    assert_int_equal(restic_open(&r, &cfg, &e), 0);
    assert_int_equal(restic_backup(&r, dir, "20260101T000000Z", &b, &e), 0);
    assert_string_equal(b.snapshot_id, FAKE_ID);
    assert_string_equal(b.short_id, "01234567");
    assert_int_equal(b.data_added, 1234);
    assert_int_equal(b.files_new, 2);
    assert_int_equal(b.total_bytes_processed, 17);
    assert_true(b.duration_s > 1.4 && b.duration_s < 1.6);
    restic_close(&r);

    /* Exit 3: files could not be read. A partial snapshot is a failure. */
    free(bin);
    bin = fake_backup_restic(dir, 3);
    assert_int_equal(restic_open(&r, &cfg, &e), 0);
    assert_int_equal(restic_backup(&r, dir, "20260101T000000Z", &b, &e), SC_ERESTIC);
    assert_contains(e.msg, "could not read /set/x");
    restic_close(&r);

    config_fini(&cfg);
    free(bin);
    tu_rmdir(dir);
}

static void test_restic_env_scrubbed(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("restic");
    char *bin = fake_restic(dir, "0.14.0", 0);
    struct config cfg;
    config_init(&cfg, dir, bin);
    cfg.restic.env_file = tu_write_file(dir, "env", "AWS_ACCESS_KEY_ID=k1\n", 0600);
    setenv("RESTIC_REPOSITORY_FILE", "/elsewhere", 1);
    setenv("RESTIC_PASSWORD", "inherited", 1);
    setenv("MYSQL_PWD", "dbsecret", 1);
    setenv("STAGECOACH_MYSQL_PASSWORD", "dbsecret", 1);
    struct restic r;
    sc_err e = {0};
    int rc = restic_open(&r, &cfg, &e);
    unsetenv("RESTIC_REPOSITORY_FILE");
    unsetenv("RESTIC_PASSWORD");
    unsetenv("MYSQL_PWD");
    unsetenv("STAGECOACH_MYSQL_PASSWORD");
    assert_int_equal(rc, 0);
    assert_null(env_get(&r.env, "STAGECOACH_MYSQL_PASSWORD"));
    assert_null(env_get(&r.env, "RESTIC_REPOSITORY_FILE"));
    assert_null(env_get(&r.env, "RESTIC_PASSWORD"));
    assert_null(env_get(&r.env, "MYSQL_PWD"));
    assert_string_equal(env_get(&r.env, "RESTIC_REPOSITORY"), cfg.restic.repository);
    assert_string_equal(env_get(&r.env, "RESTIC_PASSWORD_FILE"), cfg.restic.password_file);
    assert_string_equal(env_get(&r.env, "AWS_ACCESS_KEY_ID"), "k1");
    restic_close(&r);

    /* A password file others can read is a configuration error. */
    assert_int_equal(chmod(cfg.restic.password_file, 0644), 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(restic_open(&r, &cfg, &e), SC_ECONFIG);
    restic_close(&r);

    config_fini(&cfg);
    free(bin);
    tu_rmdir(dir);
}

/* ---- the real restic, end to end, on a local repository ---- */

static bool have_restic(void)
{
    return access("/usr/bin/restic", X_OK) == 0;
}

static void test_restic_round_trip(void **state)
{
    (void)state;
    if (!have_restic())
        skip();
    char *dir = tu_tmpdir("restic");
    struct config cfg;
    config_init(&cfg, dir, NULL);
    strvec_push(&cfg.restic.tags, "unit");
    char *cache = path_join(dir, "cache");
    setenv("RESTIC_CACHE_DIR", cache, 1);
    char *set = path_join(dir, "set");
    sc_err e = {0};
    assert_int_equal(fs_mkdir_p(set, 0700, &e), 0);
    free(tu_write_file(set, "B2SUMS", "abc  x\n", 0600));
    free(tu_write_file(set, "data.db", "0123456789", 0600));

    struct restic r;
    assert_int_equal(restic_open(&r, &cfg, &e), 0);
    assert_true(r.major > 0 || r.minor >= 14);
    assert_int_equal(restic_ensure_repo(&r, false, &e), SC_ERESTIC);
    assert_contains(e.msg, "repository not found at");
    memset(&e, 0, sizeof e);
    assert_int_equal(restic_ensure_repo(&r, true, &e), 0);
    assert_int_equal(restic_ensure_repo(&r, false, &e), 0);

    json_t *list = NULL;
    assert_int_equal(restic_snapshots(&r, true, &list, &e), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    json_t *snap = NULL;
    assert_int_equal(restic_find_snapshot(&r, "latest", &snap, &e), SC_ERESTIC);
    assert_contains(e.msg, "no snapshot");
    memset(&e, 0, sizeof e);

    struct restic_backup_result b;
    assert_int_equal(restic_backup(&r, set, "20260101T000000Z", &b, &e), 0);
    assert_int_equal(strlen(b.snapshot_id), 64);
    assert_int_equal(strlen(b.short_id), 8);
    assert_memory_equal(b.snapshot_id, b.short_id, 8);
    assert_int_equal(b.files_new, 2);
    assert_int_equal(b.total_bytes_processed, 17);

    assert_int_equal(restic_find_snapshot(&r, "latest", &snap, &e), 0);
    assert_string_equal(json_string_value(json_object_get(snap, "id")), b.snapshot_id);
    json_decref(snap);
    assert_int_equal(restic_find_snapshot(&r, b.short_id, &snap, &e), 0);
    assert_string_equal(json_string_value(json_object_get(snap, "hostname")), "unit-host");
    json_t *tags = json_object_get(snap, "tags");
    assert_int_equal(json_array_size(tags), 3);
    json_decref(snap);
    assert_int_equal(restic_find_snapshot(&r, "deadbeef", &snap, &e), SC_ERESTIC);
    memset(&e, 0, sizeof e);
    assert_int_equal(restic_find_snapshot(&r, "xyz", &snap, &e), SC_EUSAGE);
    memset(&e, 0, sizeof e);

    json_t *nodes = NULL;
    assert_int_equal(restic_ls(&r, b.snapshot_id, &nodes, &e), 0);
    char *db = path_join(set, "data.db");
    bool seen = false;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *p = json_string_value(json_object_get(n, "path"));
        if (p && strcmp(p, db) == 0) {
            seen = true;
            assert_int_equal(json_integer_value(json_object_get(n, "size")), 10);
        }
    }
    assert_true(seen);
    json_decref(nodes);

    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(restic_dump(&r, b.snapshot_id, db, 1024, &buf, &len, &e), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(buf, "0123456789", 10);
    free(buf);
    assert_int_equal(restic_dump(&r, b.snapshot_id, db, 5, &buf, &len, &e), SC_ERESTIC);
    assert_null(buf);
    memset(&e, 0, sizeof e);
    assert_int_equal(restic_dump(&r, b.snapshot_id, "/no/such/file", 1024, &buf, &len, &e),
                     SC_ERESTIC);
    assert_contains(e.msg, "restic dump failed");
    memset(&e, 0, sizeof e);

    char *target = path_join(dir, "restored");
    assert_int_equal(restic_restore(&r, b.snapshot_id, target, &e), 0);
    char *restored = path_join(target, db);
    assert_true(fs_exists(restored));
    free(restored);
    free(target);
    restic_close(&r);

    /* The wrong password. */
    free(tu_write_file(dir, "pass", "wrong\n", 0600));
    assert_int_equal(restic_open(&r, &cfg, &e), 0);
    assert_int_equal(restic_ensure_repo(&r, true, &e), SC_ERESTIC);
    assert_contains(e.msg, "wrong password");
    restic_close(&r);

    unsetenv("RESTIC_CACHE_DIR");
    free(db);
    free(cache);
    free(set);
    config_fini(&cfg);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_wrong_password),
        cmocka_unit_test(test_classify_no_repo),
        cmocka_unit_test(test_classify_locked),
        cmocka_unit_test(test_classify_backend_not_missing_repo),
        cmocka_unit_test(test_classify_redacts_credentials),
        cmocka_unit_test(test_classify_exit_codes_017),
        cmocka_unit_test(test_classify_unreadable_files),
        cmocka_unit_test(test_classify_strips_escapes),
        cmocka_unit_test(test_classify_stack_trace_and_json),
        cmocka_unit_test(test_env_file_parses),
        cmocka_unit_test(test_env_file_errors),
        cmocka_unit_test(test_spawn_output_and_exit),
        cmocka_unit_test(test_spawn_lines_env_cwd),
        cmocka_unit_test(test_spawn_timeout),
        cmocka_unit_test(test_spawn_timeout_kill),
        cmocka_unit_test(test_spawn_stop_requested),
        cmocka_unit_test(test_spawn_missing_program),
        cmocka_unit_test(test_spawn_max_stdout),
        cmocka_unit_test(test_spawn_stdout_fd_and_stderr_tail),
        cmocka_unit_test(test_spawn_grandchild_holds_pipe),
        cmocka_unit_test(test_restic_open_versions),
        cmocka_unit_test(test_restic_env_scrubbed),
        cmocka_unit_test(test_restic_backup_new_versions),
        cmocka_unit_test(test_restic_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
