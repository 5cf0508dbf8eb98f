/* verify: re-hash a local set (--set), or read a snapshot back and check it
 * (--snapshot); src/pipeline/verify.h says how. */
#include "../pipeline/verify.h"
#include "cmd.h"

int cmd_verify(struct ctx *c, int argc, char **argv, sc_err *err)
{
    struct verify_opts o = {0};
    const struct opt opts[] = {{"set", &o.set},
                               {"snapshot", &o.snapshot},
                               {"identity", &o.identity},
                               {"passphrase-file", &o.passphrase_file},
                               {NULL, NULL}};
    if (opts_parse(argc, argv, opts, err) != 0)
        return err->code;
    if (o.set && o.snapshot)
        return sc_fail(err, SC_EUSAGE, "verify takes --set or --snapshot, not both");
    if (o.snapshot)
        return verify_remote_snapshot(c, &o, err);
    return verify_local_set(c, &o, err);
}
