#include "opts.h"

#include <stddef.h>
#include <string.h>

int opts_parse(int argc, char **argv, const struct opt *opts, sc_err *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const struct opt *o = NULL;
        const char *value = NULL;
        for (const struct opt *p = opts; p && p->name; p++) {
            size_t n = strlen(p->name);
            if (strncmp(a, "--", 2) == 0 && strncmp(a + 2, p->name, n) == 0 &&
                (a[2 + n] == '\0' || a[2 + n] == '=')) {
                o = p;
                value = a[2 + n] == '=' ? a + 3 + n : NULL;
            }
        }
        if (o == NULL)
            return sc_fail(err, SC_EUSAGE, "unknown option '%s' (see stagecoach --help)", a);
        if (value == NULL) {
            if (i + 1 >= argc)
                return sc_fail(err, SC_EUSAGE, "--%s needs a value", o->name);
            value = argv[++i];
        }
        *o->value = value;
    }
    return 0;
}

bool opts_take_flag(int *argc, char **argv, const char *name)
{
    bool found = false;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, name) == 0)
            found = true;
        else
            argv[out++] = argv[i];
    }
    argv[out] = NULL;
    *argc = out;
    return found;
}
