/* status: last run, local sets and what they use on disk. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fs.h"
#include "../core/state.h"
#include "../stage/set.h"
#include "cmd.h"

static unsigned long long usage_bytes;

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        usage_bytes += (unsigned long long)st->st_size;
    return 0;
}

int cmd_status(struct ctx *c, int argc, char **argv, sc_err *err)
{
    if (cmd_parse_opts(argc, argv, NULL, err) != 0)
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
    usage_bytes = 0;
    if (fs_exists(staging) && nftw(staging, add_size, 16, FTW_PHYS) != 0)
        usage_bytes = 0;
    json_t *sets = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *snap = state_set_snapshot(state, ids[i]);
        json_array_append_new(sets, json_pack("{s:s, s:s?}", "id", ids[i], "snapshot", snap));
    }
    json_t *last = json_object_get(state, "last_run");
    if (c->report) {
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
