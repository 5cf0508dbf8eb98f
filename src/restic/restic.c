/* Talking to restic (tech-facts §1-§4).
 *
 * - The environment is built from ours minus every inherited repository,
 *   password or database secret, plus what the configuration names: the
 *   repository (or its file), the password file and the env_file's
 *   backend credentials. Nothing secret is ever put on argv.
 * - Every call is `restic [--cacert F] SUBCOMMAND ...` through spawn_run,
 *   with the configured timeout.
 * - restic 0.14 reports "no repository", "locked" and "wrong password" as
 *   exit 1 with a text on stderr; 0.17+ adds exit codes 10, 11 and 12. Both
 *   are understood, and every failure becomes one line with exit code 6. */
#include "restic.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/fs.h"
#include "../core/log.h"
#include "../core/spawn.h"

extern char **environ;

#define ENV_FILE_MAX (1u << 20)
#define VERSION_TIMEOUT_S 60L
#define MIN_MINOR 14 /* 0.14.0: Debian 12, repository format v2 */

/* ------------------------------------------------------------------------ */
/* Environment */

/* Inherited variables that must not reach restic: a stray RESTIC_REPOSITORY
 * next to our RESTIC_REPOSITORY_FILE is fatal in restic, a stray password
 * variable could select another key, and database passwords have no
 * business there. */
static const char *const scrubbed_vars[] = {
    "RESTIC_REPOSITORY",       "RESTIC_REPOSITORY_FILE",
    "RESTIC_PASSWORD",         "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND", "MYSQL_PWD",
    "MYSQL_PASSWORD",          NULL,
};

/* What the configuration sets itself: an env_file may not override it
 * (two sources of the repository or the password make restic fail). */
static const char *const reserved_vars[] = {
    "RESTIC_REPOSITORY",    "RESTIC_REPOSITORY_FILE",  "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND", NULL,
};

/* Does the environment entry "NAME=value" have this name? */
static bool env_entry_is(const char *entry, const char *name, size_t name_len)
{
    return strncmp(entry, name, name_len) == 0 && entry[name_len] == '=';
}

static bool in_list(const char *const *list, const char *name, size_t name_len)
{
    for (size_t i = 0; list[i]; i++)
        if (strlen(list[i]) == name_len && strncmp(list[i], name, name_len) == 0)
            return true;
    return false;
}

static void env_unset(struct strvec *env, const char *name, size_t name_len)
{
    size_t out = 0;
    for (size_t i = 0; i < env->n; i++) {
        if (env_entry_is(env->v[i], name, name_len))
            free(env->v[i]);
        else
            env->v[out++] = env->v[i];
    }
    env->n = out;
    if (env->v)
        env->v[out] = NULL;
}

static void env_set(struct strvec *env, const char *name, const char *value)
{
    env_unset(env, name, strlen(name));
    strvec_pushf(env, "%s=%s", name, value);
}

/* Our environment without the scrubbed variables, and without our own
 * STAGECOACH_* settings (they may carry secrets and are not restic's). */
static void env_inherit(struct strvec *env)
{
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL || in_list(scrubbed_vars, *e, (size_t)(eq - *e)) ||
            strncmp(*e, "STAGECOACH_", 11) == 0)
            continue;
        strvec_push(env, *e);
    }
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* One line of an env file, NUL-terminated and modified in place.
 * Returns 1 for an assignment (*key and *value point into line), 0 for a
 * blank or comment line, -1 when malformed. Values are taken literally:
 * no escapes, no inline comments (a secret may contain '#'). */
static int parse_env_line(char *line, char **key, char **value)
{
    size_t len = strlen(line);
    while (len > 0 && (is_blank(line[len - 1]) || line[len - 1] == '\r'))
        line[--len] = '\0';
    char *p = line;
    while (is_blank(*p))
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    if (strncmp(p, "export", 6) == 0 && is_blank(p[6])) {
        p += 6;
        while (is_blank(*p))
            p++;
    }
    if (!(isalpha((unsigned char)*p) || *p == '_'))
        return -1;
    *key = p;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    char *key_end = p;
    while (is_blank(*p))
        p++;
    if (*p != '=')
        return -1;
    *key_end = '\0';
    p++;
    while (is_blank(*p))
        p++;
    if (*p == '"' || *p == '\'') {
        char *close = strchr(p + 1, *p);
        if (close == NULL || close[1] != '\0')
            return -1; /* unterminated, or text after the closing quote */
        *close = '\0';
        p++;
    }
    *value = p;
    return 1;
}

/* Read KEY=VALUE lines into env (replacing same-named entries). The file
 * must be private. Messages name the file and line, never the content. */
