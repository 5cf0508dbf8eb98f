/* Loading the configuration: libinih reads the INI file, a key table per
 * section says what each key means, and every problem is collected with
 * file, line and key so that `config check` can list them all at once. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stdio.h>

#include "deployer_conf.h"
#include "fs.h"
#include "words.h"
#include "log.h"

extern char **environ;

#define G(field) offsetof(struct config, field)

/* A hook must split into words (balanced quotes) and name a program. */
static const char *check_hook(const char *value)
{
    struct strvec argv = {0};
    const char *why = words_split(value, &argv);
    if (why == NULL && (argv.n == 0 || argv.v[0][0] == '\0'))
        why = "names no program";
    strvec_free(&argv);
    return why;
}

static const char *check_policy(const char *value)
{
    return (strcmp(value, "fail") == 0 || strcmp(value, "warn") == 0) ? NULL
                                                                      : "expected fail or warn";
}

static const char *check_within(const char *value)
{
    return restic_duration_ok(value)
               ? NULL
               : "expected a restic duration like 7d, 1y6m or 48h (units y, m, "
                 "d, h)";
}

/* restic takes "--tag a,b" as two tags: a tag must be one word. */
static const char *check_tag(const char *value)
{
    return strpbrk(value, ", \t") ? "a tag cannot contain ',' or blanks" : NULL;
}

static const char *check_facility(const char *value)
{
    return log_facility_parse(value) < 0 ? "expected daemon, user or local0..local7" : NULL;
}

static const struct cfg_key staging_keys[] = {
    {"dir", CFG_PATH, G(staging.dir), false, NULL},
    {"keep", CFG_INT, G(staging.keep), false, NULL},
    {"encrypt", CFG_BOOL, G(staging.encrypt), false, NULL},
    {"recipient", CFG_PATH, G(staging.recipient), false, NULL},
    {"key_file", CFG_PATH, G(staging.key_file), false, NULL},
    {"identity", CFG_PATH, G(staging.identity), false, NULL},
    {"passphrase_file", CFG_PATH, G(staging.passphrase_file), false, NULL},
    {NULL, 0, 0, false, NULL},
};
static const struct cfg_key restic_keys[] = {
    {"repository", CFG_STR, G(restic.repository), true, NULL},
    {"repository_file", CFG_PATH, G(restic.repository_file), false, NULL},
    {"password_file", CFG_PATH, G(restic.password_file), false, NULL},
    {"env_file", CFG_PATH, G(restic.env_file), false, NULL},
    {"host", CFG_STR, G(restic.host), false, NULL},
    {"tag", CFG_LIST, G(restic.tags), false, check_tag},
    {"cacert", CFG_PATH, G(restic.cacert), false, NULL},
    {"init", CFG_BOOL, G(restic.init), false, NULL},
    {"binary", CFG_STR, G(restic.binary), false, NULL},
    {"timeout", CFG_DURATION, G(restic.timeout_s), false, NULL},
    {"probe_timeout", CFG_DURATION, G(restic.probe_timeout_s), false, NULL},
    {NULL, 0, 0, false, NULL},
};
static const struct cfg_key retention_keys[] = {
    {"keep_last", CFG_INT, G(retention.keep_last), false, NULL},
    {"keep_hourly", CFG_INT, G(retention.keep_hourly), false, NULL},
    {"keep_daily", CFG_INT, G(retention.keep_daily), false, NULL},
    {"keep_weekly", CFG_INT, G(retention.keep_weekly), false, NULL},
    {"keep_monthly", CFG_INT, G(retention.keep_monthly), false, NULL},
    {"keep_yearly", CFG_INT, G(retention.keep_yearly), false, NULL},
    {"keep_within", CFG_STR, G(retention.keep_within), false, check_within},
    {NULL, 0, 0, false, NULL},
};
static const struct cfg_key check_keys[] = {
    {"every", CFG_DURATION, G(check.every_s), false, NULL},
    {"read_data_subset", CFG_STR, G(check.read_data_subset), false, NULL},
    {NULL, 0, 0, false, NULL},
};
static const struct cfg_key hooks_keys[] = {
    {"before_stage", CFG_STR, G(hooks.cmd[0]), false, check_hook},
    {"after_stage", CFG_STR, G(hooks.cmd[1]), false, check_hook},
    {"before_ship", CFG_STR, G(hooks.cmd[2]), false, check_hook},
    {"after_ship", CFG_STR, G(hooks.cmd[3]), false, check_hook},
    {"on_success", CFG_STR, G(hooks.cmd[4]), false, check_hook},
    {"on_failure", CFG_STR, G(hooks.cmd[5]), false, check_hook},
    {"before_stage_on_error", CFG_STR, G(hooks.on_error[0]), false, check_policy},
    {"after_stage_on_error", CFG_STR, G(hooks.on_error[1]), false, check_policy},
    {"before_ship_on_error", CFG_STR, G(hooks.on_error[2]), false, check_policy},
    {"after_ship_on_error", CFG_STR, G(hooks.on_error[3]), false, check_policy},
    {"on_success_on_error", CFG_STR, G(hooks.on_error[4]), false, check_policy},
    {"on_failure_on_error", CFG_STR, G(hooks.on_error[5]), false, check_policy},
    {"timeout", CFG_DURATION, G(hooks.timeout_s), false, NULL},
    {NULL, 0, 0, false, NULL},
};
static const struct cfg_key run_keys[] = {
    {"mode", CFG_STR, G(run.mode), false, NULL},
    {"interval", CFG_DURATION, G(run.interval_s), false, NULL},
    {"timeout", CFG_DURATION, G(run.timeout_s), false, NULL},
    {"metrics_file", CFG_PATH, G(run.metrics_file), false, NULL},
    {"syslog", CFG_BOOL, G(run.syslog), false, NULL},
    {"syslog_facility", CFG_STR, G(run.syslog_facility), false, check_facility},
    {NULL, 0, 0, false, NULL},
};

