/* status: last run, local sets and what they use on disk. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/fs.h"
#include "../core/state.h"
#include "../stage/set.h"
#include "../pipeline/check.h"
#include "cmd.h"

/* "next check due" for people: a time, "at the next run", or "never". */
static void print_next_check(long long due)
{
    char buf[32];
    if (due < 0) {
        printf("next check:   never ([check] every = 0)\n");
    } else if (due == 0 || due <= (long long)time(NULL)) {
        printf("next check:   due (at the next run)\n");
    } else {
        format_utc(due, buf, sizeof buf);
        printf("next check:   %s\n", buf);
    }
}

/* The last drill: when, how it went, the recovery time it measured. */
static void print_drill(json_t *state)
{
    json_t *d = json_object_get(state, "last_drill");
    if (!json_is_object(d)) {
        printf("last drill:   never\n");
        return;
    }
    json_t *rto = json_object_get(d, "rto_seconds");
    printf("last drill:   %s, %s", json_string_value(json_object_get(d, "finished")),
           json_string_value(json_object_get(d, "status")));
    if (json_is_number(rto))
        printf(", recovery time %.1f s", json_number_value(rto));
    printf("\n");
    const char *e = json_string_value(json_object_get(d, "error"));
    if (e)
        printf("              %s\n", e);
}

static void print_offsite(json_t *state, long long due)
{
    json_t *last = json_object_get(state, "last_run");
    json_t *stats = json_object_get(last, "stats");
    if (json_is_object(stats))
        printf("last run took %.1f s: %lld bytes staged, %lld bytes added, %lld set(s) shipped\n",
               json_number_value(json_object_get(stats, "duration_s")),
               (long long)json_integer_value(json_object_get(stats, "staged_bytes")),
               (long long)json_integer_value(json_object_get(stats, "added_bytes")),
               (long long)json_integer_value(json_object_get(stats, "shipped_sets")));
    json_t *check = json_object_get(json_object_get(state, "check"), "last");
    if (json_is_object(check)) {
        const char *subset = json_string_value(json_object_get(check, "subset"));
        const char *cerr = json_string_value(json_object_get(check, "error"));
        printf("last check:   %s, %s%s%s\n", json_string_value(json_object_get(check, "finished")),
               json_string_value(json_object_get(check, "status")), subset ? ", data subset " : "",
               subset ? subset : "");
        if (cerr)
            printf("              %s\n", cerr);
    } else {
        printf("last check:   never\n");
    }
    print_next_check(due);
    print_drill(state);
    json_t *repo = json_object_get(state, "repository");
    if (json_is_integer(json_object_get(repo, "snapshots")))
        printf("snapshots:    %lld of this host (counted %s)\n",
               (long long)json_integer_value(json_object_get(repo, "snapshots")),
               json_string_value(json_object_get(repo, "counted")));
}

static void report_offsite(json_t *report, json_t *state, long long due, long every_s)
{
    json_t *cs = json_object_get(state, "check");
    json_t *last = json_object_get(cs, "last");
    json_object_set(report, "last_check", json_is_object(last) ? last : json_null());
    json_t *ok = json_object_get(cs, "last_success");
    json_object_set(report, "last_check_success", ok ? ok : json_null());
    char buf[32];
    if (due > 0)
        format_utc(due, buf, sizeof buf);
    json_object_set_new(report, "next_check_due",
                        due < 0 ? json_null() : json_string(due == 0 ? "now" : buf));
    json_object_set_new(report, "check_every_s", json_integer(every_s));
    json_t *repo = json_object_get(state, "repository");
    json_object_set(report, "repository", json_is_object(repo) ? repo : json_null());
    json_t *ret = json_object_get(json_object_get(state, "retention"), "last");
    json_object_set(report, "last_retention", json_is_object(ret) ? ret : json_null());
    json_t *drill = json_object_get(state, "last_drill");
    json_object_set(report, "last_drill", json_is_object(drill) ? drill : json_null());
}

static int cmd_status(struct ctx *c, int argc, char **argv, sc_err *err)
{
    if (opts_parse(argc, argv, NULL, err) != 0)
        return err->code;
    const char *staging = c->cfg.staging.dir;
    json_t *state;
    char **ids;
    size_t n;
    if (state_load(staging, &state, err) != 0)
        return err->code;
    if (set_list(staging, &ids, &n, err) != 0) {
        json_decref(state);
        return err->code;
    }
    unsigned long long usage_bytes = fs_exists(staging) ? fs_tree_bytes(staging) : 0;
    json_t *sets = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *snap = state_set_snapshot(state, ids[i]);
        json_array_append_new(sets, json_pack("{s:s, s:s?}", "id", ids[i], "snapshot", snap));
    }
    json_t *last = json_object_get(state, "last_run");
    long long due = check_next_due(c->cfg.check.every_s, json_object_get(state, "check"));
    if (c->report) {
        report_offsite(c->report, state, due, c->cfg.check.every_s);
        json_object_set_new(c->report, "staging", json_string(staging));
        json_object_set_new(c->report, "staging_bytes", json_integer((json_int_t)usage_bytes));
        json_object_set_new(c->report, "sets", sets);
        json_object_set(c->report, "last_run", last ? last : json_null());
        json_object_set(c->report, "last_success",
                        json_object_get(state, "last_success")
                            ? json_object_get(state, "last_success")
                            : json_null());
    } else {
        printf("staging:   %s (%llu bytes)\n", staging, usage_bytes);
        if (last) {
            printf("last run:  %s at %s, %s\n", json_string_value(json_object_get(last, "command")),
                   json_string_value(json_object_get(last, "finished")),
                   json_string_value(json_object_get(last, "status")));
            const char *e = json_string_value(json_object_get(last, "error"));
            if (e)
                printf("           %s\n", e);
        } else {
            printf("last run:  never\n");
        }
        const char *ok = json_string_value(json_object_get(state, "last_success"));
        printf("last success: %s\n", ok ? ok : "never");
        print_offsite(state, due);
        printf("local sets (%zu):\n", n);
        size_t i;
        json_t *s;
        json_array_foreach(sets, i, s)
        {
            const char *snap = json_string_value(json_object_get(s, "snapshot"));
            printf("  %s  %s\n", json_string_value(json_object_get(s, "id")),
                   snap ? snap : "(not shipped)");
        }
        json_decref(sets);
    }
    set_list_free(ids, n);
    json_decref(state);
    return 0;
}

const struct command command_status = {
    .name = "status",
    .run = cmd_status,
    .usage = "status",
    .summary = "last run, last check, next check due, local sets",
    .help = "What state.json and the staging directory say: the last run and its numbers,\n"
            "the last check and when the next is due, retention, the last drill, and the\n"
            "local sets with the snapshots they were shipped as.",
    .options = NULL,
    .example = "stagecoach status\n"
               "stagecoach --json status",
    .needs_config = true,
};
