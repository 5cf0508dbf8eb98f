/* Private to the [postgresql NAME] source (src/source/postgresql/): one
 * database in one exported snapshot, the schema by PostgreSQL's own
 * pg_dump, the rows by COPY over libpq in-process, every byte through the
 * set's sinks; and loading it back. Only the files of this folder include
 * it; the pipeline knows the kind through source_postgresql (source.h).
 * They call src/core/ (spawn, fs, log, env) and src/stage/ (sink).
 *
 *   postgresql.c  keys, validation, the stage: snapshot, plan, workers, manifest
 *   conn.c        settings, password, connecting, interruptible queries,
 *                 error wording, quoting
 *   client.c      pg_dump and psql: finding them, versions, the private
 *                 passfile, their environment, argv and stderr
 *   plan.c        what a dump covers: tables, columns, keys, ranges,
 *                 sequences, privileges
 *   ranges.c      key ranges at fixed multiples of the key (pure)
 *   copy.c        COPY ... TO STDOUT into a sink; COPY ... FROM STDIN from a file
 *   par.c         worker threads, one connection each
 *   restore.c     restore --apply and the drill's scratch database
 *   doctor.c      doctor's checks */
#ifndef SC_SOURCE_POSTGRESQL_H
#define SC_SOURCE_POSTGRESQL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "../../core/config.h"
#include "../../core/err.h"
#include "../../core/thread.h"
#include "../../core/xalloc.h"
#include "../../stage/sink.h"

struct set;

/* Connections reading rows at once (`threads`). */
#define PG_DEFAULT_THREADS 2
#define PG_MAX_THREADS 16
/* A table keyed by one integer column is read in key ranges bounded by the
 * multiples of this many key values (the step doubles while there would be
 * more than PG_MAX_RANGES): a pure function of MIN and MAX of the key, so
 * the same data gives the same files whatever `threads` is, and fixed
 * points of the key space, so appended rows move no bound. */
#define PG_RANGE_KEYS 50000LL
#define PG_MAX_RANGES 1000
/* How long a table lock may be waited for (our LOCK TABLE, pg_dump's). */
#define PG_LOCK_TIMEOUT_S 60
/* The oldest server: pg_current_wal_lsn() and the catalogs used here. */
#define PG_MIN_SERVER 100000
/* Database names: NAMEDATALEN - 1 bytes. */
#define PG_NAME_MAX 63

/* The files of a dump, under postgresql/<NAME>/ in the set. */
#define PG_PRE_DATA "pre-data.sql"
#define PG_POST_DATA "post-data.sql"
#define PG_LOAD "load.sql"
#define PG_DATA_DIR "data"

/* The effective settings of a source, defaults applied. */
struct pg_settings {
    unsigned connect_s;
    unsigned threads;
};
void pg_settings_of(const struct source_cfg *cfg, struct pg_settings *out);
/* The source's one database (`database =`). */
const char *pg_database(const struct source_cfg *cfg);

/* ---- connections (conn.c) --------------------------------------------- */

/* password_file and passfile must be private (exit 3 otherwise). */
int pg_check_files(const struct source_cfg *cfg, sc_err *err);
/* password_file into an owned buffer (one line); *pw stays NULL without it. */
int pg_read_password(const struct source_cfg *cfg, char **pw, sc_err *err);
void pg_free_password(char *pw);
/* Where we connect, for messages (never credentials). */
void pg_describe_target(const struct source_cfg *cfg, char *out, size_t n);
/* Connect to dbname (NULL: the source's database) with the source's
 * settings; the password (may be NULL) in memory only. role names the
 * connection in messages. SC_ESOURCE with the server's reason and what to
 * do about it. */
int pg_connect(const struct source_cfg *cfg, const char *password, const char *dbname,
               const char *role, PGconn **out, sc_err *err);
void pg_close(PGconn **c);

/* A stop was asked for: SIGINT/SIGTERM, or *cancel (may be NULL) set by
 * another thread. */
bool pg_stopping(const atomic_int *cancel);
/* Wait up to ms for the connection's socket (readable, or writable). */
void pg_wait_socket(PGconn *c, bool for_write, int ms);
/* Send a cancel request for what the connection runs (best effort). */
void pg_cancel(PGconn *c);
/* Send sql and wait for its result without blocking signals: a stop
 * (pg_stopping) cancels the query. Returns the result (the first error, or
 * the last result; a COPY result as soon as it comes), or NULL when the
 * connection failed. *stopped tells whether it was cancelled. */
PGresult *pg_run(PGconn *c, const char *sql, const atomic_int *cancel, bool *stopped);
/* The same, when the query has been sent already. */
PGresult *pg_await(PGconn *c, const atomic_int *cancel, bool *stopped);
/* pg_run for a statement without rows / with rows. SC_ESOURCE naming what
 * failed; SC_EINTR when interrupted. */
int pg_exec(PGconn *c, const struct source_cfg *cfg, const char *sql, sc_err *err);
int pg_query(PGconn *c, const struct source_cfg *cfg, const char *sql, PGresult **res, sc_err *err);
/* One value (NULL: SQL NULL or no row), copied into an owned string. */
int pg_query_value(PGconn *c, const struct source_cfg *cfg, const char *sql, char **value,
                   sc_err *err);