struct section_def {
    const char *name;
    const struct cfg_key *keys;
};
static const struct section_def sections[] = {
    {"staging", staging_keys}, {"restic", restic_keys}, {"retention", retention_keys},
    {"check", check_keys},     {"hooks", hooks_keys},   {"run", run_keys},
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

/* Where each key was set, so that validation after loading can name the line. */
struct key_seen {
    char *section;
    const char *key;
    int line;
};

struct loader {
    struct config *cfg;
    const struct cfg_kinds *kinds;
    struct config_problems *probs;
    const char *file;
    char *base_dir; /* relative paths in the file are relative to it */
    int line;       /* the line inih is handling now (counted by our reader) */
    int at_line_start;
    FILE *fp;
    struct key_seen *seen;
    size_t nseen;
    int section_line[16];           /* where each global section first starts */
    const struct cfg_key *cur_keys; /* the section being read: its keys, */
    void *cur_base;                 /* and the struct they point into */
};

/* ---- values ---------------------------------------------------------- */

#define DURATION_MAX_S (10L * 365 * 86400)

int parse_duration(const char *s, long *out)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || v < 0)
        return -1;
    long mult = 1;
    if (*end != '\0') {
        switch (*end) {
        case 's':
            mult = 1;
            break;
        case 'm':
            mult = 60;
            break;
        case 'h':
            mult = 3600;
            break;
        case 'd':
            mult = 86400;
            break;
        case 'w':
            mult = 7L * 86400;
            break;
        default:
            return -1;
        }
        if (end[1] != '\0')
            return -1;
    }
    /* Ten years bounds every deadline: later ones are typos, and they would
     * overflow when counted in milliseconds. */
    if (v > DURATION_MAX_S / mult)
        return -1;
    *out = v * mult;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int parse_int(const char *s, long *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > INT_MAX)
        return -1;
    *out = v;
    return 0;
}

static char *resolve_path(const struct loader *ld, const char *value)
{
    if (value[0] == '/' || ld->base_dir == NULL)
        return xstrdup(value);
    return path_join(ld->base_dir, value);
}

/* Store one value into the field a key describes. Returns NULL or a reason. */
static const char *set_value(struct loader *ld, void *base, const struct cfg_key *k,
                             const char *value)
{
    void *field = (char *)base + k->offset;
    switch (k->type) {
    case CFG_STR:
    case CFG_PATH:
        if (*value == '\0')
            return "empty value";
        free(*(char **)field);
        *(char **)field = k->type == CFG_PATH ? resolve_path(ld, value) : xstrdup(value);
        return NULL;
    case CFG_LIST:
    case CFG_PATH_LIST:
        if (*value == '\0')
            return "empty value";
        if (k->type == CFG_PATH_LIST) {
            char *resolved = resolve_path(ld, value);
            strvec_push(field, resolved);
            free(resolved);
        } else {
            strvec_push(field, value);
        }
        return NULL;
    case CFG_BOOL:
        return parse_bool(value, field) ? "expected yes or no" : NULL;
    case CFG_INT:
        return parse_int(value, field) ? "expected a whole number >= 0" : NULL;
    case CFG_DURATION:
        return parse_duration(value, field)
                   ? "expected a duration like 90s, 5m, 6h or 7d (at most 10 years)"
                   : NULL;
    case CFG_CHECK_LEVEL:
        if (strcmp(value, "quick") == 0 || strcmp(value, "quick_check") == 0)
            *(enum check_level *)field = CHECK_QUICK;
        else if (strcmp(value, "integrity") == 0 || strcmp(value, "integrity_check") == 0)
            *(enum check_level *)field = CHECK_INTEGRITY;
        else
            return "expected quick or integrity";
        return NULL;
    }
    return "unsupported key type";
}

/* ---- sections -------------------------------------------------------- */

static const struct section_def *find_global(const char *name)
{
    for (size_t i = 0; i < NSECTIONS; i++)
        if (strcmp(sections[i].name, name) == 0)
            return &sections[i];
    return NULL;
}

static const struct cfg_key *find_key(const struct cfg_key *keys, const char *name)
{
    for (const struct cfg_key *k = keys; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

bool config_source_name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 64 || s[0] == '.')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    return true;
}

