/* Private to the [mysql NAME] source (src/source/mysql/): the pieces of an
 * in-process logical dump over libmariadb, and of loading it back.
 *
 *   mysql.c    keys, validation, the stage orchestration (snapshot,
 *              lock window, manifest entry)
 *   conn.c     password file, connecting, queries, error wording,
 *              identifier and string quoting
 *   out.c      the buffered writer: dump bytes into the sink, or into
 *              the spool of tables read under the lock
 *   rows.c     one table's rows: column list, key order, value
 *              encoding, multi-row INSERTs
 *   par.c      parallel reading: worker connections in the one snapshot
 *   plan.c     which databases and tables a dump covers
 *   schema.c   the DDL: databases, tables, views, triggers, routines,
 *              events; what the account cannot see
 *   split.c    splitting a dump into statements (quotes, comments,
 *              DELIMITER), for restore
 *   restore.c  loading a staged dump into a server: targets, counts, the
 *              serial load of sets without a load index
 *   load.c     the parallel load from the manifest's load index
 *   doctor.c   doctor's pre-flight check: secrets, connection, RELOAD
 * Calls src/core/ and the set's sink (src/stage/); called through
 * source_mysql (src/source/source.h) and, for tests, directly. */
#ifndef SC_SOURCE_MYSQL_H
#define SC_SOURCE_MYSQL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <mysql.h>
#include <jansson.h>

#include "../../core/config.h"
#include "../../core/err.h"
#include "../../core/thread.h"
#include "../../stage/sink.h"

/* Defaults for keys left unset (0 in struct source_cfg). */
#define MY_DEFAULT_CONNECT_TIMEOUT_S 10
#define MY_DEFAULT_READ_TIMEOUT_S 3600
#define MY_DEFAULT_WRITE_TIMEOUT_S 3600
#define MY_DEFAULT_MAX_INSERT_BYTES (1024L * 1024L)
#define MY_MIN_MAX_INSERT_BYTES 4096L
#define MY_MAX_MAX_INSERT_BYTES (256L * 1024L * 1024L)
/* Client-side packet limit: a row or a statement can be this big. */
#define MY_MAX_PACKET (1024UL * 1024UL * 1024UL)
/* The stock client's default max_allowed_packet; beyond it the load
 * command needs --max-allowed-packet. */
#define MY_CLIENT_DEFAULT_PACKET (16UL * 1024UL * 1024UL)
/* How long the lock window may wait for running statements (s). */
#define MY_LOCK_WAIT_TIMEOUT_S 60
/* Connections reading rows at once (`threads`). */
#define MY_DEFAULT_THREADS 2
#define MY_MAX_THREADS 16
/* A table keyed by one integer column is read in key ranges bounded by
 * the multiples of this many key values (the step doubles while there would
 * be more than MY_MAX_CHUNKS ranges): a pure function of MIN and MAX of the
 * key, so the same data gives the same bytes whatever `threads` is, and
 * fixed points of the key space, so appended rows move no bound. */
#define MY_CHUNK_KEYS 50000ULL
#define MY_MAX_CHUNKS 1000

/* The dump's one file, inside the set: mysql/<NAME>/dump.sql. */
#define MY_DUMP_FILE "dump.sql"
/* The manifest's load_index: where each part of the dump starts, so that a
 * restore can load tables in parallel (restore.c, load.c). */
#define MY_LOAD_INDEX_FORMAT 1

/* The effective settings of a source, defaults applied. */
struct my_settings {
    unsigned connect_s, read_s, write_s;
    size_t max_insert;
    bool strip_definer;
    unsigned threads;
};
void my_settings_of(const struct source_cfg *cfg, struct my_settings *out);

/* ---- connections (conn.c) ----------------------------------------- */

/* Read password_file (when set) into an owned buffer: SC_ECONFIG when it is
 * missing or empty; else a copy of the in-memory password (the POC's
 * MYSQL_PASSWORD). *pw stays NULL without either. */
int my_read_password(const struct source_cfg *cfg, char **pw, sc_err *err);
/* Wipe and free a password. */
void my_free_password(char *pw);
/* Check that the option file, password file and TLS key are private
 * (exit 3 otherwise). */
