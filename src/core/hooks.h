/* Hooks (design §3): commands run at fixed points of a run, e.g. stopping
 * the service before staging and starting it again after. A hook is split
 * into words like a shell would (quotes allowed) but run with an argv, never
 * through a shell. */
#ifndef SC_HOOKS_H
#define SC_HOOKS_H

#include <stdbool.h>

#include "config.h"
#include "err.h"
#include "xalloc.h"

enum hook_point {
    HOOK_BEFORE_STAGE,
    HOOK_AFTER_STAGE,
    HOOK_BEFORE_SHIP,
    HOOK_AFTER_SHIP,
    HOOK_ON_SUCCESS,
    HOOK_ON_FAILURE,
    HOOK_COUNT
};

/* What a hook is told through STAGECOACH_* variables. */
struct hook_info {
    const char *command;  /* STAGECOACH_COMMAND: run, stage, ship */
    const char *set;      /* STAGECOACH_SET */
    const char *snapshot; /* STAGECOACH_SNAPSHOT */
    const char *status;   /* STAGECOACH_STATUS: running, success, failure */
    int exit_code;        /* STAGECOACH_EXIT_CODE */
    const char *error;    /* STAGECOACH_ERROR */
};

const char *hook_name(enum hook_point p);
/* Whether a failure of the hook at p fails the run (policy "fail", or no
 * policy and a point that prepares or restores the service) or only warns. */
bool hook_policy_fails(const struct config *cfg, enum hook_point p);
/* Run the hook configured for p, if any. A failure (exit status, timeout,
 * cannot start) returns exit 1 with a message, unless the hook's policy is
 * warn: then a warning and 0. */
int hook_run(const struct config *cfg, enum hook_point p, const struct hook_info *info,
             sc_err *err);

#endif
