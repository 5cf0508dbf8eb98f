/* config_load on real temporary files: defaults, every key type, problems
 * with file and line, environment overrides, relative paths, parse_duration. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/core/config.h"
#include "../../src/source/source.h"
#include "../../src/core/fs.h"
#include "../../src/core/xalloc.h"

extern char **environ;

static char *tmpdir;

/* Minimal valid content: one source, a repository and a password file. */
#define VALID_TAIL                                                                                 \
    "[sqlite app]\n"                                                                               \
    "path = /srv/app.db\n"                                                                         \
    "[restic]\n"                                                                                   \
    "repository = /srv/repo\n"                                                                     \
    "password_file = /etc/pass\n"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Write text to tmpdir/name; returns the path (owned). */
static char *conf_file(const char *name, const char *text)
{
    char *path = path_join(tmpdir, name);
    write_file(path, text);
    return path;
}

struct loaded {
    struct config cfg;
    struct config_problems probs;
    sc_err err;
    int rc;
    char *path;
};

static void load_text(struct loaded *l, const char *text)
{
    memset(l, 0, sizeof *l);
    l->path = conf_file("stagecoach.conf", text);
    l->rc = config_load(&l->cfg, l->path, &source_kinds, &l->probs, &l->err);
}

static void loaded_free(struct loaded *l)
{
    config_free(&l->cfg);
    config_problems_free(&l->probs);
    free(l->path);
}

/* Does any problem contain all of the given fragments? */
static int has_problem(const struct loaded *l, const char *a, const char *b)
{
    for (size_t i = 0; i < l->probs.msgs.n; i++)
        if (strstr(l->probs.msgs.v[i], a) && (b == NULL || strstr(l->probs.msgs.v[i], b)))
            return 1;
    return 0;
}

/* has_problem with "FILE:LINE:" as the fragment. */
static int has_problem_line(const struct loaded *l, int line, const char *b)
{
    char *want = xasprintf("%s:%d:", l->path, line);
    int found = has_problem(l, want, b);
    free(want);
    return found;
}

static void dump_problems(const struct loaded *l)
{
    for (size_t i = 0; i < l->probs.msgs.n; i++)
        fprintf(stderr, "  problem: %s\n", l->probs.msgs.v[i]);
}

/* "FILE:LINE: [section] key" as a problem prefix. */
static int has_problem_at(const struct loaded *l, int line, const char *section, const char *key)
{
    char *want = key ? xasprintf("%s:%d: [%s] %s:", l->path, line, section, key)
                     : xasprintf("%s:%d: [%s]", l->path, line, section);
    int found = 0;
    for (size_t i = 0; i < l->probs.msgs.n; i++)
        if (strncmp(l->probs.msgs.v[i], want, strlen(want)) == 0)
            found = 1;
    if (!found) {
        fprintf(stderr, "  wanted a problem starting with: %s\n", want);
        dump_problems(l);
    }
    free(want);
    return found;
}

static void clear_stagecoach_env(void)
{
    for (;;) {
        char *name = NULL;
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "STAGECOACH_", 11) == 0) {
                name = xstrndup(*e, strcspn(*e, "="));
                break;
            }
        }
        if (name == NULL)
            return;
        unsetenv(name);
        free(name);
    }
}

static int group_setup(void **state)
{
    (void)state;
    clear_stagecoach_env();
    if ((tmpdir = tu_mkdtemp("config")) == NULL)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_rmdir(tmpdir);
    return 0;
}

static int each_teardown(void **state)
{
    (void)state;
    clear_stagecoach_env();
    return 0;
}

