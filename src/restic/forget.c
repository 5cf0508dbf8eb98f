/* Retention in the repository: `restic forget` with the [retention] policy,
 * then `restic prune` when something was forgotten.
 *
 * Which snapshots are under retention: this host's (--host), made by
 * stagecoach with the configured tags (--tag stagecoach,t1,t2: a comma means
 * AND). They form one group (--group-by host): every run stages into its
 * own directory, so restic's default grouping by host and paths would put
 * each snapshot in a group of its own and never forget anything (peers.md,
 * pain 8). Other hosts sharing the repository are never touched.
 *
 * forget and prune are separate calls: restic 0.14 prints prune's text
 * after forget's JSON line when given --prune, and a prune that fails after
 * a successful forget is something the caller must remember to redo. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "internal.h"

bool restic_retention_args(const struct config *cfg, struct strvec *argv)
{
    static const struct {
        const char *flag;
        size_t offset;
    } keeps[] = {
        {"--keep-last", offsetof(struct config, retention.keep_last)},
        {"--keep-hourly", offsetof(struct config, retention.keep_hourly)},
        {"--keep-daily", offsetof(struct config, retention.keep_daily)},
        {"--keep-weekly", offsetof(struct config, retention.keep_weekly)},
        {"--keep-monthly", offsetof(struct config, retention.keep_monthly)},
        {"--keep-yearly", offsetof(struct config, retention.keep_yearly)},
    };
    bool any = false;
    for (size_t i = 0; i < sizeof keeps / sizeof keeps[0]; i++) {
        long n = *(const long *)(const void *)((const char *)cfg + keeps[i].offset);
        if (n > 0) { /* 0: not set (the config accepts no negative number) */
            strvec_pushf(argv, "%s=%ld", keeps[i].flag, n);
            any = true;
        }
    }
    if (cfg->retention.keep_within) {
        strvec_pushf(argv, "--keep-within=%s", cfg->retention.keep_within);
        any = true;
    }
    return any;
}

void restic_own_filter(const struct restic *r, const char *host, struct strvec *argv)
{
    char *tags = rx_join("stagecoach", r->cfg->restic.tags.v, r->cfg->restic.tags.n, ',');
    strvec_pushf(argv, "--tag=%s", tags);
    strvec_pushf(argv, "--host=%s", host);
    free(tags);
}

int restic_own_snapshots(struct restic *r, json_t **out, sc_err *err)
{
    *out = NULL;
    char host[256];
    int rc = rx_this_host(r, host, sizeof host, err);
    if (rc != 0)
        return rc;
    struct strvec argv = {0};
    rx_argv_start(r, &argv, "snapshots");
    strvec_push(&argv, "--json");
    restic_own_filter(r, host, &argv);
    rc = rx_run_json_array(r, "snapshots", &argv, out, err);
    strvec_free(&argv);
    return rc;
}

void restic_forget_result_free(struct restic_forget_result *f)
{
    json_decref(f->keep);
    json_decref(f->remove);
    f->keep = f->remove = NULL;
}

/* Append every element of a group's array (null when empty) to all. */
static int take_list(json_t *group, const char *key, json_t *all)
{
    json_t *list = json_object_get(group, key);
    if (json_is_null(list) || list == NULL)
        return 0;
    if (!json_is_array(list))
        return -1;
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        if (!json_is_object(s) || !json_is_string(json_object_get(s, "id")))
            return -1;
        json_array_append(all, s);
    }
    return 0;
}

int restic_forget_parse(const char *text, size_t len, struct restic_forget_result *out, sc_err *err)
{
    out->keep = json_array();
    out->remove = json_array();
    /* No snapshot matches the filter: 0.14 prints nothing at all. */
    size_t blank = 0;
    while (blank < len && (text[blank] == ' ' || text[blank] == '\n' || text[blank] == '\r'))
        blank++;
    if (blank == len)
        return 0;
    /* The first line only: 0.14 with --prune prints text after it. */
    const char *nl = memchr(text, '\n', len);
    json_t *groups = rx_parse_json(text, nl ? (size_t)(nl - text) : len);
    int rc = 0;
    if (!json_is_array(groups)) {
        rc = sc_fail(err, SC_ERESTIC, "restic forget printed no JSON array");
    } else {
        size_t i;
        json_t *g;
        json_array_foreach(groups, i, g)
        {
            if (!json_is_object(g) || take_list(g, "keep", out->keep) != 0 ||
                take_list(g, "remove", out->remove) != 0) {
                rc = sc_fail(err, SC_ERESTIC,
                             "restic forget printed a group stagecoach cannot read");
                break;
            }
        }
    }
    json_decref(groups);
    if (rc != 0)
        restic_forget_result_free(out);
    return rc;
}

int restic_forget(struct restic *r, bool dry_run, struct restic_forget_result *out, sc_err *err)
{
    out->keep = out->remove = NULL;
    if (r->cfg->retention.keep_within && !restic_duration_ok(r->cfg->retention.keep_within))
        return sc_fail(err, SC_ECONFIG,
                       "[retention] keep_within = %s: expected a restic duration like 7d, 2m15d "
                       "or 1y (units y, m, d, h)",
                       r->cfg->retention.keep_within);
    char host[256];
    int rc = rx_this_host(r, host, sizeof host, err);
    if (rc != 0)
        return rc;
    struct strvec argv = {0};
    rx_argv_start(r, &argv, "forget");
    strvec_push(&argv, "--json");
    restic_own_filter(r, host, &argv);
    strvec_push(&argv, "--group-by=host");
    if (!restic_retention_args(r->cfg, &argv)) {
        strvec_free(&argv);
        return sc_fail(err, SC_ECONFIG, "no retention policy: set a keep_* key in [retention]");
    }
    if (dry_run) { /* restic allows --no-lock only with --dry-run: a preview waits for nobody */
        strvec_push(&argv, "--dry-run");
        strvec_push(&argv, "--no-lock");
    }
    struct spawn_opts o = {0};
    struct spawn_result res;
    rc = rx_run_ok(r, "forget", &argv, &o, NULL, &res, err);
    strvec_free(&argv);
    if (rc != 0)
        return rc;
    rc = restic_forget_parse(res.out, res.out_len, out, err);
    spawn_result_free(&res);
    return rc;
}

/* Prune's text, a line at a time: progress on a terminal, detail at -v. */
static void prune_line(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    if (len == 0)
        return;
    if (log_progress_enabled())
        log_progress("restic prune: %.*s", (int)len, line);
    rx_debug_line(NULL, line, len);
}

int restic_prune(struct restic *r, sc_err *err)
{
    struct strvec argv = {0};
    rx_argv_start(r, &argv, "prune");
    struct spawn_opts o = {.on_stdout_line = prune_line};
    struct spawn_result res;
    int rc = rx_run_ok(r, "prune", &argv, &o, NULL, &res, err);
    strvec_free(&argv);
    log_progress_done();
    if (rc == 0)
        spawn_result_free(&res);
    return rc;
}