int restic_parse_env_file(const char *path, struct strvec *env, sc_err *err)
{
    int rc = fs_check_private(path, "restic env_file", err);
    if (rc != 0)
        return rc;
    char *text = NULL;
    size_t len = 0;
    rc = fs_read_file(path, ENV_FILE_MAX, &text, &len, SC_ECONFIG, err);
    if (rc != 0)
        return rc;
    int lineno = 0;
    for (char *line = text; rc == 0 && line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        char *end = nl ? nl : text + len;
        lineno++;
        char *key = NULL, *value = NULL;
        int kind = -1;
        if (memchr(line, '\0', (size_t)(end - line)) == NULL) {
            *end = '\0'; /* end is the '\n' or the buffer's final NUL */
            kind = parse_env_line(line, &key, &value);
        }
        if (kind < 0)
            rc = sc_fail(err, SC_ECONFIG, "%s line %d: expected KEY=VALUE", path, lineno);
        else if (kind > 0 && in_list(reserved_vars, key, strlen(key)))
            rc = sc_fail(err, SC_ECONFIG,
                         "%s line %d: %s is set by stagecoach from the [restic] section; "
                         "remove it from the env file",
                         path, lineno, key);
        else if (kind > 0)
            env_set(env, key, value);
        line = end + 1;
    }
    explicit_bzero(text, len); /* credentials: do not leave them in freed memory */
    free(text);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Text from restic: escape sequences, credentials in URLs, the telling line */

/* A copy of s with the userinfo of every URL ("scheme://user:pass@host")
 * replaced by "***". restic already hides the password, but a user name
 * can be a key id, and a message must be safe whatever printed it. */
static char *redact_urls(const char *s)
{
    char *out = xmalloc(2 * strlen(s) + 1); /* "x@" -> "***@" at worst doubles */
    size_t o = 0;
    while (*s) {
        const char *sep = strstr(s, "://");
        if (sep == NULL) {
            size_t n = strlen(s);
            memcpy(out + o, s, n);
            o += n;
            break;
        }
        const char *auth = sep + 3;
        size_t auth_len = strcspn(auth, "/ \t\"'<>");
        const char *at = memrchr(auth, '@', auth_len);
        memcpy(out + o, s, (size_t)(auth - s));
        o += (size_t)(auth - s);
        if (at != NULL && at > auth) {
            memcpy(out + o, "***", 3);
            o += 3;
            s = at;
        } else {
            s = auth;
        }
    }
    out[o] = '\0';
    return out;
}

/* Add cur[0..len) to lines without surrounding blanks, unless empty. */
static void push_trimmed(struct strvec *lines, const char *cur, size_t len)
{
    while (len > 0 && isspace((unsigned char)cur[len - 1]))
        len--;
    size_t start = 0;
    while (start < len && cur[start] == ' ')
        start++;
    if (start < len)
        strvec_pushf(lines, "%.*s", (int)(len - start), cur + start);
}

/* Length of the escape sequence at s[0] == ESC (at most n bytes): CSI
 * (ESC [ ... final byte 0x40-0x7e), OSC (ESC ] ... BEL or ESC \), or a
 * two-byte escape. */
static size_t escape_len(const char *s, size_t n)
{
    size_t i = 1;
    if (n > 1 && s[1] == '[') {
        for (i = 2; i < n; i++)
            if ((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e)
                return i + 1;
        return n;
    }
    if (n > 1 && s[1] == ']') {
        for (i = 2; i < n; i++) {
            if (s[i] == '\a')
                return i + 1;
            if (s[i] == 0x1b)
                return i + 2 <= n ? i + 2 : n;
        }
        return n;
    }
    return n > 1 ? 2 : 1;
}

/* Split stderr into non-empty lines with terminal escape sequences and
 * control characters removed ('\r' ends a line: restic writes ESC[2K and
 * carriage returns even when stderr is not a terminal). Leading tabs stay:
 * they mark the frames of a Go stack trace. */
static void clean_lines(const char *text, struct strvec *lines)
{
    size_t n = text ? strlen(text) : 0;
    char *cur = xmalloc(n + 1);
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == 0x1b) {
            i += escape_len(text + i, n - i);
            continue;
        }
        if (ch == '\n' || ch == '\r') {
            push_trimmed(lines, cur, len);
            len = 0;
        } else if ((ch >= 0x20 && ch != 0x7f) || ch == '\t') {
            cur[len++] = (char)ch;
        }
        i++;
    }
    push_trimmed(lines, cur, len);
    free(cur);
}

/* The message of a JSON exit_error line (restic 0.18+ with --json), first
 * line only; owned, or NULL. */
