/* The commands (design §5): one file each under src/cmd/, in the table in
 * main.c. A command parses its own options (core/opts.h), calls the
 * pipeline (src/pipeline/) and prints; it never calls another command's
 * file (`make check-layers` checks it with nm). */
#ifndef SC_CMD_H
#define SC_CMD_H

#include <stdbool.h>
#include "../core/err.h"
#include "../core/opts.h"
#include "../pipeline/ctx.h"

/* A command: how main runs it and what --help says of it. */
struct command {
    const char *name;
    const char *label; /* its line in stagecoach --help when not name ("config check|show") */
    int (*run)(struct ctx *c, int argc, char **argv, sc_err *err);
    const char *usage;   /* after "stagecoach ": the command and its arguments */
    const char *summary; /* one line for stagecoach --help */
    const char *help;    /* stagecoach COMMAND --help: what it does */
    const char *options; /* and its options, one "  --NAME  what" a line (NULL: none) */
    const char *example; /* example command lines, one a line */
    bool needs_config;   /* main loads (and validates) the config first */
};

/* Each defined in its own file, listed in main.c's table. */
extern const struct command command_stage, command_ship, command_run, command_verify,
    command_restore, command_drill, command_snapshots, command_check, command_forget,
    command_status, command_doctor, command_config, command_keygen;

#endif
