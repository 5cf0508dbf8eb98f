/* Everything a database holds besides rows: the database itself with its
 * charset and collation, tables (SHOW CREATE TABLE: generated and invisible
 * columns, partitions, foreign keys, as the server prints them), sequences,
 * views, triggers, procedures, functions, packages and events.
 *
 * Views are written twice, as mysqldump does: a stand-in (a view of
 * constants with the same column names) where the tables are, and the real
 * definition after every database's tables. So a view that uses a view, or
 * a table of another database, loads whatever the order of the names.
 *
 * Triggers, routines and events carry their own sql_mode, collation and
 * (events) time zone; each is wrapped in SETs that restore them, inside a
 * DELIMITER block that the stock client and our loader both understand.
 * The SHOW CREATE text arrives as utf8mb4 (the connection's charset), so
 * character_set_client stays utf8mb4 while it is parsed; only
 * collation_connection (which decides the charset of string literals in the
 * body) takes the object's original value. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../core/log.h"
#include "../../core/xalloc.h"
#include "mysql.h"
#include "../source.h"

/* ---- helpers ------------------------------------------------------------- */

/* A "-- " comment line naming an object; control characters (a newline in
 * a quoted name would end the comment) are shown as '?'. */
static int comment(struct my_writer *w, const char *what, const char *name)
{
    char *id = my_ident(name);
    for (char *c = id; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    int rc = my_out_printf(w->out, "\n--\n-- %s %s\n--\n\n", what, id);
    free(id);
    return rc;
}

/* Run SHOW CREATE ...; the row (buffered) stays valid until *res is freed.
 * A NULL in column col means no privilege to see the definition. */
static int show_create(struct my_writer *w, const char *sql, const char *what, int col,
                       MYSQL_RES **res, MYSQL_ROW *row)
{
    *row = NULL;
    int rc = my_query(w->meta, w->cfg, sql, res, w->err);
    if (rc != 0)
        return rc;
    *row = mysql_fetch_row(*res);
    if (*row == NULL || (int)mysql_num_fields(*res) <= col || (*row)[col] == NULL) {
        mysql_free_result(*res);
        *res = NULL;
        *row = NULL;
        sc_fail(w->err, SC_ESOURCE,
                "mysql %s: %s: the server did not show its definition (missing privilege? "
                "the account needs SELECT, SHOW VIEW, TRIGGER, EVENT and SHOW CREATE "
                "ROUTINE or SELECT on mysql.proc)",
                w->cfg->name, what);
        return SC_ESOURCE; /* whatever failure the sc_err kept first */
    }
    return 0;
}

/* A statement text, with its DEFINER removed when definer = strip. */
static char *definition(struct my_writer *w, const char *sql, const char *what)
{
    char *s = xstrdup(sql);
    if (w->strip_definer && !my_strip_definer(s))
        source_warn(w->entry, "%s: no DEFINER clause found to strip; kept as the server showed it",
                    what);
    return s;
}

/* SET wrappers around a stored program: its sql_mode and collation (and
 * time zone for events) while it is created, ours again after. */
static int program_open(struct my_writer *w, const char *sql_mode, const char *collation,
                        const char *time_zone)
{
    char *mode = my_string(w->meta, sql_mode ? sql_mode : "");
    char *coll = my_string(w->meta, collation ? collation : "utf8mb4_general_ci");
    int rc = my_out_printf(w->out,
                           "SET @saved_sql_mode = @@sql_mode;\n"
                           "SET @saved_col_connection = @@collation_connection;\n"
                           "SET sql_mode = %s;\n"
                           "SET collation_connection = %s;\n",
                           mode, coll);
    free(mode);
    free(coll);
    if (rc == 0 && time_zone != NULL) {
        char *tz = my_string(w->meta, time_zone);
        rc =
            my_out_printf(w->out, "SET @saved_time_zone = @@time_zone;\nSET time_zone = %s;\n", tz);
        free(tz);
    }
    return rc;
}

static int program_body(struct my_writer *w, const char *create)
{
    /* The text goes on its own lines, so a trailing "-- comment" in it
     * cannot swallow the delimiter. */
    const char *d = my_pick_delimiter(create);
    return my_out_printf(w->out, "DELIMITER %s\n%s\n%s\nDELIMITER ;\n", d, create, d);
}

static int program_close(struct my_writer *w, bool time_zone)
{
    return my_out_printf(w->out,
                         "%s"
                         "SET sql_mode = @saved_sql_mode;\n"
                         "SET collation_connection = @saved_col_connection;\n",
                         time_zone ? "SET time_zone = @saved_time_zone;\n" : "");
}

/* ---- databases and tables ------------------------------------------------ */

int my_write_database(struct my_writer *w, const char *db)
{
    char *id = my_ident(db);
    char *sql = xasprintf("SHOW CREATE DATABASE %s", id);
    MYSQL_RES *res;
    MYSQL_ROW row;
    char *what = xasprintf("database %s", id);
    int rc = show_create(w, sql, what, 1, &res, &row);
    free(sql);
    free(what);
    static const char prefix[] = "CREATE DATABASE ";
    if (rc == 0 && strncmp(row[1], prefix, sizeof prefix - 1) != 0)
        rc = sc_fail(w->err, SC_ESOURCE, "mysql %s: SHOW CREATE DATABASE %s: unexpected answer",
                     w->cfg->name, id);
    if (rc == 0)
        rc = comment(w, "Database", db);
    /* IF NOT EXISTS: loading into a database made beforehand (the
     * `mariadb db < dump.sql` habit) must work too. */
    if (rc == 0)
        rc = my_out_printf(w->out, "CREATE DATABASE IF NOT EXISTS %s;\nUSE %s;\n",
                           row[1] + sizeof prefix - 1, id);
    if (res != NULL)
        mysql_free_result(res);
    /* Views then print names of this database unqualified. */
    if (rc == 0 && mysql_select_db(w->meta, db) != 0)
        rc = my_fail(w->meta, w->cfg, w->err, "USE %s", id);
    free(id);
    return rc;
}

int my_write_table_ddl(struct my_writer *w, const struct my_table *t)
{
    char *q = my_qualified(t->db, t->name), *id = my_ident(t->name);
    char *sql = xasprintf("SHOW CREATE TABLE %s", q);
    MYSQL_RES *res;
    MYSQL_ROW row;
    int rc = show_create(w, sql, q, 1, &res, &row);
    if (rc == 0)
        rc = comment(w, t->kind == MY_SEQUENCE ? "Sequence" : "Table", t->name);
    if (rc == 0)
        rc = my_out_printf(w->out, "DROP TABLE IF EXISTS %s;\n%s;\n", id, row[1]);
    if (res != NULL)
        mysql_free_result(res);
    free(sql);
    free(q);
    free(id);
    return rc;
}

int my_write_sequence_value(struct my_writer *w, MYSQL *data, const struct my_table *t)
{
    char *q = my_qualified(t->db, t->name), *id = my_ident(t->name);
    char *sql = xasprintf("SELECT next_not_cached_value FROM %s", q);
    char *next = NULL;
    int rc = my_query_value(data, w->cfg, sql, &next, w->err);
    if (rc == 0 && next == NULL)
        rc = sc_fail(w->err, SC_ESOURCE, "mysql %s: sequence %s has no value", w->cfg->name, q);
    if (rc == 0)
        rc = my_out_printf(w->out, "DO SETVAL(%s, %s, 0);\n", id, next);
    free(next);
    free(sql);
    free(q);
    free(id);
    return rc;
}

/* Where SHOW CREATE TRIGGER/PROCEDURE/FUNCTION/EVENT puts a program's parts. */
struct program_cols {
    int create, sql_mode, charset;
    int time_zone; /* -1: none (routines) */
};

/* One stored program of db: comment, DROP ... IF EXISTS (not for a trigger:
 * its table was just created), the session it was defined in, its body.
 * type is what SHOW CREATE takes (TRIGGER, PROCEDURE, EVENT, ...), label
 * names it in the comment; *count grows by one when it is written. */
static int write_program(struct my_writer *w, const char *db, const char *name, const char *type,
                         const char *label, struct program_cols c, long long *count)
{
    char *q = my_qualified(db, name), *id = my_ident(name);
    char *sql = xasprintf("SHOW CREATE %s %s", type, q);
    char *what = xasprintf("%s %s", type, q);
    for (char *p = what; *p && p < what + strlen(type); p++)
        *p = (char)tolower((unsigned char)*p);
    MYSQL_RES *res;
    MYSQL_ROW row;
    int rc = show_create(w, sql, what, c.create, &res, &row);
    if (rc == 0) {
        char *create = definition(w, row[c.create], what);
        rc = comment(w, label, name);
        if (rc == 0 && strcmp(type, "TRIGGER") != 0)
            rc = my_out_printf(w->out, "DROP %s IF EXISTS %s;\n", type, id);
        const char *tz = c.time_zone < 0 ? NULL : row[c.time_zone] ? row[c.time_zone] : "SYSTEM";
        if (rc == 0)
            rc = program_open(w, row[c.sql_mode], row[c.charset], tz);
        if (rc == 0)
            rc = program_body(w, create);
        if (rc == 0)
            rc = program_close(w, c.time_zone >= 0);
        free(create);
        mysql_free_result(res);
        (*count)++;
    }
    free(what);
    free(sql);
    free(q);
    free(id);
    return rc;
}

/* ---- triggers ------------------------------------------------------------ */

int my_write_triggers(struct my_writer *w, const struct my_table *t)
{
    char *db = my_string(w->meta, t->db), *tb = my_string(w->meta, t->name);
    /* Created in their firing order, so that the order is the same after a
     * load (SHOW CREATE TRIGGER has no FOLLOWS/PRECEDES). */
    char *sql = xasprintf("SELECT TRIGGER_NAME, EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE FROM "
                          "information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = %s AND "
                          "EVENT_OBJECT_TABLE = %s ORDER BY ACTION_TIMING, EVENT_MANIPULATION, "
                          "ACTION_ORDER",
                          db, tb);
    free(db);
    free(tb);
    MYSQL_RES *res;
    int rc = my_query(w->meta, w->cfg, sql, &res, w->err);
    free(sql);
    if (rc != 0)
        return rc;
    MYSQL_ROW row;
    while (rc == 0 && (row = mysql_fetch_row(res)) != NULL)
        if (row[0] && row[1] && row[2] && strcmp(row[1], t->db) == 0 &&
            strcmp(row[2], t->name) == 0)
            /* Trigger, sql_mode, SQL Original Statement, character_set_client,
             * collation_connection, Database Collation, Created */
            rc = write_program(w, t->db, row[0], "TRIGGER", "Trigger",
                               (struct program_cols){2, 1, 4, -1}, &w->triggers);
    mysql_free_result(res);
    return rc;
}

/* ---- views --------------------------------------------------------------- */

int my_write_view_standin(struct my_writer *w, const struct my_table *t)
{
    char *q = my_qualified(t->db, t->name), *id = my_ident(t->name);
    char *sql = xasprintf("SHOW FULL COLUMNS FROM %s", q);
    MYSQL_RES *res;
    int rc = my_query(w->meta, w->cfg, sql, &res, w->err);
    free(sql);
    if (rc != 0) {
        free(q);
        free(id);
        return rc;
    }
    rc = comment(w, "Stand-in for view", t->name);
    if (rc == 0)
        rc = my_out_printf(w->out,
                           "DROP TABLE IF EXISTS %s;\nDROP VIEW IF EXISTS %s;\n"
                           "CREATE VIEW %s AS SELECT",
                           id, id, id);
    MYSQL_ROW row;
    size_t n = 0;
    while (rc == 0 && (row = mysql_fetch_row(res)) != NULL) {
        char *col = my_ident(row[0] ? row[0] : "");
        rc = my_out_printf(w->out, "%s\n 1 AS %s", n++ ? "," : "", col);
        free(col);
    }
    mysql_free_result(res);
    if (rc == 0 && n == 0)
        rc = sc_fail(w->err, SC_ESOURCE,
                     "mysql %s: view %s has no columns the server can resolve (it uses a table "
                     "or column that is gone?): fix or drop it, or leave it out with "
                     "exclude_tables",
                     w->cfg->name, q);
    if (rc == 0)
        rc = my_out_puts(w->out, ";\n");
    free(q);
    free(id);
    return rc;
}

int my_write_view(struct my_writer *w, const struct my_table *t)
{
    char *q = my_qualified(t->db, t->name);
    char *sql = xasprintf("SHOW CREATE VIEW %s", q);
    char *what = xasprintf("view %s", q);
    MYSQL_RES *res;
    MYSQL_ROW row;
    /* View, Create View, character_set_client, collation_connection */
    int rc = show_create(w, sql, what, 1, &res, &row);
    static const char prefix[] = "CREATE ";
    if (rc == 0 && strncmp(row[1], prefix, sizeof prefix - 1) != 0) {
        mysql_free_result(res);
        rc = sc_fail(w->err, SC_ESOURCE, "mysql %s: %s: unexpected definition", w->cfg->name, what);
    }
    if (rc == 0) {
        char *create = definition(w, row[1], what);
        char *coll = my_string(w->meta, row[3] ? row[3] : "utf8mb4_general_ci");
        rc = comment(w, "View", t->name);
        if (rc == 0)
            rc = my_out_printf(w->out,
                               "SET @saved_col_connection = @@collation_connection;\n"
                               "SET collation_connection = %s;\n"
                               "CREATE OR REPLACE %s;\n"
                               "SET collation_connection = @saved_col_connection;\n",
                               coll, create + sizeof prefix - 1);
        free(coll);
        free(create);
        mysql_free_result(res);
        w->views++;
    }
    free(what);
    free(sql);
    free(q);
    return rc;
}

/* ---- routines and events ------------------------------------------------- */

/* The programs a listing query names, in its order: rows of (name, type,
 * schema), type EVENT or a routine type. */
static int write_programs(struct my_writer *w, const char *db, const char *head, const char *tail)
{
    char *lit = my_string(w->meta, db);
    char *sql = xasprintf("%s%s%s", head, lit, tail);
    free(lit);
    MYSQL_RES *res;
    int rc = my_query(w->meta, w->cfg, sql, &res, w->err);
    free(sql);
    if (rc != 0)
        return rc;
    MYSQL_ROW row;
    while (rc == 0 && (row = mysql_fetch_row(res)) != NULL)
        if (row[0] && row[1] && row[2] && strcmp(row[2], db) == 0)
            rc = strcmp(row[1], "EVENT") == 0
                     /* Event, sql_mode, time_zone, Create Event,
                      * character_set_client, collation_connection, ... */
                     ? write_program(w, db, row[0], "EVENT", "Event",
                                     (struct program_cols){3, 1, 5, 2}, &w->events)
                     /* Name, sql_mode, Create ..., character_set_client,
                      * collation_connection, Database Collation */
                     : write_program(w, db, row[0], row[1], row[1],
                                     (struct program_cols){2, 1, 4, -1}, &w->routines);
    mysql_free_result(res);
    return rc;
}

int my_write_routines(struct my_writer *w, const char *db)
{
    /* FUNCTION, PACKAGE, PACKAGE BODY, PROCEDURE: a package before its body. */
    return write_programs(w, db,
                          "SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_SCHEMA FROM "
                          "information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ",
                          " ORDER BY ROUTINE_TYPE, CAST(ROUTINE_NAME AS BINARY)");
}

int my_write_events(struct my_writer *w, const char *db)
{
    return write_programs(w, db,
                          "SELECT EVENT_NAME, 'EVENT', EVENT_SCHEMA FROM information_schema.EVENTS "
                          "WHERE EVENT_SCHEMA = ",
                          " ORDER BY CAST(EVENT_NAME AS BINARY)");
}

/* ---- what the account cannot see ---------------------------------------- */

/* The server hides triggers, routines and events the account has no
 * privilege for (information_schema simply leaves them out), so a dump by
 * such an account would lack them silently. Check the privileges and say
 * so in the warnings instead. */

/* Does a GRANT line of SHOW GRANTS give priv on *.* or on `db`.*? */
static bool grant_allows(const char *line, const char *priv, const char *qdb)
{
    if (strncmp(line, "GRANT ", 6) != 0)
        return false;
    const char *on = strstr(line, " ON ");
    if (on == NULL)
        return false;
    const char *obj = on + 4;
    size_t qn = strlen(qdb);
    bool global = strncmp(obj, "*.*", 3) == 0;
    bool this_db = strncmp(obj, qdb, qn) == 0 && strncmp(obj + qn, ".*", 2) == 0;
    if (!global && !this_db)
        return false;
    char *list = xstrndup(line + 6, (size_t)(on - line - 6));
    bool found = false;
    for (char *tok = strtok(list, ","); tok && !found; tok = strtok(NULL, ",")) {
        while (*tok == ' ')
            tok++;
        found = strcmp(tok, priv) == 0 || strcmp(tok, "ALL PRIVILEGES") == 0;
    }
    free(list);
    return found;
}

static int grants_allow(struct my_writer *w, const char *priv, const char *db, bool *yes)
{
    *yes = false;
    MYSQL_RES *res;
    if (my_query(w->meta, w->cfg, "SHOW GRANTS", &res, w->err) != 0)
        return w->err->code;
    char *qdb = db ? my_ident(db) : xstrdup("*");
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL)
        if (row[0] != NULL && grant_allows(row[0], priv, qdb))
            *yes = true;
    mysql_free_result(res);
    free(qdb);
    return 0;
}