static char *json_exit_message(const char *line)
{
    if (line[0] != '{')
        return NULL;
    json_t *j = json_loads(line, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "message_type"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    char *out = NULL;
    if (type && msg && strcmp(type, "exit_error") == 0)
        out = xstrndup(msg, strcspn(msg, "\n"));
    json_decref(j);
    return out;
}

static const char *skip_fatal(const char *s)
{
    return strncmp(s, "Fatal: ", 7) == 0 ? s + 7 : s;
}

/* The line that says what went wrong (owned, or NULL when there is none):
 * an exit_error message, else the last "Fatal:" line, else the message
 * above a Go stack trace (restic 0.14 prints "%+v" of unexpected errors:
 * message, then function name and "\tfile:line" pairs), else the last
 * line that is neither JSON nor a stack frame. */
static char *telling_line(const struct strvec *lines)
{
    size_t i;
    for (i = lines->n; i-- > 0;) {
        char *m = json_exit_message(lines->v[i]);
        if (m)
            return m;
    }
    for (i = lines->n; i-- > 0;)
        if (strncmp(lines->v[i], "Fatal: ", 7) == 0)
            return xstrdup(skip_fatal(lines->v[i]));
    for (i = 0; i < lines->n; i++) {
        if (lines->v[i][0] == '\t') {
            if (i >= 2)
                return xstrdup(lines->v[i - 2]);
            break;
        }
    }
    for (i = lines->n; i-- > 0;)
        if (lines->v[i][0] != '{' && lines->v[i][0] != '\t')
            return xstrdup(lines->v[i]);
    return NULL;
}

/* The first line containing needle (case-insensitive), or NULL. */
static const char *find_line(const struct strvec *lines, const char *needle, size_t *index)
{
    for (size_t i = 0; i < lines->n; i++) {
        if (strcasestr(lines->v[i], needle)) {
            if (index)
                *index = i;
            return lines->v[i];
        }
    }
    return NULL;
}

/* Texts that mean the backend could not be reached or refused us. On 0.14
 * they can come wrapped in "unable to open config file ... Is there a
 * repository", so they are looked for before the missing-repository texts. */
static const char *const backend_texts[] = {
    "connection refused",
    "no such host",
    "i/o timeout",
    "timeout awaiting",
    "TLS handshake",
    "x509:",
    "certificate",
    "connection reset",
    "network is unreachable",
    "no route to host",
    "context deadline",
    "Internal Server Error",
    "Bad Gateway",
    "Service Unavailable",
    "Gateway Timeout",
    "Access Denied",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "Forbidden",
    "subprocess ssh",
    "ssh: ",
    "rclone: ",
    NULL,
};

enum failure {
    FAIL_OTHER,
    FAIL_PASSWORD,
    FAIL_NO_REPO,
    FAIL_LOCKED,
    FAIL_BACKEND,
    FAIL_UNREADABLE,
    FAIL_INTERRUPTED,
};

static enum failure failure_kind(const char *what, int exit_code, const struct strvec *lines,
                                 const char **line)
{
    *line = NULL;
    switch (exit_code) { /* restic 0.17+ */
    case 10:
        return FAIL_NO_REPO;
    case 11:
        return FAIL_LOCKED;
    case 12:
        return FAIL_PASSWORD;
    case 130:
        return FAIL_INTERRUPTED;
    default:
        break;
    }
    if (exit_code == 3 && strcmp(what, "backup") == 0)
        return FAIL_UNREADABLE;
    /* restic 0.14-0.16: exit 1, and the text says which. */
    if (find_line(lines, "wrong password or no key found", NULL))
        return FAIL_PASSWORD;
    if (find_line(lines, "repository is already locked", NULL))
        return FAIL_LOCKED;
    for (size_t i = 0; backend_texts[i]; i++)
        if ((*line = find_line(lines, backend_texts[i], NULL)) != NULL)
            return FAIL_BACKEND;
    if (find_line(lines, "Is there a repository at the following location?", NULL) ||
        find_line(lines, "unable to open config file", NULL))
        return FAIL_NO_REPO;
    return FAIL_OTHER;
}

/* "PID 123 on host by user (UID 0, GID 0)" from restic's lock message. */
static char *lock_holder(const struct strvec *lines)
{
    const char *l = find_line(lines, "locked", NULL);
    const char *by = l ? strstr(l, "by PID ") : NULL;
    if (by)
        return redact_urls(by + 3);
    return l ? redact_urls(skip_fatal(l)) : NULL;
}

/* The repository location restic names after "Is there a repository at
 * the following location?", redacted; or NULL. */
static char *missing_location(const struct strvec *lines)
{
    size_t i;
    if (find_line(lines, "Is there a repository at the following location?", &i) &&
        i + 1 < lines->n)
        return redact_urls(lines->v[i + 1]);
    return NULL;
}

/* For backup exit 3: restic's JSON error lines on stderr name the items
 * it could not read ("error" is {} on 0.14, so only "item" is useful). */
static void unreadable_items(const char *stderr_text, char **first, size_t *count)
{
    *first = NULL;
    *count = 0;
    struct strvec lines = {0};
    clean_lines(stderr_text, &lines);
    for (size_t i = 0; i < lines.n; i++) {
        if (lines.v[i][0] != '{')
            continue;
        json_t *j = json_loads(lines.v[i], 0, NULL);
        const char *type = json_string_value(json_object_get(j, "message_type"));
        const char *item = json_string_value(json_object_get(j, "item"));
        if (type && strcmp(type, "error") == 0) {
            (*count)++;
            if (*first == NULL && item)
                *first = redact_urls(item);
        }
        json_decref(j);
    }
    strvec_free(&lines);
}

static int fail_unreadable(const char *stderr_text, const char *telling, sc_err *err)
{
    char *first;
    size_t count;
    unreadable_items(stderr_text, &first, &count);
    int rc;
    if (first && count > 1)
        rc = sc_fail(err, SC_ERESTIC,
                     "restic backup could not read %zu files (first: %s); an incomplete "
                     "backup does not count",
                     count, first);
    else if (first)
        rc = sc_fail(err, SC_ERESTIC,
                     "restic backup could not read %s; an incomplete backup does not count", first);
    else
        rc = sc_fail(err, SC_ERESTIC,
                     "restic backup could not read some source files%s%s; an incomplete "
                     "backup does not count",
                     telling ? ": " : "", telling ? telling : "");
    free(first);
    return rc;
}

int restic_classify(const char *what, int exit_code, const char *stderr_text, sc_err *err)
{
    struct strvec lines = {0};
    clean_lines(stderr_text, &lines);
    const char *line;
    enum failure kind = failure_kind(what, exit_code, &lines, &line);
    char *raw = telling_line(&lines);
    char *telling = raw ? redact_urls(raw) : NULL;
    char *detail = NULL, *raw2 = NULL;
    int rc;
    switch (kind) {
    case FAIL_PASSWORD:
        rc = sc_fail(err, SC_ERESTIC,
                     "restic %s: wrong password or no key found (check password_file)", what);
        break;
    case FAIL_NO_REPO:
        detail = missing_location(&lines);
        rc = sc_fail(err, SC_ERESTIC, "restic %s: repository does not exist%s%s", what,
                     detail ? " at " : "", detail ? detail : "");
        break;
    case FAIL_LOCKED:
        detail = lock_holder(&lines);
        rc = sc_fail(err, SC_ERESTIC,
                     "restic %s: repository is locked by another process (%s); if no restic "
                     "is running, `restic unlock` removes a stale lock",
                     what, detail ? detail : "no details");
        break;
    case FAIL_BACKEND:
        raw2 = json_exit_message(line); /* 0.18+: the line may be JSON */
        detail = redact_urls(skip_fatal(raw2 ? raw2 : line));
        free(raw2);
        rc = sc_fail(err, SC_ERESTIC, "restic %s: backend error: %s", what, detail);
        break;
    case FAIL_UNREADABLE:
        rc = fail_unreadable(stderr_text, telling, err);
        break;
    case FAIL_INTERRUPTED:
        rc = sc_fail(err, SC_ERESTIC, "restic %s was interrupted (exit %d)", what, exit_code);
        break;
    default:
        rc = sc_fail(err, SC_ERESTIC, "restic %s failed (exit %d)%s%s", what, exit_code,
                     telling ? ": " : "", telling ? telling : "");
        break;
    }
    free(detail);
    free(telling);
    free(raw);
    strvec_free(&lines);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Running restic */

/* argv: the binary, global flags, the subcommand. */
static void argv_start(const struct restic *r, struct strvec *argv, const char *subcommand)
{
    strvec_push(argv, r->binary);
    if (r->cfg->restic.cacert) {
        strvec_push(argv, "--cacert");
        strvec_push(argv, r->cfg->restic.cacert);
    }
    strvec_push(argv, subcommand);
}

static void log_argv(const struct strvec *argv)
{
    if (log_get_level() < LOG_VERBOSE)
        return;
    size_t len = 1;
    for (size_t i = 0; i < argv->n; i++)
        len += strlen(argv->v[i]) + 1;
    char *line = xmalloc(len);
    line[0] = '\0';
    for (size_t i = 0; i < argv->n; i++) {
        if (i > 0)
            strcat(line, " ");
        strcat(line, argv->v[i]);
    }
    log_debug("running %s", line); /* argv carries no secret by construction */
    free(line);
}

/* Run restic with our environment and timeout. Returns 0 when it ran to an
 * exit (any exit code: res is filled, the caller owns it); otherwise err is
 * set: it could not be started, timed out, or we were asked to stop. */
static int run(struct restic *r, const char *what, const struct strvec *argv, struct spawn_opts *o,
               struct spawn_result *res, sc_err *err)
{
    o->argv = argv->v;
    o->env = r->env.v;
    o->stdout_fd = -1;
    if (o->timeout_s == 0)
        o->timeout_s = r->cfg->restic.timeout_s;
    log_argv(argv);
    if (spawn_run(o, res, SC_ERESTIC, err) != 0) {
        spawn_result_free(res);
        return err->code ? err->code : SC_ERESTIC;
    }
    int rc = 0;
    if (res->interrupted)
        rc = sc_fail(err, SC_EINTR, "interrupted while restic %s was running", what);
    else if (res->timed_out)
        rc = sc_fail(err, SC_ERESTIC, "restic %s timed out after %ld s", what, o->timeout_s);
    if (rc != 0)
        spawn_result_free(res);
    return rc;
}

/* On failure, show restic's own words at -v, then classify. */
static int fail_from(const char *what, const struct spawn_result *res, sc_err *err)
{
    if (log_get_level() >= LOG_VERBOSE) {
        struct strvec lines = {0};
        clean_lines(res->err, &lines);
        for (size_t i = 0; i < lines.n; i++) {
            char *safe = redact_urls(lines.v[i]);
            log_debug("restic: %s", safe);
            free(safe);
        }
        strvec_free(&lines);
    }
    return restic_classify(what, res->exit_code, res->err, err);
}

/* Run and require exit 0; stdout collected in res (freed on failure). */
static int run_ok(struct restic *r, const char *what, const struct strvec *argv,
                  struct spawn_opts *o, struct spawn_result *res, sc_err *err)
{
    int rc = run(r, what, argv, o, res, err);
    if (rc == 0 && res->exit_code != 0) {
        rc = fail_from(what, res, err);
        spawn_result_free(res);
    }
    return rc;
}

static void debug_line(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    if (len > 0)
        log_debug("restic: %.*s", (int)len, line);
}

/* Parse one JSON object. restic can print integers above INT64_MAX
 * (seconds_remaining = 2^63 on 0.14), which jansson refuses as integers:
 * then read every number as a double. */
static json_t *parse_json(const char *text, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(text, len, 0, &e);
    if (j == NULL)
        j = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &e);
    return j;
}

static uint64_t get_u64(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d > 0))
            return 0;
        return d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
    }
    return 0;
}

