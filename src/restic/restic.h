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

struct restic {
    const struct config *cfg;
    char *binary;
    struct strvec env; /* the child's whole environment */
    int major, minor, patch;
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
/* The repository exists (`cat config`); with init = yes create it when missing. */
int restic_ensure_repo(struct restic *r, bool may_init, sc_err *err);
/* Back up dir with --host, --tag stagecoach, each configured tag and tag
 * set-<set_id>; the full snapshot id is looked up afterwards. */
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

/* Read KEY=VALUE lines of a private env file into env (same-named entries
 * replaced). Exit 3 on errors. */
int restic_parse_env_file(const char *path, struct strvec *env, sc_err *err);

/* Turn a failed restic call into one line, exit 6 (exposed for unit tests). */
int restic_classify(const char *what, int exit_code, const char *stderr_text, sc_err *err);

#endif
