/* PostgreSQL's own clients, pg_dump (the schema) and psql (loading it back),
 * spawned with an argv array (src/core/spawn.h), never through a shell.
 *
 * The password reaches them through a private passfile only: a 0600 file
 * of one line, "*:*:*:*:<password>", made in the set's (or the restore's)
 * own directory just before they run and removed right after, named by
 * PGPASSFILE in the child's environment. So it is never on an argv, never
 * in an environment, and gone when the run ends. The connection itself is
 * a libpq connection string on the argv: host, port, user, database, TLS
 * settings, none of them secret.
 *
 * A client's stderr is kept (its tail) and the line that says why it
 * failed becomes the one error message. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/env.h"
#include "../../core/fs.h"
#include "../../core/spawn.h"
#include "postgresql.h"

/* ---- finding the clients ----------------------------------------------------- */

int pg_parse_tool_version(const char *text, int *major, int *num, char **version)
{
    /* "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n" */
    const char *p = strstr(text, "(PostgreSQL) ");
    if (p == NULL)
        return -1;
    p += strlen("(PostgreSQL) ");
    int a = 0, b = 0, c = 0, used = 0;
    int got = sscanf(p, "%d.%d%n", &a, &b, &used);
    if (got < 1 || a <= 0)
        return -1;
    if (got == 1)
        b = 0;
    if (a < 10) {
        /* 9.6.24: the major version is two numbers */
        if (sscanf(p, "%d.%d.%d", &a, &b, &c) < 2)
            return -1;
        *major = a;
        *num = a * 10000 + b * 100 + c;
    } else {
        *major = a;
        *num = a * 10000 + b;
    }
    if (version != NULL) {
        size_t n = strcspn(p, "\r\n");
        *version = xstrndup(p, n);
    }
    return 0;
}

/* name in PATH, as posix_spawnp would find it (owned), or NULL. */
static char *find_in_path(const char *name)
{
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, ":");
        char *dir = n ? xstrndup(p, n) : xstrdup(".");
        char *full = path_join(dir, name);
        free(dir);
        if (access(full, X_OK) == 0)
            return full;
        free(full);
        p += n;
        if (*p == ':')
            p++;
    }
    return NULL;
}

int pg_tool_find(const struct source_cfg *cfg, const char *name, struct pg_tool *t, sc_err *err)
{
    memset(t, 0, sizeof *t);
    if (cfg->bin_dir != NULL) {
        t->path = path_join(cfg->bin_dir, name);
        if (access(t->path, X_OK) != 0)
            return sc_fail(err, SC_ESOURCE,
                           "postgresql %s: %s not found in bin_dir (%s): install the PostgreSQL "
                           "client programs there, or correct bin_dir",
                           cfg->name, name, cfg->bin_dir);
    } else {
        t->path = find_in_path(name);
        if (t->path == NULL)
            return sc_fail(err, SC_ESOURCE,
                           "postgresql %s: %s not found in PATH: install postgresql-client (of the "
                           "server's major version or newer), or set bin_dir",
                           cfg->name, name);
    }
    char *argv[] = {t->path, "--version", NULL};
    struct strvec env = {0};
    env_inherit_scrubbed(&env);
    struct spawn_opts o = {.argv = argv, .env = env.v, .timeout_s = 30, .max_stdout = 4096};
    struct spawn_result r;
    int rc = spawn_run(&o, &r, SC_ESOURCE, err);
    strvec_free(&env);
    if (rc == 0 && r.interrupted)
        rc = sc_fail(err, SC_EINTR, "postgresql %s: interrupted", cfg->name);
    else if (rc == 0 && (r.exit_code != 0 ||
                         pg_parse_tool_version(r.out, &t->major, &t->num, &t->version) != 0))
        rc = sc_fail(err, SC_ESOURCE, "postgresql %s: %s --version did not say its version: %.200s",
                     cfg->name, t->path, r.out);
    spawn_result_free(&r);
    return rc;
}

void pg_tool_free(struct pg_tool *t)
{
    free(t->path);
    free(t->version);
    memset(t, 0, sizeof *t);
}

/* ---- the passfile ---------------------------------------------------------------- */

char *pg_passfile_line(const char *password)
{
    size_t n = strlen(password);
    char *out = xmalloc(2 * n + 10), *o = out;
    memcpy(o, "*:*:*:*:", 8);
    o += 8;
    for (size_t i = 0; i < n; i++) {
        if (password[i] == '\\' || password[i] == ':')
            *o++ = '\\';
        *o++ = password[i];
    }
    *o++ = '\n';
    *o = '\0';
    return out;
}