static struct source_cfg *find_source(struct config *cfg, const char *kind, const char *name)
{
    for (size_t i = 0; i < cfg->nsources; i++)
        if (strcmp(cfg->sources[i].kind, kind) == 0 && strcmp(cfg->sources[i].name, name) == 0)
            return &cfg->sources[i];
    return NULL;
}

static struct source_cfg *add_source(struct config *cfg, const struct cfg_kind *def,
                                     const char *name, int line)
{
    cfg->sources = xrealloc(cfg->sources, (cfg->nsources + 1) * sizeof *cfg->sources);
    struct source_cfg *s = &cfg->sources[cfg->nsources++];
    memset(s, 0, sizeof *s);
    s->kind = xstrdup(def->kind);
    s->name = xstrdup(name);
    s->def = def;
    s->line = line;
    s->check = CHECK_QUICK;
    s->busy_timeout_ms = 60000;
    s->step_pages = 1024;
    s->repack_threshold = 30;
    s->connect_timeout_s = 10;
    s->read_timeout_s = 3600;
    s->write_timeout_s = 3600;
    s->max_insert_bytes = 1048576;
    return s;
}

/* Split "sqlite tracker" into kind and name; returns false if not of that shape. */
static bool split_section(const char *section, char *kind, size_t kl, char *name, size_t nl)
{
    const char *sp = strchr(section, ' ');
    if (sp == NULL)
        return false;
    snprintf(kind, kl, "%.*s", (int)(sp - section), section);
    while (*sp == ' ')
        sp++;
    snprintf(name, nl, "%s", sp);
    return true;
}

/* Does the same non-list key appear twice in one section? Record where it was set. */
static bool seen_before(struct loader *ld, const char *section, const struct cfg_key *k, int *first)
{
    for (size_t i = 0; i < ld->nseen; i++) {
        if (strcmp(ld->seen[i].section, section) == 0 && ld->seen[i].key == k->name) {
            *first = ld->seen[i].line;
            return true;
        }
    }
    ld->seen = xrealloc(ld->seen, (ld->nseen + 1) * sizeof *ld->seen);
    ld->seen[ld->nseen++] = (struct key_seen){xstrdup(section), k->name, ld->line};
    return false;
}

static int line_of(const struct loader *ld, const char *section, const char *key)
{
    for (size_t i = 0; i < ld->nseen; i++)
        if (strcmp(ld->seen[i].section, section) == 0 && strcmp(ld->seen[i].key, key) == 0)
            return ld->seen[i].line;
    return 0;
}

/* Open a [section] when the reader meets its header, so that an empty
 * source section still counts (and fails validation) and problems about a
 * missing key can name the header's line. Returns false for a bad header. */
static bool open_section(struct loader *ld, const char *section)
{
    ld->cur_keys = NULL;
    ld->cur_base = NULL;
    const struct section_def *g = find_global(section);
    char kind[64], sname[128];
    if (g != NULL) {
        ld->cur_keys = g->keys;
        ld->cur_base = ld->cfg;
        for (size_t i = 0; i < NSECTIONS; i++)
            if (&sections[i] == g && ld->section_line[i] == 0)
                ld->section_line[i] = ld->line;
        return true;
    }
    if (!split_section(section, kind, sizeof kind, sname, sizeof sname)) {
        config_problem(ld->probs, ld->file, ld->line, section, NULL,
                       "unknown section (known: staging, restic, retention, check, hooks, run, "
                       "and KIND NAME for a source of kind %s)",
                       ld->kinds->names());
        return false;
    }
    const struct cfg_kind *def = ld->kinds->find(kind);
    if (def == NULL) {
        config_problem(ld->probs, ld->file, ld->line, section, NULL,
                       "unknown source kind '%s' (known: %s)", kind, ld->kinds->names());
        return false;
    }
    if (!config_source_name_ok(sname)) {
        config_problem(ld->probs, ld->file, ld->line, section, NULL,
                       "source name '%s' must be letters, digits, '.', '-' or '_'", sname);
        return false;
    }
    struct source_cfg *src = find_source(ld->cfg, kind, sname);
    if (src == NULL)
        src = add_source(ld->cfg, def, sname, ld->line);
    ld->cur_keys = def->keys;
    ld->cur_base = src;
    return true;
}

/* The key's own check (allowed values), then the conversion: the same for a
 * line of a file, a POC variable and a STAGECOACH_* override. NULL or why not. */
static const char *check_and_set(struct loader *ld, void *base, const struct cfg_key *k,
                                 const char *value)
{
    const char *why = k->check ? k->check(value) : NULL;
    return why != NULL ? why : set_value(ld, base, k, value);
}

