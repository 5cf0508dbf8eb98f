/* forget: retention on demand, in the repository and on local sets,
 * only after a verified ship (src/pipeline/retention.h). */
#include <stdio.h>

#include "../pipeline/run.h"
#include "cmd.h"

/* For people: one line per snapshot and local set that went (or would),
 * then the count. */
static void print_result(json_t *result, bool dry_run)
{
    json_t *removed = json_object_get(result, dry_run ? "would_remove" : "removed");
    json_t *sets =
        json_object_get(result, dry_run ? "local_sets_would_remove" : "local_sets_removed");
    const char *verb = dry_run ? "would forget" : "forgot";
    size_t i;
    json_t *s;
    json_array_foreach(removed, i, s)
    {
        const char *set = json_string_value(json_object_get(s, "set"));
        printf("%s snapshot %s%s%s\n", verb, json_string_value(json_object_get(s, "id")),
               set ? " of set " : "", set ? set : "");
    }
    json_array_foreach(sets, i, s)
        printf("%s local set %s\n", dry_run ? "would remove" : "removed", json_string_value(s));
    if (json_is_string(json_object_get(result, "skipped")))
        printf("repository: %s\n", json_string_value(json_object_get(result, "skipped")));
    else
        printf("repository: %zu snapshot%s %s, %zu kept\n", json_array_size(removed),
               json_array_size(removed) == 1 ? "" : "s",
               dry_run ? "would be forgotten" : "forgotten",
               json_array_size(json_object_get(result, "kept")));
}

static int cmd_forget(struct ctx *c, int argc, char **argv, sc_err *err)
{
    if (opts_parse(argc, argv, NULL, err) != 0)
        return err->code;
    json_t *result = NULL;
    int rc = run_forget(c, &result, err);
    if (c->report && result)
        json_object_set(c->report, "retention", result);
    else if (result && !c->json)
        print_result(result, c->dry_run);
    json_decref(result);
    return rc;
}

const struct command command_forget = {
    .name = "forget",
    .run = cmd_forget,
    .usage = "forget",
    .summary = "retention now: restic forget + prune, and local sets beyond [staging] keep",
    .help = "Applies [retention] keep_* in the repository (forget, then prune) and [staging]\n"
            "keep to local sets, only when the newest snapshot was verified by this\n"
            "stagecoach; a set never shipped is never removed. --dry-run says what would go.",
    .options = NULL,
    .example = "stagecoach --dry-run forget\n"
               "stagecoach forget",
    .needs_config = true,
};