/* Run a command that prints one JSON array on stdout. */
static int run_json_array(struct restic *r, const char *what, const struct strvec *argv,
                          json_t **out, sc_err *err)
{
    *out = NULL;
    struct spawn_opts o = {0};
    struct spawn_result res;
    int rc = run_ok(r, what, argv, &o, &res, err);
    if (rc != 0)
        return rc;
    json_t *j = parse_json(res.out, res.out_len);
    if (!json_is_array(j)) {
        json_decref(j);
        rc = sc_fail(err, SC_ERESTIC, "restic %s printed no JSON array", what);
    } else {
        *out = j;
    }
    spawn_result_free(&res);
    return rc;
}

/* The host name snapshots are made with and filtered by. */
static int this_host(const struct restic *r, char *buf, size_t size, sc_err *err)
{
    if (r->cfg->restic.host) {
        snprintf(buf, size, "%s", r->cfg->restic.host);
        return 0;
    }
    if (gethostname(buf, size) != 0)
        return sc_fail_errno(err, SC_EFAIL, "cannot get the host name");
    buf[size - 1] = '\0';
    return 0;
}

/* The repository for messages: never its credentials. */
static char *repo_location(const struct restic *r)
{
    if (r->cfg->restic.repository)
        return redact_urls(r->cfg->restic.repository);
    if (r->cfg->restic.repository_file)
        return xasprintf("the location in %s", r->cfg->restic.repository_file);
    return xstrdup("(no repository configured)");
}

