/* The deployer's backup.conf: a line-by-line reader of bash assignments that
 * accepts what a shell would assign literally and refuses what a shell would
 * expand or run, then the deployer's own rules (backup.sh) on the values. */
#include "deployer_conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static void note(struct dconf_note **list, size_t *n, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void note(struct dconf_note **list, size_t *n, int line, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    *list = xrealloc(*list, (*n + 1) * sizeof **list);
    (*list)[*n].line = line;
    (*list)[*n].msg = xstrdup(text);
    (*n)++;
}

#define PROBLEM(d, line, ...) note(&(d)->problems, &(d)->nproblems, line, __VA_ARGS__)
#define WARNING(d, line, ...) note(&(d)->warnings, &(d)->nwarnings, line, __VA_ARGS__)

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    memset(s, 0, strlen(s));
    free(s);
}

/* ---- reading the lines ----------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

/* A value being read: bounded, wiped when dropped. */
struct valbuf {
    char text[DCONF_MAX_VALUE + 1];
    size_t n;
    bool too_long;
};

static void val_add(struct valbuf *v, char c)
{
    if (v->n < DCONF_MAX_VALUE)
        v->text[v->n++] = c;
    else
        v->too_long = true;
}

/* Read the value at *pp (up to end) into v. NULL, or why the line is refused
 * (a message that never quotes the value). */
static const char *read_value(const char **pp, const char *end, struct valbuf *v)
{
    const char *p = *pp;
    while (p < end && !is_blank(*p)) {
        char c = *p++;
        if (c == '\'') {
            while (p < end && *p != '\'')
                val_add(v, *p++);
            if (p == end)
                return "a single quote that does not end on its line";
            p++;
        } else if (c == '"') {
            while (p < end && *p != '"') {
                if (*p == '$' || *p == '`')
                    return "$ or ` inside double quotes would be expanded by a shell: put the "
                           "value in single quotes";
                if (*p == '\\' && p + 1 < end && strchr("$`\"\\", p[1]) != NULL)
                    p++;
                val_add(v, *p++);
            }
            if (p == end)
                return "a double quote that does not end on its line";
            p++;
        } else if (c == '\\') {
            if (p == end)
                return "a line continuation (\\ at the end) is not supported";
            val_add(v, *p++);
        } else if (c == '$' || c == '`') {
            return "$ or ` would be expanded by a shell: put the value in single quotes";
        } else if (c == '~' && v->n == 0 && p - 1 == *pp) {
            return "a leading ~ would be expanded by a shell: write the full path";
        } else if (strchr(";&|<>()", c) != NULL) {
            return "shell syntax (; & | < > ( )) in the value: quote it";
        } else {
            val_add(v, c); /* '#' inside a word is literal, as in bash */
        }
    }
    *pp = p;
    return v->too_long ? "the value is too long" : NULL;
}

static void set_var(struct dconf *d, const char *name, size_t name_len, const struct valbuf *v,
                    int line)
{
    for (size_t i = 0; i < d->nvars; i++) {
        if (strlen(d->vars[i].name) == name_len && memcmp(d->vars[i].name, name, name_len) == 0) {
            WARNING(d, line,
                    "%s is set again (first on line %d): the last one counts, as in a "
                    "shell",
                    d->vars[i].name, d->vars[i].line);
            wipe_free(d->vars[i].value);
            d->vars[i].value = xstrndup(v->text, v->n);
            d->vars[i].line = line;
            return;
        }
    }
    d->vars = xrealloc(d->vars, (d->nvars + 1) * sizeof *d->vars);
    d->vars[d->nvars].name = xstrndup(name, name_len);
    d->vars[d->nvars].value = xstrndup(v->text, v->n);
    d->vars[d->nvars].line = line;
    d->nvars++;
}

