/* libFuzzer target: the deployer's backup.conf reader and its rules. Every
 * accepted variable has a valid name and a bounded value without NUL bytes,
 * names are unique, lines are within the input, and a variable written back
 * single-quoted (' as '\'') reads back to the same value. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/core/deployer_conf.h"
#include "../../src/core/xalloc.h"

static void check_roundtrip(const struct dconf_var *v)
{
    size_t n = strlen(v->value);
    char *text = xmalloc(strlen(v->name) + 4 * n + 8);
    size_t o = 0;
    memcpy(text, v->name, strlen(v->name));
    o += strlen(v->name);
    text[o++] = '=';
    text[o++] = '\'';
    for (size_t i = 0; i < n; i++) {
        if (v->value[i] == '\'') {
            memcpy(text + o, "'\\''", 4);
            o += 4;
        } else if (v->value[i] == '\n') {
            __builtin_trap(); /* a value never spans lines */
        } else {
            text[o++] = v->value[i];
        }
    }
    text[o++] = '\'';
    struct dconf again = {0};
    /* a value full of quotes may grow past the limit when written back */
    if (dconf_parse(text, o, &again) == 0 &&
        (again.nvars != 1 || strcmp(again.vars[0].value, v->value) != 0))
        __builtin_trap();
    dconf_free(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > DCONF_MAX_FILE)
        return 0;
    int lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    struct dconf d = {0};
    dconf_parse((const char *)data, size, &d);
    for (size_t i = 0; i < d.nvars; i++) {
        const struct dconf_var *v = &d.vars[i];
        size_t nl = strlen(v->name);
        if (nl == 0 || nl > DCONF_MAX_NAME ||
            strspn(v->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
                nl ||
            (v->name[0] >= '0' && v->name[0] <= '9'))
            __builtin_trap();
        if (strlen(v->value) > DCONF_MAX_VALUE || v->line < 1 || v->line > lines)
            __builtin_trap();
        for (size_t j = 0; j < i; j++)
            if (strcmp(d.vars[j].name, v->name) == 0)
                __builtin_trap();
        check_roundtrip(v);
    }
    for (size_t i = 0; i < d.nproblems; i++)
        if (d.problems[i].line < 1 || d.problems[i].line > lines || d.problems[i].msg[0] == '\0')
            __builtin_trap();
    dconf_translate(&d);
    for (size_t i = 0; i < d.nsettings; i++) {
        const struct dconf_setting *s = &d.settings[i];
        if (s->in_memory != (strcmp(s->key, "password") == 0) || s->value == NULL)
            __builtin_trap();
    }
    /* the password only for DB_TYPE=mysql, and it is DB_PASSWORD's value */
    for (size_t i = 0; i < d.nsettings; i++) {
        const char *type = dconf_get(&d, "DB_TYPE");
        const char *pw = dconf_get(&d, "DB_PASSWORD");
        if (d.settings[i].in_memory && (type == NULL || strcmp(type, "mysql") != 0 || pw == NULL ||
                                        strcmp(pw, d.settings[i].value) != 0))
            __builtin_trap();
    }
    dconf_free(&d);
    return 0;
}
