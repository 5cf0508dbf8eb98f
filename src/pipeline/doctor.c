/* doctor: pre-flight checks that change nothing (design §5). One line per
 * check, OK / WARN / FAIL with the reason and, when something is wrong,
 * what to do about it. The exit code is 0 when nothing FAILs, else the
 * code of the first failing check's kind (design §6): permissions 3,
 * restic and the repository 6, sources 4, staging and disk space 5.
 *
 * Nothing is created or written: no repository init, no staging
 * directory, no lock, no -wal file next to a SQLite database. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../core/fs.h"
#include "../core/log.h"
#include "../core/report.h"
#include "../restic/restic.h"
#include "../source/source.h"
#include "../stage/set.h"
#include "../core/clock.h"
#include "doctor.h"

enum verdict { V_OK, V_WARN, V_FAIL };

struct doctor {
    struct ctx *c;
    struct probe probe; /* how sources report (source.h): into verdict */
    struct doctor_result *r;
    void (*show)(const char *status, const char *line);
    bool restic_available; /* the binary answered `version` */
};

__attribute__((format(printf, 4, 5))) static void verdict(struct doctor *d, enum verdict v,
                                                          int code, const char *fmt, ...)
{
    static const char *const names[] = {"OK", "WARN", "FAIL"};
    static const char *const lower[] = {"ok", "warn", "fail"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* "name: message": the name is what precedes the first ": ". */
    const char *sep = strstr(line, ": ");
    char name[128];
    snprintf(name, sizeof name, "%.*s", sep ? (int)(sep - line) : (int)strlen(line), line);
    const char *msg = sep ? sep + 2 : "";
    struct doctor_result *r = d->r;
    if (v == V_OK)
        r->nok++;
    else if (v == V_WARN)
        r->nwarn++;
    else if (r->nfail++ == 0) {
        r->first_code = code;
        snprintf(r->first_msg, sizeof r->first_msg, "%.*s", (int)sizeof r->first_msg - 1, line);
    }
    json_t *o = json_pack("{s:s, s:s, s:s}", "check", name, "status", lower[v], "message", msg);
    if (v == V_FAIL)
        json_object_set_new(o, "exit_code", json_integer(code));
    json_array_append_new(r->checks, o);
    if (d->show)
        d->show(names[v], line);
}

/* A source's finding, through its probe (source.h). */
static void verdict_of_probe(struct probe *p, enum probe_status st, int code, const char *line)
{
    static const enum verdict of[] = {
        [PROBE_OK] = V_OK, [PROBE_WARN] = V_WARN, [PROBE_FAIL] = V_FAIL};
    verdict(p->ctx, of[st], code, "%s", line);
}

/* ---- permissions of secret files ------------------------------------------ */

static void check_secrets(struct doctor *d)
{
    const struct config *cfg = &d->c->cfg;
    probe_secret(&d->probe, cfg->restic.password_file, "restic password_file");
    probe_secret(&d->probe, cfg->restic.env_file, "restic env_file");
    probe_secret(&d->probe, cfg->staging.key_file, "staging key_file");
    probe_secret(&d->probe, cfg->staging.identity, "staging identity");
    probe_secret(&d->probe, cfg->staging.passphrase_file, "staging passphrase_file");
    for (size_t i = 0; i < cfg->nsources; i++) {
        const struct source_cfg *s = &cfg->sources[i];
        if (source_of(s)->secrets)
            source_of(s)->secrets(s, &d->probe);
    }
}

/* ---- restic and the repository --------------------------------------------- */

static void check_restic(struct doctor *d)
{
    /* The version alone: without the password and env files, so that a
     * permission problem there does not hide whether restic runs. */
    struct config bare = d->c->cfg;
    bare.restic.password_file = NULL;
    bare.restic.env_file = NULL;
    struct restic r;
    sc_err e = {0};
    int rc = restic_open(&r, &bare, &e);
    if (rc == 0) {
        d->restic_available = true;
        verdict(d, V_OK, 0, "restic: restic %d.%d.%d (%s)", r.major, r.minor, r.patch, r.path);
    } else {
        verdict(d, V_FAIL, rc, "restic: %s", e.msg);
    }
    restic_close(&r);
}

static void check_repository(struct doctor *d)
{
    const struct config *cfg = &d->c->cfg;
    if (!d->restic_available) {
        verdict(d, V_FAIL, SC_ERESTIC, "repository: not checked: restic does not run (see above)");
        return;
    }
    struct restic r;
    sc_err e = {0};
    int rc = restic_open(&r, cfg, &e);
    if (rc == 0) {
        r.retry.tries = 1; /* a pre-flight answers now; a run retries */
        rc = restic_ensure_repo(&r, false, &e);
    }
    restic_close(&r);
    if (rc == 0)
        verdict(d, V_OK, 0, "repository: reachable, password accepted");
    else if (rc == SC_ERESTIC && cfg->restic.init &&
             strncmp(e.msg, "repository not found", 20) == 0)
        verdict(d, V_WARN, 0, "repository: %s; the next run creates it (init = yes)", e.msg);
    else
        verdict(d, V_FAIL, rc, "repository: %s", e.msg);
}

/* ---- sources --------------------------------------------------------------- */

static void check_sources(struct doctor *d)
{
    const struct config *cfg = &d->c->cfg;
    for (size_t i = 0; i < cfg->nsources; i++) {
        const struct source_cfg *s = &cfg->sources[i];
        const struct source_ops *ops = source_of(s);
        if (ops->doctor)
            ops->doctor(s, &d->probe);
        else
            verdict(d, V_WARN, 0, "%s %s: no pre-flight check for this kind", s->kind, s->name);
    }
}

/* ---- staging and free space ---------------------------------------------- */

static void check_staging(struct doctor *d)
{
    const char *dir = d->c->cfg.staging.dir;
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) {
            verdict(d, V_FAIL, SC_ESTAGING, "staging: %s: %s", dir, strerror(errno));
            return;
        }
        /* The first run makes it (0700): its nearest existing parent must let it. */
        char *parent = xstrdup(dir);
        char *slash;
        while ((slash = strrchr(parent, '/')) != NULL && slash != parent) {
            *slash = '\0';
            if (fs_exists(parent))
                break;
        }
        if (slash == parent)
            parent[1] = '\0';
        if (access(parent, W_OK | X_OK) != 0)
            verdict(d, V_FAIL, SC_ESTAGING,
                    "staging: %s does not exist and cannot be created in %s: %s (create it, "
                    "mode 0700, owned by the user that runs stagecoach)",
                    dir, parent, strerror(errno));
        else
            verdict(d, V_WARN, 0, "staging: %s does not exist yet; the first run creates it (0700)",
                    dir);
        free(parent);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        verdict(d, V_FAIL, SC_ESTAGING, "staging: %s is not a directory", dir);
        return;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        verdict(d, V_FAIL, SC_ESTAGING, "staging: %s is not writable by this user: %s", dir,
                strerror(errno));
        return;
    }
    unsigned mode = (unsigned)(st.st_mode & 07777);
    if (st.st_uid != geteuid())
        verdict(d, V_WARN, 0,
                "staging: %s belongs to uid %u, not to this user (uid %u); chown it to the user "
                "that runs stagecoach",
                dir, (unsigned)st.st_uid, (unsigned)geteuid());
    else if (mode & 077)
        verdict(d, V_WARN, 0,
                "staging: %s has mode %04o: group or others can reach the staged copies; "
                "chmod 700 %s",
                dir, mode, dir);
    else
        verdict(d, V_OK, 0, "staging: %s, mode %04o, owned by this user", dir, mode);
}