/* ---- defaults ---------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, VALID_TAIL);
    if (l.rc != 0)
        dump_problems(&l);
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.probs.msgs.n, 0);
    const struct config *c = &l.cfg;
    assert_string_equal(c->staging.dir, "/var/lib/stagecoach");
    assert_int_equal(c->staging.keep, 3);
    assert_false(c->staging.encrypt);
    assert_false(c->restic.init);
    assert_null(c->restic.host);
    assert_null(c->restic.repository_file);
    assert_int_equal(c->restic.tags.n, 0);
    assert_int_equal(c->restic.timeout_s, 6 * 3600);
    assert_int_equal(c->hooks.timeout_s, 5 * 60);
    assert_string_equal(c->run.mode, "single");
    assert_int_equal(c->run.interval_s, 24 * 3600);
    assert_int_equal(c->check.every_s, 7 * 86400);
    assert_int_equal(c->nsources, 1);
    const struct source_cfg *s = &c->sources[0];
    assert_string_equal(s->kind, "sqlite");
    assert_string_equal(s->name, "app");
    assert_string_equal(s->path, "/srv/app.db");
    assert_int_equal(s->check, CHECK_QUICK);
    assert_int_equal(s->busy_timeout_ms, 60000);
    assert_int_equal(s->step_pages, 1024);
    assert_string_equal(c->file, l.path);
    loaded_free(&l);
}

/* ---- every key type ---------------------------------------------------- */

static void test_every_key_type(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, "; a comment\n"
                  "# another comment\n"
                  "[staging]\n"
                  "dir = /data/staging   ; inline comment\n"
                  "keep = 7\n"
                  "encrypt = off\n"
                  "[sqlite app]\n"
                  "path = /srv/app.db\n"
                  "check = integrity_check\n"
                  "busy_timeout_ms = 1500\n"
                  "step_pages = 16\n"
                  "[sqlite other]\n"
                  "path = /srv/other.db\n"
                  "check = quick\n"
                  "[paths etc]\n"
                  "path = /etc/one\n"
                  "path = /etc/two with spaces\n"
                  "missing_ok = TRUE\n"
                  "[restic]\n"
                  "repository = s3:https://s3.example.com/bucket/path\n"
                  "password_file = /etc/pass\n"
                  "host = tracker-1\n"
                  "tag = torrust\n"
                  "tag = prod\n"
                  "init = Yes\n"
                  "timeout = 90m\n"
                  "binary = /opt/restic\n"
                  "[retention]\n"
                  "keep_last = 3\n"
                  "keep_daily = 7\n"
                  "keep_within = 30d\n"
                  "[check]\n"
                  "every = 2w\n"
                  "read_data_subset = 1/12\n"
                  "[hooks]\n"
                  "before_stage = /usr/bin/systemctl stop tracker\n"
                  "timeout = 45\n"
                  "[run]\n"
                  "mode = continuous\n"
                  "interval = 6h\n");
    if (l.rc != 0)
        dump_problems(&l);
    assert_int_equal(l.rc, 0);
    const struct config *c = &l.cfg;
    assert_string_equal(c->staging.dir, "/data/staging");
    assert_int_equal(c->staging.keep, 7);
    assert_false(c->staging.encrypt);
    assert_int_equal(c->nsources, 3);
    assert_int_equal(c->sources[0].check, CHECK_INTEGRITY);
    assert_int_equal(c->sources[0].busy_timeout_ms, 1500);
    assert_int_equal(c->sources[0].step_pages, 16);
    assert_string_equal(c->sources[1].name, "other");
    assert_int_equal(c->sources[1].check, CHECK_QUICK);
    assert_string_equal(c->sources[2].kind, "paths");
    assert_int_equal(c->sources[2].paths.n, 2);
    assert_string_equal(c->sources[2].paths.v[0], "/etc/one");
    assert_string_equal(c->sources[2].paths.v[1], "/etc/two with spaces");
    assert_true(c->sources[2].missing_ok);
    assert_string_equal(c->restic.repository, "s3:https://s3.example.com/bucket/path");
    assert_string_equal(c->restic.host, "tracker-1");
    assert_int_equal(c->restic.tags.n, 2);
    assert_string_equal(c->restic.tags.v[0], "torrust");
    assert_string_equal(c->restic.tags.v[1], "prod");
    assert_true(c->restic.init);
    assert_int_equal(c->restic.timeout_s, 90 * 60);
    assert_string_equal(c->restic.binary, "/opt/restic");
    assert_int_equal(c->retention.keep_last, 3);
    assert_int_equal(c->retention.keep_daily, 7);
    assert_string_equal(c->retention.keep_within, "30d");
    assert_int_equal(c->check.every_s, 14 * 86400);
    assert_string_equal(c->check.read_data_subset, "1/12");
    assert_string_equal(c->hooks.cmd[0], "/usr/bin/systemctl stop tracker");
    assert_int_equal(c->hooks.timeout_s, 45);
    assert_string_equal(c->run.mode, "continuous");
    assert_int_equal(c->run.interval_s, 6 * 3600);
    loaded_free(&l);
}

