/* Connections of the [mysql NAME] source: credentials, options, queries and
 * how their failures are worded.
 *
 * The password is read from password_file in-process and handed to
 * libmariadb only: it is never on an argv, in an environment we pass on, or
 * in a message (the server's "Access denied" text names the user, never the
 * password). An option_file is parsed by libmariadb itself
 * (MYSQL_READ_DEFAULT_FILE reads only that file, not ~/.my.cnf). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/fs.h"
#include "../../core/xalloc.h"
#include "mysql.h"

void my_settings_of(const struct source_cfg *cfg, struct my_settings *out)
{
    out->connect_s = cfg->connect_timeout_s > 0 ? (unsigned)cfg->connect_timeout_s
                                                : MY_DEFAULT_CONNECT_TIMEOUT_S;
    out->read_s =
        cfg->read_timeout_s > 0 ? (unsigned)cfg->read_timeout_s : MY_DEFAULT_READ_TIMEOUT_S;
    out->write_s =
        cfg->write_timeout_s > 0 ? (unsigned)cfg->write_timeout_s : MY_DEFAULT_WRITE_TIMEOUT_S;
    out->max_insert =
        cfg->max_insert_bytes > 0 ? (size_t)cfg->max_insert_bytes : MY_DEFAULT_MAX_INSERT_BYTES;
    out->strip_definer = cfg->definer != NULL && strcmp(cfg->definer, "strip") == 0;
    out->threads = cfg->threads > 0 ? (unsigned)cfg->threads : MY_DEFAULT_THREADS;
}

/* ---- credentials -------------------------------------------------------- */

int my_check_files(const struct source_cfg *cfg, sc_err *err)
{
    if (fs_check_private_key(cfg->option_file, "mysql", cfg->name, "option_file", err) != 0 ||
        fs_check_private_key(cfg->password_file, "mysql", cfg->name, "password_file", err) != 0 ||
        fs_check_private_key(cfg->ssl_key, "mysql", cfg->name, "ssl_key", err) != 0)
        return err->code;
    return 0;
}

int my_read_password(const struct source_cfg *cfg, char **pw, sc_err *err)
{
    *pw = NULL;
    /* The POC's MYSQL_PASSWORD, taken out of the environment at start. */
    if (cfg->password_file == NULL && cfg->password != NULL) {
        *pw = xstrdup(cfg->password);
        return 0;
    }
    if (cfg->password_file == NULL)
        return 0;
    char what[160];
    snprintf(what, sizeof what, "mysql %s: password_file", cfg->name);
    return fs_read_secret_line(cfg->password_file, what, pw, err);
}

void my_free_password(char *pw)
{
    fs_free_secret(pw);
}

/* ---- connecting ---------------------------------------------------------- */

/* Where we connect, for messages (never credentials). */
static void describe_target(const struct source_cfg *cfg, char *out, size_t n)
{
    if (cfg->host != NULL && strcmp(cfg->host, "localhost") != 0)
        snprintf(out, n, "%s:%ld", cfg->host, cfg->port > 0 ? cfg->port : 3306L);
    else if (cfg->socket != NULL)
        snprintf(out, n, "socket %s", cfg->socket);
    else if (cfg->option_file != NULL)
        snprintf(out, n, "the server of %s", cfg->option_file);
    else
        snprintf(out, n, "the default socket");
}

static int set_option(MYSQL *m, enum mysql_option opt, const void *value)
{
    return mysql_options(m, opt, value) == 0 ? 0 : -1;
}

static int set_tls(MYSQL *m, const struct source_cfg *cfg)
{
    int bad = 0;
    if (cfg->ssl_ca)
        bad |= set_option(m, MYSQL_OPT_SSL_CA, cfg->ssl_ca);
    if (cfg->ssl_cert)
        bad |= set_option(m, MYSQL_OPT_SSL_CERT, cfg->ssl_cert);
    if (cfg->ssl_key)
        bad |= set_option(m, MYSQL_OPT_SSL_KEY, cfg->ssl_key);
    /* Asking for a CA, a client certificate or verification means TLS
     * is required: never fall back to plain text silently. */
    if (cfg->ssl_ca || cfg->ssl_cert || cfg->ssl_key || cfg->ssl_verify) {
        my_bool yes = 1;
        bad |= set_option(m, MYSQL_OPT_SSL_ENFORCE, &yes);
    }
    if (cfg->ssl_verify) {
        my_bool yes = 1;
        bad |= set_option(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &yes);
    }
    return bad;
}

