/* doctor's check of a [mysql NAME] source: its secret files are private,
 * it connects and reads, every configured database is visible, and the
 * account has RELOAD (for the lock window and parallel reading). */
#include <stdio.h>
#include <stdlib.h>

#include "../../core/xalloc.h"
#include "../source.h"
#include "mysql.h"

void my_doctor_secrets(const struct source_cfg *s, struct probe *p)
{
    char what[300];
    snprintf(what, sizeof what, "mysql %s option_file", s->name);
    probe_secret(p, s->option_file, what);
    snprintf(what, sizeof what, "mysql %s password_file", s->name);
    probe_secret(p, s->password_file, what);
    snprintf(what, sizeof what, "mysql %s ssl_key", s->name);
    probe_secret(p, s->ssl_key, what);
}

/* Can the account lock non-transactional tables (FLUSH TABLES WITH READ
 * LOCK / BACKUP STAGE need RELOAD)? 1 yes, 0 no, -1 unknown. */
static int mysql_has_reload(MYSQL *m, const struct source_cfg *s)
{
    static const char sql[] =
        "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = 'RELOAD' "
        "AND GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
        "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";
    char *v = NULL;
    sc_err e = {0};
    if (my_query_value(m, s, sql, &v, &e) != 0 || v == NULL) {
        free(v);
        return -1;
    }
    int yes = atoll(v) > 0;
    free(v);
    return yes;
}

void my_doctor(const struct source_cfg *s, struct probe *p)
{
    sc_err e = {0};
    char *pw = NULL;
    MYSQL *m = NULL;
    char *one = NULL;
    if (my_check_files(s, &e) != 0 || my_read_password(s, &pw, &e) != 0) {
        probe_report(p, PROBE_FAIL, e.code, "mysql %s: %s", s->name, e.msg);
        return;
    }
    int rc = my_connect(s, pw, "doctor", &m, &e);
    my_free_password(pw);
    if (rc == 0)
        rc = my_query_value(m, s, "SELECT 1", &one, &e);
    free(one);
    if (rc != 0) {
        probe_report(p, PROBE_FAIL, e.code ? e.code : SC_ESOURCE, "mysql %s: %s", s->name, e.msg);
        my_close(&m);
        return;
    }
    /* Every configured database is there and visible to the account. */
    for (size_t i = 0; i < s->databases.n; i++) {
        char *lit = my_string(m, s->databases.v[i]);
        char *sql = xasprintf("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE "
                              "SCHEMA_NAME = %s",
                              lit);
        char *n = NULL;
        sc_err qe = {0};
        int qrc = my_query_value(m, s, sql, &n, &qe);
        bool found = qrc == 0 && n != NULL && atoll(n) > 0;
        free(n);
        free(sql);
        free(lit);
        if (qrc != 0) {
            probe_report(p, PROBE_FAIL, SC_ESOURCE, "mysql %s: %s", s->name, qe.msg);
            my_close(&m);
            return;
        }
        if (!found) {
            probe_report(p, PROBE_FAIL, SC_ESOURCE,
                         "mysql %s: database '%s' does not exist or the account cannot see it "
                         "(create it, or grant SELECT on it)",
                         s->name, s->databases.v[i]);
            my_close(&m);
            return;
        }
    }
    int reload = mysql_has_reload(m, s);
    my_close(&m);
    if (reload == 0)
        probe_report(
            p, PROBE_WARN, 0,
            "mysql %s: connects and reads, but the account lacks RELOAD: "
            "non-transactional (MyISAM, Aria) tables would not be locked during the dump "
            "and it is read over one connection, not in parallel (GRANT RELOAD ON *.* to it)",
            s->name);
    else
        probe_report(p, PROBE_OK, 0, "mysql %s: connects and reads%s", s->name,
                     reload < 0 ? " (RELOAD privilege not determined)" : ", RELOAD granted");
}
