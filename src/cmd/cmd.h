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

struct command {
    const char *name;
    int (*run)(struct ctx *c, int argc, char **argv, sc_err *err);
    const char *usage;
    bool needs_config; /* main loads (and validates) the config first */
};

int cmd_stage(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_ship(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_run(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_verify(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_restore(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_drill(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_snapshots(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_status(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_check(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_forget(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_config(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_doctor(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_keygen(struct ctx *c, int argc, char **argv, sc_err *err);

#endif