/* One line, [p, end), without its line end. */
static void parse_line(struct dconf *d, const char *p, const char *end, int line)
{
    if (p >= end)
        return;
    if (memchr(p, '\0', (size_t)(end - p)) != NULL) {
        PROBLEM(d, line, "a NUL byte in the line");
        return;
    }
    while (p < end && is_blank(*p))
        p++;
    if (p == end || *p == '#')
        return;
    if (end - p > 7 && memcmp(p, "export", 6) == 0 && is_blank(p[6])) {
        p += 6;
        while (p < end && is_blank(*p))
            p++;
    }
    const char *name = p;
    if (p < end && name_start(*p))
        while (p < end && name_char(*p))
            p++;
    size_t name_len = (size_t)(p - name);
    if (name_len == 0 || name_len > DCONF_MAX_NAME || p == end || *p != '=') {
        const char *q = p;
        while (q < end && is_blank(*q))
            q++;
        if (name_len > 0 && q > p && q < end && *q == '=')
            PROBLEM(d, line, "%.*s: no blanks around '=' (a shell would run %.*s as a command)",
                    (int)name_len, name, (int)name_len, name);
        else
            PROBLEM(d, line, "not a KEY=value line");
        return;
    }
    p++;
    struct valbuf *v = xcalloc(1, sizeof *v);
    const char *why = read_value(&p, end, v);
    if (why == NULL) {
        while (p < end && is_blank(*p))
            p++;
        if (p < end && *p != '#')
            why = "a blank inside the value (a shell would run the rest as a command): quote it";
    }
    if (why != NULL)
        PROBLEM(d, line, "%.*s: %s", (int)name_len, name, why);
    else
        set_var(d, name, name_len, v, line);
    memset(v, 0, sizeof *v);
    free(v);
}

size_t dconf_parse(const char *data, size_t len, struct dconf *d)
{
    const char *p = data, *end = data + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    int line = 0;
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *stop = eol;
        if (stop > p && stop[-1] == '\r')
            stop--;
        parse_line(d, p, stop, line);
        p = nl ? nl + 1 : end;
    }
    return d->nproblems;
}

/* ---- the deployer's rules ---------------------------------------------------- */

static const char *const known_vars[] = {
    "BACKUP_RETENTION_DAYS",
    "BACKUP_PATHS_FILE",
    "DB_TYPE",
    "DB_HOST",
    "DB_PORT",
    "DB_USER",
    "DB_PASSWORD",
    "DB_NAME",
    "DB_PATH",
    "RESTIC_REPOSITORY",
    "RESTIC_REPOSITORY_FILE",
    "RESTIC_PASSWORD_FILE",
    NULL,
};

static const struct dconf_var *find_var(const struct dconf *d, const char *name)
{
    for (size_t i = 0; i < d->nvars; i++)
        if (strcmp(d->vars[i].name, name) == 0)
            return &d->vars[i];
    return NULL;
}

const char *dconf_get(const struct dconf *d, const char *name)
{
    const struct dconf_var *v = find_var(d, name);
    return (v != NULL && v->value[0] != '\0') ? v->value : NULL;
}

static int line_of(const struct dconf *d, const char *name)
{
    const struct dconf_var *v = find_var(d, name);
    return v ? v->line : 0;
}

static void add_setting(struct dconf *d, const char *section, const char *key, const char *var,
                        const char *value, int line, bool in_memory)
{
    d->settings = xrealloc(d->settings, (d->nsettings + 1) * sizeof *d->settings);
    d->settings[d->nsettings++] =
        (struct dconf_setting){section, key, var, xstrdup(value), line, in_memory};
}

/* Set [section] key from var when the file gives it a value. */
static void map(struct dconf *d, const char *var, const char *section, const char *key)
{
    const char *v = dconf_get(d, var);
    if (v != NULL)
        add_setting(d, section, key, var, v, line_of(d, var), false);
}

/* BACKUP_RETENTION_DAYS (default 7, at least 1 as in the deployer's
 * RetentionDays): the repository keeps that many days of snapshots. */
