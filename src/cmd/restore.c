/* restore: a set back as verified plaintext in --to DIR, from the
 * repository (--snapshot) or local staging (--set); --apply also puts its
 * sources back (src/pipeline/restore.h; docs/restore.md is the runbook). */
#include <stdio.h>

#include "../pipeline/restore.h"
#include "../stage/manifest.h"
#include "cmd.h"

static void report_restore(struct ctx *c, const struct restore_opts *o, json_t *manifest,
                           const char *snapshot, json_t *applied)
{
    const char *set = json_string_value(json_object_get(manifest, "set"));
    json_t *files = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(manifest, "files"), i, f)
    {
        json_array_append(files, json_object_get(manifest_plaintext(f), "path"));
    }
    if (c->report) {
        json_object_set_new(c->report, "set", json_string(set ? set : ""));
        json_object_set_new(c->report, "snapshot", snapshot ? json_string(snapshot) : json_null());
        json_object_set_new(c->report, "to", json_string(o->to));
        json_object_set_new(c->report, "encrypted", json_boolean(manifest_encrypted(manifest)));
        json_object_set_new(c->report, "files", files);
        json_object_set(c->report, "applied", applied);
        return;
    }
    printf("restored set %s", set ? set : "?");
    if (snapshot)
        printf(" (snapshot %.8s)", snapshot);
    printf(" into %s, verified against its manifest:\n", o->to);
    json_array_foreach(files, i, f)
    {
        printf("  %s\n", json_string_value(f));
    }
    printf("  MANIFEST.json, B2SUMS (b2sum -c B2SUMS checks the files above)\n");
    json_t *src;
    json_array_foreach(json_object_get(manifest, "sources"), i, src)
    {
        /* sqlite layout = pages: the database rebuilt beside its map and packs */
        const char *db =
            json_string_value(json_object_get(json_object_get(src, "database"), "path"));
        if (db != NULL)
            printf("  %s (rebuilt, checked against the manifest's database checksum)\n", db);
    }
    json_array_foreach(applied, i, f)
    {
        const char *to = json_string_value(json_object_get(f, "restored_to"));
        printf("put back %s %s%s%s in %.1f s\n", json_string_value(json_object_get(f, "kind")),
               json_string_value(json_object_get(f, "name")), to ? ": " : "", to ? to : "",
               json_number_value(json_object_get(f, "seconds")));
    }
    json_decref(files);
}

static int check_options(const struct restore_opts *o, sc_err *err)
{
    if ((o->snapshot != NULL) == (o->set != NULL))
        return sc_fail(err, SC_EUSAGE, "restore takes --snapshot ID|latest or --set ID|latest");
    if (o->to == NULL)
        return sc_fail(err, SC_EUSAGE, "restore needs --to DIR (a new or empty directory)");
    if (!o->apply && (o->source || o->into || o->force))
        return sc_fail(err, SC_EUSAGE, "--source, --into and --force go with --apply");
    return 0;
}

static int cmd_restore(struct ctx *c, int argc, char **argv, sc_err *err)
{
    struct restore_opts o = {0};
    o.apply = opts_take_flag(&argc, argv, "apply");
    o.force = opts_take_flag(&argc, argv, "force");
    const struct opt opts[] = {{"snapshot", &o.snapshot},
                               {"set", &o.set},
                               {"to", &o.to},
                               {"identity", &o.identity},
                               {"passphrase-file", &o.passphrase_file},
                               {"source", &o.source},
                               {"into", &o.into},
                               {NULL, NULL}};
    if (opts_parse(argc, argv, opts, err) != 0 || check_options(&o, err) != 0)
        return err->code;
    if (c->dry_run) {
        printf("dry run: would restore %s %s into %s%s\n", o.set ? "set" : "snapshot",
               o.set ? o.set : o.snapshot, o.to, o.apply ? " and put its sources back" : "");
        return 0;
    }
    struct restore_result res;
    int rc = restore_run(c, &o, &res, err);
    if (res.manifest != NULL)
        report_restore(c, &o, res.manifest, o.snapshot ? res.snapshot : NULL, res.applied);
    restore_result_free(&res);
    return rc;
}

const struct command command_restore = {
    .name = "restore",
    .run = cmd_restore,
    .usage =
        "restore --snapshot ID|latest | --set ID|latest --to DIR [--identity FILE]\n"
        "                          [--passphrase-file F] [--apply [--source NAME] [--into TARGET]\n"
        "                          [--force]]",
    .summary = "a set back as verified plaintext in a directory; --apply puts sources back",
    .help = "Restores a set from the repository (--snapshot) or from local staging (--set)\n"
            "into DIR, a new or empty directory, verified file by file against its\n"
            "manifest and decrypted; nothing live is touched. With --apply each source is\n"
            "then put back (SQLite: atomic replace, the old file kept; MySQL: the dump\n"
            "loaded by [mysql] threads connections, progress on a terminal; paths:\n"
            "guarded extraction). docs/restore.md is the runbook.",
    .options = "  --snapshot ID|latest   read the set back from the repository\n"
               "  --set ID|latest        take a local set instead (no restic)\n"
               "  --to DIR               where the verified plaintext goes (new or empty)\n"
               "  --identity FILE        the secret key of an encrypted set\n"
               "  --passphrase-file F    the identity's passphrase\n"
               "  --apply                also put the sources back\n"
               "  --source NAME          only this source (with --apply)\n"
               "  --into TARGET          another target: a database name, a file, a directory\n"
               "  --force                replace a target that is not empty",
    .example =
        "stagecoach restore --snapshot latest --to /tmp/restore\n"
        "stagecoach restore --set latest --to /tmp/r --apply --source tracker --into tracker_copy",
    .needs_config = true,
};
