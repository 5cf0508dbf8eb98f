/* What every step of a run gets: the loaded configuration, the global
 * options, and the report being filled; and the run lock. Used by every
 * module of src/pipeline/ and by the commands (src/cmd/), which make one
 * in main.c; calls only src/core/. */
#ifndef SC_PIPELINE_CTX_H
#define SC_PIPELINE_CTX_H

#include <stdbool.h>
#include <jansson.h>
#include "../core/config.h"
#include "../core/err.h"

/* What every command and step gets from main: global options and the loaded config. */
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
    json_t *shipped;     /* sets this command shipped, [{set, snapshot}] (NULL: not tracked) */
};

/* Make STAGING (0700) and take its lock: exit 8 when another run holds it. */
int ctx_lock(struct ctx *c, int *fd, sc_err *err);

#endif
