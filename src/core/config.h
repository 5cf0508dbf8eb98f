/* The configuration model (design §8): INI through libinih, every key
 * described by a table, STAGECOACH_<SECTION>_<KEY> environment overrides.
 * Section and key names are a fixed contract. */
#ifndef SC_CONFIG_H
#define SC_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include "err.h"
#include "xalloc.h"

enum check_level { CHECK_QUICK = 0, CHECK_INTEGRITY = 1 };

/* One [KIND NAME] source section. Fields of all kinds live here; each kind's
 * key table (in src/source/KIND.c) says which ones it uses. */
struct source_cfg {
    char *kind;                 /* the section's KIND: "sqlite", "paths", "mysql", ... */
    char *name;                 /* [A-Za-z0-9._-]+, unique across sources */
    const struct cfg_kind *def; /* its keys and validation (src/source/ has the rest) */
    int line;                   /* where the section starts, for messages */

    /* sqlite */
    char *path;
    enum check_level check;
    long busy_timeout_ms;
    long step_pages;       /* pages per backup step (progress granularity) */
    char *layout;          /* file | pages | auto (NULL: auto); docs/sqlite-pages.md */
    long pages_from_mib;   /* layout = auto: pages from this size (0: 1024) */
    char *clone;           /* auto | never: reflink a rollback-journal database (NULL: auto) */
    long repack_threshold; /* layout = pages: retire packs more than this % unused */

    /* paths */
    struct strvec paths; /* `path =` entries, repeatable */
    char *from_file;
    bool missing_ok; /* a missing path is a warning, not an error */

    /* mysql (src/source/mysql.c owns the meaning of these) */
    char *option_file; /* my.cnf-style file: user, password, host, socket, ... */
    char *group;       /* option-file group besides [client] */
    char *host;
    long port;
    char *socket;
    char *user;
    char *password_file;          /* read in-process, never passed on */
    struct strvec databases;      /* `database =`, repeatable; empty: all but system schemas */
    struct strvec include_tables; /* patterns db.table (fnmatch) */
    struct strvec exclude_tables;
    char *ssl_ca, *ssl_cert, *ssl_key;
    bool ssl_verify;
    long connect_timeout_s, read_timeout_s, write_timeout_s;
    char *definer;         /* keep | strip */
    long max_insert_bytes; /* bound on one multi-row INSERT */
    long threads;          /* connections reading rows in parallel (0: default) */
    char *snapshot_lock;   /* auto | backup_stage | ftwrl (NULL: auto) */
    char *restore_binlog;  /* yes | no: a restore written to the binary log (NULL: yes) */
    char *password; /* only from the POC's MYSQL_PASSWORD (not a key): in memory, never logged */

    /* postgresql (src/source/postgresql/ owns the meaning of these; it shares
     * host, port, user, password_file, databases, exclude_tables,
     * connect_timeout_s and threads with mysql) */
    char *passfile;    /* a .pgpass-format file, instead of password_file */
    char *sslmode;     /* libpq's sslmode (NULL: libpq's default, prefer) */
    char *sslrootcert; /* CA file for sslmode verify-ca / verify-full */
    char *bin_dir;     /* the directory of pg_dump and psql (NULL: PATH) */
};

struct config {
    char *file; /* the file read, or NULL when none */

    struct {
        char *dir;
        long keep;
        bool encrypt;
        char *recipient;       /* public key file (keygen's FILE.pub): sealed mode */
        char *key_file;        /* symmetric key file, instead of recipient */
        char *identity;        /* secret key for verify/restore/drill; never needed to stage */
        char *passphrase_file; /* the identity's passphrase, when it has one */
    } staging;

    struct source_cfg *sources;
    size_t nsources;

    struct {
        char *repository;
        char *repository_file;
        char *password_file;
        char *env_file;
        char *host;
        struct strvec tags;
        char *cacert;
        bool init;
        char *binary;
        long timeout_s;
        /* the first call of a run (`cat config`): restic 0.17+ retries a down
         * backend for 15 minutes; a run should say so sooner (0: timeout) */
        long probe_timeout_s;
    } restic;

