/* The deployer's backup.conf: the bash-assignment reader (what it accepts
 * and refuses, line by line), the deployer's rules (DB_TYPE and what each
 * type requires), and config_load reading it through $CONFIG_FILE: the
 * settings it becomes, the password in memory, the 0600 rule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/core/config.h"
#include "../../src/core/deployer_conf.h"
#include "../../src/source/source.h"
#include "../../src/core/fs.h"
#include "../../src/core/xalloc.h"

/* ---- the reader ------------------------------------------------------------ */

static void parse(struct dconf *d, const char *text, size_t len)
{
    memset(d, 0, sizeof *d);
    dconf_parse(text, len, d);
}

#define PARSE(d, text) parse(d, text, sizeof(text) - 1)

static void assert_var(const struct dconf *d, const char *name, const char *want)
{
    for (size_t i = 0; i < d->nvars; i++)
        if (strcmp(d->vars[i].name, name) == 0) {
            assert_string_equal(d->vars[i].value, want);
            return;
        }
    fail_msg("%s not set", name);
}

static int has_note(const struct dconf_note *n, size_t count, int line, const char *frag)
{
    for (size_t i = 0; i < count; i++)
        if ((line < 0 || n[i].line == line) && strstr(n[i].msg, frag) != NULL)
            return 1;
    return 0;
}

static void test_plain_quoted_and_exported(void **state)
{
    (void)state;
    struct dconf d;
    PARSE(&d, "# backup configuration\n"
              "\n"
              "BACKUP_RETENTION_DAYS=7\n"
              "export BACKUP_PATHS_FILE=/etc/backup/backup-paths.txt\n"
              "   DB_TYPE=\"sqlite\"   # the type\n"
              "DB_PATH='/data/storage/tracker/lib/database/sqlite3.db'\n"
              "DB_HOST=\n"
              "DB_USER=a'b c'\"d e\"f\n"
              "DB_NAME=file#1\n"
              "DB_PASSWORD='p$w\"d `x` \\n'\n"
              "DB_PORT=\"a\\\"b\\\\c\\$d\\`e\\x\"\n"
              "RESTIC_REPOSITORY=s3:https://h/b\\ x\n");
    assert_int_equal(d.nproblems, 0);
    assert_int_equal(d.nvars, 10);
    assert_var(&d, "BACKUP_RETENTION_DAYS", "7");
    assert_var(&d, "BACKUP_PATHS_FILE", "/etc/backup/backup-paths.txt");
    assert_var(&d, "DB_TYPE", "sqlite");
    assert_var(&d, "DB_PATH", "/data/storage/tracker/lib/database/sqlite3.db");
    assert_var(&d, "DB_HOST", "");
    assert_var(&d, "DB_USER", "ab cd ef");
    assert_var(&d, "DB_NAME", "file#1");             /* '#' inside a word: literal */
    assert_var(&d, "DB_PASSWORD", "p$w\"d `x` \\n"); /* single quotes: all literal */
    assert_var(&d, "DB_PORT", "a\"b\\c$d`e\\x");     /* only \" \\ \$ \` are escapes */
    assert_var(&d, "RESTIC_REPOSITORY", "s3:https://h/b x");
    assert_null(dconf_get(&d, "DB_HOST")); /* empty is unset */
    assert_var(&d, "DB_TYPE", "sqlite");
    assert_int_equal(d.vars[2].line, 5);
    dconf_free(&d);
}

static void test_crlf_bom_and_no_final_newline(void **state)
{
    (void)state;
    struct dconf d;
    PARSE(&d, "\xEF\xBB\xBF"
              "DB_TYPE=none\r\n"
              "\r\n"
              "DB_NAME='x'\r\n"
              "DB_PATH=/last");
    assert_int_equal(d.nproblems, 0);
    assert_var(&d, "DB_TYPE", "none");
    assert_var(&d, "DB_NAME", "x");
    assert_var(&d, "DB_PATH", "/last");
    assert_int_equal(d.vars[2].line, 4);
    dconf_free(&d);
}

/* Each line is refused with a problem on its own line, and the variable is
 * not set. None of the messages shows the value. */
