/* Connections of the [postgresql NAME] source: credentials, connecting,
 * queries that a signal can interrupt, how failures are worded, quoting.
 *
 * The password is read from password_file in-process and handed to libpq
 * in memory only (PQconnectdbParams): never an argv, an environment or a
 * message (the server's "password authentication failed" names the user,
 * never the password). A passfile (the .pgpass format) is given to libpq
 * by name instead.
 *
 * Queries run asynchronously (PQsendQuery) and are waited for in slices,
 * so that SIGINT/SIGTERM, or another worker's failure, cancel them at once
 * (PQcancel) instead of after a long COPY or a lock wait. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/fs.h"
#include "../../core/spawn.h"
#include "postgresql.h"

/* How long one wait for the server lasts before stop flags are looked at. */
#define SLICE_MS 200

void pg_settings_of(const struct source_cfg *cfg, struct pg_settings *out)
{
    out->connect_s = cfg->connect_timeout_s > 0 ? (unsigned)cfg->connect_timeout_s : 10;
    out->threads = cfg->threads > 0 ? (unsigned)cfg->threads : PG_DEFAULT_THREADS;
}

const char *pg_database(const struct source_cfg *cfg)
{
    return cfg->databases.n > 0 ? cfg->databases.v[0] : NULL;
}

/* ---- credentials ---------------------------------------------------------- */

int pg_check_files(const struct source_cfg *cfg, sc_err *err)
{
    if (fs_check_private_key(cfg->password_file, "postgresql", cfg->name, "password_file", err) !=
            0 ||
        fs_check_private_key(cfg->passfile, "postgresql", cfg->name, "passfile", err) != 0)
        return err->code;
    return 0;
}

int pg_read_password(const struct source_cfg *cfg, char **pw, sc_err *err)
{
    *pw = NULL;
    if (cfg->password_file == NULL)
        return 0;
    char what[160];
    snprintf(what, sizeof what, "postgresql %s: password_file", cfg->name);
    return fs_read_secret_line(cfg->password_file, what, pw, err);
}

void pg_free_password(char *pw)
{
    fs_free_secret(pw);
}

/* ---- connecting ------------------------------------------------------------ */

void pg_describe_target(const struct source_cfg *cfg, char *out, size_t n)
{
    char port[24] = "";
    if (cfg->port > 0)
        snprintf(port, sizeof port, "%ld", cfg->port);
    if (cfg->host == NULL)
        snprintf(out, n, "the default socket%s%s", *port ? " port " : "", port);
    else if (cfg->host[0] == '/')
        snprintf(out, n, "socket %s%s%s", cfg->host, *port ? " port " : "", port);
    else
        snprintf(out, n, "%s:%s", cfg->host, *port ? port : "5432");
}

const char *pg_connect_hint(const char *reason)
{
    if (strstr(reason, "password authentication failed") != NULL ||
        strstr(reason, "no password supplied") != NULL)
        return "check the role's password in password_file or passfile";
    if (strstr(reason, "database \"") != NULL && strstr(reason, "does not exist") != NULL)
        return "check `database =`, or create the database";
    if (strstr(reason, "role \"") != NULL && strstr(reason, "does not exist") != NULL)
        return "check `user =`, or create the role";
    if (strstr(reason, "No such file or directory") != NULL ||
        strstr(reason, "Connection refused") != NULL)
        return "is the server running, and are host and port right?";
    if (strstr(reason, "timeout expired") != NULL)
        return "the server did not answer within connect_timeout";
    if (strstr(reason, "no pg_hba.conf entry") != NULL)
        return "allow the role in the server's pg_hba.conf";
    if (strstr(reason, "permission denied for database") != NULL)
        return "GRANT CONNECT ON DATABASE to the role";
    return NULL;
}

/* Keyword and value of a libpq connection parameter that is set. */
struct params {
    const char *keys[20], *vals[20];
    int n;
};

static void param(struct params *p, const char *key, const char *value)
{
    if (value == NULL || p->n >= 19)
        return;
    p->keys[p->n] = key;
    p->vals[p->n++] = value;
    p->keys[p->n] = p->vals[p->n] = NULL;
}