/* ------------------------------------------------------------------------ */
/* Opening: environment and version */

static int build_env(struct restic *r, sc_err *err)
{
    const struct config *cfg = r->cfg;
    env_inherit(&r->env);
    if (cfg->restic.password_file) {
        int rc = fs_check_private(cfg->restic.password_file, "restic password_file", err);
        if (rc != 0)
            return rc;
    }
    if (cfg->restic.env_file) {
        int rc = restic_parse_env_file(cfg->restic.env_file, &r->env, err);
        if (rc != 0)
            return rc;
    }
    if (cfg->restic.repository)
        env_set(&r->env, "RESTIC_REPOSITORY", cfg->restic.repository);
    else if (cfg->restic.repository_file)
        env_set(&r->env, "RESTIC_REPOSITORY_FILE", cfg->restic.repository_file);
    if (cfg->restic.password_file)
        env_set(&r->env, "RESTIC_PASSWORD_FILE", cfg->restic.password_file);
    return 0;
}

/* `restic version`: "restic 0.14.0 compiled with go1.19.8 on linux/amd64". */
static int detect_version(struct restic *r, sc_err *err)
{
    struct strvec argv = {0};
    strvec_push(&argv, r->binary);
    strvec_push(&argv, "version");
    struct spawn_opts o = {.timeout_s = VERSION_TIMEOUT_S};
    struct spawn_result res;
    sc_err why = {0};
    int rc = run(r, "version", &argv, &o, &res, &why);
    strvec_free(&argv);
    if (rc != 0 && strncmp(why.msg, "cannot run", 10) == 0)
        return sc_fail(err, SC_ERESTIC,
                       "restic not found: %s (install restic 0.14 or newer, or set [restic] "
                       "binary)",
                       why.msg);
    if (rc != 0)
        return sc_fail(err, rc, "%s", why.msg);
    if (res.exit_code == 127) /* a wrapper's "command not found" (or exec failed) */
        rc = sc_fail(err, SC_ERESTIC,
                     "restic not found: %s exited with 127 (install restic 0.14 or newer, or "
                     "set [restic] binary)",
                     r->binary);
    else if (res.exit_code != 0)
        rc = fail_from("version", &res, err);
    if (rc != 0) {
        spawn_result_free(&res);
        return rc;
    }
    if (sscanf(res.out, "restic %d.%d.%d", &r->major, &r->minor, &r->patch) != 3)
        rc = sc_fail(err, SC_ERESTIC, "%s does not look like restic: `%s version` printed '%.*s'",
                     r->binary, r->binary, (int)strcspn(res.out, "\n"), res.out);
    else if (r->major == 0 && r->minor < MIN_MINOR)
        rc =
            sc_fail(err, SC_ERESTIC, "restic %d.%d.%d is too old: stagecoach needs 0.%d.0 or newer",
                    r->major, r->minor, r->patch, MIN_MINOR);
    else
        log_debug("restic %d.%d.%d", r->major, r->minor, r->patch);
    spawn_result_free(&res);
    return rc;
}