static void test_refused_lines(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *why;
    } cases[] = {
        {"DB_PASSWORD=pa$word", "expanded"},
        {"DB_PASSWORD=\"pa$word\"", "inside double quotes"},
        {"DB_PASSWORD=`secretcmd`", "expanded"},
        {"DB_PASSWORD=$(secretcmd)", "expanded"},
        {"DB_PASSWORD=~secret/x", "leading ~"},
        {"DB_PASSWORD=secret;rm", "shell syntax"},
        {"DB_PASSWORD=secret|x", "shell syntax"},
        {"DB_PASSWORD=(secret x)", "shell syntax"},
        {"DB_PASSWORD=secret more", "blank inside the value"},
        {"DB_PASSWORD= secret", "blank inside the value"},
        {"DB_PASSWORD='secret", "single quote that does not end"},
        {"DB_PASSWORD=\"secret", "double quote that does not end"},
        {"DB_PASSWORD=secret\\", "line continuation"},
        {"DB_PASSWORD =secret", "no blanks around '='"},
        {"DB_PASSWORD+=secret", "not a KEY=value line"},
        {"1DB=secret", "not a KEY=value line"},
        {"export", "not a KEY=value line"},
        {"source /etc/secret", "not a KEY=value line"},
        {"=secret", "not a KEY=value line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = xasprintf("DB_TYPE=none\n%s\nDB_NAME=after\n", cases[i].line);
        struct dconf d;
        parse(&d, text, strlen(text));
        if (d.nproblems != 1 || !has_note(d.problems, d.nproblems, 2, cases[i].why))
            fail_msg("'%s': %zu problems, first '%s'", cases[i].line, d.nproblems,
                     d.nproblems ? d.problems[0].msg : "");
        assert_null(strstr(d.problems[0].msg, "secret"));
        assert_null(dconf_get(&d, "DB_PASSWORD"));
        assert_var(&d, "DB_NAME", "after"); /* the next line is still read */
        dconf_free(&d);
        free(text);
    }
}

static void test_nul_and_long_values(void **state)
{
    (void)state;
    struct dconf d;
    PARSE(&d, "DB_NAME=a\0b\nDB_PATH=/x\n");
    assert_int_equal(d.nproblems, 1);
    assert_true(has_note(d.problems, d.nproblems, 1, "NUL"));
    assert_var(&d, "DB_PATH", "/x");
    dconf_free(&d);

    size_t n = DCONF_MAX_VALUE + 1;
    char *text = xmalloc(n + 16);
    memcpy(text, "DB_NAME=", 8);
    memset(text + 8, 'v', n);
    parse(&d, text, 8 + n);
    assert_int_equal(d.nproblems, 1);
    assert_true(has_note(d.problems, d.nproblems, 1, "too long"));
    dconf_free(&d);
    parse(&d, text, 8 + n - 1); /* exactly the limit */
    assert_int_equal(d.nproblems, 0);
    assert_int_equal(strlen(dconf_get(&d, "DB_NAME")), DCONF_MAX_VALUE);
    dconf_free(&d);
    free(text);
}

static void test_set_twice_last_counts(void **state)
{
    (void)state;
    struct dconf d;
    PARSE(&d, "DB_TYPE=mysql\nDB_NAME=a\nDB_TYPE=sqlite\n");
    assert_int_equal(d.nproblems, 0);
    assert_var(&d, "DB_TYPE", "sqlite");
    assert_true(has_note(d.warnings, d.nwarnings, 3, "first on line 1"));
    dconf_free(&d);
}

/* ---- the deployer's rules ---------------------------------------------------- */

static const struct dconf_setting *setting(const struct dconf *d, const char *section,
                                           const char *key)
{
    for (size_t i = 0; i < d->nsettings; i++)
        if (strcmp(d->settings[i].section, section) == 0 && strcmp(d->settings[i].key, key) == 0)
            return &d->settings[i];
    return NULL;
}

static void assert_setting(const struct dconf *d, const char *section, const char *key,
                           const char *want)
{
    const struct dconf_setting *s = setting(d, section, key);
    if (s == NULL)
        fail_msg("[%s] %s not set", section, key);
    assert_string_equal(s->value, want);
}

static void translate(struct dconf *d, const char *text)
{
    parse(d, text, strlen(text));
    assert_int_equal(d->nproblems, 0);
    dconf_translate(d);
}