static void map_retention(struct dconf *d)
{
    const char *v = dconf_get(d, "BACKUP_RETENTION_DAYS");
    int line = line_of(d, "BACKUP_RETENTION_DAYS");
    if (v == NULL) {
        add_setting(d, "retention", "keep_within", "BACKUP_RETENTION_DAYS", "7d", 0, false);
        return;
    }
    size_t n = strspn(v, "0123456789");
    long days = (n == strlen(v) && n > 0 && n <= 5) ? strtol(v, NULL, 10) : 0;
    if (days < 1) {
        PROBLEM(d, line, "BACKUP_RETENTION_DAYS: expected a whole number of days >= 1: '%s'", v);
        return;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%ldd", days);
    add_setting(d, "retention", "keep_within", "BACKUP_RETENTION_DAYS", buf, line, false);
}

static void map_mysql(struct dconf *d)
{
    static const char *const required[] = {"DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD",
                                           "DB_NAME"};
    char missing[128] = "";
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (dconf_get(d, required[i]) == NULL)
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s",
                     required[i]);
    if (missing[0] != '\0') {
        PROBLEM(d, line_of(d, "DB_TYPE"), "DB_TYPE=mysql: missing required variables:%s", missing);
        return;
    }
    map(d, "DB_HOST", "mysql tracker", "host");
    map(d, "DB_PORT", "mysql tracker", "port");
    map(d, "DB_USER", "mysql tracker", "user");
    map(d, "DB_NAME", "mysql tracker", "database");
    add_setting(d, "mysql tracker", "password", "DB_PASSWORD", dconf_get(d, "DB_PASSWORD"),
                line_of(d, "DB_PASSWORD"), true);
}

static void map_database(struct dconf *d)
{
    const char *type = dconf_get(d, "DB_TYPE");
    int line = line_of(d, "DB_TYPE");
    if (type == NULL || strcmp(type, "none") == 0)
        return;
    if (strcmp(type, "sqlite") == 0) {
        if (dconf_get(d, "DB_PATH") == NULL)
            PROBLEM(d, line, "DB_TYPE=sqlite: missing required variable DB_PATH");
        else
            map(d, "DB_PATH", "sqlite tracker", "path");
    } else if (strcmp(type, "mysql") == 0) {
        map_mysql(d);
    } else {
        PROBLEM(d, line, "DB_TYPE: unknown database type '%s' (expected mysql, sqlite or none)",
                type);
    }
}

size_t dconf_translate(struct dconf *d)
{
    for (size_t i = 0; i < d->nvars; i++) {
        size_t k = 0;
        while (known_vars[k] && strcmp(known_vars[k], d->vars[i].name) != 0)
            k++;
        if (known_vars[k] == NULL)
            WARNING(d, d->vars[i].line, "%s: unknown variable, ignored", d->vars[i].name);
    }
    map_retention(d);
    map_database(d);
    map(d, "BACKUP_PATHS_FILE", "paths config", "from_file");
    map(d, "RESTIC_REPOSITORY", "restic", "repository");
    map(d, "RESTIC_REPOSITORY_FILE", "restic", "repository_file");
    map(d, "RESTIC_PASSWORD_FILE", "restic", "password_file");
    return d->nproblems;
}

void dconf_free(struct dconf *d)
{
    for (size_t i = 0; i < d->nvars; i++) {
        free(d->vars[i].name);
        wipe_free(d->vars[i].value);
    }
    for (size_t i = 0; i < d->nsettings; i++)
        wipe_free(d->settings[i].value);
    for (size_t i = 0; i < d->nproblems; i++)
        free(d->problems[i].msg);
    for (size_t i = 0; i < d->nwarnings; i++)
        free(d->warnings[i].msg);
    free(d->vars);
    free(d->settings);
    free(d->problems);
    free(d->warnings);
    memset(d, 0, sizeof *d);
}