int restic_open(struct restic *r, const struct config *cfg, sc_err *err)
{
    memset(r, 0, sizeof *r); /* restic_close is safe whatever happens below */
    r->cfg = cfg;
    r->binary = xstrdup(cfg->restic.binary ? cfg->restic.binary : "restic");
    int rc = build_env(r, err);
    if (rc == 0)
        rc = detect_version(r, err);
    return rc;
}

void restic_close(struct restic *r)
{
    if (r == NULL)
        return;
    free(r->binary);
    r->binary = NULL;
    for (size_t i = 0; i < r->env.n; i++) /* it holds backend credentials */
        explicit_bzero(r->env.v[i], strlen(r->env.v[i]));
    strvec_free(&r->env);
}

/* ------------------------------------------------------------------------ */
/* Commands */

int restic_ensure_repo(struct restic *r, bool may_init, sc_err *err)
{
    struct strvec argv = {0};
    argv_start(r, &argv, "cat");
    strvec_push(&argv, "config");
    struct spawn_opts o = {0};
    struct spawn_result res;
    int rc = run(r, "cat config", &argv, &o, &res, err);
    strvec_free(&argv);
    if (rc != 0)
        return rc;
    if (res.exit_code == 0) {
        spawn_result_free(&res);
        return 0;
    }
    struct strvec lines = {0};
    clean_lines(res.err, &lines);
    const char *line;
    bool missing = failure_kind("cat config", res.exit_code, &lines, &line) == FAIL_NO_REPO;
    strvec_free(&lines);
    if (!missing) {
        rc = fail_from("cat config", &res, err);
        spawn_result_free(&res);
        return rc;
    }
    spawn_result_free(&res);

    char *where = repo_location(r);
    if (!may_init) {
        rc = sc_fail(err, SC_ERESTIC, "repository not found at %s (set init = yes to create it)",
                     where);
        free(where);
        return rc;
    }
    argv_start(r, &argv, "init");
    o = (struct spawn_opts){.on_stdout_line = debug_line};
    rc = run_ok(r, "init", &argv, &o, &res, err);
    strvec_free(&argv);
    if (rc == 0) {
        log_info("created a restic repository at %s", where);
        spawn_result_free(&res);
    }
    free(where);
    return rc;
}

/* ---- backup ---- */

struct backup_ctx {
    struct restic_backup_result *out;
    bool have_summary;
};

static void human_bytes(uint64_t n, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

static void show_status(json_t *j)
{
    json_t *pct = json_object_get(j, "percent_done");
    if (!json_is_number(pct) || !log_progress_enabled())
        return; /* 0.14 also sends scan_finished as a "status" without it */
    char done[32], total[32];
    human_bytes(get_u64(j, "bytes_done"), done, sizeof done);
    human_bytes(get_u64(j, "total_bytes"), total, sizeof total);
    log_progress("restic: %5.1f%%  %s of %s  %" PRIu64 "/%" PRIu64 " files",
                 json_number_value(pct) * 100, done, total, get_u64(j, "files_done"),
                 get_u64(j, "total_files"));
}

static void take_summary(struct backup_ctx *bc, json_t *j)
{
    struct restic_backup_result *out = bc->out;
    const char *id = json_string_value(json_object_get(j, "snapshot_id"));
    size_t n = id ? strspn(id, "0123456789abcdef") : 0;
    if (id && n == strlen(id) && n >= 8 && n <= 64) {
        memcpy(out->snapshot_id, id, n + 1); /* short on 0.14: completed later */
        memcpy(out->short_id, id, 8);
        out->short_id[8] = '\0';
    }
    out->data_added = get_u64(j, "data_added");
    out->files_new = get_u64(j, "files_new");
    out->files_changed = get_u64(j, "files_changed");
    out->files_unmodified = get_u64(j, "files_unmodified");
    out->total_bytes_processed = get_u64(j, "total_bytes_processed");
    out->duration_s = json_number_value(json_object_get(j, "total_duration"));
    bc->have_summary = true;
}

static void backup_line(void *ctx, const char *line, size_t len)
{
    struct backup_ctx *bc = ctx;
    json_t *j = parse_json(line, len);
    const char *type = json_string_value(json_object_get(j, "message_type"));
    if (type && strcmp(type, "status") == 0)
        show_status(j);
    else if (type && strcmp(type, "summary") == 0)
        take_summary(bc, j);
    else if (type == NULL)
        log_debug("restic: %.*s", (int)len, line);
    json_decref(j);
}

/* 0.14 prints the 8-hex short id: find the full one among the snapshots
 * tagged with this set and made by this host (a set shipped twice has
 * several: match the id). */
static int complete_id(struct restic *r, const char *host, const char *set_id,
                       struct restic_backup_result *out, sc_err *err)
{
    struct strvec argv = {0};
    argv_start(r, &argv, "snapshots");
    strvec_push(&argv, "--json");
    strvec_pushf(&argv, "--tag=set-%s", set_id);
    strvec_pushf(&argv, "--host=%s", host);
    json_t *list = NULL;
    int rc = run_json_array(r, "snapshots", &argv, &list, err);
    strvec_free(&argv);
    if (rc != 0)
        return rc;
    size_t i, found = 0;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        const char *id = json_string_value(json_object_get(s, "id"));
        if (id && strlen(id) == 64 &&
            strncmp(id, out->snapshot_id, strlen(out->snapshot_id)) == 0) {
            memcpy(out->snapshot_id, id, 65);
            found++;
        }
    }
    if (found != 1)
        rc = sc_fail(
            err, SC_ERESTIC, "restic made snapshot %s but %s it among the snapshots of set %s",
            out->short_id, found ? "found more than one match for" : "cannot find", set_id);
    json_decref(list);
    return rc;
}