int pg_connect(const struct source_cfg *cfg, const char *password, const char *dbname,
               const char *role, PGconn **out, sc_err *err)
{
    struct pg_settings st;
    pg_settings_of(cfg, &st);
    char port[24], timeout[24];
    snprintf(port, sizeof port, "%ld", cfg->port);
    snprintf(timeout, sizeof timeout, "%u", st.connect_s);
    struct params p = {.n = 0};
    param(&p, "host", cfg->host);
    param(&p, "port", cfg->port > 0 ? port : NULL);
    param(&p, "user", cfg->user);
    param(&p, "dbname", dbname ? dbname : pg_database(cfg));
    param(&p, "password", password);
    param(&p, "passfile", cfg->passfile);
    param(&p, "sslmode", cfg->sslmode);
    param(&p, "sslrootcert", cfg->sslrootcert);
    param(&p, "connect_timeout", timeout);
    param(&p, "application_name", "stagecoach");
    /* A server that vanishes without a word (a cut network) is noticed. */
    param(&p, "keepalives_idle", "60");
    param(&p, "keepalives_interval", "10");
    param(&p, "keepalives_count", "6");
    /* expand_dbname = 0: a database name is a name, never a connection string. */
    PGconn *c = PQconnectdbParams(p.keys, p.vals, 0);
    if (c == NULL)
        return sc_fail(err, SC_ESOURCE, "postgresql %s: out of memory connecting", cfg->name);
    if (PQstatus(c) != CONNECTION_OK) {
        char where[300];
        pg_describe_target(cfg, where, sizeof where);
        char *why = pg_reason(c, NULL);
        const char *hint = pg_connect_hint(why);
        sc_fail(err, SC_ESOURCE, "postgresql %s: cannot connect (%s) to %s%s%s: %s%s%s%s",
                cfg->name, role, where, cfg->user ? " as " : "", cfg->user ? cfg->user : "", why,
                hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
        free(why);
        PQfinish(c);
        return SC_ESOURCE;
    }
    *out = c;
    return 0;
}

void pg_close(PGconn **c)
{
    if (*c != NULL) {
        PQfinish(*c);
        *c = NULL;
    }
}

/* ---- queries ---------------------------------------------------------------- */

bool pg_stopping(const atomic_int *cancel)
{
    return sc_stop_requested || (cancel != NULL && atomic_load(cancel) != 0);
}

void pg_wait_socket(PGconn *c, bool for_write, int ms)
{
    struct pollfd pfd = {.fd = PQsocket(c), .events = for_write ? POLLOUT : POLLIN};
    if (pfd.fd < 0)
        return;
    /* EINTR (a signal) returns early: the caller looks at the stop flags. */
    (void)poll(&pfd, 1, ms);
}

void pg_cancel(PGconn *c)
{
    PGcancel *pc = PQgetCancel(c);
    if (pc == NULL)
        return;
    char buf[256];
    (void)PQcancel(pc, buf, sizeof buf);
    PQfreeCancel(pc);
}

static bool is_copy(const PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return s == PGRES_COPY_OUT || s == PGRES_COPY_IN || s == PGRES_COPY_BOTH;
}

static bool is_error(const PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return s == PGRES_FATAL_ERROR || s == PGRES_BAD_RESPONSE || s == PGRES_NONFATAL_ERROR;
}

PGresult *pg_await(PGconn *c, const atomic_int *cancel, bool *stopped)
{
    PGresult *keep = NULL;
    bool cancelled = false;
    for (;;) {
        while (PQisBusy(c)) {
            if (!cancelled && pg_stopping(cancel)) {
                pg_cancel(c);
                cancelled = true;
            }
            pg_wait_socket(c, false, SLICE_MS);
            if (PQconsumeInput(c) == 0)
                break; /* the connection failed: PQgetResult says so */
        }
        PGresult *r = PQgetResult(c);
        if (r == NULL)
            break;
        if (is_copy(r)) {
            PQclear(keep);
            keep = r;
            break;
        }
        /* the first error wins; else the last result */
        if (keep != NULL && is_error(keep)) {
            PQclear(r);
        } else {
            PQclear(keep);
            keep = r;
        }
        if (PQstatus(c) == CONNECTION_BAD)
            break;
    }
    if (stopped != NULL)
        *stopped = cancelled;
    return keep;
}

PGresult *pg_run(PGconn *c, const char *sql, const atomic_int *cancel, bool *stopped)
{
    if (stopped != NULL)
        *stopped = false;
    if (PQsendQuery(c, sql) == 0)
        return NULL;
    return pg_await(c, cancel, stopped);
}

char *pg_reason(PGconn *c, const PGresult *res)
{
    const char *text = NULL;
    if (res != NULL)
        text = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (text == NULL && res != NULL && *PQresultErrorMessage(res))
        text = PQresultErrorMessage(res);
    if (text == NULL && c != NULL)
        text = PQerrorMessage(c);
    if (text == NULL || *text == '\0')
        text = "no reason given";
    /* One line: newlines and the blanks libpq puts after "FATAL:" go. */
    size_t n = strlen(text);
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        char ch = text[i];
        if (ch == '\n' || ch == '\t')
            ch = ' ';
        if (ch == ' ' && (o == out || o[-1] == ' '))
            continue;
        *o++ = ch;
    }
    while (o > out && o[-1] == ' ')
        o--;
    *o = '\0';
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    if (detail != NULL) {
        char *both = xasprintf("%s (%s)", out, detail);
        free(out);
        out = both;
    }
    return out;
}