static void apply(struct loader *ld, const char *section, const char *name, const char *value)
{
    /* A key of a section whose header was already reported is not reported again. */
    if (ld->cur_keys == NULL)
        return;
    const struct cfg_key *keys = ld->cur_keys;
    void *base = ld->cur_base;
    const struct cfg_key *k = find_key(keys, name);
    if (k == NULL) {
        config_problem(ld->probs, ld->file, ld->line, section, name, "unknown key");
        return;
    }
    int first;
    if (k->type != CFG_LIST && k->type != CFG_PATH_LIST && seen_before(ld, section, k, &first)) {
        config_problem(ld->probs, ld->file, ld->line, section, name, "set twice (first on line %d)",
                       first);
        return;
    }
    const char *why = check_and_set(ld, base, k, value);
    if (why != NULL)
        config_problem(ld->probs, ld->file, ld->line, section, name, "%s: '%s'", why,
                       k->secret ? "<redacted>" : value);
}

static int ini_handler_fn(void *user, const char *section, const char *name, const char *value)
{
    struct loader *ld = user;
    if (*section == '\0') {
        config_problem(ld->probs, ld->file, ld->line, "", name, "key outside any [section]");
        return 1;
    }
    apply(ld, section, name, value);
    return 1; /* keep going: we collect every problem */
}

/* "[name]" at the start of a line (after blanks) opens a section, as inih
 * reads it: the text between '[' and the first ']'. */
static void note_section_header(struct loader *ld, const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (ld->line == 1 && (unsigned char)line[0] == 0xEF && (unsigned char)line[1] == 0xBB &&
        (unsigned char)line[2] == 0xBF)
        line += 3;
    if (*line != '[')
        return;
    const char *end = strchr(line, ']');
    if (end == NULL)
        return; /* inih reports the syntax error */
    char *name = xstrndup(line + 1, (size_t)(end - line - 1));
    open_section(ld, name);
    free(name);
}

/* fgets-style reader that counts lines, so problems can name them (the
 * Debian libinih is built without INI_HANDLER_LINENO). A long line may be read
 * in several pieces; only a piece that starts a line counts. */
static char *counting_reader(char *str, int num, void *stream)
{
    struct loader *ld = stream;
    char *r = fgets(str, num, ld->fp);
    if (r == NULL)
        return NULL;
    if (ld->at_line_start) {
        ld->line++;
        note_section_header(ld, r);
    }
    size_t n = strlen(r);
    ld->at_line_start = n > 0 && r[n - 1] == '\n';
    return r;
}

/* ---- environment overrides ------------------------------------------ */

static void env_name(char *out, size_t n, const char *section, const char *key)
{
    snprintf(out, n, "STAGECOACH_%s_%s", section, key);
    for (char *p = out; *p; p++) {
        if (*p == ' ' || *p == '-' || *p == '.')
            *p = '_';
        else
            *p = (char)toupper((unsigned char)*p);
    }
}

/* Apply one override; returns true if the variable named a known key. */
static bool apply_env_var(struct loader *ld, const char *var, const char *value)
{
    char want[512];
    for (size_t i = 0; i < NSECTIONS; i++) {
        for (const struct cfg_key *k = sections[i].keys; k->name; k++) {
            env_name(want, sizeof want, sections[i].name, k->name);
            if (strcmp(want, var) != 0)
                continue;
            if (k->type == CFG_LIST || k->type == CFG_PATH_LIST)
                strvec_free((struct strvec *)((char *)ld->cfg + k->offset));
            const char *why = check_and_set(ld, ld->cfg, k, value);
            if (why)
                config_problem(ld->probs, NULL, 0, sections[i].name, k->name, "%s (from %s)", why,
                               var);
            return true;
        }
    }
    for (size_t i = 0; i < ld->cfg->nsources; i++) {
        struct source_cfg *s = &ld->cfg->sources[i];
        char section[256];
        snprintf(section, sizeof section, "%s %s", s->kind, s->name);
        for (const struct cfg_key *k = s->def->keys; k->name; k++) {
            env_name(want, sizeof want, section, k->name);
            if (strcmp(want, var) != 0)
                continue;
            if (k->type == CFG_LIST || k->type == CFG_PATH_LIST)
                strvec_free((struct strvec *)((char *)s + k->offset));
            const char *why = check_and_set(ld, s, k, value);
            if (why)
                config_problem(ld->probs, NULL, 0, section, k->name, "%s (from %s)", why, var);
            return true;
        }
    }
    return false;
}

/* Variables stagecoach itself sets or reads outside the key tables. */
static bool env_reserved(const char *name)
{
    static const char *const reserved[] = {
        "STAGECOACH_CONFIG", "STAGECOACH_COMMAND",   "STAGECOACH_SET",  "STAGECOACH_SNAPSHOT",
        "STAGECOACH_STATUS", "STAGECOACH_EXIT_CODE", "STAGECOACH_ERROR"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcmp(name, reserved[i]) == 0)
            return true;
    return false;
}

static void apply_env(struct loader *ld)
{
    ld->line = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "STAGECOACH_", 11) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (eq == NULL)
            continue;
        char *name = xstrndup(*e, (size_t)(eq - *e));
        if (!env_reserved(name) && !apply_env_var(ld, name, eq + 1))
            config_problem(ld->probs, NULL, 0, "environment", name,
                           "no such setting (STAGECOACH_<SECTION>_<KEY>)");
        free(name);
    }
}