static void test_sqlite(void **state)
{
    (void)state;
    struct dconf d;
    translate(&d, "DB_TYPE=sqlite\nDB_PATH=/data/t.db\nBACKUP_PATHS_FILE=/etc/backup/p.txt\n"
                  "RESTIC_REPOSITORY=/r\nRESTIC_PASSWORD_FILE=/p\nDB_HOST=ignored\n");
    assert_int_equal(d.nproblems, 0);
    assert_int_equal(d.nwarnings, 0);
    assert_setting(&d, "sqlite tracker", "path", "/data/t.db");
    assert_setting(&d, "paths config", "from_file", "/etc/backup/p.txt");
    assert_setting(&d, "retention", "keep_within", "7d"); /* the deployer's default */
    assert_int_equal(setting(&d, "retention", "keep_within")->line, 0);
    assert_setting(&d, "restic", "repository", "/r");
    assert_setting(&d, "restic", "password_file", "/p");
    assert_int_equal(setting(&d, "sqlite tracker", "path")->line, 2);
    assert_null(setting(&d, "mysql tracker", "host"));
    assert_int_equal(d.nsettings, 5);
    dconf_free(&d);

    translate(&d, "DB_TYPE=sqlite\nDB_PATH=\n");
    assert_int_equal(d.nproblems, 1);
    assert_true(has_note(d.problems, 1, 1, "DB_TYPE=sqlite: missing required variable DB_PATH"));
    dconf_free(&d);
}

static void test_mysql(void **state)
{
    (void)state;
    struct dconf d;
    translate(&d, "DB_TYPE=mysql\nDB_HOST=mysql\nDB_PORT=3306\nDB_USER=tracker\n"
                  "DB_PASSWORD='hunter2 x'\nDB_NAME=torrust_tracker\nBACKUP_RETENTION_DAYS=30\n");
    assert_int_equal(d.nproblems, 0);
    assert_setting(&d, "mysql tracker", "host", "mysql");
    assert_setting(&d, "mysql tracker", "port", "3306");
    assert_setting(&d, "mysql tracker", "user", "tracker");
    assert_setting(&d, "mysql tracker", "database", "torrust_tracker");
    assert_setting(&d, "retention", "keep_within", "30d");
    const struct dconf_setting *pw = setting(&d, "mysql tracker", "password");
    assert_non_null(pw);
    assert_true(pw->in_memory);
    assert_string_equal(pw->value, "hunter2 x");
    assert_string_equal(pw->var, "DB_PASSWORD");
    for (size_t i = 0; i < d.nsettings; i++)
        if (&d.settings[i] != pw)
            assert_false(d.settings[i].in_memory);
    dconf_free(&d);

    /* every one of the five is required (the deployer checks DB_PORT too) */
    translate(&d, "DB_TYPE=mysql\nDB_HOST=h\nDB_USER=u\nDB_PASSWORD=\n");
    assert_int_equal(d.nproblems, 1);
    assert_true(has_note(d.problems, 1, 1,
                         "DB_TYPE=mysql: missing required variables: DB_PORT DB_PASSWORD DB_NAME"));
    assert_null(setting(&d, "mysql tracker", "host"));
    dconf_free(&d);
}

static void test_db_type_none_unknown_and_retention(void **state)
{
    (void)state;
    struct dconf d;
    translate(&d, "DB_TYPE=none\nBACKUP_PATHS_FILE=/p\n");
    assert_int_equal(d.nproblems, 0);
    assert_null(setting(&d, "sqlite tracker", "path"));
    assert_null(setting(&d, "mysql tracker", "host"));
    dconf_free(&d);
    translate(&d, "BACKUP_PATHS_FILE=/p\n"); /* unset: none */
    assert_int_equal(d.nproblems, 0);
    dconf_free(&d);

    /* anything else is named, as the deployer's "Unknown database type" */
    static const char *const bad[] = {"postgres", "MySQL", "SQLite", " mysql"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *text = xasprintf("\nDB_TYPE='%s'\n", bad[i]);
        translate(&d, text);
        char *want = xasprintf("DB_TYPE: unknown database type '%s'", bad[i]);
        assert_int_equal(d.nproblems, 1);
        assert_true(has_note(d.problems, 1, 2, want));
        free(want);
        free(text);
        dconf_free(&d);
    }

    static const char *const days[] = {"0", "-1", "7d", "x", "999999", "1.5"};
    for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
        char *text = xasprintf("BACKUP_RETENTION_DAYS=%s\n", days[i]);
        translate(&d, text);
        assert_int_equal(d.nproblems, 1);
        assert_true(has_note(d.problems, 1, 1, "whole number of days >= 1"));
        assert_null(setting(&d, "retention", "keep_within"));
        free(text);
        dconf_free(&d);
    }
}