/* What to do about a query's failure, from its SQLSTATE. */
static const char *query_hint(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL)
        return NULL;
    if (strcmp(state, "42501") == 0)
        return "grant the role pg_read_all_data, or exclude_table what it may not read";
    if (strcmp(state, "55P03") == 0)
        return "another session holds or waits for an exclusive lock (DDL?): run again later";
    if (strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
        return "the server shut down or restarted: run again when it is back";
    return NULL;
}

int pg_fail(sc_err *err, const struct source_cfg *cfg, PGconn *c, const PGresult *res, bool stopped,
            const char *fmt, ...)
{
    if (stopped || sc_stop_requested)
        return sc_fail(err, SC_EINTR, "postgresql %s: interrupted", cfg->name);
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char *why = pg_reason(c, res);
    const char *hint = query_hint(res);
    int rc = sc_fail(err, SC_ESOURCE, "postgresql %s: %s: %s%s%s%s", cfg->name, what, why,
                     hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
    free(why);
    return rc;
}

int pg_query(PGconn *c, const struct source_cfg *cfg, const char *sql, PGresult **res, sc_err *err)
{
    bool stopped;
    PGresult *r = pg_run(c, sql, NULL, &stopped);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        /* the statement's first words say what failed */
        pg_fail(err, cfg, c, r, stopped, "%.80s", sql);
        PQclear(r);
        *res = NULL;
        return err->code;
    }
    *res = r;
    return 0;
}

int pg_exec(PGconn *c, const struct source_cfg *cfg, const char *sql, sc_err *err)
{
    PGresult *r;
    int rc = pg_query(c, cfg, sql, &r, err);
    PQclear(r);
    return rc;
}

int pg_query_value(PGconn *c, const struct source_cfg *cfg, const char *sql, char **value,
                   sc_err *err)
{
    *value = NULL;
    PGresult *r;
    if (pg_query(c, cfg, sql, &r, err) != 0)
        return err->code;
    if (PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0))
        *value = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* ---- quoting ------------------------------------------------------------------ */

/* s between q's, every q in it doubled. */
static char *quote_doubling(const char *s, char q)
{
    size_t n = strlen(s), extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += s[i] == q;
    char *out = xmalloc(n + extra + 3), *o = out;
    *o++ = q;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == q)
            *o++ = q;
        *o++ = s[i];
    }
    *o++ = q;
    *o = '\0';
    return out;
}

char *pg_ident(const char *name)
{
    return quote_doubling(name, '"');
}

char *pg_literal(const char *value)
{
    return quote_doubling(value, '\'');
}

char *pg_qualified(const char *schema, const char *name)
{
    char *s = pg_ident(schema), *n = pg_ident(name);
    char *q = xasprintf("%s.%s", s, n);
    free(s);
    free(n);
    return q;
}