/* ---- the Torrust POC's variables ------------------------------------- */

/* One setting from a POC variable, checked like a line of a file. */
static void poc_set(struct loader *ld, const char *section, const char *key, const char *value)
{
    if (open_section(ld, section))
        apply(ld, section, key, value);
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return (v != NULL && *v != '\0') ? v : NULL;
}

/* Take MYSQL_PASSWORD into memory and out of the environment, including the
 * bytes of the original block that /proc/PID/environ shows, before anything
 * is spawned. */
static char *take_mysql_password(void)
{
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "MYSQL_PASSWORD=", 15) != 0)
            continue;
        char *pw = xstrdup(*e + 15);
        memset(*e + 15, 0, strlen(*e + 15));
        unsetenv("MYSQL_PASSWORD");
        return pw;
    }
    return NULL;
}

/* With no config file, the POC's variables (seed research §1.2) describe an
 * equivalent backup. Deliberate differences from the POC: a configured paths
 * file that is missing is an error (the POC skipped it silently), and the
 * MySQL password never reaches any argv or child environment. */
static void apply_poc_env(struct loader *ld)
{
    const char *v;
    char buf[64];
    if ((v = env_nonempty("BACKUP_MODE")) != NULL)
        poc_set(ld, "run", "mode", strcmp(v, "single") == 0 ? "single" : "continuous");
    if ((v = env_nonempty("BACKUP_INTERVAL")) != NULL)
        poc_set(ld, "run", "interval", v);
    if ((v = env_nonempty("BACKUP_RETENTION_DAYS")) != NULL) {
        snprintf(buf, sizeof buf, "%sd", v);
        poc_set(ld, "retention", "keep_within", buf);
    }
    /* Exactly "true" enables a source, as in the POC. */
    if ((v = getenv("BACKUP_SQLITE_ENABLED")) != NULL && strcmp(v, "true") == 0) {
        v = env_nonempty("SQLITE_DATABASE_PATH");
        poc_set(ld, "sqlite tracker", "path",
                v ? v : "/data/storage/tracker/lib/database/tracker.db");
    }
    if ((v = getenv("BACKUP_MYSQL_ENABLED")) != NULL && strcmp(v, "true") == 0) {
        static const char *const keys[][2] = {{"MYSQL_HOST", "host"},
                                              {"MYSQL_PORT", "port"},
                                              {"MYSQL_DATABASE", "database"},
                                              {"MYSQL_USER", "user"}};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if ((v = env_nonempty(keys[i][0])) != NULL)
                poc_set(ld, "mysql tracker", keys[i][1], v);
        struct source_cfg *src = find_source(ld->cfg, "mysql", "tracker");
        char *pw = take_mysql_password();
        if (src != NULL)
            src->password = pw;
        else
            free(pw);
    }
    if ((v = env_nonempty("BACKUP_PATHS_FILE")) != NULL)
        poc_set(ld, "paths config", "from_file", v);
    if ((v = env_nonempty("RESTIC_REPOSITORY")) != NULL)
        poc_set(ld, "restic", "repository", v);
    if ((v = env_nonempty("RESTIC_REPOSITORY_FILE")) != NULL)
        poc_set(ld, "restic", "repository_file", v);
    if ((v = env_nonempty("RESTIC_PASSWORD_FILE")) != NULL)
        poc_set(ld, "restic", "password_file", v);
}