static void test_bool_spellings(void **state)
{
    (void)state;
    static const char *const yes[] = {"yes", "true", "on", "1", "YES", "True"};
    static const char *const no[] = {"no", "false", "off", "0", "NO", "False"};
    for (size_t i = 0; i < 6; i++) {
        for (int want = 0; want < 2; want++) {
            char *text = xasprintf(VALID_TAIL "init = %s\n", want ? yes[i] : no[i]);
            struct loaded l;
            load_text(&l, text);
            assert_int_equal(l.rc, 0);
            assert_int_equal(l.cfg.restic.init, want);
            loaded_free(&l);
            free(text);
        }
    }
    struct loaded l;
    load_text(&l, VALID_TAIL "init = maybe\n");
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem_at(&l, 6, "restic", "init"));
    loaded_free(&l);
}

/* ---- problems name file, line and key ---------------------------------- */

static void test_problem_lines(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, "[staging]\n"           /* 1 */
                  "keep = three\n"        /* 2 */
                  "\n"                    /* 3 */
                  "[sqlite app]\n"        /* 4 */
                  "path = /srv/app.db\n"  /* 5 */
                  "check = thorough\n"    /* 6 */
                  "[restic]\n"            /* 7 */
                  "repository = /srv/r\n" /* 8 */
                  "password_file = /p\n"  /* 9 */
                  "timeout = 6 hours\n"   /* 10 */
                  "init = perhaps\n"      /* 11 */
                  "; a comment line\n"    /* 12 */
                  "host =\n"              /* 13 */
                  "[run]\n"               /* 14 */
                  "interval = soon\n");   /* 15 */
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_int_equal(l.err.code, SC_ECONFIG);
    assert_true(has_problem_at(&l, 2, "staging", "keep"));
    assert_true(has_problem_at(&l, 6, "sqlite app", "check"));
    assert_true(has_problem_at(&l, 10, "restic", "timeout"));
    assert_true(has_problem_at(&l, 11, "restic", "init"));
    assert_true(has_problem_at(&l, 13, "restic", "host"));
    assert_true(has_problem_at(&l, 15, "run", "interval"));
    assert_int_equal(l.probs.msgs.n, 6);
    /* err carries the first problem */
    assert_string_equal(l.err.msg, l.probs.msgs.v[0]);
    loaded_free(&l);
}

static void test_long_line_counts_once(void **state)
{
    (void)state;
    /* a value longer than any read buffer must not shift later line numbers */
    size_t n = 50000;
    char *big = xmalloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    char *text = xasprintf("[hooks]\n"                /* 1 */
                           "before_stage = /bin/%s\n" /* 2 */
                           "[staging]\n"              /* 3 */
                           "keep = x\n" VALID_TAIL,   /* 4 */
                           big);
    struct loaded l;
    load_text(&l, text);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem_at(&l, 4, "staging", "keep"));
    loaded_free(&l);
    free(text);
    free(big);
}

static void test_unknown_key_and_section(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, "[staging]\n"
                  "kep = 3\n" /* 2 */
                  "[stagging]\n"
                  "dir = /x\n" /* 4 */
                  "[postgres db]\n"
                  "path = /x\n" /* 6 */
                  "[sqlite ../up]\n"
                  "path = /x\n" /* 8 */
              VALID_TAIL);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem_at(&l, 2, "staging", "kep"));
    assert_true(has_problem(&l, ":3: [stagging]", "unknown section"));
    assert_true(has_problem(&l, ":5: [postgres db]", "postgres"));
    assert_true(has_problem(&l, ":7: [sqlite ../up]", "../up"));
    /* the bad sections made no sources */
    assert_int_equal(l.cfg.nsources, 1);
    loaded_free(&l);
}

