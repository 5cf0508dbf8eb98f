/* Talking to restic (tech-facts §1-§4).
 *
 * - The environment is built from ours minus every inherited repository,
 *   password or database secret, plus what the configuration names: the
 *   repository (or its file), the password file and the env_file's
 *   backend credentials. Nothing secret is ever put on argv.
 * - Every call goes through rx_run (call.c): a deadline, retries for locks
 *   and transient backend failures. Failures are classified in classify.c.
 * - This file: environment, version, repository, backup and reading
 *   snapshots back. forget.c and check.c hold retention and checks. */
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

#include "../core/env.h"
#include "../core/fs.h"
#include "../core/log.h"
#include "../core/report.h"
#include "../core/spawn.h"
#include "internal.h"

#define ENV_FILE_MAX (1u << 20)
#define VERSION_TIMEOUT_S 60L
#define MIN_MINOR 14 /* 0.14.0: Debian 12, repository format v2 */

/* ------------------------------------------------------------------------ */
/* Environment */

/* What the configuration sets itself: an env_file may not override it
 * (two sources of the repository or the password make restic fail). */
static const char *const reserved_vars[] = {
    "RESTIC_REPOSITORY",    "RESTIC_REPOSITORY_FILE",  "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND", NULL,
};

static bool in_list(const char *const *list, const char *name, size_t name_len)
{
    for (size_t i = 0; list[i]; i++)
        if (strlen(list[i]) == name_len && strncmp(list[i], name, name_len) == 0)
            return true;
    return false;
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
/* Opening: environment and version */

static int build_env(struct restic *r, sc_err *err)
{
    const struct config *cfg = r->cfg;
    /* Inherited repository/password variables would conflict with ours
     * (both REPOSITORY and REPOSITORY_FILE is fatal in restic). */
    env_inherit_scrubbed(&r->env);
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

/* binary as posix_spawnp finds it: itself when it has a '/', else the
 * first executable of that name in PATH (owned; the name alone when none
 * is: running it then fails with "cannot run"). */
static char *find_program(const char *binary)
{
    const char *path = getenv("PATH");
    if (strchr(binary, '/') != NULL || path == NULL)
        return xstrdup(binary);
    for (const char *p = path;; p++) {
        size_t n = strcspn(p, ":");
        char *cand = n == 0 ? xasprintf("./%s", binary) : xasprintf("%.*s/%s", (int)n, p, binary);
        if (access(cand, X_OK) == 0)
            return cand;
        free(cand);
        p += n;
        if (*p == '\0')
            return xstrdup(binary);
    }
}

json_t *restic_describe(const struct restic *r)
{
    char version[48];
    snprintf(version, sizeof version, "%d.%d.%d", r->major, r->minor, r->patch);
    return json_pack("{s:s, s:s}", "version", version, "path", r->path ? r->path : r->binary);
}

bool restic_at_least(const struct restic *r, int minor)
{
    return r->major > 0 || r->minor >= minor;
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
    int rc = rx_run(r, "version", &argv, &o, NULL, &res, &why);
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
        rc = rx_fail_from("version", &res, err);
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
    r->path = find_program(r->binary);
    r->retry = (struct restic_retry){
        .tries = 3,
        .backoff_ms = {2000, 4000},
        .lock_wait_s = 120,
        .lock_poll_ms = 1000,
        .lock_poll_max_ms = 30000,
    };
    int rc = build_env(r, err);
    if (rc == 0)
        rc = detect_version(r, err);
    /* 0.17+ retries a failed backend request itself, with a growing pause,
     * for up to 15 minutes (internal/backend/retry, not configurable): our
     * attempts on top would only multiply that. Locks are still waited for. */
    if (rc == 0 && restic_at_least(r, 17))
        r->retry.tries = 1;
    return rc;
}

int restic_open_reported(struct restic *r, const struct config *cfg, json_t *report, sc_err *err)
{
    int rc = restic_open(r, cfg, err);
    if (rc == 0)
        report_set(report, "restic", restic_describe(r));
    return rc;
}

void restic_close(struct restic *r)
{
    if (r == NULL)
        return;
    free(r->binary);
    free(r->path);
    r->binary = r->path = NULL;
    for (size_t i = 0; i < r->env.n; i++) /* it holds backend credentials */
        explicit_bzero(r->env.v[i], strlen(r->env.v[i]));
    strvec_free(&r->env);
}

/* ------------------------------------------------------------------------ */
/* Commands */

int restic_ensure_repo(struct restic *r, bool may_init, sc_err *err)
{
    struct strvec argv = {0};
    rx_argv_start(r, &argv, "cat");
    strvec_push(&argv, "config");
    /* Reading the config needs no lock; without --no-lock restic 0.14
     * writes one into locks/ and removes it (doctor must change nothing). */
    strvec_push(&argv, "--no-lock");
    /* The first call that reaches the backend: a down one is said within
     * [restic] probe_timeout, not after restic 0.17+'s 15 minutes of retries
     * (the backup itself keeps [restic] timeout: it may ride out a blip). */
    long probe = r->cfg->restic.probe_timeout_s, total = r->cfg->restic.timeout_s;
    struct spawn_opts o = {.timeout_s = probe > 0 && (total <= 0 || probe < total) ? probe : 0};
    struct spawn_result res;
    int rc = rx_run(r, "cat config", &argv, &o, NULL, &res, err);
    strvec_free(&argv);
    if (rc != 0)
        return rc;
    if (res.exit_code == 0) {
        spawn_result_free(&res);
        return 0;
    }
    struct strvec lines = {0};
    rx_clean_lines(res.err, &lines);
    const char *line;
    bool missing = rx_failure_kind("cat config", res.exit_code, &lines, &line) == RX_NO_REPO;
    strvec_free(&lines);
    if (!missing) {
        rc = rx_fail_from("cat config", &res, err);
        spawn_result_free(&res);
        return rc;
    }
    spawn_result_free(&res);

    char *where = rx_repo_location(r);
    if (!may_init) {
        rc = sc_fail(err, SC_ERESTIC, "repository not found at %s (set init = yes to create it)",
                     where);
        free(where);
        return rc;
    }
    rx_argv_start(r, &argv, "init");
    o = (struct spawn_opts){.on_stdout_line = rx_debug_line};
    rc = rx_run_ok(r, "init", &argv, &o, NULL, &res, err);
    strvec_free(&argv);
    if (rc == 0) {
        log_info("created a restic repository at %s", where);
        spawn_result_free(&res);
    }
    free(where);
    return rc;
}

/* ---- backup ---- */

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
    human_bytes(rx_get_u64(j, "bytes_done"), done, sizeof done);
    human_bytes(rx_get_u64(j, "total_bytes"), total, sizeof total);
    log_progress("restic: %5.1f%%  %s of %s  %" PRIu64 "/%" PRIu64 " files",
                 json_number_value(pct) * 100, done, total, rx_get_u64(j, "files_done"),
                 rx_get_u64(j, "total_files"));
}

static void take_summary(struct rx_backup_ctx *bc, json_t *j)
{
    struct restic_backup_result *out = bc->out;
    const char *id = json_string_value(json_object_get(j, "snapshot_id"));
    size_t n = id ? strspn(id, "0123456789abcdef") : 0;
    if (id && n == strlen(id) && n >= 8 && n <= 64) {
        memcpy(out->snapshot_id, id, n + 1); /* short on 0.14: completed later */
        memcpy(out->short_id, id, 8);
        out->short_id[8] = '\0';
    }
    out->data_added = rx_get_u64(j, "data_added");
    out->files_new = rx_get_u64(j, "files_new");
    out->files_changed = rx_get_u64(j, "files_changed");
    out->files_unmodified = rx_get_u64(j, "files_unmodified");
    out->total_bytes_processed = rx_get_u64(j, "total_bytes_processed");
    out->duration_s = json_number_value(json_object_get(j, "total_duration"));
    bc->have_summary = true;
}

/* Before a retried backup: the failed attempt's summary does not count. */
static void backup_reset(void *ctx)
{
    struct rx_backup_ctx *bc = ctx;
    memset(bc->out, 0, sizeof *bc->out);
    bc->have_summary = false;
}

/* `--time` for a set: the moment it was staged (its id, "20261126T030000Z"
 * in UTC, maybe with "-N"), in the local time restic parses it in. A set
 * shipped late (after the backend was down) then takes its place in the
 * history, and retention counts it where it belongs. */
static bool set_time_arg(const char *set_id, char *buf, size_t size)
{
    struct tm tm = {0};
    char z;
    if (sscanf(set_id, "%4d%2d%2dT%2d%2d%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &z) != 7 ||
        z != 'Z')
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    struct tm local;
    if (t == (time_t)-1 || localtime_r(&t, &local) == NULL)
        return false;
    return strftime(buf, size, "%Y-%m-%d %H:%M:%S", &local) > 0;
}

void rx_backup_line(void *ctx, const char *line, size_t len)
{
    struct rx_backup_ctx *bc = ctx;
    json_t *j = rx_parse_json(line, len);
    const char *type = json_string_value(json_object_get(j, "message_type"));
    if (type && strcmp(type, "status") == 0)
        show_status(j);
    else if (type && strcmp(type, "summary") == 0)
        take_summary(bc, j);
    else if (type == NULL)
        rx_debug_line(NULL, line, len);
    json_decref(j);
}

/* 0.14 prints the 8-hex short id: find the full one among the snapshots
 * tagged with this set and made by this host (a set shipped twice has
 * several: match the id). */
int rx_full_id(json_t *list, const char *set_id, struct restic_backup_result *out, sc_err *err)
{
    size_t i, found = 0;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        const char *id = json_string_value(json_object_get(s, "id"));
        if (id && strlen(id) == 64 && strspn(id, "0123456789abcdef") == 64 &&
            strncmp(id, out->snapshot_id, strlen(out->snapshot_id)) == 0) {
            memcpy(out->snapshot_id, id, 65);
            found++;
        }
    }
    if (found != 1)
        return sc_fail(
            err, SC_ERESTIC, "restic made snapshot %s but %s it among the snapshots of set %s",
            out->short_id, found ? "found more than one match for" : "cannot find", set_id);
    return 0;
}

static int complete_id(struct restic *r, const char *host, const char *set_id,
                       struct restic_backup_result *out, sc_err *err)
{
    struct strvec argv = {0};
    rx_argv_start(r, &argv, "snapshots");
    strvec_push(&argv, "--json");
    strvec_pushf(&argv, "--tag=set-%s", set_id);
    strvec_pushf(&argv, "--host=%s", host);
    json_t *list = NULL;
    int rc = rx_run_json_array(r, "snapshots", &argv, &list, err);
    strvec_free(&argv);
    if (rc == 0)
        rc = rx_full_id(list, set_id, out, err);
    json_decref(list);
    return rc;
}

int restic_backup(struct restic *r, const char *dir, const char *set_id,
                  struct restic_backup_result *out, sc_err *err)
{
    memset(out, 0, sizeof *out);
    char host[256];
    int rc = rx_this_host(r, host, sizeof host, err);
    if (rc != 0)
        return rc;
    struct strvec argv = {0};
    rx_argv_start(r, &argv, "backup");
    strvec_push(&argv, "--json");
    if (!log_progress_enabled())
        strvec_push(&argv, "--quiet"); /* since 0.13: only the summary line */
    strvec_pushf(&argv, "--host=%s", host);
    strvec_push(&argv, "--tag=stagecoach");
    for (size_t i = 0; i < r->cfg->restic.tags.n; i++)
        strvec_pushf(&argv, "--tag=%s", r->cfg->restic.tags.v[i]);
    strvec_pushf(&argv, "--tag=set-%s", set_id);
    char when[32];
    if (set_time_arg(set_id, when, sizeof when))
        strvec_pushf(&argv, "--time=%s", when);
    strvec_push(&argv, "--");
    strvec_push(&argv, dir);

    struct rx_backup_ctx bc = {.out = out};
    struct spawn_opts o = {.on_stdout_line = rx_backup_line, .ctx = &bc};
    struct spawn_result res;
    rc = rx_run(r, "backup", &argv, &o, backup_reset, &res, err);
    strvec_free(&argv);
    log_progress_done();
    if (rc != 0)
        return rc;
    /* Exit 3: a snapshot was made without some files. Not a backup. */
    if (res.exit_code != 0)
        rc = rx_fail_from("backup", &res, err);
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
    rx_argv_start(r, &argv, "snapshots");
    strvec_push(&argv, "--json");
    strvec_push(&argv, "--tag=stagecoach");
    int rc = 0;
    if (this_host_only) {
        char host[256];
        rc = rx_this_host(r, host, sizeof host, err);
        strvec_pushf(&argv, "--host=%s", host);
    }
    if (rc == 0)
        rc = rx_run_json_array(r, "snapshots", &argv, out, err);
    strvec_free(&argv);
    return rc;
}

/* RFC 3339 time ("2026-11-27T07:12:54.285818377Z", "...+01:00") as
 * seconds and nanoseconds since the epoch. Strings do not compare: the
 * offset and the number of fraction digits vary. Returns -1 if malformed. */
int restic_parse_time(const char *s, long long *sec, long *nsec)
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

bool restic_snapshot_newer(json_t *a, json_t *b)
{
    long long sa, sb;
    long na, nb;
    if (restic_parse_time(json_string_value(json_object_get(a, "time")), &sa, &na) != 0)
        return false;
    if (restic_parse_time(json_string_value(json_object_get(b, "time")), &sb, &nb) != 0)
        return true;
    return sa > sb || (sa == sb && na >= nb);
}

json_t *rx_latest(json_t *list)
{
    json_t *found = NULL, *s;
    size_t i;
    json_array_foreach(list, i, s)
    {
        if (found == NULL || restic_snapshot_newer(s, found))
            found = s;
    }
    return found;
}

static bool valid_id_prefix(const char *s)
{
    size_t n = strlen(s);
    return n >= 8 && n <= 64 && strspn(s, "0123456789abcdefABCDEF") == n;
}

json_t *rx_match_id(json_t *list, const char *prefix, bool *ambiguous)
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
        found = rx_latest(list);
        if (found == NULL) {
            char host[256];
            rc = rx_this_host(r, host, sizeof host, err);
            if (rc == 0)
                rc = sc_fail(err, SC_ERESTIC,
                             "no snapshot made by stagecoach for host %s in the repository", host);
        }
    } else {
        bool ambiguous;
        found = rx_match_id(list, which, &ambiguous);
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

/* First line: the snapshot (struct_type "snapshot"); then one node a line
 * (struct_type "node"; 0.17+ adds message_type). Keep the nodes. */
void rx_ls_line(void *ctx, const char *line, size_t len)
{
    json_t *nodes = ctx;
    json_t *j = rx_parse_json(line, len);
    const char *st = json_string_value(json_object_get(j, "struct_type"));
    if (st && strcmp(st, "node") == 0)
        json_array_append(nodes, j);
    json_decref(j);
}

static void ls_reset(void *ctx)
{
    json_array_clear(ctx);
}

int restic_ls(struct restic *r, const char *id, json_t **nodes, sc_err *err)
{
    struct strvec argv = {0};
    rx_argv_start(r, &argv, "ls");
    strvec_push(&argv, "--json");
    strvec_push(&argv, "--");
    strvec_push(&argv, id);
    json_t *list = json_array();
    struct spawn_opts o = {.on_stdout_line = rx_ls_line, .ctx = list};
    struct spawn_result res;
    int rc = rx_run_ok(r, "ls", &argv, &o, ls_reset, &res, err);
    strvec_free(&argv);
    if (rc == 0) {
        spawn_result_free(&res);
        *nodes = list;
    } else {
        json_decref(list);
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
    rx_argv_start(r, &argv, "dump");
    strvec_push(&argv, "--");
    strvec_push(&argv, id);
    strvec_push(&argv, path);
    struct spawn_opts o = {.max_stdout = max};
    struct spawn_result res;
    int rc = rx_run_ok(r, "dump", &argv, &o, NULL, &res, err);
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
    rx_argv_start(r, &argv, "restore");
    strvec_pushf(&argv, "--target=%s", target);
    strvec_push(&argv, "--");
    strvec_push(&argv, id);
    struct spawn_opts o = {.on_stdout_line = rx_debug_line};
    struct spawn_result res;
    int rc = rx_run_ok(r, "restore", &argv, &o, NULL, &res, err);
    strvec_free(&argv);
    if (rc == 0)
        spawn_result_free(&res);
    return rc;
}