static void test_unknown_variables_warn(void **state)
{
    (void)state;
    struct dconf d;
    translate(&d, "DB_TYPE=none\nBACKUP_DIR=/x\nbackup_retention_days=3\n");
    assert_int_equal(d.nproblems, 0);
    assert_int_equal(d.nwarnings, 2);
    assert_true(has_note(d.warnings, d.nwarnings, 2, "BACKUP_DIR: unknown variable, ignored"));
    assert_true(has_note(d.warnings, d.nwarnings, 3, "backup_retention_days: unknown"));
    dconf_free(&d);
}

/* ---- through config_load --------------------------------------------------- */

static char *tmpdir;

static int group_setup(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/sc-dconf-XXXXXX";
    if (mkdtemp(tmpl) == NULL)
        return -1;
    tmpdir = xstrdup(tmpl);
    unsetenv("RESTIC_REPOSITORY");
    unsetenv("RESTIC_REPOSITORY_FILE");
    unsetenv("RESTIC_PASSWORD_FILE");
    unsetenv("BACKUP_MODE");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char *f = path_join(tmpdir, "backup.conf");
    unlink(f);
    free(f);
    rmdir(tmpdir);
    free(tmpdir);
    unsetenv("CONFIG_FILE");
    return 0;
}

struct loaded {
    struct config cfg;
    struct config_problems probs;
    sc_err err;
    int rc;
};

static void load_conf(struct loaded *l, const char *text, mode_t mode)
{
    char *path = path_join(tmpdir, "backup.conf");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    assert_int_equal(setenv("CONFIG_FILE", path, 1), 0);
    assert_string_equal(config_deployer_file(), path);
    memset(l, 0, sizeof *l);
    l->rc = config_load(&l->cfg, NULL, &source_kinds, &l->probs, &l->err);
    free(path);
}

static void loaded_free(struct loaded *l)
{
    config_free(&l->cfg);
    config_problems_free(&l->probs);
}

static int problem_has(const struct loaded *l, const char *a, const char *b)
{
    for (size_t i = 0; i < l->probs.msgs.n; i++)
        if (strstr(l->probs.msgs.v[i], a) && (b == NULL || strstr(l->probs.msgs.v[i], b)))
            return 1;
    return 0;
}

#define MYSQL_CONF                                                                                 \
    "DB_TYPE=mysql\nDB_HOST=127.0.0.1\nDB_PORT=3306\nDB_USER=tracker\n"                            \
    "DB_PASSWORD='Zq-secret-9'\nDB_NAME=torrust\nRESTIC_REPOSITORY=/r\n"                           \
    "RESTIC_PASSWORD_FILE=/p\n"

static void test_load_mysql_password_in_memory(void **state)
{
    (void)state;
    struct loaded l;
    load_conf(&l, MYSQL_CONF, 0600);
    if (l.rc != 0)
        fail_msg("%s", l.err.msg);
    assert_non_null(l.cfg.file);
    assert_int_equal(l.cfg.nsources, 1);
    const struct source_cfg *s = &l.cfg.sources[0];
    assert_string_equal(s->kind, "mysql");
    assert_string_equal(s->name, "tracker");
    assert_string_equal(s->host, "127.0.0.1");
    assert_int_equal(s->port, 3306);
    assert_string_equal(s->password, "Zq-secret-9");
    assert_null(s->password_file);
    assert_string_equal(l.cfg.staging.dir, DCONF_STAGING_DIR);
    assert_string_equal(l.cfg.retention.keep_within, "7d");
    /* config show: that there is a password, never what */
    char *out = NULL;
    size_t outlen = 0;
    FILE *mem = open_memstream(&out, &outlen);
    assert_non_null(mem);
    config_print(&l.cfg, mem);
    assert_int_equal(fclose(mem), 0);
    assert_null(strstr(out, "Zq-secret-9"));
    assert_non_null(strstr(out, "; password = <redacted>"));
    free(out);
    loaded_free(&l);
}