static void test_duplicate_key(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, "[staging]\n"
                  "dir = /a\n" /* 2 */
                  "keep = 2\n"
                  "dir = /b\n" /* 4 */
              VALID_TAIL);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem_at(&l, 4, "staging", "dir"));
    assert_true(has_problem(&l, "set twice", "line 2"));
    loaded_free(&l);

    /* a list key may repeat */
    load_text(&l, VALID_TAIL "tag = a\ntag = b\ntag = c\n");
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.cfg.restic.tags.n, 3);
    loaded_free(&l);

    /* the same key in two different sources is not a duplicate */
    load_text(&l, VALID_TAIL "[sqlite two]\npath = /srv/two.db\n");
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.cfg.nsources, 2);
    loaded_free(&l);
}

static void test_required_and_combinations(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, "[sqlite app]\npath = /srv/app.db\n[restic]\nhost = h\n");
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem(&l, "[restic] repository", "missing"));
    assert_true(has_problem(&l, "[restic] password_file", "missing"));
    loaded_free(&l);

    load_text(&l, VALID_TAIL "repository_file = /etc/repo\n");
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem(&l, "repository_file", "not both"));
    loaded_free(&l);

    /* no sources at all */
    load_text(&l, "[restic]\nrepository = /r\npassword_file = /p\n");
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem(&l, "no source", NULL));
    loaded_free(&l);

    /* a source without its path, names the source and the key */
    load_text(&l, "[sqlite app]\ncheck = quick\n[restic]\nrepository = /r\npassword_file = /p\n");
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem(&l, "[sqlite app] path", "missing"));
    loaded_free(&l);

    /* two sources with one name */
    load_text(&l, VALID_TAIL "[paths app]\npath = /etc/x\n");
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem(&l, "'app'", "twice"));
    loaded_free(&l);

    load_text(&l, "[staging]\nkeep = 0\n" VALID_TAIL);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem_at(&l, 2, "staging", "keep"));
    loaded_free(&l);
}

/* A missing key has no line of its own:
 * the section it belongs in is where to look. */
static void test_missing_key_names_the_section_line(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, "[sqlite app]\n"       /* 1 */
                  "path = /srv/app.db\n" /* 2 */
                  "[restic]\n"           /* 3 */
                  "host = h\n");         /* 4 */
    assert_int_equal(l.rc, SC_ECONFIG);
    int found = 0;
    for (int line = 3; line <= 4; line++)
        found |= has_problem_line(&l, line, "[restic] repository");
    if (!found)
        dump_problems(&l);
    assert_true(found);
    loaded_free(&l);
}

/* A list key's problem names its line like any other key. */
static void test_list_key_problem_has_its_line(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, VALID_TAIL     /* 1-5 */
              "tag = ok\n"       /* 6 */
              "tag = not,ok\n"); /* 7 */
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem_at(&l, 7, "restic", "tag"));
    loaded_free(&l);
}

/* A bad value checked by the source kind names the key's own line, not the
 * section's. */
static void test_source_value_problem_has_its_line(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, "[sqlite app]\n"       /* 1 */
                  "path = /srv/app.db\n" /* 2 */
                  "check = quick\n"      /* 3 */
                  "step_pages = 0\n"     /* 4 */
                  "[restic]\n"
                  "repository = /r\n"
                  "password_file = /p\n");
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem_at(&l, 4, "sqlite app", "step_pages"));
    loaded_free(&l);
}

/* A source section with no keys at all (its path commented out) must not
 * be dropped silently: that database would never be backed up. */
