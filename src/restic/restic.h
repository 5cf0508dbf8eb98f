/* Talking to restic (tech-facts §1-§4): a controlled environment (repository,
 * password file, backend credentials from env_file; never on argv), version
 * detection, JSON parsing with jansson, and failures classified into exit 6
 * with one clear line. */
#ifndef SC_RESTIC_H
#define SC_RESTIC_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "../core/config.h"
#include "../core/err.h"
#include "../core/xalloc.h"

/* How a call is tried again (call.c). restic_open sets the defaults. */
struct restic_retry {
    int tries;             /* attempts when the backend fails transiently (3) */
    long backoff_ms[2];    /* pauses before the 2nd and 3rd attempts (2 s, 4 s) */
    long lock_wait_s;      /* how long a lock held by someone else is waited for (120 s) */
    long lock_poll_ms;     /* the second pause while locked (the first is none), doubling */
    long lock_poll_max_ms; /* ... up to this (30 s) */
};

struct restic {
    const struct config *cfg;
    char *binary;      /* as configured ([restic] binary, default "restic") */
    char *path;        /* the program that runs: binary, looked up in PATH as spawn does */
    struct strvec env; /* the child's whole environment */
    int major, minor, patch;
    struct restic_retry retry;
};

struct restic_backup_result {
    char snapshot_id[65]; /* full 64-hex id (looked up on 0.14, which prints 8) */
    char short_id[9];
    uint64_t data_added;
    uint64_t files_new, files_changed, files_unmodified;
    uint64_t total_bytes_processed;
    double duration_s;
};

/* Build the environment and detect the version (`restic version`). */
int restic_open(struct restic *r, const struct config *cfg, sc_err *err);
void restic_close(struct restic *r);
/* restic_open, and report (when not NULL) says which restic ran: "restic". */
int restic_open_reported(struct restic *r, const struct config *cfg, json_t *report, sc_err *err);
/* Which restic ran, for reports: {"version": "0.18.0", "path": "/usr/bin/restic"}. */
json_t *restic_describe(const struct restic *r);
/* The version is at least 0.MINOR (what a flag or a JSON field needs). */
bool restic_at_least(const struct restic *r, int minor);
/* The repository exists (`cat config`); with init = yes create it when missing. */
int restic_ensure_repo(struct restic *r, bool may_init, sc_err *err);
/* Back up dir with --host, --tag stagecoach, each configured tag and tag
 * set-<set_id>, and --time the set's own time (its id); the full snapshot
 * id is looked up afterwards. */
int restic_backup(struct restic *r, const char *dir, const char *set_id,
                  struct restic_backup_result *out, sc_err *err);
/* `snapshots --json --tag stagecoach [--host H]`: the JSON array, owned. */
int restic_snapshots(struct restic *r, bool this_host_only, json_t **out, sc_err *err);
/* Resolve "latest" or a (short) id among this tool's snapshots: the snapshot object (new ref). */
int restic_find_snapshot(struct restic *r, const char *which, json_t **snap, sc_err *err);
/* `ls --json ID`: the node objects (type, path, size), owned array. */
int restic_ls(struct restic *r, const char *id, json_t **nodes, sc_err *err);
/* `dump ID PATH` into memory, at most max bytes. */
int restic_dump(struct restic *r, const char *id, const char *path, size_t max, char **buf,
                size_t *len, sc_err *err);
/* `restore ID --target DIR`. */
int restic_restore(struct restic *r, const char *id, const char *target, sc_err *err);

/* RFC 3339 time as seconds and nanoseconds since the epoch; -1 if malformed. */
int restic_parse_time(const char *s, long long *sec, long *nsec);
/* Snapshot a is at least as new as b (by "time"). */
bool restic_snapshot_newer(json_t *a, json_t *b);

/* ---- retention (forget.c) ---- */

/* The [retention] policy as forget flags (--keep-last=N ...) appended to
 * argv; false when no keep_* is set (then nothing may be forgotten). */
bool restic_retention_args(const struct config *cfg, struct strvec *argv);
/* The snapshots under this tool's retention: --tag stagecoach,<tags> (AND)
 * --host <host>. Appended to argv. */
void restic_own_filter(const struct restic *r, const char *host, struct strvec *argv);
/* `snapshots --json` with that filter: the JSON array, owned. */
int restic_own_snapshots(struct restic *r, json_t **out, sc_err *err);

struct restic_forget_result {
    json_t *keep;   /* snapshot objects kept, all groups together (owned) */
    json_t *remove; /* snapshot objects forgotten (owned; empty, never null) */
};
/* `forget --json <filter> --group-by=host <policy> [--dry-run --no-lock]`.
 * Exit 3 when there is no policy or keep_within is not a restic duration. */
int restic_forget(struct restic *r, bool dry_run, struct restic_forget_result *out, sc_err *err);
/* Parse forget's output: the first line only (0.14 may print prune's text
 * after it); "remove": null means none. Exposed for unit tests. */
int restic_forget_parse(const char *text, size_t len, struct restic_forget_result *out,
                        sc_err *err);
void restic_forget_result_free(struct restic_forget_result *f);
/* `prune`: delete the data no snapshot references any more. */
int restic_prune(struct restic *r, sc_err *err);

/* ---- checking (check.c) ---- */

struct restic_check_result {
    bool ok;       /* no errors were found */
    bool damaged;  /* restic said the repository contains errors */
    char *problem; /* the first error it named (owned), or NULL */
};
/* `check [--read-data-subset=SUBSET]` (subset NULL: structure only). A
 * damaged repository, or a check that could not run, is exit 6. */
int restic_check(struct restic *r, const char *subset, struct restic_check_result *out,
                 sc_err *err);
void restic_check_result_free(struct restic_check_result *c);

/* Read KEY=VALUE lines of a private env file into env (same-named entries
 * replaced). Exit 3 on errors. */
int restic_parse_env_file(const char *path, struct strvec *env, sc_err *err);

/* Turn a failed restic call into one line, exit 6 (exposed for unit tests). */
int restic_classify(const char *what, int exit_code, const char *stderr_text, sc_err *err);

#endif