static int set_options(MYSQL *m, const struct source_cfg *cfg)
{
    struct my_settings st;
    my_settings_of(cfg, &st);
    unsigned ct = st.connect_s, rt = st.read_s, wt = st.write_s, no_local = 0;
    my_bool no = 0;
    unsigned long packet = MY_MAX_PACKET;
    int bad = 0;
    if (cfg->option_file)
        bad |= set_option(m, MYSQL_READ_DEFAULT_FILE, cfg->option_file);
    if (cfg->group)
        bad |= set_option(m, MYSQL_READ_DEFAULT_GROUP, cfg->group);
    bad |= set_option(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    bad |= set_option(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    bad |= set_option(m, MYSQL_OPT_READ_TIMEOUT, &rt);
    bad |= set_option(m, MYSQL_OPT_WRITE_TIMEOUT, &wt);
    /* A silent reconnect would lose the snapshot and the session settings. */
    bad |= set_option(m, MYSQL_OPT_RECONNECT, &no);
    /* A restored dump must not be able to read our files. */
    bad |= set_option(m, MYSQL_OPT_LOCAL_INFILE, &no_local);
    bad |= set_option(m, MYSQL_OPT_MAX_ALLOWED_PACKET, &packet);
    bad |= set_tls(m, cfg);
    return bad;
}

int my_connect(const struct source_cfg *cfg, const char *password, const char *role, MYSQL **out,
               sc_err *err)
{
    *out = NULL;
    MYSQL *m = mysql_init(NULL);
    if (m == NULL)
        return sc_fail(err, SC_ESOURCE, "mysql %s: cannot initialise the client library",
                       cfg->name);
    if (set_options(m, cfg) != 0) {
        mysql_close(m);
        return sc_fail(err, SC_ESOURCE, "mysql %s: the client library refused an option",
                       cfg->name);
    }
    char target[512];
    describe_target(cfg, target, sizeof target);
    if (mysql_real_connect(m, cfg->host, cfg->user, password, NULL, (unsigned)cfg->port,
                           cfg->socket, 0) == NULL) {
        int rc = sc_fail(err, SC_ESOURCE, "mysql %s: cannot connect (%s connection) to %s: %s",
                         cfg->name, role, target, mysql_error(m));
        mysql_close(m);
        return rc;
    }
    /* An option file's default-character-set must not change how we
     * escape: the client side and the server side both utf8mb4. */
    if (mysql_set_character_set(m, "utf8mb4") != 0) {
        int rc = my_fail(m, cfg, err, "cannot use utf8mb4 on the %s connection", role);
        mysql_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

void my_close(MYSQL **m)
{
    if (*m != NULL)
        mysql_close(*m);
    *m = NULL;
}

/* ---- queries ------------------------------------------------------------- */

bool my_server_error(MYSQL *m)
{
    unsigned e = mysql_errno(m);
    return (e >= 1000 && e < 2000) || (e >= 3000 && e < 5000);
}

int my_fail(MYSQL *m, const struct source_cfg *cfg, sc_err *err, const char *fmt, ...)
{
    char what[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (m == NULL || mysql_errno(m) == 0)
        return sc_fail(err, SC_ESOURCE, "mysql %s: %s", cfg->name, what);
    return sc_fail(err, SC_ESOURCE, "mysql %s: %s: %s (error %u)", cfg->name, what, mysql_error(m),
                   mysql_errno(m));
}

int my_exec(MYSQL *m, const struct source_cfg *cfg, const char *sql, sc_err *err)
{
    if (mysql_real_query(m, sql, strlen(sql)) != 0)
        return my_fail(m, cfg, err, "%.200s", sql);
    if (mysql_field_count(m) > 0) {
        MYSQL_RES *res = mysql_store_result(m);
        if (res == NULL)
            return my_fail(m, cfg, err, "%.200s", sql);
        mysql_free_result(res);
    }
    return 0;
}

int my_query(MYSQL *m, const struct source_cfg *cfg, const char *sql, MYSQL_RES **res, sc_err *err)
{
    *res = NULL;
    if (mysql_real_query(m, sql, strlen(sql)) != 0)
        return my_fail(m, cfg, err, "%.200s", sql);
    *res = mysql_store_result(m);
    if (*res == NULL)
        return my_fail(m, cfg, err, "%.200s: no result", sql);
    return 0;
}

int my_query_value(MYSQL *m, const struct source_cfg *cfg, const char *sql, char **value,
                   sc_err *err)
{
    *value = NULL;
    MYSQL_RES *res;
    if (my_query(m, cfg, sql, &res, err) != 0)
        return err->code;
    MYSQL_ROW row = mysql_fetch_row(res);
    if (row != NULL && mysql_num_fields(res) > 0 && row[0] != NULL)
        *value = xstrndup(row[0], mysql_fetch_lengths(res)[0]);
    mysql_free_result(res);
    return 0;
}

/* ---- quoting ------------------------------------------------------------- */

char *my_ident(const char *name)
{
    size_t n = strlen(name), extra = 0;
    for (const char *p = name; *p; p++)
        extra += *p == '`';
    char *out = xmalloc(n + extra + 3), *o = out;
    *o++ = '`';
    for (const char *p = name; *p; p++) {
        if (*p == '`')
            *o++ = '`';
        *o++ = *p;
    }
    *o++ = '`';
    *o = '\0';
    return out;
}

char *my_string(MYSQL *m, const char *value)
{
    size_t n = strlen(value);
    char *out = xmalloc(2 * n + 3);
    out[0] = '\'';
    unsigned long k = mysql_real_escape_string(m, out + 1, value, (unsigned long)n);
    out[k + 1] = '\'';
    out[k + 2] = '\0';
    return out;
}

char *my_qualified(const char *db, const char *name)
{
    char *a = my_ident(db), *b = my_ident(name);
    char *out = xasprintf("%s.%s", a, b);
    free(a);
    free(b);
    return out;
}
