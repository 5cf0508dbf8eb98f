/* drill: restore the latest snapshot (or --snapshot) into scratch targets,
 * compare every source with its manifest, clean up, report
 * (src/pipeline/drill.h says how). */
#include <stdio.h>

#include "../pipeline/drill.h"
#include "cmd.h"

static void print_result(const json_t *result, int rc)
{
    const char *snap = json_string_value(json_object_get(result, "snapshot"));
    const char *set = json_string_value(json_object_get(result, "set"));
    printf("drill of snapshot %.8s (set %s):\n", snap ? snap : "?", set ? set : "?");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(result, "sources"), i, r)
    {
        const char *status = json_string_value(json_object_get(r, "status"));
        const char *why = json_string_value(json_object_get(r, "error"));
        if (why == NULL)
            why = json_string_value(json_object_get(r, "reason"));
        printf("  %s %s: %s", json_string_value(json_object_get(r, "kind")),
               json_string_value(json_object_get(r, "name")), status ? status : "?");
        if (json_is_integer(json_object_get(r, "rows_total")))
            printf(" (%lld rows in %lld tables match the manifest)",
                   (long long)json_integer_value(json_object_get(r, "rows_total")),
                   (long long)json_integer_value(json_object_get(r, "tables")));
        else if (json_is_integer(json_object_get(r, "entries")))
            printf(" (%lld entries match the manifest)",
                   (long long)json_integer_value(json_object_get(r, "entries")));
        if (json_is_number(json_object_get(r, "seconds")))
            printf(", %.1f s", json_number_value(json_object_get(r, "seconds")));
        printf("%s%s\n", why ? ": " : "", why ? why : "");
    }
    json_t *rto = json_object_get(result, "rto_seconds");
    if (json_is_number(rto))
        printf("recovery time: %.1f s (%.1f s to read the snapshot back and verify it)\n",
               json_number_value(rto), json_number_value(json_object_get(result, "fetch_seconds")));
    printf("drill %s\n", rc == 0 ? "passed" : "FAILED");
}

static int cmd_drill(struct ctx *c, int argc, char **argv, sc_err *err)
{
    struct drill_opts o = {.which = "latest"};
    const struct opt opts[] = {{"snapshot", &o.which},
                               {"identity", &o.identity},
                               {"passphrase-file", &o.passphrase_file},
                               {NULL, NULL}};
    if (opts_parse(argc, argv, opts, err) != 0)
        return err->code;
    if (c->dry_run) {
        printf("dry run: would restore snapshot %s into %s/.drill-*, check every source in "
               "scratch targets, and remove them\n",
               o.which, c->cfg.staging.dir);
        return 0;
    }
    json_t *result = NULL;
    int rc = drill_run(c, &o, &result, err);
    if (c->report)
        json_object_set(c->report, "drill", result);
    else if (result)
        print_result(result, rc);
    json_decref(result);
    return rc;
}

const struct command command_drill = {
    .name = "drill",
    .run = cmd_drill,
    .usage = "drill [--snapshot ID|latest] [--identity FILE] [--passphrase-file F]",
    .summary = "restore the latest snapshot into scratch targets, compare, clean up",
    .help = "A restore rehearsal that touches nothing live: the snapshot is read back,\n"
            "verified, decrypted, and every source restored into a scratch target (a file\n"
            "in STAGING/.drill-*, or a database <db>_drill_<id> that is dropped again) and\n"
            "compared with its manifest (integrity, rows of every table). The outcome goes\n"
            "to state.json (status shows it); exit 7 when anything differs.",
    .options = "  --snapshot ID|latest   the snapshot to rehearse (default: latest)\n"
               "  --identity FILE        the secret key of an encrypted set\n"
               "  --passphrase-file F    the identity's passphrase",
    .example = "stagecoach drill\n"
               "stagecoach --json drill --snapshot 1a2b3c4d",
    .needs_config = true,
};