/* A statement that fails without a privilege: false on a server error. */
static int probe(struct my_writer *w, const char *sql, bool *ok)
{
    *ok = true;
    if (mysql_query(w->meta, sql) == 0) {
        MYSQL_RES *res = mysql_store_result(w->meta);
        if (res != NULL)
            mysql_free_result(res);
        return 0;
    }
    if (!my_server_error(w->meta))
        return my_fail(w->meta, w->cfg, w->err, "%s", sql);
    *ok = false;
    return 0;
}

int my_check_visibility(struct my_writer *w, const char *db, bool mariadb)
{
    char *id = my_ident(db);
    bool ok;
    /* Events: SHOW EVENTS refuses outright without EVENT on the database. */
    char *sql = xasprintf("SHOW EVENTS FROM %s", id);
    int rc = probe(w, sql, &ok);
    free(sql);
    if (rc == 0 && !ok)
        source_warn(w->entry,
                    "events of %s are not in the dump: the account lacks the EVENT "
                    "privilege on it",
                    id);
    /* Triggers are listed only for tables with the TRIGGER privilege. */
    if (rc == 0)
        rc = grants_allow(w, "TRIGGER", db, &ok);
    if (rc == 0 && !ok)
        source_warn(w->entry,
                    "triggers of %s may be missing from the dump: SHOW GRANTS shows no "
                    "TRIGGER privilege on it (grant TRIGGER)",
                    id);
    /* Routines: only their definer, or whoever may read mysql.proc (MariaDB)
     * or has SHOW_ROUTINE (MySQL), sees them all. */
    if (rc == 0 && mariadb)
        rc = probe(w, "SELECT 1 FROM mysql.proc LIMIT 0", &ok);
    else if (rc == 0)
        rc = grants_allow(w, "SHOW_ROUTINE", NULL, &ok);
    if (rc == 0 && !ok)
        source_warn(w->entry,
                    "routines of %s that the account did not define may be missing "
                    "from the dump: grant SELECT ON mysql.proc%s",
                    id, mariadb ? "" : " or SHOW_ROUTINE");
    free(id);
    return rc;
}