bool config_poc_env_present(void)
{
    static const char *const vars[] = {"BACKUP_MODE", "BACKUP_SQLITE_ENABLED",
                                       "BACKUP_MYSQL_ENABLED", "BACKUP_PATHS_FILE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]) != NULL)
            return true;
    return false;
}

/* ---- the Torrust deployer's backup.conf ------------------------------ */

const char *config_deployer_file(void)
{
    const char *v = getenv("CONFIG_FILE");
    if (v != NULL && *v != '\0')
        return v;
    return access(DCONF_DEFAULT_PATH, F_OK) == 0 ? DCONF_DEFAULT_PATH : NULL;
}

/* One translated setting, checked like a line of a file; a problem names
 * the variable and the setting it became. */
static void deployer_set(struct loader *ld, const struct dconf_setting *s)
{
    ld->line = s->line;
    if (!open_section(ld, s->section))
        return;
    if (s->in_memory) {
        struct source_cfg *src = ld->cur_base;
        free(src->password);
        src->password = xstrdup(s->value);
        return;
    }
    const struct cfg_key *k = find_key(ld->cur_keys, s->key);
    int first;
    if (k == NULL || seen_before(ld, s->section, k, &first))
        return; /* the translation names each key once, and only known ones */
    const char *why = check_and_set(ld, ld->cur_base, k, s->value);
    if (why != NULL)
        strvec_pushf(&ld->probs->msgs, "%s:%d: %s ([%s] %s): %s: '%s'", ld->file, s->line, s->var,
                     s->section, s->key, why, s->value);
}

static void deployer_notes(struct loader *ld, const struct dconf_note *n, size_t count,
                           bool problems)
{
    for (size_t i = 0; i < count; i++) {
        if (!problems)
            log_warn("%s:%d: %s", ld->file, n[i].line, n[i].msg);
        else if (n[i].line > 0)
            strvec_pushf(&ld->probs->msgs, "%s:%d: %s", ld->file, n[i].line, n[i].msg);
        else
            strvec_pushf(&ld->probs->msgs, "%s: %s", ld->file, n[i].msg);
    }
}

/* restic's own variables fill in what the file leaves unset: a container
 * may get them (or their files, as Docker secrets) from its environment. */
static void deployer_restic_env(struct loader *ld)
{
    const char *v;
    struct config *c = ld->cfg;
    if (c->restic.repository == NULL && c->restic.repository_file == NULL) {
        if ((v = env_nonempty("RESTIC_REPOSITORY")) != NULL)
            poc_set(ld, "restic", "repository", v);
        else if ((v = env_nonempty("RESTIC_REPOSITORY_FILE")) != NULL)
            poc_set(ld, "restic", "repository_file", v);
    }
    if (c->restic.password_file == NULL && (v = env_nonempty("RESTIC_PASSWORD_FILE")) != NULL)
        poc_set(ld, "restic", "password_file", v);
}

/* With no stagecoach config file, the deployer's backup.conf describes the
 * backup (docs/configuration.md, "The Torrust deployer's backup.conf"). It
 * is read, never run by a shell; DB_PASSWORD stays in memory, and a file
 * holding it must be private. */
static void apply_deployer_conf(struct loader *ld, const char *path)
{
    struct config *c = ld->cfg;
    free(c->file);
    c->file = xstrdup(path);
    ld->file = c->file;
    free(c->staging.dir);
    c->staging.dir = xstrdup(DCONF_STAGING_DIR);
    char *data;
    size_t len;
    sc_err e = {0};
    if (fs_read_file(path, DCONF_MAX_FILE, &data, &len, SC_ECONFIG, &e) != 0) {
        strvec_pushf(&ld->probs->msgs, "%s (CONFIG_FILE, the Torrust deployer's backup.conf)",
                     e.msg);
        return;
    }
    struct dconf d = {0};
    dconf_parse(data, len, &d);
    memset(data, 0, len);
    free(data);
    if (dconf_get(&d, "DB_PASSWORD") != NULL &&
        fs_check_private(path, "backup.conf holding DB_PASSWORD", &e) != 0)
        strvec_push(&ld->probs->msgs, e.msg);
    dconf_translate(&d);
    deployer_notes(ld, d.warnings, d.nwarnings, false);
    deployer_notes(ld, d.problems, d.nproblems, true);
    for (size_t i = 0; i < d.nsettings; i++)
        deployer_set(ld, &d.settings[i]);
    dconf_free(&d);
    ld->line = 0;
    ld->file = NULL; /* what follows comes from the environment */
    deployer_restic_env(ld);
    ld->file = c->file;
    if (config_poc_env_present())
        log_warn("%s is read: the Torrust POC's variables (BACKUP_MODE, BACKUP_*_ENABLED, "
                 "MYSQL_*, ...) in the environment are ignored",
                 path);
}

/* ---- validation ------------------------------------------------------ */

static bool valid_subset(const char *s)
{
    unsigned a, b;
    char tail;
    if (sscanf(s, "%u/%u%c", &a, &b, &tail) == 2)
        return a >= 1 && b >= 1 && a <= b && b <= 256;
    double pct;
    if (sscanf(s, "%lf%%%c", &pct, &tail) == 1)
        return pct > 0 && pct <= 100;
    return false;
}

static int section_start(const struct loader *ld, const char *name)
{
    for (size_t i = 0; i < NSECTIONS; i++)
        if (strcmp(sections[i].name, name) == 0)
            return ld->section_line[i];
    return 0;
}

/* Encryption needs exactly one key to encrypt with; a key without
 * encrypt = yes is probably a forgotten switch, worth a word. */
static void validate_staging_keys(struct loader *ld)
{
    const struct config *c = ld->cfg;
    struct config_problems *p = ld->probs;
    if (c->staging.recipient && c->staging.key_file)
        config_problem(p, ld->file, line_of(ld, "staging", "key_file"), "staging", "key_file",
                       "set either recipient (public key) or key_file (symmetric), not both");
    else if (c->staging.encrypt && !c->staging.recipient && !c->staging.key_file)
        config_problem(p, ld->file, line_of(ld, "staging", "encrypt"), "staging", "encrypt",
                       "yes needs recipient = FILE.pub (stagecoach keygen --out FILE) or "
                       "key_file = FILE (stagecoach keygen --symmetric --out FILE)");
    else if (!c->staging.encrypt && (c->staging.recipient || c->staging.key_file))
        log_warn("%s:%d: [staging] %s is set but encrypt = no: sets are not encrypted",
                 ld->file ? ld->file : "(environment)",
                 line_of(ld, "staging", c->staging.recipient ? "recipient" : "key_file"),
                 c->staging.recipient ? "recipient" : "key_file");
}

static void validate(struct loader *ld)
{
    struct config *c = ld->cfg;
    struct config_problems *p = ld->probs;
    if (c->staging.keep < 1)
        config_problem(p, ld->file, line_of(ld, "staging", "keep"), "staging", "keep",
                       "must be at least 1");
    validate_staging_keys(ld);
    if (c->restic.repository && c->restic.repository_file)
        config_problem(p, ld->file, line_of(ld, "restic", "repository_file"), "restic",
                       "repository_file", "set either repository or repository_file, not both");
    if (!c->restic.repository && !c->restic.repository_file)
        config_problem(p, ld->file, section_start(ld, "restic"), "restic", "repository",
                       "missing: set repository or repository_file");
    if (!c->restic.password_file)
        config_problem(p, ld->file, section_start(ld, "restic"), "restic", "password_file",
                       "missing: restic needs a password file");
    if (c->check.read_data_subset && !valid_subset(c->check.read_data_subset))
        config_problem(p, ld->file, line_of(ld, "check", "read_data_subset"), "check",
                       "read_data_subset", "expected k/n (n <= 256) or a percentage like 5%%");
    if (strcmp(c->run.mode, "single") != 0 && strcmp(c->run.mode, "continuous") != 0)
        config_problem(p, ld->file, line_of(ld, "run", "mode"), "run", "mode",
                       "expected single or continuous");
    if (c->nsources == 0)
        config_problem(p, ld->file, 0, "sources", NULL,
                       "no source configured: add a [KIND NAME] section, KIND one of %s",
                       ld->kinds->names());
    for (size_t i = 0; i < c->nsources; i++) {
        const struct source_cfg *s = &c->sources[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->sources[j].name, s->name) == 0)
                config_problem(p, ld->file, s->line, s->kind, NULL,
                               "source name '%s' is used twice", s->name);
        if (s->def->validate)
            s->def->validate(s, p, ld->file);
    }
}

