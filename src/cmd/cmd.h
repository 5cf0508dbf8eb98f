/* The command table (design §5): one file per command under src/cmd/. */
#ifndef SC_CMD_H
#define SC_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "../core/config.h"
#include "../core/err.h"
#include "../core/state.h"

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
    json_t *shipped;     /* sets this command shipped, [{set, snapshot}] (NULL: not tracked) */
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
void print_plan(struct ctx *c, bool stage, bool ship, const char *ship_which);
/* Record the outcome in state.json (last_run, last_success). Needs the lock. */
void record_run(struct ctx *c, const char *command, const char *started, const char *set_id, int rc,
                const sc_err *err);
void utc_timestamp(char *buf, size_t n);

/* Off-site steps (cmd/ship.c, cmd/forget.c, cmd/check.c, cmd/offsite.c). */
/* Ship one set and verify its snapshot; *shipped (owned) describes it:
 * {set, snapshot: {id, short_id, data_added, ...}}. Prints nothing. */
int ship_set(struct ctx *c, const char *set_id, json_t **shipped, sc_err *err);
/* Ship the sets older than newest that are not shipped yet (a run whose
 * upload failed left them), oldest first; appends to c->shipped. */
int ship_pending(struct ctx *c, const char *newest, sc_err *err);
/* Retention: forget (+ prune) in the repository, then local sets. Only
 * after a verified ship. *out (owned) is the report's "retention". */
int do_retention(struct ctx *c, bool dry_run, json_t **out, sc_err *err);
/* restic check, recorded in state.json; with only_if_due, only when [check]
 * every says it is due. *out (owned) is the report's "check". */
int do_check(struct ctx *c, bool only_if_due, json_t **out, sc_err *err);
/* After a verified ship: retention, then a check when due; both go into
 * the report. Needs the lock. */
int after_ship(struct ctx *c, sc_err *err);
/* Rewrite [run] metrics_file from state.json, when configured. A failure
 * is a warning: monitoring notices a stale file by its timestamps. */
void write_metrics(struct ctx *c);
/* --dry-run: retention, check cadence and metrics, after print_plan. */
void print_offsite_plan(struct ctx *c);
/* Add the run's numbers (duration, bytes staged and added, per source) to
 * state.json's last_run, after record_run, and to the report. */
void record_run_stats(struct ctx *c, const char *set_id, double duration_s);
/* Check cadence (cmd/check.c), exposed for unit tests. */
char *check_subset_now(const char *configured, json_t *check_state, int *pos, int *n);
void check_rotation_advance(json_t *check_state, int pos, int n);
long long check_next_due(long every_s, json_t *check_state); /* epoch s; 0: now; -1: never */

int cmd_stage(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_ship(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_run(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_verify(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_snapshots(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_status(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_check(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_forget(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_config(struct ctx *c, int argc, char **argv, sc_err *err);
/* Pre-flight checks, changing nothing (doctor.c). */
int cmd_doctor(struct ctx *c, int argc, char **argv, sc_err *err);

/* Sealed staging, restore and restore drills (keygen.c, restore.c, drill.c). */
int cmd_keygen(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_restore(struct ctx *c, int argc, char **argv, sc_err *err);
int cmd_drill(struct ctx *c, int argc, char **argv, sc_err *err);

struct crypto_key;
/* Take a value-less "--NAME" flag out of argv; true when it was there. */
bool cmd_take_flag(int *argc, char **argv, const char *name);
/* The key that opens encrypted sets: identity (--identity) when given, else
 * [staging] identity, else [staging] key_file; *key stays NULL when none is
 * configured. The passphrase comes from passphrase_file, else [staging]
 * passphrase_file, else the terminal. */
int cmd_reading_key(struct ctx *c, const char *identity, const char *passphrase_file,
                    struct crypto_key **key, sc_err *err);
/* The same, read only when the set in setdir is encrypted (a plain set
 * never asks for a passphrase). */
int cmd_set_key(struct ctx *c, const char *setdir, const char *identity,
                const char *passphrase_file, struct crypto_key **key, sc_err *err);
/* A snapshot read back by restic into a private scratch directory made
 * under parent (scratch_create), named prefix + random. */
struct fetched {
    char *scratch;  /* removed by cmd_fetched_free */
    int scratch_fd; /* holds it (scratch_create) */
    char *setdir;   /* the set inside it */
    char snapshot[65];
};
int cmd_fetch_snapshot(struct ctx *c, const char *which, const char *parent, const char *prefix,
                       struct fetched *f, sc_err *err);
void cmd_fetched_free(struct fetched *f);

#endif