static void test_load_refuses_a_readable_file_with_a_password(void **state)
{
    (void)state;
    static const mode_t modes[] = {0640, 0604, 0644, 0660};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        struct loaded l;
        load_conf(&l, MYSQL_CONF, modes[i]);
        assert_int_equal(l.rc, SC_ECONFIG);
        assert_true(problem_has(&l, "holding DB_PASSWORD", "chmod 600"));
        for (size_t j = 0; j < l.probs.msgs.n; j++)
            assert_null(strstr(l.probs.msgs.v[j], "Zq-secret-9"));
        loaded_free(&l);
    }
    /* without a password, a readable file is fine (no secret in it) */
    struct loaded l;
    load_conf(&l, "DB_TYPE=sqlite\nDB_PATH=/t.db\nRESTIC_REPOSITORY=/r\nRESTIC_PASSWORD_FILE=/p\n",
              0644);
    if (l.rc != 0)
        fail_msg("%s", l.err.msg);
    assert_string_equal(l.cfg.sources[0].path, "/t.db");
    loaded_free(&l);
}

static void test_load_problems_name_file_line_and_variable(void **state)
{
    (void)state;
    struct loaded l;
    load_conf(&l,
              "DB_TYPE=mysql\nDB_HOST=h\nDB_PORT=port\nDB_USER=u\nDB_PASSWORD=x\n"
              "DB_NAME=n\nRESTIC_REPOSITORY=/r\nRESTIC_PASSWORD_FILE=/p\nDB_PATH=$HOME\n",
              0600);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(problem_has(&l, "backup.conf:3: DB_PORT ([mysql tracker] port)", "'port'"));
    assert_true(problem_has(&l, "backup.conf:9: DB_PATH: $ or `", NULL));
    loaded_free(&l);

    load_conf(&l, "DB_TYPE=postgresql\n", 0600);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(
        problem_has(&l, "backup.conf:1: DB_TYPE: unknown database type 'postgresql'", NULL));
    loaded_free(&l);
}

/* restic's variables from the environment fill in what the file leaves out. */
static void test_load_restic_from_environment(void **state)
{
    (void)state;
    setenv("RESTIC_REPOSITORY", "/env/repo", 1);
    setenv("RESTIC_PASSWORD_FILE", "/env/pass", 1);
    struct loaded l;
    load_conf(&l, "DB_TYPE=sqlite\nDB_PATH=/t.db\n", 0600);
    if (l.rc != 0)
        fail_msg("%s", l.err.msg);
    assert_string_equal(l.cfg.restic.repository, "/env/repo");
    assert_string_equal(l.cfg.restic.password_file, "/env/pass");
    loaded_free(&l);
    load_conf(&l, "DB_TYPE=sqlite\nDB_PATH=/t.db\nRESTIC_REPOSITORY_FILE=/f/repo\n", 0600);
    if (l.rc != 0)
        fail_msg("%s", l.err.msg);
    assert_null(l.cfg.restic.repository);
    assert_string_equal(l.cfg.restic.repository_file, "/f/repo");
    loaded_free(&l);
    unsetenv("RESTIC_REPOSITORY");
    unsetenv("RESTIC_PASSWORD_FILE");
}

static void test_load_missing_config_file(void **state)
{
    (void)state;
    char *path = path_join(tmpdir, "nope.conf");
    setenv("CONFIG_FILE", path, 1);
    assert_string_equal(config_deployer_file(), path);
    struct loaded l = {0};
    l.rc = config_load(&l.cfg, NULL, &source_kinds, &l.probs, &l.err);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(problem_has(&l, path, "CONFIG_FILE"));
    loaded_free(&l);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_quoted_and_exported),
        cmocka_unit_test(test_crlf_bom_and_no_final_newline),
        cmocka_unit_test(test_refused_lines),
        cmocka_unit_test(test_nul_and_long_values),
        cmocka_unit_test(test_set_twice_last_counts),
        cmocka_unit_test(test_sqlite),
        cmocka_unit_test(test_mysql),
        cmocka_unit_test(test_db_type_none_unknown_and_retention),
        cmocka_unit_test(test_unknown_variables_warn),
        cmocka_unit_test(test_load_mysql_password_in_memory),
        cmocka_unit_test(test_load_refuses_a_readable_file_with_a_password),
        cmocka_unit_test(test_load_problems_name_file_line_and_variable),
        cmocka_unit_test(test_load_restic_from_environment),
        cmocka_unit_test(test_load_missing_config_file),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