int restic_backup(struct restic *r, const char *dir, const char *set_id,
                  struct restic_backup_result *out, sc_err *err)
{
    memset(out, 0, sizeof *out);
    char host[256];
    int rc = this_host(r, host, sizeof host, err);
    if (rc != 0)
        return rc;
    struct strvec argv = {0};
    argv_start(r, &argv, "backup");
    strvec_push(&argv, "--json");
    if (!log_progress_enabled())
        strvec_push(&argv, "--quiet"); /* since 0.13: only the summary line */
    strvec_pushf(&argv, "--host=%s", host);
    strvec_push(&argv, "--tag=stagecoach");
    for (size_t i = 0; i < r->cfg->restic.tags.n; i++)
        strvec_pushf(&argv, "--tag=%s", r->cfg->restic.tags.v[i]);
    strvec_pushf(&argv, "--tag=set-%s", set_id);
    strvec_push(&argv, "--");
    strvec_push(&argv, dir);

    struct backup_ctx bc = {.out = out};
    struct spawn_opts o = {.on_stdout_line = backup_line, .ctx = &bc};
    struct spawn_result res;
    rc = run(r, "backup", &argv, &o, &res, err);
    strvec_free(&argv);
    log_progress_done();
    if (rc != 0)
        return rc;
    /* Exit 3: a snapshot was made without some files. Not a backup. */
    if (res.exit_code != 0)
        rc = fail_from("backup", &res, err);
    else if (!bc.have_summary)
        rc = sc_fail(err, SC_ERESTIC, "restic backup printed no summary");
    else if (out->snapshot_id[0] == '\0')
        rc = sc_fail(err, SC_ERESTIC, "restic backup reported no snapshot id");
    spawn_result_free(&res);
    /* Also on 0.15+ (full id in the summary): the snapshot must be listed
     * with this set's tag and our host. */
    if (rc == 0)
        rc = complete_id(r, host, set_id, out, err);
    return rc;
}

/* ---- listing and finding snapshots ---- */

int restic_snapshots(struct restic *r, bool this_host_only, json_t **out, sc_err *err)
{
    *out = NULL;
    struct strvec argv = {0};
    argv_start(r, &argv, "snapshots");
    strvec_push(&argv, "--json");
    strvec_push(&argv, "--tag=stagecoach");
    int rc = 0;
    if (this_host_only) {
        char host[256];
        rc = this_host(r, host, sizeof host, err);
        strvec_pushf(&argv, "--host=%s", host);
    }
    if (rc == 0)
        rc = run_json_array(r, "snapshots", &argv, out, err);
    strvec_free(&argv);
    return rc;
}

/* RFC 3339 time ("2026-11-27T07:12:54.285818377Z", "...+01:00") as
 * seconds and nanoseconds since the epoch. Strings do not compare: the
 * offset and the number of fraction digits vary. Returns -1 if malformed. */
static int parse_time(const char *s, long long *sec, long *nsec)
{
    struct tm tm = {0};
    int used = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const char *p = s + used;
    long ns = 0;
    if (*p == '.') {
        long scale = 100000000;
        for (p++; isdigit((unsigned char)*p); p++) {
            ns += (*p - '0') * scale;
            scale /= 10;
        }
    }
    long offset = 0;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return -1;
        offset = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z') {
        return -1;
    }
    *sec = (long long)timegm(&tm) - offset;
    *nsec = ns;
    return 0;
}

static bool newer(json_t *a, json_t *b)
{
    long long sa, sb;
    long na, nb;
    if (parse_time(json_string_value(json_object_get(a, "time")), &sa, &na) != 0)
        return false;
    if (parse_time(json_string_value(json_object_get(b, "time")), &sb, &nb) != 0)
        return true;
    return sa > sb || (sa == sb && na >= nb);
}