static void set_defaults(struct config *c)
{
    c->staging.dir = xstrdup("/var/lib/stagecoach");
    c->staging.keep = 3;
    c->restic.timeout_s = 6L * 3600;
    c->restic.probe_timeout_s = 2L * 60;
    c->hooks.timeout_s = 5L * 60;
    c->run.mode = xstrdup("single");
    c->run.interval_s = 24L * 3600;
    c->run.timeout_s = 0;
    c->check.every_s = 7L * 86400;
}

/* fgets cannot see past a NUL byte, so a NUL would silently cut a line
 * short: find and report every line that has one. */
static void report_nul_bytes(struct loader *ld, const char *path)
{
    char *data;
    size_t len;
    sc_err e = {0};
    if (fs_read_file(path, 16u << 20, &data, &len, SC_ECONFIG, &e) != 0)
        return; /* fopen below reports an unreadable file */
    int line = 1;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n')
            line++;
        else if (data[i] == '\0') {
            config_problem(ld->probs, path, line, "syntax", NULL, "a NUL byte in the line");
            while (i < len && data[i] != '\n')
                i++;
            line++;
        }
    }
    free(data);
}

/* The absolute directory of the config file: relative paths in it are
 * relative to the file, wherever stagecoach is started from. */
static char *config_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xstrndup(path, (size_t)(slash - path) + (slash == path)) : xstrdup(".");
    char *abs = realpath(dir, NULL);
    if (abs == NULL)
        return dir;
    free(dir);
    return abs;
}

int config_load(struct config *cfg, const char *path, const struct cfg_kinds *kinds,
                struct config_problems *probs, sc_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    set_defaults(cfg);
    struct loader ld = {
        .cfg = cfg, .kinds = kinds, .probs = probs, .file = path, .at_line_start = 1};
    if (path != NULL) {
        cfg->file = xstrdup(path);
        ld.base_dir = config_dir(path);
        report_nul_bytes(&ld, path);
        ld.fp = fopen(path, "r");
        if (ld.fp == NULL) {
            int rc = sc_fail_errno(err, SC_ECONFIG, "cannot read config file %s", path);
            strvec_push(&probs->msgs, err->msg);
            free(ld.base_dir);
            return rc;
        }
        /* Values never continue on indented lines: a stray indent must not
         * silently glue two settings together. Lines may be long (paths). */
        ini_allow_multiline = false;
        ini_use_stack = false;
        ini_allow_realloc = true;
        ini_max_line = 64 * 1024;
        int bad = ini_parse_stream(counting_reader, &ld, ini_handler_fn, &ld);
        fclose(ld.fp);
        if (bad > 0)
            config_problem(probs, path, bad, "syntax", NULL,
                           "not a [section] header or a key = value line");
        else if (bad < 0)
            config_problem(probs, path, 0, "syntax", NULL, "cannot parse (out of memory)");
    }
    const char *deployer = path == NULL ? config_deployer_file() : NULL;
    if (deployer != NULL)
        apply_deployer_conf(&ld, deployer);
    else if (path == NULL)
        apply_poc_env(&ld);
    apply_env(&ld);
    validate(&ld);
    for (size_t i = 0; i < ld.nseen; i++)
        free(ld.seen[i].section);
    free(ld.seen);
    free(ld.base_dir);
    if (probs->msgs.n > 0)
        return sc_fail(err, SC_ECONFIG, "%s", probs->msgs.v[0]);
    return 0;
}