static void test_empty_source_section_is_a_problem(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, VALID_TAIL     /* 1-5 */
              "[sqlite other]\n" /* 6 */
              ";path = /srv/other.db\n");
    if (l.rc == 0)
        fprintf(stderr, "  [sqlite other] was accepted; sources: %zu\n", l.cfg.nsources);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem(&l, "other", NULL));
    loaded_free(&l);
}

static void test_syntax_error_line(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, "[staging]\n"
                  "keep = 2\n"
                  "this line has no equals sign\n" /* 3 */
              VALID_TAIL);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem_line(&l, 3, NULL));
    loaded_free(&l);

    load_text(&l, "keep = 3\n" VALID_TAIL);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem(&l, ":1:", "section"));
    loaded_free(&l);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct config cfg;
    struct config_problems probs = {0};
    sc_err err = {0};
    char *path = path_join(tmpdir, "does-not-exist.conf");
    assert_int_equal(config_load(&cfg, path, &source_kinds, &probs, &err), SC_ECONFIG);
    assert_non_null(strstr(err.msg, path));
    assert_true(probs.msgs.n >= 1);
    config_free(&cfg);
    config_problems_free(&probs);
    free(path);
}

/* ---- relative paths ---------------------------------------------------- */

static void test_relative_paths(void **state)
{
    (void)state;
    char *sub = path_join(tmpdir, "sub");
    sc_err err = {0};
    assert_int_equal(fs_mkdir_p(sub, 0700, &err), 0);
    char *path = path_join(sub, "x.conf");
    write_file(path, "[staging]\n"
                     "dir = staging\n"
                     "[sqlite app]\n"
                     "path = db/app.db\n"
                     "[paths etc]\n"
                     "path = etc/app\n"
                     "path = /abs/etc\n"
                     "[restic]\n"
                     "repository = /srv/repo\n"
                     "password_file = restic.pass\n"
                     "repository_file_unused_marker = 1\n");
    /* (the last line is an unknown key: check that resolution still happened) */
    struct config cfg;
    struct config_problems probs = {0};
    assert_int_equal(config_load(&cfg, path, &source_kinds, &probs, &err), SC_ECONFIG);
    char *want_dir = path_join(sub, "staging");
    char *want_db = path_join(sub, "db/app.db");
    char *want_pass = path_join(sub, "restic.pass");
    assert_string_equal(cfg.staging.dir, want_dir);
    assert_string_equal(cfg.sources[0].path, want_db);
    assert_string_equal(cfg.restic.password_file, want_pass);
    /* a repeatable path key resolves every entry */
    char *want_etc = path_join(sub, "etc/app");
    assert_string_equal(cfg.sources[1].paths.v[0], want_etc);
    assert_string_equal(cfg.sources[1].paths.v[1], "/abs/etc");
    free(want_etc);
    /* CFG_STR values are not paths: the repository stays as written */
    assert_string_equal(cfg.restic.repository, "/srv/repo");
    config_free(&cfg);
    config_problems_free(&probs);

    /* absolute paths are kept as they are */
    write_file(path, "[staging]\ndir = /abs/staging\n" VALID_TAIL);
    memset(&err, 0, sizeof err);
    memset(&probs, 0, sizeof probs);
    assert_int_equal(config_load(&cfg, path, &source_kinds, &probs, &err), 0);
    assert_string_equal(cfg.staging.dir, "/abs/staging");
    config_free(&cfg);
    config_problems_free(&probs);

    /* a config given by a bare relative name: relative to its directory, the
     * current one, made absolute (the paths stay right after a chdir) */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(sub), 0);
    write_file("y.conf", "[staging]\ndir = st\n" VALID_TAIL);
    assert_int_equal(config_load(&cfg, "y.conf", &source_kinds, &probs, &err), 0);
    char *real_sub = realpath(sub, NULL);
    assert_non_null(real_sub);
    char *want_st = path_join(real_sub, "st");
    assert_string_equal(cfg.staging.dir, want_st);
    free(want_st);
    free(real_sub);
    config_free(&cfg);
    config_problems_free(&probs);
    assert_int_equal(chdir(cwd), 0);

    free(want_dir);
    free(want_db);
    free(want_pass);
    free(path);
    free(sub);
}

