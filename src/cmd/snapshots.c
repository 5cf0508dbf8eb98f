/* snapshots: the repository's snapshots made by this tool. */
#include <stdio.h>
#include <string.h>

#include "../restic/restic.h"
#include "cmd.h"

static void print_row(json_t *s)
{
    char tags[512] = "";
    size_t i, used = 0;
    json_t *t;
    json_array_foreach(json_object_get(s, "tags"), i, t)
    {
        int n = snprintf(tags + used, sizeof tags - used, "%s%s", used ? "," : "",
                         json_string_value(t) ? json_string_value(t) : "");
        if (n < 0 || (size_t)n >= sizeof tags - used)
            break;
        used += (size_t)n;
    }
    const char *time = json_string_value(json_object_get(s, "time"));
    printf("%-8.8s  %-19.19s  %-16s  %s\n", json_string_value(json_object_get(s, "short_id")),
           time ? time : "", json_string_value(json_object_get(s, "hostname")), tags);
}

static int cmd_snapshots(struct ctx *c, int argc, char **argv, sc_err *err)
{
    if (opts_parse(argc, argv, NULL, err) != 0)
        return err->code;
    struct restic r;
    json_t *list = NULL;
    int rc = restic_open_reported(&r, &c->cfg, c->report, err);
    if (rc == 0)
        rc = restic_snapshots(&r, false, &list, err);
    if (rc == 0 && c->report) {
        json_object_set(c->report, "snapshots", list);
    } else if (rc == 0) {
        printf("%-8s  %-19s  %-16s  %s\n", "ID", "TIME", "HOST", "TAGS");
        size_t i;
        json_t *s;
        json_array_foreach(list, i, s) print_row(s);
        printf("%zu snapshot%s\n", json_array_size(list), json_array_size(list) == 1 ? "" : "s");
    }
    json_decref(list);
    restic_close(&r);
    return rc;
}

const struct command command_snapshots = {
    .name = "snapshots",
    .run = cmd_snapshots,
    .usage = "snapshots",
    .summary = "the repository's snapshots made by this tool, with their tags",
    .help = "Lists the snapshots of this host that stagecoach made (tag stagecoach), oldest\n"
            "first: short id, time, host, tags. --json gives restic's full records.",
    .options = NULL,
    .example = "stagecoach snapshots\n"
               "stagecoach --json snapshots",
    .needs_config = true,
};