int pg_passfile_write(const char *dir, const char *password, char **path, sc_err *err)
{
    *path = path_join(dir, ".pgpass-XXXXXX");
    int fd = mkostemp(*path, O_CLOEXEC);
    if (fd < 0) {
        int rc = sc_fail_errno(err, SC_ESTAGING, "cannot create a private passfile in %s", dir);
        free(*path);
        *path = NULL;
        return rc;
    }
    char *line = pg_passfile_line(password);
    int rc = 0;
    if (fchmod(fd, 0600) != 0 || fs_write_all(fd, line, strlen(line)) != 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", *path);
    sodium_memzero(line, strlen(line));
    free(line);
    if (close(fd) != 0 && rc == 0)
        rc = sc_fail_errno(err, SC_ESTAGING, "cannot write %s", *path);
    if (rc != 0)
        pg_passfile_remove(path);
    return rc;
}

void pg_passfile_remove(char **path)
{
    if (*path == NULL)
        return;
    (void)unlink(*path);
    free(*path);
    *path = NULL;
}

/* ---- connection strings -------------------------------------------------------- */

char *pg_conninfo_quote(const char *value)
{
    size_t n = strlen(value);
    char *out = xmalloc(2 * n + 3), *o = out;
    *o++ = '\'';
    for (size_t i = 0; i < n; i++) {
        if (value[i] == '\\' || value[i] == '\'')
            *o++ = '\\';
        *o++ = value[i];
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

static void add_param(struct strvec *parts, const char *key, const char *value)
{
    if (value == NULL)
        return;
    char *q = pg_conninfo_quote(value);
    strvec_pushf(parts, "%s=%s", key, q);
    free(q);
}

char *pg_conninfo(const struct source_cfg *cfg, const char *dbname, const char *appname)
{
    struct pg_settings st;
    pg_settings_of(cfg, &st);
    char port[24], timeout[24];
    snprintf(port, sizeof port, "%ld", cfg->port);
    snprintf(timeout, sizeof timeout, "%u", st.connect_s);
    struct strvec parts = {0};
    add_param(&parts, "host", cfg->host);
    add_param(&parts, "port", cfg->port > 0 ? port : NULL);
    add_param(&parts, "user", cfg->user);
    add_param(&parts, "dbname", dbname ? dbname : pg_database(cfg));
    add_param(&parts, "sslmode", cfg->sslmode);
    add_param(&parts, "sslrootcert", cfg->sslrootcert);
    add_param(&parts, "connect_timeout", timeout);
    add_param(&parts, "application_name", appname);
    size_t len = 1;
    for (size_t i = 0; i < parts.n; i++)
        len += strlen(parts.v[i]) + 1;
    char *out = xmalloc(len), *o = out;
    for (size_t i = 0; i < parts.n; i++)
        o += sprintf(o, "%s%s", i ? " " : "", parts.v[i]);
    *o = '\0';
    strvec_free(&parts);
    return out;
}

/* ---- running one -------------------------------------------------------------------- */

/* True when line (of len n) says why a client failed. */
static bool is_error_line(const char *line, size_t n)
{
    static const char *const marks[] = {"error: ", "ERROR:  ", "FATAL:  ", "PANIC:  "};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (memmem(line, n, marks[i], strlen(marks[i])) != NULL)
            return true;
    return false;
}

char *pg_stderr_reason(const char *text)
{
    /* the last error line, and the detail: lines that follow it */
    const char *best = NULL, *best_end = NULL, *last_line = NULL, *last_end = NULL;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl : p + strlen(p);
        size_t n = (size_t)(end - p);
        if (n > 0) {
            if (is_error_line(p, n)) {
                best = p;
                best_end = end;
            } else if (best != NULL && best_end != NULL &&
                       (memmem(p, n, "detail: ", 8) != NULL ||
                        memmem(p, n, "DETAIL:  ", 9) != NULL || memmem(p, n, "hint: ", 6))) {
                best_end = end;
            }
            last_line = p;
            last_end = end;
        }
        p = nl ? nl + 1 : end;
    }
    if (best == NULL) {
        best = last_line;
        best_end = last_end;
    }
    if (best == NULL)
        return xstrdup("no message");
    char *out = xstrndup(best, (size_t)(best_end - best));
    for (char *q = out; *q; q++)
        if (*q == '\n' || *q == '\t')
            *q = ' ';
    return out;
}

struct sink_feed {
    struct sink *sink;
    sc_err *err;
};

static int into_sink(void *ctx, const char *data, size_t len)
{
    struct sink_feed *f = ctx;
    return sink_write(f->sink, data, len, f->err);
}

static int discard(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 0;
}

int pg_child_run(const struct pg_child *ch, sc_err *err)
{
    struct strvec env = {0};
    env_inherit_scrubbed(&env);
    /* ours, or none at all: never one inherited from the caller */
    env_unset(&env, "PGPASSFILE", strlen("PGPASSFILE"));
    const char *passfile = ch->passfile ? ch->passfile : ch->cfg->passfile;
    if (passfile != NULL)
        env_set(&env, "PGPASSFILE", passfile);
    struct sink_feed feed = {.sink = ch->out, .err = err};
    struct spawn_opts o = {.argv = ch->argv,
                           .env = env.v,
                           .timeout_s = ch->timeout_s,
                           .on_stdout_data = ch->out ? into_sink : discard,
                           .ctx = &feed};
    struct spawn_result r;
    int rc = spawn_run(&o, &r, SC_ESOURCE, err);
    strvec_free(&env);
    if (rc != 0) {
        spawn_result_free(&r);
        return err->code ? err->code : SC_ESOURCE;
    }
    if (r.interrupted)
        rc = sc_fail(err, SC_EINTR, "postgresql %s: interrupted", ch->cfg->name);
    else if (r.timed_out)
        rc = sc_fail(err, SC_ESOURCE, "postgresql %s: %s did not finish within %ld s",
                     ch->cfg->name, ch->what, ch->timeout_s);
    else if (r.exit_code != 0) {
        char *why = pg_stderr_reason(r.err);
        const char *hint = pg_connect_hint(why);
        rc = sc_fail(err, SC_ESOURCE, "postgresql %s: %s failed (exit %d): %s%s%s%s", ch->cfg->name,
                     ch->what, r.exit_code, why, hint ? " (" : "", hint ? hint : "",
                     hint ? ")" : "");
        free(why);
    }
    spawn_result_free(&r);
    return rc;
}