static void human(unsigned long long b, char *buf, size_t n)
{
    if (b >= 10ULL << 30)
        snprintf(buf, n, "%.1f GiB", (double)b / (1ULL << 30));
    else if (b >= 10ULL << 20)
        snprintf(buf, n, "%.1f MiB", (double)b / (1ULL << 20));
    else
        snprintf(buf, n, "%llu KiB", (b + 1023) / 1024);
}

static void check_disk(struct doctor *d)
{
    const char *dir = d->c->cfg.staging.dir;
    /* The file system the staging directory is (or will be) on. */
    char *at = xstrdup(dir);
    struct statvfs vfs;
    int rc;
    while ((rc = statvfs(at, &vfs)) != 0 && errno == ENOENT) {
        char *slash = strrchr(at, '/');
        if (slash == NULL)
            break;
        slash[slash == at ? 1 : 0] = '\0';
    }
    if (rc != 0) {
        verdict(d, V_FAIL, SC_ESTAGING, "disk: cannot see the file system of %s: %s", dir,
                strerror(errno));
        free(at);
        return;
    }
    free(at);
    unsigned long long avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
    char **ids = NULL;
    size_t n = 0;
    sc_err e = {0};
    char a[32], s[32];
    human(avail, a, sizeof a);
    if (set_list(dir, &ids, &n, &e) != 0) {
        verdict(d, V_WARN, 0, "disk: %s free; cannot list the local sets: %s", a, e.msg);
        return;
    }
    if (n == 0) {
        verdict(d, V_OK, 0,
                "disk: %s free on the staging file system; no local set yet to "
                "compare with",
                a);
        set_list_free(ids, n);
        return;
    }
    char *sets = path_join(dir, "sets");
    char *latest = path_join(sets, ids[n - 1]);
    unsigned long long need = fs_tree_bytes(latest);
    human(need, s, sizeof s);
    if (avail < need)
        verdict(d, V_FAIL, SC_ESTAGING,
                "disk: %s free (%llu bytes) on the staging file system, less than the latest set "
                "%s (%s, %llu bytes): the next set will not fit; free space or lower [staging] "
                "keep",
                a, avail, ids[n - 1], s, need);
    else if ((double)avail < 1.2 * (double)need)
        verdict(d, V_WARN, 0,
                "disk: %s free (%llu bytes), less than 1.2 x the latest set %s (%s, %llu bytes): "
                "a slightly bigger next set will not fit",
                a, avail, ids[n - 1], s, need);
    else
        verdict(d, V_OK, 0, "disk: %s free, latest set %s is %s (at least 1.2 x needed)", a,
                ids[n - 1], s);
    free(latest);
    free(sets);
    set_list_free(ids, n);
}

void doctor_run(struct ctx *c, void (*show)(const char *status, const char *line),
                struct doctor_result *r)
{
    memset(r, 0, sizeof *r);
    r->checks = json_array();
    struct doctor d = {.c = c, .r = r, .show = show};
    d.probe = (struct probe){.report = verdict_of_probe, .ctx = &d, .staging = c->cfg.staging.dir};
    check_secrets(&d);
    check_restic(&d);
    check_repository(&d);
    check_sources(&d);
    check_staging(&d);
    check_disk(&d);
}
