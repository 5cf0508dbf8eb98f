/* The command table (design §5): one file per command under src/cmd/. */
#ifndef SC_CMD_H
#define SC_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "../core/config.h"
#include "../core/err.h"

/* What every command gets from main: global options and the loaded config. */
struct ctx {
    const char *config_path;
    struct config cfg;
    bool config_loaded;
    bool json; /* print one JSON report on stdout */
    bool dry_run;
    json_t *report;      /* the command fills it; main prints it with --json */
    bool error_shown;    /* the command already printed its failure */
    const char *command; /* the command's name, for hooks and reports */
    char snapshot[65];   /* the snapshot the last ship made, for hooks */
};

struct command {
    const char *name;
    int (*run)(struct ctx *c, int argc, char **argv, sc_err *err);
    const char *usage;
    bool needs_config; /* main loads (and validates) the config first */
};

/* Shared steps (cmd/common.c, cmd/stage.c, cmd/ship.c). */
int cmd_lock(struct ctx *c, int *fd, sc_err *err); /* make STAGING, take its lock */
/* Parse "--NAME VALUE" / "--NAME=VALUE" options of a command; unknown -> exit 2. */
struct cmd_opt {
    const char *name;
    const char **value;
};
int cmd_parse_opts(int argc, char **argv, const struct cmd_opt *opts, sc_err *err);
/* Stage a new set; on success *set_id is owned by the caller. Holds no lock. */
int do_stage(struct ctx *c, char **set_id, sc_err *err);
/* Ship a published set and verify the snapshot; records it in state.json. */
int do_ship(struct ctx *c, const char *set_id, sc_err *err);
/* The maintenance window: before_stage, stage, after_stage. after_stage runs
 * whatever happened before it (it restarts the service). */
int stage_in_window(struct ctx *c, char **set_id, sc_err *err);
/* before_ship, ship, after_ship (after_ship only when shipping was tried). */
int ship_with_hooks(struct ctx *c, const char *set_id, sc_err *err);
/* on_success or on_failure, told how the command ended. */
void run_final_hooks(struct ctx *c, const char *set_id, int rc, const sc_err *err);
/* Remove local sets beyond [staging] keep that are already shipped. */
int prune_local_sets(struct ctx *c, sc_err *err);
void print_plan(struct ctx *c, bool ship);
/* Record the outcome in state.json (last_run, last_success). Needs the lock. */
void record_run(struct ctx *c, const char *command, const char *started, const char *set_id, int rc,
                const sc_err *err);
void utc_timestamp(char *buf, size_t n);

int cmd_stage(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_ship(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_run(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_verify(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_snapshots(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_status(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_config(struct ctx *c, int argc, char **argv, sc_err *err);

#endif
