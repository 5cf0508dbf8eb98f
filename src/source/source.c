#include "source.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../core/xalloc.h"

/* Every source kind, by the name used in its section header. */
static const struct source_ops *const kinds[] = {
    &source_sqlite,
    &source_paths,
    &source_mysql,
};

const struct source_ops *source_find(const char *kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->kind, kind) == 0)
            return kinds[i];
    return NULL;
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