/* ---- environment ------------------------------------------------------- */

static void test_env_override(void **state)
{
    (void)state;
    setenv("STAGECOACH_RESTIC_HOST", "from-env", 1);
    setenv("STAGECOACH_STAGING_KEEP", "9", 1);
    setenv("STAGECOACH_SQLITE_APP_PATH", "/env/app.db", 1);
    setenv("STAGECOACH_RESTIC_TAG", "envtag", 1);
    setenv("STAGECOACH_RESTIC_INIT", "yes", 1);
    struct loaded l;
    load_text(&l, VALID_TAIL "host = from-file\ntag = a\ntag = b\n");
    if (l.rc != 0)
        dump_problems(&l);
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.cfg.restic.host, "from-env");
    assert_int_equal(l.cfg.staging.keep, 9);
    assert_string_equal(l.cfg.sources[0].path, "/env/app.db");
    assert_true(l.cfg.restic.init);
    /* a list set from the environment replaces the list */
    assert_int_equal(l.cfg.restic.tags.n, 1);
    assert_string_equal(l.cfg.restic.tags.v[0], "envtag");
    loaded_free(&l);
    clear_stagecoach_env();

    /* typed: a bad value from the environment names the variable */
    setenv("STAGECOACH_STAGING_KEEP", "many", 1);
    load_text(&l, VALID_TAIL);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem(&l, "STAGECOACH_STAGING_KEEP", NULL));
    loaded_free(&l);
    clear_stagecoach_env();

    /* a key's allowed values hold from the environment too (they were
     * skipped: a typo in a hook policy silently meant "warn") */
    static const char *const bad[][2] = {
        {"STAGECOACH_HOOKS_BEFORE_STAGE_ON_ERROR", "wran"},
        {"STAGECOACH_RETENTION_KEEP_WITHIN", "7x"},
        {"STAGECOACH_SQLITE_APP_STEP_PAGES", "0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(bad[i][0], bad[i][1], 1);
        load_text(&l, VALID_TAIL);
        assert_int_equal(l.rc, SC_ECONFIG);
        assert_true(has_problem(&l, bad[i][0], NULL));
        loaded_free(&l);
        clear_stagecoach_env();
    }

    /* the reserved names are not settings */
    setenv("STAGECOACH_CONFIG", "/somewhere", 1);
    load_text(&l, VALID_TAIL);
    assert_int_equal(l.rc, 0);
    loaded_free(&l);
    clear_stagecoach_env();
}

static void test_env_unknown(void **state)
{
    (void)state;
    setenv("STAGECOACH_NOSUCH_KEY", "1", 1);
    struct loaded l;
    load_text(&l, VALID_TAIL);
    assert_int_equal(l.rc, SC_ECONFIG);
    assert_true(has_problem(&l, "STAGECOACH_NOSUCH_KEY", NULL));
    loaded_free(&l);
}

static void test_env_only(void **state)
{
    (void)state;
    setenv("STAGECOACH_RESTIC_REPOSITORY", "/env/repo", 1);
    setenv("STAGECOACH_RESTIC_PASSWORD_FILE", "/env/pass", 1);
    struct config cfg;
    struct config_problems probs = {0};
    sc_err err = {0};
    /* no file: defaults and environment; still needs a source */
    assert_int_equal(config_load(&cfg, NULL, &source_kinds, &probs, &err), SC_ECONFIG);
    assert_string_equal(cfg.restic.repository, "/env/repo");
    assert_string_equal(cfg.restic.password_file, "/env/pass");
    int no_source = 0;
    for (size_t i = 0; i < probs.msgs.n; i++)
        no_source |= strstr(probs.msgs.v[i], "no source") != NULL;
    assert_true(no_source);
    assert_int_equal(probs.msgs.n, 1);
    config_free(&cfg);
    config_problems_free(&probs);
}

/* ---- config_print ------------------------------------------------------ */