/* ---- text helpers ------------------------------------------------------- */

/* Length of a user or host part at p: `quoted` (`` inside), 'quoted',
 * "quoted", or a bare word; 0 when there is none. */
static size_t name_part(const char *p)
{
    if (*p == '`' || *p == '\'' || *p == '"') {
        char q = *p;
        size_t i = 1;
        for (;;) {
            if (p[i] == '\0')
                return 0;
            if (p[i] == q) {
                if (p[i + 1] == q) {
                    i += 2;
                    continue;
                }
                return i + 1;
            }
            i++;
        }
    }
    size_t i = 0;
    while (p[i] && (isalnum((unsigned char)p[i]) || strchr("_$.%-", p[i]) != NULL))
        i++;
    return i;
}

/* Skip "WORD " (case-insensitive) at p; NULL when not there. */
static char *skip_word(char *p, const char *word)
{
    size_t n = strlen(word);
    if (strncasecmp(p, word, n) != 0 || !isspace((unsigned char)p[n]))
        return NULL;
    p += n;
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

bool my_strip_definer(char *sql)
{
    char *p = skip_word(sql, "CREATE");
    if (p == NULL)
        return false;
    char *q = skip_word(p, "OR");
    if (q != NULL && (q = skip_word(q, "REPLACE")) != NULL)
        p = q;
    if (strncasecmp(p, "ALGORITHM=", 10) == 0) {
        p += 10;
        while (*p && !isspace((unsigned char)*p))
            p++;
        while (isspace((unsigned char)*p))
            p++;
    }
    if (strncasecmp(p, "DEFINER=", 8) != 0)
        return false;
    char *end = p + 8;
    if (strncasecmp(end, "CURRENT_USER", 12) == 0) {
        end += 12;
        if (strncmp(end, "()", 2) == 0)
            end += 2;
    } else {
        size_t n = name_part(end);
        if (n == 0)
            return false;
        end += n;
        if (*end == '@') {
            n = name_part(end + 1);
            if (n == 0)
                return false;
            end += 1 + n;
        }
    }
    if (!isspace((unsigned char)*end))
        return false;
    while (isspace((unsigned char)*end))
        end++;
    memmove(p, end, strlen(end) + 1);
    return true;
}

const char *my_pick_delimiter(const char *sql)
{
    /* None starts a quote or a comment, so any splitter sees them plainly. */
    static const char *const candidates[] = {";;", "$$", "@@;", "%%;;", "$;$;$;"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (strstr(sql, candidates[i]) == NULL)
            return candidates[i];
    return ";;;;;;;;;;;;;;;";
}
