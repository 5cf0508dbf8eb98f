/* The table of source kinds, and what every kind shares: manifest
 * warnings, doctor findings. */
#include "source.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../core/fs.h"
#include "../core/xalloc.h"

/* Every source kind, by the name used in its section header. */
static const struct source_ops *const kinds[] = {
    &source_sqlite,
    &source_paths,
    &source_mysql,
    &source_postgresql,
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

const struct source_ops *source_find(const char *kind)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (strcmp(kinds[i]->cfg.kind, kind) == 0)
            return kinds[i];
    return NULL;
}

const struct source_ops *source_of(const struct source_cfg *src)
{
    return source_find(src->kind);
}

static const struct cfg_kind *find_cfg_kind(const char *kind)
{
    const struct source_ops *ops = source_find(kind);
    return ops ? &ops->cfg : NULL;
}

/* "sqlite, paths, mysql", made once from the table. */
static const char *kind_names(void)
{
    static char names[256];
    if (names[0] == '\0') {
        size_t off = 0;
        for (size_t i = 0; i < NKINDS && off < sizeof names; i++) {
            int n = snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "",
                             kinds[i]->cfg.kind);
            off += n > 0 ? (size_t)n : 0;
        }
    }
    return names;
}

const struct cfg_kinds source_kinds = {find_cfg_kind, kind_names};

void source_warn(json_t *entry, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_t *warnings = json_object_get(entry, "warnings");
    if (!json_is_array(warnings)) {
        warnings = json_array();
        json_object_set_new(entry, "warnings", warnings);
    }
    json_array_append_new(warnings, json_string(text));
}

void probe_report(struct probe *p, enum probe_status st, int code, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->report(p, st, code, line);
}

void probe_secret(struct probe *p, const char *path, const char *what)
{
    if (path == NULL)
        return;
    sc_err e = {0};
    if (fs_check_private(path, what, &e) != 0)
        probe_report(p, PROBE_FAIL, SC_ECONFIG, "secret %s: %s", what, e.msg);
    else
        probe_report(p, PROBE_OK, 0, "secret %s: %s is private", what, path);
}