static void test_print_redacts(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, "[sqlite app]\npath = /srv/app.db\n[restic]\n"
                  "repository = rest:https://user:Sup3rS3cret@backup.example.com:8000/x/\n"
                  "password_file = /etc/pass\nhost = h1\n");
    assert_int_equal(l.rc, 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    config_print(&l.cfg, f);
    fclose(f);
    assert_null(strstr(buf, "Sup3rS3cret"));
    assert_non_null(strstr(buf, "backup.example.com:8000/x/"));
    assert_non_null(strstr(buf, "[sqlite app]"));
    assert_non_null(strstr(buf, "host = h1"));
    free(buf);
    loaded_free(&l);
}

/* ---- parse_duration ---------------------------------------------------- */

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        long want;
    } good[] = {
        {"0", 0},       {"90", 90},      {"90s", 90},   {"5m", 300}, {"6h", 21600},
        {"7d", 604800}, {"2w", 1209600}, {"1d", 86400}, {"0s", 0},   {"3600s", 3600},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        long v = -42;
        if (parse_duration(good[i].in, &v) != 0 || v != good[i].want)
            fail_msg("parse_duration(\"%s\") = %ld, want %ld", good[i].in, v, good[i].want);
    }
    static const char *const bad[] = {
        "",
        "s",
        "m5",
        "5x",
        "5mm",
        "-5",
        " 5",
        "5 m",
        "5.5h",
        "1y",
        "+5",
        "5S",
        "0x10",
        "5h ",
        "h",
        "99999999999999999999",
        "9223372036854775807d",
        "153722867280912931m",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long v = 12345;
        if (parse_duration(bad[i], &v) == 0)
            fail_msg("parse_duration(\"%s\") accepted (%ld)", bad[i], v);
        assert_int_equal(v, 12345); /* untouched on failure */
    }
    long v = 7;
    assert_int_equal(parse_duration(NULL, &v), -1);
}

/* path_join, which relative config paths and restore messages go through. */
static void test_path_join_has_one_slash(void **state)
{
    (void)state;
    const char *cases[][3] = {
        {"/", "etc/x", "/etc/x"}, {"/", "/etc/x", "/etc/x"}, {"/a/", "b", "/a/b"},
        {"/a//", "/b", "/a/b"},   {"a", "b", "a/b"},         {"/a", "b/c", "/a/b/c"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = path_join(cases[i][0], cases[i][1]);
        assert_string_equal(p, cases[i][2]);
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_defaults, each_teardown),
        cmocka_unit_test_teardown(test_every_key_type, each_teardown),
        cmocka_unit_test_teardown(test_bool_spellings, each_teardown),
        cmocka_unit_test_teardown(test_problem_lines, each_teardown),
        cmocka_unit_test_teardown(test_long_line_counts_once, each_teardown),
        cmocka_unit_test_teardown(test_unknown_key_and_section, each_teardown),
        cmocka_unit_test_teardown(test_duplicate_key, each_teardown),
        cmocka_unit_test_teardown(test_required_and_combinations, each_teardown),
        cmocka_unit_test_teardown(test_syntax_error_line, each_teardown),
        cmocka_unit_test_teardown(test_missing_file, each_teardown),
        cmocka_unit_test_teardown(test_relative_paths, each_teardown),
        cmocka_unit_test_teardown(test_env_override, each_teardown),
        cmocka_unit_test_teardown(test_env_unknown, each_teardown),
        cmocka_unit_test_teardown(test_env_only, each_teardown),
        cmocka_unit_test_teardown(test_print_redacts, each_teardown),
        cmocka_unit_test_teardown(test_parse_duration, each_teardown),
        /* problems where the line to name is not the obvious one: */
        cmocka_unit_test_teardown(test_missing_key_names_the_section_line, each_teardown),
        cmocka_unit_test_teardown(test_list_key_problem_has_its_line, each_teardown),
        cmocka_unit_test_teardown(test_empty_source_section_is_a_problem, each_teardown),
        cmocka_unit_test_teardown(test_source_value_problem_has_its_line, each_teardown),
        cmocka_unit_test(test_path_join_has_one_slash),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