static bool valid_id_prefix(const char *s)
{
    size_t n = strlen(s);
    return n >= 8 && n <= 64 && strspn(s, "0123456789abcdefABCDEF") == n;
}

/* The snapshot whose id starts with prefix: NULL if none, *ambiguous when
 * several do. */
static json_t *match_id(json_t *list, const char *prefix, bool *ambiguous)
{
    json_t *found = NULL, *s;
    size_t i, n = strlen(prefix);
    *ambiguous = false;
    json_array_foreach(list, i, s)
    {
        const char *id = json_string_value(json_object_get(s, "id"));
        if (id && strncasecmp(id, prefix, n) == 0) {
            if (found)
                *ambiguous = true;
            found = s;
        }
    }
    return found;
}

int restic_find_snapshot(struct restic *r, const char *which, json_t **snap, sc_err *err)
{
    *snap = NULL;
    bool latest = strcmp(which, "latest") == 0;
    if (!latest && !valid_id_prefix(which))
        return sc_fail(err, SC_EUSAGE,
                       "a snapshot is 'latest' or an id of 8 to 64 hex digits, not '%s'", which);
    json_t *list = NULL;
    int rc = restic_snapshots(r, latest, &list, err);
    if (rc != 0)
        return rc;
    json_t *found = NULL;
    if (latest) {
        size_t i;
        json_t *s;
        json_array_foreach(list, i, s)
        {
            if (found == NULL || newer(s, found))
                found = s;
        }
        if (found == NULL) {
            char host[256];
            rc = this_host(r, host, sizeof host, err);
            if (rc == 0)
                rc = sc_fail(err, SC_ERESTIC,
                             "no snapshot made by stagecoach for host %s in the repository", host);
        }
    } else {
        bool ambiguous;
        found = match_id(list, which, &ambiguous);
        if (found == NULL)
            rc = sc_fail(err, SC_ERESTIC, "no snapshot %s made by stagecoach in the repository",
                         which);
        else if (ambiguous)
            rc = sc_fail(err, SC_EUSAGE, "snapshot id %s is ambiguous: give more digits", which);
    }
    if (rc == 0)
        *snap = json_incref(found);
    json_decref(list);
    return rc;
}

/* ---- reading a snapshot back ---- */

struct ls_ctx {
    json_t *nodes;
};

/* First line: the snapshot (struct_type "snapshot"); then one node a line
 * (struct_type "node"; 0.17+ adds message_type). Keep the nodes. */
static void ls_line(void *ctx, const char *line, size_t len)
{
    struct ls_ctx *lc = ctx;
    json_t *j = parse_json(line, len);
    const char *st = json_string_value(json_object_get(j, "struct_type"));
    if (st && strcmp(st, "node") == 0)
        json_array_append(lc->nodes, j);
    json_decref(j);
}

int restic_ls(struct restic *r, const char *id, json_t **nodes, sc_err *err)
{
    struct strvec argv = {0};
    argv_start(r, &argv, "ls");
    strvec_push(&argv, "--json");
    strvec_push(&argv, "--");
    strvec_push(&argv, id);
    struct ls_ctx lc = {.nodes = json_array()};
    struct spawn_opts o = {.on_stdout_line = ls_line, .ctx = &lc};
    struct spawn_result res;
    int rc = run_ok(r, "ls", &argv, &o, &res, err);
    strvec_free(&argv);
    if (rc == 0) {
        spawn_result_free(&res);
        *nodes = lc.nodes;
    } else {
        json_decref(lc.nodes);
        *nodes = NULL;
    }
    return rc;
}

int restic_dump(struct restic *r, const char *id, const char *path, size_t max, char **buf,
                size_t *len, sc_err *err)
{
    *buf = NULL;
    *len = 0;
    struct strvec argv = {0};
    argv_start(r, &argv, "dump");
    strvec_push(&argv, "--");
    strvec_push(&argv, id);
    strvec_push(&argv, path);
    struct spawn_opts o = {.max_stdout = max};
    struct spawn_result res;
    int rc = run_ok(r, "dump", &argv, &o, &res, err);
    strvec_free(&argv);
    if (rc == 0) {
        *buf = res.out; /* ownership passes to the caller */
        *len = res.out_len;
        res.out = NULL;
        spawn_result_free(&res);
    }
    return rc;
}

int restic_restore(struct restic *r, const char *id, const char *target, sc_err *err)
{
    struct strvec argv = {0};
    argv_start(r, &argv, "restore");
    strvec_pushf(&argv, "--target=%s", target);
    strvec_push(&argv, "--");
    strvec_push(&argv, id);
    struct spawn_opts o = {.on_stdout_line = debug_line};
    struct spawn_result res;
    int rc = run_ok(r, "restore", &argv, &o, &res, err);
    strvec_free(&argv);
    if (rc == 0)
        spawn_result_free(&res);
    return rc;
}
