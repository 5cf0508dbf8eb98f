/* doctor's checks of a [postgresql NAME] source, changing nothing: its
 * secret files are private; the server answers, and how (version); a
 * snapshot can be exported (what the stage's consistency rests on);
 * pg_dump and psql are there and new enough for the server; the role can
 * read every table the dump would cover (naming those it cannot); and the
 * staging file system has room for a dump of the database's size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "../source.h"
#include "postgresql.h"

void pg_doctor_secrets(const struct source_cfg *s, struct probe *p)
{
    char what[300];
    snprintf(what, sizeof what, "postgresql %s password_file", s->name);
    probe_secret(p, s->password_file, what);
    snprintf(what, sizeof what, "postgresql %s passfile", s->name);
    probe_secret(p, s->passfile, what);
}

/* pg_dump (FAIL: no stage without it) and psql (WARN: restores need it)
 * against the server's major version. */
static void check_client(const struct source_cfg *s, struct probe *p, const char *name,
                         int server_num, const char *server)
{
    struct pg_tool t;
    sc_err e = {0};
    bool needed = strcmp(name, "pg_dump") == 0;
    enum probe_status bad = needed ? PROBE_FAIL : PROBE_WARN;
    if (pg_tool_find(s, name, &t, &e) != 0)
        probe_report(p, bad, needed ? e.code : 0, "postgresql %s %s: %s%s", s->name, name, e.msg,
                     needed ? "" : " (needed to restore)");
    else if (t.major < server_num / 10000)
        probe_report(p, bad, needed ? SC_ESOURCE : 0,
                     "postgresql %s %s: %s is version %s, older than the server (%s): install "
                     "the PostgreSQL %d client programs and set bin_dir to them",
                     s->name, name, t.path, t.version, server, server_num / 10000);
    else
        probe_report(p, PROBE_OK, 0, "postgresql %s %s: %s %s, not older than the server", s->name,
                     name, t.path, t.version);
    pg_tool_free(&t);
}

static void check_tables(const struct source_cfg *s, struct probe *p, PGconn *c)
{
    struct strvec bad = {0};
    size_t n = 0;
    sc_err e = {0};
    if (pg_unreadable_tables(c, s, &bad, &n, &e) != 0) {
        probe_report(p, PROBE_FAIL, e.code, "postgresql %s privileges: %s", s->name, e.msg);
    } else if (bad.n > 0) {
        char *list = pg_join_names(&bad, 8);
        probe_report(p, PROBE_FAIL, SC_ESOURCE,
                     "postgresql %s privileges: the role cannot read %zu table%s: %s (grant it "
                     "pg_read_all_data, and BYPASSRLS for row security, or exclude_table them)",
                     s->name, bad.n, bad.n == 1 ? "" : "s", list);
        free(list);
    } else {
        probe_report(p, PROBE_OK, 0,
                     "postgresql %s privileges: the role can read every table (%zu)", s->name, n);
    }
    strvec_free(&bad);
}

/* Bytes free for us on the file system of dir (or of its nearest existing
 * parent, before the first run made it); -1 when unknown. */
static long long free_bytes(const char *dir)
{
    char *at = xstrdup(dir);
    struct statvfs v;
    int rc;
    while ((rc = statvfs(at, &v)) != 0 && errno == ENOENT && strrchr(at, '/') != NULL) {
        char *slash = strrchr(at, '/');
        slash[slash == at ? 1 : 0] = '\0';
        if (slash == at)
            break;
    }
    free(at);
    return rc == 0 ? (long long)v.f_bavail * (long long)v.f_frsize : -1;
}

static void check_space(const struct source_cfg *s, struct probe *p, PGconn *c)
{
    char *size = NULL;
    sc_err e = {0};
    if (pg_query_value(c, s, "SELECT pg_catalog.pg_database_size(pg_catalog.current_database())",
                       &size, &e) != 0) {
        probe_report(p, PROBE_WARN, 0, "postgresql %s space: database size unknown: %s", s->name,
                     e.msg);
        return;
    }
    long long need = size ? strtoll(size, NULL, 10) : 0;
    free(size);
    long long avail = p->staging ? free_bytes(p->staging) : -1;
    double mib = (double)need / (1024.0 * 1024.0), free_mib = (double)avail / (1024.0 * 1024.0);
    if (avail < 0)
        probe_report(p, PROBE_WARN, 0,
                     "postgresql %s space: database is %.1f MiB; free space in staging unknown",
                     s->name, mib);
    else if (avail < need)
        probe_report(
            p, PROBE_WARN, 0,
            "postgresql %s space: database is %.1f MiB (pg_database_size), more than the %.1f "
            "MiB free in %s: a dump (no indexes, but bytea as hex) may not fit",
            s->name, mib, free_mib, p->staging);
    else
        probe_report(p, PROBE_OK, 0,
                     "postgresql %s space: database is %.1f MiB, %.1f MiB free in %s", s->name, mib,
                     free_mib, p->staging);
}

/* The stage's first steps, rolled back: a REPEATABLE READ snapshot exported. */
static int try_snapshot(const struct source_cfg *s, PGconn *c, sc_err *e)
{
    int rc = pg_exec(c, s, "BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", e);
    char *id = NULL;
    if (rc == 0)
        rc = pg_query_value(c, s, "SELECT pg_catalog.pg_export_snapshot()", &id, e);
    free(id);
    sc_err ignored = {0};
    (void)pg_exec(c, s, "ROLLBACK", &ignored);
    return rc;
}

void pg_doctor(const struct source_cfg *s, struct probe *p)
{
    sc_err e = {0};
    char *pw = NULL;
    PGconn *c = NULL;
    if (pg_check_files(s, &e) != 0 || pg_read_password(s, &pw, &e) != 0) {
        probe_report(p, PROBE_FAIL, e.code, "postgresql %s: %s", s->name, e.msg);
        return;
    }
    int rc = pg_connect(s, pw, NULL, "doctor", &c, &e);
    pg_free_password(pw);
    if (rc == 0)
        rc = try_snapshot(s, c, &e);
    if (rc != 0) {
        probe_report(p, PROBE_FAIL, e.code ? e.code : SC_ESOURCE, "postgresql %s: %s", s->name,
                     e.msg);
        pg_close(&c);
        return;
    }
    int num = PQserverVersion(c);
    const char *version = PQparameterStatus(c, "server_version");
    char where[300];
    pg_describe_target(s, where, sizeof where);
    if (num < PG_MIN_SERVER)
        probe_report(p, PROBE_FAIL, SC_ESOURCE,
                     "postgresql %s: server %s is too old: PostgreSQL 10 or newer is needed",
                     s->name, version ? version : "?");
    else
        probe_report(p, PROBE_OK, 0,
                     "postgresql %s: PostgreSQL %s at %s, database %s, a snapshot can be "
                     "exported",
                     s->name, version ? version : "?", where, pg_database(s));
    check_client(s, p, "pg_dump", num, version ? version : "?");
    check_client(s, p, "psql", num, version ? version : "?");
    check_tables(s, p, c);
    check_space(s, p, c);
    pg_close(&c);
}