    struct {
        long keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly;
        char *keep_within;
    } retention;

    struct {
        long every_s;
        char *read_data_subset;
    } check;

    struct {
        /* indexed by enum hook_point (core/hooks.h): before_stage, after_stage,
         * before_ship, after_ship, on_success, on_failure */
        char *cmd[6];
        char *on_error[6]; /* "fail" or "warn"; NULL: the point's default */
        long timeout_s;
    } hooks;

    struct {
        char *mode;
        long interval_s;
        long timeout_s;
        char *metrics_file;
        bool syslog;           /* copy log messages to syslog(3) */
        char *syslog_facility; /* daemon (default), user, local0..local7 */
    } run;
};

/* A list of problems found while loading: each names file, line and key. */
struct config_problems {
    struct strvec msgs;
};

/* What the loader needs of a source kind: the section name, its keys and a
 * check of the whole section. src/source/ has one per kind (the first part
 * of its struct source_ops), so this module never depends on the sources. */
struct cfg_kind {
    const char *kind;
    /* Keys accepted in a [KIND NAME] section; offsets into struct source_cfg. */
    const struct cfg_key *keys;
    /* Check required keys and value combinations after loading; append
     * problems with config_problem(). Return 0 when valid. */
    int (*validate)(const struct source_cfg *src, struct config_problems *probs, const char *file);
};
/* The kinds a configuration may name: find one by its section name, and
 * list them all ("sqlite, paths, mysql") for messages. */
struct cfg_kinds {
    const struct cfg_kind *(*find)(const char *kind);
    const char *(*names)(void);
};

/* Load path with the source kinds of kinds (path NULL: no stagecoach file:
 * the deployer's backup.conf when config_deployer_file() names one, else
 * the POC's variables; then the defaults and STAGECOACH_* overrides).
 * Returns 0, or SC_ECONFIG with every problem listed in probs (and the
 * first in err). */
int config_load(struct config *cfg, const char *path, const struct cfg_kinds *kinds,
                struct config_problems *probs, sc_err *err);

/* Append a problem message "FILE:LINE: [section] key: text". */
void config_problem(struct config_problems *probs, const char *file, int line, const char *section,
                    const char *key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* restic's own duration syntax, which [retention] keep_within takes:
 * "1y5m7d2h", units y, m, d, h, each at most once (no weeks since 0.14). */
bool restic_duration_ok(const char *s);
/* A source name: letters, digits, '.', '-', '_', not starting with '.',
 * at most 64 (it names files in sets: never a path). */
bool config_source_name_ok(const char *s);
void config_free(struct config *cfg);
void config_problems_free(struct config_problems *p);

/* Are any of the Torrust POC's variables set? (Then no config file is needed.) */
bool config_poc_env_present(void);
/* The Torrust deployer's backup.conf that config_load(path NULL) reads:
 * $CONFIG_FILE when set (whether or not it exists), else
 * /etc/backup/backup.conf when it exists, else NULL (then the POC's
 * variables are read). */
const char *config_deployer_file(void);

/* Print the effective configuration as INI with secrets redacted. */
void config_print(const struct config *cfg, FILE *out);

/* Parse "90", "90s", "5m", "6h", "7d" into seconds. 0 or -1. */
int parse_duration(const char *s, long *out);

/* Key descriptors: used by config.c for all sections, and by each source
 * kind for its own keys. */
enum cfg_type {
    CFG_STR,
    CFG_PATH,
    CFG_BOOL,
    CFG_INT,
    CFG_DURATION,
    CFG_LIST,
    CFG_PATH_LIST,
    CFG_CHECK_LEVEL
};
struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t offset; /* into struct config, or into struct source_cfg for sources */
    bool secret;   /* redacted by config show */
    /* Optional: reason a value is unacceptable, or NULL (checked per value,
     * so a bad list item is reported at its own line). */
    const char *(*check)(const char *value);
};

#endif
