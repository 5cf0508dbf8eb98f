/* verify: re-hash a local set, or read a snapshot back from restic into a
 * private scratch directory and check every file against its manifest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fs.h"
#include "../core/log.h"
#include "../restic/restic.h"
#include "../stage/set.h"
#include "cmd.h"

static int verify_local(struct ctx *c, const char *which, sc_err *err)
{
    char *dir = NULL, *id = NULL;
    int rc = set_resolve(c->cfg.staging.dir, which, &dir, &id, err);
    if (rc == 0)
        rc = set_verify(dir, err);
    if (rc == 0) {
        log_info("set %s verified", id);
        if (!c->json)
            printf("set %s: ok\n", id);
    }
    if (c->report && id)
        json_object_set_new(c->report, "set", json_string(id));
    free(dir);
    free(id);
    return rc;
}

static int verify_snapshot(struct ctx *c, const char *which, sc_err *err)
{
    struct restic r;
    json_t *snap = NULL;
    char *scratch = NULL;
    int rc = restic_open(&r, &c->cfg, err);
    if (rc == 0)
        rc = restic_find_snapshot(&r, which, &snap, err);
    const char *id = rc == 0 ? json_string_value(json_object_get(snap, "id")) : NULL;
    json_t *paths = rc == 0 ? json_object_get(snap, "paths") : NULL;
    const char *setpath = json_string_value(json_array_get(paths, 0));
    if (rc == 0 && (id == NULL || setpath == NULL || json_array_size(paths) != 1))
        rc = sc_fail(err, SC_EVERIFY, "snapshot %s is not a stagecoach set", which);
    if (rc == 0) {
        /* Private scratch space beside the sets: same disk, 0700. */
        char *tmpl = path_join(c->cfg.staging.dir, ".verify-XXXXXX");
        if (fs_mkdir_p(c->cfg.staging.dir, 0700, err) != 0 || mkdtemp(tmpl) == NULL) {
            rc = sc_fail_errno(err, SC_ESTAGING, "cannot create %s", tmpl);
            free(tmpl);
        } else {
            scratch = tmpl;
        }
    }
    if (rc == 0) {
        log_info("restoring snapshot %.8s into %s to verify it", id, scratch);
        rc = restic_restore(&r, id, scratch, err);
    }
    if (rc == 0) {
        char *restored = path_join(scratch, setpath);
        rc = set_verify(restored, err);
        free(restored);
    }
    if (rc == 0) {
        log_info("snapshot %.8s verified", id);
        if (!c->json)
            printf("snapshot %.8s: ok\n", id);
    }
    if (c->report && id)
        json_object_set_new(c->report, "snapshot", json_string(id));
    if (scratch && fs_rm_rf(scratch) != 0)
        log_warn("cannot remove %s", scratch);
    free(scratch);
    json_decref(snap);
    restic_close(&r);
    return rc;
}

int cmd_verify(struct ctx *c, int argc, char **argv, sc_err *err)
{
    const char *set = NULL, *snapshot = NULL;
    const struct cmd_opt opts[] = {{"set", &set}, {"snapshot", &snapshot}, {NULL, NULL}};
    if (cmd_parse_opts(argc, argv, opts, err) != 0)
        return err->code;
    if (set && snapshot)
        return sc_fail(err, SC_EUSAGE, "verify takes --set or --snapshot, not both");
    if (snapshot)
        return verify_snapshot(c, snapshot, err);
    return verify_local(c, set ? set : "latest", err);
}