/* ---- show and free ---------------------------------------------------- */

/* A URL may carry credentials (rest:https://user:pass@host/): hide them. */
static void print_redacted_url(FILE *out, const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
    if (at == NULL || (slash && slash < at)) {
        fprintf(out, "%s\n", url);
        return;
    }
    fprintf(out, "%.*s<redacted>%s\n", (int)(scheme + 3 - url), url, at);
}

static void print_keys(FILE *out, const void *base, const struct cfg_key *keys)
{
    for (const struct cfg_key *k = keys; k->name; k++) {
        const void *field = (const char *)base + k->offset;
        switch (k->type) {
        case CFG_STR:
        case CFG_PATH:
            if (*(char *const *)field == NULL)
                break;
            fprintf(out, "%s = ", k->name);
            if (k->secret)
                print_redacted_url(out, *(char *const *)field);
            else
                fprintf(out, "%s\n", *(char *const *)field);
            break;
        case CFG_LIST:
        case CFG_PATH_LIST: {
            const struct strvec *sv = field;
            for (size_t i = 0; i < sv->n; i++)
                fprintf(out, "%s = %s\n", k->name, sv->v[i]);
            break;
        }
        case CFG_BOOL:
            fprintf(out, "%s = %s\n", k->name, *(const bool *)field ? "yes" : "no");
            break;
        case CFG_INT:
            fprintf(out, "%s = %ld\n", k->name, *(const long *)field);
            break;
        case CFG_DURATION:
            fprintf(out, "%s = %lds\n", k->name, *(const long *)field);
            break;
        case CFG_CHECK_LEVEL:
            fprintf(out, "%s = %s\n", k->name,
                    *(const enum check_level *)field == CHECK_INTEGRITY ? "integrity" : "quick");
            break;
        }
    }
}

void config_print(const struct config *cfg, FILE *out)
{
    fprintf(out, "; effective configuration (from %s and the environment)\n",
            cfg->file ? cfg->file : "no file");
    for (size_t i = 0; i < NSECTIONS; i++) {
        fprintf(out, "\n[%s]\n", sections[i].name);
        print_keys(out, cfg, sections[i].keys);
    }
    for (size_t i = 0; i < cfg->nsources; i++) {
        fprintf(out, "\n[%s %s]\n", cfg->sources[i].kind, cfg->sources[i].name);
        print_keys(out, &cfg->sources[i], cfg->sources[i].def->keys);
        /* Not a key (so a comment): that a password is in memory, never what. */
        if (cfg->sources[i].password != NULL)
            fprintf(out, "; password = <redacted> (kept in memory)\n");
    }
}

static void free_keys(void *base, const struct cfg_key *keys)
{
    for (const struct cfg_key *k = keys; k->name; k++) {
        void *field = (char *)base + k->offset;
        if (k->type == CFG_STR || k->type == CFG_PATH) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else if (k->type == CFG_LIST || k->type == CFG_PATH_LIST) {
            strvec_free(field);
        }
    }
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < NSECTIONS; i++)
        free_keys(cfg, sections[i].keys);
    for (size_t i = 0; i < cfg->nsources; i++) {
        free_keys(&cfg->sources[i], cfg->sources[i].def->keys);
        if (cfg->sources[i].password != NULL) {
            memset(cfg->sources[i].password, 0, strlen(cfg->sources[i].password));
            free(cfg->sources[i].password);
        }
        free(cfg->sources[i].kind);
        free(cfg->sources[i].name);
    }
    free(cfg->sources);
    free(cfg->file);
    memset(cfg, 0, sizeof *cfg);
}

void config_problems_free(struct config_problems *p)
{
    strvec_free(&p->msgs);
}

void config_problem(struct config_problems *probs, const char *file, int line, const char *section,
                    const char *key, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    const char *where = file ? file : "(environment)";
    if (line > 0 && key != NULL)
        strvec_pushf(&probs->msgs, "%s:%d: [%s] %s: %s", where, line, section, key, text);
    else if (line > 0)
        strvec_pushf(&probs->msgs, "%s:%d: [%s]: %s", where, line, section, text);
    else if (key != NULL)
        strvec_pushf(&probs->msgs, "%s: [%s] %s: %s", where, section, key, text);
    else
        strvec_pushf(&probs->msgs, "%s: %s", where, text);
}

bool restic_duration_ok(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    char units[5] = "";
    size_t nunits = 0;
    while (*s) {
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
        if (*s == '\0' || strchr("ymdh", *s) == NULL || strchr(units, *s) != NULL)
            return false;
        units[nunits++] = *s++;
        units[nunits] = '\0';
    }
    return true;
}