/* "postgresql NAME: <what>: <reason>" from a result (or, NULL, the
 * connection), one line, with a hint where the reason suggests one. A
 * cancelled query is SC_EINTR "interrupted". */
int pg_fail(sc_err *err, const struct source_cfg *cfg, PGconn *c, const PGresult *res, bool stopped,
            const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* What to do about a connection failure, from libpq's words (or NULL). */
const char *pg_connect_hint(const char *reason);
/* The reason of a result or connection failure on one line (owned). */
char *pg_reason(PGconn *c, const PGresult *res);

/* "name" with every double quote doubled. Owned. */
char *pg_ident(const char *name);
/* "schema"."name". Owned. */
char *pg_qualified(const char *schema, const char *name);
/* 'value' with every single quote doubled (standard_conforming_strings is
 * on in every session here, so backslashes are plain). Owned. */
char *pg_literal(const char *value);

/* ---- pg_dump and psql (client.c) --------------------------------------- */

/* A client program: its path (bin_dir/NAME, or found in PATH) and version. */
struct pg_tool {
    char *path;
    char *version; /* "15.18 (Debian 15.18-0+deb12u1)" */
    int major;     /* 15; 9 for 9.x */
    int num;       /* 150018, as PQserverVersion counts */
};
/* Find name and ask it for its version: SC_ESOURCE when it is missing or
 * does not answer, saying what to install or set. */
int pg_tool_find(const struct source_cfg *cfg, const char *name, struct pg_tool *t, sc_err *err);
void pg_tool_free(struct pg_tool *t);
/* Parse "pg_dump (PostgreSQL) 15.18 (Debian ...)" (pure): 0, or -1. */
int pg_parse_tool_version(const char *text, int *major, int *num, char **version);

/* The password as one line of a .pgpass file, for any host, port,
 * database and user: "*:*:*:*:<password with \ and : escaped>\n". Owned. */
char *pg_passfile_line(const char *password);
/* Write that line into a new private file (0600) in dir; *path is owned.
 * Remove it with pg_passfile_remove as soon as the children are done. */
int pg_passfile_write(const char *dir, const char *password, char **path, sc_err *err);
void pg_passfile_remove(char **path);
/* A libpq connection string of the source for a child's argv: host, port,
 * user, dbname, sslmode, sslrootcert, connect_timeout, application_name;
 * never a password. Values are quoted as libpq reads them. Owned. */
char *pg_conninfo(const struct source_cfg *cfg, const char *dbname, const char *appname);
/* 'value' quoted for a connection string (\ and ' escaped). Owned. */
char *pg_conninfo_quote(const char *value);

/* One run of pg_dump or psql. */
struct pg_child {
    const struct source_cfg *cfg;
    const char *what;     /* "pg_dump --section=pre-data", for messages */
    const char *passfile; /* PGPASSFILE in its environment (NULL: none) */
    char *const *argv;    /* argv[0]: the tool's path */
    struct sink *out;     /* stdout into this sink; NULL: discarded */
    long timeout_s;       /* 0: none */
};
/* Run it; its stderr is classified into one line (the last error it
 * printed). SC_ESOURCE on a failure, SC_EINTR when interrupted. */
int pg_child_run(const struct pg_child *ch, sc_err *err);
/* The line of a client's stderr that says why it failed (pure, owned):
 * the last "error:" / "ERROR:" / "FATAL:" line and its detail. */
char *pg_stderr_reason(const char *text);

/* ---- key ranges (ranges.c) -------------------------------------------- */

/* The ranges a table is read in, from MIN and MAX of its integer key. n >=
 * 1; lo[i] (1 <= i < n) is the first key of range i; range 0 has no lower
 * bound and range n-1 no upper bound, so rows added outside [min, max]
 * are still read. Pure; unit-tested. */
struct pg_ranges {
    size_t n;
    long long *lo; /* lo[0] unused */
};
void pg_range_plan(long long min, long long max, long long step, size_t max_ranges,
                   struct pg_ranges *r);
/* One range for everything (no integer key, or an empty table). */
void pg_range_single(struct pg_ranges *r);
void pg_ranges_free(struct pg_ranges *r);
/* " WHERE col >= lo AND col < hi" for range i ("" for a single range). Owned. */
char *pg_range_where(const struct pg_ranges *r, size_t i, const char *col);

/* ---- what a dump covers (plan.c) --------------------------------------- */

struct pg_table {
    char *schema, *name;
    char *qname; /* "schema"."name" */
    char *label; /* schema.name, for messages and warnings */
    unsigned oid;
    char *columns;       /* "a", "b": what COPY reads and writes (no generated columns) */
    json_t *column_list; /* the same as a JSON array of names */
    char *order_by;      /* "a", "b"; NULL: physical order */
    char *order_what;    /* "primary key", "unique index \"x\"", NULL */
    char *range_col;     /* the key, when it is one integer column (quoted) */
    char *filter;        /* an extension's config table: its condition ("WHERE ..."); NULL */
    struct pg_ranges ranges;
    size_t first_file; /* its ranges are files first_file .. first_file + ranges.n - 1 */
    long long rows;
};

struct pg_sequence {
    char *qname, *label;
    char *last_value;
    bool is_called;
};

struct pg_plan {
    struct pg_table *tables; /* by schema, then name (bytewise) */
    size_t ntables;
    struct pg_sequence *seqs;
    size_t nseqs;
    struct strvec excluded;         /* "schema"."name" of the tables exclude_table matched */
    struct strvec physical;         /* schema.name of the tables read in physical order */
    struct strvec unlogged_skipped; /* unlogged tables a standby cannot read */
    long long large_objects;
    long long estimated_rows; /* pg_class.reltuples: for progress only */
    size_t nranges;
    /* the database, for CREATE DATABASE on restore */
    char *encoding, *collate, *ctype, *locale_provider, *icu_locale;
};
/* Build the plan on the snapshot's connection (in its transaction). */
int pg_plan_build(PGconn *c, const struct source_cfg *cfg, bool in_recovery, struct pg_plan *p,
                  sc_err *err);
void pg_plan_free(struct pg_plan *p);
/* Does schema.table match an exclude_table pattern? (fnmatch on
 * "schema.table"; a pattern without a dot matches the table in any schema) */
bool pg_table_excluded(const struct source_cfg *cfg, const char *schema, const char *table);
/* The tables (schema.name) the role cannot read, appended to bad (no
 * SELECT privilege, or row security it may not bypass), and how many
 * tables there are; for doctor. */
int pg_unreadable_tables(PGconn *c, const struct source_cfg *cfg, struct strvec *bad,
                         size_t *ntables, sc_err *err);
/* "a, b, c and 4 more": at most max names. Owned. */
char *pg_join_names(const struct strvec *names, size_t max);

/* ---- COPY (copy.c) ----------------------------------------------------- */

/* One range of a table out of the snapshot into a sink. */
struct pg_copy_out {
    const struct source_cfg *cfg;
    PGconn *conn;
    const struct pg_table *table;
    size_t range;
    struct sink *sink;
    const atomic_int *cancel; /* another worker failed: stop */
    atomic_llong *progress;   /* rows read so far, all workers (may be NULL) */
    long long rows;
    sc_err *err;
};
int pg_copy_to_sink(struct pg_copy_out *j);
/* The SELECT of range i of t (owned). */
char *pg_copy_query(const struct pg_table *t, size_t i);

/* One data file into a table. */
struct pg_copy_in {
    const struct source_cfg *cfg;
    PGconn *conn;
    const char *path;    /* the file */
    const char *qname;   /* "schema"."table" */
    const char *columns; /* "a", "b" or "" */
    const atomic_int *cancel;
    long long rows;
    sc_err *err;
};
int pg_copy_from_file(struct pg_copy_in *j);

/* ---- worker threads (par.c) -------------------------------------------- */

struct pg_worker_arg;
/* A job: run(ctx, conn, idx, cancel, err) on some worker's connection. */
typedef int (*pg_job_fn)(void *ctx, PGconn *conn, size_t idx, const atomic_int *cancel,
                         sc_err *err);

struct pg_pool {
    const char *label; /* "postgresql NAME", for messages */
    pg_job_fn run;
    void *ctx;
    void (*tick)(void *ctx);       /* called by the waiting main thread now and then (progress) */
    PGconn *conns[PG_MAX_THREADS]; /* one a worker, owned */
    size_t nconns;
    size_t njobs;
    int *state;
    sc_err *errs;            /* each job's failure */
    struct pool_order order; /* handed out; waited for (taken) */
    pthread_t tids[PG_MAX_THREADS];
    struct pg_worker_arg *args;
    size_t nthreads;
    struct pool_sync sync;
    atomic_int cancel;
    bool failed;
    size_t failed_job;
};
void pg_pool_init(struct pg_pool *p, const char *label, size_t njobs, size_t window, pg_job_fn run,
                  void *ctx);
/* Give the pool a connection (owned from now on). */
void pg_pool_add_conn(struct pg_pool *p, PGconn *conn);
int pg_pool_start(struct pg_pool *p, sc_err *err);
/* Wait for job idx (the next in order), then let another be handed out.
 * Returns its result, the first failure of any job, or SC_EINTR. */
int pg_pool_wait(struct pg_pool *p, size_t idx, sc_err *err);
/* Cancel, join, close every connection. Idempotent. */
void pg_pool_stop(struct pg_pool *p);

/* ---- restore (restore.c) ----------------------------------------------- */

int pg_restore(const struct source_cfg *src, const char *setdir, json_t *entry, const char *into,
               bool force, sc_err *err);
int pg_discard(const struct source_cfg *src, const char *into, sc_err *err);

/* ---- doctor (doctor.c) ----------------------------------------------------- */

struct probe;
void pg_doctor(const struct source_cfg *src, struct probe *p);
void pg_doctor_secrets(const struct source_cfg *src, struct probe *p);

#endif
