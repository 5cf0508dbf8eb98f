/* A command's own options: "--NAME VALUE", "--NAME=VALUE" and value-less
 * flags. Used by every command in src/cmd/ (after main took the global
 * options out of argv); calls only err.h. */
#ifndef SC_OPTS_H
#define SC_OPTS_H

#include <stdbool.h>
#include "err.h"

struct opt {
    const char *name;   /* without the leading "--" */
    const char **value; /* set to the option's value when it is given */
};

/* Parse argv[1..argc-1] against opts (ending with {NULL, NULL}; NULL: the
 * command takes no option): an unknown option or a missing value is exit 2. */
int opts_parse(int argc, char **argv, const struct opt *opts, sc_err *err);
/* Take a value-less "--NAME" flag out of argv; true when it was there. */
bool opts_take_flag(int *argc, char **argv, const char *name);

#endif