int my_check_files(const struct source_cfg *cfg, sc_err *err);
/* Connect with the source's settings: utf8mb4, timeouts, TLS, no
 * reconnect, no LOAD DATA LOCAL. role names the connection in messages.
 * SC_ESOURCE with the server's reason on failure. */
int my_connect(const struct source_cfg *cfg, const char *password, const char *role, MYSQL **out,
               sc_err *err);
void my_close(MYSQL **m);

/* Run a statement that returns no rows (a result, if any, is discarded). */
int my_exec(MYSQL *m, const struct source_cfg *cfg, const char *sql, sc_err *err);
/* Run a query and buffer its (small) result. */
int my_query(MYSQL *m, const struct source_cfg *cfg, const char *sql, MYSQL_RES **res, sc_err *err);
/* Same, for a query that answers one value (NULL: SQL NULL or no row);
 * the value is copied into an owned string. */
int my_query_value(MYSQL *m, const struct source_cfg *cfg, const char *sql, char **value,
                   sc_err *err);
/* A failure of the last call on m: SC_ESOURCE, "mysql NAME: what: reason
 * (error N)". */
int my_fail(MYSQL *m, const struct source_cfg *cfg, sc_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* True when the last error of m is the server's (1000..1999 or >= 3000),
 * not the client's or the connection's (2000..2999). */
bool my_server_error(MYSQL *m);

/* `name` with every backtick doubled. Owned. */
char *my_ident(const char *name);
/* 'value' escaped for this connection's charset. Owned. */
char *my_string(MYSQL *m, const char *value);
/* The name of an object for messages: `db`.`name`. Owned. */
char *my_qualified(const char *db, const char *name);

/* ---- output (out.c) ------------------------------------------------ */

/* Buffered bytes to a sink (the dump file) or to a plain fd (the spool). */
struct my_out {
    struct sink *sink;
    int fd;
    const char *what; /* the path, for messages */
    char *buf;
    size_t len, cap;
    uint64_t flushed; /* bytes handed to the sink or fd so far */
    sc_err *err;
    /* fd only, may be NULL: flushed, stored after each write, for a reader
     * in another thread (the main thread follows a worker's spool). */
    atomic_uint_least64_t *published;
};
void my_out_init_sink(struct my_out *o, struct sink *k, sc_err *err);
void my_out_init_fd(struct my_out *o, int fd, const char *what, sc_err *err);
/* The same out (an fd one) on another fd, its buffer kept: empty, nothing
 * flushed or published yet. A worker's one buffer serves all its chunks. */
void my_out_reuse_fd(struct my_out *o, int fd, sc_err *err);
int my_out_write(struct my_out *o, const void *p, size_t n);
int my_out_puts(struct my_out *o, const char *s);
int my_out_printf(struct my_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int my_out_flush(struct my_out *o);
/* The offset of the next byte written. */
uint64_t my_out_pos(const struct my_out *o);
/* Copy bytes [off, off+len) of fd into o (a spooled table). */
int my_out_copy_from(struct my_out *o, int fd, uint64_t off, uint64_t len);
void my_out_free(struct my_out *o);

/* ---- one table's rows (rows.c) ------------------------------------- */

/* How a result column is written. */
enum my_enc { ENC_NUMBER, ENC_HEX, ENC_TEXT };
enum my_enc my_encoding_of(const MYSQL_FIELD *f);
/* Append one value (not NULL) to buf in SQL form; text is escaped as
 * mysql_real_escape_string does on a utf8mb4 connection. Returns -1 when a
 * numeric value is not a number (never written as something else). buf
 * grows; *len is updated. */
int my_encode_value(enum my_enc enc, const char *v, unsigned long vlen, char **buf, size_t *len,
                    size_t *cap);

/* What the rows of one table need: filled by my_rows_plan. */
struct my_rows_plan {
    char *select_sql;  /* SELECT ... FROM `db`.`t` ORDER BY ... */
    char *insert_head; /* INSERT INTO `t` (`a`,`b`) VALUES\n */
    char *order;       /* "PRIMARY KEY", "unique key `k`" or NULL (natural order) */
    size_t ncols;
    char *qname;         /* `db`.`t` */
    char *select_head;   /* SELECT ... FROM `db`.`t` (no WHERE, no ORDER BY) */
    char *order_by;      /* " ORDER BY ..." or "" */
    char *range_col;     /* `c`: the key is this one integer column, else NULL */
    bool range_unsigned; /* ... and it is UNSIGNED */
};
/* The key ranges a table is read in, from MIN and MAX of its integer key
 * (NULL: an empty table). n >= 1; lo[i] (1 <= i < n) is the first key of
 * range i; range 0 has no lower bound, range n-1 no upper bound, so rows
 * added outside [min, max] are still read. Pure; unit-tested. */
struct my_chunks {
    size_t n;
    char **lo; /* lo[0] is NULL */
};
void my_chunk_plan(const char *min, const char *max, bool is_unsigned, uint64_t keys_per_chunk,
                   size_t max_chunks, struct my_chunks *c);
void my_chunks_free(struct my_chunks *c);
/* The SELECT of chunk i of p (owned). */
char *my_chunk_select(const struct my_rows_plan *p, const struct my_chunks *c, size_t i);
/* Plan the chunks of a table on the metadata connection (MIN/MAX of the
 * key); one chunk when the key is not a single integer column. */
int my_chunks_of(MYSQL *meta, const struct source_cfg *cfg, const struct my_rows_plan *p,
                 struct my_chunks *c, sc_err *err);
int my_rows_plan(MYSQL *meta, const struct source_cfg *cfg, const char *db, const char *table,
                 struct my_rows_plan *p, sc_err *err);
void my_rows_plan_free(struct my_rows_plan *p);

/* Stream the rows (use_result on data) as multi-row INSERTs of at most
 * max_insert bytes each (one row alone may be longer). rows is what was
 * fetched and written; max_stmt grows to the longest statement. */
struct my_rows_job {
    const struct source_cfg *cfg;
    MYSQL *data;
    const struct my_rows_plan *plan;
    const char *select_sql; /* one chunk's SELECT; NULL: plan->select_sql */
    bool quiet;             /* a worker thread: no progress lines */
    atomic_int *cancel;     /* set by another thread: stop reading (may be NULL) */
    const char *label;      /* `db`.`t`, for messages */
    size_t max_insert;
    struct my_out *out;
    long long rows;
    size_t max_stmt;
    sc_err *err;
};
int my_rows_dump(struct my_rows_job *j);

/* ROLLBACK TO SAVEPOINT after a table's rows: releases its metadata lock.
 * A failure names the table just read (a killed connection is often seen
 * here, after the SELECT has already finished). */
int my_release_table(MYSQL *m, const struct source_cfg *cfg, const char *label, sc_err *err);

/* ---- parallel reading (par.c) -------------------------------------- */

struct my_table;
struct my_pool;

/* One chunk of a table, read by some worker into an unlinked spool. */
struct my_job {
    struct my_table *table;
    size_t chunk;
    int fd;                          /* the spool, -1; valid once published > 0 or done */
    atomic_uint_least64_t published; /* bytes in the spool so far */
    uint64_t len;
    long long rows;
    size_t max_stmt;
    int state;
    sc_err err; /* this chunk's failure */
};

struct my_worker {
    struct my_pool *pool;
    MYSQL *conn;
};

struct my_pool {
    const struct source_cfg *cfg;
    const char *tmpdir;
    size_t max_insert;
    MYSQL *conns[MY_MAX_THREADS]; /* one a worker, owned; each in the shared snapshot */
    size_t nconns;
    struct my_job *jobs; /* every chunk, in the order of the dump */
    size_t njobs;
    struct pool_order order; /* handed out, copied into the dump (taken) */
    pthread_t *tids;
    struct my_worker *args;
    size_t nthreads;
    struct pool_sync sync;
    atomic_int cancel;
    bool failed, thread_failure;
    size_t failed_job;
};
void my_pool_init(struct my_pool *p, const struct source_cfg *cfg, const char *tmpdir,
                  size_t max_insert);
/* Give the pool a connection (its transaction already started). */
void my_pool_add_conn(struct my_pool *p, MYSQL *conn);
/* Queue every chunk of t (in dump order). */
void my_pool_add_table(struct my_pool *p, struct my_table *t);
/* One thread per connection. */
int my_pool_start(struct my_pool *p, sc_err *err);
/* Wait for the next chunk (it must be t's), copy it into out; add its rows
 * and longest statement. The first failure of any worker is returned. */
int my_pool_take(struct my_pool *p, struct my_table *t, struct my_out *out, long long *rows,
                 size_t *max_stmt, sc_err *err);
/* Cancel, join, close every connection and spool. Idempotent. */
void my_pool_stop(struct my_pool *p);

/* ---- schema objects (plan.c, schema.c) ----------------------- */

enum my_kind { MY_TABLE, MY_SEQUENCE, MY_VIEW };

struct my_table {
    char *db, *name;
    char *engine; /* NULL for a view */
    enum my_kind kind;
    bool transactional;
    bool versioned; /* system-versioned: only current rows are dumped */
    bool spooled;   /* rows already read, under the lock, into the spool */
    uint64_t spool_off, spool_len;
    long long rows;
    struct my_rows_plan rows_plan; /* planned before the rows are read */
    struct my_chunks chunks;
    bool planned;
};

struct my_db {
    char *name;
    size_t first, n; /* its tables (and views) in the plan, by name */
};

/* What a dump covers, found on the metadata connection. */
struct my_plan {
    struct my_db *dbs;
    size_t ndbs;
    struct my_table *tables;
    size_t ntables;
};
int my_plan_build(MYSQL *meta, const struct source_cfg *cfg, struct my_plan *p, sc_err *err);
void my_plan_free(struct my_plan *p);
/* True when the table's engine gives a consistent snapshot read. */
bool my_engine_transactional(const char *engine);
/* Does `db.table` pass include_tables / exclude_tables? */
bool my_table_selected(const struct source_cfg *cfg, const char *db, const char *table);

/* Writers of the dump's parts; all use the metadata connection. */
struct my_writer {
    const struct source_cfg *cfg;
    MYSQL *meta;
    struct my_out *out;
    bool strip_definer;
    json_t *entry; /* warnings and object counts */
    long long views, triggers, routines, events;
    sc_err *err;
};
int my_write_database(struct my_writer *w, const char *db);
int my_write_table_ddl(struct my_writer *w, const struct my_table *t);
int my_write_sequence_value(struct my_writer *w, MYSQL *data, const struct my_table *t);
int my_write_triggers(struct my_writer *w, const struct my_table *t);
int my_write_view_standin(struct my_writer *w, const struct my_table *t);
int my_write_view(struct my_writer *w, const struct my_table *t);
int my_write_routines(struct my_writer *w, const char *db);
int my_write_events(struct my_writer *w, const char *db);
/* Warn when the account lacks the privileges to see every trigger, routine
 * and event of db (the server hides them rather than refusing). */
int my_check_visibility(struct my_writer *w, const char *db, bool mariadb);
/* Remove "DEFINER=`u`@`h` " from a CREATE statement, in place. Returns
 * false when the statement has no DEFINER clause where one is expected. */
bool my_strip_definer(char *sql);
/* A delimiter that does not occur in sql (";;" unless it does). */
const char *my_pick_delimiter(const char *sql);

/* ---- statements of a dump (split.c) -------------------------------- */

/* Splits a stream into statements as the mariadb client does: ';' (or the
 * DELIMITER in force) outside quotes and comments ends one; DELIMITER lines
 * change it; comments before a statement are dropped, executable comments
 * (/ *! ... * /) are kept. */
typedef int (*my_stmt_fn)(void *ctx, const char *sql, size_t len, long line);
struct my_splitter {
    char *buf;
    size_t len, cap;
    size_t max; /* longest statement accepted */
    char delim[16];
    size_t dlen;
    int state;        /* normal, quote, comment ... (split.c) */
    char quote;       /* the quote char of a string or identifier */
    bool escape;      /* the previous char was a backslash in a string */
    bool code;        /* the statement has something besides blanks/comments */
    size_t normal_at; /* where the current normal (unquoted) stretch started */
    size_t code_at;   /* the statement's first byte of code */
    bool multiline;   /* the statement is past its first line */
    bool delim_cmd;   /* the statement is a DELIMITER command */
    long line;        /* current line (1-based) */
    long stmt_line;   /* where the current statement started */
    my_stmt_fn fn;
    void *ctx;
    char error[160];
};
void my_split_init(struct my_splitter *s, size_t max, my_stmt_fn fn, void *ctx);
/* Feed bytes; fn runs for each complete statement. Returns 0, fn's non-zero
 * result, or -1 with s->error (statement too long, bad DELIMITER). */
int my_split_feed(struct my_splitter *s, const char *p, size_t n);
/* End of input: a last statement without delimiter is run too; an open
 * quote or comment is an error (a truncated dump). */
int my_split_finish(struct my_splitter *s);
void my_split_free(struct my_splitter *s);

/* ---- doctor (doctor.c) ---------------------------------------------------- */
struct probe;
void my_doctor(const struct source_cfg *s, struct probe *p);
void my_doctor_secrets(const struct source_cfg *s, struct probe *p);

/* ---- restore (restore.c, load.c) ----------------------------------------- */

/* The source_ops restore: load the staged dump of entry (in setdir) into
 * the configured server, under the original database names or, for a dump
 * of one database, under `into`. A target that holds anything is refused
 * (exit 1) unless force, which drops it first. Row counts are compared with
 * the manifest afterwards (exit 7 on a difference). */
int my_restore(const struct source_cfg *src, const char *setdir, json_t *entry, const char *into,
               bool force, sc_err *err);
/* drill: drop the scratch database restore made with into. */
int my_discard(const struct source_cfg *src, const char *into, sc_err *err);

/* One restore: the control connection (DDL, objects, counts) and what the
 * loaders share. */
struct my_loader {
    const struct source_cfg *cfg;
    MYSQL *m;
    const char *into;    /* NULL: the names in the dump */
    const char *from_db; /* the dump's one database, when into */
    const char *path;    /* the dump file, and fd open on it */
    int fd;
    uint64_t bytes; /* its size */
    long long statements;
    long long rows_total; /* the manifest's, for progress */
    atomic_llong rows_done;
    long long started_ms, progress_ms;
    unsigned connections;    /* worker connections of a parallel load; 0: serial */
    long long deferred_keys; /* secondary keys built after their table's rows */
    sc_err *err;
};
/* Parse a `quoted` identifier at p: its unquoted name (owned) and the bytes
 * it took; NULL when p holds none. */
char *my_parse_ident(const char *p, size_t *used);
/* Where a database of the dump goes: into, or its own name. */
const char *my_target_db(const struct my_loader *l, const char *db);
/* A progress line on a terminal (at most every 250 ms): rows loaded of the
 * manifest's total, rate, time left; or, with phase, what is being done. */
void my_restore_progress(struct my_loader *l, const char *phase);
/* Run one statement of the dump on the control connection (a my_stmt_fn on
 * a my_loader): CREATE DATABASE and USE pointed at into, results drained,
 * INSERTed rows counted, a stop request honoured. */
int my_load_statement(void *ctx, const char *sql, size_t len, long line);
/* Split bytes [off, off + len) of fd (path, for messages; len may run past
 * the end) into statements for fn. */
int my_split_range(int fd, const char *path, const char *name, uint64_t off, uint64_t len,
                   my_stmt_fn fn, void *ctx, sc_err *err);
/* The session settings of every connection of a restore (timeouts). */
int my_restore_session(MYSQL *m, const struct source_cfg *cfg, sc_err *err);

/* my_load_parallel's answer when the set cannot be loaded in parallel (no
 * load index, or one that does not fit the file): load it serially. */
#define MY_LOAD_NO_INDEX (-2)
/* Load an indexed dump with `threads` worker connections besides l's
 * (load.c). password: for the workers. */
int my_load_parallel(struct my_loader *l, json_t *index, const char *password, unsigned threads);
/* The CREATE TABLE of an InnoDB table without its secondary keys (KEY,
 * UNIQUE KEY) and the ALTER TABLE that adds them back, both owned; false
 * (both NULL) when nothing is deferred: no such key, no primary key,
 * another engine, partitions, system versioning, foreign keys, or a
 * statement whose shape is not SHOW CREATE TABLE's. Pure; unit-tested. */
bool my_defer_keys(const char *create, char **table_sql, char **alter_sql);

#endif
